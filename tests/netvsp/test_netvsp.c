/*
 * tests/netvsp/test_netvsp.c - the NetVSP behind the real VMBus server,
 * on the hostsrv fake partition. The test plays a NetVSC guest: it lays
 * out rings, GPADLs, receive and send buffers in the fake guest RAM and
 * speaks NVSP/RNDIS written from spec/vmbus-devices.md (not from the
 * host's code). The NIC's back end is a switch whose other port is the
 * test's "peer", so frames can be watched and injected.
 *
 * Hostile-guest cases check that every abuse is logged and counted, that
 * sends still get their completion, that the host keeps serving, and
 * (under the Asan flavour) that nothing is read or written out of bounds.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ring.h"
#include "fake_partition.h"
#include "host/fault.h"
#include "host/log.h"
#include "host/loop.h"
#include "host/net/net.h"
#include "host/net/offload.h"
#include "host/vmbus_server.h"
#include "host/vsp/netvsp.h"
#include "hv/guid.h"
#include "hv/nvsp.h"
#include "hv/rndis.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/errno.h"

#define RAM_BYTES	(64u << 20)
#define RING_PAGES	16u		/* each direction */
#define RXBUF_PAGES	512u		/* 2 MiB */
#define TXBUF_PAGES	64u		/* 42 sections of 6144 */
#define MAXQ		8u
#define MAXPEND		2048u
#define PEER_MAX	128u

static unsigned log_lines;
static void log_sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	(void)level;
	log_lines++;
	if (getenv("NETVSP_VERBOSE"))
		fprintf(stderr, "%s\n", line);
}

/* ---- the peer on the switch ------------------------------------------------ */

struct pframe {
	uint32_t len;
	uint16_t tci, flags;
	uint8_t data[HVS_NET_MAX_FRAME];
};

struct peer {
	unsigned n;
	struct pframe *f;		/* PEER_MAX */
};

static int peer_rx(void *arg, const struct hvs_net_frame *f)
{
	struct peer *p = arg;
	if (p->n < PEER_MAX) {
		struct pframe *d = &p->f[p->n];
		d->len = f->nf_len;
		d->tci = f->nf_tci;
		d->flags = f->nf_flags;
		memcpy(d->data, f->nf_data, f->nf_len);
	}
	p->n++;
	return 0;
}

static const struct hvs_net_nic_ops peer_ops = { .no_rx = peer_rx };

/* ---- the guest ----------------------------------------------------------------- */

struct gq {
	bool open;
	uint32_t relid, connid, gpadl;
	struct vmbus_ring tx, rx;
};

/* A host packet as the guest read it. */
struct hpkt {
	unsigned q;
	uint16_t type, flags;
	uint64_t tid;
	uint32_t len;
	uint8_t raw[1024];
	const uint8_t *data;		/* payload at offset8 * 8 (set by take) */
	uint32_t doff;			/* its offset in raw */
	uint32_t datalen;
	uint16_t pageset;		/* transfer-page packets */
	uint32_t nranges;
	uint32_t rlen[8], roff[8];
};

struct t {
	struct hvs_partition *p;
	struct hvs_vmbus *s;
	const struct hvs_partition_ops *ops;
	struct hvs_loop *loop;
	struct hvs_netvsp *nic;
	struct hvs_net_ep *peer_ep;
	struct peer peer;
	uint32_t relid;			/* primary */
	uint32_t connid0;		/* its signal connection */
	uint32_t sub_relid[MAXQ], sub_connid[MAXQ];
	unsigned nsub_offers;
	struct gq q[MAXQ];
	uint32_t next_handle;
	uint32_t ring_pages;		/* 0 = RING_PAGES */
	uint64_t tid;
	uint32_t rid;
	struct hpkt *pend;		/* MAXPEND packets read, not taken */
	unsigned npend;
	/* buffers */
	uint64_t rx_gpa;
	uint32_t rx_handle, slot_size, nslots;
	uint64_t tx_gpa;
	uint32_t tx_handle, sect;
	uint8_t mac[6];
};

static unsigned t_count;
static struct hvs_loop *shared_loop;

static uint16_t post(struct t *t, uint32_t connid, const void *m, uint32_t len)
{
	return t->ops->post_message(t->s, 0, connid, VMBUS_MESSAGE_TYPE, m, len);
}

static void send_msg(struct t *t, const void *m, uint32_t len)
{
	assert_int_equal(post(t, VMBUS_MESSAGE_CONNECTION_ID, m, len),
			 HV_STATUS_SUCCESS);
}

static const struct fp_msg *msg_expect(struct t *t, uint32_t type)
{
	const struct fp_msg *m = fp_pop(t->p);
	assert_non_null(m);
	assert_int_equal(hv_get_le32(m->buf), type);
	return m;
}

/* Offers delivered since the last call: remember subchannel offers. */
static void note_offers(struct t *t)
{
	const struct fp_msg *m;
	while ((m = fp_pop(t->p)) != NULL) {
		if (hv_get_le32(m->buf) != VMBUS_CHANMSG_OFFERCHANNEL)
			continue;
		uint16_t sub = hv_get_le16(m->buf + 180);
		if (sub > 0 && sub < MAXQ) {
			t->sub_relid[sub] = hv_get_le32(m->buf + 184);
			t->sub_connid[sub] = hv_get_le32(m->buf + 192);
			t->nsub_offers++;
		}
	}
}

static uint32_t gpadl_make(struct t *t, uint32_t relid, uint64_t gpa,
			   uint32_t npages)
{
	uint32_t handle = t->next_handle++;
	uint32_t slen = 8 + 8 * npages;
	uint8_t *stream = malloc(slen);
	uint8_t m[240];

	assert_non_null(stream);
	hv_put_le32(stream, npages * 4096u);
	hv_put_le32(stream + 4, 0);
	for (uint32_t i = 0; i < npages; i++)
		hv_put_le64(stream + 8 + 8 * i, (gpa >> 12) + i);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_HEADER);
	hv_put_le32(m + 8, relid);
	hv_put_le32(m + 12, handle);
	hv_put_le16(m + 16, (uint16_t)slen);
	hv_put_le16(m + 18, 1);
	uint32_t first = slen < 220 ? slen : 220;
	memcpy(m + 20, stream, first);
	send_msg(t, m, 20 + first);
	for (uint32_t pos = first; pos < slen;) {
		uint32_t chunk = slen - pos < 224 ? slen - pos : 224;
		memset(m, 0, sizeof(m));
		hv_put_le32(m, VMBUS_CHANMSG_GPADL_BODY);
		hv_put_le32(m + 12, handle);
		memcpy(m + 16, stream + pos, chunk);
		send_msg(t, m, 16 + chunk);
		pos += chunk;
	}
	free(stream);
	const struct fp_msg *r = msg_expect(t, VMBUS_CHANMSG_GPADL_CREATED);
	assert_int_equal(hv_get_le32(r->buf + 12), handle);
	assert_int_equal(hv_get_le32(r->buf + 16), 0);
	return handle;
}

/* Open channel q (0 = primary) with fresh rings. Returns the open status. */
static uint32_t chan_open(struct t *t, unsigned qi)
{
	struct gq *g = &t->q[qi];
	struct vmbus_chanmsg_openchannel op;
	uint32_t relid = qi == 0 ? t->relid : t->sub_relid[qi];

	memset(g, 0, sizeof(*g));
	g->relid = relid;
	g->connid = qi == 0 ? t->connid0 : t->sub_connid[qi];
	uint32_t rp = t->ring_pages ? t->ring_pages : RING_PAGES;
	uint64_t gpa = fp_alloc(t->p, 2 * rp);
	uint8_t *base = fp_ptr(t->p, gpa);
	assert_int_equal(vmbus_ring_init(&g->tx, base, rp * 4096u), 0);
	assert_int_equal(vmbus_ring_init(&g->rx, base + rp * 4096u,
					 rp * 4096u), 0);
	vmbus_ring_reset_shared(&g->tx, true);
	vmbus_ring_reset_shared(&g->rx, false);
	g->gpadl = gpadl_make(t, relid, gpa, 2 * rp);
	memset(&op, 0, sizeof(op));
	op.op_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_OPENCHANNEL);
	op.op_child_relid = hv_cpu_to_le32(relid);
	op.op_openid = hv_cpu_to_le32(relid);
	op.op_gpadl = hv_cpu_to_le32(g->gpadl);
	op.op_target_vp = hv_cpu_to_le32(0);
	op.op_downstream_pgoff = hv_cpu_to_le32(rp);
	send_msg(t, &op, VMBUS_CHANMSG_OPENCHANNEL_SIZE);
	const struct fp_msg *r = msg_expect(t, VMBUS_CHANMSG_OPENCHANNEL_RESULT);
	uint32_t st = hv_get_le32(r->buf + 16);
	g->open = st == 0;
	return st;
}

static void chan_close(struct t *t, unsigned qi)
{
	uint8_t m[12] = { 0 };
	hv_put_le32(m, VMBUS_CHANMSG_CLOSECHANNEL);
	hv_put_le32(m + 8, t->q[qi].relid);
	send_msg(t, m, sizeof(m));
	t->q[qi].open = false;
}

static void g_signal(struct t *t, unsigned qi)
{
	assert_int_equal(t->ops->signal_event(t->s, t->q[qi].connid, 0),
			 HV_STATUS_SUCCESS);
}

/* Write one packet (descriptor built here unless raw) into q's ring. */
static void g_write(struct t *t, unsigned qi, const void *pkt, uint32_t len)
{
	static const uint8_t tr[8];
	struct vmbus_iov iov[2] = { { pkt, len }, { tr, 0 } };
	assert_int_equal(len % 8, 0);
	assert_int_equal(vmbus_ring_write(&t->q[qi].tx, iov, 1, NULL), 0);
	g_signal(t, qi);
}

static void g_send(struct t *t, unsigned qi, uint16_t type, uint16_t flags,
		   uint64_t tid, const void *data, uint32_t len)
{
	uint8_t pkt[2048];
	uint32_t plen = 16 + ((len + 7) & ~7u);
	assert_true(plen <= sizeof(pkt));
	memset(pkt, 0, plen);
	hv_put_le16(pkt, type);
	hv_put_le16(pkt + 2, 2);
	hv_put_le16(pkt + 4, (uint16_t)(plen / 8));
	hv_put_le16(pkt + 6, flags);
	hv_put_le64(pkt + 8, tid);
	if (len > 0)
		memcpy(pkt + 16, data, len);
	g_write(t, qi, pkt, plen);
}

/* GPA-direct packet: one range per (gpa, len) pair, then the NVSP msg. */
static void g_send_gpa(struct t *t, unsigned qi, uint64_t tid,
		       const void *nvsp, uint32_t nlen, const uint64_t *gpas,
		       const uint32_t *lens, unsigned n)
{
	uint8_t pkt[4096];
	uint32_t off = 24;
	memset(pkt, 0, sizeof(pkt));
	for (unsigned i = 0; i < n; i++) {
		uint32_t bo = (uint32_t)(gpas[i] & 4095u);
		uint32_t np = (bo + lens[i] + 4095u) / 4096u;
		hv_put_le32(pkt + off, lens[i]);
		hv_put_le32(pkt + off + 4, bo);
		for (uint32_t k = 0; k < np; k++)
			hv_put_le64(pkt + off + 8 + 8 * k, (gpas[i] >> 12) + k);
		off += 8 + 8 * np;
	}
	assert_true(off + nlen + 8 <= sizeof(pkt));
	memcpy(pkt + off, nvsp, nlen);
	uint32_t plen = off + ((nlen + 7) & ~7u);
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT);
	hv_put_le16(pkt + 2, (uint16_t)(off / 8));
	hv_put_le16(pkt + 4, (uint16_t)(plen / 8));
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, tid);
	hv_put_le32(pkt + 20, n);
	g_write(t, qi, pkt, plen);
}

