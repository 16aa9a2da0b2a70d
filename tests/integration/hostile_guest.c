/*
 * tests/integration/hostile_guest.c - a guest that attacks its host. It
 * connects with the guest core (so it has a live VMBus connection and
 * open echo channels to compare against), then, through the platform
 * port's raw hypercall and its own ring memory, sends what a malicious
 * guest kernel could:
 *
 *   - VMBus messages that are short, of unknown or host-only type, too
 *     short for their type, or aimed at channels in the wrong state;
 *   - GPADLs whose PFNs lie outside guest RAM (or are 0), and GPADL
 *     headers whose range descriptions do not add up;
 *   - HvPostMessage / HvSignalEvent inputs the hypervisor must refuse;
 *   - a bad write_index in its own send ring, a bad read_index in its own
 *     receive ring, a GPA-direct packet naming memory beyond its RAM, and
 *     rings whose pages all alias one page;
 *   - on the SCSI controller (storage): VSTOR requests out of order or
 *     malformed, SRBs whose buffers do not add up or lie beyond its RAM,
 *     a flood of reads whose replies it never takes before a close, and a
 *     second flood it leaves behind when it exits without unloading.
 *
 * After each attack it checks that the host still serves it (an echo round
 * trip on relid 1). The driver (test_hostile_guest.py) checks hvsim's log
 * lines and control-socket counters, and that another VM never noticed.
 * Channel use: relid 1 health, 2 target of message attacks (stays offered;
 * in the rings phase, rings whose pages alias one page), 3 bad write_index,
 * 4 bad read_index, 5 bad GPA-direct PFN.
 *
 * usage: hostile_guest PHASE --sync DIR   (waits for DIR/finish to exit)
 * PHASE: messages, states, gpadls, hypercalls, rings or storage (one per
 * VM: the host rate-limits its guest-error log lines per VM).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv/guid.h"
#include "hv/ring.h"
#include "hv/scsi.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "hv/vstor.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define NS_PER_S   1000000000ull
#define RING_BYTES (4u * 4096u)	/* per direction: 8 pages per channel */
#define NDEV       5u

static struct vmbus_platform plat, real;
static struct vmbus_posix *px;
static struct vmbus *vb;
static struct vmbus_channel *chans[NDEV + 1];	/* by relid */
static double time_scale = 1.0;
static int fails;

/* The most recent page_alloc of a ring's size: that channel's rings. */
static void *last_ring_va;
/* Describe the next rings to the host as one page repeated (aliased). */
static bool alias_next_ring;

