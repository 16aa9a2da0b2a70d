/*
 * host/vsp/vsp.c - host-side channel I/O for VSPs: the copy-in of ring
 * packets (spec 4.7), sends with the ring's signalling rules (spec 3.5-3.7),
 * GPA-direct and GPADL access.
 */
#include "host/vsp/vsp.h"

#include <stdlib.h>
#include <string.h>

#include "host/vmbus/srv_priv.h"
#include "vmbus/errno.h"

uint32_t hvs_chan_relid(const struct hvs_channel *ch) { return ch->ch_relid; }
uint16_t hvs_chan_sub_index(const struct hvs_channel *ch) { return ch->ch_sub; }
struct hvs_vmbus *hvs_chan_server(const struct hvs_channel *ch)
{
	return ch->ch_srv;
}
struct hvs_partition *hvs_chan_partition(const struct hvs_channel *ch)
{
	return ch->ch_srv->vs_p;
}
const char *hvs_chan_name(const struct hvs_channel *ch) { return ch->ch_name; }
const uint8_t *hvs_chan_open_userdata(const struct hvs_channel *ch)
{
	return ch->ch_userdata;
}
void hvs_chan_set_priv(struct hvs_channel *ch, void *priv) { ch->ch_priv = priv; }
void *hvs_chan_priv(const struct hvs_channel *ch) { return ch->ch_priv; }
bool hvs_chan_is_open(const struct hvs_channel *ch)
{
	return ch->ch_state == HVS_CHAN_OPEN;
}
bool hvs_chan_is_broken(const struct hvs_channel *ch) { return ch->ch_broken; }

uint32_t hvs_chan_in_max_packet(const struct hvs_channel *ch)
{
	return ch->ch_state == HVS_CHAN_OPEN ? vmbus_ring_max_packet(&ch->ch_in)
					     : 0;
}

uint32_t hvs_chan_out_max_packet(const struct hvs_channel *ch)
{
	return ch->ch_state == HVS_CHAN_OPEN ? vmbus_ring_max_packet(&ch->ch_out)
					     : 0;
}

static void chan_broken(struct hvs_channel *ch, const char *why)
{
	struct hvs_vmbus *s = ch->ch_srv;

	atomic_fetch_add(&ch->ch_proto_errors, 1);
	if (!ch->ch_broken)
		hvs_log_guest(&s->vs_rl, &s->vs_msgs_bad, s->vs_name,
			      "vmbus: %s: channel broken: %s", ch->ch_name,
			      why);
	ch->ch_broken = true;
	if (!vmbus_ring_broken(&ch->ch_in))
		vmbus_ring_set_broken(&ch->ch_in);
}

void hvs_chan_set_broken(struct hvs_channel *ch, const char *why)
{
	chan_broken(ch, why);
}

/* The ring library found a bad peer index. */
static int ring_error(struct hvs_channel *ch, int r, const char *what)
{
	if (r == -VMBUS_EPROTO)
		chan_broken(ch, what);
	return r;
}

/*
 * Validate the private copy of one packet (spec 4.7). desc fields were
 * checked against the ring before copying; the copy is re-checked so a
 * guest rewriting the ring meanwhile cannot slip a different length in.
 */
static const char *pkt_parse(const uint8_t *raw, uint32_t plen,
			     struct hvs_pkt *pk)
{
	struct vmbus_packet_desc d;
	memcpy(&d, raw, sizeof(d));
	uint32_t off = (uint32_t)hv_le16(d.pd_offset8) * 8u;

	if ((uint32_t)hv_le16(d.pd_len8) * 8u != plen)
		return "packet length changed while being read";
	memset(pk, 0, sizeof(*pk));
	pk->pk_type = hv_le16(d.pd_type);
	pk->pk_flags = hv_le16(d.pd_flags);
	pk->pk_trans_id = hv_le64(d.pd_trans_id);
	pk->pk_len = plen;
	pk->pk_raw = raw;
	pk->pk_data = raw + off;
	pk->pk_datalen = plen - off;

