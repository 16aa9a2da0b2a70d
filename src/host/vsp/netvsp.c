/*
 * host/vsp/netvsp.c - the NetVSC device's host half: NVSP negotiation,
 * the receive and send buffers, the data path both ways, vRSS queues
 * (spec/vmbus-devices.md section 1; RNDIS control is netvsp_rndis.c).
 *
 * Guest -> host: each ring packet is copied in once (hvs_chan_recv); an
 * NVSP message is copied into a zeroed private union before any field is
 * read. An RNDIS send gathers its bytes - the send-buffer section, then
 * the GPA-direct ranges - into the queue's private buffer through the
 * bounds-checked GPADL and GPA accessors only; every RNDIS length, offset
 * and per-packet-info record is checked against that copy. A send always
 * gets its completion (status FAIL / INVALID_RNDIS_PKT when it was bad).
 *
 * Host -> guest: one receive-buffer slot per RNDIS message, one
 * transfer-page packet per slot. The transaction id names the slot
 * (slot + 1 in the low half, the slot's generation in the high half), so
 * a completion for a slot the guest does not own, or a stale or duplicate
 * one, is recognised, logged and counted. Slots are bounded; control
 * replies have a reserve the data path cannot take. No room -> the back
 * end waits (hvs_net_rx_ready) instead of anything being overwritten.
 *
 * Threading: the loop thread only (server callbacks, back end callbacks).
 */
#define _GNU_SOURCE
#include "host/vsp/netvsp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/control.h"
#include "host/fault.h"
#include "host/loop.h"
#include "host/net/offload.h"
#include "host/vmbus_server.h"
#include "host/vsp/netvsp_priv.h"
#include "host/vsp/vsp.h"
#include "hv/guid.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/errno.h"

static const uint32_t nvsp_versions[] = {
	NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_2,
	NVSP_PROTOCOL_VERSION_4, NVSP_PROTOCOL_VERSION_5,
	NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_61,
};

static const char *const netvsp_hooks[][2] = {
	{ "netvsp.init_comp", "NVSP INIT_COMPLETE: field 0 status := value" },
	{ "netvsp.recv_buf_comp", "RECV_BUF_COMPLETE field (0 status, 1 "
	  "sections, 2 offset, 3 size, 4 count, 5 end) := value" },
	{ "netvsp.send_buf_comp", "SEND_BUF_COMPLETE field (0 status, 1 "
	  "section size) := value" },
	{ "netvsp.xfer", "transfer-page packet field (0 pageset id, 1 range "
	  "offset, 2 range count, 3 range_cnt) := value" },
	{ "netvsp.rndis_rx", "RNDIS data message field (0 msg_len, 1 "
	  "data_offset, 2 data_len, 3 ppi_offset, 4 ppi_len, 5 ppi size) := value" },
	{ "netvsp.rndis_ctrl", "RNDIS control reply field (0 request id, 1 "
	  "status, 2 info_buflen, 3 info_buf_offset, 4 msg_len) := value" },
	{ "netvsp.subchannel_comp", "SUBCHANNEL completion count := value" },
	{ "netvsp.indicate", "RNDIS INDICATE_STATUS field (0 status, 1 "
	  "status buffer length, 2 status buffer offset, 3 msg_len) := value; "
	  "`buflen` also sets the status buffer length" },
	{ "netvsp.tx_comp", "RNDIS send completion: field 0 withhold, 1 send "
	  "twice, 2 transaction id + value" },
};

/* ---- helpers -------------------------------------------------------------- */

void netvsp_bad(struct hvs_netvsp *nic, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	hvs_log_guest(&nic->nd_rl, &nic->nd_guest_errors, nic->nd_vm,
		      "netvsp: %s: %s", nic->nd_name, buf);
}

bool netvsp_fault(struct hvs_netvsp *nic, const char *hook,
		  struct hvs_fault_args *fa)
{
	return hvs_fault_check_vm(hook, nic->nd_vm, fa);
}

static uint32_t nvsp_max_type(uint32_t ver)
{
	if (ver >= NVSP_PROTOCOL_VERSION_61)
		return NVSP_MSG61_MAX_TYPE;
	if (ver >= NVSP_PROTOCOL_VERSION_5)
		return NVSP_MSG5_MAX_TYPE; /* 6 too (V: a legacy client) */
	if (ver >= NVSP_PROTOCOL_VERSION_4)
		return NVSP_MSG4_MAX_TYPE;
	if (ver >= NVSP_PROTOCOL_VERSION_2)
		return NVSP_MSG2_MAX_TYPE;
	return NVSP_MSG1_MAX_TYPE;
}

/* Host -> guest NVSP message size: 28 bytes before 6.1, 40 from 6.1. */
static uint32_t nvsp_len(const struct hvs_netvsp *nic)
{
	return nic->se_nvsp >= NVSP_PROTOCOL_VERSION_61 ? NVSP_MSG_SIZE_V61
							: NVSP_MSG_SIZE_V1;
}

/* Reserved bytes [from, to) of a received message: counted, never fatal
 * (spec/hostile-host.md item 10). */
static void check_rsvd(struct hvs_netvsp *nic, const uint8_t *p, uint32_t from,
		       uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		if (p[i] != 0) {
			nic->nd_st.ns_rsvd_nonzero++;
			HVS_DEBUG(nic->nd_vm, "netvsp: %s: reserved byte %u of "
				  "type %u is 0x%02x", nic->nd_name, i,
				  hv_get_le32(p), p[i]);
			return;
		}
	}
}

/* ---- receive slots -------------------------------------------------------- */

static void slots_free_all(struct hvs_netvsp *nic)
{
	free(nic->se_free);
	free(nic->se_slots);
	nic->se_free = NULL;
	nic->se_slots = NULL;
	nic->se_nslots = nic->se_nfree = nic->se_slot_size = 0;
	for (unsigned i = 0; i < HVS_NET_MAX_QUEUES; i++)
		if (nic->nd_q[i] != NULL)
			nic->nd_q[i]->q_inflight = 0;
}

