/*
 * src/common/ring.c - VMBus ring buffer (spec/vmbus-core.md section 3).
 *
 * Freestanding: compiler headers and project headers only.
 *
 * All shared-memory accesses go through the vmbus_shm_* accessors below:
 * four control-word operations (acquire / seq_cst loads, seq_cst stores),
 * two data-area copies that split at the end of the data area, and the
 * owner's zeroing of the control page. grep vmbus_shm_ lists every place a
 * peer value enters this file.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/ring.h"
#include "hv/wire.h"
#include "vmbus/errno.h"

#include "ring.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) &&
    _Alignof(_Atomic uint32_t) == _Alignof(uint32_t),
    "control words are accessed as _Atomic uint32_t");

/* Largest data area we accept, so that index sums never overflow u32. */
#define RING_MAX_DSIZE 0x7fff0000u

/* ---- shared-memory accessors (the only code touching the ring) ---- */

static inline _Atomic uint32_t *
vmbus_shm_word(uint32_t *p)
{
	return (_Atomic uint32_t *)(void *)p;
}

/* Peer index / peer-owned word: acquire, so data loads come after it. */
static inline uint32_t
vmbus_shm_load_acq(uint32_t *p)
{
	return hv_le32_to_cpu(atomic_load_explicit(vmbus_shm_word(p),
	    memory_order_acquire));
}

/* Words read right after a full fence (interrupt_mask, pending_send_sz). */
static inline uint32_t
vmbus_shm_load_sc(uint32_t *p)
{
	return hv_le32_to_cpu(atomic_load_explicit(vmbus_shm_word(p),
	    memory_order_seq_cst));
}

/* Own words: seq_cst store = release (publishes our data/reads) + total order. */
static inline void
vmbus_shm_store_sc(uint32_t *p, uint32_t v)
{
	atomic_store_explicit(vmbus_shm_word(p), hv_cpu_to_le32(v),
	    memory_order_seq_cst);
}

static inline void
vmbus_shm_full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

/*
 * Copy len bytes of the data area at off (< dsize) out, wrapping at the end.
 * Inline: the common case (no wrap) is one memcpy in the caller.
 */
static inline void
vmbus_shm_copy_in(const struct vmbus_ring *r, uint32_t off, void *dst,
    uint32_t len)
{
	uint32_t first = r->rb_dsize - off;

	if (len == 0)
		return;		/* dst may be NULL (vmbus_ring_skip) */
	if (__builtin_expect(len <= first, 1)) {
		__builtin_memcpy(dst, r->rb_data + off, len);
		return;
	}
	__builtin_memcpy(dst, r->rb_data + off, first);
	__builtin_memcpy((uint8_t *)dst + first, r->rb_data, len - first);
}

/* Copy len bytes into the data area at off (< dsize), wrapping at the end. */
static inline void
vmbus_shm_copy_out(struct vmbus_ring *r, uint32_t off, const void *src,
    uint32_t len)
{
	uint32_t first = r->rb_dsize - off;

	if (__builtin_expect(len <= first, 1)) {
		__builtin_memcpy(r->rb_data + off, src, len);
		return;
	}
	__builtin_memcpy(r->rb_data + off, src, first);
	__builtin_memcpy(r->rb_data, (const uint8_t *)src + first,
	    len - first);
}

/*
 * The 8-byte trailer at off: off and dsize are multiples of 8, so it never
 * wraps; one aligned 8-byte store.
 */
static inline void
vmbus_shm_put_trailer(struct vmbus_ring *r, uint32_t off, uint32_t start)
{
	struct hv_ring_trailer tr;

	tr.rt_reserved = 0;
	tr.rt_offset = hv_cpu_to_le32(start);
	__builtin_memcpy(r->rb_data + off, &tr, sizeof(tr));
}

static void
vmbus_shm_zero_control(struct vmbus_ring *r)
{
	__builtin_memset(r->rb_ctl, 0, sizeof(*r->rb_ctl));
}

