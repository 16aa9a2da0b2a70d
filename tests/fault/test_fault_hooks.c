/*
 * tests/fault/test_fault_hooks.c - the send-path fault hooks of
 * host/fault.c on their own: filters, field mutation, the message hooks
 * and the packet hooks against a recording writer (no partition, no
 * guest). The end-to-end matrix is fault_matrix.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/ring.h"
#include "host/fault.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/errno.h"

static void on(const char *name, const char *const *kv, unsigned n)
{
	struct hvs_fault_param p[HVS_FAULT_MAX_PARAMS];

	memset(p, 0, sizeof(p));
	for (unsigned i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		memcpy(p[i].fp_name, kv[i], (size_t)(eq - kv[i]));
		p[i].fp_value = strtoll(eq + 1, NULL, 0);
	}
	assert_int_equal(hvs_fault_set(name, true, p, n, NULL), 0);
}

static int setup(void **state)
{
	(void)state;
	hvs_fault_reset_all();
	return 0;
}

static void test_match_filters(void **state)
{
	static const char *const keys[] = { "relid", "type" };
	int64_t v[2] = { 3, 6 };
	(void)state;

	on("pkt.drop", (const char *const[]){ "relid=3", "type=-1" }, 2);
	assert_true(hvs_fault_check_match("pkt.drop", "vm", keys, v, 2, NULL));
	v[0] = 4;
	assert_false(hvs_fault_check_match("pkt.drop", "vm", keys, v, 2, NULL));
	/* a filtered-out event is not counted against "after" */
	on("pkt.drop", (const char *const[]){ "relid=3", "after=1" }, 2);
	assert_false(hvs_fault_check_match("pkt.drop", "vm", keys, v, 2, NULL));
	v[0] = 3;
	assert_false(hvs_fault_check_match("pkt.drop", "vm", keys, v, 2, NULL));
	assert_true(hvs_fault_check_match("pkt.drop", "vm", keys, v, 2, NULL));
}

static void test_mutate(void **state)
{
	struct hvs_fault_args a;
	uint8_t b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint64_t was, now;
	(void)state;

	on("msg.corrupt", (const char *const[]){ "off=2", "width=2", "op=1",
						   "value=0x101" }, 4);
	assert_true(hvs_fault_check("msg.corrupt", &a));
	assert_true(hvs_fault_mutate(&a, b, sizeof(b), &was, &now));
	assert_int_equal(was, 0x0403);
	assert_int_equal(now, 0x0504);
	assert_int_equal(b[2], 4);
	assert_int_equal(b[3], 5);
	/* a field past the end changes nothing */
	on("msg.corrupt", (const char *const[]){ "off=6", "width=4" }, 2);
	assert_true(hvs_fault_check("msg.corrupt", &a));
	assert_false(hvs_fault_mutate(&a, b, sizeof(b), &was, &now));
	assert_int_equal(b[6], 7);
	/* xor, width 1; a bad width is refused */
	on("msg.corrupt", (const char *const[]){ "width=1", "op=2",
						   "value=0xff" }, 3);
	assert_true(hvs_fault_check("msg.corrupt", &a));
	assert_true(hvs_fault_mutate(&a, b, sizeof(b), NULL, NULL));
	assert_int_equal(b[0], 0xfe);
	on("msg.corrupt", (const char *const[]){ "width=3" }, 1);
	assert_true(hvs_fault_check("msg.corrupt", &a));
	assert_false(hvs_fault_mutate(&a, b, sizeof(b), NULL, NULL));
}

static void test_msg_hooks(void **state)
{
	uint8_t scratch[HVS_FAULT_MSG_MAX];
	uint8_t m[20] = { 6 };   /* VMBus type 6 */
	const void *p = m;
	uint32_t len = sizeof(m);
	(void)state;

	/* nothing on: one copy, untouched */
	assert_int_equal(hvs_fault_msg("vm", &p, &len, scratch), 1);
	assert_ptr_equal(p, m);
	on("drop_message", (const char *const[]){ "type=7" }, 1);
	assert_int_equal(hvs_fault_msg("vm", &p, &len, scratch), 1);
	on("drop_message", (const char *const[]){ "type=6", "times=1" }, 2);
	assert_int_equal(hvs_fault_msg("vm", &p, &len, scratch), 0);
	assert_int_equal(hvs_fault_msg("vm", &p, &len, scratch), 1);

	on("msg.corrupt", (const char *const[]){ "type=6", "off=8",
						   "value=77" }, 3);
	on("msg.resize", (const char *const[]){ "type=6", "len=30" }, 2);
	on("msg.duplicate", (const char *const[]){ "count=2" }, 1);
	assert_int_equal(hvs_fault_msg("vm", &p, &len, scratch), 3);
	assert_ptr_equal(p, scratch);
	assert_int_equal(len, 30);
	assert_int_equal(scratch[8], 77);
	assert_int_equal(scratch[29], 0);
	assert_int_equal(m[8], 0);   /* the caller's message is not written */
}

/* ---- packets through a recording writer ---- */

struct rec {
	unsigned n;
	uint8_t pkt[8][256];
	uint32_t len[8];
};

