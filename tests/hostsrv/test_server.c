/*
 * tests/hostsrv/test_server.c - the host VMBus server, VSP framework and
 * echo VSP driven through a fake partition: the test plays the guest,
 * posting channel messages and laying out rings in the fake guest RAM.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/ring.h"
#include "fake_partition.h"
#include "host/fault.h"
#include "host/log.h"
#include "host/vmbus_server.h"
#include "host/vsp/echo.h"
#include "host/vsp/vsp.h"
#include "hv/guid.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/errno.h"

#define RAM_BYTES (8u << 20)

static const uint32_t all_versions[] = {
	VMBUS_VERSION_WS2008,      VMBUS_VERSION_WIN7,
	VMBUS_VERSION_WIN8,        VMBUS_VERSION_WIN8_1,
	VMBUS_VERSION_WIN10,       VMBUS_VERSION_WIN10_RS3_0,
	VMBUS_VERSION_WIN10_RS3_1, VMBUS_VERSION_WIN10_RS4,
	VMBUS_VERSION_WIN10_RS5,   VMBUS_VERSION_IRON,
	VMBUS_VERSION_COPPER,
};
#define NVERSIONS (sizeof(all_versions) / sizeof(all_versions[0]))

static unsigned log_lines;
static char log_recent[16][512];   /* the last 16 lines, a ring */
static void log_sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	(void)level;
	snprintf(log_recent[log_lines % 16], sizeof(log_recent[0]), "%s", line);
	log_lines++;
	if (getenv("HOSTSRV_VERBOSE"))
		fprintf(stderr, "%s\n", line);
}

/* True if one of the last 16 log lines contains text. */
static bool log_has(const char *text)
{
	for (unsigned i = 0; i < 16; i++)
		if (strstr(log_recent[i], text) != NULL)
			return true;
	return false;
}

static void log_clear(void)
{
	memset(log_recent, 0, sizeof(log_recent));
}

/* ---- a recording VSP ------------------------------------------------------ */

struct rec {
	int opens, closes, signals, rescinds, destroys;
	int last_why;
	int open_ret;
	bool rescind_in_signal;   /* rescind own channel from vo_on_signal */
	bool closed_in_signal;    /* vo_close ran inside vo_on_signal */
	bool in_signal;
	struct hvs_channel *ch;
};

static int rec_open(void *arg, struct hvs_channel *ch)
{
	struct rec *r = arg;
	r->opens++;
	r->ch = ch;
	return r->open_ret;
}
static void rec_close(void *arg, struct hvs_channel *ch, int why)
{
	struct rec *r = arg;
	(void)ch;
	if (r->in_signal)
		r->closed_in_signal = true;
	r->closes++;
	r->last_why = why;
	r->ch = NULL;
}
static void rec_signal(void *arg, struct hvs_channel *ch)
{
	struct rec *r = arg;
	r->signals++;
	if (r->rescind_in_signal) {
		r->in_signal = true;
		assert_int_equal(hvs_vmbus_rescind(hvs_chan_server(ch),
						   hvs_chan_relid(ch)), 0);
		/* I/O stops at once; the close itself comes later */
		assert_false(hvs_chan_is_open(ch));
		assert_int_equal(hvs_chan_send(ch, 6, 0, 1, NULL, 0),
				 -VMBUS_ENODEV);
		r->in_signal = false;
	}
}
static void rec_rescind(void *arg, struct hvs_channel *ch)
{
	struct rec *r = arg;
	(void)ch;
	r->rescinds++;
}
static void rec_destroy(void *arg)
{
	struct rec *r = arg;
	r->destroys++;
}
static const struct hvs_vsp_ops rec_ops = {
	.vo_open = rec_open,
	.vo_close = rec_close,
	.vo_on_signal = rec_signal,
	.vo_rescind = rec_rescind,
	.vo_destroy = rec_destroy,
};

/* ---- harness ----------------------------------------------------------------- */

struct t {
	struct hvs_partition *p;
	struct hvs_vmbus *s;
	const struct hvs_partition_ops *ops;
	uint32_t version;
	uint64_t int_page;
};

static struct t *t_new_named(const char *name, uint32_t maxv, uint32_t vcpus)
{
	struct t *t = calloc(1, sizeof(*t));
	struct hvs_vmbus_config cfg = { .vm_name = name, .max_version = maxv };
	assert_non_null(t);
	t->p = fp_create(name, RAM_BYTES, vcpus);
	t->s = hvs_vmbus_create(&cfg);
	assert_non_null(t->s);
	t->ops = hvs_vmbus_partition_ops();
	hvs_vmbus_attach(t->s, t->p);
	return t;
}

static struct t *t_new(uint32_t maxv, uint32_t vcpus)
{
	return t_new_named("vm1", maxv, vcpus);
}

static void t_free(struct t *t)
{
	hvs_vmbus_destroy(t->s);
	fp_destroy(t->p);
	free(t);
}

static uint16_t post(struct t *t, uint32_t connid, const void *m, uint32_t len)
{
	return t->ops->post_message(t->s, 0, connid, VMBUS_MESSAGE_TYPE, m, len);
}

/* Post on the message connection of the negotiated version. */
static void send(struct t *t, const void *m, uint32_t len)
{
	assert_int_equal(post(t, VMBUS_MESSAGE_CONNECTION_ID, m, len),
			 HV_STATUS_SUCCESS);
}

static const struct fp_msg *expect_msg(struct t *t, uint32_t type)
{
	const struct fp_msg *m = fp_pop(t->p);
	assert_non_null(m);
	assert_int_equal(m->type, VMBUS_MESSAGE_TYPE);
	assert_int_equal(m->sint, VMBUS_MESSAGE_SINT);
	assert_int_equal(hv_get_le32(m->buf), type);
	return m;
}

static void expect_none(struct t *t)
{
	assert_int_equal(fp_pending(t->p), 0);
}

static uint64_t nbad(struct t *t)
{
	struct hvs_vmbus_stats st;
	hvs_vmbus_get_stats(t->s, &st);
	return st.vs_msgs_bad;
}

static void build_contact(struct t *t, struct vmbus_chanmsg_initiate_contact *ic,
			  uint32_t ver, uint32_t target)
{
	memset(ic, 0, sizeof(*ic));
	ic->ic_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_INITIATE_CONTACT);
	ic->ic_vmbus_version_requested = hv_cpu_to_le32(ver);
	ic->ic_target_vcpu = hv_cpu_to_le32(target);
	if (ver >= VMBUS_VERSION_WIN10_RS3_1) {
		ic->ic_msg_sint = VMBUS_MESSAGE_SINT;
	} else {
		if (t->int_page == 0)
			t->int_page = fp_alloc(t->p, 1);
		ic->ic_interrupt_page = hv_cpu_to_le64(t->int_page);
	}
}

static uint16_t contact(struct t *t, uint32_t ver, uint32_t target)
{
	struct vmbus_chanmsg_initiate_contact ic;
	build_contact(t, &ic, ver, target);
	uint32_t conn = ver >= VMBUS_VERSION_WIN10_RS3_1
				? VMBUS_MESSAGE_CONNECTION_ID_4
				: VMBUS_MESSAGE_CONNECTION_ID;
	return post(t, conn, &ic, VMBUS_CHANMSG_INITIATE_CONTACT_SIZE);
}

static void connect_ok(struct t *t, uint32_t ver)
{
	assert_int_equal(contact(t, ver, 0), HV_STATUS_SUCCESS);
	const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 1);
	assert_int_equal(m->buf[9], VMBUS_CONNECTION_SUCCESSFUL);
	t->version = ver;
}

static void hdr_only(struct t *t, uint32_t type)
{
	uint8_t m[8] = { 0 };
	hv_put_le32(m, type);
	send(t, m, sizeof(m));
}

/* REQUESTOFFERS; returns the number of offers, relids in order. */
static unsigned request_offers(struct t *t, uint32_t *relids, unsigned max)
{
	unsigned n = 0;
	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
	for (;;) {
		const struct fp_msg *m = fp_pop(t->p);
		assert_non_null(m);
		uint32_t type = hv_get_le32(m->buf);
		if (type == VMBUS_CHANMSG_ALLOFFERS_DELIVERED) {
			assert_int_equal(m->len, 8);
			return n;
		}
		assert_int_equal(type, VMBUS_CHANMSG_OFFERCHANNEL);
		assert_int_equal(m->len, VMBUS_CHANMSG_OFFERCHANNEL_SIZE);
		assert_true(n < max);
		relids[n++] = hv_get_le32(m->buf + 184);
	}
}

/* Build a GPADL: one range (byte_offset, byte_count, pfns); bodies sized
 * exactly (LNX) or padded to 240 bytes (MSVM). Returns the status in
 * GPADL_CREATED, or -1 if no reply came. */
static int64_t gpadl_raw(struct t *t, uint32_t relid, uint32_t handle,
			 uint32_t off, uint32_t count, const uint64_t *pfns,
			 uint32_t npfn, uint16_t buflen_override, bool pad240)
{
	uint8_t stream[8 + 8 * 1024];
	uint32_t slen = 8 + 8 * npfn;
	assert_true(npfn <= 1024);
	hv_put_le32(stream, count);
	hv_put_le32(stream + 4, off);
	for (uint32_t i = 0; i < npfn; i++)
		hv_put_le64(stream + 8 + 8 * i, pfns[i]);

	uint8_t m[240];
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_HEADER);
	hv_put_le32(m + 8, relid);
	hv_put_le32(m + 12, handle);
	hv_put_le16(m + 16, buflen_override ? buflen_override : (uint16_t)slen);
	hv_put_le16(m + 18, 1);
	uint32_t first = slen < 220 ? slen : 220;
	memcpy(m + 20, stream, first);
	send(t, m, pad240 ? 240 : 20 + first);
	uint32_t pos = first;
	while (pos < slen) {
		uint32_t chunk = slen - pos < 224 ? slen - pos : 224;
		memset(m, pad240 ? 0xEE : 0, sizeof(m));
		hv_put_le32(m, VMBUS_CHANMSG_GPADL_BODY);
		hv_put_le32(m + 4, 0);
		hv_put_le32(m + 8, 0);
		hv_put_le32(m + 12, handle);
		memcpy(m + 16, stream + pos, chunk);
		send(t, m, pad240 ? 240 : 16 + chunk);
		pos += chunk;
	}
	const struct fp_msg *r = fp_pop(t->p);
	if (r == NULL)
		return -1;
	assert_int_equal(hv_get_le32(r->buf), VMBUS_CHANMSG_GPADL_CREATED);
	assert_int_equal(r->len, VMBUS_CHANMSG_GPADL_CREATED_SIZE);
	assert_int_equal(hv_get_le32(r->buf + 8), relid);
	assert_int_equal(hv_get_le32(r->buf + 12), handle);
	return hv_get_le32(r->buf + 16);
}

static int64_t gpadl_pages(struct t *t, uint32_t relid, uint32_t handle,
			   uint64_t gpa, uint32_t npages)
{
	uint64_t pfns[1024];
	for (uint32_t i = 0; i < npages; i++)
		pfns[i] = (gpa >> 12) + i;
	return gpadl_raw(t, relid, handle, 0, npages * 4096u, pfns, npages, 0,
			 false);
}

static void teardown_msg(struct t *t, uint32_t relid, uint32_t handle)
{
	uint8_t m[16] = { 0 };
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_TEARDOWN);
	hv_put_le32(m + 8, relid);
	hv_put_le32(m + 12, handle);
	send(t, m, sizeof(m));
}

static void relid_msg(struct t *t, uint32_t type, uint32_t relid)
{
	uint8_t m[12] = { 0 };
	hv_put_le32(m, type);
	hv_put_le32(m + 8, relid);
	send(t, m, sizeof(m));
}

/* Guest view of an open channel. */
struct gch {
	uint32_t relid, gpadl, openid;
	uint64_t gpa;
	uint32_t down, total;
	struct vmbus_ring tx;  /* guest -> host */
	struct vmbus_ring rx;  /* host -> guest */
};

static void open_msg(struct t *t, uint32_t relid, uint32_t openid,
		     uint32_t gpadl, uint32_t tvp, uint32_t down)
{
	struct vmbus_chanmsg_openchannel op;
	memset(&op, 0, sizeof(op));
	op.op_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_OPENCHANNEL);
	op.op_child_relid = hv_cpu_to_le32(relid);
	op.op_openid = hv_cpu_to_le32(openid);
	op.op_gpadl = hv_cpu_to_le32(gpadl);
	op.op_target_vp = hv_cpu_to_le32(tvp);
	op.op_downstream_pgoff = hv_cpu_to_le32(down);
	op.op_userdata[0] = 0x5A;
	send(t, &op, VMBUS_CHANMSG_OPENCHANNEL_SIZE);
}

