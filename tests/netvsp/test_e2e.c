/*
 * tests/netvsp/test_e2e.c - the NetVSP against the guest NetVSC driver,
 * as two processes: this test is the host (real partition, VMBus server,
 * NetVSP on a switch whose other port it watches and drives); the guest is
 * e2e_guest (guest core, NetVSC driver, posix port). Run once per NVSP
 * version, and with jumbo frames and vRSS.
 *
 * What crosses: the guest's bring-up through RNDIS, frames of every size
 * 60..MTU+14 through the send path, UDP checksum offload and one LSO send
 * (checked here: checksums verify, segments reassemble), then frames from
 * the host reflected by the guest (the receive path, RSS queues), then
 * UNLOAD. The guest checks its own error counters before exiting 0.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/log.h"
#include "host/loop.h"
#include "host/net/net.h"
#include "host/net/offload.h"
#include "host/partition_host.h"
#include "host/vmbus_server.h"
#include "host/vsp/netvsp.h"
#include "hv/hvsim_abi.h"
#include "hv/nvsp.h"

#define ET_TEST 0x88B5u
#define ECHOES 64u

static void log_sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	if (getenv("NETVSP_VERBOSE") || level <= HVS_LOG_WARN)
		fprintf(stderr, "%s\n", line);
}

static uint64_t scale(void)
{
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");
	return s != NULL && atoi(s) > 0 ? (uint64_t)atoi(s) : 1;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

struct run {
	/* what the guest must do */
	uint32_t want_nvsp, mtu, queues;
	/* host side */
	struct hvs_loop *loop;
	struct hvs_vmbus *srv;
	struct hvs_netvsp *nic;
	struct hvs_net_ep *peer;
	struct hvs_partition *part;
	bool ended;
	pid_t pid;
	bool exited;
	int status;
	/* what the peer saw */
	bool helo, done, stat;
	uint8_t gmac[6];
	uint32_t g_nvsp, g_mtu, g_queues, g_offloads, g_sent;
	unsigned frames, sizes, bad_sizes, udp_ok, udp_bad, tcp_segs, tcp_bad;
	uint32_t tcp_bytes;
	uint8_t tcp_data[20000];
	unsigned echoes_back, echo_bad;
	uint32_t stat_q[16];
};

static void part_ended(void *arg, struct hvs_partition *p, int kind)
{
	struct run *r = arg;
	(void)p;
	(void)kind;
	r->ended = true;
}

static int peer_rx(void *arg, const struct hvs_net_frame *f)
{
	struct run *r = arg;
	const uint8_t *d = f->nf_data;
	uint32_t len = f->nf_len;

	if (len < 14)
		return 0;
	r->frames++;
	uint16_t et = be16(d + 12);
	if (et == ET_TEST && len >= 18) {
		const uint8_t *tag = d + 14;
		if (!memcmp(tag, "HELO", 4) && len >= 34) {
			r->helo = true;
			memcpy(r->gmac, d + 6, 6);
			r->g_nvsp = le32(d + 18);
			r->g_mtu = le32(d + 22);
			r->g_queues = le32(d + 26);
			r->g_offloads = le32(d + 30);
		} else if (!memcmp(tag, "SIZE", 4)) {
			r->sizes++;
			for (uint32_t i = 18; i < len; i++)
				if (d[i] != (uint8_t)(i * 7 + len)) {
					r->bad_sizes++;
					break;
				}
		} else if (!memcmp(tag, "DONE", 4)) {
			r->done = true;
			r->g_sent = le32(d + 18);
		} else if (!memcmp(tag, "ECHO", 4)) {
			r->echoes_back++;
			if (memcmp(d, r->gmac, 6) == 0 || len != 60 + (le32(d + 18) % 1400))
				r->echo_bad++;
		} else if (!memcmp(tag, "STAT", 4)) {
			r->stat = true;
			for (uint32_t q = 0; q < 16 && 22 + 4 * q + 4 <= len; q++)
				r->stat_q[q] = le32(d + 22 + 4 * q);
		}
		return 0;
	}
	if (et != 0x0800 || len < 34)
		return 0;
	unsigned ok = hvs_csum_verify(d, len);
	if (d[23] == 17) {
		if (len >= 46 && !memcmp(d + 42, "ECHO", 4)) {
			r->echoes_back++;
			if (!(ok & HVS_CSUM_UDP))
				r->echo_bad++;
		} else if ((ok & (HVS_CSUM_UDP | HVS_CSUM_IPHDR)) ==
			   (HVS_CSUM_UDP | HVS_CSUM_IPHDR)) {
			r->udp_ok++;
		} else {
			r->udp_bad++;
		}
	} else if (d[23] == 6) {
		r->tcp_segs++;
		uint32_t hl = 34 + 20, seq = (uint32_t)d[38] << 24 |
					       (uint32_t)d[39] << 16 |
					       (uint32_t)d[40] << 8 | d[41];
		if ((ok & (HVS_CSUM_TCP | HVS_CSUM_IPHDR)) !=
			    (HVS_CSUM_TCP | HVS_CSUM_IPHDR) ||
		    len > r->g_mtu + 14 || seq < 1 ||
		    seq - 1 + (len - hl) > sizeof(r->tcp_data)) {
			r->tcp_bad++;
			return 0;
		}
		memcpy(r->tcp_data + seq - 1, d + hl, len - hl);
		r->tcp_bytes += len - hl;
	}
	return 0;
}

