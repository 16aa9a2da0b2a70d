/*
 * src/guest/netvsc/netvsc_tx.c - transmit (spec vmbus-devices.md 1.7, 2.3,
 * 2.4): transmit slots and their transaction ids, the copy area (send
 * buffer sections, or bounce pages without a send buffer), the RNDIS
 * packet message with its per-packet info (checksum, LSO, VLAN, hash),
 * sends through a section (copy), a run of sections by GPA (large copied
 * frames) or the caller's pages by GPA (zero copy), and completions.
 */
#include "netvsc_priv.h"

#pragma GCC diagnostic error "-Wconversion"
#pragma GCC diagnostic error "-Wsign-compare"

/* ---- slots and ids ---- */

uint64_t nv_tid(const struct nv_queue *q, uint32_t slot)
{
	return (NV_TID_TAG << NV_TID_TAG_SHIFT) |
	    ((uint64_t)q->q_slot[slot].ts_gen << NV_TID_GEN_SHIFT) |
	    (uint64_t)(slot + 1u);
}

int nv_slot_get(struct nv_queue *q, uint8_t kind)
{
	for (uint32_t n = 0; n < NV_TX_SLOTS; n++) {
		uint32_t i = (q->q_slot_hint + n) % NV_TX_SLOTS;
		struct nv_txslot *ts = &q->q_slot[i];

		if (ts->ts_state != NV_TS_FREE)
			continue;
		/* A new generation per use: a late completion of an
		 * earlier use of this slot no longer matches. */
		ts->ts_gen = ts->ts_gen == UINT32_MAX ? 1u : ts->ts_gen + 1u;
		ts->ts_state = NV_TS_ACTIVE;
		ts->ts_kind = kind;
		ts->ts_chunk = NV_CHUNK_NONE;
		ts->ts_nchunks = 0;
		ts->ts_bytes = 0;
		ts->ts_frames = 0;
		ts->ts_done = NULL;
		ts->ts_cookie = NULL;
		ts->ts_resp_len = 0;
		q->q_slot_hint = (i + 1u) % NV_TX_SLOTS;
		q->q_slots_used++;
		return (int)i;
	}
	return -VMBUS_EAGAIN;
}

void nv_slot_put(struct nv_queue *q, uint32_t slot)
{
	struct nv_txslot *ts = &q->q_slot[slot];

	if (ts->ts_state == NV_TS_FREE)
		return;
	ts->ts_state = NV_TS_FREE;
	ts->ts_done = NULL;
	ts->ts_cookie = NULL;
	q->q_slots_used--;
}

/* ---- the copy area ---- */

int nv_ca_init(struct netvsc_dev *nd)
{
	struct nv_copy_area *ca = &nd->nd_ca;
	uint32_t words;

	if (!ca->ca_sendbuf) {
		/* No send buffer: our own pages, always sent by GPA. */
		uint32_t bytes = nd->nd_cfg.nc_send_buf_bytes;

		ca->ca_pages = bytes / HV_PAGE_SIZE;
		ca->ca_pfn = nv_zalloc(nd, sizeof(uint64_t) * ca->ca_pages);
		if (ca->ca_pfn == NULL)
			return -VMBUS_ENOMEM;
		ca->ca_va = nd->nd_plat->page_alloc(nd->nd_plat->ctx,
		    ca->ca_pages, ca->ca_pfn);
		if (ca->ca_va == NULL) {
			nv_free(nd, ca->ca_pfn, sizeof(uint64_t) * ca->ca_pages);
			ca->ca_pfn = NULL;
			ca->ca_pages = 0;
			return -VMBUS_ENOMEM;
		}
		ca->ca_bytes = bytes;
		ca->ca_chunk = NV_BOUNCE_CHUNK;
		ca->ca_nchunks = bytes / NV_BOUNCE_CHUNK;
		if (ca->ca_nchunks > NV_SECTIONS_MAX)
			ca->ca_nchunks = NV_SECTIONS_MAX;
	}
	words = (ca->ca_nchunks + 63u) / 64u;
	ca->ca_map = nv_zalloc(nd, sizeof(uint64_t) * words);
	if (ca->ca_map == NULL)
		return -VMBUS_ENOMEM;
	ca->ca_hint = 0;
	ca->ca_used = 0;
	return 0;
}

void nv_ca_fini(struct netvsc_dev *nd, bool leak)
{
	struct nv_copy_area *ca = &nd->nd_ca;

	nv_free(nd, ca->ca_map, sizeof(uint64_t) * ((ca->ca_nchunks + 63u) / 64u));
	if (!ca->ca_sendbuf && ca->ca_va != NULL) {
		nv_pages_release(nd, ca->ca_va, ca->ca_pages, leak);
		nv_free(nd, ca->ca_pfn, sizeof(uint64_t) * ca->ca_pages);
	}
	vmbus_memset(ca, 0, sizeof(*ca));
}

static bool nv_ca_busy(const struct nv_copy_area *ca, uint32_t i)
{
	return (ca->ca_map[i / 64u] >> (i % 64u)) & 1u;
}

static void nv_ca_mark(struct nv_copy_area *ca, uint32_t first, uint32_t n,
    bool busy)
{
	for (uint32_t i = first; i < first + n; i++) {
		if (busy)
			ca->ca_map[i / 64u] |= UINT64_C(1) << (i % 64u);
		else
			ca->ca_map[i / 64u] &= ~(UINT64_C(1) << (i % 64u));
	}
}

/* First of n contiguous free chunks, or NV_CHUNK_NONE (nd_ca_lock). */
static uint32_t nv_ca_find(const struct nv_copy_area *ca, uint32_t n)
{
	if (ca->ca_map == NULL || n == 0 || n > ca->ca_nchunks ||
	    ca->ca_used + n > ca->ca_nchunks)
		return NV_CHUNK_NONE;
	for (uint32_t k = 0; k < ca->ca_nchunks; k++) {
		uint32_t start = (ca->ca_hint + k) % ca->ca_nchunks;
		uint32_t run = 0;

		if (start + n > ca->ca_nchunks)
			continue;
		while (run < n && !nv_ca_busy(ca, start + run))
			run++;
		if (run == n)
			return start;
		k += run;	/* skip past the busy chunk */
	}
	return NV_CHUNK_NONE;
}

