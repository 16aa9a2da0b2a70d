/*
 * tests/fuzz/fuzzport.c - the scripted guest port (see fuzzport.h).
 * Test code: libc freely; written for the fuzzers, independent of
 * tests/guest/fakeport.c and of src/host.
 */
#include "fuzzport.h"

#include <sanitizer/asan_interface.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>

#include "fuzz_common.h"
#include "hv/vmbus_pkt.h"
#include "hv/wire.h"

/* ---- memory ---------------------------------------------------------- */

void *fzp_gpa(struct fzp *fp, uint64_t gpa, size_t len)
{
	uint64_t pfn = gpa >> HV_PAGE_SHIFT;

	for (int i = 0; i < FZP_MAX_ALLOCS; i++) {
		struct fzp_alloc *a = &fp->fp_alloc[i];

		if (!a->a_live || pfn < a->a_pfn0 ||
		    pfn >= a->a_pfn0 + a->a_npages)
			continue;
		if (gpa + len > (a->a_pfn0 + a->a_npages) << HV_PAGE_SHIFT)
			return NULL;
		return (uint8_t *)a->a_va + (gpa - (a->a_pfn0 << HV_PAGE_SHIFT));
	}
	return NULL;
}

uint64_t fzp_gpadl_pfn(const struct fzp_gpadl *g, uint32_t i)
{
	uint32_t off = 8u + 8u * i;

	if (off + 8u > g->g_got || off + 8u > FZP_STREAM_MAX)
		return 0;
	return hv_get_le64(g->g_stream + off);
}

/* Is pfn named by a GPADL the host still holds? Returns its handle or 0. */
static uint32_t held_by_gpadl(const struct fzp *fp, uint64_t pfn)
{
	for (int i = 0; i < FZP_MAX_GPADLS; i++) {
		const struct fzp_gpadl *g = &fp->fp_gpadl[i];
		uint32_t len = g->g_got < FZP_STREAM_MAX ? g->g_got
							 : FZP_STREAM_MAX;
		uint32_t pos = 0;

		if (!g->g_used || !g->g_held)
			continue;
		/* Walk the range stream: (byte_count, byte_offset, PFNs). */
		while (pos + 8u <= len) {
			uint32_t bc = hv_get_le32(g->g_stream + pos);
			uint32_t bo = hv_get_le32(g->g_stream + pos + 4);
			uint64_t n = ((uint64_t)bo + bc + HV_PAGE_SIZE - 1) /
				     HV_PAGE_SIZE;

			pos += 8u;
			for (uint64_t k = 0; k < n && pos + 8u <= len; k++) {
				if (hv_get_le64(g->g_stream + pos) == pfn)
					return g->g_handle;
				pos += 8u;
			}
		}
	}
	return 0;
}

/*
 * Guest pages freed by one input, kept for an allocation of the same size
 * by a later one: fresh pages for every ring and pool (page faults, and
 * the allocator's own bookkeeping) were a seventh of a guest harness's
 * time. While kept they are poisoned, so a guest touching memory it freed
 * is still an ASan report.
 */
#define PAGE_CACHE_BLOCKS 64
#define PAGE_CACHE_PAGES  8192u
static struct {
	void  *c_va;
	size_t c_npages;
} s_page_cache[PAGE_CACHE_BLOCKS];
static size_t s_page_cache_pages;

static void *pages_get(size_t npages)
{
	size_t bytes = npages * HV_PAGE_SIZE;
	void *va = NULL;

	for (int i = 0; i < PAGE_CACHE_BLOCKS && va == NULL; i++)
		if (s_page_cache[i].c_va != NULL &&
		    s_page_cache[i].c_npages == npages) {
			va = s_page_cache[i].c_va;
			s_page_cache[i].c_va = NULL;
			s_page_cache_pages -= npages;
			ASAN_UNPOISON_MEMORY_REGION(va, bytes);
		}
	if (va == NULL)
		va = aligned_alloc(HV_PAGE_SIZE, bytes);
	if (va != NULL)
		memset(va, 0, bytes);
	return va;
}

static void pages_put(void *va, size_t npages)
{
	for (int i = 0; i < PAGE_CACHE_BLOCKS; i++)
		if (s_page_cache[i].c_va == NULL &&
		    s_page_cache_pages + npages <= PAGE_CACHE_PAGES) {
			ASAN_POISON_MEMORY_REGION(va, npages * HV_PAGE_SIZE);
			s_page_cache[i].c_va = va;
			s_page_cache[i].c_npages = npages;
			s_page_cache_pages += npages;
			return;
		}
	free(va);
}

static void *fzp_page_alloc(void *ctx, size_t npages, uint64_t *pfns)
{
	struct fzp *fp = ctx;

	if (npages == 0 || npages > 4096)
		return NULL;
	for (int i = 0; i < FZP_MAX_ALLOCS; i++) {
		struct fzp_alloc *a = &fp->fp_alloc[i];

		if (a->a_live)
			continue;
		a->a_va = pages_get(npages);
		if (a->a_va == NULL)
			return NULL;
		a->a_npages = npages;
		a->a_pfn0 = fp->fp_next_pfn;
		/* A gap after each allocation: no accidental contiguity. */
		fp->fp_next_pfn += npages + 3;
		a->a_live = true;
		for (size_t p = 0; p < npages; p++)
			pfns[p] = a->a_pfn0 + p;
		fp->fp_pages_live += npages;
		return a->a_va;
	}
	return NULL;
}

