/*
 * fuzz_posix_abi - the posix port's parsing of the host's partition-ABI
 * replies (src/port/posix/posix_abi.c): WELCOME with its descriptors (the
 * memfd seals and sizes, the eventfds, fd_count), and the MSR, HYPERCALL
 * and RESET replies, each checked for magic, type, flags, seq echo,
 * length, result and output_len. The fuzzer plays the host on the other
 * end of a SOCK_SEQPACKET socketpair: every reply datagram is queued before
 * the port runs, then the port's public calls (vmbus_posix_create and the
 * platform table) each send one request and read one reply.
 *
 * Input: records [kind u8][param u8][len u16][len bytes], one datagram
 * each, at most 48. The first is the reply to HELLO; each later one is the
 * reply to the request `kind` bits 0-1 choose (0 RDMSR, 1 WRMSR,
 * 2 HYPERCALL, 3 RESET; param picks MSR, vp and hypercall form). kind bits
 * 2-5: descriptors attached (0-15: guest-RAM memfd, signal-page memfd,
 * eventfds); bit 6: one of them is of the wrong kind (param bits 4-5:
 * a pipe, an unsealed memfd, a too small memfd, a socket; param bits 6-7:
 * which one); bit 7: the datagram is 8193 bytes (MSG_TRUNC).
 * param bit 0 in the first record: the guest-RAM memfd is 4 MiB, else 2.
 *
 * Oracles: no descriptor leaks (every fd the port was sent is closed by
 * destroy or on the refusal path), the port never blocks on a reply that
 * is not there (every request is answered by a queued datagram or fails
 * fast once the partition is gone), and RDMSR/HYPERCALL results only come
 * back for replies of the right shape.
 */
#include "fuzz_common.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv/hvsim_abi.h"
#include "hv/tlfs.h"
#include "vmbus/posix.h"

#define MAX_RECORDS 48
#define MAX_FDS     15

static const uint32_t msrs[16] = {
	HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL, HV_X64_MSR_VP_INDEX,
	HV_X64_MSR_TIME_REF_COUNT, HV_X64_MSR_SCONTROL, HV_X64_MSR_SVERSION,
	HV_X64_MSR_SIEFP, HV_X64_MSR_SIMP, HV_X64_MSR_EOM,
	HV_X64_MSR_SINT(2), HV_X64_MSR_SINT(15), HV_X64_MSR_CRASH_P0,
	HV_X64_MSR_CRASH_CTL, 0x40000070u, 0xC0000080u, 0,
};

struct rec {
	uint8_t kind, param;
	uint16_t len;
	const uint8_t *data;
	bool sent;
};

static bool g_verbose;

static void log_line(void *arg, int level, const char *line)
{
	(void)arg;
	if (g_verbose)
		fprintf(stderr, "[posix %d] %s\n", level, line);
}

static int memfd_of(size_t size, bool seal)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) != 0 ||
	    (seal && fcntl(fd, F_ADD_SEALS,
			   F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The odd descriptor: a pipe, an unsealed memfd, a small memfd, a socket. */
static int odd_fd(unsigned what)
{
	int p[2], s[2];

	switch (what & 3) {
	case 0:
		if (pipe2(p, O_CLOEXEC) != 0)
			return -1;
		close(p[1]);
		return p[0];
	case 1:
		return memfd_of(2u << 20, false);
	case 2:
		return memfd_of(4096, true);
	default:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0)
			return -1;
		close(s[1]);
		return s[0];
	}
}

/* Queue one datagram on the host end; false if the socket is full. */
static bool send_rec(int hfd, const struct rec *r, bool first)
{
	static uint8_t big[HVSIM_ABI_MAX_DGRAM + 1];
	unsigned nfds = (r->kind >> 2) & 15u;
	int fds[MAX_FDS];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	} cm;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	if (r->kind & 0x80) {
		memset(big, 0, sizeof(big));
		memcpy(big, r->data, r->len < sizeof(big) ? r->len : sizeof(big));
		iov.iov_base = big;
		iov.iov_len = sizeof(big);
	} else {
		iov.iov_base = (void *)(uintptr_t)r->data;
		iov.iov_len = r->len;
	}
	for (unsigned i = 0; i < nfds; i++) {
		if (i == 0)
			fds[i] = memfd_of((first && (r->param & 1)) ? 4u << 20
								    : 2u << 20,
					  true);
		else if (i == 1)
			fds[i] = memfd_of(HVSIM_ABI_SIGNAL_PAGE_BYTES, true);
		else
			fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	}
	if ((r->kind & 0x40) && nfds) {
		unsigned which = (r->param >> 6) % nfds;

		if (fds[which] >= 0)
			close(fds[which]);
		fds[which] = odd_fd(r->param >> 4);
	}
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] < 0) {
			for (unsigned k = 0; k < nfds; k++)
				if (fds[k] >= 0)
					close(fds[k]);
			return false;
		}
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	n = sendmsg(hfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	/* In flight, the kernel holds its own references. */
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	return n >= 0;
}

