/*
 * host/scsi/scsi_target.c - a direct-access SCSI target (SPC-4/SBC-3
 * subset) for the storage VSP. See scsi_target.h for the contract.
 *
 * Checks run in this order: CDB length for the opcode, logical unit
 * present, reserved/unsupported CDB bits, LBA range, transfer limits, the
 * initiator's buffer, write protection.
 */
#include "host/scsi/scsi_target.h"

#include <errno.h>
#include <string.h>

#define VENDOR   "Msft    "          /* 8 bytes, as Hyper-V reports */
#define PRODUCT  "Virtual Disk    "  /* 16 bytes */
#define REVISION "1.0 "              /* 4 bytes */

void hvs_scsi_good(struct hvs_scsi_result *res)
{
	res->sr_action = HVS_SCSI_COMPLETE;
	res->sr_status = SCSI_STATUS_GOOD;
	res->sr_sense_len = 0;
	res->sr_xfer = 0;
	res->sr_dir = HVS_SCSI_DIR_NONE;
}

void hvs_scsi_check(struct hvs_scsi_result *res, uint8_t key, uint8_t asc,
		    uint8_t ascq)
{
	hvs_scsi_good(res);
	res->sr_status = SCSI_STATUS_CHECK_CONDITION;
	memset(res->sr_sense, 0, sizeof(res->sr_sense));
	res->sr_sense[0] = SCSI_SENSE_RESPONSE_CURRENT;
	res->sr_sense[2] = key & SCSI_SENSE_KEY_MASK;
	res->sr_sense[7] = SCSI_SENSE_FIXED_ADD_LEN;
	res->sr_sense[12] = asc;
	res->sr_sense[13] = ascq;
	res->sr_sense_len = SCSI_SENSE_FIXED_SIZE;
}

/* INVALID FIELD IN CDB, with the sense-key-specific field pointer. */
static void bad_cdb(struct hvs_scsi_result *res, unsigned byte)
{
	hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
	               SCSI_ASC_INVALID_FIELD_IN_CDB, 0);
	res->sr_sense[15] = 0x80u | 0x40u; /* SKSV, C/D = CDB */
	hv_put_be16(&res->sr_sense[16], (uint16_t)byte);
}

static void bad_param(struct hvs_scsi_result *res, unsigned byte)
{
	hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
	               SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST, 0);
	res->sr_sense[15] = 0x80u; /* SKSV, C/D = parameter list */
	hv_put_be16(&res->sr_sense[16], (uint16_t)byte);
}

static void lba_out_of_range(struct hvs_scsi_result *res)
{
	hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
	               SCSI_ASC_LBA_OUT_OF_RANGE, 0);
}

static void write_protected(struct hvs_scsi_result *res)
{
	hvs_scsi_check(res, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED, 0);
}

void hvs_scsi_sense_errno(struct hvs_scsi_result *res, int err, bool read)
{
	switch (err) {
	case -ENOSPC:
	case -EDQUOT:
		hvs_scsi_check(res, SCSI_SENSE_DATA_PROTECT,
		               SCSI_ASC_SPACE_ALLOCATION_FAILED,
			       SCSI_ASCQ_SPACE_ALLOCATION_FAILED);
		break;
	case -EIO:
		if (read)
			hvs_scsi_check(res, SCSI_SENSE_MEDIUM_ERROR,
			               SCSI_ASC_UNRECOVERED_READ_ERROR, 0);
		else
			hvs_scsi_check(res, SCSI_SENSE_MEDIUM_ERROR,
			               SCSI_ASC_WRITE_ERROR, 0);
		break;
	case -EROFS:
	case -EPERM:
	case -EACCES:
	case -EBADF:
		write_protected(res);
		break;
	default:
		hvs_scsi_check(res, SCSI_SENSE_HARDWARE_ERROR,
		               SCSI_ASC_INTERNAL_TARGET_FAILURE, 0);
		break;
	}
}

/* Response data: `len` bytes were built; allocation length alloc. */
static void data_in(struct hvs_scsi_result *res, const struct hvs_scsi_cmd *c,
		    uint32_t len, uint32_t alloc)
{
	hvs_scsi_good(res);
	if (len > alloc)
		len = alloc;
	if (len > c->sc_xfer_len)
		len = c->sc_xfer_len; /* underrun: the initiator's buffer is smaller */
	res->sr_xfer = len;
	res->sr_dir = len ? HVS_SCSI_DIR_IN : HVS_SCSI_DIR_NONE;
}

