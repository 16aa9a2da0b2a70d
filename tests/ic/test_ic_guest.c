/*
 * tests/ic/test_ic_guest.c - the guest integration services against a
 * fake core (fake_guest.c): the test plays the host, byte by byte, with
 * its own message builders (never the guest's code).
 *
 * Covers: the negotiation choice matrix (host generations old and new),
 * every service's replies, and the hostile-host items 19 and 20 (bad
 * negotiate, short payloads, bad times, unknown shutdown flags, KVP
 * lengths, pools, indexes): each answered with a failure status, counted,
 * and no guest state changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_guest.h"
#include "hv/guid.h"
#include "hv/icmsg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/ic.h"

/* Channel indexes after setup_all(): offer order. */
enum { CH_HB = 0, CH_SD = 1, CH_TS = 2, CH_KVP = 3 };

static struct vmbus *bus;
static struct ic_services *ics;

/* ---- host-side builders (the test's own) ---- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* A host request header for a message with `body` bytes of body. */
static uint32_t mk_hdr(uint8_t *b, uint16_t type, uint32_t body)
{
	memset(b, 0, 28);
	put32(b, 1);			/* pipe: data */
	put32(b + 4, 20 + body);
	put16(b + 8, 3);		/* framework 3.0 */
	put16(b + 12, type);
	put16(b + 14, 3);
	put16(b + 18, (uint16_t)body);
	b[25] = 0x3;			/* transaction | request */
	return 28 + body;
}

/* Negotiate listing fw[] then msg[] as {major, minor} pairs. */
static uint32_t mk_nego(uint8_t *b, uint16_t nfw, const uint16_t (*fw)[2],
			uint16_t nmsg, const uint16_t (*msg)[2])
{
	uint32_t len = mk_hdr(b, 0, 8u + 4u * (nfw + nmsg));

	put16(b + 28, nfw);
	put16(b + 30, nmsg);
	for (uint16_t i = 0; i < nfw; i++) {
		put16(b + 36 + 4 * i, fw[i][0]);
		put16(b + 38 + 4 * i, fw[i][1]);
	}
	for (uint16_t i = 0; i < nmsg; i++) {
		put16(b + 36 + 4 * (nfw + i), msg[i][0]);
		put16(b + 38 + 4 * (nfw + i), msg[i][1]);
	}
	return len;
}

struct reply {
	uint8_t b[FAKE_PKT_MAX];
	uint32_t len;
	uint64_t tid;
};

static struct reply rp;

static void must_reply(int ch)
{
	assert_int_equal(fake_host_recv(ch, rp.b, &rp.len, &rp.tid), 0);
	assert_true(rp.len >= 28);
	/* Every answer is a response to a transaction (spec 4.1). */
	assert_int_equal(rp.b[25], 0x5);
	assert_int_equal(get32(rp.b + 4), rp.len - 8);
	assert_int_equal(get16(rp.b + 18), rp.len - 28);
}

static uint32_t r_status(void) { return get32(rp.b + 20); }

static const uint16_t V_FW[][2] = { { 1, 0 }, { 3, 0 } };

/* Negotiate channel ch with the V framework list and one service version. */
static void negotiate(int ch, uint16_t maj, uint16_t min)
{
	uint8_t b[256];
	const uint16_t msg[1][2] = { { maj, min } };
	uint32_t len = mk_nego(b, 2, V_FW, 1, msg);

	fake_host_send(ch, b, len, 77);
	must_reply(ch);
	assert_int_equal(r_status(), 0);
	assert_int_equal(rp.tid, 77);
}

static struct ic_config cfg;

static int kvp_saves;
static uint8_t kvp_saved[400000];
static uint32_t kvp_saved_len;
static int kvp_changed_calls;
static char kvp_changed_key[1024];

static int t_save(void *arg, const void *buf, uint32_t len)
{
	(void)arg;
	assert_true(len <= sizeof(kvp_saved));
	memcpy(kvp_saved, buf, len);
	kvp_saved_len = len;
	kvp_saves++;
	return 0;
}

static int t_load(void *arg, void *buf, uint32_t size, uint32_t *len)
{
	(void)arg;
	if (kvp_saved_len == 0 || kvp_saved_len > size)
		return -VMBUS_ENOENT;
	memcpy(buf, kvp_saved, kvp_saved_len);
	*len = kvp_saved_len;
	return 0;
}

static void t_changed(void *arg, uint8_t pool, const char *key, bool del)
{
	(void)arg;
	(void)pool;
	(void)del;
	kvp_changed_calls++;
	snprintf(kvp_changed_key, sizeof(kvp_changed_key), "%s", key);
}

static int t_net(void *arg, int family, char *buf, uint32_t size)
{
	(void)arg;
	return snprintf(buf, size, family == 4 ? "192.0.2.7" : "2001:db8::7");
}

static void cfg_defaults(void)
{
	ic_config_init(&cfg);
	cfg.icc_kvp.kc_fqdn = "guest.example";
	cfg.icc_kvp.kc_os_name = "vmbus-os";
	cfg.icc_kvp.kc_os_version = "1.2.3";
	cfg.icc_kvp.kc_os_build = "42";
	cfg.icc_kvp.kc_os_major = "1";
	cfg.icc_kvp.kc_os_minor = "2";
	cfg.icc_kvp.kc_proc_arch = "x86_64";
	cfg.icc_kvp.kc_net_addrs = t_net;
	cfg.icc_kvp.kc_save = t_save;
	cfg.icc_kvp.kc_load = t_load;
	cfg.icc_kvp.kc_changed = t_changed;
	cfg.icc_kvp.kc_max_records = 8;
}

/* New bus, register, offer the four IC classes (not negotiated). */
static void start(int defer_mode)
{
	bus = fake_reset(defer_mode);
	assert_int_equal(ic_services_register(bus, &cfg, &ics), 0);
	assert_int_equal(fake_offer(&HV_GUID_HEARTBEAT), CH_HB);
	assert_int_equal(fake_offer(&HV_GUID_SHUTDOWN), CH_SD);
	assert_int_equal(fake_offer(&HV_GUID_TIMESYNC), CH_TS);
	assert_int_equal(fake_offer(&HV_GUID_KVP), CH_KVP);
	for (int i = 0; i < 4; i++)
		assert_true(fake_chan_open(i));
}

static void start_negotiated(int defer_mode)
{
	start(defer_mode);
	negotiate(CH_HB, 3, 0);
	negotiate(CH_SD, 3, 2);
	negotiate(CH_TS, 4, 0);
	negotiate(CH_KVP, 4, 0);
}

static int setup(void **state)
{
	(void)state;
	kvp_saves = 0;
	kvp_saved_len = 0;
	kvp_changed_calls = 0;
	cfg_defaults();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < FAKE_MAX_CHANS; i++)
		fake_rescind(i);
	ic_services_free(ics);
	ics = NULL;
	assert_int_equal(fake_port.fp_lock_errors, 0);
	assert_int_equal(fake_port.fp_locks_held, 0);
	fake_teardown();
	return 0;
}

static struct ic_stats st(enum ic_service s)
{
	struct ic_stats x;

	assert_int_equal(ic_get_stats(ics, s, &x), 0);
	return x;
}

/* ---- negotiation ---- */

