/*
 * src/guest/netvsc/netvsc_rndis.c - RNDIS control over NVSP (spec
 * vmbus-devices.md section 2): request slots matched by request id,
 * INITIALIZE, QUERY, SET, KEEPALIVE, RESET and HALT, the RNDIS part of
 * the bring-up (MTU, MAC addresses, offloads, link state, RSS
 * capabilities and parameters), and status indications.
 */
#include "netvsc_priv.h"

#pragma GCC diagnostic error "-Wconversion"
#pragma GCC diagnostic error "-Wsign-compare"

/* ---- request slots ---- */

static int nv_rs_get(struct netvsc_dev *nd, uint32_t want, uint32_t *rid)
{
	int got = -VMBUS_EBUSY;

	nv_lock(nd, &nd->nd_lock);
	for (uint32_t i = 0; i < NV_RNDIS_SLOTS; i++) {
		struct nv_rndis_slot *rs = &nd->nd_rs[i];

		if (rs->rs_state != NV_RS_FREE)
			continue;
		/* Never 0 (D rejects it); unique among live requests. */
		if (++nd->nd_rid_seq == 0)
			nd->nd_rid_seq = 1;
		rs->rs_rid = nd->nd_rid_seq;
		rs->rs_want = want;
		rs->rs_len = 0;
		rs->rs_msg_len = 0;
		rs->rs_state = NV_RS_WAIT;
		*rid = rs->rs_rid;
		got = (int)i;
		break;
	}
	nv_unlock(nd, &nd->nd_lock);
	return got;
}

static void nv_rs_put(struct netvsc_dev *nd, int slot)
{
	nv_lock(nd, &nd->nd_lock);
	nd->nd_rs[slot].rs_state = NV_RS_FREE;
	nv_unlock(nd, &nd->nd_lock);
}

static bool nv_rs_done(struct netvsc_dev *nd, void *arg)
{
	return nd->nd_rs[*(int *)arg].rs_state == NV_RS_DONE;
}

/* Send msg[0..len) (its request id already in place) and wait for the
 * reply of slot; the reply is then in nd_rs[slot].rs_resp. */
static int nv_rndis_exec(struct netvsc_dev *nd, int slot, const void *msg,
    uint32_t len)
{
	uint64_t deadline = nv_deadline(nd, nd->nd_cfg.nc_timeout_ns);
	int r;

	r = nv_tx_rndis_ctl(nd, msg, len, deadline);
	if (r == 0)
		r = nv_wait(nd, nv_rs_done, &slot, deadline);
	return r;
}

void nv_rndis_fail_waiters(struct netvsc_dev *nd)
{
	/* Waiters see the closed channel in nv_wait; just wake them. */
	nv_wake(nd);
}

/* ---- replies and indications (callback context) ---- */

static void nv_rndis_reply(struct netvsc_dev *nd, uint32_t type,
    const uint8_t *buf, uint32_t mlen)
{
	uint32_t rid = 0;
	bool found = false;

	if (type != REMOTE_NDIS_RESET_CMPLT) {
		if (mlen < sizeof(struct rndis_req_hdr)) {
			nv_lock(nd, &nd->nd_lock);
			nd->nd_stats.ns_rndis_unknown_rid++;
			nv_unlock(nd, &nd->nd_lock);
			return;
		}
		rid = hv_get_le32(buf + 8);
	}
	nv_lock(nd, &nd->nd_lock);
	for (uint32_t i = 0; i < NV_RNDIS_SLOTS && !found; i++) {
		struct nv_rndis_slot *rs = &nd->nd_rs[i];

		if (rs->rs_state != NV_RS_WAIT || rs->rs_want != type ||
		    (type != REMOTE_NDIS_RESET_CMPLT && rs->rs_rid != rid))
			continue;
		/* A second private copy, bounded by the slot. */
		rs->rs_len = mlen < NV_RNDIS_RESP_MAX ? mlen : NV_RNDIS_RESP_MAX;
		rs->rs_msg_len = mlen;
		vmbus_memcpy(rs->rs_resp, buf, rs->rs_len);
		rs->rs_state = NV_RS_DONE;
		found = true;
	}
	if (!found)
		nd->nd_stats.ns_rndis_unknown_rid++;
	else if (!nv_polled(nd))
		nd->nd_plat->wake_all(nd->nd_plat->ctx, &nd->nd_wait);
	nv_unlock(nd, &nd->nd_lock);
}

