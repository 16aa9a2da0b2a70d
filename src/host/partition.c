/*
 * host/partition.c - one guest partition behind the partition ABI
 * (DESIGN.md "The partition ABI", version 1): guest RAM, the per-vCPU
 * SynIC, hypercalls, the signal page and the ABI socket.
 *
 * Trust: every datagram is received into a private buffer (the one copy),
 * checked, then used. Guest RAM is only touched at GPAs the guest named
 * (SIMP, SIEFP), each checked against ram_bytes when the MSR is written, and
 * only with single atomic operations where the guest may race us (the slot
 * header, event flag words, signal words).
 *
 * Locking: p_lock protects the SynIC MSRs, the message queues and the RAM
 * mapping's liveness, because VSP threads deliver messages and events
 * concurrently with the loop thread's MSR writes. The ops callbacks are
 * never called with p_lock held.
 */
#define _GNU_SOURCE
#include "partition_host.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "hv/hvsim_abi.h"
#include "hv/tlfs.h"
#include "log.h"
#include "loop.h"
#include "vmbus/errno.h"

#define SIGNAL_WORDS (HVSIM_ABI_SIGNAL_PAGE_BYTES / 8u)
#define DGRAMS_PER_WAKEUP 64
/* Bytes 0-7 of a SIMP slot as a little-endian u64: flags at bits 40-47. */
#define SLOT_PENDING_BIT ((uint64_t)HV_MESSAGE_FLAG_PENDING << 40)

struct msgq_node {
	struct msgq_node *mq_next;
	uint32_t mq_type;
	uint32_t mq_len;
	uint8_t mq_payload[HV_MESSAGE_PAYLOAD_MAX];
};

struct msgq {
	struct msgq_node *q_head, *q_tail;
	uint32_t q_len;
};

struct hvs_vcpu {
	uint64_t v_scontrol;
	uint64_t v_simp;
	uint64_t v_siefp;
	uint64_t v_sint[HV_SYNIC_SINT_COUNT];
	int v_doorbell;                 /* eventfd */
	struct msgq v_q[HV_SYNIC_SINT_COUNT];
};

/* A window of hvs_gpa_map_pfns(): guard page, w_pages pages, guard page. */
struct gpa_window {
	struct gpa_window *w_next;
	uint8_t *w_va;                  /* first mapped page */
	uint32_t w_pages;
};

struct hvs_partition {
	char p_name[HVSIM_ABI_MAX_NAME + 1];
	struct hvs_loop *p_loop;
	const struct hvs_partition_ops *p_ops;
	void *p_ops_arg;
	void (*p_host_ended)(void *, struct hvs_partition *, int);
	void *p_host_arg;

	uint32_t p_vcpus;
	uint64_t p_ram_bytes;
	int p_ram_fd;
	uint8_t *p_ram;                 /* shared mapping, NULL after end */
	int p_sig_fd;
	uint64_t *p_sig;                /* signal page mapping */
	int p_sig_efd;
	int p_sock;
	struct hvs_loop_fd *p_sock_w;
	struct hvs_loop_fd *p_sig_w;
	struct hvs_loop_timer *p_hello_timer;

	enum hvs_partition_state p_state; /* loop thread */
	int p_end_kind;

	/* Partition-wide MSRs (loop thread only). */
	uint64_t p_guest_os_id;
	uint64_t p_hypercall;
	uint64_t p_crash[5];
	uint64_t p_crash_ctl;
	uint64_t p_t0_ns;               /* WELCOME time: reference count 0 */

	/* Reply waiting for the socket to become writable. */
	uint8_t p_tx[HVSIM_ABI_MAX_DGRAM];
	size_t p_tx_len;
	bool p_tx_fds;                  /* WELCOME: attach the fds */
	bool p_tx_pending;

	uint8_t p_rx[HVSIM_ABI_MAX_DGRAM]; /* the one copy of each datagram */

	pthread_mutex_t p_lock;
	bool p_live;                    /* RAM mapped, deliveries allowed */
	struct hvs_vcpu *p_vcpu;
	uint32_t p_msgq_limit;
	uint32_t p_msgq_len;
	uint32_t p_msgq_max;
	bool p_msgq_refused;            /* -EAGAIN since last synic_changed */
	struct msgq_node *p_free;       /* preallocated nodes */
	struct msgq_node *p_nodes;
	struct gpa_window *p_windows;   /* hvs_gpa_map_pfns windows */
	uint32_t p_nwindows;
	uint64_t p_window_pages;
	uint64_t p_windows_total;

	struct hvs_ratelimit p_rl;
	atomic_uint_fast64_t c_requests, c_malformed, c_bad_vp, c_bad_msr,
		c_hc_errors, c_posts, c_post_busy, c_signals, c_delivered,
		c_msgq_full, c_events, c_events_dropped, c_doorbells,
		c_gpa_faults;
};

#define GUEST_ERR(p, ctr, ...) \
	hvs_log_guest(&(p)->p_rl, &(p)->ctr, (p)->p_name, __VA_ARGS__)

static void part_end(struct hvs_partition *p, int kind);
static void sock_cb(void *arg, int fd, uint32_t events);

/* ---- small helpers ---------------------------------------------------- */

