/*
 * src/guest/conn.c - connection: version negotiation (spec 6.2),
 * REQUESTOFFERS (6.3) and UNLOAD (6.7).
 */
#include "vmbus_priv.h"

/* What we try, newest first (spec 2.3; 6.0 and 0.13 are not offered). */
static const uint32_t vmbus_versions[] = {
	VMBUS_VERSION_IRON,		/* 5.3 */
	VMBUS_VERSION_WIN10_RS5,	/* 5.2 */
	VMBUS_VERSION_WIN10_RS4,	/* 5.1 */
	VMBUS_VERSION_WIN10_RS3_1,	/* 5.0 */
	VMBUS_VERSION_WIN10_RS3_0,	/* 4.1 */
	VMBUS_VERSION_WIN10,		/* 4.0 */
	VMBUS_VERSION_WIN8_1,		/* 3.0 */
	VMBUS_VERSION_WIN8,		/* 2.4 */
	VMBUS_VERSION_WIN7,		/* 1.1 */
};

static bool vmbus_vresp_ready(struct vmbus *vb, void *arg)
{
	(void)arg;
	return vb->vb_vresp_ready;
}

/*
 * One INITIATE_CONTACT for version v. Returns 1 accepted, 0 refused (try
 * the next version), or a negative error that ends the negotiation.
 */
static int vmbus_try_version(struct vmbus *vb, uint32_t v)
{
	struct vmbus_chanmsg_initiate_contact ic;
	struct vmbus_chanmsg_version_response vr;
	uint32_t connid;
	uint16_t st = 0;
	int r;

	vmbus_memset(&ic, 0, sizeof(ic));
	ic.ic_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_INITIATE_CONTACT);
	ic.ic_vmbus_version_requested = hv_cpu_to_le32(v);
	/* Messages go to target_vcpu from 3.0 on, VP 0 before. */
	ic.ic_target_vcpu = hv_cpu_to_le32(v >= VMBUS_VERSION_WIN8_1 ?
	    vb->vb_target_vcpu : 0);
	if (v >= VMBUS_VERSION_MULTICLIENT) {
		ic.ic_msg_sint = VMBUS_MESSAGE_SINT;
		ic.ic_msg_vtl = 0;
		ic.ic_feature_flags = 0;
	} else {
		ic.ic_interrupt_page =
		    hv_cpu_to_le64(vb->vb_intr_pfn << HV_PAGE_SHIFT);
	}
	if (vb->vb_monitor[0] && vb->vb_monitor[1]) {
		ic.ic_monitor_page1 =
		    hv_cpu_to_le64(vb->vb_monitor_pfn[0] << HV_PAGE_SHIFT);
		ic.ic_monitor_page2 =
		    hv_cpu_to_le64(vb->vb_monitor_pfn[1] << HV_PAGE_SHIFT);
	}
	connid = v >= VMBUS_VERSION_MULTICLIENT ?
	    VMBUS_MESSAGE_CONNECTION_ID_4 : VMBUS_MESSAGE_CONNECTION_ID;

	vmbus_lock(vb, &vb->vb_lock);
	vb->vb_conn = VMBUS_CONN_CONTACTING;
	vb->vb_vresp_ready = false;
	vmbus_unlock(vb, &vb->vb_lock);

	r = vmbus_hv_post(vb, connid, &ic, VMBUS_CHANMSG_INITIATE_CONTACT_SIZE,
	    &st);
	if (r == -VMBUS_EIO && st == HV_STATUS_INVALID_CONNECTION_ID &&
	    connid == VMBUS_MESSAGE_CONNECTION_ID_4) {
		/* A pre-5.0 host has no connection 4: try older versions. */
		VMBUS_DPRINTF(vb, "vmbus: %x: no connection 4", v);
		return 0;
	}
	if (r != 0) {
		vmbus_log(vb, VMBUS_LOG_ERR,
		    "vmbus: INITIATE_CONTACT(%u.%u) failed: %d status 0x%x",
		    (unsigned)VMBUS_VERSION_MAJOR(v),
		    (unsigned)VMBUS_VERSION_MINOR(v), r, (unsigned)st);
		return r == -VMBUS_EIO ? -VMBUS_EPROTO : r;
	}
	r = vmbus_bus_wait(vb, vmbus_vresp_ready, NULL,
	    vmbus_deadline(vb, vb->vb_cfg.vc_timeout_ns));
	if (r != 0) {
		vmbus_log(vb, VMBUS_LOG_ERR,
		    "vmbus: no VERSION_RESPONSE for %u.%u",
		    (unsigned)VMBUS_VERSION_MAJOR(v),
		    (unsigned)VMBUS_VERSION_MINOR(v));
		return r;
	}
	vmbus_lock(vb, &vb->vb_lock);
	vr = vb->vb_vresp;
	vb->vb_vresp_ready = false;
	vmbus_unlock(vb, &vb->vb_lock);

	if (vr.vr_version_supported == 0)
		return 0;
	if (v >= VMBUS_VERSION_WIN8 &&
	    vr.vr_connection_state != VMBUS_CONNECTION_SUCCESSFUL) {
		/* MSVM moves on to the next version here. */
		vmbus_log(vb, VMBUS_LOG_WARN,
		    "vmbus: %u.%u accepted with connection state %u",
		    (unsigned)VMBUS_VERSION_MAJOR(v),
		    (unsigned)VMBUS_VERSION_MINOR(v),
		    (unsigned)vr.vr_connection_state);
		return 0;
	}
	if (v >= VMBUS_VERSION_MULTICLIENT) {
		uint32_t mc = hv_le32(vr.vr_msg_conn_id);

		if (mc == 0 || (mc & ~HV_CONNECTION_ID_MASK) != 0) {
			vmbus_log(vb, VMBUS_LOG_ERR,
			    "vmbus: bad message connection id 0x%x", (unsigned)mc);
			return -VMBUS_EPROTO;
		}
		vb->vb_msg_connid = mc;
	} else {
		vb->vb_msg_connid = VMBUS_MESSAGE_CONNECTION_ID;
	}
	return 1;
}

