/*
 * src/common/ring.h - VMBus ring buffer primitives, shared by the guest core
 * (freestanding) and the host emulator (spec/vmbus-core.md section 3,
 * STYLE 1, 5, 6, 7).
 *
 * One struct vmbus_ring is ONE direction of a channel, used by ONE side:
 * either as the writer (vmbus_ring_write*, set_pending_send, publish) or as
 * the reader (peek/read/skip/read_done, mask/unmask). The ring is
 * packet-agnostic except for the 8-byte trailer: it never parses the 16-byte
 * packet descriptor (that is the channel layer's copy-in job, spec 4.7).
 *
 * Trust model:
 *  - Our own index (write cursor for a writer, read cursor for a reader) is
 *    kept in private memory and only *published* to the shared page.
 *  - The peer's index is loaded (acquire) into a private snapshot, checked
 *    (< data size, 8-aligned, and moving only forward inside the window the
 *    peer owns), and only then used. It is re-read only when the snapshot no
 *    longer covers a request, i.e. at most once per packet / batch.
 *  - A bad peer index makes the ring BROKEN: counted in rb_proto_errors,
 *    reason in rb_broken_why, never followed; every later call returns
 *    -VMBUS_EPROTO (or false / 0 for the bool / size calls; mask, unmask
 *    and set_pending_send become no-ops). Shared memory is never touched
 *    after that except by vmbus_ring_reset_shared().
 *
 * Concurrency: none of these functions sleeps or blocks; they never take a
 * lock. One ring must be used by one thread at a time per side (the caller
 * serialises its writers and its readers); the two sides run concurrently
 * in different address spaces.
 *
 * Signals (spec 3.7) are not sent here: calls return whether one is needed.
 */
#ifndef VMBUS_COMMON_RING_H
#define VMBUS_COMMON_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/ring.h"
#include "vmbus/errno.h"

/* One gather element for vmbus_ring_write(). */
struct vmbus_iov {
	const void *iov_base;
	uint32_t    iov_len;
};

/*
 * Private state of one side of one ring. Callers embed it; only ring.c
 * touches the fields (read the counters freely).
 */
struct vmbus_ring {
	struct hv_ring_control *rb_ctl;	/* shared control page */
	uint8_t  *rb_data;		/* shared data area */
	uint32_t  rb_dsize;		/* data area bytes (ring_bytes - 4096) */

	uint32_t  rb_cur;		/* private cursor: writer's next write
					 * offset / reader's next read offset */
	uint32_t  rb_pub;		/* own index as last published */
	uint32_t  rb_peer;		/* last validated snapshot of the
					 * peer's index */
	bool      rb_broken;		/* peer violated the protocol */
	uint32_t  rb_broken_why;	/* first reason, VMBUS_RING_BAD_* */
#define VMBUS_RING_BAD_NONE	0
#define VMBUS_RING_BAD_RANGE	1	/* peer index >= data size */
#define VMBUS_RING_BAD_ALIGN	2	/* peer index not 8-aligned */
#define VMBUS_RING_BAD_WINDOW	3	/* peer index moved backwards or into
					 * bytes the peer does not own */
#define VMBUS_RING_BAD_PACKET	4	/* set by the caller (set_broken):
					 * corrupt packet in the data area */

	/* Statistics (private, only this side updates them). */
	uint64_t  rb_packets;		/* packets written / consumed */
	uint64_t  rb_bytes;		/* packet bytes (trailers excluded) */
	uint64_t  rb_proto_errors;	/* peer protocol violations seen */
	uint64_t  rb_full;		/* writer: -EAGAIN returns */
};

/*
 * vmbus_ring_init - bind private state to a mapped ring.
 *   ring_base:  control page followed by the data pages; 8-byte aligned.
 *   ring_bytes: whole ring size, multiple of 4096, >= 8192, < 2 GiB.
 * Does NOT touch shared memory: cursors start at 0 (a freshly reset ring).
 * Use vmbus_ring_reset_shared() (owner at open) or vmbus_ring_attach()
 * (a side that joins a ring already in use) next.
 * Returns 0, or -VMBUS_EINVAL on a bad argument.
 */
