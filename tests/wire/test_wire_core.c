/*
 * test_wire_core.c - byte-exact checks of the core wire headers
 * (hv/tlfs.h, hv/vmbus_msg.h, hv/vmbus_pkt.h, hv/guid.h).
 *
 * Each test fills a message through the structs (with the hv_le*()
 * helpers, so it also holds on big-endian hosts) and compares the bytes
 * with an expected array written by hand from the tables of
 * shared/spec/vmbus-core.md: the expected bytes are never derived from the
 * structs themselves. Designated initializers name each spec offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv/guid.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "hv/wire.h"

/* INITIATE_CONTACT at 5.0 (spec 2.4): target-info view, monitor pages. */
static void test_initiate_contact_v5(void **state)
{
	(void)state;
	struct vmbus_chanmsg_initiate_contact ic;
	static const uint8_t expect[40] = {
		[0] = 0x0e,				/* type 14 */
		[8] = 0x00, 0x00, 0x05, 0x00,		/* version 0x00050000 */
		[12] = 0x01,				/* target_vcpu 1 */
		[16] = 0x02,				/* msg_sint 2 */
		[17] = 0x00,				/* msg_vtl 0 */
		[20] = 0x00,				/* feature_flags 0 */
		[24] = 0x00, 0x40, 0x23, 0x01,		/* page1 0x1234000 */
		[32] = 0x00, 0x50, 0x23, 0x01,		/* page2 0x1235000 */
	};

	memset(&ic, 0, sizeof(ic));
	ic.ic_hdr.chm_type = hv_le32(VMBUS_CHANMSG_INITIATE_CONTACT);
	ic.ic_vmbus_version_requested = hv_le32(VMBUS_VERSION_WIN10_RS3_1);
	ic.ic_target_vcpu = hv_le32(1);
	ic.ic_msg_sint = VMBUS_MESSAGE_SINT;
	ic.ic_msg_vtl = 0;
	ic.ic_feature_flags = hv_le32(0);
	ic.ic_monitor_page1 = hv_le64(0x1234000);
	ic.ic_monitor_page2 = hv_le64(0x1235000);
	assert_int_equal(VMBUS_CHANMSG_INITIATE_CONTACT_SIZE, sizeof(expect));
	assert_memory_equal(&ic, expect, sizeof(expect));

	/* pre-5.0 view: the same 8 bytes are the interrupt page GPA */
	ic.ic_interrupt_page = hv_le64(0x0000000501234000ull);
	static const uint8_t ip[8] = { 0x00, 0x40, 0x23, 0x01, 0x05, 0, 0, 0 };
	assert_memory_equal((const uint8_t *)&ic + 16, ip, 8);

	/* 6.0 client id goes at 40..55 */
	ic.ic_client_id = HV_GUID_NETVSC;
	assert_int_equal(((const uint8_t *)&ic)[40], 0x63);
	assert_int_equal(((const uint8_t *)&ic)[55], 0x0e);
	assert_int_equal(VMBUS_CHANMSG_INITIATE_CONTACT_SIZE_CLIENT_ID, 56);
}

/* VERSION_RESPONSE 6.0 form (20 bytes). */
static void test_version_response(void **state)
{
	(void)state;
	struct vmbus_chanmsg_version_response vr;
	static const uint8_t expect[20] = {
		[0] = 0x0f,				/* type 15 */
		[8] = 0x01,				/* version_supported */
		[9] = 0x02,				/* FAILED_UNKNOWN_FAILURE */
		[12] = 0x01, 0x20, 0x00, 0x00,		/* msg conn id 0x2001 */
		[16] = 0x0c, 0x00, 0x00, 0x00,		/* features 0x0c */
	};

	memset(&vr, 0, sizeof(vr));
	vr.vr_hdr.chm_type = hv_le32(VMBUS_CHANMSG_VERSION_RESPONSE);
	vr.vr_version_supported = 1;
	vr.vr_connection_state = VMBUS_CONNECTION_FAILED_UNKNOWN_FAILURE;
	vr.vr_msg_conn_id = hv_le32(0x2001);
	vr.vr_supported_features = hv_le32(VMBUS_FEATURE_MODIFY_CONNECTION |
					   VMBUS_FEATURE_CLIENT_ID);
	assert_int_equal(VMBUS_CHANMSG_VERSION_RESPONSE_SIZE_V6, sizeof(expect));
	assert_memory_equal(&vr, expect, sizeof(expect));
	assert_int_equal(VMBUS_CHANMSG_VERSION_RESPONSE_SIZE, 16);
	assert_int_equal(VMBUS_CHANMSG_VERSION_RESPONSE_SIZE_MONITOR, 40);

	/* 40-byte form: server monitor pages at 24 and 32 */
	vr.vr_monitor_page2 = hv_le64(0x7000);
	assert_int_equal(((const uint8_t *)&vr)[33], 0x70);
}

