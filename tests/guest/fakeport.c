/*
 * tests/guest/fakeport.c - fake platform port + scripted VMBus host double
 * (see fakeport.h). Test code: uses libc freely.
 */
#define _POSIX_C_SOURCE 200809L

#include "fakeport.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/guid.h"

const struct hv_guid fh_guid_echo = HV_GUID_ECHO_INIT;
const struct hv_guid fh_guid_other = HV_GUID_HEARTBEAT_INIT;
const struct hv_guid fh_guid_inst[8] = {
	HV_GUID(0x11111111, 0x1, 0x1, 1, 1, 1, 1, 1, 1, 1, 1),
	HV_GUID(0x22222222, 0x2, 0x2, 2, 2, 2, 2, 2, 2, 2, 2),
	HV_GUID(0x33333333, 0x3, 0x3, 3, 3, 3, 3, 3, 3, 3, 3),
	HV_GUID(0x44444444, 0x4, 0x4, 4, 4, 4, 4, 4, 4, 4, 4),
	HV_GUID(0x55555555, 0x5, 0x5, 5, 5, 5, 5, 5, 5, 5, 5),
	HV_GUID(0x66666666, 0x6, 0x6, 6, 6, 6, 6, 6, 6, 6, 6),
	HV_GUID(0x77777777, 0x7, 0x7, 7, 7, 7, 7, 7, 7, 7, 7),
	HV_GUID(0x88888888, 0x8, 0x8, 8, 8, 8, 8, 8, 8, 8, 8),
};

static void fh_hypercall(struct fakeport *fp, uint32_t vp, uint64_t control,
    const void *in, uint32_t in_len, uint64_t *result);

/* ---- memory ---- */

void *fp_gpa(struct fakeport *fp, uint64_t gpa, size_t len)
{
	uint64_t pfn = gpa >> 12;

	for (int i = 0; i < FP_MAX_ALLOCS; i++) {
		struct fp_alloc *a = &fp->fp_alloc[i];

		if (!a->a_live || pfn < a->a_pfn0 || pfn >= a->a_pfn0 + a->a_npages)
			continue;
		if (gpa + len > (a->a_pfn0 + a->a_npages) << 12)
			return NULL;
		return (uint8_t *)a->a_va + (gpa - (a->a_pfn0 << 12));
	}
	return NULL;
}

static void *fp_page_alloc(void *ctx, size_t npages, uint64_t *pfns)
{
	struct fakeport *fp = ctx;

	if (fp->fp_fail_alloc_after == 0)
		return NULL;
	if (fp->fp_fail_alloc_after > 0)
		fp->fp_fail_alloc_after--;
	for (int i = 0; i < FP_MAX_ALLOCS; i++) {
		struct fp_alloc *a = &fp->fp_alloc[i];

		if (a->a_live || a->a_va)
			continue;
		a->a_va = aligned_alloc(4096, npages * 4096);
		if (a->a_va == NULL)
			return NULL;
		memset(a->a_va, 0, npages * 4096);
		a->a_npages = npages;
		a->a_pfn0 = fp->fp_next_pfn;
		/* A gap between allocations: no accidental contiguity. */
		fp->fp_next_pfn += npages + 3;
		a->a_live = true;
		for (size_t p = 0; p < npages; p++)
			pfns[p] = a->a_pfn0 + p;
		fp->fp_pages_live += npages;
		return a->a_va;
	}
	return NULL;
}

static int fp_page_free(void *ctx, void *va, size_t npages)
{
	struct fakeport *fp = ctx;

	for (int i = 0; i < FP_MAX_ALLOCS; i++) {
		struct fp_alloc *a = &fp->fp_alloc[i];

		if (a->a_live && a->a_va == va) {
			if (a->a_npages != npages) {
				fprintf(stderr, "fakeport: page_free size mismatch\n");
				abort();
			}
			free(a->a_va);
			a->a_va = NULL;
			a->a_live = false;
			fp->fp_pages_live -= npages;
			return 0;
		}
	}
	fprintf(stderr, "fakeport: page_free of unknown %p\n", va);
	abort();
}

static int fp_virt_to_gpa(void *ctx, const void *va, uint64_t *gpa)
{
	struct fakeport *fp = ctx;

	for (int i = 0; i < FP_MAX_ALLOCS; i++) {
		struct fp_alloc *a = &fp->fp_alloc[i];
		const uint8_t *b = a->a_va, *p = va;

		if (a->a_live && p >= b && p < b + a->a_npages * 4096) {
			*gpa = (a->a_pfn0 << 12) + (uint64_t)(p - b);
			return 0;
		}
	}
	return -VMBUS_EFAULT;
}

static void *fp_zalloc(void *ctx, size_t bytes)
{
	(void)ctx;
	return calloc(1, bytes);
}

static void fp_free(void *ctx, void *p, size_t bytes)
{
	(void)ctx;
	(void)bytes;
	free(p);
}

/* ---- machine ---- */

static uint32_t fp_vcpu_count(void *ctx)
{
	return ((struct fakeport *)ctx)->fp_nvcpu;
}

static uint32_t fp_current_vp(void *ctx)
{
	(void)ctx;
	return 0;
}

