/*
 * fuzz_host_scsi - the host storage VSP's SCSI target
 * (src/host/scsi/scsi_target.c): every CDB a guest can send, against a
 * logical unit of fuzzed geometry, and the parameter lists of UNMAP and
 * WRITE SAME (hvs_scsi_unmap_params / hvs_scsi_write_same). The target is
 * pure (no I/O, no guest memory), so it is called directly, exactly as the
 * storage VSP does with its private copy of the SRB.
 *
 * Input: cfg u8 (bit 0: 4096-byte blocks, else 512; bit 1 read-only;
 * bit 2 thin (UNMAP); bit 3 write cache; bit 4 no LU at the address;
 * bit 5 nblocks << 20), nblocks u32, max transfer blocks u16, max unmap
 * blocks u16, max unmap descriptors u8, physical block shift u8, the
 * initiator's buffer length u32, n u8 then n LUN numbers, the CDB length
 * u8 and 16 CDB bytes, then the data-out bytes (UNMAP parameter list /
 * WRITE SAME block).
 *
 * Oracles: the data phase never exceeds the initiator's buffer nor the
 * response buffer; medium I/O is block-aligned, inside the medium and
 * within the transfer limit; nothing writes or deallocates a read-only or
 * a thick LU; CHECK CONDITION always carries fixed-format sense; UNMAP
 * extents are inside the medium and within the descriptor limit.
 */
#include "fuzz_common.h"

#include "host/scsi/scsi_target.h"

static void check_medium(const struct hvs_scsi_lu *lu,
			 const struct hvs_scsi_result *r, const char *what)
{
	uint64_t end = lu->lu_nblocks * lu->lu_block_size;

	FZ_CHECK(r->sr_offset % lu->lu_block_size == 0 &&
		 r->sr_bytes % lu->lu_block_size == 0,
		 "%s: unaligned %llu+%llu", what,
		 (unsigned long long)r->sr_offset,
		 (unsigned long long)r->sr_bytes);
	FZ_CHECK(r->sr_offset <= end && r->sr_bytes <= end - r->sr_offset,
		 "%s: %llu+%llu past the medium end %llu", what,
		 (unsigned long long)r->sr_offset,
		 (unsigned long long)r->sr_bytes, (unsigned long long)end);
}

