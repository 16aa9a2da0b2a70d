/*
 * tools/hvguest/hvg_nbd.c - an NBD server (the fixed newstyle handshake of
 * the NBD protocol, simple replies) on lwIP's raw TCP API, serving the
 * first StorVSC disk through the asynchronous disk API.
 *
 * Handshake: NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO (NBD_INFO_EXPORT,
 * NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME, NBD_INFO_DESCRIPTION), NBD_OPT_LIST,
 * NBD_OPT_ABORT; every other option is answered NBD_REP_ERR_UNSUP (so
 * clients fall back to simple replies). The export is "disk0" (also the
 * default name ""). Transmission: NBD_CMD_READ, WRITE, FLUSH, TRIM (when
 * the disk does UNMAP), DISC; others are answered EINVAL.
 *
 * Everything the client sends is bounded: option data at most 4 KiB (up to
 * 1 MiB is skipped and answered NBD_REP_ERR_TOO_BIG, beyond that the
 * connection is closed), request lengths at most 32 MiB (the maximum block
 * size we advertise, TRIM excepted; a longer WRITE cannot be skipped
 * safely and closes the connection), offsets and lengths must be block
 * aligned and inside the disk. At most 8 connections; a handshake must finish within 30 s.
 *
 * Concurrency: up to 16 requests (and 16 MiB of buffers, or one larger
 * request alone) per connection are in flight at once; each is one
 * storvsc_submit of a page-allocated buffer, completed from the port's
 * interrupt thread, handed to the tcpip thread (a tcpip callback message,
 * and a 200 ms timer as a fallback) and answered in completion order, as
 * NBD allows. Received bytes go through a 128 KiB ring per connection; the
 * TCP window is only opened for what was consumed, so a client that sends
 * faster than the disk is slowed down by TCP itself.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "lwip/timeouts.h"

#include "hvg_net.h"
#include "hvguest.h"
#include "vmbus/storvsc.h"

/* ---- protocol constants (the NBD protocol document) ---- */

#define NBD_MAGIC		0x4e42444d41474943ull	/* "NBDMAGIC" */
#define NBD_IHAVEOPT		0x49484156454F5054ull	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC	0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u

#define NBD_FLAG_FIXED_NEWSTYLE	0x0001u		/* handshake flags */
#define NBD_FLAG_NO_ZEROES	0x0002u
#define NBD_FLAG_C_FIXED_NEWSTYLE 0x00000001u	/* client flags */
#define NBD_FLAG_C_NO_ZEROES	0x00000002u

#define NBD_OPT_EXPORT_NAME	1u
#define NBD_OPT_ABORT		2u
#define NBD_OPT_LIST		3u
#define NBD_OPT_INFO		6u
#define NBD_OPT_GO		7u

#define NBD_REP_ACK		1u
#define NBD_REP_SERVER		2u
#define NBD_REP_INFO		3u
#define NBD_REP_ERR_UNSUP	0x80000001u
#define NBD_REP_ERR_INVALID	0x80000003u
#define NBD_REP_ERR_UNKNOWN	0x80000006u
#define NBD_REP_ERR_TOO_BIG	0x80000009u

#define NBD_INFO_EXPORT		0u
#define NBD_INFO_NAME		1u
#define NBD_INFO_DESCRIPTION	2u
#define NBD_INFO_BLOCK_SIZE	3u

#define NBD_FLAG_HAS_FLAGS	0x0001u		/* transmission flags */
#define NBD_FLAG_READ_ONLY	0x0002u
#define NBD_FLAG_SEND_FLUSH	0x0004u
#define NBD_FLAG_SEND_TRIM	0x0020u
#define NBD_FLAG_CAN_MULTI_CONN	0x0100u

#define NBD_CMD_READ		0u
#define NBD_CMD_WRITE		1u
#define NBD_CMD_DISC		2u
#define NBD_CMD_FLUSH		3u
#define NBD_CMD_TRIM		4u

#define NBD_EPERM		1u
#define NBD_EIO			5u
#define NBD_ENOMEM		12u
#define NBD_EINVAL		22u
#define NBD_ENOSPC		28u
#define NBD_ENOTSUP		95u

/* ---- our limits ---- */

#define EXPORT_NAME		"disk0"
#define OPT_MAX			4096u		/* option data we read */
#define OPT_SKIP_MAX		(1u << 20)	/* ... or skip */
#define REQ_MAX			(32u << 20)	/* maximum block size */
#define PREF_BLOCK		4096u
#define MAX_INFLIGHT		16u
#define MAX_HELD_BYTES		(16u << 20)
#define MAX_CONNS		8u
#define RING_BYTES		(128u << 10)
#define POLL_INTERVAL		2u		/* x 0.5 s */
#define HANDSHAKE_POLLS		30u		/* x 1 s */

