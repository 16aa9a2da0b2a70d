/*
 * tests/storvsc/storvsc_e2e.c - the guest half of the StorVSC end-to-end
 * test: started by hvsim (HVSIM_FD) with a --disk, it runs the guest core,
 * the posix port and the StorVSC driver, and drives a random workload of
 * reads, writes, flushes and discards at a given queue depth against the
 * first disk, checking every read byte for byte against an in-memory model
 * of the disk. At the end it reads the whole disk back, compares it with
 * the model, and optionally writes the model to a file so the test script
 * can compare it with the image file on the host.
 *
 * With --durability N (the crash test): after the workload and a final
 * SYNCHRONIZE CACHE, it writes the model (the durable state), prints
 * "storvsc_e2e: DURABLE", then makes N more writes that it never flushes,
 * each 512-byte block stamped with E2E_UNFLUSHED_MAGIC and its LBA,
 * prints "storvsc_e2e: UNFLUSHED N" and waits for the host to be killed
 * (it exits when its parent, the host, goes away).
 *
 * Exit status: 0 all checks passed, 1 a check failed, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmbus/posix.h"
#include "vmbus/storvsc.h"
#include "vmbus/vmbus.h"

#define BS	512u

static struct {
	uint32_t qd;
	uint64_t ops;
	uint32_t min_size, max_size;
	uint64_t seed;
	uint16_t max_version, expect_version;
	uint32_t queues;
	uint32_t expect_queues;
	uint32_t depth;
	bool polled;
	bool hotplug;
	const char *model_path;
	double time_limit;
	uint32_t budget_mb;
	uint32_t durability;
} opt = {
	.qd = 32, .ops = 2000, .min_size = 512, .max_size = 4u << 20,
	.seed = 1, .time_limit = 120, .budget_mb = 48,
};

struct req {
	struct storvsc_io io;
	uint8_t *buf;
	size_t cap;
	bool heap;
	bool busy;
	uint32_t op;
	uint64_t lba;
	uint32_t nblocks;
	struct req *next_done;
};

/* Hot plug: a second disk the host adds and removes during the run. */
static _Atomic bool started, hot_removed, main_removed;
static struct storvsc_disk *_Atomic hot_disk;
static struct storvsc_disk *main_disk;

static void on_disk_event(void *arg, struct storvsc_disk *d, int ev)
{
	(void)arg;
	/* Thread context (the rescan), no driver lock held. */
	if (!atomic_load(&started))
		return;
	if (d == main_disk) {
		if (ev == STORVSC_DISK_REMOVED)
			atomic_store(&main_removed, true);
		return;
	}
	if (ev == STORVSC_DISK_ADDED && atomic_load(&hot_disk) == NULL) {
		storvsc_disk_hold(d);
		atomic_store(&hot_disk, d);
		printf("storvsc_e2e: disk added during I/O\n");
	} else if (ev == STORVSC_DISK_REMOVED && d == atomic_load(&hot_disk)) {
		atomic_store(&hot_removed, true);
		printf("storvsc_e2e: disk removed during I/O\n");
	}
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct req *done_head;
static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_done(struct storvsc_io *io)
{
	struct req *r = io->io_arg;

	/* Completion context (interrupt thread or vmbus_poll): hand over. */
	pthread_mutex_lock(&mu);
	r->next_done = done_head;
	done_head = r;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: storvsc_e2e [options]   (under hvsim --disk ...)\n"
	    "  --qd N              requests in flight (1..1024, default 32)\n"
	    "  --ops N             requests in total (default 2000)\n"
	    "  --min-size B        smallest request (default 512)\n"
	    "  --max-size B        largest request (default 4M)\n"
	    "  --seed N\n"
	    "  --max-version X.Y   newest VSTOR version to offer\n"
	    "  --expect-version X.Y fail unless this version is negotiated\n"
	    "  --queues N          queues per controller (1: multi-channel off)\n"
	    "  --expect-queues N   fail unless at least N queues opened\n"
	    "  --depth N           driver queue depth per channel\n"
	    "  --hotplug           keep going until a second disk was added,\n"
	    "                      used and removed by the host\n"
	    "  --polled            no interrupt threads\n"
	    "  --model FILE        write the final model here\n"
	    "  --time-limit S      give up after S seconds (default 120)\n"
	    "  --durability N      then N unflushed writes; wait to be killed\n");
}

