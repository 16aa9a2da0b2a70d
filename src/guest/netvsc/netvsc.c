/*
 * src/guest/netvsc/netvsc.c - the NetVSC driver object: registration for
 * the synthetic NIC class, attach / detach, the NIC bring-up (spec
 * vmbus-devices.md 2.9) and teardown, the bounded wait, and the public
 * control, information and statistics calls of vmbus/netvsc.h.
 */
#include "netvsc_priv.h"

#include "hv/guid.h"

#define NV_MAX_BUSES	8u

/* One driver object per bus; registration is a set-up time call. */
static struct nv_drv nv_drivers[NV_MAX_BUSES];

/* ---- port wrappers ---- */

void nv_lock(const struct netvsc_dev *nd, vmbus_lock_t *l)
{
	if (nd->nd_plat->lock)
		nd->nd_plat->lock(nd->nd_plat->ctx, l);
}

void nv_unlock(const struct netvsc_dev *nd, vmbus_lock_t *l)
{
	if (nd->nd_plat->unlock)
		nd->nd_plat->unlock(nd->nd_plat->ctx, l);
}

void nv_lock_init(const struct netvsc_dev *nd, vmbus_lock_t *l)
{
	if (nd->nd_plat->lock_init)
		nd->nd_plat->lock_init(nd->nd_plat->ctx, l);
}

void nv_lock_fini(const struct netvsc_dev *nd, vmbus_lock_t *l)
{
	if (nd->nd_plat->lock_fini)
		nd->nd_plat->lock_fini(nd->nd_plat->ctx, l);
}

uint64_t nv_now(const struct netvsc_dev *nd)
{
	return nd->nd_plat->now_ns(nd->nd_plat->ctx);
}

uint64_t nv_deadline(const struct netvsc_dev *nd, uint64_t timeout_ns)
{
	uint64_t now = nv_now(nd);

	return now + timeout_ns < now ? UINT64_MAX : now + timeout_ns;
}

bool nv_polled(const struct netvsc_dev *nd)
{
	return nd->nd_plat->wait == NULL || nd->nd_plat->wake_all == NULL;
}

void nv_log(const struct netvsc_dev *nd, int level, const char *fmt, ...)
{
	va_list ap;

	if (nd->nd_plat->vlog == NULL)
		return;
	va_start(ap, fmt);
	nd->nd_plat->vlog(nd->nd_plat->ctx, level, fmt, ap);
	va_end(ap);
}

/* true at most once per NV_LOG_INTERVAL_NS per cursor; racy on purpose
 * (a lost update costs one extra line). */
bool nv_ratelimit(const struct netvsc_dev *nd, uint64_t *next)
{
	uint64_t now = nv_now(nd);

	if (now < *next)
		return false;
	*next = now + NV_LOG_INTERVAL_NS;
	return true;
}

void *nv_zalloc(const struct netvsc_dev *nd, size_t bytes)
{
	return nd->nd_plat->zalloc(nd->nd_plat->ctx, bytes);
}

void nv_free(const struct netvsc_dev *nd, void *p, size_t bytes)
{
	if (p != NULL)
		nd->nd_plat->free(nd->nd_plat->ctx, p, bytes);
}

void nv_wake(struct netvsc_dev *nd)
{
	if (nv_polled(nd))
		return;
	nv_lock(nd, &nd->nd_lock);
	nd->nd_plat->wake_all(nd->nd_plat->ctx, &nd->nd_wait);
	nv_unlock(nd, &nd->nd_lock);
}

int nv_chan_err(const struct netvsc_dev *nd)
{
	struct nv_queue *q0 = nd->nd_q[0];

	if (nd->nd_chan == NULL || q0 == NULL || !q0->q_open)
		return -VMBUS_ENODEV;
	if (atomic_load(&q0->q_dead))
		return -VMBUS_EPROTO;
	switch (vmbus_chan_state(nd->nd_chan)) {
	case VMBUS_CHAN_OPEN:
		return 0;
	case VMBUS_CHAN_BROKEN:
		return -VMBUS_EPROTO;
	default:
		return -VMBUS_ENODEV;
	}
}

#define NV_W_CHAN	0x1u	/* bail when the primary channel is not open */
#define NV_W_GONE	0x2u	/* bail when the NIC is detaching */

static int nv_wait_ex(struct netvsc_dev *nd, nv_cond_fn *cond, void *arg,
    uint64_t deadline, unsigned flags)
{
	const struct vmbus_platform *p = nd->nd_plat;
	int r;

	for (;;) {
		uint64_t now = nv_now(nd);
		bool ok, woken = false;

		nv_lock(nd, &nd->nd_lock);
		ok = cond(nd, arg);
		if (!ok && !nv_polled(nd) && now < deadline) {
			uint64_t until = now + NV_WAIT_SLICE_NS;

			woken = p->wait(p->ctx, &nd->nd_wait, &nd->nd_lock,
			    until < deadline ? until : deadline) == 0;
			ok = cond(nd, arg);
		}
		nv_unlock(nd, &nd->nd_lock);
		if (ok)
			return 0;
		if ((flags & NV_W_CHAN) && (r = nv_chan_err(nd)) != 0)
			return r;
		if ((flags & NV_W_GONE) &&
		    atomic_load(&nd->nd_state) == NV_ST_GONE)
			return -VMBUS_ENODEV;
		if (nv_now(nd) >= deadline)
			return -VMBUS_ETIMEDOUT;
		/* Polled port: the only progress. Interrupt port: a slice
		 * without a wakeup may be a lost interrupt. */
		if (!woken)
			vmbus_poll(nd->nd_bus);
	}
}

