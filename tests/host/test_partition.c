/*
 * tests/host/test_partition.c - the partition (src/host/partition.c)
 * against a scripted hostile-or-honest guest over a real socketpair.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"
#include "log.h"
#include "tg.h"

#define MiB (1024ull * 1024)
#define SIMP_GPA 0x3000ull
#define SIEFP_GPA 0x4000ull

/* ---- log capture ----------------------------------------------------------- */

static unsigned log_lines, log_guest_lines;
static char log_last[1024];
static char log_vm_filter[80];

static void log_sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	(void)level;
	log_lines++;
	if (strstr(line, "guest error") &&
	    (!log_vm_filter[0] || strstr(line, log_vm_filter)))
		log_guest_lines++;
	snprintf(log_last, sizeof(log_last), "%s", line);
}

static int setup(void **state)
{
	(void)state;
	hvs_log_set_sink(log_sink, NULL);
	log_lines = log_guest_lines = 0;
	log_last[0] = 0;
	log_vm_filter[0] = 0;
	hvs_fault_reset_all();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hvs_log_set_sink(NULL, NULL);
	return 0;
}

static struct tg *new_tg(const char *name, uint32_t vcpus, uint64_t ram,
			 uint32_t msgq)
{
	struct tg *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	tg_init(g, name, vcpus, ram, msgq);
	return g;
}

static void free_tg(struct tg *g)
{
	tg_fini(g);
	free(g);
}

static struct hvs_partition_stats stats(struct tg *g)
{
	struct hvs_partition_stats st;

	hvs_partition_get_stats(g->p, &st);
	return st;
}

/* ---- HELLO / WELCOME ------------------------------------------------------- */

static void test_hello_welcome(void **state)
{
	struct tg *g = new_tg("vmh", 3, 8 * MiB, 0);
	struct stat st;
	int seals;

	(void)state;
	tg_hello(g);
	/* Both memfds sealed against resizing and further sealing. */
	seals = fcntl(g->ram_fd, F_GET_SEALS);
	assert_true(seals >= 0);
	assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	seals = fcntl(g->sig_fd, F_GET_SEALS);
	assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	assert_int_equal(fstat(g->ram_fd, &st), 0);
	assert_int_equal(st.st_size, 8 * MiB);
	assert_int_equal(fstat(g->sig_fd, &st), 0);
	assert_int_equal(st.st_size, 4096);
	/* A hostile guest cannot truncate the sealed memory. */
	assert_int_not_equal(ftruncate(g->ram_fd, 4096), 0);
	assert_int_not_equal(ftruncate(g->ram_fd, 16 * MiB), 0);
	/* Eventfds: non-blocking, the same open file the host holds. */
	assert_true(fcntl(g->sig_efd, F_GETFL) & O_NONBLOCK);
	for (uint32_t i = 0; i < g->vcpus; i++)
		assert_true(fcntl(g->doorbell[i], F_GETFL) & O_NONBLOCK);
	/* Fresh RAM is zero. */
	for (uint64_t off = 0; off < 8 * MiB; off += 4096)
		assert_int_equal(g->ram[off], 0);
	assert_int_equal(stats(g).ps_state, HVS_PART_RUNNING);
	free_tg(g);
}

static void test_hello_name_and_versions(void **state)
{
	uint8_t req[24 + 70], rep[64];
	struct tg *g;

	(void)state;
	/* Unsupported abi_version: -95, then disconnect. */
	g = new_tg("vmv", 1, 2 * MiB, 0);
	tg_hdr(req, HVSIM_ABI_HELLO, 7);
	hv_put_le32(req + 16, 2);
	hv_put_le32(req + 20, 0);
	tg_send_raw(g, req, 24);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -95);
	assert_int_equal(tg_reply_seq(rep), 7);
	assert_true(tg_wait_eof(g));
	assert_int_equal(g->host_ended_kind, HVS_END_GONE);
	assert_int_equal(stats(g).ps_malformed, 1);
	free_tg(g);

	/* name_len beyond 64: -71, disconnect. */
	g = new_tg("vmv", 1, 2 * MiB, 0);
	tg_hdr(req, HVSIM_ABI_HELLO, 8);
	hv_put_le32(req + 16, 1);
	hv_put_le32(req + 20, 65);
	memset(req + 24, 'a', 65);
	tg_send_raw(g, req, 24 + 65);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);
	assert_true(tg_wait_eof(g));
	free_tg(g);

	/* name_len disagreeing with the datagram length: -71. */
	g = new_tg("vmv", 1, 2 * MiB, 0);
	tg_hdr(req, HVSIM_ABI_HELLO, 9);
	hv_put_le32(req + 16, 1);
	hv_put_le32(req + 20, 10);
	memcpy(req + 24, "vmv", 3);
	tg_send_raw(g, req, 27);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);
	assert_true(tg_wait_eof(g));
	free_tg(g);

	/* A valid name is accepted. */
	g = new_tg("vmv", 1, 2 * MiB, 0);
	tg_hdr(req, HVSIM_ABI_HELLO, 10);
	hv_put_le32(req + 16, 1);
	hv_put_le32(req + 20, 3);
	memcpy(req + 24, "vmv", 3);
	tg_send_raw(g, req, 27);
	int fds[8], nfds;
	tg_recv(g, rep, sizeof(rep), fds, 8, &nfds);
	assert_int_equal(tg_reply_result(rep), 0);
	assert_int_equal(nfds, 4);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	free_tg(g);
}

static void test_before_hello_and_second_hello(void **state)
{
	uint8_t req[32];
	struct tg *g;

	(void)state;
	/* A request before HELLO: disconnect, no reply. */
	g = new_tg("vmb", 1, 2 * MiB, 0);
	tg_hdr(req, HVSIM_ABI_RDMSR, 1);
	hv_put_le32(req + 16, 0);
	hv_put_le32(req + 20, HV_X64_MSR_SVERSION);
	tg_send_raw(g, req, 24);
	assert_true(tg_wait_eof(g));
	assert_int_equal(g->host_ended_kind, HVS_END_GONE);
	assert_int_equal(g->host_ended_calls, 1);
	assert_int_equal(g->nev, 1);
	assert_int_equal(g->ev[0].ev_kind, 'E');
	free_tg(g);

	/* A second HELLO: disconnect. */
	g = new_tg("vmb", 1, 2 * MiB, 0);
	tg_hello(g);
	tg_hdr(req, HVSIM_ABI_HELLO, 2);
	hv_put_le32(req + 16, 1);
	hv_put_le32(req + 20, 0);
	tg_send_raw(g, req, 24);
	assert_true(tg_wait_eof(g));
	assert_int_equal(g->host_ended_kind, HVS_END_GONE);
	/* Deliveries after the end fail, the GPA window is closed. */
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, "x", 1), -19);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 1), -19);
	assert_null(hvs_gpa_map(g->p, 0x1000, 8));
	free_tg(g);
}

/* ---- malformed datagrams ------------------------------------------------------ */

