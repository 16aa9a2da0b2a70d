/*
 * test_storvsp.c - the storage VSP against a fake channel: negotiation of
 * every VSTOR version, init order, I/O through GPA-direct buffers against
 * a real image, subchannels, a full outgoing ring, hot add/remove, errno
 * sense, and a hostile guest (bad PFNs, lengths beyond the buffer, absurd
 * CDBs, short/oversized packets, wrong per-version sizes, requests before
 * init) - each logged and counted, none touching memory it should not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_vsp.h"
#include "host/control.h"
#include "host/fault.h"
#include "host/log.h"
#include "host/loop.h"
#include "host/vsp/storvsp.h"
#include "hv/scsi.h"
#include "hv/vstor.h"

static struct hvs_loop *loop;
static struct hvs_storage *st;
static struct hvs_channel *ch0;
static char img[64];
static uint64_t next_tid = 1;

static void quiet(void *arg, enum hvs_log_level l, const char *line)
{
	(void)arg;
	(void)l;
	(void)line;
}

static int setup(void **state)
{
	(void)state;
	struct hvs_disk_spec sp;
	char err[256];

	hvs_log_set_sink(quiet, NULL);
	fake_reset();
	loop = hvs_loop_create();
	assert_non_null(loop);
	st = hvs_storage_create((struct hvs_vmbus *)&fake_srv, loop);
	assert_non_null(st);
	snprintf(img, sizeof(img), "/tmp/hvs-storvsp-%d.img", (int)getpid());
	unlink(img);
	char arg[128];
	snprintf(arg, sizeof(arg), "%s,create,size=16M,backend=threads,lun=0", img);
	assert_int_equal(hvs_disk_spec_parse(arg, &sp, err, sizeof(err)), 0);
	assert_int_equal(hvs_storage_add_disk(st, &sp, NULL, NULL, err, sizeof(err)), 0);
	assert_non_null(fake_srv.fs_ops);
	ch0 = fake_chan_new(0);
	assert_int_equal(fake_srv.fs_ops->vo_open(fake_srv.fs_arg, ch0), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (ch0 != NULL) {
		fake_srv.fs_ops->vo_close(fake_srv.fs_arg, ch0, 0);
		fake_chan_free(ch0);
		ch0 = NULL;
	}
	fake_srv.fs_ops->vo_destroy(fake_srv.fs_arg);
	hvs_storage_destroy(st);
	hvs_loop_destroy(loop);
	hvs_fault_reset_all();
	unlink(img);
	return 0;
}

/* ---- guest side helpers -------------------------------------------------------- */

static void wait_out(struct hvs_channel *ch, unsigned n)
{
	uint64_t end = hvs_now_ns() + 10ull * 1000000000ull * VMBUS_TEST_TIME_SCALE;
	while (ch->fc_nout < n && hvs_now_ns() < end)
		hvs_loop_run_once(loop, 5);
	if (ch->fc_nout < n)
		fail_msg("only %u of %u packets came back", ch->fc_nout, n);
}

static void signal_ch(struct hvs_channel *ch)
{
	fake_srv.fs_ops->vo_on_signal(fake_srv.fs_arg, ch);
}

