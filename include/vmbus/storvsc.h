/*
 * vmbus/storvsc.h - the guest StorVSC driver (synthetic SCSI controller and
 * IDE accelerator, VSTOR over VMBus; shared/spec/vmbus-devices.md section 3)
 * and the disk API on top of it.
 *
 * One `struct storvsc` serves every StorVSC controller on one bus: it
 * registers two VMBus drivers (HV_GUID_STORVSC and HV_GUID_IDE), and for
 * each controller it attaches to it negotiates VSTOR (6.2 down to 2.0),
 * opens one queue per channel (primary plus subchannels when the host
 * offers multi-channel), and discovers the logical units behind it
 * (REPORT LUNS, INQUIRY with VPD pages, READ CAPACITY). Each logical unit
 * is a `struct storvsc_disk`.
 *
 * I/O is asynchronous: the caller owns a `struct storvsc_io`, fills the
 * request fields, submits it, and gets exactly one completion callback.
 * Requests larger than the host's transfer limit are split; requests beyond
 * the queue depth wait inside the driver. Synchronous wrappers exist for
 * every operation.
 *
 * Buffers: the driver describes the caller's memory to the host directly
 * (GPA-direct, via the port's virt_to_gpa) when the port can describe it,
 * and copies through a per-queue bounce pool otherwise. Memory from the
 * port's page_alloc (storvsc_buf_alloc) is always described directly.
 *
 * Contexts (as in vmbus/vmbus.h): "thread" may sleep; "any" never sleeps
 * and may run in a channel callback. Completion callbacks run in channel
 * callback context (the port's interrupt context or vmbus_poll), or in the
 * thread that called storvsc_tick / a synchronous wrapper / a detach.
 *
 * Errors are negative VMBUS_E* codes (vmbus/errno.h). I/O errors keep the
 * SCSI result in storvsc_io.io_status so the caller can look deeper:
 *   -VMBUS_EIO        device error (medium error, hardware error, an
 *                     unexpected status; see io_status);
 *   -VMBUS_ERANGE     LBA out of range (ILLEGAL REQUEST, ASC 0x21);
 *   -VMBUS_EPERM      write protected (DATA PROTECT, ASC 0x27/00);
 *   -VMBUS_ENOSPC     no space (DATA PROTECT, space allocation failed);
 *   -VMBUS_EOPNOTSUPP command not supported (invalid opcode, or the disk
 *                     does not support the operation, e.g. UNMAP);
 *   -VMBUS_EBUSY      device busy or not ready (retries exhausted);
 *   -VMBUS_ECANCELED  aborted or flushed by the host (bus reset);
 *   -VMBUS_ENODEV     the LUN or controller is gone;
 *   -VMBUS_ETIMEDOUT  no completion in time;
 *   -VMBUS_EPROTO     the host broke the protocol on this queue (the
 *                     queue is now broken; logged and counted);
 *   -VMBUS_EINVAL     a caller bug (bad request fields).
 *
 * Freestanding: only compiler headers, hv/ and vmbus/ headers.
 */
#ifndef VMBUS_STORVSC_H
#define VMBUS_STORVSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/wire.h"
#include "vmbus/errno.h"
#include "vmbus/vmbus.h"

struct storvsc;
struct storvsc_disk;
struct storvsc_io;

/* ---- configuration and life cycle --------------------------------------- */

/* Disk events (storvsc_config.sc_disk_event). */
#define STORVSC_DISK_ADDED	1	/* discovered (attach or rescan) */
#define STORVSC_DISK_REMOVED	2	/* gone: I/O now fails -ENODEV */
#define STORVSC_DISK_CHANGED	3	/* capacity or properties changed */

typedef void storvsc_disk_event_fn(void *arg, struct storvsc_disk *disk,
    int event);

