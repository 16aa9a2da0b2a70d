/*
 * src/guest/netvsc/netvsc_rx.c - the receive path (spec vmbus-devices.md
 * 1.6, 2.3, 2.4; hostile-host 13, 14): transfer-page packets, the single
 * copy-in of the receive-buffer boundary (nv_rx_copyin), RNDIS data
 * messages and their per-packet info, and the receive completion that is
 * returned for EVERY transfer-page packet, good or bad (queued when the
 * send ring is full, so the host always gets its sections back).
 *
 * Every offset and length here comes from the host: each is checked,
 * in 64 bits where a sum could wrap, against the private copy it indexes.
 */
#include "netvsc_priv.h"

#pragma GCC diagnostic error "-Wconversion"
#pragma GCC diagnostic error "-Wsign-compare"

/* ---- receive completions ---- */

bool nv_rxc_full(const struct nv_queue *q)
{
	return q->q_rxc_tail - q->q_rxc_head >= NV_RXC_QUEUE;
}

static int nv_rxc_send(struct nv_queue *q, uint64_t tid, bool fail)
{
	uint8_t msg[NVSP_SEND_RNDIS_PKT_COMPLETE_MINLEN];

	_Static_assert(sizeof(msg) == 8, "type + status");
	/* L sends these 8 bytes; every host accepts >= 8 (spec 1.4). */
	hv_put_le32(msg, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
	hv_put_le32(msg + 4, fail ? NVSP_STAT_FAIL : NVSP_STAT_SUCCESS);
	return vmbus_chan_send(q->q_chan, VMBUS_PACKET_TYPE_COMP, 0, msg,
	    sizeof(msg), tid);
}

void nv_rxc_flush(struct nv_queue *q)
{
	while (q->q_rxc_head != q->q_rxc_tail) {
		uint32_t i = q->q_rxc_head % NV_RXC_QUEUE;
		int r = nv_rxc_send(q, q->q_rxc_tid[i], q->q_rxc_fail[i] != 0);

		if (r == -VMBUS_EAGAIN)
			return;	/* the host signals when it made room */
		/* Sent, or the channel is dead (nothing more owed). */
		if (r == 0)
			q->q_stats.qs_rx_comp_sent++;
		q->q_rxc_head++;
	}
}

static void nv_rxc_complete(struct nv_queue *q, uint64_t tid, bool fail)
{
	int r;

	if (fail)
		q->q_stats.qs_rx_comp_fail++;
	if (q->q_rxc_head == q->q_rxc_tail) {
		r = nv_rxc_send(q, tid, fail);
		if (r == 0) {
			q->q_stats.qs_rx_comp_sent++;
			return;
		}
		if (r != -VMBUS_EAGAIN)
			return;
	}
	/* The callback never reads a packet while the queue is full. */
	q->q_rxc_tid[q->q_rxc_tail % NV_RXC_QUEUE] = tid;
	q->q_rxc_fail[q->q_rxc_tail % NV_RXC_QUEUE] = fail ? 1 : 0;
	q->q_rxc_tail++;
	q->q_stats.qs_rx_comp_deferred++;
}

/* ---- data messages ---- */

static void nv_rx_bad(struct nv_queue *q, uint64_t *counter, const char *what)
{
	struct netvsc_dev *nd = q->q_nd;

	(*counter)++;
	q->q_stats.qs_rx_drops++;
	if (nv_ratelimit(nd, &q->q_log_next))
		nv_log(nd, VMBUS_LOG_WARN, "%s: queue %u: %s: dropped",
		    nd->nd_name, (unsigned)q->q_idx, what);
}

/*
 * Walk the per-packet info list [pos, end) of a private copy: every
 * record at least its 12-byte header, its payload inside the record, the
 * record inside the list; each step advances by >= 12 bytes and the walk
 * is bounded (hostile host 14). Returns false for a malformed list.
 */
static bool nv_rx_ppis(struct nv_queue *q, const uint8_t *buf, uint32_t pos,
    uint32_t end, struct netvsc_rx_info *ri)
{
	for (uint32_t n = 0; pos < end; n++) {
		uint32_t sz, type, po, plen, v;

		if (n >= NV_PPI_MAX || end - pos < sizeof(struct rndis_pktinfo))
			return false;
		sz = hv_get_le32(buf + pos);
		type = hv_get_le32(buf + pos + 4);
		po = hv_get_le32(buf + pos + 8);
		if (sz < sizeof(struct rndis_pktinfo) || sz > end - pos ||
		    po < sizeof(struct rndis_pktinfo) || po > sz)
			return false;
		plen = sz - po;
		v = plen >= 4 ? hv_get_le32(buf + pos + po) : 0;
		switch (type) {
		case NDIS_PKTINFO_TYPE_CSUM:
			if (plen < 4)
				return false;
			if (v & NDIS_RXCSUM_INFO_IPCS_OK)
				ri->ri_flags |= NETVSC_RX_IP_CSUM_OK;
			if (v & NDIS_RXCSUM_INFO_IPCS_FAILED)
				ri->ri_flags |= NETVSC_RX_IP_CSUM_BAD;
			if (v & NDIS_RXCSUM_INFO_TCPCS_OK)
				ri->ri_flags |= NETVSC_RX_TCP_CSUM_OK;
			if (v & NDIS_RXCSUM_INFO_TCPCS_FAILED)
				ri->ri_flags |= NETVSC_RX_TCP_CSUM_BAD;
			if (v & NDIS_RXCSUM_INFO_UDPCS_OK)
				ri->ri_flags |= NETVSC_RX_UDP_CSUM_OK;
			if (v & NDIS_RXCSUM_INFO_UDPCS_FAILED)
				ri->ri_flags |= NETVSC_RX_UDP_CSUM_BAD;
			break;
		case NDIS_PKTINFO_TYPE_VLAN:
			if (plen < 4)
				return false;
			ri->ri_flags |= NETVSC_RX_VLAN;
			ri->ri_vlan_tci = (uint16_t)((NDIS_VLAN_INFO_PRI(v) << 13) |
			    ((v & NDIS_VLAN_INFO_CFI) ? 0x1000u : 0u) |
			    NDIS_VLAN_INFO_ID(v));
			break;
		case NDIS_PKTINFO_TYPE_HASHVAL:
			if (plen < 4)
				return false;
			ri->ri_flags |= NETVSC_RX_HASH;
			ri->ri_hash = v;
			break;
		case NDIS_PKTINFO_TYPE_HASHINF:
			if (plen < 4)
				return false;
			ri->ri_hash_info = v;
			break;
		case RNDIS_PKTINFO_TYPE_PKTINFO_ID:
			/* RSC fragment ids: we never enable RSC. */
			if (plen < sizeof(struct rndis_pktinfo_id))
				return false;
			break;
		default:
			/* Unknown types are skipped (hosts add new ones). */
			q->q_stats.qs_rx_unknown_ppi++;
			break;
		}
		pos += sz;
	}
	return true;
}

/* A PACKET_MSG of mlen bytes at buf (private copy). */
static void nv_rx_data(struct nv_queue *q, const uint8_t *buf, uint32_t mlen)
{
	struct netvsc_dev *nd = q->q_nd;
	struct netvsc_rx_info ri;
	uint32_t doff, dlen, poff, plen;
	uint64_t dabs, pabs;
	void (*rx)(void *, struct netvsc_dev *, uint32_t, const void *,
	    uint32_t, const struct netvsc_rx_info *);

	if (mlen < RNDIS_PACKET_MSG_SIZE) {
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_rndis, "short packet message");
		return;
	}
	doff = hv_get_le32(buf + 8);
	dlen = hv_get_le32(buf + 12);
	poff = hv_get_le32(buf + 28);
	plen = hv_get_le32(buf + 32);
	/* Offsets count from byte 8; with the header they stay inside the
	 * message (the 8-byte header counted, spec 2.2). */
	dabs = (uint64_t)doff + RNDIS_HEADER_SIZE;
	if (doff < RNDIS_PACKET_MSG_OFFSET_MIN || dlen < NETVSC_ETHER_HDR_LEN ||
	    dabs + dlen > mlen) {
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_rndis,
		    "data offset/length outside the message");
		return;
	}
	vmbus_memset(&ri, 0, sizeof(ri));
	if (plen != 0) {
		pabs = (uint64_t)poff + RNDIS_HEADER_SIZE;
		if (poff < RNDIS_PACKET_MSG_OFFSET_MIN || pabs + plen > mlen ||
		    !nv_rx_ppis(q, buf, (uint32_t)pabs, (uint32_t)(pabs + plen),
		    &ri)) {
			nv_rx_bad(q, &q->q_stats.qs_rx_bad_ppi,
			    "per-packet info malformed");
			return;
		}
	}
	rx = atomic_load(&nd->nd_cb_rx);
	if (rx == NULL) {
		q->q_stats.qs_rx_no_callback++;
		q->q_stats.qs_rx_drops++;
		return;
	}
	q->q_stats.qs_rx_frames++;
	q->q_stats.qs_rx_bytes += dlen;
	rx(atomic_load(&nd->nd_cb_arg), nd, q->q_idx, buf + dabs, dlen, &ri);
}

