/*
 * tests/netvsc/nvhost.c - the scripted NVSP + RNDIS host double (see
 * nvhost.h). Test code: libc, abort() on states a test never creates.
 */
#include "nvhost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/guid.h"
#include "hv/tlfs.h"
#include "hv/vmbus_pkt.h"

static struct nvhost *g_nvh;	/* one double per test process at a time */
static const struct hv_guid nvh_class = HV_GUID_NETVSC_INIT;
static const struct hv_guid nvh_inst =
    HV_GUID(0x4e564e56, 0x1234, 0x5678, 1, 2, 3, 4, 5, 6, 7, 8);

static uint32_t rd32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint16_t rd16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static void wr32(void *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void wr16(void *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

/* ---- guest memory through GPADL / GPA ---- */

static struct fh_gpadl *nvh_gpadl(struct nvhost *h, uint32_t handle)
{
	struct fh_gpadl *g = fh_find_gpadl(h->fp, handle);

	if (g == NULL || !g->g_complete)
		return NULL;
	return g;
}

/* Copy between host memory and a GPADL's bytes [off, off+len). */
static bool nvh_gpadl_io(struct nvhost *h, uint32_t handle, uint32_t off,
    void *buf, uint32_t len, bool write)
{
	struct fh_gpadl *g = nvh_gpadl(h, handle);
	uint32_t total, npfn;

	if (g == NULL)
		return false;
	total = rd32(g->g_range);
	npfn = (g->g_buflen - 8) / 8;
	if ((uint64_t)off + len > total)
		return false;
	while (len) {
		uint32_t pg = off / 4096, po = off % 4096;
		uint32_t n = 4096 - po < len ? 4096 - po : len;
		uint64_t pfn;
		uint8_t *p;

		if (pg >= npfn)
			return false;
		memcpy(&pfn, g->g_range + 8 + 8 * pg, 8);
		p = fp_gpa(h->fp, (pfn << 12) + po, n);
		if (p == NULL)
			return false;
		if (write)
			memcpy(p, buf, n);
		else
			memcpy(buf, p, n);
		buf = (uint8_t *)buf + n;
		off += n;
		len -= n;
	}
	return true;
}

void nvh_rbuf_write(struct nvhost *h, uint32_t off, const void *data,
    uint32_t len)
{
	if (!nvh_gpadl_io(h, h->rbuf_gpadl, off, (void *)(uintptr_t)data, len,
	    true))
		abort();
}

/* ---- host -> guest packets ---- */

static bool nvh_pend_has(struct nvhost *h, uint32_t q)
{
	for (uint32_t i = 0; i < h->npend; i++)
		if (h->pend[i].q == q)
			return true;
	return false;
}

static void nvh_flush(struct nvhost *h)
{
	for (uint32_t i = 0; i < h->npend;) {
		struct fh_chan *c = h->q[h->pend[i].q];
		int r;

		/* Keep order per queue: stop at the first that does not fit. */
		bool earlier = false;

		for (uint32_t k = 0; k < i; k++)
			earlier |= h->pend[k].q == h->pend[i].q;
		if (earlier || !c->c_open) {
			i++;
			continue;
		}
		r = fh_write_raw(h->fp, c, h->pend[i].pkt, h->pend[i].len);
		if (r == -VMBUS_EAGAIN) {
			vmbus_ring_set_pending_send(&c->c_out, h->pend[i].len + 8);
			i++;
			continue;
		}
		vmbus_ring_set_pending_send(&c->c_out, 0);
		free(h->pend[i].pkt);
		memmove(&h->pend[i], &h->pend[i + 1],
		    (h->npend - i - 1) * sizeof(h->pend[0]));
		h->npend--;
	}
}

/* Write a whole packet (descriptor included) to queue q, or queue it. */
static void nvh_write(struct nvhost *h, uint32_t q, const void *pkt,
    uint32_t len)
{
	struct fh_chan *c = h->q[q];

	if (!nvh_pend_has(h, q) && c->c_open) {
		int r = fh_write_raw(h->fp, c, pkt, len);

		if (r == 0)
			return;
		if (r != -VMBUS_EAGAIN)
			abort();
		vmbus_ring_set_pending_send(&c->c_out, len + 8);
	}
	if (h->npend >= NVH_PEND)
		abort();
	h->pend[h->npend].q = q;
	h->pend[h->npend].len = len;
	h->pend[h->npend].pkt = malloc(len);
	memcpy(h->pend[h->npend].pkt, pkt, len);
	h->npend++;
}

int nvh_pkt(struct nvhost *h, uint32_t q, uint16_t type, uint16_t flags,
    uint64_t tid, const void *payload, uint32_t len)
{
	uint32_t total = 16 + ((len + 7) & ~7u);
	uint8_t *b = calloc(1, total);
	struct vmbus_packet_desc d = { type, 2, (uint16_t)(total / 8), flags, tid };

	memcpy(b, &d, 16);
	if (len)
		memcpy(b + 16, payload, len);
	nvh_write(h, q, b, total);
	free(b);
	return 0;
}

/* An NVSP completion of the negotiated size (28 before 6.1, else 40). */
static void nvh_comp(struct nvhost *h, uint32_t q, uint64_t tid,
    const void *msg)
{
	uint32_t len = h->version >= NVSP_PROTOCOL_VERSION_61 ?
	    NVSP_MSG_SIZE_V61 : NVSP_MSG_SIZE_V1;

	nvh_pkt(h, q, VMBUS_PACKET_TYPE_COMP, 0, tid, msg, len);
}

uint64_t nvh_xfer_raw(struct nvhost *h, uint32_t q, uint16_t pageset,
    const uint32_t (*ranges)[2], uint32_t n, uint32_t rcnt_field,
    const void *nvsp, uint32_t nvsp_len, uint64_t tid)
{
	union nvsp_msg m;
	uint32_t hdr = 24 + 8 * n, total;
	uint8_t *b;
	struct vmbus_packet_desc d;

	if (nvsp == NULL) {
		memset(&m, 0, sizeof(m));
		m.nm_rndis_pkt.np_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT;
		m.nm_rndis_pkt.np_send_buf_section_index = NVSP_SEND_BUF_SECTION_NONE;
		nvsp = &m;
		nvsp_len = h->version >= NVSP_PROTOCOL_VERSION_61 ? 40 : 28;
	}
	hdr = (hdr + 7) & ~7u;
	total = hdr + ((nvsp_len + 7) & ~7u);
	b = calloc(1, total);
	if (tid == 0)
		tid = ++h->next_tid;
	d.pd_type = VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES;
	d.pd_offset8 = (uint16_t)(hdr / 8);
	d.pd_len8 = (uint16_t)(total / 8);
	d.pd_flags = VMBUS_PACKET_FLAG_COMPLETION_REQUESTED;
	d.pd_trans_id = tid;
	memcpy(b, &d, 16);
	wr16(b + 16, pageset);
	wr32(b + 20, rcnt_field == UINT32_MAX ? n : rcnt_field);
	for (uint32_t i = 0; i < n; i++) {
		wr32(b + 24 + 8 * i, ranges[i][0]);
		wr32(b + 28 + 8 * i, ranges[i][1]);
	}
	memcpy(b + hdr, nvsp, nvsp_len);
	nvh_write(h, q, b, total);
	free(b);
	return tid;
}

uint32_t nvh_free_slots(struct nvhost *h)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < h->rb_num_used && i < sizeof(h->slot_busy); i++)
		n += !h->slot_busy[i];
	return n;
}

