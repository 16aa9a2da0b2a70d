/*
 * tests/ring/ring_stress.c - two-process stress test of src/common/ring.c.
 *
 * A parent (writer) and a forked child (reader) share one ring in a
 * MAP_SHARED anonymous mapping, as a guest and the host share guest RAM.
 * Signals travel over two eventfds exactly when the ring says so
 * (need_signal / read_done), so a lost wakeup shows up as a timeout.
 *
 * Every packet: a 16-byte VMBus-style descriptor (type 6, offset8 2, len8,
 * trans_id = sequence number), a 64-bit hash of the payload, then a payload
 * of random length and content derived from (run seed, sequence). The
 * reader checks the sequence (no loss, duplicate or reorder), the
 * descriptor, and the hash and first payload word (no corruption).
 *
 * Usage: ring_stress [packets [ring_kib [seed]]]
 * Waits are bounded by 10 s * VMBUS_TEST_TIME_SCALE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/ring.h"
#include "hv/wire.h"

#define DESC_SIZE	16u
#define MAX_WORDS	1024u		/* payload words after the hash */
#define SPIN_LIMIT	1000		/* max polls before sleeping */
#define SPIN_NOYIELD	16		/* polls before yielding the CPU */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * Polls before sleeping, varied so that both the polled fast path and the
 * signal / sleep path (the one that can lose wakeups) get exercised.
 */
static int spin_budget(uint64_t *s)
{
	static const int budgets[4] = { 0, 10, 200, SPIN_LIMIT };

	return budgets[xorshift(s) % 4];
}

static uint64_t g_seed;
static int g_wait_ms;

/* Payload word count of packet seq: mostly small, sometimes large. */
static uint32_t packet_words(uint64_t seq)
{
	uint64_t h = mix64(g_seed ^ (seq * 0x9e3779b97f4a7c15ull));
	uint32_t k = (uint32_t)(h % 100);

	if (k < 70)
		return (uint32_t)((h >> 8) % 17);
	if (k < 97)
		return (uint32_t)((h >> 8) % 129);
	return (uint32_t)((h >> 8) % (MAX_WORDS + 1));
}

static uint64_t payload_seed(uint64_t seq)
{
	return mix64(g_seed + seq) | 1;
}

static uint64_t hash_words(const uint64_t *w, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ n;

	for (uint32_t i = 0; i < n; i++)
		h = mix64(h ^ w[i]) + i;
	return h;
}

static pid_t g_parent, g_child;	/* g_child == 0 in the child */

/* Is the other process still there? Lets a survivor fail fast. */
static bool peer_alive(void)
{
	if (g_child == 0)
		return getppid() == g_parent;
	siginfo_t si;

	si.si_pid = 0;
	if (waitid(P_PID, (id_t)g_child, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return false;
	return si.si_pid == 0;
}

/* Wait for a signal on fd, at most g_wait_ms, in slices (peer checks). */
static int wait_fd(int fd, const char *who)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int waited = 0, rc;
	uint64_t v;

	for (;;) {
		rc = poll(&p, 1, 100);
		if (rc > 0)
			break;
		if (rc < 0 && errno != EINTR) {
			perror("ring_stress: poll");
			return -1;
		}
		if (!peer_alive()) {
			fprintf(stderr, "ring_stress: %s: peer died\n", who);
			return -1;
		}
		waited += 100;
		if (waited >= g_wait_ms) {
			fprintf(stderr, "ring_stress: %s: no signal within %d ms"
			    " (lost wakeup?)\n", who, g_wait_ms);
			return -1;
		}
	}
	if (read(fd, &v, sizeof(v)) != sizeof(v)) {
		perror("ring_stress: eventfd read");
		return -1;
	}
	return 0;
}

static void kick(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one)) {
		perror("ring_stress: eventfd write");
		exit(3);
	}
}

struct stats {
	uint64_t signals, sleeps, fulls;
};

/* ---- reader (child) ---- */

