/*
 * hv/vmbus_msg.h - VMBus channel messages (the SynIC message payloads).
 *
 * Facts from shared/spec/vmbus-core.md section 2 (and 5 for GPADLs).
 * Offsets include the 8-byte channel message header, i.e. they count from
 * the first byte of the SynIC payload.
 *
 * Messages that grew over versions are defined ONCE, in their largest
 * form; the smaller wire sizes are VMBUS_CHANMSG_*_SIZE* constants. Send
 * exactly the size for the negotiated version/features (a host emulator
 * must send exactly the sizes of the table in spec 2.2), never sizeof()
 * of an extended struct; receivers accept longer messages and ignore
 * trailing bytes.
 *
 * Direction comments: REQ = guest -> host, RESP = host -> guest (including
 * unsolicited host messages such as offers and rescinds).
 *
 * Wire structs hold the little-endian representation: read and write their
 * fields with hv_le16()/hv_le32()/hv_le64() from hv/wire.h.
 *
 * Freestanding: only compiler-provided headers.
 */
#ifndef HV_VMBUS_MSG_H
#define HV_VMBUS_MSG_H

#include <stdint.h>

#include "hv/tlfs.h"
#include "hv/wire.h"

/* ---- 2.3 Protocol versions: (major << 16) | minor --------------------- */

#define VMBUS_VERSION(maj, min)		((uint32_t)(((maj) << 16) | (min)))
#define VMBUS_VERSION_MAJOR(v)		((uint32_t)(v) >> 16)
#define VMBUS_VERSION_MINOR(v)		((uint32_t)(v) & 0xFFFFu)

#define VMBUS_VERSION_WS2008		0x0000000Du	/* 0.13, "V1" */
#define VMBUS_VERSION_WIN7		0x00010001u	/* 1.1, WS2008 R2 */
#define VMBUS_VERSION_WIN8		0x00020004u	/* 2.4, WS2012 */
#define VMBUS_VERSION_WIN8_1		0x00030000u	/* 3.0, WS2012 R2 */
#define VMBUS_VERSION_WIN10		0x00040000u	/* 4.0, WS2016 */
#define VMBUS_VERSION_WIN10_RS3_0	0x00040001u	/* 4.1 */
#define VMBUS_VERSION_WIN10_RS3_1	0x00050000u	/* 5.0, "MULTICLIENT" */
#define VMBUS_VERSION_MULTICLIENT	VMBUS_VERSION_WIN10_RS3_1
#define VMBUS_VERSION_WIN10_RS4		0x00050001u	/* 5.1 */
#define VMBUS_VERSION_WIN10_RS5		0x00050002u	/* 5.2, WS2019 */
#define VMBUS_VERSION_IRON		0x00050003u	/* 5.3, WS2022 */
#define VMBUS_VERSION_COPPER		0x00060000u	/* 6.0 */
#define VMBUS_VERSION_COUNT		11u

/* Every known version, newest first (the order a guest tries them). */
#define VMBUS_VERSIONS_NEWEST_FIRST                                          \
	VMBUS_VERSION_COPPER, VMBUS_VERSION_IRON, VMBUS_VERSION_WIN10_RS5,   \
	VMBUS_VERSION_WIN10_RS4, VMBUS_VERSION_WIN10_RS3_1,                  \
	VMBUS_VERSION_WIN10_RS3_0, VMBUS_VERSION_WIN10,                      \
	VMBUS_VERSION_WIN8_1, VMBUS_VERSION_WIN8, VMBUS_VERSION_WIN7,        \
	VMBUS_VERSION_WS2008

static inline int vmbus_version_known(uint32_t v)
{
	switch (v) {
	case VMBUS_VERSION_WS2008: case VMBUS_VERSION_WIN7:
	case VMBUS_VERSION_WIN8: case VMBUS_VERSION_WIN8_1:
	case VMBUS_VERSION_WIN10: case VMBUS_VERSION_WIN10_RS3_0:
	case VMBUS_VERSION_WIN10_RS3_1: case VMBUS_VERSION_WIN10_RS4:
	case VMBUS_VERSION_WIN10_RS5: case VMBUS_VERSION_IRON:
	case VMBUS_VERSION_COPPER:
		return 1;
	default:
		return 0;
	}
}

/* ---- 2.2 Message type numbers ------------------------------------------ */

#define VMBUS_CHANMSG_INVALID			0u
#define VMBUS_CHANMSG_OFFERCHANNEL		1u	/* RESP */
#define VMBUS_CHANMSG_RESCIND_CHANNELOFFER	2u	/* RESP */
#define VMBUS_CHANMSG_REQUESTOFFERS		3u	/* REQ */
#define VMBUS_CHANMSG_ALLOFFERS_DELIVERED	4u	/* RESP */
#define VMBUS_CHANMSG_OPENCHANNEL		5u	/* REQ */
#define VMBUS_CHANMSG_OPENCHANNEL_RESULT	6u	/* RESP */
#define VMBUS_CHANMSG_CLOSECHANNEL		7u	/* REQ */
#define VMBUS_CHANMSG_GPADL_HEADER		8u	/* REQ */
#define VMBUS_CHANMSG_GPADL_BODY		9u	/* REQ */
#define VMBUS_CHANMSG_GPADL_CREATED		10u	/* RESP */
#define VMBUS_CHANMSG_GPADL_TEARDOWN		11u	/* REQ */
#define VMBUS_CHANMSG_GPADL_TORNDOWN		12u	/* RESP */
#define VMBUS_CHANMSG_RELID_RELEASED		13u	/* REQ */
#define VMBUS_CHANMSG_INITIATE_CONTACT		14u	/* REQ */
#define VMBUS_CHANMSG_VERSION_RESPONSE		15u	/* RESP */
#define VMBUS_CHANMSG_UNLOAD			16u	/* REQ */
#define VMBUS_CHANMSG_UNLOAD_RESPONSE		17u	/* RESP */
#define VMBUS_CHANMSG_OPEN_RESERVED_CHANNEL	18u	/* REQ */
#define VMBUS_CHANMSG_CLOSE_RESERVED_CHANNEL	19u	/* REQ */
#define VMBUS_CHANMSG_CLOSE_RESERVED_RESPONSE	20u	/* RESP */
#define VMBUS_CHANMSG_TL_CONNECT_REQUEST	21u	/* REQ */
#define VMBUS_CHANMSG_MODIFYCHANNEL		22u	/* REQ */
#define VMBUS_CHANMSG_TL_CONNECT_RESULT		23u	/* RESP */
#define VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE	24u	/* RESP */
#define VMBUS_CHANMSG_MODIFY_CONNECTION		25u	/* REQ */
#define VMBUS_CHANMSG_MODIFY_CONNECTION_RESPONSE 26u	/* RESP */
#define VMBUS_CHANMSG_PAUSE			27u	/* NOTE: single source OVMM */
#define VMBUS_CHANMSG_PAUSE_RESPONSE		28u	/* NOTE: single source OVMM */
#define VMBUS_CHANMSG_RESUME			29u	/* NOTE: single source OVMM */
#define VMBUS_CHANMSG_COUNT			30u

