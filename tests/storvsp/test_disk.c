/*
 * test_disk.c - the disk back ends and the --disk parser: sparse creation,
 * the image lock, I/O through io_uring and the thread pool, punch hole,
 * the null disk, the crash cache, and the disk.error fault hook.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/disk/disk.h"
#include "host/fault.h"

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hvs-disk-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* ---- synchronous submit helper ------------------------------------------ */

struct waiter {
	pthread_mutex_t w_lock;
	pthread_cond_t w_cond;
	bool w_done;
	int w_result;
	pthread_t w_thread;
};

static void wait_done(struct hvs_disk_req *r)
{
	struct waiter *w = r->dr_arg;
	pthread_mutex_lock(&w->w_lock);
	w->w_done = true;
	w->w_result = r->dr_result;
	w->w_thread = pthread_self();
	pthread_cond_signal(&w->w_cond);
	pthread_mutex_unlock(&w->w_lock);
}

static int do_io(struct hvs_disk *d, enum hvs_disk_op op, uint64_t off,
		 uint64_t len, void *buf)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			    false, 0, 0 };
	struct hvs_disk_req r;
	memset(&r, 0, sizeof(r));
	r.dr_op = op;
	r.dr_off = off;
	r.dr_len = len;
	r.dr_buf = buf;
	r.dr_done = wait_done;
	r.dr_arg = &w;
	int rc = hvs_disk_submit(d, &r);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&w.w_lock);
	while (!w.w_done)
		pthread_cond_wait(&w.w_cond, &w.w_lock);
	pthread_mutex_unlock(&w.w_lock);
	return w.w_result;
}

static struct hvs_disk *open_spec(const char *arg, int expect, char *err)
{
	struct hvs_disk_spec sp;
	struct hvs_disk *d = NULL;
	char e[256];
	assert_int_equal(hvs_disk_spec_parse(arg, &sp, e, sizeof(e)), 0);
	int r = hvs_disk_open(&sp, &d, err ? err : e, 256);
	if (r != expect)
		fail_msg("open %s: %d (%s), expected %d", arg, r, err ? err : e, expect);
	return d;
}

/* ---- parser --------------------------------------------------------------- */

static void test_spec_full(void **state)
{
	(void)state;
	struct hvs_disk_spec sp;
	char err[200];

	assert_int_equal(hvs_disk_spec_parse("/img/a,,b.raw,size=1G,create,lun=3,"
					     "controller=2,backend=uring,threads=8,"
					     "serial=AB-1.x,direct", &sp, err,
					     sizeof(err)), 0);
	assert_string_equal(sp.ds_path, "/img/a,b.raw");
	assert_int_equal(sp.ds_size, 1ull << 30);
	assert_true(sp.ds_create);
	assert_false(sp.ds_ro);
	assert_true(sp.ds_direct);
	assert_int_equal(sp.ds_lun, 3);
	assert_int_equal(sp.ds_controller, 2);
	assert_int_equal(sp.ds_backend, HVS_DISK_BACKEND_URING);
	assert_int_equal(sp.ds_threads, 8);
	assert_string_equal(sp.ds_serial, "AB-1.x");

	assert_int_equal(hvs_disk_spec_parse("x.img", &sp, err, sizeof(err)), 0);
	assert_string_equal(sp.ds_path, "x.img");
	assert_int_equal(sp.ds_size, 0);
	assert_int_equal(sp.ds_lun, HVS_DISK_AUTO);
	assert_int_equal(sp.ds_controller, HVS_DISK_AUTO);
	assert_int_equal(sp.ds_backend, HVS_DISK_BACKEND_AUTO);

	assert_int_equal(hvs_disk_spec_parse("x,ro,size=4096,backend=threads",
					     &sp, err, sizeof(err)), 0);
	assert_true(sp.ds_ro);
	assert_int_equal(sp.ds_size, 4096);
	assert_int_equal(hvs_disk_spec_parse("bench,backend=null,size=2T", &sp,
					     err, sizeof(err)), 0);
	assert_int_equal(sp.ds_size, 2ull << 40);
	assert_int_equal(hvs_disk_spec_parse("c,backend=crash", &sp, err,
					     sizeof(err)), 0);
	assert_int_equal(sp.ds_backend, HVS_DISK_BACKEND_CRASH);
	assert_int_equal(hvs_disk_spec_parse("d,size=512k,lun=63,controller=7",
					     &sp, err, sizeof(err)), 0);
	assert_int_equal(sp.ds_size, 512u * 1024);
}