/* In-band packet: descriptor + payload padded to 8. */
static uint64_t push_inband(struct hvs_channel *ch, const void *p, uint32_t len)
{
	uint8_t b[512];
	uint32_t plen = 16 + ((len + 7) & ~7u);
	memset(b, 0, sizeof(b));
	hv_put_le16(b, VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(b + 2, 2);
	hv_put_le16(b + 4, (uint16_t)(plen / 8));
	hv_put_le16(b + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	uint64_t tid = next_tid++;
	hv_put_le64(b + 8, tid);
	memcpy(b + 16, p, len);
	fake_push(ch, b, plen);
	return tid;
}

/* GPA-direct packet with one range over guest bytes [gpa, gpa+len). */
static uint64_t push_gpa(struct hvs_channel *ch, const void *p, uint32_t len,
			 uint64_t gpa, uint32_t blen)
{
	static uint8_t b[16384];
	uint32_t bo = (uint32_t)(gpa % 4096);
	uint32_t npfn = (bo + blen + 4095) / 4096;
	uint32_t off = 24 + 8 + 8 * npfn;
	uint32_t plen = off + ((len + 7) & ~7u);
	memset(b, 0, plen);
	hv_put_le16(b, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT);
	hv_put_le16(b + 2, (uint16_t)(off / 8));
	hv_put_le16(b + 4, (uint16_t)(plen / 8));
	hv_put_le16(b + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	uint64_t tid = next_tid++;
	hv_put_le64(b + 8, tid);
	hv_put_le32(b + 20, 1);
	hv_put_le32(b + 24, blen);
	hv_put_le32(b + 28, bo);
	for (uint32_t i = 0; i < npfn; i++)
		hv_put_le64(b + 32 + 8 * i, gpa / 4096 + i);
	memcpy(b + off, p, len);
	fake_push(ch, b, plen);
	return tid;
}

static const struct vstor_packet *out_pkt(struct hvs_channel *ch, unsigned i)
{
	return (const struct vstor_packet *)ch->fc_out[i].fo_data;
}

/* Send one VSTOR operation in-band, wait for its completion. */
static const struct vstor_packet *op(struct hvs_channel *ch, uint32_t operation,
				     const void *payload, uint32_t plen,
				     uint32_t pktlen, uint32_t *rlen)
{
	struct vstor_packet v;
	memset(&v, 0, sizeof(v));
	v.vp_operation = hv_cpu_to_le32(operation);
	v.vp_flags = hv_cpu_to_le32(VSTOR_FLAG_REQUEST_COMPLETION);
	if (payload)
		memcpy(v.vp_raw, payload, plen);
	unsigned n = ch->fc_nout;
	uint64_t tid = push_inband(ch, &v, pktlen);
	signal_ch(ch);
	wait_out(ch, n + 1);
	assert_int_equal(ch->fc_out[n].fo_type, VMBUS_PACKET_TYPE_COMP);
	assert_int_equal(ch->fc_out[n].fo_tid, tid);
	if (rlen)
		*rlen = ch->fc_out[n].fo_len;
	return out_pkt(ch, n);
}

static uint32_t status_of(const struct vstor_packet *p)
{
	assert_int_equal(hv_le32(p->vp_operation), VSTOR_OPERATION_COMPLETE_IO);
	return hv_le32(p->vp_status);
}

static void init_ch(struct hvs_channel *ch, uint16_t ver)
{
	uint32_t len;
	struct vmstor_protocol_version pv = { hv_cpu_to_le16(ver), 0 };
	assert_int_equal(status_of(op(ch, VSTOR_OPERATION_BEGIN_INITIALIZATION,
				      NULL, 0, 64, &len)), 0);
	assert_int_equal(len, 64);
	const struct vstor_packet *r = op(ch, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
					  &pv, sizeof(pv), 64, &len);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(hv_le16(r->vp_version.vpv_major_minor), ver);
	assert_int_equal(len, VSTOR_PACKET_SIZE_FOR(ver));
	r = op(ch, VSTOR_OPERATION_QUERY_PROPERTIES, NULL, 0, VSTOR_PACKET_SIZE_FOR(ver), &len);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(hv_le32(r->vp_properties.vcp_max_transfer_bytes), 2u << 20);
	if (ver >= VMSTOR_PROTO_VERSION_WIN8) {
		assert_int_equal(hv_le16(r->vp_properties.vcp_max_channel_cnt), 4);
		assert_int_equal(hv_le32(r->vp_properties.vcp_flags), 1);
	} else {
		assert_int_equal(hv_le16(r->vp_properties.vcp_max_channel_cnt), 0);
		assert_int_equal(hv_le32(r->vp_properties.vcp_flags), 0);
	}
	assert_int_equal(status_of(op(ch, VSTOR_OPERATION_END_INITIALIZATION,
				      NULL, 0, VSTOR_PACKET_SIZE_FOR(ver), NULL)), 0);
}

/* Build and send an SRB; data at gpa (blen bytes) or in-band if blen 0. */
static const struct vstor_packet *srb(struct hvs_channel *ch, uint8_t lun,
				      const uint8_t *cdb, uint8_t cdb_len,
				      uint8_t data_in, uint32_t dtl, uint64_t gpa,
				      uint32_t blen, uint32_t pktlen)
{
	struct vstor_packet v;
	memset(&v, 0, sizeof(v));
	v.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_EXECUTE_SRB);
	v.vp_flags = hv_cpu_to_le32(VSTOR_FLAG_REQUEST_COMPLETION);
	struct vmscsi_request *s = &v.vp_srb;
	s->vr_length = hv_cpu_to_le16(pktlen == 48 ? 0x24 : 0x34);
	s->vr_lun = lun;
	s->vr_cdb_length = cdb_len;
	s->vr_sense_info_length = pktlen == 48 ? 0x12 : 0x14;
	s->vr_data_in = data_in;
	s->vr_data_transfer_length = hv_cpu_to_le32(dtl);
	memcpy(s->vr_cdb, cdb, cdb_len > 16 ? 16 : cdb_len);
	unsigned n = ch->fc_nout;
	uint64_t tid = blen ? push_gpa(ch, &v, pktlen, gpa, blen)
			    : push_inband(ch, &v, pktlen);
	signal_ch(ch);
	wait_out(ch, n + 1);
	assert_int_equal(ch->fc_out[n].fo_tid, tid);
	return out_pkt(ch, n);
}

static struct hvs_storvsp_stats stats(void)
{
	struct hvs_storvsp_stats s;
	assert_int_equal(hvs_storage_get_stats(st, 0, &s), 0);
	return s;
}

static void rw16(uint8_t *c, uint8_t opc, uint64_t lba, uint32_t n)
{
	memset(c, 0, 16);
	c[0] = opc;
	hv_put_be64(c + 2, lba);
	hv_put_be32(c + 10, n);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_versions(void **state)
{
	(void)state;
	static const uint16_t ok[] = { 0x0200, 0x0402, 0x0501, 0x0600, 0x0602 };
	static const uint16_t bad[] = { 0x0100, 0x0201, 0x0500, 0x0601, 0x0603,
					0x0700, 0xFFFF, 0 };
	for (size_t i = 0; i < 5; i++)
		init_ch(ch0, ok[i]);
	uint32_t len;
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_BEGIN_INITIALIZATION,
				      NULL, 0, 64, NULL)), 0);
	for (size_t i = 0; i < sizeof(bad) / 2; i++) {
		struct vmstor_protocol_version pv = { hv_cpu_to_le16(bad[i]), 0 };
		const struct vstor_packet *r = op(ch0, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
						  &pv, sizeof(pv), 64, &len);
		assert_int_equal(status_of(r), VSTOR_STATUS_REVISION_MISMATCH);
		assert_int_equal(hv_le16(r->vp_version.vpv_major_minor), bad[i]);
		assert_int_equal(len, 64);
	}
	assert_int_equal(stats().ss_version, 0);
	init_ch(ch0, 0x0402);
	assert_int_equal(stats().ss_version, 0x0402);
}

