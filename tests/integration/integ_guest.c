/*
 * tests/integration/integ_guest.c - the guest half of the end-to-end
 * tests: the guest core on the posix port, started by a host (hvsim,
 * integ_host or pyhost) as its own process. One program, several modes;
 * the Python drivers in this directory run it, talk to the host through
 * its control socket, and check what both sides report.
 *
 *   cycles   open/close the first echo channel N times (a round trip each)
 *            and report the page allocator, fd and RSS figures around it
 *   waiters  leave transactions, a receive wait and an open outstanding,
 *            then report how and when each ended (rescind, dead host)
 *   echoloop echo round trips on every echo device until a file appears
 *   unload   connect, echo, UNLOAD, then stay connected-less until told
 *   txfull   send --count packets on the first echo channel without
 *            waiting for their echoes, so a host that stops reading
 *            fills our ring: -EAGAIN, then vmbus_chan_wait_tx until it
 *            reads again; every echo must come back, intact
 *   echo     N echo round trips per device (fault tests), stats as JSON
 *
 * Output: progress lines "integ: ..." and one "RESULT {json}" line, each
 * flushed at once (the host forwards lines as they come). Synchronisation
 * with the driver: the driver creates files in --sync DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv/guid.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/echo.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull
#define MAX_DEVS  8u

static struct {
	const char *mode;
	uint32_t count;          /* cycles / round trips */
	uint32_t ring;           /* ring bytes per direction */
	uint32_t payload;
	const char *sync_dir;
	const char *until;       /* echoloop: stop when this file exists */
	const char *report;      /* waiters: write RESULT here too */
	uint32_t xacts;
	bool rx_waiter;
	bool open_stuck;
	uint64_t wait_ns;        /* waiters: bound of each wait (port clock) */
	uint64_t timeout_ns;     /* vc_timeout_ns */
	uint64_t rt_ns;          /* bound of one echo round trip */
	uint32_t max_version;
	bool polled;
	uint32_t progress_ms;
} opt;

static double time_scale = 1.0;   /* for this program's own real-time waits */
static struct vmbus_posix *px;
static struct vmbus_platform plat;
static struct vmbus *vb;
static atomic_int gone_reason;
static atomic_uint_fast64_t gone_at_ns;
static atomic_uint_fast64_t gone_cpu_ns;	/* process CPU time then */

/* ---- small helpers --------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("integ: ", stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Wait (real time, scaled) until DIR/name exists. */
static bool wait_sync(const char *name, double seconds)
{
	char path[4096];
	uint64_t end;

	if (!opt.sync_dir)
		return true;
	snprintf(path, sizeof(path), "%s/%s", opt.sync_dir, name);
	end = mono_ns() + (uint64_t)(seconds * time_scale * 1e9);
	while (!file_exists(path)) {
		if (mono_ns() > end) {
			say("FAIL: sync file %s never appeared", path);
			return false;
		}
		sleep_ms(5);
	}
	return true;
}

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

/*
 * Resident memory of this process, kB: key "RssAnon" (private: heap,
 * stacks; what a leak grows) or "RssShmem" (touched guest RAM, which the
 * port's next-fit page allocator walks through; bounded by the RAM size).
 */
static long rss_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kl = strlen(key);
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			kb = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* ---- a raw driver for the echo class: attaches, never opens ------------ */

struct rawdev {
	struct vmbus_device *rd_dev;
	struct vmbus_channel *rd_ch;
	uint32_t rd_relid;
};

static pthread_mutex_t raw_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rawdev raw[MAX_DEVS];
static uint32_t nraw;
/* Called from drv_detach before the core closes what is left open. */
static void (*raw_detach_hook)(struct rawdev *rd);

static int raw_attach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);
	int r = -VMBUS_ENOSPC;

	pthread_mutex_lock(&raw_mu);
	if (nraw < MAX_DEVS) {
		uint32_t i = nraw++;

		/* keep relid order */
		while (i > 0 && raw[i - 1].rd_relid > vmbus_chan_relid(ch)) {
			raw[i] = raw[i - 1];
			i--;
		}
		raw[i] = (struct rawdev){ dev, ch, vmbus_chan_relid(ch) };
		r = 0;
	}
	pthread_mutex_unlock(&raw_mu);
	return r;
}

