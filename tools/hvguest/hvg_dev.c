/*
 * tools/hvguest/hvg_dev.c - the storage and network devices of the
 * reference guest (--full): the StorVSC driver with its disks (listed with
 * vendor, product and capacity, a read check of LBA 0..7 and, with
 * --disk-selftest, a write/read-back of the last 8 blocks that puts the
 * old contents back) and the NetVSC driver with its NICs (brought up,
 * listed with MAC, MTU, link, NVSP version and queues; received frames
 * counted).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/guid.h"
#include "hv/nvsp.h"
#include "hvg_net.h"
#include "hvguest.h"
#include "vmbus/netvsc.h"
#include "vmbus/storvsc.h"

#define MAX_DISK_REPORT 64u

/* ---- NIC table ------------------------------------------------------------ */

struct nic {
	struct netvsc_dev *n_nd;	/* NULL: free slot */
	uint32_t n_index;		/* nicN, in attach order */
	bool n_need_up;			/* attached, netvsc_up not tried yet */
	int n_up_result;
	struct hvg_netif *n_if;		/* lwIP interface, or NULL */
	_Atomic uint64_t n_rx_frames;
	_Atomic uint64_t n_rx_bytes;
	_Atomic uint64_t n_link_events;
};

static pthread_mutex_t nic_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nic nics[NETVSC_MAX_DEVICES];
static uint32_t nic_next_index;

/* --net-selftest frames: broadcast, IEEE local experimental EtherType,
 * then a text naming the sender. */
#define TEST_ETHERTYPE	0x88B5u
#define TEST_MAGIC	"hvguest test frame from nic"

/* Disk errors during discovery (optional commands a disk refuses) are not
 * news; the status line counts errors after it. */
static uint64_t disk_err_base;

/* Per-disk results of the boot-time checks, for the JSON report. */
static struct {
	int read_check;			/* 0 ok, else the error */
	int selftest;			/* 0 ok, 1 not run, else the error */
	bool valid;
} disk_checks[MAX_DISK_REPORT];

static const char *nvsp_name(uint32_t v, char *buf, size_t size)
{
	switch (v) {
	case NVSP_PROTOCOL_VERSION_1: return "1";
	case NVSP_PROTOCOL_VERSION_2: return "2";
	case NVSP_PROTOCOL_VERSION_4: return "4";
	case NVSP_PROTOCOL_VERSION_5: return "5";
	case NVSP_PROTOCOL_VERSION_6: return "6";
	case NVSP_PROTOCOL_VERSION_61: return "6.1";
	default:
		snprintf(buf, size, "%#x", v);
		return buf;
	}
}

static void mac_str(const uint8_t *m, char *out, size_t size)
{
	snprintf(out, size, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
	    m[3], m[4], m[5]);
}

static void speed_str(uint64_t bps, char *out, size_t size)
{
	if (bps == 0)
		snprintf(out, size, "speed unknown");
	else if (bps >= 1000000000ull)
		snprintf(out, size, "%.1f Gbit/s", (double)bps / 1e9);
	else
		snprintf(out, size, "%.0f Mbit/s", (double)bps / 1e6);
}

static void on_rx(void *arg, struct netvsc_dev *nd, uint32_t q,
    const void *frame, uint32_t len, const struct netvsc_rx_info *ri)
{
	struct nic *n = arg;
	const uint8_t *f = frame;
	size_t ml = sizeof(TEST_MAGIC) - 1;

	(void)nd;
	(void)q;
	atomic_fetch_add(&n->n_rx_frames, 1);
	atomic_fetch_add(&n->n_rx_bytes, len);
	hvg_netif_rx(n->n_if, frame, len, ri);
	/* A --net-selftest frame (ours or another guest's): say so. */
	if (len >= 14 + ml + 1 && f[12] == (TEST_ETHERTYPE >> 8) &&
	    f[13] == (TEST_ETHERTYPE & 0xFFu) && memcmp(f + 14, TEST_MAGIC,
	    ml) == 0) {
		char who[8];
		size_t i;

		for (i = 0; i < sizeof(who) - 1 && 14 + ml + i < len &&
		    f[14 + ml + i] >= '0' && f[14 + ml + i] <= '9'; i++)
			who[i] = (char)f[14 + ml + i];
		who[i] = '\0';
		hvg_event("nic%u: received a test frame from nic%s "
		    "(%02x:%02x:%02x:%02x:%02x:%02x)", n->n_index, who, f[6],
		    f[7], f[8], f[9], f[10], f[11]);
	}
}