static int fzp_page_free(void *ctx, void *va, size_t npages)
{
	struct fzp *fp = ctx;

	for (int i = 0; i < FZP_MAX_ALLOCS; i++) {
		struct fzp_alloc *a = &fp->fp_alloc[i];

		if (!a->a_live || a->a_va != va)
			continue;
		FZ_CHECK(a->a_npages == npages, "page_free of %zu pages, "
			 "allocated %zu", npages, a->a_npages);
		for (size_t p = 0; p < npages; p++) {
			uint64_t pfn = a->a_pfn0 + p;
			uint32_t h = held_by_gpadl(fp, pfn);

			FZ_CHECK(h == 0, "guest freed PFN 0x%llx while the host "
				 "still holds GPADL 0x%x on it",
				 (unsigned long long)pfn, h);
			for (uint32_t v = 0; v < fp->fp_nvcpu; v++) {
				FZ_CHECK(!((fp->fp_simp[v] & HV_SIMP_ENABLE) &&
					   fp->fp_simp[v] >> HV_PAGE_SHIFT == pfn),
					 "guest freed the enabled SIMP of vp %u", v);
				FZ_CHECK(!((fp->fp_siefp[v] & HV_SIEFP_ENABLE) &&
					   fp->fp_siefp[v] >> HV_PAGE_SHIFT == pfn),
					 "guest freed the enabled SIEFP of vp %u", v);
			}
		}
		/* The host forgets rings in freed memory (it must have
		 * been told; the checks above say whether it was). */
		for (int c = 0; c < FZP_MAX_CHANS; c++) {
			struct fzp_chan *ch = &fp->fp_chan[c];

			if (ch->c_bound && ch->c_base >= (uint8_t *)a->a_va &&
			    ch->c_base < (uint8_t *)a->a_va + npages * HV_PAGE_SIZE)
				ch->c_bound = false;
		}
		pages_put(a->a_va, npages);
		a->a_va = NULL;
		a->a_live = false;
		fp->fp_pages_live -= npages;
		return 0;
	}
	FZ_CHECK(0, "page_free of unknown memory %p", va);
	return -VMBUS_EINVAL;
}

static int fzp_virt_to_gpa(void *ctx, const void *va, uint64_t *gpa)
{
	struct fzp *fp = ctx;

	for (int i = 0; i < FZP_MAX_ALLOCS; i++) {
		struct fzp_alloc *a = &fp->fp_alloc[i];
		const uint8_t *b = a->a_va, *p = va;

		if (a->a_live && p >= b && p < b + a->a_npages * HV_PAGE_SIZE) {
			*gpa = (a->a_pfn0 << HV_PAGE_SHIFT) + (uint64_t)(p - b);
			return 0;
		}
	}
	return -VMBUS_EFAULT;
}

struct fzp_heap {
	struct fzp_heap *h_prev, *h_next;
	max_align_t h_align[];
};

static void *fzp_zalloc(void *ctx, size_t bytes)
{
	struct fzp *fp = ctx;
	struct fzp_heap *h;

	if (!fp->fp_track_heap)
		return calloc(1, bytes ? bytes : 1);
	h = calloc(1, sizeof(*h) + bytes);
	if (h == NULL)
		return NULL;
	h->h_next = fp->fp_heap;
	if (h->h_next != NULL)
		h->h_next->h_prev = h;
	fp->fp_heap = h;
	return h->h_align;
}

static void fzp_free(void *ctx, void *p, size_t bytes)
{
	struct fzp *fp = ctx;
	struct fzp_heap *h;

	(void)bytes;
	if (!fp->fp_track_heap || p == NULL) {
		free(p);
		return;
	}
	h = (struct fzp_heap *)((uint8_t *)p - offsetof(struct fzp_heap,
						       h_align));
	if (h->h_prev != NULL)
		h->h_prev->h_next = h->h_next;
	else
		fp->fp_heap = h->h_next;
	if (h->h_next != NULL)
		h->h_next->h_prev = h->h_prev;
	free(h);
}

/* ---- the script -------------------------------------------------------- */

bool fzp_done(const struct fzp *fp)
{
	return fp->fp_spos >= fp->fp_slen;
}

void fzp_advance(struct fzp *fp)
{
	if (fp->fp_activity != fp->fp_activity_seen) {
		fp->fp_activity_seen = fp->fp_activity;
		fp->fp_quiet_steps = 0;
		fp->fp_quiet_ns = 0;
		fp->fp_tick = FZP_TICK;
	} else if (++fp->fp_quiet_steps > FZP_QUIET_STEPS &&
		   fp->fp_tick < FZP_TICK_MAX) {
		fp->fp_tick *= 2;
	}
	fp->fp_now += fp->fp_tick;
	fp->fp_quiet_ns += fp->fp_tick;
}

bool fzp_stuck(const struct fzp *fp)
{
	return fp->fp_activity == fp->fp_activity_seen &&
	       fp->fp_quiet_ns >= FZP_STUCK_NS;
}

static uint8_t s_u8(struct fzp *fp, size_t *pos)
{
	return *pos < fp->fp_slen ? fp->fp_s[(*pos)++] : 0;
}

