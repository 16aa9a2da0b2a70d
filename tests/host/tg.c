/*
 * tests/host/tg.c - the scripted in-test guest (see tg.h).
 */
#define _GNU_SOURCE
#include "tg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* ---- fake VMBus server --------------------------------------------------- */

static struct tg_event *tg_push(struct tg *g, char kind)
{
	if (g->nev >= TG_MAX_EVENTS)
		return NULL;
	struct tg_event *e = &g->ev[g->nev++];
	memset(e, 0, sizeof(*e));
	e->ev_kind = kind;
	return e;
}

static uint16_t fake_post(void *arg, uint32_t vp, uint32_t conn, uint32_t type,
			  const void *payload, uint32_t len)
{
	struct tg *g = arg;
	struct tg_event *e = tg_push(g, 'P');

	if (e) {
		e->ev_vp = vp;
		e->ev_conn = conn;
		e->ev_type = type;
		e->ev_len = len;
		memcpy(e->ev_payload, payload, len);
	}
	if (g->echo_posts)
		hvs_partition_post_message(g->p, vp, VMBUS_MESSAGE_SINT, type,
					   payload, len);
	return g->post_status;
}

static uint16_t fake_signal(void *arg, uint32_t conn, uint16_t flag)
{
	struct tg *g = arg;
	struct tg_event *e = tg_push(g, 'S');

	if (e) {
		e->ev_conn = conn;
		e->ev_flag = flag;
	}
	return conn == 0xBAD ? HV_STATUS_INVALID_CONNECTION_ID : HV_STATUS_SUCCESS;
}

static void fake_changed(void *arg, uint32_t vp)
{
	struct tg_event *e = tg_push(arg, 'C');

	if (e)
		e->ev_vp = vp;
}

static void fake_ended(void *arg, int kind)
{
	struct tg *g = arg;
	struct tg_event *e = tg_push(g, 'E');

	if (e)
		e->ev_end_kind = kind;
	/* The contract: after ended, deliveries fail with -ENODEV. */
	assert_int_equal(hvs_partition_post_message(g->p, 0, 2, 1, "x", 1),
			 -19);
}

static const struct hvs_partition_ops fake_ops = {
	.post_message = fake_post,
	.signal_event = fake_signal,
	.synic_changed = fake_changed,
	.ended = fake_ended,
};

static void host_ended(void *arg, struct hvs_partition *p, int kind)
{
	struct tg *g = arg;

	assert_ptr_equal(p, g->p);
	g->host_ended_kind = kind;
	g->host_ended_calls++;
}

/* ---- plumbing --------------------------------------------------------------- */

uint64_t tg_deadline(uint64_t seconds)
{
	return hvs_now_ns() + seconds * 1000000000ull * VMBUS_TEST_TIME_SCALE;
}

void tg_init(struct tg *g, const char *name, uint32_t vcpus, uint64_t ram,
	     uint32_t msgq_limit)
{
	tg_init_on(g, NULL, name, vcpus, ram, msgq_limit);
}

void tg_init_on(struct tg *g, struct hvs_loop *loop, const char *name,
		uint32_t vcpus, uint64_t ram, uint32_t msgq_limit)
{
	int sv[2];

	memset(g, 0, sizeof(*g));
	g->ram_fd = g->sig_fd = g->sig_efd = -1;
	for (int i = 0; i < TG_MAX_VCPUS; i++)
		g->doorbell[i] = -1;
	g->host_ended_kind = -1;
	g->post_status = HV_STATUS_SUCCESS;
	g->own_loop = loop == NULL;
	g->loop = loop ? loop : hvs_loop_create();
	assert_non_null(g->loop);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	struct hvs_partition_config pc = {
		.name = name,
		.vcpus = vcpus,
		.ram_bytes = ram,
		.ops = &fake_ops,
		.ops_arg = g,
		.sock_fd = sv[0],
		.host_ended = host_ended,
		.host_arg = g,
		.msgq_limit = msgq_limit,
	};
	assert_int_equal(hvs_partition_create(g->loop, &pc, &g->p), 0);
	g->sock = sv[1];
	g->vcpus = vcpus;
	g->ram_bytes = ram;
}

void tg_fini(struct tg *g)
{
	hvs_partition_destroy(g->p);
	if (g->ram)
		munmap(g->ram, g->ram_bytes);
	if (g->sig)
		munmap(g->sig, 4096);
	if (g->ram_fd >= 0)
		close(g->ram_fd);
	if (g->sig_fd >= 0)
		close(g->sig_fd);
	if (g->sig_efd >= 0)
		close(g->sig_efd);
	for (int i = 0; i < TG_MAX_VCPUS; i++)
		if (g->doorbell[i] >= 0)
			close(g->doorbell[i]);
	close(g->sock);
	if (g->own_loop)
		hvs_loop_destroy(g->loop);
}

