/*
 * tools/hvguest/hvg_net_stub.c - the IP host's entry points in a build
 * without lwIP (liblwip-dev missing): the NICs work, with no IP on them.
 */
#include "hvg_net.h"
#include "hvguest.h"

int hvg_net_init(void)
{
	hvg_event("net: built without lwIP: no DHCP, HTTP or NBD");
	return -1;
}

bool hvg_net_enabled(void) { return false; }
struct hvg_netif *hvg_netif_attach(struct netvsc_dev *nd, uint32_t index)
{
	(void)nd;
	(void)index;
	return NULL;
}
void hvg_netif_detach(struct hvg_netif *ni) { (void)ni; }
void hvg_netif_up(struct hvg_netif *ni) { (void)ni; }
void hvg_netif_rx(struct hvg_netif *ni, const void *frame, uint32_t len,
    const struct netvsc_rx_info *ri)
{
	(void)ni;
	(void)frame;
	(void)len;
	(void)ri;
}
void hvg_netif_link(struct hvg_netif *ni, const struct netvsc_link *nl)
{
	(void)ni;
	(void)nl;
}
int hvg_netif_get_info(const struct hvg_netif *ni, struct hvg_netif_info *o)
{
	(void)ni;
	(void)o;
	return -1;
}
int hvg_net_kvp_addrs(void *arg, int family, char *buf, uint32_t size)
{
	(void)arg;
	(void)family;
	if (size)
		buf[0] = '\0';
	return 0;
}
void hvg_net_servers_start(void) {}
void hvg_net_tick(void) {}
void hvg_net_status(char *buf, size_t size) { (void)buf; (void)size; }
void hvg_net_stop(void) {}