static void test_max_version_config(void **state)
{
	(void)state;
	/* a second controller that stops at 6.0 (V's behaviour) */
	void *arg0 = fake_srv.fs_arg;
	struct hvs_storvsp_config cfg;
	unsigned idx;
	char err[200];
	assert_int_equal(hvs_storage_controller_parse("1,version=6.0,subchannels=0,"
						       "queue_depth=8,max_transfer=256K",
						       &idx, &cfg, err, sizeof(err)), 0);
	assert_int_equal(idx, 1);
	assert_int_equal(cfg.sc_max_version, 0x0600);
	assert_int_equal(cfg.sc_max_subchannels, HVS_STORVSP_NO_SUBCHANNELS);
	assert_int_equal(cfg.sc_queue_depth, 8);
	assert_int_equal(cfg.sc_max_transfer, 256u << 10);
	static const char *badc[] = { "", "x", "8", "0,version=6.1", "0,subchannels=64",
				      "0,queue_depth=0", "0,max_transfer=1000",
				      "0,max_transfer=16M", "0,bogus=1", "0,version=6",
				      "0,queue_depth=4x" };
	for (size_t i = 0; i < sizeof(badc) / sizeof(badc[0]); i++)
		assert_int_equal(hvs_storage_controller_parse(badc[i], &idx, &cfg, err,
							      sizeof(err)), -EINVAL);
	assert_int_equal(hvs_storage_controller_parse("1,version=6.0,subchannels=0",
						       &idx, &cfg, err, sizeof(err)), 0);
	assert_int_equal(hvs_storage_config_controller(st, 1, &cfg, true), 0);
	assert_int_equal(hvs_storage_config_controller(st, 1, &cfg, true), -EEXIST);
	/* the fake server now routes to controller 1 */
	void *arg1 = fake_srv.fs_arg;
	struct hvs_channel *c1 = fake_chan_new(0);
	assert_int_equal(fake_srv.fs_ops->vo_open(arg1, c1), 0);
	fake_srv.fs_arg = arg1;
	struct vmstor_protocol_version pv = { hv_cpu_to_le16(0x0602), 0 };
	void *save = fake_srv.fs_arg;
	assert_int_equal(status_of(op(c1, VSTOR_OPERATION_BEGIN_INITIALIZATION,
				      NULL, 0, 64, NULL)), 0);
	assert_int_equal(status_of(op(c1, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
				      &pv, 4, 64, NULL)), VSTOR_STATUS_REVISION_MISMATCH);
	pv.vpv_major_minor = hv_cpu_to_le16(0x0600);
	assert_int_equal(status_of(op(c1, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
				      &pv, 4, 64, NULL)), 0);
	const struct vstor_packet *r = op(c1, VSTOR_OPERATION_QUERY_PROPERTIES,
					  NULL, 0, 64, NULL);
	assert_int_equal(hv_le16(r->vp_properties.vcp_max_channel_cnt), 0);
	assert_int_equal(hv_le32(r->vp_properties.vcp_flags), 0);
	fake_srv.fs_ops->vo_close(save, c1, 0);
	fake_chan_free(c1);
	fake_srv.fs_ops->vo_destroy(save);
	fake_srv.fs_arg = arg0; /* back to controller 0 for teardown */
}

static void test_init_order(void **state)
{
	(void)state;
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	const struct vstor_packet *r = srb(ch0, 0, tur, 6, 2, 0, 0, 0, 64);
	assert_int_equal(status_of(r), VSTOR_STATUS_INVALID_DEVICE_STATE);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	struct vmstor_protocol_version pv = { hv_cpu_to_le16(0x0602), 0 };
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
				      &pv, 4, 64, NULL)), VSTOR_STATUS_INVALID_DEVICE_STATE);
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_BEGIN_INITIALIZATION,
				      NULL, 0, 64, NULL)), 0);
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_QUERY_PROPERTIES,
				      NULL, 0, 64, NULL)), VSTOR_STATUS_INVALID_DEVICE_STATE);
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_END_INITIALIZATION,
				      NULL, 0, 64, NULL)), VSTOR_STATUS_INVALID_DEVICE_STATE);
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_FCHBA_DATA,
				      NULL, 0, 64, NULL)), VSTOR_STATUS_INVALID_DEVICE_REQUEST);
	assert_int_equal(status_of(op(ch0, 99, NULL, 0, 64, NULL)),
			 VSTOR_STATUS_INVALID_DEVICE_REQUEST);
	assert_true(stats().ss_bad_packets >= 5);
	init_ch(ch0, 0x0602);
	r = srb(ch0, 0, tur, 6, 2, 0, 0, 0, 64);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_RESET_BUS, NULL, 0, 64, NULL)), 0);
}