/*
 * The next n script bytes into out; past the end of the script only what is
 * left (out keeps its contents beyond that), as n calls of s_u8 would give
 * on a zeroed out. One bounded copy: a byte loop here was vectorised by
 * gcc -O3 into 16-byte stores it then flagged as overflowing pl.
 */
static size_t s_bytes(struct fzp *fp, size_t *pos, uint8_t *out, size_t n)
{
	size_t left = *pos < fp->fp_slen ? fp->fp_slen - *pos : 0;

	if (n > left)
		n = left;
	if (n != 0 && out != NULL)
		memcpy(out, fp->fp_s + *pos, n);
	*pos += n;
	return n;
}

/* n script bytes into out, zeros for those past the end (n calls of
 * s_u8). */
static void s_fill(struct fzp *fp, size_t *pos, uint8_t *out, size_t n)
{
	size_t got = s_bytes(fp, pos, out, n);

	memset(out + got, 0, n - got);
}

/* Past n script bytes (n calls of s_u8). */
static void s_skip(struct fzp *fp, size_t *pos, size_t n)
{
	(void)s_bytes(fp, pos, NULL, n);
}

static uint16_t s_u16(struct fzp *fp, size_t *pos)
{
	uint16_t lo = s_u8(fp, pos);

	return (uint16_t)(lo | (uint16_t)s_u8(fp, pos) << 8);
}

static uint32_t s_u32(struct fzp *fp, size_t *pos)
{
	uint32_t lo = s_u16(fp, pos);

	return lo | (uint32_t)s_u16(fp, pos) << 16;
}

/*
 * The host let go of memory with a message: GPADL_CREATED with a failure
 * status, GPADL_TORNDOWN, UNLOAD_RESPONSE. A guest cannot tell when the
 * host wrote a message into its slot, only when it read it, so a notice
 * counts whenever it was delivered: before or after the guest's own
 * GPADL_HEADER / GPADL_TEARDOWN / UNLOAD (a host that answers early and
 * keeps using the memory lies, and no guest can defend against that).
 */
static void apply_notices(struct fzp *fp)
{
	for (unsigned k = 0; k < fp->fp_nnotice && k < FZP_MAX_NOTICES; k++) {
		const struct fzp_notice *n = &fp->fp_notice[k];

		for (int i = 0; i < FZP_MAX_GPADLS; i++) {
			struct fzp_gpadl *g = &fp->fp_gpadl[i];

			if (!g->g_used || !g->g_held)
				continue;
			if ((n->n_why == 0 && g->g_handle == n->n_handle &&
			     g->g_relid == n->n_relid) ||
			    (n->n_why == 1 && g->g_handle == n->n_handle &&
			     g->g_teardown_sent) ||
			    (n->n_why == 2 && fp->fp_unload_sent))
				g->g_held = false;
		}
	}
}

static void notice(struct fzp *fp, int why, uint32_t handle, uint32_t relid)
{
	struct fzp_notice *n =
		&fp->fp_notice[fp->fp_nnotice++ % FZP_MAX_NOTICES];

	n->n_why = why;
	n->n_handle = handle;
	n->n_relid = relid;
	apply_notices(fp);
}

/* What the host tells the guest with a delivered message. */
static void note_delivered(struct fzp *fp, uint32_t hm_type,
			   const uint8_t *pl, uint32_t n)
{
	uint32_t type;

	if (hm_type != VMBUS_MESSAGE_TYPE || n < 8)
		return;
	type = hv_get_le32(pl);
	if (type == VMBUS_CHANMSG_GPADL_CREATED && n >= 20 &&
	    hv_get_le32(pl + 16) != 0)
		notice(fp, 0, hv_get_le32(pl + 12), hv_get_le32(pl + 8));
	else if (type == VMBUS_CHANMSG_GPADL_TORNDOWN && n >= 12)
		notice(fp, 1, hv_get_le32(pl + 8), 0);
	else if (type == VMBUS_CHANMSG_UNLOAD_RESPONSE)
		notice(fp, 2, 0, 0);
}

static struct hv_message *msg_slot(struct fzp *fp)
{
	uint32_t vp = fp->fp_msg_vp;
	uint64_t simp = fp->fp_simp[vp];
	struct hv_message_page *pg;

	if (!(simp & HV_SIMP_ENABLE) || !(fp->fp_scontrol[vp] & 1))
		return NULL;
	pg = fzp_gpa(fp, simp & ~(uint64_t)HV_PAGE_MASK, HV_PAGE_SIZE);
	return pg ? &pg->mp_slot[VMBUS_MESSAGE_SINT] : NULL;
}