static void on_link(void *arg, struct netvsc_dev *nd,
    const struct netvsc_link *nl)
{
	struct nic *n = arg;
	char sp[32];

	(void)nd;
	atomic_fetch_add(&n->n_link_events, 1);
	hvg_netif_link(n->n_if, nl);
	speed_str(nl->nl_speed_bps, sp, sizeof(sp));
	hvg_event("nic%u: link %s, %s%s", n->n_index,
	    nl->nl_up ? "up" : "down", sp,
	    nl->nl_event == NETVSC_LINK_EV_NETWORK_CHANGE ?
	    " (network changed)" : "");
}

static const struct netvsc_callbacks nic_cbs = { on_rx, on_link, NULL };

static int nic_attach(void *arg, struct netvsc_dev *nd)
{
	struct nic *n = NULL;

	(void)arg;
	pthread_mutex_lock(&nic_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		if (nics[i].n_nd == NULL) {
			n = &nics[i];
			break;
		}
	}
	if (n != NULL) {
		memset(n, 0, sizeof(*n));
		n->n_nd = nd;
		n->n_index = nic_next_index++;
		n->n_need_up = true;
	}
	pthread_mutex_unlock(&nic_mu);
	if (n == NULL)
		return -VMBUS_ENOSPC;
	/* NOTE: no NIC lock held here: the netif attach takes lwIP's core
	 * lock (hvg_net.h's lock order). Callbacks are not installed yet. */
	n->n_if = hvg_netif_attach(nd, n->n_index);
	netvsc_set_callbacks(nd, &nic_cbs, n);
	return 0;
}

static void nic_detach(void *arg, struct netvsc_dev *nd)
{
	struct hvg_netif *ni = NULL;

	(void)arg;
	pthread_mutex_lock(&nic_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		if (nics[i].n_nd != nd)
			continue;
		if (g.booted && !g.unloading)
			hvg_event("nic%u: removed by the host (rx %llu "
			    "frames)", nics[i].n_index, (unsigned long long)
			    atomic_load(&nics[i].n_rx_frames));
		nics[i].n_nd = NULL;
		ni = nics[i].n_if;
		nics[i].n_if = NULL;
	}
	pthread_mutex_unlock(&nic_mu);
	/* nd is freed when we return: lwIP lets go of it first (outside
	 * nic_mu, see hvg_net.h). */
	hvg_netif_detach(ni);
}

/* nic_mu held. Open the interface and print what it is. */
static void nic_bring_up(struct nic *n)
{
	struct netvsc_info ni;
	char mac[24], sp[32], vb[16];

	n->n_need_up = false;
	n->n_up_result = netvsc_up(n->n_nd);
	if (netvsc_get_info(n->n_nd, &ni) != 0)
		return;
	mac_str(ni.ni_cur_mac, mac, sizeof(mac));
	speed_str(ni.ni_link_speed_bps, sp, sizeof(sp));
	hvg_event("nic%u: MAC %s, MTU %u, link %s (%s), NVSP %s (NDIS "
	    "%u.%u), %u queue(s), relid %u%s", n->n_index, mac, ni.ni_mtu,
	    ni.ni_link_up ? "up" : "down", sp,
	    nvsp_name(ni.ni_nvsp_version, vb, sizeof(vb)),
	    ni.ni_ndis_version >> 16, ni.ni_ndis_version & 0xFFFFu,
	    ni.ni_queues, vmbus_chan_relid(ni.ni_channel),
	    n->n_up_result ? ", FAILED to open" : "");
	if (n->n_up_result)
		hvg_event("nic%u: netvsc_up failed (%d)", n->n_index,
		    n->n_up_result);
	else
		hvg_netif_up(n->n_if);
}

