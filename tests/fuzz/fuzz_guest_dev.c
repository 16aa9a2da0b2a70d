/*
 * fuzz_guest_dev - the guest device drivers' parsing of what the host
 * writes into their channels, through the whole stack: the guest core on
 * the scripted port (fuzzport.h), the driver registered on the bus as an
 * OS would, and a host whose every message and ring packet comes from the
 * input (FZP_OP_RING packets, FZP_OP_RWAIT for the guest's requests).
 * Built once per driver family (FZ_DEV):
 *
 *   guest_ic   FZ_DEV_IC: heartbeat, shutdown, time sync and KVP - the IC
 *              framework's header checks and NEGOTIATE, every service
 *              body, KVP records (UTF-16 keys and values), and the KVP
 *              store the OS hands back at start (kc_load, untrusted).
 *   guest_storvsc  FZ_DEV_STORVSC: VSTOR completions (initialisation,
 *              versions, properties, sub-channels), SRB completions with
 *              SCSI status and sense, and the SCSI data the host puts in
 *              the guest's buffers (REPORT LUNS, INQUIRY and VPD pages,
 *              READ CAPACITY) during the scan, then block I/O.
 *   guest_netvsc  FZ_DEV_NETVSC: NVSP replies (INIT, receive and send
 *              buffer completions with their sections, subchannel
 *              allocation), send completions with any id, inband notes
 *              (indirection table, VF), transfer-page packets (ranges,
 *              pageset id) carrying RNDIS control replies, status
 *              indications and data packets with per-packet info, during
 *              the bring-up, traffic, control calls, an MTU change and
 *              the teardown.
 *   guest_echo FZ_DEV_ECHO: echoed frames (magic, length, sequence,
 *              padding) for round trips and the stream calls.
 *
 * Input: config bytes (below), then the host script.
 *   IC: c0 bit 3 hibernate allowed, bit 4 time sync passive, bit 5 the
 *       harness fixes the store's checksum trailer; then u16 n and n
 *       bytes: the saved KVP store kc_load returns (n = 0: none).
 *
 *   StorVSC: c0 bit 0 two vCPUs (sub-channels), bit 1 VSTOR 6.0 at most
 *       (else 6.2), bit 2 scan two targets (else one), bit 3 do block I/O
 *       on the first disk found.
 *
 *   NetVSC: c0 bit 0 two vCPUs (two queues, vRSS), bit 1 no send buffer
 *       (bounce pages), bit 2 NVSP 4 at most (else 6.1), bit 3 sends
 *       after the attach, bit 4 control calls, bit 5 a new MTU, bit 6 no
 *       offloads (and MTU 576), bit 7 the OS refuses the first NIC.
 *       Buffers: receive 16 pages (GPADL 0x10001 when the ring's is
 *       0x10000), send 4 pages; rings 4 pages each way.
 *
 *   Echo: c0 bit 0 8 KiB send ring, bit 1 8 KiB receive ring (else 16
 *       KiB), bit 2 stream calls, bit 3 an 8-byte stream buffer.
 *
 * Oracles: the port's (pages the host holds are never freed; the guest's
 * packets are well-formed), ASan/UBSan over the driver, and nothing leaks
 * unrecorded after vmbus_unload (as in fuzz_guest_msg). NetVSC also: a
 * received frame is >= 14 bytes and fits a receive section, on a queue
 * that exists; each send's done callback runs exactly once, before
 * nc_detach (unless the host kept the pages); the counters read in
 * nc_detach add up (frames counted = frames delivered, drops = bad
 * inputs, completions <= packets); every attached NIC is detached by
 * the unload. Echo: see dev_io.
 */
#include "fuzz_common.h"
#include "fuzzport.h"

#include "hv/wire.h"
#include "vmbus/vmbus.h"

#if defined(FZ_DEV_IC)
#include "vmbus/ic.h"
#elif defined(FZ_DEV_STORVSC)
#include "vmbus/storvsc.h"
#elif defined(FZ_DEV_NETVSC)
#include "hv/rndis.h"
#include "vmbus/netvsc.h"
#elif defined(FZ_DEV_ECHO)
#include "vmbus/echo.h"
#else
#error "FZ_DEV_* not set"
#endif

