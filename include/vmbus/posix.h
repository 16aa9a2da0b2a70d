/*
 * vmbus/posix.h - the posix platform port: runs the guest stack inside a
 * Linux process attached to a host emulator partition through the partition
 * ABI (../shared/DESIGN.md, "The partition ABI").
 *
 * vmbus_posix_create() attaches (HELLO/WELCOME), maps guest RAM and the
 * signal page, and fills a `struct vmbus_platform` (vmbus/platform.h) whose
 * entries all talk to that partition. Everything here is thread-safe unless
 * said otherwise.
 *
 * Environment (read only for options left at their defaults):
 *   HVSIM_FD                 fd of the partition socket (set by the host)
 *   HVSIM_SOCKET             path of a listening host socket (then a VM name
 *                            is required: option vm_name or
 *                            HVSIM_VM_NAME)
 *   VMBUS_TIME_SCALE         slow the port's monotonic clock by this factor
 *                            (every core deadline stretches); falls back to
 *                            VMBUS_TEST_TIME_SCALE, then 1
 *   VMBUS_POSIX_WALL_SKEW    initial guest wall-clock skew, seconds (float)
 *   VMBUS_LOG_LEVEL          0 err .. 3 debug, or err/warn/info/debug
 *   VMBUS_POSIX_FAIL_ALLOC=N[+]      fail the Nth zalloc   (+: and all after)
 *   VMBUS_POSIX_FAIL_PAGE=N[+]       fail the Nth page_alloc
 *   VMBUS_POSIX_FAIL_PAGE_FREE=N[+]  the Nth page_free leaks (-EISCONN)
 *   VMBUS_POSIX_FAIL_WAIT=N[+]       the Nth wait returns -ETIMEDOUT at once
 *   VMBUS_POSIX_FAIL_DEFER=N[+]      the Nth defer returns -ENOMEM
 *   VMBUS_POSIX_FAIL_TIMEOUT=N[+]    the Nth wait times out: the port's
 *                                    clock jumps an hour ahead, so every
 *                                    pending deadline passes (FAIL_WAIT is
 *                                    a spurious early return)
 *
 * Freestanding header (the port's .c files use POSIX; callers need not).
 */
#ifndef VMBUS_POSIX_H
#define VMBUS_POSIX_H

#include <stdint.h>

#include "vmbus/platform.h"

struct vmbus_posix;

/* What the port does when the partition is gone (timeout, EOF, an ABI
 * violation by the host). Either way every later call fails with
 * -VMBUS_ENODEV and every wait wakes with -VMBUS_ENODEV. */
#define VMBUS_POSIX_GONE_EXIT 0 /* log, call on_gone, exit(0) (default);
				 * power_off/reboot exit after RESET (a
				 * socket-attached guest re-executes itself
				 * on reboot, to reconnect) */
#define VMBUS_POSIX_GONE_FAIL 1 /* log, call on_gone, keep running (tests) */

/* Why the partition is gone (on_gone's `reason`, vmbus_posix_gone()). */
#define VMBUS_POSIX_ALIVE        0
#define VMBUS_POSIX_GONE_EOF     1 /* host closed the socket */
#define VMBUS_POSIX_GONE_TIMEOUT 2 /* a request got no reply in time */
#define VMBUS_POSIX_GONE_PROTO   3 /* the host broke the ABI (bad reply) */
#define VMBUS_POSIX_GONE_IOERR   4 /* send/recv failed */
#define VMBUS_POSIX_GONE_RESET   5 /* we sent RESET and it was answered */

/* Fault countdowns (STYLE 13, SQLite's DO_OS_MALLOC_TEST). */
#define VMBUS_POSIX_FAULT_ALLOC     0 /* zalloc returns NULL */
#define VMBUS_POSIX_FAULT_PAGE      1 /* page_alloc returns NULL */
#define VMBUS_POSIX_FAULT_PAGE_FREE 2 /* page_free leaks, -VMBUS_EISCONN */
#define VMBUS_POSIX_FAULT_WAIT      3 /* wait returns -VMBUS_ETIMEDOUT */
#define VMBUS_POSIX_FAULT_DEFER     4 /* defer returns -VMBUS_ENOMEM */
#define VMBUS_POSIX_FAULT_TIMEOUT   5 /* wait times out for real: the
				       * port's clock jumps an hour ahead
				       * (a stalled guest: every pending
				       * deadline passes), -VMBUS_ETIMEDOUT */
#define VMBUS_POSIX_FAULT_COUNT     6

/* Log sink: one formatted line without newline, already level-filtered. */
typedef void vmbus_posix_log_fn(void *arg, int level, const char *line);
typedef void vmbus_posix_gone_fn(void *arg, int reason);
typedef void vmbus_posix_hook_fn(void *arg);

struct vmbus_posix_options {
	/* Attach: fd >= 0 uses that connected SOCK_SEQPACKET socket (the port
	 * takes ownership: it is closed by destroy or by a failed create);
	 * else socket_path, else $HVSIM_FD, else $HVSIM_SOCKET. */
	int po_fd;                  /* -1: not given */
	const char *po_socket_path; /* NULL: not given */
	const char *po_vm_name;     /* HELLO name, socket attach only */

	double po_time_scale;       /* 0: from env, else >= 0.001 */
	int64_t po_wall_skew_ns;    /* initial guest wall-clock offset */
	uint32_t po_slew_ppm;       /* 0: 500 (adjtime's rate) */
	uint64_t po_request_timeout_ns; /* 0: 5 s; in port clock (scaled) */

	int po_gone_action;         /* VMBUS_POSIX_GONE_EXIT / _FAIL */
	vmbus_posix_gone_fn *po_on_gone; /* may be NULL; called once */
	void *po_on_gone_arg;

