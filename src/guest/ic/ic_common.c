/*
 * guest/ic/ic_common.c - the IC framework of the guest: driver glue,
 * the channel callback, the 28-byte pipe + IC header, version negotiation,
 * replies, deferred work, counters and logging (spec/vmbus-devices.md 4.1-4.4).
 *
 * Each service (heartbeat.c, shutdown.c, timesync.c, kvp.c) provides a
 * struct ic_svc_ops; everything common to them lives here.
 */
#include "ic_priv.h"

/* ---- small helpers ---- */

void ic_lock(struct ic_svc *svc)
{
	const struct vmbus_platform *p = svc->sv_ics->ics_plat;

	if (p->lock)
		p->lock(p->ctx, &svc->sv_lock);
}

void ic_unlock(struct ic_svc *svc)
{
	const struct vmbus_platform *p = svc->sv_ics->ics_plat;

	if (p->unlock)
		p->unlock(p->ctx, &svc->sv_lock);
}

void *ic_zalloc(struct ic_services *ics, size_t bytes)
{
	return ics->ics_plat->zalloc(ics->ics_plat->ctx, bytes);
}

void ic_free(struct ic_services *ics, void *ptr, size_t bytes)
{
	if (ptr)
		ics->ics_plat->free(ics->ics_plat->ctx, ptr, bytes);
}

uint64_t ic_now_ns(struct ic_services *ics)
{
	return ics->ics_plat->now_ns(ics->ics_plat->ctx);
}

void ic_vlog(struct ic_services *ics, int level, const char *fmt, va_list ap)
{
	const struct vmbus_platform *p = ics->ics_plat;

	if (p->vlog)
		p->vlog(p->ctx, level, fmt, ap);
}

void ic_log(struct ic_services *ics, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ic_vlog(ics, level, fmt, ap);
	va_end(ap);
}

/* The first 16 errors of a service are logged, then one in 1024. */
void ic_log_bad(struct ic_svc *svc, const char *fmt, ...)
{
	va_list ap;
	uint64_t n;

	ic_lock(svc);
	n = ++svc->sv_logged;
	ic_unlock(svc);
	if (n > 16 && (n & 1023) != 0)
		return;
	va_start(ap, fmt);
	ic_vlog(svc->sv_ics, VMBUS_LOG_WARN, fmt, ap);
	va_end(ap);
}

void ic_count(struct ic_svc *svc, size_t field_offset)
{
	uint64_t *c = (uint64_t *)(void *)((uint8_t *)&svc->sv_stats +
	    field_offset);

	ic_lock(svc);
	(*c)++;
	ic_unlock(svc);
}

struct ic_ver ic_svc_version(struct ic_svc *svc)
{
	struct ic_ver v = { 0, 0 };

	ic_lock(svc);
	if (svc->sv_negotiated)
		v = svc->sv_msg;
	ic_unlock(svc);
	return v;
}

/* ---- deferred work ---- */

void ic_work_init(struct ic_work *w, struct ic_services *ics,
    vmbus_work_fn *fn, void *arg)
{
	w->wk_ics = ics;
	w->wk_fn = fn;
	w->wk_arg = arg;
	atomic_init(&w->wk_scheduled, false);
}

static void ic_work_run(void *arg)
{
	struct ic_work *w = arg;
	struct ic_services *ics = w->wk_ics;

	/* NOTE: cleared before running, so an event during the run schedules
	 * the work again; the work always reads the latest state. */
	atomic_store(&w->wk_scheduled, false);
	w->wk_fn(w->wk_arg);
	/* NOTE: last access to IC state: ic_services_free waits for 0. */
	atomic_fetch_sub(&ics->ics_works_pending, 1);
}

