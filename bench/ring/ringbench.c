/*
 * ringbench - the VMBus ring between two processes, measured beside this
 * machine's own limits in the same run.
 *
 * Two processes share a memfd (the ring, like a channel's GPADL), one pinned
 * per core. Each stack figure is printed next to the limit it is bounded by:
 *
 *   copy       one core writes a buffer into shared memory, the other copies
 *              it out (per-slot flags, no protocol): what a ring must do at
 *              least, per message size.
 *   cacheline  a cache-line ping-pong between the two cores (round trip).
 *   eventfd    an eventfd ping-pong (round trip through the kernel).
 *   socketpair AF_UNIX SOCK_SEQPACKET moving the same messages (rate) and
 *              request/response (round trip).
 *
 * and the ring: stream (one direction, messages/s and bytes/s) and
 * request/response (round trip), polled (spinning) and interrupt-driven
 * (eventfd doorbells, interrupt_mask and pending_send_sz honoured), from
 * 64 B to 64 KiB. Prints a table and, with --json FILE, a JSON document.
 *
 * A "message" of S bytes is one ring packet of S bytes: a 16-byte VMBus
 * packet descriptor plus S - 16 payload bytes, plus the ring's 8-byte
 * trailer. The copy and socketpair peers move the same S bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/ring.h"
#include "hv/vmbus_pkt.h"

#define CACHELINE 64
#define RING_BYTES (HV_RING_CONTROL_SIZE + 2u * 1024 * 1024) /* 2 MiB data */
#define SHM_BYTES (3u * RING_BYTES + 4u * 1024 * 1024)
#define MAX_MSG 65536u

static double g_seconds = 0.3;   /* target duration of each measurement */
static int g_quick;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* ---- the shared area and the two-process harness ------------------------ */

struct shared {
	_Alignas(CACHELINE) atomic_uint_fast64_t sh_ping;
	_Alignas(CACHELINE) atomic_uint_fast64_t sh_pong;
	_Alignas(CACHELINE) atomic_uint sh_ready;
	_Alignas(CACHELINE) atomic_uint_fast64_t sh_result_ns;
	atomic_uint_fast64_t sh_result_count;
	atomic_uint_fast64_t sh_errors;
	_Alignas(CACHELINE) atomic_uint sh_slot_full[1024 * 16]; /* copy test; one per 64 B */
};

static struct shared *g_sh;
static uint8_t *g_area;          /* after struct shared: rings / slots */
static int g_nprocs;

struct pair {
	int p_efd[2];                /* eventfds: [0] wakes child, [1] parent */
	int p_sock[2];               /* socketpair */
	uint32_t p_size;             /* message size */
	uint64_t p_count;            /* messages to move */
};

