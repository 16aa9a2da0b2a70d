/*
 * vmbus/platform.h - the platform port: everything the guest core and its
 * drivers need from the operating system that hosts them.
 *
 * The core never touches the machine except through this table. A port is
 * a `struct vmbus_platform` filled in by the OS (the posix port in
 * src/port/posix is the worked example; tests use a fake port). All
 * functions receive the port's own context pointer `ctx` first.
 *
 * Conventions for every entry below:
 *   - "May sleep": the call may block the calling thread. Calls marked
 *     "never sleeps" may be made from the ISR (the port's interrupt context).
 *   - "May fail": returns 0 or a negative VMBUS_E* code (vmbus/errno.h).
 *     Entries that cannot fail return void or a plain value.
 *   - Ownership is stated per call. "Shared" memory is memory the host may
 *     read or write; the core treats its contents as untrusted.
 *
 * Polled, single-threaded operation is first class: a port may leave
 * `irq_attach`, `wait` and `wake` NULL. The core then never blocks: every
 * bounded wait loops on `now_ns`, calling vmbus_poll() (vmbus/vmbus.h) until
 * its condition holds or its deadline passes.
 *
 * Freestanding: only compiler-provided headers.
 */
#ifndef VMBUS_PLATFORM_H
#define VMBUS_PLATFORM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/errno.h"

/* memcpy and friends: compiler builtins (the port's libc or kernel provides
 * the out-of-line symbols the compiler may emit for them). */
#define vmbus_memcpy  __builtin_memcpy
#define vmbus_memset  __builtin_memset
#define vmbus_memcmp  __builtin_memcmp
#define vmbus_memmove __builtin_memmove

/*
 * Storage for port locks and wait objects lives inside core structs, so the
 * core needs no allocation for them (SQLite's szOsFile idea, with a fixed
 * upper bound). A port whose primitives are larger must allocate and keep a
 * pointer in this storage.
 */
#define VMBUS_PORT_LOCK_BYTES 64
#define VMBUS_PORT_WAIT_BYTES 64
typedef struct vmbus_lock {
	_Alignas(16) unsigned char l_opaque[VMBUS_PORT_LOCK_BYTES];
} vmbus_lock_t;
typedef struct vmbus_wait {
	_Alignas(16) unsigned char w_opaque[VMBUS_PORT_WAIT_BYTES];
} vmbus_wait_t;

/* Log levels */
#define VMBUS_LOG_ERR   0
#define VMBUS_LOG_WARN  1
#define VMBUS_LOG_INFO  2
#define VMBUS_LOG_DEBUG 3

/* The core's per-vCPU interrupt handler, called by the port (see irq_attach). */
typedef void vmbus_isr_fn(void *arg, uint32_t vp);
/* Deferred work and timer callbacks. */
typedef void vmbus_work_fn(void *arg);

struct vmbus_platform {
	void *ctx;               /* the port's own state, passed to every call */

	/* ---- the machine ---------------------------------------------- */

	/* Number of virtual processors (>= 1). Never sleeps, cannot fail. */
	uint32_t (*vcpu_count)(void *ctx);

	/* Index of the vCPU the caller runs on, or 0 where the OS does not
	 * bind threads to vCPUs. Never sleeps, cannot fail. */
	uint32_t (*current_vp)(void *ctx);

	/*
	 * Read / write a synthetic MSR (TLFS numbers, hv/tlfs.h) on vCPU vp.
	 * wrmsr stores `value`; the hypervisor may adjust it (reserved bits).
	 * May sleep (a port may trap to a host). May fail: -VMBUS_EINVAL
	 * unknown MSR or refused value, -VMBUS_ERANGE bad vp, -VMBUS_ENODEV
	 * the partition is gone.
	 */
	int (*rdmsr)(void *ctx, uint32_t vp, uint32_t msr, uint64_t *value);
	int (*wrmsr)(void *ctx, uint32_t vp, uint32_t msr, uint64_t value);

	/*
	 * Issue a hypercall on vCPU vp: `control` is the TLFS hypercall input
	 * value; `in`/`in_len` the input block (for a fast call, control bit 16,
	 * the 16 bytes of RDX then R8); `out`/`out_len` the output block.
	 * *result receives the TLFS result value (status in bits 0-15). The
	 * input is copied before the call returns; the caller keeps ownership
	 * of both buffers. Called only after the hypercall MSR is enabled.
	 * May sleep. May fail: -VMBUS_ENODEV partition gone, -VMBUS_EINVAL
	 * in_len too large. A hypervisor status is not a failure: it comes
	 * back in *result.
	 */
	int (*hypercall)(void *ctx, uint32_t vp, uint64_t control,
			 const void *in, uint32_t in_len, void *out,
			 uint32_t out_len, uint64_t *result);

	/* ---- memory --------------------------------------------------- */

	/*
	 * Allocate `npages` 4 KiB pages of zeroed, page-aligned memory that the
	 * host can access (shared with it), virtually contiguous, and fill
	 * pfns[0..npages-1] with their guest physical page numbers (GPA >> 12).
	 * PFN 0 is never returned. Returns the virtual address or NULL. The
	 * caller owns the pages until page_free. May sleep. May fail (NULL):
	 * out of memory, or the pages could not be made shared.
	 */
	void *(*page_alloc)(void *ctx, size_t npages, uint64_t *pfns);