/*
 * Minimum protocol version of each message type (OVMM's parser table).
 * 0 = valid in any state (INITIATE_CONTACT, VERSION_RESPONSE,
 * CLOSE_RESERVED_CHANNEL). Types 25-29 additionally need a 6.0 feature
 * (VMBUS_FEATURE_MODIFY_CONNECTION / VMBUS_FEATURE_PAUSE_RESUME).
 */
#define VMBUS_CHANMSG_MINVER_ANY		0u
static inline uint32_t vmbus_chanmsg_min_version(uint32_t type)
{
	switch (type) {
	case VMBUS_CHANMSG_OFFERCHANNEL: case VMBUS_CHANMSG_RESCIND_CHANNELOFFER:
	case VMBUS_CHANMSG_REQUESTOFFERS: case VMBUS_CHANMSG_ALLOFFERS_DELIVERED:
	case VMBUS_CHANMSG_OPENCHANNEL: case VMBUS_CHANMSG_OPENCHANNEL_RESULT:
	case VMBUS_CHANMSG_CLOSECHANNEL: case VMBUS_CHANMSG_GPADL_HEADER:
	case VMBUS_CHANMSG_GPADL_BODY: case VMBUS_CHANMSG_GPADL_CREATED:
	case VMBUS_CHANMSG_GPADL_TEARDOWN: case VMBUS_CHANMSG_GPADL_TORNDOWN:
	case VMBUS_CHANMSG_RELID_RELEASED: case VMBUS_CHANMSG_UNLOAD:
		return VMBUS_VERSION_WS2008;
	case VMBUS_CHANMSG_INITIATE_CONTACT: case VMBUS_CHANMSG_VERSION_RESPONSE:
	case VMBUS_CHANMSG_CLOSE_RESERVED_CHANNEL:
		return VMBUS_CHANMSG_MINVER_ANY;
	case VMBUS_CHANMSG_UNLOAD_RESPONSE:
		return VMBUS_VERSION_WIN7;
	case VMBUS_CHANMSG_OPEN_RESERVED_CHANNEL:
	case VMBUS_CHANMSG_CLOSE_RESERVED_RESPONSE:
	case VMBUS_CHANMSG_TL_CONNECT_REQUEST:
		return VMBUS_VERSION_WIN10;
	case VMBUS_CHANMSG_MODIFYCHANNEL: case VMBUS_CHANMSG_TL_CONNECT_RESULT:
		return VMBUS_VERSION_WIN10_RS3_0;
	case VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE:
		return VMBUS_VERSION_IRON;
	case VMBUS_CHANMSG_MODIFY_CONNECTION:
	case VMBUS_CHANMSG_MODIFY_CONNECTION_RESPONSE:
	case VMBUS_CHANMSG_PAUSE: case VMBUS_CHANMSG_PAUSE_RESPONSE:
	case VMBUS_CHANMSG_RESUME:
		return VMBUS_VERSION_COPPER;
	default:
		return UINT32_MAX;	/* INVALID or unknown: never valid */
	}
}

/* ---- 2.6 Version 6.0 feature flags ------------------------------------- */

#define VMBUS_FEATURE_GUEST_SPECIFIED_SIGNAL_PARAMETERS	0x01u
#define VMBUS_FEATURE_CHANNEL_INTERRUPT_REDIRECTION	0x02u
#define VMBUS_FEATURE_MODIFY_CONNECTION			0x04u
#define VMBUS_FEATURE_CLIENT_ID				0x08u
#define VMBUS_FEATURE_CONFIDENTIAL_CHANNELS		0x10u	/* paravisor only */
#define VMBUS_FEATURE_PAUSE_RESUME			0x20u	/* single source OVMM */
#define VMBUS_FEATURE_SERVER_SPECIFIED_MONITOR_PAGES	0x40u	/* single source OVMM */
#define VMBUS_FEATURE_GPA_PINNING			0x80u	/* single source OVMM */

/* ---- Connection state (VERSION_RESPONSE, MODIFY_CONNECTION_RESPONSE) -- */

#define VMBUS_CONNECTION_SUCCESSFUL		0u
#define VMBUS_CONNECTION_FAILED_LOW_RESOURCES	1u
#define VMBUS_CONNECTION_FAILED_UNKNOWN_FAILURE	2u

