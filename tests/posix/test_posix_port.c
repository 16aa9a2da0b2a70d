/*
 * test_posix_port.c - the posix platform port against a scripted host
 * (fake_host.c, written from DESIGN.md alone): attach and WELCOME
 * validation, MSR and hypercall round trips, the signal page, reply
 * checking, the gone state, interrupts, the page allocator, fault
 * countdowns, the scaled clock and the guest wall clock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_host.h"
#include "hv/hvsim_abi.h"
#include "hv/tlfs.h"
#include "vmbus/posix.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static char cap_buf[16384];
static size_t cap_len;
static int gone_calls, gone_reason;

static void cap_log(void *arg, int level, const char *line)
{
	(void)arg;
	pthread_mutex_lock(&cap_lock);
	cap_len += (size_t)snprintf(cap_buf + cap_len,
				    sizeof(cap_buf) - cap_len, "%d %s\n", level,
				    line);
	if (cap_len >= sizeof(cap_buf))
		cap_len = sizeof(cap_buf) - 1;
	pthread_mutex_unlock(&cap_lock);
}

static bool log_has(const char *s)
{
	bool r;

	pthread_mutex_lock(&cap_lock);
	r = strstr(cap_buf, s) != NULL;
	pthread_mutex_unlock(&cap_lock);
	return r;
}

static void on_gone(void *arg, int reason)
{
	(void)arg;
	pthread_mutex_lock(&cap_lock);
	gone_calls++;
	gone_reason = reason;
	pthread_mutex_unlock(&cap_lock);
}

static int gone_count(void)
{
	int n;

	pthread_mutex_lock(&cap_lock);
	n = gone_calls;
	pthread_mutex_unlock(&cap_lock);
	return n;
}

static int gone_why(void)
{
	int n;

	pthread_mutex_lock(&cap_lock);
	n = gone_reason;
	pthread_mutex_unlock(&cap_lock);
	return n;
}

static void reset_capture(void)
{
	pthread_mutex_lock(&cap_lock);
	cap_len = 0;
	cap_buf[0] = '\0';
	gone_calls = 0;
	gone_reason = 0;
	pthread_mutex_unlock(&cap_lock);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Open memfds, eventfds, pipes and sockets: what the port could leak.
 * (Sanitizer runtimes open /proc files of their own, so not every fd.) */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], target[256];
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strstr(target, "memfd:") || strstr(target, "[eventfd]") ||
		    strstr(target, "socket:") || strstr(target, "pipe:"))
			n++;
	}
	closedir(d);
	return n;
}

static void test_opts(struct vmbus_posix_options *o)
{
	vmbus_posix_options_init(o);
	o->po_gone_action = VMBUS_POSIX_GONE_FAIL;
	o->po_on_gone = on_gone;
	o->po_log_fn = cap_log;
	o->po_log_level = VMBUS_LOG_DEBUG;
	o->po_request_timeout_ns = 2000000000ull;
}

struct env {
	struct fake_host *h;
	struct vmbus_posix *p;
	struct vmbus_platform pl;
};

static void env_up_opts(struct env *e, const struct fh_config *cfg,
			struct vmbus_posix_options *o)
{
	int gfd;

	reset_capture();
	e->h = fh_start(cfg, &gfd);
	o->po_fd = gfd;
	assert_int_equal(vmbus_posix_create(o, &e->pl, &e->p), 0);
	assert_non_null(e->p);
}

static void env_up(struct env *e, const struct fh_config *cfg)
{
	struct vmbus_posix_options o;

	test_opts(&o);
	env_up_opts(e, cfg, &o);
}

static void env_down(struct env *e)
{
	vmbus_posix_destroy(e->p);
	fh_stop(e->h);
}

static void enable_hypercalls(struct env *e)
{
	assert_int_equal(e->pl.wrmsr(e->pl.ctx, 0, HV_X64_MSR_GUEST_OS_ID,
				     UINT64_C(0x8100000000000000)), 0);
	assert_int_equal(e->pl.wrmsr(e->pl.ctx, 0, HV_X64_MSR_HYPERCALL,
				     (5u << 12) | HV_HYPERCALL_ENABLE), 0);
}

/* ------------------------------------------------------------------ */
/* attach                                                              */
/* ------------------------------------------------------------------ */

static void test_hello_fd(void **state)
{
	struct env e;
	const uint8_t *b;

	(void)state;
	env_up(&e, NULL);
	b = e.h->hello;
	assert_int_equal(e.h->hello_len, 24);
	assert_int_equal(b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24,
			 0x4D535648u);
	assert_int_equal(b[4] | b[5] << 8, 0x0001);
	assert_int_equal(b[6] | b[7] << 8, 0);
	assert_int_equal(b[16], 1); /* abi_version */
	assert_int_equal(b[17] | b[18] | b[19], 0);
	assert_int_equal(b[20] | b[21] | b[22] | b[23], 0); /* name_len */
	assert_int_equal(vmbus_posix_vcpu_count(e.p), 2);
	assert_int_equal(e.pl.vcpu_count(e.pl.ctx), 2);
	assert_int_equal(vmbus_posix_ram_bytes(e.p), 2u << 20);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_ALIVE);
	assert_true(log_has("attached: 2 vCPU"));
	env_down(&e);
}

static void test_hello_env_fd(void **state)
{
	struct vmbus_posix_options o;
	struct vmbus_platform pl;
	struct vmbus_posix *p = NULL;
	struct fake_host *h;
	char num[16];
	int gfd;

	(void)state;
	reset_capture();
	h = fh_start(&(struct fh_config){ .vcpus = 3 }, &gfd);
	snprintf(num, sizeof(num), "%d", gfd);
	setenv("HVSIM_FD", num, 1);
	test_opts(&o);
	assert_int_equal(vmbus_posix_create(&o, &pl, &p), 0);
	unsetenv("HVSIM_FD");
	assert_int_equal(vmbus_posix_vcpu_count(p), 3);
	assert_int_equal(h->hello_len, 24);
	vmbus_posix_destroy(p);
	fh_stop(h);

	/* Neither HVSIM_FD nor HVSIM_SOCKET: a clear error. */
	reset_capture();
	test_opts(&o);
	unsetenv("HVSIM_SOCKET");
	assert_int_equal(vmbus_posix_create(&o, &pl, &p), -VMBUS_EINVAL);
	assert_true(log_has("HVSIM_FD or HVSIM_SOCKET"));
	setenv("HVSIM_FD", "not-a-number", 1);
	assert_int_equal(vmbus_posix_create(&o, &pl, &p), -VMBUS_EINVAL);
	unsetenv("HVSIM_FD");
}

