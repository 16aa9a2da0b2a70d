/*
 * tools/hvguest/hvg_netif.c - lwIP over the NetVSC frame API, and DHCP.
 *
 * Debian's lwIP (liblwip-dev 2.1.3, /usr/include/lwip/lwipopts.h) is built
 * with NO_SYS 0, LWIP_TCPIP_CORE_LOCKING 1, malloc-backed pools, no DHCP
 * and no DNS, and with its checksums computed in software (no
 * LWIP_CHECKSUM_CTRL_PER_NETIF). So: lwIP runs in its own tcpip thread; we
 * call its raw API only there or with the core lock; received frames are
 * copied into pbufs in the NetVSC rx callback and posted with
 * tcpip_inpkt(); a 250 ms timer in the tcpip thread applies link changes
 * and runs the DHCP clients.
 *
 * Transmit: linkoutput hands the pbuf chain to netvsc_send as fragments
 * (copied into the send buffer: no completion to wait for) with offload
 * metadata: IPv4, the L4 offset and, when the NIC enabled them, the
 * TCP/UDP checksum offloads (the host computes them from scratch, over
 * lwIP's own), and a flow hash that picks the queue from the host's send
 * indirection table. -EAGAIN (ring or sections full) is retried for up to
 * 20 ms, then the frame is dropped and counted (TCP retransmits).
 *
 * DHCP: lwIP drops IPv4 to a netif without an address (Debian's build has
 * no IP_ACCEPT_LINK_LAYER_ADDRESSING), so UDP to port 68 is taken off at
 * the link layer, before ethernet_input, the way a packet socket does for
 * dhclient; its IP and UDP headers and checksums are checked here and the
 * payload goes to hvg_dhcp.c. Messages go out through a lwIP UDP pcb bound
 * to port 68 with udp_sendto_if_src (from 0.0.0.0 while unbound).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lwip/etharp.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ethernet.h"
#include "lwip/tcpip.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "netif/ethernet.h"

#include "hvg_dhcp.h"
#include "hvg_net.h"
#include "hvguest.h"

#define TICK_MS		250u
#define TX_RETRY_NS	(20u * 1000u * 1000u)

struct hvg_netif {
	struct netif ni_netif;		/* lwIP's; tcpip thread / core lock */
	pthread_mutex_t ni_mu;		/* ni_nd for senders */
	struct netvsc_dev *ni_nd;	/* NULL once detached */
	bool ni_used;			/* slot taken (slots_mu) */
	bool ni_added;			/* netif_add done (core lock) */
	_Atomic bool ni_live;		/* frames are taken */
	uint32_t ni_index;
	uint32_t ni_offloads;		/* NETVSC_OFFLOAD_* enabled */
	/* from the NetVSC callbacks to the tick */
	_Atomic int ni_link;		/* -1 none yet, 0 down, 1 up */
	_Atomic bool ni_renew;		/* NETWORK_CHANGE: new lease */
	_Atomic bool ni_flapped;	/* went down and up: new lease */
	_Atomic bool ni_was_down;
	_Atomic bool ni_start;		/* hvg_netif_up: start DHCP */
	bool ni_link_applied;		/* tcpip thread */
	bool ni_running;		/* DHCP started (tcpip thread) */
	bool ni_static;			/* --ip: no DHCP on this one */
	struct dhcp_client ni_dhcp;	/* tcpip thread */
	/* counters */
	_Atomic uint64_t ni_rx_frames, ni_rx_drops;
	_Atomic uint64_t ni_tx_frames, ni_tx_drops, ni_tx_busy, ni_tx_csum;
	/* what the status readers see (slots_mu) */
	struct dhcp_lease ni_lease;
	bool ni_bound;
	uint64_t ni_bound_ms;
	enum dhcp_state ni_state;
	struct dhcp_stats ni_dstats;
};

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
/* Never freed: a frame still queued for the tcpip thread may point at a
 * slot whose NIC is gone (it is then dropped: ni_live). */
static struct hvg_netif slots[NETVSC_MAX_DEVICES];
static bool net_on;
static struct udp_pcb *dhcp_pcb;	/* port 68, all netifs */
static char dhcp_hostname[64];