struct nego_case {
	const char *name;
	uint16_t ch;
	uint16_t nfw, nmsg;
	uint16_t fw[6][2], msg[6][2];
	bool ok;
	uint16_t want_fw[2], want_msg[2];
};

/*
 * Host lists of each generation our host emulator models (WS2008 1.0
 * only; WS2008 R2 adds 3.0; WS2012 KVP 4.0; WS2016 time sync 4.0;
 * WS2019+ shutdown 3.2, KVP 5.0; a future host with versions we do not
 * know) and hostile lists: the guest must pick the highest common pair.
 */
static const struct nego_case nego_cases[] = {
	{ "ws2008 heartbeat", CH_HB, 1, 1, { { 1, 0 } }, { { 1, 0 } }, true,
	  { 1, 0 }, { 1, 0 } },
	{ "ws2008r2 heartbeat", CH_HB, 2, 2, { { 1, 0 }, { 3, 0 } },
	  { { 1, 0 }, { 3, 0 } }, true, { 3, 0 }, { 3, 0 } },
	{ "ws2008 timesync", CH_TS, 1, 1, { { 1, 0 } }, { { 1, 0 } }, true,
	  { 1, 0 }, { 1, 0 } },
	{ "ws2012 timesync", CH_TS, 2, 2, { { 1, 0 }, { 3, 0 } },
	  { { 1, 0 }, { 3, 0 } }, true, { 3, 0 }, { 3, 0 } },
	{ "ws2016 timesync", CH_TS, 2, 3, { { 1, 0 }, { 3, 0 } },
	  { { 1, 0 }, { 3, 0 }, { 4, 0 } }, true, { 3, 0 }, { 4, 0 } },
	{ "V timesync", CH_TS, 2, 1, { { 1, 0 }, { 3, 0 } }, { { 4, 0 } },
	  true, { 3, 0 }, { 4, 0 } },
	{ "ws2012 kvp", CH_KVP, 2, 3, { { 1, 0 }, { 3, 0 } },
	  { { 1, 0 }, { 3, 0 }, { 4, 0 } }, true, { 3, 0 }, { 4, 0 } },
	{ "V kvp (3,4,5)", CH_KVP, 2, 3, { { 1, 0 }, { 3, 0 } },
	  { { 3, 0 }, { 4, 0 }, { 5, 0 } }, true, { 3, 0 }, { 4, 0 } },
	{ "ws2016 shutdown", CH_SD, 2, 3, { { 1, 0 }, { 3, 0 } },
	  { { 1, 0 }, { 3, 0 }, { 3, 1 } }, true, { 3, 0 }, { 3, 1 } },
	{ "V shutdown", CH_SD, 2, 4, { { 1, 0 }, { 3, 0 } },
	  { { 1, 0 }, { 3, 0 }, { 3, 1 }, { 3, 2 } }, true, { 3, 0 }, { 3, 2 } },
	{ "future host, unordered", CH_SD, 3, 5, { { 4, 0 }, { 3, 0 }, { 1, 0 } },
	  { { 3, 3 }, { 3, 2 }, { 9, 0 }, { 1, 0 }, { 3, 0 } }, true, { 3, 0 },
	  { 3, 2 } },
	{ "future kvp", CH_KVP, 2, 4, { { 3, 0 }, { 3, 1 } },
	  { { 6, 0 }, { 5, 0 }, { 4, 1 }, { 4, 0 } }, true, { 3, 0 }, { 4, 0 } },
	{ "no common framework", CH_HB, 1, 1, { { 2, 0 } }, { { 3, 0 } }, false,
	  { 0, 0 }, { 0, 0 } },
	{ "no common service", CH_TS, 1, 2, { { 3, 0 } }, { { 2, 0 }, { 5, 0 } },
	  false, { 0, 0 }, { 0, 0 } },
	{ "minor mismatch", CH_KVP, 1, 1, { { 3, 1 } }, { { 4, 0 } }, false,
	  { 0, 0 }, { 0, 0 } },
};

static void test_negotiate_matrix(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(nego_cases) / sizeof(nego_cases[0]); i++) {
		const struct nego_case *c = &nego_cases[i];
		uint8_t b[512];
		uint32_t len;
		struct ic_stats s;

		start(FAKE_DEFER_NONE);
		len = mk_nego(b, c->nfw, c->fw, c->nmsg, c->msg);
		fake_host_send(c->ch, b, len, 1000 + i);
		must_reply(c->ch);
		assert_int_equal(rp.tid, 1000 + i);
		s = st((enum ic_service)c->ch);
		if (c->ok) {
			print_message("  %s -> %u.%u / %u.%u\n", c->name,
				      get16(rp.b + 36), get16(rp.b + 38),
				      get16(rp.b + 40), get16(rp.b + 42));
			assert_int_equal(r_status(), 0);
			assert_int_equal(rp.len, 44);
			assert_int_equal(get16(rp.b + 28), 1);
			assert_int_equal(get16(rp.b + 30), 1);
			assert_int_equal(get16(rp.b + 36), c->want_fw[0]);
			assert_int_equal(get16(rp.b + 38), c->want_fw[1]);
			assert_int_equal(get16(rp.b + 40), c->want_msg[0]);
			assert_int_equal(get16(rp.b + 42), c->want_msg[1]);
			assert_true(s.is_negotiated);
			assert_int_equal(s.is_msg_major, c->want_msg[0]);
			assert_int_equal(s.is_msg_minor, c->want_msg[1]);
		} else {
			assert_int_equal(r_status(), IC_STATUS_E_FAIL);
			assert_int_equal(get16(rp.b + 28), 0);
			assert_int_equal(get16(rp.b + 30), 0);
			assert_false(s.is_negotiated);
		}
		teardown(NULL);
	}
}

/* Hostile-host item 19: each bad negotiate is refused with counts 0/0 and
 * E_FAIL, counted, and an earlier negotiation stays in force. */
static void test_negotiate_abuse(void **state)
{
	uint8_t b[1024];
	uint32_t len;
	const uint16_t one[1][2] = { { 3, 0 } };
	const uint16_t hb[1][2] = { { 3, 0 } };
	uint64_t seq;

	(void)state;
	start(FAKE_DEFER_NONE);
	negotiate(CH_HB, 3, 0);

	/* framework count 0 */
	len = mk_nego(b, 1, one, 1, hb);
	put16(b + 28, 0);
	fake_host_send(CH_HB, b, len, 1);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	assert_int_equal(get16(rp.b + 28), 0);
	/* service count 0 */
	len = mk_nego(b, 1, one, 1, hb);
	put16(b + 30, 0);
	fake_host_send(CH_HB, b, len, 2);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	/* counts that run past the message */
	len = mk_nego(b, 1, one, 1, hb);
	put16(b + 30, 60);
	fake_host_send(CH_HB, b, len, 3);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	/* counts above the cap of 100, even with the bytes present */
	len = mk_hdr(b, 0, 8 + 4 * 202);
	memset(b + 28, 0, 8 + 4 * 202);
	put16(b + 28, 101);
	put16(b + 30, 101);
	fake_host_send(CH_HB, b, len, 4);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	/* shorter than the negotiate header: header-only failure */
	len = mk_hdr(b, 0, 4);
	fake_host_send(CH_HB, b, len, 5);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	assert_int_equal(rp.len, 28);
	/* icmsgsize claims more than was sent */
	len = mk_nego(b, 1, one, 1, hb);
	put16(b + 18, 200);
	fake_host_send(CH_HB, b, len, 6);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);

	assert_int_equal(st(IC_SVC_HEARTBEAT).is_malformed, 6);
	/* Still negotiated at 3.0 and alive. */
	assert_true(st(IC_SVC_HEARTBEAT).is_negotiated);
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 40);
	memset(b + 28, 0, 40);
	put64(b + 28, 41);
	fake_host_send(CH_HB, b, len, 7);
	must_reply(CH_HB);
	assert_int_equal(r_status(), 0);
	seq = get64(rp.b + 28);
	assert_int_equal(seq, 42);
	teardown(NULL);
}