static struct fzp *g_fpp;
#define g_fp (*g_fpp)
static bool g_verbose;



/* ---- a guest wall clock for the port (time sync, KVP) ---------------- */

static int64_t g_wall;

static int64_t wall_get(void *ctx)
{
	(void)ctx;
	return g_wall;
}

static int wall_step(void *ctx, int64_t ns)
{
	(void)ctx;
	g_wall = ns;
	return 0;
}

static int wall_slew(void *ctx, int64_t delta)
{
	(void)ctx;
	g_wall += delta / 2;
	return 0;
}

#if defined(FZ_DEV_IC)

static uint8_t g_blob[65536];
static uint32_t g_blob_len;
static uint8_t g_saved[65536];
static uint32_t g_saved_len;
static unsigned g_actions;

static int kvp_load(void *arg, void *buf, uint32_t size, uint32_t *len)
{
	(void)arg;
	if (g_blob_len == 0)
		return -VMBUS_ENOENT;
	if (g_blob_len > size)
		return -VMBUS_ENOBUFS;
	memcpy(buf, g_blob, g_blob_len);
	*len = g_blob_len;
	return 0;
}

static int kvp_save(void *arg, const void *buf, uint32_t len)
{
	(void)arg;
	FZ_CHECK(len <= sizeof(g_saved), "KVP store of %u bytes", len);
	memcpy(g_saved, buf, len);
	g_saved_len = len;
	return 0;
}

static int net_addrs(void *arg, int family, char *buf, uint32_t size)
{
	(void)arg;
	return snprintf(buf, size, family == 4 ? "10.0.0.2;192.168.1.9"
					       : "fe80::1");
}

static int power(void *arg, enum ic_power_action a)
{
	(void)arg;
	(void)a;
	g_actions++;
	return -VMBUS_ENOSYS;	/* "failed": the guest keeps running */
}

struct dev {
	struct ic_services *ics;
};

static void dev_config(struct dev *d, struct vmbus *vb, struct fz *f)
{
	struct ic_config cfg;
	uint8_t c0 = fz_u8(f);
	uint16_t n = fz_u16(f);

	g_blob_len = (uint32_t)fz_bytes(f, g_blob, n);
	/* bit 5: seal the blob with a correct FNV-1a trailer, so mutated
	 * records get past the frame check to the record parser. */
	if ((c0 & 0x20) && g_blob_len >= 4) {
		uint32_t h = 2166136261u;

		for (uint32_t i = 0; i < g_blob_len - 4; i++)
			h = (h ^ g_blob[i]) * 16777619u;
		hv_put_le32(g_blob + g_blob_len - 4, h);
	}
	g_saved_len = 0;
	g_actions = 0;
	ic_config_init(&cfg);
	cfg.icc_shutdown_action = power;
	cfg.icc_hibernate = (c0 & 8) != 0;
	cfg.icc_timesync_passive = (c0 & 0x10) != 0;
	cfg.icc_kvp.kc_fqdn = "fuzz.example";
	cfg.icc_kvp.kc_os_name = "vmbus-fuzz";
	cfg.icc_kvp.kc_net_addrs = net_addrs;
	cfg.icc_kvp.kc_load = kvp_load;
	cfg.icc_kvp.kc_save = kvp_save;
	cfg.icc_kvp.kc_max_records = 16;
	FZ_CHECK(ic_services_register(vb, &cfg, &d->ics) == 0 ||
		 d->ics == NULL, "IC register");
}

static void dev_report(struct dev *d)
{
	for (int s = 0; s < IC_SVC_COUNT && d->ics; s++) {
		struct ic_stats st;

		if (ic_get_stats(d->ics, (enum ic_service)s, &st) != 0)
			continue;
		fprintf(stderr, "ic %d: attached %d negotiated %d msgs %llu "
			"replies %llu malformed %llu unknown %llu\n", s,
			st.is_attached, st.is_negotiated,
			(unsigned long long)st.is_messages,
			(unsigned long long)st.is_replies,
			(unsigned long long)st.is_malformed,
			(unsigned long long)st.is_unknown);
	}
}

