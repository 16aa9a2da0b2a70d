/*
 * src/guest/storvsc/storvsc_priv.h - private state of the guest StorVSC
 * driver: the driver object, controllers, queues (one per channel) with
 * their transaction slots and bounce pools, disks, and the functions the
 * driver's files share. Nothing here is public API.
 *
 * Locks (port locks; no-ops in a polled port without lock functions).
 * Order, outer first:  sv_lock -> q_lock -> ct_lock.
 *   sv_lock   topology: controller list, disk lists, reference counts,
 *             statistics of freed controllers.
 *   q_lock    one queue: its slots, pending list, bounce pool, counters.
 *             Sends to the channel happen under it (the core's send lock
 *             nests inside).
 *   ct_lock   a controller's wait object (ct_wait) and the flags the
 *             synchronous waiters look at.
 * Completion callbacks of requests run with no driver lock held.
 */
#ifndef STORVSC_PRIV_H
#define STORVSC_PRIV_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/guid.h"
#include "hv/scsi.h"
#include "hv/vmbus_pkt.h"
#include "hv/vstor.h"
#include "hv/wire.h"
#include "vmbus/errno.h"
#include "vmbus/platform.h"
#include "vmbus/storvsc.h"
#include "vmbus/vmbus.h"

#define SV_PAGE_SIZE		4096u
#define SV_DEFAULT_RING		STORVSC_RING_SIZE	/* 128 KiB (spec 3.9) */
#define SV_DEFAULT_BOUNCE	64u	/* pages per queue */
#define SV_MIN_BOUNCE		32u
#define SV_BOUNCE_CHUNK_PAGES	32u	/* pages one bounced SRB may use */
#define SV_DEFAULT_INIT_NS	(5ull * 1000000000ull)	/* spec 3.5 (L) */
#define SV_DEFAULT_IO_NS	(60ull * 1000000000ull)
#define SV_SUBCHAN_NS		(10ull * 1000000000ull)	/* spec 3.5 (L) */
#define SV_WAIT_SLICE_NS	(20ull * 1000000ull)
#define SV_LOG_INTERVAL_NS	(1000000000ull)
#define SV_EXPIRE_INTERVAL_NS	(100ull * 1000000ull)
/* Host max_transfer_bytes clamps (hostile-host 18). */
#define SV_MAX_XFER_CAP		(1024u * 1024u)	/* our own limit per SRB */
#define SV_DEFAULT_XFER		(128u * 1024u)	/* host said 0: F's 128 KiB */
#define SV_MAX_XFER_PAGES	(SV_MAX_XFER_CAP / SV_PAGE_SIZE + 1u)
#define SV_RX_BUF		512u	/* largest VSTOR packet we accept */
#define SV_MAX_RETRIES		3u	/* unit attention / busy */
#define SV_MAX_DISKS		256u	/* per controller */
#define SV_UNMAP_MAX_DESC	255u	/* 8 + 16 * 255 fits one page */
#define SV_UNMAP_DEFAULT_BLOCKS	0x400000u	/* per descriptor, no VPD B0 */

struct storvsc;
struct storvsc_ctrl;
struct storvsc_queue;

/* A transaction slot: one SRB (or control request) in flight. */
struct storvsc_slot {
	uint32_t sl_state;
#define SV_SLOT_FREE		0
#define SV_SLOT_ACTIVE		1	/* sent, waiting for COMPLETE_IO */
#define SV_SLOT_RESEND		2	/* built, not sent (ring full / retry) */
#define SV_SLOT_QUARANTINE	3	/* timed out: never reused until the
					 * host completes it or the queue dies */
#define SV_SLOT_DONE		4	/* control response copied */
#define SV_SLOT_HELD		5	/* taken, being built (under q_lock) */
	uint32_t sl_kind;
#define SV_KIND_IO		1	/* a chunk of sl_io */
#define SV_KIND_CTRL		2	/* init / control request */
	uint64_t sl_gen;		/* generation, 1..2^48-1 */
	struct storvsc_io *sl_io;	/* SV_KIND_IO; NULL once abandoned */
	uint64_t sl_deadline;		/* now_ns bound of this send */
	/* SRB */
	uint8_t  sl_cdb[16];
	uint8_t  sl_cdb_len;
	uint8_t  sl_data_in;		/* VSTOR_DATA_* */
	uint8_t  sl_retries;
	bool     sl_direct;		/* data described in io_buf itself */
	uint32_t sl_len;		/* data bytes requested (0: none) */
	uint64_t sl_buf_off;		/* offset in io_buf */
	uint64_t sl_blocks;		/* blocks covered (stats, discard) */
	uint16_t sl_nbounce;
	uint16_t sl_bounce[SV_BOUNCE_CHUNK_PAGES];	/* pool page indexes */
	/* SV_KIND_CTRL */
	uint32_t sl_op;			/* VSTOR_OPERATION_* sent */
	uint32_t sl_req_len;		/* packet bytes sent */
	struct vstor_packet sl_req;	/* the request (control only) */
	_Atomic bool sl_done;		/* response copied (or sl_error) */
	int      sl_error;		/* 0 or why the response is missing */
	struct vstor_packet sl_resp;	/* private copy of the response */
	uint32_t sl_resp_len;
};