static void test_hello_socket_name(void **state)
{
	struct vmbus_posix_options o;
	struct vmbus_platform pl;
	struct vmbus_posix *p = NULL;
	struct fake_host *h;
	char path[108];

	(void)state;
	reset_capture();
	snprintf(path, sizeof(path), "/tmp/vmbus-posix-test-%d.sock",
		 (int)getpid());
	h = fh_start_listen(NULL, path);
	test_opts(&o);
	o.po_socket_path = path;
	o.po_vm_name = "vm-test";
	assert_int_equal(vmbus_posix_create(&o, &pl, &p), 0);
	assert_int_equal(h->hello_len, 24 + 7);
	assert_int_equal(h->hello[20], 7);
	assert_memory_equal(h->hello + 24, "vm-test", 7);
	vmbus_posix_destroy(p);
	fh_stop(h);

	/* A socket attach without a name is refused before HELLO. */
	h = fh_start_listen(NULL, path);
	o.po_vm_name = NULL;
	unsetenv("HVSIM_VM_NAME");
	assert_int_equal(vmbus_posix_create(&o, &pl, &p), -VMBUS_EINVAL);
	assert_true(log_has("needs a VM name"));
	fh_stop(h);
	unlink(path);
}

struct refusal {
	struct fh_config cfg;
	int err;
	const char *log;
};

static void test_welcome_refused(void **state)
{
	static const struct refusal cases[] = {
		{ { .fd_count_delta = 1 }, -VMBUS_EPROTO, "fd_count 6" },
		{ { .fd_count_delta = -1 }, -VMBUS_EPROTO, "fd_count 4" },
		{ { .fds_delta = -1 }, -VMBUS_EPROTO, "4 descriptors received" },
		{ { .fds_delta = 1 }, -VMBUS_EPROTO, "6 descriptors received" },
		{ { .unseal_ram = true }, -VMBUS_EPROTO, "guest-RAM memfd seals" },
		{ { .unseal_sig = true }, -VMBUS_EPROTO, "signal-page memfd seals" },
		{ { .oversize = true }, -VMBUS_EPROTO, "MSG_TRUNC" },
		{ { .welcome_result = -95 }, -VMBUS_EOPNOTSUPP, "unsupported" },
		{ { .abi_version = 2 }, -VMBUS_EPROTO, "abi_version 2" },
		{ { .vcpu_field = 251 }, -VMBUS_EPROTO, "vcpu_count 251" },
		{ { .ram_field = 3u << 20 }, -VMBUS_EPROTO, "multiple of 2 MiB" },
		{ { .ram_field = 4u << 20 }, -VMBUS_EPROTO, "smaller than" },
		{ { .doorbell_is_pipe = true }, -VMBUS_EPROTO, "not an eventfd" },
		{ { .welcome_fault = FH_BAD_SEQ }, -VMBUS_EPROTO, "seq" },
		{ { .welcome_fault = FH_BAD_TYPE }, -VMBUS_EPROTO, "reply type" },
		{ { .welcome_fault = FH_BAD_MAGIC }, -VMBUS_EPROTO, "bad magic" },
		{ { .welcome_fault = FH_SHORT }, -VMBUS_EPROTO, "47 bytes" },
		{ { .welcome_fault = FH_CLOSE }, -VMBUS_ENODEV, "no valid WELCOME" },
		{ { .welcome_fault = FH_SILENT }, -VMBUS_ENODEV, "no reply within" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmbus_posix_options o;
		struct vmbus_platform pl;
		struct vmbus_posix *p = (void *)1;
		struct fake_host *h;
		int gfd, before, after;

		reset_capture();
		h = fh_start(&cases[i].cfg, &gfd);
		test_opts(&o);
		o.po_fd = gfd;
		o.po_request_timeout_ns = 300000000ull;
		before = count_fds();
		assert_int_equal(vmbus_posix_create(&o, &pl, &p), cases[i].err);
		assert_null(p);
		/* Every received descriptor and the socket were closed. */
		after = count_fds();
		if (before >= 0 && after != before - 1) {
			fail_msg("case %zu: %d fds before, %d after", i, before, after);
		}
		if (!log_has(cases[i].log))
			fail_msg("case %zu: log lacks \"%s\":\n%s", i,
				 cases[i].log, cap_buf);
		assert_int_equal(gone_count(), 0); /* attach errors just return */
		fh_stop(h);
	}
}

/* ------------------------------------------------------------------ */
/* MSRs, seq, reply checking                                           */
/* ------------------------------------------------------------------ */

static void test_msr_roundtrip(void **state)
{
	struct env e;
	uint64_t v = 0;
	void *c;

	(void)state;
	env_up(&e, NULL);
	c = e.pl.ctx;
	assert_int_equal(e.pl.rdmsr(c, 0, HV_X64_MSR_SVERSION, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(e.pl.rdmsr(c, 1, HV_X64_MSR_VP_INDEX, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(e.pl.rdmsr(c, 1, HV_X64_MSR_SINT(2), &v), 0);
	assert_int_equal(v, HV_SINT_MASKED);
	assert_int_equal(e.pl.wrmsr(c, 1, HV_X64_MSR_SIMP, 0x7001), 0);
	assert_int_equal(e.pl.rdmsr(c, 1, HV_X64_MSR_SIMP, &v), 0);
	assert_int_equal(v, 0x7001);
	assert_int_equal(e.pl.rdmsr(c, 0, HV_X64_MSR_SIMP, &v), 0);
	assert_int_equal(v, 0);
	/* Host errors come back as codes; the partition stays alive. */
	assert_int_equal(e.pl.wrmsr(c, 0, HV_X64_MSR_VP_INDEX, 3),
			 -VMBUS_EINVAL);
	assert_int_equal(e.pl.rdmsr(c, 7, HV_X64_MSR_SIMP, &v), -VMBUS_ERANGE);
	assert_int_equal(e.pl.rdmsr(c, 0, 0x12345, &v), -VMBUS_EINVAL);
	fh_set_error(e.h, -5);
	assert_int_equal(e.pl.rdmsr(c, 0, HV_X64_MSR_SIMP, &v), -5);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_ALIVE);
	assert_int_equal(e.pl.rdmsr(c, 1, HV_X64_MSR_SIMP, &v), 0);
	assert_int_equal(v, 0x7001);
	env_down(&e);
}

static void test_seq_unique(void **state)
{
	struct env e;
	uint64_t v;

	(void)state;
	env_up(&e, NULL);
	for (int i = 0; i < 20; i++)
		assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
				 0);
	assert_int_equal(fh_nrequests(e.h), 21);
	for (size_t i = 1; i < 21; i++)
		assert_true(e.h->log[i].seq > e.h->log[i - 1].seq);
	env_down(&e);
}

static void test_bad_replies(void **state)
{
	static const enum fh_fault faults[] = {
		FH_BAD_SEQ, FH_BAD_TYPE, FH_BAD_MAGIC, FH_BAD_FLAGS,
		FH_SHORT,   FH_LONG,     FH_WITH_FD,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		struct vmbus_posix_stats st;
		struct env e;
		uint64_t v;
		int before, after;

		env_up(&e, NULL);
		before = count_fds();
		fh_set_fault(e.h, faults[i]);
		assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
				 -VMBUS_EPROTO);
		after = count_fds();
		if (before >= 0)
			assert_int_equal(after, before); /* FH_WITH_FD closed */
		assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_GONE_PROTO);
		assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
				 -VMBUS_ENODEV);
		assert_int_equal(e.pl.wrmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, 0),
				 -VMBUS_ENODEV);
		vmbus_posix_get_stats(e.p, &st);
		assert_int_equal(st.ps_bad_replies, 1);
		assert_int_equal(gone_count(), 1);
		assert_int_equal(gone_why(), VMBUS_POSIX_GONE_PROTO);
		assert_true(log_has("partition gone"));
		env_down(&e);
	}
}