static int slots_init(struct hvs_netvsp *nic, uint32_t n, uint32_t size)
{
	nic->se_free = calloc(n, sizeof(*nic->se_free));
	nic->se_slots = calloc(n, sizeof(*nic->se_slots));
	if (nic->se_free == NULL || nic->se_slots == NULL) {
		slots_free_all(nic);
		return -VMBUS_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		nic->se_free[i] = n - 1 - i; /* slot 0 first */
	nic->se_nslots = nic->se_nfree = n;
	nic->se_slot_size = size;
	return 0;
}

/* A free slot, or -1. Data may not take the control reserve. */
static int64_t slot_alloc(struct hvs_netvsp *nic, bool ctrl)
{
	if (nic->se_nfree == 0 ||
	    (!ctrl && nic->se_nfree <= NETVSP_RX_CTRL_RESERVE))
		return -1;
	uint32_t s = nic->se_free[--nic->se_nfree];
	nic->se_slots[s].sl_busy = 1;
	nic->se_slots[s].sl_gen++;
	return s;
}

static void slot_release(struct hvs_netvsp *nic, uint32_t s)
{
	struct netvsp_slot *sl = &nic->se_slots[s];
	if (!sl->sl_busy)
		return;
	sl->sl_busy = 0;
	nic->se_free[nic->se_nfree++] = s;
}

/* ---- session ---------------------------------------------------------------- */

void netvsp_session_init(struct hvs_netvsp *nic)
{
	slots_free_all(nic);
	nic->se_nvsp = 0;
	nic->se_ndis = 0;
	nic->se_ndis_config = false;
	nic->se_frame_max = NVSP_NDIS_CONFIG_MTU_DEFAULT < nic->nd_host_frame_max
				    ? NVSP_NDIS_CONFIG_MTU_DEFAULT
				    : nic->nd_host_frame_max;
	nic->se_caps = 0;
	nic->se_rx_ok = false;
	nic->se_rx_gpadl = 0;
	nic->se_rx_id = 0;
	nic->se_tx_ok = false;
	nic->se_tx_gpadl = 0;
	nic->se_tx_id = 0;
	nic->se_sect_size = nic->se_nsect = 0;
	nic->se_rndis_up = false;
	nic->se_filter = 0;
	memcpy(nic->se_mac, nic->nd_perm_mac, 6);
	nic->se_nmcast = 0;
	memset(&nic->se_ofl, 0, sizeof(nic->se_ofl));
	nic->se_nsubch = 0;
	nic->se_rss = false;
	nic->se_rss_types = 0;
	nic->se_rss_n = 0;
	nic->se_rss_keylen = 0;
	nic->se_ctrl_head = nic->se_ctrl_n = 0;
}

/* Give the GPADLs back (ch: the primary, still open), then reset. */
static void session_release(struct hvs_netvsp *nic, struct hvs_channel *ch)
{
	if (nic->se_rx_ok)
		hvs_chan_gpadl_put(ch, nic->se_rx_gpadl);
	if (nic->se_tx_ok)
		hvs_chan_gpadl_put(ch, nic->se_tx_gpadl);
	netvsp_session_init(nic);
}

/* The back end waits for room: let it try again. */
void netvsp_rx_kick(struct hvs_netvsp *nic)
{
	if (!nic->nd_rx_waiting)
		return;
	nic->nd_rx_waiting = false;
	hvs_net_rx_ready(nic->nd_ep);
}

/* ---- sending to the guest ------------------------------------------------------ */

/* Send now, or keep the packet until the ring has room (it is then the
 * next thing this queue sends). */
static int q_send(struct netvsp_queue *q, uint16_t type, uint16_t flags,
		  uint64_t tid, const void *msg, uint32_t len)
{
	if (q->q_nout == 0) {
		int r = hvs_chan_send(q->q_ch, type, flags, tid, msg, len);
		if (r != -VMBUS_EAGAIN)
			return r;
	}
	if (q->q_nout >= NETVSP_OUTBOX || len > NETVSP_OUTBOX_MSG) {
		HVS_WARN(q->q_nic->nd_vm, "netvsp: %s: outbox full, packet "
			 "type %u dropped", q->q_nic->nd_name, type);
		return -VMBUS_ENOBUFS;
	}
	struct netvsp_out *o = &q->q_out[q->q_nout++];
	o->no_type = type;
	o->no_flags = flags;
	o->no_tid = tid;
	o->no_len = len;
	if (len > 0)
		memcpy(o->no_buf, msg, len);
	return 0;
}

/* Send what waits. false: still blocked (or the channel is gone). */
static bool q_flush(struct netvsp_queue *q)
{
	while (q->q_nout > 0) {
		struct netvsp_out *o = &q->q_out[0];
		int r = hvs_chan_send(q->q_ch, o->no_type, o->no_flags,
				      o->no_tid, o->no_buf, o->no_len);
		if (r == -VMBUS_EAGAIN)
			return false;
		if (r == -VMBUS_EPROTO || r == -VMBUS_ENODEV) {
			q->q_nout = 0;
			return false;
		}
		memmove(&q->q_out[0], &q->q_out[1],
			(q->q_nout - 1) * sizeof(q->q_out[0]));
		q->q_nout--;
	}
	return true;
}

/* Completion for pk if the guest asked for one. */
static void q_complete(struct netvsp_queue *q, const struct hvs_pkt *pk,
		       const void *msg, uint32_t len)
{
	if (!(pk->pk_flags & VMBUS_PACKET_FLAG_COMPLETION_REQUESTED))
		return;
	q_send(q, VMBUS_PACKET_TYPE_COMP, 0, pk->pk_trans_id, msg, len);
}

static void q_complete_rndis(struct netvsp_queue *q, const struct hvs_pkt *pk,
			     uint32_t status)
{
	struct hvs_netvsp *nic = q->q_nic;
	struct nvsp_send_rndis_pkt_complete c;
	struct hvs_fault_args fa;
	uint64_t tid = pk->pk_trans_id;
	int copies = 1;

	if (!(pk->pk_flags & VMBUS_PACKET_FLAG_COMPLETION_REQUESTED))
		return;
	memset(&c, 0, sizeof(c));
	c.npc_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
	c.npc_status = hv_cpu_to_le32(status);
	if (netvsp_fault(nic, "netvsp.tx_comp", &fa)) {
		int64_t field = hvs_fault_param(&fa, "field", 0);
		if (field == 0)
			return; /* withheld */
		if (field == 1)
			copies = 2;
		if (field == 2)
			tid += (uint64_t)hvs_fault_param(&fa, "value", 1);
	}
	for (int i = 0; i < copies; i++)
		q_send(q, VMBUS_PACKET_TYPE_COMP, 0, tid, &c, nvsp_len(nic));
	nic->nd_st.ns_tx_completions++;
}

/*
 * Put one RNDIS message (hdr, then data) into a free receive slot and tell
 * the guest with a transfer-page packet on q. ctrl: a control message
 * (may use the reserve). Returns 0, -EAGAIN (no slot / ring full: nothing
 * sent), or another negative code (dropped).
 */
static int rx_post(struct hvs_netvsp *nic, struct netvsp_queue *q,
		   uint8_t *hdr, uint32_t hlen, const uint8_t *data,
		   uint32_t dlen, bool ctrl)
{
	struct hvs_fault_args fa;
	uint8_t pkt[sizeof(struct vmbus_xfer_page_hdr) +
		    sizeof(struct vmbus_xfer_page_range) + NVSP_MSG_SIZE_V61];

	if (hlen + dlen > nic->se_slot_size)
		return -VMBUS_EMSGSIZE;
	int64_t s = slot_alloc(nic, ctrl);
	if (s < 0)
		return -VMBUS_EAGAIN;
	uint32_t slot = (uint32_t)s;
	uint32_t off = slot * nic->se_slot_size;

	if (!ctrl && netvsp_fault(nic, "netvsp.rndis_rx", &fa)) {
		static const uint32_t at[] = { 4, 8, 12, 28, 32 };
		int64_t field = hvs_fault_param(&fa, "field", 0);
		uint32_t v = (uint32_t)hvs_fault_param(&fa, "value", 0xFFFFFFF0);
		if (field >= 0 && field < 5)
			hv_put_le32(hdr + at[field], v);
		else if (field == 5 && hlen >= RNDIS_PACKET_MSG_SIZE + 4)
			hv_put_le32(hdr + RNDIS_PACKET_MSG_SIZE, v);
	}
	int r = hvs_chan_gpadl_write(nic->nd_primary, nic->se_rx_gpadl, off,
				     hdr, hlen);
	if (r == 0 && dlen > 0)
		r = hvs_chan_gpadl_write(nic->nd_primary, nic->se_rx_gpadl,
					 off + hlen, data, dlen);
	if (r < 0) {
		slot_release(nic, slot);
		HVS_WARN(nic->nd_vm, "netvsp: %s: receive buffer write "
			 "failed: %d", nic->nd_name, r);
		return r;
	}

	uint32_t nlen = VMBUS_PACKET_ROUNDUP(nvsp_len(nic));
	uint32_t total = 32u + nlen;
	uint64_t tid = ((uint64_t)nic->se_slots[slot].sl_gen << 32) |
		       (uint64_t)(slot + 1);
	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt + 0, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES);
	hv_put_le16(pkt + 2, 32u / 8u);
	hv_put_le16(pkt + 4, (uint16_t)(total / 8u));
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, tid);
	hv_put_le16(pkt + 16, nic->se_rx_id);
	hv_put_le32(pkt + 20, 1);			/* range_cnt */
	hv_put_le32(pkt + 24, hlen + dlen);		/* byte_count */
	hv_put_le32(pkt + 28, off);			/* byte_offset */
	hv_put_le32(pkt + 32, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(pkt + 36, ctrl ? NVSP_RNDIS_CHANNEL_TYPE_CONTROL
				   : NVSP_RNDIS_CHANNEL_TYPE_DATA);
	hv_put_le32(pkt + 40, NVSP_SEND_BUF_SECTION_NONE);
	if (netvsp_fault(nic, "netvsp.xfer", &fa)) {
		static const uint32_t at[] = { 16, 28, 24, 20 };
		int64_t field = hvs_fault_param(&fa, "field", 1);
		uint32_t v = (uint32_t)hvs_fault_param(&fa, "value", 0xFFFFF000);
		if (field == 0)
			hv_put_le16(pkt + 16, (uint16_t)v);
		else if (field > 0 && field < 4)
			hv_put_le32(pkt + at[field], v);
	}
	struct vmbus_iov iov = { .iov_base = pkt, .iov_len = total };
	r = hvs_chan_send_raw(q->q_ch, &iov, 1);
	if (r < 0) {
		slot_release(nic, slot);
		if (r == -VMBUS_EAGAIN)
			q->q_rx_blocked = true;
		return r;
	}
	nic->se_slots[slot].sl_queue = q->q_index;
	q->q_inflight++;
	return 0;
}

/* ---- control messages to the guest ----------------------------------------------- */

static int ctrl_post(struct hvs_netvsp *nic, uint8_t *msg, uint32_t len)
{
	struct netvsp_queue *q = nic->nd_q[0];
	if (q == NULL || !nic->se_rx_ok || nic->nd_primary == NULL)
		return -VMBUS_ENODEV;
	return rx_post(nic, q, msg, len, NULL, 0, true);
}

void netvsp_ctrl_send(struct hvs_netvsp *nic, const void *msg, uint32_t len)
{
	if (len > NETVSP_CTRL_MAX) {
		HVS_WARN(nic->nd_vm, "netvsp: %s: control message of %u "
			 "bytes dropped", nic->nd_name, len);
		nic->nd_st.ns_ctrl_dropped++;
		return;
	}
	if (!nic->se_rx_ok || nic->nd_primary == NULL) {
		nic->nd_st.ns_ctrl_dropped++;
		netvsp_bad(nic, "RNDIS control before the receive buffer: "
			   "no way to answer");
		return;
	}
	struct netvsp_ctrl *c;
	if (nic->se_ctrl_n == 0) {
		uint8_t tmp[NETVSP_CTRL_MAX];
		memcpy(tmp, msg, len);
		int r = ctrl_post(nic, tmp, len);
		if (r == 0)
			return;
		if (r != -VMBUS_EAGAIN) {
			nic->nd_st.ns_ctrl_dropped++;
			return;
		}
	}
	if (nic->se_ctrl_n >= NETVSP_CTRL_QUEUE) {
		nic->nd_st.ns_ctrl_dropped++;
		netvsp_bad(nic, "guest does not consume control replies: "
			   "reply dropped");
		return;
	}
	c = &nic->se_ctrl[(nic->se_ctrl_head + nic->se_ctrl_n) %
			  NETVSP_CTRL_QUEUE];
	memcpy(c->nc_buf, msg, len);
	c->nc_len = len;
	nic->se_ctrl_n++;
}

static void ctrl_flush(struct hvs_netvsp *nic)
{
	while (nic->se_ctrl_n > 0) {
		struct netvsp_ctrl *c = &nic->se_ctrl[nic->se_ctrl_head];
		int r = ctrl_post(nic, c->nc_buf, c->nc_len);
		if (r == -VMBUS_EAGAIN)
			return;
		if (r < 0)
			nic->nd_st.ns_ctrl_dropped++;
		nic->se_ctrl_head = (nic->se_ctrl_head + 1) % NETVSP_CTRL_QUEUE;
		nic->se_ctrl_n--;
	}
}