static int rec_write(void *ctx, const struct vmbus_iov *iov, unsigned iovcnt)
{
	struct rec *r = ctx;
	uint32_t off = 0;

	assert_true(r->n < 8);
	for (unsigned i = 0; i < iovcnt; i++) {
		assert_true(off + iov[i].iov_len <= sizeof(r->pkt[0]));
		memcpy(r->pkt[r->n] + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	r->len[r->n++] = off;
	return 0;
}

static int send_pkt(const struct hvs_fault_chan *fc, struct rec *r,
		    uint16_t type, uint64_t tid)
{
	struct vmbus_packet_desc d;
	uint8_t body[8] = { 0xAB };
	struct vmbus_iov v[2] = {
		{ .iov_base = &d, .iov_len = sizeof(d) },
		{ .iov_base = body, .iov_len = sizeof(body) },
	};

	memset(&d, 0, sizeof(d));
	d.pd_type = hv_cpu_to_le16(type);
	d.pd_offset8 = hv_cpu_to_le16(2);
	d.pd_len8 = hv_cpu_to_le16(3);
	d.pd_trans_id = hv_cpu_to_le64(tid);
	return hvs_fault_pkt_send(fc, v, 2, rec_write, r);
}

static uint64_t tid_of(const struct rec *r, unsigned i)
{
	return hv_get_le64(r->pkt[i] + 8);
}

static void test_pkt_hooks(void **state)
{
	static int key;
	struct hvs_fault_chan fc = {
		.fc_vm = "vm", .fc_name = "vm/x", .fc_relid = 5, .fc_key = &key,
	};
	struct rec r;
	(void)state;

	/* drop only completions of relid 5 */
	memset(&r, 0, sizeof(r));
	on("pkt.drop", (const char *const[]){ "relid=5", "ptype=11" }, 2);
	assert_int_equal(send_pkt(&fc, &r, 11, 1), 0);
	assert_int_equal(send_pkt(&fc, &r, 6, 2), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(tid_of(&r, 0), 2);
	hvs_fault_reset_all();

	/* content filter: the byte at moff must equal mval */
	memset(&r, 0, sizeof(r));
	on("pkt.drop", (const char *const[]){ "moff=8", "mwidth=1",
						"mval=3" }, 3);
	assert_int_equal(send_pkt(&fc, &r, 11, 2), 0);
	assert_int_equal(send_pkt(&fc, &r, 11, 3), 0);
	assert_int_equal(send_pkt(&fc, &r, 11, 4), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(tid_of(&r, 0), 2);
	assert_int_equal(tid_of(&r, 1), 4);
	on("pkt.drop", (const char *const[]){ "moff=30", "mval=1" }, 2);
	assert_int_equal(send_pkt(&fc, &r, 11, 5), 0);  /* field outside */
	assert_int_equal(r.n, 3);
	hvs_fault_reset_all();

	/* duplicate + inject after */
	memset(&r, 0, sizeof(r));
	on("pkt.duplicate", (const char *const[]){ "times=1" }, 1);
	on("pkt.inject", (const char *const[]){ "tid=99", "len=5",
						  "times=1" }, 3);
	assert_int_equal(send_pkt(&fc, &r, 11, 7), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(tid_of(&r, 0), 7);
	assert_int_equal(tid_of(&r, 1), 7);
	assert_int_equal(tid_of(&r, 2), 99);
	assert_int_equal(r.len[2], 24);  /* 16 + 5 rounded up to 8 */
	assert_int_equal(hv_get_le16(r.pkt[2] + 4), 3);
	hvs_fault_reset_all();

	/* delay by 2: packet 1 goes out after packets 2 and 3 */
	memset(&r, 0, sizeof(r));
	on("pkt.delay", (const char *const[]){ "count=2", "times=1" }, 2);
	assert_true(hvs_fault_pkt_enabled());
	for (uint64_t t = 1; t <= 3; t++)
		assert_int_equal(send_pkt(&fc, &r, 11, t), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(tid_of(&r, 0), 2);
	assert_int_equal(tid_of(&r, 1), 3);
	assert_int_equal(tid_of(&r, 2), 1);
	assert_false(hvs_fault_pkt_enabled());  /* off, nothing held */

	/* a held packet goes with its channel */
	memset(&r, 0, sizeof(r));
	on("pkt.delay", (const char *const[]){ "times=1" }, 1);
	assert_int_equal(send_pkt(&fc, &r, 11, 4), 0);
	assert_int_equal(r.n, 0);
	hvs_fault_chan_gone(&key);
	assert_int_equal(send_pkt(&fc, &r, 11, 5), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(tid_of(&r, 0), 5);
	hvs_fault_reset_all();

	/* resize: len8 follows, the body is zero-extended */
	memset(&r, 0, sizeof(r));
	on("pkt.resize", (const char *const[]){ "len=40" }, 1);
	assert_int_equal(send_pkt(&fc, &r, 6, 8), 0);
	assert_int_equal(r.len[0], 40);
	assert_int_equal(hv_get_le16(r.pkt[0] + 4), 5);
	assert_int_equal(r.pkt[0][16], 0xAB);
	assert_int_equal(r.pkt[0][39], 0);
}

static void test_stall(void **state)
{
	(void)state;
	assert_false(hvs_fault_chan_stalled("vm", 1));
	on("chan.stall", (const char *const[]){ "relid=2" }, 1);
	assert_false(hvs_fault_chan_stalled("vm", 1));
	assert_true(hvs_fault_chan_stalled("vm", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_match_filters, setup),
		cmocka_unit_test_setup(test_mutate, setup),
		cmocka_unit_test_setup(test_msg_hooks, setup),
		cmocka_unit_test_setup(test_pkt_hooks, setup),
		cmocka_unit_test_setup(test_stall, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
