/*
 * hv/rndis.h - RNDIS over NetVSC, and the NDIS objects carried in OIDs.
 *
 * Source of every fact: shared/spec/vmbus-devices.md section 2.
 * All multi-byte fields hold the little-endian wire representation; read
 * and write them with hv_le16()/hv_le32()/hv_le64() from hv/wire.h.
 *
 * Offsets in comments are from the start of the RNDIS message (header
 * included). Every "..._offset" field inside a message body is relative to
 * byte 8 (RNDIS_HEADER_SIZE, the first body field), not the message start.
 * RNDIS messages travel inside NVSP SEND_RNDIS_PKT (hv/nvsp.h).
 *
 * Freestanding: only hv/wire.h.
 */
#ifndef HV_RNDIS_H
#define HV_RNDIS_H

#include "hv/wire.h"

/* ---- 2.1 Message types ---- */

#define REMOTE_NDIS_PACKET_MSG		0x00000001u	/* both */
#define REMOTE_NDIS_INITIALIZE_MSG	0x00000002u	/* REQ  G->H */
#define REMOTE_NDIS_HALT_MSG		0x00000003u	/* REQ  G->H, no reply */
#define REMOTE_NDIS_QUERY_MSG		0x00000004u	/* REQ  G->H */
#define REMOTE_NDIS_SET_MSG		0x00000005u	/* REQ  G->H */
#define REMOTE_NDIS_RESET_MSG		0x00000006u	/* REQ  G->H (V: unimpl.) */
#define REMOTE_NDIS_INDICATE_STATUS_MSG	0x00000007u	/* NOTE H->G */
#define REMOTE_NDIS_KEEPALIVE_MSG	0x00000008u	/* REQ  G->H */
#define REMOTE_NDIS_SET_EX_MSG		0x00000009u	/* REQ  (V: unimpl.) */
#define REMOTE_NDIS_INITIALIZE_CMPLT	0x80000002u	/* RESP H->G */
#define REMOTE_NDIS_QUERY_CMPLT		0x80000004u	/* RESP H->G */
#define REMOTE_NDIS_SET_CMPLT		0x80000005u	/* RESP H->G */
#define REMOTE_NDIS_RESET_CMPLT		0x80000006u	/* RESP H->G */
#define REMOTE_NDIS_KEEPALIVE_CMPLT	0x80000008u	/* RESP H->G */
#define REMOTE_NDIS_SET_EX_CMPLT	0x80000009u	/* RESP */
#define REMOTE_NDIS_BUS_MSG		0xFF000001u	/* private (V) */

#define RNDIS_MSG_COMPLETION		0x80000000u	/* bit set in *_CMPLT */

#define RNDIS_MAJOR_VERSION		1u
#define RNDIS_MINOR_VERSION		0u

#define RNDIS_HEADER_SIZE		8u	/* type + msg_len; offsets base */

/* ---- 2.2 Message layouts ---- */

/* Common header of every RNDIS message. */
struct rndis_msg_hdr {
	uint32_t rm_type;		/* REMOTE_NDIS_* */
	uint32_t rm_len;		/* bytes, whole message from offset 0 */
};
HV_ASSERT_SIZE(struct rndis_msg_hdr, RNDIS_HEADER_SIZE);
HV_ASSERT_OFFSET(struct rndis_msg_hdr, rm_len, 4);

/* Header of every request and its reply: matched by request id. */
struct rndis_req_hdr {
	uint32_t rr_type;
	uint32_t rr_len;		/* bytes */
	uint32_t rr_rid;		/* request id */
};
HV_ASSERT_SIZE(struct rndis_req_hdr, 12);
HV_ASSERT_OFFSET(struct rndis_req_hdr, rr_rid, 8);

/* REMOTE_NDIS_INITIALIZE_MSG - REQ G->H, 24 bytes. */
struct rndis_init_req {
	uint32_t rm_type;		/* REMOTE_NDIS_INITIALIZE_MSG */
	uint32_t rm_len;		/* 24 */
	uint32_t rm_rid;		/* non-zero (D rejects 0) */
	uint32_t rm_ver_major;		/* RNDIS_MAJOR_VERSION */
	uint32_t rm_ver_minor;		/* RNDIS_MINOR_VERSION */
	uint32_t rm_max_xfersz;		/* bytes; L/D 0x4000, O 2048 */
};
HV_ASSERT_SIZE(struct rndis_init_req, 24);
HV_ASSERT_OFFSET(struct rndis_init_req, rm_rid, 8);
HV_ASSERT_OFFSET(struct rndis_init_req, rm_ver_major, 12);
HV_ASSERT_OFFSET(struct rndis_init_req, rm_ver_minor, 16);
HV_ASSERT_OFFSET(struct rndis_init_req, rm_max_xfersz, 20);

#define RNDIS_INIT_MAX_XFERSZ_L		0x4000u	/* L, D */

/* REMOTE_NDIS_INITIALIZE_CMPLT - RESP H->G, 52 bytes. */
struct rndis_init_comp {
	uint32_t rm_type;		/* REMOTE_NDIS_INITIALIZE_CMPLT */
	uint32_t rm_len;		/* 52 */
	uint32_t rm_rid;		/* echo */
	uint32_t rm_status;		/* RNDIS_STATUS_* */
	uint32_t rm_ver_major;		/* 1 */
	uint32_t rm_ver_minor;		/* 0 */
	uint32_t rm_devflags;		/* RNDIS_DF_CONNECTIONLESS */
	uint32_t rm_medium;		/* RNDIS_MEDIUM_802_3 */
	uint32_t rm_pktmaxcnt;		/* max_packets_per_message (V: 8) */
	uint32_t rm_pktmaxsz;		/* max_transfer_size, bytes */
	uint32_t rm_align;		/* packet_alignment_factor: log2 bytes */
	uint32_t rm_aflistoffset;	/* 0 */
	uint32_t rm_aflistsz;		/* 0 */
};
HV_ASSERT_SIZE(struct rndis_init_comp, 52);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_status, 12);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_devflags, 24);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_medium, 28);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_pktmaxcnt, 32);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_pktmaxsz, 36);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_align, 40);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_aflistoffset, 44);
HV_ASSERT_OFFSET(struct rndis_init_comp, rm_aflistsz, 48);

#define RNDIS_DF_CONNECTIONLESS		0x00000001u
#define RNDIS_MEDIUM_802_3		0x00000000u
#define RNDIS_PKTMAXCNT_DEFAULT		8u	/* V value, L default */
#define RNDIS_ALIGN_DEFAULT		3u	/* log2: 8 bytes (V) */
#define RNDIS_ALIGN_MIN			2u	/* D raises smaller to 4 bytes */
#define RNDIS_PKTMAXSZ_V		0xEFFFFFFFu

/* REMOTE_NDIS_HALT_MSG - REQ G->H, 12 bytes, no completion. */
struct rndis_halt_req {
	uint32_t rm_type;		/* REMOTE_NDIS_HALT_MSG */
	uint32_t rm_len;		/* 12 */
	uint32_t rm_rid;
};
HV_ASSERT_SIZE(struct rndis_halt_req, 12);
HV_ASSERT_OFFSET(struct rndis_halt_req, rm_rid, 8);

/*
 * REMOTE_NDIS_QUERY_MSG (and SET_MSG, below) - REQ G->H, 28 bytes followed
 * by info_buflen bytes of input. Guests use info_buf_offset 20 (data at 28).
 */