static uint64_t now_ms(void)
{
	return hvg_now_ns() / 1000000u;
}

const char *hvg_ip_str(uint32_t ip, char *buf, size_t size)
{
	return dhcp_ip_str(ip, buf, size);
}

bool hvg_net_enabled(void)
{
	return net_on;
}

/* ---- transmit ---- */

/* A flow hash (addresses, protocol, ports) for the send queue choice. */
static uint32_t flow_hash(const uint8_t *ip, uint32_t l4len, uint8_t proto,
    const uint8_t *l4)
{
	uint32_t h = 2166136261u;

	for (int i = 12; i < 20; i++)
		h = (h ^ ip[i]) * 16777619u;
	h = (h ^ proto) * 16777619u;
	if ((proto == 6 || proto == 17) && l4len >= 4)
		for (int i = 0; i < 4; i++)
			h = (h ^ l4[i]) * 16777619u;
	return h;
}

/* The offload request for a frame whose headers are in f[0..len). */
static void tx_meta(struct hvg_netif *ni, const uint8_t *f, uint32_t len,
    struct netvsc_tx_meta *m)
{
	uint32_t ihl, l4;
	uint8_t proto;

	memset(m, 0, sizeof(*m));
	if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00 ||
	    (f[14] >> 4) != 4)
		return;
	ihl = (uint32_t)(f[14] & 0x0Fu) * 4u;
	if (ihl < 20 || 14 + ihl > len)
		return;
	l4 = 14 + ihl;
	proto = f[14 + 9];
	m->tm_flags = NETVSC_TX_IPV4 | NETVSC_TX_HASH;
	m->tm_l4_offset = (uint16_t)l4;
	m->tm_hash = flow_hash(f + 14, len - l4, proto, f + l4);
	/* Fragments carry no whole L4 header: no checksum offload. */
	if ((f[14 + 6] & 0x3Fu) != 0 || f[14 + 7] != 0)
		return;
	if (proto == 6 && (ni->ni_offloads & NETVSC_OFFLOAD_TCP4_CSUM) &&
	    len >= l4 + 20)
		m->tm_flags |= NETVSC_TX_CSUM_TCP;
	else if (proto == 17 && (ni->ni_offloads & NETVSC_OFFLOAD_UDP4_CSUM) &&
	    len >= l4 + 8)
		m->tm_flags |= NETVSC_TX_CSUM_UDP;
}

static err_t linkoutput(struct netif *netif, struct pbuf *p)
{
	struct hvg_netif *ni = netif->state;
	struct netvsc_frag fr[NETVSC_TX_MAX_FRAGS];
	struct netvsc_tx_meta m;
	uint32_t n = 0;
	uint64_t deadline = 0;
	int r;

	for (struct pbuf *q = p; q != NULL; q = q->next) {
		if (q->len == 0)
			continue;
		if (n == NETVSC_TX_MAX_FRAGS) {
			atomic_fetch_add(&ni->ni_tx_drops, 1);
			return ERR_IF;
		}
		fr[n].nf_data = q->payload;
		fr[n].nf_len = q->len;
		n++;
	}
	if (n == 0)
		return ERR_OK;
	tx_meta(ni, fr[0].nf_data, fr[0].nf_len, &m);
	for (;;) {
		pthread_mutex_lock(&ni->ni_mu);
		r = ni->ni_nd ? netvsc_send(ni->ni_nd, NETVSC_QUEUE_AUTO, fr,
		    n, &m, NULL, NULL) : -VMBUS_ENODEV;
		pthread_mutex_unlock(&ni->ni_mu);
		if (r != -VMBUS_EAGAIN)
			break;
		atomic_fetch_add(&ni->ni_tx_busy, 1);
		if (deadline == 0)
			deadline = hvg_now_ns() + TX_RETRY_NS;
		else if (hvg_now_ns() > deadline)
			break;
		usleep(200);
	}
	if (r != 0) {
		atomic_fetch_add(&ni->ni_tx_drops, 1);
		return r == -VMBUS_EAGAIN ? ERR_MEM : ERR_IF;
	}
	atomic_fetch_add(&ni->ni_tx_frames, 1);
	if (m.tm_flags & (NETVSC_TX_CSUM_TCP | NETVSC_TX_CSUM_UDP))
		atomic_fetch_add(&ni->ni_tx_csum, 1);
	return ERR_OK;
}