static void nv_rndis_status(struct nv_queue *q, const uint8_t *buf,
    uint32_t mlen, uint32_t range_len)
{
	struct netvsc_dev *nd = q->q_nd;
	struct netvsc_link nl;
	uint32_t status, blen, boff;
	uint64_t babs = 0;
	void (*fn)(void *, struct netvsc_dev *, const struct netvsc_link *);

	if (mlen < sizeof(struct rndis_status_msg)) {
		q->q_stats.qs_rx_bad_rndis++;
		return;
	}
	status = hv_get_le32(buf + 8);
	blen = hv_get_le32(buf + 12);
	boff = hv_get_le32(buf + 16);
	if (blen != 0) {
		/* Checked against the range, not msg_len: pre-"Fe" hosts
		 * leave the buffer out of msg_len (L 3946688edbc5). */
		babs = (uint64_t)boff + RNDIS_HEADER_SIZE;
		if (babs < sizeof(struct rndis_status_msg) ||
		    babs + blen > range_len) {
			q->q_stats.qs_rx_bad_rndis++;
			if (nv_ratelimit(nd, &q->q_log_next))
				nv_log(nd, VMBUS_LOG_WARN,
				    "%s: status 0x%x buffer outside the message",
				    nd->nd_name, (unsigned)status);
			return;
		}
	}
	vmbus_memset(&nl, 0, sizeof(nl));
	switch (status) {
	case RNDIS_STATUS_MEDIA_CONNECT:
		atomic_store(&nd->nd_link_up, true);
		nl.nl_event = NETVSC_LINK_EV_CONNECT;
		break;
	case RNDIS_STATUS_MEDIA_DISCONNECT:
		atomic_store(&nd->nd_link_up, false);
		nl.nl_event = NETVSC_LINK_EV_DISCONNECT;
		break;
	case RNDIS_STATUS_LINK_SPEED_CHANGE:
		if (blen < 4) {
			q->q_stats.qs_rx_bad_rndis++;
			return;
		}
		atomic_store(&nd->nd_link_speed,
		    (uint64_t)hv_get_le32(buf + babs) * NDIS_LINK_SPEED_UNIT_BPS);
		nl.nl_event = NETVSC_LINK_EV_SPEED;
		break;
	case RNDIS_STATUS_NETWORK_CHANGE:
		nl.nl_event = NETVSC_LINK_EV_NETWORK_CHANGE;
		break;
	default:
		/* Other indications (offload config, ...): ignored (L, D). */
		nv_lock(nd, &nd->nd_lock);
		nd->nd_stats.ns_status_indications++;
		nv_unlock(nd, &nd->nd_lock);
		return;
	}
	nv_lock(nd, &nd->nd_lock);
	nd->nd_stats.ns_status_indications++;
	nd->nd_stats.ns_link_changes++;
	nv_unlock(nd, &nd->nd_lock);
	nl.nl_up = atomic_load(&nd->nd_link_up);
	nl.nl_speed_bps = atomic_load(&nd->nd_link_speed);
	fn = atomic_load(&nd->nd_cb_link);
	if (fn != NULL)
		fn(atomic_load(&nd->nd_cb_arg), nd, &nl);
}

void nv_rndis_rx_ctl(struct nv_queue *q, const uint8_t *buf, uint32_t mlen,
    uint32_t range_len)
{
	struct netvsc_dev *nd = q->q_nd;
	uint32_t type = hv_get_le32(buf);

	switch (type) {
	case REMOTE_NDIS_INITIALIZE_CMPLT:
	case REMOTE_NDIS_QUERY_CMPLT:
	case REMOTE_NDIS_SET_CMPLT:
	case REMOTE_NDIS_KEEPALIVE_CMPLT:
	case REMOTE_NDIS_RESET_CMPLT:
		nv_rndis_reply(nd, type, buf, mlen);
		break;
	case REMOTE_NDIS_INDICATE_STATUS_MSG:
		nv_rndis_status(q, buf, mlen, range_len);
		break;
	default:
		nv_lock(nd, &nd->nd_lock);
		nd->nd_stats.ns_rndis_unknown_msg++;
		nv_unlock(nd, &nd->nd_lock);
		if (nv_ratelimit(nd, &q->q_log_next))
			nv_log(nd, VMBUS_LOG_WARN,
			    "%s: unknown RNDIS message 0x%x dropped",
			    nd->nd_name, (unsigned)type);
		break;
	}
}