/* Failure status OVMM puts in GPADL_CREATED / OPENCHANNEL_RESULT. */
#define VMBUS_STATUS_OVMM_FAILURE		0x8000FFFFu
/* NTSTATUS STATUS_CONNECTION_REFUSED, OVMM's TL_CONNECT_RESULT failure. */
#define VMBUS_STATUS_CONNECTION_REFUSED		0xC0000236u

/* ---- 2.1 Common header (8 bytes) ---------------------------------------- */

struct vmbus_chanmsg_hdr {
	uint32_t chm_type;		/* VMBUS_CHANMSG_* */
	uint32_t chm_rsvd;		/* 0 */
};
HV_ASSERT_SIZE(struct vmbus_chanmsg_hdr, 8);

#define VMBUS_MSG_PAYLOAD_MAX		HV_MESSAGE_PAYLOAD_MAX	/* 240 */

/* ---- 2.5 Offer flags (OFFERCHANNEL chn_flags) ------------------------- */

#define VMBUS_OFFER_FLAG_ENUMERATE_DEVICE_INTERFACE	0x0001u
/* legacy meaning; with 6.0 + CONFIDENTIAL_CHANNELS: CONFIDENTIAL_RING_BUFFER */
#define VMBUS_OFFER_FLAG_SERVER_SUPPORTS_TRANSFER_PAGES	0x0002u
#define VMBUS_OFFER_FLAG_CONFIDENTIAL_RING_BUFFER	0x0002u
/* legacy; with 6.0 + CONFIDENTIAL_CHANNELS: CONFIDENTIAL_EXTERNAL_MEMORY */
#define VMBUS_OFFER_FLAG_SERVER_SUPPORTS_GPADLS		0x0004u
#define VMBUS_OFFER_FLAG_CONFIDENTIAL_EXTERNAL_MEMORY	0x0004u
#define VMBUS_OFFER_FLAG_REQUIRE_PINNED_EXTERNAL_MEMORY	0x0008u	/* 6.0 + GPA_PINNING */
#define VMBUS_OFFER_FLAG_NAMED_PIPE_MODE		0x0010u
#define VMBUS_OFFER_FLAG_LOOPBACK_OFFER			0x0100u	/* single source LNX */
#define VMBUS_OFFER_FLAG_PARENT_OFFER			0x0200u	/* single source LNX */
#define VMBUS_OFFER_FLAG_REQUEST_MONITORED_NOTIFICATION	0x0400u	/* single source LNX */
#define VMBUS_OFFER_FLAG_TLNPI_PROVIDER_OFFER		0x2000u	/* >= 4.0, hv_sock */

/* Pipe mode: first u32 of of_user_defined when NAMED_PIPE_MODE is set. */
#define VMBUS_PIPE_MODE_BYTE		0u
#define VMBUS_PIPE_MODE_MESSAGE		4u

/*
 * hv_sock user-defined area offsets (single source: OVMM); version and
 * silo id are unaligned: use hv_get_le32() / byte copies.
 */
#define VMBUS_HVSOCK_UD_PIPE_TYPE		0	/* u32 */
#define VMBUS_HVSOCK_UD_IS_FOR_GUEST_ACCEPT	4	/* u8 */
#define VMBUS_HVSOCK_UD_IS_FOR_GUEST_CONTAINER	5	/* u8 */
#define VMBUS_HVSOCK_UD_VERSION			6	/* u32, unaligned */
#define VMBUS_HVSOCK_UD_SILO_ID			10	/* GUID, unaligned */

/* ---- 2.4 Message layouts ------------------------------------------------ */

#define VMBUS_OFFER_USER_DEFINED_SIZE	120u
#define VMBUS_OPEN_USER_DATA_SIZE	120u

/*
 * OFFERCHANNEL (1), 196 bytes. RESP (host offer, unsolicited). 0.13+.
 * Bytes 190-195 are meaningful only from 1.1 (MSVM's pre-1.1 size 190).
 */
struct vmbus_chanmsg_offerchannel {
	struct vmbus_chanmsg_hdr of_hdr;
	struct hv_guid of_if_type;		/* device class */
	struct hv_guid of_if_instance;		/* device instance */
	uint8_t of_rsvd1[8];			/* 0 on Win8+ (old: latency) */
	uint8_t of_rsvd2[8];			/* FBSD: revision, srv ctx size */
	uint16_t of_chn_flags;			/* VMBUS_OFFER_FLAG_* */
	uint16_t of_mmio_megabytes;		/* MB */
	uint8_t of_user_defined[VMBUS_OFFER_USER_DEFINED_SIZE];
	uint16_t of_sub_channel_index;		/* 0 = primary (Win8+) */
	uint16_t of_mmio_megabytes_optional;	/* MB */
	uint32_t of_child_relid;
	uint8_t of_monitorid;			/* valid if monitor_allocated */
	uint8_t of_monitor_allocated;
#define VMBUS_OFFER_MONITOR_ALLOCATED	0x01u
	uint16_t of_is_dedicated_interrupt;	/* >= 1.1 */
#define VMBUS_OFFER_DEDICATED_INTERRUPT	0x0001u
	uint32_t of_connection_id;		/* >= 1.1, signal connection */
};
#define VMBUS_CHANMSG_OFFERCHANNEL_SIZE		196u
#define VMBUS_CHANMSG_OFFERCHANNEL_SIZE_V1	190u	/* pre-1.1, MSVM only */
HV_ASSERT_SIZE(struct vmbus_chanmsg_offerchannel, 196);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_if_type, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_if_instance, 24);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_rsvd1, 40);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_rsvd2, 48);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_chn_flags, 56);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_mmio_megabytes, 58);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_user_defined, 60);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_sub_channel_index, 180);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_mmio_megabytes_optional, 182);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_child_relid, 184);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_monitorid, 188);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_monitor_allocated, 189);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_is_dedicated_interrupt, 190);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_offerchannel, of_connection_id, 192);

