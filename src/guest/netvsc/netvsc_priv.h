/*
 * src/guest/netvsc/netvsc_priv.h - private state of the NetVSC driver:
 * the NIC, its queues (one per channel), transmit slots, the copy area
 * (send buffer or bounce pages), RNDIS request slots, and the functions
 * the driver's files share. Nothing here is public API.
 *
 * Files: netvsc.c (driver object, attach/detach, bring-up and teardown,
 * public control calls, waits), netvsc_nvsp.c (NVSP requests, channel
 * callback, completions, inband notes, subchannels), netvsc_rndis.c (RNDIS
 * control and status), netvsc_tx.c (transmit), netvsc_rx.c (receive path:
 * the copy-in of the receive-buffer boundary and all receive checks).
 *
 * Transaction ids on netvsc channels are ours alone (no vmbus_xact table):
 *   bits 63..48  NV_TID_TAG, bits 47..16 generation, bits 15..0 slot + 1
 * of the queue's transmit slot table. A completion must match tag, slot,
 * generation and an active slot, else it is dropped and counted (hostile
 * host 6). Id 0 is never used for a request.
 *
 * Locks (port locks; no-ops in a polled port), never nested except
 * q_tx_lock -> nd_ca_lock:
 *   nd_lock     device state, RNDIS slots, ctl flag; nd_wait waits on it.
 *   q_tx_lock   one queue's transmit slots and tx counters.
 *   nd_ca_lock  the copy-area chunk bitmap (shared by all queues).
 * Receive state of a queue is touched only by its channel callback, which
 * the core never runs concurrently with itself. No lock is held while an
 * OS callback runs or across a VMBus call that may sleep.
 */
#ifndef VMBUS_NETVSC_PRIV_H
#define VMBUS_NETVSC_PRIV_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/nvsp.h"
#include "hv/rndis.h"
#include "hv/vmbus_pkt.h"
#include "hv/wire.h"
#include "vmbus/errno.h"
#include "vmbus/netvsc.h"
#include "vmbus/platform.h"
#include "vmbus/vmbus.h"

#define NV_TX_SLOTS		256u	/* transmit slots per queue */
#define NV_TX_HDR_BYTES		256u	/* RNDIS header + PPIs, GPA sends */
#define NV_TX_HDR_PAGES		(NV_TX_SLOTS * NV_TX_HDR_BYTES / HV_PAGE_SIZE)
#define NV_TX_MAX_RANGES	NVSP_L_MAX_PAGE_BUFFER_COUNT	/* 32 */
#define NV_TX_MAX_PFNS		96u	/* PFNs of one GPA send */
#define NV_TX_MAX_FRAME		(65536u + 256u)	/* LSO frame bound, bytes */
#define NV_RNDIS_SLOTS		8u
#define NV_AGG_MAX		64u	/* RNDIS messages per batch, at most */
#define NV_AGG_PER_SECTION	4u	/* fewer frames fit a section: a run */
#define NV_AGG_RUN		4u	/* sections in such a run */
#define NV_RNDIS_RESP_MAX	4096u	/* private copy of one reply */
#define NV_RNDIS_REQ_MAX	4096u	/* one control request */
#define NV_RXC_QUEUE		512u	/* deferred receive completions */
/* Largest host->guest packet: 24-byte transfer-page header + 562 ranges
 * + a 40-byte NVSP message, rounded up (spec 1.5: L's bound + 64). */
#define NV_PKT_MAX		8192u
#define NV_RX_SLOT_MAX		65536u	/* largest receive section accepted */
#define NV_RX_BUDGET		1024u	/* packets per callback call */
#define NV_BOUNCE_CHUNK		2048u	/* chunk size without a send buffer */
#define NV_BOUNCE_BYTES		(256u * 1024u)	/* default bounce area */
#define NV_SECTIONS_MAX		4096u	/* chunks we track */
#define NV_SECTION_MIN		256u	/* smallest send section we use */
#define NV_RECV_BUF_ID		NVSP_RECV_BUF_ID_L	/* 0xCAFE */
#define NV_SEND_BUF_ID		NVSP_SEND_BUF_ID_F	/* 0xFACE */
#define NV_DEFAULT_TIMEOUT	(5ull * 1000000000ull)
#define NV_WAIT_SLICE_NS	(20ull * 1000000ull)
#define NV_LOG_INTERVAL_NS	(1000000000ull)
#define NV_PPI_MAX		64u	/* PPI records walked per frame */
#define NV_TID_TAG		UINT64_C(0x4E56)	/* "NV" */
#define NV_TID_SLOT_MASK	UINT64_C(0xFFFF)
#define NV_TID_GEN_SHIFT	16
#define NV_TID_TAG_SHIFT	48
#define NV_PKTINFO_BYTES	RNDIS_PKTINFO_SIZE_U32	/* 16 per PPI */
#define NV_CHUNK_NONE		0xFFFFFFFFu

