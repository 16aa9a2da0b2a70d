/*
 * hv/nvsp.h - NetVSC Network Virtual Service Protocol (NVSP) wire format.
 *
 * Source of every fact: shared/spec/vmbus-devices.md section 1.
 * All multi-byte fields hold the little-endian wire representation; read
 * and write them with hv_le16()/hv_le32()/hv_le64() from hv/wire.h.
 *
 * Every NVSP message begins with a u32 message type at offset 0; offsets
 * below are from the start of the NVSP message (the VMBus payload start).
 * Reserved bytes are sent as zero.
 *
 * Message sizes (spec 1.5): pre-6.1 messages are 28 bytes (header + v1
 * union), 6.1 messages are 40 bytes (header + v6 union). The host does not
 * answer short requests (a 12-byte INIT is never answered, F/O), so every
 * guest->host request struct here is padded with explicit reserved bytes to
 * NVSP_MSG_SIZE_V61 (40 bytes, what L and D send for every version). The
 * host->guest completions are padded the same way; a host sends the first
 * NVSP_MSG_SIZE_V1 bytes before 6.1 and NVSP_MSG_SIZE_V61 bytes from 6.1.
 *
 * Freestanding: only hv/wire.h.
 */
#ifndef HV_NVSP_H
#define HV_NVSP_H

#include "hv/wire.h"

/* ---- 1.1 Protocol versions: word = (major << 16) | minor ---- */

#define NVSP_PROTOCOL_VERSION_1		0x00000002u	/* "0.2" */
#define NVSP_PROTOCOL_VERSION_2		0x00030002u	/* "3.2" */
#define NVSP_PROTOCOL_VERSION_4		0x00040000u
#define NVSP_PROTOCOL_VERSION_5		0x00050000u
#define NVSP_PROTOCOL_VERSION_6		0x00060000u
#define NVSP_PROTOCOL_VERSION_61	0x00060001u	/* first with 40-byte msgs */
#define NVSP_INVALID_PROTOCOL_VERSION	0xFFFFFFFFu

#define NVSP_VERSION(major, minor) \
	((uint32_t)(((uint32_t)(major) << 16) | ((uint32_t)(minor) & 0xFFFFu)))
#define NVSP_VERSION_MAJOR(v)	((uint32_t)(v) >> 16)
#define NVSP_VERSION_MINOR(v)	((uint32_t)(v) & 0xFFFFu)

/*
 * NDIS version the guest announces in SEND_NDIS_VER, as a function of the
 * negotiated NVSP version: NVSP <= 4 -> 6.1, NVSP >= 5 -> 6.30.
 * Packed form (major << 16) | minor.
 */
#define NDIS_VERSION_MAJOR_6		6u
#define NDIS_VERSION_MINOR_1		1u
#define NDIS_VERSION_MINOR_20		20u	/* defined by F/D, unused */
#define NDIS_VERSION_MINOR_30		30u	/* 0x1E */
#define NDIS_VERSION_6_1		0x00060001u	/* NVSP 1, 2, 4 */
#define NDIS_VERSION_6_20		0x00060014u	/* unused by guests */
#define NDIS_VERSION_6_30		0x0006001Eu	/* NVSP 5, 6, 6.1 */

/* Candidate order guests try in INIT (L, D): highest first. */
#define NVSP_GUEST_VERSION_LIST                                             \
	{ NVSP_PROTOCOL_VERSION_61, NVSP_PROTOCOL_VERSION_6,                \
	  NVSP_PROTOCOL_VERSION_5, NVSP_PROTOCOL_VERSION_4,                 \
	  NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_1 }
#define NVSP_GUEST_VERSION_COUNT	6

/* ---- 1.2 Message type numbers ---- */

#define NVSP_MSG_TYPE_NONE				0u
#define NVSP_MSG_TYPE_INIT				1u	/* REQ  G->H */
#define NVSP_MSG_TYPE_INIT_COMPLETE			2u	/* RESP H->G */

#define NVSP_MSG1_TYPE_SEND_NDIS_VER			100u	/* REQ  G->H */
#define NVSP_MSG1_TYPE_SEND_RECV_BUF			101u	/* REQ  G->H */
#define NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE		102u	/* RESP H->G */
#define NVSP_MSG1_TYPE_REVOKE_RECV_BUF			103u	/* REQ  G->H */
#define NVSP_MSG1_TYPE_SEND_SEND_BUF			104u	/* REQ  G->H */
#define NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE		105u	/* RESP H->G */
#define NVSP_MSG1_TYPE_REVOKE_SEND_BUF			106u	/* REQ  G->H */
#define NVSP_MSG1_TYPE_SEND_RNDIS_PKT			107u	/* REQ  both */
#define NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE		108u	/* RESP both */

