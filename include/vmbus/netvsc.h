/*
 * vmbus/netvsc.h - the guest NetVSC driver (synthetic network adapter,
 * NVSP + RNDIS over VMBus) and its frame API for the operating system.
 *
 * One `struct netvsc_dev` per synthetic NIC (one primary channel of class
 * HV_GUID_NETVSC plus its vRSS subchannels). The driver does the whole
 * bring-up of spec/vmbus-devices.md 2.9 inside the VMBus attach: NVSP
 * version negotiation newest first (6.1 6 5 4 2 1) with the matching NDIS
 * version, receive and send buffers, RNDIS initialize, MTU, MAC addresses,
 * offloads, link state, vRSS subchannels and RSS parameters. The OS learns
 * about the NIC through the nc_attach callback and then uses the calls
 * below.
 *
 * Contexts used in the contracts (as in vmbus/vmbus.h):
 *   "thread"  may sleep; never from a netvsc or channel callback.
 *   "any"     never sleeps; callable from the callbacks too.
 * Every wait is bounded (nc_timeout_ns). Errors are negative VMBUS_E*
 * codes (vmbus/errno.h) with their fixed meanings.
 *
 * Callbacks (nc_attach, nc_detach, rx, link, tx_ready, send completions)
 * run in the channel callback context of the core (the port's interrupt
 * context, or vmbus_poll in a polled port) except nc_attach / nc_detach,
 * which run in the VMBus attach / detach (thread) context. Callbacks never
 * run with a netvsc lock held, so they may call netvsc_send.
 *
 * Freestanding: only compiler headers, hv/ and vmbus/ headers.
 */
#ifndef VMBUS_NETVSC_H
#define VMBUS_NETVSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/vmbus.h"

struct netvsc_dev;

#define NETVSC_MAX_DEVICES	16u	/* NICs per bus */
#define NETVSC_QUEUES_MAX	64u	/* queues (channels) per NIC */
#define NETVSC_ETHER_ADDR_LEN	6u
#define NETVSC_ETHER_HDR_LEN	14u
#define NETVSC_MTU_MIN		68u	/* L3 bytes */
#define NETVSC_MTU_DEFAULT	1500u
#define NETVSC_MTU_JUMBO	9000u
/* Largest L3 MTU: the NDIS config message carries MTU + 14 <= 9216. */
#define NETVSC_MTU_MAX		(9216u - NETVSC_ETHER_HDR_LEN)
#define NETVSC_TX_MAX_FRAGS	30u	/* fragments per netvsc_send */
#define NETVSC_QUEUE_AUTO	0xFFFFFFFFu /* pick the queue from the hash */

/* ---- offloads (nc_offloads, netvsc_info.ni_offloads) ------------------ */

#define NETVSC_OFFLOAD_TCP4_CSUM	0x0001u	/* TCP/IPv4 checksum, TX+RX */
#define NETVSC_OFFLOAD_UDP4_CSUM	0x0002u	/* UDP/IPv4 checksum, TX+RX */
#define NETVSC_OFFLOAD_TCP6_CSUM	0x0004u	/* TCP/IPv6 checksum, TX+RX */
#define NETVSC_OFFLOAD_UDP6_CSUM	0x0008u	/* UDP/IPv6 checksum, TX+RX */
#define NETVSC_OFFLOAD_IP4_CSUM		0x0010u	/* IPv4 header checksum */
#define NETVSC_OFFLOAD_LSO4		0x0020u	/* TCP/IPv4 large send (LSOv2) */
#define NETVSC_OFFLOAD_LSO6		0x0040u	/* TCP/IPv6 large send (LSOv2) */
#define NETVSC_OFFLOAD_RSS		0x0080u	/* vRSS with subchannels */
/*
 * The default (nc_offloads == 0): everything but the IPv4 header checksum,
 * which Linux also leaves to the guest (spec 2.7). An offload is enabled
 * only if wanted here AND the host's capabilities allow it.
 */
