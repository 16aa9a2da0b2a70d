/*
 * host/net/switch.c - the internal virtual switch: a learning Ethernet
 * bridge between the NICs (of any VMs of this host) that name the same
 * switch.
 *
 * Forwarding database: (VLAN id, MAC) -> port, learned from source
 * addresses, aged after HVS_SW_AGE_NS, bounded (a full bucket evicts its
 * oldest entry). Broadcast, multicast and unknown unicast are flooded to
 * every other port of the frame's VLAN.
 *
 * VLANs: a port opened with vlan=N is an access port: frames from it
 * enter VLAN N (untagged frames, or frames tagged N; any other tag is
 * dropped), and it receives VLAN N's frames untagged. A port without vlan=
 * is a trunk: its frames keep their tag (VID 0 = untagged) and it receives
 * every VLAN's frames with their tag. A frame tagged VID 4095 (reserved by
 * 802.1Q: never a member of any VLAN) is dropped on any port.
 *
 * Single-threaded: every port of a switch lives on one loop thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/net/net_priv.h"
#include "host/net/switch.h"

#define HVS_SW_MAX_PORTS   256u
#define HVS_SW_FDB_SIZE    4096u	/* entries, power of two */
#define HVS_SW_FDB_WINDOW  8u		/* probe window per key */
#define HVS_SW_AGE_NS      (300ull * 1000 * 1000 * 1000)

struct sw_port;

struct fdb_entry {
	uint8_t fe_mac[6];
	uint16_t fe_vid;		/* 0 = no entry */
#define FE_VID_UNTAGGED 0x1000u		/* stored VID for untagged frames */
	struct sw_port *fe_port;
	uint64_t fe_seen_ns;
};

struct hvs_switch {
	struct hvs_switch *sw_next;
	char sw_name[HVS_NET_NAME_MAX];
	struct hvs_loop *sw_loop;
	unsigned sw_nports;
	struct sw_port *sw_ports[HVS_SW_MAX_PORTS];
	struct fdb_entry sw_fdb[HVS_SW_FDB_SIZE];
	struct hvs_switch_stats sw_st;
};

struct sw_port {
	struct hvs_switch *sp_sw;
	struct hvs_net_ep *sp_ep;
	uint16_t sp_vlan;		/* access VLAN, 0 = trunk */
	unsigned sp_fdb;		/* FDB entries naming this port */
};

static pthread_mutex_t sw_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hvs_switch *sw_list;

static struct hvs_switch *sw_find(const char *name)
{
	for (struct hvs_switch *sw = sw_list; sw != NULL; sw = sw->sw_next)
		if (!strcmp(sw->sw_name, name))
			return sw;
	return NULL;
}

static uint32_t fdb_hash(uint16_t vid, const uint8_t *mac)
{
	uint32_t h = 2166136261u ^ vid;
	for (unsigned i = 0; i < 6; i++) {
		h ^= mac[i];
		h *= 16777619u;
	}
	return h;
}

static struct fdb_entry *fdb_lookup(struct hvs_switch *sw, uint16_t vid,
				    const uint8_t *mac, uint64_t now)
{
	uint32_t h = fdb_hash(vid, mac);
	for (uint32_t i = 0; i < HVS_SW_FDB_WINDOW; i++) {
		struct fdb_entry *e = &sw->sw_fdb[(h + i) & (HVS_SW_FDB_SIZE - 1)];
		if (e->fe_vid == vid && !memcmp(e->fe_mac, mac, 6)) {
			if (now - e->fe_seen_ns > HVS_SW_AGE_NS)
				return NULL;
			return e;
		}
	}
	return NULL;
}

static void fdb_learn(struct hvs_switch *sw, uint16_t vid, const uint8_t *mac,
		      struct sw_port *port, uint64_t now)
{
	uint32_t h = fdb_hash(vid, mac);
	struct fdb_entry *victim = NULL;
	bool reusable = false;

	for (uint32_t i = 0; i < HVS_SW_FDB_WINDOW; i++) {
		struct fdb_entry *e = &sw->sw_fdb[(h + i) & (HVS_SW_FDB_SIZE - 1)];
		if (e->fe_vid == vid && !memcmp(e->fe_mac, mac, 6)) {
			if (e->fe_port != port) {
				sw->sw_st.ss_moves++;
				e->fe_port->sp_fdb--;
				port->sp_fdb++;
			}
			e->fe_port = port;
			e->fe_seen_ns = now;
			return;
		}
		if (e->fe_vid == 0 || now - e->fe_seen_ns > HVS_SW_AGE_NS) {
			if (!reusable) {
				victim = e;
				reusable = true;
			}
		} else if (!reusable &&
			   (victim == NULL || e->fe_seen_ns < victim->fe_seen_ns)) {
			victim = e;
		}
	}
	if (victim->fe_vid == 0)
		sw->sw_st.ss_entries++;
	else {
		victim->fe_port->sp_fdb--;
		if (!reusable)
			sw->sw_st.ss_evictions++;
	}
	port->sp_fdb++;
	memcpy(victim->fe_mac, mac, 6);
	victim->fe_vid = vid;
	victim->fe_port = port;
	victim->fe_seen_ns = now;
	sw->sw_st.ss_learned++;
}

static void fdb_forget_port(struct hvs_switch *sw, struct sw_port *port)
{
	/* Stops once the port's last entry is gone (most ports have a MAC
	 * or two, the table 4096 slots). */
	for (uint32_t i = 0; i < HVS_SW_FDB_SIZE && port->sp_fdb != 0; i++) {
		struct fdb_entry *e = &sw->sw_fdb[i];
		if (e->fe_vid != 0 && e->fe_port == port) {
			memset(e, 0, sizeof(*e));
			sw->sw_st.ss_entries--;
			port->sp_fdb--;
		}
	}
}