/* 109..119: chimney offload, obsolete. */
#define NVSP_MSG2_TYPE_SEND_CHIMNEY_DELEGATED_BUF	109u
#define NVSP_MSG2_TYPE_SEND_CHIMNEY_DELEGATED_BUF_COMP	110u
#define NVSP_MSG2_TYPE_REVOKE_CHIMNEY_DELEGATED_BUF	111u
#define NVSP_MSG2_TYPE_RESUME_CHIMNEY_RX_INDICATION	112u
#define NVSP_MSG2_TYPE_TERMINATE_CHIMNEY		113u
#define NVSP_MSG2_TYPE_TERMINATE_CHIMNEY_COMP		114u
#define NVSP_MSG2_TYPE_INDICATE_CHIMNEY_EVENT		115u
#define NVSP_MSG2_TYPE_SEND_CHIMNEY_PKT			116u
#define NVSP_MSG2_TYPE_SEND_CHIMNEY_PKT_COMP		117u
#define NVSP_MSG2_TYPE_POST_CHIMNEY_RECV_REQ		118u
#define NVSP_MSG2_TYPE_POST_CHIMNEY_RECV_REQ_COMP	119u
/* 120..124: deprecated. */
#define NVSP_MSG2_TYPE_ALLOC_RXBUF			120u
#define NVSP_MSG2_TYPE_ALLOC_RXBUF_COMP			121u
#define NVSP_MSG2_TYPE_FREE_RXBUF			122u
#define NVSP_MSG2_TYPE_SEND_VMQ_RNDIS_PKT		123u
#define NVSP_MSG2_TYPE_SEND_VMQ_RNDIS_PKT_COMP		124u
#define NVSP_MSG2_TYPE_SEND_NDIS_CONFIG			125u	/* REQ  G->H */
#define NVSP_MSG2_TYPE_ALLOC_CHIMNEY_HANDLE		126u	/* obsolete */
#define NVSP_MSG2_TYPE_ALLOC_CHIMNEY_HANDLE_COMP	127u	/* obsolete */

#define NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION		128u	/* NOTE H->G */
#define NVSP_MSG4_TYPE_SWITCH_DATA_PATH			129u	/* REQ  G->H (H->G in V) */
#define NVSP_MSG4_TYPE_UPLINK_CONNECT_STATE_DEPRECATED	130u

#define NVSP_MSG5_TYPE_OID_QUERY_EX			131u	/* REQ  G->H */
#define NVSP_MSG5_TYPE_OID_QUERY_EX_COMP		132u	/* RESP H->G */
#define NVSP_MSG5_TYPE_SUBCHANNEL			133u	/* REQ G->H and RESP H->G */
#define NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE		134u	/* NOTE H->G */

#define NVSP_MSG6_TYPE_PD_API				135u	/* packet-direct, unused */
#define NVSP_MSG6_TYPE_PD_POST_BATCH			136u	/* packet-direct, unused */

/* Highest message type allowed per negotiated version (V rejects above). */
#define NVSP_MSG1_MAX_TYPE	108u	/* v1 */
#define NVSP_MSG2_MAX_TYPE	127u	/* v2 */
#define NVSP_MSG4_MAX_TYPE	130u	/* v4 */
#define NVSP_MSG5_MAX_TYPE	134u	/* v5, and v6 (V: legacy client) */
#define NVSP_MSG61_MAX_TYPE	136u	/* v6.1 */

/* ---- 1.3 Status codes ---- */

#define NVSP_STAT_NONE			0u
#define NVSP_STAT_SUCCESS		1u
#define NVSP_STAT_FAIL			2u
#define NVSP_STAT_PROTOCOL_TOO_NEW	3u
#define NVSP_STAT_PROTOCOL_TOO_OLD	4u
#define NVSP_STAT_INVALID_RNDIS_PKT	5u
#define NVSP_STAT_BUSY			6u
#define NVSP_STAT_PROTOCOL_UNSUPPORTED	7u	/* V: never used */

/* ---- 1.5 Message sizes ---- */

