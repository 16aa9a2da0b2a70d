/*
 * src/guest/chan.c - the channel registry: offers (spec 6.3), rescinds
 * (6.6), the channel state machine, open/close (6.4/6.5), ISR dispatch into
 * channel callbacks, signalling the host (3.7), drivers and deferred work.
 */
#include "vmbus_priv.h"
#include "shm.h"

/* ---- state machine ---- */

static const char *const vmbus_state_names[] = {
	[VMBUS_CHAN_OFFERED] = "offered",
	[VMBUS_CHAN_OPENING] = "opening",
	[VMBUS_CHAN_OPEN] = "open",
	[VMBUS_CHAN_CLOSING] = "closing",
	[VMBUS_CHAN_CLOSED] = "closed",
	[VMBUS_CHAN_RESCINDED] = "rescinded",
	[VMBUS_CHAN_BROKEN] = "broken",
};

const char *vmbus_chan_state_name(enum vmbus_chan_state st)
{
	if ((unsigned)st >= sizeof(vmbus_state_names) / sizeof(vmbus_state_names[0]))
		return "?";
	return vmbus_state_names[st];
}

/*
 * The one place a channel changes state (caller holds vb_lock). Allowed:
 *   OFFERED  -> OPENING | RESCINDED
 *   OPENING  -> OPEN | CLOSED | RESCINDED
 *   OPEN     -> CLOSING | BROKEN | RESCINDED
 *   BROKEN   -> CLOSING | RESCINDED
 *   CLOSING  -> CLOSED | RESCINDED
 *   CLOSED   -> OPENING | RESCINDED
 *   RESCINDED is final (the relid is released, the slot reused).
 * Returns false (and changes nothing) for any other move.
 */
bool vmbus_chan_transition(struct vmbus_channel *ch, enum vmbus_chan_state to)
{
	enum vmbus_chan_state from = (enum vmbus_chan_state)atomic_load(&ch->ch_state);
	bool ok;

	switch (from) {
	case VMBUS_CHAN_OFFERED:
		ok = to == VMBUS_CHAN_OPENING || to == VMBUS_CHAN_RESCINDED;
		break;
	case VMBUS_CHAN_OPENING:
		ok = to == VMBUS_CHAN_OPEN || to == VMBUS_CHAN_CLOSED ||
		    to == VMBUS_CHAN_RESCINDED;
		break;
	case VMBUS_CHAN_OPEN:
		ok = to == VMBUS_CHAN_CLOSING || to == VMBUS_CHAN_BROKEN ||
		    to == VMBUS_CHAN_RESCINDED;
		break;
	case VMBUS_CHAN_BROKEN:
		ok = to == VMBUS_CHAN_CLOSING || to == VMBUS_CHAN_RESCINDED;
		break;
	case VMBUS_CHAN_CLOSING:
		ok = to == VMBUS_CHAN_CLOSED || to == VMBUS_CHAN_RESCINDED;
		break;
	case VMBUS_CHAN_CLOSED:
		ok = to == VMBUS_CHAN_OPENING || to == VMBUS_CHAN_RESCINDED;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		return false;
	atomic_store(&ch->ch_state, (int)to);
	VMBUS_DPRINTF(ch->ch_bus, "%s: %s -> %s", ch->ch_name,
	    vmbus_chan_state_name(from), vmbus_chan_state_name(to));
	return true;
}

enum vmbus_chan_state vmbus_chan_state(const struct vmbus_channel *ch)
{
	return (enum vmbus_chan_state)atomic_load(
	    &((struct vmbus_channel *)(uintptr_t)ch)->ch_state);
}

/* Wake every waiter of the channel (no lock needed by the caller). */
void vmbus_chan_wakeup(struct vmbus_channel *ch)
{
	struct vmbus *vb = ch->ch_bus;

	vmbus_lock(vb, &ch->ch_lock);
	ch->ch_wake_seq++;
	vmbus_unlock(vb, &ch->ch_lock);
	if (vb->vb_plat->wake_all)
		vb->vb_plat->wake_all(vb->vb_plat->ctx, &ch->ch_wait);
}

int vmbus_chan_wait_cond(struct vmbus_channel *ch, vmbus_chan_check_fn *check,
    void *arg, uint64_t deadline)
{
	struct vmbus *vb = ch->ch_bus;

	for (;;) {
		uint64_t seq, now, until;
		bool woken = true;
		int r, wr = 0;

		/* NOTE: the sequence is read before the check, so a wakeup
		 * between the check and the sleep ends the sleep at once. */
		vmbus_lock(vb, &ch->ch_lock);
		seq = ch->ch_wake_seq;
		vmbus_unlock(vb, &ch->ch_lock);
		r = check(ch, arg);
		if (r != VMBUS_WAIT_AGAIN)
			return r;
		if (vmbus_gone(vb))
			return -VMBUS_ENODEV;
		now = vmbus_now(vb);
		if (now >= deadline)
			return -VMBUS_ETIMEDOUT;
		if (!vmbus_polled(vb)) {
			until = now + VMBUS_WAIT_SLICE_NS;
			vmbus_lock(vb, &ch->ch_lock);
			if (ch->ch_wake_seq == seq)
				wr = vb->vb_plat->wait(vb->vb_plat->ctx,
				    &ch->ch_wait, &ch->ch_lock,
				    until < deadline ? until : deadline);
			woken = ch->ch_wake_seq != seq;
			vmbus_unlock(vb, &ch->ch_lock);
			if (wr == -VMBUS_ENODEV) {
				vmbus_set_gone(vb, "the port's wait");
				continue;	/* the check has the last word */
			}
		}
		/* Polled: we are the interrupt. Otherwise a slice without a
		 * wakeup may be a lost interrupt: look ourselves. */
		if (!woken || vmbus_polled(vb))
			vmbus_poll_nested(vb);
	}
}

/*
 * The peer broke the protocol on this channel (STYLE 8): count, log once
 * (rate-limited, with the channel name), move to BROKEN, fail pending
 * transactions with -EPROTO, wake waiters. Further I/O is refused.
 * rx_locked: the caller holds ch_rx_lock (the receive path); otherwise it
 * is taken here to mark the receive ring (lock order: rx before vb, ch).
 */
void vmbus_chan_break(struct vmbus_channel *ch, const char *why,
    bool rx_locked)
{
	struct vmbus *vb = ch->ch_bus;
	bool first;

	vmbus_count(&ch->ch_ctr.cc_proto_errors, 1);
	if (!rx_locked)
		vmbus_lock(vb, &ch->ch_rx_lock);
	vmbus_lock(vb, &vb->vb_lock);
	first = vmbus_chan_transition(ch, VMBUS_CHAN_BROKEN);
	if (first && vmbus_ratelimit(vb, &ch->ch_log_next_ns))
		vmbus_log(vb, VMBUS_LOG_ERR, "%s: host protocol error: %s; "
		    "channel broken", ch->ch_name, why);
	vmbus_unlock(vb, &vb->vb_lock);
	vmbus_ring_set_broken(&ch->ch_rx);
	if (!rx_locked)
		vmbus_unlock(vb, &ch->ch_rx_lock);
	vmbus_xact_fail_all(ch, -VMBUS_EPROTO);
	vmbus_chan_wakeup(ch);
}

void vmbus_chan_set_broken(struct vmbus_channel *ch, const char *why)
{
	if (ch != NULL)
		vmbus_chan_break(ch, why ? why : "driver", false);
}

/* ---- registry ---- */

struct vmbus_channel *vmbus_relid_lookup(struct vmbus *vb, uint32_t relid)
{
	if (relid == 0 || relid >= vb->vb_max_relid)
		return NULL;
	return vb->vb_relid[relid];
}

static struct vmbus_channel *vmbus_find_primary(struct vmbus *vb,
    const struct hv_guid *cls, const struct hv_guid *inst)
{
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *ch = &vb->vb_chans[i];

		if (ch->ch_in_use && ch->ch_primary == NULL &&
		    vmbus_chan_state(ch) != VMBUS_CHAN_RESCINDED &&
		    hv_guid_equal(&ch->ch_class, cls) &&
		    hv_guid_equal(&ch->ch_instance, inst))
			return ch;
	}
	return NULL;
}

