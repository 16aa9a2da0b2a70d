/*
 * hv/vstor.h - StorVSC virtual storage protocol (VSTOR) wire format.
 *
 * Source of every fact: shared/spec/vmbus-devices.md section 3.
 * All multi-byte fields hold the little-endian wire representation; read
 * and write them with hv_le16()/hv_le32() from hv/wire.h.
 *
 * A VSTOR packet is 64 bytes from WIN8 on and 48 bytes before: the SRB
 * (vmscsi_request) lost its 16-byte WIN8 extension. Every struct here is
 * the full WIN8 size; pre-WIN8 peers send and expect only the first
 * VSTOR_PACKET_SIZE_PREWIN8 bytes.
 *
 * Freestanding: only hv/wire.h.
 */
#ifndef HV_VSTOR_H
#define HV_VSTOR_H

#include "hv/wire.h"

/* ---- 3.1 Versions: word (u16) = (major << 8) | minor ---- */

#define VSTOR_VERSION(major, minor) \
	((uint16_t)((((unsigned)(major) & 0xFFu) << 8) | ((unsigned)(minor) & 0xFFu)))
#define VSTOR_VERSION_MAJOR(v)	(((unsigned)(v) >> 8) & 0xFFu)
#define VSTOR_VERSION_MINOR(v)	((unsigned)(v) & 0xFFu)

#define VMSTOR_PROTO_VERSION_WIN6	0x0200u	/* 2.0, WS2008 */
#define VMSTOR_PROTO_VERSION_WIN7	0x0402u	/* 4.2, WS2008 R2 */
#define VMSTOR_PROTO_VERSION_WIN8	0x0501u	/* 5.1, WS2012 */
#define VMSTOR_PROTO_VERSION_WIN8_1	0x0600u	/* 6.0, WS2012 R2 "Blue" */
#define VMSTOR_PROTO_VERSION_WIN10	0x0602u	/* 6.2, WS2016+ "Threshold" */

/* Guests try newest to oldest until status 0 (older L / F list). */
#define VSTOR_GUEST_VERSION_LIST                                            \
	{ VMSTOR_PROTO_VERSION_WIN10, VMSTOR_PROTO_VERSION_WIN8_1,          \
	  VMSTOR_PROTO_VERSION_WIN8, VMSTOR_PROTO_VERSION_WIN7,             \
	  VMSTOR_PROTO_VERSION_WIN6 }
#define VSTOR_GUEST_VERSION_COUNT	5

/* Sense buffer sizes, per version. */
#define VSTOR_SENSE_BUFFER_SIZE		0x14u	/* 20, WIN8+ */
#define VSTOR_SENSE_BUFFER_SIZE_PREWIN8	0x12u	/* 18, WIN6/WIN7 */

/* Packet sizes, per version. */
#define VMSCSI_SIZE_DELTA		16u	/* WIN8 SRB extension, bytes */
#define VSTOR_PACKET_SIZE		64u	/* WIN8+ */
#define VSTOR_PACKET_SIZE_PREWIN8	(VSTOR_PACKET_SIZE - VMSCSI_SIZE_DELTA) /* 48 */
#define VMSCSI_REQUEST_SIZE		0x34u	/* 52, SRB length field WIN8+ */
#define VMSCSI_REQUEST_SIZE_PREWIN8	0x24u	/* 36, SRB length field pre-WIN8 */
#define VSTOR_HEADER_SIZE		12u	/* operation + flags + status */

_Static_assert(VSTOR_PACKET_SIZE_PREWIN8 == 48u, "pre-WIN8 packet size");
_Static_assert(VMSCSI_REQUEST_SIZE - VMSCSI_REQUEST_SIZE_PREWIN8 ==
		       VMSCSI_SIZE_DELTA, "SRB size delta");

/* ---- 3.2 Operation codes ---- */

