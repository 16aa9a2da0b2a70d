/*
 * src/guest/storvsc/storvsc_disk.c - logical units: discovery (REPORT
 * LUNS, INQUIRY with VPD pages 0x00/0x80/0x83/0xB0/0xB1/0xB2, READ
 * CAPACITY 16 with fallback to 10, MODE SENSE for write protection),
 * rescans on the host's request (spec 3.7), disk references, and the
 * public disk and I/O API.
 *
 * Every response is read into private memory (the bounce pool copies it
 * out of shared pages once) and parsed only within the byte count the
 * host reported, itself clamped to what was asked.
 */
#include "storvsc_priv.h"

#define SV_INQ_LEN		96u
#define SV_VPD_LEN		252u
#define SV_RLUN_LEN		(8u + 8u * 256u)
#define SV_SCAN_BUF		4096u
#define SV_SEQ_SCAN_LUNS	STORVSC_PREWIN8_MAX_LUNS	/* no REPORT LUNS */

/* One LUN found by a scan. */
struct sv_found {
	uint8_t f_path, f_target, f_lun;
	struct storvsc_disk_info f_info;
	struct storvsc_disk *f_disk;	/* new object, or NULL */
	bool    f_changed;
};

/* ---- one SCSI command during discovery ---- */

static int sv_cmd(struct storvsc_ctrl *ct, uint8_t path, uint8_t target,
    uint8_t lun, const uint8_t *cdb, uint8_t cdb_len, uint8_t dir,
    void *buf, uint32_t len, uint32_t *got)
{
	struct sv_target t;
	struct storvsc_io io;
	int r;

	vmbus_memset(&t, 0, sizeof(t));
	t.t_path = path;
	t.t_target = target;
	t.t_lun = lun;
	t.t_block = 512;
	t.t_scan = true;
	vmbus_memset(&io, 0, sizeof(io));
	io.io_op = STORVSC_OP_SCSI;
	vmbus_memcpy(io.io_cdb, cdb, cdb_len);
	io.io_cdb_len = cdb_len;
	io.io_dir = dir;
	io.io_buf = buf;
	io.io_len = len;
	/* Discovery must not sit out the long I/O timeout per command. */
	io.io_timeout_ns = ct->ct_sv->sv_cfg.sc_init_timeout_ns;
	if (buf != NULL && len != 0)
		vmbus_memset(buf, 0, len);
	r = storvsc_io_sync_tgt(ct, &t, &io);
	if (got != NULL)
		*got = r == 0 ? (uint32_t)io.io_bytes : 0;
	return r;
}

static int sv_inquiry(struct storvsc_ctrl *ct, uint8_t path, uint8_t target,
    uint8_t lun, bool evpd, uint8_t page, uint8_t *buf, uint32_t len,
    uint32_t *got)
{
	uint8_t cdb[6] = { SCSI_INQUIRY, 0, 0, 0, 0, 0 };
	int r;

	if (evpd) {
		cdb[1] = SCSI_INQUIRY_EVPD;
		cdb[2] = page;
	}
	hv_put_be16(&cdb[3], (uint16_t)len);
	r = sv_cmd(ct, path, target, lun, cdb, sizeof(cdb), STORVSC_DIR_IN,
	    buf, len, got);
	if (r == 0 && evpd) {
		uint32_t plen;

		/* The page must be the one asked for; its length bounds
		 * what we parse. */
		if (*got < 4 || buf[1] != page)
			return -VMBUS_EIO;
		plen = 4u + hv_get_be16(&buf[2]);
		if (plen < *got)
			*got = plen;
	}
	return r;
}

/* Copy a space-padded ASCII field, trimmed and made printable. */
static void sv_ascii(char *dst, size_t dstsz, const uint8_t *src, size_t n)
{
	size_t a = 0, b = n, o = 0;

	while (a < b && (src[a] == ' ' || src[a] == 0))
		a++;
	while (b > a && (src[b - 1] == ' ' || src[b - 1] == 0))
		b--;
	for (size_t i = a; i < b && o + 1 < dstsz; i++)
		dst[o++] = (src[i] >= 0x20 && src[i] < 0x7F) ? (char)src[i] : '.';
	dst[o] = 0;
}

static bool sv_has_vpd(const struct storvsc_disk_info *di, uint8_t page)
{
	for (uint32_t i = 0; i < di->di_vpd_count; i++)
		if (di->di_vpd_pages[i] == page)
			return true;
	return false;
}

/* VPD 0x83: the best logical-unit designator (NAA > EUI-64 > SCSI name >
 * T10 vendor id). */
static void sv_parse_devid(struct storvsc_disk_info *di, const uint8_t *b,
    uint32_t got)
{
	static const uint8_t rank[16] = { [1] = 1, [2] = 3, [3] = 4, [8] = 2 };
	uint32_t best = 0;

	for (uint32_t off = 4; off + 4 <= got;) {
		const uint8_t *d = &b[off];
		uint32_t dlen = d[3], type = d[1] & 0x0Fu;
		uint32_t assoc = (d[1] >> 4) & 0x3u;

		if (off + 4 + dlen > got)
			break;
		if (assoc == 0 && rank[type] > best && dlen != 0) {
			uint32_t n = dlen < STORVSC_DEVID_MAX ? dlen :
			    STORVSC_DEVID_MAX;

			best = rank[type];
			vmbus_memcpy(di->di_devid, d + 4, n);
			di->di_devid_len = (uint8_t)n;
			di->di_devid_type = (uint8_t)type;
		}
		off += 4 + dlen;
	}
}

