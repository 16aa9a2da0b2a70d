/*
 * src/guest/chan_io.c - channel I/O through the ring library: packet send
 * (in-band, GPA direct; spec 4.4, 4.6), packet receive with the single
 * copy-in function of the ring-packet boundary and descriptor validation
 * (spec 4.7), and bounded waits for receive data / send room.
 */
#include "vmbus_priv.h"
#include "shm.h"

static int chan_io_state_err(const struct vmbus_channel *ch)
{
	switch (vmbus_chan_state(ch)) {
	case VMBUS_CHAN_OPEN:
		return 0;
	case VMBUS_CHAN_BROKEN:
		return -VMBUS_EPROTO;
	default:
		return -VMBUS_ENODEV;
	}
}

static const uint8_t chan_zero_pad[8];

/*
 * Write one packet and signal the host if needed. hdr[0..hdr_len) starts
 * with the packet descriptor, filled in here (offset8 = hdr_len / 8, len8
 * from the whole packet); data[0..len) follows, zero-padded to 8 bytes.
 */
static int chan_write(struct vmbus_channel *ch, void *hdr, uint32_t hdr_len,
    uint16_t type, uint16_t flags, uint64_t trans_id, const void *data,
    uint32_t len)
{
	struct vmbus *vb = ch->ch_bus;
	struct vmbus_packet_desc *d = hdr;
	struct vmbus_iov iov[3];
	uint32_t total = hdr_len + (uint32_t)VMBUS_PACKET_ROUNDUP(len);
	unsigned iovcnt = 0;
	bool need_signal = false;
	int r;

	if (total / 8u > 0xFFFFu)
		return -VMBUS_EINVAL;	/* len8 is 16 bits */
	if (ch->ch_ring_va == NULL)
		return -VMBUS_ENODEV;
	d->pd_type = hv_cpu_to_le16(type);
	d->pd_offset8 = hv_cpu_to_le16((uint16_t)(hdr_len / 8u));
	d->pd_len8 = hv_cpu_to_le16((uint16_t)(total / 8u));
	d->pd_flags = hv_cpu_to_le16(flags);
	d->pd_trans_id = hv_cpu_to_le64(trans_id);
	iov[iovcnt].iov_base = hdr;
	iov[iovcnt++].iov_len = hdr_len;
	if (len) {
		iov[iovcnt].iov_base = data;
		iov[iovcnt++].iov_len = len;
	}
	if (total - hdr_len - len) {
		iov[iovcnt].iov_base = chan_zero_pad;
		iov[iovcnt++].iov_len = total - hdr_len - len;
	}

	vmbus_lock(vb, &ch->ch_tx_lock);
	r = chan_io_state_err(ch);
	if (r != 0) {
		vmbus_unlock(vb, &ch->ch_tx_lock);
		return r;
	}
	r = vmbus_ring_write(&ch->ch_tx, iov, iovcnt, &need_signal);
	if (r == -VMBUS_EAGAIN) {
		/* Ask for a signal when room appears, then re-check once:
		 * the reader may have made room before it saw the request
		 * (spec 3.5 step 1). */
		vmbus_ring_set_pending_send(&ch->ch_tx, total + HV_RING_ALIGN);
		ch->ch_tx_pending = true;
		r = vmbus_ring_write(&ch->ch_tx, iov, iovcnt, &need_signal);
	}
	if (r == 0) {
		if (ch->ch_tx_pending) {
			vmbus_ring_set_pending_send(&ch->ch_tx, 0);
			ch->ch_tx_pending = false;
		}
		vmbus_count(&ch->ch_ctr.cc_tx_packets, 1);
		vmbus_count(&ch->ch_ctr.cc_tx_bytes, total);
	} else if (r == -VMBUS_EAGAIN) {
		vmbus_count(&ch->ch_ctr.cc_tx_full, 1);
	}
	vmbus_unlock(vb, &ch->ch_tx_lock);

	if (r == -VMBUS_EPROTO) {
		vmbus_chan_set_broken(ch, "bad read index in the send ring");
		/* The packet may be published already: signal anyway. */
		need_signal = true;
	}
	if (need_signal)
		vmbus_chan_signal(ch);
	return r;
}

int vmbus_chan_send(struct vmbus_channel *ch, uint16_t type, uint16_t flags,
    const void *data, uint32_t len, uint64_t trans_id)
{
	struct vmbus_packet_desc d;

	if (ch == NULL || (len && data == NULL) ||
	    (flags & (uint16_t)~VMBUS_PACKET_FLAG_COMPLETION_REQUESTED) ||
	    len > 0xFFFFu * 8u - sizeof(d))
		return -VMBUS_EINVAL;
	return chan_write(ch, &d, (uint32_t)sizeof(d), type, flags, trans_id,
	    data, len);
}

