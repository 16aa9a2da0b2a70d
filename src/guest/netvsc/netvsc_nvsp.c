/*
 * src/guest/netvsc/netvsc_nvsp.c - NVSP (spec vmbus-devices.md section 1):
 * queues and their channels, NVSP requests with completions, version
 * negotiation newest first, NDIS config / version, receive and send buffer
 * set-up and revoke, vRSS subchannels, the channel callback that
 * dispatches every packet the host sends, and the inband notifications
 * (send indirection table, VF association).
 */
#include "netvsc_priv.h"

/* Every value taken from a host message below is checked here. */
#pragma GCC diagnostic error "-Wconversion"
#pragma GCC diagnostic error "-Wsign-compare"

/* ---- queues ---- */

int nv_queue_alloc(struct netvsc_dev *nd, uint32_t idx,
    struct vmbus_channel *ch)
{
	const struct vmbus_platform *p = nd->nd_plat;
	struct nv_queue *q;

	if (idx >= NETVSC_QUEUES_MAX || nd->nd_q[idx] != NULL)
		return -VMBUS_EINVAL;
	q = nv_zalloc(nd, sizeof(*q));
	if (q == NULL)
		return -VMBUS_ENOMEM;
	q->q_nd = nd;
	q->q_idx = idx;
	q->q_chan = ch;
	nv_lock_init(nd, &q->q_tx_lock);
	q->q_slot = nv_zalloc(nd, sizeof(*q->q_slot) * NV_TX_SLOTS);
	q->q_pkt = nv_zalloc(nd, NV_PKT_MAX);
	if (q->q_slot != NULL && q->q_pkt != NULL)
		q->q_hdr_va = p->page_alloc(p->ctx, NV_TX_HDR_PAGES, q->q_hdr_pfn);
	if (q->q_hdr_va != NULL && nd->nd_rx_slot != 0) {
		q->q_rxbuf = nv_zalloc(nd, nd->nd_rx_slot);
		q->q_rxbuf_len = nd->nd_rx_slot;
	}
	if (q->q_slot == NULL || q->q_pkt == NULL || q->q_hdr_va == NULL ||
	    (nd->nd_rx_slot != 0 && q->q_rxbuf == NULL)) {
		nv_queue_free(nd, q, false);
		return -VMBUS_ENOMEM;
	}
	for (uint32_t i = 0; i < NV_TX_SLOTS; i++)
		q->q_slot[i].ts_chunk = NV_CHUNK_NONE;
	q->q_agg_slot = -1;
	nd->nd_q[idx] = q;
	return 0;
}

void nv_queue_free(struct netvsc_dev *nd, struct nv_queue *q, bool leak)
{
	if (q == NULL)
		return;
	nv_free(nd, q->q_slot, sizeof(*q->q_slot) * NV_TX_SLOTS);
	nv_free(nd, q->q_pkt, NV_PKT_MAX);
	nv_free(nd, q->q_rxbuf, q->q_rxbuf_len);
	nv_pages_release(nd, q->q_hdr_va, NV_TX_HDR_PAGES, leak);
	nv_lock_fini(nd, &q->q_tx_lock);
	nv_free(nd, q, sizeof(*q));
}

int nv_queue_open(struct netvsc_dev *nd, struct nv_queue *q)
{
	int r;

	r = vmbus_chan_open(q->q_chan, nd->nd_cfg.nc_tx_ring_bytes,
	    nd->nd_cfg.nc_rx_ring_bytes, NULL, 0, nv_chan_callback, q);
	if (r == 0)
		q->q_open = true;
	else
		nv_log(nd, VMBUS_LOG_WARN, "%s: queue %u: open failed (%d)",
		    nd->nd_name, (unsigned)q->q_idx, r);
	return r;
}

uint32_t nv_max_mtu(const struct netvsc_dev *nd)
{
	/* NVSP 1 has no NDIS config message: the host assumes 1514. */
	if (nd->nd_nvsp != 0 && nd->nd_nvsp < NVSP_PROTOCOL_VERSION_2)
		return NETVSC_MTU_DEFAULT;
	return NETVSC_MTU_MAX;
}