static void test_positive_result_refused(void **state)
{
	struct env e;
	uint64_t v;

	(void)state;
	env_up(&e, NULL);
	fh_set_error(e.h, 5);
	assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
			 -VMBUS_EPROTO);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_GONE_PROTO);
	env_down(&e);
}

/* ------------------------------------------------------------------ */
/* hypercalls and the signal page                                      */
/* ------------------------------------------------------------------ */

static void test_hypercall_roundtrip(void **state)
{
	struct env e;
	uint8_t in[256], out[16];
	uint64_t res = 0;
	void *c;

	(void)state;
	env_up(&e, NULL);
	c = e.pl.ctx;
	enable_hypercalls(&e);
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	e.h->hc_result = HV_STATUS_INSUFFICIENT_BUFFERS;
	e.h->hc_output_len = 8;
	memset(out, 0xEE, sizeof(out));
	assert_int_equal(e.pl.hypercall(c, 1, HV_CALL_POST_MESSAGE, in,
					sizeof(in), out, sizeof(out), &res),
			 0);
	assert_int_equal(res, HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(e.h->hc_vp, 1);
	assert_int_equal(e.h->hc_control, HV_CALL_POST_MESSAGE);
	assert_int_equal(e.h->hc_input_len, sizeof(in));
	assert_memory_equal(e.h->hc_input, in, sizeof(in));
	for (int i = 0; i < 8; i++)
		assert_int_equal(out[i], 0xA0 + i);
	for (int i = 8; i < 16; i++)
		assert_int_equal(out[i], 0);

	/* Fast call: RDX then R8, zero-extended to 16 bytes. */
	e.h->hc_result = 0;
	e.h->hc_output_len = 0;
	assert_int_equal(e.pl.hypercall(c, 0, 0x99 | HV_HYPERCALL_FAST, in, 8,
					NULL, 0, &res),
			 0);
	assert_int_equal(e.h->hc_input_len, 16);
	assert_memory_equal(e.h->hc_input, in, 8);
	for (int i = 8; i < 16; i++)
		assert_int_equal(e.h->hc_input[i], 0);

	/* Caller bugs. */
	assert_int_equal(e.pl.hypercall(c, 0, HV_CALL_POST_MESSAGE, in, 4097,
					NULL, 0, &res),
			 -VMBUS_EINVAL);
	assert_int_equal(e.pl.hypercall(c, 0, 0x99 | HV_HYPERCALL_FAST, in, 17,
					NULL, 0, &res),
			 -VMBUS_EINVAL);

	/* A reply whose output_len overruns the datagram is refused. */
	fh_set_fault(e.h, FH_HC_BAD_OUTLEN);
	assert_int_equal(e.pl.hypercall(c, 0, HV_CALL_POST_MESSAGE, in,
					sizeof(in), NULL, 0, &res),
			 -VMBUS_EPROTO);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_GONE_PROTO);
	env_down(&e);
}

static uint64_t sig_word(struct fake_host *h, uint32_t i)
{
	uint64_t v = 0;

	for (int b = 0; b < 8; b++)
		v |= (uint64_t)h->sig[8 * i + (uint32_t)b] << (8 * b);
	return v;
}

static void test_signal_page(void **state)
{
	struct vmbus_posix_stats st;
	struct env e;
	uint8_t in[8] = { 5, 0, 0, 0, 0, 0, 0, 0 };
	uint64_t res = 99;
	size_t nreq;
	void *c;

	(void)state;
	env_up(&e, NULL);
	c = e.pl.ctx;

	/* Before the hypercall MSRs are set, it goes to the host (which
	 * answers INVALID_HYPERCALL_CODE in a real host). */
	nreq = fh_nrequests(e.h);
	assert_int_equal(e.pl.hypercall(c, 0, HV_CALL_SIGNAL_EVENT, in, 8, NULL,
					0, &res),
			 0);
	assert_int_equal(fh_nrequests(e.h), nreq + 1);
	assert_int_equal(sig_word(e.h, 0), 0);

	enable_hypercalls(&e);
	nreq = fh_nrequests(e.h);
	assert_int_equal(fh_take_signal(e.h), 0);
	res = 99;
	assert_int_equal(e.pl.hypercall(c, 0, HV_CALL_SIGNAL_EVENT, in, 8, NULL,
					0, &res),
			 0);
	assert_int_equal(res, HV_STATUS_SUCCESS);
	assert_int_equal(sig_word(e.h, 0), UINT64_C(1) << 5);
	assert_true(fh_take_signal(e.h) >= 1);
	/* Fast form: RDX = connection id 100 -> word 1, bit 36. */
	in[0] = 100;
	assert_int_equal(e.pl.hypercall(c, 1,
					HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
					in, 8, NULL, 0, &res),
			 0);
	assert_int_equal(sig_word(e.h, 1), UINT64_C(1) << 36);
	/* The highest id on the page: 32767 -> word 511, bit 63. */
	in[0] = 0xFF;
	in[1] = 0x7F;
	assert_int_equal(e.pl.hypercall(c, 0, HV_CALL_SIGNAL_EVENT, in, 8, NULL,
					0, &res),
			 0);
	assert_int_equal(sig_word(e.h, 511), UINT64_C(1) << 63);
	assert_true(fh_take_signal(e.h) >= 1);
	assert_int_equal(fh_nrequests(e.h), nreq); /* no datagram */
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_signals, 3);

	/* id >= 32768, or flag != 0: the HYPERCALL request. */
	in[0] = 0x00;
	in[1] = 0x80;
	assert_int_equal(e.pl.hypercall(c, 0, HV_CALL_SIGNAL_EVENT, in, 8, NULL,
					0, &res),
			 0);
	assert_int_equal(fh_nrequests(e.h), nreq + 1);
	assert_int_equal(e.h->hc_control, HV_CALL_SIGNAL_EVENT);
	in[1] = 0;
	in[4] = 1;
	assert_int_equal(e.pl.hypercall(c, 0, HV_CALL_SIGNAL_EVENT, in, 8, NULL,
					0, &res),
			 0);
	assert_int_equal(fh_nrequests(e.h), nreq + 2);
	assert_int_equal(e.h->hc_input[4], 1);
	assert_int_equal(fh_take_signal(e.h), 0);
	env_down(&e);
}

