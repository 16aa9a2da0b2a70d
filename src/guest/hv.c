/*
 * src/guest/hv.c - hypervisor interface through the port: guest OS id,
 * hypercall page, SynIC set-up per vCPU (spec 1.3, 1.4, 1.10, 6.1),
 * HvPostMessage with back-off (1.7, 1.9) and HvSignalEvent (1.8, 3.7).
 */
#include "vmbus_priv.h"
#include "shm.h"

static int hv_wrmsr(struct vmbus *vb, uint32_t vp, uint32_t msr, uint64_t v)
{
	return vb->vb_plat->wrmsr(vb->vb_plat->ctx, vp, msr, v);
}

static int hv_rdmsr(struct vmbus *vb, uint32_t vp, uint32_t msr, uint64_t *v)
{
	return vb->vb_plat->rdmsr(vb->vb_plat->ctx, vp, msr, v);
}

static void *hv_page(struct vmbus *vb, uint64_t *pfn)
{
	return vb->vb_plat->page_alloc(vb->vb_plat->ctx, 1, pfn);
}

static void hv_page_free(struct vmbus *vb, void **va, bool leak)
{
	if (*va == NULL)
		return;
	if (leak || vb->vb_plat->page_free(vb->vb_plat->ctx, *va, 1) != 0)
		vmbus_count(&vb->vb_ctr.bc_leaked_pages, 1);
	*va = NULL;
}

/* SynIC on one vCPU, in Linux's order: SIMP, SIEFP, SINT2, SCONTROL. */
static int hv_synic_enable(struct vmbus *vb, uint32_t vp)
{
	struct vmbus_vcpu *vc = &vb->vb_vcpu[vp];
	uint64_t v;
	int r;

	r = hv_rdmsr(vb, vp, HV_X64_MSR_SIMP, &v);
	if (r == 0)
		r = hv_wrmsr(vb, vp, HV_X64_MSR_SIMP, (v & HV_SIMP_RSVD_MASK) |
		    (vc->vc_simp_pfn << HV_SIMP_PGSHIFT) | HV_SIMP_ENABLE);
	if (r == 0)
		r = hv_rdmsr(vb, vp, HV_X64_MSR_SIEFP, &v);
	if (r == 0)
		r = hv_wrmsr(vb, vp, HV_X64_MSR_SIEFP,
		    (v & HV_SIEFP_RSVD_MASK) |
		    (vc->vc_siefp_pfn << HV_SIEFP_PGSHIFT) | HV_SIEFP_ENABLE);
	/* NOTE: published (release) once SIMP and SIEFP are live and before
	 * the SINT is unmasked: an interrupt may follow at once, and the ISR
	 * that sees the flag (acquire) must see both pages. */
	atomic_store_explicit(&vc->vc_synic, r == 0, memory_order_release);
	if (r == 0)
		r = hv_rdmsr(vb, vp, HV_X64_MSR_SINT(VMBUS_MESSAGE_SINT), &v);
	if (r == 0)
		r = hv_wrmsr(vb, vp, HV_X64_MSR_SINT(VMBUS_MESSAGE_SINT),
		    (v & HV_SINT_RSVD_MASK) | vb->vb_vector);
	if (r == 0)
		r = hv_rdmsr(vb, vp, HV_X64_MSR_SCONTROL, &v);
	if (r == 0)
		r = hv_wrmsr(vb, vp, HV_X64_MSR_SCONTROL, v | HV_SCONTROL_ENABLE);
	return r;
}

