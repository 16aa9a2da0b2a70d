/*
 * fuzz_guest_ring - the guest core's ring-packet boundary: chan_io.c's
 * copy-in and descriptor validation, completions into xact slots
 * (xact.c), unknown-type skipping, the callback/unmask loop, and the send
 * path against a hostile read_index. A fixed scripted host (fuzzport.h)
 * connects at 5.3 and opens one echo-class channel; the fuzzer's input is
 * then the host->guest ring (control page and data) plus the guest-side
 * operations that consume it, all through the public API.
 *
 * Input: flags u8 (bit 0: 3-page receive ring, else 2; bit 1: the driver
 * registers no callback; bit 2: 16-byte xact responses, else 64), nops u8,
 * rx write_index u32, rx pending_send_sz u32, rx feature_bits u32, tx
 * read_index u32, tx interrupt_mask u32, nops operations, then the
 * receive data area image (zero-padded), then the bytes later operations
 * write into the ring.
 *
 * Oracles: the guest never writes the receive data area nor the host's
 * fields of either control page; a packet it returns is exactly the ring
 * bytes at its read position (tracked from its rx statistics) and fits the
 * caller's buffer; -ENOBUFS reports a larger size; xact responses are at
 * most resp_max with `truncated` set exactly when cut; and, as in
 * fuzz_guest_msg, nothing leaks unrecorded.
 */
#include "fuzz_common.h"
#include "fuzzport.h"
#include "fzscript.h"

#include "hv/ring.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/vmbus.h"

#define NXACT 3

static const uint32_t bufsizes[8] = { 0, 8, 16, 24, 64, 256, 1024, 9000 };

struct ring_state {
	struct vmbus_channel *rs_ch;
	struct vmbus_xact *rs_xa[NXACT];
	uint32_t rs_resp_max;
	uint32_t rs_rx_pages;
	bool rs_cb;
	uint8_t *rs_rx;		/* receive ring (control page, data) */
	uint8_t *rs_tx;
	uint32_t rs_dsize;
	uint8_t *rs_image;	/* what the host wrote in the data area */
	struct fz rs_extra;	/* bytes the host writes into it later */
	uint8_t rs_ctl_rx[HV_RING_CONTROL_SIZE];
	uint8_t rs_ctl_tx[HV_RING_CONTROL_SIZE];
	unsigned rs_cb_pkts;
};

static struct ring_state g_rs;
static struct fzp g_fp;

static void check_packet(const uint8_t *buf, uint32_t len,
			 const struct vmbus_pkt_info *pi, bool whole);

static void cb(struct vmbus_channel *ch, void *arg)
{
	uint8_t buf[512];
	struct vmbus_pkt_info pi;

	(void)arg;
	for (int i = 0; i < 64; i++) {
		uint32_t len = sizeof(buf);
		int r = vmbus_chan_recv(ch, buf, &len, &pi);

		if (r == 0) {
			check_packet(buf, len, &pi, false);
			g_rs.rs_cb_pkts++;
		} else if (r != -VMBUS_ENOBUFS) {
			break;
		} else {
			FZ_CHECK(len > sizeof(buf), "ENOBUFS with len %u", len);
			break;
		}
	}
}

static int drv_attach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);
	int r;

	r = vmbus_chan_open(ch, 2 * HV_PAGE_SIZE,
			    g_rs.rs_rx_pages * HV_PAGE_SIZE, NULL, 0,
			    g_rs.rs_cb ? cb : NULL, NULL);
	if (r != 0)
		return r;
	g_rs.rs_ch = ch;
	if (vmbus_xact_setup(ch, NXACT + 1, 32, g_rs.rs_resp_max) == 0) {
		for (int i = 0; i < NXACT; i++) {
			struct vmbus_xact *xa = vmbus_xact_get(ch);

			if (xa == NULL)
				break;
			memset(vmbus_xact_req(xa), i, 32);
			if (vmbus_xact_send(xa, VMBUS_PACKET_TYPE_DATA_INBAND,
					    8u * (uint32_t)(i + 1)) == 0)
				g_rs.rs_xa[i] = xa;
			else
				vmbus_xact_put(xa);
		}
	}
	return 0;
}