static int sv_capacity(struct storvsc_ctrl *ct, uint8_t path, uint8_t target,
    uint8_t lun, struct storvsc_disk_info *di, uint8_t *buf)
{
	uint8_t c16[16] = { SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16 };
	uint8_t c10[10] = { SCSI_READ_CAPACITY_10 };
	uint64_t blocks = 0;
	uint32_t bs = 0, got;
	int r;

	hv_put_be32(&c16[10], SCSI_READ_CAPACITY_16_LEN);
	r = sv_cmd(ct, path, target, lun, c16, sizeof(c16), STORVSC_DIR_IN,
	    buf, SCSI_READ_CAPACITY_16_LEN, &got);
	if (r == 0 && got >= 12) {
		uint64_t last = hv_get_be64(buf);

		blocks = last == UINT64_MAX ? 0 : last + 1;
		bs = hv_get_be32(&buf[8]);
		di->di_capacity16 = true;
		if (got >= 14)
			di->di_physical_block_size = bs << (buf[13] & 0x0Fu);
		if (got >= 15)
			di->di_thin = (buf[14] & 0x80u) != 0;	/* LBPME */
	} else {
		if (r == -VMBUS_ENODEV)
			return r;
		r = sv_cmd(ct, path, target, lun, c10, sizeof(c10),
		    STORVSC_DIR_IN, buf, SCSI_READ_CAPACITY_10_LEN, &got);
		if (r != 0)
			return r;
		if (got < 8)
			return -VMBUS_EIO;
		/* 0xFFFFFFFF: too large for READ CAPACITY(10). */
		if (hv_get_be32(buf) == 0xFFFFFFFFu)
			return -VMBUS_ERANGE;
		blocks = (uint64_t)hv_get_be32(buf) + 1u;
		bs = hv_get_be32(&buf[4]);
		di->di_capacity16 = false;
		di->di_physical_block_size = bs;
	}
	if (bs < 512u || bs > 65536u || (bs & (bs - 1u)) != 0) {
		sv_log(ct->ct_sv, VMBUS_LOG_WARN,
		    "storvsc%u: %u:%u:%u: block size %u unusable",
		    (unsigned)ct->ct_port, (unsigned)path, (unsigned)target,
		    (unsigned)lun, (unsigned)bs);
		blocks = 0;
		bs = 0;
	}
	if (di->di_physical_block_size < bs ||
	    di->di_physical_block_size > (1u << 24))
		di->di_physical_block_size = bs;
	di->di_blocks = blocks;
	di->di_block_size = bs;
	return 0;
}

static void sv_write_protect(struct storvsc_ctrl *ct, uint8_t path,
    uint8_t target, uint8_t lun, struct storvsc_disk_info *di, uint8_t *buf)
{
	/* MODE SENSE(6), all pages, header only: WP is bit 7 of byte 2. */
	uint8_t cdb[6] = { SCSI_MODE_SENSE_6, 0x08u, SCSI_MODE_PAGE_ALL, 0, 4, 0 };
	uint32_t got;

	if (sv_cmd(ct, path, target, lun, cdb, sizeof(cdb), STORVSC_DIR_IN,
	    buf, 4, &got) == 0 && got >= 3)
		di->di_write_protected = (buf[2] & SCSI_MODE_DEVSPEC_WP) != 0;
	else
		di->di_write_protected = false;	/* unknown: not claimed */
}

static void sv_tur(struct storvsc_ctrl *ct, uint8_t path, uint8_t target,
    uint8_t lun)
{
	const uint8_t cdb[6] = { SCSI_TEST_UNIT_READY };

	/* Unit attentions are retried inside; errors are tolerated (L and
	 * F tolerate TEST UNIT READY failures). */
	(void)sv_cmd(ct, path, target, lun, cdb, sizeof(cdb),
	    STORVSC_DIR_NONE, NULL, 0, NULL);
}