static void *wrap_page_alloc(void *ctx, size_t npages, uint64_t *pfns)
{
	void *va = real.page_alloc(ctx, npages, pfns);

	if (va && npages == 2u * RING_BYTES / 4096u) {
		last_ring_va = va;
		if (alias_next_ring)
			for (size_t i = 1; i < npages; i++)
				pfns[i] = pfns[0];
		alias_next_ring = false;
	}
	return va;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("hostile: ", stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void expect(bool ok, const char *what)
{
	if (!ok)
		fails++;
	say("%s: %s", ok ? "ok" : "FAIL", what);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- raw hypercalls ------------------------------------------------------ */

/* HvPostMessage of payload[0..len) with the given header fields: the
 * hypercall status. */
static uint16_t post_raw(uint32_t conn_id, uint32_t msg_type, uint32_t size,
			 const void *payload, uint32_t len)
{
	struct hv_post_message_input in;
	uint64_t result = 0;
	int r;

	memset(&in, 0, sizeof(in));
	hv_put_le32(&in.pm_connection_id, conn_id);
	hv_put_le32(&in.pm_message_type, msg_type);
	hv_put_le32(&in.pm_payload_size, size);
	memcpy(in.pm_payload, payload, len < sizeof(in.pm_payload) ? len :
	       sizeof(in.pm_payload));
	r = plat.hypercall(plat.ctx, 0, HV_CALL_POST_MESSAGE, &in, sizeof(in),
			   NULL, 0, &result);
	if (r != 0) {
		say("FAIL: hypercall transport error %d", r);
		fails++;
		return 0xFFFF;
	}
	return HV_HYPERCALL_STATUS(result);
}

/* A VMBus message on the message connection (VMBus 4.1: id 1). */
static uint16_t post(const void *msg, uint32_t len)
{
	return post_raw(VMBUS_MESSAGE_CONNECTION_ID, VMBUS_MESSAGE_TYPE, len,
			msg, len);
}

static uint16_t signal_event(uint32_t conn_id, uint16_t flag)
{
	uint8_t in[16];
	uint64_t result = 0;

	memset(in, 0, sizeof(in));
	hv_put_le32(in, conn_id);
	hv_put_le16(in + 4, flag);
	if (plat.hypercall(plat.ctx, 0, HV_CALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
			   in, sizeof(in), NULL, 0, &result) != 0)
		return 0xFFFF;
	return HV_HYPERCALL_STATUS(result);
}

/* ---- health check ------------------------------------------------------------ */

static bool echo_ok(struct vmbus_channel *ch, uint32_t tag)
{
	uint8_t buf[64], out[64];
	uint32_t len = sizeof(out);
	struct vmbus_pkt_info pi;
	int r;

	memset(buf, (int)(tag & 0xFF), sizeof(buf));
	r = vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0, buf,
			    sizeof(buf), tag);
	if (r == 0)
		r = vmbus_chan_wait_rx(ch, 5 * NS_PER_S);
	if (r == 0)
		r = vmbus_chan_recv(ch, out, &len, &pi);
	return r == 0 && len == sizeof(buf) && !memcmp(buf, out, len) &&
	       pi.pi_trans_id == tag;
}

static void still_served(const char *after)
{
	static uint32_t tag = 100;
	char what[160];

	/* let the host process what we sent before asking */
	sleep_ms(20);
	snprintf(what, sizeof(what), "host still echoes on relid 1 after %s",
		 after);
	expect(echo_ok(chans[1], tag++), what);
}

/* ---- message attacks ------------------------------------------------------- */

static void attack_messages(void)
{
	uint8_t m[VMBUS_MSG_PAYLOAD_MAX];
	uint16_t st;

	/* 4 bytes: not even a header */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_REQUESTOFFERS);
	st = post(m, 4);
	say("short message (4 bytes): status %u", st);
	still_served("a 4-byte message");

	/* unknown type, and a host-only type */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, 0x99);
	post(m, 8);
	hv_put_le32(m, VMBUS_CHANMSG_OFFERCHANNEL);
	post(m, VMBUS_CHANMSG_OFFERCHANNEL_SIZE);
	still_served("unknown and host-only message types");

	/* OPENCHANNEL cut short: 12 of 148 bytes */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_OPENCHANNEL);
	hv_put_le32(m + 8, 2);
	post(m, 12);
	still_served("a truncated OPENCHANNEL");
}

/* Well-formed messages aimed at channels in the wrong state. */
static void attack_states(void)
{
	uint8_t m[VMBUS_MSG_PAYLOAD_MAX];

	/* OPENCHANNEL of an unknown relid, and of relid 2 with no GPADL */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_OPENCHANNEL);
	hv_put_le32(m + 8, 999);
	hv_put_le32(m + 12, 7);
	hv_put_le32(m + 16, 0xDEAD);
	post(m, VMBUS_CHANMSG_OPENCHANNEL_SIZE);
	hv_put_le32(m + 8, 2);
	post(m, VMBUS_CHANMSG_OPENCHANNEL_SIZE);
	still_served("OPENCHANNEL with a bad relid and a bad GPADL");

	/* CLOSECHANNEL of a channel that is not open */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_CLOSECHANNEL);
	hv_put_le32(m + 8, 2);
	post(m, VMBUS_CHANMSG_CLOSECHANNEL_SIZE);
	still_served("CLOSECHANNEL of a closed channel");

	/* RELID_RELEASED of a channel never rescinded */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_RELID_RELEASED);
	hv_put_le32(m + 8, 2);
	post(m, VMBUS_CHANMSG_RELID_RELEASED_SIZE);
	still_served("RELID_RELEASED without a rescind");

	/* GPADL_BODY and GPADL_TEARDOWN of handles that do not exist */
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_BODY);
	hv_put_le32(m + 12, 0xB0D1);
	hv_put_le64(m + 16, 5);
	post(m, VMBUS_CHANMSG_GPADL_BODY_SIZE + 8);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_TEARDOWN);
	hv_put_le32(m + 8, 2);
	hv_put_le32(m + 12, 0x7EA2);
	post(m, VMBUS_CHANMSG_GPADL_TEARDOWN_SIZE);
	still_served("GPADL_BODY and GPADL_TEARDOWN of unknown handles");
}