static void test_spec_errors(void **state)
{
	(void)state;
	static const char *bad[] = {
		"", ",size=1G", "a,size=", "a,size=0", "a,size=1000",
		"a,size=1X", "a,size=18446744073709551616",
		"a,size=99999999999T", "a,size=2048T", "a,lun=64", "a,lun=-1",
		"a,lun=x", "a,controller=8", "a,backend=fast", "a,create",
		"a,create,ro,size=1M", "a,backend=null", "a,ro=1", "a,bogus",
		"a,", "a,,,", "a,threads=0", "a,threads=65",
		"a,serial=has space", "a,serial=123456789012345678901",
		"a,size=1M,size", "a,=3",
	};
	struct hvs_disk_spec sp;
	char err[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int r = hvs_disk_spec_parse(bad[i], &sp, err, sizeof(err));
		if (r != -EINVAL)
			fail_msg("\"%s\" parsed (%d)", bad[i], r);
		assert_true(err[0] != '\0');
	}
	/* a path at the length limit, and one byte over */
	char longp[HVS_DISK_PATH_MAX + 8];
	memset(longp, 'p', sizeof(longp));
	longp[HVS_DISK_PATH_MAX - 1] = '\0';
	assert_int_equal(hvs_disk_spec_parse(longp, &sp, err, sizeof(err)), 0);
	longp[HVS_DISK_PATH_MAX - 1] = 'p';
	longp[HVS_DISK_PATH_MAX] = '\0';
	assert_int_equal(hvs_disk_spec_parse(longp, &sp, err, sizeof(err)), -EINVAL);
	/* a ",," belongs to the path */
	assert_int_equal(hvs_disk_spec_parse("a,,", &sp, err, sizeof(err)), 0);
	assert_string_equal(sp.ds_path, "a,");
}

/* ---- raw images ------------------------------------------------------------ */

static void test_sparse_create_and_reopen(void **state)
{
	(void)state;
	char p[128], arg[256], err[256];
	struct stat st;

	path_in(p, sizeof(p), "sparse.img");
	snprintf(arg, sizeof(arg), "%s,create,size=1G,backend=threads", p);
	struct hvs_disk *d = open_spec(arg, 0, NULL);
	const struct hvs_disk_info *di = hvs_disk_get_info(d);
	assert_int_equal(di->di_size, 1ull << 30);
	assert_int_equal(di->di_block_size, 512);
	assert_int_equal(di->di_backend, HVS_DISK_BACKEND_THREADS);
	assert_true(di->di_discard);
	assert_int_equal(strlen(di->di_serial), 16);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 1ll << 30);
	assert_true(st.st_blocks * 512 < (1 << 20)); /* sparse */
	hvs_disk_close(d);

	/* create on an existing image uses it as is */
	d = open_spec(arg, 0, NULL);
	hvs_disk_close(d);
	/* reopen without size; with a wrong size; missing file */
	snprintf(arg, sizeof(arg), "%s", p);
	d = open_spec(arg, 0, NULL);
	hvs_disk_close(d);
	snprintf(arg, sizeof(arg), "%s,size=2G", p);
	open_spec(arg, -EINVAL, err);
	assert_non_null(strstr(err, "size"));
	path_in(p, sizeof(p), "missing.img");
	open_spec(p, -ENOENT, err);
	assert_non_null(strstr(err, "create"));
	assert_int_equal(access(p, F_OK), -1);
	/* an image whose size is not a multiple of 512 */
	path_in(p, sizeof(p), "odd.img");
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1000), 0);
	close(fd);
	open_spec(p, -EINVAL, err);
}

