/*
 * fake_host.c - scripted partition host for the posix port tests. Written
 * from DESIGN.md's partition ABI page only; shares no code with src/host.
 * Byte layouts are built by hand at the documented offsets (not with the
 * hv/hvsim_abi.h structs), so a mistake in that header would show up here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fake_host.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

static uint64_t get64(const uint8_t *b)
{
	return get32(b) | (uint64_t)get32(b + 4) << 32;
}

static int make_memfd(const char *name, uint64_t size, bool seal)
{
	int fd = memfd_create(name, MFD_ALLOW_SEALING | MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
		abort();
	if (seal &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		abort();
	return fd;
}

/* Header at b: magic, type, flags 0, seq; then result + reserved. */
static void reply_hdr(uint8_t *b, uint16_t type, uint64_t seq, int32_t result)
{
	put32(b, 0x4D535648u);
	put16(b + 4, type);
	put16(b + 6, 0);
	put64(b + 8, seq);
	put32(b + 16, (uint32_t)result);
	put32(b + 20, 0);
}

/* Apply a one-shot fault to a built reply; returns the length to send, or
 * 0 for "send nothing". */
static size_t apply_fault(struct fake_host *h, enum fh_fault f, uint8_t *b,
			  size_t len)
{
	switch (f) {
	case FH_BAD_SEQ:
		put64(b + 8, get64(b + 8) + 1);
		break;
	case FH_BAD_TYPE:
		put16(b + 4, get16(b + 4) == 0x8004 ? 0x8003 : 0x8004);
		break;
	case FH_BAD_MAGIC:
		put32(b, 0x12345678u);
		break;
	case FH_BAD_FLAGS:
		put16(b + 6, 1);
		break;
	case FH_SHORT:
		return len - 1;
	case FH_LONG:
		b[len] = 0;
		return len + 1;
	case FH_SILENT:
		return 0;
	case FH_CLOSE:
		shutdown(h->sock, SHUT_RDWR);
		h->closed = true;
		return 0;
	case FH_HC_BAD_OUTLEN:
		if (len >= 40)
			put32(b + 32, get32(b + 32) + 8);
		break;
	default:
		break;
	}
	return len;
}

