/*
 * tests/storvsc/test_storvsc.c - unit tests of the guest StorVSC driver:
 * the real guest core on its fake port (tests/guest/fakeport) with a
 * scripted VSTOR host double (vsh.c). Covers version negotiation down to
 * the pre-WIN8 sizes, the init sequence, LUN discovery, I/O matching and
 * splitting, bounce buffers, sense decoding and the StorVSC items of
 * shared/spec/hostile-host.md (17, 18, 6, 22).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fakeport.h"
#include "hv/guid.h"
#include "hv/scsi.h"
#include "vmbus/storvsc.h"
#include "vsh.h"

/* Internal: sense decoding and status mapping, tested directly. */
#include "storvsc_priv.h"

#define MS		1000000ull	/* ns; the fake clock runs 1 us per read */
#define PRIMARY_RELID	10

struct env {
	struct fakeport fp;
	struct vsh h;
	struct vmbus *vb;
	struct storvsc *sv;
	struct vmbus_config vcfg;
	struct storvsc_config cfg;
	int events[4];
	struct storvsc_disk *last_event_disk;
};

static void on_event(void *arg, struct storvsc_disk *d, int ev)
{
	struct env *e = arg;

	if (ev >= 1 && ev <= 3)
		e->events[ev]++;
	e->last_event_disk = d;
}

static struct env *env_new(uint32_t nvcpu, const struct hv_guid *cls,
    const struct hv_guid *inst)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	fp_init(&e->fp, nvcpu);
	vsh_init(&e->h, &e->fp, PRIMARY_RELID, cls ? cls : &HV_GUID_STORVSC,
	    inst ? inst : &fh_guid_inst[0]);
	e->vcfg.vc_timeout_ns = 50 * MS;
	e->cfg.sc_init_timeout_ns = 50 * MS;
	e->cfg.sc_io_timeout_ns = 200 * MS;
	e->cfg.sc_disk_event = on_event;
	e->cfg.sc_event_arg = e;
	return e;
}

static void env_start(struct env *e)
{
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->vcfg, &e->vb), 0);
	assert_int_equal(storvsc_create(e->vb, &e->cfg, &e->sv), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
}

static void env_free(struct env *e)
{
	vmbus_destroy(e->vb);
	assert_int_equal(storvsc_destroy(e->sv), 0);
	vsh_fini(&e->h);
	/* Every page went back to the port: nothing leaked. */
	assert_int_equal(fp_fini(&e->fp), 0);
	free(e);
}

/* A started env with one 1 MiB disk (512-byte blocks) at 0:0:0. */
static struct env *env_disk(uint32_t nvcpu)
{
	struct env *e = env_new(nvcpu, NULL, NULL);

	vsh_add_lun(&e->h, 0, 0, 0, 512, 2048);
	env_start(e);
	assert_int_equal(storvsc_disk_count(e->sv), 1);
	return e;
}

static void poll_until(struct env *e, const int *counter, int want)
{
	for (int i = 0; i < 2000000 && *counter < want; i++) {
		e->fp.fp_now += 1000;	/* let virtual time pass */
		vmbus_poll(e->vb);
		if (i % 64 == 0)
			storvsc_tick(e->sv);
	}
	assert_int_equal(*counter, want);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 9)) ^ seed);
}

struct aio {
	struct env *e;
	int done;
	int errors;
	int bad_data;
};

struct aio_req {
	struct storvsc_io io;
	struct aio *a;
	uint8_t *buf;
	uint64_t lba;
};

static void aio_done(struct storvsc_io *io)
{
	struct aio_req *r = io->io_arg;
	struct aio *a = r->a;

	if (io->io_error != 0)
		a->errors++;
	else if (memcmp(r->buf, a->e->h.luns[0].l_data + r->lba * 512,
	    4096) != 0)
		a->bad_data++;
	a->done++;
}

/* ---- negotiation and initialisation ---- */

static const uint16_t versions[] = {
	VMSTOR_PROTO_VERSION_WIN10, VMSTOR_PROTO_VERSION_WIN8_1,
	VMSTOR_PROTO_VERSION_WIN8, VMSTOR_PROTO_VERSION_WIN7,
	VMSTOR_PROTO_VERSION_WIN6,
};

static void test_negotiate_each_version(void **state)
{
	(void)state;
	for (unsigned vi = 0; vi < 5; vi++) {
		struct env *e = env_new(1, NULL, NULL);
		struct storvsc_ctrl_info ci;
		struct storvsc_disk *d;
		uint8_t buf[4096], back[4096];

		memset(e->h.accept, 0, sizeof(e->h.accept));
		e->h.accept[0] = versions[vi];
		vsh_add_lun(&e->h, 0, 0, 0, 512, 256);
		env_start(e);
		/* Newest first, one query per version down to the accepted. */
		assert_int_equal(e->h.nqueried, vi + 1);
		for (unsigned i = 0; i <= vi; i++)
			assert_int_equal(e->h.queried[i], versions[i]);
		assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), 0);
		assert_int_equal(ci.ci_version, versions[vi]);
		assert_int_equal(ci.ci_packet_size, vi < 3 ? 64 : 48);
		assert_int_equal(ci.ci_sense_size, vi < 3 ? 20 : 18);
		/* Before negotiation every packet was 48 bytes. */
		assert_int_equal(e->h.pre_neg_sizes_bad, 0);
		d = storvsc_disk_get(e->sv, 0);
		assert_non_null(d);
		fill(buf, sizeof(buf), vi);
		assert_int_equal(storvsc_write_sync(d, 3, 8, buf), 0);
		assert_int_equal(storvsc_read_sync(d, 3, 8, back), 0);
		assert_memory_equal(buf, back, sizeof(buf));
		/* Every SRB had the version's packet size, SRB length and
		 * sense buffer size. */
		assert_true(e->h.srbs > 0);
		assert_int_equal(e->h.srb_size_bad, 0);
		assert_int_equal(e->h.srb_sense_bad, 0);
		assert_int_equal(e->h.range_bad, 0);
		storvsc_disk_put(d);
		env_free(e);
	}
}

static void test_negotiate_none(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_ctrl_info ci;

	(void)state;
	memset(e->h.accept, 0, sizeof(e->h.accept));
	vsh_add_lun(&e->h, 0, 0, 0, 512, 256);
	env_start(e);
	assert_int_equal(e->h.nqueried, 5);
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), -VMBUS_ENOENT);
	assert_int_equal(storvsc_disk_count(e->sv), 0);
	env_free(e);
}

static void test_negotiate_bounded_range(void **state)
{
	struct env *e = env_new(1, NULL, NULL);

	(void)state;
	e->cfg.sc_max_version = VMSTOR_PROTO_VERSION_WIN8;
	e->cfg.sc_min_version = VMSTOR_PROTO_VERSION_WIN7;
	memset(e->h.accept, 0, sizeof(e->h.accept));
	e->h.accept[0] = VMSTOR_PROTO_VERSION_WIN6;	/* below our minimum */
	env_start(e);
	assert_int_equal(e->h.nqueried, 2);
	assert_int_equal(e->h.queried[0], VMSTOR_PROTO_VERSION_WIN8);
	assert_int_equal(e->h.queried[1], VMSTOR_PROTO_VERSION_WIN7);
	assert_int_equal(storvsc_disk_count(e->sv), 0);
	env_free(e);
}