/* Returns the OPENCHANNEL_RESULT status, -1 if no reply. */
static int64_t open_result(struct t *t, uint32_t relid, uint32_t openid)
{
	const struct fp_msg *m = fp_pop(t->p);
	if (m == NULL)
		return -1;
	assert_int_equal(hv_get_le32(m->buf), VMBUS_CHANMSG_OPENCHANNEL_RESULT);
	assert_int_equal(m->len, VMBUS_CHANMSG_OPENCHANNEL_RESULT_SIZE);
	assert_int_equal(hv_get_le32(m->buf + 8), relid);
	assert_int_equal(hv_get_le32(m->buf + 12), openid);
	return hv_get_le32(m->buf + 16);
}

static void gch_rings(struct t *t, struct gch *g, uint32_t down, uint32_t total)
{
	g->down = down;
	g->total = total;
	g->gpa = fp_alloc(t->p, total);
	uint8_t *base = fp_ptr(t->p, g->gpa);
	assert_int_equal(vmbus_ring_init(&g->tx, base, down * 4096u), 0);
	assert_int_equal(vmbus_ring_init(&g->rx, base + down * 4096u,
					 (total - down) * 4096u), 0);
	vmbus_ring_reset_shared(&g->tx, true);
	vmbus_ring_reset_shared(&g->rx, false);
}

static void open_chan(struct t *t, struct gch *g, uint32_t relid,
		      uint32_t handle, uint32_t down, uint32_t total,
		      uint32_t tvp)
{
	memset(g, 0, sizeof(*g));
	g->relid = relid;
	g->gpadl = handle;
	g->openid = relid + 100;
	gch_rings(t, g, down, total);
	assert_int_equal(gpadl_pages(t, relid, handle, g->gpa, total), 0);
	open_msg(t, relid, g->openid, handle, tvp, down);
	assert_int_equal(open_result(t, relid, g->openid), 0);
}

static void guest_signal(struct t *t, struct gch *g)
{
	assert_int_equal(t->ops->signal_event(t->s, 0x2000u + g->relid, 0),
			 HV_STATUS_SUCCESS);
}

static void guest_send(struct t *t, struct gch *g, uint16_t type,
		       uint16_t flags, uint64_t tid, const void *data,
		       uint32_t len, bool signal)
{
	struct vmbus_packet_desc d;
	static const uint8_t zeros[8];
	uint32_t plen = 16 + ((len + 7) & ~7u);
	memset(&d, 0, sizeof(d));
	d.pd_type = hv_cpu_to_le16(type);
	d.pd_offset8 = hv_cpu_to_le16(2);
	d.pd_len8 = hv_cpu_to_le16((uint16_t)(plen / 8));
	d.pd_flags = hv_cpu_to_le16(flags);
	d.pd_trans_id = hv_cpu_to_le64(tid);
	struct vmbus_iov iov[3] = { { &d, 16 }, { data, len },
				    { zeros, plen - 16 - len } };
	assert_int_equal(vmbus_ring_write(&g->tx, iov, 3, NULL), 0);
	if (signal)
		guest_signal(t, g);
}

/* Read one host packet; returns its size, or 0 if the ring is empty. */
static uint32_t guest_recv(struct gch *g, uint8_t *buf, uint32_t max)
{
	struct vmbus_packet_desc d;
	if (vmbus_ring_bytes_to_read(&g->rx) == 0)
		return 0;
	assert_int_equal(vmbus_ring_peek(&g->rx, &d, sizeof(d)), 0);
	uint32_t plen = hv_le16(d.pd_len8) * 8u;
	assert_true(plen <= max);
	assert_int_equal(vmbus_ring_read(&g->rx, buf, plen, 0), 0);
	return plen;
}

struct info_ctx {
	uint32_t relid;
	struct hvs_chan_info *out;
	int found;
};

static int info_fn(void *ctx, const struct hvs_chan_info *ci)
{
	struct info_ctx *c = ctx;
	if (ci->ci_relid == c->relid) {
		*c->out = *ci;
		c->found = 1;
		return 1;
	}
	return 0;
}

static struct hvs_chan_info chan_info_of(struct t *t, uint32_t relid)
{
	struct hvs_chan_info out;
	struct info_ctx c = { relid, &out, 0 };
	memset(&out, 0, sizeof(out));
	hvs_vmbus_foreach_channel(t->s, info_fn, &c);
	assert_int_equal(c.found, 1);
	return out;
}

static int setup(void **state)
{
	(void)state;
	hvs_log_set_sink(log_sink, NULL);
	hvs_fault_reset_all();
	return 0;
}

/* ---- version negotiation ------------------------------------------------- */

static void test_version_matrix(void **state)
{
	(void)state;
	const uint32_t bogus[] = { 0x00010000u, 0x00070000u, 0x00050004u, 0 };

	for (size_t gi = 0; gi < NVERSIONS; gi++) {
		uint32_t host = all_versions[gi];
		for (size_t vi = 0; vi < NVERSIONS + 4; vi++) {
			uint32_t ver = vi < NVERSIONS ? all_versions[vi]
						      : bogus[vi - NVERSIONS];
			struct t *t = t_new(host, 2);
			uint64_t b0 = nbad(t);
			uint16_t st = contact(t, ver, 1);
			if (ver >= VMBUS_VERSION_WIN10_RS3_1 &&
			    host < VMBUS_VERSION_WIN10_RS3_1) {
				/* no multiclient port on pre-5.0 hosts */
				assert_int_equal(st,
					HV_STATUS_INVALID_CONNECTION_ID);
				expect_none(t);
				t_free(t);
				continue;
			}
			assert_int_equal(st, HV_STATUS_SUCCESS);
			const struct fp_msg *m =
				expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
			bool known = vi < NVERSIONS;
			bool want = known && ver <= host;
			assert_int_equal(m->buf[8], want ? 1 : 0);
			/* messages go to target_vcpu from 3.0 on */
			assert_int_equal(m->vp,
					 ver >= VMBUS_VERSION_WIN8_1 ? 1 : 0);
			struct hvs_vmbus_stats stt;
			hvs_vmbus_get_stats(t->s, &stt);
			assert_int_equal(stt.vs_connected, want);
			if (want) {
				assert_int_equal(m->buf[9], 0);
				assert_int_equal(stt.vs_version, ver);
				assert_int_equal(hv_get_le32(m->buf + 12),
					ver >= VMBUS_VERSION_WIN10_RS3_1
						? VMBUS_MESSAGE_CONNECTION_ID : ver);
				assert_int_equal(m->len,
					ver == VMBUS_VERSION_COPPER ? 20 : 16);
			} else {
				assert_int_equal(m->len, 16);
			}
			/* walking down the version list is not abuse; an
			 * unknown version word is */
			assert_int_equal(nbad(t), b0 + (known ? 0 : 1));
			expect_none(t);
			t_free(t);
		}
		/* connection id 4 for an old version on an old host too */
		struct t *t = t_new(host, 1);
		struct vmbus_chanmsg_initiate_contact ic;
		build_contact(t, &ic, VMBUS_VERSION_WIN7, 0);
		uint16_t st = post(t, VMBUS_MESSAGE_CONNECTION_ID_4, &ic, 40);
		assert_int_equal(st, host >= VMBUS_VERSION_WIN10_RS3_1
					     ? HV_STATUS_SUCCESS
					     : HV_STATUS_INVALID_CONNECTION_ID);
		/* unknown message connections */
		assert_int_equal(post(t, 3, &ic, 40),
				 HV_STATUS_INVALID_CONNECTION_ID);
		t_free(t);
	}
}

static void test_contact_rejects(void **state)
{
	(void)state;
	struct vmbus_chanmsg_initiate_contact ic;
	const struct fp_msg *m;

	/* one monitor page only: supported, FAILED_UNKNOWN_FAILURE */
	struct t *t = t_new(VMBUS_VERSION_IRON, 1);
	build_contact(t, &ic, VMBUS_VERSION_IRON, 0);
	ic.ic_monitor_page1 = hv_cpu_to_le64(fp_alloc(t->p, 1));
	assert_int_equal(post(t, 4, &ic, 40), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 1);
	assert_int_equal(m->buf[9], VMBUS_CONNECTION_FAILED_UNKNOWN_FAILURE);
	uint64_t b = nbad(t);
	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS); /* not connected */
	expect_none(t);
	assert_true(nbad(t) > b);
	/* both pages: fine */
	ic.ic_monitor_page2 = hv_cpu_to_le64(fp_alloc(t->p, 1));
	assert_int_equal(post(t, 4, &ic, 40), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 1);
	assert_int_equal(m->buf[9], 0);
	t_free(t);

	/* target_vcpu out of range */
	t = t_new(VMBUS_VERSION_IRON, 2);
	build_contact(t, &ic, VMBUS_VERSION_WIN8_1, 2);
	assert_int_equal(post(t, 1, &ic, 40), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 0);
	/* msg_sint != 2: refusal delivered to that SINT */
	build_contact(t, &ic, VMBUS_VERSION_IRON, 0);
	ic.ic_msg_sint = 5;
	assert_int_equal(post(t, 4, &ic, 40), 0);
	m = fp_pop(t->p);
	assert_non_null(m);
	assert_int_equal(m->sint, 5);
	assert_int_equal(m->buf[8], 0);
	/* msg_vtl != 0 at 5.1+ */
	build_contact(t, &ic, VMBUS_VERSION_WIN10_RS4, 0);
	ic.ic_msg_vtl = 1;
	assert_int_equal(post(t, 4, &ic, 40), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 0);
	/* pre-2.4 without a valid interrupt page */
	build_contact(t, &ic, VMBUS_VERSION_WIN7, 0);
	ic.ic_interrupt_page = hv_cpu_to_le64(RAM_BYTES + 4096);
	assert_int_equal(post(t, 1, &ic, 40), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 0);
	ic.ic_interrupt_page = 0;
	assert_int_equal(post(t, 1, &ic, 40), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 0);
	/* 6.0: granted features = requested & supported */
	build_contact(t, &ic, VMBUS_VERSION_COPPER, 0);
	ic.ic_feature_flags = hv_cpu_to_le32(0xFF);
	assert_int_equal(post(t, 4, &ic, 56), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 0); /* host is 5.3 */
	t_free(t);

	t = t_new(VMBUS_VERSION_COPPER, 1);
	build_contact(t, &ic, VMBUS_VERSION_COPPER, 0);
	ic.ic_feature_flags = hv_cpu_to_le32(0xFF);
	assert_int_equal(post(t, 4, &ic, 56), 0);
	m = expect_msg(t, VMBUS_CHANMSG_VERSION_RESPONSE);
	assert_int_equal(m->buf[8], 1);
	assert_int_equal(m->len, 20);
	assert_int_equal(hv_get_le32(m->buf + 16), VMBUS_FEATURE_CLIENT_ID);
	t_free(t);
}

/* ---- offers ------------------------------------------------------------------ */

