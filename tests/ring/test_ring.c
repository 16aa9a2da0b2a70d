/*
 * tests/ring/test_ring.c - unit tests of src/common/ring.c (spec 3).
 *
 * Writer and reader are two struct vmbus_ring bound to the same memory, as
 * the guest and the host are; the control page is poked directly to play a
 * misbehaving peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/ring.h"
#include "hv/ring.h"
#include "vmbus/errno.h"

#define MAX_RING (64u * 1024u + HV_RING_CONTROL_SIZE)

static _Alignas(4096) uint8_t g_mem[MAX_RING];
static struct vmbus_ring g_w, g_r;
static uint32_t g_dsize;

static struct hv_ring_control *ctl(void)
{
	return (struct hv_ring_control *)(void *)g_mem;
}

static uint8_t *data(void)
{
	return g_mem + HV_RING_CONTROL_SIZE;
}

/* Fresh ring of ring_bytes: garbage everywhere, then the owner's reset. */
static void fx(uint32_t ring_bytes)
{
	memset(g_mem, 0xA5, sizeof(g_mem));
	assert_int_equal(vmbus_ring_init(&g_w, g_mem, ring_bytes), 0);
	assert_int_equal(vmbus_ring_init(&g_r, g_mem, ring_bytes), 0);
	vmbus_ring_reset_shared(&g_w, true);
	g_dsize = ring_bytes - HV_RING_CONTROL_SIZE;
}

/* Place both indices at pos and let both sides adopt them. */
static void fx_at(uint32_t ring_bytes, uint32_t pos)
{
	fx(ring_bytes);
	ctl()->rc_write_index = hv_cpu_to_le32(pos);
	ctl()->rc_read_index = hv_cpu_to_le32(pos);
	assert_int_equal(vmbus_ring_attach(&g_w, true), 0);
	assert_int_equal(vmbus_ring_attach(&g_r, false), 0);
}

static uint32_t shm_w(void) { return hv_le32_to_cpu(ctl()->rc_write_index); }
static uint32_t shm_r(void) { return hv_le32_to_cpu(ctl()->rc_read_index); }
static void poke_w(uint32_t v) { ctl()->rc_write_index = hv_cpu_to_le32(v); }
static void poke_r(uint32_t v) { ctl()->rc_read_index = hv_cpu_to_le32(v); }

static void pattern(uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7u);
}

/* Write one packet of len bytes (pattern seed) as a single iov. */
static int put(uint32_t len, uint8_t seed, bool *sig)
{
	static uint8_t buf[MAX_RING];
	struct vmbus_iov iov = { buf, len };

	pattern(buf, len, seed);
	return vmbus_ring_write(&g_w, &iov, 1, sig);
}

/* Read one packet of len bytes and check its pattern. */
static void get(uint32_t len, uint8_t seed)
{
	static uint8_t buf[MAX_RING], want[MAX_RING];

	pattern(want, len, seed);
	memset(buf, 0, len);
	assert_int_equal(vmbus_ring_read(&g_r, buf, len, 0), 0);
	assert_memory_equal(buf, want, len);
}

static void test_init_args(void **state)
{
	struct vmbus_ring r;

	(void)state;
	assert_int_equal(vmbus_ring_init(NULL, g_mem, 8192), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_init(&r, NULL, 8192), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_init(&r, g_mem + 4, 8192), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_init(&r, g_mem, 4096), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_init(&r, g_mem, 8192 + 8), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_init(&r, g_mem, 0), -VMBUS_EINVAL);
	memset(g_mem, 0x5A, 64);
	assert_int_equal(vmbus_ring_init(&r, g_mem, 12288), 0);
	assert_int_equal(r.rb_dsize, 8192);
	assert_ptr_equal(r.rb_data, g_mem + 4096);
	/* init does not touch shared memory */
	for (int i = 0; i < 64; i++)
		assert_int_equal(g_mem[i], 0x5A);
	assert_false(vmbus_ring_broken(&r));
	assert_int_equal(vmbus_ring_max_packet(&r), 8192 - 16);
}

static void test_reset_shared(void **state)
{
	uint8_t *p = g_mem;

	(void)state;
	fx(8192);
	/* raw wire bytes: indices, mask, pending 0; feature_bits@64 = 1 */
	for (uint32_t i = 0; i < HV_RING_CONTROL_SIZE; i++) {
		uint8_t want = (i == 64) ? 1 : 0;
		assert_int_equal(p[i], want);
	}
	/* the reader side's reset also leaves the same page */
	memset(g_mem, 0xFF, HV_RING_CONTROL_SIZE);
	vmbus_ring_reset_shared(&g_r, false);
	assert_int_equal(shm_w(), 0);
	assert_int_equal(shm_r(), 0);
	assert_int_equal(ctl()->rc_interrupt_mask, 0);
	assert_int_equal(ctl()->rc_pending_send_sz, 0);
	assert_int_equal(hv_le32_to_cpu(ctl()->rc_feature_bits),
	    HV_RING_FEAT_PENDING_SEND_SZ);
	assert_int_equal(ctl()->rc_reserved2[4088 - 68], 0);
}

