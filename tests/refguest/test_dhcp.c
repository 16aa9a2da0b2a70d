/*
 * tests/refguest/test_dhcp.c - the reference guest's DHCP client
 * (tools/hvguest/hvg_dhcp.c): reply parsing against well-formed and
 * hostile messages, the messages it builds, and the state machine driven
 * by a scripted server on a virtual clock (DISCOVER/OFFER/REQUEST/ACK,
 * renewal at T1, rebinding at T2, expiry, NAK, retransmission backoff).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/hvguest/hvg_dhcp.h"

static const uint8_t MAC[6] = { 0x02, 0x15, 0x5d, 0x01, 0x02, 0x03 };
#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | \
	(uint32_t)(c) << 8 | (uint32_t)(d))
#define SRV IP(10, 0, 2, 2)
#define YOU IP(10, 0, 2, 15)

/* ---- a reply builder (the test's own, not the client's) ---- */

struct rb {
	uint8_t b[1024];
	size_t o;		/* next option byte */
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void rb_init(struct rb *r, uint32_t xid, uint32_t yiaddr)
{
	memset(r, 0, sizeof(*r));
	r->b[0] = 2;		/* BOOTREPLY */
	r->b[1] = 1;
	r->b[2] = 6;
	put32(r->b + 4, xid);
	put32(r->b + 16, yiaddr);
	memcpy(r->b + 28, MAC, 6);
	put32(r->b + 236, 0x63825363u);
	r->o = 240;
}

static void rb_opt(struct rb *r, uint8_t code, const void *v, uint8_t len)
{
	r->b[r->o++] = code;
	r->b[r->o++] = len;
	memcpy(r->b + r->o, v, len);
	r->o += len;
}

static void rb_opt32(struct rb *r, uint8_t code, uint32_t v)
{
	uint8_t x[4];

	put32(x, v);
	rb_opt(r, code, x, 4);
}

static void rb_type(struct rb *r, uint8_t t)
{
	rb_opt(r, 53, &t, 1);
}

static size_t rb_end(struct rb *r)
{
	r->b[r->o++] = 255;
	return r->o;
}

/* A standard OFFER/ACK as slirp sends it. */
static size_t rb_std(struct rb *r, uint8_t type, uint32_t xid, uint32_t ip,
    uint32_t lease)
{
	rb_init(r, xid, ip);
	rb_type(r, type);
	rb_opt32(r, 54, SRV);
	rb_opt32(r, 1, IP(255, 255, 255, 0));
	rb_opt32(r, 3, SRV);
	rb_opt32(r, 6, IP(10, 0, 2, 3));
	rb_opt32(r, 51, lease);
	return rb_end(r);
}

/* ---- parsing ---- */

static void test_parse_good(void **state)
{
	struct dhcp_reply d;
	struct rb r;
	size_t n = rb_std(&r, DHCPOFFER, 0x1234, YOU, 86400);

	(void)state;
	assert_int_equal(dhcp_parse(r.b, n, 0x1234, MAC, &d, NULL), 0);
	assert_int_equal(d.dr_type, DHCPOFFER);
	assert_int_equal(d.dr_yiaddr, YOU);
	assert_int_equal(d.dr_server_id, SRV);
	assert_int_equal(d.dr_mask, IP(255, 255, 255, 0));
	assert_int_equal(d.dr_router, SRV);
	assert_int_equal(d.dr_ndns, 1);
	assert_int_equal(d.dr_dns[0], IP(10, 0, 2, 3));
	assert_int_equal(d.dr_lease_s, 86400);
}

static void test_parse_not_ours(void **state)
{
	struct dhcp_reply d;
	struct rb r;
	size_t n = rb_std(&r, DHCPOFFER, 0x1234, YOU, 60);
	uint8_t other[6] = { 2, 0, 0, 0, 0, 9 };

	(void)state;
	assert_int_equal(dhcp_parse(r.b, n, 0x1235, MAC, &d, NULL), -2);
	assert_int_equal(dhcp_parse(r.b, n, 0x1234, other, &d, NULL), -2);
	r.b[0] = 1;		/* a BOOTREQUEST (another client's) */
	assert_int_equal(dhcp_parse(r.b, n, 0x1234, MAC, &d, NULL), -1);
}

static void test_parse_truncated(void **state)
{
	struct dhcp_reply d;
	struct rb r;
	size_t n = rb_std(&r, DHCPACK, 7, YOU, 60);
	const char *why = NULL;

	(void)state;
	/* Every prefix: never accepted past its end, never a crash. */
	for (size_t len = 0; len < n; len++) {
		int e = dhcp_parse(r.b, len, 7, MAC, &d, &why);

		assert_true(e < 0);
		assert_non_null(why);
	}
	assert_int_equal(dhcp_parse(r.b, n, 7, MAC, &d, NULL), 0);
}

static void test_parse_bad_options(void **state)
{
	struct dhcp_reply d;
	struct rb r;
	const char *why;
	uint8_t three[3] = { 255, 255, 0 };
	size_t n;

	(void)state;
	/* option length past the packet */
	rb_init(&r, 1, YOU);
	rb_type(&r, DHCPOFFER);
	r.b[r.o++] = 6;
	r.b[r.o++] = 200;
	put32(r.b + r.o, SRV);
	n = r.o + 4;
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -4);
	/* a mask of 3 bytes */
	rb_init(&r, 1, YOU);
	rb_type(&r, DHCPOFFER);
	rb_opt32(&r, 54, SRV);
	rb_opt(&r, 1, three, 3);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -4);
	/* a message type of length 2 */
	rb_init(&r, 1, YOU);
	rb_opt(&r, 53, "\x02\x02", 2);
	rb_opt32(&r, 54, SRV);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -4);
	/* no END */
	rb_init(&r, 1, YOU);
	rb_type(&r, DHCPOFFER);
	rb_opt32(&r, 54, SRV);
	assert_int_equal(dhcp_parse(r.b, r.o, 1, MAC, &d, &why), -4);
	/* no magic cookie */
	n = rb_std(&r, DHCPOFFER, 1, YOU, 60);
	r.b[236] ^= 1;
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -3);
	/* no message type, or a request type */
	rb_init(&r, 1, YOU);
	rb_opt32(&r, 54, SRV);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -5);
	n = rb_std(&r, DHCPDISCOVER, 1, YOU, 60);
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -5);
	/* no server id; a server id of 0.0.0.0 */
	rb_init(&r, 1, YOU);
	rb_type(&r, DHCPOFFER);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -6);
	rb_init(&r, 1, YOU);
	rb_type(&r, DHCPOFFER);
	rb_opt32(&r, 54, 0);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -6);
	/* bad overload value */
	rb_init(&r, 1, YOU);
	rb_type(&r, DHCPOFFER);
	rb_opt32(&r, 54, SRV);
	rb_opt(&r, 52, "\x07", 1);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 1, MAC, &d, &why), -4);
}