static void pin(int cpu)
{
	if (g_nprocs < 2)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % g_nprocs, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

static void barrier(void)
{
	atomic_fetch_add(&g_sh->sh_ready, 1);
	while (atomic_load(&g_sh->sh_ready) < 2)
		cpu_relax();
}

typedef void side_fn(struct pair *p, int role);

/* Run fn in two processes (role 0 here, role 1 in a child); both meet at
 * barrier() before timing. The measuring side stores sh_result_*. */
static void run_pair(side_fn *fn, struct pair *p)
{
	atomic_store(&g_sh->sh_ready, 0);
	atomic_store(&g_sh->sh_ping, 0);
	atomic_store(&g_sh->sh_pong, 0);
	atomic_store(&g_sh->sh_result_ns, 0);
	atomic_store(&g_sh->sh_result_count, 0);
	atomic_store(&g_sh->sh_errors, 0);
	if (eventfd(0, 0) < 0) /* probe */
		die("eventfd");
	p->p_efd[0] = eventfd(0, EFD_CLOEXEC);
	p->p_efd[1] = eventfd(0, EFD_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->p_sock))
		die("socketpair");
	int sz = 4 * 1024 * 1024;
	for (int i = 0; i < 2; i++) {
		(void)setsockopt(p->p_sock[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		(void)setsockopt(p->p_sock[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(1);
		fn(p, 1);
		_exit(0);
	}
	pin(0);
	fn(p, 0);
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "ringbench: peer process failed\n");
		exit(1);
	}
	for (int i = 0; i < 2; i++) {
		close(p->p_efd[i]);
		close(p->p_sock[i]);
	}
	if (atomic_load(&g_sh->sh_errors)) {
		fprintf(stderr, "ringbench: %" PRIu64 " data errors\n",
			(uint64_t)atomic_load(&g_sh->sh_errors));
		exit(1);
	}
}

static void efd_signal(int fd)
{
	uint64_t one = 1;
	if (write(fd, &one, sizeof(one)) != sizeof(one))
		die("eventfd write");
}

static void efd_wait(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		die("eventfd read");
}

/* Iteration counts: calibrated per test so each takes about g_seconds. */
static uint64_t iters_for(double est_ns_per_op)
{
	double n = g_seconds * 1e9 / est_ns_per_op;
	if (g_quick)
		n /= 20;
	if (n < 200)
		n = 200;
	if (n > 5e7)
		n = 5e7;
	return (uint64_t)n;
}

/* ---- limits ------------------------------------------------------------- */

static void cacheline_side(struct pair *p, int role)
{
	barrier();
	uint64_t t0 = now_ns();
	for (uint64_t i = 1; i <= p->p_count; i++) {
		if (role == 0) {
			atomic_store_explicit(&g_sh->sh_ping, i, memory_order_release);
			while (atomic_load_explicit(&g_sh->sh_pong, memory_order_acquire) != i)
				cpu_relax();
		} else {
			while (atomic_load_explicit(&g_sh->sh_ping, memory_order_acquire) != i)
				cpu_relax();
			atomic_store_explicit(&g_sh->sh_pong, i, memory_order_release);
		}
	}
	if (role == 0)
		atomic_store(&g_sh->sh_result_ns, now_ns() - t0);
}

static void eventfd_side(struct pair *p, int role)
{
	barrier();
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < p->p_count; i++) {
		if (role == 0) {
			efd_signal(p->p_efd[0]);
			efd_wait(p->p_efd[1]);
		} else {
			efd_wait(p->p_efd[0]);
			efd_signal(p->p_efd[1]);
		}
	}
	if (role == 0)
		atomic_store(&g_sh->sh_result_ns, now_ns() - t0);
}

/* Messages carry a sequence number in their first 8 bytes (and a check of
 * the last 8): the receivers verify order and integrity, so no variant can
 * look fast by losing data. */
static void fill_msg(uint8_t *buf, uint32_t size, uint64_t seq)
{
	memcpy(buf, &seq, 8);
	if (size >= 16)
		memcpy(buf + size - 8, &seq, 8);
}

static bool check_msg(const uint8_t *buf, uint32_t size, uint64_t seq)
{
	uint64_t a, b = seq;
	memcpy(&a, buf, 8);
	if (size >= 16)
		memcpy(&b, buf + size - 8, 8);
	return a == seq && b == seq;
}

static void socket_stream_side(struct pair *p, int role)
{
	uint8_t *buf = malloc(MAX_MSG);
	barrier();
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < p->p_count; i++) {
		if (role == 1) {
			fill_msg(buf, p->p_size, i);
			if (send(p->p_sock[1], buf, p->p_size, MSG_NOSIGNAL) != (ssize_t)p->p_size)
				die("send");
		} else {
			if (recv(p->p_sock[0], buf, MAX_MSG, 0) != (ssize_t)p->p_size ||
			    !check_msg(buf, p->p_size, i))
				atomic_fetch_add(&g_sh->sh_errors, 1);
		}
	}
	if (role == 0)
		atomic_store(&g_sh->sh_result_ns, now_ns() - t0);
	free(buf);
}

static void socket_rr_side(struct pair *p, int role)
{
	uint8_t *buf = malloc(MAX_MSG);
	int fd = p->p_sock[role];
	barrier();
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < p->p_count; i++) {
		if (role == 0) {
			fill_msg(buf, p->p_size, i);
			if (send(fd, buf, p->p_size, MSG_NOSIGNAL) != (ssize_t)p->p_size)
				die("send");
		}
		if (recv(fd, buf, MAX_MSG, 0) != (ssize_t)p->p_size ||
		    !check_msg(buf, p->p_size, i))
			atomic_fetch_add(&g_sh->sh_errors, 1);
		if (role == 1 && send(fd, buf, p->p_size, MSG_NOSIGNAL) != (ssize_t)p->p_size)
			die("send");
	}
	if (role == 0)
		atomic_store(&g_sh->sh_result_ns, now_ns() - t0);
	free(buf);
}