static void test_malformed(void **state)
{
	struct tg *g = new_tg("vmm", 2, 4 * MiB, 0);
	static uint8_t big[9000];
	uint8_t req[64], rep[64];
	uint64_t v;

	(void)state;
	tg_hello(g);

	/* Wrong magic: -71, connection stays. */
	tg_hdr(req, HVSIM_ABI_RDMSR, 11);
	hv_put_le32(req, 0x12345678);
	hv_put_le32(req + 16, 0);
	hv_put_le32(req + 20, HV_X64_MSR_SVERSION);
	tg_send_raw(g, req, 24);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);
	assert_int_equal(tg_reply_seq(rep), 11);

	/* Non-zero flags: -71. */
	tg_hdr(req, HVSIM_ABI_RDMSR, 12);
	hv_put_le16(req + 6, 1);
	tg_send_raw(g, req, 24);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);

	/* Unknown type, and a reply type sent as a request: -71. */
	tg_hdr(req, 0x0002, 13);
	tg_send_raw(g, req, 16);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);
	assert_int_equal(tg_reply_type(rep), 0x8002);
	tg_hdr(req, 0x8004, 14);
	tg_send_raw(g, req, 24);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);

	/* Truncated bodies: -71 for each request type. */
	static const uint16_t types[] = { HVSIM_ABI_WRMSR, HVSIM_ABI_RDMSR,
					  HVSIM_ABI_HYPERCALL, HVSIM_ABI_RESET };
	for (unsigned i = 0; i < 4; i++) {
		tg_hdr(req, types[i], 20 + i);
		memset(req + 16, 0, 16);
		tg_send_raw(g, req, 18);
		tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
		assert_int_equal(tg_reply_result(rep), -71);
		assert_int_equal(tg_reply_seq(rep), 20 + i);
	}
	/* Body longer than the request: -71. */
	tg_hdr(req, HVSIM_ABI_RDMSR, 30);
	memset(req + 16, 0, 16);
	tg_send_raw(g, req, 28);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);

	/* Oversized datagram (> 8192, MSG_TRUNC at the host): -71. */
	tg_hdr(big, HVSIM_ABI_RDMSR, 31);
	tg_send_raw(g, big, sizeof(big));
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);
	assert_int_equal(tg_reply_seq(rep), 31);

	/* HYPERCALL input_len lying about the size, or above 4096: -71. */
	tg_hdr(big, HVSIM_ABI_HYPERCALL, 32);
	hv_put_le32(big + 16, 0);
	hv_put_le32(big + 20, 5000);
	hv_put_le64(big + 24, HV_CALL_POST_MESSAGE);
	tg_send_raw(g, big, 32 + 5000);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);
	hv_put_le32(big + 20, 300);
	tg_send_raw(g, big, 32 + 200);
	tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_result(rep), -71);

	/* The partition still serves the guest. */
	assert_int_equal(tg_rdmsr(g, 1, HV_X64_MSR_VP_INDEX, &v), 0);
	assert_int_equal(v, 1);
	assert_true(stats(g).ps_malformed >= 12);
	assert_int_equal(g->host_ended_calls, 0);

	/* Shorter than a header: disconnect. */
	tg_send_raw(g, "HVSM", 4);
	assert_true(tg_wait_eof(g));
	assert_int_equal(g->host_ended_kind, HVS_END_GONE);
	free_tg(g);
}

/* Guest errors are logged once each, rate-limited, naming the VM, and
 * counted in full. */
static void test_guest_errors_rate_limited(void **state)
{
	struct tg *g = new_tg("vm-rl", 1, 2 * MiB, 0);
	uint8_t req[32], rep[64];

	(void)state;
	tg_hello(g);
	snprintf(log_vm_filter, sizeof(log_vm_filter), "[vm-rl]");
	log_guest_lines = 0;
	for (int i = 0; i < 200; i++) {
		tg_hdr(req, 0x0077, (uint64_t)i);
		tg_send_raw(g, req, 16);
		tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
		assert_int_equal(tg_reply_result(rep), -71);
	}
	assert_int_equal(stats(g).ps_malformed, 200);
	assert_true(log_guest_lines >= 1);
	assert_true(log_guest_lines <= HVS_RL_BURST);
	free_tg(g);
}

/* ---- MSRs ------------------------------------------------------------------- */

static void test_msr_table(void **state)
{
	struct tg *g = new_tg("vmr", 2, 4 * MiB, 0);
	uint64_t v;

	(void)state;
	tg_hello(g);
	/* Values at WELCOME. */
	for (uint32_t vp = 0; vp < 2; vp++) {
		assert_int_equal(tg_rdmsr(g, vp, HV_X64_MSR_VP_INDEX, &v), 0);
		assert_int_equal(v, vp);
		for (uint32_t s = 0; s < 16; s++) {
			assert_int_equal(tg_rdmsr(g, vp, HV_X64_MSR_SINT(s), &v), 0);
			assert_int_equal(v, 0x10000);
		}
		static const uint32_t zero[] = {
			HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL,
			HV_X64_MSR_SCONTROL,    HV_X64_MSR_SIEFP,
			HV_X64_MSR_SIMP,        HV_X64_MSR_EOM,
			HV_X64_MSR_CRASH_P0,    HV_X64_MSR_CRASH_P4,
			HV_X64_MSR_CRASH_CTL,
		};
		for (unsigned i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
			assert_int_equal(tg_rdmsr(g, vp, zero[i], &v), 0);
			assert_int_equal(v, 0);
		}
		assert_int_equal(tg_rdmsr(g, vp, HV_X64_MSR_SVERSION, &v), 0);
		assert_int_equal(v, 1);
	}
	/* Writes echo what was stored; SynIC MSRs are per vCPU. */
	assert_int_equal(tg_wrmsr(g, 1, HV_X64_MSR_SIMP, 0x5000 | 1, &v), 0);
	assert_int_equal(v, 0x5001);
	assert_int_equal(tg_rdmsr(g, 0, HV_X64_MSR_SIMP, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(tg_rdmsr(g, 1, HV_X64_MSR_SIMP, &v), 0);
	assert_int_equal(v, 0x5001);
	/* Partition-wide MSRs: vp checked, otherwise ignored. */
	assert_int_equal(tg_wrmsr(g, 1, HV_X64_MSR_GUEST_OS_ID, 0x42, &v), 0);
	assert_int_equal(v, 0x42);
	assert_int_equal(tg_rdmsr(g, 0, HV_X64_MSR_GUEST_OS_ID, &v), 0);
	assert_int_equal(v, 0x42);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_CRASH_P2, 0xdead, &v), 0);
	assert_int_equal(tg_rdmsr(g, 1, HV_X64_MSR_CRASH_P2, &v), 0);
	assert_int_equal(v, 0xdead);
	/* EOM reads 0 and echoes 0. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_EOM, 7, &v), 0);
	assert_int_equal(v, 0);

	/* -22: read-only MSRs, unknown MSRs, bad values. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_VP_INDEX, 1, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SVERSION, 2, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_TIME_REF_COUNT, 0, NULL), -22);
	assert_int_equal(tg_rdmsr(g, 0, 0x12345678, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, 0x400000B0, 1, NULL), -22);
	assert_int_equal(tg_rdmsr(g, 0, HV_X64_MSR_CRASH_CTL + 1, NULL), -22);
	/* SIMP/SIEFP outside RAM, at page 0, or straddling its end. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SIMP, (4 * MiB) | 1, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SIMP, 0 | 1, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SIEFP, ~0xFFFull | 1, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_HYPERCALL, (8 * MiB) | 1, NULL), -22);
	/* A disabled SIMP may hold any address: it is never touched. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SIMP, 8 * MiB, &v), 0);
	assert_int_equal(v, 8 * MiB);
	/* SINT: unmasked vector < 16, reserved bits. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SINT(2), 0x0F, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SINT(2), 0x100 | 0x41, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SINT(2), 1ull << 40, NULL), -22);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SINT(2), 0x10000, &v), 0);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SINT(2), 0x20041, &v), 0);
	assert_int_equal(v, 0x20041);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SCONTROL, 3, NULL), -22);
	/* A failed write changes nothing. */
	assert_int_equal(tg_rdmsr(g, 0, HV_X64_MSR_SINT(2), &v), 0);
	assert_int_equal(v, 0x20041);

	/* -34: bad vp, for every request that names one. */
	assert_int_equal(tg_rdmsr(g, 2, HV_X64_MSR_SCONTROL, NULL), -34);
	assert_int_equal(tg_wrmsr(g, 0xFFFFFFFF, HV_X64_MSR_GUEST_OS_ID, 1, NULL), -34);
	assert_int_equal(tg_hypercall(g, 9, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16, NULL),
			 -34);

	struct hvs_partition_stats st = stats(g);
	assert_int_equal(st.ps_bad_vp, 3);
	assert_int_equal(st.ps_bad_msr, 14);
	free_tg(g);
}