static void vmbus_offer_reject(struct vmbus *vb, uint32_t relid,
    const char *why)
{
	vmbus_drop(vb, &vb->vb_ctr.bc_bad_offers, &vb->vb_log_next_ns,
	    "vmbus: offer relid %u rejected: %s", (unsigned)relid, why);
}

static void vmbus_name_channel(struct vmbus_channel *ch)
{
	static const char hex[] = "0123456789abcdef";
	char *p = ch->ch_name;
	const char *drv = ch->ch_dev.dv_drv ? ch->ch_dev.dv_drv->drv_name : NULL;
	uint32_t v = ch->ch_relid;
	char num[12];
	int n = 0;

	if (ch->ch_primary && ch->ch_primary->ch_dev.dv_drv)
		drv = ch->ch_primary->ch_dev.dv_drv->drv_name;
	if (drv) {
		for (int i = 0; drv[i] && i < 24; i++)
			*p++ = drv[i];
	} else {
		/* Data1 of the class GUID, as text. */
		for (int i = 3; i >= 0; i--) {
			*p++ = hex[ch->ch_class.g_bytes[i] >> 4];
			*p++ = hex[ch->ch_class.g_bytes[i] & 15];
		}
	}
	*p++ = '/';
	do {
		num[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = num[--n];
	*p = '\0';
}

/* OFFERCHANNEL (vb_lock held): validate the private copy, then register. */
void vmbus_handle_offer(struct vmbus *vb, const struct vmbus_msg *m)
{
	const struct vmbus_chanmsg_offerchannel *of = (const void *)m->m_data;
	uint32_t relid = hv_le32(of->of_child_relid);
	uint32_t connid = hv_le32(of->of_connection_id);
	uint16_t sub = hv_le16(of->of_sub_channel_index);
	uint32_t ver = vmbus_version(vb);
	struct vmbus_channel *ch = NULL, *primary = NULL;

	if (vb->vb_conn != VMBUS_CONN_CONNECTED) {
		vmbus_offer_reject(vb, relid, "not connected");
		return;
	}
	if (relid == 0 || relid >= vb->vb_max_relid) {
		vmbus_offer_reject(vb, relid, "relid out of range");
		return;
	}
	if (vb->vb_relid[relid] != NULL) {
		/* Never overwrite an existing channel. */
		vmbus_offer_reject(vb, relid, "relid in use");
		return;
	}
	if (connid == 0 || (connid & ~HV_CONNECTION_ID_MASK) != 0) {
		vmbus_offer_reject(vb, relid, "bad connection id");
		return;
	}
	if ((of->of_monitor_allocated & VMBUS_OFFER_MONITOR_ALLOCATED) &&
	    of->of_monitorid >= VMBUS_MONITOR_ID_MAX) {
		vmbus_offer_reject(vb, relid, "bad monitor id");
		return;
	}
	primary = vmbus_find_primary(vb, &of->of_if_type, &of->of_if_instance);
	if (sub == 0) {
		if (primary != NULL) {
			vmbus_offer_reject(vb, relid, "duplicate primary");
			return;
		}
		primary = NULL;
	} else {
		if (ver < VMBUS_VERSION_WIN8) {
			vmbus_offer_reject(vb, relid, "subchannel before 2.4");
			return;
		}
		if (primary == NULL) {
			vmbus_offer_reject(vb, relid, "subchannel without primary");
			return;
		}
		for (uint32_t i = 0; i < vb->vb_nchans; i++) {
			struct vmbus_channel *o = &vb->vb_chans[i];

			if (o->ch_in_use && o->ch_primary == primary &&
			    o->ch_sub_index == sub &&
			    vmbus_chan_state(o) != VMBUS_CHAN_RESCINDED) {
				vmbus_offer_reject(vb, relid,
				    "duplicate subchannel index");
				return;
			}
		}
	}
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		if (!vb->vb_chans[i].ch_in_use) {
			ch = &vb->vb_chans[i];
			break;
		}
	}
	if (ch == NULL) {
		vmbus_offer_reject(vb, relid, "channel table full");
		return;
	}

	/* Reset the slot, keeping its port objects. */
	ch->ch_in_use = true;
	atomic_store(&ch->ch_state, (int)VMBUS_CHAN_OFFERED);
	ch->ch_class = of->of_if_type;
	ch->ch_instance = of->of_if_instance;
	ch->ch_relid = relid;
	ch->ch_connid = connid;
	ch->ch_sub_index = sub;
	ch->ch_chn_flags = hv_le16(of->of_chn_flags);
	ch->ch_monitor_id = (of->of_monitor_allocated &
	    VMBUS_OFFER_MONITOR_ALLOCATED) ? of->of_monitorid :
	    (uint8_t)VMBUS_MONITOR_ID_NONE;
	ch->ch_dedicated = (hv_le16(of->of_is_dedicated_interrupt) &
	    VMBUS_OFFER_DEDICATED_INTERRUPT) != 0;
	vmbus_memcpy(ch->ch_user_defined, of->of_user_defined,
	    sizeof(ch->ch_user_defined));
	ch->ch_primary = primary;
	ch->ch_refs = 1;
	vmbus_memset(&ch->ch_dev, 0, sizeof(ch->ch_dev));
	ch->ch_dev.dv_chan = ch;
	ch->ch_ring_va = NULL;
	ch->ch_ring_pages = 0;
	ch->ch_rescind_deferred = false;
	ch->ch_tx_bytes = ch->ch_rx_bytes = 0;
	ch->ch_target_vp = 0;
	ch->ch_want_vp = VMBUS_VP_DEFAULT;
	ch->ch_modify_busy = false;
	ch->ch_modify_done = false;
	ch->ch_cb = NULL;
	ch->ch_cb_arg = NULL;
	atomic_store(&ch->ch_cb_enabled, false);
	atomic_store(&ch->ch_cb_busy, false);
	atomic_store(&ch->ch_cb_again, false);
	ch->ch_work = 0;
	ch->ch_rescind_cb = NULL;
	ch->ch_rescind_arg = NULL;
	ch->ch_zombie = false;
	atomic_store_explicit(&ch->ch_log_next_ns, 0, memory_order_relaxed);
	/* The slot was free: nobody counts on it concurrently. */
	vmbus_memset(&ch->ch_ctr, 0, sizeof(ch->ch_ctr));
	if (primary)
		primary->ch_refs++;
	vmbus_name_channel(ch);
	vb->vb_relid[relid] = ch;
	vmbus_count(&vb->vb_ctr.bc_offers, 1);

	if (primary == NULL && vb->vb_offers_done) {
		/* Hot-add: bind a driver from thread context. */
		ch->ch_work |= VMBUS_CHWORK_ATTACH;
		vmbus_schedule_work(vb);
	}
	if (primary)
		vmbus_chan_wakeup(primary);	/* vmbus_chan_subchan_get */
	vmbus_bus_wakeup(vb);
}

/* RESCIND_CHANNELOFFER (vb_lock held). */
void vmbus_handle_rescind(struct vmbus *vb, const struct vmbus_msg *m)
{
	const struct vmbus_chanmsg_rescind_channeloffer *rc =
	    (const void *)m->m_data;
	uint32_t relid = hv_le32(rc->rc_child_relid);
	struct vmbus_channel *ch = vmbus_relid_lookup(vb, relid);

	if (ch == NULL || vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED) {
		vmbus_drop(vb, &vb->vb_ctr.bc_bad_messages, &vb->vb_log_next_ns,
		    "vmbus: rescind of unknown relid %u ignored",
		    (unsigned)relid);
		return;
	}
	(void)vmbus_chan_transition(ch, VMBUS_CHAN_RESCINDED);
	vmbus_count(&vb->vb_ctr.bc_rescinds, 1);
	vmbus_log(vb, VMBUS_LOG_INFO, "%s: rescinded", ch->ch_name);
	/* Waiters (open, xacts, rx/tx) wake with -ENODEV; the close, driver
	 * detach and RELID_RELEASED follow in thread context. */
	vmbus_xact_fail_all(ch, -VMBUS_ENODEV);
	vmbus_chan_wakeup(ch);
	ch->ch_work |= VMBUS_CHWORK_RESCIND;
	vmbus_schedule_work(vb);
	vmbus_bus_wakeup(vb);
}

/* OPENCHANNEL_RESULT (vb_lock held): must match relid AND openid. */
void vmbus_handle_open_result(struct vmbus *vb, const struct vmbus_msg *m)
{
	const struct vmbus_chanmsg_openchannel_result *or =
	    (const void *)m->m_data;
	struct vmbus_channel *ch =
	    vmbus_relid_lookup(vb, hv_le32(or->or_child_relid));

	if (ch == NULL || vmbus_chan_state(ch) != VMBUS_CHAN_OPENING ||
	    ch->ch_open_done || hv_le32(or->or_openid) != ch->ch_openid) {
		vmbus_drop(vb, &vb->vb_ctr.bc_bad_messages, &vb->vb_log_next_ns,
		    "vmbus: unexpected OPENCHANNEL_RESULT relid %u openid %u",
		    (unsigned)hv_le32(or->or_child_relid),
		    (unsigned)hv_le32(or->or_openid));
		return;
	}
	ch->ch_open_status = hv_le32(or->or_status);
	ch->ch_open_done = true;
	vmbus_bus_wakeup(vb);
}

/* MODIFYCHANNEL_RESPONSE (vb_lock held): the answer to our retarget. */
void vmbus_handle_modify_response(struct vmbus *vb, const struct vmbus_msg *m)
{
	const struct vmbus_chanmsg_modifychannel_response *mr =
	    (const void *)m->m_data;
	uint32_t relid = hv_le32(mr->mcr_child_relid);
	struct vmbus_channel *ch = vmbus_relid_lookup(vb, relid);

	if (ch == NULL || !ch->ch_modify_busy || ch->ch_modify_done) {
		vmbus_drop(vb, &vb->vb_ctr.bc_bad_messages, &vb->vb_log_next_ns,
		    "vmbus: unexpected MODIFYCHANNEL_RESPONSE relid %u",
		    (unsigned)relid);
		return;
	}
	ch->ch_modify_status = hv_le32(mr->mcr_status);
	ch->ch_modify_done = true;
	vmbus_bus_wakeup(vb);
}

/* ---- ISR dispatch ---- */

/* Take the channel's callback token under vb_lock (close clears
 * ch_cb_enabled under the same lock, then waits for the token). */
static struct vmbus_channel *vmbus_chan_grab(struct vmbus *vb, uint32_t relid)
{
	struct vmbus_channel *ch;

	vmbus_lock(vb, &vb->vb_lock);
	ch = vmbus_relid_lookup(vb, relid);
	if (ch == NULL || !atomic_load(&ch->ch_cb_enabled)) {
		vmbus_count(&vb->vb_ctr.bc_spurious_events, 1);
		ch = NULL;
	} else {
		/* NOTE: "go round once more" is raised before the token is
		 * tried, and the holder drops the token before it looks at
		 * the flag (vmbus_chan_dispatch): one of the two always sees
		 * the other, so an event that finds the callback running is
		 * never lost (seq_cst). */
		atomic_store(&ch->ch_cb_again, true);
		if (atomic_exchange(&ch->ch_cb_busy, true))
			ch = NULL;	/* the holder goes round again */
	}
	vmbus_unlock(vb, &vb->vb_lock);
	return ch;
}

/*
 * Run ch's callback: mask, drain, unmask; unmask returns what arrived
 * meanwhile (spec 3.6). A budget keeps a stormy host from livelocking the
 * caller. Returns true if the budget ran out with packets left: the ring is
 * unmasked but not empty, so the host will not signal again (it signals
 * only when the ring goes non-empty, spec 3.5); the caller must come back.
 */
static bool vmbus_chan_run(struct vmbus_channel *ch)
{
	struct vmbus *vb = ch->ch_bus;
	uint32_t left = 0;

	vmbus_count(&ch->ch_ctr.cc_interrupts, 1);
	if (ch->ch_cb == NULL) {
		vmbus_chan_wakeup(ch);
		return false;
	}
	for (uint32_t round = 0; round < VMBUS_CB_BUDGET; round++) {
		vmbus_lock(vb, &ch->ch_rx_lock);
		vmbus_ring_mask(&ch->ch_rx);
		vmbus_unlock(vb, &ch->ch_rx_lock);

		ch->ch_cb(ch, ch->ch_cb_arg);

		vmbus_lock(vb, &ch->ch_rx_lock);
		left = vmbus_ring_unmask(&ch->ch_rx);
		if (left == 0)
			vmbus_chan_rx_check(ch);
		vmbus_unlock(vb, &ch->ch_rx_lock);
		if (left == 0 || vmbus_chan_state(ch) != VMBUS_CHAN_OPEN)
			break;
	}
	/* Room may have appeared in the send ring too. */
	vmbus_chan_wakeup(ch);
	return left != 0 && vmbus_chan_state(ch) == VMBUS_CHAN_OPEN;
}

/* One event for relid: returns the channel if its callback ran out of
 * budget with packets left (see vmbus_chan_run), else NULL. */
static struct vmbus_channel *vmbus_chan_dispatch_once(struct vmbus *vb,
    uint32_t relid)
{
	struct vmbus_channel *ch;

	while ((ch = vmbus_chan_grab(vb, relid)) != NULL) {
		bool more;

		atomic_store(&ch->ch_cb_again, false);
		more = vmbus_chan_run(ch);
		atomic_store(&ch->ch_cb_busy, false);
		if (more)
			return ch;
		/* An event that found us running raised ch_cb_again. */
		if (!atomic_load(&ch->ch_cb_again))
			break;
	}
	return NULL;
}

/*
 * Finish a channel the ISR left with packets: deferred work runs it, and
 * so does the next scan of vmbus_poll_nested (a waiter's silent slice, or
 * vmbus_poll), in case the deferred context is busy waiting on this very
 * channel (a driver attach in deferred work) or the port could not defer.
 */
static void vmbus_chan_redispatch(struct vmbus *vb, struct vmbus_channel *ch)
{
	vmbus_lock(vb, &vb->vb_lock);
	ch->ch_work |= VMBUS_CHWORK_DISPATCH;
	vmbus_unlock(vb, &vb->vb_lock);
	/* NOTE: after the bit, so a scan that clears the flag sees it. */
	atomic_store(&vb->vb_dispatch_pending, true);
}

/* One pass over the channels queued by vmbus_chan_redispatch. */
void vmbus_chan_redispatch_run(struct vmbus *vb)
{
	bool again = false;

	if (!atomic_exchange(&vb->vb_dispatch_pending, false))
		return;
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *ch = &vb->vb_chans[i];
		uint32_t relid = 0;

		vmbus_lock(vb, &vb->vb_lock);
		if (ch->ch_in_use && (ch->ch_work & VMBUS_CHWORK_DISPATCH)) {
			ch->ch_work &= ~VMBUS_CHWORK_DISPATCH;
			relid = ch->ch_relid;
		}
		vmbus_unlock(vb, &vb->vb_lock);
		if (relid != 0 && vmbus_chan_dispatch_once(vb, relid)) {
			vmbus_chan_redispatch(vb, ch);
			again = true;
		}
	}
	/* Still busy: the deferred context takes the next pass. */
	if (again)
		vmbus_schedule_work(vb);
}