static uint64_t *fp_msr_slot(struct fakeport *fp, uint32_t vp, uint32_t msr)
{
	switch (msr) {
	case HV_X64_MSR_GUEST_OS_ID: return &fp->fp_guest_os_id;
	case HV_X64_MSR_HYPERCALL: return &fp->fp_hypercall;
	case HV_X64_MSR_SIMP: return &fp->fp_simp[vp];
	case HV_X64_MSR_SIEFP: return &fp->fp_siefp[vp];
	case HV_X64_MSR_SCONTROL: return &fp->fp_scontrol[vp];
	}
	if (msr == HV_X64_MSR_SINT(VMBUS_MESSAGE_SINT))
		return &fp->fp_sint2[vp];
	return NULL;
}

static int fp_rdmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t *v)
{
	struct fakeport *fp = ctx;
	uint64_t *s;

	if (vp >= fp->fp_nvcpu)
		return -VMBUS_ERANGE;
	fh_pump(fp);
	if (msr == HV_X64_MSR_EOM) {
		*v = 0;
		return 0;
	}
	s = fp_msr_slot(fp, vp, msr);
	if (s == NULL)
		return -VMBUS_EINVAL;
	*v = *s;
	return 0;
}

static int fp_wrmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t v)
{
	struct fakeport *fp = ctx;
	uint64_t *s;

	if (vp >= fp->fp_nvcpu)
		return -VMBUS_ERANGE;
	if (msr == HV_X64_MSR_EOM) {
		fp->fp_host.h_eoms++;
		fh_pump(fp);
		return 0;
	}
	s = fp_msr_slot(fp, vp, msr);
	if (s == NULL)
		return -VMBUS_EINVAL;
	if (msr == HV_X64_MSR_HYPERCALL && (v & 1) && fp->fp_guest_os_id == 0)
		v &= ~(uint64_t)1;	/* KVM: no page without a guest OS id */
	*s = v;
	fh_pump(fp);
	return 0;
}

static int fp_hypercall(void *ctx, uint32_t vp, uint64_t control,
    const void *in, uint32_t in_len, void *out, uint32_t out_len,
    uint64_t *result)
{
	struct fakeport *fp = ctx;

	(void)out;
	(void)out_len;
	if (vp >= fp->fp_nvcpu)
		return -VMBUS_ERANGE;
	if (in_len > 4096)
		return -VMBUS_EINVAL;
	if (fp->fp_guest_os_id == 0 || (fp->fp_hypercall & 1) == 0) {
		*result = HV_STATUS_INVALID_HYPERCALL_CODE;
		return 0;
	}
	fh_hypercall(fp, vp, control, in, in_len, result);
	fh_pump(fp);
	return 0;
}

static uint64_t fp_now(void *ctx)
{
	struct fakeport *fp = ctx;

	fp->fp_now += fp->fp_tick;
	fh_pump(fp);
	return fp->fp_now;
}

static void fp_vlog(void *ctx, int level, const char *fmt, va_list ap)
{
	struct fakeport *fp = ctx;

	char line[512];
	size_t have, n;

	fp->fp_logs++;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	have = strlen(fp->fp_logtext);
	if (have + n + 2 > sizeof(fp->fp_logtext))
		have = 0;		/* full: start over */
	memcpy(fp->fp_logtext + have, line, n);
	fp->fp_logtext[have + n] = '\n';
	fp->fp_logtext[have + n + 1] = '\0';
	if (fp->fp_quiet)
		return;
	fprintf(stderr, "[guest %d] %s\n", level, line);
}

void fp_init(struct fakeport *fp, uint32_t nvcpu)
{
	memset(fp, 0, sizeof(*fp));
	fp->fp_nvcpu = nvcpu;
	fp->fp_tick = 1000;		/* 1 us per clock read */
	fp->fp_next_pfn = 0x100;
	fp->fp_fail_alloc_after = -1;
	fp->fp_quiet = getenv("FAKEPORT_VERBOSE") == NULL;
	for (uint32_t i = 0; i < FP_MAX_VCPU; i++)
		fp->fp_sint2[i] = HV_SINT_MASKED;

	struct vmbus_platform *p = &fp->fp_plat;
	p->ctx = fp;
	p->vcpu_count = fp_vcpu_count;
	p->current_vp = fp_current_vp;
	p->rdmsr = fp_rdmsr;
	p->wrmsr = fp_wrmsr;
	p->hypercall = fp_hypercall;
	p->page_alloc = fp_page_alloc;
	p->page_free = fp_page_free;
	p->virt_to_gpa = fp_virt_to_gpa;
	p->zalloc = fp_zalloc;
	p->free = fp_free;
	p->now_ns = fp_now;
	p->vlog = fp_vlog;

	struct fake_host *h = &fp->fp_host;
	static const uint32_t all[] = {
		VMBUS_VERSION_IRON, VMBUS_VERSION_WIN10_RS5,
		VMBUS_VERSION_WIN10_RS4, VMBUS_VERSION_WIN10_RS3_1,
		VMBUS_VERSION_WIN10_RS3_0, VMBUS_VERSION_WIN10,
		VMBUS_VERSION_WIN8_1, VMBUS_VERSION_WIN8, VMBUS_VERSION_WIN7, 0 };
	memcpy(h->h_accept, all, sizeof(all));
	h->h_msg_connid = 1;
}

/* ---- threaded mode ---- */

_Static_assert(sizeof(pthread_mutex_t) <= VMBUS_PORT_LOCK_BYTES,
    "a pthread mutex fits the port's lock storage");

void fp_host_lock(struct fakeport *fp)
{
	if (fp->fp_threads)
		pthread_mutex_lock(&fp->fp_big);
}

void fp_host_unlock(struct fakeport *fp)
{
	if (fp->fp_threads)
		pthread_mutex_unlock(&fp->fp_big);
}