static void test_negotiate_wrong_echo(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_ctrl_info ci;

	(void)state;
	/* "Accepted", but for a version we did not ask (hostile-host 9). */
	e->h.echo_override = 0x0700;
	env_start(e);
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), -VMBUS_ENOENT);
	env_free(e);
}

static void test_init_sequence(void **state)
{
	struct env *e = env_new(4, NULL, NULL);
	struct storvsc_ctrl_info ci;

	(void)state;
	e->h.accept[0] = VMSTOR_PROTO_VERSION_WIN8_1;
	e->h.accept[1] = 0;
	e->h.max_sub = 2;
	e->h.prop_flags = VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL;
	env_start(e);
	/* BEGIN, 6.2 (refused), 6.0, PROPERTIES, END, CREATE_SUB_CHANNELS */
	assert_int_equal(e->h.nops, 6);
	assert_int_equal(e->h.ops[0], VSTOR_OPERATION_BEGIN_INITIALIZATION);
	assert_int_equal(e->h.ops[1], VSTOR_OPERATION_QUERY_PROTOCOL_VERSION);
	assert_int_equal(e->h.ops[2], VSTOR_OPERATION_QUERY_PROTOCOL_VERSION);
	assert_int_equal(e->h.ops[3], VSTOR_OPERATION_QUERY_PROPERTIES);
	assert_int_equal(e->h.ops[4], VSTOR_OPERATION_END_INITIALIZATION);
	assert_int_equal(e->h.ops[5], VSTOR_OPERATION_CREATE_SUB_CHANNELS);
	/* min(CPUs - 1, max_channel_cnt) */
	assert_int_equal(e->h.subs_requested, 2);
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), 0);
	assert_int_equal(ci.ci_queues, 3);
	assert_true(ci.ci_multichannel);
	env_free(e);
}

static void test_init_step_failure(void **state)
{
	static const uint32_t ops[] = {
		VSTOR_OPERATION_BEGIN_INITIALIZATION,
		VSTOR_OPERATION_QUERY_PROPERTIES,
		VSTOR_OPERATION_END_INITIALIZATION,
	};

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		struct env *e = env_new(1, NULL, NULL);

		e->h.init_fail_op = ops[i];
		vsh_add_lun(&e->h, 0, 0, 0, 512, 256);
		env_start(e);
		assert_int_equal(storvsc_disk_count(e->sv), 0);
		env_free(e);
	}
}

static void test_init_no_answer(void **state)
{
	static const uint32_t ops[] = {
		VSTOR_OPERATION_BEGIN_INITIALIZATION,
		VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
		VSTOR_OPERATION_END_INITIALIZATION,
		VSTOR_OPERATION_CREATE_SUB_CHANNELS,
	};

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		struct env *e = env_new(2, NULL, NULL);
		uint64_t t0 = e->fp.fp_now;

		/* Every wait is bounded: attach fails (or, for the optional
		 * subchannels, goes on with one queue) after the timeout. */
		e->h.init_drop_op = ops[i];
		e->h.max_sub = 1;
		e->h.prop_flags = VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL;
		vsh_add_lun(&e->h, 0, 0, 0, 512, 256);
		env_start(e);
		assert_int_equal(storvsc_disk_count(e->sv), i == 3 ? 1 : 0);
		assert_true(e->fp.fp_now - t0 < 5000 * MS);
		env_free(e);
	}
}

static void test_no_multichannel_prewin8(void **state)
{
	struct env *e = env_new(4, NULL, NULL);
	struct storvsc_ctrl_info ci;

	(void)state;
	/* 4.2 never does multi-channel, whatever the host claims. */
	e->h.accept[0] = VMSTOR_PROTO_VERSION_WIN7;
	e->h.accept[1] = 0;
	e->h.max_sub = 3;
	e->h.prop_flags = VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL;
	env_start(e);
	assert_int_equal(e->h.subs_requested, 0);
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), 0);
	assert_int_equal(ci.ci_queues, 1);
	env_free(e);
}

static void test_properties_clamped(void **state)
{
	struct env *e = env_new(2, NULL, NULL);
	struct storvsc_ctrl_info ci;
	struct storvsc_stats st;

	(void)state;
	/* hostile-host 18: max_transfer 0, absurd subchannel count, and
	 * more subchannels offered than asked. */
	e->h.max_xfer = 0;
	e->h.max_sub = 5000;
	e->h.prop_flags = VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL;
	e->h.offer_subs = 4;
	env_start(e);
	assert_int_equal(e->h.subs_requested, 1);	/* CPUs - 1 */
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), 0);
	assert_int_equal(ci.ci_queues, 2);
	assert_true(ci.ci_max_transfer > 0);
	assert_true(ci.ci_max_transfer <= 1024 * 1024);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_true(st.st_clamped >= 1);
	env_free(e);

	e = env_new(1, NULL, NULL);
	e->h.max_xfer = 0xFFFFFFFFu;
	env_start(e);
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), 0);
	assert_int_equal(ci.ci_max_transfer, 1024 * 1024);
	env_free(e);
}

/* ---- discovery ---- */

static void test_discovery(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_disk_info di;
	struct storvsc_disk *d;
	struct vsh_lun *l;
	uint8_t vpd[256];
	uint32_t len = sizeof(vpd);

	(void)state;
	vsh_add_lun(&e->h, 0, 0, 0, 512, 4096);
	l = vsh_add_lun(&e->h, 0, 0, 3, 4096, 100);
	l->l_wp = true;
	l->l_lbpu = false;
	l->l_thin = false;
	l->l_vpd_max_xfer = 16;
	l = vsh_add_lun(&e->h, 0, 1, 1, 512, 64);
	l->l_no_rc16 = true;
	env_start(e);
	assert_int_equal(storvsc_disk_count(e->sv), 3);
	assert_int_equal(e->events[STORVSC_DISK_ADDED], 3);

	d = storvsc_disk_get(e->sv, 0);
	assert_int_equal(storvsc_disk_info(d, &di), 0);
	assert_int_equal(di.di_lun, 0);
	assert_int_equal(di.di_blocks, 4096);
	assert_int_equal(di.di_block_size, 512);
	assert_true(di.di_capacity16);
	assert_true(di.di_thin);
	assert_true(di.di_lbpu);
	assert_true(di.di_discard);
	assert_false(di.di_write_protected);
	assert_string_equal(di.di_vendor, "Msft");
	assert_string_equal(di.di_product, "Virtual Disk");
	assert_string_equal(di.di_revision, "1.0");
	assert_string_equal(di.di_serial, "VSH-0-0");
	assert_int_equal(di.di_vpd_count, 6);
	assert_int_equal(di.di_devid_type, 3);	/* NAA beats T10 */
	assert_int_equal(di.di_devid_len, 8);
	assert_int_equal(di.di_devid[0], 0x60);
	assert_int_equal(di.di_rotation_rate, 1);
	assert_int_equal(di.di_max_unmap_blocks, 0x10000);
	assert_int_equal(di.di_max_unmap_descriptors, 16);
	assert_int_equal(storvsc_disk_vpd(d, 0x83, vpd, &len), 0);
	assert_int_equal(len, 28);
	assert_int_equal(vpd[1], 0x83);
	storvsc_disk_put(d);

	d = storvsc_disk_get(e->sv, 1);
	assert_int_equal(storvsc_disk_info(d, &di), 0);
	assert_int_equal(di.di_lun, 3);
	assert_int_equal(di.di_block_size, 4096);
	assert_true(di.di_write_protected);
	assert_false(di.di_discard);
	assert_int_equal(di.di_max_transfer, 16 * 4096);
	storvsc_disk_put(d);

	/* READ CAPACITY(16) refused: READ CAPACITY(10) */
	d = storvsc_disk_get(e->sv, 2);
	assert_int_equal(storvsc_disk_info(d, &di), 0);
	assert_int_equal(di.di_target, 1);
	assert_int_equal(di.di_lun, 1);
	assert_false(di.di_capacity16);
	assert_int_equal(di.di_blocks, 64);
	storvsc_disk_put(d);
	assert_null(storvsc_disk_get(e->sv, 3));
	env_free(e);
}

