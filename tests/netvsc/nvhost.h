/*
 * tests/netvsc/nvhost.h - a scripted NVSP + RNDIS host double for the
 * NetVSC guest driver's unit tests.
 *
 * It sits on the guest core's fake port (tests/guest/fakeport.h): the
 * port's hypercall and clock entries are wrapped, so when the guest
 * signals one of the NIC's channels the double reads the guest->host ring
 * and answers, inside the signal, like a host acting between guest
 * instructions. Written from spec/vmbus-devices.md only (it shares no code
 * with the driver or with src/host): its own NVSP / RNDIS parsing, its own
 * receive-slot allocator, its own GPA range walker.
 *
 * Everything is test code: libc, abort() on impossible states.
 */
#ifndef TESTS_NETVSC_NVHOST_H
#define TESTS_NETVSC_NVHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fakeport.h"
#include "hv/nvsp.h"
#include "hv/rndis.h"

#define NVH_MAX_Q	16
#define NVH_MAX_FRAMES	4096
#define NVH_MAX_XFER	8192
#define NVH_MAX_COMPS	16384
#define NVH_PEND	512

/* A frame the guest sent (data RNDIS PACKET_MSG), decoded. */
struct nvh_frame {
	uint32_t f_q;			/* queue (channel) it came on */
	uint32_t f_len;
	uint8_t *f_data;		/* malloc'd copy */
	bool     f_section;		/* section index used */
	uint32_t f_section_idx;
	uint32_t f_nranges;		/* GPA ranges (0 = inband) */
	uint32_t f_ppi_mask;		/* bit per PPI type seen (type < 32) */
	uint32_t f_csum, f_lso, f_vlan, f_hash;
	uint32_t f_msg_len;		/* RNDIS msg_len */
};

/* A receive completion the guest returned. */
struct nvh_comp {
	uint32_t c_q;
	uint64_t c_tid;
	uint32_t c_status;
	uint32_t c_len;			/* payload bytes */
};

struct nvhost {
	struct fakeport *fp;
	int (*orig_hypercall)(void *, uint32_t, uint64_t, const void *,
	    uint32_t, void *, uint32_t, uint64_t *);
	uint64_t (*orig_now)(void *);
	bool in_service;

	/* ---- script (set before connect; zero = the normal answer) ---- */
	uint32_t accept[8];		/* NVSP versions accepted, 0-terminated */
	bool     init_noreply;		/* never answer INIT */
	bool     init_bad_type;		/* answer INIT with a wrong msg type */
	bool     init_short;		/* answer INIT with 8 bytes */
	/* receive buffer reply overrides (used when *_set) */
	bool     rb_override;
	uint32_t rb_status, rb_nsect, rb_offset, rb_sub, rb_num;
	bool     sb_override;
	uint32_t sb_status, sb_section;
	uint32_t section_size;		/* 0 = 6144 */
	/* subchannels */
	uint32_t max_sub;		/* granted at most (0 = none) */
	uint32_t grant_extra;		/* grant this many more than asked */
	uint32_t offer_fewer;		/* offer this many fewer than granted */
	uint32_t sub_status;		/* 0 = SUCCESS */
	bool     send_indirection;	/* send a table after subchannels */
	uint32_t ind_table[16];
	/* RNDIS */
	uint32_t max_frame;		/* OID_GEN_MAXIMUM_FRAME_SIZE answer,
					 * 0 = NDIS config MTU - 14 */
	uint8_t  perm_mac[6], cur_mac[6];
	uint32_t media_state;		/* NDIS_MEDIA_STATE_* */
	uint32_t link_speed;		/* 100 bit/s units */
	uint32_t rss_queues;		/* RSS caps receive queues (0 = none) */
	uint16_t rss_entries;
	bool     no_offload_caps;
	bool     offload_set_fail;
	bool     reset_unsupported;	/* never answer RESET */
	bool     rndis_noreply;		/* answer no RNDIS control message */
	bool     hold_tx;		/* do not complete guest sends */
	bool     stop;			/* do not read the guest's rings */
	uint32_t query_fail_oid;	/* answer this OID with FAILURE */
	uint32_t rescind_on_msg;	/* rescind the NIC instead of answering
					 * this RNDIS message type (once) */