/* Read every host packet of every open queue into the pending list. */
static void collect(struct t *t)
{
	for (unsigned qi = 0; qi < MAXQ; qi++) {
		struct gq *g = &t->q[qi];
		if (!g->open)
			continue;
		bool read = false;
		while (vmbus_ring_bytes_to_read(&g->rx) > 0) {
			struct vmbus_packet_desc d;
			assert_true(t->npend < MAXPEND);
			struct hpkt *h = &t->pend[t->npend];
			assert_int_equal(vmbus_ring_peek(&g->rx, &d, sizeof(d)), 0);
			uint32_t plen = hv_le16(d.pd_len8) * 8u;
			assert_true(plen <= sizeof(h->raw));
			assert_int_equal(vmbus_ring_read(&g->rx, h->raw, plen, 0), 0);
			read = true;
			h->q = qi;
			h->len = plen;
			h->type = hv_le16(d.pd_type);
			h->flags = hv_le16(d.pd_flags);
			h->tid = hv_le64(d.pd_trans_id);
			uint32_t off = hv_le16(d.pd_offset8) * 8u;
			assert_true(off <= plen);
			h->doff = off;
			h->datalen = plen - off;
			h->nranges = 0;
			if (h->type == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES) {
				h->pageset = hv_get_le16(h->raw + 16);
				h->nranges = hv_get_le32(h->raw + 20);
				assert_true(h->nranges <= 8);
				for (uint32_t i = 0; i < h->nranges; i++) {
					h->rlen[i] = hv_get_le32(h->raw + 24 + 8 * i);
					h->roff[i] = hv_get_le32(h->raw + 28 + 8 * i);
				}
			}
			t->npend++;
		}
		if (read && vmbus_ring_read_done(&g->rx))
			g_signal(t, qi);
	}
}

static bool take(struct t *t, struct hpkt *out, int type, uint64_t tid,
		 bool any_tid)
{
	collect(t);
	for (unsigned i = 0; i < t->npend; i++) {
		struct hpkt *h = &t->pend[i];
		if ((type < 0 || h->type == type) && (any_tid || h->tid == tid)) {
			*out = *h;
			out->data = out->raw + h->doff;
			memmove(&t->pend[i], &t->pend[i + 1],
				(t->npend - i - 1) * sizeof(*h));
			t->npend--;
			return true;
		}
	}
	return false;
}

static void take_comp(struct t *t, uint64_t tid, struct hpkt *out)
{
	if (!take(t, out, VMBUS_PACKET_TYPE_COMP, tid, false))
		fail_msg("no completion for transaction 0x%llx",
			 (unsigned long long)tid);
}

static bool no_comp(struct t *t, uint64_t tid)
{
	struct hpkt h;
	return !take(t, &h, VMBUS_PACKET_TYPE_COMP, tid, false);
}

/* NVSP request (40 bytes, as L sends) with a completion wanted. */
static uint64_t nvsp_req(struct t *t, unsigned qi, const void *msg,
			 uint32_t len)
{
	uint64_t tid = ++t->tid;
	g_send(t, qi, VMBUS_PACKET_TYPE_DATA_INBAND,
	       VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, tid, msg, len);
	return tid;
}

static uint32_t comp_status(struct t *t, uint64_t tid, uint32_t type,
			    uint32_t *len)
{
	struct hpkt h;
	take_comp(t, tid, &h);
	assert_true(h.datalen >= 8);
	assert_int_equal(hv_get_le32(h.data), type);
	if (len != NULL)
		*len = h.datalen;
	return hv_get_le32(h.data + 4);
}

static uint64_t nvsp_guest_errors(struct t *t)
{
	struct hvs_netvsp_stats st;
	hvs_netvsp_get_stats(t->nic, &st);
	return st.ns_guest_errors;
}

static struct hvs_netvsp_stats stats(struct t *t)
{
	struct hvs_netvsp_stats st;
	hvs_netvsp_get_stats(t->nic, &st);
	return st;
}

/* A VM with one NIC (spec after "switch=NAME,") and the peer port. */
static struct t *t_new_sw(const char *extra, const char *swname)
{
	struct t *t = calloc(1, sizeof(*t));
	char name[32], sw[32], spec[256], err[256];
	struct hvs_net_spec ns;

	assert_non_null(t);
	t->pend = calloc(MAXPEND, sizeof(*t->pend));
	t->peer.f = calloc(PEER_MAX, sizeof(*t->peer.f));
	assert_non_null(t->pend);
	assert_non_null(t->peer.f);
	snprintf(name, sizeof(name), "vm%u", ++t_count);
	snprintf(sw, sizeof(sw), "%s", swname != NULL ? swname : "");
	if (swname == NULL)
		snprintf(sw, sizeof(sw), "sw%u", t_count);
	t->p = fp_create(name, RAM_BYTES, 2);
	struct hvs_vmbus_config cfg = { .vm_name = name,
					.max_version = HVS_VMBUS_VERSION_IRON };
	t->s = hvs_vmbus_create(&cfg);
	assert_non_null(t->s);
	t->ops = hvs_vmbus_partition_ops();
	if (shared_loop == NULL)
		shared_loop = hvs_loop_create();
	t->loop = shared_loop; /* VMs of one host share a loop */
	assert_non_null(t->loop);
	snprintf(spec, sizeof(spec), "switch=%s%s%s", sw, extra ? "," : "",
		 extra ? extra : "");
	assert_int_equal(hvs_net_parse(spec, &ns, err, sizeof(err)), 0);
	int relid = hvs_netvsp_add(t->s, t->loop, &ns, 0, &t->nic, err,
				   sizeof(err));
	if (relid <= 0)
		fail_msg("hvs_netvsp_add: %s", err);
	t->relid = (uint32_t)relid;
	hvs_netvsp_get_mac(t->nic, t->mac);
	snprintf(spec, sizeof(spec), "switch=%s", sw);
	assert_int_equal(hvs_net_parse(spec, &ns, err, sizeof(err)), 0);
	assert_int_equal(hvs_net_open(t->loop, &ns, "peer", &peer_ops, &t->peer,
				      &t->peer_ep, err, sizeof(err)), 0);
	hvs_vmbus_attach(t->s, t->p);
	t->next_handle = 0x100;

	/* connect (5.3) and take the offer */
	struct vmbus_chanmsg_initiate_contact ic;
	memset(&ic, 0, sizeof(ic));
	ic.ic_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_INITIATE_CONTACT);
	ic.ic_vmbus_version_requested = hv_cpu_to_le32(VMBUS_VERSION_IRON);
	ic.ic_msg_sint = VMBUS_MESSAGE_SINT;
	assert_int_equal(post(t, VMBUS_MESSAGE_CONNECTION_ID_4, &ic,
			      VMBUS_CHANMSG_INITIATE_CONTACT_SIZE), 0);
	const struct fp_msg *m = msg_expect(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 1);
	uint8_t ro[8] = { 0 };
	hv_put_le32(ro, VMBUS_CHANMSG_REQUESTOFFERS);
	send_msg(t, ro, sizeof(ro));
	m = msg_expect(t, VMBUS_CHANMSG_OFFERCHANNEL);
	static const struct hv_guid netvsc = HV_GUID_NETVSC_INIT;
	assert_memory_equal(m->buf + 8, &netvsc, 16);
	assert_int_equal(hv_get_le32(m->buf + 184), t->relid);
	t->connid0 = hv_get_le32(m->buf + 192);
	msg_expect(t, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	return t;
}

static struct t *t_new(const char *extra)
{
	return t_new_sw(extra, NULL);
}

static void t_free(struct t *t)
{
	hvs_net_close(t->peer_ep);
	hvs_vmbus_destroy(t->s);
	fp_destroy(t->p);
	free(t->pend);
	free(t->peer.f);
	free(t);
}

/* ---- NVSP bring-up ---------------------------------------------------------------- */

static uint32_t nvsp_init(struct t *t, uint32_t ver, uint32_t *clen)
{
	uint8_t m[40] = { 0 };
	hv_put_le32(m, NVSP_MSG_TYPE_INIT);
	hv_put_le32(m + 4, ver);
	hv_put_le32(m + 8, ver);
	uint64_t tid = nvsp_req(t, 0, m, sizeof(m));
	struct hpkt h;
	take_comp(t, tid, &h);
	assert_true(h.datalen >= 16);
	assert_int_equal(hv_get_le32(h.data), NVSP_MSG_TYPE_INIT_COMPLETE);
	if (clen != NULL)
		*clen = h.datalen;
	uint32_t st = hv_get_le32(h.data + 12);
	if (st == NVSP_STAT_SUCCESS)
		assert_int_equal(hv_get_le32(h.data + 4),
				 ver == NVSP_PROTOCOL_VERSION_1 ? 2u : 0xFFFFFFFFu);
	return st == NVSP_STAT_SUCCESS ? 0 : 1;
}

/* INIT 0 means "already negotiated". Sets up both buffers. */
static void bringup(struct t *t, uint32_t ver, uint32_t mtu_frame)
{
	uint8_t m[40];
	uint32_t clen, st;

	if (!t->q[0].open)
		assert_int_equal(chan_open(t, 0), 0);
	if (ver != 0) {
		assert_int_equal(nvsp_init(t, ver, &clen), 0);
		assert_int_equal(clen, ver >= NVSP_PROTOCOL_VERSION_61 ? 40 : 32);
	}
	if (ver >= NVSP_PROTOCOL_VERSION_2) {
		memset(m, 0, sizeof(m));
		hv_put_le32(m, NVSP_MSG2_TYPE_SEND_NDIS_CONFIG);
		hv_put_le32(m + 4, mtu_frame);
		hv_put_le64(m + 12, NVSP_NDIS_CONFIG_CAP_IEEE8021Q);
		g_send(t, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, ++t->tid, m, 40);
	}
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_NDIS_VER);
	hv_put_le32(m + 4, 6);
	hv_put_le32(m + 8, ver >= NVSP_PROTOCOL_VERSION_5 ? 30 : 1);
	g_send(t, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, ++t->tid, m, 40);

	t->rx_gpa = fp_alloc(t->p, RXBUF_PAGES);
	t->rx_handle = gpadl_make(t, t->relid, t->rx_gpa, RXBUF_PAGES);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RECV_BUF);
	hv_put_le32(m + 4, t->rx_handle);
	hv_put_le16(m + 8, NVSP_RECV_BUF_ID_L);
	uint64_t tid = nvsp_req(t, 0, m, 40);
	struct hpkt h;
	take_comp(t, tid, &h);
	assert_true(h.datalen >= 28);
	assert_int_equal(hv_get_le32(h.data), NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE);
	assert_int_equal(hv_get_le32(h.data + 4), NVSP_STAT_SUCCESS);
	assert_int_equal(hv_get_le32(h.data + 8), 1);
	assert_int_equal(hv_get_le32(h.data + 12), 0);
	t->slot_size = hv_get_le32(h.data + 16);
	t->nslots = hv_get_le32(h.data + 20);
	assert_true(t->slot_size >= NVSP_RECV_SUB_ALLOC_MIN);
	assert_true((uint64_t)t->slot_size * t->nslots <= RXBUF_PAGES * 4096ull);
	assert_int_equal(hv_get_le32(h.data + 24), t->slot_size * t->nslots);

	t->tx_gpa = fp_alloc(t->p, TXBUF_PAGES);
	t->tx_handle = gpadl_make(t, t->relid, t->tx_gpa, TXBUF_PAGES);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_SEND_BUF);
	hv_put_le32(m + 4, t->tx_handle);
	tid = nvsp_req(t, 0, m, 40);
	take_comp(t, tid, &h);
	assert_int_equal(hv_get_le32(h.data), NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE);
	assert_int_equal(hv_get_le32(h.data + 4), NVSP_STAT_SUCCESS);
	t->sect = hv_get_le32(h.data + 8);
	assert_true(t->sect > 0 && t->sect % 4 == 0);
	(void)st;
}

/* ---- RNDIS ------------------------------------------------------------------------- */

/* Send msg through send section `sect`; returns the 108 status. */
static uint32_t send_section(struct t *t, unsigned qi, uint32_t sect,
			     const void *msg, uint32_t len, uint32_t ctype,
			     uint32_t size_override)
{
	uint8_t m[40] = { 0 };
	memcpy(fp_ptr(t->p, t->tx_gpa + (uint64_t)sect * t->sect), msg, len);
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(m + 4, ctype);
	hv_put_le32(m + 8, sect);
	hv_put_le32(m + 12, size_override ? size_override : len);
	uint64_t tid = nvsp_req(t, qi, m, 40);
	return comp_status(t, tid, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NULL);
}