/* OFFERCHANNEL (196 bytes) with every field set. */
static void test_offerchannel(void **state)
{
	(void)state;
	struct vmbus_chanmsg_offerchannel of;
	static const uint8_t expect[196] = {
		[0] = 0x01,
		/* if_type = heartbeat, spec 7.2 wire bytes */
		[8] = 0x39, 0x4f, 0x16, 0x57, 0x15, 0x91, 0x78, 0x4e,
		      0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d,
		/* if_instance = OVMM shutdown instance (7.3) */
		[24] = 0xf7, 0x0f, 0x65, 0xb6, 0xbc, 0x33, 0x40, 0x48,
		       0x80, 0x48, 0xe0, 0x67, 0x67, 0x86, 0xf3, 0x93,
		[56] = 0x11, 0x20,			/* chn_flags 0x2011 */
		[58] = 0x40, 0x00,			/* mmio 64 MB */
		[60] = 0x04, 0x00, 0x00, 0x00,		/* pipe_mode MESSAGE */
		[179] = 0xee,				/* last user_defined byte */
		[180] = 0x03, 0x00,			/* sub_channel_index 3 */
		[182] = 0x08, 0x00,			/* mmio optional 8 */
		[184] = 0x0d, 0x00, 0x00, 0x00,		/* child_relid 13 */
		[188] = 0x2a,				/* monitorid 42 */
		[189] = 0x01,				/* monitor_allocated */
		[190] = 0x01, 0x00,			/* dedicated interrupt */
		[192] = 0x0d, 0x20, 0x00, 0x00,		/* connection_id 0x200d */
	};

	memset(&of, 0, sizeof(of));
	of.of_hdr.chm_type = hv_le32(VMBUS_CHANMSG_OFFERCHANNEL);
	of.of_if_type = HV_GUID_HEARTBEAT;
	of.of_if_instance = HV_GUID_INST_SHUTDOWN;
	of.of_chn_flags = hv_le16(VMBUS_OFFER_FLAG_TLNPI_PROVIDER_OFFER |
				  VMBUS_OFFER_FLAG_NAMED_PIPE_MODE |
				  VMBUS_OFFER_FLAG_ENUMERATE_DEVICE_INTERFACE);
	of.of_mmio_megabytes = hv_le16(64);
	hv_put_le32(of.of_user_defined, VMBUS_PIPE_MODE_MESSAGE);
	of.of_user_defined[VMBUS_OFFER_USER_DEFINED_SIZE - 1] = 0xee;
	of.of_sub_channel_index = hv_le16(3);
	of.of_mmio_megabytes_optional = hv_le16(8);
	of.of_child_relid = hv_le32(13);
	of.of_monitorid = 42;
	of.of_monitor_allocated = VMBUS_OFFER_MONITOR_ALLOCATED;
	of.of_is_dedicated_interrupt = hv_le16(VMBUS_OFFER_DEDICATED_INTERRUPT);
	of.of_connection_id = hv_le32(0x200d);
	assert_int_equal(VMBUS_CHANMSG_OFFERCHANNEL_SIZE, sizeof(expect));
	assert_memory_equal(&of, expect, sizeof(expect));
	assert_string_equal(hv_guid_class_name(&of.of_if_type), "heartbeat");
}