static void raw_detach(struct vmbus_device *dev)
{
	struct rawdev *rd = NULL;

	pthread_mutex_lock(&raw_mu);
	for (uint32_t i = 0; i < nraw; i++)
		if (raw[i].rd_dev == dev)
			rd = &raw[i];
	pthread_mutex_unlock(&raw_mu);
	if (rd && raw_detach_hook)
		raw_detach_hook(rd);
	if (rd && vmbus_chan_state(rd->rd_ch) != VMBUS_CHAN_OFFERED &&
	    vmbus_chan_state(rd->rd_ch) != VMBUS_CHAN_CLOSED)
		(void)vmbus_chan_close(rd->rd_ch);
}

static struct vmbus_driver raw_driver = {
	.drv_name = "integ-raw",
	.drv_attach = raw_attach,
	.drv_detach = raw_detach,
};

/* ---- bus set-up --------------------------------------------------------- */

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void on_gone(void *arg, int reason)
{
	(void)arg;
	atomic_store(&gone_cpu_ns, cpu_ns());
	atomic_store(&gone_at_ns, mono_ns());
	atomic_store(&gone_reason, reason);
}

/* Attach, create the bus, register the drivers asked for, connect. */
static int bring_up(bool raw_drv, bool echo_drv)
{
	struct vmbus_posix_options po;
	struct vmbus_config cfg;
	int r;

	vmbus_posix_options_init(&po);
	po.po_polled = opt.polled ? 1 : 0;
	/* Tests want to see every wait end, not the process vanish. */
	po.po_gone_action = VMBUS_POSIX_GONE_FAIL;
	po.po_on_gone = on_gone;
	po.po_log_prefix = "integ-guest";
	r = vmbus_posix_create(&po, &plat, &px);
	if (r != 0) {
		say("FAIL: cannot attach to a partition: %d", r);
		return r;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.vc_max_version = opt.max_version;
	cfg.vc_timeout_ns = opt.timeout_ns;
	r = vmbus_create(&plat, &cfg, &vb);
	if (r == 0 && raw_drv) {
		raw_driver.drv_class = HV_GUID_ECHO;
		r = vmbus_driver_register(vb, &raw_driver);
	}
	if (r == 0 && echo_drv) {
		struct echo_config ec = { opt.ring, opt.ring };

		r = echo_register(vb, &ec);
	}
	if (r == 0)
		r = vmbus_connect(vb);
	if (r != 0) {
		say("FAIL: VMBus connect failed: %d", r);
		return r;
	}
	say("connected, version %u.%u, pid %d",
	    VMBUS_VERSION_MAJOR(vmbus_version(vb)),
	    VMBUS_VERSION_MINOR(vmbus_version(vb)), (int)getpid());
	return 0;
}

static int tear_down(void)
{
	int r = 0;

	if (vb) {
		r = vmbus_unload(vb);
		vmbus_destroy(vb);
		echo_unregister(vb);
		vb = NULL;
	}
	vmbus_posix_destroy(px);
	px = NULL;
	return r;
}

static void json_stats(FILE *f)
{
	struct vmbus_stats bs;
	struct vmbus_posix_stats ps;

	vmbus_get_stats(vb, &bs);
	vmbus_posix_get_stats(px, &ps);
	fprintf(f, "\"bus\": {\"messages\": %llu, \"bad_messages\": %llu, "
	    "\"offers\": %llu, \"bad_offers\": %llu, \"rescinds\": %llu, "
	    "\"leaked_pages\": %llu, \"gpadl_failures\": %llu}, "
	    "\"port\": {\"pages_total\": %llu, \"pages_used\": %llu, "
	    "\"pages_leaked\": %llu, \"bad_replies\": %llu, \"gone\": %d}",
	    (unsigned long long)bs.bs_messages,
	    (unsigned long long)bs.bs_bad_messages,
	    (unsigned long long)bs.bs_offers,
	    (unsigned long long)bs.bs_bad_offers,
	    (unsigned long long)bs.bs_rescinds,
	    (unsigned long long)bs.bs_leaked_pages,
	    (unsigned long long)bs.bs_gpadl_failures,
	    (unsigned long long)ps.ps_pages_total,
	    (unsigned long long)ps.ps_pages_used,
	    (unsigned long long)ps.ps_pages_leaked,
	    (unsigned long long)ps.ps_bad_replies, vmbus_posix_gone(px));
}

/* ---- mode cycles ------------------------------------------------------ */

/* One open, one echoed packet, one close. */
static int one_cycle(struct vmbus_channel *ch, uint32_t i, uint8_t *buf)
{
	uint8_t out[64];
	uint32_t len = sizeof(out);
	struct vmbus_pkt_info pi;
	int r;

	r = vmbus_chan_open(ch, opt.ring, opt.ring, NULL, 0, NULL, NULL);
	if (r != 0) {
		say("FAIL: cycle %u: open: %d", i, r);
		return r;
	}
	memset(buf, 0, 64);
	memcpy(buf, &i, sizeof(i));
	r = vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0, buf, 64,
	    0x1000u + i);
	if (r == 0)
		r = vmbus_chan_wait_rx(ch, 5 * NS_PER_S);
	if (r == 0)
		r = vmbus_chan_recv(ch, out, &len, &pi);
	if (r == 0 && (len != 64 || memcmp(out, buf, 64) != 0 ||
	    pi.pi_trans_id != 0x1000u + i))
		r = -VMBUS_EPROTO;
	if (r != 0)
		say("FAIL: cycle %u: echo: %d", i, r);
	{
		int c = vmbus_chan_close(ch);

		if (c != 0) {
			say("FAIL: cycle %u: close: %d", i, c);
			if (r == 0)
				r = c;
		}
	}
	return r;
}