void ic_work_schedule(struct ic_svc *svc, struct ic_work *w)
{
	struct ic_services *ics = w->wk_ics;
	const struct vmbus_platform *p = ics->ics_plat;

	if (atomic_exchange(&w->wk_scheduled, true))
		return;
	atomic_fetch_add(&ics->ics_works_pending, 1);
	if (p->defer == NULL) {
		/* Polled port: callbacks run from vmbus_poll in thread
		 * context, so the work may run right here. */
		ic_work_run(w);
		return;
	}
	if (p->defer(p->ctx, ic_work_run, w) == 0)
		return;
	IC_COUNT(svc, is_defer_failures);
	ic_log_bad(svc, "ic-%s: defer failed; running the work inline",
	    svc->sv_ops->so_name);
	ic_work_run(w);
}

/* ---- replies ---- */

void ic_msg_set_status(struct ic_msg *m, uint32_t status)
{
	struct ic_msg_hdr *h = (struct ic_msg_hdr *)(void *)m->im_buf;

	h->ic_status = hv_cpu_to_le32(status);
}

static uint32_t ic_msg_status(const struct ic_msg *m)
{
	const struct ic_msg_hdr *h = (const struct ic_msg_hdr *)(const void *)
	    m->im_buf;

	return hv_le32(h->ic_status);
}

int ic_reply(struct ic_svc *svc, struct ic_msg *m, uint32_t len)
{
	struct ic_msg_hdr *h = (struct ic_msg_hdr *)(void *)m->im_buf;
	struct vmbus_channel *ch;
	uint32_t status = ic_msg_status(m);
	bool open;
	int r;

	/* Spec 4.1: the guest echoes the host's buffer with flags
	 * TRANSACTION|RESPONSE and the same VMBus transaction id; the pipe
	 * flags are echoed, the two sizes describe what we send. */
	h->ic_flags = IC_FLAGS_GUEST_RESPONSE;
	h->ic_pipe.iph_msgsize = hv_cpu_to_le32(len - IC_PIPE_HDR_SIZE);
	h->ic_msgsize = hv_cpu_to_le16((uint16_t)(len - IC_HDR_SIZE));

	ic_lock(svc);
	open = svc->sv_open;
	ch = svc->sv_ch;
	ic_unlock(svc);
	if (!open) {
		IC_COUNT(svc, is_send_errors);
		return -VMBUS_ENODEV;
	}
	/* NOTE: vmbus_chan_send never sleeps; a channel being closed makes
	 * it fail with -ENODEV, which is all a late reply can do. */
	r = vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0, m->im_buf,
	    len, m->im_trans_id);
	ic_lock(svc);
	if (r == 0) {
		svc->sv_stats.is_replies++;
		if (status != IC_STATUS_S_OK && status != IC_STATUS_S_CONT)
			svc->sv_stats.is_failed_replies++;
	} else {
		svc->sv_stats.is_send_errors++;
	}
	ic_unlock(svc);
	if (r != 0)
		ic_log_bad(svc, "ic-%s: reply not sent (%d)",
		    svc->sv_ops->so_name, r);
	return r;
}

/* A failure answer that carries only the header (when the body cannot be
 * trusted or is not ours to answer). */
static void ic_reply_hdr_fail(struct ic_svc *svc, struct ic_msg *m,
    uint32_t status)
{
	ic_msg_set_status(m, status);
	(void)ic_reply(svc, m, IC_HDR_SIZE);
}

/* ---- version negotiation (spec 4.4) ---- */

static bool ic_ver_in(struct ic_ver v, const struct ic_ver *list, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (ic_ver_cmp(v, list[i]) == 0)
			return true;
	return false;
}

static struct ic_ver ic_wire_ver(const uint8_t *p)
{
	struct ic_version w;
	struct ic_ver v;

	vmbus_memcpy(&w, p, sizeof(w));
	v.v_major = hv_le16(w.iv_major);
	v.v_minor = hv_le16(w.iv_minor);
	return v;
}

static void ic_put_wire_ver(uint8_t *p, struct ic_ver v)
{
	struct ic_version w;

	w.iv_major = hv_cpu_to_le16(v.v_major);
	w.iv_minor = hv_cpu_to_le16(v.v_minor);
	vmbus_memcpy(p, &w, sizeof(w));
}