/* ---- INQUIRY ---------------------------------------------------------------- */

static uint32_t inquiry_std(const struct hvs_scsi_lu *lu, uint8_t *r)
{
	memset(r, 0, SCSI_INQUIRY_STD_LEN);
	r[0] = lu ? SCSI_PERIPHERAL_DISK : SCSI_PERIPHERAL_NO_LUN;
	r[2] = SCSI_VERSION_SPC4;
	r[3] = 0x10u | 0x02u;         /* HiSup, response data format 2 */
	r[4] = SCSI_INQUIRY_STD_LEN - 5u;
	r[7] = 0x02u;                 /* CmdQue */
	memcpy(r + 8, VENDOR, 8);
	memcpy(r + 16, PRODUCT, 16);
	memcpy(r + 32, REVISION, 4);
	return SCSI_INQUIRY_STD_LEN;
}

static uint32_t max_write_same(const struct hvs_scsi_lu *lu)
{
	return lu->lu_max_xfer_blocks;
}

/* VPD page `page` into r; 0 if not supported. */
static uint32_t inquiry_vpd(const struct hvs_scsi_lu *lu, uint8_t page,
			    uint8_t *r)
{
	static const uint8_t pages[] = {
		SCSI_VPD_SUPPORTED_PAGES, SCSI_VPD_UNIT_SERIAL, SCSI_VPD_DEVICE_ID,
		SCSI_VPD_BLOCK_LIMITS, SCSI_VPD_BLOCK_CHARACTERISTICS,
		SCSI_VPD_LOGICAL_BLOCK_PROVISIONING,
	};
	uint32_t n;
	size_t sl;

	r[0] = SCSI_PERIPHERAL_DISK;
	r[1] = page;
	r[2] = 0;
	switch (page) {
	case SCSI_VPD_SUPPORTED_PAGES:
		memcpy(r + 4, pages, sizeof(pages));
		n = sizeof(pages);
		break;
	case SCSI_VPD_UNIT_SERIAL:
		sl = lu->lu_serial ? strlen(lu->lu_serial) : 0;
		if (sl > 20)
			sl = 20;
		memcpy(r + 4, lu->lu_serial ? lu->lu_serial : "", sl);
		n = (uint32_t)sl;
		break;
	case SCSI_VPD_DEVICE_ID: {
		uint8_t *d = r + 4;
		sl = lu->lu_serial ? strlen(lu->lu_serial) : 0;
		if (sl > 20)
			sl = 20;
		/* T10 vendor id designator: ASCII, LU association, type 1 */
		d[0] = 0x02;
		d[1] = 0x01;
		d[2] = 0;
		d[3] = (uint8_t)(8u + sl);
		memcpy(d + 4, VENDOR, 8);
		memcpy(d + 12, lu->lu_serial ? lu->lu_serial : "", sl);
		d += 4u + 8u + sl;
		/* NAA designator: binary, LU association, type 3, NAA 3
		 * (locally assigned) from the LU id */
		d[0] = 0x01;
		d[1] = 0x03;
		d[2] = 0;
		d[3] = 8;
		hv_put_be64(d + 4, (3ull << 60) | (lu->lu_id & 0x0FFFFFFFFFFFFFFFull));
		d += 12;
		n = (uint32_t)(d - (r + 4));
		break;
	}
	case SCSI_VPD_BLOCK_LIMITS:
		n = 0x3C;
		memset(r + 4, 0, n);
		r[4] = 0x01; /* WSNZ: WRITE SAME of 0 blocks is refused */
		hv_put_be16(r + 6, (uint16_t)(lu->lu_phys_block_size / lu->lu_block_size));
		hv_put_be32(r + 8, lu->lu_max_xfer_blocks);
		hv_put_be32(r + 12, lu->lu_max_xfer_blocks);
		if (lu->lu_unmap) {
			hv_put_be32(r + 20, lu->lu_max_unmap_blocks);
			hv_put_be32(r + 24, lu->lu_max_unmap_desc);
			hv_put_be32(r + 28, lu->lu_phys_block_size / lu->lu_block_size);
		}
		hv_put_be64(r + 36, max_write_same(lu));
		break;
	case SCSI_VPD_BLOCK_CHARACTERISTICS:
		n = 0x3C;
		memset(r + 4, 0, n);
		hv_put_be16(r + 4, 1); /* medium rotation rate: non-rotating */
		break;
	case SCSI_VPD_LOGICAL_BLOCK_PROVISIONING:
		n = 4;
		memset(r + 4, 0, n);
		if (lu->lu_unmap) {
			/* LBPU, LBPWS, LBPRZ (holes read back as zeros) */
			r[5] = 0x80u | 0x40u | 0x04u;
			r[6] = 0x02u; /* thin provisioned */
		}
		break;
	default:
		return 0;
	}
	hv_put_be16(r + 2, (uint16_t)n);
	return n + 4u;
}