/* n contiguous free chunks, or NV_CHUNK_NONE. */
static uint32_t nv_ca_alloc(struct netvsc_dev *nd, uint32_t n)
{
	struct nv_copy_area *ca = &nd->nd_ca;
	uint32_t got;

	nv_lock(nd, &nd->nd_ca_lock);
	got = nv_ca_find(ca, n);
	if (got != NV_CHUNK_NONE) {
		nv_ca_mark(ca, got, n, true);
		ca->ca_used += n;
		ca->ca_hint = (got + n) % ca->ca_nchunks;
	}
	nv_unlock(nd, &nd->nd_ca_lock);
	return got;
}

/* Would a send needing n chunks (0: none) find them now? */
static bool nv_ca_room(struct netvsc_dev *nd, uint32_t n)
{
	bool ok;

	if (n == 0)
		return true;
	nv_lock(nd, &nd->nd_ca_lock);
	ok = nv_ca_find(&nd->nd_ca, n) != NV_CHUNK_NONE;
	nv_unlock(nd, &nd->nd_ca_lock);
	return ok;
}

static void nv_ca_put(struct netvsc_dev *nd, uint32_t first, uint32_t n)
{
	struct nv_copy_area *ca = &nd->nd_ca;

	if (first == NV_CHUNK_NONE || n == 0)
		return;
	nv_lock(nd, &nd->nd_ca_lock);
	if (ca->ca_map != NULL && first + n <= ca->ca_nchunks) {
		nv_ca_mark(ca, first, n, false);
		ca->ca_used -= n;
	}
	nv_unlock(nd, &nd->nd_ca_lock);
}

static uint32_t nv_ca_chunks_for(const struct nv_copy_area *ca, uint32_t bytes)
{
	return ca->ca_chunk ? (bytes + ca->ca_chunk - 1u) / ca->ca_chunk : 0;
}

/* ---- RNDIS packet message ---- */

static uint8_t *nv_ppi_put(uint8_t *p, uint32_t type, uint32_t value)
{
	hv_put_le32(p, NV_PKTINFO_BYTES);
	hv_put_le32(p + 4, type);
	hv_put_le32(p + 8, RNDIS_PKTINFO_OFFSET);
	hv_put_le32(p + 12, value);
	return p + NV_PKTINFO_BYTES;
}

static uint32_t nv_ppi_count(uint32_t flags)
{
	uint32_t n = 0;

	if (flags & NETVSC_TX_LSO)
		n++;
	else if (flags & (NETVSC_TX_CSUM_IP | NETVSC_TX_CSUM_TCP |
	    NETVSC_TX_CSUM_UDP))
		n++;
	if (flags & NETVSC_TX_VLAN)
		n++;
	if (flags & NETVSC_TX_HASH)
		n++;
	return n;
}

/* Write the RNDIS PACKET_MSG header and PPIs at p; returns its length. */
static uint32_t nv_rndis_pkt_hdr(uint8_t *p, uint32_t frame_len,
    const struct netvsc_tx_meta *m)
{
	uint32_t flags = m ? m->tm_flags : 0;
	uint32_t ppi = nv_ppi_count(flags) * NV_PKTINFO_BYTES;
	uint32_t hdr = RNDIS_PACKET_MSG_SIZE + ppi;
	uint8_t *pp = p + RNDIS_PACKET_MSG_SIZE;

	vmbus_memset(p, 0, hdr);
	hv_put_le32(p + 0, REMOTE_NDIS_PACKET_MSG);
	hv_put_le32(p + 4, hdr + frame_len);
	/* Offsets are relative to byte 8 (spec 2.2). */
	hv_put_le32(p + 8, RNDIS_PACKET_MSG_OFFSET_MIN + ppi);
	hv_put_le32(p + 12, frame_len);
	if (ppi) {
		hv_put_le32(p + 28, RNDIS_PACKET_MSG_OFFSET_MIN);
		hv_put_le32(p + 32, ppi);
	}
	if (flags & NETVSC_TX_LSO) {
		/* No checksum PPI together with LSO (L). */
		uint32_t v = (flags & NETVSC_TX_IPV6) ?
		    NDIS_LSO2_INFO_MAKEIPV6(m->tm_l4_offset, m->tm_mss) :
		    NDIS_LSO2_INFO_MAKEIPV4(m->tm_l4_offset, m->tm_mss);

		pp = nv_ppi_put(pp, NDIS_PKTINFO_TYPE_LSO, v);
	} else if (flags & (NETVSC_TX_CSUM_IP | NETVSC_TX_CSUM_TCP |
	    NETVSC_TX_CSUM_UDP)) {
		uint32_t v = (flags & NETVSC_TX_IPV6) ? NDIS_TXCSUM_INFO_IPV6 :
		    NDIS_TXCSUM_INFO_IPV4;

		if (flags & NETVSC_TX_CSUM_IP)
			v |= NDIS_TXCSUM_INFO_IPCS;
		if (flags & NETVSC_TX_CSUM_TCP)
			v |= NDIS_TXCSUM_INFO_TCPCS;
		if (flags & NETVSC_TX_CSUM_UDP)
			v |= NDIS_TXCSUM_INFO_UDPCS;
		if (flags & (NETVSC_TX_CSUM_TCP | NETVSC_TX_CSUM_UDP))
			v |= NDIS_TXCSUM_INFO_THOFF(m->tm_l4_offset);
		pp = nv_ppi_put(pp, NDIS_PKTINFO_TYPE_CSUM, v);
	}
	if (flags & NETVSC_TX_VLAN) {
		uint16_t tci = m->tm_vlan_tci;

		pp = nv_ppi_put(pp, NDIS_PKTINFO_TYPE_VLAN,
		    NDIS_VLAN_INFO_MAKE(tci & 0x0FFFu, (uint32_t)tci >> 13,
		    (tci >> 12) & 1u));
	}
	if (flags & NETVSC_TX_HASH)
		pp = nv_ppi_put(pp, NDIS_PKTINFO_TYPE_HASHVAL, m->tm_hash);
	(void)pp;
	return hdr;
}