static void test_offers(void **state)
{
	(void)state;
	struct rec r1 = { 0 };
	static const struct hv_guid hb = HV_GUID_HEARTBEAT_INIT;
	static const struct hv_guid net = HV_GUID_NETVSC_INIT;
	struct t *t = t_new(VMBUS_VERSION_IRON, 1);

	assert_int_equal(hvs_echo_add(t->s, NULL), 1);
	assert_int_equal(hvs_echo_add(t->s, NULL), 2);
	assert_int_equal(hvs_vmbus_add_device(t->s, &rec_ops, &r1, &hb, NULL,
					      NULL), 3);
	struct hv_guid fixed = HV_GUID(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
	assert_int_equal(hvs_vmbus_add_device(t->s, &rec_ops, &r1, &net,
					      &fixed, NULL), 4);
	assert_int_equal(hvs_vmbus_add_device(t->s, &rec_ops, &r1, &net,
					      &fixed, NULL), -VMBUS_EEXIST);
	connect_ok(t, VMBUS_VERSION_IRON);

	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
	struct hv_guid prev_class;
	struct hv_guid echo_inst[2];
	unsigned n = 0, nech = 0;
	for (;;) {
		const struct fp_msg *m = fp_pop(t->p);
		assert_non_null(m);
		if (hv_get_le32(m->buf) == VMBUS_CHANMSG_ALLOFFERS_DELIVERED)
			break;
		assert_int_equal(hv_get_le32(m->buf), VMBUS_CHANMSG_OFFERCHANNEL);
		assert_int_equal(m->len, 196);
		struct vmbus_chanmsg_offerchannel of;
		memcpy(&of, m->buf, sizeof(of));
		uint32_t relid = hv_le32(of.of_child_relid);
		assert_true(relid >= 1 && relid <= 4);
		assert_int_equal(hv_le32(of.of_connection_id), 0x2000 + relid);
		assert_int_equal(hv_le16(of.of_is_dedicated_interrupt), 1);
		assert_int_equal(of.of_monitor_allocated, 0);
		assert_int_equal(hv_le16(of.of_sub_channel_index), 0);
		if (n > 0) {
			/* sorted by class GUID in text order */
			char a[37], b[37];
			hv_guid_to_str(&prev_class, a);
			hv_guid_to_str(&of.of_if_type, b);
			assert_true(strcmp(a, b) <= 0);
		}
		prev_class = of.of_if_type;
		static const struct hv_guid echo = HV_GUID_ECHO_INIT;
		if (hv_guid_equal(&of.of_if_type, &echo))
			echo_inst[nech++] = of.of_if_instance;
		if (hv_guid_equal(&of.of_if_type, &net))
			assert_true(hv_guid_equal(&of.of_if_instance, &fixed));
		n++;
	}
	assert_int_equal(n, 4);
	assert_int_equal(nech, 2);
	assert_false(hv_guid_equal(&echo_inst[0], &echo_inst[1]));
	/* version 5 GUID bits */
	assert_int_equal(echo_inst[0].g_bytes[7] >> 4, 5);
	assert_int_equal(echo_inst[0].g_bytes[8] & 0xC0, 0x80);

	/* second REQUESTOFFERS: ignored and counted */
	uint64_t b = nbad(t);
	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
	expect_none(t);
	assert_int_equal(nbad(t), b + 1);

	/* hot add after ALLOFFERS_DELIVERED: offered at once */
	assert_int_equal(hvs_echo_add(t->s, NULL), 5);
	const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(hv_get_le32(m->buf + 184), 5);
	expect_none(t);

	/* same VM name -> same instances; other name -> different */
	struct t *t2 = t_new_named("vm1", VMBUS_VERSION_IRON, 1);
	struct t *t3 = t_new_named("vm2", VMBUS_VERSION_IRON, 1);
	hvs_echo_add(t2->s, NULL);
	hvs_echo_add(t3->s, NULL);
	connect_ok(t2, VMBUS_VERSION_IRON);
	connect_ok(t3, VMBUS_VERSION_IRON);
	hdr_only(t2, VMBUS_CHANMSG_REQUESTOFFERS);
	hdr_only(t3, VMBUS_CHANMSG_REQUESTOFFERS);
	m = expect_msg(t2, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_memory_equal(m->buf + 24, echo_inst[0].g_bytes, 16);
	m = expect_msg(t3, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_memory_not_equal(m->buf + 24, echo_inst[0].g_bytes, 16);
	t_free(t2);
	t_free(t3);
	t_free(t);
	assert_int_equal(r1.destroys, 2);
}

static void test_offer_old_versions(void **state)
{
	(void)state;
	struct t *t = t_new(VMBUS_VERSION_IRON, 1);
	uint32_t relids[4];

	hvs_echo_add(t->s, NULL);
	connect_ok(t, VMBUS_VERSION_WS2008);
	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
	const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(m->len, 196);
	/* bytes 190-195 exist only from 1.1 */
	for (int i = 190; i < 196; i++)
		assert_int_equal(m->buf[i], 0);
	expect_msg(t, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	/* reconnect at 1.1: connection id present */
	connect_ok(t, VMBUS_VERSION_WIN7);
	assert_int_equal(request_offers(t, relids, 4), 1);
	t_free(t);
}

/* ---- GPADLs ------------------------------------------------------------------ */

static struct t *connected_with_rec(struct rec *r, uint32_t ver)
{
	static const struct hv_guid hb = HV_GUID_HEARTBEAT_INIT;
	uint32_t relids[8];
	struct t *t = t_new(VMBUS_VERSION_IRON, 2);
	assert_int_equal(hvs_vmbus_add_device(t->s, &rec_ops, r, &hb, NULL,
					      NULL), 1);
	assert_int_equal(hvs_echo_add(t->s, NULL), 2);
	connect_ok(t, ver);
	assert_int_equal(request_offers(t, relids, 8), 2);
	return t;
}

static void test_gpadl_assembly(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	uint64_t pfns[200];
	uint64_t gpa = fp_alloc(t->p, 200);
	for (int i = 0; i < 200; i++)
		pfns[i] = (gpa >> 12) + (uint64_t)(199 - i); /* scattered */

	/* in the header only */
	assert_int_equal(gpadl_raw(t, 1, 0x100, 0, 26 * 4096, pfns, 26, 0,
				   false), 0);
	/* header + one exact body + a partial body (60 PFNs) */
	assert_int_equal(gpadl_raw(t, 1, 0x101, 0, 60 * 4096, pfns, 60, 0,
				   false), 0);
	/* MSVM style: every message 240 bytes, garbage after the stream */
	assert_int_equal(gpadl_raw(t, 1, 0x102, 100, 60 * 4096 - 200, pfns,
				   60, 0, true), 0);
	/* 200 PFNs */
	assert_int_equal(gpadl_raw(t, 2, 0x103, 0, 200 * 4096, pfns, 200, 0,
				   false), 0);
	struct hvs_vmbus_stats st;
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_gpadls, 4);
	/* teardown all */
	uint32_t hs[4][2] = { { 1, 0x100 }, { 1, 0x101 }, { 1, 0x102 },
			      { 2, 0x103 } };
	for (int i = 0; i < 4; i++) {
		teardown_msg(t, hs[i][0], hs[i][1]);
		const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
		assert_int_equal(m->len, 12);
		assert_int_equal(hv_get_le32(m->buf + 8), hs[i][1]);
	}
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_gpadls, 0);
	t_free(t);
}

static void test_gpadl_rejects(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	uint64_t gpa = fp_alloc(t->p, 64);
	uint64_t pfns[64];
	for (int i = 0; i < 64; i++)
		pfns[i] = (gpa >> 12) + (uint64_t)i;
	uint64_t b;

	/* unknown relid */
	assert_int_not_equal(gpadl_raw(t, 9, 0x200, 0, 4096, pfns, 1, 0,
				       false), 0);
	/* handle 0 */
	assert_int_not_equal(gpadl_raw(t, 1, 0, 0, 4096, pfns, 1, 0, false), 0);
	/* duplicate of a complete handle */
	assert_int_equal(gpadl_raw(t, 1, 0x201, 0, 4096, pfns, 1, 0, false), 0);
	assert_int_not_equal(gpadl_raw(t, 1, 0x201, 0, 4096, pfns, 1, 0,
				       false), 0);
	/* byte_offset >= 4096 */
	assert_int_not_equal(gpadl_raw(t, 1, 0x202, 4096, 4096, pfns, 2, 0,
				       false), 0);
	/* byte_count 0 */
	assert_int_not_equal(gpadl_raw(t, 1, 0x203, 0, 0, pfns, 1, 0, false),
			     0);
	/* not enough PFNs: 3 pages described, 2 given */
	assert_int_not_equal(gpadl_raw(t, 1, 0x204, 0, 3 * 4096, pfns, 2, 0,
				       false), 0);
	/* range_buflen larger than the ranges (an extra PFN) */
	assert_int_not_equal(gpadl_raw(t, 1, 0x205, 0, 4096, pfns, 2, 0,
				       false), 0);
	/* PFN 0 */
	uint64_t bad[3] = { pfns[0], 0, pfns[2] };
	assert_int_not_equal(gpadl_raw(t, 1, 0x206, 0, 3 * 4096, bad, 3, 0,
				       false), 0);
	/* PFN outside RAM, and one that would overflow gpa arithmetic */
	bad[1] = RAM_BYTES >> 12;
	assert_int_not_equal(gpadl_raw(t, 1, 0x207, 0, 3 * 4096, bad, 3, 0,
				       false), 0);
	bad[1] = UINT64_MAX;
	assert_int_not_equal(gpadl_raw(t, 1, 0x208, 0, 3 * 4096, bad, 3, 0,
				       false), 0);
	/* range_buflen too small for the range count */
	assert_int_not_equal(gpadl_raw(t, 1, 0x209, 0, 4096, pfns, 1, 8,
				       false), 0);

	/* duplicate of an in-progress handle: header announcing 60 PFNs */
	uint8_t m[240];
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_HEADER);
	hv_put_le32(m + 8, 1);
	hv_put_le32(m + 12, 0x300);
	hv_put_le16(m + 16, 8 + 8 * 60);
	hv_put_le16(m + 18, 1);
	hv_put_le32(m + 20, 60 * 4096);
	for (int i = 0; i < 26; i++)
		hv_put_le64(m + 28 + 8 * i, pfns[i]);
	send(t, m, 236);
	expect_none(t); /* waits for bodies */
	send(t, m, 236);
	const struct fp_msg *rm = expect_msg(t, VMBUS_CHANMSG_GPADL_CREATED);
	assert_int_not_equal(hv_get_le32(rm->buf + 16), 0);
	/* teardown of an in-progress GPADL: refused, no reply */
	b = nbad(t);
	teardown_msg(t, 1, 0x300);
	expect_none(t);
	assert_int_equal(nbad(t), b + 1);

	/* body for an unknown handle: logged and dropped, no reply */
	b = nbad(t);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_BODY);
	hv_put_le32(m + 12, 0x999);
	send(t, m, 24);
	expect_none(t);
	assert_int_equal(nbad(t), b + 1);
	/* short body: header only */
	b = nbad(t);
	hv_put_le32(m + 12, 0x300);
	send(t, m, 16);
	expect_none(t);
	assert_int_equal(nbad(t), b + 1);

	/* finish 0x300 properly: 34 more PFNs in two bodies */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_BODY);
	hv_put_le32(m + 12, 0x300);
	for (int i = 0; i < 28; i++)
		hv_put_le64(m + 16 + 8 * i, pfns[26 + i]);
	send(t, m, 240);
	expect_none(t);
	for (int i = 0; i < 6; i++)
		hv_put_le64(m + 16 + 8 * i, pfns[54 + i]);
	send(t, m, 16 + 48);
	rm = expect_msg(t, VMBUS_CHANMSG_GPADL_CREATED);
	assert_int_equal(hv_get_le32(rm->buf + 16), 0);
	/* body for a complete GPADL: dropped */
	b = nbad(t);
	send(t, m, 24);
	expect_none(t);
	assert_int_equal(nbad(t), b + 1);

	/* teardown by the wrong channel, unknown handle: refused */
	b = nbad(t);
	teardown_msg(t, 2, 0x300);
	teardown_msg(t, 1, 0x777);
	expect_none(t);
	assert_int_equal(nbad(t), b + 2);
	teardown_msg(t, 1, 0x300);
	expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	t_free(t);
}

/* ---- open / close --------------------------------------------------------- */