static void drv_detach(struct vmbus_device *dev)
{
	for (int i = 0; i < NXACT; i++)
		if (g_rs.rs_xa[i] != NULL)
			vmbus_xact_put(g_rs.rs_xa[i]);
	memset(g_rs.rs_xa, 0, sizeof(g_rs.rs_xa));
	(void)vmbus_chan_close(vmbus_device_channel(dev));
	g_rs.rs_ch = NULL;
}

static const struct vmbus_driver drv = {
	.drv_name = "fuzzring",
	.drv_class = HV_GUID_ECHO_INIT,
	.drv_attach = drv_attach,
	.drv_detach = drv_detach,
};

/* The host prefix: connect, offer relid 1, open it; close and unload. */
static size_t host_script(uint8_t *out, size_t cap)
{
	static struct sb s;

	memset(&s, 0, sizeof(s));
	connect53(&s, false);
	open_ok(&s, 1, 0x10000, 1);
	close_ok(&s, 0x10000);
	unload_ok(&s);
	if (s.n > cap)
		abort();
	memcpy(out, s.b, s.n);
	return s.n;
}

/* Read position of the packet just consumed, from the rx statistics. */
static uint32_t consumed_end(void)
{
	struct vmbus_chan_stats st;

	if (g_rs.rs_ch == NULL ||
	    vmbus_chan_get_stats(g_rs.rs_ch, &st) != 0)
		return 0;
	return (uint32_t)((st.cs_rx_bytes + 8u * st.cs_rx_packets) %
			  g_rs.rs_dsize);
}

static void check_packet(const uint8_t *buf, uint32_t len,
			 const struct vmbus_pkt_info *pi, bool whole)
{
	uint32_t end = consumed_end();
	uint32_t start = (end + g_rs.rs_dsize - (pi->pi_pkt_len + 8u) %
			  g_rs.rs_dsize) % g_rs.rs_dsize;

	FZ_CHECK(pi->pi_hdr_len >= 16 && pi->pi_hdr_len <= pi->pi_pkt_len,
		 "header %u, packet %u", pi->pi_hdr_len, pi->pi_pkt_len);
	FZ_CHECK(pi->pi_pkt_len + 8u < g_rs.rs_dsize, "packet of %u in a "
		 "ring of %u", pi->pi_pkt_len, g_rs.rs_dsize);
	FZ_CHECK(pi->pi_type == VMBUS_PACKET_TYPE_DATA_INBAND ||
		 pi->pi_type == VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES ||
		 pi->pi_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT ||
		 pi->pi_type == VMBUS_PACKET_TYPE_COMP,
		 "packet type %u handed out", pi->pi_type);
	FZ_CHECK((pi->pi_flags & ~VMBUS_PACKET_FLAG_COMPLETION_REQUESTED) == 0,
		 "flags 0x%x handed out", pi->pi_flags);
	FZ_CHECK(len == (whole ? pi->pi_pkt_len
			       : pi->pi_pkt_len - pi->pi_hdr_len),
		 "%u bytes for a packet %u header %u", len, pi->pi_pkt_len,
		 pi->pi_hdr_len);
	/* The bytes are the ring's, from where the packet starts (the
	 * descriptor of a whole copy is the validated private copy, which
	 * must equal the ring's too). */
	for (uint32_t i = 0; i < len; i++) {
		uint32_t at = (start + (whole ? 0 : pi->pi_hdr_len) + i) %
			      g_rs.rs_dsize;

		FZ_CHECK(buf[i] == g_rs.rs_image[at],
			 "byte %u of the packet at 0x%x differs from the ring",
			 i, start);
	}
	if (whole) {
		FZ_CHECK(hv_get_le16(buf) == pi->pi_type &&
			 hv_get_le16(buf + 4) * 8u == pi->pi_pkt_len &&
			 hv_get_le64(buf + 8) == pi->pi_trans_id,
			 "descriptor copy differs from the info");
	}
}

