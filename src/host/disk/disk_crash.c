/*
 * host/disk/disk_crash.c - the crash-simulating back end (the idea of
 * SQLite's crash VFS, test6.c): a raw image behind a volatile write cache.
 *
 * Writes and discards complete into an in-memory log; reads see the log
 * over the image; FLUSH applies the log to the image in order and then
 * fdatasyncs it. So the image only ever holds what a flush made durable
 * (plus cache write-back, below), and a simulated power loss - or killing
 * the host process, since the log lives only in its memory - loses every
 * write no flush covered. A guest that acknowledges data without a flush
 * then fails a durability test even though the host's page cache would
 * have kept it.
 *
 * Like a real disk cache, the log may write data back early: above
 * CRASH_CACHE_MAX_OPS entries or CRASH_CACHE_MAX_BYTES, its oldest half is
 * written to the image (without fdatasync). An unflushed write may thus
 * survive a crash, which is allowed; a flushed one always survives.
 */
#define _GNU_SOURCE
#include "host/disk/disk_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CRASH_CACHE_MAX_OPS   8192u
#define CRASH_CACHE_MAX_BYTES (64ull << 20)

struct crash_op {
	uint64_t co_off;
	uint64_t co_len;
	uint8_t *co_data;          /* NULL: a discard (reads zeros) */
	struct crash_op *co_next;
};

struct disk_crash {
	pthread_mutex_t dc_lock;   /* the log and all image I/O */
	struct crash_op *dc_head, *dc_tail;
	uint64_t dc_ops;
	uint64_t dc_bytes;
};

static int apply(struct hvs_disk *d, const struct crash_op *op)
{
	if (op->co_data == NULL)
		return disk_file_discard(d->d_fd, op->co_off, op->co_len);
	return disk_file_pwrite(d->d_fd, op->co_data, op->co_len, op->co_off);
}

static void op_free(struct disk_crash *c, struct crash_op *op)
{
	c->dc_ops--;
	if (op->co_data != NULL)
		c->dc_bytes -= op->co_len;
	free(op->co_data);
	free(op);
}

/* Write back (and drop) the oldest n ops. Lock held. */
static int write_back(struct hvs_disk *d, struct disk_crash *c, uint64_t n)
{
	while (n-- > 0 && c->dc_head != NULL) {
		struct crash_op *op = c->dc_head;
		int r = apply(d, op);
		if (r != 0)
			return r; /* op stays first in the log */
		c->dc_head = op->co_next;
		if (c->dc_head == NULL)
			c->dc_tail = NULL;
		op_free(c, op);
	}
	return 0;
}

static int crash_exec(struct hvs_disk *d, struct hvs_disk_req *r)
{
	struct disk_crash *c = d->d_be;
	int res = 0;

	pthread_mutex_lock(&c->dc_lock);
	switch (r->dr_op) {
	case HVS_DISK_READ: {
		res = disk_file_pread(d->d_fd, r->dr_buf, r->dr_len, r->dr_off);
		if (res != 0)
			break;
		/* the log, oldest first, over the image */
		uint64_t lo = r->dr_off, hi = r->dr_off + r->dr_len;
		for (struct crash_op *op = c->dc_head; op; op = op->co_next) {
			uint64_t a = op->co_off, b = op->co_off + op->co_len;
			if (b <= lo || a >= hi)
				continue;
			uint64_t s = a > lo ? a : lo, e = b < hi ? b : hi;
			uint8_t *dst = (uint8_t *)r->dr_buf + (s - lo);
			if (op->co_data != NULL)
				memcpy(dst, op->co_data + (s - a), (size_t)(e - s));
			else
				memset(dst, 0, (size_t)(e - s));
		}
		break;
	}
	case HVS_DISK_WRITE:
	case HVS_DISK_DISCARD: {
		struct crash_op *op = calloc(1, sizeof(*op));
		if (op == NULL) {
			res = -ENOMEM;
			break;
		}
		op->co_off = r->dr_off;
		op->co_len = r->dr_len;
		if (r->dr_op == HVS_DISK_WRITE) {
			op->co_data = malloc((size_t)r->dr_len);
			if (op->co_data == NULL) {
				free(op);
				res = -ENOMEM;
				break;
			}
			memcpy(op->co_data, r->dr_buf, (size_t)r->dr_len);
			c->dc_bytes += r->dr_len;
		}
		c->dc_ops++;
		if (c->dc_tail != NULL)
			c->dc_tail->co_next = op;
		else
			c->dc_head = op;
		c->dc_tail = op;
		if (c->dc_ops > CRASH_CACHE_MAX_OPS ||
		    c->dc_bytes > CRASH_CACHE_MAX_BYTES)
			res = write_back(d, c, c->dc_ops / 2 + 1);
		break;
	}
	case HVS_DISK_FLUSH:
		res = write_back(d, c, UINT64_MAX);
		if (res == 0)
			res = disk_file_flush(d->d_fd);
		break;
	}
	pthread_mutex_unlock(&c->dc_lock);
	return res;
}

int disk_crash_start(struct hvs_disk *d, unsigned threads)
{
	struct disk_crash *c = calloc(1, sizeof(*c));
	int r;

	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->dc_lock, NULL);
	d->d_be = c;
	r = disk_pool_start(&d->d_pool, d, threads ? threads : 1, crash_exec);
	if (r != 0) {
		pthread_mutex_destroy(&c->dc_lock);
		free(c);
		d->d_be = NULL;
	}
	return r;
}

static int crash_submit(struct hvs_disk *d, struct hvs_disk_req *r)
{
	disk_pool_queue(&d->d_pool, r);
	return 0;
}

static void crash_close(struct hvs_disk *d)
{
	struct disk_crash *c = d->d_be;

	disk_pool_stop(&d->d_pool);
	/* A clean shutdown keeps the cache, as a disk does on power-down
	 * with a final flush; only hvs_disk_crash() or a killed host loses
	 * it. */
	write_back(d, c, UINT64_MAX);
	while (c->dc_head != NULL) { /* write-back failed: nothing to do */
		struct crash_op *op = c->dc_head;
		c->dc_head = op->co_next;
		op_free(c, op);
	}
	pthread_mutex_destroy(&c->dc_lock);
	free(c);
	d->d_be = NULL;
}

const struct disk_be_ops disk_crash_ops = {
	.bo_name = "crash",
	.bo_submit = crash_submit,
	.bo_close = crash_close,
};

/* splitmix64: a small deterministic generator for the keep decisions. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int disk_crash_simulate(struct hvs_disk *d, uint64_t seed, unsigned keep_pct)
{
	struct disk_crash *c = d->d_be;
	int dropped = 0;

	pthread_mutex_lock(&c->dc_lock);
	while (c->dc_head != NULL) {
		struct crash_op *op = c->dc_head;
		c->dc_head = op->co_next;
		if (next_rand(&seed) % 100u < keep_pct)
			(void)apply(d, op); /* reached the platter before the loss */
		else if (dropped < INT32_MAX)
			dropped++;
		op_free(c, op);
	}
	c->dc_tail = NULL;
	pthread_mutex_unlock(&c->dc_lock);
	return dropped;
}

uint64_t disk_crash_cached(const struct hvs_disk *d)
{
	struct disk_crash *c = d->d_be;
	uint64_t n;

	pthread_mutex_lock(&c->dc_lock);
	n = c->dc_bytes;
	pthread_mutex_unlock(&c->dc_lock);
	return n;
}