static uint16_t parse_version(const char *s)
{
	unsigned maj, min;

	if (sscanf(s, "%u.%u", &maj, &min) != 2 || maj > 255 || min > 255)
		return 0;
	return (uint16_t)(maj << 8 | min);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	if (*end == 'K' || *end == 'k')
		v <<= 10;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	return v;
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "qd", required_argument, NULL, 'q' },
		{ "ops", required_argument, NULL, 'n' },
		{ "min-size", required_argument, NULL, 'a' },
		{ "max-size", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 's' },
		{ "max-version", required_argument, NULL, 'v' },
		{ "expect-version", required_argument, NULL, 'V' },
		{ "queues", required_argument, NULL, 'Q' },
		{ "expect-queues", required_argument, NULL, 'E' },
		{ "polled", no_argument, NULL, 'P' },
		{ "depth", required_argument, NULL, 'D' },
		{ "hotplug", no_argument, NULL, 'H' },
		{ "model", required_argument, NULL, 'm' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "durability", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q': opt.qd = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'n': opt.ops = strtoull(optarg, NULL, 0); break;
		case 'a': opt.min_size = (uint32_t)parse_size(optarg); break;
		case 'b': opt.max_size = (uint32_t)parse_size(optarg); break;
		case 's': opt.seed = strtoull(optarg, NULL, 0); break;
		case 'v': opt.max_version = parse_version(optarg); break;
		case 'V': opt.expect_version = parse_version(optarg); break;
		case 'Q': opt.queues = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'E': opt.expect_queues = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'P': opt.polled = true; break;
		case 'D': opt.depth = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'H': opt.hotplug = true; break;
		case 'm': opt.model_path = optarg; break;
		case 't': opt.time_limit = strtod(optarg, NULL); break;
		case 'U': opt.durability = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (opt.durability && opt.model_path == NULL)
		return -1;
	if (opt.qd == 0 || opt.qd > 1024 || opt.min_size < BS ||
	    opt.max_size < opt.min_size || opt.min_size % BS ||
	    opt.max_size % BS)
		return -1;
	return 0;
}

struct run {
	struct vmbus *vb;
	struct storvsc *sv;
	struct storvsc_disk *d;
	uint64_t blocks;
	uint8_t *model;
	uint8_t *busy;		/* per block: in flight */
	bool discard;
	uint64_t errors;
	uint64_t n_read, n_write, n_flush, n_discard, bytes;
};

static bool range_free(struct run *w, uint64_t lba, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (w->busy[lba + i])
			return false;
	return true;
}

static void fail(struct run *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct run *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "storvsc_e2e: FAIL: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	w->errors++;
}