static void do_recv(uint8_t op)
{
	uint32_t cap = bufsizes[(op >> 3) & 7], len = cap;
	bool whole = (op & 7) == 1;
	uint8_t *buf = malloc(cap ? cap : 1);
	struct vmbus_pkt_info pi;
	int r;

	if (g_rs.rs_ch == NULL) {
		free(buf);
		return;
	}
	r = whole ? vmbus_chan_recv_pkt(g_rs.rs_ch, cap ? buf : NULL, &len, &pi)
		  : vmbus_chan_recv(g_rs.rs_ch, cap ? buf : NULL, &len, &pi);
	if (r == 0) {
		FZ_CHECK(len <= cap, "%u bytes into a buffer of %u", len, cap);
		check_packet(buf, len, &pi, whole);
	} else if (r == -VMBUS_ENOBUFS) {
		FZ_CHECK(len > cap, "ENOBUFS but needs %u of %u", len, cap);
	} else {
		FZ_CHECK(r == -VMBUS_EAGAIN || r == -VMBUS_EPROTO ||
			 r == -VMBUS_ENODEV, "recv returned %d", r);
	}
	free(buf);
}

static void do_xact(unsigned i)
{
	struct vmbus_xact *xa = g_rs.rs_xa[i % NXACT];
	const uint8_t *resp;
	uint32_t len = 0;
	bool trunc = false;

	if (xa == NULL)
		return;
	if (vmbus_xact_wait(xa, 2000000) != 0)
		return;
	resp = vmbus_xact_resp(xa, &len, &trunc);
	FZ_CHECK(resp != NULL, "no response after a successful wait");
	FZ_CHECK(len <= g_rs.rs_resp_max, "response of %u, max %u", len,
		 g_rs.rs_resp_max);
	FZ_CHECK(!trunc || len == g_rs.rs_resp_max, "truncated at %u", len);
	for (uint32_t k = 0; k < len; k++)
		(void)*(volatile const uint8_t *)&resp[k];
}