int nv_wait(struct netvsc_dev *nd, nv_cond_fn *cond, void *arg,
    uint64_t deadline)
{
	return nv_wait_ex(nd, cond, arg, deadline, NV_W_CHAN | NV_W_GONE);
}

/* ---- data-path entry ---- */

bool nv_tx_enter(struct netvsc_dev *nd)
{
	atomic_fetch_add(&nd->nd_tx_active, 1);
	if (atomic_load(&nd->nd_state) == NV_ST_UP)
		return true;
	atomic_fetch_sub(&nd->nd_tx_active, 1);
	return false;
}

void nv_tx_exit(struct netvsc_dev *nd)
{
	atomic_fetch_sub(&nd->nd_tx_active, 1);
}

/* After nd_state left UP: wait for senders to leave (they never block
 * for long: a send never sleeps, netvsc_wait_tx re-checks the state at
 * least every NV_WAIT_SLICE_NS). */
static void nv_tx_quiesce(struct netvsc_dev *nd)
{
	uint64_t dl = nv_deadline(nd, nd->nd_cfg.nc_timeout_ns);

	nv_wake(nd);
	while (atomic_load(&nd->nd_tx_active) != 0 && nv_now(nd) < dl)
		vmbus_poll(nd->nd_bus);
	if (atomic_load(&nd->nd_tx_active) != 0)
		nv_log(nd, VMBUS_LOG_ERR, "%s: a sender does not leave",
		    nd->nd_name);
}

/* ---- control-call serialisation ---- */

static bool nv_ctl_free(struct netvsc_dev *nd, void *arg)
{
	(void)arg;
	return !nd->nd_ctl_busy;
}

/*
 * A control call's waits poll the bus, which may run the core's deferred
 * work on this stack: vmbus_device_enter keeps a rescind finished there
 * from detaching (and freeing) the NIC under the call; the call's last
 * step, vmbus_device_exit, detaches it then. On failure the NIC may be
 * gone already: the caller returns at once.
 */
static int nv_ctl_enter(struct netvsc_dev *nd)
{
	struct vmbus_device *dev = nd->nd_dev;
	int r;

	if (atomic_load(&nd->nd_state) == NV_ST_GONE)
		return -VMBUS_ENODEV;
	r = vmbus_device_enter(dev);
	if (r != 0)
		return r;
	for (;;) {
		r = nv_wait_ex(nd, nv_ctl_free, NULL,
		    nv_deadline(nd, nd->nd_cfg.nc_timeout_ns), NV_W_GONE);
		if (r != 0) {
			vmbus_device_exit(dev);
			return r;
		}
		nv_lock(nd, &nd->nd_lock);
		if (!nd->nd_ctl_busy) {
			nd->nd_ctl_busy = true;
			nv_unlock(nd, &nd->nd_lock);
			break;
		}
		nv_unlock(nd, &nd->nd_lock);
	}
	if (atomic_load(&nd->nd_state) == NV_ST_GONE) {
		nv_lock(nd, &nd->nd_lock);
		nd->nd_ctl_busy = false;
		nv_unlock(nd, &nd->nd_lock);
		nv_wake(nd);
		vmbus_device_exit(dev);
		return -VMBUS_ENODEV;
	}
	return 0;
}

/* The control call's last use of nd (it may be freed here). */
static void nv_ctl_exit(struct netvsc_dev *nd)
{
	struct vmbus_device *dev = nd->nd_dev;

	nv_lock(nd, &nd->nd_lock);
	nd->nd_ctl_busy = false;
	nv_unlock(nd, &nd->nd_lock);
	nv_wake(nd);
	vmbus_device_exit(dev);
}

/* ---- bring-up and teardown ---- */

static void nv_queue_stats_add(struct netvsc_queue_stats *to,
    const struct netvsc_queue_stats *from)
{
	const uint64_t *f = (const uint64_t *)(const void *)from;
	uint64_t *t = (uint64_t *)(void *)to;

	_Static_assert(sizeof(*to) % sizeof(uint64_t) == 0, "u64 counters");
	for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
		t[i] += f[i];
}

static bool nv_tx_drained(struct netvsc_dev *nd, void *arg)
{
	(void)arg;
	return nv_tx_outstanding(nd) == 0;
}

/* Give pages back to the port, or leak them when the host may still use
 * them (STYLE 9: GPADL teardown failed, or the channel never closed). */
