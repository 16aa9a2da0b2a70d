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
 * Oracles: the port's (pages the host holds are never freed; the guest's
 * packets are well-formed), ASan/UBSan over the driver, and nothing leaks
 * unrecorded after vmbus_unload (as in fuzz_guest_msg).
 */
#include "fuzz_common.h"
#include "fuzzport.h"

#include "hv/wire.h"
#include "vmbus/vmbus.h"

#if defined(FZ_DEV_IC)
#include "vmbus/ic.h"
#elif defined(FZ_DEV_STORVSC)
#include "vmbus/storvsc.h"
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
	uint8_t *buf;

	if (!(d->flags & 8) || (disk = storvsc_disk_get(d->sv, 0)) == NULL)
		return;
	buf = storvsc_buf_alloc(d->sv, 8192);
	if (buf != NULL) {
		(void)storvsc_read_sync(disk, 0, 1, buf);
		(void)storvsc_write_sync(disk, 1, 1, buf);
		(void)storvsc_flush_sync(disk);
		storvsc_buf_free(d->sv, buf, 8192);
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

#endif

#if !defined(FZ_DEV_STORVSC)
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
		for (unsigned i = 0; i < 4096 && (i < 8 || !fzp_done(&g_fp));
		     i++) {
			fzp_pump(&g_fp);
			g_fp.fp_now += g_fp.fp_tick;
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