enum nbd_st {
	ST_CFLAGS,		/* client flags (4) */
	ST_OPT_HDR,		/* IHAVEOPT, option, length (16) */
	ST_OPT_DATA,		/* option data */
	ST_OPT_SKIP,		/* option data too large: skipped */
	ST_REQ,			/* request header (28) */
	ST_WRITE_DATA,		/* a WRITE's payload */
	ST_CLOSING,		/* ABORT / DISC / error: no more input */
};

struct nbd_conn;

/* A piece of output: `small` bytes, then `data` (not owned). */
struct nbd_out {
	struct nbd_out *o_next;
	uint8_t  o_small[128];
	uint32_t o_small_len;
	const uint8_t *o_data;
	size_t   o_data_len;
	size_t   o_off;
	struct nbd_req *o_req;		/* freed once sent */
	bool     o_heap;		/* the nbd_out itself is malloc'd */
};

struct nbd_req {
	struct storvsc_io r_io;
	struct nbd_conn *r_conn;
	struct nbd_req *r_done_next;	/* completion list */
	uint64_t r_handle;
	uint64_t r_offset;
	uint32_t r_len;
	uint16_t r_type;
	uint32_t r_err;			/* NBD error to answer */
	uint8_t *r_buf;			/* storvsc_buf_alloc'd */
	size_t   r_buf_bytes;
	uint32_t r_got;			/* WRITE payload received */
	bool     r_leak;		/* the host may still use r_buf */
	struct nbd_out r_out;
};

struct nbd_conn {
	struct tcp_pcb *c_pcb;		/* NULL once lwIP dropped it */
	enum nbd_st c_st;
	uint8_t *c_ring;		/* RING_BYTES */
	uint32_t c_rhead, c_rlen;	/* unconsumed bytes */
	uint32_t c_unacked;		/* consumed, not yet tcp_recved */
	bool     c_no_zeroes;
	uint32_t c_opt, c_opt_len;
	uint8_t *c_opt_data;
	uint32_t c_skip;
	struct storvsc_disk *c_disk;	/* a reference, once exported */
	uint64_t c_size;
	uint32_t c_bs;
	uint16_t c_tflags;
	struct nbd_req *c_wreq;		/* receiving its payload */
	uint32_t c_reqs;		/* requests not yet answered */
	uint32_t c_submitted;		/* of those, in the driver */
	size_t   c_held;		/* buffer bytes of c_reqs */
	struct nbd_out *c_out_head, *c_out_tail;
	uint32_t c_polls;
	bool     c_transmission;
	bool     c_in_list;
};

static struct tcp_pcb *nbd_listener;
/* The last pcb conn_abort() aborted: an lwIP callback of that pcb must
 * return ERR_ABRT. */
static struct tcp_pcb *aborted;
static struct nbd_conn *conns[MAX_CONNS];
static struct tcpip_callback_msg *kick_msg;
static _Atomic bool kick_posted;
static bool timer_on;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nbd_req *done_head, *done_tail;
static struct {
	_Atomic uint64_t connections, active, requests, errors, rejected;
	_Atomic uint64_t bytes_read, bytes_written;
	_Atomic uint64_t max_inflight;
} st;

void hvg_nbd_get_stats(struct hvg_nbd_stats *o)
{
	o->nb_connections = atomic_load(&st.connections);
	o->nb_active = atomic_load(&st.active);
	o->nb_requests = atomic_load(&st.requests);
	o->nb_errors = atomic_load(&st.errors);
	o->nb_rejected = atomic_load(&st.rejected);
	o->nb_bytes_read = atomic_load(&st.bytes_read);
	o->nb_bytes_written = atomic_load(&st.bytes_written);
	o->nb_max_inflight = atomic_load(&st.max_inflight);
}

static void be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
	be16(p, (uint16_t)(v >> 16));
	be16(p + 2, (uint16_t)v);
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

/* ---- connection life ---- */

static void req_free(struct nbd_conn *c, struct nbd_req *r)
{
	if (r->r_buf != NULL && !r->r_leak)
		storvsc_buf_free(g.sv, r->r_buf, r->r_buf_bytes);
	c->c_held -= r->r_buf_bytes;
	c->c_reqs--;
	free(r);
}

/* Free a connection whose pcb is gone once the driver has no request of
 * it left. */
static void conn_maybe_free(struct nbd_conn *c)
{
	if (c->c_pcb != NULL || c->c_submitted != 0)
		return;
	while (c->c_out_head != NULL) {
		struct nbd_out *o = c->c_out_head;

		c->c_out_head = o->o_next;
		if (o->o_req != NULL)
			req_free(c, o->o_req);
		else if (o->o_heap)
			free(o);
	}
	if (c->c_wreq != NULL)
		req_free(c, c->c_wreq);
	for (uint32_t i = 0; i < MAX_CONNS; i++)
		if (conns[i] == c)
			conns[i] = NULL;
	if (c->c_disk != NULL)
		storvsc_disk_put(c->c_disk);
	free(c->c_opt_data);
	free(c->c_ring);
	free(c);
	atomic_fetch_sub(&st.active, 1);
}