/* GPADL_HEADER on relid 2 with one range of npfn PFNs (the first given). */
static void gpadl_header(uint32_t handle, uint32_t byte_count,
			 uint32_t byte_offset, uint16_t rangecount,
			 uint16_t buflen_delta, const uint64_t *pfns,
			 uint32_t npfn)
{
	uint8_t m[VMBUS_MSG_PAYLOAD_MAX];
	uint32_t rbytes = VMBUS_GPA_RANGE_SIZE(npfn);

	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_HEADER);
	hv_put_le32(m + 8, 2);
	hv_put_le32(m + 12, handle);
	hv_put_le16(m + 16, (uint16_t)(rbytes + buflen_delta));
	hv_put_le16(m + 18, rangecount);
	hv_put_le32(m + 20 + VMBUS_GPA_RANGE_BYTE_COUNT, byte_count);
	hv_put_le32(m + 20 + VMBUS_GPA_RANGE_BYTE_OFFSET, byte_offset);
	for (uint32_t i = 0; i < npfn; i++)
		hv_put_le64(m + 20 + VMBUS_GPA_RANGE_PFN(i), pfns[i]);
	post(m, VMBUS_CHANMSG_GPADL_HEADER_SIZE + rbytes);
}

static void attack_gpadls(void)
{
	uint64_t ram_pages = vmbus_posix_ram_bytes(px) / 4096u;
	uint64_t pfns[2];
	void *page = plat.page_alloc(plat.ctx, 1, &pfns[0]);

	if (!page) {
		expect(false, "a page to describe");
		return;
	}
	/* one good PFN, then one just past the end of guest RAM */
	pfns[1] = ram_pages;
	gpadl_header(0xBAD1, 8192, 0, 1, 0, pfns, 2);
	still_served("a GPADL with a PFN just past guest RAM");
	pfns[1] = UINT64_C(1) << 52;
	gpadl_header(0xBAD2, 8192, 0, 1, 0, pfns, 2);
	still_served("a GPADL with a PFN far beyond guest RAM");
	pfns[1] = 0;
	gpadl_header(0xBAD3, 8192, 0, 1, 0, pfns, 2);
	still_served("a GPADL naming page 0");
	/* descriptions that do not add up */
	gpadl_header(0xBAD4, 4096, 4096, 1, 0, pfns, 1);	/* offset >= 4096 */
	gpadl_header(0xBAD5, 3 * 4096, 0, 1, 0, pfns, 1);	/* 3 pages, 1 PFN */
	gpadl_header(0xBAD6, 4096, 0, 0, 0, pfns, 1);		/* 0 ranges */
	gpadl_header(0xBAD7, 0, 0, 1, 0, pfns, 1);		/* 0 bytes */
	still_served("GPADL headers whose ranges do not add up");
	/* the handles never became GPADLs: nothing to tear down */
	(void)plat.page_free(plat.ctx, page, 1);
}

static uint32_t conn_id(uint32_t relid)
{
	struct vmbus_chan_info ci;

	vmbus_chan_get_info(chans[relid], &ci);
	return ci.ci_conn_id;
}