struct storvsc_config {
	/*
	 * VSTOR versions to try, newest first through every version of spec
	 * 3.1 inside [sc_min_version, sc_max_version] (version words,
	 * (major << 8) | minor). 0 = 6.2 and 2.0.
	 */
	uint16_t sc_max_version;
	uint16_t sc_min_version;
	/* Ring size, each direction, incl. the 4 KiB control page; a
	 * multiple of 4096. 0 = 128 KiB (spec 3.9, L). */
	uint32_t sc_ring_bytes;
	/*
	 * Queues (channels) per controller, primary included. 0 = one per
	 * vCPU; 1 = multi-channel off. The host's max_channel_cnt and
	 * STORVSC_MAX_QUEUES bound it too.
	 */
	uint32_t sc_max_queues;
	/* Requests in flight per queue; 0 = 256 (STORVSC_MAX_QUEUE_DEPTH). */
	uint32_t sc_queue_depth;
	/* Bounce pool per queue, in 4 KiB pages; 0 = 64. At least 32. */
	uint32_t sc_bounce_pages;
	/* Bound of each initialisation step; 0 = 5 s (spec 3.5, L). */
	uint64_t sc_init_timeout_ns;
	/* Default per-request timeout; 0 = 60 s. */
	uint64_t sc_io_timeout_ns;
	/* SCSI controllers: buses and targets scanned (LUNs come from
	 * REPORT LUNS). 0 = 1 bus, 2 targets (STORVSC_MAX_TARGETS). */
	uint8_t  sc_scan_paths;
	uint8_t  sc_scan_targets;
	/* Disk add / remove / change notifications; may be NULL. Called in
	 * thread context with no driver lock held; the disk pointer is valid
	 * during the call (take a reference with storvsc_disk_get to keep
	 * it). */
	storvsc_disk_event_fn *sc_disk_event;
	void *sc_event_arg;
};

#define STORVSC_MAX_QUEUES		64u	/* per controller */
#define STORVSC_MAX_QUEUE_DEPTH		256u	/* per queue */

/*
 * storvsc_create - create the driver for bus vb and register it for
 * HV_GUID_STORVSC and HV_GUID_IDE. Call before vmbus_connect to attach the
 * boot-time controllers during vmbus_connect (attach negotiates and scans,
 * so disks exist when vmbus_connect returns); if called later it attaches
 * to the controllers already offered before it returns.
 *   cfg: NULL for defaults; copied.
 * Context: thread. Returns 0 and *out, or -VMBUS_EINVAL (bad cfg, or a
 * port without zalloc/free/now_ns/page_alloc/page_free/virt_to_gpa),
 * -VMBUS_ENOMEM, -VMBUS_ENOSPC / -VMBUS_EEXIST (vmbus_driver_register of
 * the SCSI driver; nothing is registered then). If only the IDE driver
 * cannot be registered the result is 0 (logged; SCSI controllers only).
 */
int storvsc_create(struct vmbus *vb, const struct storvsc_config *cfg,
    struct storvsc **out);

/*
 * storvsc_destroy - free the driver. Only after vmbus_unload or
 * vmbus_destroy detached every controller (the core keeps pointers to the
 * driver until then) and every disk reference was put. Context: thread.
 * Returns 0, or -VMBUS_EBUSY (a controller is still attached or a disk
 * reference is held; nothing was freed). NULL: 0.
 */
int storvsc_destroy(struct storvsc *sv);

/*
 * storvsc_tick - housekeeping for ports without timers or deferred work:
 * expires timed-out requests (they complete with -VMBUS_ETIMEDOUT), retries
 * sends that found the ring full, runs rescans the host asked for
 * (ENUMERATE_BUS / REMOVE_DEVICE) when the port has no defer(), and drops
 * queues whose channel was rescinded. Call it every few hundred ms (polled
 * ports: together with vmbus_poll). Context: thread. Never fails.
 */
void storvsc_tick(struct storvsc *sv);

/*
 * storvsc_rescan - rescan every controller now (REPORT LUNS, INQUIRY,
 * capacity), adding new disks and removing vanished ones (events as
 * above). Context: thread. Returns 0, or the first error of a controller
 * scan (the others are still scanned).
 */
int storvsc_rescan(struct storvsc *sv);

/* ---- controllers ---------------------------------------------------------- */

struct storvsc_ctrl_info {
	struct hv_guid ci_instance;	/* VMBus instance GUID */
	bool     ci_ide;		/* IDE accelerator (one disk) */
	uint8_t  ci_port;		/* SRB port_number we use */
	uint16_t ci_version;		/* negotiated VSTOR version word */
	uint32_t ci_packet_size;	/* 64 (WIN8+) or 48 */
	uint32_t ci_sense_size;		/* 20 (WIN8+) or 18 */
	uint32_t ci_max_transfer;	/* bytes per SRB we use (clamped) */
	uint32_t ci_host_max_transfer;	/* what the host reported */
	uint16_t ci_host_max_subchannels; /* what the host reported */
	bool     ci_multichannel;	/* host offered multi-channel */
	uint32_t ci_queues;		/* open queues (channels) */
	uint32_t ci_queue_depth;	/* slots per queue */
	uint32_t ci_disks;		/* disks present */
	bool     ci_attached;
};

