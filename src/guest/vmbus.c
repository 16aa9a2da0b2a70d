/*
 * src/guest/vmbus.c - bus life cycle (create, connect, unload, destroy),
 * port wrappers, logging, bounded waits, polling and the ISR entry.
 */
#include "vmbus_priv.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

/* ---- port wrappers ---- */

void vmbus_lock_init(struct vmbus *vb, vmbus_lock_t *l)
{
	if (vb->vb_plat->lock_init)
		vb->vb_plat->lock_init(vb->vb_plat->ctx, l);
}

void vmbus_lock_fini(struct vmbus *vb, vmbus_lock_t *l)
{
	if (vb->vb_plat->lock_fini)
		vb->vb_plat->lock_fini(vb->vb_plat->ctx, l);
}

void vmbus_lock(struct vmbus *vb, vmbus_lock_t *l)
{
	if (vb->vb_plat->lock)
		vb->vb_plat->lock(vb->vb_plat->ctx, l);
}

void vmbus_unlock(struct vmbus *vb, vmbus_lock_t *l)
{
	if (vb->vb_plat->unlock)
		vb->vb_plat->unlock(vb->vb_plat->ctx, l);
}

void vmbus_wait_init(struct vmbus *vb, vmbus_wait_t *w)
{
	if (vb->vb_plat->wait_init)
		vb->vb_plat->wait_init(vb->vb_plat->ctx, w);
}

void vmbus_wait_fini(struct vmbus *vb, vmbus_wait_t *w)
{
	if (vb->vb_plat->wait_fini)
		vb->vb_plat->wait_fini(vb->vb_plat->ctx, w);
}

uint64_t vmbus_now(struct vmbus *vb)
{
	return vb->vb_plat->now_ns(vb->vb_plat->ctx);
}

uint64_t vmbus_deadline(struct vmbus *vb, uint64_t timeout_ns)
{
	uint64_t now = vmbus_now(vb);

	if (timeout_ns > UINT64_MAX - now)
		return UINT64_MAX;
	return now + timeout_ns;
}

bool vmbus_polled(const struct vmbus *vb)
{
	return !vb->vb_irq || vb->vb_plat->wait == NULL ||
	    vb->vb_plat->wake_all == NULL;
}

static void vmbus_vlog(struct vmbus *vb, int level, const char *fmt,
    va_list ap)
{
	if (level > atomic_load_explicit(&vb->vb_log_level,
	    memory_order_relaxed) || vb->vb_plat->vlog == NULL)
		return;
	vb->vb_plat->vlog(vb->vb_plat->ctx, level, fmt, ap);
}

void vmbus_log(struct vmbus *vb, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmbus_vlog(vb, level, fmt, ap);
	va_end(ap);
}

/* True at most once per VMBUS_LOG_INTERVAL_NS for one *next_ns, whoever
 * calls (any context: the winner of the exchange logs). */
bool vmbus_ratelimit(struct vmbus *vb, _Atomic uint64_t *next_ns)
{
	uint64_t now = vmbus_now(vb);
	uint64_t next = atomic_load_explicit(next_ns, memory_order_relaxed);

	if (now < next)
		return false;
	return atomic_compare_exchange_strong_explicit(next_ns, &next,
	    now + VMBUS_LOG_INTERVAL_NS, memory_order_relaxed,
	    memory_order_relaxed);
}

void vmbus_drop(struct vmbus *vb, vmbus_counter_t *ctr,
    _Atomic uint64_t *next_ns, const char *fmt, ...)
{
	va_list ap;

	vmbus_count(ctr, 1);
	if (!vmbus_ratelimit(vb, next_ns))
		return;
	va_start(ap, fmt);
	vmbus_vlog(vb, VMBUS_LOG_WARN, fmt, ap);
	va_end(ap);
}

/* ---- waits ---- */

