/*
 * host/vsp/vsp.h - the VSP framework: what a device protocol server (echo,
 * netvsp, storvsp, IC host) sees of a VMBus channel on the host side.
 *
 * A VSP registers a device with hvs_vmbus_add_device() (host/vmbus_server.h)
 * passing `struct hvs_vsp_ops`. The server calls the ops on the partition's
 * loop thread; every function below must be called on that thread too
 * (none of them sleeps or blocks).
 *
 * Channel life: vo_open when the guest's OPENCHANNEL passed validation and
 * both rings are mapped -> vo_on_signal whenever the guest signals (and once
 * right after open) -> vo_close (guest CLOSECHANNEL, rescind, unload,
 * reconnect, partition end). After vo_close returns the rings are unmapped:
 * the VSP must not keep pointers into them.
 *
 * Trust (STYLE 5, 12): ring contents are hostile. hvs_chan_recv() is the one
 * copy-in function for ring packets: it copies the whole packet into the
 * caller's private buffer, then validates the descriptor (spec 4.7) and the
 * type-specific headers from THAT copy. A violation marks the channel
 * broken (logged, counted): no more receives or sends until the guest
 * closes and reopens it.
 */
#ifndef HVS_VSP_H
#define HVS_VSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ring.h"
#include "hv/vmbus_pkt.h"

struct hvs_vmbus;
struct hvs_channel;
struct hvs_partition;

/* Why a channel closes (vo_close's `why`). */
#define HVS_CLOSE_GUEST   0 /* guest sent CLOSECHANNEL */
#define HVS_CLOSE_RESCIND 1 /* host rescinded the channel */
#define HVS_CLOSE_RESET   2 /* UNLOAD, reconnect, partition end, destroy */

struct hvs_vsp_ops {
	/*
	 * The guest opened ch: rings mapped, hvs_chan_open_userdata() valid.
	 * Return 0 to accept, or a negative VMBUS_E* code to fail the open
	 * (the guest gets a failing OPENCHANNEL_RESULT).
	 */
	int (*vo_open)(void *arg, struct hvs_channel *ch);
	/* ch closes (why = HVS_CLOSE_*). Free per-channel state here. */
	void (*vo_close)(void *arg, struct hvs_channel *ch, int why);
	/*
	 * The guest signalled ch (new incoming data, or space freed in the
	 * outgoing ring after hvs_chan_send() returned -EAGAIN). Drain with
	 * hvs_chan_recv() and finish with hvs_chan_recv_done().
	 */
	void (*vo_on_signal)(void *arg, struct hvs_channel *ch);
	/* Optional: the host is rescinding ch (called before vo_close if open). */
	void (*vo_rescind)(void *arg, struct hvs_channel *ch);
	/* Optional: the device is gone for good (server destroyed or released
	 * after a rescind). arg is not used by the server afterwards. */
	void (*vo_destroy)(void *arg);
};

/* ---- channel identity ---------------------------------------------------- */

uint32_t hvs_chan_relid(const struct hvs_channel *ch);
uint16_t hvs_chan_sub_index(const struct hvs_channel *ch);
struct hvs_vmbus *hvs_chan_server(const struct hvs_channel *ch);
struct hvs_partition *hvs_chan_partition(const struct hvs_channel *ch);
/* Device name prefixed by the VM name, for logs ("vm1/echo0"). */
const char *hvs_chan_name(const struct hvs_channel *ch);
/* The 120 bytes of OPENCHANNEL userdata (private copy). */
const uint8_t *hvs_chan_open_userdata(const struct hvs_channel *ch);
/* Per-channel VSP state. */
void hvs_chan_set_priv(struct hvs_channel *ch, void *priv);
void *hvs_chan_priv(const struct hvs_channel *ch);
/* Largest packet (descriptor included, trailer excluded) the incoming /
 * outgoing ring can carry. 0 when not open. */
uint32_t hvs_chan_in_max_packet(const struct hvs_channel *ch);
uint32_t hvs_chan_out_max_packet(const struct hvs_channel *ch);
bool hvs_chan_is_open(const struct hvs_channel *ch);
bool hvs_chan_is_broken(const struct hvs_channel *ch);

/* ---- receiving (guest -> host ring) -------------------------------------- */

