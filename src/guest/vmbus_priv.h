/*
 * src/guest/vmbus_priv.h - private state of the guest VMBus core: the bus,
 * its vCPUs, channels, devices, GPADLs and transaction tables, and the
 * functions the core's files share. Nothing here is public API.
 *
 * Locks (port locks; no-ops in a polled port without lock functions).
 * Order, outer first:  vc_lock -> ch_rx_lock -> vb_lock -> ch_lock.
 *   vc_lock     one vCPU's SynIC message slot processing.
 *   ch_tx_lock  the send ring (writers); taken alone.
 *   ch_rx_lock  the receive ring (reader side incl. mask/unmask).
 *   vb_lock     bus state: registry, channel states, GPADL table,
 *               control-message results; vb_wait waits on it.
 *   ch_lock     transaction slots and ch_wake_seq; ch_wait waits on it.
 * No lock is held across a hypercall, a port wait or a driver callback,
 * except that channel callbacks run with no core lock held at all.
 */
#ifndef VMBUS_GUEST_PRIV_H
#define VMBUS_GUEST_PRIV_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "hv/wire.h"
#include "vmbus/errno.h"
#include "vmbus/platform.h"
#include "vmbus/vmbus.h"

#include "ring.h"

#define VMBUS_RELID_LIMIT	2048u	/* SIEF flags per SINT */
#define VMBUS_GPADL_MAX		256u
#define VMBUS_DEFAULT_VECTOR	0x41u
#define VMBUS_DEFAULT_TIMEOUT	(5ull * 1000000000ull)
#define VMBUS_DEFAULT_CHANNELS	64u
#define VMBUS_MSG_BUDGET	64u	/* messages per ISR call */
#define VMBUS_CB_BUDGET		16u	/* callback rounds per event */
#define VMBUS_POST_RETRIES	100u
#define VMBUS_RING_MAX_BYTES	(64u * 1024 * 1024)	/* per direction */
#define VMBUS_GPADL_MAX_PFNS	8190u	/* range_buflen is u16 */
#define VMBUS_BUS_DEAD		0x80000000u	/* in vb_defer_live */
#define VMBUS_WAIT_SLICE_NS	(20ull * 1000000ull)	/* re-scan period */
#define VMBUS_LOG_INTERVAL_NS	(1000000000ull)
#define VMBUS_XACT_HDR_MAX	512u	/* completion header we can skip */

/* Project guest OS id (spec 1.3: open-source format, any non-zero value
 * works for a custom guest). OS type 0x7F: not Linux, not a BSD. */
#define VMBUS_GUEST_OS_TYPE	0x7Fu
#define VMBUS_GUEST_OS_VERSION	0x00010000u

/* One copied-in SynIC message (the single copy-in of the SIMP boundary). */
struct vmbus_msg {
	uint32_t m_len;				/* valid payload bytes, <= 240 */
	uint32_t m_type;			/* VMBUS_CHANMSG_* (from m_data) */
	uint32_t m_vp;				/* arrived on this vCPU */
	_Alignas(8) uint8_t m_data[HV_MESSAGE_PAYLOAD_MAX]; /* zero-padded */
};

struct vmbus_vcpu {
	struct hv_message_page     *vc_simp;	/* shared */
	struct hv_event_flags_page *vc_siefp;	/* shared */
	uint64_t vc_simp_pfn;
	uint64_t vc_siefp_pfn;
	/* SIMP and SIEFP programmed: stored (release) by set-up once both
	 * pages are live, loaded (acquire) by the ISR and the pollers before
	 * they touch them; see vmbus_vcpu_live(). */
	_Atomic bool vc_synic;
	vmbus_lock_t vc_lock;
};

static inline bool vmbus_vcpu_live(struct vmbus_vcpu *vc)
{
	return atomic_load_explicit(&vc->vc_synic, memory_order_acquire);
}

/*
 * Statistics counters. The ISR, vmbus_poll and threads all bump them, so
 * every counter is a lock-free 64-bit atomic updated with a relaxed add and
 * read with a relaxed load, one at a time: a snapshot is not a consistent
 * cut across counters, and need not be. The private halves of the public
 * struct vmbus_stats / struct vmbus_chan_stats, field for field.
 */
typedef _Atomic uint64_t vmbus_counter_t;