static void hv_synic_disable(struct vmbus *vb, uint32_t vp)
{
	uint64_t v;

	if (hv_rdmsr(vb, vp, HV_X64_MSR_SINT(VMBUS_MESSAGE_SINT), &v) == 0)
		(void)hv_wrmsr(vb, vp, HV_X64_MSR_SINT(VMBUS_MESSAGE_SINT),
		    (v & HV_SINT_RSVD_MASK) | HV_SINT_MASKED);
	if (hv_rdmsr(vb, vp, HV_X64_MSR_SCONTROL, &v) == 0)
		(void)hv_wrmsr(vb, vp, HV_X64_MSR_SCONTROL,
		    v & ~HV_SCONTROL_ENABLE);
	if (hv_rdmsr(vb, vp, HV_X64_MSR_SIEFP, &v) == 0)
		(void)hv_wrmsr(vb, vp, HV_X64_MSR_SIEFP, v & HV_SIEFP_RSVD_MASK);
	if (hv_rdmsr(vb, vp, HV_X64_MSR_SIMP, &v) == 0)
		(void)hv_wrmsr(vb, vp, HV_X64_MSR_SIMP, v & HV_SIMP_RSVD_MASK);
}

static int hv_port_err(int r)
{
	/* A port failure during set-up: the partition is unusable. */
	return r == -VMBUS_ENOMEM ? r : -VMBUS_ENODEV;
}

int vmbus_hv_setup(struct vmbus *vb)
{
	const struct vmbus_platform *p = vb->vb_plat;
	uint64_t v;
	uint32_t n;
	int r;

	n = p->vcpu_count(p->ctx);
	if (n == 0)
		return -VMBUS_ENODEV;
	vb->vb_vcpu = p->zalloc(p->ctx, sizeof(vb->vb_vcpu[0]) * n);
	if (vb->vb_vcpu == NULL)
		return -VMBUS_ENOMEM;
	vb->vb_nvcpu = n;
	for (uint32_t i = 0; i < n; i++)
		vmbus_lock_init(vb, &vb->vb_vcpu[i].vc_lock);
	vb->vb_target_vcpu = p->current_vp ? p->current_vp(p->ctx) : 0;
	if (vb->vb_target_vcpu >= n)
		vb->vb_target_vcpu = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct vmbus_vcpu *vc = &vb->vb_vcpu[i];

		vc->vc_simp = hv_page(vb, &vc->vc_simp_pfn);
		vc->vc_siefp = hv_page(vb, &vc->vc_siefp_pfn);
		if (vc->vc_simp == NULL || vc->vc_siefp == NULL)
			return -VMBUS_ENOMEM;
	}
	vb->vb_hcpage = hv_page(vb, &vb->vb_hcpage_pfn);
	/* Pre-2.4 interrupt page: allocated up front, used only < 2.4. */
	vb->vb_intr_page = hv_page(vb, &vb->vb_intr_pfn);
	if (vb->vb_hcpage == NULL || vb->vb_intr_page == NULL)
		return -VMBUS_ENOMEM;
	if (vb->vb_cfg.vc_monitor_pages) {
		vb->vb_monitor[0] = hv_page(vb, &vb->vb_monitor_pfn[0]);
		vb->vb_monitor[1] = hv_page(vb, &vb->vb_monitor_pfn[1]);
		if (vb->vb_monitor[0] == NULL || vb->vb_monitor[1] == NULL)
			return -VMBUS_ENOMEM;
	}

	/* NOTE: guest OS id before the hypercall page (spec 1.3/1.4). */
	r = hv_wrmsr(vb, 0, HV_X64_MSR_GUEST_OS_ID, vb->vb_cfg.vc_guest_os_id);
	if (r == 0)
		r = hv_rdmsr(vb, 0, HV_X64_MSR_HYPERCALL, &v);
	if (r == 0)
		r = hv_wrmsr(vb, 0, HV_X64_MSR_HYPERCALL,
		    (v & HV_HYPERCALL_RSVD_MASK) |
		    (vb->vb_hcpage_pfn << HV_HYPERCALL_PGSHIFT) |
		    HV_HYPERCALL_ENABLE);
	if (r != 0) {
		vmbus_log(vb, VMBUS_LOG_ERR, "vmbus: hypercall set-up failed (%d)", r);
		return hv_port_err(r);
	}
	vb->vb_hc_enabled = true;

	/* NOTE: hook the interrupt before any SINT is unmasked. */
	vb->vb_vector = vb->vb_cfg.vc_vector;
	if (p->irq_attach) {
		uint8_t vec = vb->vb_vector;

		r = p->irq_attach(p->ctx, &vec, vmbus_isr, vb);
		if (r != 0)
			return r;
		if (vec >= HV_SINT_VECTOR_MIN)
			vb->vb_vector = vec;
		vb->vb_irq = true;
	}
	for (uint32_t i = 0; i < n; i++) {
		r = hv_synic_enable(vb, i);
		if (r != 0) {
			vmbus_log(vb, VMBUS_LOG_ERR,
			    "vmbus: SynIC set-up on vp %u failed (%d)", i, r);
			return hv_port_err(r);
		}
	}
	return 0;
}