void nv_pages_release(struct netvsc_dev *nd, void *va, uint32_t npages,
    bool leak)
{
	if (va == NULL)
		return;
	if (leak || nd->nd_plat->page_free(nd->nd_plat->ctx, va, npages) != 0) {
		nd->nd_stats.ns_leaked_pages += npages;
		nv_log(nd, VMBUS_LOG_WARN, "%s: %u pages leaked (host may own them)",
		    nd->nd_name, (unsigned)npages);
	}
}

/*
 * A buffer described by GPADL gpadl (0: none): torn down, then freed; or
 * leaked. When the teardown fails with -VMBUS_EISCONN the core has counted
 * the pages (bs_leaked_pages, vmbus_gpadl_destroy's contract): they are
 * leaked without counting them again here.
 */
static void nv_buf_release(struct netvsc_dev *nd, void *va, uint32_t npages,
    uint32_t gpadl, bool leak)
{
	int r;

	if (va == NULL)
		return;
	if (gpadl == 0 || leak) {
		nv_pages_release(nd, va, npages, leak);
		return;
	}
	r = vmbus_gpadl_destroy(nd->nd_chan, gpadl);
	if (r == -VMBUS_EISCONN) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: %u buffer pages left to the "
		    "host", nd->nd_name, (unsigned)npages);
		return;
	}
	nv_pages_release(nd, va, npages, r != 0);
}

/*
 * Tear the NIC down to "nothing shared with the host": RNDIS HALT, wait for
 * outstanding sends, revoke the buffers, close the channels (subchannels
 * first), then the buffers' GPADLs, then memory. NOTE: order (spec 1.4:
 * revoke, close, only then GPADL teardown; STYLE 9: memory the host may
 * still touch is leaked, never freed).
 */
static void nv_teardown(struct netvsc_dev *nd)
{
	bool alive, leak = false;
	int r;

	if (atomic_load(&nd->nd_state) == NV_ST_UP)
		atomic_store(&nd->nd_state, NV_ST_DOWN);
	nv_tx_quiesce(nd);
	alive = nv_chan_err(nd) == 0;
	if (alive && nd->nd_rndis_max_pkts != 0) {
		nv_rndis_halt(nd);
		/* L waits for the sends to drain after HALT. */
		(void)nv_wait_ex(nd, nv_tx_drained, NULL,
		    nv_deadline(nd, nd->nd_cfg.nc_timeout_ns), NV_W_CHAN);
	}
	if (alive)
		nv_nvsp_revoke(nd);
	if (nd->nd_q[0] != NULL && nd->nd_q[0]->q_open) {
		r = vmbus_chan_close(nd->nd_chan);
		leak = r == -VMBUS_EISCONN;
		for (uint32_t i = 0; i < nd->nd_nq; i++)
			if (nd->nd_q[i] != NULL)
				nd->nd_q[i]->q_open = false;
	}
	/* The channels are closed: no callback runs any more. */
	for (uint32_t i = 0; i < nd->nd_nq; i++)
		if (nd->nd_q[i] != NULL)
			nv_tx_fail_all(nd->nd_q[i], -VMBUS_ENODEV, leak);
	nv_rndis_fail_waiters(nd);

	nv_buf_release(nd, nd->nd_rbuf, nd->nd_rbuf_pages, nd->nd_rbuf_gpadl,
	    leak);
	nd->nd_rbuf = NULL;
	nd->nd_rbuf_gpadl = 0;
	nd->nd_rbuf_sent = false;
	nv_free(nd, nd->nd_rbuf_pfn, sizeof(uint64_t) * nd->nd_rbuf_pages);
	nd->nd_rbuf_pfn = NULL;
	nd->nd_rbuf_pages = 0;

	nv_ca_fini(nd, leak);
	nv_buf_release(nd, nd->nd_sbuf, nd->nd_sbuf_pages, nd->nd_sbuf_gpadl,
	    leak);
	nd->nd_sbuf = NULL;
	nd->nd_sbuf_gpadl = 0;
	nd->nd_sbuf_sent = false;
	nv_free(nd, nd->nd_sbuf_pfn, sizeof(uint64_t) * nd->nd_sbuf_pages);
	nd->nd_sbuf_pfn = NULL;
	nd->nd_sbuf_pages = 0;

	for (uint32_t i = 0; i < NETVSC_QUEUES_MAX; i++) {
		struct nv_queue *q;

		/* Unlinked under nd_lock: the statistics calls read there. */
		nv_lock(nd, &nd->nd_lock);
		q = nd->nd_q[i];
		nd->nd_q[i] = NULL;
		if (q != NULL)
			nv_queue_stats_add(&nd->nd_dead_q, &q->q_stats);
		if (i == 0)
			nd->nd_nq = 0;
		nv_unlock(nd, &nd->nd_lock);
		nv_queue_free(nd, q, leak);
	}
	nd->nd_rndis_max_pkts = 0;
	nd->nd_rx_slot = 0;
	nd->nd_rx_nslots = 0;
	nd->nd_offloads = 0;
}