#define VSTOR_OPERATION_COMPLETE_IO		1u	/* RESP H->G, every completion */
#define VSTOR_OPERATION_REMOVE_DEVICE		2u	/* NOTE H->G */
#define VSTOR_OPERATION_EXECUTE_SRB		3u	/* REQ  G->H */
#define VSTOR_OPERATION_RESET_LUN		4u	/* REQ  G->H */
#define VSTOR_OPERATION_RESET_ADAPTER		5u	/* REQ  G->H */
#define VSTOR_OPERATION_RESET_BUS		6u	/* REQ  G->H */
#define VSTOR_OPERATION_BEGIN_INITIALIZATION	7u	/* REQ  G->H */
#define VSTOR_OPERATION_END_INITIALIZATION	8u	/* REQ  G->H */
#define VSTOR_OPERATION_QUERY_PROTOCOL_VERSION	9u	/* REQ  G->H */
#define VSTOR_OPERATION_QUERY_PROPERTIES	10u	/* REQ  G->H */
#define VSTOR_OPERATION_ENUMERATE_BUS		11u	/* NOTE H->G */
#define VSTOR_OPERATION_FCHBA_DATA		12u	/* REQ G->H (FC), RESP H->G */
#define VSTOR_OPERATION_CREATE_SUB_CHANNELS	13u	/* REQ  G->H */
#define VSTOR_OPERATION_EVENT_NOTIFICATION	14u	/* V only, unused */

/* vstor_packet.vp_flags */
#define VSTOR_FLAG_REQUEST_COMPLETION	0x1u	/* guests always set it */

/* Packet-level NTSTATUS values (vstor_packet.vp_status). */
#define VSTOR_STATUS_SUCCESS		0x00000000u
#define VSTOR_STATUS_BUFFER_OVERFLOW	0x80000005u	/* V: DATA_OVERRUN */
#define VSTOR_STATUS_DEVICE_BUSY	0x80000011u	/* V: BUSY */
#define VSTOR_STATUS_UNSUCCESSFUL	0xC0000001u	/* V: REQUEST_FLUSHED */
#define VSTOR_STATUS_INVALID_PARAMETER	0xC000000Du
#define VSTOR_STATUS_INVALID_DEVICE_REQUEST 0xC0000010u	/* V: BAD_FUNCTION */
#define VSTOR_STATUS_REVISION_MISMATCH	0xC0000059u	/* version refused */
#define VSTOR_STATUS_IO_TIMEOUT		0xC00000B5u	/* V: TIMEOUT */
#define VSTOR_STATUS_DEVICE_NOT_CONNECTED 0xC000009Du	/* V: SELECTION_TIMEOUT */
#define VSTOR_STATUS_INVALID_DEVICE_STATE 0xC0000184u	/* out-of-order init */
#define VSTOR_STATUS_CANCELLED		0xC0000120u	/* V: ABORTED */
#define VSTOR_STATUS_NO_SUCH_DEVICE	0xC00000C0u	/* V: INVALID_LUN etc. */
#define VSTOR_STATUS_IO_DEVICE_ERROR	0xC0000185u	/* V: anything else */

/* ---- 3.4 vmscsi_request (SRB) ---- */

#define VSTOR_CDB_SIZE			16u	/* max CDB length */
#define VSTOR_SENSE_DATA_SIZE		20u	/* sense area overlays the CDB */

/*
 * vmscsi_request - the SRB inside EXECUTE_SRB (REQ G->H) and its
 * COMPLETE_IO (RESP H->G). Offsets are relative to the payload (absolute =
 * +12). Pre-WIN8 the struct ends at vr_reserve (36 bytes).
 */
