/*
 * fuzz_host_vsp - the host VSP framework's copy-in of ring packets
 * (src/host/vsp/vsp.c: hvs_chan_recv's descriptor checks and pkt_parse of
 * GPA-direct ranges and transfer-page headers), GPA-direct access
 * (hvs_pkt_gpa_read/write), device-named GPADLs (hold/read/write/map),
 * and the send path against a hostile read_index. A scripted guest
 * connects at 5.3 and opens one channel of a test VSP (or the echo VSP)
 * through the server's partition ops; the fuzzer's input is then the
 * guest->host ring (control page and data), the guest-owned fields of the
 * host->guest ring, and what the VSP does with what it receives.
 *
 * Input: cfg u8 (bit 0: 4-page incoming ring, else 2; bit 1: ring pages
 * scattered over guest RAM; bit 2: the echo VSP serves the channel), then
 * in-ring write_index, read_index, interrupt_mask, pending_send_sz,
 * feature_bits (u32 each; read_index and interrupt_mask are the host's
 * and are overwritten too: a guest scribbling), out-ring read_index and
 * interrupt_mask (u32), nops u8, the operations, then the in-ring data
 * image (zero-padded), then the bytes later ops write into the ring.
 * Ops (low 3 bits): 0 guest signals; 1 in-ring write_index; 2 out-ring
 * read_index, interrupt_mask, or (0x50 set) read_index = write_index (the
 * guest read everything); 3 what the test VSP does with packets; 4 device
 * GPADL use / IC request / storvsp action; 5 server poll; 6 CLOSECHANNEL
 * or (bit 3) the guest writes more ring bytes; 7 the VSP sends.
 *
 * Built a second time as fuzz_host_ic (FZ_HOST_IC): the same ring, but
 * the channel is one of the host's integration-service devices
 * (src/host/vsp/ic_*.c): cfg bits 2-3 pick heartbeat, shutdown, time sync
 * or KVP (bit 4: the host pushes no host info into KVP), and the ring holds the guest's IC answers (NEGOTIATE replies,
 * KVP records in UTF-16) to the requests the host sends (op 4 makes it
 * send KVP get / set / enumerate / delete, time sync, shutdown). Extra
 * oracle there: every KVP result the host hands its caller is terminated
 * and valid UTF-8.
 *
 * Built a third time as fuzz_host_storvsp (FZ_HOST_STORVSP): the channel
 * is a synthetic SCSI controller of the storage VSP (src/host/vsp/
 * storvsp.c) with null disks (host/disk: completions are queued at once
 * and reach the VSP when the harness runs the event loop, so the order is
 * the input's), and the ring holds the guest's VSTOR requests: the init
 * sequence, EXECUTE_SRB with GPA-direct buffers, resets, sub-channel
 * requests. cfg bits 2-3 cap the VSTOR version (6.2, 6.0, 5.1, 4.2), bit
 * 4: no sub-channels, bit 5: a read-only second LUN, bit 6: queue depth
 * 2, bit 7: one request's bytes in flight at a time. Op 4 runs the loop,
 * hot-removes or hot-adds a LUN, or arms the "disk.error" fault. Extra
 * oracles there: no request answered twice (completions <= requests), no
 * disk request left in flight once the loop is idle.
 *
 * Built a fourth time as fuzz_host_netvsp (FZ_HOST_NETVSP): the channel is
 * a synthetic NIC (src/host/vsp/netvsp*.c, host/net offloads) on the null
 * network back end, and the ring holds the guest's NVSP messages (init,
 * NDIS config and version, receive and send buffers by GPADL, RNDIS
 * packets by send-buffer section or GPA-direct pages, sub-channel
 * requests, completions of the host's receives). guest_open also makes
 * the send buffer (GPADL 0x301, pages SEND_PAGE0.., followed by pages for
 * GPA-direct data) and the receive buffer (GPADL 0x302). cfg bit 2: the
 * back end generates frames to the guest (bits 5-6: their size), bit 3:
 * one queue (else 4), bit 4: host MTU 9000, bit 7: link down at start.
 * Op 4 (u8 argument a) runs the loop, writes guest bytes into the send
 * buffer / data pages (u16 offset, u16 length, the bytes inline), plugs or
 * unplugs the cable, or (a bit 7) completes every receive the host sent
 * (the guest's NetVSC part: out ring read, completions written into the
 * in ring and published), or asks for the JSON description. Extra oracles there: the host
 * never writes the send buffer or the data pages; receive slots free <=
 * slots; the description fits or says -ENOBUFS.
 *
 * Oracles: every packet the framework hands out lies in the caller's
 * buffer and is the ring's bytes at the host's read position; its parsed
 * ranges stay inside the header and are valid; GPA-direct reads return the
 * guest's bytes (checked against an independent walk of the ranges); the
 * host never writes the guest's fields of either ring nor the incoming
 * data; -ENOBUFS reports a larger size.
 */
#include <errno.h>

#include "fuzz_common.h"

#include "fake_partition.h"
#include "host/fault.h"
#include "host/log.h"
#include "host/partition.h"
#include "host/vmbus_server.h"
#include "host/vsp/echo.h"
#include "host/vsp/vsp.h"
#include "hv/guid.h"
#if defined(FZ_HOST_IC) || defined(FZ_HOST_STORVSP) || \
	defined(FZ_HOST_NETVSP)
#include "host/loop.h"
#endif
#if defined(FZ_HOST_NETVSP)
#include "host/net/net.h"
#include "host/vsp/netvsp.h"
#include "hv/nvsp.h"
#endif
#if defined(FZ_HOST_IC)
#include "host/vsp/ic_host.h"
#endif
#if defined(FZ_HOST_STORVSP)
#include "host/disk/disk.h"
#include "host/vsp/storvsp.h"
#endif
#include "hv/ring.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"

#define RAM_BYTES  (1u << 20)
#define RAM_PAGES  (RAM_BYTES >> 12)
#define BUF_HANDLE 0x300u
#define BUF_PAGE0  100u
#define BUF_PAGES  16u
/* netvsp: send buffer (4 pages) + GPA-direct data pages, receive buffer */
#define SEND_HANDLE 0x301u
#define SEND_PAGE0  120u
#define SEND_PAGES  4u
#define DATA_PAGES  12u		/* after the send buffer */
#define RECV_HANDLE 0x302u
#define RECV_PAGE0  136u
#define RECV_PAGES  64u

static const uint32_t buflens[8] = { 8, 16, 24, 64, 256, 1024, 4096, 16384 };