/*
 * The highest version the host lists in host[0..n) that we also speak.
 * Exact (major, minor) matches only, as L and V do.
 */
static bool ic_pick(const uint8_t *host, uint32_t n, const struct ic_ver *ours,
    uint32_t nours, struct ic_ver *out)
{
	bool found = false;

	for (uint32_t i = 0; i < n; i++) {
		struct ic_ver v = ic_wire_ver(host + 4u * i);

		if (!ic_ver_in(v, ours, nours))
			continue;
		if (!found || ic_ver_cmp(v, *out) > 0) {
			*out = v;
			found = true;
		}
	}
	return found;
}

/* Our framework versions: hv/icmsg.h's list initialises our host-order
 * version struct. */
static const struct ic_ver ic_fw_ours[] = IC_FRAMEWORK_GUEST_VERSIONS;
#define IC_FW_N (sizeof(ic_fw_ours) / sizeof(ic_fw_ours[0]))

/*
 * Answer a NEGOTIATE. A malformed one (counts 0 or above the cap, lists
 * running past the message) or one with no common version is answered
 * with counts 0/0 and E_FAIL, and the previous negotiation (if any) stays.
 * Hostile-host item 19.
 */
static void ic_negotiate(struct ic_svc *svc, struct ic_msg *m)
{
	const struct ic_svc_ops *ops = svc->sv_ops;
	struct ic_negotiate n;
	struct ic_ver fw, msg;
	uint32_t fcnt, mcnt, avail;
	uint8_t *b = m->im_buf;

	if (IC_HDR_SIZE + m->im_body_len < IC_NEGOTIATE_FIXED_SIZE) {
		ic_log_bad(svc, "ic-%s: negotiate body of %u bytes is short",
		    ops->so_name, m->im_body_len);
		IC_COUNT(svc, is_malformed);
		ic_reply_hdr_fail(svc, m, IC_STATUS_E_FAIL);
		return;
	}
	vmbus_memcpy(&n, b, sizeof(n));
	fcnt = hv_le16(n.icn_icframe_vercnt);
	mcnt = hv_le16(n.icn_icmsg_vercnt);
	avail = IC_HDR_SIZE + m->im_body_len;
	if (fcnt == 0 || mcnt == 0 || fcnt > IC_NEGOTIATE_MAX_VERCNT ||
	    mcnt > IC_NEGOTIATE_MAX_VERCNT ||
	    IC_NEGOTIATE_SIZE(fcnt, mcnt) > avail) {
		ic_log_bad(svc, "ic-%s: negotiate with %u+%u versions in %u "
		    "bytes refused", ops->so_name, fcnt, mcnt, avail);
		IC_COUNT(svc, is_malformed);
		goto fail;
	}
	if (!ic_pick(b + IC_NEGOTIATE_FIXED_SIZE, fcnt, ic_fw_ours, IC_FW_N,
	    &fw) ||
	    !ic_pick(b + IC_NEGOTIATE_FIXED_SIZE + 4u * fcnt, mcnt,
	    ops->so_versions, ops->so_nversions, &msg)) {
		ic_log(svc->sv_ics, VMBUS_LOG_WARN,
		    "ic-%s: no common version with the host", ops->so_name);
		goto fail;
	}

	n.icn_icframe_vercnt = hv_cpu_to_le16(1);
	n.icn_icmsg_vercnt = hv_cpu_to_le16(1);
	vmbus_memcpy(b, &n, sizeof(n));
	ic_put_wire_ver(b + IC_NEGOTIATE_FIXED_SIZE, fw);
	ic_put_wire_ver(b + IC_NEGOTIATE_FIXED_SIZE + 4u, msg);
	ic_msg_set_status(m, IC_STATUS_S_OK);

	ic_lock(svc);
	svc->sv_negotiated = true;
	svc->sv_fw = fw;
	svc->sv_msg = msg;
	svc->sv_stats.is_negotiations++;
	ic_unlock(svc);
	ic_log(svc->sv_ics, VMBUS_LOG_INFO,
	    "ic-%s: framework %u.%u, service %u.%u", ops->so_name,
	    fw.v_major, fw.v_minor, msg.v_major, msg.v_minor);
	(void)ic_reply(svc, m, IC_NEGOTIATE_RESP_SIZE);
	return;

fail:
	n.icn_icframe_vercnt = 0;
	n.icn_icmsg_vercnt = 0;
	vmbus_memcpy(b, &n, sizeof(n));
	ic_msg_set_status(m, IC_STATUS_E_FAIL);
	(void)ic_reply(svc, m, IC_NEGOTIATE_FIXED_SIZE);
}

