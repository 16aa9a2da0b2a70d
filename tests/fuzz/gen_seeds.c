/*
 * tests/fuzz/gen_seeds.c - writes the seed corpora (tests/fuzz/corpus/)
 * from the wire headers: valid conversations and packets for each
 * harness, plus a few deliberately hostile ones. Run after changing a
 * harness input format:
 *
 *     fuzz_gen_seeds tests/fuzz/corpus
 *
 * (tests/fuzz/run.sh --seeds does that). The files are committed; the
 * fuzzers' own finds are merged in next to them (run.sh --merge).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzzport.h"
#include "fzscript.h"
#include "hv/guid.h"
#include "hv/hvsim_abi.h"
#include "hv/ring.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "hv/wire.h"

static const char *g_root;
static unsigned g_files;

static void write_seed(const char *harness, const char *name,
		       const struct sb *s)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", g_root, harness);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%s", g_root, harness, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	g_files++;
}

/* ======================= ring_reader / ring_writer ======================= */

/* A packet: descriptor + payload, padded to 8, then the trailer. */
static uint32_t ring_pkt(uint8_t *data, uint32_t dsize, uint32_t off,
			 uint16_t type, uint16_t off8, uint32_t payload,
			 uint16_t flags, uint64_t tid)
{
	uint32_t len = 8u * off8 + ((payload + 7u) & ~7u);
	uint8_t pkt[4096 + 64];

	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, type);
	hv_put_le16(pkt + 2, off8);
	hv_put_le16(pkt + 4, (uint16_t)(len / 8u));
	hv_put_le16(pkt + 6, flags);
	hv_put_le64(pkt + 8, tid);
	for (uint32_t i = 8u * off8; i < len; i++)
		pkt[i] = (uint8_t)(i * 7u);
	hv_put_le32(pkt + len + 4, off);
	for (uint32_t i = 0; i < len + 8u; i++)
		data[(off + i) % dsize] = pkt[i];
	return (off + len + 8u) % dsize;
}

static void seeds_ring_reader(void)
{
	static uint8_t data[4 * 4096];
	struct sb s;
	uint32_t dsize = 4096, w;

	/* Three packets; read them with peek/read/read_done. */
	memset(data, 0, sizeof(data));
	w = ring_pkt(data, dsize, 0, 6, 2, 40, 1, 7);
	w = ring_pkt(data, dsize, w, 11, 2, 0, 0, 7);
	w = ring_pkt(data, dsize, w, 9, 5, 100, 1, 9);
	memset(&s, 0, sizeof(s));
	put8(&s, 0);		/* 1 page, reset */
	put32(&s, w);		/* write_index */
	put32(&s, 0);
	put32(&s, 0);		/* pending_send_sz */
	put32(&s, 0);
	put8(&s, 12);		/* ops */
	put8(&s, 0); put16(&s, 16);		/* peek descriptor */
	put8(&s, 1); put16(&s, 40); put16(&s, 16);	/* read payload */
	put8(&s, 3);				/* read_done */
	put8(&s, 4);				/* bytes_to_read */
	put8(&s, 0); put16(&s, 16);
	put8(&s, 2); put16(&s, 16);		/* skip the completion */
	put8(&s, 0); put16(&s, 16);
	put8(&s, 1); put16(&s, 104); put16(&s, 40);
	put8(&s, 3);
	put8(&s, 5);				/* mask */
	put8(&s, 13);				/* unmask */
	put8(&s, 4);
	putn(&s, data, dsize);
	write_seed("ring_reader", "three-packets", &s);

	/* Wrap-around: packets straddle the end of a 2-page data area,
	 * the reader attaches at read_index 7000. */
	dsize = 8192;
	memset(data, 0, sizeof(data));
	w = ring_pkt(data, dsize, 7000, 6, 2, 600, 0, 1);
	w = ring_pkt(data, dsize, w, 6, 2, 2000, 0, 2);
	memset(&s, 0, sizeof(s));
	put8(&s, 1 | 4 | 8);	/* 2 pages, attach, feature bits */
	put32(&s, w);
	put32(&s, 7000);
	put32(&s, 100);		/* pending_send_sz */
	put32(&s, HV_RING_FEAT_PENDING_SEND_SZ);
	put8(&s, 7);
	put8(&s, 0); put16(&s, 16);
	put8(&s, 1); put16(&s, 600); put16(&s, 16);
	put8(&s, 3);
	put8(&s, 1); put16(&s, 2000); put16(&s, 16);
	put8(&s, 3);
	put8(&s, 6 | 8); put32(&s, 12345);	/* bad write_index */
	put8(&s, 4);
	putn(&s, data, dsize);
	write_seed("ring_reader", "wrap-attach", &s);

	/* The writer publishes in steps while the reader drains. */
	dsize = 4096;
	memset(data, 0, sizeof(data));
	w = 0;
	for (int i = 0; i < 8; i++)
		w = ring_pkt(data, dsize, w, 6, 2, 200, 0, (uint64_t)i);
	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	put32(&s, 0);
	put32(&s, 0);
	put32(&s, 0);
	put32(&s, 0);
	put8(&s, 12);
	put8(&s, 6); put8(&s, 28);		/* publish one packet */
	put8(&s, 1); put16(&s, 200); put16(&s, 16);
	put8(&s, 6); put8(&s, 56);		/* two more */
	put8(&s, 1); put16(&s, 200); put16(&s, 16);
	put8(&s, 1); put16(&s, 200); put16(&s, 16);
	put8(&s, 7 | 8); put32(&s, 300);	/* pending_send_sz */
	put8(&s, 3);
	put8(&s, 6 | 8); put32(&s, 8);		/* backwards: broken */
	put8(&s, 1); put16(&s, 200); put16(&s, 16);
	put8(&s, 4);
	put8(&s, 13);
	put8(&s, 3);
	putn(&s, data, dsize);
	write_seed("ring_reader", "stepwise", &s);
}