/* ------------------------------------------------------------------ */
/* gone: EOF, timeout                                                  */
/* ------------------------------------------------------------------ */

struct waiter {
	struct vmbus_platform *pl;
	vmbus_lock_t l;
	vmbus_wait_t w;
	uint64_t deadline;
	int rc;
	bool woken;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	void *c = w->pl->ctx;

	w->pl->lock(c, &w->l);
	do {
		w->rc = w->pl->wait(c, &w->w, &w->l, w->deadline);
	} while (w->rc == 0 && !w->woken);
	w->pl->unlock(c, &w->l);
	return NULL;
}

static void test_eof_wakes_waiters(void **state)
{
	struct env e;
	struct waiter w = { 0 };
	pthread_t t;
	uint64_t v;

	(void)state;
	env_up(&e, NULL);
	w.pl = &e.pl;
	e.pl.lock_init(e.pl.ctx, &w.l);
	e.pl.wait_init(e.pl.ctx, &w.w);
	w.deadline = e.pl.now_ns(e.pl.ctx) + 3600ull * 1000000000ull;
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	sleep_ms(50);
	fh_close(e.h);
	/* The watchdog notices the EOF with no request in flight; the waiter
	 * (deadline an hour away) wakes with -ENODEV, well within 30 s. */
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 30 * VMBUS_TEST_TIME_SCALE;
		if (pthread_timedjoin_np(t, NULL, &ts) != 0)
			fail_msg("waiter not woken by the host's EOF");
	}
	assert_int_equal(w.rc, -VMBUS_ENODEV);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_GONE_EOF);
	assert_int_equal(gone_count(), 1);
	assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
			 -VMBUS_ENODEV);
	/* A new wait fails at once. */
	e.pl.lock(e.pl.ctx, &w.l);
	assert_int_equal(e.pl.wait(e.pl.ctx, &w.w, &w.l, w.deadline),
			 -VMBUS_ENODEV);
	e.pl.unlock(e.pl.ctx, &w.l);
	e.pl.wait_fini(e.pl.ctx, &w.w);
	e.pl.lock_fini(e.pl.ctx, &w.l);
	env_down(&e);
}

static void test_eof_in_request(void **state)
{
	struct env e;
	uint64_t v;

	(void)state;
	env_up(&e, NULL);
	fh_set_fault(e.h, FH_CLOSE);
	assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
			 -VMBUS_ENODEV);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_GONE_EOF);
	assert_int_equal(gone_count(), 1);
	env_down(&e);
}

static void test_timeout_gone(void **state)
{
	struct vmbus_posix_options o;
	struct env e;
	uint64_t v, t0, port0;

	(void)state;
	test_opts(&o);
	o.po_request_timeout_ns = 200000000ull; /* 200 ms of port clock */
	env_up_opts(&e, NULL, &o);
	fh_set_fault(e.h, FH_SILENT);
	t0 = mono_ns();
	port0 = e.pl.now_ns(e.pl.ctx);
	assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
			 -VMBUS_ENODEV);
	/* It waited the (scaled) timeout, not less. */
	assert_true(e.pl.now_ns(e.pl.ctx) - port0 >= 200000000ull);
	assert_true(mono_ns() - t0 >= 200000000ull);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_GONE_TIMEOUT);
	assert_true(log_has("no reply within"));
	env_down(&e);
}

/* ------------------------------------------------------------------ */
/* interrupts                                                          */
/* ------------------------------------------------------------------ */

struct isr_rec {
	pthread_mutex_t m;
	pthread_cond_t c;
	int calls[FH_MAX_VCPUS];
	uint32_t cur_vp[FH_MAX_VCPUS];
	bool drained[FH_MAX_VCPUS];
	struct fake_host *h;
	struct vmbus_platform *pl;
};

static void isr(void *arg, uint32_t vp)
{
	struct isr_rec *r = arg;
	uint64_t v;
	/* The host's doorbell fd shares the guest's file description: the
	 * port must already have read (reset) it. */
	bool drained = read(r->h->doorbell[vp], &v, sizeof(v)) < 0 &&
		       errno == EAGAIN;

	pthread_mutex_lock(&r->m);
	r->calls[vp]++;
	r->cur_vp[vp] = r->pl->current_vp(r->pl->ctx);
	r->drained[vp] = drained;
	pthread_cond_broadcast(&r->c);
	pthread_mutex_unlock(&r->m);
}

static bool wait_calls(struct isr_rec *r, uint32_t vp, int n)
{
	uint64_t end = mono_ns() + 5000000000ull;
	bool ok;

	pthread_mutex_lock(&r->m);
	while (r->calls[vp] < n && mono_ns() < end) {
		pthread_mutex_unlock(&r->m);
		sleep_ms(2);
		pthread_mutex_lock(&r->m);
	}
	ok = r->calls[vp] >= n;
	pthread_mutex_unlock(&r->m);
	return ok;
}