/*
 * storvsc_ctrl_info - snapshot of the idx-th controller (attach order,
 * detached ones skipped). Context: any. Returns 0, -VMBUS_ENOENT (no such
 * index), -VMBUS_EINVAL.
 */
int storvsc_ctrl_info(struct storvsc *sv, uint32_t idx,
    struct storvsc_ctrl_info *out);

/* ---- disks ------------------------------------------------------------------ */

#define STORVSC_VENDOR_LEN	8
#define STORVSC_PRODUCT_LEN	16
#define STORVSC_REVISION_LEN	4
#define STORVSC_SERIAL_MAX	64
#define STORVSC_DEVID_MAX	64

struct storvsc_disk_info {
	/* address */
	struct hv_guid di_instance;	/* controller instance GUID */
	bool     di_ide;
	uint8_t  di_port;
	uint8_t  di_path;		/* bus */
	uint8_t  di_target;
	uint8_t  di_lun;
	bool     di_present;		/* false once removed */
	/* standard INQUIRY */
	uint8_t  di_peripheral_type;	/* SCSI_PERIPHERAL_* */
	uint8_t  di_scsi_version;	/* SCSI_VERSION_* as reported */
	bool     di_removable;
	char     di_vendor[STORVSC_VENDOR_LEN + 1];	/* trimmed, NUL-ended */
	char     di_product[STORVSC_PRODUCT_LEN + 1];
	char     di_revision[STORVSC_REVISION_LEN + 1];
	/* VPD */
	uint8_t  di_vpd_pages[16];	/* page 0x00 list (first 16) */
	uint8_t  di_vpd_count;
	char     di_serial[STORVSC_SERIAL_MAX + 1];	/* 0x80, printable */
	uint8_t  di_devid[STORVSC_DEVID_MAX];	/* 0x83: best LU designator */
	uint8_t  di_devid_len;
	uint8_t  di_devid_type;		/* designator type (3 = NAA, ...) */
	uint32_t di_vpd_max_transfer_blocks;	/* 0xB0; 0 = none */
	uint32_t di_vpd_opt_transfer_blocks;
	uint32_t di_max_unmap_blocks;	/* 0xB0 (or default); per descriptor */
	uint32_t di_max_unmap_descriptors;
	uint32_t di_unmap_granularity;
	uint16_t di_rotation_rate;	/* 0xB1; 1 = non-rotating */
	bool     di_lbpu;		/* 0xB2: UNMAP supported */
	bool     di_lbpws;		/* 0xB2: WRITE SAME(16) unmap */
	/* capacity */
	uint64_t di_blocks;		/* logical blocks; 0 = unknown */
	uint32_t di_block_size;		/* bytes; 0 = unknown */
	uint32_t di_physical_block_size;
	bool     di_thin;		/* READ CAPACITY(16) LBPME */
	bool     di_capacity16;		/* READ CAPACITY(16) worked */
	bool     di_write_protected;	/* MODE SENSE WP bit */
	bool     di_discard;		/* storvsc_discard will be sent */
	/* controller */
	uint16_t di_vstor_version;
	uint32_t di_max_transfer;	/* bytes per SRB for this disk */
	uint32_t di_queues;
	uint32_t di_queue_depth;
};

/*
 * storvsc_disk_count - number of present disks. Context: any.
 * storvsc_disk_get - a reference to the idx-th present disk (controller
 * attach order, then path, target, LUN), or NULL. Context: any.
 * storvsc_disk_put - drop a reference; the disk (and its controller, once
 * detached) is freed with the last one. Context: thread. NULL is a no-op.
 */
uint32_t storvsc_disk_count(struct storvsc *sv);
struct storvsc_disk *storvsc_disk_get(struct storvsc *sv, uint32_t idx);
void storvsc_disk_hold(struct storvsc_disk *d);	/* another reference; any */
void storvsc_disk_put(struct storvsc_disk *d);

/* Snapshot of a disk's properties. Context: any. 0 or -VMBUS_EINVAL. */
int storvsc_disk_info(const struct storvsc_disk *d,
    struct storvsc_disk_info *out);

/*
 * storvsc_disk_vpd - read VPD page `page` (INQUIRY EVPD) into buf[0..*len);
 * *len in: buffer size (<= 4096), out: bytes the page holds (header
 * included, clamped to the buffer). Context: thread. Returns 0 or an I/O
 * error as above (-VMBUS_EOPNOTSUPP when the device rejects the page).
 */
int storvsc_disk_vpd(struct storvsc_disk *d, uint8_t page, void *buf,
    uint32_t *len);

