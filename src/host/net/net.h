/*
 * host/net/net.h - network back ends for the synthetic NIC (netvsp): the
 * `--net` specification parser, and endpoints that carry Ethernet frames
 * between one NIC and a network:
 *
 *   switch[=NAME]  an internal virtual switch joining the NICs of every VM
 *                  of this host that names the same switch (MAC learning,
 *                  flooding of broadcast/multicast/unknown, VLANs);
 *   tap=IFNAME     a Linux TAP device (created, or an existing one);
 *   user           user-mode networking through libslirp: DHCP, DNS, NAT
 *                  and host port forwards, driven by the host's event loop;
 *   null           a sink (benchmarks), optionally a frame generator.
 *
 * Any of them can capture the NIC's traffic (both directions) to a pcap
 * file with `pcap=FILE`.
 *
 * A frame crossing an endpoint is an Ethernet frame without FCS whose
 * 802.1Q tag, if any, travels out of band in nf_tci (the way NetVSC
 * carries it in a per-packet info). Back ends that put frames on a real
 * wire (TAP, pcap) insert the tag; the switch forwards by it.
 *
 * Threading: everything runs on the loop thread given to hvs_net_open();
 * NIC callbacks are called on it. Nothing here blocks.
 */
#ifndef HVS_NET_H
#define HVS_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hvs_loop;

/* ---- limits ---------------------------------------------------------------- */

#define HVS_NET_ETH_HLEN	14u
#define HVS_NET_VLAN_HLEN	4u
#define HVS_NET_ETH_ZLEN	60u	/* shortest frame on a wire, FCS excluded */
/* Largest Ethernet frame (tag and FCS excluded): the NVSP NDIS-config
 * maximum (spec 1.4, 9216), i.e. an L3 MTU of 9202. */
#define HVS_NET_MAX_FRAME	9216u
#define HVS_NET_MTU_DEFAULT	1500u	/* L3 MTU */
#define HVS_NET_MTU_MIN		1500u	/* NDIS config floor: frame 1514 */
#define HVS_NET_MTU_MAX		(HVS_NET_MAX_FRAME - HVS_NET_ETH_HLEN)
#define HVS_NET_MAX_QUEUES	64u	/* vRSS queues per NIC (spec 1.8) */
#define HVS_NET_DEFAULT_QUEUES	8u
#define HVS_NET_MAX_HOSTFWD	16u
#define HVS_NET_NAME_MAX	64u	/* switch / interface / NIC names, NUL incl. */
#define HVS_NET_PATH_MAX	1024u	/* pcap path, NUL included */
#define HVS_NET_MAX_VLAN	4094u

/* ---- specification (--net) --------------------------------------------------- */

enum hvs_net_kind {
	HVS_NET_NULL = 0,
	HVS_NET_SWITCH,
	HVS_NET_TAP,
	HVS_NET_USER,
};

/* One user-mode port forward (hostfwd=). Addresses in host byte order. */
struct hvs_net_hostfwd {
	bool hf_udp;
	uint32_t hf_host_addr;		/* 0 = any */
	uint16_t hf_host_port;		/* 1..65535 */
	uint32_t hf_guest_addr;		/* 0 = the first DHCP address */
	uint16_t hf_guest_port;		/* 1..65535 */
};

struct hvs_net_spec {
	enum hvs_net_kind ns_kind;
	char ns_arg[HVS_NET_NAME_MAX];	/* switch name ("default") / tap ifname */
	char ns_pcap[HVS_NET_PATH_MAX];	/* "" = no capture */
	bool ns_have_mac;
	uint8_t ns_mac[6];		/* mac=, else derived (hvs_net_mac_derive) */
	uint32_t ns_mtu;		/* L3 MTU the host allows, bytes */
	uint32_t ns_queues;		/* vRSS queues offered, 1..64 */
	uint16_t ns_vlan;		/* switch access VLAN, 0 = trunk */
	bool ns_link_down;		/* link=down: start disconnected */
	char ns_friendly[HVS_NET_NAME_MAX]; /* name= (OID_GEN_FRIENDLY_NAME) */
	/* user */
	uint32_t ns_net;		/* network, host byte order (10.0.2.0) */
	uint32_t ns_prefix;		/* prefix length, 8..29 (24) */
	bool ns_ipv6;			/* ipv6=on (default): fec0::/64 */
	unsigned ns_nhostfwd;
	struct hvs_net_hostfwd ns_hostfwd[HVS_NET_MAX_HOSTFWD];
	/* null */
	uint32_t ns_gen_len;		/* gen=LEN: host->guest frames, 0 = off */
	uint64_t ns_gen_count;		/* count=N frames, 0 = unlimited */
};

/* Defaults: null, no capture, derived MAC, MTU 1500, 8 queues, trunk, link
 * up, user net 10.0.2.0/24 with IPv6. */
void hvs_net_spec_init(struct hvs_net_spec *spec);

/*
 * Parse one --net argument:
 *
 *   switch[=NAME] | tap=IFNAME | user | null
 *     [,pcap=FILE] [,mac=XX:XX:XX:XX:XX:XX] [,mtu=N] [,queues=N]
 *     [,link=up|down] [,name=TEXT]
 *   switch:  [,vlan=N]            access port on VLAN N (1..4094)
 *   user:    [,net=A.B.C.D/N] [,ipv6=on|off]
 *            [,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 *   null:    [,gen=LEN [,count=N]] frames of LEN bytes to the guest
 *
 * A ",," inside FILE or TEXT stands for one comma. mtu is the L3 MTU
 * (1500..9202; 9000 for jumbo frames). The MAC must be unicast. Returns 0
 * and fills *out, or -EINVAL with a one-line reason in err (NUL-terminated
 * if errlen > 0). Touches no system state.
 */