/* Drop the pcb (abort: lwIP callers must then return ERR_ABRT). */
static void conn_abort(struct nbd_conn *c)
{
	struct tcp_pcb *pcb = c->c_pcb;

	if (pcb == NULL)
		return;
	c->c_pcb = NULL;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	aborted = pcb;
	tcp_abort(pcb);
	conn_maybe_free(c);
}

static err_t close_retry(void *arg, struct tcp_pcb *pcb)
{
	(void)arg;
	if (tcp_close(pcb) == ERR_OK)
		return ERR_OK;
	tcp_abort(pcb);
	return ERR_ABRT;
}

/* Orderly close once everything was answered and sent. */
static void conn_close(struct nbd_conn *c)
{
	struct tcp_pcb *pcb = c->c_pcb;

	if (pcb == NULL)
		return;
	c->c_pcb = NULL;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	if (tcp_close(pcb) != ERR_OK)
		tcp_poll(pcb, close_retry, 1);
	else
		tcp_poll(pcb, NULL, 0);
	conn_maybe_free(c);
}

/* ---- output ---- */

static void out_queue(struct nbd_conn *c, struct nbd_out *o)
{
	o->o_next = NULL;
	o->o_off = 0;
	if (c->c_out_tail != NULL)
		c->c_out_tail->o_next = o;
	else
		c->c_out_head = o;
	c->c_out_tail = o;
}

/* Small output (handshake): copied. */
static int out_bytes(struct nbd_conn *c, const void *a, uint32_t alen,
    const void *b, size_t blen)
{
	struct nbd_out *o = calloc(1, sizeof(*o) + blen);

	if (o == NULL || alen > sizeof(o->o_small)) {
		free(o);
		return -1;
	}
	memcpy(o->o_small, a, alen);
	o->o_small_len = alen;
	if (blen) {
		memcpy(o + 1, b, blen);
		o->o_data = (const uint8_t *)(o + 1);
		o->o_data_len = blen;
	}
	o->o_heap = true;
	out_queue(c, o);
	return 0;
}

static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type,
    const void *data, uint32_t len)
{
	uint8_t h[20];

	be64(h, NBD_REP_MAGIC);
	be32(h + 8, opt);
	be32(h + 12, type);
	be32(h + 16, len);
	return out_bytes(c, h, sizeof(h), data, len);
}

/* Write what lwIP takes. Returns false if the connection went away. */
static bool out_push(struct nbd_conn *c)
{
	bool wrote = false;

	while (c->c_pcb != NULL && c->c_out_head != NULL) {
		struct nbd_out *o = c->c_out_head;
		size_t total = o->o_small_len + o->o_data_len;

		while (o->o_off < total) {
			size_t room = tcp_sndbuf(c->c_pcb), n;
			const uint8_t *src;
			err_t e;

			if (o->o_off < o->o_small_len) {
				src = o->o_small + o->o_off;
				n = o->o_small_len - o->o_off;
			} else {
				src = o->o_data + (o->o_off - o->o_small_len);
				n = total - o->o_off;
			}
			if (n > room)
				n = room;
			if (n > 0xFFFF)
				n = 0xFFFF;
			if (n == 0)
				goto out;
			e = tcp_write(c->c_pcb, src, (u16_t)n,
			    TCP_WRITE_FLAG_COPY | (o->o_off + n < total ||
			    o->o_next ? TCP_WRITE_FLAG_MORE : 0));
			if (e == ERR_MEM)
				goto out;
			if (e != ERR_OK) {
				conn_abort(c);
				return false;
			}
			o->o_off += n;
			wrote = true;
		}
		c->c_out_head = o->o_next;
		if (c->c_out_head == NULL)
			c->c_out_tail = NULL;
		if (o->o_req != NULL)
			req_free(c, o->o_req);
		else if (o->o_heap)
			free(o);
	}
out:
	if (wrote && c->c_pcb != NULL)
		tcp_output(c->c_pcb);
	return c->c_pcb != NULL;
}

/* ---- input ring ---- */

static uint32_t avail(const struct nbd_conn *c)
{
	return c->c_rlen;
}

static void take(struct nbd_conn *c, void *dst, uint32_t n)
{
	uint32_t first = RING_BYTES - c->c_rhead;

	if (first > n)
		first = n;
	if (dst != NULL) {
		memcpy(dst, c->c_ring + c->c_rhead, first);
		memcpy((uint8_t *)dst + first, c->c_ring, n - first);
	}
	c->c_rhead = (c->c_rhead + n) % RING_BYTES;
	c->c_rlen -= n;
	c->c_unacked += n;
}

