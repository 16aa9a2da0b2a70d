/*
 * tests/fuzz/fuzzport.h - a polled, single-threaded platform port for the
 * guest core whose host is a SCRIPT: every SynIC message the guest reads,
 * every event flag it sees and every HvPostMessage status it gets comes
 * from a byte string (the fuzzer's input, or a harness-built prefix).
 *
 * Script ops (op byte: low 3 bits = kind; kind 0 with bit 3 set is
 * GPADLW; other bits are ignored):
 *   FZP_OP_MSG    u32 hm_type, u8 hm_payload_size, u8 hm_flags, u8 n,
 *                 n payload bytes (n <= 240; the rest of the slot is 0).
 *                 Written into the message vCPU's SIMP slot 2 when that
 *                 slot is empty (payload first, bytes 0-7 last with release
 *                 ordering); while it is busy the pending flag is set with
 *                 a compare-and-swap, as the partition ABI says.
 *   FZP_OP_WAIT   u8 type: the k-th WAIT for a channel message type holds
 *                 the script until the guest has posted k of that type.
 *   FZP_OP_EVENT  u16 relid: event flag relid in SIEF SINT 2 of the message
 *                 vCPU, plus (for pre-2.4 guests) the relid bit in the
 *                 interrupt page's receive half and flag 0.
 *   FZP_OP_STATUS u16 status, u8 n: the next n HvPostMessage calls answer
 *                 this HV_STATUS (without being delivered).
 *   FZP_OP_IDLE   u8 n: deliver nothing during the next n port calls.
 *   FZP_OP_RING   u8 relid, u8 flags, u16 len, len bytes: the host writes
 *                 one packet (the bytes as given, descriptor included,
 *                 zero-padded to 8) into the host->guest ring of channel
 *                 relid (opened by the guest), publishes it and sets the
 *                 channel's event flag. flags bit 0: put the trans_id of
 *                 the guest's last packet on relid into bytes 8-15; bit 1:
 *                 the one before it; bit 2: no event. Dropped when the
 *                 channel is not open or its ring is full.
 *   FZP_OP_RWAIT  u8 relid, u8 n: hold the script until the guest has
 *                 written n more packets into relid's guest->host ring
 *                 (the port reads that ring, as a host does).
 *   FZP_OP_GPAW   u8 relid, u16 off, u16 len, len bytes: the host writes
 *                 into the buffer the guest's last GPA-direct packet on
 *                 relid described (its ranges concatenated), from off.
 *   FZP_OP_GPADLW u32 handle, u32 off, u16 len, len bytes: the host writes
 *                 into the memory of GPADL `handle` (e.g. a NetVSC receive
 *                 buffer), from byte off of its first range. Not into an
 *                 open channel's ring GPADL (a no-op then).
 * The script advances at every port call (MSR access, hypercall, clock).
 *
 * Oracles the port enforces (FZ_CHECK aborts):
 *  - the guest never frees (page_free) a page the host still holds: a
 *    page named in a GPADL it described, until the host refused that GPADL
 *    (GPADL_CREATED status != 0), answered its GPADL_TEARDOWN with
 *    GPADL_TORNDOWN, or answered UNLOAD (the answer may have been written
 *    into the slot before the request: the guest only sees when it reads
 *    it); nor an enabled SIMP/SIEFP page;
 *  - page_free only of live allocations, with their size;
 *  - every HvPostMessage input is well-formed (type 1, size <= 240).
 */
#ifndef TESTS_FUZZ_FUZZPORT_H
#define TESTS_FUZZ_FUZZPORT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ring.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "vmbus/platform.h"

#define FZP_OP_MSG    0
#define FZP_OP_WAIT   1
#define FZP_OP_EVENT  2
#define FZP_OP_STATUS 3
#define FZP_OP_IDLE   4
#define FZP_OP_RING   5
#define FZP_OP_RWAIT  6
#define FZP_OP_GPAW   7
#define FZP_OP_GPADLW 8	/* op byte & 7 == 0 with bit 3: see fzp_pump */

#define FZP_TICK       1000000ull		/* 1 ms: a clock step */
#define FZP_TICK_MAX   1000000000ull		/* 1 s: the longest step */
#define FZP_QUIET_STEPS 8			/* steps before they grow */
#define FZP_STUCK_NS   (120ull * 1000000000ull)	/* 2 x SV_DEFAULT_IO_NS */

#define FZP_MAX_VCPU   4
#define FZP_MAX_ALLOCS 128
#define FZP_MAX_GPADLS 32
#define FZP_STREAM_MAX 2048	/* range-stream bytes tracked per GPADL */
#define FZP_MAX_CHANS  8	/* open channels the host side serves */
#define FZP_MAX_NOTICES 64	/* host messages that release memory */

struct fzp_notice {
	int      n_why;		/* 0 CREATED failure, 1 TORNDOWN, 2 UNLOAD */
	uint32_t n_handle;
	uint32_t n_relid;
};

/* The host side of one channel the guest opened. */
struct fzp_chan {
	bool     c_open;		/* OPENCHANNEL seen, not closed */
	bool     c_bound;		/* rings mapped */
	bool     c_scribbled;		/* the host wrote the rings before open */
	bool     c_idle;		/* guest ring empty at write_index... */
	uint32_t c_idle_wi;		/* ...this one (drain_guest) */
	uint32_t c_relid;
	uint32_t c_gpadl;
	uint32_t c_downstream;
	uint8_t *c_base;		/* both rings */
	uint32_t c_pages;
	struct vmbus_ring c_in;		/* guest -> host, we read */
	struct vmbus_ring c_out;	/* host -> guest, we write */
	uint64_t c_pkts;		/* guest packets read */
	uint64_t c_rwait;		/* RWAIT target */
	bool     c_rwait_counted;
	uint64_t c_tid[2];		/* last two guest trans_ids */
	uint8_t  c_gpa[1024];		/* last GPA-direct header (ranges) */
	uint32_t c_gpa_len;
};