static void indicate(struct hvs_netvsp *nic, uint32_t status)
{
	struct hvs_fault_args fa;
	struct rndis_status_msg m;
	memset(&m, 0, sizeof(m));
	m.rm_type = hv_cpu_to_le32(REMOTE_NDIS_INDICATE_STATUS_MSG);
	m.rm_len = hv_cpu_to_le32(sizeof(m));
	m.rm_status = hv_cpu_to_le32(status);
	if (netvsp_fault(nic, "netvsp.indicate", &fa)) {
		uint32_t v = (uint32_t)hvs_fault_param(&fa, "value", 0xDEADBEEF);
		uint32_t *f[] = { &m.rm_status, &m.rm_stbuflen,
				  &m.rm_stbufoffset, &m.rm_len };
		int64_t k = hvs_fault_param(&fa, "field", 1);

		if (k >= 0 && k < 4) {
			HVS_INFO(nic->nd_vm, "fault netvsp.indicate: %s: status "
				 "0x%x field %lld := %u", nic->nd_name, status,
				 (long long)k, v);
			*f[k] = hv_cpu_to_le32(v);
		}
		int64_t bl = hvs_fault_param(&fa, "buflen", -1);
		if (bl >= 0 && bl <= UINT32_MAX)
			m.rm_stbuflen = hv_cpu_to_le32((uint32_t)bl);
	}
	netvsp_ctrl_send(nic, &m, sizeof(m));
}

void netvsp_send_indirection(struct hvs_netvsp *nic)
{
	uint8_t m[NVSP_INDIRECTION_TABLE_MSGLEN_V];
	struct netvsp_queue *q = nic->nd_q[0];

	if (q == NULL || nic->se_nvsp < NVSP_PROTOCOL_VERSION_5 ||
	    nic->se_nsubch == 0)
		return;
	/* V's layout: the table right after the 12-byte header (spec 1.4) */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE);
	hv_put_le32(m + 4, NVSP_INDIRECTION_TABLE_COUNT);
	hv_put_le32(m + 8, NVSP_INDIRECTION_TABLE_OFFSET_V);
	for (uint32_t i = 0; i < NVSP_INDIRECTION_TABLE_COUNT; i++)
		hv_put_le32(m + 12 + 4 * i, i % (nic->se_nsubch + 1));
	q_send(q, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 0, m, sizeof(m));
}

/* ---- receive: network -> guest ----------------------------------------------------- */

static bool filter_pass(const struct hvs_netvsp *nic, const uint8_t *dst)
{
	uint32_t f = nic->se_filter;
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (f & NDIS_PACKET_TYPE_PROMISCUOUS)
		return true;
	if (!memcmp(dst, bcast, 6))
		return (f & NDIS_PACKET_TYPE_BROADCAST) != 0;
	if (dst[0] & 1) {
		if (f & NDIS_PACKET_TYPE_ALL_MULTICAST)
			return true;
		if (!(f & NDIS_PACKET_TYPE_MULTICAST))
			return false;
		for (uint32_t i = 0; i < nic->se_nmcast; i++)
			if (!memcmp(dst, nic->se_mcast[i], 6))
				return true;
		return false;
	}
	return (f & NDIS_PACKET_TYPE_DIRECTED) && !memcmp(dst, nic->se_mac, 6);
}

static uint8_t *put_ppi(uint8_t *p, uint32_t type, uint32_t value)
{
	hv_put_le32(p, RNDIS_PKTINFO_SIZE_U32);
	hv_put_le32(p + 4, type);
	hv_put_le32(p + 8, RNDIS_PKTINFO_OFFSET);
	hv_put_le32(p + 12, value);
	return p + RNDIS_PKTINFO_SIZE_U32;
}

static int nic_rx(void *arg, const struct hvs_net_frame *f)
{
	struct hvs_netvsp *nic = arg;
	uint8_t hdr[NETVSP_RX_HDR_ROOM];
	uint8_t *p = hdr + RNDIS_PACKET_MSG_SIZE;
	uint32_t qi = 0;

	if (!nic->nd_link_up) {
		nic->nd_st.ns_rx_dropped++;
		return 0;
	}
	if (nic->nd_primary == NULL || !nic->se_rx_ok || !nic->se_rndis_up ||
	    nic->se_filter == 0) {
		/* Not receiving (yet): like a NIC with no buffers posted. The
		 * back end waits (a generator idles, a TAP stops being read)
		 * until the guest's filter opens the interface. */
		nic->nd_rx_waiting = true;
		nic->nd_st.ns_rx_not_ready++;
		return -EAGAIN;
	}
	if (f->nf_len < HVS_NET_ETH_HLEN || f->nf_len > nic->se_frame_max) {
		nic->nd_st.ns_rx_dropped++;
		return 0;
	}
	if (!filter_pass(nic, f->nf_data)) {
		nic->nd_st.ns_rx_filtered++;
		return 0;
	}
	if (f->nf_tci != 0) {
		uint32_t vid = f->nf_tci & 0x0FFFu, pri = f->nf_tci >> 13u;
		uint32_t cfi = (f->nf_tci >> 12) & 1u;
		p = put_ppi(p, NDIS_PKTINFO_TYPE_VLAN,
			    NDIS_VLAN_INFO_MAKE(vid, pri, cfi));
	}
	if (f->nf_flags & HVS_NF_CSUM_OK) {
		struct hvs_pkt_info pi;
		uint32_t cs = 0;
		if (hvs_pkt_classify(f->nf_data, f->nf_len, &pi) == 0 &&
		    pi.pi_l3off != 0) {
			if (pi.pi_ethertype == HVS_ETHERTYPE_IPV4)
				cs |= NDIS_RXCSUM_INFO_IPCS_OK;
			if (pi.pi_l4off != 0 && pi.pi_l4proto == HVS_IPPROTO_TCP)
				cs |= NDIS_RXCSUM_INFO_TCPCS_OK;
			if (pi.pi_l4off != 0 && pi.pi_l4proto == HVS_IPPROTO_UDP)
				cs |= NDIS_RXCSUM_INFO_UDPCS_OK;
		}
		if (cs != 0)
			p = put_ppi(p, NDIS_PKTINFO_TYPE_CSUM, cs);
	}
	if (nic->se_rss && nic->se_rss_n > 0) {
		uint32_t hash, type;
		if (hvs_rss_hash(f->nf_data, f->nf_len, nic->se_rss_key,
				 nic->se_rss_keylen, nic->se_rss_types, &hash,
				 &type) == 0) {
			uint32_t e = nic->se_rss_table[hash % nic->se_rss_n];
			if (e < HVS_NET_MAX_QUEUES && nic->nd_q[e] != NULL)
				qi = e;
			p = put_ppi(p, NDIS_PKTINFO_TYPE_HASHVAL, hash);
			p = put_ppi(p, NDIS_PKTINFO_TYPE_HASHINF,
				    NDIS_HASH_FUNCTION_TOEPLITZ | type);
		}
	}
	uint32_t ppi = (uint32_t)(p - hdr) - RNDIS_PACKET_MSG_SIZE;
	uint32_t hlen = RNDIS_PACKET_MSG_SIZE + ppi;
	memset(hdr, 0, RNDIS_PACKET_MSG_SIZE);
	hv_put_le32(hdr + 0, REMOTE_NDIS_PACKET_MSG);
	hv_put_le32(hdr + 4, hlen + f->nf_len);
	hv_put_le32(hdr + 8, RNDIS_PACKET_MSG_OFFSET_MIN + ppi);
	hv_put_le32(hdr + 12, f->nf_len);
	hv_put_le32(hdr + 28, ppi != 0 ? RNDIS_PACKET_MSG_OFFSET_MIN : 0);
	hv_put_le32(hdr + 32, ppi);

	struct netvsp_queue *q = nic->nd_q[qi];
	if (q == NULL) {
		nic->nd_st.ns_rx_dropped++;
		return 0;
	}
	int r = rx_post(nic, q, hdr, hlen, f->nf_data, f->nf_len, false);
	if (r == -VMBUS_EAGAIN) {
		nic->nd_rx_waiting = true;
		nic->nd_st.ns_rx_deferred++;
		return -EAGAIN;
	}
	if (r < 0) {
		nic->nd_st.ns_rx_dropped++;
		return 0;
	}
	nic->nd_st.ns_rx_frames++;
	nic->nd_st.ns_rx_bytes += f->nf_len;
	return 0;
}

static void nic_link(void *arg, bool up)
{
	hvs_netvsp_set_link(arg, up);
}

static const struct hvs_net_nic_ops nic_ops = {
	.no_rx = nic_rx,
	.no_link = nic_link,
};

/* ---- transmit: guest -> network ----------------------------------------------------- */

static void tx_frame(struct hvs_netvsp *nic, const uint8_t *data, uint32_t len,
		     uint16_t tci, uint16_t flags)
{
	struct hvs_net_frame f = { .nf_data = data, .nf_len = len,
				   .nf_tci = tci, .nf_flags = flags };

	if (!nic->nd_link_up || hvs_net_send(nic->nd_ep, &f) < 0) {
		nic->nd_st.ns_tx_dropped++;
		return;
	}
	nic->nd_st.ns_tx_frames++;
	nic->nd_st.ns_tx_bytes += len;
}

struct lso_ctx {
	struct hvs_netvsp *lc_nic;
	uint16_t lc_tci;
};

static int lso_emit(void *arg, const uint8_t *seg, uint32_t len)
{
	struct lso_ctx *c = arg;
	c->lc_nic->nd_st.ns_tx_lso_segments++;
	tx_frame(c->lc_nic, seg, len, c->lc_tci, HVS_NF_CSUM_OK);
	return 0;
}

/*
 * One RNDIS PACKET_MSG at msg[0..mlen) (mlen >= 44 checked), in the
 * queue's private buffer: validate, apply the offloads it asks for, send.
 * Returns 0, or -1 when the message was malformed (dropped, counted).
 */