/* Everything about one LUN: 0 present, -ENODEV absent, else an error. */
static int sv_probe_lun(struct storvsc_ctrl *ct, uint8_t path,
    uint8_t target, uint8_t lun, struct storvsc_disk_info *di, uint8_t *buf)
{
	uint32_t got = 0;
	int r;

	vmbus_memset(di, 0, sizeof(*di));
	r = sv_inquiry(ct, path, target, lun, false, 0, buf, SV_INQ_LEN, &got);
	if (r != 0)
		return r;
	if (got < 5)
		return -VMBUS_EIO;
	/* Peripheral qualifier 0 only: 1 = not connected, 3 = no LUN. */
	if ((buf[0] >> 5) != 0 || (buf[0] & 0x1Fu) == 0x1Fu)
		return -VMBUS_ENODEV;
	di->di_instance = ct->ct_instance;
	di->di_ide = ct->ct_ide;
	di->di_port = ct->ct_port;
	di->di_path = path;
	di->di_target = target;
	di->di_lun = lun;
	di->di_present = true;
	di->di_peripheral_type = buf[0] & 0x1Fu;
	di->di_removable = (buf[1] & 0x80u) != 0;
	di->di_scsi_version = buf[2];
	if (got >= 16)
		sv_ascii(di->di_vendor, sizeof(di->di_vendor), &buf[8], 8);
	if (got >= 32)
		sv_ascii(di->di_product, sizeof(di->di_product), &buf[16], 16);
	if (got >= 36)
		sv_ascii(di->di_revision, sizeof(di->di_revision), &buf[32], 4);

	sv_tur(ct, path, target, lun);

	/* VPD pages: only those page 0x00 lists (old hosts mishandle the
	 * others, spec 3.7); a failing page is just absent. */
	if (sv_inquiry(ct, path, target, lun, true, SCSI_VPD_SUPPORTED_PAGES,
	    buf, SV_VPD_LEN, &got) == 0) {
		for (uint32_t i = 4; i < got && di->di_vpd_count <
		    sizeof(di->di_vpd_pages); i++)
			di->di_vpd_pages[di->di_vpd_count++] = buf[i];
	}
	if (sv_has_vpd(di, SCSI_VPD_UNIT_SERIAL) &&
	    sv_inquiry(ct, path, target, lun, true, SCSI_VPD_UNIT_SERIAL, buf,
	    SV_VPD_LEN, &got) == 0 && got > 4)
		sv_ascii(di->di_serial, sizeof(di->di_serial), &buf[4],
		    got - 4u);
	if (sv_has_vpd(di, SCSI_VPD_DEVICE_ID) &&
	    sv_inquiry(ct, path, target, lun, true, SCSI_VPD_DEVICE_ID, buf,
	    SV_VPD_LEN, &got) == 0)
		sv_parse_devid(di, buf, got);
	if (sv_has_vpd(di, SCSI_VPD_BLOCK_LIMITS) &&
	    sv_inquiry(ct, path, target, lun, true, SCSI_VPD_BLOCK_LIMITS, buf,
	    SV_VPD_LEN, &got) == 0) {
		if (got >= 16) {
			di->di_vpd_max_transfer_blocks = hv_get_be32(&buf[8]);
			di->di_vpd_opt_transfer_blocks = hv_get_be32(&buf[12]);
		}
		if (got >= 32) {
			di->di_max_unmap_blocks = hv_get_be32(&buf[20]);
			di->di_max_unmap_descriptors = hv_get_be32(&buf[24]);
			di->di_unmap_granularity = hv_get_be32(&buf[28]);
		}
	}
	if (sv_has_vpd(di, SCSI_VPD_BLOCK_CHARACTERISTICS) &&
	    sv_inquiry(ct, path, target, lun, true,
	    SCSI_VPD_BLOCK_CHARACTERISTICS, buf, SV_VPD_LEN, &got) == 0 &&
	    got >= 6)
		di->di_rotation_rate = hv_get_be16(&buf[4]);
	if (sv_has_vpd(di, SCSI_VPD_LOGICAL_BLOCK_PROVISIONING) &&
	    sv_inquiry(ct, path, target, lun, true,
	    SCSI_VPD_LOGICAL_BLOCK_PROVISIONING, buf, SV_VPD_LEN, &got) == 0 &&
	    got >= 6) {
		di->di_lbpu = (buf[5] & 0x80u) != 0;
		di->di_lbpws = (buf[5] & 0x40u) != 0;
	}

	r = sv_capacity(ct, path, target, lun, di, buf);
	if (r == -VMBUS_ENODEV)
		return r;
	sv_write_protect(ct, path, target, lun, di, buf);

	/* UNMAP when the device says so (B2 LBPU), or is thin-provisioned
	 * without a B2 page; limits from B0, else defaults. */
	di->di_discard = di->di_lbpu ||
	    (di->di_thin && !sv_has_vpd(di, SCSI_VPD_LOGICAL_BLOCK_PROVISIONING));
	if (di->di_max_unmap_blocks == 0)
		di->di_max_unmap_blocks = SV_UNMAP_DEFAULT_BLOCKS;
	if (di->di_max_unmap_descriptors == 0 ||
	    di->di_max_unmap_descriptors > SV_UNMAP_MAX_DESC)
		di->di_max_unmap_descriptors = SV_UNMAP_MAX_DESC;
	return 0;
}

/* ---- REPORT LUNS ---- */

/* LUNs of one target into luns[] (single-level, < 256). Returns the count,
 * -ENODEV (no target), or another error (then: sequential scan). */
