/*
 * tools/hvguest/hvg_ic.c - the integration services of the reference
 * guest: heartbeat, shutdown, time sync and KVP (vmbus/ic.h), registered as
 * an OS registers them: the auto pool filled from uname() and
 * gethostname(), the host-written KVP records kept in a file across runs
 * (temp file + fsync + rename), the guest's own UTC time published in the
 * guest pool (IC_KVP_KEY_GUEST_TIME, the driver's default), and a host
 * shutdown carried out through the port (hooks -> UNLOAD -> RESET).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "hv/icmsg.h"
#include "hvg_net.h"
#include "hvguest.h"

static struct {
	/* auto-pool strings: must live until ic_services_free */
	char fqdn[256];
	char os_name[65];
	char os_version[65];
	char os_build[65];
	char os_major[16];
	char os_minor[16];
	char arch[65];
	/* KVP persistence; empty = none */
	char kvp_path[PATH_MAX];
	bool save_warned;
	/* what was last reported */
	uint64_t negotiations[IC_SVC_COUNT];
	uint64_t steps, rejected, refused, action_failures;
} ic;

static const char *const svc_names[IC_SVC_COUNT] = {
	"heartbeat", "shutdown", "timesync", "kvp",
};

static const char *pool_name(uint8_t pool)
{
	switch (pool) {
	case KVP_POOL_EXTERNAL: return "external";
	case KVP_POOL_GUEST: return "guest";
	case KVP_POOL_AUTO: return "auto";
	case KVP_POOL_AUTO_EXTERNAL: return "auto-external";
	default: return "?";
	}
}

/* ---- KVP file ---------------------------------------------------------- */