static int reader(struct vmbus_ring *r, uint64_t npkts, int rx_fd, int tx_fd)
{
	static uint64_t buf[2 + MAX_WORDS + 2];
	uint64_t seq = 0, sseed = g_seed ^ 0x5555;
	struct stats st = { 0 };
	uint8_t desc[DESC_SIZE];

	vmbus_ring_mask(r);
	while (seq < npkts) {
		unsigned batch = 0;
		int spin = 0, budget = spin_budget(&sseed);

		for (;;) {
			int rc = vmbus_ring_peek(r, desc, DESC_SIZE);

			if (rc == -VMBUS_EAGAIN) {
				if (batch > 0 && vmbus_ring_read_done(r)) {
					kick(tx_fd);
					st.signals++;
				}
				batch = 0;
				if (++spin > budget || seq == npkts)
					break;
				/* on a busy machine the writer may need our CPU */
				if (spin > SPIN_NOYIELD)
					sched_yield();
				continue;
			}
			if (rc != 0) {
				fprintf(stderr, "reader: peek %d at seq %" PRIu64
				    "\n", rc, seq);
				return 1;
			}
			spin = 0;
			uint16_t type = hv_get_le16(desc);
			uint16_t off8 = hv_get_le16(desc + 2);
			uint16_t len8 = hv_get_le16(desc + 4);
			uint64_t tid = hv_get_le64(desc + 8);
			uint32_t words = packet_words(seq);

			if (type != 6 || off8 != 2 || len8 < 3 ||
			    len8 > 3 + MAX_WORDS) {
				fprintf(stderr, "reader: bad descriptor type %u "
				    "off8 %u len8 %u at seq %" PRIu64 "\n", type,
				    off8, len8, seq);
				vmbus_ring_set_broken(r);
				return 1;
			}
			rc = vmbus_ring_read(r, buf, (uint32_t)len8 * 8 -
			    DESC_SIZE, DESC_SIZE);
			if (rc != 0) {
				/* descriptor promised more than published */
				fprintf(stderr, "reader: read %d at seq %" PRIu64
				    "\n", rc, seq);
				return 1;
			}
			if (tid != seq) {
				fprintf(stderr, "reader: got seq %" PRIu64
				    " expected %" PRIu64 "\n", tid, seq);
				return 1;
			}
			if (len8 != 3 + words ||
			    hash_words(buf + 1, words) != buf[0] ||
			    (words > 0 && buf[1] !=
			    xorshift(&(uint64_t){ payload_seed(seq) }))) {
				fprintf(stderr, "reader: corrupt packet seq %"
				    PRIu64 " len8 %u words %u\n", seq, len8,
				    words);
				return 1;
			}
			seq++;
			/* release space now and then inside a long drain */
			if (++batch == 32) {
				if (vmbus_ring_read_done(r)) {
					kick(tx_fd);
					st.signals++;
				}
				batch = 0;
			}
		}
		if (seq == npkts)
			break;
		/* spec 3.6: unmask, re-check, sleep only if still empty */
		if (vmbus_ring_unmask(r) != 0) {
			vmbus_ring_mask(r);
			continue;
		}
		st.sleeps++;
		if (wait_fd(rx_fd, "reader") != 0)
			return 2;
		vmbus_ring_mask(r);
	}
	if (vmbus_ring_broken(r) || r->rb_proto_errors != 0) {
		fprintf(stderr, "reader: ring broken\n");
		return 1;
	}
	fprintf(stderr, "reader: %" PRIu64 " packets, %" PRIu64 " bytes, "
	    "%" PRIu64 " writer signals, %" PRIu64 " sleeps\n", seq,
	    r->rb_bytes, st.signals, st.sleeps);
	return 0;
}

/* ---- writer (parent) ---- */