/* ---- receive ---- */

/*
 * A DHCP reply for this netif? (IPv4, UDP 67 -> 68, unfragmented, IP
 * header and UDP checksums right.) If so hand its payload to the client
 * and return true. Bounded by the frame length at every step.
 */
static bool dhcp_tap(struct hvg_netif *ni, struct pbuf *p)
{
	uint8_t f[14 + 60 + 8];
	static uint8_t msg[1500];	/* tcpip thread only */
	uint32_t ihl, tot, ulen, hl;
	uint16_t ck;

	if (p->tot_len < 14 + 20 + 8 ||
	    pbuf_copy_partial(p, f, 14 + 20, 0) != 14 + 20)
		return false;
	if (f[12] != 0x08 || f[13] != 0x00 || (f[14] >> 4) != 4 ||
	    f[14 + 9] != 17)
		return false;
	ihl = (uint32_t)(f[14] & 0x0Fu) * 4u;
	hl = 14 + ihl + 8;
	if (ihl < 20 || p->tot_len < hl ||
	    pbuf_copy_partial(p, f, (u16_t)hl, 0) != hl)
		return false;
	if (f[14 + ihl + 2] != 0 || f[14 + ihl + 3] != DHCP_CLIENT_PORT)
		return false;			/* not to port 68 */
	/* From here on the frame is ours: bad ones are dropped. */
	tot = (uint32_t)f[16] << 8 | f[17];
	ulen = (uint32_t)f[14 + ihl + 4] << 8 | f[14 + ihl + 5];
	if ((f[14 + 6] & 0x3Fu) != 0 || f[14 + 7] != 0 || tot < ihl + 8 ||
	    14 + tot > p->tot_len || ulen < 8 || ulen > tot - ihl ||
	    ulen - 8 > sizeof(msg) || f[14 + ihl] != 0 ||
	    f[14 + ihl + 1] != DHCP_SERVER_PORT ||
	    inet_chksum(f + 14, (u16_t)ihl) != 0)
		goto drop;
	if (pbuf_copy_partial(p, msg, (u16_t)(ulen - 8), (u16_t)hl) !=
	    ulen - 8)
		goto drop;
	ck = (uint16_t)(f[14 + ihl + 6] << 8 | f[14 + ihl + 7]);
	if (ck != 0) {
		/* UDP checksum: pseudo header, UDP header, data. */
		uint32_t sum = 0;

		for (uint32_t i = 0; i < 8; i += 2)	/* addresses */
			sum += (uint32_t)f[14 + 12 + i] << 8 | f[14 + 13 + i];
		sum += 17u + ulen;
		for (uint32_t i = 0; i < 8; i += 2)
			sum += (uint32_t)f[14 + ihl + i] << 8 |
			    f[14 + ihl + i + 1];
		for (uint32_t i = 0; i < ulen - 8; i += 2)
			sum += (uint32_t)msg[i] << 8 |
			    (i + 1 < ulen - 8 ? msg[i + 1] : 0u);
		while (sum >> 16)
			sum = (sum & 0xFFFFu) + (sum >> 16);
		if (sum != 0xFFFFu)
			goto drop;
	}
	dhcp_input(&ni->ni_dhcp, now_ms(), msg, ulen - 8);
	return true;
drop:
	ni->ni_dhcp.dc_stats.ds_received++;
	ni->ni_dhcp.dc_stats.ds_dropped++;
	return true;
}

/* tcpip thread: a frame posted by hvg_netif_rx. */
static err_t hvg_input(struct pbuf *p, struct netif *netif)
{
	struct hvg_netif *ni = netif->state;

	if (!atomic_load(&ni->ni_live) || !ni->ni_added) {
		pbuf_free(p);
		return ERR_OK;
	}
	if (ni->ni_running && dhcp_tap(ni, p)) {
		pbuf_free(p);
		return ERR_OK;
	}
	return ethernet_input(p, netif);	/* frees p */
}