	if (pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
		if (off < sizeof(struct vmbus_gpa_direct_hdr))
			return "GPA-direct offset8 < 3";
		uint32_t cnt = hv_get_le32(raw + offsetof(struct vmbus_gpa_direct_hdr,
							   gd_range_cnt));
		if (cnt == 0)
			return "GPA-direct range_cnt 0";
		uint32_t pos = sizeof(struct vmbus_gpa_direct_hdr);
		uint64_t total = 0;
		for (uint32_t i = 0; i < cnt; i++) {
			if (off - pos < 8u)
				return "GPA-direct ranges run past offset8";
			uint32_t bc = hv_get_le32(raw + pos);
			uint32_t bo = hv_get_le32(raw + pos + 4);
			if (bo >= HV_PAGE_SIZE || bc == 0)
				return "GPA-direct bad range";
			uint64_t n = VMBUS_GPA_RANGE_PFNS(bo, bc);
			pos += 8u;
			if (n > (uint64_t)(off - pos) / 8u)
				return "GPA-direct PFNs run past offset8";
			pos += 8u * (uint32_t)n;
			total += bc;
		}
		pk->pk_range_cnt = cnt;
		pk->pk_ranges = raw + sizeof(struct vmbus_gpa_direct_hdr);
		pk->pk_ranges_len = pos - (uint32_t)sizeof(struct vmbus_gpa_direct_hdr);
		pk->pk_gpa_bytes = total;
	} else if (pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES) {
		if (off < sizeof(struct vmbus_xfer_page_hdr))
			return "transfer-page offset8 < 3";
		uint32_t cnt = hv_get_le32(raw + offsetof(struct vmbus_xfer_page_hdr,
							   xp_range_cnt));
		if (cnt > (off - sizeof(struct vmbus_xfer_page_hdr)) / 8u)
			return "transfer-page ranges run past offset8";
		pk->pk_xfer_pageset_id = hv_get_le16(
			raw + offsetof(struct vmbus_xfer_page_hdr, xp_pageset_id));
		pk->pk_xfer_range_cnt = cnt;
		pk->pk_xfer_ranges = raw + sizeof(struct vmbus_xfer_page_hdr);
	}
	return NULL;
}

static bool known_type(uint16_t t)
{
	return t == VMBUS_PACKET_TYPE_DATA_INBAND ||
	       t == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES ||
	       t == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT ||
	       t == VMBUS_PACKET_TYPE_COMP;
}

int hvs_chan_recv(struct hvs_channel *ch, struct hvs_pkt *pk, void *buf,
		  uint32_t buflen, uint32_t *needed)
{
	struct hvs_vmbus *s = ch->ch_srv;

	if (ch->ch_state != HVS_CHAN_OPEN)
		return -VMBUS_ENODEV;
	if (ch->ch_broken)
		return -VMBUS_EPROTO;
	if (hvs_fault_chan_stalled(s->vs_name, ch->ch_relid)) {
		ch->ch_stalled = true;	/* hvs_vmbus_poll resumes it */
		return -VMBUS_EAGAIN;
	}
	for (;;) {
		uint32_t avail = vmbus_ring_bytes_to_read(&ch->ch_in);
		if (vmbus_ring_broken(&ch->ch_in))
			return ring_error(ch, -VMBUS_EPROTO,
					  "bad write_index in incoming ring");
		if (avail == 0)
			return -VMBUS_EAGAIN;
		/* The writer publishes whole packets and their trailers. */
		if (avail < sizeof(struct vmbus_packet_desc) + HV_RING_ALIGN) {
			chan_broken(ch, "partial packet in ring");
			return -VMBUS_EPROTO;
		}
		struct vmbus_packet_desc d;
		int r = vmbus_ring_peek(&ch->ch_in, &d, sizeof(d));
		if (r != 0)
			return ring_error(ch, r == -VMBUS_EAGAIN ? -VMBUS_EPROTO : r,
					  "descriptor peek failed");
		uint32_t off8 = hv_le16(d.pd_offset8);
		uint32_t len8 = hv_le16(d.pd_len8);
		uint32_t flags = hv_le16(d.pd_flags);
		uint32_t plen = len8 * 8u;
		if (off8 < VMBUS_PACKET_MIN_OFFSET8 || len8 < off8) {
			chan_broken(ch, "bad offset8/len8");
			return -VMBUS_EPROTO;
		}
		if ((uint64_t)plen + HV_RING_ALIGN > avail) {
			chan_broken(ch, "packet runs past the written data");
			return -VMBUS_EPROTO;
		}
		if (flags & ~VMBUS_PACKET_FLAG_COMPLETION_REQUESTED) {
			chan_broken(ch, "unknown packet flags");
			return -VMBUS_EPROTO;
		}
		if (!known_type(hv_le16(d.pd_type))) {
			hvs_log_guest(&s->vs_rl, &ch->ch_proto_errors,
				      s->vs_name, "vmbus: %s: packet type %u "
				      "skipped", ch->ch_name,
				      hv_le16(d.pd_type));
			r = vmbus_ring_skip(&ch->ch_in, plen);
			if (r != 0)
				return ring_error(ch, r, "skip failed");
			continue;
		}
		if (plen > buflen) {
			if (needed != NULL)
				*needed = plen;
			return -VMBUS_ENOBUFS;
		}
		r = vmbus_ring_read(&ch->ch_in, buf, plen, 0);
		if (r != 0)
			return ring_error(ch, r == -VMBUS_EAGAIN ? -VMBUS_EPROTO : r,
					  "packet read failed");
		const char *why = pkt_parse(buf, plen, pk);
		if (why != NULL) {
			chan_broken(ch, why);
			return -VMBUS_EPROTO;
		}
		return 0;
	}
}