static void test_open_close(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint64_t b;

	/* failures first: each answered with a non-zero status */
	uint64_t gpa = fp_alloc(t->p, 8);
	assert_int_equal(gpadl_pages(t, 1, 0x10, gpa, 8), 0);
	uint64_t gpa2 = fp_alloc(t->p, 8);
	assert_int_equal(gpadl_pages(t, 2, 0x11, gpa2, 8), 0);
	struct { uint32_t relid, gpadl, tvp, down; } bad[] = {
		{ 7, 0x10, 0, 4 },        /* unknown relid */
		{ 1, 0x99, 0, 4 },        /* unknown gpadl */
		{ 1, 0x11, 0, 4 },        /* another channel's gpadl */
		{ 1, 0x10, 2, 4 },        /* vp out of range */
		{ 1, 0x10, 0, 0 },        /* downstream 0 */
		{ 1, 0x10, 0, 8 },        /* downstream = total */
		{ 1, 0x10, 0, 1 },        /* 1-page ring */
		{ 1, 0x10, 0, 7 },        /* 1-page ring */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = nbad(t);
		open_msg(t, bad[i].relid, 42, bad[i].gpadl, bad[i].tvp,
			 bad[i].down);
		assert_int_not_equal(open_result(t, bad[i].relid, 42), 0);
		assert_int_equal(nbad(t), b + 1);
	}
	assert_int_equal(r.opens, 0);
	/* ring indices invalid at open */
	struct vmbus_ring tmp;
	vmbus_ring_init(&tmp, fp_ptr(t->p, gpa), 4 * 4096);
	vmbus_ring_reset_shared(&tmp, true);
	hv_put_le32(fp_ptr(t->p, gpa), 12345);
	open_msg(t, 1, 42, 0x10, 0, 4);
	assert_int_not_equal(open_result(t, 1, 42), 0);
	/* the VSP refusing */
	r.open_ret = -VMBUS_ENOMEM;
	hv_put_le32(fp_ptr(t->p, gpa), 0);
	open_msg(t, 1, 42, 0x10, 0, 4);
	assert_int_not_equal(open_result(t, 1, 42), 0);
	assert_int_equal(r.opens, 1);
	r.open_ret = 0;
	/* a ring page listed twice: the partition refuses the window */
	uint64_t pf[8];
	uint64_t gpa3 = fp_alloc(t->p, 8);
	for (int i = 0; i < 8; i++)
		pf[i] = (gpa3 >> 12) + (uint64_t)(i ^ 1);
	pf[6] = pf[1];
	assert_int_equal(gpadl_raw(t, 1, 0x12, 0, 8 * 4096, pf, 8, 0, false), 0);
	b = nbad(t);
	log_clear();
	open_msg(t, 1, 43, 0x12, 0, 4);
	assert_int_not_equal(open_result(t, 1, 43), 0);
	assert_int_equal(nbad(t), b + 1);
	assert_true(log_has("OPENCHANNEL relid 1 openid 43 refused: ring "
			    "pages cannot be mapped"));
	assert_int_equal(t->p->window_refusals, 1);
	assert_int_equal(t->p->nwindows, 0);
	assert_int_equal(r.opens, 1);

	/* now a good one; target vp 0xFFFFFFFF = no interrupts is fine */
	memset(&g, 0, sizeof(g));
	g.relid = 1;
	gch_rings(t, &g, 4, 8);
	assert_int_equal(gpadl_pages(t, 1, 0x20, g.gpa, 8), 0);
	open_msg(t, 1, 77, 0x20, VMBUS_OPEN_TARGET_VP_NONE, 4);
	assert_int_equal(open_result(t, 1, 77), 0);
	assert_int_equal(r.opens, 2);
	assert_non_null(r.ch);
	assert_int_equal(hvs_chan_open_userdata(r.ch)[0], 0x5A);
	assert_int_equal(r.signals, 1); /* initial kick after open */
	struct hvs_chan_info ci = chan_info_of(t, 1);
	assert_int_equal(ci.ci_state, HVS_CHAN_OPEN);
	assert_int_equal(ci.ci_in_ring_bytes, 3 * 4096);
	/* open again: refused */
	open_msg(t, 1, 78, 0x20, 0, 4);
	assert_int_not_equal(open_result(t, 1, 78), 0);
	/* GPADL in use by the rings: teardown refused */
	b = nbad(t);
	teardown_msg(t, 1, 0x20);
	expect_none(t);
	assert_int_equal(nbad(t), b + 1);
	/* a guest signal reaches the VSP */
	guest_signal(t, &g);
	assert_int_equal(r.signals, 2);
	/* unknown event connection ids */
	assert_int_equal(t->ops->signal_event(t->s, 0x2000 + 9, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(t->ops->signal_event(t->s, 0x1234, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(t->ops->signal_event(t->s, 0x2001, 1),
			 HV_STATUS_INVALID_PARAMETER);
	/* close: VSP close, then teardown works */
	relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, 1);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.last_why, HVS_CLOSE_GUEST);
	expect_none(t);
	/* signal on a closed channel: accepted, not dispatched */
	guest_signal(t, &g);
	assert_int_equal(r.signals, 2);
	/* close again: not open */
	b = nbad(t);
	relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, 1);
	assert_int_equal(nbad(t), b + 1);
	teardown_msg(t, 1, 0x20);
	expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	/* reopen with a fresh GPADL */
	open_chan(t, &g, 1, 0x21, 2, 4, 1);
	assert_int_equal(r.opens, 3);
	t_free(t);
	assert_int_equal(r.closes, 2);
	assert_int_equal(r.last_why, HVS_CLOSE_RESET);
	assert_int_equal(r.destroys, 1);
}

static void test_modify_channel(void **state)
{
	(void)state;
	const uint32_t vers[] = { VMBUS_VERSION_WIN10, VMBUS_VERSION_WIN10_RS3_0,
				  VMBUS_VERSION_IRON };
	for (size_t i = 0; i < 3; i++) {
		struct rec r = { 0 };
		struct t *t = connected_with_rec(&r, vers[i]);
		struct gch g;
		open_chan(t, &g, 1, 0x30, 2, 4, 0);
		uint8_t m[16] = { 0 };
		hv_put_le32(m, VMBUS_CHANMSG_MODIFYCHANNEL);
		hv_put_le32(m + 8, 1);
		hv_put_le32(m + 12, 1);
		uint64_t b = nbad(t);
		send(t, m, 16);
		struct hvs_chan_info ci = chan_info_of(t, 1);
		if (vers[i] < VMBUS_VERSION_WIN10_RS3_0) {
			assert_int_equal(nbad(t), b + 1);
			assert_int_equal(ci.ci_target_vp, 0);
			expect_none(t);
		} else {
			assert_int_equal(ci.ci_target_vp, 1);
			if (vers[i] >= VMBUS_VERSION_IRON) {
				const struct fp_msg *rm = expect_msg(
					t, VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE);
				assert_int_equal(rm->len, 16);
				assert_int_equal(hv_get_le32(rm->buf + 8), 1);
				assert_int_equal(hv_get_le32(rm->buf + 12), 0);
			}
			expect_none(t);
			/* 0xFFFFFFFF is not allowed here */
			hv_put_le32(m + 12, 0xFFFFFFFFu);
			send(t, m, 16);
			assert_int_equal(chan_info_of(t, 1).ci_target_vp, 1);
			if (vers[i] >= VMBUS_VERSION_IRON) {
				const struct fp_msg *rm = expect_msg(
					t, VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE);
				assert_int_not_equal(hv_get_le32(rm->buf + 12), 0);
			}
		}
		t_free(t);
	}
}

/* ---- rescind, unload, reconnect ----------------------------------------- */

static void test_rescind(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint64_t b;

	open_chan(t, &g, 1, 0x40, 2, 4, 0);
	assert_int_equal(hvs_vmbus_rescind(t->s, 1), 0);
	assert_int_equal(r.rescinds, 1);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.last_why, HVS_CLOSE_RESCIND);
	const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
	assert_int_equal(m->len, 12);
	assert_int_equal(hv_get_le32(m->buf + 8), 1);
	assert_int_equal(hvs_vmbus_rescind(t->s, 1), -VMBUS_EBUSY);
	assert_int_equal(hvs_vmbus_rescind(t->s, 99), -VMBUS_ENOENT);
	/* an OPENCHANNEL for a rescinded channel is never answered */
	open_msg(t, 1, 5, 0x40, 0, 2);
	expect_none(t);
	/* CLOSECHANNEL after the rescind: accepted silently */
	b = nbad(t);
	relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, 1);
	assert_int_equal(nbad(t), b);
	/* the ring GPADL can be torn down now */
	teardown_msg(t, 1, 0x40);
	expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	/* RELID_RELEASED for a channel not rescinded: refused */
	b = nbad(t);
	relid_msg(t, VMBUS_CHANMSG_RELID_RELEASED, 2);
	assert_int_equal(nbad(t), b + 1);
	/* relid 1 is still taken until released */
	assert_int_equal(hvs_echo_add(t->s, NULL), 3);
	expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(r.destroys, 0);
	relid_msg(t, VMBUS_CHANMSG_RELID_RELEASED, 1);
	assert_int_equal(r.destroys, 1);
	/* relid 1 is reused */
	assert_int_equal(hvs_echo_add(t->s, NULL), 1);
	m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(hv_get_le32(m->buf + 184), 1);
	/* a rescind before the guest asked for offers: gone at once */
	struct rec r2 = { 0 };
	static const struct hv_guid kvp = HV_GUID_KVP_INIT;
	struct t *t2 = t_new(VMBUS_VERSION_IRON, 1);
	assert_int_equal(hvs_vmbus_add_device(t2->s, &rec_ops, &r2, &kvp, NULL,
					      NULL), 1);
	assert_int_equal(hvs_vmbus_rescind(t2->s, 1), 0);
	assert_int_equal(r2.destroys, 1);
	expect_none(t2);
	t_free(t2);
	/* a VSP rescinding its own channel from inside its callback */
	struct t *t3 = t_new(VMBUS_VERSION_IRON, 1);
	struct rec r3 = { 0 };
	struct gch g3;
	uint32_t rl[2];
	assert_int_equal(hvs_vmbus_add_device(t3->s, &rec_ops, &r3, &kvp, NULL,
					      NULL), 1);
	connect_ok(t3, VMBUS_VERSION_IRON);
	assert_int_equal(request_offers(t3, rl, 2), 1);
	open_chan(t3, &g3, 1, 0x42, 2, 4, 0);
	r3.rescind_in_signal = true;
	guest_signal(t3, &g3);
	assert_int_equal(r3.closes, 1);
	assert_false(r3.closed_in_signal);
	assert_int_equal(r3.last_why, HVS_CLOSE_RESCIND);
	expect_msg(t3, VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
	teardown_msg(t3, 1, 0x42);
	expect_msg(t3, VMBUS_CHANMSG_GPADL_TORNDOWN);
	t_free(t3);
	/* a GPADL left behind by a rescinded channel goes with its relid */
	assert_int_equal(gpadl_pages(t, 2, 0x41, fp_alloc(t->p, 2), 2), 0);
	assert_int_equal(hvs_vmbus_rescind(t->s, 2), 0);
	expect_msg(t, VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
	relid_msg(t, VMBUS_CHANMSG_RELID_RELEASED, 2);
	struct hvs_vmbus_stats st;
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_gpadls, 0);
	t_free(t);
}

static void test_unload_reconnect(void **state)
{
	(void)state;
	const uint32_t vers[] = { VMBUS_VERSION_WS2008, VMBUS_VERSION_WIN7,
				  VMBUS_VERSION_IRON };
	for (size_t i = 0; i < 3; i++) {
		struct rec r = { 0 };
		struct t *t = connected_with_rec(&r, vers[i]);
		struct gch g;
		uint32_t relids[4];
		open_chan(t, &g, 1, 0x50, 2, 4, 0);
		hdr_only(t, VMBUS_CHANMSG_UNLOAD);
		assert_int_equal(r.closes, 1);
		assert_int_equal(r.last_why, HVS_CLOSE_RESET);
		if (vers[i] >= VMBUS_VERSION_WIN7) {
			const struct fp_msg *m =
				expect_msg(t, VMBUS_CHANMSG_UNLOAD_RESPONSE);
			assert_int_equal(m->len, 8);
		}
		expect_none(t);
		struct hvs_vmbus_stats st;
		hvs_vmbus_get_stats(t->s, &st);
		assert_false(st.vs_connected);
		assert_int_equal(st.vs_gpadls, 0);
		/* not connected: REQUESTOFFERS refused */
		uint64_t b = nbad(t);
		hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
		assert_int_equal(nbad(t), b + 1);
		expect_none(t);
		/* reconnect: same relids */
		connect_ok(t, VMBUS_VERSION_IRON);
		assert_int_equal(request_offers(t, relids, 4), 2);
		assert_true((relids[0] == 1 && relids[1] == 2) ||
			    (relids[0] == 2 && relids[1] == 1));
		t_free(t);
	}

	/* INITIATE_CONTACT while connected = implicit disconnect */
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint32_t relids[4];
	open_chan(t, &g, 1, 0x60, 2, 4, 0);
	connect_ok(t, VMBUS_VERSION_WIN10);
	assert_int_equal(r.closes, 1);
	expect_none(t);
	struct hvs_vmbus_stats st;
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_version, VMBUS_VERSION_WIN10);
	assert_int_equal(st.vs_gpadls, 0);
	assert_int_equal(request_offers(t, relids, 4), 2);
	t_free(t);
}

static void test_subchannels(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint8_t buf[4096];

	open_chan(t, &g, 2, 0x70, 2, 4, 0);
	uint8_t req[16] = { 0 };
	memcpy(req, ECHO_SUBCH_MAGIC, ECHO_SUBCH_MAGIC_LEN);
	hv_put_le16(req + 8, 3);
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 1, req, 10, true);
	for (uint16_t i = 1; i <= 3; i++) {
		const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
		assert_int_equal(hv_get_le16(m->buf + 180), i);
		static const struct hv_guid echo = HV_GUID_ECHO_INIT;
		assert_memory_equal(m->buf + 8, echo.g_bytes, 16);
		assert_int_equal(hv_get_le32(m->buf + 184), 2 + i);
	}
	expect_none(t);
	assert_true(guest_recv(&g, buf, sizeof(buf)) > 0); /* the echo */
	/* primary rescind takes the subchannels first */
	assert_int_equal(hvs_vmbus_rescind(t->s, 2), 0);
	uint32_t order[4];
	for (int i = 0; i < 4; i++) {
		const struct fp_msg *m = expect_msg(t,
			VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
		order[i] = hv_get_le32(m->buf + 8);
	}
	assert_int_equal(order[3], 2);
	/* direct API errors */
	assert_int_equal(hvs_vmbus_offer_subchannel(t->s, 2, 4), -VMBUS_ENOENT);
	assert_int_equal(hvs_vmbus_offer_subchannel(t->s, 1, 1), -VMBUS_EINVAL);
	t_free(t);
}

/* ---- echo through real rings ------------------------------------------- */