void hvg_netif_rx(struct hvg_netif *ni, const void *frame, uint32_t len,
    const struct netvsc_rx_info *ri)
{
	struct pbuf *p;

	if (ni == NULL || !atomic_load(&ni->ni_live))
		return;
	/* The user network and our netif are untagged. */
	if ((ri->ri_flags & NETVSC_RX_VLAN) && (ri->ri_vlan_tci & 0x0FFFu)) {
		atomic_fetch_add(&ni->ni_rx_drops, 1);
		return;
	}
	if (len < 14 || len > 0xFFFFu) {
		atomic_fetch_add(&ni->ni_rx_drops, 1);
		return;
	}
	/* PBUF_RAM: one contiguous pbuf. (Debian's liblwip sizes its
	 * PBUF_POOL elements smaller than pbuf_alloc fills them.) */
	p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
	if (p == NULL) {
		atomic_fetch_add(&ni->ni_rx_drops, 1);
		return;
	}
	pbuf_take(p, frame, (u16_t)len);
	if (tcpip_inpkt(p, &ni->ni_netif, hvg_input) != ERR_OK) {
		pbuf_free(p);
		atomic_fetch_add(&ni->ni_rx_drops, 1);
		return;
	}
	atomic_fetch_add(&ni->ni_rx_frames, 1);
}

void hvg_netif_link(struct hvg_netif *ni, const struct netvsc_link *nl)
{
	if (ni == NULL)
		return;
	atomic_store(&ni->ni_link, nl->nl_up ? 1 : 0);
	/* A flap shorter than the tick still means another cable. */
	if (!nl->nl_up)
		atomic_store(&ni->ni_was_down, true);
	else if (atomic_exchange(&ni->ni_was_down, false))
		atomic_store(&ni->ni_flapped, true);
	if (nl->nl_event == NETVSC_LINK_EV_NETWORK_CHANGE)
		atomic_store(&ni->ni_renew, true);
}

/* ---- DHCP glue (tcpip thread) ---- */

static int dhcp_send(void *arg, const uint8_t *m, size_t len, uint32_t dst,
    uint32_t src)
{
	struct hvg_netif *ni = arg;
	struct pbuf *p;
	ip_addr_t d, s;
	err_t e;

	if (dhcp_pcb == NULL)
		return -1;
	p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
	if (p == NULL)
		return -1;
	pbuf_take(p, m, (u16_t)len);
	ip_addr_set_ip4_u32_val(d, lwip_htonl(dst));
	ip_addr_set_ip4_u32_val(s, lwip_htonl(src));
	e = udp_sendto_if_src(dhcp_pcb, p, &d, DHCP_SERVER_PORT,
	    &ni->ni_netif, &s);
	pbuf_free(p);
	return e == ERR_OK ? 0 : -1;
}

static void lease_to_status(struct hvg_netif *ni, bool bound)
{
	pthread_mutex_lock(&slots_mu);
	ni->ni_bound = bound;
	if (bound) {
		ni->ni_lease = ni->ni_dhcp.dc_lease;
		ni->ni_bound_ms = ni->ni_dhcp.dc_bound_ms;
	} else {
		memset(&ni->ni_lease, 0, sizeof(ni->ni_lease));
	}
	pthread_mutex_unlock(&slots_mu);
}

static void dhcp_bind(void *arg, const struct dhcp_lease *l)
{
	struct hvg_netif *ni = arg;
	ip4_addr_t a, m, gw;

	ip4_addr_set_u32(&a, lwip_htonl(l->dl_ip));
	ip4_addr_set_u32(&m, lwip_htonl(l->dl_mask));
	ip4_addr_set_u32(&gw, lwip_htonl(l->dl_router));
	netif_set_addr(&ni->ni_netif, &a, &m, &gw);
	if (netif_default == NULL || (l->dl_router &&
	    ip4_addr_isany_val(*netif_ip4_gw(netif_default))))
		netif_set_default(&ni->ni_netif);
	lease_to_status(ni, true);
}

