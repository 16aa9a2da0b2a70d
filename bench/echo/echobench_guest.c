/*
 * bench/echo/echobench_guest.c - the guest half of the echo benchmark: the
 * guest core and the echo driver on the posix port, against hvsim's echo
 * VSP. Measures, on the first echo device:
 *
 *   rr      request/response: echo_roundtrip() of S payload bytes, one at a
 *           time (median and mean ns per round trip);
 *   stream  echo_stream_send() as long as the ring takes it while draining
 *           the echoes (messages/s and payload bytes/s, one direction's
 *           payload counted once).
 *
 * --polled runs the port without interrupt threads (the core polls: the
 * waits spin on vmbus_poll); otherwise interrupts arrive through the
 * port's per-vCPU doorbell threads. Every echo is checked by the driver
 * (frame magic, length, sequence); a failure is an error, not a figure.
 *
 * Output: one line "RESULT {json}" with every figure.
 * usage: echobench_guest [--polled] [--sizes 64,4096] [--seconds S]
 *                        [--ring BYTES]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmbus/echo.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define NS_PER_S 1000000000ull
#define MAX_SIZES 8
#define MAX_SAMPLES 1000000u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t *samples;

/* Round trips for about `seconds`: median and mean ns. */
static int bench_rr(struct echo_dev *ed, uint32_t size, double seconds,
		    double *median, double *mean, uint32_t *count)
{
	uint8_t *in = malloc(size + 1), *out = malloc(size + 1);
	uint64_t t_end, sum = 0;
	uint32_t n = 0;
	int r = 0;

	if (!in || !out)
		return -ENOMEM;
	for (uint32_t k = 0; k < size; k++)
		in[k] = (uint8_t)(k * 13u + 1u);
	/* warm-up */
	for (int i = 0; i < 100 && r == 0; i++) {
		uint32_t len = size;

		r = echo_roundtrip(ed, in, size, out, &len, 5 * NS_PER_S);
	}
	t_end = now_ns() + (uint64_t)(seconds * 1e9);
	while (r == 0 && n < MAX_SAMPLES && (n < 200 || now_ns() < t_end)) {
		uint32_t len = size;
		uint64_t t0 = now_ns();

		r = echo_roundtrip(ed, in, size, out, &len, 5 * NS_PER_S);
		samples[n] = now_ns() - t0;
		sum += samples[n++];
		if (r == 0 && (len != size || memcmp(in, out, size) != 0))
			r = -EPROTO;
	}
	free(in);
	free(out);
	if (r != 0)
		return r;
	qsort(samples, n, sizeof(samples[0]), cmp_u64);
	*median = (double)samples[n / 2];
	*mean = (double)sum / n;
	*count = n;
	return 0;
}