static void attack_hypercalls(void)
{
	uint8_t m[8] = { 0 };
	uint16_t st;

	hv_put_le32(m, VMBUS_CHANMSG_REQUESTOFFERS);
	st = post_raw(VMBUS_MESSAGE_CONNECTION_ID, VMBUS_MESSAGE_TYPE, 241, m, 8);
	expect(st == HV_STATUS_INVALID_PARAMETER,
	       "HvPostMessage with payload_size 241 refused INVALID_PARAMETER");
	st = post_raw(VMBUS_MESSAGE_CONNECTION_ID, 0, 8, m, 8);
	expect(st != HV_STATUS_SUCCESS, "HvPostMessage with message type 0 refused");
	st = post_raw(0x7777, VMBUS_MESSAGE_TYPE, 8, m, 8);
	expect(st == HV_STATUS_INVALID_CONNECTION_ID,
	       "HvPostMessage to connection 0x7777 refused INVALID_CONNECTION_ID");
	/* ids >= 32768 and flags != 0 go through the HYPERCALL request (ids
	 * below travel on the signal page, which has no status) */
	st = signal_event(0x12345, 0);
	expect(st == HV_STATUS_INVALID_CONNECTION_ID,
	       "HvSignalEvent to connection 0x12345 refused INVALID_CONNECTION_ID");
	st = signal_event(conn_id(1), 3);
	expect(st == HV_STATUS_INVALID_PARAMETER,
	       "HvSignalEvent with flag 3 refused INVALID_PARAMETER");
	still_served("refused hypercalls");
}

/* ---- ring attacks ------------------------------------------------------------ */

static void *open_ring(uint32_t relid)
{
	int r;

	last_ring_va = NULL;
	r = vmbus_chan_open(chans[relid], RING_BYTES, RING_BYTES, NULL, 0, NULL,
			    NULL);
	if (r != 0 || !last_ring_va) {
		say("FAIL: open relid %u: %d", relid, r);
		fails++;
		return NULL;
	}
	return last_ring_va;
}

static void attack_rings(void)
{
	uint8_t *ring;

	/* relid 3: our send ring's write_index beyond the data area */
	ring = open_ring(3);
	if (ring) {
		struct hv_ring_control *tx = (void *)ring;

		__atomic_store_n(&tx->rc_write_index,
				 hv_le32(RING_BYTES - HV_RING_CONTROL_SIZE + 64u),
				 __ATOMIC_RELEASE);
		signal_event(conn_id(3), 0);
		still_served("a send ring write_index beyond its data");
		__atomic_store_n(&tx->rc_write_index, hv_le32(13u), __ATOMIC_RELEASE);
		signal_event(conn_id(3), 0);
		still_served("an unaligned send ring write_index");
	}
	/* relid 4: our receive ring's read_index unaligned, then a request */
	ring = open_ring(4);
	if (ring) {
		struct hv_ring_control *rx = (void *)(ring + RING_BYTES);
		uint8_t req[64] = { 4 };

		__atomic_store_n(&rx->rc_read_index, hv_le32(5u), __ATOMIC_RELEASE);
		(void)vmbus_chan_send(chans[4], VMBUS_PACKET_TYPE_DATA_INBAND, 0,
				      req, sizeof(req), 4);
		still_served("an unaligned receive ring read_index");
	}
	/* relid 5: a GPA-direct packet naming a page past guest RAM */
	if (open_ring(5)) {
		uint64_t pfn = vmbus_posix_ram_bytes(px) / 4096u + 16u;
		struct vmbus_gpa_buf gb = { 4096, 0, 1, &pfn };
		int r = vmbus_chan_send_gpa(chans[5], &gb, 1, NULL, 0, 5);

		expect(r == 0, "GPA-direct packet with an out-of-range PFN sent");
		still_served("a GPA-direct packet beyond guest RAM");
	}
	/* relid 2: both rings described as one page eight times over (our
	 * own view does not overlap): the host would see its control pages
	 * inside the data it reads and writes, so it refuses the open */
	alias_next_ring = true;
	expect(vmbus_chan_open(chans[2], RING_BYTES, RING_BYTES, NULL, 0, NULL,
			       NULL) != 0,
	       "open with rings whose pages alias one page refused");
	still_served("rings whose pages alias one page");
}

