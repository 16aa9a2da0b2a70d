/*
 * tests/host/test_loop_args.c - the event loop (src/host/loop.c) and
 * hvsim's argument helpers (tools/hvsim/args.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>
#include <malloc.h>

#include "args.h"
#include "log.h"
#include "loop.h"

#define MS 1000000ull

/* ---- timers ----------------------------------------------------------------- */

static int order[16];
static int norder;
static struct hvs_loop *tl;
static struct hvs_loop_timer *periodic, *victim;
static int periodic_runs;

static void rec_cb(void *arg)
{
	order[norder++] = (int)(intptr_t)arg;
	if ((intptr_t)arg == 3)
		hvs_loop_stop(tl);
}

static void periodic_cb(void *arg)
{
	(void)arg;
	if (++periodic_runs == 3)
		hvs_loop_timer_cancel(periodic); /* cancel itself */
}

static void cancel_other_cb(void *arg)
{
	(void)arg;
	hvs_loop_timer_cancel(victim);
	victim = NULL;
}

static void never_cb(void *arg)
{
	(void)arg;
	fail_msg("cancelled timer ran");
}

static void test_timers(void **state)
{
	uint64_t t0;

	(void)state;
	tl = hvs_loop_create();
	assert_non_null(tl);
	norder = 0;
	t0 = hvs_now_ns();
	/* Added out of order, fire in deadline order. */
	assert_non_null(hvs_loop_timer_add(tl, 30 * MS, 0, rec_cb, (void *)3));
	assert_non_null(hvs_loop_timer_add(tl, 10 * MS, 0, rec_cb, (void *)1));
	assert_non_null(hvs_loop_timer_add(tl, 20 * MS, 0, rec_cb, (void *)2));
	victim = hvs_loop_timer_add(tl, 25 * MS, 0, never_cb, NULL);
	assert_non_null(hvs_loop_timer_add(tl, 5 * MS, 0, cancel_other_cb, NULL));
	struct hvs_loop_timer *c = hvs_loop_timer_add(tl, 1 * MS, 0, never_cb, NULL);
	hvs_loop_timer_cancel(c);
	periodic_runs = 0;
	periodic = hvs_loop_timer_add(tl, 2 * MS, 2 * MS, periodic_cb, NULL);
	assert_int_equal(hvs_loop_run(tl), 0);
	assert_true(hvs_now_ns() - t0 >= 30 * MS);
	assert_int_equal(norder, 3);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 3);
	assert_int_equal(periodic_runs, 3);
	hvs_loop_destroy(tl);
}

/* ---- fd watchers -------------------------------------------------------------- */

struct fdctx {
	int efd[2];
	struct hvs_loop_fd *w[2];
	int calls[2];
};

static void fd_cb(void *arg, int fd, uint32_t ev)
{
	struct fdctx *c = arg;
	int i = fd == c->efd[0] ? 0 : 1;
	uint64_t v;

	assert_true(ev & HVS_EV_IN);
	c->calls[i]++;
	if (read(fd, &v, sizeof(v)) < 0)
		fail();
	/* Each deletes the other (both events are in the same batch): the
	 * deleted one must not be called. */
	hvs_loop_del_fd(c->w[1 - i]);
	c->w[1 - i] = NULL;
	hvs_loop_del_fd(c->w[i]);
	c->w[i] = NULL;
}

static void test_fd_delete_in_batch(void **state)
{
	struct hvs_loop *loop = hvs_loop_create();
	struct fdctx c;
	uint64_t one = 1;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 2; i++) {
		c.efd[i] = eventfd(0, EFD_NONBLOCK);
		c.w[i] = hvs_loop_add_fd(loop, c.efd[i], HVS_EV_IN, fd_cb, &c);
		assert_non_null(c.w[i]);
		assert_int_equal(write(c.efd[i], &one, 8), 8);
	}
	for (int i = 0; i < 5; i++)
		hvs_loop_run_once(loop, 10);
	assert_int_equal(c.calls[0] + c.calls[1], 1);
	assert_int_equal(hvs_loop_add_fd(loop, -1, HVS_EV_IN, fd_cb, &c), NULL);
	close(c.efd[0]);
	close(c.efd[1]);
	hvs_loop_destroy(loop);
}

