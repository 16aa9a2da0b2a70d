/*
 * test_wire_devices.c - byte-exact checks of the device wire headers
 * (hv/nvsp.h, hv/rndis.h, hv/vstor.h, hv/scsi.h, hv/icmsg.h).
 *
 * Each test fills a message through the structs (with the hv_le*()
 * helpers, so it also holds on big-endian hosts) and compares the bytes
 * with an expected array written by hand from the tables of
 * shared/spec/vmbus-devices.md; the expected bytes are never derived from
 * the structs or header constants. Designated initializers name the spec
 * offsets. The size test compares sizeof against the spec's numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv/icmsg.h"
#include "hv/nvsp.h"
#include "hv/rndis.h"
#include "hv/scsi.h"
#include "hv/vstor.h"
#include "hv/wire.h"

/* NVSP INIT for 6.1, padded to 40 bytes (spec 1.4, 1.5). */
static void test_nvsp_init(void **state)
{
	(void)state;
	struct nvsp_init m;
	static const uint8_t expect[40] = {
		[0] = 0x01,			/* msg_type 1 */
		[4] = 0x01, 0x00, 0x06, 0x00,	/* min 0x00060001 */
		[8] = 0x01, 0x00, 0x06, 0x00,	/* max 0x00060001 */
		/* 12..39 zero padding */
	};

	memset(&m, 0xA5, sizeof(m));
	memset(m.ni_rsvd, 0, sizeof(m.ni_rsvd));
	m.ni_type = hv_le32(NVSP_MSG_TYPE_INIT);
	m.ni_min_protocol_ver = hv_le32(NVSP_PROTOCOL_VERSION_61);
	m.ni_max_protocol_ver = hv_le32(NVSP_VERSION(6, 1));
	assert_int_equal(sizeof(m), sizeof(expect));
	assert_memory_equal(&m, expect, sizeof(expect));

	/* the other version words of 1.1 */
	assert_int_equal(NVSP_PROTOCOL_VERSION_1, 0x00000002);
	assert_int_equal(NVSP_PROTOCOL_VERSION_2, 0x00030002);
	assert_int_equal(NVSP_VERSION(3, 2), 0x00030002);
	assert_int_equal(NDIS_VERSION_6_30, (6u << 16) | 30u);
}

