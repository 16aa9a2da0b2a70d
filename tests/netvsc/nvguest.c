/*
 * tests/netvsc/nvguest.c - end-to-end NetVSC guest program: the guest core
 * and the NetVSC driver on the posix port, run by hvsim with two NICs on
 * one internal switch (--net switch --net switch). It sends Ethernet
 * frames of every size from 60 bytes to MTU + 14 from each NIC to the
 * other and checks each one arrives intact, by the copy path and by the
 * zero-copy path, then (offloads on) UDP and TCP over IPv4 and IPv6 with
 * the checksums left to the host, and an LSO send the host segments; every
 * received checksum is verified in the guest. Exit 0 when all arrived.
 *
 * Test code: libc and pthreads.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv/nvsp.h"
#include "hv/rndis.h"
#include "vmbus/netvsc.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define NS_PER_S	1000000000ull
#define ETH_P_TEST	0x88B5u		/* IEEE local experimental */
#define MAX_FRAME	(9216u + 64u)
#define RXQ		1024u

struct frame {
	uint32_t len;
	uint32_t q;
	struct netvsc_rx_info ri;
	uint8_t data[MAX_FRAME];
};

struct nic {
	struct netvsc_dev *nd;
	struct netvsc_info ni;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct frame *rx;		/* ring of RXQ */
	uint32_t head, tail;
	uint64_t dropped;
};

static struct {
	uint32_t nvsp;			/* 0 = all versions */
	uint32_t mtu;
	uint32_t step;
	bool offloads;
	bool polled;
	uint32_t queues;
	double scale;
} opt;

static struct nic nics[2];
static uint32_t nnics;
static pthread_mutex_t attach_mu = PTHREAD_MUTEX_INITIALIZER;
static const struct vmbus_platform *g_plat;
static uint32_t fails, checks;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

#define FAIL(...) do { fails++; fprintf(stderr, "nvguest: FAIL: " __VA_ARGS__); \
	fputc('\n', stderr); } while (0)

/* ---- callbacks ---- */

static void on_rx(void *arg, struct netvsc_dev *nd, uint32_t q,
    const void *frame, uint32_t len, const struct netvsc_rx_info *ri)
{
	struct nic *n = arg;
	struct frame *f;

	(void)nd;
	pthread_mutex_lock(&n->mu);
	if (n->tail - n->head >= RXQ || len > MAX_FRAME) {
		n->dropped++;
	} else {
		f = &n->rx[n->tail++ % RXQ];
		f->len = len;
		f->q = q;
		f->ri = *ri;
		memcpy(f->data, frame, len);
		pthread_cond_broadcast(&n->cv);
	}
	pthread_mutex_unlock(&n->mu);
}

static void on_link(void *arg, struct netvsc_dev *nd,
    const struct netvsc_link *nl)
{
	(void)arg;
	(void)nd;
	fprintf(stderr, "nvguest: link event %u up %d speed %llu\n",
	    nl->nl_event, nl->nl_up, (unsigned long long)nl->nl_speed_bps);
}

static const struct netvsc_callbacks cbs = { on_rx, on_link, NULL };

static int on_attach(void *arg, struct netvsc_dev *nd)
{
	struct nic *n;

	(void)arg;
	pthread_mutex_lock(&attach_mu);
	if (nnics >= 2) {
		pthread_mutex_unlock(&attach_mu);
		return 0;	/* a third NIC: not ours to test */
	}
	n = &nics[nnics++];
	n->nd = nd;
	pthread_mutex_unlock(&attach_mu);
	netvsc_set_callbacks(nd, &cbs, n);
	return 0;
}

static void on_detach(void *arg, struct netvsc_dev *nd)
{
	(void)arg;
	pthread_mutex_lock(&attach_mu);
	for (uint32_t i = 0; i < 2; i++)
		if (nics[i].nd == nd)
			nics[i].nd = NULL;
	pthread_mutex_unlock(&attach_mu);
}