/* A renegotiation (the host starting over) replaces the versions. */
static void test_renegotiate(void **state)
{
	(void)state;
	start(FAKE_DEFER_NONE);
	negotiate(CH_TS, 4, 0);
	assert_int_equal(st(IC_SVC_TIMESYNC).is_msg_major, 4);
	negotiate(CH_TS, 3, 0);
	assert_int_equal(st(IC_SVC_TIMESYNC).is_msg_major, 3);
	assert_int_equal(st(IC_SVC_TIMESYNC).is_negotiations, 2);
	teardown(NULL);
}

/* ---- framework-level abuse ---- */

static void test_framework_abuse(void **state)
{
	uint8_t b[256];
	uint32_t len;
	struct ic_stats s;

	(void)state;
	start(FAKE_DEFER_NONE);

	/* A service message before negotiation: refused. */
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 40);
	memset(b + 28, 0, 40);
	fake_host_send(CH_HB, b, len, 9);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	assert_int_equal(rp.len, 28);
	assert_int_equal(st(IC_SVC_HEARTBEAT).is_not_negotiated, 1);
	assert_int_equal(ic_heartbeat_last_seq(ics), 0);

	negotiate(CH_HB, 3, 0);
	/* Shorter than the IC header: no header to answer, dropped. */
	fake_host_send(CH_HB, b, 20, 10);
	assert_int_equal(fake_host_pending(CH_HB), 0);
	/* Unknown message type on the heartbeat channel. */
	len = mk_hdr(b, 42, 8);
	fake_host_send(CH_HB, b, len, 11);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	/* A KVP message on the heartbeat channel. */
	len = mk_hdr(b, IC_MSGTYPE_KVPEXCHANGE, 8);
	fake_host_send(CH_HB, b, len, 12);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	/* A "response" from the host: never answered. */
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 40);
	b[25] = 0x5;
	fake_host_send(CH_HB, b, len, 13);
	assert_int_equal(fake_host_pending(CH_HB), 0);
	/* icmsgsize past the packet. */
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 40);
	put16(b + 18, 4000);
	fake_host_send(CH_HB, b, len, 14);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	/* Not an inband packet. */
	fake_host_send_type(CH_HB, VMBUS_PACKET_TYPE_COMP, b, len, 15);
	assert_int_equal(fake_host_pending(CH_HB), 0);

	s = st(IC_SVC_HEARTBEAT);
	assert_int_equal(s.is_dropped, 2);
	assert_int_equal(s.is_unknown, 3);
	assert_int_equal(s.is_malformed, 3);
	assert_int_equal(ic_heartbeat_last_seq(ics), 0);
	teardown(NULL);
}

/* ---- heartbeat ---- */

static void test_heartbeat(void **state)
{
	uint8_t b[128];
	uint32_t len;

	(void)state;
	start_negotiated(FAKE_DEFER_NONE);
	/* 100 heartbeats, L/F 40-byte body then V's 16-byte body. */
	for (uint64_t i = 0; i < 100; i++) {
		uint32_t body = (i & 1) ? 16 : 40;

		len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, body);
		memset(b + 28, 0xA5, body);
		put64(b + 28, 1000 + i);
		fake_host_send(CH_HB, b, len, 500 + i);
		must_reply(CH_HB);
		assert_int_equal(rp.tid, 500 + i);
		assert_int_equal(r_status(), 0);
		assert_int_equal(rp.len, 28 + body);
		assert_int_equal(get64(rp.b + 28), 1000 + i + 1);
		/* The rest is the host's bytes, echoed. */
		assert_int_equal(rp.b[36], 0xA5);
	}
	assert_int_equal(ic_heartbeat_last_seq(ics), 1099);
	/* The sequence number wraps. */
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 40);
	put64(b + 28, UINT64_MAX);
	fake_host_send(CH_HB, b, len, 1);
	must_reply(CH_HB);
	assert_int_equal(get64(rp.b + 28), 0);

	/* Application state, when the OS set one. */
	ic_heartbeat_set_app_state(ics, IC_HEARTBEAT_APP_HEALTHY);
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 16);
	memset(b + 28, 0, 16);
	fake_host_send(CH_HB, b, len, 2);
	must_reply(CH_HB);
	assert_int_equal(get32(rp.b + 36), IC_HEARTBEAT_APP_HEALTHY);

	/* Too short for seq_num: E_FAIL, last_seq unchanged. */
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 4);
	fake_host_send(CH_HB, b, len, 3);
	must_reply(CH_HB);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	assert_int_equal(ic_heartbeat_last_seq(ics), 0);
	assert_int_equal(st(IC_SVC_HEARTBEAT).is_failed_replies, 1);
	teardown(NULL);
}

/* ---- shutdown ---- */

static uint32_t mk_shutdown(uint8_t *b, uint32_t flags, const char *text)
{
	uint32_t len = mk_hdr(b, IC_MSGTYPE_SHUTDOWN, 2060);

	memset(b + 28, 0, 2060);
	put32(b + 28, 0x80000000u);
	put32(b + 32, 30);
	put32(b + 36, flags);
	/* The text as UTF-16LE. */
	for (size_t i = 0; text && text[i]; i++)
		b[40 + 2 * i] = (uint8_t)text[i];
	return len;
}

static void test_shutdown_actions(void **state)
{
	uint8_t b[4096];
	uint32_t len;
	struct ic_shutdown_status ss;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	len = mk_shutdown(b, 0, "maintenance");
	fake_host_send(CH_SD, b, len, 21);
	must_reply(CH_SD);
	assert_int_equal(r_status(), 0);
	assert_int_equal(rp.len, 2088);
	/* Answer first, act after (in the deferred work). */
	assert_int_equal(fake_port.fp_power_offs, 0);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_power_offs, 1);
	assert_true(fake_port.fp_replies_at_action >= 1);
	assert_int_equal(ic_shutdown_get_status(ics, &ss), 0);
	assert_string_equal(ss.ss_last_message, "maintenance");
	assert_int_equal(ss.ss_last_reason, 0x80000000u);

	len = mk_shutdown(b, IC_SHUTDOWN_FLAG_FORCE, NULL);
	fake_host_send(CH_SD, b, len, 22);
	must_reply(CH_SD);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_power_offs, 2);

	len = mk_shutdown(b, IC_SHUTDOWN_FLAG_RESTART, NULL);
	fake_host_send(CH_SD, b, len, 23);
	must_reply(CH_SD);
	assert_int_equal(r_status(), 0);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_reboots, 1);

	len = mk_shutdown(b, IC_SHUTDOWN_FLAG_RESTART | IC_SHUTDOWN_FLAG_FORCE,
			  NULL);
	fake_host_send(CH_SD, b, len, 24);
	must_reply(CH_SD);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_reboots, 2);
	teardown(NULL);
}