void hvs_chan_recv_done(struct hvs_channel *ch)
{
	if (ch->ch_state != HVS_CHAN_OPEN)
		return;
	if (vmbus_ring_read_done(&ch->ch_in))
		hvs_chan_signal(ch); /* the guest waits for space (3.6) */
	if (vmbus_ring_broken(&ch->ch_in))
		chan_broken(ch, "bad write_index in incoming ring");
}

void hvs_chan_mask(struct hvs_channel *ch)
{
	if (ch->ch_state == HVS_CHAN_OPEN && !ch->ch_broken)
		vmbus_ring_mask(&ch->ch_in);
}

uint32_t hvs_chan_unmask(struct hvs_channel *ch)
{
	if (ch->ch_state != HVS_CHAN_OPEN || ch->ch_broken)
		return 0;
	uint32_t n = vmbus_ring_unmask(&ch->ch_in);
	/* chan.stall: nothing to read, or the VSP would spin on it. */
	if (n && hvs_fault_chan_stalled(ch->ch_srv->vs_name, ch->ch_relid)) {
		ch->ch_stalled = true;
		return 0;
	}
	return n;
}

/* ---- GPA direct ----------------------------------------------------------- */

static int pkt_gpa_copy(struct hvs_channel *ch, const struct hvs_pkt *pk,
			uint64_t off, uint8_t *p, uint32_t len, bool write)
{
	struct hvs_vmbus *s = ch->ch_srv;
	uint32_t pos = 0;

	if (pk->pk_type != VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT)
		return -VMBUS_EINVAL;
	if (off > pk->pk_gpa_bytes || len > pk->pk_gpa_bytes - off)
		return -VMBUS_ERANGE;
	/* ranges were validated by pkt_parse() on this same private copy */
	for (uint32_t r = 0; r < pk->pk_range_cnt && len > 0; r++) {
		uint32_t bc = hv_get_le32(pk->pk_ranges + pos);
		uint32_t bo = hv_get_le32(pk->pk_ranges + pos + 4);
		const uint8_t *pfns = pk->pk_ranges + pos + 8;
		pos += 8u + 8u * (uint32_t)VMBUS_GPA_RANGE_PFNS(bo, bc);
		if (off >= bc) {
			off -= bc;
			continue;
		}
		while (len > 0 && off < bc) {
			uint64_t abs = bo + off;
			uint64_t pfn = hv_get_le64(pfns + 8u * (abs >> HV_PAGE_SHIFT));
			uint32_t in_pg = (uint32_t)(abs & HV_PAGE_MASK);
			uint32_t chunk = HV_PAGE_SIZE - in_pg;
			if (chunk > len)
				chunk = len;
			if (chunk > bc - off)
				chunk = (uint32_t)(bc - off);
			if (pfn == 0 || pfn >= (UINT64_MAX >> HV_PAGE_SHIFT)) {
				hvs_log_guest(&s->vs_rl, &ch->ch_proto_errors,
					      s->vs_name, "vmbus: %s: GPA-direct "
					      "PFN 0x%llx invalid", ch->ch_name,
					      (unsigned long long)pfn);
				return -VMBUS_EFAULT;
			}
			uint64_t gpa = (pfn << HV_PAGE_SHIFT) + in_pg;
			int rc = write ? hvs_gpa_write(s->vs_p, gpa, p, chunk)
				       : hvs_gpa_read(s->vs_p, gpa, p, chunk);
			if (rc != 0) {
				hvs_log_guest(&s->vs_rl, &ch->ch_proto_errors,
					      s->vs_name, "vmbus: %s: GPA-direct "
					      "PFN 0x%llx outside guest RAM",
					      ch->ch_name,
					      (unsigned long long)pfn);
				return -VMBUS_EFAULT;
			}
			p += chunk;
			len -= chunk;
			off += chunk;
		}
		off = 0;
	}
	return len == 0 ? 0 : -VMBUS_ERANGE;
}