static void test_irq(void **state)
{
	struct isr_rec r;
	struct env e;
	uint8_t vec = 0;
	struct vmbus_posix_stats st;

	(void)state;
	env_up(&e, &(struct fh_config){ .vcpus = 3 });
	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.m, NULL);
	pthread_cond_init(&r.c, NULL);
	r.h = e.h;
	r.pl = &e.pl;
	assert_int_equal(e.pl.irq_attach(e.pl.ctx, &vec, isr, &r), 0);
	assert_int_equal(vec, 0xF3); /* no valid proposal: the default */
	e.pl.irq_detach(e.pl.ctx);
	vec = 0x41;
	assert_int_equal(e.pl.irq_attach(e.pl.ctx, &vec, isr, &r), 0);
	assert_int_equal(vec, 0x41); /* the core's proposal is kept */
	assert_int_equal(e.pl.irq_attach(e.pl.ctx, &vec, isr, &r),
			 -VMBUS_EBUSY);
	assert_int_equal(e.pl.current_vp(e.pl.ctx), 0);

	fh_ring(e.h, 2);
	assert_true(wait_calls(&r, 2, 1));
	fh_ring(e.h, 1);
	assert_true(wait_calls(&r, 1, 1));
	pthread_mutex_lock(&r.m);
	assert_int_equal(r.cur_vp[2], 2);
	assert_int_equal(r.cur_vp[1], 1);
	assert_true(r.drained[2]);
	assert_true(r.drained[1]);
	assert_int_equal(r.calls[0], 0);
	pthread_mutex_unlock(&r.m);

	e.pl.irq_detach(e.pl.ctx);
	fh_ring(e.h, 0);
	sleep_ms(50);
	pthread_mutex_lock(&r.m);
	assert_int_equal(r.calls[0], 0);
	pthread_mutex_unlock(&r.m);
	/* Re-attach: the doorbell rung while detached is delivered. */
	assert_int_equal(e.pl.irq_attach(e.pl.ctx, &vec, isr, &r), 0);
	assert_true(wait_calls(&r, 0, 1));
	e.pl.irq_detach(e.pl.ctx);
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_interrupts, 3);
	pthread_mutex_destroy(&r.m);
	pthread_cond_destroy(&r.c);
	env_down(&e);
}

/* ------------------------------------------------------------------ */
/* pages                                                               */
/* ------------------------------------------------------------------ */

static void test_pages(void **state)
{
	struct vmbus_posix_stats st;
	struct env e;
	static uint64_t pfns[512];
	static void *vas[512];
	static uint8_t seen[512];
	uint64_t pfn, gpa;
	uint8_t *va;
	size_t n = 0;
	void *c;

	(void)state;
	env_up(&e, NULL);
	c = e.pl.ctx;
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_pages_total, 511);

	/* One page: nonzero pfn, GPA matches, zeroed, host sees writes. */
	va = e.pl.page_alloc(c, 1, &pfn);
	assert_non_null(va);
	assert_true(pfn != 0);
	assert_int_equal(e.pl.virt_to_gpa(c, va + 123, &gpa), 0);
	assert_int_equal(gpa, (pfn << 12) + 123);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(va[i], 0);
	memset(va, 0x5A, 4096);
	assert_int_equal(e.h->ram[(pfn << 12) + 4095], 0x5A);
	assert_int_equal(e.pl.page_free(c, va, 1), 0);
	/* Double free and foreign pointers are caller bugs. */
	assert_int_equal(e.pl.page_free(c, va, 1), -VMBUS_EINVAL);
	assert_int_equal(e.pl.page_free(c, &n, 1), -VMBUS_EINVAL);
	assert_int_equal(e.pl.page_free(c, vmbus_posix_ram_base(e.p), 1),
			 -VMBUS_EINVAL);
	/* Page 0 and outside RAM have no GPA to give. */
	assert_int_equal(e.pl.virt_to_gpa(c, vmbus_posix_ram_base(e.p), &gpa),
			 -VMBUS_EFAULT);
	assert_int_equal(e.pl.virt_to_gpa(c, &n, &gpa), -VMBUS_EFAULT);
	assert_int_equal(e.pl.virt_to_gpa(c,
					  (uint8_t *)vmbus_posix_ram_base(e.p) +
						  (2u << 20),
					  &gpa),
			 -VMBUS_EFAULT);

	/* Exhaust with single pages: 511, all distinct, none 0, zeroed. */
	while (n < 512 && (vas[n] = e.pl.page_alloc(c, 1, &pfns[n])) != NULL) {
		assert_true(pfns[n] != 0 && pfns[n] < 512);
		assert_int_equal(seen[pfns[n]], 0);
		seen[pfns[n]] = 1;
		assert_int_equal(((uint8_t *)vas[n])[0], 0);
		n++;
	}
	assert_int_equal(n, 511);
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_pages_used, 511);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(e.pl.page_free(c, vas[i], 1), 0);

	/* Multi-page: contiguous PFNs; too big fails; full run works. */
	va = e.pl.page_alloc(c, 16, pfns);
	assert_non_null(va);
	for (int i = 1; i < 16; i++)
		assert_int_equal(pfns[i], pfns[0] + (uint64_t)i);
	assert_int_equal(e.pl.virt_to_gpa(c, va + 15 * 4096, &gpa), 0);
	assert_int_equal(gpa, pfns[15] << 12);
	assert_int_equal(e.pl.page_free(c, va, 16), 0);
	assert_null(e.pl.page_alloc(c, 512, pfns));
	va = e.pl.page_alloc(c, 511, pfns);
	assert_non_null(va);
	assert_int_equal(pfns[0], 1);
	assert_null(e.pl.page_alloc(c, 1, &pfn));
	assert_int_equal(e.pl.page_free(c, va, 511), 0);
	assert_null(e.pl.page_alloc(c, 0, pfns));
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_pages_used, 0);
	env_down(&e);
}

/* ------------------------------------------------------------------ */
/* fault countdowns                                                    */
/* ------------------------------------------------------------------ */

static void count_work(void *arg)
{
	(void)arg;
}