/* Try to deliver the MSG op at *pos. true = delivered (advance). */
static bool deliver(struct fzp *fp, size_t *pos)
{
	struct hv_message *slot = msg_slot(fp);
	_Atomic uint64_t *w;
	uint64_t old, hdr;
	uint32_t hm_type;
	uint8_t size, flags, n;
	uint8_t pl[HV_MESSAGE_PAYLOAD_MAX];

	if (slot == NULL)
		return false;
	w = (_Atomic uint64_t *)(void *)slot;
	old = atomic_load(w);
	if ((uint32_t)hv_le64(old) != HV_MESSAGE_TYPE_NONE) {
		/* Busy: mark pending (CAS requires the type to stay set). */
		while ((uint32_t)hv_le64(old) != HV_MESSAGE_TYPE_NONE &&
		       !(hv_le64(old) & ((uint64_t)HV_MESSAGE_FLAG_PENDING << 40)) &&
		       !atomic_compare_exchange_weak(w, &old,
			       hv_le64(hv_le64(old) |
				       ((uint64_t)HV_MESSAGE_FLAG_PENDING << 40))))
			;
		if ((uint32_t)hv_le64(atomic_load(w)) != HV_MESSAGE_TYPE_NONE)
			return false;
	}
	hm_type = s_u32(fp, pos);
	size = s_u8(fp, pos);
	flags = s_u8(fp, pos);
	n = s_u8(fp, pos);
	if (n > HV_MESSAGE_PAYLOAD_MAX)
		n = HV_MESSAGE_PAYLOAD_MAX;
	memset(pl, 0, sizeof(pl));
	s_bytes(fp, pos, pl, n);
	memcpy(slot->hm_payload, pl, sizeof(pl));
	slot->hm_sender = 0;
	hdr = (uint64_t)hm_type | (uint64_t)size << 32 | (uint64_t)flags << 40;
	atomic_store_explicit(w, hv_le64(hdr), memory_order_release);
	if (fp->fp_verbose)
		fprintf(stderr, "[port] delivered 0x%x size %u type %u\n",
			hm_type, size, n >= 4 ? hv_get_le32(pl) : 0);
	/* What the guest reads: hm_payload_size bytes (at most 240) of the
	 * slot, zeros past the n given. */
	note_delivered(fp, hm_type, pl, size < HV_MESSAGE_PAYLOAD_MAX ? size
			: HV_MESSAGE_PAYLOAD_MAX);
	return true;
}

void fzp_event(struct fzp *fp, uint32_t relid)
{
	uint32_t vp = fp->fp_msg_vp;
	struct hv_event_flags_page *ef = NULL;
	struct hv_interrupt_page *ip = NULL;

	relid %= HV_EVENT_FLAGS_COUNT;
	if (fp->fp_siefp[vp] & HV_SIEFP_ENABLE)
		ef = fzp_gpa(fp, fp->fp_siefp[vp] & ~(uint64_t)HV_PAGE_MASK,
			     HV_PAGE_SIZE);
	if (fp->fp_intr_page_gpa)
		ip = fzp_gpa(fp, fp->fp_intr_page_gpa & ~(uint64_t)HV_PAGE_MASK,
			     HV_PAGE_SIZE);
	if (ip != NULL)
		atomic_fetch_or((_Atomic uint8_t *)&ip->ip_recv[relid / 8u],
				(uint8_t)(1u << (relid % 8u)));
	if (ef != NULL) {
		uint8_t *fl = ef->efp_sint[VMBUS_MESSAGE_SINT].ef_flags;

		atomic_fetch_or((_Atomic uint8_t *)&fl[relid / 8u],
				(uint8_t)(1u << (relid % 8u)));
		if (ip != NULL)
			atomic_fetch_or((_Atomic uint8_t *)&fl[0], 1);
	}
}

static struct fzp_chan *chan_of(struct fzp *fp, uint32_t relid)
{
	for (int i = 0; i < FZP_MAX_CHANS; i++)
		if (fp->fp_chan[i].c_open && fp->fp_chan[i].c_relid == relid)
			return &fp->fp_chan[i];
	return NULL;
}

/* Map the rings of an opened channel (host side), once. */
static bool chan_bind(struct fzp *fp, struct fzp_chan *c)
{
	const struct fzp_gpadl *g;
	uint64_t pfn0;
	uint32_t npfn;

	if (c->c_bound)
		return true;
	g = fzp_find_gpadl(fp, c->c_gpadl);
	if (g == NULL || !g->g_held || g->g_got < 16)
		return false;
	npfn = (g->g_got - 8u) / 8u;
	pfn0 = fzp_gpadl_pfn(g, 0);
	for (uint32_t i = 1; i < npfn; i++)
		if (fzp_gpadl_pfn(g, i) != pfn0 + i)
			return false;
	if (c->c_downstream == 0 || c->c_downstream >= npfn)
		return false;
	c->c_base = fzp_gpa(fp, pfn0 << HV_PAGE_SHIFT,
			    (size_t)npfn * HV_PAGE_SIZE);
	if (c->c_base == NULL ||
	    vmbus_ring_init(&c->c_in, c->c_base,
			    c->c_downstream * HV_PAGE_SIZE) != 0 ||
	    vmbus_ring_init(&c->c_out, c->c_base +
			    c->c_downstream * HV_PAGE_SIZE,
			    (npfn - c->c_downstream) * HV_PAGE_SIZE) != 0 ||
	    vmbus_ring_attach(&c->c_in, false) != 0 ||
	    vmbus_ring_attach(&c->c_out, true) != 0)
		return false;
	c->c_pages = npfn;
	c->c_bound = true;
	c->c_scribbled = g->g_scribbled;
	c->c_idle = false;
	return true;
}