void vmbus_chan_dispatch(struct vmbus *vb, uint32_t relid)
{
	struct vmbus_channel *ch = vmbus_chan_dispatch_once(vb, relid);

	if (ch != NULL) {
		vmbus_chan_redispatch(vb, ch);
		vmbus_schedule_work(vb);
	}
}

/* Signal the host for ch (spec 3.7): SignalEvent on the offer's
 * connection id; before 2.4 without a dedicated interrupt the relid bit in
 * the interrupt page's send half first. */
void vmbus_chan_signal(struct vmbus_channel *ch)
{
	struct vmbus *vb = ch->ch_bus;

	if (vmbus_version(vb) < VMBUS_VERSION_WIN8 && !ch->ch_dedicated) {
		struct hv_interrupt_page *ip = vb->vb_intr_page;

		vmbus_shm_fetch_or8(&ip->ip_send[ch->ch_relid / 8u],
		    (uint8_t)(1u << (ch->ch_relid % 8u)));
	}
	vmbus_count(&ch->ch_ctr.cc_signals, 1);
	vmbus_hv_signal(vb, ch->ch_connid);
}

/* ---- open / close ---- */

static bool vmbus_open_settled(struct vmbus *vb, void *arg)
{
	struct vmbus_channel *ch = arg;

	(void)vb;
	return ch->ch_open_done ||
	    vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED;
}