static void check_echo(struct gch *g, uint64_t tid, const uint8_t *data,
		       uint32_t len, bool completion)
{
	uint8_t buf[8192];
	uint32_t n = guest_recv(g, buf, sizeof(buf));
	assert_int_equal(n, 16 + ((len + 7) & ~7u));
	assert_int_equal(hv_get_le16(buf), VMBUS_PACKET_TYPE_DATA_INBAND);
	assert_int_equal(hv_get_le16(buf + 2), 2);
	assert_int_equal(hv_get_le64(buf + 8), tid);
	assert_memory_equal(buf + 16, data, len);
	if (completion) {
		n = guest_recv(g, buf, sizeof(buf));
		assert_int_equal(n, 16);
		assert_int_equal(hv_get_le16(buf), VMBUS_PACKET_TYPE_COMP);
		assert_int_equal(hv_get_le64(buf + 8), tid);
	}
}

static void test_echo_roundtrip(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint8_t data[600];

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	open_chan(t, &g, 2, 0x80, 4, 8, 1);
	unsigned ev0 = t->p->nevents;
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND,
		   VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, 0x1234, data, 600,
		   true);
	check_echo(&g, 0x1234, data, 600, true);
	/* the host signalled vp 1 with flag = relid (>= 2.4) */
	assert_true(t->p->nevents > ev0);
	assert_int_equal(t->p->events[ev0].vp, 1);
	assert_int_equal(t->p->events[ev0].sint, 2);
	assert_int_equal(t->p->events[ev0].flag, 2);
	/* several packets in one signal, odd sizes */
	for (unsigned i = 1; i <= 5; i++)
		guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, i, data,
			   i * 3, false);
	guest_signal(t, &g);
	for (unsigned i = 1; i <= 5; i++)
		check_echo(&g, i, data, i * 3, false);
	assert_int_equal(guest_recv(&g, data, sizeof(data)), 0);
	/* interrupt_mask set by the guest: no signal for the echo */
	ev0 = t->p->nevents;
	vmbus_ring_mask(&g.rx);
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 9, data, 8, true);
	assert_int_equal(t->p->nevents, ev0);
	check_echo(&g, 9, data, 8, false);
	struct hvs_chan_info ci = chan_info_of(t, 2);
	assert_int_equal(ci.ci_pkts_in, 7);
	assert_int_equal(ci.ci_pkts_out, 8);
	assert_int_equal(ci.ci_proto_errors, 0);
	char json[4096];
	int jl = hvs_vmbus_describe_json(t->s, json, sizeof(json));
	assert_true(jl > 0);
	assert_non_null(strstr(json, "\"relid\":2"));
	assert_non_null(strstr(json, "\"class_name\":\"echo\""));
	assert_non_null(strstr(json, "\"version\":\"5.3\""));
	assert_int_equal(hvs_vmbus_describe_json(t->s, json, 40),
			 -VMBUS_ENOBUFS);
	assert_int_equal(strlen(json), 39);
	t_free(t);
}

static void test_echo_old_versions(void **state)
{
	(void)state;
	const uint32_t vers[] = { VMBUS_VERSION_WS2008, VMBUS_VERSION_WIN7 };
	for (size_t i = 0; i < 2; i++) {
		struct rec r = { 0 };
		struct t *t = connected_with_rec(&r, vers[i]);
		struct gch g;
		uint8_t data[32] = "hello, old host";
		open_chan(t, &g, 2, 0x90, 2, 4, 1 /* ignored < 2.4 */);
		unsigned ev0 = t->p->nevents;
		guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 3, data,
			   sizeof(data), false);
		if (vers[i] == VMBUS_VERSION_WS2008) {
			/* 0.13: send-half bit + connection 2 */
			uint8_t *ip = fp_ptr(t->p, t->int_page);
			ip[2048] |= 1u << 2;
			assert_int_equal(t->ops->signal_event(t->s, 2, 0), 0);
			assert_int_equal(ip[2048], 0); /* consumed */
		} else {
			guest_signal(t, &g);
		}
		check_echo(&g, 3, data, sizeof(data), false);
		/* host -> guest: receive-half bit + flag 0 on vp 0 */
		uint8_t *ip = fp_ptr(t->p, t->int_page);
		assert_int_equal(ip[0] & (1u << 2), 1u << 2);
		assert_true(t->p->nevents > ev0);
		assert_int_equal(t->p->events[ev0].vp, 0);
		assert_int_equal(t->p->events[ev0].flag, 0);
		t_free(t);
	}
	/* connection 2 is not an event connection from 2.4 on */
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_WIN8);
	assert_int_equal(t->ops->signal_event(t->s, 2, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	t_free(t);
}

static void guest_send_gpa(struct t *t, struct gch *g, uint64_t tid,
			   uint32_t off, uint32_t count, const uint64_t *pfns,
			   uint32_t npfn)
{
	uint8_t pkt[512];
	uint32_t plen = 24 + 8 + 8 * npfn + 8; /* + 8 bytes of request */
	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT);
	hv_put_le16(pkt + 2, (uint16_t)((plen - 8) / 8));
	hv_put_le16(pkt + 4, (uint16_t)(plen / 8));
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, tid);
	hv_put_le32(pkt + 16, 0xDEADBEEF); /* reserved: garbage allowed */
	hv_put_le32(pkt + 20, 1);
	hv_put_le32(pkt + 24, count);
	hv_put_le32(pkt + 28, off);
	for (uint32_t i = 0; i < npfn; i++)
		hv_put_le64(pkt + 32 + 8 * i, pfns[i]);
	struct vmbus_iov iov = { pkt, plen };
	assert_int_equal(vmbus_ring_write(&g->tx, &iov, 1, NULL), 0);
	guest_signal(t, g);
}

static void test_echo_gpa_direct(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint8_t buf[8192];

	open_chan(t, &g, 2, 0xA0, 4, 8, 0);
	uint64_t gpa = fp_alloc(t->p, 3);
	uint8_t *mem = fp_ptr(t->p, gpa);
	for (unsigned i = 0; i < 3 * 4096; i++)
		mem[i] = (uint8_t)(i ^ (i >> 8));
	/* pages 2, 0 (out of order) from offset 4000, 200 bytes */
	uint64_t pfns[2] = { (gpa >> 12) + 2, gpa >> 12 };
	guest_send_gpa(t, &g, 0x55, 4000, 200, pfns, 2);
	uint32_t n = guest_recv(&g, buf, sizeof(buf));
	assert_int_equal(n, 16 + 200);
	assert_int_equal(hv_get_le64(buf + 8), 0x55);
	assert_memory_equal(buf + 16, mem + 2 * 4096 + 4000, 96);
	assert_memory_equal(buf + 16 + 96, mem, 104);
	n = guest_recv(&g, buf, sizeof(buf));
	assert_int_equal(hv_get_le16(buf), VMBUS_PACKET_TYPE_COMP);
	/* a PFN outside guest RAM: no echo, completion only, counted */
	uint64_t badp[2] = { gpa >> 12, RAM_BYTES >> 12 };
	guest_send_gpa(t, &g, 0x56, 0, 8192, badp, 2);
	n = guest_recv(&g, buf, sizeof(buf));
	assert_int_equal(hv_get_le16(buf), VMBUS_PACKET_TYPE_COMP);
	assert_int_equal(hv_get_le64(buf + 8), 0x56);
	assert_int_equal(guest_recv(&g, buf, sizeof(buf)), 0);
	assert_int_equal(chan_info_of(t, 2).ci_proto_errors, 1);
	assert_int_equal(chan_info_of(t, 2).ci_state, HVS_CHAN_OPEN);
	t_free(t);
}

static void test_echo_flow_control(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint8_t data[1000], buf[4096];

	memset(data, 0xAB, sizeof(data));
	/* guest->host ring 3 data pages, host->guest ring 1 data page */
	open_chan(t, &g, 2, 0xB0, 4, 6, 0);
	unsigned sent = 0, got = 0;
	/* fill the guest->host ring; the host echoes until its ring fills */
	while (sent < 12) {
		guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, sent + 1,
			   data, sizeof(data), true);
		sent++;
	}
	/* the host's ring (4096 data bytes) holds at most 3 echoes */
	struct hv_ring_control *rxc = fp_ptr(t->p, g.gpa + 4 * 4096);
	assert_int_not_equal(hv_le32(rxc->rc_pending_send_sz), 0);
	assert_true(hv_le32(rxc->rc_feature_bits) & HV_RING_FEAT_PENDING_SEND_SZ);
	/* drain as the guest and signal after each batch as a guest does
	 * when it satisfies pending_send_sz */
	for (int rounds = 0; rounds < 100 && got < sent; rounds++) {
		uint32_t n;
		while ((n = guest_recv(&g, buf, sizeof(buf))) > 0) {
			assert_int_equal(n, 16 + 1000);
			assert_int_equal(hv_get_le64(buf + 8), got + 1);
			got++;
		}
		bool sig = vmbus_ring_read_done(&g.rx);
		if (sig)
			guest_signal(t, &g);
		else
			hvs_vmbus_poll(t->s); /* backstop path */
	}
	assert_int_equal(got, sent);
	assert_int_equal(hv_le32(rxc->rc_pending_send_sz), 0);
	t_free(t);
}

/* ---- scattered ring pages (the layout of a Linux guest) -------------------- */

/*
 * Open channel relid with a ring GPADL whose pages are pfns[0..n) - scattered
 * and out of order in guest RAM, as a real guest allocates them. The guest
 * side maps the same pages contiguously for itself (g->tx/g->rx point into
 * that view). Returns the guest view (fp_unmap_guest(view, n) when done).
 */
static uint8_t *open_scattered(struct t *t, struct gch *g, uint32_t relid,
			       uint32_t handle, uint32_t down,
			       const uint64_t *pfns, uint32_t n)
{
	memset(g, 0, sizeof(*g));
	g->relid = relid;
	g->gpadl = handle;
	g->openid = relid + 200;
	g->down = down;
	g->total = n;
	uint8_t *view = fp_map_guest(t->p, pfns, n);
	assert_int_equal(vmbus_ring_init(&g->tx, view, down * 4096u), 0);
	assert_int_equal(vmbus_ring_init(&g->rx, view + down * 4096u,
					 (n - down) * 4096u), 0);
	vmbus_ring_reset_shared(&g->tx, true);
	vmbus_ring_reset_shared(&g->rx, false);
	assert_int_equal(gpadl_raw(t, relid, handle, 0, n * 4096u, pfns, n, 0,
				   false), 0);
	open_msg(t, relid, g->openid, handle, 0, down);
	assert_int_equal(open_result(t, relid, g->openid), 0);
	return view;
}

/* Page k of a 32-page region at pfn base, in the order a scattered ring
 * uses them: 4 guest->host pages, then 6 host->guest pages. */
static const uint8_t scatter_order[10] = { 29, 3, 17, 8, 26, 12, 1, 21, 5, 14 };

static void scatter_pfns(uint64_t base, uint64_t *pfns)
{
	for (unsigned i = 0; i < 10; i++)
		pfns[i] = base + scatter_order[i];
}

static uint32_t nwindows(struct t *t)
{
	struct hvs_vmbus_stats st;
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_windows, t->p->nwindows);
	return st.vs_windows;
}

static void test_scattered_rings_echo(void **state)
{
	(void)state;
	const uint32_t vers[] = { VMBUS_VERSION_IRON, VMBUS_VERSION_WIN8,
				  VMBUS_VERSION_WIN7 };
	for (size_t v = 0; v < 3; v++) {
		struct rec r = { 0 };
		struct t *t = connected_with_rec(&r, vers[v]);
		struct gch g;
		uint8_t data[1500];
		uint64_t pfns[10];
		uint64_t base = fp_alloc(t->p, 32) >> 12;
		memset(fp_ptr(t->p, base << 12), 0xA5, 32 * 4096);
		scatter_pfns(base, pfns);

		uint8_t *view = open_scattered(t, &g, 2, 0xD0, 4, pfns, 10);
		assert_int_equal(nwindows(t), 1);
		/* 40 packets of 1500 bytes: both rings wrap several times and
		 * packets straddle the (physically discontiguous) page
		 * boundaries of the windows */
		for (unsigned i = 0; i < 40; i++) {
			for (unsigned k = 0; k < sizeof(data); k++)
				data[k] = (uint8_t)(i * 31 + k);
			guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND,
				   VMBUS_PACKET_FLAG_COMPLETION_REQUESTED,
				   i + 1, data, sizeof(data), true);
			check_echo(&g, i + 1, data, sizeof(data), true);
			if (vmbus_ring_read_done(&g.rx))
				guest_signal(t, &g);
		}
		/* the host wrote its ring where the GPADL says: the guest's
		 * host->guest control page (ring page 4) is guest page
		 * pfns[4] */
		uint32_t wi = hv_get_le32(fp_ptr(t->p, pfns[4] << 12));
		assert_int_not_equal(wi, 0);
		assert_int_equal(wi, hv_get_le32(view + 4 * 4096));
		/* and nowhere else: the pages of the region that are not ring
		 * pages still hold the pattern */
		for (unsigned k = 0; k < 32; k++) {
			bool ring = false;
			for (unsigned i = 0; i < 10; i++)
				ring |= scatter_order[i] == k;
			if (ring)
				continue;
			const uint8_t *pg = fp_ptr(t->p, (base + k) << 12);
			for (unsigned b = 0; b < 4096; b++)
				assert_int_equal(pg[b], 0xA5);
		}
		struct hvs_chan_info ci = chan_info_of(t, 2);
		assert_int_equal(ci.ci_pkts_in, 40);
		assert_int_equal(ci.ci_proto_errors, 0);
		relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, 2);
		assert_int_equal(nwindows(t), 0);
		teardown_msg(t, 2, 0xD0);
		expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
		fp_unmap_guest(view, 10);
		t_free(t);
	}
}

