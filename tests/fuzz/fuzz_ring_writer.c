/*
 * fuzz_ring_writer - the ring library (src/common/ring.c) as the WRITER
 * of a ring whose reader-owned fields (read_index, interrupt_mask) the
 * fuzzer controls: write / write_nopub / publish / set_pending_send with
 * the peer consuming, masking and scribbling in between. Both sides use
 * this code (guest send ring, host outgoing ring).
 *
 * Input: cfg u8 (bits 0-1: data pages - 1; bit 2: attach to the given
 * indices instead of resetting), read_index u32, write_index u32,
 * interrupt_mask u32, nops u8, then the operations.
 *
 * Oracles (beyond ASan/UBSan on the exact-size ring allocation):
 *  - the writer stores only write_index and pending_send_sz, never the
 *    reader's fields;
 *  - published-but-unread bytes (and unpublished packets) are never
 *    overwritten: the writer trusts no read_index beyond its window;
 *  - a written packet is exactly the iov bytes plus the trailer holding
 *    its start offset, and a successful write never fills the ring;
 *  - need_signal only when interrupt_mask is 0 and the reader had caught
 *    up with the batch start (spec 3.5);
 *  - pending_send_sz is the request plus unpublished bytes (or 0);
 *  - once broken, nothing is written any more.
 */
#include "fuzz_common.h"

#include "common/ring.h"
#include "hv/ring.h"

#define OFF_WI   offsetof(struct hv_ring_control, rc_write_index)
#define OFF_RI   offsetof(struct hv_ring_control, rc_read_index)
#define OFF_MASK offsetof(struct hv_ring_control, rc_interrupt_mask)
#define OFF_PEND offsetof(struct hv_ring_control, rc_pending_send_sz)

struct wr {
	struct vmbus_ring r;
	uint8_t *mem;
	uint32_t dsize;
	uint8_t *shadow_ctl;
	uint8_t *shadow_data;
	uint32_t seq;
};

static uint32_t fwd(const struct wr *w, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : w->dsize - a + b;
}

static uint32_t ld(const struct wr *w, size_t off)
{
	return hv_get_le32(w->mem + off);
}

static void peer_set(struct wr *w, size_t off, uint32_t v)
{
	hv_put_le32(w->mem + off, v);
	hv_put_le32(w->shadow_ctl + off, v);
}

/*
 * The packet bytes at ring offset pos (circular) equal buf[0, len)?
 * Returns the offset of the first difference, or UINT32_MAX. Whole runs
 * at once: a byte loop taking the ring size's remainder every byte was
 * half of the harness's time.
 */
static uint32_t ring_diff(const struct wr *w, uint32_t pos, const uint8_t *buf,
			  uint32_t len)
{
	const uint8_t *dat = w->mem + HV_RING_CONTROL_SIZE;

	while (len != 0) {
		uint32_t run = w->dsize - pos < len ? w->dsize - pos : len;

		if (memcmp(dat + pos, buf, run) != 0) {
			for (uint32_t k = 0; k < run; k++)
				if (dat[pos + k] != buf[k])
					return pos + k;
		}
		buf += run;
		len -= run;
		pos = (pos + run) % w->dsize;
	}
	return UINT32_MAX;
}

/* The shadow takes ring bytes [pos, pos + len) (circular) as they are. */
static void shadow_take(struct wr *w, uint32_t pos, uint32_t len)
{
	const uint8_t *dat = w->mem + HV_RING_CONTROL_SIZE;

	while (len != 0) {
		uint32_t run = w->dsize - pos < len ? w->dsize - pos : len;

		memcpy(w->shadow_data + pos, dat + pos, run);
		len -= run;
		pos = (pos + run) % w->dsize;
	}
}

/* Ring bytes [a, b) (circular) unchanged since the shadow was taken. */
static bool region_same(const struct wr *w, uint32_t a, uint32_t b)
{
	const uint8_t *dat = w->mem + HV_RING_CONTROL_SIZE;

	if (a <= b)
		return memcmp(dat + a, w->shadow_data + a, b - a) == 0;
	return memcmp(dat + a, w->shadow_data + a, w->dsize - a) == 0 &&
	       memcmp(dat, w->shadow_data, b) == 0;
}

