/*
 * fuzz_host_abi - the host partition's parsing of what the guest sends
 * (src/host/partition.c): ABI request datagrams (HELLO, WRMSR, RDMSR,
 * HYPERCALL with HvPostMessage / HvSignalEvent inputs, RESET, anything
 * else), descriptors a guest should not send, truncated datagrams, the
 * signal page, and guest RAM the guest scribbles on (SIMP slot headers the
 * host CASes, SIEF words). A stub client stands in for the VMBus server
 * and, when asked, answers posts with SynIC messages and events, so the
 * delivery and pending/EOM paths run against the fuzzed slots.
 *
 * Input: cfg u8 (bits 0-1: vCPUs - 1; bit 2: the first datagram arrives
 * as hvs_partition_config.first_dgram, as in HVSIM_SOCKET mode; bit 3: the
 * stub posts a message back for every HvPostMessage; bits 4-5: message
 * queue limit 32/64/128/256), then records [kind u8][len u16][len bytes]:
 *   kind&7 = 0  a request datagram (kind bit 3: with an eventfd attached;
 *               bit 4: padded to 8193 bytes, i.e. truncated)
 *            1  guest writes RAM: u32 offset, then the bytes
 *            2  guest signals: u16 connection id (signal page + eventfd)
 *            3  host posts: u8 vp, u8 sint, u32 type, then the payload
 *            4  host event: u8 vp, u8 sint, u16 flag
 *            5  the stub's HvPostMessage / HvSignalEvent status: u16
 *            6  host ends the partition (u8 kind)
 *
 * Oracles: every request datagram is answered exactly once, in order,
 * with a well-formed reply (magic, type | 0x8000, echoed seq, a result of
 * 0/-22/-34/-71/-95, the length of its type, fds only on WELCOME and then
 * exactly 3 + vcpus), unless the partition ended; no descriptor leaks.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/log.h"
#include "host/loop.h"
#include "host/partition_host.h"
#include "hv/hvsim_abi.h"
#include "hv/tlfs.h"

#define RAM_BYTES (2u << 20)
#define MAX_PENDING 256

struct hs {
	struct hvs_partition *p;
	struct hvs_loop *loop;
	int sock;
	uint32_t vcpus;
	bool echo;
	uint16_t status;
	bool ended;
	/* requests not answered yet: type and seq */
	uint16_t pend_type[MAX_PENDING];
	uint64_t pend_seq[MAX_PENDING];
	unsigned npend, head;
	/* what WELCOME gave us */
	uint8_t *ram;
	uint64_t *sig;
	int sig_efd;
	bool verbose;
};

static struct hs g;

static uint16_t op_post(void *arg, uint32_t vp, uint32_t connid,
			uint32_t type, const void *payload, uint32_t len)
{
	struct hs *h = arg;

	(void)connid;
	FZ_CHECK(len <= HV_MESSAGE_PAYLOAD_MAX, "post of %u bytes", len);
	FZ_CHECK(vp < h->vcpus, "post on vp %u", vp);
	if (h->echo)
		(void)hvs_partition_post_message(h->p, vp, VMBUS_MESSAGE_SINT,
						 type ? type : 1, payload, len);
	return h->status;
}

static uint16_t op_signal(void *arg, uint32_t connid, uint16_t flag)
{
	struct hs *h = arg;

	if (h->echo)
		(void)hvs_partition_signal_event(h->p, 0, VMBUS_MESSAGE_SINT,
						 (connid + flag) % 2048u);
	return h->status;
}

static void op_ended(void *arg, int kind)
{
	struct hs *h = arg;

	(void)kind;
	FZ_CHECK(!h->ended, "ended twice");
	h->ended = true;
}

static const struct hvs_partition_ops ops = {
	.post_message = op_post,
	.signal_event = op_signal,
	.ended = op_ended,
};

static void sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	if (g.verbose)
		fprintf(stderr, "[host %d] %s\n", level, line);
}

static void note_request(const uint8_t *b, size_t len)
{
	unsigned i;

	if (len < sizeof(struct hvsim_abi_hdr) || g.npend >= MAX_PENDING)
		return;
	i = (g.head + g.npend++) % MAX_PENDING;
	g.pend_type[i] = hv_get_le16(b + 4);
	g.pend_seq[i] = hv_get_le64(b + 8);
}

static size_t reply_len(uint16_t type, const uint8_t *b, size_t len)
{
	switch (type) {
	case HVSIM_ABI_WELCOME: return HVSIM_ABI_WELCOME_LEN;
	case HVSIM_ABI_WRMSR | HVSIM_ABI_REPLY:
	case HVSIM_ABI_RDMSR | HVSIM_ABI_REPLY: return HVSIM_ABI_MSR_REPLY_LEN;
	case HVSIM_ABI_HYPERCALL | HVSIM_ABI_REPLY:
		return len >= 40 ? 40u + hv_get_le32(b + 32) : 40u;
	default: return HVSIM_ABI_RESET_REPLY_LEN;
	}
}

