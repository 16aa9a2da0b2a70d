/*
 * tests/netvsc/nvrun.c - a minimal host for the NetVSC end-to-end test:
 * one partition whose VMBus server offers NetVSC NICs (the real NetVSP and
 * network back ends of the host library), and the guest program started
 * with HVSIM_FD, as hvsim does. Used until hvsim grows --net; the same
 * guest (nvguest) then runs under hvsim too (hvsim_e2e.sh).
 *
 *   nvrun [--nic SPEC]... [--vcpus N] [--memory MIB] [--timeout S]
 *         -- GUEST [ARG...]
 *
 * SPEC is a --net specification (docs/network.md); default: two NICs on
 * one internal switch. Exit status: the guest's, 124 on timeout, 2 on a
 * set-up error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/log.h"
#include "host/loop.h"
#include "host/net/net.h"
#include "host/partition_host.h"
#include "host/vmbus_server.h"
#include "host/vsp/netvsp.h"
#include "hv/hvsim_abi.h"

#define MAX_NICS 8

static int ended;

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

static int usage(void)
{
	fprintf(stderr, "usage: nvrun [--nic SPEC]... [--vcpus N] [--memory MIB] "
	    "[--timeout S] -- GUEST [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *nics[MAX_NICS];
	struct hvs_netvsp *nic[MAX_NICS];
	unsigned nnic = 0, vcpus = 2, mem_mib = 128;
	double timeout_s = 120, scale = 1;
	struct hvs_vmbus_config sc = { .vm_name = "nvrun" };
	struct hvs_partition_config pc;
	struct hvs_partition *part;
	struct hvs_vmbus *srv;
	struct hvs_loop *loop;
	char err[256];
	const char *s;
	int i, sv[2], st = 0, exited = 0, bad = 0;
	uint64_t dl;
	pid_t pid;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--nic") == 0 && nnic < MAX_NICS)
			nics[nnic++] = argv[++i];
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
	if (nnic == 0) {
		nics[nnic++] = "switch=nvrun";
		nics[nnic++] = "switch=nvrun";
	}
	s = getenv("VMBUS_TEST_TIME_SCALE");
	if (s != NULL && atof(s) > 1)
		scale = atof(s);

	loop = hvs_loop_create();
	srv = hvs_vmbus_create(&sc);
	if (loop == NULL || srv == NULL)
		return 2;
	for (unsigned n = 0; n < nnic; n++) {
		struct hvs_net_spec ns;

		if (hvs_net_parse(nics[n], &ns, err, sizeof(err)) != 0 ||
		    hvs_netvsp_add(srv, loop, &ns, n, &nic[n], err,
		    sizeof(err)) <= 0) {
			fprintf(stderr, "nvrun: --nic %s: %s\n", nics[n], err);
			return 2;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return 2;
	memset(&pc, 0, sizeof(pc));
	pc.name = "nvrun";
	pc.vcpus = vcpus;
	pc.ram_bytes = (uint64_t)mem_mib << 20;
	pc.ops = hvs_vmbus_partition_ops();
	pc.ops_arg = srv;
	pc.sock_fd = sv[0];
	pc.host_ended = part_ended;
	pc.hello_timeout_ns = (uint64_t)(20e9 * scale);
	if (hvs_partition_create(loop, &pc, &part) != 0)
		return 2;
	hvs_vmbus_attach(srv, part);

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		char fd[8];

		if (dup2(sv[1], 3) < 0)
			_exit(126);
		snprintf(fd, sizeof(fd), "3");
		setenv(HVSIM_ENV_FD, fd, 1);
		execv(argv[i + 1], argv + i + 1);
		_exit(127);
	}
	close(sv[1]);
	dl = now_ns() + (uint64_t)(timeout_s * scale * 1e9);
	while (!(exited && ended) && now_ns() < dl) {
		hvs_loop_run_once(loop, 5);
		if (!exited && waitpid(pid, &st, WNOHANG) == pid)
			exited = 1;
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fprintf(stderr, "nvrun: guest timed out\n");
		return 124;
	}
	/* The host's view: a clean guest breaks no rule and sends no
	 * garbage in reserved fields (hostile-host.md 10). */
	for (unsigned n = 0; n < nnic; n++) {
		struct hvs_netvsp_stats ns;

		hvs_netvsp_get_stats(nic[n], &ns);
		printf("nvrun: NIC %u: host saw tx %llu rx %llu, guest errors "
		    "%llu, bad completions %llu, reserved nonzero %llu\n", n,
		    (unsigned long long)ns.ns_tx_frames,
		    (unsigned long long)ns.ns_rx_frames,
		    (unsigned long long)ns.ns_guest_errors,
		    (unsigned long long)ns.ns_bad_completions,
		    (unsigned long long)ns.ns_rsvd_nonzero);
		if (ns.ns_guest_errors || ns.ns_bad_completions ||
		    ns.ns_rsvd_nonzero)
			bad = 1;
	}
	hvs_partition_destroy(part);
	hvs_vmbus_destroy(srv);
	hvs_loop_destroy(loop);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	if (WEXITSTATUS(st) == 0 && bad)
		return 3;
	return WEXITSTATUS(st);
}