/* Choose and submit one request on r; false if nothing fit now. */
static bool submit_one(struct run *w, struct req *r)
{
	uint32_t maxb = (uint32_t)(r->cap / BS), minb = opt.min_size / BS;
	uint32_t kind = (uint32_t)(rnd() % 100), nb;
	uint64_t lba = 0;
	int err;

	if (maxb > w->blocks)
		maxb = (uint32_t)w->blocks;
	/* Log-uniform sizes: small requests dominate, large ones happen. */
	{
		uint32_t span = 0, b;

		while ((minb << (span + 1)) <= maxb && span < 30)
			span++;
		b = minb << (rnd() % (span + 1));
		nb = b / 2 + (uint32_t)(rnd() % (b / 2 + 1));
		if (nb < minb)
			nb = minb;
		if (nb > maxb)
			nb = maxb;
	}
	if (kind < 8) {
		r->op = STORVSC_OP_FLUSH;
	} else {
		int tries;

		r->op = kind < 50 ? STORVSC_OP_WRITE : kind < 92 ?
		    STORVSC_OP_READ : STORVSC_OP_DISCARD;
		if (r->op == STORVSC_OP_DISCARD && !w->discard)
			r->op = STORVSC_OP_WRITE;
		for (tries = 0; tries < 8; tries++) {
			lba = rnd() % (w->blocks - nb + 1);
			if (range_free(w, lba, nb))
				break;
		}
		if (tries == 8)
			return false;
		memset(w->busy + lba, 1, nb);
	}
	r->lba = lba;
	r->nblocks = nb;
	r->busy = true;
	switch (r->op) {
	case STORVSC_OP_WRITE:
		for (size_t i = 0; i < (size_t)nb * BS; i += 8) {
			uint64_t v = rnd();

			memcpy(r->buf + i, &v, 8);
		}
		err = storvsc_write(w->d, &r->io, lba, nb, r->buf, on_done, r);
		break;
	case STORVSC_OP_READ:
		memset(r->buf, 0xA5, (size_t)nb * BS);
		err = storvsc_read(w->d, &r->io, lba, nb, r->buf, on_done, r);
		break;
	case STORVSC_OP_DISCARD:
		err = storvsc_discard(w->d, &r->io, lba, nb, on_done, r);
		break;
	default:
		err = storvsc_flush(w->d, &r->io, on_done, r);
		break;
	}
	if (err != 0) {
		fail(w, "submit op %u lba %" PRIu64 " n %u: %s", r->op, lba, nb,
		    storvsc_strerror(err));
		if (r->op != STORVSC_OP_FLUSH)
			memset(w->busy + lba, 0, nb);
		r->busy = false;
		return false;
	}
	return true;
}

static void complete_one(struct run *w, struct req *r)
{
	size_t len = (size_t)r->nblocks * BS;
	uint8_t *m = w->model + r->lba * BS;

	if (r->io.io_error != 0) {
		fail(w, "op %u lba %" PRIu64 " n %u: %s (srb 0x%02x scsi 0x%02x "
		    "sense %x/%02x/%02x)", r->op, r->lba, r->nblocks,
		    storvsc_strerror(r->io.io_error), r->io.io_status.sr_srb_status,
		    r->io.io_status.sr_scsi_status, r->io.io_status.sr_sense_key,
		    r->io.io_status.sr_asc, r->io.io_status.sr_ascq);
	} else {
		switch (r->op) {
		case STORVSC_OP_WRITE:
			memcpy(m, r->buf, len);
			w->n_write++;
			w->bytes += len;
			break;
		case STORVSC_OP_READ:
			if (r->io.io_bytes != len)
				fail(w, "read of %zu bytes returned %" PRIu64,
				    len, r->io.io_bytes);
			if (memcmp(m, r->buf, len) != 0) {
				size_t i = 0;

				while (i < len && m[i] == r->buf[i])
					i++;
				fail(w, "read lba %" PRIu64 " n %u differs at "
				    "byte %zu (%s buffer)", r->lba, r->nblocks,
				    i, r->heap ? "heap" : "dma");
			}
			w->n_read++;
			w->bytes += len;
			break;
		case STORVSC_OP_DISCARD:
			memset(m, 0, len);	/* LBPRZ: holes read zero */
			w->n_discard++;
			break;
		default:
			w->n_flush++;
			break;
		}
	}
	if (r->op != STORVSC_OP_FLUSH)
		memset(w->busy + r->lba, 0, r->nblocks);
	r->busy = false;
}

/* Some synchronous I/O on the hot-added disk while it is there. */
static void hot_io(struct run *w)
{
	static uint8_t wbuf[4096], rbuf[4096];
	static uint64_t n;
	struct storvsc_disk *d = atomic_load(&hot_disk);
	struct storvsc_disk_info di;
	uint64_t lba;
	int r;

	if (d == NULL || atomic_load(&hot_removed) ||
	    storvsc_disk_info(d, &di) != 0 || di.di_blocks < 8)
		return;
	lba = rnd() % (di.di_blocks - 7);
	for (size_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i ^ n ^ lba);
	n++;
	r = storvsc_write_sync(d, lba, 8, wbuf);
	if (r == 0)
		r = storvsc_read_sync(d, lba, 8, rbuf);
	/* The host may take it away at any moment: -ENODEV is fine. */
	if (r != 0 && r != -VMBUS_ENODEV)
		fail(w, "hot disk I/O: %s", storvsc_strerror(r));
	else if (r == 0 && memcmp(wbuf, rbuf, sizeof(wbuf)) != 0)
		fail(w, "hot disk read back differs");
}