/* nic_mu held. --net-selftest: one broadcast frame naming this NIC. */
static void nic_send_test(struct nic *n)
{
	struct netvsc_frag fg;
	struct netvsc_info ni;
	uint8_t fr[64];
	int r;

	if (!g.opt.net_selftest || n->n_up_result != 0 ||
	    netvsc_get_info(n->n_nd, &ni) != 0)
		return;
	memset(fr, 0, sizeof(fr));
	memset(fr, 0xFF, 6);
	memcpy(fr + 6, ni.ni_cur_mac, 6);
	fr[12] = TEST_ETHERTYPE >> 8;
	fr[13] = TEST_ETHERTYPE & 0xFFu;
	snprintf((char *)fr + 14, sizeof(fr) - 14, "%s%u", TEST_MAGIC,
	    n->n_index);
	fg.nf_data = fr;
	fg.nf_len = sizeof(fr);
	/* done == NULL: copied into the send buffer, fr is ours again. */
	r = netvsc_send(n->n_nd, 0, &fg, 1, NULL, NULL, NULL);
	hvg_event("nic%u: sent a broadcast test frame%s", n->n_index,
	    r ? " - FAILED" : "");
	if (r)
		n->n_up_result = r;
}

/* ---- disks ------------------------------------------------------------------ */

static void disk_event(void *arg, struct storvsc_disk *d, int ev)
{
	struct storvsc_disk_info di;

	(void)arg;
	if (!g.booted || g.unloading || storvsc_disk_info(d, &di) != 0)
		return;
	hvg_event("disk %u:%u:%u: %s by the host: %s %s, %llu blocks x %u B",
	    di.di_path, di.di_target, di.di_lun,
	    ev == STORVSC_DISK_ADDED ? "added" :
	    ev == STORVSC_DISK_REMOVED ? "removed" : "changed",
	    di.di_vendor, di.di_product, (unsigned long long)di.di_blocks,
	    di.di_block_size);
}