static void test_parse_bad_addresses(void **state)
{
	static const uint32_t bad_ip[] = { 0, IP(127, 0, 0, 1),
	    IP(224, 0, 0, 1), IP(255, 255, 255, 255), IP(0, 1, 2, 3),
	    IP(10, 0, 2, 0), IP(10, 0, 2, 255) };
	struct dhcp_reply d;
	struct rb r;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++) {
		n = rb_std(&r, DHCPACK, 3, bad_ip[i], 60);
		assert_int_equal(dhcp_parse(r.b, n, 3, MAC, &d, NULL), -7);
	}
	/* a non-contiguous mask; a /32 and a /31 (no room for hosts) */
	rb_init(&r, 3, YOU);
	rb_type(&r, DHCPACK);
	rb_opt32(&r, 54, SRV);
	rb_opt32(&r, 1, IP(255, 0, 255, 0));
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 3, MAC, &d, NULL), -7);
	rb_init(&r, 3, YOU);
	rb_type(&r, DHCPACK);
	rb_opt32(&r, 54, SRV);
	rb_opt32(&r, 1, 0xFFFFFFFFu);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 3, MAC, &d, NULL), -7);
	/* a router outside the subnet is ignored, the lease kept */
	rb_init(&r, 3, YOU);
	rb_type(&r, DHCPACK);
	rb_opt32(&r, 54, SRV);
	rb_opt32(&r, 1, IP(255, 255, 255, 0));
	rb_opt32(&r, 3, IP(192, 168, 1, 1));
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 3, MAC, &d, NULL), 0);
	assert_int_equal(d.dr_router, 0);
	/* no mask option: the class mask (10/8) */
	rb_init(&r, 3, YOU);
	rb_type(&r, DHCPACK);
	rb_opt32(&r, 54, SRV);
	n = rb_end(&r);
	assert_int_equal(dhcp_parse(r.b, n, 3, MAC, &d, NULL), 0);
	assert_int_equal(d.dr_mask, IP(255, 0, 0, 0));
}