static int nvh_slot_alloc(struct nvhost *h)
{
	for (uint32_t i = 0; i < h->rb_num_used && i < sizeof(h->slot_busy); i++)
		if (!h->slot_busy[i]) {
			h->slot_busy[i] = 1;
			return (int)i;
		}
	return -1;
}

static uint64_t nvh_xfer_slots(struct nvhost *h, uint32_t q,
    const uint32_t *slots, const uint32_t *lens, uint32_t n,
    uint32_t chan_type)
{
	uint32_t ranges[64][2];
	union nvsp_msg m;
	uint64_t tid;
	uint32_t x;

	if (n > 64)
		abort();
	for (uint32_t i = 0; i < n; i++) {
		ranges[i][0] = lens[i];
		ranges[i][1] = slots[i] * h->rb_sub_used;
	}
	memset(&m, 0, sizeof(m));
	m.nm_rndis_pkt.np_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT;
	m.nm_rndis_pkt.np_channel_type = chan_type;
	m.nm_rndis_pkt.np_send_buf_section_index = NVSP_SEND_BUF_SECTION_NONE;
	tid = nvh_xfer_raw(h, q, h->rbuf_id, (const uint32_t (*)[2])ranges, n,
	    UINT32_MAX, &m,
	    h->version >= NVSP_PROTOCOL_VERSION_61 ? 40 : 28, 0);
	for (x = 0; x < NVH_MAX_XFER && h->xfer[x].live; x++)
		;
	if (x == NVH_MAX_XFER)
		abort();
	h->xfer[x].live = true;
	h->xfer[x].tid = tid;
	h->xfer[x].q = q;
	h->xfer[x].nslots = n;
	memcpy(h->xfer[x].slot, slots, n * sizeof(slots[0]));
	h->xfer_live++;
	return tid;
}

uint64_t nvh_rx_msg(struct nvhost *h, uint32_t q, const void *msg,
    uint32_t len, uint32_t chan_type)
{
	int s;
	uint32_t slot;

	if (len > h->rb_sub_used)
		abort();
	s = nvh_slot_alloc(h);
	if (s < 0)
		return 0;
	slot = (uint32_t)s;
	nvh_rbuf_write(h, slot * h->rb_sub_used, msg, len);
	return nvh_xfer_slots(h, q, &slot, &len, 1, chan_type);
}

/* RNDIS PACKET_MSG with PPIs into buf; returns its length. */
static uint32_t nvh_build_frame(uint8_t *buf, const void *frame, uint32_t len,
    const uint32_t *ppi_types, const uint32_t *ppi_vals, uint32_t nppi)
{
	uint32_t ppi = 16 * nppi, hdr = 44 + ppi;

	memset(buf, 0, hdr);
	wr32(buf, REMOTE_NDIS_PACKET_MSG);
	wr32(buf + 4, hdr + len);
	wr32(buf + 8, 36 + ppi);
	wr32(buf + 12, len);
	if (nppi) {
		wr32(buf + 28, 36);
		wr32(buf + 32, ppi);
	}
	for (uint32_t i = 0; i < nppi; i++) {
		wr32(buf + 44 + 16 * i, 16);
		wr32(buf + 48 + 16 * i, ppi_types[i]);
		wr32(buf + 52 + 16 * i, 12);
		wr32(buf + 56 + 16 * i, ppi_vals[i]);
	}
	memcpy(buf + hdr, frame, len);
	return hdr + len;
}

uint64_t nvh_rx_frame(struct nvhost *h, uint32_t q, const void *frame,
    uint32_t len, const uint32_t *ppi_types, const uint32_t *ppi_vals,
    uint32_t nppi)
{
	uint8_t *b = malloc(44 + 16 * nppi + len);
	uint32_t n = nvh_build_frame(b, frame, len, ppi_types, ppi_vals, nppi);
	uint64_t tid = nvh_rx_msg(h, q, b, n, NVSP_RNDIS_CHANNEL_TYPE_DATA);

	free(b);
	return tid;
}

