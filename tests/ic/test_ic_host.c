/*
 * tests/ic/test_ic_host.c - the host IC VSPs (src/host/vsp/ic_*.c) against
 * a fake server (fake_host.c) and a guest played by this test with its own
 * parsers and builders, on the real event loop (timers are real, periods
 * are milliseconds; every wait is bounded and scaled by
 * VMBUS_TEST_TIME_SCALE, nothing asserts speed).
 *
 * Covers: the offered version lists per host generation (and AUTO from
 * the VMBus version), checking of the guest's negotiation answer,
 * heartbeat OK / no contact / lost, shutdown accepted / refused / deadline
 * power-off, time sync SYNC then SAMPLEs (v4 with reference time, v3),
 * KVP operations, walks, mirror, clock offset, and a bad guest (wrong
 * sequence numbers, bad flags and sizes, unsolicited answers, malformed KVP
 * records, a walk that never ends): counted, request failed, host alive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fake_host.h"
#include "host/log.h"
#include "host/loop.h"
#include "host/vmbus_server.h"
#include "host/vsp/ic_host.h"
#include "host/vsp/vsp.h"
#include "hv/guid.h"
#include "hv/icmsg.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/ic.h"

#ifndef VMBUS_TEST_TIME_SCALE
#define VMBUS_TEST_TIME_SCALE 1
#endif
#define MS 1000000ull

static struct hvs_loop *loop;
static struct hvs_vmbus *srv;
static struct hvs_ic *ic;
static struct hvs_ic_config cfg;
static int dev[HVS_IC_NSVC];

static uint64_t time_scale(void)
{
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");
	long v = s ? strtol(s, NULL, 10) : VMBUS_TEST_TIME_SCALE;

	return v > 0 ? (uint64_t)v : 1;
}

/* ---- byte helpers (the test's own) ---- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

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

static void asc(const uint8_t *p, uint32_t size, char *out, size_t osz)
{
	size_t i;

	for (i = 0; 2 * i + 1 < size && i + 1 < osz && p[2 * i]; i++)
		out[i] = (char)p[2 * i];
	out[i] = 0;
}

/* ---- the clocks the host reads ---- */

#define HOST_EPOCH_NS 1700000000000000000ll
static uint64_t ref_base;

static int64_t t_host_utc(void *arg)
{
	(void)arg;
	return HOST_EPOCH_NS + (int64_t)hvs_now_ns();
}

static uint64_t t_ref_time(void *arg)
{
	(void)arg;
	return (hvs_now_ns() - ref_base) / 100u;
}

static int power_offs;
static char power_why[64];

static void t_power_off(void *arg, const char *why)
{
	(void)arg;
	power_offs++;
	snprintf(power_why, sizeof(power_why), "%s", why);
}

/* ---- the guest this test plays ---- */

struct tg_rec {
	bool used;
	uint8_t pool;
	char key[64];
	uint32_t type;
	char val[256];
	uint64_t num;
};

static struct {
	bool silent[HVS_IC_NSVC];	/* never answer */
	bool manual[HVS_IC_NSVC];	/* the test reads this channel itself */
	bool no_common;			/* answer NEGOTIATE with 0/0 */
	int nego_bad;			/* 1 counts 2/1, 2 unoffered */
	int hb_bad;			/* 1 wrong seq, 2 bad status */
	uint32_t sd_status;
	int ts_status;
	int kvp_bad;			/* see serve_kvp */
	bool time_key;
	int64_t clock_off_ns;		/* guest clock - host clock */
	/* what the guest saw */
	uint16_t fw[HVS_IC_NSVC][2], msg[HVS_IC_NSVC][2];
	uint16_t offered_fw[8][2], offered_msg[HVS_IC_NSVC][8][2];
	uint16_t n_offered_fw, n_offered_msg[HVS_IC_NSVC];
	uint64_t hb_seen;
	uint32_t sd_flags, sd_reason, sd_timeout;
	char sd_text[64];
	uint32_t ts_n;
	uint8_t ts_flags[64];
	uint64_t ts_parent, ts_ref;
	uint32_t ts_len;
	struct tg_rec kvp[32];
} tg;

/* Versions the test guest speaks (its own lists). */
static const uint16_t tg_fw[][2] = { { 3, 0 }, { 1, 0 } };
static const uint16_t tg_svc[HVS_IC_NSVC][5][2] = {
	[HVS_IC_HEARTBEAT] = { { 3, 0 }, { 1, 0 } },
	[HVS_IC_SHUTDOWN] = { { 3, 2 }, { 3, 1 }, { 3, 0 }, { 1, 0 } },
	[HVS_IC_TIMESYNC] = { { 4, 0 }, { 3, 0 }, { 1, 0 } },
	[HVS_IC_KVP] = { { 4, 0 }, { 3, 0 }, { 1, 0 } },
};

static bool tg_pick(const uint8_t *list, uint16_t n, const uint16_t (*ours)[2],
		    uint16_t nours, uint16_t out[2])
{
	bool found = false;

	for (uint16_t i = 0; i < n; i++) {
		uint16_t ma = get16(list + 4 * i), mi = get16(list + 4 * i + 2);

		for (uint16_t k = 0; k < nours; k++)
			if (ours[k][0] == ma && ours[k][1] == mi &&
			    (!found || ma > out[0] ||
			     (ma == out[0] && mi > out[1]))) {
				out[0] = ma;
				out[1] = mi;
				found = true;
			}
	}
	return found;
}

static void respond(int s, uint8_t *b, uint32_t len, uint64_t tid)
{
	b[25] = 0x5;
	put32(b + 4, len - 8);
	put16(b + 18, (uint16_t)(len - 28));
	fh_reply(dev[s], b, len, tid);
}

static void serve_negotiate(int s, uint8_t *b, uint32_t len, uint64_t tid)
{
	uint16_t nf = get16(b + 28), nm = get16(b + 30), n = 0;
	uint16_t fw[2] = { 0, 0 }, msg[2] = { 0, 0 };

	assert_int_equal(len, 36 + 4 * (nf + nm));
	tg.n_offered_fw = nf;
	for (uint16_t i = 0; i < nf && i < 8; i++) {
		tg.offered_fw[i][0] = get16(b + 36 + 4 * i);
		tg.offered_fw[i][1] = get16(b + 38 + 4 * i);
	}
	tg.n_offered_msg[s] = nm;
	for (uint16_t i = 0; i < nm && i < 8; i++) {
		tg.offered_msg[s][i][0] = get16(b + 36 + 4 * (nf + i));
		tg.offered_msg[s][i][1] = get16(b + 38 + 4 * (nf + i));
	}
	while (n < 5 && tg_svc[s][n][0])
		n++;
	if (tg.no_common || !tg_pick(b + 36, nf, tg_fw, 2, fw) ||
	    !tg_pick(b + 36 + 4 * nf, nm, tg_svc[s], n, msg)) {
		put16(b + 28, 0);
		put16(b + 30, 0);
		put32(b + 20, IC_STATUS_E_FAIL);
		respond(s, b, 36, tid);
		return;
	}
	tg.fw[s][0] = fw[0];
	tg.fw[s][1] = fw[1];
	tg.msg[s][0] = msg[0];
	tg.msg[s][1] = msg[1];
	put16(b + 28, tg.nego_bad == 1 ? 2 : 1);
	put16(b + 30, 1);
	put16(b + 36, fw[0]);
	put16(b + 38, fw[1]);
	put16(b + 40, tg.nego_bad == 2 ? 7 : msg[0]);
	put16(b + 42, msg[1]);
	respond(s, b, 44, tid);
}