static void test_roundtrip_and_trailer(void **state)
{
	uint8_t a[8], b[16], buf[32], want[24];
	struct vmbus_iov iov[3] = { { a, 8 }, { NULL, 0 }, { b, 16 } };
	bool sig = false;

	(void)state;
	fx(8192);
	pattern(want, 24, 3);
	memcpy(a, want, 8);
	memcpy(b, want + 8, 16);
	assert_int_equal(vmbus_ring_write(&g_w, iov, 3, &sig), 0);
	assert_true(sig);
	assert_memory_equal(data(), want, 24);
	/* trailer: reserved 0, start offset 0 */
	assert_int_equal(hv_get_le64(data() + 24), 0);
	assert_int_equal(shm_w(), 32);
	assert_int_equal(put(24, 9, &sig), 0);
	assert_false(sig);
	assert_int_equal(hv_get_le64(data() + 56), (uint64_t)32 << 32);
	assert_int_equal(shm_w(), 64);
	assert_int_equal(g_w.rb_packets, 2);
	assert_int_equal(g_w.rb_bytes, 48);

	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 64);
	assert_int_equal(vmbus_ring_peek(&g_r, buf, 8), 0);
	assert_memory_equal(buf, want, 8);
	assert_int_equal(vmbus_ring_read(&g_r, buf, 16, 8), 0);
	assert_memory_equal(buf, want + 8, 16);
	/* consumed privately, not yet published */
	assert_int_equal(shm_r(), 0);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 32);
	assert_false(vmbus_ring_read_done(&g_r));
	assert_int_equal(shm_r(), 32);
	get(24, 9);
	assert_false(vmbus_ring_read_done(&g_r));
	assert_int_equal(shm_r(), 64);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
	assert_int_equal(vmbus_ring_peek(&g_r, buf, 16), -VMBUS_EAGAIN);
	assert_int_equal(vmbus_ring_read(&g_r, buf, 16, 0), -VMBUS_EAGAIN);
	assert_int_equal(g_r.rb_packets, 2);
	assert_int_equal(g_r.rb_bytes, 48);
	/* nothing consumed since the last publish */
	assert_false(vmbus_ring_read_done(&g_r));
}

/*
 * Packets that start in the last 64 bytes of the data area: the packet
 * splits across the end, or its trailer is the last 8 bytes, or the trailer
 * is the first 8 bytes after the wrap (a trailer is 8-aligned, so it never
 * splits itself).
 */
static void test_wrap_around(void **state)
{
	const uint32_t lens[] = { 8, 40, 200, 1000 };

	(void)state;
	for (unsigned li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		for (uint32_t back = 8; back <= 256; back += 8) {
			uint32_t len = lens[li], start = 4096 - back;
			uint32_t tpos = (start + len) % 4096;
			uint8_t want[1000], raw[1000], got[1000];
			bool sig;

			fx_at(8192, start);
			pattern(want, len, (uint8_t)back);
			assert_int_equal(put(len, (uint8_t)back, &sig), 0);
			assert_true(sig);
			/* rebuild the packet from the two raw parts */
			for (uint32_t i = 0; i < len; i++)
				raw[i] = data()[(start + i) % 4096];
			assert_memory_equal(raw, want, len);
			assert_int_equal(hv_get_le32(data() + tpos), 0);
			assert_int_equal(hv_get_le32(data() + tpos + 4), start);
			assert_int_equal(shm_w(), (start + len + 8) % 4096);

			assert_int_equal(vmbus_ring_bytes_to_read(&g_r), len + 8);
			memset(got, 0, sizeof(got));
			assert_int_equal(vmbus_ring_peek(&g_r, got, len), 0);
			assert_memory_equal(got, want, len);
			/* read the tail only, skipping a split head */
			if (len > 8) {
				assert_int_equal(vmbus_ring_read(&g_r, got, len - 8,
				    8), 0);
				assert_memory_equal(got, want + 8, len - 8);
			} else {
				assert_int_equal(vmbus_ring_skip(&g_r, len), 0);
			}
			vmbus_ring_read_done(&g_r);
			assert_int_equal(shm_r(), (start + len + 8) % 4096);
			assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
		}
	}
}