static void map_welcome(const int *fds, size_t n)
{
	void *m;

	FZ_CHECK(n == HVSIM_ABI_WELCOME_FIXED_FDS + g.vcpus,
		 "WELCOME with %zu fds for %u vcpus", n, g.vcpus);
	if (g.ram == NULL) {
		m = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fds[0], 0);
		if (m != MAP_FAILED)
			g.ram = m;
		m = mmap(NULL, HVSIM_ABI_SIGNAL_PAGE_BYTES,
			 PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
		if (m != MAP_FAILED)
			g.sig = m;
		g.sig_efd = dup(fds[2]);
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Read every reply the host sent and check it against the requests. */
static void drain_replies(void)
{
	static uint8_t b[HVSIM_ABI_MAX_DGRAM + 16];

	for (;;) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 260)];
		} cm;
		struct iovec iov = { b, sizeof(b) };
		struct msghdr mh;
		int fds[260];
		size_t nfds = 0;
		ssize_t n;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		n = recvmsg(g.sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
		     c = CMSG_NXTHDR(&mh, c)) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < k && nfds < 260; i++)
				memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
		}
		FZ_CHECK(g.npend > 0, "unsolicited reply of %zd bytes", n);
		FZ_CHECK(!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)),
			 "reply truncated");
		FZ_CHECK(n >= (ssize_t)sizeof(struct hvsim_abi_reply),
			 "reply of %zd bytes", n);
		uint16_t want = (uint16_t)(g.pend_type[g.head] | HVSIM_ABI_REPLY);
		uint16_t type = hv_get_le16(b + 4);
		int32_t result = (int32_t)hv_get_le32(b + 16);

		FZ_CHECK(hv_get_le32(b) == HVSIM_ABI_MAGIC, "reply magic");
		FZ_CHECK(type == want, "reply type 0x%x to request 0x%x", type,
			 g.pend_type[g.head]);
		FZ_CHECK(hv_get_le16(b + 6) == 0, "reply flags");
		FZ_CHECK(hv_get_le64(b + 8) == g.pend_seq[g.head],
			 "reply seq %llu, want %llu",
			 (unsigned long long)hv_get_le64(b + 8),
			 (unsigned long long)g.pend_seq[g.head]);
		FZ_CHECK(result == 0 || result == HVSIM_ABI_EINVAL ||
			 result == HVSIM_ABI_ERANGE || result == HVSIM_ABI_EPROTO ||
			 result == HVSIM_ABI_EOPNOTSUPP, "result %d", result);
		FZ_CHECK(hv_get_le32(b + 20) == 0, "reserved not zero");
		if (result != 0)
			FZ_CHECK(n == HVSIM_ABI_ERROR_REPLY_LEN,
				 "error reply of %zd bytes", n);
		else
			FZ_CHECK((size_t)n == reply_len(type, b, (size_t)n),
				 "reply 0x%x of %zd bytes", type, n);
		if (type == HVSIM_ABI_WELCOME && result == 0)
			map_welcome(fds, nfds);
		else
			FZ_CHECK(nfds == 0, "fds on reply 0x%x", type);
		g.head = (g.head + 1) % MAX_PENDING;
		g.npend--;
	}
}

static void settle(void)
{
	struct hvs_partition_stats st;

	for (int i = 0; i < 64; i++) {
		drain_replies();
		if (hvs_loop_run_once(g.loop, 0) <= 0)
			break;
	}
	drain_replies();
	hvs_partition_get_stats(g.p, &st);
	if (st.ps_state == HVS_PART_ENDED) {
		g.npend = 0;	/* no answers owed any more */
		return;
	}
	/* Never a request left unanswered by a running partition. */
	FZ_CHECK(g.npend == 0, "%u requests unanswered", g.npend);
}