static void test_io(void **state)
{
	(void)state;
	uint8_t c[16];
	init_ch(ch0, 0x0602);
	/* 3 pages + change, starting 100 bytes into a page */
	uint64_t gpa = 0x10000 + 100;
	uint32_t n = 8 * 512 * 2;
	for (uint32_t i = 0; i < n; i++)
		fake_ram[gpa + i] = (uint8_t)(i * 13 + 5);
	rw16(c, SCSI_WRITE_16, 40, 16);
	const struct vstor_packet *r = srb(ch0, 0, c, 16, VSTOR_DATA_WRITE, n, gpa, n, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(hv_le32(r->vp_srb.vr_data_transfer_length), n);
	assert_int_equal(hv_le16(r->vp_srb.vr_length), 0x34);
	/* the image holds it */
	int fd = open(img, O_RDONLY);
	uint8_t chk[8192];
	assert_int_equal(pread(fd, chk, n, 40 * 512), (ssize_t)n);
	close(fd);
	assert_memory_equal(chk, fake_ram + gpa, n);
	/* read it back elsewhere */
	uint64_t g2 = 0x40000 + 4000;
	rw16(c, SCSI_READ_16, 40, 16);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, n, g2, n, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	assert_memory_equal(fake_ram + g2, fake_ram + gpa, n);
	assert_int_equal(fake_ram[g2 - 1], 0);
	assert_int_equal(fake_ram[g2 + n], 0);
	/* FUA write, flush, unmap */
	rw16(c, SCSI_WRITE_16, 0, 1);
	c[1] = 0x08;
	r = srb(ch0, 0, c, 16, VSTOR_DATA_WRITE, 512, gpa, 512, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	uint8_t sc[10] = { SCSI_SYNCHRONIZE_CACHE_10 };
	r = srb(ch0, 0, sc, 10, VSTOR_DATA_UNKNOWN, 0, 0, 0, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	uint8_t um[10] = { SCSI_UNMAP };
	hv_put_be16(um + 7, 24);
	uint8_t *pl = fake_ram + 0x80000;
	memset(pl, 0, 24);
	hv_put_be16(pl + 2, 16);
	hv_put_be64(pl + 8, 40);
	hv_put_be32(pl + 16, 8);
	r = srb(ch0, 0, um, 10, VSTOR_DATA_WRITE, 24, 0x80000, 24, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	rw16(c, SCSI_READ_16, 40, 16);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, n, g2, n, 64);
	for (uint32_t i = 0; i < 4096; i++)
		assert_int_equal(fake_ram[g2 + i], 0);
	assert_memory_equal(fake_ram + g2 + 4096, fake_ram + gpa + 4096, n - 4096);
	/* WRITE SAME 16 with UNMAP, NDOB */
	uint8_t ws[16] = { SCSI_WRITE_SAME_16, 0x09 };
	hv_put_be64(ws + 2, 48);
	hv_put_be32(ws + 10, 8);
	r = srb(ch0, 0, ws, 16, VSTOR_DATA_UNKNOWN, 0, 0, 0, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	/* INQUIRY, READ CAPACITY 16, REPORT LUNS through the guest buffer */
	uint8_t inq[6] = { SCSI_INQUIRY, 0, 0, 0, 96, 0 };
	r = srb(ch0, 0, inq, 6, VSTOR_DATA_READ, 96, 0x90000, 96, 64);
	assert_int_equal(hv_le32(r->vp_srb.vr_data_transfer_length), 36);
	assert_memory_equal(fake_ram + 0x90000 + 8, "Msft", 4);
	uint8_t rc[16] = { SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16 };
	hv_put_be32(rc + 10, 32);
	r = srb(ch0, 0, rc, 16, VSTOR_DATA_READ, 32, 0x90000, 32, 64);
	assert_int_equal(hv_get_be64(fake_ram + 0x90000), 16u * 2048 - 1);
	uint8_t rl[12] = { SCSI_REPORT_LUNS };
	hv_put_be32(rl + 6, 64);
	r = srb(ch0, 5, rl, 12, VSTOR_DATA_READ, 64, 0x90000, 64, 64);
	assert_int_equal(hv_get_be32(fake_ram + 0x90000), 8);
	/* an absent LUN: INQUIRY says PQ 3, anything else INVALID_LUN */
	r = srb(ch0, 5, inq, 6, VSTOR_DATA_READ, 96, 0x90000, 96, 64);
	assert_int_equal(fake_ram[0x90000], 0x7F);
	r = srb(ch0, 5, c, 16, VSTOR_DATA_READ, n, g2, n, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_LUN);
	struct hvs_storvsp_stats s = stats();
	assert_int_equal(s.ss_bad_srbs, 0);
	assert_int_equal(s.ss_gpa_faults, 0);
	assert_true(s.ss_bytes_written >= n);
}

static void test_prewin8_sizes(void **state)
{
	(void)state;
	init_ch(ch0, 0x0402);
	uint8_t inq[6] = { SCSI_INQUIRY, 1, 0x99, 0, 96, 0 };
	uint32_t n0 = ch0->fc_nout;
	const struct vstor_packet *r = srb(ch0, 0, inq, 6, VSTOR_DATA_READ, 96,
					   0x90000, 96, 48);
	assert_int_equal(ch0->fc_out[n0].fo_len, 48);
	assert_int_equal(hv_le16(r->vp_srb.vr_length), 0x24);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
	assert_int_equal(r->vp_srb.vr_scsi_status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r->vp_srb.vr_sense_info_length, 18);
	assert_int_equal(r->vp_srb.vr_sense_data[2], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(r->vp_srb.vr_sense_data[12], SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* subchannels are a WIN8 feature */
	uint16_t cnt = 1;
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_CREATE_SUB_CHANNELS,
				      &cnt, 2, 48, NULL)), VSTOR_STATUS_INVALID_DEVICE_STATE);
	assert_int_equal(fake_srv.fs_sub_offers, 0);
}

static void test_hostile(void **state)
{
	(void)state;
	uint8_t c[16];
	init_ch(ch0, 0x0602);
	struct hvs_storvsp_stats s0 = stats();
	memset(fake_ram + 0x20000, 0x5A, 8192);

	/* a PFN beyond guest RAM, for a read and a write */
	rw16(c, SCSI_READ_16, 0, 8);
	const struct vstor_packet *r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 4096,
					   FAKE_RAM_BYTES + 0x1000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_ERROR);
	assert_int_equal(hv_le32(r->vp_srb.vr_data_transfer_length), 0);
	rw16(c, SCSI_WRITE_16, 0, 8);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_WRITE, 4096, FAKE_RAM_BYTES - 2048, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_ERROR);
	assert_int_equal(stats().ss_gpa_faults, s0.ss_gpa_faults + 2);
	/* data_transfer_length beyond the described buffer; data in-band */
	r = srb(ch0, 0, c, 16, VSTOR_DATA_WRITE, 8192, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_WRITE, 4096, 0, 0, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	/* CDB asks for more than the buffer: CHECK CONDITION, nothing moved */
	rw16(c, SCSI_READ_16, 0, 16);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_scsi_status, SCSI_STATUS_CHECK_CONDITION);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(fake_ram[0x20000 + i], 0x5A);
	/* absurd CDBs: huge transfer, LBA overflow, cdb_length 0 / 17 */
	rw16(c, SCSI_READ_16, UINT64_MAX - 1, 0xFFFFFFFFu);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_sense_data[12], SCSI_ASC_LBA_OUT_OF_RANGE);
	rw16(c, SCSI_READ_16, 0, 0xFFFFFFFFu);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_scsi_status, SCSI_STATUS_CHECK_CONDITION);
	r = srb(ch0, 0, c, 0, VSTOR_DATA_READ, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	r = srb(ch0, 0, c, 17, VSTOR_DATA_READ, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	/* direction lies, data_in out of range, dtl above max transfer */
	rw16(c, SCSI_READ_16, 0, 8);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_WRITE, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	r = srb(ch0, 0, c, 16, 7, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 4u << 20, 0x100000, 4u << 20, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(fake_ram[0x20000 + i], 0x5A);
	/* wrong per-version size: a pre-WIN8 packet on WIN10 */
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 4096, 0x20000, 4096, 48);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_REQUEST);
	/* other buses and targets */
	struct vstor_packet v;
	memset(&v, 0, sizeof(v));
	unsigned n = ch0->fc_nout;
	v.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_EXECUTE_SRB);
	v.vp_srb.vr_target_id = 1;
	v.vp_srb.vr_cdb_length = 6;
	v.vp_srb.vr_data_in = 2;
	push_inband(ch0, &v, 64);
	v.vp_srb.vr_target_id = 0;
	v.vp_srb.vr_lun = 200;
	push_inband(ch0, &v, 64);
	/* truncated and oversized VSTOR packets, a transfer-page packet and
	 * a guest completion (both ignored) */
	push_inband(ch0, &v, 8);
	uint8_t big[256];
	memset(big, 0, sizeof(big));
	memcpy(big, &v, 64);
	push_inband(ch0, big, 200);
	uint8_t xp[32] = { 7, 0, 3, 0, 4, 0, 0, 0 };
	fake_push(ch0, xp, 32);
	uint8_t comp[24] = { 11, 0, 2, 0, 3, 0, 0, 0 };
	fake_push(ch0, comp, 24);
	signal_ch(ch0);
	wait_out(ch0, n + 4);
	assert_int_equal(out_pkt(ch0, n)->vp_srb.vr_srb_status, SRB_STATUS_INVALID_LUN);
	assert_int_equal(out_pkt(ch0, n + 1)->vp_srb.vr_srb_status, SRB_STATUS_INVALID_LUN);
	assert_int_equal(status_of(out_pkt(ch0, n + 2)), VSTOR_STATUS_INVALID_PARAMETER);
	assert_int_equal(status_of(out_pkt(ch0, n + 3)), VSTOR_STATUS_INVALID_PARAMETER);
	for (int i = 0; i < 5; i++)
		hvs_loop_run_once(loop, 1);
	assert_int_equal(ch0->fc_nout, n + 4);
	assert_false(ch0->fc_broken);

	struct hvs_storvsp_stats s = stats();
	assert_true(s.ss_bad_srbs >= s0.ss_bad_srbs + 8);
	assert_true(s.ss_bad_packets >= s0.ss_bad_packets + 4);
	assert_int_equal(s.ss_inflight, 0);
	/* still serving */
	rw16(c, SCSI_READ_16, 0, 8);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 4096, 0x20000, 4096, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
}