/* Open the TCP window for what we consumed. */
static void ack_consumed(struct nbd_conn *c)
{
	while (c->c_pcb != NULL && c->c_unacked > 0) {
		uint32_t n = c->c_unacked > 0xFFFF ? 0xFFFF : c->c_unacked;

		tcp_recved(c->c_pcb, (u16_t)n);
		c->c_unacked -= n;
	}
}

/* ---- handshake ---- */

static void log_client(struct nbd_conn *c, const char *what)
{
	char a[48] = "?";

	if (c->c_pcb != NULL)
		ipaddr_ntoa_r(&c->c_pcb->remote_ip, a, sizeof(a));
	hvg_event("nbd: %s: %s", a, what);
}

/* The export a name refers to: a reference to disk0, or NULL. */
static struct storvsc_disk *lookup(const uint8_t *name, uint32_t len,
    struct storvsc_disk_info *di)
{
	struct storvsc_disk *d;

	if (!(len == 0 || (len == sizeof(EXPORT_NAME) - 1 &&
	    memcmp(name, EXPORT_NAME, len) == 0)) || g.sv == NULL)
		return NULL;
	d = storvsc_disk_get(g.sv, 0);
	if (d == NULL)
		return NULL;
	if (storvsc_disk_info(d, di) != 0 || di->di_block_size == 0 ||
	    di->di_block_size > PREF_BLOCK * 16 || !di->di_present) {
		storvsc_disk_put(d);
		return NULL;
	}
	return d;
}

static void set_export(struct nbd_conn *c, struct storvsc_disk *d,
    const struct storvsc_disk_info *di)
{
	if (c->c_disk != NULL)
		storvsc_disk_put(c->c_disk);
	c->c_disk = d;
	c->c_bs = di->di_block_size;
	c->c_size = di->di_blocks * di->di_block_size;
	c->c_tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
	    NBD_FLAG_CAN_MULTI_CONN;
	if (di->di_write_protected)
		c->c_tflags |= NBD_FLAG_READ_ONLY;
	if (di->di_discard)
		c->c_tflags |= NBD_FLAG_SEND_TRIM;
}

static void start_transmission(struct nbd_conn *c)
{
	char line[96];

	c->c_transmission = true;
	c->c_st = ST_REQ;
	snprintf(line, sizeof(line), "serving \"%s\", %llu bytes%s",
	    EXPORT_NAME, (unsigned long long)c->c_size,
	    (c->c_tflags & NBD_FLAG_READ_ONLY) ? " (read-only)" : "");
	log_client(c, line);
}

/* NBD_OPT_INFO / NBD_OPT_GO: data is untrusted, checked in full. */
static void opt_info_go(struct nbd_conn *c, const uint8_t *d, uint32_t len)
{
	struct storvsc_disk_info di;
	struct storvsc_disk *disk;
	uint32_t nlen, nreq;
	bool want_name = false, want_desc = false;
	uint8_t b[32];

	if (len < 6 || (nlen = rd32(d)) > len - 6 ||
	    (nreq = rd16(d + 4 + nlen)) * 2u != len - 6 - nlen) {
		opt_reply(c, c->c_opt, NBD_REP_ERR_INVALID, NULL, 0);
		return;
	}
	for (uint32_t i = 0; i < nreq; i++) {
		uint16_t t = rd16(d + 6 + nlen + 2 * i);

		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
	}
	disk = lookup(d + 4, nlen, &di);
	if (disk == NULL) {
		static const char msg[] = "no such export (try \"disk0\")";

		opt_reply(c, c->c_opt, NBD_REP_ERR_UNKNOWN, msg,
		    sizeof(msg) - 1);
		return;
	}
	set_export(c, disk, &di);
	be16(b, NBD_INFO_EXPORT);
	be64(b + 2, c->c_size);
	be16(b + 10, c->c_tflags);
	opt_reply(c, c->c_opt, NBD_REP_INFO, b, 12);
	/* Block sizes: always (they are constraints we enforce). */
	be16(b, NBD_INFO_BLOCK_SIZE);
	be32(b + 2, c->c_bs);
	be32(b + 6, PREF_BLOCK > c->c_bs ? PREF_BLOCK : c->c_bs);
	be32(b + 10, REQ_MAX);
	opt_reply(c, c->c_opt, NBD_REP_INFO, b, 14);
	if (want_name) {
		be16(b, NBD_INFO_NAME);
		memcpy(b + 2, EXPORT_NAME, sizeof(EXPORT_NAME) - 1);
		opt_reply(c, c->c_opt, NBD_REP_INFO, b,
		    2 + sizeof(EXPORT_NAME) - 1);
	}
	if (want_desc) {
		static const char desc[] = "hvguest StorVSC disk0";
		uint8_t db[2 + sizeof(desc)];

		be16(db, NBD_INFO_DESCRIPTION);
		memcpy(db + 2, desc, sizeof(desc) - 1);
		opt_reply(c, c->c_opt, NBD_REP_INFO, db, sizeof(db) - 1);
	}
	opt_reply(c, c->c_opt, NBD_REP_ACK, NULL, 0);
	if (c->c_opt == NBD_OPT_GO)
		start_transmission(c);
}

