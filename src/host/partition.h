/*
 * host/partition.h - the host emulator's partition: one guest process seen
 * through the partition ABI (DESIGN.md), playing the hypervisor for it.
 *
 * The partition owns guest RAM, the per-vCPU SynIC state (MSRs, SIMP slot
 * delivery with the pending/EOM protocol, SIEF event flags, doorbells), the
 * signal page, and the ABI socket. It knows nothing of VMBus above the TLFS
 * mechanisms: it hands HvPostMessage and HvSignalEvent (and signal-page
 * events) to its client, the VMBus server, through `struct hvs_partition_ops`,
 * and the server delivers messages and events back through the calls below.
 *
 * Threading: a partition is driven by one event loop thread (the host's
 * loop, host/loop.h). The ops callbacks run on that thread. The delivery and
 * GPA functions below are thread-safe: VSP worker threads may call them.
 */
#ifndef HVS_PARTITION_H
#define HVS_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hvs_partition;
struct hvs_loop;

/* Callbacks into the partition's client (the VMBus server). */
struct hvs_partition_ops {
	/*
	 * The guest issued HvPostMessage on vp: connection_id (bits 23:0 of the
	 * input), message_type (1 for VMBus), payload (copied out of the
	 * hypercall input; len <= 240 already checked). Returns the HV_STATUS
	 * for the hypercall's result (HV_STATUS_SUCCESS,
	 * HV_STATUS_INVALID_CONNECTION_ID for an unknown connection,
	 * HV_STATUS_INSUFFICIENT_BUFFERS when the server's queue is full).
	 */
	uint16_t (*post_message)(void *arg, uint32_t vp, uint32_t connection_id,
				 uint32_t message_type, const void *payload,
				 uint32_t len);
	/*
	 * The guest signalled event connection_id, flag 0 (signal page or
	 * HvSignalEvent). Returns the HV_STATUS (HV_STATUS_INVALID_CONNECTION_ID
	 * for an unknown id; for signal-page events the result is ignored).
	 */
	uint16_t (*signal_event)(void *arg, uint32_t connection_id,
				 uint16_t flag);
	/* SynIC state changed on vp (SIMP/SIEFP/SCONTROL/SINT written), e.g.
	 * so the server can retry deliveries. May be NULL. */
	void (*synic_changed)(void *arg, uint32_t vp);
	/*
	 * The partition ends: kind = HVS_END_POWER_OFF, HVS_END_REBOOT,
	 * HVS_END_CRASH, HVS_END_GONE (EOF/timeout/ABI violation). Called once,
	 * before guest RAM is unmapped; the server stops every VSP here and
	 * must not touch guest memory afterwards.
	 */
	void (*ended)(void *arg, int kind);
};

#define HVS_END_POWER_OFF 0
#define HVS_END_REBOOT    1
#define HVS_END_CRASH     2
#define HVS_END_GONE      3

/*
 * Deliver a SynIC message (message_type, payload of len <= 240 bytes) into
 * vp's SIMP slot `sint`, or queue it (bounded) and mark the slot pending if
 * the slot is busy, then ring vp's doorbell unless the SINT is masked or
 * SCONTROL is disabled. Returns 0, -EAGAIN when the bounded queue is full
 * (the caller retries later; counted), -ERANGE bad vp/sint, -ENODEV
 * partition ended.
 */
int hvs_partition_post_message(struct hvs_partition *p, uint32_t vp,
			       uint32_t sint, uint32_t message_type,
			       const void *payload, uint32_t len);

/*
 * Set event flag `flag` of SINT `sint` in vp's SIEF page (atomic OR) and
 * ring the doorbell if the flag went 0->1 (and SINT unmasked, SCONTROL on).
 * A disabled SIEFP drops the event. Returns 0, -ERANGE, -ENODEV.
 */
int hvs_partition_signal_event(struct hvs_partition *p, uint32_t vp,
			       uint32_t sint, uint32_t flag);

/* Guest RAM size in bytes and vCPU count. */
uint64_t hvs_partition_ram_bytes(const struct hvs_partition *p);
uint32_t hvs_partition_vcpu_count(const struct hvs_partition *p);

/*
 * Bounds-checked translation of [gpa, gpa+len) to a host pointer into the
 * shared guest-RAM mapping. NULL if the range is not entirely inside RAM,
 * wraps, or len == 0. The pointer stays valid until the `ended` callback
 * returns. The memory is shared with a possibly hostile guest: callers copy
 * out before validating (one copy-in per boundary).
 */
void *hvs_gpa_map(struct hvs_partition *p, uint64_t gpa, uint64_t len);

/*
 * Map the guest pages pfns[0..n) (4 KiB frame numbers, host byte order)
 * into one contiguous host window of n * 4096 bytes, in that order: byte
 * k of the window is byte k % 4096 of guest page pfns[k / 4096]. This is
 * how a buffer the guest scattered over its RAM (a ring GPADL, a device
 * buffer) becomes one mapping for the ring code. The window shares the
 * pages with the guest, like hvs_gpa_map(), and has an inaccessible guard
 * page on each side.
 *
 * Every PFN is checked first: PFN 0, a page outside guest RAM or a page
 * listed twice refuses the whole window (a guest error: logged,
 * rate-limited, counted in ps_gpa_faults). Runs of consecutive PFNs are
 * mapped with one mmap each.
 *
 * Returns the window, or NULL: a refused PFN, n == 0, n larger than guest
 * RAM, the partition ended, or the host ran out of address space or
 * mappings (logged). The window stays valid until hvs_gpa_unmap_pfns() or
 * until the `ended` callback returns: the partition unmaps every window
 * still mapped then. Thread-safe; may sleep (mmap).
 */
void *hvs_gpa_map_pfns(struct hvs_partition *p, const uint64_t *pfns,
		       uint32_t n);

/*
 * Unmap a window of n pages returned by hvs_gpa_map_pfns(). va NULL is a
 * no-op; a window the partition does not know (already unmapped when the
 * partition ended, or a wrong n) is left alone and logged. Thread-safe.
 */
void hvs_gpa_unmap_pfns(struct hvs_partition *p, void *va, uint32_t n);

/* Copy to / from guest RAM with bounds checks. 0 or -EFAULT. */
int hvs_gpa_read(struct hvs_partition *p, uint64_t gpa, void *buf,
		 size_t len);
int hvs_gpa_write(struct hvs_partition *p, uint64_t gpa, const void *buf,
		  size_t len);

/* The VM's name (for logs and the control socket). */
const char *hvs_partition_name(const struct hvs_partition *p);

#endif /* HVS_PARTITION_H */
