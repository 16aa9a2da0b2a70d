/*
 * bench/storage/benchhost.c - the host half of the storage, network and
 * idle benchmarks: one partition whose VMBus server offers the devices the
 * command line names (the real storage VSP and NetVSP of the host library,
 * with their real back ends), and the guest program started with HVSIM_FD,
 * as hvsim does. Used by bench/run until hvsim has --disk and --net.
 *
 *   benchhost [--disk SPEC]... [--scsi SPEC] [--nic SPEC]... [--vcpus N]
 *             [--memory MIB] [--timeout S] -- GUEST [ARG...]
 *
 * SPECs are hvsim's --disk, --scsi and --net syntax (docs/storage.md,
 * docs/network.md). The guest's stdout is passed through (its RESULT
 * line); at the end this prints one line
 *   HOST {"storage": {...}, "net": [{...}], "cpu_s": X}
 * with the VSPs' counters (so a run that lost or refused data shows it)
 * and the host's own CPU time. Exit status: the guest's, 124 on timeout,
 * 2 on a set-up error, 3 if the host saw the guest break a rule.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/disk/disk.h"
#include "host/loop.h"
#include "host/net/net.h"
#include "host/partition_host.h"
#include "host/vmbus_server.h"
#include "host/vsp/netvsp.h"
#include "host/vsp/storvsp.h"
#include "hv/hvsim_abi.h"

#define MAX_DEV 8

#define POLL_NS 10000000ull	/* hvs_vmbus_poll backstop, as hvsim's */

static int ended;
static struct hvs_vmbus *g_srv;

static void poll_cb(void *arg)
{
	(void)arg;
	if (!ended)
		hvs_vmbus_poll(g_srv);
}

