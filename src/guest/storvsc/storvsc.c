/*
 * src/guest/storvsc/storvsc.c - the StorVSC driver object: registration
 * for the SCSI and IDE class GUIDs, controller attach / detach, the port
 * wrappers, the controller wait, housekeeping (storvsc_tick) and
 * statistics. The VSTOR protocol lives in storvsc_vstor.c, requests in
 * storvsc_io.c, LUN discovery and the disk API in storvsc_disk.c.
 */
#include "storvsc_priv.h"

/* ---- port wrappers ---- */

void sv_lock(const struct storvsc *sv, vmbus_lock_t *l)
{
	if (sv->sv_plat->lock)
		sv->sv_plat->lock(sv->sv_plat->ctx, l);
}

void sv_unlock(const struct storvsc *sv, vmbus_lock_t *l)
{
	if (sv->sv_plat->unlock)
		sv->sv_plat->unlock(sv->sv_plat->ctx, l);
}

static void sv_lock_init(const struct storvsc *sv, vmbus_lock_t *l)
{
	if (sv->sv_plat->lock_init)
		sv->sv_plat->lock_init(sv->sv_plat->ctx, l);
}

static void sv_lock_fini(const struct storvsc *sv, vmbus_lock_t *l)
{
	if (sv->sv_plat->lock_fini)
		sv->sv_plat->lock_fini(sv->sv_plat->ctx, l);
}

uint64_t sv_now(const struct storvsc *sv)
{
	return sv->sv_plat->now_ns(sv->sv_plat->ctx);
}

bool sv_polled(const struct storvsc *sv)
{
	return sv->sv_plat->wait == NULL || sv->sv_plat->wake_all == NULL;
}

void sv_log(struct storvsc *sv, int level, const char *fmt, ...)
{
	va_list ap;

	if (sv->sv_plat->vlog == NULL)
		return;
	va_start(ap, fmt);
	sv->sv_plat->vlog(sv->sv_plat->ctx, level, fmt, ap);
	va_end(ap);
}

/* true at most once per SV_LOG_INTERVAL_NS for one *next cursor. The
 * cursor is read and written racily on purpose: a lost update costs at
 * most one extra log line. */
bool sv_ratelimit(struct storvsc *sv, uint64_t *next)
{
	uint64_t now = sv_now(sv);

	if (now < *next)
		return false;
	*next = now + SV_LOG_INTERVAL_NS;
	return true;
}

void *sv_zalloc(struct storvsc *sv, size_t bytes)
{
	return sv->sv_plat->zalloc(sv->sv_plat->ctx, bytes);
}

void sv_free(struct storvsc *sv, void *p, size_t bytes)
{
	if (p != NULL)
		sv->sv_plat->free(sv->sv_plat->ctx, p, bytes);
}

/* ---- controller wait ---- */

void sv_wake(struct storvsc_ctrl *ct)
{
	const struct storvsc *sv = ct->ct_sv;

	/* NOTE: the caller stored its condition (seq_cst) before this load;
	 * a waiter counts itself before it checks the condition. */
	if (sv_polled(sv) || atomic_load(&ct->ct_waiters) == 0)
		return;
	sv_lock(sv, &ct->ct_lock);
	sv->sv_plat->wake_all(sv->sv_plat->ctx, &ct->ct_wait);
	sv_unlock(sv, &ct->ct_lock);
}

static void sv_ctrl_housekeeping(struct storvsc_ctrl *ct, bool force)
{
	for (uint32_t i = 0; i < ct->ct_nq; i++) {
		struct storvsc_queue *q = &ct->ct_q[i];

		storvsc_vstor_check_chan(q);
		storvsc_vstor_expire(q, force);
	}
}

