/*
 * posix_abi.c - the guest side of the partition ABI, version 1
 * (../shared/DESIGN.md, "The partition ABI"): HELLO/WELCOME, the MSR,
 * HYPERCALL and RESET requests, the signal page, and the watchdog that
 * notices the host going away while no request is in flight.
 *
 * Every datagram from the host is received once into a private buffer,
 * checked in full (MSG_TRUNC/MSG_CTRUNC, magic, flags, type, seq echo,
 * length for the type, result), and only then used. Any violation means the
 * host is no longer a partner we can follow: the partition is marked gone.
 */
#include "posix_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/hvsim_abi.h"
#include "hv/tlfs.h"

/* SCM_MAX_FD in Linux is 253 = 3 + HVSIM_ABI_MAX_VCPUS. */
#define ABI_MAX_FDS (HVSIM_ABI_WELCOME_FIXED_FDS + HVSIM_ABI_MAX_VCPUS)
_Static_assert(ABI_MAX_FDS == 253, "WELCOME fds fit one SCM_RIGHTS message");

#define ABI_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Milliseconds left until raw deadline, rounded up; 0 when past. */
static int ms_left(uint64_t raw_deadline)
{
	uint64_t now = posix_raw_mono_ns();
	uint64_t ms;

	if (now >= raw_deadline)
		return 0;
	ms = (raw_deadline - now + 999999u) / 1000000u;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static uint64_t request_deadline(struct vmbus_posix *p)
{
	return posix_raw_mono_ns() + posix_port_span_to_raw(p, p->pc_timeout_ns);
}

/*
 * Send one whole datagram with MSG_NOSIGNAL, bounded by raw_deadline.
 * Returns 0 or a VMBUS_POSIX_GONE_* reason.
 */
static int abi_send(struct vmbus_posix *p, const void *buf, size_t len,
		    uint64_t raw_deadline)
{
	for (;;) {
		ssize_t n = send(p->pr_sock, buf, len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0 && (size_t)n == len) {
			atomic_fetch_add(&p->st_requests, 1);
			return 0;
		}
		if (n >= 0) {
			posix_log(p, VMBUS_LOG_ERR,
				  "partition: short send %zd of %zu", n, len);
			return VMBUS_POSIX_GONE_IOERR;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd pfd = { .fd = p->pr_sock,
					      .events = POLLOUT };
			int ms = ms_left(raw_deadline);
			int r;

			if (ms == 0)
				return VMBUS_POSIX_GONE_TIMEOUT;
			r = poll(&pfd, 1, ms);
			if (r < 0 && errno != EINTR)
				return VMBUS_POSIX_GONE_IOERR;
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET ||
		    errno == ENOTCONN)
			return VMBUS_POSIX_GONE_EOF;
		posix_log(p, VMBUS_LOG_ERR, "partition: send: %s",
			  strerror(errno));
		return VMBUS_POSIX_GONE_IOERR;
	}
}

/*
 * Receive one datagram into buf (cap bytes), bounded by raw_deadline.
 * Descriptors that came with it are stored in fds[0..*nfds-1] (at most
 * fd_cap; pass fd_cap 0 when none are allowed). Returns 0 or a
 * VMBUS_POSIX_GONE_* reason; on failure no descriptor is left open.
 */
static int abi_recv(struct vmbus_posix *p, uint8_t *buf, size_t cap,
		    size_t *len, int *fds, size_t fd_cap, size_t *nfds,
		    uint64_t raw_deadline)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * ABI_MAX_FDS)];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg;
	struct cmsghdr *c;
	int got[ABI_MAX_FDS];
	size_t ngot = 0, nrights = 0;
	ssize_t n;

	*nfds = 0;
	for (;;) {
		struct pollfd pfd = { .fd = p->pr_sock, .events = POLLIN };
		int ms = ms_left(raw_deadline);
		int r;

		if (ms == 0) {
			posix_log(p, VMBUS_LOG_ERR,
				  "partition: no reply within %llu ms",
				  (unsigned long long)(posix_port_span_to_raw(
					  p, p->pc_timeout_ns) / 1000000u));
			return VMBUS_POSIX_GONE_TIMEOUT;
		}
		r = poll(&pfd, 1, ms);
		if (r < 0 && errno != EINTR)
			return VMBUS_POSIX_GONE_IOERR;
		if (r <= 0)
			continue;

		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		n = recvmsg(p->pr_sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EINTR || errno == EAGAIN ||
			      errno == EWOULDBLOCK))
			continue;
		break;
	}
	if (n < 0) {
		if (errno == ECONNRESET || errno == ENOTCONN)
			return VMBUS_POSIX_GONE_EOF;
		posix_log(p, VMBUS_LOG_ERR, "partition: recvmsg: %s",
			  strerror(errno));
		return VMBUS_POSIX_GONE_IOERR;
	}

	/* Collect every descriptor first, so that each is closed on error. */
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nrights++;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && ngot < ABI_MAX_FDS; i++)
			memcpy(&got[ngot++], CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
	}

	if (n == 0) {
		close_fds(got, ngot);
		return VMBUS_POSIX_GONE_EOF;
	}
	if (msg.msg_flags & MSG_TRUNC) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: datagram longer than %zu bytes (MSG_TRUNC)",
			  cap);
		close_fds(got, ngot);
		return VMBUS_POSIX_GONE_PROTO;
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: control data truncated (MSG_CTRUNC)");
		close_fds(got, ngot);
		return VMBUS_POSIX_GONE_PROTO;
	}
	if (nrights > 1 || ngot > fd_cap) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: %zu unexpected descriptors in %zu "
			  "SCM_RIGHTS messages", ngot, nrights);
		close_fds(got, ngot);
		return VMBUS_POSIX_GONE_PROTO;
	}
	memcpy(fds, got, ngot * sizeof(int));
	*nfds = ngot;
	*len = (size_t)n;
	return 0;
}