#define NVSP_MSG_SIZE_V1	28u	/* header + v1 union, pre-6.1 */
#define NVSP_MSG_SIZE_V61	40u	/* header + v6 union, 6.1 */
#define NVSP_MSG_SIZE		NVSP_MSG_SIZE_V61	/* every struct below */
#define NVSP_MSG_MIN_TX_SIZE	32u	/* F/O: host ignores shorter requests */

/* Minimum lengths L enforces on H->G completions (a guest checks these). */
#define NVSP_INIT_COMPLETE_MINLEN		16u
#define NVSP_SEND_RECV_BUF_COMPLETE_MINLEN	28u
#define NVSP_SEND_SEND_BUF_COMPLETE_MINLEN	12u
#define NVSP_SUBCHANNEL_COMPLETE_MINLEN		12u
#define NVSP_SEND_RNDIS_PKT_COMPLETE_MINLEN	8u	/* host must accept >= 8 */
#define NVSP_H2G_MAX_SIZE_D			256u	/* D: no H->G msg larger */

/* ---- 1.4 Message layouts ---- */

/* Common header of every NVSP message. */
struct nvsp_msg_hdr {
	uint32_t nh_type;		/* NVSP_MSG*_TYPE_* */
};
HV_ASSERT_SIZE(struct nvsp_msg_hdr, 4);

/*
 * NVSP_MSG_TYPE_INIT (1) - REQ G->H, inband, completion requested.
 * Guests send one per candidate version, highest first, min == max.
 */
struct nvsp_init {
	uint32_t ni_type;		/* NVSP_MSG_TYPE_INIT */
	uint32_t ni_min_protocol_ver;	/* candidate (V matches this only) */
	uint32_t ni_max_protocol_ver;	/* same candidate; V ignores it */
	uint8_t  ni_rsvd[28];		/* host-required pad to 40 bytes */
};
HV_ASSERT_SIZE(struct nvsp_init, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_init, ni_min_protocol_ver, 4);
HV_ASSERT_OFFSET(struct nvsp_init, ni_max_protocol_ver, 8);

/*
 * NVSP_MSG_TYPE_INIT_COMPLETE (2) - RESP H->G in a VM_PKT_COMP.
 */
struct nvsp_init_complete {
	uint32_t nic_type;		/* NVSP_MSG_TYPE_INIT_COMPLETE */
	uint32_t nic_negotiated_protocol_ver; /* deprecated; V: 2 for v1 else ~0 */
	uint32_t nic_max_mdl_chain_len;	/* V sends 34; guests ignore */
	uint32_t nic_status;		/* NVSP_STAT_SUCCESS = accepted */
	uint8_t  nic_rsvd[24];
};
HV_ASSERT_SIZE(struct nvsp_init_complete, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_init_complete, nic_negotiated_protocol_ver, 4);
HV_ASSERT_OFFSET(struct nvsp_init_complete, nic_max_mdl_chain_len, 8);
HV_ASSERT_OFFSET(struct nvsp_init_complete, nic_status, 12);

#define NVSP_INIT_COMPLETE_MAX_MDL_CHAIN_LEN_V	34u	/* value V sends */

/*
 * NVSP_MSG1_TYPE_SEND_NDIS_VER (100) - REQ G->H, inband; L/D request no
 * completion (O requests one, V answers with an empty completion).
 */
struct nvsp_send_ndis_ver {
	uint32_t nv_type;		/* NVSP_MSG1_TYPE_SEND_NDIS_VER */
	uint32_t nv_ndis_major_ver;	/* 6 */
	uint32_t nv_ndis_minor_ver;	/* 1 (NVSP <= 4) or 30 (NVSP >= 5) */
	uint8_t  nv_rsvd[28];		/* host-required pad */
};
HV_ASSERT_SIZE(struct nvsp_send_ndis_ver, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_ndis_ver, nv_ndis_major_ver, 4);
HV_ASSERT_OFFSET(struct nvsp_send_ndis_ver, nv_ndis_minor_ver, 8);

/*
 * NVSP_MSG2_TYPE_SEND_NDIS_CONFIG (125) - REQ G->H, only when NVSP >= 2,
 * sent before SEND_NDIS_VER. The u64 capability sits at offset 12, really
 * unaligned on the wire, hence packed.
 */