/* ---- requests ---- */

/* Status of a reply with rid at 8 and status at 12 (16 bytes minimum). */
static int nv_reply_status(const struct nv_rndis_slot *rs, uint32_t *status)
{
	uint32_t st;

	if (rs->rs_len < 16u)
		return -VMBUS_EPROTO;
	st = hv_get_le32(rs->rs_resp + 12);
	if (status != NULL)
		*status = st;
	return st == RNDIS_STATUS_SUCCESS ? 0 : -VMBUS_EIO;
}

int nv_rndis_query(struct netvsc_dev *nd, uint32_t oid, const void *in,
    uint32_t inlen, void *out, uint32_t *outlen, uint32_t *status)
{
	uint8_t *m = nd->nd_reqbuf;
	const struct nv_rndis_slot *rs;
	uint32_t rid, ilen, ioff, len = (uint32_t)sizeof(struct rndis_query_req);
	uint64_t iabs;
	int slot, r;

	if (inlen > NV_RNDIS_REQ_MAX - len)
		return -VMBUS_EINVAL;
	slot = nv_rs_get(nd, REMOTE_NDIS_QUERY_CMPLT, &rid);
	if (slot < 0)
		return slot;
	rs = &nd->nd_rs[slot];
	vmbus_memset(m, 0, len);
	hv_put_le32(m + 0, REMOTE_NDIS_QUERY_MSG);
	hv_put_le32(m + 4, len + inlen);
	hv_put_le32(m + 8, rid);
	hv_put_le32(m + 12, oid);
	hv_put_le32(m + 16, inlen);
	hv_put_le32(m + 20, RNDIS_QUERY_REQ_INFOBUFOFFSET);
	if (inlen)
		vmbus_memcpy(m + len, in, inlen);
	r = nv_rndis_exec(nd, slot, m, len + inlen);
	if (r != 0)
		goto out;
	if (rs->rs_len < sizeof(struct rndis_query_comp)) {
		r = -VMBUS_EPROTO;
		goto out;
	}
	r = nv_reply_status(rs, status);
	if (r != 0)
		goto out;
	ilen = hv_get_le32(rs->rs_resp + 16);
	ioff = hv_get_le32(rs->rs_resp + 20);
	if (ilen == 0) {
		*outlen = 0;
		goto out;
	}
	/* L requires offset >= 16 and the data inside msg_len. */
	iabs = (uint64_t)ioff + RNDIS_HEADER_SIZE;
	if (ioff < RNDIS_QUERY_COMP_INFOBUFOFFSET ||
	    iabs + ilen > rs->rs_msg_len || iabs + ilen > rs->rs_len) {
		r = -VMBUS_EPROTO;
		goto out;
	}
	if (ilen > *outlen) {
		*outlen = ilen;
		r = -VMBUS_ENOBUFS;
		goto out;
	}
	vmbus_memcpy(out, rs->rs_resp + iabs, ilen);
	*outlen = ilen;
out:
	if (r == -VMBUS_EPROTO)
		nv_log(nd, VMBUS_LOG_WARN, "%s: malformed QUERY_CMPLT for 0x%x",
		    nd->nd_name, (unsigned)oid);
	nv_rs_put(nd, slot);
	return r;
}