int hvs_pkt_gpa_read(struct hvs_channel *ch, const struct hvs_pkt *pk,
		     uint64_t off, void *dst, uint32_t len)
{
	return pkt_gpa_copy(ch, pk, off, dst, len, false);
}

int hvs_pkt_gpa_write(struct hvs_channel *ch, const struct hvs_pkt *pk,
		      uint64_t off, const void *src, uint32_t len)
{
	return pkt_gpa_copy(ch, pk, off, (uint8_t *)(uintptr_t)src, len, true);
}

/* ---- sending --------------------------------------------------------------- */

/*
 * Fault hook bad_ring_index (params: relid = channel filter, value = the
 * write_index to publish; -1 = data size (default), -2 = data size + 8,
 * -3 = current + 4 (unaligned), else the literal value).
 *
 * The bad index stays: a guest that read the good index just before the
 * scribble, and whose wake-up for the scribble coalesced with the one for
 * the packet, would otherwise never see it before our next packet
 * overwrote it. So every later write on the channel (until it is opened
 * again) stores the bad index again and signals instead of writing.
 */
static void fault_bad_ring_index(struct hvs_channel *ch)
{
	struct hvs_vmbus *s = ch->ch_srv;
	struct hvs_fault_args fa;

	if (!hvs_srv_fault(s, "bad_ring_index", "relid", ch->ch_relid, &fa))
		return;
	uint32_t ds = ch->ch_out.rb_dsize;
	uint32_t cur = hv_le32(__atomic_load_n(&ch->ch_out.rb_ctl->rc_write_index,
					       __ATOMIC_RELAXED));
	int64_t want = hvs_fault_param(&fa, "value", -1);
	uint32_t v;
	switch (want) {
	case -1: v = ds; break;
	case -2: v = ds + 8u; break;
	case -3: v = (cur + 4u) % ds; break;
	default: v = (uint32_t)want; break;
	}
	HVS_INFO(s->vs_name, "vmbus: fault bad_ring_index: %s write_index "
		 "0x%x -> 0x%x", ch->ch_name, cur, v);
	ch->ch_scribbled = true;
	ch->ch_scribble_wi = v;
	__atomic_store_n(&ch->ch_out.rb_ctl->rc_write_index, hv_cpu_to_le32(v),
			 __ATOMIC_RELEASE);
	hvs_chan_signal(ch);
}