static void do_write(struct wr *w, struct fz *f, uint8_t op, bool publish)
{
	struct vmbus_iov iov[4];
	uint8_t *bufs[4] = { 0 };
	unsigned niov = 1u + ((op >> 4) & 3u);
	uint32_t total = 0, old_cur = w->r.rb_cur, old_pub = w->r.rb_pub;
	uint32_t old_peer = w->r.rb_peer, x;
	bool was_broken = vmbus_ring_broken(&w->r), sig = false;
	int rc;

	for (unsigned i = 0; i < niov; i++) {
		/* Up to a little more than the largest ring. */
		uint32_t len = fz_u16(f) % (4u * HV_PAGE_SIZE + 64u);

		if ((op & 8) && i == niov - 1)
			len += (8u - (total + len) % 8u) % 8u;
		bufs[i] = malloc(len ? len : 1);
		/* Bytes (seq * 31 + i * 7 + k) mod 256: one period, then
		 * copies of it. */
		for (uint32_t k = 0; k < len && k < 256u; k++)
			bufs[i][k] = (uint8_t)(w->seq * 31u + i * 7u + k);
		for (uint32_t k = 256u; k < len; k += 256u)
			memcpy(bufs[i] + k, bufs[i],
			       len - k < 256u ? len - k : 256u);
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = len;
		total += len;
	}
	w->seq++;
	rc = publish ? vmbus_ring_write(&w->r, iov, niov, &sig)
		     : vmbus_ring_write_nopub(&w->r, iov, niov);

	if (rc == 0 || (publish && rc == -VMBUS_EPROTO &&
			w->r.rb_pub != old_pub)) {
		/* The packet is in: exactly our bytes, then the trailer. */
		uint32_t pos = old_cur;
		const uint8_t *dat = w->mem + HV_RING_CONTROL_SIZE;

		FZ_CHECK(!was_broken, "broken ring accepted a packet");
		for (unsigned i = 0; i < niov; i++) {
			uint32_t bad = ring_diff(w, pos, bufs[i],
						 (uint32_t)iov[i].iov_len);

			FZ_CHECK(bad == UINT32_MAX, "packet byte at 0x%x", bad);
			pos = (uint32_t)((pos + iov[i].iov_len) % w->dsize);
		}
		uint8_t tr[8];
		for (unsigned k = 0; k < 8; k++)
			tr[k] = dat[(pos + k) % w->dsize];
		FZ_CHECK(hv_get_le32(tr) == 0 && hv_get_le32(tr + 4) == old_cur,
			 "trailer of the packet at 0x%x", old_cur);
		FZ_CHECK(w->r.rb_cur == (pos + 8u) % w->dsize,
			 "cursor after the packet");
		/*
		 * Room was decided against a read_index the reader could
		 * have reached by then: at most our published index (it may
		 * read into this packet only after the publish). Raw free
		 * space must have been strictly larger than the packet.
		 */
		x = fwd(w, old_peer, w->r.rb_peer) <= fwd(w, old_peer, old_pub)
			    ? w->r.rb_peer : old_pub;
		FZ_CHECK(fwd(w, x, old_cur) + total + 8u < w->dsize,
			 "packet of 0x%x at 0x%x overlaps unread bytes from "
			 "0x%x", total + 8u, old_cur, x);
		/* Only the packet's own bytes changed. */
		shadow_take(w, old_cur, total + 8u);
	}
	if (rc == 0 && publish && sig) {
		FZ_CHECK(ld(w, OFF_MASK) == 0, "signal with interrupt_mask set");
		FZ_CHECK(ld(w, OFF_RI) == old_pub,
			 "signal although the reader was at 0x%x, batch at 0x%x",
			 ld(w, OFF_RI), old_pub);
	}
	if (rc != 0 && rc != -VMBUS_EPROTO)
		FZ_CHECK(w->r.rb_cur == old_cur, "failed write moved the cursor");
	for (unsigned i = 0; i < niov; i++)
		free(bufs[i]);
}

