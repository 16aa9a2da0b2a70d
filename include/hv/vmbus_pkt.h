/*
 * hv/vmbus_pkt.h - VMBus packet formats inside the channel rings.
 *
 * Facts from shared/spec/vmbus-core.md section 4. The ring control page and
 * the 8-byte packet trailer belong to hv/ring.h.
 *
 * Every packet starts with a 16-byte descriptor; lengths and offsets are in
 * 8-byte units. Wire structs hold the little-endian representation: read
 * and write their fields with hv_le16()/hv_le32()/hv_le64() from hv/wire.h.
 *
 * Freestanding: only compiler-provided headers.
 */
#ifndef HV_VMBUS_PKT_H
#define HV_VMBUS_PKT_H

#include <stdint.h>

#include "hv/vmbus_msg.h"	/* struct vmbus_gpa_range */
#include "hv/wire.h"

/* ---- 4.2 Packet types ---------------------------------------------------- */

#define VMBUS_PACKET_TYPE_INVALID		0x0u
#define VMBUS_PACKET_TYPE_SYNCH			0x1u	/* reserved (LNX only) */
#define VMBUS_PACKET_TYPE_ADD_XFER_PAGESET	0x2u	/* reserved (LNX only) */
#define VMBUS_PACKET_TYPE_RM_XFER_PAGESET	0x3u	/* reserved (LNX only) */
#define VMBUS_PACKET_TYPE_ESTABLISH_GPADL	0x4u	/* reserved (LNX only) */
#define VMBUS_PACKET_TYPE_TEARDOWN_GPADL	0x5u	/* reserved (LNX only) */
#define VMBUS_PACKET_TYPE_DATA_INBAND		0x6u
#define VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES	0x7u	/* transfer-page packet */
#define VMBUS_PACKET_TYPE_DATA_USING_GPADL	0x8u	/* reserved; OVMM rejects */
#define VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT	0x9u
#define VMBUS_PACKET_TYPE_CANCEL_REQUEST	0xAu	/* OVMM rejects */
#define VMBUS_PACKET_TYPE_COMP			0xBu	/* completion */
#define VMBUS_PACKET_TYPE_DATA_USING_ADDITIONAL_PKT 0xCu /* LNX only */
#define VMBUS_PACKET_TYPE_ADDITIONAL_DATA	0xDu	/* LNX only */

/* ---- 4.1 Packet descriptor (16 bytes) ------------------------------------ */

/*
 * Every packet. Payload seen by the receiver = (len8 - offset8) * 8 bytes,
 * padding included. The 8-byte trailer (hv/ring.h) is not in len8.
 */
struct vmbus_packet_desc {
	uint16_t pd_type;			/* VMBUS_PACKET_TYPE_* */
	uint16_t pd_offset8;			/* payload offset, 8-byte units */
	uint16_t pd_len8;			/* packet length, 8-byte units */
	uint16_t pd_flags;
#define VMBUS_PACKET_FLAG_COMPLETION_REQUESTED	0x0001u	/* others: corrupt (OVMM) */
	uint64_t pd_trans_id;			/* echoed by completions */
};
HV_ASSERT_SIZE(struct vmbus_packet_desc, 16);
HV_ASSERT_OFFSET(struct vmbus_packet_desc, pd_offset8, 2);
HV_ASSERT_OFFSET(struct vmbus_packet_desc, pd_len8, 4);
HV_ASSERT_OFFSET(struct vmbus_packet_desc, pd_flags, 6);
HV_ASSERT_OFFSET(struct vmbus_packet_desc, pd_trans_id, 8);

#define VMBUS_PACKET_ALIGN		8u
#define VMBUS_PACKET_ALIGN_SHIFT	3
#define VMBUS_PACKET_ROUNDUP(n)                                              \
	(((n) + VMBUS_PACKET_ALIGN - 1) & ~(VMBUS_PACKET_ALIGN - 1))
/* Smallest valid offset8 for any packet (the descriptor itself). */
#define VMBUS_PACKET_MIN_OFFSET8	2u
/* In-band / completion: offset8 = 2, bytes = 16 + round_up(payload, 8). */
#define VMBUS_PACKET_INBAND_OFFSET8	2u

/* ---- 4.5 Transfer-page packet (type 7) ---------------------------------- */

struct vmbus_xfer_page_range {
	uint32_t xr_byte_count;
	uint32_t xr_byte_offset;		/* into the transfer page set */
};
HV_ASSERT_SIZE(struct vmbus_xfer_page_range, 8);
HV_ASSERT_OFFSET(struct vmbus_xfer_page_range, xr_byte_offset, 4);