static void do_op(const struct vmbus_platform *pl, struct vmbus_posix *p,
		  const struct rec *r)
{
	uint32_t vp = (r->param >> 6) & 3u;
	uint64_t v = 0, result = 0;
	uint8_t in[16 + 240], out[32];
	int rc;

	switch (r->kind & 3) {
	case 0:
		rc = pl->rdmsr(pl->ctx, vp, msrs[r->param & 15], &v);
		FZ_CHECK(rc <= 0, "rdmsr returned %d", rc);
		if (g_verbose)
			fprintf(stderr, "rdmsr: %d 0x%llx\n", rc,
				(unsigned long long)v);
		break;
	case 1:
		rc = pl->wrmsr(pl->ctx, vp, msrs[r->param & 15],
			       (uint64_t)r->param << 12 | 1u);
		FZ_CHECK(rc <= 0, "wrmsr returned %d", rc);
		break;
	case 2:
		memset(in, 0, sizeof(in));
		switch ((r->param >> 4) & 3) {
		case 0: /* HvPostMessage, 24-byte payload */
			hv_put_le32(in, 1);
			hv_put_le32(in + 8, 1);
			hv_put_le32(in + 12, 24);
			rc = pl->hypercall(pl->ctx, vp, HV_CALL_POST_MESSAGE, in,
					   40, NULL, 0, &result);
			break;
		case 1: /* HvSignalEvent the host must see (id >= 32768) */
			hv_put_le32(in, 40000u + r->param);
			rc = pl->hypercall(pl->ctx, vp, HV_CALL_SIGNAL_EVENT, in,
					   8, NULL, 0, &result);
			break;
		case 2: /* fast form with a flag number */
			hv_put_le32(in, 5);
			hv_put_le16(in + 4, 1);
			rc = pl->hypercall(pl->ctx, vp,
					   HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
					   in, 8, NULL, 0, &result);
			break;
		default: /* an unknown call with an output buffer */
			rc = pl->hypercall(pl->ctx, vp, 0x99, in, 16, out,
					   sizeof(out), &result);
			break;
		}
		FZ_CHECK(rc <= 0, "hypercall returned %d", rc);
		if (g_verbose)
			fprintf(stderr, "hypercall: %d 0x%llx\n", rc,
				(unsigned long long)result);
		break;
	default:
		rc = vmbus_posix_reset(p, r->param & 1u);
		FZ_CHECK(rc <= 0, "reset returned %d", rc);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec recs[MAX_RECORDS];
	struct vmbus_posix_options o;
	struct vmbus_platform pl;
	struct vmbus_posix *p = NULL;
	unsigned nrec = 0;
	int sv[2], fds_before = fz_count_fds();
	struct fz f;

	g_verbose = getenv("FUZZ_VERBOSE") != NULL;
	fz_init(&f, data, size);
	while (fz_left(&f) >= 4 && nrec < MAX_RECORDS) {
		struct rec *r = &recs[nrec++];
		uint16_t len;

		r->kind = fz_u8(&f);
		r->param = fz_u8(&f);
		len = fz_u16(&f);
		if (len > fz_left(&f))
			len = (uint16_t)fz_left(&f);
		if (len > HVSIM_ABI_MAX_DGRAM)
			len = HVSIM_ABI_MAX_DGRAM;
		r->len = len;
		r->data = f.p;
		r->sent = false;
		f.p += len;
		f.n -= len;
	}

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	{
		int big = 1 << 20;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	}
	for (unsigned i = 0; i < nrec; i++) {
		recs[i].sent = send_rec(sv[0], &recs[i], i == 0);
		if (!recs[i].sent)
			break;
	}
	if (nrec == 0 || !recs[0].sent) {
		/* No WELCOME at all: the host hangs up (EOF, not a timeout). */
		close(sv[0]);
		sv[0] = -1;
	}

	vmbus_posix_options_init(&o);
	o.po_fd = sv[1];
	o.po_gone_action = VMBUS_POSIX_GONE_FAIL;
	o.po_polled = 1;
	o.po_log_level = VMBUS_LOG_DEBUG;
	o.po_log_fn = log_line;
	o.po_time_scale = 1;
	/* A safety net only: every request has its reply queued. */
	o.po_request_timeout_ns = 2000000000ull;
	if (vmbus_posix_create(&o, &pl, &p) == 0) {
		uint64_t pfn[2], gpa = 0;
		void *va = pl.page_alloc(pl.ctx, 2, pfn);

		if (va != NULL) {
			FZ_CHECK(pfn[0] != 0 && pfn[1] == pfn[0] + 1,
				 "page_alloc PFNs 0x%llx 0x%llx",
				 (unsigned long long)pfn[0],
				 (unsigned long long)pfn[1]);
			FZ_CHECK(pl.virt_to_gpa(pl.ctx, va, &gpa) == 0 &&
				 gpa == pfn[0] << 12, "virt_to_gpa");
			memset(va, 0xa5, 2 * 4096);
			(void)pl.page_free(pl.ctx, va, 2);
		}
		for (unsigned i = 1; i < nrec && recs[i].sent; i++)
			do_op(&pl, p, &recs[i]);
		vmbus_posix_destroy(p);
	}
	if (sv[0] >= 0)
		close(sv[0]);
	/* Nothing left open: the port's end, the fds it was sent. */
	FZ_CHECK_FDS(fds_before);
	return 0;
}
