/*
 * host/disk/disk.h - disk back ends for the storage VSP: raw image files
 * (io_uring, or a thread pool), a null disk, and a crash-simulating disk;
 * and the `--disk` specification parser hvsim and the control socket use.
 *
 * A back end is asynchronous: hvs_disk_submit() queues a request and
 * returns at once; the request's dr_done callback runs later on a back-end
 * thread (the null back end calls it before submit returns, on the
 * submitting thread). The caller moves the completion to its own thread
 * (the storage VSP goes back to its loop); nothing here touches guest
 * memory: buffers are the caller's private host memory.
 *
 * Errors are negative errno values (Linux numbering, host/errno.h style):
 * the caller maps them to SCSI sense (-ENOSPC -> space allocation failed,
 * -EIO -> medium error, -EROFS -> write protect).
 *
 * Threading: open/close on any one thread; submit from any thread
 * (internally locked); info is immutable after open.
 */
#ifndef HVS_DISK_H
#define HVS_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- disk specification (the --disk option) ----------------------------- */

enum hvs_disk_backend {
	HVS_DISK_BACKEND_AUTO = 0, /* io_uring if built and usable, else threads */
	HVS_DISK_BACKEND_URING,    /* raw file, io_uring (falls back to threads
				      with a warning if the kernel refuses) */
	HVS_DISK_BACKEND_THREADS,  /* raw file, thread pool + pread/pwrite */
	HVS_DISK_BACKEND_NULL,     /* no file: reads zeros, writes discarded */
	HVS_DISK_BACKEND_CRASH,    /* raw file behind a volatile write cache
				      that only a flush makes durable */
};

#define HVS_DISK_PATH_MAX     1024u /* bytes including NUL */
#define HVS_DISK_SERIAL_MAX   21u   /* VPD 0x80: 1..20 ASCII bytes + NUL */
#define HVS_DISK_MAX_SIZE     (1ull << 50) /* 1 PiB: any larger is a typo */
#define HVS_DISK_AUTO         (-1)  /* ds_lun / ds_controller: pick one */
#define HVS_DISK_MAX_LUNS     64u   /* LUN 0..63 per controller (F's limit) */
#define HVS_DISK_MAX_CONTROLLERS 8u /* controller 0..7 per VM */
#define HVS_DISK_DEFAULT_THREADS 4u

struct hvs_disk_spec {
	char ds_path[HVS_DISK_PATH_MAX]; /* image file; a label for null */
	uint64_t ds_size;        /* bytes, multiple of 512; 0 = the file's */
	bool ds_ro;              /* read-only (shared lock) */
	bool ds_create;          /* create a sparse image if missing (size=) */
	bool ds_direct;          /* O_DIRECT (falls back if unsupported) */
	int ds_lun;              /* 0..63 or HVS_DISK_AUTO */
	int ds_controller;       /* 0..7 or HVS_DISK_AUTO (= 0) */
	enum hvs_disk_backend ds_backend;
	unsigned ds_threads;     /* thread-pool workers, 0 = default */
	char ds_serial[HVS_DISK_SERIAL_MAX]; /* "" = derived */
};

/* Defaults: no path, size 0, rw, no create, lun/controller AUTO, auto. */
void hvs_disk_spec_init(struct hvs_disk_spec *spec);

/*
 * Parse one --disk argument:
 *   FILE[,size=N[K|M|G|T]][,ro][,create][,direct][,lun=N][,controller=N]
 *       [,backend=auto|uring|threads|null|crash][,threads=N][,serial=S]
 * A ",," inside FILE stands for one comma. Sizes are binary multiples
 * (1K = 1024) and must be a non-zero multiple of 512 up to
 * HVS_DISK_MAX_SIZE. create needs size= and excludes ro; backend=null needs
 * size= (FILE is then only a label). Returns 0 and fills *out, or
 * -EINVAL with a one-line reason in err (NUL-terminated if errlen > 0).
 * Does not touch the file system.
 */
int hvs_disk_spec_parse(const char *arg, struct hvs_disk_spec *out,
			char *err, size_t errlen);

/* Name of a back end ("auto", "uring", ...). */
const char *hvs_disk_backend_name(enum hvs_disk_backend b);

/* ---- requests ------------------------------------------------------------ */