static void test_scattered_rings_hostile(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint64_t pfns[10], bad[10];
	uint64_t base = fp_alloc(t->p, 32) >> 12;
	uint8_t data[64] = "scattered";
	uint64_t b;
	scatter_pfns(base, pfns);

	/* PFN outside guest RAM, PFN 0: no GPADL, so no OPENCHANNEL */
	for (int c = 0; c < 2; c++) {
		memcpy(bad, pfns, sizeof(bad));
		bad[5] = c == 0 ? RAM_BYTES >> 12 : 0;
		log_clear();
		assert_int_not_equal(gpadl_raw(t, 2, 0xE0, 0, 10 * 4096, bad,
					       10, 0, false), 0);
		assert_true(log_has(c == 0 ? "PFN outside guest RAM"
					   : "PFN 0"));
		b = nbad(t);
		open_msg(t, 2, 9, 0xE0, 0, 4);
		assert_int_not_equal(open_result(t, 2, 9), 0);
		assert_int_equal(nbad(t), b + 1);
		assert_true(log_has("unknown ring GPADL"));
	}
	/* a page listed twice (the host->guest control page is also a
	 * guest->host data page): the window is refused, the open fails */
	memcpy(bad, pfns, sizeof(bad));
	bad[2] = bad[4];
	assert_int_equal(gpadl_raw(t, 2, 0xE1, 0, 10 * 4096, bad, 10, 0,
				   false), 0);
	b = nbad(t);
	log_clear();
	open_msg(t, 2, 9, 0xE1, 0, 4);
	assert_int_not_equal(open_result(t, 2, 9), 0);
	assert_int_equal(nbad(t), b + 1);
	assert_true(log_has("ring pages cannot be mapped"));
	assert_int_equal(t->p->window_refusals, 1);
	assert_int_equal(nwindows(t), 0);
	assert_int_equal(chan_info_of(t, 2).ci_state, HVS_CHAN_OFFERED);
	/* that GPADL is not used: it tears down at once */
	teardown_msg(t, 2, 0xE1);
	expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	/* the channel still opens with good scattered pages */
	uint8_t *view = open_scattered(t, &g, 2, 0xE2, 4, pfns, 10);
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 7, data, 64, true);
	check_echo(&g, 7, data, 64, false);
	t_free(t);
	fp_unmap_guest(view, 10);
}

/* Many open/close cycles, ended every way a channel can end: no window
 * outlives its channel. */
static void test_ring_windows_no_leak(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	uint64_t pfns[10];
	uint64_t base = fp_alloc(t->p, 32) >> 12;
	uint8_t data[100] = "cycle";
	uint32_t relid = 2, relids[8];
	const unsigned cycles = 200;
	scatter_pfns(base, pfns);

	for (unsigned i = 0; i < cycles; i++) {
		struct gch g;
		uint32_t handle = 0x1000 + i;
		uint8_t *view = open_scattered(t, &g, relid, handle, 4, pfns,
					       10);
		assert_int_equal(nwindows(t), 1);
		guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, i, data,
			   sizeof(data), true);
		check_echo(&g, i, data, sizeof(data), false);
		switch (i % 5) {
		case 0: /* guest close, then teardown */
			relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, relid);
			assert_int_equal(nwindows(t), 0);
			teardown_msg(t, relid, handle);
			expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
			break;
		case 1: /* host rescind; guest releases the relid */
			assert_int_equal(hvs_vmbus_rescind(t->s, relid), 0);
			assert_int_equal(nwindows(t), 0);
			expect_msg(t, VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
			relid_msg(t, VMBUS_CHANMSG_RELID_RELEASED, relid);
			relid = (uint32_t)hvs_echo_add(t->s, NULL);
			expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
			break;
		case 2: /* UNLOAD and reconnect */
			hdr_only(t, VMBUS_CHANMSG_UNLOAD);
			assert_int_equal(nwindows(t), 0);
			expect_msg(t, VMBUS_CHANMSG_UNLOAD_RESPONSE);
			connect_ok(t, VMBUS_VERSION_IRON);
			assert_int_equal(request_offers(t, relids, 8), 2);
			break;
		case 3: /* INITIATE_CONTACT while connected */
			connect_ok(t, VMBUS_VERSION_IRON);
			assert_int_equal(nwindows(t), 0);
			assert_int_equal(request_offers(t, relids, 8), 2);
			break;
		case 4: /* the guest closes a broken channel */
			hv_put_le32(view, 4); /* unaligned write_index */
			guest_signal(t, &g);
			assert_int_equal(chan_info_of(t, relid).ci_state,
					 HVS_CHAN_BROKEN);
			relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, relid);
			assert_int_equal(nwindows(t), 0);
			teardown_msg(t, relid, handle);
			expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
			break;
		}
		expect_none(t);
		fp_unmap_guest(view, 10);
	}
	assert_int_equal(t->p->windows_total, cycles);
	/* the partition ends with a channel open: released in `ended` */
	struct gch g;
	uint8_t *view = open_scattered(t, &g, relid, 0x9999, 4, pfns, 10);
	assert_int_equal(nwindows(t), 1);
	t->ops->ended(t->s, HVS_END_GONE);
	assert_int_equal(t->p->nwindows, 0);
	expect_none(t);
	fp_unmap_guest(view, 10);
	t_free(t); /* fp_destroy aborts on a leaked window */
}

/* ---- what the host touches after OPENCHANNEL -------------------------------- */

/*
 * With the guard on, the host's view of guest RAM is PROT_NONE except the
 * allowed pages, and every hvs_gpa_* access or window outside them is
 * refused and counted (fake_partition.h). The ring windows are mappings
 * of their own. So a host that reached for any other page - through the
 * checked calls or through a pointer kept from earlier - either counts a
 * violation or faults.
 */
static void guarded_traffic(uint32_t ver)
{
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, ver);
	struct gch g;
	uint8_t data[2000], buf[8192];
	uint64_t pfns[10];
	uint64_t base = fp_alloc(t->p, 32) >> 12;
	scatter_pfns(base, pfns);
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);

	/* The guest's side of the rings and the ring GPADL. */
	memset(&g, 0, sizeof(g));
	g.relid = 2;
	uint8_t *view = fp_map_guest(t->p, pfns, 10);
	vmbus_ring_init(&g.tx, view, 4 * 4096u);
	vmbus_ring_init(&g.rx, view + 4 * 4096u, 6 * 4096u);
	vmbus_ring_reset_shared(&g.tx, true);
	vmbus_ring_reset_shared(&g.rx, false);
	assert_int_equal(gpadl_raw(t, 2, 0xF0, 0, 10 * 4096, pfns, 10, 0,
				   false), 0);

	/* From here on the host may touch the ring pages only (and, before
	 * 2.4, the interrupt page the guest named at INITIATE_CONTACT). */
	for (unsigned i = 0; i < 10; i++)
		fp_guard_allow(t->p, pfns[i] << 12, 1);
	if (ver < VMBUS_VERSION_WIN8)
		fp_guard_allow(t->p, t->int_page, 1);
	fp_guard(t->p, true);

	open_msg(t, 2, 77, 0xF0, 1, 4);
	assert_int_equal(open_result(t, 2, 77), 0);
	/* in-band echoes of many sizes, with completions */
	for (unsigned i = 1; i <= 30; i++) {
		uint32_t len = (i * 211) % sizeof(data) + 1;
		guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND,
			   VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, i, data, len,
			   true);
		check_echo(&g, i, data, len, true);
		if (vmbus_ring_read_done(&g.rx))
			guest_signal(t, &g);
	}
	/* the host->guest ring full: pending_send_sz, then drained */
	for (unsigned i = 100; i < 112; i++)
		guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, i, data,
			   sizeof(data), true);
	assert_int_not_equal(hv_get_le32(view + 4 * 4096 + 12), 0);
	unsigned got = 0;
	for (int rounds = 0; rounds < 50 && got < 12; rounds++) {
		while (guest_recv(&g, buf, sizeof(buf)) > 0)
			got++;
		if (vmbus_ring_read_done(&g.rx))
			guest_signal(t, &g);
		hvs_vmbus_poll(t->s);
	}
	assert_int_equal(got, 12);
	/* the guest masks its interrupts; the host polls */
	vmbus_ring_mask(&g.rx);
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 200, data, 64, true);
	check_echo(&g, 200, data, 64, false);
	hvs_vmbus_poll(t->s);
	assert_int_equal(chan_info_of(t, 2).ci_pkts_in, 43);
	assert_int_equal(chan_info_of(t, 2).ci_proto_errors, 0);
	/* channel messages while open, then close and tear down */
	if (ver >= VMBUS_VERSION_WIN10_RS3_0) {
		uint8_t m[16] = { 0 };
		hv_put_le32(m, VMBUS_CHANMSG_MODIFYCHANNEL);
		hv_put_le32(m + 8, 2);
		hv_put_le32(m + 12, 0);
		send(t, m, 16);
	}
	relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, 2);
	teardown_msg(t, 2, 0xF0);
	const struct fp_msg *fm;
	while ((fm = fp_pop(t->p)) != NULL)
		if (hv_get_le32(fm->buf) == VMBUS_CHANMSG_GPADL_TORNDOWN)
			break;
	assert_non_null(fm);

	assert_int_equal(t->p->guard_violations, 0);

	/* The guard is real: a checked access elsewhere is refused and
	 * counted, and a plain load through the host's view faults. */
	uint8_t x;
	assert_int_equal(hvs_gpa_read(t->p, (base + 2) << 12, &x, 1),
			 -VMBUS_EFAULT);
	assert_int_equal(t->p->guard_violations, 1);
	assert_int_equal(t->p->guard_last_gpa, (base + 2) << 12);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* no test framework handler: the fault must kill the child */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		volatile uint8_t *hv = t->p->ram + ((base + 2) << 12);
		_exit(*hv == 0xFF ? 3 : 0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);

	fp_guard(t->p, false);
	fp_unmap_guest(view, 10);
	t_free(t);
}

static void test_host_touches_only_ring_pages(void **state)
{
	(void)state;
	guarded_traffic(VMBUS_VERSION_IRON);
	guarded_traffic(VMBUS_VERSION_WIN8);
	guarded_traffic(VMBUS_VERSION_WIN7);
}

/* The same for GPA-direct packets: the host reads exactly the pages a
 * packet names, besides the rings. */
static void test_gpa_direct_touches_named_pages(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint8_t buf[8192];
	uint64_t pfns[10];
	uint64_t base = fp_alloc(t->p, 32) >> 12;
	uint64_t data = fp_alloc(t->p, 8) >> 12;
	scatter_pfns(base, pfns);
	for (unsigned k = 0; k < 8; k++)
		memset(fp_ptr(t->p, (data + k) << 12), 0x30 + k, 4096);

	uint8_t *view = open_scattered(t, &g, 2, 0xF1, 4, pfns, 10);
	for (unsigned i = 0; i < 10; i++)
		fp_guard_allow(t->p, pfns[i] << 12, 1);
	const uint64_t named[2] = { data + 5, data + 1 };
	fp_guard_allow(t->p, named[0] << 12, 1);
	fp_guard_allow(t->p, named[1] << 12, 1);
	fp_guard(t->p, true);
	guest_send_gpa(t, &g, 0x77, 4000, 300, named, 2);
	uint32_t n = guest_recv(&g, buf, sizeof(buf));
	assert_int_equal(n, 16 + 304);
	assert_int_equal(buf[16], 0x35);
	assert_int_equal(buf[16 + 96], 0x31);
	assert_int_equal(t->p->guard_violations, 0);
	/* a page it was not given access to: refused, counted */
	const uint64_t other[1] = { data + 3 };
	guest_send_gpa(t, &g, 0x78, 0, 100, other, 1);
	assert_int_equal(t->p->guard_violations, 1);
	assert_int_equal(t->p->guard_last_gpa, other[0] << 12);
	fp_guard(t->p, false);
	t_free(t);
	fp_unmap_guest(view, 10);
}