/* Wait for the next frame on n matching (match(arg, f)), dropping others. */
static bool wait_frame(struct nic *n, bool (*match)(void *, const struct frame *),
    void *arg, struct frame *out, struct vmbus *vb)
{
	uint64_t dl = mono_ns() + (uint64_t)(5.0 * opt.scale * NS_PER_S);

	for (;;) {
		bool got = false;

		pthread_mutex_lock(&n->mu);
		while (n->head != n->tail) {
			struct frame *f = &n->rx[n->head++ % RXQ];

			if (match(arg, f)) {
				memcpy(out, f, sizeof(*out));
				got = true;
				break;
			}
		}
		if (!got && !opt.polled) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000 * 1000;
			if (ts.tv_nsec >= (long)NS_PER_S) {
				ts.tv_sec++;
				ts.tv_nsec -= (long)NS_PER_S;
			}
			pthread_cond_timedwait(&n->cv, &n->mu, &ts);
		}
		pthread_mutex_unlock(&n->mu);
		if (got)
			return true;
		if (mono_ns() >= dl)
			return false;
		if (opt.polled)
			vmbus_poll(vb);
	}
}

/* Send with a bounded retry on backpressure. */
static int send_frame(struct vmbus *vb, struct nic *n,
    const struct netvsc_frag *fr, uint32_t nfr,
    const struct netvsc_tx_meta *m, netvsc_tx_done_fn *done, void *cookie)
{
	uint64_t dl = mono_ns() + (uint64_t)(5.0 * opt.scale * NS_PER_S);
	int r;

	while ((r = netvsc_send(n->nd, 0, fr, nfr, m, done, cookie)) ==
	    -VMBUS_EAGAIN && mono_ns() < dl) {
		if (opt.polled)
			vmbus_poll(vb);
		else
			(void)netvsc_wait_tx(n->nd, 0, 20 * 1000 * 1000);
	}
	return r;
}

/* ---- checksums ---- */

static uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t s)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)s;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Pseudo-header sum for L4 over IPv4 (ip at frame+14) or IPv6. */
static uint32_t pseudo(const uint8_t *ip, bool v6, uint8_t proto,
    uint32_t l4len)
{
	uint32_t s = 0;

	if (v6)
		s = sum16(ip + 8, 32, 0);
	else
		s = sum16(ip + 12, 8, 0);
	s += proto;
	s += l4len;
	return s;
}

/* ---- frame builders ---- */

static void eth_hdr(uint8_t *f, const struct nic *to, const struct nic *from,
    uint16_t type)
{
	memcpy(f, to->ni.ni_cur_mac, 6);
	memcpy(f + 6, from->ni.ni_cur_mac, 6);
	put16(f + 12, type);
}