static int tx_one(struct hvs_netvsp *nic, uint8_t *msg, uint32_t mlen)
{
	uint32_t doff = hv_get_le32(msg + 8), dlen = hv_get_le32(msg + 12);
	uint32_t poff = hv_get_le32(msg + 28), plen = hv_get_le32(msg + 32);
	uint32_t csum = 0, lso = 0, vlan = 0;
	bool have_csum = false, have_lso = false, have_vlan = false;

	/* All offsets count from byte 8 (spec 2.2); data and PPIs must lie
	 * after the 44-byte header and inside the message. */
	uint64_t dabs = (uint64_t)RNDIS_HEADER_SIZE + doff;
	if (dabs < RNDIS_PACKET_MSG_SIZE || dabs > mlen || dlen > mlen - dabs) {
		netvsp_bad(nic, "RNDIS data offset %u length %u outside a "
			   "message of %u bytes", doff, dlen, mlen);
		return -1;
	}
	if (plen != 0) {
		uint64_t pabs = (uint64_t)RNDIS_HEADER_SIZE + poff;
		if (pabs < RNDIS_PACKET_MSG_SIZE || pabs > mlen ||
		    plen > mlen - pabs) {
			netvsp_bad(nic, "RNDIS PPI offset %u length %u outside "
				   "a message of %u bytes", poff, plen, mlen);
			return -1;
		}
		uint32_t p = (uint32_t)pabs, end = (uint32_t)pabs + plen;
		unsigned n = 0;
		while (p < end) {
			if (end - p < sizeof(struct rndis_pktinfo)) {
				netvsp_bad(nic, "RNDIS PPI list ends inside a "
					   "record header");
				return -1;
			}
			uint32_t size = hv_get_le32(msg + p);
			uint32_t type = hv_get_le32(msg + p + 4);
			uint32_t off = hv_get_le32(msg + p + 8);
			if (size < sizeof(struct rndis_pktinfo) ||
			    size > end - p || off < sizeof(struct rndis_pktinfo) ||
			    off > size) {
				netvsp_bad(nic, "RNDIS PPI record size %u offset "
					   "%u invalid (%u bytes left)", size,
					   off, end - p);
				return -1;
			}
			if (++n > NETVSP_PPI_MAX) {
				netvsp_bad(nic, "more than %u PPI records",
					   NETVSP_PPI_MAX);
				return -1;
			}
			const uint8_t *v = msg + p + off;
			uint32_t vlen = size - off;
			bool want32 = type == NDIS_PKTINFO_TYPE_CSUM ||
				      type == NDIS_PKTINFO_TYPE_LSO ||
				      type == NDIS_PKTINFO_TYPE_VLAN;
			if (want32 && vlen < 4) {
				netvsp_bad(nic, "RNDIS PPI type %u of %u bytes",
					   type, vlen);
				return -1;
			}
			if (type == NDIS_PKTINFO_TYPE_CSUM) {
				csum = hv_get_le32(v);
				have_csum = true;
			} else if (type == NDIS_PKTINFO_TYPE_LSO) {
				lso = hv_get_le32(v);
				have_lso = true;
			} else if (type == NDIS_PKTINFO_TYPE_VLAN) {
				vlan = hv_get_le32(v);
				have_vlan = true;
			}
			/* others (hash value, internal ids): not for us */
			p += size;
		}
	}
	for (unsigned i = 16; i < 28; i++) /* out-of-band data: unused */
		if (msg[i] != 0) {
			nic->nd_st.ns_rsvd_nonzero++;
			break;
		}
	if (hv_get_le32(msg + 36) != 0 || hv_get_le32(msg + 40) != 0)
		nic->nd_st.ns_rsvd_nonzero++;

	uint8_t *frame = msg + dabs;
	uint32_t flen = dlen;
	uint16_t tci = 0;
	if (flen < HVS_NET_ETH_HLEN) {
		netvsp_bad(nic, "frame of %u bytes", flen);
		return -1;
	}
	if (have_vlan) {
		uint32_t vid = NDIS_VLAN_INFO_ID(vlan), pri = NDIS_VLAN_INFO_PRI(vlan);
		tci = (uint16_t)(pri << 13 | ((vlan & NDIS_VLAN_INFO_CFI) ? 1u << 12 : 0u) |
				 vid);
	} else {
		/* a tag left in the frame travels out of band, as NetVSC's */
		hvs_net_frame_untag(frame, &flen, &tci);
	}

	uint32_t mss = lso & NDIS_LSO_INFO_MSS_MASK;
	if (have_lso && mss != 0) {
		uint32_t thoff = (lso & NDIS_LSO_INFO_THOFF_MASK) >>
				 NDIS_LSO_INFO_THOFF_SHIFT;
		bool v6 = (lso & NDIS_LSO2_INFO_IPV6) != 0;
		struct lso_ctx c = { .lc_nic = nic, .lc_tci = tci };
		if (flen > NETVSP_LSO_MAX + 128u) {
			netvsp_bad(nic, "LSO send of %u bytes", flen);
			nic->nd_st.ns_tx_dropped++;
			return -1;
		}
		int r = hvs_lso_segment(frame, flen, v6, thoff, mss,
					nic->se_frame_max, nic->nd_seg,
					lso_emit, &c);
		if (r < 0) {
			netvsp_bad(nic, "LSO send refused (%u bytes, mss %u, "
				   "TCP at %u)", flen, mss, thoff);
			nic->nd_st.ns_tx_dropped++;
			return -1;
		}
		nic->nd_st.ns_tx_lso++;
		return 0;
	}
	if (flen > nic->se_frame_max) {
		netvsp_bad(nic, "frame of %u bytes exceeds %u", flen,
			   nic->se_frame_max);
		nic->nd_st.ns_tx_dropped++;
		return -1;
	}
	uint16_t flags = 0;
	unsigned want = 0;
	if (have_csum) {
		if (csum & NDIS_TXCSUM_INFO_IPV4)
			want |= HVS_CSUM_IPV4;
		if (csum & NDIS_TXCSUM_INFO_IPV6)
			want |= HVS_CSUM_IPV6;
		if (csum & NDIS_TXCSUM_INFO_TCPCS)
			want |= HVS_CSUM_TCP;
		if (csum & NDIS_TXCSUM_INFO_UDPCS)
			want |= HVS_CSUM_UDP;
		if (csum & NDIS_TXCSUM_INFO_IPCS)
			want |= HVS_CSUM_IPHDR;
	}
	if (want & (HVS_CSUM_TCP | HVS_CSUM_UDP | HVS_CSUM_IPHDR)) {
		uint32_t thoff = (csum & NDIS_TXCSUM_INFO_THOFF_MASK) >>
				 NDIS_TXCSUM_INFO_THOFF_SHIFT;
		if (hvs_csum_offload(frame, flen, want, thoff) < 0) {
			netvsp_bad(nic, "checksum offload 0x%x refused for a "
				   "frame of %u bytes", csum, flen);
			nic->nd_st.ns_tx_dropped++;
			return -1;
		}
		nic->nd_st.ns_tx_csum++;
		flags = HVS_NF_CSUM_OK;
	}
	tx_frame(nic, frame, flen, tci, flags);
	return 0;
}

/* Data: one or more PACKET_MSGs (batched ones padded, spec 1.7). */
static uint32_t rndis_data(struct hvs_netvsp *nic, uint8_t *buf, uint32_t len)
{
	uint32_t off = 0, status = NVSP_STAT_SUCCESS;
	unsigned n = 0;

	while (off < len) {
		uint32_t rem = len - off;
		if (rem < RNDIS_HEADER_SIZE) {
			for (uint32_t i = off; i < len; i++)
				if (buf[i] != 0)
					goto bad_tail;
			break;
		}
		uint32_t type = hv_get_le32(buf + off);
		uint32_t mlen = hv_get_le32(buf + off + 4);
		if (type == 0 && mlen == 0) {
			/* zero padding after the last message */
			for (uint32_t i = off; i < len; i++)
				if (buf[i] != 0)
					goto bad_tail;
			break;
		}
		if (type != REMOTE_NDIS_PACKET_MSG ||
		    mlen < RNDIS_PACKET_MSG_SIZE || mlen > rem) {
			netvsp_bad(nic, "RNDIS message %u: type 0x%x length %u "
				   "(%u bytes left)", n, type, mlen, rem);
			nic->nd_st.ns_tx_dropped++;
			return NVSP_STAT_INVALID_RNDIS_PKT;
		}
		if (++n > NETVSP_TX_MAX_PKTS) {
			netvsp_bad(nic, "more than %u RNDIS packets in one send",
				   NETVSP_TX_MAX_PKTS);
			return NVSP_STAT_INVALID_RNDIS_PKT;
		}
		if (tx_one(nic, buf + off, mlen) < 0)
			status = NVSP_STAT_INVALID_RNDIS_PKT;
		off += mlen;
	}
	return status;
bad_tail:
	netvsp_bad(nic, "%u stray bytes after the last RNDIS message",
		   len - off);
	return NVSP_STAT_INVALID_RNDIS_PKT;
}

