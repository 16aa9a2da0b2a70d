/*
 * bench/net/netbench_guest.c - the guest half of the network benchmark:
 * the guest core, the posix port and the NetVSC driver against the real
 * NetVSP with its null back end (a sink; with gen=LEN also a frame
 * source), run by benchhost (or hvsim --net).
 *
 *   netbench_guest [--seconds S] [--mtu N] [--queues N] JOB...
 *   JOB = tx:LEN:Q   guest->host: Q threads, thread i sending LEN-byte
 *                    frames on queue i (Q <= the NIC's queues), each as
 *                    fast as the driver takes them (netvsc_send without a
 *                    done callback: copied into the send buffer; waiting
 *                    in netvsc_wait_tx when it is full)
 *         rx:LEN     host->guest: count the frames the host's generator
 *                    sends (the NIC must be null,gen=LEN), checking their
 *                    length and per-queue sequence numbers
 *
 * The first 10% of S is warm-up; rates are counted over the rest. Before
 * it exits the guest waits until the host completed every frame it sent,
 * so the host's count (benchhost's HOST line) must equal "sent" exactly:
 * a figure cannot look good by losing frames.
 *
 * Output: one line RESULT {"queues": N, "jobs": [{"job": "tx", "len": L,
 * "threads": Q, "frames_s": ..., "bytes_s": ...}, ...], "sent": N, ...}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmbus/errno.h"
#include "vmbus/netvsc.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define MAX_JOBS 16
#define MAX_THREADS 16
#define NS 1000000000ull

struct job {
	bool tx;
	uint32_t len;
	uint32_t threads;
};

static struct netvsc_dev *nic;
static uint8_t mymac[6];
static _Atomic bool stop;
static atomic_uint_fast64_t tx_total;		/* frames accepted, all jobs */
static atomic_uint_fast64_t rx_frames, rx_bytes, rx_bad;
static uint64_t rx_next_seq[NETVSC_QUEUES_MAX];
static uint32_t rx_expect_len;
static int first_error;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS), (long)(ns % NS) };

	nanosleep(&ts, NULL);
}

static int nic_attach(void *arg, struct netvsc_dev *nd)
{
	(void)arg;
	if (nic == NULL)
		nic = nd;
	return 0;
}

/* Interrupt context of queue q: one thread per queue at a time. */
static void on_rx(void *arg, struct netvsc_dev *nd, uint32_t q,
		  const void *frame, uint32_t len, const struct netvsc_rx_info *ri)
{
	const uint8_t *f = frame;
	uint64_t seq;

	(void)arg;
	(void)nd;
	(void)ri;
	if (len < 22 || f[12] != 0x88 || f[13] != 0xB5)
		return;		/* not the generator's */
	memcpy(&seq, f + 14, 8);
	if (len != rx_expect_len || q >= NETVSC_QUEUES_MAX ||
	    seq < rx_next_seq[q]) {
		if (atomic_fetch_add(&rx_bad, 1) < 5)
			fprintf(stderr, "netbench: rx q %u len %u seq %" PRIu64
			    " expected >= %" PRIu64 "\n", q, len, seq,
			    q < NETVSC_QUEUES_MAX ? rx_next_seq[q] : 0);
	}
	else
		rx_next_seq[q] = seq + 1;
	atomic_fetch_add_explicit(&rx_frames, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&rx_bytes, len, memory_order_relaxed);
}

static const struct netvsc_callbacks cbs = { .rx = on_rx };

struct sender {
	pthread_t thr;
	uint32_t q, len;
	atomic_uint_fast64_t frames;
	int error;
};

static void *send_thread(void *arg)
{
	struct sender *s = arg;
	uint8_t *f = calloc(1, s->len);
	struct netvsc_frag fr = { f, s->len };

	if (f == NULL) {
		s->error = -ENOMEM;
		return NULL;
	}
	memset(f, 0xff, 6);			/* broadcast: the sink takes all */
	memcpy(f + 6, mymac, 6);
	f[12] = 0x88;
	f[13] = 0xB5;
	for (uint32_t i = 14; i < s->len; i++)
		f[i] = (uint8_t)i;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int r = netvsc_send(nic, s->q, &fr, 1, NULL, NULL, NULL);

		if (r == 0) {
			atomic_fetch_add_explicit(&s->frames, 1,
			    memory_order_relaxed);
			continue;
		}
		if (r != -VMBUS_EAGAIN) {
			s->error = r;
			break;
		}
		r = netvsc_wait_tx(nic, s->q, NS);
		if (r != 0 && r != -VMBUS_ETIMEDOUT) {
			s->error = r;
			break;
		}
	}
	atomic_fetch_add(&tx_total, atomic_load(&s->frames));
	free(f);
	return NULL;
}