	/* ---- what happened ---- */
	uint32_t requested[16];		/* INIT versions, in order */
	uint32_t nrequested;
	uint32_t version;		/* accepted */
	uint32_t ndis_ver;		/* (major << 16) | minor */
	uint32_t ndis_config_mtu;
	uint64_t ndis_config_caps;
	uint32_t ndis_configs;
	uint32_t rbuf_gpadl, sbuf_gpadl;
	uint32_t rbuf_bytes, sbuf_bytes;
	uint16_t rbuf_id, sbuf_id;
	uint32_t rb_sub_used, rb_num_used;
	uint32_t revoked_recv, revoked_send;
	uint32_t sub_requests, sub_asked, sub_granted;
	uint32_t rndis_inits, rndis_halts, keepalives, resets;
	uint32_t queries, sets;
	uint32_t rescinds;		/* rescind_on_msg fired */
	uint32_t filter;
	uint32_t filters_set;
	uint8_t  offload_params[32];
	uint32_t offload_params_len;
	uint8_t  rss_params[2048];
	uint32_t rss_params_len;
	uint32_t nonzero_reserved;	/* guest sent garbage in reserved bytes */
	uint32_t bad_guest;		/* malformed things from the guest */
	uint32_t unknown_nvsp;

	/* queues (channel per queue; 0 = primary) */
	struct fh_chan *q[NVH_MAX_Q];
	uint32_t nq;
	uint32_t next_relid;

	/* receive slots (guest receive buffer) */
	uint8_t  slot_busy[8192];
	uint64_t next_tid;
	struct { uint64_t tid; uint32_t q; uint32_t nslots; uint32_t slot[64]; bool live; }
	    xfer[NVH_MAX_XFER];
	uint32_t xfer_live;

	/* frames and completions from the guest */
	struct nvh_frame frames[NVH_MAX_FRAMES];
	uint32_t nframes;
	struct nvh_comp comps[NVH_MAX_COMPS];
	uint32_t ncomps;
	uint32_t ctl_msgs;		/* RNDIS control messages received */
	/* sends held (hold_tx): tid + queue */
	struct { uint64_t tid; uint32_t q; } held[4096];
	uint32_t nheld;

	/* host->guest packets that did not fit the ring yet */
	struct { uint32_t q; uint32_t len; uint8_t *pkt; } pend[NVH_PEND];
	uint32_t npend;
};

/* Attach to fp (after fp_init): primary NIC channel at relid. */
void nvh_init(struct nvhost *h, struct fakeport *fp, uint32_t relid);
void nvh_fini(struct nvhost *h);
/* Process the guest's rings now (as after a signal). */
void nvh_service(struct nvhost *h);
/* Forget recorded frames / completions. */
void nvh_clear(struct nvhost *h);

/*
 * Send one RNDIS message to the guest on queue q in a fresh receive slot
 * (one-range transfer-page packet, channel type chan_type). Returns the
 * transaction id used, 0 if no slot / no room (queued packets are sent
 * later).
 */
uint64_t nvh_rx_msg(struct nvhost *h, uint32_t q, const void *msg,
    uint32_t len, uint32_t chan_type);
/* Build and send a data frame with optional PPIs (type/value pairs). */
uint64_t nvh_rx_frame(struct nvhost *h, uint32_t q, const void *frame,
    uint32_t len, const uint32_t *ppi_types, const uint32_t *ppi_vals,
    uint32_t nppi);
/* Send several data frames in one transfer-page packet (one slot each). */
uint64_t nvh_rx_frames(struct nvhost *h, uint32_t q, const uint8_t *const *frames,
    const uint32_t *lens, uint32_t n);
/* Write raw bytes into the receive buffer at off. */
void nvh_rbuf_write(struct nvhost *h, uint32_t off, const void *data,
    uint32_t len);
/*
 * A raw transfer-page packet: pageset id, ranges (count, offset pairs),
 * NVSP payload (nvsp, nvsp_len; NULL = a normal SEND_RNDIS_PKT) and an
 * explicit range_cnt field value (rcnt_field, UINT32_MAX = n). tid 0 =
 * choose one. Returns the tid.
 */
uint64_t nvh_xfer_raw(struct nvhost *h, uint32_t q, uint16_t pageset,
    const uint32_t (*ranges)[2], uint32_t n, uint32_t rcnt_field,
    const void *nvsp, uint32_t nvsp_len, uint64_t tid);
/* Any raw packet: type, flags, tid, payload (descriptor built here). */
int nvh_pkt(struct nvhost *h, uint32_t q, uint16_t type, uint16_t flags,
    uint64_t tid, const void *payload, uint32_t len);
/* RNDIS status indication (status buffer at body offset 12). */
uint64_t nvh_indicate(struct nvhost *h, uint32_t q, uint32_t status,
    const void *buf, uint32_t blen);
/* Complete every held guest send (hold_tx) with status. */
void nvh_release_held(struct nvhost *h, uint32_t status);
/* Complete held send i (in arrival order) only; it leaves the list. */
void nvh_release_one(struct nvhost *h, uint32_t i, uint32_t status);
/* The completion the guest returned for tid (NULL if none yet). */
const struct nvh_comp *nvh_comp_for(struct nvhost *h, uint64_t tid);
/* Free receive slots right now. */
uint32_t nvh_free_slots(struct nvhost *h);

#endif /* TESTS_NETVSC_NVHOST_H */