static void seeds_ring_writer(void)
{
	struct sb s;

	/* Fill a 1-page ring, the reader drains, pending_send_sz. */
	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	put32(&s, 0);		/* read_index */
	put32(&s, 0);
	put32(&s, 0);		/* interrupt_mask */
	put8(&s, 16);
	put8(&s, 0 | 8); put16(&s, 100);		/* write 104 */
	put8(&s, 0 | 8 | 0x10); put16(&s, 16); put16(&s, 300);
	put8(&s, 1 | 8); put16(&s, 1000);		/* nopub */
	put8(&s, 1 | 8); put16(&s, 2000);
	put8(&s, 2);					/* publish */
	put8(&s, 0 | 8); put16(&s, 1000);		/* full: EAGAIN */
	put8(&s, 3); put16(&s, 1008);			/* pending */
	put8(&s, 4); put8(&s, 16);			/* reader: 128 bytes */
	put8(&s, 4); put8(&s, 56);
	put8(&s, 0 | 8); put16(&s, 200);
	put8(&s, 5 | 0x10);				/* mask */
	put8(&s, 0 | 8); put16(&s, 8);
	put8(&s, 4 | 8); put32(&s, 4000);		/* beyond write */
	put8(&s, 0 | 8); put16(&s, 8);
	put8(&s, 6 | 8); put32(&s, 7);			/* scribble pending */
	put8(&s, 3); put16(&s, 0);
	write_seed("ring_writer", "fill-drain", &s);

	/* Attach at the end of a 2-page ring: writes wrap. */
	memset(&s, 0, sizeof(s));
	put8(&s, 1 | 4);
	put32(&s, 8000);	/* read_index */
	put32(&s, 8000);	/* write_index */
	put32(&s, 0);
	put8(&s, 8);
	put8(&s, 0 | 8 | 0x30); put16(&s, 16); put16(&s, 100); put16(&s, 60);
	put16(&s, 30);
	put8(&s, 0 | 8); put16(&s, 500);
	put8(&s, 4 | 8); put32(&s, 8120);
	put8(&s, 0 | 8); put16(&s, 7000);
	put8(&s, 4 | 8); put32(&s, 3);			/* unaligned */
	put8(&s, 0 | 8); put16(&s, 8);
	put8(&s, 2);
	put8(&s, 3); put16(&s, 64);
	write_seed("ring_writer", "wrap-attach", &s);
}

/* ============================== guest_msg =============================== */