void tg_pump(struct tg *g)
{
	for (int i = 0; i < 4; i++)
		hvs_loop_run_once(g->loop, 0);
}

void tg_pump_until_readable(struct tg *g)
{
	uint64_t dl = tg_deadline(5);

	for (;;) {
		struct pollfd pf = { .fd = g->sock, .events = POLLIN };
		if (poll(&pf, 1, 0) > 0)
			return;
		if (hvs_now_ns() > dl)
			fail_msg("no reply from the partition in time");
		hvs_loop_run_once(g->loop, 5);
	}
}

bool tg_wait_eof(struct tg *g)
{
	uint64_t dl = tg_deadline(5);
	uint8_t b[HVSIM_ABI_MAX_DGRAM];

	while (hvs_now_ns() < dl) {
		hvs_loop_run_once(g->loop, 5);
		ssize_t r = recv(g->sock, b, sizeof(b), MSG_DONTWAIT);
		if (r == 0)
			return true;
		if (r < 0 && errno != EAGAIN)
			return true;
	}
	return false;
}

void tg_send_raw(struct tg *g, const void *buf, size_t len)
{
	ssize_t r = send(g->sock, buf, len, MSG_NOSIGNAL);
	assert_int_equal(r, (ssize_t)len);
}

size_t tg_recv(struct tg *g, uint8_t *buf, size_t cap, int *fds, int maxfds,
	       int *nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 256)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh;
	ssize_t r;

	tg_pump_until_readable(g);
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.b;
	mh.msg_controllen = sizeof(cm.b);
	r = recvmsg(g->sock, &mh, MSG_CMSG_CLOEXEC);
	assert_true(r >= 0);
	assert_false(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
	if (nfds)
		*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *f = (int *)(void *)CMSG_DATA(c);
		for (int i = 0; i < n; i++) {
			if (fds && nfds && *nfds < maxfds)
				fds[(*nfds)++] = f[i];
			else
				close(f[i]);
		}
	}
	return (size_t)r;
}

void tg_hdr(uint8_t *buf, uint16_t type, uint64_t seq)
{
	hv_put_le32(buf, HVSIM_ABI_MAGIC);
	hv_put_le16(buf + 4, type);
	hv_put_le16(buf + 6, 0);
	hv_put_le64(buf + 8, seq);
}

uint16_t tg_reply_type(const uint8_t *b) { return hv_get_le16(b + 4); }
uint64_t tg_reply_seq(const uint8_t *b) { return hv_get_le64(b + 8); }
int32_t tg_reply_result(const uint8_t *b) { return (int32_t)hv_get_le32(b + 16); }

void tg_hello(struct tg *g)
{
	uint8_t req[24], rep[HVSIM_ABI_MAX_DGRAM];
	int fds[3 + TG_MAX_VCPUS], nfds;
	size_t n;

	tg_hdr(req, HVSIM_ABI_HELLO, ++g->seq);
	hv_put_le32(req + 16, HVSIM_ABI_VERSION);
	hv_put_le32(req + 20, 0);
	tg_send_raw(g, req, sizeof(req));
	n = tg_recv(g, rep, sizeof(rep), fds, 3 + TG_MAX_VCPUS, &nfds);
	assert_int_equal(n, sizeof(struct hvsim_abi_welcome));
	assert_int_equal(tg_reply_type(rep), HVSIM_ABI_WELCOME);
	assert_int_equal(tg_reply_seq(rep), g->seq);
	assert_int_equal(tg_reply_result(rep), 0);
	assert_int_equal(hv_get_le32(rep + 20), 0);
	assert_int_equal(hv_get_le32(rep + 24), HVSIM_ABI_VERSION);
	assert_int_equal(hv_get_le32(rep + 28), g->vcpus);
	assert_int_equal(hv_get_le64(rep + 32), g->ram_bytes);
	assert_int_equal(hv_get_le32(rep + 40), 3 + g->vcpus);
	assert_int_equal(hv_get_le32(rep + 44), 0);
	assert_int_equal(nfds, (int)(3 + g->vcpus));
	g->ram_fd = fds[0];
	g->sig_fd = fds[1];
	g->sig_efd = fds[2];
	for (uint32_t i = 0; i < g->vcpus; i++)
		g->doorbell[i] = fds[3 + i];
	g->ram = mmap(NULL, g->ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
		      g->ram_fd, 0);
	assert_true(g->ram != MAP_FAILED);
	g->sig = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, g->sig_fd, 0);
	assert_true(g->sig != MAP_FAILED);
	g->welcomed = true;
}