/* After vmbus_destroy (the IC state outlives the bus's pointers). */
static void dev_free(struct dev *d)
{
	const char *dump = getenv("FUZZ_KVP_DUMP");

	ic_services_free(d->ics);
	d->ics = NULL;
	/* The last store the driver saved (to make kc_load seeds). */
	if (dump != NULL && g_saved_len) {
		FILE *fo = fopen(dump, "wb");

		if (fo != NULL) {
			fwrite(g_saved, 1, g_saved_len, fo);
			fclose(fo);
		}
	}
}

#elif defined(FZ_DEV_STORVSC)

static unsigned g_events;

static void disk_event(void *arg, struct storvsc_disk *d, int ev)
{
	(void)arg;
	(void)d;
	(void)ev;
	g_events++;
}

#define SV_BOUNCE_PAGES 32u

struct dev {
	struct storvsc *sv;
	uint8_t flags;
};

/*
 * Pages the driver keeps on purpose: when a channel teardown fails, each
 * queue's bounce pool stays with the host and struct storvsc_stats
 * st_leaked_pages counts it (the rings are in the core's bs_leaked_pages).
 * Read after vmbus_unload, before storvsc_destroy.
 * (corpus/guest_storvsc/regress-attach-failure-leak-uncounted: a failed
 * attach whose teardown failed too once lost this count.)
 */
static uint64_t dev_uncounted(struct dev *d, const struct vmbus_stats *st)
{
	struct storvsc_stats ss;

	(void)st;
	FZ_CHECK(storvsc_get_stats(d->sv, &ss) == 0, "storvsc_get_stats");
	return ss.st_leaked_pages;
}

static uint32_t dev_vcpus(const uint8_t *data, size_t size)
{
	return size && (data[0] & 1) ? 2 : 1;
}

static void dev_config(struct dev *d, struct vmbus *vb, struct fz *f)
{
	struct storvsc_config cfg;

	d->flags = fz_u8(f);
	memset(&cfg, 0, sizeof(cfg));
	cfg.sc_max_version = (d->flags & 2) ? 0x0600 : 0;
	cfg.sc_ring_bytes = 4 * 4096;
	cfg.sc_queue_depth = 8;
	cfg.sc_bounce_pages = SV_BOUNCE_PAGES;
	cfg.sc_init_timeout_ns = 20000000;
	cfg.sc_io_timeout_ns = 20000000;
	cfg.sc_scan_paths = 1;
	cfg.sc_scan_targets = (d->flags & 4) ? 2 : 1;
	cfg.sc_disk_event = disk_event;
	g_events = 0;
	FZ_CHECK(storvsc_create(vb, &cfg, &d->sv) == 0, "storvsc_create");
}

/* Between polls: the driver's housekeeping. */
static void dev_tick(struct dev *d)
{
	storvsc_tick(d->sv);
}

/* After the script: block I/O on the first disk (its completions and the
 * data come from the script too, if it goes on). */
static void dev_io(struct dev *d)
{
	struct storvsc_disk *disk;
	/* One block each way: the host chose the block size (the driver
	 * takes 512 B to 64 KiB, and a rescan may change it), and the
	 * caller's buffer must hold a block (storvsc.h): the largest. */
	const uint32_t len = 65536;
	uint8_t *buf;

	if (!(d->flags & 8) || (disk = storvsc_disk_get(d->sv, 0)) == NULL)
		return;
	buf = storvsc_buf_alloc(d->sv, len);
	if (buf != NULL) {
		(void)storvsc_read_sync(disk, 0, 1, buf);
		(void)storvsc_write_sync(disk, 1, 1, buf);
		(void)storvsc_flush_sync(disk);
		storvsc_buf_free(d->sv, buf, len);
	}
	storvsc_disk_put(disk);
}

static void dev_report(struct dev *d)
{
	fprintf(stderr, "storvsc: %u disk events\n", g_events);
	(void)d;
}

