/*
 * test_scsi_target.c - the SCSI target: every supported command, sense for
 * bad ones, and the boundaries (LBA + length overflow, transfer length 0,
 * huge transfers, short buffers, allocation lengths).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/scsi/scsi_target.h"

static struct hvs_scsi_lu lu;
static uint8_t resp[HVS_SCSI_RESP_MAX];
static const uint8_t luns[] = { 0, 3, 63 };

static int reset(void **state)
{
	(void)state;
	memset(&lu, 0, sizeof(lu));
	lu.lu_nblocks = 2097152; /* 1 GiB of 512-byte blocks */
	lu.lu_block_size = 512;
	lu.lu_phys_block_size = 4096;
	lu.lu_unmap = true;
	lu.lu_wce = true;
	lu.lu_max_xfer_blocks = 4096; /* 2 MiB */
	lu.lu_max_unmap_blocks = 1u << 22;
	lu.lu_max_unmap_desc = 4;
	lu.lu_serial = "SER123";
	lu.lu_id = 0x1122334455667788ull;
	return 0;
}

static struct hvs_scsi_result run(const uint8_t *cdb, unsigned len,
				  uint32_t xfer, const struct hvs_scsi_lu *l)
{
	struct hvs_scsi_cmd c = { cdb, len, xfer, l, luns, 3 };
	struct hvs_scsi_result r;
	memset(resp, 0xCC, sizeof(resp));
	hvs_scsi_execute(&c, resp, sizeof(resp), &r);
	return r;
}

static void expect_sense(const struct hvs_scsi_result *r, uint8_t key,
			 uint8_t asc, uint8_t ascq)
{
	assert_int_equal(r->sr_action, HVS_SCSI_COMPLETE);
	assert_int_equal(r->sr_status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r->sr_sense_len, 18);
	assert_int_equal(r->sr_sense[0], 0x70);
	assert_int_equal(r->sr_sense[7], 10);
	assert_int_equal(r->sr_sense[2] & 0x0F, key);
	assert_int_equal(r->sr_sense[12], asc);
	assert_int_equal(r->sr_sense[13], ascq);
	assert_int_equal(r->sr_xfer, 0);
}

static void expect_good(const struct hvs_scsi_result *r, uint32_t xfer)
{
	assert_int_equal(r->sr_action, HVS_SCSI_COMPLETE);
	assert_int_equal(r->sr_status, SCSI_STATUS_GOOD);
	assert_int_equal(r->sr_sense_len, 0);
	assert_int_equal(r->sr_xfer, xfer);
}

#define ILLEGAL(r, asc) expect_sense(&(r), SCSI_SENSE_ILLEGAL_REQUEST, asc, 0)

