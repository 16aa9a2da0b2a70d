/*
 * host/vmbus/chan.c - channel offers, OPENCHANNEL / CLOSECHANNEL /
 * MODIFYCHANNEL / RELID_RELEASED, host-side close and channel signals.
 *
 * Host view of a channel: UNOFFERED (registered, guest has not asked for
 * offers) -> OFFERED -> OPEN -> OFFERED (close) ...; rescind moves any state
 * to RESCINDED (host closes its side at once) until RELID_RELEASED frees the
 * relid. A ring violation keeps the state OPEN with ch_broken set: no I/O
 * until the guest closes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_priv.h"
#include "vmbus/errno.h"

static struct hvs_channel *chan_lookup(struct hvs_vmbus *s, uint32_t relid)
{
	if (relid == 0 || relid > HVS_RELID_MAX)
		return NULL;
	return s->vs_chan[relid];
}

void hvs_chan_update_name(struct hvs_channel *ch)
{
	if (ch->ch_sub == 0)
		snprintf(ch->ch_name, sizeof(ch->ch_name), "%s/%s",
			 ch->ch_srv->vs_name, ch->ch_dev->dv_name);
	else
		snprintf(ch->ch_name, sizeof(ch->ch_name), "%s/%s.%u",
			 ch->ch_srv->vs_name, ch->ch_dev->dv_name, ch->ch_sub);
}

void hvs_chan_send_offer(struct hvs_vmbus *s, struct hvs_channel *ch)
{
	struct vmbus_chanmsg_offerchannel of;
	const struct hvs_device *dv = ch->ch_dev;
	uint32_t len = VMBUS_CHANMSG_OFFERCHANNEL_SIZE;
	uint32_t relid = ch->ch_relid;
	struct hvs_fault_args fa;

	memset(&of, 0, sizeof(of));
	of.of_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_OFFERCHANNEL);
	of.of_if_type = dv->dv_class;
	of.of_if_instance = dv->dv_instance;
	of.of_chn_flags = hv_cpu_to_le16(dv->dv_opts.do_flags);
	of.of_mmio_megabytes = hv_cpu_to_le16(dv->dv_opts.do_mmio_megabytes);
	memcpy(of.of_user_defined, dv->dv_opts.do_user_defined,
	       sizeof(of.of_user_defined));
	of.of_sub_channel_index = hv_cpu_to_le16(ch->ch_sub);
	ch->ch_monitor_id = VMBUS_MONITOR_ID_NONE;
	if (s->vs_monitored && s->vs_mon2 != 0 &&
	    relid <= VMBUS_MONITOR_ID_MAX) {
		/* monitor id = relid - 1 (hvs_vmbus_poll relies on it) */
		ch->ch_monitor_id = (uint8_t)(relid - 1u);
		of.of_monitor_allocated = VMBUS_OFFER_MONITOR_ALLOCATED;
	}
	of.of_monitorid = ch->ch_monitor_id;
	if (s->vs_version >= VMBUS_VERSION_WIN7) {
		/* bytes 190-195 exist from 1.1 on (spec 2.4) */
		of.of_is_dedicated_interrupt =
			hv_cpu_to_le16(VMBUS_OFFER_DEDICATED_INTERRUPT);
		of.of_connection_id = hv_cpu_to_le32(ch->ch_connid);
	}
	if (hvs_srv_fault(s, "malformed_offer", "relid", relid, &fa)) {
		/* field 0: payload size = value (default 100, 8..240);
		 * field 1: child_relid = value (default 0). */
		int64_t v;
		if (hvs_fault_param(&fa, "field", 0) == 0) {
			v = hvs_fault_param(&fa, "value", 100);
			len = v >= 8 && v <= HV_MESSAGE_PAYLOAD_MAX ? (uint32_t)v
								   : 100u;
		} else {
			relid = (uint32_t)hvs_fault_param(&fa, "value", 0);
		}
		HVS_INFO(s->vs_name, "vmbus: fault malformed_offer: relid %u "
			 "sent as %u, %u bytes", ch->ch_relid, relid, len);
	}
	of.of_child_relid = hv_cpu_to_le32(relid);
	ch->ch_state = HVS_CHAN_OFFERED;
	hvs_srv_send_msg(s, &of, len);
}