struct rndis_query_req {
	uint32_t rm_type;		/* REMOTE_NDIS_QUERY_MSG */
	uint32_t rm_len;		/* 28 + info_buflen */
	uint32_t rm_rid;
	uint32_t rm_oid;		/* OID_* */
	uint32_t rm_infobuflen;		/* bytes of input data */
	uint32_t rm_infobufoffset;	/* bytes from byte 8 */
	uint32_t rm_devicevchdl;	/* 0 */
};
HV_ASSERT_SIZE(struct rndis_query_req, 28);
HV_ASSERT_OFFSET(struct rndis_query_req, rm_oid, 12);
HV_ASSERT_OFFSET(struct rndis_query_req, rm_infobuflen, 16);
HV_ASSERT_OFFSET(struct rndis_query_req, rm_infobufoffset, 20);
HV_ASSERT_OFFSET(struct rndis_query_req, rm_devicevchdl, 24);

/* REMOTE_NDIS_SET_MSG - REQ G->H: same layout as QUERY_MSG. */
struct rndis_set_req {
	uint32_t rm_type;		/* REMOTE_NDIS_SET_MSG */
	uint32_t rm_len;		/* 28 + info_buflen */
	uint32_t rm_rid;
	uint32_t rm_oid;		/* OID_* */
	uint32_t rm_infobuflen;		/* bytes of SET data */
	uint32_t rm_infobufoffset;	/* bytes from byte 8 */
	uint32_t rm_devicevchdl;	/* 0 */
};
HV_ASSERT_SIZE(struct rndis_set_req, 28);
HV_ASSERT_OFFSET(struct rndis_set_req, rm_oid, 12);
HV_ASSERT_OFFSET(struct rndis_set_req, rm_infobuflen, 16);
HV_ASSERT_OFFSET(struct rndis_set_req, rm_infobufoffset, 20);
HV_ASSERT_OFFSET(struct rndis_set_req, rm_devicevchdl, 24);

#define RNDIS_QUERY_REQ_INFOBUFOFFSET	20u	/* data at byte 28 */

/*
 * REMOTE_NDIS_QUERY_CMPLT - RESP H->G, 24 bytes followed by the data.
 * V uses info_buf_offset 16 (data at 24); L requires offset >= 16 and the
 * data within msg_len.
 */
struct rndis_query_comp {
	uint32_t rm_type;		/* REMOTE_NDIS_QUERY_CMPLT */
	uint32_t rm_len;		/* 24 + info_buflen */
	uint32_t rm_rid;
	uint32_t rm_status;		/* RNDIS_STATUS_* */
	uint32_t rm_infobuflen;		/* bytes returned */
	uint32_t rm_infobufoffset;	/* bytes from byte 8 */
};
HV_ASSERT_SIZE(struct rndis_query_comp, 24);
HV_ASSERT_OFFSET(struct rndis_query_comp, rm_status, 12);
HV_ASSERT_OFFSET(struct rndis_query_comp, rm_infobuflen, 16);
HV_ASSERT_OFFSET(struct rndis_query_comp, rm_infobufoffset, 20);

#define RNDIS_QUERY_COMP_INFOBUFOFFSET	16u	/* data at byte 24; also minimum */

/* REMOTE_NDIS_SET_CMPLT - RESP H->G, 16 bytes. */
struct rndis_set_comp {
	uint32_t rm_type;		/* REMOTE_NDIS_SET_CMPLT */
	uint32_t rm_len;		/* 16 */
	uint32_t rm_rid;
	uint32_t rm_status;		/* RNDIS_STATUS_* */
};
HV_ASSERT_SIZE(struct rndis_set_comp, 16);
HV_ASSERT_OFFSET(struct rndis_set_comp, rm_status, 12);

/* REMOTE_NDIS_RESET_MSG - REQ G->H, 12 bytes (no request id). */
struct rndis_reset_req {
	uint32_t rm_type;		/* REMOTE_NDIS_RESET_MSG */
	uint32_t rm_len;		/* 12 */
	uint32_t rm_rsvd;		/* 0 */
};
HV_ASSERT_SIZE(struct rndis_reset_req, 12);
HV_ASSERT_OFFSET(struct rndis_reset_req, rm_rsvd, 8);

/* REMOTE_NDIS_RESET_CMPLT - RESP H->G, 16 bytes (no request id). */
struct rndis_reset_comp {
	uint32_t rm_type;		/* REMOTE_NDIS_RESET_CMPLT */
	uint32_t rm_len;		/* 16 */
	uint32_t rm_status;		/* RNDIS_STATUS_* */
	uint32_t rm_adrreset;		/* addressing reset */
};
HV_ASSERT_SIZE(struct rndis_reset_comp, 16);
HV_ASSERT_OFFSET(struct rndis_reset_comp, rm_status, 8);
HV_ASSERT_OFFSET(struct rndis_reset_comp, rm_adrreset, 12);

/* REMOTE_NDIS_KEEPALIVE_MSG - REQ G->H, 12 bytes. */
struct rndis_keepalive_req {
	uint32_t rm_type;		/* REMOTE_NDIS_KEEPALIVE_MSG */
	uint32_t rm_len;		/* 12 */
	uint32_t rm_rid;
};
HV_ASSERT_SIZE(struct rndis_keepalive_req, 12);
HV_ASSERT_OFFSET(struct rndis_keepalive_req, rm_rid, 8);

/* REMOTE_NDIS_KEEPALIVE_CMPLT - RESP H->G, 16 bytes. */
struct rndis_keepalive_comp {
	uint32_t rm_type;		/* REMOTE_NDIS_KEEPALIVE_CMPLT */
	uint32_t rm_len;		/* 16 */
	uint32_t rm_rid;
	uint32_t rm_status;		/* RNDIS_STATUS_* */
};
HV_ASSERT_SIZE(struct rndis_keepalive_comp, 16);
HV_ASSERT_OFFSET(struct rndis_keepalive_comp, rm_status, 12);

/*
 * REMOTE_NDIS_INDICATE_STATUS_MSG - NOTE H->G, 20 bytes followed by the
 * status buffer. V uses status_buf_offset 12 (payload at 20), or 0 when
 * empty. Quirk (L): pre-"Fe" vSwitches leave the status buffer out of
 * msg_len; validate LINK_SPEED_CHANGE against the receive range instead.
 */
struct rndis_status_msg {
	uint32_t rm_type;		/* REMOTE_NDIS_INDICATE_STATUS_MSG */
	uint32_t rm_len;		/* 20 + status_buflen */
	uint32_t rm_status;		/* RNDIS_STATUS_* indication (2.8) */
	uint32_t rm_stbuflen;		/* bytes of payload */
	uint32_t rm_stbufoffset;	/* bytes from byte 8 */
};
HV_ASSERT_SIZE(struct rndis_status_msg, 20);
HV_ASSERT_OFFSET(struct rndis_status_msg, rm_status, 8);
HV_ASSERT_OFFSET(struct rndis_status_msg, rm_stbuflen, 12);
HV_ASSERT_OFFSET(struct rndis_status_msg, rm_stbufoffset, 16);

#define RNDIS_STATUS_MSG_STBUFOFFSET	12u	/* payload at byte 20 (V) */

/* Optional diagnostic payload of an error indication. */
struct rndis_diag_info {
	uint32_t rdi_diag_status;
	uint32_t rdi_error_offset;	/* bytes */
};
HV_ASSERT_SIZE(struct rndis_diag_info, 8);
HV_ASSERT_OFFSET(struct rndis_diag_info, rdi_error_offset, 4);

/* ---- 2.3 PACKET_MSG and per-packet info ---- */

/*
 * REMOTE_NDIS_PACKET_MSG - data, both directions. 44-byte header; body from
 * byte 8 is 36 bytes. Typical TX (L): PPIs at byte 44, frame right after,
 * data_offset = 36 + PPI bytes. D requires data_offset >= 36 and
 * per_pkt_info_offset >= 36 and 4-byte aligned.
 */
