/*
 * tests/refguest/refhost.c - a small scripted host for the reference guest
 * (tools/hvguest) tests: one partition whose VMBus server offers the
 * integration services, disks and NICs of the host library, the guest
 * program started with HVSIM_FD as hvsim starts it, and a few host actions
 * on a script, so the tests do not depend on which of these hvsim has
 * wired yet (the same tests run under hvsim once it has; see
 * tests/refguest/CMakeLists.txt).
 *
 *   refhost [--ic] [--disk SPEC]... [--net SPEC]... [--vcpus N]
 *           [--memory MIB] [--timeout S] [--skew SECONDS]
 *           [--kvp-set POOL:KEY=VALUE]... [--expect-kvp POOL:KEY=VALUE]...
 *           [--shutdown-after S] [--reboot-after S] -- GUEST [ARG...]
 *
 * --kvp-set requests go out once KVP is negotiated (the guest prints
 * them); --expect-kvp values ('*' = any) are read back from the guest once
 * the sets are done (GET, walking the pool for the guest pool). Shutdown
 * / reboot go out that long after the shutdown service negotiated; a
 * rebooted guest is started again, and --reboot-after happens only once.
 * Exit: 0 when the guest exited 0 and every expectation held; 1 a failed
 * expectation (printed "refhost: FAIL: ..."); the guest's status when it
 * failed; 124 timeout; 2 set-up error. Times are scaled by
 * VMBUS_TEST_TIME_SCALE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/disk/disk.h"
#include "host/log.h"
#include "host/loop.h"
#include "host/net/net.h"
#include "host/partition_host.h"
#include "host/vmbus_server.h"
#include "host/vsp/ic_host.h"
#include "host/vsp/netvsp.h"
#include "host/vsp/storvsp.h"
#include "hv/hvsim_abi.h"

#define MAX_ITEMS 16
#define SEC 1000000000ull

struct kv {
	uint8_t pool;
	char key[128];
	char value[256];
	bool done;			/* set answered / expectation checked */
	bool sent;
};

static struct {
	bool ic;
	const char *disks[MAX_ITEMS];
	unsigned ndisk;
	const char *nets[MAX_ITEMS];
	unsigned nnet;
	unsigned vcpus, mem_mib;
	double timeout_s;
	const char *skew;
	struct kv sets[MAX_ITEMS];
	unsigned nset;
	struct kv expects[MAX_ITEMS];
	unsigned nexpect;
	double shutdown_after, reboot_after;
	char **guest_argv;
} opt = { .vcpus = 2, .mem_mib = 128, .timeout_s = 60,
	  .shutdown_after = -1, .reboot_after = -1 };

static struct hvs_loop *loop;
static struct hvs_vmbus *srv;
static struct hvs_ic *ic;
static struct hvs_storage *storage;
static struct hvs_netvsp *nics[MAX_ITEMS];
static struct hvs_partition *part;
static pid_t pid;
static int last_status;		/* of the guest that exited last */
static bool exited;		/* the current guest exited (last_status) */
static bool ended, reboot_pending, rebooted, welcome_seen;
static int end_kind = -1, fails, boots;
static uint64_t boot_ns, sd_neg_ns;
static double scale = 1;

#define FAIL(...) do { fails++; printf("refhost: FAIL: " __VA_ARGS__); \
	printf("\n"); fflush(stdout); } while (0)

static uint64_t ref_time(void *arg)
{
	(void)arg;
	return (hvs_now_ns() - boot_ns) / 100u;
}

static void power_off_cb(void *arg, const char *why)
{
	(void)arg;
	printf("refhost: shutdown deadline passed (%s): powering off\n", why);
	if (part != NULL && !ended)
		hvs_partition_stop(part, HVS_END_POWER_OFF);
}

static void boot(void);

static void reboot_cb(void *arg)
{
	(void)arg;
	reboot_pending = false;
	boot();
}

static void ended_cb(void *arg, struct hvs_partition *p, int kind)
{
	(void)arg;
	(void)p;
	ended = true;
	end_kind = kind;
	printf("refhost: partition ended: %s\n", hvs_partition_end_name(kind));
	fflush(stdout);
	if (ic != NULL)
		hvs_ic_partition_ended(ic, kind);
	if (kind == HVS_END_REBOOT) {
		reboot_pending = true;
		hvs_loop_call(loop, reboot_cb, NULL);
	}
}