static int32_t msr_call(struct tg *g, uint16_t type, uint32_t vp, uint32_t msr,
			uint64_t v, uint64_t *out)
{
	uint8_t req[32], rep[HVSIM_ABI_MAX_DGRAM];
	size_t len = type == HVSIM_ABI_WRMSR ? 32 : 24, n;

	tg_hdr(req, type, ++g->seq);
	hv_put_le32(req + 16, vp);
	hv_put_le32(req + 20, msr);
	hv_put_le64(req + 24, v);
	tg_send_raw(g, req, len);
	n = tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_type(rep), type | HVSIM_ABI_REPLY);
	assert_int_equal(tg_reply_seq(rep), g->seq);
	int32_t r = tg_reply_result(rep);
	if (r == 0) {
		assert_int_equal(n, 32);
		if (out)
			*out = hv_get_le64(rep + 24);
	} else {
		assert_int_equal(n, 24);
	}
	return r;
}

int32_t tg_wrmsr(struct tg *g, uint32_t vp, uint32_t msr, uint64_t v,
		 uint64_t *stored)
{
	return msr_call(g, HVSIM_ABI_WRMSR, vp, msr, v, stored);
}

int32_t tg_rdmsr(struct tg *g, uint32_t vp, uint32_t msr, uint64_t *val)
{
	return msr_call(g, HVSIM_ABI_RDMSR, vp, msr, 0, val);
}

int32_t tg_hypercall(struct tg *g, uint32_t vp, uint64_t control,
		     const void *input, uint32_t in_len, uint64_t *hv)
{
	static uint8_t req[32 + HVSIM_ABI_MAX_HC_INPUT + 64];
	uint8_t rep[HVSIM_ABI_MAX_DGRAM];
	size_t n;

	tg_hdr(req, HVSIM_ABI_HYPERCALL, ++g->seq);
	hv_put_le32(req + 16, vp);
	hv_put_le32(req + 20, in_len);
	hv_put_le64(req + 24, control);
	if (in_len)
		memcpy(req + 32, input, in_len);
	tg_send_raw(g, req, 32 + in_len);
	n = tg_recv(g, rep, sizeof(rep), NULL, 0, NULL);
	assert_int_equal(tg_reply_type(rep), HVSIM_ABI_HYPERCALL | HVSIM_ABI_REPLY);
	assert_int_equal(tg_reply_seq(rep), g->seq);
	int32_t r = tg_reply_result(rep);
	if (r == 0) {
		assert_int_equal(n, 40);
		assert_int_equal(hv_get_le32(rep + 32), 0); /* output_len */
		if (hv)
			*hv = hv_get_le64(rep + 24);
	} else {
		assert_int_equal(n, 24);
	}
	return r;
}

uint16_t tg_post(struct tg *g, uint32_t vp, uint32_t conn, uint32_t type,
		 const void *payload, uint32_t size)
{
	uint8_t in[256];
	uint64_t hv = ~0ull;

	memset(in, 0, sizeof(in));
	hv_put_le32(in, conn);
	hv_put_le32(in + 8, type);
	hv_put_le32(in + 12, size);
	if (payload)
		memcpy(in + 16, payload, size > 240 ? 240 : size);
	assert_int_equal(tg_hypercall(g, vp, HV_CALL_POST_MESSAGE, in, 256, &hv), 0);
	return (uint16_t)hv;
}

void tg_setup_synic(struct tg *g, uint32_t vp, uint64_t simp_gpa,
		    uint64_t siefp_gpa)
{
	assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_GUEST_OS_ID,
				  0x8100000000010000ull, NULL), 0);
	assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_HYPERCALL, 0x1000 | 1, NULL), 0);
	assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_SIMP, simp_gpa | 1, NULL), 0);
	assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_SIEFP, siefp_gpa | 1, NULL), 0);
	assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_SINT(2), 0x41, NULL), 0);
	assert_int_equal(tg_wrmsr(g, vp, HV_X64_MSR_SCONTROL, 1, NULL), 0);
}

uint64_t tg_doorbell(struct tg *g, uint32_t vp)
{
	uint64_t v = 0;

	if (read(g->doorbell[vp], &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}