static void test_ide(void **state)
{
	struct hv_guid inst = fh_guid_inst[1];
	struct storvsc_disk_info di;
	struct storvsc_disk *d;
	struct env *e;

	(void)state;
	/* Instance Data2 (bytes 4-5) names the target (spec 5.2). */
	inst.g_bytes[4] = 1;
	inst.g_bytes[5] = 0;
	e = env_new(1, &HV_GUID_IDE, &inst);
	vsh_add_lun(&e->h, 0, 1, 0, 512, 128);
	vsh_add_lun(&e->h, 0, 0, 0, 512, 128);	/* not this controller's */
	env_start(e);
	assert_int_equal(storvsc_disk_count(e->sv), 1);
	d = storvsc_disk_get(e->sv, 0);
	assert_int_equal(storvsc_disk_info(d, &di), 0);
	assert_true(di.di_ide);
	assert_int_equal(di.di_target, 1);
	assert_int_equal(e->h.srb_opcodes[SCSI_REPORT_LUNS], 0);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_rescan_add_remove(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_stats st;
	struct vsh_lun *l;

	(void)state;
	l = vsh_add_lun(&e->h, 0, 0, 5, 512, 64);
	assert_int_equal(vsh_unsolicited(&e->h, VSTOR_OPERATION_ENUMERATE_BUS,
	    VSTOR_PACKET_SIZE), 0);
	for (int i = 0; i < 1000 && storvsc_disk_count(e->sv) != 2; i++) {
		vmbus_poll(e->vb);
		storvsc_tick(e->sv);
	}
	assert_int_equal(storvsc_disk_count(e->sv), 2);
	assert_int_equal(e->events[STORVSC_DISK_ADDED], 2);

	vsh_remove_lun(&e->h, l);
	assert_int_equal(vsh_unsolicited(&e->h, VSTOR_OPERATION_REMOVE_DEVICE,
	    VSTOR_PACKET_SIZE), 0);
	for (int i = 0; i < 1000 && storvsc_disk_count(e->sv) != 1; i++) {
		vmbus_poll(e->vb);
		storvsc_tick(e->sv);
	}
	assert_int_equal(storvsc_disk_count(e->sv), 1);
	assert_int_equal(e->events[STORVSC_DISK_REMOVED], 1);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_unsolicited, 2);
	assert_true(st.st_rescans >= 2);
	env_free(e);
}

static void test_rescind_during_io(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct aio a = { .e = e };
	struct aio_req rq[8];
	uint8_t buf[8][4096];

	(void)state;
	/* hostile-host 21: requests outstanding when the controller goes:
	 * each completes once, -ENODEV; the disk is reported removed. */
	e->h.hold = true;
	for (int i = 0; i < 8; i++) {
		memset(&rq[i], 0, sizeof(rq[i]));
		rq[i].a = &a;
		rq[i].buf = buf[i];
		assert_int_equal(storvsc_read(d, &rq[i].io, (uint64_t)i * 8, 8,
		    buf[i], aio_done, &rq[i]), 0);
	}
	fh_rescind(&e->fp, e->h.chans[0]);
	poll_until(e, &a.done, 8);
	assert_int_equal(a.errors, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(rq[i].io.io_error, -VMBUS_ENODEV);
	for (int i = 0; i < 100; i++)
		vmbus_poll(e->vb);
	assert_int_equal(storvsc_disk_count(e->sv), 0);
	assert_int_equal(e->events[STORVSC_DISK_REMOVED], 1);
	assert_int_equal(storvsc_read_sync(d, 0, 1, buf[0]), -VMBUS_ENODEV);
	e->h.hold = false;
	e->h.nheld = 0;
	storvsc_disk_put(d);
	env_free(e);
}

/*
 * A rescind the scan's own wait runs (polled port): the detach used to run
 * there and wait for the scan up its stack until sc_init_timeout; now it
 * runs when the scan returns (vmbus_device_enter/exit), at once.
 */
static void test_rescind_during_scan(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_stats st;
	uint64_t t0;
	int r;

	(void)state;
	e->fp.fp_quiet = true;
	e->h.rescind_armed = true;
	e->h.rescind_opcode = SCSI_REPORT_LUNS;
	t0 = e->fp.fp_now;
	r = storvsc_rescan(e->sv);
	assert_int_equal(e->h.rescinds, 1);
	assert_true(r == 0 || r == -VMBUS_ENODEV);
	/* No wait ran to its deadline. */
	assert_true(e->fp.fp_now - t0 < e->cfg.sc_init_timeout_ns);
	assert_int_equal(storvsc_disk_count(e->sv), 0);
	assert_int_equal(e->events[STORVSC_DISK_REMOVED], 1);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	for (int i = 0; i < 100; i++)
		vmbus_poll(e->vb);
	assert_int_equal(e->events[STORVSC_DISK_REMOVED], 1);
	env_free(e);
}

static void test_rescind_subchannel(void **state)
{
	struct env *e = env_new(3, NULL, NULL);
	struct storvsc_ctrl_info ci;
	struct storvsc_disk *d;
	uint8_t buf[4096];

	(void)state;
	e->h.max_sub = 2;
	e->h.prop_flags = VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL;
	vsh_add_lun(&e->h, 0, 0, 0, 512, 256);
	env_start(e);
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), 0);
	assert_int_equal(ci.ci_queues, 3);
	d = storvsc_disk_get(e->sv, 0);
	/* One queue's channel goes; the others carry on. */
	fh_rescind(&e->fp, e->h.chans[2]);
	for (int i = 0; i < 100; i++)
		vmbus_poll(e->vb);
	storvsc_tick(e->sv);
	assert_int_equal(storvsc_ctrl_info(e->sv, 0, &ci), 0);
	assert_int_equal(ci.ci_queues, 2);
	for (uint32_t vp = 0; vp < 3; vp++) {
		e->h.cur_vp = vp;
		assert_int_equal(storvsc_write_sync(d, vp, 8, buf), 0);
		assert_int_equal(storvsc_read_sync(d, vp, 8, buf), 0);
	}
	storvsc_disk_put(d);
	env_free(e);
}