/* mkdir -p for the directory part of path (mode 0700 for new ones). */
static int make_parent_dirs(const char *path)
{
	char d[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(d))
		return -1;
	memcpy(d, path, n + 1);
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(d, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/*
 * The default store: $XDG_STATE_HOME/hvguest/<vm>.kvp, else
 * ~/.local/state/hvguest/<vm>.kvp; <vm> is HVSIM_VM_NAME (set by hvsim) or
 * "default", with anything but [A-Za-z0-9._-] replaced by '_'.
 */
static int default_kvp_path(char *out, size_t size)
{
	const char *vm = getenv("HVSIM_VM_NAME");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char name[65];
	size_t i;
	int n;

	if (vm == NULL || *vm == '\0')
		vm = "default";
	for (i = 0; vm[i] && i < sizeof(name) - 1; i++) {
		char c = vm[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    (c == '.' && i > 0);

		name[i] = ok ? c : '_';
	}
	name[i] = '\0';
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(out, size, "%s/hvguest/%s.kvp", xdg, name);
	else if (home != NULL && home[0] == '/')
		n = snprintf(out, size, "%s/.local/state/hvguest/%s.kvp", home,
		    name);
	else
		return -1;
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static int kvp_load(void *arg, void *buf, uint32_t size, uint32_t *len)
{
	uint32_t got = 0;
	struct stat st;
	int fd;

	(void)arg;
	if (ic.kvp_path[0] == '\0')
		return -VMBUS_ENOENT;
	fd = open(ic.kvp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -VMBUS_ENOENT;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)size) {
		close(fd);
		hvg_event("ic: kvp: %s is not a KVP store; starting empty",
		    ic.kvp_path);
		return -VMBUS_EIO;
	}
	while (got < size) {
		ssize_t n = read(fd, (char *)buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -VMBUS_EIO;
		}
		if (n == 0)
			break;
		got += (uint32_t)n;
	}
	close(fd);
	*len = got;
	return 0;
}

/* Write a new file beside the old one, fsync it, rename it over the old
 * one, fsync the directory: a crash leaves the old store or the new one. */
static int kvp_save(void *arg, const void *buf, uint32_t len)
{
	char tmp[PATH_MAX + 16], dir[PATH_MAX];
	uint32_t done = 0;
	char *slash;
	int fd, n;

	(void)arg;
	if (ic.kvp_path[0] == '\0')
		return 0;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp", ic.kvp_path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -VMBUS_EINVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	while (done < len) {
		ssize_t w = write(fd, (const char *)buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			unlink(tmp);
			goto fail;
		}
		done += (uint32_t)w;
	}
	if (fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, ic.kvp_path) != 0) {
		unlink(tmp);
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s", ic.kvp_path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*(slash == dir ? slash + 1 : slash) = '\0';
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
	return 0;
fail:
	if (!ic.save_warned) {
		ic.save_warned = true;
		hvg_event("ic: kvp: cannot save %s: %s", ic.kvp_path,
		    strerror(errno));
	}
	return -VMBUS_EIO;
}

/* Host-chosen text made safe for a log line: control bytes become '?',
 * cut at size - 1 bytes. */
static void printable(char *out, size_t size, const char *in)
{
	size_t i;

	for (i = 0; in[i] && i < size - 1; i++)
		out[i] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' :
		    in[i];
	out[i] = '\0';
}

static void kvp_changed(void *arg, uint8_t pool, const char *key, bool del)
{
	char val[256], pk[128], pv[256];
	int n = -1;

	(void)arg;
	printable(pk, sizeof(pk), key);
	if (!del && g.ics != NULL)
		n = ic_kvp_get(g.ics, pool, key, NULL, val, sizeof(val));
	if (n >= 0) {
		printable(pv, sizeof(pv), val);
		hvg_event("ic: kvp: host set %s = \"%s\" in pool %u (%s)", pk,
		    pv, pool, pool_name(pool));
	} else {
		hvg_event("ic: kvp: host %s %s in pool %u (%s)",
		    del ? "deleted" : "set", pk, pool, pool_name(pool));
	}
}

/* ---- shutdown ------------------------------------------------------------ */

/*
 * The OS's part of a host shutdown (IC deferred work, after the S_OK went
 * out): say so and leave the action to the main loop (hvg_ic_power_pending).
 * Running power_off here would unload the bus from inside the IC's own
 * work - in a polled port from inside vmbus_poll and the shutdown
 * channel's callback, whose close would then wait for itself.
 */
static _Atomic int power_request;	/* 0, or ic_power_action + 1 */

static int shutdown_action(void *arg, enum ic_power_action a)
{
	struct ic_shutdown_status ss;
	const char *what = a == IC_POWER_REBOOT ? "reboot" : "power off";

	(void)arg;
	if (a != IC_POWER_OFF && a != IC_POWER_REBOOT)
		return -VMBUS_EOPNOTSUPP;
	if (ic_shutdown_get_status(g.ics, &ss) == 0)
		hvg_event("ic: shutdown: host requests %s (flags %#x, reason "
		    "%#x%s%s%s)", what, ss.ss_last_flags, ss.ss_last_reason,
		    ss.ss_last_message[0] ? ", \"" : "", ss.ss_last_message,
		    ss.ss_last_message[0] ? "\"" : "");
	else
		hvg_event("ic: shutdown: host requests %s", what);
	atomic_store(&power_request, (int)a + 1);
	return 0;
}

/*
 * Main thread, outside vmbus_poll: carry out a host shutdown request
 * through the port, whose power_off / reboot run the shutdown hooks (our
 * UNLOAD), send RESET and exit. Returns only if there was nothing to do or
 * the port failed.
 */
void hvg_ic_power_pending(void)
{
	int a = atomic_exchange(&power_request, 0) - 1;
	int r;

	if (a < 0)
		return;
	if (a == IC_POWER_REBOOT)
		r = g.plat.reboot ? g.plat.reboot(g.plat.ctx) : -VMBUS_ENOSYS;
	else
		r = g.plat.power_off ? g.plat.power_off(g.plat.ctx) :
		    -VMBUS_ENOSYS;
	hvg_event("ic: shutdown: %s failed (%d)",
	    a == IC_POWER_REBOOT ? "reboot" : "power off", r);
}

/* ---- registration ---------------------------------------------------------- */

static void fill_auto_pool(void)
{
	struct utsname u;
	unsigned maj = 0, min = 0;

	if (gethostname(ic.fqdn, sizeof(ic.fqdn) - 1) != 0)
		snprintf(ic.fqdn, sizeof(ic.fqdn), "localhost");
	ic.fqdn[sizeof(ic.fqdn) - 1] = '\0';
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	snprintf(ic.os_name, sizeof(ic.os_name), "%s",
	    u.sysname[0] ? u.sysname : "unknown");
	/* Linux's KVP daemon: OSVersion and OSBuildNumber both carry the
	 * kernel release; major and minor are its first two numbers. */
	snprintf(ic.os_version, sizeof(ic.os_version), "%s", u.release);
	snprintf(ic.os_build, sizeof(ic.os_build), "%s", u.release);
	if (sscanf(u.release, "%u.%u", &maj, &min) < 1)
		maj = min = 0;
	snprintf(ic.os_major, sizeof(ic.os_major), "%u", maj);
	snprintf(ic.os_minor, sizeof(ic.os_minor), "%u", min);
	snprintf(ic.arch, sizeof(ic.arch), "%s", u.machine);
}

/* What the store brought back: the count, then the records of the pools
 * the host writes for the guest to read (external) and the guest pool. */
static void report_restored(void)
{
	static const uint8_t pools[] = { KVP_POOL_EXTERNAL, KVP_POOL_GUEST };
	struct ic_kvp_status ks;
	char key[128], val[256], pk[128], pv[256];
	unsigned shown = 0;

	if (ic_kvp_get_status(g.ics, &ks) != 0)
		return;
	hvg_event("ic: kvp store %s: %u record(s) restored%s",
	    ic.kvp_path[0] ? ic.kvp_path : "(none)", ks.ks_loaded,
	    ks.ks_load_errors ? " (a corrupt store was dropped)" : "");
	if (ks.ks_loaded == 0)
		return;
	for (size_t p = 0; p < sizeof(pools); p++) {
		for (uint32_t i = 0; shown < 16; i++) {
			int r = ic_kvp_enumerate(g.ics, pools[p], i, key,
			    sizeof(key), val, sizeof(val));

			if (r == -VMBUS_ENOBUFS)
				continue;
			if (r != 0)
				break;
			if (strcmp(key, IC_KVP_KEY_GUEST_TIME) == 0)
				continue;
			printable(pk, sizeof(pk), key);
			printable(pv, sizeof(pv), val);
			hvg_event("ic: kvp: restored %s = \"%s\" in pool %u "
			    "(%s)", pk, pv, pools[p], pool_name(pools[p]));
			shown++;
		}
	}
}

int hvg_ic_register(void)
{
	struct ic_config cfg;
	int r;

	if (g.opt.kvp_file != NULL && strcmp(g.opt.kvp_file, "none") == 0) {
		ic.kvp_path[0] = '\0';
	} else if (g.opt.kvp_file != NULL) {
		if (strlen(g.opt.kvp_file) >= sizeof(ic.kvp_path)) {
			fprintf(stderr, "hvguest: --kvp-file: path too long\n");
			return -VMBUS_EINVAL;
		}
		snprintf(ic.kvp_path, sizeof(ic.kvp_path), "%s",
		    g.opt.kvp_file);
	} else if (default_kvp_path(ic.kvp_path, sizeof(ic.kvp_path)) != 0) {
		ic.kvp_path[0] = '\0';
		hvg_event("ic: kvp: no $XDG_STATE_HOME or $HOME: host-written "
		    "records are not kept");
	}
	if (ic.kvp_path[0] && make_parent_dirs(ic.kvp_path) != 0)
		hvg_event("ic: kvp: cannot create the directory of %s: %s",
		    ic.kvp_path, strerror(errno));

	fill_auto_pool();
	ic_config_init(&cfg);
	cfg.icc_shutdown_action = shutdown_action;
	cfg.icc_kvp.kc_fqdn = ic.fqdn;
	cfg.icc_kvp.kc_os_name = ic.os_name;
	cfg.icc_kvp.kc_os_version = ic.os_version;
	cfg.icc_kvp.kc_os_build = ic.os_build;
	cfg.icc_kvp.kc_os_major = ic.os_major;
	cfg.icc_kvp.kc_os_minor = ic.os_minor;
	cfg.icc_kvp.kc_proc_arch = ic.arch;
	cfg.icc_kvp.kc_load = kvp_load;
	cfg.icc_kvp.kc_save = kvp_save;
	cfg.icc_kvp.kc_changed = kvp_changed;
	/* NetworkAddressIPv4: the DHCP leases (empty until bound). */
	if (g.opt.full && !g.opt.no_ip)
		cfg.icc_kvp.kc_net_addrs = hvg_net_kvp_addrs;
	r = ic_services_register(g.vb, &cfg, &g.ics);
	if (r != 0 && g.ics == NULL) {
		fprintf(stderr, "hvguest: integration services: %d\n", r);
		return r;
	}
	if (r != 0)
		hvg_event("ic: some services could not be registered (%d)", r);
	report_restored();
	return 0;
}

void hvg_ic_free(void)
{
	ic_services_free(g.ics);
	g.ics = NULL;
}

/* ---- events, listing, status ------------------------------------------------- */

void hvg_ic_wait_negotiated(uint64_t timeout_ns)
{
	uint64_t end = hvg_now_ns() + timeout_ns;
	struct timespec nap = { 0, 10 * 1000 * 1000 };

	while (g.ics != NULL && hvg_now_ns() < end &&
	    vmbus_posix_gone(g.px) == VMBUS_POSIX_ALIVE) {
		bool all = true;

		for (int s = 0; s < IC_SVC_COUNT; s++) {
			struct ic_stats st;

			if (ic_get_stats(g.ics, (enum ic_service)s, &st) == 0 &&
			    st.is_attached && !st.is_negotiated)
				all = false;
		}
		hvg_ic_poll_events();	/* in the order they happen */
		if (all)
			return;
		vmbus_poll(g.vb);
		nanosleep(&nap, NULL);
	}
}

void hvg_ic_poll_events(void)
{
	struct ic_timesync_status ts;
	struct ic_shutdown_status ss;

	if (g.ics == NULL)
		return;
	for (int s = 0; s < IC_SVC_COUNT; s++) {
		struct ic_stats st;

		if (ic_get_stats(g.ics, (enum ic_service)s, &st) != 0 ||
		    st.is_negotiations == ic.negotiations[s])
			continue;
		ic.negotiations[s] = st.is_negotiations;
		if (st.is_negotiated)
			hvg_event("ic: %s negotiated: framework %u.%u, "
			    "service %u.%u", svc_names[s], st.is_fw_major,
			    st.is_fw_minor, st.is_msg_major, st.is_msg_minor);
	}
	if (ic_timesync_get_status(g.ics, &ts) == 0) {
		if (ts.ts_steps != ic.steps) {
			ic.steps = ts.ts_steps;
			hvg_event("ic: timesync: clock stepped by %+.3f ms",
			    (double)ts.ts_last_correction_ns / 1e6);
		}
		if (ts.ts_rejected != ic.rejected) {
			ic.rejected = ts.ts_rejected;
			hvg_event("ic: timesync: refused a host time out of "
			    "range (%llu so far)",
			    (unsigned long long)ts.ts_rejected);
		}
	}
	if (ic_shutdown_get_status(g.ics, &ss) == 0) {
		if (ss.ss_refused != ic.refused) {
			ic.refused = ss.ss_refused;
			hvg_event("ic: shutdown: refused a request (%llu so "
			    "far)", (unsigned long long)ss.ss_refused);
		}
	}
}

static int svc_of_channel(const struct vmbus_chan_info *ci)
{
	if (ci->ci_driver == NULL || ci->ci_sub_index != 0)
		return -1;
	for (int s = 0; s < IC_SVC_COUNT; s++)
		if (strcmp(ci->ci_driver, svc_names[s]) == 0)
			return s;
	return -1;
}

int hvg_ic_protocol(const struct vmbus_chan_info *ci, char *buf, size_t size)
{
	struct ic_stats st;
	int s = svc_of_channel(ci);

	if (g.ics == NULL || s < 0 ||
	    ic_get_stats(g.ics, (enum ic_service)s, &st) != 0)
		return 0;
	if (!st.is_negotiated)
		snprintf(buf, size, "IC not negotiated");
	else
		snprintf(buf, size, "IC framework %u.%u, %s %u.%u",
		    st.is_fw_major, st.is_fw_minor, svc_names[s],
		    st.is_msg_major, st.is_msg_minor);
	return 1;
}

bool hvg_ic_any_attached(void)
{
	for (int s = 0; g.ics != NULL && s < IC_SVC_COUNT; s++) {
		struct ic_stats st;

		if (ic_get_stats(g.ics, (enum ic_service)s, &st) == 0 &&
		    st.is_attached)
			return true;
	}
	return false;
}

void hvg_ic_status(char *buf, size_t size)
{
	struct ic_timesync_status ts;
	struct ic_stats hb;
	int64_t off = 0, pending = 0;

	if (g.ics == NULL)
		return;
	if (!hvg_ic_any_attached()) {
		hvg_append(buf, size, ", no integration services offered");
		return;
	}
	if (ic_get_stats(g.ics, IC_SVC_HEARTBEAT, &hb) == 0)
		hvg_append(buf, size, ", heartbeats %llu (seq %llu)",
		    (unsigned long long)(hb.is_replies - hb.is_negotiations),
		    (unsigned long long)ic_heartbeat_last_seq(g.ics));
	if (ic_timesync_get_status(g.ics, &ts) == 0)
		hvg_append(buf, size, ", time %llu step(s) %llu slew(s) "
		    "last %+.3f ms", (unsigned long long)ts.ts_steps,
		    (unsigned long long)ts.ts_slews,
		    (double)ts.ts_last_correction_ns / 1e6);
	vmbus_posix_wallclock_state(g.px, &off, &pending);
	hvg_append(buf, size, ", clock offset %+.3f ms", (double)off / 1e6);
}

void hvg_ic_json(void)
{
	struct ic_timesync_status ts;
	struct ic_shutdown_status ss;
	struct ic_kvp_status ks;

	if (g.ics == NULL)
		return;
	printf("  \"ic\": {");
	for (int s = 0; s < IC_SVC_COUNT; s++) {
		struct ic_stats st;

		if (ic_get_stats(g.ics, (enum ic_service)s, &st) != 0)
			continue;
		printf("%s\n    \"%s\": {\"attached\": %s, \"negotiated\": %s, "
		    "\"framework\": \"%u.%u\", \"version\": \"%u.%u\", "
		    "\"messages\": %llu, \"malformed\": %llu}", s ? "," : "",
		    svc_names[s], st.is_attached ? "true" : "false",
		    st.is_negotiated ? "true" : "false", st.is_fw_major,
		    st.is_fw_minor, st.is_msg_major, st.is_msg_minor,
		    (unsigned long long)st.is_messages,
		    (unsigned long long)st.is_malformed);
	}
	if (ic_timesync_get_status(g.ics, &ts) == 0)
		printf(",\n    \"time\": {\"steps\": %llu, \"slews\": %llu, "
		    "\"rejected\": %llu, \"last_correction_ns\": %lld}",
		    (unsigned long long)ts.ts_steps,
		    (unsigned long long)ts.ts_slews,
		    (unsigned long long)ts.ts_rejected,
		    (long long)ts.ts_last_correction_ns);
	if (ic_shutdown_get_status(g.ics, &ss) == 0)
		printf(",\n    \"shutdown_requests\": %llu",
		    (unsigned long long)ss.ss_requests);
	if (ic_kvp_get_status(g.ics, &ks) == 0)
		printf(",\n    \"kvp\": {\"records\": %u, \"loaded\": %u, "
		    "\"host_sets\": %llu, \"saves\": %llu, "
		    "\"save_errors\": %llu}", ks.ks_records, ks.ks_loaded,
		    (unsigned long long)ks.ks_host_sets,
		    (unsigned long long)ks.ks_saves,
		    (unsigned long long)ks.ks_save_errors);
	printf("\n  },\n");
}