static void test_time_reference(void **state)
{
	struct tg *g = new_tg("vmt", 1, 2 * MiB, 0);
	uint64_t a, b, t0, t1;

	(void)state;
	tg_hello(g);
	t0 = hvs_now_ns();
	assert_int_equal(tg_rdmsr(g, 0, HV_X64_MSR_TIME_REF_COUNT, &a), 0);
	usleep(20000);
	assert_int_equal(tg_rdmsr(g, 0, HV_X64_MSR_TIME_REF_COUNT, &b), 0);
	t1 = hvs_now_ns();
	/* 100 ns units: 20 ms is at least 200000 units, never more than the
	 * time that really passed. */
	assert_true(b - a >= 200000);
	assert_true(b - a <= (t1 - t0) / 100 + 1);
	free_tg(g);
}

static void test_crash_msr(void **state)
{
	struct tg *g = new_tg("vmc", 1, 2 * MiB, 0);
	uint64_t v;
	struct hvs_partition_stats st;

	(void)state;
	tg_hello(g);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_CRASH_P0 + i, 0x100 + i, NULL), 0);
	/* Without the notify bit, nothing happens. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_CRASH_CTL, 1, &v), 0);
	assert_int_equal(g->host_ended_calls, 0);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_CRASH_CTL,
				  HV_CRASH_CTL_CRASH_NOTIFY, &v), 0);
	assert_int_equal(v, HV_CRASH_CTL_CRASH_NOTIFY);
	assert_true(tg_wait_eof(g));
	assert_int_equal(g->host_ended_kind, HVS_END_CRASH);
	st = stats(g);
	assert_int_equal(st.ps_state, HVS_PART_ENDED);
	assert_int_equal(st.ps_crash[0], 0x100);
	assert_int_equal(st.ps_crash[4], 0x104);
	free_tg(g);
}

/* ---- hypercalls -------------------------------------------------------------- */

static void test_hypercall_enablement(void **state)
{
	struct tg *g = new_tg("vmhc", 1, 4 * MiB, 0);
	uint64_t hv;
	uint8_t in[16] = { 5 };

	(void)state;
	tg_hello(g);
	/* Neither set. */
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      in, 16, &hv), 0);
	assert_int_equal(hv & 0xFFFF, HV_STATUS_INVALID_HYPERCALL_CODE);
	/* Guest OS id only. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_GUEST_OS_ID, 1, NULL), 0);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      in, 16, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_CODE);
	/* Hypercall MSR without its enable bit. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_HYPERCALL, 0x1000, NULL), 0);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      in, 16, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(g->nev, 0);
	/* Both: the call reaches the server. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_HYPERCALL, 0x1001, NULL), 0);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      in, 16, &hv), 0);
	assert_int_equal(hv, HV_STATUS_SUCCESS);
	assert_int_equal(g->nev, 1);
	assert_int_equal(g->ev[0].ev_kind, 'S');
	assert_int_equal(g->ev[0].ev_conn, 5);
	/* Guest OS id back to 0 disables hypercalls again. */
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_GUEST_OS_ID, 0, NULL), 0);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      in, 16, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_CODE);
	/* The host wrote nothing into the hypercall page. */
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(g->ram[0x1000 + i], 0);
	free_tg(g);
}

static void test_post_message_validation(void **state)
{
	struct tg *g = new_tg("vmpm", 2, 4 * MiB, 0);
	uint8_t in[256], payload[240];
	uint64_t hv;

	(void)state;
	tg_hello(g);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	for (unsigned i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	g->nev = 0;

	/* Valid: the server sees exactly the payload. */
	assert_int_equal(tg_post(g, 1, 4, 1, payload, 240), HV_STATUS_SUCCESS);
	assert_int_equal(g->nev, 1);
	assert_int_equal(g->ev[0].ev_kind, 'P');
	assert_int_equal(g->ev[0].ev_vp, 1);
	assert_int_equal(g->ev[0].ev_conn, 4);
	assert_int_equal(g->ev[0].ev_type, 1);
	assert_int_equal(g->ev[0].ev_len, 240);
	assert_memory_equal(g->ev[0].ev_payload, payload, 240);
	/* The server's status is passed through. */
	g->post_status = HV_STATUS_INVALID_CONNECTION_ID;
	assert_int_equal(tg_post(g, 0, 99, 1, payload, 8), HV_STATUS_INVALID_CONNECTION_ID);
	g->post_status = HV_STATUS_SUCCESS;
	assert_int_equal(g->nev, 2);

	/* Payload size above 240. */
	assert_int_equal(tg_post(g, 0, 1, 1, payload, 241), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(tg_post(g, 0, 1, 1, payload, 0xFFFFFFFF), HV_STATUS_INVALID_PARAMETER);
	/* Message type 0 and with bit 31. */
	assert_int_equal(tg_post(g, 0, 1, 0, payload, 8), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(tg_post(g, 0, 1, 0x80000001, payload, 8), HV_STATUS_INVALID_PARAMETER);
	/* Connection id bits 31:24. */
	assert_int_equal(tg_post(g, 0, 0x01000001, 1, payload, 8), HV_STATUS_INVALID_PARAMETER);
	/* Reserved word non-zero. */
	memset(in, 0, sizeof(in));
	hv_put_le32(in, 1);
	hv_put_le32(in + 4, 1);
	hv_put_le32(in + 8, 1);
	hv_put_le32(in + 12, 8);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_POST_MESSAGE, in, 256, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_PARAMETER);
	/* Input shorter than header + payload. */
	hv_put_le32(in + 4, 0);
	hv_put_le32(in + 12, 100);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_POST_MESSAGE, in, 64, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_POST_MESSAGE, in, 8, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Just enough input: 16 + payload. */
	hv_put_le32(in + 12, 8);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_POST_MESSAGE, in, 24, &hv), 0);
	assert_int_equal(hv, HV_STATUS_SUCCESS);
	/* As a fast call (16 bytes of registers): not allowed. */
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_POST_MESSAGE | HV_HYPERCALL_FAST,
				      in, 16, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Rep count, variable header, reserved and nested bits. */
	static const uint64_t bad_ctl[] = {
		1ull << 32, 1ull << 17, 1ull << 27, 1ull << 31, 1ull << 44,
		1ull << 48, 1ull << 60,
	};
	for (unsigned i = 0; i < sizeof(bad_ctl) / sizeof(bad_ctl[0]); i++) {
		assert_int_equal(tg_hypercall(g, 0, HV_CALL_POST_MESSAGE | bad_ctl[i],
					      in, 256, &hv), 0);
		assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_INPUT);
	}
	/* Unknown codes. */
	assert_int_equal(tg_hypercall(g, 0, 0x0002, in, 256, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_POST_MESSAGE_DIRECT, in, 256, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_CODE);

	/* Only the two valid posts and the short one reached the server. */
	assert_int_equal(g->nev, 3);
	free_tg(g);
}

static void test_signal_event_hypercall(void **state)
{
	struct tg *g = new_tg("vmse", 1, 4 * MiB, 0);
	uint8_t in[16];
	uint64_t hv;

	(void)state;
	tg_hello(g);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	g->nev = 0;
	/* Fast: RDX = conn | flag << 32. */
	memset(in, 0, sizeof(in));
	hv_put_le64(in, 0x2001 | (3ull << 32));
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      in, 16, &hv), 0);
	assert_int_equal(hv, HV_STATUS_SUCCESS);
	assert_int_equal(g->ev[0].ev_conn, 0x2001);
	assert_int_equal(g->ev[0].ev_flag, 3);
	/* Memory form, 8 bytes. */
	hv_put_le64(in, 40000);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT, in, 8, &hv), 0);
	assert_int_equal(hv, HV_STATUS_SUCCESS);
	assert_int_equal(g->ev[1].ev_conn, 40000);
	/* The server's status comes back. */
	hv_put_le64(in, 0xBAD);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT, in, 8, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_CONNECTION_ID);
	/* Reserved bits. */
	hv_put_le64(in, 1 | (1ull << 48));
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT, in, 8, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_PARAMETER);
	hv_put_le64(in, 0x01000001);
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT, in, 8, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_PARAMETER);
	/* Short memory input. */
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT, in, 4, &hv), 0);
	assert_int_equal(hv, HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* A fast call carries exactly 16 bytes: anything else is malformed. */
	assert_int_equal(tg_hypercall(g, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      in, 8, &hv), -71);
	assert_int_equal(g->nev, 3);
	free_tg(g);
}