/* NVSP SEND_RNDIS_PKT (107): gather the RNDIS bytes, process, complete. */
static void nvsp_rndis_pkt(struct netvsp_queue *q, const struct hvs_pkt *pk,
			   const union nvsp_msg *m, uint32_t len)
{
	struct hvs_netvsp *nic = q->q_nic;
	uint32_t status = NVSP_STAT_FAIL, total = 0;

	if (len < 16) {
		netvsp_bad(nic, "SEND_RNDIS_PKT of %u bytes", len);
		goto done;
	}
	uint32_t ctype = hv_le32(m->nm_rndis_pkt.np_channel_type);
	uint32_t idx = hv_le32(m->nm_rndis_pkt.np_send_buf_section_index);
	uint32_t size = hv_le32(m->nm_rndis_pkt.np_send_buf_section_size);
	if (idx != NVSP_SEND_BUF_SECTION_NONE) {
		if (!nic->se_tx_ok || nic->nd_primary == NULL) {
			netvsp_bad(nic, "send section %u without a send buffer",
				   idx);
			goto done;
		}
		if (idx >= nic->se_nsect || size == 0 ||
		    size > nic->se_sect_size) {
			netvsp_bad(nic, "send section %u size %u (buffer: %u "
				   "sections of %u)", idx, size, nic->se_nsect,
				   nic->se_sect_size);
			goto done;
		}
		int r = hvs_chan_gpadl_read(nic->nd_primary, nic->se_tx_gpadl,
					    (uint64_t)idx * nic->se_sect_size,
					    q->q_tx, size);
		if (r < 0) {
			netvsp_bad(nic, "send section %u unreadable: %d", idx, r);
			goto done;
		}
		total = size;
	} else if (size != 0) {
		nic->nd_st.ns_rsvd_nonzero++;
	}
	if (pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
		if (pk->pk_gpa_bytes > NETVSP_TX_MAX - total) {
			netvsp_bad(nic, "send of %llu GPA-direct bytes",
				   (unsigned long long)pk->pk_gpa_bytes);
			goto done;
		}
		int r = hvs_pkt_gpa_read(q->q_ch, pk, 0, q->q_tx + total,
					 (uint32_t)pk->pk_gpa_bytes);
		if (r < 0) {
			netvsp_bad(nic, "GPA-direct send unreadable: %d", r);
			goto done;
		}
		total += (uint32_t)pk->pk_gpa_bytes;
	}
	if (total < RNDIS_HEADER_SIZE) {
		netvsp_bad(nic, "RNDIS send of %u bytes", total);
		status = NVSP_STAT_INVALID_RNDIS_PKT;
		goto done;
	}
	if (hv_get_le32(q->q_tx) == REMOTE_NDIS_PACKET_MSG) {
		if (ctype != NVSP_RNDIS_CHANNEL_TYPE_DATA)
			nic->nd_st.ns_rsvd_nonzero++;
		status = rndis_data(nic, q->q_tx, total);
	} else {
		if (ctype != NVSP_RNDIS_CHANNEL_TYPE_CONTROL)
			nic->nd_st.ns_rsvd_nonzero++;
		status = netvsp_rndis_control(nic, q->q_tx, total);
	}
done:
	q_complete_rndis(q, pk, status);
}

/* ---- NVSP control ------------------------------------------------------------------ */

static void nvsp_init(struct netvsp_queue *q, const struct hvs_pkt *pk,
		      const union nvsp_msg *m, uint32_t len)
{
	struct hvs_netvsp *nic = q->q_nic;
	struct nvsp_init_complete c;
	struct hvs_fault_args fa;
	uint32_t ver = hv_le32(m->nm_init.ni_min_protocol_ver);
	uint32_t status = NVSP_STAT_FAIL;

	if (len < 12) {
		netvsp_bad(nic, "INIT of %u bytes", len);
	} else if (nic->se_rx_ok || nic->se_tx_ok) {
		netvsp_bad(nic, "INIT after the buffers were set up");
	} else {
		for (size_t i = 0; i < sizeof(nvsp_versions) / 4; i++)
			if (nvsp_versions[i] == ver)
				status = NVSP_STAT_SUCCESS;
		if (status != NVSP_STAT_SUCCESS)
			HVS_DEBUG(nic->nd_vm, "netvsp: %s: NVSP version 0x%x "
				  "refused", nic->nd_name, ver);
	}
	if (netvsp_fault(nic, "netvsp.init_comp", &fa))
		status = (uint32_t)hvs_fault_param(&fa, "value", NVSP_STAT_FAIL);
	nic->se_nvsp = status == NVSP_STAT_SUCCESS ? ver : nic->se_nvsp;
	if (len >= 12)
		check_rsvd(nic, pk->pk_data, 12, len < 40 ? len : 40);
	memset(&c, 0, sizeof(c));
	c.nic_type = hv_cpu_to_le32(NVSP_MSG_TYPE_INIT_COMPLETE);
	c.nic_negotiated_protocol_ver = hv_cpu_to_le32(
		status == NVSP_STAT_SUCCESS && ver == NVSP_PROTOCOL_VERSION_1
			? NVSP_PROTOCOL_VERSION_1 : NVSP_INVALID_PROTOCOL_VERSION);
	c.nic_max_mdl_chain_len =
		hv_cpu_to_le32(NVSP_INIT_COMPLETE_MAX_MDL_CHAIN_LEN_V);
	c.nic_status = hv_cpu_to_le32(status);
	q_complete(q, pk, &c,
		   status == NVSP_STAT_SUCCESS &&
				   ver >= NVSP_PROTOCOL_VERSION_61
			   ? NVSP_MSG_SIZE_V61 : NVSP_MSG_SIZE_V1);
}

static void nvsp_ndis_config(struct netvsp_queue *q, const struct hvs_pkt *pk,
			     uint32_t len)
{
	struct hvs_netvsp *nic = q->q_nic;

	if (len < 20) {
		netvsp_bad(nic, "SEND_NDIS_CONFIG of %u bytes", len);
	} else if (nic->se_rx_ok) {
		netvsp_bad(nic, "SEND_NDIS_CONFIG after the receive buffer: "
			   "ignored");
	} else {
		uint32_t mtu = hv_get_le32(pk->pk_data + 4);
		/* V: 1514..9216; we also cap at what this NIC allows */
		uint32_t frame = mtu < NVSP_NDIS_CONFIG_MTU_MIN
					 ? NVSP_NDIS_CONFIG_MTU_DEFAULT : mtu;
		if (frame > nic->nd_host_frame_max)
			frame = nic->nd_host_frame_max;
		nic->se_frame_max = frame;
		nic->se_caps = hv_get_le64(pk->pk_data + 12);
		nic->se_ndis_config = true;
		check_rsvd(nic, pk->pk_data, 8, 12);
		check_rsvd(nic, pk->pk_data, 20, len < 40 ? len : 40);
	}
	q_complete(q, pk, NULL, 0); /* empty, if asked (V, UEFI clients) */
}

static void nvsp_ndis_ver(struct netvsp_queue *q, const struct hvs_pkt *pk,
			  const union nvsp_msg *m, uint32_t len)
{
	struct hvs_netvsp *nic = q->q_nic;

	if (len < 12) {
		netvsp_bad(nic, "SEND_NDIS_VER of %u bytes", len);
	} else {
		uint32_t maj = hv_le32(m->nm_ndis_ver.nv_ndis_major_ver);
		uint32_t min = hv_le32(m->nm_ndis_ver.nv_ndis_minor_ver);
		if (maj != NDIS_VERSION_MAJOR_6)
			netvsp_bad(nic, "NDIS version %u.%u", maj, min);
		nic->se_ndis = maj << 16 | (min & 0xFFFFu);
		check_rsvd(nic, pk->pk_data, 12, len < 40 ? len : 40);
	}
	q_complete(q, pk, NULL, 0);
}

static void nvsp_recv_buf(struct netvsp_queue *q, const struct hvs_pkt *pk,
			  const union nvsp_msg *m, uint32_t len)
{
	struct hvs_netvsp *nic = q->q_nic;
	struct nvsp_send_recv_buf_complete c;
	struct hvs_fault_args fa;
	uint64_t bytes = 0;

	memset(&c, 0, sizeof(c));
	c.nrc_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE);
	c.nrc_status = hv_cpu_to_le32(NVSP_STAT_FAIL);
	uint32_t handle = hv_le32(m->nm_recv_buf.nr_gpadl_handle);
	if (len < 10) {
		netvsp_bad(nic, "SEND_RECV_BUF of %u bytes", len);
	} else if (nic->se_rx_ok) {
		netvsp_bad(nic, "second receive buffer (GPADL 0x%x)", handle);
	} else if (hvs_chan_gpadl_hold(q->q_ch, handle, &bytes) < 0) {
		netvsp_bad(nic, "receive buffer GPADL 0x%x unknown", handle);
	} else {
		/* A slot holds the RNDIS header and PPIs, then one frame. */
		uint32_t size = (NETVSP_RX_HDR_ROOM + nic->se_frame_max + 63u) &
				~63u;
		uint64_t n = bytes / size;
		if (n > NETVSP_MAX_RX_SLOTS)
			n = NETVSP_MAX_RX_SLOTS;
		if (n <= NETVSP_RX_CTRL_RESERVE) {
			netvsp_bad(nic, "receive buffer of %llu bytes: fewer "
				   "than %u slots of %u", (unsigned long long)bytes,
				   NETVSP_RX_CTRL_RESERVE + 1, size);
			hvs_chan_gpadl_put(q->q_ch, handle);
		} else if (slots_init(nic, (uint32_t)n, size) < 0) {
			hvs_chan_gpadl_put(q->q_ch, handle);
		} else {
			nic->se_rx_ok = true;
			nic->se_rx_gpadl = handle;
			nic->se_rx_id = hv_le16(m->nm_recv_buf.nr_id);
			c.nrc_status = hv_cpu_to_le32(NVSP_STAT_SUCCESS);
			c.nrc_num_sections = hv_cpu_to_le32(1);
			c.nrc_sections[0].nrs_offset = 0;
			c.nrc_sections[0].nrs_sub_alloc_size = hv_cpu_to_le32(size);
			c.nrc_sections[0].nrs_num_sub_allocs =
				hv_cpu_to_le32((uint32_t)n);
			c.nrc_sections[0].nrs_end_offset =
				hv_cpu_to_le32((uint32_t)n * size);
			if (hv_le16(m->nm_recv_buf.nr_rsvd0) != 0)
				nic->nd_st.ns_rsvd_nonzero++;
			check_rsvd(nic, pk->pk_data, 12, len < 40 ? len : 40);
		}
	}
	if (netvsp_fault(nic, "netvsp.recv_buf_comp", &fa)) {
		uint32_t v = (uint32_t)hvs_fault_param(&fa, "value", 0);
		switch (hvs_fault_param(&fa, "field", 0)) {
		case 0: c.nrc_status = hv_cpu_to_le32(v); break;
		case 1: c.nrc_num_sections = hv_cpu_to_le32(v); break;
		case 2: c.nrc_sections[0].nrs_offset = hv_cpu_to_le32(v); break;
		case 3: c.nrc_sections[0].nrs_sub_alloc_size = hv_cpu_to_le32(v); break;
		case 4: c.nrc_sections[0].nrs_num_sub_allocs = hv_cpu_to_le32(v); break;
		case 5: c.nrc_sections[0].nrs_end_offset = hv_cpu_to_le32(v); break;
		default: break;
		}
	}
	q_complete(q, pk, &c, nvsp_len(nic));
}