static void size_str(uint64_t bytes, char *out, size_t size)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int i = 0;

	while (v >= 1024.0 && i < 4) {
		v /= 1024.0;
		i++;
	}
	snprintf(out, size, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* A pattern no disk holds by accident: block number and byte offset. */
static void fill_pattern(uint8_t *b, uint64_t lba, uint32_t nblocks,
    uint32_t bs, uint32_t salt)
{
	for (uint32_t k = 0; k < nblocks; k++)
		for (uint32_t i = 0; i < bs; i++)
			b[(size_t)k * bs + i] = (uint8_t)((lba + k) * 131u +
			    i * 7u + salt + (i >> 8));
}

/*
 * Write a pattern over the last 8 blocks, read it back and compare, then
 * put the old contents back and flush. Returns 0 or an error.
 */
/* An I/O buffer kept on purpose (the host may still write it): counted
 * for the fault-report line. */
static void buf_leaked(const void *buf, size_t bytes)
{
	if (buf != NULL)
		atomic_fetch_add(&g.leaked_pages, (bytes + 4095) / 4096);
}

static int disk_selftest(struct storvsc_disk *d,
    const struct storvsc_disk_info *di, uint32_t idx)
{
	uint32_t bs = di->di_block_size, nb = 8;
	uint64_t lba = di->di_blocks - nb;
	size_t bytes = (size_t)nb * bs;
	uint8_t *old = storvsc_buf_alloc(g.sv, bytes);
	uint8_t *pat = storvsc_buf_alloc(g.sv, bytes);
	uint8_t *back = storvsc_buf_alloc(g.sv, bytes);
	const char *step = "read";
	int r = -VMBUS_ENOMEM;

	if (old == NULL || pat == NULL || back == NULL)
		goto out;
	fill_pattern(pat, lba, nb, bs, (uint32_t)hvg_now_ns());
	r = storvsc_read_sync(d, lba, nb, old);
	if (r == 0) {
		step = "write";
		r = storvsc_write_sync(d, lba, nb, pat);
	}
	if (r == 0) {
		step = "read back";
		r = storvsc_read_sync(d, lba, nb, back);
	}
	if (r == 0 && memcmp(pat, back, bytes) != 0) {
		step = "compare";
		r = -VMBUS_EIO;
	}
	/* Put the old blocks back even when the compare failed. */
	if (r == 0 || strcmp(step, "compare") == 0) {
		int r2 = storvsc_write_sync(d, lba, nb, old);

		if (r2 == 0)
			r2 = storvsc_flush_sync(d);
		if (r == 0 && r2 != 0) {
			step = "restore";
			r = r2;
		}
	}
	if (r == 0)
		hvg_event("disk%u: self-test LBA %llu..%llu: write, read back, "
		    "compare, restore ok", idx, (unsigned long long)lba,
		    (unsigned long long)(lba + nb - 1));
	else
		hvg_event("disk%u: self-test LBA %llu..%llu FAILED at %s: %s "
		    "(%d)", idx, (unsigned long long)lba,
		    (unsigned long long)(lba + nb - 1), step,
		    storvsc_strerror(r), r);
out:
	if (r == -VMBUS_ENOMEM && old == NULL)
		hvg_event("disk%u: self-test: no memory", idx);
	/* A buffer the host may still hold (timeout) is leaked on purpose. */
	if (r != -VMBUS_ETIMEDOUT && r != -VMBUS_EPROTO) {
		if (old)
			storvsc_buf_free(g.sv, old, bytes);
		if (pat)
			storvsc_buf_free(g.sv, pat, bytes);
		if (back)
			storvsc_buf_free(g.sv, back, bytes);
	} else {
		buf_leaked(old, bytes);
		buf_leaked(pat, bytes);
		buf_leaked(back, bytes);
	}
	return r;
}

static int disk_report(uint32_t idx)
{
	struct storvsc_disk *d = storvsc_disk_get(g.sv, idx);
	struct storvsc_disk_info di;
	char sz[32];
	uint32_t nb;
	uint8_t *buf;
	size_t bytes;
	int r, fails = 0;

	if (d == NULL)
		return 0;
	if (storvsc_disk_info(d, &di) != 0) {
		storvsc_disk_put(d);
		return 0;
	}
	size_str(di.di_blocks * di.di_block_size, sz, sizeof(sz));
	hvg_event("disk%u: %s %u:%u:%u, \"%s\" \"%s\" rev \"%s\", %llu blocks "
	    "x %u B (%s)%s%s, VSTOR %u.%u, %u queue(s)", idx,
	    di.di_ide ? "ide" : "scsi", di.di_path, di.di_target, di.di_lun,
	    di.di_vendor, di.di_product, di.di_revision,
	    (unsigned long long)di.di_blocks, di.di_block_size, sz,
	    di.di_write_protected ? ", read-only" : "",
	    di.di_thin ? ", thin" : "", di.di_vstor_version >> 8,
	    di.di_vstor_version & 0xFFu, di.di_queues);

	if (idx < MAX_DISK_REPORT) {
		disk_checks[idx].valid = true;
		disk_checks[idx].selftest = 1;
	}
	/* Read check: the first (up to) 8 blocks. */
	nb = di.di_blocks < 8 ? (uint32_t)di.di_blocks : 8u;
	bytes = (size_t)nb * di.di_block_size;
	if (nb == 0 || di.di_block_size == 0) {
		hvg_event("disk%u: no capacity: read check skipped", idx);
		storvsc_disk_put(d);
		return 0;
	}
	buf = storvsc_buf_alloc(g.sv, bytes);
	r = buf ? storvsc_read_sync(d, 0, nb, buf) : -VMBUS_ENOMEM;
	if (r == 0)
		hvg_event("disk%u: read check LBA 0..%u ok", idx, nb - 1);
	else
		hvg_event("disk%u: read check LBA 0..%u FAILED: %s (%d)", idx,
		    nb - 1, storvsc_strerror(r), r);
	if (buf && r != -VMBUS_ETIMEDOUT && r != -VMBUS_EPROTO)
		storvsc_buf_free(g.sv, buf, bytes);
	else
		buf_leaked(buf, bytes);
	if (r != 0)
		fails++;
	if (idx < MAX_DISK_REPORT)
		disk_checks[idx].read_check = r;

	if (g.opt.disk_selftest) {
		if (di.di_write_protected) {
			hvg_event("disk%u: self-test skipped: write protected",
			    idx);
		} else if (di.di_blocks < 8) {
			hvg_event("disk%u: self-test skipped: fewer than 8 "
			    "blocks", idx);
		} else {
			r = disk_selftest(d, &di, idx);
			if (r != 0)
				fails++;
			if (idx < MAX_DISK_REPORT)
				disk_checks[idx].selftest = r;
		}
	}
	storvsc_disk_put(d);
	return fails;
}

/* ---- entry points ------------------------------------------------------------- */

int hvg_dev_register(void)
{
	struct storvsc_config sc;
	struct netvsc_config nc;
	int r;

	/* lwIP first: NICs attach (and get a netif) during the connect. */
	if (!g.opt.no_ip && hvg_net_init() != 0)
		hvg_event("net: no IP stack (lwIP did not start)");

	memset(&sc, 0, sizeof(sc));
	sc.sc_disk_event = disk_event;
	r = storvsc_create(g.vb, &sc, &g.sv);
	if (r != 0) {
		fprintf(stderr, "hvguest: storvsc: %d\n", r);
		return r;
	}
	memset(&nc, 0, sizeof(nc));
	nc.nc_attach = nic_attach;
	nc.nc_detach = nic_detach;
	r = netvsc_register(g.vb, &nc);
	if (r != 0) {
		fprintf(stderr, "hvguest: netvsc: %d\n", r);
		return r;
	}
	g.net = true;
	return 0;
}

int hvg_dev_report(void)
{
	struct storvsc_ctrl_info ci;
	uint32_t n = 0;
	int fails = 0;

	if (g.sv == NULL)
		return 0;
	while (storvsc_ctrl_info(g.sv, n, &ci) == 0)
		n++;
	hvg_event("storage: %u controller(s), %u disk(s)", n,
	    storvsc_disk_count(g.sv));
	{
		struct storvsc_stats ss;

		if (storvsc_get_stats(g.sv, &ss) == 0)
			disk_err_base = ss.st_io_errors;
	}
	for (uint32_t i = 0; i < storvsc_disk_count(g.sv); i++)
		fails += disk_report(i);

	pthread_mutex_lock(&nic_mu);
	n = 0;
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++)
		n += nics[i].n_nd != NULL;
	hvg_event("network: %u NIC(s)", n);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		if (nics[i].n_nd != NULL && nics[i].n_need_up) {
			nic_bring_up(&nics[i]);
			if (nics[i].n_up_result)
				fails++;
		}
	}
	/* Every NIC is open before any test frame goes out, so NICs on
	 * one switch see each other's. */
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		if (nics[i].n_nd == NULL || nics[i].n_up_result)
			continue;
		nic_send_test(&nics[i]);
		if (nics[i].n_up_result)
			fails++;
	}
	pthread_mutex_unlock(&nic_mu);
	return fails;
}