struct snap {
	uint64_t pages_used, pages_leaked, bus_leaked, gpadl_failures;
	long fds, rss_anon, rss_shmem;
};

static void take_snap(struct snap *s)
{
	struct vmbus_stats bs;
	struct vmbus_posix_stats ps;

	vmbus_get_stats(vb, &bs);
	vmbus_posix_get_stats(px, &ps);
	s->pages_used = ps.ps_pages_used;
	s->pages_leaked = ps.ps_pages_leaked;
	s->bus_leaked = bs.bs_leaked_pages;
	s->gpadl_failures = bs.bs_gpadl_failures;
	s->fds = count_fds();
	s->rss_anon = rss_kb("RssAnon");
	s->rss_shmem = rss_kb("RssShmem");
}

/* Connect with the raw driver; the first echo channel, or NULL (logged). */
static struct vmbus_channel *first_raw_channel(void)
{
	if (bring_up(true, false) != 0)
		return NULL;
	if (nraw == 0) {
		say("FAIL: no echo device offered");
		return NULL;
	}
	return raw[0].rd_ch;
}

static int mode_cycles(void)
{
	struct vmbus_channel *ch;
	struct snap a, b;
	uint8_t buf[64];
	uint32_t done = 0;
	uint64_t t0, dt;
	int r = 0;

	ch = first_raw_channel();
	if (ch == NULL)
		return 1;
	/* warm-up: first-use allocations (threads, tables) are not leaks */
	for (uint32_t i = 0; i < 3 && r == 0; i++)
		r = one_cycle(ch, i, buf);
	if (r != 0)
		return 1;
	take_snap(&a);
	say("ready pages_used=%llu fds=%ld rss_anon_kb=%ld",
	    (unsigned long long)a.pages_used, a.fds, a.rss_anon);
	if (!wait_sync("go", 60))
		return 1;
	t0 = mono_ns();
	for (uint32_t i = 0; i < opt.count; i++) {
		r = one_cycle(ch, i, buf);
		if (r != 0)
			break;
		done++;
	}
	dt = mono_ns() - t0;
	take_snap(&b);
	printf("RESULT {\"mode\": \"cycles\", \"cycles\": %u, \"done\": %u, "
	    "\"first_error\": %d, \"us_per_cycle\": %.1f, "
	    "\"pages_used_before\": %llu, \"pages_used_after\": %llu, "
	    "\"pages_leaked_after\": %llu, \"bus_leaked_after\": %llu, "
	    "\"gpadl_failures_after\": %llu, \"fds_before\": %ld, "
	    "\"fds_after\": %ld, \"rss_anon_kb_before\": %ld, "
	    "\"rss_anon_kb_after\": %ld, \"rss_shmem_kb_before\": %ld, "
	    "\"rss_shmem_kb_after\": %ld, ",
	    opt.count, done, r, done ? (double)dt / 1000.0 / done : 0.0,
	    (unsigned long long)a.pages_used, (unsigned long long)b.pages_used,
	    (unsigned long long)b.pages_leaked,
	    (unsigned long long)b.bus_leaked,
	    (unsigned long long)b.gpadl_failures, a.fds, b.fds, a.rss_anon,
	    b.rss_anon, a.rss_shmem, b.rss_shmem);
	json_stats(stdout);
	printf("}\n");
	fflush(stdout);
	say("cycles done");
	if (!wait_sync("finish", 60))
		return 1;
	r = tear_down() != 0 || done != opt.count;
	return r;
}