struct rndis_packet_msg {
	uint32_t rm_type;		/* REMOTE_NDIS_PACKET_MSG */
	uint32_t rm_len;		/* bytes incl. PPIs, frame and padding */
	uint32_t rm_dataoffset;		/* frame offset, bytes from byte 8 */
	uint32_t rm_datalen;		/* frame length, bytes */
	uint32_t rm_oobdataoffset;	/* 0 */
	uint32_t rm_oobdatalen;		/* 0 */
	uint32_t rm_oobdataelements;	/* 0 */
	uint32_t rm_pktinfooffset;	/* first PPI, bytes from byte 8; 0 = none */
	uint32_t rm_pktinfolen;		/* bytes of all PPIs */
	uint32_t rm_vchandle;		/* 0 */
	uint32_t rm_rsvd;		/* 0 */
};
HV_ASSERT_SIZE(struct rndis_packet_msg, 44);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_dataoffset, 8);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_datalen, 12);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_oobdataoffset, 16);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_oobdatalen, 20);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_oobdataelements, 24);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_pktinfooffset, 28);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_pktinfolen, 32);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_vchandle, 36);
HV_ASSERT_OFFSET(struct rndis_packet_msg, rm_rsvd, 40);

#define RNDIS_PACKET_MSG_SIZE		44u
#define RNDIS_PACKET_MSG_OFFSET_MIN	36u	/* body bytes before PPIs/data */
/* Convert between message-start offsets and body-relative ones. */
#define RNDIS_PACKET_MSG_OFFSET_ABS(o)	((o) + RNDIS_HEADER_SIZE)
#define RNDIS_PACKET_MSG_OFFSET_REL(o)	((o) - RNDIS_HEADER_SIZE)

/* Per-packet info record header; payload follows at rm_pktinfo_offset. */
struct rndis_pktinfo {
	uint32_t rpi_size;		/* bytes incl. this header (D: mult. of 4) */
	uint32_t rpi_type;		/* bits 0-30 NDIS_PKTINFO_TYPE_*, bit 31 internal */
	uint32_t rpi_pktinfo_offset;	/* payload offset from record start (12) */
};
HV_ASSERT_SIZE(struct rndis_pktinfo, 12);
HV_ASSERT_OFFSET(struct rndis_pktinfo, rpi_type, 4);
HV_ASSERT_OFFSET(struct rndis_pktinfo, rpi_pktinfo_offset, 8);

#define RNDIS_PKTINFO_OFFSET		12u	/* normal payload offset */
#define RNDIS_PKTINFO_INTERNAL		0x80000000u	/* type bit 31 */
#define RNDIS_PKTINFO_TYPE_MASK		0x7FFFFFFFu
/* Size of a PPI record with a u32 payload. */
#define RNDIS_PKTINFO_SIZE_U32		(RNDIS_PKTINFO_OFFSET + 4u)

/* ---- 2.4 PPI types ---- */

#define NDIS_PKTINFO_TYPE_CSUM		0u	/* TCPIP_CHKSUM_PKTINFO, u32 */
#define NDIS_PKTINFO_TYPE_IPSEC		1u
#define NDIS_PKTINFO_TYPE_LSO		2u	/* TCP_LARGESEND_PKTINFO, u32 */
#define NDIS_PKTINFO_TYPE_CLASSIFY	3u
#define NDIS_PKTINFO_TYPE_RSVD4		4u
#define NDIS_PKTINFO_TYPE_SGLIST	5u
#define NDIS_PKTINFO_TYPE_VLAN		6u	/* IEEE_8021Q_INFO, u32 */
#define NDIS_PKTINFO_TYPE_ORIG		7u
#define NDIS_PKTINFO_TYPE_PKT_CANCELID	8u	/* = NBL hash value */
#define NDIS_PKTINFO_TYPE_HASHVAL	8u	/* u32 RSS hash value */
#define NDIS_PKTINFO_TYPE_ORIG_NBLIST	9u	/* D/F: used as hash info */
#define NDIS_PKTINFO_TYPE_HASHINF	9u	/* u32 hash type/function (RX) */
#define NDIS_PKTINFO_TYPE_CACHE_NBLIST	10u
#define NDIS_PKTINFO_TYPE_PKT_PAD	11u	/* SHORT_PKT_PADINFO */
/* Internal namespace: type 1 with bit 31 set. */
#define RNDIS_PKTINFO_TYPE_PKTINFO_ID	(RNDIS_PKTINFO_INTERNAL | 1u)

/* Payload of RNDIS_PKTINFO_TYPE_PKTINFO_ID (RSC fragments), 4 bytes. */
struct rndis_pktinfo_id {
	uint8_t  rpid_ver;		/* RNDIS_PKTINFO_ID_V1 */
	uint8_t  rpid_flags;		/* RNDIS_PKTINFO_* flags below */
	uint16_t rpid_pktid;		/* packet id */
};
HV_ASSERT_SIZE(struct rndis_pktinfo_id, 4);
HV_ASSERT_OFFSET(struct rndis_pktinfo_id, rpid_flags, 1);
HV_ASSERT_OFFSET(struct rndis_pktinfo_id, rpid_pktid, 2);

#define RNDIS_PKTINFO_ID_V1		1u
#define RNDIS_PKTINFO_SUBALLOC		0x01u	/* part of multi-slot packet */
#define RNDIS_PKTINFO_1ST_FRAG		0x02u
#define RNDIS_PKTINFO_LAST_FRAG		0x04u

/* TX checksum info (u32 payload of NDIS_PKTINFO_TYPE_CSUM, G->H). */
#define NDIS_TXCSUM_INFO_IPV4		0x00000001u
#define NDIS_TXCSUM_INFO_IPV6		0x00000002u
#define NDIS_TXCSUM_INFO_TCPCS		0x00000004u
#define NDIS_TXCSUM_INFO_UDPCS		0x00000008u
#define NDIS_TXCSUM_INFO_IPCS		0x00000010u
#define NDIS_TXCSUM_INFO_THOFF_SHIFT	16
#define NDIS_TXCSUM_INFO_THOFF_MASK	0x03FF0000u	/* bits 16-25 */
/* L4 header offset (bytes from frame start) field. */
#define NDIS_TXCSUM_INFO_THOFF(off) \
	(((uint32_t)(off) << NDIS_TXCSUM_INFO_THOFF_SHIFT) & NDIS_TXCSUM_INFO_THOFF_MASK)

/* RX checksum info (u32 payload of NDIS_PKTINFO_TYPE_CSUM, H->G). */
#define NDIS_RXCSUM_INFO_TCPCS_FAILED	0x00000001u
#define NDIS_RXCSUM_INFO_UDPCS_FAILED	0x00000002u
#define NDIS_RXCSUM_INFO_IPCS_FAILED	0x00000004u
#define NDIS_RXCSUM_INFO_TCPCS_OK	0x00000008u
#define NDIS_RXCSUM_INFO_UDPCS_OK	0x00000010u
#define NDIS_RXCSUM_INFO_IPCS_OK	0x00000020u
#define NDIS_RXCSUM_INFO_LOOPBACK	0x00000040u
#define NDIS_RXCSUM_INFO_TCPCS_INVAL	0x00000080u
#define NDIS_RXCSUM_INFO_IPCS_INVAL	0x00000100u

/*
 * LSO info (u32 payload of NDIS_PKTINFO_TYPE_LSO, TX). The spec gives the
 * v2 form; bit 30 is the type (1 = v2), so v1 is the same MSS/offset
 * fields with bit 30 clear and bit 31 reserved.
 */
