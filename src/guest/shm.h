/*
 * src/guest/shm.h - the guest core's named accessors for memory the host
 * can write (STYLE 5): SynIC message slots, event flags, the pre-2.4
 * interrupt page. `grep vmbus_shm_` in src/guest lists every place a host
 * value enters the core (ring memory is read only by src/common/ring.c).
 *
 * Multi-byte values are little-endian on the wire; the accessors return
 * CPU order. All of them are lock-free atomics from <stdatomic.h>.
 */
#ifndef VMBUS_GUEST_SHM_H
#define VMBUS_GUEST_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/wire.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_CHAR_LOCK_FREE == 2, "8-bit atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) <= 8,
    "shared u64 words are accessed as _Atomic uint64_t");

static inline _Atomic uint64_t *vmbus_shm_a64(void *p)
{
	return (_Atomic uint64_t *)p;
}

/* Acquire load of a little-endian u32 (message slot type). */
static inline uint32_t vmbus_shm_load_acq32(const void *p)
{
	return hv_le32(atomic_load_explicit((_Atomic uint32_t *)(uintptr_t)p,
	    memory_order_acquire));
}

/* Relaxed load of one byte (a message slot's payload size). */
static inline uint8_t vmbus_shm_load8(const void *p)
{
	return atomic_load_explicit((_Atomic uint8_t *)(uintptr_t)p,
	    memory_order_relaxed);
}

/* Exchange a 64-bit word with v (CPU order in and out), full fence. */
static inline uint64_t vmbus_shm_xchg64(void *p, uint64_t v)
{
	return hv_le64(atomic_exchange_explicit(vmbus_shm_a64(p), hv_le64(v),
	    memory_order_seq_cst));
}

/* Relaxed load of a 64-bit word (cheap "anything set?" test). */
static inline uint64_t vmbus_shm_peek64(void *p)
{
	return hv_le64(atomic_load_explicit(vmbus_shm_a64(p),
	    memory_order_relaxed));
}

/* Atomically clear bits in one byte; returns the old byte. */
static inline uint8_t vmbus_shm_fetch_and8(void *p, uint8_t mask)
{
	return atomic_fetch_and_explicit((_Atomic uint8_t *)p, mask,
	    memory_order_seq_cst);
}

/* Atomically set bits in one byte (release: data before the bit). */
static inline void vmbus_shm_fetch_or8(void *p, uint8_t bits)
{
	(void)atomic_fetch_or_explicit((_Atomic uint8_t *)p, bits,
	    memory_order_release);
}

/* Plain copy out of shared memory into private memory (after an acquire). */
static inline void vmbus_shm_copy_in(void *dst, const void *src, size_t n)
{
	__builtin_memcpy(dst, src, n);
}

#endif /* VMBUS_GUEST_SHM_H */