static void vmbus_ring_release(struct vmbus_channel *ch, bool leak)
{
	struct vmbus *vb = ch->ch_bus;

	if (ch->ch_ring_va == NULL)
		return;
	if (leak || vb->vb_plat->page_free(vb->vb_plat->ctx, ch->ch_ring_va,
	    ch->ch_ring_pages) != 0) {
		/* The host may still own it: forget it, never reuse it. */
		vmbus_count(&vb->vb_ctr.bc_leaked_pages, ch->ch_ring_pages);
		vmbus_log(vb, VMBUS_LOG_WARN, "%s: %u ring pages leaked",
		    ch->ch_name, (unsigned)ch->ch_ring_pages);
	}
	ch->ch_ring_va = NULL;
	ch->ch_ring_pages = 0;
}

static int vmbus_send_close(struct vmbus_channel *ch)
{
	struct vmbus_chanmsg_closechannel cc;

	vmbus_memset(&cc, 0, sizeof(cc));
	cc.cc_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_CLOSECHANNEL);
	cc.cc_child_relid = hv_cpu_to_le32(ch->ch_relid);
	return vmbus_post(ch->ch_bus, &cc, VMBUS_CHANMSG_CLOSECHANNEL_SIZE);
}

static void vmbus_set_state_unless_rescinded(struct vmbus_channel *ch,
    enum vmbus_chan_state to)
{
	struct vmbus *vb = ch->ch_bus;

	vmbus_lock(vb, &vb->vb_lock);
	if (vmbus_chan_state(ch) != VMBUS_CHAN_RESCINDED)
		(void)vmbus_chan_transition(ch, to);
	vmbus_unlock(vb, &vb->vb_lock);
	vmbus_chan_wakeup(ch);
}

/*
 * The one log line of a failed open: which channel, at which step (the
 * host answer it waited for), how long it waited against its limit, and
 * why it ended. r is what vmbus_chan_open returns.
 */
static void vmbus_open_failed(struct vmbus_channel *ch, const char *step,
    uint64_t t0, int r, uint32_t status)
{
	struct vmbus *vb = ch->ch_bus;
	unsigned long long ms = (unsigned long long)((vmbus_now(vb) - t0) /
	    1000000u);
	unsigned long long lim = (unsigned long long)
	    (vb->vb_cfg.vc_timeout_ns / 1000000u);

	if (r == -VMBUS_ETIMEDOUT)
		vmbus_log(vb, VMBUS_LOG_WARN, "%s: open timed out waiting for "
		    "%s after %llu ms (limit %llu ms)", ch->ch_name, step, ms,
		    lim);
	else if (r == -VMBUS_EIO)
		vmbus_log(vb, VMBUS_LOG_WARN, "%s: host refused open at %s "
		    "(status 0x%x) after %llu ms", ch->ch_name, step,
		    (unsigned)status, ms);
	else if (r == -VMBUS_ENODEV)
		vmbus_log(vb, VMBUS_LOG_WARN, "%s: open failed waiting for %s "
		    "after %llu ms: %s", ch->ch_name, step, ms,
		    vmbus_gone(vb) ? "partition gone" : "channel rescinded");
	else
		vmbus_log(vb, VMBUS_LOG_WARN, "%s: open failed at %s after "
		    "%llu ms (%d)", ch->ch_name, step, ms, r);
}

int vmbus_chan_open(struct vmbus_channel *ch, uint32_t txbytes,
    uint32_t rxbytes, const void *userdata, uint32_t udlen,
    vmbus_chan_callback_t *callback, void *arg)
{
	struct vmbus *vb;
	const struct vmbus_platform *p;
	struct vmbus_chanmsg_openchannel op;
	uint64_t *pfns;
	uint32_t npages, gpadl = 0;
	size_t pfn_bytes;
	uint64_t t0;
	uint32_t status;
	int r;

	if (ch == NULL || udlen > VMBUS_OPEN_USER_DATA_SIZE ||
	    (udlen && userdata == NULL) ||
	    txbytes % HV_PAGE_SIZE || rxbytes % HV_PAGE_SIZE ||
	    txbytes < HV_RING_MIN_BYTES || rxbytes < HV_RING_MIN_BYTES ||
	    txbytes > VMBUS_RING_MAX_BYTES || rxbytes > VMBUS_RING_MAX_BYTES)
		return -VMBUS_EINVAL;
	vb = ch->ch_bus;
	p = vb->vb_plat;
	npages = (txbytes + rxbytes) / HV_PAGE_SIZE;
	if (npages > VMBUS_GPADL_MAX_PFNS)
		return -VMBUS_EINVAL;

	vmbus_lock(vb, &vb->vb_lock);
	if (vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED) {
		vmbus_unlock(vb, &vb->vb_lock);
		return -VMBUS_ENODEV;
	}
	if (!ch->ch_in_use || ch->ch_ring_va != NULL ||
	    !vmbus_chan_transition(ch, VMBUS_CHAN_OPENING)) {
		vmbus_unlock(vb, &vb->vb_lock);
		return -VMBUS_EINVAL;
	}
	ch->ch_open_done = false;
	ch->ch_open_status = 0;
	ch->ch_openid = ++vb->vb_openid_seq;
	vmbus_unlock(vb, &vb->vb_lock);

	pfn_bytes = sizeof(uint64_t) * npages;
	pfns = p->zalloc(p->ctx, pfn_bytes);
	if (pfns == NULL) {
		vmbus_set_state_unless_rescinded(ch, VMBUS_CHAN_CLOSED);
		return -VMBUS_ENOMEM;
	}
	ch->ch_ring_va = p->page_alloc(p->ctx, npages, pfns);
	if (ch->ch_ring_va == NULL) {
		p->free(p->ctx, pfns, pfn_bytes);
		vmbus_set_state_unless_rescinded(ch, VMBUS_CHAN_CLOSED);
		return -VMBUS_ENOMEM;
	}
	ch->ch_ring_pages = npages;
	ch->ch_tx_bytes = txbytes;
	ch->ch_rx_bytes = rxbytes;
	/* NOTE: both control pages are initialised before the host can see
	 * the GPADL (spec 6.4 step 1). */
	(void)vmbus_ring_init(&ch->ch_tx, ch->ch_ring_va, txbytes);
	(void)vmbus_ring_init(&ch->ch_rx, (uint8_t *)ch->ch_ring_va + txbytes,
	    rxbytes);
	vmbus_ring_reset_shared(&ch->ch_tx, true);
	vmbus_ring_reset_shared(&ch->ch_rx, false);
	ch->ch_tx_pending = false;

	t0 = vmbus_now(vb);
	r = vmbus_gpadl_make(ch, pfns, npages, &gpadl);
	p->free(p->ctx, pfns, pfn_bytes);
	if (r != 0) {
		vmbus_ring_release(ch, r == -VMBUS_EISCONN);
		vmbus_set_state_unless_rescinded(ch, VMBUS_CHAN_CLOSED);
		if (vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED ||
		    vmbus_gone(vb))
			r = -VMBUS_ENODEV;
		else if (r == -VMBUS_EISCONN)
			r = -VMBUS_ETIMEDOUT;
		/* A refusal was logged with its status by the GPADL code. */
		if (r != -VMBUS_EIO)
			vmbus_open_failed(ch, "GPADL_CREATED (ring)", t0, r, 0);
		return r;
	}
	ch->ch_ring_gpadl = gpadl;
	ch->ch_cb = callback;
	ch->ch_cb_arg = arg;
	/* Interrupts for this channel: vCPU 0 before 2.4 (spec 3.7), then
	 * the driver's choice or the connect vCPU. */
	vmbus_lock(vb, &vb->vb_lock);
	if (vmbus_version(vb) < VMBUS_VERSION_WIN8)
		ch->ch_target_vp = 0;
	else if (ch->ch_want_vp != VMBUS_VP_DEFAULT)
		ch->ch_target_vp = ch->ch_want_vp;
	else
		ch->ch_target_vp = vb->vb_target_vcpu;
	vmbus_unlock(vb, &vb->vb_lock);

	vmbus_memset(&op, 0, sizeof(op));
	op.op_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_OPENCHANNEL);
	op.op_child_relid = hv_cpu_to_le32(ch->ch_relid);
	op.op_openid = hv_cpu_to_le32(ch->ch_openid);
	op.op_gpadl = hv_cpu_to_le32(gpadl);
	op.op_target_vp = hv_cpu_to_le32(ch->ch_target_vp);
	op.op_downstream_pgoff = hv_cpu_to_le32(txbytes / HV_PAGE_SIZE);
	if (udlen)
		vmbus_memcpy(op.op_userdata, userdata, udlen);
	t0 = vmbus_now(vb);
	r = vmbus_post(vb, &op, VMBUS_CHANMSG_OPENCHANNEL_SIZE);
	if (r == 0)
		r = vmbus_bus_wait(vb, vmbus_open_settled, ch,
		    vmbus_deadline(vb, vb->vb_cfg.vc_timeout_ns));

	vmbus_lock(vb, &vb->vb_lock);
	status = ch->ch_open_status;
	if (r == 0 && vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED)
		r = -VMBUS_ENODEV;	/* the host never answers now */
	else if (r == 0 && status != 0)
		r = -VMBUS_EIO;
	if (r == 0) {
		(void)vmbus_chan_transition(ch, VMBUS_CHAN_OPEN);
		atomic_store(&ch->ch_cb_enabled, true);
	}
	vmbus_unlock(vb, &vb->vb_lock);
	if (r == 0) {
		vmbus_log(vb, VMBUS_LOG_DEBUG, "%s: open, rings %u/%u",
		    ch->ch_name, (unsigned)txbytes, (unsigned)rxbytes);
		/*
		 * NOTE: the host may write and signal as soon as it has sent
		 * OPENCHANNEL_RESULT, before ch_cb_enabled was set: that event
		 * was counted spurious and dropped. Run the callback once now
		 * so nothing already in the ring waits for a second signal.
		 */
		vmbus_chan_dispatch(vb, ch->ch_relid);
		return 0;
	}

	vmbus_open_failed(ch, "OPENCHANNEL_RESULT", t0, r, status);
	if (r == -VMBUS_ETIMEDOUT)
		(void)vmbus_send_close(ch);	/* it may open late */
	/* NOTE: the GPADL goes before the ring memory, always. */
	if (vmbus_gpadl_teardown(ch, gpadl) != 0)
		vmbus_ring_release(ch, true);
	else
		vmbus_ring_release(ch, false);
	ch->ch_cb = NULL;
	vmbus_set_state_unless_rescinded(ch, VMBUS_CHAN_CLOSED);
	return r;
}