int nv_rndis_set(struct netvsc_dev *nd, uint32_t oid, const void *data,
    uint32_t dlen, uint32_t *status)
{
	uint8_t *m = nd->nd_reqbuf;
	uint32_t rid, len = (uint32_t)sizeof(struct rndis_set_req);
	int slot, r;

	if (dlen > NV_RNDIS_REQ_MAX - len)
		return -VMBUS_EINVAL;
	slot = nv_rs_get(nd, REMOTE_NDIS_SET_CMPLT, &rid);
	if (slot < 0)
		return slot;
	vmbus_memset(m, 0, len);
	hv_put_le32(m + 0, REMOTE_NDIS_SET_MSG);
	hv_put_le32(m + 4, len + dlen);
	hv_put_le32(m + 8, rid);
	hv_put_le32(m + 12, oid);
	hv_put_le32(m + 16, dlen);
	hv_put_le32(m + 20, RNDIS_QUERY_REQ_INFOBUFOFFSET);
	if (dlen)
		vmbus_memcpy(m + len, data, dlen);
	r = nv_rndis_exec(nd, slot, m, len + dlen);
	if (r == 0)
		r = nv_reply_status(&nd->nd_rs[slot], status);
	nv_rs_put(nd, slot);
	return r;
}

int nv_rndis_keepalive(struct netvsc_dev *nd)
{
	uint8_t m[sizeof(struct rndis_keepalive_req)];
	uint32_t rid;
	int slot, r;

	slot = nv_rs_get(nd, REMOTE_NDIS_KEEPALIVE_CMPLT, &rid);
	if (slot < 0)
		return slot;
	hv_put_le32(m + 0, REMOTE_NDIS_KEEPALIVE_MSG);
	hv_put_le32(m + 4, sizeof(m));
	hv_put_le32(m + 8, rid);
	r = nv_rndis_exec(nd, slot, m, sizeof(m));
	if (r == 0)
		r = nv_reply_status(&nd->nd_rs[slot], NULL);
	nv_rs_put(nd, slot);
	return r;
}

int nv_rndis_reset(struct netvsc_dev *nd, bool *addressing_reset)
{
	uint8_t m[sizeof(struct rndis_reset_req)];
	const struct nv_rndis_slot *rs;
	uint32_t rid;
	int slot, r;

	slot = nv_rs_get(nd, REMOTE_NDIS_RESET_CMPLT, &rid);
	if (slot < 0)
		return slot;
	rs = &nd->nd_rs[slot];
	hv_put_le32(m + 0, REMOTE_NDIS_RESET_MSG);
	hv_put_le32(m + 4, sizeof(m));
	hv_put_le32(m + 8, 0);	/* reserved: RESET has no request id */
	r = nv_rndis_exec(nd, slot, m, sizeof(m));
	if (r == 0 && rs->rs_len < sizeof(struct rndis_reset_comp))
		r = -VMBUS_EPROTO;
	if (r == 0) {
		if (hv_get_le32(rs->rs_resp + 8) != RNDIS_STATUS_SUCCESS)
			r = -VMBUS_EIO;
		if (addressing_reset != NULL)
			*addressing_reset = hv_get_le32(rs->rs_resp + 12) != 0;
	}
	nv_rs_put(nd, slot);
	return r;
}

void nv_rndis_halt(struct netvsc_dev *nd)
{
	uint8_t m[sizeof(struct rndis_halt_req)];

	/* No reply (spec 2.2). */
	if (++nd->nd_rid_seq == 0)
		nd->nd_rid_seq = 1;
	hv_put_le32(m + 0, REMOTE_NDIS_HALT_MSG);
	hv_put_le32(m + 4, sizeof(m));
	hv_put_le32(m + 8, nd->nd_rid_seq);
	(void)nv_tx_rndis_ctl(nd, m, sizeof(m),
	    nv_deadline(nd, nd->nd_cfg.nc_timeout_ns));
}

/* ---- bring-up ---- */