void vmbus_bus_wakeup(struct vmbus *vb)
{
	if (vb->vb_plat->wake_all)
		vb->vb_plat->wake_all(vb->vb_plat->ctx, &vb->vb_wait);
}

void vmbus_set_gone(struct vmbus *vb, const char *what)
{
	if (atomic_exchange(&vb->vb_gone, true))
		return;
	vmbus_log(vb, VMBUS_LOG_ERR, "vmbus: partition gone (%s answered "
	    "-ENODEV): every wait now fails with -ENODEV", what);
	/* NOTE: the flag is set before vb_lock is taken and every bus waiter
	 * tests it under vb_lock before it sleeps: no waiter misses this. */
	vmbus_lock(vb, &vb->vb_lock);
	vmbus_bus_wakeup(vb);
	vmbus_unlock(vb, &vb->vb_lock);
	/* Channel waiters test it under ch_lock before they sleep. */
	for (uint32_t i = 0; i < vb->vb_nchans; i++)
		vmbus_chan_wakeup(&vb->vb_chans[i]);
}

int vmbus_bus_wait(struct vmbus *vb, vmbus_cond_fn *cond, void *arg,
    uint64_t deadline)
{
	for (;;) {
		uint64_t now, until;
		bool ok;
		int r = 0;

		vmbus_lock(vb, &vb->vb_lock);
		ok = cond(vb, arg);
		vmbus_unlock(vb, &vb->vb_lock);
		if (ok)
			return 0;
		if (vmbus_gone(vb))
			return -VMBUS_ENODEV;

		/* Messages may be waiting without an interrupt (polled port,
		 * lost or early interrupt): scan for them ourselves. */
		vmbus_poll_nested(vb);

		vmbus_lock(vb, &vb->vb_lock);
		ok = cond(vb, arg);
		now = vmbus_now(vb);
		if (ok || now >= deadline || vmbus_gone(vb)) {
			vmbus_unlock(vb, &vb->vb_lock);
			return ok ? 0 : vmbus_gone(vb) ? -VMBUS_ENODEV :
			    -VMBUS_ETIMEDOUT;
		}
		if (!vmbus_polled(vb)) {
			until = now + VMBUS_WAIT_SLICE_NS;
			if (until > deadline)
				until = deadline;
			r = vb->vb_plat->wait(vb->vb_plat->ctx, &vb->vb_wait,
			    &vb->vb_lock, until);
		}
		vmbus_unlock(vb, &vb->vb_lock);
		if (r == -VMBUS_ENODEV) {
			/* One last look: the answer may have come with the
			 * host's last breath. */
			vmbus_lock(vb, &vb->vb_lock);
			ok = cond(vb, arg);
			vmbus_unlock(vb, &vb->vb_lock);
			vmbus_set_gone(vb, "the port's wait");
			return ok ? 0 : -VMBUS_ENODEV;
		}
	}
}

/* ---- polling, ISR, deferred work ---- */

void vmbus_poll_nested(struct vmbus *vb)
{
	if (vb->vb_vcpu == NULL)
		return;
	atomic_fetch_add(&vb->vb_poll_depth, 1);
	for (uint32_t vp = 0; vp < vb->vb_nvcpu; vp++) {
		if (!vmbus_vcpu_live(&vb->vb_vcpu[vp]))
			continue;
		vmbus_msg_drain(vb, vp);
		vmbus_event_drain(vb, vp);
	}
	vmbus_chan_redispatch_run(vb);
	atomic_fetch_sub(&vb->vb_poll_depth, 1);
}

void vmbus_isr(void *arg, uint32_t vp)
{
	struct vmbus *vb = arg;

	if (vb == NULL || vb->vb_vcpu == NULL || vp >= vb->vb_nvcpu ||
	    !vmbus_vcpu_live(&vb->vb_vcpu[vp]))
		return;
	vmbus_msg_drain(vb, vp);
	vmbus_event_drain(vb, vp);
}