static void fpt_lock_init(void *ctx, vmbus_lock_t *l)
{
	(void)ctx;
	pthread_mutex_init((pthread_mutex_t *)(void *)l->l_opaque, NULL);
}

static void fpt_lock_fini(void *ctx, vmbus_lock_t *l)
{
	(void)ctx;
	pthread_mutex_destroy((pthread_mutex_t *)(void *)l->l_opaque);
}

static void fpt_lock(void *ctx, vmbus_lock_t *l)
{
	(void)ctx;
	pthread_mutex_lock((pthread_mutex_t *)(void *)l->l_opaque);
}

static void fpt_unlock(void *ctx, vmbus_lock_t *l)
{
	(void)ctx;
	pthread_mutex_unlock((pthread_mutex_t *)(void *)l->l_opaque);
}

/* The single-threaded port calls, each under fp_big. */
static void *fpt_page_alloc(void *ctx, size_t npages, uint64_t *pfns)
{
	void *va;

	fp_host_lock(ctx);
	va = fp_page_alloc(ctx, npages, pfns);
	fp_host_unlock(ctx);
	return va;
}

static int fpt_page_free(void *ctx, void *va, size_t npages)
{
	int r;

	fp_host_lock(ctx);
	r = fp_page_free(ctx, va, npages);
	fp_host_unlock(ctx);
	return r;
}

static int fpt_virt_to_gpa(void *ctx, const void *va, uint64_t *gpa)
{
	int r;

	fp_host_lock(ctx);
	r = fp_virt_to_gpa(ctx, va, gpa);
	fp_host_unlock(ctx);
	return r;
}

static int fpt_rdmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t *v)
{
	int r;

	fp_host_lock(ctx);
	r = fp_rdmsr(ctx, vp, msr, v);
	fp_host_unlock(ctx);
	return r;
}

static int fpt_wrmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t v)
{
	int r;

	fp_host_lock(ctx);
	r = fp_wrmsr(ctx, vp, msr, v);
	fp_host_unlock(ctx);
	return r;
}

static int fpt_hypercall(void *ctx, uint32_t vp, uint64_t control,
    const void *in, uint32_t in_len, void *out, uint32_t out_len,
    uint64_t *result)
{
	int r;

	fp_host_lock(ctx);
	r = fp_hypercall(ctx, vp, control, in, in_len, out, out_len, result);
	fp_host_unlock(ctx);
	return r;
}

static uint64_t fpt_now(void *ctx)
{
	uint64_t t;

	fp_host_lock(ctx);
	t = fp_now(ctx);
	fp_host_unlock(ctx);
	return t;
}

static void fpt_vlog(void *ctx, int level, const char *fmt, va_list ap)
{
	fp_host_lock(ctx);
	fp_vlog(ctx, level, fmt, ap);
	fp_host_unlock(ctx);
}

static void *fpt_irq_main(void *arg)
{
	struct fakeport *fp = arg;

	while (atomic_load(&fp->fp_irq_run)) {
		for (uint32_t vp = 0; vp < fp->fp_nvcpu; vp++) {
			fp->fp_isr(fp->fp_isr_arg, vp);
			atomic_fetch_add(&fp->fp_isr_calls, 1);
		}
		sched_yield();
	}
	return NULL;
}

static int fpt_irq_attach(void *ctx, uint8_t *vector, vmbus_isr_fn *isr,
    void *arg)
{
	struct fakeport *fp = ctx;

	(void)vector;
	fp->fp_isr = isr;
	fp->fp_isr_arg = arg;
	atomic_store(&fp->fp_irq_run, true);
	if (pthread_create(&fp->fp_irq_thread, NULL, fpt_irq_main, fp) != 0)
		return -VMBUS_ENOMEM;
	return 0;
}

static void fpt_irq_detach(void *ctx)
{
	struct fakeport *fp = ctx;

	atomic_store(&fp->fp_irq_run, false);
	pthread_join(fp->fp_irq_thread, NULL);
}

void fp_threaded(struct fakeport *fp, bool irq)
{
	struct vmbus_platform *p = &fp->fp_plat;
	pthread_mutexattr_t ma;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&fp->fp_big, &ma);
	pthread_mutexattr_destroy(&ma);
	fp->fp_threads = true;
	fp->fp_irq = irq;
	p->lock_init = fpt_lock_init;
	p->lock_fini = fpt_lock_fini;
	p->lock = fpt_lock;
	p->unlock = fpt_unlock;
	p->page_alloc = fpt_page_alloc;
	p->page_free = fpt_page_free;
	p->virt_to_gpa = fpt_virt_to_gpa;
	p->rdmsr = fpt_rdmsr;
	p->wrmsr = fpt_wrmsr;
	p->hypercall = fpt_hypercall;
	p->now_ns = fpt_now;
	p->vlog = fpt_vlog;
	if (irq) {
		p->irq_attach = fpt_irq_attach;
		p->irq_detach = fpt_irq_detach;
	}
}

uint64_t fp_fini(struct fakeport *fp)
{
	uint64_t live = fp->fp_pages_live;

	if (fp->fp_threads) {
		pthread_mutex_destroy(&fp->fp_big);
		fp->fp_threads = false;
	}

	for (int i = 0; i < FP_MAX_ALLOCS; i++) {
		if (fp->fp_alloc[i].a_live)
			free(fp->fp_alloc[i].a_va);
		fp->fp_alloc[i].a_live = false;
		fp->fp_alloc[i].a_va = NULL;
	}
	return live;
}