static struct tg_rec *tg_find(uint8_t pool, const char *key)
{
	for (int i = 0; i < 32; i++)
		if (tg.kvp[i].used && tg.kvp[i].pool == pool &&
		    !strcmp(tg.kvp[i].key, key))
			return &tg.kvp[i];
	return NULL;
}

static struct tg_rec *tg_nth(uint8_t pool, uint32_t idx)
{
	for (int i = 0; i < 32; i++)
		if (tg.kvp[i].used && tg.kvp[i].pool == pool && idx-- == 0)
			return &tg.kvp[i];
	return NULL;
}

static void tg_fill(uint8_t *rec, const char *key, uint32_t type,
		    const char *val, uint64_t num)
{
	memset(rec, 0, 2572);
	put32(rec, type);
	put32(rec + 4, u16(rec + 12, key));
	if (type == KVP_REG_U32) {
		put32(rec + 8, 4);
		put32(rec + 524, (uint32_t)num);
	} else if (type == KVP_REG_U64) {
		put32(rec + 8, 8);
		put64(rec + 524, num);
	} else {
		put32(rec + 8, u16(rec + 524, val));
	}
	switch (tg.kvp_bad) {
	case 1: put32(rec + 8, 5); break;		/* odd string size */
	case 2: put32(rec + 4, 0); break;		/* no key */
	case 3: put32(rec, 77); break;			/* unknown type */
	case 6: put32(rec + 8, 4000); break;		/* past the field */
	default: break;
	}
}

static void guest_time(char *out, size_t n)
{
	int64_t g = t_host_utc(NULL) + tg.clock_off_ns;

	snprintf(out, n, "%llu", (unsigned long long)(116444736000000000ull +
				 (uint64_t)(g / 100)));
}

static void serve_kvp(uint8_t *b, uint32_t len, uint64_t tid)
{
	uint8_t op = b[28], pool = b[29];
	char key[64], val[256];
	struct tg_rec *r;
	uint32_t status = 0;

	switch (op) {
	case KVP_OP_SET:
		assert_int_equal(len, 2604);
		asc(b + 44, get32(b + 36), key, sizeof(key));
		r = tg_find(pool, key);
		for (int i = 0; r == NULL && i < 32; i++)
			if (!tg.kvp[i].used)
				r = &tg.kvp[i];
		r->used = true;
		r->pool = pool;
		snprintf(r->key, sizeof(r->key), "%s", key);
		r->type = get32(b + 32);
		if (r->type == KVP_REG_U32)
			r->num = get32(b + 556);
		else if (r->type == KVP_REG_U64)
			r->num = get64(b + 556);
		else
			asc(b + 556, get32(b + 40), r->val, sizeof(r->val));
		break;
	case KVP_OP_GET:
		assert_int_equal(len, 2604);
		asc(b + 44, get32(b + 36), key, sizeof(key));
		if (tg.time_key && pool == 1 &&
		    !strcmp(key, IC_KVP_KEY_GUEST_TIME)) {
			guest_time(val, sizeof(val));
			tg_fill(b + 32, key, KVP_REG_SZ, val, 0);
			break;
		}
		r = tg_find(pool, key);
		if (r == NULL) {
			status = IC_STATUS_E_FAIL;
			break;
		}
		tg_fill(b + 32, r->key, r->type, r->val, r->num);
		break;
	case KVP_OP_DELETE:
		assert_int_equal(len, 548);
		asc(b + 36, get32(b + 32), key, sizeof(key));
		r = tg_find(pool, key);
		if (r)
			r->used = false;
		else
			status = IC_STATUS_E_FAIL;
		break;
	case KVP_OP_ENUMERATE: {
		uint32_t idx = get32(b + 32);

		assert_int_equal(len, 2608);
		if (tg.kvp_bad == 4) {		/* a walk that never ends */
			snprintf(key, sizeof(key), "k%u", idx);
			tg_fill(b + 36, key, KVP_REG_SZ, "x", 0);
			break;
		}
		if (tg.time_key && pool == 1) {
			if (idx == 0) {
				guest_time(val, sizeof(val));
				tg_fill(b + 36, IC_KVP_KEY_GUEST_TIME,
					KVP_REG_SZ, val, 0);
				break;
			}
			idx--;
		}
		r = tg_nth(pool, idx);
		if (r == NULL)
			status = IC_STATUS_NO_MORE_ITEMS;
		else
			tg_fill(b + 36, r->key, r->type, r->val, r->num);
		break;
	}
	default:
		status = IC_STATUS_NOT_SUPPORTED;
	}
	if (tg.kvp_bad == 5)
		b[28] ^= 1;			/* wrong operation echoed */
	put32(b + 20, status);
	respond(HVS_IC_KVP, b, len, tid);
}

/* Answer everything the host sent, as the test guest. */
static void serve(void)
{
	static uint8_t b[FH_PKT_MAX];
	uint32_t len;
	uint64_t tid;

	for (int s = 0; s < HVS_IC_NSVC; s++) {
		if (dev[s] < 0 || !fh_devs[dev[s]].fd_open || tg.manual[s])
			continue;
		while (fh_take(dev[s], b, &len, &tid) == 0) {
			uint16_t type;

			if (tg.silent[s])
				continue;
			assert_true(len >= 28);
			/* Every host request is a transaction (spec 4.1). */
			assert_int_equal(b[25], 0x3);
			assert_int_equal(get32(b), 1);
			assert_int_equal(get32(b + 4), len - 8);
			assert_int_equal(get16(b + 18), len - 28);
			assert_int_equal(b[24], 0);
			type = get16(b + 12);
			if (type == IC_MSGTYPE_NEGOTIATE) {
				serve_negotiate(s, b, len, tid);
				continue;
			}
			/* Service messages carry the negotiated versions. */
			assert_int_equal(get16(b + 8), tg.fw[s][0]);
			assert_int_equal(get16(b + 14), tg.msg[s][0]);
			assert_int_equal(get16(b + 16), tg.msg[s][1]);
			switch (type) {
			case IC_MSGTYPE_HEARTBEAT:
				assert_int_equal(len, 68);
				tg.hb_seen = get64(b + 28);
				put64(b + 28, tg.hb_seen + (tg.hb_bad == 1 ? 2 : 1));
				put32(b + 20, tg.hb_bad == 2 ? IC_STATUS_E_FAIL : 0);
				respond(s, b, len, tid);
				break;
			case IC_MSGTYPE_SHUTDOWN:
				assert_int_equal(len, 2088);
				tg.sd_reason = get32(b + 28);
				tg.sd_timeout = get32(b + 32);
				tg.sd_flags = get32(b + 36);
				asc(b + 40, 2048, tg.sd_text, sizeof(tg.sd_text));
				put32(b + 20, tg.sd_status);
				respond(s, b, len, tid);
				break;
			case IC_MSGTYPE_TIMESYNC:
				tg.ts_len = len;
				tg.ts_parent = get64(b + 28);
				if (len == 52) {
					tg.ts_ref = get64(b + 36);
					if (tg.ts_n < 64)
						tg.ts_flags[tg.ts_n] = b[44];
				} else {
					if (tg.ts_n < 64)
						tg.ts_flags[tg.ts_n] = b[52];
				}
				tg.ts_n++;
				put32(b + 20, (uint32_t)tg.ts_status);
				respond(s, b, len, tid);
				break;
			case IC_MSGTYPE_KVPEXCHANGE:
				serve_kvp(b, len, tid);
				break;
			default:
				fail_msg("host sent type %u", type);
			}
		}
	}
}

