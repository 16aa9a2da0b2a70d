/*
 * posix_sync.c - locks (error-checking pthread mutexes), waits (condvars on
 * CLOCK_MONOTONIC, deadlines on the port's scaled clock), deferred work (one
 * worker thread, bounded queue).
 */
#include "posix_priv.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(pthread_mutex_t) <= VMBUS_PORT_LOCK_BYTES,
	       "pthread_mutex_t fits vmbus_lock_t");
_Static_assert(alignof(pthread_mutex_t) <= alignof(vmbus_lock_t),
	       "pthread_mutex_t alignment");
_Static_assert(sizeof(pthread_cond_t) <= VMBUS_PORT_WAIT_BYTES,
	       "pthread_cond_t fits vmbus_wait_t");
_Static_assert(alignof(pthread_cond_t) <= alignof(vmbus_wait_t),
	       "pthread_cond_t alignment");

static pthread_mutex_t *mtx(vmbus_lock_t *l)
{
	return (pthread_mutex_t *)(void *)l->l_opaque;
}

static pthread_cond_t *cnd(vmbus_wait_t *w)
{
	return (pthread_cond_t *)(void *)w->w_opaque;
}

/* A failing lock operation is a bug in the caller (our own invariant). */
static void lock_bug(struct vmbus_posix *p, const char *op, int err)
{
	posix_log(p, VMBUS_LOG_ERR, "%s: %s (caller bug)", op, strerror(err));
	abort();
}

void posix_lock_init(void *ctx, vmbus_lock_t *l)
{
	pthread_mutexattr_t a;

	(void)ctx;
	pthread_mutexattr_init(&a);
#if defined(NDEBUG) && defined(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP)
	/* Release: the core's sections are short; spin a little before
	 * sleeping (glibc's adaptive mutex) and skip the owner checks. */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#else
	/* Error checking catches relocking and foreign unlocks in the core. */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
#endif
	pthread_mutex_init(mtx(l), &a);
	pthread_mutexattr_destroy(&a);
}

void posix_lock_fini(void *ctx, vmbus_lock_t *l)
{
	int err = pthread_mutex_destroy(mtx(l));

	if (err)
		lock_bug(ctx, "lock_fini", err);
}

void posix_lock(void *ctx, vmbus_lock_t *l)
{
	int err = pthread_mutex_lock(mtx(l));

	if (err)
		lock_bug(ctx, "lock", err);
}

void posix_unlock(void *ctx, vmbus_lock_t *l)
{
	int err = pthread_mutex_unlock(mtx(l));

	if (err)
		lock_bug(ctx, "unlock", err);
}

int posix_cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int err;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	err = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return err;
}

void posix_wait_init(void *ctx, vmbus_wait_t *w)
{
	(void)ctx;
	posix_cond_init_mono(cnd(w));
}

void posix_wait_fini(void *ctx, vmbus_wait_t *w)
{
	(void)ctx;
	pthread_cond_destroy(cnd(w));
}

static struct timespec raw_ts(uint64_t raw)
{
	struct timespec ts = {
		.tv_sec = (time_t)(raw / 1000000000u),
		.tv_nsec = (long)(raw % 1000000000u),
	};
	return ts;
}

/*
 * Sleeps in slices of at most POSIX_SLICE_NS real time, so that a gone
 * partition wakes every waiter with -ENODEV even when nobody signals it.
 */