/* ---- dispatch of one received packet ---- */

static void ic_dispatch(struct ic_svc *svc, uint8_t *buf, uint32_t len,
    const struct vmbus_pkt_info *pi)
{
	const struct ic_svc_ops *ops = svc->sv_ops;
	struct ic_msg_hdr h;
	struct ic_msg m;
	bool negotiated;
	uint32_t rlen;

	IC_COUNT(svc, is_messages);
	if (pi->pi_type != VMBUS_PACKET_TYPE_DATA_INBAND) {
		ic_log_bad(svc, "ic-%s: packet type %u ignored", ops->so_name,
		    pi->pi_type);
		IC_COUNT(svc, is_unknown);
		return;
	}
	if (len < IC_HDR_SIZE) {
		ic_log_bad(svc, "ic-%s: %u-byte message is shorter than the "
		    "IC header", ops->so_name, len);
		IC_COUNT(svc, is_malformed);
		IC_COUNT(svc, is_dropped);
		return;
	}
	vmbus_memcpy(&h, buf, sizeof(h));
	m.im_buf = buf;
	m.im_len = len;
	m.im_body_len = hv_le16(h.ic_msgsize);
	m.im_type = hv_le16(h.ic_msgtype);
	m.im_trans_id = pi->pi_trans_id;

	if (h.ic_flags & IC_FLAG_RESPONSE) {
		/* We never send requests: answering a response could start
		 * a ping-pong with a confused host. */
		ic_log_bad(svc, "ic-%s: unsolicited response (flags %#x) "
		    "dropped", ops->so_name, h.ic_flags);
		IC_COUNT(svc, is_malformed);
		IC_COUNT(svc, is_dropped);
		return;
	}
	if (IC_HDR_SIZE + m.im_body_len > len) {
		ic_log_bad(svc, "ic-%s: icmsgsize %u runs past the %u-byte "
		    "message", ops->so_name, m.im_body_len, len);
		IC_COUNT(svc, is_malformed);
		ic_reply_hdr_fail(svc, &m, IC_STATUS_E_FAIL);
		return;
	}
	if (m.im_type == IC_MSGTYPE_NEGOTIATE) {
		ic_negotiate(svc, &m);
		return;
	}
	if (m.im_type != ops->so_msgtype) {
		ic_log_bad(svc, "ic-%s: message type %u refused", ops->so_name,
		    m.im_type);
		IC_COUNT(svc, is_unknown);
		ic_reply_hdr_fail(svc, &m, IC_STATUS_E_FAIL);
		return;
	}
	ic_lock(svc);
	negotiated = svc->sv_negotiated;
	ic_unlock(svc);
	if (!negotiated) {
		ic_log_bad(svc, "ic-%s: message before version negotiation "
		    "refused", ops->so_name);
		IC_COUNT(svc, is_not_negotiated);
		ic_reply_hdr_fail(svc, &m, IC_STATUS_E_FAIL);
		return;
	}
	rlen = ops->so_handle(svc, &m);
	if (rlen != 0)
		(void)ic_reply(svc, &m, rlen);
}