static int sv_report_luns(struct storvsc_ctrl *ct, uint8_t path,
    uint8_t target, uint8_t *buf, uint8_t *luns, uint32_t max)
{
	uint8_t cdb[12] = { SCSI_REPORT_LUNS };
	uint32_t got, listlen, n = 0;
	int r;

	hv_put_be32(&cdb[6], SV_RLUN_LEN);
	r = sv_cmd(ct, path, target, 0, cdb, sizeof(cdb), STORVSC_DIR_IN, buf,
	    SV_RLUN_LEN, &got);
	if (r != 0)
		return r;
	if (got < 8)
		return -VMBUS_EIO;
	listlen = hv_get_be32(buf);
	if (listlen > got - 8u)
		listlen = got - 8u;	/* truncated: what we have */
	for (uint32_t off = 8; off + 8 <= 8u + listlen && n < max; off += 8) {
		const uint8_t *e = &buf[off];
		uint32_t method = e[0] >> 6, lun;
		bool dup = false;

		/* Peripheral (00b, bus 0) or flat (01b) addressing. */
		if (method == 0 && (e[0] & 0x3Fu) == 0)
			lun = e[1];
		else if (method == 1)
			lun = ((uint32_t)(e[0] & 0x3Fu) << 8) | e[1];
		else
			continue;
		if (lun > 0xFFu)
			continue;
		for (uint32_t i = 0; i < n; i++)
			dup |= luns[i] == lun;
		if (!dup)
			luns[n++] = (uint8_t)lun;
	}
	return (int)n;
}

/* ---- merging a scan into the disk list ---- */

static void sv_event(struct storvsc *sv, struct storvsc_disk *d, int ev)
{
	if (sv->sv_cfg.sc_disk_event != NULL)
		sv->sv_cfg.sc_disk_event(sv->sv_cfg.sc_event_arg, d, ev);
}

static struct storvsc_disk *sv_find_disk(struct storvsc_ctrl *ct,
    uint8_t path, uint8_t target, uint8_t lun)
{
	for (struct storvsc_disk *d = ct->ct_disks; d; d = d->dk_next)
		if (d->dk_path == path && d->dk_target == target &&
		    d->dk_lun == lun)
			return d;
	return NULL;
}

static bool sv_info_changed(const struct storvsc_disk_info *a,
    const struct storvsc_disk_info *b)
{
	return a->di_blocks != b->di_blocks ||
	    a->di_block_size != b->di_block_size ||
	    a->di_write_protected != b->di_write_protected;
}

/* Fill the limits a disk's requests use. */
static void sv_disk_target(const struct storvsc_disk *d, struct sv_target *t)
{
	vmbus_memset(t, 0, sizeof(*t));
	t->t_path = d->dk_path;
	t->t_target = d->dk_target;
	t->t_lun = d->dk_lun;
	t->t_block = atomic_load(&d->dk_block_size);
	t->t_blocks = atomic_load(&d->dk_blocks);
	/* Set once at discovery, never changed: no lock needed. */
	t->t_discard = d->dk_info.di_discard;
	t->t_max_xfer_blocks = d->dk_info.di_vpd_max_transfer_blocks;
	t->t_unmap_blocks = d->dk_info.di_max_unmap_blocks;
	t->t_unmap_desc = d->dk_info.di_max_unmap_descriptors;
}

static void sv_merge(struct storvsc_ctrl *ct, struct sv_found *f, uint32_t nf)
{
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_disk *removed = NULL, *d;

	/* New objects first: allocation may sleep, the lock may not. */
	sv_lock(sv, &sv->sv_lock);
	for (uint32_t i = 0; i < nf; i++)
		f[i].f_changed = sv_find_disk(ct, f[i].f_path, f[i].f_target,
		    f[i].f_lun) == NULL;
	sv_unlock(sv, &sv->sv_lock);
	for (uint32_t i = 0; i < nf; i++) {
		if (!f[i].f_changed)
			continue;
		f[i].f_changed = false;
		d = sv_zalloc(sv, sizeof(*d));
		if (d == NULL)
			continue;	/* next rescan tries again */
		d->dk_ctrl = ct;
		d->dk_path = f[i].f_path;
		d->dk_target = f[i].f_target;
		d->dk_lun = f[i].f_lun;
		d->dk_info = f[i].f_info;
		atomic_store(&d->dk_block_size, f[i].f_info.di_block_size);
		atomic_store(&d->dk_blocks, f[i].f_info.di_blocks);
		atomic_store(&d->dk_present, true);
		f[i].f_disk = d;
	}

	sv_lock(sv, &sv->sv_lock);
	for (d = ct->ct_disks; d != NULL; d = d->dk_next)
		d->dk_seen = false;
	for (uint32_t i = 0; i < nf; i++) {
		struct storvsc_disk *old = sv_find_disk(ct, f[i].f_path,
		    f[i].f_target, f[i].f_lun);

		if (old != NULL) {
			old->dk_seen = true;
			if (sv_info_changed(&old->dk_info, &f[i].f_info)) {
				old->dk_info.di_blocks = f[i].f_info.di_blocks;
				old->dk_info.di_block_size =
				    f[i].f_info.di_block_size;
				old->dk_info.di_write_protected =
				    f[i].f_info.di_write_protected;
				atomic_store(&old->dk_block_size,
				    f[i].f_info.di_block_size);
				atomic_store(&old->dk_blocks,
				    f[i].f_info.di_blocks);
				f[i].f_changed = true;
				old->dk_refs++;		/* for the event */
				f[i].f_disk = old;
			}
			continue;
		}
		d = f[i].f_disk;
		if (d == NULL || atomic_load(&ct->ct_state) != SV_CT_READY ||
		    ct->ct_ndisks >= SV_MAX_DISKS) {
			f[i].f_disk = NULL;
			if (d != NULL)
				sv_free(sv, d, sizeof(*d));
			continue;
		}
		/* The list's reference, one for the event, and the disk's
		 * reference on its controller. */
		d->dk_refs = 2;
		d->dk_seen = true;
		ct->ct_refs++;
		d->dk_next = ct->ct_disks;
		ct->ct_disks = d;
		ct->ct_ndisks++;
	}
	/* Vanished LUNs: unlinked now, reported below. */
	for (struct storvsc_disk **pp = &ct->ct_disks; *pp != NULL;) {
		d = *pp;
		if (d->dk_seen) {
			pp = &d->dk_next;
			continue;
		}
		*pp = d->dk_next;
		ct->ct_ndisks--;
		atomic_store(&d->dk_present, false);
		d->dk_info.di_present = false;
		d->dk_next = removed;
		removed = d;
	}
	sv_unlock(sv, &sv->sv_lock);

	for (uint32_t i = 0; i < nf; i++) {
		if (f[i].f_disk == NULL)
			continue;
		sv_event(sv, f[i].f_disk, f[i].f_changed ?
		    STORVSC_DISK_CHANGED : STORVSC_DISK_ADDED);
		storvsc_disk_put(f[i].f_disk);
	}
	while (removed != NULL) {
		d = removed;
		removed = d->dk_next;
		d->dk_next = NULL;
		sv_log(sv, VMBUS_LOG_INFO, "storvsc%u: %u:%u:%u removed",
		    (unsigned)ct->ct_port, (unsigned)d->dk_path,
		    (unsigned)d->dk_target, (unsigned)d->dk_lun);
		sv_event(sv, d, STORVSC_DISK_REMOVED);
		storvsc_disk_put(d);	/* the list's reference */
	}
}