void hvg_dev_tick(void)
{
	if (g.sv != NULL)
		storvsc_tick(g.sv);
	pthread_mutex_lock(&nic_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		if (nics[i].n_nd != NULL && nics[i].n_need_up && !g.unloading) {
			hvg_event("nic%u: added by the host", nics[i].n_index);
			nic_bring_up(&nics[i]);
			nic_send_test(&nics[i]);
		}
	}
	pthread_mutex_unlock(&nic_mu);
}

int hvg_dev_protocol(const struct vmbus_chan_info *ci, char *buf,
    size_t size)
{
	struct storvsc_ctrl_info sci;
	int found = 0;

	if (ci->ci_sub_index != 0)
		return 0;
	if (g.sv != NULL && (hv_guid_equal(&ci->ci_class, &HV_GUID_STORVSC) ||
	    hv_guid_equal(&ci->ci_class, &HV_GUID_IDE))) {
		for (uint32_t i = 0; storvsc_ctrl_info(g.sv, i, &sci) == 0; i++) {
			if (!hv_guid_equal(&sci.ci_instance, &ci->ci_instance))
				continue;
			snprintf(buf, size, "VSTOR %u.%u, %u queue(s), %u "
			    "disk(s)", sci.ci_version >> 8,
			    sci.ci_version & 0xFFu, sci.ci_queues,
			    sci.ci_disks);
			return 1;
		}
		return 0;
	}
	if (!g.net || !hv_guid_equal(&ci->ci_class, &HV_GUID_NETVSC))
		return 0;
	pthread_mutex_lock(&nic_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES && !found; i++) {
		struct vmbus_chan_info pci;
		struct netvsc_info ni;
		char vb[16];

		if (nics[i].n_nd == NULL ||
		    netvsc_get_info(nics[i].n_nd, &ni) != 0 ||
		    vmbus_chan_get_info(ni.ni_channel, &pci) != 0 ||
		    !hv_guid_equal(&pci.ci_instance, &ci->ci_instance))
			continue;
		snprintf(buf, size, "NVSP %s (NDIS %u.%u), %u queue(s), nic%u",
		    nvsp_name(ni.ni_nvsp_version, vb, sizeof(vb)),
		    ni.ni_ndis_version >> 16, ni.ni_ndis_version & 0xFFFFu,
		    ni.ni_queues, nics[i].n_index);
		found = 1;
	}
	pthread_mutex_unlock(&nic_mu);
	return found;
}

