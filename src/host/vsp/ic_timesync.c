/*
 * host/vsp/ic_timesync.c - host half of the time sync IC (spec 4.7): after
 * negotiation one SYNC, then a SAMPLE every period, each a transaction
 * answered before the next goes (V's behaviour), all from the host's real
 * clock (or the config's). Version 4.0 messages carry the partition's
 * reference time read at the same moment as the clock; older ones carry
 * the round trip of the previous exchange.
 *
 * The guest's answer is an echo; all we learn from it is its status. The
 * guest's own clock reaches the host only through KVP (ic_kvp.c measures
 * the offset).
 */
#include "host/vsp/ic_host_priv.h"

#include <errno.h>
#include <string.h>

#define TS4_SIZE	52u	/* V's layout: 5 reserved bytes */
#define TS3_SIZE	56u

/* Host UTC now in 100-ns units since 1601. */
static uint64_t ts_parent_time(struct hvs_ic *ic)
{
	int64_t ns = ich_host_utc_ns(ic);

	if (ns < 0)
		ns = 0;
	return IC_TIMESYNC_EPOCH_DELTA + (uint64_t)ns / 100u;
}

static void ts_send(struct ich_dev *d, uint64_t now)
{
	struct hvs_ic *ic = d->d_ic;
	struct ich_ts *ts = &ic->ic_ts;
	uint8_t b[TS3_SIZE];
	uint8_t flags = ts->ts_sync_next ? IC_TIMESYNC_FLAG_SYNC :
					   IC_TIMESYNC_FLAG_SAMPLE;
	uint32_t len;

	memset(b, 0, sizeof(b));
	if (d->d_msg.major >= 4) {
		len = TS4_SIZE;
		ich_put_hdr(d, b, IC_MSGTYPE_TIMESYNC, len - IC_HDR_SIZE);
		/* NOTE: the clock and the reference time are read together,
		 * so the guest can age parent_time by its own reference
		 * counter. */
		ich_put64(b + 28, ts_parent_time(ic));
		ich_put64(b + 36, ic->ic_cfg.ic_ref_time(ic->ic_cfg.ic_clock_arg));
		b[44] = flags;
	} else {
		len = TS3_SIZE;
		ich_put_hdr(d, b, IC_MSGTYPE_TIMESYNC, len - IC_HDR_SIZE);
		ich_put64(b + 28, ts_parent_time(ic));
		ich_put64(b + 44, ts->ts_last_rtt_ns / 100u);
		b[52] = flags;
	}
	if (ich_request(d, b, len) == 0) {
		ts->ts_out_sync = ts->ts_sync_next;
		ts->ts_sync_next = false;
	}
	ts->ts_next_ns = now + ic->ic_cfg.ic_timesync_period_ns;
}

static void ts_negotiated(struct ich_dev *d)
{
	/* Spec 4.7: the first message after open is a SYNC. */
	d->d_ic->ic_ts.ts_sync_next = true;
	d->d_ic->ic_ts.ts_next_ns = 0;
}

static void ts_idle(struct ich_dev *d, uint64_t now)
{
	struct ich_ts *ts = &d->d_ic->ic_ts;

	if (ts->ts_sync_next || now >= ts->ts_next_ns)
		ts_send(d, now);
}

static void ts_reply(struct ich_dev *d, const uint8_t *p, uint32_t len,
		     uint32_t status)
{
	struct ich_ts *ts = &d->d_ic->ic_ts;

	(void)p;
	(void)len;
	ts->ts_last_rtt_ns = ich_now() - d->d_out_sent_ns;
	if (status != IC_STATUS_S_OK) {
		ts->ts_refused++;
		HVS_WARN(d->d_ic->ic_vm, "ic-timesync: the guest refused the "
			 "host time (status %#x)", status);
		return;
	}
	if (ts->ts_out_sync)
		ts->ts_syncs++;
	else
		ts->ts_samples++;
}

static void ts_failed(struct ich_dev *d, int err)
{
	struct ich_ts *ts = &d->d_ic->ic_ts;

	(void)err;
	/* A SYNC that got no answer is sent again as a SYNC. */
	if (ts->ts_out_sync)
		ts->ts_sync_next = true;
}

static void ts_closed(struct ich_dev *d)
{
	d->d_ic->ic_ts.ts_sync_next = true;
}

const struct ich_ops ich_timesync_ops = {
	.o_name = "timesync",
	.o_class = HV_GUID_TIMESYNC_INIT,
	.o_msgtype = IC_MSGTYPE_TIMESYNC,
	.o_negotiated = ts_negotiated,
	.o_reply = ts_reply,
	.o_failed = ts_failed,
	.o_idle = ts_idle,
	.o_closed = ts_closed,
};

int hvs_ic_timesync_sync_now(struct hvs_ic *ic)
{
	if (ic == NULL)
		return -EINVAL;
	if (!ich_ready(&ic->ic_dev[HVS_IC_TIMESYNC]))
		return -ENODEV;
	ic->ic_ts.ts_sync_next = true;
	ich_pump(ic);
	return 0;
}

int hvs_ic_timesync_status(const struct hvs_ic *ic,
			   struct hvs_ic_ts_status *out)
{
	const struct ich_ts *ts;

	if (ic == NULL || out == NULL)
		return -EINVAL;
	ts = &ic->ic_ts;
	memset(out, 0, sizeof(*out));
	out->ts_syncs = ts->ts_syncs;
	out->ts_samples = ts->ts_samples;
	out->ts_refused = ts->ts_refused;
	out->ts_last_rtt_ns = ts->ts_last_rtt_ns;
	out->ts_offset_valid = ts->ts_off_valid;
	out->ts_offset_ns = ts->ts_off_ns;
	out->ts_offset_err_ns = ts->ts_off_err_ns;
	out->ts_offset_age_ns = ts->ts_off_valid ?
				ich_now() - ts->ts_off_at_ns : 0;
	return 0;
}
