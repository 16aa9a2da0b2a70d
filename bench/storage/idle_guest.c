/*
 * bench/storage/idle_guest.c - an idle VM: the guest core, the posix port,
 * StorVSC and NetVSC brought up (a disk found, the NIC opened), then no
 * I/O for S seconds while it measures the CPU time spent by itself (all
 * its threads) and by its host (the parent process, /proc/PPID/stat):
 * what an idle VM costs, host and guest together. Also reports the time
 * from the host's start (BENCH_T0_NS, set by benchhost before exec) to
 * every device up.
 *
 *   idle_guest [--seconds S]
 *
 * Output: RESULT {"up_ms": ..., "seconds": S, "guest_cpu_s": ...,
 * "host_cpu_s": ..., "cpu_pct": ...} (cpu_pct: percent of one core).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vmbus/netvsc.h"
#include "vmbus/posix.h"
#include "vmbus/storvsc.h"
#include "vmbus/vmbus.h"

static struct netvsc_dev *nic;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int nic_attach(void *arg, struct netvsc_dev *nd)
{
	(void)arg;
	if (nic == NULL)
		nic = nd;
	return 0;
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of process pid (every thread), seconds; -1 if unknown. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command name may hold spaces */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px;
	struct vmbus *vb;
	struct storvsc *sv;
	struct netvsc_config nc;
	double seconds = 10, g0, g1, h0, h1;
	const char *t0s = getenv("BENCH_T0_NS");
	uint64_t up_ns, t0, t1;
	pid_t host = getppid();
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else {
			fprintf(stderr, "usage: idle_guest [--seconds S]\n");
			return 2;
		}
	}
	memset(&nc, 0, sizeof(nc));
	nc.nc_attach = nic_attach;
	vmbus_posix_options_init(&po);
	po.po_log_prefix = "idle";
	if (vmbus_posix_create(&po, &plat, &px) != 0)
		return 1;
	r = vmbus_create(&plat, NULL, &vb);
	if (r == 0)
		r = storvsc_create(vb, NULL, &sv);
	if (r == 0)
		r = netvsc_register(vb, &nc);
	if (r == 0)
		r = vmbus_connect(vb);
	if (r == 0 && (nic == NULL || storvsc_disk_count(sv) == 0))
		r = -VMBUS_ENODEV;
	if (r == 0)
		r = netvsc_up(nic);
	if (r != 0) {
		fprintf(stderr, "idle: devices did not come up: %d\n", r);
		return 1;
	}
	up_ns = now_ns();
	/* let the bring-up's last messages settle, then measure */
	{
		struct timespec ts = { 0, 200000000 };

		nanosleep(&ts, NULL);
	}
	t0 = now_ns();
	g0 = self_cpu_s();
	h0 = proc_cpu_s(host);
	{
		struct timespec ts = { (time_t)seconds,
		    (long)((seconds - (double)(time_t)seconds) * 1e9) };

		nanosleep(&ts, NULL);
	}
	g1 = self_cpu_s();
	h1 = proc_cpu_s(host);
	t1 = now_ns();
	{
		double dt = (double)(t1 - t0) / 1e9;
		double hc = h0 >= 0 && h1 >= 0 ? h1 - h0 : 0;

		printf("RESULT {\"up_ms\": %.1f, \"seconds\": %.3f, "
		    "\"guest_cpu_s\": %.4f, \"host_cpu_s\": %.4f, "
		    "\"host_measured\": %s, \"cpu_pct\": %.3f}\n",
		    t0s ? (double)(up_ns - strtoull(t0s, NULL, 10)) / 1e6 : -1.0,
		    dt, g1 - g0, hc, h0 >= 0 ? "true" : "false",
		    100.0 * ((g1 - g0) + hc) / dt);
		fflush(stdout);
	}
	vmbus_unload(vb);
	vmbus_destroy(vb);
	netvsc_unregister(vb);
	storvsc_destroy(sv);
	vmbus_posix_destroy(px);
	return 0;
}