/* Microsoft's default 40-byte Toeplitz key (L's default, spec 2.7). */
#define NV_RSS_KEY_INIT {                                                 \
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,       \
	0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,       \
	0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,       \
	0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa }

struct netvsc_dev;

/* One transmit slot: a data frame, an RNDIS control message, or an NVSP
 * request whose completion a thread waits for. */
struct nv_txslot {
	uint32_t ts_gen;		/* 1.. ; 0 = never used */
	uint8_t  ts_state;
#define NV_TS_FREE	0
#define NV_TS_ACTIVE	1	/* sent (or being sent), completion due */
#define NV_TS_DONE	2	/* NVSP request completed, waiter owns it */
	uint8_t  ts_kind;
#define NV_TS_DATA	0
#define NV_TS_RNDIS	1
#define NV_TS_NVSP	2
	uint16_t ts_nchunks;		/* copy-area chunks held */
	uint32_t ts_chunk;		/* first chunk, NV_CHUNK_NONE = none */
	uint32_t ts_bytes;		/* frame bytes (stats) */
	uint32_t ts_frames;		/* frames it carries (a batch: 1..) */
	netvsc_tx_done_fn *ts_done;
	void    *ts_cookie;
	uint32_t ts_resp_len;		/* NVSP completion payload bytes */
	_Alignas(8) uint8_t ts_resp[NVSP_MSG_SIZE];
};

/* The copy area: the host's send buffer (sections) or, without one, our
 * own bounce pages; divided into chunks shared by every queue. */
struct nv_copy_area {
	uint8_t  *ca_va;
	uint64_t *ca_pfn;		/* one per 4 KiB page */
	uint32_t  ca_pages;
	uint32_t  ca_bytes;
	uint32_t  ca_chunk;		/* bytes per chunk (= section size) */
	uint32_t  ca_nchunks;
	bool      ca_sendbuf;		/* chunks are host send sections */
	uint64_t *ca_map;		/* busy bitmap */
	uint32_t  ca_hint;
	uint32_t  ca_used;
};

struct nv_queue {
	struct netvsc_dev *q_nd;
	uint32_t q_idx;
	struct vmbus_channel *q_chan;
	bool     q_open;
	_Atomic bool q_dead;		/* protocol-fatal input: stop reading */

	/* receive (channel callback only) */
	uint8_t *q_pkt;			/* NV_PKT_MAX: private packet copy */
	uint8_t *q_rxbuf;		/* one receive section, private copy */
	uint32_t q_rxbuf_len;
	uint64_t q_rxc_tid[NV_RXC_QUEUE];	/* deferred completions */
	uint8_t  q_rxc_fail[NV_RXC_QUEUE];
	uint32_t q_rxc_head, q_rxc_tail;
	uint64_t q_log_next;

	/* transmit */
	vmbus_lock_t q_tx_lock;
	struct nv_txslot *q_slot;	/* NV_TX_SLOTS */
	uint32_t q_slot_hint;
	uint32_t q_slots_used;
	uint8_t *q_hdr_va;		/* NV_TX_SLOTS * NV_TX_HDR_BYTES, shared */
	uint64_t q_hdr_pfn[NV_TX_HDR_PAGES];
	/*
	 * Send batching (spec 1.7; q_tx_lock): copied frames that fit a
	 * section are appended to the queue's open batch, one slot and one
	 * section (a run of them for large frames, sent by GPA), sent as
	 * one NVSP message when nothing of this queue is
	 * in flight, the section or the host's packet count is full, or
	 * the last data completion arrives. A batch the ring refused waits
	 * (q_agg_ready) and goes first, before any other frame of the queue.
	 */
	int32_t  q_agg_slot;		/* open batch's slot, -1 = none */
	uint32_t q_agg_len;		/* bytes in its section(s) */
	uint32_t q_agg_cap;		/* bytes its section run holds */
	uint32_t q_agg_last;		/* offset of its last RNDIS message */
	uint32_t q_agg_cnt;		/* messages in it */
	bool     q_agg_ready;		/* closed, waits for ring room */
	uint32_t q_inflight;		/* data sends the host has not completed */
	_Atomic bool q_tx_want;		/* -EAGAIN given: call tx_ready */
	_Atomic uint32_t q_tx_need;	/* chunks the refused send needed */