static void cfg4(struct sb *s, uint8_t c0, uint8_t c1, uint8_t c2,
		 uint8_t c3)
{
	put8(s, c0);
	put8(s, c1);
	put8(s, c2);
	put8(s, c3);
}

static void seeds_guest_msg(void)
{
	struct sb s;

	/* The happy path at 5.3: open, an event, close, unload. */
	memset(&s, 0, sizeof(s));
	cfg4(&s, 0, 0, 1, 8);
	connect53(&s, true);
	open_ok(&s, 1, 0x10000, 1);
	s_event(&s, 1);
	s_event(&s, 2);
	close_ok(&s, 0x10000);
	unload_ok(&s);
	write_seed("guest_msg", "open-close-53", &s);

	/* Everything the test driver does: big rings (GPADL bodies), a
	 * transaction, an extra GPADL, two subchannels, on 2 vCPUs. */
	memset(&s, 0, sizeof(s));
	cfg4(&s, 1, 0, 0x1f, 16);
	connect53(&s, false);
	open_ok(&s, 1, 0x10000, 1);
	s_wait(&s, VMBUS_CHANMSG_GPADL_HEADER);
	m_gpadl_created(&s, 1, 0x10001, 0);
	m_offer(&s, &guid_echo, &inst1, 2, 1);
	m_offer(&s, &guid_echo, &inst1, 3, 2);
	open_ok(&s, 2, 0x10002, 2);
	open_ok(&s, 3, 0x10003, 3);
	s_event(&s, 2);
	s_event(&s, 3);
	close_ok(&s, 0x10002);
	close_ok(&s, 0x10003);
	close_ok(&s, 0x10001);
	close_ok(&s, 0x10000);
	unload_ok(&s);
	write_seed("guest_msg", "subchannels-xact-gpadl", &s);

	/* Walk down to 2.4 (7 refusals), offers without UNLOAD. */
	memset(&s, 0, sizeof(s));
	cfg4(&s, 0, 0, 1, 8);
	for (int i = 0; i < 7; i++) {
		s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
		m_vresp(&s, 0, 0, 0);
	}
	s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
	m_vresp(&s, 1, 0, VMBUS_VERSION_WIN8);
	s_wait(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	m_offer(&s, &guid_echo, &inst1, 1, 0);
	m_hdr_only(&s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	open_ok(&s, 1, 0x10000, 1);
	s_event(&s, 1);
	close_ok(&s, 0x10000);
	write_seed("guest_msg", "walk-down-24", &s);

	/* 1.1: interrupt page events, then a rescind while open. */
	memset(&s, 0, sizeof(s));
	cfg4(&s, 0, 8, 1, 16);
	s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
	m_vresp(&s, 1, 0, VMBUS_VERSION_WIN7);
	s_wait(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	m_offer(&s, &guid_echo, &inst1, 1, 0);
	m_hdr_only(&s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	open_ok(&s, 1, 0x10000, 1);
	s_event(&s, 1);
	s_event(&s, 5);
	m_rescind(&s, 1);
	close_ok(&s, 0x10000);
	write_seed("guest_msg", "v11-rescind-open", &s);

	/* Rescind while the open waits; then a hot-add that opens. */
	memset(&s, 0, sizeof(s));
	cfg4(&s, 0, 0, 1, 32);
	connect53(&s, false);
	s_wait(&s, VMBUS_CHANMSG_GPADL_HEADER);
	m_gpadl_created(&s, 1, 0x10000, 0);
	s_wait(&s, VMBUS_CHANMSG_OPENCHANNEL);
	m_rescind(&s, 1);
	close_ok(&s, 0x10000);
	s_wait(&s, VMBUS_CHANMSG_RELID_RELEASED);
	m_offer(&s, &guid_echo, &inst2, 4, 0);
	open_ok(&s, 4, 0x10001, 2);
	s_event(&s, 4);
	close_ok(&s, 0x10001);
	unload_ok(&s);
	write_seed("guest_msg", "rescind-opening-hotadd", &s);

	/* The host refuses: GPADL, then open; teardown never answered. */
	memset(&s, 0, sizeof(s));
	cfg4(&s, 0, 0, 1 | 0x20, 8);
	connect53(&s, false);
	s_wait(&s, VMBUS_CHANMSG_GPADL_HEADER);
	m_gpadl_created(&s, 1, 0x10000, 0xC0000001u);
	write_seed("guest_msg", "gpadl-refused", &s);
	memset(&s, 0, sizeof(s));
	cfg4(&s, 0, 0, 1, 8);
	connect53(&s, false);
	s_wait(&s, VMBUS_CHANMSG_GPADL_HEADER);
	m_gpadl_created(&s, 1, 0x10000, 0);
	s_wait(&s, VMBUS_CHANMSG_OPENCHANNEL);
	m_open_result(&s, 1, 1, 0x8000FFFFu);
	unload_ok(&s);
	write_seed("guest_msg", "open-refused-teardown-lost", &s);

	/* Hostile: busy host (INSUFFICIENT_BUFFERS), a timer message, a
	 * message with the pending flag, short / unknown / unexpected
	 * messages, duplicate and out-of-range offers, bad connection id. */
	memset(&s, 0, sizeof(s));
	cfg4(&s, 2, 0, 1, 16);
	put8(&s, FZP_OP_STATUS);
	put16(&s, HV_STATUS_INSUFFICIENT_BUFFERS);
	put8(&s, 3);
	s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
	put8(&s, FZP_OP_MSG);
	put32(&s, HV_MESSAGE_TYPE_TIMER_EXPIRED);
	put8(&s, 24);
	put8(&s, 0);
	put8(&s, 0);
	put8(&s, FZP_OP_MSG);	/* VERSION_RESPONSE with the pending flag */
	put32(&s, VMBUS_MESSAGE_TYPE);
	put8(&s, 16);
	put8(&s, HV_MESSAGE_FLAG_PENDING);
	put8(&s, 16);
	put32(&s, VMBUS_CHANMSG_VERSION_RESPONSE);
	put32(&s, 0);
	put8(&s, 1);
	zeros(&s, 3);
	put32(&s, 1);
	s_wait(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	m_hdr_only(&s, 0x99);
	m_u32s(&s, VMBUS_CHANMSG_OPENCHANNEL_RESULT, 1, 1, 0, 12);
	m_offer(&s, &guid_echo, &inst1, 1, 0);
	m_offer(&s, &guid_echo, &inst1, 1, 0);
	m_offer(&s, &guid_echo, &inst1, 3000, 0);
	m_offer(&s, &guid_echo, &inst1, 5, 1);
	m_offer(&s, &guid_hb, &inst2, 6, 3);
	m_vresp(&s, 1, 0, 1);
	m_hdr_only(&s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	m_gpadl_created(&s, 1, 0x10000, 0);	/* before the header */
	open_ok(&s, 1, 0x10000, 1);
	m_open_result(&s, 1, 1, 0);		/* duplicate */
	m_rescind(&s, 77);
	m_hdr_only(&s, VMBUS_CHANMSG_UNLOAD_RESPONSE);
	m_torndown(&s, 0x12345);
	s_event(&s, 1);
	s_event(&s, 0);
	s_event(&s, 2047);
	close_ok(&s, 0x10000);
	unload_ok(&s);
	write_seed("guest_msg", "hostile-mix", &s);
}

/* ============================== guest_ring =============================== */

static void gr_head(struct sb *s, uint8_t flags, uint8_t nops, uint32_t wi)
{
	put8(s, flags);
	put8(s, nops);
	put32(s, wi);
	put32(s, 0);		/* pending_send_sz */
	put32(s, HV_RING_FEAT_PENDING_SEND_SZ);
	put32(s, 0);		/* tx read_index */
	put32(s, 0);		/* tx interrupt_mask */
}

static void seeds_guest_ring(void)
{
	static uint8_t data[8192];
	struct sb s;
	uint32_t w = 0, dsize = 4096;

	/* Every packet kind: in-band, a completion for xact slot 1 (id
	 * 1 << 16 | 1), an unknown type, GPA direct, transfer pages, a
	 * stale completion, an unsolicited completion (id 0). */
	memset(data, 0, sizeof(data));
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_DATA_INBAND, 2, 24, 0, 5);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_COMP, 2, 40, 0,
		     0x10001);
	w = ring_pkt(data, dsize, w, 0x42, 2, 16, 0, 0);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT,
		     5, 64, 1, 6);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES,
		     4, 32, 0, 7);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_COMP, 2, 8, 0, 0x20001);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_COMP, 2, 8, 0, 0);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_COMP, 2, 200, 0,
		     0x10002);
	memset(&s, 0, sizeof(s));
	gr_head(&s, 0, 12, w);
	put8(&s, 0 | (4 << 3));		/* recv, 64-byte buffer */
	put8(&s, 5 | (0 << 3));		/* xact slot 1 */
	put8(&s, 1 | (1 << 3));		/* recv_pkt, 8 bytes: ENOBUFS */
	put8(&s, 1 | (5 << 3));		/* recv_pkt, 256 */
	put8(&s, 0 | (5 << 3));
	put8(&s, 0 | (2 << 3));
	put8(&s, 0 | (5 << 3));
	put8(&s, 5 | (1 << 3));		/* xact slot 2 (truncated?) */
	put8(&s, 2 | (3 << 3));		/* send 24 bytes */
	put8(&s, 7);			/* wait_rx */
	put8(&s, 4);			/* event: callback drains */
	put8(&s, 0);
	putn(&s, data, dsize);
	write_seed("guest_ring", "every-kind", &s);

	/* Same, drained through the callback with 16-byte responses. */
	memset(&s, 0, sizeof(s));
	gr_head(&s, 4, 3, w);
	put8(&s, 4);
	put8(&s, 5);
	put8(&s, 5 | (1 << 3));
	putn(&s, data, dsize);
	write_seed("guest_ring", "callback-truncate", &s);

	/* A 3-page ring that wraps: the host publishes in two steps, the
	 * second packet straddles the end. No callback: xact_wait pumps. */
	dsize = 8192;
	memset(data, 0, sizeof(data));
	w = 0;
	for (int i = 0; i < 5; i++)
		w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_DATA_INBAND, 2,
			     1500, 0, (uint64_t)i);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_COMP, 2, 16, 0,
		     0x10003);
	memset(&s, 0, sizeof(s));
	gr_head(&s, 1 | 2, 10, 1528);
	put8(&s, 0 | (7 << 3));
	put8(&s, 3); put16(&s, (uint16_t)(w / 8u));	/* publish the rest */
	put8(&s, 0 | (7 << 3));
	put8(&s, 1 | (7 << 3));
	put8(&s, 0 | (6 << 3));		/* 1024: too small */
	put8(&s, 0 | (7 << 3));
	put8(&s, 0 | (7 << 3));
	put8(&s, 5 | (2 << 3));		/* slot 3 */
	put8(&s, 6 | 8); put32(&s, 3);	/* host: bad tx read_index */
	put8(&s, 2 | (15 << 3));	/* send: broken */
	putn(&s, data, dsize);
	write_seed("guest_ring", "wrap-nocallback", &s);

	/* Corrupt descriptors: offset8 < 2, len8 < offset8, a length past
	 * the write index, unknown flags. */
	dsize = 4096;
	for (int k = 0; k < 4; k++) {
		char name[32];

		memset(data, 0, sizeof(data));
		w = ring_pkt(data, dsize, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 2,
			     32, 0, 1);
		switch (k) {
		case 0: hv_put_le16(data + 2, 1); break;
		case 1: hv_put_le16(data + 4, 1); break;
		case 2: hv_put_le16(data + 4, 300); break;
		case 3: hv_put_le16(data + 6, 0x8000); break;
		}
		memset(&s, 0, sizeof(s));
		gr_head(&s, 0, 4, w);
		put8(&s, 0 | (5 << 3));
		put8(&s, 0 | (5 << 3));
		put8(&s, 4);
		put8(&s, 5);
		putn(&s, data, dsize);
		snprintf(name, sizeof(name), "corrupt-%d", k);
		write_seed("guest_ring", name, &s);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	g_root = argv[1];
	if (mkdir(g_root, 0755) != 0 && errno != EEXIST) {
		perror(g_root);
		return 1;
	}
	seeds_ring_reader();
	seeds_ring_writer();
	seeds_guest_msg();
	seeds_guest_ring();
	printf("gen_seeds: %u files under %s\n", g_files, g_root);
	return 0;
}
