/*
 * tests/storvsc/test_e2e.c - the StorVSC guest driver against the real
 * host: this test is the host (partition, VMBus server, storage VSP with a
 * raw image back end, from the host library), the guest is storvsc_e2e
 * (guest core, StorVSC driver, posix port) in its own process.
 *
 * The guest runs a random read/write/flush/discard workload checked byte
 * for byte against its in-memory model, reads the whole disk back, and
 * writes its model to a file; this side then compares that model with the
 * image file, and checks the VSP's counters (no malformed packet, no bad
 * SRB, no GPA fault, no non-zero reserved field from our guest).
 *
 * Matrix: every VSTOR version (host cap and guest cap), queue depths 1 to
 * 256, requests of 512 B to 8 MiB, multi-channel on and off, polled mode.
 * Hot plug: a second LUN added and removed while the first is busy.
 * Run one group with `test_storvsc_e2e GROUP` (versions, depth, channels,
 * polled, hotplug); no argument runs all.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/disk/disk.h"
#include "host/log.h"
#include "host/loop.h"
#include "host/partition_host.h"
#include "host/vmbus_server.h"
#include "host/vsp/storvsp.h"
#include "hv/hvsim_abi.h"

#define DISK_BYTES	(48ull << 20)

struct e2e {
	const char *scsi;		/* --scsi for controller 0, or NULL */
	uint32_t vcpus;
	uint32_t qd;
	uint32_t ops;
	const char *min_size, *max_size;
	const char *guest_max;		/* guest's newest VSTOR version */
	uint16_t expect;		/* version both must agree on */
	uint32_t guest_queues;		/* 0 = default, 1 = multi-channel off */
	uint32_t expect_queues;		/* at least */
	uint32_t depth;			/* guest driver depth per queue */
	bool polled;
	bool hotplug;			/* add and remove LUN 1 during I/O */
	const char *backend;
};

static char tmpdir[64];

static void log_sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	if (getenv("STORVSC_E2E_VERBOSE") || level <= HVS_LOG_WARN)
		fprintf(stderr, "%s\n", line);
}

static uint64_t scale(void)
{
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");

	return s != NULL && atoi(s) > 0 ? (uint64_t)atoi(s) : 1;
}

struct host {
	struct hvs_loop *loop;
	struct hvs_vmbus *srv;
	struct hvs_storage *st;
	struct hvs_partition *part;
	bool ended;
};

static void part_ended(void *arg, struct hvs_partition *p, int kind)
{
	struct host *h = arg;

	(void)p;
	(void)kind;
	h->ended = true;
}

/* The image and the guest's model must be the same bytes. */
static void compare_files(const char *a, const char *b)
{
	static uint8_t ba[1 << 20], bb[1 << 20];
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	uint64_t off = 0;

	assert_true(fa >= 0);
	assert_true(fb >= 0);
	for (;;) {
		ssize_t na = read(fa, ba, sizeof(ba));
		ssize_t nb = read(fb, bb, sizeof(bb));

		assert_true(na >= 0 && nb >= 0);
		if (na != nb || memcmp(ba, bb, (size_t)na) != 0)
			fail_msg("image and model differ near byte %llu",
			    (unsigned long long)off);
		if (na == 0)
			break;
		off += (uint64_t)na;
	}
	assert_int_equal(off, DISK_BYTES);
	close(fa);
	close(fb);
}