struct vs {
	struct hvs_partition *p;
	struct hvs_vmbus *s;
	const struct hvs_partition_ops *ops;
	struct hvs_channel *ch;	/* while open */
	uint32_t in_pages, out_pages;
	uint64_t in_pfn[4], out_pfn[2];
	uint32_t dsize;
	uint8_t *image;
	struct fz extra;	/* bytes the guest writes into the ring later */
	uint8_t ctl_in[128], ctl_out[128];
	/* what the VSP does with the next packets */
	uint32_t buflen;
	uint32_t gpa_off, gpa_len;
	uint32_t pkts;
	bool verbose;
	uint32_t relid;		/* the channel the guest opens */
#if defined(FZ_HOST_IC) || defined(FZ_HOST_STORVSP) || \
	defined(FZ_HOST_NETVSP)
	struct hvs_loop *loop;	/* IC: timers never run (deterministic);
				 * storvsp: run by op 4 only */
#endif
#if defined(FZ_HOST_IC)
	struct hvs_ic *ic;
	unsigned results;
#endif
#if defined(FZ_HOST_STORVSP)
	struct hvs_storage *st;
#endif
#if defined(FZ_HOST_NETVSP)
	struct hvs_netvsp *nic;
	uint8_t *tx_shadow;	/* what the guest wrote: send buffer + data */
#endif
};

static struct vs g;
static struct hvs_partition *g_part;	/* kept across inputs */

static void sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	if (g.verbose)
		fprintf(stderr, "[host %d] %s\n", level, line);
}

/* Guest address of byte off of the incoming ring's data area. */
static uint64_t in_data_gpa(uint32_t off)
{
	return (g.in_pfn[1 + off / 4096u] << 12) + off % 4096u;
}

/* Guest RAM at byte at of the incoming ring's data area (circular)
 * takes src[0, len): page by page, not byte by byte. */
static void in_data_put(uint32_t at, const uint8_t *src, uint32_t len)
{
	while (len != 0) {
		uint32_t run = 4096u - at % 4096u;

		if (run > g.dsize - at)
			run = g.dsize - at;
		if (run > len)
			run = len;
		memcpy(fp_ptr(g.p, in_data_gpa(at)), src, run);
		src += run;
		len -= run;
		at = (at + run) % g.dsize;
	}
}

static int relid_of(void *ctx, const struct hvs_chan_info *c)
{
	if (c->ci_relid != g.relid)
		return 0;
	*(struct hvs_chan_info *)ctx = *c;
	return 1;	/* found: stop the walk */
}

/* The host's read position in the incoming ring: it consumed ci_pkts_in
 * packets of ci_bytes_in bytes (skipped ones included), each + trailer. */
static uint32_t read_pos(void)
{
	struct hvs_chan_info ci;

	memset(&ci, 0, sizeof(ci));
	hvs_vmbus_foreach_channel(g.s, relid_of, &ci);
	return (uint32_t)((ci.ci_bytes_in + 8u * ci.ci_pkts_in) % g.dsize);
}

/* An independent walk of a validated GPA-direct packet: its bytes from
 * guest RAM, or false if a page is outside RAM. */
static bool gpa_expect(const struct hvs_pkt *pk, uint64_t off, uint8_t *out,
		       uint32_t len)
{
	const uint8_t *r = pk->pk_ranges;

	for (uint32_t i = 0; i < pk->pk_range_cnt && len; i++) {
		uint32_t bc = hv_get_le32(r), bo = hv_get_le32(r + 4);
		uint64_t n = ((uint64_t)bo + bc + 4095u) / 4096u;

		for (uint32_t k = 0; k < bc && len; k++) {
			if (off) {
				off--;
				continue;
			}
			uint64_t at = bo + k;
			uint64_t pfn = hv_get_le64(r + 8 + 8 * (at / 4096u));
			if (pfn == 0 || pfn >= RAM_PAGES)
				return false;
			*out++ = *(uint8_t *)fp_ptr(g.p, (pfn << 12) + at % 4096u);
			len--;
		}
		r += 8 + 8 * n;
	}
	return len == 0;
}

static void check_pkt(const struct hvs_pkt *pk, const uint8_t *buf,
		      uint32_t buflen, uint32_t start)
{
	uint32_t off8 = (uint32_t)(pk->pk_data - buf);

	FZ_CHECK(pk->pk_raw == buf, "packet not in the caller's buffer");
	FZ_CHECK(pk->pk_len >= 16 && pk->pk_len <= buflen &&
		 pk->pk_len % 8 == 0, "packet of %u in %u", pk->pk_len, buflen);
	FZ_CHECK(pk->pk_data >= buf + 16 && off8 <= pk->pk_len &&
		 pk->pk_datalen == pk->pk_len - off8, "payload outside packet");
	FZ_CHECK(pk->pk_type == VMBUS_PACKET_TYPE_DATA_INBAND ||
		 pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES ||
		 pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT ||
		 pk->pk_type == VMBUS_PACKET_TYPE_COMP, "type %u", pk->pk_type);
	FZ_CHECK(!(pk->pk_flags & ~VMBUS_PACKET_FLAG_COMPLETION_REQUESTED),
		 "flags 0x%x", pk->pk_flags);
	for (uint32_t i = 0; i < pk->pk_len; i++)
		FZ_CHECK(buf[i] == g.image[(start + i) % g.dsize],
			 "byte %u of the packet at 0x%x is not the ring's", i,
			 start);
	if (pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
		const uint8_t *r = pk->pk_ranges;
		uint64_t total = 0;

		FZ_CHECK(r == buf + 24 && pk->pk_range_cnt >= 1 &&
			 r + pk->pk_ranges_len <= pk->pk_data,
			 "GPA ranges outside the header");
		for (uint32_t i = 0; i < pk->pk_range_cnt; i++) {
			FZ_CHECK(r + 8 <= pk->pk_data, "range %u header", i);
			uint32_t bc = hv_get_le32(r), bo = hv_get_le32(r + 4);
			uint64_t n = ((uint64_t)bo + bc + 4095u) / 4096u;

			FZ_CHECK(bc > 0 && bo < 4096, "range %u: %u at %u", i,
				 bc, bo);
			FZ_CHECK(r + 8 + 8 * n <= pk->pk_data, "range %u PFNs", i);
			total += bc;
			r += 8 + 8 * n;
		}
		FZ_CHECK(total == pk->pk_gpa_bytes, "gpa_bytes %llu, ranges "
			 "%llu", (unsigned long long)pk->pk_gpa_bytes,
			 (unsigned long long)total);
	}
	if (pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES)
		FZ_CHECK(pk->pk_xfer_ranges == buf + 24 &&
			 pk->pk_xfer_ranges + 8u * pk->pk_xfer_range_cnt <=
				 pk->pk_data, "transfer ranges outside header");
}