static void reap(bool kill_it)
{
	int st = 0;

	if (pid <= 0)
		return;
	if (kill_it)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	pid = 0;
	last_status = st;
	exited = true;
}

static void boot(void)
{
	struct hvs_partition_config pc;
	int sv[2];

	if (part != NULL) {
		hvs_partition_destroy(part);
		part = NULL;
	}
	reap(false);
	if (boots && (!WIFEXITED(last_status) || WEXITSTATUS(last_status)))
		FAIL("the guest before the reboot exited with status %#x",
		    last_status);
	exited = false;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		exit(2);
	memset(&pc, 0, sizeof(pc));
	pc.name = "refvm";
	pc.vcpus = opt.vcpus;
	pc.ram_bytes = (uint64_t)opt.mem_mib << 20;
	pc.ops = hvs_vmbus_partition_ops();
	pc.ops_arg = srv;
	pc.sock_fd = sv[0];
	pc.host_ended = ended_cb;
	pc.hello_timeout_ns = (uint64_t)(20e9 * scale);
	ended = false;
	welcome_seen = false;
	sd_neg_ns = 0;
	boot_ns = hvs_now_ns();
	if (hvs_partition_create(loop, &pc, &part) != 0)
		exit(2);
	hvs_vmbus_attach(srv, part);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		exit(2);
	if (pid == 0) {
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		setenv(HVSIM_ENV_FD, "3", 1);
		setenv("HVSIM_VM_NAME", "refvm", 1);
		if (opt.skew)
			setenv("VMBUS_POSIX_WALL_SKEW", opt.skew, 1);
		execv(opt.guest_argv[0], opt.guest_argv);
		_exit(127);
	}
	close(sv[1]);
	boots++;
}

/* ---- KVP script ---- */

static void set_done(void *arg, const struct hvs_ic_kvp_result *r)
{
	struct kv *kv = arg;

	kv->done = true;
	if (r->kr_err != 0)
		FAIL("kvp set %s: error %d (status %#x)", kv->key, r->kr_err,
		    r->kr_status);
	else
		printf("refhost: kvp set pool %u %s = %s\n", kv->pool, kv->key,
		    kv->value);
	fflush(stdout);
}

static void check_value(struct kv *kv, const char *got)
{
	if (strcmp(kv->value, "*") == 0 ? got[0] == '\0' :
	    strcmp(kv->value, got) != 0)
		FAIL("kvp pool %u %s = '%s', want '%s'", kv->pool, kv->key,
		    got, kv->value);
	else
		printf("refhost: kvp pool %u %s = '%s' ok\n", kv->pool,
		    kv->key, got);
	fflush(stdout);
}

static void get_done(void *arg, const struct hvs_ic_kvp_result *r)
{
	struct kv *kv = arg;

	if (kv->done)
		return;
	if (kv->pool == 1) {
		/* The guest pool is read by a walk (as a host does). */
		if (r->kr_last) {
			kv->done = true;
			FAIL("kvp pool 1 %s: not in the walk (err %d)", kv->key,
			    r->kr_err);
		} else if (r->kr_err == 0 && strcmp(r->kr_key, kv->key) == 0) {
			kv->done = true;
			check_value(kv, r->kr_value);
		}
		return;
	}
	kv->done = true;
	if (r->kr_err != 0)
		FAIL("kvp get pool %u %s: error %d", kv->pool, kv->key,
		    r->kr_err);
	else
		check_value(kv, r->kr_value);
}

static bool kvp_ready(void)
{
	struct hvs_ic_svc_status st;

	return ic != NULL && hvs_ic_get_status(ic, HVS_IC_KVP, &st) == 0 &&
	    st.ss_neg == HVS_IC_NEG_DONE;
}

static void kvp_script(void)
{
	bool sets_done = true;

	if (!kvp_ready())
		return;
	for (unsigned i = 0; i < opt.nset; i++) {
		struct kv *kv = &opt.sets[i];

		if (!kv->sent && hvs_ic_kvp_set(ic, kv->pool, kv->key,
		    kv->value, set_done, kv) == 0)
			kv->sent = true;
		sets_done &= kv->done;
	}
	if (!sets_done)
		return;
	for (unsigned i = 0; i < opt.nexpect; i++) {
		struct kv *kv = &opt.expects[i];
		int r;

		if (kv->sent)
			continue;
		r = kv->pool == 1 ? hvs_ic_kvp_list(ic, 1, get_done, kv) :
		    hvs_ic_kvp_get(ic, kv->pool, kv->key, get_done, kv);
		if (r == 0)
			kv->sent = true;
	}
}