/* ---- SynIC message delivery ------------------------------------------------------ */

static uint32_t slot_type(struct tg *g, uint64_t simp, uint32_t sint)
{
	return hv_get_le32(g->ram + simp + sint * 256);
}

static uint8_t slot_flags(struct tg *g, uint64_t simp, uint32_t sint)
{
	return g->ram[simp + sint * 256 + 5];
}

/* The guest's side of the protocol: copy out, clear the type, fence, EOM
 * if pending. Returns the payload's first u32. */
static uint32_t guest_take(struct tg *g, uint64_t simp, uint32_t sint,
			   bool *was_pending)
{
	uint8_t *slot = g->ram + simp + sint * 256;
	uint8_t copy[256];

	memcpy(copy, slot, 256);
	__atomic_store_n((uint32_t *)(void *)slot, 0, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*was_pending = slot[5] & HV_MESSAGE_FLAG_PENDING;
	if (*was_pending)
		assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_EOM, 0, NULL), 0);
	return hv_get_le32(copy + 16);
}

static void test_simp_delivery_pending_eom(void **state)
{
	struct tg *g = new_tg("vmsd", 1, 4 * MiB, 0);
	uint8_t msg[240];
	bool pending;

	(void)state;
	tg_hello(g);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	tg_doorbell(g, 0);

	memset(msg, 0xAB, sizeof(msg));
	hv_put_le32(msg, 100);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, msg, 240), 0);
	/* Written at once: type 1, size, flags 0, sender 0, payload. */
	uint8_t *slot = g->ram + SIMP_GPA + 2 * 256;
	assert_int_equal(slot_type(g, SIMP_GPA, 2), 1);
	assert_int_equal(slot[4], 240);
	assert_int_equal(slot[5], 0);
	assert_int_equal(hv_get_le64(slot + 8), 0);
	assert_memory_equal(slot + 16, msg, 240);
	assert_int_equal(tg_doorbell(g, 0), 1);

	/* Slot busy: queued, pending flag set by CAS, no doorbell. */
	hv_put_le32(msg, 101);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, msg, 16), 0);
	hv_put_le32(msg, 102);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, msg, 16), 0);
	assert_int_equal(slot_flags(g, SIMP_GPA, 2), HV_MESSAGE_FLAG_PENDING);
	assert_int_equal(hv_get_le32(slot + 16), 100);
	assert_int_equal(tg_doorbell(g, 0), 0);
	assert_int_equal(stats(g).ps_msgq_len, 2);

	/* Take 100 (pending: EOM) -> 101 delivered, itself pending (102 waits). */
	assert_int_equal(guest_take(g, SIMP_GPA, 2, &pending), 100);
	assert_true(pending);
	assert_int_equal(slot_type(g, SIMP_GPA, 2), 1);
	assert_int_equal(slot[4], 16);
	assert_int_equal(hv_get_le32(slot + 16), 101);
	/* The rest of the payload is zeroed: no stale bytes of 100. */
	assert_int_equal(slot[16 + 16], 0);
	assert_int_equal(slot_flags(g, SIMP_GPA, 2), HV_MESSAGE_FLAG_PENDING);
	assert_int_equal(tg_doorbell(g, 0), 1);
	assert_int_equal(guest_take(g, SIMP_GPA, 2, &pending), 101);
	assert_true(pending);
	assert_int_equal(hv_get_le32(slot + 16), 102);
	assert_int_equal(slot_flags(g, SIMP_GPA, 2), 0);
	assert_int_equal(guest_take(g, SIMP_GPA, 2, &pending), 102);
	assert_false(pending);
	assert_int_equal(slot_type(g, SIMP_GPA, 2), 0);
	assert_int_equal(stats(g).ps_msgq_len, 0);
	assert_int_equal(stats(g).ps_msgs_delivered, 3);

	/* A guest that empties the slot without EOM: the next enqueue
	 * finds the type 0 and writes the message instead of marking. */
	hv_put_le32(msg, 200);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, msg, 8), 0);
	hv_put_le32(msg, 201);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, msg, 8), 0);
	__atomic_store_n((uint32_t *)(void *)slot, 0, __ATOMIC_RELEASE); /* no EOM */
	hv_put_le32(msg, 202);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, msg, 8), 0);
	assert_int_equal(slot_type(g, SIMP_GPA, 2), 1);
	assert_int_equal(hv_get_le32(slot + 16), 201);
	assert_int_equal(slot_flags(g, SIMP_GPA, 2), HV_MESSAGE_FLAG_PENDING);

	/* Argument checks. */
	assert_int_equal(hvs_partition_post_message(g->p, 1, 2, 1, msg, 8), -34);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 16, 1, msg, 8), -34);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, msg, 241), -22);
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 0, msg, 8), -22);
	free_tg(g);
}

static void test_delivery_waits_for_synic(void **state)
{
	struct tg *g = new_tg("vmdw", 2, 4 * MiB, 0);
	uint8_t msg[16] = { 9 };

	(void)state;
	tg_hello(g);
	/* Nothing enabled on vp 1: the message waits in the host. */
	assert_int_equal(hvs_partition_post_message(g->p, 1, 2, 1, msg, 16), 0);
	assert_int_equal(stats(g).ps_msgq_len, 1);
	assert_int_equal(tg_wrmsr(g, 1, HV_X64_MSR_SIMP, SIMP_GPA | 1, NULL), 0);
	assert_int_equal(slot_type(g, SIMP_GPA, 2), 0);   /* SCONTROL still off */
	assert_int_equal(tg_wrmsr(g, 1, HV_X64_MSR_SINT(2), 0x41, NULL), 0);
	g->nev = 0;
	/* SCONTROL on: delivered during that WRMSR, doorbell rung. */
	assert_int_equal(tg_wrmsr(g, 1, HV_X64_MSR_SCONTROL, 1, NULL), 0);
	assert_int_equal(slot_type(g, SIMP_GPA, 2), 1);
	assert_int_equal(g->ram[SIMP_GPA + 2 * 256 + 16], 9);
	assert_int_equal(tg_doorbell(g, 1), 1);
	assert_int_equal(tg_doorbell(g, 0), 0);
	/* The server heard about the SynIC change. */
	assert_int_equal(g->nev, 1);
	assert_int_equal(g->ev[0].ev_kind, 'C');
	assert_int_equal(g->ev[0].ev_vp, 1);

	/* Masked SINT 3: message written, no doorbell. */
	assert_int_equal(hvs_partition_post_message(g->p, 1, 3, 5, msg, 4), 0);
	assert_int_equal(slot_type(g, SIMP_GPA, 3), 5);
	assert_int_equal(tg_doorbell(g, 1), 0);

	/* Moving the SIMP: the old page is not touched any more. */
	assert_int_equal(tg_wrmsr(g, 1, HV_X64_MSR_SIMP, 0x9000 | 1, NULL), 0);
	memset(g->ram + SIMP_GPA, 0, 4096);
	assert_int_equal(hvs_partition_post_message(g->p, 1, 2, 1, msg, 16), 0);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(g->ram[SIMP_GPA + i], 0);
	assert_int_equal(slot_type(g, 0x9000, 2), 1);
	/* Disabled SIMP: queued again. */
	assert_int_equal(tg_wrmsr(g, 1, HV_X64_MSR_SIMP, 0x9000, NULL), 0);
	memset(g->ram + 0x9000, 0, 4096);
	assert_int_equal(hvs_partition_post_message(g->p, 1, 2, 1, msg, 16), 0);
	assert_int_equal(slot_type(g, 0x9000, 2), 0);
	assert_int_equal(stats(g).ps_msgq_len, 1);
	free_tg(g);
}

/* ---- event flags ------------------------------------------------------------- */