/*
 * nv_rx_copyin - the single copy-in of a receive-buffer section (STYLE 5):
 * bytes [off, off + cnt) of the shared receive buffer, already checked to
 * lie inside it and to fit q_rxbuf, are copied once into q_rxbuf; nothing
 * reads the shared buffer anywhere else.
 */
static const uint8_t *nv_rx_copyin(struct nv_queue *q, uint32_t off,
    uint32_t cnt)
{
	nv_shm_copy_in(q->q_rxbuf, q->q_nd->nd_rbuf + off, cnt);
	return q->q_rxbuf;
}

/* One RNDIS message received in a range of cnt bytes. */
static void nv_rx_msg(struct nv_queue *q, const uint8_t *buf, uint32_t cnt)
{
	uint32_t type = hv_get_le32(buf), mlen = hv_get_le32(buf + 4);

	if (mlen < RNDIS_HEADER_SIZE || mlen > cnt) {
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_rndis,
		    "RNDIS length outside the range");
		return;
	}
	if (type == REMOTE_NDIS_PACKET_MSG) {
		nv_rx_data(q, buf, mlen);
		return;
	}
	q->q_stats.qs_rx_ctl_msgs++;
	nv_rndis_rx_ctl(q, buf, mlen, cnt);
}

/*
 * A transfer-page packet (whole private copy pkt[0..len), descriptor
 * validated by the core). Bad packets or ranges are dropped and counted;
 * the completion goes back in every case (hostile host 13).
 */