/* GPADL_HEADER with one range of 3 PFNs (spec 2.4 / 5.2). */
static void test_gpadl_header_3pfn(void **state)
{
	(void)state;
	union {
		struct vmbus_chanmsg_gpadl_header h;
		uint8_t b[VMBUS_MSG_PAYLOAD_MAX];
		uint64_t align;
	} m;
	static const uint8_t expect[52] = {
		[0] = 0x08,				/* type 8 */
		[8] = 0x07,				/* child_relid 7 */
		[12] = 0x10, 0x1e, 0x0e, 0x00,		/* gpadl 0xe1e10 */
		[16] = 0x20, 0x00,			/* range_buflen 32 */
		[18] = 0x01, 0x00,			/* rangecount 1 */
		[20] = 0x00, 0x30, 0x00, 0x00,		/* byte_count 0x3000 */
		[24] = 0x00, 0x00, 0x00, 0x00,		/* byte_offset 0 */
		[28] = 0x00, 0x01,			/* pfn[0] 0x100 */
		[36] = 0x01, 0x01,			/* pfn[1] 0x101 */
		[44] = 0x02, 0x01, 0x00, 0x00, 0x02,	/* pfn[2] 0x200000102 */
	};
	const uint64_t pfn[3] = { 0x100, 0x101, 0x200000102ull };

	memset(&m, 0, sizeof(m));
	m.h.gh_hdr.chm_type = hv_le32(VMBUS_CHANMSG_GPADL_HEADER);
	m.h.gh_child_relid = hv_le32(7);
	m.h.gh_gpadl = hv_le32(0xe1e10);
	m.h.gh_range_buflen = hv_le16((uint16_t)VMBUS_GPA_RANGE_SIZE(3));
	m.h.gh_rangecount = hv_le16(1);
	hv_put_le32(m.h.gh_range + VMBUS_GPA_RANGE_BYTE_COUNT, 0x3000);
	hv_put_le32(m.h.gh_range + VMBUS_GPA_RANGE_BYTE_OFFSET, 0);
	for (int i = 0; i < 3; i++)
		hv_put_le64(m.h.gh_range + VMBUS_GPA_RANGE_PFN(i), pfn[i]);
	assert_int_equal(VMBUS_GPA_RANGE_PFNS(0, 0x3000), 3);
	assert_int_equal(VMBUS_CHANMSG_GPADL_HEADER_SIZE + VMBUS_GPA_RANGE_SIZE(3),
			 sizeof(expect));
	assert_memory_equal(m.b, expect, sizeof(expect));
}

/* GPADL_BODY continuation (spec 2.4). */
static void test_gpadl_body(void **state)
{
	(void)state;
	union {
		struct vmbus_chanmsg_gpadl_body h;
		uint8_t b[VMBUS_MSG_PAYLOAD_MAX];
	} m;
	static const uint8_t expect[32] = {
		[0] = 0x09, [12] = 0x11, 0x1e, 0x0e, 0x00,
		[16] = 0x1b, 0x02, [24] = 0x1c, 0x02,
	};

	memset(&m, 0, sizeof(m));
	m.h.gb_hdr.chm_type = hv_le32(VMBUS_CHANMSG_GPADL_BODY);
	m.h.gb_gpadl = hv_le32(0xe1e11);
	m.h.gb_pfn[0] = hv_le64(0x21b);
	m.h.gb_pfn[1] = hv_le64(0x21c);
	assert_memory_equal(m.b, expect, sizeof(expect));
}

/* OPENCHANNEL: 148-byte form and 6.0 extension (156). */
static void test_openchannel(void **state)
{
	(void)state;
	struct vmbus_chanmsg_openchannel op;
	static const uint8_t expect[156] = {
		[0] = 0x05,				/* type 5 */
		[8] = 0x05,				/* child_relid 5 */
		[12] = 0x05,				/* openid 5 */
		[16] = 0x11, 0x1e, 0x0e, 0x00,		/* gpadl 0xe1e11 */
		[20] = 0x01,				/* target_vp 1 */
		[24] = 0x04,				/* downstream 4 pages */
		[28] = 0xa5,				/* userdata[0] */
		[147] = 0x5a,				/* userdata[119] */
		[148] = 0x05, 0x20, 0x00, 0x00,		/* connection_id 0x2005 */
		[152] = 0x05, 0x00,			/* event_flag 5 */
		[154] = 0x01, 0x00,			/* REDIRECT_INTERRUPT */
	};

	memset(&op, 0, sizeof(op));
	op.op_hdr.chm_type = hv_le32(VMBUS_CHANMSG_OPENCHANNEL);
	op.op_child_relid = hv_le32(5);
	op.op_openid = hv_le32(5);
	op.op_gpadl = hv_le32(0xe1e11);
	op.op_target_vp = hv_le32(1);
	op.op_downstream_pgoff = hv_le32(4);
	op.op_userdata[0] = 0xa5;
	op.op_userdata[VMBUS_OPEN_USER_DATA_SIZE - 1] = 0x5a;
	/* the 148-byte message carries nothing past userdata */
	assert_memory_equal(&op, expect, VMBUS_CHANMSG_OPENCHANNEL_SIZE);
	assert_int_equal(VMBUS_CHANMSG_OPENCHANNEL_SIZE, 148);

	op.op_connection_id = hv_le32(0x2005);
	op.op_event_flag = hv_le16(5);
	op.op_flags = hv_le16(VMBUS_OPEN_FLAG_REDIRECT_INTERRUPT);
	assert_int_equal(VMBUS_CHANMSG_OPENCHANNEL_SIZE_V6, sizeof(expect));
	assert_memory_equal(&op, expect, sizeof(expect));
}