struct fzp_alloc {
	void    *a_va;
	size_t   a_npages;
	uint64_t a_pfn0;
	bool     a_live;
};

/* A GPADL as the host saw it described. */
struct fzp_gpadl {
	bool     g_used;
	bool     g_held;		/* host may use its pages */
	bool     g_teardown_sent;
	bool     g_scribbled;		/* GPADLW wrote into it (not yet a ring) */
	uint32_t g_handle;
	uint32_t g_relid;
	uint32_t g_buflen;
	uint32_t g_got;
	uint8_t  g_stream[FZP_STREAM_MAX];
};

struct fzp {
	struct vmbus_platform fp_plat;
	uint32_t fp_nvcpu;
	uint32_t fp_msg_vp;
	uint64_t fp_now;
	uint64_t fp_tick;		/* this step of the clock */
	/* Quiet time: while neither the script nor the guest moves (no op
	 * consumed, nothing posted, signalled or written to a ring), each
	 * step of the clock is twice the last (FZP_TICK .. FZP_TICK_MAX),
	 * so a guest timeout of seconds costs tens of steps, not thousands;
	 * any activity resets the step. */
	uint64_t fp_activity;		/* bumped by every such event */
	uint64_t fp_activity_seen;
	uint32_t fp_quiet_steps;
	uint64_t fp_quiet_ns;
	bool     fp_verbose;
	unsigned fp_logs;

	struct fzp_alloc fp_alloc[FZP_MAX_ALLOCS];
	uint64_t fp_next_pfn;
	uint64_t fp_pages_live;

	uint64_t fp_guest_os_id;
	uint64_t fp_hypercall;
	uint64_t fp_simp[FZP_MAX_VCPU];
	uint64_t fp_siefp[FZP_MAX_VCPU];
	uint64_t fp_sint2[FZP_MAX_VCPU];
	uint64_t fp_scontrol[FZP_MAX_VCPU];

	/* the script */
	const uint8_t *fp_s;
	size_t   fp_slen;
	size_t   fp_spos;
	uint32_t fp_waits[VMBUS_CHANMSG_COUNT];	/* WAIT ops passed, per type */
	bool     fp_wait_counted;		/* current WAIT already counted */
	uint32_t fp_idle;
	uint16_t fp_post_status;
	uint32_t fp_post_status_n;
	bool     fp_in_pump;

	/* what the guest did */
	uint32_t fp_posted[VMBUS_CHANMSG_COUNT];
	uint64_t fp_posts;
	uint64_t fp_signals;
	uint64_t fp_intr_page_gpa;
	bool     fp_unload_sent;
	uint32_t fp_open_relid;			/* last OPENCHANNEL */
	uint32_t fp_open_gpadl;
	uint32_t fp_open_downstream;
	struct fzp_gpadl fp_gpadl[FZP_MAX_GPADLS];
	struct fzp_notice fp_notice[FZP_MAX_NOTICES];
	unsigned fp_nnotice;
	struct fzp_chan fp_chan[FZP_MAX_CHANS];
	uint64_t fp_ring_drops;		/* RING packets that did not fit */
	bool     fp_no_rings;		/* the harness plays the rings itself */
	/* Virtual-time budget (0: none): past it, the clock longjmps to
	 * fp_budget_jmp, abandoning the input (FUZZ_SKIP_KNOWN only). */
	uint64_t fp_budget_ns;
	jmp_buf *fp_budget_jmp;
	/* The guest's heap (zalloc) while FUZZ_SKIP_KNOWN is set, linked
	 * here so fzp_abandon() can free it; fzp_fini unlinks what is left,
	 * so real leaks are still reported. */
	bool     fp_track_heap;
	struct fzp_heap *fp_heap;
};

/* Fresh port: nvcpu vCPUs, messages to msg_vp, the script s[0..slen). */
void fzp_init(struct fzp *fp, uint32_t nvcpu, uint32_t msg_vp,
	      const uint8_t *s, size_t slen);
/* Free what is still allocated (pages the guest leaked on purpose). */
void fzp_fini(struct fzp *fp);
/* An input abandoned half-way (budget longjmp): free every page and heap
 * block the guest got from the port (FUZZ_SKIP_KNOWN only), then fini. */
void fzp_abandon(struct fzp *fp);
/* Run the script as far as it can go now (also called by every port op). */
void fzp_pump(struct fzp *fp);
/* Set relid's event flag now (what FZP_OP_EVENT does). */
void fzp_event(struct fzp *fp, uint32_t relid);
/* True once every script op was consumed. */
bool fzp_done(const struct fzp *fp);
/* One step of the clock for a harness's own loop (what a clock read does,
 * without the pump). */
void fzp_advance(struct fzp *fp);
/* True when nothing moved for FZP_STUCK_NS of virtual time (longer than
 * any guest timeout): a harness's loop may stop waiting for the script. */
bool fzp_stuck(const struct fzp *fp);
/* Guest pointer for [gpa, gpa + len) inside one allocation, or NULL. */
void *fzp_gpa(struct fzp *fp, uint64_t gpa, size_t len);
/* The GPADL the guest described with handle h (NULL if none). */
const struct fzp_gpadl *fzp_find_gpadl(const struct fzp *fp, uint32_t h);
/* PFN i of a single-range GPADL's stream (0 if out of range). */
uint64_t fzp_gpadl_pfn(const struct fzp_gpadl *g, uint32_t i);

#endif /* TESTS_FUZZ_FUZZPORT_H */