/* RESCIND_CHANNELOFFER (2), 12 bytes. RESP (unsolicited). 0.13+. */
struct vmbus_chanmsg_rescind_channeloffer {
	struct vmbus_chanmsg_hdr rc_hdr;
	uint32_t rc_child_relid;
};
#define VMBUS_CHANMSG_RESCIND_CHANNELOFFER_SIZE	12u
HV_ASSERT_SIZE(struct vmbus_chanmsg_rescind_channeloffer, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_rescind_channeloffer, rc_child_relid, 8);

/* REQUESTOFFERS (3), 8 bytes. REQ. 0.13+. Header only. */
struct vmbus_chanmsg_requestoffers {
	struct vmbus_chanmsg_hdr ro_hdr;
};
#define VMBUS_CHANMSG_REQUESTOFFERS_SIZE	8u
HV_ASSERT_SIZE(struct vmbus_chanmsg_requestoffers, 8);

/* ALLOFFERS_DELIVERED (4), 8 bytes. RESP. 0.13+. Header only. */
struct vmbus_chanmsg_alloffers_delivered {
	struct vmbus_chanmsg_hdr ad_hdr;
};
#define VMBUS_CHANMSG_ALLOFFERS_DELIVERED_SIZE	8u
HV_ASSERT_SIZE(struct vmbus_chanmsg_alloffers_delivered, 8);

/*
 * OPENCHANNEL (5), REQ. 0.13+. 148 bytes; 156 bytes with the 6.0
 * extension (op_connection_id/op_event_flag need feature
 * GUEST_SPECIFIED_SIGNAL_PARAMETERS, op_flags CHANNEL_INTERRUPT_REDIRECTION).
 */
struct vmbus_chanmsg_openchannel {
	struct vmbus_chanmsg_hdr op_hdr;
	uint32_t op_child_relid;
	uint32_t op_openid;			/* echoed in OPENCHANNEL_RESULT */
	uint32_t op_gpadl;			/* ring GPADL (both rings) */
	uint32_t op_target_vp;			/* Win8+; pre-Win8 0 */
#define VMBUS_OPEN_TARGET_VP_NONE	0xFFFFFFFFu	/* no interrupts (poll) */
	uint32_t op_downstream_pgoff;		/* pages of guest->host ring */
	uint8_t op_userdata[VMBUS_OPEN_USER_DATA_SIZE];
	/* 6.0 extension (bytes 148-155) */
	uint32_t op_connection_id;		/* guest-chosen connection id */
	uint16_t op_event_flag;			/* SIEF flag, default = relid */
	uint16_t op_flags;
#define VMBUS_OPEN_FLAG_REDIRECT_INTERRUPT	0x0001u
};
#define VMBUS_CHANMSG_OPENCHANNEL_SIZE		148u
#define VMBUS_CHANMSG_OPENCHANNEL_SIZE_V6	156u
HV_ASSERT_SIZE(struct vmbus_chanmsg_openchannel, VMBUS_CHANMSG_OPENCHANNEL_SIZE_V6);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_openid, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_gpadl, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_target_vp, 20);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_downstream_pgoff, 24);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_userdata, 28);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_connection_id,
		 VMBUS_CHANMSG_OPENCHANNEL_SIZE);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_event_flag, 152);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel, op_flags, 154);

/* OPENCHANNEL_RESULT (6), 20 bytes. RESP. 0.13+. Match relid AND openid. */
struct vmbus_chanmsg_openchannel_result {
	struct vmbus_chanmsg_hdr or_hdr;
	uint32_t or_child_relid;
	uint32_t or_openid;
	uint32_t or_status;			/* 0 = success */
};
#define VMBUS_CHANMSG_OPENCHANNEL_RESULT_SIZE	20u
HV_ASSERT_SIZE(struct vmbus_chanmsg_openchannel_result, 20);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel_result, or_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel_result, or_openid, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_openchannel_result, or_status, 16);

/* CLOSECHANNEL (7), 12 bytes. REQ. 0.13+. No response exists. */
struct vmbus_chanmsg_closechannel {
	struct vmbus_chanmsg_hdr cc_hdr;
	uint32_t cc_child_relid;
};
#define VMBUS_CHANMSG_CLOSECHANNEL_SIZE		12u
HV_ASSERT_SIZE(struct vmbus_chanmsg_closechannel, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_closechannel, cc_child_relid, 8);

/*
 * GPA range record (spec 5.2, also GPA-direct packets 4.6):
 * byte_count, byte_offset (< 4096, into the first page), then
 * ceil((byte_offset + byte_count) / 4096) PFNs of 4 KiB frames.
 * NOTE: inside GPADL_HEADER the range stream starts at offset 20, so its
 * PFNs are only 4-aligned there: access that stream as bytes with
 * hv_get_le32()/hv_put_le64() etc. at the VMBUS_GPA_RANGE_ offsets.
 */
struct vmbus_gpa_range {
	uint32_t gr_byte_count;
	uint32_t gr_byte_offset;		/* < HV_PAGE_SIZE */
	uint64_t gr_pfn[];
};
HV_ASSERT_SIZE(struct vmbus_gpa_range, 8);
HV_ASSERT_OFFSET(struct vmbus_gpa_range, gr_byte_offset, 4);
HV_ASSERT_OFFSET(struct vmbus_gpa_range, gr_pfn, 8);
#define VMBUS_GPA_RANGE_BYTE_COUNT	0	/* u32 */
#define VMBUS_GPA_RANGE_BYTE_OFFSET	4	/* u32 */
#define VMBUS_GPA_RANGE_PFN(i)		(8 + 8 * (i))	/* u64 */
#define VMBUS_GPA_RANGE_SIZE(npfn)	(8u + 8u * (uint32_t)(npfn))
/* PFNs a range of (byte_offset, byte_count) needs. */
#define VMBUS_GPA_RANGE_PFNS(byte_offset, byte_count)                        \
	(((uint64_t)(byte_offset) + (uint64_t)(byte_count) + HV_PAGE_SIZE - 1) \
	 / HV_PAGE_SIZE)