static const char *type_name(uint16_t t)
{
	switch (t) {
	case HVSIM_ABI_HELLO: return "HELLO";
	case HVSIM_ABI_WRMSR: return "WRMSR";
	case HVSIM_ABI_RDMSR: return "RDMSR";
	case HVSIM_ABI_HYPERCALL: return "HYPERCALL";
	case HVSIM_ABI_RESET: return "RESET";
	default: return "?";
	}
}

/*
 * Check the common reply header and result in the private copy `rep`.
 * Returns 0 for a success reply, the host's negative errno for a
 * well-formed error reply, or VMBUS_POSIX_GONE_PROTO (positive; logged).
 */
static int check_reply(struct vmbus_posix *p, const uint8_t *rep, size_t len,
		       uint16_t req_type, uint64_t seq, int *host_err)
{
	struct hvsim_abi_reply r;
	uint16_t type;
	int32_t result;

	*host_err = 0;
	if (len < sizeof(r)) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: %s reply of %zu bytes, need >= %zu",
			  type_name(req_type), len, sizeof(r));
		return VMBUS_POSIX_GONE_PROTO;
	}
	memcpy(&r, rep, sizeof(r));
	if (hv_le32(r.ar_hdr.ah_magic) != HVSIM_ABI_MAGIC) {
		posix_log(p, VMBUS_LOG_ERR, "partition: bad magic 0x%08x",
			  hv_le32(r.ar_hdr.ah_magic));
		return VMBUS_POSIX_GONE_PROTO;
	}
	type = hv_le16(r.ar_hdr.ah_type);
	if (type != (req_type | HVSIM_ABI_REPLY)) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: reply type 0x%04x to %s, want 0x%04x",
			  type, type_name(req_type),
			  req_type | HVSIM_ABI_REPLY);
		return VMBUS_POSIX_GONE_PROTO;
	}
	if (hv_le16(r.ar_hdr.ah_flags) != 0) {
		posix_log(p, VMBUS_LOG_ERR, "partition: reply flags 0x%04x",
			  hv_le16(r.ar_hdr.ah_flags));
		return VMBUS_POSIX_GONE_PROTO;
	}
	if (hv_le64(r.ar_hdr.ah_seq) != seq) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: %s reply seq %llu, want %llu",
			  type_name(req_type),
			  (unsigned long long)hv_le64(r.ar_hdr.ah_seq),
			  (unsigned long long)seq);
		return VMBUS_POSIX_GONE_PROTO;
	}
	result = (int32_t)hv_le32((uint32_t)r.ar_result);
	if (result == 0)
		return 0;
	if (result > 0 || result < -4095 || len != sizeof(r)) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: %s error reply result %d, %zu bytes",
			  type_name(req_type), (int)result, len);
		return VMBUS_POSIX_GONE_PROTO;
	}
	*host_err = result;
	return 0;
}