struct vmscsi_request {
	uint16_t vr_length;		/* VMSCSI_REQUEST_SIZE(_PREWIN8) */
	uint8_t  vr_srb_status;		/* SRB_STATUS_*; host result */
	uint8_t  vr_scsi_status;	/* SCSI status byte */
	uint8_t  vr_port_number;	/* guest HBA number */
	uint8_t  vr_path_id;		/* bus */
	uint8_t  vr_target_id;
	uint8_t  vr_lun;
	uint8_t  vr_cdb_length;		/* bytes, <= 16 */
	uint8_t  vr_sense_info_length;	/* REQ: buffer size; RESP: bytes returned */
	uint8_t  vr_data_in;		/* VSTOR_DATA_* */
	uint8_t  vr_reserved;		/* properties; 0 */
	uint32_t vr_data_transfer_length; /* bytes; RESP: bytes transferred */
	union {
		uint8_t vr_cdb[VSTOR_CDB_SIZE];		/* REQ */
		uint8_t vr_sense_data[VSTOR_SENSE_DATA_SIZE]; /* RESP */
	};
	/* WIN8 extension (absent pre-WIN8) */
	uint16_t vr_reserve;		/* 0 */
	uint8_t  vr_queue_tag;		/* SP_UNTAGGED when tagged queuing */
	uint8_t  vr_queue_action;	/* SRB_SIMPLE_TAG_REQUEST */
	uint32_t vr_srb_flags;		/* SRB_FLAGS_* */
	uint32_t vr_time_out_value;	/* seconds; L and F send 60 */
	uint32_t vr_queue_sort_key;	/* 0 */
};
HV_ASSERT_SIZE(struct vmscsi_request, VMSCSI_REQUEST_SIZE);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_srb_status, 2);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_scsi_status, 3);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_port_number, 4);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_lun, 7);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_cdb_length, 8);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_sense_info_length, 9);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_data_in, 10);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_data_transfer_length, 12);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_cdb, 16);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_sense_data, 16);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_reserve, VMSCSI_REQUEST_SIZE_PREWIN8);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_queue_tag, 38);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_queue_action, 39);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_srb_flags, 40);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_time_out_value, 44);
HV_ASSERT_OFFSET(struct vmscsi_request, vr_queue_sort_key, 48);

/* vr_data_in */
#define VSTOR_DATA_WRITE		0u	/* to device */
#define VSTOR_DATA_READ			1u	/* from device */
#define VSTOR_DATA_UNKNOWN		2u	/* no data */

#define VSTOR_SP_UNTAGGED		0xFFu	/* vr_queue_tag */
#define VSTOR_SRB_SIMPLE_TAG_REQUEST	0x20u	/* vr_queue_action */
#define VSTOR_SRB_TIMEOUT_DEFAULT	60u	/* seconds */

/* vr_srb_flags */
#define SRB_FLAGS_QUEUE_ACTION_ENABLE		0x00000002u
#define SRB_FLAGS_DISABLE_DISCONNECT		0x00000004u
#define SRB_FLAGS_DISABLE_SYNCH_TRANSFER	0x00000008u
#define SRB_FLAGS_BYPASS_FROZEN_QUEUE		0x00000010u
#define SRB_FLAGS_DISABLE_AUTOSENSE		0x00000020u
#define SRB_FLAGS_DATA_IN			0x00000040u
#define SRB_FLAGS_DATA_OUT			0x00000080u
#define SRB_FLAGS_NO_DATA_TRANSFER		0x00000000u
#define SRB_FLAGS_UNSPECIFIED_DIRECTION		(SRB_FLAGS_DATA_IN | SRB_FLAGS_DATA_OUT)
#define SRB_FLAGS_NO_QUEUE_FREEZE		0x00000100u
#define SRB_FLAGS_ADAPTER_CACHE_ENABLE		0x00000200u
#define SRB_FLAGS_FREE_SENSE_BUFFER		0x00000400u
#define SRB_FLAGS_D3_PROCESSING			0x00000800u	/* L */
#define SRB_FLAGS_IS_ACTIVE			0x00010000u	/* L */
#define SRB_FLAGS_CLASS_DRIVER_RESERVED		0xF0000000u	/* L */

/* ---- 3.6 SRB status (vr_srb_status) ---- */