static void test_parse_overload_and_lists(void **state)
{
	uint8_t dns[5 * 4], msg[100];
	struct dhcp_reply d;
	struct rb r;
	size_t n;

	(void)state;
	/* lease time and mask in the 'file' field (overload 1) */
	rb_init(&r, 9, YOU);
	rb_type(&r, DHCPACK);
	rb_opt32(&r, 54, SRV);
	rb_opt(&r, 52, "\x01", 1);
	for (int i = 0; i < 5; i++)
		put32(dns + 4 * i, IP(10, 0, 2, 3 + i));
	rb_opt(&r, 6, dns, sizeof(dns));
	memset(msg, 'x', sizeof(msg));
	msg[3] = 0x07;		/* a control byte */
	rb_opt(&r, 56, msg, sizeof(msg));
	n = rb_end(&r);
	r.b[108] = 51;
	r.b[109] = 4;
	put32(r.b + 110, 120);
	r.b[114] = 1;
	r.b[115] = 4;
	put32(r.b + 116, IP(255, 255, 0, 0));
	r.b[120] = 255;
	assert_int_equal(dhcp_parse(r.b, n, 9, MAC, &d, NULL), 0);
	assert_int_equal(d.dr_lease_s, 120);
	assert_int_equal(d.dr_mask, IP(255, 255, 0, 0));
	assert_int_equal(d.dr_ndns, DHCP_MAX_DNS);	/* cut at 3 */
	assert_int_equal(d.dr_dns[2], IP(10, 0, 2, 5));
	assert_int_equal(strlen(d.dr_message), sizeof(d.dr_message) - 1);
	assert_int_equal(d.dr_message[3], '?');
	/* an overloaded field running past itself */
	r.b[108 + 127] = 51;	/* code in the last byte, no length */
	r.b[120] = 0;
	assert_int_equal(dhcp_parse(r.b, n, 9, MAC, &d, NULL), -4);
}

/* Random damage to a good reply: every outcome is a clean verdict. */
static void test_parse_mutations(void **state)
{
	struct dhcp_reply d;
	struct rb r, m;
	size_t n = rb_std(&r, DHCPACK, 5, YOU, 300);
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		int e;

		m = r;
		for (int k = 0; k < 4; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = 236 + (seed >> 8) % (n - 236);

			seed = seed * 1103515245u + 12345u;
			m.b[at] = (uint8_t)(seed >> 16);
		}
		e = dhcp_parse(m.b, n, 5, MAC, &d, NULL);
		assert_true(e <= 0 && e >= -7);
		if (e == 0) {
			assert_true(d.dr_ndns <= DHCP_MAX_DNS);
			assert_true(strlen(d.dr_message) <
			    sizeof(d.dr_message));
		}
	}
}

/* ---- building ---- */

/* Find option `code` in a message we built; its value, or NULL. */
static const uint8_t *find_opt(const uint8_t *b, size_t n, uint8_t code,
    uint8_t *len)
{
	size_t i = 240;

	while (i + 1 < n && b[i] != 255) {
		if (b[i] == 0) {
			i++;
			continue;
		}
		if (b[i] == code) {
			*len = b[i + 1];
			return b + i + 2;
		}
		i += 2u + b[i + 1];
	}
	return NULL;
}