/* A validated packet: every pointer points into the caller's buffer. */
struct hvs_pkt {
	uint16_t pk_type;          /* VMBUS_PACKET_TYPE_* (6, 7, 9, 0xB) */
	uint16_t pk_flags;         /* VMBUS_PACKET_FLAG_* */
	uint64_t pk_trans_id;
	uint32_t pk_len;           /* whole packet, len8 * 8 */
	const uint8_t *pk_raw;     /* the private copy, pk_len bytes */
	const uint8_t *pk_data;    /* payload at offset8 * 8 */
	uint32_t pk_datalen;       /* (len8 - offset8) * 8, padding included */
	/* GPA direct (9): validated range stream, each range byte_offset <
	 * 4096, byte_count > 0, enough PFNs; PFNs are NOT checked against
	 * guest RAM here (hvs_pkt_gpa_read/write check every access). */
	uint32_t pk_range_cnt;
	const uint8_t *pk_ranges;
	uint32_t pk_ranges_len;
	uint64_t pk_gpa_bytes;     /* sum of byte_count */
	/* transfer pages (7) */
	uint16_t pk_xfer_pageset_id;
	uint32_t pk_xfer_range_cnt;
	const uint8_t *pk_xfer_ranges; /* struct vmbus_xfer_page_range[] */
};

/*
 * Copy the next packet out of the incoming ring into buf (8-byte aligned,
 * buflen bytes) and validate it. Consumes it privately; the space goes
 * back to the guest with hvs_chan_recv_done().
 * Returns:
 *   0               *pk filled.
 *   -VMBUS_EAGAIN   ring empty.
 *   -VMBUS_ENOBUFS  the packet is larger than buflen; *needed (if not NULL)
 *                   = its size; nothing consumed.
 *   -VMBUS_EPROTO   the guest broke the ring/packet rules: channel broken.
 *   -VMBUS_ENODEV   channel not open.
 * Packets of an unknown type are skipped (logged, counted) and the next
 * one is returned.
 */
int hvs_chan_recv(struct hvs_channel *ch, struct hvs_pkt *pk, void *buf,
		  uint32_t buflen, uint32_t *needed);

/*
 * Publish what hvs_chan_recv consumed (read_index) and signal the guest if
 * that satisfied its pending_send_sz (spec 3.6). Call after each batch.
 */
void hvs_chan_recv_done(struct hvs_channel *ch);

/* interrupt_mask on the incoming ring while draining (spec 3.6). unmask
 * returns bytes still pending: non-zero means drain again. */
void hvs_chan_mask(struct hvs_channel *ch);
uint32_t hvs_chan_unmask(struct hvs_channel *ch);

/*
 * Copy len bytes at byte offset off of the buffer a GPA-direct packet
 * describes (its ranges concatenated) from / to guest memory. Every page
 * access is bounds-checked by the partition. Returns 0, -VMBUS_ERANGE
 * (off+len beyond pk_gpa_bytes), -VMBUS_EFAULT (a PFN outside guest RAM:
 * the guest's fault, logged and counted on the channel).
 */
int hvs_pkt_gpa_read(struct hvs_channel *ch, const struct hvs_pkt *pk,
		     uint64_t off, void *dst, uint32_t len);
int hvs_pkt_gpa_write(struct hvs_channel *ch, const struct hvs_pkt *pk,
		      uint64_t off, const void *src, uint32_t len);

/* ---- sending (host -> guest ring) ---------------------------------------- */

/*
 * Send an in-band (VMBUS_PACKET_TYPE_DATA_INBAND) or completion
 * (VMBUS_PACKET_TYPE_COMP) packet: descriptor + data padded with zeros to
 * 8 bytes. flags: VMBUS_PACKET_FLAG_COMPLETION_REQUESTED or 0. Signals the
 * guest when the ring rules say so (interrupt_mask, empty->non-empty).
 * Returns 0, -VMBUS_EAGAIN (ring full: pending_send_sz is set, the guest
 * will signal when it has read enough -> vo_on_signal; retry then),
 * -VMBUS_EMSGSIZE (never fits), -VMBUS_EPROTO (broken), -VMBUS_ENODEV.
 */
int hvs_chan_send(struct hvs_channel *ch, uint16_t type, uint16_t flags,
		  uint64_t trans_id, const void *data, uint32_t len);