struct nvsp_send_ndis_config {
	uint32_t nc_type;		/* NVSP_MSG2_TYPE_SEND_NDIS_CONFIG */
	uint32_t nc_mtu;		/* bytes: L3 MTU + 14 (Ethernet header) */
	uint32_t nc_rsvd0;		/* 0 */
	uint64_t nc_capability;		/* NVSP_NDIS_CONFIG_CAP_* */
	uint8_t  nc_rsvd[20];		/* host-required pad */
} __attribute__((packed));
HV_ASSERT_SIZE(struct nvsp_send_ndis_config, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_ndis_config, nc_mtu, 4);
HV_ASSERT_OFFSET(struct nvsp_send_ndis_config, nc_rsvd0, 8);
HV_ASSERT_OFFSET(struct nvsp_send_ndis_config, nc_capability, 12);

#define NVSP_NDIS_CONFIG_CAP_VMQ		0x01u	/* never set by L */
#define NVSP_NDIS_CONFIG_CAP_CHIMNEY		0x02u	/* never set by L */
#define NVSP_NDIS_CONFIG_CAP_SRIOV		0x04u	/* NVSP >= 5 */
#define NVSP_NDIS_CONFIG_CAP_IEEE8021Q		0x08u	/* always (VLAN) */
#define NVSP_NDIS_CONFIG_CAP_CORRELATION_ID	0x10u	/* never set by L */
#define NVSP_NDIS_CONFIG_CAP_TEAMING		0x20u	/* NVSP >= 5: link-speed updates */
#define NVSP_NDIS_CONFIG_CAP_VIRTUAL_SUBNET_ID	0x40u	/* never set by L */
#define NVSP_NDIS_CONFIG_CAP_RSC		0x80u	/* NVSP >= 6.1 */

#define NVSP_NDIS_CONFIG_MTU_MIN	1514u	/* V accepts 1514..9216 */
#define NVSP_NDIS_CONFIG_MTU_MAX	9216u
#define NVSP_NDIS_CONFIG_MTU_DEFAULT	1514u	/* V: out of range or NVSP v1 */

/*
 * NVSP_MSG1_TYPE_SEND_RECV_BUF (101) - REQ G->H, completion requested.
 */
struct nvsp_send_recv_buf {
	uint32_t nr_type;		/* NVSP_MSG1_TYPE_SEND_RECV_BUF */
	uint32_t nr_gpadl_handle;	/* GPADL of the receive buffer */
	uint16_t nr_id;			/* echoed as xfer_pageset_id */
	uint16_t nr_rsvd0;		/* 0 */
	uint8_t  nr_rsvd[28];		/* host-required pad */
};
HV_ASSERT_SIZE(struct nvsp_send_recv_buf, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_recv_buf, nr_gpadl_handle, 4);
HV_ASSERT_OFFSET(struct nvsp_send_recv_buf, nr_id, 8);
HV_ASSERT_OFFSET(struct nvsp_send_recv_buf, nr_rsvd0, 10);

#define NVSP_RECV_BUF_ID_L	0xCAFEu	/* L, F, D; L drops other pageset ids */
#define NVSP_RECV_BUF_ID_O	0x2409u

/* One receive-buffer section, inside SEND_RECV_BUF_COMPLETE. */
struct nvsp_recv_buf_section {
	uint32_t nrs_offset;		/* bytes; must be 0 (L checks) */
	uint32_t nrs_sub_alloc_size;	/* bytes per receive slot */
	uint32_t nrs_num_sub_allocs;	/* number of slots */
	uint32_t nrs_end_offset;	/* bytes; V: size * count */
};
HV_ASSERT_SIZE(struct nvsp_recv_buf_section, 16);
HV_ASSERT_OFFSET(struct nvsp_recv_buf_section, nrs_sub_alloc_size, 4);
HV_ASSERT_OFFSET(struct nvsp_recv_buf_section, nrs_num_sub_allocs, 8);
HV_ASSERT_OFFSET(struct nvsp_recv_buf_section, nrs_end_offset, 12);

#define NVSP_RECV_BUF_NUM_SECTIONS	1u	/* guests require exactly 1 */
#define NVSP_RECV_SUB_ALLOC_MIN		68u	/* L rejects smaller (ETH_MIN_MTU) */

/*
 * NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE (102) - RESP H->G, one section.
 * 28 bytes of content (NVSP_SEND_RECV_BUF_COMPLETE_MINLEN).
 */