static void bad_reply(struct vmbus_posix *p)
{
	atomic_fetch_add(&p->st_bad_replies, 1);
}

/*
 * One request/reply exchange under pr_lock. `req` starts with a header that
 * is filled here. On return 0, rep[0..*rep_len) holds a reply whose header
 * and result were checked and whose length is want_len (or at least
 * want_len when `at_least`). Returns the host's negative errno for an error
 * reply, -VMBUS_ENODEV when the partition is (now) gone, -VMBUS_EPROTO when
 * this reply broke the ABI (the partition is then gone). A nonzero
 * mark_on_success marks the partition gone with that reason before pr_lock
 * is released, when the host answered with success.
 */
static int abi_call(struct vmbus_posix *p, void *req, size_t req_len,
		    uint16_t type, uint8_t *rep, size_t want_len, bool at_least,
		    size_t *rep_len, int mark_on_success)
{
	struct hvsim_abi_hdr h;
	uint64_t deadline;
	size_t len = 0, nfds = 0;
	int fds[1];
	int reason, host_err = 0, ret;

	pthread_mutex_lock(&p->pr_lock);
	if (atomic_load(&p->pr_gone) != VMBUS_POSIX_ALIVE) {
		pthread_mutex_unlock(&p->pr_lock);
		return -VMBUS_ENODEV;
	}
	h.ah_magic = hv_cpu_to_le32(HVSIM_ABI_MAGIC);
	h.ah_type = hv_cpu_to_le16(type);
	h.ah_flags = 0;
	h.ah_seq = hv_cpu_to_le64(++p->pr_seq);
	memcpy(req, &h, sizeof(h));

	deadline = request_deadline(p);
	reason = abi_send(p, req, req_len, deadline);
	if (reason == 0)
		reason = abi_recv(p, rep, HVSIM_ABI_MAX_DGRAM, &len, fds, 0,
				  &nfds, deadline);
	if (reason == 0)
		reason = check_reply(p, rep, len, type, p->pr_seq, &host_err);
	if (reason == 0 && host_err == 0 &&
	    (at_least ? len < want_len : len != want_len)) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: %s reply of %zu bytes, want %s%zu",
			  type_name(type), len, at_least ? ">= " : "",
			  want_len);
		reason = VMBUS_POSIX_GONE_PROTO;
	}
	if (reason != 0) {
		bool won = posix_mark_gone(p, reason);

		pthread_mutex_unlock(&p->pr_lock);
		if (reason == VMBUS_POSIX_GONE_PROTO)
			bad_reply(p);
		if (won)
			posix_gone_act(p);
		return reason == VMBUS_POSIX_GONE_PROTO ? -VMBUS_EPROTO
							: -VMBUS_ENODEV;
	}
	if (host_err == 0 && mark_on_success)
		(void)posix_mark_gone(p, mark_on_success);
	pthread_mutex_unlock(&p->pr_lock);
	if (host_err != 0) {
		ret = host_err;
		if (host_err == HVSIM_ABI_EPROTO)
			posix_log(p, VMBUS_LOG_ERR,
				  "partition: host says our %s was malformed",
				  type_name(type));
		return ret;
	}
	*rep_len = len;
	return 0;
}

/* A reply that passed abi_call but fails a type-specific check. */
static int abi_refuse(struct vmbus_posix *p)
{
	bad_reply(p);
	if (posix_mark_gone(p, VMBUS_POSIX_GONE_PROTO))
		posix_gone_act(p);
	return -VMBUS_EPROTO;
}