static void test_full_rule(void **state)
{
	bool sig;

	(void)state;
	fx(8192);	/* data 4096 */
	/* packet + trailer == data size can never fit; one less can */
	assert_int_equal(put(4088, 1, &sig), -VMBUS_EMSGSIZE);
	assert_int_equal(put(5000, 1, &sig), -VMBUS_EMSGSIZE);
	assert_int_equal(put(4080, 1, &sig), 0);	/* T 4088 < free 4096 */
	assert_int_equal(put(8, 2, &sig), -VMBUS_EAGAIN);	/* free 8 */
	assert_false(sig);
	assert_int_equal(g_w.rb_full, 1);
	get(4080, 1);
	vmbus_ring_read_done(&g_r);
	assert_int_equal(put(8, 2, &sig), 0);
	get(8, 2);
	vmbus_ring_read_done(&g_r);

	/* exact fit refused: raw_free == T */
	fx(8192);
	assert_int_equal(put(1000, 1, &sig), 0);		/* used 1008 */
	assert_int_equal(put(3080, 2, &sig), -VMBUS_EAGAIN);	/* T 3088 */
	assert_int_equal(put(3072, 2, &sig), 0);		/* T 3080 */
	assert_int_equal(put(8, 3, &sig), -VMBUS_EAGAIN);	/* free 8 */
	get(1000, 1);
	assert_int_equal(put(8, 3, &sig), -VMBUS_EAGAIN);	/* not released */
	vmbus_ring_read_done(&g_r);				/* free 1016 */
	assert_int_equal(put(1008, 3, &sig), -VMBUS_EAGAIN);	/* T 1016 */
	assert_int_equal(put(1000, 3, &sig), 0);		/* wraps */
	get(3072, 2);
	get(1000, 3);
	vmbus_ring_read_done(&g_r);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
	assert_int_equal(g_w.rb_full, 4);
	assert_false(vmbus_ring_broken(&g_w));
}

static void test_write_args(void **state)
{
	uint8_t b[16] = { 0 };
	struct vmbus_iov odd[2] = { { b, 4 }, { b, 8 } };
	struct vmbus_iov nul = { NULL, 8 }, zero = { b, 0 };
	bool sig = true;

	(void)state;
	fx(8192);
	assert_int_equal(vmbus_ring_write(&g_w, odd, 2, &sig), -VMBUS_EINVAL);
	assert_false(sig);
	assert_int_equal(vmbus_ring_write(&g_w, &nul, 1, &sig), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_write(&g_w, &zero, 1, &sig), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_write(&g_w, NULL, 1, &sig), -VMBUS_EINVAL);
	assert_int_equal(shm_w(), 0);
	/* need_signal may be NULL */
	assert_int_equal(vmbus_ring_write(&g_w, &odd[1], 1, NULL), 0);
	assert_int_equal(shm_w(), 16);
}

static void test_reader_args(void **state)
{
	uint8_t buf[16];

	(void)state;
	fx(8192);
	/* len + 16 > data size: can never be available */
	assert_int_equal(vmbus_ring_peek(&g_r, buf, 4096 - 8), -VMBUS_EMSGSIZE);
	assert_int_equal(vmbus_ring_peek(&g_r, buf, 4096 - 16), -VMBUS_EAGAIN);
	assert_int_equal(vmbus_ring_read(&g_r, NULL, 0, 4096), -VMBUS_EMSGSIZE);
	assert_int_equal(vmbus_ring_skip(&g_r, 4096 - 8), -VMBUS_EMSGSIZE);
	assert_int_equal(vmbus_ring_skip(&g_r, 4096 - 16), -VMBUS_EAGAIN);
	assert_int_equal(vmbus_ring_read(&g_r, buf, 4, 0), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_read(&g_r, buf, 0, 0), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_read(&g_r, NULL, 8, 0), -VMBUS_EINVAL);
	assert_int_equal(vmbus_ring_peek(&g_r, NULL, 8), -VMBUS_EINVAL);
	assert_false(vmbus_ring_broken(&g_r));
	/* peek needs len + 8 (its trailer) */
	assert_int_equal(put(8, 1, NULL), 0);
	assert_int_equal(vmbus_ring_peek(&g_r, buf, 16), -VMBUS_EAGAIN);
	assert_int_equal(vmbus_ring_peek(&g_r, buf, 8), 0);
	assert_int_equal(vmbus_ring_read(&g_r, buf, 8, 8), -VMBUS_EAGAIN);
	assert_int_equal(vmbus_ring_skip(&g_r, 8), 0);
}