static void test_event_flags(void **state)
{
	struct tg *g = new_tg("vmef", 1, 4 * MiB, 0);
	uint8_t *area;

	(void)state;
	tg_hello(g);
	/* SIEFP disabled: the event is dropped, nothing written. */
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 5), 0);
	assert_int_equal(stats(g).ps_events_dropped, 1);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(g->ram[SIEFP_GPA + i], 0);
	tg_doorbell(g, 0);
	area = g->ram + SIEFP_GPA + 2 * 256;

	/* Flag k = byte k/8, bit k%8; doorbell only on 0 -> 1. */
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 5), 0);
	assert_int_equal(area[0], 1 << 5);
	assert_int_equal(tg_doorbell(g, 0), 1);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 5), 0);
	assert_int_equal(tg_doorbell(g, 0), 0);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 2047), 0);
	assert_int_equal(area[255], 0x80);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 77), 0);
	assert_int_equal(area[9], 1 << 5);
	assert_int_equal(tg_doorbell(g, 0), 2);
	/* Other SINT areas untouched. */
	assert_int_equal(g->ram[SIEFP_GPA + 256], 0);
	assert_int_equal(g->ram[SIEFP_GPA + 3 * 256], 0);
	/* Guest consumes the bit; the next set rings again. */
	area[0] = 0;
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 5), 0);
	assert_int_equal(tg_doorbell(g, 0), 1);
	/* Masked SINT: flag set, no doorbell. SCONTROL off: same. */
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 4, 1), 0);
	assert_int_equal(g->ram[SIEFP_GPA + 4 * 256], 2);
	assert_int_equal(tg_doorbell(g, 0), 0);
	assert_int_equal(tg_wrmsr(g, 0, HV_X64_MSR_SCONTROL, 0, NULL), 0);
	area[0] = 0;
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 5), 0);
	assert_int_equal(area[0], 1 << 5);
	assert_int_equal(tg_doorbell(g, 0), 0);
	/* Ranges. */
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 2048), -34);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 16, 1), -34);
	assert_int_equal(hvs_partition_signal_event(g->p, 1, 2, 1), -34);
	free_tg(g);
}

/* ---- the signal page -------------------------------------------------------- */

static void set_signal(struct tg *g, uint32_t id)
{
	__atomic_fetch_or(&g->sig[id / 64], 1ull << (id % 64), __ATOMIC_RELEASE);
}

static void test_signal_page(void **state)
{
	struct tg *g = new_tg("vmsp", 1, 4 * MiB, 0);
	uint64_t one = 1;

	(void)state;
	tg_hello(g);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	g->nev = 0;

	/* Woken by the eventfd: every set bit, ascending, words zeroed. */
	set_signal(g, 32767);
	set_signal(g, 0x2001);
	set_signal(g, 3);
	set_signal(g, 64);
	assert_int_equal(write(g->sig_efd, &one, 8), 8);
	tg_pump(g);
	assert_int_equal(g->nev, 4);
	assert_int_equal(g->ev[0].ev_conn, 3);
	assert_int_equal(g->ev[1].ev_conn, 64);
	assert_int_equal(g->ev[2].ev_conn, 0x2001);
	assert_int_equal(g->ev[3].ev_conn, 32767);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(g->sig[i], 0);
	assert_int_equal(stats(g).ps_signals, 4);

	/* NOTE: ordering: a signal set without the eventfd write (or before
	 * the host woke) is dispatched before the guest's next request. */
	g->nev = 0;
	set_signal(g, 0x2002);
	uint8_t p[8] = { 7 };
	assert_int_equal(tg_post(g, 0, 1, 1, p, 8), HV_STATUS_SUCCESS);
	assert_int_equal(g->nev, 2);
	assert_int_equal(g->ev[0].ev_kind, 'S');
	assert_int_equal(g->ev[0].ev_conn, 0x2002);
	assert_int_equal(g->ev[1].ev_kind, 'P');
	free_tg(g);
}

/* ---- GPA bounds ----------------------------------------------------------------- */

static void test_gpa_bounds(void **state)
{
	struct tg *g = new_tg("vmg", 1, 4 * MiB, 0);
	uint8_t buf[64];

	(void)state;
	tg_hello(g);
	assert_int_equal(hvs_partition_ram_bytes(g->p), 4 * MiB);
	assert_int_equal(hvs_partition_vcpu_count(g->p), 1);
	assert_string_equal(hvs_partition_name(g->p), "vmg");
	assert_ptr_not_equal(hvs_gpa_map(g->p, 0, 4 * MiB), NULL);
	assert_ptr_not_equal(hvs_gpa_map(g->p, 4 * MiB - 1, 1), NULL);
	assert_null(hvs_gpa_map(g->p, 4 * MiB - 1, 2));
	assert_null(hvs_gpa_map(g->p, 4 * MiB, 1));
	assert_null(hvs_gpa_map(g->p, 0, 4 * MiB + 1));
	assert_null(hvs_gpa_map(g->p, 0x1000, 0));
	assert_null(hvs_gpa_map(g->p, UINT64_MAX, 2));       /* wraps */
	assert_null(hvs_gpa_map(g->p, 0x1000, UINT64_MAX));  /* wraps */
	assert_null(hvs_gpa_map(g->p, UINT64_MAX - 4095, 4096));
	/* The mapping is the guest's RAM. */
	g->ram[0x2345] = 0x5A;
	assert_int_equal(hvs_gpa_read(g->p, 0x2340, buf, 8), 0);
	assert_int_equal(buf[5], 0x5A);
	buf[0] = 0xC3;
	assert_int_equal(hvs_gpa_write(g->p, 4 * MiB - 1, buf, 1), 0);
	assert_int_equal(g->ram[4 * MiB - 1], 0xC3);
	assert_int_equal(hvs_gpa_read(g->p, 4 * MiB - 4, buf, 8), -14);
	assert_int_equal(hvs_gpa_write(g->p, 4 * MiB, buf, 1), -14);
	assert_int_equal(hvs_gpa_read(g->p, 0, buf, 0), 0);
	assert_true(stats(g).ps_gpa_faults >= 9);
	free_tg(g);
}

/* ---- GPA windows (hvs_gpa_map_pfns) --------------------------------------- */

/* Mappings (lines of /proc/self/maps) starting in [lo, hi); the perms of
 * the first and last in first/last (4 chars + NUL). */
static unsigned count_vmas(uintptr_t lo, uintptr_t hi, char first[5],
			   char last[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &a, &b, perms) != 3)
			continue;
		if (a < lo || a >= hi)
			continue;
		if (n == 0 && first)
			memcpy(first, perms, 5);
		if (last)
			memcpy(last, perms, 5);
		n++;
	}
	fclose(f);
	return n;
}

static unsigned count_all_vmas(void)
{
	return count_vmas(0, UINTPTR_MAX, NULL, NULL);
}