/* HvPostMessage input carrying a RESCIND-sized message (spec 1.7). */
static void test_post_message_input(void **state)
{
	(void)state;
	struct hv_post_message_input pm;
	static const uint8_t expect[28] = {
		[0] = 0x04,				/* connection id 4 */
		[8] = 0x01,				/* message type 1 */
		[12] = 0x0c,				/* payload size 12 */
		[16] = 0x0d,				/* RELID_RELEASED */
		[24] = 0x09,				/* relid 9 */
	};
	struct vmbus_chanmsg_relid_released rr;

	memset(&pm, 0, sizeof(pm));
	memset(&rr, 0, sizeof(rr));
	rr.rr_hdr.chm_type = hv_le32(VMBUS_CHANMSG_RELID_RELEASED);
	rr.rr_child_relid = hv_le32(9);
	pm.pm_connection_id = hv_le32(VMBUS_MESSAGE_CONNECTION_ID_4);
	pm.pm_message_type = hv_le32(VMBUS_MESSAGE_TYPE);
	pm.pm_payload_size = hv_le32(VMBUS_CHANMSG_RELID_RELEASED_SIZE);
	memcpy(pm.pm_payload, &rr, VMBUS_CHANMSG_RELID_RELEASED_SIZE);
	assert_memory_equal(&pm, expect, sizeof(expect));
	assert_int_equal(sizeof(pm), 256);

	/* HvSignalEvent input (spec 1.8) */
	struct hv_signal_event_input se;
	static const uint8_t se_expect[8] = { 0x0d, 0x20, 0x00, 0x00,
					      0x03, 0x00, 0x00, 0x00 };
	memset(&se, 0, sizeof(se));
	se.se_connection_id = hv_le32(0x200d);
	se.se_flag_number = hv_le16(3);
	assert_memory_equal(&se, se_expect, sizeof(se_expect));
}

