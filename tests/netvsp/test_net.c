/*
 * tests/netvsp/test_net.c - the network back ends and the offload
 * emulation: --net parser, MAC derivation, the virtual switch (learning,
 * flooding, VLANs), the null source, checksums / LSO / Toeplitz against
 * known values and an independent reference, libslirp (DHCP exchange and a
 * host port forward through the epoll loop), pcap files, and a TAP device
 * in a private network namespace where the Linux kernel is the checksum
 * and segmentation oracle.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/log.h"
#include "host/loop.h"
#include "host/net/net.h"
#include "host/net/offload.h"
#include "host/net/switch.h"
#include "hv/rndis.h"

#ifdef HVS_HAVE_PCAP
#include <pcap/pcap.h>
#endif

static void log_sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	(void)level;
	if (getenv("NETVSP_VERBOSE"))
		fprintf(stderr, "%s\n", line);
}

static int setup(void **state)
{
	(void)state;
	hvs_log_set_sink(log_sink, NULL);
	return 0;
}

static uint64_t scaled_ms(uint64_t ms)
{
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");
	uint64_t k = s != NULL && atoi(s) > 0 ? (uint64_t)atoi(s) : 1;
	return ms * k;
}

/* ---- a recording NIC ----------------------------------------------------- */

#define REC_MAX 64

struct rec {
	unsigned n;
	unsigned refuse_every;		/* -EAGAIN on every Nth offer */
	unsigned offers;
	bool refused;
	struct hvs_net_ep *ep;
	uint16_t tci[REC_MAX];
	uint32_t len[REC_MAX];
	uint8_t data[REC_MAX][2048];
	int links;
	bool last_link;
};

static int rec_rx(void *arg, const struct hvs_net_frame *f)
{
	struct rec *r = arg;
	r->offers++;
	if (r->refuse_every && r->offers % r->refuse_every == 0) {
		r->refused = true;
		return -EAGAIN;
	}
	if (r->n < REC_MAX) {
		r->tci[r->n] = f->nf_tci;
		r->len[r->n] = f->nf_len;
		memcpy(r->data[r->n], f->nf_data,
		       f->nf_len < 2048 ? f->nf_len : 2048);
	}
	r->n++;
	return 0;
}

static void rec_link(void *arg, bool up)
{
	struct rec *r = arg;
	r->links++;
	r->last_link = up;
}

static const struct hvs_net_nic_ops rec_ops = { .no_rx = rec_rx,
						.no_link = rec_link };

static struct hvs_net_ep *open_ep(struct hvs_loop *loop, const char *spec,
				  struct rec *r)
{
	struct hvs_net_spec s;
	char err[256];
	struct hvs_net_ep *ep = NULL;
	assert_int_equal(hvs_net_parse(spec, &s, err, sizeof(err)), 0);
	int rc = hvs_net_open(loop, &s, spec, &rec_ops, r, &ep, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "open %s: %s\n", spec, err);
	assert_int_equal(rc, 0);
	r->ep = ep;
	return ep;
}

/* ---- frame building -------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

static void eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6],
		uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
}

/* IPv4 header at f+14 (20 bytes, checksum 0), returns the L4 offset. */
static uint32_t ip4(uint8_t *f, uint8_t proto, uint32_t src, uint32_t dst,
		    uint32_t l4len, uint16_t id)
{
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + l4len));
	put16(ip + 4, id);
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	return 34;
}

/* IPv6 header at f+14 (40 bytes), returns the L4 offset. */
static uint32_t ip6(uint8_t *f, uint8_t proto, const uint8_t src[16],
		    const uint8_t dst[16], uint32_t l4len)
{
	uint8_t *ip = f + 14;
	memset(ip, 0, 40);
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)l4len);
	ip[6] = proto;
	ip[7] = 64;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	return 54;
}

/*
 * Reference Internet checksum, written apart from offload.c: it lays the
 * pseudo-header and the segment out in one buffer and sums 16-bit words
 * into a 64-bit accumulator.
 */
static uint16_t ref_l4_csum(const uint8_t *f, uint32_t l4off, uint32_t l4len,
			    bool v6, uint8_t proto, uint32_t csum_at)
{
	static uint8_t buf[70000];
	uint32_t n = 0;
	if (!v6) {
		memcpy(buf, f + 14 + 12, 8);
		buf[8] = 0;
		buf[9] = proto;
		put16(buf + 10, (uint16_t)l4len);
		n = 12;
	} else {
		memcpy(buf, f + 14 + 8, 32);
		put32(buf + 32, l4len);
		buf[36] = buf[37] = buf[38] = 0;
		buf[39] = proto;
		n = 40;
	}
	memcpy(buf + n, f + l4off, l4len);
	buf[n + csum_at] = buf[n + csum_at + 1] = 0;
	n += l4len;
	if (n & 1)
		buf[n++] = 0;
	uint64_t s = 0;
	for (uint32_t i = 0; i < n; i += 2)
		s += (uint64_t)buf[i] << 8 | buf[i + 1];
	while (s > 0xFFFF)
		s = (s >> 16) + (s & 0xFFFF);
	return (uint16_t)~s;
}

static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0xa };
static const uint8_t mac_b[6] = { 0x02, 0, 0, 0, 0, 0xb };
static const uint8_t mac_c[6] = { 0x02, 0, 0, 0, 0, 0xc };
static const uint8_t mac_bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- parser ------------------------------------------------------------------ */

