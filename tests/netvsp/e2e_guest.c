/*
 * tests/netvsp/e2e_guest.c - the guest half of the NetVSP interop test: a
 * guest program (guest core + NetVSC driver + posix port) that the host
 * test (test_e2e.c) runs as a separate process against the real partition,
 * VMBus server and NetVSP. The two halves were written apart; this is
 * where they meet.
 *
 * Protocol with the host test, in frames of EtherType 0x88B5:
 *  1. "HELO" + u32 nvsp version + u32 mtu + u32 queues + u32 offloads
 *     (little-endian), broadcast, once the NIC is up;
 *  2. test frames: "SIZE" frames of every size, then UDP frames with the
 *     checksums left to the host, then (with LSO) one large TCP send;
 *     then "DONE" + u32 count of frames sent;
 *  3. every frame "ECHO..." from the host (after the Ethernet header, or
 *     as the payload of an IPv4/UDP frame) comes back with the MACs
 *     swapped; "QUIT" makes it send "STAT" + u32 queues + u32 frames
 *     received per queue, and end (exit 0).
 *
 * Usage: e2e_guest [--nvsp HEX] [--mtu N] [--queues N]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmbus/errno.h"
#include "vmbus/netvsc.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define ET_TEST 0x88B5u
#define RXQ 256u

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

struct rxent {
	uint32_t len;
	uint8_t data[9300];
};

static pthread_mutex_t rx_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rx_cond = PTHREAD_COND_INITIALIZER;
static struct rxent *rxq;
static unsigned rx_head, rx_n, rx_lost;
static struct netvsc_dev *nic;
static uint8_t mymac[6];
static uint32_t mtu;

static void die(const char *what, int r)
{
	fprintf(stderr, "e2e_guest: %s: %d\n", what, r);
	exit(1);
}

static int nic_attach(void *arg, struct netvsc_dev *nd)
{
	(void)arg;
	if (nic == NULL)
		nic = nd;
	return 0;
}

static void on_rx(void *arg, struct netvsc_dev *nd, uint32_t q,
		  const void *frame, uint32_t len, const struct netvsc_rx_info *ri)
{
	(void)arg;
	(void)nd;
	(void)q;
	(void)ri;
	const uint8_t *f = frame;
	bool test = len >= 18 && f[12] == (ET_TEST >> 8) &&
		    f[13] == (ET_TEST & 0xff);
	bool udp = len >= 46 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 17;
	if (!test && !udp)
		return;
	pthread_mutex_lock(&rx_lock);
	if (rx_n < RXQ && len <= sizeof(rxq[0].data)) {
		struct rxent *e = &rxq[(rx_head + rx_n) % RXQ];
		e->len = len;
		memcpy(e->data, frame, len);
		rx_n++;
		pthread_cond_signal(&rx_cond);
	} else {
		rx_lost++;
	}
	pthread_mutex_unlock(&rx_lock);
}

static const struct netvsc_callbacks cbs = { .rx = on_rx };

static void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static unsigned sent;

static void send_frame(const uint8_t *f, uint32_t len,
		       const struct netvsc_tx_meta *meta)
{
	struct netvsc_frag fr = { f, len };
	for (int tries = 0; tries < 1000; tries++) {
		int r = netvsc_send(nic, NETVSC_QUEUE_AUTO, &fr, 1, meta, NULL,
				    NULL);
		if (r == 0) {
			sent++;
			return;
		}
		if (r != -VMBUS_EAGAIN) {
			fprintf(stderr, "e2e_guest: send of %u bytes, flags 0x%x\n",
				len, meta ? meta->tm_flags : 0);
			die("netvsc_send", r);
		}
		r = netvsc_wait_tx(nic, 0, 1000000000ull);
		if (r != 0 && r != -VMBUS_ETIMEDOUT)
			die("netvsc_wait_tx", r);
	}
	die("send never got room", (int)len);
}

static uint32_t test_hdr(uint8_t *f, const uint8_t *dst, const char tag[4])
{
	memcpy(f, dst, 6);
	memcpy(f + 6, mymac, 6);
	put16be(f + 12, ET_TEST);
	memcpy(f + 14, tag, 4);
	return 18;
}

/* IPv4 + UDP/TCP headers with zero checksums after the Ethernet header. */
static uint32_t ip_hdr(uint8_t *f, uint8_t proto, uint32_t l4len)
{
	memcpy(f, bcast, 6);
	memcpy(f + 6, mymac, 6);
	put16be(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16be(ip + 2, (uint16_t)(20 + l4len));
	ip[8] = 64;
	ip[9] = proto;
	ip[12] = 10; ip[15] = 15;	/* 10.0.2.15 */
	ip[16] = 10; ip[19] = 2;	/* 10.0.2.2 */
	return 34;
}

/* The IPv4 header checksum, when the NIC does not compute it. */
static void ip_csum_sw(uint8_t *ip)
{
	uint32_t sum = 0;
	ip[10] = ip[11] = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xFFFFu) + (sum >> 16);
	put16be(ip + 10, (uint16_t)~sum);
}