static inline void vmbus_count(vmbus_counter_t *c, uint64_t n)
{
	(void)atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t vmbus_counter_get(vmbus_counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

struct vmbus_bus_counters {
	vmbus_counter_t bc_messages;
	vmbus_counter_t bc_bad_messages;
	vmbus_counter_t bc_offers;
	vmbus_counter_t bc_bad_offers;
	vmbus_counter_t bc_rescinds;
	vmbus_counter_t bc_post_retries;
	vmbus_counter_t bc_events;
	vmbus_counter_t bc_spurious_events;
	vmbus_counter_t bc_leaked_pages;
	vmbus_counter_t bc_gpadl_failures;
};

struct vmbus_chan_counters {
	vmbus_counter_t cc_tx_packets;
	vmbus_counter_t cc_tx_bytes;
	vmbus_counter_t cc_tx_full;
	vmbus_counter_t cc_rx_packets;
	vmbus_counter_t cc_rx_bytes;
	vmbus_counter_t cc_proto_errors;
	vmbus_counter_t cc_unknown_packets;
	vmbus_counter_t cc_bad_completions;
	vmbus_counter_t cc_signals;
	vmbus_counter_t cc_interrupts;
};

struct vmbus_gpadl {
	uint32_t gl_handle;			/* 0 = free entry */
	uint32_t gl_relid;
	uint32_t gl_npages;
	uint32_t gl_status;			/* GPADL_CREATED status */
	int      gl_state;
#define VMBUS_GPADL_FREE	0
#define VMBUS_GPADL_CREATING	1
#define VMBUS_GPADL_CREATED	2
#define VMBUS_GPADL_FAILED	3
#define VMBUS_GPADL_TEARING	4
#define VMBUS_GPADL_TORNDOWN	5
	struct vmbus_channel *gl_chan;
};

struct vmbus_xact {
	struct vmbus_xact_tbl *xa_tbl;
	uint32_t xa_slot;
	uint32_t xa_gen;			/* 1..0xFFFF_FFFF_FFFF (48 bits) */
	int      xa_state;
#define VMBUS_XACT_FREE		0
#define VMBUS_XACT_HELD		1	/* got, not yet active */
#define VMBUS_XACT_ACTIVE	2	/* waiting for a completion */
#define VMBUS_XACT_DONE		3	/* response copied */
#define VMBUS_XACT_FAILED	4	/* orphaned / broken: xa_error */
	int      xa_error;
	uint32_t xa_resp_len;
	bool     xa_truncated;
	uint8_t *xa_req;			/* req_max bytes */
	uint8_t *xa_resp;			/* resp_max bytes */
};

struct vmbus_xact_tbl {
	struct vmbus_channel *xt_chan;
	uint32_t xt_nslots;
	uint32_t xt_req_max;
	uint32_t xt_resp_max;
	uint8_t *xt_scratch;			/* HDR_MAX + resp_max, rx lock */
	size_t   xt_alloc_bytes;
	struct vmbus_xact xt_slot[];
};

struct vmbus_device {
	struct vmbus_channel *dv_chan;
	const struct vmbus_driver *dv_drv;
	void *dv_softc;
	bool  dv_attached;
	bool  dv_attaching;			/* in drv_attach (vb_lock) */
	bool  dv_detaching;			/* in drv_detach (vb_lock) */
	uint32_t dv_busy;			/* driver calls inside (vb_lock) */
	bool  dv_probed;			/* no driver wanted it yet */
};

struct vmbus_channel {
	struct vmbus *ch_bus;
	bool     ch_in_use;			/* pool slot taken (vb_lock) */
	_Atomic int ch_state;			/* enum vmbus_chan_state */

	/* offer (validated private copy) */
	struct hv_guid ch_class;
	struct hv_guid ch_instance;
	uint32_t ch_relid;
	uint32_t ch_connid;
	uint16_t ch_sub_index;
	uint16_t ch_chn_flags;
	uint8_t  ch_monitor_id;
	bool     ch_dedicated;
	uint8_t  ch_user_defined[VMBUS_OFFER_USER_DEFINED_SIZE];

	struct vmbus_channel *ch_primary;	/* NULL for a primary */
	uint32_t ch_refs;			/* 1 + subchannels (vb_lock) */
	struct vmbus_device ch_dev;

	/* open state */
	void    *ch_ring_va;			/* both rings, NULL if none */
	uint32_t ch_ring_pages;
	uint32_t ch_tx_bytes;
	uint32_t ch_rx_bytes;
	uint32_t ch_ring_gpadl;
	uint32_t ch_target_vp;			/* while open (vb_lock) */
	uint32_t ch_want_vp;			/* for the next open (vb_lock) */
#define VMBUS_VP_DEFAULT	UINT32_MAX	/* the connect vCPU */
	bool     ch_modify_busy;		/* MODIFYCHANNEL out (vb_lock) */
	bool     ch_modify_done;		/* its response came (vb_lock) */
	uint32_t ch_modify_status;
	uint32_t ch_openid;
	bool     ch_open_done;
	uint32_t ch_open_status;
	struct vmbus_ring ch_tx;		/* we write */
	/* NOTE: senders and the receiver run on different CPUs; without the
	 * gap the end of ch_tx and the start of ch_rx shared a cache line. */
	uint8_t ch_ring_gap[64];
	struct vmbus_ring ch_rx;		/* we read */
	bool     ch_tx_pending;			/* pending_send_sz set */

	vmbus_chan_callback_t *ch_cb;
	void    *ch_cb_arg;
	_Atomic bool ch_cb_enabled;		/* changed under vb_lock */
	_Atomic bool ch_cb_busy;		/* set under vb_lock */
	_Atomic bool ch_cb_again;

	vmbus_lock_t ch_lock;
	vmbus_lock_t ch_tx_lock;
	vmbus_lock_t ch_rx_lock;
	vmbus_wait_t ch_wait;
	uint64_t ch_wake_seq;			/* ch_lock */

	struct vmbus_xact_tbl *ch_xact;

	vmbus_chan_rescind_fn *ch_rescind_cb;	/* (vb_lock) */
	void    *ch_rescind_arg;
	/* Rescinded and released, its slot kept for the bound driver that
	 * may still name it (no rescind callback): recycled at detach. */
	bool     ch_zombie;			/* (vb_lock) */
	/* Rescinded while its driver's attach ran: the rest of the rescind
	 * (detach, close, RELID_RELEASED) waits for the attach to return. */
	bool     ch_rescind_deferred;		/* (vb_lock) */

	uint32_t ch_work;			/* deferred work (vb_lock) */
#define VMBUS_CHWORK_ATTACH	0x1u
#define VMBUS_CHWORK_RESCIND	0x2u
#define VMBUS_CHWORK_DISPATCH	0x4u	/* callback ran out of budget */
	_Atomic uint64_t ch_log_next_ns;	/* rate limit */
	struct vmbus_chan_counters ch_ctr;
	char     ch_name[40];
};

struct vmbus {
	const struct vmbus_platform *vb_plat;
	struct vmbus_config vb_cfg;
	_Atomic int vb_log_level;

	vmbus_lock_t vb_lock;
	vmbus_wait_t vb_wait;

	uint32_t vb_nvcpu;
	struct vmbus_vcpu *vb_vcpu;
	void    *vb_hcpage;
	void    *vb_intr_page;			/* struct hv_interrupt_page */
	void    *vb_monitor[2];
	uint64_t vb_hcpage_pfn;
	uint64_t vb_intr_pfn;
	uint64_t vb_monitor_pfn[2];
	bool     vb_hc_enabled;
	bool     vb_irq;			/* irq_attach succeeded */
	uint8_t  vb_vector;

	int      vb_conn;
#define VMBUS_CONN_NONE		0
#define VMBUS_CONN_CONTACTING	1
#define VMBUS_CONN_CONNECTED	2
#define VMBUS_CONN_UNLOADING	3
	_Atomic uint32_t vb_version;
	uint32_t vb_msg_connid;
	uint32_t vb_target_vcpu;

	/* control-message results (vb_lock) */
	bool     vb_vresp_ready;
	struct vmbus_chanmsg_version_response vb_vresp;
	bool     vb_offers_done;
	bool     vb_unload_done;
	uint32_t vb_openid_seq;

	struct vmbus_channel **vb_relid;	/* [vb_max_relid] */
	uint32_t vb_max_relid;
	struct vmbus_channel *vb_chans;	/* pool */
	uint32_t vb_nchans;
	struct vmbus_gpadl vb_gpadl[VMBUS_GPADL_MAX];
	uint32_t vb_next_gpadl;

	const struct vmbus_driver *vb_drivers[VMBUS_MAX_DRIVERS];
	uint32_t vb_ndrivers;

	_Atomic bool vb_dispatch_pending;	/* a VMBUS_CHWORK_DISPATCH set */
	_Atomic bool vb_work_pending;
	_Atomic bool vb_work_scheduled;
	_Atomic int  vb_poll_depth;
	_Atomic bool vb_in_work;	/* the work token (vmbus_run_work) */
	/* Calls of vmbus_deferred_work handed to the port and not yet
	 * finished, plus VMBUS_BUS_DEAD once vmbus_destroy ran: the bus is
	 * freed by whichever of vmbus_destroy and the last of those calls
	 * comes last. Atomic, not vb_lock: scheduling runs under it. */
	_Atomic uint32_t vb_defer_live;

	/* The port said the partition is gone (-VMBUS_ENODEV from a wait
	 * or a hypercall): latched until the next vmbus_connect; every wait
	 * then ends at once with -VMBUS_ENODEV. */
	_Atomic bool vb_gone;

	_Atomic uint64_t vb_log_next_ns;	/* rate limit */
	struct vmbus_bus_counters vb_ctr;
};

/* ---- port wrappers (vmbus.c) ---- */
void vmbus_lock(struct vmbus *vb, vmbus_lock_t *l);
void vmbus_unlock(struct vmbus *vb, vmbus_lock_t *l);
void vmbus_lock_init(struct vmbus *vb, vmbus_lock_t *l);
void vmbus_lock_fini(struct vmbus *vb, vmbus_lock_t *l);
void vmbus_wait_init(struct vmbus *vb, vmbus_wait_t *w);
void vmbus_wait_fini(struct vmbus *vb, vmbus_wait_t *w);
uint64_t vmbus_now(struct vmbus *vb);
uint64_t vmbus_deadline(struct vmbus *vb, uint64_t timeout_ns);
bool vmbus_polled(const struct vmbus *vb);
void vmbus_log(struct vmbus *vb, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool vmbus_ratelimit(struct vmbus *vb, _Atomic uint64_t *next_ns);
/* Something from the host was dropped: count it in *ctr, and log a warning
 * at most once per VMBUS_LOG_INTERVAL_NS of the limiter *next_ns. Any. */
void vmbus_drop(struct vmbus *vb, vmbus_counter_t *ctr,
    _Atomic uint64_t *next_ns, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define VMBUS_DPRINTF(vb, ...) do { if (0) vmbus_log(vb, VMBUS_LOG_DEBUG, __VA_ARGS__); } while (0)

/*
 * The partition is gone (the port answered -VMBUS_ENODEV; `what` names the
 * call): latch it, log it once, and wake every bus and channel waiter so
 * each ends with -VMBUS_ENODEV. Callable with no core lock held or with
 * one ch_rx_lock held (lock order: it takes vb_lock, then ch_lock).
 */
void vmbus_set_gone(struct vmbus *vb, const char *what);
static inline bool vmbus_gone(struct vmbus *vb)
{
	return atomic_load_explicit(&vb->vb_gone, memory_order_acquire);
}

/*
 * Bounded wait on the bus: returns 0 once cond(vb, arg) holds (checked with
 * vb_lock held), -VMBUS_ETIMEDOUT at the deadline, -VMBUS_ENODEV at once
 * when the partition is gone (vmbus_set_gone). Processes messages and
 * events itself in a polled port, and every VMBUS_WAIT_SLICE_NS otherwise
 * (a lost interrupt costs latency, never a hang).
 */
typedef bool vmbus_cond_fn(struct vmbus *vb, void *arg);
int vmbus_bus_wait(struct vmbus *vb, vmbus_cond_fn *cond, void *arg,
    uint64_t deadline);
void vmbus_bus_wakeup(struct vmbus *vb);	/* caller holds vb_lock */
/* Messages, events and channels left by their budget; no deferred work. */
void vmbus_poll_nested(struct vmbus *vb);
void vmbus_schedule_work(struct vmbus *vb);

/* ---- hypervisor (hv.c) ---- */
int  vmbus_hv_setup(struct vmbus *vb);
void vmbus_hv_teardown(struct vmbus *vb, bool leak_shared);
/* 0, -VMBUS_EIO (*hv_status set), -VMBUS_ENODEV, -VMBUS_ETIMEDOUT */
int  vmbus_hv_post(struct vmbus *vb, uint32_t connid, const void *msg,
    uint32_t len, uint16_t *hv_status);
int  vmbus_post(struct vmbus *vb, const void *msg, uint32_t len);
void vmbus_hv_signal(struct vmbus *vb, uint32_t connid);

/* ---- messages (msg.c) ---- */
void vmbus_msg_drain(struct vmbus *vb, uint32_t vp);
void vmbus_event_drain(struct vmbus *vb, uint32_t vp);

/* ---- connection (conn.c) ---- */
int  vmbus_negotiate(struct vmbus *vb);
int  vmbus_request_offers(struct vmbus *vb);
int  vmbus_send_unload(struct vmbus *vb);

/* ---- channels (chan.c) ---- */
bool vmbus_chan_transition(struct vmbus_channel *ch, enum vmbus_chan_state to);
void vmbus_chan_wakeup(struct vmbus_channel *ch);
/*
 * Bounded wait on a channel: returns check(ch, arg) once that is not
 * VMBUS_WAIT_AGAIN, -VMBUS_ETIMEDOUT at the deadline, or -VMBUS_ENODEV as
 * soon as the partition is gone (vmbus_set_gone). check runs with no
 * core lock held. Between checks the caller sleeps on ch_wait until
 * vmbus_chan_wakeup (at most VMBUS_WAIT_SLICE_NS, then it scans for
 * messages and events itself), or in a polled port processes them.
 */
#define VMBUS_WAIT_AGAIN	1
typedef int vmbus_chan_check_fn(struct vmbus_channel *ch, void *arg);
int  vmbus_chan_wait_cond(struct vmbus_channel *ch, vmbus_chan_check_fn *check,
    void *arg, uint64_t deadline);
/* vmbus_chan_set_broken with the caller holding ch_rx_lock or not. */
void vmbus_chan_break(struct vmbus_channel *ch, const char *why,
    bool rx_locked);
void vmbus_chan_dispatch(struct vmbus *vb, uint32_t relid);
/* Run the channels whose callback ran out of budget with packets left
 * (vmbus_poll_nested; never from the ISR). */
void vmbus_chan_redispatch_run(struct vmbus *vb);
void vmbus_chan_signal(struct vmbus_channel *ch);
void vmbus_handle_offer(struct vmbus *vb, const struct vmbus_msg *m);
void vmbus_handle_rescind(struct vmbus *vb, const struct vmbus_msg *m);
void vmbus_handle_open_result(struct vmbus *vb, const struct vmbus_msg *m);
void vmbus_handle_modify_response(struct vmbus *vb, const struct vmbus_msg *m);
void vmbus_run_work(struct vmbus *vb);
/*
 * Take the work token for the caller (vmbus_unload): wait, bounded, for a
 * pass of deferred work running elsewhere to end, then run what is queued
 * here. While held, deferred work stays queued (the ISR still dispatches
 * packets, and waiters still poll). false: not taken within the bound
 * (logged; the caller goes on without it).
 */
bool vmbus_work_hold(struct vmbus *vb);
void vmbus_work_release(struct vmbus *vb);
void vmbus_attach_drivers(struct vmbus *vb);
void vmbus_detach_all(struct vmbus *vb);
struct vmbus_channel *vmbus_relid_lookup(struct vmbus *vb, uint32_t relid);
void vmbus_chan_free_all(struct vmbus *vb);

/* ---- GPADL (gpadl.c) ---- */
int  vmbus_gpadl_make(struct vmbus_channel *ch, const uint64_t *pfns,
    uint32_t npfn, uint32_t *gpadl);
int  vmbus_gpadl_teardown(struct vmbus_channel *ch, uint32_t gpadl);
void vmbus_handle_gpadl_created(struct vmbus *vb, const struct vmbus_msg *m);
void vmbus_handle_gpadl_torndown(struct vmbus *vb, const struct vmbus_msg *m);

/* ---- channel I/O (chan_io.c) ---- */
int  vmbus_chan_rx_pending(struct vmbus_channel *ch);
void vmbus_chan_rx_check(struct vmbus_channel *ch);	/* ch_rx_lock held */
int  vmbus_chan_recv_discard(struct vmbus_channel *ch);

/* ---- transactions (xact.c) ---- */
/* Called under ch_rx_lock with a validated COMP packet; true = consumed. */
bool vmbus_xact_complete(struct vmbus_channel *ch, uint64_t trans_id,
    uint32_t hdr_len, uint32_t payload_len);
void vmbus_xact_fail_all(struct vmbus_channel *ch, int error);
void vmbus_xact_free(struct vmbus_channel *ch);

#endif /* VMBUS_GUEST_PRIV_H */