int sv_wait(struct storvsc_ctrl *ct, sv_cond_fn *cond, void *arg,
    uint64_t deadline)
{
	struct storvsc *sv = ct->ct_sv;
	const struct vmbus_platform *p = sv->sv_plat;
	int r = -VMBUS_ETIMEDOUT;

	atomic_fetch_add(&ct->ct_waiters, 1);
	for (;;) {
		uint64_t now = sv_now(sv);
		bool ok, woken = false;

		sv_lock(sv, &ct->ct_lock);
		ok = cond(arg);
		if (!ok && !sv_polled(sv) && now < deadline) {
			uint64_t until = now + SV_WAIT_SLICE_NS;

			woken = p->wait(p->ctx, &ct->ct_wait, &ct->ct_lock,
			    until < deadline ? until : deadline) == 0;
			ok = cond(arg);
		}
		sv_unlock(sv, &ct->ct_lock);
		if (ok) {
			r = 0;
			break;
		}
		if (sv_now(sv) >= deadline)
			break;
		/* Polled port: this is the only progress. Interrupt port: a
		 * slice without a wakeup may be a lost interrupt. */
		if (!woken)
			vmbus_poll(sv->sv_bus);
		sv_ctrl_housekeeping(ct, false);
	}
	atomic_fetch_sub(&ct->ct_waiters, 1);
	return r;
}

/* ---- reference counting of controllers ---- */

void storvsc_stats_add(struct storvsc_stats *to,
    const struct storvsc_stats *from)
{
	const uint64_t *f = (const uint64_t *)(const void *)from;
	uint64_t *t = (uint64_t *)(void *)to;

	_Static_assert(sizeof(*to) % sizeof(uint64_t) == 0, "u64 counters");
	for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
		t[i] += f[i];
}

/* sv_lock held. Drops a reference; *free_it tells the caller to call
 * storvsc_ctrl_free once the lock is released (the controller is already
 * unlinked then). */
void storvsc_ctrl_put_locked(struct storvsc_ctrl *ct, bool *free_it)
{
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_ctrl **pp;

	*free_it = false;
	if (--ct->ct_refs != 0)
		return;
	for (pp = &sv->sv_ctrls; *pp != NULL; pp = &(*pp)->ct_next) {
		if (*pp == ct) {
			*pp = ct->ct_next;
			break;
		}
	}
	/* Keep the counters of a controller that goes away. */
	for (uint32_t i = 0; i < ct->ct_nq; i++)
		storvsc_stats_add(&sv->sv_stats_dead, &ct->ct_q[i].q_stats);
	*free_it = true;
}

void storvsc_ctrl_put(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;
	bool free_it;

	sv_lock(sv, &sv->sv_lock);
	storvsc_ctrl_put_locked(ct, &free_it);
	sv_unlock(sv, &sv->sv_lock);
	if (free_it)
		storvsc_ctrl_free(ct);
}

void storvsc_ctrl_free(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;

	for (uint32_t i = 0; i < ct->ct_nq; i++)
		storvsc_vstor_queue_free(ct, &ct->ct_q[i]);
	sv_free(sv, ct->ct_q, sizeof(*ct->ct_q) * STORVSC_MAX_QUEUES);
	sv_lock_fini(sv, &ct->ct_lock);
	if (sv->sv_plat->wait_fini)
		sv->sv_plat->wait_fini(sv->sv_plat->ctx, &ct->ct_wait);
	sv_free(sv, ct, sizeof(*ct));
}

/* Next controller after prev (NULL: the first) with a reference held;
 * the reference on prev is dropped. */
static struct storvsc_ctrl *sv_ctrl_next(struct storvsc *sv,
    struct storvsc_ctrl *prev)
{
	struct storvsc_ctrl *ct;
	bool free_it = false;

	sv_lock(sv, &sv->sv_lock);
	ct = prev ? prev->ct_next : sv->sv_ctrls;
	if (ct != NULL)
		ct->ct_refs++;
	if (prev != NULL)
		storvsc_ctrl_put_locked(prev, &free_it);
	sv_unlock(sv, &sv->sv_lock);
	if (free_it)
		storvsc_ctrl_free(prev);
	return ct;
}

/* ---- attach / detach ---- */

static struct storvsc *sv_from_dev(struct vmbus_device *dev, bool *ide)
{
	const struct vmbus_driver *drv = vmbus_device_driver(dev);
	const size_t off_scsi = offsetof(struct storvsc, sv_drv_scsi);
	const size_t off_ide = offsetof(struct storvsc, sv_drv_ide);

	if (drv == NULL)
		return NULL;
	/* The driver structs are embedded in struct storvsc; the class
	 * tells which one the core handed us. */
	if (hv_guid_equal(&drv->drv_class, &HV_GUID_IDE)) {
		*ide = true;
		return (struct storvsc *)(void *)((uint8_t *)(uintptr_t)drv -
		    off_ide);
	}
	*ide = false;
	return (struct storvsc *)(void *)((uint8_t *)(uintptr_t)drv -
	    off_scsi);
}

