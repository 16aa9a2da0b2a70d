/*
 * host/vsp/netvsp_priv.h - NetVSP private state, shared by netvsp.c (NVSP,
 * buffers, the data path) and netvsp_rndis.c (RNDIS control and OIDs).
 */
#ifndef HVS_VSP_NETVSP_PRIV_H
#define HVS_VSP_NETVSP_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/fault.h"
#include "host/log.h"
#include "host/net/net.h"
#include "host/vsp/netvsp.h"
#include "hv/nvsp.h"
#include "hv/rndis.h"

struct hvs_channel;
struct hvs_loop_timer;

/* ---- limits and host choices ---------------------------------------------- */

#define NETVSP_SECTION_SIZE	NVSP_SEND_SECTION_SIZE_DEFAULT /* 6144 (V) */
#define NETVSP_RX_HDR_ROOM	256u	/* RNDIS header + PPIs before a frame */
#define NETVSP_RX_CTRL_RESERVE	16u	/* slots only control replies use (V) */
#define NETVSP_MAX_RX_SLOTS	65536u
/* Largest RNDIS byte stream of one send (section + GPA ranges): an LSO
 * frame of 64 KiB plus headers, with room to spare. */
#define NETVSP_TX_MAX		(192u * 1024u)
#define NETVSP_PKT_MAX		65536u	/* largest ring packet accepted */
#define NETVSP_TX_MAX_PKTS	256u	/* RNDIS packets per NVSP send */
#define NETVSP_PPI_MAX		32u	/* PPI records per packet */
#define NETVSP_LSO_MAX		NDIS_LSO_V_MAX_SIZE /* 62780, advertised */
#define NETVSP_CTRL_MAX		1024u	/* largest control reply, bytes */
#define NETVSP_CTRL_QUEUE	64u	/* control replies waiting for a slot */
#define NETVSP_OUTBOX		4u	/* packets waiting for ring space */
#define NETVSP_OUTBOX_MSG	128u	/* bytes per outbox packet */
#define NETVSP_DRAIN_BUDGET	512u	/* packets per wake-up, then yield */
#define NETVSP_MCAST_MAX	32u
#define NETVSP_RSS_TABLE_MAX	NDIS_RSS_INDIRECT_MAX /* 256 entries */
#define NETVSP_RSS_TABLE_ADV	NDIS_RSS_INDIRECT_DEFAULT /* 128 */
#define NETVSP_LINK_BPS		10000000000ull /* 10 Gbit/s */
#define NETVSP_MAX_PKTS_PER_MSG	64u	/* advertised; up to NETVSP_TX_MAX_PKTS taken */
#define NETVSP_ALIGN_SHIFT	RNDIS_ALIGN_DEFAULT /* 8 bytes */

/* ---- receive slots ---------------------------------------------------------- */

struct netvsp_slot {
	uint32_t sl_gen;		/* bumps at every allocation */
	uint16_t sl_queue;		/* channel the packet went out on */
	uint8_t sl_busy;		/* the guest owns it (until completion) */
};

/* A packet that waited for ring space (copied). */
struct netvsp_out {
	uint16_t no_type;		/* VMBUS_PACKET_TYPE_DATA_INBAND / _COMP */
	uint16_t no_flags;
	uint64_t no_tid;
	uint32_t no_len;
	uint8_t no_buf[NETVSP_OUTBOX_MSG];
};

/* A control reply that waited for a receive slot or ring space. */
struct netvsp_ctrl {
	uint32_t nc_len;
	uint8_t nc_buf[NETVSP_CTRL_MAX];
};

/* One channel: the primary (q_index 0) or a vRSS subchannel. */
struct netvsp_queue {
	struct hvs_netvsp *q_nic;
	struct hvs_channel *q_ch;
	uint16_t q_index;
	uint8_t *q_pkt;			/* ring packet copy-in buffer */
	uint32_t q_pktlen;
	uint8_t *q_tx;			/* gathered RNDIS stream, NETVSP_TX_MAX */
	struct netvsp_out q_out[NETVSP_OUTBOX];
	unsigned q_nout;
	bool q_rx_blocked;		/* a receive did not fit the ring */
	uint32_t q_inflight;		/* receive slots the guest holds */
	struct hvs_loop_timer *q_resume; /* drain budget ran out */
};