static void nvsp_send_buf(struct netvsp_queue *q, const struct hvs_pkt *pk,
			  const union nvsp_msg *m, uint32_t len)
{
	struct hvs_netvsp *nic = q->q_nic;
	struct nvsp_send_send_buf_complete c;
	struct hvs_fault_args fa;
	uint64_t bytes = 0;

	memset(&c, 0, sizeof(c));
	c.nsc_type = hv_cpu_to_le32(NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE);
	c.nsc_status = hv_cpu_to_le32(NVSP_STAT_FAIL);
	uint32_t handle = hv_le32(m->nm_send_buf.ns_gpadl_handle);
	if (len < 10) {
		netvsp_bad(nic, "SEND_SEND_BUF of %u bytes", len);
	} else if (nic->se_tx_ok) {
		netvsp_bad(nic, "second send buffer (GPADL 0x%x)", handle);
	} else if (hvs_chan_gpadl_hold(q->q_ch, handle, &bytes) < 0) {
		netvsp_bad(nic, "send buffer GPADL 0x%x unknown", handle);
	} else if (bytes < NETVSP_SECTION_SIZE) {
		netvsp_bad(nic, "send buffer of %llu bytes",
			   (unsigned long long)bytes);
		hvs_chan_gpadl_put(q->q_ch, handle);
	} else {
		uint64_t n = bytes / NETVSP_SECTION_SIZE;
		nic->se_tx_ok = true;
		nic->se_tx_gpadl = handle;
		nic->se_tx_id = hv_le16(m->nm_send_buf.ns_id);
		nic->se_sect_size = NETVSP_SECTION_SIZE;
		nic->se_nsect = n > UINT32_MAX / NETVSP_SECTION_SIZE
					? UINT32_MAX / NETVSP_SECTION_SIZE
					: (uint32_t)n;
		c.nsc_status = hv_cpu_to_le32(NVSP_STAT_SUCCESS);
		c.nsc_section_size = hv_cpu_to_le32(NETVSP_SECTION_SIZE);
		if (hv_le16(m->nm_send_buf.ns_rsvd0) != 0)
			nic->nd_st.ns_rsvd_nonzero++;
		check_rsvd(nic, pk->pk_data, 12, len < 40 ? len : 40);
	}
	if (netvsp_fault(nic, "netvsp.send_buf_comp", &fa)) {
		uint32_t v = (uint32_t)hvs_fault_param(&fa, "value", 0);
		if (hvs_fault_param(&fa, "field", 1) == 0)
			c.nsc_status = hv_cpu_to_le32(v);
		else
			c.nsc_section_size = hv_cpu_to_le32(v);
	}
	q_complete(q, pk, &c, nvsp_len(nic));
}

static void nvsp_revoke(struct netvsp_queue *q, const struct hvs_pkt *pk,
			const union nvsp_msg *m, uint32_t len, bool recv)
{
	struct hvs_netvsp *nic = q->q_nic;
	uint16_t id = hv_le16(m->nm_revoke_buf.nrv_id);

	if (len < 6) {
		netvsp_bad(nic, "REVOKE of %u bytes", len);
	} else if (recv) {
		if (!nic->se_rx_ok || id != nic->se_rx_id) {
			netvsp_bad(nic, "REVOKE_RECV_BUF id 0x%x unknown", id);
		} else {
			/* NOTE: no more writes into the buffer, then let the
			 * guest tear the GPADL down. */
			hvs_chan_gpadl_put(q->q_ch, nic->se_rx_gpadl);
			nic->se_rx_ok = false;
			slots_free_all(nic);
			nic->se_ctrl_head = nic->se_ctrl_n = 0;
		}
	} else {
		if (!nic->se_tx_ok || id != nic->se_tx_id) {
			netvsp_bad(nic, "REVOKE_SEND_BUF id 0x%x unknown", id);
		} else {
			hvs_chan_gpadl_put(q->q_ch, nic->se_tx_gpadl);
			nic->se_tx_ok = false;
			nic->se_nsect = nic->se_sect_size = 0;
		}
	}
	q_complete(q, pk, NULL, 0);
}

static void nvsp_subchannel(struct netvsp_queue *q, const struct hvs_pkt *pk,
			    const union nvsp_msg *m, uint32_t len)
{
	struct hvs_netvsp *nic = q->q_nic;
	struct nvsp_subchannel_complete c;
	struct hvs_fault_args fa;
	uint32_t granted = 0;

	memset(&c, 0, sizeof(c));
	c.nsp_type = hv_cpu_to_le32(NVSP_MSG5_TYPE_SUBCHANNEL);
	c.nsp_status = hv_cpu_to_le32(NVSP_STAT_FAIL);
	uint32_t op = hv_le32(m->nm_subchannel_req.nsr_op);
	uint32_t want = hv_le32(m->nm_subchannel_req.nsr_num_subchannels);
	if (len < 12) {
		netvsp_bad(nic, "SUBCHANNEL of %u bytes", len);
	} else if (op != NVSP_SUBCHANNEL_OP_ALLOCATE || want == 0) {
		netvsp_bad(nic, "SUBCHANNEL op %u count %u", op, want);
	} else {
		uint32_t n = want < nic->nd_max_queues - 1 ? want
							   : nic->nd_max_queues - 1;
		for (uint32_t i = 1; i <= n; i++) {
			int r = hvs_vmbus_offer_subchannel(nic->nd_srv,
							   hvs_chan_relid(q->q_ch),
							   (uint16_t)i);
			if (r < 0 && r != -VMBUS_EEXIST) {
				HVS_WARN(nic->nd_vm, "netvsp: %s: subchannel "
					 "%u not offered: %d", nic->nd_name, i, r);
				break;
			}
			granted = i;
		}
		nic->se_nsubch = granted;
		if (granted > 0)
			c.nsp_status = hv_cpu_to_le32(NVSP_STAT_SUCCESS);
		check_rsvd(nic, pk->pk_data, 12, len < 40 ? len : 40);
	}
	c.nsp_num_subchannels = hv_cpu_to_le32(granted);
	if (netvsp_fault(nic, "netvsp.subchannel_comp", &fa))
		c.nsp_num_subchannels = hv_cpu_to_le32(
			(uint32_t)hvs_fault_param(&fa, "value", 64));
	q_complete(q, pk, &c, nvsp_len(nic));
}

static void handle_nvsp(struct netvsp_queue *q, const struct hvs_pkt *pk)
{
	struct hvs_netvsp *nic = q->q_nic;
	union nvsp_msg m;
	uint32_t len = pk->pk_datalen;

	if (len < sizeof(struct nvsp_msg_hdr)) {
		netvsp_bad(nic, "NVSP message of %u bytes", len);
		return;
	}
	/* the one copy of the message every handler reads */
	memset(&m, 0, sizeof(m));
	memcpy(&m, pk->pk_data, len < sizeof(m) ? len : sizeof(m));
	uint32_t type = hv_le32(m.nm_hdr.nh_type);

	if (nic->se_nvsp == 0 && type != NVSP_MSG_TYPE_INIT) {
		netvsp_bad(nic, "NVSP type %u before INIT", type);
		if (type == NVSP_MSG1_TYPE_SEND_RNDIS_PKT)
			q_complete_rndis(q, pk, NVSP_STAT_FAIL);
		return;
	}
	if (nic->se_nvsp != 0 && type > nvsp_max_type(nic->se_nvsp)) {
		netvsp_bad(nic, "NVSP type %u above version 0x%x", type,
			   nic->se_nvsp);
		return;
	}
	if (q->q_index != 0 && type != NVSP_MSG1_TYPE_SEND_RNDIS_PKT) {
		netvsp_bad(nic, "NVSP type %u on subchannel %u", type,
			   q->q_index);
		return;
	}
	switch (type) {
	case NVSP_MSG_TYPE_INIT:
		nvsp_init(q, pk, &m, len);
		break;
	case NVSP_MSG2_TYPE_SEND_NDIS_CONFIG:
		nvsp_ndis_config(q, pk, len);
		break;
	case NVSP_MSG1_TYPE_SEND_NDIS_VER:
		nvsp_ndis_ver(q, pk, &m, len);
		break;
	case NVSP_MSG1_TYPE_SEND_RECV_BUF:
		nvsp_recv_buf(q, pk, &m, len);
		break;
	case NVSP_MSG1_TYPE_SEND_SEND_BUF:
		nvsp_send_buf(q, pk, &m, len);
		break;
	case NVSP_MSG1_TYPE_REVOKE_RECV_BUF:
		nvsp_revoke(q, pk, &m, len, true);
		break;
	case NVSP_MSG1_TYPE_REVOKE_SEND_BUF:
		nvsp_revoke(q, pk, &m, len, false);
		break;
	case NVSP_MSG1_TYPE_SEND_RNDIS_PKT:
		nvsp_rndis_pkt(q, pk, &m, len);
		break;
	case NVSP_MSG5_TYPE_SUBCHANNEL:
		nvsp_subchannel(q, pk, &m, len);
		break;
	case NVSP_MSG4_TYPE_SWITCH_DATA_PATH:
		/* no VF here: the synthetic path is the only one */
		HVS_DEBUG(nic->nd_vm, "netvsp: %s: SWITCH_DATA_PATH %u",
			  nic->nd_name, hv_le32(m.nm_switch_data_path.nsd_active_datapath));
		q_complete(q, pk, NULL, 0);
		break;
	case NVSP_MSG5_TYPE_OID_QUERY_EX: {
		struct nvsp_oid_query_ex_complete c;
		memset(&c, 0, sizeof(c));
		c.nqc_type = hv_cpu_to_le32(NVSP_MSG5_TYPE_OID_QUERY_EX_COMP);
		c.nqc_status = hv_cpu_to_le32(RNDIS_STATUS_NOT_SUPPORTED);
		q_complete(q, pk, &c, nvsp_len(nic));
		break;
	}
	default:
		netvsp_bad(nic, "NVSP type %u not supported", type);
		break;
	}
}