static int sv_attach(struct vmbus_device *dev)
{
	struct vmbus_chan_info ci;
	struct storvsc_ctrl *ct;
	struct storvsc *sv;
	bool ide = false;
	int r;

	sv = sv_from_dev(dev, &ide);
	if (sv == NULL)
		return -VMBUS_EINVAL;
	ct = sv_zalloc(sv, sizeof(*ct));
	if (ct == NULL)
		return -VMBUS_ENOMEM;
	ct->ct_q = sv_zalloc(sv, sizeof(*ct->ct_q) * STORVSC_MAX_QUEUES);
	if (ct->ct_q == NULL) {
		sv_free(sv, ct, sizeof(*ct));
		return -VMBUS_ENOMEM;
	}
	ct->ct_sv = sv;
	ct->ct_dev = dev;
	ct->ct_chan = vmbus_device_channel(dev);
	ct->ct_ide = ide;
	ct->ct_refs = 1;
	atomic_store(&ct->ct_state, SV_CT_INIT);
	sv_lock_init(sv, &ct->ct_lock);
	if (sv->sv_plat->wait_init)
		sv->sv_plat->wait_init(sv->sv_plat->ctx, &ct->ct_wait);
	if (vmbus_chan_get_info(ct->ct_chan, &ci) == 0)
		ct->ct_instance = ci.ci_instance;
	/*
	 * IDE: the instance GUID names the disk; Data2 (bytes 4-5 LE) is
	 * the target, as guests derive it (spec 5.2).
	 */
	ct->ct_ide_target = ct->ct_instance.g_bytes[4];
	sv_lock(sv, &sv->sv_lock);
	ct->ct_port = (uint8_t)sv->sv_next_port++;
	sv_unlock(sv, &sv->sv_lock);

	r = storvsc_vstor_init(ct);
	if (r != 0) {
		sv_log(sv, VMBUS_LOG_WARN, "storvsc%u: VSTOR init failed (%d)",
		    (unsigned)ct->ct_port, r);
		storvsc_vstor_close(ct);
		/* Never linked, so no put folds its counters in: keep them
		 * here (a failed teardown's leaked pages among them). */
		sv_lock(sv, &sv->sv_lock);
		for (uint32_t i = 0; i < ct->ct_nq; i++)
			storvsc_stats_add(&sv->sv_stats_dead,
			    &ct->ct_q[i].q_stats);
		sv_unlock(sv, &sv->sv_lock);
		storvsc_ctrl_free(ct);
		return r;
	}
	vmbus_device_set_softc(dev, ct);
	sv_lock(sv, &sv->sv_lock);
	{
		struct storvsc_ctrl **pp = &sv->sv_ctrls;

		while (*pp != NULL)
			pp = &(*pp)->ct_next;
		*pp = ct;
	}
	sv_unlock(sv, &sv->sv_lock);
	atomic_store(&ct->ct_state, SV_CT_READY);
	sv_log(sv, VMBUS_LOG_INFO,
	    "storvsc%u: %s, VSTOR %u.%u, %u queue(s) of %u, max transfer %u",
	    (unsigned)ct->ct_port, ide ? "IDE" : "SCSI",
	    VSTOR_VERSION_MAJOR(ct->ct_version),
	    VSTOR_VERSION_MINOR(ct->ct_version), (unsigned)ct->ct_nq,
	    (unsigned)ct->ct_depth, (unsigned)ct->ct_max_xfer);
	/* Discovery failures leave an attached controller with fewer
	 * disks; a later rescan may find them. */
	(void)storvsc_scan(ct);
	return 0;
}

static bool sv_rescan_idle(void *arg)
{
	struct storvsc_ctrl *ct = arg;

	/* Only a scan that runs now: one still queued in defer() holds its
	 * own reference and finds the controller gone. */
	return !atomic_load(&ct->ct_rescan_running);
}