static int nv_bringup(struct netvsc_dev *nd)
{
	uint32_t want;
	int r;

	atomic_store(&nd->nd_tab_host, false);
	for (uint32_t i = 0; i < NETVSC_SEND_TABLE_SIZE; i++)
		atomic_store(&nd->nd_send_tab[i], 0);
	r = nv_queue_alloc(nd, 0, nd->nd_chan);
	if (r != 0)
		return r;
	nd->nd_nq = 1;
	r = nv_queue_open(nd, nd->nd_q[0]);
	if (r != 0)
		return r;
	r = nv_nvsp_negotiate(nd);
	if (r != 0)
		return r;
	r = nv_nvsp_ndis_config(nd);
	if (r != 0)
		return r;
	r = nv_nvsp_recv_buf(nd);
	if (r != 0)
		return r;
	if (!nd->nd_cfg.nc_no_send_buf) {
		r = nv_nvsp_send_buf(nd);
		if (r != 0)
			return r;
	}
	r = nv_ca_init(nd);
	if (r != 0)
		return r;
	r = nv_rndis_bringup(nd);
	if (r != 0)
		return r;

	want = nd->nd_cfg.nc_max_queues;
	if (nd->nd_nvsp >= NVSP_PROTOCOL_VERSION_5 &&
	    (nd->nd_cfg.nc_offloads & NETVSC_OFFLOAD_RSS) && want > 1 &&
	    nd->nd_rss_caps_queues >= 2) {
		if (want > nd->nd_rss_caps_queues)
			want = nd->nd_rss_caps_queues;
		r = nv_nvsp_subchannels(nd, want);
		if (r == -VMBUS_ENODEV || r == -VMBUS_EPROTO)
			return r;
		/* Anything else: run with the queues we have. */
		if (nd->nd_nq > 1 && nv_rndis_rss(nd) == 0)
			nd->nd_offloads |= NETVSC_OFFLOAD_RSS;
	}
	atomic_store(&nd->nd_state, NV_ST_UP);
	if (nd->nd_filter != 0) {
		uint32_t st, f = hv_cpu_to_le32(nd->nd_filter);

		r = nv_rndis_set(nd, OID_GEN_CURRENT_PACKET_FILTER, &f,
		    sizeof(f), &st);
		if (r != 0)
			nv_log(nd, VMBUS_LOG_WARN,
			    "%s: packet filter not restored (%d)", nd->nd_name, r);
	}
	nd->nd_up_once = true;
	nv_log(nd, VMBUS_LOG_INFO,
	    "%s: NVSP 0x%x NDIS 0x%x, %u queue(s), MTU %u, %s send buffer",
	    nd->nd_name, (unsigned)nd->nd_nvsp, (unsigned)nd->nd_ndis,
	    (unsigned)nd->nd_nq, (unsigned)nd->nd_mtu,
	    nd->nd_ca.ca_sendbuf ? "with" : "no");
	return 0;
}

/* ---- the driver ---- */

static struct nv_drv *nv_drv_of(struct vmbus *vb)
{
	for (uint32_t i = 0; i < NV_MAX_BUSES; i++)
		if (nv_drivers[i].dr_bus == vb)
			return &nv_drivers[i];
	return NULL;
}

static void nv_name(struct netvsc_dev *nd, uint32_t relid)
{
	static const char pfx[] = "netvsc";
	char digits[12];
	uint32_t n = 0, o = 0;

	for (o = 0; pfx[o]; o++)
		nd->nd_name[o] = pfx[o];
	do {
		digits[n++] = (char)('0' + relid % 10u);
		relid /= 10u;
	} while (relid && n < sizeof(digits));
	while (n && o + 1 < sizeof(nd->nd_name))
		nd->nd_name[o++] = digits[--n];
	nd->nd_name[o] = '\0';
}

static void nv_dev_free(struct netvsc_dev *nd)
{
	struct nv_drv *dr = nd->nd_drv;
	const struct vmbus_platform *p = nd->nd_plat;

	/* Pages this NIC leaked stay counted after it is gone (a failed
	 * attach has no nc_detach in which the OS could read them). */
	if (p->lock)
		p->lock(p->ctx, &dr->dr_lock);
	dr->dr_leaked_pages += nd->nd_stats.ns_leaked_pages;
	if (p->unlock)
		p->unlock(p->ctx, &dr->dr_lock);
	for (uint32_t i = 0; i < NV_RNDIS_SLOTS; i++)
		nv_free(nd, nd->nd_rs[i].rs_resp, NV_RNDIS_RESP_MAX);
	nv_free(nd, nd->nd_reqbuf, NV_RNDIS_REQ_MAX);
	nv_lock_fini(nd, &nd->nd_lock);
	nv_lock_fini(nd, &nd->nd_ca_lock);
	if (nd->nd_plat->wait_fini)
		nd->nd_plat->wait_fini(nd->nd_plat->ctx, &nd->nd_wait);
	nd->nd_plat->free(nd->nd_plat->ctx, nd, sizeof(*nd));
}