static void test_tur_and_unknown(void **state)
{
	(void)state;
	uint8_t cdb[16] = { SCSI_TEST_UNIT_READY };
	struct hvs_scsi_result r = run(cdb, 6, 0, &lu);
	expect_good(&r, 0);
	r = run(cdb, 6, 0, NULL);
	ILLEGAL(r, SCSI_ASC_LUN_NOT_SUPPORTED);
	cdb[0] = SCSI_MODE_SELECT_6; /* not supported */
	r = run(cdb, 6, 0, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_OPCODE);
	cdb[0] = 0xC0; /* vendor group */
	r = run(cdb, 16, 0, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_OPCODE);
	cdb[0] = SCSI_ATA_PASSTHROUGH_16;
	r = run(cdb, 16, 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_OPCODE);
	cdb[0] = SCSI_READ_16; /* CDB shorter than its group */
	r = run(cdb, 10, 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	r = run(cdb, 0, 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	r = run(cdb, 17, 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void test_inquiry(void **state)
{
	(void)state;
	uint8_t cdb[6] = { SCSI_INQUIRY, 0, 0, 0, 255, 0 };
	struct hvs_scsi_result r = run(cdb, 6, 255, &lu);
	expect_good(&r, 36);
	assert_int_equal(r.sr_dir, HVS_SCSI_DIR_IN);
	assert_int_equal(resp[0], 0);
	assert_int_equal(resp[2], SCSI_VERSION_SPC4);
	assert_int_equal(resp[4], 31);
	assert_memory_equal(resp + 8, "Msft    Virtual Disk    ", 24);
	/* allocation length and buffer both truncate */
	cdb[4] = 5;
	r = run(cdb, 6, 255, &lu);
	expect_good(&r, 5);
	cdb[4] = 255;
	r = run(cdb, 6, 10, &lu);
	expect_good(&r, 10);
	/* no LU: peripheral qualifier 3 */
	r = run(cdb, 6, 255, NULL);
	expect_good(&r, 36);
	assert_int_equal(resp[0], 0x7F);
	/* page code without EVPD, CmdDt */
	cdb[2] = 0x80;
	r = run(cdb, 6, 255, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(r.sr_sense[15], 0xC0);
	assert_int_equal(r.sr_sense[17], 2);
	cdb[2] = 0;
	cdb[1] = 2;
	r = run(cdb, 6, 255, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void test_vpd(void **state)
{
	(void)state;
	uint8_t cdb[6] = { SCSI_INQUIRY, 1, 0, 1, 0, 0 };
	struct hvs_scsi_result r = run(cdb, 6, 4096, &lu);
	expect_good(&r, 10);
	static const uint8_t pages[] = { 0, 0x80, 0x83, 0xB0, 0xB1, 0xB2 };
	assert_int_equal(resp[1], 0);
	assert_int_equal(resp[3], 6);
	assert_memory_equal(resp + 4, pages, 6);

	cdb[2] = 0x80;
	r = run(cdb, 6, 4096, &lu);
	expect_good(&r, 4 + 6);
	assert_memory_equal(resp + 4, "SER123", 6);

	cdb[2] = 0x83;
	r = run(cdb, 6, 4096, &lu);
	assert_int_equal(r.sr_status, 0);
	assert_int_equal(resp[4], 0x02); /* ASCII */
	assert_int_equal(resp[5], 0x01); /* T10 vendor id */
	assert_int_equal(resp[7], 8 + 6);
	assert_memory_equal(resp + 8, "Msft    SER123", 14);
	const uint8_t *naa = resp + 8 + 14;
	assert_int_equal(naa[1], 0x03);
	assert_int_equal(naa[3], 8);
	assert_int_equal(hv_get_be64(naa + 4), 0x3122334455667788ull);
	assert_int_equal(r.sr_xfer, 4 + 18 + 12);

	cdb[2] = 0xB0;
	r = run(cdb, 6, 4096, &lu);
	expect_good(&r, 64);
	assert_int_equal(hv_get_be16(resp + 2), 0x3C);
	assert_int_equal(resp[4] & 1, 1);
	assert_int_equal(hv_get_be16(resp + 6), 8);
	assert_int_equal(hv_get_be32(resp + 8), 4096);
	assert_int_equal(hv_get_be32(resp + 20), 1u << 22);
	assert_int_equal(hv_get_be32(resp + 24), 4);
	assert_int_equal(hv_get_be32(resp + 28), 8);
	assert_int_equal(hv_get_be64(resp + 36), 4096);

	cdb[2] = 0xB1;
	r = run(cdb, 6, 4096, &lu);
	expect_good(&r, 64);
	assert_int_equal(hv_get_be16(resp + 4), 1);

	cdb[2] = 0xB2;
	r = run(cdb, 6, 4096, &lu);
	expect_good(&r, 8);
	assert_int_equal(resp[5], 0xC4);
	assert_int_equal(resp[6], 2);
	lu.lu_unmap = false;
	r = run(cdb, 6, 4096, &lu);
	assert_int_equal(resp[5], 0);

	cdb[2] = 0x81; /* unsupported page */
	r = run(cdb, 6, 4096, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb[2] = 0x80; /* VPD of an absent LU */
	r = run(cdb, 6, 4096, NULL);
	ILLEGAL(r, SCSI_ASC_LUN_NOT_SUPPORTED);
}

static void test_read_capacity(void **state)
{
	(void)state;
	uint8_t c10[10] = { SCSI_READ_CAPACITY_10 };
	struct hvs_scsi_result r = run(c10, 10, 8, &lu);
	expect_good(&r, 8);
	assert_int_equal(hv_get_be32(resp), 2097151);
	assert_int_equal(hv_get_be32(resp + 4), 512);
	lu.lu_nblocks = 1ull << 33; /* 4 TiB: RC10 says "use 16" */
	r = run(c10, 10, 8, &lu);
	assert_int_equal(hv_get_be32(resp), 0xFFFFFFFFu);
	c10[5] = 1; /* LBA without PMI */
	r = run(c10, 10, 8, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);

	uint8_t c16[16] = { SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16 };
	hv_put_be32(c16 + 10, 32);
	r = run(c16, 16, 32, &lu);
	expect_good(&r, 32);
	assert_int_equal(hv_get_be64(resp), (1ull << 33) - 1);
	assert_int_equal(hv_get_be32(resp + 8), 512);
	assert_int_equal(resp[13], 3);
	assert_int_equal(resp[14], 0xC0);
	hv_put_be32(c16 + 10, 12); /* allocation length 12 */
	r = run(c16, 16, 32, &lu);
	expect_good(&r, 12);
	c16[1] = 0x11; /* another service action */
	r = run(c16, 16, 32, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void test_rw(void **state)
{
	(void)state;
	uint8_t c[16] = { SCSI_READ_10 };
	hv_put_be32(c + 2, 100);
	hv_put_be16(c + 7, 8);
	struct hvs_scsi_result r = run(c, 10, 4096, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_READ);
	assert_int_equal(r.sr_dir, HVS_SCSI_DIR_IN);
	assert_int_equal(r.sr_offset, 100 * 512);
	assert_int_equal(r.sr_bytes, 4096);
	assert_int_equal(r.sr_xfer, 4096);
	/* initiator buffer larger than the CDB's transfer: underrun, ok */
	r = run(c, 10, 8192, &lu);
	assert_int_equal(r.sr_xfer, 4096);
	/* smaller: refused */
	r = run(c, 10, 2048, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* transfer length 0: GOOD, no data, LBA still checked */
	hv_put_be16(c + 7, 0);
	r = run(c, 10, 0, &lu);
	expect_good(&r, 0);
	hv_put_be32(c + 2, 2097152);
	r = run(c, 10, 0, &lu);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* last block ok, one past not */
	hv_put_be32(c + 2, 2097151);
	hv_put_be16(c + 7, 1);
	r = run(c, 10, 512, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_READ);
	hv_put_be16(c + 7, 2);
	r = run(c, 10, 1024, &lu);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* READ(16): LBA + length wrapping 64 bits */
	uint8_t c16[16] = { SCSI_WRITE_16, 0x08 /* FUA */ };
	hv_put_be64(c16 + 2, UINT64_MAX - 3);
	hv_put_be32(c16 + 10, 8);
	r = run(c16, 16, 4096, &lu);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	hv_put_be64(c16 + 2, 8);
	r = run(c16, 16, 4096, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_WRITE);
	assert_int_equal(r.sr_dir, HVS_SCSI_DIR_OUT);
	assert_true(r.sr_fua);
	assert_int_equal(r.sr_offset, 4096);
	/* huge transfer: beyond the block limits */
	hv_put_be32(c16 + 10, 0xFFFFFFFFu);
	hv_put_be64(c16 + 2, 0);
	r = run(c16, 16, 0xFFFFFFFFu, &lu);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	hv_put_be32(c16 + 10, 4097);
	r = run(c16, 16, 0xFFFFFFFFu, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	hv_put_be32(c16 + 10, 4096);
	r = run(c16, 16, 4096 * 512, &lu);
	assert_int_equal(r.sr_bytes, 2u << 20);
	/* protection bits */
	c16[1] = 0x20;
	r = run(c16, 16, 4096 * 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* READ(12), READ(6) with its 0 = 256 rule */
	uint8_t c12[12] = { SCSI_READ_12 };
	hv_put_be32(c12 + 2, 7);
	hv_put_be32(c12 + 6, 3);
	r = run(c12, 12, 1536, &lu);
	assert_int_equal(r.sr_offset, 7 * 512);
	assert_int_equal(r.sr_bytes, 1536);
	uint8_t c6[6] = { HVS_SCSI_READ_6, 0x01, 0x00, 0x02, 0, 0 };
	r = run(c6, 6, 256 * 512, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_READ);
	assert_int_equal(r.sr_offset, 0x10002ull * 512);
	assert_int_equal(r.sr_bytes, 256 * 512);
	/* write protect */
	lu.lu_ro = true;
	c16[1] = 0;
	hv_put_be32(c16 + 10, 1);
	r = run(c16, 16, 512, &lu);
	expect_sense(&r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED, 0);
	uint8_t w6[6] = { HVS_SCSI_WRITE_6, 0, 0, 0, 1, 0 };
	r = run(w6, 6, 512, &lu);
	expect_sense(&r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED, 0);
	r = run(c12, 12, 1536, &lu); /* reads still fine */
	assert_int_equal(r.sr_action, HVS_SCSI_READ);
}

static void test_sync_cache(void **state)
{
	(void)state;
	uint8_t c[16] = { SCSI_SYNCHRONIZE_CACHE_10 };
	struct hvs_scsi_result r = run(c, 10, 0, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_FLUSH);
	assert_int_equal(r.sr_xfer, 0);
	hv_put_be32(c + 2, 2097152);
	r = run(c, 10, 0, &lu);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	uint8_t c16[16] = { SCSI_SYNCHRONIZE_CACHE_16 };
	hv_put_be64(c16 + 2, 2097150);
	hv_put_be32(c16 + 10, 2);
	r = run(c16, 16, 0, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_FLUSH);
	hv_put_be32(c16 + 10, 3);
	r = run(c16, 16, 0, &lu);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
}

static void test_unmap(void **state)
{
	(void)state;
	uint8_t c[10] = { SCSI_UNMAP };
	uint8_t p[8 + 16 * 6];
	struct hvs_scsi_extent ext[8];

	hv_put_be16(c + 7, 8 + 32);
	struct hvs_scsi_result r = run(c, 10, 40, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_UNMAP);
	assert_int_equal(r.sr_dir, HVS_SCSI_DIR_OUT);
	assert_int_equal(r.sr_xfer, 40);
	memset(p, 0, sizeof(p));
	hv_put_be16(p, 6 + 32);
	hv_put_be16(p + 2, 32);
	hv_put_be64(p + 8, 8);
	hv_put_be32(p + 16, 16);
	hv_put_be64(p + 24, 1000);
	hv_put_be32(p + 32, 0); /* empty descriptor: skipped */
	assert_int_equal(hvs_scsi_unmap_params(&lu, p, 40, ext, 8, &r), 1);
	assert_int_equal(ext[0].se_offset, 4096);
	assert_int_equal(ext[0].se_bytes, 8192);
	/* a partial descriptor is ignored; bdl beyond the list is clamped */
	hv_put_be16(p + 2, 200);
	assert_int_equal(hvs_scsi_unmap_params(&lu, p, 30, ext, 8, &r), 1);
	/* out of range, count overflow */
	hv_put_be16(p + 2, 16);
	hv_put_be64(p + 8, 2097150);
	hv_put_be32(p + 16, 3);
	assert_int_equal(hvs_scsi_unmap_params(&lu, p, 24, ext, 8, &r), -1);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	hv_put_be64(p + 8, UINT64_MAX);
	hv_put_be32(p + 16, 2);
	assert_int_equal(hvs_scsi_unmap_params(&lu, p, 24, ext, 8, &r), -1);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* too many descriptors, too many blocks */
	hv_put_be16(p + 2, 16 * 5);
	for (int i = 0; i < 5; i++) {
		hv_put_be64(p + 8 + 16 * i, (uint64_t)i * 100);
		hv_put_be32(p + 16 + 16 * i, 1);
	}
	assert_int_equal(hvs_scsi_unmap_params(&lu, p, 88, ext, 8, &r), -1);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST);
	lu.lu_max_unmap_blocks = 10;
	hv_put_be16(p + 2, 16);
	hv_put_be64(p + 8, 0);
	hv_put_be32(p + 16, 11);
	assert_int_equal(hvs_scsi_unmap_params(&lu, p, 24, ext, 8, &r), -1);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST);
	/* short list */
	assert_int_equal(hvs_scsi_unmap_params(&lu, p, 7, ext, 8, &r), -1);
	ILLEGAL(r, HVS_SCSI_ASC_PARAM_LIST_LENGTH);
	/* CDB checks: length 0 = nothing, 1..7 = error, ANCHOR, buffer */
	hv_put_be16(c + 7, 0);
	r = run(c, 10, 0, &lu);
	expect_good(&r, 0);
	hv_put_be16(c + 7, 7);
	r = run(c, 10, 7, &lu);
	ILLEGAL(r, HVS_SCSI_ASC_PARAM_LIST_LENGTH);
	hv_put_be16(c + 7, 24);
	r = run(c, 10, 16, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	c[1] = 1;
	r = run(c, 10, 24, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	c[1] = 0;
	hv_put_be16(c + 7, 0xFFFF); /* clamped to what the limits can use */
	r = run(c, 10, 0xFFFF, &lu);
	assert_int_equal(r.sr_xfer, 8 + 16 * 4 + 16);
	lu.lu_ro = true;
	r = run(c, 10, 0xFFFF, &lu);
	expect_sense(&r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED, 0);
	lu.lu_ro = false;
	lu.lu_unmap = false;
	r = run(c, 10, 0xFFFF, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_OPCODE);
}

static void test_write_same(void **state)
{
	(void)state;
	uint8_t c[16] = { SCSI_WRITE_SAME_16, 0x08 /* UNMAP */ };
	uint8_t blk[512];
	hv_put_be64(c + 2, 16);
	hv_put_be32(c + 10, 64);
	struct hvs_scsi_result r = run(c, 16, 512, &lu);
	assert_int_equal(r.sr_action, HVS_SCSI_WRITE_SAME);
	assert_int_equal(r.sr_xfer, 512);
	assert_true(r.sr_unmap);
	memset(blk, 0, sizeof(blk));
	hvs_scsi_write_same(&lu, blk, &r);
	assert_int_equal(r.sr_action, HVS_SCSI_DISCARD);
	assert_int_equal(r.sr_offset, 16 * 512);
	assert_int_equal(r.sr_bytes, 64 * 512);
	/* non-zero pattern: written, not unmapped */
	r = run(c, 16, 512, &lu);
	blk[3] = 9;
	hvs_scsi_write_same(&lu, blk, &r);
	assert_int_equal(r.sr_action, HVS_SCSI_WRITE);
	uint8_t out[64 * 512];
	hvs_scsi_fill_pattern(out, sizeof(out), blk, 512);
	assert_int_equal(out[63 * 512 + 3], 9);
	/* NDOB: no data-out, zeros */
	c[1] = 0x09;
	r = run(c, 16, 0, &lu);
	assert_int_equal(r.sr_xfer, 0);
	hvs_scsi_write_same(&lu, NULL, &r);
	assert_int_equal(r.sr_action, HVS_SCSI_DISCARD);
	/* without UNMAP: a write */
	c[1] = 0x01;
	r = run(c, 16, 0, &lu);
	hvs_scsi_write_same(&lu, NULL, &r);
	assert_int_equal(r.sr_action, HVS_SCSI_WRITE);
	/* 0 blocks (WSNZ), ANCHOR, range, length, short buffer */
	c[1] = 0x08;
	hv_put_be32(c + 10, 0);
	r = run(c, 16, 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	hv_put_be32(c + 10, 1);
	c[1] = 0x18;
	r = run(c, 16, 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	c[1] = 0x08;
	hv_put_be64(c + 2, 2097152);
	r = run(c, 16, 512, &lu);
	ILLEGAL(r, SCSI_ASC_LBA_OUT_OF_RANGE);
	hv_put_be64(c + 2, 0);
	hv_put_be32(c + 10, 4097);
	r = run(c, 16, 512, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	hv_put_be32(c + 10, 1);
	r = run(c, 16, 100, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	lu.lu_ro = true;
	r = run(c, 16, 512, &lu);
	expect_sense(&r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED, 0);
}

static void test_mode_sense(void **state)
{
	(void)state;
	uint8_t c6[6] = { SCSI_MODE_SENSE_6, 0, SCSI_MODE_PAGE_CACHING, 0, 255, 0 };
	struct hvs_scsi_result r = run(c6, 6, 255, &lu);
	expect_good(&r, 4 + 8 + 20);
	assert_int_equal(resp[0], 4 + 8 + 20 - 1);
	assert_int_equal(resp[2], 0x10); /* not WP, DPOFUA */
	assert_int_equal(resp[3], 8);
	assert_int_equal(hv_get_be32(resp + 4), 2097152);
	assert_int_equal(hv_get_be32(resp + 8) & 0xFFFFFF, 512);
	assert_int_equal(resp[12], 0x08);
	assert_int_equal(resp[14] & 0x04, 0x04); /* WCE */
	/* DBD, changeable values, write protect, all pages */
	lu.lu_ro = true;
	c6[1] = 0x08;
	c6[2] = 0x40 | SCSI_MODE_PAGE_ALL;
	r = run(c6, 6, 255, &lu);
	expect_good(&r, 4 + 20 + 12);
	assert_int_equal(resp[2], 0x90);
	assert_int_equal(resp[3], 0);
	assert_int_equal(resp[4 + 2], 0); /* WCE not changeable */
	assert_int_equal(resp[4 + 20], 0x0A);
	/* allocation length 4: the header only */
	c6[4] = 4;
	r = run(c6, 6, 255, &lu);
	expect_good(&r, 4);
	/* saved values, unknown page, subpage */
	c6[4] = 255;
	c6[2] = 0xC0 | SCSI_MODE_PAGE_CACHING;
	r = run(c6, 6, 255, &lu);
	ILLEGAL(r, HVS_SCSI_ASC_SAVING_NOT_SUPPORTED);
	c6[2] = 0x19;
	r = run(c6, 6, 255, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	c6[2] = SCSI_MODE_PAGE_CACHING;
	c6[3] = 1;
	r = run(c6, 6, 255, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	c6[2] = SCSI_MODE_PAGE_ALL;
	c6[3] = 0xFF;
	r = run(c6, 6, 255, &lu);
	assert_int_equal(r.sr_status, 0);

	uint8_t c10[10] = { SCSI_MODE_SENSE_10, 0, SCSI_MODE_PAGE_CONTROL };
	hv_put_be16(c10 + 7, 512);
	r = run(c10, 10, 512, &lu);
	expect_good(&r, 8 + 8 + 12);
	assert_int_equal(hv_get_be16(resp), 8 + 8 + 12 - 2);
	assert_int_equal(resp[3], 0x90);
	assert_int_equal(hv_get_be16(resp + 6), 8);
	assert_int_equal(resp[16], 0x0A);
}

static void test_report_luns_request_sense(void **state)
{
	(void)state;
	uint8_t c[12] = { SCSI_REPORT_LUNS };
	hv_put_be32(c + 6, 4096);
	struct hvs_scsi_result r = run(c, 12, 4096, NULL);
	expect_good(&r, 8 + 24);
	assert_int_equal(hv_get_be32(resp), 24);
	assert_int_equal(resp[8 + 1], 0);
	assert_int_equal(resp[16 + 1], 3);
	assert_int_equal(resp[24 + 1], 63);
	hv_put_be32(c + 6, 16); /* truncated list, full length reported */
	r = run(c, 12, 4096, &lu);
	expect_good(&r, 16);
	assert_int_equal(hv_get_be32(resp), 24);
	c[2] = 1;
	r = run(c, 12, 4096, &lu);
	expect_good(&r, 8);
	assert_int_equal(hv_get_be32(resp), 0);
	c[2] = 0x10;
	r = run(c, 12, 4096, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);
	c[2] = 0;
	hv_put_be32(c + 6, 15);
	r = run(c, 12, 4096, &lu);
	ILLEGAL(r, SCSI_ASC_INVALID_FIELD_IN_CDB);

	uint8_t rs[6] = { SCSI_REQUEST_SENSE, 0, 0, 0, 252, 0 };
	r = run(rs, 6, 252, &lu);
	expect_good(&r, 18);
	assert_int_equal(resp[0], 0x70);
	assert_int_equal(resp[2], 0);
	r = run(rs, 6, 252, NULL);
	expect_good(&r, 18);
	assert_int_equal(resp[2], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(resp[12], SCSI_ASC_LUN_NOT_SUPPORTED);
}

static void test_errno_sense(void **state)
{
	(void)state;
	struct hvs_scsi_result r;
	hvs_scsi_sense_errno(&r, -ENOSPC, false);
	expect_sense(&r, SCSI_SENSE_DATA_PROTECT, 0x27, 0x07);
	hvs_scsi_sense_errno(&r, -EDQUOT, false);
	expect_sense(&r, SCSI_SENSE_DATA_PROTECT, 0x27, 0x07);
	hvs_scsi_sense_errno(&r, -EIO, true);
	expect_sense(&r, SCSI_SENSE_MEDIUM_ERROR, 0x11, 0);
	hvs_scsi_sense_errno(&r, -EIO, false);
	expect_sense(&r, SCSI_SENSE_MEDIUM_ERROR, 0x0C, 0);
	hvs_scsi_sense_errno(&r, -EROFS, false);
	expect_sense(&r, SCSI_SENSE_DATA_PROTECT, 0x27, 0);
	hvs_scsi_sense_errno(&r, -ENOMEM, true);
	expect_sense(&r, SCSI_SENSE_HARDWARE_ERROR, 0x44, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_tur_and_unknown, reset),
		cmocka_unit_test_setup(test_inquiry, reset),
		cmocka_unit_test_setup(test_vpd, reset),
		cmocka_unit_test_setup(test_read_capacity, reset),
		cmocka_unit_test_setup(test_rw, reset),
		cmocka_unit_test_setup(test_sync_cache, reset),
		cmocka_unit_test_setup(test_unmap, reset),
		cmocka_unit_test_setup(test_write_same, reset),
		cmocka_unit_test_setup(test_mode_sense, reset),
		cmocka_unit_test_setup(test_report_luns_request_sense, reset),
		cmocka_unit_test_setup(test_errno_sense, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