static const struct hvs_net_nic_ops peer_ops = { .no_rx = peer_rx };

/* An ECHO frame to the guest: EtherType 0x88B5, or IPv4/UDP so RSS
 * spreads it (source port i). */
static void send_echo(struct run *r, uint32_t i)
{
	static uint8_t f[1600];
	static const uint8_t src[6] = { 0x02, 0x99, 0, 0, 0, 7 };
	uint32_t len = 60 + i % 1400;
	memset(f, 0, len);
	memcpy(f, r->gmac, 6);
	memcpy(f + 6, src, 6);
	if (i % 2 == 0) {
		f[12] = ET_TEST >> 8;
		f[13] = ET_TEST & 0xff;
		memcpy(f + 14, "ECHO", 4);
		/* the echo has the same length: 60 + le32(d + 18) */
		uint32_t v = len - 60;
		f[18] = (uint8_t)v;
		f[19] = (uint8_t)(v >> 8);
		f[20] = f[21] = 0;
	} else {
		len = 60 + 8 + i;
		f[12] = 0x08;
		f[14] = 0x45;
		f[16] = (uint8_t)((len - 14) >> 8);
		f[17] = (uint8_t)(len - 14);
		f[22] = 64;
		f[23] = 17;
		/* sources vary: RSS hashes IPv4 2-tuples for UDP */
		f[26] = 10; f[29] = (uint8_t)(20 + i); f[30] = 10; f[33] = 15;
		f[34] = (uint8_t)((1000 + i) >> 8);
		f[35] = (uint8_t)(1000 + i);
		f[37] = 7;
		f[38] = (uint8_t)((len - 34) >> 8);
		f[39] = (uint8_t)(len - 34);
		memcpy(f + 42, "ECHO", 4);
		assert_int_equal(hvs_csum_offload(f, len, HVS_CSUM_IPV4 |
						  HVS_CSUM_IPHDR | HVS_CSUM_UDP,
						  34), 0);
	}
	struct hvs_net_frame fr = { .nf_data = f, .nf_len = len };
	assert_int_equal(hvs_net_send(r->peer, &fr), 0);
}

static void quit(struct run *r)
{
	uint8_t f[60];
	memset(f, 0, sizeof(f));
	memcpy(f, r->gmac, 6);
	f[6] = 0x02;
	f[12] = ET_TEST >> 8;
	f[13] = ET_TEST & 0xff;
	memcpy(f + 14, "QUIT", 4);
	struct hvs_net_frame fr = { .nf_data = f, .nf_len = 60 };
	assert_int_equal(hvs_net_send(r->peer, &fr), 0);
}