/* One whole option. false: stop reading (closing). */
static bool do_option(struct nbd_conn *c)
{
	const uint8_t *d = c->c_opt_data;
	struct storvsc_disk_info di;
	struct storvsc_disk *disk;
	uint8_t b[4 + 8];

	switch (c->c_opt) {
	case NBD_OPT_EXPORT_NAME:
		disk = lookup(d, c->c_opt_len, &di);
		if (disk == NULL) {
			/* no error reply exists for this option */
			log_client(c, "unknown export name: closing");
			c->c_st = ST_CLOSING;
			return false;
		}
		set_export(c, disk, &di);
		{
			uint8_t e[10 + 124];
			uint32_t n = c->c_no_zeroes ? 10 : sizeof(e);

			memset(e, 0, sizeof(e));
			be64(e, c->c_size);
			be16(e + 8, c->c_tflags);
			out_bytes(c, e, 10, e + 10, n - 10);
		}
		start_transmission(c);
		return true;
	case NBD_OPT_ABORT:
		opt_reply(c, c->c_opt, NBD_REP_ACK, NULL, 0);
		c->c_st = ST_CLOSING;
		return false;
	case NBD_OPT_LIST:
		if (c->c_opt_len != 0) {
			opt_reply(c, c->c_opt, NBD_REP_ERR_INVALID, NULL, 0);
			break;
		}
		be32(b, sizeof(EXPORT_NAME) - 1);
		memcpy(b + 4, EXPORT_NAME, sizeof(EXPORT_NAME) - 1);
		opt_reply(c, c->c_opt, NBD_REP_SERVER, b,
		    4 + sizeof(EXPORT_NAME) - 1);
		opt_reply(c, c->c_opt, NBD_REP_ACK, NULL, 0);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		opt_info_go(c, d, c->c_opt_len);
		if (c->c_transmission)
			return true;	/* GO succeeded: requests next */
		break;
	default:
		opt_reply(c, c->c_opt, NBD_REP_ERR_UNSUP, NULL, 0);
		break;
	}
	c->c_st = ST_OPT_HDR;
	return true;
}

/* ---- transmission ---- */

static uint32_t nbd_errno(int e)
{
	switch (e) {
	case 0: return 0;
	case -VMBUS_EPERM: return NBD_EPERM;
	case -VMBUS_ENOSPC: return NBD_ENOSPC;
	case -VMBUS_ERANGE: return NBD_EINVAL;
	case -VMBUS_EINVAL: return NBD_EINVAL;
	case -VMBUS_ENOMEM: return NBD_ENOMEM;
	case -VMBUS_EOPNOTSUPP: return NBD_ENOTSUP;
	default: return NBD_EIO;
	}
}

/* Queue the reply of r (error or READ data). */
static void reply(struct nbd_conn *c, struct nbd_req *r)
{
	struct nbd_out *o = &r->r_out;

	memset(o, 0, sizeof(*o));
	be32(o->o_small, NBD_SIMPLE_REPLY_MAGIC);
	be32(o->o_small + 4, r->r_err);
	be64(o->o_small + 8, r->r_handle);
	o->o_small_len = 16;
	if (r->r_type == NBD_CMD_READ && r->r_err == 0) {
		o->o_data = r->r_buf;
		o->o_data_len = r->r_len;
	}
	o->o_req = r;
	if (r->r_err)
		atomic_fetch_add(&st.errors, 1);
	out_queue(c, o);
}

static void io_done(struct storvsc_io *io)
{
	struct nbd_req *r = io->io_arg;
	bool post;

	pthread_mutex_lock(&done_mu);
	r->r_done_next = NULL;
	if (done_tail != NULL)
		done_tail->r_done_next = r;
	else
		done_head = r;
	done_tail = r;
	pthread_mutex_unlock(&done_mu);
	post = !atomic_exchange(&kick_posted, true);
	if (post && (kick_msg == NULL ||
	    tcpip_callbackmsg_trycallback(kick_msg) != ERR_OK))
		atomic_store(&kick_posted, false);	/* the timer drains */
}

static void conn_pump(struct nbd_conn *c);

/* tcpip thread: answer the completed requests. */
static void drain_done(void *arg)
{
	struct nbd_req *list;

	(void)arg;
	atomic_store(&kick_posted, false);
	pthread_mutex_lock(&done_mu);
	list = done_head;
	done_head = done_tail = NULL;
	pthread_mutex_unlock(&done_mu);
	while (list != NULL) {
		struct nbd_req *r = list;
		struct nbd_conn *c = r->r_conn;

		list = r->r_done_next;
		c->c_submitted--;
		r->r_leak = r->r_io.io_buf_shared;
		r->r_err = nbd_errno(r->r_io.io_error);
		if (r->r_err == 0 && r->r_type == NBD_CMD_READ)
			atomic_fetch_add(&st.bytes_read, r->r_len);
		if (r->r_err == 0 && r->r_type == NBD_CMD_WRITE)
			atomic_fetch_add(&st.bytes_written, r->r_len);
		if (c->c_pcb == NULL) {
			req_free(c, r);
			conn_maybe_free(c);
			continue;
		}
		reply(c, r);
		conn_pump(c);
	}
}