/* Run the loop, serving, until cond() or the (scaled) deadline. */
static bool run_until(bool (*cond)(void), uint64_t ms)
{
	uint64_t end = hvs_now_ns() + ms * MS * time_scale();

	for (;;) {
		serve();
		if (cond && cond())
			return true;
		if (hvs_now_ns() >= end)
			return cond == NULL;
		hvs_loop_run_once(loop, 2);
	}
}

static enum hvs_ic_neg neg(int s)
{
	struct hvs_ic_svc_status st;

	assert_int_equal(hvs_ic_get_status(ic, (enum hvs_ic_svc)s, &st), 0);
	return st.ss_neg;
}

static bool all_ready(void)
{
	for (int s = 0; s < HVS_IC_NSVC; s++)
		if (neg(s) != HVS_IC_NEG_DONE)
			return false;
	return true;
}

static void cfg_defaults(void)
{
	hvs_ic_config_init(&cfg);
	cfg.ic_loop = loop;
	cfg.ic_tick_ns = 2 * MS;
	cfg.ic_reply_timeout_ns = 80 * MS * time_scale();
	cfg.ic_heartbeat_period_ns = 10 * MS;
	cfg.ic_heartbeat_lost_ns = 150 * MS * time_scale();
	cfg.ic_timesync_period_ns = 15 * MS;
	cfg.ic_kvp_refresh_ns = 3600000 * MS;	/* only when asked */
	cfg.ic_host_utc_ns = t_host_utc;
	cfg.ic_ref_time = t_ref_time;
	cfg.ic_power_off = t_power_off;
	cfg.ic_no_host_info = true;
}

/* Server + ICs; open every channel; negotiate (unless told not to). */
static void start(uint32_t vmbus_version, bool open_all)
{
	srv = fh_reset(vmbus_version);
	assert_int_equal(hvs_ic_add(srv, &cfg, &ic), 0);
	dev[HVS_IC_HEARTBEAT] = fh_find(&HV_GUID_HEARTBEAT);
	dev[HVS_IC_SHUTDOWN] = fh_find(&HV_GUID_SHUTDOWN);
	dev[HVS_IC_TIMESYNC] = fh_find(&HV_GUID_TIMESYNC);
	dev[HVS_IC_KVP] = fh_find(&HV_GUID_KVP);
	if (!open_all)
		return;
	for (int s = 0; s < HVS_IC_NSVC; s++)
		assert_int_equal(fh_open(dev[s]), 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&tg, 0, sizeof(tg));
	power_offs = 0;
	ref_base = hvs_now_ns() - 1000;
	loop = hvs_loop_create();
	assert_non_null(loop);
	cfg_defaults();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fh_destroy_all();
	ic = NULL;
	hvs_loop_destroy(loop);
	loop = NULL;
	return 0;
}

/* ---- negotiation ---- */

struct gen_case {
	enum hvs_ic_gen gen;
	uint32_t vmbus;			/* for AUTO */
	uint16_t nfw, fw_hi[2];
	uint16_t n[HVS_IC_NSVC];
	uint16_t hi[HVS_IC_NSVC][2];	/* newest offered */
	uint16_t pick[HVS_IC_NSVC][2];	/* what our test guest picks */
};

static const struct gen_case gen_cases[] = {
	{ HVS_IC_GEN_WS2008, 0, 1, { 1, 0 }, { 1, 1, 1, 1 },
	  { { 1, 0 }, { 1, 0 }, { 1, 0 }, { 1, 0 } },
	  { { 1, 0 }, { 1, 0 }, { 1, 0 }, { 1, 0 } } },
	{ HVS_IC_GEN_WS2008R2, 0, 2, { 3, 0 }, { 2, 2, 2, 2 },
	  { { 3, 0 }, { 3, 0 }, { 3, 0 }, { 3, 0 } },
	  { { 3, 0 }, { 3, 0 }, { 3, 0 }, { 3, 0 } } },
	{ HVS_IC_GEN_WS2012, 0, 2, { 3, 0 }, { 2, 2, 2, 3 },
	  { { 3, 0 }, { 3, 0 }, { 3, 0 }, { 4, 0 } },
	  { { 3, 0 }, { 3, 0 }, { 3, 0 }, { 4, 0 } } },
	{ HVS_IC_GEN_WS2016, 0, 2, { 3, 0 }, { 2, 3, 3, 3 },
	  { { 3, 0 }, { 3, 1 }, { 4, 0 }, { 4, 0 } },
	  { { 3, 0 }, { 3, 1 }, { 4, 0 }, { 4, 0 } } },
	{ HVS_IC_GEN_WS2022, 0, 2, { 3, 0 }, { 2, 4, 3, 4 },
	  { { 3, 0 }, { 3, 2 }, { 4, 0 }, { 5, 0 } },
	  { { 3, 0 }, { 3, 2 }, { 4, 0 }, { 4, 0 } } },
	{ HVS_IC_GEN_FUTURE, 0, 3, { 3, 1 }, { 3, 5, 4, 5 },
	  { { 3, 1 }, { 3, 3 }, { 4, 1 }, { 6, 0 } },
	  { { 3, 0 }, { 3, 2 }, { 4, 0 }, { 4, 0 } } },
	/* AUTO from the VMBus version the guest negotiated */
	{ HVS_IC_GEN_AUTO, HVS_VMBUS_VERSION_WS2008, 1, { 1, 0 }, { 1, 1, 1, 1 },
	  { { 1, 0 }, { 1, 0 }, { 1, 0 }, { 1, 0 } },
	  { { 1, 0 }, { 1, 0 }, { 1, 0 }, { 1, 0 } } },
	{ HVS_IC_GEN_AUTO, HVS_VMBUS_VERSION_WIN8, 2, { 3, 0 }, { 2, 2, 2, 3 },
	  { { 3, 0 }, { 3, 0 }, { 3, 0 }, { 4, 0 } },
	  { { 3, 0 }, { 3, 0 }, { 3, 0 }, { 4, 0 } } },
	{ HVS_IC_GEN_AUTO, HVS_VMBUS_VERSION_IRON, 2, { 3, 0 }, { 2, 4, 3, 4 },
	  { { 3, 0 }, { 3, 2 }, { 4, 0 }, { 5, 0 } },
	  { { 3, 0 }, { 3, 2 }, { 4, 0 }, { 4, 0 } } },
};

