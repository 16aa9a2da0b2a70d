/*
 * tools/hvguest/hvg_net.h - the reference guest's IP host (--full, unless
 * --no-ip): Debian's lwIP over the NetVSC frame API.
 *
 *   hvg_netif.c  lwIP start (its tcpip thread: Debian builds lwIP with
 *                NO_SYS 0 and core locking), one lwIP netif per NIC
 *                (netvsc_send with offload metadata, the per-queue rx
 *                callback feeding tcpip_inpkt, link indications), the DHCP
 *                client of hvg_dhcp.c on each, addresses for KVP
 *   hvg_http.c   HTTP/1.1 status page on TCP 80 ("/", "/status.json")
 *   hvg_nbd.c    NBD server (fixed newstyle) on TCP 10809 for disk0
 *   hvg_status.c the status page's content, built by the main thread
 *
 * Threads: lwIP's raw API runs only in the tcpip thread (its callbacks and
 * timers) or under LOCK_TCPIP_CORE(); NetVSC rx and StorVSC completions
 * come from the port's interrupt threads and are handed over by message.
 * No code here takes LOCK_TCPIP_CORE() while holding the NIC table lock of
 * hvg_dev.c, and the tcpip thread never takes that lock.
 */
#ifndef HVG_NET_H
#define HVG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/netvsc.h"

#define HVG_HTTP_PORT	80
#define HVG_NBD_PORT	10809

struct hvg_netif;

/* Start lwIP (before vmbus_connect, which attaches the NICs). 0 or -1. */
int hvg_net_init(void);
/* Whether hvg_net_init succeeded (and --no-ip was not given). */
bool hvg_net_enabled(void);

/*
 * A NIC arrived (nc_attach, thread context): make its netif (down).
 * Returns NULL if the IP stack is off or out of slots (the NIC then works
 * without IP). hvg_netif_detach (nc_detach, thread) removes it; after it
 * returns no lwIP code touches nd again.
 */
struct hvg_netif *hvg_netif_attach(struct netvsc_dev *nd, uint32_t index);
void hvg_netif_detach(struct hvg_netif *ni);
/* netvsc_up succeeded: interface up, DHCP started. Thread context. */
void hvg_netif_up(struct hvg_netif *ni);
/* From the NetVSC callbacks (any context). */
void hvg_netif_rx(struct hvg_netif *ni, const void *frame, uint32_t len,
    const struct netvsc_rx_info *ri);
void hvg_netif_link(struct hvg_netif *ni, const struct netvsc_link *nl);

/* What one netif is doing, for status lines and the status page. */
struct hvg_netif_info {
	char     nf_dhcp_state[16];
	uint32_t nf_ip, nf_mask, nf_router, nf_server, nf_dns;	/* host order */
	uint32_t nf_lease_s;
	uint64_t nf_lease_left_s;	/* until the lease ends */
	uint64_t nf_rx_frames, nf_rx_drops, nf_tx_frames, nf_tx_drops;
	uint64_t nf_tx_busy, nf_tx_csum_offloaded;
	uint64_t nf_dhcp_sent, nf_dhcp_received, nf_dhcp_dropped;
};
int hvg_netif_get_info(const struct hvg_netif *ni, struct hvg_netif_info *out);

/* One NIC of hvg_dev.c's table, for the status page. */
struct hvg_nic_snap {
	uint32_t sn_index;		/* nicN */
	struct netvsc_info sn_info;
	struct netvsc_stats sn_stats;
	bool sn_has_if;			/* has an lwIP netif */
	struct hvg_netif_info sn_if;
};
/* Slot `slot` (0..NETVSC_MAX_DEVICES-1) of the NIC table: 0, or -1 if
 * empty. Takes the NIC table lock: not from the tcpip thread. */
int hvg_dev_nic_snap(uint32_t slot, struct hvg_nic_snap *out);

/* --probe: start it once the default netif has an address (hvg_probe.c;
 * the tcpip thread, from the netif tick). */
void hvg_probe_tick(void);

/* KVP NetworkAddressIPv4 (family 4): "a.b.c.d;..." of bound leases. */
int hvg_net_kvp_addrs(void *arg, int family, char *buf, uint32_t size);

/* After the boot report: listen on TCP 80 and 10809. Thread context. */
void hvg_net_servers_start(void);
/* Main loop: rebuild the status page when due. */
void hvg_net_tick(void);
/* Append ", ip ..." to a status line. */
void hvg_net_status(char *buf, size_t size);
/* Before storvsc_destroy: close the servers and their connections and
 * drop their disk references (waits, bounded, for their I/O). */
void hvg_net_stop(void);

/* ---- between the files of the IP host ---- */

/* The latest status page: the body (JSON or HTML) copied into a new
 * malloc'd buffer; NULL when none yet. Any thread. */
char *hvg_status_copy(bool json, size_t *len);
/* Build a new status page (main thread). */
void hvg_status_refresh(void);
void hvg_status_free(void);

int hvg_http_start(uint16_t port);
void hvg_http_stop(void);
int hvg_nbd_start(uint16_t port);
void hvg_nbd_stop(void);
/* NBD counters for the status page. */
struct hvg_nbd_stats {
	uint64_t nb_connections, nb_active, nb_requests, nb_errors;
	uint64_t nb_bytes_read, nb_bytes_written, nb_rejected;
	uint64_t nb_max_inflight;	/* most requests one connection had
					 * in the driver at once */
};
void hvg_nbd_get_stats(struct hvg_nbd_stats *out);
uint64_t hvg_http_requests(void);

/* "a.b.c.d" */
const char *hvg_ip_str(uint32_t ip, char *buf, size_t size);

#endif /* HVG_NET_H */