static void check_result(const struct hvs_scsi_cmd *c,
			 const struct hvs_scsi_result *r)
{
	const struct hvs_scsi_lu *lu = c->sc_lu;

	FZ_CHECK(r->sr_xfer <= c->sc_xfer_len, "data phase %u > buffer %u",
		 r->sr_xfer, c->sc_xfer_len);
	FZ_CHECK(r->sr_dir == HVS_SCSI_DIR_NONE || r->sr_dir == HVS_SCSI_DIR_IN ||
		 r->sr_dir == HVS_SCSI_DIR_OUT, "direction %d", r->sr_dir);
	switch (r->sr_action) {
	case HVS_SCSI_COMPLETE:
		FZ_CHECK(r->sr_xfer <= HVS_SCSI_RESP_MAX, "response of %u",
			 r->sr_xfer);
		if (r->sr_status == SCSI_STATUS_CHECK_CONDITION)
			FZ_CHECK(r->sr_sense_len == SCSI_SENSE_FIXED_SIZE &&
				 (r->sr_sense[0] & 0x7F) == 0x70,
				 "CHECK CONDITION with sense %u/0x%x",
				 r->sr_sense_len, r->sr_sense[0]);
		else
			FZ_CHECK(r->sr_sense_len == 0, "sense with status 0x%x",
				 r->sr_status);
		break;
	case HVS_SCSI_READ:
	case HVS_SCSI_WRITE:
	case HVS_SCSI_DISCARD:
		FZ_CHECK(lu != NULL, "medium I/O without a LU");
		check_medium(lu, r, "read/write/discard");
		FZ_CHECK(r->sr_bytes <= (uint64_t)lu->lu_max_xfer_blocks *
					 lu->lu_block_size ||
			 r->sr_action == HVS_SCSI_DISCARD,
			 "%llu bytes past the transfer limit",
			 (unsigned long long)r->sr_bytes);
		if (r->sr_action != HVS_SCSI_READ)
			FZ_CHECK(!lu->lu_ro, "write to a read-only LU");
		if (r->sr_action == HVS_SCSI_DISCARD)
			FZ_CHECK(lu->lu_unmap, "discard on a thick LU");
		break;
	case HVS_SCSI_FLUSH:
		FZ_CHECK(lu != NULL, "flush without a LU");
		break;
	case HVS_SCSI_UNMAP:
		FZ_CHECK(lu != NULL && !lu->lu_ro && lu->lu_unmap,
			 "UNMAP accepted on a read-only or thick LU");
		break;
	case HVS_SCSI_WRITE_SAME:
		FZ_CHECK(lu != NULL && !lu->lu_ro, "WRITE SAME on read-only");
		break;
	default:
		FZ_CHECK(0, "action %d", r->sr_action);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[HVS_SCSI_RESP_MAX];
	struct hvs_scsi_lu lu;
	struct hvs_scsi_cmd c;
	struct hvs_scsi_result r;
	uint8_t cfg, luns[256], cdb[16], nluns;
	struct fz f;

	fz_init(&f, data, size);
	cfg = fz_u8(&f);
	memset(&lu, 0, sizeof(lu));
	lu.lu_block_size = (cfg & 1) ? 4096 : 512;
	lu.lu_ro = (cfg & 2) != 0;
	lu.lu_unmap = (cfg & 4) != 0;
	lu.lu_wce = (cfg & 8) != 0;
	lu.lu_nblocks = fz_u32(&f);
	if (cfg & 0x20)
		lu.lu_nblocks <<= 20;
	if (lu.lu_nblocks == 0)
		lu.lu_nblocks = 1;
	lu.lu_max_xfer_blocks = fz_u16(&f);
	if (lu.lu_max_xfer_blocks == 0)
		lu.lu_max_xfer_blocks = 1;
	lu.lu_max_unmap_blocks = fz_u16(&f);
	lu.lu_max_unmap_desc = fz_u8(&f) % 64u + 1u;
	lu.lu_phys_block_size = lu.lu_block_size << (fz_u8(&f) & 3u);
	lu.lu_serial = "FUZZ-SERIAL-0001";
	lu.lu_id = 0x6001405f00d00001ull;

	memset(&c, 0, sizeof(c));
	c.sc_xfer_len = fz_u32(&f);
	nluns = fz_u8(&f);
	fz_bytes(&f, luns, nluns);
	c.sc_luns = luns;
	c.sc_nluns = nluns;
	c.sc_cdb_len = fz_u8(&f) % 16u + 1u;
	fz_bytes(&f, cdb, sizeof(cdb));
	c.sc_cdb = cdb;
	c.sc_lu = (cfg & 0x10) ? NULL : &lu;

	memset(&r, 0, sizeof(r));
	hvs_scsi_execute(&c, resp, sizeof(resp), &r);
	check_result(&c, &r);

	if (r.sr_action == HVS_SCSI_UNMAP) {
		uint32_t n = r.sr_xfer;
		uint8_t *p = malloc(n ? n : 1);
		struct hvs_scsi_extent *ext =
			calloc(lu.lu_max_unmap_desc, sizeof(*ext));
		int k;

		if (p == NULL || ext == NULL)
			abort();
		fz_bytes(&f, p, n);
		k = hvs_scsi_unmap_params(&lu, p, n, ext, lu.lu_max_unmap_desc,
					  &r);
		FZ_CHECK(k <= (int)lu.lu_max_unmap_desc, "%d extents", k);
		if (k < 0)
			check_result(&c, &r);
		for (int i = 0; i < k; i++) {
			uint64_t end = lu.lu_nblocks * lu.lu_block_size;

			FZ_CHECK(ext[i].se_offset % lu.lu_block_size == 0 &&
				 ext[i].se_bytes % lu.lu_block_size == 0 &&
				 ext[i].se_offset <= end &&
				 ext[i].se_bytes <= end - ext[i].se_offset,
				 "extent %d: %llu+%llu of %llu", i,
				 (unsigned long long)ext[i].se_offset,
				 (unsigned long long)ext[i].se_bytes,
				 (unsigned long long)end);
		}
		free(p);
		free(ext);
	} else if (r.sr_action == HVS_SCSI_WRITE_SAME) {
		uint8_t *block = NULL;

		FZ_CHECK(r.sr_xfer == 0 || r.sr_xfer == lu.lu_block_size,
			 "WRITE SAME data-out of %u", r.sr_xfer);
		if (r.sr_xfer) {
			block = malloc(r.sr_xfer);
			if (block == NULL)
				abort();
			fz_bytes(&f, block, r.sr_xfer);
		}
		hvs_scsi_write_same(&lu, block, &r);
		check_result(&c, &r);
		if (r.sr_action == HVS_SCSI_WRITE && r.sr_bytes <= (1u << 20)) {
			uint8_t *dst = malloc(r.sr_bytes ? r.sr_bytes : 1);

			if (dst == NULL)
				abort();
			hvs_scsi_fill_pattern(dst, r.sr_bytes, block,
					      lu.lu_block_size);
			free(dst);
		}
		free(block);
	}
	return 0;
}
