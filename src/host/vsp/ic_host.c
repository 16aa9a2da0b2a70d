/*
 * host/vsp/ic_host.c - the host IC framework: the four devices, host
 * generations and their version lists, NEGOTIATE, the one outstanding
 * request per channel with its timeout, the guest reply parser, raw
 * requests, status and JSON (spec/vmbus-devices.md 4.1-4.4).
 *
 * Host generations (what NEGOTIATE offers; framework 1.0 only on WS2008,
 * 1.0 and 3.0 after). Sources: L's hv_kvp.c and F's old vmbus_ic.c name
 * the WS2008 (all 1.0), WS2008 R2 ("win7": 3.0) and WS2012 ("win8": KVP
 * 4.0) versions; time sync 4.0 came with WS2016 (L's v4 support and
 * Microsoft's time accuracy notes); shutdown 3.2 is the hibernate-capable
 * version Linux added in 2020, and V (a current host) offers shutdown
 * 1.0-3.2, time sync 4.0 and KVP 3.0-5.0. Where shutdown 3.1 appeared is
 * not recorded: we put it at WS2016 (an assumption, docs/ic.md). FUTURE
 * adds versions no guest speaks yet (framework 3.1, heartbeat 3.1,
 * shutdown 3.3, time sync 4.1, KVP 6.0) to test the guest's choice.
 */
#define _GNU_SOURCE
#include "host/vsp/ic_host_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/control.h"
#include "host/loop.h"
#include "host/vmbus_server.h"
#include "host/vsp/vsp.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"

/* ---- generations ---- */

struct ich_list {
	uint8_t n;
	struct ich_ver v[6];
};

#define L1(a, b)		{ 1, { { a, b } } }
#define V10_30			{ 2, { { 1, 0 }, { 3, 0 } } }

static const struct ich_list ich_fw_lists[HVS_IC_GEN_COUNT] = {
	[HVS_IC_GEN_WS2008] = L1(1, 0),
	[HVS_IC_GEN_WS2008R2] = V10_30,
	[HVS_IC_GEN_WS2012] = V10_30,
	[HVS_IC_GEN_WS2012R2] = V10_30,
	[HVS_IC_GEN_WS2016] = V10_30,
	[HVS_IC_GEN_WS2019] = V10_30,
	[HVS_IC_GEN_WS2022] = V10_30,
	[HVS_IC_GEN_FUTURE] = { 3, { { 1, 0 }, { 3, 0 }, { 3, 1 } } },
};

static const struct ich_list ich_svc_lists[HVS_IC_NSVC][HVS_IC_GEN_COUNT] = {
	[HVS_IC_HEARTBEAT] = {
		[HVS_IC_GEN_WS2008] = L1(1, 0),
		[HVS_IC_GEN_WS2008R2] = V10_30,
		[HVS_IC_GEN_WS2012] = V10_30,
		[HVS_IC_GEN_WS2012R2] = V10_30,
		[HVS_IC_GEN_WS2016] = V10_30,
		[HVS_IC_GEN_WS2019] = V10_30,
		[HVS_IC_GEN_WS2022] = V10_30,
		[HVS_IC_GEN_FUTURE] = { 3, { { 1, 0 }, { 3, 0 }, { 3, 1 } } },
	},
	[HVS_IC_SHUTDOWN] = {
		[HVS_IC_GEN_WS2008] = L1(1, 0),
		[HVS_IC_GEN_WS2008R2] = V10_30,
		[HVS_IC_GEN_WS2012] = V10_30,
		[HVS_IC_GEN_WS2012R2] = V10_30,
		[HVS_IC_GEN_WS2016] = { 3, { { 1, 0 }, { 3, 0 }, { 3, 1 } } },
		[HVS_IC_GEN_WS2019] = { 4, { { 1, 0 }, { 3, 0 }, { 3, 1 },
					    { 3, 2 } } },
		[HVS_IC_GEN_WS2022] = { 4, { { 1, 0 }, { 3, 0 }, { 3, 1 },
					    { 3, 2 } } },
		[HVS_IC_GEN_FUTURE] = { 5, { { 1, 0 }, { 3, 0 }, { 3, 1 },
					    { 3, 2 }, { 3, 3 } } },
	},
	[HVS_IC_TIMESYNC] = {
		[HVS_IC_GEN_WS2008] = L1(1, 0),
		[HVS_IC_GEN_WS2008R2] = V10_30,
		[HVS_IC_GEN_WS2012] = V10_30,
		[HVS_IC_GEN_WS2012R2] = V10_30,
		[HVS_IC_GEN_WS2016] = { 3, { { 1, 0 }, { 3, 0 }, { 4, 0 } } },
		[HVS_IC_GEN_WS2019] = { 3, { { 1, 0 }, { 3, 0 }, { 4, 0 } } },
		[HVS_IC_GEN_WS2022] = { 3, { { 1, 0 }, { 3, 0 }, { 4, 0 } } },
		[HVS_IC_GEN_FUTURE] = { 4, { { 1, 0 }, { 3, 0 }, { 4, 0 },
					    { 4, 1 } } },
	},
	[HVS_IC_KVP] = {
		[HVS_IC_GEN_WS2008] = L1(1, 0),
		[HVS_IC_GEN_WS2008R2] = V10_30,
		[HVS_IC_GEN_WS2012] = { 3, { { 1, 0 }, { 3, 0 }, { 4, 0 } } },
		[HVS_IC_GEN_WS2012R2] = { 3, { { 1, 0 }, { 3, 0 }, { 4, 0 } } },
		[HVS_IC_GEN_WS2016] = { 3, { { 1, 0 }, { 3, 0 }, { 4, 0 } } },
		[HVS_IC_GEN_WS2019] = { 4, { { 1, 0 }, { 3, 0 }, { 4, 0 },
					    { 5, 0 } } },
		[HVS_IC_GEN_WS2022] = { 4, { { 1, 0 }, { 3, 0 }, { 4, 0 },
					    { 5, 0 } } },
		[HVS_IC_GEN_FUTURE] = { 5, { { 1, 0 }, { 3, 0 }, { 4, 0 },
					    { 5, 0 }, { 6, 0 } } },
	},
};