int vmbus_negotiate(struct vmbus *vb)
{
	const struct vmbus_config *c = &vb->vb_cfg;

	for (size_t i = 0; i < sizeof(vmbus_versions) / sizeof(vmbus_versions[0]);
	    i++) {
		uint32_t v = vmbus_versions[i];
		int r;

		if (v > c->vc_max_version || v < c->vc_min_version)
			continue;
		r = vmbus_try_version(vb, v);
		if (r < 0) {
			vb->vb_conn = VMBUS_CONN_NONE;
			return r;
		}
		if (r == 1) {
			vmbus_lock(vb, &vb->vb_lock);
			atomic_store(&vb->vb_version, v);
			vb->vb_conn = VMBUS_CONN_CONNECTED;
			vb->vb_offers_done = false;
			vmbus_unlock(vb, &vb->vb_lock);
			return 0;
		}
	}
	vb->vb_conn = VMBUS_CONN_NONE;
	vmbus_log(vb, VMBUS_LOG_ERR, "vmbus: the host accepted no version");
	return -VMBUS_EOPNOTSUPP;
}

int vmbus_request_offers(struct vmbus *vb)
{
	struct vmbus_chanmsg_requestoffers ro;

	vmbus_memset(&ro, 0, sizeof(ro));
	ro.ro_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_REQUESTOFFERS);
	return vmbus_post(vb, &ro, VMBUS_CHANMSG_REQUESTOFFERS_SIZE);
}

static bool vmbus_unload_done(struct vmbus *vb, void *arg)
{
	(void)arg;
	return vb->vb_unload_done;
}

int vmbus_send_unload(struct vmbus *vb)
{
	struct vmbus_chanmsg_unload ul;
	int r;

	vmbus_lock(vb, &vb->vb_lock);
	vb->vb_conn = VMBUS_CONN_UNLOADING;
	vb->vb_unload_done = false;
	vmbus_unlock(vb, &vb->vb_lock);

	vmbus_memset(&ul, 0, sizeof(ul));
	ul.ul_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_UNLOAD);
	r = vmbus_post(vb, &ul, VMBUS_CHANMSG_UNLOAD_SIZE);
	if (r != 0)
		return r;
	/* Other messages keep being consumed (and dropped) meanwhile. */
	return vmbus_bus_wait(vb, vmbus_unload_done, NULL,
	    vmbus_deadline(vb, vb->vb_cfg.vc_timeout_ns));
}