uint64_t nvh_rx_frames(struct nvhost *h, uint32_t q,
    const uint8_t *const *frames, const uint32_t *lens, uint32_t n)
{
	uint32_t slots[64], mlen[64];
	uint8_t *b = malloc(h->rb_sub_used);

	for (uint32_t i = 0; i < n; i++) {
		int s = nvh_slot_alloc(h);

		if (s < 0)
			abort();
		slots[i] = (uint32_t)s;
		mlen[i] = nvh_build_frame(b, frames[i], lens[i], NULL, NULL, 0);
		nvh_rbuf_write(h, slots[i] * h->rb_sub_used, b, mlen[i]);
	}
	free(b);
	return nvh_xfer_slots(h, q, slots, mlen, n, NVSP_RNDIS_CHANNEL_TYPE_DATA);
}

uint64_t nvh_indicate(struct nvhost *h, uint32_t q, uint32_t status,
    const void *buf, uint32_t blen)
{
	uint8_t m[256];

	memset(m, 0, sizeof(m));
	wr32(m, REMOTE_NDIS_INDICATE_STATUS_MSG);
	wr32(m + 4, 20 + blen);
	wr32(m + 8, status);
	wr32(m + 12, blen);
	wr32(m + 16, blen ? 12 : 0);
	if (blen)
		memcpy(m + 20, buf, blen);
	return nvh_rx_msg(h, q, m, 20 + blen, NVSP_RNDIS_CHANNEL_TYPE_CONTROL);
}

/* ---- RNDIS control from the guest ---- */

static void nvh_ctl_reply(struct nvhost *h, const void *msg, uint32_t len)
{
	if (!h->rndis_noreply &&
	    nvh_rx_msg(h, 0, msg, len, NVSP_RNDIS_CHANNEL_TYPE_CONTROL) == 0)
		abort();	/* tests size the buffer for control replies */
}

static uint32_t nvh_query_answer(struct nvhost *h, uint32_t oid,
    const uint8_t *in, uint32_t inlen, uint8_t *out, uint32_t *status)
{
	*status = RNDIS_STATUS_SUCCESS;
	if (oid == h->query_fail_oid) {
		*status = RNDIS_STATUS_FAILURE;
		return 0;
	}
	switch (oid) {
	case OID_GEN_MAXIMUM_FRAME_SIZE:
		wr32(out, h->max_frame ? h->max_frame :
		    (h->ndis_config_mtu ? h->ndis_config_mtu - 14 : 1500));
		return 4;
	case OID_802_3_PERMANENT_ADDRESS:
		memcpy(out, h->perm_mac, 6);
		return 6;
	case OID_802_3_CURRENT_ADDRESS:
		memcpy(out, h->cur_mac, 6);
		return 6;
	case OID_GEN_MEDIA_CONNECT_STATUS:
		wr32(out, h->media_state);
		return 4;
	case OID_GEN_LINK_SPEED:
		wr32(out, h->link_speed);
		return 4;
	case OID_GEN_VENDOR_ID:
		wr32(out, NDIS_VENDOR_ID_MICROSOFT_V);
		return 4;
	case OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES: {
		struct ndis_offload o;
		uint32_t size = NDIS_OFFLOAD_SIZE;
		uint8_t rev = NDIS_OFFLOAD_REV_3;

		if (h->no_offload_caps || inlen < 4) {
			*status = RNDIS_STATUS_NOT_SUPPORTED;
			return 0;
		}
		if (in[1] == 1)
			size = NDIS_OFFLOAD_SIZE_6_0, rev = 1;
		else if (in[1] == 2)
			size = NDIS_OFFLOAD_SIZE_6_1, rev = 2;
		memset(&o, 0, sizeof(o));
		o.ndis_hdr.ndis_type = NDIS_OBJTYPE_OFFLOAD;
		o.ndis_hdr.ndis_rev = rev;
		o.ndis_hdr.ndis_size = (uint16_t)size;
		o.ndis_csum.ncs_ip4_txenc = NDIS_OFFLOAD_ENCAP_8023;
		o.ndis_csum.ncs_ip4_txcsum = NDIS_TXCSUM_CAP_IP4OPT |
		    NDIS_TXCSUM_CAP_TCP4OPT | NDIS_TXCSUM_CAP_TCP4 |
		    NDIS_TXCSUM_CAP_UDP4 | NDIS_TXCSUM_CAP_IP4;
		o.ndis_csum.ncs_ip4_rxenc = NDIS_OFFLOAD_ENCAP_8023;
		o.ndis_csum.ncs_ip4_rxcsum = o.ndis_csum.ncs_ip4_txcsum;
		o.ndis_csum.ncs_ip6_txenc = NDIS_OFFLOAD_ENCAP_8023;
		o.ndis_csum.ncs_ip6_txcsum = NDIS_TXCSUM_CAP_IP6EXT |
		    NDIS_TXCSUM_CAP_TCP6OPT | NDIS_TXCSUM_CAP_TCP6 |
		    NDIS_TXCSUM_CAP_UDP6;
		o.ndis_csum.ncs_ip6_rxenc = NDIS_OFFLOAD_ENCAP_8023;
		o.ndis_csum.ncs_ip6_rxcsum = o.ndis_csum.ncs_ip6_txcsum;
		o.ndis_lsov2.nl2_ip4_encap = NDIS_OFFLOAD_ENCAP_8023;
		o.ndis_lsov2.nl2_ip4_maxsz = NDIS_LSO_V_MAX_SIZE;
		o.ndis_lsov2.nl2_ip4_minsg = NDIS_LSO_V_MIN_SEGS;
		o.ndis_lsov2.nl2_ip6_encap = NDIS_OFFLOAD_ENCAP_8023;
		o.ndis_lsov2.nl2_ip6_maxsz = NDIS_LSO_V_MAX_SIZE;
		o.ndis_lsov2.nl2_ip6_minsg = NDIS_LSO_V_MIN_SEGS;
		o.ndis_lsov2.nl2_ip6_opts = NDIS_LSOV2_CAP_IP6;
		memcpy(out, &o, size);
		return size;
	}
	case OID_GEN_RECEIVE_SCALE_CAPABILITIES:
		if (h->rss_queues == 0) {
			*status = RNDIS_STATUS_NOT_SUPPORTED;
			return 0;
		}
		out[0] = NDIS_OBJTYPE_RSS_CAPS;
		out[1] = NDIS_RSS_CAPS_REV_2;
		wr16(out + 2, NDIS_RSS_CAPS_SIZE);
		wr32(out + 4, NDIS_RSS_CAP_HASH_TOEPLITZ | NDIS_RSS_CAP_TCP_IPV4 |
		    NDIS_RSS_CAP_TCP_IPV6);
		wr32(out + 8, 1);
		wr32(out + 12, h->rss_queues);
		wr16(out + 16, h->rss_entries);
		return NDIS_RSS_CAPS_SIZE;
	default:
		*status = RNDIS_STATUS_NOT_SUPPORTED;
		return 0;
	}
}