/* ---- interrupt vCPU (spec 6.9) ---- */

static bool vmbus_modify_settled(struct vmbus *vb, void *arg)
{
	struct vmbus_channel *ch = arg;

	(void)vb;
	return ch->ch_modify_done ||
	    vmbus_chan_state(ch) != VMBUS_CHAN_OPEN;
}

int vmbus_chan_set_target_vp(struct vmbus_channel *ch, uint32_t vp)
{
	struct vmbus *vb;
	struct vmbus_chanmsg_modifychannel mc;
	uint32_t ver, status;
	int r = 0;

	if (ch == NULL || vp >= ch->ch_bus->vb_nvcpu)
		return -VMBUS_EINVAL;
	vb = ch->ch_bus;
	ver = vmbus_version(vb);
	vmbus_lock(vb, &vb->vb_lock);
	switch (vmbus_chan_state(ch)) {
	case VMBUS_CHAN_OFFERED:
	case VMBUS_CHAN_CLOSED:
		/* Before 2.4 every channel event comes to vCPU 0. */
		if (ver < VMBUS_VERSION_WIN8 && vp != 0)
			r = -VMBUS_EOPNOTSUPP;
		else
			ch->ch_want_vp = vp;
		vmbus_unlock(vb, &vb->vb_lock);
		return r;
	case VMBUS_CHAN_OPEN:
		if (ver < VMBUS_VERSION_WIN10_RS3_0)
			r = -VMBUS_EOPNOTSUPP;	/* no MODIFYCHANNEL */
		else if (ch->ch_modify_busy)
			r = -VMBUS_EBUSY;
		break;
	case VMBUS_CHAN_RESCINDED:
		r = -VMBUS_ENODEV;
		break;
	case VMBUS_CHAN_BROKEN:
		r = -VMBUS_EPROTO;
		break;
	default:			/* opening or closing right now */
		r = -VMBUS_EINVAL;
		break;
	}
	if (r != 0 || vp == ch->ch_target_vp) {
		if (r == 0)
			ch->ch_want_vp = vp;	/* already there */
		vmbus_unlock(vb, &vb->vb_lock);
		return r;
	}
	ch->ch_modify_busy = true;
	ch->ch_modify_done = false;
	vmbus_unlock(vb, &vb->vb_lock);

	vmbus_memset(&mc, 0, sizeof(mc));
	mc.mc_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_MODIFYCHANNEL);
	mc.mc_child_relid = hv_cpu_to_le32(ch->ch_relid);
	mc.mc_target_vp = hv_cpu_to_le32(vp);
	r = vmbus_post(vb, &mc, VMBUS_CHANMSG_MODIFYCHANNEL_SIZE);
	/* From 5.3 on the host acknowledges; before, the switch happens at
	 * a time we cannot know (events are dispatched from any vCPU). */
	if (r == 0 && ver >= VMBUS_VERSION_IRON)
		r = vmbus_bus_wait(vb, vmbus_modify_settled, ch,
		    vmbus_deadline(vb, vb->vb_cfg.vc_timeout_ns));

	vmbus_lock(vb, &vb->vb_lock);
	status = ch->ch_modify_status;
	if (r == 0 && ver >= VMBUS_VERSION_IRON) {
		if (!ch->ch_modify_done)
			r = vmbus_chan_state(ch) == VMBUS_CHAN_BROKEN ?
			    -VMBUS_EPROTO : -VMBUS_ENODEV;
		else if (status != 0)
			r = -VMBUS_EIO;
	}
	if (r == 0) {
		ch->ch_target_vp = vp;
		ch->ch_want_vp = vp;
	}
	ch->ch_modify_busy = false;
	vmbus_unlock(vb, &vb->vb_lock);
	if (r == -VMBUS_EIO)
		vmbus_log(vb, VMBUS_LOG_WARN,
		    "%s: host refused interrupt vCPU %u (0x%x)", ch->ch_name,
		    (unsigned)vp, (unsigned)status);
	return r;
}

static bool vmbus_cb_idle(struct vmbus_channel *ch)
{
	return !atomic_load(&ch->ch_cb_busy);
}

/* Close one channel whose state already allows it (see vmbus_chan_close). */
static int vmbus_chan_close_one(struct vmbus_channel *ch)
{
	struct vmbus *vb = ch->ch_bus;
	enum vmbus_chan_state st;
	bool cb_stuck;
	int r = 0;

	vmbus_lock(vb, &vb->vb_lock);
	st = vmbus_chan_state(ch);
	if (ch->ch_ring_va == NULL ||
	    (st != VMBUS_CHAN_OPEN && st != VMBUS_CHAN_BROKEN &&
	    st != VMBUS_CHAN_RESCINDED)) {
		vmbus_unlock(vb, &vb->vb_lock);
		return -VMBUS_EINVAL;
	}
	if (st != VMBUS_CHAN_RESCINDED)
		(void)vmbus_chan_transition(ch, VMBUS_CHAN_CLOSING);
	/*
	 * NOTE: close order (STYLE 9, hostile-host 25):
	 *  1. unhook from ISR dispatch (ch_cb_enabled, under vb_lock);
	 *  2. drain the callback that may be running now;
	 *  3. CLOSECHANNEL;
	 *  4. GPADL teardown, waiting for GPADL_TORNDOWN;
	 *  5. free the rings (or leak them if the host may still own them).
	 */
	atomic_store(&ch->ch_cb_enabled, false);
	ch->ch_work &= ~VMBUS_CHWORK_DISPATCH;	/* nothing left to run */
	vmbus_unlock(vb, &vb->vb_lock);

	{
		uint64_t dl = vmbus_deadline(vb, vb->vb_cfg.vc_timeout_ns);

		while (!vmbus_cb_idle(ch) && vmbus_now(vb) < dl)
			;	/* callbacks never sleep: this is short */
	}
	/* A callback still running past the deadline (a driver that broke
	 * the never-sleep rule) reads the rings and unmasks after it
	 * returns: they must outlive it, so they are leaked, not freed. */
	cb_stuck = !vmbus_cb_idle(ch);
	if (cb_stuck)
		vmbus_log(vb, VMBUS_LOG_ERR, "%s: callback still running "
		    "%llu ms into the close: its rings are leaked, not freed",
		    ch->ch_name,
		    (unsigned long long)(vb->vb_cfg.vc_timeout_ns / 1000000u));
	vmbus_xact_fail_all(ch, -VMBUS_ENODEV);
	vmbus_chan_wakeup(ch);

	(void)vmbus_send_close(ch);
	if (vmbus_gpadl_teardown(ch, ch->ch_ring_gpadl) != 0 || cb_stuck) {
		vmbus_ring_release(ch, true);
		r = -VMBUS_EISCONN;
	} else {
		vmbus_ring_release(ch, false);
	}
	ch->ch_cb = NULL;
	ch->ch_cb_arg = NULL;
	vmbus_set_state_unless_rescinded(ch, VMBUS_CHAN_CLOSED);
	return r;
}

