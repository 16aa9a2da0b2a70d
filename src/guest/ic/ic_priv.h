/*
 * guest/ic/ic_priv.h - private state of the guest integration services
 * (ic_common.c and one file per service).
 *
 * Trust boundary: the only copy-in is vmbus_chan_recv() into sv_rx, the
 * service's private receive buffer; ic_common.c validates the 28-byte
 * header from that copy, each service validates its body from it too, and
 * anything kept past the callback (KVP request, time sample) is copied
 * again into the service's own state first.
 *
 * Freestanding: only compiler headers, hv/ and vmbus/ headers.
 */
#ifndef VMBUS_GUEST_IC_PRIV_H
#define VMBUS_GUEST_IC_PRIV_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/guid.h"
#include "hv/icmsg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/ic.h"
#include "vmbus/platform.h"
#include "vmbus/vmbus.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

/*
 * Receive buffer of each service: larger than any packet a 16 KiB IC ring
 * (12 KiB of data) can hold, so vmbus_chan_recv never answers -ENOBUFS and
 * leaves a packet stuck in the ring.
 */
#define IC_RX_BUF_SIZE		IC_MAX_MSG_SIZE
/* Packets handled per callback before yielding back to the core. */
#define IC_CB_BUDGET		64u
/* Bound of ic_services_free's wait for queued deferred work. */
#define IC_FREE_WAIT_NS		(5ull * 1000 * 1000 * 1000)

/* A version in host byte order (the wire struct ic_version is LE). */
struct ic_ver {
	uint16_t v_major;
	uint16_t v_minor;
};

/* One received IC message: a view into sv_rx, header already validated. */
struct ic_msg {
	uint8_t *im_buf;		/* payload start (pipe header), private */
	uint32_t im_len;		/* payload bytes received (padded) */
	uint32_t im_body_len;		/* ic_msgsize: IC_HDR_SIZE + it <= im_len */
	uint16_t im_type;		/* IC_MSGTYPE_* */
	uint64_t im_trans_id;		/* VMBus transaction id, echoed */
};

struct ic_svc;

/* What a service plugs into the framework. */
struct ic_svc_ops {
	const char *so_name;		/* "heartbeat", ... (logs, driver) */
	struct hv_guid so_class;
	uint16_t so_msgtype;		/* IC_MSGTYPE_* it serves */
	/* Service versions we speak, any order (the highest common wins). */
	const struct ic_ver *so_versions;
	uint32_t so_nversions;
	/*
	 * A negotiated service message (type so_msgtype) in the channel
	 * callback: never sleeps. Edit the message in place (body, status
	 * with ic_msg_set_status) and return the reply length (>= IC_HDR_SIZE,
	 * <= im_len), or 0 when the service answers later itself.
	 */
	uint32_t (*so_handle)(struct ic_svc *svc, struct ic_msg *m);
	/* Optional: the channel opened / is about to close (thread). */
	void (*so_opened)(struct ic_svc *svc);
	void (*so_closing)(struct ic_svc *svc);
};

/* Deferred work: scheduled at most once at a time. */
struct ic_work {
	struct ic_services *wk_ics;
	vmbus_work_fn *wk_fn;
	void *wk_arg;
	atomic_bool wk_scheduled;
};

struct ic_svc {
	struct ic_services *sv_ics;
	const struct ic_svc_ops *sv_ops;
	enum ic_service sv_id;
	bool sv_enabled;		/* selected in icc_services */
	bool sv_registered;		/* sv_drv handed to the core */
	/* NOTE: the core hands sv_drv back from vmbus_device_driver(); the
	 * service is found from it by offset (ic_svc_of_dev). */
	struct vmbus_driver sv_drv;

	vmbus_lock_t sv_lock;		/* guards everything below */
	struct vmbus_device *sv_dev;	/* bound device, NULL if none */
	struct vmbus_channel *sv_ch;
	bool sv_open;			/* channel open: replies may be sent */
	bool sv_negotiated;
	struct ic_ver sv_fw;		/* negotiated framework version */
	struct ic_ver sv_msg;		/* negotiated service version */
	struct ic_stats sv_stats;	/* counters (versions filled on read) */
	uint64_t sv_logged;		/* rate limit of error lines */