static void nvh_rndis_ctl(struct nvhost *h, const uint8_t *m, uint32_t len)
{
	uint8_t r[2048];
	uint32_t type = rd32(m), rid = len >= 12 ? rd32(m + 8) : 0;

	h->ctl_msgs++;
	memset(r, 0, sizeof(r));
	if (h->rescind_on_msg != 0 && type == h->rescind_on_msg) {
		/* Gone instead of answering (once). */
		h->rescind_on_msg = 0;
		h->rescinds++;
		fh_rescind(h->fp, h->q[0]);
		return;
	}
	switch (type) {
	case REMOTE_NDIS_INITIALIZE_MSG:
		h->rndis_inits++;
		if (len < 24 || rid == 0)
			h->bad_guest++;
		wr32(r, REMOTE_NDIS_INITIALIZE_CMPLT);
		wr32(r + 4, 52);
		wr32(r + 8, rid);
		wr32(r + 16, 1);
		wr32(r + 24, RNDIS_DF_CONNECTIONLESS);
		wr32(r + 32, RNDIS_PKTMAXCNT_DEFAULT);
		wr32(r + 36, RNDIS_PKTMAXSZ_V);
		wr32(r + 40, RNDIS_ALIGN_DEFAULT);
		nvh_ctl_reply(h, r, 52);
		break;
	case REMOTE_NDIS_QUERY_MSG: {
		uint32_t oid = rd32(m + 12), ilen = rd32(m + 16);
		uint32_t ioff = rd32(m + 20), st, n;

		h->queries++;
		if (rd32(m + 4) != len || (ilen && 8 + ioff + ilen > len))
			h->bad_guest++;
		n = nvh_query_answer(h, oid, m + 8 + ioff, ilen, r + 24, &st);
		wr32(r, REMOTE_NDIS_QUERY_CMPLT);
		wr32(r + 4, 24 + n);
		wr32(r + 8, rid);
		wr32(r + 12, st);
		wr32(r + 16, n);
		wr32(r + 20, n ? 16 : 0);
		nvh_ctl_reply(h, r, 24 + n);
		break;
	}
	case REMOTE_NDIS_SET_MSG: {
		uint32_t oid = rd32(m + 12), ilen = rd32(m + 16);
		uint32_t ioff = rd32(m + 20), st = RNDIS_STATUS_SUCCESS;
		const uint8_t *d = m + 8 + ioff;

		h->sets++;
		if (8 + (uint64_t)ioff + ilen > len) {
			h->bad_guest++;
			break;
		}
		if (oid == h->query_fail_oid) {
			st = RNDIS_STATUS_FAILURE;
		} else if (oid == OID_GEN_CURRENT_PACKET_FILTER && ilen >= 4) {
			h->filter = rd32(d);
			h->filters_set++;
		} else if (oid == OID_TCP_OFFLOAD_PARAMETERS) {
			h->offload_params_len = ilen < 32 ? ilen : 32;
			memcpy(h->offload_params, d, h->offload_params_len);
			if (h->offload_set_fail)
				st = RNDIS_STATUS_FAILURE;
		} else if (oid == OID_GEN_RECEIVE_SCALE_PARAMETERS) {
			h->rss_params_len = ilen < sizeof(h->rss_params) ? ilen :
			    sizeof(h->rss_params);
			memcpy(h->rss_params, d, h->rss_params_len);
		}
		wr32(r, REMOTE_NDIS_SET_CMPLT);
		wr32(r + 4, 16);
		wr32(r + 8, rid);
		wr32(r + 12, st);
		nvh_ctl_reply(h, r, 16);
		break;
	}
	case REMOTE_NDIS_KEEPALIVE_MSG:
		h->keepalives++;
		wr32(r, REMOTE_NDIS_KEEPALIVE_CMPLT);
		wr32(r + 4, 16);
		wr32(r + 8, rid);
		nvh_ctl_reply(h, r, 16);
		break;
	case REMOTE_NDIS_RESET_MSG:
		h->resets++;
		if (h->reset_unsupported)
			break;
		wr32(r, REMOTE_NDIS_RESET_CMPLT);
		wr32(r + 4, 16);
		wr32(r + 12, 1);
		nvh_ctl_reply(h, r, 16);
		break;
	case REMOTE_NDIS_HALT_MSG:
		h->rndis_halts++;
		break;
	default:
		h->bad_guest++;
		break;
	}
}