static void submit(struct nbd_conn *c, struct nbd_req *r)
{
	uint64_t lba = r->r_offset / c->c_bs;
	uint32_t nb = r->r_len / c->c_bs;
	int e;

	memset(&r->r_io, 0, sizeof(r->r_io));
	switch (r->r_type) {
	case NBD_CMD_READ:
		e = storvsc_read(c->c_disk, &r->r_io, lba, nb, r->r_buf,
		    io_done, r);
		break;
	case NBD_CMD_WRITE:
		e = storvsc_write(c->c_disk, &r->r_io, lba, nb, r->r_buf,
		    io_done, r);
		break;
	case NBD_CMD_FLUSH:
		e = storvsc_flush(c->c_disk, &r->r_io, io_done, r);
		break;
	default:	/* TRIM */
		e = storvsc_discard(c->c_disk, &r->r_io, lba, nb, io_done, r);
		break;
	}
	if (e == 0) {
		c->c_submitted++;
		if (c->c_submitted > atomic_load(&st.max_inflight))
			atomic_store(&st.max_inflight, c->c_submitted);
		return;
	}
	r->r_err = nbd_errno(e);
	reply(c, r);
}

/* A request header is in h[0..28). false: stop reading. */
static bool do_request(struct nbd_conn *c, const uint8_t *h)
{
	struct nbd_req *r;
	uint16_t type;
	uint64_t off;
	uint32_t len;

	if (rd32(h) != NBD_REQUEST_MAGIC) {
		log_client(c, "bad request magic: closing");
		c->c_st = ST_CLOSING;
		return false;
	}
	type = rd16(h + 6);
	off = rd64(h + 16);
	len = rd32(h + 24);
	atomic_fetch_add(&st.requests, 1);
	if (type == NBD_CMD_DISC) {
		c->c_st = ST_CLOSING;
		return false;
	}
	if (type == NBD_CMD_WRITE && len > REQ_MAX) {
		/* its payload cannot be skipped safely */
		log_client(c, "WRITE longer than 32 MiB: closing");
		c->c_st = ST_CLOSING;
		return false;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		c->c_st = ST_CLOSING;
		return false;
	}
	r->r_conn = c;
	r->r_handle = rd64(h + 8);
	r->r_offset = off;
	r->r_len = len;
	r->r_type = type;
	c->c_reqs++;
	/* checks, in the order a client would want them reported */
	if (type != NBD_CMD_READ && type != NBD_CMD_WRITE &&
	    type != NBD_CMD_FLUSH && type != NBD_CMD_TRIM)
		r->r_err = NBD_EINVAL;
	else if (type == NBD_CMD_FLUSH)
		r->r_err = off || len ? NBD_EINVAL : 0;
	else if ((len > REQ_MAX && type != NBD_CMD_TRIM) || len % c->c_bs ||
	    off % c->c_bs)
		r->r_err = NBD_EINVAL;	/* a TRIM moves no data: any size */
	else if (off > c->c_size || len > c->c_size - off)
		r->r_err = type == NBD_CMD_READ ? NBD_EINVAL : NBD_ENOSPC;
	else if ((type == NBD_CMD_WRITE || type == NBD_CMD_TRIM) &&
	    (c->c_tflags & NBD_FLAG_READ_ONLY))
		r->r_err = NBD_EPERM;
	else if (type == NBD_CMD_TRIM && !(c->c_tflags & NBD_FLAG_SEND_TRIM))
		r->r_err = NBD_EINVAL;
	if (r->r_err == 0 && len != 0 &&
	    (type == NBD_CMD_READ || type == NBD_CMD_WRITE)) {
		r->r_buf = storvsc_buf_alloc(g.sv, len);
		if (r->r_buf == NULL)
			r->r_err = NBD_ENOMEM;
		else
			r->r_buf_bytes = len;
		c->c_held += r->r_buf_bytes;
	}
	if (type == NBD_CMD_WRITE && len != 0) {
		c->c_wreq = r;		/* payload next (skipped on error) */
		c->c_st = ST_WRITE_DATA;
		return true;
	}
	if (r->r_err != 0 || len == 0 || type == NBD_CMD_FLUSH) {
		if (r->r_err == 0 && type == NBD_CMD_FLUSH)
			submit(c, r);
		else
			reply(c, r);
		return true;
	}
	submit(c, r);
	return true;
}