/* Heap bytes in use, or 0 under AddressSanitizer (its allocator does not
 * feed mallinfo2; LeakSanitizer checks at exit instead). */
static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return 0;
#else
	return mallinfo2().uordblks;
#endif
#else
	return mallinfo2().uordblks;
#endif
}

static void noop_fd_cb(void *arg, int fd, uint32_t ev)
{
	(void)arg;
	(void)fd;
	(void)ev;
}

static void noop_cb(void *arg)
{
	(void)arg;
}

/* Regression (hvsim's start-up watcher, found by LeakSanitizer): destroy
 * frees the watchers still registered, those deleted in a batch that
 * never ran, timers and queued calls. */
static void test_destroy_frees_watchers(void **state)
{
	int efd[2] = { eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK) };
	size_t before = 0;

	(void)state;
	/* 10 warm-up rounds (malloc's per-thread caches fill up and count as
	 * in use), then 200 measured: a watcher (> 48 bytes) leaked per round
	 * would add at least 9600 bytes; noise stays far below 2048. */
	for (int round = 0; round < 210; round++) {
		if (round == 10)
			before = heap_in_use();
		struct hvs_loop *loop = hvs_loop_create();
		assert_non_null(loop);
		assert_non_null(hvs_loop_add_fd(loop, efd[0], HVS_EV_IN,
						noop_fd_cb, NULL));
		struct hvs_loop_fd *z = hvs_loop_add_fd(loop, efd[1], HVS_EV_IN,
							noop_fd_cb, NULL);
		assert_non_null(z);
		hvs_loop_del_fd(z);
		assert_non_null(hvs_loop_timer_add(loop, 1000 * MS, 0, noop_cb,
						   NULL));
		assert_int_equal(hvs_loop_call(loop, noop_cb, NULL), 0);
		hvs_loop_destroy(loop);
	}
	assert_true(heap_in_use() < before + 2048);
	close(efd[0]);
	close(efd[1]);
}

/* ---- cross-thread calls -------------------------------------------------------- */

static atomic_int call_count;
static struct hvs_loop *cl;

static void count_call(void *arg)
{
	(void)arg;
	assert_true(hvs_loop_on_thread(cl));
	if (atomic_fetch_add(&call_count, 1) + 1 == 4 * 5000)
		hvs_loop_stop(cl);
}

static void *caller(void *arg)
{
	(void)arg;
	for (int i = 0; i < 5000; i++)
		assert_int_equal(hvs_loop_call(cl, count_call, NULL), 0);
	return NULL;
}

static void test_calls_from_threads(void **state)
{
	pthread_t th[4];

	(void)state;
	cl = hvs_loop_create();
	atomic_store(&call_count, 0);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, caller, NULL);
	assert_int_equal(hvs_loop_run(cl), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&call_count), 20000);
	assert_false(hvs_loop_on_thread(cl));
	/* Queued but never run: freed by destroy. */
	hvs_loop_call(cl, count_call, NULL);
	hvs_loop_destroy(cl);
}

/* ---- hvsim argument helpers ----------------------------------------------------- */

static void split_ok(const char *cmd, int n, ...)
{
	char **argv = NULL, err[100];
	va_list ap;

	assert_int_equal(hvsim_split_cmd(cmd, &argv, err, sizeof(err)), n);
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(argv[i], va_arg(ap, const char *));
	va_end(ap);
	assert_null(argv[n]);
	hvsim_free_argv(argv);
}