#define CHAN_GPA_HDR_MAX 4096u	/* range records we build on the stack */

int vmbus_chan_send_gpa(struct vmbus_channel *ch,
    const struct vmbus_gpa_buf *bufs, uint32_t nbuf,
    const void *data, uint32_t len, uint64_t trans_id)
{
	_Alignas(8) uint8_t hdr[sizeof(struct vmbus_gpa_direct_hdr) +
	    CHAN_GPA_HDR_MAX];
	struct vmbus_gpa_direct_hdr *h = (void *)hdr;
	uint32_t off = (uint32_t)sizeof(*h);

	if (ch == NULL || bufs == NULL || nbuf == 0 ||
	    (len && data == NULL) || len > 0xFFFFu * 8u)
		return -VMBUS_EINVAL;
	for (uint32_t i = 0; i < nbuf; i++) {
		const struct vmbus_gpa_buf *b = &bufs[i];
		uint64_t need;

		if (b->gb_len == 0 || b->gb_offset >= HV_PAGE_SIZE ||
		    b->gb_pfn == NULL)
			return -VMBUS_EINVAL;
		need = VMBUS_GPA_RANGE_PFNS(b->gb_offset, b->gb_len);
		if (need != b->gb_npfn ||
		    off + VMBUS_GPA_RANGE_SIZE(b->gb_npfn) >
		    sizeof(hdr) || b->gb_npfn > CHAN_GPA_HDR_MAX / 8u)
			return -VMBUS_EINVAL;
		hv_put_le32(hdr + off + VMBUS_GPA_RANGE_BYTE_COUNT, b->gb_len);
		hv_put_le32(hdr + off + VMBUS_GPA_RANGE_BYTE_OFFSET,
		    b->gb_offset);
		for (uint32_t p = 0; p < b->gb_npfn; p++)
			hv_put_le64(hdr + off + VMBUS_GPA_RANGE_PFN(p),
			    b->gb_pfn[p]);
		off += VMBUS_GPA_RANGE_SIZE(b->gb_npfn);
	}
	h->gd_rsvd = 0;
	h->gd_range_cnt = hv_cpu_to_le32(nbuf);
	return chan_write(ch, hdr, off, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT,
	    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, trans_id, data, len);
}

/* ---- receive ---- */

static bool chan_type_known(uint16_t type)
{
	return type == VMBUS_PACKET_TYPE_DATA_INBAND ||
	    type == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES ||
	    type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT ||
	    type == VMBUS_PACKET_TYPE_COMP;
}

static const char chan_bad_windex[] = "bad write index in the receive ring";

/* A receive-path violation (ch_rx_lock held): break the channel. */
static int chan_rx_bad(struct vmbus_channel *ch, const char *why)
{
	vmbus_chan_break(ch, why, true);
	return -VMBUS_EPROTO;
}

/*
 * After a receive-ring call that only reports "nothing" (ch_rx_lock held):
 * the ring may have found a bad write_index by itself. Break the channel
 * the first time (while it is still OPEN) so its state, its count and its
 * waiters learn of it instead of waiting for a packet that never comes.
 */
void vmbus_chan_rx_check(struct vmbus_channel *ch)
{
	if (vmbus_ring_broken(&ch->ch_rx) &&
	    vmbus_chan_state(ch) == VMBUS_CHAN_OPEN)
		(void)chan_rx_bad(ch, chan_bad_windex);
}

/* Finish a consumed packet: publish read_index, signal a blocked writer. */
static void chan_read_done(struct vmbus_channel *ch, uint32_t pkt_len)
{
	vmbus_count(&ch->ch_ctr.cc_rx_packets, 1);
	vmbus_count(&ch->ch_ctr.cc_rx_bytes, pkt_len);
	if (vmbus_ring_read_done(&ch->ch_rx))
		vmbus_chan_signal(ch);
	else
		vmbus_chan_rx_check(ch);
}

/*
 * chan_copyin - the single copy-in function of the ring-packet boundary
 * (STYLE 5). Under ch_rx_lock: copy the 16-byte descriptor out once,
 * validate it (spec 4.7) against the private copy, then copy the rest of
 * the packet exactly once (whole: len8*8 bytes; else the payload from
 * offset8*8) into buf. Completions for the xact table are consumed here.
 * A malformed packet breaks the channel.
 */
static int chan_copyin(struct vmbus_channel *ch, void *buf, uint32_t *len,
    struct vmbus_pkt_info *info, bool whole, bool discard)
{
	struct vmbus *vb = ch->ch_bus;
	struct vmbus_packet_desc d;
	uint16_t type, off8, len8, flags;
	uint32_t hdr_len, pkt_len, payload, need, avail;
	uint64_t tid;
	int r;