static void test_fault_countdown(void **state)
{
	struct vmbus_posix_stats st;
	struct env e;
	vmbus_lock_t l;
	vmbus_wait_t w;
	uint64_t pfn, t0;
	void *a, *b, *va;
	void *c;

	(void)state;
	env_up(&e, NULL);
	c = e.pl.ctx;

	assert_int_equal(vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_ALLOC, 2,
					       0),
			 0);
	a = e.pl.zalloc(c, 10);
	assert_non_null(a);
	assert_null(e.pl.zalloc(c, 10));
	b = e.pl.zalloc(c, 10);
	assert_non_null(b);
	e.pl.free(c, a, 10);
	e.pl.free(c, b, 10);
	e.pl.free(c, NULL, 0);
	/* Persistent: the first and every later call fail, until disarmed. */
	vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_ALLOC, 1, 1);
	assert_null(e.pl.zalloc(c, 1));
	assert_null(e.pl.zalloc(c, 1));
	vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_ALLOC, 0, 0);
	a = e.pl.zalloc(c, 1);
	assert_non_null(a);
	e.pl.free(c, a, 1);
	assert_int_equal(vmbus_posix_fault_set(e.p, 99, 1, 0), -VMBUS_EINVAL);

	vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_PAGE, 1, 0);
	assert_null(e.pl.page_alloc(c, 1, &pfn));
	va = e.pl.page_alloc(c, 1, &pfn);
	assert_non_null(va);

	/* A forced unshare failure leaks the pages, counted. */
	vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_PAGE_FREE, 1, 0);
	assert_int_equal(e.pl.page_free(c, va, 1), -VMBUS_EISCONN);
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_pages_leaked, 1);
	assert_int_equal(st.ps_pages_used, 1);
	assert_true(log_has("leaking 1 page"));

	e.pl.lock_init(c, &l);
	e.pl.wait_init(c, &w);
	vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_WAIT, 1, 0);
	t0 = mono_ns();
	e.pl.lock(c, &l);
	assert_int_equal(e.pl.wait(c, &w, &l, e.pl.now_ns(c) + 3600000000000ull),
			 -VMBUS_ETIMEDOUT);
	e.pl.unlock(c, &l);
	assert_true(mono_ns() - t0 < 3600000000000ull);

	/* TIMEOUT: the deadline passes for real (the port clock jumps an
	 * hour) at once; the clock stays monotonic, later waits still work. */
	{
		uint64_t before = e.pl.now_ns(c);
		uint64_t dl = before + 600000000000ull;	/* 10 min */

		vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_TIMEOUT, 1, 0);
		t0 = mono_ns();
		e.pl.lock(c, &l);
		assert_int_equal(e.pl.wait(c, &w, &l, dl), -VMBUS_ETIMEDOUT);
		assert_true(e.pl.now_ns(c) >= dl);
		assert_int_equal(e.pl.wait(c, &w, &l, e.pl.now_ns(c) +
		    1000000ull), -VMBUS_ETIMEDOUT);
		e.pl.unlock(c, &l);
		assert_true(mono_ns() - t0 < 60000000000ull);
	}
	e.pl.wait_fini(c, &w);
	e.pl.lock_fini(c, &l);

	vmbus_posix_fault_set(e.p, VMBUS_POSIX_FAULT_DEFER, 1, 0);
	assert_int_equal(e.pl.defer(c, count_work, NULL), -VMBUS_ENOMEM);
	assert_int_equal(e.pl.defer(c, count_work, NULL), 0);

	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_fault_hits[VMBUS_POSIX_FAULT_ALLOC], 3);
	assert_int_equal(st.ps_fault_hits[VMBUS_POSIX_FAULT_PAGE], 1);
	assert_int_equal(st.ps_fault_hits[VMBUS_POSIX_FAULT_PAGE_FREE], 1);
	assert_int_equal(st.ps_fault_hits[VMBUS_POSIX_FAULT_WAIT], 1);
	assert_int_equal(st.ps_fault_hits[VMBUS_POSIX_FAULT_DEFER], 1);
	assert_int_equal(st.ps_fault_hits[VMBUS_POSIX_FAULT_TIMEOUT], 1);
	env_down(&e);
}

static void test_fault_env(void **state)
{
	struct env e;
	void *a, *b, *x;
	uint64_t pfn;

	(void)state;
	setenv("VMBUS_POSIX_FAIL_ALLOC", "2", 1);
	setenv("VMBUS_POSIX_FAIL_PAGE", "1+", 1);
	env_up(&e, NULL);
	unsetenv("VMBUS_POSIX_FAIL_ALLOC");
	unsetenv("VMBUS_POSIX_FAIL_PAGE");
	a = e.pl.zalloc(e.pl.ctx, 8);
	x = e.pl.zalloc(e.pl.ctx, 8);
	b = e.pl.zalloc(e.pl.ctx, 8);
	assert_non_null(a);
	assert_null(x);
	assert_non_null(b);
	e.pl.free(e.pl.ctx, a, 8);
	e.pl.free(e.pl.ctx, b, 8);
	assert_null(e.pl.page_alloc(e.pl.ctx, 1, &pfn));
	assert_null(e.pl.page_alloc(e.pl.ctx, 1, &pfn));
	env_down(&e);
}

/* ------------------------------------------------------------------ */
/* clocks                                                              */
/* ------------------------------------------------------------------ */

static void test_scaled_clock(void **state)
{
	struct vmbus_posix_options o;
	struct env e;
	vmbus_lock_t l;
	vmbus_wait_t w;
	uint64_t r0, r1, r2, r3, n1, n2;
	void *c;

	(void)state;
	test_opts(&o);
	o.po_time_scale = 4.0;
	env_up_opts(&e, NULL, &o);
	c = e.pl.ctx;
	r0 = mono_ns();
	n1 = e.pl.now_ns(c);
	r1 = mono_ns();
	sleep_ms(100);
	r2 = mono_ns();
	n2 = e.pl.now_ns(c);
	r3 = mono_ns();
	assert_true(n1 > 0);
	/* Port time runs at 1/4 of real time, within the sampling windows. */
	assert_true((n2 - n1) * 4 <= (r3 - r0) + 8);
	assert_true((n2 - n1) * 4 + 8 >= (r2 - r1));

	/* A 20 ms (port) deadline sleeps >= 80 ms of real time. */
	e.pl.lock_init(c, &l);
	e.pl.wait_init(c, &w);
	e.pl.lock(c, &l);
	r0 = mono_ns();
	n1 = e.pl.now_ns(c);
	while (e.pl.wait(c, &w, &l, n1 + 20000000ull) == 0)
		;
	r1 = mono_ns();
	e.pl.unlock(c, &l);
	assert_true(e.pl.now_ns(c) >= n1 + 20000000ull);
	assert_true(r1 - r0 >= 80000000ull);
	/* A deadline already past times out at once. */
	e.pl.lock(c, &l);
	assert_int_equal(e.pl.wait(c, &w, &l, n1), -VMBUS_ETIMEDOUT);
	e.pl.unlock(c, &l);
	e.pl.wait_fini(c, &w);
	e.pl.lock_fini(c, &l);
	env_down(&e);
}