void vmbus_hv_teardown(struct vmbus *vb, bool leak_shared)
{
	const struct vmbus_platform *p = vb->vb_plat;
	uint64_t v;

	if (vb->vb_vcpu) {
		for (uint32_t i = 0; i < vb->vb_nvcpu; i++)
			if (vmbus_vcpu_live(&vb->vb_vcpu[i]))
				hv_synic_disable(vb, i);
	}
	if (vb->vb_irq) {
		p->irq_detach(p->ctx);
		vb->vb_irq = false;
	}
	if (vb->vb_vcpu) {
		/* The host no longer touches a SIMP/SIEFP once the MSR write
		 * that disabled it returned (partition ABI). */
		for (uint32_t i = 0; i < vb->vb_nvcpu; i++) {
			struct vmbus_vcpu *vc = &vb->vb_vcpu[i];

			atomic_store_explicit(&vc->vc_synic, false,
			    memory_order_relaxed);
			hv_page_free(vb, (void **)&vc->vc_simp, false);
			hv_page_free(vb, (void **)&vc->vc_siefp, false);
			vmbus_lock_fini(vb, &vc->vc_lock);
		}
		p->free(p->ctx, vb->vb_vcpu, sizeof(vb->vb_vcpu[0]) * vb->vb_nvcpu);
		vb->vb_vcpu = NULL;
		vb->vb_nvcpu = 0;
	}
	if (vb->vb_hc_enabled &&
	    hv_rdmsr(vb, 0, HV_X64_MSR_HYPERCALL, &v) == 0)
		(void)hv_wrmsr(vb, 0, HV_X64_MSR_HYPERCALL,
		    v & HV_HYPERCALL_RSVD_MASK);
	vb->vb_hc_enabled = false;
	hv_page_free(vb, &vb->vb_hcpage, false);
	hv_page_free(vb, &vb->vb_intr_page, leak_shared);
	hv_page_free(vb, &vb->vb_monitor[0], leak_shared);
	hv_page_free(vb, &vb->vb_monitor[1], leak_shared);
	atomic_store(&vb->vb_version, 0);
	vb->vb_conn = VMBUS_CONN_NONE;
}

/* ---- HvPostMessage ---- */

static bool never(struct vmbus *vb, void *arg)
{
	(void)vb;
	(void)arg;
	return false;
}