/* Read what the guest wrote on every bound channel (a host does). */
static void drain_guest(struct fzp *fp)
{
	for (int i = 0; i < FZP_MAX_CHANS; i++) {
		struct fzp_chan *c = &fp->fp_chan[i];
		uint8_t d[16];

		uint32_t wi;
		bool empty = false;

		if (fp->fp_no_rings || !c->c_open || !chan_bind(fp, c))
			continue;
		/* Nothing written since the ring was last found empty: the
		 * ring library's checks would only say so again (they were
		 * a sixth of a guest harness's time). */
		wi = hv_get_le32(c->c_base +
				 offsetof(struct hv_ring_control, rc_write_index));
		if (c->c_idle && wi == c->c_idle_wi)
			continue;
		for (int k = 0; k < 64; k++) {
			uint32_t len;
			int r = vmbus_ring_peek(&c->c_in, d, sizeof(d));

			if (r != 0) {
				empty = r == -VMBUS_EAGAIN;
				break;
			}
			len = 8u * hv_get_le16(d + 4);
			/*
			 * A host that wrote into the rings before the guest
			 * opened them (GPADLW ahead of OPENCHANNEL) may have
			 * moved the send ring's indices itself: what it reads
			 * there is its own doing, not the guest's. It stops
			 * reading that ring at the first bad packet.
			 */
			if (c->c_scribbled &&
			    (len < 16 || len < 8u * hv_get_le16(d + 2)))
				break;
			FZ_CHECK(len >= 16 && len >= 8u * hv_get_le16(d + 2),
				 "guest wrote a bad packet descriptor");
			if (hv_get_le16(d) ==
			    VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
				uint32_t h = 8u * hv_get_le16(d + 2);

				if (h > sizeof(c->c_gpa))
					h = sizeof(c->c_gpa);
				if (vmbus_ring_peek(&c->c_in, c->c_gpa, h) == 0)
					c->c_gpa_len = h;
			}
			if (vmbus_ring_skip(&c->c_in, len) != 0)
				break;
			c->c_pkts++;
			fp->fp_activity++;
			c->c_tid[1] = c->c_tid[0];
			c->c_tid[0] = hv_get_le64(d + 8);
		}
		c->c_idle = empty;
		c->c_idle_wi = wi;
		if (vmbus_ring_read_done(&c->c_in))
			fzp_event(fp, c->c_relid);
		FZ_CHECK(c->c_scribbled || !vmbus_ring_broken(&c->c_in),
			 "guest broke its own send ring");
	}
}

/* The RING op at *pos: write the packet (or drop it). */
static void ring_op(struct fzp *fp, size_t *pos)
{
	uint8_t relid = s_u8(fp, pos), flags = s_u8(fp, pos);
	uint16_t len = s_u16(fp, pos);
	uint32_t padded = (len + 7u) & ~7u;
	struct fzp_chan *c = chan_of(fp, relid);
	uint8_t *pkt = calloc(1, padded ? padded : 8);
	struct vmbus_iov iov;
	bool sig = false;

	if (pkt == NULL)
		abort();
	s_bytes(fp, pos, pkt, len);	/* zeros past the script (calloc) */
	if (c != NULL && (flags & 3) && padded >= 16)
		hv_put_le64(pkt + 8, c->c_tid[(flags & 2) ? 1 : 0]);
	iov.iov_base = pkt;
	iov.iov_len = padded;
	if (c != NULL && padded && !fp->fp_no_rings && chan_bind(fp, c) &&
	    vmbus_ring_write(&c->c_out, &iov, 1, &sig) == 0) {
		if (!(flags & 4))
			fzp_event(fp, relid);
	} else {
		fp->fp_ring_drops++;
	}
	free(pkt);
}

/* Guest memory at byte off of a range stream (count, offset, PFNs...),
 * or NULL; *run = how many bytes from there stay in the same page of the
 * same range (1 when NULL). */