struct nvsp_send_recv_buf_complete {
	uint32_t nrc_type;		/* NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE */
	uint32_t nrc_status;		/* NVSP_STAT_SUCCESS */
	uint32_t nrc_num_sections;	/* 1 */
	struct nvsp_recv_buf_section nrc_sections[1];
	uint8_t  nrc_rsvd[12];
};
HV_ASSERT_SIZE(struct nvsp_send_recv_buf_complete, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_recv_buf_complete, nrc_status, 4);
HV_ASSERT_OFFSET(struct nvsp_send_recv_buf_complete, nrc_num_sections, 8);
HV_ASSERT_OFFSET(struct nvsp_send_recv_buf_complete, nrc_sections, 12);
HV_ASSERT_OFFSET(struct nvsp_send_recv_buf_complete, nrc_rsvd, 28);
_Static_assert(offsetof(struct nvsp_send_recv_buf_complete, nrc_sections) +
		       sizeof(struct nvsp_recv_buf_section) ==
		       NVSP_SEND_RECV_BUF_COMPLETE_MINLEN,
	       "one-section RECV_BUF_COMPLETE is 28 bytes");

/*
 * NVSP_MSG1_TYPE_SEND_SEND_BUF (104) - REQ G->H, completion requested.
 */
struct nvsp_send_send_buf {
	uint32_t ns_type;		/* NVSP_MSG1_TYPE_SEND_SEND_BUF */
	uint32_t ns_gpadl_handle;	/* GPADL of the send buffer */
	uint16_t ns_id;			/* guest tag */
	uint16_t ns_rsvd0;		/* 0 */
	uint8_t  ns_rsvd[28];		/* host-required pad */
};
HV_ASSERT_SIZE(struct nvsp_send_send_buf, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_send_buf, ns_gpadl_handle, 4);
HV_ASSERT_OFFSET(struct nvsp_send_send_buf, ns_id, 8);

#define NVSP_SEND_BUF_ID_L	0x0000u
#define NVSP_SEND_BUF_ID_F	0xFACEu	/* F, D */
#define NVSP_SEND_BUF_ID_O	0x1984u

/*
 * NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE (105) - RESP H->G.
 */
struct nvsp_send_send_buf_complete {
	uint32_t nsc_type;		/* NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE */
	uint32_t nsc_status;		/* NVSP_STAT_SUCCESS */
	uint32_t nsc_section_size;	/* bytes; host-chosen (V: 6144) */
	uint8_t  nsc_rsvd[28];
};
HV_ASSERT_SIZE(struct nvsp_send_send_buf_complete, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_send_buf_complete, nsc_status, 4);
HV_ASSERT_OFFSET(struct nvsp_send_send_buf_complete, nsc_section_size, 8);

/*
 * NVSP_MSG1_TYPE_REVOKE_RECV_BUF (103) / NVSP_MSG1_TYPE_REVOKE_SEND_BUF (106)
 * - REQ G->H, no completion. Same layout for both.
 */
struct nvsp_revoke_buf {
	uint32_t nrv_type;		/* REVOKE_RECV_BUF or REVOKE_SEND_BUF */
	uint16_t nrv_id;		/* id given when the buffer was sent */
	uint8_t  nrv_rsvd[34];		/* host-required pad */
};
HV_ASSERT_SIZE(struct nvsp_revoke_buf, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_revoke_buf, nrv_id, 4);

/*
 * NVSP_MSG1_TYPE_SEND_RNDIS_PKT (107) - REQ both directions.
 * G->H: GPA-direct (type 9) or inband (type 6), completion requested.
 * H->G: transfer-page packet (type 7), index ~0, size 0.
 */
struct nvsp_send_rndis_pkt {
	uint32_t np_type;		/* NVSP_MSG1_TYPE_SEND_RNDIS_PKT */
	uint32_t np_channel_type;	/* NVSP_RNDIS_CHANNEL_TYPE_* */
	uint32_t np_send_buf_section_index; /* or NVSP_SEND_BUF_SECTION_NONE */
	uint32_t np_send_buf_section_size;  /* bytes used in that section */
	uint8_t  np_rsvd[24];		/* host-required pad */
};
HV_ASSERT_SIZE(struct nvsp_send_rndis_pkt, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_rndis_pkt, np_channel_type, 4);
HV_ASSERT_OFFSET(struct nvsp_send_rndis_pkt, np_send_buf_section_index, 8);
HV_ASSERT_OFFSET(struct nvsp_send_rndis_pkt, np_send_buf_section_size, 12);

#define NVSP_RNDIS_CHANNEL_TYPE_DATA	0u	/* RNDIS PACKET_MSG */
#define NVSP_RNDIS_CHANNEL_TYPE_CONTROL	1u	/* any other RNDIS message */
#define NVSP_SEND_BUF_SECTION_NONE	0xFFFFFFFFu