#define NETVSC_OFFLOAD_DEFAULT		0x00EFu
#define NETVSC_OFFLOAD_NONE		0x8000u	/* request no offload at all */

/* ---- configuration ---------------------------------------------------- */

struct netvsc_callbacks;

/*
 * Called once per NIC after its bring-up succeeded (nc_attach) and once
 * when it goes away (nc_detach: rescind, unload, destroy). nc_detach is
 * the last callback for nd: every outstanding send completion has been
 * delivered before it, and nd is freed right after it returns, so the OS
 * must have stopped calling netvsc_* on nd by then. Thread context.
 * A nonzero return from nc_attach makes the attach fail (the NIC is torn
 * down; nc_detach is not called).
 */
typedef int  netvsc_attach_fn(void *arg, struct netvsc_dev *nd);
typedef void netvsc_detach_fn(void *arg, struct netvsc_dev *nd);

struct netvsc_config {
	/* VMBus ring sizes, each direction, whole ring incl. the 4 KiB
	 * control page, multiple of 4096: 0 = 512 KiB (spec 1.8). */
	uint32_t nc_tx_ring_bytes;
	uint32_t nc_rx_ring_bytes;
	/* Receive buffer (bytes, multiple of 4096): 0 = 16 MiB; clamped to
	 * 15 MiB for NVSP <= 2 and 31 MiB above (spec 1.8). */
	uint32_t nc_recv_buf_bytes;
	/* Send buffer (bytes, multiple of 4096): 0 = 1 044 480 (170
	 * sections of 6144, spec 1.8), at most 15 MiB. */
	uint32_t nc_send_buf_bytes;
	bool     nc_no_send_buf;	/* never offer a send buffer */
	/* Queues wanted (1 = no vRSS): 0 = min(vCPUs, 16); <= 64. */
	uint32_t nc_max_queues;
	/* L3 MTU to configure (68..NETVSC_MTU_MAX): 0 = 1500. The host may
	 * lower it (OID_GEN_MAXIMUM_FRAME_SIZE); NVSP 1 always uses 1500. */
	uint32_t nc_mtu;
	/* NVSP versions to try (version words, hv/nvsp.h), newest first
	 * within [min, max]: 0 = all (6.1 .. 1). */
	uint32_t nc_max_nvsp_version;
	uint32_t nc_min_nvsp_version;
	/* NETVSC_OFFLOAD_* wanted; 0 = NETVSC_OFFLOAD_DEFAULT. */
	uint32_t nc_offloads;
	/* Bound of every control-path wait (ns): 0 = 5 s. */
	uint64_t nc_timeout_ns;
	/* Frames a send may occupy the send buffer with when done == NULL
	 * are copied; larger frames with a done callback go by GPA (zero
	 * copy). 0 = copy every frame that fits one send section. */
	uint32_t nc_copy_max;
	netvsc_attach_fn *nc_attach;	/* may be NULL */
	netvsc_detach_fn *nc_detach;	/* may be NULL */
	void *nc_arg;
};

/*
 * netvsc_register - register the NetVSC driver on vb (call once per bus,
 * before or after vmbus_connect): every synthetic NIC offered now or later
 * is brought up with cfg (NULL = defaults; copied) and announced through
 * nc_attach. Context: thread. Returns 0, -VMBUS_EINVAL (bad cfg),
 * -VMBUS_EEXIST (already registered on vb), -VMBUS_ENOSPC (too many
 * buses), or what vmbus_driver_register returns.
 */
int netvsc_register(struct vmbus *vb, const struct netvsc_config *cfg);

/*
 * netvsc_unregister - forget the driver object of vb; call after
 * vmbus_destroy(vb) (or vmbus_unload) has detached every NIC. Thread.
 */
void netvsc_unregister(struct vmbus *vb);

/*
 * netvsc_leaked_pages - pages the driver leaked on purpose (the host may
 * still own them, STYLE 9) for NICs of vb that are gone: detached, or
 * whose attach failed (no nc_detach tells about those). The sum of their
 * ns_leaked_pages. Valid until netvsc_unregister(vb), also after
 * vmbus_destroy(vb). Any.
 */