/* ---- private helpers ---- */

/* Bytes from index a forward to index b (both < dsize). */
static inline uint32_t
ring_fwd(const struct vmbus_ring *r, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : r->rb_dsize - a + b;
}

/* a + n within the data area (a < dsize, n < dsize). */
static inline uint32_t
ring_add(const struct vmbus_ring *r, uint32_t a, uint32_t n)
{
	uint32_t s = a + n;

	return s >= r->rb_dsize ? s - r->rb_dsize : s;
}

static void
ring_fail(struct vmbus_ring *r, uint32_t why)
{
	r->rb_proto_errors++;
	if (!r->rb_broken) {
		r->rb_broken = true;
		r->rb_broken_why = why;
	}
}

/*
 * Check a freshly loaded peer index v. Basic rule (spec 3.3, OVMM
 * validate): below the data size and 8-aligned. Window rule: the peer only
 * moves its index forward and never past bytes we gave it, i.e. seen from
 * our published index `base`, the new value is at least as far as the old
 * snapshot (reader checking write_index: base = our read_index) or at most
 * as far as `limit` (writer checking read_index: base = old snapshot,
 * limit = our published write_index).
 */
static int
ring_check_range(struct vmbus_ring *r, uint32_t v)
{
	if (v >= r->rb_dsize) {
		ring_fail(r, VMBUS_RING_BAD_RANGE);
		return -VMBUS_EPROTO;
	}
	if (v & (HV_RING_ALIGN - 1)) {
		ring_fail(r, VMBUS_RING_BAD_ALIGN);
		return -VMBUS_EPROTO;
	}
	return 0;
}

/* Writer: refresh the read_index snapshot. */
static int
ring_refresh_read_index(struct vmbus_ring *r)
{
	uint32_t v = vmbus_shm_load_acq(&r->rb_ctl->rc_read_index);

	if (ring_check_range(r, v) != 0)
		return -VMBUS_EPROTO;
	/* The reader may only consume bytes we published. */
	if (ring_fwd(r, r->rb_peer, v) > ring_fwd(r, r->rb_peer, r->rb_pub)) {
		ring_fail(r, VMBUS_RING_BAD_WINDOW);
		return -VMBUS_EPROTO;
	}
	r->rb_peer = v;
	return 0;
}

/* Reader: refresh the write_index snapshot. */
static int
ring_refresh_write_index(struct vmbus_ring *r)
{
	uint32_t v = vmbus_shm_load_acq(&r->rb_ctl->rc_write_index);

	if (ring_check_range(r, v) != 0)
		return -VMBUS_EPROTO;
	/*
	 * The writer never takes back published bytes, and never writes
	 * into bytes we have not released (our published read_index).
	 */
	if (ring_fwd(r, r->rb_pub, v) < ring_fwd(r, r->rb_pub, r->rb_peer)) {
		ring_fail(r, VMBUS_RING_BAD_WINDOW);
		return -VMBUS_EPROTO;
	}
	r->rb_peer = v;
	return 0;
}

/* ---- setup ---- */

int
vmbus_ring_init(struct vmbus_ring *r, void *ring_base, uint32_t ring_bytes)
{
	if (r == NULL || ring_base == NULL)
		return -VMBUS_EINVAL;
	if (((uintptr_t)ring_base & (HV_RING_ALIGN - 1)) != 0)
		return -VMBUS_EINVAL;
	if (ring_bytes % HV_PAGE_SIZE != 0 || ring_bytes < HV_RING_MIN_BYTES ||
	    ring_bytes - HV_RING_CONTROL_SIZE > RING_MAX_DSIZE)
		return -VMBUS_EINVAL;

	__builtin_memset(r, 0, sizeof(*r));
	r->rb_ctl = (struct hv_ring_control *)ring_base;
	r->rb_data = (uint8_t *)ring_base + HV_RING_CONTROL_SIZE;
	r->rb_dsize = ring_bytes - HV_RING_CONTROL_SIZE;
	return 0;
}