struct hvs_netvsp {
	char nd_name[HVS_NET_NAME_MAX];	/* "vm1/net0" */
	const char *nd_vm;		/* the server's VM name */
	struct hvs_vmbus *nd_srv;
	struct hvs_loop *nd_loop;
	struct hvs_net_ep *nd_ep;
	int nd_relid;
	void (*nd_on_destroy)(void *arg);
	void *nd_on_destroy_arg;
	uint8_t nd_perm_mac[6];
	uint32_t nd_host_frame_max;	/* spec MTU + 14 */
	uint32_t nd_max_queues;
	char nd_friendly[HVS_NET_NAME_MAX];
	bool nd_link_up;
	bool nd_rx_waiting;		/* the back end waits for room */
	struct netvsp_queue *nd_q[HVS_NET_MAX_QUEUES];
	struct hvs_channel *nd_primary;	/* NULL when closed */

	/* ---- session: from primary open to primary close ---- */
	uint32_t se_nvsp;		/* negotiated, 0 = none */
	uint32_t se_ndis;		/* (major << 16) | minor, 0 = none */
	bool se_ndis_config;
	uint32_t se_frame_max;		/* negotiated frame size */
	uint64_t se_caps;		/* NVSP_NDIS_CONFIG_CAP_* */
	/* receive buffer */
	bool se_rx_ok;
	uint32_t se_rx_gpadl;
	uint16_t se_rx_id;
	uint32_t se_slot_size, se_nslots, se_nfree;
	uint32_t *se_free;		/* stack of free slot indices */
	struct netvsp_slot *se_slots;
	/* send buffer */
	bool se_tx_ok;
	uint32_t se_tx_gpadl;
	uint16_t se_tx_id;
	uint32_t se_sect_size, se_nsect;
	/* RNDIS */
	bool se_rndis_up;
	uint32_t se_filter;
	uint8_t se_mac[6];
	uint32_t se_nmcast;
	uint8_t se_mcast[NETVSP_MCAST_MAX][6];
	struct ndis_offload_params se_ofl;	/* last SET, wire form */
	uint32_t se_nsubch;		/* subchannels granted */
	bool se_rss;
	uint32_t se_rss_types;		/* NDIS_HASH_* */
	uint32_t se_rss_n;		/* table entries */
	uint32_t se_rss_table[NETVSP_RSS_TABLE_MAX];
	uint32_t se_rss_keylen;
	uint8_t se_rss_key[NDIS_RSS_KEY_SIZE];
	/* control replies waiting (FIFO) */
	struct netvsp_ctrl *se_ctrl;	/* NETVSP_CTRL_QUEUE entries */
	unsigned se_ctrl_head, se_ctrl_n;

	uint8_t nd_seg[HVS_NET_MAX_FRAME]; /* LSO segment scratch */
	struct hvs_netvsp_stats nd_st;
	struct hvs_ratelimit nd_rl;
	atomic_uint_fast64_t nd_guest_errors;
};

/* ---- shared between netvsp.c and netvsp_rndis.c -------------------------------- */

/* Log (rate-limited) and count a protocol violation by the guest. */
void netvsp_bad(struct hvs_netvsp *nic, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Queue or send an RNDIS control message (reply or indication) to the
 * guest through a receive slot on the primary channel. */
void netvsp_ctrl_send(struct hvs_netvsp *nic, const void *msg, uint32_t len);

/* A fault hook for this VM fired (params in *fa). */
bool netvsp_fault(struct hvs_netvsp *nic, const char *hook,
		  struct hvs_fault_args *fa);

/* RNDIS control message (not PACKET_MSG) at msg[0..len). Returns the NVSP
 * status for the send completion. */
uint32_t netvsp_rndis_control(struct hvs_netvsp *nic, uint8_t *msg,
			      uint32_t len);

/* The back end waits for room (or for the NIC to open): retry now. */
void netvsp_rx_kick(struct hvs_netvsp *nic);

/* Send the NVSP indirection table (v5+, after subchannels). */
void netvsp_send_indirection(struct hvs_netvsp *nic);

/* The NIC's state for a (re)opened primary: everything reset. */
void netvsp_session_init(struct hvs_netvsp *nic);

#endif /* HVS_VSP_NETVSP_PRIV_H */