static void test_subchannels(void **state)
{
	(void)state;
	init_ch(ch0, 0x0602);
	uint16_t cnt = 5;
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_CREATE_SUB_CHANNELS,
				      &cnt, 2, 64, NULL)), VSTOR_STATUS_INVALID_PARAMETER);
	cnt = 0;
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_CREATE_SUB_CHANNELS,
				      &cnt, 2, 64, NULL)), VSTOR_STATUS_INVALID_PARAMETER);
	cnt = 2;
	assert_int_equal(status_of(op(ch0, VSTOR_OPERATION_CREATE_SUB_CHANNELS,
				      &cnt, 2, 64, NULL)), 0);
	assert_int_equal(fake_srv.fs_sub_offers, 2);
	assert_int_equal(fake_srv.fs_sub_idx[0], 1);
	assert_int_equal(fake_srv.fs_sub_idx[1], 2);
	struct hvs_channel *c2 = fake_chan_new(2);
	assert_int_equal(fake_srv.fs_ops->vo_open(fake_srv.fs_arg, c2), 0);
	/* init operations belong to the primary */
	assert_int_equal(status_of(op(c2, VSTOR_OPERATION_BEGIN_INITIALIZATION,
				      NULL, 0, 64, NULL)), VSTOR_STATUS_INVALID_DEVICE_STATE);
	uint8_t c[16];
	fake_ram[0x30000] = 0x77;
	rw16(c, SCSI_WRITE_16, 7, 1);
	const struct vstor_packet *r = srb(c2, 0, c, 16, VSTOR_DATA_WRITE, 512,
					   0x30000, 512, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	rw16(c, SCSI_READ_16, 7, 1);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 512, 0x31000, 512, 64);
	assert_int_equal(fake_ram[0x31000], 0x77);
	assert_int_equal(stats().ss_channels, 2);
	fake_srv.fs_ops->vo_close(fake_srv.fs_arg, c2, 0);
	fake_chan_free(c2);
}