/* Check meta against the enabled offloads. */
static int nv_meta_check(const struct netvsc_dev *nd,
    const struct netvsc_tx_meta *m, uint32_t len)
{
	uint32_t f = m ? m->tm_flags : 0, off = nd->nd_offloads;
	bool v4 = (f & NETVSC_TX_IPV4) != 0, v6 = (f & NETVSC_TX_IPV6) != 0;

	if (f & ~(NETVSC_TX_IPV4 | NETVSC_TX_IPV6 | NETVSC_TX_CSUM_IP |
	    NETVSC_TX_CSUM_TCP | NETVSC_TX_CSUM_UDP | NETVSC_TX_LSO |
	    NETVSC_TX_VLAN | NETVSC_TX_HASH))
		return -VMBUS_EINVAL;
	if ((f & (NETVSC_TX_CSUM_IP | NETVSC_TX_CSUM_TCP | NETVSC_TX_CSUM_UDP |
	    NETVSC_TX_LSO)) && v4 == v6)
		return -VMBUS_EINVAL;	/* exactly one IP version */
	if ((f & NETVSC_TX_CSUM_IP) && (v6 || !(off & NETVSC_OFFLOAD_IP4_CSUM)))
		return -VMBUS_EINVAL;
	if ((f & NETVSC_TX_CSUM_TCP) && !(off & (v4 ? NETVSC_OFFLOAD_TCP4_CSUM :
	    NETVSC_OFFLOAD_TCP6_CSUM)))
		return -VMBUS_EINVAL;
	if ((f & NETVSC_TX_CSUM_UDP) && !(off & (v4 ? NETVSC_OFFLOAD_UDP4_CSUM :
	    NETVSC_OFFLOAD_UDP6_CSUM)))
		return -VMBUS_EINVAL;
	if ((f & (NETVSC_TX_CSUM_TCP | NETVSC_TX_CSUM_UDP | NETVSC_TX_LSO)) &&
	    (m->tm_l4_offset < NETVSC_ETHER_HDR_LEN + 20u ||
	    m->tm_l4_offset >= len || m->tm_l4_offset > 0x3FFu))
		return -VMBUS_EINVAL;
	if (f & NETVSC_TX_LSO) {
		if (!(off & (v4 ? NETVSC_OFFLOAD_LSO4 : NETVSC_OFFLOAD_LSO6)) ||
		    m->tm_mss == 0 || (f & NETVSC_TX_CSUM_UDP))
			return -VMBUS_EINVAL;
		if (len > NV_TX_MAX_FRAME ||
		    (nd->nd_lso_max && len > nd->nd_lso_max + m->tm_l4_offset +
		    60u))
			return -VMBUS_EMSGSIZE;
	} else if (len > nd->nd_mtu + NETVSC_ETHER_HDR_LEN) {
		return -VMBUS_EMSGSIZE;
	}
	return 0;
}

/* ---- sending ---- */

static void nv_nvsp_rndis_msg(union nvsp_msg *m, uint32_t chan_type,
    uint32_t section, uint32_t size)
{
	vmbus_memset(m, 0, sizeof(*m));
	m->nm_rndis_pkt.np_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	m->nm_rndis_pkt.np_channel_type = hv_cpu_to_le32(chan_type);
	m->nm_rndis_pkt.np_send_buf_section_index = hv_cpu_to_le32(section);
	m->nm_rndis_pkt.np_send_buf_section_size = hv_cpu_to_le32(size);
}

/*
 * Send total bytes already written at chunk c (n chunks) of the copy area:
 * one host send section by index, or a GPA range over the chunk memory.
 */
static int nv_send_copied(struct nv_queue *q, uint32_t c, uint32_t n,
    uint32_t total, uint32_t chan_type, uint64_t tid)
{
	struct netvsc_dev *nd = q->q_nd;
	const struct nv_copy_area *ca = &nd->nd_ca;
	struct vmbus_gpa_buf b;
	union nvsp_msg m;
	uint64_t off;

	if (ca->ca_sendbuf && n == 1) {
		nv_nvsp_rndis_msg(&m, chan_type, c, total);
		return vmbus_chan_send(q->q_chan, VMBUS_PACKET_TYPE_DATA_INBAND,
		    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, &m, NVSP_MSG_SIZE,
		    tid);
	}
	off = (uint64_t)c * ca->ca_chunk;
	b.gb_len = total;
	b.gb_offset = (uint32_t)(off % HV_PAGE_SIZE);
	b.gb_npfn = (uint32_t)VMBUS_GPA_RANGE_PFNS(b.gb_offset, total);
	b.gb_pfn = &ca->ca_pfn[off / HV_PAGE_SIZE];
	nv_nvsp_rndis_msg(&m, chan_type, NVSP_SEND_BUF_SECTION_NONE, 0);
	return vmbus_chan_send_gpa(q->q_chan, &b, 1, &m, NVSP_MSG_SIZE, tid);
}

