/*
 * host/vsp/ic_host_priv.h - private state of the host IC VSPs
 * (ic_host.c: framework; ic_heartbeat.c, ic_shutdown.c, ic_timesync.c,
 * ic_kvp.c: the services).
 *
 * Trust: hvs_chan_recv() copies each guest packet into d_rx (the one
 * copy-in); ich_* parse from that copy only, with their own parsers
 * (nothing is shared with the guest drivers but hv/icmsg.h).
 */
#ifndef HVS_IC_HOST_PRIV_H
#define HVS_IC_HOST_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/log.h"
#include "host/vsp/ic_host.h"
#include "hv/guid.h"
#include "hv/icmsg.h"

struct hvs_channel;
struct hvs_loop_timer;
struct hvs_jw;

#define ICH_MAX_MSG	16384u		/* largest IC message we build */
#define ICH_NS		1000000000ull

struct ich_ver {
	uint16_t major;
	uint16_t minor;
};

struct ich_dev;

/* A service plugged into the framework. */
struct ich_ops {
	const char *o_name;
	struct hv_guid o_class;
	uint16_t o_msgtype;
	/* Negotiation succeeded: start (may call ich_request). */
	void (*o_negotiated)(struct ich_dev *d);
	/* The answer to our service request: msg[0..len) with a checked
	 * header (len = 28 + icmsgsize), status = its IC status. */
	void (*o_reply)(struct ich_dev *d, const uint8_t *msg, uint32_t len,
			uint32_t status);
	/* Our service request failed: -ETIMEDOUT, -ENODEV, -EPROTO. */
	void (*o_failed)(struct ich_dev *d, int err);
	/* Nothing outstanding and negotiated: send something if due. */
	void (*o_idle)(struct ich_dev *d, uint64_t now);
	/* The channel closed. */
	void (*o_closed)(struct ich_dev *d);
};

enum ich_out {
	ICH_OUT_NONE = 0,
	ICH_OUT_NEGOTIATE,
	ICH_OUT_SERVICE,
	ICH_OUT_RAW,
};

struct ich_dev {
	struct hvs_ic *d_ic;
	enum hvs_ic_svc d_svc;
	const struct ich_ops *d_ops;
	bool d_registered;
	bool d_destroyed;

	struct hvs_channel *d_ch;	/* NULL while closed */
	enum hvs_ic_neg d_neg;
	enum hvs_ic_gen d_gen;		/* resolved at open */
	struct ich_ver d_fw, d_msg;	/* negotiated */

	/* The one outstanding request. */
	enum ich_out d_out;
	bool d_out_unsent;		/* ring was full: resend d_tx */
	uint64_t d_out_tid;
	uint16_t d_out_type;
	uint64_t d_out_sent_ns;
	uint64_t d_next_tid;
	uint8_t *d_tx;			/* ICH_MAX_MSG */
	uint32_t d_txlen;

	uint8_t *d_rx;			/* in-ring max packet */
	uint32_t d_rxlen;

	/* A raw request (hvs_ic_send_raw) waiting to go. */
	bool d_raw_queued;
	uint8_t *d_raw;
	uint32_t d_rawlen;
	hvs_ic_raw_fn *d_raw_cb;
	void *d_raw_arg;

	struct hvs_ic_svc_status d_st;
};

/* Heartbeat host state. */
struct ich_hb {
	uint64_t hb_seq;		/* last sent */
	uint64_t hb_next_ns;
	bool hb_contact;
	uint64_t hb_last_good_ns;
	uint64_t hb_good, hb_bad, hb_missed;
	uint32_t hb_app;
};

/* Shutdown host state. */
struct ich_sd {
	enum hvs_ic_sd_state sd_state;
	uint32_t sd_flags;
	uint32_t sd_guest_status;
	uint64_t sd_req_ns;
	uint64_t sd_deadline_ns;	/* absolute, 0 = none */
	struct hvs_loop_timer *sd_timer;
	bool sd_to_send;		/* built in sd_msg, not yet sent */
	uint8_t *sd_msg;		/* sizeof(struct ic_shutdown) */
	uint32_t sd_msglen;
	hvs_ic_done_fn *sd_done;
	void *sd_done_arg;
};

