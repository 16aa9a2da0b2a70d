/*
 * host/vmbus_server.h - the host emulator's VMBus server: the host half of
 * the VMBus control protocol (spec/vmbus-core.md sections 2, 5, 6) for one
 * partition, and the registry of the devices (VSPs) it offers.
 *
 * The server sits on a partition (host/partition.h): the partition hands it
 * the guest's HvPostMessage / HvSignalEvent through `struct hvs_partition_ops`
 * (get them with hvs_vmbus_partition_ops(), arg = the server), and the
 * server answers with hvs_partition_post_message / hvs_partition_signal_event
 * and reads guest memory through the bounds-checked GPA calls.
 *
 * The server is a peer of the guest core, not a mirror (STYLE 12): it writes
 * its own parsers and validators; every guest message is copied once,
 * checked, then used; a bad message is logged (rate-limited, VM-prefixed)
 * and counted, never a crash.
 *
 * Threading: every function here runs on the partition's loop thread (the
 * thread that calls the ops), except where noted.
 *
 * Typical wiring (hvsim):
 *
 *	struct hvs_vmbus_config cfg = { .vm_name = name,
 *					.max_version = HVS_VMBUS_VERSION_WIN10_V5_3 };
 *	struct hvs_vmbus *s = hvs_vmbus_create(&cfg);
 *	for (i = 0; i < n_echo; i++)
 *		hvs_echo_add(s, NULL);               // host/vsp/echo.h
 *	struct hvs_partition *p = hvs_partition_create(..., hvs_vmbus_partition_ops(), s);
 *	hvs_vmbus_attach(s, p);
 *	... run the loop ...
 *	hvs_vmbus_destroy(s);                       // after the partition ended
 */
#ifndef HVS_VMBUS_SERVER_H
#define HVS_VMBUS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/wire.h"

struct hvs_partition;
struct hvs_partition_ops;
struct hvs_vmbus;
struct hvs_channel;   /* host-side channel, host/vsp/vsp.h */
struct hvs_vsp_ops;   /* per-device callbacks, host/vsp/vsp.h */

/* VMBus version words, (major << 16) | minor (spec 2.3). A host generation
 * accepts every version up to and including its own. */
#define HVS_VMBUS_VERSION_WS2008       0x0000000Du /* 0.13 */
#define HVS_VMBUS_VERSION_WIN7         0x00010001u /* 1.1, WS2008 R2 */
#define HVS_VMBUS_VERSION_WIN8         0x00020004u /* 2.4, WS2012 */
#define HVS_VMBUS_VERSION_WIN8_1       0x00030000u /* 3.0, WS2012 R2 */
#define HVS_VMBUS_VERSION_WIN10        0x00040000u /* 4.0, WS2016 */
#define HVS_VMBUS_VERSION_WIN10_RS3_0  0x00040001u /* 4.1 */
#define HVS_VMBUS_VERSION_WIN10_RS3_1  0x00050000u /* 5.0 */
#define HVS_VMBUS_VERSION_WIN10_RS4    0x00050001u /* 5.1 */
#define HVS_VMBUS_VERSION_WIN10_RS5    0x00050002u /* 5.2, WS2019 */
#define HVS_VMBUS_VERSION_IRON         0x00050003u /* 5.3, WS2022 */
#define HVS_VMBUS_VERSION_COPPER       0x00060000u /* 6.0 (optional) */

/* Per-VM server configuration. Copied by hvs_vmbus_create(). */
struct hvs_vmbus_config {
	const char *vm_name;      /* for logs and instance GUID derivation;
				     copied; NULL = "vm" */
	uint32_t max_version;     /* host generation, VMBus version word;
				     0 = HVS_VMBUS_VERSION_IRON */
	bool monitored;           /* allocate monitor ids in offers (MNF);
				     default false: guests use HvSignalEvent */
	uint32_t outbox_depth;    /* messages kept when the partition's queue
				     is full; 0 = 256 */
	uint32_t max_gpadls;      /* per connection; 0 = 1024 */
	uint32_t max_gpadl_pages; /* per GPADL; 0 = 262144 (1 GiB) */
	/* Optional salt for instance GUID derivation: instance GUIDs are a
	 * hash of (instance_salt or vm_name, class GUID, device index), stable
	 * across reboots of the same VM. NULL = use vm_name. */
	const char *instance_salt;
};