static void nv_table_del(struct nv_drv *dr, struct netvsc_dev *nd)
{
	const struct vmbus_platform *p = nd->nd_plat;

	if (p->lock)
		p->lock(p->ctx, &dr->dr_lock);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++)
		if (dr->dr_dev[i] == nd) {
			dr->dr_dev[i] = NULL;
			dr->dr_ndev--;
		}
	if (p->unlock)
		p->unlock(p->ctx, &dr->dr_lock);
}

static int nv_attach(struct vmbus_device *dev)
{
	struct nv_drv *dr = (struct nv_drv *)(uintptr_t)vmbus_device_driver(dev);
	struct vmbus *vb = vmbus_device_bus(dev);
	const struct vmbus_platform *p = vmbus_platform(vb);
	struct netvsc_dev *nd;
	uint32_t slot;
	int r;

	if (p->lock)
		p->lock(p->ctx, &dr->dr_lock);
	for (slot = 0; slot < NETVSC_MAX_DEVICES; slot++)
		if (dr->dr_dev[slot] == NULL)
			break;
	if (p->unlock)
		p->unlock(p->ctx, &dr->dr_lock);
	if (slot == NETVSC_MAX_DEVICES)
		return -VMBUS_ENOSPC;

	nd = p->zalloc(p->ctx, sizeof(*nd));
	if (nd == NULL)
		return -VMBUS_ENOMEM;
	nd->nd_drv = dr;
	nd->nd_dev = dev;
	nd->nd_bus = vb;
	nd->nd_plat = p;
	nd->nd_chan = vmbus_device_channel(dev);
	nd->nd_cfg = dr->dr_cfg;
	nd->nd_mtu_want = nd->nd_cfg.nc_mtu;
	nv_name(nd, vmbus_chan_relid(nd->nd_chan));
	nv_lock_init(nd, &nd->nd_lock);
	nv_lock_init(nd, &nd->nd_ca_lock);
	if (p->wait_init)
		p->wait_init(p->ctx, &nd->nd_wait);
	atomic_store(&nd->nd_state, NV_ST_DOWN);
	nd->nd_reqbuf = nv_zalloc(nd, NV_RNDIS_REQ_MAX);
	for (uint32_t i = 0; i < NV_RNDIS_SLOTS; i++) {
		nd->nd_rs[i].rs_resp = nv_zalloc(nd, NV_RNDIS_RESP_MAX);
		if (nd->nd_rs[i].rs_resp == NULL || nd->nd_reqbuf == NULL) {
			nv_dev_free(nd);
			return -VMBUS_ENOMEM;
		}
	}

	r = nv_bringup(nd);
	if (r != 0) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: bring-up failed (%d)",
		    nd->nd_name, r);
		nv_teardown(nd);
		nv_dev_free(nd);
		return r;
	}
	if (p->lock)
		p->lock(p->ctx, &dr->dr_lock);
	if (dr->dr_dev[slot] != NULL) {
		for (slot = 0; slot < NETVSC_MAX_DEVICES; slot++)
			if (dr->dr_dev[slot] == NULL)
				break;
	}
	if (slot < NETVSC_MAX_DEVICES) {
		dr->dr_dev[slot] = nd;
		dr->dr_ndev++;
	}
	if (p->unlock)
		p->unlock(p->ctx, &dr->dr_lock);
	if (slot == NETVSC_MAX_DEVICES) {
		nv_teardown(nd);
		nv_dev_free(nd);
		return -VMBUS_ENOSPC;
	}
	vmbus_device_set_softc(dev, nd);
	if (nd->nd_cfg.nc_attach != NULL) {
		r = nd->nd_cfg.nc_attach(nd->nd_cfg.nc_arg, nd);
		if (r != 0) {
			vmbus_device_set_softc(dev, NULL);
			nv_table_del(dr, nd);
			atomic_store(&nd->nd_state, NV_ST_GONE);
			nv_teardown(nd);
			nv_dev_free(nd);
			return r < 0 ? r : -VMBUS_EIO;
		}
	}
	return 0;
}

static void nv_detach(struct vmbus_device *dev)
{
	struct nv_drv *dr = (struct nv_drv *)(uintptr_t)vmbus_device_driver(dev);
	struct netvsc_dev *nd = vmbus_device_softc(dev);

	if (nd == NULL)
		return;
	/* A control call in progress sees GONE in its waits and leaves;
	 * then no other can start (nv_ctl_enter refuses GONE). */
	atomic_store(&nd->nd_state, NV_ST_GONE);
	nv_wake(nd);
	(void)nv_wait_ex(nd, nv_ctl_free, NULL,
	    nv_deadline(nd, nd->nd_cfg.nc_timeout_ns), 0);
	nv_lock(nd, &nd->nd_lock);
	nd->nd_ctl_busy = true;
	nv_unlock(nd, &nd->nd_lock);
	nv_teardown(nd);
	if (nd->nd_cfg.nc_detach != NULL)
		nd->nd_cfg.nc_detach(nd->nd_cfg.nc_arg, nd);
	vmbus_device_set_softc(dev, NULL);
	nv_table_del(dr, nd);
	nv_dev_free(nd);
}