/* Hostile-host item 20: unknown flags, short bodies, hibernate where not
 * available: E_FAIL and nothing happens. */
static void test_shutdown_refused(void **state)
{
	static const uint32_t bad[] = { 0x6, 0x7, 0x8, 0x10, 0x80000000u,
					0xFFFFFFFFu, IC_SHUTDOWN_FLAG_HIBERNATE };
	uint8_t b[4096];
	uint32_t len;
	struct ic_shutdown_status ss;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = mk_shutdown(b, bad[i], NULL);
		fake_host_send(CH_SD, b, len, 30 + i);
		must_reply(CH_SD);
		assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	}
	/* Body shorter than the 12 bytes before the text. */
	len = mk_hdr(b, IC_MSGTYPE_SHUTDOWN, 8);
	fake_host_send(CH_SD, b, len, 40);
	must_reply(CH_SD);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	/* Only the fixed part (no text) is fine. */
	len = mk_hdr(b, IC_MSGTYPE_SHUTDOWN, 12);
	memset(b + 28, 0, 12);
	fake_host_send(CH_SD, b, len, 41);
	must_reply(CH_SD);
	assert_int_equal(r_status(), 0);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_power_offs, 1);
	assert_int_equal(fake_port.fp_reboots, 0);
	assert_int_equal(ic_shutdown_get_status(ics, &ss), 0);
	assert_int_equal(ss.ss_refused, 8);
	assert_int_equal(ss.ss_accepted, 1);
	teardown(NULL);
}

static int hib_calls;
static enum ic_power_action hib_last;

static int t_action(void *arg, enum ic_power_action a)
{
	(void)arg;
	hib_calls++;
	hib_last = a;
	return 0;
}

static void test_shutdown_hibernate(void **state)
{
	uint8_t b[4096];
	uint32_t len;

	(void)state;
	cfg.icc_hibernate = true;
	cfg.icc_shutdown_action = t_action;
	hib_calls = 0;
	/* 3.1: no hibernate yet. */
	start(FAKE_DEFER_NONE);
	negotiate(CH_SD, 3, 1);
	len = mk_shutdown(b, IC_SHUTDOWN_FLAG_HIBERNATE, NULL);
	fake_host_send(CH_SD, b, len, 50);
	must_reply(CH_SD);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	assert_int_equal(hib_calls, 0);
	/* 3.2: the OS hook hibernates. */
	negotiate(CH_SD, 3, 2);
	fake_host_send(CH_SD, b, len, 51);
	must_reply(CH_SD);
	assert_int_equal(r_status(), 0);
	assert_int_equal(hib_calls, 1);
	assert_int_equal(hib_last, IC_POWER_HIBERNATE);
	/* The hook also takes power off. */
	len = mk_shutdown(b, 0, NULL);
	fake_host_send(CH_SD, b, len, 52);
	must_reply(CH_SD);
	assert_int_equal(hib_calls, 2);
	assert_int_equal(hib_last, IC_POWER_OFF);
	assert_int_equal(fake_port.fp_power_offs, 0);
	teardown(NULL);
}

/* ---- time sync ---- */

#define T1970 116444736000000000ull
/* The fake guest wall clock at start: 1700000000 s after 1970. */
#define WALL0_100NS (T1970 + 17000000000000000ull)

static uint32_t mk_ts4(uint8_t *b, uint64_t parent, uint64_t ref,
		       uint8_t flags)
{
	uint32_t len = mk_hdr(b, IC_MSGTYPE_TIMESYNC, 24);

	memset(b + 28, 0, 24);
	put64(b + 28, parent);
	put64(b + 36, ref);
	b[44] = flags;
	return len;
}

static uint32_t mk_ts3(uint8_t *b, uint64_t parent, uint8_t flags)
{
	uint32_t len = mk_hdr(b, IC_MSGTYPE_TIMESYNC, 28);

	memset(b + 28, 0, 28);
	put64(b + 28, parent);
	put64(b + 44, 1234);
	b[52] = flags;
	return len;
}

static void test_timesync_v4(void **state)
{
	uint8_t b[256];
	uint32_t len;
	uint64_t host = WALL0_100NS + 36000000000ull; /* guest 1 h behind */
	struct ic_timesync_status ts;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	fake_port.fp_ref = 5000000;	/* 0.5 s since partition start */
	len = mk_ts4(b, host, 4000000, IC_TIMESYNC_FLAG_SYNC);
	fake_host_send(CH_TS, b, len, 60);
	must_reply(CH_TS);
	assert_int_equal(r_status(), 0);
	assert_int_equal(rp.len, 52);
	/* The echo keeps the host's fields. */
	assert_int_equal(get64(rp.b + 28), host);
	assert_int_equal(fake_port.fp_steps, 0);
	fake_run_deferred();
	/* parent + (ref now - ref then) = host + 0.1 s, in unix ns. */
	assert_int_equal(fake_port.fp_steps, 1);
	assert_int_equal(fake_port.fp_last_step,
			 (int64_t)(host + 1000000 - T1970) * 100);

	/* A sample 2 ms ahead: slewed, not stepped. */
	fake_port.fp_ref = 6000000;
	len = mk_ts4(b, (uint64_t)(fake_port.fp_wall_ns / 100) + T1970 + 20000,
		     6000000, IC_TIMESYNC_FLAG_SAMPLE);
	fake_host_send(CH_TS, b, len, 61);
	must_reply(CH_TS);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_slews, 1);
	assert_int_equal(fake_port.fp_last_slew, 2000000);

	/* A sample 10 s off: stepped (icc_sample_step_ns default 5 s). */
	len = mk_ts4(b, (uint64_t)(fake_port.fp_wall_ns / 100) + T1970 +
		     100000000ull, 6000000, IC_TIMESYNC_FLAG_SAMPLE);
	fake_host_send(CH_TS, b, len, 62);
	must_reply(CH_TS);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_steps, 2);

	/* A probe (no flag) only answers. */
	len = mk_ts4(b, host, 6000000, IC_TIMESYNC_FLAG_PROBE);
	fake_host_send(CH_TS, b, len, 63);
	must_reply(CH_TS);
	assert_int_equal(r_status(), 0);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_steps + fake_port.fp_slews, 3);

	/* Two samples before the work runs: the newer wins. */
	len = mk_ts4(b, (uint64_t)(fake_port.fp_wall_ns / 100) + T1970 + 10,
		     6000000, IC_TIMESYNC_FLAG_SAMPLE);
	fake_host_send(CH_TS, b, len, 64);
	len = mk_ts4(b, (uint64_t)(fake_port.fp_wall_ns / 100) + T1970 + 30,
		     6000000, IC_TIMESYNC_FLAG_SAMPLE);
	fake_host_send(CH_TS, b, len, 65);
	must_reply(CH_TS);
	must_reply(CH_TS);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_last_slew, 3000);
	assert_int_equal(ic_timesync_get_status(ics, &ts), 0);
	assert_int_equal(ts.ts_coalesced, 1);
	assert_int_equal(ts.ts_syncs, 1);
	assert_int_equal(ts.ts_samples, 5);

	/* A reference time from the future is not trusted: the receive
	 * time is used instead, and counted. */
	len = mk_ts4(b, host, 99000000000ull, IC_TIMESYNC_FLAG_SYNC);
	fake_host_send(CH_TS, b, len, 66);
	must_reply(CH_TS);
	fake_port.fp_now_ns += 3000;	/* 3 us later */
	fake_run_deferred();
	assert_int_equal(fake_port.fp_last_step, (int64_t)(host + 30 - T1970) * 100);
	assert_int_equal(ic_timesync_get_status(ics, &ts), 0);
	assert_int_equal(ts.ts_clock_errors, 1);
	teardown(NULL);
}