static void cmd_inquiry(const struct hvs_scsi_cmd *c, uint8_t *resp,
			struct hvs_scsi_result *res)
{
	const uint8_t *cdb = c->sc_cdb;
	uint32_t alloc = hv_get_be16(cdb + 3);
	uint32_t n;

	if (cdb[1] & 0xFEu) {
		bad_cdb(res, 1); /* CmdDt and reserved bits */
		return;
	}
	if (!(cdb[1] & SCSI_INQUIRY_EVPD)) {
		if (cdb[2] != 0) {
			bad_cdb(res, 2);
			return;
		}
		n = inquiry_std(c->sc_lu, resp);
	} else {
		if (c->sc_lu == NULL) {
			hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
			               SCSI_ASC_LUN_NOT_SUPPORTED, 0);
			return;
		}
		n = inquiry_vpd(c->sc_lu, cdb[2], resp);
		if (n == 0) {
			bad_cdb(res, 2);
			return;
		}
	}
	data_in(res, c, n, alloc);
}

/* ---- MODE SENSE ------------------------------------------------------------- */

static uint32_t mode_page(const struct hvs_scsi_lu *lu, uint8_t page,
			  unsigned pc, uint8_t *p)
{
	switch (page) {
	case SCSI_MODE_PAGE_CACHING:
		memset(p, 0, 20);
		p[0] = SCSI_MODE_PAGE_CACHING;
		p[1] = 0x12;
		if (pc != 1 && lu->lu_wce)
			p[2] = 0x04; /* WCE; RCD = 0 */
		return 20;
	case SCSI_MODE_PAGE_CONTROL:
		memset(p, 0, 12);
		p[0] = SCSI_MODE_PAGE_CONTROL;
		p[1] = 0x0A;
		if (pc != 1)
			p[3] = 0x10; /* unrestricted reordering */
		return 12;
	}
	return 0;
}

static void cmd_mode_sense(const struct hvs_scsi_cmd *c, bool ten, uint8_t *resp,
			   struct hvs_scsi_result *res)
{
	const struct hvs_scsi_lu *lu = c->sc_lu;
	const uint8_t *cdb = c->sc_cdb;
	bool dbd = (cdb[1] & 0x08u) != 0;
	unsigned pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & 0x3Fu, sub = cdb[3];
	uint32_t hdr = ten ? 8u : 4u, alloc = ten ? hv_get_be16(cdb + 7) : cdb[4];
	uint32_t n = hdr;

	if (cdb[1] & (ten ? 0xE7u : 0xF7u)) {
		bad_cdb(res, 1); /* LLBAA and reserved bits */
		return;
	}
	if (pc == 3) {
		hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
		               HVS_SCSI_ASC_SAVING_NOT_SUPPORTED, 0);
		return;
	}
	if (sub != 0 && !(page == SCSI_MODE_PAGE_ALL && sub == 0xFF)) {
		bad_cdb(res, 3);
		return;
	}
	memset(resp, 0, 64);
	if (!dbd) {
		uint8_t *bd = resp + hdr;
		uint64_t nb = lu->lu_nblocks;
		hv_put_be32(bd, nb > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)nb);
		hv_put_be32(bd + 4, lu->lu_block_size & 0xFFFFFFu);
		n += 8;
	}
	if (page == SCSI_MODE_PAGE_ALL) {
		n += mode_page(lu, SCSI_MODE_PAGE_CACHING, pc, resp + n);
		n += mode_page(lu, SCSI_MODE_PAGE_CONTROL, pc, resp + n);
	} else {
		uint32_t m = mode_page(lu, page, pc, resp + n);
		if (m == 0) {
			bad_cdb(res, 2);
			return;
		}
		n += m;
	}
	uint8_t devspec = (uint8_t)((lu->lu_ro ? SCSI_MODE_DEVSPEC_WP : 0) |
				    0x10u /* DPOFUA */);
	if (ten) {
		hv_put_be16(resp, (uint16_t)(n - 2));
		resp[3] = devspec;
		hv_put_be16(resp + 6, dbd ? 0 : 8);
	} else {
		resp[0] = (uint8_t)(n - 1);
		resp[2] = devspec;
		resp[3] = dbd ? 0 : 8;
	}
	data_in(res, c, n, alloc);
}

