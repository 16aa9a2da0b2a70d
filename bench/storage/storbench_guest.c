/*
 * bench/storage/storbench_guest.c - the guest half of the storage
 * benchmark: the guest core, the posix port and the StorVSC driver drive
 * the first disk with fio-like jobs, run by benchhost (or hvsim --disk).
 *
 *   storbench_guest [--seconds S] JOB...
 *   JOB = KIND:BS:QD   KIND randread | randwrite | read | write
 *                      (read/write: sequential), BS in bytes (k/m
 *                      suffixes), QD requests in flight
 *
 * Each job keeps QD requests in flight for S seconds: every completion
 * resubmits its request from the completion callback (interrupt context
 * of the posix port), as a block layer would, so the main thread only
 * sleeps. Random offsets are BS-aligned over the whole disk; sequential
 * jobs advance one shared offset. The first 10% of S is warm-up; the
 * rate is counted over the rest. Buffers come from storvsc_buf_alloc
 * (described to the host directly, no bounce). A failed request is an
 * error, not a figure.
 *
 * Output: one line RESULT {"jobs": [{"job": "randread", "bs": 4096,
 * "qd": 32, "iops": ..., "bytes_s": ..., "lat_us": ..., "ios": N}], ...}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmbus/posix.h"
#include "vmbus/storvsc.h"
#include "vmbus/vmbus.h"

#define MAX_JOBS 16
#define MAX_QD 256u

struct job {
	char kind[16];
	bool write, random;
	uint32_t bs, qd;
};

struct slot {
	struct storvsc_io io;
	uint8_t *buf;
	uint64_t t_submit;
};

static struct {
	struct storvsc_disk *disk;
	uint64_t blocks;		/* disk size in 512-byte blocks */
	uint32_t block_size;
	const struct job *job;
	_Atomic bool stop;
	atomic_uint_fast64_t done;	/* completions */
	atomic_uint_fast64_t lat_ns;	/* summed latency */
	atomic_uint_fast64_t errors;
	atomic_uint_fast64_t seq;	/* sequential: next byte offset */
	atomic_uint_fast64_t rnd;	/* random: counter hashed to offsets */
	atomic_uint inflight;
	int first_error;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} g = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static struct vmbus *g_vb;

static void on_done(struct storvsc_io *io);

static int submit(struct slot *s)
{
	const struct job *j = g.job;
	uint64_t units = g.blocks * g.block_size / j->bs, off;
	uint32_t nb = j->bs / g.block_size;

	if (j->random)
		off = mix64(atomic_fetch_add(&g.rnd, 1)) % units;
	else
		off = atomic_fetch_add(&g.seq, 1) % units;
	s->t_submit = now_ns();
	if (j->write)
		return storvsc_write(g.disk, &s->io, off * nb, nb, s->buf,
		    on_done, s);
	return storvsc_read(g.disk, &s->io, off * nb, nb, s->buf, on_done, s);
}