static int nv_rndis_init(struct netvsc_dev *nd)
{
	uint8_t m[sizeof(struct rndis_init_req)];
	const struct nv_rndis_slot *rs;
	uint32_t rid, align;
	int slot, r;

	slot = nv_rs_get(nd, REMOTE_NDIS_INITIALIZE_CMPLT, &rid);
	if (slot < 0)
		return slot;
	rs = &nd->nd_rs[slot];
	hv_put_le32(m + 0, REMOTE_NDIS_INITIALIZE_MSG);
	hv_put_le32(m + 4, sizeof(m));
	hv_put_le32(m + 8, rid);
	hv_put_le32(m + 12, RNDIS_MAJOR_VERSION);
	hv_put_le32(m + 16, RNDIS_MINOR_VERSION);
	hv_put_le32(m + 20, RNDIS_INIT_MAX_XFERSZ_L);
	r = nv_rndis_exec(nd, slot, m, sizeof(m));
	if (r == 0 && rs->rs_len < sizeof(struct rndis_init_comp))
		r = -VMBUS_EPROTO;
	if (r == 0)
		r = nv_reply_status(rs, NULL);
	if (r == 0) {
		nd->nd_rndis_max_pkts = hv_get_le32(rs->rs_resp + 32);
		if (nd->nd_rndis_max_pkts == 0)
			nd->nd_rndis_max_pkts = 1;
		align = hv_get_le32(rs->rs_resp + 40);
		/* D raises anything below 4 bytes to 4; cap at a page. */
		if (align < RNDIS_ALIGN_MIN)
			align = RNDIS_ALIGN_MIN;
		if (align > HV_PAGE_SHIFT)
			align = HV_PAGE_SHIFT;
		nd->nd_rndis_align = 1u << align;
	}
	nv_rs_put(nd, slot);
	if (r != 0)
		nv_log(nd, VMBUS_LOG_WARN, "%s: RNDIS INITIALIZE failed (%d)",
		    nd->nd_name, r);
	return r;
}

static int nv_query_u32(struct netvsc_dev *nd, uint32_t oid, uint32_t *v)
{
	uint8_t b[8];
	uint32_t len = sizeof(b);
	int r;

	r = nv_rndis_query(nd, oid, NULL, 0, b, &len, NULL);
	if (r == 0 && len < 4u)
		r = -VMBUS_EPROTO;
	if (r == 0)
		*v = hv_get_le32(b);
	return r;
}