static int run_tx(const struct job *j, double seconds, uint32_t queues,
		  double *rate)
{
	struct sender *s = calloc(j->threads, sizeof(*s));
	uint64_t c0 = 0, c1 = 0, t0, t1;
	int r = 0;

	if (s == NULL)
		return -ENOMEM;
	atomic_store(&stop, false);
	for (uint32_t i = 0; i < j->threads; i++) {
		s[i].q = i % queues;
		s[i].len = j->len;
		pthread_create(&s[i].thr, NULL, send_thread, &s[i]);
	}
	sleep_ns((uint64_t)(seconds * 0.1e9));
	t0 = now_ns();
	for (uint32_t i = 0; i < j->threads; i++)
		c0 += atomic_load(&s[i].frames);
	sleep_ns((uint64_t)(seconds * 0.9e9));
	for (uint32_t i = 0; i < j->threads; i++)
		c1 += atomic_load(&s[i].frames);
	t1 = now_ns();
	atomic_store(&stop, true);
	for (uint32_t i = 0; i < j->threads; i++) {
		pthread_join(s[i].thr, NULL);
		if (s[i].error != 0 && r == 0)
			r = s[i].error;
	}
	free(s);
	*rate = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
	return r;
}

static int run_rx(const struct job *j, double seconds, double *rate)
{
	uint64_t c0, c1, t0, t1, deadline = now_ns() + 10 * NS;

	if (j->len != rx_expect_len) {
		fprintf(stderr, "netbench: one rx job per run (the generator's "
		    "frame length is fixed)\n");
		return -EINVAL;
	}
	/* the generator starts once the packet filter is set */
	while (atomic_load(&rx_frames) == 0 && now_ns() < deadline)
		sleep_ns(1000000);
	if (atomic_load(&rx_frames) == 0) {
		fprintf(stderr, "netbench: no frame from the host's generator\n");
		return -ETIMEDOUT;
	}
	sleep_ns((uint64_t)(seconds * 0.1e9));
	t0 = now_ns();
	c0 = atomic_load(&rx_frames);
	sleep_ns((uint64_t)(seconds * 0.9e9));
	c1 = atomic_load(&rx_frames);
	t1 = now_ns();
	*rate = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
	if (atomic_load(&rx_bad) != 0) {
		fprintf(stderr, "netbench: %" PRIu64 " frames of the wrong length "
		    "or out of order\n", (uint64_t)atomic_load(&rx_bad));
		return -EPROTO;
	}
	return 0;
}