static const char *const ich_gen_names[HVS_IC_GEN_COUNT] = {
	"auto", "ws2008", "ws2008r2", "ws2012", "ws2012r2", "ws2016",
	"ws2019", "ws2022", "future",
};

const char *hvs_ic_gen_name(enum hvs_ic_gen g)
{
	return (unsigned)g < HVS_IC_GEN_COUNT ? ich_gen_names[g] : "?";
}

int hvs_ic_gen_parse(const char *s, enum hvs_ic_gen *out)
{
	for (unsigned i = 0; s && i < HVS_IC_GEN_COUNT; i++)
		if (strcmp(s, ich_gen_names[i]) == 0) {
			*out = (enum hvs_ic_gen)i;
			return 0;
		}
	return -EINVAL;
}

enum hvs_ic_gen hvs_ic_gen_for_vmbus(uint32_t v)
{
	if (v >= HVS_VMBUS_VERSION_IRON)
		return HVS_IC_GEN_WS2022;
	if (v >= HVS_VMBUS_VERSION_WIN10_RS5)
		return HVS_IC_GEN_WS2019;
	if (v >= HVS_VMBUS_VERSION_WIN10)
		return HVS_IC_GEN_WS2016;
	if (v >= HVS_VMBUS_VERSION_WIN8_1)
		return HVS_IC_GEN_WS2012R2;
	if (v >= HVS_VMBUS_VERSION_WIN8)
		return HVS_IC_GEN_WS2012;
	if (v >= HVS_VMBUS_VERSION_WIN7)
		return HVS_IC_GEN_WS2008R2;
	return HVS_IC_GEN_WS2008;
}

static const char *const ich_svc_names[HVS_IC_NSVC] = {
	"heartbeat", "shutdown", "timesync", "kvp",
};

const char *hvs_ic_svc_name(enum hvs_ic_svc svc)
{
	return (unsigned)svc < HVS_IC_NSVC ? ich_svc_names[svc] : "?";
}

const char *hvs_ic_neg_name(enum hvs_ic_neg n)
{
	switch (n) {
	case HVS_IC_NEG_CLOSED: return "closed";
	case HVS_IC_NEG_PENDING: return "negotiating";
	case HVS_IC_NEG_DONE: return "ready";
	case HVS_IC_NEG_FAILED: return "failed";
	}
	return "?";
}

/* The service list offered on d (time sync above 3.0 needs the
 * partition's reference time). */
static struct ich_list ich_offer(const struct ich_dev *d)
{
	struct ich_list l = ich_svc_lists[d->d_svc][d->d_gen];

	if (d->d_svc == HVS_IC_TIMESYNC && d->d_ic->ic_cfg.ic_ref_time == NULL) {
		uint8_t k = 0;

		for (uint8_t i = 0; i < l.n; i++)
			if (l.v[i].major < 4)
				l.v[k++] = l.v[i];
		l.n = k;
	}
	return l;
}

static bool ich_in(const struct ich_list *l, struct ich_ver v)
{
	for (uint8_t i = 0; i < l->n; i++)
		if (l->v[i].major == v.major && l->v[i].minor == v.minor)
			return true;
	return false;
}

/* ---- helpers ---- */

uint64_t ich_now(void)
{
	return hvs_now_ns();
}