void storvsc_disks_remove_all(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_disk *removed;

	sv_lock(sv, &sv->sv_lock);
	removed = ct->ct_disks;
	ct->ct_disks = NULL;
	ct->ct_ndisks = 0;
	for (struct storvsc_disk *d = removed; d != NULL; d = d->dk_next) {
		atomic_store(&d->dk_present, false);
		d->dk_info.di_present = false;
	}
	sv_unlock(sv, &sv->sv_lock);
	while (removed != NULL) {
		struct storvsc_disk *d = removed;

		removed = d->dk_next;
		d->dk_next = NULL;
		sv_event(sv, d, STORVSC_DISK_REMOVED);
		storvsc_disk_put(d);
	}
}

/* ---- scanning ---- */

static bool sv_scan_free(void *arg)
{
	struct storvsc_ctrl *ct = arg;

	return !atomic_load(&ct->ct_rescan_running);
}

/*
 * The scan waits by polling the bus, which may run a rescind of this
 * controller on its stack: vmbus_device_enter makes that detach wait for
 * the scan's end (sv_detach would otherwise wait for the scan up its own
 * stack, until sc_init_timeout). The caller holds a reference on ct: the
 * detach in vmbus_device_exit leaves it allocated.
 */
int storvsc_scan(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;
	struct vmbus_device *dev = ct->ct_dev;
	struct sv_found *f;
	uint8_t *buf, luns[256];
	uint32_t nf = 0;
	int r = 0;

	if (vmbus_device_enter(dev) != 0)
		return -VMBUS_ENODEV;
	/* One scan of a controller at a time. */
	while (atomic_exchange(&ct->ct_rescan_running, true)) {
		if (sv_wait(ct, sv_scan_free, ct, sv_now(sv) +
		    4u * sv->sv_cfg.sc_init_timeout_ns) != 0) {
			vmbus_device_exit(dev);
			return -VMBUS_EBUSY;
		}
	}
	f = sv_zalloc(sv, sizeof(*f) * SV_MAX_DISKS);
	buf = sv_zalloc(sv, SV_SCAN_BUF);
	if (f == NULL || buf == NULL) {
		r = -VMBUS_ENOMEM;
		goto out;
	}
	if (ct->ct_ide) {
		/* IDE: one disk, its target named by the instance GUID. */
		int pr = sv_probe_lun(ct, 0, ct->ct_ide_target, 0,
		    &f[0].f_info, buf);

		if (pr == 0) {
			f[0].f_target = ct->ct_ide_target;
			nf = 1;
		} else if (pr != -VMBUS_ENODEV) {
			r = pr;
		}
	} else {
		for (uint32_t path = 0; path < sv->sv_cfg.sc_scan_paths; path++) {
			for (uint32_t tg = 0; tg < sv->sv_cfg.sc_scan_targets;
			    tg++) {
				int n = sv_report_luns(ct, (uint8_t)path,
				    (uint8_t)tg, buf, luns, sizeof(luns));
				bool seq = false;

				if (atomic_load(&ct->ct_state) != SV_CT_READY) {
					r = -VMBUS_ENODEV;
					goto merge;
				}
				if (n == -VMBUS_ENODEV)
					continue;
				if (n < 0) {
					/* No REPORT LUNS: probe in order
					 * until the first hole. */
					seq = true;
					n = SV_SEQ_SCAN_LUNS;
					for (int i = 0; i < n; i++)
						luns[i] = (uint8_t)i;
				}
				for (int i = 0; i < n && nf < SV_MAX_DISKS; i++) {
					struct sv_found *x = &f[nf];
					int pr = sv_probe_lun(ct, (uint8_t)path,
					    (uint8_t)tg, luns[i], &x->f_info,
					    buf);

					if (pr == 0) {
						x->f_path = (uint8_t)path;
						x->f_target = (uint8_t)tg;
						x->f_lun = luns[i];
						nf++;
					} else if (seq) {
						break;
					} else if (pr != -VMBUS_ENODEV &&
					    r == 0) {
						r = pr;
					}
				}
			}
		}
	}
merge:
	if (atomic_load(&ct->ct_state) == SV_CT_READY)
		sv_merge(ct, f, nf);
out:
	sv_free(sv, buf, SV_SCAN_BUF);
	sv_free(sv, f, sizeof(*f) * SV_MAX_DISKS);
	atomic_store(&ct->ct_rescan_running, false);
	sv_wake(ct);
	vmbus_device_exit(dev);
	return r;
}