/*
 * GPADL_HEADER (8), REQ. 0.13+. 20-byte fixed part + range data (<= 220
 * bytes): the first part of the range stream, continued in GPADL_BODY.
 * Wire size = 20 + range bytes in this message (LNX exact, MSVM 240).
 */
struct vmbus_chanmsg_gpadl_header {
	struct vmbus_chanmsg_hdr gh_hdr;
	uint32_t gh_child_relid;		/* owning channel */
	uint32_t gh_gpadl;			/* guest-chosen handle, != 0 */
	uint16_t gh_range_buflen;		/* bytes of ALL range records */
	uint16_t gh_rangecount;
	uint8_t gh_range[];			/* range stream, unaligned u64 */
};
#define VMBUS_CHANMSG_GPADL_HEADER_SIZE		20u	/* fixed part */
HV_ASSERT_SIZE(struct vmbus_chanmsg_gpadl_header, VMBUS_CHANMSG_GPADL_HEADER_SIZE);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_header, gh_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_header, gh_gpadl, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_header, gh_range_buflen, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_header, gh_rangecount, 18);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_header, gh_range, 20);

/*
 * GPADL_BODY (9), REQ. 0.13+. 16-byte fixed part + up to 28 u64 of the
 * range stream. No relid: the handle must be unique while in progress.
 */
struct vmbus_chanmsg_gpadl_body {
	struct vmbus_chanmsg_hdr gb_hdr;
	uint32_t gb_msgnumber;			/* 0 (LNX/MSVM); ignored */
	uint32_t gb_gpadl;
	uint64_t gb_pfn[];			/* continuation, u64 units */
};
#define VMBUS_CHANMSG_GPADL_BODY_SIZE		16u	/* fixed part */
HV_ASSERT_SIZE(struct vmbus_chanmsg_gpadl_body, VMBUS_CHANMSG_GPADL_BODY_SIZE);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_body, gb_msgnumber, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_body, gb_gpadl, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_body, gb_pfn, 16);

/* Derived limits (spec 2.4 / 5.2). */
#define VMBUS_GPADL_HEADER_RANGE_MAX                                         \
	(VMBUS_MSG_PAYLOAD_MAX - VMBUS_CHANMSG_GPADL_HEADER_SIZE)	/* 220 */
#define VMBUS_GPADL_HEADER_MAX_PFNS                                          \
	((VMBUS_GPADL_HEADER_RANGE_MAX - sizeof(struct vmbus_gpa_range)) /     \
	 sizeof(uint64_t))						/* 26 */
#define VMBUS_GPADL_BODY_MAX_PFNS                                            \
	((VMBUS_MSG_PAYLOAD_MAX - VMBUS_CHANMSG_GPADL_BODY_SIZE) /            \
	 sizeof(uint64_t))						/* 28 */
_Static_assert(VMBUS_MSG_PAYLOAD_MAX == 240, "max VMBus message payload");
_Static_assert(VMBUS_GPADL_HEADER_RANGE_MAX == 220, "GPADL_HEADER range bytes");
_Static_assert(VMBUS_GPADL_HEADER_MAX_PFNS == 26, "PFNs in a one-range GPADL_HEADER");
_Static_assert(VMBUS_GPADL_BODY_MAX_PFNS == 28, "PFNs in a GPADL_BODY");

/* GPADL_CREATED (10), 20 bytes. RESP. 0.13+. Match (relid, gpadl). */
struct vmbus_chanmsg_gpadl_created {
	struct vmbus_chanmsg_hdr gc_hdr;
	uint32_t gc_child_relid;
	uint32_t gc_gpadl;
	uint32_t gc_creation_status;		/* 0 = success */
};
#define VMBUS_CHANMSG_GPADL_CREATED_SIZE	20u
HV_ASSERT_SIZE(struct vmbus_chanmsg_gpadl_created, 20);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_created, gc_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_created, gc_gpadl, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_created, gc_creation_status, 16);

/* GPADL_TEARDOWN (11), 16 bytes. REQ. 0.13+. */
struct vmbus_chanmsg_gpadl_teardown {
	struct vmbus_chanmsg_hdr gt_hdr;
	uint32_t gt_child_relid;
	uint32_t gt_gpadl;
};
#define VMBUS_CHANMSG_GPADL_TEARDOWN_SIZE	16u
HV_ASSERT_SIZE(struct vmbus_chanmsg_gpadl_teardown, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_teardown, gt_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_teardown, gt_gpadl, 12);

/* GPADL_TORNDOWN (12), 12 bytes. RESP. 0.13+. Match on gpadl only. */
struct vmbus_chanmsg_gpadl_torndown {
	struct vmbus_chanmsg_hdr gd_hdr;
	uint32_t gd_gpadl;
};
#define VMBUS_CHANMSG_GPADL_TORNDOWN_SIZE	12u
HV_ASSERT_SIZE(struct vmbus_chanmsg_gpadl_torndown, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_gpadl_torndown, gd_gpadl, 8);

/* RELID_RELEASED (13), 12 bytes. REQ. 0.13+. After a rescind. */
struct vmbus_chanmsg_relid_released {
	struct vmbus_chanmsg_hdr rr_hdr;
	uint32_t rr_child_relid;
};
#define VMBUS_CHANMSG_RELID_RELEASED_SIZE	12u
HV_ASSERT_SIZE(struct vmbus_chanmsg_relid_released, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_relid_released, rr_child_relid, 8);