int64_t ich_host_utc_ns(struct hvs_ic *ic)
{
	struct timespec ts;

	if (ic->ic_cfg.ic_host_utc_ns)
		return ic->ic_cfg.ic_host_utc_ns(ic->ic_cfg.ic_clock_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void ich_bad(struct ich_dev *d, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	d->d_st.ss_bad_replies++;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	hvs_log_guest(&d->d_ic->ic_rl, &d->d_ic->ic_guest_errors,
		      d->d_ic->ic_vm, "ic-%s: %s", d->d_ops->o_name, line);
}

bool ich_ready(const struct ich_dev *d)
{
	return d->d_ch != NULL && d->d_neg == HVS_IC_NEG_DONE;
}

void ich_put_hdr(struct ich_dev *d, uint8_t *b, uint16_t type, uint32_t body)
{
	memset(b, 0, IC_HDR_SIZE);
	ich_put32(b, IC_PIPE_FLAG_DATA);
	ich_put32(b + 4, IC_HDR_SIZE - IC_PIPE_HDR_SIZE + body);
	ich_put16(b + 8, d->d_fw.major);
	ich_put16(b + 10, d->d_fw.minor);
	ich_put16(b + 12, type);
	ich_put16(b + 14, d->d_msg.major);
	ich_put16(b + 16, d->d_msg.minor);
	ich_put16(b + 18, (uint16_t)body);
	/* status 0; ictransaction_id 0 (V sends and requires 0) */
	b[25] = IC_FLAGS_HOST_REQUEST;
}

/* ---- the outstanding request ---- */

static int ich_send_out(struct ich_dev *d)
{
	int r = hvs_chan_send(d->d_ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
			      d->d_out_tid, d->d_tx, d->d_txlen);

	if (r == -EAGAIN) {
		/* Ring full: hvs_chan_send set pending_send_sz; we resend
		 * from vo_on_signal or the tick. */
		d->d_out_unsent = true;
		return 0;
	}
	d->d_out_unsent = false;
	if (r == 0) {
		d->d_out_sent_ns = ich_now();
		d->d_st.ss_requests++;
	}
	return r;
}

static int ich_start(struct ich_dev *d, enum ich_out kind, const uint8_t *msg,
		     uint32_t len)
{
	int r;

	if (d->d_ch == NULL)
		return -ENODEV;
	if (d->d_out != ICH_OUT_NONE)
		return -EBUSY;
	/* Only raw (fault-test) requests may be shorter than a header. */
	if (len > ICH_MAX_MSG || len == 0 ||
	    (len < IC_HDR_SIZE && kind != ICH_OUT_RAW))
		return -EINVAL;
	if (msg != d->d_tx)
		memcpy(d->d_tx, msg, len);
	d->d_txlen = len;
	d->d_out = kind;
	d->d_out_type = len >= 14 ? ich_get16(d->d_tx + 12) : 0xFFFFu;
	d->d_out_tid = ++d->d_next_tid;
	d->d_out_sent_ns = ich_now();
	r = ich_send_out(d);
	if (r != 0)
		d->d_out = ICH_OUT_NONE;
	return r;
}

int ich_request(struct ich_dev *d, const uint8_t *msg, uint32_t len)
{
	return ich_start(d, ICH_OUT_SERVICE, msg, len);
}

/* End the outstanding request with err (no reply). */
static void ich_fail_out(struct ich_dev *d, int err)
{
	enum ich_out kind = d->d_out;

	d->d_out = ICH_OUT_NONE;
	d->d_out_unsent = false;
	switch (kind) {
	case ICH_OUT_RAW:
		if (d->d_raw_cb)
			d->d_raw_cb(d->d_raw_arg, err, NULL, 0);
		break;
	case ICH_OUT_SERVICE:
		if (d->d_ops->o_failed)
			d->d_ops->o_failed(d, err);
		break;
	case ICH_OUT_NEGOTIATE:
		if (err == -EPROTO)
			d->d_neg = HVS_IC_NEG_FAILED;
		break;
	case ICH_OUT_NONE:
		break;
	}
}

/* ---- negotiation ---- */

static int ich_send_negotiate(struct ich_dev *d)
{
	struct ich_list fw = ich_fw_lists[d->d_gen];
	struct ich_list msg = ich_offer(d);
	uint32_t body = 8u + 4u * (uint32_t)(fw.n + msg.n);
	uint8_t *b = d->d_tx;

	memset(b, 0, IC_HDR_SIZE + body);
	ich_put32(b, IC_PIPE_FLAG_DATA);
	ich_put32(b + 4, IC_HDR_SIZE - IC_PIPE_HDR_SIZE + body);
	/* Header versions: the newest we offer (the guest reads the lists). */
	ich_put16(b + 8, fw.v[fw.n - 1].major);
	ich_put16(b + 10, fw.v[fw.n - 1].minor);
	ich_put16(b + 12, IC_MSGTYPE_NEGOTIATE);
	ich_put16(b + 14, msg.v[msg.n - 1].major);
	ich_put16(b + 16, msg.v[msg.n - 1].minor);
	ich_put16(b + 18, (uint16_t)body);
	b[25] = IC_FLAGS_HOST_REQUEST;
	ich_put16(b + 28, fw.n);
	ich_put16(b + 30, msg.n);
	for (uint8_t i = 0; i < fw.n; i++) {
		ich_put16(b + 36 + 4 * i, fw.v[i].major);
		ich_put16(b + 38 + 4 * i, fw.v[i].minor);
	}
	for (uint8_t i = 0; i < msg.n; i++) {
		ich_put16(b + 36 + 4 * (fw.n + i), msg.v[i].major);
		ich_put16(b + 38 + 4 * (fw.n + i), msg.v[i].minor);
	}
	return ich_start(d, ICH_OUT_NEGOTIATE, b, IC_HDR_SIZE + body);
}

/* The guest's NEGOTIATE answer (header already checked). */
static void ich_negotiate_reply(struct ich_dev *d, const uint8_t *p,
				uint32_t len, uint32_t status)
{
	struct ich_list fw = ich_fw_lists[d->d_gen];
	struct ich_list msg = ich_offer(d);
	struct ich_ver f, m;
	uint16_t fcnt, mcnt;

	if (len < IC_NEGOTIATE_FIXED_SIZE) {
		ich_bad(d, "negotiate answer of %u bytes is short", len);
		d->d_neg = HVS_IC_NEG_FAILED;
		return;
	}
	fcnt = ich_get16(p + 28);
	mcnt = ich_get16(p + 30);
	if (fcnt == 0 && mcnt == 0) {
		/* The guest's way of saying "nothing in common" (L). */
		d->d_st.ss_failed++;
		d->d_neg = HVS_IC_NEG_FAILED;
		HVS_WARN(d->d_ic->ic_vm, "ic-%s: the guest shares no version "
			 "with host generation %s", d->d_ops->o_name,
			 hvs_ic_gen_name(d->d_gen));
		return;
	}
	if (fcnt != 1 || mcnt != 1 || len < IC_NEGOTIATE_RESP_SIZE) {
		ich_bad(d, "negotiate answer with %u+%u versions in %u bytes",
			fcnt, mcnt, len);
		d->d_neg = HVS_IC_NEG_FAILED;
		return;
	}
	f.major = ich_get16(p + 36);
	f.minor = ich_get16(p + 38);
	m.major = ich_get16(p + 40);
	m.minor = ich_get16(p + 42);
	if (!ich_in(&fw, f) || !ich_in(&msg, m) || status != IC_STATUS_S_OK) {
		ich_bad(d, "guest chose framework %u.%u / service %u.%u "
			"(status %#x), which was not offered", f.major,
			f.minor, m.major, m.minor, status);
		d->d_neg = HVS_IC_NEG_FAILED;
		return;
	}
	d->d_fw = f;
	d->d_msg = m;
	d->d_neg = HVS_IC_NEG_DONE;
	HVS_INFO(d->d_ic->ic_vm, "ic-%s: negotiated framework %u.%u, service "
		 "%u.%u (host generation %s)", d->d_ops->o_name, f.major,
		 f.minor, m.major, m.minor, hvs_ic_gen_name(d->d_gen));
	if (d->d_ops->o_negotiated)
		d->d_ops->o_negotiated(d);
}

/* ---- receiving ---- */

/* One packet from the guest, from the private copy in d_rx. */
static void ich_on_packet(struct ich_dev *d, const struct hvs_pkt *pk)
{
	const uint8_t *p = pk->pk_data;
	uint32_t len = pk->pk_datalen, msgsize, status;
	uint8_t flags;
	uint16_t type;
	bool match = d->d_out != ICH_OUT_NONE && !d->d_out_unsent &&
		     pk->pk_trans_id == d->d_out_tid;
	enum ich_out kind;

	if (pk->pk_type != VMBUS_PACKET_TYPE_DATA_INBAND) {
		ich_bad(d, "packet type %u ignored", pk->pk_type);
		return;
	}
	if (len < IC_HDR_SIZE) {
		ich_bad(d, "%u-byte answer is shorter than the IC header", len);
		if (match)
			ich_fail_out(d, -EPROTO);
		return;
	}
	flags = p[25];
	type = ich_get16(p + 12);
	msgsize = ich_get16(p + 18);
	status = ich_get32(p + 20);
	if ((flags & IC_FLAGS_GUEST_RESPONSE) != IC_FLAGS_GUEST_RESPONSE) {
		/* V rejects an answer without TRANSACTION and RESPONSE. */
		ich_bad(d, "answer with flags %#x", flags);
		if (match)
			ich_fail_out(d, -EPROTO);
		return;
	}
	if (IC_HDR_SIZE + msgsize > len) {
		ich_bad(d, "icmsgsize %u runs past the %u-byte answer",
			msgsize, len);
		if (match)
			ich_fail_out(d, -EPROTO);
		return;
	}
	if (!match) {
		d->d_st.ss_unsolicited++;
		hvs_log_guest(&d->d_ic->ic_rl, &d->d_ic->ic_guest_errors,
			      d->d_ic->ic_vm, "ic-%s: answer %llu matches no "
			      "request", d->d_ops->o_name,
			      (unsigned long long)pk->pk_trans_id);
		return;
	}
	len = IC_HDR_SIZE + msgsize;
	kind = d->d_out;
	d->d_out = ICH_OUT_NONE;
	if (kind == ICH_OUT_RAW) {
		d->d_st.ss_replies++;
		if (d->d_raw_cb)
			d->d_raw_cb(d->d_raw_arg, 0, p, len);
		return;
	}
	if (type != d->d_out_type) {
		ich_bad(d, "answer of type %u to a request of type %u", type,
			d->d_out_type);
		d->d_out = kind;
		ich_fail_out(d, -EPROTO);
		return;
	}
	d->d_st.ss_replies++;
	if (kind == ICH_OUT_NEGOTIATE) {
		ich_negotiate_reply(d, p, len, status);
		return;
	}
	if (status != IC_STATUS_S_OK)
		d->d_st.ss_failed++;
	d->d_ops->o_reply(d, p, len, status);
}

/* ---- pumping and the tick ---- */

static void ich_pump_dev(struct ich_dev *d, uint64_t now)
{
	if (d->d_ch == NULL)
		return;
	if (d->d_out != ICH_OUT_NONE) {
		if (d->d_out_unsent && ich_send_out(d) != 0)
			ich_fail_out(d, -EIO);
		return;
	}
	if (d->d_raw_queued) {
		d->d_raw_queued = false;
		if (ich_start(d, ICH_OUT_RAW, d->d_raw, d->d_rawlen) != 0 &&
		    d->d_raw_cb)
			d->d_raw_cb(d->d_raw_arg, -EIO, NULL, 0);
		return;
	}
	if (d->d_neg == HVS_IC_NEG_PENDING) {
		int r = ich_send_negotiate(d);

		if (r != 0)
			HVS_WARN(d->d_ic->ic_vm, "ic-%s: negotiate not sent: %d",
				 d->d_ops->o_name, r);
		return;
	}
	if (d->d_neg == HVS_IC_NEG_DONE && d->d_ops->o_idle)
		d->d_ops->o_idle(d, now);
}

void ich_pump(struct hvs_ic *ic)
{
	uint64_t now = ich_now();

	for (unsigned i = 0; i < HVS_IC_NSVC; i++)
		if (ic->ic_dev[i].d_registered && !ic->ic_dev[i].d_destroyed)
			ich_pump_dev(&ic->ic_dev[i], now);
}

static void ich_tick(void *arg)
{
	struct hvs_ic *ic = arg;
	uint64_t now = ich_now();

	for (unsigned i = 0; i < HVS_IC_NSVC; i++) {
		struct ich_dev *d = &ic->ic_dev[i];

		if (d->d_ch == NULL || d->d_out == ICH_OUT_NONE)
			continue;
		if (now - d->d_out_sent_ns < ic->ic_cfg.ic_reply_timeout_ns)
			continue;
		d->d_st.ss_timeouts++;
		hvs_log_guest(&ic->ic_rl, &ic->ic_guest_errors, ic->ic_vm,
			      "ic-%s: no answer to request %llu in time",
			      d->d_ops->o_name,
			      (unsigned long long)d->d_out_tid);
		ich_fail_out(d, -ETIMEDOUT);
	}
	ich_pump(ic);
}

/* ---- the VSP ops ---- */

static int ich_open(void *arg, struct hvs_channel *ch)
{
	struct ich_dev *d = arg;
	struct hvs_ic *ic = d->d_ic;

	d->d_rxlen = hvs_chan_in_max_packet(ch);
	d->d_rx = malloc(d->d_rxlen ? d->d_rxlen : 1);
	if (d->d_rx == NULL)
		return -ENOMEM;
	d->d_gen = ic->ic_cfg.ic_gen;
	if (d->d_gen == HVS_IC_GEN_AUTO) {
		struct hvs_vmbus_stats st;

		hvs_vmbus_get_stats(hvs_chan_server(ch), &st);
		d->d_gen = hvs_ic_gen_for_vmbus(st.vs_version);
	}
	d->d_ch = ch;
	d->d_neg = HVS_IC_NEG_PENDING;
	d->d_out = ICH_OUT_NONE;
	d->d_out_unsent = false;
	memset(&d->d_fw, 0, sizeof(d->d_fw));
	memset(&d->d_msg, 0, sizeof(d->d_msg));
	hvs_chan_set_priv(ch, d);
	/* NEGOTIATE goes out from the first vo_on_signal (right after
	 * open) or the next tick. */
	return 0;
}

static void ich_close(void *arg, struct hvs_channel *ch, int why)
{
	struct ich_dev *d = arg;

	(void)ch;
	(void)why;
	if (d->d_ch == NULL)
		return;
	/* NOTE: forget the channel first: callbacks below may try to send. */
	d->d_ch = NULL;
	d->d_neg = HVS_IC_NEG_CLOSED;
	if (d->d_out != ICH_OUT_NONE)
		ich_fail_out(d, -ENODEV);
	if (d->d_raw_queued) {
		d->d_raw_queued = false;
		if (d->d_raw_cb)
			d->d_raw_cb(d->d_raw_arg, -ENODEV, NULL, 0);
	}
	if (d->d_ops->o_closed)
		d->d_ops->o_closed(d);
	free(d->d_rx);
	d->d_rx = NULL;
	d->d_rxlen = 0;
}

static void ich_on_signal(void *arg, struct hvs_channel *ch)
{
	struct ich_dev *d = arg;
	struct hvs_pkt pk;
	int r;

	if (d->d_ch != ch)
		return;
	for (;;) {
		hvs_chan_mask(ch);
		while (d->d_ch == ch &&
		       (r = hvs_chan_recv(ch, &pk, d->d_rx, d->d_rxlen,
					  NULL)) == 0)
			ich_on_packet(d, &pk);
		if (d->d_ch != ch)
			return;
		hvs_chan_recv_done(ch);
		if (r != -EAGAIN)
			break;	/* broken (logged by the framework) */
		if (hvs_chan_unmask(ch) == 0)
			break;
	}
	ich_pump(d->d_ic);
}

static void ich_free(struct hvs_ic *ic)
{
	hvs_loop_timer_cancel(ic->ic_tick);
	ich_sd_fini(ic);
	ich_kvp_fini(ic);
	for (unsigned i = 0; i < HVS_IC_NSVC; i++) {
		free(ic->ic_dev[i].d_tx);
		free(ic->ic_dev[i].d_rx);
		free(ic->ic_dev[i].d_raw);
	}
	free(ic);
}

static void ich_destroy(void *arg)
{
	struct ich_dev *d = arg;
	struct hvs_ic *ic = d->d_ic;

	d->d_destroyed = true;
	if (--ic->ic_refs == 0)
		ich_free(ic);
}

static const struct hvs_vsp_ops ich_vsp_ops = {
	.vo_open = ich_open,
	.vo_close = ich_close,
	.vo_on_signal = ich_on_signal,
	.vo_destroy = ich_destroy,
};

static const struct ich_ops *const ich_all_ops[HVS_IC_NSVC] = {
	[HVS_IC_HEARTBEAT] = &ich_heartbeat_ops,
	[HVS_IC_SHUTDOWN] = &ich_shutdown_ops,
	[HVS_IC_TIMESYNC] = &ich_timesync_ops,
	[HVS_IC_KVP] = &ich_kvp_ops,
};

/* ---- public ---- */

void hvs_ic_config_init(struct hvs_ic_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

int hvs_ic_add(struct hvs_vmbus *s, const struct hvs_ic_config *cfg,
	       struct hvs_ic **out)
{
	struct hvs_ic *ic;
	struct hvs_ic_config *c;
	int r = 0;

	if (s == NULL || cfg == NULL || out == NULL || cfg->ic_loop == NULL ||
	    (unsigned)cfg->ic_gen >= HVS_IC_GEN_COUNT ||
	    (cfg->ic_services & ~HVS_IC_ALL) != 0)
		return -EINVAL;
	ic = calloc(1, sizeof(*ic));
	if (ic == NULL)
		return -ENOMEM;
	ic->ic_srv = s;
	ic->ic_cfg = *cfg;
	c = &ic->ic_cfg;
	if (c->ic_services == 0)
		c->ic_services = HVS_IC_ALL;
	if (c->ic_tick_ns == 0)
		c->ic_tick_ns = ICH_NS / 10;
	if (c->ic_reply_timeout_ns == 0)
		c->ic_reply_timeout_ns = 5 * ICH_NS;
	if (c->ic_heartbeat_period_ns == 0)
		c->ic_heartbeat_period_ns = IC_HEARTBEAT_PERIOD_S * ICH_NS;
	if (c->ic_heartbeat_lost_ns == 0)
		c->ic_heartbeat_lost_ns = 3 * c->ic_heartbeat_period_ns;
	if (c->ic_timesync_period_ns == 0)
		c->ic_timesync_period_ns = IC_TIMESYNC_SAMPLE_PERIOD_S * ICH_NS;
	if (c->ic_kvp_refresh_ns == 0)
		c->ic_kvp_refresh_ns = 5 * ICH_NS;
	if (c->ic_shutdown_deadline_ns == 0)
		c->ic_shutdown_deadline_ns = 60 * ICH_NS;
	snprintf(ic->ic_vm, sizeof(ic->ic_vm), "%s", hvs_vmbus_name(s));

	for (unsigned i = 0; i < HVS_IC_NSVC; i++) {
		struct ich_dev *d = &ic->ic_dev[i];

		d->d_ic = ic;
		d->d_svc = (enum hvs_ic_svc)i;
		d->d_ops = ich_all_ops[i];
		d->d_tx = malloc(ICH_MAX_MSG);
		if (d->d_tx == NULL)
			goto nomem;
	}
	ic->ic_ts.ts_sync_next = true;
	if (ich_kvp_init(ic) != 0)
		goto nomem;
	ic->ic_sd.sd_msg = calloc(1, sizeof(struct ic_shutdown));
	if (ic->ic_sd.sd_msg == NULL)
		goto nomem;
	ic->ic_tick = hvs_loop_timer_add(c->ic_loop, c->ic_tick_ns,
					 c->ic_tick_ns, ich_tick, ic);
	if (ic->ic_tick == NULL)
		goto nomem;

	for (unsigned i = 0; i < HVS_IC_NSVC; i++) {
		struct ich_dev *d = &ic->ic_dev[i];
		struct hvs_device_opts opts;

		if (!(c->ic_services & HVS_IC_BIT(i)))
			continue;
		memset(&opts, 0, sizeof(opts));
		/* Spec 5.2: ICs are offered as message-mode pipes (V). */
		opts.do_flags = VMBUS_OFFER_FLAG_NAMED_PIPE_MODE;
		ich_put32(opts.do_user_defined, VMBUS_PIPE_MODE_MESSAGE);
		opts.do_name = ich_svc_names[i];
		r = hvs_vmbus_add_device(s, &ich_vsp_ops, d, &d->d_ops->o_class,
					 NULL, &opts);
		if (r < 0) {
			HVS_ERR(ic->ic_vm, "ic-%s: device not added: %d",
				ich_svc_names[i], r);
			break;
		}
		d->d_registered = true;
		ic->ic_refs++;
		r = 0;
	}
	if (ic->ic_refs == 0) {
		ich_free(ic);
		return r < 0 ? r : -EINVAL;
	}
	*out = ic;
	return r;

nomem:
	ich_free(ic);
	return -ENOMEM;
}

void hvs_ic_partition_ended(struct hvs_ic *ic, int kind)
{
	(void)kind;
	if (ic == NULL)
		return;
	ich_sd_partition_ended(ic);
	ich_hb_reset(ic);
}

int hvs_ic_get_status(const struct hvs_ic *ic, enum hvs_ic_svc svc,
		      struct hvs_ic_svc_status *out)
{
	const struct ich_dev *d;

	if (ic == NULL || out == NULL || (unsigned)svc >= HVS_IC_NSVC)
		return -EINVAL;
	d = &ic->ic_dev[svc];
	if (!d->d_registered)
		return -ENODEV;
	*out = d->d_st;
	out->ss_neg = d->d_ch ? d->d_neg : HVS_IC_NEG_CLOSED;
	out->ss_gen = d->d_gen;
	out->ss_fw_major = d->d_fw.major;
	out->ss_fw_minor = d->d_fw.minor;
	out->ss_msg_major = d->d_msg.major;
	out->ss_msg_minor = d->d_msg.minor;
	return 0;
}

int hvs_ic_send_raw(struct hvs_ic *ic, enum hvs_ic_svc svc, const void *msg,
		    uint32_t len, hvs_ic_raw_fn *cb, void *arg)
{
	struct ich_dev *d;

	if (ic == NULL || (unsigned)svc >= HVS_IC_NSVC || msg == NULL ||
	    len == 0 || len > ICH_MAX_MSG)
		return -EINVAL;
	d = &ic->ic_dev[svc];
	if (d->d_ch == NULL)
		return -ENODEV;
	if (d->d_raw_queued || d->d_out == ICH_OUT_RAW)
		return -EBUSY;
	if (d->d_raw == NULL) {
		d->d_raw = malloc(ICH_MAX_MSG);
		if (d->d_raw == NULL)
			return -ENOMEM;
	}
	/* Sent as is, even shorter than a header (fault tests). */
	memcpy(d->d_raw, msg, len);
	d->d_rawlen = len;
	d->d_raw_cb = cb;
	d->d_raw_arg = arg;
	d->d_raw_queued = true;
	ich_pump(ic);
	return 0;
}

/* ---- JSON ---- */

static void ich_describe_svc(const struct hvs_ic *ic, struct hvs_jw *w,
			     enum hvs_ic_svc svc)
{
	struct hvs_ic_svc_status s;
	char ver[32];

	if (hvs_ic_get_status(ic, svc, &s) != 0)
		return;
	hvs_jw_obj_begin(w, ich_svc_names[svc]);
	hvs_jw_str(w, "state", hvs_ic_neg_name(s.ss_neg));
	if (s.ss_neg == HVS_IC_NEG_DONE) {
		snprintf(ver, sizeof(ver), "%u.%u", s.ss_fw_major,
			 s.ss_fw_minor);
		hvs_jw_str(w, "framework", ver);
		snprintf(ver, sizeof(ver), "%u.%u", s.ss_msg_major,
			 s.ss_msg_minor);
		hvs_jw_str(w, "version", ver);
	}
	hvs_jw_uint(w, "requests", s.ss_requests);
	hvs_jw_uint(w, "replies", s.ss_replies);
	hvs_jw_uint(w, "timeouts", s.ss_timeouts);
	hvs_jw_uint(w, "bad_replies", s.ss_bad_replies);
	hvs_jw_uint(w, "failed", s.ss_failed);
	switch (svc) {
	case HVS_IC_HEARTBEAT: {
		struct hvs_ic_hb_status h;

		hvs_ic_heartbeat_status(ic, &h);
		hvs_jw_str(w, "heartbeat", hvs_ic_hb_state_name(h.hs_state));
		if (h.hs_since_reply_ns == UINT64_MAX)
			hvs_jw_null(w, "since_reply_ms");
		else
			hvs_jw_uint(w, "since_reply_ms",
				    h.hs_since_reply_ns / 1000000u);
		hvs_jw_uint(w, "seq", h.hs_seq);
		hvs_jw_uint(w, "good", h.hs_good);
		hvs_jw_uint(w, "bad", h.hs_bad);
		hvs_jw_uint(w, "missed", h.hs_missed);
		break;
	}
	case HVS_IC_SHUTDOWN: {
		struct hvs_ic_sd_status sd;

		hvs_ic_shutdown_status(ic, &sd);
		hvs_jw_str(w, "request", hvs_ic_sd_state_name(sd.sd_state));
		hvs_jw_uint(w, "flags", sd.sd_flags);
		hvs_jw_uint(w, "deadline_left_ms",
			    sd.sd_deadline_left_ns / 1000000u);
		break;
	}
	case HVS_IC_TIMESYNC: {
		struct hvs_ic_ts_status t;

		hvs_ic_timesync_status(ic, &t);
		hvs_jw_uint(w, "syncs", t.ts_syncs);
		hvs_jw_uint(w, "samples", t.ts_samples);
		hvs_jw_uint(w, "refused", t.ts_refused);
		hvs_jw_uint(w, "rtt_us", t.ts_last_rtt_ns / 1000u);
		if (t.ts_offset_valid) {
			hvs_jw_int(w, "offset_us", t.ts_offset_ns / 1000);
			hvs_jw_uint(w, "offset_err_us",
				    t.ts_offset_err_ns / 1000u);
			hvs_jw_uint(w, "offset_age_ms",
				    t.ts_offset_age_ns / 1000000u);
		} else {
			hvs_jw_null(w, "offset_us");
		}
		break;
	}
	case HVS_IC_KVP:
		ich_kvp_describe(ic, w);
		break;
	default:
		break;
	}
	hvs_jw_obj_end(w);
}

int hvs_ic_describe_json(const struct hvs_ic *ic, char *buf, size_t len)
{
	struct hvs_jw w;

	if (buf == NULL || len < 3)
		return -ENOBUFS;
	hvs_jw_init(&w, buf, len);
	hvs_jw_obj_begin(&w, NULL);
	hvs_jw_str(&w, "generation", hvs_ic_gen_name(ic->ic_cfg.ic_gen));
	for (unsigned i = 0; i < HVS_IC_NSVC; i++)
		ich_describe_svc(ic, &w, (enum hvs_ic_svc)i);
	hvs_jw_obj_end(&w);
	if (hvs_jw_result(&w) == NULL) {
		buf[0] = '\0';
		return -ENOBUFS;
	}
	return (int)strlen(buf);
}