/* ---- device buffers mapped by a VSP (hvs_chan_map_gpadl) ----------------- */

/* A GPADL from a raw range stream (header message only, <= 220 bytes). */
static int64_t gpadl_stream(struct t *t, uint32_t relid, uint32_t handle,
			    const uint8_t *stream, uint32_t slen, uint16_t nr)
{
	uint8_t m[240];
	memset(m, 0, sizeof(m));
	assert_true(slen <= 220);
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_HEADER);
	hv_put_le32(m + 8, relid);
	hv_put_le32(m + 12, handle);
	hv_put_le16(m + 16, (uint16_t)slen);
	hv_put_le16(m + 18, nr);
	memcpy(m + 20, stream, slen);
	send(t, m, 20 + slen);
	const struct fp_msg *rm = expect_msg(t, VMBUS_CHANMSG_GPADL_CREATED);
	return hv_get_le32(rm->buf + 16);
}

static void test_vsp_map_gpadl(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint64_t len;
	uint64_t base = fp_alloc(t->p, 16) >> 12;
	/* a 5-page receive buffer, pages scattered and out of order, data
	 * from byte 100 of its first page */
	const uint64_t pfns[5] = { base + 9, base + 2, base + 3, base + 14,
				   base + 6 };
	const uint32_t count = 5 * 4096 - 100 - 300;
	for (int i = 0; i < 5; i++)
		memset(fp_ptr(t->p, pfns[i] << 12), 0x10 + i, 4096);

	open_chan(t, &g, 1, 0x300, 2, 4, 0);
	struct hvs_channel *ch = r.ch;
	assert_non_null(ch);
	assert_int_equal(gpadl_raw(t, 1, 0x301, 100, count, pfns, 5, 0, false),
			 0);
	uint8_t *buf = hvs_chan_map_gpadl(ch, 0x301, &len);
	assert_non_null(buf);
	assert_int_equal(len, count);
	assert_int_equal(nwindows(t), 2); /* rings + buffer */
	/* byte k of the buffer is byte (100 + k) % 4096 of page (100 + k) / 4096 */
	assert_int_equal(buf[0], 0x10);
	assert_int_equal(buf[4095 - 100], 0x10);
	assert_int_equal(buf[4096 - 100], 0x11);
	assert_int_equal(buf[3 * 4096 - 100], 0x13);
	assert_int_equal(buf[count - 1], 0x14);
	/* writes reach the guest's page */
	buf[2 * 4096 - 100 + 7] = 0xEE;
	assert_int_equal(((uint8_t *)fp_ptr(t->p, pfns[2] << 12))[7], 0xEE);
	/* a second mapping is the same window */
	assert_ptr_equal(hvs_chan_map_gpadl(ch, 0x301, NULL), buf);
	assert_int_equal(nwindows(t), 2);
	assert_int_equal(t->p->windows_total, 2);

	/* refused: unknown, another channel's, the ring GPADL, two ranges,
	 * a page listed twice */
	assert_int_equal(gpadl_pages(t, 2, 0x302, fp_alloc(t->p, 1), 1), 0);
	uint8_t st[32];
	hv_put_le32(st, 4096);
	hv_put_le32(st + 4, 0);
	hv_put_le64(st + 8, base + 1);
	hv_put_le32(st + 16, 4096);
	hv_put_le32(st + 20, 0);
	hv_put_le64(st + 24, base + 4);
	assert_int_equal(gpadl_stream(t, 1, 0x303, st, 32, 2), 0);
	const uint64_t dup[3] = { base + 7, base + 8, base + 7 };
	assert_int_equal(gpadl_raw(t, 1, 0x304, 0, 3 * 4096, dup, 3, 0, false),
			 0);
	const uint32_t no[] = { 0x399, 0x302, 0x300, 0x303, 0x304 };
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		log_clear();
		len = 1;
		assert_null(hvs_chan_map_gpadl(ch, no[i], &len));
		assert_int_equal(len, 0);
		assert_true(log_has("cannot be mapped"));
	}
	assert_int_equal(nwindows(t), 2);
	assert_int_equal(chan_info_of(t, 1).ci_proto_errors, 5);
	/* nor held as a device buffer (OPENCHANNEL refuses a held one) */
	log_clear();
	assert_int_equal(hvs_chan_gpadl_hold(ch, 0x300, &len), -VMBUS_EBUSY);
	assert_true(log_has("cannot be held"));
	assert_int_equal(chan_info_of(t, 1).ci_proto_errors, 6);
	hvs_chan_gpadl_put(ch, 0x300);	/* not held: no-op */

	/* teardown while mapped waits (spec 5.4) */
	uint64_t b = nbad(t);
	teardown_msg(t, 1, 0x301);
	expect_none(t);
	assert_int_equal(nbad(t), b);
	assert_null(hvs_chan_map_gpadl(ch, 0x301, NULL)); /* on its way out */
	teardown_msg(t, 1, 0x301);                          /* again: refused */
	assert_int_equal(nbad(t), b + 1);
	hvs_chan_unmap_gpadl(ch, 0x301);
	expect_none(t);                /* still mapped once */
	assert_int_equal(buf[0], 0x10);
	hvs_chan_unmap_gpadl(ch, 0x301);
	const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	assert_int_equal(hv_get_le32(m->buf + 8), 0x301);
	assert_int_equal(nwindows(t), 1);
	hvs_chan_unmap_gpadl(ch, 0x301); /* gone: no-op */

	/* a hold makes the teardown wait too; the put answers it */
	assert_int_equal(gpadl_raw(t, 1, 0x305, 0, 4096, pfns, 1, 0, false), 0);
	assert_int_equal(hvs_chan_gpadl_hold(ch, 0x305, &len), 0);
	assert_int_equal(len, 4096);
	teardown_msg(t, 1, 0x305);
	expect_none(t);
	assert_int_equal(hvs_chan_gpadl_hold(ch, 0x305, NULL), -VMBUS_ENOENT);
	uint8_t x;
	assert_int_equal(hvs_chan_gpadl_read(ch, 0x305, 0, &x, 1), 0);
	assert_int_equal(x, 0x10);
	hvs_chan_gpadl_put(ch, 0x305);
	m = expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	assert_int_equal(hv_get_le32(m->buf + 8), 0x305);

	/* the guest closes the channel while a buffer is mapped and its
	 * teardown waits: released after vo_close, answered */
	assert_int_equal(gpadl_raw(t, 1, 0x306, 0, 2 * 4096, pfns, 2, 0, false),
			 0);
	assert_non_null(hvs_chan_map_gpadl(ch, 0x306, NULL));
	assert_int_equal(gpadl_raw(t, 1, 0x307, 0, 4096, pfns + 3, 1, 0, false),
			 0);
	assert_non_null(hvs_chan_map_gpadl(ch, 0x307, NULL));
	assert_int_equal(hvs_chan_gpadl_hold(ch, 0x307, NULL), 0);
	teardown_msg(t, 1, 0x306);
	expect_none(t);
	assert_int_equal(nwindows(t), 3);
	relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, 1);
	assert_int_equal(r.closes, 1);
	m = expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	assert_int_equal(hv_get_le32(m->buf + 8), 0x306);
	expect_none(t);
	assert_int_equal(nwindows(t), 0);
	/* 0x307 was released too: its teardown is answered at once */
	teardown_msg(t, 1, 0x307);
	expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);

	/* a rescind releases them too; the waiting teardown is answered */
	open_chan(t, &g, 1, 0x310, 2, 4, 0);
	ch = r.ch;
	assert_int_equal(gpadl_raw(t, 1, 0x311, 0, 4096, pfns, 1, 0, false), 0);
	assert_non_null(hvs_chan_map_gpadl(ch, 0x311, NULL));
	teardown_msg(t, 1, 0x311);
	expect_none(t);
	assert_int_equal(hvs_vmbus_rescind(t->s, 1), 0);
	assert_int_equal(r.last_why, HVS_CLOSE_RESCIND);
	m = expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	assert_int_equal(hv_get_le32(m->buf + 8), 0x311);
	expect_msg(t, VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
	assert_int_equal(nwindows(t), 0);
	t_free(t);

	/* UNLOAD and the partition's end: released, no replies (the
	 * connection and its GPADLs are gone) */
	for (int how = 0; how < 2; how++) {
		struct rec r2 = { 0 };
		t = connected_with_rec(&r2, VMBUS_VERSION_IRON);
		open_chan(t, &g, 1, 0x320, 2, 4, 0);
		assert_int_equal(gpadl_raw(t, 1, 0x321, 0, 4096, pfns, 1, 0,
					   false), 0);
		assert_non_null(hvs_chan_map_gpadl(r2.ch, 0x321, NULL));
		teardown_msg(t, 1, 0x321);
		expect_none(t);
		if (how == 0) {
			hdr_only(t, VMBUS_CHANMSG_UNLOAD);
			expect_msg(t, VMBUS_CHANMSG_UNLOAD_RESPONSE);
		} else {
			t->ops->ended(t->s, HVS_END_POWER_OFF);
		}
		assert_int_equal(r2.last_why, HVS_CLOSE_RESET);
		expect_none(t);
		assert_int_equal(nwindows(t), 0);
		t_free(t);
	}
}

/* ---- hostile rings --------------------------------------------------------- */

static void hostile_case(int which)
{
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint8_t data[64] = { 1 };
	uint8_t buf[4096];
	struct hv_ring_control *txc;

	open_chan(t, &g, 2, 0xC0, 4, 8, 0);
	txc = fp_ptr(t->p, g.gpa);
	switch (which) {
	case 0: /* write_index out of range */
		txc->rc_write_index = hv_cpu_to_le32(3 * 4096);
		break;
	case 1: /* unaligned */
		txc->rc_write_index = hv_cpu_to_le32(4);
		break;
	case 2: /* 0xFFFFFFF8 */
		txc->rc_write_index = hv_cpu_to_le32(0xFFFFFFF8u);
		break;
	case 3: { /* len8 < offset8 */
		uint8_t p[32] = { 0 };
		hv_put_le16(p, 6);
		hv_put_le16(p + 2, 3);
		hv_put_le16(p + 4, 2);
		struct vmbus_iov iov = { p, 16 };
		vmbus_ring_write(&g.tx, &iov, 1, NULL);
		break;
	}
	case 4: { /* packet claims more than was written */
		uint8_t p[32] = { 0 };
		hv_put_le16(p, 6);
		hv_put_le16(p + 2, 2);
		hv_put_le16(p + 4, 200);
		struct vmbus_iov iov = { p, 32 };
		vmbus_ring_write(&g.tx, &iov, 1, NULL);
		break;
	}
	case 5: { /* unknown flag bits */
		uint8_t p[16] = { 0 };
		hv_put_le16(p, 6);
		hv_put_le16(p + 2, 2);
		hv_put_le16(p + 4, 2);
		hv_put_le16(p + 6, 0x8000);
		struct vmbus_iov iov = { p, 16 };
		vmbus_ring_write(&g.tx, &iov, 1, NULL);
		break;
	}
	case 6: { /* offset8 < 2 */
		uint8_t p[16] = { 0 };
		hv_put_le16(p, 6);
		hv_put_le16(p + 2, 1);
		hv_put_le16(p + 4, 2);
		struct vmbus_iov iov = { p, 16 };
		vmbus_ring_write(&g.tx, &iov, 1, NULL);
		break;
	}
	case 7: { /* GPA direct with range_cnt 0 / ranges past offset8 */
		uint8_t p[48] = { 0 };
		hv_put_le16(p, 9);
		hv_put_le16(p + 2, 4);
		hv_put_le16(p + 4, 6);
		hv_put_le32(p + 20, 2); /* two ranges, room for one header */
		hv_put_le32(p + 24, 4096);
		struct vmbus_iov iov = { p, 48 };
		vmbus_ring_write(&g.tx, &iov, 1, NULL);
		break;
	}
	case 8: /* partial packet: 8 bytes */
		txc->rc_write_index = hv_cpu_to_le32(8);
		break;
	}
	guest_signal(t, &g);
	struct hvs_chan_info ci = chan_info_of(t, 2);
	assert_int_equal(ci.ci_state, HVS_CHAN_BROKEN);
	assert_true(ci.ci_proto_errors >= 1);
	assert_int_equal(guest_recv(&g, buf, sizeof(buf)), 0);
	/* further signals: ignored; the guest can close and reopen */
	guest_signal(t, &g);
	relid_msg(t, VMBUS_CHANMSG_CLOSECHANNEL, 2);
	teardown_msg(t, 2, 0xC0);
	expect_msg(t, VMBUS_CHANMSG_GPADL_TORNDOWN);
	open_chan(t, &g, 2, 0xC1, 4, 8, 0);
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 1, data, 64, true);
	check_echo(&g, 1, data, 64, false);
	/* the other channel never noticed */
	assert_int_equal(chan_info_of(t, 1).ci_proto_errors, 0);
	t_free(t);
}