static void sv_detach(struct vmbus_device *dev)
{
	struct storvsc_ctrl *ct = vmbus_device_softc(dev);
	struct storvsc *sv;

	if (ct == NULL)
		return;
	sv = ct->ct_sv;
	atomic_store(&ct->ct_state, SV_CT_DETACHING);
	/*
	 * NOTE order: close the channels first (the core drains our
	 * callback and the host stops touching request buffers), then fail
	 * what was in flight, then let a running rescan finish (its I/O now
	 * fails at once), then report the disks gone.
	 */
	storvsc_vstor_close(ct);
	(void)sv_wait(ct, sv_rescan_idle, ct,
	    sv_now(sv) + sv->sv_cfg.sc_init_timeout_ns);
	storvsc_disks_remove_all(ct);
	atomic_store(&ct->ct_state, SV_CT_GONE);
	vmbus_device_set_softc(dev, NULL);
	sv_log(sv, VMBUS_LOG_INFO, "storvsc%u: detached",
	    (unsigned)ct->ct_port);
	storvsc_ctrl_put(ct);
}

/* ---- driver object ---- */

static int sv_config_check(struct storvsc_config *c, uint32_t vcpus)
{
	if (c->sc_max_version == 0)
		c->sc_max_version = VMSTOR_PROTO_VERSION_WIN10;
	if (c->sc_min_version == 0)
		c->sc_min_version = VMSTOR_PROTO_VERSION_WIN6;
	if (c->sc_min_version > c->sc_max_version)
		return -VMBUS_EINVAL;
	if (c->sc_ring_bytes == 0)
		c->sc_ring_bytes = SV_DEFAULT_RING;
	if (c->sc_ring_bytes % SV_PAGE_SIZE != 0 ||
	    c->sc_ring_bytes < 4u * SV_PAGE_SIZE)
		return -VMBUS_EINVAL;
	if (c->sc_max_queues == 0)
		c->sc_max_queues = vcpus;
	if (c->sc_max_queues > STORVSC_MAX_QUEUES)
		c->sc_max_queues = STORVSC_MAX_QUEUES;
	if (c->sc_queue_depth == 0)
		c->sc_queue_depth = STORVSC_MAX_QUEUE_DEPTH;
	if (c->sc_queue_depth > STORVSC_MAX_QUEUE_DEPTH)
		return -VMBUS_EINVAL;
	if (c->sc_bounce_pages == 0)
		c->sc_bounce_pages = SV_DEFAULT_BOUNCE;
	if (c->sc_bounce_pages < SV_MIN_BOUNCE || c->sc_bounce_pages > 65535u)
		return -VMBUS_EINVAL;
	if (c->sc_init_timeout_ns == 0)
		c->sc_init_timeout_ns = SV_DEFAULT_INIT_NS;
	if (c->sc_io_timeout_ns == 0)
		c->sc_io_timeout_ns = SV_DEFAULT_IO_NS;
	if (c->sc_scan_paths == 0)
		c->sc_scan_paths = 1;
	if (c->sc_scan_targets == 0)
		c->sc_scan_targets = STORVSC_MAX_TARGETS;
	return 0;
}

int storvsc_create(struct vmbus *vb, const struct storvsc_config *cfg,
    struct storvsc **out)
{
	const struct vmbus_platform *p;
	struct storvsc_config c;
	struct storvsc *sv;
	uint32_t vcpus;
	int r;