int hvs_net_parse(const char *spec, struct hvs_net_spec *out, char *err,
		  size_t errlen);

const char *hvs_net_kind_name(enum hvs_net_kind kind);

/*
 * The NIC's permanent MAC when mac= is absent: stable for a VM name and
 * NIC index (so across reboots), locally administered and unicast:
 * 02:15:5d:XX:XX:XX (the Hyper-V OUI with the local bit set).
 */
void hvs_net_mac_derive(const char *vm, unsigned index, uint8_t mac[6]);

/* "xx:xx:xx:xx:xx:xx" (or '-' separated). 0, or -EINVAL. */
int hvs_net_mac_parse(const char *s, uint8_t mac[6]);

/* ---- frames ------------------------------------------------------------------ */

struct hvs_net_frame {
	const uint8_t *nf_data;		/* Ethernet header onwards, no FCS */
	uint32_t nf_len;		/* bytes, >= HVS_NET_ETH_HLEN */
	uint16_t nf_tci;		/* 802.1Q TCI: PCP 15-13, DEI 12, VID
					   11-0; 0 = untagged */
	uint16_t nf_flags;
#define HVS_NF_CSUM_OK	0x0001u	/* the host computed the IPv4 header and
				   TCP/UDP checksums: known good */
};

/*
 * Copy f into out with its 802.1Q tag (TPID 0x8100) inserted after the
 * MAC addresses when nf_tci != 0. Returns the length, or 0 if out (cap
 * bytes) is too small or the frame shorter than 12 bytes.
 */
uint32_t hvs_net_frame_tagged(const struct hvs_net_frame *f, uint8_t *out,
			      uint32_t cap);

/*
 * If buf[0..*len) carries an 802.1Q or 802.1ad tag, move it out: *tci gets
 * the TCI, the tag is removed in place, *len shrinks by 4. Returns true if
 * a tag was removed.
 */
bool hvs_net_frame_untag(uint8_t *buf, uint32_t *len, uint16_t *tci);

/* ---- endpoints --------------------------------------------------------------- */

struct hvs_net_ep;

/* What an endpoint calls on its NIC (loop thread). */
struct hvs_net_nic_ops {
	/*
	 * A frame from the network. Return 0 when taken (or dropped on
	 * purpose), or -EAGAIN when the NIC has no room now: the back end
	 * then holds or drops the frame and offers nothing more until the
	 * NIC calls hvs_net_rx_ready(). The frame's memory is the back end's;
	 * copy what you keep. Must not close the endpoint.
	 */
	int (*no_rx)(void *arg, const struct hvs_net_frame *f);
	/* Optional: the back end's carrier changed. */
	void (*no_link)(void *arg, bool up);
};

/*
 * Open the back end spec names for one NIC. name is for logs ("vm1/net0").
 * The endpoint calls ops on loop's thread until hvs_net_close().
 * Returns 0 and *out, or a negative errno with a reason in err:
 * -EOPNOTSUPP (back end not built in: libslirp / libpcap missing),
 * -EINVAL (bad spec), -EBUSY (TAP in use), -EPERM (no CAP_NET_ADMIN),
 * -ENOMEM, others from the system calls.
 */
int hvs_net_open(struct hvs_loop *loop, const struct hvs_net_spec *spec,
		 const char *name, const struct hvs_net_nic_ops *ops,
		 void *arg, struct hvs_net_ep **out, char *err, size_t errlen);

/* Close and free (flushes the capture). NULL is a no-op. Not from inside
 * the endpoint's own callbacks. */
void hvs_net_close(struct hvs_net_ep *ep);

/*
 * A frame from the NIC to the network (the guest transmitted it). The
 * frame is copied or consumed before this returns. Returns 0, or a
 * negative errno when it was dropped (counted): -EAGAIN (back end queue
 * full), -EMSGSIZE, -ENETDOWN, -EINVAL.
 */
int hvs_net_send(struct hvs_net_ep *ep, const struct hvs_net_frame *f);

/* The NIC has room again after refusing a frame with -EAGAIN. */
void hvs_net_rx_ready(struct hvs_net_ep *ep);

struct hvs_net_ep_stats {
	uint64_t es_tx_frames;		/* NIC -> network, delivered */
	uint64_t es_tx_bytes;
	uint64_t es_tx_dropped;		/* refused by the back end */
	uint64_t es_rx_frames;		/* network -> NIC, taken */
	uint64_t es_rx_bytes;
	uint64_t es_rx_dropped;		/* lost on the way to the NIC */
	uint64_t es_rx_deferred;	/* NIC said -EAGAIN */
	uint64_t es_captured;		/* frames written to the pcap file */
};

void hvs_net_get_stats(const struct hvs_net_ep *ep, struct hvs_net_ep_stats *st);
const char *hvs_net_ep_name(const struct hvs_net_ep *ep);
enum hvs_net_kind hvs_net_ep_kind(const struct hvs_net_ep *ep);

/* Which optional back ends this build has. */
bool hvs_net_have_slirp(void);
bool hvs_net_have_pcap(void);

#endif /* HVS_NET_H */