static int chan_write_raw(struct hvs_channel *ch, const struct vmbus_iov *iov,
			  unsigned iovcnt)
{
	bool need_signal = false;
	uint32_t total = 0;

	if (ch->ch_state != HVS_CHAN_OPEN)
		return -VMBUS_ENODEV;
	if (ch->ch_broken)
		return -VMBUS_EPROTO;
	if (ch->ch_scribbled) {
		__atomic_store_n(&ch->ch_out.rb_ctl->rc_write_index,
				 hv_cpu_to_le32(ch->ch_scribble_wi),
				 __ATOMIC_RELEASE);
		hvs_chan_signal(ch);
		return 0;
	}
	for (unsigned i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	int r = vmbus_ring_write(&ch->ch_out, iov, iovcnt, &need_signal);
	if (r == -VMBUS_EAGAIN) {
		/*
		 * Full: ask the guest for a signal once total + trailer fits
		 * (spec 3.5 step 1), then retry once in case it read
		 * meanwhile.
		 */
		vmbus_ring_set_pending_send(&ch->ch_out, total + HV_RING_ALIGN);
		ch->ch_pending_set = true;
		r = vmbus_ring_write(&ch->ch_out, iov, iovcnt, &need_signal);
	}
	if (r == -VMBUS_EPROTO) {
		chan_broken(ch, "bad read_index in outgoing ring");
		return r;
	}
	if (r != 0)
		return r;
	if (ch->ch_pending_set) {
		vmbus_ring_set_pending_send(&ch->ch_out, 0);
		ch->ch_pending_set = false;
	}
	if (need_signal) {
		if (ch->ch_batch)
			ch->ch_batch_signal = true;
		else
			hvs_chan_signal(ch);
	}
	fault_bad_ring_index(ch);
	return 0;
}

void hvs_chan_batch_begin(struct hvs_channel *ch)
{
	if (ch != NULL)
		ch->ch_batch = true;
}

void hvs_chan_batch_end(struct hvs_channel *ch)
{
	if (ch == NULL || !ch->ch_batch)
		return;
	ch->ch_batch = false;
	if (!ch->ch_batch_signal)
		return;
	ch->ch_batch_signal = false;
	if (ch->ch_state == HVS_CHAN_OPEN)
		hvs_chan_signal(ch);
}

static int fault_write(void *ctx, const struct vmbus_iov *iov, unsigned iovcnt)
{
	return chan_write_raw(ctx, iov, iovcnt);
}

int hvs_chan_send_raw(struct hvs_channel *ch, const struct vmbus_iov *iov,
		      unsigned iovcnt)
{
	struct hvs_vmbus *s = ch->ch_srv;

	if (!hvs_fault_pkt_enabled() || ch->ch_state != HVS_CHAN_OPEN)
		return chan_write_raw(ch, iov, iovcnt);
	/* The send-path fault hooks (host/fault.h). */
	struct hvs_fault_chan fc = {
		.fc_vm = s->vs_name, .fc_name = ch->ch_name,
		.fc_relid = ch->ch_relid, .fc_key = ch,
		.fc_out = &ch->ch_out, .fc_in = &ch->ch_in,
		.fc_p = s->vs_version >= VMBUS_VERSION_WIN8 &&
			ch->ch_target_vp != VMBUS_OPEN_TARGET_VP_NONE ?
			s->vs_p : NULL,
		.fc_vp = ch->ch_target_vp, .fc_sint = VMBUS_MESSAGE_SINT,
	};
	return hvs_fault_pkt_send(&fc, iov, iovcnt, fault_write, ch);
}

int hvs_chan_sendv(struct hvs_channel *ch, uint16_t type, uint16_t flags,
		   uint64_t trans_id, const struct vmbus_iov *iov,
		   unsigned iovcnt)
{
	struct vmbus_iov v[8];
	struct vmbus_packet_desc d;
	static const uint8_t zeros[8];
	uint64_t len = 0;

	if (iovcnt > 6)
		return -VMBUS_EINVAL;
	for (unsigned i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	uint64_t plen = sizeof(d) + VMBUS_PACKET_ROUNDUP(len);
	if (plen > 0xFFFFu * 8u)
		return -VMBUS_EMSGSIZE;
	memset(&d, 0, sizeof(d));
	d.pd_type = hv_cpu_to_le16(type);
	d.pd_offset8 = hv_cpu_to_le16(VMBUS_PACKET_INBAND_OFFSET8);
	d.pd_len8 = hv_cpu_to_le16((uint16_t)(plen / 8u));
	d.pd_flags = hv_cpu_to_le16(flags);
	d.pd_trans_id = hv_cpu_to_le64(trans_id);
	v[0].iov_base = &d;
	v[0].iov_len = sizeof(d);
	unsigned n = 1;
	for (unsigned i = 0; i < iovcnt; i++)
		if (iov[i].iov_len != 0)
			v[n++] = iov[i];
	if (plen - sizeof(d) != len) {
		v[n].iov_base = zeros;
		v[n].iov_len = (uint32_t)(plen - sizeof(d) - len);
		n++;
	}
	return hvs_chan_send_raw(ch, v, n);
}

int hvs_chan_send(struct hvs_channel *ch, uint16_t type, uint16_t flags,
		  uint64_t trans_id, const void *data, uint32_t len)
{
	struct vmbus_iov iov = { .iov_base = data, .iov_len = len };
	return hvs_chan_sendv(ch, type, flags, trans_id, &iov, len ? 1u : 0u);
}

/* ---- GPADLs for device protocols ------------------------------------------- */

/* GPADL `handle` if it was created on ch's channel, else NULL. */
static struct hvs_gpadl *own_gpadl(struct hvs_channel *ch, uint32_t handle)
{
	struct hvs_gpadl *g = hvs_gpadl_find(ch->ch_srv, handle);
	return g != NULL && g->gp_relid == ch->ch_relid ? g : NULL;
}

/* ch's complete GPADL `handle`, not on its way out; NULL if none. */
static struct hvs_gpadl *chan_gpadl(struct hvs_channel *ch, uint32_t handle)
{
	struct hvs_gpadl *g = own_gpadl(ch, handle);
	if (g == NULL || !g->gp_complete || g->gp_teardown)
		return NULL;
	return g;
}

int hvs_chan_gpadl_hold(struct hvs_channel *ch, uint32_t handle,
			uint64_t *bytes)
{
	struct hvs_gpadl *g = chan_gpadl(ch, handle);
	if (g == NULL)
		return -VMBUS_ENOENT;
	if (g->gp_ring_user != 0) {
		/* As for a mapping: the channel's rings are the rings, never
		 * a device buffer too (OPENCHANNEL refuses a held GPADL). */
		hvs_log_guest(&ch->ch_srv->vs_rl, &ch->ch_proto_errors,
			      ch->ch_srv->vs_name,
			      "vmbus: %s: GPADL 0x%x cannot be held: it is the "
			      "channel's ring GPADL", ch->ch_name, handle);
		return -VMBUS_EBUSY;
	}
	g->gp_holds++;
	if (bytes != NULL)
		*bytes = g->gp_bytes;
	return 0;
}

void hvs_chan_gpadl_put(struct hvs_channel *ch, uint32_t handle)
{
	struct hvs_gpadl *g = own_gpadl(ch, handle);
	if (g == NULL || g->gp_holds == 0)
		return;
	g->gp_holds--;
	hvs_gpadl_released(ch->ch_srv, g);
}

int hvs_chan_gpadl_read(struct hvs_channel *ch, uint32_t handle, uint64_t off,
			void *dst, uint32_t len)
{
	struct hvs_gpadl *g = own_gpadl(ch, handle);
	if (g == NULL || g->gp_holds == 0)
		return -VMBUS_ENOENT;
	return hvs_gpadl_copy(ch->ch_srv, g, off, dst, len, false);
}

int hvs_chan_gpadl_write(struct hvs_channel *ch, uint32_t handle,
			 uint64_t off, const void *src, uint32_t len)
{
	struct hvs_gpadl *g = own_gpadl(ch, handle);
	if (g == NULL || g->gp_holds == 0)
		return -VMBUS_ENOENT;
	return hvs_gpadl_copy(ch->ch_srv, g, off, (void *)(uintptr_t)src, len,
			      true);
}

void *hvs_chan_map_gpadl(struct hvs_channel *ch, uint32_t handle,
			 uint64_t *len)
{
	struct hvs_vmbus *s = ch->ch_srv;
	struct hvs_gpadl *g = chan_gpadl(ch, handle);
	const char *why = NULL;

	if (len != NULL)
		*len = 0;
	if (g == NULL)
		why = "unknown handle, still being built, another channel's, "
		      "or being torn down";
	else if (g->gp_ring_user != 0)
		why = "it is the channel's ring GPADL";
	else if (g->gp_rangecount != 1)
		why = "more than one range";
	if (why != NULL) {
		hvs_log_guest(&s->vs_rl, &ch->ch_proto_errors, s->vs_name,
			      "vmbus: %s: GPADL 0x%x cannot be mapped: %s",
			      ch->ch_name, handle, why);
		return NULL;
	}
	uint8_t *win = hvs_gpadl_win_get(s, g);
	if (win == NULL) {
		hvs_log_guest(&s->vs_rl, &ch->ch_proto_errors, s->vs_name,
			      "vmbus: %s: GPADL 0x%x cannot be mapped: page "
			      "refused", ch->ch_name, handle);
		return NULL;
	}
	g->gp_maps++;
	if (len != NULL)
		*len = hv_get_le32(g->gp_stream + VMBUS_GPA_RANGE_BYTE_COUNT);
	return win + hv_get_le32(g->gp_stream + VMBUS_GPA_RANGE_BYTE_OFFSET);
}

void hvs_chan_unmap_gpadl(struct hvs_channel *ch, uint32_t handle)
{
	struct hvs_gpadl *g = own_gpadl(ch, handle);
	if (g == NULL || g->gp_maps == 0)
		return;
	g->gp_maps--;
	hvs_gpadl_win_put(ch->ch_srv, g);
	hvs_gpadl_released(ch->ch_srv, g);
}