static void test_timesync_v3(void **state)
{
	uint8_t b[256];
	uint32_t len;
	uint64_t host = WALL0_100NS - 5000000000ull;

	(void)state;
	start(FAKE_DEFER_QUEUE);
	negotiate(CH_TS, 3, 0);
	len = mk_ts3(b, host, IC_TIMESYNC_FLAG_SYNC);
	fake_host_send(CH_TS, b, len, 70);
	must_reply(CH_TS);
	assert_int_equal(r_status(), 0);
	assert_int_equal(rp.len, 56);
	fake_port.fp_now_ns += 500000;	/* applied 0.5 ms after receipt */
	fake_run_deferred();
	assert_int_equal(fake_port.fp_last_step,
			 (int64_t)(host - T1970) * 100 + 500000);
	/* A v4-sized message on a 3.0 channel is short for v1-3. */
	len = mk_ts4(b, host, 0, IC_TIMESYNC_FLAG_SYNC);
	fake_host_send(CH_TS, b, len, 71);
	must_reply(CH_TS);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	teardown(NULL);
}

/* Hostile-host item 20: bad times and short bodies change nothing. */
static void test_timesync_refused(void **state)
{
	uint8_t b[256];
	uint32_t len;
	struct ic_timesync_status ts;
	const uint64_t bad[] = {
		0, T1970 - 1, WALL0_100NS + 36525ull * 86400 * 10000000 + 10000000,
		UINT64_MAX, T1970 + (uint64_t)INT64_MAX / 100 + 1,
	};

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = mk_ts4(b, bad[i], 0, IC_TIMESYNC_FLAG_SYNC);
		fake_host_send(CH_TS, b, len, 80 + i);
		must_reply(CH_TS);
		assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	}
	len = mk_ts4(b, WALL0_100NS, 0, IC_TIMESYNC_FLAG_SYNC);
	put16(b + 18, 10);	/* body too short for v4 */
	fake_host_send(CH_TS, b, 38, 90);
	must_reply(CH_TS);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	fake_run_deferred();
	assert_int_equal(fake_port.fp_steps + fake_port.fp_slews, 0);
	assert_int_equal(ic_timesync_get_status(ics, &ts), 0);
	assert_int_equal(ts.ts_rejected, 5);
	assert_int_equal(ts.ts_syncs, 0);
	assert_int_equal(ts.ts_last_parent_time, 0);
	/* Just inside the window (99 years ahead) is accepted. */
	len = mk_ts4(b, WALL0_100NS + 99ull * 36525 * 864000000000ull / 100, 0,
		     IC_TIMESYNC_FLAG_PROBE);
	fake_host_send(CH_TS, b, len, 91);
	must_reply(CH_TS);
	assert_int_equal(r_status(), 0);
	teardown(NULL);
}

static void test_timesync_passive(void **state)
{
	uint8_t b[256];
	uint32_t len;

	(void)state;
	cfg.icc_timesync_passive = true;
	start_negotiated(FAKE_DEFER_NONE);
	len = mk_ts4(b, WALL0_100NS + 1000000000ull, 0, IC_TIMESYNC_FLAG_SYNC);
	fake_host_send(CH_TS, b, len, 95);
	must_reply(CH_TS);
	assert_int_equal(r_status(), 0);
	assert_int_equal(fake_port.fp_steps, 0);
	teardown(NULL);
}

/* ---- KVP ---- */

/* ASCII -> UTF-16LE with NUL; returns bytes incl. the NUL. */
static uint32_t u16(uint8_t *dst, const char *s)
{
	uint32_t n = 0;

	for (; *s; s++, n += 2) {
		dst[n] = (uint8_t)*s;
		dst[n + 1] = 0;
	}
	dst[n] = dst[n + 1] = 0;
	return n + 2;
}

/* UTF-16LE (ASCII range) -> char*. */
static const char *asc(const uint8_t *p, uint32_t size)
{
	static char out[2048];
	uint32_t i;

	for (i = 0; 2 * i + 1 < size && i < sizeof(out) - 1 && p[2 * i]; i++)
		out[i] = (char)p[2 * i];
	out[i] = 0;
	return out;
}

static uint32_t mk_kvp(uint8_t *b, uint8_t op, uint8_t pool)
{
	uint32_t body;

	switch (op) {
	case KVP_OP_DELETE: body = 548 - 28; break;
	case KVP_OP_ENUMERATE: body = 2608 - 28; break;
	case KVP_OP_GET_IP_INFO: body = 7456 - 28; break;
	default: body = 2604 - 28; break;
	}
	memset(b, 0, 28 + body);
	mk_hdr(b, IC_MSGTYPE_KVPEXCHANGE, body);
	b[28] = op;
	b[29] = pool;
	return 28 + body;
}

static uint32_t mk_kvp_set(uint8_t *b, uint8_t pool, const char *k,
			   const char *v)
{
	uint32_t len = mk_kvp(b, KVP_OP_SET, pool);

	put32(b + 32, KVP_REG_SZ);
	put32(b + 36, u16(b + 44, k));
	put32(b + 40, u16(b + 556, v));
	return len;
}

static uint32_t mk_kvp_get(uint8_t *b, uint8_t pool, const char *k)
{
	uint32_t len = mk_kvp(b, KVP_OP_GET, pool);

	put32(b + 36, u16(b + 44, k));
	return len;
}

static uint32_t mk_kvp_del(uint8_t *b, uint8_t pool, const char *k)
{
	uint32_t len = mk_kvp(b, KVP_OP_DELETE, pool);

	put32(b + 32, u16(b + 36, k));
	return len;
}

static uint32_t mk_kvp_enum(uint8_t *b, uint8_t pool, uint32_t index)
{
	uint32_t len = mk_kvp(b, KVP_OP_ENUMERATE, pool);

	put32(b + 32, index);
	return len;
}

static uint8_t kb[8192];
static uint64_t ktid = 100;

static uint32_t kvp_do(uint32_t len)
{
	fake_host_send(CH_KVP, kb, len, ++ktid);
	fake_run_deferred();
	must_reply(CH_KVP);
	assert_int_equal(rp.tid, ktid);
	assert_int_equal(rp.len, len);
	return r_status();
}