static void cnt(atomic_uint_fast64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static uint64_t ld(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static bool page_in_ram(const struct hvs_partition *p, uint64_t msr_value)
{
	uint64_t gpa = msr_value & ~(uint64_t)HV_PAGE_MASK;

	return gpa != 0 && gpa < p->p_ram_bytes &&
	       p->p_ram_bytes - gpa >= HV_PAGE_SIZE;
}

static uint8_t *synic_page(struct hvs_partition *p, uint64_t msr_value)
{
	return p->p_ram + (msr_value & ~(uint64_t)HV_PAGE_MASK);
}

/* ---- SynIC delivery (p_lock held) -------------------------------------- */

static void doorbell_locked(struct hvs_partition *p, uint32_t vp,
			    uint32_t sint)
{
	struct hvs_vcpu *v = &p->p_vcpu[vp];
	struct hvs_fault_args fa;
	uint64_t one = 1;
	int64_t extra = 0;

	if (!(v->v_scontrol & HV_SCONTROL_ENABLE) ||
	    (v->v_sint[sint] & HV_SINT_MASKED))
		return;
	if (hvs_fault_check_vm("withhold_interrupts", p->p_name, NULL))
		return;
	if (hvs_fault_check_vm("storm_interrupts", p->p_name, &fa))
		extra = hvs_fault_param(&fa, "count", 16);
	if (extra < 0 || extra > 1000000)
		extra = 0;
	for (int64_t i = 0; i <= extra; i++) {
		/* EAGAIN only when the counter would overflow: still pending. */
		ssize_t r = write(v->v_doorbell, &one, sizeof(one));
		(void)r;
		cnt(&p->c_doorbells);
	}
}

static bool msg_ready_locked(const struct hvs_vcpu *v)
{
	return (v->v_scontrol & HV_SCONTROL_ENABLE) &&
	       (v->v_simp & HV_SIMP_ENABLE);
}

static void slot_write(uint8_t *slot, const struct msgq_node *m, bool pending)
{
	uint64_t hdr;

	/* NOTE: payload and sender first; bytes 0-7 (type, size, flags) in
	 * one release store, so the type becomes visible last. */
	memset(slot + 8, 0, 8);
	memcpy(slot + 16, m->mq_payload, m->mq_len);
	memset(slot + 16 + m->mq_len, 0, HV_MESSAGE_PAYLOAD_MAX - m->mq_len);
	hdr = (uint64_t)m->mq_type | ((uint64_t)m->mq_len << 32) |
	      (pending ? SLOT_PENDING_BIT : 0);
	__atomic_store_n((uint64_t *)(void *)slot, hv_cpu_to_le64(hdr),
			 __ATOMIC_RELEASE);
}

static struct msgq_node *msgq_pop(struct hvs_partition *p, struct msgq *q)
{
	struct msgq_node *m = q->q_head;

	if (!m)
		return NULL;
	q->q_head = m->mq_next;
	if (!q->q_head)
		q->q_tail = NULL;
	q->q_len--;
	p->p_msgq_len--;
	return m;
}

static void msgq_free_node(struct hvs_partition *p, struct msgq_node *m)
{
	m->mq_next = p->p_free;
	p->p_free = m;
}

/*
 * Move the head of (vp, sint)'s queue into the SIMP slot if the slot is
 * empty, else mark the slot pending. Returns true if a message was written
 * (the caller rings the doorbell).
 */
static bool flush_slot_locked(struct hvs_partition *p, uint32_t vp,
			      uint32_t sint)
{
	struct hvs_vcpu *v = &p->p_vcpu[vp];
	struct msgq *q = &v->v_q[sint];
	uint8_t *slot;
	uint64_t *hdr;
	uint64_t raw;

	if (!q->q_head || !msg_ready_locked(v))
		return false;
	slot = synic_page(p, v->v_simp) + sint * HV_MESSAGE_SIZE;
	hdr = (uint64_t *)(void *)slot;
	raw = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
	/* Bounded: a guest flipping its slot forever only delays itself; the
	 * next EOM or enqueue retries. */
	for (int tries = 0; tries < 64; tries++) {
		uint64_t val = hv_le64(raw);

		if ((uint32_t)val == HV_MESSAGE_TYPE_NONE) {
			struct msgq_node *m = msgq_pop(p, q);

			slot_write(slot, m, q->q_head != NULL);
			msgq_free_node(p, m);
			cnt(&p->c_delivered);
			return true;
		}
		if (val & SLOT_PENDING_BIT)
			return false;
		/* NOTE: the CAS requires the type to be non-zero (it compares
		 * all of bytes 0-7); if the guest emptied the slot meanwhile
		 * it fails and the next round writes the message instead. */
		if (__atomic_compare_exchange_n(
			    hdr, &raw, hv_cpu_to_le64(val | SLOT_PENDING_BIT),
			    false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return false;
	}
	return false;
}

/* Retry every non-empty queue of vp; ring the doorbell per written slot. */
static bool flush_vcpu_locked(struct hvs_partition *p, uint32_t vp)
{
	bool any = false;

	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		if (flush_slot_locked(p, vp, s)) {
			doorbell_locked(p, vp, s);
			any = true;
		}
	}
	return any;
}

static int post_one(struct hvs_partition *p, uint32_t vp, uint32_t sint,
		    uint32_t message_type, const void *payload, uint32_t len)
{
	struct msgq_node *m;
	struct msgq *q;

	pthread_mutex_lock(&p->p_lock);
	if (!p->p_live) {
		pthread_mutex_unlock(&p->p_lock);
		return -VMBUS_ENODEV;
	}
	if (vp >= p->p_vcpus || sint >= HV_SYNIC_SINT_COUNT) {
		pthread_mutex_unlock(&p->p_lock);
		return -VMBUS_ERANGE;
	}
	if (!p->p_free) {
		p->p_msgq_refused = true;
		pthread_mutex_unlock(&p->p_lock);
		cnt(&p->c_msgq_full);
		return -VMBUS_EAGAIN;
	}
	m = p->p_free;
	p->p_free = m->mq_next;
	m->mq_next = NULL;
	m->mq_type = message_type;
	m->mq_len = len;
	if (len)
		memcpy(m->mq_payload, payload, len);
	q = &p->p_vcpu[vp].v_q[sint];
	if (q->q_tail)
		q->q_tail->mq_next = m;
	else
		q->q_head = m;
	q->q_tail = m;
	q->q_len++;
	if (++p->p_msgq_len > p->p_msgq_max)
		p->p_msgq_max = p->p_msgq_len;
	if (flush_slot_locked(p, vp, sint))
		doorbell_locked(p, vp, sint);
	pthread_mutex_unlock(&p->p_lock);
	return 0;
}

int hvs_partition_post_message(struct hvs_partition *p, uint32_t vp,
			       uint32_t sint, uint32_t message_type,
			       const void *payload, uint32_t len)
{
	uint8_t scratch[HVS_FAULT_MSG_MAX];
	unsigned copies;
	int r = 0;

	if (!p)
		return -VMBUS_EINVAL;
	if (len > HV_MESSAGE_PAYLOAD_MAX || message_type == 0 ||
	    (len && !payload))
		return -VMBUS_EINVAL;
	/* Fault hooks (fault.h): drop, corrupt, resize, duplicate. */
	copies = hvs_fault_msg(p->p_name, &payload, &len, scratch);
	for (unsigned i = 0; i < copies; i++) {
		/* The first copy's result is the caller's; extra ones are
		 * best effort (a full queue ends them). */
		int e = post_one(p, vp, sint, message_type, payload, len);
		if (i == 0)
			r = e;
		if (e != 0)
			break;
	}
	return r;
}

int hvs_partition_signal_event(struct hvs_partition *p, uint32_t vp,
			       uint32_t sint, uint32_t flag)
{
	struct hvs_vcpu *v;
	uint64_t *word, mask, old;

	if (!p)
		return -VMBUS_EINVAL;
	pthread_mutex_lock(&p->p_lock);
	if (!p->p_live) {
		pthread_mutex_unlock(&p->p_lock);
		return -VMBUS_ENODEV;
	}
	if (vp >= p->p_vcpus || sint >= HV_SYNIC_SINT_COUNT ||
	    flag >= HV_EVENT_FLAGS_COUNT) {
		pthread_mutex_unlock(&p->p_lock);
		return -VMBUS_ERANGE;
	}
	v = &p->p_vcpu[vp];
	if (!(v->v_siefp & HV_SIEFP_ENABLE)) {
		pthread_mutex_unlock(&p->p_lock);
		cnt(&p->c_events_dropped);
		return 0;
	}
	/* Flag k = byte k/8, bit k%8: as a little-endian u64 word, bit k%64. */
	word = (uint64_t *)(void *)(synic_page(p, v->v_siefp) +
				    sint * HV_EVENT_FLAGS_BYTES + (flag / 64u) * 8u);
	mask = hv_cpu_to_le64((uint64_t)1 << (flag % 64u));
	old = __atomic_fetch_or(word, mask, __ATOMIC_SEQ_CST);
	cnt(&p->c_events);
	if (!(old & mask))
		doorbell_locked(p, vp, sint);
	pthread_mutex_unlock(&p->p_lock);
	return 0;
}

/* ---- GPA access ---------------------------------------------------------- */

void *hvs_gpa_map(struct hvs_partition *p, uint64_t gpa, uint64_t len)
{
	uint8_t *ram;

	if (!p)
		return NULL;
	pthread_mutex_lock(&p->p_lock);
	ram = p->p_live ? p->p_ram : NULL;
	pthread_mutex_unlock(&p->p_lock);
	if (!ram || len == 0 || gpa >= p->p_ram_bytes ||
	    len > p->p_ram_bytes - gpa) {
		cnt(&p->c_gpa_faults);
		return NULL;
	}
	return ram + gpa;
}

int hvs_gpa_read(struct hvs_partition *p, uint64_t gpa, void *buf, size_t len)
{
	void *src;

	if (len == 0)
		return 0;
	src = hvs_gpa_map(p, gpa, len);
	if (!src)
		return -VMBUS_EFAULT;
	memcpy(buf, src, len);
	return 0;
}

int hvs_gpa_write(struct hvs_partition *p, uint64_t gpa, const void *buf,
		  size_t len)
{
	void *dst;

	if (len == 0)
		return 0;
	dst = hvs_gpa_map(p, gpa, len);
	if (!dst)
		return -VMBUS_EFAULT;
	memcpy(dst, buf, len);
	return 0;
}

/* ---- GPA windows ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* NULL if every PFN may be mapped, else the reason (for the log). */
static const char *window_check(struct hvs_partition *p, const uint64_t *pfns,
				uint32_t n, uint64_t *bad)
{
	uint64_t ram_pages = p->p_ram_bytes >> HV_PAGE_SHIFT;
	uint64_t *sorted;
	const char *why = NULL;

	for (uint32_t i = 0; i < n; i++) {
		*bad = pfns[i];
		if (pfns[i] == 0)
			return "PFN 0";
		if (pfns[i] >= ram_pages)
			return "PFN outside guest RAM";
	}
	/* Checked above: n <= ram_pages, so the copy is bounded by RAM. */
	sorted = malloc((size_t)n * sizeof(*sorted));
	if (!sorted)
		return "out of memory checking the PFNs";
	memcpy(sorted, pfns, (size_t)n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	for (uint32_t i = 1; i < n; i++) {
		if (sorted[i] == sorted[i - 1]) {
			*bad = sorted[i];
			why = "PFN listed twice";
			break;
		}
	}
	free(sorted);
	return why;
}

void *hvs_gpa_map_pfns(struct hvs_partition *p, const uint64_t *pfns,
		       uint32_t n)
{
	const size_t pg = HV_PAGE_SIZE;
	struct gpa_window *w;
	const char *why;
	uint64_t bad = 0;
	uint8_t *base, *va;
	size_t span;
	bool live;

	if (!p)
		return NULL;
	if (n == 0 || !pfns) {
		cnt(&p->c_gpa_faults);
		return NULL;
	}
	if (n > (p->p_ram_bytes >> HV_PAGE_SHIFT)) {
		GUEST_ERR(p, c_gpa_faults, "GPA window of %u pages refused: "
			  "more pages than guest RAM", n);
		return NULL;
	}
	why = window_check(p, pfns, n, &bad);
	if (why) {
		GUEST_ERR(p, c_gpa_faults, "GPA window of %u pages refused: "
			  "%s (0x%llx)", n, why, (unsigned long long)bad);
		return NULL;
	}
	if (sysconf(_SC_PAGESIZE) != (long)pg) {
		HVS_ERR(p->p_name, "GPA windows need 4 KiB host pages");
		cnt(&p->c_gpa_faults);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	/* Reserve the span with a guard page on each side, then put the
	 * guest pages over the middle, one mmap per run of consecutive
	 * PFNs. The RAM fd lives until free_all, so no lock is needed. */
	span = ((size_t)n + 2) * pg;
	base = mmap(NULL, span, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		HVS_ERR(p->p_name, "GPA window of %u pages: %s", n,
			strerror(errno));
		free(w);
		return NULL;
	}
	va = base + pg;
	for (uint32_t i = 0; i < n;) {
		uint32_t run = 1;

		while (i + run < n && pfns[i + run] == pfns[i] + run)
			run++;
		if (mmap(va + (size_t)i * pg, (size_t)run * pg,
			 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 p->p_ram_fd, (off_t)(pfns[i] << HV_PAGE_SHIFT)) ==
		    MAP_FAILED) {
			HVS_ERR(p->p_name, "GPA window of %u pages: %s", n,
				strerror(errno));
			munmap(base, span);
			free(w);
			return NULL;
		}
		i += run;
	}
	w->w_va = va;
	w->w_pages = n;
	/* NOTE: registered under p_lock after the p_live check, so part_end
	 * either refuses us here or finds the window on its list. */
	pthread_mutex_lock(&p->p_lock);
	live = p->p_live;
	if (live) {
		w->w_next = p->p_windows;
		p->p_windows = w;
		p->p_nwindows++;
		p->p_window_pages += n;
		p->p_windows_total++;
	}
	pthread_mutex_unlock(&p->p_lock);
	if (!live) {
		munmap(base, span);
		free(w);
		cnt(&p->c_gpa_faults);
		return NULL;
	}
	return va;
}

static void window_unmap(struct gpa_window *w)
{
	munmap(w->w_va - HV_PAGE_SIZE, ((size_t)w->w_pages + 2) * HV_PAGE_SIZE);
	free(w);
}

void hvs_gpa_unmap_pfns(struct hvs_partition *p, void *va, uint32_t n)
{
	struct gpa_window *w = NULL;

	if (!p || !va)
		return;
	pthread_mutex_lock(&p->p_lock);
	for (struct gpa_window **pp = &p->p_windows; *pp; pp = &(*pp)->w_next) {
		if ((*pp)->w_va == va && (*pp)->w_pages == n) {
			w = *pp;
			*pp = w->w_next;
			p->p_nwindows--;
			p->p_window_pages -= n;
			break;
		}
	}
	pthread_mutex_unlock(&p->p_lock);
	if (!w) {
		HVS_WARN(p->p_name, "GPA window %p (%u pages) is not mapped",
			 va, n);
		return;
	}
	window_unmap(w);
}

/* p_lock held: the partition ended; nobody may use a window any more. */
static void windows_unmap_all_locked(struct hvs_partition *p)
{
	if (p->p_windows)
		HVS_WARN(p->p_name, "%u GPA window(s) still mapped at the end: "
			 "unmapped", p->p_nwindows);
	while (p->p_windows) {
		struct gpa_window *w = p->p_windows;

		p->p_windows = w->w_next;
		window_unmap(w);
	}
	p->p_nwindows = 0;
	p->p_window_pages = 0;
}

uint64_t hvs_partition_ram_bytes(const struct hvs_partition *p)
{
	return p->p_ram_bytes;
}

uint32_t hvs_partition_vcpu_count(const struct hvs_partition *p)
{
	return p->p_vcpus;
}

const char *hvs_partition_name(const struct hvs_partition *p)
{
	return p->p_name;
}

/* ---- signal page ---------------------------------------------------------- */

/* NOTE: read the eventfd first, then exchange the words: a signal set after
 * our exchange comes with a new eventfd write, so none is lost. */
static void drain_signals(struct hvs_partition *p)
{
	uint64_t v;

	if (p->p_state != HVS_PART_RUNNING)
		return;
	while (read(p->p_sig_efd, &v, sizeof(v)) > 0)
		;
	for (uint32_t i = 0; i < SIGNAL_WORDS; i++) {
		uint64_t w;

		if (__atomic_load_n(&p->p_sig[i], __ATOMIC_RELAXED) == 0)
			continue;
		w = __atomic_exchange_n(&p->p_sig[i], 0, __ATOMIC_ACQUIRE);
		while (w) {
			unsigned b = (unsigned)__builtin_ctzll(w);
			w &= w - 1;
			cnt(&p->c_signals);
			p->p_ops->signal_event(p->p_ops_arg, i * 64u + b, 0);
			if (p->p_state != HVS_PART_RUNNING)
				return;
		}
	}
}

static void sig_cb(void *arg, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	drain_signals(arg);
}

/* ---- replies ---------------------------------------------------------- */

static void reply_hdr(uint8_t *b, uint16_t type, uint64_t seq, int32_t result)
{
	hv_put_le32(b + offsetof(struct hvsim_abi_hdr, ah_magic), HVSIM_ABI_MAGIC);
	hv_put_le16(b + offsetof(struct hvsim_abi_hdr, ah_type),
		    (uint16_t)(type | HVSIM_ABI_REPLY));
	hv_put_le16(b + offsetof(struct hvsim_abi_hdr, ah_flags), 0);
	hv_put_le64(b + offsetof(struct hvsim_abi_hdr, ah_seq), seq);
	hv_put_le32(b + offsetof(struct hvsim_abi_reply, ar_result),
		    (uint32_t)result);
	hv_put_le32(b + offsetof(struct hvsim_abi_reply, ar_reserved), 0);
}

static void set_sock_events(struct hvs_partition *p)
{
	if (p->p_sock_w)
		hvs_loop_mod_fd(p->p_sock_w,
				p->p_tx_pending ? HVS_EV_OUT : HVS_EV_IN);
}

/* Try to send p_tx. 0 sent, -EAGAIN pending (socket full), <0 dead. */
static int tx_flush(struct hvs_partition *p)
{
	struct iovec iov = { .iov_base = p->p_tx, .iov_len = p->p_tx_len };
	struct msghdr mh;
	union {
		char buf[CMSG_SPACE(sizeof(int) * (HVSIM_ABI_WELCOME_FIXED_FDS +
						   HVSIM_ABI_MAX_VCPUS))];
		struct cmsghdr align;
	} cm;
	ssize_t r;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (p->p_tx_fds) {
		uint32_t n = HVSIM_ABI_WELCOME_FIXED_FDS + p->p_vcpus;
		struct cmsghdr *c;
		int *fds;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		fds = (int *)(void *)CMSG_DATA(c);
		fds[0] = p->p_ram_fd;
		fds[1] = p->p_sig_fd;
		fds[2] = p->p_sig_efd;
		for (uint32_t i = 0; i < p->p_vcpus; i++)
			fds[3 + i] = p->p_vcpu[i].v_doorbell;
	}
	do {
		r = sendmsg(p->p_sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		if (!p->p_tx_pending) {
			p->p_tx_pending = true;
			set_sock_events(p);
		}
		return -VMBUS_EAGAIN;
	}
	if (p->p_tx_pending) {
		p->p_tx_pending = false;
		set_sock_events(p);
	}
	if (r < 0) {
		HVS_INFO(p->p_name, "partition socket send failed: %s",
			 strerror(errno));
		return -errno;
	}
	p->p_tx_fds = false;
	return 0;
}

static int send_reply(struct hvs_partition *p, size_t len, bool fds)
{
	p->p_tx_len = len;
	p->p_tx_fds = fds;
	int r = tx_flush(p);
	if (r < 0 && r != -VMBUS_EAGAIN) {
		part_end(p, HVS_END_GONE);
		return r;
	}
	return 0;
}

static int reply_error(struct hvs_partition *p, uint16_t type, uint64_t seq,
		       int32_t result)
{
	reply_hdr(p->p_tx, type, seq, result);
	return send_reply(p, sizeof(struct hvsim_abi_reply), false);
}

/* ---- MSRs -------------------------------------------------------------- */

#define MSR_SYNIC_CHANGED 0x1
#define MSR_CRASHED       0x2
#define MSR_EOM_WRITTEN   0x4

static bool msr_known(uint32_t msr)
{
	switch (msr) {
	case HV_X64_MSR_GUEST_OS_ID:
	case HV_X64_MSR_HYPERCALL:
	case HV_X64_MSR_VP_INDEX:
	case HV_X64_MSR_TIME_REF_COUNT:
	case HV_X64_MSR_SCONTROL:
	case HV_X64_MSR_SVERSION:
	case HV_X64_MSR_SIEFP:
	case HV_X64_MSR_SIMP:
	case HV_X64_MSR_EOM:
		return true;
	default:
		return (msr >= HV_X64_MSR_SINT0 && msr <= HV_X64_MSR_SINT15) ||
		       (msr >= HV_X64_MSR_CRASH_P0 && msr <= HV_X64_MSR_CRASH_CTL);
	}
}

static uint64_t time_ref_count(const struct hvs_partition *p)
{
	return (hvs_now_ns() - p->p_t0_ns) / 100u;
}

uint64_t hvs_partition_ref_time(const struct hvs_partition *p)
{
	/* NOTE: the very value an RDMSR of TIME_REF_COUNT would answer now,
	 * so a guest can age a host timestamp by its own counter. */
	if (p == NULL || p->p_state == HVS_PART_WAIT_HELLO)
		return 0;
	return time_ref_count(p);
}

uint64_t hvs_partition_ref_time_at(void *partp)
{
	struct hvs_partition *const *pp = partp;

	return pp ? hvs_partition_ref_time(*pp) : 0;
}

static int msr_read(struct hvs_partition *p, uint32_t vp, uint32_t msr,
		    uint64_t *val)
{
	struct hvs_vcpu *v = &p->p_vcpu[vp];
	int r = 0;

	pthread_mutex_lock(&p->p_lock);
	switch (msr) {
	case HV_X64_MSR_GUEST_OS_ID: *val = p->p_guest_os_id; break;
	case HV_X64_MSR_HYPERCALL: *val = p->p_hypercall; break;
	case HV_X64_MSR_VP_INDEX: *val = vp; break;
	case HV_X64_MSR_TIME_REF_COUNT: *val = time_ref_count(p); break;
	case HV_X64_MSR_SCONTROL: *val = v->v_scontrol; break;
	case HV_X64_MSR_SVERSION: *val = HV_SYNIC_VERSION_1; break;
	case HV_X64_MSR_SIEFP: *val = v->v_siefp; break;
	case HV_X64_MSR_SIMP: *val = v->v_simp; break;
	case HV_X64_MSR_EOM: *val = 0; break;
	case HV_X64_MSR_CRASH_CTL: *val = p->p_crash_ctl; break;
	default:
		if (msr >= HV_X64_MSR_SINT0 && msr <= HV_X64_MSR_SINT15)
			*val = v->v_sint[msr - HV_X64_MSR_SINT0];
		else if (msr >= HV_X64_MSR_CRASH_P0 && msr <= HV_X64_MSR_CRASH_P4)
			*val = p->p_crash[msr - HV_X64_MSR_CRASH_P0];
		else
			r = HVSIM_ABI_EINVAL;
	}
	pthread_mutex_unlock(&p->p_lock);
	return r;
}

/*
 * Write an MSR. Returns 0 (with *stored = the value now held) or
 * HVSIM_ABI_EINVAL with *why set. *effects gets MSR_* bits.
 */
static int msr_write(struct hvs_partition *p, uint32_t vp, uint32_t msr,
		     uint64_t val, uint64_t *stored, unsigned *effects,
		     const char **why)
{
	struct hvs_vcpu *v = &p->p_vcpu[vp];
	int r = 0;

	*effects = 0;
	*why = "";
	pthread_mutex_lock(&p->p_lock);
	switch (msr) {
	case HV_X64_MSR_GUEST_OS_ID:
		p->p_guest_os_id = val;
		*stored = val;
		break;
	case HV_X64_MSR_HYPERCALL:
		if ((p->p_hypercall & HV_HYPERCALL_LOCKED) &&
		    (p->p_hypercall & HV_HYPERCALL_ENABLE)) {
			*stored = p->p_hypercall; /* locked until reset */
			break;
		}
		if ((val & HV_HYPERCALL_ENABLE) &&
		    (val & ~(uint64_t)HV_PAGE_MASK) >= p->p_ram_bytes) {
			*why = "hypercall page outside guest RAM";
			r = HVSIM_ABI_EINVAL;
			break;
		}
		p->p_hypercall = val;
		*stored = val;
		break;
	case HV_X64_MSR_SCONTROL:
		if (val & ~HV_SCONTROL_ENABLE) {
			*why = "SCONTROL reserved bits set";
			r = HVSIM_ABI_EINVAL;
			break;
		}
		v->v_scontrol = val;
		*stored = val;
		*effects = MSR_SYNIC_CHANGED;
		break;
	case HV_X64_MSR_SIMP:
	case HV_X64_MSR_SIEFP:
		/* NOTE: after this write is answered the old page is never
		 * touched again: every access happens under p_lock. */
		if ((val & HV_SIMP_ENABLE) && !page_in_ram(p, val)) {
			*why = msr == HV_X64_MSR_SIMP
				       ? "SIMP page 0 or outside guest RAM"
				       : "SIEFP page 0 or outside guest RAM";
			r = HVSIM_ABI_EINVAL;
			break;
		}
		if (msr == HV_X64_MSR_SIMP)
			v->v_simp = val;
		else
			v->v_siefp = val;
		*stored = val;
		*effects = MSR_SYNIC_CHANGED;
		break;
	case HV_X64_MSR_EOM:
		*stored = 0;
		*effects = MSR_EOM_WRITTEN;
		break;
	case HV_X64_MSR_VP_INDEX:
	case HV_X64_MSR_SVERSION:
	case HV_X64_MSR_TIME_REF_COUNT:
		*why = "write to a read-only MSR";
		r = HVSIM_ABI_EINVAL;
		break;
	case HV_X64_MSR_CRASH_CTL:
		p->p_crash_ctl = val;
		*stored = val;
		if (val & HV_CRASH_CTL_CRASH_NOTIFY)
			*effects = MSR_CRASHED;
		break;
	default:
		if (msr >= HV_X64_MSR_SINT0 && msr <= HV_X64_MSR_SINT15) {
			uint64_t vec = val & HV_SINT_VECTOR_MASK;
			if (val & HV_SINT_RSVD_MASK) {
				*why = "SINT reserved bits set";
				r = HVSIM_ABI_EINVAL;
			} else if (!(val & HV_SINT_MASKED) &&
				   vec < HV_SINT_VECTOR_MIN) {
				*why = "unmasked SINT with vector below 16";
				r = HVSIM_ABI_EINVAL;
			} else {
				v->v_sint[msr - HV_X64_MSR_SINT0] = val;
				*stored = val;
				*effects = MSR_SYNIC_CHANGED;
			}
		} else if (msr >= HV_X64_MSR_CRASH_P0 &&
			   msr <= HV_X64_MSR_CRASH_P4) {
			p->p_crash[msr - HV_X64_MSR_CRASH_P0] = val;
			*stored = val;
		} else {
			*why = "unknown MSR";
			r = HVSIM_ABI_EINVAL;
		}
	}
	if (r == 0 && (*effects & (MSR_SYNIC_CHANGED | MSR_EOM_WRITTEN))) {
		/* Deliver what waited for this vCPU (EOM, SIMP or SCONTROL
		 * enabled, SINT unmasked). */
		bool had_refused = p->p_msgq_refused;
		uint32_t before = p->p_msgq_len;

		flush_vcpu_locked(p, vp);
		if (had_refused && p->p_msgq_len < before) {
			p->p_msgq_refused = false;
			*effects |= MSR_SYNIC_CHANGED;
		}
	}
	pthread_mutex_unlock(&p->p_lock);
	return r;
}

static void handle_wrmsr(struct hvs_partition *p, uint64_t seq, size_t len)
{
	struct hvsim_abi_msr_reply *rep = (void *)p->p_tx;
	uint32_t vp, msr;
	uint64_t val, stored = 0;
	unsigned effects;
	const char *why;
	int r;

	if (len != HVSIM_ABI_WRMSR_LEN) {
		GUEST_ERR(p, c_malformed, "WRMSR of %zu bytes (want %u)", len,
			  HVSIM_ABI_WRMSR_LEN);
		reply_error(p, HVSIM_ABI_WRMSR, seq, HVSIM_ABI_EPROTO);
		return;
	}
	vp = hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_wrmsr, awm_vp));
	msr = hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_wrmsr, awm_msr));
	val = hv_get_le64(p->p_rx + offsetof(struct hvsim_abi_wrmsr, awm_value));
	if (vp >= p->p_vcpus) {
		GUEST_ERR(p, c_bad_vp, "WRMSR 0x%x on vp %u of %u", msr, vp,
			  p->p_vcpus);
		reply_error(p, HVSIM_ABI_WRMSR, seq, HVSIM_ABI_ERANGE);
		return;
	}
	r = msr_write(p, vp, msr, val, &stored, &effects, &why);
	if (r) {
		GUEST_ERR(p, c_bad_msr, "WRMSR 0x%x = 0x%llx on vp %u: %s", msr,
			  (unsigned long long)val, vp, why);
		reply_error(p, HVSIM_ABI_WRMSR, seq, r);
		return;
	}
	reply_hdr(p->p_tx, HVSIM_ABI_WRMSR, seq, 0);
	hv_put_le64(&rep->amr_value, stored);
	if (send_reply(p, sizeof(*rep), false) < 0)
		return;
	if (effects & MSR_SYNIC_CHANGED && p->p_ops->synic_changed) {
		p->p_ops->synic_changed(p->p_ops_arg, vp);
	}
	if (effects & MSR_CRASHED) {
		HVS_ERR(p->p_name,
			"guest crash: P0=0x%llx P1=0x%llx P2=0x%llx P3=0x%llx "
			"P4=0x%llx",
			(unsigned long long)p->p_crash[0],
			(unsigned long long)p->p_crash[1],
			(unsigned long long)p->p_crash[2],
			(unsigned long long)p->p_crash[3],
			(unsigned long long)p->p_crash[4]);
		part_end(p, HVS_END_CRASH);
	}
}

static void handle_rdmsr(struct hvs_partition *p, uint64_t seq, size_t len)
{
	struct hvsim_abi_msr_reply *rep = (void *)p->p_tx;
	uint32_t vp, msr;
	uint64_t val = 0;

	if (len != HVSIM_ABI_RDMSR_LEN) {
		GUEST_ERR(p, c_malformed, "RDMSR of %zu bytes (want %u)", len,
			  HVSIM_ABI_RDMSR_LEN);
		reply_error(p, HVSIM_ABI_RDMSR, seq, HVSIM_ABI_EPROTO);
		return;
	}
	vp = hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_rdmsr, arm_vp));
	msr = hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_rdmsr, arm_msr));
	if (vp >= p->p_vcpus) {
		GUEST_ERR(p, c_bad_vp, "RDMSR 0x%x on vp %u of %u", msr, vp,
			  p->p_vcpus);
		reply_error(p, HVSIM_ABI_RDMSR, seq, HVSIM_ABI_ERANGE);
		return;
	}
	if (!msr_known(msr) || msr_read(p, vp, msr, &val)) {
		GUEST_ERR(p, c_bad_msr, "RDMSR of unknown MSR 0x%x", msr);
		reply_error(p, HVSIM_ABI_RDMSR, seq, HVSIM_ABI_EINVAL);
		return;
	}
	reply_hdr(p->p_tx, HVSIM_ABI_RDMSR, seq, 0);
	hv_put_le64(&rep->amr_value, val);
	send_reply(p, sizeof(*rep), false);
}