int vmbus_chan_close(struct vmbus_channel *ch)
{
	struct vmbus *vb;
	int r = 0;

	if (ch == NULL)
		return -VMBUS_EINVAL;
	vb = ch->ch_bus;
	if (ch->ch_primary == NULL) {
		/* Subchannels close before their primary (spec 6.5). */
		for (uint32_t i = 0; i < vb->vb_nchans; i++) {
			struct vmbus_channel *s = &vb->vb_chans[i];

			if (s->ch_in_use && s->ch_primary == ch &&
			    s->ch_ring_va != NULL &&
			    vmbus_chan_close_one(s) == -VMBUS_EISCONN)
				r = -VMBUS_EISCONN;
		}
	}
	{
		int rr = vmbus_chan_close_one(ch);

		if (rr == -VMBUS_EINVAL && r == 0)
			return rr;
		if (rr != 0)
			r = rr;
	}
	return r;
}

/* ---- drivers and deferred work ---- */

static void vmbus_finish_rescind(struct vmbus *vb, struct vmbus_channel *ch);
static void vmbus_release_zombies(struct vmbus *vb, struct vmbus_channel *ch);

static void vmbus_try_attach(struct vmbus *vb, struct vmbus_channel *ch)
{
	struct vmbus_device *dev = &ch->ch_dev;
	bool rescinded;
	int r;

	if (ch->ch_primary != NULL || dev->dv_attached ||
	    vmbus_chan_state(ch) != VMBUS_CHAN_OFFERED)
		return;
	for (uint32_t i = 0; i < vb->vb_ndrivers; i++) {
		const struct vmbus_driver *drv = vb->vb_drivers[i];

		if (!hv_guid_equal(&drv->drv_class, &ch->ch_class))
			continue;
		dev->dv_drv = drv;
		vmbus_name_channel(ch);
		if (drv->drv_probe && drv->drv_probe(dev) != 0) {
			dev->dv_drv = NULL;
			continue;
		}
		vmbus_lock(vb, &vb->vb_lock);
		dev->dv_attaching = true;
		vmbus_unlock(vb, &vb->vb_lock);
		r = drv->drv_attach(dev);
		vmbus_lock(vb, &vb->vb_lock);
		dev->dv_attaching = false;
		dev->dv_attached = r == 0;
		rescinded = ch->ch_rescind_deferred;
		ch->ch_rescind_deferred = false;
		if (r != 0) {
			/* A failed driver is gone: never call it back. */
			ch->ch_rescind_cb = NULL;
			ch->ch_rescind_arg = NULL;
		}
		vmbus_unlock(vb, &vb->vb_lock);
		if (r != 0) {
			vmbus_log(vb, VMBUS_LOG_WARN, "%s: attach failed (%d)",
			    ch->ch_name, r);
			/* The driver must have closed what it opened. */
			if (ch->ch_ring_va)
				(void)vmbus_chan_close(ch);
			vmbus_release_zombies(vb, ch);
			dev->dv_drv = NULL;
			dev->dv_softc = NULL;
			vmbus_name_channel(ch);
			if (!rescinded)
				continue;
		}
		/* Rescinded meanwhile: detach (if attached) and release. */
		if (rescinded)
			vmbus_finish_rescind(vb, ch);
		return;
	}
}

static void vmbus_chan_put(struct vmbus *vb, struct vmbus_channel *ch)
{
	/* vb_lock held. The slot returns to the pool with its last ref. */
	if (--ch->ch_refs != 0)
		return;
	if (ch->ch_primary)
		vmbus_chan_put(vb, ch->ch_primary);
	vmbus_xact_free(ch);
	ch->ch_in_use = false;
	ch->ch_primary = NULL;
}

static void vmbus_detach_dev(struct vmbus *vb, struct vmbus_channel *ch)
{
	struct vmbus_device *dev = &ch->ch_dev;

	if (dev->dv_attached) {
		vmbus_lock(vb, &vb->vb_lock);
		dev->dv_detaching = true;
		vmbus_unlock(vb, &vb->vb_lock);
		if (dev->dv_drv->drv_detach)
			dev->dv_drv->drv_detach(dev);
		vmbus_lock(vb, &vb->vb_lock);
		dev->dv_attached = false;
		dev->dv_detaching = false;
		vmbus_unlock(vb, &vb->vb_lock);
	}
	/* Whatever the driver left open. */
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *s = &vb->vb_chans[i];

		if (s->ch_in_use && s->ch_primary == ch && s->ch_ring_va)
			(void)vmbus_chan_close(s);
	}
	if (ch->ch_ring_va)
		(void)vmbus_chan_close(ch);
	vmbus_release_zombies(vb, ch);
}

/* The driver of primary ch is gone: subchannels it could still name go
 * back. */
static void vmbus_release_zombies(struct vmbus *vb, struct vmbus_channel *ch)
{
	vmbus_lock(vb, &vb->vb_lock);
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *s = &vb->vb_chans[i];

		if (s->ch_in_use && s->ch_primary == ch && s->ch_zombie) {
			s->ch_zombie = false;
			vmbus_chan_put(vb, s);
		}
	}
	vmbus_unlock(vb, &vb->vb_lock);
}

void vmbus_attach_drivers(struct vmbus *vb)
{
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *ch = &vb->vb_chans[i];

		if (ch->ch_in_use)
			vmbus_try_attach(vb, ch);
	}
}

/*
 * A rescinded channel, in thread context: the driver's rescind callback,
 * detach (primary) or close, RELID_RELEASED, then the slot goes back to
 * the pool, unless a bound driver may still name it (a subchannel without
 * a rescind callback): that slot stays, RESCINDED and released, until the
 * driver detaches, so the driver's handle never names a later channel.
 */
static void vmbus_finish_rescind(struct vmbus *vb, struct vmbus_channel *ch)
{
	struct vmbus_chanmsg_relid_released rr;
	vmbus_chan_rescind_fn *fn;
	void *arg;

	vmbus_lock(vb, &vb->vb_lock);
	if (ch->ch_primary == NULL &&
	    (ch->ch_dev.dv_attaching || ch->ch_dev.dv_busy != 0)) {
		/* Its driver's attach is running (it fails its waits with
		 * -ENODEV now): vmbus_try_attach finishes this when the
		 * attach returns, so the driver is detached, not forgotten
		 * attached to a released slot. Likewise a driver call
		 * (vmbus_device_enter) whose wait ran this work on its own
		 * stack: its last vmbus_device_exit finishes it, so the
		 * driver's state is not freed under the call. */
		ch->ch_rescind_deferred = true;
		vmbus_unlock(vb, &vb->vb_lock);
		return;
	}
	fn = ch->ch_rescind_cb;
	arg = ch->ch_rescind_arg;
	ch->ch_rescind_cb = NULL;
	vmbus_unlock(vb, &vb->vb_lock);
	/* NOTE: the driver lets go of the channel before the core closes
	 * it, so it never races the close with its own I/O. */
	if (fn != NULL)
		fn(ch, arg);

	if (ch->ch_primary == NULL)
		vmbus_detach_dev(vb, ch);
	else if (ch->ch_ring_va)
		(void)vmbus_chan_close(ch);

	vmbus_memset(&rr, 0, sizeof(rr));
	rr.rr_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_RELID_RELEASED);
	rr.rr_child_relid = hv_cpu_to_le32(ch->ch_relid);
	(void)vmbus_post(vb, &rr, VMBUS_CHANMSG_RELID_RELEASED_SIZE);

	vmbus_lock(vb, &vb->vb_lock);
	if (vb->vb_relid[ch->ch_relid] == ch)
		vb->vb_relid[ch->ch_relid] = NULL;
	if (fn == NULL && ch->ch_primary != NULL &&
	    (ch->ch_primary->ch_dev.dv_attached ||
	    ch->ch_primary->ch_dev.dv_attaching))
		ch->ch_zombie = true;
	else
		vmbus_chan_put(vb, ch);
	vmbus_unlock(vb, &vb->vb_lock);
}