/* Describe [va, va+len) by 4 KiB pages, appending to the range list. */
static int nv_gpa_append(struct netvsc_dev *nd, const uint8_t *va,
    uint32_t len, struct vmbus_gpa_buf *bufs, uint32_t *nbuf, uint64_t *pfns,
    uint32_t *npfn)
{
	while (len) {
		uint64_t gpa;
		uint32_t pgoff, piece;
		struct vmbus_gpa_buf *cur = *nbuf ? &bufs[*nbuf - 1u] : NULL;

		if (nd->nd_plat->virt_to_gpa(nd->nd_plat->ctx, va, &gpa) != 0)
			return -VMBUS_EFAULT;
		pgoff = (uint32_t)(gpa & HV_PAGE_MASK);
		piece = HV_PAGE_SIZE - pgoff;
		if (piece > len)
			piece = len;
		if (*npfn >= NV_TX_MAX_PFNS)
			return -VMBUS_EMSGSIZE;
		/* Extend the current range when it ends on a page boundary
		 * and this piece starts one: its PFN list grows by one. */
		if (cur != NULL && pgoff == 0 &&
		    (cur->gb_offset + cur->gb_len) % HV_PAGE_SIZE == 0 &&
		    cur->gb_pfn + cur->gb_npfn == &pfns[*npfn]) {
			cur->gb_len += piece;
			cur->gb_npfn++;
		} else {
			if (*nbuf >= NV_TX_MAX_RANGES)
				return -VMBUS_EMSGSIZE;
			cur = &bufs[(*nbuf)++];
			cur->gb_len = piece;
			cur->gb_offset = pgoff;
			cur->gb_npfn = 1;
			cur->gb_pfn = &pfns[*npfn];
		}
		pfns[(*npfn)++] = gpa >> HV_PAGE_SHIFT;
		va += piece;
		len -= piece;
	}
	return 0;
}

static struct nv_queue *nv_pick_queue(struct netvsc_dev *nd, uint32_t qi,
    const struct netvsc_tx_meta *meta)
{
	uint32_t nq = nd->nd_nq;

	if (nq == 0)
		return NULL;
	if (qi == NETVSC_QUEUE_AUTO) {
		if (meta && (meta->tm_flags & NETVSC_TX_HASH))
			qi = atomic_load(&nd->nd_send_tab[meta->tm_hash %
			    NETVSC_SEND_TABLE_SIZE]) % nq;
		else
			qi = 0;
	}
	return qi < nq ? nd->nd_q[qi] : NULL;
}

static void nv_tx_undo(struct nv_queue *q, uint32_t s, int r)
{
	struct netvsc_dev *nd = q->q_nd;
	struct nv_txslot *ts = &q->q_slot[s];

	nv_lock(nd, &q->q_tx_lock);
	if (ts->ts_kind == NV_TS_DATA && q->q_inflight > 0)
		q->q_inflight--;
	nv_ca_put(nd, ts->ts_chunk, ts->ts_nchunks);
	ts->ts_chunk = NV_CHUNK_NONE;
	ts->ts_nchunks = 0;
	nv_slot_put(q, s);
	if (r == -VMBUS_EAGAIN) {
		q->q_stats.qs_tx_busy++;
		atomic_store(&q->q_tx_want, true);
	}
	nv_unlock(nd, &q->q_tx_lock);
}

/* ---- send batching (spec 1.7) ---- */

/* q_tx_need back to 0 (q_tx_lock held): a plain load first, as a
 * seq_cst store is a full barrier on every send. */
static inline void nv_tx_need_clear(struct nv_queue *q)
{
	if (atomic_load_explicit(&q->q_tx_need, memory_order_relaxed) != 0)
		atomic_store(&q->q_tx_need, 0);
}

/*
 * Send the open batch as one NVSP message (q_tx_lock held). -VMBUS_EAGAIN:
 * the ring is full; the batch stays, closed (q_agg_ready), and goes out
 * before anything else of this queue (the core set pending_send_sz, so the
 * host signals the channel when room appears: nv_tx_flush). Another error:
 * the channel is gone and the batch's frames with it (counted as done with
 * an error, so nothing waits for them).
 */
static int nv_agg_publish(struct nv_queue *q)
{
	struct netvsc_dev *nd = q->q_nd;
	struct nv_txslot *ts;
	uint32_t s, used;
	int r;

	if (q->q_agg_slot < 0)
		return 0;
	s = (uint32_t)q->q_agg_slot;
	ts = &q->q_slot[s];
	used = nv_ca_chunks_for(&nd->nd_ca, q->q_agg_len);
	if (used < ts->ts_nchunks) {
		/* Give back the run's unused tail. */
		nv_ca_put(nd, ts->ts_chunk + used, ts->ts_nchunks - used);
		ts->ts_nchunks = (uint16_t)used;
	}
	r = nv_send_copied(q, ts->ts_chunk, used, q->q_agg_len,
	    NVSP_RNDIS_CHANNEL_TYPE_DATA, nv_tid(q, s));
	if (r == -VMBUS_EAGAIN) {
		q->q_agg_ready = true;
		return r;
	}
	if (r == 0) {
		q->q_inflight++;
	} else {
		q->q_stats.qs_tx_done += ts->ts_frames;
		q->q_stats.qs_tx_errors += ts->ts_frames;
		nv_ca_put(nd, ts->ts_chunk, ts->ts_nchunks);
		ts->ts_chunk = NV_CHUNK_NONE;
		ts->ts_nchunks = 0;
		nv_slot_put(q, s);
	}
	q->q_agg_slot = -1;
	q->q_agg_ready = false;
	q->q_agg_len = 0;
	q->q_agg_cnt = 0;
	return r;
}

/* Most RNDIS messages per NVSP send: the host's limit, and what one section
 * can hold at all; 1 = no batching. */
static uint32_t nv_agg_max(const struct netvsc_dev *nd)
{
	uint32_t n = nd->nd_rndis_max_pkts;

	if (!nd->nd_ca.ca_sendbuf || nd->nd_rndis_align == 0)
		return 1;
	return n < NV_AGG_MAX ? n : NV_AGG_MAX;
}

/*
 * A copied frame that fits one section, appended to q's open batch (one is
 * opened when there is none). Every RNDIS message but the last is padded
 * to the host's alignment, its msg_len counting the padding. The batch is
 * sent when nothing of this queue is in flight (no completion would come
 * to send it), or when it is full; otherwise the next data completion
 * sends it (nv_tx_complete).
 */