/* Hand f (in VLAN vid, tag tci) to port q. */
static void sw_output(struct hvs_switch *sw, struct sw_port *q,
		      const struct hvs_net_frame *f, uint16_t vid, uint16_t tci)
{
	struct hvs_net_frame o = *f;

	if (q->sp_vlan != 0) {
		if (vid != q->sp_vlan)
			return;
		o.nf_tci = 0;
	} else {
		o.nf_tci = tci;
	}
	if (hvs_net_deliver(q->sp_ep, &o) == -EAGAIN) {
		/* A switch does not wait for a slow port. */
		q->sp_ep->ep_st.es_rx_dropped++;
		sw->sw_st.ss_dropped++;
	}
}

static int sw_send(struct hvs_net_ep *ep, const struct hvs_net_frame *f)
{
	struct sw_port *p = ep->ep_be;
	struct hvs_switch *sw = p->sp_sw;
	uint16_t vid, tci;
	uint64_t now = hvs_now_ns();

	if ((f->nf_tci & 0x0FFFu) == 0x0FFFu) {
		sw->sw_st.ss_vlan_dropped++;
		return -EINVAL;
	}
	if (p->sp_vlan != 0) {
		uint16_t fvid = f->nf_tci & 0x0FFFu;
		if (fvid != 0 && fvid != p->sp_vlan) {
			sw->sw_st.ss_vlan_dropped++;
			return -EINVAL;
		}
		vid = p->sp_vlan;
		tci = (uint16_t)((f->nf_tci & 0xF000u) | vid);
	} else {
		vid = f->nf_tci & 0x0FFFu;
		tci = f->nf_tci;
	}
	/* the FDB's key 0 means "free": untagged frames use a VID outside
	 * 0..4095 */
	uint16_t key = vid != 0 ? vid : FE_VID_UNTAGGED;
	const uint8_t *dst = f->nf_data, *src = f->nf_data + 6;

	if ((src[0] & 1) == 0)
		fdb_learn(sw, key, src, p, now);
	if ((dst[0] & 1) == 0) {
		struct fdb_entry *e = fdb_lookup(sw, key, dst, now);
		if (e != NULL) {
			if (e->fe_port != p) {
				sw->sw_st.ss_forwarded++;
				sw_output(sw, e->fe_port, f, vid, tci);
			}
			return 0;
		}
	}
	sw->sw_st.ss_flooded++;
	for (unsigned i = 0; i < sw->sw_nports; i++)
		if (sw->sw_ports[i] != p)
			sw_output(sw, sw->sw_ports[i], f, vid, tci);
	return 0;
}

static void sw_close(struct hvs_net_ep *ep)
{
	struct sw_port *p = ep->ep_be;
	if (p == NULL)
		return;
	struct hvs_switch *sw = p->sp_sw;

	pthread_mutex_lock(&sw_lock);
	for (unsigned i = 0; i < sw->sw_nports; i++) {
		if (sw->sw_ports[i] == p) {
			sw->sw_ports[i] = sw->sw_ports[--sw->sw_nports];
			break;
		}
	}
	fdb_forget_port(sw, p);
	if (sw->sw_nports == 0) {
		for (struct hvs_switch **pp = &sw_list; *pp != NULL;
		     pp = &(*pp)->sw_next) {
			if (*pp == sw) {
				*pp = sw->sw_next;
				break;
			}
		}
		free(sw);
	}
	pthread_mutex_unlock(&sw_lock);
	free(p);
	ep->ep_be = NULL;
}

static const struct hvs_net_be_ops sw_ops = {
	.bo_send = sw_send,
	.bo_close = sw_close,
};

int hvs_net_switch_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
			char *err, size_t errlen)
{
	const char *name = spec->ns_arg[0] != '\0' ? spec->ns_arg : "default";
	struct sw_port *p = calloc(1, sizeof(*p));
	int r = 0;

	if (p == NULL) {
		hvs_net_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&sw_lock);
	struct hvs_switch *sw = sw_find(name);
	if (sw == NULL) {
		sw = calloc(1, sizeof(*sw));
		if (sw == NULL) {
			hvs_net_errf(err, errlen, "out of memory");
			r = -ENOMEM;
			goto out;
		}
		snprintf(sw->sw_name, sizeof(sw->sw_name), "%s", name);
		sw->sw_loop = ep->ep_loop;
		sw->sw_next = sw_list;
		sw_list = sw;
	} else if (sw->sw_loop != ep->ep_loop) {
		hvs_net_errf(err, errlen, "switch %s is served by another "
			     "event loop", name);
		r = -EINVAL;
		goto out;
	}
	if (sw->sw_nports >= HVS_SW_MAX_PORTS) {
		hvs_net_errf(err, errlen, "switch %s has %u ports already",
			     name, HVS_SW_MAX_PORTS);
		r = -ENOSPC;
		goto out;
	}
	p->sp_sw = sw;
	p->sp_ep = ep;
	p->sp_vlan = spec->ns_vlan;
	sw->sw_ports[sw->sw_nports++] = p;
	ep->ep_ops = &sw_ops;
	ep->ep_be = p;
out:
	pthread_mutex_unlock(&sw_lock);
	if (r < 0)
		free(p);
	return r;
}

int hvs_switch_get_stats(const char *name, struct hvs_switch_stats *st)
{
	int r = -ENOENT;

	pthread_mutex_lock(&sw_lock);
	struct hvs_switch *sw = sw_find(name);
	if (sw != NULL) {
		*st = sw->sw_st;
		st->ss_ports = sw->sw_nports;
		r = 0;
	}
	pthread_mutex_unlock(&sw_lock);
	return r;
}