static void test_lock_conflicts(void **state)
{
	(void)state;
	char p[128], rw[256], ro[256], err[256];

	path_in(p, sizeof(p), "locked.img");
	snprintf(rw, sizeof(rw), "%s,create,size=1M,backend=threads", p);
	snprintf(ro, sizeof(ro), "%s,ro,backend=threads", p);
	struct hvs_disk *a = open_spec(rw, 0, NULL);
	open_spec(rw, -EBUSY, err);     /* second writer */
	assert_non_null(strstr(err, "in use"));
	open_spec(ro, -EBUSY, err);     /* reader next to a writer */
	hvs_disk_close(a);
	struct hvs_disk *r1 = open_spec(ro, 0, NULL);
	struct hvs_disk *r2 = open_spec(ro, 0, NULL); /* readers share */
	assert_true(hvs_disk_get_info(r1)->di_ro);
	open_spec(rw, -EBUSY, err);     /* writer next to readers */
	hvs_disk_close(r1);
	hvs_disk_close(r2);
	a = open_spec(rw, 0, NULL);     /* lock released by close */
	hvs_disk_close(a);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

static void io_roundtrip(const char *backend, enum hvs_disk_backend expect)
{
	char p[128], arg[256];
	struct stat st;
	size_t big = 3u << 20;
	uint8_t *w = aligned_alloc(4096, big), *r = aligned_alloc(4096, big);

	path_in(p, sizeof(p), backend);
	snprintf(arg, sizeof(arg), "%s,create,size=64M,backend=%s", p, backend);
	struct hvs_disk *d = open_spec(arg, 0, NULL);
	assert_int_equal(hvs_disk_get_info(d)->di_backend, expect);

	fill(w, big, 1);
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 1u << 20, big, w), 0);
	assert_int_equal(do_io(d, HVS_DISK_FLUSH, 0, 0, NULL), 0);
	memset(r, 0xEE, big);
	assert_int_equal(do_io(d, HVS_DISK_READ, 1u << 20, big, r), 0);
	assert_memory_equal(w, r, big);
	/* the last sector of the disk, and unwritten space reads zeros */
	assert_int_equal(do_io(d, HVS_DISK_WRITE, (64u << 20) - 512, 512, w), 0);
	assert_int_equal(do_io(d, HVS_DISK_READ, (64u << 20) - 512, 512, r), 0);
	assert_memory_equal(w, r, 512);
	assert_int_equal(do_io(d, HVS_DISK_READ, 32u << 20, 4096, r), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(r[i], 0);
	/* punch hole: reads zeros, blocks freed */
	assert_int_equal(stat(p, &st), 0);
	blkcnt_t before = st.st_blocks;
	assert_int_equal(do_io(d, HVS_DISK_DISCARD, 1u << 20, 2u << 20, NULL), 0);
	assert_int_equal(do_io(d, HVS_DISK_READ, 1u << 20, big, r), 0);
	for (size_t i = 0; i < (2u << 20); i++)
		if (r[i] != 0)
			fail_msg("byte %zu not zero after discard", i);
	assert_memory_equal(w + (2u << 20), r + (2u << 20), 1u << 20);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_blocks < before);
	/* refused outright: beyond the end, zero length, overflow */
	assert_int_equal(do_io(d, HVS_DISK_READ, 64u << 20, 512, r), -EINVAL);
	assert_int_equal(do_io(d, HVS_DISK_READ, (64u << 20) - 512, 1024, r), -EINVAL);
	assert_int_equal(do_io(d, HVS_DISK_READ, 0, 0, r), -EINVAL);
	assert_int_equal(do_io(d, HVS_DISK_WRITE, UINT64_MAX - 511, 1024, w), -EINVAL);
	assert_int_equal(do_io(d, HVS_DISK_DISCARD, 512, UINT64_MAX, NULL), -EINVAL);
	hvs_disk_close(d);
	free(w);
	free(r);
}

static void test_io_threads(void **state)
{
	(void)state;
	io_roundtrip("threads", HVS_DISK_BACKEND_THREADS);
}

static void test_io_uring(void **state)
{
	(void)state;
#ifdef HVS_HAVE_LIBURING
	io_roundtrip("uring", HVS_DISK_BACKEND_URING);
#else
	skip();
#endif
}

/* Many requests in flight at once: completions all arrive, off-loop. */
struct counter {
	atomic_int c_left;
	atomic_int c_errors;
};