static void send_open_result(struct hvs_vmbus *s, uint32_t relid,
			     uint32_t openid, uint32_t status)
{
	struct vmbus_chanmsg_openchannel_result r;
	memset(&r, 0, sizeof(r));
	r.or_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_OPENCHANNEL_RESULT);
	r.or_child_relid = hv_cpu_to_le32(relid);
	r.or_openid = hv_cpu_to_le32(openid);
	r.or_status = hv_cpu_to_le32(status);
	hvs_srv_send_msg(s, &r, VMBUS_CHANMSG_OPENCHANNEL_RESULT_SIZE);
}

/*
 * Map the ring GPADL: a single range, byte_offset 0, a page multiple,
 * 0 < downstream < total pages, and room for a control page and at least
 * one data page on each side. The pages may lie anywhere in guest RAM, in
 * any order (a Linux guest allocates them scattered): the partition maps
 * them into one window, guest->host ring first. Returns NULL (the rings
 * are set up and hold a window reference) or the reason.
 */
static const char *map_rings(struct hvs_vmbus *s, struct hvs_channel *ch,
			     struct hvs_gpadl *g, uint32_t down)
{
	if (g->gp_rangecount != 1)
		return "ring GPADL has more than one range";
	uint32_t count = hv_get_le32(g->gp_stream + VMBUS_GPA_RANGE_BYTE_COUNT);
	uint32_t off = hv_get_le32(g->gp_stream + VMBUS_GPA_RANGE_BYTE_OFFSET);
	if (off != 0 || (count & HV_PAGE_MASK) != 0)
		return "ring GPADL not page aligned";
	uint32_t total = count >> HV_PAGE_SHIFT;
	if (down == 0 || down >= total)
		return "downstream page offset out of range";
	uint32_t up_pages = down, dn_pages = total - down;
	if (up_pages * HV_PAGE_SIZE < HV_RING_MIN_BYTES ||
	    dn_pages * HV_PAGE_SIZE < HV_RING_MIN_BYTES)
		return "ring smaller than two pages";

	uint8_t *win = hvs_gpadl_win_get(s, g);
	if (win == NULL)
		return "ring pages cannot be mapped (PFN refused, see above)";
	uint8_t *in = win, *out = win + (size_t)down * HV_PAGE_SIZE;
	uint32_t in_bytes = up_pages * HV_PAGE_SIZE;
	uint32_t out_bytes = dn_pages * HV_PAGE_SIZE;
	const char *why = NULL;
	if (vmbus_ring_init(&ch->ch_in, in, in_bytes) != 0 ||
	    vmbus_ring_init(&ch->ch_out, out, out_bytes) != 0)
		why = "ring size not supported";
	/* The guest initialised both control pages: adopt its indices. */
	else if (vmbus_ring_attach(&ch->ch_in, false) != 0 ||
		 vmbus_ring_attach(&ch->ch_out, true) != 0)
		why = "ring indices invalid at open";
	if (why != NULL) {
		hvs_gpadl_win_put(s, g);
		return why;
	}
	/*
	 * As the writer of the outgoing ring we declare that we set
	 * pending_send_sz when blocked (spec 3.2), and start unblocked.
	 */
	struct hv_ring_control *oc = (struct hv_ring_control *)(void *)out;
	__atomic_fetch_or(&oc->rc_feature_bits,
			  hv_cpu_to_le32(HV_RING_FEAT_PENDING_SEND_SZ),
			  __ATOMIC_RELAXED);
	vmbus_ring_set_pending_send(&ch->ch_out, 0);
	ch->ch_in_bytes = in_bytes;
	ch->ch_out_bytes = out_bytes;
	return NULL;
}