static void run_one(const struct e2e *t)
{
	static unsigned n;
	struct host *h = calloc(1, sizeof(*h));
	char name[32], img[128], model[128], img2[128], spec[256], err[256];
	struct hvs_disk_spec ds;
	struct hvs_storvsp_stats ss;
	int sv[2], status = 0;
	bool exited = false;
	pid_t pid;

	assert_non_null(h);
	snprintf(name, sizeof(name), "sv%u", ++n);
	snprintf(img, sizeof(img), "%s/%s.img", tmpdir, name);
	snprintf(model, sizeof(model), "%s/%s.model", tmpdir, name);
	snprintf(img2, sizeof(img2), "%s/%s.hot.img", tmpdir, name);
	h->loop = hvs_loop_create();
	assert_non_null(h->loop);
	struct hvs_vmbus_config sc = { .vm_name = name };
	h->srv = hvs_vmbus_create(&sc);
	assert_non_null(h->srv);
	h->st = hvs_storage_create(h->srv, h->loop);
	assert_non_null(h->st);
	if (t->scsi != NULL) {
		struct hvs_storvsp_config cc;
		unsigned idx;

		assert_int_equal(hvs_storage_controller_parse(t->scsi, &idx, &cc,
		    err, sizeof(err)), 0);
		assert_int_equal(hvs_storage_config_controller(h->st, idx, &cc,
		    false), 0);
	}
	snprintf(spec, sizeof(spec), "%s,create,size=%llu,backend=%s", img,
	    (unsigned long long)DISK_BYTES, t->backend ? t->backend : "auto");
	assert_int_equal(hvs_disk_spec_parse(spec, &ds, err, sizeof(err)), 0);
	if (hvs_storage_add_disk(h->st, &ds, NULL, NULL, err, sizeof(err)) != 0)
		fail_msg("add disk %s: %s", spec, err);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	struct hvs_partition_config pc = {
		.name = name, .vcpus = t->vcpus, .ram_bytes = 256u << 20,
		.ops = hvs_vmbus_partition_ops(), .ops_arg = h->srv,
		.sock_fd = sv[0], .host_ended = part_ended, .host_arg = h,
		.hello_timeout_ns = 20000000000ull * scale(),
	};
	assert_int_equal(hvs_partition_create(h->loop, &pc, &h->part), 0);
	hvs_vmbus_attach(h->srv, h->part);

	const char *guest = getenv("STORVSC_E2E_GUEST");
	char a_qd[16], a_ops[16], a_q[16], a_eq[16], a_ev[16], a_seed[16];
	char a_depth[16];
	const char *argv[40];
	int ac = 0;

	assert_non_null(guest);
	snprintf(a_qd, sizeof(a_qd), "%u", t->qd);
	snprintf(a_ops, sizeof(a_ops), "%u", t->ops);
	snprintf(a_q, sizeof(a_q), "%u", t->guest_queues);
	snprintf(a_eq, sizeof(a_eq), "%u", t->expect_queues);
	snprintf(a_ev, sizeof(a_ev), "%u.%u", t->expect >> 8, t->expect & 0xFF);
	snprintf(a_seed, sizeof(a_seed), "%u", n);
	argv[ac++] = guest;
	argv[ac++] = "--qd"; argv[ac++] = a_qd;
	argv[ac++] = "--ops"; argv[ac++] = a_ops;
	argv[ac++] = "--min-size"; argv[ac++] = t->min_size;
	argv[ac++] = "--max-size"; argv[ac++] = t->max_size;
	argv[ac++] = "--seed"; argv[ac++] = a_seed;
	argv[ac++] = "--model"; argv[ac++] = model;
	argv[ac++] = "--expect-version"; argv[ac++] = a_ev;
	argv[ac++] = "--queues"; argv[ac++] = a_q;
	argv[ac++] = "--expect-queues"; argv[ac++] = a_eq;
	if (t->guest_max) {
		argv[ac++] = "--max-version";
		argv[ac++] = t->guest_max;
	}
	if (t->polled)
		argv[ac++] = "--polled";
	if (t->hotplug)
		argv[ac++] = "--hotplug";
	if (t->depth) {
		snprintf(a_depth, sizeof(a_depth), "%u", t->depth);
		argv[ac++] = "--depth";
		argv[ac++] = a_depth;
	}
	argv[ac] = NULL;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		setenv(HVSIM_ENV_FD, "3", 1);
		execv(guest, (char *const *)argv);
		_exit(127);
	}
	close(sv[1]);

	uint64_t deadline = hvs_now_ns() + 120000000000ull * scale();
	uint64_t added_at = 0;
	bool have_stats = false, added = false, removed = false;

	while (hvs_now_ns() < deadline && !(exited && h->ended)) {
		hvs_loop_run_once(h->loop, 5);
		/* The counters while the controller still exists. */
		if (hvs_storage_get_stats(h->st, 0, &ss) == 0 &&
		    ss.ss_version != 0)
			have_stats = true;
		/* Hot add once I/O runs; hot remove once it ran a while. */
		if (t->hotplug && have_stats && !added && ss.ss_srbs >= 300) {
			snprintf(spec, sizeof(spec),
			    "%s,create,size=8M,lun=1", img2);
			assert_int_equal(hvs_disk_spec_parse(spec, &ds, err,
			    sizeof(err)), 0);
			if (hvs_storage_add_disk(h->st, &ds, NULL, NULL, err,
			    sizeof(err)) != 0)
				fail_msg("hot add: %s", err);
			added = true;
			added_at = ss.ss_srbs;
		}
		if (t->hotplug && added && !removed &&
		    ss.ss_srbs >= added_at + 3000) {
			assert_int_equal(hvs_storage_remove_disk(h->st, 0, 1), 0);
			removed = true;
		}
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("guest did not finish in time");
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(have_stats);
	assert_int_equal(hvs_storage_get_stats(h->st, 0, &ss), 0);
	/* Our guest broke no rule and left no reserved byte set. */
	assert_int_equal(ss.ss_bad_packets, 0);
	assert_int_equal(ss.ss_bad_srbs, 0);
	assert_int_equal(ss.ss_gpa_faults, 0);
	assert_int_equal(ss.ss_rsvd_nonzero, 0);
	assert_int_equal(ss.ss_io_errors, 0);
	assert_true(ss.ss_srbs >= t->ops);
	if (t->hotplug) {
		assert_true(added && removed);
		assert_true(ss.ss_notifications >= 2);
	}

	hvs_partition_destroy(h->part);
	hvs_vmbus_destroy(h->srv);	/* closes the disk */
	hvs_storage_destroy(h->st);
	hvs_loop_destroy(h->loop);
	compare_files(img, model);
	if (t->hotplug) {
		/* The guest wrote to the hot disk while it was there. */
		static uint8_t hb[8 << 20];
		int fd = open(img2, O_RDONLY);
		ssize_t got;
		bool any = false;

		assert_true(fd >= 0);
		got = read(fd, hb, sizeof(hb));
		assert_true(got > 0);
		for (ssize_t i = 0; i < got && !any; i++)
			any = hb[i] != 0;
		assert_true(any);
		close(fd);
		unlink(img2);
	}
	unlink(img);
	unlink(model);
	free(h);
}