static void test_wallclock(void **state)
{
	struct vmbus_posix_options o;
	struct vmbus_posix_stats st;
	struct env e;
	int64_t before, after, g, off0, off1, pend, target;
	uint64_t t0, t1;
	void *c;

	(void)state;
	test_opts(&o);
	o.po_wall_skew_ns = 1000ll * 1000000000ll;
	env_up_opts(&e, NULL, &o);
	c = e.pl.ctx;

	before = real_ns();
	g = e.pl.wallclock_get(c);
	after = real_ns();
	assert_true(g >= before + o.po_wall_skew_ns);
	assert_true(g <= after + o.po_wall_skew_ns);

	target = 1600000000ll * 1000000000ll;
	assert_int_equal(e.pl.wallclock_step(c, target), 0);
	g = e.pl.wallclock_get(c);
	assert_true(g >= target);
	assert_true(g < target + 60ll * 1000000000ll);

	/* Slew +1 s at 500 ppm: applied gradually, at most 500 us/s. */
	vmbus_posix_wallclock_state(e.p, &off0, &pend);
	assert_int_equal(pend, 0);
	t0 = mono_ns();
	assert_int_equal(e.pl.wallclock_slew(c, 1000000000ll), 0);
	sleep_ms(100);
	vmbus_posix_wallclock_state(e.p, &off1, &pend);
	t1 = mono_ns();
	assert_true(off1 - off0 >= 50000);    /* >= 100 ms * 500 ppm */
	assert_true((uint64_t)(off1 - off0) <= (t1 - t0) / 2000 + 1);
	assert_int_equal(off1 - off0 + pend, 1000000000ll);
	/* A step cancels the slew. */
	assert_int_equal(e.pl.wallclock_step(c, target), 0);
	vmbus_posix_wallclock_state(e.p, NULL, &pend);
	assert_int_equal(pend, 0);
	assert_int_equal(e.pl.wallclock_step(c, INT64_MIN), -VMBUS_EINVAL);
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_wall_steps, 2);
	assert_int_equal(st.ps_wall_slews, 1);
	env_down(&e);
}

/* ------------------------------------------------------------------ */
/* locks, waits, defer                                                 */
/* ------------------------------------------------------------------ */

static void *wake_later(void *arg)
{
	struct waiter *w = arg;

	sleep_ms(20);
	w->pl->lock(w->pl->ctx, &w->l);
	w->woken = true;
	w->pl->wake_all(w->pl->ctx, &w->w);
	w->pl->unlock(w->pl->ctx, &w->l);
	return NULL;
}

static void test_wait_wake(void **state)
{
	struct env e;
	struct waiter w = { 0 };
	pthread_t t;

	(void)state;
	env_up(&e, NULL);
	w.pl = &e.pl;
	e.pl.lock_init(e.pl.ctx, &w.l);
	e.pl.wait_init(e.pl.ctx, &w.w);
	w.deadline = e.pl.now_ns(e.pl.ctx) + 60ull * 1000000000ull;
	assert_int_equal(pthread_create(&t, NULL, wake_later, &w), 0);
	waiter_main(&w);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	assert_true(w.woken);
	e.pl.wait_fini(e.pl.ctx, &w.w);
	e.pl.lock_fini(e.pl.ctx, &w.l);
	env_down(&e);
}

struct dq {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool release;
	int order[8];
	int n;
	pthread_t self;
};

static struct dq dq;

static void blocking_work(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&dq.m);
	dq.self = pthread_self();
	while (!dq.release)
		pthread_cond_wait(&dq.c, &dq.m);
	pthread_mutex_unlock(&dq.m);
}

static void record_work(void *arg)
{
	pthread_mutex_lock(&dq.m);
	dq.order[dq.n++] = (int)(intptr_t)arg;
	pthread_mutex_unlock(&dq.m);
}

static void test_defer(void **state)
{
	struct vmbus_posix_options o;
	struct vmbus_posix_stats st;
	struct env e;
	void *c;

	(void)state;
	memset(&dq, 0, sizeof(dq));
	pthread_mutex_init(&dq.m, NULL);
	pthread_cond_init(&dq.c, NULL);
	test_opts(&o);
	o.po_defer_queue = 2;
	env_up_opts(&e, NULL, &o);
	c = e.pl.ctx;
	assert_int_equal(e.pl.defer(c, blocking_work, NULL), 0);
	/* Wait until the worker holds the blocking item. */
	for (int i = 0; i < 1000; i++) {
		bool started;

		pthread_mutex_lock(&dq.m);
		started = dq.self != 0;
		pthread_mutex_unlock(&dq.m);
		if (started)
			break;
		sleep_ms(2);
	}
	assert_int_equal(e.pl.defer(c, record_work, (void *)1), 0);
	assert_int_equal(e.pl.defer(c, record_work, (void *)2), 0);
	assert_int_equal(e.pl.defer(c, record_work, (void *)3), -VMBUS_ENOMEM);
	pthread_mutex_lock(&dq.m);
	assert_false(pthread_equal(dq.self, pthread_self()));
	dq.release = true;
	pthread_cond_broadcast(&dq.c);
	pthread_mutex_unlock(&dq.m);
	vmbus_posix_get_stats(e.p, &st);
	assert_int_equal(st.ps_defer_dropped, 1);
	/* destroy finishes queued work first. */
	env_down(&e);
	assert_int_equal(dq.n, 2);
	assert_int_equal(dq.order[0], 1);
	assert_int_equal(dq.order[1], 2);
	pthread_mutex_destroy(&dq.m);
	pthread_cond_destroy(&dq.c);
}

/* ------------------------------------------------------------------ */
/* power, hooks, options                                               */
/* ------------------------------------------------------------------ */

static int hook_order[4];
static int hook_n;

static void hook(void *arg)
{
	hook_order[hook_n++] = (int)(intptr_t)arg;
}