static void test_writer_signal(void **state)
{
	uint8_t b[64] = { 0 };
	struct vmbus_iov iov = { b, 64 };
	bool sig;

	(void)state;
	fx(8192);
	/* empty -> non-empty only */
	assert_int_equal(put(64, 1, &sig), 0);
	assert_true(sig);
	assert_int_equal(put(64, 2, &sig), 0);
	assert_false(sig);
	get(64, 1);
	vmbus_ring_read_done(&g_r);
	assert_int_equal(put(64, 3, &sig), 0);	/* still one unread */
	assert_false(sig);
	get(64, 2);
	get(64, 3);
	assert_int_equal(put(64, 4, &sig), 0);	/* consumed, not published */
	assert_false(sig);
	vmbus_ring_read_done(&g_r);
	get(64, 4);
	vmbus_ring_read_done(&g_r);
	assert_int_equal(put(64, 5, &sig), 0);
	assert_true(sig);
	get(64, 5);
	vmbus_ring_read_done(&g_r);

	/* masked reader: never signalled */
	vmbus_ring_mask(&g_r);
	assert_int_equal(hv_le32_to_cpu(ctl()->rc_interrupt_mask), 1);
	assert_int_equal(put(64, 6, &sig), 0);
	assert_false(sig);
	get(64, 6);
	vmbus_ring_read_done(&g_r);
	assert_int_equal(vmbus_ring_unmask(&g_r), 0);
	assert_int_equal(ctl()->rc_interrupt_mask, 0);

	/* batch: one publish, one signal, empty test before the batch */
	for (int i = 0; i < 3; i++)
		assert_int_equal(vmbus_ring_write_nopub(&g_w, &iov, 1), 0);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
	sig = false;
	assert_int_equal(vmbus_ring_publish(&g_w, &sig), 0);
	assert_true(sig);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 3 * 72);
	assert_int_equal(vmbus_ring_publish(&g_w, &sig), 0);	/* nothing */
	assert_false(sig);
	assert_int_equal(vmbus_ring_write_nopub(&g_w, &iov, 1), 0);
	assert_int_equal(vmbus_ring_publish(&g_w, &sig), 0);
	assert_false(sig);					/* non-empty */
	/* reader drains everything published while a batch is pending */
	assert_int_equal(vmbus_ring_write_nopub(&g_w, &iov, 1), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vmbus_ring_skip(&g_r, 64), 0);
	assert_int_equal(vmbus_ring_skip(&g_r, 64), -VMBUS_EAGAIN);
	vmbus_ring_read_done(&g_r);
	assert_int_equal(vmbus_ring_publish(&g_w, &sig), 0);
	assert_true(sig);
	assert_int_equal(vmbus_ring_skip(&g_r, 64), 0);
	/* the unpublished bytes count against the full rule */
	static uint8_t src[2040];
	struct vmbus_iov big = { src, 2040 };	/* T 2048 */
	fx(8192);
	assert_int_equal(vmbus_ring_write_nopub(&g_w, &big, 1), 0);
	assert_int_equal(vmbus_ring_write_nopub(&g_w, &big, 1), -VMBUS_EAGAIN);
	assert_int_equal(shm_w(), 0);
	/* a blocked writer's request covers its unpublished bytes (MSVM) */
	vmbus_ring_set_pending_send(&g_w, 2048);
	assert_int_equal(hv_le32_to_cpu(ctl()->rc_pending_send_sz), 4096);
	vmbus_ring_set_pending_send(&g_w, 0);
	assert_int_equal(ctl()->rc_pending_send_sz, 0);
}

/* Fill a 4096-byte data area with 7 packets of T = 512: free 512. */
static void fill7(void)
{
	bool sig;

	fx(8192);
	for (int i = 0; i < 7; i++)
		assert_int_equal(put(504, (uint8_t)i, &sig), 0);
	assert_int_equal(put(504, 7, &sig), -VMBUS_EAGAIN);	/* exact fit */
}

static void test_reader_signal(void **state)
{
	(void)state;
	/* pending = T of the refused write: one packet freed is enough */
	fill7();
	vmbus_ring_set_pending_send(&g_w, 512);
	assert_int_equal(hv_le32_to_cpu(ctl()->rc_pending_send_sz), 512);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_true(vmbus_ring_read_done(&g_r));	/* 512 <= 512 < 1024 */
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_false(vmbus_ring_read_done(&g_r));	/* was already enough */
	vmbus_ring_set_pending_send(&g_w, 0);
	assert_int_equal(ctl()->rc_pending_send_sz, 0);

	/* one packet not enough, two in one batch cross it */
	fill7();
	vmbus_ring_set_pending_send(&g_w, 1500);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_false(vmbus_ring_read_done(&g_r));	/* free 1024 */
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_true(vmbus_ring_read_done(&g_r));	/* 1024 -> 2048 */

	/* free_after == pending is not enough */
	fill7();
	vmbus_ring_set_pending_send(&g_w, 1024);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_false(vmbus_ring_read_done(&g_r));	/* free 1024 */
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_true(vmbus_ring_read_done(&g_r));	/* 1024 <= 1024 < 1536 */

	/* no request: no signal */
	fill7();
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_false(vmbus_ring_read_done(&g_r));

	/* the writer did not declare FEAT_PENDING_SEND_SZ: no signal */
	fill7();
	ctl()->rc_feature_bits = 0;
	vmbus_ring_set_pending_send(&g_w, 512);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_false(vmbus_ring_read_done(&g_r));
	assert_int_equal(shm_r(), 512);		/* still published */

	/* interrupt_mask is not consulted for reader->writer signals */
	fill7();
	vmbus_ring_mask(&g_r);
	vmbus_ring_set_pending_send(&g_w, 512);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	assert_true(vmbus_ring_read_done(&g_r));

	/* the writer refilled freed space before our check: spurious is ok */
	fill7();
	vmbus_ring_set_pending_send(&g_w, 512);
	for (int i = 0; i < 7; i++)
		assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	poke_r(3584);		/* as if published; the writer refills */
	assert_int_equal(put(504, 9, NULL), 0);
	assert_int_equal(put(504, 9, NULL), 0);
	assert_int_equal(put(504, 9, NULL), 0);
	assert_false(vmbus_ring_broken(&g_w));
	assert_true(vmbus_ring_read_done(&g_r));
	assert_false(vmbus_ring_broken(&g_r));
}