/* ---- hypercalls ---------------------------------------------------------- */

/* Control bits that must be zero for the simple calls we implement:
 * variable header size, reserved 30:27, nested, rep count, reserved 47:44,
 * rep start, reserved 63:60. */
#define HC_CONTROL_MBZ (~(HV_HYPERCALL_CODE_MASK | HV_HYPERCALL_FAST))

static uint16_t hc_post_message(struct hvs_partition *p, uint32_t vp,
				const uint8_t *in, uint32_t in_len, bool fast)
{
	struct hv_post_message_input pm;
	uint32_t conn, rsvd, type, size;

	if (fast) {
		GUEST_ERR(p, c_hc_errors, "HvPostMessage as a fast call");
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	}
	if (in_len < offsetof(struct hv_post_message_input, pm_payload)) {
		GUEST_ERR(p, c_hc_errors, "HvPostMessage input of %u bytes",
			  in_len);
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	}
	memset(&pm, 0, sizeof(pm));
	memcpy(&pm, in, in_len < sizeof(pm) ? in_len : sizeof(pm));
	conn = hv_le32(pm.pm_connection_id);
	rsvd = hv_le32(pm.pm_rsvd);
	type = hv_le32(pm.pm_message_type);
	size = hv_le32(pm.pm_payload_size);
	if (size > HV_MESSAGE_PAYLOAD_MAX) {
		GUEST_ERR(p, c_hc_errors, "HvPostMessage payload size %u > 240",
			  size);
		return HV_STATUS_INVALID_PARAMETER;
	}
	if (type == 0 || (type & HV_MESSAGE_TYPE_HYPERVISOR)) {
		GUEST_ERR(p, c_hc_errors, "HvPostMessage message type 0x%x",
			  type);
		return HV_STATUS_INVALID_PARAMETER;
	}
	if (rsvd != 0 || (conn & ~HV_CONNECTION_ID_MASK)) {
		GUEST_ERR(p, c_hc_errors,
			  "HvPostMessage reserved bits set (conn 0x%x rsvd 0x%x)",
			  conn, rsvd);
		return HV_STATUS_INVALID_PARAMETER;
	}
	if (in_len < offsetof(struct hv_post_message_input, pm_payload) + size) {
		GUEST_ERR(p, c_hc_errors,
			  "HvPostMessage input of %u bytes, payload %u", in_len,
			  size);
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	}
	pthread_mutex_lock(&p->p_lock);
	uint32_t queued = p->p_msgq_len;
	pthread_mutex_unlock(&p->p_lock);
	if (queued + HVS_PARTITION_MSGQ_RESERVE >= p->p_msgq_limit) {
		/* The guest is not emptying its SIMP slots: push back. */
		GUEST_ERR(p, c_post_busy,
			  "HvPostMessage while %u host->guest messages wait: "
			  "INSUFFICIENT_BUFFERS", queued);
		return HV_STATUS_INSUFFICIENT_BUFFERS;
	}
	cnt(&p->c_posts);
	uint16_t st = p->p_ops->post_message(p->p_ops_arg, vp, conn, type,
					     pm.pm_payload, size);
	return st;
}