static int parse_job(const char *a, struct job *j)
{
	unsigned len, q = 1;

	memset(j, 0, sizeof(*j));
	if (sscanf(a, "tx:%u:%u", &len, &q) == 2)
		j->tx = true;
	else if (sscanf(a, "rx:%u", &len) != 1)
		return -1;
	if (len < 60 || len > 9216 || q < 1 || q > MAX_THREADS)
		return -1;
	j->len = len;
	j->threads = q;
	return 0;
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px;
	struct vmbus *vb;
	struct netvsc_config cfg;
	struct netvsc_info ni;
	struct netvsc_stats st;
	struct job jobs[MAX_JOBS];
	unsigned njobs = 0;
	double seconds = 2;
	const char *t0s = getenv("BENCH_T0_NS");
	uint64_t up_ns, dl;
	bool first = true;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--mtu") && i + 1 < argc)
			cfg.nc_mtu = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--queues") && i + 1 < argc)
			cfg.nc_max_queues = (uint32_t)atoi(argv[++i]);
		else if (njobs < MAX_JOBS && parse_job(argv[i], &jobs[njobs]) == 0)
			njobs++;
		else {
			fprintf(stderr, "usage: netbench_guest [--seconds S] "
			    "[--mtu N] [--queues N] tx:LEN:Q | rx:LEN ...\n");
			return 2;
		}
	}
	if (!(seconds > 0) || njobs == 0)
		return 2;
	cfg.nc_attach = nic_attach;
	vmbus_posix_options_init(&po);
	po.po_log_prefix = "netbench";
	if (vmbus_posix_create(&po, &plat, &px) != 0)
		return 1;
	r = vmbus_create(&plat, NULL, &vb);
	if (r == 0)
		r = netvsc_register(vb, &cfg);
	if (r == 0)
		r = vmbus_connect(vb);
	if (r != 0 || nic == NULL) {
		fprintf(stderr, "netbench: start failed (%d) or no NIC\n", r);
		return 1;
	}
	for (unsigned k = 0; k < njobs; k++)
		if (!jobs[k].tx) {
			rx_expect_len = jobs[k].len;	/* before any frame */
			break;
		}
	netvsc_set_callbacks(nic, &cbs, NULL);
	r = netvsc_up(nic);
	if (r == 0)
		r = netvsc_get_info(nic, &ni);
	if (r != 0) {
		fprintf(stderr, "netbench: NIC up failed: %d\n", r);
		return 1;
	}
	up_ns = now_ns();
	memcpy(mymac, ni.ni_cur_mac, 6);
	printf("RESULT {\"nvsp\": \"0x%x\", \"mtu\": %u, \"queues\": %u, "
	    "\"send_section\": %u, \"up_ms\": %.1f, \"jobs\": [",
	    ni.ni_nvsp_version, ni.ni_mtu, ni.ni_queues,
	    ni.ni_send_section_size,
	    t0s ? (double)(up_ns - strtoull(t0s, NULL, 10)) / 1e6 : -1.0);
	for (unsigned k = 0; k < njobs && r == 0; k++) {
		const struct job *j = &jobs[k];
		double rate = 0;

		if (j->len > ni.ni_mtu + 14 ||
		    (j->tx && j->threads > ni.ni_queues)) {
			fprintf(stderr, "netbench: job needs MTU %u / %u queues\n",
			    j->len - 14, j->threads);
			r = -EINVAL;
			break;
		}
		r = j->tx ? run_tx(j, seconds, ni.ni_queues, &rate) :
		    run_rx(j, seconds, &rate);
		if (r != 0)
			break;
		printf("%s{\"job\": \"%s\", \"len\": %u, \"threads\": %u, "
		    "\"frames_s\": %.0f, \"bytes_s\": %.0f}", first ? "" : ", ",
		    j->tx ? "tx" : "rx", j->len, j->tx ? j->threads : 0, rate,
		    rate * j->len);
		fflush(stdout);
		first = false;
	}
	if (r != 0)
		first_error = r;
	/* Every frame sent must be completed by the host before we count. */
	dl = now_ns() + 10 * NS;
	do {
		netvsc_get_stats(nic, &st);
		if (st.ns_total.qs_tx_done >= st.ns_total.qs_tx_frames)
			break;
		sleep_ns(1000000);
	} while (now_ns() < dl);
	printf("], \"error\": %d, \"sent\": %" PRIu64 ", \"tx_frames\": %"
	    PRIu64 ", \"tx_done\": %" PRIu64 ", \"tx_busy\": %" PRIu64
	    ", \"tx_gpa\": %" PRIu64 ", \"rx_frames\": %" PRIu64
	    ", \"rx_drops\": %" PRIu64 ", \"rx_bad\": %" PRIu64 "}\n",
	    first_error, (uint64_t)atomic_load(&tx_total),
	    st.ns_total.qs_tx_frames, st.ns_total.qs_tx_done,
	    st.ns_total.qs_tx_busy, st.ns_total.qs_tx_gpa,
	    st.ns_total.qs_rx_frames, st.ns_total.qs_rx_drops,
	    (uint64_t)atomic_load(&rx_bad));
	fflush(stdout);
	if (st.ns_total.qs_tx_done < st.ns_total.qs_tx_frames) {
		fprintf(stderr, "netbench: the host did not complete every frame\n");
		r = r ? r : -ETIMEDOUT;
	}
	/* the generator keeps sending: stop listening before the unload */
	netvsc_set_callbacks(nic, NULL, NULL);
	vmbus_unload(vb);
	vmbus_destroy(vb);
	netvsc_unregister(vb);
	vmbus_posix_destroy(px);
	return r ? 1 : 0;
}