#define NDIS_LSO_INFO_MSS_MASK		0x000FFFFFu	/* bits 0-19, bytes */
#define NDIS_LSO_INFO_THOFF_SHIFT	20
#define NDIS_LSO_INFO_THOFF_MASK	0x3FF00000u	/* bits 20-29, bytes */
#define NDIS_LSO_INFO_TYPE_V2		0x40000000u	/* bit 30 */
#define NDIS_LSO_INFO_TYPE_V1		0x00000000u
#define NDIS_LSO2_INFO_IPV4		0x00000000u	/* bit 31 clear */
#define NDIS_LSO2_INFO_IPV6		0x80000000u	/* bit 31 */
#define NDIS_LSO_INFO_MSS(mss)		((uint32_t)(mss) & NDIS_LSO_INFO_MSS_MASK)
#define NDIS_LSO_INFO_THOFF(off) \
	(((uint32_t)(off) << NDIS_LSO_INFO_THOFF_SHIFT) & NDIS_LSO_INFO_THOFF_MASK)
#define NDIS_LSO2_INFO_MAKEIPV4(thoff, mss)                                 \
	(NDIS_LSO_INFO_MSS(mss) | NDIS_LSO_INFO_THOFF(thoff) |              \
	 NDIS_LSO_INFO_TYPE_V2 | NDIS_LSO2_INFO_IPV4)
#define NDIS_LSO2_INFO_MAKEIPV6(thoff, mss)                                 \
	(NDIS_LSO_INFO_MSS(mss) | NDIS_LSO_INFO_THOFF(thoff) |              \
	 NDIS_LSO_INFO_TYPE_V2 | NDIS_LSO2_INFO_IPV6)
#define NDIS_LSO_V_MAX_SIZE		0xF53Cu	/* V cap, bytes */
#define NDIS_LSO_V_MIN_SEGS		2u	/* V */

/* VLAN / 802.1Q info (u32 payload of NDIS_PKTINFO_TYPE_VLAN). */
#define NDIS_VLAN_INFO_PRI_MASK		0x00000007u	/* bits 0-2 */
#define NDIS_VLAN_INFO_CFI		0x00000008u	/* bit 3, CFI/DEI */
#define NDIS_VLAN_INFO_ID_SHIFT		4
#define NDIS_VLAN_INFO_ID_MASK		0x0000FFF0u	/* bits 4-15 */
#define NDIS_VLAN_INFO_MAKE(id, pri, cfi)                                   \
	((((uint32_t)(id) << NDIS_VLAN_INFO_ID_SHIFT) & NDIS_VLAN_INFO_ID_MASK) | \
	 ((uint32_t)(pri) & NDIS_VLAN_INFO_PRI_MASK) |                      \
	 ((cfi) ? NDIS_VLAN_INFO_CFI : 0u))
#define NDIS_VLAN_INFO_ID(inf) \
	(((uint32_t)(inf) & NDIS_VLAN_INFO_ID_MASK) >> NDIS_VLAN_INFO_ID_SHIFT)
#define NDIS_VLAN_INFO_PRI(inf)		((uint32_t)(inf) & NDIS_VLAN_INFO_PRI_MASK)

/*
 * Hash info (u32 payload of NDIS_PKTINFO_TYPE_HASHINF, RX; D/F): hash
 * function in the low byte, hash types above, same bits as the RSS
 * parameters' hash_information (NDIS_HASH_*).
 */
#define NDIS_HASH_FUNCTION_MASK		0x000000FFu
#define NDIS_HASH_FUNCTION_TOEPLITZ	0x00000001u
#define NDIS_HASH_TYPE_MASK		0x0001FF00u
#define NDIS_HASH_IPV4			0x00000100u
#define NDIS_HASH_TCP_IPV4		0x00000200u
#define NDIS_HASH_IPV6			0x00000400u
#define NDIS_HASH_IPV6_EX		0x00000800u
#define NDIS_HASH_TCP_IPV6		0x00001000u
#define NDIS_HASH_TCP_IPV6_EX		0x00002000u
#define NDIS_HASH_UDP_IPV4		0x00004000u	/* V only */
#define NDIS_HASH_UDP_IPV6		0x00008000u	/* V only */
#define NDIS_HASH_UDP_IPV6_EX		0x00010000u	/* V only */

/* ---- 2.5 RNDIS / NDIS status codes ---- */

#define RNDIS_STATUS_SUCCESS		0x00000000u
#define RNDIS_STATUS_PENDING		0x00000103u
#define RNDIS_STATUS_BUFFER_OVERFLOW	0x80000005u
#define RNDIS_STATUS_FAILURE		0xC0000001u
#define RNDIS_STATUS_RESOURCES		0xC000009Au
#define RNDIS_STATUS_NOT_SUPPORTED	0xC00000BBu
#define RNDIS_STATUS_INVALID_LENGTH	0xC0010014u
#define RNDIS_STATUS_INVALID_DATA	0xC0010015u
#define RNDIS_STATUS_BUFFER_TOO_SHORT	0xC0010016u
#define RNDIS_STATUS_INVALID_OID	0xC0010017u

/* ---- 2.6 OIDs ---- */

#define OID_GEN_SUPPORTED_LIST			0x00010101u
#define OID_GEN_HARDWARE_STATUS			0x00010102u
#define OID_GEN_MEDIA_SUPPORTED			0x00010103u
#define OID_GEN_MEDIA_IN_USE			0x00010104u
#define OID_GEN_MAXIMUM_LOOKAHEAD		0x00010105u
#define OID_GEN_MAXIMUM_FRAME_SIZE		0x00010106u	/* MTU at bring-up */
#define OID_GEN_LINK_SPEED			0x00010107u	/* u32, 100 bit/s */
#define OID_GEN_TRANSMIT_BUFFER_SPACE		0x00010108u
#define OID_GEN_RECEIVE_BUFFER_SPACE		0x00010109u
#define OID_GEN_TRANSMIT_BLOCK_SIZE		0x0001010Au
#define OID_GEN_RECEIVE_BLOCK_SIZE		0x0001010Bu
#define OID_GEN_VENDOR_ID			0x0001010Cu
#define OID_GEN_VENDOR_DESCRIPTION		0x0001010Du
#define OID_GEN_CURRENT_PACKET_FILTER		0x0001010Eu	/* u32 NDIS_PACKET_TYPE_* */
#define OID_GEN_CURRENT_LOOKAHEAD		0x0001010Fu
#define OID_GEN_DRIVER_VERSION			0x00010110u
#define OID_GEN_MAXIMUM_TOTAL_SIZE		0x00010111u
#define OID_GEN_PROTOCOL_OPTIONS		0x00010112u
#define OID_GEN_MAC_OPTIONS			0x00010113u
#define OID_GEN_MEDIA_CONNECT_STATUS		0x00010114u	/* u32 NDIS_MEDIA_STATE_* */
#define OID_GEN_MAXIMUM_SEND_PACKETS		0x00010115u
#define OID_GEN_VENDOR_DRIVER_VERSION		0x00010116u
#define OID_GEN_NETWORK_LAYER_ADDRESSES		0x00010118u
#define OID_GEN_TRANSPORT_HEADER_OFFSET		0x00010119u
#define OID_GEN_RECEIVE_SCALE_CAPABILITIES	0x00010203u
#define OID_GEN_RECEIVE_SCALE_PARAMETERS	0x00010204u
#define OID_GEN_MAX_LINK_SPEED			0x00010206u	/* V */
#define OID_GEN_LINK_STATE			0x00010207u	/* V */
#define OID_GEN_LINK_PARAMETERS			0x00010208u	/* V */
#define OID_GEN_RNDIS_CONFIG_PARAMETER		0x0001021Bu
#define OID_GEN_VLAN_ID				0x0001021Cu	/* D */
#define OID_GEN_FRIENDLY_NAME			0x00020216u	/* 256 UTF-16 units */
#define OID_GEN_BYTES_RCV			0x00020219u	/* V */
#define OID_GEN_BYTES_XMIT			0x0002021Au	/* V */
#define OID_802_3_PERMANENT_ADDRESS		0x01010101u	/* MAC, 6 bytes */
#define OID_802_3_CURRENT_ADDRESS		0x01010102u
#define OID_802_3_MULTICAST_LIST		0x01010103u
#define OID_802_3_MAXIMUM_LIST_SIZE		0x01010104u
#define OID_OFFLOAD_ENCAPSULATION		0x0101010Au
#define OID_TCP_OFFLOAD_CURRENT_CONFIG		0xFC01020Bu
#define OID_TCP_OFFLOAD_PARAMETERS		0xFC01020Cu
#define OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES	0xFC01020Du
#define OID_TCP_CONNECTION_OFFLOAD_CURRENT_CONFIG	0xFC01020Eu
#define OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES 0xFC01020Fu