/* ---- storage attacks -------------------------------------------------------- */

/*
 * The SCSI controller, driven raw: VSTOR requests the host must refuse
 * before and after the handshake, SRB buffers that do not add up or lie
 * beyond guest RAM, then a flood of reads whose completions it never
 * takes (the host parks them for ring room) followed by a close, and at
 * the end a second flood it walks away from without unloading.
 */
static struct vmbus_channel *scsi;
static void *scsi_page;		/* one page of guest RAM for reads */
static uint64_t scsi_pfn;

static int scsi_attach(struct vmbus_device *dev)
{
	if (scsi)
		return -VMBUS_EINVAL;	/* one controller is enough */
	scsi = vmbus_device_channel(dev);
	return 0;
}

static struct vmbus_driver scsi_driver = {
	.drv_name = "hostile-scsi",
	.drv_attach = scsi_attach,
};

/* The next completion for tid (other packets, e.g. ENUMERATE_BUS, are
 * skipped): 0 and *vp, or -1. */
static int scsi_reply(uint64_t tid, struct vstor_packet *vp)
{
	uint8_t buf[256];
	struct vmbus_pkt_info pi;

	for (int n = 0; n < 64; n++) {
		uint32_t len = sizeof(buf);
		int r = vmbus_chan_wait_rx(scsi, 5 * NS_PER_S);

		if (r == 0)
			r = vmbus_chan_recv(scsi, buf, &len, &pi);
		if (r != 0) {
			say("FAIL: no VSTOR completion for %llu: %d",
			    (unsigned long long)tid, r);
			fails++;
			return -1;
		}
		if (pi.pi_type == VMBUS_PACKET_TYPE_COMP && pi.pi_trans_id == tid) {
			memset(vp, 0, sizeof(*vp));
			memcpy(vp, buf, len < sizeof(*vp) ? len : sizeof(*vp));
			return 0;
		}
	}
	say("FAIL: VSTOR completion for %llu never came", (unsigned long long)tid);
	fails++;
	return -1;
}

/* An in-band VSTOR request of len bytes; the completion's status. */
static uint32_t vstor_call(const struct vstor_packet *req, uint32_t len,
			   struct vstor_packet *resp)
{
	static uint64_t tid = 0x5100;
	struct vstor_packet dummy;
	int r;

	tid++;
	r = vmbus_chan_send(scsi, VMBUS_PACKET_TYPE_DATA_INBAND,
			    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, req, len, tid);
	if (r != 0) {
		say("FAIL: VSTOR send: %d", r);
		fails++;
		return ~0u;
	}
	if (!resp)
		resp = &dummy;
	if (scsi_reply(tid, resp) != 0)
		return ~0u;
	return hv_le32(resp->vp_status);
}

static void vstor_req(struct vstor_packet *vp, uint32_t op)
{
	memset(vp, 0, sizeof(*vp));
	vp->vp_operation = hv_cpu_to_le32(op);
	vp->vp_flags = hv_cpu_to_le32(VSTOR_FLAG_REQUEST_COMPLETION);
}

/* A READ(10) SRB of `blocks` 512-byte blocks at LBA 0 claiming dtl bytes. */
static void read_srb(struct vstor_packet *vp, uint16_t blocks, uint32_t dtl)
{
	struct vmscsi_request *s = &vp->vp_srb;

	vstor_req(vp, VSTOR_OPERATION_EXECUTE_SRB);
	s->vr_length = hv_cpu_to_le16(VMSCSI_REQUEST_SIZE);
	s->vr_cdb_length = SCSI_CDB10_LEN;
	s->vr_sense_info_length = VSTOR_SENSE_BUFFER_SIZE;
	s->vr_data_in = VSTOR_DATA_READ;
	s->vr_data_transfer_length = hv_cpu_to_le32(dtl);
	s->vr_cdb[0] = SCSI_READ_10;
	s->vr_cdb[7] = (uint8_t)(blocks >> 8);
	s->vr_cdb[8] = (uint8_t)blocks;
	s->vr_queue_tag = VSTOR_SP_UNTAGGED;
	s->vr_queue_action = VSTOR_SRB_SIMPLE_TAG_REQUEST;
	s->vr_time_out_value = hv_cpu_to_le32(VSTOR_SRB_TIMEOUT_DEFAULT);
}

