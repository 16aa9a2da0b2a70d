/*
 * guest/ic/heartbeat.c - the heartbeat IC (spec/vmbus-devices.md 4.5):
 * answer each host heartbeat with its sequence number plus one.
 *
 * The body after seq_num is a conflict (L/F: 32 reserved bytes; V: an
 * application state word then reserved). We echo the host's bytes and, only
 * when the OS set an application state and the message carries the word,
 * write it there (V's reading).
 */
#include "ic_priv.h"

/* hv/icmsg.h's list initialises our host-order version struct. */
static const struct ic_ver hb_versions[] = IC_HEARTBEAT_GUEST_VERSIONS;
#define HB_NVERS (sizeof(hb_versions) / sizeof(hb_versions[0]))

static uint32_t hb_handle(struct ic_svc *svc, struct ic_msg *m)
{
	struct ic_services *ics = svc->sv_ics;
	uint32_t app;
	uint64_t seq;

	if (IC_HDR_SIZE + m->im_body_len < IC_HEARTBEAT_MINLEN) {
		ic_log_bad(svc, "ic-heartbeat: %u-byte body is shorter than "
		    "seq_num", m->im_body_len);
		IC_COUNT(svc, is_malformed);
		ic_msg_set_status(m, IC_STATUS_E_FAIL);
		return IC_HDR_SIZE + m->im_body_len;
	}
	seq = hv_get_le64(m->im_buf + IC_HDR_SIZE);
	/* The sequence wraps like any u64 counter would. */
	hv_put_le64(m->im_buf + IC_HDR_SIZE, seq + 1);
	app = atomic_load(&ics->ics_hb.hb_app_state);
	if (app != 0 && IC_HDR_SIZE + m->im_body_len >= IC_HEARTBEAT_MINLEN + 4u)
		hv_put_le32(m->im_buf + IC_HEARTBEAT_MINLEN, app);
	atomic_store(&ics->ics_hb.hb_last_seq, seq);
	ic_msg_set_status(m, IC_STATUS_S_OK);
	return IC_HDR_SIZE + m->im_body_len;
}

const struct ic_svc_ops ic_heartbeat_ops = {
	.so_name = "heartbeat",
	.so_class = HV_GUID_HEARTBEAT_INIT,
	.so_msgtype = IC_MSGTYPE_HEARTBEAT,
	.so_versions = hb_versions,
	.so_nversions = HB_NVERS,
	.so_handle = hb_handle,
};

void ic_heartbeat_set_app_state(struct ic_services *ics, uint32_t state)
{
	if (ics)
		atomic_store(&ics->ics_hb.hb_app_state, state);
}

uint64_t ic_heartbeat_last_seq(struct ic_services *ics)
{
	return ics ? atomic_load(&ics->ics_hb.hb_last_seq) : 0;
}