/* Consume what the ring holds, as far as the limits allow. */
static void do_input(struct nbd_conn *c)
{
	uint8_t h[28];

	for (;;) {
		switch (c->c_st) {
		case ST_CFLAGS:
			if (avail(c) < 4)
				return;
			take(c, h, 4);
			if (rd32(h) & ~(NBD_FLAG_C_FIXED_NEWSTYLE |
			    NBD_FLAG_C_NO_ZEROES)) {
				log_client(c, "unknown client flags: closing");
				c->c_st = ST_CLOSING;
				return;
			}
			c->c_no_zeroes = rd32(h) & NBD_FLAG_C_NO_ZEROES;
			c->c_st = ST_OPT_HDR;
			break;
		case ST_OPT_HDR:
			if (avail(c) < 16)
				return;
			take(c, h, 16);
			if (rd64(h) != NBD_IHAVEOPT) {
				log_client(c, "bad option magic: closing");
				c->c_st = ST_CLOSING;
				return;
			}
			c->c_opt = rd32(h + 8);
			c->c_opt_len = rd32(h + 12);
			if (c->c_opt_len > OPT_SKIP_MAX ||
			    (c->c_opt_len > OPT_MAX &&
			    c->c_opt == NBD_OPT_EXPORT_NAME)) {
				log_client(c, "option data too long: closing");
				c->c_st = ST_CLOSING;
				return;
			}
			if (c->c_opt_len > OPT_MAX) {
				c->c_skip = c->c_opt_len;
				c->c_st = ST_OPT_SKIP;
				break;
			}
			free(c->c_opt_data);
			c->c_opt_data = malloc(c->c_opt_len + 1u);
			if (c->c_opt_data == NULL) {
				c->c_st = ST_CLOSING;
				return;
			}
			c->c_st = ST_OPT_DATA;
			break;
		case ST_OPT_DATA:
			if (avail(c) < c->c_opt_len)
				return;
			take(c, c->c_opt_data, c->c_opt_len);
			if (!do_option(c))
				return;
			break;
		case ST_OPT_SKIP: {
			uint32_t n = avail(c) < c->c_skip ? avail(c) :
			    c->c_skip;

			take(c, NULL, n);
			c->c_skip -= n;
			if (c->c_skip > 0)
				return;
			opt_reply(c, c->c_opt, NBD_REP_ERR_TOO_BIG, NULL, 0);
			c->c_st = ST_OPT_HDR;
			break;
		}
		case ST_REQ:
			/* back-pressure: the window stays shut meanwhile */
			if (c->c_reqs >= MAX_INFLIGHT ||
			    (c->c_reqs > 0 && c->c_held >= MAX_HELD_BYTES))
				return;
			if (avail(c) < 28)
				return;
			take(c, h, 28);
			if (!do_request(c, h))
				return;
			break;
		case ST_WRITE_DATA: {
			struct nbd_req *r = c->c_wreq;
			uint32_t n = r->r_len - r->r_got;

			if (n > avail(c))
				n = avail(c);
			take(c, r->r_buf ? r->r_buf + r->r_got : NULL, n);
			r->r_got += n;
			if (r->r_got < r->r_len)
				return;
			c->c_wreq = NULL;
			c->c_st = ST_REQ;
			if (r->r_err)
				reply(c, r);
			else
				submit(c, r);
			break;
		}
		case ST_CLOSING:
			take(c, NULL, avail(c));	/* ignored */
			return;
		}
	}
}

/* Input, output, and the close once a closing connection is done. */
static void conn_pump(struct nbd_conn *c)
{
	if (c->c_pcb == NULL)
		return;
	do_input(c);
	if (!out_push(c))
		return;
	ack_consumed(c);
	if (c->c_st == ST_CLOSING && c->c_reqs == 0 && c->c_out_head == NULL)
		conn_close(c);
}