static bool nv_version_known(uint32_t v)
{
	static const uint32_t vs[] = NVSP_GUEST_VERSION_LIST;

	for (uint32_t i = 0; i < NVSP_GUEST_VERSION_COUNT; i++)
		if (vs[i] == v)
			return true;
	return false;
}

int netvsc_register(struct vmbus *vb, const struct netvsc_config *cfg)
{
	static const struct hv_guid nv_class = HV_GUID_NETVSC_INIT;
	const struct vmbus_platform *p;
	struct nv_drv *dr;
	struct netvsc_config c;
	int r;

	if (vb == NULL)
		return -VMBUS_EINVAL;
	vmbus_memset(&c, 0, sizeof(c));
	if (cfg != NULL)
		c = *cfg;
	if (c.nc_tx_ring_bytes == 0)
		c.nc_tx_ring_bytes = NETVSC_RING_SIZE;
	if (c.nc_rx_ring_bytes == 0)
		c.nc_rx_ring_bytes = NETVSC_RING_SIZE;
	if (c.nc_recv_buf_bytes == 0)
		c.nc_recv_buf_bytes = NVSP_RECV_BUF_SIZE_DEFAULT;
	if (c.nc_send_buf_bytes == 0)
		c.nc_send_buf_bytes = (NVSP_SEND_BUF_SIZE_DEFAULT +
		    HV_PAGE_SIZE - 1) & ~HV_PAGE_MASK;
	if (c.nc_max_queues == 0) {
		c.nc_max_queues = vmbus_platform(vb)->vcpu_count(
		    vmbus_platform(vb)->ctx);
		if (c.nc_max_queues > NETVSC_DEFAULT_QUEUES)
			c.nc_max_queues = NETVSC_DEFAULT_QUEUES;
		if (c.nc_max_queues == 0)
			c.nc_max_queues = 1;
	}
	if (c.nc_mtu == 0)
		c.nc_mtu = NETVSC_MTU_DEFAULT;
	if (c.nc_max_nvsp_version == 0)
		c.nc_max_nvsp_version = NVSP_PROTOCOL_VERSION_61;
	if (c.nc_min_nvsp_version == 0)
		c.nc_min_nvsp_version = NVSP_PROTOCOL_VERSION_1;
	if (c.nc_offloads == 0)
		c.nc_offloads = NETVSC_OFFLOAD_DEFAULT;
	if (c.nc_offloads & NETVSC_OFFLOAD_NONE)
		c.nc_offloads = 0;
	if (c.nc_timeout_ns == 0)
		c.nc_timeout_ns = NV_DEFAULT_TIMEOUT;
	if (c.nc_tx_ring_bytes % HV_PAGE_SIZE || c.nc_rx_ring_bytes % HV_PAGE_SIZE ||
	    c.nc_tx_ring_bytes < 2u * HV_PAGE_SIZE ||
	    c.nc_rx_ring_bytes < 2u * HV_PAGE_SIZE ||
	    c.nc_recv_buf_bytes % HV_PAGE_SIZE ||
	    c.nc_recv_buf_bytes > NVSP_RECV_BUF_SIZE_MAX ||
	    c.nc_recv_buf_bytes < 4u * HV_PAGE_SIZE ||
	    c.nc_send_buf_bytes % HV_PAGE_SIZE ||
	    c.nc_send_buf_bytes > NVSP_SEND_BUF_SIZE_MAX ||
	    c.nc_send_buf_bytes < HV_PAGE_SIZE ||
	    c.nc_max_queues > NETVSC_QUEUES_MAX ||
	    c.nc_mtu < NETVSC_MTU_MIN || c.nc_mtu > NETVSC_MTU_MAX ||
	    !nv_version_known(c.nc_max_nvsp_version) ||
	    !nv_version_known(c.nc_min_nvsp_version) ||
	    c.nc_min_nvsp_version > c.nc_max_nvsp_version)
		return -VMBUS_EINVAL;
	if (nv_drv_of(vb) != NULL)
		return -VMBUS_EEXIST;
	dr = nv_drv_of(NULL);
	if (dr == NULL)
		return -VMBUS_ENOSPC;
	vmbus_memset(dr, 0, sizeof(*dr));
	p = vmbus_platform(vb);
	dr->dr_plat = p;
	if (p->lock_init)
		p->lock_init(p->ctx, &dr->dr_lock);
	dr->dr_cfg = c;
	dr->dr_drv.drv_name = "netvsc";
	dr->dr_drv.drv_class = nv_class;
	dr->dr_drv.drv_attach = nv_attach;
	dr->dr_drv.drv_detach = nv_detach;
	dr->dr_bus = vb;
	r = vmbus_driver_register(vb, &dr->dr_drv);
	if (r != 0) {
		if (p->lock_fini)
			p->lock_fini(p->ctx, &dr->dr_lock);
		dr->dr_bus = NULL;
	}
	return r;
}