uint64_t netvsc_leaked_pages(struct vmbus *vb);

/* Number of attached NICs on vb, and the i-th one (NULL if none). Any. */
uint32_t netvsc_count(struct vmbus *vb);
struct netvsc_dev *netvsc_get(struct vmbus *vb, uint32_t index);

/* ---- callbacks for the OS --------------------------------------------- */

/* What the host told about a received frame (from its per-packet info). */
struct netvsc_rx_info {
	uint32_t ri_flags;
#define NETVSC_RX_VLAN		0x0001u	/* ri_vlan_tci valid (tag removed) */
#define NETVSC_RX_HASH		0x0002u	/* ri_hash / ri_hash_info valid */
#define NETVSC_RX_IP_CSUM_OK	0x0010u	/* host verified the IPv4 header */
#define NETVSC_RX_IP_CSUM_BAD	0x0020u
#define NETVSC_RX_TCP_CSUM_OK	0x0040u
#define NETVSC_RX_TCP_CSUM_BAD	0x0080u
#define NETVSC_RX_UDP_CSUM_OK	0x0100u
#define NETVSC_RX_UDP_CSUM_BAD	0x0200u
	uint16_t ri_vlan_tci;		/* 802.1Q TCI: PCP(3) DEI(1) VID(12) */
	uint16_t ri_rsvd;
	uint32_t ri_hash;		/* RSS hash value */
	uint32_t ri_hash_info;		/* NDIS hash type/function bits */
};

/* Link state, as last reported by the host. */
struct netvsc_link {
	bool     nl_up;			/* media connected */
	uint64_t nl_speed_bps;		/* bit/s; 0 = unknown */
	uint32_t nl_event;		/* what changed */
#define NETVSC_LINK_EV_CONNECT		1u
#define NETVSC_LINK_EV_DISCONNECT	2u
#define NETVSC_LINK_EV_SPEED		3u
#define NETVSC_LINK_EV_NETWORK_CHANGE	4u	/* renew addresses (DHCP) */
};

struct netvsc_callbacks {
	/*
	 * A received frame on queue q: frame[0..len) is the Ethernet frame
	 * without an 802.1Q tag (the tag is in ri), in driver memory valid
	 * only during the call (copy what you keep). Any context rules.
	 */
	void (*rx)(void *arg, struct netvsc_dev *nd, uint32_t q,
	    const void *frame, uint32_t len, const struct netvsc_rx_info *ri);
	/* Link state changed (media, speed, network change). */
	void (*link)(void *arg, struct netvsc_dev *nd,
	    const struct netvsc_link *nl);
	/* Queue q has room again after a send returned -VMBUS_EAGAIN. */
	void (*tx_ready)(void *arg, struct netvsc_dev *nd, uint32_t q);
};

/*
 * netvsc_set_callbacks - install (or with cb NULL remove) the OS
 * callbacks; cb is copied. Frames that arrive with no rx callback are
 * dropped and counted (ns_rx_no_callback). Any context; a callback
 * already running may finish with the old table.
 */
void netvsc_set_callbacks(struct netvsc_dev *nd,
    const struct netvsc_callbacks *cb, void *arg);

/* ---- transmit ---------------------------------------------------------- */

/* One piece of a frame. */
struct netvsc_frag {
	const void *nf_data;
	uint32_t    nf_len;
};

/* Offload requests for one frame (all zero = none). */
struct netvsc_tx_meta {
	uint32_t tm_flags;
#define NETVSC_TX_IPV4		0x0001u	/* the frame is IPv4 ... */
#define NETVSC_TX_IPV6		0x0002u	/* ... or IPv6 (csum and LSO need one) */
#define NETVSC_TX_CSUM_IP	0x0004u	/* host computes the IPv4 header csum */
#define NETVSC_TX_CSUM_TCP	0x0008u	/* host computes the TCP checksum */
#define NETVSC_TX_CSUM_UDP	0x0010u	/* host computes the UDP checksum */
#define NETVSC_TX_LSO		0x0020u	/* host segments by tm_mss (TCP) */
#define NETVSC_TX_VLAN		0x0040u	/* tag with tm_vlan_tci */
#define NETVSC_TX_HASH		0x0080u	/* send tm_hash as the hash PPI */
	uint16_t tm_l4_offset;		/* TCP/UDP header offset in the frame */
	uint16_t tm_mss;		/* LSO segment payload size */
	uint16_t tm_vlan_tci;		/* PCP(3) DEI(1) VID(12) */
	uint16_t tm_rsvd;
	uint32_t tm_hash;		/* also picks the queue (NETVSC_QUEUE_AUTO) */
};