/*
 * Cross-core copy: slots of `size` bytes in the same 2 MiB footprint as a
 * ring's data area, one full/empty flag per slot. Writer copies a private
 * buffer into a slot; reader copies it out into a private buffer.
 */
static void copy_side(struct pair *p, int role)
{
	uint32_t nslots = (RING_BYTES - HV_RING_CONTROL_SIZE) / p->p_size;
	if (nslots > 1024 * 16)
		nslots = 1024 * 16;
	uint8_t *priv = aligned_alloc(64, MAX_MSG);
	memset(priv, 0x5a, MAX_MSG);
	barrier();
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < p->p_count; i++) {
		uint32_t s = (uint32_t)(i % nslots);
		uint8_t *slot = g_area + (size_t)s * p->p_size;
		atomic_uint *flag = &g_sh->sh_slot_full[s];
		if (role == 1) {
			while (atomic_load_explicit(flag, memory_order_acquire))
				cpu_relax();
			fill_msg(priv, p->p_size, i);
			memcpy(slot, priv, p->p_size);
			atomic_store_explicit(flag, 1, memory_order_release);
		} else {
			while (!atomic_load_explicit(flag, memory_order_acquire))
				cpu_relax();
			memcpy(priv, slot, p->p_size);
			atomic_store_explicit(flag, 0, memory_order_release);
			if (!check_msg(priv, p->p_size, i))
				atomic_fetch_add(&g_sh->sh_errors, 1);
		}
	}
	if (role == 0)
		atomic_store(&g_sh->sh_result_ns, now_ns() - t0);
	free(priv);
}

/* ---- the ring ----------------------------------------------------------- */

/* Ring 0: child -> parent (stream, requests); ring 1: parent -> child. */
static uint8_t *ring_base(int n)
{
	return g_area + (size_t)n * RING_BYTES;
}

static int g_mode_intr; /* 0 polled, 1 eventfd-signalled */

static void ring_setup(struct vmbus_ring *r, int n, bool writer)
{
	if (vmbus_ring_init(r, ring_base(n), RING_BYTES))
		die("vmbus_ring_init");
	vmbus_ring_attach(r, writer);
}

/* Write one message; in interrupt mode block on `wait_fd` while full and
 * signal `sig_fd` when the ring says so. */
static unsigned g_batch = 1;   /* stream writer: packets per publish */
static unsigned g_unpub;       /* written, not yet published */
static uint32_t g_unpub_bytes;
#define BATCH_BYTES 16384u     /* ...or every 16 KiB, whichever comes first */

static void ring_publish(struct vmbus_ring *r, int sig_fd)
{
	bool sig = false;
	if (!g_unpub)
		return;
	if (vmbus_ring_publish(r, &sig)) {
		fprintf(stderr, "ringbench: ring publish failed\n");
		exit(1);
	}
	g_unpub = 0;
	g_unpub_bytes = 0;
	if (sig && g_mode_intr)
		efd_signal(sig_fd);
}

/* Write one message (batched: published every g_batch packets or
 * BATCH_BYTES, or at once when g_batch is 1); in interrupt mode block on `wait_fd` while full
 * and signal `sig_fd` when the ring says so. */
static void ring_send(struct vmbus_ring *r, uint8_t *msg, uint32_t size,
		      uint64_t seq, int sig_fd, int wait_fd)
{
	struct vmbus_packet_desc *d = (void *)msg;
	d->pd_type = hv_cpu_to_le16(VMBUS_PACKET_TYPE_DATA_INBAND);
	d->pd_offset8 = hv_cpu_to_le16(2);
	d->pd_len8 = hv_cpu_to_le16((uint16_t)(size / 8));
	d->pd_flags = 0;
	d->pd_trans_id = hv_cpu_to_le64(seq);
	if (size > 24)
		memcpy(msg + size - 8, &seq, 8);
	struct vmbus_iov iov = { msg, size };
	for (;;) {
		bool sig = false;
		int rc;
		if (g_batch > 1) {
			rc = vmbus_ring_write_nopub(r, &iov, 1);
			if (rc == 0) {
				g_unpub_bytes += size;
				if (++g_unpub >= g_batch || g_unpub_bytes >= BATCH_BYTES)
					ring_publish(r, sig_fd);
				return;
			}
			/* full: hand over what is written before waiting */
			ring_publish(r, sig_fd);
			rc = vmbus_ring_write(r, &iov, 1, &sig);
		} else {
			rc = vmbus_ring_write(r, &iov, 1, &sig);
		}
		if (rc == 0) {
			if (sig && g_mode_intr)
				efd_signal(sig_fd);
			return;
		}
		if (rc != -VMBUS_EAGAIN) {
			fprintf(stderr, "ringbench: ring write %d\n", rc);
			exit(1);
		}
		if (!g_mode_intr) {
			cpu_relax();
			continue;
		}
		vmbus_ring_set_pending_send(r, size + HV_RING_ALIGN);
		rc = vmbus_ring_write(r, &iov, 1, &sig);
		if (rc == 0) {
			vmbus_ring_set_pending_send(r, 0);
			if (sig)
				efd_signal(sig_fd);
			return;
		}
		efd_wait(wait_fd);
		vmbus_ring_set_pending_send(r, 0);
	}
}