	struct netvsc_queue_stats q_stats;
};

/* A pending RNDIS request (nd_lock). */
struct nv_rndis_slot {
	uint8_t  rs_state;
#define NV_RS_FREE	0
#define NV_RS_WAIT	1
#define NV_RS_DONE	2
	uint32_t rs_rid;
	uint32_t rs_want;		/* reply message type */
	uint32_t rs_len;		/* bytes in rs_resp */
	uint32_t rs_msg_len;		/* whole reply message length */
	uint8_t *rs_resp;		/* NV_RNDIS_RESP_MAX, private copy */
};

struct nv_drv;

struct netvsc_dev {
	struct nv_drv *nd_drv;
	struct vmbus_device *nd_dev;
	struct vmbus *nd_bus;
	const struct vmbus_platform *nd_plat;
	struct vmbus_channel *nd_chan;	/* primary */
	char     nd_name[32];
	struct netvsc_config nd_cfg;

	vmbus_lock_t nd_lock;
	vmbus_wait_t nd_wait;
	_Atomic int nd_state;
#define NV_ST_DOWN	0	/* not brought up / torn down */
#define NV_ST_UP	1	/* traffic allowed */
#define NV_ST_GONE	2	/* detaching */
	bool     nd_ctl_busy;		/* a control call runs (nd_lock) */
	/* Threads inside netvsc_send / netvsc_wait_tx: teardown frees no
	 * queue before this drops to 0 (it sets nd_state first; both sides
	 * use seq_cst, so one of them sees the other). */
	_Atomic uint32_t nd_tx_active;
	bool     nd_up_once;		/* bring-up succeeded once */

	/* negotiated */
	uint32_t nd_nvsp;
	uint32_t nd_ndis;

	/* receive buffer (shared with the host via a GPADL) */
	uint8_t  *nd_rbuf;
	uint64_t *nd_rbuf_pfn;
	uint32_t  nd_rbuf_pages;
	uint32_t  nd_rbuf_bytes;
	uint32_t  nd_rbuf_gpadl;	/* 0 = none */
	bool      nd_rbuf_sent;		/* host knows it: revoke at teardown */
	uint32_t  nd_rx_slot;		/* sub_alloc_size */
	uint32_t  nd_rx_nslots;

	/* send buffer (GPADL) and the copy area built on it or on bounce */
	uint8_t  *nd_sbuf;
	uint64_t *nd_sbuf_pfn;
	uint32_t  nd_sbuf_pages;
	uint32_t  nd_sbuf_gpadl;
	bool      nd_sbuf_sent;
	vmbus_lock_t nd_ca_lock;
	struct nv_copy_area nd_ca;

	/* RNDIS */
	struct nv_rndis_slot nd_rs[NV_RNDIS_SLOTS];
	uint8_t *nd_reqbuf;		/* NV_RNDIS_REQ_MAX: request being built */
	uint32_t nd_rid_seq;
	uint32_t nd_rndis_max_pkts;
	uint32_t nd_rndis_align;

	/* what the host told us */
	uint8_t  nd_perm_mac[NETVSC_ETHER_ADDR_LEN];
	uint8_t  nd_cur_mac[NETVSC_ETHER_ADDR_LEN];
	uint32_t nd_mtu;		/* in use */
	uint32_t nd_mtu_want;		/* asked for */
	_Atomic bool nd_link_up;
	_Atomic uint64_t nd_link_speed;	/* bit/s */
	uint32_t nd_offloads;		/* NETVSC_OFFLOAD_* enabled */
	uint32_t nd_lso_max;
	uint32_t nd_lso_min_segs;
	uint32_t nd_filter;		/* packet filter in effect */
	uint32_t nd_rss_caps_queues;	/* host's receive queues (RSS caps) */
	uint32_t nd_rss_entries;	/* indirection table size */