static uint16_t hc_signal_event(struct hvs_partition *p, const uint8_t *in,
				uint32_t in_len)
{
	uint32_t conn;
	uint16_t flag, rsvd;

	if (in_len < sizeof(struct hv_signal_event_input)) {
		GUEST_ERR(p, c_hc_errors, "HvSignalEvent input of %u bytes",
			  in_len);
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	}
	conn = hv_get_le32(in + offsetof(struct hv_signal_event_input,
					 se_connection_id));
	flag = hv_get_le16(in + offsetof(struct hv_signal_event_input,
					 se_flag_number));
	rsvd = hv_get_le16(in + offsetof(struct hv_signal_event_input, se_rsvdz));
	if (rsvd != 0 || (conn & ~HV_CONNECTION_ID_MASK)) {
		GUEST_ERR(p, c_hc_errors,
			  "HvSignalEvent reserved bits set (conn 0x%x rsvd 0x%x)",
			  conn, rsvd);
		return HV_STATUS_INVALID_PARAMETER;
	}
	cnt(&p->c_signals);
	uint16_t st = p->p_ops->signal_event(p->p_ops_arg, conn, flag);
	return st;
}

static void handle_hypercall(struct hvs_partition *p, uint64_t seq, size_t len)
{
	struct hvsim_abi_hypercall_reply *rep = (void *)p->p_tx;
	const size_t hlen = HVSIM_ABI_HYPERCALL_LEN;
	uint32_t vp, in_len;
	uint64_t control;
	uint16_t code, status;
	bool fast;
	const uint8_t *in = p->p_rx + hlen;

	if (len < hlen) {
		GUEST_ERR(p, c_malformed, "HYPERCALL of %zu bytes", len);
		reply_error(p, HVSIM_ABI_HYPERCALL, seq, HVSIM_ABI_EPROTO);
		return;
	}
	vp = hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_hypercall, ahc_vp));
	in_len = hv_get_le32(p->p_rx +
			     offsetof(struct hvsim_abi_hypercall, ahc_input_len));
	control = hv_get_le64(p->p_rx +
			      offsetof(struct hvsim_abi_hypercall, ahc_control));
	fast = (control & HV_HYPERCALL_FAST) != 0;
	code = (uint16_t)(control & HV_HYPERCALL_CODE_MASK);
	if (in_len > HVSIM_ABI_MAX_HC_INPUT || len != hlen + in_len ||
	    (fast && in_len != 16)) {
		GUEST_ERR(p, c_malformed,
			  "HYPERCALL input_len %u in a %zu-byte datagram%s",
			  in_len, len, fast ? " (fast call needs 16)" : "");
		reply_error(p, HVSIM_ABI_HYPERCALL, seq, HVSIM_ABI_EPROTO);
		return;
	}
	if (vp >= p->p_vcpus) {
		GUEST_ERR(p, c_bad_vp, "HYPERCALL on vp %u of %u", vp,
			  p->p_vcpus);
		reply_error(p, HVSIM_ABI_HYPERCALL, seq, HVSIM_ABI_ERANGE);
		return;
	}
	if (p->p_guest_os_id == 0 || !(p->p_hypercall & HV_HYPERCALL_ENABLE)) {
		GUEST_ERR(p, c_hc_errors,
			  "hypercall 0x%x before guest OS id and hypercall MSR",
			  code);
		status = HV_STATUS_INVALID_HYPERCALL_CODE;
	} else if (code != HV_CALL_POST_MESSAGE && code != HV_CALL_SIGNAL_EVENT) {
		GUEST_ERR(p, c_hc_errors, "unknown hypercall code 0x%x", code);
		status = HV_STATUS_INVALID_HYPERCALL_CODE;
	} else if (control & HC_CONTROL_MBZ) {
		GUEST_ERR(p, c_hc_errors,
			  "hypercall 0x%x control 0x%llx: reserved/rep bits set",
			  code, (unsigned long long)control);
		status = HV_STATUS_INVALID_HYPERCALL_INPUT;
	} else if (code == HV_CALL_POST_MESSAGE) {
		status = hc_post_message(p, vp, in, in_len, fast);
	} else {
		status = hc_signal_event(p, in, in_len);
	}
	if (p->p_state != HVS_PART_RUNNING)
		return; /* the server ended the partition */
	reply_hdr(p->p_tx, HVSIM_ABI_HYPERCALL, seq, 0);
	hv_put_le64(&rep->ahr_result, status);
	hv_put_le32(&rep->ahr_output_len, 0);
	hv_put_le32(&rep->ahr_reserved, 0);
	send_reply(p, sizeof(*rep), false);
}