/* ------------------------------------------------------------------ */
/* HELLO / WELCOME                                                     */
/* ------------------------------------------------------------------ */

static int check_memfd(struct vmbus_posix *p, int fd, uint64_t need,
		       const char *what)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: %s fd is not a sealable memfd (%s)",
			  what, strerror(errno));
		return -VMBUS_EPROTO;
	}
	if ((seals & ABI_SEALS) != ABI_SEALS) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: %s memfd seals 0x%x lack "
			  "SHRINK|GROW|SEAL (0x%x)", what, seals, ABI_SEALS);
		return -VMBUS_EPROTO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size < need) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: %s memfd smaller than %llu bytes",
			  what, (unsigned long long)need);
		return -VMBUS_EPROTO;
	}
	return 0;
}

static int check_eventfd(struct vmbus_posix *p, int fd, const char *what,
			 uint32_t idx)
{
	char path[64], target[64];
	ssize_t n;
	int fl;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	/* Without /proc we cannot tell; the poll/read below stay safe. */
	if (n >= 0) {
		target[n] = '\0';
		if (strcmp(target, "anon_inode:[eventfd]") != 0) {
			posix_log(p, VMBUS_LOG_ERR,
				  "WELCOME refused: %s %u is not an eventfd "
				  "(%s)", what, idx, target);
			return -VMBUS_EPROTO;
		}
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		posix_log(p, VMBUS_LOG_WARN,
			  "WELCOME: %s %u is not EFD_NONBLOCK", what, idx);
	return 0;
}

static int welcome_refuse(struct vmbus_posix *p, int *fds, size_t nfds,
			  int err)
{
	close_fds(fds, nfds);
	bad_reply(p);
	(void)posix_mark_gone(p, err == -VMBUS_EPROTO ? VMBUS_POSIX_GONE_PROTO
						      : VMBUS_POSIX_GONE_IOERR);
	return err;
}

/* NOTE: no on_gone/exit during attach: create's caller gets the error. */
int posix_abi_attach(struct vmbus_posix *p, int fd, const char *name)
{
	uint8_t req[sizeof(struct hvsim_abi_hello)];
	uint8_t rep[HVSIM_ABI_MAX_DGRAM];
	struct hvsim_abi_welcome w;
	size_t name_len = name ? strlen(name) : 0, len = 0, nfds = 0;
	int fds[ABI_MAX_FDS];
	uint64_t deadline, ram_bytes;
	uint32_t vcpus, fd_count, version;
	int reason, host_err = 0, err;

	p->pr_sock = fd; /* owned from here: closed by teardown */
	if (name_len > HVSIM_ABI_MAX_NAME)
		return -VMBUS_EINVAL;
	memset(req, 0, sizeof(req));
	hv_put_le32(req + offsetof(struct hvsim_abi_hello, ahh_abi_version),
		    HVSIM_ABI_VERSION);
	hv_put_le32(req + offsetof(struct hvsim_abi_hello, ahh_name_len),
		    (uint32_t)name_len);
	if (name_len)
		memcpy(req + offsetof(struct hvsim_abi_hello, ahh_name), name,
		       name_len);
	hv_put_le32(req, HVSIM_ABI_MAGIC);
	hv_put_le16(req + 4, HVSIM_ABI_HELLO);
	hv_put_le16(req + 6, 0);
	hv_put_le64(req + 8, ++p->pr_seq);

	deadline = request_deadline(p);
	reason = abi_send(p, req, HVSIM_ABI_HELLO_MIN_LEN + name_len, deadline);
	if (reason == 0)
		reason = abi_recv(p, rep, sizeof(rep), &len, fds, ABI_MAX_FDS,
				  &nfds, deadline);
	if (reason != 0) {
		if (reason == VMBUS_POSIX_GONE_PROTO)
			bad_reply(p);
		(void)posix_mark_gone(p, reason);
		posix_log(p, VMBUS_LOG_ERR, "attach failed: no valid WELCOME");
		return reason == VMBUS_POSIX_GONE_PROTO ? -VMBUS_EPROTO
							: -VMBUS_ENODEV;
	}
	if (check_reply(p, rep, len, HVSIM_ABI_HELLO, p->pr_seq, &host_err))
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	if (host_err != 0) {
		posix_log(p, VMBUS_LOG_ERR, "WELCOME refused: host answered %d%s",
			  host_err, host_err == HVSIM_ABI_EOPNOTSUPP
					    ? " (abi_version 1 unsupported)"
					    : "");
		close_fds(fds, nfds);
		if (nfds)
			return welcome_refuse(p, NULL, 0, -VMBUS_EPROTO);
		(void)posix_mark_gone(p, VMBUS_POSIX_GONE_EOF);
		return host_err;
	}
	if (len != HVSIM_ABI_WELCOME_LEN) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: %zu bytes, want %u", len,
			  HVSIM_ABI_WELCOME_LEN);
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}
	memcpy(&w, rep, sizeof(w));
	version = hv_le32(w.aw_abi_version);
	vcpus = hv_le32(w.aw_vcpu_count);
	ram_bytes = hv_le64(w.aw_ram_bytes);
	fd_count = hv_le32(w.aw_fd_count);
	if (version != HVSIM_ABI_VERSION) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: abi_version %u, want %u", version,
			  HVSIM_ABI_VERSION);
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}
	if (vcpus < 1 || vcpus > HVSIM_ABI_MAX_VCPUS) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: vcpu_count %u not in 1..%u", vcpus,
			  HVSIM_ABI_MAX_VCPUS);
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}
	if (ram_bytes == 0 || ram_bytes % HVSIM_ABI_RAM_ALIGN != 0 ||
	    ram_bytes > (uint64_t)SIZE_MAX / 2) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: ram_bytes %llu not a nonzero "
			  "multiple of 2 MiB", (unsigned long long)ram_bytes);
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}
	if (fd_count != HVSIM_ABI_WELCOME_FIXED_FDS + vcpus) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: fd_count %u, want 3 + vcpu_count "
			  "%u = %u", fd_count, vcpus,
			  HVSIM_ABI_WELCOME_FIXED_FDS + vcpus);
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}
	if (nfds != fd_count) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME refused: %zu descriptors received, "
			  "fd_count says %u", nfds, fd_count);
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}

	err = check_memfd(p, fds[0], ram_bytes, "guest-RAM");
	if (!err)
		err = check_memfd(p, fds[1], HVSIM_ABI_SIGNAL_PAGE_BYTES,
				  "signal-page");
	if (!err)
		err = check_eventfd(p, fds[2], "signal eventfd", 0);
	for (uint32_t i = 0; !err && i < vcpus; i++)
		err = check_eventfd(p, fds[3 + i], "doorbell", i);
	if (err)
		return welcome_refuse(p, fds, nfds, err);

	p->pw_doorbell = calloc(vcpus, sizeof(int));
	if (!p->pw_doorbell)
		return welcome_refuse(p, fds, nfds, -VMBUS_ENOMEM);
	p->pw_ram = mmap(NULL, (size_t)ram_bytes, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fds[0], 0);
	if (p->pw_ram == MAP_FAILED) {
		posix_log(p, VMBUS_LOG_ERR, "WELCOME: cannot map guest RAM: %s",
			  strerror(errno));
		p->pw_ram = NULL;
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}
	p->pw_sigpage = mmap(NULL, HVSIM_ABI_SIGNAL_PAGE_BYTES,
			     PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (p->pw_sigpage == MAP_FAILED) {
		posix_log(p, VMBUS_LOG_ERR,
			  "WELCOME: cannot map the signal page: %s",
			  strerror(errno));
		p->pw_sigpage = NULL;
		return welcome_refuse(p, fds, nfds, -VMBUS_EPROTO);
	}
	/* The mappings keep the memory; the memfds are no longer needed. */
	close(fds[0]);
	close(fds[1]);
	p->pw_sig_efd = fds[2];
	for (uint32_t i = 0; i < vcpus; i++)
		p->pw_doorbell[i] = fds[3 + i];
	p->pw_vcpus = vcpus;
	p->pw_ram_bytes = ram_bytes;
	posix_log(p, VMBUS_LOG_INFO, "attached: %u vCPU(s), %llu MiB RAM",
		  vcpus, (unsigned long long)(ram_bytes >> 20));
	return 0;
}