static void test_generations(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(gen_cases) / sizeof(gen_cases[0]); i++) {
		const struct gen_case *c = &gen_cases[i];

		setup(NULL);
		cfg.ic_gen = c->gen;
		start(c->vmbus ? c->vmbus : HVS_VMBUS_VERSION_IRON, true);
		assert_true(run_until(all_ready, 3000));
		print_message("  %s/%#x: fw %u.%u hb %u.%u sd %u.%u ts %u.%u "
			      "kvp %u.%u\n", hvs_ic_gen_name(c->gen), c->vmbus,
			      tg.fw[0][0], tg.fw[0][1], tg.msg[0][0],
			      tg.msg[0][1], tg.msg[1][0], tg.msg[1][1],
			      tg.msg[2][0], tg.msg[2][1], tg.msg[3][0],
			      tg.msg[3][1]);
		assert_int_equal(tg.n_offered_fw, c->nfw);
		assert_int_equal(tg.offered_fw[c->nfw - 1][0], c->fw_hi[0]);
		assert_int_equal(tg.offered_fw[c->nfw - 1][1], c->fw_hi[1]);
		for (int s = 0; s < HVS_IC_NSVC; s++) {
			struct hvs_ic_svc_status st;

			assert_int_equal(tg.n_offered_msg[s], c->n[s]);
			assert_int_equal(tg.offered_msg[s][c->n[s] - 1][0],
					 c->hi[s][0]);
			assert_int_equal(tg.offered_msg[s][c->n[s] - 1][1],
					 c->hi[s][1]);
			hvs_ic_get_status(ic, (enum hvs_ic_svc)s, &st);
			assert_int_equal(st.ss_msg_major, c->pick[s][0]);
			assert_int_equal(st.ss_msg_minor, c->pick[s][1]);
			assert_int_equal(st.ss_bad_replies, 0);
		}
		teardown(NULL);
	}
}

static void test_offer_and_names(void **state)
{
	enum hvs_ic_gen g;

	(void)state;
	start(HVS_VMBUS_VERSION_IRON, false);
	/* Spec 5.2: message-mode pipes. */
	for (int s = 0; s < HVS_IC_NSVC; s++) {
		assert_true(dev[s] >= 0);
		assert_int_equal(fh_devs[dev[s]].fd_flags,
				 VMBUS_OFFER_FLAG_NAMED_PIPE_MODE);
		assert_int_equal(get32(fh_devs[dev[s]].fd_ud),
				 VMBUS_PIPE_MODE_MESSAGE);
		assert_string_equal(fh_devs[dev[s]].fd_name,
				    hvs_ic_svc_name((enum hvs_ic_svc)s));
		assert_int_equal(neg(s), HVS_IC_NEG_CLOSED);
	}
	assert_int_equal(hvs_ic_gen_parse("ws2016", &g), 0);
	assert_int_equal(g, HVS_IC_GEN_WS2016);
	assert_int_equal(hvs_ic_gen_parse("ws1999", &g), -EINVAL);
	assert_int_equal(hvs_ic_gen_for_vmbus(HVS_VMBUS_VERSION_WIN10_RS4),
			 HVS_IC_GEN_WS2016);
	assert_int_equal(hvs_ic_gen_for_vmbus(HVS_VMBUS_VERSION_WIN10_RS5),
			 HVS_IC_GEN_WS2019);
	assert_int_equal(hvs_ic_gen_for_vmbus(HVS_VMBUS_VERSION_COPPER),
			 HVS_IC_GEN_WS2022);
	/* Not open: every request is refused. */
	assert_int_equal(hvs_ic_shutdown(ic, 0, 0, NULL, NULL, NULL), -ENODEV);
	assert_int_equal(hvs_ic_kvp_get(ic, 0, "k", NULL, NULL), -ENODEV);
	assert_int_equal(hvs_ic_timesync_sync_now(ic), -ENODEV);
	teardown(NULL);

	/* Only some services, and a server that refuses the second. */
	setup(NULL);
	srv = fh_reset(HVS_VMBUS_VERSION_IRON);
	cfg.ic_services = HVS_IC_BIT(HVS_IC_KVP) | HVS_IC_BIT(HVS_IC_SHUTDOWN);
	assert_int_equal(hvs_ic_add(srv, &cfg, &ic), 0);
	assert_int_equal(fh_find(&HV_GUID_HEARTBEAT), -1);
	assert_true(fh_find(&HV_GUID_KVP) >= 0);
	struct hvs_ic_hb_status hb;
	assert_int_equal(hvs_ic_heartbeat_status(ic, &hb), -ENODEV);
	teardown(NULL);
	setup(NULL);
	srv = fh_reset(HVS_VMBUS_VERSION_IRON);
	fh_fail_add(-ENOSPC);
	assert_int_equal(hvs_ic_add(srv, &cfg, &ic), -ENOSPC);
	cfg.ic_loop = NULL;
	assert_int_equal(hvs_ic_add(srv, &cfg, &ic), -EINVAL);
	teardown(NULL);
}

static void test_timesync_capped_without_ref_time(void **state)
{
	(void)state;
	cfg.ic_ref_time = NULL;
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	assert_int_equal(tg.offered_msg[HVS_IC_TIMESYNC][tg.n_offered_msg[HVS_IC_TIMESYNC] - 1][0], 3);
	assert_int_equal(tg.msg[HVS_IC_TIMESYNC][0], 3);
	teardown(NULL);
}

static bool kvp_failed_neg(void) { return neg(HVS_IC_KVP) == HVS_IC_NEG_FAILED; }

/* The guest's negotiation answer is checked (a bad guest). */
static void test_negotiate_bad_guest(void **state)
{
	struct hvs_ic_svc_status st;

	(void)state;
	for (int mode = 0; mode <= 2; mode++) {
		setup(NULL);
		tg.no_common = mode == 0;
		tg.nego_bad = mode;
		start(HVS_VMBUS_VERSION_IRON, true);
		assert_true(run_until(kvp_failed_neg, 3000));
		hvs_ic_get_status(ic, HVS_IC_KVP, &st);
		/* "no common version" is the guest's right, not an error */
		assert_int_equal(st.ss_bad_replies, mode == 0 ? 0 : 1);
		assert_int_equal(hvs_ic_kvp_get(ic, 0, "k", NULL, NULL), -ENODEV);
		teardown(NULL);
	}
}