/* One queue = one channel (primary or subchannel). */
struct storvsc_queue {
	struct storvsc_ctrl *q_ctrl;
	struct vmbus_channel *q_chan;
	uint32_t q_index;
	/* identity of the channel when opened (recycled-slot guard) */
	uint32_t q_relid;
	uint16_t q_sub_index;
	_Atomic int q_state;
#define SV_Q_CLOSED		0
#define SV_Q_OPEN		1
#define SV_Q_BROKEN		2	/* protocol violation: no more I/O */
#define SV_Q_DEAD		3	/* channel closed or rescinded */
	vmbus_lock_t q_lock;
	struct storvsc_slot *q_slots;
	uint32_t q_nslots;
	uint32_t q_free_hint;		/* where to start looking */
	_Atomic uint32_t q_active;	/* slots not FREE */
	uint32_t q_resend;		/* slots in RESEND */
	_Atomic bool q_want_rescan;	/* set under q_lock, acted on after */
	/* pending requests (not yet fully issued), FIFO */
	struct storvsc_io *q_pend_head;
	struct storvsc_io *q_pend_tail;
	/* bounce pool: q_bounce_pages pages, one page_alloc */
	uint8_t  *q_bounce_va;
	uint64_t *q_bounce_pfn;
	uint64_t *q_bounce_map;		/* 1 = free */
	uint32_t q_bounce_pages;
	uint32_t q_bounce_free;
	_Atomic uint64_t q_next_expire;	/* now_ns of the next timeout scan */
	bool     q_leak;		/* memory may still be the host's */
	uint64_t q_log_next;
	struct storvsc_stats q_stats;
};

/* One logical unit. */
struct storvsc_disk {
	struct storvsc_ctrl *dk_ctrl;
	struct storvsc_disk *dk_next;	/* ct_disks list (sv_lock) */
	uint32_t dk_refs;		/* sv_lock; the list holds one */
	_Atomic bool dk_present;
	uint8_t  dk_path, dk_target, dk_lun;
	bool     dk_seen;		/* rescan mark */
	struct storvsc_disk_info dk_info;	/* sv_lock for updates */
	_Atomic uint32_t dk_block_size;	/* copies for the I/O path */
	_Atomic uint64_t dk_blocks;
};

/* One controller (VMBus device). */
struct storvsc_ctrl {
	struct storvsc *ct_sv;
	struct storvsc_ctrl *ct_next;	/* sv_ctrls list (sv_lock) */
	struct vmbus_device *ct_dev;
	struct vmbus_channel *ct_chan;	/* primary */
	struct hv_guid ct_instance;
	uint32_t ct_refs;		/* sv_lock: attached + disks */
	_Atomic int ct_state;
#define SV_CT_INIT		0
#define SV_CT_READY		1
#define SV_CT_DETACHING		2
#define SV_CT_GONE		3
	bool     ct_ide;
	uint8_t  ct_port;
	uint8_t  ct_ide_target;
	/* negotiated (spec 3.1) */
	uint16_t ct_version;
	bool     ct_negotiated;
	uint32_t ct_pkt_size;		/* 64 or 48 */
	uint32_t ct_srb_len;		/* 0x34 or 0x24 */
	uint32_t ct_sense_size;		/* 20 or 18 */
	/* properties (spec 3.3) */
	uint16_t ct_host_max_sub;
	uint32_t ct_host_flags;
	uint32_t ct_host_max_xfer;
	uint32_t ct_max_xfer;		/* clamped, bytes */
	/* queues */
	struct storvsc_queue *ct_q;	/* [STORVSC_MAX_QUEUES] */
	uint32_t ct_nq;
	uint32_t ct_depth;
	uint32_t ct_ring;
	_Atomic uint32_t ct_rr;		/* round-robin fallback */
	/* disks (sv_lock) */
	struct storvsc_disk *ct_disks;
	uint32_t ct_ndisks;
	/* waits */
	vmbus_lock_t ct_lock;
	vmbus_wait_t ct_wait;
	_Atomic uint32_t ct_waiters;	/* threads in sv_wait */
	/* rescan */
	_Atomic bool ct_rescan_pending;
	_Atomic bool ct_rescan_scheduled;
	_Atomic bool ct_rescan_running;
	_Atomic bool ct_refresh_pending;
	uint64_t ct_log_next;
};