static void test_kvp_ops(void **state)
{
	char v[256], k[256];
	uint32_t type;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	/* SET in the external pool, read it in the guest. */
	assert_int_equal(kvp_do(mk_kvp_set(kb, KVP_POOL_EXTERNAL, "Color",
					   "blue")), 0);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_EXTERNAL, "Color", &type, v,
				    sizeof(v)), 4);
	assert_string_equal(v, "blue");
	assert_int_equal(type, KVP_REG_SZ);
	assert_int_equal(kvp_changed_calls, 1);
	assert_string_equal(kvp_changed_key, "Color");
	assert_int_equal(kvp_saves, 1);
	/* Replace. */
	assert_int_equal(kvp_do(mk_kvp_set(kb, KVP_POOL_EXTERNAL, "Color",
					   "green")), 0);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_EXTERNAL, "Color", NULL, v,
				    sizeof(v)), 5);
	/* GET from the host. */
	assert_int_equal(kvp_do(mk_kvp_get(kb, KVP_POOL_EXTERNAL, "Color")), 0);
	assert_int_equal(get32(rp.b + 32), KVP_REG_SZ);
	assert_int_equal(get32(rp.b + 40), 12);
	assert_string_equal(asc(rp.b + 556, 2048), "green");
	/* A u32 and a u64. */
	mk_kvp_set(kb, KVP_POOL_AUTO_EXTERNAL, "Count", "");
	put32(kb + 32, KVP_REG_U32);
	put32(kb + 40, 4);
	put32(kb + 556, 123456);
	assert_int_equal(kvp_do(2604), 0);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_AUTO_EXTERNAL, "Count", &type,
				    v, sizeof(v)), 6);
	assert_string_equal(v, "123456");
	assert_int_equal(type, KVP_REG_U32);
	mk_kvp_set(kb, KVP_POOL_EXTERNAL, "Big", "");
	put32(kb + 32, KVP_REG_U64);
	put32(kb + 40, 8);
	put64(kb + 556, 1ull << 40);
	assert_int_equal(kvp_do(2604), 0);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_EXTERNAL, "Big", NULL, v,
				    sizeof(v)), 13);
	assert_string_equal(v, "1099511627776");
	/* ENUMERATE the external pool: Color, Big, then the end. */
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_EXTERNAL, 0)), 0);
	assert_string_equal(asc(rp.b + 48, 512), "Color");
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_EXTERNAL, 1)), 0);
	assert_string_equal(asc(rp.b + 48, 512), "Big");
	assert_int_equal(get32(rp.b + 36), KVP_REG_U64);
	assert_int_equal(get64(rp.b + 560), 1ull << 40);
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_EXTERNAL, 2)),
			 IC_STATUS_NO_MORE_ITEMS);
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_EXTERNAL,
					    0xFFFFFFFFu)),
			 IC_STATUS_NO_MORE_ITEMS);
	/* DELETE. */
	assert_int_equal(kvp_do(mk_kvp_del(kb, KVP_POOL_EXTERNAL, "Color")), 0);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_EXTERNAL, "Color", NULL, v,
				    sizeof(v)), -VMBUS_ENOENT);
	assert_int_equal(kvp_do(mk_kvp_del(kb, KVP_POOL_EXTERNAL, "Color")),
			 IC_STATUS_E_FAIL);
	assert_int_equal(kvp_do(mk_kvp_get(kb, KVP_POOL_EXTERNAL, "Color")),
			 IC_STATUS_E_FAIL);
	/* Guest-side enumerate sees Big at 0 now. */
	assert_int_equal(ic_kvp_enumerate(ics, KVP_POOL_EXTERNAL, 0, k,
					  sizeof(k), v, sizeof(v)), 0);
	assert_string_equal(k, "Big");
	/* IP info: not supported, answered. */
	assert_int_equal(kvp_do(mk_kvp(kb, KVP_OP_GET_IP_INFO, 0)),
			 IC_STATUS_NOT_SUPPORTED);
	teardown(NULL);
}

static void test_kvp_auto_and_guest_pool(void **state)
{
	static const char *const keys[] = {
		"FullyQualifiedDomainName", "IntegrationServicesVersion",
		"NetworkAddressIPv4", "NetworkAddressIPv6", "OSBuildNumber",
		"OSName", "OSMajorVersion", "OSMinorVersion", "OSVersion",
		"ProcessorArchitecture",
	};
	static const char *const vals[] = {
		"guest.example", IC_VERSION_STRING, "192.0.2.7", "2001:db8::7",
		"42", "vmbus-os", "1", "2", "1.2.3", "x86_64",
	};
	char v[256];
	uint64_t ft;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	for (uint32_t i = 0; i < 10; i++) {
		assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_AUTO, i)), 0);
		assert_string_equal(asc(rp.b + 48, 512), keys[i]);
		assert_string_equal(asc(rp.b + 560, 2048), vals[i]);
		assert_int_equal(get32(rp.b + 36), KVP_REG_SZ);
	}
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_AUTO, 10)),
			 IC_STATUS_NO_MORE_ITEMS);
	assert_int_equal(kvp_do(mk_kvp_get(kb, KVP_POOL_AUTO, "OSName")), 0);
	assert_string_equal(asc(rp.b + 556, 2048), "vmbus-os");
	/* The auto pool is the guest's: no SET or DELETE from the host. */
	assert_int_equal(kvp_do(mk_kvp_set(kb, KVP_POOL_AUTO, "OSName", "x")),
			 IC_STATUS_E_FAIL);
	assert_int_equal(kvp_do(mk_kvp_del(kb, KVP_POOL_AUTO, "OSName")),
			 IC_STATUS_E_FAIL);

	/* The guest's clock, in the guest pool at index 0. */
	fake_port.fp_wall_ns = 1700000000123456700ll;
	assert_int_equal(kvp_do(mk_kvp_get(kb, KVP_POOL_GUEST,
					   IC_KVP_KEY_GUEST_TIME)), 0);
	ft = strtoull(asc(rp.b + 556, 2048), NULL, 10);
	assert_int_equal(ft, T1970 + 17000000001234567ull);
	assert_int_equal(kvp_do(mk_kvp_set(kb, KVP_POOL_GUEST,
					   IC_KVP_KEY_GUEST_TIME, "0")),
			 IC_STATUS_E_FAIL);
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_GUEST, IC_KVP_KEY_GUEST_TIME,
				    "0"), -VMBUS_EINVAL);
	/* What the guest publishes, the host enumerates after the time. */
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_GUEST, "Role", "web"), 0);
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_GUEST, 0)), 0);
	assert_string_equal(asc(rp.b + 48, 512), IC_KVP_KEY_GUEST_TIME);
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_GUEST, 1)), 0);
	assert_string_equal(asc(rp.b + 48, 512), "Role");
	assert_string_equal(asc(rp.b + 560, 2048), "web");
	assert_int_equal(kvp_do(mk_kvp_enum(kb, KVP_POOL_GUEST, 2)),
			 IC_STATUS_NO_MORE_ITEMS);
	/* Guest API limits. */
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_EXTERNAL, "a", "b"),
			 -VMBUS_EINVAL);
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_GUEST, "", "b"),
			 -VMBUS_EINVAL);
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_GUEST, "bad\xff", "b"),
			 -VMBUS_EINVAL);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_GUEST, "Role", NULL, v, 3),
			 -VMBUS_ENOBUFS);
	assert_int_equal(ic_kvp_get(ics, 9, "Role", NULL, v, sizeof(v)),
			 -VMBUS_EINVAL);
	assert_int_equal(ic_kvp_delete(ics, KVP_POOL_GUEST, "Role"), 0);
	assert_int_equal(ic_kvp_delete(ics, KVP_POOL_GUEST, "Role"),
			 -VMBUS_ENOENT);
	/* UTF-8 round trip through UTF-16 (incl. a surrogate pair). */
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_GUEST, "n\xc3\xa4me",
				    "\xf0\x9f\x98\x80!"), 0);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_GUEST, "n\xc3\xa4me", NULL,
				    v, sizeof(v)), 5);
	assert_string_equal(v, "\xf0\x9f\x98\x80!");
	teardown(NULL);
}