/*
 * Create a server for one VM. Offers nothing until devices are added.
 * Returns NULL on allocation failure or an unsupported max_version (not
 * one of the versions above).
 */
struct hvs_vmbus *hvs_vmbus_create(const struct hvs_vmbus_config *cfg);

/* The partition ops implemented by the server; pass the server as arg. */
const struct hvs_partition_ops *hvs_vmbus_partition_ops(void);

/*
 * Bind the server to its partition (before the guest runs). May be called
 * again after a reboot with the new partition: all connection state is
 * reset, device list and instance GUIDs are kept.
 */
void hvs_vmbus_attach(struct hvs_vmbus *s, struct hvs_partition *p);

/*
 * Free the server and all devices (calls each VSP's destroy). The
 * partition must have ended (or never been attached).
 */
void hvs_vmbus_destroy(struct hvs_vmbus *s);

/* Extra options for hvs_vmbus_add_device(). Zeroed = defaults. */
struct hvs_device_opts {
	uint16_t do_flags;              /* offer chn_flags (spec 2.5) */
	uint16_t do_mmio_megabytes;
	uint8_t do_user_defined[120];   /* offer user_defined area */
	uint32_t do_max_subchannels;    /* 0 = none allowed */
	const char *do_name;            /* for logs; NULL = "dev<index>" */
};

/*
 * Register a device: the server offers it (primary channel, sub index 0)
 * when the guest asks for offers, or at once (hot add) if the guest is
 * already connected and has requested offers. ops/arg are the VSP's
 * callbacks (host/vsp/vsp.h). instance NULL = derived from the VM name,
 * class and per-class device index (stable per VM).
 * Returns the device's relid (> 0), or -ENOMEM, -ENOSPC (relids used up),
 * -EEXIST (same class + instance already registered), -EINVAL.
 */
int hvs_vmbus_add_device(struct hvs_vmbus *s, const struct hvs_vsp_ops *ops,
			 void *arg, const struct hv_guid *class_guid,
			 const struct hv_guid *instance,
			 const struct hvs_device_opts *opts);

/*
 * Offer a subchannel of the open primary channel `primary_relid` (a VSP
 * calls this when its device protocol asks for subchannels). The offer has
 * the primary's class and instance and sub_channel_index = sub_index
 * (1..do_max_subchannels). The subchannel uses the same VSP ops. Returns the
 * new relid (> 0), -ENOENT, -EINVAL, -ENOSPC, -EEXIST.
 */
int hvs_vmbus_offer_subchannel(struct hvs_vmbus *s, uint32_t primary_relid,
			       uint16_t sub_index);

/*
 * Rescind channel relid (and, for a primary, all its subchannels): closes
 * it host-side (VSP rescind callback), sends RESCIND_CHANNELOFFER; the relid
 * is freed when the guest answers RELID_RELEASED. Returns 0, -ENOENT, or
 * -EBUSY if already rescinded.
 */
int hvs_vmbus_rescind(struct hvs_vmbus *s, uint32_t relid);

/* Channel state as seen by the host (for listings). */
enum hvs_chan_state {
	HVS_CHAN_UNOFFERED = 0, /* registered, not offered yet */
	HVS_CHAN_OFFERED,
	HVS_CHAN_OPEN,
	HVS_CHAN_BROKEN,        /* guest broke the ring protocol */
	HVS_CHAN_RESCINDED,     /* waiting for RELID_RELEASED */
};