int vmbus_chan_set_rescind_cb(struct vmbus_channel *ch,
    vmbus_chan_rescind_fn *fn, void *arg)
{
	struct vmbus *vb;
	int r = 0;

	if (ch == NULL)
		return -VMBUS_EINVAL;
	vb = ch->ch_bus;
	vmbus_lock(vb, &vb->vb_lock);
	if (!ch->ch_in_use || vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED) {
		r = -VMBUS_ENODEV;
	} else {
		ch->ch_rescind_cb = fn;
		ch->ch_rescind_arg = arg;
	}
	vmbus_unlock(vb, &vb->vb_lock);
	return r;
}

/* One pass over the queued work; the caller holds the work token. Returns
 * whether a channel is still busy. */
static bool vmbus_work_pass(struct vmbus *vb)
{
	bool redispatch = false;

	while (atomic_exchange(&vb->vb_work_pending, false)) {
		for (uint32_t i = 0; i < vb->vb_nchans; i++) {
			struct vmbus_channel *ch = &vb->vb_chans[i];
			uint32_t work, relid;

			vmbus_lock(vb, &vb->vb_lock);
			work = ch->ch_in_use ? ch->ch_work : 0;
			ch->ch_work = 0;
			relid = ch->ch_relid;
			vmbus_unlock(vb, &vb->vb_lock);
			if (work & VMBUS_CHWORK_RESCIND) {
				vmbus_finish_rescind(vb, ch);
				continue;	/* closed: no dispatch */
			}
			if (work & VMBUS_CHWORK_ATTACH)
				vmbus_try_attach(vb, ch);
			/* NOTE: not an else: a driver bound by
			 * vmbus_driver_register may have opened the channel
			 * while its ATTACH work was still queued. */
			if ((work & VMBUS_CHWORK_DISPATCH) &&
			    vmbus_chan_dispatch_once(vb, relid)) {
				/* Still more: next time, so one pass ends. */
				vmbus_chan_redispatch(vb, ch);
				redispatch = true;
			}
		}
	}
	return redispatch;
}

void vmbus_run_work(struct vmbus *vb)
{
	bool redispatch = false;

again:
	if (atomic_exchange(&vb->vb_in_work, true))
		return;		/* the running one sees vb_work_pending */
	if (vmbus_work_pass(vb))
		redispatch = true;
	atomic_store(&vb->vb_in_work, false);
	/* Work queued after our last check but refused by vb_in_work. */
	if (atomic_load(&vb->vb_work_pending))
		goto again;
	/* Channels still busy: another pass later (the port's next deferred
	 * call, or the next vmbus_poll), so a stormy host never keeps one
	 * caller here forever. */
	if (redispatch)
		vmbus_schedule_work(vb);
}

bool vmbus_work_hold(struct vmbus *vb)
{
	/* A pass may finish rescinds, each a close with its own bounded
	 * waits: allow a few of them. */
	uint64_t deadline = vmbus_deadline(vb, 4 * vb->vb_cfg.vc_timeout_ns);

	while (atomic_exchange(&vb->vb_in_work, true)) {
		if (vmbus_now(vb) >= deadline) {
			vmbus_log(vb, VMBUS_LOG_ERR,
			    "vmbus: deferred work still running after %llu ms "
			    "(called from a channel or driver callback?); "
			    "going on without it",
			    (unsigned long long)(4 * vb->vb_cfg.vc_timeout_ns /
			    1000000u));
			return false;
		}
		/* Waiters poll, so the pass we wait for makes progress. */
		vmbus_poll_nested(vb);
		if (!vmbus_polled(vb)) {
			vmbus_lock(vb, &vb->vb_lock);
			(void)vb->vb_plat->wait(vb->vb_plat->ctx, &vb->vb_wait,
			    &vb->vb_lock, vmbus_now(vb) + VMBUS_WAIT_SLICE_NS / 4);
			vmbus_unlock(vb, &vb->vb_lock);
		}
	}
	(void)vmbus_work_pass(vb);
	return true;
}

void vmbus_work_release(struct vmbus *vb)
{
	/* NOTE: work queued meanwhile named channels vmbus_unload has
	 * forgotten; the next pass finds nothing to do. */
	atomic_store(&vb->vb_in_work, false);
}

/* The caller holds the work token, with the queued work run (rescinds
 * finished, so their relids are released properly). */
void vmbus_detach_all(struct vmbus *vb)
{
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *ch = &vb->vb_chans[i];

		if (ch->ch_in_use && ch->ch_primary == NULL)
			vmbus_detach_dev(vb, ch);
	}
}

/* After UNLOAD (or a failed connect): forget every channel. */
void vmbus_chan_free_all(struct vmbus *vb)
{
	vmbus_lock(vb, &vb->vb_lock);
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *ch = &vb->vb_chans[i];

		if (!ch->ch_in_use)
			continue;
		if (ch->ch_ring_va) {
			/* Never closed (close failed): the host may own it. */
			vmbus_count(&vb->vb_ctr.bc_leaked_pages,
			    ch->ch_ring_pages);
			ch->ch_ring_va = NULL;
		}
		vmbus_xact_free(ch);
		ch->ch_in_use = false;
		ch->ch_primary = NULL;
		ch->ch_work = 0;
	}
	for (uint32_t r = 0; r < vb->vb_max_relid; r++)
		vb->vb_relid[r] = NULL;
	for (uint32_t g = 0; g < VMBUS_GPADL_MAX; g++)
		if (vb->vb_gpadl[g].gl_state != VMBUS_GPADL_FREE) {
			vb->vb_gpadl[g].gl_state = VMBUS_GPADL_FREE;
			vb->vb_gpadl[g].gl_handle = 0;
		}
	vmbus_unlock(vb, &vb->vb_lock);
}

int vmbus_driver_register(struct vmbus *vb, const struct vmbus_driver *drv)
{
	if (vb == NULL || drv == NULL || drv->drv_attach == NULL ||
	    drv->drv_name == NULL)
		return -VMBUS_EINVAL;
	for (uint32_t i = 0; i < vb->vb_ndrivers; i++)
		if (vb->vb_drivers[i] == drv)
			return -VMBUS_EEXIST;
	if (vb->vb_ndrivers >= VMBUS_MAX_DRIVERS)
		return -VMBUS_ENOSPC;
	vb->vb_drivers[vb->vb_ndrivers++] = drv;
	if (vb->vb_conn == VMBUS_CONN_CONNECTED && vb->vb_offers_done)
		vmbus_attach_drivers(vb);
	return 0;
}

/* ---- accessors ---- */

struct vmbus_channel *vmbus_device_channel(struct vmbus_device *dev)
{
	return dev ? dev->dv_chan : NULL;
}

struct vmbus *vmbus_device_bus(struct vmbus_device *dev)
{
	return dev ? dev->dv_chan->ch_bus : NULL;
}

void vmbus_device_set_softc(struct vmbus_device *dev, void *softc)
{
	if (dev)
		dev->dv_softc = softc;
}

void *vmbus_device_softc(const struct vmbus_device *dev)
{
	return dev ? dev->dv_softc : NULL;
}

const struct vmbus_driver *vmbus_device_driver(const struct vmbus_device *dev)
{
	return dev ? dev->dv_drv : NULL;
}

int vmbus_device_enter(struct vmbus_device *dev)
{
	struct vmbus *vb;
	int r = 0;

	if (dev == NULL)
		return -VMBUS_EINVAL;
	vb = dev->dv_chan->ch_bus;
	vmbus_lock(vb, &vb->vb_lock);
	/* Only a driver still bound (or binding) may enter: after its
	 * detach began the slot may go back to the pool. */
	if ((dev->dv_attached || dev->dv_attaching) && !dev->dv_detaching)
		dev->dv_busy++;
	else
		r = -VMBUS_ENODEV;
	vmbus_unlock(vb, &vb->vb_lock);
	return r;
}

