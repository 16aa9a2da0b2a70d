/*
 * host/vsp/storvsp.h - the storage VSP (host half of VSTOR, spec
 * vmbus-devices.md section 3): synthetic SCSI controllers with disks
 * (host/disk/disk.h) behind a SCSI target (host/scsi/scsi_target.h).
 *
 * A VM's disks live in one `struct hvs_storage`: controllers 0..7, each a
 * VMBus device of class SCSI (ba6163d9-...) created on first use, each with
 * LUNs 0..63 on path 0, target 0.
 *
 * Wiring (hvsim), on the loop thread, after hvs_vmbus_create():
 *
 *	struct hvs_storage *st = hvs_storage_create(srv, loop);
 *	for each --scsi argument:   hvs_storage_controller_parse() +
 *	                            hvs_storage_config_controller()
 *	for each --disk argument:   hvs_disk_spec_parse() +
 *	                            hvs_storage_add_disk()
 *	... run ...
 *	hvs_vmbus_destroy(srv);      // frees the controllers (vo_destroy)
 *	hvs_storage_destroy(st);
 *
 * Threading: every function runs on the loop thread. Disk I/O completes on
 * back-end threads and comes back to the loop through an eventfd.
 */
#ifndef HVS_STORVSP_H
#define HVS_STORVSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/disk/disk.h"

struct hvs_vmbus;
struct hvs_loop;
struct hvs_storage;
struct hvs_jw;
struct hvs_json_obj;

/* Per-controller settings. Zero = default. */
struct hvs_storvsp_config {
	uint32_t sc_max_subchannels; /* offered to WIN8+ guests; default 0 =
					 HVS_STORVSP_DEFAULT_SUBCHANNELS;
					 HVS_STORVSP_NO_SUBCHANNELS = none */
	uint16_t sc_max_version;     /* newest VSTOR version accepted (e.g.
					 0x0600); 0 = 0x0602 (WIN10) */
	uint32_t sc_queue_depth;     /* requests per channel; 0 = 256 */
	uint32_t sc_max_transfer;    /* bytes per request, multiple of 4096,
					 64 KiB..8 MiB; 0 = 2 MiB */
	uint64_t sc_max_inflight;    /* bytes of I/O buffers per controller;
					 0 = 64 MiB */
};
#define HVS_STORVSP_DEFAULT_SUBCHANNELS 4u
#define HVS_STORVSP_NO_SUBCHANNELS      0xFFFFFFFFu
#define HVS_STORVSP_MAX_SUBCHANNELS     63u

/* Counters of one controller (all channels). */
struct hvs_storvsp_stats {
	uint64_t ss_requests;     /* VSTOR packets received */
	uint64_t ss_srbs;         /* EXECUTE_SRB received */
	uint64_t ss_completions;  /* completions sent */
	uint64_t ss_bad_packets;  /* malformed/oversized/out-of-state */
	uint64_t ss_bad_srbs;     /* SRBs refused (sizes, lengths, direction) */
	uint64_t ss_gpa_faults;   /* guest buffers that were not guest RAM */
	uint64_t ss_rsvd_nonzero; /* reserved fields set (logged, accepted) */
	uint64_t ss_check_conditions;
	uint64_t ss_io_errors;    /* back-end errors mapped to sense */
	uint64_t ss_send_waits;   /* completions that waited for ring space */
	uint64_t ss_notifications;/* ENUMERATE_BUS / REMOVE_DEVICE sent */
	uint64_t ss_bytes_read;
	uint64_t ss_bytes_written;
	uint64_t ss_direct_ios;   /* reads/writes done in guest RAM, no copy */
	uint16_t ss_version;      /* negotiated VSTOR version, 0 = none */
	uint32_t ss_channels;     /* open channels */
	uint32_t ss_inflight;     /* requests waiting for the back end */
};

/* Create an empty storage set for the VM served by srv. NULL on ENOMEM. */
struct hvs_storage *hvs_storage_create(struct hvs_vmbus *srv,
				       struct hvs_loop *loop);

/*
 * Parse a --scsi argument: N[,subchannels=K][,version=M.m][,queue_depth=Q]
 * [,max_transfer=S[K|M]]. version is one of 2.0 4.2 5.1 6.0 6.2;
 * subchannels 0..63. Returns 0 with *index and *cfg, or -EINVAL with err.
 */
int hvs_storage_controller_parse(const char *arg, unsigned *index,
				 struct hvs_storvsp_config *cfg, char *err,
				 size_t errlen);

/*
 * Settings for controller idx, before it exists (it is created by the
 * first disk added to it, or now if create is true: a controller with no
 * disk). Returns 0, -EEXIST (already created), -EINVAL.
 */
int hvs_storage_config_controller(struct hvs_storage *st, unsigned idx,
				  const struct hvs_storvsp_config *cfg,
				  bool create);

/*
 * Open the disk of spec and attach it: controller ds_controller (AUTO =
 * 0), LUN ds_lun (AUTO = lowest free). Creates and offers the controller
 * if needed (hot add when the guest runs). If the guest has initialised
 * the controller, it gets an ENUMERATE_BUS to rescan. Returns 0 with the
 * location in *ctrl / *lun (either may be NULL), or a negative errno with
 * a reason in err: -EEXIST (LUN taken), -ENOSPC (no free LUN), errors of
 * hvs_disk_open() and hvs_vmbus_add_device().
 */
int hvs_storage_add_disk(struct hvs_storage *st, const struct hvs_disk_spec *spec,
			 unsigned *ctrl, unsigned *lun, char *err, size_t errlen);

/*
 * Hot remove: detach LUN lun of controller ctrl. New requests to it fail
 * with INVALID_LUN at once; the guest gets REMOVE_DEVICE and ENUMERATE_BUS;
 * the disk is closed when its last request completes. 0 or -ENOENT.
 */
int hvs_storage_remove_disk(struct hvs_storage *st, unsigned ctrl,
			    unsigned lun);

/* The disk at (ctrl, lun) or NULL (e.g. for hvs_disk_crash in tests). */
struct hvs_disk *hvs_storage_disk(struct hvs_storage *st, unsigned ctrl,
				  unsigned lun);

/* Controller statistics: 0 or -ENOENT. */
int hvs_storage_get_stats(struct hvs_storage *st, unsigned ctrl,
			  struct hvs_storvsp_stats *out);

/* Write a "storage" member (controllers, disks, counters) into the open
 * object of w. */
void hvs_storage_describe(struct hvs_storage *st, struct hvs_jw *w);

/*
 * Control-socket commands (for hvs_control_ops.command, after the caller
 * found the VM):
 *   {"cmd":"disk_add","vm":V,"spec":"FILE,opts"} -> {"controller":C,"lun":L}
 *   {"cmd":"disk_remove","vm":V,"controller":C,"lun":L}
 *   {"cmd":"disks","vm":V}                        -> {"storage":{...}}
 * Returns 0 (members written to w), -ENOSYS (not a storage command), or a
 * negative errno with *errmsg set (static text).
 */
int hvs_storage_control(struct hvs_storage *st, const char *cmd,
			const struct hvs_json_obj *req, struct hvs_jw *w,
			const char **errmsg);

/* Free the set. Call after hvs_vmbus_destroy() (which frees the
 * controllers and closes their disks). NULL is a no-op. */
void hvs_storage_destroy(struct hvs_storage *st);

#endif /* HVS_STORVSP_H */