static void pattern(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

struct seqmatch {
	uint32_t seq;
};

static bool match_test(void *arg, const struct frame *f)
{
	struct seqmatch *m = arg;

	return f->len >= 18 && get16(f->data + 12) == ETH_P_TEST &&
	    ((uint32_t)f->data[14] << 24 | (uint32_t)f->data[15] << 16 |
	    (uint32_t)f->data[16] << 8 | f->data[17]) == m->seq;
}

static volatile uint32_t done_ok, done_bad;

static void on_done(void *cookie, int status)
{
	(void)cookie;
	if (status == 0)
		__atomic_add_fetch(&done_ok, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_add_fetch(&done_bad, 1, __ATOMIC_SEQ_CST);
}

/* Phase 1: plain frames of every size, both directions, both paths. */
static void run_plain(struct vmbus *vb, uint8_t *gbuf)
{
	static struct frame got;
	uint32_t max = nics[0].ni.ni_mtu + 14, seq = 1;

	if (nics[1].ni.ni_mtu + 14 < max)
		max = nics[1].ni.ni_mtu + 14;
	for (uint32_t len = 60; len <= max; len += (len == max ? 1 :
	    (len + opt.step > max ? max - len : opt.step))) {
		for (uint32_t dir = 0; dir < 2; dir++) {
			struct nic *a = &nics[dir], *b = &nics[1 - dir];
			bool zc = (seq & 1) != 0;
			uint8_t *f = gbuf;	/* guest RAM: zero copy works */
			struct netvsc_frag fr[2];
			struct seqmatch sm = { seq };
			int r;

			eth_hdr(f, b, a, ETH_P_TEST);
			f[14] = (uint8_t)(seq >> 24);
			f[15] = (uint8_t)(seq >> 16);
			f[16] = (uint8_t)(seq >> 8);
			f[17] = (uint8_t)seq;
			pattern(f + 18, len - 18, seq);
			fr[0].nf_data = f;
			fr[0].nf_len = 18;
			fr[1].nf_data = f + 18;
			fr[1].nf_len = len - 18;
			r = send_frame(vb, a, fr, 2, NULL, zc ? on_done : NULL,
			    NULL);
			checks++;
			if (r != 0) {
				FAIL("send %u bytes (seq %u): %d", len, seq, r);
				seq++;
				continue;
			}
			if (!wait_frame(b, match_test, &sm, &got, vb)) {
				FAIL("frame of %u bytes (seq %u) never arrived",
				    len, seq);
			} else if (got.len != len ||
			    memcmp(got.data, f, len) != 0) {
				FAIL("frame of %u bytes (seq %u) arrived as %u "
				    "bytes, different", len, seq, got.len);
			}
			/* Zero copy: wait for the completion before reuse. */
			if (zc) {
				uint64_t dl = mono_ns() + 5 * NS_PER_S;

				while (done_ok + done_bad < (seq + 1) / 2 &&
				    mono_ns() < dl)
					if (opt.polled)
						vmbus_poll(vb);
			}
			seq++;
		}
		if (len == max)
			break;
	}
	if (done_bad)
		FAIL("%u zero-copy sends completed with an error", done_bad);
	printf("plain: frames 60..%u bytes, %u sent each way\n", max, seq / 2);
}

/* ---- phase 2: checksum offload ---- */

struct l4match {
	uint8_t proto;
	uint16_t port;
	bool v6;
};

static bool match_l4(void *arg, const struct frame *f)
{
	struct l4match *m = arg;
	uint32_t ipl = m->v6 ? 40 : 20;

	if (f->len < 14 + ipl + 8)
		return false;
	if (get16(f->data + 12) != (m->v6 ? 0x86DD : 0x0800))
		return false;
	if ((m->v6 ? f->data[14 + 6] : f->data[14 + 9]) != m->proto)
		return false;
	return get16(f->data + 14 + ipl + 2) == m->port;
}

/* Build UDP or TCP over IPv4/IPv6 with payload plen; checksum field
 * seeded with the pseudo-header sum (the NDIS convention) when offload,
 * else complete. Returns the frame length. */
static uint32_t build_l4(uint8_t *f, const struct nic *to,
    const struct nic *from, bool v6, bool tcp, uint32_t plen, uint16_t port,
    uint32_t seq, bool offload, bool lso)
{
	uint32_t ipl = v6 ? 40 : 20, l4h = tcp ? 20 : 8;
	uint32_t l4len = l4h + plen, total = 14 + ipl + l4len;
	uint8_t *ip = f + 14, *l4 = ip + ipl;
	uint8_t proto = tcp ? 6 : 17;
	uint16_t ck;

	eth_hdr(f, to, from, v6 ? 0x86DD : 0x0800);
	memset(ip, 0, ipl + l4h);
	if (v6) {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)l4len);
		ip[6] = proto;
		ip[7] = 64;
		ip[8] = 0xfe;
		ip[9] = 0x80;
		ip[23] = 1;
		ip[24] = 0xfe;
		ip[25] = 0x80;
		ip[39] = 2;
	} else {
		ip[0] = 0x45;
		put16(ip + 2, lso ? 0 : (uint16_t)(ipl + l4len));
		put16(ip + 4, (uint16_t)seq);
		ip[8] = 64;
		ip[9] = proto;
		ip[12] = 10;
		ip[15] = 1;
		ip[16] = 10;
		ip[19] = 2;
		if (!lso)
			put16(ip + 10, (uint16_t)~fold(sum16(ip, 20, 0)));
	}
	put16(l4, 4000);
	put16(l4 + 2, port);
	if (tcp) {
		l4[4] = (uint8_t)(seq >> 24);
		l4[5] = (uint8_t)(seq >> 16);
		l4[6] = (uint8_t)(seq >> 8);
		l4[7] = (uint8_t)seq;
		l4[12] = 5 << 4;
		l4[13] = 0x18;		/* PSH ACK */
		put16(l4 + 14, 65535);
	} else {
		put16(l4 + 4, (uint16_t)l4len);
	}
	pattern(l4 + l4h, plen, seq);
	if (lso) {
		/* Pseudo-header without the length (spec 2.4, L). */
		put16(l4 + 16, fold(pseudo(ip, v6, proto, 0)));
	} else if (offload) {
		put16(l4 + (tcp ? 16 : 6), fold(pseudo(ip, v6, proto, l4len)));
	} else {
		ck = (uint16_t)~fold(sum16(l4, l4len, pseudo(ip, v6, proto, l4len)));
		if (!tcp && ck == 0)
			ck = 0xFFFF;
		put16(l4 + (tcp ? 16 : 6), ck);
	}
	return total;
}