void vmbus_device_exit(struct vmbus_device *dev)
{
	struct vmbus_channel *ch;
	struct vmbus *vb;
	bool finish = false;

	if (dev == NULL)
		return;
	ch = dev->dv_chan;
	vb = ch->ch_bus;
	vmbus_lock(vb, &vb->vb_lock);
	if (dev->dv_busy == 0) {
		vmbus_unlock(vb, &vb->vb_lock);
		vmbus_log(vb, VMBUS_LOG_ERR, "%s: device exit without enter",
		    ch->ch_name);
		return;
	}
	if (--dev->dv_busy == 0 && ch->ch_rescind_deferred &&
	    !dev->dv_attaching) {
		/* The rescind that came during the call goes back to the
		 * deferred work, which finishes it under the work token (so
		 * never beside vmbus_unload's detach_all). */
		ch->ch_rescind_deferred = false;
		ch->ch_work |= VMBUS_CHWORK_RESCIND;
		finish = true;
	}
	vmbus_unlock(vb, &vb->vb_lock);
	if (finish) {
		vmbus_schedule_work(vb);
		/* Now, as vmbus_poll would: the caller sees the detach done
		 * when it returns (unless a pass runs elsewhere, or on this
		 * stack, which then picks it up). */
		if (atomic_load(&vb->vb_poll_depth) == 0)
			vmbus_run_work(vb);
	}
}

struct vmbus_device *vmbus_chan_device(struct vmbus_channel *ch)
{
	if (ch == NULL)
		return NULL;
	return ch->ch_primary ? &ch->ch_primary->ch_dev : &ch->ch_dev;
}

struct vmbus *vmbus_chan_bus(struct vmbus_channel *ch)
{
	return ch ? ch->ch_bus : NULL;
}

uint32_t vmbus_chan_relid(const struct vmbus_channel *ch)
{
	return ch ? ch->ch_relid : 0;
}

uint16_t vmbus_chan_sub_index(const struct vmbus_channel *ch)
{
	return ch ? ch->ch_sub_index : 0;
}

const char *vmbus_chan_name(const struct vmbus_channel *ch)
{
	return ch ? ch->ch_name : "?";
}

static void vmbus_fill_info(const struct vmbus_channel *ch,
    struct vmbus_chan_info *ci)
{
	const struct vmbus_channel *pri = ch->ch_primary ? ch->ch_primary : ch;

	vmbus_memset(ci, 0, sizeof(*ci));
	ci->ci_class = ch->ch_class;
	ci->ci_instance = ch->ch_instance;
	ci->ci_relid = ch->ch_relid;
	ci->ci_sub_index = ch->ch_sub_index;
	ci->ci_chn_flags = ch->ch_chn_flags;
	ci->ci_conn_id = ch->ch_connid;
	ci->ci_target_vp = ch->ch_target_vp;
	if (ch->ch_ring_va) {
		ci->ci_tx_ring_bytes = ch->ch_tx_bytes;
		ci->ci_rx_ring_bytes = ch->ch_rx_bytes;
	}
	ci->ci_monitor_id = ch->ch_monitor_id;
	ci->ci_dedicated_intr = ch->ch_dedicated;
	ci->ci_state = vmbus_chan_state(ch);
	ci->ci_driver = pri->ch_dev.dv_attached ? pri->ch_dev.dv_drv->drv_name :
	    NULL;
}

int vmbus_chan_get_info(const struct vmbus_channel *ch,
    struct vmbus_chan_info *ci)
{
	if (ch == NULL || ci == NULL || !ch->ch_in_use)
		return -VMBUS_EINVAL;
	vmbus_fill_info(ch, ci);
	return 0;
}

int vmbus_foreach_channel(struct vmbus *vb,
    int (*fn)(void *arg, const struct vmbus_chan_info *ci), void *arg)
{
	if (vb == NULL || fn == NULL)
		return -VMBUS_EINVAL;
	for (uint32_t relid = 1; relid < vb->vb_max_relid; relid++) {
		struct vmbus_chan_info ci;
		bool have = false;
		int r;

		vmbus_lock(vb, &vb->vb_lock);
		if (vb->vb_relid[relid]) {
			vmbus_fill_info(vb->vb_relid[relid], &ci);
			have = true;
		}
		vmbus_unlock(vb, &vb->vb_lock);
		if (have && (r = fn(arg, &ci)) != 0)
			return r;
	}
	return 0;
}

int vmbus_chan_get_stats(const struct vmbus_channel *ch,
    struct vmbus_chan_stats *out)
{
	struct vmbus_chan_counters *c;

	if (ch == NULL || out == NULL)
		return -VMBUS_EINVAL;
	c = &((struct vmbus_channel *)(uintptr_t)ch)->ch_ctr;
	out->cs_tx_packets = vmbus_counter_get(&c->cc_tx_packets);
	out->cs_tx_bytes = vmbus_counter_get(&c->cc_tx_bytes);
	out->cs_tx_full = vmbus_counter_get(&c->cc_tx_full);
	out->cs_rx_packets = vmbus_counter_get(&c->cc_rx_packets);
	out->cs_rx_bytes = vmbus_counter_get(&c->cc_rx_bytes);
	/* Every violation, whether the ring or the packet check found it,
	 * goes through vmbus_chan_set_broken, which counts it once. */
	out->cs_proto_errors = vmbus_counter_get(&c->cc_proto_errors);
	out->cs_unknown_packets = vmbus_counter_get(&c->cc_unknown_packets);
	out->cs_bad_completions = vmbus_counter_get(&c->cc_bad_completions);
	out->cs_signals = vmbus_counter_get(&c->cc_signals);
	out->cs_interrupts = vmbus_counter_get(&c->cc_interrupts);
	return 0;
}

struct subchan_arg {
	struct vmbus_channel *sa_primary;
	uint32_t sa_count;
};

static uint32_t vmbus_count_subs(struct vmbus *vb, struct vmbus_channel *pri)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *s = &vb->vb_chans[i];

		if (s->ch_in_use && s->ch_primary == pri &&
		    vmbus_chan_state(s) != VMBUS_CHAN_RESCINDED)
			n++;
	}
	return n;
}

static bool vmbus_subs_ready(struct vmbus *vb, void *arg)
{
	struct subchan_arg *sa = arg;

	return vmbus_count_subs(vb, sa->sa_primary) >= sa->sa_count ||
	    vmbus_chan_state(sa->sa_primary) == VMBUS_CHAN_RESCINDED;
}

int vmbus_chan_subchan_get(struct vmbus_channel *ch, uint32_t count,
    struct vmbus_channel **out, uint64_t timeout_ns)
{
	struct vmbus *vb;
	struct subchan_arg sa;
	uint32_t n = 0;

	if (ch == NULL || ch->ch_primary != NULL || count == 0 || out == NULL)
		return -VMBUS_EINVAL;
	vb = ch->ch_bus;
	sa.sa_primary = ch;
	sa.sa_count = count;
	(void)vmbus_bus_wait(vb, vmbus_subs_ready, &sa,
	    vmbus_deadline(vb, timeout_ns));
	if (vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED)
		return -VMBUS_ENODEV;
	vmbus_lock(vb, &vb->vb_lock);
	/*
	 * The count lowest sub indexes, in order: one pass over the table,
	 * each sub inserted into the sorted out[]. (Trying every index
	 * 1..65535 in turn let a host that offers index 65535 cost the
	 * guest 65535 table scans under the bus lock.)
	 */
	for (uint32_t i = 0; i < vb->vb_nchans; i++) {
		struct vmbus_channel *s = &vb->vb_chans[i];
		uint32_t at;

		if (!s->ch_in_use || s->ch_primary != ch ||
		    vmbus_chan_state(s) == VMBUS_CHAN_RESCINDED)
			continue;
		for (at = n; at > 0 && out[at - 1]->ch_sub_index >
		    s->ch_sub_index; at--)
			;
		if (at >= count)
			continue;
		if (n < count)
			n++;
		for (uint32_t k = n - 1; k > at; k--)
			out[k] = out[k - 1];
		out[at] = s;
	}
	vmbus_unlock(vb, &vb->vb_lock);
	return n ? (int)n : -VMBUS_ETIMEDOUT;
}