static void test_build(void **state)
{
	struct dhcp_request rq = { .rq_type = DHCPREQUEST, .rq_xid = 0xABCD,
	    .rq_secs = 3, .rq_broadcast = true, .rq_requested = YOU,
	    .rq_server_id = SRV, .rq_hostname = "guest" };
	uint8_t b[DHCP_MSG_MAX], l = 0;
	const uint8_t *v;
	size_t n;

	(void)state;
	assert_int_equal(dhcp_build(b, 100, MAC, &rq), 0);
	n = dhcp_build(b, sizeof(b), MAC, &rq);
	assert_int_equal(n, DHCP_MSG_MAX);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[1], 1);
	assert_int_equal(b[2], 6);
	assert_int_equal(get32(b + 4), 0xABCD);
	assert_int_equal(b[9], 3);
	assert_int_equal(b[10], 0x80);		/* BROADCAST */
	assert_memory_equal(b + 28, MAC, 6);
	assert_int_equal(get32(b + 236), 0x63825363u);
	v = find_opt(b, n, 53, &l);
	assert_non_null(v);
	assert_int_equal(l, 1);
	assert_int_equal(v[0], DHCPREQUEST);
	v = find_opt(b, n, 50, &l);
	assert_non_null(v);
	assert_int_equal(get32(v), YOU);
	v = find_opt(b, n, 54, &l);
	assert_non_null(v);
	assert_int_equal(get32(v), SRV);
	v = find_opt(b, n, 12, &l);
	assert_non_null(v);
	assert_int_equal(l, 5);
	assert_memory_equal(v, "guest", 5);
	v = find_opt(b, n, 61, &l);
	assert_non_null(v);
	assert_int_equal(l, 7);
	assert_memory_equal(v + 1, MAC, 6);
}

/* ---- the state machine against a scripted server ---- */

struct sent {
	uint8_t  type;
	uint32_t xid;
	uint32_t dst, src;
	uint32_t ciaddr;
	uint32_t requested, server_id;	/* 0 if absent */
	bool     broadcast;
	uint64_t at;
};

static struct env {
	struct sent sent[64];
	int nsent;
	int binds, unbinds;
	struct dhcp_lease bound;
	uint64_t now;
	uint32_t rnd;
	int lines;
	char last[256];
} E;

static int env_send(void *arg, const uint8_t *msg, size_t len, uint32_t dst,
    uint32_t src)
{
	struct sent *s;
	const uint8_t *v;
	uint8_t l;

	(void)arg;
	assert_true(E.nsent < 64);
	assert_int_equal(len, DHCP_MSG_MAX);
	s = &E.sent[E.nsent++];
	memset(s, 0, sizeof(*s));
	v = find_opt(msg, len, 53, &l);
	assert_non_null(v);
	s->type = v[0];
	s->xid = get32(msg + 4);
	s->dst = dst;
	s->src = src;
	s->ciaddr = get32(msg + 12);
	s->broadcast = msg[10] & 0x80;
	v = find_opt(msg, len, 50, &l);
	s->requested = v ? get32(v) : 0;
	v = find_opt(msg, len, 54, &l);
	s->server_id = v ? get32(v) : 0;
	s->at = E.now;
	return 0;
}

static void env_bind(void *arg, const struct dhcp_lease *l)
{
	(void)arg;
	E.binds++;
	E.bound = *l;
}

static void env_unbind(void *arg)
{
	(void)arg;
	E.unbinds++;
}

static void env_log(void *arg, const char *line)
{
	(void)arg;
	E.lines++;
	snprintf(E.last, sizeof(E.last), "%s", line);
	if (getenv("DHCP_TEST_VERBOSE"))
		printf("  %8.3f s  %s\n", (double)E.now / 1000.0, line);
}

static uint32_t env_random(void *arg)
{
	(void)arg;
	E.rnd = E.rnd * 1664525u + 1013904223u;
	return E.rnd;
}

static const struct dhcp_ops OPS = { env_send, env_bind, env_unbind,
	env_log, env_random };

static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	E.now = 1000000;
	E.rnd = 42;
	return 0;
}

/* Run the client's timers forward until `until` (ms). */
static void advance(struct dhcp_client *c, uint64_t until)
{
	while (c->dc_next_ms && c->dc_next_ms <= until) {
		E.now = c->dc_next_ms;
		dhcp_timer(c, E.now);
	}
	E.now = until;
}

static void reply(struct dhcp_client *c, uint8_t type, uint32_t xid,
    uint32_t ip, uint32_t lease)
{
	struct rb r;
	size_t n = rb_std(&r, type, xid, ip, lease);

	dhcp_input(c, E.now, r.b, n);
}