/* Answers that are malformed, unsolicited or of the wrong type. */
static void test_bad_answers(void **state)
{
	uint8_t b[FH_PKT_MAX];
	uint32_t len;
	uint64_t tid;
	struct hvs_ic_svc_status st;
	int d;

	(void)state;
	tg.manual[HVS_IC_HEARTBEAT] = true;
	start(HVS_VMBUS_VERSION_IRON, true);
	d = dev[HVS_IC_HEARTBEAT];
	/* negotiate by hand */
	run_until(NULL, 20);
	assert_int_equal(fh_take(d, b, &len, &tid), 0);
	assert_int_equal(get16(b + 12), IC_MSGTYPE_NEGOTIATE);
	/* 1: shorter than a header: counted, negotiation failed */
	fh_reply(d, b, 20, tid);
	hvs_ic_get_status(ic, HVS_IC_HEARTBEAT, &st);
	assert_int_equal(st.ss_bad_replies, 1);
	assert_int_equal(neg(HVS_IC_HEARTBEAT), HVS_IC_NEG_FAILED);
	/* 2: no RESPONSE flag (after a reopen) */
	fh_close(d, HVS_CLOSE_GUEST);
	assert_int_equal(fh_open(d), 0);
	assert_int_equal(fh_take(d, b, &len, &tid), 0);
	b[25] = 0x1;
	put16(b + 28, 1);
	put16(b + 30, 1);
	put16(b + 36, 3);
	put16(b + 40, 3);
	fh_reply(d, b, 44, tid);
	hvs_ic_get_status(ic, HVS_IC_HEARTBEAT, &st);
	assert_int_equal(st.ss_bad_replies, 2);
	assert_int_equal(neg(HVS_IC_HEARTBEAT), HVS_IC_NEG_FAILED);
	/* 3: an answer to nothing, and a completion packet: ignored */
	fh_close(d, HVS_CLOSE_GUEST);
	assert_int_equal(fh_open(d), 0);
	assert_int_equal(fh_take(d, b, &len, &tid), 0);
	b[25] = 0x5;
	put16(b + 18, 16);
	fh_reply(d, b, 44, tid + 100);
	fh_inject(d, VMBUS_PACKET_TYPE_COMP, b, 16, tid);
	fh_signal(d);
	hvs_ic_get_status(ic, HVS_IC_HEARTBEAT, &st);
	assert_int_equal(st.ss_unsolicited, 1);
	assert_int_equal(st.ss_bad_replies, 3);
	assert_int_equal(neg(HVS_IC_HEARTBEAT), HVS_IC_NEG_PENDING);
	/* 4: icmsgsize past the end of the answer */
	put16(b + 18, 900);
	fh_reply(d, b, 44, tid);
	hvs_ic_get_status(ic, HVS_IC_HEARTBEAT, &st);
	assert_int_equal(st.ss_bad_replies, 4);
	assert_int_equal(neg(HVS_IC_HEARTBEAT), HVS_IC_NEG_FAILED);
	fh_close(d, HVS_CLOSE_GUEST);
	assert_int_equal(fh_open(d), 0);
	/* and the host still works: a good answer now negotiates */
	tg.manual[HVS_IC_HEARTBEAT] = false;
	assert_true(run_until(all_ready, 3000));
	teardown(NULL);
}

/* ---- heartbeat ---- */

static bool hb_ok(void)
{
	struct hvs_ic_hb_status h;

	hvs_ic_heartbeat_status(ic, &h);
	return h.hs_state == HVS_IC_HB_OK && h.hs_good >= 20;
}

static bool hb_lost(void)
{
	struct hvs_ic_hb_status h;

	hvs_ic_heartbeat_status(ic, &h);
	return h.hs_state == HVS_IC_HB_LOST;
}

static bool hb_missed(void)
{
	struct hvs_ic_hb_status h;

	hvs_ic_heartbeat_status(ic, &h);
	return h.hs_missed >= 1;
}

static bool hb_bad3(void)
{
	struct hvs_ic_hb_status h;

	hvs_ic_heartbeat_status(ic, &h);
	return h.hs_bad >= 3;
}

static void test_heartbeat(void **state)
{
	struct hvs_ic_hb_status h;

	(void)state;
	start(HVS_VMBUS_VERSION_IRON, false);
	assert_int_equal(hvs_ic_heartbeat_status(ic, &h), 0);
	assert_int_equal(h.hs_state, HVS_IC_HB_NO_CONTACT);
	assert_int_equal(h.hs_since_reply_ns, UINT64_MAX);
	for (int s = 0; s < HVS_IC_NSVC; s++)
		fh_open(dev[s]);
	assert_true(run_until(hb_ok, 5000));
	hvs_ic_heartbeat_status(ic, &h);
	assert_int_equal(h.hs_bad, 0);
	assert_true(h.hs_since_reply_ns < cfg.ic_heartbeat_lost_ns);
	/* The sequence the guest saw is the host's. */
	assert_int_equal(tg.hb_seen, h.hs_seq);

	/* Wrong sequence numbers and failure statuses: bad, not good. */
	tg.hb_bad = 1;
	assert_true(run_until(hb_bad3, 3000));
	tg.hb_bad = 2;
	assert_true(run_until(hb_bad3, 3000));
	/* The guest stops answering: missed, then LOST. */
	tg.hb_bad = 0;
	tg.silent[HVS_IC_HEARTBEAT] = true;
	assert_true(run_until(hb_missed, 5000));
	assert_true(run_until(hb_lost, 5000));
	/* The VM ends: back to NO_CONTACT. */
	hvs_ic_partition_ended(ic, 0);
	hvs_ic_heartbeat_status(ic, &h);
	assert_int_equal(h.hs_state, HVS_IC_HB_NO_CONTACT);
	teardown(NULL);
}

/* ---- shutdown ---- */

static int done_calls, done_err;
static uint32_t done_status;

static void t_done(void *arg, int err, uint32_t st)
{
	(void)arg;
	done_calls++;
	done_err = err;
	done_status = st;
}

static bool sd_answered(void) { return done_calls > 0; }
static bool powered_off(void) { return power_offs > 0; }

static enum hvs_ic_sd_state sd_state(void)
{
	struct hvs_ic_sd_status s;

	assert_int_equal(hvs_ic_shutdown_status(ic, &s), 0);
	return s.sd_state;
}