int vmbus_ring_init(struct vmbus_ring *r, void *ring_base, uint32_t ring_bytes);

/*
 * vmbus_ring_reset_shared - owner initialisation of the control page
 * (the guest, at channel open, before the host sees the GPADL).
 * Zeroes the whole control page, sets both indices 0, interrupt_mask 0,
 * pending_send_sz 0 and feature_bits = FEAT_PENDING_SEND_SZ (Linux sets it
 * on both its rings, spec 3.2). writer_side says which side r is; the
 * private state is reset and the broken state cleared.
 */
void vmbus_ring_reset_shared(struct vmbus_ring *r, bool writer_side);

/*
 * vmbus_ring_attach - adopt the current shared indices as this side's
 * cursors without writing anything (the host, after OpenChannel).
 * writer_side: true if r writes this ring.
 * Returns 0, or -VMBUS_EPROTO if either index is invalid (ring now broken).
 */
int vmbus_ring_attach(struct vmbus_ring *r, bool writer_side);

/* ---- writer side ---- */

/*
 * vmbus_ring_write - write one packet and publish it.
 * The packet is the concatenation of iov[0..iovcnt) (caller's descriptor
 * first; total must be a multiple of 8 and equal len8 * 8), followed by the
 * trailer written here. Published with one release store of write_index.
 * *need_signal (may be NULL if the caller ignores it) is set true iff the
 * reader must be signalled: interrupt_mask was 0 and the ring was empty
 * before this packet (spec 3.5 steps 4-5).
 * Returns:
 *   0               written and published.
 *   -VMBUS_EAGAIN   not enough room now (raw free space must be STRICTLY
 *                   greater than total + 8); nothing written. The caller
 *                   may vmbus_ring_set_pending_send(total + 8), retry once,
 *                   then wait for the reader's signal.
 *   -VMBUS_EMSGSIZE total + 8 >= data size: can never fit.
 *   -VMBUS_EINVAL   total not a multiple of 8 or zero, or NULL iov.
 *   -VMBUS_EPROTO   the peer's read_index is invalid; the ring is broken.
 *                   (If detected while deciding need_signal, the packet was
 *                   already published.)
 */
int vmbus_ring_write(struct vmbus_ring *r, const struct vmbus_iov *iov,
    unsigned iovcnt, bool *need_signal);

/*
 * Batch API: vmbus_ring_write_nopub() copies a packet exactly like
 * vmbus_ring_write() (same return codes, same full rule counting every
 * unpublished packet) but does not publish it; vmbus_ring_publish() then
 * publishes all of them with one write_index store, and the empty test for
 * *need_signal uses the write_index before the batch (spec 3.5, OVMM/DPDK).
 * vmbus_ring_publish() returns 0 (also with nothing to publish: then
 * *need_signal = false) or -VMBUS_EPROTO (broken; see vmbus_ring_write).
 */
int vmbus_ring_write_nopub(struct vmbus_ring *r, const struct vmbus_iov *iov,
    unsigned iovcnt);
int vmbus_ring_publish(struct vmbus_ring *r, bool *need_signal);

/*
 * vmbus_ring_set_pending_send - ask the reader for a signal once raw free
 * space exceeds `bytes` (use the T = total + 8 of the refused write); 0
 * clears the request. Bytes of packets written with write_nopub but not yet
 * published are added to the stored value (the reader cannot see them;
 * MSVM does the same), so better publish before blocking. Sequentially
 * consistent store followed by a full fence, so a retry of the write
 * afterwards sees any space freed before the reader could have read
 * pending_send_sz (spec 3.5 step 1): set, retry once, then wait.
 */