void netvsc_unregister(struct vmbus *vb)
{
	struct nv_drv *dr = vb ? nv_drv_of(vb) : NULL;
	const struct vmbus_platform *p;

	if (dr == NULL)
		return;
	/* vb may be destroyed already: use the port saved at register. */
	p = dr->dr_plat;
	if (p != NULL && p->lock_fini)
		p->lock_fini(p->ctx, &dr->dr_lock);
	vmbus_memset(dr, 0, sizeof(*dr));
}

uint64_t netvsc_leaked_pages(struct vmbus *vb)
{
	struct nv_drv *dr = vb ? nv_drv_of(vb) : NULL;
	const struct vmbus_platform *p;
	uint64_t n;

	if (dr == NULL)
		return 0;
	p = dr->dr_plat;
	if (p->lock)
		p->lock(p->ctx, &dr->dr_lock);
	n = dr->dr_leaked_pages;
	if (p->unlock)
		p->unlock(p->ctx, &dr->dr_lock);
	return n;
}

uint32_t netvsc_count(struct vmbus *vb)
{
	struct nv_drv *dr = vb ? nv_drv_of(vb) : NULL;

	return dr ? dr->dr_ndev : 0;
}

struct netvsc_dev *netvsc_get(struct vmbus *vb, uint32_t index)
{
	struct nv_drv *dr = vb ? nv_drv_of(vb) : NULL;

	if (dr == NULL)
		return NULL;
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		if (dr->dr_dev[i] == NULL)
			continue;
		if (index-- == 0)
			return dr->dr_dev[i];
	}
	return NULL;
}

/* ---- public calls ---- */

void netvsc_set_callbacks(struct netvsc_dev *nd,
    const struct netvsc_callbacks *cb, void *arg)
{
	if (nd == NULL)
		return;
	atomic_store(&nd->nd_cb_arg, arg);
	atomic_store(&nd->nd_cb_rx, cb ? cb->rx : NULL);
	atomic_store(&nd->nd_cb_link, cb ? cb->link : NULL);
	atomic_store(&nd->nd_cb_tx_ready, cb ? cb->tx_ready : NULL);
}

int netvsc_get_info(const struct netvsc_dev *nd, struct netvsc_info *out)
{
	if (nd == NULL || out == NULL)
		return -VMBUS_EINVAL;
	vmbus_memset(out, 0, sizeof(*out));
	vmbus_memcpy(out->ni_perm_mac, nd->nd_perm_mac, sizeof(out->ni_perm_mac));
	vmbus_memcpy(out->ni_cur_mac, nd->nd_cur_mac, sizeof(out->ni_cur_mac));
	out->ni_mtu = nd->nd_mtu;
	out->ni_max_mtu = nv_max_mtu(nd);
	out->ni_nvsp_version = nd->nd_nvsp;
	out->ni_ndis_version = nd->nd_ndis;
	out->ni_queues = nd->nd_nq;
	out->ni_offloads = nd->nd_offloads;
	out->ni_lso_max = nd->nd_lso_max;
	out->ni_lso_min_segs = nd->nd_lso_min_segs;
	out->ni_link_up = atomic_load(&nd->nd_link_up);
	out->ni_link_speed_bps = atomic_load(&nd->nd_link_speed);
	out->ni_recv_buf_bytes = nd->nd_rbuf_bytes;
	out->ni_recv_section_size = nd->nd_rx_slot;
	out->ni_recv_sections = nd->nd_rx_nslots;
	if (nd->nd_ca.ca_sendbuf) {
		out->ni_send_buf_bytes = nd->nd_ca.ca_bytes;
		out->ni_send_section_size = nd->nd_ca.ca_chunk;
		out->ni_send_sections = nd->nd_ca.ca_nchunks;
	}
	out->ni_rndis_max_pkts = nd->nd_rndis_max_pkts;
	out->ni_rndis_align = nd->nd_rndis_align;
	out->ni_rss_table_size = nd->nd_nq > 1 ? nd->nd_rss_entries : 0;
	out->ni_packet_filter = nd->nd_filter;
	out->ni_channel = nd->nd_chan;
	return 0;
}

int netvsc_get_stats(const struct netvsc_dev *nd, struct netvsc_stats *out)
{
	if (nd == NULL || out == NULL)
		return -VMBUS_EINVAL;
	nv_lock(nd, &((struct netvsc_dev *)(uintptr_t)nd)->nd_lock);
	*out = nd->nd_stats;
	out->ns_total = nd->nd_dead_q;
	for (uint32_t i = 0; i < NETVSC_QUEUES_MAX; i++)
		if (nd->nd_q[i] != NULL)
			nv_queue_stats_add(&out->ns_total, &nd->nd_q[i]->q_stats);
	nv_unlock(nd, &((struct netvsc_dev *)(uintptr_t)nd)->nd_lock);
	return 0;
}