static void retire(int err)
{
	pthread_mutex_lock(&g.mu);
	if (err != 0 && g.first_error == 0)
		g.first_error = err;
	if (atomic_fetch_sub(&g.inflight, 1) == 1)
		pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

/* Completion context: count, then resubmit unless the job ends. */
static void on_done(struct storvsc_io *io)
{
	struct slot *s = io->io_arg;
	int r;

	if (io->io_error != 0) {
		atomic_fetch_add(&g.errors, 1);
		atomic_store(&g.stop, true);
		retire(io->io_error);
		return;
	}
	atomic_fetch_add_explicit(&g.lat_ns, now_ns() - s->t_submit,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&g.done, 1, memory_order_relaxed);
	if (atomic_load(&g.stop)) {
		retire(0);
		return;
	}
	r = submit(s);
	if (r != 0) {
		atomic_fetch_add(&g.errors, 1);
		atomic_store(&g.stop, true);
		retire(r);
	}
}

static int parse_job(const char *arg, struct job *j)
{
	char kind[16], bs[16];
	char *end;
	unsigned qd;
	uint64_t v;

	if (sscanf(arg, "%15[a-z]:%15[0-9kKmM]:%u", kind, bs, &qd) != 3)
		return -1;
	memset(j, 0, sizeof(*j));
	snprintf(j->kind, sizeof(j->kind), "%s", kind);
	if (!strcmp(kind, "randread"))
		j->random = true;
	else if (!strcmp(kind, "randwrite"))
		j->random = j->write = true;
	else if (!strcmp(kind, "write"))
		j->write = true;
	else if (strcmp(kind, "read") != 0)
		return -1;
	v = strtoull(bs, &end, 10);
	if (*end == 'k' || *end == 'K')
		v <<= 10;
	else if (*end == 'm' || *end == 'M')
		v <<= 20;
	if (v < 512 || v > (8u << 20) || v % 512 || qd < 1 || qd > MAX_QD)
		return -1;
	j->bs = (uint32_t)v;
	j->qd = qd;
	return 0;
}

static int run_job(struct storvsc *sv, const struct job *j, double seconds,
		   bool first)
{
	struct slot *slots = calloc(j->qd, sizeof(*slots));
	uint64_t d0, l0, t0, d1, l1, t1;
	int r = 0;

	if (slots == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < j->qd; i++) {
		slots[i].buf = storvsc_buf_alloc(sv, j->bs);
		if (slots[i].buf == NULL) {
			r = -ENOMEM;
			goto out;
		}
		memset(slots[i].buf, 0x5A ^ (int)i, j->bs);
	}
	g.job = j;
	atomic_store(&g.stop, false);
	atomic_store(&g.done, 0);
	atomic_store(&g.lat_ns, 0);
	atomic_store(&g.errors, 0);
	atomic_store(&g.seq, 0);
	g.first_error = 0;
	atomic_store(&g.inflight, j->qd);
	for (uint32_t i = 0; i < j->qd; i++) {
		int e = submit(&slots[i]);

		if (e != 0) {
			atomic_store(&g.stop, true);
			/* the ones never started */
			for (uint32_t k = i; k < j->qd; k++)
				retire(e);
			break;
		}
	}
	{
		struct timespec ts = { 0, 0 };
		uint64_t warm = (uint64_t)(seconds * 0.1e9);
		uint64_t rest = (uint64_t)(seconds * 0.9e9);

		ts.tv_sec = (time_t)(warm / 1000000000ull);
		ts.tv_nsec = (long)(warm % 1000000000ull);
		nanosleep(&ts, NULL);
		t0 = now_ns();
		d0 = atomic_load(&g.done);
		l0 = atomic_load(&g.lat_ns);
		ts.tv_sec = (time_t)(rest / 1000000000ull);
		ts.tv_nsec = (long)(rest % 1000000000ull);
		nanosleep(&ts, NULL);
		d1 = atomic_load(&g.done);
		l1 = atomic_load(&g.lat_ns);
		t1 = now_ns();
	}
	atomic_store(&g.stop, true);
	{
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 20;	/* beyond the driver's request timeout */
		pthread_mutex_lock(&g.mu);
		while (atomic_load(&g.inflight) > 0)
			if (pthread_cond_timedwait(&g.cv, &g.mu, &dl) != 0)
				break;
		pthread_mutex_unlock(&g.mu);
	}
	if (atomic_load(&g.inflight) > 0) {
		unsigned stuck = atomic_load(&g.inflight);

		/* Diagnosis: an event the interrupt path missed shows up
		 * when the channels are polled once. */
		vmbus_poll(g_vb);
		nanosleep(&(struct timespec){ 1, 0 }, NULL);
		fprintf(stderr, "storbench: %u requests never completed; after "
		    "one vmbus_poll %u still outstanding\n", stuck,
		    atomic_load(&g.inflight));
		r = -ETIMEDOUT;
		goto out;	/* the host may still use the buffers: leak */
	}
	if (g.first_error != 0) {
		fprintf(stderr, "storbench: %s %u:%u failed: %s\n", j->kind,
		    j->bs, j->qd, storvsc_strerror(g.first_error));
		r = g.first_error;
	} else {
		double dt = (double)(t1 - t0) / 1e9, n = (double)(d1 - d0);

		printf("%s{\"job\": \"%s\", \"bs\": %u, \"qd\": %u, "
		    "\"iops\": %.1f, \"bytes_s\": %.0f, \"lat_us\": %.2f, "
		    "\"ios\": %" PRIu64 "}", first ? "" : ", ", j->kind, j->bs,
		    j->qd, n / dt, n * j->bs / dt,
		    n > 0 ? (double)(l1 - l0) / n / 1e3 : 0.0, d1 - d0);
		fflush(stdout);
	}
	for (uint32_t i = 0; i < j->qd; i++)
		if (slots[i].buf != NULL)
			storvsc_buf_free(sv, slots[i].buf, j->bs);
out:
	free(slots);
	return r;
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px;
	struct vmbus *vb;
	struct storvsc *sv;
	struct storvsc_disk_info di;
	struct storvsc_ctrl_info ci;
	struct storvsc_config scfg;
	struct job jobs[MAX_JOBS];
	unsigned njobs = 0;
	double seconds = 2;
	const char *t0s = getenv("BENCH_T0_NS");
	uint64_t up_ns;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (njobs < MAX_JOBS && parse_job(argv[i], &jobs[njobs]) == 0) {
			njobs++;
		} else {
			fprintf(stderr, "usage: storbench_guest [--seconds S] "
			    "KIND:BS:QD...  (KIND randread randwrite read write)\n");
			return 2;
		}
	}
	if (!(seconds > 0) || njobs == 0) {
		fprintf(stderr, "storbench: no job\n");
		return 2;
	}
	vmbus_posix_options_init(&po);
	po.po_log_prefix = "storbench";
	if (vmbus_posix_create(&po, &plat, &px) != 0)
		return 1;
	r = vmbus_create(&plat, NULL, &vb);
	g_vb = vb;
	memset(&scfg, 0, sizeof(scfg));
	/* a lost completion shows as -ETIMEDOUT (and st_timeouts) soon */
	scfg.sc_io_timeout_ns = 10000000000ull;
	if (r == 0)
		r = storvsc_create(vb, &scfg, &sv);
	if (r == 0)
		r = vmbus_connect(vb);
	if (r != 0) {
		fprintf(stderr, "storbench: start failed: %d\n", r);
		return 1;
	}
	up_ns = now_ns();
	g.disk = storvsc_disk_get(sv, 0);
	if (g.disk == NULL || storvsc_disk_info(g.disk, &di) != 0 ||
	    storvsc_ctrl_info(sv, 0, &ci) != 0 || di.di_block_size == 0) {
		fprintf(stderr, "storbench: no disk\n");
		return 1;
	}
	g.blocks = di.di_blocks;
	g.block_size = di.di_block_size;
	printf("RESULT {\"vstor\": \"%u.%u\", \"queues\": %u, "
	    "\"queue_depth\": %u, \"max_transfer\": %u, \"disk_bytes\": %" PRIu64
	    ", \"up_ms\": %.1f, \"jobs\": [", ci.ci_version >> 8,
	    ci.ci_version & 0xFF, ci.ci_queues, ci.ci_queue_depth,
	    ci.ci_max_transfer, di.di_blocks * di.di_block_size,
	    t0s ? (double)(up_ns - strtoull(t0s, NULL, 10)) / 1e6 : -1.0);
	for (unsigned k = 0; k < njobs && r == 0; k++) {
		if (jobs[k].bs % g.block_size ||
		    (uint64_t)jobs[k].bs > g.blocks * g.block_size) {
			fprintf(stderr, "storbench: bad block size for the disk\n");
			r = -EINVAL;
			break;
		}
		r = run_job(sv, &jobs[k], seconds, k == 0);
	}
	{
		struct storvsc_stats ss;

		storvsc_get_stats(sv, &ss);
		printf("], \"error\": %d, \"stats\": {\"ios\": %" PRIu64
		    ", \"io_errors\": %" PRIu64 ", \"bounced\": %" PRIu64
		    ", \"ring_full\": %" PRIu64 ", \"queue_waits\": %" PRIu64
		    ", \"splits\": %" PRIu64 ", \"timeouts\": %" PRIu64
		    ", \"late\": %" PRIu64 ", \"bad_ids\": %" PRIu64
		    ", \"bad_packets\": %" PRIu64 ", \"proto_errors\": %" PRIu64
		    "}}\n", r, ss.st_ios,
		    ss.st_io_errors, ss.st_bounced, ss.st_ring_full,
		    ss.st_queue_waits, ss.st_splits, ss.st_timeouts,
		    ss.st_late_completions, ss.st_bad_ids, ss.st_bad_packets,
		    ss.st_proto_errors);
		fflush(stdout);
	}
	storvsc_disk_put(g.disk);
	vmbus_unload(vb);
	vmbus_destroy(vb);
	storvsc_destroy(sv);
	vmbus_posix_destroy(px);
	return r ? 1 : 0;
}