void posix_abi_detach(struct vmbus_posix *p)
{
	if (p->pw_ram)
		munmap(p->pw_ram, (size_t)p->pw_ram_bytes);
	if (p->pw_sigpage)
		munmap(p->pw_sigpage, HVSIM_ABI_SIGNAL_PAGE_BYTES);
	p->pw_ram = p->pw_sigpage = NULL;
	if (p->pw_sig_efd >= 0)
		close(p->pw_sig_efd);
	p->pw_sig_efd = -1;
	if (p->pw_doorbell)
		close_fds(p->pw_doorbell, p->pw_vcpus);
	free(p->pw_doorbell);
	p->pw_doorbell = NULL;
	if (p->pr_sock >= 0)
		close(p->pr_sock);
	p->pr_sock = -1;
}

/* ------------------------------------------------------------------ */
/* MSRs                                                                */
/* ------------------------------------------------------------------ */

int posix_rdmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t *value)
{
	struct vmbus_posix *p = ctx;
	uint8_t req[sizeof(struct hvsim_abi_rdmsr)];
	uint8_t rep[HVSIM_ABI_MAX_DGRAM];
	size_t len;
	int err;

	if (!value)
		return -VMBUS_EINVAL;
	hv_put_le32(req + offsetof(struct hvsim_abi_rdmsr, arm_vp), vp);
	hv_put_le32(req + offsetof(struct hvsim_abi_rdmsr, arm_msr), msr);
	err = abi_call(p, req, HVSIM_ABI_RDMSR_LEN, HVSIM_ABI_RDMSR, rep,
		       HVSIM_ABI_MSR_REPLY_LEN, false, &len, 0);
	if (err)
		return err;
	*value = hv_get_le64(rep + offsetof(struct hvsim_abi_msr_reply,
					    amr_value));
	return 0;
}