/* Verify IP and L4 checksums of a received frame; 0 if right. */
static int verify_l4(const struct frame *g, bool v6)
{
	uint32_t ipl = v6 ? 40 : 20;
	const uint8_t *ip = g->data + 14, *l4 = ip + ipl;
	uint8_t proto = v6 ? ip[6] : ip[9];
	uint32_t l4len = v6 ? get16(ip + 4) : (uint32_t)get16(ip + 2) - 20;

	if (14 + ipl + l4len > g->len)
		return -1;
	if (!v6 && fold(sum16(ip, 20, 0)) != 0xFFFF)
		return -2;
	if (fold(sum16(l4, l4len, pseudo(ip, v6, proto, l4len))) != 0xFFFF)
		return -3;
	return 0;
}

static void run_csum(struct vmbus *vb, uint8_t *gbuf)
{
	static struct frame got;
	uint32_t off0 = nics[0].ni.ni_offloads & nics[1].ni.ni_offloads;
	uint32_t max = nics[0].ni.ni_mtu + 14, seq = 1, n = 0;

	for (uint32_t kind = 0; kind < 4; kind++) {
		bool v6 = kind >= 2, tcp = (kind & 1) == 0;
		uint32_t need = v6 ? (tcp ? NETVSC_OFFLOAD_TCP6_CSUM :
		    NETVSC_OFFLOAD_UDP6_CSUM) : (tcp ? NETVSC_OFFLOAD_TCP4_CSUM :
		    NETVSC_OFFLOAD_UDP4_CSUM);
		uint32_t hl = 14 + (v6 ? 40 : 20) + (tcp ? 20 : 8);
		bool off = (off0 & need) != 0;

		for (uint32_t len = hl > 60 ? hl : 60; len <= max;
		    len += opt.step * 7 + 1) {
			struct nic *a = &nics[seq & 1], *b = &nics[(seq & 1) ^ 1];
			struct netvsc_tx_meta m;
			struct netvsc_frag fr = { gbuf, 0 };
			struct l4match lm = { tcp ? 6 : 17, (uint16_t)(5000 + seq % 1000), v6 };
			int r;

			fr.nf_len = build_l4(gbuf, b, a, v6, tcp, len - hl,
			    lm.port, seq, off, false);
			memset(&m, 0, sizeof(m));
			if (off) {
				m.tm_flags = (v6 ? NETVSC_TX_IPV6 : NETVSC_TX_IPV4) |
				    (tcp ? NETVSC_TX_CSUM_TCP : NETVSC_TX_CSUM_UDP);
				m.tm_l4_offset = (uint16_t)(14 + (v6 ? 40 : 20));
			}
			r = send_frame(vb, a, &fr, 1, &m, NULL, NULL);
			checks++;
			if (r != 0) {
				FAIL("%s/%s send %u: %d", tcp ? "tcp" : "udp",
				    v6 ? "ipv6" : "ipv4", len, r);
			} else if (!wait_frame(b, match_l4, &lm, &got, vb)) {
				FAIL("%s/%s %u bytes never arrived", tcp ? "tcp" :
				    "udp", v6 ? "ipv6" : "ipv4", len);
			} else if (got.len != fr.nf_len ||
			    memcmp(got.data + hl, gbuf + hl, got.len - hl) != 0 ||
			    verify_l4(&got, v6) != 0) {
				FAIL("%s/%s %u bytes: bad content or checksum "
				    "(%d)", tcp ? "tcp" : "udp", v6 ? "ipv6" : "ipv4",
				    len, verify_l4(&got, v6));
			}
			seq++;
			n++;
		}
	}
	printf("checksums: %u frames, offloads 0x%x\n", n, off0);
}

/* ---- phase 3: LSO ---- */