/* After vmbus_unload: every controller is detached. */
static void dev_free(struct dev *d)
{
	FZ_CHECK(storvsc_destroy(d->sv) == 0, "storvsc_destroy refused");
	d->sv = NULL;
}

#elif defined(FZ_DEV_NETVSC)

#define NV_COOKIES 8u

/* What the OS side saw, reset per input. */
static struct {
	uint64_t rx_frames;		/* of the NIC attached now */
	uint64_t links;
	uint32_t attached, detached;
	uint8_t  cookie[NV_COOKIES];	/* 0 idle, 1 sent, 2 done */
	void    *gpa_page;		/* the caller's memory of a GPA send */
	uint64_t gpa_pfn;
	bool     gpa_kept;		/* the host may still own it */
	bool     fail_attach;
} g_nv;

static void nv_rx(void *arg, struct netvsc_dev *nd, uint32_t q,
		  const void *frame, uint32_t len,
		  const struct netvsc_rx_info *ri)
{
	struct netvsc_info ni;
	const volatile uint8_t *b = frame;
	uint8_t x = 0;

	(void)arg;
	FZ_CHECK(netvsc_get_info(nd, &ni) == 0, "netvsc_get_info");
	FZ_CHECK(q < ni.ni_queues, "frame on queue %u of %u", q, ni.ni_queues);
	FZ_CHECK(len >= NETVSC_ETHER_HDR_LEN && len <= ni.ni_recv_section_size,
		 "frame of %u bytes (receive sections of %u)", len,
		 ni.ni_recv_section_size);
	FZ_CHECK((ri->ri_flags & ~0x03F3u) == 0, "rx flags 0x%x", ri->ri_flags);
	/* Every byte readable (ASan: the frame lies in live memory). */
	for (uint32_t i = 0; i < len; i++)
		x ^= b[i];
	(void)x;
	g_nv.rx_frames++;
}

static void nv_link(void *arg, struct netvsc_dev *nd,
		    const struct netvsc_link *nl)
{
	(void)arg;
	(void)nd;
	FZ_CHECK(nl->nl_event >= NETVSC_LINK_EV_CONNECT &&
		 nl->nl_event <= NETVSC_LINK_EV_NETWORK_CHANGE,
		 "link event %u", nl->nl_event);
	g_nv.links++;
}

static void nv_tx_done(void *cookie, int status)
{
	uintptr_t i = (uintptr_t)cookie;

	FZ_CHECK(i < NV_COOKIES && g_nv.cookie[i] == 1,
		 "send %u completed twice or never sent", (unsigned)i);
	FZ_CHECK(status == 0 || status == -VMBUS_EIO ||
		 status == -VMBUS_ENODEV, "send status %d", status);
	g_nv.cookie[i] = 2;
}

static const struct netvsc_callbacks nv_cbs = {
	.rx = nv_rx,
	.link = nv_link,
};

static int nv_attached(void *arg, struct netvsc_dev *nd)
{
	(void)arg;
	g_nv.attached++;
	g_nv.rx_frames = 0;
	netvsc_set_callbacks(nd, &nv_cbs, NULL);
	if (g_nv.fail_attach && g_nv.attached == 1)
		return -VMBUS_EIO;	/* the OS refuses the first NIC */
	return 0;
}

/* The last callback for nd: its counters are consistent and every send
 * with a done callback has had it (unless the host kept the memory). */