/* Offload capabilities and parameters (spec 2.7; L's decisions). */
static void nv_rndis_offloads(struct netvsc_dev *nd)
{
	struct ndis_offload caps;
	struct ndis_offload_params prm;
	uint8_t hdr[4], buf[sizeof(struct ndis_offload) + 64];
	uint32_t len = sizeof(buf), allowed = 0, want, en, ip4, ip6, sz, psz;
	uint8_t rev, prev;
	uint16_t osize;
	int r;

	want = nd->nd_cfg.nc_offloads & ~(uint32_t)NETVSC_OFFLOAD_RSS;
	nd->nd_offloads = 0;
	nd->nd_lso_max = 0;
	nd->nd_lso_min_segs = 0;
	if (nd->nd_nvsp < NVSP_PROTOCOL_VERSION_4) {
		rev = NDIS_OFFLOAD_REV_1;
		osize = NDIS_OFFLOAD_SIZE_6_0;
	} else if (nd->nd_nvsp == NVSP_PROTOCOL_VERSION_4) {
		rev = NDIS_OFFLOAD_REV_2;
		osize = NDIS_OFFLOAD_SIZE_6_1;
	} else {
		rev = NDIS_OFFLOAD_REV_3;
		osize = NDIS_OFFLOAD_SIZE;
	}
	hdr[0] = NDIS_OBJTYPE_OFFLOAD;
	hdr[1] = rev;
	hv_put_le16(hdr + 2, osize);
	r = nv_rndis_query(nd, OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, hdr,
	    sizeof(hdr), buf, &len, NULL);
	if (r != 0) {
		nv_log(nd, VMBUS_LOG_INFO, "%s: no offload capabilities (%d)",
		    nd->nd_name, r);
		return;
	}
	sz = len >= 4u ? hv_get_le16(buf + 2) : 0;
	/* Type 0xA7, revision >= 1, 112 <= size <= what came (L, D). */
	if (len < NDIS_OFFLOAD_SIZE_6_0 || buf[0] != NDIS_OBJTYPE_OFFLOAD ||
	    buf[1] < NDIS_OFFLOAD_REV_1 || sz < NDIS_OFFLOAD_SIZE_6_0 ||
	    sz > len) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: bad offload capabilities",
		    nd->nd_name);
		return;
	}
	vmbus_memset(&caps, 0, sizeof(caps));
	vmbus_memcpy(&caps, buf, sz < sizeof(caps) ? sz : sizeof(caps));
	ip4 = hv_le32(caps.ndis_csum.ncs_ip4_txcsum);
	ip6 = hv_le32(caps.ndis_csum.ncs_ip6_txcsum);
	if ((ip4 & (NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT)) ==
	    (NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT))
		allowed |= NETVSC_OFFLOAD_TCP4_CSUM;
	if (ip4 & NDIS_TXCSUM_CAP_IP4)
		allowed |= NETVSC_OFFLOAD_IP4_CSUM;
	if ((ip6 & (NDIS_TXCSUM_CAP_TCP6 | NDIS_TXCSUM_CAP_TCP6OPT |
	    NDIS_TXCSUM_CAP_IP6EXT)) == (NDIS_TXCSUM_CAP_TCP6 |
	    NDIS_TXCSUM_CAP_TCP6OPT | NDIS_TXCSUM_CAP_IP6EXT))
		allowed |= NETVSC_OFFLOAD_TCP6_CSUM;
	/* L never enables UDP checksum offload on NVSP <= 4. */
	if (nd->nd_nvsp > NVSP_PROTOCOL_VERSION_4) {
		if (ip4 & NDIS_TXCSUM_CAP_UDP4)
			allowed |= NETVSC_OFFLOAD_UDP4_CSUM;
		if (ip6 & NDIS_TXCSUM_CAP_UDP6)
			allowed |= NETVSC_OFFLOAD_UDP6_CSUM;
	}
	if ((hv_le32(caps.ndis_lsov2.nl2_ip4_encap) & NDIS_OFFLOAD_ENCAP_8023) &&
	    (allowed & NETVSC_OFFLOAD_TCP4_CSUM))
		allowed |= NETVSC_OFFLOAD_LSO4;
	if ((hv_le32(caps.ndis_lsov2.nl2_ip6_encap) & NDIS_OFFLOAD_ENCAP_8023) &&
	    (hv_le32(caps.ndis_lsov2.nl2_ip6_opts) & NDIS_LSOV2_CAP_IP6) ==
	    NDIS_LSOV2_CAP_IP6 && (allowed & NETVSC_OFFLOAD_TCP6_CSUM))
		allowed |= NETVSC_OFFLOAD_LSO6;
	en = allowed & want;

	vmbus_memset(&prm, 0, sizeof(prm));
	prm.ndis_hdr.ndis_type = NDIS_OBJTYPE_DEFAULT;
	if (nd->nd_nvsp >= NVSP_PROTOCOL_VERSION_5) {
		prev = NDIS_OFFLOAD_PARAMS_REV_3;
		psz = NDIS_OFFLOAD_PARAMS_SIZE;
		prm.ndis_rsc_ip4 = NDIS_OFFLOAD_RSC_OFF;
		prm.ndis_rsc_ip6 = NDIS_OFFLOAD_RSC_OFF;
	} else {
		prev = NDIS_OFFLOAD_PARAMS_REV_LEGACY;
		psz = NDIS_OFFLOAD_PARAMS_SIZE_6_1;
	}
	prm.ndis_hdr.ndis_rev = prev;
	prm.ndis_hdr.ndis_size = hv_cpu_to_le16((uint16_t)psz);
#define NV_CSUM_PARAM(bit) ((en & (bit)) ? NDIS_OFFLOAD_PARAM_TXRX : \
	NDIS_OFFLOAD_PARAM_OFF)
	prm.ndis_ip4csum = NV_CSUM_PARAM(NETVSC_OFFLOAD_IP4_CSUM);
	prm.ndis_tcp4csum = NV_CSUM_PARAM(NETVSC_OFFLOAD_TCP4_CSUM);
	prm.ndis_udp4csum = NV_CSUM_PARAM(NETVSC_OFFLOAD_UDP4_CSUM);
	prm.ndis_tcp6csum = NV_CSUM_PARAM(NETVSC_OFFLOAD_TCP6_CSUM);
	prm.ndis_udp6csum = NV_CSUM_PARAM(NETVSC_OFFLOAD_UDP6_CSUM);