/* ---- READ CAPACITY, REPORT LUNS, REQUEST SENSE --------------------------------- */

static void cmd_read_capacity(const struct hvs_scsi_cmd *c, bool sixteen,
			      uint8_t *resp, struct hvs_scsi_result *res)
{
	const struct hvs_scsi_lu *lu = c->sc_lu;
	const uint8_t *cdb = c->sc_cdb;
	uint64_t last = lu->lu_nblocks - 1;

	if (!sixteen) {
		if (!(cdb[8] & 1u) && hv_get_be32(cdb + 2) != 0) {
			bad_cdb(res, 2); /* LBA without PMI */
			return;
		}
		hv_put_be32(resp, last > 0xFFFFFFFEull ? 0xFFFFFFFFu : (uint32_t)last);
		hv_put_be32(resp + 4, lu->lu_block_size);
		data_in(res, c, SCSI_READ_CAPACITY_10_LEN,
		        SCSI_READ_CAPACITY_10_LEN);
		return;
	}
	if ((cdb[1] & 0x1Fu) != SCSI_SAI_READ_CAPACITY_16) {
		bad_cdb(res, 1);
		return;
	}
	memset(resp, 0, SCSI_READ_CAPACITY_16_LEN);
	hv_put_be64(resp, last);
	hv_put_be32(resp + 8, lu->lu_block_size);
	unsigned exp = 0;
	while ((lu->lu_block_size << (exp + 1)) <= lu->lu_phys_block_size && exp < 15)
		exp++;
	resp[13] = (uint8_t)exp; /* LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT */
	if (lu->lu_unmap)
		resp[14] = 0x80u | 0x40u; /* LBPME, LBPRZ */
	data_in(res, c, SCSI_READ_CAPACITY_16_LEN, hv_get_be32(cdb + 10));
}

static void cmd_report_luns(const struct hvs_scsi_cmd *c, uint8_t *resp,
			    uint32_t cap, struct hvs_scsi_result *res)
{
	const uint8_t *cdb = c->sc_cdb;
	uint32_t alloc = hv_get_be32(cdb + 6);
	unsigned n = 0;

	if (alloc < 16) {
		bad_cdb(res, 6);
		return;
	}
	if (cdb[2] != 0x00 && cdb[2] != 0x01 && cdb[2] != 0x02) {
		bad_cdb(res, 2);
		return;
	}
	memset(resp, 0, 8);
	if (cdb[2] != 0x01) { /* 0x01: well-known LUs only: none */
		for (unsigned i = 0; i < c->sc_nluns && 8u + 8u * (n + 1) <= cap; i++) {
			uint8_t *e = resp + 8 + 8 * n++;
			memset(e, 0, 8);
			e[1] = c->sc_luns[i]; /* peripheral device addressing, bus 0 */
		}
	}
	hv_put_be32(resp, 8u * n);
	data_in(res, c, 8u + 8u * n, alloc);
}

static void cmd_request_sense(const struct hvs_scsi_cmd *c, uint8_t *resp,
			      struct hvs_scsi_result *res)
{
	struct hvs_scsi_result s;

	if (c->sc_cdb[1] & 0xFEu) {
		bad_cdb(res, 1);
		return;
	}
	/* Autosense reports every error with its command: nothing pends. */
	if (c->sc_lu == NULL)
		hvs_scsi_check(&s, SCSI_SENSE_ILLEGAL_REQUEST,
		               SCSI_ASC_LUN_NOT_SUPPORTED, 0);
	else
		hvs_scsi_check(&s, SCSI_SENSE_NO_SENSE, 0, 0);
	memcpy(resp, s.sr_sense, SCSI_SENSE_FIXED_SIZE);
	data_in(res, c, SCSI_SENSE_FIXED_SIZE, c->sc_cdb[4]);
}