static void test_gpa_windows(void **state)
{
	struct tg *g = new_tg("vmw", 1, 4 * MiB, 0);
	const uint64_t ram_pages = 4 * MiB / 4096;
	char first[5], last[5];
	uint8_t *w;

	(void)state;
	tg_hello(g);
	for (uint64_t pg = 0; pg < 64; pg++)
		memset(g->ram + pg * 4096, (int)pg, 4096);

	/* Scattered and out of order, with one run of three: page i of the
	 * window is guest page pfns[i], shared both ways. */
	const uint64_t pfns[6] = { 40, 7, 8, 9, 33, 12 };
	w = hvs_gpa_map_pfns(g->p, pfns, 6);
	assert_non_null(w);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(w[i * 4096], pfns[i]);
		assert_int_equal(w[i * 4096 + 4095], pfns[i]);
	}
	w[4 * 4096 + 10] = 0xAB;
	assert_int_equal(g->ram[33 * 4096 + 10], 0xAB);
	g->ram[9 * 4096 + 99] = 0xCD;
	assert_int_equal(w[3 * 4096 + 99], 0xCD);
	/* guard page, runs coalesced (40 | 7 8 9 | 33 | 12), guard page */
	assert_int_equal(count_vmas((uintptr_t)w - 4096,
				    (uintptr_t)w + 7 * 4096, first, last), 6);
	assert_string_equal(first, "---p");
	assert_string_equal(last, "---p");
	assert_int_equal(stats(g).ps_windows, 1);
	assert_int_equal(stats(g).ps_window_pages, 6);
	hvs_gpa_unmap_pfns(g->p, w, 6);
	assert_int_equal(stats(g).ps_windows, 0);

	/* One run: one mapping between the guards. */
	const uint64_t run[4] = { 20, 21, 22, 23 };
	w = hvs_gpa_map_pfns(g->p, run, 4);
	assert_non_null(w);
	assert_int_equal(count_vmas((uintptr_t)w - 4096,
				    (uintptr_t)w + 5 * 4096, NULL, NULL), 3);
	hvs_gpa_unmap_pfns(g->p, w, 4);

	/* Hostile lists: refused whole, with a clear guest-error line. */
	struct {
		uint64_t pfns[3];
		const char *why;
	} bad[] = {
		{ { 5, 0, 6 }, "PFN 0 (0x0)" },
		{ { 5, ram_pages, 6 }, "PFN outside guest RAM (0x400)" },
		{ { 5, UINT64_MAX, 6 }, "PFN outside guest RAM" },
		{ { 5, 6, 5 }, "PFN listed twice (0x5)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t faults = stats(g).ps_gpa_faults;
		unsigned guest_lines = log_guest_lines;
		assert_null(hvs_gpa_map_pfns(g->p, bad[i].pfns, 3));
		assert_int_equal(stats(g).ps_gpa_faults, faults + 1);
		assert_int_equal(log_guest_lines, guest_lines + 1);
		assert_non_null(strstr(log_last, "GPA window of 3 pages refused"));
		assert_non_null(strstr(log_last, bad[i].why));
	}
	assert_null(hvs_gpa_map_pfns(g->p, pfns, 0));
	uint64_t *many = calloc(ram_pages + 1, sizeof(*many));
	assert_non_null(many);
	for (uint64_t i = 0; i <= ram_pages; i++)
		many[i] = 1 + i % (ram_pages - 1);
	assert_null(hvs_gpa_map_pfns(g->p, many, (uint32_t)ram_pages + 1));
	assert_non_null(strstr(log_last, "more pages than guest RAM"));
	/* Every page but 0 is fine: a window as large as RAM allows. */
	for (uint64_t i = 0; i < ram_pages - 1; i++)
		many[i] = ram_pages - 1 - i;
	w = hvs_gpa_map_pfns(g->p, many, (uint32_t)ram_pages - 1);
	assert_non_null(w);
	assert_int_equal(w[(ram_pages - 1 - 40) * 4096], 40);
	hvs_gpa_unmap_pfns(g->p, w, (uint32_t)ram_pages - 1);
	free(many);
	assert_int_equal(stats(g).ps_windows, 0);

	/* Unmapping something that is not a window: logged, left alone. */
	uint8_t local[16];
	hvs_gpa_unmap_pfns(g->p, local, 1);
	assert_non_null(strstr(log_last, "is not mapped"));
	hvs_gpa_unmap_pfns(g->p, NULL, 1);

	/* No leak over many cycles: the process has as many mappings as
	 * before. */
	unsigned vmas = count_all_vmas();
	uint64_t total = stats(g).ps_windows_total;
	for (int i = 0; i < 1000; i++) {
		w = hvs_gpa_map_pfns(g->p, pfns, 6);
		assert_non_null(w);
		hvs_gpa_unmap_pfns(g->p, w, 6);
	}
	assert_int_equal(count_all_vmas(), vmas);
	assert_int_equal(stats(g).ps_windows_total, total + 1000);

	/* Windows left at the end are unmapped by the partition; none can
	 * be made afterwards. */
	w = hvs_gpa_map_pfns(g->p, pfns, 6);
	assert_non_null(w);
	assert_non_null(hvs_gpa_map_pfns(g->p, run, 4));
	assert_int_equal(stats(g).ps_windows, 2);
	hvs_partition_stop(g->p, HVS_END_POWER_OFF);
	assert_int_equal(stats(g).ps_windows, 0);
	assert_int_equal(count_vmas((uintptr_t)w - 4096,
				    (uintptr_t)w + 7 * 4096, NULL, NULL), 0);
	assert_null(hvs_gpa_map_pfns(g->p, pfns, 6));
	hvs_gpa_unmap_pfns(g->p, w, 6); /* stale: logged, harmless */
	free_tg(g);
}

/* ---- RESET and EOF ---------------------------------------------------------------- */

static void reset_case(uint32_t kind, size_t len, int32_t want, int want_end)
{
	struct tg *g = new_tg("vmrs", 1, 2 * MiB, 0);
	uint8_t req[24], rep[64];

	tg_hello(g);
	memset(req, 0, sizeof(req));
	tg_hdr(req, HVSIM_ABI_RESET, 77);
	hv_put_le32(req + 16, kind);
	tg_send_raw(g, req, len);
	size_t n = tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(n, 24);
	assert_int_equal(tg_reply_type(rep), 0x8006);
	assert_int_equal(tg_reply_seq(rep), 77);
	assert_int_equal(tg_reply_result(rep), want);
	if (want_end >= 0) {
		assert_true(tg_wait_eof(g));
		assert_int_equal(g->host_ended_kind, want_end);
		assert_int_equal(g->host_ended_calls, 1);
		/* ops->ended ran once, last. */
		assert_int_equal(g->ev[g->nev - 1].ev_kind, 'E');
		assert_int_equal(g->ev[g->nev - 1].ev_end_kind, want_end);
	} else {
		tg_pump(g);
		assert_int_equal(g->host_ended_calls, 0);
	}
	free_tg(g);
}

static void test_reset(void **state)
{
	(void)state;
	reset_case(0, 20, 0, HVS_END_POWER_OFF);
	reset_case(1, 20, 0, HVS_END_REBOOT);
	reset_case(0, 24, -71, -1);   /* sizeof(struct): the padding is not sent */
	reset_case(2, 20, -22, -1);
	reset_case(0, 22, -71, -1);
}

static void test_eof(void **state)
{
	struct tg *g = new_tg("vmeof", 1, 2 * MiB, 0);

	(void)state;
	tg_hello(g);
	shutdown(g->sock, SHUT_WR);
	close(g->sock);
	g->sock = socket(AF_UNIX, SOCK_SEQPACKET, 0); /* for tg_fini */
	for (int i = 0; i < 100 && g->host_ended_calls == 0; i++)
		hvs_loop_run_once(g->loop, 10);
	assert_int_equal(g->host_ended_kind, HVS_END_GONE);
	assert_int_equal(stats(g).ps_state, HVS_PART_ENDED);
	free_tg(g);
}