/* Time sync host state. */
struct ich_ts {
	uint64_t ts_next_ns;
	bool ts_sync_next;		/* the next message is a SYNC */
	bool ts_out_sync;		/* the outstanding one is */
	uint64_t ts_syncs, ts_samples, ts_refused;
	uint64_t ts_last_rtt_ns;
	bool ts_off_valid;
	int64_t ts_off_ns;
	uint64_t ts_off_err_ns;
	uint64_t ts_off_at_ns;
};

/* KVP host state (ic_kvp.c). */
struct ich_kvp;

struct hvs_ic {
	struct hvs_vmbus *ic_srv;
	struct hvs_ic_config ic_cfg;
	char ic_vm[65];
	struct ich_dev ic_dev[HVS_IC_NSVC];
	unsigned ic_refs;		/* devices not yet destroyed */
	struct hvs_loop_timer *ic_tick;
	struct hvs_ratelimit ic_rl;
	atomic_uint_fast64_t ic_guest_errors;
	struct ich_hb ic_hb;
	struct ich_sd ic_sd;
	struct ich_ts ic_ts;
	struct ich_kvp *ic_kvp;
};

/* ---- ic_host.c ---- */

extern const struct ich_ops ich_heartbeat_ops;
extern const struct ich_ops ich_shutdown_ops;
extern const struct ich_ops ich_timesync_ops;
extern const struct ich_ops ich_kvp_ops;

uint64_t ich_now(void);
int64_t ich_host_utc_ns(struct hvs_ic *ic);
/* A guest-caused error: rate-limited warning, counted. */
void ich_bad(struct ich_dev *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Fill the 28-byte request header of a service message with `body` bytes
 * of body (negotiated versions, flags TRANSACTION|REQUEST).
 */
void ich_put_hdr(struct ich_dev *d, uint8_t *b, uint16_t type, uint32_t body);
/*
 * Send msg[0..len) (len <= ICH_MAX_MSG) as the service request: becomes
 * the outstanding request. 0, -EBUSY (one outstanding), -ENODEV (closed),
 * or the send error (then nothing is outstanding).
 */
int ich_request(struct ich_dev *d, const uint8_t *msg, uint32_t len);
/* Send whatever is due on every channel (after state changes). */
void ich_pump(struct hvs_ic *ic);
bool ich_ready(const struct ich_dev *d);	/* open and negotiated */

/* Little-endian helpers on byte buffers. */
static inline void ich_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void ich_put32(uint8_t *p, uint32_t v)
{
	ich_put16(p, (uint16_t)v);
	ich_put16(p + 2, (uint16_t)(v >> 16));
}
static inline void ich_put64(uint8_t *p, uint64_t v)
{
	ich_put32(p, (uint32_t)v);
	ich_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t ich_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t ich_get32(const uint8_t *p)
{
	return (uint32_t)ich_get16(p) | ((uint32_t)ich_get16(p + 2) << 16);
}
static inline uint64_t ich_get64(const uint8_t *p)
{
	return (uint64_t)ich_get32(p) | ((uint64_t)ich_get32(p + 4) << 32);
}

/* ---- services ---- */

void ich_hb_reset(struct hvs_ic *ic);
void ich_sd_partition_ended(struct hvs_ic *ic);
void ich_sd_fini(struct hvs_ic *ic);
int ich_kvp_init(struct hvs_ic *ic);
void ich_kvp_fini(struct hvs_ic *ic);
void ich_kvp_tick(struct hvs_ic *ic, uint64_t now);
int ich_kvp_describe(const struct hvs_ic *ic, struct hvs_jw *w);

#endif /* HVS_IC_HOST_PRIV_H */