/* ---- medium access ---------------------------------------------------------- */

/*
 * [lba, lba + n) inside the medium? With n == 0 the LBA itself must exist.
 * No overflow: n is compared with the blocks left after lba.
 */
static bool range_ok(const struct hvs_scsi_lu *lu, uint64_t lba, uint64_t n)
{
	return lba < lu->lu_nblocks && n <= lu->lu_nblocks - lba;
}

static void cmd_rw(const struct hvs_scsi_cmd *c, bool write,
		   struct hvs_scsi_result *res)
{
	const struct hvs_scsi_lu *lu = c->sc_lu;
	const uint8_t *cdb = c->sc_cdb;
	uint64_t lba;
	uint32_t n;
	bool fua = false;

	switch (cdb[0]) {
	case HVS_SCSI_READ_6:
	case HVS_SCSI_WRITE_6:
		lba = ((uint64_t)(cdb[1] & 0x1Fu) << 16) | hv_get_be16(cdb + 2);
		n = cdb[4] ? cdb[4] : 256u; /* SBC: 0 means 256 here */
		break;
	case SCSI_READ_10:
	case SCSI_WRITE_10:
		lba = hv_get_be32(cdb + 2);
		n = hv_get_be16(cdb + 7);
		break;
	case SCSI_READ_12:
	case SCSI_WRITE_12:
		lba = hv_get_be32(cdb + 2);
		n = hv_get_be32(cdb + 6);
		break;
	default: /* 16 */
		lba = hv_get_be64(cdb + 2);
		n = hv_get_be32(cdb + 10);
		break;
	}
	if (cdb[0] != HVS_SCSI_READ_6 && cdb[0] != HVS_SCSI_WRITE_6) {
		if (cdb[1] & 0xE0u) {
			bad_cdb(res, 1); /* RD/WRPROTECT: no protection info */
			return;
		}
		fua = (cdb[1] & 0x08u) != 0;
	}
	if (!range_ok(lu, lba, n)) {
		lba_out_of_range(res);
		return;
	}
	if (n > lu->lu_max_xfer_blocks) {
		bad_cdb(res, cdb[0] == HVS_SCSI_READ_6 ||
				      cdb[0] == HVS_SCSI_WRITE_6 ? 4 : 7);
		return;
	}
	uint64_t bytes = (uint64_t)n * lu->lu_block_size;
	if (bytes > c->sc_xfer_len) {
		bad_cdb(res, 7); /* the buffer cannot hold the transfer */
		return;
	}
	if (write && lu->lu_ro) {
		write_protected(res);
		return;
	}
	hvs_scsi_good(res);
	if (n == 0)
		return; /* SBC: a transfer length of 0 moves nothing: GOOD */
	res->sr_action = write ? HVS_SCSI_WRITE : HVS_SCSI_READ;
	res->sr_dir = write ? HVS_SCSI_DIR_OUT : HVS_SCSI_DIR_IN;
	res->sr_xfer = (uint32_t)bytes;
	res->sr_offset = lba * lu->lu_block_size;
	res->sr_bytes = bytes;
	res->sr_fua = write && fua;
}

static void cmd_sync_cache(const struct hvs_scsi_cmd *c, bool sixteen,
			   struct hvs_scsi_result *res)
{
	const struct hvs_scsi_lu *lu = c->sc_lu;
	const uint8_t *cdb = c->sc_cdb;
	uint64_t lba = sixteen ? hv_get_be64(cdb + 2) : hv_get_be32(cdb + 2);
	uint64_t n = sixteen ? hv_get_be32(cdb + 10) : hv_get_be16(cdb + 7);

	/* n == 0: from lba to the end of the medium */
	if (!range_ok(lu, lba, n)) {
		lba_out_of_range(res);
		return;
	}
	hvs_scsi_good(res);
	res->sr_action = HVS_SCSI_FLUSH;
}