/* ---- NVSP requests ---- */

struct nv_slot_wait {
	struct nv_queue *sw_q;
	uint32_t sw_slot;
};

static bool nv_slot_done(struct netvsc_dev *nd, void *arg)
{
	struct nv_slot_wait *sw = arg;
	bool done;

	nv_lock(nd, &sw->sw_q->q_tx_lock);
	done = sw->sw_q->q_slot[sw->sw_slot].ts_state == NV_TS_DONE;
	nv_unlock(nd, &sw->sw_q->q_tx_lock);
	return done;
}

/* Send one inband message, waiting for ring room until the deadline. */
static int nv_send_inband(struct netvsc_dev *nd, struct nv_queue *q,
    const void *msg, uint32_t len, uint16_t flags, uint64_t tid,
    uint64_t deadline)
{
	int r;

	for (;;) {
		uint64_t now;

		r = vmbus_chan_send(q->q_chan, VMBUS_PACKET_TYPE_DATA_INBAND,
		    flags, msg, len, tid);
		if (r != -VMBUS_EAGAIN)
			return r;
		now = nv_now(nd);
		if (now >= deadline)
			return -VMBUS_ETIMEDOUT;
		r = vmbus_chan_wait_tx(q->q_chan, len, deadline - now);
		if (r != 0)
			return r;
	}
}

int nv_nvsp_request(struct netvsc_dev *nd, struct nv_queue *q,
    const union nvsp_msg *req, union nvsp_msg *resp, uint32_t *resp_len)
{
	uint64_t deadline = nv_deadline(nd, nd->nd_cfg.nc_timeout_ns);
	struct nv_slot_wait sw;
	int s, r;

	nv_lock(nd, &q->q_tx_lock);
	s = nv_slot_get(q, NV_TS_NVSP);
	nv_unlock(nd, &q->q_tx_lock);
	if (s < 0)
		return s;
	/* NOTE: the slot is active before the send: a fast completion
	 * finds it. */
	r = nv_send_inband(nd, q, req, NVSP_MSG_SIZE,
	    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, nv_tid(q, (uint32_t)s),
	    deadline);
	if (r == 0) {
		sw.sw_q = q;
		sw.sw_slot = (uint32_t)s;
		r = nv_wait(nd, nv_slot_done, &sw, deadline);
	}
	nv_lock(nd, &q->q_tx_lock);
	if (r == 0) {
		struct nv_txslot *ts = &q->q_slot[s];

		vmbus_memset(resp, 0, sizeof(*resp));
		vmbus_memcpy(resp, ts->ts_resp, ts->ts_resp_len);
		*resp_len = ts->ts_resp_len;
	}
	/* A late completion finds the slot free (or a newer generation)
	 * and is dropped as stale. */
	nv_slot_put(q, (uint32_t)s);
	nv_unlock(nd, &q->q_tx_lock);
	return r;
}

int nv_nvsp_post(struct netvsc_dev *nd, struct nv_queue *q,
    const union nvsp_msg *msg)
{
	return nv_send_inband(nd, q, msg, NVSP_MSG_SIZE, 0, 0,
	    nv_deadline(nd, nd->nd_cfg.nc_timeout_ns));
}

static void nv_bad_nvsp(struct netvsc_dev *nd, struct nv_queue *q,
    const char *what, uint32_t type, uint32_t len)
{
	q->q_stats.qs_bad_nvsp++;
	if (nv_ratelimit(nd, &q->q_log_next))
		nv_log(nd, VMBUS_LOG_WARN, "%s: bad %s reply (type %u, %u bytes)",
		    nd->nd_name, what, (unsigned)type, (unsigned)len);
}

/* ---- negotiation and buffers ---- */