	/* queues */
	uint32_t nd_nq;
	struct nv_queue *nd_q[NETVSC_QUEUES_MAX];
	_Atomic uint32_t nd_send_tab[NETVSC_SEND_TABLE_SIZE];
	_Atomic bool nd_tab_host;	/* the host sent a send table */

	/* OS callbacks (read without a lock in the callback path) */
	_Atomic(void (*)(void *, struct netvsc_dev *, uint32_t, const void *,
	    uint32_t, const struct netvsc_rx_info *)) nd_cb_rx;
	_Atomic(void (*)(void *, struct netvsc_dev *,
	    const struct netvsc_link *)) nd_cb_link;
	_Atomic(void (*)(void *, struct netvsc_dev *, uint32_t)) nd_cb_tx_ready;
	_Atomic(void *) nd_cb_arg;

	uint64_t nd_log_next;
	struct netvsc_stats nd_stats;	/* device counters (ns_total unused) */
	struct netvsc_queue_stats nd_dead_q;	/* counters of closed queues */
};

struct nv_drv {
	struct vmbus_driver dr_drv;	/* first: the core's driver object */
	struct vmbus *dr_bus;		/* identity only: may be freed first */
	const struct vmbus_platform *dr_plat;
	struct netvsc_config dr_cfg;
	vmbus_lock_t dr_lock;
	struct netvsc_dev *dr_dev[NETVSC_MAX_DEVICES];
	uint32_t dr_ndev;
	/* ns_leaked_pages of NICs already freed (detached, or their attach
	 * failed): STYLE 9, the leak stays recorded (under dr_lock). */
	uint64_t dr_leaked_pages;
};