static void one_op(struct wr *w, struct fz *f)
{
	uint8_t op = fz_u8(f);
	bool was_broken = vmbus_ring_broken(&w->r);
	uint32_t old_cur = w->r.rb_cur, old_pub = w->r.rb_pub;
	uint32_t old_peer = w->r.rb_peer, x;
	uint32_t old_pend = ld(w, OFF_PEND);

	switch (op & 7) {
	case 0:
		do_write(w, f, op, true);
		break;
	case 1:
		do_write(w, f, op, false);
		break;
	case 2: {
		bool sig = false;
		int rc = vmbus_ring_publish(&w->r, &sig);
		if (rc == 0 && sig) {
			FZ_CHECK(ld(w, OFF_MASK) == 0, "publish signal, masked");
			FZ_CHECK(ld(w, OFF_RI) == old_pub,
				 "publish signal, reader not at batch start");
		}
		if (old_cur == old_pub)
			FZ_CHECK(!sig, "signal for an empty publish");
		break;
	}
	case 3: {
		uint32_t bytes = (op & 8) ? fz_u32(f) : fz_u16(f);
		uint64_t want = bytes;

		vmbus_ring_set_pending_send(&w->r, bytes);
		if (was_broken) {
			FZ_CHECK(ld(w, OFF_PEND) == old_pend,
				 "broken ring stored pending_send_sz");
		} else {
			if (want)
				want += fwd(w, w->r.rb_pub, w->r.rb_cur);
			if (want > UINT32_MAX)
				want = UINT32_MAX;
			FZ_CHECK(ld(w, OFF_PEND) == want,
				 "pending_send_sz 0x%x, want 0x%llx",
				 ld(w, OFF_PEND), (unsigned long long)want);
		}
		hv_put_le32(w->shadow_ctl + OFF_PEND, ld(w, OFF_PEND));
		break;
	}
	case 4: /* the reader consumes (or lies about it) */
		peer_set(w, OFF_RI,
			 (op & 8) ? fz_u32(f)
				  : (ld(w, OFF_RI) + 8u * fz_u8(f)) % w->dsize);
		break;
	case 5:
		peer_set(w, OFF_MASK, (op & 8) ? fz_u32(f) : (op >> 4) & 1u);
		break;
	case 6: /* the reader scribbles a writer-owned field */
		peer_set(w, (op & 8) ? OFF_PEND : OFF_WI, fz_u32(f));
		break;
	case 7:
		(void)vmbus_ring_broken(&w->r);
		break;
	}

	/* Writer-owned words: write_index tracks the published cursor. */
	if (!vmbus_ring_broken(&w->r) && (op & 7) != 6) {
		uint32_t wi = ld(w, OFF_WI);
		if (wi != hv_get_le32(w->shadow_ctl + OFF_WI)) {
			FZ_CHECK(wi == w->r.rb_pub, "write_index 0x%x, published "
				 "0x%x", wi, w->r.rb_pub);
			FZ_CHECK(wi < w->dsize && (wi & 7) == 0,
				 "write_index 0x%x", wi);
		}
	}
	if (was_broken) {
		FZ_CHECK(ld(w, OFF_WI) == hv_get_le32(w->shadow_ctl + OFF_WI),
			 "broken ring published");
	}
	memcpy(w->shadow_ctl + OFF_WI, w->mem + OFF_WI, 4);
	memcpy(w->shadow_ctl + OFF_PEND, w->mem + OFF_PEND, 4);
	FZ_CHECK(memcmp(w->shadow_ctl, w->mem, HV_RING_CONTROL_SIZE) == 0,
		 "writer stored a reader-owned control field");
	/* Bytes written before this op and not read yet stay intact (the
	 * reader may since have moved into a packet this op published). */
	x = fwd(w, old_peer, w->r.rb_peer) <= fwd(w, old_peer, old_cur)
		    ? w->r.rb_peer : old_cur;
	FZ_CHECK(region_same(w, x, old_cur),
		 "writer overwrote unread bytes [0x%x, 0x%x)", x, old_cur);
	FZ_CHECK(memcmp(w->shadow_data, w->mem + HV_RING_CONTROL_SIZE,
			w->dsize) == 0, "writer wrote outside its packet");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t stale[HV_RING_CONTROL_SIZE + 4u * HV_PAGE_SIZE];
	struct fz f;
	struct wr w;
	uint8_t cfg;
	uint32_t bytes, ri, wi, mask;
	unsigned nops;

	fz_init(&f, data, size);
	memset(&w, 0, sizeof(w));
	cfg = fz_u8(&f);
	w.dsize = HV_PAGE_SIZE * (1u + (cfg & 3u));
	bytes = HV_RING_CONTROL_SIZE + w.dsize;
	w.mem = aligned_alloc(HV_PAGE_SIZE, bytes);
	w.shadow_ctl = malloc(HV_RING_CONTROL_SIZE);
	w.shadow_data = malloc(w.dsize);
	if (!w.mem || !w.shadow_ctl || !w.shadow_data)
		abort();
	/* Stale bytes everywhere, as in a reused ring (made once). */
	if (stale[1] == 0)
		for (uint32_t i = 0; i < sizeof(stale); i++)
			stale[i] = (uint8_t)(i * 13u + 5u);
	memcpy(w.mem, stale, bytes);
	FZ_CHECK(vmbus_ring_init(&w.r, w.mem, bytes) == 0, "init refused");
	ri = fz_u32(&f);
	wi = fz_u32(&f);
	mask = fz_u32(&f);
	nops = fz_u8(&f);
	if (cfg & 4) {
		hv_put_le32(w.mem + OFF_WI, wi);
		hv_put_le32(w.mem + OFF_RI, ri);
		if (vmbus_ring_attach(&w.r, true) != 0)
			FZ_CHECK(vmbus_ring_broken(&w.r), "attach failed unbroken");
	} else {
		vmbus_ring_reset_shared(&w.r, true);
		hv_put_le32(w.mem + OFF_RI, ri);
	}
	hv_put_le32(w.mem + OFF_MASK, mask);
	memcpy(w.shadow_ctl, w.mem, HV_RING_CONTROL_SIZE);
	memcpy(w.shadow_data, w.mem + HV_RING_CONTROL_SIZE, w.dsize);

	for (unsigned i = 0; i < nops; i++)
		one_op(&w, &f);

	free(w.mem);
	free(w.shadow_ctl);
	free(w.shadow_data);
	return 0;
}