static void part_ended(void *arg, struct hvs_partition *p, int kind)
{
	(void)arg;
	(void)p;
	(void)kind;
	ended = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_self_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: benchhost [--disk SPEC]... [--scsi SPEC] "
	    "[--nic SPEC]... [--vcpus N] [--memory MIB] [--timeout S] "
	    "-- GUEST [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *disks[MAX_DEV], *nics[MAX_DEV], *scsi = NULL;
	struct hvs_netvsp *nic[MAX_DEV];
	unsigned ndisk = 0, nnic = 0, vcpus = 2, mem_mib = 256;
	double timeout_s = 300;
	struct hvs_vmbus_config sc = { .vm_name = "bench" };
	struct hvs_partition_config pc;
	struct hvs_partition *part;
	struct hvs_storage *st = NULL;
	struct hvs_vmbus *srv;
	struct hvs_loop *loop;
	struct hvs_loop_timer *poll_timer;
	char err[256];
	int i, sv[2], status = 0, exited = 0, bad = 0;
	uint64_t dl;
	pid_t pid;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--disk") == 0 && ndisk < MAX_DEV)
			disks[ndisk++] = argv[++i];
		else if (strcmp(argv[i], "--nic") == 0 && nnic < MAX_DEV)
			nics[nnic++] = argv[++i];
		else if (strcmp(argv[i], "--scsi") == 0)
			scsi = argv[++i];
		else if (strcmp(argv[i], "--vcpus") == 0)
			vcpus = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--memory") == 0)
			mem_mib = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--timeout") == 0)
			timeout_s = atof(argv[++i]);
		else
			return usage();
	}
	if (i + 1 >= argc)
		return usage();

	loop = hvs_loop_create();
	srv = hvs_vmbus_create(&sc);
	if (loop == NULL || srv == NULL)
		return 2;
	if (ndisk > 0 || scsi != NULL) {
		st = hvs_storage_create(srv, loop);
		if (st == NULL)
			return 2;
	}
	if (scsi != NULL) {
		struct hvs_storvsp_config cc;
		unsigned idx;

		if (hvs_storage_controller_parse(scsi, &idx, &cc, err,
		    sizeof(err)) != 0 ||
		    hvs_storage_config_controller(st, idx, &cc, false) != 0) {
			fprintf(stderr, "benchhost: --scsi %s: %s\n", scsi, err);
			return 2;
		}
	}
	for (unsigned n = 0; n < ndisk; n++) {
		struct hvs_disk_spec ds;

		if (hvs_disk_spec_parse(disks[n], &ds, err, sizeof(err)) != 0 ||
		    hvs_storage_add_disk(st, &ds, NULL, NULL, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "benchhost: --disk %s: %s\n", disks[n],
			    err);
			return 2;
		}
	}
	for (unsigned n = 0; n < nnic; n++) {
		struct hvs_net_spec ns;

		if (hvs_net_parse(nics[n], &ns, err, sizeof(err)) != 0 ||
		    hvs_netvsp_add(srv, loop, &ns, n, &nic[n], err,
		    sizeof(err)) <= 0) {
			fprintf(stderr, "benchhost: --nic %s: %s\n", nics[n], err);
			return 2;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return 2;
	memset(&pc, 0, sizeof(pc));
	pc.name = "bench";
	pc.vcpus = vcpus;
	pc.ram_bytes = (uint64_t)mem_mib << 20;
	pc.ops = hvs_vmbus_partition_ops();
	pc.ops_arg = srv;
	pc.sock_fd = sv[0];
	pc.host_ended = part_ended;
	pc.hello_timeout_ns = 20000000000ull;
	if (hvs_partition_create(loop, &pc, &part) != 0)
		return 2;
	hvs_vmbus_attach(srv, part);
	g_srv = srv;
	poll_timer = hvs_loop_timer_add(loop, POLL_NS, POLL_NS, poll_cb, NULL);
	if (poll_timer == NULL)
		return 2;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		char t0[32];

		if (dup2(sv[1], 3) < 0)
			_exit(126);
		setenv(HVSIM_ENV_FD, "3", 1);
		/* the guest measures "host start to devices up" from here,
		 * unless the caller set the start itself (bench/run does) */
		snprintf(t0, sizeof(t0), "%llu", (unsigned long long)now_ns());
		setenv("BENCH_T0_NS", t0, 0);
		execv(argv[i + 1], argv + i + 1);
		_exit(127);
	}
	close(sv[1]);
	/* The loop wakes for every event and timer; the 100 ms bound is only
	 * for noticing the guest's exit, so an idle VM stays idle here. */
	dl = now_ns() + (uint64_t)(timeout_s * 1e9);
	while (!(exited && ended) && now_ns() < dl) {
		hvs_loop_run_once(loop, exited ? 5 : 100);
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = 1;
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fprintf(stderr, "benchhost: guest timed out\n");
		return 124;
	}

	printf("HOST {\"cpu_s\": %.3f", cpu_self_s());
	if (st != NULL) {
		struct hvs_storvsp_stats ss;

		if (hvs_storage_get_stats(st, 0, &ss) == 0) {
			printf(", \"storage\": {\"srbs\": %llu, \"completions\": %llu, "
			    "\"inflight\": %u, \"bytes_read\": %llu, "
			    "\"bytes_written\": %llu, \"channels\": %u, "
			    "\"bad_packets\": %llu, \"bad_srbs\": %llu, "
			    "\"gpa_faults\": %llu, \"io_errors\": %llu, "
			    "\"send_waits\": %llu, \"direct_ios\": %llu}",
			    (unsigned long long)ss.ss_srbs,
			    (unsigned long long)ss.ss_completions,
			    ss.ss_inflight,
			    (unsigned long long)ss.ss_bytes_read,
			    (unsigned long long)ss.ss_bytes_written,
			    ss.ss_channels,
			    (unsigned long long)ss.ss_bad_packets,
			    (unsigned long long)ss.ss_bad_srbs,
			    (unsigned long long)ss.ss_gpa_faults,
			    (unsigned long long)ss.ss_io_errors,
			    (unsigned long long)ss.ss_send_waits,
			    (unsigned long long)ss.ss_direct_ios);
			if (ss.ss_bad_packets || ss.ss_bad_srbs ||
			    ss.ss_gpa_faults || ss.ss_io_errors)
				bad = 1;
		}
	}
	printf(", \"net\": [");
	for (unsigned n = 0; n < nnic; n++) {
		struct hvs_netvsp_stats ns;

		hvs_netvsp_get_stats(nic[n], &ns);
		printf("%s{\"tx_frames\": %llu, \"rx_frames\": %llu, "
		    "\"queues\": %u, \"guest_errors\": %llu, "
		    "\"bad_completions\": %llu}", n ? ", " : "",
		    (unsigned long long)ns.ns_tx_frames,
		    (unsigned long long)ns.ns_rx_frames, ns.ns_queues_open,
		    (unsigned long long)ns.ns_guest_errors,
		    (unsigned long long)ns.ns_bad_completions);
		if (ns.ns_guest_errors || ns.ns_bad_completions)
			bad = 1;
	}
	printf("]}\n");
	fflush(stdout);
	hvs_loop_timer_cancel(poll_timer);
	hvs_partition_destroy(part);
	hvs_vmbus_destroy(srv);
	hvs_storage_destroy(st);
	hvs_loop_destroy(loop);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (WEXITSTATUS(status) == 0 && bad)
		return 3;
	return WEXITSTATUS(status);
}