/* A guest completion: one receive slot comes back (spec 1.6 step 3). */
static void handle_comp(struct netvsp_queue *q, const struct hvs_pkt *pk)
{
	struct hvs_netvsp *nic = q->q_nic;

	if (pk->pk_datalen < NVSP_SEND_RNDIS_PKT_COMPLETE_MINLEN) {
		netvsp_bad(nic, "completion of %u bytes", pk->pk_datalen);
		nic->nd_st.ns_bad_completions++;
		return;
	}
	uint32_t type = hv_get_le32(pk->pk_data);
	uint32_t status = hv_get_le32(pk->pk_data + 4);
	if (type != NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE) {
		netvsp_bad(nic, "completion of NVSP type %u", type);
		nic->nd_st.ns_bad_completions++;
		return;
	}
	if (!nic->se_rx_ok) {
		/* late completions after a revoke are harmless */
		nic->nd_st.ns_bad_completions++;
		return;
	}
	uint64_t tid = pk->pk_trans_id;
	uint32_t low = (uint32_t)tid, gen = (uint32_t)(tid >> 32);
	uint32_t s = low - 1;
	if (low == 0 || s >= nic->se_nslots || !nic->se_slots[s].sl_busy ||
	    nic->se_slots[s].sl_gen != gen ||
	    nic->se_slots[s].sl_queue != q->q_index) {
		netvsp_bad(nic, "receive completion 0x%llx for no slot it "
			   "holds on queue %u", (unsigned long long)tid,
			   q->q_index);
		nic->nd_st.ns_bad_completions++;
		return;
	}
	if (status != NVSP_STAT_SUCCESS)
		nic->nd_st.ns_rx_guest_fail++;
	slot_release(nic, s);
	if (q->q_inflight > 0)
		q->q_inflight--;
}

static void handle(struct netvsp_queue *q, const struct hvs_pkt *pk)
{
	switch (pk->pk_type) {
	case VMBUS_PACKET_TYPE_COMP:
		handle_comp(q, pk);
		break;
	case VMBUS_PACKET_TYPE_DATA_INBAND:
	case VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT:
		handle_nvsp(q, pk);
		break;
	default:
		netvsp_bad(q->q_nic, "packet type %u from the guest",
			   pk->pk_type);
		break;
	}
}

/* ---- channel callbacks -------------------------------------------------------------- */

static void q_drain(struct netvsp_queue *q);

static void q_resume_fire(void *arg)
{
	struct netvsp_queue *q = arg;
	q->q_resume = NULL; /* one-shot: the loop frees it */
	q_drain(q);
}

static void q_drain(struct netvsp_queue *q)
{
	struct hvs_netvsp *nic = q->q_nic;
	struct hvs_channel *ch = q->q_ch;
	struct hvs_pkt pk;
	unsigned budget = NETVSP_DRAIN_BUDGET;
	int r;

	if (!q_flush(q))
		return; /* still blocked: incoming stays masked */
	if (q->q_rx_blocked) {
		q->q_rx_blocked = false;
		nic->nd_rx_waiting = true; /* the ring has room again */
	}
	for (;;) {
		hvs_chan_mask(ch);
		while ((r = hvs_chan_recv(ch, &pk, q->q_pkt, q->q_pktlen,
					  NULL)) == 0) {
			handle(q, &pk);
			if (q->q_nout > 0) {
				/* NOTE: give back what we consumed, then
				 * wait for the guest to read ours. */
				hvs_chan_recv_done(ch);
				goto out;
			}
			if (--budget == 0) {
				hvs_chan_recv_done(ch);
				if (q->q_resume == NULL)
					q->q_resume = hvs_loop_timer_add(
						nic->nd_loop, 0, 0,
						q_resume_fire, q);
				goto out;
			}
		}
		hvs_chan_recv_done(ch);
		if (r == -VMBUS_ENOBUFS)
			hvs_chan_set_broken(ch, "netvsp: packet larger than the "
					    "ring's maximum");
		if (r != -VMBUS_EAGAIN)
			goto out;
		if (hvs_chan_unmask(ch) == 0)
			break;
	}
out:
	ctrl_flush(nic);
	netvsp_rx_kick(nic);
}

static int netvsp_open(void *arg, struct hvs_channel *ch)
{
	struct hvs_netvsp *nic = arg;
	uint16_t idx = hvs_chan_sub_index(ch);

	if (idx >= nic->nd_max_queues || nic->nd_q[idx] != NULL)
		return -VMBUS_EINVAL;
	if (idx != 0 && nic->nd_primary == NULL) {
		netvsp_bad(nic, "subchannel %u opened without the primary", idx);
		return -VMBUS_EINVAL;
	}
	struct netvsp_queue *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -VMBUS_ENOMEM;
	q->q_nic = nic;
	q->q_ch = ch;
	q->q_index = idx;
	/* NVSP packets are small (a 40-byte message, or GPA ranges for at
	 * most NETVSP_TX_MAX bytes); the ring may be huge. A larger packet
	 * is a protocol violation (-ENOBUFS from hvs_chan_recv: broken). */
	q->q_pktlen = hvs_chan_in_max_packet(ch);
	if (q->q_pktlen > NETVSP_PKT_MAX)
		q->q_pktlen = NETVSP_PKT_MAX;
	q->q_pkt = malloc(q->q_pktlen);
	q->q_tx = malloc(NETVSP_TX_MAX);
	if (q->q_pkt == NULL || q->q_tx == NULL) {
		free(q->q_pkt);
		free(q->q_tx);
		free(q);
		return -VMBUS_ENOMEM;
	}
	if (idx == 0) {
		netvsp_session_init(nic);
		nic->nd_primary = ch;
	}
	nic->nd_q[idx] = q;
	hvs_chan_set_priv(ch, q);
	HVS_DEBUG(nic->nd_vm, "netvsp: %s: queue %u open", nic->nd_name, idx);
	return 0;
}

static void netvsp_close(void *arg, struct hvs_channel *ch, int why)
{
	struct hvs_netvsp *nic = arg;
	struct netvsp_queue *q = hvs_chan_priv(ch);

	(void)why;
	if (q == NULL)
		return;
	hvs_chan_set_priv(ch, NULL);
	hvs_loop_timer_cancel(q->q_resume);
	if (q->q_index == 0) {
		session_release(nic, ch);
		nic->nd_primary = NULL;
	} else if (nic->se_slots != NULL) {
		/* the guest no longer completes this queue's slots */
		for (uint32_t s = 0; s < nic->se_nslots; s++)
			if (nic->se_slots[s].sl_busy &&
			    nic->se_slots[s].sl_queue == q->q_index)
				slot_release(nic, s);
	}
	nic->nd_q[q->q_index] = NULL;
	free(q->q_pkt);
	free(q->q_tx);
	free(q);
	/* a back end waiting for room would otherwise wait forever */
	netvsp_rx_kick(nic);
}

static void netvsp_on_signal(void *arg, struct hvs_channel *ch)
{
	struct netvsp_queue *q = hvs_chan_priv(ch);
	(void)arg;
	if (q != NULL)
		q_drain(q);
}

static void netvsp_destroy(void *arg)
{
	struct hvs_netvsp *nic = arg;

	if (nic->nd_on_destroy != NULL)
		nic->nd_on_destroy(nic->nd_on_destroy_arg);
	hvs_net_close(nic->nd_ep);
	slots_free_all(nic);
	free(nic->se_ctrl);
	free(nic);
}

static const struct hvs_vsp_ops netvsp_ops = {
	.vo_open = netvsp_open,
	.vo_close = netvsp_close,
	.vo_on_signal = netvsp_on_signal,
	.vo_destroy = netvsp_destroy,
};

/* ---- public ----------------------------------------------------------------------- */

