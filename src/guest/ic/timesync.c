/*
 * guest/ic/timesync.c - the time synchronization IC (spec/vmbus-devices.md
 * 4.7): the host sends its UTC clock (100-ns units since 1601); SYNC steps
 * the guest wall clock, SAMPLE slews it, a probe (no flag) only answers.
 *
 * Formats: service version 4.0 carries vm_reference_time, the partition
 * reference counter when parent_time was sampled; the guest corrects
 * parent_time by (reference counter now - vm_reference_time), which makes
 * the result independent of how long the message took. Versions below 4.0
 * carry no such anchor; the guest corrects by the time since it received
 * the message, so the error is the host's send latency (the protocol's own
 * bound, round_trip_time being the host's estimate of it).
 *
 * The callback validates, answers and keeps the newest sample; the clock is
 * changed by deferred work in thread context (step and slew may sleep).
 * A sample that arrives before the previous one was applied replaces it
 * (Linux keeps only the last one too).
 */
#include "ic_priv.h"

#include "hv/tlfs.h"

static const struct ic_ver ts_versions[] = IC_TIMESYNC_GUEST_VERSIONS;
#define TS_NVERS (sizeof(ts_versions) / sizeof(ts_versions[0]))

/* 100 years of 365.25 days in 100-ns units (hostile-host item 20). */
#define TS_100_YEARS	(36525ull * 86400ull * IC_TIMESYNC_TICKS_PER_SEC)
/* Largest parent_time whose Unix nanoseconds fit an int64_t. */
#define TS_MAX_PARENT	(IC_TIMESYNC_EPOCH_DELTA + \
			 (uint64_t)(INT64_MAX / 100))
/* A v4 reference anchor older than this is not trusted (the host sampled
 * parent_time "now"; a real message is never this old). */
#define TS_MAX_REF_AGE	(60ull * IC_TIMESYNC_TICKS_PER_SEC)

/* Guest wall-clock estimate in 100 ns since 1601, for the range check only
 * (the callback must not call wallclock_get: it may sleep). Lock held. */
static bool ts_wall_estimate(struct ic_services *ics, uint64_t *out)
{
	struct ic_ts *ts = &ics->ics_ts;
	int64_t wall;

	if (ics->ics_plat->wallclock_get == NULL)
		return false;
	wall = ts->ts_wall_base +
	    (int64_t)((ic_now_ns(ics) - ts->ts_mono_base) & INT64_MAX);
	if (wall < 0)
		wall = 0;
	*out = IC_TIMESYNC_EPOCH_DELTA + (uint64_t)wall / 100u;
	return true;
}

static void ts_refresh_wall(struct ic_services *ics, int64_t wall_ns)
{
	ics->ics_ts.ts_wall_base = wall_ns;
	ics->ics_ts.ts_mono_base = ic_now_ns(ics);
}

static uint32_t ts_handle(struct ic_svc *svc, struct ic_msg *m)
{
	struct ic_services *ics = svc->sv_ics;
	struct ic_ts *ts = &ics->ics_ts;
	uint32_t len = IC_HDR_SIZE + m->im_body_len;
	uint64_t parent, ref = 0, wall;
	uint8_t flags;
	bool v4 = ic_svc_version(svc).v_major >= 4;
	bool sched = false;

	if (len < (v4 ? IC_TIMESYNC4_MINLEN : IC_TIMESYNC_MINLEN)) {
		ic_log_bad(svc, "ic-timesync: %u-byte v%s body is short",
		    m->im_body_len, v4 ? "4" : "1-3");
		IC_COUNT(svc, is_malformed);
		ic_msg_set_status(m, IC_STATUS_E_FAIL);
		return len;
	}
	if (v4) {
		struct ic_timesync4 t;

		vmbus_memcpy(&t, m->im_buf, IC_TIMESYNC4_MINLEN);
		parent = hv_le64(t.its4_parent_time);
		ref = hv_le64(t.its4_vm_reference_time);
		flags = t.its4_flags;
	} else {
		struct ic_timesync t;

		vmbus_memcpy(&t, m->im_buf, IC_TIMESYNC_MINLEN);
		parent = hv_le64(t.its_parent_time);
		flags = t.its_flags;
	}

	ic_lock(svc);
	if (parent < IC_TIMESYNC_EPOCH_DELTA || parent > TS_MAX_PARENT ||
	    (ts_wall_estimate(ics, &wall) && parent > wall &&
	    parent - wall > TS_100_YEARS)) {
		ts->ts_status.ts_rejected++;
		ic_unlock(svc);
		ic_log_bad(svc, "ic-timesync: host time %llu (100 ns since "
		    "1601) out of range; refused", (unsigned long long)parent);
		IC_COUNT(svc, is_malformed);
		ic_msg_set_status(m, IC_STATUS_E_FAIL);
		return len;
	}
	if (flags & IC_TIMESYNC_FLAG_SYNC)
		ts->ts_status.ts_syncs++;
	else
		ts->ts_status.ts_samples++;
	ts->ts_status.ts_last_parent_time = parent;
	if (!ics->ics_cfg.icc_timesync_passive &&
	    (flags & (IC_TIMESYNC_FLAG_SYNC | IC_TIMESYNC_FLAG_SAMPLE))) {
		if (ts->ts_pending) {
			ts->ts_status.ts_coalesced++;
			/* A pending SYNC is not downgraded by a sample. */
			if (ts->ts_flags & IC_TIMESYNC_FLAG_SYNC)
				flags |= IC_TIMESYNC_FLAG_SYNC;
		}
		ts->ts_pending = true;
		ts->ts_v4 = v4;
		ts->ts_flags = flags;
		ts->ts_parent_time = parent;
		ts->ts_ref_time = ref;
		ts->ts_recv_ns = ic_now_ns(ics);
		sched = true;
	}
	ic_unlock(svc);

	ic_msg_set_status(m, IC_STATUS_S_OK);
	(void)ic_reply(svc, m, len);
	if (sched)
		ic_work_schedule(svc, &ts->ts_work);
	return 0;
}