void hvg_dev_status(char *buf, size_t size)
{
	struct storvsc_stats ss;
	char r[32], w[32];

	if (g.sv != NULL && storvsc_get_stats(g.sv, &ss) == 0) {
		size_str(ss.st_bytes_read, r, sizeof(r));
		size_str(ss.st_bytes_written, w, sizeof(w));
		hvg_append(buf, size, ", disk %u: %llu I/Os (%s read, %s "
		    "written, %llu errors)", storvsc_disk_count(g.sv),
		    (unsigned long long)ss.st_ios, r, w,
		    (unsigned long long)(ss.st_io_errors - disk_err_base));
	}
	if (!g.net)
		return;
	pthread_mutex_lock(&nic_mu);
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		struct netvsc_stats ns;
		struct netvsc_info ni;

		if (nics[i].n_nd == NULL ||
		    netvsc_get_stats(nics[i].n_nd, &ns) != 0 ||
		    netvsc_get_info(nics[i].n_nd, &ni) != 0)
			continue;
		hvg_append(buf, size, ", nic%u %s: rx %llu frames %llu B, "
		    "tx %llu frames, %llu drops", nics[i].n_index,
		    ni.ni_link_up ? "up" : "down",
		    (unsigned long long)atomic_load(&nics[i].n_rx_frames),
		    (unsigned long long)atomic_load(&nics[i].n_rx_bytes),
		    (unsigned long long)ns.ns_total.qs_tx_frames,
		    (unsigned long long)ns.ns_total.qs_rx_drops);
	}
	pthread_mutex_unlock(&nic_mu);
}

int hvg_dev_nic_snap(uint32_t slot, struct hvg_nic_snap *out)
{
	int r = -1;

	memset(out, 0, sizeof(*out));
	if (slot >= NETVSC_MAX_DEVICES || !g.net)
		return -1;
	pthread_mutex_lock(&nic_mu);
	if (nics[slot].n_nd != NULL &&
	    netvsc_get_info(nics[slot].n_nd, &out->sn_info) == 0 &&
	    netvsc_get_stats(nics[slot].n_nd, &out->sn_stats) == 0) {
		out->sn_index = nics[slot].n_index;
		out->sn_has_if = hvg_netif_get_info(nics[slot].n_if,
		    &out->sn_if) == 0;
		r = 0;
	}
	pthread_mutex_unlock(&nic_mu);
	return r;
}