/* NVSP SEND_RNDIS_PKT control message in send section 5 (spec 1.4). */
static void test_nvsp_send_rndis_pkt(void **state)
{
	(void)state;
	union nvsp_msg m;
	static const uint8_t expect[40] = {
		[0] = 0x6b,			/* msg_type 107 */
		[4] = 0x01,			/* channel_type 1 = control */
		[8] = 0x05,			/* section index 5 */
		[12] = 0x64,			/* section size 100 */
	};

	memset(&m, 0, sizeof(m));
	m.nm_rndis_pkt.np_type = hv_le32(NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	m.nm_rndis_pkt.np_channel_type = hv_le32(NVSP_RNDIS_CHANNEL_TYPE_CONTROL);
	m.nm_rndis_pkt.np_send_buf_section_index = hv_le32(5);
	m.nm_rndis_pkt.np_send_buf_section_size = hv_le32(100);
	assert_memory_equal(&m, expect, sizeof(expect));

	/* "send buffer not used" form: index ~0, size 0 */
	m.nm_rndis_pkt.np_send_buf_section_index = hv_le32(NVSP_SEND_BUF_SECTION_NONE);
	m.nm_rndis_pkt.np_send_buf_section_size = 0;
	static const uint8_t none[8] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	assert_memory_equal(m.nm_raw + 8, none, sizeof(none));
}

/* NVSP SEND_NDIS_CONFIG: u64 capability at unaligned offset 12. */
static void test_nvsp_ndis_config(void **state)
{
	(void)state;
	struct nvsp_send_ndis_config m;
	static const uint8_t expect[40] = {
		[0] = 0x7d,			/* msg_type 125 */
		[4] = 0xf8, 0x05,		/* mtu 1514 + 14 = 1528 = 0x5F8 */
		[12] = 0x2c,			/* sriov | 802.1q | teaming */
	};

	memset(&m, 0, sizeof(m));
	m.nc_type = hv_le32(NVSP_MSG2_TYPE_SEND_NDIS_CONFIG);
	m.nc_mtu = hv_le32(1514 + 14);
	m.nc_capability = hv_le64(NVSP_NDIS_CONFIG_CAP_SRIOV |
				  NVSP_NDIS_CONFIG_CAP_IEEE8021Q |
				  NVSP_NDIS_CONFIG_CAP_TEAMING);
	assert_memory_equal(&m, expect, sizeof(expect));
	/* bit 7 (RSC) lands in byte 12; bit 32 would land in byte 16 */
	m.nc_capability = hv_le64(NVSP_NDIS_CONFIG_CAP_RSC | (1ull << 32));
	assert_int_equal(((const uint8_t *)&m)[12], 0x80);
	assert_int_equal(((const uint8_t *)&m)[16], 0x01);
}

/* NVSP SEND_RECV_BUF_COMPLETE with one section (28 bytes, spec 1.4). */
static void test_nvsp_recv_buf_complete(void **state)
{
	(void)state;
	struct nvsp_send_recv_buf_complete m;
	static const uint8_t expect[28] = {
		[0] = 0x66,			/* type 102 */
		[4] = 0x01,			/* status success */
		[8] = 0x01,			/* one section */
		[12] = 0x00,			/* offset 0 */
		[16] = 0x0e, 0x07,		/* sub_alloc_size 1806 */
		[20] = 0x10, 0x27,		/* 10000 slots */
		[24] = 0xe0, 0x92, 0x13, 0x01,	/* end 18060000 = 0x011392E0 */
	};

	memset(&m, 0, sizeof(m));
	m.nrc_type = hv_le32(NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE);
	m.nrc_status = hv_le32(NVSP_STAT_SUCCESS);
	m.nrc_num_sections = hv_le32(1);
	m.nrc_sections[0].nrs_offset = 0;
	m.nrc_sections[0].nrs_sub_alloc_size = hv_le32(1806);
	m.nrc_sections[0].nrs_num_sub_allocs = hv_le32(10000);
	m.nrc_sections[0].nrs_end_offset = hv_le32(1806u * 10000u);
	assert_memory_equal(&m, expect, sizeof(expect));
}

/* RNDIS INITIALIZE_MSG (24 bytes, spec 2.2). */
static void test_rndis_init(void **state)
{
	(void)state;
	struct rndis_init_req m;
	static const uint8_t expect[24] = {
		[0] = 0x02,			/* INITIALIZE_MSG */
		[4] = 0x18,			/* msg_len 24 */
		[8] = 0x01,			/* request_id 1 */
		[12] = 0x01,			/* major 1 */
		[16] = 0x00,			/* minor 0 */
		[20] = 0x00, 0x40,		/* max_transfer_size 0x4000 */
	};

	m.rm_type = hv_le32(REMOTE_NDIS_INITIALIZE_MSG);
	m.rm_len = hv_le32(sizeof(m));
	m.rm_rid = hv_le32(1);
	m.rm_ver_major = hv_le32(RNDIS_MAJOR_VERSION);
	m.rm_ver_minor = hv_le32(RNDIS_MINOR_VERSION);
	m.rm_max_xfersz = hv_le32(RNDIS_INIT_MAX_XFERSZ_L);
	assert_memory_equal(&m, expect, sizeof(expect));
	assert_int_equal(REMOTE_NDIS_INITIALIZE_CMPLT, 0x80000002u);
}

struct csum_pkt {
	struct rndis_packet_msg pkt;
	struct rndis_pktinfo ppi;
	uint32_t csum;
	uint8_t frame[4];
};

/*
 * PACKET_MSG with one TX checksum PPI and a 4-byte frame (spec 2.3, 2.4):
 * PPI at byte 44 (offset 36 from byte 8), 16 bytes; frame at byte 60
 * (data_offset 52); msg_len 64. Checksum: IPv4 | TCP, L4 offset 34.
 */
static void test_rndis_packet_csum(void **state)
{
	(void)state;
	struct csum_pkt m;
	static const uint8_t expect[64] = {
		[0] = 0x01,			/* PACKET_MSG */
		[4] = 0x40,			/* msg_len 64 */
		[8] = 0x34,			/* data_offset 52 */
		[12] = 0x04,			/* data_len 4 */
		[28] = 0x24,			/* per_pkt_info_offset 36 */
		[32] = 0x10,			/* per_pkt_info_len 16 */
		[44] = 0x10,			/* ppi size 16 */
		[48] = 0x00,			/* ppi type 0 = checksum */
		[52] = 0x0c,			/* ppi offset 12 */
		[56] = 0x05, 0x00, 0x22, 0x00,	/* bits 0,2; thoff 34 << 16 */
		[60] = 0xde, 0xad, 0xbe, 0xef,	/* frame */
	};

	assert_int_equal(sizeof(m), 64);
	memset(&m, 0, sizeof(m));
	m.pkt.rm_type = hv_le32(REMOTE_NDIS_PACKET_MSG);
	m.pkt.rm_len = hv_le32(sizeof(m));
	m.pkt.rm_dataoffset = hv_le32(RNDIS_PACKET_MSG_OFFSET_REL(
		(uint32_t)offsetof(struct csum_pkt, frame)));
	m.pkt.rm_datalen = hv_le32(4);
	m.pkt.rm_pktinfooffset = hv_le32(RNDIS_PACKET_MSG_OFFSET_REL(
		(uint32_t)offsetof(struct csum_pkt, ppi)));
	m.pkt.rm_pktinfolen = hv_le32(RNDIS_PKTINFO_SIZE_U32);
	m.ppi.rpi_size = hv_le32(RNDIS_PKTINFO_SIZE_U32);
	m.ppi.rpi_type = hv_le32(NDIS_PKTINFO_TYPE_CSUM);
	m.ppi.rpi_pktinfo_offset = hv_le32(RNDIS_PKTINFO_OFFSET);
	m.csum = hv_le32(NDIS_TXCSUM_INFO_IPV4 | NDIS_TXCSUM_INFO_TCPCS |
			 NDIS_TXCSUM_INFO_THOFF(34));
	m.frame[0] = 0xde;
	m.frame[1] = 0xad;
	m.frame[2] = 0xbe;
	m.frame[3] = 0xef;
	assert_memory_equal(&m, expect, sizeof(expect));
}

/* PPI payload bit layouts against values computed by hand (spec 2.4). */
static void test_rndis_ppi_bits(void **state)
{
	(void)state;
	/* LSOv2 IPv6, MSS 1440 (0x5A0), TCP header at 54 (0x36):
	 * 0x5A0 | 0x36 << 20 = 0x036005A0, | bit 30 | bit 31 = 0xC36005A0 */
	assert_int_equal(NDIS_LSO2_INFO_MAKEIPV6(54, 1440), 0xC36005A0u);
	/* IPv4 form clears bit 31 */
	assert_int_equal(NDIS_LSO2_INFO_MAKEIPV4(34, 1460), 0x422005B4u);
	/* VLAN 100 (0x64), priority 5, CFI: 0x640 | 5 | 8 = 0x64D */
	assert_int_equal(NDIS_VLAN_INFO_MAKE(100, 5, 1), 0x64Du);
	assert_int_equal(NDIS_VLAN_INFO_ID(0x64Du), 100);
	assert_int_equal(NDIS_VLAN_INFO_PRI(0x64Du), 5);
	/* internal PKTINFO_ID type */
	assert_int_equal(RNDIS_PKTINFO_TYPE_PKTINFO_ID, 0x80000001u);
	/* hash info L sends: Toeplitz with IPv4/TCP4/IPv6/TCP6 */
	assert_int_equal(NDIS_HASH_FUNCTION_TOEPLITZ | NDIS_HASH_IPV4 |
				 NDIS_HASH_TCP_IPV4 | NDIS_HASH_IPV6 |
				 NDIS_HASH_TCP_IPV6,
			 0x1701u);
}

/* NDIS object header + RSS params first bytes (spec 2.7). */
static void test_ndis_rss_params(void **state)
{
	(void)state;
	struct ndis_rss_params p;
	static const uint8_t expect[40] = {
		[0] = 0x89, 0x02, 0x28, 0x00,	/* type 0x89, rev 2, size 40 */
		[4] = 0x10, 0x00,		/* flags: disable */
		[8] = 0x01, 0x17,		/* hash info 0x1701 */
		[12] = 0x00, 0x02,		/* table 512 bytes (128 entries) */
		[16] = 0x28,			/* table at 40 */
		[20] = 0x28,			/* key 40 bytes */
		[24] = 0x28, 0x02,		/* key at 552 */
	};

	memset(&p, 0, sizeof(p));
	p.ndis_hdr.ndis_type = NDIS_OBJTYPE_RSS_PARAMS;
	p.ndis_hdr.ndis_rev = NDIS_RSS_PARAMS_REV_2;
	p.ndis_hdr.ndis_size = hv_le16(NDIS_RSS_PARAMS_SIZE);
	p.ndis_flags = hv_le16(NDIS_RSS_FLAG_DISABLE);
	p.ndis_hash = hv_le32(NDIS_RSS_HASH_INFO_L);
	p.ndis_indsize = hv_le16(128 * 4);
	p.ndis_indoffset = hv_le32(sizeof(p));
	p.ndis_keysize = hv_le16(NDIS_RSS_KEY_SIZE);
	p.ndis_keyoffset = hv_le32(sizeof(p) + 128 * 4);
	assert_memory_equal(&p, expect, sizeof(expect));
}

/* VSTOR BEGIN_INITIALIZATION: 64 bytes WIN8+, 48 bytes pre-WIN8 (3.3, 3.5). */
static void test_vstor_begin_init(void **state)
{
	(void)state;
	struct vstor_packet p;
	static const uint8_t expect[64] = {
		[0] = 0x07,			/* BEGIN_INITIALIZATION */
		[4] = 0x01,			/* REQUEST_COMPLETION */
		[8] = 0x00,			/* status */
	};

	memset(&p, 0, sizeof(p));
	p.vp_operation = hv_le32(VSTOR_OPERATION_BEGIN_INITIALIZATION);
	p.vp_flags = hv_le32(VSTOR_FLAG_REQUEST_COMPLETION);
	assert_int_equal(sizeof(p), 64);
	assert_memory_equal(&p, expect, 64);
	assert_int_equal(VSTOR_PACKET_SIZE_FOR(VMSTOR_PROTO_VERSION_WIN8), 64);
	assert_int_equal(VSTOR_PACKET_SIZE_FOR(VMSTOR_PROTO_VERSION_WIN7), 48);
	assert_int_equal(VSTOR_PACKET_SIZE_FOR(VMSTOR_PROTO_VERSION_WIN6), 48);
	assert_int_equal(VSTOR_PACKET_SIZE_FOR(VMSTOR_PROTO_VERSION_WIN10), 64);

	/* QUERY_PROTOCOL_VERSION 6.2 */
	p.vp_operation = hv_le32(VSTOR_OPERATION_QUERY_PROTOCOL_VERSION);
	p.vp_version.vpv_major_minor = hv_le16(VSTOR_VERSION(6, 2));
	static const uint8_t ver[16] = { 0x09, 0, 0, 0, 0x01, 0, 0, 0,
					 0, 0, 0, 0, 0x02, 0x06, 0, 0 };
	assert_memory_equal(&p, ver, sizeof(ver));
	assert_int_equal(VMSTOR_PROTO_VERSION_WIN10, 0x0602);
}

/* Build EXECUTE_SRB READ(10): LBA 0x1234, 8 blocks, 4096 bytes, LUN 3. */
static void fill_read10(struct vstor_packet *p, int win8)
{
	memset(p, 0, sizeof(*p));
	p->vp_operation = hv_le32(VSTOR_OPERATION_EXECUTE_SRB);
	p->vp_flags = hv_le32(VSTOR_FLAG_REQUEST_COMPLETION);
	p->vp_srb.vr_length = hv_le16(win8 ? VMSCSI_REQUEST_SIZE : VMSCSI_REQUEST_SIZE_PREWIN8);
	p->vp_srb.vr_port_number = 2;
	p->vp_srb.vr_path_id = 0;
	p->vp_srb.vr_target_id = 1;
	p->vp_srb.vr_lun = 3;
	p->vp_srb.vr_cdb_length = SCSI_CDB10_LEN;
	p->vp_srb.vr_sense_info_length =
		win8 ? VSTOR_SENSE_BUFFER_SIZE : VSTOR_SENSE_BUFFER_SIZE_PREWIN8;
	p->vp_srb.vr_data_in = VSTOR_DATA_READ;
	p->vp_srb.vr_data_transfer_length = hv_le32(4096);
	p->vp_srb.vr_cdb[0] = SCSI_READ_10;
	hv_put_be32(&p->vp_srb.vr_cdb[2], 0x1234);
	hv_put_be16(&p->vp_srb.vr_cdb[7], 8);
	if (win8) {
		p->vp_srb.vr_queue_tag = VSTOR_SP_UNTAGGED;
		p->vp_srb.vr_queue_action = VSTOR_SRB_SIMPLE_TAG_REQUEST;
		p->vp_srb.vr_srb_flags = hv_le32(SRB_FLAGS_DISABLE_SYNCH_TRANSFER |
						 SRB_FLAGS_DATA_IN);
		p->vp_srb.vr_time_out_value = hv_le32(VSTOR_SRB_TIMEOUT_DEFAULT);
	}
}

static void test_vstor_execute_srb_read10(void **state)
{
	(void)state;
	struct vstor_packet p;
	static const uint8_t win8[64] = {
		[0] = 0x03,			/* EXECUTE_SRB */
		[4] = 0x01,			/* REQUEST_COMPLETION */
		[12] = 0x34, 0x00,		/* length 0x34 */
		[14] = 0x00, 0x00,		/* srb_status, scsi_status */
		[16] = 0x02, 0x00, 0x01, 0x03,	/* port 2, path 0, target 1, lun 3 */
		[20] = 0x0a,			/* cdb_length 10 */
		[21] = 0x14,			/* sense_info_length 20 */
		[22] = 0x01,			/* data_in = read */
		[24] = 0x00, 0x10, 0x00, 0x00,	/* 4096 bytes */
		[28] = 0x28, 0x00,		/* READ(10) */
		[30] = 0x00, 0x00, 0x12, 0x34,	/* LBA, big-endian */
		[34] = 0x00,			/* group */
		[35] = 0x00, 0x08,		/* 8 blocks, big-endian */
		[48] = 0x00, 0x00,		/* reserve */
		[50] = 0xff,			/* queue_tag SP_UNTAGGED */
		[51] = 0x20,			/* SIMPLE_TAG */
		[52] = 0x48,			/* DISABLE_SYNCH | DATA_IN */
		[56] = 0x3c,			/* timeout 60 s */
		[60] = 0x00,			/* sort key */
	};
	static const uint8_t prewin8[48] = {
		[0] = 0x03,
		[4] = 0x01,
		[12] = 0x24, 0x00,		/* length 0x24 */
		[16] = 0x02, 0x00, 0x01, 0x03,
		[20] = 0x0a,
		[21] = 0x12,			/* sense_info_length 18 */
		[22] = 0x01,
		[24] = 0x00, 0x10, 0x00, 0x00,
		[28] = 0x28, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x00, 0x08,
	};

	fill_read10(&p, 1);
	assert_int_equal(VMSCSI_REQUEST_SIZE_FOR(VMSTOR_PROTO_VERSION_WIN8_1), 0x34);
	assert_memory_equal(&p, win8, sizeof(win8));

	fill_read10(&p, 0);
	assert_int_equal(VSTOR_PACKET_SIZE_PREWIN8, sizeof(prewin8));
	assert_memory_equal(&p, prewin8, sizeof(prewin8));
	/* nothing of a pre-WIN8 request lives past byte 48 */
	static const uint8_t zero[16];
	assert_memory_equal((const uint8_t *)&p + 48, zero, 16);

	/* completion view: sense data overlays the CDB, 20 bytes at abs 28 */
	p.vp_srb.vr_sense_data[0] = SCSI_SENSE_RESPONSE_CURRENT;
	p.vp_srb.vr_sense_data[19] = 0x77;
	assert_int_equal(((const uint8_t *)&p)[28], 0x70);
	assert_int_equal(((const uint8_t *)&p)[47], 0x77);
}

/* Guest NEGOTIATE reply: counts 1+1, framework 3.0, service 3.2 (4.1, 4.4). */
static void test_ic_negotiate(void **state)
{
	(void)state;
	union {
		struct ic_negotiate n;
		uint8_t raw[44];
	} m;
	static const uint8_t expect[44] = {
		[0] = 0x01,			/* pipe flags: data */
		[4] = 0x24,			/* pipe msgsize 36 */
		[8] = 0x01, 0x00, 0x00, 0x00,	/* framework 1.0 */
		[12] = 0x00, 0x00,		/* type NEGOTIATE */
		[14] = 0x01, 0x00, 0x00, 0x00,	/* service 1.0 */
		[18] = 0x10, 0x00,		/* icmsgsize 16 */
		[20] = 0x00,			/* status S_OK */
		[24] = 0x00,			/* ic transaction id */
		[25] = 0x05,			/* TRANSACTION | RESPONSE */
		[28] = 0x01, 0x00,		/* one framework version */
		[30] = 0x01, 0x00,		/* one service version */
		[32] = 0x00,			/* reserved */
		[36] = 0x03, 0x00, 0x00, 0x00,	/* 3.0 */
		[40] = 0x03, 0x00, 0x02, 0x00,	/* 3.2 */
	};

	assert_int_equal(sizeof(m), IC_NEGOTIATE_SIZE(1, 1));
	memset(&m, 0, sizeof(m));
	m.n.icn_hdr.ic_pipe.iph_flags = hv_le32(IC_PIPE_FLAG_DATA);
	m.n.icn_hdr.ic_pipe.iph_msgsize = hv_le32(sizeof(m) - sizeof(struct ic_pipe_hdr));
	m.n.icn_hdr.ic_verframe.iv_major = hv_le16(1);
	m.n.icn_hdr.ic_msgtype = hv_le16(IC_MSGTYPE_NEGOTIATE);
	m.n.icn_hdr.ic_vermsg.iv_major = hv_le16(1);
	m.n.icn_hdr.ic_msgsize = hv_le16(IC_NEGOTIATE_RESP_MSGSIZE);
	m.n.icn_hdr.ic_status = hv_le32(IC_STATUS_S_OK);
	m.n.icn_hdr.ic_flags = IC_FLAGS_GUEST_RESPONSE;
	m.n.icn_icframe_vercnt = hv_le16(1);
	m.n.icn_icmsg_vercnt = hv_le16(1);
	m.n.icn_versions[0].iv_major = hv_le16(3);
	m.n.icn_versions[0].iv_minor = hv_le16(0);
	m.n.icn_versions[1].iv_major = hv_le16(3);
	m.n.icn_versions[1].iv_minor = hv_le16(2);
	assert_memory_equal(&m, expect, sizeof(expect));

	static const struct ic_version shut[] = IC_SHUTDOWN_GUEST_VERSIONS;
	assert_int_equal(sizeof(shut) / sizeof(shut[0]), IC_SHUTDOWN_GUEST_VERCNT);
	assert_int_equal(shut[0].iv_major, 3);
	assert_int_equal(shut[0].iv_minor, 2);
}

/* Heartbeat: u64 sequence number at unaligned offset 28 (4.5). */
static void test_ic_heartbeat(void **state)
{
	(void)state;
	struct ic_heartbeat hb;
	static const uint8_t expect[8] = { 0x08, 0x07, 0x06, 0x05,
					   0x04, 0x03, 0x02, 0x01 };

	memset(&hb, 0, sizeof(hb));
	hb.ihb_seq_num = hv_le64(0x0102030405060708ull);
	assert_memory_equal((const uint8_t *)&hb + 28, expect, sizeof(expect));
	assert_int_equal(hv_le64(hb.ihb_seq_num) + 1, 0x0102030405060709ull);
}

/* Timesync v4: parent_time @28, reference @36, flags @44 (4.7). */
static void test_ic_timesync4(void **state)
{
	(void)state;
	struct ic_timesync4 ts;
	static const uint8_t expect[20] = {
		[0] = 0x00, 0x80, 0x3e, 0xd5, 0xde, 0xb1, 0x9d, 0x01, /* 1970 epoch */
		[8] = 0x10, 0x27,		/* reference 10000 */
		[16] = 0x01,			/* SYNC */
	};

	memset(&ts, 0, sizeof(ts));
	/* 116444736000000000 = 0x019DB1DED53E8000 */
	ts.its4_parent_time = hv_le64(IC_TIMESYNC_EPOCH_DELTA);
	ts.its4_vm_reference_time = hv_le64(10000);
	ts.its4_flags = IC_TIMESYNC_FLAG_SYNC;
	assert_memory_equal((const uint8_t *)&ts + 28, expect, sizeof(expect));
	assert_int_equal(IC_TIMESYNC_FLAG_SAMPLE, 2);
}

/* KVP SET, guest pool, key "abc" = "x": header region and value (4.8). */
static void test_kvp_set(void **state)
{
	(void)state;
	static struct kvp_msg_get_set m;
	static const uint8_t expect[52] = {
		[0] = 0x01,			/* pipe flags */
		[4] = 0x24, 0x0a,		/* pipe msgsize 2596 */
		[8] = 0x03, 0x00, 0x00, 0x00,	/* framework 3.0 */
		[12] = 0x02, 0x00,		/* KVP_EXCHANGE */
		[14] = 0x04, 0x00, 0x00, 0x00,	/* service 4.0 */
		[18] = 0x10, 0x0a,		/* icmsgsize 2576 */
		[25] = 0x03,			/* TRANSACTION | REQUEST */
		[28] = 0x01,			/* SET */
		[29] = 0x01,			/* pool GUEST */
		[32] = 0x01,			/* REG_SZ */
		[36] = 0x08,			/* key_size 8 */
		[40] = 0x04,			/* value_size 4 */
		[44] = 'a', 0, 'b', 0, 'c', 0, 0, 0, /* key UTF-16LE */
	};
	static const uint8_t value[4] = { 'x', 0, 0, 0 };

	memset(&m, 0, sizeof(m));
	m.kgs_ichdr.ic_pipe.iph_flags = hv_le32(IC_PIPE_FLAG_DATA);
	m.kgs_ichdr.ic_pipe.iph_msgsize = hv_le32(sizeof(m) - IC_PIPE_HDR_SIZE);
	m.kgs_ichdr.ic_verframe.iv_major = hv_le16(3);
	m.kgs_ichdr.ic_msgtype = hv_le16(IC_MSGTYPE_KVPEXCHANGE);
	m.kgs_ichdr.ic_vermsg.iv_major = hv_le16(4);
	m.kgs_ichdr.ic_msgsize = hv_le16(sizeof(m) - IC_HDR_SIZE);
	m.kgs_ichdr.ic_flags = IC_FLAGS_HOST_REQUEST;
	m.kgs_hdr.kvh_operation = KVP_OP_SET;
	m.kgs_hdr.kvh_pool = KVP_POOL_GUEST;
	m.kgs_data.kvr_value_type = hv_le32(KVP_REG_SZ);
	m.kgs_data.kvr_key_size = hv_le32(8);
	m.kgs_data.kvr_value_size = hv_le32(4);
	hv_put_le16(&m.kgs_data.kvr_key[0], 'a');
	hv_put_le16(&m.kgs_data.kvr_key[2], 'b');
	hv_put_le16(&m.kgs_data.kvr_key[4], 'c');
	hv_put_le16(&m.kgs_data.kvr_value[0], 'x');
	assert_memory_equal(&m, expect, sizeof(expect));
	assert_memory_equal((const uint8_t *)&m + 556, value, sizeof(value));
}

/* Every struct against the size the spec gives (numbers typed from it). */
static void test_sizes(void **state)
{
	(void)state;
	/* NVSP 1.4/1.5: everything padded to the 6.1 size */
	assert_int_equal(sizeof(union nvsp_msg), 40);
	assert_int_equal(sizeof(struct nvsp_init), 40);
	assert_int_equal(sizeof(struct nvsp_send_ndis_config), 40);
	assert_int_equal(offsetof(struct nvsp_send_recv_buf_complete, nrc_rsvd), 28);
	assert_int_equal(sizeof(struct nvsp_send_indirection_table), 12);
	assert_int_equal(NVSP_MSG_SIZE_V1, 28);
	/* RNDIS 2.2/2.3 */
	assert_int_equal(sizeof(struct rndis_init_req), 24);
	assert_int_equal(sizeof(struct rndis_init_comp), 52);
	assert_int_equal(sizeof(struct rndis_halt_req), 12);
	assert_int_equal(sizeof(struct rndis_query_req), 28);
	assert_int_equal(sizeof(struct rndis_set_req), 28);
	assert_int_equal(sizeof(struct rndis_query_comp), 24);
	assert_int_equal(sizeof(struct rndis_set_comp), 16);
	assert_int_equal(sizeof(struct rndis_reset_req), 12);
	assert_int_equal(sizeof(struct rndis_reset_comp), 16);
	assert_int_equal(sizeof(struct rndis_keepalive_req), 12);
	assert_int_equal(sizeof(struct rndis_keepalive_comp), 16);
	assert_int_equal(sizeof(struct rndis_status_msg), 20);
	assert_int_equal(sizeof(struct rndis_packet_msg), 44);
	assert_int_equal(sizeof(struct rndis_pktinfo), 12);
	assert_int_equal(sizeof(struct rndis_config_param), 20);
	/* NDIS objects 2.7 */
	assert_int_equal(sizeof(struct ndis_object_hdr), 4);
	assert_int_equal(sizeof(struct ndis_offload), 156);
	assert_int_equal(offsetof(struct ndis_offload, ndis_ipsecv2), 112);
	assert_int_equal(offsetof(struct ndis_offload, ndis_rsc), 144);
	assert_int_equal(sizeof(struct ndis_offload_params), 28);
	assert_int_equal(offsetof(struct ndis_offload_params, ndis_rsc_ip4), 22);
	assert_int_equal(sizeof(struct ndis_rss_caps), 18);
	assert_int_equal(sizeof(struct ndis_rss_params), 40);
	assert_int_equal(sizeof(struct ndis_rss_params_rev3), 44);
	assert_int_equal(sizeof(struct ndis_offload_encap), 28);
	assert_int_equal(sizeof(struct ndis_link_state), 40);
	/* VSTOR 3.1/3.3/3.4 */
	assert_int_equal(sizeof(struct vstor_packet), 64);
	assert_int_equal(sizeof(struct vmscsi_request), 52);
	assert_int_equal(offsetof(struct vmscsi_request, vr_reserve), 36);
	assert_int_equal(sizeof(struct vmstor_channel_properties), 24);
	assert_int_equal(VSTOR_PACKET_SIZE_PREWIN8, 48);
	assert_int_equal(sizeof(struct scsi_sense_fixed), 18);
	/* IC 4.x */
	assert_int_equal(sizeof(struct ic_msg_hdr), 28);
	assert_int_equal(sizeof(struct ic_negotiate), 36);
	assert_int_equal(sizeof(struct ic_shutdown), 2088);
	assert_int_equal(sizeof(struct ic_timesync), 56);
	assert_int_equal(offsetof(struct ic_timesync4, its4_rsvd), 47);
	assert_int_equal(sizeof(struct kvp_exchg_msg_value), 2572);
	assert_int_equal(sizeof(struct kvp_msg_get_set), 2604);
	assert_int_equal(sizeof(struct kvp_msg_enumerate), 2608);
	assert_int_equal(sizeof(struct kvp_msg_delete), 548);
	assert_int_equal(sizeof(struct kvp_msg_ip_info), 7456);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nvsp_init),
		cmocka_unit_test(test_nvsp_send_rndis_pkt),
		cmocka_unit_test(test_nvsp_ndis_config),
		cmocka_unit_test(test_nvsp_recv_buf_complete),
		cmocka_unit_test(test_rndis_init),
		cmocka_unit_test(test_rndis_packet_csum),
		cmocka_unit_test(test_rndis_ppi_bits),
		cmocka_unit_test(test_ndis_rss_params),
		cmocka_unit_test(test_vstor_begin_init),
		cmocka_unit_test(test_vstor_execute_srb_read10),
		cmocka_unit_test(test_ic_negotiate),
		cmocka_unit_test(test_ic_heartbeat),
		cmocka_unit_test(test_ic_timesync4),
		cmocka_unit_test(test_kvp_set),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