/*
 * storvsc_disk_refresh - re-read capacity and write protection (READ
 * CAPACITY 16/10, MODE SENSE); emits STORVSC_DISK_CHANGED when they
 * changed. Context: thread. Returns 0 or an I/O error.
 */
int storvsc_disk_refresh(struct storvsc_disk *d);

/* ---- I/O ---------------------------------------------------------------------- */

/* storvsc_io.io_op */
#define STORVSC_OP_READ		1	/* io_lba, io_nblocks, io_buf */
#define STORVSC_OP_WRITE	2	/* io_lba, io_nblocks, io_buf */
#define STORVSC_OP_FLUSH	3	/* SYNCHRONIZE CACHE (whole disk) */
#define STORVSC_OP_DISCARD	4	/* UNMAP io_lba, io_nblocks */
#define STORVSC_OP_SCSI		5	/* io_cdb, io_dir, io_buf, io_len */

/* storvsc_io.io_dir (STORVSC_OP_SCSI) */
#define STORVSC_DIR_NONE	0
#define STORVSC_DIR_IN		1	/* device -> io_buf */
#define STORVSC_DIR_OUT		2	/* io_buf -> device */

/* The SCSI result of a request (the last SRB that decided its outcome). */
struct storvsc_scsi_result {
	uint32_t sr_vstor_status;	/* packet NTSTATUS */
	uint8_t  sr_srb_status;		/* SRB_STATUS_* with its flag bits */
	uint8_t  sr_scsi_status;	/* SCSI_STATUS_* */
	uint8_t  sr_sense_key;		/* decoded; 0 if no sense */
	uint8_t  sr_asc;
	uint8_t  sr_ascq;
	uint8_t  sr_sense_len;		/* valid bytes in sr_sense */
	uint8_t  sr_sense[20];		/* raw sense data as received */
	bool     sr_sense_valid;	/* fixed or descriptor sense decoded */
	uint64_t sr_info;		/* sense INFORMATION field, if valid */
	bool     sr_info_valid;
};

typedef void storvsc_done_fn(struct storvsc_io *io);

#define STORVSC_IO_PRIVATE_WORDS 16

struct storvsc_io {
	/* ---- request: set by the caller before submission ---- */
	uint32_t io_op;			/* STORVSC_OP_* */
	uint64_t io_lba;		/* READ/WRITE/DISCARD: first block */
	uint32_t io_nblocks;		/* READ/WRITE/DISCARD: blocks */
	void    *io_buf;		/* READ/WRITE/SCSI data */
	uint8_t  io_cdb[16];		/* SCSI: the CDB */
	uint8_t  io_cdb_len;		/* SCSI: 6..16 */
	uint8_t  io_dir;		/* SCSI: STORVSC_DIR_* */
	uint32_t io_len;		/* SCSI: data bytes (<= max transfer) */
	uint64_t io_timeout_ns;		/* per SRB; 0 = sc_io_timeout_ns */
	storvsc_done_fn *io_done;	/* required for storvsc_submit */
	void    *io_arg;		/* for the caller */
	/* ---- result: valid in io_done ---- */
	int      io_error;		/* 0 or a negative code (see top) */
	uint64_t io_bytes;		/* bytes transferred (SCSI: as the
					 * host reported, <= io_len) */
	bool     io_buf_shared;		/* with -ETIMEDOUT / -EPROTO: the
					 * host may still access io_buf */
	struct storvsc_scsi_result io_status;
	/* ---- driver private: do not touch while submitted ---- */
	_Alignas(8) uint64_t io_private[STORVSC_IO_PRIVATE_WORDS];
};

/*
 * storvsc_submit - start io on disk d. On 0 the driver owns io (and io_buf)
 * until io_done(io) runs, exactly once; that may happen on another thread
 * before storvsc_submit returns. io_done must not sleep; it may submit
 * again (the same io too). On an error return io_done is not called.
 * Requests beyond the queue depth, or larger than the transfer limit
 * (split), wait inside the driver in submission order per queue.
 * Context: any. Returns 0, or:
 *   -VMBUS_EINVAL     bad fields (unknown op, no io_done, nblocks 0, a
 *                     SCSI CDB length or direction out of range, io_len
 *                     beyond the transfer limit, io already submitted);
 *   -VMBUS_ERANGE     LBA range beyond the capacity (READ/WRITE/DISCARD);
 *   -VMBUS_EOPNOTSUPP DISCARD on a disk without UNMAP support, or a block
 *                     size we cannot handle;
 *   -VMBUS_ENODEV     the disk or controller is gone;
 *   -VMBUS_EPROTO     every queue of the controller is broken.
 */