int netvsc_get_queue_stats(const struct netvsc_dev *nd, uint32_t q,
    struct netvsc_queue_stats *out)
{
	int r = -VMBUS_EINVAL;

	if (nd == NULL || out == NULL || q >= NETVSC_QUEUES_MAX)
		return -VMBUS_EINVAL;
	nv_lock(nd, &((struct netvsc_dev *)(uintptr_t)nd)->nd_lock);
	if (q < nd->nd_nq && nd->nd_q[q] != NULL) {
		*out = nd->nd_q[q]->q_stats;
		r = 0;
	}
	nv_unlock(nd, &((struct netvsc_dev *)(uintptr_t)nd)->nd_lock);
	return r;
}

static int nv_ready(const struct netvsc_dev *nd)
{
	if (atomic_load(&nd->nd_state) != NV_ST_UP)
		return -VMBUS_ENODEV;
	return nv_chan_err(nd);
}

int netvsc_set_filter(struct netvsc_dev *nd, uint32_t filter)
{
	uint32_t st, f = hv_cpu_to_le32(filter);
	int r;

	if (nd == NULL)
		return -VMBUS_EINVAL;
	r = nv_ctl_enter(nd);
	if (r != 0)
		return r;
	r = nv_ready(nd);
	if (r == 0)
		r = nv_rndis_set(nd, OID_GEN_CURRENT_PACKET_FILTER, &f,
		    sizeof(f), &st);
	if (r == 0)
		nd->nd_filter = filter;
	nv_ctl_exit(nd);
	return r;
}

int netvsc_up(struct netvsc_dev *nd)
{
	return netvsc_set_filter(nd, NDIS_PACKET_FILTER_DEFAULT);
}

int netvsc_down(struct netvsc_dev *nd)
{
	return netvsc_set_filter(nd, NDIS_PACKET_TYPE_NONE);
}

int netvsc_set_mtu(struct netvsc_dev *nd, uint32_t mtu)
{
	int r;

	if (nd == NULL || mtu < NETVSC_MTU_MIN || mtu > NETVSC_MTU_MAX)
		return -VMBUS_EINVAL;
	r = nv_ctl_enter(nd);
	if (r != 0)
		return r;
	if (nd->nd_up_once && nd->nd_nvsp != 0 && mtu > nv_max_mtu(nd)) {
		nv_ctl_exit(nd);
		return -VMBUS_EINVAL;
	}
	nd->nd_mtu_want = mtu;
	nd->nd_stats.ns_reinits++;
	nv_teardown(nd);
	if (atomic_load(&nd->nd_state) == NV_ST_GONE) {
		nv_ctl_exit(nd);
		return -VMBUS_ENODEV;
	}
	r = nv_bringup(nd);
	if (r != 0) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: bring-up for MTU %u failed (%d)",
		    nd->nd_name, (unsigned)mtu, r);
		nv_teardown(nd);
	}
	nv_ctl_exit(nd);
	return r;
}

int netvsc_query(struct netvsc_dev *nd, uint32_t oid, const void *in,
    uint32_t inlen, void *out, uint32_t *outlen, uint32_t *rndis_status)
{
	int r;

	if (nd == NULL || outlen == NULL || (out == NULL && *outlen != 0) ||
	    (in == NULL && inlen != 0))
		return -VMBUS_EINVAL;
	r = nv_ctl_enter(nd);
	if (r != 0)
		return r;
	r = nv_ready(nd);
	if (r == 0)
		r = nv_rndis_query(nd, oid, in, inlen, out, outlen,
		    rndis_status);
	nv_ctl_exit(nd);
	return r;
}

int netvsc_set(struct netvsc_dev *nd, uint32_t oid, const void *data,
    uint32_t len, uint32_t *rndis_status)
{
	int r;

	if (nd == NULL || (data == NULL && len != 0))
		return -VMBUS_EINVAL;
	r = nv_ctl_enter(nd);
	if (r != 0)
		return r;
	r = nv_ready(nd);
	if (r == 0)
		r = nv_rndis_set(nd, oid, data, len, rndis_status);
	nv_ctl_exit(nd);
	return r;
}

int netvsc_keepalive(struct netvsc_dev *nd)
{
	int r;

	if (nd == NULL)
		return -VMBUS_EINVAL;
	r = nv_ctl_enter(nd);
	if (r != 0)
		return r;
	r = nv_ready(nd);
	if (r == 0)
		r = nv_rndis_keepalive(nd);
	nv_ctl_exit(nd);
	return r;
}

int netvsc_reset(struct netvsc_dev *nd, bool *addressing_reset)
{
	int r;

	if (nd == NULL)
		return -VMBUS_EINVAL;
	r = nv_ctl_enter(nd);
	if (r != 0)
		return r;
	r = nv_ready(nd);
	if (r == 0)
		r = nv_rndis_reset(nd, addressing_reset);
	nv_ctl_exit(nd);
	return r;
}