int hvs_netvsp_add(struct hvs_vmbus *s, struct hvs_loop *loop,
		   const struct hvs_net_spec *spec, unsigned nic_index,
		   struct hvs_netvsp **out, char *err, size_t errlen)
{
	static const struct hv_guid netvsc_class = HV_GUID_NETVSC_INIT;
	struct hvs_device_opts opts;
	char devname[16];

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	struct hvs_netvsp *nic = calloc(1, sizeof(*nic));
	if (nic == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nic->se_ctrl = calloc(NETVSP_CTRL_QUEUE, sizeof(*nic->se_ctrl));
	if (nic->se_ctrl == NULL) {
		free(nic);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nic->nd_srv = s;
	nic->nd_loop = loop;
	nic->nd_vm = hvs_vmbus_name(s);
	snprintf(nic->nd_name, sizeof(nic->nd_name), "%s/net%u", nic->nd_vm,
		 nic_index);
	if (spec->ns_have_mac)
		memcpy(nic->nd_perm_mac, spec->ns_mac, 6);
	else
		hvs_net_mac_derive(nic->nd_vm, nic_index, nic->nd_perm_mac);
	nic->nd_host_frame_max = spec->ns_mtu + HVS_NET_ETH_HLEN;
	nic->nd_max_queues = spec->ns_queues >= 1 &&
					     spec->ns_queues <= HVS_NET_MAX_QUEUES
				     ? spec->ns_queues : 1;
	snprintf(nic->nd_friendly, sizeof(nic->nd_friendly), "%s",
		 spec->ns_friendly[0] ? spec->ns_friendly : "Network Adapter");
	nic->nd_link_up = !spec->ns_link_down;
	for (size_t i = 0; i < sizeof(netvsp_hooks) / sizeof(netvsp_hooks[0]); i++)
		hvs_fault_register(netvsp_hooks[i][0], netvsp_hooks[i][1]);
	netvsp_session_init(nic);

	int r = hvs_net_open(loop, spec, nic->nd_name, &nic_ops, nic,
			     &nic->nd_ep, err, errlen);
	if (r < 0) {
		free(nic->se_ctrl);
		free(nic);
		return r;
	}
	memset(&opts, 0, sizeof(opts));
	opts.do_max_subchannels = nic->nd_max_queues - 1;
	snprintf(devname, sizeof(devname), "net%u", nic_index);
	opts.do_name = devname;
	r = hvs_vmbus_add_device(s, &netvsp_ops, nic, &netvsc_class, NULL,
				 &opts);
	if (r < 0) {
		snprintf(err, errlen, "%s: cannot add the device: %s",
			 nic->nd_name, strerror(-r));
		hvs_net_close(nic->nd_ep);
		free(nic->se_ctrl);
		free(nic);
		return r;
	}
	nic->nd_relid = r;
	HVS_INFO(nic->nd_vm, "netvsp: %s: %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, "
		 "MTU %u, %u queue%s", nic->nd_name,
		 hvs_net_kind_name(spec->ns_kind), nic->nd_perm_mac[0],
		 nic->nd_perm_mac[1], nic->nd_perm_mac[2], nic->nd_perm_mac[3],
		 nic->nd_perm_mac[4], nic->nd_perm_mac[5], spec->ns_mtu,
		 nic->nd_max_queues, nic->nd_max_queues == 1 ? "" : "s");
	if (out != NULL)
		*out = nic;
	return r;
}

void hvs_netvsp_on_destroy(struct hvs_netvsp *nic, void (*fn)(void *arg),
			   void *arg)
{
	nic->nd_on_destroy = fn;
	nic->nd_on_destroy_arg = arg;
}

void hvs_netvsp_set_link(struct hvs_netvsp *nic, bool up)
{
	if (nic->nd_link_up == up)
		return;
	nic->nd_link_up = up;
	if (nic->se_rndis_up)
		indicate(nic, up ? RNDIS_STATUS_MEDIA_CONNECT
				 : RNDIS_STATUS_MEDIA_DISCONNECT);
	if (up)
		netvsp_rx_kick(nic);
}

void hvs_netvsp_get_mac(const struct hvs_netvsp *nic, uint8_t mac[6])
{
	memcpy(mac, nic->nd_perm_mac, 6);
}

const char *hvs_netvsp_name(const struct hvs_netvsp *nic)
{
	return nic->nd_name;
}

struct hvs_net_ep *hvs_netvsp_endpoint(struct hvs_netvsp *nic)
{
	return nic->nd_ep;
}

void hvs_netvsp_get_stats(const struct hvs_netvsp *nic,
			  struct hvs_netvsp_stats *st)
{
	*st = nic->nd_st;
	st->ns_nvsp_version = nic->se_nvsp;
	st->ns_ndis_version = nic->se_ndis;
	st->ns_frame_max = nic->se_frame_max;
	st->ns_queues_open = 0;
	for (unsigned i = 0; i < HVS_NET_MAX_QUEUES; i++)
		if (nic->nd_q[i] != NULL)
			st->ns_queues_open++;
	st->ns_subchannels = nic->se_nsubch;
	st->ns_rx_slots = nic->se_nslots;
	st->ns_rx_slots_free = nic->se_nfree;
	st->ns_rx_slot_size = nic->se_slot_size;
	st->ns_send_sections = nic->se_nsect;
	st->ns_packet_filter = nic->se_filter;
	st->ns_rndis_up = nic->se_rndis_up;
	st->ns_link_up = nic->nd_link_up;
	st->ns_rss = nic->se_rss;
	st->ns_guest_errors = atomic_load(&nic->nd_guest_errors);
}

int hvs_netvsp_describe_json(const struct hvs_netvsp *nic, char *buf,
			     size_t len)
{
	struct hvs_netvsp_stats st;
	struct hvs_net_ep_stats es;
	struct hvs_jw w;
	char mac[18];

	if (buf == NULL || len < 3)
		return -ENOBUFS;
	hvs_netvsp_get_stats(nic, &st);
	hvs_net_get_stats(nic->nd_ep, &es);
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
		 nic->nd_perm_mac[0], nic->nd_perm_mac[1], nic->nd_perm_mac[2],
		 nic->nd_perm_mac[3], nic->nd_perm_mac[4], nic->nd_perm_mac[5]);
	hvs_jw_init(&w, buf, len);
	hvs_jw_obj_begin(&w, NULL);
	hvs_jw_str(&w, "name", nic->nd_name);
	hvs_jw_uint(&w, "relid", (uint64_t)nic->nd_relid);
	hvs_jw_str(&w, "mac", mac);
	hvs_jw_str(&w, "backend", hvs_net_kind_name(hvs_net_ep_kind(nic->nd_ep)));
	hvs_jw_bool(&w, "link", st.ns_link_up);
	hvs_jw_uint(&w, "mtu_max", nic->nd_host_frame_max - HVS_NET_ETH_HLEN);
	hvs_jw_uint(&w, "queues_max", nic->nd_max_queues);
	hvs_jw_uint(&w, "nvsp_version", st.ns_nvsp_version);
	hvs_jw_uint(&w, "ndis_version", st.ns_ndis_version);
	hvs_jw_uint(&w, "frame_max", st.ns_frame_max);
	hvs_jw_bool(&w, "rndis_up", st.ns_rndis_up);
	hvs_jw_uint(&w, "packet_filter", st.ns_packet_filter);
	hvs_jw_uint(&w, "queues_open", st.ns_queues_open);
	hvs_jw_uint(&w, "subchannels", st.ns_subchannels);
	hvs_jw_bool(&w, "rss", st.ns_rss);
	hvs_jw_uint(&w, "rx_slots", st.ns_rx_slots);
	hvs_jw_uint(&w, "rx_slots_free", st.ns_rx_slots_free);
	hvs_jw_uint(&w, "rx_slot_size", st.ns_rx_slot_size);
	hvs_jw_uint(&w, "send_sections", st.ns_send_sections);
	hvs_jw_obj_begin(&w, "tx");
	hvs_jw_uint(&w, "frames", st.ns_tx_frames);
	hvs_jw_uint(&w, "bytes", st.ns_tx_bytes);
	hvs_jw_uint(&w, "dropped", st.ns_tx_dropped);
	hvs_jw_uint(&w, "csum", st.ns_tx_csum);
	hvs_jw_uint(&w, "lso", st.ns_tx_lso);
	hvs_jw_uint(&w, "lso_segments", st.ns_tx_lso_segments);
	hvs_jw_uint(&w, "completions", st.ns_tx_completions);
	hvs_jw_obj_end(&w);
	hvs_jw_obj_begin(&w, "rx");
	hvs_jw_uint(&w, "frames", st.ns_rx_frames);
	hvs_jw_uint(&w, "bytes", st.ns_rx_bytes);
	hvs_jw_uint(&w, "dropped", st.ns_rx_dropped);
	hvs_jw_uint(&w, "filtered", st.ns_rx_filtered);
	hvs_jw_uint(&w, "not_ready", st.ns_rx_not_ready);
	hvs_jw_uint(&w, "deferred", st.ns_rx_deferred);
	hvs_jw_uint(&w, "guest_fail", st.ns_rx_guest_fail);
	hvs_jw_obj_end(&w);
	hvs_jw_obj_begin(&w, "errors");
	hvs_jw_uint(&w, "guest", st.ns_guest_errors);
	hvs_jw_uint(&w, "bad_completions", st.ns_bad_completions);
	hvs_jw_uint(&w, "rsvd_nonzero", st.ns_rsvd_nonzero);
	hvs_jw_uint(&w, "ctrl_dropped", st.ns_ctrl_dropped);
	hvs_jw_obj_end(&w);
	hvs_jw_obj_begin(&w, "backend_stats");
	hvs_jw_uint(&w, "tx_frames", es.es_tx_frames);
	hvs_jw_uint(&w, "tx_bytes", es.es_tx_bytes);
	hvs_jw_uint(&w, "tx_dropped", es.es_tx_dropped);
	hvs_jw_uint(&w, "rx_frames", es.es_rx_frames);
	hvs_jw_uint(&w, "rx_bytes", es.es_rx_bytes);
	hvs_jw_uint(&w, "rx_dropped", es.es_rx_dropped);
	hvs_jw_uint(&w, "rx_deferred", es.es_rx_deferred);
	hvs_jw_uint(&w, "captured", es.es_captured);
	hvs_jw_obj_end(&w);
	hvs_jw_obj_end(&w);
	if (hvs_jw_result(&w) == NULL) {
		buf[0] = '\0';
		return -ENOBUFS;
	}
	return (int)strlen(buf);
}