static void tx_tests(const struct netvsc_info *ni)
{
	static uint8_t f[70000];
	uint32_t maxf = ni->ni_mtu + 14;

	/* every size, 60 .. MTU + 14 */
	for (uint32_t len = 60;;) {
		uint32_t h = test_hdr(f, bcast, "SIZE");
		for (uint32_t i = h; i < len; i++)
			f[i] = (uint8_t)(i * 7 + len);
		send_frame(f, len, NULL);
		if (len == maxf)
			break;
		len = len < 200 ? len + 1 : len + 97;
		if (len > maxf)
			len = maxf;
	}
	/* UDP with the checksums left to the host */
	if (ni->ni_offloads & NETVSC_OFFLOAD_UDP4_CSUM) {
		for (uint32_t plen = 0; plen + 28 <= ni->ni_mtu; plen += 333) {
			uint32_t l4 = ip_hdr(f, 17, 8 + plen);
			put16be(f + l4, 5000);
			put16be(f + l4 + 2, 6000);
			put16be(f + l4 + 4, (uint16_t)(8 + plen));
			f[l4 + 6] = f[l4 + 7] = 0;
			for (uint32_t i = 0; i < plen; i++)
				f[l4 + 8 + i] = (uint8_t)(i + plen);
			struct netvsc_tx_meta m = {
				.tm_flags = NETVSC_TX_IPV4 | NETVSC_TX_CSUM_UDP,
				.tm_l4_offset = (uint16_t)l4 };
			if (ni->ni_offloads & NETVSC_OFFLOAD_IP4_CSUM)
				m.tm_flags |= NETVSC_TX_CSUM_IP;
			else
				ip_csum_sw(f + 14);
			uint32_t len = l4 + 8 + plen;
			send_frame(f, len < 60 ? 60 : len, &m);
		}
	}
	/* one large TCP send, segmented by the host */
	if (ni->ni_offloads & NETVSC_OFFLOAD_LSO4) {
		const uint32_t payload = 20000;
		uint32_t l4 = ip_hdr(f, 6, 0);
		put16be(f + 16, 0);
		memset(f + l4, 0, 20);
		put16be(f + l4, 40000);
		put16be(f + l4 + 2, 80);
		f[l4 + 7] = 1;		/* seq 1 */
		f[l4 + 12] = 0x50;
		f[l4 + 13] = 0x18;	/* ACK PSH */
		put16be(f + l4 + 14, 1000);
		for (uint32_t i = 0; i < payload; i++)
			f[l4 + 20 + i] = (uint8_t)(i * 5);
		/* the host fills in every checksum of every segment */
		struct netvsc_tx_meta m = {
			.tm_flags = NETVSC_TX_IPV4 | NETVSC_TX_LSO,
			.tm_l4_offset = (uint16_t)l4,
			.tm_mss = (uint16_t)(ni->ni_mtu - 40) };
		send_frame(f, l4 + 20 + payload, &m);
	}
	uint32_t h = test_hdr(f, bcast, "DONE");
	put32le(f + h, sent);
	send_frame(f, 60, NULL);
}

static bool next_rx(struct rxent *out, unsigned timeout_s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_s;
	pthread_mutex_lock(&rx_lock);
	while (rx_n == 0) {
		if (pthread_cond_timedwait(&rx_cond, &rx_lock, &ts) != 0)
			break;
	}
	bool got = rx_n > 0;
	if (got) {
		*out = rxq[rx_head];
		rx_head = (rx_head + 1) % RXQ;
		rx_n--;
	}
	pthread_mutex_unlock(&rx_lock);
	return got;
}