#define NDIS_FRIENDLY_NAME_UNITS	256u	/* UTF-16 units */
#define NDIS_MEDIA_STATE_CONNECTED	0u	/* OID_GEN_MEDIA_CONNECT_STATUS */
#define NDIS_MEDIA_STATE_DISCONNECTED	1u
#define NDIS_HARDWARE_STATUS_READY	0u
#define NDIS_VENDOR_ID_MICROSOFT_V	0x0000155Du
/* OID_GEN_LINK_SPEED is in units of 100 bit/s. */
#define NDIS_LINK_SPEED_UNIT_BPS	100u

/* OID_GEN_MAC_OPTIONS bits (V answers 0x24D). */
#define NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA	0x00000001u
#define NDIS_MAC_OPTION_RECEIVE_SERIALIZED	0x00000002u
#define NDIS_MAC_OPTION_TRANSFERS_NOT_PEND	0x00000004u
#define NDIS_MAC_OPTION_NO_LOOPBACK		0x00000008u
#define NDIS_MAC_OPTION_FULL_DUPLEX		0x00000010u
#define NDIS_MAC_OPTION_EOTX_INDICATION		0x00000020u
#define NDIS_MAC_OPTION_8021P_PRIORITY		0x00000040u
#define NDIS_MAC_OPTION_SUPPORTS_MAC_ADDRESS_OVERWRITE 0x00000080u
#define NDIS_MAC_OPTION_RECEIVE_AT_DPC		0x00000100u
#define NDIS_MAC_OPTION_8021Q_VLAN		0x00000200u

/*
 * Packet filter bits (OID_GEN_CURRENT_PACKET_FILTER). Values above 0x80 are
 * a conflict (D: 0x1000.., L: 0x100..) and unused by either; not defined.
 */
#define NDIS_PACKET_TYPE_DIRECTED	0x00000001u
#define NDIS_PACKET_TYPE_MULTICAST	0x00000002u
#define NDIS_PACKET_TYPE_ALL_MULTICAST	0x00000004u
#define NDIS_PACKET_TYPE_BROADCAST	0x00000008u
#define NDIS_PACKET_TYPE_SOURCE_ROUTING	0x00000010u
#define NDIS_PACKET_TYPE_PROMISCUOUS	0x00000020u
#define NDIS_PACKET_TYPE_SMT		0x00000040u
#define NDIS_PACKET_TYPE_ALL_LOCAL	0x00000080u
#define NDIS_PACKET_TYPE_NONE		0x00000000u	/* V: receive nothing */
/* L opens with DIRECTED | ALL_MULTICAST | BROADCAST. */
#define NDIS_PACKET_FILTER_DEFAULT	0x0000000Du

/*
 * OID_GEN_RNDIS_CONFIG_PARAMETER info buffer header (20 bytes); name and
 * value follow, offsets relative to this header.
 */
struct rndis_config_param {
	uint32_t rcp_nameoffset;	/* bytes from this header */
	uint32_t rcp_namelen;		/* bytes, UTF-16 */
	uint32_t rcp_type;		/* RNDIS_CONFIG_PARAM_TYPE_* */
	uint32_t rcp_valueoffset;	/* bytes from this header */
	uint32_t rcp_valuelen;		/* bytes */
};
HV_ASSERT_SIZE(struct rndis_config_param, 20);
HV_ASSERT_OFFSET(struct rndis_config_param, rcp_namelen, 4);
HV_ASSERT_OFFSET(struct rndis_config_param, rcp_type, 8);
HV_ASSERT_OFFSET(struct rndis_config_param, rcp_valueoffset, 12);
HV_ASSERT_OFFSET(struct rndis_config_param, rcp_valuelen, 16);

#define RNDIS_CONFIG_PARAM_TYPE_INTEGER	0u
#define RNDIS_CONFIG_PARAM_TYPE_HEX	1u	/* V */
#define RNDIS_CONFIG_PARAM_TYPE_STRING	2u
#define RNDIS_CONFIG_PARAM_TYPE_MULTISTRING 3u	/* V */
#define RNDIS_CONFIG_PARAM_TYPE_BINARY	4u	/* V */
/* L: name "NetworkAddress" (28 bytes UTF-16), value 12 hex chars (24). */
#define RNDIS_NETWORK_ADDRESS_NAMELEN	28u
#define RNDIS_NETWORK_ADDRESS_VALUELEN	24u

/* ---- 2.7 NDIS objects ---- */

/* Header of every NDIS object carried in an OID buffer. */
struct ndis_object_hdr {
	uint8_t  ndis_type;		/* NDIS_OBJTYPE_* */
	uint8_t  ndis_rev;		/* revision */
	uint16_t ndis_size;		/* bytes incl. this header */
};
HV_ASSERT_SIZE(struct ndis_object_hdr, 4);
HV_ASSERT_OFFSET(struct ndis_object_hdr, ndis_rev, 1);
HV_ASSERT_OFFSET(struct ndis_object_hdr, ndis_size, 2);

#define NDIS_OBJTYPE_DEFAULT		0x80u
#define NDIS_OBJTYPE_RSS_CAPS		0x88u
#define NDIS_OBJTYPE_RSS_PARAMS		0x89u
#define NDIS_OBJTYPE_OID_REQUEST	0x96u	/* V */
#define NDIS_OBJTYPE_OFFLOAD		0xA7u
#define NDIS_OBJTYPE_OFFLOAD_ENCAP	0xA8u	/* V */

/* Checksum offload capabilities, inside struct ndis_offload. */
struct ndis_csum_offload {
	uint32_t ncs_ip4_txenc;		/* NDIS_OFFLOAD_ENCAP_* */
	uint32_t ncs_ip4_txcsum;		/* NDIS_TXCSUM_CAP_* (IPv4) */
	uint32_t ncs_ip4_rxenc;
	uint32_t ncs_ip4_rxcsum;
	uint32_t ncs_ip6_txenc;
	uint32_t ncs_ip6_txcsum;		/* NDIS_TXCSUM_CAP_* (IPv6) */
	uint32_t ncs_ip6_rxenc;
	uint32_t ncs_ip6_rxcsum;
};
HV_ASSERT_SIZE(struct ndis_csum_offload, 32);