static void send_dgram(uint8_t kind, const uint8_t *d, uint16_t len)
{
	static uint8_t big[HVSIM_ABI_MAX_DGRAM + 1];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { (void *)(uintptr_t)d, len };
	struct msghdr mh;
	int efd = -1;

	if (kind & 0x10) {
		memset(big, 0, sizeof(big));
		memcpy(big, d, len < sizeof(big) ? len : sizeof(big));
		iov.iov_base = big;
		iov.iov_len = sizeof(big);
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	/* Any datagram may carry an fd, a 0-byte one too (the host once
	 * leaked it: corpus/host_abi/regress-zero-length-dgram-fd-leak). */
	if (kind & 8) {
		struct cmsghdr *c;

		efd = eventfd(0, EFD_CLOEXEC);
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &efd, sizeof(int));
	}
	/* A truncated datagram is still answered (-EPROTO, its header as
	 * the host read it). */
	if (sendmsg(g.sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		note_request(iov.iov_base, iov.iov_len);
	if (efd >= 0)
		close(efd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvs_partition_config cfg;
	int fds_before = fz_count_fds(), sv[2];
	struct fz f;
	uint8_t c;

	memset(&g, 0, sizeof(g));
	g.verbose = getenv("FUZZ_VERBOSE") != NULL;
	g.sig_efd = -1;
	hvs_log_set_sink(sink, NULL);
	fz_init(&f, data, size);
	c = fz_u8(&f);
	g.vcpus = 1u + (c & 3u);
	g.echo = (c & 8) != 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	g.sock = sv[0];
	g.loop = hvs_loop_create();
	if (g.loop == NULL)
		abort();
	memset(&cfg, 0, sizeof(cfg));
	cfg.name = "fz";
	cfg.vcpus = g.vcpus;
	cfg.ram_bytes = RAM_BYTES;
	cfg.ops = &ops;
	cfg.ops_arg = &g;
	cfg.sock_fd = sv[1];
	cfg.msgq_limit = 32u << ((c >> 4) & 3u);

	/* HVSIM_SOCKET mode: the host already read the first datagram. */
	uint8_t first[HVSIM_ABI_MAX_DGRAM];
	if ((c & 4) && fz_left(&f) >= 3) {
		(void)fz_u8(&f);
		uint16_t len = fz_u16(&f);
		if (len > HVSIM_ABI_MAX_DGRAM)
			len = HVSIM_ABI_MAX_DGRAM;
		len = (uint16_t)fz_bytes(&f, first, len);
		cfg.first_dgram = first;
		cfg.first_len = len;
		note_request(first, len);
	}
	if (hvs_partition_create(g.loop, &cfg, &g.p) != 0) {
		close(sv[1]);
		goto out;
	}
	settle();

	for (unsigned steps = 0; fz_left(&f) >= 3 && steps < 64; steps++) {
		uint8_t kind = fz_u8(&f);
		uint16_t len = fz_u16(&f);
		uint8_t buf[HVSIM_ABI_MAX_DGRAM];

		switch (kind & 7) {
		case 0:
			if (len > HVSIM_ABI_MAX_DGRAM)
				len = HVSIM_ABI_MAX_DGRAM;
			len = (uint16_t)fz_bytes(&f, buf, len);
			send_dgram(kind, buf, len);
			break;
		case 1: {
			uint32_t off = fz_u32(&f);

			if (len > 4096)
				len = 4096;
			len = (uint16_t)fz_bytes(&f, buf, len);
			if (g.ram != NULL && len)
				memcpy(g.ram + off % (RAM_BYTES - len), buf, len);
			break;
		}
		case 2: {
			uint32_t id = len % HVSIM_ABI_SIGNAL_MAX_CONNID;
			uint64_t one = 1;

			if (g.sig != NULL) {
				__atomic_fetch_or(&g.sig[id / 64],
						  hv_cpu_to_le64(1ull << (id % 64)),
						  __ATOMIC_RELEASE);
				if (write(g.sig_efd, &one, sizeof(one)) < 0)
					break;
			}
			break;
		}
		case 3: {
			uint8_t vp = fz_u8(&f), sint = fz_u8(&f);
			uint32_t type = fz_u32(&f);

			if (len > HV_MESSAGE_PAYLOAD_MAX + 8)
				len = HV_MESSAGE_PAYLOAD_MAX + 8;
			len = (uint16_t)fz_bytes(&f, buf, len);
			(void)hvs_partition_post_message(g.p, vp, sint, type, buf,
							 len);
			break;
		}
		case 4:
			(void)hvs_partition_signal_event(g.p, len & 0xFF,
							 len >> 8, fz_u16(&f));
			break;
		case 5:
			g.status = len;
			break;
		case 6:
			hvs_partition_stop(g.p, len & 3);
			break;
		default:
			break;
		}
		settle();
	}
	if (g.verbose) {
		struct hvs_partition_stats st;

		hvs_partition_get_stats(g.p, &st);
		fprintf(stderr, "host_abi: state %d requests %llu malformed %llu "
			"posts %llu delivered %llu queued-max %u msgq_full %llu "
			"events %llu doorbells %llu signals %llu\n", st.ps_state,
			(unsigned long long)st.ps_requests,
			(unsigned long long)st.ps_malformed,
			(unsigned long long)st.ps_posts,
			(unsigned long long)st.ps_msgs_delivered, st.ps_msgq_max,
			(unsigned long long)st.ps_msgq_full,
			(unsigned long long)st.ps_events,
			(unsigned long long)st.ps_doorbells,
			(unsigned long long)st.ps_signals);
	}
	hvs_partition_destroy(g.p);
out:
	hvs_loop_destroy(g.loop);
	close(sv[0]);
	if (g.ram)
		munmap(g.ram, RAM_BYTES);
	if (g.sig)
		munmap(g.sig, HVSIM_ABI_SIGNAL_PAGE_BYTES);
	if (g.sig_efd >= 0)
		close(g.sig_efd);
	FZ_CHECK_FDS(fds_before);
	return 0;
}