/* ======================= the host double ============================ */

static void fh_log(struct fake_host *h, uint32_t type, uint32_t len)
{
	if (h->h_nlog < FH_LOG) {
		h->h_log[h->h_nlog] = type;
		h->h_log_len[h->h_nlog] = len;
		h->h_nlog++;
	}
}

uint32_t fh_count(struct fakeport *fp, uint32_t type)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < fp->fp_host.h_nlog; i++)
		n += fp->fp_host.h_log[i] == type;
	return n;
}

struct fh_chan *fh_find_chan(struct fakeport *fp, uint32_t relid)
{
	for (int i = 0; i < FH_MAX_CHANS; i++)
		if (fp->fp_host.h_chan[i].c_used &&
		    fp->fp_host.h_chan[i].c_relid == relid)
			return &fp->fp_host.h_chan[i];
	return NULL;
}

static struct fh_chan *fh_chan_by_connid(struct fakeport *fp, uint32_t connid)
{
	for (int i = 0; i < FH_MAX_CHANS; i++)
		if (fp->fp_host.h_chan[i].c_used &&
		    fp->fp_host.h_chan[i].c_connid == connid)
			return &fp->fp_host.h_chan[i];
	return NULL;
}

struct fh_gpadl *fh_find_gpadl(struct fakeport *fp, uint32_t handle)
{
	for (int i = 0; i < FH_MAX_GPADLS; i++)
		if (fp->fp_host.h_gpadl[i].g_used &&
		    fp->fp_host.h_gpadl[i].g_handle == handle)
			return &fp->fp_host.h_gpadl[i];
	return NULL;
}

struct fh_chan *fh_add_chan(struct fakeport *fp, uint32_t relid,
    const struct hv_guid *cls, const struct hv_guid *inst, uint16_t subidx,
    bool echo)
{
	for (int i = 0; i < FH_MAX_CHANS; i++) {
		struct fh_chan *c = &fp->fp_host.h_chan[i];

		if (c->c_used)
			continue;
		memset(c, 0, sizeof(*c));
		c->c_used = true;
		c->c_relid = relid;
		c->c_class = *cls;
		c->c_instance = *inst;
		c->c_subidx = subidx;
		c->c_connid = 0x2000 + relid;
		c->c_dedicated = true;
		c->c_echo = echo;
		return c;
	}
	abort();
}

void fh_send(struct fakeport *fp, uint32_t vp, const void *msg, uint32_t len)
{
	struct fake_host *h = &fp->fp_host;
	struct fh_msg *q;

	if (h->h_qtail[vp] - h->h_qhead[vp] >= FH_QUEUE) {
		fprintf(stderr, "fakehost: queue overflow\n");
		abort();
	}
	q = &h->h_q[vp][h->h_qtail[vp] % FH_QUEUE];
	memset(q, 0, sizeof(*q));
	q->q_len = len > HV_MESSAGE_PAYLOAD_MAX ? HV_MESSAGE_PAYLOAD_MAX : len;
	memcpy(q->q_data, msg, q->q_len);
	h->h_qtail[vp]++;
	fh_pump(fp);
}

static uint32_t fh_msg_vp(struct fakeport *fp)
{
	struct fake_host *h = &fp->fp_host;

	return h->h_version >= VMBUS_VERSION_WIN8_1 ? h->h_target_vcpu : 0;
}

void fh_send_msg(struct fakeport *fp, const void *msg, uint32_t len)
{
	fh_send(fp, fh_msg_vp(fp), msg, len);
}

/* Deliver into SIMP slot 2 (type last, release); pending bit if busy. */
void fh_pump(struct fakeport *fp)
{
	struct fake_host *h = &fp->fp_host;

	if (fp->fp_in_host)
		return;
	fp->fp_in_host = true;
	for (uint32_t vp = 0; vp < fp->fp_nvcpu; vp++) {
		struct hv_message *slot;
		uint64_t simp = fp->fp_simp[vp];

		if (h->h_qhead[vp] == h->h_qtail[vp] || !(simp & 1) ||
		    !(fp->fp_scontrol[vp] & 1))
			continue;
		struct hv_message_page *pg = fp_gpa(fp, simp & ~0xFFFull, 4096);
		if (pg == NULL)
			continue;
		slot = &pg->mp_slot[VMBUS_MESSAGE_SINT];
		_Atomic uint64_t *w = (_Atomic uint64_t *)(void *)slot;
		uint64_t old = atomic_load(w);
		if ((uint32_t)old != 0) {
			/* Busy: mark pending with a CAS requiring type != 0. */
			while ((uint32_t)old != 0 &&
			    !atomic_compare_exchange_weak(w, &old,
			    old | ((uint64_t)HV_MESSAGE_FLAG_PENDING << 40)))
				;
			if ((uint32_t)old != 0)
				continue;
		}
		struct fh_msg *q = &h->h_q[vp][h->h_qhead[vp] % FH_QUEUE];
		memset(slot->hm_payload, 0, sizeof(slot->hm_payload));
		memcpy(slot->hm_payload, q->q_data, q->q_len);
		slot->hm_sender = 0;
		uint64_t hdr = (uint64_t)VMBUS_MESSAGE_TYPE |
		    ((uint64_t)q->q_len << 32);
		h->h_qhead[vp]++;
		/* More queued: pending at delivery, so the guest's EOM asks
		 * for the next one (TLFS allows setting it then). */
		if (h->h_qhead[vp] != h->h_qtail[vp])
			hdr |= (uint64_t)HV_MESSAGE_FLAG_PENDING << 40;
		atomic_store_explicit(w, hdr, memory_order_release);
	}
	fp->fp_in_host = false;
}