static int nv_send_batched(struct nv_queue *q,
    const struct netvsc_frag *frags, uint32_t nfrag,
    const struct netvsc_tx_meta *meta, uint32_t len, uint32_t total,
    uint32_t max)
{
	struct netvsc_dev *nd = q->q_nd;
	struct nv_copy_area *ca = &nd->nd_ca;
	uint32_t align = nd->nd_rndis_align, off = 0, n;
	struct nv_txslot *ts;
	uint8_t *p;
	int s, r;

	nv_lock(nd, &q->q_tx_lock);
	nv_tx_need_clear(q);
	if (q->q_agg_slot >= 0) {
		off = (q->q_agg_len + align - 1u) & ~(align - 1u);
		if (q->q_agg_ready || q->q_agg_cnt >= max ||
		    off + total > q->q_agg_cap) {
			r = nv_agg_publish(q);
			if (r != 0)
				goto busy;
			off = 0;
		}
	}
	if (q->q_agg_slot < 0) {
		uint32_t c;

		s = nv_slot_get(q, NV_TS_DATA);
		if (s < 0) {
			r = s;
			goto busy;
		}
		/* Fewer than NV_AGG_PER_SECTION frames of this size fit a
		 * section: take a run of sections, sent by GPA when the
		 * batch outgrows the first (as a large copied frame is). */
		n = total * NV_AGG_PER_SECTION > ca->ca_chunk ? NV_AGG_RUN : 1u;
		c = nv_ca_alloc(nd, n);
		if (c == NV_CHUNK_NONE && n > 1u) {
			n = 1;
			c = nv_ca_alloc(nd, n);
		}
		if (c == NV_CHUNK_NONE) {
			nv_slot_put(q, (uint32_t)s);
			atomic_store(&q->q_tx_need, 1);
			r = -VMBUS_EAGAIN;
			goto busy;
		}
		q->q_slot[s].ts_chunk = c;
		q->q_slot[s].ts_nchunks = (uint16_t)n;
		q->q_agg_cap = n * ca->ca_chunk;
		q->q_agg_slot = s;
		q->q_agg_len = 0;
		q->q_agg_cnt = 0;
		off = 0;
	}
	ts = &q->q_slot[q->q_agg_slot];
	p = ca->ca_va + (uint64_t)ts->ts_chunk * ca->ca_chunk;
	if (off > q->q_agg_len) {
		/* Pad the previous message; its msg_len covers the padding. */
		uint8_t *prev = p + q->q_agg_last;

		vmbus_memset(p + q->q_agg_len, 0, off - q->q_agg_len);
		hv_put_le32(prev + 4, hv_get_le32(prev + 4) +
		    (off - q->q_agg_len));
	}
	p += off;
	p += nv_rndis_pkt_hdr(p, len, meta);
	for (uint32_t i = 0; i < nfrag; i++) {
		if (frags[i].nf_len)
			vmbus_memcpy(p, frags[i].nf_data, frags[i].nf_len);
		p += frags[i].nf_len;
	}
	q->q_agg_last = off;
	q->q_agg_len = off + total;
	q->q_agg_cnt++;
	ts->ts_frames++;
	ts->ts_bytes += len;
	q->q_stats.qs_tx_frames++;
	q->q_stats.qs_tx_bytes += len;
	q->q_stats.qs_tx_copied++;
	if (q->q_inflight == 0 || q->q_agg_cnt >= max ||
	    q->q_agg_len + RNDIS_PACKET_MSG_SIZE + NETVSC_ETHER_HDR_LEN + align >
	    q->q_agg_cap) {
		r = nv_agg_publish(q);
		if (r != 0 && r != -VMBUS_EAGAIN) {
			/* Gone with the channel: this frame is not sent (the
			 * publish counted it as done with an error). */
			q->q_stats.qs_tx_frames--;
			q->q_stats.qs_tx_bytes -= len;
			q->q_stats.qs_tx_copied--;
			q->q_stats.qs_tx_done--;
			q->q_stats.qs_tx_errors--;
			nv_unlock(nd, &q->q_tx_lock);
			return r;
		}
		if (r == -VMBUS_EAGAIN)
			atomic_store(&q->q_tx_want, true);
	}
	nv_unlock(nd, &q->q_tx_lock);
	return 0;
busy:
	if (r == -VMBUS_EAGAIN) {
		q->q_stats.qs_tx_busy++;
		atomic_store(&q->q_tx_want, true);
	}
	nv_unlock(nd, &q->q_tx_lock);
	return r;
}

void nv_tx_flush(struct nv_queue *q)
{
	struct netvsc_dev *nd = q->q_nd;

	nv_lock(nd, &q->q_tx_lock);
	if (q->q_agg_slot >= 0 && (q->q_agg_ready || q->q_inflight == 0))
		(void)nv_agg_publish(q);
	nv_unlock(nd, &q->q_tx_lock);
}

