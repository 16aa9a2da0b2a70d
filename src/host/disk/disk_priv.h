/*
 * host/disk/disk_priv.h - what the disk back ends share: the disk object,
 * the back-end vtable, completion accounting, the synchronous file
 * primitives and the worker thread pool.
 */
#ifndef HVS_DISK_PRIV_H
#define HVS_DISK_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "host/disk/disk.h"

struct hvs_disk;

struct disk_be_ops {
	const char *bo_name;
	/* Queue r (already validated and counted in flight). 0 or -errno; on
	 * an error the caller uncounts r and dr_done is not called. */
	int (*bo_submit)(struct hvs_disk *d, struct hvs_disk_req *r);
	/* No request in flight any more: stop threads, free back-end state
	 * (the generic layer closes d_fd afterwards). */
	void (*bo_close)(struct hvs_disk *d);
};

/* A pool of worker threads executing requests synchronously. */
struct disk_pool {
	pthread_t *dp_threads;
	unsigned dp_n;
	pthread_mutex_t dp_lock;
	pthread_cond_t dp_cond;
	struct hvs_disk_req *dp_head, *dp_tail;
	bool dp_stop;
	struct hvs_disk *dp_disk;
	/* run r to the end; returns its result (0 or -errno) */
	int (*dp_exec)(struct hvs_disk *d, struct hvs_disk_req *r);
};

struct hvs_disk {
	const struct disk_be_ops *d_ops;
	struct hvs_disk_info d_info;
	char d_path[HVS_DISK_PATH_MAX];
	int d_fd;                 /* image, -1 for null */
	bool d_direct;            /* opened O_DIRECT */
	atomic_uint d_inflight;
	pthread_mutex_t d_lock;   /* d_idle waits */
	pthread_cond_t d_idle;
	atomic_bool d_closing;
	struct disk_pool d_pool;  /* threads and crash back ends */
	void *d_be;               /* back-end private state */
};

/* Finish r with result: sets dr_result, calls dr_done, then uncounts it.
 * Any thread. */
void disk_complete(struct hvs_disk *d, struct hvs_disk_req *r, int result);

/* Synchronous file primitives (0 or -errno). Reads past EOF give zeros. */
int disk_file_pread(int fd, void *buf, uint64_t len, uint64_t off);
int disk_file_pwrite(int fd, const void *buf, uint64_t len, uint64_t off);
int disk_file_flush(int fd);
int disk_file_discard(int fd, uint64_t off, uint64_t len);
/* The thread-pool back end's executor (also used as the io_uring
 * fallback). */
int disk_file_exec(struct hvs_disk *d, struct hvs_disk_req *r);

int disk_pool_start(struct disk_pool *p, struct hvs_disk *d, unsigned n,
		    int (*exec)(struct hvs_disk *, struct hvs_disk_req *));
void disk_pool_queue(struct disk_pool *p, struct hvs_disk_req *r);
void disk_pool_stop(struct disk_pool *p);

extern const struct disk_be_ops disk_threads_ops;
extern const struct disk_be_ops disk_null_ops;
/* Start the crash back end over d->d_fd (d_be). */
int disk_crash_start(struct hvs_disk *d, unsigned threads);
extern const struct disk_be_ops disk_crash_ops;
int disk_crash_simulate(struct hvs_disk *d, uint64_t seed, unsigned keep_pct);
uint64_t disk_crash_cached(const struct hvs_disk *d);

#ifdef HVS_HAVE_LIBURING
/* Set up io_uring on d->d_fd. 0, or -errno (then use threads). */
int disk_uring_start(struct hvs_disk *d, unsigned entries);
extern const struct disk_be_ops disk_uring_ops;
#endif

#endif /* HVS_DISK_PRIV_H */