/* Read one message into buf: peek the descriptor, validate, copy the packet
 * out (the one copy-in). In interrupt mode, unmask and block when empty. */
static void ring_recv(struct vmbus_ring *r, uint8_t *buf, uint32_t size,
		      uint64_t seq, int sig_fd, int wait_fd, bool done_now)
{
	struct vmbus_packet_desc d;
	for (;;) {
		int rc = vmbus_ring_peek(r, &d, sizeof(d));
		if (rc == 0)
			break;
		if (rc != -VMBUS_EAGAIN) {
			fprintf(stderr, "ringbench: ring peek %d\n", rc);
			exit(1);
		}
		/* Empty: return space to the writer before waiting. */
		if (vmbus_ring_read_done(r) && g_mode_intr)
			efd_signal(sig_fd);
		if (!g_mode_intr) {
			cpu_relax();
			continue;
		}
		if (vmbus_ring_unmask(r) == 0)
			efd_wait(wait_fd);
		vmbus_ring_mask(r);
	}
	uint32_t len = (uint32_t)hv_le16(d.pd_len8) * 8u;
	if (len != size || vmbus_ring_read(r, buf, len, 0)) {
		atomic_fetch_add(&g_sh->sh_errors, 1);
		exit(1);
	}
	uint64_t got;
	memcpy(&got, buf + 8, 8);
	if (got != seq || (size > 24 && !check_msg(buf + size - 8, 8, seq)))
		atomic_fetch_add(&g_sh->sh_errors, 1);
	if (done_now && vmbus_ring_read_done(r) && g_mode_intr)
		efd_signal(sig_fd);
}

static void ring_stream_side(struct pair *p, int role)
{
	struct vmbus_ring r;
	uint8_t *msg = aligned_alloc(64, MAX_MSG);
	memset(msg, 0xa5, MAX_MSG);
	ring_setup(&r, 0, role == 1);
	/* a polling reader wants no signals; an interrupt-driven one masks
	 * while it drains and unmasks before it sleeps */
	if (role == 0)
		vmbus_ring_mask(&r);
	barrier();
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < p->p_count; i++) {
		if (role == 1)
			ring_send(&r, msg, p->p_size, i, p->p_efd[1], p->p_efd[0]);
		else
			ring_recv(&r, msg, p->p_size, i, p->p_efd[0], p->p_efd[1], false);
	}
	if (role == 1)
		ring_publish(&r, p->p_efd[1]);
	if (role == 0) {
		(void)vmbus_ring_read_done(&r);
		atomic_store(&g_sh->sh_result_ns, now_ns() - t0);
	}
	free(msg);
}

static void ring_rr_side(struct pair *p, int role)
{
	struct vmbus_ring tx, rx;
	uint8_t *msg = aligned_alloc(64, MAX_MSG);
	memset(msg, 0xa5, MAX_MSG);
	/* parent writes ring 1, reads ring 0; child the reverse */
	ring_setup(&tx, role == 0 ? 1 : 0, true);
	ring_setup(&rx, role == 0 ? 0 : 1, false);
	vmbus_ring_mask(&rx);
	int my_efd = p->p_efd[role == 0 ? 1 : 0];   /* I wait on this */
	int peer_efd = p->p_efd[role == 0 ? 0 : 1]; /* I signal this */
	barrier();
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < p->p_count; i++) {
		if (role == 0) {
			ring_send(&tx, msg, p->p_size, i, peer_efd, my_efd);
			ring_recv(&rx, msg, p->p_size, i, peer_efd, my_efd, true);
		} else {
			ring_recv(&rx, msg, p->p_size, i, peer_efd, my_efd, true);
			ring_send(&tx, msg, p->p_size, i, peer_efd, my_efd);
		}
	}
	if (role == 0)
		atomic_store(&g_sh->sh_result_ns, now_ns() - t0);
	free(msg);
}