static void use_gpa(struct hvs_channel *ch, const struct hvs_pkt *pk)
{
	uint32_t len = g.gpa_len;
	uint8_t *got = malloc(len ? len : 1), *want = malloc(len ? len : 1);
	int r;

	r = hvs_pkt_gpa_read(ch, pk, g.gpa_off, got, len);
	if (r == 0) {
		FZ_CHECK((uint64_t)g.gpa_off + len <= pk->pk_gpa_bytes,
			 "read past the described bytes");
		FZ_CHECK(gpa_expect(pk, g.gpa_off, want, len),
			 "read succeeded on a page outside RAM");
		FZ_CHECK(memcmp(got, want, len) == 0,
			 "GPA-direct read returned other bytes");
	} else {
		FZ_CHECK(r == -VMBUS_ERANGE || r == -VMBUS_EFAULT,
			 "gpa_read returned %d", r);
	}
	memset(got, 0x5c, len);
	(void)hvs_pkt_gpa_write(ch, pk, g.gpa_off, got, len);
	free(got);
	free(want);
}

static int vsp_open(void *arg, struct hvs_channel *ch)
{
	(void)arg;
	g.ch = ch;
	return 0;
}

static void vsp_close(void *arg, struct hvs_channel *ch, int why)
{
	(void)arg;
	(void)ch;
	(void)why;
	g.ch = NULL;
}

static void vsp_signal(void *arg, struct hvs_channel *ch)
{
	(void)arg;
	hvs_chan_mask(ch);
	for (int i = 0; i < 32; i++) {
		uint32_t needed = 0, start = read_pos();
		uint8_t *buf = malloc(g.buflen);
		struct hvs_pkt pk;
		int r = hvs_chan_recv(ch, &pk, buf, g.buflen, &needed);

		if (r == 0) {
			/* Unknown types before it were skipped: the packet
			 * ends where the host's read position is now. */
			start = (read_pos() + g.dsize - (pk.pk_len + 8u) %
				 g.dsize) % g.dsize;
			check_pkt(&pk, buf, g.buflen, start);
			g.pkts++;
			if (pk.pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT)
				use_gpa(ch, &pk);
			if (pk.pk_flags & VMBUS_PACKET_FLAG_COMPLETION_REQUESTED)
				(void)hvs_chan_send(ch, VMBUS_PACKET_TYPE_COMP, 0,
						    pk.pk_trans_id, pk.pk_data,
						    pk.pk_datalen > 64 ? 64
								       : pk.pk_datalen);
		} else if (r == -VMBUS_ENOBUFS) {
			FZ_CHECK(needed > g.buflen, "ENOBUFS, needs %u of %u",
				 needed, g.buflen);
		}
		free(buf);
		if (r != 0)
			break;
	}
	hvs_chan_recv_done(ch);
	(void)hvs_chan_unmask(ch);
}

static const struct hvs_vsp_ops vsp_ops = {
	.vo_open = vsp_open,
	.vo_close = vsp_close,
	.vo_on_signal = vsp_signal,
};

static void post(const uint8_t *m, uint32_t len, uint32_t connid)
{
	(void)g.ops->post_message(g.s, 0, connid, VMBUS_MESSAGE_TYPE, m, len);
}

static void gpadl(uint32_t handle, const uint64_t *pfn, uint32_t n)
{
	uint8_t m[240];
	uint32_t done = 0, k;

	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_GPADL_HEADER);
	hv_put_le32(m + 8, g.relid);
	hv_put_le32(m + 12, handle);
	hv_put_le16(m + 16, (uint16_t)(8 + 8 * n));
	hv_put_le16(m + 18, 1);
	hv_put_le32(m + 20, n * 4096);
	for (k = 0; k < n && k < 26; k++)
		hv_put_le64(m + 28 + 8 * k, pfn[k]);
	post(m, 28 + 8 * k, 1);
	for (done = k; done < n; done += k) {
		memset(m, 0, sizeof(m));
		hv_put_le32(m, VMBUS_CHANMSG_GPADL_BODY);
		hv_put_le32(m + 12, handle);
		for (k = 0; k < n - done && k < 28; k++)
			hv_put_le64(m + 16 + 8 * k, pfn[done + k]);
		post(m, 16 + 8 * k, 1);
	}
}

/* Connect, offer, GPADLs and OPENCHANNEL, as a guest would. */
static bool guest_open(void)
{
	uint8_t m[240];
	uint64_t ring[6], buf[BUF_PAGES];
	const struct fp_msg *r;
	bool ok = false;

	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_INITIATE_CONTACT);
	hv_put_le32(m + 8, VMBUS_VERSION_IRON);
	m[16] = VMBUS_MESSAGE_SINT;
	post(m, VMBUS_CHANMSG_INITIATE_CONTACT_SIZE,
	     VMBUS_MESSAGE_CONNECTION_ID_4);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_REQUESTOFFERS);
	post(m, 8, 1);
	for (uint32_t i = 0; i < g.in_pages; i++)
		ring[i] = g.in_pfn[i];
	for (uint32_t i = 0; i < g.out_pages; i++)
		ring[g.in_pages + i] = g.out_pfn[i];
	gpadl(0x100, ring, g.in_pages + g.out_pages);
	memset(m, 0, sizeof(m));
	hv_put_le32(m, VMBUS_CHANMSG_OPENCHANNEL);
	hv_put_le32(m + 8, g.relid);
	hv_put_le32(m + 12, 1);
	hv_put_le32(m + 16, 0x100);
	hv_put_le32(m + 24, g.in_pages);
	post(m, VMBUS_CHANMSG_OPENCHANNEL_SIZE, 1);
	for (uint32_t i = 0; i < BUF_PAGES; i++)
		buf[i] = BUF_PAGE0 + i;
	gpadl(BUF_HANDLE, buf, BUF_PAGES);
#if defined(FZ_HOST_NETVSP)
	{
		uint64_t pf[RECV_PAGES];

		for (uint32_t i = 0; i < SEND_PAGES; i++)
			pf[i] = SEND_PAGE0 + i;
		gpadl(SEND_HANDLE, pf, SEND_PAGES);
		for (uint32_t i = 0; i < RECV_PAGES; i++)
			pf[i] = RECV_PAGE0 + i;
		gpadl(RECV_HANDLE, pf, RECV_PAGES);
	}