/* ---- the matrix ---- */

static void test_versions(void **state)
{
	static const struct { const char *scsi; uint16_t v; uint32_t q; } m[] = {
		{ "0,version=6.2", 0x0602, 2 },
		{ "0,version=6.0", 0x0600, 2 },
		{ "0,version=5.1", 0x0501, 2 },
		{ "0,version=4.2", 0x0402, 1 },	/* pre-WIN8: 48-byte packets */
		{ "0,version=2.0", 0x0200, 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		struct e2e t = {
			.scsi = m[i].scsi, .vcpus = 2, .qd = 16, .ops = 400,
			.min_size = "512", .max_size = "1M", .expect = m[i].v,
			.expect_queues = m[i].q,
		};

		run_one(&t);
	}
	/* The guest's cap decides too. */
	struct e2e g = {
		.vcpus = 2, .qd = 16, .ops = 200, .min_size = "512",
		.max_size = "256K", .guest_max = "4.2", .expect = 0x0402,
		.expect_queues = 1,
	};

	run_one(&g);
}

static void test_depth(void **state)
{
	(void)state;
	/* One request at a time, up to 8 MiB (split at the transfer
	 * limit). */
	struct e2e a = {
		.vcpus = 2, .qd = 1, .ops = 120, .min_size = "512",
		.max_size = "8M", .expect = 0x0602, .expect_queues = 2,
	};
	/* Deep queue of small requests: beyond the per-channel depth. */
	struct e2e b = {
		.vcpus = 2, .qd = 256, .ops = 4000, .min_size = "512",
		.max_size = "64K", .expect = 0x0602, .expect_queues = 2,
	};
	/* Medium depth, mixed sizes to 4 MiB. */
	struct e2e c = {
		.vcpus = 2, .qd = 32, .ops = 600, .min_size = "512",
		.max_size = "4M", .expect = 0x0602, .expect_queues = 2,
		.backend = "threads",
	};

	run_one(&a);
	run_one(&b);
	run_one(&c);
}

static void test_channels(void **state)
{
	(void)state;
	/* Multi-channel off on the guest side, more requests than the
	 * single queue has slots: they wait inside the driver. */
	struct e2e off = {
		.vcpus = 4, .qd = 300, .ops = 3000, .min_size = "512",
		.max_size = "32K", .guest_queues = 1, .expect = 0x0602,
		.expect_queues = 1, .depth = 16,
	};
	/* Four vCPUs: three subchannels. */
	struct e2e on = {
		.vcpus = 4, .qd = 128, .ops = 3000, .min_size = "512",
		.max_size = "128K", .expect = 0x0602, .expect_queues = 4,
	};
	/* The host offers none. */
	struct e2e none = {
		.scsi = "0,subchannels=0", .vcpus = 4, .qd = 64, .ops = 1000,
		.min_size = "512", .max_size = "64K", .expect = 0x0602,
		.expect_queues = 1,
	};

	run_one(&off);
	run_one(&on);
	run_one(&none);
}

static void test_polled(void **state)
{
	(void)state;
	struct e2e p = {
		.vcpus = 2, .qd = 8, .ops = 400, .min_size = "512",
		.max_size = "512K", .expect = 0x0602, .expect_queues = 2,
		.polled = true,
	};

	run_one(&p);
}

static void test_hotplug(void **state)
{
	(void)state;
	/* A second disk comes and goes while the first one is busy:
	 * ENUMERATE_BUS adds it, REMOVE_DEVICE + ENUMERATE_BUS remove it. */
	struct e2e hp = {
		.vcpus = 2, .qd = 32, .ops = 500, .min_size = "512",
		.max_size = "64K", .expect = 0x0602, .expect_queues = 2,
		.hotplug = true,
	};

	run_one(&hp);
}

static int setup(void **state)
{
	(void)state;
	hvs_log_set_sink(log_sink, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest all[] = {
		cmocka_unit_test_setup(test_versions, setup),
		cmocka_unit_test_setup(test_depth, setup),
		cmocka_unit_test_setup(test_channels, setup),
		cmocka_unit_test_setup(test_polled, setup),
		cmocka_unit_test_setup(test_hotplug, setup),
	};
	static const char *names[] = { "versions", "depth", "channels",
	    "polled", "hotplug" };
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/storvsc_e2e.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (argc > 1) {
		r = -1;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(argv[1], names[i]))
				r = _cmocka_run_group_tests(names[i], &all[i],
				    1, NULL, NULL);
		if (r < 0) {
			fprintf(stderr, "unknown group %s\n", argv[1]);
			r = 2;
		}
	} else {
		r = cmocka_run_group_tests(all, NULL, NULL);
	}
	rmdir(tmpdir);
	return r;
}