#undef NV_CSUM_PARAM
	prm.ndis_lsov2_ip4 = (en & NETVSC_OFFLOAD_LSO4) ? NDIS_OFFLOAD_LSOV2_ON :
	    NDIS_OFFLOAD_LSOV2_OFF;
	prm.ndis_lsov2_ip6 = (en & NETVSC_OFFLOAD_LSO6) ? NDIS_OFFLOAD_LSOV2_ON :
	    NDIS_OFFLOAD_LSOV2_OFF;
	r = nv_rndis_set(nd, OID_TCP_OFFLOAD_PARAMETERS, &prm, psz, NULL);
	if (r != 0) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: offload parameters refused (%d)",
		    nd->nd_name, r);
		return;
	}
	nd->nd_offloads = en;
	if (en & (NETVSC_OFFLOAD_LSO4 | NETVSC_OFFLOAD_LSO6)) {
		uint32_t m4 = hv_le32(caps.ndis_lsov2.nl2_ip4_maxsz);
		uint32_t m6 = hv_le32(caps.ndis_lsov2.nl2_ip6_maxsz);
		uint32_t s4 = hv_le32(caps.ndis_lsov2.nl2_ip4_minsg);
		uint32_t s6 = hv_le32(caps.ndis_lsov2.nl2_ip6_minsg);
		uint32_t mx = 65536u, mn = 0;

		if ((en & NETVSC_OFFLOAD_LSO4) && m4 < mx)
			mx = m4;
		if ((en & NETVSC_OFFLOAD_LSO6) && m6 < mx)
			mx = m6;
		if (en & NETVSC_OFFLOAD_LSO4)
			mn = s4;
		if ((en & NETVSC_OFFLOAD_LSO6) && s6 > mn)
			mn = s6;
		nd->nd_lso_max = mx;
		nd->nd_lso_min_segs = mn;
	}
}

static void nv_rndis_rss_caps(struct netvsc_dev *nd)
{
	uint8_t hdr[4], buf[64];
	uint32_t len = sizeof(buf), sz, n, ind = 0;
	int r;

	nd->nd_rss_caps_queues = 0;
	hdr[0] = NDIS_OBJTYPE_RSS_CAPS;
	hdr[1] = NDIS_RSS_CAPS_REV_2;
	hv_put_le16(hdr + 2, NDIS_RSS_CAPS_SIZE);
	r = nv_rndis_query(nd, OID_GEN_RECEIVE_SCALE_CAPABILITIES, hdr,
	    sizeof(hdr), buf, &len, NULL);
	if (r != 0)
		return;
	sz = len >= 4u ? hv_get_le16(buf + 2) : 0;
	if (len < NDIS_RSS_CAPS_SIZE_6_0 || buf[0] != NDIS_OBJTYPE_RSS_CAPS ||
	    buf[1] < NDIS_RSS_CAPS_REV_1 || sz < NDIS_RSS_CAPS_SIZE_6_0 ||
	    sz > len) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: bad RSS capabilities",
		    nd->nd_name);
		return;
	}
	n = hv_get_le32(buf + 12);
	if (buf[1] >= NDIS_RSS_CAPS_REV_2 && sz >= NDIS_RSS_CAPS_SIZE)
		ind = hv_get_le16(buf + 16);
	/* L: 1..256 entries, else 128. */
	nd->nd_rss_entries = ind >= 1 && ind <= NDIS_RSS_INDIRECT_MAX ? ind :
	    NDIS_RSS_INDIRECT_DEFAULT;
	nd->nd_rss_caps_queues = n > NETVSC_QUEUES_MAX ? NETVSC_QUEUES_MAX : n;
}