static int nv_send(struct netvsc_dev *nd, uint32_t qi,
    const struct netvsc_frag *frags, uint32_t nfrag,
    const struct netvsc_tx_meta *meta, netvsc_tx_done_fn *done, void *cookie,
    uint32_t len)
{
	struct vmbus_gpa_buf bufs[NV_TX_MAX_RANGES];
	uint64_t pfns[NV_TX_MAX_PFNS];
	struct nv_copy_area *ca;
	struct nv_txslot *ts;
	struct nv_queue *q;
	union nvsp_msg m;
	uint32_t hdr, total, nch = 0, c = NV_CHUNK_NONE, nbuf, npfn;
	bool copy;
	int s, r;

	q = nv_pick_queue(nd, qi, meta);
	if (q == NULL)
		return qi == NETVSC_QUEUE_AUTO ? -VMBUS_ENODEV : -VMBUS_EINVAL;
	if (!q->q_open)
		return -VMBUS_ENODEV;
	if (atomic_load(&q->q_dead))
		return -VMBUS_EPROTO;
	r = nv_meta_check(nd, meta, len);
	if (r != 0)
		return r;
	ca = &nd->nd_ca;
	hdr = RNDIS_PACKET_MSG_SIZE +
	    nv_ppi_count(meta ? meta->tm_flags : 0) * NV_PKTINFO_BYTES;
	total = hdr + len;
	nch = nv_ca_chunks_for(ca, total);
	copy = done == NULL || (nch == 1 &&
	    (nd->nd_cfg.nc_copy_max == 0 || len <= nd->nd_cfg.nc_copy_max));
	if (done == NULL && (nch == 0 || nch > ca->ca_nchunks))
		return -VMBUS_EMSGSIZE;
	if (done == NULL && nch == 1) {
		uint32_t max = nv_agg_max(nd);

		if (max > 1)
			return nv_send_batched(q, frags, nfrag, meta, len,
			    total, max);
	}

	nv_lock(nd, &q->q_tx_lock);
	if (q->q_agg_slot >= 0) {
		/* Frames of a queue leave in order: the batch first. */
		r = nv_agg_publish(q);
		if (r != 0) {
			if (r == -VMBUS_EAGAIN) {
				q->q_stats.qs_tx_busy++;
				atomic_store(&q->q_tx_want, true);
			}
			nv_unlock(nd, &q->q_tx_lock);
			return r;
		}
	}
	s = nv_slot_get(q, NV_TS_DATA);
	nv_tx_need_clear(q);
	if (s >= 0 && copy) {
		c = nv_ca_alloc(nd, nch);
		if (c == NV_CHUNK_NONE && done == NULL) {
			nv_slot_put(q, (uint32_t)s);
			s = -VMBUS_EAGAIN;
			/* netvsc_wait_tx / tx_ready wait for this much. */
			atomic_store(&q->q_tx_need, nch);
		} else if (c == NV_CHUNK_NONE) {
			copy = false;	/* no section free: zero copy */
		}
	}
	if (s < 0) {
		q->q_stats.qs_tx_busy++;
		atomic_store(&q->q_tx_want, true);
		nv_unlock(nd, &q->q_tx_lock);
		return -VMBUS_EAGAIN;
	}
	ts = &q->q_slot[s];
	ts->ts_done = done;
	ts->ts_cookie = cookie;
	ts->ts_bytes = len;
	ts->ts_frames = 1;
	q->q_inflight++;	/* before the send: its completion may beat us */
	if (copy) {
		ts->ts_chunk = c;
		ts->ts_nchunks = (uint16_t)nch;
	}
	nv_unlock(nd, &q->q_tx_lock);

	if (copy) {
		uint8_t *p = ca->ca_va + (uint64_t)c * ca->ca_chunk;

		(void)nv_rndis_pkt_hdr(p, len, meta);
		p += hdr;
		for (uint32_t i = 0; i < nfrag; i++) {
			if (frags[i].nf_len)
				vmbus_memcpy(p, frags[i].nf_data, frags[i].nf_len);
			p += frags[i].nf_len;
		}
		r = nv_send_copied(q, c, nch, total, NVSP_RNDIS_CHANNEL_TYPE_DATA,
		    nv_tid(q, (uint32_t)s));
	} else {
		uint32_t ho = (uint32_t)s * NV_TX_HDR_BYTES;
		uint8_t *p = q->q_hdr_va + ho;

		/* The RNDIS header and PPIs from our header page, the frame
		 * from the caller's pages (page buffers). */
		(void)nv_rndis_pkt_hdr(p, len, meta);
		bufs[0].gb_len = hdr;
		bufs[0].gb_offset = ho % HV_PAGE_SIZE;
		bufs[0].gb_npfn = 1;
		bufs[0].gb_pfn = &q->q_hdr_pfn[ho / HV_PAGE_SIZE];
		nbuf = 1;
		npfn = 0;
		r = 0;
		for (uint32_t i = 0; i < nfrag && r == 0; i++)
			r = nv_gpa_append(nd, frags[i].nf_data, frags[i].nf_len,
			    bufs, &nbuf, pfns, &npfn);
		if (r == 0) {
			nv_nvsp_rndis_msg(&m, NVSP_RNDIS_CHANNEL_TYPE_DATA,
			    NVSP_SEND_BUF_SECTION_NONE, 0);
			r = vmbus_chan_send_gpa(q->q_chan, bufs, nbuf, &m,
			    NVSP_MSG_SIZE, nv_tid(q, (uint32_t)s));
		}
	}
	if (r != 0) {
		nv_tx_undo(q, (uint32_t)s, r);
		return r;
	}
	nv_lock(nd, &q->q_tx_lock);
	q->q_stats.qs_tx_frames++;
	q->q_stats.qs_tx_bytes += len;
	if (copy)
		q->q_stats.qs_tx_copied++;
	else
		q->q_stats.qs_tx_gpa++;
	nv_unlock(nd, &q->q_tx_lock);
	return 0;
}

int netvsc_send(struct netvsc_dev *nd, uint32_t qi,
    const struct netvsc_frag *frags, uint32_t nfrag,
    const struct netvsc_tx_meta *meta, netvsc_tx_done_fn *done, void *cookie)
{
	uint32_t len = 0;
	int r;

	if (nd == NULL || frags == NULL || nfrag == 0 ||
	    nfrag > NETVSC_TX_MAX_FRAGS)
		return -VMBUS_EINVAL;
	for (uint32_t i = 0; i < nfrag; i++) {
		if ((frags[i].nf_data == NULL && frags[i].nf_len != 0) ||
		    frags[i].nf_len > NV_TX_MAX_FRAME)
			return -VMBUS_EINVAL;
		len += frags[i].nf_len;
		if (len > NV_TX_MAX_FRAME)
			return -VMBUS_EMSGSIZE;
	}
	if (len < NETVSC_ETHER_HDR_LEN)
		return -VMBUS_EINVAL;
	if (!nv_tx_enter(nd))
		return -VMBUS_ENODEV;
	r = nv_send(nd, qi, frags, nfrag, meta, done, cookie, len);
	nv_tx_exit(nd);
	return r;
}

