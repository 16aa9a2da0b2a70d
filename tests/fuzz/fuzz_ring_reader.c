/*
 * fuzz_ring_reader - the ring library (src/common/ring.c) as the READER of
 * a ring whose control page and data area the peer (the fuzzer) wrote:
 * peek / read / skip / read_done / bytes_to_read / mask / unmask, with the
 * peer moving write_index and scribbling its other fields in between.
 * Both sides use this code (guest receive ring, host incoming ring).
 *
 * Input: cfg u8 (bits 0-1: data pages - 1; bit 2: attach to the given
 * indices instead of resetting; bit 3: use the given feature bits),
 * write_index u32, read_index u32, pending_send_sz u32, feature_bits u32,
 * nops u8, nops operations (op byte + parameters, see below), then the
 * data area image (zero-padded).
 *
 * Oracles (beyond ASan/UBSan on the exact-size ring allocation):
 *  - the reader never writes the data area, and of the control page only
 *    read_index and interrupt_mask;
 *  - a published read_index is below the data size and 8-aligned;
 *  - copied bytes are the ring bytes at the reader's cursor, and the
 *    cursor never passes a write_index the peer published;
 *  - once broken, every call fails and nothing is written any more.
 */
#include "fuzz_common.h"

#include "common/ring.h"
#include "hv/ring.h"

#define MAX_HIST 300
#define OUT_MAX  65536u	/* > any fz_u16 length */

struct rd {
	struct vmbus_ring r;
	uint8_t *mem;
	uint32_t dsize;
	uint8_t *shadow_ctl;	/* expected control page */
	uint8_t *shadow_data;	/* expected data area */
	uint32_t cur;		/* model of the private cursor */
	uint8_t *out;		/* OUT_MAX bytes: peek/read destinations */
	uint32_t hist[MAX_HIST]; /* write_index values the peer published */
	unsigned nhist;
};

static void peer_set(struct rd *d, size_t off, uint32_t v)
{
	hv_put_le32(d->mem + off, v);
	hv_put_le32(d->shadow_ctl + off, v);
	if (off == offsetof(struct hv_ring_control, rc_write_index) &&
	    d->nhist < MAX_HIST)
		d->hist[d->nhist++] = v;
}

static uint32_t fwd(const struct rd *d, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : d->dsize - a + b;
}

static bool in_hist(const struct rd *d, uint32_t v)
{
	for (unsigned i = 0; i < d->nhist; i++)
		if (d->hist[i] == v)
			return true;
	return false;
}

/* The reader never writes the data area (no op of the peer does either,
 * so one check after the last op sees any write). */
static void check_data(const struct rd *d)
{
	FZ_CHECK(memcmp(d->mem + HV_RING_CONTROL_SIZE, d->shadow_data,
			d->dsize) == 0, "reader wrote the data area");
}

/* The reader may change read_index and interrupt_mask, nothing else. */
static void check_shared(struct rd *d, bool was_broken)
{
	uint32_t ri = hv_get_le32(d->mem + offsetof(struct hv_ring_control,
						    rc_read_index));
	uint32_t old_ri = hv_get_le32(d->shadow_ctl +
				      offsetof(struct hv_ring_control,
					       rc_read_index));
	uint32_t old_mask = hv_get_le32(d->shadow_ctl +
					offsetof(struct hv_ring_control,
						 rc_interrupt_mask));

	if (ri != old_ri) {
		FZ_CHECK(!was_broken, "broken reader published read_index");
		FZ_CHECK(ri < d->dsize && (ri & 7) == 0,
			 "published read_index 0x%x (dsize 0x%x)", ri, d->dsize);
		FZ_CHECK(ri == d->r.rb_cur, "published 0x%x, cursor 0x%x", ri,
			 d->r.rb_cur);
	}
	if (was_broken)
		FZ_CHECK(hv_get_le32(d->mem + offsetof(struct hv_ring_control,
						       rc_interrupt_mask)) ==
				 old_mask,
			 "broken reader changed interrupt_mask");
	/* Adopt the two reader-owned words (read_index, interrupt_mask at
	 * bytes 4-11), then compare the whole page. */
	memcpy(d->shadow_ctl + 4, d->mem + 4, 8);
	FZ_CHECK(memcmp(d->shadow_ctl, d->mem, HV_RING_CONTROL_SIZE) == 0,
		 "reader wrote a control field it does not own");
}