static void expect_reader_broken(uint32_t why, uint32_t shm_read_index)
{
	uint8_t buf[16];

	assert_true(vmbus_ring_broken(&g_r));
	assert_int_equal(g_r.rb_broken_why, why);
	assert_int_equal(g_r.rb_proto_errors, 1);
	assert_int_equal(vmbus_ring_peek(&g_r, buf, 8), -VMBUS_EPROTO);
	assert_int_equal(vmbus_ring_read(&g_r, buf, 8, 0), -VMBUS_EPROTO);
	assert_int_equal(vmbus_ring_skip(&g_r, 8), -VMBUS_EPROTO);
	assert_false(vmbus_ring_read_done(&g_r));
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
	ctl()->rc_interrupt_mask = hv_cpu_to_le32(7);
	assert_int_equal(vmbus_ring_unmask(&g_r), 0);
	vmbus_ring_mask(&g_r);
	assert_int_equal(hv_le32_to_cpu(ctl()->rc_interrupt_mask), 7);
	/* nothing published after the fault, never counted twice */
	assert_int_equal(shm_r(), shm_read_index);
	assert_int_equal(g_r.rb_proto_errors, 1);
}

static void test_reader_bad_write_index(void **state)
{
	uint8_t buf[16];
	const uint32_t bad_range[] = { 4096, 4104, 0xFFFFFFF8u, 0x80000000u };
	const uint32_t bad_align[] = { 4, 12, 1, 4095 };

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		fx(8192);
		poke_w(bad_range[i]);
		assert_int_equal(vmbus_ring_peek(&g_r, buf, 8), -VMBUS_EPROTO);
		expect_reader_broken(VMBUS_RING_BAD_RANGE, 0);

		fx(8192);
		poke_w(bad_align[i]);
		assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
		expect_reader_broken(VMBUS_RING_BAD_ALIGN, 0);
	}

	/* write_index moves backwards: published bytes taken back */
	fx(8192);
	assert_int_equal(put(24, 1, NULL), 0);
	assert_int_equal(put(24, 2, NULL), 0);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 64);
	poke_w(32);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
	expect_reader_broken(VMBUS_RING_BAD_WINDOW, 0);

	/* write_index lands in bytes consumed but not yet released */
	fx(8192);
	assert_int_equal(put(24, 1, NULL), 0);
	assert_int_equal(put(24, 2, NULL), 0);
	get(24, 1);
	get(24, 2);
	poke_w(32);
	assert_int_equal(vmbus_ring_skip(&g_r, 24), -VMBUS_EPROTO);
	expect_reader_broken(VMBUS_RING_BAD_WINDOW, 0);

	/* backwards by a full lap: writer claims to have overfilled */
	fx(8192);
	assert_int_equal(put(24, 1, NULL), 0);
	vmbus_ring_skip(&g_r, 24);
	vmbus_ring_read_done(&g_r);		/* read_index 32 */
	poke_w(24);		/* fwd(32, 24) = 4088 >= 0: plausible */
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 4088);
	poke_w(16);		/* now moving backwards */
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 0);
	expect_reader_broken(VMBUS_RING_BAD_WINDOW, 32);

	/* bad index seen only by read_done's pending-send check */
	fill7();
	vmbus_ring_set_pending_send(&g_w, 512);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), 0);
	poke_w(3585);
	assert_false(vmbus_ring_read_done(&g_r));
	assert_true(vmbus_ring_broken(&g_r));
	assert_int_equal(g_r.rb_broken_why, VMBUS_RING_BAD_ALIGN);
	assert_int_equal(vmbus_ring_skip(&g_r, 504), -VMBUS_EPROTO);
	assert_int_equal(shm_r(), 512);

	/* caller-detected corrupt packet */
	fx(8192);
	vmbus_ring_set_broken(&g_r);
	expect_reader_broken(VMBUS_RING_BAD_PACKET, 0);
}

static void expect_writer_broken(uint32_t why, uint32_t shm_write_index)
{
	bool sig = true;

	assert_true(vmbus_ring_broken(&g_w));
	assert_int_equal(g_w.rb_broken_why, why);
	assert_int_equal(g_w.rb_proto_errors, 1);
	assert_int_equal(put(8, 0, &sig), -VMBUS_EPROTO);
	assert_false(sig);
	sig = true;
	assert_int_equal(vmbus_ring_publish(&g_w, &sig), -VMBUS_EPROTO);
	assert_false(sig);
	assert_int_equal(shm_w(), shm_write_index);
	ctl()->rc_pending_send_sz = hv_cpu_to_le32(5);
	vmbus_ring_set_pending_send(&g_w, 64);
	assert_int_equal(hv_le32_to_cpu(ctl()->rc_pending_send_sz), 5);
	assert_int_equal(g_w.rb_proto_errors, 1);
}