#endif
	while ((r = fp_pop(g.p)) != NULL)
		if (hv_get_le32(r->buf) == VMBUS_CHANMSG_OPENCHANNEL_RESULT &&
		    hv_get_le32(r->buf + 16) == 0)
			ok = true;
	g.p->nmsgs = g.p->rd = 0;
	g.p->nevents = 0;
	return ok;
}

#define IN_CTL(f)  ((g.in_pfn[0] << 12) + offsetof(struct hv_ring_control, f))
#define OUT_CTL(f) ((g.out_pfn[0] << 12) + offsetof(struct hv_ring_control, f))

static void put_ram32(uint64_t gpa, uint32_t v)
{
	hv_put_le32(fp_ptr(g.p, gpa), v);
}

/*
 * Guest memory the host may only read: the incoming ring's data (and
 * NetVSP's send buffer and TX data pages, check_tx_pages). Comparing it
 * after every op was most of a run; a host write stays there until a
 * guest op writes the same bytes, so it is compared before every guest
 * write (guest_writes) and after the last op instead: the same writes
 * are caught.
 */
static void check_ring_data(void)
{
	for (uint32_t pg = 0; pg < g.dsize / 4096u; pg++)
		FZ_CHECK(fp_host_wrote(g.p, g.in_pfn[1 + pg]) ||
			 memcmp(fp_ptr(g.p, in_data_gpa(pg * 4096u)),
				g.image + pg * 4096u, 4096) == 0,
			 "host wrote incoming ring data in page %u", pg);
}

#if defined(FZ_HOST_NETVSP)
static void check_tx_pages(void);
#endif

/* The guest is about to write memory the host may only read. */
static void guest_writes(void)
{
	check_ring_data();
#if defined(FZ_HOST_NETVSP)
	check_tx_pages();
#endif
}

/* The guest writes b[0, n) into its ring at byte off (circular). */
static void in_put(uint32_t off, const uint8_t *b, uint32_t n)
{
	uint32_t at = off % g.dsize;

	guest_writes();
	while (n != 0) {
		uint32_t run = g.dsize - at < n ? g.dsize - at : n;

		memcpy(g.image + at, b, run);
		in_data_put(at, b, run);
		b += run;
		n -= run;
		at = 0;
	}
}

static void check_shared(void)
{
	uint8_t *in = fp_ptr(g.p, g.in_pfn[0] << 12);
	uint8_t *out = fp_ptr(g.p, g.out_pfn[0] << 12);

	/* Guest-owned: in-ring write_index, pending_send_sz, feature bits;
	 * out-ring read_index, interrupt_mask. */
	if (g.verbose)
		fprintf(stderr, "in ctl: wi %x/%x pend %x/%x feat %x/%x\n",
			hv_get_le32(in), hv_get_le32(g.ctl_in),
			hv_get_le32(in + 12), hv_get_le32(g.ctl_in + 12),
			hv_get_le32(in + 64), hv_get_le32(g.ctl_in + 64));
	/* A guest that named a ring's control page as a buffer (GPA-direct
	 * data in, its interrupt page) asked the host to write there. */
	FZ_CHECK(fp_host_wrote(g.p, g.in_pfn[0]) ||
		 (memcmp(in, g.ctl_in, 4) == 0 &&
		  memcmp(in + 12, g.ctl_in + 12, 4) == 0 &&
		  memcmp(in + 64, g.ctl_in + 64, 4) == 0),
		 "host wrote a guest field of the incoming ring");
	FZ_CHECK(fp_host_wrote(g.p, g.out_pfn[0]) ||
		 memcmp(out + 4, g.ctl_out + 4, 8) == 0,
		 "host wrote a guest field of the outgoing ring");
}

static void snap_shared(void)
{
	memcpy(g.ctl_in, fp_ptr(g.p, g.in_pfn[0] << 12), sizeof(g.ctl_in));
	memcpy(g.ctl_out, fp_ptr(g.p, g.out_pfn[0] << 12), sizeof(g.ctl_out));
}

static void vsp_gpadl_op(uint8_t op, struct fz *f)
{
	uint32_t handle = (op & 8) ? fz_u32(f) : BUF_HANDLE;
	uint32_t off = fz_u16(f) * 8u, len = fz_u16(f) % 9000u;
	uint64_t bytes = 0;
	uint8_t *b = malloc(len ? len : 1);

	if (g.ch == NULL) {
		free(b);
		return;
	}
	if (op & 0x10) {
		uint64_t mlen = 0;
		uint8_t *w = hvs_chan_map_gpadl(g.ch, handle, &mlen);

		if (w != NULL) {
			FZ_CHECK(handle == BUF_HANDLE && mlen == BUF_PAGES * 4096u,
				 "mapped handle 0x%x, %llu bytes", handle,
				 (unsigned long long)mlen);
			FZ_CHECK(memcmp(w, fp_ptr(g.p, BUF_PAGE0 << 12),
					mlen) == 0, "window differs from RAM");
			hvs_chan_unmap_gpadl(g.ch, handle);
		}
	} else if (hvs_chan_gpadl_hold(g.ch, handle, &bytes) == 0) {
		FZ_CHECK(handle == BUF_HANDLE, "held handle 0x%x", handle);
		if (hvs_chan_gpadl_read(g.ch, handle, off, b, len) == 0) {
			FZ_CHECK((uint64_t)off + len <= bytes, "read past end");
			FZ_CHECK(memcmp(b, fp_ptr(g.p, (BUF_PAGE0 << 12) + off),
					len) == 0, "GPADL read differs");
		}
		(void)hvs_chan_gpadl_write(g.ch, handle, off, b, len);
		hvs_chan_gpadl_put(g.ch, handle);
	}
	free(b);
}