static void count_done(struct hvs_disk_req *r)
{
	struct counter *c = r->dr_arg;
	if (r->dr_result != 0)
		atomic_fetch_add(&c->c_errors, 1);
	atomic_fetch_sub(&c->c_left, 1);
}

static void queue_depth(const char *backend)
{
	enum { N = 300 };
	char p[128], arg[256];
	static struct hvs_disk_req reqs[N];
	static uint8_t bufs[N][4096];
	struct counter c;

	char name[64];
	snprintf(name, sizeof(name), "%s-qd", backend);
	path_in(p, sizeof(p), name);
	snprintf(arg, sizeof(arg), "%s,create,size=8M,backend=%s", p, backend);
	struct hvs_disk *d = open_spec(arg, 0, NULL);
	atomic_init(&c.c_left, N);
	atomic_init(&c.c_errors, 0);
	for (int i = 0; i < N; i++) {
		fill(bufs[i], 4096, (unsigned)i);
		memset(&reqs[i], 0, sizeof(reqs[i]));
		reqs[i].dr_op = HVS_DISK_WRITE;
		reqs[i].dr_off = (uint64_t)i * 4096;
		reqs[i].dr_len = 4096;
		reqs[i].dr_buf = bufs[i];
		reqs[i].dr_done = count_done;
		reqs[i].dr_arg = &c;
		assert_int_equal(hvs_disk_submit(d, &reqs[i]), 0);
	}
	hvs_disk_close(d); /* waits for all of them */
	assert_int_equal(atomic_load(&c.c_left), 0);
	assert_int_equal(atomic_load(&c.c_errors), 0);
	d = open_spec(p, 0, NULL);
	uint8_t r[4096];
	for (int i = 0; i < N; i += 37) {
		assert_int_equal(do_io(d, HVS_DISK_READ, (uint64_t)i * 4096, 4096, r), 0);
		assert_memory_equal(r, bufs[i], 4096);
	}
	hvs_disk_close(d);
}

static void test_queue_depth(void **state)
{
	(void)state;
	queue_depth("threads");
#ifdef HVS_HAVE_LIBURING
	queue_depth("uring");
#endif
}

static void test_readonly(void **state)
{
	(void)state;
	char p[128], arg[256];
	uint8_t b[512] = { 1 };

	path_in(p, sizeof(p), "ro.img");
	snprintf(arg, sizeof(arg), "%s,create,size=1M", p);
	hvs_disk_close(open_spec(arg, 0, NULL));
	snprintf(arg, sizeof(arg), "%s,ro", p);
	struct hvs_disk *d = open_spec(arg, 0, NULL);
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 0, 512, b), -EROFS);
	assert_int_equal(do_io(d, HVS_DISK_DISCARD, 0, 512, NULL), -EROFS);
	assert_int_equal(do_io(d, HVS_DISK_READ, 0, 512, b), 0);
	assert_int_equal(do_io(d, HVS_DISK_FLUSH, 0, 0, NULL), 0);
	hvs_disk_close(d);
}

static void test_null(void **state)
{
	(void)state;
	uint8_t b[4096];
	struct hvs_disk *d = open_spec("nothing,backend=null,size=1T", 0, NULL);
	assert_int_equal(hvs_disk_get_info(d)->di_size, 1ull << 40);
	assert_int_equal(hvs_disk_get_info(d)->di_backend, HVS_DISK_BACKEND_NULL);
	memset(b, 0xAA, sizeof(b));
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 4096, 4096, b), 0);
	assert_int_equal(do_io(d, HVS_DISK_READ, 4096, 4096, b), 0);
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], 0);
	assert_int_equal(do_io(d, HVS_DISK_FLUSH, 0, 0, NULL), 0);
	assert_int_equal(access("nothing", F_OK), -1); /* no file made */
	hvs_disk_close(d);
}