struct storvsc {
	struct vmbus *sv_bus;
	const struct vmbus_platform *sv_plat;
	struct storvsc_config sv_cfg;
	struct vmbus_driver sv_drv_scsi;
	struct vmbus_driver sv_drv_ide;
	vmbus_lock_t sv_lock;
	struct storvsc_ctrl *sv_ctrls;	/* attach order */
	uint32_t sv_nctrl_alive;
	uint32_t sv_next_port;
	uint32_t sv_disk_refs;		/* external disk references */
	struct storvsc_stats sv_stats_dead;	/* freed controllers */
	uint64_t sv_log_next;
};

/* Private view of storvsc_io.io_private. */
struct storvsc_io_priv {
	struct storvsc_io *ip_next;	/* pending / completion list */
	struct storvsc_queue *ip_q;
	uint64_t ip_total;		/* bytes (READ/WRITE), blocks (DISCARD),
					 * commands (FLUSH/SCSI: 1) to issue */
	uint64_t ip_cursor;		/* issued so far, same unit */
	uint64_t ip_bytes;		/* transferred, summed */
	uint64_t ip_timeout;		/* ns per SRB */
	uint64_t ip_qdeadline;		/* bound of waiting in the queue */
	uint32_t ip_outstanding;	/* chunks in flight */
	uint32_t ip_chunk;		/* bytes per READ/WRITE SRB */
	uint32_t ip_block;		/* block size */
	uint32_t ip_magic;
#define SV_IO_MAGIC_BUSY	0x53564231u	/* submitted */
	int      ip_error;
	uint32_t ip_unmap_blocks;
	uint16_t ip_unmap_desc;
	bool     ip_queued;		/* on the pending list */
	bool     ip_shared;
	bool     ip_waited;		/* counted in st_queue_waits */
	bool     ip_scan;		/* sv_target.t_scan */
	uint8_t  ip_path, ip_target, ip_lun;
};
_Static_assert(sizeof(struct storvsc_io_priv) <=
    sizeof(((struct storvsc_io *)0)->io_private), "io_private too small");
_Static_assert(_Alignof(struct storvsc_io_priv) <= 8, "io_private alignment");

static inline struct storvsc_io_priv *sv_iop(struct storvsc_io *io)
{
	return (struct storvsc_io_priv *)(void *)io->io_private;
}

/* Wire transaction id of a slot: (generation << 16) | (index + 1); never
 * 0 (reserved for unsolicited host packets, spec 3.7). */
#define SV_GEN_MASK		0xFFFFFFFFFFFFull	/* 48 bits */
static inline uint64_t sv_slot_id(const struct storvsc_queue *q,
    const struct storvsc_slot *sl)
{
	return (sl->sl_gen << 16) | (uint64_t)(sl - q->q_slots + 1);
}

/* A new generation for the next send of sl (old completions go stale). */
static inline uint64_t sv_slot_newid(const struct storvsc_queue *q,
    struct storvsc_slot *sl)
{
	sl->sl_gen = (sl->sl_gen + 1) & SV_GEN_MASK;
	if (sl->sl_gen == 0)
		sl->sl_gen = 1;
	return sv_slot_id(q, sl);
}