static void dhcp_unbind(void *arg)
{
	struct hvg_netif *ni = arg;

	netif_set_addr(&ni->ni_netif, IP4_ADDR_ANY4, IP4_ADDR_ANY4,
	    IP4_ADDR_ANY4);
	if (netif_default == &ni->ni_netif)
		netif_set_default(NULL);
	lease_to_status(ni, false);
}

static void dhcp_log(void *arg, const char *line)
{
	(void)arg;
	if (!g.unloading)
		hvg_event("%s", line);
}

static uint32_t dhcp_random(void *arg)
{
	static _Atomic uint32_t seed;
	uint32_t s;

	(void)arg;
	s = atomic_fetch_add(&seed, 0x9E3779B9u) ^ (uint32_t)hvg_now_ns() ^
	    ((uint32_t)getpid() << 16);
	s ^= s >> 16;
	s *= 0x7FEB352Du;
	s ^= s >> 15;
	return s;
}

static const struct dhcp_ops dhcp_glue = {
	dhcp_send, dhcp_bind, dhcp_unbind, dhcp_log, dhcp_random,
};

/* --ip: nic0's address, no DHCP (tcpip thread). */
static void set_static(struct hvg_netif *ni)
{
	struct dhcp_lease l;
	char a[16], gw[16];
	unsigned prefix = 0;

	memset(&l, 0, sizeof(l));
	l.dl_ip = g.opt.static_ip;
	l.dl_mask = g.opt.static_mask;
	l.dl_router = g.opt.static_gw;
	l.dl_lease_s = 0xFFFFFFFFu;
	ni->ni_static = true;
	ni->ni_dhcp.dc_lease = l;
	ni->ni_dhcp.dc_have_lease = false;	/* DHCP's own stays empty */
	dhcp_bind(ni, &l);
	for (uint32_t m = l.dl_mask; m; m <<= 1)
		prefix++;
	hvg_event("nic%u: ip %s/%u router %s (static, --ip)", ni->ni_index,
	    hvg_ip_str(l.dl_ip, a, sizeof(a)), prefix, l.dl_router ?
	    hvg_ip_str(l.dl_router, gw, sizeof(gw)) : "none");
}

/* ---- the tick (tcpip thread) ---- */

static void tick(void *arg)
{
	uint64_t now = now_ms();

	(void)arg;
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		struct hvg_netif *ni = &slots[i];
		int link;

		if (!ni->ni_added || !atomic_load(&ni->ni_live))
			continue;
		link = atomic_load(&ni->ni_link);
		if (atomic_exchange(&ni->ni_start, false) && !ni->ni_running) {
			netif_set_up(&ni->ni_netif);
			if (link != 0)
				netif_set_link_up(&ni->ni_netif);
			ni->ni_link_applied = link != 0;
			ni->ni_running = true;
			if (ni->ni_index == 0 && g.opt.static_ip != 0)
				set_static(ni);
			else
				dhcp_start(&ni->ni_dhcp, now);
		} else if (ni->ni_running && link >= 0) {
			bool flapped = atomic_exchange(&ni->ni_flapped, false);

			if ((link == 1) != ni->ni_link_applied) {
				ni->ni_link_applied = link == 1;
				if (link == 1)
					netif_set_link_up(&ni->ni_netif);
				else
					netif_set_link_down(&ni->ni_netif);
				flapped |= link == 1;
			}
			/* another network may be behind the cable */
			if (link == 1 && flapped && !ni->ni_static)
				dhcp_start(&ni->ni_dhcp, now);
		}
		if (ni->ni_running && atomic_exchange(&ni->ni_renew, false) &&
		    !ni->ni_static) {
			hvg_event("nic%u: dhcp: the host says the network "
			    "changed; asking again", ni->ni_index);
			dhcp_start(&ni->ni_dhcp, now);
		}
		if (ni->ni_running && ni->ni_link_applied)
			dhcp_timer(&ni->ni_dhcp, now);
		pthread_mutex_lock(&slots_mu);
		ni->ni_state = ni->ni_dhcp.dc_state;
		ni->ni_dstats = ni->ni_dhcp.dc_stats;
		if (ni->ni_bound && ni->ni_dhcp.dc_have_lease) {
			/* a renewal keeps the address: new times */
			ni->ni_lease = ni->ni_dhcp.dc_lease;
			ni->ni_bound_ms = ni->ni_dhcp.dc_bound_ms;
		}
		pthread_mutex_unlock(&slots_mu);
	}
	hvg_probe_tick();
	sys_timeout(TICK_MS, tick, NULL);
}