static void nv_detached(void *arg, struct netvsc_dev *nd)
{
	struct netvsc_stats st;
	const struct netvsc_queue_stats *t = &st.ns_total;
	uint64_t hard;

	(void)arg;
	g_nv.detached++;
	FZ_CHECK(netvsc_get_stats(nd, &st) == 0, "netvsc_get_stats");
	FZ_CHECK(t->qs_rx_frames == g_nv.rx_frames,
		 "%llu frames counted, %llu delivered",
		 (unsigned long long)t->qs_rx_frames,
		 (unsigned long long)g_nv.rx_frames);
	hard = t->qs_rx_bad_pkt + t->qs_rx_bad_range + t->qs_rx_bad_ppi +
	       t->qs_rx_no_callback;
	FZ_CHECK(t->qs_rx_drops >= hard &&
		 t->qs_rx_drops <= hard + t->qs_rx_bad_rndis,
		 "%llu drops for %llu + %llu bad inputs",
		 (unsigned long long)t->qs_rx_drops, (unsigned long long)hard,
		 (unsigned long long)t->qs_rx_bad_rndis);
	FZ_CHECK(t->qs_tx_done <= t->qs_tx_frames &&
		 t->qs_tx_errors <= t->qs_tx_done,
		 "%llu sends, %llu completed, %llu failed",
		 (unsigned long long)t->qs_tx_frames,
		 (unsigned long long)t->qs_tx_done,
		 (unsigned long long)t->qs_tx_errors);
	FZ_CHECK(t->qs_rx_comp_sent <= t->qs_rx_xfer_pkts &&
		 t->qs_rx_comp_fail <= t->qs_rx_xfer_pkts,
		 "%llu receive completions for %llu packets",
		 (unsigned long long)t->qs_rx_comp_sent,
		 (unsigned long long)t->qs_rx_xfer_pkts);
	for (uint32_t i = 0; i < NV_COOKIES && st.ns_leaked_pages == 0; i++)
		FZ_CHECK(g_nv.cookie[i] != 1, "send %u never completed", i);
}

struct dev {
	uint8_t flags;
	struct vmbus *vb;
};

static uint32_t dev_vcpus(const uint8_t *data, size_t size)
{
	return size && (data[0] & 1) ? 2 : 1;
}

static void dev_config(struct dev *d, struct vmbus *vb, struct fz *f)
{
	struct netvsc_config cfg;

	d->flags = fz_u8(f);
	d->vb = vb;
	memset(&g_nv, 0, sizeof(g_nv));
	g_nv.fail_attach = (d->flags & 0x80) != 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.nc_tx_ring_bytes = 4 * 4096;
	cfg.nc_rx_ring_bytes = 4 * 4096;
	cfg.nc_recv_buf_bytes = 16 * 4096;
	cfg.nc_send_buf_bytes = 4 * 4096;
	cfg.nc_no_send_buf = (d->flags & 2) != 0;
	cfg.nc_max_queues = (d->flags & 1) ? 2 : 1;
	cfg.nc_max_nvsp_version = (d->flags & 4) ? 0x00040000u : 0;
	cfg.nc_offloads = (d->flags & 0x40) ? NETVSC_OFFLOAD_NONE : 0;
	cfg.nc_timeout_ns = 20000000;
	cfg.nc_attach = nv_attached;
	cfg.nc_detach = nv_detached;
	FZ_CHECK(netvsc_register(vb, &cfg) == 0, "netvsc_register");
}

static void dev_tick(struct dev *d)
{
	(void)d;
}

/* One send: copied (done NULL) or with a done callback (cookie c). */
static void nv_send1(struct netvsc_dev *nd, const void *p, uint32_t len,
		     const struct netvsc_tx_meta *meta, int c)
{
	struct netvsc_frag fr = { p, len };
	int r;

	if (c >= 0)
		g_nv.cookie[c] = 1;
	r = netvsc_send(nd, NETVSC_QUEUE_AUTO, &fr, 1, meta,
			c >= 0 ? nv_tx_done : NULL,
			(void *)(uintptr_t)(c >= 0 ? c : 0));
	if (c >= 0 && r != 0) {
		FZ_CHECK(g_nv.cookie[c] == 1, "done called for a failed send");
		g_nv.cookie[c] = 0;
	}
}

/*
 * After the script: the OS uses the NIC (its answers come from the rest
 * of the script). flags bit 3: sends (copied, by section run, by GPA from
 * the caller's page, with offload meta); bit 4: control calls (query,
 * set, keepalive, reset, filter); bit 5: a new MTU (the whole bring-up
 * again).
 */