void vmbus_ring_set_pending_send(struct vmbus_ring *r, uint32_t bytes);

/*
 * vmbus_ring_write_room - raw free space after a fresh (acquire, validated)
 * load of read_index, counting unpublished packets as used. A write of a
 * packet of total bytes fits iff the result is > total + 8 (spec 3.4).
 * Returns 0 when the ring is broken (a bad read_index seen here breaks it).
 */
uint32_t vmbus_ring_write_room(struct vmbus_ring *r);

/* ---- reader side ---- */

/*
 * vmbus_ring_peek - copy len bytes at the private read cursor into buf,
 * consuming nothing. Refreshes the write_index snapshot only if it does
 * not already cover len + 8 bytes.
 * Returns 0, -VMBUS_EAGAIN if fewer than len + 8 bytes are available,
 * -VMBUS_EMSGSIZE if len + 8 bytes can never be available (len + 16 > data
 * size), -VMBUS_EPROTO (bad write_index; broken).
 */
int vmbus_ring_peek(struct vmbus_ring *r, void *buf, uint32_t len);

/*
 * vmbus_ring_read - copy len bytes starting skip bytes past the cursor into
 * buf (buf may be NULL when len is 0), then consume skip + len + 8 bytes
 * (the packet and its trailer) privately. The space is NOT returned to the
 * writer until vmbus_ring_read_done(). The caller has validated the packet
 * (spec 4.7) and passes its whole size as skip + len.
 * skip + len must be a multiple of 8. Returns as vmbus_ring_peek() (with
 * skip + len + 8 in place of len + 8), plus -VMBUS_EINVAL for misalignment.
 */
int vmbus_ring_read(struct vmbus_ring *r, void *buf, uint32_t len,
    uint32_t skip);

/* vmbus_ring_skip - consume one packet of len bytes (+ trailer) uncopied. */
int vmbus_ring_skip(struct vmbus_ring *r, uint32_t len);

/*
 * vmbus_ring_read_done - publish the read cursor as read_index (release:
 * all packet loads are done first). Returns true iff the writer must be
 * signalled: the ring's feature_bits has FEAT_PENDING_SEND_SZ, the writer's
 * pending_send_sz != 0 and free_before <= pending < free_after (spec 3.6
 * step 3). Returns false when nothing was consumed since the last call or
 * the ring is broken (a bad write_index seen here breaks it).
 */
bool vmbus_ring_read_done(struct vmbus_ring *r);

/*
 * vmbus_ring_bytes_to_read - bytes available past the private cursor,
 * after a fresh (acquire, validated) load of write_index. 0 when broken.
 */
uint32_t vmbus_ring_bytes_to_read(struct vmbus_ring *r);

/* vmbus_ring_mask - interrupt_mask = 1, then a full fence (draining). */
void vmbus_ring_mask(struct vmbus_ring *r);

/*
 * vmbus_ring_unmask - interrupt_mask = 0, full fence, then return the bytes
 * still available (vmbus_ring_bytes_to_read). Non-zero means a packet may
 * have arrived while masked without a signal: keep draining (spec 3.6).
 */
uint32_t vmbus_ring_unmask(struct vmbus_ring *r);

/* ---- both sides ---- */

/* vmbus_ring_broken - true once the peer broke the protocol. */
bool vmbus_ring_broken(const struct vmbus_ring *r);

/*
 * vmbus_ring_set_broken - the caller found a corrupt packet (spec 4.7):
 * mark the ring broken (VMBUS_RING_BAD_PACKET) and count it.
 */
void vmbus_ring_set_broken(struct vmbus_ring *r);

/* Largest packet (trailer excluded) a ring of data size dsize can carry. */
static inline uint32_t vmbus_ring_max_packet(const struct vmbus_ring *r)
{
	return r->rb_dsize - 2u * HV_RING_ALIGN;
}

#endif /* VMBUS_COMMON_RING_H */