	uint8_t *sv_rx;			/* IC_RX_BUF_SIZE, callback only */
	/* One drainer at a time: the core's callback and our own kick after
	 * open (ic_common.c) may meet. */
	atomic_bool sv_cb_busy;
	atomic_bool sv_cb_again;
};

/* Heartbeat state. */
struct ic_hb {
	_Atomic uint32_t hb_app_state;
	_Atomic uint64_t hb_last_seq;
};

/* Shutdown state (under the shutdown service's sv_lock). */
struct ic_sd {
	struct ic_shutdown_status sd_status;
	bool sd_pending;		/* an action waits for the work */
	enum ic_power_action sd_action;
	struct ic_work sd_work;
};

/* Time sync state (under the time sync service's sv_lock). */
struct ic_ts {
	struct ic_timesync_status ts_status;
	bool ts_pending;		/* a sample waits for the work */
	bool ts_v4;			/* sample format */
	uint8_t ts_flags;		/* IC_TIMESYNC_FLAG_* */
	uint64_t ts_parent_time;	/* 100 ns since 1601 */
	uint64_t ts_ref_time;		/* v4: reference count at parent_time */
	uint64_t ts_recv_ns;		/* port clock when received */
	/* Estimate of the guest wall clock (unix ns) for the range check,
	 * refreshed in thread context: wall = ts_wall_base + now - ts_mono_base. */
	int64_t ts_wall_base;
	uint64_t ts_mono_base;
	struct ic_work ts_work;
};

struct ic_kvp;			/* kvp.c */

struct ic_services {
	const struct vmbus_platform *ics_plat;
	struct vmbus *ics_vb;
	struct ic_config ics_cfg;
	struct ic_svc ics_svc[IC_SVC_COUNT];
	atomic_uint ics_works_pending;	/* deferred works queued or running */
	struct ic_hb ics_hb;
	struct ic_sd ics_sd;
	struct ic_ts ics_ts;
	struct ic_kvp *ics_kvp;
};

/* ---- ic_common.c ---- */

extern const struct ic_svc_ops ic_heartbeat_ops;
extern const struct ic_svc_ops ic_shutdown_ops;
extern const struct ic_svc_ops ic_timesync_ops;
extern const struct ic_svc_ops ic_kvp_ops;

void ic_lock(struct ic_svc *svc);
void ic_unlock(struct ic_svc *svc);
void *ic_zalloc(struct ic_services *ics, size_t bytes);
void ic_free(struct ic_services *ics, void *p, size_t bytes);
uint64_t ic_now_ns(struct ic_services *ics);

void ic_vlog(struct ic_services *ics, int level, const char *fmt, va_list ap);
void ic_log(struct ic_services *ics, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An error caused by the host: logged (rate-limited per service). */
void ic_log_bad(struct ic_svc *svc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Counter helpers (take sv_lock). */
#define IC_COUNT(svc, field) ic_count((svc), offsetof(struct ic_stats, field))
void ic_count(struct ic_svc *svc, size_t field_offset);

void ic_msg_set_status(struct ic_msg *m, uint32_t status);
/* Send m's first len bytes back as the reply (flags 0x5, sizes set). Any.
 * Returns 0 or the vmbus_chan_send error (counted). Caller must not hold
 * sv_lock. */
int ic_reply(struct ic_svc *svc, struct ic_msg *m, uint32_t len);

void ic_work_init(struct ic_work *w, struct ic_services *ics,
    vmbus_work_fn *fn, void *arg);
/* Run w in thread context soon (or inline in a polled port). Any. */
void ic_work_schedule(struct ic_svc *svc, struct ic_work *w);

/* Versions as values. */
static inline int ic_ver_cmp(struct ic_ver a, struct ic_ver b)
{
	if (a.v_major != b.v_major)
		return a.v_major < b.v_major ? -1 : 1;
	if (a.v_minor != b.v_minor)
		return a.v_minor < b.v_minor ? -1 : 1;
	return 0;
}

/* Negotiated service version of svc, {0,0} when none. */
struct ic_ver ic_svc_version(struct ic_svc *svc);

/* ---- kvp.c ---- */

int ic_kvp_init(struct ic_services *ics);
void ic_kvp_fini(struct ic_services *ics);

/* ---- timesync.c ---- */

void ic_timesync_init(struct ic_services *ics);

/* ---- shutdown.c ---- */

void ic_shutdown_init(struct ic_services *ics);

#endif /* VMBUS_GUEST_IC_PRIV_H */