static void dev_io(struct dev *d)
{
	struct netvsc_dev *nd;
	struct netvsc_info ni;
	static uint8_t frame[6000];
	uint8_t out[64];
	uint32_t outlen, st, v, det0 = g_nv.detached;
	bool ar;

	nd = netvsc_get(d->vb, 0);
	if (nd == NULL || netvsc_get_info(nd, &ni) != 0)
		return;
	/* A call that waits may end with the NIC detached (a rescind the
	 * call's wait processed detaches as the call returns: docs/netvsc.md);
	 * as an OS must, stop using the handle after nc_detach. */
#define NV_GONE() (g_nv.detached != det0)
	if (d->flags & 8) {
		struct netvsc_tx_meta m;

		memset(frame, 0xff, 6);
		for (uint32_t i = 6; i < sizeof(frame); i++)
			frame[i] = (uint8_t)i;
		nv_send1(nd, frame, 60, NULL, -1);
		nv_send1(nd, frame, 1514, NULL, -1);
		nv_send1(nd, frame, 60, NULL, 1);
		memset(&m, 0, sizeof(m));
		m.tm_flags = NETVSC_TX_VLAN | NETVSC_TX_HASH;
		m.tm_vlan_tci = 5;
		m.tm_hash = 0x1234;
		if (ni.ni_offloads & NETVSC_OFFLOAD_TCP4_CSUM) {
			m.tm_flags |= NETVSC_TX_IPV4 | NETVSC_TX_CSUM_TCP;
			m.tm_l4_offset = 34;
		}
		nv_send1(nd, frame, 200, &m, 2);
		/* From a page of the port: the host reads it by GPA. */
		g_nv.gpa_page = g_fp.fp_plat.page_alloc(g_fp.fp_plat.ctx, 1,
							&g_nv.gpa_pfn);
		if (g_nv.gpa_page != NULL) {
			memcpy(g_nv.gpa_page, frame, 4096);
			nv_send1(nd, g_nv.gpa_page, 4096 > ni.ni_mtu + 14 ?
				 ni.ni_mtu + 14 : 4096, NULL, -1);
			g_nv.cookie[3] = 1;
			{
				struct netvsc_frag fr[2] = {
					{ g_nv.gpa_page, 1000 },
					{ g_nv.gpa_page + 2000, 400 },
				};

				if (netvsc_send(nd, 0, fr, 2, NULL, nv_tx_done,
						(void *)(uintptr_t)3) != 0)
					g_nv.cookie[3] = 0;
			}
		}
		(void)netvsc_wait_tx(nd, 0, 2000000);
		if (NV_GONE())
			return;
	}
	if (d->flags & 0x10) {
		outlen = sizeof(out);
		(void)netvsc_query(nd, OID_GEN_VENDOR_ID, NULL, 0, out, &outlen,
				   &st);
		if (NV_GONE())
			return;
		v = 0;
		(void)netvsc_set(nd, OID_GEN_CURRENT_PACKET_FILTER, &v,
				 sizeof(v), &st);
		if (NV_GONE())
			return;
		(void)netvsc_keepalive(nd);
		if (NV_GONE())
			return;
		(void)netvsc_reset(nd, &ar);
		if (NV_GONE())
			return;
		(void)netvsc_up(nd);
		if (NV_GONE())
			return;
		(void)netvsc_down(nd);
		if (NV_GONE())
			return;
	}
	if (d->flags & 0x20)
		(void)netvsc_set_mtu(nd, (d->flags & 0x40) ? 576 : 9000);
#undef NV_GONE
}

static void dev_report(struct dev *d)
{
	struct netvsc_dev *nd = netvsc_get(d->vb, 0);
	struct netvsc_stats st;

	fprintf(stderr, "netvsc: %u attached, %u detached, %llu link "
		"changes\n", g_nv.attached, g_nv.detached,
		(unsigned long long)g_nv.links);
	if (nd != NULL && netvsc_get_stats(nd, &st) == 0)
		fprintf(stderr, "netvsc: rx %llu frames %llu xfer %llu drops, "
			"tx %llu frames %llu done, %llu bad completions, "
			"%llu indications\n",
			(unsigned long long)st.ns_total.qs_rx_frames,
			(unsigned long long)st.ns_total.qs_rx_xfer_pkts,
			(unsigned long long)st.ns_total.qs_rx_drops,
			(unsigned long long)st.ns_total.qs_tx_frames,
			(unsigned long long)st.ns_total.qs_tx_done,
			(unsigned long long)st.ns_total.qs_bad_completions,
			(unsigned long long)st.ns_status_indications);
}