static void handle_reset(struct hvs_partition *p, uint64_t seq, size_t len)
{
	uint32_t kind;

	/* NOTE: the body is one u32: 20 bytes, not sizeof the struct. */
	if (len != HVSIM_ABI_RESET_LEN) {
		GUEST_ERR(p, c_malformed, "RESET of %zu bytes", len);
		reply_error(p, HVSIM_ABI_RESET, seq, HVSIM_ABI_EPROTO);
		return;
	}
	kind = hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_reset, ars_kind));
	if (kind != HVSIM_RESET_POWER_OFF && kind != HVSIM_RESET_REBOOT) {
		GUEST_ERR(p, c_malformed, "RESET kind %u", kind);
		reply_error(p, HVSIM_ABI_RESET, seq, HVSIM_ABI_EINVAL);
		return;
	}
	HVS_INFO(p->p_name, "guest requested %s",
		 kind == HVSIM_RESET_REBOOT ? "reboot" : "power off");
	if (reply_error(p, HVSIM_ABI_RESET, seq, 0) < 0)
		return;
	part_end(p, kind == HVSIM_RESET_REBOOT ? HVS_END_REBOOT
					       : HVS_END_POWER_OFF);
}

/* ---- HELLO ----------------------------------------------------------------- */

int hvs_abi_parse_hello(const void *buf, size_t len, char name_out[65])
{
	const uint8_t *b = buf;
	uint32_t ver, nlen;

	name_out[0] = 0;
	if (len < HVSIM_ABI_HELLO_MIN_LEN ||
	    hv_get_le32(b + offsetof(struct hvsim_abi_hdr, ah_magic)) !=
		    HVSIM_ABI_MAGIC ||
	    hv_get_le16(b + offsetof(struct hvsim_abi_hdr, ah_type)) !=
		    HVSIM_ABI_HELLO ||
	    hv_get_le16(b + offsetof(struct hvsim_abi_hdr, ah_flags)) != 0)
		return -VMBUS_EPROTO;
	ver = hv_get_le32(b + offsetof(struct hvsim_abi_hello, ahh_abi_version));
	nlen = hv_get_le32(b + offsetof(struct hvsim_abi_hello, ahh_name_len));
	if (nlen > HVSIM_ABI_MAX_NAME || len != HVSIM_ABI_HELLO_MIN_LEN + nlen)
		return -VMBUS_EPROTO;
	for (uint32_t i = 0; i < nlen; i++) {
		uint8_t c = b[HVSIM_ABI_HELLO_MIN_LEN + i];
		if (c < 0x20 || c == 0x7f)
			return -VMBUS_EPROTO;
		name_out[i] = (char)c;
	}
	name_out[nlen] = 0;
	if (ver != HVSIM_ABI_VERSION)
		return -VMBUS_EOPNOTSUPP;
	return 0;
}