/* The guest completes a transfer-page packet. */
static void g_complete(struct t *t, const struct hpkt *h, uint32_t status)
{
	uint8_t c[8];
	hv_put_le32(c, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
	hv_put_le32(c + 4, status);
	g_send(t, h->q, VMBUS_PACKET_TYPE_COMP, 0, h->tid, c, 8);
}

/* Next RNDIS message the host put in the receive buffer (completing it). */
static uint32_t rx_msg(struct t *t, uint8_t *out, uint32_t cap, unsigned *q,
		       uint32_t *ctype, bool complete)
{
	struct hpkt h;
	if (!take(t, &h, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 0, true))
		return 0;
	assert_int_equal(h.flags, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	assert_int_equal(h.pageset, NVSP_RECV_BUF_ID_L);
	assert_int_equal(h.nranges, 1);
	assert_int_equal(hv_get_le32(h.data), NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	assert_int_equal(hv_get_le32(h.data + 8), NVSP_SEND_BUF_SECTION_NONE);
	assert_true(h.roff[0] % t->slot_size == 0);
	assert_true(h.rlen[0] <= t->slot_size);
	assert_true((uint64_t)h.roff[0] + h.rlen[0] <= (uint64_t)t->slot_size * t->nslots);
	assert_true(h.rlen[0] <= cap);
	memcpy(out, fp_ptr(t->p, t->rx_gpa + h.roff[0]), h.rlen[0]);
	assert_int_equal(hv_get_le32(out + 4), h.rlen[0]);
	if (q != NULL)
		*q = h.q;
	if (ctype != NULL)
		*ctype = hv_get_le32(h.data + 4);
	if (complete)
		g_complete(t, &h, NVSP_STAT_SUCCESS);
	return h.rlen[0];
}

/* A control request and its reply. */
static uint32_t rndis_call(struct t *t, const void *msg, uint32_t len,
			   uint8_t *reply, uint32_t cap)
{
	uint32_t ctype;
	assert_int_equal(send_section(t, 0, 0, msg, len,
				      NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 0),
			 NVSP_STAT_SUCCESS);
	uint32_t n = rx_msg(t, reply, cap, NULL, &ctype, true);
	assert_true(n >= 16);
	assert_int_equal(ctype, NVSP_RNDIS_CHANNEL_TYPE_CONTROL);
	return n;
}

static void rndis_init(struct t *t)
{
	uint8_t m[24] = { 0 }, r[64];
	hv_put_le32(m, REMOTE_NDIS_INITIALIZE_MSG);
	hv_put_le32(m + 4, 24);
	hv_put_le32(m + 8, ++t->rid);
	hv_put_le32(m + 12, 1);
	hv_put_le32(m + 16, 0);
	hv_put_le32(m + 20, 0x4000);
	uint32_t n = rndis_call(t, m, sizeof(m), r, sizeof(r));
	assert_int_equal(n, 52);
	assert_int_equal(hv_get_le32(r), REMOTE_NDIS_INITIALIZE_CMPLT);
	assert_int_equal(hv_get_le32(r + 8), t->rid);
	assert_int_equal(hv_get_le32(r + 12), RNDIS_STATUS_SUCCESS);
	assert_int_equal(hv_get_le32(r + 16), 1);
	assert_int_equal(hv_get_le32(r + 24), RNDIS_DF_CONNECTIONLESS);
	assert_true(hv_get_le32(r + 32) >= 1);
	assert_true(hv_get_le32(r + 40) >= 2);
}

static uint32_t rndis_query(struct t *t, uint32_t oid, const void *in,
			    uint32_t ilen, uint8_t *out, uint32_t *olen)
{
	uint8_t m[256] = { 0 }, r[1100];
	assert_true(ilen <= sizeof(m) - 28);
	hv_put_le32(m, REMOTE_NDIS_QUERY_MSG);
	hv_put_le32(m + 4, 28 + ilen);
	hv_put_le32(m + 8, ++t->rid);
	hv_put_le32(m + 12, oid);
	hv_put_le32(m + 16, ilen);
	hv_put_le32(m + 20, ilen ? 20 : 0);
	if (ilen)
		memcpy(m + 28, in, ilen);
	uint32_t n = rndis_call(t, m, 28 + ilen, r, sizeof(r));
	assert_int_equal(hv_get_le32(r), REMOTE_NDIS_QUERY_CMPLT);
	assert_int_equal(hv_get_le32(r + 8), t->rid);
	uint32_t blen = hv_get_le32(r + 16), boff = hv_get_le32(r + 20);
	if (blen) {
		/* L's check: offset >= 16, data inside the message */
		assert_true(boff >= 16);
		assert_true(8 + boff + blen <= n);
		memcpy(out, r + 8 + boff, blen);
	}
	if (olen != NULL)
		*olen = blen;
	return hv_get_le32(r + 12);
}

static uint32_t query32(struct t *t, uint32_t oid)
{
	uint8_t out[1024];
	uint32_t olen;
	assert_int_equal(rndis_query(t, oid, NULL, 0, out, &olen),
			 RNDIS_STATUS_SUCCESS);
	assert_int_equal(olen, 4);
	return hv_get_le32(out);
}

static uint32_t rndis_set(struct t *t, uint32_t oid, const void *in,
			  uint32_t ilen)
{
	uint8_t m[1024] = { 0 }, r[64];
	assert_true(ilen <= sizeof(m) - 28);
	hv_put_le32(m, REMOTE_NDIS_SET_MSG);
	hv_put_le32(m + 4, 28 + ilen);
	hv_put_le32(m + 8, ++t->rid);
	hv_put_le32(m + 12, oid);
	hv_put_le32(m + 16, ilen);
	hv_put_le32(m + 20, 20);
	memcpy(m + 28, in, ilen);
	uint32_t n = rndis_call(t, m, 28 + ilen, r, sizeof(r));
	assert_int_equal(n, 16);
	assert_int_equal(hv_get_le32(r), REMOTE_NDIS_SET_CMPLT);
	assert_int_equal(hv_get_le32(r + 8), t->rid);
	return hv_get_le32(r + 12);
}

static void set_filter(struct t *t, uint32_t f)
{
	uint8_t b[4];
	hv_put_le32(b, f);
	assert_int_equal(rndis_set(t, OID_GEN_CURRENT_PACKET_FILTER, b, 4),
			 RNDIS_STATUS_SUCCESS);
}

/* Bring-up through RNDIS as L does, filter on. */
static void nic_up(struct t *t, uint32_t ver)
{
	bringup(t, ver, 1514);
	rndis_init(t);
	set_filter(t, NDIS_PACKET_FILTER_DEFAULT);
}

/* ---- frames ---------------------------------------------------------------------- */

static const uint8_t mac_peer[6] = { 0x02, 0x99, 0, 0, 0, 1 };
static const uint8_t mac_bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Ethernet + IPv4 + UDP (ports sp -> dp), payload of plen pattern bytes;
 * checksums 0 unless fill. */
static uint32_t udp_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src,
			  uint16_t sp, uint16_t dp, uint32_t plen, bool fill)
{
	memset(f, 0, 42);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, 0x0800);
	f[14] = 0x45;
	put16(f + 16, (uint16_t)(28 + plen));
	f[22] = 64;
	f[23] = HVS_IPPROTO_UDP;
	f[26] = 10; f[27] = 0; f[28] = 0; f[29] = 1;
	f[30] = 10; f[31] = 0; f[32] = 0; f[33] = 2;
	put16(f + 34, sp);
	put16(f + 36, dp);
	put16(f + 38, (uint16_t)(8 + plen));
	for (uint32_t i = 0; i < plen; i++)
		f[42 + i] = (uint8_t)(i * 31 + sp);
	uint32_t len = 42 + plen;
	if (fill)
		assert_int_equal(hvs_csum_offload(f, len, HVS_CSUM_IPV4 |
						  HVS_CSUM_IPHDR | HVS_CSUM_UDP,
						  34), 0);
	return len < 60 ? 60 : len;
}

/* RNDIS PACKET_MSG around frame with PPIs (type, u32 value) pairs. */
static uint32_t pkt_msg(uint8_t *m, const uint8_t *frame, uint32_t flen,
			const uint32_t *ppi, unsigned nppi)
{
	uint32_t plen = 16u * nppi;
	memset(m, 0, 44 + plen);
	hv_put_le32(m, REMOTE_NDIS_PACKET_MSG);
	hv_put_le32(m + 4, 44 + plen + flen);
	hv_put_le32(m + 8, 36 + plen);
	hv_put_le32(m + 12, flen);
	hv_put_le32(m + 28, nppi ? 36 : 0);
	hv_put_le32(m + 32, plen);
	for (unsigned i = 0; i < nppi; i++) {
		uint8_t *p = m + 44 + 16 * i;
		hv_put_le32(p, 16);
		hv_put_le32(p + 4, ppi[2 * i]);
		hv_put_le32(p + 8, 12);
		hv_put_le32(p + 12, ppi[2 * i + 1]);
	}
	memcpy(m + 44 + plen, frame, flen);
	return 44 + plen + flen;
}

/* Send an RNDIS stream through guest pages (GPA direct, no section). */
static uint32_t send_gpa(struct t *t, unsigned qi, const uint8_t *msg,
			 uint32_t len, uint32_t sect, uint32_t sect_len)
{
	uint32_t npages = (len + 4095u) / 4096u + 1;
	uint64_t gpa = fp_alloc(t->p, npages) + 100; /* not page aligned */
	uint64_t gpas[2];
	uint32_t lens[2];
	uint8_t m[40] = { 0 };
	memcpy(fp_ptr(t->p, gpa), msg, len);
	/* two ranges: the bytes split at an odd place */
	uint32_t cut = len > 3000 ? 2999 : len;
	gpas[0] = gpa;
	lens[0] = cut;
	gpas[1] = gpa + cut;
	lens[1] = len - cut;
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(m + 8, sect);
	hv_put_le32(m + 12, sect_len);
	uint64_t tid = ++t->tid;
	g_send_gpa(t, qi, tid, m, 40, gpas, lens, lens[1] ? 2 : 1);
	return comp_status(t, tid, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NULL);
}

/* A received data message: the frame and its PPIs. */
struct rxf {
	unsigned q;
	uint32_t flen;
	uint8_t frame[HVS_NET_MAX_FRAME];
	bool have_vlan, have_csum, have_hash, have_hinf;
	uint32_t vlan, csum, hash, hinf;
};

static bool rx_frame(struct t *t, struct rxf *x, bool complete)
{
	static uint8_t m[12000];
	uint32_t ctype;
	uint32_t n = rx_msg(t, m, sizeof(m), &x->q, &ctype, complete);
	if (n == 0)
		return false;
	assert_int_equal(ctype, NVSP_RNDIS_CHANNEL_TYPE_DATA);
	assert_int_equal(hv_get_le32(m), REMOTE_NDIS_PACKET_MSG);
	uint32_t doff = hv_get_le32(m + 8), dlen = hv_get_le32(m + 12);
	uint32_t poff = hv_get_le32(m + 28), plen = hv_get_le32(m + 32);
	assert_true(8 + doff >= 44 && 8 + doff + dlen <= n);
	memcpy(x->frame, m + 8 + doff, dlen);
	x->flen = dlen;
	x->have_vlan = x->have_csum = x->have_hash = x->have_hinf = false;
	if (plen) {
		assert_true(8 + poff >= 44 && 8 + poff + plen <= n);
		for (uint32_t p = 8 + poff; p < 8 + poff + plen;) {
			uint32_t sz = hv_get_le32(m + p), ty = hv_get_le32(m + p + 4);
			uint32_t off = hv_get_le32(m + p + 8);
			assert_true(sz >= 16 && off == 12);
			uint32_t v = hv_get_le32(m + p + off);
			if (ty == NDIS_PKTINFO_TYPE_VLAN) {
				x->have_vlan = true;
				x->vlan = v;
			} else if (ty == NDIS_PKTINFO_TYPE_CSUM) {
				x->have_csum = true;
				x->csum = v;
			} else if (ty == NDIS_PKTINFO_TYPE_HASHVAL) {
				x->have_hash = true;
				x->hash = v;
			} else if (ty == NDIS_PKTINFO_TYPE_HASHINF) {
				x->have_hinf = true;
				x->hinf = v;
			}
			p += sz;
		}
	}
	return true;
}

static void peer_send(struct t *t, const uint8_t *f, uint32_t len,
		      uint16_t tci, uint16_t flags)
{
	struct hvs_net_frame fr = { .nf_data = f, .nf_len = len, .nf_tci = tci,
				    .nf_flags = flags };
	assert_int_equal(hvs_net_send(t->peer_ep, &fr), 0);
}

static int setup(void **state)
{
	(void)state;
	hvs_log_set_sink(log_sink, NULL);
	if (getenv("NETVSP_VERBOSE"))
		hvs_log_set_level(HVS_LOG_DEBUG);
	hvs_fault_reset_all();
	return 0;
}

/* ---- bring-up, every version ---------------------------------------------------------- */

static const uint32_t versions[] = {
	NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_2,
	NVSP_PROTOCOL_VERSION_4, NVSP_PROTOCOL_VERSION_5,
	NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_61,
};

static void test_versions(void **state)
{
	(void)state;
	for (size_t vi = 0; vi < sizeof(versions) / 4; vi++) {
		uint32_t ver = versions[vi];
		struct t *t = t_new(NULL);
		uint8_t out[1024];
		uint32_t olen;

		assert_int_equal(chan_open(t, 0), 0);
		/* guests walk down from the newest: unknown ones refused */
		assert_int_equal(nvsp_init(t, 0x00070000, NULL), 1);
		assert_int_equal(nvsp_init(t, 0x00060002, NULL), 1);
		nic_up(t, ver);
		struct hvs_netvsp_stats st = stats(t);
		assert_int_equal(st.ns_nvsp_version, ver);
		assert_int_equal(st.ns_ndis_version,
				 ver >= NVSP_PROTOCOL_VERSION_5 ? 0x6001e : 0x60001);
		assert_int_equal(st.ns_frame_max, 1514);
		assert_int_equal(st.ns_rx_slots, t->nslots);
		assert_int_equal(st.ns_send_sections, TXBUF_PAGES * 4096u / t->sect);
		assert_true(st.ns_rndis_up);
		assert_int_equal(st.ns_packet_filter, NDIS_PACKET_FILTER_DEFAULT);

		assert_int_equal(rndis_query(t, OID_802_3_PERMANENT_ADDRESS, NULL,
					     0, out, &olen), 0);
		assert_int_equal(olen, 6);
		assert_memory_equal(out, t->mac, 6);
		assert_int_equal(t->mac[0], 0x02);
		uint8_t want[6];
		hvs_net_mac_derive(hvs_vmbus_name(t->s), 0, want);
		assert_memory_equal(t->mac, want, 6);
		assert_int_equal(query32(t, OID_GEN_MAXIMUM_FRAME_SIZE), 1500);
		assert_int_equal(query32(t, OID_GEN_MEDIA_CONNECT_STATUS),
				 NDIS_MEDIA_STATE_CONNECTED);
		assert_int_equal(query32(t, OID_GEN_LINK_SPEED), 100000000u);

		/* offload capabilities in the revision the version implies */
		uint8_t hdr[4] = { NDIS_OBJTYPE_OFFLOAD, 0, 0, 0 };
		hdr[1] = ver >= NVSP_PROTOCOL_VERSION_5 ? 3
			 : ver >= NVSP_PROTOCOL_VERSION_4 ? 2 : 1;
		hv_put_le16(hdr + 2, hdr[1] == 3 ? 156 : hdr[1] == 2 ? 144 : 112);
		assert_int_equal(rndis_query(t, OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES,
					     hdr, 4, out, &olen), 0);
		assert_int_equal(olen, hv_get_le16(hdr + 2));
		assert_int_equal(out[0], NDIS_OBJTYPE_OFFLOAD);
		assert_int_equal(out[1], hdr[1]);
		assert_int_equal(hv_get_le16(out + 2), olen);
		/* TCP4|TCP4OPT for L to enable TX checksums, LSOv2 802.3 */
		assert_true((hv_get_le32(out + 8) & 0x14) == 0x14);
		assert_true(hv_get_le32(out + 80) & NDIS_OFFLOAD_ENCAP_8023);
		assert_true(hv_get_le32(out + 84) >= 62780);
		assert_int_equal(hv_get_le32(out + 104), 5);

		assert_int_equal(rndis_query(t, OID_GEN_SUPPORTED_LIST, NULL, 0,
					     out, &olen), 0);
		bool found = false;
		for (uint32_t i = 0; i + 4 <= olen; i += 4)
			found |= hv_get_le32(out + i) == OID_802_3_PERMANENT_ADDRESS;
		assert_true(found);
		assert_int_equal(rndis_query(t, OID_GEN_FRIENDLY_NAME, NULL, 0,
					     out, &olen), 0);
		assert_int_equal(olen, 2 * 16);
		assert_int_equal(hv_get_le16(out), 'N');
		assert_int_equal(hv_get_le16(out + 30), 0);
		assert_int_equal(rndis_query(t, 0x00ABCDEF, NULL, 0, out, &olen),
				 RNDIS_STATUS_NOT_SUPPORTED);
		assert_int_equal(olen, 0);

		/* keepalive and reset */
		uint8_t m[12], r[64];
		hv_put_le32(m, REMOTE_NDIS_KEEPALIVE_MSG);
		hv_put_le32(m + 4, 12);
		hv_put_le32(m + 8, 0x4242);
		assert_int_equal(rndis_call(t, m, 12, r, sizeof(r)), 16);
		assert_int_equal(hv_get_le32(r), REMOTE_NDIS_KEEPALIVE_CMPLT);
		assert_int_equal(hv_get_le32(r + 8), 0x4242);
		assert_int_equal(hv_get_le32(r + 12), 0);
		hv_put_le32(m, REMOTE_NDIS_RESET_MSG);
		hv_put_le32(m + 8, 0);
		assert_int_equal(rndis_call(t, m, 12, r, sizeof(r)), 16);
		assert_int_equal(hv_get_le32(r), REMOTE_NDIS_RESET_CMPLT);
		assert_int_equal(hv_get_le32(r + 8), 0);

		/* a friendly guest leaves no error and no reserved byte set */
		st = stats(t);
		assert_int_equal(st.ns_guest_errors, 0);
		assert_int_equal(st.ns_rsvd_nonzero, 0);
		assert_int_equal(st.ns_rx_slots_free, t->nslots);
		t_free(t);
	}
}

/* ---- transmit ------------------------------------------------------------------------ */

static void test_tx(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[2000], m[4000];
	nic_up(t, NVSP_PROTOCOL_VERSION_61);

	/* every size, through a section or guest pages */
	unsigned sent = 0;
	for (uint32_t plen = 0; plen <= 1472; plen += 73) {
		uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, plen, true);
		uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
		uint32_t st;
		if ((plen / 73) % 2 == 0 && mlen <= t->sect)
			st = send_section(t, 0, 3, m, mlen, 0, 0);
		else
			st = send_gpa(t, 0, m, mlen, NVSP_SEND_BUF_SECTION_NONE, 0);
		assert_int_equal(st, NVSP_STAT_SUCCESS);
		sent++;
		assert_int_equal(t->peer.n, sent);
		struct pframe *pf = &t->peer.f[sent - 1];
		assert_int_equal(pf->len, flen);
		assert_memory_equal(pf->data, f, flen);
		assert_int_equal(pf->tci, 0);
	}
	/* the largest frame, 1514 */
	uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, 1472, true);
	assert_int_equal(flen, 1514);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	assert_int_equal(send_gpa(t, 0, m, mlen, NVSP_SEND_BUF_SECTION_NONE, 0), 0x1);
	assert_int_equal(t->peer.f[sent].len, 1514);
	sent++;

	/* header in a section, frame in pages (L's partial copy) */
	flen = udp_frame(f, mac_bc, t->mac, 5, 6, 1000, true);
	mlen = pkt_msg(m, f, flen, NULL, 0);
	memcpy(fp_ptr(t->p, t->tx_gpa + 7ull * t->sect), m, 44);
	assert_int_equal(send_gpa(t, 0, m + 44, mlen - 44, 7, 44),
			 NVSP_STAT_SUCCESS);
	sent++;
	assert_int_equal(t->peer.n, sent);
	assert_memory_equal(t->peer.f[sent - 1].data, f, flen);

	/* two messages batched in one section, the first padded to 8 */
	uint32_t f1 = udp_frame(f, mac_bc, t->mac, 7, 8, 21, true);
	uint32_t l1 = pkt_msg(m, f, f1, NULL, 0);
	uint32_t pad = (l1 + 7) & ~7u;
	memset(m + l1, 0, pad - l1);
	hv_put_le32(m + 4, pad);
	uint32_t f2 = udp_frame(f, mac_bc, t->mac, 9, 10, 100, true);
	uint32_t l2 = pkt_msg(m + pad, f, f2, NULL, 0);
	assert_int_equal(send_section(t, 0, 2, m, pad + l2, 0, 0),
			 NVSP_STAT_SUCCESS);
	sent += 2;
	assert_int_equal(t->peer.n, sent);
	assert_int_equal(t->peer.f[sent - 2].len, f1);
	assert_int_equal(get16(t->peer.f[sent - 2].data + 34), 7);
	assert_int_equal(t->peer.f[sent - 1].len, f2);
	assert_memory_equal(t->peer.f[sent - 1].data, f, f2);

	/* a frame larger than the negotiated size is dropped, still completed */
	uint64_t e0 = nvsp_guest_errors(t);
	memset(f, 0, sizeof(f));
	memcpy(f, mac_bc, 6);
	mlen = pkt_msg(m, f, 1515, NULL, 0);
	assert_int_equal(send_gpa(t, 0, m, mlen, NVSP_SEND_BUF_SECTION_NONE, 0),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	assert_int_equal(t->peer.n, sent);
	assert_int_equal(nvsp_guest_errors(t), e0 + 1);

	struct hvs_netvsp_stats st = stats(t);
	assert_int_equal(st.ns_tx_frames, sent);
	assert_true(st.ns_tx_completions >= sent);
	assert_int_equal(st.ns_tx_dropped, 1);

	/* the control socket's view */
	char js[2048], want[64];
	int jl = hvs_netvsp_describe_json(t->nic, js, sizeof(js));
	assert_true(jl > 0 && (size_t)jl == strlen(js));
	assert_true(js[0] == '{' && js[jl - 1] == '}');
	snprintf(want, sizeof(want), "\"frames\":%u", sent);
	assert_non_null(strstr(js, want));
	assert_non_null(strstr(js, "\"backend\":\"switch\""));
	assert_int_equal(hvs_netvsp_describe_json(t->nic, js, 40), -ENOBUFS);
	assert_int_equal(js[0], 0);
	t_free(t);
}