enum hvs_disk_op {
	HVS_DISK_READ = 0,   /* dr_len bytes at dr_off into dr_buf */
	HVS_DISK_WRITE,      /* dr_len bytes from dr_buf to dr_off */
	HVS_DISK_FLUSH,      /* make every completed write durable (fdatasync) */
	HVS_DISK_DISCARD,    /* deallocate [off, off+len); reads back zeros */
};

struct hvs_disk_req {
	/* filled by the caller */
	enum hvs_disk_op dr_op;
	uint64_t dr_off;      /* bytes; READ/WRITE/DISCARD */
	uint64_t dr_len;      /* bytes; READ/WRITE at most SIZE_MAX/2 */
	void *dr_buf;         /* READ/WRITE; caller's memory, kept until done */
	void (*dr_done)(struct hvs_disk_req *r); /* back-end thread */
	void *dr_arg;         /* the caller's */
	/* result, valid in dr_done */
	int dr_result;        /* 0 or a negative errno */
	/* back-end private */
	struct hvs_disk_req *dr_link;
	uint64_t dr_progress;
	void *dr_priv;
};

/* ---- disks --------------------------------------------------------------- */

struct hvs_disk;

struct hvs_disk_info {
	uint64_t di_size;         /* bytes */
	uint32_t di_block_size;   /* logical block, 512 */
	uint32_t di_phys_block;   /* physical block (4096: discard granule) */
	bool di_ro;
	bool di_discard;          /* DISCARD supported */
	enum hvs_disk_backend di_backend; /* the one in use (never AUTO) */
	char di_serial[HVS_DISK_SERIAL_MAX];
	uint64_t di_id;           /* stable 64-bit id (hash of path + serial) */
	const char *di_path;      /* the spec's path */
};

/*
 * Open a disk from a parsed spec: opens (or creates, sparse) the image,
 * takes the image lock (write lock for rw, read lock for ro: a second
 * read-write user, or a writer next to readers, gets -EBUSY), and starts
 * the back end's threads. Returns 0 and *out, or a negative errno with a
 * reason in err: -ENOENT (missing, no create), -EBUSY (locked by another
 * process), -EINVAL (size mismatch, size not a multiple of 512, empty),
 * -ENOTSUP (back end not built), others from the system calls.
 */
int hvs_disk_open(const struct hvs_disk_spec *spec, struct hvs_disk **out,
		  char *err, size_t errlen);

/*
 * Queue r. Returns 0: r->dr_done(r) will be called exactly once, later
 * (null back end and the disk.error fault: possibly before this returns,
 * on the calling thread). Returns a negative errno
 * and never calls dr_done for a request the disk refuses outright:
 * -EINVAL (range beyond the disk, bad op, length 0 for READ/WRITE),
 * -EROFS (write/discard on a read-only disk), -EOPNOTSUPP (discard
 * unsupported), -ESHUTDOWN (disk closing).
 * I/O errors come back in dr_result: -EIO, -ENOSPC, ...
 */
int hvs_disk_submit(struct hvs_disk *d, struct hvs_disk_req *r);

/*
 * Wait for every queued request to complete (their dr_done runs), stop
 * the threads, release the lock and close the image. Blocks the caller
 * for as long as the outstanding I/O takes. NULL is a no-op.
 */
void hvs_disk_close(struct hvs_disk *d);

const struct hvs_disk_info *hvs_disk_get_info(const struct hvs_disk *d);

/* Requests submitted and not yet completed (any thread). */
uint32_t hvs_disk_inflight(const struct hvs_disk *d);

/*
 * Crash back end only: simulate a power loss now. Every write and discard
 * not yet made durable by a completed FLUSH is dropped, except that each
 * of them independently reaches the image with probability keep_pct %
 * (deterministic for a seed), as a real disk may have written some of its
 * cache back. Requests still in flight complete normally afterwards.
 * Returns the number of cached operations dropped, or -EINVAL for any
 * other back end.
 */
int hvs_disk_crash(struct hvs_disk *d, uint64_t seed, unsigned keep_pct);

/* Crash back end: bytes held in its volatile cache now (others: 0). */
uint64_t hvs_disk_cached_bytes(const struct hvs_disk *d);

/*
 * Fault hook (host/fault.h) checked on every submit of every disk:
 * "disk.error": complete the request with -errno (param "errno", default
 * 5 = EIO) instead of doing it; param "op" restricts it to one
 * enum hvs_disk_op + 1 (0 = any).
 */
#define HVS_DISK_FAULT_ERROR "disk.error"

#endif /* HVS_DISK_H */