static void run_one(uint32_t nvsp, uint32_t mtu, uint32_t queues)
{
	static unsigned n;
	struct run *r = calloc(1, sizeof(*r));
	char name[32], spec[128], err[256];
	struct hvs_net_spec ns;
	int sv[2];

	assert_non_null(r);
	r->want_nvsp = nvsp;
	r->mtu = mtu;
	r->queues = queues;
	snprintf(name, sizeof(name), "e2e%u", ++n);
	r->loop = hvs_loop_create();
	struct hvs_vmbus_config sc = { .vm_name = name };
	r->srv = hvs_vmbus_create(&sc);
	assert_non_null(r->srv);
	snprintf(spec, sizeof(spec), "switch=%s,mtu=%u,queues=%u", name,
		 mtu > 1500 ? mtu : 1500, queues);
	assert_int_equal(hvs_net_parse(spec, &ns, err, sizeof(err)), 0);
	assert_true(hvs_netvsp_add(r->srv, r->loop, &ns, 0, &r->nic, err,
				   sizeof(err)) > 0);
	snprintf(spec, sizeof(spec), "switch=%s", name);
	assert_int_equal(hvs_net_parse(spec, &ns, err, sizeof(err)), 0);
	assert_int_equal(hvs_net_open(r->loop, &ns, "peer", &peer_ops, r,
				      &r->peer, err, sizeof(err)), 0);

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv),
			 0);
	struct hvs_partition_config pc = {
		.name = name, .vcpus = queues > 1 ? queues : 2,
		.ram_bytes = 64u << 20, .ops = hvs_vmbus_partition_ops(),
		.ops_arg = r->srv, .sock_fd = sv[0], .host_ended = part_ended,
		.host_arg = r, .hello_timeout_ns = 20000000000ull * scale(),
	};
	assert_int_equal(hvs_partition_create(r->loop, &pc, &r->part), 0);
	hvs_vmbus_attach(r->srv, r->part);

	const char *guest = getenv("NETVSP_E2E_GUEST");
	assert_non_null(guest);
	char a_nvsp[16], a_mtu[16], a_q[16];
	snprintf(a_nvsp, sizeof(a_nvsp), "%x", nvsp);
	snprintf(a_mtu, sizeof(a_mtu), "%u", mtu);
	snprintf(a_q, sizeof(a_q), "%u", queues);
	fflush(NULL);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		setenv(HVSIM_ENV_FD, "3", 1);
		execl(guest, guest, "--nvsp", a_nvsp, "--mtu", a_mtu,
		      "--queues", a_q, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);

	uint64_t deadline = hvs_now_ns() + 60000000000ull * scale();
	bool echoing = false, quitting = false;
	uint32_t echo_sent = 0;
	while (hvs_now_ns() < deadline && !(r->exited && r->ended)) {
		hvs_loop_run_once(r->loop, 5);
		if (!r->exited && waitpid(r->pid, &r->status, WNOHANG) == r->pid)
			r->exited = true;
		if (r->done && !echoing && r->frames >= r->g_sent) {
			echoing = true;
			for (uint32_t i = 0; i < ECHOES; i++)
				send_echo(r, i);
			echo_sent = ECHOES;
		}
		if (echoing && !quitting && r->echoes_back >= echo_sent) {
			quitting = true;
			quit(r);
		}
	}
	if (!r->exited) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, &r->status, 0);
		fail_msg("guest did not finish (helo %d done %d frames %u/%u "
			 "echoes %u)", r->helo, r->done, r->frames, r->g_sent,
			 r->echoes_back);
	}
	assert_true(WIFEXITED(r->status));
	assert_int_equal(WEXITSTATUS(r->status), 0);
	assert_true(r->helo);
	assert_int_equal(r->g_nvsp, nvsp);
	assert_int_equal(r->g_mtu, mtu);
	uint8_t mac[6];
	hvs_netvsp_get_mac(r->nic, mac);
	assert_memory_equal(r->gmac, mac, 6);
	assert_true(r->done);
	assert_int_equal(r->bad_sizes, 0);
	assert_true(r->sizes >= 140);
	assert_int_equal(r->udp_bad, 0);
	assert_int_equal(r->tcp_bad, 0);
	if (r->g_offloads & 0x0002u) /* NETVSC_OFFLOAD_UDP4_CSUM */
		assert_true(r->udp_ok >= 4);
	if (r->g_offloads & 0x0020u) { /* NETVSC_OFFLOAD_LSO4 */
		assert_int_equal(r->tcp_bytes, sizeof(r->tcp_data));
		for (uint32_t i = 0; i < sizeof(r->tcp_data); i++)
			if (r->tcp_data[i] != (uint8_t)(i * 5))
				fail_msg("LSO payload differs at %u", i);
		assert_true(r->tcp_segs >= sizeof(r->tcp_data) / (mtu - 40));
	}
	assert_int_equal(r->echoes_back, ECHOES);
	assert_int_equal(r->echo_bad, 0);
	assert_true(r->stat);
	if (queues > 1 && nvsp >= NVSP_PROTOCOL_VERSION_5) {
		assert_int_equal(r->g_queues, queues);
		unsigned used = 0;
		for (uint32_t q = 0; q < queues; q++)
			used += r->stat_q[q] > 0;
		assert_true(used >= 2);
	}
	struct hvs_netvsp_stats st;
	hvs_netvsp_get_stats(r->nic, &st);
	assert_int_equal(st.ns_guest_errors, 0);
	assert_int_equal(st.ns_bad_completions, 0);
	assert_int_equal(st.ns_rsvd_nonzero, 0);

	hvs_partition_destroy(r->part);
	hvs_net_close(r->peer);
	hvs_vmbus_destroy(r->srv);
	hvs_loop_destroy(r->loop);
	free(r);
}

static void test_versions(void **state)
{
	(void)state;
	static const uint32_t v[] = {
		NVSP_PROTOCOL_VERSION_61, NVSP_PROTOCOL_VERSION_6,
		NVSP_PROTOCOL_VERSION_5, NVSP_PROTOCOL_VERSION_4,
		NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_1,
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		run_one(v[i], 1500, 1);
}

static void test_jumbo(void **state)
{
	(void)state;
	run_one(NVSP_PROTOCOL_VERSION_61, 9000, 1);
}

static void test_vrss(void **state)
{
	(void)state;
	run_one(NVSP_PROTOCOL_VERSION_61, 1500, 4);
}

static int setup(void **state)
{
	(void)state;
	hvs_log_set_sink(log_sink, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_versions, setup),
		cmocka_unit_test_setup(test_jumbo, setup),
		cmocka_unit_test_setup(test_vrss, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