static void test_jumbo(void **state)
{
	(void)state;
	struct t *t = t_new("mtu=9000");
	static uint8_t f[9100], m[9300];
	struct rxf *x = calloc(1, sizeof(*x));

	bringup(t, NVSP_PROTOCOL_VERSION_61, 9014);
	rndis_init(t);
	set_filter(t, NDIS_PACKET_FILTER_DEFAULT);
	assert_int_equal(query32(t, OID_GEN_MAXIMUM_FRAME_SIZE), 9000);
	assert_true(t->slot_size >= 9014);
	uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, 9014 - 42, true);
	assert_int_equal(flen, 9014);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	assert_int_equal(send_gpa(t, 0, m, mlen, NVSP_SEND_BUF_SECTION_NONE, 0),
			 NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.n, 1);
	assert_int_equal(t->peer.f[0].len, 9014);
	assert_memory_equal(t->peer.f[0].data, f, 9014);
	/* and back */
	flen = udp_frame(f, t->mac, mac_peer, 3, 4, 9014 - 42, true);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	assert_int_equal(x->flen, 9014);
	assert_memory_equal(x->frame, f, 9014);
	/* a guest asking for more than the host allows gets the host's max */
	struct t *t2 = t_new("mtu=4000");
	bringup(t2, NVSP_PROTOCOL_VERSION_5, 9014);
	rndis_init(t2);
	assert_int_equal(query32(t2, OID_GEN_MAXIMUM_FRAME_SIZE), 4000);
	t_free(t2);
	free(x);
	t_free(t);
}

struct lso_rec {
	unsigned n;
};