/* ---- port wrappers and helpers (netvsc.c) ---- */
void nv_lock(const struct netvsc_dev *nd, vmbus_lock_t *l);
void nv_unlock(const struct netvsc_dev *nd, vmbus_lock_t *l);
void nv_lock_init(const struct netvsc_dev *nd, vmbus_lock_t *l);
void nv_lock_fini(const struct netvsc_dev *nd, vmbus_lock_t *l);
uint64_t nv_now(const struct netvsc_dev *nd);
uint64_t nv_deadline(const struct netvsc_dev *nd, uint64_t timeout_ns);
bool nv_polled(const struct netvsc_dev *nd);
void nv_log(const struct netvsc_dev *nd, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool nv_ratelimit(const struct netvsc_dev *nd, uint64_t *next);
void *nv_zalloc(const struct netvsc_dev *nd, size_t bytes);
void nv_free(const struct netvsc_dev *nd, void *p, size_t bytes);
/* Wake every thread waiting in nv_wait (any context). */
void nv_wake(struct netvsc_dev *nd);
/*
 * Bounded wait: 0 once cond(nd, arg) holds (checked under nd_lock),
 * -VMBUS_ETIMEDOUT at the deadline, -VMBUS_ENODEV / -VMBUS_EPROTO when the
 * primary channel is no longer open. Polls the bus when no wakeup came.
 */
typedef bool nv_cond_fn(struct netvsc_dev *nd, void *arg);
int nv_wait(struct netvsc_dev *nd, nv_cond_fn *cond, void *arg,
    uint64_t deadline);
/* Enter / leave the data path (netvsc_send, netvsc_wait_tx): false when
 * the NIC is not up (then nothing to leave). */
bool nv_tx_enter(struct netvsc_dev *nd);
void nv_tx_exit(struct netvsc_dev *nd);
/* 0 if the primary channel is open, else -VMBUS_ENODEV / -VMBUS_EPROTO. */
int nv_chan_err(const struct netvsc_dev *nd);

/* page_free, or leak (counted) when leak is set or page_free fails. */
void nv_pages_release(struct netvsc_dev *nd, void *va, uint32_t npages,
    bool leak);

/* Shared-memory copy-in (STYLE 5): the only reads of the receive buffer. */
static inline void nv_shm_copy_in(void *dst, const void *src, size_t n)
{
	__builtin_memcpy(dst, src, n);
}

/* ---- NVSP (netvsc_nvsp.c) ---- */
int  nv_queue_alloc(struct netvsc_dev *nd, uint32_t idx,
    struct vmbus_channel *ch);
void nv_queue_free(struct netvsc_dev *nd, struct nv_queue *q, bool leak);
int  nv_queue_open(struct netvsc_dev *nd, struct nv_queue *q);
/* Send an NVSP request on q and wait for its completion; the payload is
 * copied to resp (NVSP_MSG_SIZE bytes, zero-padded), *resp_len its length. */
int  nv_nvsp_request(struct netvsc_dev *nd, struct nv_queue *q,
    const union nvsp_msg *req, union nvsp_msg *resp, uint32_t *resp_len);
/* Send an NVSP message without a completion. */
int  nv_nvsp_post(struct netvsc_dev *nd, struct nv_queue *q,
    const union nvsp_msg *msg);
int  nv_nvsp_negotiate(struct netvsc_dev *nd);
int  nv_nvsp_ndis_config(struct netvsc_dev *nd);
int  nv_nvsp_recv_buf(struct netvsc_dev *nd);
int  nv_nvsp_send_buf(struct netvsc_dev *nd);
int  nv_nvsp_subchannels(struct netvsc_dev *nd, uint32_t want);
void nv_nvsp_revoke(struct netvsc_dev *nd);
void nv_chan_callback(struct vmbus_channel *ch, void *arg);
uint32_t nv_max_mtu(const struct netvsc_dev *nd);

/* ---- transmit (netvsc_tx.c) ---- */
uint64_t nv_tid(const struct nv_queue *q, uint32_t slot);
int  nv_slot_get(struct nv_queue *q, uint8_t kind);	/* q_tx_lock held */
void nv_slot_put(struct nv_queue *q, uint32_t slot);	/* q_tx_lock held */
int  nv_ca_init(struct netvsc_dev *nd);
void nv_ca_fini(struct netvsc_dev *nd, bool leak);
/* Send an RNDIS control message (copied) on the primary channel; retries
 * while there is no room, until the deadline. Thread context. */
int  nv_tx_rndis_ctl(struct netvsc_dev *nd, const void *msg, uint32_t len,
    uint64_t deadline);
/* A completion for one of q's slots (callback context). */
void nv_tx_complete(struct nv_queue *q, uint64_t tid, const uint8_t *payload,
    uint32_t len);
/* Fail every outstanding send of q with status (teardown). */
void nv_tx_fail_all(struct nv_queue *q, int status, bool leak);
uint32_t nv_tx_outstanding(struct netvsc_dev *nd);
void nv_tx_kick_ready(struct nv_queue *q);
/* Send the queue's batch if nothing else will (callback context). */
void nv_tx_flush(struct nv_queue *q);

/* ---- receive (netvsc_rx.c) ---- */
void nv_rx_xfer(struct nv_queue *q, const uint8_t *pkt, uint32_t len,
    const struct vmbus_pkt_info *pi);
void nv_rxc_flush(struct nv_queue *q);
bool nv_rxc_full(const struct nv_queue *q);

/* ---- RNDIS (netvsc_rndis.c) ---- */
int  nv_rndis_bringup(struct netvsc_dev *nd);
int  nv_rndis_rss(struct netvsc_dev *nd);
void nv_rndis_halt(struct netvsc_dev *nd);
int  nv_rndis_query(struct netvsc_dev *nd, uint32_t oid, const void *in,
    uint32_t inlen, void *out, uint32_t *outlen, uint32_t *status);
int  nv_rndis_set(struct netvsc_dev *nd, uint32_t oid, const void *data,
    uint32_t len, uint32_t *status);
int  nv_rndis_keepalive(struct netvsc_dev *nd);
int  nv_rndis_reset(struct netvsc_dev *nd, bool *addressing_reset);
/* An RNDIS control message or status indication, already copied in
 * (callback context): buf[0..mlen) is the message, range_len the bytes of
 * the receive range it came in (the quirk bound for status buffers). */
void nv_rndis_rx_ctl(struct nv_queue *q, const uint8_t *buf, uint32_t mlen,
    uint32_t range_len);
void nv_rndis_fail_waiters(struct netvsc_dev *nd);

#endif /* VMBUS_NETVSC_PRIV_H */
