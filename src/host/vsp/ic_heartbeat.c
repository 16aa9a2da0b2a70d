/*
 * host/vsp/ic_heartbeat.c - host half of the heartbeat IC (spec 4.5):
 * a heartbeat every period; the guest must answer seq_num + 1. The VM is
 * OK while good answers keep coming, LOST once they stop for longer than
 * ic_heartbeat_lost_ns, NO_CONTACT until the first good answer.
 *
 * We send L/F's 40-byte body (seq_num + 32 reserved bytes): guests that
 * require the whole L/F struct accept it, and V-style readers find their
 * application_state word (0) at the same place.
 */
#include "host/vsp/ic_host_priv.h"

#include <errno.h>
#include <string.h>

#define HB_BODY 40u

static void hb_send(struct ich_dev *d, uint64_t now)
{
	struct ich_hb *hb = &d->d_ic->ic_hb;
	uint8_t b[IC_HDR_SIZE + HB_BODY];

	ich_put_hdr(d, b, IC_MSGTYPE_HEARTBEAT, HB_BODY);
	memset(b + IC_HDR_SIZE, 0, HB_BODY);
	ich_put64(b + IC_HDR_SIZE, hb->hb_seq + 1);
	if (ich_request(d, b, sizeof(b)) == 0)
		hb->hb_seq++;
	hb->hb_next_ns = now + d->d_ic->ic_cfg.ic_heartbeat_period_ns;
}

static void hb_negotiated(struct ich_dev *d)
{
	/* First heartbeat at once (the next pump). */
	d->d_ic->ic_hb.hb_next_ns = 0;
}

static void hb_idle(struct ich_dev *d, uint64_t now)
{
	if (now >= d->d_ic->ic_hb.hb_next_ns)
		hb_send(d, now);
}

static void hb_reply(struct ich_dev *d, const uint8_t *p, uint32_t len,
		     uint32_t status)
{
	struct ich_hb *hb = &d->d_ic->ic_hb;
	uint64_t seq;

	if (status != IC_STATUS_S_OK || len < IC_HEARTBEAT_MINLEN) {
		hb->hb_bad++;
		ich_bad(d, "heartbeat answer of %u bytes, status %#x", len,
			status);
		return;
	}
	seq = ich_get64(p + IC_HDR_SIZE);
	if (seq != hb->hb_seq + 1) {
		hb->hb_bad++;
		ich_bad(d, "heartbeat answer %llu to sequence %llu",
			(unsigned long long)seq,
			(unsigned long long)hb->hb_seq);
		return;
	}
	if (len >= IC_HEARTBEAT_MINLEN + 4u)
		hb->hb_app = ich_get32(p + IC_HEARTBEAT_MINLEN);
	hb->hb_good++;
	hb->hb_contact = true;
	hb->hb_last_good_ns = ich_now();
}

static void hb_failed(struct ich_dev *d, int err)
{
	if (err == -ETIMEDOUT)
		d->d_ic->ic_hb.hb_missed++;
	else if (err == -EPROTO)
		d->d_ic->ic_hb.hb_bad++;
}

const struct ich_ops ich_heartbeat_ops = {
	.o_name = "heartbeat",
	.o_class = HV_GUID_HEARTBEAT_INIT,
	.o_msgtype = IC_MSGTYPE_HEARTBEAT,
	.o_negotiated = hb_negotiated,
	.o_reply = hb_reply,
	.o_failed = hb_failed,
	.o_idle = hb_idle,
};

void ich_hb_reset(struct hvs_ic *ic)
{
	ic->ic_hb.hb_contact = false;
	ic->ic_hb.hb_last_good_ns = 0;
	ic->ic_hb.hb_app = 0;
}

const char *hvs_ic_hb_state_name(enum hvs_ic_hb_state s)
{
	switch (s) {
	case HVS_IC_HB_NO_CONTACT: return "no_contact";
	case HVS_IC_HB_OK: return "ok";
	case HVS_IC_HB_LOST: return "lost";
	}
	return "?";
}

int hvs_ic_heartbeat_status(const struct hvs_ic *ic,
			    struct hvs_ic_hb_status *out)
{
	const struct ich_hb *hb;
	uint64_t now = ich_now();

	if (ic == NULL || out == NULL)
		return -EINVAL;
	if (!ic->ic_dev[HVS_IC_HEARTBEAT].d_registered)
		return -ENODEV;
	hb = &ic->ic_hb;
	memset(out, 0, sizeof(*out));
	out->hs_seq = hb->hb_seq;
	out->hs_good = hb->hb_good;
	out->hs_bad = hb->hb_bad;
	out->hs_missed = hb->hb_missed;
	out->hs_app_state = hb->hb_app;
	if (!hb->hb_contact) {
		out->hs_state = HVS_IC_HB_NO_CONTACT;
		out->hs_since_reply_ns = UINT64_MAX;
		return 0;
	}
	out->hs_since_reply_ns = now - hb->hb_last_good_ns;
	out->hs_state = out->hs_since_reply_ns > ic->ic_cfg.ic_heartbeat_lost_ns
			? HVS_IC_HB_LOST : HVS_IC_HB_OK;
	return 0;
}