int nv_nvsp_negotiate(struct netvsc_dev *nd)
{
	static const uint32_t vs[] = NVSP_GUEST_VERSION_LIST;
	struct nv_queue *q = nd->nd_q[0];
	union nvsp_msg req, resp;
	uint32_t len, type, status;
	int r;

	for (uint32_t i = 0; i < NVSP_GUEST_VERSION_COUNT; i++) {
		uint32_t v = vs[i];

		if (v > nd->nd_cfg.nc_max_nvsp_version ||
		    v < nd->nd_cfg.nc_min_nvsp_version)
			continue;
		vmbus_memset(&req, 0, sizeof(req));
		req.nm_init.ni_type = hv_cpu_to_le32(NVSP_MSG_TYPE_INIT);
		req.nm_init.ni_min_protocol_ver = hv_cpu_to_le32(v);
		req.nm_init.ni_max_protocol_ver = hv_cpu_to_le32(v);
		r = nv_nvsp_request(nd, q, &req, &resp, &len);
		if (r != 0) {
			nv_log(nd, VMBUS_LOG_WARN, "%s: NVSP INIT 0x%x: %d",
			    nd->nd_name, (unsigned)v, r);
			return r;
		}
		type = hv_le32(resp.nm_init_complete.nic_type);
		status = hv_le32(resp.nm_init_complete.nic_status);
		if (len < NVSP_INIT_COMPLETE_MINLEN ||
		    type != NVSP_MSG_TYPE_INIT_COMPLETE) {
			nv_bad_nvsp(nd, q, "INIT", type, len);
			return -VMBUS_EPROTO;
		}
		if (status == NVSP_STAT_SUCCESS) {
			nd->nd_nvsp = v;
			nd->nd_ndis = v <= NVSP_PROTOCOL_VERSION_4 ?
			    NDIS_VERSION_6_1 : NDIS_VERSION_6_30;
			return 0;
		}
	}
	nv_log(nd, VMBUS_LOG_WARN, "%s: the host accepted no NVSP version",
	    nd->nd_name);
	return -VMBUS_EOPNOTSUPP;
}

int nv_nvsp_ndis_config(struct netvsc_dev *nd)
{
	struct nv_queue *q = nd->nd_q[0];
	union nvsp_msg m;
	uint64_t caps;
	int r;

	nd->nd_mtu = nd->nd_mtu_want;
	if (nd->nd_mtu > nv_max_mtu(nd))
		nd->nd_mtu = nv_max_mtu(nd);
	/* NOTE: NDIS config (NVSP >= 2) goes before the NDIS version. */
	if (nd->nd_nvsp >= NVSP_PROTOCOL_VERSION_2) {
		caps = NVSP_NDIS_CONFIG_CAP_IEEE8021Q;
		if (nd->nd_nvsp >= NVSP_PROTOCOL_VERSION_5)
			caps |= NVSP_NDIS_CONFIG_CAP_TEAMING;
		vmbus_memset(&m, 0, sizeof(m));
		m.nm_ndis_config.nc_type =
		    hv_cpu_to_le32(NVSP_MSG2_TYPE_SEND_NDIS_CONFIG);
		m.nm_ndis_config.nc_mtu =
		    hv_cpu_to_le32(nd->nd_mtu + NETVSC_ETHER_HDR_LEN);
		m.nm_ndis_config.nc_capability = hv_cpu_to_le64(caps);
		r = nv_nvsp_post(nd, q, &m);
		if (r != 0)
			return r;
	}
	vmbus_memset(&m, 0, sizeof(m));
	m.nm_ndis_ver.nv_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_SEND_NDIS_VER);
	m.nm_ndis_ver.nv_ndis_major_ver =
	    hv_cpu_to_le32(NVSP_VERSION_MAJOR(nd->nd_ndis));
	m.nm_ndis_ver.nv_ndis_minor_ver =
	    hv_cpu_to_le32(NVSP_VERSION_MINOR(nd->nd_ndis));
	return nv_nvsp_post(nd, q, &m);
}