/* ---- mode waiters ----------------------------------------------------- */

#define MAX_WAITERS 64u

struct waiter {
	pthread_t w_thr;
	char w_name[32];
	int w_rc;
	uint64_t w_start_ns, w_end_ns;
	atomic_bool w_done;
	struct vmbus_xact *w_xa;
};

static struct waiter waiters[MAX_WAITERS];
static uint32_t nwaiters;
static struct vmbus_channel *wch0, *wch1;
static atomic_uint_fast64_t detach_ns[2];

static void *xact_waiter(void *arg)
{
	struct waiter *w = arg;

	w->w_start_ns = mono_ns();
	w->w_rc = vmbus_xact_wait(w->w_xa, opt.wait_ns);
	w->w_end_ns = mono_ns();
	vmbus_xact_put(w->w_xa);
	atomic_store(&w->w_done, true);
	return NULL;
}

static void *rx_waiter(void *arg)
{
	struct waiter *w = arg;

	w->w_start_ns = mono_ns();
	w->w_rc = vmbus_chan_wait_rx(wch0, opt.wait_ns);
	w->w_end_ns = mono_ns();
	atomic_store(&w->w_done, true);
	return NULL;
}

static void *open_waiter(void *arg)
{
	struct waiter *w = arg;

	w->w_start_ns = mono_ns();
	w->w_rc = vmbus_chan_open(wch1, opt.ring, opt.ring, NULL, 0, NULL,
	    NULL);
	w->w_end_ns = mono_ns();
	atomic_store(&w->w_done, true);
	return NULL;
}

/*
 * The driver's side of a rescind: the core has already failed the
 * channel's waiters; wait (bounded) until our threads have left the
 * core's objects, so the close that follows frees nothing in use.
 */
static void waiters_detach(struct rawdev *rd)
{
	uint64_t end = mono_ns() + (uint64_t)(30.0 * time_scale * 1e9);

	if (rd->rd_ch == wch0)
		atomic_store(&detach_ns[0], mono_ns());
	else if (rd->rd_ch == wch1)
		atomic_store(&detach_ns[1], mono_ns());
	for (uint32_t i = 0; i < nwaiters; i++) {
		bool mine = strncmp(waiters[i].w_name, "open", 4) == 0 ?
		    rd->rd_ch == wch1 : rd->rd_ch == wch0;

		while (mine && !atomic_load(&waiters[i].w_done) &&
		    mono_ns() < end)
			sleep_ms(1);
	}
}

static struct waiter *new_waiter(const char *name)
{
	struct waiter *w = &waiters[nwaiters++];

	snprintf(w->w_name, sizeof(w->w_name), "%s", name);
	w->w_rc = 1;
	return w;
}