/*
 * NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE (108) - RESP both, in a VM_PKT_COMP.
 * L sends only the first 8 bytes; a host must accept >= 8.
 */
struct nvsp_send_rndis_pkt_complete {
	uint32_t npc_type;		/* NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE */
	uint32_t npc_status;		/* NVSP_STAT_SUCCESS / NVSP_STAT_FAIL */
	uint8_t  npc_rsvd[32];
};
HV_ASSERT_SIZE(struct nvsp_send_rndis_pkt_complete, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_rndis_pkt_complete, npc_status, 4);

/*
 * NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION (128) - NOTE H->G inband.
 * V sends it with transaction id NVSP_VF_ASSOCIATION_TRANS_ID.
 */
struct nvsp_send_vf_association {
	uint32_t nva_type;		/* NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION */
	uint32_t nva_allocated;		/* 1 = VF assigned, 0 = none */
	uint32_t nva_serial;		/* VF serial number */
	uint8_t  nva_rsvd[28];
};
HV_ASSERT_SIZE(struct nvsp_send_vf_association, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_send_vf_association, nva_allocated, 4);
HV_ASSERT_OFFSET(struct nvsp_send_vf_association, nva_serial, 8);

#define NVSP_VF_ASSOCIATION_TRANS_ID	0x8000000000000000ull	/* V */
#define NVSP_SWITCH_DATA_PATH_TRANS_ID	0x8000000000000001ull	/* V, H->G */

/*
 * NVSP_MSG4_TYPE_SWITCH_DATA_PATH (129) - REQ G->H (L: completion
 * requested, completion may be empty); V may send it H->G.
 */
struct nvsp_switch_data_path {
	uint32_t nsd_type;		/* NVSP_MSG4_TYPE_SWITCH_DATA_PATH */
	uint32_t nsd_active_datapath;	/* NVSP_DATAPATH_* */
	uint8_t  nsd_rsvd[32];		/* host-required pad */
};
HV_ASSERT_SIZE(struct nvsp_switch_data_path, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_switch_data_path, nsd_active_datapath, 4);

#define NVSP_DATAPATH_SYNTHETIC	0u
#define NVSP_DATAPATH_VF	1u

/*
 * NVSP_MSG5_TYPE_OID_QUERY_EX (131) - REQ G->H (no known guest uses it).
 * The NDIS object header is the 4-byte type/revision/size of hv/rndis.h.
 */
struct nvsp_oid_query_ex {
	uint32_t noq_type;		/* NVSP_MSG5_TYPE_OID_QUERY_EX */
	uint8_t  noq_obj_type;		/* NDIS object header: type */
	uint8_t  noq_obj_rev;		/* NDIS object header: revision */
	uint16_t noq_obj_size;		/* NDIS object header: size, bytes */
	uint32_t noq_oid;		/* OID */
	uint8_t  noq_rsvd[28];
};
HV_ASSERT_SIZE(struct nvsp_oid_query_ex, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_oid_query_ex, noq_obj_type, 4);
HV_ASSERT_OFFSET(struct nvsp_oid_query_ex, noq_oid, 8);

/*
 * NVSP_MSG5_TYPE_OID_QUERY_EX_COMP (132) - RESP H->G.
 * V always answers NDIS status NOT_SUPPORTED (0xC00000BB).
 */
struct nvsp_oid_query_ex_complete {
	uint32_t nqc_type;		/* NVSP_MSG5_TYPE_OID_QUERY_EX_COMP */
	uint32_t nqc_status;		/* NDIS status */
	uint32_t nqc_bytes;		/* bytes returned */
	uint8_t  nqc_rsvd[28];
};
HV_ASSERT_SIZE(struct nvsp_oid_query_ex_complete, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_oid_query_ex_complete, nqc_status, 4);
HV_ASSERT_OFFSET(struct nvsp_oid_query_ex_complete, nqc_bytes, 8);

/*
 * NVSP_MSG5_TYPE_SUBCHANNEL (133) request - REQ G->H, completion requested.
 */
struct nvsp_subchannel_req {
	uint32_t nsr_type;		/* NVSP_MSG5_TYPE_SUBCHANNEL */
	uint32_t nsr_op;		/* NVSP_SUBCHANNEL_OP_* */
	uint32_t nsr_num_subchannels;	/* wanted = total queues - 1 */
	uint8_t  nsr_rsvd[28];		/* host-required pad */
};
HV_ASSERT_SIZE(struct nvsp_subchannel_req, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_subchannel_req, nsr_op, 4);
HV_ASSERT_OFFSET(struct nvsp_subchannel_req, nsr_num_subchannels, 8);