static void run_lso(struct vmbus *vb, uint8_t *gbuf, bool v6)
{
	static struct frame got;
	static uint8_t want[65536];
	uint32_t need = v6 ? NETVSC_OFFLOAD_LSO6 : NETVSC_OFFLOAD_LSO4;
	uint32_t ipl = v6 ? 40 : 20, hl = 14 + ipl + 20;
	uint32_t mss = nics[0].ni.ni_mtu - ipl - 20, plen = 30000, have = 0;
	struct netvsc_tx_meta m;
	struct netvsc_frag fr;
	struct l4match lm = { 6, 7777, v6 };
	uint32_t segs = 0;
	int r;

	if (!(nics[0].ni.ni_offloads & need)) {
		printf("lso%s: not offered\n", v6 ? "6" : "4");
		return;
	}
	if (plen > nics[0].ni.ni_lso_max - hl)
		plen = nics[0].ni.ni_lso_max - hl;
	fr.nf_data = gbuf;
	fr.nf_len = build_l4(gbuf, &nics[1], &nics[0], v6, true, plen, 7777,
	    1000, true, true);
	memcpy(want, gbuf + hl, plen);
	memset(&m, 0, sizeof(m));
	m.tm_flags = (v6 ? NETVSC_TX_IPV6 : NETVSC_TX_IPV4) | NETVSC_TX_LSO;
	m.tm_l4_offset = (uint16_t)(14 + ipl);
	m.tm_mss = (uint16_t)mss;
	r = send_frame(vb, &nics[0], &fr, 1, &m, on_done, NULL);
	checks++;
	if (r != 0) {
		FAIL("lso send: %d", r);
		return;
	}
	while (have < plen) {
		uint32_t seq, dl;

		if (!wait_frame(&nics[1], match_l4, &lm, &got, vb)) {
			FAIL("lso: %u of %u payload bytes arrived", have, plen);
			return;
		}
		segs++;
		seq = (uint32_t)got.data[14 + ipl + 4] << 24 |
		    (uint32_t)got.data[14 + ipl + 5] << 16 |
		    (uint32_t)got.data[14 + ipl + 6] << 8 | got.data[14 + ipl + 7];
		dl = got.len - hl;
		if (got.len > nics[1].ni.ni_mtu + 14 || dl > mss ||
		    seq - 1000 != have || have + dl > plen ||
		    memcmp(got.data + hl, want + have, dl) != 0 ||
		    verify_l4(&got, v6) != 0) {
			FAIL("lso%s: bad segment %u (%u bytes at %u, csum %d)",
			    v6 ? "6" : "4", segs, got.len, seq - 1000,
			    verify_l4(&got, v6));
			return;
		}
		have += dl;
	}
	printf("lso%s: %u payload bytes in %u segments of <= %u\n",
	    v6 ? "6" : "4", plen, segs, mss);
}

/* ---- phase 4: 802.1Q through the PPI ---- */

static void run_vlan(struct vmbus *vb, uint8_t *gbuf)
{
	static struct frame got;
	static const uint16_t tcis[] = { 1, 0x123, (5u << 13) | 42, 4094,
	    (7u << 13) | 0x1000 | 100 };
	uint32_t n = 0;

	for (uint32_t i = 0; i < sizeof(tcis) / sizeof(tcis[0]); i++) {
		struct nic *a = &nics[i & 1], *b = &nics[(i & 1) ^ 1];
		struct netvsc_tx_meta m;
		struct netvsc_frag fr = { gbuf, 100 + i * 300 };
		struct seqmatch sm = { 0x7000 + i };
		int r;

		eth_hdr(gbuf, b, a, ETH_P_TEST);
		gbuf[14] = 0;
		gbuf[15] = 0;
		gbuf[16] = (uint8_t)(sm.seq >> 8);
		gbuf[17] = (uint8_t)sm.seq;
		pattern(gbuf + 18, fr.nf_len - 18, sm.seq);
		memset(&m, 0, sizeof(m));
		m.tm_flags = NETVSC_TX_VLAN;
		m.tm_vlan_tci = tcis[i];
		r = send_frame(vb, a, &fr, 1, &m, NULL, NULL);
		checks++;
		if (r != 0) {
			FAIL("vlan send: %d", r);
		} else if (!wait_frame(b, match_test, &sm, &got, vb)) {
			FAIL("vlan %u frame never arrived", tcis[i] & 0xFFFu);
		} else if (!(got.ri.ri_flags & NETVSC_RX_VLAN) ||
		    got.ri.ri_vlan_tci != tcis[i] || got.len != fr.nf_len ||
		    memcmp(got.data, gbuf, got.len) != 0) {
			FAIL("vlan tci 0x%x arrived as flags 0x%x tci 0x%x, %u "
			    "bytes", tcis[i], got.ri.ri_flags, got.ri.ri_vlan_tci,
			    got.len);
		} else {
			n++;
		}
	}
	printf("vlan: %u tagged frames, tags from the PPI\n", n);
}