static void vmbus_free_bus(struct vmbus *vb);

static void vmbus_deferred_work(void *arg)
{
	struct vmbus *vb = arg;

	atomic_store(&vb->vb_work_scheduled, false);
	if (!(atomic_load(&vb->vb_defer_live) & VMBUS_BUS_DEAD))
		vmbus_run_work(vb);
	/* vmbus_destroy came first and left the bus to the last of us. */
	if (atomic_fetch_sub(&vb->vb_defer_live, 1) == (VMBUS_BUS_DEAD | 1u))
		vmbus_free_bus(vb);
}

void vmbus_schedule_work(struct vmbus *vb)
{
	atomic_store(&vb->vb_work_pending, true);
	if (vb->vb_plat->defer == NULL)
		return;			/* vmbus_poll runs it */
	if (atomic_exchange(&vb->vb_work_scheduled, true))
		return;
	/* NOTE: never after vmbus_destroy except from a deferred call,
	 * which holds the count above zero meanwhile. */
	atomic_fetch_add(&vb->vb_defer_live, 1);
	if (vb->vb_plat->defer(vb->vb_plat->ctx, vmbus_deferred_work, vb) !=
	    0) {
		atomic_fetch_sub(&vb->vb_defer_live, 1);
		atomic_store(&vb->vb_work_scheduled, false); /* poll retries */
	}
}

void vmbus_poll(struct vmbus *vb)
{
	if (vb == NULL)
		return;
	vmbus_poll_nested(vb);
	/* Deferred work may sleep and poll again: never nest it. */
	if (atomic_load(&vb->vb_poll_depth) == 0 &&
	    atomic_load(&vb->vb_work_pending))
		vmbus_run_work(vb);
}

/* ---- create / connect / unload / destroy ---- */

int vmbus_create(const struct vmbus_platform *plat,
    const struct vmbus_config *cfg, struct vmbus **out)
{
	struct vmbus *vb;
	struct vmbus_config c;
	size_t bytes;

	if (out == NULL)
		return -VMBUS_EINVAL;
	*out = NULL;
	if (plat == NULL || plat->vcpu_count == NULL || plat->rdmsr == NULL ||
	    plat->wrmsr == NULL || plat->hypercall == NULL ||
	    plat->page_alloc == NULL || plat->page_free == NULL ||
	    plat->zalloc == NULL || plat->free == NULL || plat->now_ns == NULL)
		return -VMBUS_EINVAL;
	if ((plat->wait == NULL) != (plat->wake_all == NULL))
		return -VMBUS_EINVAL;

	if (cfg)
		c = *cfg;
	else
		vmbus_memset(&c, 0, sizeof(c));
	if (c.vc_max_version == 0)
		c.vc_max_version = VMBUS_VERSION_IRON;
	if (c.vc_min_version == 0)
		c.vc_min_version = VMBUS_VERSION_WIN7;
	if (c.vc_vector == 0)
		c.vc_vector = VMBUS_DEFAULT_VECTOR;
	if (c.vc_timeout_ns == 0)
		c.vc_timeout_ns = VMBUS_DEFAULT_TIMEOUT;
	if (c.vc_max_relid == 0)
		c.vc_max_relid = VMBUS_RELID_LIMIT;
	if (c.vc_max_channels == 0)
		c.vc_max_channels = VMBUS_DEFAULT_CHANNELS;
	if (c.vc_guest_os_id == 0)
		c.vc_guest_os_id = HV_GUEST_OS_ID_OPEN(VMBUS_GUEST_OS_TYPE, 0,
		    VMBUS_GUEST_OS_VERSION, 0);
	if (c.vc_vector < HV_SINT_VECTOR_MIN || c.vc_max_relid < 2 ||
	    c.vc_max_relid > VMBUS_RELID_LIMIT ||
	    c.vc_max_channels > 4096 || c.vc_min_version > c.vc_max_version)
		return -VMBUS_EINVAL;

	vb = plat->zalloc(plat->ctx, sizeof(*vb));
	if (vb == NULL)
		return -VMBUS_ENOMEM;
	vb->vb_plat = plat;
	vb->vb_cfg = c;
	vb->vb_log_level = VMBUS_LOG_INFO;
	vb->vb_max_relid = c.vc_max_relid;
	vb->vb_nchans = c.vc_max_channels;
	vb->vb_next_gpadl = 0x10000;

	bytes = sizeof(vb->vb_relid[0]) * vb->vb_max_relid;
	vb->vb_relid = plat->zalloc(plat->ctx, bytes);
	bytes = sizeof(vb->vb_chans[0]) * vb->vb_nchans;
	vb->vb_chans = plat->zalloc(plat->ctx, bytes);
	if (vb->vb_relid == NULL || vb->vb_chans == NULL) {
		plat->free(plat->ctx, vb->vb_relid,
		    sizeof(vb->vb_relid[0]) * vb->vb_max_relid);
		plat->free(plat->ctx, vb->vb_chans, bytes);
		plat->free(plat->ctx, vb, sizeof(*vb));
		return -VMBUS_ENOMEM;
	}
	vmbus_lock_init(vb, &vb->vb_lock);
	vmbus_wait_init(vb, &vb->vb_wait);
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *ch = &vb->vb_chans[i];

		ch->ch_bus = vb;
		vmbus_lock_init(vb, &ch->ch_lock);
		vmbus_lock_init(vb, &ch->ch_tx_lock);
		vmbus_lock_init(vb, &ch->ch_rx_lock);
		vmbus_wait_init(vb, &ch->ch_wait);
	}
	*out = vb;
	return 0;
}