/* Send a GPA-direct SRB over one range of `bytes` at pfn. */
static int srb_send(const struct vstor_packet *vp, uint64_t pfn,
		    uint32_t bytes, uint64_t tid)
{
	struct vmbus_gpa_buf gb = { bytes, 0, (bytes + 4095u) / 4096u, &pfn };

	return vmbus_chan_send_gpa(scsi, &gb, 1, vp, sizeof(*vp), tid);
}

/* srb_send, then the completion's SRB status (flags masked off), or -1. */
static int srb_call(const struct vstor_packet *vp, uint64_t pfn, uint32_t bytes,
		    uint64_t tid, struct vstor_packet *resp)
{
	int r = srb_send(vp, pfn, bytes, tid);

	if (r != 0) {
		say("FAIL: SRB send: %d", r);
		fails++;
		return -1;
	}
	if (scsi_reply(tid, resp) != 0)
		return -1;
	return resp->vp_srb.vr_srb_status & 0x3F;
}

static bool scsi_handshake(void)
{
	struct vstor_packet vp, resp;
	uint32_t st;

	vstor_req(&vp, VSTOR_OPERATION_BEGIN_INITIALIZATION);
	st = vstor_call(&vp, sizeof(vp), NULL);
	if (st == VSTOR_STATUS_SUCCESS) {
		vstor_req(&vp, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION);
		vp.vp_version.vpv_major_minor = hv_cpu_to_le16(VMSTOR_PROTO_VERSION_WIN10);
		st = vstor_call(&vp, sizeof(vp), NULL);
	}
	if (st == VSTOR_STATUS_SUCCESS) {
		vstor_req(&vp, VSTOR_OPERATION_QUERY_PROPERTIES);
		st = vstor_call(&vp, sizeof(vp), &resp);
	}
	if (st == VSTOR_STATUS_SUCCESS) {
		vstor_req(&vp, VSTOR_OPERATION_END_INITIALIZATION);
		st = vstor_call(&vp, sizeof(vp), NULL);
	}
	expect(st == VSTOR_STATUS_SUCCESS, "VSTOR 6.2 handshake");
	return st == VSTOR_STATUS_SUCCESS;
}

static bool scsi_open(void)
{
	uint8_t ud[VSTOR_OPEN_USER_DATA_SIZE];
	int r;

	memset(ud, 0, sizeof(ud));
	r = vmbus_chan_open(scsi, RING_BYTES, RING_BYTES, ud, sizeof(ud), NULL,
			    NULL);
	expect(r == 0, "SCSI channel opens");
	return r == 0;
}

/* GPA-direct reads into our page, never taking a completion, until the
 * send ring is full: the host's replies fill our receive ring and it must
 * park the rest. Returns how many were sent. */
static unsigned scsi_flood(void)
{
	struct vstor_packet vp;
	unsigned sent = 0;

	read_srb(&vp, 8, 4096);
	for (unsigned i = 0; i < 4096; i++) {
		int r = srb_send(&vp, scsi_pfn, 4096, 0x7000 + i);

		if (r == -VMBUS_EAGAIN) {
			sleep_ms(5);	/* the host takes some more; once */
			r = srb_send(&vp, scsi_pfn, 4096, 0x7000 + i);
		}
		if (r == -VMBUS_EAGAIN)
			break;
		if (r != 0) {
			say("FAIL: flood send %u: %d", i, r);
			fails++;
			break;
		}
		sent++;
	}
	sleep_ms(50);	/* let the host answer what it can */
	return sent;
}