void hvg_dev_json(void)
{
	char vendor[64], product[64], mac[24], vb[16];
	uint32_t n;

	if (g.sv != NULL) {
		n = storvsc_disk_count(g.sv);
		printf("  \"disks\": [");
		for (uint32_t i = 0; i < n; i++) {
			struct storvsc_disk *d = storvsc_disk_get(g.sv, i);
			struct storvsc_disk_info di;

			if (d == NULL)
				continue;
			if (storvsc_disk_info(d, &di) != 0) {
				storvsc_disk_put(d);
				continue;
			}
			storvsc_disk_put(d);
			hvg_json_str(vendor, sizeof(vendor), di.di_vendor);
			hvg_json_str(product, sizeof(product), di.di_product);
			printf("%s\n    {\"index\": %u, \"ide\": %s, \"lun\": "
			    "\"%u:%u:%u\", \"vendor\": \"%s\", \"product\": "
			    "\"%s\", \"blocks\": %llu, \"block_size\": %u, "
			    "\"read_only\": %s, \"vstor\": \"%u.%u\", "
			    "\"queues\": %u", i ? "," : "", i,
			    di.di_ide ? "true" : "false", di.di_path,
			    di.di_target, di.di_lun, vendor, product,
			    (unsigned long long)di.di_blocks,
			    di.di_block_size,
			    di.di_write_protected ? "true" : "false",
			    di.di_vstor_version >> 8,
			    di.di_vstor_version & 0xFFu, di.di_queues);
			if (i < MAX_DISK_REPORT && disk_checks[i].valid) {
				printf(", \"read_check\": %d",
				    disk_checks[i].read_check);
				if (disk_checks[i].selftest != 1)
					printf(", \"selftest\": %d",
					    disk_checks[i].selftest);
			}
			printf("}");
		}
		printf("%s],\n", n ? "\n  " : "");
	}
	if (!g.net)
		return;
	printf("  \"nics\": [");
	pthread_mutex_lock(&nic_mu);
	n = 0;
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++) {
		struct netvsc_info ni;

		if (nics[i].n_nd == NULL ||
		    netvsc_get_info(nics[i].n_nd, &ni) != 0)
			continue;
		mac_str(ni.ni_cur_mac, mac, sizeof(mac));
		printf("%s\n    {\"index\": %u, \"mac\": \"%s\", \"mtu\": %u, "
		    "\"link_up\": %s, \"link_speed_bps\": %llu, \"nvsp\": "
		    "\"%s\", \"ndis\": \"%u.%u\", \"queues\": %u, \"up\": %d, "
		    "\"rx_frames\": %llu}", n++ ? "," : "", nics[i].n_index,
		    mac, ni.ni_mtu, ni.ni_link_up ? "true" : "false",
		    (unsigned long long)ni.ni_link_speed_bps,
		    nvsp_name(ni.ni_nvsp_version, vb, sizeof(vb)),
		    ni.ni_ndis_version >> 16, ni.ni_ndis_version & 0xFFFFu,
		    ni.ni_queues, nics[i].n_up_result,
		    (unsigned long long)atomic_load(&nics[i].n_rx_frames));
	}
	pthread_mutex_unlock(&nic_mu);
	printf("%s],\n", n ? "\n  " : "");
}

uint64_t hvg_dev_nic_leaked(void)
{
	return g.net ? netvsc_leaked_pages(g.vb) : 0;
}

uint64_t hvg_dev_storvsc_leaked(void)
{
	struct storvsc_stats ss;

	if (g.sv == NULL || storvsc_get_stats(g.sv, &ss) != 0)
		return 0;
	return ss.st_leaked_pages;
}

void hvg_dev_free(void)
{
	hvg_net_stop();
	if (g.net)
		netvsc_unregister(g.vb);
	g.net = false;
	if (g.sv != NULL && storvsc_destroy(g.sv) == 0)
		g.sv = NULL;
}