static void cmd_unmap(const struct hvs_scsi_cmd *c, struct hvs_scsi_result *res)
{
	const struct hvs_scsi_lu *lu = c->sc_lu;
	const uint8_t *cdb = c->sc_cdb;
	uint32_t plen = hv_get_be16(cdb + 7);

	if (!lu->lu_unmap) {
		hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
		               SCSI_ASC_INVALID_OPCODE, 0);
		return;
	}
	if (cdb[1] & 0x01u) {
		bad_cdb(res, 1); /* ANCHOR: not supported */
		return;
	}
	if (plen == 0) {
		hvs_scsi_good(res);
		return;
	}
	if (plen < 8) {
		hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
		               HVS_SCSI_ASC_PARAM_LIST_LENGTH, 0);
		return;
	}
	if (plen > 8u + 16u * lu->lu_max_unmap_desc)
		plen = 8u + 16u * lu->lu_max_unmap_desc + 16u; /* enough to see
					the descriptor count is too high */
	if (plen > c->sc_xfer_len) {
		bad_cdb(res, 7);
		return;
	}
	if (lu->lu_ro) {
		write_protected(res);
		return;
	}
	hvs_scsi_good(res);
	res->sr_action = HVS_SCSI_UNMAP;
	res->sr_dir = HVS_SCSI_DIR_OUT;
	res->sr_xfer = plen;
}

int hvs_scsi_unmap_params(const struct hvs_scsi_lu *lu, const uint8_t *p,
			  uint32_t len, struct hvs_scsi_extent *ext,
			  unsigned max_ext, struct hvs_scsi_result *res)
{
	uint64_t total = 0;
	unsigned n = 0;

	if (len < 8) {
		hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
		               HVS_SCSI_ASC_PARAM_LIST_LENGTH, 0);
		return -1;
	}
	uint32_t bdl = hv_get_be16(p + 2);
	if (bdl > len - 8)
		bdl = len - 8;
	bdl &= ~15u; /* SBC: a trailing partial descriptor is ignored */
	if (bdl / 16u > lu->lu_max_unmap_desc || bdl / 16u > max_ext) {
		bad_param(res, 2);
		return -1;
	}
	for (uint32_t off = 8; off < 8 + bdl; off += 16) {
		uint64_t lba = hv_get_be64(p + off);
		uint32_t cnt = hv_get_be32(p + off + 8);
		if (cnt == 0)
			continue;
		if (!range_ok(lu, lba, cnt)) {
			lba_out_of_range(res);
			return -1;
		}
		total += cnt;
		if (total > lu->lu_max_unmap_blocks) {
			bad_param(res, off + 8);
			return -1;
		}
		ext[n].se_offset = lba * lu->lu_block_size;
		ext[n].se_bytes = (uint64_t)cnt * lu->lu_block_size;
		n++;
	}
	return (int)n;
}

static void cmd_write_same16(const struct hvs_scsi_cmd *c,
			     struct hvs_scsi_result *res)
{
	const struct hvs_scsi_lu *lu = c->sc_lu;
	const uint8_t *cdb = c->sc_cdb;
	uint64_t lba = hv_get_be64(cdb + 2);
	uint32_t n = hv_get_be32(cdb + 10);
	bool ndob = (cdb[1] & 0x01u) != 0;

	if (cdb[1] & (0xE0u | 0x10u | 0x06u)) {
		bad_cdb(res, 1); /* WRPROTECT, ANCHOR, reserved */
		return;
	}
	if (n == 0) {
		bad_cdb(res, 10); /* WSNZ = 1 */
		return;
	}
	if (!range_ok(lu, lba, n)) {
		lba_out_of_range(res);
		return;
	}
	if (n > max_write_same(lu)) {
		bad_cdb(res, 10);
		return;
	}
	if (!ndob && lu->lu_block_size > c->sc_xfer_len) {
		bad_cdb(res, 10);
		return;
	}
	if (lu->lu_ro) {
		write_protected(res);
		return;
	}
	hvs_scsi_good(res);
	res->sr_action = HVS_SCSI_WRITE_SAME;
	res->sr_dir = ndob ? HVS_SCSI_DIR_NONE : HVS_SCSI_DIR_OUT;
	res->sr_xfer = ndob ? 0 : lu->lu_block_size;
	res->sr_offset = lba * lu->lu_block_size;
	res->sr_bytes = (uint64_t)n * lu->lu_block_size;
	res->sr_unmap = (cdb[1] & 0x08u) != 0;
}

void hvs_scsi_write_same(const struct hvs_scsi_lu *lu, const uint8_t *block,
			 struct hvs_scsi_result *res)
{
	bool zero = true;