static void attack_storage(void)
{
	struct vstor_packet vp, resp;
	uint32_t st;
	unsigned sent;
	int srb;

	if (!scsi_open())
		return;
	/* before the handshake: an SRB, a short packet, an unknown operation */
	read_srb(&vp, 8, 0);
	vp.vp_srb.vr_data_in = VSTOR_DATA_UNKNOWN;
	vp.vp_srb.vr_cdb[0] = SCSI_TEST_UNIT_READY;
	st = vstor_call(&vp, sizeof(vp), NULL);
	expect(st == VSTOR_STATUS_INVALID_DEVICE_STATE,
	       "EXECUTE_SRB before END_INITIALIZATION refused");
	vstor_req(&vp, VSTOR_OPERATION_BEGIN_INITIALIZATION);
	st = vstor_call(&vp, 8, NULL);
	expect(st == VSTOR_STATUS_INVALID_PARAMETER, "8-byte VSTOR packet refused");
	vstor_req(&vp, 99);
	st = vstor_call(&vp, sizeof(vp), NULL);
	expect(st == VSTOR_STATUS_INVALID_DEVICE_REQUEST,
	       "unknown VSTOR operation refused");
	still_served("VSTOR requests out of order");
	if (!scsi_handshake())
		return;

	/* SRBs whose buffers do not add up */
	read_srb(&vp, 8, 4096);
	vp.vp_srb.vr_cdb_length = 0;
	srb = srb_call(&vp, scsi_pfn, 4096, 0x6001, &resp);
	expect(srb == SRB_STATUS_INVALID_REQUEST, "SRB with cdb_length 0 refused");
	read_srb(&vp, 16, 8192);
	srb = srb_call(&vp, scsi_pfn, 4096, 0x6002, &resp);
	expect(srb == SRB_STATUS_INVALID_REQUEST,
	       "SRB reading 8 KiB into a 4 KiB buffer refused");
	read_srb(&vp, 8, 4096);
	srb = srb_call(&vp, vmbus_posix_ram_bytes(px) / 4096u + 16u, 4096,
		       0x6003, &resp);
	expect(srb == SRB_STATUS_ERROR &&
	       hv_le32(resp.vp_status) == VSTOR_STATUS_INVALID_PARAMETER,
	       "SRB reading into a page beyond guest RAM failed");
	srb = srb_call(&vp, scsi_pfn, 4096, 0x6004, &resp);
	expect(srb == SRB_STATUS_SUCCESS &&
	       hv_le32(resp.vp_srb.vr_data_transfer_length) == 4096,
	       "a good READ(10) still served");
	still_served("SRBs with bad buffers");

	/* replies never read, then a close */
	sent = scsi_flood();
	say("flood: %u reads sent, no completion taken", sent);
	expect(sent > 64, "flood filled the send ring");
	expect(vmbus_chan_close(scsi) == 0,
	       "SCSI channel closes with its replies unread");
	still_served("closing the SCSI channel with replies parked");

	/* again, left behind at the end (main does not unload) */
	if (scsi_open() && scsi_handshake()) {
		sent = scsi_flood();
		say("second flood: %u reads sent; leaving them", sent);
		expect(sent > 64, "second flood filled the send ring");
	}
	still_served("a second flood");
}

/* ---- driver ------------------------------------------------------------------ */

static int raw_attach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);
	uint32_t relid = vmbus_chan_relid(ch);

	if (relid == 0 || relid > NDEV)
		return -VMBUS_EINVAL;
	chans[relid] = ch;
	return 0;
}

static struct vmbus_driver raw_driver = {
	.drv_name = "hostile",
	.drv_attach = raw_attach,
};

