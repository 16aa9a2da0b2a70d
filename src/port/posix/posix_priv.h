/*
 * posix_priv.h - private state of the posix platform port.
 */
#ifndef VMBUS_POSIX_PRIV_H
#define VMBUS_POSIX_PRIV_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/posix.h"

#define POSIX_DEFAULT_TIMEOUT_NS (5ull * 1000000000ull)
#define POSIX_DEFAULT_SLEW_PPM   500u
#define POSIX_DEFAULT_VECTOR     0xF3u
#define POSIX_DEFAULT_DEFERQ     1024u
/* Sleeps are cut into slices of at most this much real time, so a wait
 * notices a gone partition even if nobody wakes it. */
#define POSIX_SLICE_NS           (50ull * 1000000ull)
/* The port clock starts here, so 0 never is a valid "now". */
#define POSIX_CLOCK_START_NS     1000000000ull

struct posix_work {
	vmbus_work_fn *w_fn;
	void *w_arg;
};

struct posix_hook {
	vmbus_posix_hook_fn *h_fn;
	void *h_arg;
};

struct posix_irq {
	pthread_t iq_thread;
	uint32_t iq_vp;
	struct vmbus_posix *iq_port;
};

struct vmbus_posix {
	/* ---- options, fixed after create ---- */
	int po_gone_action;
	vmbus_posix_gone_fn *po_on_gone;
	void *po_on_gone_arg;
	int po_log_level;
	char po_log_prefix[32];
	vmbus_posix_log_fn *po_log_fn;
	void *po_log_arg;
	uint8_t po_irq_vector;
	bool po_irq_vector_forced;  /* option given: overrides the core's */
	bool po_polled;

	/* ---- clock ---- */
	double pc_scale;
	uint64_t pc_raw_base;       /* CLOCK_MONOTONIC at create */
	_Atomic uint64_t pc_jump_ns; /* port time skipped by TIMEOUT faults */
	uint64_t pc_timeout_ns;     /* request timeout, port clock */

	/* ---- the partition socket; requests serialised by pr_lock ---- */
	pthread_mutex_t pr_lock;
	int pr_sock;
	bool pr_by_socket;          /* HVSIM_SOCKET attach: re-exec on reboot */
	uint64_t pr_seq;            /* last seq used */
	_Atomic int pr_gone;        /* VMBUS_POSIX_ALIVE or GONE_* */
	_Atomic int pr_gone_acted;  /* on_gone/exit ran */

	/* ---- from WELCOME ---- */
	uint32_t pw_vcpus;
	uint64_t pw_ram_bytes;
	uint8_t *pw_ram;            /* MAP_SHARED, GPA 0 */
	uint8_t *pw_sigpage;        /* MAP_SHARED, 4096 bytes */
	int pw_sig_efd;
	int *pw_doorbell;           /* [pw_vcpus] */

	/* ---- shadow of the partition-wide MSRs that gate hypercalls ---- */
	_Atomic uint64_t ps_guest_os_id;
	_Atomic uint64_t ps_hypercall_msr;

	/* ---- page allocator ---- */
	pthread_mutex_t pm_lock;
	uint64_t *pm_bitmap;        /* 1 = allocated (page 0 always) */
	uint64_t pm_pages;
	uint64_t pm_used;
	uint64_t pm_leaked;
	uint64_t pm_hint;

	/* ---- interrupts ---- */
	pthread_mutex_t pi_lock;    /* attach/detach */
	struct posix_irq *pi_irq;   /* [pw_vcpus] while attached */
	int pi_stop_efd;
	_Atomic bool pi_stop;
	vmbus_isr_fn *pi_isr;
	void *pi_isr_arg;

	/* ---- deferred work ---- */
	pthread_mutex_t pd_lock;
	pthread_cond_t pd_cond;     /* CLOCK_MONOTONIC */
	struct posix_work *pd_q;
	uint32_t pd_cap, pd_head, pd_count;
	bool pd_stop;
	bool pd_started;
	pthread_t pd_thread;

	/* ---- watchdog: notices EOF while no request is in flight ---- */
	pthread_t pg_thread;
	bool pg_started;
	int pg_stop_efd;

	/* ---- guest wall clock ---- */
	pthread_mutex_t pt_lock;
	int64_t pt_offset_ns;       /* guest = CLOCK_REALTIME + offset */
	int64_t pt_pending_ns;      /* slew still to apply */
	uint64_t pt_slew_from;      /* raw monotonic ns of last fold */
	uint32_t pt_slew_ppm;