#define NVSP_SUBCHANNEL_OP_NONE		0u
#define NVSP_SUBCHANNEL_OP_ALLOCATE	1u

/*
 * NVSP_MSG5_TYPE_SUBCHANNEL (133) completion - RESP H->G (same type number).
 */
struct nvsp_subchannel_complete {
	uint32_t nsp_type;		/* NVSP_MSG5_TYPE_SUBCHANNEL */
	uint32_t nsp_status;		/* NVSP_STAT_SUCCESS */
	uint32_t nsp_num_subchannels;	/* granted; clamp to the request */
	uint8_t  nsp_rsvd[28];
};
HV_ASSERT_SIZE(struct nvsp_subchannel_complete, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_subchannel_complete, nsp_status, 4);
HV_ASSERT_OFFSET(struct nvsp_subchannel_complete, nsp_num_subchannels, 8);

/*
 * NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE (134) - NOTE H->G inband, NVSP >= 5.
 * Variable length: u32 table[count] at byte nit_offset from the message
 * start. This struct is only the fixed part (12 bytes).
 * Interop quirk (L): with NVSP <= 6 real hosts may put a wrong nit_offset;
 * L then reads the table at NVSP_INDIRECTION_TABLE_QUIRK_OFFSET when the
 * message is >= NVSP_INDIRECTION_TABLE_QUIRK_MINLEN bytes. V places the
 * table right after this header (offset 12, message 76 bytes).
 */
struct nvsp_send_indirection_table {
	uint32_t nit_type;		/* NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE */
	uint32_t nit_count;		/* entries; always 16 */
	uint32_t nit_offset;		/* bytes from the NVSP message start */
};
HV_ASSERT_SIZE(struct nvsp_send_indirection_table, 12);
HV_ASSERT_OFFSET(struct nvsp_send_indirection_table, nit_count, 4);
HV_ASSERT_OFFSET(struct nvsp_send_indirection_table, nit_offset, 8);

#define NVSP_INDIRECTION_TABLE_COUNT		16u	/* L rejects others */
#define NVSP_INDIRECTION_TABLE_OFFSET_V		12u	/* V: right after hdr */
#define NVSP_INDIRECTION_TABLE_MSGLEN_V		76u	/* 12 + 16 * 4 */
#define NVSP_INDIRECTION_TABLE_QUIRK_OFFSET	40u	/* 4 + 36-byte v6 union */
#define NVSP_INDIRECTION_TABLE_QUIRK_MINLEN	104u	/* 40 + 16 * 4 */
_Static_assert(NVSP_INDIRECTION_TABLE_MSGLEN_V ==
		       NVSP_INDIRECTION_TABLE_OFFSET_V +
			       NVSP_INDIRECTION_TABLE_COUNT * 4u,
	       "V indirection table message length");
_Static_assert(NVSP_INDIRECTION_TABLE_QUIRK_MINLEN ==
		       NVSP_INDIRECTION_TABLE_QUIRK_OFFSET +
			       NVSP_INDIRECTION_TABLE_COUNT * 4u,
	       "L indirection table quirk length");

/*
 * NVSP_MSG6_TYPE_PD_API (135) / PD_POST_BATCH (136): packet-direct, no known
 * guest uses them. Only the common prefix is defined.
 */
struct nvsp_pd_req {
	uint32_t npd_type;		/* NVSP_MSG6_TYPE_PD_* */
	uint32_t npd_op;
	uint8_t  npd_rsvd[32];		/* op-specific union */
};
HV_ASSERT_SIZE(struct nvsp_pd_req, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_pd_req, npd_op, 4);

struct nvsp_pd_complete {
	uint32_t npdc_type;		/* NVSP_MSG6_TYPE_PD_* */
	uint32_t npdc_op;
	uint32_t npdc_status;
	uint8_t  npdc_rsvd[28];		/* op-specific union */
};
HV_ASSERT_SIZE(struct nvsp_pd_complete, NVSP_MSG_SIZE);
HV_ASSERT_OFFSET(struct nvsp_pd_complete, npdc_status, 8);