/*
 * Completion of a netvsc_send with a done callback: status 0 (the host
 * took the frame), -VMBUS_EIO (the host reported a failure),
 * -VMBUS_ENODEV (the NIC went away first: never sent or never
 * completed; the memory is the caller's again either way).
 */
typedef void netvsc_tx_done_fn(void *cookie, int status);

/*
 * netvsc_send - transmit one Ethernet frame made of frags[0..nfrag) (the
 * frame without an 802.1Q tag when meta asks for NETVSC_TX_VLAN) on queue
 * q (< netvsc_info.ni_queues, or NETVSC_QUEUE_AUTO: the host's send
 * indirection table indexed by tm_hash, queue 0 without a hash). The RNDIS
 * packet message and the per-packet info for meta are built here.
 *
 *  done == NULL  "fire and forget": the frame is copied into the send
 *                buffer (one section, or a run of sections sent by GPA for
 *                frames larger than a section); frags may be reused when
 *                the call returns.
 *  done != NULL  asynchronous: the frame is copied if it fits one section
 *                (and nc_copy_max), else sent from the caller's memory by
 *                GPA (page buffers): frags belong to the host until
 *                done(cookie, status) is called, exactly once, from the
 *                queue's callback context (or from the detach path).
 *
 * Never blocks. Context: any. Returns 0, or:
 *   -VMBUS_EAGAIN    no room now (ring, send sections or send slots):
 *                    retry later; tx_ready(q) is called when room appears;
 *   -VMBUS_EMSGSIZE  the frame can never be sent this way (too large for
 *                    the send buffer without done, too many pages, or
 *                    larger than MTU + 14 without LSO);
 *   -VMBUS_EFAULT    done != NULL, the frame needs GPA transfer and some
 *                    fragment is not memory the port can describe;
 *   -VMBUS_EINVAL    bad arguments (no frags, bad queue, meta asks for an
 *                    offload that is not enabled, LSO without a size);
 *   -VMBUS_ENODEV    the NIC is down, resetting or going away;
 *   -VMBUS_EPROTO    the channel broke.
 * On any error done is not called and the frags are the caller's.
 */
int netvsc_send(struct netvsc_dev *nd, uint32_t q,
    const struct netvsc_frag *frags, uint32_t nfrag,
    const struct netvsc_tx_meta *meta, netvsc_tx_done_fn *done, void *cookie);

/*
 * netvsc_wait_tx - wait until queue q may have room for a send, or
 * timeout_ns passes. Context: thread. Returns 0 (retry the send; another
 * sender may take the room first), -VMBUS_ETIMEDOUT, -VMBUS_ENODEV,
 * -VMBUS_EPROTO, -VMBUS_EINVAL.
 */
int netvsc_wait_tx(struct netvsc_dev *nd, uint32_t q, uint64_t timeout_ns);

/* ---- state, control and statistics ------------------------------------- */