static void test_teardown_failure_leaks_counted(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_stats st;
	struct vmbus_stats bs;
	uint64_t live;

	(void)state;
	/* hostile-host 25: the host never confirms the GPADL teardown:
	 * rings and bounce pools stay the host's, leaked and counted. */
	e->fp.fp_host.h_teardown_noreply = true;
	assert_int_equal(vmbus_unload(e->vb), -VMBUS_EISCONN);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	vmbus_get_stats(e->vb, &bs);
	assert_int_equal(st.st_leaked_pages, 64);	/* one queue's pool */
	vmbus_destroy(e->vb);
	assert_int_equal(storvsc_destroy(e->sv), 0);
	vsh_fini(&e->h);
	live = fp_fini(&e->fp);
	assert_int_equal(live, bs.bs_leaked_pages + st.st_leaked_pages);
	free(e);
}

/* Regression (crashes/guest_storvsc/attach-failure-leak-uncounted): VSTOR
 * init fails and so does the teardown; the controller was never linked,
 * yet its kept bounce pool must still be counted. */
static void test_attach_failure_leak_counted(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_stats st;
	struct vmbus_stats bs;
	uint64_t live;

	(void)state;
	e->h.init_fail_op = VSTOR_OPERATION_BEGIN_INITIALIZATION;
	e->fp.fp_host.h_teardown_noreply = true;
	vsh_add_lun(&e->h, 0, 0, 0, 512, 256);
	env_start(e);
	assert_int_equal(storvsc_disk_count(e->sv), 0);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	vmbus_get_stats(e->vb, &bs);
	assert_int_equal(st.st_leaked_pages, 64);	/* the queue's pool */
	vmbus_destroy(e->vb);
	assert_int_equal(storvsc_destroy(e->sv), 0);
	vsh_fini(&e->h);
	live = fp_fini(&e->fp);
	assert_int_equal(live, bs.bs_leaked_pages + st.st_leaked_pages);
	free(e);
}

/* A port that cannot take pages back (a confidential VM's page that
 * stays shared): page_free refuses, the pages stay allocated. */
static int refuse_page_free(void *ctx, void *va, size_t npages)
{
	(void)ctx;
	(void)va;
	(void)npages;
	return -VMBUS_EISCONN;
}

/* Regression (alloc_sweep page_free@connect, page_free@unload): pages the
 * port refused to take back, from storvsc_buf_free and from a queue's
 * bounce pool, were dropped without a count (live pages > counted). */
static void test_page_free_refused_counted(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_stats st;
	struct vmbus_stats bs;
	uint8_t *buf;
	uint64_t live;

	(void)state;
	buf = storvsc_buf_alloc(e->sv, 8192);
	assert_non_null(buf);
	e->fp.fp_plat.page_free = refuse_page_free;
	storvsc_buf_free(e->sv, buf, 8192);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_leaked_pages, 2);
	/* The unload frees the bounce pool (and the rings, the bus's). */
	(void)vmbus_unload(e->vb);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	vmbus_get_stats(e->vb, &bs);
	assert_int_equal(st.st_leaked_pages, 2 + 64);
	vmbus_destroy(e->vb);
	assert_int_equal(storvsc_destroy(e->sv), 0);
	vsh_fini(&e->h);
	live = fp_fini(&e->fp);
	assert_int_equal(live, bs.bs_leaked_pages + st.st_leaked_pages);
	free(e);
}

static void test_removed_disk_io(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	uint8_t buf[512];

	(void)state;
	vsh_remove_lun(&e->h, &e->h.luns[0]);
	/* The host says INVALID_LUN: -ENODEV, and a rescan drops it. */
	assert_int_equal(storvsc_read_sync(d, 0, 1, buf), -VMBUS_ENODEV);
	for (int i = 0; i < 1000 && storvsc_disk_count(e->sv) != 0; i++) {
		vmbus_poll(e->vb);
		storvsc_tick(e->sv);
	}
	assert_int_equal(storvsc_disk_count(e->sv), 0);
	assert_int_equal(e->events[STORVSC_DISK_REMOVED], 1);
	assert_int_equal(storvsc_read_sync(d, 0, 1, buf), -VMBUS_ENODEV);
	storvsc_disk_put(d);
	env_free(e);
}

/* ---- I/O ---- */