/* A data PACKET_MSG from the guest: decode into the frame log. */
static void nvh_rndis_data(struct nvhost *h, uint32_t q, const uint8_t *m,
    uint32_t len, bool section, uint32_t sidx, uint32_t nranges)
{
	struct nvh_frame *f;
	uint32_t mlen, doff, dlen, poff, plen;

	if (len < 44) {
		h->bad_guest++;
		return;
	}
	mlen = rd32(m + 4);
	doff = rd32(m + 8);
	dlen = rd32(m + 12);
	poff = rd32(m + 28);
	plen = rd32(m + 32);
	if (mlen > len || 8 + (uint64_t)doff + dlen > mlen ||
	    (plen && 8 + (uint64_t)poff + plen > mlen)) {
		h->bad_guest++;
		return;
	}
	if (h->nframes >= NVH_MAX_FRAMES)
		abort();
	f = &h->frames[h->nframes++];
	memset(f, 0, sizeof(*f));
	f->f_q = q;
	f->f_len = dlen;
	f->f_msg_len = mlen;
	f->f_data = malloc(dlen ? dlen : 1);
	memcpy(f->f_data, m + 8 + doff, dlen);
	f->f_section = section;
	f->f_section_idx = sidx;
	f->f_nranges = nranges;
	for (uint32_t p = 8 + poff; plen && p + 12 <= 8 + poff + plen;) {
		uint32_t sz = rd32(m + p), ty = rd32(m + p + 4), po = rd32(m + p + 8);
		uint32_t v = sz >= po + 4 ? rd32(m + p + po) : 0;

		if (sz < 12 || po > sz) {
			h->bad_guest++;
			break;
		}
		if (ty < 32)
			f->f_ppi_mask |= 1u << ty;
		if (ty == NDIS_PKTINFO_TYPE_CSUM)
			f->f_csum = v;
		else if (ty == NDIS_PKTINFO_TYPE_LSO)
			f->f_lso = v;
		else if (ty == NDIS_PKTINFO_TYPE_VLAN)
			f->f_vlan = v;
		else if (ty == NDIS_PKTINFO_TYPE_HASHVAL)
			f->f_hash = v;
		p += sz;
	}
}

/* ---- guest -> host packets ---- */

static bool nvh_zero(const uint8_t *p, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++)
		if (p[i])
			return false;
	return true;
}

static void nvh_subchannels(struct nvhost *h, uint64_t tid, uint32_t asked)
{
	union nvsp_msg r;
	uint32_t granted, offer;

	h->sub_requests++;
	h->sub_asked = asked;
	granted = asked < h->max_sub ? asked : h->max_sub;
	granted += h->grant_extra;
	if (granted > NVH_MAX_Q - 1)
		granted = NVH_MAX_Q - 1;
	h->sub_granted = granted;
	memset(&r, 0, sizeof(r));
	r.nm_subchannel_complete.nsp_type = NVSP_MSG5_TYPE_SUBCHANNEL;
	r.nm_subchannel_complete.nsp_status = h->sub_status ? h->sub_status :
	    NVSP_STAT_SUCCESS;
	r.nm_subchannel_complete.nsp_num_subchannels = granted;
	nvh_comp(h, 0, tid, &r);
	if (h->sub_status && h->sub_status != NVSP_STAT_SUCCESS)
		return;
	offer = granted > h->offer_fewer ? granted - h->offer_fewer : 0;
	for (uint32_t i = 0; i < offer && h->nq < NVH_MAX_Q; i++) {
		struct fh_chan *c = fh_add_chan(h->fp, h->next_relid++, &nvh_class,
		    &nvh_inst, (uint16_t)(i + 1), false);

		h->q[h->nq++] = c;
		fh_offer(h->fp, c);
	}
	if (h->send_indirection) {
		uint8_t t[76];

		wr32(t, NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE);
		wr32(t + 4, 16);
		wr32(t + 8, 12);
		for (int i = 0; i < 16; i++)
			wr32(t + 12 + 4 * i, h->ind_table[i]);
		nvh_pkt(h, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 0, t, sizeof(t));
	}
}

/* NVSP 107 from the guest: the RNDIS bytes from a section and/or GPA. */
static void nvh_rndis_pkt(struct nvhost *h, uint32_t q, const uint8_t *nv,
    uint64_t tid, const uint8_t *gpa_bytes, uint32_t gpa_len,
    uint32_t nranges)
{
	uint32_t ctype = rd32(nv + 4), sidx = rd32(nv + 8), ssz = rd32(nv + 12);
	uint32_t sect = h->section_size ? h->section_size : 6144;
	uint8_t *buf = malloc(ssz + gpa_len + 8);
	uint32_t len = 0, status = NVSP_STAT_SUCCESS;
	union nvsp_msg r;

	if (sidx != NVSP_SEND_BUF_SECTION_NONE) {
		if (h->sbuf_gpadl == 0 || ssz > sect ||
		    (uint64_t)sidx * sect + ssz > h->sbuf_bytes ||
		    !nvh_gpadl_io(h, h->sbuf_gpadl, sidx * sect, buf, ssz, false)) {
			h->bad_guest++;
			status = NVSP_STAT_FAIL;
			goto done;
		}
		len = ssz;
	} else if (ssz != 0) {
		h->bad_guest++;
	}
	if (gpa_len)
		memcpy(buf + len, gpa_bytes, gpa_len);
	len += gpa_len;
	if (len < 8) {
		h->bad_guest++;
		status = NVSP_STAT_FAIL;
		goto done;
	}
	if (rd32(buf) == REMOTE_NDIS_PACKET_MSG) {
		if (ctype != NVSP_RNDIS_CHANNEL_TYPE_DATA)
			h->bad_guest++;
		/* One or more messages (batched ones padded, spec 1.7). */
		for (uint32_t off = 0, n = 0; len - off >= 8; n++) {
			uint32_t ty = rd32(buf + off), ml = rd32(buf + off + 4);

			if (ty == 0 && ml == 0 && nvh_zero(buf, off, len))
				break;	/* padding after the last one */
			if (ty != REMOTE_NDIS_PACKET_MSG || ml < 44 ||
			    ml > len - off || n >= RNDIS_PKTMAXCNT_DEFAULT) {
				h->bad_guest++;
				break;
			}
			nvh_rndis_data(h, q, buf + off, ml,
			    sidx != NVSP_SEND_BUF_SECTION_NONE, sidx, nranges);
			if (n > 0 && (off % (1u << RNDIS_ALIGN_DEFAULT)) != 0)
				h->bad_guest++;	/* not on the alignment */
			off += ml;
		}
	} else {
		if (ctype != NVSP_RNDIS_CHANNEL_TYPE_CONTROL)
			h->bad_guest++;
		nvh_rndis_ctl(h, buf, len);
	}
done:
	free(buf);
	if (h->hold_tx) {
		if (h->nheld >= 4096)
			abort();
		h->held[h->nheld].tid = tid;
		h->held[h->nheld].q = q;
		h->nheld++;
		return;
	}
	memset(&r, 0, sizeof(r));
	r.nm_rndis_pkt_complete.npc_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE;
	r.nm_rndis_pkt_complete.npc_status = status;
	nvh_comp(h, q, tid, &r);
}