/* 2-bit capability fields, each 1 when supported. */
#define NDIS_TXCSUM_CAP_IP4OPT		0x001u
#define NDIS_TXCSUM_CAP_TCP4OPT		0x004u
#define NDIS_TXCSUM_CAP_TCP4		0x010u
#define NDIS_TXCSUM_CAP_UDP4		0x040u
#define NDIS_TXCSUM_CAP_IP4		0x100u
#define NDIS_TXCSUM_CAP_IP6EXT		0x001u
#define NDIS_TXCSUM_CAP_TCP6OPT		0x004u
#define NDIS_TXCSUM_CAP_TCP6		0x010u
#define NDIS_TXCSUM_CAP_UDP6		0x040u
#define NDIS_RXCSUM_CAP_IP4OPT		NDIS_TXCSUM_CAP_IP4OPT
#define NDIS_RXCSUM_CAP_TCP4OPT		NDIS_TXCSUM_CAP_TCP4OPT
#define NDIS_RXCSUM_CAP_TCP4		NDIS_TXCSUM_CAP_TCP4
#define NDIS_RXCSUM_CAP_UDP4		NDIS_TXCSUM_CAP_UDP4
#define NDIS_RXCSUM_CAP_IP4		NDIS_TXCSUM_CAP_IP4
#define NDIS_RXCSUM_CAP_IP6EXT		NDIS_TXCSUM_CAP_IP6EXT
#define NDIS_RXCSUM_CAP_TCP6OPT		NDIS_TXCSUM_CAP_TCP6OPT
#define NDIS_RXCSUM_CAP_TCP6		NDIS_TXCSUM_CAP_TCP6
#define NDIS_RXCSUM_CAP_UDP6		NDIS_TXCSUM_CAP_UDP6

/* Encapsulation bits. */
#define NDIS_OFFLOAD_ENCAP_NONE		0x0000u
#define NDIS_OFFLOAD_ENCAP_NULL		0x0001u
#define NDIS_OFFLOAD_ENCAP_8023		0x0002u
#define NDIS_OFFLOAD_ENCAP_8023PQ	0x0004u
#define NDIS_OFFLOAD_ENCAP_8023PQ_OOB	0x0008u
#define NDIS_OFFLOAD_ENCAP_RFC1483	0x0010u

/* LSOv1 capabilities, inside struct ndis_offload. */
struct ndis_lsov1_offload {
	uint32_t nl1_encap;			/* NDIS_OFFLOAD_ENCAP_* */
	uint32_t nl1_maxsize;		/* bytes */
	uint32_t nl1_minsegs;
	uint32_t nl1_opts;
};
HV_ASSERT_SIZE(struct ndis_lsov1_offload, 16);

/* IPsec v1 capabilities (7 x u32), inside struct ndis_offload. */
struct ndis_ipsecv1_offload {
	uint32_t ni1_encap;
	uint32_t ni1_ah_esp;
	uint32_t ni1_xport_tun;
	uint32_t ni1_ip4_opts;
	uint32_t ni1_flags;
	uint32_t ni1_ip4_ah;
	uint32_t ni1_ip4_esp;
};
HV_ASSERT_SIZE(struct ndis_ipsecv1_offload, 28);

/* LSOv2 capabilities, inside struct ndis_offload. */
struct ndis_lsov2_offload {
	uint32_t nl2_ip4_encap;		/* NDIS_OFFLOAD_ENCAP_* */
	uint32_t nl2_ip4_maxsz;		/* bytes */
	uint32_t nl2_ip4_minsg;
	uint32_t nl2_ip6_encap;
	uint32_t nl2_ip6_maxsz;		/* bytes */
	uint32_t nl2_ip6_minsg;
	uint32_t nl2_ip6_opts;		/* NDIS_LSOV2_CAP_* */
};
HV_ASSERT_SIZE(struct ndis_lsov2_offload, 28);

#define NDIS_LSOV2_CAP_IP6EXT		0x001u
#define NDIS_LSOV2_CAP_TCP6OPT		0x004u
#define NDIS_LSOV2_CAP_IP6		(NDIS_LSOV2_CAP_IP6EXT | NDIS_LSOV2_CAP_TCP6OPT)

/* IPsec v2 capabilities (u32 + 11 x u8 + pad + 4 x u32), rev >= 2. */
struct ndis_ipsecv2_offload {
	uint32_t ni2_encap;
	uint8_t  ni2_ip6;
	uint8_t  ni2_ip4opt;
	uint8_t  ni2_ip6ext;
	uint8_t  ni2_ah;
	uint8_t  ni2_esp;
	uint8_t  ni2_ah_esp;
	uint8_t  ni2_xport;
	uint8_t  ni2_tun;
	uint8_t  ni2_xport_tun;
	uint8_t  ni2_lso;
	uint8_t  ni2_extseq;
	uint8_t  ni2_rsvd;			/* pad */
	uint32_t ni2_udp_esp;
	uint32_t ni2_auth;
	uint32_t ni2_crypto;
	uint32_t ni2_sa_caps;
};
HV_ASSERT_SIZE(struct ndis_ipsecv2_offload, 32);
HV_ASSERT_OFFSET(struct ndis_ipsecv2_offload, ni2_udp_esp, 16);

/* Receive segment coalescing capabilities, rev 3. */
struct ndis_rsc_offload {
	uint8_t  nrsc_ip4;
	uint8_t  nrsc_ip6;
	uint8_t  nrsc_rsvd[2];		/* pad */
};
HV_ASSERT_SIZE(struct ndis_rsc_offload, 4);

/* GRE encapsulation capabilities, rev 3. */
struct ndis_encap_offload {
	uint32_t nenc_flags;
	uint32_t nenc_maxhdr;		/* bytes */
};
HV_ASSERT_SIZE(struct ndis_encap_offload, 8);

/*
 * NDIS_OFFLOAD (type NDIS_OBJTYPE_OFFLOAD) - RESP H->G to
 * OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES / OID_TCP_OFFLOAD_CURRENT_CONFIG.
 * The query carries a header with the wanted revision/size; the reply must
 * be type 0xA7, revision >= 1, NDIS_OFFLOAD_SIZE_6_0 <= size <= buffer.
 */
struct ndis_offload {
	struct ndis_object_hdr		ndis_hdr;
	struct ndis_csum_offload	ndis_csum;
	struct ndis_lsov1_offload	ndis_lsov1;
	struct ndis_ipsecv1_offload	ndis_ipsecv1;
	struct ndis_lsov2_offload	ndis_lsov2;
	uint32_t			ndis_flags;
	/* NDIS_OFFLOAD_REV_2 */
	struct ndis_ipsecv2_offload	ndis_ipsecv2;
	/* NDIS_OFFLOAD_REV_3 */
	struct ndis_rsc_offload		ndis_rsc;
	struct ndis_encap_offload	ndis_encap_gre;
};
HV_ASSERT_SIZE(struct ndis_offload, 156);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_csum, 4);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_lsov1, 36);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_ipsecv1, 52);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_lsov2, 80);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_lsov2.nl2_ip6_opts, 104);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_flags, 108);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_ipsecv2, 112);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_rsc, 144);
HV_ASSERT_OFFSET(struct ndis_offload, ndis_encap_gre, 148);

#define NDIS_OFFLOAD_REV_1		1u	/* NDIS 6.0, NVSP < 4 */
#define NDIS_OFFLOAD_REV_2		2u	/* NDIS 6.1, NVSP = 4 */
#define NDIS_OFFLOAD_REV_3		3u	/* NDIS 6.30, NVSP >= 5 */
#define NDIS_OFFLOAD_SIZE_6_0		112u
#define NDIS_OFFLOAD_SIZE_6_1		144u
#define NDIS_OFFLOAD_SIZE		156u
_Static_assert(offsetof(struct ndis_offload, ndis_ipsecv2) == NDIS_OFFLOAD_SIZE_6_0,
	       "rev 1 offload size");