/*
 * INITIATE_CONTACT (14), REQ, any version. 40 bytes; 56 with the client id
 * (6.0 + VMBUS_FEATURE_CLIENT_ID). Bytes 16-23: versions < 5.0 the
 * interrupt page GPA (ic_interrupt_page); >= 5.0 the target-info view
 * (ic_msg_sint, ic_msg_vtl >= 5.1, ic_feature_flags >= 6.0).
 * Posted on VMBUS_MESSAGE_CONNECTION_ID_4 for >= 5.0, else _ID (1).
 */
struct vmbus_chanmsg_initiate_contact {
	struct vmbus_chanmsg_hdr ic_hdr;
	uint32_t ic_vmbus_version_requested;
	uint32_t ic_target_vcpu;		/* honoured >= 3.0, else 0 */
	union {
		uint64_t ic_interrupt_page;	/* < 5.0: GPA */
		struct {
			uint8_t ic_msg_sint;	/* >= 5.0: must be 2 */
			uint8_t ic_msg_vtl;	/* >= 5.1: 0 */
			uint16_t ic_rsvd;	/* 0 */
			uint32_t ic_feature_flags; /* >= 6.0: VMBUS_FEATURE_* */
		};
	};
	uint64_t ic_monitor_page1;		/* parent->child GPA or 0 */
	uint64_t ic_monitor_page2;		/* child->parent GPA or 0 */
	struct hv_guid ic_client_id;		/* 6.0 + CLIENT_ID only */
};
#define VMBUS_CHANMSG_INITIATE_CONTACT_SIZE		40u
#define VMBUS_CHANMSG_INITIATE_CONTACT_SIZE_CLIENT_ID	56u
HV_ASSERT_SIZE(struct vmbus_chanmsg_initiate_contact, 56);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_vmbus_version_requested, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_target_vcpu, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_interrupt_page, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_msg_sint, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_msg_vtl, 17);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_rsvd, 18);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_feature_flags, 20);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_monitor_page1, 24);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_monitor_page2, 32);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_initiate_contact, ic_client_id,
		 VMBUS_CHANMSG_INITIATE_CONTACT_SIZE);

/*
 * VERSION_RESPONSE (15), RESP, any version. 16 bytes; 20 for 6.0
 * (supported_features); 40 with server-specified monitor pages (6.0 +
 * feature 0x40, single source OVMM). vr_msg_conn_id: < 5.0 the selected
 * version (OVMM), >= 5.0 the message connection id to use from now on.
 */
struct vmbus_chanmsg_version_response {
	struct vmbus_chanmsg_hdr vr_hdr;
	uint8_t vr_version_supported;		/* 1 = accepted */
	uint8_t vr_connection_state;		/* VMBUS_CONNECTION_* (>= 2.4) */
	uint16_t vr_rsvd1;
	uint32_t vr_msg_conn_id;
	uint32_t vr_supported_features;		/* 6.0: granted VMBUS_FEATURE_* */
	uint32_t vr_rsvd2;
	uint64_t vr_monitor_page1;		/* 6.0 + 0x40: parent->child GPA */
	uint64_t vr_monitor_page2;		/* 6.0 + 0x40: child->parent GPA */
};
#define VMBUS_CHANMSG_VERSION_RESPONSE_SIZE		16u
#define VMBUS_CHANMSG_VERSION_RESPONSE_SIZE_V6		20u
#define VMBUS_CHANMSG_VERSION_RESPONSE_SIZE_MONITOR	40u
HV_ASSERT_SIZE(struct vmbus_chanmsg_version_response, 40);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_version_response, vr_version_supported, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_version_response, vr_connection_state, 9);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_version_response, vr_msg_conn_id, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_version_response, vr_supported_features,
		 VMBUS_CHANMSG_VERSION_RESPONSE_SIZE);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_version_response, vr_rsvd2,
		 VMBUS_CHANMSG_VERSION_RESPONSE_SIZE_V6);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_version_response, vr_monitor_page1, 24);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_version_response, vr_monitor_page2, 32);

/* UNLOAD (16), 8 bytes. REQ. 0.13+. Header only. */
struct vmbus_chanmsg_unload {
	struct vmbus_chanmsg_hdr ul_hdr;
};
#define VMBUS_CHANMSG_UNLOAD_SIZE		8u
HV_ASSERT_SIZE(struct vmbus_chanmsg_unload, 8);

/* UNLOAD_RESPONSE (17), 8 bytes. RESP. 1.1+. Header only. */
struct vmbus_chanmsg_unload_response {
	struct vmbus_chanmsg_hdr ur_hdr;
};
#define VMBUS_CHANMSG_UNLOAD_RESPONSE_SIZE	8u
HV_ASSERT_SIZE(struct vmbus_chanmsg_unload_response, 8);

/* OPEN_RESERVED_CHANNEL (18), 28 bytes. REQ. 4.0+. (kernel debuggers) */
struct vmbus_chanmsg_open_reserved_channel {
	struct vmbus_chanmsg_hdr orc_hdr;
	uint32_t orc_child_relid;
	uint32_t orc_target_vp;
	uint32_t orc_target_sint;
	uint32_t orc_gpadl;			/* ring GPADL */
	uint32_t orc_downstream_pgoff;
};
#define VMBUS_CHANMSG_OPEN_RESERVED_CHANNEL_SIZE	28u
HV_ASSERT_SIZE(struct vmbus_chanmsg_open_reserved_channel, 28);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_open_reserved_channel, orc_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_open_reserved_channel, orc_target_vp, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_open_reserved_channel, orc_target_sint, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_open_reserved_channel, orc_gpadl, 20);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_open_reserved_channel, orc_downstream_pgoff, 24);