static void handle_hello(struct hvs_partition *p, uint64_t seq, size_t len)
{
	struct hvsim_abi_welcome *w = (void *)p->p_tx;
	char name[HVSIM_ABI_MAX_NAME + 1];
	int r = hvs_abi_parse_hello(p->p_rx, len, name);

	if (r == -VMBUS_EOPNOTSUPP) {
		GUEST_ERR(p, c_malformed, "HELLO with abi_version %u",
			  hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_hello,
							 ahh_abi_version)));
		if (reply_error(p, HVSIM_ABI_HELLO, seq, HVSIM_ABI_EOPNOTSUPP) == 0)
			part_end(p, HVS_END_GONE);
		return;
	}
	if (r < 0) {
		GUEST_ERR(p, c_malformed, "malformed HELLO (%zu bytes)", len);
		if (reply_error(p, HVSIM_ABI_HELLO, seq, HVSIM_ABI_EPROTO) == 0)
			part_end(p, HVS_END_GONE);
		return;
	}
	if (name[0] && strcmp(name, p->p_name))
		HVS_INFO(p->p_name, "guest calls its VM \"%s\"", name);
	hvs_loop_timer_cancel(p->p_hello_timer);
	p->p_hello_timer = NULL;
	p->p_t0_ns = hvs_now_ns();
	p->p_state = HVS_PART_RUNNING;
	reply_hdr(p->p_tx, HVSIM_ABI_HELLO, seq, 0);
	hv_put_le32(&w->aw_abi_version, HVSIM_ABI_VERSION);
	hv_put_le32(&w->aw_vcpu_count, p->p_vcpus);
	hv_put_le64(&w->aw_ram_bytes, p->p_ram_bytes);
	hv_put_le32(&w->aw_fd_count, HVSIM_ABI_WELCOME_FIXED_FDS + p->p_vcpus);
	hv_put_le32(&w->aw_reserved, 0);
	if (send_reply(p, sizeof(*w), true) == 0)
		HVS_INFO(p->p_name, "guest attached: %u vCPU(s), %llu MiB",
			 p->p_vcpus,
			 (unsigned long long)(p->p_ram_bytes >> 20));
}