static void test_crash_backend(void **state)
{
	(void)state;
	char p[128], arg[256];
	uint8_t a[4096], b[4096], r[4096], z[4096];

	memset(z, 0, sizeof(z));
	fill(a, sizeof(a), 11);
	fill(b, sizeof(b), 22);
	path_in(p, sizeof(p), "crash.img");
	snprintf(arg, sizeof(arg), "%s,create,size=4M,backend=crash", p);
	struct hvs_disk *d = open_spec(arg, 0, NULL);
	assert_int_equal(hvs_disk_get_info(d)->di_backend, HVS_DISK_BACKEND_CRASH);

	/* flushed A survives; unflushed B and a discard vanish */
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 0, 4096, a), 0);
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 8192, 4096, a), 0);
	assert_int_equal(do_io(d, HVS_DISK_FLUSH, 0, 0, NULL), 0);
	assert_int_equal(hvs_disk_cached_bytes(d), 0);
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 0, 4096, b), 0);
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 4096, 4096, b), 0);
	assert_int_equal(do_io(d, HVS_DISK_DISCARD, 8192, 4096, NULL), 0);
	assert_int_equal(hvs_disk_cached_bytes(d), 8192);
	/* before the crash: reads see the cache (partial overlap too) */
	assert_int_equal(do_io(d, HVS_DISK_READ, 2048, 4096, r), 0);
	assert_memory_equal(r, b + 2048, 2048);
	assert_memory_equal(r + 2048, b, 2048);
	assert_int_equal(do_io(d, HVS_DISK_READ, 8192, 4096, r), 0);
	assert_memory_equal(r, z, 4096);
	/* the image itself has only durable data */
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, r, 4096, 0), 4096);
	assert_memory_equal(r, a, 4096);
	close(fd);

	assert_int_equal(hvs_disk_crash(d, 1, 0), 3);
	assert_int_equal(hvs_disk_cached_bytes(d), 0);
	assert_int_equal(do_io(d, HVS_DISK_READ, 0, 4096, r), 0);
	assert_memory_equal(r, a, 4096);
	assert_int_equal(do_io(d, HVS_DISK_READ, 4096, 4096, r), 0);
	assert_memory_equal(r, z, 4096);
	assert_int_equal(do_io(d, HVS_DISK_READ, 8192, 4096, r), 0);
	assert_memory_equal(r, a, 4096);

	/* keep 100 %: the cached write reaches the image */
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 4096, 4096, b), 0);
	assert_int_equal(hvs_disk_crash(d, 7, 100), 0);
	assert_int_equal(do_io(d, HVS_DISK_READ, 4096, 4096, r), 0);
	assert_memory_equal(r, b, 4096);
	hvs_disk_close(d);

	/* crash() is refused on other back ends */
	d = open_spec("n,backend=null,size=1M", 0, NULL);
	assert_int_equal(hvs_disk_crash(d, 0, 0), -EINVAL);
	hvs_disk_close(d);
}

static void test_fault_errno(void **state)
{
	(void)state;
	uint8_t b[512] = { 0 };
	struct hvs_fault_param prm[2] = { { "errno", 28 }, { "op", 2 } };

	struct hvs_disk *d = open_spec("f,backend=null,size=1M", 0, NULL);
	assert_int_equal(hvs_fault_set(HVS_DISK_FAULT_ERROR, true, prm, 2, NULL), 0);
	assert_int_equal(do_io(d, HVS_DISK_READ, 0, 512, b), 0);   /* op 1: spared */
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 0, 512, b), -ENOSPC);
	prm[0].fp_value = 5;
	prm[1].fp_value = 0;
	assert_int_equal(hvs_fault_set(HVS_DISK_FAULT_ERROR, true, prm, 2, NULL), 0);
	assert_int_equal(do_io(d, HVS_DISK_READ, 0, 512, b), -EIO);
	assert_int_equal(do_io(d, HVS_DISK_FLUSH, 0, 0, NULL), -EIO);
	assert_int_equal(hvs_fault_set(HVS_DISK_FAULT_ERROR, false, NULL, 0, NULL), 0);
	assert_int_equal(do_io(d, HVS_DISK_WRITE, 0, 512, b), 0);
	hvs_disk_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_full),
		cmocka_unit_test(test_spec_errors),
		cmocka_unit_test(test_sparse_create_and_reopen),
		cmocka_unit_test(test_lock_conflicts),
		cmocka_unit_test(test_io_threads),
		cmocka_unit_test(test_io_uring),
		cmocka_unit_test(test_queue_depth),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_crash_backend),
		cmocka_unit_test(test_fault_errno),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