void
vmbus_ring_reset_shared(struct vmbus_ring *r, bool writer_side)
{
	/*
	 * Linux sets FEAT_PENDING_SEND_SZ on both of its rings (spec 3.2):
	 * as writer it promises to set pending_send_sz, as reader to honour
	 * it. writer_side only matters for which cursor is ours, and both
	 * cursors restart at 0.
	 */
	(void)writer_side;
	vmbus_shm_zero_control(r);
	vmbus_shm_store_sc(&r->rb_ctl->rc_write_index, 0);
	vmbus_shm_store_sc(&r->rb_ctl->rc_read_index, 0);
	vmbus_shm_store_sc(&r->rb_ctl->rc_interrupt_mask, 0);
	vmbus_shm_store_sc(&r->rb_ctl->rc_pending_send_sz, 0);
	vmbus_shm_store_sc(&r->rb_ctl->rc_feature_bits,
	    HV_RING_FEAT_PENDING_SEND_SZ);
	vmbus_shm_full_fence();

	r->rb_cur = r->rb_pub = r->rb_peer = 0;
	r->rb_broken = false;
	r->rb_broken_why = VMBUS_RING_BAD_NONE;
}

int
vmbus_ring_attach(struct vmbus_ring *r, bool writer_side)
{
	uint32_t w = vmbus_shm_load_acq(&r->rb_ctl->rc_write_index);
	uint32_t rd = vmbus_shm_load_acq(&r->rb_ctl->rc_read_index);

	if (r->rb_broken)
		return -VMBUS_EPROTO;
	/* Both are checked: one is the peer's, the other our own restart. */
	if (ring_check_range(r, w) != 0 || ring_check_range(r, rd) != 0)
		return -VMBUS_EPROTO;
	if (writer_side) {
		r->rb_cur = r->rb_pub = w;
		r->rb_peer = rd;
	} else {
		r->rb_cur = r->rb_pub = rd;
		r->rb_peer = w;
	}
	return 0;
}

/* ---- writer ---- */

int
vmbus_ring_write_nopub(struct vmbus_ring *r, const struct vmbus_iov *iov,
    unsigned iovcnt)
{
	uint64_t total = 0;
	uint32_t need, start, off;
	unsigned i;

	if (r->rb_broken)
		return -VMBUS_EPROTO;
	if (iov == NULL && iovcnt != 0)
		return -VMBUS_EINVAL;
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_base == NULL && iov[i].iov_len != 0)
			return -VMBUS_EINVAL;
		total += iov[i].iov_len;
	}
	if (total == 0 || (total & (HV_RING_ALIGN - 1)) != 0)
		return -VMBUS_EINVAL;
	/* Raw free space is at most dsize and must exceed total + 8. */
	if (total + HV_RING_ALIGN >= r->rb_dsize)
		return -VMBUS_EMSGSIZE;
	need = (uint32_t)total + HV_RING_ALIGN;

	/*
	 * Full rule (spec 3.4): raw_free > need, strictly; empty is w == r,
	 * so the ring can never be filled completely. Used bytes count our
	 * unpublished packets too. Re-read read_index only when the
	 * snapshot says full.
	 */
	if (r->rb_dsize - ring_fwd(r, r->rb_peer, r->rb_cur) <= need) {
		if (ring_refresh_read_index(r) != 0)
			return -VMBUS_EPROTO;
		if (r->rb_dsize - ring_fwd(r, r->rb_peer, r->rb_cur) <= need) {
			r->rb_full++;
			return -VMBUS_EAGAIN;
		}
	}

	start = r->rb_cur;
	off = start;
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			continue;
		vmbus_shm_copy_out(r, off, iov[i].iov_base, iov[i].iov_len);
		off = ring_add(r, off, iov[i].iov_len);
	}
	/* Trailer: start offset in bytes 4-7 (spec 3.3). */
	vmbus_shm_put_trailer(r, off, start);
	r->rb_cur = ring_add(r, off, sizeof(struct hv_ring_trailer));

	r->rb_packets++;
	r->rb_bytes += total;
	return 0;
}