	if (block != NULL)
		for (uint32_t i = 0; i < lu->lu_block_size && zero; i++)
			zero = block[i] == 0;
	/* UNMAP may deallocate only when reads then return the pattern:
	 * holes read zeros (LBPRZ), so only a zero pattern qualifies. */
	if (res->sr_unmap && lu->lu_unmap && zero) {
		res->sr_action = HVS_SCSI_DISCARD;
		return;
	}
	res->sr_action = HVS_SCSI_WRITE;
}

void hvs_scsi_fill_pattern(uint8_t *dst, uint64_t bytes, const uint8_t *block,
			   uint32_t block_size)
{
	for (uint64_t off = 0; off < bytes; off += block_size) {
		if (block != NULL)
			memcpy(dst + off, block, block_size);
		else
			memset(dst + off, 0, block_size);
	}
}

/* ---- dispatch ----------------------------------------------------------------- */

/* CDB length the opcode's group needs. */
static unsigned cdb_len_for(uint8_t op)
{
	switch (op >> 5) {
	case 0: return SCSI_CDB6_LEN;
	case 1: case 2: return SCSI_CDB10_LEN;
	case 4: return SCSI_CDB16_LEN;
	case 5: return SCSI_CDB12_LEN;
	default: return 0; /* groups 3, 6, 7: reserved / vendor */
	}
}

void hvs_scsi_execute(const struct hvs_scsi_cmd *c, uint8_t *resp,
		      uint32_t resp_cap, struct hvs_scsi_result *res)
{
	const uint8_t *cdb = c->sc_cdb;
	const struct hvs_scsi_lu *lu = c->sc_lu;

	memset(res, 0, sizeof(*res));
	hvs_scsi_good(res);
	if (c->sc_cdb_len == 0 || c->sc_cdb_len > 16 || resp_cap < HVS_SCSI_RESP_MAX) {
		bad_cdb(res, 0);
		return;
	}
	unsigned need = cdb_len_for(cdb[0]);
	if (need == 0) {
		hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
		               SCSI_ASC_INVALID_OPCODE, 0);
		return;
	}
	if (c->sc_cdb_len < need) {
		bad_cdb(res, 0);
		return;
	}
	/* INQUIRY, REPORT LUNS and REQUEST SENSE work without an LU (SPC) */
	if (lu == NULL && cdb[0] != SCSI_INQUIRY && cdb[0] != SCSI_REPORT_LUNS &&
	    cdb[0] != SCSI_REQUEST_SENSE) {
		hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
		               SCSI_ASC_LUN_NOT_SUPPORTED, 0);
		return;
	}

	switch (cdb[0]) {
	case SCSI_TEST_UNIT_READY:
	case SCSI_START_STOP_UNIT:
		hvs_scsi_good(res);
		return;
	case SCSI_INQUIRY:
		cmd_inquiry(c, resp, res);
		return;
	case SCSI_REQUEST_SENSE:
		cmd_request_sense(c, resp, res);
		return;
	case SCSI_REPORT_LUNS:
		cmd_report_luns(c, resp, resp_cap, res);
		return;
	case SCSI_MODE_SENSE_6:
		cmd_mode_sense(c, false, resp, res);
		return;
	case SCSI_MODE_SENSE_10:
		cmd_mode_sense(c, true, resp, res);
		return;
	case SCSI_READ_CAPACITY_10:
		cmd_read_capacity(c, false, resp, res);
		return;
	case SCSI_SERVICE_ACTION_IN_16:
		cmd_read_capacity(c, true, resp, res);
		return;
	case HVS_SCSI_READ_6:
	case SCSI_READ_10:
	case SCSI_READ_12:
	case SCSI_READ_16:
		cmd_rw(c, false, res);
		return;
	case HVS_SCSI_WRITE_6:
	case SCSI_WRITE_10:
	case SCSI_WRITE_12:
	case SCSI_WRITE_16:
		cmd_rw(c, true, res);
		return;
	case SCSI_SYNCHRONIZE_CACHE_10:
		cmd_sync_cache(c, false, res);
		return;
	case SCSI_SYNCHRONIZE_CACHE_16:
		cmd_sync_cache(c, true, res);
		return;
	case SCSI_UNMAP:
		cmd_unmap(c, res);
		return;
	case SCSI_WRITE_SAME_16:
		cmd_write_same16(c, res);
		return;
	default:
		hvs_scsi_check(res, SCSI_SENSE_ILLEGAL_REQUEST,
		               SCSI_ASC_INVALID_OPCODE, 0);
		return;
	}
}