static bool vmbus_offers_done(struct vmbus *vb, void *arg)
{
	(void)arg;
	return vb->vb_offers_done;
}

int vmbus_connect(struct vmbus *vb)
{
	int r;

	if (vb == NULL)
		return -VMBUS_EINVAL;
	if (vb->vb_conn != VMBUS_CONN_NONE)
		return -VMBUS_EBUSY;

	/* A new partition (a port that re-attaches) is not gone. */
	atomic_store(&vb->vb_gone, false);
	r = vmbus_hv_setup(vb);
	if (r != 0) {
		vmbus_hv_teardown(vb, false);
		return r;
	}
	r = vmbus_negotiate(vb);
	if (r != 0) {
		vmbus_hv_teardown(vb, false);
		return r;
	}
	r = vmbus_request_offers(vb);
	if (r == 0)
		r = vmbus_bus_wait(vb, vmbus_offers_done, NULL,
		    vmbus_deadline(vb, vb->vb_cfg.vc_timeout_ns));
	if (r != 0) {
		vmbus_log(vb, VMBUS_LOG_ERR,
		    "vmbus: no ALLOFFERS_DELIVERED (%d)", r);
		(void)vmbus_unload(vb);
		return r;
	}
	vmbus_log(vb, VMBUS_LOG_INFO, "vmbus: connected, version %u.%u",
	    (unsigned)VMBUS_VERSION_MAJOR(vmbus_version(vb)),
	    (unsigned)VMBUS_VERSION_MINOR(vmbus_version(vb)));
	vmbus_attach_drivers(vb);
	return 0;
}