/* Allocate npages shared pages with their PFN array. */
static void *nv_buf_alloc(struct netvsc_dev *nd, uint32_t npages,
    uint64_t **pfns)
{
	const struct vmbus_platform *p = nd->nd_plat;
	void *va;

	*pfns = nv_zalloc(nd, sizeof(uint64_t) * npages);
	if (*pfns == NULL)
		return NULL;
	va = p->page_alloc(p->ctx, npages, *pfns);
	if (va == NULL) {
		nv_free(nd, *pfns, sizeof(uint64_t) * npages);
		*pfns = NULL;
	}
	return va;
}

/* GPADL creation failed: give the pages back, or leak them (EISCONN). */
static void nv_buf_undo(struct netvsc_dev *nd, uint8_t **va, uint64_t **pfns,
    uint32_t *npages, int r)
{
	nv_pages_release(nd, *va, *npages, r == -VMBUS_EISCONN);
	nv_free(nd, *pfns, sizeof(uint64_t) * *npages);
	*va = NULL;
	*pfns = NULL;
	*npages = 0;
}

int nv_nvsp_recv_buf(struct netvsc_dev *nd)
{
	struct nv_queue *q = nd->nd_q[0];
	union nvsp_msg req, resp;
	const struct nvsp_send_recv_buf_complete *c = &resp.nm_recv_buf_complete;
	uint32_t bytes = nd->nd_cfg.nc_recv_buf_bytes, len, sub, num;
	int r;

	if (nd->nd_nvsp <= NVSP_PROTOCOL_VERSION_2 &&
	    bytes > NVSP_RECV_BUF_SIZE_LEGACY)
		bytes = NVSP_RECV_BUF_SIZE_LEGACY;
	nd->nd_rbuf_pages = bytes / HV_PAGE_SIZE;
	nd->nd_rbuf = nv_buf_alloc(nd, nd->nd_rbuf_pages, &nd->nd_rbuf_pfn);
	if (nd->nd_rbuf == NULL) {
		nd->nd_rbuf_pages = 0;
		return -VMBUS_ENOMEM;
	}
	nd->nd_rbuf_bytes = bytes;
	r = vmbus_gpadl_create(nd->nd_chan, nd->nd_rbuf_pfn, nd->nd_rbuf_pages,
	    &nd->nd_rbuf_gpadl);
	if (r != 0) {
		nd->nd_rbuf_gpadl = 0;
		nv_buf_undo(nd, &nd->nd_rbuf, &nd->nd_rbuf_pfn,
		    &nd->nd_rbuf_pages, r);
		nd->nd_rbuf_bytes = 0;
		return r;
	}
	vmbus_memset(&req, 0, sizeof(req));
	req.nm_recv_buf.nr_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_SEND_RECV_BUF);
	req.nm_recv_buf.nr_gpadl_handle = hv_cpu_to_le32(nd->nd_rbuf_gpadl);
	req.nm_recv_buf.nr_id = hv_cpu_to_le16(NV_RECV_BUF_ID);
	/* The host may start using it as soon as it sees the message. */
	nd->nd_rbuf_sent = true;
	r = nv_nvsp_request(nd, q, &req, &resp, &len);
	if (r != 0)
		return r;
	sub = hv_le32(c->nrc_sections[0].nrs_sub_alloc_size);
	num = hv_le32(c->nrc_sections[0].nrs_num_sub_allocs);
	if (len < NVSP_SEND_RECV_BUF_COMPLETE_MINLEN ||
	    hv_le32(c->nrc_type) != NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE) {
		nv_bad_nvsp(nd, q, "RECV_BUF", hv_le32(c->nrc_type), len);
		return -VMBUS_EPROTO;
	}
	/* Sizes checked in 64 bits (Linux 44144185951a). */
	if (hv_le32(c->nrc_status) != NVSP_STAT_SUCCESS ||
	    hv_le32(c->nrc_num_sections) != NVSP_RECV_BUF_NUM_SECTIONS ||
	    hv_le32(c->nrc_sections[0].nrs_offset) != 0 ||
	    sub < NVSP_RECV_SUB_ALLOC_MIN || sub > NV_RX_SLOT_MAX || num == 0 ||
	    (uint64_t)sub * num > bytes) {
		q->q_stats.qs_bad_nvsp++;
		nv_log(nd, VMBUS_LOG_WARN,
		    "%s: receive buffer refused or bad sections (status %u, "
		    "%u sections, offset %u, %u x %u)", nd->nd_name,
		    (unsigned)hv_le32(c->nrc_status),
		    (unsigned)hv_le32(c->nrc_num_sections),
		    (unsigned)hv_le32(c->nrc_sections[0].nrs_offset),
		    (unsigned)sub, (unsigned)num);
		return -VMBUS_EPROTO;
	}
	nd->nd_rx_slot = sub;
	nd->nd_rx_nslots = num;
	/* The primary's private receive copy, sized by the host's slots. */
	q->q_rxbuf = nv_zalloc(nd, sub);
	if (q->q_rxbuf == NULL)
		return -VMBUS_ENOMEM;
	q->q_rxbuf_len = sub;
	return 0;
}