int posix_wrmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t value)
{
	struct vmbus_posix *p = ctx;
	uint8_t req[sizeof(struct hvsim_abi_wrmsr)];
	uint8_t rep[HVSIM_ABI_MAX_DGRAM];
	uint64_t stored;
	size_t len;
	int err;

	hv_put_le32(req + offsetof(struct hvsim_abi_wrmsr, awm_vp), vp);
	hv_put_le32(req + offsetof(struct hvsim_abi_wrmsr, awm_msr), msr);
	hv_put_le64(req + offsetof(struct hvsim_abi_wrmsr, awm_value), value);
	err = abi_call(p, req, HVSIM_ABI_WRMSR_LEN, HVSIM_ABI_WRMSR, rep,
		       HVSIM_ABI_MSR_REPLY_LEN, false, &len, 0);
	if (err)
		return err;
	stored = hv_get_le64(rep + offsetof(struct hvsim_abi_msr_reply,
					    amr_value));
	/* Shadow what gates hypercalls, so the signal-page shortcut answers
	 * exactly as the host would before they are enabled. */
	if (msr == HV_X64_MSR_GUEST_OS_ID)
		atomic_store(&p->ps_guest_os_id, stored);
	else if (msr == HV_X64_MSR_HYPERCALL)
		atomic_store(&p->ps_hypercall_msr, stored);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Hypercalls and the signal page                                      */
/* ------------------------------------------------------------------ */

/*
 * HvSignalEvent through the signal page (DESIGN.md "The signal page"):
 * atomic OR (release) of bit id % 64 into the little-endian u64 word
 * id / 64, then write 1 to the signal eventfd.
 */
static int signal_page(struct vmbus_posix *p, uint32_t connid)
{
	_Atomic uint64_t *word =
		(_Atomic uint64_t *)(void *)(p->pw_sigpage + 8u * (connid / 64u));
	uint64_t one = 1;
	ssize_t n;

	/* The OR is bytewise, so OR-ing the LE image works on any host. */
	atomic_fetch_or_explicit(word, hv_cpu_to_le64(UINT64_C(1)
						      << (connid % 64u)),
				 memory_order_release);
	/* NOTE: the bit is set before the eventfd write: the host reads the
	 * eventfd first, then exchanges the words. */
	do {
		n = write(p->pw_sig_efd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	/* EAGAIN: the counter is saturated, so the host is woken anyway. */
	if (n < 0 && errno != EAGAIN)
		posix_log(p, VMBUS_LOG_WARN, "signal eventfd write: %s",
			  strerror(errno));
	atomic_fetch_add(&p->st_signals, 1);
	return 0;
}

static bool hypercalls_enabled(struct vmbus_posix *p)
{
	return atomic_load(&p->ps_guest_os_id) != 0 &&
	       (atomic_load(&p->ps_hypercall_msr) & HV_HYPERCALL_ENABLE);
}

int posix_hypercall(void *ctx, uint32_t vp, uint64_t control, const void *in,
		    uint32_t in_len, void *out, uint32_t out_len,
		    uint64_t *result)
{
	struct vmbus_posix *p = ctx;
	uint8_t req[sizeof(struct hvsim_abi_hypercall) + HVSIM_ABI_MAX_HC_INPUT];
	uint8_t rep[HVSIM_ABI_MAX_DGRAM];
	bool fast = (control & HV_HYPERCALL_FAST) != 0;
	uint32_t send_len = in_len, out_got;
	size_t len;
	int err;

	if (!result || (in_len && !in) || (out_len && !out) ||
	    in_len > HVSIM_ABI_MAX_HC_INPUT || (fast && in_len > 16))
		return -VMBUS_EINVAL;
	if (atomic_load(&p->pr_gone) != VMBUS_POSIX_ALIVE)
		return -VMBUS_ENODEV;

	/* A fast call passes RDX then R8, zero-extended here. */
	if (fast)
		send_len = 16;
	memset(req + sizeof(struct hvsim_abi_hypercall), 0, send_len);
	if (in_len)
		memcpy(req + sizeof(struct hvsim_abi_hypercall), in, in_len);

	/* The signal-page path: exactly HvSignalEvent (no rep count, no
	 * variable header), flag 0, connection id below 32768. The input
	 * layout (connection id u32, flag u16, reserved u16) is the same as
	 * RDX for the fast form. Anything else goes to the host. */
	if ((control & ~HV_HYPERCALL_FAST) == HV_CALL_SIGNAL_EVENT &&
	    send_len >= 8 && hypercalls_enabled(p) && p->pw_sigpage) {
		const uint8_t *b = req + sizeof(struct hvsim_abi_hypercall);
		uint32_t connid = hv_get_le32(b);
		uint16_t flag = hv_get_le16(b + 4);
		uint16_t rsvd = hv_get_le16(b + 6);

		if (flag == 0 && rsvd == 0 &&
		    connid < HVSIM_ABI_SIGNAL_MAX_CONNID) {
			if (out_len)
				memset(out, 0, out_len);
			*result = HV_STATUS_SUCCESS;
			return signal_page(p, connid);
		}
	}

	hv_put_le32(req + offsetof(struct hvsim_abi_hypercall, ahc_vp), vp);
	hv_put_le32(req + offsetof(struct hvsim_abi_hypercall, ahc_input_len),
		    send_len);
	hv_put_le64(req + offsetof(struct hvsim_abi_hypercall, ahc_control),
		    control);
	atomic_fetch_add(&p->st_hypercalls, 1);
	err = abi_call(p, req, HVSIM_ABI_HYPERCALL_LEN + send_len,
		       HVSIM_ABI_HYPERCALL, rep, HVSIM_ABI_HC_REPLY_LEN, true,
		       &len, 0);
	if (err)
		return err;
	out_got = hv_get_le32(rep + offsetof(struct hvsim_abi_hypercall_reply,
					     ahr_output_len));
	if ((uint64_t)out_got + sizeof(struct hvsim_abi_hypercall_reply) !=
	    len) {
		posix_log(p, VMBUS_LOG_ERR,
			  "partition: HYPERCALL reply output_len %u in %zu "
			  "bytes", out_got, len);
		return abi_refuse(p);
	}
	if (out_len) {
		uint32_t n = out_got < out_len ? out_got : out_len;

		memcpy(out, rep + sizeof(struct hvsim_abi_hypercall_reply), n);
		memset((uint8_t *)out + n, 0, out_len - n);
	}
	*result = hv_get_le64(rep + offsetof(struct hvsim_abi_hypercall_reply,
					     ahr_result));
	return 0;
}

/* ------------------------------------------------------------------ */
/* RESET                                                               */
/* ------------------------------------------------------------------ */

int vmbus_posix_reset(struct vmbus_posix *p, uint32_t kind)
{
	uint8_t req[sizeof(struct hvsim_abi_reset)];
	uint8_t rep[HVSIM_ABI_MAX_DGRAM];
	size_t len;
	int err;

	_Static_assert(HVSIM_ABI_RESET_LEN <= sizeof(req), "RESET fits");
	if (kind != HVSIM_RESET_POWER_OFF && kind != HVSIM_RESET_REBOOT)
		return -VMBUS_EINVAL;
	memset(req, 0, sizeof(req));
	hv_put_le32(req + offsetof(struct hvsim_abi_reset, ars_kind), kind);
	/* NOTE: the partition is marked gone under pr_lock together with the
	 * exchange, so the watchdog's EOF (the host tears down right after
	 * replying) cannot win and run the gone action instead. */
	/* NOTE: exactly 20 bytes on the wire, not the struct's padded size. */
	err = abi_call(p, req, HVSIM_ABI_RESET_LEN, HVSIM_ABI_RESET, rep,
		       HVSIM_ABI_RESET_REPLY_LEN, false, &len,
		       VMBUS_POSIX_GONE_RESET);
	if (err)
		return err;
	posix_log(p, VMBUS_LOG_INFO, "RESET %s answered",
		  kind == HVSIM_RESET_REBOOT ? "reboot" : "power off");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Watchdog                                                            */
/* ------------------------------------------------------------------ */

static void *watchdog_main(void *arg)
{
	struct vmbus_posix *p = arg;

	while (atomic_load(&p->pr_gone) == VMBUS_POSIX_ALIVE) {
		/* events 0: only POLLHUP/POLLERR, never a reply in flight. */
		struct pollfd pfd[2] = {
			{ .fd = p->pr_sock, .events = 0 },
			{ .fd = p->pg_stop_efd, .events = POLLIN },
		};
		int r = poll(pfd, 2, 1000);

		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL)))
			continue;
		/* A request in flight will see the EOF itself (after reading
		 * a reply that may still be queued); only act when idle. */
		if (pthread_mutex_trylock(&p->pr_lock) != 0) {
			struct pollfd s = { .fd = p->pg_stop_efd,
					    .events = POLLIN };
			if (poll(&s, 1, 10) > 0)
				break;
			continue;
		}
		{
			bool won = posix_mark_gone(p, VMBUS_POSIX_GONE_EOF);

			pthread_mutex_unlock(&p->pr_lock);
			if (won)
				posix_gone_act(p);
		}
		break;
	}
	return NULL;
}

int posix_watchdog_start(struct vmbus_posix *p)
{
	if (pthread_create(&p->pg_thread, NULL, watchdog_main, p) != 0)
		return -VMBUS_ENOMEM;
	p->pg_started = true;
	return 0;
}

void posix_watchdog_stop(struct vmbus_posix *p)
{
	uint64_t one = 1;

	if (!p->pg_started)
		return;
	if (write(p->pg_stop_efd, &one, sizeof(one)) < 0)
		posix_log(p, VMBUS_LOG_WARN, "watchdog stop: %s",
			  strerror(errno));
	pthread_join(p->pg_thread, NULL);
	p->pg_started = false;
}