#define SRB_STATUS_PENDING		0x00u
#define SRB_STATUS_SUCCESS		0x01u
#define SRB_STATUS_ABORTED		0x02u
#define SRB_STATUS_ABORT_FAILED		0x03u
#define SRB_STATUS_ERROR		0x04u
#define SRB_STATUS_BUSY			0x05u
#define SRB_STATUS_INVALID_REQUEST	0x06u
#define SRB_STATUS_INVALID_PATH_ID	0x07u
#define SRB_STATUS_NO_DEVICE		0x08u
#define SRB_STATUS_TIMEOUT		0x09u
#define SRB_STATUS_SELECTION_TIMEOUT	0x0Au
#define SRB_STATUS_COMMAND_TIMEOUT	0x0Bu
#define SRB_STATUS_MESSAGE_REJECTED	0x0Du
#define SRB_STATUS_BUS_RESET		0x0Eu
#define SRB_STATUS_PARITY_ERROR		0x0Fu
#define SRB_STATUS_REQUEST_SENSE_FAILED	0x10u
#define SRB_STATUS_NO_HBA		0x11u
#define SRB_STATUS_DATA_OVERRUN		0x12u
#define SRB_STATUS_UNEXPECTED_BUS_FREE	0x13u
#define SRB_STATUS_PHASE_SEQUENCE_FAILURE 0x14u
#define SRB_STATUS_BAD_SRB_BLOCK_LENGTH	0x15u
#define SRB_STATUS_REQUEST_FLUSHED	0x16u
#define SRB_STATUS_INVALID_LUN		0x20u
#define SRB_STATUS_INVALID_TARGET_ID	0x21u
#define SRB_STATUS_BAD_FUNCTION		0x22u
#define SRB_STATUS_ERROR_RECOVERY	0x23u
#define SRB_STATUS_NOT_POWERED		0x24u	/* F */
#define SRB_STATUS_LINK_DOWN		0x25u	/* F */
#define SRB_STATUS_INTERNAL_ERROR	0x30u
#define SRB_STATUS_QUEUE_FROZEN		0x40u	/* flag */
#define SRB_STATUS_AUTOSENSE_VALID	0x80u	/* flag */
#define SRB_STATUS_MASK			0x3Fu	/* status without the flags */

/* ---- 3.3 Payload variants ---- */

/*
 * QUERY_PROTOCOL_VERSION payload - REQ G->H and echoed in the RESP
 * (V echoes the version with REVISION_MISMATCH when refused).
 */
struct vmstor_protocol_version {
	uint16_t vpv_major_minor;	/* VMSTOR_PROTO_VERSION_* */
	uint16_t vpv_revision;		/* 0 */
};
HV_ASSERT_SIZE(struct vmstor_protocol_version, 4);
HV_ASSERT_OFFSET(struct vmstor_protocol_version, vpv_revision, 2);

/*
 * QUERY_PROPERTIES payload - RESP H->G (24 bytes; also the size of the
 * zeroed channel-open user data). The old F/L meaning of the reserved
 * fields (proto version, path/target id, port, unique id) is unused. The
 * trailing reserved u64 is kept as two u32 so the union stays 4-aligned.
 */
struct vmstor_channel_properties {
	uint32_t vcp_rsvd0;		/* F/old L: proto ver u16, path u8, target u8 */
	uint16_t vcp_max_channel_cnt;	/* max number of sub-channels */
	uint16_t vcp_rsvd1;		/* F: port */
	uint32_t vcp_flags;		/* VSTOR_PROPERTY_* */
	uint32_t vcp_max_transfer_bytes; /* bytes */
	uint32_t vcp_rsvd2[2];		/* F/old L: unique id u64 */
};
HV_ASSERT_SIZE(struct vmstor_channel_properties, 24);
HV_ASSERT_OFFSET(struct vmstor_channel_properties, vcp_max_channel_cnt, 4);
HV_ASSERT_OFFSET(struct vmstor_channel_properties, vcp_flags, 8);
HV_ASSERT_OFFSET(struct vmstor_channel_properties, vcp_max_transfer_bytes, 12);
HV_ASSERT_OFFSET(struct vmstor_channel_properties, vcp_rsvd2, 16);