/* offset8 = (24 + 8 * range_cnt) / 8; RESP for NetVSP receive. */
struct vmbus_xfer_page_hdr {
	struct vmbus_packet_desc xp_desc;	/* type 7 */
	uint16_t xp_pageset_id;			/* id of a shared buffer */
	uint8_t xp_sender_owns_set;		/* OVMM/FBSD: reserved, may be garbage */
	uint8_t xp_rsvd;
	uint32_t xp_range_cnt;
	struct vmbus_xfer_page_range xp_ranges[];
};
HV_ASSERT_SIZE(struct vmbus_xfer_page_hdr, 24);
HV_ASSERT_OFFSET(struct vmbus_xfer_page_hdr, xp_pageset_id, 16);
HV_ASSERT_OFFSET(struct vmbus_xfer_page_hdr, xp_sender_owns_set, 18);
HV_ASSERT_OFFSET(struct vmbus_xfer_page_hdr, xp_rsvd, 19);
HV_ASSERT_OFFSET(struct vmbus_xfer_page_hdr, xp_range_cnt, 20);
HV_ASSERT_OFFSET(struct vmbus_xfer_page_hdr, xp_ranges, 24);
#define VMBUS_XFER_PAGE_MIN_OFFSET8	3u

/* ---- 4.6 GPA-direct packet (type 9) ------------------------------------- */

/*
 * Descriptor + 8 bytes, then range_cnt variable-size struct vmbus_gpa_range
 * records (hv/vmbus_msg.h: byte_count, byte_offset < 4096, PFNs), 8-aligned
 * here; the device request starts at offset8 * 8.
 */
struct vmbus_gpa_direct_hdr {
	struct vmbus_packet_desc gd_desc;	/* type 9, COMPLETION_REQUESTED */
	uint32_t gd_rsvd;			/* may be garbage (OVMM) */
	uint32_t gd_range_cnt;			/* >= 1 */
	uint64_t gd_range[];			/* range records, u64 units */
};
HV_ASSERT_SIZE(struct vmbus_gpa_direct_hdr, 24);
HV_ASSERT_OFFSET(struct vmbus_gpa_direct_hdr, gd_rsvd, 16);
HV_ASSERT_OFFSET(struct vmbus_gpa_direct_hdr, gd_range_cnt, 20);
HV_ASSERT_OFFSET(struct vmbus_gpa_direct_hdr, gd_range, 24);
#define VMBUS_GPA_DIRECT_MIN_OFFSET8	3u

/*
 * "Page buffer" form: one range per page, exactly one PFN each (16 bytes
 * per entry, byte_count <= 4096). LNX limit: 32 entries.
 */
struct vmbus_gpa_page {
	uint32_t gp_byte_count;			/* <= HV_PAGE_SIZE */
	uint32_t gp_byte_offset;		/* < HV_PAGE_SIZE */
	uint64_t gp_pfn;
};
HV_ASSERT_SIZE(struct vmbus_gpa_page, 16);
HV_ASSERT_OFFSET(struct vmbus_gpa_page, gp_byte_offset, 4);
HV_ASSERT_OFFSET(struct vmbus_gpa_page, gp_pfn, 8);
#define VMBUS_GPA_PAGE_BUFFER_MAX	32u	/* LNX limit */

/* ---- 4.8 Pipe mode (NAMED_PIPE_MODE offers) ----------------------------- */

#define VMBUS_PIPE_TYPE_DATA			1u
#define VMBUS_PIPE_TYPE_PARTIAL			2u
#define VMBUS_PIPE_TYPE_SETUP_GPA_DIRECT	3u
#define VMBUS_PIPE_TYPE_TEARDOWN_GPA_DIRECT	4u
#define VMBUS_PIPE_TYPE_INDICATION_COMPLETE	5u	/* MSVM */

/* Starts every in-band payload on a pipe-mode channel. */
struct vmbus_pipe_hdr {
	uint32_t ph_type;			/* VMBUS_PIPE_TYPE_* */
	uint32_t ph_data_size;			/* bytes following */
};
HV_ASSERT_SIZE(struct vmbus_pipe_hdr, 8);
HV_ASSERT_OFFSET(struct vmbus_pipe_hdr, ph_data_size, 4);
#define VMBUS_PIPE_PAYLOAD_MAX		16384u

#endif /* HV_VMBUS_PKT_H */