uint32_t
vmbus_ring_write_room(struct vmbus_ring *r)
{
	if (r->rb_broken || ring_refresh_read_index(r) != 0)
		return 0;
	return r->rb_dsize - ring_fwd(r, r->rb_peer, r->rb_cur);
}

int
vmbus_ring_publish(struct vmbus_ring *r, bool *need_signal)
{
	uint32_t old = r->rb_pub;
	bool sig = false;
	int rc = 0;

	if (r->rb_broken) {
		rc = -VMBUS_EPROTO;
		goto out;
	}
	if (r->rb_cur == old)
		goto out;

	/*
	 * NOTE: order is critical (spec 3.5, 3.8). Packet stores, then the
	 * write_index store (seq_cst: release for the data), then a full
	 * fence so the interrupt_mask load cannot pass the index store
	 * (pairs with the reader's unmask: store mask 0, fence, load
	 * write_index).
	 */
	vmbus_shm_store_sc(&r->rb_ctl->rc_write_index, r->rb_cur);
	r->rb_pub = r->rb_cur;
	vmbus_shm_full_fence();
	if (vmbus_shm_load_sc(&r->rb_ctl->rc_interrupt_mask) != 0)
		goto out;
	/* Signal only on empty -> non-empty: reader was at the batch start. */
	if (ring_refresh_read_index(r) != 0) {
		rc = -VMBUS_EPROTO;
		goto out;
	}
	sig = (r->rb_peer == old);
out:
	if (need_signal != NULL)
		*need_signal = sig;
	return rc;
}

int
vmbus_ring_write(struct vmbus_ring *r, const struct vmbus_iov *iov,
    unsigned iovcnt, bool *need_signal)
{
	int rc = vmbus_ring_write_nopub(r, iov, iovcnt);

	if (rc != 0) {
		if (need_signal != NULL)
			*need_signal = false;
		return rc;
	}
	return vmbus_ring_publish(r, need_signal);
}

void
vmbus_ring_set_pending_send(struct vmbus_ring *r, uint32_t bytes)
{
	uint64_t v = bytes;

	if (r->rb_broken)
		return;
	/* The reader measures free space against the published write_index. */
	if (v != 0)
		v += ring_fwd(r, r->rb_pub, r->rb_cur);
	if (v > UINT32_MAX)
		v = UINT32_MAX;
	vmbus_shm_store_sc(&r->rb_ctl->rc_pending_send_sz, (uint32_t)v);
	/* NOTE: pairs with the reader's read_index store + fence (spec 3.5). */
	vmbus_shm_full_fence();
}

/* ---- reader ---- */

/*
 * Make sure n bytes are available past the cursor. n can never be
 * available if n > dsize - 8 (the writer must leave 8 bytes free).
 */
static int
ring_avail(struct vmbus_ring *r, uint64_t n)
{
	if (r->rb_broken)
		return -VMBUS_EPROTO;
	if (n > r->rb_dsize - HV_RING_ALIGN)
		return -VMBUS_EMSGSIZE;
	if (ring_fwd(r, r->rb_cur, r->rb_peer) >= n)
		return 0;
	if (ring_refresh_write_index(r) != 0)
		return -VMBUS_EPROTO;
	if (ring_fwd(r, r->rb_cur, r->rb_peer) >= n)
		return 0;
	return -VMBUS_EAGAIN;
}

int
vmbus_ring_peek(struct vmbus_ring *r, void *buf, uint32_t len)
{
	int rc;

	if (buf == NULL && len != 0)
		return -VMBUS_EINVAL;
	rc = ring_avail(r, (uint64_t)len + HV_RING_ALIGN);
	if (rc != 0)
		return rc;
	vmbus_shm_copy_in(r, r->rb_cur, buf, len);
	return 0;
}