#define VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL	0x1u	/* vcp_flags */
#define VSTOR_PROPERTY_REMOVABLE		0x1u	/* device property */
#define VSTOR_PROPERTY_EMULATED_IDE		0x2u	/* device property */
#define VSTOR_OPEN_USER_DATA_SIZE \
	((uint32_t)sizeof(struct vmstor_channel_properties))	/* 24 zero bytes */
#define VSTOR_MAX_TRANSFER_BYTES_V		0x40000u	/* 256 KiB (V) */

/* CREATE_SUB_CHANNELS payload - REQ G->H. */
struct vmstor_subchannel_req {
	uint16_t vsc_sub_channel_count;	/* min(CPUs - 1, max_channel_cnt) */
};
HV_ASSERT_SIZE(struct vmstor_subchannel_req, 2);

/* FCHBA_DATA payload (FC only; L). WWNs are byte strings. */
struct vmstor_fc_hba_wwn {
	uint8_t  vfw_primary_active;
	uint8_t  vfw_rsvd[3];
	uint8_t  vfw_primary_port_wwn[8];
	uint8_t  vfw_primary_node_wwn[8];
	uint8_t  vfw_secondary_port_wwn[8];
	uint8_t  vfw_secondary_node_wwn[8];
};
HV_ASSERT_SIZE(struct vmstor_fc_hba_wwn, 36);
HV_ASSERT_OFFSET(struct vmstor_fc_hba_wwn, vfw_primary_port_wwn, 4);
HV_ASSERT_OFFSET(struct vmstor_fc_hba_wwn, vfw_secondary_node_wwn, 28);

/*
 * vstor_packet - every VSTOR message, both directions (REQ G->H with
 * VSTOR_OPERATION_*, RESP H->G with VSTOR_OPERATION_COMPLETE_IO, NOTE H->G
 * with REMOVE_DEVICE/ENUMERATE_BUS). 64 bytes WIN8+, first 48 pre-WIN8.
 */
struct vstor_packet {
	uint32_t vp_operation;		/* VSTOR_OPERATION_* */
	uint32_t vp_flags;		/* VSTOR_FLAG_REQUEST_COMPLETION */
	uint32_t vp_status;		/* NTSTATUS set by host; 0 = success */
	union {
		struct vmscsi_request		 vp_srb;
		struct vmstor_protocol_version	 vp_version;
		struct vmstor_channel_properties vp_properties;
		struct vmstor_subchannel_req	 vp_subchannel;
		struct vmstor_fc_hba_wwn	 vp_wwn;
		uint8_t				 vp_raw[VMSCSI_REQUEST_SIZE];
	};
};
HV_ASSERT_SIZE(struct vstor_packet, VSTOR_PACKET_SIZE);
HV_ASSERT_OFFSET(struct vstor_packet, vp_flags, 4);
HV_ASSERT_OFFSET(struct vstor_packet, vp_status, 8);
HV_ASSERT_OFFSET(struct vstor_packet, vp_srb, VSTOR_HEADER_SIZE);
HV_ASSERT_OFFSET(struct vstor_packet, vp_srb.vr_data_transfer_length, 24);
HV_ASSERT_OFFSET(struct vstor_packet, vp_srb.vr_cdb, 28);
HV_ASSERT_OFFSET(struct vstor_packet, vp_srb.vr_reserve, 48);
HV_ASSERT_OFFSET(struct vstor_packet, vp_srb.vr_srb_flags, 52);
HV_ASSERT_OFFSET(struct vstor_packet, vp_srb.vr_queue_sort_key, 60);
HV_ASSERT_OFFSET(struct vstor_packet, vp_version.vpv_revision, 14);
HV_ASSERT_OFFSET(struct vstor_packet, vp_properties.vcp_max_channel_cnt, 16);
HV_ASSERT_OFFSET(struct vstor_packet, vp_properties.vcp_flags, 20);
HV_ASSERT_OFFSET(struct vstor_packet, vp_properties.vcp_max_transfer_bytes, 24);
HV_ASSERT_OFFSET(struct vstor_packet, vp_wwn.vfw_primary_port_wwn, 16);
HV_ASSERT_OFFSET(struct vstor_packet, vp_wwn.vfw_secondary_node_wwn, 40);
_Static_assert(VSTOR_HEADER_SIZE + VMSCSI_REQUEST_SIZE_PREWIN8 ==
		       VSTOR_PACKET_SIZE_PREWIN8, "pre-WIN8 packet = hdr + short SRB");