void fh_offer(struct fakeport *fp, struct fh_chan *c)
{
	struct vmbus_chanmsg_offerchannel of;

	memset(&of, 0, sizeof(of));
	of.of_hdr.chm_type = VMBUS_CHANMSG_OFFERCHANNEL;
	of.of_if_type = c->c_class;
	of.of_if_instance = c->c_instance;
	of.of_sub_channel_index = c->c_subidx;
	of.of_child_relid = c->c_relid;
	of.of_monitorid = 0xFF;
	of.of_is_dedicated_interrupt = c->c_dedicated ? 1 : 0;
	of.of_connection_id = c->c_connid;
	c->c_offered = true;
	fh_send_msg(fp, &of, sizeof(of));
}

void fh_rescind(struct fakeport *fp, struct fh_chan *c)
{
	struct vmbus_chanmsg_rescind_channeloffer rc;

	memset(&rc, 0, sizeof(rc));
	rc.rc_hdr.chm_type = VMBUS_CHANMSG_RESCIND_CHANNELOFFER;
	rc.rc_child_relid = c->c_relid;
	c->c_offered = false;
	fh_send_msg(fp, &rc, sizeof(rc));
}

void fh_signal_guest(struct fakeport *fp, struct fh_chan *c)
{
	struct fake_host *h = &fp->fp_host;

	if (h->h_version >= VMBUS_VERSION_WIN8) {
		uint64_t siefp = fp->fp_siefp[c->c_target_vp];
		struct hv_event_flags_page *pg;

		if (!(siefp & 1))
			return;
		pg = fp_gpa(fp, siefp & ~0xFFFull, 4096);
		atomic_fetch_or((_Atomic uint8_t *)&pg->efp_sint[2].ef_flags[c->c_relid / 8],
		    (uint8_t)(1u << (c->c_relid % 8)));
	} else {
		struct hv_interrupt_page *ip = fp_gpa(fp, h->h_intr_page_gpa, 4096);
		struct hv_event_flags_page *pg =
		    fp_gpa(fp, fp->fp_siefp[0] & ~0xFFFull, 4096);

		if (ip == NULL || pg == NULL)
			return;
		atomic_fetch_or((_Atomic uint8_t *)&ip->ip_recv[c->c_relid / 8],
		    (uint8_t)(1u << (c->c_relid % 8)));
		atomic_fetch_or((_Atomic uint8_t *)&pg->efp_sint[2].ef_flags[0], 1);
	}
}

int fh_write_raw(struct fakeport *fp, struct fh_chan *c, const void *bytes,
    uint32_t len)
{
	struct vmbus_iov iov = { bytes, len };
	bool sig = false;
	int r = vmbus_ring_write(&c->c_out, &iov, 1, &sig);

	if (r == 0 && (sig || !fp->fp_host.h_signal_if_needed))
		fh_signal_guest(fp, c);
	return r;
}

int fh_write_pkt(struct fakeport *fp, struct fh_chan *c, uint16_t type,
    uint16_t flags, uint64_t tid, const void *data, uint32_t len)
{
	_Alignas(8) uint8_t buf[16 + 65536];
	struct vmbus_packet_desc *d = (void *)buf;
	uint32_t total = 16 + ((len + 7) & ~7u);

	if (total > sizeof(buf))
		return -VMBUS_EINVAL;
	memset(buf, 0, total);
	d->pd_type = type;
	d->pd_offset8 = 2;
	d->pd_len8 = (uint16_t)(total / 8);
	d->pd_flags = flags;
	d->pd_trans_id = tid;
	if (len)
		memcpy(buf + 16, data, len);
	return fh_write_raw(fp, c, buf, total);
}

int fh_read_pkt(struct fakeport *fp, struct fh_chan *c, void *buf,
    uint32_t cap)
{
	struct vmbus_packet_desc d;
	uint32_t len;
	int r;

	(void)fp;
	r = vmbus_ring_peek(&c->c_in, &d, sizeof(d));
	if (r != 0)
		return r;
	len = (uint32_t)d.pd_len8 * 8;
	if (len < 16 || len > cap)
		return -VMBUS_EPROTO;
	r = vmbus_ring_read(&c->c_in, buf, len, 0);
	if (r != 0)
		return r;
	if (vmbus_ring_read_done(&c->c_in))
		fh_signal_guest(fp, c);
	return (int)len;
}

/* Queue a reply packet; it is written when the ring has room. */
static void fh_queue_reply(struct fh_chan *c, uint16_t type, uint64_t tid,
    const void *data, uint32_t len)
{
	uint8_t *p = c->c_pend[c->c_npend];
	struct vmbus_packet_desc d = { type, 2, 0, 0, tid };
	uint32_t total = 16 + ((len + 7) & ~7u);

	if (c->c_npend >= 2 || total > sizeof(c->c_pend[0]))
		abort();
	d.pd_len8 = (uint16_t)(total / 8);
	memset(p, 0, total);
	memcpy(p, &d, 16);
	if (len)
		memcpy(p + 16, data, len);
	c->c_pend_len[c->c_npend++] = total;
}