/* Send buf (len may be 0) with fd attached (SCM_RIGHTS). */
static void send_with_fd(struct tg *g, const void *buf, size_t len, int fd)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	struct msghdr mh;
	struct cmsghdr *c;

	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.b;
	mh.msg_controllen = sizeof(cm.b);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	assert_true(sendmsg(g->sock, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

/* True once every write end of the pipe is closed (read sees EOF). */
static bool pipe_writers_gone(struct tg *g, int rd)
{
	char c;

	for (int i = 0; i < 200; i++) {
		if (read(rd, &c, 1) == 0)
			return true;
		hvs_loop_run_once(g->loop, 10);
	}
	return false;
}

/* Regression (fuzz_host_abi, zero-length-dgram-fd-leak): fds a guest
 * attaches are closed, also on a 0-byte datagram, which reads as EOF. */
static void test_zero_length_dgram_fd_leak(void **state)
{
	struct tg *g = new_tg("vmfd", 1, 2 * MiB, 0);
	uint8_t req[24], rep[64];
	int pfd[2];

	(void)state;
	tg_hello(g);
	/* an fd on a normal request: closed, and the request answered */
	assert_int_equal(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
	memset(req, 0, sizeof(req));
	tg_hdr(req, HVSIM_ABI_RDMSR, 5);
	hv_put_le32(req + 20, HV_X64_MSR_SVERSION);
	send_with_fd(g, req, HVSIM_ABI_RDMSR_LEN, pfd[1]);
	close(pfd[1]);
	assert_int_equal(tg_recv(g, rep, sizeof(rep), NULL, 0, NULL), 32);
	assert_int_equal(tg_reply_result(rep), 0);
	assert_true(pipe_writers_gone(g, pfd[0]));
	close(pfd[0]);
	assert_true(stats(g).ps_malformed >= 1);
	/* an fd on a 0-byte datagram: the partition ends, the fd is closed */
	assert_int_equal(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
	send_with_fd(g, req, 0, pfd[1]);
	close(pfd[1]);
	assert_true(pipe_writers_gone(g, pfd[0]));
	close(pfd[0]);
	assert_int_equal(g->host_ended_kind, HVS_END_GONE);
	free_tg(g);
}

/* ---- the hostile guest: flood and a never-emptied SIMP slot ---------------- */

static void test_flood_never_emptied_slot(void **state)
{
	struct tg *g = new_tg("vmfl", 1, 4 * MiB, 64);
	uint8_t p[32] = { 1 };
	unsigned ok = 0, busy = 0;

	(void)state;
	tg_hello(g);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	/* The fake server answers every post with a message to the guest,
	 * which never empties its slot. */
	g->echo_posts = true;
	g->nev = 0;
	for (int i = 0; i < 2000; i++) {
		uint16_t st = tg_post(g, 0, 1, 1, p, 32);
		if (st == HV_STATUS_SUCCESS)
			ok++;
		else if (st == HV_STATUS_INSUFFICIENT_BUFFERS)
			busy++;
		else
			fail_msg("unexpected status 0x%x", st);
		struct hvs_partition_stats s = stats(g);
		assert_true(s.ps_msgq_len <= 64);
	}
	struct hvs_partition_stats s = stats(g);
	/* One message sits in the slot; the queue filled up to its
	 * high-water mark and stayed there; the rest were refused. */
	assert_int_equal(ok, 64 - HVS_PARTITION_MSGQ_RESERVE + 1);
	assert_int_equal(busy, 2000 - ok);
	assert_int_equal(s.ps_post_busy, busy);
	assert_true(s.ps_msgq_max <= 64);
	assert_int_equal(s.ps_msgq_len, ok - 1);
	/* The host's own queue is bounded too: direct deliveries get
	 * -EAGAIN once it is full, and are counted. */
	int r = 0;
	for (int i = 0; i < 100 && r == 0; i++)
		r = hvs_partition_post_message(g->p, 0, 2, 1, p, 8);
	assert_int_equal(r, -11);
	assert_int_equal(stats(g).ps_msgq_len, 64);
	assert_true(stats(g).ps_msgq_full >= 1);
	/* The host still answers everything else. */
	uint64_t v;
	assert_int_equal(tg_rdmsr(g, 0, HV_X64_MSR_SVERSION, &v), 0);
	/* Once the guest drains, the server is told it may retry. */
	g->nev = 0;
	bool pending;
	guest_take(g, SIMP_GPA, 2, &pending);
	assert_true(pending);
	bool changed = false;
	for (unsigned i = 0; i < g->nev; i++)
		changed |= g->ev[i].ev_kind == 'C';
	assert_true(changed);
	free_tg(g);
}

/* A guest that never reads its replies stalls only itself. */
static void test_guest_never_reads_replies(void **state)
{
	struct tg *a = new_tg("vmslow", 1, 2 * MiB, 0);
	struct tg *b;
	uint8_t req[24];
	int sent = 0;

	(void)state;
	tg_hello(a);
	/* Second partition on the same loop. */
	b = calloc(1, sizeof(*b));
	assert_non_null(b);
	tg_init_on(b, a->loop, "vmfast", 1, 2 * MiB, 0);
	/* Flood a with requests without reading: sends succeed until the
	 * socket buffer is full; the host must not block. */
	int fl = fcntl(a->sock, F_GETFL);
	fcntl(a->sock, F_SETFL, fl | O_NONBLOCK);
	for (int i = 0; i < 100000; i++) {
		tg_hdr(req, HVSIM_ABI_RDMSR, (uint64_t)i);
		hv_put_le32(req + 16, 0);
		hv_put_le32(req + 20, HV_X64_MSR_SVERSION);
		ssize_t r = send(a->sock, req, 24, MSG_NOSIGNAL);
		if (r < 0) {
			/* Let the host drain what it can, then try again. */
			hvs_loop_run_once(a->loop, 0);
			r = send(a->sock, req, 24, MSG_NOSIGNAL);
			if (r < 0)
				break;
		}
		sent++;
		if (i % 64 == 0)
			hvs_loop_run_once(a->loop, 0);
	}
	assert_true(sent > 0);
	/* Run the loop: returns, never blocks on a's full socket. */
	uint64_t t0 = hvs_now_ns();
	for (int i = 0; i < 50; i++)
		hvs_loop_run_once(a->loop, 0);
	assert_true(hvs_now_ns() - t0 < 5ull * 1000000000 * VMBUS_TEST_TIME_SCALE);
	/* The other VM on the same loop is served, and the slow VM is
	 * still alive, its replies waiting for it. */
	tg_hello(b);
	uint64_t v;
	assert_int_equal(tg_rdmsr(b, 0, HV_X64_MSR_SVERSION, &v), 0);
	assert_int_equal(a->host_ended_calls, 0);
	uint8_t rep[64];
	fcntl(a->sock, F_SETFL, fl);
	size_t n = tg_recv(a, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(n, 32);
	assert_int_equal(tg_reply_seq(rep), 0);
	free_tg(b);
	free_tg(a);
}

/* ---- fault hooks in the partition ---------------------------------------------- */

static void test_fault_withhold_and_storm(void **state)
{
	struct tg *g = new_tg("vmfh", 1, 4 * MiB, 0);
	struct hvs_fault_param fp = { "count", 5 };

	(void)state;
	tg_hello(g);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	tg_doorbell(g, 0);
	assert_int_equal(hvs_fault_set("withhold_interrupts", true, NULL, 0, "vmfh"), 0);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 9), 0);
	assert_int_equal(g->ram[SIEFP_GPA + 512 + 1], 2);
	assert_int_equal(tg_doorbell(g, 0), 0);
	assert_int_equal(hvs_fault_set("withhold_interrupts", false, NULL, 0, NULL), 0);
	assert_int_equal(hvs_fault_set("storm_interrupts", true, &fp, 1, "other-vm"), 0);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 10), 0);
	assert_int_equal(tg_doorbell(g, 0), 1);   /* filter: another VM */
	assert_int_equal(hvs_fault_set("storm_interrupts", true, &fp, 1, "vmfh"), 0);
	assert_int_equal(hvs_partition_signal_event(g->p, 0, 2, 11), 0);
	assert_int_equal(tg_doorbell(g, 0), 6);
	hvs_fault_reset_all();
	free_tg(g);
}


/* ---- random datagrams and concurrent deliveries -------------------------------- */

static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	uint64_t x = rnd_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rnd_state = x;
}

/* A hostile guest sending random requests: every request with a readable
 * header gets exactly one reply with its seq, or the partition ends; the
 * host never crashes (sanitizers watch). */
