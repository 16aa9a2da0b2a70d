/*
 * host/vsp/netvsp.h - the synthetic network adapter's host half (NetVSP):
 * NVSP 1..6.1 and RNDIS over VMBus (spec/vmbus-devices.md sections 1, 2),
 * connected to a network back end (host/net/net.h).
 *
 * Typical wiring (hvsim, one call per --net option, before the guest runs):
 *
 *	struct hvs_net_spec spec;
 *	char err[256];
 *	if (hvs_net_parse(optarg, &spec, err, sizeof(err)) < 0)
 *		die("--net %s: %s", optarg, err);
 *	int relid = hvs_netvsp_add(srv, loop, &spec, nic_index, NULL,
 *				   err, sizeof(err));
 *	if (relid < 0)
 *		die("%s", err);
 *
 * The NIC lives as long as the VMBus server: it survives guest reboots
 * (same instance GUID, same MAC) and is freed by hvs_vmbus_destroy().
 * Everything runs on the loop thread.
 */
#ifndef HVS_VSP_NETVSP_H
#define HVS_VSP_NETVSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hvs_vmbus;
struct hvs_loop;
struct hvs_net_spec;
struct hvs_net_ep;
struct hvs_netvsp;

/*
 * Add a NetVSC device to server s and open its back end per spec.
 * nic_index (0, 1, ...) names it ("<vm>/net<index>") and, with the VM
 * name, derives its MAC when spec has none. loop is the thread the server
 * runs on. *out (if not NULL) receives the NIC for the calls below.
 * Returns the device's relid (> 0), or a negative errno with a reason in
 * err: the back end's errors (hvs_net_open), -ENOMEM, or the server's
 * (hvs_vmbus_add_device).
 */
int hvs_netvsp_add(struct hvs_vmbus *s, struct hvs_loop *loop,
		   const struct hvs_net_spec *spec, unsigned nic_index,
		   struct hvs_netvsp **out, char *err, size_t errlen);

/*
 * fn(arg) runs once when the server frees the NIC (its primary channel
 * rescinded and released, or the server destroyed): holders of the
 * pointer drop it there. One callback per NIC; NULL fn clears it.
 */
void hvs_netvsp_on_destroy(struct hvs_netvsp *nic, void (*fn)(void *arg),
			   void *arg);

/* Plug or unplug the virtual cable: the guest gets a media connect or
 * disconnect indication (when RNDIS is up), frames stop both ways. */
void hvs_netvsp_set_link(struct hvs_netvsp *nic, bool up);

void hvs_netvsp_get_mac(const struct hvs_netvsp *nic, uint8_t mac[6]);
const char *hvs_netvsp_name(const struct hvs_netvsp *nic);
struct hvs_net_ep *hvs_netvsp_endpoint(struct hvs_netvsp *nic);

struct hvs_netvsp_stats {
	/* state now */
	uint32_t ns_nvsp_version;	/* negotiated NVSP version word, 0 none */
	uint32_t ns_ndis_version;	/* (major << 16) | minor, 0 none */
	uint32_t ns_frame_max;		/* negotiated frame size (MTU + 14) */
	uint32_t ns_queues_open;	/* channels open (primary + subs) */
	uint32_t ns_subchannels;	/* subchannels granted */
	uint32_t ns_rx_slots;		/* receive-buffer slots */
	uint32_t ns_rx_slots_free;
	uint32_t ns_rx_slot_size;	/* bytes */
	uint32_t ns_send_sections;	/* send-buffer sections */
	uint32_t ns_packet_filter;
	bool ns_rndis_up;		/* RNDIS initialized, not halted */
	bool ns_link_up;
	bool ns_rss;			/* receive-side scaling enabled */
	/* counters */
	uint64_t ns_tx_frames;		/* guest -> network, after LSO */
	uint64_t ns_tx_bytes;
	uint64_t ns_tx_dropped;		/* bad frame, offload refused, back end */
	uint64_t ns_tx_csum;		/* frames whose checksums we filled in */
	uint64_t ns_tx_lso;		/* LSO sends segmented */
	uint64_t ns_tx_lso_segments;
	uint64_t ns_tx_completions;	/* RNDIS send completions to the guest */
	uint64_t ns_rx_frames;		/* network -> guest */
	uint64_t ns_rx_bytes;
	uint64_t ns_rx_dropped;		/* link down, too big */
	uint64_t ns_rx_not_ready;	/* refused: NIC not open (no RNDIS,
					   buffer or filter): back end waits */
	uint64_t ns_rx_filtered;	/* packet filter said no */
	uint64_t ns_rx_deferred;	/* no slot or ring space: back end waits */
	uint64_t ns_rx_guest_fail;	/* guest completed a receive with FAIL */
	uint64_t ns_ctrl_msgs;		/* RNDIS control requests handled */
	uint64_t ns_ctrl_dropped;	/* replies that could not be queued */
	uint64_t ns_guest_errors;	/* protocol violations (logged) */
	uint64_t ns_bad_completions;	/* unknown / stale / duplicate */
	uint64_t ns_rsvd_nonzero;	/* reserved fields set (never rejected) */
};

void hvs_netvsp_get_stats(const struct hvs_netvsp *nic,
			  struct hvs_netvsp_stats *st);

/*
 * JSON object for the control socket: {"name":"vm1/net0","mac":...,
 * "backend":"switch","link":true,...,"tx":{...},"rx":{...},
 * "errors":{...},"backend_stats":{...}}. Returns the length written
 * (NUL excluded) or -ENOBUFS (buf then holds "").
 */
int hvs_netvsp_describe_json(const struct hvs_netvsp *nic, char *buf,
			     size_t len);

/*
 * Fault hooks (host/fault.h; VM filter = the server's VM name; every hook
 * takes "value" and most "field"), for guest hostile-host tests
 * (spec/hostile-host.md 11-16):
 *  "netvsp.init_comp"       INIT_COMPLETE: field 0 status (default 2 FAIL),
 *                           1 "accept" any version with status = value.
 *  "netvsp.recv_buf_comp"   SEND_RECV_BUF_COMPLETE field = value: 0 status,
 *                           1 num_sections, 2 offset, 3 sub_alloc_size,
 *                           4 num_sub_allocs, 5 end_offset.
 *  "netvsp.send_buf_comp"   SEND_SEND_BUF_COMPLETE: 0 status,
 *                           1 section_size.
 *  "netvsp.xfer"            next transfer-page packet: 0 pageset id,
 *                           1 range byte_offset, 2 range byte_count,
 *                           3 range_cnt (packet not resized).
 *  "netvsp.rndis_rx"        next RNDIS data message to the guest: 0 msg_len,
 *                           1 data_offset, 2 data_len, 3 ppi_offset,
 *                           4 ppi_len, 5 first PPI's size.
 *  "netvsp.rndis_ctrl"      next RNDIS control reply: 0 request_id,
 *                           1 status, 2 info_buflen, 3 info_buf_offset,
 *                           4 msg_len.
 *  "netvsp.subchannel_comp" SUBCHANNEL completion claims value subchannels
 *                           (only those really granted are offered).
 *  "netvsp.tx_comp"         RNDIS send completion: field 0 withhold it,
 *                           1 send it twice, 2 wrong transaction id
 *                           (+ value).
 */

#endif /* HVS_VSP_NETVSP_H */