/*
 * Pages kept on purpose: what the NICs leaked (netvsc_leaked_pages: also
 * those of a failed attach, which has no nc_detach; corpus/guest_netvsc/
 * regress-attach-failure-leak-uncounted), and the caller's page of a GPA
 * send whose done never came because the host kept it.
 */
static uint64_t dev_uncounted(struct dev *d, const struct vmbus_stats *st)
{
	(void)st;
	FZ_CHECK(g_nv.attached == g_nv.detached + (g_nv.fail_attach &&
						   g_nv.attached ? 1u : 0u),
		 "%u NICs attached, %u detached after unload",
		 g_nv.attached, g_nv.detached);
	g_nv.gpa_kept = g_nv.gpa_page != NULL && g_nv.cookie[3] == 1;
	return netvsc_leaked_pages(d->vb) + (g_nv.gpa_kept ? 1u : 0u);
}

static void dev_free(struct dev *d)
{
	netvsc_unregister(d->vb);
	if (g_nv.gpa_page != NULL && !g_nv.gpa_kept)
		g_fp.fp_plat.page_free(g_fp.fp_plat.ctx, g_nv.gpa_page, 1);
	g_nv.gpa_page = NULL;
}

#elif defined(FZ_DEV_ECHO)

struct dev {
	uint8_t flags;
	struct vmbus *vb;
};

static uint32_t dev_vcpus(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 1;
}

static void dev_config(struct dev *d, struct vmbus *vb, struct fz *f)
{
	struct echo_config cfg;

	d->flags = fz_u8(f);
	d->vb = vb;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ec_tx_ring_bytes = (d->flags & 1) ? 8192 : 16384;
	cfg.ec_rx_ring_bytes = (d->flags & 2) ? 8192 : 16384;
	FZ_CHECK(echo_register(vb, &cfg) == 0, "echo_register");
}

static void dev_tick(struct dev *d)
{
	(void)d;
}

/*
 * After the script: round trips and a stream on the first echo device
 * (the echoes come from the rest of the script). Oracles: a successful
 * round trip returns exactly what was sent; a stream payload fits the
 * buffer, -ENOBUFS reports a larger size; no more echoes are received
 * than were sent.
 */
static void dev_io(struct dev *d)
{
	struct echo_dev *ed = echo_get(d->vb, 0);
	struct echo_stats st;
	static uint8_t in[2048], out[2048];
	uint32_t max, len;
	int r;

	if (ed == NULL)
		return;
	max = echo_max_payload(ed);
	FZ_CHECK(max <= 16384, "max payload %u", max);
	for (uint32_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7u + 3u);
	for (uint32_t k = 0; k < 3; k++) {
		uint32_t n = k == 0 ? 0 : k == 1 ? 24 : 1000;

		len = sizeof(out);
		memset(out, 0, sizeof(out));
		r = echo_roundtrip(ed, in, n, out, &len, 5000000);
		if (r == 0) {
			FZ_CHECK(len == n && memcmp(out, in, n) == 0,
				 "round trip of %u bytes returned %u", n, len);
		}
	}
	for (uint32_t k = 0; k < 4 && (d->flags & 4); k++)
		(void)echo_stream_send(ed, in, 8u * k);
	for (uint32_t k = 0; k < 6 && (d->flags & 4); k++) {
		uint32_t cap = (d->flags & 8) ? 8 : sizeof(out);

		len = cap;
		r = echo_stream_recv(ed, out, &len);
		if (r == -VMBUS_EAGAIN)
			r = echo_stream_wait(ed, false, 2000000);
		else if (r == 0)
			FZ_CHECK(len <= cap, "stream payload of %u bytes in "
				 "a buffer of %u", len, cap);
		else if (r == -VMBUS_ENOBUFS)
			FZ_CHECK(len > cap, "ENOBUFS with %u bytes", len);
	}
	(void)echo_stream_wait(ed, true, 1000000);
	echo_get_stats(ed, &st);
	FZ_CHECK(st.es_received <= st.es_sent,
		 "%llu echoes received for %llu sent",
		 (unsigned long long)st.es_received,
		 (unsigned long long)st.es_sent);
	FZ_CHECK(echo_channel(ed) != NULL, "echo channel");
}