/* ---- RNDIS control messages ---- */

struct nv_room_arg {
	struct nv_queue *ra_q;
	uint32_t ra_nch;
};

static bool nv_tx_room(struct netvsc_dev *nd, void *arg)
{
	struct nv_room_arg *ra = arg;
	bool ok;

	nv_lock(nd, &ra->ra_q->q_tx_lock);
	ok = ra->ra_q->q_slots_used < NV_TX_SLOTS;
	nv_unlock(nd, &ra->ra_q->q_tx_lock);
	nv_lock(nd, &nd->nd_ca_lock);
	ok = ok && nd->nd_ca.ca_used + ra->ra_nch <= nd->nd_ca.ca_nchunks;
	nv_unlock(nd, &nd->nd_ca_lock);
	return ok;
}

int nv_tx_rndis_ctl(struct netvsc_dev *nd, const void *msg, uint32_t len,
    uint64_t deadline)
{
	struct nv_queue *q = nd->nd_q[0];
	struct nv_copy_area *ca = &nd->nd_ca;
	struct nv_room_arg ra;
	uint32_t nch = nv_ca_chunks_for(ca, len), c;
	uint64_t now;
	int s, r;

	if (q == NULL || !q->q_open)
		return -VMBUS_ENODEV;
	if (nch == 0 || nch > ca->ca_nchunks)
		return -VMBUS_EMSGSIZE;
	for (;;) {
		nv_lock(nd, &q->q_tx_lock);
		s = nv_slot_get(q, NV_TS_RNDIS);
		c = NV_CHUNK_NONE;
		if (s >= 0) {
			c = nv_ca_alloc(nd, nch);
			if (c == NV_CHUNK_NONE) {
				nv_slot_put(q, (uint32_t)s);
				s = -VMBUS_EAGAIN;
			} else {
				q->q_slot[s].ts_chunk = c;
				q->q_slot[s].ts_nchunks = (uint16_t)nch;
			}
		}
		nv_unlock(nd, &q->q_tx_lock);
		if (s >= 0) {
			vmbus_memcpy(ca->ca_va + (uint64_t)c * ca->ca_chunk, msg,
			    len);
			r = nv_send_copied(q, c, nch, len,
			    NVSP_RNDIS_CHANNEL_TYPE_CONTROL, nv_tid(q, (uint32_t)s));
			if (r == 0)
				return 0;
			nv_tx_undo(q, (uint32_t)s, 0);
			if (r != -VMBUS_EAGAIN)
				return r;
			now = nv_now(nd);
			if (now >= deadline)
				return -VMBUS_ETIMEDOUT;
			r = vmbus_chan_wait_tx(q->q_chan, 1024, deadline - now);
			if (r != 0)
				return r;
			continue;
		}
		/* No slot or section now: wait for completions. */
		ra.ra_q = q;
		ra.ra_nch = nch;
		r = nv_wait(nd, nv_tx_room, &ra, deadline);
		if (r != 0)
			return r;
	}
}

/* ---- completions ---- */

void nv_tx_complete(struct nv_queue *q, uint64_t tid, const uint8_t *payload,
    uint32_t len)
{
	struct netvsc_dev *nd = q->q_nd;
	uint64_t slot1 = tid & NV_TID_SLOT_MASK;
	uint64_t gen = (tid >> NV_TID_GEN_SHIFT) & UINT32_MAX;
	struct nv_txslot *ts = NULL;
	netvsc_tx_done_fn *done = NULL;
	void *cookie = NULL;
	bool drained;
	int st = 0;

	nv_lock(nd, &q->q_tx_lock);
	if ((tid >> NV_TID_TAG_SHIFT) == NV_TID_TAG && slot1 >= 1 &&
	    slot1 <= NV_TX_SLOTS) {
		ts = &q->q_slot[slot1 - 1u];
		if (ts->ts_state != NV_TS_ACTIVE || ts->ts_gen != gen)
			ts = NULL;
	}
	if (ts == NULL) {
		/* Unknown, idle, stale or duplicate: drop, count (hostile
		 * host 6); no callback runs. */
		q->q_stats.qs_bad_completions++;
		nv_unlock(nd, &q->q_tx_lock);
		if (nv_ratelimit(nd, &q->q_log_next))
			nv_log(nd, VMBUS_LOG_WARN,
			    "%s: completion with unknown id 0x%llx dropped",
			    nd->nd_name, (unsigned long long)tid);
		return;
	}
	if (ts->ts_kind == NV_TS_NVSP) {
		ts->ts_resp_len = len < NVSP_MSG_SIZE ? len : NVSP_MSG_SIZE;
		vmbus_memcpy(ts->ts_resp, payload, ts->ts_resp_len);
		ts->ts_state = NV_TS_DONE;
		nv_unlock(nd, &q->q_tx_lock);
		nv_wake(nd);
		return;
	}
	if (len < NVSP_SEND_RNDIS_PKT_COMPLETE_MINLEN ||
	    hv_get_le32(payload) != NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE) {
		q->q_stats.qs_bad_nvsp++;
		st = -VMBUS_EIO;
	} else if (hv_get_le32(payload + 4) != NVSP_STAT_SUCCESS) {
		st = -VMBUS_EIO;
	}
	if (ts->ts_kind == NV_TS_DATA) {
		q->q_stats.qs_tx_done += ts->ts_frames;
		if (st != 0)
			q->q_stats.qs_tx_errors += ts->ts_frames;
		if (q->q_inflight > 0)
			q->q_inflight--;
	}
	done = ts->ts_done;
	cookie = ts->ts_cookie;
	nv_ca_put(nd, ts->ts_chunk, ts->ts_nchunks);
	ts->ts_chunk = NV_CHUNK_NONE;
	ts->ts_nchunks = 0;
	nv_slot_put(q, (uint32_t)(slot1 - 1u));
	/* Nothing in flight now: no later completion would send the open
	 * batch, so it goes now. */
	if (q->q_agg_slot >= 0 && q->q_inflight == 0)
		(void)nv_agg_publish(q);
	drained = q->q_slots_used == 0;
	nv_unlock(nd, &q->q_tx_lock);
	if (done != NULL)
		done(cookie, st);
	if (drained)
		nv_wake(nd);	/* teardown waits for the drain */
}