static void ring_reset_all(void)
{
	for (int n = 0; n < 2; n++) {
		struct vmbus_ring r;
		if (vmbus_ring_init(&r, ring_base(n), RING_BYTES))
			die("vmbus_ring_init");
		vmbus_ring_reset_shared(&r, true);
	}
}

/* ---- driver ------------------------------------------------------------- */

struct result {
	char name[48];
	uint32_t size;
	double value;        /* per the unit */
	const char *unit;
	char limit[48];
	double limit_value;
	double ratio;        /* stack vs limit, >1 = better than the limit's figure */
};

static struct result g_res[256];
static int g_nres;

/* ns per operation over p->p_count operations */
static double measure(side_fn *fn, uint32_t size, double est_ns)
{
	struct pair p = { .p_size = size };
	p.p_count = iters_for(est_ns);
	run_pair(fn, &p);
	double ns = (double)atomic_load(&g_sh->sh_result_ns);
	double per = ns / (double)p.p_count;
	/* recalibrate once if the estimate was far off */
	if (!g_quick && (ns < g_seconds * 0.3e9 || ns > g_seconds * 3e9)) {
		p.p_count = iters_for(per);
		run_pair(fn, &p);
		per = (double)atomic_load(&g_sh->sh_result_ns) / (double)p.p_count;
	}
	return per;
}