static void dhcp_pcb_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p,
    const ip_addr_t *addr, u16_t port)
{
	/* The tap takes every frame to port 68 first; nothing gets here. */
	(void)arg;
	(void)pcb;
	(void)addr;
	(void)port;
	pbuf_free(p);
}

/* ---- start, attach, detach ---- */

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t init_cv = PTHREAD_COND_INITIALIZER;
static bool init_done;

static void tcpip_ready(void *arg)
{
	(void)arg;
	dhcp_pcb = udp_new();
	if (dhcp_pcb != NULL) {
		ip_set_option(dhcp_pcb, SOF_BROADCAST);
		if (udp_bind(dhcp_pcb, IP4_ADDR_ANY, DHCP_CLIENT_PORT) !=
		    ERR_OK) {
			udp_remove(dhcp_pcb);
			dhcp_pcb = NULL;
		} else {
			udp_recv(dhcp_pcb, dhcp_pcb_recv, NULL);
		}
	}
	sys_timeout(TICK_MS, tick, NULL);
	pthread_mutex_lock(&init_mu);
	init_done = true;
	pthread_cond_broadcast(&init_cv);
	pthread_mutex_unlock(&init_mu);
}

int hvg_net_init(void)
{
	const char *vm = getenv("HVSIM_VM_NAME");
	struct timespec ts;
	int r = 0;

	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++)
		pthread_mutex_init(&slots[i].ni_mu, NULL);
	/* DHCP option 12: the VM's name, made a valid host name. */
	snprintf(dhcp_hostname, sizeof(dhcp_hostname), "%s",
	    vm && *vm ? vm : "hvguest");
	for (char *c = dhcp_hostname; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '-'))
			*c = '-';
	/* lwIP's LWIP_RAND() is rand(): TCP initial sequence numbers and
	 * local ports; not the same on every boot. */
	srand((unsigned)(hvg_now_ns() ^ (uint64_t)time(NULL) ^
	    ((uint64_t)getpid() << 20)));
	tcpip_init(tcpip_ready, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&init_mu);
	while (!init_done && r == 0)
		r = pthread_cond_timedwait(&init_cv, &init_mu, &ts);
	pthread_mutex_unlock(&init_mu);
	if (!init_done) {
		fprintf(stderr, "hvguest: lwIP did not start\n");
		return -1;
	}
	if (dhcp_pcb == NULL)
		hvg_event("net: cannot bind UDP port 68: no DHCP");
	net_on = true;
	return 0;
}

static err_t netif_init_cb(struct netif *netif)
{
	struct hvg_netif *ni = netif->state;
	struct netvsc_info info;

	if (netvsc_get_info(ni->ni_nd, &info) != 0)
		return ERR_IF;
	netif->name[0] = 'e';
	netif->name[1] = 'n';
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, info.ni_cur_mac, ETH_HWADDR_LEN);
	netif->mtu = (u16_t)(info.ni_mtu > 0xFFFF ? 0xFFFF : info.ni_mtu);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP |
	    NETIF_FLAG_ETHERNET;
	netif->output = etharp_output;
	netif->linkoutput = linkoutput;
	ni->ni_offloads = info.ni_offloads;
	atomic_store(&ni->ni_link, info.ni_link_up ? 1 : 0);
	return ERR_OK;
}

struct hvg_netif *hvg_netif_attach(struct netvsc_dev *nd, uint32_t index)
{
	struct hvg_netif *ni = NULL;
	char name[16];
	ip4_addr_t z;

