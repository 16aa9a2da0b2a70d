/*
 * host/partition_host.h - creating, observing and ending partitions: the
 * side of host/partition.h that the host program (hvsim), the control
 * socket and the tests use. The VMBus server only needs partition.h.
 *
 * All functions here run on the partition's loop thread, except
 * hvs_abi_parse_hello() (any thread).
 */
#ifndef HVS_PARTITION_HOST_H
#define HVS_PARTITION_HOST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "partition.h"

struct hvs_loop;

struct hvs_partition_config {
	const char *name;       /* VM name, 1..64 bytes, copied */
	uint32_t vcpus;         /* 1..HVSIM_ABI_MAX_VCPUS */
	uint64_t ram_bytes;     /* non-zero multiple of 2 MiB */
	const struct hvs_partition_ops *ops; /* the client (VMBus server) */
	void *ops_arg;
	/*
	 * Connected AF_UNIX SOCK_SEQPACKET socket to the guest. On success the
	 * partition owns it (closes it when it ends); on failure the caller
	 * still does.
	 */
	int sock_fd;
	/*
	 * Optional: the guest's first datagram, already received by the host
	 * (HVSIM_SOCKET mode: the host reads HELLO to learn the VM name, see
	 * hvs_abi_parse_hello). Processed as if just received. Copied.
	 */
	const void *first_dgram;
	size_t first_len;
	/*
	 * Called on the loop thread after the partition ended (after
	 * ops->ended, guest RAM unmapped, socket closed). It must not destroy
	 * the partition synchronously: defer with hvs_loop_call(). May be NULL.
	 */
	void (*host_ended)(void *host_arg, struct hvs_partition *p, int kind);
	void *host_arg;
	/* End the partition (HVS_END_GONE) if no HELLO arrives in time.
	 * 0 = no limit. */
	uint64_t hello_timeout_ns;
	/* Bound on host->guest SynIC messages queued in the partition (all
	 * vCPUs and SINTs together). 0 = HVS_PARTITION_MSGQ_DEFAULT. When
	 * hvs_partition_post_message() answered -EAGAIN, the server's
	 * synic_changed callback runs once the guest has made room (EOM). */
	uint32_t msgq_limit;
};

#define HVS_PARTITION_MSGQ_DEFAULT 256u
/*
 * HvPostMessage from the guest is answered HV_STATUS_INSUFFICIENT_BUFFERS
 * while the host->guest queue holds more than limit - this many messages,
 * so the server always has room for its replies.
 */
#define HVS_PARTITION_MSGQ_RESERVE 16u

/*
 * Create a partition: guest RAM and signal-page memfds (sealed), the
 * signal eventfd and one doorbell eventfd per vCPU, and start serving the
 * socket on loop. Returns 0 and *out, or -EINVAL (bad config), -ENOMEM,
 * or another negative errno from the system calls.
 */
int hvs_partition_create(struct hvs_loop *loop,
			 const struct hvs_partition_config *cfg,
			 struct hvs_partition **out);

/*
 * End the partition now with `kind` (HVS_END_*): calls ops->ended (once),
 * unmaps RAM, closes the socket, then host_ended. No-op if already ended.
 * Must not be called from inside the partition's own ops callbacks.
 */
void hvs_partition_stop(struct hvs_partition *p, int kind);

/* Stop (HVS_END_GONE) if still running, then free. NULL is a no-op. */
void hvs_partition_destroy(struct hvs_partition *p);

enum hvs_partition_state {
	HVS_PART_WAIT_HELLO = 0,
	HVS_PART_RUNNING,
	HVS_PART_ENDED,
};

/* Counters and state; every field a snapshot. */
struct hvs_partition_stats {
	enum hvs_partition_state ps_state;
	int ps_end_kind;            /* HVS_END_*, valid when ENDED */
	uint32_t ps_vcpus;
	uint64_t ps_ram_bytes;
	uint32_t ps_msgq_len;       /* host->guest messages queued now */
	uint32_t ps_msgq_max;       /* high-water mark */
	uint64_t ps_requests;       /* ABI request datagrams handled */
	uint64_t ps_malformed;      /* malformed datagrams (-71 or disconnect) */
	uint64_t ps_bad_vp;         /* -34 answers */
	uint64_t ps_bad_msr;        /* -22 answers */
	uint64_t ps_hc_errors;      /* hypercalls failed for bad input/state */
	uint64_t ps_posts;          /* HvPostMessage handed to the server */
	uint64_t ps_post_busy;      /* answered HV_STATUS_INSUFFICIENT_BUFFERS */
	uint64_t ps_signals;        /* events from the signal page + SignalEvent */
	uint64_t ps_msgs_delivered; /* messages written into SIMP slots */
	uint64_t ps_msgq_full;      /* -EAGAIN answered to the server */
	uint64_t ps_events;         /* event flags set */
	uint64_t ps_events_dropped; /* event flags for a disabled SIEFP */
	uint64_t ps_doorbells;      /* doorbell writes */
	uint64_t ps_gpa_faults;     /* hvs_gpa_* calls refused */
	uint32_t ps_windows;        /* hvs_gpa_map_pfns windows mapped now */
	uint64_t ps_window_pages;   /* pages in those windows */
	uint64_t ps_windows_total;  /* windows mapped since start */
	uint64_t ps_crash[5];       /* crash P0-P4, when end_kind == CRASH */
};

void hvs_partition_get_stats(struct hvs_partition *p,
			     struct hvs_partition_stats *st);

/*
 * The partition's reference counter now: the value the guest reads from
 * the TIME_REF_COUNT MSR (100-ns units since WELCOME; reset by a reboot,
 * which makes a new partition). 0 before WELCOME or for NULL. Time sync
 * 4.0 sends it beside the host's clock (hvs_ic_config.ic_ref_time).
 */
uint64_t hvs_partition_ref_time(const struct hvs_partition *p);
/*
 * The same, shaped as hvs_ic_config.ic_ref_time: partp points at the
 * host's own `struct hvs_partition *` for the VM, read at every call, so
 * the counter follows the VM across reboots (each a new partition):
 *	c.ic_ref_time = hvs_partition_ref_time_at; c.ic_clock_arg = &vm->part;
 */
uint64_t hvs_partition_ref_time_at(void *partp);

const char *hvs_partition_state_name(enum hvs_partition_state s);
const char *hvs_partition_end_name(int kind);

/*
 * Minimal check of a HELLO datagram (for routing HVSIM_SOCKET guests to a
 * VM): 0 and the NUL-terminated name (possibly empty) in name_out, or
 * -EPROTO (not a well-formed HELLO), -EOPNOTSUPP (abi_version != 1).
 * The partition checks the datagram again in full.
 */
int hvs_abi_parse_hello(const void *buf, size_t len, char name_out[65]);

#endif /* HVS_PARTITION_HOST_H */