/* ---- rescans the host asks for ---- */

static void sv_rescan_work(void *arg)
{
	struct storvsc_ctrl *ct = arg;

	storvsc_rescan_run(ct);
	atomic_store(&ct->ct_rescan_scheduled, false);
	/* A request that came while we finished finds nobody scheduled. */
	if (atomic_load(&ct->ct_rescan_pending))
		storvsc_rescan_request(ct, false);
	storvsc_ctrl_put(ct);
}

void storvsc_rescan_request(struct storvsc_ctrl *ct, bool refresh_only)
{
	struct storvsc *sv = ct->ct_sv;
	const struct vmbus_platform *p = sv->sv_plat;
	bool free_it = false;

	(void)refresh_only;	/* a full scan refreshes capacities too */
	atomic_store(&ct->ct_rescan_pending, true);
	if (atomic_load(&ct->ct_state) != SV_CT_READY || p->defer == NULL)
		return;		/* storvsc_tick runs it */
	if (atomic_exchange(&ct->ct_rescan_scheduled, true))
		return;
	sv_lock(sv, &sv->sv_lock);
	ct->ct_refs++;
	sv_unlock(sv, &sv->sv_lock);
	if (p->defer(p->ctx, sv_rescan_work, ct) != 0) {
		atomic_store(&ct->ct_rescan_scheduled, false);
		sv_lock(sv, &sv->sv_lock);
		/* Not the last reference: the controller is attached. */
		storvsc_ctrl_put_locked(ct, &free_it);
		sv_unlock(sv, &sv->sv_lock);
		if (free_it)
			storvsc_ctrl_free(ct);
	}
}

void storvsc_rescan_run(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;

	while (atomic_exchange(&ct->ct_rescan_pending, false)) {
		if (atomic_load(&ct->ct_state) != SV_CT_READY)
			return;
		if (ct->ct_nq > 0) {
			struct storvsc_queue *q = &ct->ct_q[0];

			sv_lock(sv, &q->q_lock);
			q->q_stats.st_rescans++;
			sv_unlock(sv, &q->q_lock);
		}
		(void)storvsc_scan(ct);
	}
}

/* ---- disk references and information ---- */

uint32_t storvsc_disk_count(struct storvsc *sv)
{
	uint32_t n = 0;

	if (sv == NULL)
		return 0;
	sv_lock(sv, &sv->sv_lock);
	for (struct storvsc_ctrl *ct = sv->sv_ctrls; ct; ct = ct->ct_next)
		if (atomic_load(&ct->ct_state) == SV_CT_READY)
			n += ct->ct_ndisks;
	sv_unlock(sv, &sv->sv_lock);
	return n;
}

/* Disks sorted by (path, target, LUN) within a controller. */
static struct storvsc_disk *sv_nth_disk(struct storvsc_ctrl *ct, uint32_t n)
{
	struct storvsc_disk *prev = NULL;

	for (uint32_t i = 0; i <= n; i++) {
		struct storvsc_disk *best = NULL;
		uint32_t pk = 0, bk = 0;

		if (prev != NULL)
			pk = ((uint32_t)prev->dk_path << 16) |
			    ((uint32_t)prev->dk_target << 8) | prev->dk_lun;
		for (struct storvsc_disk *d = ct->ct_disks; d; d = d->dk_next) {
			uint32_t k = ((uint32_t)d->dk_path << 16) |
			    ((uint32_t)d->dk_target << 8) | d->dk_lun;

			if (prev != NULL && k <= pk)
				continue;
			if (best == NULL || k < bk) {
				best = d;
				bk = k;
			}
		}
		if (best == NULL)
			return NULL;
		prev = best;
	}
	return prev;
}