void nv_rx_xfer(struct nv_queue *q, const uint8_t *pkt, uint32_t len,
    const struct vmbus_pkt_info *pi)
{
	struct netvsc_dev *nd = q->q_nd;
	uint32_t hdr = pi->pi_hdr_len, nr, plen;
	bool fail = false;

	q->q_stats.qs_rx_xfer_pkts++;
	if (hdr < sizeof(struct vmbus_xfer_page_hdr) || hdr > len) {
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_pkt, "transfer-page header");
		fail = true;
		goto done;
	}
	if (hv_get_le16(pkt + 16) != NV_RECV_BUF_ID) {
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_pkt, "unknown transfer page set");
		fail = true;
		goto done;
	}
	nr = hv_get_le32(pkt + 20);
	if (nr > NVSP_RSC_MAX_RANGES ||
	    sizeof(struct vmbus_xfer_page_hdr) +
	    (uint64_t)nr * sizeof(struct vmbus_xfer_page_range) > hdr) {
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_pkt,
		    "range count does not fit the packet");
		fail = true;
		goto done;
	}
	plen = len - hdr;
	if (plen < 8u || hv_get_le32(pkt + hdr) != NVSP_MSG1_TYPE_SEND_RNDIS_PKT) {
		q->q_stats.qs_bad_nvsp++;
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_pkt,
		    "transfer-page packet without SEND_RNDIS_PKT");
		fail = true;
		goto done;
	}
	if (nd->nd_rbuf == NULL || q->q_rxbuf == NULL) {
		nv_rx_bad(q, &q->q_stats.qs_rx_bad_pkt,
		    "receive before the receive buffer");
		fail = true;
		goto done;
	}
	for (uint32_t i = 0; i < nr; i++) {
		const uint8_t *r = pkt + sizeof(struct vmbus_xfer_page_hdr) +
		    (size_t)i * sizeof(struct vmbus_xfer_page_range);
		uint32_t cnt = hv_get_le32(r), off = hv_get_le32(r + 4);

		q->q_stats.qs_rx_ranges++;
		if (cnt < RNDIS_HEADER_SIZE || cnt > q->q_rxbuf_len ||
		    (uint64_t)off + cnt > nd->nd_rbuf_bytes) {
			nv_rx_bad(q, &q->q_stats.qs_rx_bad_range,
			    "range outside the receive buffer");
			fail = true;
			continue;
		}
		nv_rx_msg(q, nv_rx_copyin(q, off, cnt), cnt);
	}
done:
	nv_rxc_complete(q, pi->pi_trans_id, fail);
}