static void test_power_off_hooks(void **state)
{
	struct env e;
	uint64_t v;

	(void)state;
	hook_n = 0;
	env_up(&e, NULL);
	assert_int_equal(vmbus_posix_add_shutdown_hook(e.p, hook, (void *)1), 0);
	assert_int_equal(vmbus_posix_add_shutdown_hook(e.p, hook, (void *)2), 0);
	assert_int_equal(vmbus_posix_add_shutdown_hook(e.p, hook, (void *)3), 0);
	assert_int_equal(vmbus_posix_remove_shutdown_hook(e.p, hook, (void *)2),
			 0);
	assert_int_equal(vmbus_posix_remove_shutdown_hook(e.p, hook, (void *)9),
			 -VMBUS_ENOENT);
	/* GONE_FAIL mode: power_off returns after RESET instead of exit. */
	assert_int_equal(e.pl.power_off(e.pl.ctx), 0);
	assert_int_equal(hook_n, 2);
	assert_int_equal(hook_order[0], 3);
	assert_int_equal(hook_order[1], 1);
	assert_true(e.h->reset_seen);
	assert_int_equal(e.h->reset_kind, HVSIM_RESET_POWER_OFF);
	assert_int_equal(vmbus_posix_gone(e.p), VMBUS_POSIX_GONE_RESET);
	assert_int_equal(e.pl.rdmsr(e.pl.ctx, 0, HV_X64_MSR_SIMP, &v),
			 -VMBUS_ENODEV);
	/* The host's teardown EOF after RESET is not a second "gone". */
	sleep_ms(50);
	assert_int_equal(gone_count(), 0);
	assert_int_equal(e.pl.reboot(e.pl.ctx), -VMBUS_ENODEV);
	env_down(&e);

	env_up(&e, NULL);
	assert_int_equal(vmbus_posix_reset(e.p, 7), -VMBUS_EINVAL);
	assert_int_equal(e.pl.reboot(e.pl.ctx), 0);
	assert_int_equal(e.h->reset_kind, HVSIM_RESET_REBOOT);
	env_down(&e);
}

/* A socket-attached guest that reboots starts itself again and reconnects;
 * on its second boot it powers off. Runs the helper as a child process. */
static void test_reboot_reconnects(void **state)
{
	struct fake_host *h;
	char path[108];
	uint64_t end;
	pid_t pid;
	int status = -1;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/vmbus-posix-reboot-%d.sock",
		 (int)getpid());
	h = fh_start_listen(NULL, path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("HVSIM_SOCKET", path, 1);
		setenv("HVSIM_VM_NAME", "rebootvm", 1);
		unsetenv("HVSIM_FD");
		unsetenv("POSIX_REBOOT_BOOT");
		execl(POSIX_REBOOT_GUEST, POSIX_REBOOT_GUEST, (char *)NULL);
		_exit(127);
	}
	end = mono_ns() + 30ull * 1000000000ull * VMBUS_TEST_TIME_SCALE;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (mono_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fh_stop(h);
			fail_msg("reboot guest did not finish");
		}
		sleep_ms(10);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	pthread_mutex_lock(&h->lock);
	assert_int_equal(h->connections, 2);
	assert_int_equal(h->nresets, 2);
	assert_int_equal(h->resets[0], HVSIM_RESET_REBOOT);
	assert_int_equal(h->resets[1], HVSIM_RESET_POWER_OFF);
	assert_memory_equal(h->hello + 24, "rebootvm", 8);
	pthread_mutex_unlock(&h->lock);
	fh_stop(h);
	unlink(path);
}

static void plog(struct vmbus_platform *pl, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pl->vlog(pl->ctx, level, fmt, ap);
	va_end(ap);
}

static void test_log_filter(void **state)
{
	struct vmbus_posix_options o;
	struct env e;
	char path[] = "/tmp/vmbus-posix-log-XXXXXX";
	char buf[512] = { 0 };
	int tmp, saved;
	ssize_t n;

	(void)state;
	test_opts(&o);
	o.po_log_level = VMBUS_LOG_WARN;
	env_up_opts(&e, NULL, &o);
	reset_capture();
	plog(&e.pl, VMBUS_LOG_INFO, "info %d", 1);
	plog(&e.pl, VMBUS_LOG_WARN, "warn %d", 2);
	plog(&e.pl, VMBUS_LOG_ERR, "err %s", "three");
	assert_false(log_has("info 1"));
	assert_true(log_has("1 warn 2"));
	assert_true(log_has("0 err three"));
	env_down(&e);

	/* Default sink: stderr, one line with prefix and level letter. */
	test_opts(&o);
	o.po_log_fn = NULL;
	o.po_log_prefix = "guest7";
	o.po_log_level = VMBUS_LOG_ERR;
	env_up_opts(&e, NULL, &o);
	tmp = mkstemp(path);
	assert_true(tmp >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(tmp, 2);
	plog(&e.pl, VMBUS_LOG_ERR, "hello %d", 42);
	plog(&e.pl, VMBUS_LOG_DEBUG, "hidden");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(tmp, buf, sizeof(buf) - 1, 0);
	close(tmp);
	unlink(path);
	assert_true(n > 0);
	assert_string_equal(buf, "guest7: E: hello 42\n");
	env_down(&e);
}

static void test_polled(void **state)
{
	struct vmbus_posix_options o;
	struct env e;

	(void)state;
	test_opts(&o);
	o.po_polled = 1;
	env_up_opts(&e, NULL, &o);
	assert_null(e.pl.irq_attach);
	assert_null(e.pl.wait);
	assert_null(e.pl.wake_all);
	assert_null(e.pl.defer);
	assert_non_null(e.pl.now_ns);
	assert_non_null(e.pl.lock);
	env_down(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_fd),
		cmocka_unit_test(test_hello_env_fd),
		cmocka_unit_test(test_hello_socket_name),
		cmocka_unit_test(test_welcome_refused),
		cmocka_unit_test(test_msr_roundtrip),
		cmocka_unit_test(test_seq_unique),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_positive_result_refused),
		cmocka_unit_test(test_hypercall_roundtrip),
		cmocka_unit_test(test_signal_page),
		cmocka_unit_test(test_eof_wakes_waiters),
		cmocka_unit_test(test_eof_in_request),
		cmocka_unit_test(test_timeout_gone),
		cmocka_unit_test(test_irq),
		cmocka_unit_test(test_pages),
		cmocka_unit_test(test_fault_countdown),
		cmocka_unit_test(test_fault_env),
		cmocka_unit_test(test_scaled_clock),
		cmocka_unit_test(test_wallclock),
		cmocka_unit_test(test_wait_wake),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_power_off_hooks),
		cmocka_unit_test(test_reboot_reconnects),
		cmocka_unit_test(test_log_filter),
		cmocka_unit_test(test_polled),
	};

	/* The tests choose their own clock scale where it matters. */
	unsetenv("VMBUS_TIME_SCALE");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