int nv_rndis_rss(struct netvsc_dev *nd)
{
	static const uint8_t key[NDIS_RSS_KEY_SIZE] = NV_RSS_KEY_INIT;
	uint32_t n = nd->nd_rss_entries, bytes, ioff = NDIS_RSS_PARAMS_SIZE;
	uint8_t *p;
	int r;

	bytes = NDIS_RSS_PARAMS_SIZE + 4u * n + NDIS_RSS_KEY_SIZE;
	p = nv_zalloc(nd, bytes);
	if (p == NULL)
		return -VMBUS_ENOMEM;
	p[0] = NDIS_OBJTYPE_RSS_PARAMS;
	p[1] = NDIS_RSS_PARAMS_REV_2;
	hv_put_le16(p + 2, NDIS_RSS_PARAMS_SIZE);
	hv_put_le16(p + 4, 0);				/* flags */
	hv_put_le16(p + 6, 0);				/* base CPU */
	hv_put_le32(p + 8, NDIS_RSS_HASH_INFO_L);
	hv_put_le16(p + 12, (uint16_t)(4u * n));	/* table bytes */
	hv_put_le32(p + 16, ioff);
	hv_put_le16(p + 20, NDIS_RSS_KEY_SIZE);
	hv_put_le32(p + 24, ioff + 4u * n);
	/* Receive queue = channel index; spread over every open queue. */
	for (uint32_t i = 0; i < n; i++)
		hv_put_le32(p + ioff + 4u * i, i % nd->nd_nq);
	vmbus_memcpy(p + ioff + 4u * n, key, sizeof(key));
	r = nv_rndis_set(nd, OID_GEN_RECEIVE_SCALE_PARAMETERS, p, bytes, NULL);
	nv_free(nd, p, bytes);
	if (r != 0)
		nv_log(nd, VMBUS_LOG_WARN, "%s: RSS parameters refused (%d)",
		    nd->nd_name, r);
	return r;
}

int nv_rndis_bringup(struct netvsc_dev *nd)
{
	uint32_t v, len;
	int r;

	r = nv_rndis_init(nd);
	if (r != 0)
		return r;
	/* The host's frame limit lowers our MTU (L). */
	if (nv_query_u32(nd, OID_GEN_MAXIMUM_FRAME_SIZE, &v) == 0 &&
	    v >= NETVSC_MTU_MIN && v < nd->nd_mtu)
		nd->nd_mtu = v;
	len = NETVSC_ETHER_ADDR_LEN;
	r = nv_rndis_query(nd, OID_802_3_PERMANENT_ADDRESS, NULL, 0,
	    nd->nd_perm_mac, &len, NULL);
	if (r == 0 && len != NETVSC_ETHER_ADDR_LEN)
		r = -VMBUS_EPROTO;
	if (r != 0) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: no MAC address (%d)",
		    nd->nd_name, r);
		return r == -VMBUS_ENOBUFS ? -VMBUS_EPROTO : r;
	}
	len = NETVSC_ETHER_ADDR_LEN;
	if (nv_rndis_query(nd, OID_802_3_CURRENT_ADDRESS, NULL, 0,
	    nd->nd_cur_mac, &len, NULL) != 0 || len != NETVSC_ETHER_ADDR_LEN)
		vmbus_memcpy(nd->nd_cur_mac, nd->nd_perm_mac,
		    NETVSC_ETHER_ADDR_LEN);
	nv_rndis_offloads(nd);
	if (nv_query_u32(nd, OID_GEN_MEDIA_CONNECT_STATUS, &v) == 0)
		atomic_store(&nd->nd_link_up, v == NDIS_MEDIA_STATE_CONNECTED);
	else
		atomic_store(&nd->nd_link_up, true);
	if (nv_query_u32(nd, OID_GEN_LINK_SPEED, &v) == 0)
		atomic_store(&nd->nd_link_speed,
		    (uint64_t)v * NDIS_LINK_SPEED_UNIT_BPS);
	if (nd->nd_nvsp >= NVSP_PROTOCOL_VERSION_5 &&
	    (nd->nd_cfg.nc_offloads & NETVSC_OFFLOAD_RSS) &&
	    nd->nd_cfg.nc_max_queues > 1)
		nv_rndis_rss_caps(nd);
	/* Only a dead channel is fatal past this point. */
	return nv_chan_err(nd);
}