static uint8_t *stream_at(struct fzp *fp, const uint8_t *st, uint32_t len,
			  uint32_t nranges, uint64_t off, uint32_t *run)
{
	uint32_t pos = 0;

	*run = 1;
	for (uint32_t r = 0; r < nranges && pos + 8u <= len; r++) {
		uint32_t bc = hv_get_le32(st + pos), bo = hv_get_le32(st + pos + 4);
		uint64_t n = ((uint64_t)bo + bc + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;

		if (off < bc) {
			uint64_t at = bo + off, k = at / HV_PAGE_SIZE;
			uint64_t in_page = HV_PAGE_SIZE - at % HV_PAGE_SIZE;
			uint64_t in_range = bc - off;
			uint8_t *p;

			if (pos + 8u + 8u * (k + 1) > len)
				return NULL;
			p = fzp_gpa(fp, (hv_get_le64(st + pos + 8 + 8 * k)
					 << HV_PAGE_SHIFT) + at % HV_PAGE_SIZE, 1);
			/* Allocations are whole pages: the rest of this
			 * page is there too. */
			if (p != NULL)
				*run = (uint32_t)(in_page < in_range ? in_page
								     : in_range);
			return p;
		}
		off -= bc;
		pos += 8u + 8u * (uint32_t)n;
	}
	return NULL;
}

/* GPAW / GPADLW: the host writes into guest memory it was given. */
static void mem_op(struct fzp *fp, size_t *pos, bool by_gpadl)
{
	const uint8_t *st = NULL;
	struct fzp_gpadl *g = NULL;
	uint32_t stlen = 0, nr = 1;
	uint64_t off;
	uint16_t len;

	if (by_gpadl) {
		uint32_t h = s_u32(fp, pos);

		for (int i = 0; i < FZP_MAX_GPADLS && g == NULL; i++)
			if (fp->fp_gpadl[i].g_used &&
			    fp->fp_gpadl[i].g_handle == h)
				g = &fp->fp_gpadl[i];
		off = s_u32(fp, pos);
		/* Not an open channel's rings: the host writes its ring with
		 * RING, and the guest's ring is the guest's to write. */
		for (int i = 0; i < FZP_MAX_CHANS && g != NULL; i++)
			if (fp->fp_chan[i].c_open && fp->fp_chan[i].c_gpadl == h)
				g = NULL;
		if (g != NULL && g->g_held) {
			st = g->g_stream;
			stlen = g->g_got < FZP_STREAM_MAX ? g->g_got
							  : FZP_STREAM_MAX;
		}
	} else {
		struct fzp_chan *c = chan_of(fp, s_u8(fp, pos));

		off = s_u16(fp, pos);
		if (c != NULL && c->c_gpa_len >= 24) {
			st = c->c_gpa + 24;
			stlen = c->c_gpa_len - 24;
			nr = hv_get_le32(c->c_gpa + 20);
		}
	}
	len = s_u16(fp, pos);
	if (st == NULL) {
		s_skip(fp, pos, len);
		return;
	}
	/* Byte i of the op goes to byte off + i of the memory, a page's
	 * run at a time; bytes with no memory behind them are skipped. */
	for (uint32_t i = 0, run; i < len; i += run) {
		uint8_t *p = stream_at(fp, st, stlen, nr, off + i, &run);

		if (run > len - i)
			run = len - i;
		if (p == NULL) {
			s_skip(fp, pos, run);
			continue;
		}
		s_fill(fp, pos, p, run);
		/* A GPADL the guest may yet open as its rings. */
		if (g != NULL)
			g->g_scribbled = true;
	}
}

void fzp_pump(struct fzp *fp)
{
	if (fp->fp_in_pump)
		return;
	fp->fp_in_pump = true;
	drain_guest(fp);
	if (fp->fp_idle) {
		fp->fp_idle--;
		goto out;
	}
	while (fp->fp_spos < fp->fp_slen) {
		size_t pos = fp->fp_spos;
		uint8_t op = s_u8(fp, &pos);

		switch (op & 7) {
		case FZP_OP_MSG:
			if (op & 8) {
				mem_op(fp, &pos, true);	/* FZP_OP_GPADLW */
				break;
			}
			if (!deliver(fp, &pos))
				goto out;
			break;
		case FZP_OP_GPAW:
			mem_op(fp, &pos, false);
			break;
		case FZP_OP_WAIT: {
			uint8_t t = s_u8(fp, &pos);

			if (t < VMBUS_CHANMSG_COUNT) {
				if (!fp->fp_wait_counted) {
					fp->fp_waits[t]++;
					fp->fp_wait_counted = true;
				}
				if (fp->fp_posted[t] < fp->fp_waits[t])
					goto out;
			}
			fp->fp_wait_counted = false;
			break;
		}
		case FZP_OP_EVENT:
			fzp_event(fp, s_u16(fp, &pos));
			break;
		case FZP_OP_STATUS:
			fp->fp_post_status = s_u16(fp, &pos);
			fp->fp_post_status_n = s_u8(fp, &pos);
			break;
		case FZP_OP_IDLE:
			fp->fp_idle = s_u8(fp, &pos);
			fp->fp_spos = pos;
			fp->fp_activity++;
			goto out;
		case FZP_OP_RING:
			ring_op(fp, &pos);
			break;
		case FZP_OP_RWAIT: {
			struct fzp_chan *c = chan_of(fp, s_u8(fp, &pos));
			uint8_t n = s_u8(fp, &pos);

			if (c != NULL) {
				if (!c->c_rwait_counted) {
					c->c_rwait = c->c_pkts + n;
					c->c_rwait_counted = true;
				}
				drain_guest(fp);
				if (c->c_pkts < c->c_rwait)
					goto out;
				c->c_rwait_counted = false;
			}
			break;
		}
		default:
			break; /* unknown op: a no-op */
		}
		fp->fp_spos = pos;
		fp->fp_activity++;
	}
out:
	fp->fp_in_pump = false;
}

/* ---- the machine ----------------------------------------------------- */

static uint32_t fzp_vcpu_count(void *ctx)
{
	return ((struct fzp *)ctx)->fp_nvcpu;
}

static uint32_t fzp_current_vp(void *ctx)
{
	(void)ctx;
	return 0;
}

static uint64_t *msr_slot(struct fzp *fp, uint32_t vp, uint32_t msr)
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

static int fzp_rdmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t *v)
{
	struct fzp *fp = ctx;
	uint64_t *s;

	if (vp >= fp->fp_nvcpu)
		return -VMBUS_ERANGE;
	fzp_pump(fp);
	if (msr == HV_X64_MSR_EOM) {
		*v = 0;
		return 0;
	}
	s = msr_slot(fp, vp, msr);
	if (s == NULL)
		return -VMBUS_EINVAL;
	*v = *s;
	return 0;
}

static int fzp_wrmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t v)
{
	struct fzp *fp = ctx;
	uint64_t *s;

	if (vp >= fp->fp_nvcpu)
		return -VMBUS_ERANGE;
	if (msr != HV_X64_MSR_EOM) {
		s = msr_slot(fp, vp, msr);
		if (s == NULL)
			return -VMBUS_EINVAL;
		if ((msr == HV_X64_MSR_SIMP || msr == HV_X64_MSR_SIEFP) &&
		    (v & 1))
			FZ_CHECK(fzp_gpa(fp, v & ~(uint64_t)HV_PAGE_MASK,
					 HV_PAGE_SIZE) != NULL,
				 "SynIC page 0x%llx not allocated",
				 (unsigned long long)v);
		*s = v;
	}
	fzp_pump(fp);
	return 0;
}