void hvs_chan_handle_open(struct hvs_vmbus *s, const uint8_t *m, uint32_t len)
{
	struct vmbus_chanmsg_openchannel op;
	memset(&op, 0, sizeof(op));
	memcpy(&op, m, len < sizeof(op) ? len : sizeof(op));
	uint32_t relid = hv_le32(op.op_child_relid);
	uint32_t openid = hv_le32(op.op_openid);
	uint32_t handle = hv_le32(op.op_gpadl);
	uint32_t tvp = hv_le32(op.op_target_vp);
	uint32_t down = hv_le32(op.op_downstream_pgoff);
	struct hvs_channel *ch = chan_lookup(s, relid);
	const char *why = NULL;

	if (ch != NULL && ch->ch_state == HVS_CHAN_RESCINDED) {
		/* Never answered (spec 6.4 step 4). */
		SRV_BAD(s, "vmbus: OPENCHANNEL for rescinded relid %u ignored",
			relid);
		return;
	}
	if (s->vs_version < VMBUS_VERSION_WIN8)
		tvp = 0; /* target_vp is a Win8 field */
	struct hvs_gpadl *g = hvs_gpadl_find(s, handle);
	if (ch == NULL || ch->ch_state == HVS_CHAN_UNOFFERED)
		why = "unknown relid";
	else if (ch->ch_state == HVS_CHAN_OPEN)
		why = "channel already open";
	else if (tvp != VMBUS_OPEN_TARGET_VP_NONE &&
		 tvp >= hvs_partition_vcpu_count(s->vs_p))
		why = "target_vp out of range";
	else if (g == NULL || !g->gp_complete)
		why = "unknown ring GPADL";
	else if (g->gp_relid != relid)
		why = "ring GPADL belongs to another channel";
	else if (g->gp_ring_user != 0 || g->gp_holds != 0 ||
		 g->gp_maps != 0 || g->gp_teardown)
		why = "ring GPADL already in use";
	else
		why = map_rings(s, ch, g, down);
	if (why != NULL) {
		SRV_BAD(s, "vmbus: OPENCHANNEL relid %u openid %u refused: %s",
			relid, openid, why);
		if (ch != NULL && ch->ch_state != HVS_CHAN_OPEN) {
			memset(&ch->ch_in, 0, sizeof(ch->ch_in));
			memset(&ch->ch_out, 0, sizeof(ch->ch_out));
		}
		send_open_result(s, relid, openid, HVS_STATUS_FAIL);
		return;
	}

	ch->ch_openid = openid;
	ch->ch_gpadl = handle;
	ch->ch_target_vp = tvp;
	memcpy(ch->ch_userdata, op.op_userdata, sizeof(ch->ch_userdata));
	ch->ch_broken = false;
	ch->ch_pending_set = false;
	ch->ch_scribbled = false;
	ch->ch_batch = ch->ch_batch_signal = false;
	ch->ch_stalled = false;
	ch->ch_priv = NULL;
	ch->ch_state = HVS_CHAN_OPEN;
	g->gp_ring_user = relid;

	int r = ch->ch_dev->dv_ops->vo_open(ch->ch_dev->dv_arg, ch);
	if (r != 0) {
		HVS_WARN(s->vs_name, "vmbus: %s: device refused open: %d",
			 ch->ch_name, r);
		/* A VSP may have held or mapped buffers before refusing. */
		hvs_gpadl_release_chan(s, relid, true);
		g->gp_ring_user = 0;
		hvs_gpadl_win_put(s, g);
		ch->ch_state = HVS_CHAN_OFFERED;
		memset(&ch->ch_in, 0, sizeof(ch->ch_in));
		memset(&ch->ch_out, 0, sizeof(ch->ch_out));
		send_open_result(s, relid, openid, HVS_STATUS_FAIL);
		return;
	}
	HVS_DEBUG(s->vs_name, "vmbus: %s open: rings %u + %u bytes, vp %u",
		  ch->ch_name, ch->ch_in_bytes, ch->ch_out_bytes, tvp);
	send_open_result(s, relid, openid, 0);
	/* Let the VSP start talking / drain what is already there. */
	hvs_chan_dispatch_signal(ch);
}