int main(int argc, char **argv)
{
	struct vmbus_platform plat;
	struct vmbus_posix *port;
	struct vmbus *vb;
	struct netvsc_config cfg;
	struct netvsc_info ni;
	static struct rxent e;

	memset(&cfg, 0, sizeof(cfg));
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--nvsp"))
			cfg.nc_max_nvsp_version = cfg.nc_min_nvsp_version =
				(uint32_t)strtoul(argv[i + 1], NULL, 16);
		else if (!strcmp(argv[i], "--mtu"))
			cfg.nc_mtu = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--queues"))
			cfg.nc_max_queues = (uint32_t)atoi(argv[i + 1]);
		else
			die("unknown option", i);
	}
	cfg.nc_recv_buf_bytes = 4u << 20;
	cfg.nc_attach = nic_attach;
	rxq = calloc(RXQ, sizeof(*rxq));
	if (rxq == NULL)
		die("calloc", 0);

	int r = vmbus_posix_create(NULL, &plat, &port);
	if (r != 0)
		die("posix_create", r);
	r = vmbus_create(&plat, NULL, &vb);
	if (r != 0)
		die("vmbus_create", r);
	r = netvsc_register(vb, &cfg);
	if (r != 0)
		die("netvsc_register", r);
	r = vmbus_connect(vb);
	if (r != 0)
		die("connect", r);
	if (nic == NULL)
		die("no NIC", 0);
	netvsc_set_callbacks(nic, &cbs, NULL);
	r = netvsc_up(nic);
	if (r != 0)
		die("netvsc_up", r);
	r = netvsc_get_info(nic, &ni);
	if (r != 0)
		die("get_info", r);
	memcpy(mymac, ni.ni_cur_mac, 6);
	mtu = ni.ni_mtu;

	uint8_t f[64];
	memset(f, 0, sizeof(f));
	uint32_t h = test_hdr(f, bcast, "HELO");
	put32le(f + h, ni.ni_nvsp_version);
	put32le(f + h + 4, ni.ni_mtu);
	put32le(f + h + 8, ni.ni_queues);
	put32le(f + h + 12, ni.ni_offloads);
	send_frame(f, 60, NULL);
	tx_tests(&ni);

	/* reflect until QUIT */
	unsigned echoed = 0;
	for (;;) {
		if (!next_rx(&e, 20))
			die("no frame from the host", (int)echoed);
		bool ip = e.data[12] == 0x08;
		if (!ip && !memcmp(e.data + 14, "QUIT", 4))
			break;
		if (memcmp(e.data + (ip ? 42 : 14), "ECHO", 4) != 0)
			continue;
		memcpy(e.data, e.data + 6, 6);
		memcpy(e.data + 6, mymac, 6);
		send_frame(e.data, e.len, NULL);
		echoed++;
	}
	static uint8_t sf[128];
	memset(sf, 0, sizeof(sf));
	h = test_hdr(sf, bcast, "STAT");
	put32le(sf + h, ni.ni_queues);
	for (uint32_t q = 0; q < ni.ni_queues && q < 16; q++) {
		struct netvsc_queue_stats qs;
		if (netvsc_get_queue_stats(nic, q, &qs) == 0)
			put32le(sf + h + 4 + 4 * q, (uint32_t)qs.qs_rx_frames);
	}
	send_frame(sf, sizeof(sf), NULL);
	struct netvsc_stats st;
	netvsc_get_stats(nic, &st);
	fprintf(stderr, "e2e_guest: nvsp 0x%x mtu %u queues %u: sent %u, "
		"echoed %u, rx drops %llu, bad %llu/%llu/%llu\n",
		ni.ni_nvsp_version, ni.ni_mtu, ni.ni_queues, sent, echoed,
		(unsigned long long)st.ns_total.qs_rx_drops,
		(unsigned long long)st.ns_total.qs_rx_bad_rndis,
		(unsigned long long)st.ns_total.qs_rx_bad_ppi,
		(unsigned long long)st.ns_total.qs_bad_completions);
	if (st.ns_total.qs_rx_bad_pkt || st.ns_total.qs_rx_bad_range ||
	    st.ns_total.qs_rx_bad_rndis || st.ns_total.qs_rx_bad_ppi ||
	    st.ns_total.qs_bad_completions || st.ns_total.qs_bad_nvsp ||
	    st.ns_total.qs_tx_errors || rx_lost)
		die("the guest saw protocol errors", 0);
	r = vmbus_unload(vb);
	if (r != 0)
		die("unload", r);
	vmbus_destroy(vb);
	netvsc_unregister(vb);
	vmbus_posix_destroy(port);
	free(rxq);
	return 0;
}