static void test_ring_full(void **state)
{
	(void)state;
	init_ch(ch0, 0x0602);
	ch0->fc_space = 2;
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	struct vstor_packet v;
	memset(&v, 0, sizeof(v));
	v.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_EXECUTE_SRB);
	v.vp_srb.vr_cdb_length = 6;
	v.vp_srb.vr_data_in = 2;
	memcpy(v.vp_srb.vr_cdb, tur, 6);
	unsigned n = ch0->fc_nout;
	for (int i = 0; i < 6; i++)
		push_inband(ch0, &v, 64);
	signal_ch(ch0);
	for (int i = 0; i < 5; i++)
		hvs_loop_run_once(loop, 1);
	assert_int_equal(ch0->fc_nout, n + 2);
	assert_true(ch0->fc_want_signal);
	assert_true(stats().ss_send_waits >= 1);
	/* the guest reads; its signal drains the parked completions */
	ch0->fc_space = 100;
	ch0->fc_want_signal = false;
	signal_ch(ch0);
	wait_out(ch0, n + 6);
	assert_int_equal(ch0->fc_out[n + 5].fo_tid, next_tid - 1);
}

static void test_hot_add_remove(void **state)
{
	(void)state;
	char arg[128], err[256];
	struct hvs_disk_spec sp;
	init_ch(ch0, 0x0602);
	unsigned n = ch0->fc_nout, ci, li;
	snprintf(arg, sizeof(arg), "hot,backend=null,size=1M");
	assert_int_equal(hvs_disk_spec_parse(arg, &sp, err, sizeof(err)), 0);
	assert_int_equal(hvs_storage_add_disk(st, &sp, &ci, &li, err, sizeof(err)), 0);
	assert_int_equal(ci, 0);
	assert_int_equal(li, 1);
	assert_int_equal(ch0->fc_nout, n + 1);
	assert_int_equal(ch0->fc_out[n].fo_type, VMBUS_PACKET_TYPE_DATA_INBAND);
	assert_int_equal(ch0->fc_out[n].fo_tid, 0);
	assert_int_equal(hv_le32(out_pkt(ch0, n)->vp_operation), VSTOR_OPERATION_ENUMERATE_BUS);
	uint8_t c[16];
	rw16(c, SCSI_READ_16, 0, 1);
	const struct vstor_packet *r = srb(ch0, 1, c, 16, VSTOR_DATA_READ, 512,
					   0x30000, 512, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	/* LUN taken; remove; unknown remove */
	sp.ds_lun = 1;
	assert_int_equal(hvs_storage_add_disk(st, &sp, NULL, NULL, err, sizeof(err)), -EEXIST);
	/* remove while a request is queued at the back end */
	unsigned m = ch0->fc_nout;
	struct vstor_packet v;
	memset(&v, 0, sizeof(v));
	v.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_EXECUTE_SRB);
	v.vp_srb.vr_lun = 0;
	v.vp_srb.vr_cdb_length = 16;
	v.vp_srb.vr_data_in = VSTOR_DATA_READ;
	v.vp_srb.vr_data_transfer_length = hv_cpu_to_le32(512);
	memcpy(v.vp_srb.vr_cdb, c, 16);
	push_gpa(ch0, &v, 64, 0x30000, 512);
	signal_ch(ch0); /* submitted to lun 0's thread pool */
	assert_int_equal(hvs_storage_remove_disk(st, 0, 0), 0);
	assert_int_equal(hvs_storage_remove_disk(st, 0, 0), -ENOENT);
	assert_int_equal(hvs_storage_remove_disk(st, 0, 9), -ENOENT);
	wait_out(ch0, m + 3);
	bool saw_remove = false, saw_enum = false, saw_comp = false;
	for (unsigned i = m; i < m + 3; i++) {
		uint32_t o = hv_le32(out_pkt(ch0, i)->vp_operation);
		if (ch0->fc_out[i].fo_type == VMBUS_PACKET_TYPE_COMP)
			saw_comp = true;
		else if (o == VSTOR_OPERATION_REMOVE_DEVICE)
			saw_remove = true;
		else if (o == VSTOR_OPERATION_ENUMERATE_BUS)
			saw_enum = true;
	}
	assert_true(saw_remove && saw_enum && saw_comp);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 512, 0x30000, 512, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_INVALID_LUN);
	assert_null(hvs_storage_disk(st, 0, 0));
	assert_non_null(hvs_storage_disk(st, 0, 1));
	/* the image lock is gone: it can be opened read-write again */
	snprintf(arg, sizeof(arg), "%s,lun=0", img);
	assert_int_equal(hvs_disk_spec_parse(arg, &sp, err, sizeof(err)), 0);
	assert_int_equal(hvs_storage_add_disk(st, &sp, NULL, NULL, err, sizeof(err)), 0);
	assert_true(stats().ss_notifications >= 4);
}