/* VSP close, then forget the rings and release the ring GPADL. */
static void chan_teardown(struct hvs_channel *ch, int why)
{
	struct hvs_vmbus *s = ch->ch_srv;

	/* NOTE: the VSP stops first, then its buffer holds and mappings go
	 * (a teardown waiting for them is answered), then the rings are
	 * forgotten and unmapped; only then may the ring GPADL be torn down.
	 * After a reset the connection's GPADLs go without replies. */
	ch->ch_dev->dv_ops->vo_close(ch->ch_dev->dv_arg, ch, why);
	hvs_fault_chan_gone(ch);  /* before the rings are unmapped */
	hvs_gpadl_release_chan(s, ch->ch_relid, why != HVS_CLOSE_RESET);
	struct hvs_gpadl *g = hvs_gpadl_find(s, ch->ch_gpadl);
	if (g != NULL && g->gp_ring_user == ch->ch_relid) {
		g->gp_ring_user = 0;
		hvs_gpadl_win_put(s, g);
	}
	memset(&ch->ch_in, 0, sizeof(ch->ch_in));
	memset(&ch->ch_out, 0, sizeof(ch->ch_out));
	ch->ch_in_bytes = ch->ch_out_bytes = 0;
	ch->ch_gpadl = 0;
	ch->ch_priv = NULL;
	ch->ch_broken = false;
	ch->ch_pending_set = false;
	ch->ch_scribbled = false;
	ch->ch_batch = ch->ch_batch_signal = false;
	ch->ch_stalled = false;
}

void hvs_chan_close_host(struct hvs_channel *ch, int why)
{
	if (ch->ch_state != HVS_CHAN_OPEN)
		return;
	ch->ch_state = HVS_CHAN_OFFERED; /* callers refine (RESCINDED...) */
	if (ch->ch_in_signal) {
		/* The VSP asked for this from its own callback (e.g. it
		 * rescinded its device): I/O stops now (state), its state is
		 * freed once the callback has returned. */
		ch->ch_close_deferred = why + 1;
		return;
	}
	chan_teardown(ch, why);
}

void hvs_chan_handle_close(struct hvs_vmbus *s, const uint8_t *m, uint32_t len)
{
	struct vmbus_chanmsg_closechannel cc;
	(void)len;
	memcpy(&cc, m, sizeof(cc));
	uint32_t relid = hv_le32(cc.cc_child_relid);
	struct hvs_channel *ch = chan_lookup(s, relid);

	if (ch != NULL && ch->ch_state == HVS_CHAN_RESCINDED)
		return; /* host side already closed at rescind */
	if (ch == NULL || ch->ch_state != HVS_CHAN_OPEN) {
		SRV_BAD(s, "vmbus: CLOSECHANNEL for relid %u that is not open",
			relid);
		return;
	}
	hvs_chan_close_host(ch, HVS_CLOSE_GUEST);
}

void hvs_chan_handle_modify(struct hvs_vmbus *s, const uint8_t *m,
			    uint32_t len)
{
	struct vmbus_chanmsg_modifychannel mc;
	(void)len;
	memcpy(&mc, m, sizeof(mc));
	uint32_t relid = hv_le32(mc.mc_child_relid);
	uint32_t tvp = hv_le32(mc.mc_target_vp);
	struct hvs_channel *ch = chan_lookup(s, relid);
	uint32_t status = 0;

	if (ch == NULL || ch->ch_state != HVS_CHAN_OPEN) {
		SRV_BAD(s, "vmbus: MODIFYCHANNEL relid %u not open", relid);
		status = HVS_STATUS_FAIL;
	} else if (tvp >= hvs_partition_vcpu_count(s->vs_p)) {
		/* includes 0xFFFFFFFF, which is not allowed here */
		SRV_BAD(s, "vmbus: MODIFYCHANNEL relid %u bad vp %u", relid,
			tvp);
		status = HVS_STATUS_FAIL;
	} else {
		ch->ch_target_vp = tvp;
	}
	if (s->vs_version < VMBUS_VERSION_IRON)
		return; /* no response before 5.3 */
	struct vmbus_chanmsg_modifychannel_response r;
	memset(&r, 0, sizeof(r));
	r.mcr_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE);
	r.mcr_child_relid = hv_cpu_to_le32(relid);
	r.mcr_status = hv_cpu_to_le32(status);
	hvs_srv_send_msg(s, &r, VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE_SIZE);
}

