/*
 * src/guest/msg.c - SynIC message receive (the single copy-in function of
 * the SIMP boundary, spec 1.11/1.12), channel message dispatch (spec 2),
 * and SIEF / interrupt-page event scanning (spec 1.13, 1.16, 3.7).
 */
#include "vmbus_priv.h"
#include "shm.h"

/*
 * vmbus_msg_copyin - the only code that reads a SIMP slot. Copies the
 * slot once into m (zero-padded, length clamped to 240), then releases the
 * slot: exchange bytes 0-7 with 0 (type = 0; the exchange is a full fence
 * and returns the flags the host may have set meanwhile), and EOM if the
 * MessagePending bit was set (spec 1.12 guest side).
 * Returns true if a message was taken.
 */
static bool vmbus_msg_copyin(struct vmbus *vb, uint32_t vp,
    struct vmbus_msg *m)
{
	struct hv_message *slot =
	    &vb->vb_vcpu[vp].vc_simp->mp_slot[VMBUS_MESSAGE_SINT];
	uint32_t type;
	uint64_t old;
	uint8_t size, flags;

	type = vmbus_shm_load_acq32(&slot->hm_type);
	if (type == HV_MESSAGE_TYPE_NONE)
		return false;

	vmbus_memset(m, 0, sizeof(*m));
	size = vmbus_shm_load8(&slot->hm_payload_size);
	vmbus_shm_copy_in(m->m_data, slot->hm_payload, HV_MESSAGE_PAYLOAD_MAX);

	old = vmbus_shm_xchg64(slot, 0);
	flags = (uint8_t)(old >> 40);
	if (flags & HV_MESSAGE_FLAG_PENDING)
		(void)vb->vb_plat->wrmsr(vb->vb_plat->ctx, vp, HV_X64_MSR_EOM, 0);

	m->m_vp = vp;
	m->m_len = size > HV_MESSAGE_PAYLOAD_MAX ? HV_MESSAGE_PAYLOAD_MAX : size;
	if (type != VMBUS_MESSAGE_TYPE) {
		/* Hypervisor messages (timers) are not ours: type 0 marks the
		 * copy as ignorable. */
		m->m_type = VMBUS_CHANMSG_INVALID;
		m->m_len = 0;
		return true;
	}
	m->m_type = m->m_len >= sizeof(struct vmbus_chanmsg_hdr) ?
	    hv_le32(((const struct vmbus_chanmsg_hdr *)(const void *)m->m_data)->chm_type) :
	    VMBUS_CHANMSG_INVALID;
	return true;
}

static void vmbus_msg_bad(struct vmbus *vb, const struct vmbus_msg *m,
    const char *why)
{
	vmbus_drop(vb, &vb->vb_ctr.bc_bad_messages, &vb->vb_log_next_ns,
	    "vmbus: dropped message type %u len %u: %s",
	    (unsigned)m->m_type, (unsigned)m->m_len, why);
}

/* Handlers run with vb_lock held and never sleep. */
static void vmbus_handle_version_response(struct vmbus *vb,
    const struct vmbus_msg *m)
{
	if (vb->vb_conn != VMBUS_CONN_CONTACTING || vb->vb_vresp_ready) {
		vmbus_msg_bad(vb, m, "unexpected VERSION_RESPONSE");
		return;
	}
	vmbus_memcpy(&vb->vb_vresp, m->m_data,
	    m->m_len < sizeof(vb->vb_vresp) ? m->m_len : sizeof(vb->vb_vresp));
	vb->vb_vresp_ready = true;
	vmbus_bus_wakeup(vb);
}