static void test_errno_sense(void **state)
{
	(void)state;
	uint8_t c[16];
	init_ch(ch0, 0x0602);
	struct hvs_fault_param p[1] = { { "errno", 28 } };
	assert_int_equal(hvs_fault_set(HVS_DISK_FAULT_ERROR, true, p, 1, NULL), 0);
	rw16(c, SCSI_WRITE_16, 0, 1);
	const struct vstor_packet *r = srb(ch0, 0, c, 16, VSTOR_DATA_WRITE, 512,
					   0x30000, 512, 64);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
	assert_int_equal(r->vp_srb.vr_scsi_status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r->vp_srb.vr_sense_data[2], SCSI_SENSE_DATA_PROTECT);
	assert_int_equal(r->vp_srb.vr_sense_data[12], 0x27);
	assert_int_equal(r->vp_srb.vr_sense_data[13], 0x07);
	p[0].fp_value = 5;
	assert_int_equal(hvs_fault_set(HVS_DISK_FAULT_ERROR, true, p, 1, NULL), 0);
	rw16(c, SCSI_READ_16, 0, 1);
	r = srb(ch0, 0, c, 16, VSTOR_DATA_READ, 512, 0x30000, 512, 64);
	assert_int_equal(r->vp_srb.vr_sense_data[2], SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(r->vp_srb.vr_sense_data[12], 0x11);
	assert_int_equal(hv_le32(r->vp_srb.vr_data_transfer_length), 0);
	hvs_fault_set(HVS_DISK_FAULT_ERROR, false, NULL, 0, NULL);
	assert_int_equal(stats().ss_io_errors, 2);
}

/* GPA-direct packet whose range lists the given PFNs (npfn of them). */
static uint64_t push_gpa_pfns(struct hvs_channel *ch, const void *p, uint32_t len,
			      const uint64_t *pfns, uint32_t npfn, uint32_t blen)
{
	static uint8_t b[16384];
	uint32_t off = 24 + 8 + 8 * npfn;
	uint32_t plen = off + ((len + 7) & ~7u);
	memset(b, 0, plen);
	hv_put_le16(b, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT);
	hv_put_le16(b + 2, (uint16_t)(off / 8));
	hv_put_le16(b + 4, (uint16_t)(plen / 8));
	hv_put_le16(b + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	uint64_t tid = next_tid++;
	hv_put_le64(b + 8, tid);
	hv_put_le32(b + 20, 1);
	hv_put_le32(b + 24, blen);
	hv_put_le32(b + 28, 0);
	for (uint32_t i = 0; i < npfn; i++)
		hv_put_le64(b + 32 + 8 * i, pfns[i]);
	memcpy(b + off, p, len);
	fake_push(ch, b, plen);
	return tid;
}

/* Queue a READ(16)/WRITE(16) SRB over the given PFNs (not signalled). */
static uint64_t push_srb_pfns(struct hvs_channel *ch, uint8_t opc,
			      uint64_t lba, const uint64_t *pfns, uint32_t npfn)
{
	struct vstor_packet v;
	memset(&v, 0, sizeof(v));
	v.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_EXECUTE_SRB);
	v.vp_flags = hv_cpu_to_le32(VSTOR_FLAG_REQUEST_COMPLETION);
	v.vp_srb.vr_length = hv_cpu_to_le16(0x34);
	v.vp_srb.vr_cdb_length = 16;
	v.vp_srb.vr_sense_info_length = 0x14;
	v.vp_srb.vr_data_in = opc == SCSI_READ_16 ? VSTOR_DATA_READ : VSTOR_DATA_WRITE;
	v.vp_srb.vr_data_transfer_length = hv_cpu_to_le32(npfn * 4096);
	rw16(v.vp_srb.vr_cdb, opc, lba, npfn * 8);
	return push_gpa_pfns(ch, &v, 64, pfns, npfn, npfn * 4096);
}

static const struct vstor_packet *srb_pfns(struct hvs_channel *ch, uint8_t opc,
					   uint64_t lba, const uint64_t *pfns,
					   uint32_t npfn)
{
	unsigned n = ch->fc_nout;
	uint64_t tid = push_srb_pfns(ch, opc, lba, pfns, npfn);
	signal_ch(ch);
	wait_out(ch, n + 1);
	assert_int_equal(ch->fc_out[n].fo_tid, tid);
	return out_pkt(ch, n);
}

/* Reads and writes on consecutive, aligned guest pages go straight
 * between guest RAM and the back end; scattered pages, an unaligned start
 * and a buffer partly outside RAM use a bounce buffer (or fault) instead.
 * The data is the same either way, in guest RAM and in the image. */
static void test_direct_io(void **state)
{
	(void)state;
	init_ch(ch0, 0x0602);
	uint64_t seq[16], scat[16], ahead[2];
	for (uint32_t i = 0; i < 16; i++) {
		seq[i] = 0x200 + i;             /* GPA 2 MiB on */
		scat[i] = 0x400 + (15 - i) * 2; /* backwards, with holes */
	}
	for (uint32_t i = 0; i < 16 * 4096; i++)
		fake_ram[0x200000 + i] = (uint8_t)(i * 7 + i / 4096);
	struct hvs_storvsp_stats s0 = stats();
	unsigned maps0 = fake_gpa_maps;

	/* direct write, then direct read of it elsewhere */
	const struct vstor_packet *r = srb_pfns(ch0, SCSI_WRITE_16, 64, seq, 16);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(hv_le32(r->vp_srb.vr_data_transfer_length), 16 * 4096);
	int fd = open(img, O_RDONLY);
	static uint8_t chk[16 * 4096];
	assert_int_equal(pread(fd, chk, sizeof(chk), 64 * 512), (ssize_t)sizeof(chk));
	assert_memory_equal(chk, fake_ram + 0x200000, sizeof(chk));
	for (uint32_t i = 0; i < 16; i++)
		seq[i] = 0x300 + i;
	r = srb_pfns(ch0, SCSI_READ_16, 64, seq, 16);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	assert_memory_equal(fake_ram + 0x300000, chk, sizeof(chk));
	assert_int_equal(stats().ss_direct_ios, s0.ss_direct_ios + 2);
	assert_true(fake_gpa_maps >= maps0 + 2);

	/* scattered pages: bounce, page by page, same data */
	r = srb_pfns(ch0, SCSI_READ_16, 64, scat, 16);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_SUCCESS);
	for (uint32_t i = 0; i < 16; i++)
		assert_memory_equal(fake_ram + scat[i] * 4096, chk + i * 4096, 4096);
	assert_int_equal(stats().ss_direct_ios, s0.ss_direct_ios + 2);

	/* the last page beyond guest RAM: no direct I/O, a GPA fault */
	ahead[0] = FAKE_RAM_BYTES / 4096 - 1;
	ahead[1] = FAKE_RAM_BYTES / 4096;
	r = srb_pfns(ch0, SCSI_READ_16, 64, ahead, 2);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_ERROR);
	assert_int_equal(stats().ss_direct_ios, s0.ss_direct_ios + 2);
	assert_int_equal(stats().ss_gpa_faults, s0.ss_gpa_faults + 1);
	/* PFN 0 is never guest memory the host may use */
	ahead[0] = 0;
	ahead[1] = 1;
	r = srb_pfns(ch0, SCSI_WRITE_16, 64, ahead, 2);
	assert_int_equal(r->vp_srb.vr_srb_status, SRB_STATUS_ERROR);
	assert_int_equal(stats().ss_direct_ios, s0.ss_direct_ios + 2);
	assert_int_equal(stats().ss_inflight, 0);
}