/* Revoke a send buffer we will not use (bad reply): the host stops using
 * it; its GPADL goes at teardown, after the close (spec 1.4). */
static void nv_sbuf_refuse(struct netvsc_dev *nd, const char *why)
{
	union nvsp_msg m;

	nv_log(nd, VMBUS_LOG_WARN, "%s: send buffer %s: using bounce pages",
	    nd->nd_name, why);
	vmbus_memset(&m, 0, sizeof(m));
	m.nm_revoke_buf.nrv_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_REVOKE_SEND_BUF);
	m.nm_revoke_buf.nrv_id = hv_cpu_to_le16(NV_SEND_BUF_ID);
	(void)nv_nvsp_post(nd, nd->nd_q[0], &m);
	nd->nd_sbuf_sent = false;
}

int nv_nvsp_send_buf(struct netvsc_dev *nd)
{
	struct nv_queue *q = nd->nd_q[0];
	union nvsp_msg req, resp;
	const struct nvsp_send_send_buf_complete *c = &resp.nm_send_buf_complete;
	uint32_t bytes = nd->nd_cfg.nc_send_buf_bytes, len, sect;
	int r;

	nd->nd_sbuf_pages = bytes / HV_PAGE_SIZE;
	nd->nd_sbuf = nv_buf_alloc(nd, nd->nd_sbuf_pages, &nd->nd_sbuf_pfn);
	if (nd->nd_sbuf == NULL) {
		nd->nd_sbuf_pages = 0;
		nv_log(nd, VMBUS_LOG_WARN, "%s: no memory for a send buffer",
		    nd->nd_name);
		return 0;	/* bounce pages instead */
	}
	r = vmbus_gpadl_create(nd->nd_chan, nd->nd_sbuf_pfn, nd->nd_sbuf_pages,
	    &nd->nd_sbuf_gpadl);
	if (r != 0) {
		nd->nd_sbuf_gpadl = 0;
		nv_buf_undo(nd, &nd->nd_sbuf, &nd->nd_sbuf_pfn,
		    &nd->nd_sbuf_pages, r);
		if (r == -VMBUS_ENODEV || r == -VMBUS_ETIMEDOUT)
			return r;
		return 0;
	}
	vmbus_memset(&req, 0, sizeof(req));
	req.nm_send_buf.ns_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_SEND_SEND_BUF);
	req.nm_send_buf.ns_gpadl_handle = hv_cpu_to_le32(nd->nd_sbuf_gpadl);
	req.nm_send_buf.ns_id = hv_cpu_to_le16(NV_SEND_BUF_ID);
	nd->nd_sbuf_sent = true;
	r = nv_nvsp_request(nd, q, &req, &resp, &len);
	if (r != 0)
		return r;
	sect = hv_le32(c->nsc_section_size);
	if (len < NVSP_SEND_SEND_BUF_COMPLETE_MINLEN ||
	    hv_le32(c->nsc_type) != NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE) {
		nv_bad_nvsp(nd, q, "SEND_BUF", hv_le32(c->nsc_type), len);
		nv_sbuf_refuse(nd, "reply malformed");
		return 0;
	}
	if (hv_le32(c->nsc_status) != NVSP_STAT_SUCCESS) {
		nv_sbuf_refuse(nd, "refused");
		return 0;
	}
	/* D rejects 0 and sizes that are not a multiple of 4. */
	if (sect < NV_SECTION_MIN || sect > bytes || sect % 4u != 0) {
		q->q_stats.qs_bad_nvsp++;
		nv_sbuf_refuse(nd, "section size out of range");
		return 0;
	}
	nd->nd_ca.ca_sendbuf = true;
	nd->nd_ca.ca_va = nd->nd_sbuf;
	nd->nd_ca.ca_pfn = nd->nd_sbuf_pfn;
	nd->nd_ca.ca_pages = nd->nd_sbuf_pages;
	nd->nd_ca.ca_bytes = bytes;
	nd->nd_ca.ca_chunk = sect;
	nd->nd_ca.ca_nchunks = bytes / sect;
	if (nd->nd_ca.ca_nchunks > NV_SECTIONS_MAX)
		nd->nd_ca.ca_nchunks = NV_SECTIONS_MAX;
	return 0;
}