#if defined(FZ_HOST_IC)
static bool utf8_ok(const char *s, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = memchr(p, 0, cap);

	if (end == NULL)
		return false;
	while (p < end) {
		unsigned n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 :
			     (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : 9;

		if (n == 9 || (n && *p < 0xC2) || end - p <= (ptrdiff_t)n)
			return false;
		for (unsigned k = 1; k <= n; k++)
			if ((p[k] & 0xC0) != 0x80)
				return false;
		p += 1 + n;
	}
	return true;
}

static void kvp_result(void *arg, const struct hvs_ic_kvp_result *r)
{
	(void)arg;
	g.results++;
	FZ_CHECK(utf8_ok(r->kr_key, sizeof(r->kr_key)),
		 "KVP result key not terminated UTF-8");
	FZ_CHECK(utf8_ok(r->kr_value, sizeof(r->kr_value)),
		 "KVP result value not terminated UTF-8");
}

static void done_cb(void *arg, int err, uint32_t status)
{
	(void)arg;
	(void)err;
	(void)status;
	g.results++;
}

/* The host's own requests (each becomes a packet to the guest, whose
 * answer the ring then holds). */
static void ic_action(uint8_t op, struct fz *f)
{
	static const char *const keys[] = { "HostName", "Key1",
		"GuestSystemTimeUtc", "\xc3\xa9t\xc3\xa9" };
	uint8_t a = fz_u8(f), pool = a & 3;
	const char *key = keys[(a >> 2) & 3];

	if (g.ic == NULL)
		return;
	switch ((op >> 3) & 7) {
	case 0: (void)hvs_ic_kvp_get(g.ic, pool, key, kvp_result, NULL); break;
	case 1: (void)hvs_ic_kvp_set(g.ic, pool, key, "v\xc3\xa4lue",
				     kvp_result, NULL); break;
	case 2: (void)hvs_ic_kvp_enumerate(g.ic, pool, a >> 4, kvp_result,
					   NULL); break;
	case 3: (void)hvs_ic_kvp_delete(g.ic, pool, key, kvp_result, NULL);
		break;
	case 4: (void)hvs_ic_kvp_set_int(g.ic, pool, key, a, a & 1,
					 kvp_result, NULL); break;
	case 5: (void)hvs_ic_timesync_sync_now(g.ic); break;
	case 6: (void)hvs_ic_shutdown(g.ic, a & 7, 0, "bye", done_cb, NULL);
		break;
	default: (void)hvs_ic_kvp_list(g.ic, pool, kvp_result, NULL); break;
	}
}

static int mirror_rec(void *arg, const char *key, uint32_t type,
		      const char *value)
{
	(void)arg;
	(void)type;
	FZ_CHECK(utf8_ok(key, HVS_IC_KVP_KEY_MAX), "mirrored key not UTF-8");
	FZ_CHECK(utf8_ok(value, HVS_IC_KVP_VALUE_MAX),
		 "mirrored value not UTF-8");
	g.results++;
	return 0;
}

static int64_t host_utc(void *arg)
{
	(void)arg;
	return 1700000000ll * 1000000000ll;
}

static uint64_t ref_time(void *arg)
{
	(void)arg;
	return 123456789ull;
}

static const struct hv_guid ic_classes[4] = {
	HV_GUID_HEARTBEAT_INIT, HV_GUID_SHUTDOWN_INIT, HV_GUID_TIMESYNC_INIT,
	HV_GUID_KVP_INIT,
};
static struct hv_guid g_want;

static int find_class(void *ctx, const struct hvs_chan_info *c)
{
	(void)ctx;
	if (hv_guid_equal(&c->ci_class, &g_want))
		g.relid = c->ci_relid;
	return 0;
}
#endif

#if defined(FZ_HOST_STORVSP)
/* Dispatch what is ready (disk completions) until the loop is idle. */
static void run_loop(void)
{
	for (int i = 0; i < 64; i++)
		if (hvs_loop_run_once(g.loop, 0) <= 0)
			break;
}

static void sv_add_disk(unsigned lun, uint64_t size, bool ro)
{
	struct hvs_disk_spec ds;
	char err[160];

	hvs_disk_spec_init(&ds);
	snprintf(ds.ds_path, sizeof(ds.ds_path), "fz-lun%u", lun);
	ds.ds_size = size;
	ds.ds_ro = ro;
	ds.ds_lun = (int)lun;
	ds.ds_controller = 0;
	ds.ds_backend = HVS_DISK_BACKEND_NULL;
	(void)hvs_storage_add_disk(g.st, &ds, NULL, NULL, err, sizeof(err));
}

static void sv_action(uint8_t op, struct fz *f)
{
	static const int64_t errs[4] = { 5, 28, 30, 61 }; /* EIO ENOSPC EROFS
							     ENODATA */
	uint8_t a = fz_u8(f);

	switch ((op >> 3) & 3) {
	case 0:
		run_loop();
		break;
	case 1:
		(void)hvs_storage_remove_disk(g.st, 0, a & 1u);
		break;
	case 2:
		sv_add_disk(a & 1u, 4096u * (1u + ((a >> 1) & 63u)),
			    (a & 0x80) != 0);
		break;
	default:
		if (a & 1) {
			struct hvs_fault_param fp[2];

			memset(fp, 0, sizeof(fp));
			snprintf(fp[0].fp_name, sizeof(fp[0].fp_name), "errno");
			fp[0].fp_value = errs[(a >> 1) & 3];
			snprintf(fp[1].fp_name, sizeof(fp[1].fp_name), "op");
			fp[1].fp_value = (a >> 3) % 5;
			FZ_CHECK(hvs_fault_set(HVS_DISK_FAULT_ERROR, true, fp,
					       2, NULL) == 0, "disk.error");
		} else {
			(void)hvs_fault_set(HVS_DISK_FAULT_ERROR, false, NULL,
					    0, NULL);
		}
		break;
	}
}

static struct hv_guid g_want;

static int find_class(void *ctx, const struct hvs_chan_info *c)
{
	(void)ctx;
	if (hv_guid_equal(&c->ci_class, &g_want) && c->ci_sub_index == 0)
		g.relid = c->ci_relid;
	return 0;
}
#endif

#if defined(FZ_HOST_NETVSP)
#define TX_BYTES ((SEND_PAGES + DATA_PAGES) * 4096u)

static void run_loop(void)
{
	for (int i = 0; i < 64; i++)
		if (hvs_loop_run_once(g.loop, 0) <= 0)
			break;
}

/* The guest's send buffer and data pages: written only by the guest. */
static void check_tx_pages(void)
{
	for (uint32_t i = 0; i < SEND_PAGES + DATA_PAGES; i++)
		FZ_CHECK(fp_host_wrote(g.p, SEND_PAGE0 + i) ||
			 memcmp(fp_ptr(g.p, (uint64_t)(SEND_PAGE0 + i) << 12),
				g.tx_shadow + i * 4096u, 4096) == 0,
			 "host wrote the guest's send buffer or TX data page %u",
			 i);
}

static uint8_t out_u8(uint32_t off)
{
	off %= 4096u;
	return *(uint8_t *)fp_ptr(g.p, (g.out_pfn[1] << 12) + off);
}

static uint64_t out_le(uint32_t off, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = n; i-- > 0;)
		v = v << 8 | out_u8(off + i);
	return v;
}