	/*
	 * Return pages from page_alloc. The caller guarantees the host no
	 * longer uses them (GPADL torn down). May sleep. May fail:
	 * -VMBUS_EISCONN the pages could not be made private again; they are
	 * then leaked on purpose by the port and the caller must forget them.
	 */
	int (*page_free)(void *ctx, void *va, size_t npages);

	/*
	 * Guest physical address of `va`, a byte inside memory the caller may
	 * hand to the host (page_alloc'd memory, or any buffer the OS can
	 * describe by GPA for direct I/O). Never sleeps. May fail:
	 * -VMBUS_EFAULT the address cannot be described to the host.
	 */
	int (*virt_to_gpa)(void *ctx, const void *va, uint64_t *gpa);

	/*
	 * Private (never shared) memory for core state. zalloc returns zeroed
	 * memory or NULL; free accepts NULL. May sleep; zalloc may fail (NULL).
	 */
	void *(*zalloc)(void *ctx, size_t bytes);
	void (*free)(void *ctx, void *ptr, size_t bytes);

	/* ---- interrupts ----------------------------------------------- */

	/*
	 * Hook the core's ISR: from now on, when the VMBus SINT fires on vCPU
	 * vp, the port calls isr(arg, vp) in its interrupt context (on the
	 * posix port: the per-vCPU interrupt thread, after reading that vCPU's
	 * doorbell). `vector` is the SINT vector the core programs. NULL
	 * irq_attach = polled mode. May sleep. May fail: -VMBUS_ENOMEM.
	 * irq_detach stops all further calls and waits for running ones.
	 */
	int (*irq_attach)(void *ctx, uint8_t *vector, vmbus_isr_fn *isr,
			  void *arg);
	void (*irq_detach)(void *ctx);

	/* ---- locks, waits, deferred work ------------------------------ */

	/*
	 * A mutual-exclusion lock usable from the ISR and from threads
	 * (a spinlock or a mutex, the port's choice; the core holds locks only
	 * for short, non-sleeping sections). init never fails. lock/unlock
	 * never sleep beyond contention. All four may be NULL in polled
	 * single-threaded ports.
	 */
	void (*lock_init)(void *ctx, vmbus_lock_t *l);
	void (*lock_fini)(void *ctx, vmbus_lock_t *l);
	void (*lock)(void *ctx, vmbus_lock_t *l);
	void (*unlock)(void *ctx, vmbus_lock_t *l);

	/*
	 * Wait objects (condition-variable semantics). wait() atomically
	 * releases `l`, sleeps until woken or until now_ns() >= deadline_ns,
	 * then re-takes `l`; it may return early (spurious wakeup), so callers
	 * loop on their condition. Returns 0, -VMBUS_ETIMEDOUT, or
	 * -VMBUS_ENODEV once the partition is gone (the core then fails every
	 * wait at once). wake_all
	 * never sleeps and may be called from the ISR with or without `l`.
	 * NULL wait/wake = polled port.
	 */
	void (*wait_init)(void *ctx, vmbus_wait_t *w);
	void (*wait_fini)(void *ctx, vmbus_wait_t *w);
	int (*wait)(void *ctx, vmbus_wait_t *w, vmbus_lock_t *l,
		    uint64_t deadline_ns);
	void (*wake_all)(void *ctx, vmbus_wait_t *w);

	/*
	 * Run fn(arg) soon in thread context (may sleep there). Used by the
	 * core to leave the ISR for work that sends messages or sleeps.
	 * Never sleeps. May fail: -VMBUS_ENOMEM (the core then retries from
	 * its poll path). NULL: the core runs the work inline from vmbus_poll.
	 */
	int (*defer)(void *ctx, vmbus_work_fn *fn, void *arg);

	/* ---- time ----------------------------------------------------- */

	/* Monotonic clock in nanoseconds; every core deadline is on this
	 * clock (tests may scale it). Never sleeps, cannot fail. */
	uint64_t (*now_ns)(void *ctx);

	/*
	 * The guest's wall clock (what time sync corrects): nanoseconds since
	 * 1970-01-01 UTC. wallclock_get never sleeps and cannot fail: it may
	 * be called from channel callbacks and the ISR (time sync samples it
	 * as a host message arrives); a port may take a short lock, as with
	 * lock(). step sets the clock; slew asks for a gradual correction by
	 * delta_ns. step and slew may sleep, and may fail: -VMBUS_EPERM,
	 * -VMBUS_ENOSYS. All three may be NULL (no wall clock).
	 */
	int64_t (*wallclock_get)(void *ctx);
	int (*wallclock_step)(void *ctx, int64_t unix_ns);
	int (*wallclock_slew)(void *ctx, int64_t delta_ns);

	/* ---- logging and OS actions ----------------------------------- */

	/* printf-style log line (no trailing newline needed). Never sleeps
	 * in a way the ISR cannot tolerate; cannot fail. */
	void (*vlog)(void *ctx, int level, const char *fmt, va_list ap);

	/*
	 * OS actions the integration services ask for. power_off and reboot
	 * run the OS's shutdown hooks, then stop (the posix port: shutdown
	 * hooks, UNLOAD, RESET). Return only on failure: -VMBUS_ENOSYS.
	 */
	int (*power_off)(void *ctx);
	int (*reboot)(void *ctx);
};

#endif /* VMBUS_PLATFORM_H */