static int mode_waiters(void)
{
	FILE *rf = NULL;
	uint64_t t_ready;
	int r;

	raw_detach_hook = waiters_detach;
	if (bring_up(true, false) != 0)
		return 1;
	if (nraw < (opt.open_stuck ? 2u : 1u)) {
		say("FAIL: %u echo device(s) offered, need %u", nraw,
		    opt.open_stuck ? 2u : 1u);
		return 1;
	}
	wch0 = raw[0].rd_ch;
	wch1 = opt.open_stuck ? raw[1].rd_ch : NULL;
	r = vmbus_chan_open(wch0, opt.ring, opt.ring, NULL, 0, NULL, NULL);
	if (r == 0 && opt.xacts)
		r = vmbus_xact_setup(wch0, opt.xacts, 64, 64);
	if (r != 0) {
		say("FAIL: open/xact setup of relid %u: %d", raw[0].rd_relid, r);
		return 1;
	}
	/* Transactions the host never completes: activated, as if the
	 * request had been handed to the host and lost there. */
	for (uint32_t i = 0; i < opt.xacts && nwaiters < MAX_WAITERS; i++) {
		char name[32];
		struct waiter *w;

		snprintf(name, sizeof(name), "xact%u", i);
		w = new_waiter(name);
		w->w_xa = vmbus_xact_get(wch0);
		if (w->w_xa == NULL) {
			say("FAIL: no xact slot %u", i);
			return 1;
		}
		vmbus_xact_activate(w->w_xa);
		pthread_create(&w->w_thr, NULL, xact_waiter, w);
	}
	if (opt.rx_waiter) {
		struct waiter *w = new_waiter("rx");

		pthread_create(&w->w_thr, NULL, rx_waiter, w);
	}
	if (opt.open_stuck) {
		struct waiter *w = new_waiter("open");

		pthread_create(&w->w_thr, NULL, open_waiter, w);
	}
	sleep_ms((uint64_t)(200 * time_scale));
	t_ready = mono_ns();
	say("waiting: %u waiter(s) on relid %u%s", nwaiters, raw[0].rd_relid,
	    opt.open_stuck ? " and an open" : "");
	for (uint32_t i = 0; i < nwaiters; i++)
		pthread_join(waiters[i].w_thr, NULL);

	/* CPU and wall time from the partition's end to this report: a
	 * guest whose waits spin instead of ending burns CPU here. */
	uint64_t rep_cpu = cpu_ns(), rep_mono = mono_ns();

	if (opt.report)
		rf = fopen(opt.report, "w");
	for (int pass = 0; pass < 2; pass++) {
		FILE *f = pass ? rf : stdout;
		uint64_t g = atomic_load(&gone_at_ns);
		uint64_t gc = atomic_load(&gone_cpu_ns);

		if (!f)
			continue;
		fprintf(f, "RESULT {\"mode\": \"waiters\", \"waiters\": [");
		for (uint32_t i = 0; i < nwaiters; i++) {
			struct waiter *w = &waiters[i];

			fprintf(f, "%s{\"name\": \"%s\", \"rc\": %d, "
			    "\"waited_ms\": %.1f, \"end_after_ready_ms\": %.1f, "
			    "\"end_mono\": %.6f}",
			    i ? ", " : "", w->w_name, w->w_rc,
			    (double)(w->w_end_ns - w->w_start_ns) / 1e6,
			    ((double)w->w_end_ns - (double)t_ready) / 1e6,
			    (double)w->w_end_ns / 1e9);
		}
		fprintf(f, "], \"gone_to_report_ms\": %.1f, "
		    "\"gone_to_report_cpu_ms\": %.1f, ",
		    g ? ((double)rep_mono - (double)g) / 1e6 : -1.0,
		    g ? ((double)rep_cpu - (double)gc) / 1e6 : -1.0);
		fprintf(f, "\"wait_bound_ms\": %.1f, \"gone_reason\": %d, "
		    "\"gone_after_ready_ms\": %.1f, "
		    "\"detach_after_ready_ms\": [%.1f, %.1f], ",
		    (double)opt.wait_ns / 1e6 * time_scale,
		    atomic_load(&gone_reason),
		    g ? ((double)g - (double)t_ready) / 1e6 : -1.0,
		    atomic_load(&detach_ns[0]) ? ((double)atomic_load(
		    &detach_ns[0]) - (double)t_ready) / 1e6 : -1.0,
		    atomic_load(&detach_ns[1]) ? ((double)atomic_load(
		    &detach_ns[1]) - (double)t_ready) / 1e6 : -1.0);
		json_stats(f);
		fprintf(f, "}\n");
		fflush(f);
	}
	if (rf)
		fclose(rf);
	/* Let the rescind work (detach, close, RELID_RELEASED) finish. */
	if (!vmbus_posix_gone(px)) {
		uint64_t end = mono_ns() + (uint64_t)(10.0 * time_scale * 1e9);
		struct vmbus_stats bs;

		do {
			vmbus_get_stats(vb, &bs);
			if (bs.bs_rescinds >= (opt.open_stuck ? 2u : 1u) &&
			    atomic_load(&detach_ns[0]) &&
			    (!opt.open_stuck || atomic_load(&detach_ns[1])))
				break;
			vmbus_poll(vb);
			sleep_ms(5);
		} while (mono_ns() < end);
		sleep_ms(50);
		say("rescind work finished");
		if (!wait_sync("finish", 60))
			return 1;
	}
	r = tear_down();
	say("exit, unload %d", r);
	return 0;
}