void nv_nvsp_revoke(struct netvsc_dev *nd)
{
	union nvsp_msg m;

	if (nd->nd_rbuf_sent) {
		vmbus_memset(&m, 0, sizeof(m));
		m.nm_revoke_buf.nrv_type =
		    hv_cpu_to_le32(NVSP_MSG1_TYPE_REVOKE_RECV_BUF);
		m.nm_revoke_buf.nrv_id = hv_cpu_to_le16(NV_RECV_BUF_ID);
		(void)nv_nvsp_post(nd, nd->nd_q[0], &m);
		nd->nd_rbuf_sent = false;
	}
	if (nd->nd_sbuf_sent) {
		vmbus_memset(&m, 0, sizeof(m));
		m.nm_revoke_buf.nrv_type =
		    hv_cpu_to_le32(NVSP_MSG1_TYPE_REVOKE_SEND_BUF);
		m.nm_revoke_buf.nrv_id = hv_cpu_to_le16(NV_SEND_BUF_ID);
		(void)nv_nvsp_post(nd, nd->nd_q[0], &m);
		nd->nd_sbuf_sent = false;
	}
}

/* ---- vRSS subchannels ---- */

int nv_nvsp_subchannels(struct netvsc_dev *nd, uint32_t want)
{
	struct vmbus_channel *subs[NETVSC_QUEUES_MAX];
	struct nv_queue *q = nd->nd_q[0];
	union nvsp_msg req, resp;
	const struct nvsp_subchannel_complete *c = &resp.nm_subchannel_complete;
	uint32_t len, granted, opened = 0;
	int n, r;

	if (want > NETVSC_QUEUES_MAX)
		want = NETVSC_QUEUES_MAX;
	vmbus_memset(&req, 0, sizeof(req));
	req.nm_subchannel_req.nsr_type = hv_cpu_to_le32(NVSP_MSG5_TYPE_SUBCHANNEL);
	req.nm_subchannel_req.nsr_op = hv_cpu_to_le32(NVSP_SUBCHANNEL_OP_ALLOCATE);
	req.nm_subchannel_req.nsr_num_subchannels = hv_cpu_to_le32(want - 1u);
	r = nv_nvsp_request(nd, q, &req, &resp, &len);
	if (r != 0)
		return r;
	if (len < NVSP_SUBCHANNEL_COMPLETE_MINLEN ||
	    hv_le32(c->nsp_type) != NVSP_MSG5_TYPE_SUBCHANNEL) {
		nv_bad_nvsp(nd, q, "SUBCHANNEL", hv_le32(c->nsp_type), len);
		return -VMBUS_EIO;
	}
	if (hv_le32(c->nsp_status) != NVSP_STAT_SUCCESS) {
		nv_log(nd, VMBUS_LOG_INFO, "%s: host refused %u subchannels",
		    nd->nd_name, (unsigned)(want - 1u));
		return -VMBUS_EIO;
	}
	/* Clamp to what we asked for (hostile host 16). */
	granted = hv_le32(c->nsp_num_subchannels);
	if (granted > want - 1u)
		granted = want - 1u;
	if (granted == 0)
		return 0;
	n = vmbus_chan_subchan_get(nd->nd_chan, granted, subs,
	    nd->nd_cfg.nc_timeout_ns);
	if (n < 0) {
		nv_log(nd, VMBUS_LOG_WARN, "%s: no subchannel offer (%d)",
		    nd->nd_name, n);
		return n == -VMBUS_ENODEV ? n : 0;
	}
	for (uint32_t i = 0; i < (uint32_t)n && i < granted; i++) {
		uint32_t idx = 1u + i;

		r = nv_queue_alloc(nd, idx, subs[i]);
		if (r != 0)
			break;
		r = nv_queue_open(nd, nd->nd_q[idx]);
		if (r != 0) {
			nv_queue_free(nd, nd->nd_q[idx], false);
			nd->nd_q[idx] = NULL;
			break;
		}
		opened++;
	}
	nd->nd_nq = 1u + opened;
	if (opened < granted)
		nv_log(nd, VMBUS_LOG_WARN, "%s: %u of %u subchannels opened",
		    nd->nd_name, (unsigned)opened, (unsigned)granted);
	/* Default send table, unless the host's came already (it may
	 * arrive while we wait for the offers). */
	if (!atomic_load(&nd->nd_tab_host))
		for (uint32_t i = 0; i < NETVSC_SEND_TABLE_SIZE; i++)
			atomic_store(&nd->nd_send_tab[i], i % nd->nd_nq);
	return 0;
}