void hvs_chan_free(struct hvs_vmbus *s, struct hvs_channel *ch)
{
	if (ch->ch_state == HVS_CHAN_OPEN)
		hvs_chan_close_host(ch, HVS_CLOSE_RESET);
	s->vs_chan[ch->ch_relid] = NULL;
	hvs_gpadl_free_relid(s, ch->ch_relid);
	struct hvs_device *dv = ch->ch_dev;
	free(ch);
	hvs_srv_device_unref(s, dv);
}

void hvs_chan_handle_relid_released(struct hvs_vmbus *s, const uint8_t *m,
				    uint32_t len)
{
	struct vmbus_chanmsg_relid_released rr;
	(void)len;
	memcpy(&rr, m, sizeof(rr));
	uint32_t relid = hv_le32(rr.rr_child_relid);
	struct hvs_channel *ch = chan_lookup(s, relid);

	if (ch == NULL || ch->ch_state != HVS_CHAN_RESCINDED) {
		SRV_BAD(s, "vmbus: RELID_RELEASED for relid %u not rescinded",
			relid);
		return;
	}
	/* GPADLs the guest did not tear down (LNX skips it after a
	 * rescind) go with the channel. */
	hvs_chan_free(s, ch);
}

void hvs_chan_dispatch_signal(struct hvs_channel *ch)
{
	if (ch->ch_state != HVS_CHAN_OPEN || ch->ch_broken) {
		ch->ch_spurious++;
		return;
	}
	if (ch->ch_in_signal)
		return;
	ch->ch_in_signal = true;
	ch->ch_dev->dv_ops->vo_on_signal(ch->ch_dev->dv_arg, ch);
	ch->ch_in_signal = false;
	if (ch->ch_close_deferred != 0) {
		int why = ch->ch_close_deferred - 1;
		ch->ch_close_deferred = 0;
		chan_teardown(ch, why);
	}
}

/* Host -> guest channel signal (spec 3.7). */
void hvs_chan_signal(struct hvs_channel *ch)
{
	struct hvs_vmbus *s = ch->ch_srv;

	if (ch->ch_state != HVS_CHAN_OPEN || s->vs_p == NULL || s->vs_ended)
		return;
	if (s->vs_version >= VMBUS_VERSION_WIN8) {
		if (ch->ch_target_vp == VMBUS_OPEN_TARGET_VP_NONE)
			return; /* the guest polls */
		ch->ch_signals_out++;
		hvs_partition_signal_event(s->vs_p, ch->ch_target_vp,
					   VMBUS_MESSAGE_SINT, ch->ch_relid);
		return;
	}
	/* Before 2.4: relid bit in the receive half of the interrupt page,
	 * then flag 0 of SINT 2 on VP 0. */
	uint8_t *recv = hvs_gpa_map(s->vs_p, s->vs_int_page,
				    HV_INTERRUPT_PAGE_HALF);
	if (recv == NULL)
		return;
	__atomic_fetch_or(recv + HV_EVENT_FLAG_BYTE(ch->ch_relid),
			  HV_EVENT_FLAG_BIT(ch->ch_relid), __ATOMIC_RELEASE);
	ch->ch_signals_out++;
	hvs_partition_signal_event(s->vs_p, 0, VMBUS_MESSAGE_SINT, 0);
}