/* One channel's public view (snapshot). */
struct hvs_chan_info {
	uint32_t ci_relid;
	uint32_t ci_connection_id;
	struct hv_guid ci_class;
	struct hv_guid ci_instance;
	uint16_t ci_sub_index;
	enum hvs_chan_state ci_state;
	uint32_t ci_target_vp;
	uint32_t ci_in_ring_bytes;   /* guest->host ring data size, 0 if closed */
	uint32_t ci_out_ring_bytes;  /* host->guest ring data size */
	uint64_t ci_pkts_in;
	uint64_t ci_pkts_out;
	uint64_t ci_bytes_in;
	uint64_t ci_bytes_out;
	uint64_t ci_signals_in;      /* guest->host signals */
	uint64_t ci_signals_out;     /* host->guest signals */
	uint64_t ci_proto_errors;    /* ring/packet violations */
	const char *ci_name;         /* device name, valid while the server lives */
};

/* Server-wide statistics. */
struct hvs_vmbus_stats {
	uint32_t vs_version;         /* negotiated version word, 0 = none */
	bool vs_connected;
	uint64_t vs_msgs_in;
	uint64_t vs_msgs_out;
	uint64_t vs_msgs_bad;        /* short/unknown/invalid/out-of-version */
	uint64_t vs_outbox_queued;   /* messages waiting in the outbox now */
	uint64_t vs_outbox_retries;
	uint32_t vs_gpadls;          /* established GPADLs */
	uint32_t vs_windows;         /* GPADLs mapped now (open rings and
					hvs_chan_map_gpadl buffers) */
	uint64_t vs_rsvd_nonzero;    /* messages with reserved/pad bytes set
					(logged, counted, never rejected) */
};

void hvs_vmbus_get_stats(const struct hvs_vmbus *s, struct hvs_vmbus_stats *st);

/*
 * Iterate channels: call fn for each registered channel in relid order
 * (unoffered ones too). Stops early when fn returns non-zero and returns
 * that value; else 0.
 */
int hvs_vmbus_foreach_channel(const struct hvs_vmbus *s,
			      int (*fn)(void *ctx, const struct hvs_chan_info *ci),
			      void *ctx);

/*
 * JSON description for the control socket: {"version":"5.3","connected":
 * true, ..., "channels":[{"relid":1,"class":"...",...}]}. Returns the
 * length written (excluding NUL), or -ENOBUFS if len is too small (the
 * output is then truncated but NUL-terminated).
 */
int hvs_vmbus_describe_json(const struct hvs_vmbus *s, char *buf, size_t len);

/*
 * Retry queued host->guest messages and scan monitor pages (monitored
 * configuration). The server also retries on every guest message, signal
 * and synic_changed callback; hvsim should call this from a periodic timer
 * (e.g. every 10 ms) as a backstop so nothing waits for the next guest
 * action.
 */
void hvs_vmbus_poll(struct hvs_vmbus *s);

/*
 * Fault hooks (host/fault.h registry, switched with hvs_fault_set(), VM
 * filter = the server's vm_name; "times"/"after" count matching events):
 *  "malformed_offer"  params field (0 = payload size, 1 = child_relid),
 *                     value (size 8..240, default 100 / relid, default 0),
 *                     relid (only this channel's offer; 0/absent = any).
 *  "bad_ring_index"   after the host writes a packet to channel `relid`
 *                     (0/absent = any), its outgoing write_index becomes
 *                     `value`: -1 data size (default), -2 data size + 8,
 *                     -3 unaligned (current + 4), else the literal value.
 *  "withhold_reply"   host message of type `type` (e.g. 6 =
 *                     OPENCHANNEL_RESULT; 0/absent = any) is not sent.
 */

/* Format a GUID in text form ("xxxxxxxx-xxxx-...", 37 bytes with NUL). */
void hvs_guid_format(const struct hv_guid *g, char out[37]);

/* The VM name given in the config. */
const char *hvs_vmbus_name(const struct hvs_vmbus *s);

#endif /* HVS_VMBUS_SERVER_H */