static void test_close_with_io_in_flight(void **state)
{
	(void)state;
	uint8_t c[16];
	init_ch(ch0, 0x0602);
	struct vstor_packet v;
	memset(&v, 0, sizeof(v));
	v.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_EXECUTE_SRB);
	v.vp_srb.vr_cdb_length = 16;
	v.vp_srb.vr_data_in = VSTOR_DATA_READ;
	v.vp_srb.vr_data_transfer_length = hv_cpu_to_le32(65536);
	rw16(c, SCSI_READ_16, 0, 128);
	memcpy(v.vp_srb.vr_cdb, c, 16);
	for (int i = 0; i < 32; i++)
		push_gpa(ch0, &v, 64, 0x100000 + (uint64_t)i * 65536, 65536);
	signal_ch(ch0);
	/* the guest goes away before anything completes; reads straight
	 * into guest RAM end before vo_close returns (the RAM may be unmapped
	 * right after), the others are orphaned */
	fake_srv.fs_ops->vo_close(fake_srv.fs_arg, ch0, 0);
	fake_chan_free(ch0);
	ch0 = NULL;
	memset(fake_ram + 0x100000, 0xA5, 32 * 65536);
	for (int i = 0; i < 50 && stats().ss_inflight > 0; i++)
		hvs_loop_run_once(loop, 10);
	assert_int_equal(stats().ss_inflight, 0);
	for (uint32_t i = 0; i < 32 * 65536; i++)
		if (fake_ram[0x100000 + i] != 0xA5)
			fail_msg("byte %u written after close", i);
	/* and a new primary starts over */
	ch0 = fake_chan_new(0);
	assert_int_equal(fake_srv.fs_ops->vo_open(fake_srv.fs_arg, ch0), 0);
	init_ch(ch0, 0x0501);
}

/*
 * Regression (host_storvsp fuzzer, hang in sv_close -> cq_wait): a direct
 * read finished at the back end while the guest's ring was full, so its
 * completion waited in the send queue, still counted as direct I/O; at
 * close the host waited for that count to drop before dropping the send
 * queue: forever, 100 ms at a time. The close now returns at once.
 */
static void test_close_with_direct_read_parked(void **state)
{
	(void)state;
	init_ch(ch0, 0x0602);
	uint64_t seq[4] = { 0x200, 0x201, 0x202, 0x203 };
	struct hvs_storvsp_stats s0 = stats();
	ch0->fc_space = 0; /* the guest never reads its ring */
	push_srb_pfns(ch0, SCSI_READ_16, 0, seq, 4);
	signal_ch(ch0);
	for (int i = 0; i < 200 && (stats().ss_send_waits == s0.ss_send_waits ||
				    stats().ss_inflight > 0); i++)
		hvs_loop_run_once(loop, 10);
	assert_int_equal(stats().ss_direct_ios, s0.ss_direct_ios + 1);
	assert_int_equal(stats().ss_send_waits, s0.ss_send_waits + 1);
	assert_int_equal(stats().ss_inflight, 0);
	/* before the fix this never returned: fail instead of hanging */
	alarm(20);
	fake_srv.fs_ops->vo_close(fake_srv.fs_arg, ch0, 0);
	alarm(0);
	fake_chan_free(ch0);
	ch0 = fake_chan_new(0);
	assert_int_equal(fake_srv.fs_ops->vo_open(fake_srv.fs_arg, ch0), 0);
	init_ch(ch0, 0x0602);
}

static void test_control(void **state)
{
	(void)state;
	struct hvs_json_obj req;
	char err[128], buf[4096], spec[160];
	const char *msg = NULL;
	struct hvs_jw w;

	snprintf(spec, sizeof(spec), "{\"cmd\":\"disk_add\",\"spec\":\"ctl,backend=null,"
		 "size=1M,controller=0,lun=9\"}");
	assert_int_equal(hvs_json_parse(spec, strlen(spec), &req, err, sizeof(err)), 0);
	hvs_jw_init(&w, buf, sizeof(buf));
	hvs_jw_obj_begin(&w, NULL);
	assert_int_equal(hvs_storage_control(st, "disk_add", &req, &w, &msg), 0);
	hvs_jw_obj_end(&w);
	assert_non_null(strstr(buf, "\"lun\":9"));
	assert_int_equal(hvs_storage_control(st, "disk_add", &req, &w, &msg), -EEXIST);
	assert_non_null(strstr(msg, "taken"));
	const char *rm = "{\"cmd\":\"disk_remove\",\"controller\":0,\"lun\":9}";
	assert_int_equal(hvs_json_parse(rm, strlen(rm), &req, err, sizeof(err)), 0);
	assert_int_equal(hvs_storage_control(st, "disk_remove", &req, &w, &msg), 0);
	assert_int_equal(hvs_storage_control(st, "disk_remove", &req, &w, &msg), -ENOENT);
	hvs_jw_init(&w, buf, sizeof(buf));
	hvs_jw_obj_begin(&w, NULL);
	assert_int_equal(hvs_storage_control(st, "disks", &req, &w, &msg), 0);
	hvs_jw_obj_end(&w);
	assert_non_null(hvs_jw_result(&w));
	assert_non_null(strstr(buf, "\"backend\":\"threads\""));
	assert_int_equal(hvs_storage_control(st, "stop", &req, &w, &msg), -ENOSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_version_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prewin8_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subchannels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_sense, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_with_direct_read_parked,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_with_io_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