_Static_assert(offsetof(struct ndis_offload, ndis_rsc) == NDIS_OFFLOAD_SIZE_6_1,
	       "rev 2 offload size");

/*
 * NDIS_OFFLOAD_PARAMETERS (type NDIS_OBJTYPE_DEFAULT) - REQ G->H as the SET
 * OID_TCP_OFFLOAD_PARAMETERS buffer. 28 bytes at rev 3, 22 bytes below.
 * Conflict: for NVSP <= 4, D sends revision 2 and L revision 3, both with
 * size 22; the spec leaves it open. We follow L (rev 3, size 22); a host
 * accepts any revision >= 1 with size >= 20 (V).
 */
struct ndis_offload_params {
	struct ndis_object_hdr	ndis_hdr;
	uint8_t  ndis_ip4csum;		/* NDIS_OFFLOAD_PARAM_* (csum) */
	uint8_t  ndis_tcp4csum;
	uint8_t  ndis_udp4csum;
	uint8_t  ndis_tcp6csum;
	uint8_t  ndis_udp6csum;
	uint8_t  ndis_lsov1;		/* NDIS_OFFLOAD_LSOV1_* */
	uint8_t  ndis_ipsecv1;		/* NDIS_OFFLOAD_IPSECV1_* */
	uint8_t  ndis_lsov2_ip4;	/* NDIS_OFFLOAD_LSOV2_* */
	uint8_t  ndis_lsov2_ip6;
	uint8_t  ndis_tcp4conn;		/* 0 */
	uint8_t  ndis_tcp6conn;		/* 0 */
	uint8_t  ndis_rsvd0;		/* pad */
	uint32_t ndis_flags;		/* 0 */
	/* NDIS_OFFLOAD_PARAMS_REV_2 */
	uint8_t  ndis_ipsecv2;
	uint8_t  ndis_ipsecv2_ip4;
	/* NDIS_OFFLOAD_PARAMS_REV_3 */
	uint8_t  ndis_rsc_ip4;		/* NDIS_OFFLOAD_RSC_* */
	uint8_t  ndis_rsc_ip6;
	uint8_t  ndis_encap;
	uint8_t  ndis_encap_types;
	uint8_t  ndis_rsvd1[2];		/* pad */
};
HV_ASSERT_SIZE(struct ndis_offload_params, 28);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_ip4csum, 4);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_lsov1, 9);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_lsov2_ip4, 11);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_tcp6conn, 14);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_flags, 16);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_ipsecv2, 20);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_rsc_ip4, 22);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_encap, 24);
HV_ASSERT_OFFSET(struct ndis_offload_params, ndis_encap_types, 25);

#define NDIS_OFFLOAD_PARAMS_REV_1	1u
#define NDIS_OFFLOAD_PARAMS_REV_2	2u
#define NDIS_OFFLOAD_PARAMS_REV_3	3u
#define NDIS_OFFLOAD_PARAMS_SIZE	28u	/* NVSP >= 5, rev 3 */
#define NDIS_OFFLOAD_PARAMS_SIZE_6_1	22u	/* NVSP <= 4 */
#define NDIS_OFFLOAD_PARAMS_SIZE_6_0	20u	/* V minimum accepted (rev 1) */
#define NDIS_OFFLOAD_PARAMS_REV_LEGACY	NDIS_OFFLOAD_PARAMS_REV_3 /* L; D uses 2 */

/* Checksum parameter values. */
#define NDIS_OFFLOAD_PARAM_NOCHG	0u
#define NDIS_OFFLOAD_PARAM_OFF		1u	/* TX and RX disabled */
#define NDIS_OFFLOAD_PARAM_TX		2u	/* TX on, RX off */
#define NDIS_OFFLOAD_PARAM_RX		3u	/* RX on, TX off */
#define NDIS_OFFLOAD_PARAM_TXRX		4u	/* TX and RX on */
/* LSOv1, LSOv2 and RSC parameter values. */
#define NDIS_OFFLOAD_LSOV1_NOCHG	0u
#define NDIS_OFFLOAD_LSOV1_OFF		1u
#define NDIS_OFFLOAD_LSOV1_ON		2u
#define NDIS_OFFLOAD_LSOV2_NOCHG	0u
#define NDIS_OFFLOAD_LSOV2_OFF		1u
#define NDIS_OFFLOAD_LSOV2_ON		2u
#define NDIS_OFFLOAD_RSC_NOCHG		0u
#define NDIS_OFFLOAD_RSC_OFF		1u
#define NDIS_OFFLOAD_RSC_ON		2u
/* IPsec v1 parameter values. */
#define NDIS_OFFLOAD_IPSECV1_NOCHG	0u
#define NDIS_OFFLOAD_IPSECV1_OFF	1u
#define NDIS_OFFLOAD_IPSECV1_AH		2u
#define NDIS_OFFLOAD_IPSECV1_ESP	3u
#define NDIS_OFFLOAD_IPSECV1_AH_ESP	4u

/*
 * NDIS_RECEIVE_SCALE_CAPABILITIES (type NDIS_OBJTYPE_RSS_CAPS) - RESP H->G
 * to OID_GEN_RECEIVE_SCALE_CAPABILITIES. The object ends at byte 18 (rev 2),
 * so the struct is packed to keep sizeof equal to the wire size.
 */
struct ndis_rss_caps {
	struct ndis_object_hdr	ndis_hdr;
	uint32_t ndis_caps;		/* NDIS_RSS_CAP_* */
	uint32_t ndis_nmsi;		/* interrupt messages */
	uint32_t ndis_nrxr;		/* receive queues */
	/* NDIS_RSS_CAPS_REV_2 */
	uint16_t ndis_nind;		/* indirection table entries */
} __attribute__((packed));
HV_ASSERT_SIZE(struct ndis_rss_caps, 18);
HV_ASSERT_OFFSET(struct ndis_rss_caps, ndis_caps, 4);
HV_ASSERT_OFFSET(struct ndis_rss_caps, ndis_nmsi, 8);
HV_ASSERT_OFFSET(struct ndis_rss_caps, ndis_nrxr, 12);
HV_ASSERT_OFFSET(struct ndis_rss_caps, ndis_nind, 16);

#define NDIS_RSS_CAPS_REV_1		1u
#define NDIS_RSS_CAPS_REV_2		2u
#define NDIS_RSS_CAPS_SIZE_6_0		16u	/* rev 1 */
#define NDIS_RSS_CAPS_SIZE		18u	/* rev 2 */

#define NDIS_RSS_CAP_HASH_TOEPLITZ	0x00000001u
#define NDIS_RSS_CAP_TCP_IPV4		0x00000100u	/* D: IPV4 */
#define NDIS_RSS_CAP_TCP_IPV6		0x00000200u	/* D: IPV6 */
#define NDIS_RSS_CAP_TCP_IPV6_EX	0x00000400u	/* D: IPV6_EX */
#define NDIS_RSS_CAP_UDP_IPV4		0x00000800u	/* V */
#define NDIS_RSS_CAP_UDP_IPV6		0x00001000u	/* V */
#define NDIS_RSS_CAP_UDP_IPV6_EX	0x00002000u	/* V */
#define NDIS_RSS_CAP_MSI		0x01000000u
#define NDIS_RSS_CAP_CLASSIFY_ISR	0x02000000u
#define NDIS_RSS_CAP_CLASSIFY_DPC	0x04000000u
#define NDIS_RSS_CAP_MSIX		0x08000000u
#define NDIS_RSS_CAP_RSS_AVAILABLE_ON_PORTS 0x10000000u
#define NDIS_RSS_CAP_SUPPORTS_MSI_X	0x20000000u
#define NDIS_RSS_CAP_INDEPENDENT_ENTRY_MOVE 0x40000000u	/* V */

