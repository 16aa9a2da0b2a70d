/*
 * tests/guest/test_echo.c - the echo driver against the fake host's echo
 * behaviour (fakeport.c): attach/open with configured rings, round trips
 * of every size class (ring wrap), streaming with backpressure, rescind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fakeport.h"
#include "vmbus/echo.h"
#include "vmbus/vmbus.h"

struct env {
	struct fakeport fp;
	struct vmbus *vb;
};

static struct env *env_up(uint32_t nech, const struct echo_config *ec)
{
	struct env *e = calloc(1, sizeof(*e));
	struct vmbus_config cfg = { .vc_timeout_ns = 50000000 };

	assert_non_null(e);
	fp_init(&e->fp, 2);
	for (uint32_t i = 0; i < nech; i++)
		fh_add_chan(&e->fp, 3 + i, &fh_guid_echo, &fh_guid_inst[i], 0, true);
	fh_add_chan(&e->fp, 20, &fh_guid_other, &fh_guid_inst[7], 0, false);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &cfg, &e->vb), 0);
	assert_int_equal(echo_register(e->vb, ec), 0);
	assert_int_equal(echo_register(e->vb, ec), -VMBUS_EEXIST);
	assert_int_equal(vmbus_connect(e->vb), 0);
	return e;
}

static void env_down(struct env *e)
{
	vmbus_destroy(e->vb);
	echo_unregister(e->vb);
	assert_int_equal(fp_fini(&e->fp), 0);	/* nothing leaked */
	free(e);
}

static void test_echo_attach(void **state)
{
	struct echo_config ec = { 3 * 4096, 5 * 4096 };
	struct env *e = env_up(3, &ec);
	struct vmbus_chan_info ci;

	(void)state;
	assert_int_equal(echo_count(e->vb), 3);
	for (uint32_t i = 0; i < 3; i++) {
		struct echo_dev *ed = echo_get(e->vb, i);

		assert_non_null(ed);
		assert_int_equal(vmbus_chan_get_info(echo_channel(ed), &ci), 0);
		assert_int_equal(ci.ci_state, VMBUS_CHAN_OPEN);
		assert_int_equal(ci.ci_tx_ring_bytes, 3 * 4096);
		assert_int_equal(ci.ci_rx_ring_bytes, 5 * 4096);
		assert_string_equal(ci.ci_driver, "echo");
	}
	assert_null(echo_get(e->vb, 3));
	env_down(e);
}

static void test_echo_roundtrips(void **state)
{
	struct echo_config ec = { 2 * 4096, 2 * 4096 };
	struct env *e = env_up(1, &ec);
	struct echo_dev *ed = echo_get(e->vb, 0);
	static uint8_t in[8192], out[8192];
	struct echo_stats st;
	uint32_t max = echo_max_payload(ed);

	(void)state;
	assert_true(max > 1000 && max < 4096);
	for (uint32_t i = 0; i < 500; i++) {
		uint32_t len = (i * 97) % (max + 1), got = sizeof(out);

		for (uint32_t k = 0; k < len; k++)
			in[k] = (uint8_t)(k ^ i);
		assert_int_equal(echo_roundtrip(ed, in, len, out, &got, 1000000), 0);
		assert_int_equal(got, len);
		assert_memory_equal(in, out, len);
	}
	uint32_t got = sizeof(out);
	assert_int_equal(echo_roundtrip(ed, in, max + 8, out, &got, 1000000),
	    -VMBUS_EINVAL);
	echo_get_stats(ed, &st);
	assert_int_equal(st.es_sent, 500);
	assert_int_equal(st.es_received, 500);
	assert_int_equal(st.es_mismatches, 0);
	env_down(e);
}

static void test_echo_stream(void **state)
{
	struct env *e = env_up(1, NULL);
	struct echo_dev *ed = echo_get(e->vb, 0);
	struct fh_chan *c = fh_find_chan(&e->fp, 3);
	uint8_t buf[1024], rx[1024];
	uint32_t sent = 0, recvd = 0, len;
	int r;

	(void)state;
	/* The host stops echoing: sends fill the ring, then -EAGAIN. */
	c->c_echo = false;
	memset(buf, 0x5A, sizeof(buf));
	while ((r = echo_stream_send(ed, buf, sizeof(buf))) == 0)
		sent++;
	assert_int_equal(r, -VMBUS_EAGAIN);
	assert_true(sent > 10);
	len = sizeof(rx);
	assert_int_equal(echo_stream_recv(ed, rx, &len), -VMBUS_EAGAIN);
	/* Resume: every queued frame comes back in order. */
	c->c_echo = true;
	fh_kick(&e->fp, c);
	assert_int_equal(echo_stream_wait(ed, true, 1000000), 0);
	assert_int_equal(echo_stream_send(ed, buf, 8), 0);
	sent++;
	while (recvd < sent) {
		len = sizeof(rx);
		r = echo_stream_recv(ed, rx, &len);
		if (r == -VMBUS_EAGAIN) {
			/* reading made room: our read_done signalled the host */
			assert_int_equal(echo_stream_wait(ed, false, 1000000), 0);
			continue;
		}
		assert_int_equal(r, 0);
		assert_true(len == sizeof(buf) || len == 8);
		recvd++;
	}
	struct echo_stats st;
	echo_get_stats(ed, &st);
	assert_int_equal(st.es_mismatches, 0);
	assert_int_equal(st.es_received, recvd);
	env_down(e);
}

static void test_echo_rescind(void **state)
{
	struct env *e = env_up(2, NULL);
	struct echo_dev *ed = echo_get(e->vb, 0);
	uint8_t b[16] = { 1 }, o[16];
	uint32_t len = sizeof(o);

	(void)state;
	e->fp.fp_quiet = true;
	fh_rescind(&e->fp, fh_find_chan(&e->fp, 3));
	vmbus_poll(e->vb);		/* deferred detach */
	assert_int_equal(echo_count(e->vb), 1);
	ed = echo_get(e->vb, 0);
	assert_int_equal(echo_roundtrip(ed, b, sizeof(b), o, &len, 1000000), 0);
	assert_true(fh_find_chan(&e->fp, 3)->c_released);
	env_down(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_attach),
		cmocka_unit_test(test_echo_roundtrips),
		cmocka_unit_test(test_echo_stream),
		cmocka_unit_test(test_echo_rescind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