/* ---- lwIP callbacks ---- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p,
    err_t err)
{
	struct nbd_conn *c = arg;
	uint32_t tail;

	if (c == NULL) {
		if (p != NULL) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (p == NULL || err != ERR_OK) {	/* the client closed */
		if (p != NULL)
			pbuf_free(p);
		if (c->c_transmission && c->c_st != ST_CLOSING)
			log_client(c, "closed without NBD_CMD_DISC");
		c->c_st = ST_CLOSING;
		aborted = NULL;
		conn_pump(c);
		return aborted == pcb ? ERR_ABRT : ERR_OK;
	}
	if (p->tot_len > RING_BYTES - c->c_rlen)
		return ERR_MEM;		/* lwIP keeps it and retries */
	tail = (c->c_rhead + c->c_rlen) % RING_BYTES;
	{
		uint32_t first = RING_BYTES - tail;
		uint16_t n = p->tot_len;

		if (first >= n) {
			pbuf_copy_partial(p, c->c_ring + tail, n, 0);
		} else {
			pbuf_copy_partial(p, c->c_ring + tail, (u16_t)first,
			    0);
			pbuf_copy_partial(p, c->c_ring, (u16_t)(n - first),
			    (u16_t)first);
		}
		c->c_rlen += n;
	}
	pbuf_free(p);
	aborted = NULL;
	conn_pump(c);
	return aborted == pcb ? ERR_ABRT : ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct nbd_conn *c = arg;

	(void)len;
	aborted = NULL;
	if (c != NULL)
		conn_pump(c);
	return aborted == pcb ? ERR_ABRT : ERR_OK;
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	struct nbd_conn *c = arg;

	if (c == NULL) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	if (!c->c_transmission && c->c_st != ST_CLOSING &&
	    ++c->c_polls > HANDSHAKE_POLLS) {
		log_client(c, "no export chosen in 30 s: closing");
		conn_abort(c);
		return ERR_ABRT;
	}
	/* Completions are drained by their message and the timer, not
	 * here: answering them may close other pcbs. */
	aborted = NULL;
	conn_pump(c);
	return aborted == pcb ? ERR_ABRT : ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct nbd_conn *c = arg;

	(void)err;
	if (c == NULL)
		return;
	c->c_pcb = NULL;	/* lwIP freed it */
	conn_maybe_free(c);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	static const uint8_t hello_tail[2] = { 0, NBD_FLAG_FIXED_NEWSTYLE |
	    NBD_FLAG_NO_ZEROES };
	struct nbd_conn *c = NULL;
	uint8_t hello[16];
	uint32_t slot = MAX_CONNS;

	(void)arg;
	if (err != ERR_OK || pcb == NULL)
		return ERR_VAL;
	for (uint32_t i = 0; i < MAX_CONNS; i++)
		if (conns[i] == NULL) {
			slot = i;
			break;
		}
	if (slot < MAX_CONNS && (c = calloc(1, sizeof(*c))) != NULL &&
	    (c->c_ring = malloc(RING_BYTES)) == NULL) {
		free(c);
		c = NULL;
	}
	if (c == NULL) {
		atomic_fetch_add(&st.rejected, 1);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	conns[slot] = c;
	c->c_pcb = pcb;
	c->c_st = ST_CFLAGS;
	atomic_fetch_add(&st.connections, 1);
	atomic_fetch_add(&st.active, 1);
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_poll(pcb, on_poll, POLL_INTERVAL);
	tcp_nagle_disable(pcb);
	be64(hello, NBD_MAGIC);
	be64(hello + 8, NBD_IHAVEOPT);
	out_bytes(c, hello, sizeof(hello), hello_tail, sizeof(hello_tail));
	aborted = NULL;
	out_push(c);
	return aborted == pcb ? ERR_ABRT : ERR_OK;
}

static void timer(void *arg)
{
	(void)arg;
	if (!timer_on)
		return;
	drain_done(NULL);
	sys_timeout(200, timer, NULL);
}

int hvg_nbd_start(uint16_t port)
{
	struct tcp_pcb *pcb;
	err_t e;

	if (kick_msg == NULL)
		kick_msg = tcpip_callbackmsg_new(drain_done, NULL);
	pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
	if (pcb == NULL)
		return -1;
	ip_set_option(pcb, SOF_REUSEADDR);
	e = tcp_bind(pcb, IP4_ADDR_ANY, port);
	if (e != ERR_OK) {
		tcp_close(pcb);
		hvg_event("net: NBD: cannot bind TCP port %u (%d)", port, e);
		return -1;
	}
	nbd_listener = tcp_listen(pcb);
	if (nbd_listener == NULL) {
		tcp_close(pcb);
		return -1;
	}
	tcp_accept(nbd_listener, on_accept);
	timer_on = true;
	sys_timeout(200, timer, NULL);
	return 0;
}

/* Thread context, core lock NOT held. */
void hvg_nbd_stop(void)
{
	uint64_t end = hvg_now_ns() + 5ull * NS_PER_S;
	bool busy;

	LOCK_TCPIP_CORE();
	if (nbd_listener != NULL)
		tcp_close(nbd_listener);
	nbd_listener = NULL;
	for (uint32_t i = 0; i < MAX_CONNS; i++)
		if (conns[i] != NULL && conns[i]->c_pcb != NULL)
			conn_abort(conns[i]);
	/* Requests still in the driver complete (with -ENODEV once the
	 * disks are gone); their connections are freed then. */
	for (;;) {
		drain_done(NULL);
		busy = false;
		for (uint32_t i = 0; i < MAX_CONNS; i++)
			busy |= conns[i] != NULL;
		if (!busy || hvg_now_ns() > end)
			break;
		UNLOCK_TCPIP_CORE();
		usleep(10000);
		LOCK_TCPIP_CORE();
	}
	timer_on = false;
	sys_untimeout(timer, NULL);
	UNLOCK_TCPIP_CORE();
	if (busy)
		hvg_event("nbd: requests still outstanding at stop: their "
		    "buffers are kept");
}