	for (;;) {
		r = chan_io_state_err(ch);
		if (r != 0)
			return r;
		r = vmbus_ring_peek(&ch->ch_rx, &d, (uint32_t)sizeof(d));
		if (r == -VMBUS_EAGAIN)
			return r;
		if (r != 0)
			return chan_rx_bad(ch, chan_bad_windex);
		type = hv_le16(d.pd_type);
		off8 = hv_le16(d.pd_offset8);
		len8 = hv_le16(d.pd_len8);
		flags = hv_le16(d.pd_flags);
		tid = hv_le64(d.pd_trans_id);
		hdr_len = (uint32_t)off8 * 8u;
		pkt_len = (uint32_t)len8 * 8u;

		if (off8 < VMBUS_PACKET_MIN_OFFSET8 || len8 < off8)
			return chan_rx_bad(ch, "bad packet offset/length");
		if (flags & (uint16_t)~VMBUS_PACKET_FLAG_COMPLETION_REQUESTED)
			return chan_rx_bad(ch, "unknown packet flags");
		avail = vmbus_ring_bytes_to_read(&ch->ch_rx);
		if (pkt_len > vmbus_ring_max_packet(&ch->ch_rx) ||
		    pkt_len + HV_RING_ALIGN > avail) {
			/* The writer publishes whole packets: a descriptor
			 * claiming more than was published is corrupt. */
			return chan_rx_bad(ch, "packet longer than the ring data");
		}
		if ((type == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES &&
		    off8 < VMBUS_XFER_PAGE_MIN_OFFSET8) ||
		    (type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT &&
		    off8 < VMBUS_GPA_DIRECT_MIN_OFFSET8))
			return chan_rx_bad(ch, "packet header too short");
		if (!chan_type_known(type)) {
			/* Skippable: the length checked out. Drop, log once. */
			vmbus_drop(vb, &ch->ch_ctr.cc_unknown_packets,
			    &ch->ch_log_next_ns,
			    "%s: dropped packet of unknown type %u",
			    ch->ch_name, (unsigned)type);
			if (vmbus_ring_skip(&ch->ch_rx, pkt_len) != 0)
				return chan_rx_bad(ch, chan_bad_windex);
			chan_read_done(ch, pkt_len);
			continue;
		}
		payload = pkt_len - hdr_len;
		if (type == VMBUS_PACKET_TYPE_COMP && ch->ch_xact != NULL) {
			if (vmbus_xact_complete(ch, tid, hdr_len, payload)) {
				if (vmbus_ring_broken(&ch->ch_rx))
					return chan_rx_bad(ch, chan_bad_windex);
				chan_read_done(ch, pkt_len);
				continue;
			}
			/* Not ours (id 0 or unknown): to the caller. */
		}
		need = whole ? pkt_len : payload;
		if (discard) {
			/* A waiter pumping for completions drops the rest. */
			vmbus_count(&ch->ch_ctr.cc_unknown_packets, 1);
			if (vmbus_ring_skip(&ch->ch_rx, pkt_len) != 0)
				return chan_rx_bad(ch, chan_bad_windex);
			chan_read_done(ch, pkt_len);
			return 0;
		}
		if (*len < need) {
			*len = need;
			return -VMBUS_ENOBUFS;
		}
		if (whole) {
			/* The descriptor bytes come from the validated copy. */
			vmbus_memcpy(buf, &d, sizeof(d));
			r = vmbus_ring_read(&ch->ch_rx, (uint8_t *)buf + sizeof(d),
			    pkt_len - (uint32_t)sizeof(d), (uint32_t)sizeof(d));
		} else {
			r = vmbus_ring_read(&ch->ch_rx, buf, payload, hdr_len);
		}
		if (r != 0)
			return chan_rx_bad(ch, chan_bad_windex);
		*len = need;
		if (info) {
			info->pi_type = type;
			info->pi_flags = flags;
			info->pi_trans_id = tid;
			info->pi_hdr_len = hdr_len;
			info->pi_pkt_len = pkt_len;
		}
		chan_read_done(ch, pkt_len);
		return 0;
	}
}

static int chan_recv(struct vmbus_channel *ch, void *buf, uint32_t *len,
    struct vmbus_pkt_info *info, bool whole, bool discard)
{
	struct vmbus *vb;
	int r;

	if (ch == NULL || len == NULL || (buf == NULL && *len != 0))
		return -VMBUS_EINVAL;
	if (ch->ch_ring_va == NULL)
		return -VMBUS_ENODEV;
	vb = ch->ch_bus;
	vmbus_lock(vb, &ch->ch_rx_lock);
	r = chan_copyin(ch, buf, len, info, whole, discard);
	vmbus_unlock(vb, &ch->ch_rx_lock);
	return r;
}

int vmbus_chan_recv(struct vmbus_channel *ch, void *buf, uint32_t *len,
    struct vmbus_pkt_info *info)
{
	return chan_recv(ch, buf, len, info, false, false);
}