struct netvsc_info {
	uint8_t  ni_perm_mac[NETVSC_ETHER_ADDR_LEN];	/* OID_802_3_PERMANENT_ADDRESS */
	uint8_t  ni_cur_mac[NETVSC_ETHER_ADDR_LEN];	/* OID_802_3_CURRENT_ADDRESS */
	uint32_t ni_mtu;		/* L3 MTU in use */
	uint32_t ni_max_mtu;		/* largest MTU netvsc_set_mtu accepts */
	uint32_t ni_nvsp_version;	/* negotiated NVSP version word */
	uint32_t ni_ndis_version;	/* announced NDIS version, (major<<16)|minor */
	uint32_t ni_queues;		/* queues in use (primary + subchannels) */
	uint32_t ni_offloads;		/* NETVSC_OFFLOAD_* enabled */
	uint32_t ni_lso_max;		/* bytes, 0 without LSO */
	uint32_t ni_lso_min_segs;
	bool     ni_link_up;
	uint64_t ni_link_speed_bps;
	uint32_t ni_recv_buf_bytes;
	uint32_t ni_recv_section_size;	/* host sub-allocation size */
	uint32_t ni_recv_sections;
	uint32_t ni_send_buf_bytes;	/* 0: no send buffer (bounce pages) */
	uint32_t ni_send_section_size;
	uint32_t ni_send_sections;
	uint32_t ni_rndis_max_pkts;	/* INITIALIZE_CMPLT max packets/msg */
	uint32_t ni_rndis_align;	/* bytes */
	uint32_t ni_rss_table_size;	/* indirection table entries sent */
	uint32_t ni_packet_filter;	/* NDIS_PACKET_TYPE_* in effect */
	struct vmbus_channel *ni_channel; /* primary channel */
};

/* Snapshot of the NIC's state. Any. Returns 0 or -VMBUS_EINVAL. */
int netvsc_get_info(const struct netvsc_dev *nd, struct netvsc_info *out);

/*
 * netvsc_up / netvsc_down - open the interface (packet filter DIRECTED |
 * ALL_MULTICAST | BROADCAST, spec 2.9 step 15) or close it (filter 0:
 * the host delivers nothing). netvsc_set_filter sets any filter
 * (NDIS_PACKET_TYPE_* bits, hv/rndis.h). Context: thread.
 * Return 0, -VMBUS_EIO (the host refused: RNDIS status != SUCCESS),
 * -VMBUS_ETIMEDOUT, -VMBUS_ENODEV, -VMBUS_EPROTO.
 */
int netvsc_up(struct netvsc_dev *nd);
int netvsc_down(struct netvsc_dev *nd);
int netvsc_set_filter(struct netvsc_dev *nd, uint32_t filter);

/*
 * netvsc_set_mtu - change the L3 MTU (NETVSC_MTU_MIN .. ni_max_mtu). As on
 * Linux this re-runs the whole NIC bring-up (halt, revoke buffers, close,
 * reopen, NDIS config with the new MTU); sends fail with -VMBUS_ENODEV
 * meanwhile and outstanding ones complete with -VMBUS_ENODEV. The host
 * may grant less (ni_mtu tells). The packet filter is restored.
 * Context: thread. Returns 0, -VMBUS_EINVAL (out of range), or an error
 * of the bring-up (the NIC is then down: -VMBUS_ENODEV from every call
 * until a successful netvsc_set_mtu).
 */
int netvsc_set_mtu(struct netvsc_dev *nd, uint32_t mtu);

/*
 * netvsc_query / netvsc_set - one RNDIS QUERY or SET of an OID (hv/rndis.h)
 * on the NIC. query: in[0..inlen) is the information buffer sent with the
 * query (an NDIS object header for some OIDs, else inlen 0); the reply
 * data is copied to out, *outlen = in: capacity, out: bytes returned or,
 * on -VMBUS_ENOBUFS, the size needed (nothing copied). Context: thread.
 * Return 0, -VMBUS_EIO (RNDIS status != SUCCESS; *rndis_status, may be
 * NULL, gets it), -VMBUS_ENOBUFS, -VMBUS_EPROTO (malformed reply),
 * -VMBUS_ETIMEDOUT, -VMBUS_ENODEV, -VMBUS_EINVAL (inlen too large).
 */
int netvsc_query(struct netvsc_dev *nd, uint32_t oid, const void *in,
    uint32_t inlen, void *out, uint32_t *outlen, uint32_t *rndis_status);