/* INIT -> BOUND; returns the client in BOUND with lease `lease`. */
static void get_lease(struct dhcp_client *c, uint32_t lease)
{
	dhcp_init(c, &OPS, NULL, MAC, "nic0", "hv");
	dhcp_start(c, E.now);
	assert_int_equal(c->dc_state, DHCP_SELECTING);
	assert_int_equal(E.nsent, 1);
	assert_int_equal(E.sent[0].type, DHCPDISCOVER);
	assert_int_equal(E.sent[0].dst, 0xFFFFFFFFu);
	assert_int_equal(E.sent[0].src, 0);
	assert_true(E.sent[0].broadcast);
	E.now += 5;
	reply(c, DHCPOFFER, E.sent[0].xid, YOU, lease);
	assert_int_equal(c->dc_state, DHCP_REQUESTING);
	assert_int_equal(E.nsent, 2);
	assert_int_equal(E.sent[1].type, DHCPREQUEST);
	assert_int_equal(E.sent[1].xid, E.sent[0].xid);	/* same exchange */
	assert_int_equal(E.sent[1].requested, YOU);
	assert_int_equal(E.sent[1].server_id, SRV);
	assert_int_equal(E.sent[1].ciaddr, 0);
	/* a second OFFER (another server) changes nothing */
	reply(c, DHCPOFFER, E.sent[0].xid, IP(10, 0, 2, 16), lease);
	assert_int_equal(E.nsent, 2);
	E.now += 5;
	reply(c, DHCPACK, E.sent[1].xid, YOU, lease);
	assert_int_equal(c->dc_state, DHCP_BOUND);
	assert_int_equal(E.binds, 1);
	assert_int_equal(E.bound.dl_ip, YOU);
	assert_int_equal(E.bound.dl_mask, IP(255, 255, 255, 0));
	assert_int_equal(E.bound.dl_router, SRV);
	assert_int_equal(E.bound.dl_dns[0], IP(10, 0, 2, 3));
	assert_non_null(strstr(E.last, "nic0: dhcp: lease 10.0.2.15/24 "
	    "router 10.0.2.2"));
}

static void test_sm_lease_and_renew(void **state)
{
	struct dhcp_client c;
	uint64_t bound_at;

	(void)state;
	get_lease(&c, 1000);
	bound_at = E.now;
	assert_int_equal(E.bound.dl_t1_s, 500);
	assert_int_equal(E.bound.dl_t2_s, 875);
	/* Nothing happens before T1. */
	advance(&c, bound_at + 499 * 1000);
	assert_int_equal(E.nsent, 2);
	advance(&c, bound_at + 500 * 1000);
	assert_int_equal(c.dc_state, DHCP_RENEWING);
	assert_int_equal(E.nsent, 3);
	assert_int_equal(E.sent[2].type, DHCPREQUEST);
	assert_int_equal(E.sent[2].dst, SRV);		/* unicast */
	assert_int_equal(E.sent[2].src, YOU);
	assert_int_equal(E.sent[2].ciaddr, YOU);
	assert_int_equal(E.sent[2].requested, 0);	/* RFC 2131 4.3.2 */
	assert_int_equal(E.sent[2].server_id, 0);
	reply(&c, DHCPACK, E.sent[2].xid, YOU, 1000);
	assert_int_equal(c.dc_state, DHCP_BOUND);
	assert_int_equal(E.binds, 1);			/* same address */
	assert_int_equal(E.unbinds, 0);
	assert_int_equal(c.dc_stats.ds_leases, 2);
	assert_non_null(strstr(E.last, "renewed 10.0.2.15/24"));
	assert_int_equal(c.dc_next_ms, E.now + 500 * 1000);
}