static void add(const char *name, uint32_t size, double value, const char *unit,
		const char *limit, double limit_value, bool lower_is_better)
{
	struct result *r = &g_res[g_nres++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->size = size;
	r->value = value;
	r->unit = unit;
	snprintf(r->limit, sizeof(r->limit), "%s", limit);
	r->limit_value = limit_value;
	r->ratio = lower_is_better ? limit_value / value : value / limit_value;
}

static const char *human_rate(double v, char *buf, size_t n)
{
	if (v >= 1e9)
		snprintf(buf, n, "%.2f G", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, n, "%.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, n, "%.2f k", v / 1e3);
	else
		snprintf(buf, n, "%.2f ", v);
	return buf;
}

static void print_table(void)
{
	char a[32], b[32];
	printf("\n%-28s %7s %14s %-8s  %-24s %14s %8s\n", "figure", "size",
	       "value", "unit", "limit (same run)", "limit value", "ratio");
	for (int i = 0; i < g_nres; i++) {
		struct result *r = &g_res[i];
		bool rate = strcmp(r->unit, "ns") != 0;
		if (rate) {
			human_rate(r->value, a, sizeof(a));
			human_rate(r->limit_value, b, sizeof(b));
		} else {
			snprintf(a, sizeof(a), "%.0f", r->value);
			snprintf(b, sizeof(b), "%.0f", r->limit_value);
		}
		printf("%-28s %7u %14s %-8s  %-24s %14s %7.2fx\n", r->name, r->size,
		       a, r->unit, r->limit, b, r->ratio);
	}
}

static void write_json(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die(path);
	fprintf(f, "{\n  \"benchmark\": \"ringbench\",\n  \"cpus\": %d,\n  \"results\": [\n",
		g_nprocs);
	for (int i = 0; i < g_nres; i++) {
		struct result *r = &g_res[i];
		fprintf(f,
			"    {\"figure\": \"%s\", \"size\": %u, \"value\": %.6g, \"unit\": \"%s\", "
			"\"limit\": \"%s\", \"limit_value\": %.6g, \"ratio\": %.4f}%s\n",
			r->name, r->size, r->value, r->unit, r->limit, r->limit_value,
			r->ratio, i + 1 < g_nres ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	fclose(f);
}

static void usage(void)
{
	printf("usage: ringbench [--quick] [--seconds S] [--json FILE] [--sizes a,b,...]\n"
	       "  Two processes, one per core, share a memfd ring; every figure is\n"
	       "  printed beside the limit measured in the same run, with the ratio.\n"
	       "  --quick     short runs (smoke test; figures are noisy)\n"
	       "  --seconds   target duration of each measurement (default 0.3)\n"
	       "  --json      also write the results as JSON to FILE\n"
	       "  --sizes     message sizes in bytes, multiples of 8, 24..65536\n");
}

int main(int argc, char **argv)
{
	const char *json = NULL;
	uint32_t sizes[16] = { 64, 256, 1024, 4096, 16384, 65536 };
	int nsizes = 6;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			g_quick = 1;
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			g_seconds = atof(argv[++i]);
			if (!(g_seconds > 0 && g_seconds < 100)) {
				fprintf(stderr, "ringbench: bad --seconds\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			nsizes = 0;
			for (char *s = strtok(argv[++i], ","); s && nsizes < 16; s = strtok(NULL, ",")) {
				long v = strtol(s, NULL, 0);
				if (v < 24 || v > (long)MAX_MSG || v % 8) {
					fprintf(stderr, "ringbench: bad size '%s'\n", s);
					return 2;
				}
				sizes[nsizes++] = (uint32_t)v;
			}
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		} else {
			fprintf(stderr, "ringbench: unknown argument '%s'\n", argv[i]);
			usage();
			return 2;
		}
	}
	g_nprocs = (int)sysconf(_SC_NPROCESSORS_ONLN);

	int mfd = memfd_create("ringbench", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, (off_t)(sizeof(struct shared) + SHM_BYTES)))
		die("memfd");
	void *m = mmap(NULL, sizeof(struct shared) + SHM_BYTES, PROT_READ | PROT_WRITE,
		       MAP_SHARED, mfd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	g_sh = m;
	g_area = (uint8_t *)m + ((sizeof(struct shared) + 4095) & ~(size_t)4095);
	memset(g_area, 0, 3u * RING_BYTES);

	printf("ringbench: %d cpus, ring %u KiB data, %.2f s per figure%s\n", g_nprocs,
	       (RING_BYTES - HV_RING_CONTROL_SIZE) / 1024, g_seconds,
	       g_quick ? " (quick)" : "");

	double cl_rtt = measure(cacheline_side, CACHELINE, 200);
	double efd_rtt = measure(eventfd_side, 8, 10000);
	struct pair tmp;
	(void)tmp;
	add("cacheline round trip", CACHELINE, cl_rtt, "ns", "-", cl_rtt, true);
	add("eventfd round trip", 8, efd_rtt, "ns", "-", efd_rtt, true);

	for (int s = 0; s < nsizes; s++) {
		uint32_t sz = sizes[s];
		double copy = measure(copy_side, sz, 20 + sz / 8.0);
		double sock = measure(socket_stream_side, sz, 1500 + sz / 4.0);
		double copy_bw = sz / copy * 1e9, sock_rate = 1e9 / sock;
		add("limit: cross-core copy", sz, copy_bw, "B/s", "-", copy_bw, false);
		add("limit: socketpair stream", sz, sock_rate, "msg/s", "-", sock_rate, false);

		for (int v = 0; v < 4; v++) {
			g_mode_intr = v & 1;
			g_batch = v & 2 ? 1 : 32;
			char m[32], name[48];
			snprintf(m, sizeof(m), "%s%s", g_mode_intr ? "intr" : "polled",
				 g_batch > 1 ? "" : " nobatch");
			ring_reset_all();
			double ring = measure(ring_stream_side, sz, 30 + sz / 8.0);
			snprintf(name, sizeof(name), "ring stream %s", m);
			add(name, sz, 1e9 / ring, "msg/s", "socketpair msg/s", sock_rate, false);
			snprintf(name, sizeof(name), "ring stream %s bw", m);
			add(name, sz, sz / ring * 1e9, "B/s", "cross-core copy B/s", copy_bw, false);
		}
		g_batch = 1;
	}
	/* request/response at the small and large ends */
	uint32_t rr_sizes[2] = { 64, 4096 };
	for (int s = 0; s < 2; s++) {
		uint32_t sz = rr_sizes[s];
		double sock_rtt = measure(socket_rr_side, sz, 8000);
		add("limit: socketpair rr", sz, sock_rtt, "ns", "-", sock_rtt, true);
		g_mode_intr = 0;
		ring_reset_all();
		double rr = measure(ring_rr_side, sz, 400);
		add("ring rr polled", sz, rr, "ns", "cacheline rtt", cl_rtt, true);
		g_mode_intr = 1;
		ring_reset_all();
		rr = measure(ring_rr_side, sz, 12000);
		add("ring rr intr", sz, rr, "ns", "eventfd rtt", efd_rtt, true);
	}
	print_table();
	if (json)
		write_json(json);
	return 0;
}