static void ic_drain(struct ic_svc *svc, struct vmbus_channel *ch)
{
	for (uint32_t n = 0; n < IC_CB_BUDGET; n++) {
		struct vmbus_pkt_info pi;
		uint32_t len = IC_RX_BUF_SIZE;
		int r;

		/* The one copy-in of IC messages: the packet is copied into
		 * sv_rx by the core; nothing below reads the ring. */
		r = vmbus_chan_recv(ch, svc->sv_rx, &len, &pi);
		if (r == -VMBUS_EAGAIN)
			return;
		if (r == -VMBUS_ENOBUFS) {
			/* Cannot happen with a 16 KiB ring; if it does, the
			 * packet stays and only a reopen clears it. */
			ic_log_bad(svc, "ic-%s: %u-byte packet exceeds the "
			    "receive buffer", svc->sv_ops->so_name, len);
			IC_COUNT(svc, is_malformed);
			return;
		}
		if (r < 0)
			return;		/* -EPROTO / -ENODEV: counted by the core */
		ic_dispatch(svc, svc->sv_rx, len, &pi);
	}
	/* Budget used up: the core calls us again while data is pending. */
}

/*
 * The channel callback. NOTE: exclusive even against our own call right
 * after open: whoever finds the drain busy leaves a mark and tries once
 * more, so a packet is never left behind between the holder's last read
 * and its release.
 */
static void ic_chan_callback(struct vmbus_channel *ch, void *arg)
{
	struct ic_svc *svc = arg;

	for (;;) {
		if (atomic_exchange(&svc->sv_cb_busy, true)) {
			atomic_store(&svc->sv_cb_again, true);
			if (atomic_exchange(&svc->sv_cb_busy, true))
				return;		/* the holder will look again */
		}
		atomic_store(&svc->sv_cb_again, false);
		ic_drain(svc, ch);
		atomic_store(&svc->sv_cb_busy, false);
		if (!atomic_load(&svc->sv_cb_again))
			return;
	}
}

/* ---- driver glue ---- */

static struct ic_svc *ic_svc_of_dev(struct vmbus_device *dev)
{
	const struct vmbus_driver *drv = vmbus_device_driver(dev);

	if (drv == NULL)
		return NULL;
	return (struct ic_svc *)(void *)((uint8_t *)(uintptr_t)drv -
	    offsetof(struct ic_svc, sv_drv));
}

static int ic_drv_probe(struct vmbus_device *dev)
{
	struct ic_svc *svc = ic_svc_of_dev(dev);
	bool busy;

	if (svc == NULL)
		return -VMBUS_EINVAL;
	ic_lock(svc);
	busy = svc->sv_dev != NULL;
	ic_unlock(svc);
	if (busy) {
		ic_log(svc->sv_ics, VMBUS_LOG_WARN,
		    "ic-%s: a second channel of this class is ignored",
		    svc->sv_ops->so_name);
		return -VMBUS_EBUSY;
	}
	return 0;
}

static int ic_drv_attach(struct vmbus_device *dev)
{
	struct ic_svc *svc = ic_svc_of_dev(dev);
	struct vmbus_channel *ch = vmbus_device_channel(dev);
	int r;

	if (svc == NULL || ch == NULL)
		return -VMBUS_EINVAL;
	ic_lock(svc);
	svc->sv_dev = dev;
	svc->sv_ch = ch;
	svc->sv_negotiated = false;
	ic_unlock(svc);
	vmbus_device_set_softc(dev, svc);
	if (svc->sv_ops->so_opened)
		svc->sv_ops->so_opened(svc);
	/* NOTE: sv_open before the open, so a message that arrives at once
	 * can be answered; ic_reply fails cleanly if the open then fails. */
	ic_lock(svc);
	svc->sv_open = true;
	ic_unlock(svc);
	r = vmbus_chan_open(ch, IC_RING_SIZE, IC_RING_SIZE, NULL, 0,
	    ic_chan_callback, svc);
	if (r != 0) {
		ic_log(svc->sv_ics, VMBUS_LOG_WARN, "ic-%s: open failed (%d)",
		    svc->sv_ops->so_name, r);
		ic_lock(svc);
		svc->sv_open = false;
		svc->sv_dev = NULL;
		svc->sv_ch = NULL;
		ic_unlock(svc);
		return r;
	}
	ic_log(svc->sv_ics, VMBUS_LOG_INFO, "ic-%s: attached to %s",
	    svc->sv_ops->so_name, vmbus_chan_name(ch));
	/* NOTE: hosts send NEGOTIATE right after the open; its event can
	 * arrive before the core enables our callback and be dropped as
	 * spurious. Look at the ring once ourselves. */
	ic_chan_callback(ch, svc);
	return 0;
}

