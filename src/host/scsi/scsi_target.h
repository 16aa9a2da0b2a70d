/*
 * host/scsi/scsi_target.h - the SCSI target behind the storage VSP: a
 * direct-access block device (SBC) answering the commands a StorVSC guest
 * sends, with fixed-format sense data for everything else.
 *
 * The target is pure: it never does I/O and never touches guest memory. It
 * decodes one CDB (private copy) against one logical unit's geometry and
 * either completes the command itself (status, sense, response data in a
 * caller buffer) or tells the caller which medium I/O to run and how many
 * bytes the data phase moves. Commands with a parameter list (UNMAP, WRITE
 * SAME) take a second step once the caller has fetched the data-out bytes.
 *
 * Every field of the CDB and of parameter lists is guest-controlled; every
 * length, LBA and count is checked here in 64-bit with no overflow, and a
 * bad one becomes CHECK CONDITION with sense, never an assertion.
 */
#ifndef HVS_SCSI_TARGET_H
#define HVS_SCSI_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/scsi.h"

/* Opcodes and ASCs used here that hv/scsi.h does not list. */
#define HVS_SCSI_READ_6			0x08u
#define HVS_SCSI_WRITE_6		0x0Au
#define HVS_SCSI_ASC_PARAM_LIST_LENGTH	0x1Au	/* ASCQ 0 */
#define HVS_SCSI_ASC_SAVING_NOT_SUPPORTED 0x39u	/* ASCQ 0 */

/* One logical unit's geometry and identity. */
struct hvs_scsi_lu {
	uint64_t lu_nblocks;          /* logical blocks, > 0 */
	uint32_t lu_block_size;       /* bytes, 512 or 4096 */
	uint32_t lu_phys_block_size;  /* bytes, >= block size */
	bool lu_ro;                   /* write protected */
	bool lu_unmap;                /* thin: UNMAP, WRITE SAME with UNMAP */
	bool lu_wce;                  /* write cache enabled (caching page) */
	uint32_t lu_max_xfer_blocks;  /* READ/WRITE/WRITE SAME limit, > 0 */
	uint32_t lu_max_unmap_blocks; /* per UNMAP command */
	uint32_t lu_max_unmap_desc;   /* descriptors per UNMAP command */
	const char *lu_serial;        /* VPD 0x80, ASCII, <= 20 bytes */
	uint64_t lu_id;               /* VPD 0x83 NAA designator source */
};

/* What the caller must do next. */
enum hvs_scsi_action {
	HVS_SCSI_COMPLETE = 0, /* done: sr_status (+ sense), sr_xfer bytes of
				  response data in the caller's buffer */
	HVS_SCSI_READ,         /* read sr_bytes at sr_offset, data-in */
	HVS_SCSI_WRITE,        /* data-out, write sr_bytes at sr_offset */
	HVS_SCSI_FLUSH,        /* make written data durable */
	HVS_SCSI_UNMAP,        /* fetch sr_xfer data-out bytes, then
				  hvs_scsi_unmap_params() */
	HVS_SCSI_WRITE_SAME,   /* fetch sr_xfer data-out bytes (one block, or
				  0 with NDOB), then hvs_scsi_write_same() */
	HVS_SCSI_DISCARD,      /* (from hvs_scsi_write_same) deallocate
				  sr_bytes at sr_offset */
};

/* Direction of the data phase. */
#define HVS_SCSI_DIR_NONE 0
#define HVS_SCSI_DIR_IN   1 /* device -> initiator */
#define HVS_SCSI_DIR_OUT  2 /* initiator -> device */

struct hvs_scsi_result {
	enum hvs_scsi_action sr_action;
	int sr_dir;                 /* HVS_SCSI_DIR_* of the data phase */
	uint32_t sr_xfer;           /* bytes the data phase moves, <= the
				       initiator's buffer */
	uint8_t sr_status;          /* SCSI_STATUS_* (COMPLETE) */
	uint8_t sr_sense_len;       /* 0 or SCSI_SENSE_FIXED_SIZE */
	uint8_t sr_sense[SCSI_SENSE_FIXED_SIZE];
	uint64_t sr_offset;         /* medium byte range */
	uint64_t sr_bytes;
	bool sr_fua;                /* WRITE: flush before completing */
	bool sr_unmap;              /* WRITE SAME: UNMAP bit */
};

/* One command as the initiator sent it. */
struct hvs_scsi_cmd {
	const uint8_t *sc_cdb;      /* private copy */
	unsigned sc_cdb_len;        /* 1..16 */
	uint32_t sc_xfer_len;       /* the initiator's data buffer, bytes */
	const struct hvs_scsi_lu *sc_lu; /* NULL: no LU at this address */
	const uint8_t *sc_luns;     /* REPORT LUNS: the LUN numbers present */
	unsigned sc_nluns;
};

/* Response data a COMPLETE command may produce, at most (REPORT LUNS of
 * 256 LUNs is 2056 bytes). */
#define HVS_SCSI_RESP_MAX 4096u

/*
 * Decode and, where no medium I/O is needed, execute c. resp receives
 * response data (resp_cap >= HVS_SCSI_RESP_MAX bytes). Never fails: every
 * error is a CHECK CONDITION in *res.
 */
void hvs_scsi_execute(const struct hvs_scsi_cmd *c, uint8_t *resp,
		      uint32_t resp_cap, struct hvs_scsi_result *res);

/* One medium range, bytes. */
struct hvs_scsi_extent {
	uint64_t se_offset;
	uint64_t se_bytes;
};

/*
 * UNMAP's second step: parse the parameter list (len bytes the caller
 * fetched) into at most max_ext extents (max_ext >= lu_max_unmap_desc).
 * Returns the extent count (0: nothing to do, GOOD) with res untouched,
 * or -1 with a CHECK CONDITION in res.
 */
int hvs_scsi_unmap_params(const struct hvs_scsi_lu *lu, const uint8_t *p,
			  uint32_t len, struct hvs_scsi_extent *ext,
			  unsigned max_ext, struct hvs_scsi_result *res);

/*
 * WRITE SAME's second step, block = the data-out block (NULL with NDOB:
 * zeros). Turns res into HVS_SCSI_DISCARD (unmap of a zero pattern),
 * HVS_SCSI_WRITE (the caller writes sr_bytes made by hvs_scsi_fill_pattern)
 * or a CHECK CONDITION (COMPLETE).
 */
void hvs_scsi_write_same(const struct hvs_scsi_lu *lu, const uint8_t *block,
			 struct hvs_scsi_result *res);
void hvs_scsi_fill_pattern(uint8_t *dst, uint64_t bytes, const uint8_t *block,
			   uint32_t block_size);

/* Set a CHECK CONDITION with fixed-format sense (key, asc, ascq). */
void hvs_scsi_check(struct hvs_scsi_result *res, uint8_t key, uint8_t asc,
		    uint8_t ascq);

/*
 * A medium operation failed with negative errno err: CHECK CONDITION with
 * the matching sense. -ENOSPC/-EDQUOT: DATA PROTECT, space allocation
 * failed; -EIO: MEDIUM ERROR (unrecovered read error, or write error);
 * -EROFS/-EPERM/-EACCES/-EBADF: DATA PROTECT, write protected; others:
 * HARDWARE ERROR, internal target failure.
 */
void hvs_scsi_sense_errno(struct hvs_scsi_result *res, int err, bool read);

/* Good status, no data. */
void hvs_scsi_good(struct hvs_scsi_result *res);

#endif /* HVS_SCSI_TARGET_H */