static void test_writer_bad_read_index(void **state)
{
	bool sig;

	(void)state;
	/* out of range / unaligned, seen when the full snapshot is refreshed */
	const uint32_t bad[] = { 4096, 0xFFFFFFF8u, 4, 3 };
	const uint32_t why[] = { VMBUS_RING_BAD_RANGE, VMBUS_RING_BAD_RANGE,
	    VMBUS_RING_BAD_ALIGN, VMBUS_RING_BAD_ALIGN };
	for (unsigned i = 0; i < 4; i++) {
		fx(8192);
		vmbus_ring_mask(&g_r);	/* no read_index load at publish */
		assert_int_equal(put(4000, 1, &sig), 0);
		poke_r(bad[i]);
		assert_int_equal(put(504, 2, &sig), -VMBUS_EPROTO);
		expect_writer_broken(why[i], 4008);
	}

	/* ... and when deciding need_signal after publishing */
	fx(8192);
	poke_r(4100);
	assert_int_equal(put(16, 1, &sig), -VMBUS_EPROTO);
	assert_false(sig);
	assert_int_equal(shm_w(), 24);		/* already published */
	expect_writer_broken(VMBUS_RING_BAD_RANGE, 24);

	/* reader claims to have consumed beyond the published write_index */
	fx(8192);
	assert_int_equal(put(56, 1, &sig), 0);		/* w 64 */
	poke_r(200);
	assert_int_equal(put(56, 2, &sig), -VMBUS_EPROTO);	/* w 128 */
	expect_writer_broken(VMBUS_RING_BAD_WINDOW, 128);

	/* ... into bytes of an unpublished batch */
	fx(8192);
	vmbus_ring_mask(&g_r);
	assert_int_equal(put(4000, 1, &sig), 0);	/* w 4008, free 88 */
	poke_r(4008);				/* consumed all: fine */
	static uint8_t src[2080];
	struct vmbus_iov iov = { src, 2000 }, iov2 = { src, 2080 };
	assert_int_equal(vmbus_ring_write_nopub(&g_w, &iov, 1), 0);
	poke_r(8);				/* inside the unpublished batch */
	/* free by snapshot 2088 == T: forces a fresh read_index */
	assert_int_equal(vmbus_ring_write_nopub(&g_w, &iov2, 1), -VMBUS_EPROTO);
	expect_writer_broken(VMBUS_RING_BAD_WINDOW, 4008);

	/* read_index moves backwards */
	fx(8192);
	assert_int_equal(put(56, 1, &sig), 0);
	vmbus_ring_skip(&g_r, 56);
	vmbus_ring_read_done(&g_r);		/* r 64 */
	assert_int_equal(put(56, 2, &sig), 0);	/* snapshot 64, signalled */
	assert_true(sig);
	poke_r(32);
	assert_int_equal(put(56, 3, &sig), -VMBUS_EPROTO);
	expect_writer_broken(VMBUS_RING_BAD_WINDOW, 192);
}

/* write_room: fresh read_index, unpublished bytes count as used, a bad
 * read_index breaks the ring and reports no room. */
static void test_write_room(void **state)
{
	bool sig;
	struct vmbus_iov iov;
	static uint8_t buf[64];

	(void)state;
	fx(8192);
	assert_int_equal(vmbus_ring_write_room(&g_w), g_dsize);
	assert_int_equal(put(56, 1, &sig), 0);
	assert_int_equal(vmbus_ring_write_room(&g_w), g_dsize - 64);
	iov.iov_base = buf;
	iov.iov_len = 24;
	assert_int_equal(vmbus_ring_write_nopub(&g_w, &iov, 1), 0);
	assert_int_equal(vmbus_ring_write_room(&g_w), g_dsize - 96);
	assert_int_equal(vmbus_ring_publish(&g_w, &sig), 0);
	get(56, 1);
	assert_false(vmbus_ring_read_done(&g_r));
	/* the reader released 64 bytes: seen only through a fresh load */
	assert_int_equal(vmbus_ring_write_room(&g_w), g_dsize - 32);

	poke_r(12);	/* unaligned */
	assert_int_equal(vmbus_ring_write_room(&g_w), 0);
	assert_true(vmbus_ring_broken(&g_w));
	assert_int_equal(g_w.rb_broken_why, VMBUS_RING_BAD_ALIGN);
}

