/*
 * host/disk/disk_uring.c - the raw image back end on io_uring: one ring
 * per disk, submissions under a lock from any thread, one completion
 * thread that reaps CQEs, restarts short transfers and calls dr_done.
 *
 * Built only with HVS_HAVE_LIBURING (liburing found and linked); without
 * it the thread pool serves every raw image.
 */
#define _GNU_SOURCE
#include "host/disk/disk_priv.h"

#ifdef HVS_HAVE_LIBURING

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

struct disk_uring {
	struct io_uring du_ring;
	pthread_mutex_t du_sq_lock;      /* SQ side: submitters */
	struct hvs_disk_req *du_backlog; /* no SQE free: waits here */
	struct hvs_disk_req *du_backlog_tail;
	pthread_t du_thread;
	struct hvs_disk *du_disk;
};

#define URING_CHUNK (1u << 30) /* one SQE moves at most this much */

/* Prepare r's next step into sqe. Called with du_sq_lock held. */
static void prep(struct disk_uring *u, struct io_uring_sqe *sqe,
		 struct hvs_disk_req *r)
{
	int fd = u->du_disk->d_fd;
	uint64_t left = r->dr_len - r->dr_progress;
	unsigned n = left > URING_CHUNK ? URING_CHUNK : (unsigned)left;
	uint8_t *buf = (uint8_t *)r->dr_buf + r->dr_progress;
	uint64_t off = r->dr_off + r->dr_progress;

	switch (r->dr_op) {
	case HVS_DISK_READ:
		io_uring_prep_read(sqe, fd, buf, n, off);
		break;
	case HVS_DISK_WRITE:
		io_uring_prep_write(sqe, fd, buf, n, off);
		break;
	case HVS_DISK_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case HVS_DISK_DISCARD:
		io_uring_prep_fallocate(sqe, fd,
					FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					r->dr_off, r->dr_len);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
}

/* Queue r (or park it in the backlog). Called with du_sq_lock held. */
static void enqueue_locked(struct disk_uring *u, struct hvs_disk_req *r)
{
	struct io_uring_sqe *sqe = NULL;

	if (u->du_backlog == NULL)
		sqe = io_uring_get_sqe(&u->du_ring);
	if (sqe == NULL) {
		r->dr_link = NULL;
		if (u->du_backlog_tail != NULL)
			u->du_backlog_tail->dr_link = r;
		else
			u->du_backlog = r;
		u->du_backlog_tail = r;
		return;
	}
	prep(u, sqe, r);
	io_uring_submit(&u->du_ring);
}

/* Move parked requests into free SQEs. Called with du_sq_lock held. */
static void drain_backlog_locked(struct disk_uring *u)
{
	bool any = false;

	while (u->du_backlog != NULL) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->du_ring);
		if (sqe == NULL)
			break;
		struct hvs_disk_req *r = u->du_backlog;
		u->du_backlog = r->dr_link;
		if (u->du_backlog == NULL)
			u->du_backlog_tail = NULL;
		prep(u, sqe, r);
		any = true;
	}
	if (any)
		io_uring_submit(&u->du_ring);
}

static void *uring_main(void *arg)
{
	struct disk_uring *u = arg;
	struct hvs_disk *d = u->du_disk;

	for (;;) {
		struct io_uring_cqe *cqe;
		int e = io_uring_wait_cqe(&u->du_ring, &cqe);
		if (e == -EINTR || e == -EAGAIN)
			continue;
		if (e < 0)
			break; /* ring unusable: nothing left to reap */
		struct hvs_disk_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&u->du_ring, cqe);
		if (r == NULL)
			break; /* the stop NOP, queued after the last request */
		if (res == -EINTR || res == -EAGAIN) {
			pthread_mutex_lock(&u->du_sq_lock);
			enqueue_locked(u, r);
			pthread_mutex_unlock(&u->du_sq_lock);
			continue;
		}
		if (res >= 0 && (r->dr_op == HVS_DISK_READ ||
				 r->dr_op == HVS_DISK_WRITE)) {
			if (res == 0 && r->dr_op == HVS_DISK_READ) {
				/* past EOF: zeros, as the sync path does */
				memset((uint8_t *)r->dr_buf + r->dr_progress, 0,
				       (size_t)(r->dr_len - r->dr_progress));
				res = (int)(r->dr_len - r->dr_progress);
			} else if (res == 0) {
				disk_complete(d, r, -EIO);
				goto next;
			}
			r->dr_progress += (uint64_t)res;
			if (r->dr_progress < r->dr_len) {
				/* short transfer: continue from where it stopped */
				pthread_mutex_lock(&u->du_sq_lock);
				enqueue_locked(u, r);
				pthread_mutex_unlock(&u->du_sq_lock);
				goto next;
			}
			res = 0;
		}
		disk_complete(d, r, res < 0 ? res : 0);
next:
		pthread_mutex_lock(&u->du_sq_lock);
		drain_backlog_locked(u);
		pthread_mutex_unlock(&u->du_sq_lock);
	}
	return NULL;
}

int disk_uring_start(struct hvs_disk *d, unsigned entries)
{
	struct disk_uring *u = calloc(1, sizeof(*u));
	int r;

	if (u == NULL)
		return -ENOMEM;
	u->du_disk = d;
	r = io_uring_queue_init(entries, &u->du_ring, 0);
	if (r < 0) {
		free(u);
		return r;
	}
	pthread_mutex_init(&u->du_sq_lock, NULL);
	r = pthread_create(&u->du_thread, NULL, uring_main, u);
	if (r != 0) {
		io_uring_queue_exit(&u->du_ring);
		pthread_mutex_destroy(&u->du_sq_lock);
		free(u);
		return -r;
	}
	d->d_be = u;
	return 0;
}

static int uring_submit(struct hvs_disk *d, struct hvs_disk_req *r)
{
	struct disk_uring *u = d->d_be;

	pthread_mutex_lock(&u->du_sq_lock);
	enqueue_locked(u, r);
	pthread_mutex_unlock(&u->du_sq_lock);
	return 0;
}

static void uring_close(struct hvs_disk *d)
{
	struct disk_uring *u = d->d_be;
	struct io_uring_sqe *sqe;

	/* Nothing is in flight any more: the SQ has room for the stop NOP. */
	pthread_mutex_lock(&u->du_sq_lock);
	while ((sqe = io_uring_get_sqe(&u->du_ring)) == NULL)
		io_uring_submit(&u->du_ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, NULL);
	io_uring_submit(&u->du_ring);
	pthread_mutex_unlock(&u->du_sq_lock);
	pthread_join(u->du_thread, NULL);
	io_uring_queue_exit(&u->du_ring);
	pthread_mutex_destroy(&u->du_sq_lock);
	free(u);
	d->d_be = NULL;
}

const struct disk_be_ops disk_uring_ops = {
	.bo_name = "uring",
	.bo_submit = uring_submit,
	.bo_close = uring_close,
};

#else
/* ISO C forbids an empty translation unit. */
typedef int disk_uring_unused;
#endif /* HVS_HAVE_LIBURING */
