/*
 * hv/ring.h - VMBus ring buffer wire layout (spec/vmbus-core.md section 3).
 *
 * A ring is one 4096-byte control page followed by the data area; a channel
 * has two of them in one GPADL (guest->host first, host->guest at
 * downstream_ringbuffer_pageoffset). All indices are byte offsets into the
 * data area, multiples of 8 and below the data size (spec 3.3).
 *
 * Layout only: the accessors and the algorithms live in src/common/ring.c.
 * Every field holds the little-endian representation.
 */
#ifndef HV_RING_H
#define HV_RING_H

#include <stddef.h>
#include <stdint.h>

#include "hv/wire.h"

/* Control page size; the data area starts right after it. */
#define HV_RING_CONTROL_SIZE 4096u
/* Smallest ring: control page + one data page. */
#define HV_RING_MIN_BYTES    (2u * HV_PAGE_SIZE)
/* Packets, trailers and indices are in 8-byte units (spec 3.3). */
#define HV_RING_ALIGN        8u

/*
 * Ring control page (Linux hv_ring_buffer, FreeBSD vmbus_bufring,
 * MSVM VMRCB). "Owner" is the side that stores the field; the other side
 * only loads it and must validate what it loads.
 */
struct hv_ring_control {
	uint32_t rc_write_index;	/* writer: next free data byte ("In") */
	uint32_t rc_read_index;		/* reader: next unread data byte ("Out") */
	uint32_t rc_interrupt_mask;	/* reader: non-zero, writer need not
					 * signal on empty->non-empty */
	uint32_t rc_pending_send_sz;	/* writer: signal me once raw free
					 * space > this (bytes, trailer
					 * included); 0 = no request */
	uint8_t  rc_reserved1[48];
	uint32_t rc_feature_bits;	/* writer (sending side) */
#define HV_RING_FEAT_PENDING_SEND_SZ	0x00000001u	/* honours pending_send_sz */
	/*
	 * Not assumed zero: FreeBSD keeps a private statistics counter at
	 * offset 4088 of its rings (spec 3.2).
	 */
	uint8_t  rc_reserved2[4028];
};
HV_ASSERT_SIZE(struct hv_ring_control, HV_RING_CONTROL_SIZE);
HV_ASSERT_OFFSET(struct hv_ring_control, rc_write_index, 0);
HV_ASSERT_OFFSET(struct hv_ring_control, rc_read_index, 4);
HV_ASSERT_OFFSET(struct hv_ring_control, rc_interrupt_mask, 8);
HV_ASSERT_OFFSET(struct hv_ring_control, rc_pending_send_sz, 12);
HV_ASSERT_OFFSET(struct hv_ring_control, rc_reserved1, 16);
HV_ASSERT_OFFSET(struct hv_ring_control, rc_feature_bits, 64);
HV_ASSERT_OFFSET(struct hv_ring_control, rc_reserved2, 68);

/*
 * Packet trailer (spec 3.3): follows every packet (len8 * 8 bytes) in the
 * data area, wrapping like the packet. Holds the packet's start offset
 * (write_index before the packet) in bytes 4-7; as a u64 it is
 * start_offset << 32. Receivers need not verify it (spec 4.7).
 */
struct hv_ring_trailer {
	uint32_t rt_reserved;		/* 0 */
	uint32_t rt_offset;		/* start offset of the packet, bytes */
};
HV_ASSERT_SIZE(struct hv_ring_trailer, HV_RING_ALIGN);
HV_ASSERT_OFFSET(struct hv_ring_trailer, rt_offset, 4);

#endif /* HV_RING_H */