static void test_attach(void **state)
{
	(void)state;
	fx(8192);
	poke_w(64);
	poke_r(32);
	assert_int_equal(vmbus_ring_attach(&g_w, true), 0);
	assert_int_equal(vmbus_ring_attach(&g_r, false), 0);
	assert_int_equal(g_w.rb_cur, 64);
	assert_int_equal(g_w.rb_peer, 32);
	assert_int_equal(g_r.rb_cur, 32);
	assert_int_equal(vmbus_ring_bytes_to_read(&g_r), 32);
	poke_w(13);
	assert_int_equal(vmbus_ring_attach(&g_r, false), -VMBUS_EPROTO);
	assert_int_equal(g_r.rb_broken_why, VMBUS_RING_BAD_ALIGN);
	poke_w(0);
	poke_r(8192);
	assert_int_equal(vmbus_ring_attach(&g_w, true), -VMBUS_EPROTO);
	assert_int_equal(g_w.rb_broken_why, VMBUS_RING_BAD_RANGE);
	/* the owner's reset revives a ring for a new open */
	vmbus_ring_reset_shared(&g_w, true);
	assert_false(vmbus_ring_broken(&g_w));
	assert_int_equal(put(8, 1, NULL), 0);
}

/*
 * The reader's drain protocol: mask, drain, unmask; unmask reports what
 * arrived while masked (no signal was sent for it), so the reader goes on.
 */
static void test_mask_unmask(void **state)
{
	bool sig;

	(void)state;
	fx(8192);
	assert_int_equal(put(32, 1, &sig), 0);
	assert_true(sig);			/* reader wakes */
	vmbus_ring_mask(&g_r);
	get(32, 1);
	vmbus_ring_read_done(&g_r);
	/* the writer races in after the reader's last check */
	assert_int_equal(put(32, 2, &sig), 0);
	assert_false(sig);			/* masked: no signal */
	assert_int_equal(vmbus_ring_unmask(&g_r), 40);	/* so keep draining */
	vmbus_ring_mask(&g_r);
	get(32, 2);
	vmbus_ring_read_done(&g_r);
	assert_int_equal(vmbus_ring_unmask(&g_r), 0);	/* now sleep */
	assert_int_equal(put(32, 3, &sig), 0);
	assert_true(sig);			/* and get woken */
	/* a write after unmask while non-empty does not signal again */
	assert_int_equal(put(32, 4, &sig), 0);
	assert_false(sig);
	/* unmask with data never consumed still reports it */
	assert_int_equal(vmbus_ring_unmask(&g_r), 80);
}

/* ---- randomized stream against a plain FIFO model ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

#define MODEL_MAX 100000

struct model_pkt {
	uint32_t len;		/* bytes, multiple of 8 */
	uint8_t  seed;
};

static struct model_pkt mq[MODEL_MAX];