/* ---- datagram dispatch ---------------------------------------------------- */

static void handle_dgram(struct hvs_partition *p, size_t len, bool trunc)
{
	uint32_t magic;
	uint16_t type, flags;
	uint64_t seq;

	if (len < sizeof(struct hvsim_abi_hdr)) {
		GUEST_ERR(p, c_malformed, "datagram of %zu bytes: disconnecting",
			  len);
		part_end(p, HVS_END_GONE);
		return;
	}
	magic = hv_get_le32(p->p_rx + offsetof(struct hvsim_abi_hdr, ah_magic));
	type = hv_get_le16(p->p_rx + offsetof(struct hvsim_abi_hdr, ah_type));
	flags = hv_get_le16(p->p_rx + offsetof(struct hvsim_abi_hdr, ah_flags));
	seq = hv_get_le64(p->p_rx + offsetof(struct hvsim_abi_hdr, ah_seq));
	cnt(&p->c_requests);

	if (p->p_state == HVS_PART_WAIT_HELLO) {
		if (magic != HVSIM_ABI_MAGIC || type != HVSIM_ABI_HELLO ||
		    trunc) {
			GUEST_ERR(p, c_malformed,
				  "first datagram is not a HELLO (magic 0x%x "
				  "type 0x%x): disconnecting", magic, type);
			part_end(p, HVS_END_GONE);
			return;
		}
		handle_hello(p, seq, len);
		return;
	}
	if (magic != HVSIM_ABI_MAGIC || flags != 0 || trunc) {
		GUEST_ERR(p, c_malformed,
			  "malformed datagram (magic 0x%x flags 0x%x%s)", magic,
			  flags, trunc ? ", truncated" : "");
		reply_error(p, type, seq, HVSIM_ABI_EPROTO);
		return;
	}
	/* NOTE: signals are ordered before the guest's next request. */
	drain_signals(p);
	if (p->p_state != HVS_PART_RUNNING)
		return;
	switch (type) {
	case HVSIM_ABI_HELLO:
		GUEST_ERR(p, c_malformed, "second HELLO: disconnecting");
		part_end(p, HVS_END_GONE);
		break;
	case HVSIM_ABI_WRMSR:
		handle_wrmsr(p, seq, len);
		break;
	case HVSIM_ABI_RDMSR:
		handle_rdmsr(p, seq, len);
		break;
	case HVSIM_ABI_HYPERCALL:
		handle_hypercall(p, seq, len);
		break;
	case HVSIM_ABI_RESET:
		handle_reset(p, seq, len);
		break;
	default:
		GUEST_ERR(p, c_malformed, "unknown request type 0x%x", type);
		reply_error(p, type, seq, HVSIM_ABI_EPROTO);
	}
}

static void sock_cb(void *arg, int fd, uint32_t events)
{
	struct hvs_partition *p = arg;

	(void)fd;
	if (p->p_tx_pending) {
		int r = tx_flush(p);
		if (r == -VMBUS_EAGAIN)
			return;
		if (r < 0) {
			part_end(p, HVS_END_GONE);
			return;
		}
		/* The reply went out: requests may be waiting behind it. */
		events |= HVS_EV_IN;
	}
	if (!(events & (HVS_EV_IN | HVS_EV_HUP | HVS_EV_ERR)))
		return;
	for (int i = 0; i < DGRAMS_PER_WAKEUP; i++) {
		struct iovec iov = { .iov_base = p->p_rx,
				     .iov_len = sizeof(p->p_rx) };
		union {
			char buf[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} cm;
		struct msghdr mh;
		ssize_t r;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		r = recvmsg(p->p_sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			HVS_INFO(p->p_name, "partition socket: %s",
				 strerror(errno));
			part_end(p, HVS_END_GONE);
			return;
		}
		/* The ABI passes no fds to the host: close any we got.
		 * NOTE: before the EOF test: a 0-byte datagram reads as 0
		 * too and may carry fds (found by fuzz_host_abi). */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
		     c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS) {
				size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				int *fds = (int *)(void *)CMSG_DATA(c);
				for (size_t k = 0; k < n; k++)
					close(fds[k]);
				GUEST_ERR(p, c_malformed,
					  "guest passed %zu fd(s); closed", n);
			}
		}
		if (r == 0) {
			HVS_INFO(p->p_name, "guest closed the partition socket");
			part_end(p, HVS_END_GONE);
			return;
		}
		handle_dgram(p, (size_t)r, (mh.msg_flags & MSG_TRUNC) != 0);
		if (p->p_state == HVS_PART_ENDED || p->p_tx_pending)
			return;
	}
}

static void hello_timeout_cb(void *arg)
{
	struct hvs_partition *p = arg;

	p->p_hello_timer = NULL; /* one-shot: freed by the loop */
	if (p->p_state != HVS_PART_WAIT_HELLO)
		return;
	HVS_WARN(p->p_name, "no HELLO from the guest in time: ending");
	part_end(p, HVS_END_GONE);
}

/* ---- life cycle ----------------------------------------------------------- */

const char *hvs_partition_state_name(enum hvs_partition_state s)
{
	switch (s) {
	case HVS_PART_WAIT_HELLO: return "waiting";
	case HVS_PART_RUNNING: return "running";
	case HVS_PART_ENDED: return "ended";
	}
	return "?";
}

const char *hvs_partition_end_name(int kind)
{
	switch (kind) {
	case HVS_END_POWER_OFF: return "power-off";
	case HVS_END_REBOOT: return "reboot";
	case HVS_END_CRASH: return "crash";
	case HVS_END_GONE: return "gone";
	}
	return "?";
}

static void part_end(struct hvs_partition *p, int kind)
{
	if (p->p_state == HVS_PART_ENDED)
		return;
	p->p_state = HVS_PART_ENDED;
	p->p_end_kind = kind;
	HVS_INFO(p->p_name, "partition ended (%s)", hvs_partition_end_name(kind));
	hvs_loop_timer_cancel(p->p_hello_timer);
	p->p_hello_timer = NULL;
	hvs_loop_del_fd(p->p_sock_w);
	p->p_sock_w = NULL;
	hvs_loop_del_fd(p->p_sig_w);
	p->p_sig_w = NULL;
	pthread_mutex_lock(&p->p_lock);
	p->p_live = false;
	pthread_mutex_unlock(&p->p_lock);
	/* NOTE: ops->ended runs before RAM is unmapped; the server stops its
	 * VSPs there and touches guest memory no more. */
	if (p->p_ops && p->p_ops->ended)
		p->p_ops->ended(p->p_ops_arg, kind);
	pthread_mutex_lock(&p->p_lock);
	if (p->p_ram) {
		munmap(p->p_ram, p->p_ram_bytes);
		p->p_ram = NULL;
	}
	windows_unmap_all_locked(p);
	pthread_mutex_unlock(&p->p_lock);
	if (p->p_sock >= 0) {
		close(p->p_sock);
		p->p_sock = -1;
	}
	if (p->p_host_ended)
		p->p_host_ended(p->p_host_arg, p, kind);
}