static void one_op(struct fz *f)
{
	uint8_t op = fz_u8(f);
	uint8_t *rxc = g_rs.rs_rx, *txc = g_rs.rs_tx;

	switch (op & 7) {
	case 0:
	case 1:
		do_recv(op);
		break;
	case 2: {
		uint8_t data[128];
		uint32_t len = 8u * ((op >> 3) & 15u);

		memset(data, op, sizeof(data));
		if (g_rs.rs_ch != NULL)
			(void)vmbus_chan_send(g_rs.rs_ch,
					      VMBUS_PACKET_TYPE_DATA_INBAND,
					      (op & 0x80) ? 1 : 0, data, len,
					      op);
		break;
	}
	case 3: { /* the host publishes more (or lies) */
		uint32_t v = (op & 8) ? fz_u32(f)
				      : (8u * fz_u16(f)) % g_rs.rs_dsize;

		hv_put_le32(rxc + offsetof(struct hv_ring_control,
					   rc_write_index), v);
		break;
	}
	case 4: /* the host signals: the ISR path drains via the callback */
		fzp_event(&g_fp, 1);
		vmbus_isr(vmbus_chan_bus(g_rs.rs_ch ? g_rs.rs_ch : NULL), 0);
		break;
	case 5:
		do_xact(op >> 3);
		break;
	case 6: /* the host moves (or scribbles) the send ring's indices */
		if (op & 8)
			hv_put_le32(txc + offsetof(struct hv_ring_control,
						   rc_read_index), fz_u32(f));
		else
			hv_put_le32(txc + offsetof(struct hv_ring_control,
						   rc_interrupt_mask),
				    (op >> 4) & 1u);
		break;
	case 7:
		if (op & 0x10) {
			/* The host writes more into the ring (what it wraps
			 * over once the guest has read the old bytes). */
			uint32_t off = fz_u16(f);
			uint32_t len = fz_u16(f) % (g_rs.rs_dsize + 1);

			for (uint32_t i = 0; i < len; i++) {
				uint32_t at = (off + i) % g_rs.rs_dsize;

				g_rs.rs_image[at] = fz_u8(&g_rs.rs_extra);
				rxc[HV_RING_CONTROL_SIZE + at] = g_rs.rs_image[at];
			}
			break;
		}
		if (g_rs.rs_ch == NULL)
			break;
		if (op & 8)
			(void)vmbus_chan_wait_tx(g_rs.rs_ch, 8u * (op >> 5),
						 2000000);
		else
			(void)vmbus_chan_wait_rx(g_rs.rs_ch, 2000000);
		break;
	}
	/* What the guest must not write: the data the host put in the
	 * receive ring, and the host's control fields. */
	FZ_CHECK(memcmp(rxc + HV_RING_CONTROL_SIZE, g_rs.rs_image,
			g_rs.rs_dsize) == 0, "guest wrote the receive data");
	memcpy(g_rs.rs_ctl_rx + 4, rxc + 4, 8);	/* read_index, mask */
	memcpy(g_rs.rs_ctl_rx, rxc, 4);		/* host write_index (op 3) */
	FZ_CHECK(memcmp(g_rs.rs_ctl_rx, rxc, HV_RING_CONTROL_SIZE) == 0,
		 "guest wrote a host field of the receive control page");
	memcpy(g_rs.rs_ctl_tx, txc, 4);		/* write_index */
	memcpy(g_rs.rs_ctl_tx + 12, txc + 12, 4); /* pending_send_sz */
	memcpy(g_rs.rs_ctl_tx + 4, txc + 4, 8);	/* host's (op 6) */
	FZ_CHECK(memcmp(g_rs.rs_ctl_tx, txc, HV_RING_CONTROL_SIZE) == 0,
		 "guest wrote a host field of the send control page");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t script[4096];
	struct vmbus_config cfg;
	struct vmbus_stats st;
	struct vmbus *vb = NULL;
	struct fz f, ops;
	size_t slen;
	uint8_t flags;
	unsigned nops;
	uint32_t wi, pend, feat, tx_ri, tx_mask;

	fz_init(&f, data, size);
	flags = fz_u8(&f);
	nops = fz_u8(&f);
	wi = fz_u32(&f);
	pend = fz_u32(&f);
	feat = fz_u32(&f);
	tx_ri = fz_u32(&f);
	tx_mask = fz_u32(&f);

	memset(&g_rs, 0, sizeof(g_rs));
	g_rs.rs_rx_pages = (flags & 1) ? 3 : 2;
	g_rs.rs_dsize = (g_rs.rs_rx_pages - 1) * HV_PAGE_SIZE;
	g_rs.rs_cb = !(flags & 2);
	g_rs.rs_resp_max = (flags & 4) ? 16 : 64;

	slen = host_script(script, sizeof(script));
	fzp_init(&g_fp, 1, 0, script, slen);
	g_fp.fp_no_rings = true;	/* this harness writes the rings */
	memset(&cfg, 0, sizeof(cfg));
	cfg.vc_timeout_ns = 20000000;
	cfg.vc_max_channels = 4;
	cfg.vc_max_relid = 16;
	FZ_CHECK(vmbus_create(&g_fp.fp_plat, &cfg, &vb) == 0, "create");
	FZ_CHECK(vmbus_driver_register(vb, &drv) == 0, "register");
	FZ_CHECK(vmbus_connect(vb) == 0, "the scripted host did not connect");
	FZ_CHECK(g_rs.rs_ch != NULL, "the channel did not open");

	/* Find both rings through the GPADL the guest described. */
	{
		const struct fzp_gpadl *g = fzp_find_gpadl(&g_fp,
							   g_fp.fp_open_gpadl);
		uint32_t down = g_fp.fp_open_downstream;

		FZ_CHECK(g != NULL, "no ring GPADL");
		g_rs.rs_tx = fzp_gpa(&g_fp, fzp_gpadl_pfn(g, 0) << 12,
				     2 * HV_PAGE_SIZE);
		g_rs.rs_rx = fzp_gpa(&g_fp, fzp_gpadl_pfn(g, down) << 12,
				     g_rs.rs_rx_pages * HV_PAGE_SIZE);
		FZ_CHECK(g_rs.rs_tx && g_rs.rs_rx, "rings not in memory");
	}

	/* Ops come first in the input, the data image last. */
	ops = f;
	for (unsigned i = 0; i < nops; i++) {
		uint8_t op = fz_u8(&f);

		if ((op & 7) == 3)
			(void)((op & 8) ? fz_u32(&f) : fz_u16(&f));
		else if ((op & 7) == 6 && (op & 8))
			(void)fz_u32(&f);
		else if ((op & 7) == 7 && (op & 0x10))
			(void)fz_u32(&f);
	}
	g_rs.rs_image = malloc(g_rs.rs_dsize);
	if (g_rs.rs_image == NULL)
		abort();
	fz_bytes(&f, g_rs.rs_image, g_rs.rs_dsize);
	g_rs.rs_extra = f;
	memcpy(g_rs.rs_rx + HV_RING_CONTROL_SIZE, g_rs.rs_image,
	       g_rs.rs_dsize);
	hv_put_le32(g_rs.rs_rx + offsetof(struct hv_ring_control,
					  rc_write_index), wi);
	hv_put_le32(g_rs.rs_rx + offsetof(struct hv_ring_control,
					  rc_pending_send_sz), pend);
	hv_put_le32(g_rs.rs_rx + offsetof(struct hv_ring_control,
					  rc_feature_bits), feat);
	hv_put_le32(g_rs.rs_tx + offsetof(struct hv_ring_control,
					  rc_read_index), tx_ri);
	hv_put_le32(g_rs.rs_tx + offsetof(struct hv_ring_control,
					  rc_interrupt_mask), tx_mask);
	memcpy(g_rs.rs_ctl_rx, g_rs.rs_rx, HV_RING_CONTROL_SIZE);
	memcpy(g_rs.rs_ctl_tx, g_rs.rs_tx, HV_RING_CONTROL_SIZE);

	for (unsigned i = 0; i < nops; i++)
		one_op(&ops);
	if (g_fp.fp_verbose && g_rs.rs_ch != NULL) {
		struct vmbus_chan_stats cs;

		vmbus_chan_get_stats(g_rs.rs_ch, &cs);
		fprintf(stderr, "guest_ring: rx %llu packets %llu bytes, "
			"proto errors %llu, bad completions %llu, unknown %llu, "
			"callback %u\n", (unsigned long long)cs.cs_rx_packets,
			(unsigned long long)cs.cs_rx_bytes,
			(unsigned long long)cs.cs_proto_errors,
			(unsigned long long)cs.cs_bad_completions,
			(unsigned long long)cs.cs_unknown_packets,
			g_rs.rs_cb_pkts);
	}

	(void)vmbus_unload(vb);
	vmbus_get_stats(vb, &st);
	vmbus_destroy(vb);
	FZ_CHECK(g_fp.fp_pages_live == st.bs_leaked_pages,
		 "%llu pages still allocated, %llu counted as leaked",
		 (unsigned long long)g_fp.fp_pages_live,
		 (unsigned long long)st.bs_leaked_pages);
	fzp_fini(&g_fp);
	free(g_rs.rs_image);
	return 0;
}