int vmbus_hv_post(struct vmbus *vb, uint32_t connid, const void *msg,
    uint32_t len, uint16_t *hv_status)
{
	const struct vmbus_platform *p = vb->vb_plat;
	struct hv_post_message_input in;
	uint64_t backoff = 100000;	/* 100 us, doubling */
	uint64_t result;
	uint32_t in_len;
	uint16_t st = HV_STATUS_SUCCESS;
	int r;

	if (len > HV_MESSAGE_PAYLOAD_MAX || !vb->vb_hc_enabled)
		return -VMBUS_EINVAL;
	/* Every byte we hand the host is defined: zero the unused tail. */
	vmbus_memset(&in, 0, sizeof(in));
	in.pm_connection_id = hv_cpu_to_le32(connid & HV_CONNECTION_ID_MASK);
	in.pm_message_type = hv_cpu_to_le32(VMBUS_MESSAGE_TYPE);
	in.pm_payload_size = hv_cpu_to_le32(len);
	vmbus_memcpy(in.pm_payload, msg, len);
	/* Input blocks are padded to a multiple of 8 (spec 1.5). */
	in_len = (uint32_t)offsetof(struct hv_post_message_input, pm_payload) +
	    ((len + 7u) & ~7u);

	for (uint32_t attempt = 0;; attempt++) {
		if (vmbus_gone(vb))
			return -VMBUS_ENODEV;
		r = p->hypercall(p->ctx, vb->vb_target_vcpu,
		    HV_CALL_POST_MESSAGE, &in, in_len, NULL, 0, &result);
		if (r == -VMBUS_ENODEV)
			vmbus_set_gone(vb, "HvPostMessage");
		if (r != 0)
			return r == -VMBUS_EINVAL ? r : -VMBUS_ENODEV;
		st = HV_HYPERCALL_STATUS(result);
		if (st == HV_STATUS_SUCCESS)
			return 0;
		if ((st != HV_STATUS_INSUFFICIENT_BUFFERS &&
		    st != HV_STATUS_INSUFFICIENT_MEMORY) ||
		    attempt + 1 >= VMBUS_POST_RETRIES)
			break;
		/* Transient: the host's queue is full. Back off (draining
		 * our own message slot meanwhile, which is what frees it). */
		vmbus_count(&vb->vb_ctr.bc_post_retries, 1);
		if (vmbus_bus_wait(vb, never, NULL,
		    vmbus_deadline(vb, backoff)) == -VMBUS_ENODEV)
			return -VMBUS_ENODEV;
		if (backoff < 50000000)
			backoff *= 2;
	}
	if (hv_status)
		*hv_status = st;
	if (st == HV_STATUS_INSUFFICIENT_BUFFERS ||
	    st == HV_STATUS_INSUFFICIENT_MEMORY)
		return -VMBUS_ETIMEDOUT;
	return -VMBUS_EIO;
}

/* Post on the negotiated message connection. */
int vmbus_post(struct vmbus *vb, const void *msg, uint32_t len)
{
	uint16_t st = 0;
	int r;

	r = vmbus_hv_post(vb, vb->vb_msg_connid, msg, len, &st);
	if (r == -VMBUS_EIO)
		vmbus_log(vb, VMBUS_LOG_WARN,
		    "vmbus: HvPostMessage status 0x%x", (unsigned)st);
	return r;
}

/* ---- HvSignalEvent (memory form, flag 0) ---- */

void vmbus_hv_signal(struct vmbus *vb, uint32_t connid)
{
	const struct vmbus_platform *p = vb->vb_plat;
	struct hv_signal_event_input in;
	uint64_t result = 0;
	int r;

	vmbus_memset(&in, 0, sizeof(in));
	in.se_connection_id = hv_cpu_to_le32(connid & HV_CONNECTION_ID_MASK);
	in.se_flag_number = 0;
	uint32_t vp = p->current_vp ? p->current_vp(p->ctx) : 0;
	if (vp >= vb->vb_nvcpu)
		vp = 0;
	if (vmbus_gone(vb))
		return;		/* nobody left to signal */
	r = p->hypercall(p->ctx, vp, HV_CALL_SIGNAL_EVENT, &in, sizeof(in),
	    NULL, 0, &result);
	if (r == -VMBUS_ENODEV) {
		vmbus_set_gone(vb, "HvSignalEvent");
		return;
	}
	if (r != 0 || HV_HYPERCALL_STATUS(result) != HV_STATUS_SUCCESS) {
		if (vmbus_ratelimit(vb, &vb->vb_log_next_ns))
			vmbus_log(vb, VMBUS_LOG_WARN,
			    "vmbus: HvSignalEvent(%u) failed, status 0x%x",
			    (unsigned)connid,
			    (unsigned)HV_HYPERCALL_STATUS(result));
	}
}