static void random_stream(uint64_t seed, uint32_t ring_bytes, unsigned steps)
{
	/* Absolute byte positions (no wrap) of the model. */
	uint64_t wcur = 0, wpub = 0, rcur = 0, rpub = 0;
	unsigned nw = 0, npub = 0, nr = 0;	/* packets written/published/read */
	bool masked = false, blocked = false, woken = false;
	uint32_t pending = 0, maxlen;
	static uint8_t buf[65536], want[65536];
	uint64_t signals = 0, wakes = 0;

	rng_state = seed;
	fx(ring_bytes);
	maxlen = g_dsize / 3;
	for (unsigned step = 0; step < steps && nw < MODEL_MAX; step++) {
		uint32_t op = rnd_below(100);

		if (op < 40 && !blocked) {
			/* write one packet (published now, or batched) */
			uint32_t len = 8 * (1 + rnd_below(rnd_below(4) == 0 ?
			    maxlen / 8 : 32));
			uint8_t s = (uint8_t)rnd();
			uint64_t used = wcur - rpub;
			bool fits = g_dsize - used > len + 8u;
			bool batch = rnd_below(4) == 0, sig = false;
			struct vmbus_iov iov[3];
			uint32_t cut1 = 8 * rnd_below(len / 8 + 1);
			uint32_t cut2 = cut1 + 8 * rnd_below((len - cut1) / 8 + 1);
			int rc;

			pattern(buf, len, s);
			iov[0] = (struct vmbus_iov){ buf, cut1 };
			iov[1] = (struct vmbus_iov){ buf + cut1, cut2 - cut1 };
			iov[2] = (struct vmbus_iov){ buf + cut2, len - cut2 };
			if (batch)
				rc = vmbus_ring_write_nopub(&g_w, iov, 3);
			else
				rc = vmbus_ring_write(&g_w, iov, 3, &sig);
			if (!fits) {
				assert_int_equal(rc, -VMBUS_EAGAIN);
				/* a writer publishes its batch before blocking */
				assert_int_equal(vmbus_ring_publish(&g_w, &sig), 0);
				assert_int_equal(sig,
				    wcur != wpub && !masked && rpub == wpub);
				signals += sig;
				wpub = wcur;
				npub = nw;
				/* spec 3.5 step 1: pending, fence, retry */
				pending = len + 8;
				vmbus_ring_set_pending_send(&g_w, pending);
				rc = vmbus_ring_write_nopub(&g_w, iov, 3);
				assert_int_equal(rc, -VMBUS_EAGAIN);
				blocked = true;
				woken = false;
				continue;
			}
			assert_int_equal(rc, 0);
			mq[nw].len = len;
			mq[nw].seed = s;
			nw++;
			wcur += len + 8;
			if (!batch) {
				/* signal iff unmasked and empty before */
				assert_int_equal(sig, !masked && rpub == wpub);
				signals += sig;
				wpub = wcur;
				npub = nw;
			}
		} else if (op < 50) {
			bool sig = true;

			assert_int_equal(vmbus_ring_publish(&g_w, &sig), 0);
			assert_int_equal(sig,
			    wcur != wpub && !masked && rpub == wpub);
			signals += sig;
			wpub = wcur;
			npub = nw;
		} else if (op < 85) {
			/* read one packet: peek a head, read with a skip */
			uint32_t avail = vmbus_ring_bytes_to_read(&g_r);

			assert_int_equal(avail, wpub - rcur);
			if (nr == npub) {
				assert_int_equal(vmbus_ring_peek(&g_r, buf, 8),
				    -VMBUS_EAGAIN);
				continue;
			}
			struct model_pkt *p = &mq[nr];
			uint32_t head = 8 * rnd_below(p->len / 8 + 1);
			uint32_t skip = 8 * rnd_below(p->len / 8 + 1);

			pattern(want, p->len, p->seed);
			if (head) {
				assert_int_equal(vmbus_ring_peek(&g_r, buf, head),
				    0);
				assert_memory_equal(buf, want, head);
			}
			if (rnd_below(8) == 0) {
				assert_int_equal(vmbus_ring_skip(&g_r, p->len), 0);
			} else {
				assert_int_equal(vmbus_ring_read(&g_r, buf,
				    p->len - skip, skip), 0);
				assert_memory_equal(buf, want + skip,
				    p->len - skip);
			}
			rcur += p->len + 8;
			nr++;
		} else if (op < 95) {
			uint64_t consumed = rcur - rpub;
			uint64_t free_after = g_dsize - (wpub - rcur);
			uint64_t free_before = free_after - consumed;
			bool want_sig = consumed && pending &&
			    free_before <= pending && pending < free_after;
			bool got = vmbus_ring_read_done(&g_r);

			assert_int_equal(got, want_sig);
			rpub = rcur;
			assert_int_equal(shm_r(), rpub % g_dsize);
			if (got) {
				woken = true;
				wakes++;
			}
			/* no lost wakeup: enough room => the writer knows */
			if (blocked && g_dsize - (wcur - rpub) > pending) {
				assert_true(woken);
				blocked = false;
				pending = 0;
				vmbus_ring_set_pending_send(&g_w, 0);
			}
		} else if (op < 98) {
			vmbus_ring_mask(&g_r);
			masked = true;
		} else {
			assert_int_equal(vmbus_ring_unmask(&g_r), wpub - rcur);
			masked = false;
		}
		assert_int_equal(shm_w(), wpub % g_dsize);
	}
	assert_false(vmbus_ring_broken(&g_w));
	assert_false(vmbus_ring_broken(&g_r));
	assert_int_equal(g_r.rb_packets, nr);
	assert_int_equal(g_w.rb_packets, nw);
	/* the stream exercised what it is for */
	assert_true(nr > 1000);
	assert_true(signals > 10);
	assert_true(wakes > 10);
	assert_true(g_w.rb_full > 10);
	print_message("seed %llu ring %u: %u packets, %llu signals, %llu wakes,"
	    " %llu full\n", (unsigned long long)seed, ring_bytes, nr,
	    (unsigned long long)signals, (unsigned long long)wakes,
	    (unsigned long long)g_w.rb_full);
}

static void test_random_stream(void **state)
{
	const char *env = getenv("VMBUS_TEST_SEED");
	uint64_t base = env ? strtoull(env, NULL, 0) : 0x9E3779B97F4A7C15ull;

	(void)state;
	random_stream(base, 8192, 200000);
	random_stream(base + 1, 12288, 200000);
	random_stream(base + 2, 16384, 200000);
	random_stream(base + 3, 64u * 1024u + 4096u, 200000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_args),
		cmocka_unit_test(test_reset_shared),
		cmocka_unit_test(test_roundtrip_and_trailer),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_full_rule),
		cmocka_unit_test(test_write_args),
		cmocka_unit_test(test_reader_args),
		cmocka_unit_test(test_writer_signal),
		cmocka_unit_test(test_reader_signal),
		cmocka_unit_test(test_reader_bad_write_index),
		cmocka_unit_test(test_writer_bad_read_index),
		cmocka_unit_test(test_write_room),
		cmocka_unit_test(test_attach),
		cmocka_unit_test(test_mask_unmask),
		cmocka_unit_test(test_random_stream),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