static void dev_report(struct dev *d)
{
	fprintf(stderr, "echo: %u devices\n", echo_count(d->vb));
}

static uint64_t dev_uncounted(struct dev *d, const struct vmbus_stats *st)
{
	(void)st;
	FZ_CHECK(echo_count(d->vb) == 0, "%u echo devices after unload",
		 echo_count(d->vb));
	return 0;
}

static void dev_free(struct dev *d)
{
	echo_unregister(d->vb);
}
#endif

#if defined(FZ_DEV_IC)
static uint64_t dev_uncounted(struct dev *d, const struct vmbus_stats *st)
{
	(void)d;
	(void)st;
	return 0;
}

static uint32_t dev_vcpus(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 1;
}

static void dev_tick(struct dev *d)
{
	(void)d;
}

static void dev_io(struct dev *d)
{
	(void)d;
}
#endif

/* One input, after the set-up. */
static __attribute__((noinline)) void run_input(struct fz *f, struct dev *devp)
{
	struct vmbus_config cfg;
	struct vmbus_stats st;
	struct vmbus *vb = NULL;
	uint64_t uncounted;

#define dev (*devp)
	g_fp.fp_plat.wallclock_get = wall_get;
	g_fp.fp_plat.wallclock_step = wall_step;
	g_fp.fp_plat.wallclock_slew = wall_slew;
	g_wall = 1700000000ll * 1000000000ll;

	memset(&cfg, 0, sizeof(cfg));
	cfg.vc_timeout_ns = 50000000;	/* 50 ticks of the port clock */
	cfg.vc_max_channels = 16;
	cfg.vc_max_relid = 64;
	FZ_CHECK(vmbus_create(&g_fp.fp_plat, &cfg, &vb) == 0, "create");
	dev_config(&dev, vb, f);
	/* The rest of the input is the host. */
	g_fp.fp_s = f->p;
	g_fp.fp_slen = fz_left(f);

	if (vmbus_connect(vb) == 0) {
		for (unsigned i = 0; i < 4096 && (i < 8 || (!fzp_done(&g_fp) &&
							     !fzp_stuck(&g_fp)));
		     i++) {
			fzp_pump(&g_fp);
			fzp_advance(&g_fp);
			vmbus_poll(vb);
			dev_tick(&dev);
		}
		dev_io(&dev);
	}
	if (g_verbose)
		dev_report(&dev);
	(void)vmbus_unload(vb);
	vmbus_get_stats(vb, &st);
	vmbus_destroy(vb);
	uncounted = dev_uncounted(&dev, &st);
	dev_free(&dev);
	if (g_verbose)
		fprintf(stderr, "guest_dev: script %zu/%zu, ring drops %llu, "
			"leaked %llu\n", g_fp.fp_spos, g_fp.fp_slen,
			(unsigned long long)g_fp.fp_ring_drops,
			(unsigned long long)st.bs_leaked_pages);
	FZ_CHECK(g_fp.fp_pages_live == st.bs_leaked_pages + uncounted,
		 "%llu pages still allocated, %llu counted as leaked by the "
		 "core + %llu by the driver", (unsigned long long)g_fp.fp_pages_live,
		 (unsigned long long)st.bs_leaked_pages,
		 (unsigned long long)uncounted);
#undef dev
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dev *devp;
	struct fz f;

	g_verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (g_fpp == NULL && (g_fpp = malloc(sizeof(*g_fpp))) == NULL)
		abort();
	devp = calloc(1, sizeof(struct dev));
	if (devp == NULL)
		abort();
	fz_init(&f, data, size);
	fzp_init(&g_fp, dev_vcpus(data, size), 0, NULL, 0);
	run_input(&f, devp);
	fzp_fini(&g_fp);
	free(devp);
	return 0;
}