/* ---- inband notifications ---- */

static void nv_indirection(struct nv_queue *q, const uint8_t *p, uint32_t len)
{
	struct netvsc_dev *nd = q->q_nd;
	uint32_t tab[NVSP_INDIRECTION_TABLE_COUNT];
	uint32_t count, off;
	bool clamped = false;

	if (len < sizeof(struct nvsp_send_indirection_table) ||
	    nd->nd_nvsp < NVSP_PROTOCOL_VERSION_5)
		goto bad;
	count = hv_get_le32(p + 4);
	off = hv_get_le32(p + 8);
	if (count != NVSP_INDIRECTION_TABLE_COUNT)
		goto bad;
	if ((uint64_t)off + sizeof(tab) > len || off < 12u) {
		/* Interop quirk (L): NVSP <= 6 hosts may put a wrong offset;
		 * the table is then right after the 40-byte message. */
		if (nd->nd_nvsp <= NVSP_PROTOCOL_VERSION_6 &&
		    len >= NVSP_INDIRECTION_TABLE_QUIRK_MINLEN)
			off = NVSP_INDIRECTION_TABLE_QUIRK_OFFSET;
		else
			goto bad;
	}
	for (uint32_t i = 0; i < NVSP_INDIRECTION_TABLE_COUNT; i++) {
		tab[i] = hv_get_le32(p + off + 4u * i);
		if (tab[i] >= NETVSC_QUEUES_MAX) {
			/* Bounded at use too (Linux 206ad34d52a2). */
			tab[i] %= NETVSC_QUEUES_MAX;
			clamped = true;
		}
	}
	for (uint32_t i = 0; i < NVSP_INDIRECTION_TABLE_COUNT; i++)
		atomic_store(&nd->nd_send_tab[i], tab[i]);
	atomic_store(&nd->nd_tab_host, true);
	nv_lock(nd, &nd->nd_lock);
	nd->nd_stats.ns_indirection_tables++;
	if (clamped)
		nd->nd_stats.ns_bad_indirection++;
	nv_unlock(nd, &nd->nd_lock);
	return;
bad:
	nv_lock(nd, &nd->nd_lock);
	nd->nd_stats.ns_bad_indirection++;
	nv_unlock(nd, &nd->nd_lock);
	if (nv_ratelimit(nd, &q->q_log_next))
		nv_log(nd, VMBUS_LOG_WARN, "%s: bad send indirection table "
		    "(%u bytes) ignored", nd->nd_name, (unsigned)len);
}