static void send_fds(int sock, const uint8_t *b, size_t len, const int *fds,
		     size_t nfds)
{
	union {
		struct cmsghdr a;
		char buf[CMSG_SPACE(sizeof(int) * 260)];
	} ctl;
	struct iovec iov = { .iov_base = (void *)b, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	memset(&ctl, 0, sizeof(ctl));
	if (nfds) {
		struct cmsghdr *c;

		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	(void)sendmsg(sock, &msg, MSG_NOSIGNAL);
}

static void do_welcome(struct fake_host *h, uint64_t seq)
{
	struct fh_config *c = &h->cfg;
	uint8_t b[9000];
	int fds[3 + FH_MAX_VCPUS + 4];
	size_t nfds = 0, len = 48;

	memset(b, 0, sizeof(b));
	if (c->welcome_result) {
		reply_hdr(b, 0x8001, seq, c->welcome_result);
		len = apply_fault(h, c->welcome_fault, b, 24);
		if (len)
			send_fds(h->sock, b, len, NULL, 0);
		return;
	}
	reply_hdr(b, 0x8001, seq, 0);
	put32(b + 24, c->abi_version ? c->abi_version : 1);
	put32(b + 28, c->vcpu_field ? c->vcpu_field : c->vcpus);
	put64(b + 32, c->ram_field ? c->ram_field : c->ram_bytes);
	put32(b + 40, (uint32_t)((int)(3 + c->vcpus) + c->fd_count_delta));
	put32(b + 44, 0);

	fds[nfds++] = h->ram_fd;
	fds[nfds++] = h->sig_fd;
	fds[nfds++] = h->sig_efd;
	for (uint32_t i = 0; i < c->vcpus; i++)
		fds[nfds++] = h->doorbell[i];
	if (c->doorbell_is_pipe)
		fds[nfds - 1] = h->pipefd[0];
	if (c->fds_delta < 0)
		nfds -= (size_t)-c->fds_delta;
	for (int i = 0; i < c->fds_delta; i++)
		fds[nfds++] = h->extra_fd;
	if (c->oversize)
		len = sizeof(b);
	len = apply_fault(h, c->welcome_fault, b, len);
	if (len)
		send_fds(h->sock, b, len, fds, nfds);
}

static int32_t msr_slot(struct fake_host *h, uint32_t vp, uint32_t msr,
			uint64_t **slot)
{
	if (vp >= h->cfg.vcpus)
		return -34;
	if (msr < 0x40000000u || msr >= 0x40000000u + FH_MSR_SLOTS)
		return -22;
	*slot = &h->msr[vp][msr - 0x40000000u];
	return 0;
}

static void handle(struct fake_host *h, const uint8_t *d, size_t len)
{
	uint8_t r[8300];
	uint16_t type;
	uint64_t seq;
	size_t rlen = 24;
	int32_t result = 0;
	enum fh_fault f;
	uint64_t *slot = NULL;

	if (len < 16 || get32(d) != 0x4D535648u)
		return;
	type = get16(d + 4);
	seq = get64(d + 8);

	pthread_mutex_lock(&h->lock);
	if (h->nlog < FH_MAX_LOG)
		h->log[h->nlog] = (struct fh_request){ type, seq, len };
	h->nlog++;
	f = h->fault;
	h->fault = FH_OK;
	memset(r, 0, sizeof(r));

	switch (type) {
	case 0x0001:
		h->hello_len = len < sizeof(h->hello) ? len : sizeof(h->hello);
		memcpy(h->hello, d, h->hello_len);
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		do_welcome(h, seq);
		return;
	case 0x0003: /* WRMSR: vp, msr, value */
		if (len != 32) {
			result = -71;
			break;
		}
		result = msr_slot(h, get32(d + 16), get32(d + 20), &slot);
		if (!result && (get32(d + 20) == 0x40000002u ||
				get32(d + 20) == 0x40000081u))
			result = -22;
		if (!result) {
			*slot = get64(d + 24);
			put64(r + 24, *slot);
			rlen = 32;
		}
		break;
	case 0x0004: /* RDMSR: vp, msr */
		if (len != 24) {
			result = -71;
			break;
		}
		result = msr_slot(h, get32(d + 16), get32(d + 20), &slot);
		if (!result) {
			put64(r + 24, *slot);
			rlen = 32;
		}
		break;
	case 0x0005: /* HYPERCALL: vp, input_len, control, input */
		if (len < 32 || get32(d + 20) > 4096 ||
		    len != 32 + get32(d + 20)) {
			result = -71;
			break;
		}
		h->hc_vp = get32(d + 16);
		h->hc_input_len = get32(d + 20);
		h->hc_control = get64(d + 24);
		memcpy(h->hc_input, d + 32, h->hc_input_len);
		put64(r + 24, h->hc_result);
		put32(r + 32, h->hc_output_len);
		for (uint32_t i = 0; i < h->hc_output_len; i++)
			r[40 + i] = (uint8_t)(0xA0 + i);
		rlen = 40 + h->hc_output_len;
		break;
	case 0x0006: /* RESET: kind; exactly 20 bytes */
		if (len != 20) {
			result = -71;
			break;
		}
		h->reset_kind = get32(d + 16);
		h->reset_seen = true;
		if (h->nresets < 8)
			h->resets[h->nresets++] = h->reset_kind;
		break;
	default:
		result = -71;
		break;
	}
	if (f == FH_ERROR) {
		result = h->error_result;
		rlen = 24;
	}
	if (result)
		rlen = 24;
	reply_hdr(r, (uint16_t)(type | 0x8000), seq, result);
	rlen = apply_fault(h, f, r, rlen);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (rlen) {
		if (f == FH_WITH_FD) {
			send_fds(h->sock, r, rlen, &h->extra_fd, 1);
		} else {
			send_fds(h->sock, r, rlen, NULL, 0);
		}
	}
	if (type == 0x0006 && result == 0) {
		/* RESET: the host tears the partition down after replying. */
		shutdown(h->sock, SHUT_RDWR);
		pthread_mutex_lock(&h->lock);
		h->closed = true;
		pthread_mutex_unlock(&h->lock);
	}
}

static bool stopping(struct fake_host *h)
{
	bool s;

	pthread_mutex_lock(&h->lock);
	s = h->stop;
	pthread_mutex_unlock(&h->lock);
	return s;
}

/* Listen mode: accept the next connection (a rebooted guest reconnects). */
static bool accept_one(struct fake_host *h)
{
	while (!stopping(h)) {
		struct pollfd pfd = { .fd = h->listen_fd, .events = POLLIN };

		if (poll(&pfd, 1, 50) > 0) {
			int s = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (s < 0)
				continue;
			pthread_mutex_lock(&h->lock);
			h->sock = s;
			h->closed = false;
			h->connections++;
			pthread_mutex_unlock(&h->lock);
			return true;
		}
	}
	return false;
}

static void *host_main(void *arg)
{
	struct fake_host *h = arg;
	uint8_t d[8192];

	if (h->listen_fd >= 0 && !accept_one(h))
		return NULL;
	while (!stopping(h)) {
		struct pollfd pfd = { .fd = h->sock, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(h->sock, d, sizeof(d), MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n > 0) {
			handle(h, d, (size_t)n);
			continue;
		}
		if (h->listen_fd >= 0) {
			pthread_mutex_lock(&h->lock);
			close(h->sock);
			h->sock = -1;
			pthread_mutex_unlock(&h->lock);
			if (!accept_one(h))
				return NULL;
			continue;
		}
		/* EOF or shut down: idle until stopped. */
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static struct fake_host *fh_new(const struct fh_config *cfg)
{
	struct fake_host *h = calloc(1, sizeof(*h));
	pthread_condattr_t ca;

	if (!h)
		abort();
	if (cfg)
		h->cfg = *cfg;
	if (!h->cfg.vcpus)
		h->cfg.vcpus = 2;
	if (!h->cfg.ram_bytes)
		h->cfg.ram_bytes = 2u << 20;
	if (h->cfg.vcpus > FH_MAX_VCPUS)
		abort();
	h->sock = -1;
	h->listen_fd = -1;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);

	h->ram_fd = make_memfd("fh-ram", h->cfg.ram_bytes, !h->cfg.unseal_ram);
	h->sig_fd = make_memfd("fh-sig", 4096, !h->cfg.unseal_sig);
	h->ram = mmap(NULL, h->cfg.ram_bytes, PROT_READ | PROT_WRITE,
		      MAP_SHARED, h->ram_fd, 0);
	h->sig = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
		      h->sig_fd, 0);
	if (h->ram == MAP_FAILED || h->sig == MAP_FAILED)
		abort();
	h->sig_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* Made here, not while answering, so tests can count fds. */
	h->extra_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pipe2(h->pipefd, O_CLOEXEC) != 0)
		abort();
	for (uint32_t i = 0; i < h->cfg.vcpus; i++) {
		h->doorbell[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		for (uint32_t m = 0; m < 16; m++)
			h->msr[i][0x90 + m] = 0x10000;
		h->msr[i][0x81] = 1;
		h->msr[i][0x02] = i;
	}
	return h;
}

struct fake_host *fh_start(const struct fh_config *cfg, int *guest_fd)
{
	struct fake_host *h = fh_new(cfg);
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	h->sock = sv[0];
	*guest_fd = sv[1];
	if (pthread_create(&h->thr, NULL, host_main, h) != 0)
		abort();
	return h;
}

struct fake_host *fh_start_listen(const struct fh_config *cfg,
				  const char *path)
{
	struct fake_host *h = fh_new(cfg);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	h->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (h->listen_fd < 0 ||
	    bind(h->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(h->listen_fd, 4) != 0)
		abort();
	if (pthread_create(&h->thr, NULL, host_main, h) != 0)
		abort();
	return h;
}

void fh_stop(struct fake_host *h)
{
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thr, NULL);
	if (h->sock >= 0)
		close(h->sock);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	munmap(h->ram, h->cfg.ram_bytes);
	munmap(h->sig, 4096);
	close(h->ram_fd);
	close(h->sig_fd);
	close(h->sig_efd);
	close(h->extra_fd);
	close(h->pipefd[0]);
	close(h->pipefd[1]);
	for (uint32_t i = 0; i < h->cfg.vcpus; i++)
		close(h->doorbell[i]);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

void fh_set_fault(struct fake_host *h, enum fh_fault f)
{
	pthread_mutex_lock(&h->lock);
	h->fault = f;
	pthread_mutex_unlock(&h->lock);
}

void fh_set_error(struct fake_host *h, int32_t result)
{
	pthread_mutex_lock(&h->lock);
	h->fault = FH_ERROR;
	h->error_result = result;
	pthread_mutex_unlock(&h->lock);
}

void fh_close(struct fake_host *h)
{
	pthread_mutex_lock(&h->lock);
	shutdown(h->sock, SHUT_RDWR);
	h->closed = true;
	pthread_mutex_unlock(&h->lock);
}

void fh_ring(struct fake_host *h, uint32_t vp)
{
	uint64_t one = 1;

	if (write(h->doorbell[vp], &one, sizeof(one)) != sizeof(one))
		abort();
}

size_t fh_nrequests(struct fake_host *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->nlog;
	pthread_mutex_unlock(&h->lock);
	return n;
}

bool fh_wait_requests(struct fake_host *h, size_t n, int timeout_ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h->lock);
	while (h->nlog < n &&
	       pthread_cond_timedwait(&h->cond, &h->lock, &ts) == 0)
		;
	ok = h->nlog >= n;
	pthread_mutex_unlock(&h->lock);
	return ok;
}

uint64_t fh_take_signal(struct fake_host *h)
{
	uint64_t v = 0;

	if (read(h->sig_efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}