void nvh_release_held(struct nvhost *h, uint32_t status)
{
	union nvsp_msg r;

	memset(&r, 0, sizeof(r));
	r.nm_rndis_pkt_complete.npc_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE;
	r.nm_rndis_pkt_complete.npc_status = status;
	for (uint32_t i = 0; i < h->nheld; i++)
		nvh_comp(h, h->held[i].q, h->held[i].tid, &r);
	h->nheld = 0;
}

void nvh_release_one(struct nvhost *h, uint32_t i, uint32_t status)
{
	union nvsp_msg r;

	if (i >= h->nheld)
		abort();
	memset(&r, 0, sizeof(r));
	r.nm_rndis_pkt_complete.npc_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE;
	r.nm_rndis_pkt_complete.npc_status = status;
	nvh_comp(h, h->held[i].q, h->held[i].tid, &r);
	memmove(&h->held[i], &h->held[i + 1], (h->nheld - i - 1) *
	    sizeof(h->held[0]));
	h->nheld--;
}

static void nvh_inband(struct nvhost *h, uint32_t q, const uint8_t *p,
    uint32_t len, uint64_t tid, uint16_t flags)
{
	union nvsp_msg r;
	uint32_t type;

	if (len < 32) {
		h->bad_guest++;	/* F/O: a host ignores short requests */
		return;
	}
	type = rd32(p);
	memset(&r, 0, sizeof(r));
	switch (type) {
	case NVSP_MSG_TYPE_INIT: {
		uint32_t v = rd32(p + 4);
		bool ok = false;

		if (!nvh_zero(p, 12, len) || rd32(p + 8) != v)
			h->nonzero_reserved++;
		if (h->nrequested < 16)
			h->requested[h->nrequested++] = v;
		for (int i = 0; i < 8 && h->accept[i]; i++)
			ok |= h->accept[i] == v;
		if (ok)
			h->version = v;
		if (h->init_noreply)
			break;
		r.nm_init_complete.nic_type = h->init_bad_type ? 99 :
		    NVSP_MSG_TYPE_INIT_COMPLETE;
		r.nm_init_complete.nic_negotiated_protocol_ver =
		    v == NVSP_PROTOCOL_VERSION_1 ? 2 : 0xFFFFFFFFu;
		r.nm_init_complete.nic_max_mdl_chain_len = 34;
		r.nm_init_complete.nic_status = ok ? NVSP_STAT_SUCCESS :
		    NVSP_STAT_NONE;
		if (h->init_short)
			nvh_pkt(h, q, VMBUS_PACKET_TYPE_COMP, 0, tid, &r, 8);
		else
			nvh_comp(h, q, tid, &r);
		break;
	}
	case NVSP_MSG2_TYPE_SEND_NDIS_CONFIG:
		h->ndis_configs++;
		h->ndis_config_mtu = rd32(p + 4);
		memcpy(&h->ndis_config_caps, p + 12, 8);
		if (rd32(p + 8) || !nvh_zero(p, 20, len))
			h->nonzero_reserved++;
		if (h->version < NVSP_PROTOCOL_VERSION_2)
			h->bad_guest++;
		break;
	case NVSP_MSG1_TYPE_SEND_NDIS_VER:
		h->ndis_ver = (rd32(p + 4) << 16) | rd32(p + 8);
		if (!nvh_zero(p, 12, len))
			h->nonzero_reserved++;
		break;
	case NVSP_MSG1_TYPE_SEND_RECV_BUF: {
		struct fh_gpadl *g = nvh_gpadl(h, rd32(p + 4));
		uint32_t sub, num;

		if (!nvh_zero(p, 10, len))
			h->nonzero_reserved++;
		h->rbuf_gpadl = rd32(p + 4);
		h->rbuf_id = rd16(p + 8);
		h->rbuf_bytes = g ? rd32(g->g_range) : 0;
		/* V: slot = 256 + frame MTU + 36; 1514 without NDIS config. */
		sub = 256 + (h->ndis_config_mtu ? h->ndis_config_mtu : 1514) + 36;
		sub = (sub + 63) & ~63u;
		num = h->rbuf_bytes / sub;
		if (num > sizeof(h->slot_busy))
			num = sizeof(h->slot_busy);
		r.nm_recv_buf_complete.nrc_type = NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE;
		r.nm_recv_buf_complete.nrc_status = g ? NVSP_STAT_SUCCESS :
		    NVSP_STAT_FAIL;
		r.nm_recv_buf_complete.nrc_num_sections = 1;
		r.nm_recv_buf_complete.nrc_sections[0].nrs_offset = 0;
		r.nm_recv_buf_complete.nrc_sections[0].nrs_sub_alloc_size = sub;
		r.nm_recv_buf_complete.nrc_sections[0].nrs_num_sub_allocs = num;
		r.nm_recv_buf_complete.nrc_sections[0].nrs_end_offset = sub * num;
		if (h->rb_override) {
			r.nm_recv_buf_complete.nrc_status = h->rb_status;
			r.nm_recv_buf_complete.nrc_num_sections = h->rb_nsect;
			r.nm_recv_buf_complete.nrc_sections[0].nrs_offset = h->rb_offset;
			r.nm_recv_buf_complete.nrc_sections[0].nrs_sub_alloc_size = h->rb_sub;
			r.nm_recv_buf_complete.nrc_sections[0].nrs_num_sub_allocs = h->rb_num;
			sub = h->rb_sub;
			num = h->rb_num;
		}
		h->rb_sub_used = sub;
		h->rb_num_used = num;
		memset(h->slot_busy, 0, sizeof(h->slot_busy));
		nvh_comp(h, q, tid, &r);
		break;
	}
	case NVSP_MSG1_TYPE_SEND_SEND_BUF: {
		struct fh_gpadl *g = nvh_gpadl(h, rd32(p + 4));

		if (!nvh_zero(p, 10, len))
			h->nonzero_reserved++;
		h->sbuf_gpadl = rd32(p + 4);
		h->sbuf_id = rd16(p + 8);
		h->sbuf_bytes = g ? rd32(g->g_range) : 0;
		r.nm_send_buf_complete.nsc_type = NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE;
		r.nm_send_buf_complete.nsc_status = g ? NVSP_STAT_SUCCESS :
		    NVSP_STAT_FAIL;
		r.nm_send_buf_complete.nsc_section_size =
		    h->section_size ? h->section_size : 6144;
		if (h->sb_override) {
			r.nm_send_buf_complete.nsc_status = h->sb_status;
			r.nm_send_buf_complete.nsc_section_size = h->sb_section;
		}
		nvh_comp(h, q, tid, &r);
		break;
	}
	case NVSP_MSG1_TYPE_REVOKE_RECV_BUF:
		h->revoked_recv++;
		if (rd16(p + 4) != h->rbuf_id || !nvh_zero(p, 6, len))
			h->bad_guest++;
		break;
	case NVSP_MSG1_TYPE_REVOKE_SEND_BUF:
		h->revoked_send++;
		if (rd16(p + 4) != h->sbuf_id || !nvh_zero(p, 6, len))
			h->bad_guest++;
		/* V: the send buffer is gone; sections are no longer valid. */
		h->sbuf_gpadl = 0;
		break;
	case NVSP_MSG1_TYPE_SEND_RNDIS_PKT:
		if (!nvh_zero(p, 16, len))
			h->nonzero_reserved++;
		if (!(flags & VMBUS_PACKET_FLAG_COMPLETION_REQUESTED))
			h->bad_guest++;
		nvh_rndis_pkt(h, q, p, tid, NULL, 0, 0);
		break;
	case NVSP_MSG5_TYPE_SUBCHANNEL:
		if (!nvh_zero(p, 12, len))
			h->nonzero_reserved++;
		nvh_subchannels(h, tid, rd32(p + 8));
		break;
	default:
		h->unknown_nvsp++;
		break;
	}
}