/* The host's view of the guest's messages (bookkeeping + checks). */
static void note_post(struct fzp *fp, const uint8_t *pl, uint32_t len)
{
	struct fzp_gpadl *g = NULL;
	uint32_t type, n;

	if (len < 8)
		return;
	type = hv_get_le32(pl);
	if (type < VMBUS_CHANMSG_COUNT)
		fp->fp_posted[type]++;
	if (fp->fp_verbose)
		fprintf(stderr, "[port] guest posted type %u (%u bytes)\n",
			type, len);
	switch (type) {
	case VMBUS_CHANMSG_INITIATE_CONTACT:
		if (len >= 24 && hv_get_le32(pl + 8) < VMBUS_VERSION_MULTICLIENT)
			fp->fp_intr_page_gpa = hv_get_le64(pl + 16);
		break;
	case VMBUS_CHANMSG_GPADL_HEADER:
		if (len < VMBUS_CHANMSG_GPADL_HEADER_SIZE)
			break;
		for (int i = 0; i < FZP_MAX_GPADLS; i++)
			if (!fp->fp_gpadl[i].g_used ||
			    (!fp->fp_gpadl[i].g_held &&
			     fp->fp_gpadl[i].g_handle == hv_get_le32(pl + 12))) {
				g = &fp->fp_gpadl[i];
				break;
			}
		if (g == NULL)
			break;
		memset(g, 0, sizeof(*g));
		g->g_used = g->g_held = true;
		g->g_relid = hv_get_le32(pl + 8);
		g->g_handle = hv_get_le32(pl + 12);
		g->g_buflen = hv_get_le16(pl + 16);
		n = len - VMBUS_CHANMSG_GPADL_HEADER_SIZE;
		if (n > FZP_STREAM_MAX)
			n = FZP_STREAM_MAX;
		memcpy(g->g_stream, pl + VMBUS_CHANMSG_GPADL_HEADER_SIZE, n);
		g->g_got = n;
		break;
	case VMBUS_CHANMSG_GPADL_BODY:
		if (len < VMBUS_CHANMSG_GPADL_BODY_SIZE)
			break;
		for (int i = 0; i < FZP_MAX_GPADLS; i++)
			if (fp->fp_gpadl[i].g_used && fp->fp_gpadl[i].g_held &&
			    fp->fp_gpadl[i].g_handle == hv_get_le32(pl + 12))
				g = &fp->fp_gpadl[i];
		if (g == NULL)
			break;
		n = len - VMBUS_CHANMSG_GPADL_BODY_SIZE;
		if (g->g_got + n > FZP_STREAM_MAX)
			n = FZP_STREAM_MAX - g->g_got;
		memcpy(g->g_stream + g->g_got, pl + VMBUS_CHANMSG_GPADL_BODY_SIZE,
		       n);
		g->g_got += n;
		break;
	case VMBUS_CHANMSG_GPADL_TEARDOWN:
		if (len < 16)
			break;
		for (int i = 0; i < FZP_MAX_GPADLS; i++)
			if (fp->fp_gpadl[i].g_used &&
			    fp->fp_gpadl[i].g_handle == hv_get_le32(pl + 12))
				fp->fp_gpadl[i].g_teardown_sent = true;
		break;
	case VMBUS_CHANMSG_OPENCHANNEL: {
		struct fzp_chan *c = NULL;

		if (len < 28)
			break;
		fp->fp_open_relid = hv_get_le32(pl + 8);
		fp->fp_open_gpadl = hv_get_le32(pl + 16);
		fp->fp_open_downstream = hv_get_le32(pl + 24);
		for (int i = 0; i < FZP_MAX_CHANS && c == NULL; i++)
			if (!fp->fp_chan[i].c_open ||
			    fp->fp_chan[i].c_relid == fp->fp_open_relid)
				c = &fp->fp_chan[i];
		if (c == NULL)
			break;
		memset(c, 0, sizeof(*c));
		c->c_open = true;
		c->c_relid = fp->fp_open_relid;
		c->c_gpadl = fp->fp_open_gpadl;
		c->c_downstream = fp->fp_open_downstream;
		break;
	}
	case VMBUS_CHANMSG_CLOSECHANNEL:
		if (len >= 12)
			for (int i = 0; i < FZP_MAX_CHANS; i++)
				if (fp->fp_chan[i].c_open &&
				    fp->fp_chan[i].c_relid == hv_get_le32(pl + 8))
					fp->fp_chan[i].c_open = false;
		break;
	case VMBUS_CHANMSG_UNLOAD:
		fp->fp_unload_sent = true;
		break;
	}
	apply_notices(fp);
}