	if (!net_on)
		return NULL;
	pthread_mutex_lock(&slots_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		if (!slots[i].ni_used) {
			ni = &slots[i];
			break;
		}
	}
	if (ni != NULL) {
		/* The slot's mutex lives on: only the rest is reset. */
		ni->ni_used = true;
		ni->ni_index = index;
		ni->ni_bound = false;
		ni->ni_state = DHCP_STOPPED;
		memset(&ni->ni_dstats, 0, sizeof(ni->ni_dstats));
		memset(&ni->ni_lease, 0, sizeof(ni->ni_lease));
	}
	pthread_mutex_unlock(&slots_mu);
	if (ni == NULL)
		return NULL;
	LOCK_TCPIP_CORE();
	pthread_mutex_lock(&ni->ni_mu);
	ni->ni_nd = nd;
	pthread_mutex_unlock(&ni->ni_mu);
	atomic_store(&ni->ni_link, -1);
	atomic_store(&ni->ni_renew, false);
	atomic_store(&ni->ni_flapped, false);
	atomic_store(&ni->ni_was_down, false);
	atomic_store(&ni->ni_start, false);
	ni->ni_running = false;
	ni->ni_static = false;
	ni->ni_link_applied = false;
	atomic_store(&ni->ni_rx_frames, 0);
	atomic_store(&ni->ni_rx_drops, 0);
	atomic_store(&ni->ni_tx_frames, 0);
	atomic_store(&ni->ni_tx_drops, 0);
	atomic_store(&ni->ni_tx_busy, 0);
	atomic_store(&ni->ni_tx_csum, 0);
	memset(&ni->ni_netif, 0, sizeof(ni->ni_netif));
	ip4_addr_set_zero(&z);
	if (netif_add(&ni->ni_netif, &z, &z, &z, ni, netif_init_cb,
	    tcpip_input) == NULL) {
		UNLOCK_TCPIP_CORE();
		hvg_event("nic%u: cannot add an lwIP interface", index);
		pthread_mutex_lock(&ni->ni_mu);
		ni->ni_nd = NULL;
		pthread_mutex_unlock(&ni->ni_mu);
		pthread_mutex_lock(&slots_mu);
		ni->ni_used = false;
		pthread_mutex_unlock(&slots_mu);
		return NULL;
	}
	snprintf(name, sizeof(name), "nic%u", index);
	dhcp_init(&ni->ni_dhcp, &dhcp_glue, ni, ni->ni_netif.hwaddr, name,
	    dhcp_hostname);
	ni->ni_added = true;
	atomic_store(&ni->ni_live, true);
	UNLOCK_TCPIP_CORE();
	return ni;
}

void hvg_netif_up(struct hvg_netif *ni)
{
	if (ni != NULL)
		atomic_store(&ni->ni_start, true);
}

void hvg_netif_detach(struct hvg_netif *ni)
{
	if (ni == NULL)
		return;
	atomic_store(&ni->ni_live, false);
	/* NOTE: senders first: after this no netvsc_send on the NIC. */
	pthread_mutex_lock(&ni->ni_mu);
	ni->ni_nd = NULL;
	pthread_mutex_unlock(&ni->ni_mu);
	LOCK_TCPIP_CORE();
	if (ni->ni_running)
		dhcp_stop(&ni->ni_dhcp);	/* unbinds */
	ni->ni_running = false;
	if (ni->ni_added)
		netif_remove(&ni->ni_netif);
	ni->ni_added = false;
	UNLOCK_TCPIP_CORE();
	pthread_mutex_lock(&slots_mu);
	ni->ni_used = false;
	ni->ni_bound = false;
	pthread_mutex_unlock(&slots_mu);
}

/* ---- status ---- */