	if (vb == NULL || out == NULL)
		return -VMBUS_EINVAL;
	p = vmbus_platform(vb);
	if (p == NULL || p->zalloc == NULL || p->free == NULL ||
	    p->now_ns == NULL || p->page_alloc == NULL ||
	    p->page_free == NULL || p->virt_to_gpa == NULL)
		return -VMBUS_EINVAL;
	vcpus = p->vcpu_count ? p->vcpu_count(p->ctx) : 1;
	if (vcpus == 0)
		vcpus = 1;
	if (cfg != NULL)
		vmbus_memcpy(&c, cfg, sizeof(c));
	else
		vmbus_memset(&c, 0, sizeof(c));
	r = sv_config_check(&c, vcpus);
	if (r != 0)
		return r;
	sv = p->zalloc(p->ctx, sizeof(*sv));
	if (sv == NULL)
		return -VMBUS_ENOMEM;
	sv->sv_bus = vb;
	sv->sv_plat = p;
	sv->sv_cfg = c;
	sv_lock_init(sv, &sv->sv_lock);
	sv->sv_drv_scsi.drv_name = "storvsc";
	sv->sv_drv_scsi.drv_class = HV_GUID_STORVSC;
	sv->sv_drv_scsi.drv_attach = sv_attach;
	sv->sv_drv_scsi.drv_detach = sv_detach;
	sv->sv_drv_ide.drv_name = "storvsc-ide";
	sv->sv_drv_ide.drv_class = HV_GUID_IDE;
	sv->sv_drv_ide.drv_attach = sv_attach;
	sv->sv_drv_ide.drv_detach = sv_detach;
	r = vmbus_driver_register(vb, &sv->sv_drv_scsi);
	if (r != 0) {
		sv_lock_fini(sv, &sv->sv_lock);
		p->free(p->ctx, sv, sizeof(*sv));
		return r;
	}
	*out = sv;
	/* NOTE: a registered driver cannot be unregistered, so from here on
	 * the object stays (and is returned) even if the IDE half fails. */
	r = vmbus_driver_register(vb, &sv->sv_drv_ide);
	if (r != 0)
		sv_log(sv, VMBUS_LOG_WARN,
		    "storvsc: IDE driver not registered (%d); SCSI only", r);
	return 0;
}

int storvsc_destroy(struct storvsc *sv)
{
	const struct vmbus_platform *p;

	if (sv == NULL)
		return 0;
	sv_lock(sv, &sv->sv_lock);
	if (sv->sv_ctrls != NULL) {
		sv_unlock(sv, &sv->sv_lock);
		return -VMBUS_EBUSY;
	}
	sv_unlock(sv, &sv->sv_lock);
	p = sv->sv_plat;
	sv_lock_fini(sv, &sv->sv_lock);
	p->free(p->ctx, sv, sizeof(*sv));
	return 0;
}

void storvsc_tick(struct storvsc *sv)
{
	struct storvsc_ctrl *ct = NULL;

	if (sv == NULL)
		return;
	while ((ct = sv_ctrl_next(sv, ct)) != NULL) {
		if (atomic_load(&ct->ct_state) != SV_CT_READY)
			continue;
		sv_ctrl_housekeeping(ct, false);
		for (uint32_t i = 0; i < ct->ct_nq; i++) {
			struct storvsc_queue *q = &ct->ct_q[i];
			struct storvsc_io *done = NULL;

			sv_lock(sv, &q->q_lock);
			if (atomic_load(&q->q_state) == SV_Q_OPEN)
				storvsc_io_kick_locked(q, &done);
			sv_unlock(sv, &q->q_lock);
			storvsc_io_finish_list(done);
		}
		/* Without defer() the host's rescan requests run here. */
		if (atomic_load(&ct->ct_rescan_pending) &&
		    !atomic_load(&ct->ct_rescan_scheduled))
			storvsc_rescan_run(ct);
	}
}

int storvsc_rescan(struct storvsc *sv)
{
	struct storvsc_ctrl *ct = NULL;
	int first = 0;

	if (sv == NULL)
		return -VMBUS_EINVAL;
	while ((ct = sv_ctrl_next(sv, ct)) != NULL) {
		int r;

		if (atomic_load(&ct->ct_state) != SV_CT_READY)
			continue;
		r = storvsc_scan(ct);
		if (r != 0 && first == 0)
			first = r;
	}
	return first;
}

int storvsc_ctrl_info(struct storvsc *sv, uint32_t idx,
    struct storvsc_ctrl_info *out)
{
	struct storvsc_ctrl *ct;
	uint32_t n = 0;
	int r = -VMBUS_ENOENT;