static void test_hostile_rings(void **state)
{
	(void)state;
	for (int i = 0; i <= 8; i++)
		hostile_case(i);
}

static void test_unknown_packet_type_skipped(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = connected_with_rec(&r, VMBUS_VERSION_IRON);
	struct gch g;
	uint8_t data[16] = "after unknown";

	open_chan(t, &g, 2, 0xD0, 4, 8, 0);
	guest_send(t, &g, 0x5, 0, 7, data, 16, false);
	guest_send(t, &g, VMBUS_PACKET_TYPE_COMP, 0, 8, data, 16, false);
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 9, data, 16, true);
	check_echo(&g, 9, data, 16, false);
	struct hvs_chan_info ci = chan_info_of(t, 2);
	assert_int_equal(ci.ci_state, HVS_CHAN_OPEN);
	assert_int_equal(ci.ci_proto_errors, 1);
	t_free(t);
}

/* ---- hostile messages -------------------------------------------------- */

static void test_hostile_messages(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = t_new(VMBUS_VERSION_IRON, 2);
	uint8_t m[240];
	uint64_t b;

	hvs_echo_add(t->s, NULL);
	/* before INITIATE_CONTACT: everything else refused */
	b = nbad(t);
	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
	hdr_only(t, VMBUS_CHANMSG_UNLOAD);
	assert_int_equal(nbad(t), b + 2);
	expect_none(t);
	/* short: 0..7 bytes */
	for (uint32_t len = 0; len < 8; len++) {
		b = nbad(t);
		memset(m, 0, sizeof(m));
		hv_put_le32(m, VMBUS_CHANMSG_INITIATE_CONTACT);
		send(t, m, len);
		assert_int_equal(nbad(t), b + 1);
	}
	/* INITIATE_CONTACT below its size */
	b = nbad(t);
	send(t, m, 39);
	assert_int_equal(nbad(t), b + 1);
	expect_none(t);
	/* oversized payload refused by the hypercall */
	assert_int_equal(post(t, 1, m, 241), HV_STATUS_INVALID_PARAMETER);
	/* message type other than 1 */
	assert_int_equal(t->ops->post_message(t->s, 0, 1, 2, m, 8), 0);

	t_free(t);

	t = connected_with_rec(&r, VMBUS_VERSION_WIN10);
	/* unknown and host-only types */
	const uint32_t types[] = { 0, 1, 2, 4, 6, 10, 12, 15, 17, 20, 23, 24,
				   26, 28, 30, 1000, 0xFFFFFFFFu };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		b = nbad(t);
		memset(m, 0, sizeof(m));
		hv_put_le32(m, types[i]);
		send(t, m, 240);
		assert_int_equal(nbad(t), b + 1);
	}
	/* every guest type one byte short */
	const uint32_t gtypes[] = { 5, 7, 8, 9, 11, 13, 14, 18, 19, 21, 22 };
	for (size_t i = 0; i < sizeof(gtypes) / sizeof(gtypes[0]); i++) {
		b = nbad(t);
		memset(m, 0, sizeof(m));
		hv_put_le32(m, gtypes[i]);
		send(t, m, vmbus_chanmsg_min_size(gtypes[i]) - 1);
		assert_int_equal(nbad(t), b + 1);
	}
	/* above the negotiated version (4.0): MODIFYCHANNEL is 4.1 */
	b = nbad(t);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_MODIFYCHANNEL);
	send(t, m, 16);
	assert_int_equal(nbad(t), b + 1);
	/* 6.0-only messages at 4.0 */
	b = nbad(t);
	hv_put_le32(m, VMBUS_CHANMSG_MODIFY_CONNECTION);
	send(t, m, 24);
	assert_int_equal(nbad(t), b + 1);
	expect_none(t);
	/* nonzero header padding: accepted, counted */
	struct hvs_vmbus_stats st;
	hvs_vmbus_get_stats(t->s, &st);
	uint64_t rs = st.vs_rsvd_nonzero;
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_TEARDOWN);
	hv_put_le32(m + 4, 1);
	send(t, m, 16);
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_rsvd_nonzero, rs + 1);
	/* TL_CONNECT_REQUEST at 4.0: refused quietly (no result before 4.1) */
	hv_put_le32(m, VMBUS_CHANMSG_TL_CONNECT_REQUEST);
	hv_put_le32(m + 4, 0);
	send(t, m, 40);
	expect_none(t);

	/* random messages: no crash, every message accounted */
	srand(1234);
	for (int i = 0; i < 20000; i++) {
		uint32_t len = (uint32_t)rand() % 241;
		for (uint32_t k = 0; k < len; k++)
			m[k] = (uint8_t)rand();
		if (len >= 4 && (rand() & 1))
			hv_put_le32(m, (uint32_t)rand() % 32);
		if (len >= 12 && (rand() & 1))
			hv_put_le32(m + 8, (uint32_t)rand() % 4);
		uint32_t conn = (rand() & 7) == 0 ? 4 : 1;
		(void)post(t, conn, m, len);
		while (fp_pop(t->p) != NULL)
			;
		if ((i & 1023) == 0)
			(void)t->ops->signal_event(t->s,
				0x2000u + (uint32_t)rand() % 4, 0);
	}
	t_free(t);
}

/* ---- outbox ------------------------------------------------------------------ */

static void test_outbox(void **state)
{
	(void)state;
	struct hvs_vmbus_config cfg = { .vm_name = "ob", .outbox_depth = 4 };
	struct t *t = calloc(1, sizeof(*t));
	t->p = fp_create("ob", RAM_BYTES, 1);
	t->s = hvs_vmbus_create(&cfg);
	t->ops = hvs_vmbus_partition_ops();
	hvs_vmbus_attach(t->s, t->p);
	for (int i = 0; i < 6; i++)
		hvs_echo_add(t->s, NULL);
	connect_ok(t, VMBUS_VERSION_IRON);

	t->p->queue_full = true;
	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
	expect_none(t);
	struct hvs_vmbus_stats st;
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_outbox_queued, 7);
	/* outbox over its depth: the guest is pushed back */
	uint8_t m[16] = { 0 };
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_TEARDOWN);
	assert_int_equal(post(t, 1, m, 16), HV_STATUS_INSUFFICIENT_BUFFERS);
	/* still full: a synic change retries, nothing lost */
	t->ops->synic_changed(t->s, 0);
	expect_none(t);
	t->p->queue_full = false;
	t->ops->synic_changed(t->s, 0);
	uint32_t relids[8];
	unsigned n = 0;
	const struct fp_msg *mm;
	while ((mm = fp_pop(t->p)) != NULL) {
		if (hv_get_le32(mm->buf) == VMBUS_CHANMSG_OFFERCHANNEL)
			relids[n++] = hv_get_le32(mm->buf + 184);
		else
			assert_int_equal(hv_get_le32(mm->buf),
					 VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	}
	assert_int_equal(n, 6);
	hvs_vmbus_get_stats(t->s, &st);
	assert_int_equal(st.vs_outbox_queued, 0);
	/* a later message goes out directly again */
	t->p->queue_full = true;
	assert_int_equal(hvs_vmbus_rescind(t->s, relids[0]), 0);
	t->p->queue_full = false;
	hvs_vmbus_poll(t->s);
	expect_msg(t, VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
	t_free(t);
}

/* ---- fault hooks --------------------------------------------------------------- */

static void test_faults(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct t *t = t_new(VMBUS_VERSION_IRON, 1);
	struct hvs_fault_param fp[3];

	hvs_echo_add(t->s, NULL);
	hvs_echo_add(t->s, NULL);
	connect_ok(t, VMBUS_VERSION_IRON);
	/* malformed_offer: first offer short, second with relid 0 */
	strcpy(fp[0].fp_name, "field");
	fp[0].fp_value = 0;
	strcpy(fp[1].fp_name, "value");
	fp[1].fp_value = 100;
	strcpy(fp[2].fp_name, "times");
	fp[2].fp_value = 1;
	assert_int_equal(hvs_fault_set("malformed_offer", true, fp, 3, "vm1"), 0);
	hdr_only(t, VMBUS_CHANMSG_REQUESTOFFERS);
	const struct fp_msg *m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(m->len, 100);
	m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(m->len, 196);
	expect_msg(t, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	fp[0].fp_value = 1;
	fp[1].fp_value = 0;
	assert_int_equal(hvs_fault_set("malformed_offer", true, fp, 3, NULL), 0);
	assert_int_equal(hvs_echo_add(t->s, NULL), 3);
	m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(hv_get_le32(m->buf + 184), 0);
	/* a VM filter for another VM: nothing happens */
	assert_int_equal(hvs_fault_set("malformed_offer", true, fp, 3, "other"), 0);
	assert_int_equal(hvs_echo_add(t->s, NULL), 4);
	m = expect_msg(t, VMBUS_CHANMSG_OFFERCHANNEL);
	assert_int_equal(hv_get_le32(m->buf + 184), 4);
	hvs_fault_set("malformed_offer", false, NULL, 0, NULL);

	/* withhold_reply: the next OPENCHANNEL_RESULT is not sent */
	strcpy(fp[0].fp_name, "type");
	fp[0].fp_value = VMBUS_CHANMSG_OPENCHANNEL_RESULT;
	strcpy(fp[1].fp_name, "times");
	fp[1].fp_value = 1;
	assert_int_equal(hvs_fault_set("withhold_reply", true, fp, 2, NULL), 0);
	struct gch g;
	memset(&g, 0, sizeof(g));
	g.relid = 1;
	gch_rings(t, &g, 4, 8);
	/* GPADL_CREATED is not the filtered type: still sent */
	assert_int_equal(gpadl_pages(t, 1, 0xE0, g.gpa, 8), 0);
	open_msg(t, 1, 11, 0xE0, 0, 4);
	expect_none(t);
	/* the channel is open anyway; a second open gets its answer */
	open_msg(t, 1, 12, 0xE0, 0, 4);
	assert_int_not_equal(open_result(t, 1, 12), 0);

	/* bad_ring_index on relid 1 after the next host packet */
	strcpy(fp[0].fp_name, "relid");
	fp[0].fp_value = 1;
	strcpy(fp[1].fp_name, "times");
	fp[1].fp_value = 1;
	assert_int_equal(hvs_fault_set("bad_ring_index", true, fp, 2, NULL), 0);
	uint8_t data[8] = { 7 };
	guest_send(t, &g, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 1, data, 8, true);
	struct hv_ring_control *rxc = fp_ptr(t->p, g.gpa + 4 * 4096);
	assert_int_equal(hv_le32(rxc->rc_write_index), 3 * 4096);
	struct hvs_fault_info fi;
	assert_int_equal(hvs_fault_get("bad_ring_index", &fi), 0);
	assert_int_equal(fi.fi_hits, 1);
	hvs_fault_reset_all();
	(void)r;
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_version_matrix, setup),
		cmocka_unit_test_setup(test_contact_rejects, setup),
		cmocka_unit_test_setup(test_offers, setup),
		cmocka_unit_test_setup(test_offer_old_versions, setup),
		cmocka_unit_test_setup(test_gpadl_assembly, setup),
		cmocka_unit_test_setup(test_gpadl_rejects, setup),
		cmocka_unit_test_setup(test_open_close, setup),
		cmocka_unit_test_setup(test_modify_channel, setup),
		cmocka_unit_test_setup(test_rescind, setup),
		cmocka_unit_test_setup(test_unload_reconnect, setup),
		cmocka_unit_test_setup(test_subchannels, setup),
		cmocka_unit_test_setup(test_echo_roundtrip, setup),
		cmocka_unit_test_setup(test_echo_old_versions, setup),
		cmocka_unit_test_setup(test_echo_gpa_direct, setup),
		cmocka_unit_test_setup(test_echo_flow_control, setup),
		cmocka_unit_test_setup(test_scattered_rings_echo, setup),
		cmocka_unit_test_setup(test_scattered_rings_hostile, setup),
		cmocka_unit_test_setup(test_ring_windows_no_leak, setup),
		cmocka_unit_test_setup(test_vsp_map_gpadl, setup),
		cmocka_unit_test_setup(test_host_touches_only_ring_pages, setup),
		cmocka_unit_test_setup(test_gpa_direct_touches_named_pages, setup),
		cmocka_unit_test_setup(test_hostile_rings, setup),
		cmocka_unit_test_setup(test_unknown_packet_type_skipped, setup),
		cmocka_unit_test_setup(test_hostile_messages, setup),
		cmocka_unit_test_setup(test_outbox, setup),
		cmocka_unit_test_setup(test_faults, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