static void ic_drv_detach(struct vmbus_device *dev)
{
	struct ic_svc *svc = ic_svc_of_dev(dev);
	struct vmbus_channel *ch;

	if (svc == NULL)
		return;
	if (svc->sv_ops->so_closing)
		svc->sv_ops->so_closing(svc);
	/* NOTE: order: stop replies from deferred work (sv_open under the
	 * lock), then close (the core drains the running callback), then
	 * forget the channel. */
	ic_lock(svc);
	svc->sv_open = false;
	ch = svc->sv_ch;
	ic_unlock(svc);
	if (ch)
		(void)vmbus_chan_close(ch);
	ic_lock(svc);
	svc->sv_ch = NULL;
	svc->sv_dev = NULL;
	svc->sv_negotiated = false;
	ic_unlock(svc);
	ic_log(svc->sv_ics, VMBUS_LOG_INFO, "ic-%s: detached",
	    svc->sv_ops->so_name);
}

/* ---- public API ---- */

void ic_config_init(struct ic_config *cfg)
{
	if (cfg == NULL)
		return;
	vmbus_memset(cfg, 0, sizeof(*cfg));
	cfg->icc_services = IC_SVC_ALL;
}

static const struct ic_svc_ops *const ic_all_ops[IC_SVC_COUNT] = {
	[IC_SVC_HEARTBEAT] = &ic_heartbeat_ops,
	[IC_SVC_SHUTDOWN] = &ic_shutdown_ops,
	[IC_SVC_TIMESYNC] = &ic_timesync_ops,
	[IC_SVC_KVP] = &ic_kvp_ops,
};

static void ic_release(struct ic_services *ics)
{
	const struct vmbus_platform *p = ics->ics_plat;

	ic_kvp_fini(ics);
	for (uint32_t i = 0; i < IC_SVC_COUNT; i++) {
		struct ic_svc *svc = &ics->ics_svc[i];

		ic_free(ics, svc->sv_rx, IC_RX_BUF_SIZE);
		if (p->lock_fini)
			p->lock_fini(p->ctx, &svc->sv_lock);
	}
	p->free(p->ctx, ics, sizeof(*ics));
}

int ic_services_register(struct vmbus *vb, const struct ic_config *cfg,
    struct ic_services **out)
{
	const struct vmbus_platform *p;
	struct ic_services *ics;
	struct ic_config def;
	int r = 0;

	if (vb == NULL || out == NULL)
		return -VMBUS_EINVAL;
	p = vmbus_platform(vb);
	if (p == NULL || p->zalloc == NULL || p->free == NULL ||
	    p->now_ns == NULL)
		return -VMBUS_EINVAL;
	if (cfg == NULL) {
		ic_config_init(&def);
		cfg = &def;
	}
	if ((cfg->icc_services & ~IC_SVC_ALL) != 0 ||
	    cfg->icc_kvp.kc_max_records > 1024)
		return -VMBUS_EINVAL;

	ics = p->zalloc(p->ctx, sizeof(*ics));
	if (ics == NULL)
		return -VMBUS_ENOMEM;
	ics->ics_plat = p;
	ics->ics_vb = vb;
	ics->ics_cfg = *cfg;
	if (ics->ics_cfg.icc_services == 0)
		ics->ics_cfg.icc_services = IC_SVC_ALL;
	if (ics->ics_cfg.icc_sample_step_ns == 0)
		ics->ics_cfg.icc_sample_step_ns = 5ull * 1000 * 1000 * 1000;
	atomic_init(&ics->ics_works_pending, 0);
	atomic_init(&ics->ics_hb.hb_app_state, 0);
	atomic_init(&ics->ics_hb.hb_last_seq, 0);