/* Any NVSP message, as sent (40 bytes). */
union nvsp_msg {
	struct nvsp_msg_hdr			nm_hdr;
	struct nvsp_init			nm_init;
	struct nvsp_init_complete		nm_init_complete;
	struct nvsp_send_ndis_ver		nm_ndis_ver;
	struct nvsp_send_ndis_config		nm_ndis_config;
	struct nvsp_send_recv_buf		nm_recv_buf;
	struct nvsp_send_recv_buf_complete	nm_recv_buf_complete;
	struct nvsp_send_send_buf		nm_send_buf;
	struct nvsp_send_send_buf_complete	nm_send_buf_complete;
	struct nvsp_revoke_buf			nm_revoke_buf;
	struct nvsp_send_rndis_pkt		nm_rndis_pkt;
	struct nvsp_send_rndis_pkt_complete	nm_rndis_pkt_complete;
	struct nvsp_send_vf_association		nm_vf_association;
	struct nvsp_switch_data_path		nm_switch_data_path;
	struct nvsp_oid_query_ex		nm_oid_query_ex;
	struct nvsp_oid_query_ex_complete	nm_oid_query_ex_complete;
	struct nvsp_subchannel_req		nm_subchannel_req;
	struct nvsp_subchannel_complete		nm_subchannel_complete;
	struct nvsp_send_indirection_table	nm_indirection_table;
	struct nvsp_pd_req			nm_pd_req;
	struct nvsp_pd_complete			nm_pd_complete;
	uint8_t					nm_raw[NVSP_MSG_SIZE];
};
HV_ASSERT_SIZE(union nvsp_msg, NVSP_MSG_SIZE);

/* ---- 1.6 Receive path limits ---- */

#define NVSP_RSC_MAX_RANGES		562u	/* ranges per xfer-page pkt, RSC */
#define NVSP_NDIS6_MAX_RANGES		375u	/* NDIS >= 6.0, no RSC */
#define NVSP_NDIS5_MAX_RANGES		64u	/* NDIS < 6.0 (L) */
#define NVSP_V_RECV_CTRL_SLOTS		16u	/* V: slots reserved for control */
#define NVSP_V_RECV_DATA_OFFSET		256u	/* V: frame offset in a slot */
#define NVSP_V_RECV_SLOT_TAIL		36u	/* V: unused bytes at slot end */
#define NVSP_L_RECV_SLOT_SIZE		1728u	/* L's sizing assumption */

/* ---- 1.7 Transmit limits ---- */

#define NVSP_L_MAX_PAGE_BUFFER_COUNT	32u	/* GPA ranges per packet (L) */
#define NVSP_V_TX_INFLIGHT_PER_QUEUE	1024u	/* V */

/* ---- 1.8 Buffer and ring sizes ---- */

#define NVSP_RECV_BUF_SIZE_DEFAULT	(16u * 1024 * 1024)	/* bytes */
#define NVSP_RECV_BUF_SIZE_LEGACY	(15u * 1024 * 1024)	/* NVSP <= 2, max */
#define NVSP_RECV_BUF_SIZE_MAX		(31u * 1024 * 1024)	/* NVSP > 2 (L) */
#define NVSP_SEND_SECTION_SIZE_DEFAULT	6144u			/* bytes; host decides */
#define NVSP_SEND_BUF_SIZE_DEFAULT	(170u * NVSP_SEND_SECTION_SIZE_DEFAULT) /* 1044480 */
#define NVSP_SEND_BUF_SIZE_MAX		(15u * 1024 * 1024)	/* bytes */
#define NVSP_MIN_RECV_SECTIONS		10u			/* L ethtool */
#define NVSP_MIN_SEND_SECTIONS		10u			/* L ethtool */
#define NETVSC_RING_SIZE		(128u * HV_PAGE_SIZE)	/* 512 KiB each way */
#define NETVSC_RING_SIZE_MIN		(64u * HV_PAGE_SIZE)	/* L module param min */
#define NETVSC_DEFAULT_QUEUES		16u			/* L */
#define NETVSC_MAX_QUEUES		64u			/* L, D */
#define NETVSC_SEND_TABLE_SIZE		16u			/* send hash buckets */

_Static_assert(NVSP_SEND_BUF_SIZE_DEFAULT == 1044480u, "L send buffer");
_Static_assert(NVSP_RECV_BUF_SIZE_DEFAULT == 16777216u, "L recv buffer");
_Static_assert(NETVSC_SEND_TABLE_SIZE == NVSP_INDIRECTION_TABLE_COUNT,
	       "send table matches indirection table");

#endif /* HV_NVSP_H */