static void test_tx_offload(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[30000], m[31000];
	nic_up(t, NVSP_PROTOCOL_VERSION_61);

	/* checksum offload: the peer gets a frame whose checksums verify */
	uint32_t flen = udp_frame(f, mac_bc, t->mac, 100, 200, 300, false);
	uint32_t ppi[2] = { NDIS_PKTINFO_TYPE_CSUM,
			    NDIS_TXCSUM_INFO_IPV4 | NDIS_TXCSUM_INFO_UDPCS |
				    NDIS_TXCSUM_INFO_IPCS | NDIS_TXCSUM_INFO_THOFF(34) };
	uint32_t mlen = pkt_msg(m, f, flen, ppi, 1);
	assert_int_equal(send_section(t, 0, 1, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.n, 1);
	struct pframe *pf = &t->peer.f[0];
	assert_int_equal(hvs_csum_verify(pf->data, pf->len),
			 HVS_CSUM_IPHDR | HVS_CSUM_UDP);
	assert_int_equal(pf->flags, HVS_NF_CSUM_OK);
	assert_memory_equal(pf->data + 42, f + 42, 300);

	/* LSO: one 20000-byte TCP send becomes MSS-sized frames */
	const uint32_t payload = 20000, mss = 1460;
	memset(f, 0, 54);
	memcpy(f, mac_bc, 6);
	memcpy(f + 6, t->mac, 6);
	put16(f + 12, 0x0800);
	f[14] = 0x45;
	f[22] = 64;
	f[23] = HVS_IPPROTO_TCP;
	f[26] = 10; f[29] = 1; f[30] = 10; f[33] = 2;
	put16(f + 34, 5555);
	put16(f + 36, 80);
	f[46] = 0x50;
	f[47] = 0x18;
	for (uint32_t i = 0; i < payload; i++)
		f[54 + i] = (uint8_t)(i * 3);
	ppi[0] = NDIS_PKTINFO_TYPE_LSO;
	ppi[1] = NDIS_LSO2_INFO_MAKEIPV4(34, mss);
	mlen = pkt_msg(m, f, 54 + payload, ppi, 1);
	assert_int_equal(send_gpa(t, 0, m, mlen, NVSP_SEND_BUF_SECTION_NONE, 0),
			 NVSP_STAT_SUCCESS);
	unsigned nseg = (payload + mss - 1) / mss;
	assert_int_equal(t->peer.n, 1 + nseg);
	uint32_t got = 0;
	for (unsigned i = 0; i < nseg; i++) {
		pf = &t->peer.f[1 + i];
		assert_true(pf->len <= 1514);
		assert_int_equal(hvs_csum_verify(pf->data, pf->len),
				 HVS_CSUM_IPHDR | HVS_CSUM_TCP);
		assert_memory_equal(pf->data + 54, f + 54 + got, pf->len - 54);
		got += pf->len - 54;
	}
	assert_int_equal(got, payload);
	struct hvs_netvsp_stats st = stats(t);
	assert_int_equal(st.ns_tx_lso, 1);
	assert_int_equal(st.ns_tx_lso_segments, nseg);

	/* VLAN: out of band from the PPI, and a tag left in the frame */
	unsigned n0 = t->peer.n;
	flen = udp_frame(f, mac_bc, t->mac, 1, 2, 10, true);
	ppi[0] = NDIS_PKTINFO_TYPE_VLAN;
	ppi[1] = NDIS_VLAN_INFO_MAKE(5, 3, 0);
	mlen = pkt_msg(m, f, flen, ppi, 1);
	assert_int_equal(send_section(t, 0, 1, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.f[n0].tci, (3u << 13) | 5u);
	assert_memory_equal(t->peer.f[n0].data, f, flen);
	uint8_t tagged[100];
	memcpy(tagged, f, 12);
	put16(tagged + 12, 0x8100);
	put16(tagged + 14, 77);
	memcpy(tagged + 16, f + 12, flen - 12);
	mlen = pkt_msg(m, tagged, flen + 4, NULL, 0);
	assert_int_equal(send_section(t, 0, 1, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.f[n0 + 1].tci, 77);
	assert_int_equal(t->peer.f[n0 + 1].len, flen);
	assert_memory_equal(t->peer.f[n0 + 1].data, f, flen);

	/* requests that do not fit the frame: dropped, counted, completed */
	uint64_t e0 = nvsp_guest_errors(t);
	ppi[0] = NDIS_PKTINFO_TYPE_CSUM;
	ppi[1] = NDIS_TXCSUM_INFO_IPV4 | NDIS_TXCSUM_INFO_TCPCS |
		 NDIS_TXCSUM_INFO_THOFF(34); /* a UDP frame */
	mlen = pkt_msg(m, f, flen, ppi, 1);
	assert_int_equal(send_section(t, 0, 1, m, mlen, 0, 0),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	ppi[0] = NDIS_PKTINFO_TYPE_LSO;
	ppi[1] = NDIS_LSO2_INFO_MAKEIPV4(40, 1460); /* wrong TCP offset */
	mlen = pkt_msg(m, f, flen, ppi, 1);
	assert_int_equal(send_section(t, 0, 1, m, mlen, 0, 0),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	assert_int_equal(nvsp_guest_errors(t), e0 + 2);
	assert_int_equal(t->peer.n, n0 + 2);
	t_free(t);
}

/* ---- receive ------------------------------------------------------------------------- */

static void test_rx(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[2000];
	struct rxf *x = calloc(1, sizeof(*x));

	bringup(t, NVSP_PROTOCOL_VERSION_61, 1514);
	rndis_init(t);
	/* filter 0: nothing comes in */
	uint32_t flen = udp_frame(f, mac_bc, mac_peer, 1, 2, 50, true);
	peer_send(t, f, flen, 0, 0);
	assert_false(rx_frame(t, x, true));
	set_filter(t, NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST);

	/* broadcast, unicast to us, every size */
	for (uint32_t plen = 0; plen <= 1472; plen += 191) {
		flen = udp_frame(f, (plen / 191) % 2 ? t->mac : mac_bc,
				 mac_peer, 3, 4, plen, true);
		peer_send(t, f, flen, 0, 0);
		assert_true(rx_frame(t, x, true));
		assert_int_equal(x->q, 0);
		assert_int_equal(x->flen, flen);
		assert_memory_equal(x->frame, f, flen);
		assert_false(x->have_vlan || x->have_csum || x->have_hash);
	}
	/* unicast elsewhere, multicast without the multicast bits: filtered */
	static const uint8_t other[6] = { 0x02, 1, 2, 3, 4, 5 };
	static const uint8_t mc[6] = { 0x01, 0x00, 0x5e, 0, 0, 9 };
	flen = udp_frame(f, other, mac_peer, 3, 4, 10, true);
	peer_send(t, f, flen, 0, 0);
	udp_frame(f, mc, mac_peer, 3, 4, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_false(rx_frame(t, x, true));
	struct hvs_netvsp_stats st = stats(t);
	assert_int_equal(st.ns_rx_filtered, 2);
	assert_int_equal(st.ns_rx_not_ready, 1); /* filter 0: not open yet */
	/* a multicast list, then all-multicast, then promiscuous */
	assert_int_equal(rndis_set(t, OID_802_3_MULTICAST_LIST, mc, 6), 0);
	set_filter(t, NDIS_PACKET_TYPE_MULTICAST);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	f[5] = 10;
	peer_send(t, f, flen, 0, 0);
	assert_false(rx_frame(t, x, true));
	set_filter(t, NDIS_PACKET_TYPE_ALL_MULTICAST);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	set_filter(t, NDIS_PACKET_TYPE_PROMISCUOUS);
	udp_frame(f, other, mac_peer, 3, 4, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	set_filter(t, NDIS_PACKET_FILTER_DEFAULT);

	/* a tagged frame: the tag arrives as a VLAN PPI */
	flen = udp_frame(f, mac_bc, mac_peer, 3, 4, 10, true);
	peer_send(t, f, flen, (6u << 13) | 123u, 0);
	assert_true(rx_frame(t, x, true));
	assert_true(x->have_vlan);
	assert_int_equal(NDIS_VLAN_INFO_ID(x->vlan), 123);
	assert_int_equal(NDIS_VLAN_INFO_PRI(x->vlan), 6);
	assert_memory_equal(x->frame, f, flen);
	/* checksums the host computed: reported good */
	peer_send(t, f, flen, 0, HVS_NF_CSUM_OK);
	assert_true(rx_frame(t, x, true));
	assert_true(x->have_csum);
	assert_int_equal(x->csum, NDIS_RXCSUM_INFO_IPCS_OK |
					  NDIS_RXCSUM_INFO_UDPCS_OK);
	/* frames larger than the negotiated size never reach the guest */
	static uint8_t big[1600];
	memset(big, 0, sizeof(big));
	memcpy(big, mac_bc, 6);
	peer_send(t, big, 1515, 0, 0);
	assert_false(rx_frame(t, x, true));

	st = stats(t);
	assert_int_equal(st.ns_rx_slots_free, t->nslots);
	assert_int_equal(st.ns_guest_errors, 0);
	free(x);
	t_free(t);
}

static void test_rx_backpressure(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100];
	struct hpkt *held = calloc(2048, sizeof(*held));
	unsigned nheld = 0;

	nic_up(t, NVSP_PROTOCOL_VERSION_5);
	uint32_t flen = udp_frame(f, mac_bc, mac_peer, 1, 2, 10, true);
	/* the guest reads nothing: the ring fills */
	unsigned sent = 0;
	struct hvs_netvsp_stats st;
	do {
		peer_send(t, f, flen, 0, 0);
		sent++;
		st = stats(t);
	} while (st.ns_rx_deferred == 0 && sent < 5000);
	assert_true(st.ns_rx_deferred > 0);
	uint64_t in_ring = st.ns_rx_frames;
	assert_true(in_ring < t->nslots);
	/* the guest reads (not completing): the host may send again */
	while (take(t, &held[nheld], VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 0,
		    true))
		nheld++;
	assert_int_equal(nheld, in_ring);
	/* now the slots run out, with the control reserve left */
	do {
		peer_send(t, f, flen, 0, 0);
		while (take(t, &held[nheld],
			    VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 0, true))
			nheld++;
		st = stats(t);
	} while (st.ns_rx_slots_free > 16 && nheld < 2048);
	assert_int_equal(st.ns_rx_slots_free, 16);
	assert_int_equal(nheld, t->nslots - 16);
	uint64_t deferred = st.ns_rx_deferred;
	peer_send(t, f, flen, 0, 0);
	assert_int_equal(stats(t).ns_rx_deferred, deferred + 1);
	/* control replies still get through the reserve */
	assert_int_equal(query32(t, OID_GEN_MEDIA_CONNECT_STATUS), 0);
	/* every slot comes back with its completion */
	for (unsigned i = 0; i < nheld; i++)
		g_complete(t, &held[i], NVSP_STAT_SUCCESS);
	st = stats(t);
	assert_int_equal(st.ns_rx_slots_free, t->nslots);
	assert_int_equal(st.ns_bad_completions, 0);
	/* and frames flow again */
	struct rxf *x = calloc(1, sizeof(*x));
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	free(x);
	free(held);
	t_free(t);
}

/* ---- link ------------------------------------------------------------------------------ */

static void test_link(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100], m[200], r[64];
	struct rxf *x = calloc(1, sizeof(*x));
	nic_up(t, NVSP_PROTOCOL_VERSION_61);

	hvs_netvsp_set_link(t->nic, false);
	uint32_t ctype;
	assert_int_equal(rx_msg(t, r, sizeof(r), NULL, &ctype, true), 20);
	assert_int_equal(ctype, NVSP_RNDIS_CHANNEL_TYPE_CONTROL);
	assert_int_equal(hv_get_le32(r), REMOTE_NDIS_INDICATE_STATUS_MSG);
	assert_int_equal(hv_get_le32(r + 8), RNDIS_STATUS_MEDIA_DISCONNECT);
	assert_int_equal(query32(t, OID_GEN_MEDIA_CONNECT_STATUS),
			 NDIS_MEDIA_STATE_DISCONNECTED);
	/* no frames either way, sends still completed */
	uint32_t flen = udp_frame(f, mac_bc, mac_peer, 1, 2, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_false(rx_frame(t, x, true));
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	assert_int_equal(send_section(t, 0, 1, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.n, 0);
	hvs_netvsp_set_link(t->nic, true);
	assert_int_equal(rx_msg(t, r, sizeof(r), NULL, &ctype, true), 20);
	assert_int_equal(hv_get_le32(r + 8), RNDIS_STATUS_MEDIA_CONNECT);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	free(x);
	t_free(t);
}

/* ---- vRSS ------------------------------------------------------------------------------ */

static const uint8_t ms_key[40] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
	0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
	0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
	0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa };

static uint32_t rss_params(uint8_t *p, uint16_t flags, uint32_t n,
			   uint32_t nq)
{
	memset(p, 0, 40 + 4 * n + 40);
	p[0] = NDIS_OBJTYPE_RSS_PARAMS;
	p[1] = NDIS_RSS_PARAMS_REV_2;
	hv_put_le16(p + 2, NDIS_RSS_PARAMS_SIZE);
	hv_put_le16(p + 4, flags);
	hv_put_le32(p + 8, NDIS_RSS_HASH_INFO_L);
	hv_put_le16(p + 12, (uint16_t)(4 * n));
	hv_put_le32(p + 16, 40);
	hv_put_le16(p + 20, 40);
	hv_put_le32(p + 24, 40 + 4 * n);
	for (uint32_t i = 0; i < n; i++)
		hv_put_le32(p + 40 + 4 * i, i % nq);
	memcpy(p + 40 + 4 * n, ms_key, 40);
	return 40 + 4 * n + 40;
}

static void test_vrss(void **state)
{
	(void)state;
	struct t *t = t_new("queues=4");
	static uint8_t f[200], m[400], p[700];
	uint8_t out[64];
	uint32_t olen;
	struct rxf *x = calloc(1, sizeof(*x));
	nic_up(t, NVSP_PROTOCOL_VERSION_61);

	assert_int_equal(rndis_query(t, OID_GEN_RECEIVE_SCALE_CAPABILITIES,
				     NULL, 0, out, &olen), 0);
	assert_int_equal(olen, 18);
	assert_int_equal(out[0], NDIS_OBJTYPE_RSS_CAPS);
	assert_int_equal(hv_get_le32(out + 12), 4);
	assert_int_equal(hv_get_le16(out + 16), 128);
	assert_true(hv_get_le32(out + 4) & NDIS_RSS_CAP_HASH_TOEPLITZ);

	/* asking for 7 subchannels gets 3: 4 queues in all */
	uint8_t sc[40] = { 0 };
	hv_put_le32(sc, NVSP_MSG5_TYPE_SUBCHANNEL);
	hv_put_le32(sc + 4, NVSP_SUBCHANNEL_OP_ALLOCATE);
	hv_put_le32(sc + 8, 7);
	uint64_t tid = nvsp_req(t, 0, sc, 40);
	struct hpkt h;
	take_comp(t, tid, &h);
	assert_int_equal(hv_get_le32(h.data), NVSP_MSG5_TYPE_SUBCHANNEL);
	assert_int_equal(hv_get_le32(h.data + 4), NVSP_STAT_SUCCESS);
	assert_int_equal(hv_get_le32(h.data + 8), 3);
	note_offers(t);
	assert_int_equal(t->nsub_offers, 3);
	for (unsigned i = 1; i <= 3; i++)
		assert_int_equal(chan_open(t, i), 0);
	assert_int_equal(stats(t).ns_queues_open, 4);

	uint32_t plen = rss_params(p, 0, 128, 4);
	assert_int_equal(rndis_set(t, OID_GEN_RECEIVE_SCALE_PARAMETERS, p, plen),
			 RNDIS_STATUS_SUCCESS);
	assert_true(stats(t).ns_rss);
	/* the send indirection table (V's layout) */
	assert_true(take(t, &h, VMBUS_PACKET_TYPE_DATA_INBAND, 0, true));
	assert_int_equal(h.q, 0);
	assert_true(h.datalen >= 76);
	assert_int_equal(hv_get_le32(h.data), NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE);
	assert_int_equal(hv_get_le32(h.data + 4), 16);
	uint32_t toff = hv_get_le32(h.data + 8);
	assert_int_equal(toff, 12);
	for (uint32_t i = 0; i < 16; i++)
		assert_int_equal(hv_get_le32(h.data + toff + 4 * i), i % 4);

	/* TCP flows land on table[hash % 128]; the hash PPI says so */
	unsigned seen[4] = { 0 };
	for (uint16_t port = 1000; port < 1040; port++) {
		uint32_t flen = udp_frame(f, t->mac, mac_peer, port, 80, 20, false);
		f[23] = HVS_IPPROTO_TCP;
		put16(f + 16, 40);
		f[46] = 0x50;
		flen = 54;
		uint32_t hash, type;
		assert_int_equal(hvs_rss_hash(f, flen, ms_key, 40,
					      NDIS_RSS_HASH_INFO_L & NDIS_HASH_TYPE_MASK,
					      &hash, &type), 0);
		peer_send(t, f, flen, 0, 0);
		assert_true(rx_frame(t, x, true));
		assert_int_equal(x->q, (hash % 128) % 4);
		assert_true(x->have_hash && x->have_hinf);
		assert_int_equal(x->hash, hash);
		assert_int_equal(x->hinf, NDIS_HASH_FUNCTION_TOEPLITZ |
						  NDIS_HASH_TCP_IPV4);
		seen[x->q]++;
	}
	unsigned used = 0;
	for (int i = 0; i < 4; i++)
		used += seen[i] > 0;
	assert_true(used >= 3);

	/* a completion on another queue than the packet's is refused */
	uint32_t flen = 54;
	uint16_t port = 1000;
	do {
		put16(f + 34, port++);
		peer_send(t, f, flen, 0, 0);
		assert_true(take(t, &h, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES,
				 0, true));
		if (h.q == 0)
			g_complete(t, &h, NVSP_STAT_SUCCESS);
	} while (h.q == 0);
	struct hpkt wrong = h;
	wrong.q = 0;
	uint64_t bad = stats(t).ns_bad_completions;
	g_complete(t, &wrong, NVSP_STAT_SUCCESS);
	assert_int_equal(stats(t).ns_bad_completions, bad + 1);
	g_complete(t, &h, NVSP_STAT_SUCCESS);
	assert_int_equal(stats(t).ns_rx_slots_free, t->nslots);

	/* sending on a subchannel works; NVSP control there does not */
	flen = udp_frame(f, mac_bc, t->mac, 1, 2, 10, true);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	unsigned n0 = t->peer.n;
	assert_int_equal(send_section(t, 2, 4, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.n, n0 + 1);
	uint64_t e0 = nvsp_guest_errors(t);
	tid = nvsp_req(t, 1, sc, 40);
	assert_true(no_comp(t, tid));
	assert_int_equal(nvsp_guest_errors(t), e0 + 1);

	/* RSS off: everything on queue 0, no hash */
	plen = rss_params(p, NDIS_RSS_FLAG_DISABLE, 128, 4);
	assert_int_equal(rndis_set(t, OID_GEN_RECEIVE_SCALE_PARAMETERS, p, plen),
			 RNDIS_STATUS_SUCCESS);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	assert_int_equal(x->q, 0);
	assert_false(x->have_hash);
	/* closing a subchannel leaves the others running */
	chan_close(t, 3);
	assert_int_equal(stats(t).ns_queues_open, 3);
	free(x);
	t_free(t);
}

/* ---- revoke, teardown, reopen -------------------------------------------------------------- */

static void teardown_msg(struct t *t, uint32_t handle)
{
	uint8_t m[16] = { 0 };
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_TEARDOWN);
	hv_put_le32(m + 8, t->relid);
	hv_put_le32(m + 12, handle);
	send_msg(t, m, sizeof(m));
}

static bool torndown(struct t *t, uint32_t handle)
{
	const struct fp_msg *m;
	while ((m = fp_pop(t->p)) != NULL)
		if (hv_get_le32(m->buf) == VMBUS_CHANMSG_GPADL_TORNDOWN &&
		    hv_get_le32(m->buf + 8) == handle)
			return true;
	return false;
}

static void revoke(struct t *t, uint32_t type, uint16_t id)
{
	uint8_t m[40] = { 0 };
	hv_put_le32(m, type);
	hv_put_le16(m + 4, id);
	g_send(t, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, ++t->tid, m, 40);
}

static void test_revoke_reopen(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100];
	struct rxf *x = calloc(1, sizeof(*x));
	nic_up(t, NVSP_PROTOCOL_VERSION_61);

	/* a held buffer cannot be torn down; the host keeps writing safely */
	teardown_msg(t, t->rx_handle);
	assert_false(torndown(t, t->rx_handle));
	uint32_t flen = udp_frame(f, mac_bc, mac_peer, 1, 2, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));

	/* L's order: HALT, revoke both, then tear down */
	uint8_t halt[12];
	hv_put_le32(halt, REMOTE_NDIS_HALT_MSG);
	hv_put_le32(halt + 4, 12);
	hv_put_le32(halt + 8, ++t->rid);
	assert_int_equal(send_section(t, 0, 0, halt, 12, 1, 0), NVSP_STAT_SUCCESS);
	assert_false(stats(t).ns_rndis_up);
	peer_send(t, f, flen, 0, 0);
	assert_false(rx_frame(t, x, true));
	revoke(t, NVSP_MSG1_TYPE_REVOKE_RECV_BUF, NVSP_RECV_BUF_ID_L);
	revoke(t, NVSP_MSG1_TYPE_REVOKE_SEND_BUF, 0);
	assert_int_equal(stats(t).ns_rx_slots, 0);
	assert_int_equal(stats(t).ns_send_sections, 0);
	teardown_msg(t, t->rx_handle);
	assert_true(torndown(t, t->rx_handle));
	teardown_msg(t, t->tx_handle);
	assert_true(torndown(t, t->tx_handle));
	assert_int_equal(nvsp_guest_errors(t), 0);

	/* close, reopen: a fresh session, any version */
	chan_close(t, 0);
	while (fp_pop(t->p) != NULL)
		;
	assert_int_equal(stats(t).ns_queues_open, 0);
	nic_up(t, NVSP_PROTOCOL_VERSION_4);
	assert_int_equal(stats(t).ns_nvsp_version, NVSP_PROTOCOL_VERSION_4);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	/* closing without revoking releases the buffers too */
	chan_close(t, 0);
	teardown_msg(t, t->rx_handle);
	assert_true(torndown(t, t->rx_handle));
	free(x);
	t_free(t);
}

static void test_mac_change(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100], p[128];
	struct rxf *x = calloc(1, sizeof(*x));
	uint8_t out[16];
	uint32_t olen;
	nic_up(t, NVSP_PROTOCOL_VERSION_61);

	/* L: RNDIS_CONFIG_PARAMETER "NetworkAddress" = 12 hex digits */
	static const char name[] = "NetworkAddress", val[] = "0200C0FFEE01";
	memset(p, 0, sizeof(p));
	hv_put_le32(p, 20);
	hv_put_le32(p + 4, 28);
	hv_put_le32(p + 8, RNDIS_CONFIG_PARAM_TYPE_STRING);
	hv_put_le32(p + 12, 48);
	hv_put_le32(p + 16, 24);
	for (int i = 0; i < 14; i++)
		hv_put_le16(p + 20 + 2 * i, (uint8_t)name[i]);
	for (int i = 0; i < 12; i++)
		hv_put_le16(p + 48 + 2 * i, (uint8_t)val[i]);
	assert_int_equal(rndis_set(t, OID_GEN_RNDIS_CONFIG_PARAMETER, p, 72),
			 RNDIS_STATUS_SUCCESS);
	static const uint8_t nm[6] = { 0x02, 0x00, 0xc0, 0xff, 0xee, 0x01 };
	assert_int_equal(rndis_query(t, OID_802_3_CURRENT_ADDRESS, NULL, 0, out,
				     &olen), 0);
	assert_memory_equal(out, nm, 6);
	assert_int_equal(rndis_query(t, OID_802_3_PERMANENT_ADDRESS, NULL, 0,
				     out, &olen), 0);
	assert_memory_equal(out, t->mac, 6);
	uint32_t flen = udp_frame(f, nm, mac_peer, 1, 2, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	udp_frame(f, t->mac, mac_peer, 1, 2, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_false(rx_frame(t, x, true));
	/* a multicast address is refused */
	hv_put_le16(p + 50, '3'); /* 03:00:...: multicast */
	assert_int_equal(rndis_set(t, OID_GEN_RNDIS_CONFIG_PARAMETER, p, 72),
			 RNDIS_STATUS_INVALID_DATA);
	free(x);
	t_free(t);
}

/* ---- two VMs on one switch ---------------------------------------------------------------- */

static void test_two_vms(void **state)
{
	(void)state;
	struct t *a = t_new_sw(NULL, "shared");
	struct t *b = t_new_sw(NULL, "shared");
	static uint8_t f[200], m[300];
	struct rxf *x = calloc(1, sizeof(*x));
	nic_up(a, NVSP_PROTOCOL_VERSION_61);
	nic_up(b, NVSP_PROTOCOL_VERSION_2);
	assert_memory_not_equal(a->mac, b->mac, 6);

	/* a broadcasts, b and both peers see it */
	uint32_t flen = udp_frame(f, mac_bc, a->mac, 1, 2, 30, true);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	assert_int_equal(send_section(a, 0, 1, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_true(rx_frame(b, x, true));
	assert_memory_equal(x->frame, f, flen);
	/* b answers a by unicast: only a gets it */
	unsigned pa = a->peer.n, pb = b->peer.n;
	flen = udp_frame(f, a->mac, b->mac, 2, 1, 30, true);
	mlen = pkt_msg(m, f, flen, NULL, 0);
	assert_int_equal(send_section(b, 0, 1, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_true(rx_frame(a, x, true));
	assert_memory_equal(x->frame, f, flen);
	assert_int_equal(a->peer.n, pa);
	assert_int_equal(b->peer.n, pb);
	free(x);
	t_free(a);
	t_free(b);
}

/* ---- hostile guests ------------------------------------------------------------------------ */

/* The host still serves: a frame goes out through a section. */
static void still_serves(struct t *t)
{
	static uint8_t f[100], m[200];
	unsigned n0 = t->peer.n;
	uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, 10, true);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	assert_int_equal(send_section(t, 0, 1, m, mlen, 0, 0), NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.n, n0 + 1);
}

static void test_hostile_nvsp(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	uint8_t m[40];
	uint64_t e, tid;

	assert_int_equal(chan_open(t, 0), 0);
	/* an empty message, and one shorter than its type */
	e = nvsp_guest_errors(t);
	g_send(t, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 1, ++t->tid, NULL, 0);
	assert_true(no_comp(t, t->tid));
	assert_int_equal(nvsp_guest_errors(t), e + 1);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG_TYPE_INIT);
	hv_put_le32(m + 4, NVSP_PROTOCOL_VERSION_61);
	tid = nvsp_req(t, 0, m, 8);
	struct hpkt h;
	take_comp(t, tid, &h);
	assert_int_equal(hv_get_le32(h.data + 12), NVSP_STAT_FAIL);
	assert_int_equal(nvsp_guest_errors(t), e + 2);
	/* anything but INIT first; a send still gets its completion */
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RECV_BUF);
	tid = nvsp_req(t, 0, m, 40);
	assert_true(no_comp(t, tid));
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(m + 8, NVSP_SEND_BUF_SECTION_NONE);
	tid = nvsp_req(t, 0, m, 40);
	assert_int_equal(comp_status(t, tid, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE,
				     NULL), NVSP_STAT_FAIL);
	assert_int_equal(nvsp_guest_errors(t), e + 4);
	/* version 1: types above 108 are refused */
	assert_int_equal(nvsp_init(t, NVSP_PROTOCOL_VERSION_1, NULL), 0);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG2_TYPE_SEND_NDIS_CONFIG);
	tid = nvsp_req(t, 0, m, 40);
	assert_true(no_comp(t, tid));
	hv_put_le32(m, 4000);
	tid = nvsp_req(t, 0, m, 40);
	assert_true(no_comp(t, tid));
	assert_int_equal(nvsp_guest_errors(t), e + 6);
	/* buffers: unknown GPADL, too small, twice */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RECV_BUF);
	hv_put_le32(m + 4, 0xBAD);
	tid = nvsp_req(t, 0, m, 40);
	assert_int_equal(comp_status(t, tid, NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE,
				     NULL), NVSP_STAT_FAIL);
	uint32_t tiny = gpadl_make(t, t->relid, fp_alloc(t->p, 1), 1);
	hv_put_le32(m + 4, tiny);
	tid = nvsp_req(t, 0, m, 40);
	assert_int_equal(comp_status(t, tid, NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE,
				     NULL), NVSP_STAT_FAIL);
	teardown_msg(t, tiny);
	assert_true(torndown(t, tiny)); /* the failed setup did not keep it */
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_SEND_BUF);
	hv_put_le32(m + 4, 0xBAD);
	tid = nvsp_req(t, 0, m, 40);
	assert_int_equal(comp_status(t, tid, NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE,
				     NULL), NVSP_STAT_FAIL);
	assert_int_equal(nvsp_guest_errors(t), e + 9);
	bringup(t, 0, 0);
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RECV_BUF);
	hv_put_le32(m + 4, t->rx_handle);
	tid = nvsp_req(t, 0, m, 40);
	assert_int_equal(comp_status(t, tid, NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE,
				     NULL), NVSP_STAT_FAIL);
	/* INIT again once buffers exist; revoke of an unknown id */
	assert_int_equal(nvsp_init(t, NVSP_PROTOCOL_VERSION_1, NULL), 1);
	revoke(t, NVSP_MSG1_TYPE_REVOKE_RECV_BUF, 0x1111);
	assert_int_equal(stats(t).ns_rx_slots, t->nslots);
	/* transfer pages from the guest */
	uint8_t xp[32] = { 0 };
	hv_put_le16(xp, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES);
	hv_put_le16(xp + 2, 4);
	hv_put_le16(xp + 4, 4);
	hv_put_le32(xp + 20, 1);
	g_write(t, 0, xp, 32);
	assert_int_equal(nvsp_guest_errors(t), e + 13);
	rndis_init(t);
	set_filter(t, NDIS_PACKET_FILTER_DEFAULT);
	still_serves(t);
	t_free(t);
}

static void test_hostile_sections(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100], m[200];
	nic_up(t, NVSP_PROTOCOL_VERSION_61);
	uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, 10, true);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	uint32_t nsect = stats(t).ns_send_sections;
	uint64_t e = nvsp_guest_errors(t);

	/* index past the buffer, huge index, size past a section, size 0 */
	const struct { uint32_t sect, size; } bad[] = {
		{ nsect, mlen }, { 0xFFFFFFFE, mlen }, { 0, t->sect + 1 },
		{ 0, 0xFFFFFFFF }, { nsect - 1, 0 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t n[40] = { 0 };
		hv_put_le32(n, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
		hv_put_le32(n + 8, bad[i].sect);
		hv_put_le32(n + 12, bad[i].size);
		uint64_t tid = nvsp_req(t, 0, n, 40);
		assert_int_equal(comp_status(t, tid,
					     NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE,
					     NULL), NVSP_STAT_FAIL);
		assert_int_equal(nvsp_guest_errors(t), e + i + 1);
	}
	/* no data at all: no section, no pages */
	uint8_t n[40] = { 0 };
	hv_put_le32(n, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(n + 8, NVSP_SEND_BUF_SECTION_NONE);
	uint64_t tid = nvsp_req(t, 0, n, 40);
	assert_int_equal(comp_status(t, tid, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE,
				     NULL), NVSP_STAT_INVALID_RNDIS_PKT);
	/* the last section, exactly full, is fine */
	assert_int_equal(send_section(t, 0, nsect - 1, m, mlen, 0, 0),
			 NVSP_STAT_SUCCESS);
	assert_int_equal(t->peer.n, 1);
	still_serves(t);
	t_free(t);
}

/* One malformed data message through a section: INVALID, counted. */
static void bad_pkt(struct t *t, uint8_t *m, uint32_t len, uint32_t size)
{
	uint64_t e = nvsp_guest_errors(t);
	unsigned n0 = t->peer.n;
	assert_int_equal(send_section(t, 0, 2, m, len, 0, size),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	assert_int_equal(nvsp_guest_errors(t), e + 1);
	assert_int_equal(t->peer.n, n0);
}

static void test_hostile_rndis(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100], m[2000];
	nic_up(t, NVSP_PROTOCOL_VERSION_61);
	uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, 10, true);
	uint32_t vlan[2] = { NDIS_PKTINFO_TYPE_VLAN, 5 };
	uint32_t mlen;

#define FRESH() (mlen = pkt_msg(m, f, flen, vlan, 1))
	FRESH();
	hv_put_le32(m + 4, mlen + 1);		/* msg_len past the bytes */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 4, 40);			/* shorter than the header */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 8, mlen);		/* data starts past the end */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 8, 0);			/* data inside the header */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 12, 0xFFFFFFFF);	/* data length wraps */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 12, 10);		/* a runt frame */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 28, 0xFFFFFFF8);	/* PPI offset wraps */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 32, 0x10000);		/* PPI length past the end */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 44, 0);			/* PPI record of size 0 */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 44, 8);			/* smaller than its header */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 44, 20);		/* runs past the PPI list */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 52, 17);		/* payload offset past the record */
	bad_pkt(t, m, mlen, 0);
	FRESH();
	hv_put_le32(m + 44, 14);		/* a VLAN PPI of 2 bytes */
	hv_put_le32(m + 32, 14);
	bad_pkt(t, m, mlen, 0);
	/* many small PPIs: bounded */
	uint32_t many[80];
	for (int i = 0; i < 40; i++) {
		many[2 * i] = 100 + (uint32_t)i;
		many[2 * i + 1] = 0;
	}
	mlen = pkt_msg(m, f, flen, many, 40);
	bad_pkt(t, m, mlen, 0);
	/* stray bytes after the last message */
	FRESH();
	memset(m + mlen, 0xAB, 5);
	assert_int_equal(send_section(t, 0, 2, m, mlen + 5, 0, 0),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	/* a non-PACKET message in a data batch */
	FRESH();
	uint32_t l2 = (mlen + 7) & ~7u;
	hv_put_le32(m + 4, l2);
	memset(m + l2, 0, 16);
	hv_put_le32(m + l2, REMOTE_NDIS_QUERY_MSG);
	hv_put_le32(m + l2 + 4, 16);
	assert_int_equal(send_section(t, 0, 2, m, l2 + 16, 0, 0),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	/* control: too short, unknown type */
	uint8_t c[16] = { 0 };
	hv_put_le32(c, REMOTE_NDIS_KEEPALIVE_MSG);
	hv_put_le32(c + 4, 8);
	uint64_t e = nvsp_guest_errors(t);
	assert_int_equal(send_section(t, 0, 0, c, 16, 1, 0),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	hv_put_le32(c, 0x77);
	hv_put_le32(c + 4, 16);
	assert_int_equal(send_section(t, 0, 0, c, 16, 1, 0),
			 NVSP_STAT_INVALID_RNDIS_PKT);
	assert_int_equal(nvsp_guest_errors(t), e + 2);
	/* a QUERY whose info buffer lies outside the message */
	uint8_t q[40] = { 0 }, r[64];
	hv_put_le32(q, REMOTE_NDIS_QUERY_MSG);
	hv_put_le32(q + 4, 40);
	hv_put_le32(q + 8, 99);
	hv_put_le32(q + 12, OID_GEN_LINK_SPEED);
	hv_put_le32(q + 16, 16);
	hv_put_le32(q + 20, 0xFFFFFFF0);
	assert_int_equal(rndis_call(t, q, 40, r, sizeof(r)), 24);
	assert_int_equal(hv_get_le32(r + 8), 99);
	assert_int_equal(hv_get_le32(r + 12), RNDIS_STATUS_INVALID_DATA);
	/* SETs whose objects point outside their buffer */
	uint8_t p[700];
	uint32_t plen = rss_params(p, 0, 16, 1);
	hv_put_le32(p + 16, 0xFFFFFF00);
	assert_int_equal(rndis_set(t, OID_GEN_RECEIVE_SCALE_PARAMETERS, p, plen),
			 RNDIS_STATUS_INVALID_DATA);
	plen = rss_params(p, 0, 16, 1);
	hv_put_le16(p + 20, 400);
	assert_int_equal(rndis_set(t, OID_GEN_RECEIVE_SCALE_PARAMETERS, p, plen),
			 RNDIS_STATUS_INVALID_DATA);
	plen = rss_params(p, 0, 16, 1);
	hv_put_le16(p + 12, 4 * 300);
	assert_int_equal(rndis_set(t, OID_GEN_RECEIVE_SCALE_PARAMETERS, p, plen),
			 RNDIS_STATUS_INVALID_DATA);
	assert_false(stats(t).ns_rss);
	memset(p, 0, 40);
	hv_put_le32(p, 0x7FFFFFF0);	/* name offset */
	hv_put_le32(p + 4, 28);
	assert_int_equal(rndis_set(t, OID_GEN_RNDIS_CONFIG_PARAMETER, p, 40),
			 RNDIS_STATUS_INVALID_DATA);
	uint32_t v = 0;
	assert_int_equal(rndis_set(t, OID_GEN_CURRENT_PACKET_FILTER, &v, 2),
			 RNDIS_STATUS_INVALID_LENGTH);
	assert_int_equal(rndis_set(t, OID_802_3_MULTICAST_LIST, p, 7),
			 RNDIS_STATUS_INVALID_LENGTH);
	still_serves(t);
	assert_int_equal(stats(t).ns_rx_slots_free, t->nslots);
	t_free(t);
#undef FRESH
}

static void test_hostile_gpa(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	uint8_t n[40] = { 0 };
	nic_up(t, NVSP_PROTOCOL_VERSION_61);
	hv_put_le32(n, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(n + 8, NVSP_SEND_BUF_SECTION_NONE);

	/* pages beyond guest RAM, page 0, a range beyond the send limit */
	const struct { uint64_t gpa; uint32_t len; } bad[] = {
		{ RAM_BYTES, 100 },
		{ RAM_BYTES - 50, 100 },
		{ (uint64_t)1 << 50, 64 },
		{ 0x10, 64 },
		{ 4096, 300u * 1024 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t e = nvsp_guest_errors(t);
		uint64_t tid = ++t->tid;
		g_send_gpa(t, 0, tid, n, 40, &bad[i].gpa, &bad[i].len, 1);
		struct hpkt h;
		take_comp(t, tid, &h);
		assert_int_equal(hv_get_le32(h.data + 4), NVSP_STAT_FAIL);
		assert_int_equal(nvsp_guest_errors(t), e + 1);
	}
	assert_int_equal(t->peer.n, 0);
	still_serves(t);
	t_free(t);
}

static void test_hostile_completions(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100];
	nic_up(t, NVSP_PROTOCOL_VERSION_61);
	uint32_t flen = udp_frame(f, mac_bc, mac_peer, 1, 2, 10, true);
	struct hpkt h, old;

	peer_send(t, f, flen, 0, 0);
	assert_true(take(t, &h, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 0, true));
	uint64_t b = stats(t).ns_bad_completions;
	struct hpkt w = h;
	w.tid = h.tid + 1;			/* a slot it does not hold */
	g_complete(t, &w, NVSP_STAT_SUCCESS);
	w.tid = 0;				/* id 0 */
	g_complete(t, &w, NVSP_STAT_SUCCESS);
	w.tid = h.tid + (1ull << 32);		/* wrong generation */
	g_complete(t, &w, NVSP_STAT_SUCCESS);
	w.tid = 0xFFFFFFFFull;			/* slot far beyond */
	g_complete(t, &w, NVSP_STAT_SUCCESS);
	assert_int_equal(stats(t).ns_bad_completions, b + 4);
	assert_int_equal(stats(t).ns_rx_slots_free, t->nslots - 1);
	/* short, and of the wrong type */
	uint8_t c[8];
	hv_put_le32(c, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
	g_send(t, 0, VMBUS_PACKET_TYPE_COMP, 0, h.tid, c, 0);
	hv_put_le32(c, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(c + 4, 1);
	g_send(t, 0, VMBUS_PACKET_TYPE_COMP, 0, h.tid, c, 8);
	assert_int_equal(stats(t).ns_bad_completions, b + 6);
	/* the right one (with FAIL: counted), then a duplicate */
	g_complete(t, &h, NVSP_STAT_FAIL);
	assert_int_equal(stats(t).ns_rx_guest_fail, 1);
	assert_int_equal(stats(t).ns_rx_slots_free, t->nslots);
	g_complete(t, &h, NVSP_STAT_SUCCESS);
	assert_int_equal(stats(t).ns_bad_completions, b + 7);
	/* a stale id after its slot was reused */
	old = h;
	peer_send(t, f, flen, 0, 0);
	assert_true(take(t, &h, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 0, true));
	assert_int_equal(h.roff[0], old.roff[0]);	/* same slot */
	assert_true(h.tid != old.tid);
	g_complete(t, &old, NVSP_STAT_SUCCESS);
	assert_int_equal(stats(t).ns_bad_completions, b + 8);
	g_complete(t, &h, NVSP_STAT_SUCCESS);
	assert_int_equal(stats(t).ns_rx_slots_free, t->nslots);
	still_serves(t);
	t_free(t);
}

/* A guest that stops reading its ring: completions wait, nothing is lost,
 * nothing grows without bound. */
static void test_hostile_stalled_guest(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100], m[200];
	nic_up(t, NVSP_PROTOCOL_VERSION_61);
	uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, 10, true);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	memcpy(fp_ptr(t->p, t->tx_gpa + t->sect), m, mlen);
	uint8_t n[40] = { 0 };
	hv_put_le32(n, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(n + 8, 1);
	hv_put_le32(n + 12, mlen);
	/* sends without reading: the host->guest ring fills with
	 * completions, then the host stops consuming */
	unsigned sent = 0;
	uint64_t first = t->tid + 1;
	for (; sent < 3000; sent++) {
		uint64_t tid = ++t->tid;
		uint8_t pkt[56];
		memset(pkt, 0, sizeof(pkt));
		hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_INBAND);
		hv_put_le16(pkt + 2, 2);
		hv_put_le16(pkt + 4, 7);
		hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
		hv_put_le64(pkt + 8, tid);
		memcpy(pkt + 16, n, 40);
		struct vmbus_iov iov = { pkt, 56 };
		if (vmbus_ring_write(&t->q[0].tx, &iov, 1, NULL) != 0)
			break; /* our ring to the host is full too */
		g_signal(t, 0);
	}
	assert_true(sent > 100);
	unsigned forwarded = t->peer.n;
	assert_true(forwarded < sent);
	/* reading resumes everything, in order, each completed once */
	uint64_t want = first;
	for (int round = 0; round < 100 && want < first + sent; round++) {
		struct hpkt h;
		/* the host yields after a budget of packets; its loop resumes */
		hvs_loop_run_once(t->loop, 0);
		while (take(t, &h, VMBUS_PACKET_TYPE_COMP, 0, true)) {
			assert_int_equal(h.tid, want);
			assert_int_equal(hv_get_le32(h.data + 4), NVSP_STAT_SUCCESS);
			want++;
		}
	}
	assert_int_equal(want, first + sent);
	assert_int_equal(t->peer.n, sent);
	t_free(t);
}

/* A guest tears the receive buffer down while the host holds it. */
static void test_hostile_teardown(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	static uint8_t f[100];
	struct rxf *x = calloc(1, sizeof(*x));
	nic_up(t, NVSP_PROTOCOL_VERSION_61);
	teardown_msg(t, t->tx_handle);
	teardown_msg(t, t->rx_handle);
	assert_false(torndown(t, t->rx_handle));
	uint32_t flen = udp_frame(f, mac_bc, mac_peer, 1, 2, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_true(rx_frame(t, x, true));
	still_serves(t);
	/* after close the holds are gone */
	chan_close(t, 0);
	teardown_msg(t, t->rx_handle);
	assert_true(torndown(t, t->rx_handle));
	free(x);
	t_free(t);
}

/* A packet far larger than any NVSP message breaks the channel, however
 * large the guest made its ring; other VMs' NICs are untouched. */
static void test_hostile_huge_packet(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	struct t *other = t_new(NULL);
	t->ring_pages = 64;
	nic_up(t, NVSP_PROTOCOL_VERSION_61);
	nic_up(other, NVSP_PROTOCOL_VERSION_61);
	const uint32_t len = 70000;
	uint8_t *pkt = calloc(1, 16 + len);
	assert_non_null(pkt);
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(pkt + 2, 2);
	hv_put_le16(pkt + 4, (uint16_t)((16 + len) / 8));
	hv_put_le32(pkt + 16, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	g_write(t, 0, pkt, 16 + len);
	free(pkt);
	/* broken: a valid request is not answered any more */
	uint8_t k[12];
	hv_put_le32(k, REMOTE_NDIS_KEEPALIVE_MSG);
	hv_put_le32(k + 4, 12);
	memcpy(fp_ptr(t->p, t->tx_gpa), k, 12);
	uint8_t n[40] = { 0 };
	hv_put_le32(n, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(n + 4, 1);
	hv_put_le32(n + 12, 12);
	uint64_t tid = nvsp_req(t, 0, n, 40);
	assert_true(no_comp(t, tid));
	still_serves(other);
	t_free(t);
	t_free(other);
}

/* The fault hooks a guest's hostile-host tests use. */
static void test_fault_hooks(void **state)
{
	(void)state;
	struct t *t = t_new(NULL);
	struct hvs_fault_param fp[2];
	static uint8_t f[100], m[200];

	assert_int_equal(chan_open(t, 0), 0);
	snprintf(fp[0].fp_name, sizeof(fp[0].fp_name), "field");
	fp[0].fp_value = 0;
	snprintf(fp[1].fp_name, sizeof(fp[1].fp_name), "value");
	fp[1].fp_value = NVSP_STAT_FAIL;
	assert_int_equal(hvs_fault_set("netvsp.init_comp", true, fp, 2, NULL), 0);
	assert_int_equal(nvsp_init(t, NVSP_PROTOCOL_VERSION_61, NULL), 1);
	hvs_fault_set("netvsp.init_comp", false, NULL, 0, NULL);
	nic_up(t, NVSP_PROTOCOL_VERSION_61);

	uint32_t flen = udp_frame(f, mac_bc, t->mac, 1, 2, 10, true);
	uint32_t mlen = pkt_msg(m, f, flen, NULL, 0);
	memcpy(fp_ptr(t->p, t->tx_gpa + t->sect), m, mlen);
	uint8_t n[40] = { 0 };
	hv_put_le32(n, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(n + 8, 1);
	hv_put_le32(n + 12, mlen);
	/* withhold, then duplicate a send completion */
	fp[0].fp_value = 0;
	assert_int_equal(hvs_fault_set("netvsp.tx_comp", true, fp, 1,
				       hvs_vmbus_name(t->s)), 0);
	uint64_t tid = nvsp_req(t, 0, n, 40);
	assert_true(no_comp(t, tid));
	fp[0].fp_value = 1;
	assert_int_equal(hvs_fault_set("netvsp.tx_comp", true, fp, 1, NULL), 0);
	tid = nvsp_req(t, 0, n, 40);
	struct hpkt h;
	take_comp(t, tid, &h);
	take_comp(t, tid, &h);
	hvs_fault_set("netvsp.tx_comp", false, NULL, 0, NULL);
	/* a corrupt transfer-page packet and RNDIS header */
	fp[0].fp_value = 0;
	fp[1].fp_value = 0xBEEF;
	assert_int_equal(hvs_fault_set("netvsp.xfer", true, fp, 2, NULL), 0);
	flen = udp_frame(f, mac_bc, mac_peer, 1, 2, 10, true);
	peer_send(t, f, flen, 0, 0);
	assert_true(take(t, &h, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 0, true));
	assert_int_equal(h.pageset, 0xBEEF);
	g_complete(t, &h, NVSP_STAT_SUCCESS);
	hvs_fault_set("netvsp.xfer", false, NULL, 0, NULL);
	fp[0].fp_value = 2;
	fp[1].fp_value = 0x7FFFFFFF;
	assert_int_equal(hvs_fault_set("netvsp.rndis_rx", true, fp, 2, NULL), 0);
	peer_send(t, f, flen, 0, 0);
	assert_true(take(t, &h, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 0, true));
	assert_int_equal(hv_get_le32(fp_ptr(t->p, t->rx_gpa + h.roff[0] + 12)),
			 0x7FFFFFFF);
	g_complete(t, &h, NVSP_STAT_FAIL);
	hvs_fault_set("netvsp.rndis_rx", false, NULL, 0, NULL);
	/* a control reply with an unknown request id */
	fp[0].fp_value = 0;
	fp[1].fp_value = 0x5150;
	assert_int_equal(hvs_fault_set("netvsp.rndis_ctrl", true, fp, 2, NULL), 0);
	uint8_t k[12], r[64];
	hv_put_le32(k, REMOTE_NDIS_KEEPALIVE_MSG);
	hv_put_le32(k + 4, 12);
	hv_put_le32(k + 8, 7);
	assert_int_equal(rndis_call(t, k, 12, r, sizeof(r)), 16);
	assert_int_equal(hv_get_le32(r + 8), 0x5150);
	hvs_fault_set("netvsp.rndis_ctrl", false, NULL, 0, NULL);
	/* buffers: a bad section count */
	fp[0].fp_value = 1;
	fp[1].fp_value = 2;
	assert_int_equal(hvs_fault_set("netvsp.recv_buf_comp", true, fp, 2,
				       NULL), 0);
	struct t *t2 = t_new(NULL);
	assert_int_equal(chan_open(t2, 0), 0);
	assert_int_equal(nvsp_init(t2, NVSP_PROTOCOL_VERSION_61, NULL), 0);
	uint64_t gpa = fp_alloc(t2->p, RXBUF_PAGES);
	uint32_t hnd = gpadl_make(t2, t2->relid, gpa, RXBUF_PAGES);
	memset(n, 0, sizeof(n));
	hv_put_le32(n, NVSP_MSG1_TYPE_SEND_RECV_BUF);
	hv_put_le32(n + 4, hnd);
	tid = nvsp_req(t2, 0, n, 40);
	take_comp(t2, tid, &h);
	assert_int_equal(hv_get_le32(h.data + 8), 2);
	hvs_fault_set("netvsp.recv_buf_comp", false, NULL, 0, NULL);
	t_free(t2);
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_versions, setup),
		cmocka_unit_test_setup(test_tx, setup),
		cmocka_unit_test_setup(test_jumbo, setup),
		cmocka_unit_test_setup(test_tx_offload, setup),
		cmocka_unit_test_setup(test_rx, setup),
		cmocka_unit_test_setup(test_rx_backpressure, setup),
		cmocka_unit_test_setup(test_link, setup),
		cmocka_unit_test_setup(test_vrss, setup),
		cmocka_unit_test_setup(test_revoke_reopen, setup),
		cmocka_unit_test_setup(test_mac_change, setup),
		cmocka_unit_test_setup(test_two_vms, setup),
		cmocka_unit_test_setup(test_hostile_nvsp, setup),
		cmocka_unit_test_setup(test_hostile_sections, setup),
		cmocka_unit_test_setup(test_hostile_rndis, setup),
		cmocka_unit_test_setup(test_hostile_gpa, setup),
		cmocka_unit_test_setup(test_hostile_completions, setup),
		cmocka_unit_test_setup(test_hostile_stalled_guest, setup),
		cmocka_unit_test_setup(test_hostile_teardown, setup),
		cmocka_unit_test_setup(test_hostile_huge_packet, setup),
		cmocka_unit_test_setup(test_fault_hooks, setup),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	hvs_loop_destroy(shared_loop);
	return r;
}