static void test_shutdown(void **state)
{
	(void)state;
	done_calls = 0;
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	assert_int_equal(hvs_ic_shutdown(ic, 0x8, 0, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(hvs_ic_shutdown(ic, HVS_IC_SD_REBOOT |
					 HVS_IC_SD_HIBERNATE, 0, NULL, NULL,
					 NULL), -EINVAL);
	/* Accepted, then the VM ends before the deadline: done. */
	assert_int_equal(hvs_ic_shutdown(ic, HVS_IC_SD_REBOOT, 10000 * MS,
					 "patch night", t_done, NULL), 0);
	assert_int_equal(hvs_ic_shutdown(ic, 0, 0, NULL, NULL, NULL), -EBUSY);
	assert_true(run_until(sd_answered, 3000));
	assert_int_equal(done_err, 0);
	assert_int_equal(done_status, 0);
	assert_int_equal(tg.sd_flags, HVS_IC_SD_REBOOT);
	assert_int_equal(tg.sd_reason, IC_SHUTDOWN_REASON_PLANNED);
	assert_int_equal(tg.sd_timeout, 10);
	assert_string_equal(tg.sd_text, "patch night");
	assert_int_equal(sd_state(), HVS_IC_SD_ACCEPTED);
	hvs_ic_partition_ended(ic, 1);
	assert_int_equal(sd_state(), HVS_IC_SD_DONE);
	assert_int_equal(power_offs, 0);

	/* Refused: the deadline is cancelled, nothing is powered off. */
	done_calls = 0;
	tg.sd_status = IC_STATUS_E_FAIL;
	assert_int_equal(hvs_ic_shutdown(ic, HVS_IC_SD_FORCE, 30 * MS, NULL,
					 t_done, NULL), 0);
	assert_true(run_until(sd_answered, 3000));
	assert_int_equal(done_status, IC_STATUS_E_FAIL);
	assert_int_equal(sd_state(), HVS_IC_SD_REFUSED);
	run_until(NULL, 60);
	assert_int_equal(power_offs, 0);

	/* Accepted but the guest never stops: powered off at the deadline. */
	tg.sd_status = 0;
	assert_int_equal(hvs_ic_shutdown(ic, 0, 40 * MS, NULL, NULL, NULL), 0);
	assert_true(run_until(powered_off, 3000));
	assert_int_equal(sd_state(), HVS_IC_SD_EXPIRED);
	assert_string_equal(power_why, "shutdown deadline passed");

	/* No answer at all: NO_REPLY, then powered off at the deadline. */
	power_offs = 0;
	done_calls = 0;
	tg.silent[HVS_IC_SHUTDOWN] = true;
	assert_int_equal(hvs_ic_shutdown(ic, 0, cfg.ic_reply_timeout_ns * 3,
					 NULL, t_done, NULL), 0);
	assert_true(run_until(sd_answered, 5000));
	assert_int_equal(done_err, -ETIMEDOUT);
	assert_int_equal(sd_state(), HVS_IC_SD_NO_REPLY);
	assert_true(run_until(powered_off, 5000));
	teardown(NULL);
}

static void test_shutdown_hibernate_and_reboot_back(void **state)
{
	(void)state;
	cfg.ic_gen = HVS_IC_GEN_WS2016;		/* shutdown 3.1 */
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	assert_int_equal(hvs_ic_shutdown(ic, HVS_IC_SD_HIBERNATE, 0, NULL, NULL,
					 NULL), -EOPNOTSUPP);
	teardown(NULL);

	setup(NULL);
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	assert_int_equal(hvs_ic_shutdown(ic, HVS_IC_SD_HIBERNATE, 0, NULL, NULL,
					 NULL), 0);
	run_until(NULL, 30);
	assert_int_equal(tg.sd_flags, HVS_IC_SD_HIBERNATE);
	teardown(NULL);

	/* A rebooted guest negotiating again also ends the request. */
	setup(NULL);
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	assert_int_equal(hvs_ic_shutdown(ic, HVS_IC_SD_REBOOT, 0, NULL, NULL,
					 NULL), 0);
	run_until(NULL, 30);
	assert_int_equal(sd_state(), HVS_IC_SD_ACCEPTED);
	fh_close(dev[HVS_IC_SHUTDOWN], HVS_CLOSE_RESET);
	fh_open(dev[HVS_IC_SHUTDOWN]);
	assert_true(run_until(all_ready, 3000));
	assert_int_equal(sd_state(), HVS_IC_SD_DONE);
	teardown(NULL);
}

/* ---- time sync ---- */

static bool ts_three(void) { return tg.ts_n >= 3; }
static bool ts_more(void) { return tg.ts_n >= 6; }

static void test_timesync_v4(void **state)
{
	struct hvs_ic_ts_status t;
	uint64_t before, after;

	(void)state;
	start(HVS_VMBUS_VERSION_IRON, true);
	before = 116444736000000000ull + (uint64_t)(t_host_utc(NULL) / 100);
	assert_true(run_until(ts_three, 3000));
	after = 116444736000000000ull + (uint64_t)(t_host_utc(NULL) / 100);
	assert_int_equal(tg.ts_len, 52);
	/* SYNC first, then samples. */
	assert_int_equal(tg.ts_flags[0], IC_TIMESYNC_FLAG_SYNC);
	assert_int_equal(tg.ts_flags[1], IC_TIMESYNC_FLAG_SAMPLE);
	assert_int_equal(tg.ts_flags[2], IC_TIMESYNC_FLAG_SAMPLE);
	/* The last parent time is the host clock of that moment. */
	assert_true(tg.ts_parent >= before && tg.ts_parent <= after);
	assert_true(tg.ts_ref > 0);
	assert_true(tg.ts_ref <= t_ref_time(NULL));
	hvs_ic_timesync_status(ic, &t);
	assert_int_equal(t.ts_syncs, 1);
	assert_true(t.ts_samples >= 2);
	/* A SYNC on request. */
	assert_int_equal(hvs_ic_timesync_sync_now(ic), 0);
	assert_true(run_until(ts_more, 3000));
	hvs_ic_timesync_status(ic, &t);
	assert_int_equal(t.ts_syncs, 2);
	/* A guest refusing the time: counted. */
	tg.ts_status = (int)IC_STATUS_E_FAIL;
	tg.ts_n = 0;
	assert_true(run_until(ts_three, 3000));
	hvs_ic_timesync_status(ic, &t);
	assert_true(t.ts_refused >= 2);
	teardown(NULL);
}

static void test_timesync_v3(void **state)
{
	(void)state;
	cfg.ic_gen = HVS_IC_GEN_WS2012R2;
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(ts_three, 3000));
	assert_int_equal(tg.ts_len, 56);
	assert_int_equal(tg.ts_flags[0], IC_TIMESYNC_FLAG_SYNC);
	assert_int_equal(tg.ts_flags[1], IC_TIMESYNC_FLAG_SAMPLE);
	teardown(NULL);
}

/* ---- KVP ---- */

static int kcb_n;
static struct hvs_ic_kvp_result kcb_last;
static char kcb_keys[64][64];

static void t_kvp(void *arg, const struct hvs_ic_kvp_result *r)
{
	(void)arg;
	if (kcb_n < 64)
		snprintf(kcb_keys[kcb_n], sizeof(kcb_keys[0]), "%.63s", r->kr_key);
	kcb_n++;
	kcb_last = *r;
}

static int kcb_want;
static bool kcb_done(void) { return kcb_n >= kcb_want; }

static void kvp_wait(int n)
{
	kcb_want = n;
	assert_true(run_until(kcb_done, 5000));
}

static void test_kvp_ops(void **state)
{
	char v[64];
	uint32_t type;

	(void)state;
	kcb_n = 0;
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	/* Argument checks. */
	assert_int_equal(hvs_ic_kvp_get(ic, 4, "k", NULL, NULL), -EINVAL);
	assert_int_equal(hvs_ic_kvp_get(ic, 0, "", NULL, NULL), -EINVAL);
	assert_int_equal(hvs_ic_kvp_set(ic, 0, "k\xff", "v", NULL, NULL),
			 -EINVAL);
	char big[600];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(hvs_ic_kvp_set(ic, 0, big, "v", NULL, NULL), -EINVAL);

	assert_int_equal(hvs_ic_kvp_set(ic, 0, "Color", "blue", t_kvp, NULL), 0);
	kvp_wait(1);
	assert_int_equal(kcb_last.kr_err, 0);
	assert_string_equal(tg_find(0, "Color")->val, "blue");
	assert_int_equal(hvs_ic_kvp_set_int(ic, 3, "Cores", 8, false, t_kvp,
					    NULL), 0);
	assert_int_equal(hvs_ic_kvp_set_int(ic, 3, "Mem", 1ull << 36, true,
					    t_kvp, NULL), 0);
	assert_int_equal(hvs_ic_kvp_set_int(ic, 3, "x", 1ull << 36, false,
					    t_kvp, NULL), -EINVAL);
	kvp_wait(3);
	assert_int_equal(tg_find(3, "Cores")->num, 8);
	assert_int_equal(tg_find(3, "Mem")->num, 1ull << 36);
	assert_int_equal(tg_find(3, "Mem")->type, KVP_REG_U64);
	/* GET */
	assert_int_equal(hvs_ic_kvp_get(ic, 0, "Color", t_kvp, NULL), 0);
	kvp_wait(4);
	assert_int_equal(kcb_last.kr_err, 0);
	assert_string_equal(kcb_last.kr_key, "Color");
	assert_string_equal(kcb_last.kr_value, "blue");
	assert_int_equal(kcb_last.kr_type, KVP_REG_SZ);
	assert_int_equal(hvs_ic_kvp_get(ic, 3, "Mem", t_kvp, NULL), 0);
	kvp_wait(5);
	assert_string_equal(kcb_last.kr_value, "68719476736");
	assert_int_equal(hvs_ic_kvp_get(ic, 0, "Nope", t_kvp, NULL), 0);
	kvp_wait(6);
	assert_int_equal(kcb_last.kr_err, -ENOENT);
	/* ENUMERATE and LIST */
	assert_int_equal(hvs_ic_kvp_enumerate(ic, 3, 1, t_kvp, NULL), 0);
	kvp_wait(7);
	assert_string_equal(kcb_last.kr_key, "Mem");
	assert_int_equal(hvs_ic_kvp_enumerate(ic, 3, 2, t_kvp, NULL), 0);
	kvp_wait(8);
	assert_int_equal(kcb_last.kr_err, -ENOENT);
	kcb_n = 0;
	assert_int_equal(hvs_ic_kvp_list(ic, 3, t_kvp, NULL), 0);
	kvp_wait(3);
	assert_string_equal(kcb_keys[0], "Cores");
	assert_string_equal(kcb_keys[1], "Mem");
	assert_true(kcb_last.kr_last);
	assert_int_equal(kcb_last.kr_err, 0);
	/* DELETE */
	kcb_n = 0;
	assert_int_equal(hvs_ic_kvp_delete(ic, 0, "Color", t_kvp, NULL), 0);
	assert_int_equal(hvs_ic_kvp_delete(ic, 0, "Color", t_kvp, NULL), 0);
	kvp_wait(2);
	assert_int_equal(kcb_last.kr_err, -EIO);
	assert_int_equal(kcb_last.kr_status, IC_STATUS_E_FAIL);
	assert_null(tg_find(0, "Color"));

	/* The mirror: walked after negotiation, kept current by the host's
	 * own SETs, and refreshed by a walk. */
	assert_int_equal(hvs_ic_kvp_mirror_get(ic, 3, "Cores", &type, v,
					       sizeof(v)), 0);
	assert_string_equal(v, "8");
	assert_int_equal(type, KVP_REG_U32);
	tg.kvp[20] = (struct tg_rec){ .used = true, .pool = 1,
				      .key = "FromGuest", .type = KVP_REG_SZ,
				      .val = "hello" };
	assert_int_equal(hvs_ic_kvp_mirror_get(ic, 1, "FromGuest", NULL, v,
					       sizeof(v)), -ENOENT);
	assert_int_equal(hvs_ic_kvp_refresh(ic), 0);
	run_until(NULL, 100);
	assert_int_equal(hvs_ic_kvp_mirror_get(ic, 1, "FromGuest", NULL, v,
					       sizeof(v)), 0);
	assert_string_equal(v, "hello");
	assert_int_equal(hvs_ic_kvp_mirror_get(ic, 3, "Cores", NULL, v, 1),
			 -ENOBUFS);
	assert_int_equal(hvs_ic_kvp_mirror_get(ic, 0, "Color", NULL, v,
					       sizeof(v)), -ENOENT);
	/* A host SET updates the mirror at once. */
	kcb_n = 0;
	assert_int_equal(hvs_ic_kvp_set(ic, 0, "New", "1", t_kvp, NULL), 0);
	kvp_wait(1);
	assert_int_equal(hvs_ic_kvp_mirror_get(ic, 0, "New", NULL, v,
					       sizeof(v)), 0);
	assert_string_equal(v, "1");
	teardown(NULL);
}

static int off_n, off_err;
static int64_t off_ns;
static uint64_t off_rtt;

static void t_off(void *arg, int err, int64_t off, uint64_t rtt)
{
	(void)arg;
	off_n++;
	off_err = err;
	off_ns = off;
	off_rtt = rtt;
}

static bool off_done(void) { return off_n > 0; }

static void test_kvp_time_offset_and_host_info(void **state)
{
	struct hvs_ic_ts_status t;
	int64_t diff;

	(void)state;
	cfg.ic_no_host_info = false;
	tg.time_key = true;
	tg.clock_off_ns = 3600ll * 1000000000ll;	/* guest 1 h ahead */
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	run_until(NULL, 50);
	/* Host data pushed into the auto-external pool. */
	assert_non_null(tg_find(3, "HostName"));
	assert_non_null(tg_find(3, "PhysicalHostName"));
	assert_string_equal(tg_find(3, "VirtualMachineName")->val, "vmtest");
	/* The offset, measured on request... */
	off_n = 0;
	assert_int_equal(hvs_ic_time_offset(ic, t_off, NULL), 0);
	assert_true(run_until(off_done, 3000));
	assert_int_equal(off_err, 0);
	diff = off_ns - tg.clock_off_ns;
	print_message("  offset %lld ns (err %llu ns)\n", (long long)off_ns,
		      (unsigned long long)off_rtt / 2);
	assert_true(diff <= (int64_t)off_rtt / 2 + 100 &&
		    -diff <= (int64_t)off_rtt / 2 + 100);
	/* ...and cached for the status. */
	hvs_ic_timesync_status(ic, &t);
	assert_true(t.ts_offset_valid);
	assert_int_equal(t.ts_offset_ns, off_ns);
	/* A guest without the key: -ENOENT. */
	tg.time_key = false;
	off_n = 0;
	assert_int_equal(hvs_ic_time_offset(ic, t_off, NULL), 0);
	assert_true(run_until(off_done, 3000));
	assert_int_equal(off_err, -ENOENT);
	teardown(NULL);
}

/* A bad guest: malformed KVP answers fail the request with -EPROTO. */
static void test_kvp_bad_guest(void **state)
{
	struct hvs_ic_svc_status st;

	(void)state;
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	kcb_n = 0;
	assert_int_equal(hvs_ic_kvp_set(ic, 0, "K", "V", t_kvp, NULL), 0);
	kvp_wait(1);
	for (int mode = 1; mode <= 6; mode++) {
		if (mode == 4)
			continue;
		tg.kvp_bad = mode;
		kcb_n = 0;
		assert_int_equal(hvs_ic_kvp_get(ic, 0, "K", t_kvp, NULL), 0);
		kvp_wait(1);
		print_message("  bad mode %d -> %d\n", mode, kcb_last.kr_err);
		assert_int_equal(kcb_last.kr_err, -EPROTO);
	}
	hvs_ic_get_status(ic, HVS_IC_KVP, &st);
	assert_true(st.ss_bad_replies >= 5);
	/* A walk that never ends is cut. */
	tg.kvp_bad = 4;
	kcb_n = 0;
	assert_int_equal(hvs_ic_kvp_list(ic, 0, t_kvp, NULL), 0);
	kvp_wait(4097);
	assert_true(kcb_last.kr_last);
	assert_int_equal(kcb_last.kr_err, -EOVERFLOW);
	/* The service still works. */
	tg.kvp_bad = 0;
	kcb_n = 0;
	assert_int_equal(hvs_ic_kvp_get(ic, 0, "K", t_kvp, NULL), 0);
	kvp_wait(1);
	assert_int_equal(kcb_last.kr_err, 0);
	teardown(NULL);
}

/* Requests pending when the channel closes fail with -ENODEV; a silent
 * guest times them out. */
static void test_kvp_close_and_timeout(void **state)
{
	(void)state;
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	tg.silent[HVS_IC_KVP] = true;
	kcb_n = 0;
	assert_int_equal(hvs_ic_kvp_get(ic, 0, "A", t_kvp, NULL), 0);
	assert_int_equal(hvs_ic_kvp_get(ic, 0, "B", t_kvp, NULL), 0);
	assert_int_equal(hvs_ic_kvp_list(ic, 1, t_kvp, NULL), 0);
	kvp_wait(1);
	assert_int_equal(kcb_last.kr_err, -ETIMEDOUT);
	fh_close(dev[HVS_IC_KVP], HVS_CLOSE_GUEST);
	assert_int_equal(kcb_n, 3);
	assert_int_equal(kcb_last.kr_err, -ENODEV);
	assert_true(kcb_last.kr_last);
	assert_int_equal(neg(HVS_IC_KVP), HVS_IC_NEG_CLOSED);
	teardown(NULL);
}

/* ---- raw requests, ring full, description ---- */

static int raw_n, raw_err;
static uint8_t raw_buf[256];
static uint32_t raw_len;

static void t_raw(void *arg, int err, const uint8_t *r, uint32_t len)
{
	(void)arg;
	raw_n++;
	raw_err = err;
	raw_len = len;
	if (r && len <= sizeof(raw_buf))
		memcpy(raw_buf, r, len);
}

static bool raw_done(void) { return raw_n > 0; }

static void test_raw_and_ring_full(void **state)
{
	uint8_t m[68];
	char json[4096];
	int n;

	(void)state;
	start(HVS_VMBUS_VERSION_IRON, true);
	assert_true(run_until(all_ready, 3000));
	/* A heartbeat built by hand goes out as is. */
	memset(m, 0, sizeof(m));
	put32(m, 1);
	put32(m + 4, 60);
	put16(m + 8, 3);
	put16(m + 12, IC_MSGTYPE_HEARTBEAT);
	put16(m + 14, 3);
	put16(m + 18, 40);
	m[25] = 0x3;
	put64(m + 28, 5000);
	tg.silent[HVS_IC_HEARTBEAT] = false;
	raw_n = 0;
	assert_int_equal(hvs_ic_send_raw(ic, HVS_IC_HEARTBEAT, m, sizeof(m),
					 t_raw, NULL), 0);
	assert_int_equal(hvs_ic_send_raw(ic, HVS_IC_HEARTBEAT, m, sizeof(m),
					 t_raw, NULL), -EBUSY);
	assert_true(run_until(raw_done, 3000));
	assert_int_equal(raw_err, 0);
	assert_int_equal(raw_len, 68);
	assert_int_equal(get64(raw_buf + 28), 5001);
	/* A short one gets no answer: it times out. */
	tg.silent[HVS_IC_HEARTBEAT] = true;
	raw_n = 0;
	assert_int_equal(hvs_ic_send_raw(ic, HVS_IC_HEARTBEAT, m, 10, t_raw,
					 NULL), 0);
	assert_true(run_until(raw_done, 5000));
	assert_int_equal(raw_err, -ETIMEDOUT);
	tg.silent[HVS_IC_HEARTBEAT] = false;

	/* Ring full: the request waits and goes when there is room. */
	kcb_n = 0;
	fh_devs[dev[HVS_IC_KVP]].fd_full = true;
	assert_int_equal(hvs_ic_kvp_set(ic, 0, "Later", "yes", t_kvp, NULL), 0);
	run_until(NULL, 20);
	assert_int_equal(kcb_n, 0);
	fh_devs[dev[HVS_IC_KVP]].fd_full = false;
	fh_signal(dev[HVS_IC_KVP]);
	kvp_wait(1);
	assert_int_equal(kcb_last.kr_err, 0);
	assert_non_null(tg_find(0, "Later"));

	n = hvs_ic_describe_json(ic, json, sizeof(json));
	assert_true(n > 0);
	print_message("  %s\n", json);
	assert_non_null(strstr(json, "\"heartbeat\":{\"state\":\"ready\""));
	assert_non_null(strstr(json, "\"version\":\"3.2\""));
	assert_non_null(strstr(json, "\"kvp\":{"));
	assert_int_equal(hvs_ic_describe_json(ic, json, 20), -ENOBUFS);
	teardown(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_generations, NULL),
		cmocka_unit_test_setup(test_offer_and_names, setup),
		cmocka_unit_test_setup(test_timesync_capped_without_ref_time, setup),
		cmocka_unit_test_setup(test_negotiate_bad_guest, NULL),
		cmocka_unit_test_setup(test_bad_answers, setup),
		cmocka_unit_test_setup(test_heartbeat, setup),
		cmocka_unit_test_setup(test_shutdown, setup),
		cmocka_unit_test_setup(test_shutdown_hibernate_and_reboot_back, setup),
		cmocka_unit_test_setup(test_timesync_v4, setup),
		cmocka_unit_test_setup(test_timesync_v3, setup),
		cmocka_unit_test_setup(test_kvp_ops, setup),
		cmocka_unit_test_setup(test_kvp_time_offset_and_host_info, setup),
		cmocka_unit_test_setup(test_kvp_bad_guest, setup),
		cmocka_unit_test_setup(test_kvp_close_and_timeout, setup),
		cmocka_unit_test_setup(test_raw_and_ring_full, setup),
	};

	hvs_log_set_level(getenv("IC_TEST_LOG") ? HVS_LOG_DEBUG : HVS_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