/* HV_MESSAGE slot in the SIM page (spec 1.11). */
static void test_hv_message(void **state)
{
	(void)state;
	static struct hv_message_page page;
	static const uint8_t expect[28] = {
		[0] = 0x01,				/* type 1 */
		[4] = 0x0c,				/* payload size 12 */
		[5] = 0x01,				/* MessagePending */
		[8] = 0x34, 0x12,			/* sender 0x1234 */
		[16] = 0x02,				/* RESCIND_CHANNELOFFER */
		[24] = 0xff, 0x07,			/* relid 2047 */
	};
	struct hv_message *m = &page.mp_slot[VMBUS_MESSAGE_SINT];

	m->hm_type = hv_le32(VMBUS_MESSAGE_TYPE);
	m->hm_payload_size = VMBUS_CHANMSG_RESCIND_CHANNELOFFER_SIZE;
	m->hm_flags = HV_MESSAGE_FLAG_PENDING;
	m->hm_sender = hv_le64(0x1234);
	hv_put_le32(m->hm_payload, VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
	hv_put_le32(m->hm_payload + 8, 2047);
	/* the VMBus slot starts at page offset 0x200 */
	assert_memory_equal((const uint8_t *)&page + 0x200, expect, sizeof(expect));
	assert_int_equal(HV_X64_MSR_SINT(VMBUS_MESSAGE_SINT), 0x40000092);
	assert_int_equal(HV_HYPERCALL_STATUS(0x0000000500000013ull),
			 HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(HV_HYPERCALL_REPS_COMPLETED(0x0000000500000013ull), 5);
}

/* Packet descriptor + GPA-direct header with one 2-PFN range (spec 4). */
static void test_gpa_direct_packet(void **state)
{
	(void)state;
	union {
		struct vmbus_gpa_direct_hdr h;
		uint8_t b[64];
	} p;
	static const uint8_t expect[64] = {
		[0] = 0x09, 0x00,			/* type 9 */
		[2] = 0x06, 0x00,			/* offset8 6 (48 bytes) */
		[4] = 0x08, 0x00,			/* len8 8 (64 bytes) */
		[6] = 0x01, 0x00,			/* COMPLETION_REQUESTED */
		[8] = 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
		[20] = 0x01,				/* range_cnt 1 */
		[24] = 0x00, 0x18, 0x00, 0x00,		/* byte_count 0x1800 */
		[28] = 0x00, 0x08, 0x00, 0x00,		/* byte_offset 0x800 */
		[32] = 0xde, 0xbc, 0x0a,		/* pfn 0xabcde */
		[40] = 0xdf, 0xbc, 0x0a,		/* pfn 0xabcdf */
		[48] = 'p', 'a', 'y', 'l', 'o', 'a', 'd',
	};
	struct vmbus_gpa_range *r;

	memset(&p, 0, sizeof(p));
	p.h.gd_desc.pd_type = hv_le16(VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT);
	p.h.gd_desc.pd_offset8 = hv_le16(6);
	p.h.gd_desc.pd_len8 = hv_le16(8);
	p.h.gd_desc.pd_flags = hv_le16(VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	p.h.gd_desc.pd_trans_id = hv_le64(0x1122334455667788ull);
	p.h.gd_range_cnt = hv_le32(1);
	r = (struct vmbus_gpa_range *)(void *)p.h.gd_range;
	r->gr_byte_count = hv_le32(0x1800);
	r->gr_byte_offset = hv_le32(0x800);
	assert_int_equal(VMBUS_GPA_RANGE_PFNS(0x800, 0x1800), 2);
	r->gr_pfn[0] = hv_le64(0xabcde);
	r->gr_pfn[1] = hv_le64(0xabcdf);
	memcpy(p.b + 48, "payload", 7);
	assert_memory_equal(p.b, expect, sizeof(expect));

	/* in-band packet: descriptor only before the payload */
	struct vmbus_packet_desc d;
	static const uint8_t d_expect[16] = { 0x06, 0, 0x02, 0, 0x03, 0, 0, 0,
					      0x01 };
	memset(&d, 0, sizeof(d));
	d.pd_type = hv_le16(VMBUS_PACKET_TYPE_DATA_INBAND);
	d.pd_offset8 = hv_le16(VMBUS_PACKET_INBAND_OFFSET8);
	d.pd_len8 = hv_le16((uint16_t)((16 + VMBUS_PACKET_ROUNDUP(5u)) / 8));
	d.pd_trans_id = hv_le64(1);
	assert_memory_equal(&d, d_expect, sizeof(d_expect));
}

/* GUID wire bytes (spec 7.1 example and a few 7.2 rows). */
static void test_guid_bytes(void **state)
{
	(void)state;
	static const uint8_t netvsc[16] = { 0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf,
					    0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2,
					    0xf9, 0x65, 0xed, 0x0e };
	static const uint8_t scsi[16] = { 0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04,
					  0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2,
					  0xff, 0xb1, 0xdc, 0x7f };
	static const uint8_t vpci[16] = { 0x1d, 0xf6, 0xc4, 0x44, 0x44, 0x44,
					  0x00, 0x44, 0x9d, 0x52, 0x80, 0x2e,
					  0x27, 0xed, 0xe1, 0x9f };
	char s[HV_GUID_STR_LEN];

	assert_memory_equal(HV_GUID_NETVSC.g_bytes, netvsc, 16);
	assert_memory_equal(HV_GUID_STORVSC.g_bytes, scsi, 16);
	assert_memory_equal(HV_GUID_PCIE.g_bytes, vpci, 16);
	hv_guid_to_str(&HV_GUID_NETVSC, s);
	assert_string_equal(s, "f8615163-df3e-46c5-913f-f2d2f965ed0e");
	hv_guid_to_str(&HV_GUID_ECHO, s);
	assert_string_equal(s, "7a1e6c3d-5b0e-4f5b-9c1e-3d5f7e9a0b21");

	assert_string_equal(hv_guid_class_name(&HV_GUID_NETVSC), "network");
	assert_string_equal(hv_guid_class_name(&HV_GUID_STORVSC), "scsi");
	assert_string_equal(hv_guid_class_name(&HV_GUID_SHUTDOWN), "shutdown");
	assert_string_equal(hv_guid_class_name(&HV_GUID_INST_KVP), "unknown");
	assert_null(hv_guid_class_lookup(&HV_GUID_INST_MOUSE));

	/* no class appears twice in the table */
	size_t n;
	const struct hv_guid_class *c = hv_guid_classes(&n);
	assert_int_equal(n, 23);	/* 22 rows of spec 7.2 + echo */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_false(hv_guid_equal(&c[i].gc_guid, &c[j].gc_guid));
}

/* Derived limits (spec 2.4, 5.2, 1.7, 4.8). */
static void test_limits(void **state)
{
	(void)state;
	assert_int_equal(VMBUS_MSG_PAYLOAD_MAX, 240);
	assert_int_equal(VMBUS_GPADL_HEADER_MAX_PFNS, 26);
	assert_int_equal(VMBUS_GPADL_BODY_MAX_PFNS, 28);
	/* 26 PFNs fit a one-range header, 27 do not */
	assert_true(20 + 8 + 8 * 26 <= 240);
	assert_true(20 + 8 + 8 * 27 > 240);
	assert_true(16 + 8 * 28 <= 240);
	assert_true(16 + 8 * 29 > 240);
	assert_int_equal(VMBUS_PIPE_PAYLOAD_MAX, 16384);

	/* every fixed message fits a SynIC payload; spec 2.2 sizes */
	static const uint32_t sizes[VMBUS_CHANMSG_COUNT] = {
		0, 196, 12, 8, 8, 148, 20, 12, 20, 16, 20, 16, 12, 12, 40,
		16, 8, 8, 28, 20, 12, 40, 16, 44, 16, 24, 9, 8, 8, 8,
	};
	for (uint32_t t = 0; t < VMBUS_CHANMSG_COUNT; t++) {
		assert_int_equal(vmbus_chanmsg_min_size(t), sizes[t]);
		assert_true(sizes[t] <= VMBUS_MSG_PAYLOAD_MAX);
	}
	assert_int_equal(vmbus_chanmsg_min_size(VMBUS_CHANMSG_COUNT), 0);

	/* minimum versions (spec 2.2) */
	assert_int_equal(vmbus_chanmsg_min_version(VMBUS_CHANMSG_UNLOAD_RESPONSE), 0x00010001);
	assert_int_equal(vmbus_chanmsg_min_version(VMBUS_CHANMSG_TL_CONNECT_REQUEST), 0x00040000);
	assert_int_equal(vmbus_chanmsg_min_version(VMBUS_CHANMSG_MODIFYCHANNEL), 0x00040001);
	assert_int_equal(vmbus_chanmsg_min_version(VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE), 0x00050003);
	assert_int_equal(vmbus_chanmsg_min_version(VMBUS_CHANMSG_MODIFY_CONNECTION), 0x00060000);
	assert_int_equal(vmbus_chanmsg_min_version(VMBUS_CHANMSG_INITIATE_CONTACT), 0);
	assert_int_equal(vmbus_chanmsg_min_version(VMBUS_CHANMSG_INVALID), UINT32_MAX);

	/* version words (spec 2.3) */
	static const uint32_t versions[] = { VMBUS_VERSIONS_NEWEST_FIRST };
	static const uint32_t by_hand[] = {
		0x00060000, 0x00050003, 0x00050002, 0x00050001, 0x00050000,
		0x00040001, 0x00040000, 0x00030000, 0x00020004, 0x00010001,
		0x0000000d,
	};
	assert_int_equal(sizeof(versions) / sizeof(versions[0]), VMBUS_VERSION_COUNT);
	assert_memory_equal(versions, by_hand, sizeof(by_hand));
	for (size_t i = 0; i < VMBUS_VERSION_COUNT; i++)
		assert_true(vmbus_version_known(by_hand[i]));
	assert_false(vmbus_version_known(0x00050004));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initiate_contact_v5),
		cmocka_unit_test(test_version_response),
		cmocka_unit_test(test_offerchannel),
		cmocka_unit_test(test_gpadl_header_3pfn),
		cmocka_unit_test(test_gpadl_body),
		cmocka_unit_test(test_openchannel),
		cmocka_unit_test(test_post_message_input),
		cmocka_unit_test(test_hv_message),
		cmocka_unit_test(test_gpa_direct_packet),
		cmocka_unit_test(test_guid_bytes),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