/* ---- mode echoloop / echo ------------------------------------------------ */

static double first_fail_ms = -1;

static int echo_all(uint32_t round, uint8_t *in, uint8_t *out, int *first_err)
{
	uint32_t n = echo_count(vb);
	uint64_t t0;
	int fails = 0;

	for (uint32_t d = 0; d < n; d++) {
		struct echo_dev *ed = echo_get(vb, d);
		uint32_t max;
		if (ed == NULL)
			continue;	/* detached since echo_count (rescind) */
		max = echo_max_payload(ed);
		uint32_t len = opt.payload < max ? opt.payload : max;
		uint32_t got = len;
		int r;

		for (uint32_t k = 0; k < len; k++)
			in[k] = (uint8_t)(round * 7u + k + d);
		t0 = mono_ns();
		r = echo_roundtrip(ed, in, len, out, &got, opt.rt_ns);
		if (r == 0 && (got != len || memcmp(in, out, len) != 0))
			r = -VMBUS_EPROTO;
		if (r != 0) {
			fails++;
			if (!*first_err) {
				*first_err = r;
				first_fail_ms = (double)(mono_ns() - t0) / 1e6;
			}
		}
	}
	return fails;
}

static void json_echo_devs(FILE *f)
{
	uint32_t n = echo_count(vb);

	fprintf(f, "\"devices\": [");
	for (uint32_t d = 0; d < n; d++) {
		struct echo_dev *ed = echo_get(vb, d);
		struct vmbus_chan_stats cs;
		struct echo_stats es;

		echo_get_stats(ed, &es);
		vmbus_chan_get_stats(echo_channel(ed), &cs);
		fprintf(f, "%s{\"relid\": %u, \"state\": \"%s\", \"sent\": %llu, "
		    "\"received\": %llu, \"mismatches\": %llu, "
		    "\"proto_errors\": %llu, \"bad_completions\": %llu}",
		    d ? ", " : "", vmbus_chan_relid(echo_channel(ed)),
		    vmbus_chan_state_name(vmbus_chan_state(echo_channel(ed))),
		    (unsigned long long)es.es_sent,
		    (unsigned long long)es.es_received,
		    (unsigned long long)es.es_mismatches,
		    (unsigned long long)cs.cs_proto_errors,
		    (unsigned long long)cs.cs_bad_completions);
	}
	fprintf(f, "]");
}

static int mode_echo(bool loop)
{
	uint8_t *in, *out;
	uint32_t rounds = 0, fails = 0;
	uint64_t next = 0;
	int first_err = 0, ur;

	if (bring_up(false, true) != 0)
		return 1;
	in = malloc(opt.payload + 1);
	out = malloc(opt.payload + 1);
	if (!in || !out)
		return 1;
	say("echo devices: %u", echo_count(vb));
	for (;;) {
		if (loop && opt.until && file_exists(opt.until))
			break;
		if (opt.count && rounds >= opt.count)
			break;
		if (vmbus_posix_gone(px))
			break;
		fails += (uint32_t)echo_all(rounds, in, out, &first_err);
		rounds++;
		if (loop && mono_ns() >= next) {
			say("echo rounds=%u fails=%u", rounds, fails);
			next = mono_ns() + opt.progress_ms * NS_PER_MS;
		}
	}
	printf("RESULT {\"mode\": \"%s\", \"version\": \"%u.%u\", "
	    "\"rounds\": %u, \"fails\": %u, \"first_error\": %d, "
	    "\"first_fail_ms\": %.1f, ",
	    loop ? "echoloop" : "echo", VMBUS_VERSION_MAJOR(vmbus_version(vb)),
	    VMBUS_VERSION_MINOR(vmbus_version(vb)), rounds, fails, first_err,
	    first_fail_ms);
	json_echo_devs(stdout);
	printf(", ");
	json_stats(stdout);
	printf("}\n");
	fflush(stdout);
	free(in);
	free(out);
	ur = tear_down();
	say("unload %d", ur);
	return fails || ur ? 1 : 0;
}

/* ---- mode unload -------------------------------------------------------- */