/* Hostile-host item 20 for KVP: each refused, store unchanged. */
static void test_kvp_refused(void **state)
{
	struct ic_kvp_status ks;
	uint32_t len;
	int n = 0;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	assert_int_equal(kvp_do(mk_kvp_set(kb, KVP_POOL_EXTERNAL, "Keep", "me")),
			 0);
#define REFUSED(expr)                                                     \
	do {                                                              \
		assert_int_equal((expr), IC_STATUS_E_FAIL);               \
		n++;                                                      \
	} while (0)
	/* pool out of range, and pool 4 (never on the wire) */
	REFUSED(kvp_do(mk_kvp_set(kb, 5, "K", "V")));
	REFUSED(kvp_do(mk_kvp_set(kb, KVP_POOL_AUTO_INTERNAL, "K", "V")));
	REFUSED(kvp_do(mk_kvp_enum(kb, 200, 0)));
	/* key_size larger than the field, odd, zero, only a NUL */
	mk_kvp_set(kb, 0, "K", "V");
	put32(kb + 36, 514);
	REFUSED(kvp_do(2604));
	mk_kvp_set(kb, 0, "K", "V");
	put32(kb + 36, 3);
	REFUSED(kvp_do(2604));
	mk_kvp_set(kb, 0, "K", "V");
	put32(kb + 36, 0);
	REFUSED(kvp_do(2604));
	mk_kvp_set(kb, 0, "", "V");
	REFUSED(kvp_do(2604));
	/* key not NUL-terminated within key_size */
	len = mk_kvp_set(kb, 0, "K", "V");
	memset(kb + 44, 'A', 512);
	put32(kb + 36, 512);
	REFUSED(kvp_do(len));
	/* value: larger than the field, odd, not terminated, wrong width */
	mk_kvp_set(kb, 0, "K", "V");
	put32(kb + 40, 2050);
	REFUSED(kvp_do(2604));
	mk_kvp_set(kb, 0, "K", "V");
	put32(kb + 40, 5);
	REFUSED(kvp_do(2604));
	len = mk_kvp_set(kb, 0, "K", "V");
	memset(kb + 556, 'B', 2048);
	put32(kb + 40, 2048);
	REFUSED(kvp_do(len));
	mk_kvp_set(kb, 0, "K", "V");
	put32(kb + 32, KVP_REG_U32);
	put32(kb + 40, 8);
	REFUSED(kvp_do(2604));
	mk_kvp_set(kb, 0, "K", "V");
	put32(kb + 32, 99);		/* unknown value type */
	REFUSED(kvp_do(2604));
	/* delete with a bad key size */
	mk_kvp_del(kb, 0, "Keep");
	put32(kb + 32, 1000);
	REFUSED(kvp_do(548));
	/* unknown operation */
	mk_kvp(kb, KVP_OP_GET, 0);
	kb[28] = 9;
	REFUSED(kvp_do(2604));
	/* each operation shorter than its struct */
	len = mk_kvp_set(kb, 0, "K", "V");
	put16(kb + 18, 2000);
	put32(kb + 4, 2020);
	REFUSED(kvp_do(2028));
	mk_kvp_enum(kb, 0, 0);
	put16(kb + 18, 2576);		/* a GET-sized ENUMERATE */
	REFUSED(kvp_do(2604));
	mk_kvp_del(kb, 0, "Keep");
	put16(kb + 18, 500);
	REFUSED(kvp_do(528));
	len = mk_hdr(kb, IC_MSGTYPE_KVPEXCHANGE, 2);
	REFUSED(kvp_do(len));
#undef REFUSED
	assert_int_equal(ic_kvp_get_status(ics, &ks), 0);
	assert_int_equal(ks.ks_records, 1);
	assert_int_equal(ks.ks_host_sets, 1);
	assert_int_equal(ks.ks_host_deletes, 0);
	assert_int_equal(ks.ks_refused, n);
	assert_int_equal(kvp_saves, 1);
	assert_true(st(IC_SVC_KVP).is_malformed >= (uint64_t)n - 3);
	teardown(NULL);
}

static void test_kvp_busy_and_full(void **state)
{
	uint8_t b2[4096];
	uint32_t len;
	char key[16];
	struct ic_kvp_status ks;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	/* A second request while the first is still pending: refused at
	 * once; the first is answered when the work runs. */
	len = mk_kvp_set(kb, 0, "A", "1");
	fake_host_send(CH_KVP, kb, len, 1);
	mk_kvp_set(b2, 0, "B", "2");
	fake_host_send(CH_KVP, b2, len, 2);
	must_reply(CH_KVP);
	assert_int_equal(rp.tid, 2);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	fake_run_deferred();
	must_reply(CH_KVP);
	assert_int_equal(rp.tid, 1);
	assert_int_equal(r_status(), 0);
	/* Fill the store (8 records). */
	for (int i = 1; i < 8; i++) {
		snprintf(key, sizeof(key), "K%d", i);
		assert_int_equal(kvp_do(mk_kvp_set(kb, 0, key, "v")), 0);
	}
	assert_int_equal(kvp_do(mk_kvp_set(kb, 0, "Z", "v")),
			 IC_STATUS_DISK_FULL);
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_GUEST, "Z", "v"),
			 -VMBUS_ENOSPC);
	/* Replacing an existing key still works when full. */
	assert_int_equal(kvp_do(mk_kvp_set(kb, 0, "K3", "w")), 0);
	assert_int_equal(ic_kvp_get_status(ics, &ks), 0);
	assert_int_equal(ks.ks_busy, 1);
	assert_int_equal(ks.ks_records, 8);
	teardown(NULL);
}

static void test_kvp_persistence(void **state)
{
	char v[64];
	struct ic_kvp_status ks;

	(void)state;
	start_negotiated(FAKE_DEFER_QUEUE);
	assert_int_equal(kvp_do(mk_kvp_set(kb, KVP_POOL_EXTERNAL, "Kept",
					   "across reboot")), 0);
	assert_int_equal(kvp_do(mk_kvp_set(kb, KVP_POOL_AUTO_EXTERNAL,
					   "HostName", "hv1")), 0);
	assert_int_equal(ic_kvp_set(ics, KVP_POOL_GUEST, "Mine", "1"), 0);
	assert_int_equal(kvp_saves, 3);
	teardown(NULL);

	/* "Reboot": a new bus loads what was saved. */
	start_negotiated(FAKE_DEFER_QUEUE);
	assert_int_equal(ic_kvp_get(ics, KVP_POOL_EXTERNAL, "Kept", NULL, v,
				    sizeof(v)), 13);
	assert_string_equal(v, "across reboot");
	assert_int_equal(kvp_do(mk_kvp_get(kb, KVP_POOL_AUTO_EXTERNAL,
					   "HostName")), 0);
	assert_string_equal(asc(rp.b + 556, 2048), "hv1");
	assert_int_equal(ic_kvp_get_status(ics, &ks), 0);
	assert_int_equal(ks.ks_loaded, 3);
	assert_int_equal(ks.ks_load_errors, 0);
	teardown(NULL);

	/* A corrupt blob (one flipped byte) is dropped whole. */
	kvp_saved[40] ^= 0x20;
	start(FAKE_DEFER_QUEUE);
	assert_int_equal(ic_kvp_get_status(ics, &ks), 0);
	assert_int_equal(ks.ks_loaded, 0);
	assert_int_equal(ks.ks_load_errors, 1);
	assert_int_equal(ks.ks_records, 0);
	teardown(NULL);

	/* A truncated one too. */
	kvp_saved[40] ^= 0x20;
	kvp_saved_len -= 9;
	start(FAKE_DEFER_QUEUE);
	assert_int_equal(ic_kvp_get_status(ics, &ks), 0);
	assert_int_equal(ks.ks_records, 0);
	assert_int_equal(ks.ks_load_errors, 1);
	teardown(NULL);
}