void nv_tx_fail_all(struct nv_queue *q, int status, bool leak)
{
	struct netvsc_dev *nd = q->q_nd;

	for (;;) {
		netvsc_tx_done_fn *done = NULL;
		void *cookie = NULL;
		bool found = false;

		nv_lock(nd, &q->q_tx_lock);
		for (uint32_t i = 0; i < NV_TX_SLOTS && !found; i++) {
			struct nv_txslot *ts = &q->q_slot[i];

			if (ts->ts_state != NV_TS_ACTIVE ||
			    ts->ts_kind == NV_TS_NVSP)
				continue;
			found = true;
			done = ts->ts_done;
			cookie = ts->ts_cookie;
			if (!leak)
				nv_ca_put(nd, ts->ts_chunk, ts->ts_nchunks);
			ts->ts_chunk = NV_CHUNK_NONE;
			ts->ts_nchunks = 0;
			nv_slot_put(q, i);
		}
		if (!found) {
			/* The open batch's slot was among them. */
			q->q_agg_slot = -1;
			q->q_agg_ready = false;
			q->q_agg_len = 0;
			q->q_agg_cnt = 0;
			q->q_inflight = 0;
		}
		nv_unlock(nd, &q->q_tx_lock);
		if (!found)
			return;
		/* If the host never let go (close failed), the caller's
		 * memory stays the host's: no completion (STYLE 9). */
		if (done != NULL && !leak)
			done(cookie, status);
	}
}

uint32_t nv_tx_outstanding(struct netvsc_dev *nd)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < nd->nd_nq; i++) {
		struct nv_queue *q = nd->nd_q[i];

		if (q == NULL)
			continue;
		nv_lock(nd, &q->q_tx_lock);
		for (uint32_t k = 0; k < NV_TX_SLOTS; k++)
			n += q->q_slot[k].ts_state == NV_TS_ACTIVE &&
			    q->q_slot[k].ts_kind != NV_TS_NVSP;
		nv_unlock(nd, &q->q_tx_lock);
	}
	return n;
}

void nv_tx_kick_ready(struct nv_queue *q)
{
	struct netvsc_dev *nd = q->q_nd;
	void (*fn)(void *, struct netvsc_dev *, uint32_t);

	if (!atomic_load(&q->q_tx_want))
		return;
	nv_lock(nd, &q->q_tx_lock);
	if (q->q_slots_used >= NV_TX_SLOTS) {
		nv_unlock(nd, &q->q_tx_lock);
		return;
	}
	nv_unlock(nd, &q->q_tx_lock);
	if (!nv_ca_room(nd, atomic_load(&q->q_tx_need)))
		return;
	atomic_store(&q->q_tx_want, false);
	fn = atomic_load(&nd->nd_cb_tx_ready);
	if (fn != NULL)
		fn(atomic_load(&nd->nd_cb_arg), nd, q->q_idx);
}

struct nv_wtx_arg {
	struct nv_queue *wa_q;
};

static bool nv_wtx_cond(struct netvsc_dev *nd, void *arg)
{
	struct nv_wtx_arg *wa = arg;
	bool ok;

	if (atomic_load(&nd->nd_state) != NV_ST_UP)
		return true;
	nv_lock(nd, &wa->wa_q->q_tx_lock);
	ok = wa->wa_q->q_slots_used < NV_TX_SLOTS;
	nv_unlock(nd, &wa->wa_q->q_tx_lock);
	/* The sections the last refused send needed, contiguous. */
	return ok && nv_ca_room(nd, atomic_load(&wa->wa_q->q_tx_need));
}

static int nv_wait_tx(struct netvsc_dev *nd, uint32_t qi, uint64_t deadline)
{
	struct nv_wtx_arg wa;
	int r;

	if (qi >= nd->nd_nq || nd->nd_q[qi] == NULL)
		return -VMBUS_EINVAL;
	wa.wa_q = nd->nd_q[qi];
	r = nv_wait(nd, nv_wtx_cond, &wa, deadline);
	if (r != 0)
		return r;
	/* Room in the ring for a GPA send with a full range list; in
	 * slices, so a teardown never waits long for us to leave. */
	for (;;) {
		uint64_t now = nv_now(nd), t;

		if (atomic_load(&nd->nd_state) != NV_ST_UP)
			return -VMBUS_ENODEV;
		if (now >= deadline)
			return -VMBUS_ETIMEDOUT;
		t = deadline - now < NV_WAIT_SLICE_NS ? deadline - now :
		    NV_WAIT_SLICE_NS;
		r = vmbus_chan_wait_tx(wa.wa_q->q_chan, NVSP_MSG_SIZE + 1024u, t);
		if (r != -VMBUS_ETIMEDOUT)
			return r;
	}
}

int netvsc_wait_tx(struct netvsc_dev *nd, uint32_t qi, uint64_t timeout_ns)
{
	struct vmbus_device *dev;
	int r;

	if (nd == NULL || qi >= NETVSC_QUEUES_MAX)
		return -VMBUS_EINVAL;
	/* It polls the bus: no detach under it (nv_ctl_enter). */
	dev = nd->nd_dev;
	if (vmbus_device_enter(dev) != 0)
		return -VMBUS_ENODEV;
	if (nv_tx_enter(nd)) {
		r = nv_wait_tx(nd, qi, nv_deadline(nd, timeout_ns));
		nv_tx_exit(nd);
	} else {
		r = -VMBUS_ENODEV;
	}
	vmbus_device_exit(dev);
	return r;
}