void hvs_partition_stop(struct hvs_partition *p, int kind)
{
	if (p)
		part_end(p, kind);
}

static void free_all(struct hvs_partition *p)
{
	if (p->p_vcpu) {
		for (uint32_t i = 0; i < p->p_vcpus; i++)
			if (p->p_vcpu[i].v_doorbell >= 0)
				close(p->p_vcpu[i].v_doorbell);
		free(p->p_vcpu);
	}
	free(p->p_nodes);
	if (p->p_ram)
		munmap(p->p_ram, p->p_ram_bytes);
	if (p->p_sig)
		munmap(p->p_sig, HVSIM_ABI_SIGNAL_PAGE_BYTES);
	if (p->p_ram_fd >= 0)
		close(p->p_ram_fd);
	if (p->p_sig_fd >= 0)
		close(p->p_sig_fd);
	if (p->p_sig_efd >= 0)
		close(p->p_sig_efd);
	pthread_mutex_destroy(&p->p_lock);
	free(p);
}

void hvs_partition_destroy(struct hvs_partition *p)
{
	if (!p)
		return;
	part_end(p, HVS_END_GONE);
	free_all(p);
}

static int sealed_memfd(const char *what, uint64_t size, int *fd_out,
			void **map_out)
{
	int fd = memfd_create(what, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *m;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		close(fd);
		return -e;
	}
	*fd_out = fd;
	*map_out = m;
	return 0;
}

int hvs_partition_create(struct hvs_loop *loop,
			 const struct hvs_partition_config *cfg,
			 struct hvs_partition **out)
{
	struct hvs_partition *p;
	void *m;
	int r;

	*out = NULL;
	if (!loop || !cfg || !cfg->name || !cfg->name[0] ||
	    strlen(cfg->name) > HVSIM_ABI_MAX_NAME || cfg->vcpus == 0 ||
	    cfg->vcpus > HVSIM_ABI_MAX_VCPUS || cfg->ram_bytes == 0 ||
	    cfg->ram_bytes % HVSIM_ABI_RAM_ALIGN || !cfg->ops ||
	    !cfg->ops->post_message || !cfg->ops->signal_event ||
	    cfg->sock_fd < 0 || cfg->first_len > HVSIM_ABI_MAX_DGRAM ||
	    (cfg->first_len && !cfg->first_dgram))
		return -VMBUS_EINVAL;
	if (cfg->ram_bytes > (uint64_t)SIZE_MAX / 2)
		return -VMBUS_EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -VMBUS_ENOMEM;
	pthread_mutex_init(&p->p_lock, NULL);
	p->p_ram_fd = p->p_sig_fd = p->p_sig_efd = p->p_sock = -1;
	strcpy(p->p_name, cfg->name);
	p->p_loop = loop;
	p->p_ops = cfg->ops;
	p->p_ops_arg = cfg->ops_arg;
	p->p_host_ended = cfg->host_ended;
	p->p_host_arg = cfg->host_arg;
	p->p_vcpus = cfg->vcpus;
	p->p_ram_bytes = cfg->ram_bytes;
	p->p_msgq_limit = cfg->msgq_limit ? cfg->msgq_limit
					  : HVS_PARTITION_MSGQ_DEFAULT;
	if (p->p_msgq_limit < 2 * HVS_PARTITION_MSGQ_RESERVE)
		p->p_msgq_limit = 2 * HVS_PARTITION_MSGQ_RESERVE;
	if (p->p_msgq_limit > 65536)
		p->p_msgq_limit = 65536;
	p->p_state = HVS_PART_WAIT_HELLO;

	p->p_vcpu = calloc(p->p_vcpus, sizeof(*p->p_vcpu));
	p->p_nodes = calloc(p->p_msgq_limit, sizeof(*p->p_nodes));
	if (!p->p_vcpu || !p->p_nodes) {
		free(p->p_vcpu);
		p->p_vcpu = NULL;
		r = -VMBUS_ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < p->p_msgq_limit; i++)
		msgq_free_node(p, &p->p_nodes[i]);
	for (uint32_t i = 0; i < p->p_vcpus; i++)
		p->p_vcpu[i].v_doorbell = -1;
	for (uint32_t i = 0; i < p->p_vcpus; i++) {
		struct hvs_vcpu *v = &p->p_vcpu[i];
		for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
			v->v_sint[s] = HV_SINT_DEFAULT;
		v->v_doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (v->v_doorbell < 0) {
			r = -errno;
			goto fail;
		}
	}
	r = sealed_memfd("hvsim-ram", p->p_ram_bytes, &p->p_ram_fd, &m);
	if (r < 0)
		goto fail;
	p->p_ram = m;
	r = sealed_memfd("hvsim-signal", HVSIM_ABI_SIGNAL_PAGE_BYTES,
			 &p->p_sig_fd, &m);
	if (r < 0)
		goto fail;
	p->p_sig = m;
	p->p_sig_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->p_sig_efd < 0) {
		r = -errno;
		goto fail;
	}
	p->p_sock_w = hvs_loop_add_fd(loop, cfg->sock_fd, HVS_EV_IN, sock_cb, p);
	if (!p->p_sock_w) {
		r = -errno;
		goto fail;
	}
	p->p_sig_w = hvs_loop_add_fd(loop, p->p_sig_efd, HVS_EV_IN, sig_cb, p);
	if (!p->p_sig_w) {
		r = -errno;
		hvs_loop_del_fd(p->p_sock_w);
		p->p_sock_w = NULL;
		goto fail;
	}
	if (cfg->hello_timeout_ns)
		p->p_hello_timer = hvs_loop_timer_add(loop, cfg->hello_timeout_ns,
						      0, hello_timeout_cb, p);
	p->p_live = true;
	p->p_sock = cfg->sock_fd;
	*out = p;
	if (cfg->first_len) {
		memcpy(p->p_rx, cfg->first_dgram, cfg->first_len);
		handle_dgram(p, cfg->first_len, false);
	}
	return 0;
fail:
	free_all(p);
	return r;
}

void hvs_partition_get_stats(struct hvs_partition *p,
			     struct hvs_partition_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&p->p_lock);
	st->ps_msgq_len = p->p_msgq_len;
	st->ps_msgq_max = p->p_msgq_max;
	st->ps_windows = p->p_nwindows;
	st->ps_window_pages = p->p_window_pages;
	st->ps_windows_total = p->p_windows_total;
	pthread_mutex_unlock(&p->p_lock);
	st->ps_state = p->p_state;
	st->ps_end_kind = p->p_end_kind;
	st->ps_vcpus = p->p_vcpus;
	st->ps_ram_bytes = p->p_ram_bytes;
	st->ps_requests = ld(&p->c_requests);
	st->ps_malformed = ld(&p->c_malformed);
	st->ps_bad_vp = ld(&p->c_bad_vp);
	st->ps_bad_msr = ld(&p->c_bad_msr);
	st->ps_hc_errors = ld(&p->c_hc_errors);
	st->ps_posts = ld(&p->c_posts);
	st->ps_post_busy = ld(&p->c_post_busy);
	st->ps_signals = ld(&p->c_signals);
	st->ps_msgs_delivered = ld(&p->c_delivered);
	st->ps_msgq_full = ld(&p->c_msgq_full);
	st->ps_events = ld(&p->c_events);
	st->ps_events_dropped = ld(&p->c_events_dropped);
	st->ps_doorbells = ld(&p->c_doorbells);
	st->ps_gpa_faults = ld(&p->c_gpa_faults);
	if (p->p_end_kind == HVS_END_CRASH)
		memcpy(st->ps_crash, p->p_crash, sizeof(st->ps_crash));
}