/* CLOSE_RESERVED_CHANNEL (19), 20 bytes. REQ. Any state (OVMM). */
struct vmbus_chanmsg_close_reserved_channel {
	struct vmbus_chanmsg_hdr crc_hdr;
	uint32_t crc_child_relid;
	uint32_t crc_target_vp;
	uint32_t crc_target_sint;
};
#define VMBUS_CHANMSG_CLOSE_RESERVED_CHANNEL_SIZE	20u
HV_ASSERT_SIZE(struct vmbus_chanmsg_close_reserved_channel, 20);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_close_reserved_channel, crc_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_close_reserved_channel, crc_target_vp, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_close_reserved_channel, crc_target_sint, 16);

/* CLOSE_RESERVED_RESPONSE (20), 12 bytes. RESP. 4.0+. */
struct vmbus_chanmsg_close_reserved_response {
	struct vmbus_chanmsg_hdr crr_hdr;
	uint32_t crr_child_relid;
};
#define VMBUS_CHANMSG_CLOSE_RESERVED_RESPONSE_SIZE	12u
HV_ASSERT_SIZE(struct vmbus_chanmsg_close_reserved_response, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_close_reserved_response, crr_child_relid, 8);

/* TL_CONNECT_REQUEST (21), REQ. 4.0+. 40 bytes; 56 from 5.2 (silo id). */
struct vmbus_chanmsg_tl_connect_request {
	struct vmbus_chanmsg_hdr tcr_hdr;
	struct hv_guid tcr_guest_endpoint_id;
	struct hv_guid tcr_host_service_id;
	struct hv_guid tcr_silo_id;		/* >= 5.2 */
};
#define VMBUS_CHANMSG_TL_CONNECT_REQUEST_SIZE		40u
#define VMBUS_CHANMSG_TL_CONNECT_REQUEST_SIZE_RS5	56u
HV_ASSERT_SIZE(struct vmbus_chanmsg_tl_connect_request, 56);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_tl_connect_request, tcr_guest_endpoint_id, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_tl_connect_request, tcr_host_service_id, 24);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_tl_connect_request, tcr_silo_id,
		 VMBUS_CHANMSG_TL_CONNECT_REQUEST_SIZE);

/* MODIFYCHANNEL (22), 16 bytes. REQ. 4.1+. No ack before 5.3. */
struct vmbus_chanmsg_modifychannel {
	struct vmbus_chanmsg_hdr mc_hdr;
	uint32_t mc_child_relid;
	uint32_t mc_target_vp;			/* 0xFFFFFFFF not allowed */
};
#define VMBUS_CHANMSG_MODIFYCHANNEL_SIZE	16u
HV_ASSERT_SIZE(struct vmbus_chanmsg_modifychannel, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_modifychannel, mc_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_modifychannel, mc_target_vp, 12);

/* TL_CONNECT_RESULT (23), 44 bytes. RESP. 4.1+. */
struct vmbus_chanmsg_tl_connect_result {
	struct vmbus_chanmsg_hdr tcs_hdr;
	struct hv_guid tcs_endpoint_id;
	struct hv_guid tcs_service_id;
	uint32_t tcs_status;			/* NTSTATUS (i32), 0 = success */
};
#define VMBUS_CHANMSG_TL_CONNECT_RESULT_SIZE	44u
HV_ASSERT_SIZE(struct vmbus_chanmsg_tl_connect_result, 44);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_tl_connect_result, tcs_endpoint_id, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_tl_connect_result, tcs_service_id, 24);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_tl_connect_result, tcs_status, 40);

/* MODIFYCHANNEL_RESPONSE (24), 16 bytes. RESP. 5.3+. */
struct vmbus_chanmsg_modifychannel_response {
	struct vmbus_chanmsg_hdr mcr_hdr;
	uint32_t mcr_child_relid;
	uint32_t mcr_status;			/* i32, 0 = success */
};
#define VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE_SIZE	16u
HV_ASSERT_SIZE(struct vmbus_chanmsg_modifychannel_response, 16);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_modifychannel_response, mcr_child_relid, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_modifychannel_response, mcr_status, 12);

/* MODIFY_CONNECTION (25), 24 bytes. REQ. 6.0 + MODIFY_CONNECTION. */
struct vmbus_chanmsg_modify_connection {
	struct vmbus_chanmsg_hdr mco_hdr;
	uint64_t mco_monitor_page1;		/* parent->child GPA */
	uint64_t mco_monitor_page2;		/* child->parent GPA */
};
#define VMBUS_CHANMSG_MODIFY_CONNECTION_SIZE	24u
HV_ASSERT_SIZE(struct vmbus_chanmsg_modify_connection, 24);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_modify_connection, mco_monitor_page1, 8);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_modify_connection, mco_monitor_page2, 16);

/*
 * MODIFY_CONNECTION_RESPONSE (26), 9 bytes on the wire. RESP. 6.0 +
 * MODIFY_CONNECTION. The struct carries 3 explicit pad bytes so it is
 * 12 bytes in memory; send/expect VMBUS_CHANMSG_MODIFY_CONNECTION_RESPONSE_SIZE.
 */
struct vmbus_chanmsg_modify_connection_response {
	struct vmbus_chanmsg_hdr mcor_hdr;
	uint8_t mcor_connection_state;		/* VMBUS_CONNECTION_* */
	uint8_t mcor_pad[3];			/* not on the wire */
};
#define VMBUS_CHANMSG_MODIFY_CONNECTION_RESPONSE_SIZE	9u
HV_ASSERT_SIZE(struct vmbus_chanmsg_modify_connection_response, 12);
HV_ASSERT_OFFSET(struct vmbus_chanmsg_modify_connection_response, mcor_connection_state, 8);