/* Bytes at ring offset off, wrapping. */
static bool ring_equals(const struct rd *d, uint32_t off, const uint8_t *buf,
			uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (buf[i] != d->shadow_data[(off + i) % d->dsize])
			return false;
	return true;
}

static void after_consume(struct rd *d, uint32_t old_cur, uint32_t need)
{
	/* The cursor moved exactly past the packet and its trailer... */
	FZ_CHECK(d->r.rb_cur == (old_cur + need) % d->dsize,
		 "cursor 0x%x after consuming 0x%x at 0x%x", d->r.rb_cur, need,
		 old_cur);
	/* ...and never past a write_index the peer published. */
	FZ_CHECK(in_hist(d, d->r.rb_peer), "snapshot 0x%x never published",
		 d->r.rb_peer);
	FZ_CHECK(fwd(d, old_cur, d->r.rb_peer) >= need,
		 "consumed 0x%x at 0x%x, writer at 0x%x", need, old_cur,
		 d->r.rb_peer);
}

/* len bytes for a peek or read: the end of one 64 KiB block per input,
 * so a copy past len runs into the allocation's redzone as it would past
 * a buffer of its own (a malloc per op was a quarter of the time). */
static uint8_t *out_buf(struct rd *d, uint32_t len)
{
	return d->out + (OUT_MAX - len);
}