static int mode_unload(void)
{
	uint8_t in[64], out[64];
	int first_err = 0, fails, r;

	if (bring_up(false, true) != 0)
		return 1;
	opt.payload = sizeof(in);
	fails = echo_all(0, in, out, &first_err);
	r = vmbus_unload(vb);
	say("unloaded %d, echo fails %d", r, fails);
	printf("RESULT {\"mode\": \"unload\", \"unload\": %d, \"fails\": %d, ",
	    r, fails);
	json_stats(stdout);
	printf("}\n");
	fflush(stdout);
	if (!wait_sync("go", 60))
		return 1;
	vmbus_destroy(vb);
	echo_unregister(vb);
	vb = NULL;
	vmbus_posix_destroy(px);
	return r || fails ? 1 : 0;
}

/* ---- mode txfull --------------------------------------------------------- */

static void txfull_fill(uint8_t *b, uint32_t len, uint32_t i)
{
	for (uint32_t k = 0; k < len; k++)
		b[k] = (uint8_t)(i * 13u + k);
}

/* Take every echo waiting; 0 or the first error. */
static int txfull_drain(struct vmbus_channel *ch, uint8_t *in, uint8_t *want,
    uint32_t *rcvd, uint32_t *bad)
{
	for (;;) {
		struct vmbus_pkt_info pi;
		uint32_t len = opt.payload + 64;
		int r = vmbus_chan_recv(ch, in, &len, &pi);

		if (r == -VMBUS_EAGAIN)
			return 0;
		if (r != 0)
			return r;
		txfull_fill(want, opt.payload, *rcvd);
		if (len != opt.payload || pi.pi_trans_id != 0x7000u + *rcvd ||
		    memcmp(in, want, opt.payload) != 0)
			(*bad)++;
		(*rcvd)++;
	}
}

static int mode_txfull(void)
{
	struct vmbus_channel *ch;
	uint8_t *buf, *in, *want;
	uint32_t sent = 0, rcvd = 0, bad = 0, eagain = 0;
	uint64_t end, full_ns = 0, t_full = 0;
	const uint64_t slice = 20ull * 1000000ull;
	int r, first_err = 0;

	ch = first_raw_channel();
	if (ch == NULL)
		return 1;
	buf = calloc(1, opt.payload);
	want = calloc(1, opt.payload);
	in = calloc(1, opt.payload + 64);
	r = buf && want && in ? vmbus_chan_open(ch, opt.ring, opt.ring, NULL,
	    0, NULL, NULL) : -VMBUS_ENOMEM;
	if (r != 0) {
		say("FAIL: open: %d", r);
		return 1;
	}
	say("txfull: sending %u packets of %u bytes", opt.count, opt.payload);
	end = mono_ns() + (uint64_t)((double)opt.wait_ns * time_scale);
	while (rcvd < opt.count && mono_ns() < end) {
		r = txfull_drain(ch, in, want, &rcvd, &bad);
		if (r != 0) {
			first_err = r;
			break;
		}
		if (sent == opt.count) {
			r = vmbus_chan_wait_rx(ch, slice);
			if (r != 0 && r != -VMBUS_ETIMEDOUT) {
				first_err = r;
				break;
			}
			continue;
		}
		txfull_fill(buf, opt.payload, sent);
		r = vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0, buf,
		    opt.payload, 0x7000u + sent);
		if (r == 0) {
			if (t_full) {
				full_ns += mono_ns() - t_full;
				t_full = 0;
			}
			sent++;
			continue;
		}
		if (r != -VMBUS_EAGAIN) {
			first_err = r;
			break;
		}
		if (eagain++ == 0)
			say("txfull: ring full after %u packets", sent);
		if (!t_full)
			t_full = mono_ns();
		r = vmbus_chan_wait_tx(ch, opt.payload, slice);
		if (r != 0 && r != -VMBUS_ETIMEDOUT) {
			first_err = r;
			break;
		}
	}
	if (t_full)
		full_ns += mono_ns() - t_full;
	printf("RESULT {\"mode\": \"txfull\", \"count\": %u, \"sent\": %u, "
	    "\"received\": %u, \"bad\": %u, \"eagain\": %u, "
	    "\"full_ms\": %.1f, \"first_error\": %d, ", opt.count, sent, rcvd,
	    bad, eagain, (double)full_ns / 1e6, first_err);
	json_stats(stdout);
	printf("}\n");
	fflush(stdout);
	say("txfull done: sent %u, received %u, %u bad", sent, rcvd, bad);
	free(buf);
	free(want);
	free(in);
	r = tear_down();
	return r != 0 || first_err != 0 || rcvd != opt.count || bad != 0;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	    "usage: integ_guest MODE [options]   (started by a host: HVSIM_FD)\n"
	    "modes: cycles, waiters, echoloop, echo, unload, txfull\n"
	    "  --count N         cycles / echo rounds / txfull packets (cycles\n"
	    "                    default 1000, txfull 200)\n"
	    "  --ring BYTES      ring size per direction (default 16384)\n"
	    "  --payload BYTES   echo payload (default 64)\n"
	    "  --sync DIR        wait for DIR/go (and DIR/finish) files\n"
	    "  --until FILE      echoloop: stop when FILE exists\n"
	    "  --progress-ms MS  echoloop: progress line interval (default 100)\n"
	    "  --xacts K         waiters: K outstanding transactions\n"
	    "  --rx              waiters: also a receive wait\n"
	    "  --open-stuck      waiters: open the 2nd echo device too\n"
	    "  --wait-ms MS      waiters: bound of every wait; txfull: of the\n"
	    "                    whole run (default 20000)\n"
	    "  --report FILE     waiters: also write the RESULT line here\n"
	    "  --timeout-ms MS   core control-path timeout (default 5000)\n"
	    "  --rt-ms MS        bound of one echo round trip (default 5000)\n"
	    "  --max-version X.Y newest VMBus version to request\n"
	    "  --polled          no interrupt threads\n");
}