/* Write queued replies; false if the ring is full (pending_send_sz set). */
static bool fh_flush(struct fakeport *fp, struct fh_chan *c)
{
	while (c->c_npend) {
		int r = fh_write_raw(fp, c, c->c_pend[0], c->c_pend_len[0]);

		if (r == -VMBUS_EAGAIN) {
			vmbus_ring_set_pending_send(&c->c_out,
			    c->c_pend_len[0] + 8);
			return false;
		}
		if (r != 0)
			abort();
		vmbus_ring_set_pending_send(&c->c_out, 0);
		memmove(c->c_pend[0], c->c_pend[1], c->c_pend_len[1]);
		c->c_pend_len[0] = c->c_pend_len[1];
		c->c_npend--;
	}
	return true;
}

/* Echo VSP behaviour: like src/host/vsp/echo.c, written separately. */
static void fh_echo(struct fakeport *fp, struct fh_chan *c)
{
	static _Alignas(8) uint8_t pkt[1 << 20];
	int n;

	while (fh_flush(fp, c) &&
	    (n = fh_read_pkt(fp, c, pkt, sizeof(pkt))) > 0) {
		struct vmbus_packet_desc *d = (void *)pkt;
		uint32_t off = (uint32_t)d->pd_offset8 * 8;

		if (d->pd_type == VMBUS_PACKET_TYPE_DATA_INBAND) {
			fh_queue_reply(c, VMBUS_PACKET_TYPE_DATA_INBAND,
			    d->pd_trans_id, pkt + off, (uint32_t)n - off);
		} else if (d->pd_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
			static uint8_t data[4096];
			uint32_t pos = 24, dl = 0;
			uint32_t cnt = *(uint32_t *)(pkt + 20);

			for (uint32_t rgi = 0; rgi < cnt; rgi++) {
				uint32_t bc = *(uint32_t *)(pkt + pos);
				uint32_t bo = *(uint32_t *)(pkt + pos + 4);
				uint32_t np = (bo + bc + 4095) / 4096;

				for (uint32_t p = 0; p < np; p++) {
					uint64_t pfn = *(uint64_t *)(pkt + pos + 8 + 8 * p);
					uint32_t s = p == 0 ? bo : 0;
					uint32_t e = (p + 1 == np) ? (bo + bc) - 4096 * p : 4096;
					uint8_t *src = fp_gpa(fp, (pfn << 12) + s, e - s);

					if (src && dl + (e - s) <= sizeof(data)) {
						memcpy(data + dl, src, e - s);
						dl += e - s;
					}
				}
				pos += 8 + 8 * np;
			}
			fh_queue_reply(c, VMBUS_PACKET_TYPE_DATA_INBAND,
			    d->pd_trans_id, data, dl);
		} else {
			continue;
		}
		c->c_echoed++;
		if (d->pd_flags & VMBUS_PACKET_FLAG_COMPLETION_REQUESTED)
			fh_queue_reply(c, VMBUS_PACKET_TYPE_COMP, d->pd_trans_id,
			    NULL, 0);
	}
}

void fh_kick(struct fakeport *fp, struct fh_chan *c)
{
	if (c->c_open && c->c_echo)
		fh_echo(fp, c);
}

static bool fh_map_rings(struct fakeport *fp, struct fh_chan *c,
    struct fh_gpadl *g, uint32_t downstream)
{
	uint32_t npfn = (g->g_buflen - 8) / 8;
	uint64_t pfn0 = *(uint64_t *)(g->g_range + 8);
	uint8_t *base;

	/* Our fake memory is contiguous per allocation: check the PFNs. */
	for (uint32_t i = 1; i < npfn; i++)
		if (*(uint64_t *)(g->g_range + 8 + 8 * i) != pfn0 + i)
			return false;
	if (downstream == 0 || downstream >= npfn)
		return false;
	base = fp_gpa(fp, pfn0 << 12, (size_t)npfn * 4096);
	if (base == NULL)
		return false;
	if (vmbus_ring_init(&c->c_in, base, downstream * 4096) != 0 ||
	    vmbus_ring_init(&c->c_out, base + downstream * 4096,
	    (npfn - downstream) * 4096) != 0)
		return false;
	if (vmbus_ring_attach(&c->c_in, false) != 0 ||
	    vmbus_ring_attach(&c->c_out, true) != 0)
		return false;
	return true;
}

static bool fh_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void fh_reply_simple(struct fakeport *fp, uint32_t type)
{
	struct vmbus_chanmsg_hdr m = { type, 0 };

	fh_send_msg(fp, &m, sizeof(m));
}