static void test_sm_rebind_and_expire(void **state)
{
	struct dhcp_client c;
	uint64_t t0;

	(void)state;
	get_lease(&c, 1000);
	t0 = E.now;
	/* The server is gone: renewing retries (>= 60 s apart), then
	 * rebinding by broadcast at T2, then the lease ends. */
	advance(&c, t0 + 874 * 1000);
	assert_int_equal(c.dc_state, DHCP_RENEWING);
	for (int i = 3; i < E.nsent; i++) {
		assert_int_equal(E.sent[i].dst, SRV);
		if (i > 3)
			assert_true(E.sent[i].at - E.sent[i - 1].at >=
			    60 * 1000 || E.sent[i].at == t0 + 875 * 1000);
	}
	advance(&c, t0 + 875 * 1000);
	assert_int_equal(c.dc_state, DHCP_REBINDING);
	assert_int_equal(E.sent[E.nsent - 1].dst, 0xFFFFFFFFu);
	assert_int_equal(E.sent[E.nsent - 1].ciaddr, YOU);
	assert_int_equal(E.unbinds, 0);
	advance(&c, t0 + 1000 * 1000);
	assert_int_equal(E.unbinds, 1);
	assert_int_equal(c.dc_state, DHCP_SELECTING);
	assert_int_equal(E.sent[E.nsent - 1].type, DHCPDISCOVER);
	assert_false(c.dc_have_lease);
}

static void test_sm_backoff(void **state)
{
	static const uint32_t want[] = { 8, 16, 32, 64, 64, 64 };
	struct dhcp_client c;

	(void)state;
	dhcp_init(&c, &OPS, NULL, MAC, "nic0", NULL);
	dhcp_start(&c, E.now);
	/* first retry after 4 +- 1 s, then doubling up to 64 +- 1 s */
	advance(&c, E.now + 5000);
	assert_int_equal(E.nsent, 2);
	assert_true(E.sent[1].at - E.sent[0].at >= 3000 &&
	    E.sent[1].at - E.sent[0].at <= 5000);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t gap;

		advance(&c, E.now + (uint64_t)want[i] * 1000 + 1000);
		assert_int_equal(E.nsent, (int)i + 3);
		gap = E.sent[i + 2].at - E.sent[i + 1].at;
		assert_true(gap >= (uint64_t)want[i] * 1000 - 1000);
		assert_true(gap <= (uint64_t)want[i] * 1000 + 1000);
		assert_int_equal(E.sent[i + 2].type, DHCPDISCOVER);
		assert_int_equal(E.sent[i + 2].xid, E.sent[0].xid);
	}
	assert_non_null(strstr(E.last, "no OFFER after"));
	assert_true(c.dc_stats.ds_timeouts >= 6);
	/* a late OFFER still works */
	reply(&c, DHCPOFFER, E.sent[0].xid, YOU, 600);
	assert_int_equal(c.dc_state, DHCP_REQUESTING);
}

static void test_sm_request_timeout(void **state)
{
	struct dhcp_client c;

	(void)state;
	dhcp_init(&c, &OPS, NULL, MAC, "nic0", NULL);
	dhcp_start(&c, E.now);
	reply(&c, DHCPOFFER, E.sent[0].xid, YOU, 600);
	assert_int_equal(c.dc_state, DHCP_REQUESTING);
	/* no ACK: REQUEST 4 times, then back to DISCOVER */
	advance(&c, E.now + 200 * 1000);
	int requests = 0, discovers_after = 0;

	for (int i = 1; i < E.nsent; i++) {
		if (E.sent[i].type == DHCPREQUEST)
			requests++;
		else if (requests)
			discovers_after++;
	}
	assert_int_equal(requests, 4);
	assert_true(discovers_after >= 1);
	assert_int_not_equal(E.sent[E.nsent - 1].xid, E.sent[0].xid);
	assert_int_equal(E.binds, 0);
}

static void test_sm_nak_and_wrong_ack(void **state)
{
	struct dhcp_client c;
	struct rb r;
	size_t n;

	(void)state;
	dhcp_init(&c, &OPS, NULL, MAC, "nic0", NULL);
	dhcp_start(&c, E.now);
	reply(&c, DHCPOFFER, E.sent[0].xid, YOU, 600);
	/* an ACK for another address, or a reply to another xid: dropped */
	reply(&c, DHCPACK, E.sent[0].xid, IP(10, 0, 2, 99), 600);
	reply(&c, DHCPACK, E.sent[0].xid + 1, YOU, 600);
	assert_int_equal(c.dc_state, DHCP_REQUESTING);
	assert_int_equal(E.binds, 0);
	/* a NAK from another server: ignored; from ours: start over */
	rb_init(&r, E.sent[0].xid, 0);
	rb_type(&r, DHCPNAK);
	rb_opt32(&r, 54, IP(10, 0, 2, 9));
	n = rb_end(&r);
	dhcp_input(&c, E.now, r.b, n);
	assert_int_equal(c.dc_state, DHCP_REQUESTING);
	rb_init(&r, E.sent[0].xid, 0);
	rb_type(&r, DHCPNAK);
	rb_opt32(&r, 54, SRV);
	rb_opt(&r, 56, "no", 2);
	n = rb_end(&r);
	dhcp_input(&c, E.now, r.b, n);
	assert_int_equal(c.dc_state, DHCP_INIT);
	assert_non_null(strstr(E.last, "NAK from 10.0.2.2 (\"no\")"));
	advance(&c, E.now + 4000);
	assert_int_equal(c.dc_state, DHCP_SELECTING);
	assert_int_equal(E.sent[E.nsent - 1].type, DHCPDISCOVER);
}