/* Packet size and SRB length for a negotiated version. */
#define VSTOR_PACKET_SIZE_FOR(ver) \
	((ver) >= VMSTOR_PROTO_VERSION_WIN8 ? VSTOR_PACKET_SIZE : VSTOR_PACKET_SIZE_PREWIN8)
#define VMSCSI_REQUEST_SIZE_FOR(ver) \
	((ver) >= VMSTOR_PROTO_VERSION_WIN8 ? VMSCSI_REQUEST_SIZE : VMSCSI_REQUEST_SIZE_PREWIN8)
#define VSTOR_SENSE_BUFFER_SIZE_FOR(ver)                                    \
	((ver) >= VMSTOR_PROTO_VERSION_WIN8 ? VSTOR_SENSE_BUFFER_SIZE :     \
					      VSTOR_SENSE_BUFFER_SIZE_PREWIN8)

/* ---- 3.8 Transaction ids (L) ---- */

#define VSTOR_TRANS_ID_UNSOLICITED	0ull	/* host-originated messages */
#define VSTOR_TRANS_ID_INIT_L		0xFFFFFFFFFFFFFFFDull
#define VSTOR_TRANS_ID_RESET_L		0xFFFFFFFFFFFFFFFCull

/* ---- 3.9 Limits ---- */

/*
 * Ring size: conflict (driver choice; any size works). L uses 128 KiB
 * each direction including the control page, current F 256 KiB. We follow
 * L's 128 KiB as the default.
 */
#define STORVSC_RING_SIZE		(128u * 1024)	/* bytes each way, L */
#define STORVSC_RING_SIZE_F		(64u * HV_PAGE_SIZE)	/* 256 KiB, F */
#define STORVSC_MAX_CDB_LEN		16u
#define STORVSC_L_REQ_RING_BYTES	360u	/* L: ring bytes per request */
#define STORVSC_L_MAX_OUTSTANDING	((STORVSC_RING_SIZE - HV_PAGE_SIZE) / STORVSC_L_REQ_RING_BYTES)
#define STORVSC_L_CMD_PER_LUN		2048u
#define STORVSC_F_MAX_OUTSTANDING	512u
#define STORVSC_V_QUEUE_DEPTH		256u	/* per channel */
#define STORVSC_F_MAX_SEGMENTS		33u	/* -> 128 KiB */
#define STORVSC_FC_MAX_TRANSFER		(512u * 1024)	/* L cap for FC, bytes */
#define STORVSC_MAX_CHANNELS		8u	/* SCSI >= WIN8 (L): buses */
#define STORVSC_MAX_TARGETS		2u
#define STORVSC_MAX_LUNS_PER_TARGET	255u	/* L */
#define STORVSC_F_MAX_LUNS_PER_TARGET	64u
#define STORVSC_IDE_MAX_LUNS_PER_TARGET	64u	/* L: 1 channel, 1 target */
#define STORVSC_PREWIN8_MAX_LUNS	64u	/* L: 1 channel, 1 target */
#define STORVSC_L_INIT_TIMEOUT_S	5u	/* per init step, seconds */
#define STORVSC_L_SUBCHAN_TIMEOUT_S	10u
#define STORVSC_L_IO_TIMEOUT_S		180u

_Static_assert(STORVSC_L_MAX_OUTSTANDING == 352u, "L: 352 requests per 128 KiB ring");

#endif /* HV_VSTOR_H */