/* Stream for about `seconds`: messages/s and payload bytes/s. */
static int bench_stream(struct echo_dev *ed, uint32_t size, double seconds,
			double *msgs_s, double *bytes_s, uint64_t *count)
{
	uint8_t *in = malloc(size + 1), *out = malloc(size + 1);
	uint64_t sent = 0, recvd = 0, t0, t_stop, dt;
	bool stopping = false;
	int r = 0;

	if (!in || !out)
		return -ENOMEM;
	memset(in, 0x5A, size);
	t0 = now_ns();
	t_stop = t0 + (uint64_t)(seconds * 1e9);
	while (r == 0 && (!stopping || recvd < sent)) {
		bool progress = false;

		if (!stopping && now_ns() >= t_stop)
			stopping = true;
		while (!stopping) {
			r = echo_stream_send(ed, in, size);
			if (r == -VMBUS_EAGAIN) {
				r = 0;
				break;
			}
			if (r != 0)
				break;
			sent++;
			progress = true;
			if ((sent & 63) == 0)
				break;	/* drain now and then */
		}
		while (r == 0) {
			uint32_t len = size;

			r = echo_stream_recv(ed, out, &len);
			if (r == -VMBUS_EAGAIN) {
				r = 0;
				break;
			}
			if (r == 0 && len != size)
				r = -EPROTO;
			if (r == 0) {
				recvd++;
				progress = true;
			}
		}
		if (stopping && recvd == sent)
			break;	/* drained */
		if (r == 0 && !progress)
			/* echoes outstanding: wait for them; else for room */
			r = echo_stream_wait(ed, !stopping && sent == recvd,
					     5 * NS_PER_S);
		if (r == -VMBUS_ETIMEDOUT && !stopping)
			r = 0;	/* tx wait may time out while rx is idle */
	}
	dt = now_ns() - t0;
	free(in);
	free(out);
	if (r != 0)
		return r;
	*count = recvd;
	*msgs_s = (double)recvd * 1e9 / (double)dt;
	*bytes_s = (double)recvd * size * 1e9 / (double)dt;
	return 0;
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px;
	struct vmbus *vb;
	struct echo_dev *ed;
	struct echo_config ec = { 0, 0 };
	uint32_t sizes[MAX_SIZES] = { 64, 4096 }, nsizes = 2;
	double seconds = 0.3;
	bool polled = false, first = true;
	const char *fail_what = "";
	uint32_t fail_size = 0;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--polled")) {
			polled = true;
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--ring") && i + 1 < argc) {
			ec.ec_tx_ring_bytes = ec.ec_rx_ring_bytes =
			    (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			char *p = argv[++i];

			nsizes = 0;
			while (*p && nsizes < MAX_SIZES) {
				sizes[nsizes++] = (uint32_t)strtoul(p, &p, 0);
				if (*p == ',')
					p++;
			}
		} else {
			fprintf(stderr, "usage: echobench_guest [--polled] "
				"[--sizes 64,4096] [--seconds S] [--ring BYTES]\n");
			return 2;
		}
	}
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	vmbus_posix_options_init(&po);
	po.po_polled = polled;
	po.po_log_prefix = "echobench";
	if (!samples || vmbus_posix_create(&po, &plat, &px) != 0)
		return 1;
	r = vmbus_create(&plat, NULL, &vb);
	if (r == 0)
		r = echo_register(vb, &ec);
	if (r == 0)
		r = vmbus_connect(vb);
	if (r != 0 || echo_count(vb) == 0) {
		fprintf(stderr, "echobench: connect failed (%d) or no echo device\n",
			r);
		return 1;
	}
	ed = echo_get(vb, 0);
	printf("RESULT {\"mode\": \"%s\", \"max_payload\": %u, \"figures\": [",
	       polled ? "polled" : "interrupt", echo_max_payload(ed));
	for (uint32_t i = 0; i < nsizes && r == 0; i++) {
		double med = 0, mean = 0, ms = 0, bs = 0;
		uint32_t n = 0;
		uint64_t sn = 0;

		if (sizes[i] > echo_max_payload(ed))
			continue;
		r = bench_rr(ed, sizes[i], seconds, &med, &mean, &n);
		if (r != 0) {
			fail_what = "rr";
			fail_size = sizes[i];
			break;
		}
		r = bench_stream(ed, sizes[i], seconds, &ms, &bs, &sn);
		if (r != 0) {
			fail_what = "stream";
			fail_size = sizes[i];
			break;
		}
		printf("%s{\"size\": %u, \"rr_median_ns\": %.0f, "
		       "\"rr_mean_ns\": %.0f, \"rr_count\": %u, "
		       "\"stream_msgs_s\": %.0f, \"stream_bytes_s\": %.0f, "
		       "\"stream_count\": %llu}", first ? "" : ", ", sizes[i],
		       med, mean, n, ms, bs, (unsigned long long)sn);
		first = false;
	}
	printf("], \"error\": %d, \"failed\": \"%s %u\"", r, fail_what,
	       fail_size);
	{
		struct vmbus_chan_stats cs;
		struct echo_stats es;

		/* for a failed run: where the packets are */
		vmbus_chan_get_stats(echo_channel(ed), &cs);
		echo_get_stats(ed, &es);
		printf(", \"chan\": {\"tx_packets\": %llu, \"tx_full\": %llu, "
		       "\"rx_packets\": %llu, \"signals\": %llu, "
		       "\"interrupts\": %llu, \"echo_sent\": %llu, "
		       "\"echo_received\": %llu}",
		       (unsigned long long)cs.cs_tx_packets,
		       (unsigned long long)cs.cs_tx_full,
		       (unsigned long long)cs.cs_rx_packets,
		       (unsigned long long)cs.cs_signals,
		       (unsigned long long)cs.cs_interrupts,
		       (unsigned long long)es.es_sent,
		       (unsigned long long)es.es_received);
	}
	printf("}\n");
	fflush(stdout);
	{
		struct echo_stats es;

		echo_get_stats(ed, &es);
		if (es.es_mismatches)
			r = r ? r : -EPROTO;
	}
	vmbus_unload(vb);
	vmbus_destroy(vb);
	echo_unregister(vb);
	vmbus_posix_destroy(px);
	free(samples);
	return r ? 1 : 0;
}