static void test_sm_nak_while_renewing(void **state)
{
	struct dhcp_client c;
	struct rb r;
	size_t n;

	(void)state;
	get_lease(&c, 100);
	advance(&c, E.now + 50 * 1000);
	assert_int_equal(c.dc_state, DHCP_RENEWING);
	rb_init(&r, E.sent[E.nsent - 1].xid, 0);
	rb_type(&r, DHCPNAK);
	rb_opt32(&r, 54, SRV);
	n = rb_end(&r);
	dhcp_input(&c, E.now, r.b, n);
	assert_int_equal(E.unbinds, 1);
	assert_int_equal(c.dc_state, DHCP_INIT);
	/* a reply while nothing is asked is dropped */
	uint64_t dropped = c.dc_stats.ds_dropped;

	reply(&c, DHCPACK, E.sent[E.nsent - 1].xid, YOU, 100);
	assert_int_equal(c.dc_stats.ds_dropped, dropped + 1);
	assert_int_equal(E.binds, 1);
}

static void test_sm_lease_times_clamped(void **state)
{
	struct dhcp_client c;
	struct rb r;
	size_t n;

	(void)state;
	dhcp_init(&c, &OPS, NULL, MAC, "nic0", NULL);
	dhcp_start(&c, E.now);
	reply(&c, DHCPOFFER, E.sent[0].xid, YOU, 1);
	/* lease 1 s (raised to 10), T1 beyond T2, T2 beyond the lease */
	rb_std(&r, DHCPACK, E.sent[0].xid, YOU, 1);
	r.o--;			/* drop END */
	rb_opt32(&r, 58, 50);
	rb_opt32(&r, 59, 40);
	n = rb_end(&r);
	dhcp_input(&c, E.now, r.b, n);
	assert_int_equal(c.dc_state, DHCP_BOUND);
	assert_int_equal(E.bound.dl_lease_s, 10);
	assert_true(E.bound.dl_t1_s < E.bound.dl_t2_s);
	assert_true(E.bound.dl_t2_s < E.bound.dl_lease_s);
	/* infinite lease: no timer at all */
	dhcp_start(&c, E.now);
	reply(&c, DHCPOFFER, E.sent[E.nsent - 1].xid, YOU, 0xFFFFFFFFu);
	reply(&c, DHCPACK, E.sent[E.nsent - 1].xid, YOU, 0xFFFFFFFFu);
	assert_int_equal(c.dc_state, DHCP_BOUND);
	assert_int_equal(c.dc_next_ms, 0);
	dhcp_stop(&c);
	assert_int_equal(c.dc_state, DHCP_STOPPED);
	assert_int_equal(E.unbinds, E.binds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_not_ours),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_parse_bad_options),
		cmocka_unit_test(test_parse_bad_addresses),
		cmocka_unit_test(test_parse_overload_and_lists),
		cmocka_unit_test(test_parse_mutations),
		cmocka_unit_test(test_build),
		cmocka_unit_test_setup(test_sm_lease_and_renew, setup),
		cmocka_unit_test_setup(test_sm_rebind_and_expire, setup),
		cmocka_unit_test_setup(test_sm_backoff, setup),
		cmocka_unit_test_setup(test_sm_request_timeout, setup),
		cmocka_unit_test_setup(test_sm_nak_and_wrong_ack, setup),
		cmocka_unit_test_setup(test_sm_nak_while_renewing, setup),
		cmocka_unit_test_setup(test_sm_lease_times_clamped, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