int vmbus_unload(struct vmbus *vb)
{
	int r = 0, rr;
	uint64_t leaked_before;

	if (vb == NULL || vb->vb_conn == VMBUS_CONN_NONE)
		return 0;
	leaked_before = vmbus_counter_get(&vb->vb_ctr.bc_leaked_pages);

	/* Deferred work (a rescind being finished) must not detach or free
	 * what we tear down here: hold it off until the bus is forgotten. */
	bool held = vmbus_work_hold(vb);

	/* Drivers first (they close their channels), then anything left. */
	vmbus_detach_all(vb);

	if (vmbus_version(vb) >= VMBUS_VERSION_WIN8_1) {
		rr = vmbus_send_unload(vb);
		if (rr != 0) {
			vmbus_log(vb, VMBUS_LOG_WARN,
			    "vmbus: UNLOAD not acknowledged (%d)", rr);
			r = rr;
		}
	}
	/* If the host never confirmed the unload, it may still write the
	 * interrupt and monitor pages: leak them rather than reuse. */
	vmbus_hv_teardown(vb, r != 0);
	vmbus_chan_free_all(vb);
	if (held)
		vmbus_work_release(vb);
	if (r == 0 &&
	    vmbus_counter_get(&vb->vb_ctr.bc_leaked_pages) != leaked_before)
		r = -VMBUS_EISCONN;
	return r;
}

static void vmbus_free_bus(struct vmbus *vb)
{
	const struct vmbus_platform *plat = vb->vb_plat;

	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *ch = &vb->vb_chans[i];

		vmbus_xact_free(ch);
		vmbus_wait_fini(vb, &ch->ch_wait);
		vmbus_lock_fini(vb, &ch->ch_rx_lock);
		vmbus_lock_fini(vb, &ch->ch_tx_lock);
		vmbus_lock_fini(vb, &ch->ch_lock);
	}
	vmbus_wait_fini(vb, &vb->vb_wait);
	vmbus_lock_fini(vb, &vb->vb_lock);
	plat->free(plat->ctx, vb->vb_chans,
	    sizeof(vb->vb_chans[0]) * vb->vb_nchans);
	plat->free(plat->ctx, vb->vb_relid,
	    sizeof(vb->vb_relid[0]) * vb->vb_max_relid);
	plat->free(plat->ctx, vb, sizeof(*vb));
}

void vmbus_destroy(struct vmbus *vb)
{
	if (vb == NULL)
		return;
	(void)vmbus_unload(vb);
	/* A deferred call the port still holds (queued, or running its last
	 * lines) names the bus: the last of those frees it instead. */
	if ((atomic_fetch_or(&vb->vb_defer_live, VMBUS_BUS_DEAD) &
	    ~VMBUS_BUS_DEAD) == 0)
		vmbus_free_bus(vb);
}

uint32_t vmbus_version(const struct vmbus *vb)
{
	return vb ? atomic_load(&((struct vmbus *)(uintptr_t)vb)->vb_version)
		  : 0;
}

const struct vmbus_platform *vmbus_platform(const struct vmbus *vb)
{
	return vb ? vb->vb_plat : NULL;
}

void vmbus_get_stats(const struct vmbus *vb, struct vmbus_stats *out)
{
	struct vmbus_bus_counters *c;

	if (vb == NULL || out == NULL)
		return;
	c = &((struct vmbus *)(uintptr_t)vb)->vb_ctr;
	out->bs_messages = vmbus_counter_get(&c->bc_messages);
	out->bs_bad_messages = vmbus_counter_get(&c->bc_bad_messages);
	out->bs_offers = vmbus_counter_get(&c->bc_offers);
	out->bs_bad_offers = vmbus_counter_get(&c->bc_bad_offers);
	out->bs_rescinds = vmbus_counter_get(&c->bc_rescinds);
	out->bs_post_retries = vmbus_counter_get(&c->bc_post_retries);
	out->bs_events = vmbus_counter_get(&c->bc_events);
	out->bs_spurious_events = vmbus_counter_get(&c->bc_spurious_events);
	out->bs_leaked_pages = vmbus_counter_get(&c->bc_leaked_pages);
	out->bs_gpadl_failures = vmbus_counter_get(&c->bc_gpadl_failures);
}

void vmbus_set_log_level(struct vmbus *vb, int level)
{
	if (vb)
		atomic_store_explicit(&vb->vb_log_level, level,
		    memory_order_relaxed);
}