static void test_split(void **state)
{
	char **argv = NULL, err[100];

	(void)state;
	split_ok("a", 1, "a");
	split_ok("  prog  -x  'two words' \"dq $HOME \\\" \\\\ \\n\"  ", 4,
		 "prog", "-x", "two words", "dq $HOME \" \\ \\n");
	split_ok("a\\ b c\\'d", 2, "a b", "c'd");
	split_ok("x'y'\"z\"w", 1, "xyzw");
	split_ok("'' \"\"", 2, "", "");
	split_ok("echo ;|&*~`$", 2, "echo", ";|&*~`$");
	split_ok("a\\\nb", 1, "ab");
	split_ok("\t a \n b", 2, "a", "b");
	assert_int_equal(hvsim_split_cmd("", &argv, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvsim_split_cmd("   ", &argv, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "empty command");
	assert_int_equal(hvsim_split_cmd("a 'b", &argv, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unterminated single quote");
	assert_int_equal(hvsim_split_cmd("a \"b\\\"", &argv, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unterminated double quote");
	assert_int_equal(hvsim_split_cmd("a\\", &argv, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "trailing backslash");
}

static void test_sizes_versions(void **state)
{
	uint64_t v;
	uint32_t w;
	char err[160];

	(void)state;
	assert_int_equal(hvsim_parse_size("512M", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(hvsim_parse_size("1G", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(hvsim_parse_size("2MiB", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 2ull << 20);
	assert_int_equal(hvsim_parse_size("4194304", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 4ull << 20);
	assert_int_equal(hvsim_parse_size("1t", &v, err, sizeof(err)), 0);
	assert_int_equal(hvsim_parse_size("1025M", &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "must be a multiple of 2 MiB (e.g. 1024M or 1026M)");
	assert_int_equal(hvsim_parse_size("1M", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvsim_parse_size("0", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvsim_parse_size("2T", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvsim_parse_size("99999999999999999999", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvsim_parse_size("12X", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvsim_parse_size("-2M", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvsim_parse_size("M", &v, err, sizeof(err)), -EINVAL);

	static const struct { const char *s; uint32_t w; } ok[] = {
		{ "WS2008", 0x0000000D }, { "ws2008r2", 0x00010001 },
		{ "WS2012", 0x00020004 }, { "WS2012R2", 0x00030000 },
		{ "WS2016", 0x00040000 }, { "4.1", 0x00040001 },
		{ "WS2019", 0x00050002 }, { "5.0", 0x00050000 },
		{ "5.1", 0x00050001 },    { "5.2", 0x00050002 },
		{ "WS2022", 0x00050003 }, { "ws-2022", 0x00050003 },
		{ "0.13", 0x0000000D },   { "6.0", 0x00060000 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(hvsim_parse_version(ok[i].s, &w), 0);
		assert_int_equal(w, ok[i].w);
	}
	static const char *const bad[] = { "WS2010", "5.4", "4", "x.y", "",
					   "1.", ".1", "70000.0", "5.0.1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hvsim_parse_version(bad[i], &w), -EINVAL);

	assert_int_equal(hvsim_parse_uint("250", 1, 250, &v), 0);
	assert_int_equal(hvsim_parse_uint("251", 1, 250, &v), -EINVAL);
	assert_int_equal(hvsim_parse_uint("0", 1, 250, &v), -EINVAL);
	assert_int_equal(hvsim_parse_uint("1a", 1, 250, &v), -EINVAL);
	assert_int_equal(hvsim_parse_seconds("2.5", &v), 0);
	assert_int_equal(v, 2500 * MS);
	assert_int_equal(hvsim_parse_seconds("0", &v), -EINVAL);
	assert_int_equal(hvsim_parse_seconds("abc", &v), -EINVAL);
	assert_int_equal(hvsim_parse_seconds(".5", &v), 0);
	assert_int_equal(v, 500 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_fd_delete_in_batch),
		cmocka_unit_test(test_destroy_frees_watchers),
		cmocka_unit_test(test_calls_from_threads),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_sizes_versions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