static void vmbus_msg_dispatch(struct vmbus *vb, const struct vmbus_msg *m)
{
	uint32_t minlen = vmbus_chanmsg_min_size(m->m_type);
	uint32_t minver = vmbus_chanmsg_min_version(m->m_type);
	uint32_t ver = vmbus_version(vb);

	vmbus_count(&vb->vb_ctr.bc_messages, 1);
	if (m->m_type == VMBUS_CHANMSG_INVALID || minlen == 0) {
		vmbus_msg_bad(vb, m, "unknown type");
		return;
	}
	if (m->m_len < minlen) {
		vmbus_msg_bad(vb, m, "short");
		return;
	}
	if (m->m_type != VMBUS_CHANMSG_VERSION_RESPONSE && minver > ver) {
		vmbus_msg_bad(vb, m, "not valid in the negotiated version");
		return;
	}
	switch (m->m_type) {
	case VMBUS_CHANMSG_VERSION_RESPONSE:
		vmbus_handle_version_response(vb, m);
		break;
	case VMBUS_CHANMSG_OFFERCHANNEL:
		vmbus_handle_offer(vb, m);
		break;
	case VMBUS_CHANMSG_RESCIND_CHANNELOFFER:
		vmbus_handle_rescind(vb, m);
		break;
	case VMBUS_CHANMSG_ALLOFFERS_DELIVERED:
		if (vb->vb_conn != VMBUS_CONN_CONNECTED || vb->vb_offers_done) {
			vmbus_msg_bad(vb, m, "unexpected ALLOFFERS_DELIVERED");
			break;
		}
		vb->vb_offers_done = true;
		vmbus_bus_wakeup(vb);
		break;
	case VMBUS_CHANMSG_OPENCHANNEL_RESULT:
		vmbus_handle_open_result(vb, m);
		break;
	case VMBUS_CHANMSG_GPADL_CREATED:
		vmbus_handle_gpadl_created(vb, m);
		break;
	case VMBUS_CHANMSG_GPADL_TORNDOWN:
		vmbus_handle_gpadl_torndown(vb, m);
		break;
	case VMBUS_CHANMSG_UNLOAD_RESPONSE:
		if (vb->vb_conn != VMBUS_CONN_UNLOADING) {
			vmbus_msg_bad(vb, m, "unexpected UNLOAD_RESPONSE");
			break;
		}
		vb->vb_unload_done = true;
		vmbus_bus_wakeup(vb);
		break;
	case VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE:
		vmbus_handle_modify_response(vb, m);
		break;
	case VMBUS_CHANMSG_TL_CONNECT_RESULT:
		/* Nothing here asks for these. */
		vmbus_msg_bad(vb, m, "unsolicited response");
		break;
	default:
		/* Guest->host types, or ones we never requested. */
		vmbus_msg_bad(vb, m, "unexpected type");
		break;
	}
}

void vmbus_msg_drain(struct vmbus *vb, uint32_t vp)
{
	struct vmbus_vcpu *vc = &vb->vb_vcpu[vp];
	struct vmbus_msg m;

	vmbus_lock(vb, &vc->vc_lock);
	for (uint32_t n = 0; n < VMBUS_MSG_BUDGET && vmbus_vcpu_live(vc); n++) {
		if (!vmbus_msg_copyin(vb, vp, &m))
			break;
		if (m.m_type == VMBUS_CHANMSG_INVALID && m.m_len == 0)
			continue;	/* not a VMBus message */
		vmbus_lock(vb, &vb->vb_lock);
		vmbus_msg_dispatch(vb, &m);
		vmbus_unlock(vb, &vb->vb_lock);
	}
	vmbus_unlock(vb, &vc->vc_lock);
}

/* ---- events ---- */

/* Exchange each nonzero u64 of a bitmap with 0; dispatch every set bit. */
static void vmbus_scan_bitmap(struct vmbus *vb, uint8_t *bits,
    uint32_t nbits)
{
	for (uint32_t w = 0; w < nbits / 64u; w++) {
		uint8_t *word = bits + 8u * w;
		uint64_t v;

		if (vmbus_shm_peek64(word) == 0)
			continue;
		v = vmbus_shm_xchg64(word, 0);
		while (v != 0) {
			uint32_t bit = (uint32_t)__builtin_ctzll(v);
			uint32_t relid = 64u * w + bit;

			v &= v - 1;
			if (relid == 0)
				continue;	/* never a channel */
			vmbus_count(&vb->vb_ctr.bc_events, 1);
			vmbus_chan_dispatch(vb, relid);
		}
	}
}

void vmbus_event_drain(struct vmbus *vb, uint32_t vp)
{
	struct vmbus_vcpu *vc = &vb->vb_vcpu[vp];
	uint32_t ver = vmbus_version(vb);
	uint8_t *flags;
	uint32_t nbits = vb->vb_max_relid;

	if (ver == 0 || !vmbus_vcpu_live(vc))
		return;
	nbits = (nbits + 63u) & ~63u;
	flags = vc->vc_siefp->efp_sint[VMBUS_MESSAGE_SINT].ef_flags;
	if (ver >= VMBUS_VERSION_WIN8) {
		/* spec 1.13: flag number = relid. */
		vmbus_scan_bitmap(vb, flags, nbits);
		return;
	}
	/* < 2.4 (spec 1.16): flag 0 on vp 0, then the interrupt page's
	 * receive half names the relids. A polled scan skips the flag test
	 * so a lost flag costs nothing. */
	if (vp != 0)
		return;
	uint8_t old = vmbus_shm_fetch_and8(&flags[0], (uint8_t)~1u);
	if ((old & 1u) == 0 && !vmbus_polled(vb))
		return;
	vmbus_scan_bitmap(vb,
	    ((struct hv_interrupt_page *)vb->vb_intr_page)->ip_recv, nbits);
}