static void test_parse(void **state)
{
	(void)state;
	struct hvs_net_spec s;
	char err[256];

	assert_int_equal(hvs_net_parse("null", &s, err, sizeof(err)), 0);
	assert_int_equal(s.ns_kind, HVS_NET_NULL);
	assert_int_equal(s.ns_mtu, 1500);
	assert_int_equal(s.ns_queues, HVS_NET_DEFAULT_QUEUES);
	assert_false(s.ns_have_mac);

	assert_int_equal(hvs_net_parse("switch", &s, err, sizeof(err)), 0);
	assert_int_equal(s.ns_kind, HVS_NET_SWITCH);
	assert_string_equal(s.ns_arg, "default");
	assert_int_equal(hvs_net_parse("switch=lab,vlan=12,mtu=9000,queues=4,"
				       "mac=02:aa:bb:cc:dd:ee,link=down,"
				       "pcap=/tmp/a,,b.pcap,name=eth,,x",
				       &s, err, sizeof(err)), 0);
	assert_string_equal(s.ns_arg, "lab");
	assert_int_equal(s.ns_vlan, 12);
	assert_int_equal(s.ns_mtu, 9000);
	assert_int_equal(s.ns_queues, 4);
	assert_true(s.ns_have_mac);
	assert_int_equal(s.ns_mac[5], 0xee);
	assert_true(s.ns_link_down);
	assert_string_equal(s.ns_pcap, "/tmp/a,b.pcap");
	assert_string_equal(s.ns_friendly, "eth,x");

	assert_int_equal(hvs_net_parse("tap=tap7", &s, err, sizeof(err)), 0);
	assert_int_equal(s.ns_kind, HVS_NET_TAP);
	assert_string_equal(s.ns_arg, "tap7");

	assert_int_equal(hvs_net_parse("user,net=192.168.7.0/24,"
				       "hostfwd=tcp::2222-:22,"
				       "hostfwd=udp:127.0.0.1:5353-10.0.2.9:53,"
				       "ipv6=off", &s, err, sizeof(err)), 0);
	assert_int_equal(s.ns_kind, HVS_NET_USER);
	assert_int_equal(s.ns_net, 0xC0A80700u);
	assert_int_equal(s.ns_prefix, 24);
	assert_false(s.ns_ipv6);
	assert_int_equal(s.ns_nhostfwd, 2);
	assert_false(s.ns_hostfwd[0].hf_udp);
	assert_int_equal(s.ns_hostfwd[0].hf_host_addr, 0);
	assert_int_equal(s.ns_hostfwd[0].hf_host_port, 2222);
	assert_int_equal(s.ns_hostfwd[0].hf_guest_addr, 0);
	assert_int_equal(s.ns_hostfwd[0].hf_guest_port, 22);
	assert_true(s.ns_hostfwd[1].hf_udp);
	assert_int_equal(s.ns_hostfwd[1].hf_host_addr, 0x7F000001u);
	assert_int_equal(s.ns_hostfwd[1].hf_guest_addr, 0x0A000209u);
	assert_int_equal(s.ns_hostfwd[1].hf_guest_port, 53);

	assert_int_equal(hvs_net_parse("null,gen=1514,count=10", &s, err,
				       sizeof(err)), 0);
	assert_int_equal(s.ns_gen_len, 1514);
	assert_int_equal(s.ns_gen_count, 10);

	static const char *bad[] = {
		"", "bogus", "tap", "tap=", "tap=waytoolonginterfacename",
		"null=x", "user=x", "switch,vlan=0", "switch,vlan=4095",
		"null,vlan=3", "null,mtu=1499", "null,mtu=9203", "null,mtu=x",
		"null,queues=0", "null,queues=65", "null,mac=01:00:00:00:00:01",
		"null,mac=02:00:00:00:00", "null,mac=zz:00:00:00:00:01",
		"null,link=sideways", "null,frob=1", "null,pcap", "null,pcap=",
		"user,net=10.0.2.0", "user,net=10.0.2.1/24", "user,net=10.0.0.0/28",
		"user,hostfwd=tcp:2222-:22", "user,hostfwd=sctp::1-:2",
		"user,hostfwd=tcp::0-:22", "user,hostfwd=tcp::70000-:22",
		"switch,hostfwd=tcp::1-:2", "null,count=3", "switch,gen=100",
		"null,gen=1515", "null,gen=13", "user,ipv6=maybe",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (hvs_net_parse(bad[i], &s, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
}

static void test_mac_derive(void **state)
{
	(void)state;
	uint8_t a[6], b[6], c[6], d[6];
	hvs_net_mac_derive("vm1", 0, a);
	hvs_net_mac_derive("vm1", 0, b);
	hvs_net_mac_derive("vm1", 1, c);
	hvs_net_mac_derive("vm2", 0, d);
	assert_memory_equal(a, b, 6);
	assert_memory_not_equal(a, c, 6);
	assert_memory_not_equal(a, d, 6);
	for (int i = 0; i < 3; i++) {
		const uint8_t *m = i == 0 ? a : i == 1 ? c : d;
		assert_int_equal(m[0] & 0x03, 0x02); /* local, unicast */
	}
	uint8_t m[6];
	assert_int_equal(hvs_net_mac_parse("02-15-5D-01-02-03", m), 0);
	assert_int_equal(m[2], 0x5d);
	assert_int_equal(hvs_net_mac_parse("02:15:5d:01:02", m), -EINVAL);
}

/* ---- switch ------------------------------------------------------------------- */

static void send_frame(struct hvs_net_ep *ep, const uint8_t dst[6],
		       const uint8_t src[6], uint16_t tci)
{
	uint8_t f[64];
	memset(f, 0, sizeof(f));
	eth(f, dst, src, 0x88B5);
	struct hvs_net_frame fr = { .nf_data = f, .nf_len = 60, .nf_tci = tci };
	hvs_net_send(ep, &fr);
}

static void test_switch_learning(void **state)
{
	(void)state;
	struct hvs_loop *loop = hvs_loop_create();
	struct rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct hvs_switch_stats st;

	assert_non_null(loop);
	open_ep(loop, "switch=learn", &r1);
	open_ep(loop, "switch=learn", &r2);
	open_ep(loop, "switch=learn", &r3);
	assert_int_equal(hvs_switch_get_stats("learn", &st), 0);
	assert_int_equal(st.ss_ports, 3);

	/* broadcast from A floods to the others, never back */
	send_frame(r1.ep, mac_bc, mac_a, 0);
	assert_int_equal(r1.n, 0);
	assert_int_equal(r2.n, 1);
	assert_int_equal(r3.n, 1);
	/* B answers A: A was learned on port 1, only port 1 gets it */
	send_frame(r2.ep, mac_a, mac_b, 0);
	assert_int_equal(r1.n, 1);
	assert_int_equal(r3.n, 1);
	assert_memory_equal(r1.data[0] + 6, mac_b, 6);
	/* A to B: learned too */
	send_frame(r1.ep, mac_b, mac_a, 0);
	assert_int_equal(r2.n, 2);
	assert_int_equal(r3.n, 1);
	/* unknown unicast floods */
	send_frame(r1.ep, mac_c, mac_a, 0);
	assert_int_equal(r2.n, 3);
	assert_int_equal(r3.n, 2);
	/* multicast floods */
	static const uint8_t mc[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
	send_frame(r3.ep, mc, mac_c, 0);
	assert_int_equal(r1.n, 2);
	assert_int_equal(r2.n, 4);
	/* A moves to port 3: frames for A follow it */
	send_frame(r3.ep, mac_bc, mac_a, 0);
	send_frame(r2.ep, mac_a, mac_b, 0);
	assert_int_equal(r3.n, 3);
	assert_int_equal(r1.n, 3); /* the broadcast only */
	assert_int_equal(hvs_switch_get_stats("learn", &st), 0);
	assert_true(st.ss_learned >= 3);
	assert_int_equal(st.ss_moves, 1);
	assert_int_equal(st.ss_forwarded, 3);
	assert_int_equal(st.ss_flooded, 4);
	/* a port that refuses: counted as a switch drop, not a stall */
	r1.refuse_every = 1;
	send_frame(r2.ep, mac_bc, mac_b, 0);
	assert_int_equal(hvs_switch_get_stats("learn", &st), 0);
	assert_int_equal(st.ss_dropped, 1);
	struct hvs_net_ep_stats es;
	hvs_net_get_stats(r1.ep, &es);
	assert_int_equal(es.es_rx_dropped, 1);

	/* closing a port forgets what it learned */
	hvs_net_close(r3.ep);
	send_frame(r2.ep, mac_a, mac_b, 0);
	assert_int_equal(r1.offers, 5); /* flooded again */
	hvs_net_close(r1.ep);
	hvs_net_close(r2.ep);
	assert_int_equal(hvs_switch_get_stats("learn", &st), -ENOENT);
	hvs_loop_destroy(loop);
}

static void test_switch_vlan(void **state)
{
	(void)state;
	struct hvs_loop *loop = hvs_loop_create();
	struct rec a = { 0 }, b = { 0 }, c = { 0 }, t = { 0 }, o = { 0 };
	struct hvs_switch_stats st;

	open_ep(loop, "switch=vl,vlan=10", &a);
	open_ep(loop, "switch=vl,vlan=10", &b);
	open_ep(loop, "switch=vl,vlan=20", &c);
	open_ep(loop, "switch=vl", &t);		/* trunk */
	open_ep(loop, "switch=other", &o);	/* another switch */

	/* access port VLAN 10: b gets it untagged, the trunk tagged 10 */
	send_frame(a.ep, mac_bc, mac_a, 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.tci[0], 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.tci[0] & 0xFFF, 10);
	assert_int_equal(o.n, 0);
	/* priority survives into the trunk's tag */
	send_frame(a.ep, mac_bc, mac_a, (uint16_t)(5u << 13));
	assert_int_equal(t.tci[1], (5u << 13) | 10u);
	/* the trunk sends into VLAN 20: only c, untagged */
	send_frame(t.ep, mac_bc, mac_c, 20);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.tci[0], 0);
	assert_int_equal(a.n, 0);
	assert_int_equal(b.n, 2);
	/* untagged from the trunk: VLAN 0, no access port sees it */
	send_frame(t.ep, mac_bc, mac_c, 0);
	assert_int_equal(a.n + b.n + c.n, 3);
	/* an access port tagging another VLAN is dropped */
	assert_int_equal(hvs_switch_get_stats("vl", &st), 0);
	uint64_t vd = st.ss_vlan_dropped;
	send_frame(a.ep, mac_bc, mac_a, 20);
	assert_int_equal(c.n, 1);
	assert_int_equal(hvs_switch_get_stats("vl", &st), 0);
	assert_int_equal(st.ss_vlan_dropped, vd + 1);
	/* VID 4095 is reserved (802.1Q): dropped from a trunk too */
	send_frame(t.ep, mac_bc, mac_c, 0xFFF);
	assert_int_equal(a.n + b.n + c.n, 3);
	assert_int_equal(hvs_switch_get_stats("vl", &st), 0);
	assert_int_equal(st.ss_vlan_dropped, vd + 2);
	/* the same MAC in two VLANs are two FDB entries */
	send_frame(t.ep, mac_bc, mac_b, 20);
	send_frame(b.ep, mac_a, mac_b, 0);	/* learn B in VLAN 10 on b */
	send_frame(a.ep, mac_b, mac_a, 0);	/* to B in VLAN 10 */
	assert_int_equal(b.n, 3);
	assert_int_equal(c.n, 2);

	hvs_net_close(a.ep);
	hvs_net_close(b.ep);
	hvs_net_close(c.ep);
	hvs_net_close(t.ep);
	hvs_net_close(o.ep);
	hvs_loop_destroy(loop);
}

/* ---- null ---------------------------------------------------------------------- */

struct ready_ctx {
	struct rec *r;
	struct hvs_loop_timer *t;
};

static void ready_fire(void *arg)
{
	struct ready_ctx *c = arg;
	c->t = NULL;
	hvs_net_rx_ready(c->r->ep);
}

static void test_null_gen(void **state)
{
	(void)state;
	struct hvs_loop *loop = hvs_loop_create();
	struct rec r = { .refuse_every = 7 };
	struct ready_ctx rc = { .r = &r };
	struct hvs_net_ep_stats es;

	struct hvs_net_ep *ep = open_ep(loop, "null,gen=100,count=500", &r);
	uint64_t deadline = hvs_now_ns() + scaled_ms(5000) * 1000000ull;
	while (r.n < 500 && hvs_now_ns() < deadline) {
		hvs_loop_run_once(loop, 10);
		if (r.refused && rc.t == NULL) {
			/* the NIC has room again a little later */
			r.refused = false;
			rc.t = hvs_loop_timer_add(loop, 1000000, 0, ready_fire,
						  &rc);
		}
	}
	assert_int_equal(r.n, 500);
	assert_int_equal(r.len[0], 100);
	hvs_net_get_stats(ep, &es);
	assert_int_equal(es.es_rx_frames, 500);
	assert_true(es.es_rx_deferred >= 500 / 7 - 1);
	/* the generator stops at count */
	for (int i = 0; i < 20; i++)
		hvs_loop_run_once(loop, 1);
	assert_int_equal(r.n, 500);
	/* the sink counts */
	send_frame(ep, mac_bc, mac_a, 0);
	hvs_net_get_stats(ep, &es);
	assert_int_equal(es.es_tx_frames, 1);
	hvs_loop_timer_cancel(rc.t);
	hvs_net_close(ep);
	hvs_loop_destroy(loop);
}

/* ---- checksums, LSO, RSS ------------------------------------------------------------ */

static void test_ipv4_header_known(void **state)
{
	(void)state;
	/* a well-known IPv4 header whose checksum is 0xb861 */
	static const uint8_t hdr[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00,
					 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
					 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
					 0x00, 0xc7 };
	uint8_t f[14 + 0x73];
	memset(f, 0, sizeof(f));
	eth(f, mac_b, mac_a, HVS_ETHERTYPE_IPV4);
	memcpy(f + 14, hdr, 20);
	assert_int_equal(hvs_csum_offload(f, sizeof(f),
					  HVS_CSUM_IPV4 | HVS_CSUM_IPHDR, 0), 0);
	assert_int_equal(f[24], 0xb8);
	assert_int_equal(f[25], 0x61);
	assert_true(hvs_csum_verify(f, sizeof(f)) & HVS_CSUM_IPHDR);
}

static void test_csum_offload(void **state)
{
	(void)state;
	uint8_t f[1600];
	static const uint8_t s6[16] = { 0xfe, 0xc0, [15] = 0x0f };
	static const uint8_t d6[16] = { 0xfe, 0xc0, [15] = 0x02 };

	for (uint32_t plen = 0; plen < 1400; plen += 97) {
		for (int kind = 0; kind < 4; kind++) {
			bool v6 = kind >= 2, tcp = kind & 1;
			uint32_t hl = tcp ? 20 : 8;
			uint8_t proto = tcp ? HVS_IPPROTO_TCP : HVS_IPPROTO_UDP;
			memset(f, 0, sizeof(f));
			eth(f, mac_b, mac_a, v6 ? HVS_ETHERTYPE_IPV6
						: HVS_ETHERTYPE_IPV4);
			uint32_t l4 = v6 ? ip6(f, proto, s6, d6, hl + plen)
					 : ip4(f, proto, 0x0a000202, 0x0a00020f,
					       hl + plen, 7);
			put16(f + l4, 1234);
			put16(f + l4 + 2, 80);
			if (tcp) {
				put32(f + l4 + 4, 0x11223344);
				f[l4 + 12] = 0x50;
				f[l4 + 13] = 0x18;
				put16(f + l4 + 14, 5000);
				put16(f + l4 + 16, 0xdead); /* junk seed */
			} else {
				put16(f + l4 + 4, (uint16_t)(8 + plen));
			}
			for (uint32_t i = 0; i < plen; i++)
				f[l4 + hl + i] = (uint8_t)(i * 7 + plen);
			uint32_t len = l4 + hl + plen;
			/* Ethernet padding must not be summed */
			uint32_t wire = len < 60 ? 60 : len;
			unsigned fl = (v6 ? HVS_CSUM_IPV6 : HVS_CSUM_IPV4 | HVS_CSUM_IPHDR) |
				      (tcp ? HVS_CSUM_TCP : HVS_CSUM_UDP);
			assert_int_equal(hvs_csum_offload(f, wire, fl, l4), 0);
			uint32_t at = tcp ? 16 : 6;
			uint16_t want = ref_l4_csum(f, l4, hl + plen, v6, proto, at);
			if (!tcp && want == 0)
				want = 0xFFFF;
			assert_int_equal(get16(f + l4 + at), want);
			unsigned ok = hvs_csum_verify(f, wire);
			assert_true(ok & (tcp ? HVS_CSUM_TCP : HVS_CSUM_UDP));
			if (!v6)
				assert_true(ok & HVS_CSUM_IPHDR);
			/* one flipped payload bit fails verification */
			if (plen > 0) {
				f[l4 + hl] ^= 0x10;
				ok = hvs_csum_verify(f, wire);
				assert_false(ok & (HVS_CSUM_TCP | HVS_CSUM_UDP));
			}
		}
	}
	/* requests that do not match the frame */
	memset(f, 0, sizeof(f));
	eth(f, mac_b, mac_a, HVS_ETHERTYPE_IPV4);
	uint32_t l4 = ip4(f, HVS_IPPROTO_UDP, 1, 2, 8, 0);
	assert_int_equal(hvs_csum_offload(f, 60, HVS_CSUM_TCP, l4), -EINVAL);
	assert_int_equal(hvs_csum_offload(f, 60, HVS_CSUM_IPV6, 0), -EINVAL);
	assert_int_equal(hvs_csum_offload(f, 60, HVS_CSUM_UDP, l4 + 4), -EINVAL);
	assert_int_equal(hvs_csum_offload(f, 20, HVS_CSUM_UDP, l4), -EINVAL);
	put16(f + 16, 2000); /* IP length beyond the frame */
	assert_int_equal(hvs_csum_offload(f, 60, HVS_CSUM_UDP, l4), -EINVAL);
	eth(f, mac_b, mac_a, 0x0806);
	assert_int_equal(hvs_csum_offload(f, 60, HVS_CSUM_UDP, 0), -EINVAL);
}

struct segs {
	unsigned n;
	uint32_t len[64];
	uint8_t data[64][1600];
};

static int seg_emit(void *arg, const uint8_t *seg, uint32_t len)
{
	struct segs *s = arg;
	assert_true(s->n < 64);
	assert_true(len <= 1600);
	s->len[s->n] = len;
	memcpy(s->data[s->n], seg, len);
	s->n++;
	return 0;
}

static void test_lso(void **state)
{
	(void)state;
	static uint8_t f[70000];
	static uint8_t scratch[HVS_NET_MAX_FRAME];
	static struct segs s;
	static const uint8_t s6[16] = { 0xfe, 0xc0, [15] = 0x0f };
	static const uint8_t d6[16] = { 0xfe, 0xc0, [15] = 0x02 };
	const uint32_t payload = 20000;

	for (int v6 = 0; v6 < 2; v6++) {
		memset(f, 0, sizeof(f));
		memset(&s, 0, sizeof(s));
		eth(f, mac_b, mac_a, v6 ? HVS_ETHERTYPE_IPV6 : HVS_ETHERTYPE_IPV4);
		/* LSO senders zero the IP length (spec 2.4) */
		uint32_t l4 = v6 ? ip6(f, HVS_IPPROTO_TCP, s6, d6, 0)
				 : ip4(f, HVS_IPPROTO_TCP, 0x0a000202,
				       0x0a00020f, 0, 0x100);
		if (!v6)
			put16(f + 16, 0);
		put16(f + l4, 40000);
		put16(f + l4 + 2, 22);
		put32(f + l4 + 4, 0xfffff000u); /* wraps during the send */
		put32(f + l4 + 8, 77);
		f[l4 + 12] = 0x80; /* 32-byte header: options */
		f[l4 + 13] = 0x80 | 0x10 | 0x08 | 0x01; /* CWR ACK PSH FIN */
		put16(f + l4 + 14, 1000);
		f[l4 + 20] = 1; f[l4 + 21] = 1; /* NOP NOP */
		f[l4 + 22] = 8; f[l4 + 23] = 10; /* timestamps */
		uint32_t hdr = l4 + 32;
		uint32_t mss = 1514 - hdr; /* full-sized segments */
		for (uint32_t i = 0; i < payload; i++)
			f[hdr + i] = (uint8_t)(i ^ (i >> 8));
		int n = hvs_lso_segment(f, hdr + payload, v6 != 0, l4, mss, 1514,
					scratch, seg_emit, &s);
		assert_int_equal(n, (int)((payload + mss - 1) / mss));
		assert_int_equal(s.n, (unsigned)n);
		uint32_t got = 0;
		for (unsigned i = 0; i < s.n; i++) {
			const uint8_t *g = s.data[i];
			uint32_t seg = s.len[i] - hdr;
			assert_true(s.len[i] <= 1514);
			assert_int_equal(seg, i + 1 < s.n ? mss : payload - got);
			assert_memory_equal(g, f, 14);
			if (!v6) {
				assert_int_equal(get16(g + 16), 20 + 32 + seg);
				assert_int_equal(get16(g + 18), 0x100 + i);
			} else {
				assert_int_equal(get16(g + 18), 32 + seg);
			}
			assert_int_equal(get32(g + l4 + 4), 0xfffff000u + got);
			uint8_t fl = g[l4 + 13];
			assert_int_equal(!!(fl & 0x80), i == 0);
			assert_int_equal(!!(fl & 0x09), i + 1 == s.n);
			assert_true(fl & 0x10);
			assert_memory_equal(g + l4 + 20, f + l4 + 20, 12);
			assert_memory_equal(g + hdr, f + hdr + got, seg);
			assert_int_equal(get16(g + l4 + 16),
					 ref_l4_csum(g, l4, 32 + seg, v6 != 0,
						     HVS_IPPROTO_TCP, 16));
			unsigned ok = hvs_csum_verify(g, s.len[i]);
			assert_true(ok & HVS_CSUM_TCP);
			if (!v6)
				assert_true(ok & HVS_CSUM_IPHDR);
			got += seg;
		}
		assert_int_equal(got, payload);
	}
	/* refusals */
	memset(&s, 0, sizeof(s));
	uint32_t l4 = 34;
	assert_int_equal(hvs_lso_segment(f, 2000, false, l4, 0, 1514, scratch,
					 seg_emit, &s), -EINVAL);
	assert_int_equal(hvs_lso_segment(f, 2000, false, l4, 1500, 1514,
					 scratch, seg_emit, &s), -EINVAL);
	assert_int_equal(hvs_lso_segment(f, 40, false, l4, 100, 1514,
					 scratch, seg_emit, &s), -EINVAL);
	assert_int_equal(s.n, 0);
}

static void test_toeplitz_known(void **state)
{
	(void)state;
	/* Microsoft's RSS verification key and IPv4 vectors */
	static const uint8_t key[40] = {
		0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
		0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
		0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
		0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa };
	static const struct {
		uint32_t src, dst;
		uint16_t sport, dport;
		uint32_t h2, h4;
	} v[] = {
		{ 0x420995bb, 0xa18e6450, 2794, 1766, 0x323e8fc2, 0x51ccc178 },
		{ 0xc75c6f02, 0x41458c53, 14230, 4739, 0xd718262a, 0xc626b0ea },
		{ 0x1813c65f, 0x0c16cfb8, 12898, 38024, 0xd2d0a5de, 0x5c2b394a },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t f[64];
		uint32_t h, t;
		memset(f, 0, sizeof(f));
		eth(f, mac_b, mac_a, HVS_ETHERTYPE_IPV4);
		uint32_t l4 = ip4(f, HVS_IPPROTO_TCP, v[i].src, v[i].dst, 20, 0);
		put16(f + l4, v[i].sport);
		put16(f + l4 + 2, v[i].dport);
		f[l4 + 12] = 0x50;
		assert_int_equal(hvs_rss_hash(f, 60, key, 40,
					      NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4,
					      &h, &t), 0);
		assert_int_equal(t, NDIS_HASH_TCP_IPV4);
		assert_int_equal(h, v[i].h4);
		assert_int_equal(hvs_rss_hash(f, 60, key, 40, NDIS_HASH_IPV4,
					      &h, &t), 0);
		assert_int_equal(t, NDIS_HASH_IPV4);
		assert_int_equal(h, v[i].h2);
		assert_int_equal(hvs_rss_hash(f, 60, key, 40, NDIS_HASH_IPV6,
					      &h, &t), -ENOENT);
	}
}

/* ---- pcap ----------------------------------------------------------------------- */

static void test_pcap(void **state)
{
	(void)state;
	char path[] = "/tmp/netvsp-pcap-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	char spec[128];
	snprintf(spec, sizeof(spec), "null,pcap=%s", path);
	struct hvs_net_spec s;
	char err[256];
	assert_int_equal(hvs_net_parse(spec, &s, err, sizeof(err)), 0);
	struct hvs_loop *loop = hvs_loop_create();
	struct rec r = { 0 };
	struct hvs_net_ep *ep = NULL;
	int rc = hvs_net_open(loop, &s, "pcap", &rec_ops, &r, &ep, err,
			      sizeof(err));
#ifndef HVS_HAVE_PCAP
	assert_int_equal(rc, -EOPNOTSUPP);
	unlink(path);
	hvs_loop_destroy(loop);
	skip();
#else
	assert_int_equal(rc, 0);
	/* a UDP frame, and a tagged one */
	uint8_t f[128];
	memset(f, 0, sizeof(f));
	eth(f, mac_b, mac_a, HVS_ETHERTYPE_IPV4);
	uint32_t l4 = ip4(f, HVS_IPPROTO_UDP, 0x0a000202, 0x0a00020f, 8 + 20, 1);
	put16(f + l4, 5000);
	put16(f + l4 + 2, 6000);
	put16(f + l4 + 4, 28);
	assert_int_equal(hvs_csum_offload(f, l4 + 28, HVS_CSUM_IPV4 |
					  HVS_CSUM_IPHDR | HVS_CSUM_UDP, l4), 0);
	struct hvs_net_frame fr = { .nf_data = f, .nf_len = l4 + 28 };
	assert_int_equal(hvs_net_send(ep, &fr), 0);
	fr.nf_tci = (3u << 13) | 42;
	assert_int_equal(hvs_net_send(ep, &fr), 0);
	hvs_net_close(ep);

	char perr[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, perr);
	assert_non_null(p);
	assert_int_equal(pcap_datalink(p), DLT_EN10MB);
	struct pcap_pkthdr *h;
	const u_char *d;
	assert_int_equal(pcap_next_ex(p, &h, &d), 1);
	assert_int_equal(h->caplen, l4 + 28);
	assert_memory_equal(d, f, l4 + 28);
	assert_int_equal(pcap_next_ex(p, &h, &d), 1);
	assert_int_equal(h->caplen, l4 + 28 + 4);
	assert_int_equal(get16(d + 12), 0x8100);
	assert_int_equal(get16(d + 14), (3u << 13) | 42);
	assert_memory_equal(d + 16, f + 12, l4 + 28 - 12);
	assert_int_equal(pcap_next_ex(p, &h, &d), -2); /* end */
	pcap_close(p);

	const char *tshark = getenv("NETVSP_TSHARK");
	if (tshark != NULL && *tshark != '\0') {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "%s -r %s -T fields -e frame.protocols "
			 "2>/dev/null", tshark, path);
		FILE *pp = popen(cmd, "r");
		assert_non_null(pp);
		char line[256];
		unsigned n = 0, vlan = 0, udp = 0;
		while (fgets(line, sizeof(line), pp) != NULL) {
			n++;
			vlan += strstr(line, "vlan") != NULL;
			udp += strstr(line, "udp") != NULL;
		}
		assert_int_equal(pclose(pp), 0);
		assert_int_equal(n, 2);
		assert_int_equal(vlan, 1);
		assert_int_equal(udp, 2);
	}
	unlink(path);
	hvs_loop_destroy(loop);
#endif
}

/* ---- libslirp ------------------------------------------------------------------------- */

#ifdef HVS_HAVE_SLIRP
/* A DHCPDISCOVER from mac_a, as a guest's first frame. */
static uint32_t dhcp_discover(uint8_t *f, uint32_t xid)
{
	const uint32_t bootp = 300;
	memset(f, 0, 14 + 20 + 8 + bootp);
	eth(f, mac_bc, mac_a, HVS_ETHERTYPE_IPV4);
	uint32_t l4 = ip4(f, HVS_IPPROTO_UDP, 0, 0xffffffff, 8 + bootp, 0);
	put16(f + l4, 68);
	put16(f + l4 + 2, 67);
	put16(f + l4 + 4, (uint16_t)(8 + bootp));
	uint8_t *b = f + l4 + 8;
	b[0] = 1;	/* BOOTREQUEST */
	b[1] = 1;	/* Ethernet */
	b[2] = 6;
	put32(b + 4, xid);
	memcpy(b + 28, mac_a, 6);
	put32(b + 236, 0x63825363); /* magic cookie */
	b[240] = 53; b[241] = 1; b[242] = 1; /* DHCPDISCOVER */
	b[243] = 255;
	uint32_t len = l4 + 8 + bootp;
	assert_int_equal(hvs_csum_offload(f, len, HVS_CSUM_IPV4 | HVS_CSUM_IPHDR |
					  HVS_CSUM_UDP, l4), 0);
	return len;
}

/* DHCP option `code` of a BOOTP reply in frame i of r, or NULL. */
static const uint8_t *dhcp_opt(const uint8_t *b, uint32_t blen, uint8_t code)
{
	uint32_t p = 240;
	while (p + 2 <= blen && b[p] != 255) {
		if (b[p] == 0) {
			p++;
			continue;
		}
		if (b[p] == code)
			return b + p + 2;
		p += 2u + b[p + 1];
	}
	return NULL;
}
#endif

static void test_slirp_dhcp(void **state)
{
	(void)state;
#ifndef HVS_HAVE_SLIRP
	struct hvs_net_spec s;
	char err[256];
	struct hvs_loop *loop = hvs_loop_create();
	struct rec r = { 0 };
	struct hvs_net_ep *ep = NULL;
	assert_int_equal(hvs_net_parse("user", &s, err, sizeof(err)), 0);
	assert_int_equal(hvs_net_open(loop, &s, "u", &rec_ops, &r, &ep, err,
				      sizeof(err)), -EOPNOTSUPP);
	hvs_loop_destroy(loop);
	skip();
#else
	struct hvs_loop *loop = hvs_loop_create();
	struct rec r = { 0 };
	struct hvs_net_ep *ep = open_ep(loop, "user,net=10.7.0.0/24", &r);
	uint8_t f[400];
	uint32_t len = dhcp_discover(f, 0x1234abcd);
	struct hvs_net_frame fr = { .nf_data = f, .nf_len = len };
	assert_int_equal(hvs_net_send(ep, &fr), 0);

	uint64_t deadline = hvs_now_ns() + scaled_ms(3000) * 1000000ull;
	int found = -1;
	while (found < 0 && hvs_now_ns() < deadline) {
		hvs_loop_run_once(loop, 10);
		for (unsigned i = 0; i < r.n && i < REC_MAX; i++) {
			const uint8_t *d = r.data[i];
			if (r.len[i] > 42 + 240 && get16(d + 12) == 0x0800 &&
			    d[23] == HVS_IPPROTO_UDP && get16(d + 34) == 67 &&
			    get16(d + 36) == 68)
				found = (int)i;
		}
	}
	assert_true(found >= 0);
	const uint8_t *d = r.data[found];
	const uint8_t *b = d + 42;
	uint32_t blen = r.len[found] - 42;
	assert_int_equal(b[0], 2); /* BOOTREPLY */
	assert_int_equal(get32(b + 4), 0x1234abcd);
	assert_int_equal(get32(b + 16), 0x0a07000f); /* yiaddr .15 */
	assert_memory_equal(b + 28, mac_a, 6);
	const uint8_t *t = dhcp_opt(b, blen, 53);
	assert_non_null(t);
	assert_int_equal(t[0], 2); /* DHCPOFFER */
	const uint8_t *sid = dhcp_opt(b, blen, 54);
	assert_non_null(sid);
	assert_int_equal(get32(sid), 0x0a070002);
	const uint8_t *dns = dhcp_opt(b, blen, 6);
	assert_non_null(dns);
	assert_int_equal(get32(dns), 0x0a070003);
	/* the reply's checksums are right */
	unsigned ok = hvs_csum_verify(d, r.len[found]);
	assert_true(ok & HVS_CSUM_IPHDR);
	assert_true(ok & HVS_CSUM_UDP);
	/* tagged frames do not enter the untagged user network */
	fr.nf_tci = 5;
	assert_true(hvs_net_send(ep, &fr) < 0);
	hvs_net_close(ep);
	hvs_loop_destroy(loop);
#endif
}

#ifdef HVS_HAVE_SLIRP
static uint16_t free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}
#endif

static void test_slirp_hostfwd(void **state)
{
	(void)state;
#ifndef HVS_HAVE_SLIRP
	skip();
#else
	struct hvs_loop *loop = hvs_loop_create();
	struct rec r = { 0 };
	uint16_t port = free_port();
	char spec[128];
	snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%u-:8080", port);
	struct hvs_net_ep *ep = open_ep(loop, spec, &r);

	/* a host program connects: libslirp accepts through the loop and
	 * reaches for the guest (ARP for 10.0.2.15, then a SYN to 8080) */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int cr = connect(c, (struct sockaddr *)&a, sizeof(a));
	assert_true(cr == 0 || errno == EINPROGRESS);
	uint64_t deadline = hvs_now_ns() + scaled_ms(3000) * 1000000ull;
	bool arp = false;
	while (!arp && hvs_now_ns() < deadline) {
		hvs_loop_run_once(loop, 10);
		for (unsigned i = 0; i < r.n && i < REC_MAX; i++)
			if (get16(r.data[i] + 12) == 0x0806 &&
			    get16(r.data[i] + 20) == 1 &&
			    get32(r.data[i] + 38) == 0x0a00020f)
				arp = true;
	}
	assert_true(arp);
	/* a port already taken is an error at open */
	struct hvs_net_spec s;
	char err[256];
	struct rec r2 = { 0 };
	struct hvs_net_ep *ep2 = NULL;
	assert_int_equal(hvs_net_parse(spec, &s, err, sizeof(err)), 0);
	assert_true(hvs_net_open(loop, &s, "dup", &rec_ops, &r2, &ep2, err,
				 sizeof(err)) < 0);
	assert_true(strstr(err, "hostfwd") != NULL);
	close(c);
	hvs_net_close(ep);
	hvs_loop_destroy(loop);
#endif
}

/* ---- TAP, in a private network namespace ------------------------------------------------ */

#define TAP_IF "hvsnt0"
#define CHK(c) do { if (!(c)) { fprintf(stderr, "tap: %s:%d: %s\n", \
	__FILE__, __LINE__, #c); return 1; } } while (0)

struct tapctx {
	struct hvs_loop *loop;
	struct hvs_net_ep *ep;
	uint8_t kmac[6];		/* the kernel side's MAC */
	bool synack;
	uint32_t isn;
	unsigned arps;
};

static const uint32_t tap_host = 0x0a090001, tap_guest = 0x0a090002;

static int tap_rx(void *arg, const struct hvs_net_frame *f)
{
	struct tapctx *t = arg;
	const uint8_t *d = f->nf_data;
	if (f->nf_len >= 42 && get16(d + 12) == 0x0806 && get16(d + 20) == 1 &&
	    get32(d + 38) == tap_guest) {
		/* ARP who-has our address: answer */
		uint8_t rep[60];
		memset(rep, 0, sizeof(rep));
		eth(rep, d + 6, mac_a, 0x0806);
		memcpy(rep + 14, d + 14, 6); /* htype, ptype, hlen, plen */
		put16(rep + 20, 2);
		memcpy(rep + 22, mac_a, 6);
		put32(rep + 28, tap_guest);
		memcpy(rep + 32, d + 22, 10);
		struct hvs_net_frame r = { .nf_data = rep, .nf_len = 60 };
		hvs_net_send(t->ep, &r);
		t->arps++;
		return 0;
	}
	if (f->nf_len >= 54 && get16(d + 12) == 0x0800 && d[23] == 6 &&
	    (d[47] & 0x12) == 0x12) {
		t->synack = true;
		t->isn = get32(d + 38);
	}
	return 0;
}

static const struct hvs_net_nic_ops tap_ops = { .no_rx = tap_rx };

/* A TCP frame from the guest side to the kernel's 7777. */
static uint32_t tcp_frame(struct tapctx *t, uint8_t *f, uint32_t seq,
			  uint32_t ack, uint8_t flags, uint32_t plen)
{
	eth(f, t->kmac, mac_a, HVS_ETHERTYPE_IPV4);
	uint32_t l4 = ip4(f, HVS_IPPROTO_TCP, tap_guest, tap_host, 20 + plen, 9);
	put16(f + l4, 40001);
	put16(f + l4 + 2, 7777);
	put32(f + l4 + 4, seq);
	put32(f + l4 + 8, ack);
	f[l4 + 12] = 0x50;
	f[l4 + 13] = flags;
	put16(f + l4 + 14, 65535);
	put16(f + l4 + 16, 0);
	put16(f + l4 + 18, 0);
	return l4;
}

static int tap_send_emit(void *arg, const uint8_t *seg, uint32_t len)
{
	struct tapctx *t = arg;
	struct hvs_net_frame fr = { .nf_data = seg, .nf_len = len };
	return hvs_net_send(t->ep, &fr) == 0 ? 0 : -EIO;
}

static int tap_child(void)
{
	struct tapctx t = { 0 };
	struct hvs_net_spec s;
	char err[256];
	static uint8_t f[30000], scratch[HVS_NET_MAX_FRAME];

	if (unshare(CLONE_NEWNET) != 0)
		return 77;
	t.loop = hvs_loop_create();
	CHK(t.loop != NULL);
	CHK(hvs_net_parse("tap=" TAP_IF, &s, err, sizeof(err)) == 0);
	if (hvs_net_open(t.loop, &s, "tap", &tap_ops, &t, &t.ep, err,
			 sizeof(err)) != 0) {
		fprintf(stderr, "tap: %s (skipped)\n", err);
		return 77;
	}
	if (system("ip link set lo up && ip addr add 10.9.0.1/24 dev " TAP_IF
		   " && ip link set " TAP_IF " up") != 0)
		return 77;
	/* (sysfs still shows the parent's namespace: ask the kernel) */
	struct ifreq ifr;
	int qs = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, TAP_IF);
	CHK(qs >= 0 && ioctl(qs, SIOCGIFHWADDR, &ifr) == 0);
	close(qs);
	memcpy(t.kmac, ifr.ifr_hwaddr.sa_data, 6);

	/* UDP: the kernel delivers only datagrams with a right checksum */
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5555),
				 .sin_addr.s_addr = htonl(tap_host) };
	CHK(bind(us, (struct sockaddr *)&a, sizeof(a)) == 0);
	for (int good = 0; good < 2; good++) {
		memset(f, 0, 200);
		eth(f, t.kmac, mac_a, HVS_ETHERTYPE_IPV4);
		uint32_t l4 = ip4(f, HVS_IPPROTO_UDP, tap_guest, tap_host, 8 + 5, 3);
		put16(f + l4, 4444);
		put16(f + l4 + 2, 5555);
		put16(f + l4 + 4, 13);
		memcpy(f + l4 + 8, good ? "GOOD!" : "BAD!!", 5);
		CHK(hvs_csum_offload(f, l4 + 13, HVS_CSUM_IPV4 | HVS_CSUM_IPHDR |
				     HVS_CSUM_UDP, l4) == 0);
		if (!good)
			f[l4 + 7] ^= 1; /* negative control: a wrong checksum */
		struct hvs_net_frame fr = { .nf_data = f, .nf_len = l4 + 13 };
		CHK(hvs_net_send(t.ep, &fr) == 0);
	}
	char buf[64];
	ssize_t n = -1;
	uint64_t deadline = hvs_now_ns() + scaled_ms(3000) * 1000000ull;
	while (n < 0 && hvs_now_ns() < deadline) {
		hvs_loop_run_once(t.loop, 10);
		n = recv(us, buf, sizeof(buf), 0);
	}
	CHK(n == 5 && memcmp(buf, "GOOD!", 5) == 0);
	CHK(recv(us, buf, sizeof(buf), 0) < 0); /* the bad one was dropped */

	/* TCP: handshake, then one LSO send the kernel must reassemble */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_port = htons(7777);
	CHK(bind(ls, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHK(listen(ls, 1) == 0);
	uint32_t l4 = tcp_frame(&t, f, 1000, 0, 0x02, 0);
	CHK(hvs_csum_offload(f, l4 + 20, HVS_CSUM_IPV4 | HVS_CSUM_IPHDR |
			     HVS_CSUM_TCP, l4) == 0);
	struct hvs_net_frame fr = { .nf_data = f, .nf_len = l4 + 20 };
	CHK(hvs_net_send(t.ep, &fr) == 0);
	deadline = hvs_now_ns() + scaled_ms(3000) * 1000000ull;
	while (!t.synack && hvs_now_ns() < deadline)
		hvs_loop_run_once(t.loop, 10);
	CHK(t.synack);
	CHK(t.arps >= 1);
	l4 = tcp_frame(&t, f, 1001, t.isn + 1, 0x10, 0);
	CHK(hvs_csum_offload(f, l4 + 20, HVS_CSUM_IPV4 | HVS_CSUM_IPHDR |
			     HVS_CSUM_TCP, l4) == 0);
	CHK(hvs_net_send(t.ep, &fr) == 0);
	const uint32_t payload = 20000;
	l4 = tcp_frame(&t, f, 1001, t.isn + 1, 0x18, payload);
	put16(f + 16, 0); /* as an LSO sender leaves it */
	for (uint32_t i = 0; i < payload; i++)
		f[l4 + 20 + i] = (uint8_t)(i * 13 + 1);
	int segs = hvs_lso_segment(f, l4 + 20 + payload, false, l4, 1400, 1514,
				   scratch, tap_send_emit, &t);
	CHK(segs == (int)((payload + 1399) / 1400));
	int cs = -1;
	deadline = hvs_now_ns() + scaled_ms(3000) * 1000000ull;
	while (cs < 0 && hvs_now_ns() < deadline) {
		hvs_loop_run_once(t.loop, 10);
		cs = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
	}
	CHK(cs >= 0);
	static uint8_t got[20000];
	uint32_t have = 0;
	while (have < payload && hvs_now_ns() < deadline) {
		hvs_loop_run_once(t.loop, 10);
		ssize_t k = recv(cs, got + have, payload - have, 0);
		if (k > 0)
			have += (uint32_t)k;
	}
	CHK(have == payload);
	CHK(memcmp(got, f + l4 + 20, payload) == 0);
	close(cs);
	close(ls);
	close(us);
	hvs_net_close(t.ep);
	hvs_loop_destroy(t.loop);
	return 0;
}

static void test_tap_netns(void **state)
{
	(void)state;
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0 ||
	    system("command -v ip >/dev/null 2>&1") != 0)
		skip();
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(tap_child());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_parse, setup),
		cmocka_unit_test_setup(test_mac_derive, setup),
		cmocka_unit_test_setup(test_switch_learning, setup),
		cmocka_unit_test_setup(test_switch_vlan, setup),
		cmocka_unit_test_setup(test_null_gen, setup),
		cmocka_unit_test_setup(test_ipv4_header_known, setup),
		cmocka_unit_test_setup(test_csum_offload, setup),
		cmocka_unit_test_setup(test_lso, setup),
		cmocka_unit_test_setup(test_toeplitz_known, setup),
		cmocka_unit_test_setup(test_pcap, setup),
		cmocka_unit_test_setup(test_slirp_dhcp, setup),
		cmocka_unit_test_setup(test_slirp_hostfwd, setup),
		cmocka_unit_test_setup(test_tap_netns, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