/* GPA-direct packet: gather the described bytes, then the NVSP message. */
static void nvh_gpa(struct nvhost *h, uint32_t q, const uint8_t *pkt,
    uint32_t len)
{
	const struct vmbus_packet_desc *d = (const void *)pkt;
	uint32_t off8 = (uint32_t)d->pd_offset8 * 8, cnt = rd32(pkt + 20);
	uint32_t pos = 24, dl = 0;
	static uint8_t data[1 << 17];

	if (rd32(pkt + 16) != 0)
		h->nonzero_reserved++;
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t bc, bo, np;

		if (pos + 8 > off8) {
			h->bad_guest++;
			return;
		}
		bc = rd32(pkt + pos);
		bo = rd32(pkt + pos + 4);
		np = (bo + bc + 4095) / 4096;
		if (bo >= 4096 || bc == 0 || pos + 8 + 8 * np > off8) {
			h->bad_guest++;
			return;
		}
		for (uint32_t p = 0; p < np; p++) {
			uint64_t pfn;
			uint32_t s = p == 0 ? bo : 0;
			uint32_t e = p + 1 == np ? bo + bc - 4096 * p : 4096;
			uint8_t *src;

			memcpy(&pfn, pkt + pos + 8 + 8 * p, 8);
			src = fp_gpa(h->fp, (pfn << 12) + s, e - s);
			if (src == NULL || dl + (e - s) > sizeof(data)) {
				h->bad_guest++;
				return;
			}
			memcpy(data + dl, src, e - s);
			dl += e - s;
		}
		pos += 8 + 8 * np;
	}
	if (len < off8 + 16 || rd32(pkt + off8) != NVSP_MSG1_TYPE_SEND_RNDIS_PKT) {
		h->bad_guest++;
		return;
	}
	if (!nvh_zero(pkt + off8, 16, len - off8))
		h->nonzero_reserved++;
	nvh_rndis_pkt(h, q, pkt + off8, d->pd_trans_id, data, dl, cnt);
}