	/* ---- shutdown hooks ---- */
	pthread_mutex_t ph_lock;
	struct posix_hook *ph_hooks;
	size_t ph_count;

	/* ---- faults and counters ---- */
	pthread_mutex_t pf_lock;
	uint32_t pf_countdown[VMBUS_POSIX_FAULT_COUNT];
	uint32_t pf_persist;        /* bit per kind */
	uint32_t pf_tripped;        /* bit per kind: persistent failure active */
	_Atomic uint64_t st_requests, st_signals, st_hypercalls, st_interrupts,
		st_bad_replies, st_defer_dropped, st_wall_steps, st_wall_slews;
	_Atomic uint64_t st_fault_hits[VMBUS_POSIX_FAULT_COUNT];
};

/* posix.c */
void posix_log(struct vmbus_posix *p, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool posix_fault(struct vmbus_posix *p, int kind);
/* Mark the partition gone (first reason wins); true if this call did. */
bool posix_mark_gone(struct vmbus_posix *p, int reason);
/* Log, call on_gone, and exit if so configured; once per port. */
void posix_gone_act(struct vmbus_posix *p);

/* posix_abi.c */
int posix_abi_attach(struct vmbus_posix *p, int fd, const char *name);
void posix_abi_detach(struct vmbus_posix *p);
int posix_rdmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t *value);
int posix_wrmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t value);
int posix_hypercall(void *ctx, uint32_t vp, uint64_t control, const void *in,
		    uint32_t in_len, void *out, uint32_t out_len,
		    uint64_t *result);
int posix_watchdog_start(struct vmbus_posix *p);
void posix_watchdog_stop(struct vmbus_posix *p);

/* posix_mem.c */
int posix_mem_init(struct vmbus_posix *p);
void posix_mem_fini(struct vmbus_posix *p);
void *posix_page_alloc(void *ctx, size_t npages, uint64_t *pfns);
int posix_page_free(void *ctx, void *va, size_t npages);
int posix_virt_to_gpa(void *ctx, const void *va, uint64_t *gpa);
void *posix_zalloc(void *ctx, size_t bytes);
void posix_free(void *ctx, void *ptr, size_t bytes);

/* posix_irq.c */
uint32_t posix_current_vp(void *ctx);
int posix_irq_attach(void *ctx, uint8_t *vector, vmbus_isr_fn *isr,
		     void *arg);
void posix_irq_detach(void *ctx);
bool posix_on_port_thread(struct vmbus_posix *p);
void posix_mark_port_thread(struct vmbus_posix *p);

/* posix_sync.c */
void posix_lock_init(void *ctx, vmbus_lock_t *l);
void posix_lock_fini(void *ctx, vmbus_lock_t *l);
void posix_lock(void *ctx, vmbus_lock_t *l);
void posix_unlock(void *ctx, vmbus_lock_t *l);
void posix_wait_init(void *ctx, vmbus_wait_t *w);
void posix_wait_fini(void *ctx, vmbus_wait_t *w);
int posix_wait(void *ctx, vmbus_wait_t *w, vmbus_lock_t *l,
	       uint64_t deadline_ns);
void posix_wake_all(void *ctx, vmbus_wait_t *w);
int posix_defer(void *ctx, vmbus_work_fn *fn, void *arg);
int posix_defer_start(struct vmbus_posix *p, uint32_t cap);
void posix_defer_stop(struct vmbus_posix *p);
/* A condvar on CLOCK_MONOTONIC. */
int posix_cond_init_mono(pthread_cond_t *c);

/* posix_time.c */
uint64_t posix_raw_mono_ns(void);
uint64_t posix_now_ns(void *ctx);
/* Real CLOCK_MONOTONIC ns at which the port clock reads `port_ns`. */
uint64_t posix_port_to_raw(struct vmbus_posix *p, uint64_t port_ns);
/* TIMEOUT fault: move the port clock forward by port_ns (POSIX_JUMP_NS). */
#define POSIX_JUMP_NS (3600ull * 1000000000ull)
void posix_clock_jump(struct vmbus_posix *p, uint64_t port_ns);
/* Real duration of `port_ns` of port clock. */
uint64_t posix_port_span_to_raw(struct vmbus_posix *p, uint64_t port_ns);
void posix_time_init(struct vmbus_posix *p, double scale, int64_t skew_ns,
		     uint32_t slew_ppm);
int64_t posix_wallclock_get(void *ctx);
int posix_wallclock_step(void *ctx, int64_t unix_ns);
int posix_wallclock_slew(void *ctx, int64_t delta_ns);

#endif /* VMBUS_POSIX_PRIV_H */
