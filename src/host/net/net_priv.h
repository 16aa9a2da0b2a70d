/*
 * host/net/net_priv.h - what the back ends (switch.c, tap.c, slirp.c,
 * null.c) and the capture (pcap.c) share with the endpoint core (net.c).
 */
#ifndef HVS_NET_PRIV_H
#define HVS_NET_PRIV_H

#include <stdatomic.h>

#include "host/log.h"
#include "host/net/net.h"

struct hvs_pcap;

/* One back end's entry points. */
struct hvs_net_be_ops {
	/* NIC -> network. 0 or a negative errno (frame dropped). */
	int (*bo_send)(struct hvs_net_ep *ep, const struct hvs_net_frame *f);
	/* Optional: the NIC has room again (see hvs_net_rx_ready). */
	void (*bo_rx_ready)(struct hvs_net_ep *ep);
	/* Free the back end's state (ep_be). */
	void (*bo_close)(struct hvs_net_ep *ep);
};

struct hvs_net_ep {
	const struct hvs_net_be_ops *ep_ops;
	void *ep_be;			/* back end's private state */
	enum hvs_net_kind ep_kind;
	struct hvs_loop *ep_loop;
	const struct hvs_net_nic_ops *ep_nic;
	void *ep_nic_arg;
	struct hvs_pcap *ep_pcap;	/* NULL: no capture */
	char ep_name[HVS_NET_NAME_MAX];
	struct hvs_net_ep_stats ep_st;
	struct hvs_ratelimit ep_rl;
	atomic_uint_fast64_t ep_errors;
};

/*
 * A back end hands a frame to the NIC (captures it first). Returns the
 * NIC's answer: 0 or -EAGAIN (see hvs_net_nic_ops.no_rx).
 */
int hvs_net_deliver(struct hvs_net_ep *ep, const struct hvs_net_frame *f);
/* A back end reports its carrier. */
void hvs_net_link(struct hvs_net_ep *ep, bool up);

/* Constructors: fill ep->ep_ops / ep->ep_be. 0 or -errno (+ err). */
int hvs_net_null_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
		      char *err, size_t errlen);
int hvs_net_switch_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
			char *err, size_t errlen);
int hvs_net_tap_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
		     char *err, size_t errlen);
int hvs_net_slirp_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
		       char *err, size_t errlen);

/* Capture file (libpcap, DLT_EN10MB). */
int hvs_pcap_open(const char *path, struct hvs_pcap **out, char *err,
		  size_t errlen);
/* Write one frame, the 802.1Q tag inserted if nf_tci != 0. */
int hvs_pcap_write(struct hvs_pcap *pc, const struct hvs_net_frame *f);
void hvs_pcap_close(struct hvs_pcap *pc);

void hvs_net_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* HVS_NET_PRIV_H */