/* ---- port wrappers (storvsc.c) ---- */
void sv_lock(const struct storvsc *sv, vmbus_lock_t *l);
void sv_unlock(const struct storvsc *sv, vmbus_lock_t *l);
uint64_t sv_now(const struct storvsc *sv);
void sv_log(struct storvsc *sv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool sv_ratelimit(struct storvsc *sv, uint64_t *next);
bool sv_polled(const struct storvsc *sv);
void *sv_zalloc(struct storvsc *sv, size_t bytes);
void sv_free(struct storvsc *sv, void *p, size_t bytes);

/* ---- controller waits (storvsc.c) ---- */
typedef bool sv_cond_fn(void *arg);
/* Wait until cond(arg) (checked under ct_lock) or the deadline; keeps the
 * controller going meanwhile (polls in polled ports, expires timeouts).
 * 0 or -VMBUS_ETIMEDOUT. Context: thread. */
int sv_wait(struct storvsc_ctrl *ct, sv_cond_fn *cond, void *arg,
    uint64_t deadline);
void sv_wake(struct storvsc_ctrl *ct);

/* ---- VSTOR queues (storvsc_vstor.c) ---- */
int  storvsc_vstor_init(struct storvsc_ctrl *ct);
void storvsc_vstor_close(struct storvsc_ctrl *ct);
void storvsc_vstor_callback(struct vmbus_channel *ch, void *arg);
int  storvsc_vstor_queue_setup(struct storvsc_ctrl *ct,
    struct storvsc_queue *q, struct vmbus_channel *ch);
void storvsc_vstor_queue_free(struct storvsc_ctrl *ct, struct storvsc_queue *q);
/* Fail everything on q with err (queue no longer usable). */
void storvsc_vstor_queue_kill(struct storvsc_queue *q, int state, int err,
    const char *why);
void storvsc_vstor_expire(struct storvsc_queue *q, bool force);
void storvsc_vstor_check_chan(struct storvsc_queue *q);

struct storvsc_slot *storvsc_slot_get_locked(struct storvsc_queue *q);

/* ---- requests (storvsc_io.c) ---- */

/* Where a request goes and what the target allows. */
struct sv_target {
	uint8_t  t_path, t_target, t_lun;
	bool     t_discard;		/* UNMAP allowed */
	bool     t_scan;		/* discovery: errors never trigger a
					 * rescan (or scans would loop) */
	uint32_t t_block;		/* bytes; 0 = unknown */
	uint64_t t_blocks;		/* capacity */
	uint32_t t_max_xfer_blocks;	/* VPD B0; 0 = none */
	uint32_t t_unmap_blocks;	/* per descriptor */
	uint32_t t_unmap_desc;		/* descriptors per UNMAP */
};

int  storvsc_io_submit_tgt(struct storvsc_ctrl *ct, const struct sv_target *t,
    struct storvsc_io *io);
int  storvsc_io_sync_tgt(struct storvsc_ctrl *ct, const struct sv_target *t,
    struct storvsc_io *io);
/* Issue pending work on q (q_lock held); completed ios go to *done. */
void storvsc_io_kick_locked(struct storvsc_queue *q, struct storvsc_io **done);
/* A COMPLETE_IO for an I/O slot (q_lock held). */
void storvsc_io_complete_locked(struct storvsc_queue *q,
    struct storvsc_slot *sl, const struct vstor_packet *pkt, uint32_t len,
    struct storvsc_io **done);
/* Fail an I/O slot (q_lock held): quarantine says whether the host may
 * still complete it, shared whether it may still touch the caller's
 * buffer. */
void storvsc_io_fail_slot_locked(struct storvsc_queue *q,
    struct storvsc_slot *sl, int err, bool quarantine, bool shared,
    struct storvsc_io **done);
void storvsc_io_fail_pending_locked(struct storvsc_queue *q, int err,
    struct storvsc_io **done);
/* Fail queued requests that waited longer than their timeout. */
void storvsc_io_expire_pending_locked(struct storvsc_queue *q, uint64_t now,
    struct storvsc_io **done);
/* Run the completion callbacks of a list built under q_lock (no lock). */
void storvsc_io_finish_list(struct storvsc_io *done);
void storvsc_slot_release_locked(struct storvsc_queue *q,
    struct storvsc_slot *sl);
void storvsc_slot_set_state(struct storvsc_queue *q, struct storvsc_slot *sl,
    uint32_t state);
/* Map a SCSI result to an error code (module comment of vmbus/storvsc.h);
 * *retry: worth resending; *rescan: the LUN set or capacity changed.
 * st may be NULL. */
int  storvsc_io_map_result(const struct storvsc_scsi_result *r, bool *retry,
    bool *rescan, struct storvsc_stats *st);
/* Decode r->sr_sense[0..sr_sense_len) (fixed or descriptor format). */
void storvsc_sense_decode(struct storvsc_scsi_result *r);

/* ---- disks (storvsc_disk.c) ---- */
int  storvsc_scan(struct storvsc_ctrl *ct);
void storvsc_disks_remove_all(struct storvsc_ctrl *ct);
void storvsc_rescan_request(struct storvsc_ctrl *ct, bool refresh_only);
void storvsc_rescan_run(struct storvsc_ctrl *ct);
void storvsc_ctrl_put(struct storvsc_ctrl *ct);	/* sv_lock NOT held */
void storvsc_ctrl_put_locked(struct storvsc_ctrl *ct, bool *free_it);
void storvsc_ctrl_free(struct storvsc_ctrl *ct);
void storvsc_stats_add(struct storvsc_stats *to, const struct storvsc_stats *from);

#endif /* STORVSC_PRIV_H */