int
vmbus_ring_read(struct vmbus_ring *r, void *buf, uint32_t len, uint32_t skip)
{
	uint64_t pkt = (uint64_t)skip + len;
	int rc;

	if ((buf == NULL && len != 0) || pkt == 0 ||
	    (pkt & (HV_RING_ALIGN - 1)) != 0)
		return -VMBUS_EINVAL;
	rc = ring_avail(r, pkt + HV_RING_ALIGN);
	if (rc != 0)
		return rc;
	/* skip < dsize here, so ring_add stays in range. */
	vmbus_shm_copy_in(r, ring_add(r, r->rb_cur, skip), buf, len);
	r->rb_cur = ring_add(r, r->rb_cur, (uint32_t)pkt + HV_RING_ALIGN);
	r->rb_packets++;
	r->rb_bytes += pkt;
	return 0;
}

int
vmbus_ring_skip(struct vmbus_ring *r, uint32_t len)
{
	return vmbus_ring_read(r, NULL, 0, len);
}

bool
vmbus_ring_read_done(struct vmbus_ring *r)
{
	uint32_t consumed, pending, free_after;

	if (r->rb_broken || r->rb_cur == r->rb_pub)
		return false;
	consumed = ring_fwd(r, r->rb_pub, r->rb_cur);

	/*
	 * NOTE: order is critical (spec 3.6, 3.8). All packet loads are
	 * done; the seq_cst store releases them, then a full fence so the
	 * pending_send_sz load cannot pass the read_index store (pairs with
	 * the writer's pending store + fence + read_index load).
	 */
	vmbus_shm_store_sc(&r->rb_ctl->rc_read_index, r->rb_cur);
	r->rb_pub = r->rb_cur;

	if ((vmbus_shm_load_acq(&r->rb_ctl->rc_feature_bits) &
	    HV_RING_FEAT_PENDING_SEND_SZ) == 0)
		return false;
	vmbus_shm_full_fence();
	pending = vmbus_shm_load_sc(&r->rb_ctl->rc_pending_send_sz);
	if (pending == 0)
		return false;
	if (ring_refresh_write_index(r) != 0)
		return false;

	/* raw_free seen by the writer now: dsize - bytes_to_read. */
	free_after = r->rb_dsize - ring_fwd(r, r->rb_cur, r->rb_peer);
	if (free_after <= pending)
		return false;	/* still not enough (exact fit is not enough) */
	/*
	 * free_before = free_after - consumed; if the writer already used
	 * some of the freed space it is running: the signal is then at worst
	 * spurious, never missing.
	 */
	if (free_after < consumed)
		return true;
	return free_after - consumed <= pending;
}

uint32_t
vmbus_ring_bytes_to_read(struct vmbus_ring *r)
{
	if (r->rb_broken)
		return 0;
	if (ring_refresh_write_index(r) != 0)
		return 0;
	return ring_fwd(r, r->rb_cur, r->rb_peer);
}

void
vmbus_ring_mask(struct vmbus_ring *r)
{
	if (r->rb_broken)
		return;
	vmbus_shm_store_sc(&r->rb_ctl->rc_interrupt_mask, 1);
	vmbus_shm_full_fence();
}

uint32_t
vmbus_ring_unmask(struct vmbus_ring *r)
{
	if (r->rb_broken)
		return 0;
	vmbus_shm_store_sc(&r->rb_ctl->rc_interrupt_mask, 0);
	/* NOTE: pairs with the writer's write_index store + fence (spec 3.6). */
	vmbus_shm_full_fence();
	return vmbus_ring_bytes_to_read(r);
}

/* ---- both ---- */

bool
vmbus_ring_broken(const struct vmbus_ring *r)
{
	return r->rb_broken;
}

void
vmbus_ring_set_broken(struct vmbus_ring *r)
{
	ring_fail(r, VMBUS_RING_BAD_PACKET);
}