int storvsc_submit(struct storvsc_disk *d, struct storvsc_io *io);

/* Fill-and-submit helpers: the same contract as storvsc_submit. */
int storvsc_read(struct storvsc_disk *d, struct storvsc_io *io, uint64_t lba,
    uint32_t nblocks, void *buf, storvsc_done_fn *done, void *arg);
int storvsc_write(struct storvsc_disk *d, struct storvsc_io *io, uint64_t lba,
    uint32_t nblocks, const void *buf, storvsc_done_fn *done, void *arg);
int storvsc_flush(struct storvsc_disk *d, struct storvsc_io *io,
    storvsc_done_fn *done, void *arg);
int storvsc_discard(struct storvsc_disk *d, struct storvsc_io *io,
    uint64_t lba, uint32_t nblocks, storvsc_done_fn *done, void *arg);

/*
 * Synchronous forms: submit and wait for the completion (bounded by the
 * request timeout; a request that is still outstanding then is abandoned:
 * -VMBUS_ETIMEDOUT). Context: thread. Return 0 or the request's io_error
 * (or storvsc_submit's error). storvsc_io_sync runs a caller-filled io
 * (io_done is ignored and overwritten) so the caller can read io_status and
 * io_bytes afterwards.
 */
int storvsc_io_sync(struct storvsc_disk *d, struct storvsc_io *io);
int storvsc_read_sync(struct storvsc_disk *d, uint64_t lba, uint32_t nblocks,
    void *buf);
int storvsc_write_sync(struct storvsc_disk *d, uint64_t lba, uint32_t nblocks,
    const void *buf);
int storvsc_flush_sync(struct storvsc_disk *d);
int storvsc_discard_sync(struct storvsc_disk *d, uint64_t lba,
    uint32_t nblocks);

/*
 * storvsc_buf_alloc / storvsc_buf_free - page-aligned memory from the
 * port's page_alloc, always described to the host directly (no bounce).
 * alloc: NULL on failure. free: pass the same size; a buffer the host may
 * still access (io_buf_shared) must not be freed; pages the port refuses
 * to take back (page_free fails, e.g. -EISCONN) stay leaked and are
 * counted in st_leaked_pages. Context: thread, no storvsc lock held.
 */
void *storvsc_buf_alloc(struct storvsc *sv, size_t bytes);
void storvsc_buf_free(struct storvsc *sv, void *buf, size_t bytes);

/* ---- statistics ---------------------------------------------------------------- */

struct storvsc_stats {
	uint64_t st_ios;		/* requests completed */
	uint64_t st_io_errors;		/* ... with an error */
	uint64_t st_srbs;		/* SRBs sent (retries included) */
	uint64_t st_splits;		/* extra SRBs from max-transfer splits */
	uint64_t st_bounced;		/* SRBs through the bounce pool */
	uint64_t st_bytes_read;
	uint64_t st_bytes_written;
	uint64_t st_ring_full;		/* sends postponed: ring full */
	uint64_t st_queue_waits;	/* requests that waited for a slot */
	uint64_t st_check_conditions;	/* CHECK CONDITION with sense */
	uint64_t st_retries;		/* unit attention / busy retries */
	uint64_t st_timeouts;		/* SRBs timed out (slot quarantined) */
	uint64_t st_late_completions;	/* completions of timed-out SRBs */
	uint64_t st_bad_ids;		/* unknown / stale / idle transaction ids */
	uint64_t st_bad_packets;	/* short, mistyped, oversized packets */
	uint64_t st_clamped;		/* data/sense lengths beyond the request */
	uint64_t st_bad_status;		/* unknown or inconsistent statuses */
	uint64_t st_unsolicited;	/* ENUMERATE_BUS / REMOVE_DEVICE / other */
	uint64_t st_rescans;		/* rescans run */
	uint64_t st_broken_queues;	/* queues marked broken */
	uint64_t st_proto_errors;	/* protocol violations (all kinds) */
	uint64_t st_leaked_pages;	/* bounce pages kept on purpose: the
					 * channel teardown failed, the host
					 * may still write them (the rings are
					 * in vmbus_stats.bs_leaked_pages);
					 * and storvsc_buf_free pages the
					 * port refused to take back */
};

/* Snapshot, summed over every controller (detached ones included).
 * Context: any. Returns 0 or -VMBUS_EINVAL. */
int storvsc_get_stats(struct storvsc *sv, struct storvsc_stats *out);

/* Short name of an error code for logs ("EIO", ...); never NULL. */
const char *storvsc_strerror(int err);

#endif /* VMBUS_STORVSC_H */