static void nvh_guest_comp(struct nvhost *h, uint32_t q, const uint8_t *pkt,
    uint32_t len)
{
	const struct vmbus_packet_desc *d = (const void *)pkt;
	uint32_t off8 = (uint32_t)d->pd_offset8 * 8;
	struct nvh_comp *c;

	if (h->ncomps >= NVH_MAX_COMPS)
		abort();
	c = &h->comps[h->ncomps++];
	c->c_q = q;
	c->c_tid = d->pd_trans_id;
	c->c_len = len - off8;
	c->c_status = 0;
	if (len >= off8 + 8 && rd32(pkt + off8) == NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE)
		c->c_status = rd32(pkt + off8 + 4);
	else
		h->bad_guest++;
	for (uint32_t x = 0; x < NVH_MAX_XFER; x++) {
		if (!h->xfer[x].live || h->xfer[x].tid != d->pd_trans_id)
			continue;
		if (h->xfer[x].q != q)
			h->bad_guest++;	/* completed on another channel */
		for (uint32_t i = 0; i < h->xfer[x].nslots; i++)
			h->slot_busy[h->xfer[x].slot[i]] = 0;
		h->xfer[x].live = false;
		h->xfer_live--;
		break;
	}
}

static void nvh_service_q(struct nvhost *h, uint32_t q)
{
	static _Alignas(8) uint8_t pkt[1 << 16];
	struct fh_chan *c = h->q[q];
	int n;

	while (c->c_open && (n = fh_read_pkt(h->fp, c, pkt, sizeof(pkt))) > 0) {
		const struct vmbus_packet_desc *d = (const void *)pkt;
		uint32_t off8 = (uint32_t)d->pd_offset8 * 8;

		switch (d->pd_type) {
		case VMBUS_PACKET_TYPE_DATA_INBAND:
			nvh_inband(h, q, pkt + off8, (uint32_t)n - off8,
			    d->pd_trans_id, d->pd_flags);
			break;
		case VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT:
			nvh_gpa(h, q, pkt, (uint32_t)n);
			break;
		case VMBUS_PACKET_TYPE_COMP:
			nvh_guest_comp(h, q, pkt, (uint32_t)n);
			break;
		default:
			h->bad_guest++;
			break;
		}
	}
}

void nvh_service(struct nvhost *h)
{
	if (h->in_service)
		return;
	h->in_service = true;
	nvh_flush(h);
	if (!h->stop)
		for (uint32_t q = 0; q < h->nq; q++)
			nvh_service_q(h, q);
	nvh_flush(h);
	h->in_service = false;
}

/* ---- port wrappers ---- */

static int nvh_hypercall(void *ctx, uint32_t vp, uint64_t control,
    const void *in, uint32_t in_len, void *out, uint32_t out_len,
    uint64_t *result)
{
	struct nvhost *h = g_nvh;
	int r = h->orig_hypercall(ctx, vp, control, in, in_len, out, out_len,
	    result);

	if ((control & 0xFFFF) == HV_CALL_SIGNAL_EVENT && in_len >= 8) {
		const struct hv_signal_event_input *se = in;

		for (uint32_t i = 0; i < h->nq; i++)
			if (h->q[i]->c_connid == se->se_connection_id) {
				nvh_service(h);
				break;
			}
	}
	return r;
}

static uint64_t nvh_now(void *ctx)
{
	struct nvhost *h = g_nvh;
	uint64_t t = h->orig_now(ctx);

	/* A host thread: queued packets go out when the ring has room. */
	if (h->npend && !h->in_service) {
		h->in_service = true;
		nvh_flush(h);
		h->in_service = false;
	}
	return t;
}

void nvh_init(struct nvhost *h, struct fakeport *fp, uint32_t relid)
{
	static const uint8_t mac[6] = { 0x00, 0x15, 0x5d, 0x01, 0x02, 0x03 };

	memset(h, 0, sizeof(*h));
	h->fp = fp;
	g_nvh = h;
	for (int i = 0; i < NVSP_GUEST_VERSION_COUNT; i++) {
		static const uint32_t vs[] = NVSP_GUEST_VERSION_LIST;

		h->accept[i] = vs[i];
	}
	memcpy(h->perm_mac, mac, 6);
	memcpy(h->cur_mac, mac, 6);
	h->cur_mac[5] = 0x04;
	h->media_state = NDIS_MEDIA_STATE_CONNECTED;
	h->link_speed = 100000000;	/* 10 Gbit/s in 100 bit/s units */
	h->rss_entries = 128;
	h->next_tid = 0x10000;
	h->next_relid = relid + 1;
	h->q[0] = fh_add_chan(fp, relid, &nvh_class, &nvh_inst, 0, false);
	h->nq = 1;
	h->orig_hypercall = fp->fp_plat.hypercall;
	h->orig_now = fp->fp_plat.now_ns;
	fp->fp_plat.hypercall = nvh_hypercall;
	fp->fp_plat.now_ns = nvh_now;
}

void nvh_clear(struct nvhost *h)
{
	for (uint32_t i = 0; i < h->nframes; i++)
		free(h->frames[i].f_data);
	h->nframes = 0;
	h->ncomps = 0;
}

void nvh_fini(struct nvhost *h)
{
	nvh_clear(h);
	for (uint32_t i = 0; i < h->npend; i++)
		free(h->pend[i].pkt);
	h->npend = 0;
	if (g_nvh == h)
		g_nvh = NULL;
}

const struct nvh_comp *nvh_comp_for(struct nvhost *h, uint64_t tid)
{
	for (uint32_t i = 0; i < h->ncomps; i++)
		if (h->comps[i].c_tid == tid)
			return &h->comps[i];
	return NULL;
}