/*
 * The guest as a NetVSC would be: read every packet the host sent, and
 * answer each transfer-page packet (a receive) with the completion that
 * gives its slot back, as far as the incoming ring has room.
 */
static void complete_rx(uint32_t status)
{
	uint8_t *oc = fp_ptr(g.p, g.out_pfn[0] << 12);
	uint8_t *ic = fp_ptr(g.p, g.in_pfn[0] << 12);
	uint32_t owi = hv_get_le32(oc), ori = hv_get_le32(oc + 4);
	uint32_t wi = (hv_get_le32(ic) & ~7u) % g.dsize;
	uint32_t ri = hv_get_le32(ic + 4) % g.dsize;

	if (owi >= 4096u || ori >= 4096u || (owi | ori) % 8u)
		return;
	for (unsigned n = 0; ori != owi && n < 512; n++) {
		uint32_t len = 8u * (uint32_t)out_le(ori + 4, 2);

		if (len < 16 || len + 8u >= 4096u)
			break;
		if (out_le(ori, 2) == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES) {
			uint8_t p[32];
			uint32_t used = (wi + g.dsize - ri) % g.dsize;

			if (g.dsize - used <= sizeof(p))
				break;
			memset(p, 0, sizeof(p));
			hv_put_le16(p, VMBUS_PACKET_TYPE_COMP);
			hv_put_le16(p + 2, 2);
			hv_put_le16(p + 4, 3);
			hv_put_le64(p + 8, out_le(ori + 8, 8));
			hv_put_le32(p + 16, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
			hv_put_le32(p + 20, status);
			hv_put_le32(p + 28, wi);
			in_put(wi, p, sizeof(p));
			wi = (wi + sizeof(p)) % g.dsize;
		}
		ori = (ori + len + 8u) % 4096u;
	}
	put_ram32(OUT_CTL(rc_read_index), ori);
	put_ram32(IN_CTL(rc_write_index), wi);
	snap_shared();
}

static void nv_action(uint8_t op, struct fz *f)
{
	uint8_t a = fz_u8(f);

	switch ((op >> 3) & 3) {
	case 0:
		run_loop();
		break;
	case 1: {
		uint32_t off = fz_u16(f) % TX_BYTES, len = fz_u16(f) % 4097u;

		guest_writes();
		for (uint32_t i = 0; i < len; i++) {
			uint8_t b = fz_u8(f);

			if (off + i < TX_BYTES) {
				g.tx_shadow[off + i] = b;
				*(uint8_t *)fp_ptr(g.p, ((uint64_t)SEND_PAGE0 << 12) +
						   off + i) = b;
			}
		}
		break;
	}
	case 2:
		if (a & 0x80)
			complete_rx((a & 0x40) ? NVSP_STAT_FAIL
					       : NVSP_STAT_SUCCESS);
		else
			hvs_netvsp_set_link(g.nic, a & 1);
		break;
	default: {
		size_t cap = (size_t)a * 8u;
		char *buf = malloc(cap ? cap : 1);
		int r = hvs_netvsp_describe_json(g.nic, buf, cap);

		FZ_CHECK(buf != NULL, "malloc");
		if (r >= 0)
			FZ_CHECK((size_t)r < cap && buf[r] == 0 &&
				 strlen(buf) == (size_t)r && buf[0] == '{',
				 "description of %d bytes in %zu", r, cap);
		else
			FZ_CHECK(r == -ENOBUFS && (cap == 0 || buf[0] == 0),
				 "describe returned %d", r);
		free(buf);
		break;
	}
	}
}
#endif

static void one_op(struct fz *f)
{
	uint8_t op = fz_u8(f);

	switch (op & 7) {
	case 0:
		(void)g.ops->signal_event(g.s, 0x2000 + g.relid, 0);
		break;
	case 1:
		put_ram32(IN_CTL(rc_write_index),
			  (op & 8) ? fz_u32(f) : (8u * fz_u16(f)) % g.dsize);
		break;
	case 2:
		if ((op & 0x50) == 0x50)	/* the guest read it all */
			put_ram32(OUT_CTL(rc_read_index),
				  hv_get_le32(fp_ptr(g.p, OUT_CTL(rc_write_index))));
		else if (op & 0x10)
			put_ram32(OUT_CTL(rc_interrupt_mask), (op >> 5) & 1u);
		else
			put_ram32(OUT_CTL(rc_read_index),
				  (op & 8) ? fz_u32(f) : (8u * fz_u16(f)) % 4096u);
		break;
	case 3:
		g.buflen = buflens[fz_u8(f) & 7];
		g.gpa_off = fz_u16(f);
		g.gpa_len = fz_u16(f) % 20000u;
		break;
	case 4:
#if defined(FZ_HOST_IC)
		ic_action(op, f);
#elif defined(FZ_HOST_STORVSP)
		sv_action(op, f);
#elif defined(FZ_HOST_NETVSP)
		nv_action(op, f);
#else
		vsp_gpadl_op(op, f);
#endif
		break;
	case 5:
		hvs_vmbus_poll(g.s);
		break;
	case 6:
		if (op & 8) {
			/* The guest writes more into the ring (what it wraps
			 * over once the host has read the old bytes). */
			uint32_t off = fz_u16(f), len = fz_u16(f) % (g.dsize + 1);
			uint8_t *b = malloc(len ? len : 1);

			if (b == NULL)
				abort();
			fz_bytes(&g.extra, b, len);
			in_put(off, b, len);
			free(b);
		} else {
			uint8_t m[16] = { 0 };

			hv_put_le32(m, VMBUS_CHANMSG_CLOSECHANNEL);
			hv_put_le32(m + 8, g.relid);
			post(m, 12, 1);
		}
		break;
	case 7:
		if (g.ch != NULL) {
			uint8_t d[256];

			memset(d, op, sizeof(d));
			(void)hvs_chan_send(g.ch, VMBUS_PACKET_TYPE_DATA_INBAND,
					    (op >> 3) & 1u, op,
					    d, 8u * (op >> 4));
		}
		break;
	}
	/* The guest's fields change only by the guest ops above. */
	if ((op & 7) == 1 || (op & 7) == 2)
		snap_shared();
	check_shared();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvs_vmbus_config cfg;
	static const struct hv_guid cls =
		HV_GUID(0xf0220001, 0x1, 0x2, 3, 4, 5, 6, 7, 8, 9, 10);
	struct fz f, ops;
	uint8_t c;
	uint32_t in_wi, in_ri, in_mask, in_pend, in_feat, out_ri, out_mask;
	unsigned nops;

	memset(&g, 0, sizeof(g));
	g.verbose = getenv("FUZZ_VERBOSE") != NULL;
	g.buflen = 4096;
	g.gpa_len = 64;
	hvs_log_set_sink(sink, NULL);
	hvs_fault_reset_all();
	fz_init(&f, data, size);
	c = fz_u8(&f);
	g.in_pages = (c & 1) ? 4 : 2;
	g.out_pages = 2;
	g.dsize = (g.in_pages - 1) * 4096u;
	for (uint32_t i = 0; i < g.in_pages; i++)
		g.in_pfn[i] = (c & 2) ? 60u - 3u * i : 16u + i;
	for (uint32_t i = 0; i < g.out_pages; i++)
		g.out_pfn[i] = (c & 2) ? 70u - 2u * i : 16u + g.in_pages + i;

	/* One partition for every input, reset (a new memfd and 1 MB of
	 * captures per input were most of the time). */
	if (g_part == NULL)
		g_part = fp_create("fz", RAM_BYTES, 1);
	g.p = g_part;
	/* Every page written once: zeros where the rings may go, a
	 * pattern elsewhere, the buffer pages their own. */
	fp_reset_keep_ram(g.p, 1);
	for (uint32_t pg = 0; pg < RAM_PAGES; pg++) {
		int v = 0;

		if (pg >= BUF_PAGE0 && pg < BUF_PAGE0 + BUF_PAGES)
			v = (int)(0x40 + pg - BUF_PAGE0);
		else if (pg >= 32 && (pg < 40 || pg >= 80))
			v = (int)(pg * 7u);
		memset(fp_ptr(g.p, (uint64_t)pg << 12), v, 4096);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.vm_name = "fz";
	g.s = hvs_vmbus_create(&cfg);
	FZ_CHECK(g.s != NULL, "create");
	g.ops = hvs_vmbus_partition_ops();
	hvs_vmbus_attach(g.s, g.p);
	g.relid = 1;
#if defined(FZ_HOST_IC)
	{
		struct hvs_ic_config icc;

		g.loop = hvs_loop_create();
		FZ_CHECK(g.loop != NULL, "loop");
		hvs_ic_config_init(&icc);
		icc.ic_loop = g.loop;
		icc.ic_host_utc_ns = host_utc;
		icc.ic_ref_time = ref_time;
		icc.ic_no_host_info = (c & 0x10) != 0;
		FZ_CHECK(hvs_ic_add(g.s, &icc, &g.ic) == 0, "IC devices");
		g_want = ic_classes[(c >> 2) & 3];
		hvs_vmbus_foreach_channel(g.s, find_class, NULL);
	}
	(void)vsp_ops;
	(void)cls;
	(void)vsp_gpadl_op;
#elif defined(FZ_HOST_NETVSP)
	{
		struct hvs_net_spec ns;
		char err[256];
		int r;

		g.loop = hvs_loop_create();
		FZ_CHECK(g.loop != NULL, "loop");
		hvs_net_spec_init(&ns);
		ns.ns_kind = HVS_NET_NULL;
		if (c & 4) {
			static const uint32_t lens[4] = { 60, 1514, 64, 9014 };

			ns.ns_gen_len = lens[(c >> 5) & 3];
			ns.ns_gen_count = 6;
		}
		ns.ns_queues = (c & 8) ? 1 : 4;
		ns.ns_mtu = (c & 0x10) ? 9000 : 1500;
		ns.ns_link_down = (c & 0x80) != 0;
		r = hvs_netvsp_add(g.s, g.loop, &ns, 0, &g.nic, err, sizeof(err));
		FZ_CHECK(r > 0, "netvsp: %s", err);
		g.relid = (uint32_t)r;
		g.tx_shadow = malloc(TX_BYTES);
		FZ_CHECK(g.tx_shadow != NULL, "malloc");
		memcpy(g.tx_shadow, fp_ptr(g.p, (uint64_t)SEND_PAGE0 << 12),
		       TX_BYTES);
	}
	(void)vsp_ops;
	(void)cls;
	(void)vsp_gpadl_op;
#elif defined(FZ_HOST_STORVSP)
	{
		static const uint16_t vers[4] = { 0, 0x0600, 0x0501, 0x0402 };
		static const struct hv_guid scsi = HV_GUID_STORVSC_INIT;
		struct hvs_storvsp_config sc;

		g.loop = hvs_loop_create();
		FZ_CHECK(g.loop != NULL, "loop");
		g.st = hvs_storage_create(g.s, g.loop);
		FZ_CHECK(g.st != NULL, "storage");
		memset(&sc, 0, sizeof(sc));
		sc.sc_max_version = vers[(c >> 2) & 3];
		sc.sc_max_subchannels = (c & 0x10) ? HVS_STORVSP_NO_SUBCHANNELS
						   : 2;
		sc.sc_queue_depth = (c & 0x40) ? 2 : 8;
		sc.sc_max_transfer = 64u * 1024u;
		sc.sc_max_inflight = (c & 0x80) ? 64u * 1024u : 0;
		FZ_CHECK(hvs_storage_config_controller(g.st, 0, &sc, false) == 0,
			 "controller config");
		sv_add_disk(0, 1u << 20, false);
		if (c & 0x20)
			sv_add_disk(1, 128u * 1024u, true);
		g_want = scsi;
		g.relid = 0;
		hvs_vmbus_foreach_channel(g.s, find_class, NULL);
		FZ_CHECK(g.relid != 0, "no SCSI controller offered");
	}
	(void)vsp_ops;
	(void)cls;
	(void)vsp_gpadl_op;
#else
	if (c & 4)
		FZ_CHECK(hvs_echo_add(g.s, NULL) == 1, "echo device");
	else
		FZ_CHECK(hvs_vmbus_add_device(g.s, &vsp_ops, NULL, &cls, NULL,
					      NULL) == 1, "test device");
#endif
	if (!guest_open()) {
		/* This server refuses scattered rings: nothing to fuzz. */
		FZ_CHECK(c & 2, "the channel did not open");
		goto out;
	}

	in_wi = fz_u32(&f);
	in_ri = fz_u32(&f);
	in_mask = fz_u32(&f);
	in_pend = fz_u32(&f);
	in_feat = fz_u32(&f);
	out_ri = fz_u32(&f);
	out_mask = fz_u32(&f);
	nops = fz_u8(&f);
	ops = f;
	for (unsigned i = 0; i < nops; i++) {
		uint8_t op = fz_u8(&f);

		switch (op & 7) {
		case 1: (void)((op & 8) ? fz_u32(&f) : fz_u16(&f)); break;
		case 2:
			if (!(op & 0x10))
				(void)((op & 8) ? fz_u32(&f) : fz_u16(&f));
			break;
		case 3: (void)fz_u8(&f); (void)fz_u32(&f); break;
		case 4:
#if defined(FZ_HOST_NETVSP)
			(void)fz_u8(&f);
			if (((op >> 3) & 3) == 1) {
				(void)fz_u16(&f);
				for (uint32_t n = fz_u16(&f) % 4097u; n; n--)
					(void)fz_u8(&f);
			}
#elif defined(FZ_HOST_IC) || defined(FZ_HOST_STORVSP)
			(void)fz_u8(&f);
#else
			if (op & 8)
				(void)fz_u32(&f);
			(void)fz_u32(&f);
#endif
			break;
		case 6: if (op & 8) (void)fz_u32(&f); break;
		}
	}
	g.image = malloc(g.dsize);
	if (g.image == NULL)
		abort();
	fz_bytes(&f, g.image, g.dsize);
	g.extra = f;
	in_data_put(0, g.image, g.dsize);
	put_ram32(IN_CTL(rc_write_index), in_wi);
	put_ram32(IN_CTL(rc_read_index), in_ri);
	put_ram32(IN_CTL(rc_interrupt_mask), in_mask);
	put_ram32(IN_CTL(rc_pending_send_sz), in_pend);
	put_ram32(IN_CTL(rc_feature_bits), in_feat);
	put_ram32(OUT_CTL(rc_read_index), out_ri);
	put_ram32(OUT_CTL(rc_interrupt_mask), out_mask);
	snap_shared();

	for (unsigned i = 0; i < nops; i++) {
		one_op(&ops);
		g.p->nmsgs = g.p->rd = 0;
		g.p->nevents = 0;
	}
	guest_writes();	/* what the host wrote since the last guest write */
#if defined(FZ_HOST_IC)
	/* What the host learnt from the guest's KVP pools. */
	for (uint8_t pool = 0; pool < 5; pool++)
		(void)hvs_ic_kvp_mirror_foreach(g.ic, pool, mirror_rec, NULL,
						NULL);
#endif
	if (g.verbose) {
		/* What the host wrote to the guest (its requests). */
		uint8_t *oc = fp_ptr(g.p, g.out_pfn[0] << 12);
		uint32_t wi = hv_get_le32(oc), pos = 0;

		fprintf(stderr, "host_vsp: %u packets in; out:", g.pkts);
		while (pos < wi && pos + 16 <= 4096) {
			uint8_t *p = fp_ptr(g.p, (g.out_pfn[1] << 12) + pos);
			uint32_t len = 8u * hv_get_le16(p + 4);

			fprintf(stderr, " [type %u tid %llu len %u", hv_get_le16(p),
				(unsigned long long)hv_get_le64(p + 8), len);
			if (len >= 16 + 32 && pos + 48 <= 4096)
				fprintf(stderr, " ic %u op %u pool %u",
					hv_get_le16(p + 16 + 12), p[16 + 28],
					p[16 + 29]);
			fprintf(stderr, "]");
			if (len == 0)
				break;
			pos += len + 8;
		}
		fputc('\n', stderr);
	}
#if defined(FZ_HOST_STORVSP)
	{
		struct hvs_storvsp_stats ss;

		run_loop();
		FZ_CHECK(hvs_storage_get_stats(g.st, 0, &ss) == 0, "stats");
		if (g.verbose)
			fprintf(stderr, "storvsp: %llu requests, %llu srbs, "
				"%llu completions, %llu bad, %llu bad srbs, "
				"%llu gpa faults, version 0x%x\n",
				(unsigned long long)ss.ss_requests,
				(unsigned long long)ss.ss_srbs,
				(unsigned long long)ss.ss_completions,
				(unsigned long long)ss.ss_bad_packets,
				(unsigned long long)ss.ss_bad_srbs,
				(unsigned long long)ss.ss_gpa_faults,
				ss.ss_version);
		FZ_CHECK(ss.ss_completions <= ss.ss_requests,
			 "%llu completions for %llu requests",
			 (unsigned long long)ss.ss_completions,
			 (unsigned long long)ss.ss_requests);
		FZ_CHECK(ss.ss_srbs <= ss.ss_requests, "srbs > requests");
		FZ_CHECK(ss.ss_inflight == 0, "%u disk requests in flight with "
			 "the loop idle", ss.ss_inflight);
	}
#endif
#if defined(FZ_HOST_NETVSP)
	{
		struct hvs_netvsp_stats ns;

		run_loop();
		check_tx_pages();
		hvs_netvsp_get_stats(g.nic, &ns);
		if (g.verbose)
			fprintf(stderr, "netvsp: nvsp 0x%x ndis 0x%x rndis %d "
				"slots %u/%u sections %u tx %llu (drop %llu, "
				"compl %llu) rx %llu (not ready %llu, filtered "
				"%llu, dropped %llu, deferred %llu) ctrl %llu "
				"errors %llu\n",
				ns.ns_nvsp_version, ns.ns_ndis_version,
				ns.ns_rndis_up, ns.ns_rx_slots_free,
				ns.ns_rx_slots, ns.ns_send_sections,
				(unsigned long long)ns.ns_tx_frames,
				(unsigned long long)ns.ns_tx_dropped,
				(unsigned long long)ns.ns_tx_completions,
				(unsigned long long)ns.ns_rx_frames,
				(unsigned long long)ns.ns_rx_not_ready,
				(unsigned long long)ns.ns_rx_filtered,
				(unsigned long long)ns.ns_rx_dropped,
				(unsigned long long)ns.ns_rx_deferred,
				(unsigned long long)ns.ns_ctrl_msgs,
				(unsigned long long)ns.ns_guest_errors);
		FZ_CHECK(ns.ns_rx_slots_free <= ns.ns_rx_slots,
			 "%u of %u receive slots free", ns.ns_rx_slots_free,
			 ns.ns_rx_slots);
	}
#endif
out:
	hvs_vmbus_destroy(g.s);
#if defined(FZ_HOST_STORVSP)
	hvs_storage_destroy(g.st);
#endif
#if defined(FZ_HOST_NETVSP)
	free(g.tx_shadow);
#endif
#if defined(FZ_HOST_IC) || defined(FZ_HOST_STORVSP) || \
	defined(FZ_HOST_NETVSP)
	hvs_loop_destroy(g.loop);
#endif
	fp_check_windows(g.p);
	free(g.image);
	return 0;
}