static void test_random_datagrams(void **state)
{
	static const uint32_t msrs[] = {
		HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL, HV_X64_MSR_VP_INDEX,
		HV_X64_MSR_TIME_REF_COUNT, HV_X64_MSR_SCONTROL, HV_X64_MSR_SVERSION,
		HV_X64_MSR_SIEFP, HV_X64_MSR_SIMP, HV_X64_MSR_EOM,
		HV_X64_MSR_SINT(2), HV_X64_MSR_SINT(15), HV_X64_MSR_CRASH_P0,
		HV_X64_MSR_CRASH_CTL, 0x40000090 + 16, 0,
	};
	static uint8_t dg[HVSIM_ABI_MAX_DGRAM + 64], rep[HVSIM_ABI_MAX_DGRAM];
	unsigned partitions = 0, replies = 0;
	struct tg *g = NULL;

	(void)state;
	for (int i = 0; i < 4000; i++) {
		if (!g) {
			g = new_tg("vmrnd", 2, 4 * MiB, 32);
			g->echo_posts = true;
			tg_hello(g);
			partitions++;
		}
		uint16_t types[] = { HVSIM_ABI_WRMSR, HVSIM_ABI_RDMSR,
				     HVSIM_ABI_HYPERCALL, HVSIM_ABI_RESET,
				     (uint16_t)rnd() };
		uint16_t type = types[rnd() % 5];
		size_t len;
		uint64_t seq = rnd();

		memset(dg, 0, sizeof(dg));
		for (size_t k = 16; k < 64; k++)
			dg[k] = (uint8_t)rnd();
		tg_hdr(dg, type, seq);
		if (rnd() % 20 == 0)
			dg[rnd() % 8] ^= (uint8_t)(1u << (rnd() % 8));
		hv_put_le32(dg + 16, (uint32_t)(rnd() % 3));         /* vp */
		switch (type) {
		case HVSIM_ABI_WRMSR:
		case HVSIM_ABI_RDMSR: {
			uint32_t msr = msrs[rnd() % (sizeof(msrs) / sizeof(msrs[0]))];
			hv_put_le32(dg + 20, msr);
			uint64_t v = rnd();
			if (rnd() % 2)
				v = (rnd() % (5 * MiB)) | (rnd() % 2);
			if (msr == HV_X64_MSR_CRASH_CTL && rnd() % 8)
				v &= ~HV_CRASH_CTL_CRASH_NOTIFY;
			hv_put_le64(dg + 24, v);
			len = type == HVSIM_ABI_WRMSR ? 32 : 24;
			break;
		}
		case HVSIM_ABI_HYPERCALL: {
			uint32_t in_len = (uint32_t)(rnd() % 300);
			uint64_t ctl = rnd() % 2 ? HV_CALL_POST_MESSAGE
						 : HV_CALL_SIGNAL_EVENT;
			if (rnd() % 3 == 0)
				ctl |= HV_HYPERCALL_FAST, in_len = 16;
			if (rnd() % 10 == 0)
				ctl = rnd();
			hv_put_le32(dg + 20, in_len);
			hv_put_le64(dg + 24, ctl);
			for (uint32_t k = 0; k < in_len; k++)
				dg[32 + k] = (uint8_t)rnd();
			if (in_len >= 16) {
				hv_put_le32(dg + 32 + 8, (uint32_t)(rnd() % 3));
				hv_put_le32(dg + 32 + 12, (uint32_t)(rnd() % 260));
			}
			len = 32 + in_len;
			break;
		}
		case HVSIM_ABI_RESET:
			hv_put_le32(dg + 16, (uint32_t)(rnd() % 4));
			len = 20;
			break;
		default:
			len = 16 + rnd() % 64;
		}
		if (rnd() % 25 == 0)
			len = 16 + rnd() % (sizeof(dg) - 16);
		/* Deliveries and events from the "server" side meanwhile. */
		hvs_partition_post_message(g->p, (uint32_t)(rnd() % 2),
					   (uint32_t)(rnd() % 16), 1, dg, 64);
		hvs_partition_signal_event(g->p, (uint32_t)(rnd() % 2),
					   (uint32_t)(rnd() % 16),
					   (uint32_t)(rnd() % 2048));
		if (rnd() % 7 == 0) {
			g->sig[rnd() % 512] |= rnd();
			uint64_t one = 1;
			assert_int_equal(write(g->sig_efd, &one, 8), 8);
		}
		tg_send_raw(g, dg, len);
		/* One reply with this seq, or the end of the partition. */
		uint64_t dl = tg_deadline(5);
		bool done = false;
		while (!done) {
			ssize_t r = recv(g->sock, rep, sizeof(rep), MSG_DONTWAIT);
			if (r > 0) {
				assert_true(r >= 24);
				assert_int_equal(tg_reply_seq(rep), seq);
				assert_int_equal(hv_get_le16(rep + 4) & 0x8000, 0x8000);
				replies++;
				done = true;
				if (g->host_ended_calls) { /* RESET, crash */
					free_tg(g);
					g = NULL;
				}
			} else if (r == 0 || g->host_ended_calls) {
				/* ended: RESET, crash, or a broken header */
				while (recv(g->sock, rep, sizeof(rep), MSG_DONTWAIT) > 0)
					replies++;
				free_tg(g);
				g = NULL;
				done = true;
			} else {
				assert_true(hvs_now_ns() < dl);
				hvs_loop_run_once(g->loop, 1);
			}
		}
		if (g)
			assert_true(stats(g).ps_msgq_len <= 32);
	}
	if (g)
		free_tg(g);
	assert_true(replies > 3000);
	assert_true(partitions > 1);
}

struct hammer {
	struct hvs_partition *p;
	atomic_bool stop;
	atomic_uint enodev;
	atomic_uint ok;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	uint8_t msg[240];
	uint64_t x = 88172645463325252ull;

	memset(msg, 0x11, sizeof(msg));
	while (!atomic_load(&h->stop)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int r = (x & 1) ? hvs_partition_post_message(h->p, (uint32_t)(x >> 8) % 2,
							     2, 1, msg, (uint32_t)(x >> 16) % 241)
				: hvs_partition_signal_event(h->p, (uint32_t)(x >> 8) % 2, 2,
							     (uint32_t)(x >> 16) % 2048);
		uint8_t *m = hvs_gpa_map(h->p, 0x8000, 16);
		if (m)
			(void)m[0];
		if (r == -19)
			atomic_fetch_add(&h->enodev, 1);
		else if (r == 0)
			atomic_fetch_add(&h->ok, 1);
		if (atomic_load(&h->enodev) > 1000)
			break;
	}
	return NULL;
}

/* VSP threads deliver while the guest moves its SynIC pages and EOMs,
 * then the partition ends under them: -ENODEV, never a fault. */
static void test_concurrent_delivery(void **state)
{
	struct tg *g = new_tg("vmcc", 2, 4 * MiB, 0);
	static struct hammer h;
	pthread_t th[2];

	(void)state;
	tg_hello(g);
	tg_setup_synic(g, 0, SIMP_GPA, SIEFP_GPA);
	tg_setup_synic(g, 1, 0x5000, 0x6000);
	h.p = g->p;
	atomic_store(&h.stop, false);
	atomic_store(&h.enodev, 0);
	atomic_store(&h.ok, 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, hammer_thread, &h);
	/* On a busy machine the threads may start late: the churn below
	 * must overlap their deliveries, and the end must come after them. */
	uint64_t until = tg_deadline(10);
	while (atomic_load(&h.ok) < 100 && hvs_now_ns() < until)
		usleep(100);
	assert_true(atomic_load(&h.ok) >= 100);
	for (int i = 0; i < 300; i++) {
		uint32_t vp = (uint32_t)i % 2;
		uint64_t page = 0x10000 + (uint64_t)(i % 7) * 0x1000;
		assert_int_equal(tg_wrmsr(g, vp, i % 3 ? HV_X64_MSR_SIMP : HV_X64_MSR_SIEFP,
					  page | (i % 5 ? 1 : 0), NULL), 0);
		/* Empty every slot of the old and new page like a guest. */
		__atomic_store_n((uint32_t *)(void *)(g->ram + page + 512), 0,
				 __ATOMIC_RELEASE);
		assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_EOM, 0, NULL), 0);
		if (i % 50 == 0)
			assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_SCONTROL, i % 100 ? 1 : 0, NULL), 0);
	}
	assert_true(stats(g).ps_msgq_len <= HVS_PARTITION_MSGQ_DEFAULT);
	/* End it while the threads keep going. */
	hvs_partition_stop(g->p, HVS_END_POWER_OFF);
	for (int i = 0; i < 1000 && atomic_load(&h.enodev) < 100; i++)
		usleep(1000);
	atomic_store(&h.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&h.ok) > 0);
	assert_true(atomic_load(&h.enodev) > 0);
	assert_int_equal(g->host_ended_kind, HVS_END_POWER_OFF);
	free_tg(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_welcome, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_name_and_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_before_hello_and_second_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_errors_rate_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_reference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_msr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hypercall_enablement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_message_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_event_hypercall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_simp_delivery_pending_eom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_waits_for_synic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpa_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpa_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length_dgram_fd_leak, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_never_emptied_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_never_reads_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_withhold_and_storm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_datagrams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_delivery, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