static int verify_all(struct run *w, uint8_t *buf, size_t cap)
{
	uint32_t step = (uint32_t)(cap / BS);

	for (uint64_t lba = 0; lba < w->blocks; lba += step) {
		uint32_t n = (uint32_t)(w->blocks - lba < step ?
		    w->blocks - lba : step);
		int r = storvsc_read_sync(w->d, lba, n, buf);

		if (r != 0) {
			fail(w, "final read lba %" PRIu64 ": %s", lba,
			    storvsc_strerror(r));
			return -1;
		}
		if (memcmp(buf, w->model + lba * BS, (size_t)n * BS) != 0) {
			fail(w, "final read lba %" PRIu64 " differs from the model",
			    lba);
			return -1;
		}
	}
	return 0;
}

/*
 * The crash test's second half: writes nobody flushes, then wait. Each
 * block says what it is, so the checker can tell an unflushed write the
 * cache happened to write back (allowed) from corruption.
 */
#define E2E_UNFLUSHED_MAGIC "E2E-UNFLUSHED-1"

static int unflushed_writes(struct run *w)
{
	uint8_t *buf = storvsc_buf_alloc(w->sv, 16 * BS);
	pid_t parent = getppid();
	uint64_t end, distinct = 0;

	if (buf == NULL)
		return -1;
	memset(w->busy, 0, w->blocks);	/* now: stamped blocks */
	for (uint32_t k = 0; k < opt.durability; k++) {
		uint32_t nb = 1 + (uint32_t)(rnd() % 16);
		uint64_t lba = rnd() % (w->blocks - nb + 1);
		int r;

		for (uint32_t b = 0; b < nb; b++) {
			uint8_t *p = buf + (size_t)b * BS;
			uint64_t v = lba + b;

			memcpy(p, E2E_UNFLUSHED_MAGIC, 16);
			memcpy(p + 16, &v, 8);
			memcpy(p + 24, &k, 4);
			for (size_t i = 28; i < BS; i++)
				p[i] = (uint8_t)rnd();
			distinct += !w->busy[lba + b];
			w->busy[lba + b] = 1;
		}
		r = storvsc_write_sync(w->d, lba, nb, buf);
		if (r != 0) {
			fail(w, "unflushed write %u: %s", k, storvsc_strerror(r));
			return -1;
		}
	}
	printf("storvsc_e2e: UNFLUSHED %u writes, %" PRIu64 " blocks\n",
	    opt.durability, distinct);
	fflush(stdout);
	/* The test kills the host now; then we are an orphan. */
	end = mono_ns() + (uint64_t)(opt.time_limit * 1e9);
	while (getppid() == parent && mono_ns() < end)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	if (getppid() == parent)
		fail(w, "the host was not killed");
	return 0;
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px = NULL;
	struct storvsc_config scfg;
	struct storvsc_disk_info di;
	struct storvsc_ctrl_info ci;
	struct storvsc_stats st;
	struct run w;
	struct req *reqs;
	uint64_t submitted = 0, completed = 0, t0, deadline;
	uint32_t inflight = 0, max_inflight = 0;
	size_t cap;
	int r;

	if (parse_args(argc, argv) != 0) {
		usage(stderr);
		return 2;
	}
	memset(&w, 0, sizeof(w));
	rng = opt.seed * 0x9E3779B97F4A7C15ull + 1;
	vmbus_posix_options_init(&po);
	po.po_polled = opt.polled ? 1 : 0;
	r = vmbus_posix_create(&po, &plat, &px);
	if (r != 0) {
		fprintf(stderr, "storvsc_e2e: no partition (%d)\n", r);
		return 2;
	}
	r = vmbus_create(&plat, NULL, &w.vb);
	memset(&scfg, 0, sizeof(scfg));
	scfg.sc_max_version = opt.max_version;
	scfg.sc_max_queues = opt.queues;
	scfg.sc_queue_depth = opt.depth;
	scfg.sc_disk_event = on_disk_event;
	if (r == 0)
		r = storvsc_create(w.vb, &scfg, &w.sv);
	if (r == 0)
		r = vmbus_connect(w.vb);
	if (r != 0) {
		fprintf(stderr, "storvsc_e2e: start failed: %d\n", r);
		return 1;
	}
	w.d = storvsc_disk_get(w.sv, 0);
	main_disk = w.d;
	atomic_store(&started, true);
	if (w.d == NULL || storvsc_disk_info(w.d, &di) != 0 ||
	    storvsc_ctrl_info(w.sv, 0, &ci) != 0) {
		fprintf(stderr, "storvsc_e2e: FAIL: no disk found\n");
		return 1;
	}
	printf("storvsc_e2e: VSTOR %u.%u, %u queue(s) x %u, max transfer %u, "
	    "disk %" PRIu64 " x %u (%s %s), discard %s\n",
	    ci.ci_version >> 8, ci.ci_version & 0xFF, ci.ci_queues,
	    ci.ci_queue_depth, ci.ci_max_transfer, di.di_blocks,
	    di.di_block_size, di.di_vendor, di.di_product,
	    di.di_discard ? "yes" : "no");
	if (di.di_block_size != BS) {
		fprintf(stderr, "storvsc_e2e: FAIL: block size %u\n",
		    di.di_block_size);
		return 1;
	}
	if (opt.expect_version && ci.ci_version != opt.expect_version)
		fail(&w, "negotiated 0x%04x, expected 0x%04x", ci.ci_version,
		    opt.expect_version);
	if (opt.expect_queues && ci.ci_queues < opt.expect_queues)
		fail(&w, "%u queues, expected at least %u", ci.ci_queues,
		    opt.expect_queues);
	w.blocks = di.di_blocks;
	w.discard = di.di_discard;
	/* The image starts sparse: all zeros. */
	w.model = calloc(w.blocks, BS);
	w.busy = calloc(w.blocks, 1);
	reqs = calloc(opt.qd, sizeof(*reqs));
	cap = opt.max_size;
	if ((uint64_t)cap * opt.qd > (uint64_t)opt.budget_mb << 20)
		cap = (size_t)(((uint64_t)opt.budget_mb << 20) / opt.qd) &
		    ~(size_t)(BS - 1);
	if (cap < opt.min_size)
		cap = opt.min_size;
	for (uint32_t i = 0; i < opt.qd; i++) {
		/* Every fourth buffer is plain heap: the bounce path. */
		reqs[i].heap = (i % 4) == 3;
		reqs[i].cap = cap;
		reqs[i].buf = reqs[i].heap ? malloc(cap) :
		    storvsc_buf_alloc(w.sv, cap);
		if (reqs[i].buf == NULL) {
			fprintf(stderr, "storvsc_e2e: no memory for buffers\n");
			return 1;
		}
	}
	if (w.model == NULL || w.busy == NULL)
		return 1;

	t0 = mono_ns();
	deadline = t0 + (uint64_t)(opt.time_limit * 1e9);
	while ((submitted < opt.ops || inflight > 0 ||
	    (opt.hotplug && !atomic_load(&hot_removed))) && w.errors == 0) {
		struct req *list;
		bool more = submitted < opt.ops ||
		    (opt.hotplug && !atomic_load(&hot_removed));

		for (uint32_t i = 0; i < opt.qd && more; i++) {
			if (reqs[i].busy)
				continue;
			if (!submit_one(&w, &reqs[i]))
				break;
			inflight++;
			submitted++;
			if (inflight > max_inflight)
				max_inflight = inflight;
		}
		if (opt.hotplug)
			hot_io(&w);
		if (opt.polled) {
			vmbus_poll(w.vb);
			storvsc_tick(w.sv);
		}
		pthread_mutex_lock(&mu);
		if (done_head == NULL && !opt.polled) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			(void)pthread_cond_timedwait(&cv, &mu, &ts);
		}
		list = done_head;
		done_head = NULL;
		pthread_mutex_unlock(&mu);
		/* Nothing came back this round: let timeouts fire. */
		if (!opt.polled && list == NULL)
			storvsc_tick(w.sv);
		while (list != NULL) {
			struct req *n = list->next_done;

			complete_one(&w, list);
			inflight--;
			completed++;
			list = n;
		}
		if (mono_ns() > deadline) {
			fail(&w, "time limit: %" PRIu64 " of %" PRIu64
			    " done, %u in flight", completed, opt.ops, inflight);
			break;
		}
	}
	if (w.errors == 0) {
		size_t vcap = 1u << 20;
		uint8_t *vbuf = storvsc_buf_alloc(w.sv, vcap);

		if (vbuf == NULL || verify_all(&w, vbuf, vcap) != 0)
			w.errors++;
		storvsc_buf_free(w.sv, vbuf, vcap);
	}
	storvsc_get_stats(w.sv, &st);
	printf("storvsc_e2e: %" PRIu64 " requests in %.2f s (%" PRIu64 " read, %"
	    PRIu64 " write, %" PRIu64 " flush, %" PRIu64 " discard, %.1f MiB); "
	    "srbs %" PRIu64 ", splits %" PRIu64 ", bounced %" PRIu64
	    ", queue waits %" PRIu64 ", ring full %" PRIu64 ", max in flight %u\n",
	    completed, (double)(mono_ns() - t0) / 1e9, w.n_read, w.n_write,
	    w.n_flush, w.n_discard, (double)w.bytes / 1048576.0, st.st_srbs,
	    st.st_splits, st.st_bounced, st.st_queue_waits, st.st_ring_full,
	    max_inflight);
	if (st.st_proto_errors || st.st_bad_ids || st.st_bad_packets ||
	    st.st_bad_status || st.st_clamped || st.st_timeouts ||
	    st.st_broken_queues)
		fail(&w, "protocol counters: proto %" PRIu64 " ids %" PRIu64
		    " packets %" PRIu64 " status %" PRIu64 " clamped %" PRIu64
		    " timeouts %" PRIu64 " broken %" PRIu64, st.st_proto_errors,
		    st.st_bad_ids, st.st_bad_packets, st.st_bad_status,
		    st.st_clamped, st.st_timeouts, st.st_broken_queues);
	if (opt.model_path && w.errors == 0) {
		FILE *f = fopen(opt.model_path, "wb");

		if (f == NULL || fwrite(w.model, BS, w.blocks, f) != w.blocks ||
		    fclose(f) != 0)
			fail(&w, "cannot write %s: %s", opt.model_path,
			    strerror(errno));
	}
	/* Flush so the host's image holds everything before we go. */
	if (storvsc_flush_sync(w.d) != 0)
		fail(&w, "final flush");
	if (opt.durability && w.errors == 0) {
		/* Acknowledged and flushed: this must survive the host. */
		printf("storvsc_e2e: DURABLE\n");
		fflush(stdout);
		if (unflushed_writes(&w) == 0 && w.errors == 0)
			_exit(0); /* the partition is gone: no teardown */
		return 1;
	}

	for (uint32_t i = 0; i < opt.qd; i++) {
		if (reqs[i].heap)
			free(reqs[i].buf);
		else
			storvsc_buf_free(w.sv, reqs[i].buf, reqs[i].cap);
	}
	free(reqs);
	if (opt.hotplug && !atomic_load(&hot_removed))
		fail(&w, "no hot add and remove seen");
	if (atomic_load(&main_removed))
		fail(&w, "the main disk was reported removed");
	storvsc_disk_put(w.d);
	storvsc_disk_put(atomic_load(&hot_disk));
	r = vmbus_unload(w.vb);
	if (r != 0)
		fail(&w, "unload: %d", r);
	vmbus_destroy(w.vb);
	if (storvsc_destroy(w.sv) != 0)
		fail(&w, "storvsc_destroy: busy");
	vmbus_posix_destroy(px);
	free(w.model);
	free(w.busy);
	printf("storvsc_e2e: %s\n", w.errors ? "FAILED" : "OK");
	return w.errors ? 1 : 0;
}