struct storvsc_disk *storvsc_disk_get(struct storvsc *sv, uint32_t idx)
{
	struct storvsc_disk *d = NULL;

	if (sv == NULL)
		return NULL;
	sv_lock(sv, &sv->sv_lock);
	for (struct storvsc_ctrl *ct = sv->sv_ctrls; ct; ct = ct->ct_next) {
		if (atomic_load(&ct->ct_state) != SV_CT_READY)
			continue;
		if (idx < ct->ct_ndisks) {
			d = sv_nth_disk(ct, idx);
			break;
		}
		idx -= ct->ct_ndisks;
	}
	if (d != NULL)
		d->dk_refs++;
	sv_unlock(sv, &sv->sv_lock);
	return d;
}

void storvsc_disk_hold(struct storvsc_disk *d)
{
	struct storvsc *sv;

	if (d == NULL)
		return;
	sv = d->dk_ctrl->ct_sv;
	sv_lock(sv, &sv->sv_lock);
	d->dk_refs++;
	sv_unlock(sv, &sv->sv_lock);
}

void storvsc_disk_put(struct storvsc_disk *d)
{
	struct storvsc_ctrl *ct;
	struct storvsc *sv;
	bool last;

	if (d == NULL)
		return;
	ct = d->dk_ctrl;
	sv = ct->ct_sv;
	sv_lock(sv, &sv->sv_lock);
	last = --d->dk_refs == 0;
	sv_unlock(sv, &sv->sv_lock);
	if (!last)
		return;
	sv_free(sv, d, sizeof(*d));
	storvsc_ctrl_put(ct);
}

int storvsc_disk_info(const struct storvsc_disk *d,
    struct storvsc_disk_info *out)
{
	struct storvsc_ctrl *ct;
	struct storvsc *sv;
	uint32_t nq = 0;

	if (d == NULL || out == NULL)
		return -VMBUS_EINVAL;
	ct = d->dk_ctrl;
	sv = ct->ct_sv;
	sv_lock(sv, &sv->sv_lock);
	*out = d->dk_info;
	out->di_present = atomic_load(&d->dk_present);
	for (uint32_t i = 0; i < ct->ct_nq; i++)
		if (atomic_load(&ct->ct_q[i].q_state) == SV_Q_OPEN)
			nq++;
	sv_unlock(sv, &sv->sv_lock);
	out->di_vstor_version = ct->ct_version;
	out->di_max_transfer = ct->ct_max_xfer;
	if (out->di_vpd_max_transfer_blocks != 0 && out->di_block_size != 0 &&
	    (uint64_t)out->di_vpd_max_transfer_blocks * out->di_block_size <
	    out->di_max_transfer)
		out->di_max_transfer = out->di_vpd_max_transfer_blocks *
		    out->di_block_size;
	out->di_queues = nq;
	out->di_queue_depth = ct->ct_depth;
	return 0;
}

int storvsc_disk_vpd(struct storvsc_disk *d, uint8_t page, void *buf,
    uint32_t *len)
{
	struct storvsc_io io;
	struct sv_target t;
	uint32_t plen;
	uint8_t *b = buf;
	int r;

	if (d == NULL || buf == NULL || len == NULL || *len < 4 ||
	    *len > 4096u)
		return -VMBUS_EINVAL;
	if (!atomic_load(&d->dk_present))
		return -VMBUS_ENODEV;
	sv_disk_target(d, &t);
	vmbus_memset(&io, 0, sizeof(io));
	io.io_op = STORVSC_OP_SCSI;
	io.io_cdb[0] = SCSI_INQUIRY;
	io.io_cdb[1] = SCSI_INQUIRY_EVPD;
	io.io_cdb[2] = page;
	hv_put_be16(&io.io_cdb[3], (uint16_t)*len);
	io.io_cdb_len = SCSI_CDB6_LEN;
	io.io_dir = STORVSC_DIR_IN;
	io.io_buf = buf;
	io.io_len = *len;
	vmbus_memset(buf, 0, *len);
	r = storvsc_io_sync_tgt(d->dk_ctrl, &t, &io);
	if (r != 0)
		return r;
	if (io.io_bytes < 4 || b[1] != page)
		return -VMBUS_EIO;
	plen = 4u + hv_get_be16(&b[2]);
	*len = (uint32_t)(io.io_bytes < plen ? io.io_bytes : plen);
	return 0;
}

int storvsc_disk_refresh(struct storvsc_disk *d)
{
	struct storvsc_ctrl *ct;
	struct storvsc *sv;
	struct storvsc_disk_info di;
	uint8_t *buf;
	bool changed;
	int r;

	if (d == NULL)
		return -VMBUS_EINVAL;
	if (!atomic_load(&d->dk_present))
		return -VMBUS_ENODEV;
	ct = d->dk_ctrl;
	sv = ct->ct_sv;
	buf = sv_zalloc(sv, 64);
	if (buf == NULL)
		return -VMBUS_ENOMEM;
	vmbus_memset(&di, 0, sizeof(di));
	r = sv_capacity(ct, d->dk_path, d->dk_target, d->dk_lun, &di, buf);
	if (r == 0)
		sv_write_protect(ct, d->dk_path, d->dk_target, d->dk_lun, &di,
		    buf);
	sv_free(sv, buf, 64);
	if (r != 0)
		return r;
	sv_lock(sv, &sv->sv_lock);
	changed = sv_info_changed(&d->dk_info, &di);
	if (changed) {
		d->dk_info.di_blocks = di.di_blocks;
		d->dk_info.di_block_size = di.di_block_size;
		d->dk_info.di_write_protected = di.di_write_protected;
		atomic_store(&d->dk_block_size, di.di_block_size);
		atomic_store(&d->dk_blocks, di.di_blocks);
	}
	sv_unlock(sv, &sv->sv_lock);
	if (changed)
		sv_event(sv, d, STORVSC_DISK_CHANGED);
	return 0;
}