#define NDIS_RSS_INDIRECT_DEFAULT	128u	/* entries, V answer / L fallback */
#define NDIS_RSS_INDIRECT_MAX		256u	/* L accepts 1..256 */

/*
 * NDIS_RECEIVE_SCALE_PARAMETERS (type NDIS_OBJTYPE_RSS_PARAMS) - REQ G->H
 * as the SET OID_GEN_RECEIVE_SCALE_PARAMETERS buffer, revision 2, 40 bytes
 * followed by the indirection table (u32 queue indices) and the key, at the
 * offsets given (from the start of this object).
 */
struct ndis_rss_params {
	struct ndis_object_hdr	ndis_hdr;
	uint16_t ndis_flags;		/* NDIS_RSS_FLAG_* */
	uint16_t ndis_bcpu;		/* base CPU number; 0 */
	uint32_t ndis_hash;		/* NDIS_HASH_FUNCTION_* | NDIS_HASH_* */
	uint16_t ndis_indsize;		/* bytes: entries * 4 */
	uint16_t ndis_rsvd0;		/* pad */
	uint32_t ndis_indoffset;	/* bytes from object start */
	uint16_t ndis_keysize;		/* bytes; 40 */
	uint16_t ndis_rsvd1;		/* pad */
	uint32_t ndis_keyoffset;	/* bytes from object start */
	uint32_t ndis_cpumaskoffset;	/* 0 */
	uint32_t ndis_cpumaskcnt;	/* 0 */
	uint32_t ndis_cpumaskentsz;	/* 0 */
};
HV_ASSERT_SIZE(struct ndis_rss_params, 40);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_flags, 4);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_bcpu, 6);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_hash, 8);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_indsize, 12);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_indoffset, 16);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_keysize, 20);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_keyoffset, 24);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_cpumaskoffset, 28);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_cpumaskcnt, 32);
HV_ASSERT_OFFSET(struct ndis_rss_params, ndis_cpumaskentsz, 36);

/* Revision 3 appends the default processor number (V). */
struct ndis_rss_params_rev3 {
	struct ndis_rss_params	ndis_rev2;
	uint32_t ndis_defproc;		/* default processor number */
};
HV_ASSERT_SIZE(struct ndis_rss_params_rev3, 44);
HV_ASSERT_OFFSET(struct ndis_rss_params_rev3, ndis_defproc, 40);

#define NDIS_RSS_PARAMS_REV_1		1u
#define NDIS_RSS_PARAMS_REV_2		2u
#define NDIS_RSS_PARAMS_REV_3		3u
#define NDIS_RSS_PARAMS_SIZE_REV_1	28u
#define NDIS_RSS_PARAMS_SIZE		40u	/* rev 2 */
#define NDIS_RSS_PARAMS_SIZE_REV_3	44u

#define NDIS_RSS_FLAG_BCPU_UNCHG	0x0001u
#define NDIS_RSS_FLAG_HASH_UNCHG	0x0002u
#define NDIS_RSS_FLAG_IND_UNCHG		0x0004u
#define NDIS_RSS_FLAG_KEY_UNCHG		0x0008u
#define NDIS_RSS_FLAG_DISABLE		0x0010u
#define NDIS_RSS_FLAG_DEFPROC_UNCHG	0x0020u	/* V */

#define NDIS_RSS_KEY_SIZE		40u	/* Toeplitz key, bytes */
#define NDIS_RSS_HASH_INFO_L		0x00001701u	/* what L sends */

/*
 * NDIS_OFFLOAD_ENCAPSULATION (type NDIS_OBJTYPE_OFFLOAD_ENCAP) for
 * OID_OFFLOAD_ENCAPSULATION, revision 1, 28 bytes (V).
 */
struct ndis_offload_encap {
	struct ndis_object_hdr	ndis_hdr;
	uint32_t ndis_ip4_enabled;	/* NDIS_OFFLOAD_ENCAP_(NOT_)SUPPORTED */
	uint32_t ndis_ip4_encap_type;	/* NDIS_OFFLOAD_ENCAP_* */
	uint32_t ndis_ip4_hdr_size;	/* bytes */
	uint32_t ndis_ip6_enabled;
	uint32_t ndis_ip6_encap_type;
	uint32_t ndis_ip6_hdr_size;	/* bytes */
};
HV_ASSERT_SIZE(struct ndis_offload_encap, 28);
HV_ASSERT_OFFSET(struct ndis_offload_encap, ndis_ip4_enabled, 4);
HV_ASSERT_OFFSET(struct ndis_offload_encap, ndis_ip6_enabled, 16);
HV_ASSERT_OFFSET(struct ndis_offload_encap, ndis_ip6_hdr_size, 24);

#define NDIS_OFFLOAD_ENCAP_REV_1	1u
#define NDIS_OFFLOAD_ENCAP_NOT_SUPPORTED 0u
#define NDIS_OFFLOAD_ENCAP_SUPPORTED	1u

/* NDIS_LINK_STATE for OID_GEN_LINK_STATE (V), 40 bytes. */
struct ndis_link_state {
	struct ndis_object_hdr	ndis_hdr;
	uint32_t ndis_media_connect_state; /* NDIS_LINK_STATE_CONNECTED... */
	uint32_t ndis_duplex;
	uint32_t ndis_rsvd0;		/* pad */
	uint64_t ndis_xmit_link_speed;	/* bit/s */
	uint64_t ndis_rcv_link_speed;	/* bit/s */
	uint32_t ndis_pause_functions;
	uint32_t ndis_autoneg_flags;
};
HV_ASSERT_SIZE(struct ndis_link_state, 40);
HV_ASSERT_OFFSET(struct ndis_link_state, ndis_media_connect_state, 4);
HV_ASSERT_OFFSET(struct ndis_link_state, ndis_duplex, 8);
HV_ASSERT_OFFSET(struct ndis_link_state, ndis_xmit_link_speed, 16);
HV_ASSERT_OFFSET(struct ndis_link_state, ndis_rcv_link_speed, 24);
HV_ASSERT_OFFSET(struct ndis_link_state, ndis_pause_functions, 32);
HV_ASSERT_OFFSET(struct ndis_link_state, ndis_autoneg_flags, 36);

/* NDIS6 enum, unlike OID_GEN_MEDIA_CONNECT_STATUS. */
#define NDIS_LINK_STATE_CONNECTED	1u

/* OID_GEN_MAX_LINK_SPEED payload (V). */
struct ndis_max_link_speed {
	uint64_t ndis_xmit;		/* bit/s */
	uint64_t ndis_rcv;		/* bit/s */
};
HV_ASSERT_SIZE(struct ndis_max_link_speed, 16);
HV_ASSERT_OFFSET(struct ndis_max_link_speed, ndis_rcv, 8);

/* ---- 2.8 Status indications (INDICATE_STATUS_MSG rm_status) ---- */

#define RNDIS_STATUS_ONLINE			0x40010003u
#define RNDIS_STATUS_MEDIA_CONNECT		0x4001000Bu
#define RNDIS_STATUS_MEDIA_DISCONNECT		0x4001000Cu
#define RNDIS_STATUS_MEDIA_SPECIFIC_INDICATION	0x40010012u
#define RNDIS_STATUS_LINK_SPEED_CHANGE		0x40010013u	/* u32, 100 bit/s */
#define RNDIS_STATUS_NETWORK_CHANGE		0x40010018u
#define RNDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG 0x40020006u

#endif /* HV_RNDIS_H */
