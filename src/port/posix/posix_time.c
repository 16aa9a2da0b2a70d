/*
 * posix_time.c - the port's monotonic clock (optionally slowed by a scale
 * factor so every core deadline stretches under sanitizers) and the guest's
 * own wall clock (host CLOCK_REALTIME plus a private offset that time sync
 * steps and slews without touching the host's real clock).
 */
#include "posix_priv.h"

#include <time.h>

uint64_t posix_raw_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t raw_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + (int64_t)ts.tv_nsec;
}

void posix_time_init(struct vmbus_posix *p, double scale, int64_t skew_ns,
		     uint32_t slew_ppm)
{
	p->pc_scale = scale;
	p->pc_raw_base = posix_raw_mono_ns();
	atomic_store(&p->pc_jump_ns, 0);
	p->pt_offset_ns = skew_ns;
	p->pt_pending_ns = 0;
	p->pt_slew_from = p->pc_raw_base;
	p->pt_slew_ppm = slew_ppm;
}

uint64_t posix_now_ns(void *ctx)
{
	struct vmbus_posix *p = ctx;
	uint64_t raw = posix_raw_mono_ns() - p->pc_raw_base;
	uint64_t jump = atomic_load(&p->pc_jump_ns);

	if (p->pc_scale == 1.0)
		return POSIX_CLOCK_START_NS + jump + raw;
	return POSIX_CLOCK_START_NS + jump +
	       (uint64_t)((double)raw / p->pc_scale);
}

void posix_clock_jump(struct vmbus_posix *p, uint64_t port_ns)
{
	atomic_fetch_add(&p->pc_jump_ns, port_ns);
}

uint64_t posix_port_span_to_raw(struct vmbus_posix *p, uint64_t port_ns)
{
	double raw = (double)port_ns * p->pc_scale;

	/* Far-future deadlines (UINT64_MAX = "forever") saturate. */
	if (raw >= 9.0e18)
		return UINT64_C(9000000000000000000);
	return (uint64_t)raw;
}

uint64_t posix_port_to_raw(struct vmbus_posix *p, uint64_t port_ns)
{
	uint64_t span, jump = atomic_load(&p->pc_jump_ns);

	if (port_ns <= POSIX_CLOCK_START_NS + jump)
		return p->pc_raw_base;
	span = posix_port_span_to_raw(p, port_ns - POSIX_CLOCK_START_NS - jump);
	if (span > UINT64_MAX - p->pc_raw_base)
		return UINT64_MAX;
	/* Round up so that at the returned raw time now_ns() >= port_ns. */
	return p->pc_raw_base + span + (p->pc_scale == 1.0 ? 0 : 1);
}

/*
 * Apply the part of the pending slew that has elapsed since the last fold:
 * pt_slew_ppm ns per ms of real time, like adjtime(3). Caller holds pt_lock.
 */
static void wall_fold(struct vmbus_posix *p, uint64_t raw_now)
{
	uint64_t elapsed = raw_now - p->pt_slew_from;
	/* ppm of elapsed ns; 128-bit not needed below ~5 days per fold at
	 * 1e6 ppm, and elapsed is folded on every read. */
	uint64_t budget = elapsed / 1000000u * p->pt_slew_ppm +
			  (elapsed % 1000000u) * p->pt_slew_ppm / 1000000u;
	int64_t step;

	p->pt_slew_from = raw_now;
	if (p->pt_pending_ns == 0)
		return;
	if (p->pt_pending_ns > 0)
		step = budget >= (uint64_t)p->pt_pending_ns ? p->pt_pending_ns
							    : (int64_t)budget;
	else
		step = budget >= (uint64_t)-(p->pt_pending_ns + 1) + 1
			       ? p->pt_pending_ns
			       : -(int64_t)budget;
	p->pt_offset_ns += step;
	p->pt_pending_ns -= step;
}

int64_t posix_wallclock_get(void *ctx)
{
	struct vmbus_posix *p = ctx;
	int64_t v;

	pthread_mutex_lock(&p->pt_lock);
	wall_fold(p, posix_raw_mono_ns());
	if (__builtin_add_overflow(raw_real_ns(), p->pt_offset_ns, &v))
		v = p->pt_offset_ns > 0 ? INT64_MAX : INT64_MIN;
	pthread_mutex_unlock(&p->pt_lock);
	return v;
}

int posix_wallclock_step(void *ctx, int64_t unix_ns)
{
	struct vmbus_posix *p = ctx;
	int64_t off;

	pthread_mutex_lock(&p->pt_lock);
	wall_fold(p, posix_raw_mono_ns());
	if (__builtin_sub_overflow(unix_ns, raw_real_ns(), &off)) {
		pthread_mutex_unlock(&p->pt_lock);
		return -VMBUS_EINVAL;
	}
	/* A step cancels any slew still in progress, as settimeofday does. */
	p->pt_pending_ns = 0;
	p->pt_offset_ns = off;
	pthread_mutex_unlock(&p->pt_lock);
	atomic_fetch_add(&p->st_wall_steps, 1);
	posix_log(p, VMBUS_LOG_DEBUG, "wall clock stepped, offset %lld ns",
		  (long long)off);
	return 0;
}

int posix_wallclock_slew(void *ctx, int64_t delta_ns)
{
	struct vmbus_posix *p = ctx;
	int64_t target;

	pthread_mutex_lock(&p->pt_lock);
	wall_fold(p, posix_raw_mono_ns());
	if (__builtin_add_overflow(p->pt_offset_ns, delta_ns, &target)) {
		pthread_mutex_unlock(&p->pt_lock);
		return -VMBUS_EINVAL;
	}
	/* Like adjtime(3): a new correction replaces the outstanding one. */
	p->pt_pending_ns = delta_ns;
	pthread_mutex_unlock(&p->pt_lock);
	atomic_fetch_add(&p->st_wall_slews, 1);
	return 0;
}

void vmbus_posix_wallclock_state(struct vmbus_posix *p, int64_t *offset_ns,
				 int64_t *pending_ns)
{
	pthread_mutex_lock(&p->pt_lock);
	wall_fold(p, posix_raw_mono_ns());
	if (offset_ns)
		*offset_ns = p->pt_offset_ns;
	if (pending_ns)
		*pending_ns = p->pt_pending_ns;
	pthread_mutex_unlock(&p->pt_lock);
}