static int writer(struct vmbus_ring *w, uint64_t npkts, int rx_fd, int tx_fd)
{
	static uint64_t pay[1 + MAX_WORDS];
	struct stats st = { 0 };
	uint8_t desc[DESC_SIZE];
	uint64_t seq = 0, bseed = g_seed, next_pause = 1000;
	unsigned batch_left = 0;
	bool sig, pending = false;

	while (seq < npkts) {
		uint32_t words = packet_words(seq);
		uint64_t ps = payload_seed(seq);
		uint16_t len8 = (uint16_t)(3 + words);
		struct vmbus_iov iov[2] = {
			{ desc, DESC_SIZE }, { pay, 8u * (1 + words) } };
		int rc, spin = 0, budget = spin_budget(&bseed);

		for (uint32_t i = 0; i < words; i++)
			pay[1 + i] = xorshift(&ps);
		pay[0] = hash_words(pay + 1, words);
		hv_put_le16(desc, 6);
		hv_put_le16(desc + 2, 2);
		hv_put_le16(desc + 4, len8);
		hv_put_le16(desc + 6, 0);
		hv_put_le64(desc + 8, seq);

		/* batches of 1..8 packets published with one index store */
		if (batch_left == 0)
			batch_left = 1 + (unsigned)(xorshift(&bseed) % 8);
		for (;;) {
			rc = vmbus_ring_write_nopub(w, iov, 2);
			if (rc != -VMBUS_EAGAIN)
				break;
			st.fulls++;
			/* publish what we have before waiting for room */
			if (vmbus_ring_publish(w, &sig) != 0)
				goto broken;
			if (sig) {
				kick(tx_fd);
				st.signals++;
			}
			if (++spin <= budget) {
				if (spin > SPIN_NOYIELD)
					sched_yield();
				continue;
			}
			/* spec 3.5 step 1: pending, fence, re-check, wait */
			vmbus_ring_set_pending_send(w, (uint32_t)len8 * 8 + 8);
			pending = true;
			rc = vmbus_ring_write_nopub(w, iov, 2);
			if (rc != -VMBUS_EAGAIN)
				break;
			st.sleeps++;
			if (wait_fd(rx_fd, "writer") != 0)
				return 2;
			spin = 0;
		}
		if (rc != 0) {
			fprintf(stderr, "writer: write %d at seq %" PRIu64 "\n",
			    rc, seq);
			return 1;
		}
		if (pending) {
			vmbus_ring_set_pending_send(w, 0);
			pending = false;
		}
		seq++;
		if (--batch_left == 0 || seq == npkts) {
			if (vmbus_ring_publish(w, &sig) != 0)
				goto broken;
			if (sig) {
				kick(tx_fd);
				st.signals++;
			}
			/* pause now and then so the reader drains and sleeps */
			if (seq >= next_pause) {
				usleep(100 + (unsigned)(xorshift(&bseed) % 1000));
				next_pause = seq + 4096 + xorshift(&bseed) % 8192;
			}
		}
	}
	fprintf(stderr, "writer: %" PRIu64 " packets, %" PRIu64 " bytes, "
	    "%" PRIu64 " reader signals, %" PRIu64 " full, %" PRIu64
	    " sleeps\n", seq, w->rb_bytes, st.signals, st.fulls, st.sleeps);
	return 0;
broken:
	fprintf(stderr, "writer: ring broken (why %u)\n", w->rb_broken_why);
	return 1;
}

int main(int argc, char **argv)
{
	uint64_t npkts = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000000ull;
	uint32_t kib = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 64;
	const char *scale_env = getenv("VMBUS_TEST_TIME_SCALE");
	int scale = scale_env ? atoi(scale_env) : 1;
	uint32_t ring_bytes = HV_RING_CONTROL_SIZE + kib * 1024u;
	struct vmbus_ring w, r;
	struct timespec t0, t1;
	int to_reader, to_writer, status, rc;
	void *mem;
	pid_t pid;

	g_seed = argc > 3 ? strtoull(argv[3], NULL, 0) :
	    (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	if (scale < 1)
		scale = 1;
	g_wait_ms = 10000 * scale;
	if (kib < 16 || kib % 4 != 0) {
		fprintf(stderr, "ring_stress: ring_kib must be a multiple of 4, "
		    ">= 16\n");
		return 2;
	}
	fprintf(stderr, "ring_stress: %" PRIu64 " packets, %u KiB ring, seed "
	    "0x%" PRIx64 "\n", npkts, kib, g_seed);

	mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	to_reader = eventfd(0, EFD_CLOEXEC);
	to_writer = eventfd(0, EFD_CLOEXEC);
	if (mem == MAP_FAILED || to_reader < 0 || to_writer < 0) {
		perror("ring_stress: setup");
		return 2;
	}
	/* The guest-like owner resets the page; both sides bind to it. */
	if (vmbus_ring_init(&w, mem, ring_bytes) != 0 ||
	    vmbus_ring_init(&r, mem, ring_bytes) != 0) {
		fprintf(stderr, "ring_stress: init failed\n");
		return 2;
	}
	vmbus_ring_reset_shared(&w, true);
	if (vmbus_ring_attach(&r, false) != 0)
		return 2;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	g_parent = getpid();
	pid = fork();
	if (pid < 0) {
		perror("ring_stress: fork");
		return 2;
	}
	if (pid == 0)
		_exit(reader(&r, npkts, to_reader, to_writer));
	g_child = pid;

	rc = writer(&w, npkts, to_writer, to_reader);
	if (rc != 0)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid) {
		perror("ring_stress: waitpid");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc != 0)
		return rc;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ring_stress: reader failed (status 0x%x)\n",
		    status);
		return 1;
	}
	fprintf(stderr, "ring_stress: OK in %.2f s\n",
	    (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