static void nv_inband(struct nv_queue *q, const uint8_t *p, uint32_t len)
{
	struct netvsc_dev *nd = q->q_nd;
	uint32_t type;

	if (len < sizeof(struct nvsp_msg_hdr)) {
		q->q_stats.qs_bad_nvsp++;
		return;
	}
	type = hv_get_le32(p);
	switch (type) {
	case NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE:
		nv_indirection(q, p, len);
		break;
	case NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION:
	case NVSP_MSG4_TYPE_SWITCH_DATA_PATH:
		/* No VF support: we stay on the synthetic path. L ignores
		 * the completion-requested flag on these. */
		nv_lock(nd, &nd->nd_lock);
		nd->nd_stats.ns_vf_notes++;
		nv_unlock(nd, &nd->nd_lock);
		break;
	default:
		q->q_stats.qs_unknown_pkts++;
		if (nv_ratelimit(nd, &q->q_log_next))
			nv_log(nd, VMBUS_LOG_WARN,
			    "%s: unknown inband NVSP message %u dropped",
			    nd->nd_name, (unsigned)type);
		break;
	}
}

/* ---- the channel callback ---- */

void nv_chan_callback(struct vmbus_channel *ch, void *arg)
{
	struct nv_queue *q = arg;
	struct netvsc_dev *nd = q->q_nd;
	struct vmbus_pkt_info pi;
	uint32_t len;
	int r;

	if (atomic_load(&q->q_dead))
		return;
	nv_rxc_flush(q);
	for (uint32_t n = 0; n < NV_RX_BUDGET; n++) {
		if (nv_rxc_full(q)) {
			/* Every transfer-page packet owes a completion: read
			 * no more until the queued ones are out. */
			nv_rxc_flush(q);
			if (nv_rxc_full(q))
				break;
		}
		len = NV_PKT_MAX;
		r = vmbus_chan_recv_pkt(ch, q->q_pkt, &len, &pi);
		if (r == -VMBUS_EAGAIN)
			break;
		if (r == -VMBUS_ENOBUFS) {
			/* Larger than any NVSP packet can be (spec 1.5): the
			 * host broke the protocol; stop reading this queue. */
			atomic_store(&q->q_dead, true);
			q->q_stats.qs_too_big++;
			nv_log(nd, VMBUS_LOG_ERR,
			    "%s: queue %u: %u-byte packet exceeds the protocol "
			    "maximum; queue stopped", nd->nd_name,
			    (unsigned)q->q_idx, (unsigned)len);
			nv_wake(nd);
			break;
		}
		if (r != 0)
			break;
		if (pi.pi_hdr_len > len)
			continue;	/* the core validated this; be safe */
		switch (pi.pi_type) {
		case VMBUS_PACKET_TYPE_COMP:
			nv_tx_complete(q, pi.pi_trans_id, q->q_pkt + pi.pi_hdr_len,
			    len - pi.pi_hdr_len);
			break;
		case VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES:
			nv_rx_xfer(q, q->q_pkt, len, &pi);
			break;
		case VMBUS_PACKET_TYPE_DATA_INBAND:
			nv_inband(q, q->q_pkt + pi.pi_hdr_len, len - pi.pi_hdr_len);
			break;
		default:
			q->q_stats.qs_unknown_pkts++;
			break;
		}
	}
	nv_rxc_flush(q);
	nv_tx_flush(q);
	nv_tx_kick_ready(q);
}
