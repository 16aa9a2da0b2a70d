/*
 * host/vsp/storvsp_priv.h - private state of the storage VSP: controllers,
 * their channels, request slots and LUNs.
 *
 * Ownership: the VMBus server owns each controller (freed in vo_destroy).
 * A channel's state lives from vo_open until it is closed AND its last
 * request has come back from the back end. A LUN lives until it is
 * detached AND its last request has come back. Request slots belong to
 * their channel; the wire transaction id is only echoed, never used to
 * find a slot (completions are never received from the guest).
 */
#ifndef HVS_STORVSP_PRIV_H
#define HVS_STORVSP_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "host/disk/disk.h"
#include "host/log.h"
#include "host/scsi/scsi_target.h"
#include "host/vsp/storvsp.h"
#include "host/vsp/vsp.h"
#include "hv/vstor.h"

struct svsp_ctrl;
struct svsp_chan;

/* Bounce-buffer pool classes: 4 KiB << 0 .. 4 KiB << 11 (8 MiB, the
 * largest max_transfer). */
#define SVSP_POOL_CLASSES 12

struct svsp_lun {
	struct hvs_disk *lu_disk;
	struct hvs_scsi_lu lu_scsi;
	char lu_serial[HVS_DISK_SERIAL_MAX];
	uint8_t lu_num;
	bool lu_detached;         /* hot removed: freed when lu_refs == 0 */
	unsigned lu_refs;         /* requests holding it */
};

/* Where a request is in its life. */
enum svsp_stage {
	RQ_FREE = 0,
	RQ_IO,        /* waiting for the back end */
	RQ_FUA_FLUSH, /* write done, its FUA flush running */
	RQ_DONE,      /* completion built, waiting for ring space */
};

struct svsp_req {
	struct svsp_chan *rq_chan;
	struct svsp_lun *rq_lun;      /* held during I/O */
	struct svsp_req *rq_next;     /* free list / send queue / cq list */
	enum svsp_stage rq_stage;
	uint64_t rq_tid;
	uint32_t rq_req_len;          /* VSTOR bytes the guest sent (<= 64) */
	struct vstor_packet rq_vp;    /* private copy of the request */
	struct vstor_packet rq_resp;  /* the completion */
	uint32_t rq_resp_len;
	/* GPA-direct request: its packet, copied (the buffer description
	 * must outlive the receive buffer while I/O runs) */
	uint8_t *rq_pkbuf;
	struct hvs_pkt rq_pk;
	bool rq_has_pk;
	/* I/O */
	struct hvs_disk_req rq_dr;
	struct hvs_scsi_result rq_sr;
	uint8_t *rq_buf;              /* private bounce buffer (or NULL) */
	uint64_t rq_buflen;
	int rq_buf_cls;               /* its pool class, -1: not pooled */
	bool rq_direct;               /* medium I/O straight into guest RAM */
	struct hvs_scsi_extent *rq_ext;
	unsigned rq_next_ext, rq_n_ext;
	uint32_t rq_xfer;             /* bytes reported back */
};

struct svsp_chan {
	struct svsp_ctrl *sv_ctrl;
	struct hvs_channel *sv_ch;    /* NULL once closed */
	uint16_t sv_sub;
	uint8_t *sv_rx;               /* receive buffer (in-ring max packet) */
	uint32_t sv_rxlen;
	struct svsp_req *sv_reqs;     /* sv_nreq slots */
	unsigned sv_nreq;
	uint8_t *sv_pkbufs;           /* sv_nreq * sv_pkcap */
	uint32_t sv_pkcap;
	struct svsp_req *sv_free;
	unsigned sv_busy;             /* slots not free */
	struct svsp_req *sv_sendq, *sv_sendq_tail;
	bool sv_draining;
	unsigned sv_direct_io;        /* back-end I/O into guest RAM in flight */
};

enum svsp_state {
	SV_WAIT_BEGIN = 0, /* nothing yet, or primary reopened */
	SV_BEGUN,          /* BEGIN_INITIALIZATION seen */
	SV_VERSIONED,      /* a version accepted */
	SV_READY,          /* END_INITIALIZATION seen: I/O allowed */
};

struct svsp_ctrl {
	struct hvs_storage *sc_st;    /* NULL once the set is gone */
	unsigned sc_index;
	struct hvs_vmbus *sc_srv;
	struct hvs_loop *sc_loop;
	struct hvs_storvsp_config sc_cfg;
	uint32_t sc_relid;
	char sc_name[32];
	struct svsp_lun *sc_luns[HVS_DISK_MAX_LUNS];
	/* protocol state, owned by the primary channel */
	enum svsp_state sc_state;
	uint16_t sc_version;          /* valid from SV_VERSIONED */
	uint16_t sc_subs_offered;
	struct svsp_chan *sc_chans[HVS_STORVSP_MAX_SUBCHANNELS + 1];
	bool sc_notify_enum, sc_notify_remove;
	uint64_t sc_bytes_inflight;
	uint32_t sc_inflight;
	/* bounce buffers kept for reuse: class k holds 4 KiB << k; at most
	 * sc_cfg.sc_max_inflight bytes cached (loop thread only) */
	void *sc_pool[SVSP_POOL_CLASSES];
	uint64_t sc_pool_bytes;
	/* completions from back-end threads */
	pthread_mutex_t sc_cq_lock;
	struct svsp_req *sc_cq_head, *sc_cq_tail;
	int sc_cq_fd;                 /* eventfd */
	struct hvs_loop_fd *sc_cq_watch;
	struct hvs_ratelimit sc_rl;
	struct {
		atomic_uint_fast64_t requests, srbs, completions, bad_packets,
			bad_srbs, gpa_faults, rsvd_nonzero, checks, io_errors,
			send_waits, notifications, bytes_read, bytes_written,
			direct_ios;
	} sc_stat;
};

#define SVSP_MAX_CONTROLLERS HVS_DISK_MAX_CONTROLLERS

struct hvs_storage {
	struct hvs_vmbus *st_srv;
	struct hvs_loop *st_loop;
	struct svsp_ctrl *st_ctrl[SVSP_MAX_CONTROLLERS];
	struct hvs_storvsp_config st_cfg[SVSP_MAX_CONTROLLERS];
	bool st_cfg_set[SVSP_MAX_CONTROLLERS];
};

#endif /* HVS_STORVSP_PRIV_H */