static void test_io_direct_and_bounce(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_stats st0, st1;
	uint8_t *dma = storvsc_buf_alloc(e->sv, 65536);
	uint8_t *heap = malloc(65536 + 1);

	(void)state;
	assert_non_null(dma);
	/* Port-described memory goes direct. */
	fill(dma, 65536, 1);
	assert_int_equal(storvsc_get_stats(e->sv, &st0), 0);
	assert_int_equal(storvsc_write_sync(d, 10, 128, dma), 0);
	assert_int_equal(storvsc_get_stats(e->sv, &st1), 0);
	assert_int_equal(st1.st_bounced, st0.st_bounced);
	assert_memory_equal(e->h.luns[0].l_data + 10 * 512, dma, 65536);
	/* Heap memory (not describable), unaligned: bounced. */
	assert_int_equal(storvsc_read_sync(d, 10, 128, heap + 1), 0);
	assert_memory_equal(heap + 1, dma, 65536);
	assert_int_equal(storvsc_get_stats(e->sv, &st0), 0);
	assert_true(st0.st_bounced > st1.st_bounced);
	/* An unaligned direct buffer spans one page more. */
	fill(dma, 65536, 2);
	assert_int_equal(storvsc_write_sync(d, 0, 100, dma + 100 * 0 + 512), 0);
	assert_memory_equal(e->h.luns[0].l_data, dma + 512, 100 * 512);
	assert_int_equal(e->h.range_bad, 0);
	storvsc_buf_free(e->sv, dma, 65536);
	free(heap);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_large_transfer_split(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_disk *d;
	struct storvsc_stats st;
	uint8_t *dma, *heap;
	size_t n = 1536 * 1024 + 3 * 512;

	(void)state;
	e->h.max_xfer = 64 * 1024 + 100;	/* rounds down to 64 KiB */
	vsh_add_lun(&e->h, 0, 0, 0, 512, 8192);
	env_start(e);
	d = storvsc_disk_get(e->sv, 0);
	dma = storvsc_buf_alloc(e->sv, n);
	heap = malloc(n);
	fill(dma, n, 3);
	assert_int_equal(storvsc_write_sync(d, 7, (uint32_t)(n / 512), dma), 0);
	assert_true(e->h.max_req_xfer <= 64 * 1024);
	assert_int_equal(e->h.srb_opcodes[SCSI_WRITE_10], (n + 65535) / 65536);
	assert_memory_equal(e->h.luns[0].l_data + 7 * 512, dma, n);
	assert_int_equal(storvsc_read_sync(d, 7, (uint32_t)(n / 512), heap), 0);
	assert_memory_equal(heap, dma, n);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_true(st.st_splits >= 2 * (n / 65536));
	assert_int_equal(e->h.range_bad, 0);
	storvsc_buf_free(e->sv, dma, n);
	free(heap);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_queue_depth_and_matching(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_disk *d;
	struct storvsc_stats st;
	struct aio a = { .e = e };
	enum { N = 300 };
	struct aio_req *rq = calloc(N, sizeof(*rq));
	uint8_t *bufs;

	(void)state;
	e->cfg.sc_queue_depth = 64;
	vsh_add_lun(&e->h, 0, 0, 0, 512, N * 8 + 8);
	fill(e->h.luns[0].l_data, (N * 8 + 8) * 512, 9);
	env_start(e);
	d = storvsc_disk_get(e->sv, 0);
	bufs = storvsc_buf_alloc(e->sv, N * 4096);
	e->h.hold = true;
	for (int i = 0; i < N; i++) {
		rq[i].a = &a;
		rq[i].buf = bufs + i * 4096;
		rq[i].lba = (uint64_t)(N - 1 - i) * 8;
		assert_int_equal(storvsc_read(d, &rq[i].io, rq[i].lba, 8,
		    rq[i].buf, aio_done, &rq[i]), 0);
	}
	/* Only the queue depth reaches the host; the rest waits. */
	for (int i = 0; i < 100; i++)
		vmbus_poll(e->vb);
	assert_int_equal(e->h.max_outstanding, 64);
	assert_int_equal(a.done, 0);
	/* Completions in reverse order still find their requests. */
	for (int round = 0; a.done < N && round < 100; round++) {
		vsh_release(&e->h, true);
		for (int i = 0; i < 200; i++)
			vmbus_poll(e->vb);
	}
	assert_int_equal(a.done, N);
	assert_int_equal(a.errors, 0);
	assert_int_equal(a.bad_data, 0);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_true(st.st_queue_waits > 0);
	assert_int_equal(st.st_bad_ids, 0);
	e->h.hold = false;
	storvsc_buf_free(e->sv, bufs, N * 4096);
	free(rq);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_multichannel_spread(void **state)
{
	struct env *e = env_new(4, NULL, NULL);
	struct storvsc_disk *d;
	uint8_t buf[4096];

	(void)state;
	e->h.max_sub = 8;
	e->h.prop_flags = VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL;
	vsh_add_lun(&e->h, 0, 0, 0, 512, 256);
	env_start(e);
	assert_int_equal(e->h.nchans, 4);
	d = storvsc_disk_get(e->sv, 0);
	/* Each vCPU submits on its own queue. */
	for (uint32_t vp = 0; vp < 4; vp++) {
		e->h.cur_vp = vp;
		fill(buf, sizeof(buf), vp);
		assert_int_equal(storvsc_write_sync(d, vp * 8, 8, buf), 0);
	}
	for (uint32_t ci = 1; ci < 4; ci++)
		assert_true(e->h.chan_srbs[ci] >= 1);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_flush_discard(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	uint8_t buf[512];

	(void)state;
	memset(e->h.luns[0].l_data, 0xAB, 2048 * 512);
	assert_int_equal(storvsc_flush_sync(d), 0);
	assert_int_equal(e->h.syncs, 1);
	/* 0x10000 blocks per descriptor, 16 per UNMAP: one command here. */
	assert_int_equal(storvsc_discard_sync(d, 100, 1000), 0);
	assert_int_equal(e->h.unmap_blocks_total, 1000);
	assert_int_equal(e->h.luns[0].l_data[100 * 512], 0);
	assert_int_equal(e->h.luns[0].l_data[1100 * 512 - 1], 0);
	assert_int_equal(e->h.luns[0].l_data[1100 * 512], 0xAB);
	assert_int_equal(storvsc_discard_sync(d, 2000, 49), -VMBUS_ERANGE);
	assert_int_equal(storvsc_read_sync(d, 2047, 2, buf), -VMBUS_ERANGE);
	assert_int_equal(e->h.range_bad, 0);
	storvsc_disk_put(d);
	env_free(e);

	/* Limits: descriptors split and several UNMAPs. */
	e = env_new(1, NULL, NULL);
	struct vsh_lun *l = vsh_add_lun(&e->h, 0, 0, 0, 512, 100000);
	l->l_max_unmap = 1000;
	l->l_max_unmap_desc = 4;
	env_start(e);
	d = storvsc_disk_get(e->sv, 0);
	assert_int_equal(storvsc_discard_sync(d, 5, 9500), 0);
	assert_int_equal(e->h.unmap_blocks_total, 9500);
	assert_int_equal(e->h.unmap_desc_total, 10);
	assert_int_equal(e->h.srb_opcodes[SCSI_UNMAP], 3);
	assert_int_equal(e->h.range_bad, 0);
	storvsc_disk_put(d);
	env_free(e);

	/* No UNMAP support: refused locally. */
	e = env_new(1, NULL, NULL);
	l = vsh_add_lun(&e->h, 0, 0, 0, 512, 100);
	l->l_lbpu = false;
	l->l_thin = false;
	env_start(e);
	d = storvsc_disk_get(e->sv, 0);
	assert_int_equal(storvsc_discard_sync(d, 0, 1), -VMBUS_EOPNOTSUPP);
	assert_int_equal(e->h.srb_opcodes[SCSI_UNMAP], 0);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_bad_requests(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_io io;
	uint8_t buf[512];

	(void)state;
	memset(&io, 0, sizeof(io));
	assert_int_equal(storvsc_submit(d, &io), -VMBUS_EINVAL);	/* no done */
	assert_int_equal(storvsc_read_sync(d, 0, 0, buf), -VMBUS_EINVAL);
	assert_int_equal(storvsc_read_sync(d, 0, 1, NULL), -VMBUS_EINVAL);
	assert_int_equal(storvsc_read_sync(d, 2048, 1, buf), -VMBUS_ERANGE);
	assert_int_equal(storvsc_read_sync(d, UINT64_MAX, 2, buf),
	    -VMBUS_ERANGE);
	memset(&io, 0, sizeof(io));
	io.io_op = STORVSC_OP_SCSI;
	io.io_cdb_len = 17;
	assert_int_equal(storvsc_io_sync(d, &io), -VMBUS_EINVAL);
	io.io_op = 99;
	assert_int_equal(storvsc_io_sync(d, &io), -VMBUS_EINVAL);
	/* A SCSI pass-through: TEST UNIT READY, and an unknown opcode. */
	memset(&io, 0, sizeof(io));
	io.io_op = STORVSC_OP_SCSI;
	io.io_cdb_len = 6;
	assert_int_equal(storvsc_io_sync(d, &io), 0);
	io.io_cdb[0] = 0xC7;
	assert_int_equal(storvsc_io_sync(d, &io), -VMBUS_EOPNOTSUPP);
	assert_int_equal(io.io_status.sr_sense_key, SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(io.io_status.sr_asc, SCSI_ASC_INVALID_OPCODE);
	storvsc_disk_put(d);
	env_free(e);
}

/* ---- sense decoding and status mapping ---- */

struct sense_case {
	uint8_t key, asc, ascq;
	int err;
};

static void test_sense_mapping(void **state)
{
	static const struct sense_case cases[] = {
		{ SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, 0,
		  -VMBUS_ERANGE },
		{ SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE, 0,
		  -VMBUS_EOPNOTSUPP },
		{ SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED, 0,
		  -VMBUS_EPERM },
		{ SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR, 0,
		  -VMBUS_EIO },
		{ SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOCATION_FAILED,
		  SCSI_ASCQ_SPACE_ALLOCATION_FAILED, -VMBUS_ENOSPC },
		{ SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE, 0,
		  -VMBUS_EIO },
		{ SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT, 0,
		  -VMBUS_ENODEV },
	};
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	uint8_t buf[4096];

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct storvsc_io io;

		e->h.inj = (struct vsh_inject){ .inj_count = 1,
		    .inj_opcode = 0xFF, .inj_srb = SRB_STATUS_ERROR,
		    .inj_scsi = SCSI_STATUS_CHECK_CONDITION, .inj_sense = true,
		    .inj_key = cases[i].key, .inj_asc = cases[i].asc,
		    .inj_ascq = cases[i].ascq };
		memset(&io, 0, sizeof(io));
		io.io_op = STORVSC_OP_WRITE;
		io.io_lba = 4;
		io.io_nblocks = 8;
		io.io_buf = buf;
		assert_int_equal(storvsc_io_sync(d, &io), cases[i].err);
		assert_int_equal(io.io_error, cases[i].err);
		assert_true(io.io_status.sr_sense_valid);
		assert_int_equal(io.io_status.sr_sense_key, cases[i].key);
		assert_int_equal(io.io_status.sr_asc, cases[i].asc);
		assert_int_equal(io.io_status.sr_ascq, cases[i].ascq);
		assert_int_equal(io.io_status.sr_scsi_status,
		    SCSI_STATUS_CHECK_CONDITION);
		assert_true(io.io_status.sr_srb_status &
		    SRB_STATUS_AUTOSENSE_VALID);
		assert_int_equal(io.io_bytes, 0);
	}
	/* The real target's own sense: LBA out of range, write protect. */
	assert_int_equal(storvsc_read_sync(d, 2040, 16, buf), -VMBUS_ERANGE);
	e->h.luns[0].l_wp = true;
	assert_int_equal(storvsc_write_sync(d, 0, 1, buf), -VMBUS_EPERM);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_unit_attention_retried(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_stats st;
	uint8_t buf[512];

	(void)state;
	e->h.inj = (struct vsh_inject){ .inj_count = 2, .inj_opcode = 0xFF,
	    .inj_srb = SRB_STATUS_ERROR, .inj_scsi = SCSI_STATUS_CHECK_CONDITION,
	    .inj_sense = true, .inj_key = SCSI_SENSE_UNIT_ATTENTION,
	    .inj_asc = SCSI_ASC_POWER_ON_RESET };
	assert_int_equal(storvsc_read_sync(d, 0, 1, buf), 0);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_retries, 2);
	/* Busy forever: retries run out, -EBUSY. */
	e->h.inj = (struct vsh_inject){ .inj_count = 100, .inj_opcode = 0xFF,
	    .inj_srb = SRB_STATUS_BUSY };
	assert_int_equal(storvsc_read_sync(d, 0, 1, buf), -VMBUS_EBUSY);
	e->h.inj.inj_count = 0;
	storvsc_disk_put(d);
	env_free(e);
}

static void test_sense_decode_formats(void **state)
{
	struct storvsc_scsi_result r;
	bool retry, rescan;

	(void)state;
	/* Fixed format with a valid INFORMATION field. */
	memset(&r, 0, sizeof(r));
	r.sr_sense[0] = 0xF0;
	r.sr_sense[2] = SCSI_SENSE_MEDIUM_ERROR;
	hv_put_be32(&r.sr_sense[3], 0x12345678);
	r.sr_sense[7] = 10;
	r.sr_sense[12] = SCSI_ASC_UNRECOVERED_READ_ERROR;
	r.sr_sense_len = 18;
	storvsc_sense_decode(&r);
	assert_true(r.sr_sense_valid);
	assert_int_equal(r.sr_sense_key, SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(r.sr_asc, SCSI_ASC_UNRECOVERED_READ_ERROR);
	assert_true(r.sr_info_valid);
	assert_int_equal(r.sr_info, 0x12345678);
	/* Truncated fixed sense: the key only; ASC/ASCQ not invented. */
	r.sr_sense_len = 8;
	storvsc_sense_decode(&r);
	assert_true(r.sr_sense_valid);
	assert_int_equal(r.sr_sense_key, SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(r.sr_asc, 0);
	/* Descriptor format with an information descriptor. */
	memset(&r, 0, sizeof(r));
	r.sr_sense[0] = 0x72;
	r.sr_sense[1] = SCSI_SENSE_ILLEGAL_REQUEST;
	r.sr_sense[2] = SCSI_ASC_LBA_OUT_OF_RANGE;
	r.sr_sense[7] = 12;
	r.sr_sense[8] = 0;
	r.sr_sense[9] = 0x0A;
	r.sr_sense[10] = 0x80;
	hv_put_be64(&r.sr_sense[12], 0x1122334455ull);
	r.sr_sense_len = 20;
	storvsc_sense_decode(&r);
	assert_true(r.sr_sense_valid);
	assert_int_equal(r.sr_sense_key, SCSI_SENSE_ILLEGAL_REQUEST);
	assert_true(r.sr_info_valid);
	assert_int_equal(r.sr_info, 0x1122334455ull);
	r.sr_srb_status = SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID;
	r.sr_scsi_status = SCSI_STATUS_CHECK_CONDITION;
	assert_int_equal(storvsc_io_map_result(&r, &retry, &rescan, NULL),
	    -VMBUS_ERANGE);
	assert_false(retry);
	/* Descriptor length running past the data: no read beyond. */
	r.sr_sense[7] = 200;
	r.sr_sense[9] = 0xF0;
	r.sr_sense_len = 12;
	storvsc_sense_decode(&r);
	assert_true(r.sr_sense_valid);
	assert_false(r.sr_info_valid);
	/* Garbage response code: not decoded, mapped to -EIO. */
	memset(&r, 0, sizeof(r));
	r.sr_sense[0] = 0x55;
	r.sr_sense_len = 18;
	storvsc_sense_decode(&r);
	assert_false(r.sr_sense_valid);
	r.sr_srb_status = SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID;
	r.sr_scsi_status = SCSI_STATUS_CHECK_CONDITION;
	assert_int_equal(storvsc_io_map_result(&r, &retry, &rescan, NULL),
	    -VMBUS_EIO);
	/* Capacity changed: retry and rescan. */
	memset(&r, 0, sizeof(r));
	r.sr_sense_valid = true;
	r.sr_sense_key = SCSI_SENSE_UNIT_ATTENTION;
	r.sr_asc = SCSI_ASC_PARAMETERS_CHANGED;
	r.sr_ascq = SCSI_ASCQ_CAPACITY_DATA_CHANGED;
	r.sr_srb_status = SRB_STATUS_ERROR;
	r.sr_scsi_status = SCSI_STATUS_CHECK_CONDITION;
	(void)storvsc_io_map_result(&r, &retry, &rescan, NULL);
	assert_true(retry);
	assert_true(rescan);
	/* INVALID_LUN: gone, rescan. */
	memset(&r, 0, sizeof(r));
	r.sr_srb_status = SRB_STATUS_INVALID_LUN;
	assert_int_equal(storvsc_io_map_result(&r, &retry, &rescan, NULL),
	    -VMBUS_ENODEV);
	assert_true(rescan);
	/* Underrun with GOOD status is success. */
	memset(&r, 0, sizeof(r));
	r.sr_srb_status = SRB_STATUS_DATA_OVERRUN;
	assert_int_equal(storvsc_io_map_result(&r, &retry, &rescan, NULL), 0);
	/* A failure NTSTATUS beside SRB success is not trusted. */
	r.sr_srb_status = SRB_STATUS_SUCCESS;
	r.sr_vstor_status = VSTOR_STATUS_IO_DEVICE_ERROR;
	assert_int_equal(storvsc_io_map_result(&r, &retry, &rescan, NULL),
	    -VMBUS_EIO);
}

/* ---- hostile host (spec hostile-host.md 6, 17, 18, 22) ---- */

static void test_hostile_bad_ids(void **state)
{
	static const enum vsh_mut muts[] = {
		VSH_MUT_ID_UNKNOWN, VSH_MUT_ID_ZERO, VSH_MUT_INBAND,
	};

	(void)state;
	for (unsigned m = 0; m < 3; m++) {
		struct env *e = env_disk(1);
		struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
		struct storvsc_stats st;
		uint8_t buf[512];
		int r;

		/* The completion is unusable: dropped and counted; the
		 * request times out, no callback for a wrong slot. */
		e->h.mut = muts[m];
		e->h.mut_count = 1;
		r = storvsc_read_sync(d, 0, 1, buf);
		assert_int_equal(r, -VMBUS_ETIMEDOUT);
		assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
		if (muts[m] == VSH_MUT_ID_UNKNOWN)
			assert_int_equal(st.st_bad_ids, 1);
		else
			assert_int_equal(st.st_bad_packets, 1);
		assert_int_equal(st.st_timeouts, 1);
		assert_int_equal(st.st_broken_queues, 0);
		/* The queue still works. */
		assert_int_equal(storvsc_read_sync(d, 0, 1, buf), 0);
		storvsc_disk_put(d);
		env_free(e);
	}
}

static void test_hostile_duplicate(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_stats st;
	uint8_t buf[512];

	(void)state;
	e->h.mut = VSH_MUT_DUP;
	e->h.mut_count = 1;
	assert_int_equal(storvsc_read_sync(d, 0, 1, buf), 0);
	assert_int_equal(storvsc_read_sync(d, 1, 1, buf), 0);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_bad_ids, 1);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_hostile_late_completion(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_stats st;
	struct storvsc_io io;
	uint8_t *dma = storvsc_buf_alloc(e->sv, 4096);

	(void)state;
	/* hostile-host 22: no answer: -ETIMEDOUT, the slot quarantined,
	 * the caller told its buffer may still be written. */
	e->h.hold = true;
	memset(&io, 0, sizeof(io));
	io.io_op = STORVSC_OP_READ;
	io.io_nblocks = 8;
	io.io_buf = dma;
	io.io_timeout_ns = 20 * MS;
	assert_int_equal(storvsc_io_sync(d, &io), -VMBUS_ETIMEDOUT);
	assert_true(io.io_buf_shared);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_timeouts, 1);
	/* The late completion frees the slot; no callback runs. */
	e->h.hold = false;
	vsh_release(&e->h, false);
	for (int i = 0; i < 100; i++)
		vmbus_poll(e->vb);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_late_completions, 1);
	assert_int_equal(storvsc_read_sync(d, 0, 8, dma), 0);
	storvsc_buf_free(e->sv, dma, 4096);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_hostile_short_and_wrong_op(void **state)
{
	static const enum vsh_mut muts[] = {
		VSH_MUT_SHORT, VSH_MUT_WRONG_OP, VSH_MUT_OVERSIZE,
	};

	(void)state;
	for (unsigned m = 0; m < 3; m++) {
		struct env *e = env_new(1, NULL, NULL);
		struct storvsc_disk *d;
		struct storvsc_stats st;
		struct aio a = { .e = e };
		struct aio_req rq[4];
		uint8_t buf[4][4096];

		vsh_add_lun(&e->h, 0, 0, 0, 512, 2048);
		env_start(e);
		d = storvsc_disk_get(e->sv, 0);
		/* Hold three requests, then corrupt the first completion:
		 * the queue breaks and everything pending fails -EPROTO. */
		e->h.hold = true;
		e->h.mut = muts[m];
		e->h.mut_count = 1;
		for (int i = 0; i < 3; i++) {
			memset(&rq[i], 0, sizeof(rq[i]));
			rq[i].a = &a;
			rq[i].buf = buf[i];
			assert_int_equal(storvsc_read(d, &rq[i].io, 0, 8,
			    buf[i], aio_done, &rq[i]), 0);
		}
		vsh_release(&e->h, false);
		poll_until(e, &a.done, 3);
		assert_int_equal(a.errors, 3);
		for (int i = 0; i < 3; i++)
			assert_int_equal(rq[i].io.io_error, -VMBUS_EPROTO);
		assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
		assert_int_equal(st.st_broken_queues, 1);
		assert_true(st.st_bad_packets >= 1);
		assert_true(st.st_proto_errors >= 1);
		/* New I/O is refused with the same clear error. */
		assert_int_equal(storvsc_read(d, &rq[3].io, 0, 1, buf[3],
		    aio_done, &rq[3]), -VMBUS_EPROTO);
		e->h.hold = false;
		storvsc_disk_put(d);
		env_free(e);
	}
}

/* Regression (crashes/guest_storvsc/callback-error-drops-completions-hang):
 * good completions read earlier in the same callback run as a packet that
 * breaks the queue still complete, with their data. */
static void test_hostile_break_after_good_completions(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_disk *d;
	struct aio a = { .e = e };
	struct aio_req rq[3];
	uint8_t buf[3][4096];

	(void)state;
	vsh_add_lun(&e->h, 0, 0, 0, 512, 2048);
	env_start(e);
	d = storvsc_disk_get(e->sv, 0);
	fill(e->h.luns[0].l_data, 4096, 5);
	e->h.hold = true;
	for (int i = 0; i < 3; i++) {
		if (i == 2) {
			e->h.mut = VSH_MUT_OVERSIZE;
			e->h.mut_count = 1;
		}
		memset(&rq[i], 0, sizeof(rq[i]));
		rq[i].a = &a;
		rq[i].buf = buf[i];
		assert_int_equal(storvsc_read(d, &rq[i].io, 0, 8, buf[i],
		    aio_done, &rq[i]), 0);
	}
	/* All three land in the ring before the guest looks: one run of
	 * the callback reads two good ones, then the oversized one. */
	vsh_release(&e->h, false);
	poll_until(e, &a.done, 3);
	assert_int_equal(rq[0].io.io_error, 0);
	assert_int_equal(rq[1].io.io_error, 0);
	assert_int_equal(rq[2].io.io_error, -VMBUS_EPROTO);
	assert_int_equal(a.errors, 1);
	assert_int_equal(a.bad_data, 0);
	e->h.hold = false;
	storvsc_disk_put(d);
	env_free(e);
}

static void test_hostile_lengths_clamped(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_stats st;
	struct storvsc_io io;
	uint8_t *heap = calloc(1, 4096 + 64);

	(void)state;
	/* hostile-host 18: data_transfer_length beyond the request: the
	 * bounce copy stops at the request (guard bytes untouched). */
	memset(heap, 0xEE, 4096 + 64);
	e->h.mut = VSH_MUT_XFER_LONG;
	e->h.mut_count = 1;
	memset(&io, 0, sizeof(io));
	io.io_op = STORVSC_OP_READ;
	io.io_nblocks = 8;
	io.io_buf = heap;
	assert_int_equal(storvsc_io_sync(d, &io), 0);
	assert_int_equal(io.io_bytes, 4096);
	for (int i = 4096; i < 4096 + 64; i++)
		assert_int_equal(heap[i], 0xEE);
	/* sense_info_length beyond the sense buffer: clamped. */
	e->h.mut = VSH_MUT_SENSE_LONG;
	e->h.mut_count = 1;
	memset(&io, 0, sizeof(io));
	io.io_op = STORVSC_OP_READ;
	io.io_nblocks = 1;
	io.io_buf = heap;
	assert_int_equal(storvsc_io_sync(d, &io), -VMBUS_EIO);
	assert_int_equal(io.io_status.sr_sense_len, 20);
	assert_int_equal(io.io_status.sr_sense_key, SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_clamped, 2);
	free(heap);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_hostile_bad_status(void **state)
{
	static const struct { uint8_t srb, scsi; int err; } cases[] = {
		{ 0x3F, SCSI_STATUS_GOOD, -VMBUS_EIO },		/* unknown */
		{ SRB_STATUS_PENDING, SCSI_STATUS_GOOD, -VMBUS_EIO },
		{ SRB_STATUS_SUCCESS, 0x7E, -VMBUS_EIO },	/* odd SCSI */
		{ SRB_STATUS_ERROR, SCSI_STATUS_GOOD, -VMBUS_EIO },
		{ SRB_STATUS_SUCCESS, SCSI_STATUS_CHECK_CONDITION, -VMBUS_EIO },
		{ SRB_STATUS_ABORTED, SCSI_STATUS_GOOD, -VMBUS_ECANCELED },
		{ SRB_STATUS_TIMEOUT, SCSI_STATUS_GOOD, -VMBUS_ETIMEDOUT },
		{ SRB_STATUS_BAD_FUNCTION, SCSI_STATUS_GOOD, -VMBUS_EOPNOTSUPP },
		{ SRB_STATUS_INTERNAL_ERROR, SCSI_STATUS_GOOD, -VMBUS_EIO },
	};
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_stats st;
	uint8_t buf[512];

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e->h.mut = VSH_MUT_STATUS;
		e->h.mut_count = 1;
		e->h.mut_srb = cases[i].srb;
		e->h.mut_scsi = cases[i].scsi;
		assert_int_equal(storvsc_read_sync(d, 0, 1, buf), cases[i].err);
	}
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_bad_status, 4);
	assert_int_equal(storvsc_read_sync(d, 0, 1, buf), 0);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_hostile_unsolicited_flood(void **state)
{
	struct env *e = env_disk(1);
	struct storvsc_disk *d = storvsc_disk_get(e->sv, 0);
	struct storvsc_stats st;
	uint8_t buf[4096];
	uint32_t sent = 0;

	(void)state;
	/* A flood of every kind of unsolicited packet, short ones too:
	 * rescans are coalesced, nothing completes a request. */
	for (int round = 0; round < 50; round++) {
		for (uint32_t op = 0; op < 20; op++) {
			if (vsh_unsolicited(&e->h, op, op % 3 == 0 ? 4 :
			    VSTOR_PACKET_SIZE) == 0)
				sent++;
		}
		assert_int_equal(storvsc_write_sync(d, 0, 8, buf), 0);
		storvsc_tick(e->sv);
	}
	for (int i = 0; i < 1000; i++) {
		vmbus_poll(e->vb);
		storvsc_tick(e->sv);
	}
	assert_int_equal(storvsc_get_stats(e->sv, &st), 0);
	assert_int_equal(st.st_unsolicited, sent);
	assert_true(st.st_bad_packets > 0);
	assert_true(st.st_rescans >= 1 && st.st_rescans < sent / 4);
	assert_int_equal(st.st_broken_queues, 0);
	assert_int_equal(storvsc_disk_count(e->sv), 1);
	assert_int_equal(storvsc_read_sync(d, 0, 8, buf), 0);
	storvsc_disk_put(d);
	env_free(e);
}

static void test_hostile_ring_full_then_timeout(void **state)
{
	struct env *e = env_new(1, NULL, NULL);
	struct storvsc_disk *d;
	struct aio a = { .e = e };
	enum { N = 200 };
	struct aio_req *rq = calloc(N, sizeof(*rq));
	uint8_t *bufs = calloc(N, 4096);

	(void)state;
	e->cfg.sc_ring_bytes = 4 * 4096;	/* fills quickly */
	vsh_add_lun(&e->h, 0, 0, 0, 512, 4096);
	env_start(e);
	d = storvsc_disk_get(e->sv, 0);
	/* hostile-host 22/23: the host stops reading: sends wait for ring
	 * room, then everything times out with -ETIMEDOUT. */
	e->h.srb_deaf = true;
	for (int i = 0; i < N; i++) {
		rq[i].a = &a;
		rq[i].buf = bufs + i * 4096;
		assert_int_equal(storvsc_read(d, &rq[i].io, (uint64_t)i, 8,
		    rq[i].buf, aio_done, &rq[i]), 0);
	}
	poll_until(e, &a.done, N);
	assert_int_equal(a.errors, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(rq[i].io.io_error, -VMBUS_ETIMEDOUT);
	e->h.srb_deaf = false;
	storvsc_disk_put(d);
	free(rq);
	free(bufs);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiate_each_version),
		cmocka_unit_test(test_negotiate_none),
		cmocka_unit_test(test_negotiate_bounded_range),
		cmocka_unit_test(test_negotiate_wrong_echo),
		cmocka_unit_test(test_init_sequence),
		cmocka_unit_test(test_init_step_failure),
		cmocka_unit_test(test_init_no_answer),
		cmocka_unit_test(test_no_multichannel_prewin8),
		cmocka_unit_test(test_properties_clamped),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_ide),
		cmocka_unit_test(test_rescan_add_remove),
		cmocka_unit_test(test_rescind_during_io),
		cmocka_unit_test(test_rescind_during_scan),
		cmocka_unit_test(test_rescind_subchannel),
		cmocka_unit_test(test_teardown_failure_leaks_counted),
		cmocka_unit_test(test_attach_failure_leak_counted),
		cmocka_unit_test(test_page_free_refused_counted),
		cmocka_unit_test(test_removed_disk_io),
		cmocka_unit_test(test_io_direct_and_bounce),
		cmocka_unit_test(test_large_transfer_split),
		cmocka_unit_test(test_queue_depth_and_matching),
		cmocka_unit_test(test_multichannel_spread),
		cmocka_unit_test(test_flush_discard),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_sense_mapping),
		cmocka_unit_test(test_unit_attention_retried),
		cmocka_unit_test(test_sense_decode_formats),
		cmocka_unit_test(test_hostile_bad_ids),
		cmocka_unit_test(test_hostile_duplicate),
		cmocka_unit_test(test_hostile_late_completion),
		cmocka_unit_test(test_hostile_short_and_wrong_op),
		cmocka_unit_test(test_hostile_break_after_good_completions),
		cmocka_unit_test(test_hostile_lengths_clamped),
		cmocka_unit_test(test_hostile_bad_status),
		cmocka_unit_test(test_hostile_unsolicited_flood),
		cmocka_unit_test(test_hostile_ring_full_then_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