int vmbus_chan_recv_pkt(struct vmbus_channel *ch, void *buf, uint32_t *len,
    struct vmbus_pkt_info *info)
{
	return chan_recv(ch, buf, len, info, true, false);
}

/* Consume one packet: completions go to their slots, others are dropped. */
int vmbus_chan_recv_discard(struct vmbus_channel *ch)
{
	uint32_t len = 0;

	return chan_recv(ch, NULL, &len, NULL, false, true);
}

/* Bytes waiting in the receive ring (0 when broken/closed). */
int vmbus_chan_rx_pending(struct vmbus_channel *ch)
{
	struct vmbus *vb = ch->ch_bus;
	uint32_t n = 0;

	vmbus_lock(vb, &ch->ch_rx_lock);
	if (ch->ch_ring_va != NULL && vmbus_chan_state(ch) == VMBUS_CHAN_OPEN) {
		n = vmbus_ring_bytes_to_read(&ch->ch_rx);
		if (n == 0)
			vmbus_chan_rx_check(ch);
	}
	vmbus_unlock(vb, &ch->ch_rx_lock);
	return n != 0;
}

/*
 * Send-room check for vmbus_chan_wait_tx. The ring's writer snapshot of
 * the host's read_index is refreshed only by a write, so this loads the
 * shared read_index itself (acquire), as a hint only: a value out of range
 * or misaligned counts as "no room", and the write that follows validates
 * everything again. When there is no room, pending_send_sz asks the host
 * to signal once there is.
 */
static bool chan_tx_room(struct vmbus_channel *ch, uint32_t bytes)
{
	struct vmbus *vb = ch->ch_bus;
	uint32_t need;
	bool ok;

	need = (uint32_t)sizeof(struct vmbus_packet_desc) +
	    (uint32_t)VMBUS_PACKET_ROUNDUP(bytes) + HV_RING_ALIGN;
	vmbus_lock(vb, &ch->ch_tx_lock);
	/* A bad read_index breaks the ring here: room 0, and the caller's
	 * wait ends on the BROKEN state. */
	ok = vmbus_ring_write_room(&ch->ch_tx) > need;
	if (!ok && !vmbus_ring_broken(&ch->ch_tx)) {
		vmbus_ring_set_pending_send(&ch->ch_tx, need);
		ch->ch_tx_pending = true;
	}
	vmbus_unlock(vb, &ch->ch_tx_lock);
	if (!ok && vmbus_ring_broken(&ch->ch_tx))
		vmbus_chan_set_broken(ch, "bad read index in the send ring");
	return ok;
}

/* Wait checks: receive data, or room for `bytes` (arg) in the send ring. */
static int chan_io_usable(struct vmbus_channel *ch)
{
	int r = chan_io_state_err(ch);

	return r != 0 ? r : ch->ch_ring_va == NULL ? -VMBUS_ENODEV : 0;
}

static int chan_rx_ready(struct vmbus_channel *ch, void *arg)
{
	int r = chan_io_usable(ch);

	(void)arg;
	if (r != 0)
		return r;
	return vmbus_chan_rx_pending(ch) ? 0 : VMBUS_WAIT_AGAIN;
}

static int chan_tx_ready(struct vmbus_channel *ch, void *arg)
{
	int r = chan_io_usable(ch);

	if (r != 0)
		return r;
	return chan_tx_room(ch, *(const uint32_t *)arg) ? 0 : VMBUS_WAIT_AGAIN;
}

int vmbus_chan_wait_rx(struct vmbus_channel *ch, uint64_t timeout_ns)
{
	if (ch == NULL)
		return -VMBUS_EINVAL;
	return vmbus_chan_wait_cond(ch, chan_rx_ready, NULL,
	    vmbus_deadline(ch->ch_bus, timeout_ns));
}

int vmbus_chan_wait_tx(struct vmbus_channel *ch, uint32_t bytes,
    uint64_t timeout_ns)
{
	if (ch == NULL)
		return -VMBUS_EINVAL;
	return vmbus_chan_wait_cond(ch, chan_tx_ready, &bytes,
	    vmbus_deadline(ch->ch_bus, timeout_ns));
}

uint32_t vmbus_chan_max_inband(const struct vmbus_channel *ch)
{
	uint32_t m;

	if (ch == NULL || ch->ch_ring_va == NULL)
		return 0;
	/* A packet plus its trailer must leave the ring not quite full. */
	m = ch->ch_tx.rb_dsize - 2u * HV_RING_ALIGN -
	    (uint32_t)sizeof(struct vmbus_packet_desc) - HV_RING_ALIGN;
	if (m > 0xFFFFu * 8u - sizeof(struct vmbus_packet_desc))
		m = 0xFFFFu * 8u - (uint32_t)sizeof(struct vmbus_packet_desc);
	return m & ~7u;
}