	if (sv == NULL || out == NULL)
		return -VMBUS_EINVAL;
	vmbus_memset(out, 0, sizeof(*out));
	sv_lock(sv, &sv->sv_lock);
	for (ct = sv->sv_ctrls; ct != NULL; ct = ct->ct_next) {
		uint32_t nq = 0;

		if (atomic_load(&ct->ct_state) != SV_CT_READY)
			continue;
		if (n++ != idx)
			continue;
		for (uint32_t i = 0; i < ct->ct_nq; i++)
			if (atomic_load(&ct->ct_q[i].q_state) == SV_Q_OPEN)
				nq++;
		out->ci_instance = ct->ct_instance;
		out->ci_ide = ct->ct_ide;
		out->ci_port = ct->ct_port;
		out->ci_version = ct->ct_version;
		out->ci_packet_size = ct->ct_pkt_size;
		out->ci_sense_size = ct->ct_sense_size;
		out->ci_max_transfer = ct->ct_max_xfer;
		out->ci_host_max_transfer = ct->ct_host_max_xfer;
		out->ci_host_max_subchannels = ct->ct_host_max_sub;
		out->ci_multichannel = (ct->ct_host_flags &
		    VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL) != 0;
		out->ci_queues = nq;
		out->ci_queue_depth = ct->ct_depth;
		out->ci_disks = ct->ct_ndisks;
		out->ci_attached = true;
		r = 0;
		break;
	}
	sv_unlock(sv, &sv->sv_lock);
	return r;
}

int storvsc_get_stats(struct storvsc *sv, struct storvsc_stats *out)
{
	struct storvsc_ctrl *ct;

	if (sv == NULL || out == NULL)
		return -VMBUS_EINVAL;
	sv_lock(sv, &sv->sv_lock);
	*out = sv->sv_stats_dead;
	for (ct = sv->sv_ctrls; ct != NULL; ct = ct->ct_next) {
		for (uint32_t i = 0; i < ct->ct_nq; i++) {
			struct storvsc_queue *q = &ct->ct_q[i];

			sv_lock(sv, &q->q_lock);
			storvsc_stats_add(out, &q->q_stats);
			sv_unlock(sv, &q->q_lock);
		}
	}
	sv_unlock(sv, &sv->sv_lock);
	return 0;
}

void *storvsc_buf_alloc(struct storvsc *sv, size_t bytes)
{
	size_t npages;
	uint64_t *pfns;
	void *va;

	if (sv == NULL || bytes == 0)
		return NULL;
	npages = (bytes + SV_PAGE_SIZE - 1) / SV_PAGE_SIZE;
	pfns = sv_zalloc(sv, npages * sizeof(uint64_t));
	if (pfns == NULL)
		return NULL;
	va = sv->sv_plat->page_alloc(sv->sv_plat->ctx, npages, pfns);
	sv_free(sv, pfns, npages * sizeof(uint64_t));
	return va;
}

void storvsc_buf_free(struct storvsc *sv, void *buf, size_t bytes)
{
	size_t npages;

	if (sv == NULL || buf == NULL || bytes == 0)
		return;
	npages = (bytes + SV_PAGE_SIZE - 1) / SV_PAGE_SIZE;
	/* The port could not take the pages back (a confidential VM's
	 * pages still shared: -EISCONN): they stay leaked, and counted. */
	if (sv->sv_plat->page_free(sv->sv_plat->ctx, buf, npages) != 0) {
		sv_lock(sv, &sv->sv_lock);
		sv->sv_stats_dead.st_leaked_pages += npages;
		sv_unlock(sv, &sv->sv_lock);
		sv_log(sv, VMBUS_LOG_WARN, "storvsc: %u buffer pages leaked "
		    "(the port kept them)", (unsigned)npages);
	}
}

const char *storvsc_strerror(int err)
{
	switch (err) {
	case 0: return "OK";
	case -VMBUS_EIO: return "EIO";
	case -VMBUS_ERANGE: return "ERANGE";
	case -VMBUS_EPERM: return "EPERM";
	case -VMBUS_ENOSPC: return "ENOSPC";
	case -VMBUS_EOPNOTSUPP: return "EOPNOTSUPP";
	case -VMBUS_EBUSY: return "EBUSY";
	case -VMBUS_ECANCELED: return "ECANCELED";
	case -VMBUS_ENODEV: return "ENODEV";
	case -VMBUS_ETIMEDOUT: return "ETIMEDOUT";
	case -VMBUS_EPROTO: return "EPROTO";
	case -VMBUS_EINVAL: return "EINVAL";
	case -VMBUS_ENOMEM: return "ENOMEM";
	case -VMBUS_EAGAIN: return "EAGAIN";
	case -VMBUS_EFAULT: return "EFAULT";
	case -VMBUS_ENOENT: return "ENOENT";
	case -VMBUS_EISCONN: return "EISCONN";
	default: return "error";
	}
}