/* Same, payload gathered from iov (total padded to 8 here). */
int hvs_chan_sendv(struct hvs_channel *ch, uint16_t type, uint16_t flags,
		   uint64_t trans_id, const struct vmbus_iov *iov,
		   unsigned iovcnt);
/* A packet the caller built completely (descriptor included, total a
 * multiple of 8), e.g. transfer-page packets. Same returns. */
int hvs_chan_send_raw(struct hvs_channel *ch, const struct vmbus_iov *iov,
		      unsigned iovcnt);

/* Signal the guest for ch now (per-version rule of spec 3.7). */
void hvs_chan_signal(struct hvs_channel *ch);

/*
 * A batch of sends on ch (e.g. the completions of one back-end wake-up):
 * between begin and end, a send that needs to signal the guest only notes
 * it; end signals once if any did. Loop thread only; NULL ch is a no-op.
 * A batch still open when the channel is opened again is forgotten.
 */
void hvs_chan_batch_begin(struct hvs_channel *ch);
void hvs_chan_batch_end(struct hvs_channel *ch);

/* The VSP found a protocol violation in a packet: log (rate-limited),
 * count, mark the channel broken. */
void hvs_chan_set_broken(struct hvs_channel *ch, const char *why);

/* ---- GPADLs named by device protocols (receive/send buffers) ------------- */

/*
 * A device protocol names buffers by GPADL handle (NetVSC receive and send
 * buffers, for example). A VSP either holds one and copies through the
 * checked calls below, or maps it. Only GPADLs created on ch's own channel
 * can be used. While a GPADL is held or mapped the guest's GPADL_TEARDOWN
 * waits: GPADL_TORNDOWN goes out when the last hold and mapping are
 * released (spec 5.4: the host stops using the memory, then answers);
 * meanwhile the GPADL cannot be held or mapped again. Every hold and
 * mapping of ch's GPADLs is released automatically after vo_close returns
 * (guest close, rescind, unload, partition end).
 */

/*
 * Look up the established GPADL `handle` of ch's channel and hold it.
 * Returns 0 and its size in *bytes, -VMBUS_ENOENT (unknown, still being
 * built, another channel's, or its teardown is pending), -VMBUS_EBUSY
 * (it is the channel's ring GPADL: logged and counted as a guest error).
 */
int hvs_chan_gpadl_hold(struct hvs_channel *ch, uint32_t handle,
			uint64_t *bytes);
void hvs_chan_gpadl_put(struct hvs_channel *ch, uint32_t handle);
/* Copy to / from a held GPADL at byte offset off. 0, -VMBUS_ERANGE,
 * -VMBUS_EFAULT, -VMBUS_ENOENT. */
int hvs_chan_gpadl_read(struct hvs_channel *ch, uint32_t handle, uint64_t off,
			void *dst, uint32_t len);
int hvs_chan_gpadl_write(struct hvs_channel *ch, uint32_t handle,
			 uint64_t off, const void *src, uint32_t len);

/*
 * Map the established single-range GPADL `handle` of ch's channel into
 * one contiguous host window, however the guest scattered its pages (each
 * page bounds-checked by the partition, see hvs_gpa_map_pfns). Returns a
 * pointer to the buffer's first byte (the range's byte_offset applied) and
 * its byte_count in *len (if not NULL; 0 on failure), or NULL: unknown
 * handle, still being built, another channel's, teardown pending, ch's
 * ring GPADL, more than one range, or a page the partition refused (PFN
 * listed twice) - each logged and counted on the channel.
 *
 * The memory is shared with the guest, which may change it at any time:
 * copy in before validating (STYLE 5). The pointer is valid until the
 * matching hvs_chan_unmap_gpadl() or until vo_close returns, whichever
 * comes first. Mapping a GPADL again returns the same window and needs
 * one more unmap. Loop thread only; the window itself may be used by VSP
 * worker threads within that lifetime.
 */
void *hvs_chan_map_gpadl(struct hvs_channel *ch, uint32_t handle,
			 uint64_t *len);
/* Release one mapping of `handle` (no-op if ch has none); a GPADL_TEARDOWN
 * waiting for it is answered once nothing else holds the GPADL. */
void hvs_chan_unmap_gpadl(struct hvs_channel *ch, uint32_t handle);

#endif /* HVS_VSP_H */