static bool wait_file(const char *dir, const char *name, double seconds)
{
	char path[4096];
	struct stat st;
	double waited = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	while (stat(path, &st) != 0) {
		if (waited > seconds * time_scale)
			return false;
		sleep_ms(10);
		waited += 0.01;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_config cfg;
	struct vmbus_stats bs;
	const char *sync = NULL, *phase = NULL;
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");
	int r;

	if (argc == 4 && !strcmp(argv[2], "--sync")) {
		phase = argv[1];
		sync = argv[3];
	}
	if (!sync || (strcmp(phase, "messages") && strcmp(phase, "states") &&
	    strcmp(phase, "gpadls") && strcmp(phase, "hypercalls") &&
	    strcmp(phase, "rings") && strcmp(phase, "storage"))) {
		fprintf(stderr, "usage: hostile_guest messages|states|gpadls|"
			"hypercalls|rings|storage --sync DIR\n");
		return 2;
	}
	if (s && atof(s) >= 1.0)
		time_scale = atof(s);
	vmbus_posix_options_init(&po);
	po.po_log_prefix = "hostile-guest";
	po.po_gone_action = VMBUS_POSIX_GONE_FAIL;
	r = vmbus_posix_create(&po, &real, &px);
	if (r != 0) {
		say("FAIL: attach: %d", r);
		return 1;
	}
	plat = real;
	plat.page_alloc = wrap_page_alloc;
	memset(&cfg, 0, sizeof(cfg));
	/* below 5.0 the message connection id is fixed (1): our raw posts
	 * need no private knowledge of the core */
	cfg.vc_max_version = VMBUS_VERSION_WIN10_RS3_0;
	raw_driver.drv_class = HV_GUID_ECHO;
	scsi_driver.drv_class = HV_GUID_STORVSC;
	r = vmbus_create(&plat, &cfg, &vb);
	if (r == 0)
		r = vmbus_driver_register(vb, &raw_driver);
	if (r == 0 && !strcmp(phase, "storage"))
		r = vmbus_driver_register(vb, &scsi_driver);
	if (r == 0)
		r = vmbus_connect(vb);
	for (uint32_t i = 1; r == 0 && i <= NDEV; i++)
		if (!chans[i])
			r = -VMBUS_ENODEV;
	if (r == 0)
		r = vmbus_chan_open(chans[1], RING_BYTES, RING_BYTES, NULL, 0,
				    NULL, NULL);
	if (r == 0 && !strcmp(phase, "storage")) {
		scsi_page = plat.page_alloc(plat.ctx, 1, &scsi_pfn);
		if (!scsi || !scsi_page)
			r = -VMBUS_ENODEV;
	}
	if (r != 0) {
		say("FAIL: set-up (need %u echo devices, and a SCSI "
		    "controller for storage): %d", NDEV, r);
		return 1;
	}
	say("connected at 4.1 with %u echo channels", NDEV);
	expect(echo_ok(chans[1], 1), "host echoes on relid 1 before any attack");

	/* one kind per VM: hvsim rate-limits guest-error lines per VM
	 * (10 per 5 s), and every refusal must show in its log */
	if (!strcmp(phase, "messages"))
		attack_messages();
	else if (!strcmp(phase, "states"))
		attack_states();
	else if (!strcmp(phase, "gpadls"))
		attack_gpadls();
	else if (!strcmp(phase, "hypercalls"))
		attack_hypercalls();
	else if (!strcmp(phase, "rings"))
		attack_rings();
	else if (!strcmp(phase, "storage"))
		attack_storage();

	vmbus_get_stats(vb, &bs);
	say("%s attacks done: %d failure(s); guest counted %llu bad "
	    "message(s) from the host", phase, fails,
	    (unsigned long long)bs.bs_bad_messages);
	printf("RESULT {\"fails\": %d, \"bad_messages\": %llu}\n", fails,
	       (unsigned long long)bs.bs_bad_messages);
	fflush(stdout);
	if (!wait_file(sync, "finish", 60))
		say("FAIL: no finish file");
	if (!strcmp(phase, "storage")) {
		/* disappear mid-I/O: no close, no unload; the host must end
		 * the partition with our reads still in flight */
		say("exiting without unload");
		return fails ? 1 : 0;
	}
	r = vmbus_unload(vb);
	say("unload %d", r);
	vmbus_destroy(vb);
	vmbus_posix_destroy(px);
	return fails ? 1 : 0;
}