static void one_op(struct rd *d, struct fz *f)
{
	uint8_t op = fz_u8(f);
	bool was_broken = vmbus_ring_broken(&d->r);
	uint32_t old_cur = d->r.rb_cur;
	int rc;

	switch (op & 7) {
	case 0: { /* peek */
		uint32_t len = fz_u16(f);
		uint8_t *buf = out_buf(d, len);
		rc = vmbus_ring_peek(&d->r, len ? buf : NULL, len);
		if (rc == 0) {
			FZ_CHECK(!was_broken, "peek succeeded on a broken ring");
			FZ_CHECK(ring_equals(d, old_cur, buf, len),
				 "peek copied the wrong bytes");
			FZ_CHECK(d->r.rb_cur == old_cur, "peek moved the cursor");
			FZ_CHECK(fwd(d, old_cur, d->r.rb_peer) >= len + 8u,
				 "peeked past the writer");
		}
		break;
	}
	case 1: { /* read with skip */
		uint32_t len = fz_u16(f), skip = fz_u16(f);
		uint8_t *buf = out_buf(d, len);
		rc = vmbus_ring_read(&d->r, len ? buf : NULL, len, skip);
		if (rc == 0) {
			FZ_CHECK(!was_broken, "read succeeded on a broken ring");
			FZ_CHECK(ring_equals(d, (old_cur + skip) % d->dsize, buf,
					     len), "read copied the wrong bytes");
			after_consume(d, old_cur, skip + len + 8u);
			d->cur = d->r.rb_cur;
		}
		break;
	}
	case 2: { /* skip */
		uint32_t len = fz_u16(f);
		rc = vmbus_ring_skip(&d->r, len);
		if (rc == 0) {
			FZ_CHECK(!was_broken, "skip succeeded on a broken ring");
			after_consume(d, old_cur, len + 8u);
		}
		break;
	}
	case 3:
		if (vmbus_ring_read_done(&d->r))
			FZ_CHECK(!was_broken, "broken ring asked for a signal");
		break;
	case 4: {
		uint32_t n = vmbus_ring_bytes_to_read(&d->r);
		FZ_CHECK(n < d->dsize, "bytes_to_read 0x%x of 0x%x", n, d->dsize);
		if (vmbus_ring_broken(&d->r))
			FZ_CHECK(n == 0, "broken ring reports %u bytes", n);
		break;
	}
	case 5:
		if (op & 8) {
			uint32_t n = vmbus_ring_unmask(&d->r);
			FZ_CHECK(n < d->dsize, "unmask reports 0x%x", n);
		} else {
			vmbus_ring_mask(&d->r);
		}
		break;
	case 6: /* the writer publishes a new write_index */
		peer_set(d, offsetof(struct hv_ring_control, rc_write_index),
			 (op & 8) ? fz_u32(f)
				  : (uint32_t)(d->r.rb_peer + 8u * fz_u8(f)) %
					    d->dsize);
		break;
	case 7: /* the writer scribbles its other fields */
		peer_set(d, (op & 8) ? offsetof(struct hv_ring_control,
						 rc_pending_send_sz)
				     : offsetof(struct hv_ring_control,
						rc_feature_bits),
			 fz_u32(f));
		break;
	}
	check_shared(d, was_broken);
	if (vmbus_ring_broken(&d->r))
		FZ_CHECK(d->r.rb_broken_why != VMBUS_RING_BAD_NONE,
			 "broken without a reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct rd d;
	uint8_t cfg;
	uint32_t wi, ri, pend, feat, bytes;
	unsigned nops;

	fz_init(&f, data, size);
	memset(&d, 0, sizeof(d));
	cfg = fz_u8(&f);
	d.dsize = HV_PAGE_SIZE * (1u + (cfg & 3u));
	bytes = HV_RING_CONTROL_SIZE + d.dsize;
	d.mem = aligned_alloc(HV_PAGE_SIZE, bytes);
	d.shadow_ctl = calloc(1, HV_RING_CONTROL_SIZE);
	d.shadow_data = calloc(1, d.dsize);
	d.out = malloc(OUT_MAX);
	if (!d.mem || !d.shadow_ctl || !d.shadow_data || !d.out)
		abort();
	memset(d.mem, 0, bytes);
	FZ_CHECK(vmbus_ring_init(&d.r, d.mem, bytes) == 0, "init refused");

	wi = fz_u32(&f);
	ri = fz_u32(&f);
	pend = fz_u32(&f);
	feat = fz_u32(&f);
	nops = fz_u8(&f);

	if (cfg & 4) {
		/* Join a ring in use: both indices as the peer left them. */
		hv_put_le32(d.mem + offsetof(struct hv_ring_control,
					     rc_write_index), wi);
		hv_put_le32(d.mem + offsetof(struct hv_ring_control,
					     rc_read_index), ri);
		if (vmbus_ring_attach(&d.r, false) == 0) {
			FZ_CHECK(d.r.rb_cur == ri && d.r.rb_peer == wi,
				 "attach adopted other indices");
		} else {
			FZ_CHECK(vmbus_ring_broken(&d.r), "attach failed unbroken");
		}
	} else {
		vmbus_ring_reset_shared(&d.r, false);
		hv_put_le32(d.mem + offsetof(struct hv_ring_control,
					     rc_write_index), wi);
	}
	memcpy(d.shadow_ctl, d.mem, HV_RING_CONTROL_SIZE);
	d.hist[d.nhist++] = d.r.rb_peer;
	d.hist[d.nhist++] = wi;
	peer_set(&d, offsetof(struct hv_ring_control, rc_pending_send_sz), pend);
	if (cfg & 8)
		peer_set(&d, offsetof(struct hv_ring_control, rc_feature_bits),
			 feat);
	d.cur = d.r.rb_cur;

	/* Ops first in the input, the data image last: decode the ops into a
	 * private list so the image can be placed before they run. */
	uint8_t opbuf[256 * 6];
	size_t oplen = 0;
	{
		struct fz g = f;
		for (unsigned i = 0; i < nops; i++) {
			uint8_t op = fz_u8(&g);
			unsigned extra = 0;
			switch (op & 7) {
			case 0: case 2: extra = 2; break;
			case 1: extra = 4; break;
			case 6: extra = (op & 8) ? 4 : 1; break;
			case 7: extra = 4; break;
			}
			for (unsigned k = 0; k < extra; k++)
				(void)fz_u8(&g);
		}
		oplen = (size_t)(g.p - f.p);
		if (oplen > sizeof(opbuf))
			oplen = sizeof(opbuf);
		memcpy(opbuf, f.p, oplen);
		f = g;
	}
	fz_bytes(&f, d.mem + HV_RING_CONTROL_SIZE, d.dsize);
	memcpy(d.shadow_data, d.mem + HV_RING_CONTROL_SIZE, d.dsize);

	struct fz o;
	fz_init(&o, opbuf, oplen);
	for (unsigned i = 0; i < nops; i++)
		one_op(&d, &o);
	check_data(&d);

	free(d.mem);
	free(d.shadow_ctl);
	free(d.shadow_data);
	free(d.out);
	return 0;
}