int hvg_netif_get_info(const struct hvg_netif *ni, struct hvg_netif_info *o)
{
	uint64_t now = now_ms();

	memset(o, 0, sizeof(*o));
	if (ni == NULL)
		return -1;
	pthread_mutex_lock(&slots_mu);
	snprintf(o->nf_dhcp_state, sizeof(o->nf_dhcp_state), "%s",
	    ni->ni_static ? "static" : dhcp_state_name(ni->ni_state));
	if (ni->ni_bound) {
		o->nf_ip = ni->ni_lease.dl_ip;
		o->nf_mask = ni->ni_lease.dl_mask;
		o->nf_router = ni->ni_lease.dl_router;
		o->nf_server = ni->ni_lease.dl_server;
		o->nf_dns = ni->ni_lease.dl_ndns ? ni->ni_lease.dl_dns[0] : 0;
		o->nf_lease_s = ni->ni_lease.dl_lease_s;
		if (ni->ni_lease.dl_lease_s != 0xFFFFFFFFu) {
			uint64_t end = ni->ni_bound_ms +
			    (uint64_t)ni->ni_lease.dl_lease_s * 1000u;

			o->nf_lease_left_s = end > now ? (end - now) / 1000u : 0;
		}
	}
	o->nf_dhcp_sent = ni->ni_dstats.ds_sent;
	o->nf_dhcp_received = ni->ni_dstats.ds_received;
	o->nf_dhcp_dropped = ni->ni_dstats.ds_dropped;
	pthread_mutex_unlock(&slots_mu);
	o->nf_rx_frames = atomic_load(&ni->ni_rx_frames);
	o->nf_rx_drops = atomic_load(&ni->ni_rx_drops);
	o->nf_tx_frames = atomic_load(&ni->ni_tx_frames);
	o->nf_tx_drops = atomic_load(&ni->ni_tx_drops);
	o->nf_tx_busy = atomic_load(&ni->ni_tx_busy);
	o->nf_tx_csum_offloaded = atomic_load(&ni->ni_tx_csum);
	return 0;
}

int hvg_net_kvp_addrs(void *arg, int family, char *buf, uint32_t size)
{
	size_t len = 0;

	(void)arg;
	if (size == 0)
		return -VMBUS_EINVAL;
	buf[0] = '\0';
	if (family != 4)
		return 0;
	pthread_mutex_lock(&slots_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		char a[16];
		int n;

		if (!slots[i].ni_used || !slots[i].ni_bound)
			continue;
		hvg_ip_str(slots[i].ni_lease.dl_ip, a, sizeof(a));
		n = snprintf(buf + len, size - len, "%s%s", len ? ";" : "", a);
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
	pthread_mutex_unlock(&slots_mu);
	return (int)len;
}

void hvg_net_status(char *buf, size_t size)
{
	if (!net_on)
		return;
	pthread_mutex_lock(&slots_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		const struct hvg_netif *ni = &slots[i];
		char a[16];
		uint32_t prefix = 0;

		if (!ni->ni_used)
			continue;
		if (!ni->ni_bound) {
			hvg_append(buf, size, ", nic%u ip none (dhcp %s)",
			    ni->ni_index, dhcp_state_name(ni->ni_state));
			continue;
		}
		for (uint32_t m = ni->ni_lease.dl_mask; m; m <<= 1)
			prefix++;
		hvg_append(buf, size, ", nic%u ip %s/%u (%s%s)",
		    ni->ni_index, hvg_ip_str(ni->ni_lease.dl_ip, a, sizeof(a)),
		    prefix, ni->ni_static ? "static" : "dhcp ",
		    ni->ni_static ? "" : dhcp_state_name(ni->ni_state));
	}
	pthread_mutex_unlock(&slots_mu);
}

/* ---- servers ---- */

static bool servers_on;
static uint64_t next_refresh_ns;

void hvg_net_servers_start(void)
{
	if (!net_on)
		return;
	hvg_status_refresh();
	next_refresh_ns = hvg_now_ns() + 500000000ull;
	LOCK_TCPIP_CORE();
	if (hvg_http_start(HVG_HTTP_PORT) == 0)
		hvg_event("net: HTTP status page on TCP port %u",
		    HVG_HTTP_PORT);
	if (hvg_nbd_start(HVG_NBD_PORT) == 0)
		hvg_event("net: NBD server on TCP port %u (export \"disk0\")",
		    HVG_NBD_PORT);
	UNLOCK_TCPIP_CORE();
	servers_on = true;
}

void hvg_net_tick(void)
{
	uint64_t now = hvg_now_ns();

	if (!servers_on || now < next_refresh_ns)
		return;
	next_refresh_ns = now + 500000000ull;
	hvg_status_refresh();
}

void hvg_net_stop(void)
{
	if (!servers_on)
		return;
	servers_on = false;
	hvg_nbd_stop();		/* takes the core lock itself */
	LOCK_TCPIP_CORE();
	hvg_http_stop();
	UNLOCK_TCPIP_CORE();
	hvg_status_free();
}