static bool script_done(void)
{
	for (unsigned i = 0; i < opt.nset; i++)
		if (!opt.sets[i].done)
			return false;
	for (unsigned i = 0; i < opt.nexpect; i++)
		if (!opt.expects[i].done)
			return false;
	return true;
}

/* ---- shutdown script ---- */

static void sd_done(void *arg, int err, uint32_t status)
{
	(void)arg;
	printf("refhost: guest answered the shutdown request: err %d, "
	    "status %#x\n", err, status);
	fflush(stdout);
}

static void shutdown_script(void)
{
	struct hvs_ic_svc_status st;
	uint64_t now = hvs_now_ns();
	double after;
	uint32_t flags;
	int r;

	if (ic == NULL || ended || hvs_ic_get_status(ic, HVS_IC_SHUTDOWN,
	    &st) != 0 || st.ss_neg != HVS_IC_NEG_DONE) {
		return;
	}
	if (sd_neg_ns == 0)
		sd_neg_ns = now;
	if (opt.reboot_after >= 0 && !rebooted) {
		after = opt.reboot_after;
		flags = HVS_IC_SD_REBOOT;
	} else if (opt.shutdown_after >= 0) {
		after = opt.shutdown_after;
		flags = 0;
	} else {
		return;
	}
	/* The KVP script first, so a shutdown never overtakes it. */
	if (!script_done() ||
	    now < sd_neg_ns + (uint64_t)(after * scale * 1e9))
		return;
	r = hvs_ic_shutdown(ic, flags, (uint64_t)(20e9 * scale),
	    "refhost test", sd_done, NULL);
	if (r == -EBUSY)
		return;
	printf("refhost: %s requested (%d)\n", flags ? "reboot" : "shutdown",
	    r);
	fflush(stdout);
	if (r != 0)
		FAIL("hvs_ic_shutdown: %d", r);
	if (flags)
		rebooted = true;
	else
		opt.shutdown_after = -1;
}

/* ---- options ---- */

static int parse_kv(const char *s, struct kv *kv)
{
	const char *colon = strchr(s, ':'), *eq;

	if (colon == NULL || colon == s)
		return -1;
	eq = strchr(colon, '=');
	if (eq == NULL || eq == colon + 1)
		return -1;
	kv->pool = (uint8_t)atoi(s);
	snprintf(kv->key, sizeof(kv->key), "%.*s", (int)(eq - colon - 1),
	    colon + 1);
	snprintf(kv->value, sizeof(kv->value), "%s", eq + 1);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: refhost [--ic] [--disk SPEC]... [--net SPEC]... "
	    "[--vcpus N] [--memory MIB] [--timeout S] [--skew S]\n"
	    "  [--kvp-set POOL:KEY=VALUE]... [--expect-kvp POOL:KEY=VALUE]...\n"
	    "  [--shutdown-after S] [--reboot-after S] -- GUEST [ARG...]\n");
	return 2;
}

static int parse(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--ic") == 0) {
			opt.ic = true;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		if (strcmp(a, "--disk") == 0 && opt.ndisk < MAX_ITEMS)
			opt.disks[opt.ndisk++] = argv[++i];
		else if (strcmp(a, "--net") == 0 && opt.nnet < MAX_ITEMS)
			opt.nets[opt.nnet++] = argv[++i];
		else if (strcmp(a, "--vcpus") == 0)
			opt.vcpus = (unsigned)atoi(argv[++i]);
		else if (strcmp(a, "--memory") == 0)
			opt.mem_mib = (unsigned)atoi(argv[++i]);
		else if (strcmp(a, "--timeout") == 0)
			opt.timeout_s = atof(argv[++i]);
		else if (strcmp(a, "--skew") == 0)
			opt.skew = argv[++i];
		else if (strcmp(a, "--shutdown-after") == 0)
			opt.shutdown_after = atof(argv[++i]);
		else if (strcmp(a, "--reboot-after") == 0)
			opt.reboot_after = atof(argv[++i]);
		else if (strcmp(a, "--kvp-set") == 0 && opt.nset < MAX_ITEMS) {
			if (parse_kv(argv[++i], &opt.sets[opt.nset++]))
				return -1;
		} else if (strcmp(a, "--expect-kvp") == 0 &&
		    opt.nexpect < MAX_ITEMS) {
			if (parse_kv(argv[++i], &opt.expects[opt.nexpect++]))
				return -1;
		} else {
			return -1;
		}
	}
	if (i + 1 >= argc)
		return -1;
	opt.guest_argv = argv + i + 1;
	return 0;
}