static int parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "ring", required_argument, NULL, 'r' },
		{ "payload", required_argument, NULL, 'p' },
		{ "sync", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "progress-ms", required_argument, NULL, 'g' },
		{ "xacts", required_argument, NULL, 'x' },
		{ "rx", no_argument, NULL, 'R' },
		{ "open-stuck", no_argument, NULL, 'O' },
		{ "wait-ms", required_argument, NULL, 'w' },
		{ "report", required_argument, NULL, 'o' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "rt-ms", required_argument, NULL, 'T' },
		{ "max-version", required_argument, NULL, 'V' },
		{ "polled", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned maj, min;
	int c;

	if (argc < 2)
		return -1;
	opt.mode = argv[1];
	opt.ring = 16384;
	opt.payload = 64;
	opt.wait_ns = 20 * NS_PER_S;
	opt.rt_ns = 5 * NS_PER_S;
	opt.progress_ms = 100;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': opt.count = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': opt.ring = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'p': opt.payload = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': opt.sync_dir = optarg; break;
		case 'u': opt.until = optarg; break;
		case 'g': opt.progress_ms = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'x': opt.xacts = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'R': opt.rx_waiter = true; break;
		case 'O': opt.open_stuck = true; break;
		case 'w': opt.wait_ns = strtoull(optarg, NULL, 0) * NS_PER_MS; break;
		case 'o': opt.report = optarg; break;
		case 't': opt.timeout_ns = strtoull(optarg, NULL, 0) * NS_PER_MS; break;
		case 'T': opt.rt_ns = strtoull(optarg, NULL, 0) * NS_PER_MS; break;
		case 'V':
			if (sscanf(optarg, "%u.%u", &maj, &min) != 2)
				return -1;
			opt.max_version = VMBUS_VERSION(maj, min);
			break;
		case 'P': opt.polled = true; break;
		default: return -1;
		}
	}
	if (optind != argc || opt.xacts > MAX_WAITERS - 2 || opt.ring < 8192 ||
	    opt.ring % 4096)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");

	if (parse(argc, argv) != 0) {
		usage();
		return 2;
	}
	if (s && atof(s) >= 1.0)
		time_scale = atof(s);
	/* A dead host leaves our stdout pipe without a reader. */
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(opt.mode, "cycles")) {
		if (!opt.count)
			opt.count = 1000;
		return mode_cycles();
	}
	if (!strcmp(opt.mode, "waiters"))
		return mode_waiters();
	if (!strcmp(opt.mode, "echoloop"))
		return mode_echo(true);
	if (!strcmp(opt.mode, "echo")) {
		if (!opt.count)
			opt.count = 10;
		return mode_echo(false);
	}
	if (!strcmp(opt.mode, "unload"))
		return mode_unload();
	if (!strcmp(opt.mode, "txfull")) {
		if (!opt.count)
			opt.count = 200;
		return mode_txfull();
	}
	usage();
	return 2;
}