	int po_log_level;           /* -1: from env, default INFO */
	const char *po_log_prefix;  /* NULL: "vmbus"; copied */
	vmbus_posix_log_fn *po_log_fn; /* NULL: stderr */
	void *po_log_arg;

	int po_polled;              /* 1: leave irq/wait/wake/defer NULL */
	uint8_t po_irq_vector;      /* 0: keep the core's proposal (else 0xF3);
	                               else forced by irq_attach */
	uint32_t po_defer_queue;    /* 0: 1024 entries */
	/* Initial countdowns (0: from env, see above); persistent if set in
	 * po_fault_persist (bit per VMBUS_POSIX_FAULT_*). */
	uint32_t po_fault[VMBUS_POSIX_FAULT_COUNT];
	uint32_t po_fault_persist;
};

/* Fill *o with defaults (every field "not given"). Never fails. */
void vmbus_posix_options_init(struct vmbus_posix_options *o);

/*
 * Attach to a partition: HELLO, wait for WELCOME (bounded by the request
 * timeout), validate it (abi_version, vcpu_count, ram_bytes, fd_count
 * against the fds actually received, memfd seals and sizes), map guest RAM
 * and the signal page shared, start the watchdog (and, unless polled, the
 * deferred-work thread). On success fills *out_plat (ctx = the port) and
 * *out, returns 0. opt may be NULL (defaults). May sleep.
 * Errors (nothing is left open or mapped): -VMBUS_EINVAL bad options or no
 * HVSIM_FD/HVSIM_SOCKET; -VMBUS_ENODEV host closed, timed out or could not
 * be reached; -VMBUS_EPROTO malformed WELCOME (logged); -VMBUS_EOPNOTSUPP
 * the host refused abi_version 1; -VMBUS_ENOMEM.
 */
int vmbus_posix_create(const struct vmbus_posix_options *opt,
		       struct vmbus_platform *out_plat,
		       struct vmbus_posix **out);

/*
 * Detach the interrupt threads if still attached, finish queued deferred
 * work, stop the watchdog, unmap, close every fd, free. Does not send
 * RESET. Must not be called from the port's own threads. p may be NULL.
 */
void vmbus_posix_destroy(struct vmbus_posix *p);

/* From WELCOME. Never fail. */
uint32_t vmbus_posix_vcpu_count(const struct vmbus_posix *p);
uint64_t vmbus_posix_ram_bytes(const struct vmbus_posix *p);
/* Base of the guest-RAM mapping (GPA 0); for tests and debuggers. */
void *vmbus_posix_ram_base(const struct vmbus_posix *p);

/* VMBUS_POSIX_ALIVE, or why the partition is gone. Never sleeps. */
int vmbus_posix_gone(const struct vmbus_posix *p);

/*
 * Send RESET (kind HVSIM_RESET_POWER_OFF or HVSIM_RESET_REBOOT) and wait
 * for its reply; the partition is gone afterwards (reason RESET). Runs no
 * hooks and does not exit. Returns 0, -VMBUS_EINVAL bad kind,
 * -VMBUS_ENODEV already gone, or the host's error. May sleep.
 */
int vmbus_posix_reset(struct vmbus_posix *p, uint32_t kind);

/*
 * Shutdown hooks, run by the platform's power_off/reboot before RESET, last
 * added first (the core registers its UNLOAD here). add returns 0 or
 * -VMBUS_ENOMEM; remove returns 0 or -VMBUS_ENOENT (matched on fn and arg).
 * Hooks may sleep and may use the platform; they must not add or remove
 * hooks.
 */
int vmbus_posix_add_shutdown_hook(struct vmbus_posix *p,
				  vmbus_posix_hook_fn *fn, void *arg);
int vmbus_posix_remove_shutdown_hook(struct vmbus_posix *p,
				     vmbus_posix_hook_fn *fn, void *arg);

/*
 * Fault countdown: the `n`th call (1 = the next one) of kind
 * VMBUS_POSIX_FAULT_* fails; with persist, every call after it fails too.
 * n = 0 disarms. Returns 0 or -VMBUS_EINVAL (bad kind).
 */
int vmbus_posix_fault_set(struct vmbus_posix *p, int kind, uint32_t n,
			  int persist);

/* Counters for tests and statistics. A snapshot; never fails. */
struct vmbus_posix_stats {
	uint64_t ps_requests;        /* datagrams sent (HELLO included) */
	uint64_t ps_signals;         /* events signalled via the signal page */
	uint64_t ps_hypercalls;      /* HYPERCALL requests */
	uint64_t ps_interrupts;      /* ISR calls */
	uint64_t ps_bad_replies;     /* replies refused (ABI violations) */
	uint64_t ps_pages_total;     /* guest RAM pages the allocator manages */
	uint64_t ps_pages_used;      /* allocated now (leaked ones included) */
	uint64_t ps_pages_leaked;    /* leaked on purpose (-EISCONN) */
	uint64_t ps_defer_dropped;   /* defer refused (queue full or fault) */
	uint64_t ps_fault_hits[VMBUS_POSIX_FAULT_COUNT];
	uint64_t ps_wall_steps;
	uint64_t ps_wall_slews;
};
void vmbus_posix_get_stats(const struct vmbus_posix *p,
			   struct vmbus_posix_stats *st);

/* Guest wall clock state: current offset from the host's CLOCK_REALTIME
 * and the slew still to apply, in ns. Never fails. */
void vmbus_posix_wallclock_state(struct vmbus_posix *p, int64_t *offset_ns,
				 int64_t *pending_ns);

#endif /* VMBUS_POSIX_H */