/* PAUSE (27), PAUSE_RESPONSE (28), RESUME (29): 8 bytes, header only.
 * 6.0 + PAUSE_RESUME. NOTE: single source OVMM; direction not given. */
struct vmbus_chanmsg_pause {
	struct vmbus_chanmsg_hdr pa_hdr;
};
struct vmbus_chanmsg_pause_response {
	struct vmbus_chanmsg_hdr par_hdr;
};
struct vmbus_chanmsg_resume {
	struct vmbus_chanmsg_hdr re_hdr;
};
#define VMBUS_CHANMSG_PAUSE_SIZE		8u
#define VMBUS_CHANMSG_PAUSE_RESPONSE_SIZE	8u
#define VMBUS_CHANMSG_RESUME_SIZE		8u
HV_ASSERT_SIZE(struct vmbus_chanmsg_pause, 8);
HV_ASSERT_SIZE(struct vmbus_chanmsg_pause_response, 8);
HV_ASSERT_SIZE(struct vmbus_chanmsg_resume, 8);

/*
 * Minimum wire size of each message type (the smallest valid form; a
 * receiver requires at least this many bytes, ignores trailing bytes).
 * 0 for INVALID and unknown types.
 */
static inline uint32_t vmbus_chanmsg_min_size(uint32_t type)
{
	switch (type) {
	case VMBUS_CHANMSG_OFFERCHANNEL:	return VMBUS_CHANMSG_OFFERCHANNEL_SIZE;
	case VMBUS_CHANMSG_RESCIND_CHANNELOFFER: return VMBUS_CHANMSG_RESCIND_CHANNELOFFER_SIZE;
	case VMBUS_CHANMSG_REQUESTOFFERS:	return VMBUS_CHANMSG_REQUESTOFFERS_SIZE;
	case VMBUS_CHANMSG_ALLOFFERS_DELIVERED:	return VMBUS_CHANMSG_ALLOFFERS_DELIVERED_SIZE;
	case VMBUS_CHANMSG_OPENCHANNEL:		return VMBUS_CHANMSG_OPENCHANNEL_SIZE;
	case VMBUS_CHANMSG_OPENCHANNEL_RESULT:	return VMBUS_CHANMSG_OPENCHANNEL_RESULT_SIZE;
	case VMBUS_CHANMSG_CLOSECHANNEL:	return VMBUS_CHANMSG_CLOSECHANNEL_SIZE;
	case VMBUS_CHANMSG_GPADL_HEADER:	return VMBUS_CHANMSG_GPADL_HEADER_SIZE;
	case VMBUS_CHANMSG_GPADL_BODY:		return VMBUS_CHANMSG_GPADL_BODY_SIZE;
	case VMBUS_CHANMSG_GPADL_CREATED:	return VMBUS_CHANMSG_GPADL_CREATED_SIZE;
	case VMBUS_CHANMSG_GPADL_TEARDOWN:	return VMBUS_CHANMSG_GPADL_TEARDOWN_SIZE;
	case VMBUS_CHANMSG_GPADL_TORNDOWN:	return VMBUS_CHANMSG_GPADL_TORNDOWN_SIZE;
	case VMBUS_CHANMSG_RELID_RELEASED:	return VMBUS_CHANMSG_RELID_RELEASED_SIZE;
	case VMBUS_CHANMSG_INITIATE_CONTACT:	return VMBUS_CHANMSG_INITIATE_CONTACT_SIZE;
	case VMBUS_CHANMSG_VERSION_RESPONSE:	return VMBUS_CHANMSG_VERSION_RESPONSE_SIZE;
	case VMBUS_CHANMSG_UNLOAD:		return VMBUS_CHANMSG_UNLOAD_SIZE;
	case VMBUS_CHANMSG_UNLOAD_RESPONSE:	return VMBUS_CHANMSG_UNLOAD_RESPONSE_SIZE;
	case VMBUS_CHANMSG_OPEN_RESERVED_CHANNEL: return VMBUS_CHANMSG_OPEN_RESERVED_CHANNEL_SIZE;
	case VMBUS_CHANMSG_CLOSE_RESERVED_CHANNEL: return VMBUS_CHANMSG_CLOSE_RESERVED_CHANNEL_SIZE;
	case VMBUS_CHANMSG_CLOSE_RESERVED_RESPONSE: return VMBUS_CHANMSG_CLOSE_RESERVED_RESPONSE_SIZE;
	case VMBUS_CHANMSG_TL_CONNECT_REQUEST:	return VMBUS_CHANMSG_TL_CONNECT_REQUEST_SIZE;
	case VMBUS_CHANMSG_MODIFYCHANNEL:	return VMBUS_CHANMSG_MODIFYCHANNEL_SIZE;
	case VMBUS_CHANMSG_TL_CONNECT_RESULT:	return VMBUS_CHANMSG_TL_CONNECT_RESULT_SIZE;
	case VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE: return VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE_SIZE;
	case VMBUS_CHANMSG_MODIFY_CONNECTION:	return VMBUS_CHANMSG_MODIFY_CONNECTION_SIZE;
	case VMBUS_CHANMSG_MODIFY_CONNECTION_RESPONSE: return VMBUS_CHANMSG_MODIFY_CONNECTION_RESPONSE_SIZE;
	case VMBUS_CHANMSG_PAUSE:		return VMBUS_CHANMSG_PAUSE_SIZE;
	case VMBUS_CHANMSG_PAUSE_RESPONSE:	return VMBUS_CHANMSG_PAUSE_RESPONSE_SIZE;
	case VMBUS_CHANMSG_RESUME:		return VMBUS_CHANMSG_RESUME_SIZE;
	default:				return 0;
	}
}

#endif /* HV_VMBUS_MSG_H */