static void fh_post(struct fakeport *fp, uint32_t vp, uint32_t connid,
    const uint8_t *p, uint32_t len, uint64_t *result)
{
	struct fake_host *h = &fp->fp_host;
	uint32_t type;

	(void)vp;
	*result = HV_STATUS_SUCCESS;
	if (len < 8) {
		*result = HV_STATUS_INVALID_PARAMETER;
		return;
	}
	type = *(const uint32_t *)p;
	if (*(const uint32_t *)(p + 4) != 0)
		h->h_nonzero_reserved = true;
	if (type == VMBUS_CHANMSG_INITIATE_CONTACT) {
		const struct vmbus_chanmsg_initiate_contact *ic = (const void *)p;
		uint32_t v = ic->ic_vmbus_version_requested;
		struct vmbus_chanmsg_version_response vr;
		bool ok = false;

		if (connid == VMBUS_MESSAGE_CONNECTION_ID_4 && h->h_no_conn4) {
			*result = HV_STATUS_INVALID_CONNECTION_ID;
			return;
		}
		if (h->h_nrequested < 16) {
			h->h_contact_connid[h->h_nrequested] = connid;
			h->h_requested[h->h_nrequested++] = v;
		}
		fh_log(h, type, len);
		if (v >= VMBUS_VERSION_MULTICLIENT && ic->ic_rsvd != 0)
			h->h_nonzero_reserved = true;
		for (int i = 0; h->h_accept[i]; i++)
			ok |= h->h_accept[i] == v;
		if (h->h_vresp_drop)
			return;
		memset(&vr, 0, sizeof(vr));
		vr.vr_hdr.chm_type = VMBUS_CHANMSG_VERSION_RESPONSE;
		vr.vr_version_supported = ok;
		if (ok) {
			vr.vr_connection_state = (uint8_t)h->h_vresp_state;
			vr.vr_msg_conn_id = v >= VMBUS_VERSION_MULTICLIENT ?
			    h->h_msg_connid : v;
			if (h->h_vresp_state == 0) {
				h->h_version = v;
				h->h_target_vcpu = ic->ic_target_vcpu;
				if (v < VMBUS_VERSION_MULTICLIENT)
					h->h_intr_page_gpa = ic->ic_interrupt_page;
			}
		}
		fh_send(fp, v >= VMBUS_VERSION_WIN8_1 ? ic->ic_target_vcpu : 0,
		    &vr, 16);
		return;
	}
	/* Everything else must use the negotiated message connection. */
	if (h->h_version == 0 ||
	    connid != (h->h_version >= VMBUS_VERSION_MULTICLIENT ?
	    h->h_msg_connid : VMBUS_MESSAGE_CONNECTION_ID)) {
		*result = HV_STATUS_INVALID_CONNECTION_ID;
		return;
	}
	fh_log(h, type, len);
	switch (type) {
	case VMBUS_CHANMSG_REQUESTOFFERS:
		for (int i = 0; i < FH_MAX_CHANS; i++)
			if (h->h_chan[i].c_used && !h->h_chan[i].c_released)
				fh_offer(fp, &h->h_chan[i]);
		fh_reply_simple(fp, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
		break;
	case VMBUS_CHANMSG_GPADL_HEADER: {
		const struct vmbus_chanmsg_gpadl_header *gh = (const void *)p;
		struct fh_gpadl *g = NULL;
		uint32_t n = len - 20;

		for (int i = 0; i < FH_MAX_GPADLS; i++)
			if (!h->h_gpadl[i].g_used) {
				g = &h->h_gpadl[i];
				break;
			}
		if (g == NULL)
			abort();
		memset(g, 0, sizeof(*g));
		g->g_used = true;
		g->g_handle = gh->gh_gpadl;
		g->g_relid = gh->gh_child_relid;
		g->g_buflen = gh->gh_range_buflen;
		memcpy(g->g_range, gh->gh_range, n);
		g->g_got = n;
		g->g_header_pfns = (n - 8) / 8;
		if (g->g_got >= g->g_buflen)
			goto gpadl_done;
		break;
	}
	case VMBUS_CHANMSG_GPADL_BODY: {
		const struct vmbus_chanmsg_gpadl_body *gb = (const void *)p;
		struct fh_gpadl *g = fh_find_gpadl(fp, gb->gb_gpadl);
		uint32_t n = len - 16;

		if (g == NULL || g->g_complete)
			break;
		memcpy(g->g_range + g->g_got, gb->gb_pfn, n);
		g->g_got += n;
		g->g_bodies++;
		if (n / 8 > g->g_body_max_pfns)
			g->g_body_max_pfns = n / 8;
		if (g->g_got >= g->g_buflen)
			goto gpadl_done;
		break;
	}
	gpadl_done: {
		struct fh_gpadl *g = NULL;
		struct vmbus_chanmsg_gpadl_created gc;

		for (int i = 0; i < FH_MAX_GPADLS; i++)
			if (h->h_gpadl[i].g_used && !h->h_gpadl[i].g_complete &&
			    h->h_gpadl[i].g_got >= h->h_gpadl[i].g_buflen)
				g = &h->h_gpadl[i];
		g->g_complete = true;
		memset(&gc, 0, sizeof(gc));
		gc.gc_hdr.chm_type = VMBUS_CHANMSG_GPADL_CREATED;
		gc.gc_child_relid = g->g_relid;
		gc.gc_gpadl = g->g_handle;
		gc.gc_creation_status = h->h_gpadl_status;
		if (h->h_gpadl_status)
			g->g_used = false;
		fh_send_msg(fp, &gc, sizeof(gc));
		break;
	}
	case VMBUS_CHANMSG_OPENCHANNEL: {
		const struct vmbus_chanmsg_openchannel *op = (const void *)p;
		struct fh_chan *c = fh_find_chan(fp, op->op_child_relid);
		struct fh_gpadl *g = fh_find_gpadl(fp, op->op_gpadl);
		struct vmbus_chanmsg_openchannel_result res;
		uint32_t status = 0;

		if (c == NULL || !c->c_offered)
			break;		/* revoked: no answer (spec 6.4) */
		if (c->c_rescind_on_open) {
			c->c_rescind_on_open = false;
			fh_rescind(fp, c);
			break;
		}
		if (g == NULL || c->c_open ||
		    !fh_map_rings(fp, c, g, op->op_downstream_pgoff))
			status = 0x8000FFFF;
		if (c->c_open_status)
			status = c->c_open_status;
		if (status == 0) {
			c->c_open = true;
			c->c_closed_seen = false;
			c->c_gpadl = op->op_gpadl;
			c->c_target_vp = op->op_target_vp;
			c->c_openid = op->op_openid;
			memcpy(c->c_userdata, op->op_userdata, 120);
		}
		if (c->c_open_noreply)
			break;
		memset(&res, 0, sizeof(res));
		res.or_hdr.chm_type = VMBUS_CHANMSG_OPENCHANNEL_RESULT;
		res.or_child_relid = op->op_child_relid;
		res.or_openid = op->op_openid;
		res.or_status = status;
		fh_send_msg(fp, &res, sizeof(res));
		break;
	}
	case VMBUS_CHANMSG_CLOSECHANNEL: {
		const struct vmbus_chanmsg_closechannel *cc = (const void *)p;
		struct fh_chan *c = fh_find_chan(fp, cc->cc_child_relid);

		if (c) {
			c->c_open = false;
			c->c_closed_seen = true;
		}
		break;
	}
	case VMBUS_CHANMSG_GPADL_TEARDOWN: {
		const struct vmbus_chanmsg_gpadl_teardown *gt = (const void *)p;
		struct fh_gpadl *g = fh_find_gpadl(fp, gt->gt_gpadl);
		struct vmbus_chanmsg_gpadl_torndown gd;

		if (g == NULL || h->h_teardown_noreply ||
		    (h->h_teardown_noreply_gpadl != 0 &&
		     gt->gt_gpadl == h->h_teardown_noreply_gpadl))
			break;
		g->g_torn = true;
		g->g_used = false;
		memset(&gd, 0, sizeof(gd));
		gd.gd_hdr.chm_type = VMBUS_CHANMSG_GPADL_TORNDOWN;
		gd.gd_gpadl = gt->gt_gpadl;
		fh_send_msg(fp, &gd, sizeof(gd));
		break;
	}
	case VMBUS_CHANMSG_MODIFYCHANNEL: {
		const struct vmbus_chanmsg_modifychannel *mc = (const void *)p;
		struct fh_chan *c = fh_find_chan(fp, mc->mc_child_relid);
		struct vmbus_chanmsg_modifychannel_response mr;

		if (c == NULL || !c->c_open || mc->mc_target_vp >= fp->fp_nvcpu)
			break;
		if (h->h_modify_status == 0)
			c->c_target_vp = mc->mc_target_vp;
		/* Answered from 5.3 on only (spec 6.9). */
		if (h->h_version < VMBUS_VERSION_IRON || h->h_modify_noreply)
			break;
		memset(&mr, 0, sizeof(mr));
		mr.mcr_hdr.chm_type = VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE;
		mr.mcr_child_relid = mc->mc_child_relid;
		mr.mcr_status = h->h_modify_status;
		fh_send_msg(fp, &mr, sizeof(mr));
		break;
	}
	case VMBUS_CHANMSG_RELID_RELEASED: {
		const struct vmbus_chanmsg_relid_released *rr = (const void *)p;
		struct fh_chan *c = fh_find_chan(fp, rr->rr_child_relid);

		if (c)
			c->c_released = true;
		break;
	}
	case VMBUS_CHANMSG_UNLOAD:
		h->h_unloads++;
		if (!h->h_unload_noreply)
			fh_reply_simple(fp, VMBUS_CHANMSG_UNLOAD_RESPONSE);
		break;
	default:
		break;
	}
	(void)fh_zero;
}

static void fh_hypercall(struct fakeport *fp, uint32_t vp, uint64_t control,
    const void *in, uint32_t in_len, uint64_t *result)
{
	struct fake_host *h = &fp->fp_host;
	uint16_t code = (uint16_t)(control & 0xFFFF);

	fp->fp_in_host = true;
	if (code == HV_CALL_POST_MESSAGE) {
		const struct hv_post_message_input *pm = in;

		if (in_len < 16 || pm->pm_payload_size > 240 ||
		    in_len < 16 + pm->pm_payload_size ||
		    pm->pm_message_type != VMBUS_MESSAGE_TYPE) {
			*result = HV_STATUS_INVALID_PARAMETER;
		} else if (h->h_post_busy) {
			h->h_post_busy--;
			*result = HV_STATUS_INSUFFICIENT_BUFFERS;
		} else {
			if (pm->pm_rsvd != 0)
				h->h_nonzero_reserved = true;
			/* Bytes past the payload must be zero too. */
			if (!fh_zero(pm->pm_payload + pm->pm_payload_size,
			    in_len - 16 - pm->pm_payload_size))
				h->h_nonzero_reserved = true;
			fp->fp_in_host = false;
			fh_post(fp, vp, pm->pm_connection_id, pm->pm_payload,
			    pm->pm_payload_size, result);
		}
	} else if (code == HV_CALL_SIGNAL_EVENT) {
		const struct hv_signal_event_input *se = in;
		struct fh_chan *c;

		fp->fp_in_host = false;
		fp->fp_signals++;
		*result = HV_STATUS_SUCCESS;
		if (in_len < 8) {
			*result = HV_STATUS_INVALID_PARAMETER;
		} else if ((c = fh_chan_by_connid(fp, se->se_connection_id))) {
			c->c_signals++;
			if (c->c_open && c->c_echo)
				fh_echo(fp, c);
		} else {
			*result = HV_STATUS_INVALID_CONNECTION_ID;
		}
	} else {
		*result = HV_STATUS_INVALID_HYPERCALL_CODE;
	}
	fp->fp_in_host = false;
}