static int fzp_hypercall(void *ctx, uint32_t vp, uint64_t control,
			 const void *in, uint32_t in_len, void *out,
			 uint32_t out_len, uint64_t *result)
{
	struct fzp *fp = ctx;
	uint16_t code = (uint16_t)(control & HV_HYPERCALL_CODE_MASK);

	(void)out;
	(void)out_len;
	if (vp >= fp->fp_nvcpu)
		return -VMBUS_ERANGE;
	if (in_len > HV_PAGE_SIZE)
		return -VMBUS_EINVAL;
	fzp_pump(fp);
	*result = HV_STATUS_SUCCESS;
	if (fp->fp_guest_os_id == 0 || !(fp->fp_hypercall & 1)) {
		*result = HV_STATUS_INVALID_HYPERCALL_CODE;
		return 0;
	}
	if (code == HV_CALL_POST_MESSAGE) {
		const struct hv_post_message_input *pm = in;
		uint32_t size;

		FZ_CHECK(in_len >= 16 && in_len <= sizeof(*pm),
			 "HvPostMessage input of %u bytes", in_len);
		size = hv_le32(pm->pm_payload_size);
		FZ_CHECK(size <= HV_MESSAGE_PAYLOAD_MAX && in_len >= 16 + size,
			 "HvPostMessage payload %u in %u bytes", size, in_len);
		FZ_CHECK(hv_le32(pm->pm_message_type) == VMBUS_MESSAGE_TYPE,
			 "HvPostMessage type %u", hv_le32(pm->pm_message_type));
		fp->fp_posts++;
		fp->fp_activity++;
		if (fp->fp_post_status_n) {
			fp->fp_post_status_n--;
			*result = fp->fp_post_status;
		}
		if (*result == HV_STATUS_SUCCESS)
			note_post(fp, pm->pm_payload, size);
	} else if (code == HV_CALL_SIGNAL_EVENT) {
		fp->fp_signals++;
		fp->fp_activity++;
	} else {
		*result = HV_STATUS_INVALID_HYPERCALL_CODE;
	}
	fzp_pump(fp);
	return 0;
}

static uint64_t fzp_now(void *ctx)
{
	struct fzp *fp = ctx;

	fzp_advance(fp);
	if (fp->fp_budget_ns && fp->fp_now > fp->fp_budget_ns &&
	    fp->fp_budget_jmp != NULL)
		longjmp(*fp->fp_budget_jmp, 1);
	fzp_pump(fp);
	return fp->fp_now;
}

static void fzp_vlog(void *ctx, int level, const char *fmt, va_list ap)
{
	struct fzp *fp = ctx;
	char line[512];

	fp->fp_logs++;
	/* Format every line: a bad format argument is a bug too. */
	vsnprintf(line, sizeof(line), fmt, ap);
	if (fp->fp_verbose)
		fprintf(stderr, "[guest %d] %s\n", level, line);
}

const struct fzp_gpadl *fzp_find_gpadl(const struct fzp *fp, uint32_t h)
{
	for (int i = 0; i < FZP_MAX_GPADLS; i++)
		if (fp->fp_gpadl[i].g_used && fp->fp_gpadl[i].g_handle == h)
			return &fp->fp_gpadl[i];
	return NULL;
}

void fzp_init(struct fzp *fp, uint32_t nvcpu, uint32_t msg_vp,
	      const uint8_t *s, size_t slen)
{
	struct vmbus_platform *p = &fp->fp_plat;

	memset(fp, 0, sizeof(*fp));
	fp->fp_nvcpu = nvcpu < 1 ? 1 : nvcpu > FZP_MAX_VCPU ? FZP_MAX_VCPU
							   : nvcpu;
	fp->fp_msg_vp = msg_vp < fp->fp_nvcpu ? msg_vp : 0;
	fp->fp_tick = FZP_TICK;
	fp->fp_next_pfn = 0x100;
	fp->fp_verbose = getenv("FUZZ_VERBOSE") != NULL;
	fp->fp_track_heap = getenv("FUZZ_SKIP_KNOWN") != NULL;
	fp->fp_s = s;
	fp->fp_slen = s ? slen : 0;
	for (uint32_t i = 0; i < FZP_MAX_VCPU; i++)
		fp->fp_sint2[i] = HV_SINT_MASKED;

	p->ctx = fp;
	p->vcpu_count = fzp_vcpu_count;
	p->current_vp = fzp_current_vp;
	p->rdmsr = fzp_rdmsr;
	p->wrmsr = fzp_wrmsr;
	p->hypercall = fzp_hypercall;
	p->page_alloc = fzp_page_alloc;
	p->page_free = fzp_page_free;
	p->virt_to_gpa = fzp_virt_to_gpa;
	p->zalloc = fzp_zalloc;
	p->free = fzp_free;
	p->now_ns = fzp_now;
	p->vlog = fzp_vlog;
}

void fzp_fini(struct fzp *fp)
{
	for (int i = 0; i < FZP_MAX_ALLOCS; i++) {
		if (fp->fp_alloc[i].a_live)
			pages_put(fp->fp_alloc[i].a_va,
				  fp->fp_alloc[i].a_npages);
		fp->fp_alloc[i].a_live = false;
		fp->fp_alloc[i].a_va = NULL;
	}
	fp->fp_pages_live = 0;
	/* What the guest did not free is unreachable now: LSan reports it. */
	fp->fp_heap = NULL;
}

void fzp_abandon(struct fzp *fp)
{
	struct fzp_heap *h, *next;

	for (h = fp->fp_heap; h != NULL; h = next) {
		next = h->h_next;
		free(h);
	}
	fp->fp_heap = NULL;
	fzp_fini(fp);
}