/* Host UTC now (100 ns since 1601) from the sample. Thread context. */
static uint64_t ts_host_now(struct ic_services *ics, bool v4, uint64_t parent,
    uint64_t ref_time, uint64_t recv_ns)
{
	const struct vmbus_platform *p = ics->ics_plat;
	struct ic_svc *svc = &ics->ics_svc[IC_SVC_TIMESYNC];
	uint64_t now_ref;

	if (v4 && p->rdmsr) {
		uint32_t vp = p->current_vp ? p->current_vp(p->ctx) : 0;

		if (p->rdmsr(p->ctx, vp, HV_X64_MSR_TIME_REF_COUNT,
		    &now_ref) == 0 && now_ref >= ref_time &&
		    now_ref - ref_time <= TS_MAX_REF_AGE)
			return parent + (now_ref - ref_time);
		ic_lock(svc);
		ics->ics_ts.ts_status.ts_clock_errors++;
		ic_unlock(svc);
		ic_log_bad(svc, "ic-timesync: reference time %llu not usable "
		    "(now %llu); using the receive time",
		    (unsigned long long)ref_time, (unsigned long long)now_ref);
	}
	return parent + (ic_now_ns(ics) - recv_ns) / 100u;
}

static void ts_work(void *arg)
{
	struct ic_services *ics = arg;
	const struct vmbus_platform *p = ics->ics_plat;
	struct ic_svc *svc = &ics->ics_svc[IC_SVC_TIMESYNC];
	struct ic_ts *ts = &ics->ics_ts;
	uint64_t parent, ref, recv, host, step_ns;
	int64_t target, wall, delta;
	uint8_t flags;
	bool v4, step;
	int r;

	ic_lock(svc);
	if (!ts->ts_pending) {
		ic_unlock(svc);
		return;
	}
	ts->ts_pending = false;
	v4 = ts->ts_v4;
	flags = ts->ts_flags;
	parent = ts->ts_parent_time;
	ref = ts->ts_ref_time;
	recv = ts->ts_recv_ns;
	ic_unlock(svc);

	if (p->wallclock_get == NULL || p->wallclock_step == NULL) {
		ic_lock(svc);
		ts->ts_status.ts_clock_errors++;
		ic_unlock(svc);
		return;
	}
	host = ts_host_now(ics, v4, parent, ref, recv);
	if (host > TS_MAX_PARENT)
		host = TS_MAX_PARENT;
	target = (int64_t)(host - IC_TIMESYNC_EPOCH_DELTA) * 100;
	wall = p->wallclock_get(p->ctx);
	if (__builtin_sub_overflow(target, wall, &delta))
		delta = target > wall ? INT64_MAX : INT64_MIN;
	step_ns = ics->ics_cfg.icc_sample_step_ns;
	step = (flags & IC_TIMESYNC_FLAG_SYNC) ||
	    (step_ns != UINT64_MAX &&
	    (delta < 0 ? (uint64_t)-(delta + 1) + 1 : (uint64_t)delta) >
	    step_ns);
	if (step)
		r = p->wallclock_step(p->ctx, target);
	else
		r = p->wallclock_slew ? p->wallclock_slew(p->ctx, delta) :
		    -VMBUS_ENOSYS;

	ic_lock(svc);
	ts->ts_status.ts_last_correction_ns = delta;
	if (r != 0)
		ts->ts_status.ts_clock_errors++;
	else if (step)
		ts->ts_status.ts_steps++;
	else
		ts->ts_status.ts_slews++;
	ts_refresh_wall(ics, (r == 0 && step) ? target : wall);
	ic_unlock(svc);
	if (r != 0)
		ic_log(ics, VMBUS_LOG_WARN, "ic-timesync: %s by %lld ns failed "
		    "(%d)", step ? "step" : "slew", (long long)delta, r);
	else if (step)
		ic_log(ics, VMBUS_LOG_INFO, "ic-timesync: clock stepped by "
		    "%lld ns", (long long)delta);
}

void ic_timesync_init(struct ic_services *ics)
{
	const struct vmbus_platform *p = ics->ics_plat;

	ic_work_init(&ics->ics_ts.ts_work, ics, ts_work, ics);
	ts_refresh_wall(ics, p->wallclock_get ? p->wallclock_get(p->ctx) : 0);
}

int ic_timesync_get_status(struct ic_services *ics,
    struct ic_timesync_status *out)
{
	struct ic_svc *svc;

	if (ics == NULL || out == NULL)
		return -VMBUS_EINVAL;
	svc = &ics->ics_svc[IC_SVC_TIMESYNC];
	ic_lock(svc);
	*out = ics->ics_ts.ts_status;
	ic_unlock(svc);
	return 0;
}

const struct ic_svc_ops ic_timesync_ops = {
	.so_name = "timesync",
	.so_class = HV_GUID_TIMESYNC_INIT,
	.so_msgtype = IC_MSGTYPE_TIMESYNC,
	.so_versions = ts_versions,
	.so_nversions = TS_NVERS,
	.so_handle = ts_handle,
};