static void poll_cb(void *arg)
{
	(void)arg;
	hvs_vmbus_poll(srv);
}

static void report(void)
{
	if (ic != NULL) {
		struct hvs_ic_hb_status hb;
		struct hvs_ic_ts_status ts;

		for (int s = 0; s < HVS_IC_NSVC; s++) {
			struct hvs_ic_svc_status st;

			if (hvs_ic_get_status(ic, (enum hvs_ic_svc)s, &st) != 0)
				continue;
			printf("refhost: ic %s: %s, framework %u.%u, version "
			    "%u.%u, %llu replies, %llu bad, %llu timeouts\n",
			    hvs_ic_svc_name((enum hvs_ic_svc)s),
			    hvs_ic_neg_name(st.ss_neg), st.ss_fw_major,
			    st.ss_fw_minor, st.ss_msg_major, st.ss_msg_minor,
			    (unsigned long long)st.ss_replies,
			    (unsigned long long)st.ss_bad_replies,
			    (unsigned long long)st.ss_timeouts);
			if (st.ss_bad_replies)
				FAIL("the guest sent %llu bad %s replies",
				    (unsigned long long)st.ss_bad_replies,
				    hvs_ic_svc_name((enum hvs_ic_svc)s));
		}
		if (hvs_ic_heartbeat_status(ic, &hb) == 0)
			printf("refhost: heartbeat: %llu good, %llu bad\n",
			    (unsigned long long)hb.hs_good,
			    (unsigned long long)hb.hs_bad);
		if (hvs_ic_timesync_status(ic, &ts) == 0)
			printf("refhost: timesync: %llu syncs, %llu samples, "
			    "%llu refused\n", (unsigned long long)ts.ts_syncs,
			    (unsigned long long)ts.ts_samples,
			    (unsigned long long)ts.ts_refused);
	}
	for (unsigned c = 0; storage != NULL && c < HVS_DISK_MAX_CONTROLLERS;
	    c++) {
		struct hvs_storvsp_stats ss;

		if (hvs_storage_get_stats(storage, c, &ss) != 0)
			continue;
		printf("refhost: scsi%u: %llu SRBs, %llu B read, %llu B "
		    "written, bad packets %llu, bad SRBs %llu, GPA faults %llu, "
		    "reserved nonzero %llu\n", c,
		    (unsigned long long)ss.ss_srbs,
		    (unsigned long long)ss.ss_bytes_read,
		    (unsigned long long)ss.ss_bytes_written,
		    (unsigned long long)ss.ss_bad_packets,
		    (unsigned long long)ss.ss_bad_srbs,
		    (unsigned long long)ss.ss_gpa_faults,
		    (unsigned long long)ss.ss_rsvd_nonzero);
		if (ss.ss_bad_packets || ss.ss_bad_srbs || ss.ss_gpa_faults ||
		    ss.ss_rsvd_nonzero)
			FAIL("scsi%u: the guest broke the VSTOR protocol", c);
	}
	for (unsigned n = 0; n < opt.nnet; n++) {
		struct hvs_netvsp_stats ns;

		hvs_netvsp_get_stats(nics[n], &ns);
		printf("refhost: net%u: tx %llu rx %llu, guest errors %llu, "
		    "bad completions %llu, reserved nonzero %llu\n", n,
		    (unsigned long long)ns.ns_tx_frames,
		    (unsigned long long)ns.ns_rx_frames,
		    (unsigned long long)ns.ns_guest_errors,
		    (unsigned long long)ns.ns_bad_completions,
		    (unsigned long long)ns.ns_rsvd_nonzero);
		if (ns.ns_guest_errors || ns.ns_bad_completions ||
		    ns.ns_rsvd_nonzero)
			FAIL("net%u: the guest broke the NVSP protocol", n);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct hvs_vmbus_config sc = { .vm_name = "refvm" };
	struct hvs_loop_timer *pt;
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");
	char err[256];
	uint64_t dl;
	int st;

	if (parse(argc, argv) != 0)
		return usage();
	if (s != NULL && atof(s) > 1)
		scale = atof(s);
	signal(SIGPIPE, SIG_IGN);
	loop = hvs_loop_create();
	srv = hvs_vmbus_create(&sc);
	if (loop == NULL || srv == NULL)
		return 2;
	if (opt.ic) {
		struct hvs_ic_config c;

		hvs_ic_config_init(&c);
		c.ic_loop = loop;
		c.ic_heartbeat_period_ns = SEC / 4;
		c.ic_timesync_period_ns = SEC / 2;
		c.ic_kvp_refresh_ns = 2 * SEC;
		c.ic_reply_timeout_ns = (uint64_t)(5e9 * scale);
		c.ic_ref_time = ref_time;
		c.ic_power_off = power_off_cb;
		if (hvs_ic_add(srv, &c, &ic) != 0)
			return 2;
	}
	if (opt.ndisk) {
		storage = hvs_storage_create(srv, loop);
		if (storage == NULL)
			return 2;
	}
	for (unsigned d = 0; d < opt.ndisk; d++) {
		struct hvs_disk_spec ds;

		if (hvs_disk_spec_parse(opt.disks[d], &ds, err,
		    sizeof(err)) != 0 || hvs_storage_add_disk(storage, &ds,
		    NULL, NULL, err, sizeof(err)) != 0) {
			fprintf(stderr, "refhost: --disk %s: %s\n",
			    opt.disks[d], err);
			return 2;
		}
	}
	for (unsigned n = 0; n < opt.nnet; n++) {
		struct hvs_net_spec ns;

		if (hvs_net_parse(opt.nets[n], &ns, err, sizeof(err)) != 0 ||
		    hvs_netvsp_add(srv, loop, &ns, n, &nics[n], err,
		    sizeof(err)) <= 0) {
			fprintf(stderr, "refhost: --net %s: %s\n", opt.nets[n],
			    err);
			return 2;
		}
	}
	pt = hvs_loop_timer_add(loop, 10000000, 10000000, poll_cb, NULL);
	boot();

	dl = hvs_now_ns() + (uint64_t)(opt.timeout_s * scale * 1e9);
	while (hvs_now_ns() < dl) {
		hvs_loop_run_once(loop, 5);
		if (!welcome_seen && part != NULL && !ended) {
			struct hvs_partition_stats ps;

			hvs_partition_get_stats(part, &ps);
			if (ps.ps_state == HVS_PART_RUNNING) {
				welcome_seen = true;
				boot_ns = hvs_now_ns();
			}
		}
		if (!ended) {
			kvp_script();
			shutdown_script();
		}
		if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
			pid = 0;
			last_status = st;
			exited = true;
		}
		if (exited && ended && !reboot_pending)
			break;
	}
	if (pid > 0 || !ended) {
		printf("refhost: timed out\n");
		report();
		if (part != NULL && !ended)
			hvs_partition_stop(part, HVS_END_GONE);
		reap(true);
		return 124;
	}
	report();
	if (!script_done())
		FAIL("the KVP script did not finish");
	if (opt.shutdown_after >= 0)
		FAIL("the shutdown was never requested");
	if (opt.reboot_after >= 0 && !rebooted)
		FAIL("the reboot was never requested");
	if (opt.reboot_after >= 0 && boots < 2)
		FAIL("the guest was not started again after the reboot");
	hvs_loop_timer_cancel(pt);
	hvs_partition_destroy(part);
	hvs_vmbus_destroy(srv);
	hvs_storage_destroy(storage);
	hvs_loop_destroy(loop);
	st = last_status;
	if (WIFSIGNALED(st)) {
		printf("refhost: guest killed by signal %d\n", WTERMSIG(st));
		return 128 + WTERMSIG(st);
	}
	if (WEXITSTATUS(st) != 0) {
		printf("refhost: guest exited %d\n", WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	return fails ? 1 : 0;
}
