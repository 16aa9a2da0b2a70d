/*
 * host/disk/disk.c - the generic half of the disk back ends: opening an
 * image (sparse creation, size checks, the advisory lock), request
 * validation and in-flight accounting, the "disk.error" fault hook, and
 * the synchronous file primitives and thread pool the back ends share.
 */
#define _GNU_SOURCE
#include "host/disk/disk_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/fault.h"
#include "host/log.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *hvs_disk_backend_name(enum hvs_disk_backend b)
{
	switch (b) {
	case HVS_DISK_BACKEND_AUTO: return "auto";
	case HVS_DISK_BACKEND_URING: return "uring";
	case HVS_DISK_BACKEND_THREADS: return "threads";
	case HVS_DISK_BACKEND_NULL: return "null";
	case HVS_DISK_BACKEND_CRASH: return "crash";
	}
	return "?";
}

/* ---- synchronous file primitives ---------------------------------------- */

int disk_file_pread(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pread(fd, p, chunk, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			/* NOTE: past EOF (image shrunk behind our back):
			 * zeros, as a sparse hole would read. */
			memset(p, 0, (size_t)len);
			return 0;
		}
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int disk_file_pwrite(int fd, const void *buf, uint64_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pwrite(fd, p, chunk, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int disk_file_flush(int fd)
{
	while (fdatasync(fd) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int disk_file_discard(int fd, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	while (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			 (off_t)off, (off_t)len) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int disk_file_exec(struct hvs_disk *d, struct hvs_disk_req *r)
{
	switch (r->dr_op) {
	case HVS_DISK_READ:
		return disk_file_pread(d->d_fd, r->dr_buf, r->dr_len, r->dr_off);
	case HVS_DISK_WRITE:
		return disk_file_pwrite(d->d_fd, r->dr_buf, r->dr_len, r->dr_off);
	case HVS_DISK_FLUSH:
		return disk_file_flush(d->d_fd);
	case HVS_DISK_DISCARD:
		return disk_file_discard(d->d_fd, r->dr_off, r->dr_len);
	}
	return -EINVAL;
}

/* ---- thread pool ---------------------------------------------------------- */

static void *pool_main(void *arg)
{
	struct disk_pool *p = arg;

	pthread_mutex_lock(&p->dp_lock);
	for (;;) {
		while (p->dp_head == NULL && !p->dp_stop)
			pthread_cond_wait(&p->dp_cond, &p->dp_lock);
		if (p->dp_head == NULL)
			break; /* stopping and drained */
		struct hvs_disk_req *r = p->dp_head;
		p->dp_head = r->dr_link;
		if (p->dp_head == NULL)
			p->dp_tail = NULL;
		pthread_mutex_unlock(&p->dp_lock);
		int res = p->dp_exec(p->dp_disk, r);
		disk_complete(p->dp_disk, r, res);
		pthread_mutex_lock(&p->dp_lock);
	}
	pthread_mutex_unlock(&p->dp_lock);
	return NULL;
}

int disk_pool_start(struct disk_pool *p, struct hvs_disk *d, unsigned n,
		    int (*exec)(struct hvs_disk *, struct hvs_disk_req *))
{
	memset(p, 0, sizeof(*p));
	p->dp_disk = d;
	p->dp_exec = exec;
	p->dp_threads = calloc(n, sizeof(*p->dp_threads));
	if (p->dp_threads == NULL)
		return -ENOMEM;
	pthread_mutex_init(&p->dp_lock, NULL);
	pthread_cond_init(&p->dp_cond, NULL);
	for (unsigned i = 0; i < n; i++) {
		int e = pthread_create(&p->dp_threads[i], NULL, pool_main, p);
		if (e != 0) {
			disk_pool_stop(p);
			return -e;
		}
		p->dp_n++;
	}
	return 0;
}

void disk_pool_queue(struct disk_pool *p, struct hvs_disk_req *r)
{
	r->dr_link = NULL;
	pthread_mutex_lock(&p->dp_lock);
	if (p->dp_tail != NULL)
		p->dp_tail->dr_link = r;
	else
		p->dp_head = r;
	p->dp_tail = r;
	pthread_cond_signal(&p->dp_cond);
	pthread_mutex_unlock(&p->dp_lock);
}

void disk_pool_stop(struct disk_pool *p)
{
	if (p->dp_threads == NULL)
		return;
	pthread_mutex_lock(&p->dp_lock);
	p->dp_stop = true;
	pthread_cond_broadcast(&p->dp_cond);
	pthread_mutex_unlock(&p->dp_lock);
	for (unsigned i = 0; i < p->dp_n; i++)
		pthread_join(p->dp_threads[i], NULL);
	free(p->dp_threads);
	p->dp_threads = NULL;
	pthread_mutex_destroy(&p->dp_lock);
	pthread_cond_destroy(&p->dp_cond);
}

/* ---- the thread-pool and null back ends ---------------------------------- */

static int threads_submit(struct hvs_disk *d, struct hvs_disk_req *r)
{
	disk_pool_queue(&d->d_pool, r);
	return 0;
}

static void threads_close(struct hvs_disk *d)
{
	disk_pool_stop(&d->d_pool);
}

const struct disk_be_ops disk_threads_ops = {
	.bo_name = "threads",
	.bo_submit = threads_submit,
	.bo_close = threads_close,
};

static int null_submit(struct hvs_disk *d, struct hvs_disk_req *r)
{
	if (r->dr_op == HVS_DISK_READ)
		memset(r->dr_buf, 0, (size_t)r->dr_len);
	disk_complete(d, r, 0);
	return 0;
}

static void null_close(struct hvs_disk *d)
{
	(void)d;
}

const struct disk_be_ops disk_null_ops = {
	.bo_name = "null",
	.bo_submit = null_submit,
	.bo_close = null_close,
};

/* ---- open / submit / close ------------------------------------------------ */

/* FNV-1a, for the derived serial and device id. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int open_image(struct hvs_disk *d, const struct hvs_disk_spec *spec,
		      char *err, size_t errlen)
{
	int flags = (spec->ds_ro ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	bool created = false;
	int fd = -1, r;

	if (spec->ds_direct)
		flags |= O_DIRECT;
	for (int attempt = 0; fd < 0; attempt++) {
		if (attempt == 4)
			goto sys_err; /* created and deleted under us: give up */
		if (spec->ds_create) {
			fd = open(spec->ds_path, flags | O_CREAT | O_EXCL, 0644);
			if (fd >= 0) {
				created = true;
				break;
			}
		}
		if (fd < 0 && (!spec->ds_create || errno == EEXIST))
			fd = open(spec->ds_path, flags);
		if (fd >= 0)
			break;
		if (errno == EINVAL && (flags & O_DIRECT)) {
			/* the file system refuses O_DIRECT (tmpfs) */
			HVS_WARN(NULL, "disk %s: O_DIRECT unsupported here, "
				 "using the page cache", spec->ds_path);
			flags &= ~O_DIRECT;
			continue;
		}
		if (!(errno == ENOENT && spec->ds_create))
			goto sys_err;
	}
	d->d_fd = fd;
	d->d_direct = (flags & O_DIRECT) != 0;

	/*
	 * NOTE: lock before sizing, so a creator racing another opener never
	 * truncates an image someone else already uses. OFD locks belong to
	 * the open file description: a second open in this same process
	 * conflicts too, and the lock goes away with the last close.
	 */
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = spec->ds_ro ? F_RDLCK : F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		r = -errno;
		if (r == -EAGAIN || r == -EACCES) {
			set_err(err, errlen, "%s is in use by another VM "
				"(image lock held%s)", spec->ds_path,
				spec->ds_ro ? " read-write" : "");
			r = -EBUSY;
		} else {
			set_err(err, errlen, "%s: lock: %s", spec->ds_path,
				strerror(-r));
		}
		goto fail;
	}
	if (created && ftruncate(fd, (off_t)spec->ds_size) != 0) {
		r = -errno;
		set_err(err, errlen, "%s: cannot size new image: %s",
			spec->ds_path, strerror(-r));
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		r = -errno;
		set_err(err, errlen, "%s: stat: %s", spec->ds_path, strerror(-r));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		set_err(err, errlen, "%s: not a regular file or block device",
			spec->ds_path);
		r = -EINVAL;
		goto fail;
	}
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0) {
		r = -errno;
		set_err(err, errlen, "%s: size: %s", spec->ds_path, strerror(-r));
		goto fail;
	}
	uint64_t size = (uint64_t)end;
	if (size == 0 || size % 512u != 0) {
		set_err(err, errlen, "%s: image size %" PRIu64 " is not a "
			"non-zero multiple of 512", spec->ds_path, size);
		r = -EINVAL;
		goto fail;
	}
	if (spec->ds_size != 0 && spec->ds_size != size) {
		set_err(err, errlen, "%s: image is %" PRIu64 " bytes, size= "
			"says %" PRIu64, spec->ds_path, size, spec->ds_size);
		r = -EINVAL;
		goto fail;
	}
	d->d_info.di_size = size;
	d->d_info.di_discard = S_ISREG(st.st_mode);
	return 0;

sys_err:
	r = -errno;
	set_err(err, errlen, "%s: %s%s", spec->ds_path, strerror(-r),
		r == -ENOENT && !spec->ds_create ? " (add ,create,size=N)" : "");
fail:
	if (fd >= 0)
		close(fd);
	d->d_fd = -1;
	if (created)
		unlink(spec->ds_path);
	return r;
}

int hvs_disk_open(const struct hvs_disk_spec *spec, struct hvs_disk **out,
		  char *err, size_t errlen)
{
	struct hvs_disk *d;
	unsigned threads;
	int r;

	set_err(err, errlen, "ok");
	*out = NULL;
	if (spec->ds_path[0] == '\0') {
		set_err(err, errlen, "no image path");
		return -EINVAL;
	}
	hvs_fault_register(HVS_DISK_FAULT_ERROR,
			   "fail disk requests: errno=N (5), op=1..4 (0 any)");
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->d_fd = -1;
	pthread_mutex_init(&d->d_lock, NULL);
	pthread_cond_init(&d->d_idle, NULL);
	snprintf(d->d_path, sizeof(d->d_path), "%s", spec->ds_path);
	d->d_info.di_path = d->d_path;
	d->d_info.di_block_size = 512;
	d->d_info.di_phys_block = 4096;
	d->d_info.di_ro = spec->ds_ro;
	threads = spec->ds_threads ? spec->ds_threads : HVS_DISK_DEFAULT_THREADS;

	if (spec->ds_backend == HVS_DISK_BACKEND_NULL) {
		if (spec->ds_size == 0 || spec->ds_size % 512u != 0) {
			set_err(err, errlen, "null disk needs size= (multiple of 512)");
			r = -EINVAL;
			goto fail;
		}
		d->d_info.di_size = spec->ds_size;
		d->d_info.di_discard = true;
		d->d_info.di_backend = HVS_DISK_BACKEND_NULL;
		d->d_ops = &disk_null_ops;
	} else {
		r = open_image(d, spec, err, errlen);
		if (r != 0)
			goto fail;
		enum hvs_disk_backend b = spec->ds_backend;
		if (b == HVS_DISK_BACKEND_CRASH) {
			r = disk_crash_start(d, 1);
			if (r != 0) {
				set_err(err, errlen, "crash back end: %s", strerror(-r));
				goto fail;
			}
			d->d_ops = &disk_crash_ops;
			d->d_info.di_backend = b;
		} else {
#ifdef HVS_HAVE_LIBURING
			if (b == HVS_DISK_BACKEND_AUTO || b == HVS_DISK_BACKEND_URING) {
				r = disk_uring_start(d, 256);
				if (r == 0) {
					d->d_ops = &disk_uring_ops;
					d->d_info.di_backend = HVS_DISK_BACKEND_URING;
				} else {
					HVS_WARN(NULL, "disk %s: io_uring unavailable "
						 "(%s), using the thread pool",
						 d->d_path, strerror(-r));
				}
			}
#else
			if (b == HVS_DISK_BACKEND_URING) {
				set_err(err, errlen, "backend=uring: this build has "
					"no liburing (use threads)");
				r = -ENOTSUP;
				goto fail;
			}
#endif
			if (d->d_ops == NULL) {
				r = disk_pool_start(&d->d_pool, d, threads, disk_file_exec);
				if (r != 0) {
					set_err(err, errlen, "threads: %s", strerror(-r));
					goto fail;
				}
				d->d_ops = &disk_threads_ops;
				d->d_info.di_backend = HVS_DISK_BACKEND_THREADS;
			}
		}
	}

	uint64_t h = fnv1a(0xcbf29ce484222325ull, spec->ds_path,
			   strlen(spec->ds_path));
	if (spec->ds_serial[0] != '\0') {
		snprintf(d->d_info.di_serial, sizeof(d->d_info.di_serial), "%s",
			 spec->ds_serial);
		h = fnv1a(h, spec->ds_serial, strlen(spec->ds_serial));
	} else {
		snprintf(d->d_info.di_serial, sizeof(d->d_info.di_serial),
			 "%016" PRIX64, h);
	}
	d->d_info.di_id = h;
	*out = d;
	return 0;
fail:
	if (d->d_fd >= 0)
		close(d->d_fd);
	pthread_mutex_destroy(&d->d_lock);
	pthread_cond_destroy(&d->d_idle);
	free(d);
	return r;
}

void disk_complete(struct hvs_disk *d, struct hvs_disk_req *r, int result)
{
	r->dr_result = result;
	r->dr_done(r);
	/* NOTE: uncount after the callback, so close() cannot return while
	 * a completion is still running. */
	if (atomic_fetch_sub(&d->d_inflight, 1) == 1 && atomic_load(&d->d_closing)) {
		pthread_mutex_lock(&d->d_lock);
		pthread_cond_broadcast(&d->d_idle);
		pthread_mutex_unlock(&d->d_lock);
	}
}

int hvs_disk_submit(struct hvs_disk *d, struct hvs_disk_req *r)
{
	const struct hvs_disk_info *di = &d->d_info;
	struct hvs_fault_args fa;

	if (atomic_load(&d->d_closing))
		return -ESHUTDOWN;
	switch (r->dr_op) {
	case HVS_DISK_READ:
	case HVS_DISK_WRITE:
		if (r->dr_len == 0 || r->dr_buf == NULL || r->dr_len > SIZE_MAX / 2)
			return -EINVAL;
		if (d->d_direct && (((uintptr_t)r->dr_buf | r->dr_off | r->dr_len) & 511u))
			return -EINVAL;
		/* fall through */
	case HVS_DISK_DISCARD:
		if (r->dr_off > di->di_size || r->dr_len > di->di_size - r->dr_off)
			return -EINVAL;
		if (r->dr_op != HVS_DISK_READ && di->di_ro)
			return -EROFS;
		if (r->dr_op == HVS_DISK_DISCARD && !di->di_discard)
			return -EOPNOTSUPP;
		break;
	case HVS_DISK_FLUSH:
		break;
	default:
		return -EINVAL;
	}
	if (r->dr_done == NULL)
		return -EINVAL;
	r->dr_result = 0;
	r->dr_progress = 0;
	r->dr_link = NULL;
	atomic_fetch_add(&d->d_inflight, 1);
	if (hvs_fault_check(HVS_DISK_FAULT_ERROR, &fa)) {
		int64_t op = hvs_fault_param(&fa, "op", 0);
		int64_t e = hvs_fault_param(&fa, "errno", 5);
		if (op == 0 || op == (int64_t)r->dr_op + 1) {
			if (e <= 0 || e > 4095)
				e = 5;
			disk_complete(d, r, -(int)e);
			return 0;
		}
	}
	int rc = d->d_ops->bo_submit(d, r);
	if (rc != 0)
		atomic_fetch_sub(&d->d_inflight, 1);
	return rc;
}

void hvs_disk_close(struct hvs_disk *d)
{
	if (d == NULL)
		return;
	atomic_store(&d->d_closing, true);
	pthread_mutex_lock(&d->d_lock);
	while (atomic_load(&d->d_inflight) != 0)
		pthread_cond_wait(&d->d_idle, &d->d_lock);
	pthread_mutex_unlock(&d->d_lock);
	d->d_ops->bo_close(d);
	if (d->d_fd >= 0)
		close(d->d_fd); /* releases the OFD lock */
	pthread_mutex_destroy(&d->d_lock);
	pthread_cond_destroy(&d->d_idle);
	free(d);
}

const struct hvs_disk_info *hvs_disk_get_info(const struct hvs_disk *d)
{
	return &d->d_info;
}

uint32_t hvs_disk_inflight(const struct hvs_disk *d)
{
	return atomic_load(&((struct hvs_disk *)(uintptr_t)d)->d_inflight);
}

int hvs_disk_crash(struct hvs_disk *d, uint64_t seed, unsigned keep_pct)
{
	if (d->d_ops != &disk_crash_ops)
		return -EINVAL;
	return disk_crash_simulate(d, seed, keep_pct > 100 ? 100 : keep_pct);
}

uint64_t hvs_disk_cached_bytes(const struct hvs_disk *d)
{
	if (d->d_ops != &disk_crash_ops)
		return 0;
	return disk_crash_cached(d);
}