int netvsc_set(struct netvsc_dev *nd, uint32_t oid, const void *data,
    uint32_t len, uint32_t *rndis_status);

/*
 * netvsc_keepalive - RNDIS KEEPALIVE and its completion; netvsc_reset -
 * RNDIS RESET and its completion (*addressing_reset, may be NULL, gets
 * the host's flag). Context: thread. Return 0, -VMBUS_EIO (status !=
 * SUCCESS), -VMBUS_ETIMEDOUT (e.g. a host without RESET), -VMBUS_ENODEV,
 * -VMBUS_EPROTO.
 */
int netvsc_keepalive(struct netvsc_dev *nd);
int netvsc_reset(struct netvsc_dev *nd, bool *addressing_reset);

/* Per-queue counters (STYLE 7: every dropped host input is counted). */
struct netvsc_queue_stats {
	uint64_t qs_rx_frames;		/* delivered to the rx callback */
	uint64_t qs_rx_bytes;
	uint64_t qs_rx_xfer_pkts;	/* transfer-page packets */
	uint64_t qs_rx_ranges;
	uint64_t qs_rx_ctl_msgs;	/* RNDIS control / status messages */
	uint64_t qs_rx_drops;		/* frames or ranges dropped, any reason */
	uint64_t qs_rx_no_callback;	/* frames with no rx callback installed */
	uint64_t qs_rx_bad_pkt;		/* bad xfer packet: id, count, NVSP */
	uint64_t qs_rx_bad_range;	/* range outside the buffer, 0, too big */
	uint64_t qs_rx_bad_rndis;	/* RNDIS lengths / offsets / type */
	uint64_t qs_rx_bad_ppi;		/* PPI chain malformed or short */
	uint64_t qs_rx_unknown_ppi;	/* unknown PPI types skipped */
	uint64_t qs_rx_comp_sent;	/* receive completions sent */
	uint64_t qs_rx_comp_deferred;	/* completions queued: ring full */
	uint64_t qs_rx_comp_fail;	/* completions sent with FAIL status */
	uint64_t qs_tx_frames;		/* sends accepted */
	uint64_t qs_tx_bytes;
	uint64_t qs_tx_copied;		/* through the send buffer / bounce */
	uint64_t qs_tx_gpa;		/* from the caller's pages */
	uint64_t qs_tx_busy;		/* -VMBUS_EAGAIN returned */
	uint64_t qs_tx_done;		/* host completions of sends */
	uint64_t qs_tx_errors;		/* host completions with a failure */
	uint64_t qs_bad_completions;	/* unknown / stale / duplicate ids */
	uint64_t qs_bad_nvsp;		/* short or mistyped NVSP messages */
	uint64_t qs_unknown_pkts;	/* inband NVSP messages not understood */
	uint64_t qs_too_big;		/* packets over the protocol maximum */
};

struct netvsc_stats {
	struct netvsc_queue_stats ns_total;	/* sum over all queues */
	uint64_t ns_rndis_unknown_rid;	/* replies with no request waiting */
	uint64_t ns_rndis_unknown_msg;	/* unknown RNDIS message types */
	uint64_t ns_status_indications;
	uint64_t ns_link_changes;
	uint64_t ns_indirection_tables;	/* SEND_INDIRECTION_TABLE accepted */
	uint64_t ns_bad_indirection;	/* rejected or entries clamped */
	uint64_t ns_vf_notes;		/* VF association messages (ignored) */
	uint64_t ns_reinits;		/* netvsc_set_mtu bring-ups */
	uint64_t ns_leaked_pages;	/* buffers the host kept: leaked */
};

/*
 * netvsc_get_stats - sum of all queues plus device counters;
 * netvsc_get_queue_stats - one queue (q < ni_queues). Any.
 * Return 0 or -VMBUS_EINVAL.
 */
int netvsc_get_stats(const struct netvsc_dev *nd, struct netvsc_stats *out);
int netvsc_get_queue_stats(const struct netvsc_dev *nd, uint32_t q,
    struct netvsc_queue_stats *out);

#endif /* VMBUS_NETVSC_H */