	for (uint32_t i = 0; i < IC_SVC_COUNT; i++) {
		struct ic_svc *svc = &ics->ics_svc[i];

		svc->sv_ics = ics;
		svc->sv_ops = ic_all_ops[i];
		svc->sv_id = (enum ic_service)i;
		svc->sv_enabled = (ics->ics_cfg.icc_services &
		    IC_SVC_BIT(i)) != 0;
		if (p->lock_init)
			p->lock_init(p->ctx, &svc->sv_lock);
		svc->sv_drv.drv_name = svc->sv_ops->so_name;
		svc->sv_drv.drv_class = svc->sv_ops->so_class;
		svc->sv_drv.drv_probe = ic_drv_probe;
		svc->sv_drv.drv_attach = ic_drv_attach;
		svc->sv_drv.drv_detach = ic_drv_detach;
		atomic_init(&svc->sv_cb_busy, false);
		atomic_init(&svc->sv_cb_again, false);
		if (!svc->sv_enabled)
			continue;
		svc->sv_rx = ic_zalloc(ics, IC_RX_BUF_SIZE);
		if (svc->sv_rx == NULL) {
			ic_release(ics);
			return -VMBUS_ENOMEM;
		}
	}
	ic_shutdown_init(ics);
	ic_timesync_init(ics);
	if (ics->ics_svc[IC_SVC_KVP].sv_enabled) {
		r = ic_kvp_init(ics);
		if (r != 0) {
			ic_release(ics);
			return r;
		}
	}

	/* NOTE: from the first successful register on, the core holds
	 * pointers into ics: it can only be freed after vmbus_destroy. */
	bool any = false;

	for (uint32_t i = 0; i < IC_SVC_COUNT; i++) {
		struct ic_svc *svc = &ics->ics_svc[i];

		if (!svc->sv_enabled)
			continue;
		r = vmbus_driver_register(vb, &svc->sv_drv);
		if (r != 0) {
			ic_log(ics, VMBUS_LOG_ERR,
			    "ic-%s: driver registration failed (%d)",
			    svc->sv_ops->so_name, r);
			if (!any) {
				ic_release(ics);
				return r;
			}
			break;
		}
		svc->sv_registered = true;
		any = true;
	}
	*out = ics;
	return r;
}

void ic_services_free(struct ic_services *ics)
{
	uint64_t deadline;

	if (ics == NULL)
		return;
	deadline = ic_now_ns(ics) + IC_FREE_WAIT_NS;
	while (atomic_load(&ics->ics_works_pending) != 0) {
		if (ic_now_ns(ics) >= deadline) {
			ic_log(ics, VMBUS_LOG_ERR, "ic: deferred work still "
			    "queued; IC state leaked");
			return;
		}
	}
	ic_release(ics);
}

int ic_get_stats(struct ic_services *ics, enum ic_service id,
    struct ic_stats *out)
{
	struct ic_svc *svc;

	if (ics == NULL || out == NULL || (unsigned)id >= IC_SVC_COUNT)
		return -VMBUS_EINVAL;
	svc = &ics->ics_svc[id];
	ic_lock(svc);
	*out = svc->sv_stats;
	out->is_attached = svc->sv_open;
	out->is_negotiated = svc->sv_negotiated;
	out->is_fw_major = svc->sv_negotiated ? svc->sv_fw.v_major : 0;
	out->is_fw_minor = svc->sv_negotiated ? svc->sv_fw.v_minor : 0;
	out->is_msg_major = svc->sv_negotiated ? svc->sv_msg.v_major : 0;
	out->is_msg_minor = svc->sv_negotiated ? svc->sv_msg.v_minor : 0;
	ic_unlock(svc);
	return 0;
}