/* ---- main ---- */

static int parse_version(const char *s, uint32_t *v)
{
	unsigned maj, min;

	if (strcmp(s, "all") == 0) {
		*v = 0;
		return 0;
	}
	if (sscanf(s, "%u.%u", &maj, &min) != 2)
		return -1;
	/* NVSP "1" is the word 0x2, "2" is 0x30002 (spec 1.1). */
	if (maj == 1 && min == 0)
		*v = NVSP_PROTOCOL_VERSION_1;
	else if (maj == 2 && min == 0)
		*v = NVSP_PROTOCOL_VERSION_2;
	else
		*v = NVSP_VERSION(maj, min);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	    "usage: nvguest [--nvsp X.Y|all] [--mtu N] [--step N] [--no-offloads]\n"
	    "               [--queues N] [--polled]\n"
	    "Run by hvsim with two NICs on one switch: frames of every size\n"
	    "between them, checksums and LSO left to the host, all verified.\n"
	    "NVSP versions: 1.0 2.0 4.0 5.0 6.0 6.1 (newest first within).\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "nvsp", required_argument, NULL, 'n' },
		{ "mtu", required_argument, NULL, 'm' },
		{ "step", required_argument, NULL, 's' },
		{ "no-offloads", no_argument, NULL, 'O' },
		{ "queues", required_argument, NULL, 'q' },
		{ "polled", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px = NULL;
	struct netvsc_config nc;
	struct vmbus *vb = NULL;
	uint64_t pfns[24];
	uint8_t *gbuf;
	const char *sc;
	int c, r;

	opt.mtu = 1500;
	opt.step = 1;
	opt.offloads = true;
	while ((c = getopt_long(argc, argv, "n:m:s:Oq:P", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_version(optarg, &opt.nvsp) != 0) {
				usage();
				return 2;
			}
			break;
		case 'm':
			opt.mtu = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 's':
			opt.step = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'O':
			opt.offloads = false;
			break;
		case 'q':
			opt.queues = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			opt.polled = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (opt.step == 0)
		opt.step = 1;
	sc = getenv("VMBUS_TEST_TIME_SCALE");
	opt.scale = sc ? strtod(sc, NULL) : 1.0;
	if (opt.scale < 1.0)
		opt.scale = 1.0;
	for (int i = 0; i < 2; i++) {
		pthread_mutex_init(&nics[i].mu, NULL);
		pthread_cond_init(&nics[i].cv, NULL);
		nics[i].rx = calloc(RXQ, sizeof(struct frame));
		if (nics[i].rx == NULL)
			return 1;
	}

	vmbus_posix_options_init(&po);
	po.po_polled = opt.polled ? 1 : 0;
	r = vmbus_posix_create(&po, &plat, &px);
	if (r != 0) {
		fprintf(stderr, "nvguest: no partition (%d)\n", r);
		return 1;
	}
	g_plat = &plat;
	r = vmbus_create(&plat, NULL, &vb);
	memset(&nc, 0, sizeof(nc));
	nc.nc_max_nvsp_version = opt.nvsp;
	nc.nc_min_nvsp_version = opt.nvsp;
	nc.nc_max_queues = opt.queues;
	nc.nc_offloads = opt.offloads ? 0 : NETVSC_OFFLOAD_NONE;
	nc.nc_recv_buf_bytes = 4u * 1024 * 1024;	/* fits small VMs */
	nc.nc_attach = on_attach;
	nc.nc_detach = on_detach;
	if (r == 0)
		r = netvsc_register(vb, &nc);
	if (r == 0)
		r = vmbus_connect(vb);
	if (r != 0 || nnics != 2) {
		fprintf(stderr, "nvguest: connect %d, %u NIC(s) (need 2)\n", r,
		    nnics);
		vmbus_destroy(vb);
		netvsc_unregister(vb);
		vmbus_posix_destroy(px);
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		if (opt.mtu != 1500 && (r = netvsc_set_mtu(nics[i].nd, opt.mtu)) != 0)
			FAIL("NIC %d: MTU %u: %d", i, opt.mtu, r);
		if ((r = netvsc_up(nics[i].nd)) != 0)
			FAIL("NIC %d: up: %d", i, r);
		netvsc_get_info(nics[i].nd, &nics[i].ni);
		printf("NIC %d: %02x:%02x:%02x:%02x:%02x:%02x NVSP 0x%x MTU %u "
		    "queues %u offloads 0x%x link %s\n", i,
		    nics[i].ni.ni_cur_mac[0], nics[i].ni.ni_cur_mac[1],
		    nics[i].ni.ni_cur_mac[2], nics[i].ni.ni_cur_mac[3],
		    nics[i].ni.ni_cur_mac[4], nics[i].ni.ni_cur_mac[5],
		    nics[i].ni.ni_nvsp_version, nics[i].ni.ni_mtu,
		    nics[i].ni.ni_queues, nics[i].ni.ni_offloads,
		    nics[i].ni.ni_link_up ? "up" : "down");
		if (opt.nvsp && nics[i].ni.ni_nvsp_version != opt.nvsp)
			FAIL("NIC %d: NVSP 0x%x, wanted 0x%x", i,
			    nics[i].ni.ni_nvsp_version, opt.nvsp);
	}
	/* Frames from guest RAM, so the zero-copy path can describe them. */
	gbuf = plat.page_alloc(plat.ctx, 24, pfns);
	if (gbuf == NULL) {
		FAIL("no guest pages");
	} else if (fails == 0) {
		run_plain(vb, gbuf);
		run_csum(vb, gbuf);
		run_lso(vb, gbuf, false);
		run_lso(vb, gbuf, true);
		run_vlan(vb, gbuf);
		/* Wait for the zero-copy completions before freeing. */
		{
			uint64_t dl = mono_ns() + 5 * NS_PER_S;
			struct netvsc_stats s0, s1;

			do {
				if (opt.polled)
					vmbus_poll(vb);
				netvsc_get_stats(nics[0].nd, &s0);
				netvsc_get_stats(nics[1].nd, &s1);
			} while ((s0.ns_total.qs_tx_frames != s0.ns_total.qs_tx_done ||
			    s1.ns_total.qs_tx_frames != s1.ns_total.qs_tx_done) &&
			    mono_ns() < dl);
			for (int i = 0; i < 2; i++) {
				struct netvsc_stats s;

				netvsc_get_stats(nics[i].nd, &s);
				printf("NIC %d: tx %llu (copied %llu, gpa %llu, "
				    "errors %llu), rx %llu, drops %llu, bad "
				    "completions %llu\n", i,
				    (unsigned long long)s.ns_total.qs_tx_frames,
				    (unsigned long long)s.ns_total.qs_tx_copied,
				    (unsigned long long)s.ns_total.qs_tx_gpa,
				    (unsigned long long)s.ns_total.qs_tx_errors,
				    (unsigned long long)s.ns_total.qs_rx_frames,
				    (unsigned long long)s.ns_total.qs_rx_drops,
				    (unsigned long long)s.ns_total.qs_bad_completions);
				if (s.ns_total.qs_tx_errors || s.ns_total.qs_rx_drops ||
				    s.ns_total.qs_bad_completions ||
				    s.ns_total.qs_tx_frames != s.ns_total.qs_tx_done)
					FAIL("NIC %d: errors in the counters", i);
			}
		}
		(void)plat.page_free(plat.ctx, gbuf, 24);
	}
	r = vmbus_unload(vb);
	if (r != 0)
		FAIL("unload: %d", r);
	vmbus_destroy(vb);
	netvsc_unregister(vb);
	vmbus_posix_destroy(px);
	printf("%s: %u checks, %u failed\n", fails ? "FAIL" : "OK", checks, fails);
	return fails ? 1 : 0;
}