int posix_wait(void *ctx, vmbus_wait_t *w, vmbus_lock_t *l,
	       uint64_t deadline_ns)
{
	struct vmbus_posix *p = ctx;
	uint64_t raw_deadline;

	if (posix_fault(p, VMBUS_POSIX_FAULT_WAIT))
		return -VMBUS_ETIMEDOUT;
	/* A timeout for real: the guest "stalled" for an hour by the port's
	 * clock, so this deadline and every other pending one have passed
	 * (the core waits in slices, so only a jump past the caller's own
	 * deadline makes its operation time out). */
	if (posix_fault(p, VMBUS_POSIX_FAULT_TIMEOUT)) {
		posix_clock_jump(p, POSIX_JUMP_NS);
		return -VMBUS_ETIMEDOUT;
	}
	if (atomic_load(&p->pr_gone) != VMBUS_POSIX_ALIVE)
		return -VMBUS_ENODEV;
	if (posix_now_ns(p) >= deadline_ns)
		return -VMBUS_ETIMEDOUT;
	raw_deadline = posix_port_to_raw(p, deadline_ns);
	for (;;) {
		uint64_t now = posix_raw_mono_ns();
		uint64_t until = raw_deadline;
		struct timespec ts;
		int err;

		if (now >= raw_deadline)
			until = now;
		else if (raw_deadline - now > POSIX_SLICE_NS)
			until = now + POSIX_SLICE_NS;
		ts = raw_ts(until);
		err = pthread_cond_timedwait(cnd(w), mtx(l), &ts);
		if (err == 0)
			return 0;
		if (err != ETIMEDOUT && err != EINTR)
			lock_bug(p, "wait", err);
		if (atomic_load(&p->pr_gone) != VMBUS_POSIX_ALIVE)
			return -VMBUS_ENODEV;
		if (posix_now_ns(p) >= deadline_ns)
			return -VMBUS_ETIMEDOUT;
	}
}

void posix_wake_all(void *ctx, vmbus_wait_t *w)
{
	(void)ctx;
	pthread_cond_broadcast(cnd(w));
}

/* ------------------------------------------------------------------ */
/* Deferred work                                                       */
/* ------------------------------------------------------------------ */

int posix_defer(void *ctx, vmbus_work_fn *fn, void *arg)
{
	struct vmbus_posix *p = ctx;

	if (!fn)
		return -VMBUS_EINVAL;
	if (posix_fault(p, VMBUS_POSIX_FAULT_DEFER)) {
		atomic_fetch_add(&p->st_defer_dropped, 1);
		return -VMBUS_ENOMEM;
	}
	pthread_mutex_lock(&p->pd_lock);
	if (p->pd_stop || p->pd_count == p->pd_cap) {
		pthread_mutex_unlock(&p->pd_lock);
		atomic_fetch_add(&p->st_defer_dropped, 1);
		return -VMBUS_ENOMEM;
	}
	p->pd_q[(p->pd_head + p->pd_count) % p->pd_cap] =
		(struct posix_work){ .w_fn = fn, .w_arg = arg };
	p->pd_count++;
	pthread_cond_signal(&p->pd_cond);
	pthread_mutex_unlock(&p->pd_lock);
	return 0;
}

static void *defer_main(void *arg)
{
	struct vmbus_posix *p = arg;

	posix_mark_port_thread(p);
	pthread_mutex_lock(&p->pd_lock);
	for (;;) {
		struct posix_work wk;

		if (p->pd_count == 0) {
			struct timespec ts;

			/* Queued work is finished before stopping. */
			if (p->pd_stop)
				break;
			ts = raw_ts(posix_raw_mono_ns() + POSIX_SLICE_NS * 20);
			pthread_cond_timedwait(&p->pd_cond, &p->pd_lock, &ts);
			continue;
		}
		wk = p->pd_q[p->pd_head];
		p->pd_head = (p->pd_head + 1) % p->pd_cap;
		p->pd_count--;
		pthread_mutex_unlock(&p->pd_lock);
		wk.w_fn(wk.w_arg);
		pthread_mutex_lock(&p->pd_lock);
	}
	pthread_mutex_unlock(&p->pd_lock);
	return NULL;
}

int posix_defer_start(struct vmbus_posix *p, uint32_t cap)
{
	p->pd_q = calloc(cap, sizeof(*p->pd_q));
	if (!p->pd_q)
		return -VMBUS_ENOMEM;
	p->pd_cap = cap;
	if (pthread_create(&p->pd_thread, NULL, defer_main, p) != 0) {
		free(p->pd_q);
		p->pd_q = NULL;
		return -VMBUS_ENOMEM;
	}
	p->pd_started = true;
	return 0;
}

void posix_defer_stop(struct vmbus_posix *p)
{
	if (!p->pd_started)
		return;
	pthread_mutex_lock(&p->pd_lock);
	p->pd_stop = true;
	pthread_cond_signal(&p->pd_cond);
	pthread_mutex_unlock(&p->pd_lock);
	pthread_join(p->pd_thread, NULL);
	p->pd_started = false;
	free(p->pd_q);
	p->pd_q = NULL;
}