/* ---- driver life cycle ---- */

static void test_lifecycle(void **state)
{
	uint8_t b[128];
	uint32_t len;
	int second, again;

	(void)state;
	start_negotiated(FAKE_DEFER_NONE);
	/* A second heartbeat channel is declined. */
	second = fake_offer(&HV_GUID_HEARTBEAT);
	assert_false(fake_chan_open(second));
	/* Rescind: the service detaches and forgets its negotiation. */
	fake_rescind(CH_HB);
	assert_false(st(IC_SVC_HEARTBEAT).is_attached);
	assert_false(st(IC_SVC_HEARTBEAT).is_negotiated);
	/* A new offer attaches again and needs a new negotiation. */
	again = fake_offer(&HV_GUID_HEARTBEAT);
	assert_true(fake_chan_open(again));
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 40);
	memset(b + 28, 0, 40);
	fake_host_send(again, b, len, 1);
	must_reply(again);
	assert_int_equal(r_status(), IC_STATUS_E_FAIL);
	negotiate(again, 3, 0);
	fake_host_send(again, b, len, 2);
	must_reply(again);
	assert_int_equal(r_status(), 0);
	teardown(NULL);
}

/* A NEGOTIATE that arrived before the channel was open (its event lost,
 * as when it races the core's enabling of the callback) is answered
 * right after the open. */
static void test_message_before_open(void **state)
{
	uint8_t b[256];
	const uint16_t msg[1][2] = { { 3, 0 } };
	uint32_t len;
	int ch;

	(void)state;
	bus = fake_reset(FAKE_DEFER_NONE);
	ch = fake_offer(&HV_GUID_HEARTBEAT);	/* no driver yet */
	len = mk_nego(b, 2, V_FW, 1, msg);
	fake_host_send(ch, b, len, 5);		/* queued, nobody told */
	assert_int_equal(fake_host_pending(ch), 0);
	assert_int_equal(ic_services_register(bus, &cfg, &ics), 0);
	assert_true(fake_chan_open(ch));
	must_reply(ch);
	assert_int_equal(rp.tid, 5);
	assert_int_equal(r_status(), 0);
	assert_true(st(IC_SVC_HEARTBEAT).is_negotiated);
	teardown(NULL);
}

static void test_defer_failure_and_send_error(void **state)
{
	uint8_t b[4096];
	uint32_t len;

	(void)state;
	start_negotiated(FAKE_DEFER_FAIL);
	/* The port cannot defer: the work runs inline, counted. */
	len = mk_shutdown(b, IC_SHUTDOWN_FLAG_RESTART, NULL);
	fake_host_send(CH_SD, b, len, 1);
	must_reply(CH_SD);
	assert_int_equal(fake_port.fp_reboots, 1);
	assert_int_equal(st(IC_SVC_SHUTDOWN).is_defer_failures, 1);
	/* A reply that cannot be sent is counted, nothing breaks. */
	fake_send_error(CH_HB, -VMBUS_EAGAIN);
	len = mk_hdr(b, IC_MSGTYPE_HEARTBEAT, 40);
	memset(b + 28, 0, 40);
	fake_host_send(CH_HB, b, len, 2);
	assert_int_equal(fake_host_pending(CH_HB), 0);
	assert_int_equal(st(IC_SVC_HEARTBEAT).is_send_errors, 1);
	fake_send_error(CH_HB, 0);
	fake_host_send(CH_HB, b, len, 3);
	must_reply(CH_HB);
	teardown(NULL);
}

static void test_register_subset_and_errors(void **state)
{
	struct ic_services *x = NULL;

	(void)state;
	bus = fake_reset(FAKE_DEFER_NONE);
	assert_int_equal(ic_services_register(NULL, NULL, &x), -VMBUS_EINVAL);
	cfg.icc_services = 0x10;
	assert_int_equal(ic_services_register(bus, &cfg, &x), -VMBUS_EINVAL);
	/* The first registration fails: nothing stays, nothing returned. */
	cfg.icc_services = IC_SVC_BIT(IC_SVC_HEARTBEAT);
	fake_fail_register(-VMBUS_ENOSPC);
	assert_int_equal(ic_services_register(bus, &cfg, &x), -VMBUS_ENOSPC);
	assert_null(x);
	/* Only heartbeat: the KVP class stays unbound. */
	assert_int_equal(ic_services_register(bus, &cfg, &ics), 0);
	assert_int_equal(fake_offer(&HV_GUID_HEARTBEAT), 0);
	assert_int_equal(fake_offer(&HV_GUID_KVP), 1);
	assert_true(fake_chan_open(0));
	assert_false(fake_chan_open(1));
	assert_int_equal(ic_kvp_get(ics, 0, "k", NULL, (char[4]){ 0 }, 4),
			 -VMBUS_ENODEV);
	teardown(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_negotiate_matrix, setup),
		cmocka_unit_test_setup(test_negotiate_abuse, setup),
		cmocka_unit_test_setup(test_renegotiate, setup),
		cmocka_unit_test_setup(test_framework_abuse, setup),
		cmocka_unit_test_setup(test_heartbeat, setup),
		cmocka_unit_test_setup(test_shutdown_actions, setup),
		cmocka_unit_test_setup(test_shutdown_refused, setup),
		cmocka_unit_test_setup(test_shutdown_hibernate, setup),
		cmocka_unit_test_setup(test_timesync_v4, setup),
		cmocka_unit_test_setup(test_timesync_v3, setup),
		cmocka_unit_test_setup(test_timesync_refused, setup),
		cmocka_unit_test_setup(test_timesync_passive, setup),
		cmocka_unit_test_setup(test_kvp_ops, setup),
		cmocka_unit_test_setup(test_kvp_auto_and_guest_pool, setup),
		cmocka_unit_test_setup(test_kvp_refused, setup),
		cmocka_unit_test_setup(test_kvp_busy_and_full, setup),
		cmocka_unit_test_setup(test_kvp_persistence, setup),
		cmocka_unit_test_setup(test_lifecycle, setup),
		cmocka_unit_test_setup(test_message_before_open, setup),
		cmocka_unit_test_setup(test_defer_failure_and_send_error, setup),
		cmocka_unit_test_setup(test_register_subset_and_errors, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