/* ---- I/O API ---- */

int storvsc_submit(struct storvsc_disk *d, struct storvsc_io *io)
{
	struct sv_target t;

	if (d == NULL || io == NULL)
		return -VMBUS_EINVAL;
	if (!atomic_load(&d->dk_present))
		return -VMBUS_ENODEV;
	sv_disk_target(d, &t);
	return storvsc_io_submit_tgt(d->dk_ctrl, &t, io);
}

static void sv_io_fill(struct storvsc_io *io, uint32_t op, uint64_t lba,
    uint32_t nblocks, void *buf, storvsc_done_fn *done, void *arg)
{
	io->io_op = op;
	io->io_lba = lba;
	io->io_nblocks = nblocks;
	io->io_buf = buf;
	vmbus_memset(io->io_cdb, 0, sizeof(io->io_cdb));
	io->io_cdb_len = 0;
	io->io_dir = STORVSC_DIR_NONE;
	io->io_len = 0;
	io->io_timeout_ns = 0;
	io->io_done = done;
	io->io_arg = arg;
}

int storvsc_read(struct storvsc_disk *d, struct storvsc_io *io, uint64_t lba,
    uint32_t nblocks, void *buf, storvsc_done_fn *done, void *arg)
{
	if (io == NULL)
		return -VMBUS_EINVAL;
	sv_io_fill(io, STORVSC_OP_READ, lba, nblocks, buf, done, arg);
	return storvsc_submit(d, io);
}

int storvsc_write(struct storvsc_disk *d, struct storvsc_io *io, uint64_t lba,
    uint32_t nblocks, const void *buf, storvsc_done_fn *done, void *arg)
{
	if (io == NULL)
		return -VMBUS_EINVAL;
	/* The driver only reads a WRITE buffer. */
	sv_io_fill(io, STORVSC_OP_WRITE, lba, nblocks, (void *)(uintptr_t)buf,
	    done, arg);
	return storvsc_submit(d, io);
}

int storvsc_flush(struct storvsc_disk *d, struct storvsc_io *io,
    storvsc_done_fn *done, void *arg)
{
	if (io == NULL)
		return -VMBUS_EINVAL;
	sv_io_fill(io, STORVSC_OP_FLUSH, 0, 0, NULL, done, arg);
	return storvsc_submit(d, io);
}

int storvsc_discard(struct storvsc_disk *d, struct storvsc_io *io,
    uint64_t lba, uint32_t nblocks, storvsc_done_fn *done, void *arg)
{
	if (io == NULL)
		return -VMBUS_EINVAL;
	sv_io_fill(io, STORVSC_OP_DISCARD, lba, nblocks, NULL, done, arg);
	return storvsc_submit(d, io);
}

int storvsc_io_sync(struct storvsc_disk *d, struct storvsc_io *io)
{
	struct sv_target t;

	if (d == NULL || io == NULL)
		return -VMBUS_EINVAL;
	if (!atomic_load(&d->dk_present))
		return -VMBUS_ENODEV;
	sv_disk_target(d, &t);
	return storvsc_io_sync_tgt(d->dk_ctrl, &t, io);
}

static int sv_sync_op(struct storvsc_disk *d, uint32_t op, uint64_t lba,
    uint32_t nblocks, void *buf)
{
	struct storvsc_io io;

	vmbus_memset(&io, 0, sizeof(io));
	sv_io_fill(&io, op, lba, nblocks, buf, NULL, NULL);
	return storvsc_io_sync(d, &io);
}

int storvsc_read_sync(struct storvsc_disk *d, uint64_t lba, uint32_t nblocks,
    void *buf)
{
	return sv_sync_op(d, STORVSC_OP_READ, lba, nblocks, buf);
}

int storvsc_write_sync(struct storvsc_disk *d, uint64_t lba, uint32_t nblocks,
    const void *buf)
{
	return sv_sync_op(d, STORVSC_OP_WRITE, lba, nblocks,
	    (void *)(uintptr_t)buf);
}

int storvsc_flush_sync(struct storvsc_disk *d)
{
	return sv_sync_op(d, STORVSC_OP_FLUSH, 0, 0, NULL);
}

int storvsc_discard_sync(struct storvsc_disk *d, uint64_t lba,
    uint32_t nblocks)
{
	return sv_sync_op(d, STORVSC_OP_DISCARD, lba, nblocks, NULL);
}
