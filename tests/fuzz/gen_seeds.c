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
#include "hv/icmsg.h"
#include "hv/nvsp.h"
#include "hv/rndis.h"
#include "hv/scsi.h"
#include "hv/vstor.h"
#include "hv/ring.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "hv/wire.h"

static const char *g_root;
static const char *g_prefix = "seed-";
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
	snprintf(path, sizeof(path), "%s/%s/%s%s", g_root, harness, g_prefix,
		 name);
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

	/* A 3-page ring that wraps, no callback (xact_wait pumps): the host
	 * publishes 5 packets, the guest reads them, the host writes two
	 * more over the read bytes (straddling the end) and a completion for
	 * xact slot 3, publishes, the guest reads on. Then the host breaks
	 * the send ring's read_index. */
	dsize = 8192;
	{
		static uint8_t full[8192];
		uint32_t at[9];

		memset(data, 0, sizeof(data));
		memset(full, 0, sizeof(full));
		w = 0;
		for (int i = 0; i < 8; i++) {
			at[i] = w;
			if (i < 5)
				ring_pkt(data, dsize, w,
					 VMBUS_PACKET_TYPE_DATA_INBAND, 2, 1500,
					 0, (uint64_t)i);
			w = i == 7 ? ring_pkt(full, dsize, w,
					      VMBUS_PACKET_TYPE_COMP, 2, 16, 0,
					      0x10003)
				   : ring_pkt(full, dsize, w,
					      VMBUS_PACKET_TYPE_DATA_INBAND, 2,
					      1500, 0, (uint64_t)i);
		}
		at[8] = w;
		memset(&s, 0, sizeof(s));
		gr_head(&s, 1 | 2, 16, at[5]);
		for (int i = 0; i < 5; i++)
			put8(&s, (uint8_t)(i % 2) | (7 << 3));
		put8(&s, 7 | 0x10);		/* write packets 5-7 */
		put16(&s, (uint16_t)at[5]);
		put16(&s, (uint16_t)((at[8] + dsize - at[5]) % dsize));
		put8(&s, 3);
		put16(&s, (uint16_t)(at[8] / 8u));	/* publish */
		put8(&s, 0 | (7 << 3));
		put8(&s, 1 | (7 << 3));
		put8(&s, 0 | (6 << 3));		/* 1024: too small */
		put8(&s, 5 | (2 << 3));		/* slot 3 */
		put8(&s, 0 | (7 << 3));
		put8(&s, 6 | 8);
		put32(&s, 3);			/* host: bad tx read_index */
		put8(&s, 2 | (15 << 3));	/* send: broken */
		put8(&s, 7);			/* wait_rx */
		put8(&s, 4);
		putn(&s, data, dsize);
		for (uint32_t i = at[5]; i != at[8]; i = (i + 1) % dsize)
			put8(&s, full[i]);
	}
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

/* ============================== posix_abi =============================== */

static void pa_rec(struct sb *s, uint8_t kind, uint8_t param,
		   const struct sb *dg)
{
	put8(s, kind);
	put8(s, param);
	put16(s, (uint16_t)dg->n);
	putn(s, dg->b, dg->n);
}

static void pa_hdr(struct sb *d, uint16_t type, uint64_t seq, int32_t result)
{
	put32(d, HVSIM_ABI_MAGIC);
	put16(d, type);
	put16(d, 0);
	put64(d, seq);
	put32(d, (uint32_t)result);
	put32(d, 0);
}

static void pa_welcome(struct sb *s, uint32_t vcpus, uint64_t ram,
		       uint32_t fd_count, unsigned nfds, uint8_t extra_kind,
		       uint8_t param)
{
	struct sb d;

	memset(&d, 0, sizeof(d));
	pa_hdr(&d, HVSIM_ABI_WELCOME, 1, 0);
	put32(&d, HVSIM_ABI_VERSION);
	put32(&d, vcpus);
	put64(&d, ram);
	put32(&d, fd_count);
	put32(&d, 0);
	pa_rec(s, (uint8_t)(nfds << 2 | extra_kind), param, &d);
}

static void pa_msr(struct sb *s, uint8_t op, uint8_t param, uint64_t seq,
		   uint64_t value)
{
	struct sb d;

	memset(&d, 0, sizeof(d));
	pa_hdr(&d, (uint16_t)((op == 0 ? HVSIM_ABI_RDMSR : HVSIM_ABI_WRMSR) |
			      HVSIM_ABI_REPLY), seq, 0);
	put64(&d, value);
	pa_rec(s, op, param, &d);
}

static void pa_hc(struct sb *s, uint8_t param, uint64_t seq, uint64_t result,
		  uint32_t outlen)
{
	struct sb d;

	memset(&d, 0, sizeof(d));
	pa_hdr(&d, HVSIM_ABI_HYPERCALL | HVSIM_ABI_REPLY, seq, 0);
	put64(&d, result);
	put32(&d, outlen);
	put32(&d, 0);
	for (uint32_t i = 0; i < outlen; i++)
		put8(&d, (uint8_t)i);
	pa_rec(s, 2, param, &d);
}

static void pa_err(struct sb *s, uint8_t op, uint8_t param, uint16_t type,
		   uint64_t seq, int32_t err)
{
	struct sb d;

	memset(&d, 0, sizeof(d));
	pa_hdr(&d, type | HVSIM_ABI_REPLY, seq, err);
	pa_rec(s, op, param, &d);
}

static void seeds_posix_abi(void)
{
	struct sb s;

	/* A good partition: WELCOME (1 vCPU, 2 MiB, 4 fds), the MSR writes
	 * of a SynIC set-up, a post, two signals to the host, an unknown
	 * call with output, then RESET. */
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 1, 2u << 20, 4, 4, 0, 0);
	pa_msr(&s, 1, 0, 2, 0x1234);		/* guest OS id */
	pa_msr(&s, 1, 1, 3, 0x5001);		/* hypercall MSR */
	pa_msr(&s, 0, 7, 4, 0);			/* RDMSR SIMP */
	pa_hc(&s, 0x00, 5, 0, 0);		/* post */
	pa_hc(&s, 0x10, 6, HV_STATUS_INVALID_CONNECTION_ID, 0);
	pa_hc(&s, 0x20, 7, 0, 0);
	pa_hc(&s, 0x30, 8, HV_STATUS_INVALID_HYPERCALL_CODE, 24);
	pa_err(&s, 0, 14, HVSIM_ABI_RDMSR, 9, -22);
	pa_err(&s, 1, 0x4f, HVSIM_ABI_WRMSR, 10, -34);
	pa_err(&s, 3, 0, HVSIM_ABI_RESET, 11, 0);
	write_seed("posix_abi", "good-partition", &s);

	/* 4 MiB and 3 vCPUs (6 fds); a reply with the wrong seq. */
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 3, 4u << 20, 6, 6, 0, 1);
	pa_msr(&s, 0, 2, 2, 0);
	pa_msr(&s, 0, 3, 4, 0);			/* seq 4, want 3 */
	pa_msr(&s, 0, 3, 4, 0);
	write_seed("posix_abi", "bad-seq", &s);

	/* WELCOMEs to refuse: fd_count off, a pipe for a doorbell, an
	 * unsealed RAM memfd, RAM bigger than the memfd, an error reply,
	 * an oversize datagram. */
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 1, 2u << 20, 5, 4, 0, 0);
	write_seed("posix_abi", "welcome-fd-count", &s);
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 2, 2u << 20, 5, 5, 0x40, 0x80 | 0x00);
	write_seed("posix_abi", "welcome-pipe", &s);
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 1, 2u << 20, 4, 4, 0x40, 0x10);
	write_seed("posix_abi", "welcome-unsealed", &s);
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 1, 8u << 20, 4, 4, 0, 0);
	write_seed("posix_abi", "welcome-ram-too-big", &s);
	memset(&s, 0, sizeof(s));
	pa_err(&s, 0, 0, HVSIM_ABI_HELLO, 1, -95);
	write_seed("posix_abi", "welcome-eopnotsupp", &s);
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 1, 2u << 20, 4, 4, 0x80, 0);
	write_seed("posix_abi", "welcome-trunc", &s);

	/* HYPERCALL replies with a lying output_len, then silence. */
	memset(&s, 0, sizeof(s));
	pa_welcome(&s, 1, 2u << 20, 4, 4, 0, 0);
	{
		struct sb d;

		memset(&d, 0, sizeof(d));
		pa_hdr(&d, HVSIM_ABI_HYPERCALL | HVSIM_ABI_REPLY, 2, 0);
		put64(&d, 0);
		put32(&d, 100);		/* claims 100 output bytes */
		put32(&d, 0);
		zeros(&d, 8);
		pa_rec(&s, 2, 0x30, &d);
	}
	pa_msr(&s, 0, 0, 3, 0);
	write_seed("posix_abi", "hc-outlen", &s);
}

/* =============================== host_abi =============================== */

static void ha_dgram(struct sb *s, uint8_t kind, const struct sb *d)
{
	put8(s, kind);
	put16(s, (uint16_t)d->n);
	putn(s, d->b, d->n);
}

static void ha_req(struct sb *d, uint16_t type, uint64_t seq)
{
	memset(d, 0, sizeof(*d));
	put32(d, HVSIM_ABI_MAGIC);
	put16(d, type);
	put16(d, 0);
	put64(d, seq);
}

static void ha_hello(struct sb *s, uint64_t seq, const char *name)
{
	struct sb d;

	ha_req(&d, HVSIM_ABI_HELLO, seq);
	put32(&d, HVSIM_ABI_VERSION);
	put32(&d, (uint32_t)strlen(name));
	putn(&d, name, strlen(name));
	ha_dgram(s, 0, &d);
}

static void ha_wrmsr(struct sb *s, uint64_t seq, uint32_t vp, uint32_t msr,
		     uint64_t v)
{
	struct sb d;

	ha_req(&d, HVSIM_ABI_WRMSR, seq);
	put32(&d, vp);
	put32(&d, msr);
	put64(&d, v);
	ha_dgram(s, 0, &d);
}

static void ha_rdmsr(struct sb *s, uint64_t seq, uint32_t vp, uint32_t msr)
{
	struct sb d;

	ha_req(&d, HVSIM_ABI_RDMSR, seq);
	put32(&d, vp);
	put32(&d, msr);
	ha_dgram(s, 0, &d);
}

static void ha_post(struct sb *s, uint64_t seq, uint32_t connid,
		    uint32_t size)
{
	struct sb d;

	ha_req(&d, HVSIM_ABI_HYPERCALL, seq);
	put32(&d, 0);
	put32(&d, 16 + ((size + 7) & ~7u));
	put64(&d, HV_CALL_POST_MESSAGE);
	put32(&d, connid);
	put32(&d, 0);
	put32(&d, VMBUS_MESSAGE_TYPE);
	put32(&d, size);
	for (uint32_t i = 0; i < ((size + 7) & ~7u); i++)
		put8(&d, (uint8_t)(i < 4 ? (i == 0 ? 3 : 0) : i));
	ha_dgram(s, 0, &d);
}

static void ha_signal(struct sb *s, uint64_t seq, uint32_t connid, bool fast)
{
	struct sb d;

	ha_req(&d, HVSIM_ABI_HYPERCALL, seq);
	put32(&d, 0);
	put32(&d, fast ? 16 : 8);
	put64(&d, HV_CALL_SIGNAL_EVENT | (fast ? HV_HYPERCALL_FAST : 0));
	put32(&d, connid);
	put32(&d, 0);
	if (fast)
		zeros(&d, 8);
	ha_dgram(s, 0, &d);
}

/* Guest RAM write: the SIMP slot 2 header (type 0 = consumed). */
static void ha_poke(struct sb *s, uint32_t off, const void *b, uint16_t n)
{
	put8(s, 1);
	put16(s, n);
	put32(s, off);
	putn(s, b, n);
}

static void ha_synic(struct sb *s, uint64_t *seq)
{
	ha_wrmsr(s, (*seq)++, 0, HV_X64_MSR_GUEST_OS_ID, 0x8100000000000001ull);
	ha_wrmsr(s, (*seq)++, 0, HV_X64_MSR_HYPERCALL, 0x1000 | 1);
	ha_wrmsr(s, (*seq)++, 0, HV_X64_MSR_SIMP, 0x2000 | 1);
	ha_wrmsr(s, (*seq)++, 0, HV_X64_MSR_SIEFP, 0x3000 | 1);
	ha_wrmsr(s, (*seq)++, 0, HV_X64_MSR_SINT(2), 0x41);
	ha_wrmsr(s, (*seq)++, 0, HV_X64_MSR_SCONTROL, 1);
}

static void seeds_host_abi(void)
{
	static const uint8_t zero8[8];
	struct sb s, d;
	uint64_t seq = 1;

	/* A whole session: HELLO, SynIC set-up, posts the stub echoes into
	 * the SIMP slot (the second one waits: pending flag), the guest
	 * empties the slot and writes EOM, signals, RDMSRs, RESET. */
	memset(&s, 0, sizeof(s));
	put8(&s, 8);			/* 1 vCPU, echo */
	ha_hello(&s, seq++, "");
	ha_synic(&s, &seq);
	ha_post(&s, seq++, VMBUS_MESSAGE_CONNECTION_ID_4, 40);
	ha_post(&s, seq++, VMBUS_MESSAGE_CONNECTION_ID, 24);
	ha_poke(&s, 0x2000 + 2 * 256, zero8, 8);
	ha_wrmsr(&s, seq++, 0, HV_X64_MSR_EOM, 0);
	ha_signal(&s, seq++, 0x2001, false);
	ha_signal(&s, seq++, 40000, true);
	put8(&s, 2);
	put16(&s, 0x2002);		/* signal page */
	ha_rdmsr(&s, seq++, 0, HV_X64_MSR_SIMP);
	ha_rdmsr(&s, seq++, 0, HV_X64_MSR_TIME_REF_COUNT);
	ha_rdmsr(&s, seq++, 3, HV_X64_MSR_SIMP);	/* bad vp */
	ha_wrmsr(&s, seq++, 0, HV_X64_MSR_VP_INDEX, 1);	/* read-only */
	ha_wrmsr(&s, seq++, 0, HV_X64_MSR_CRASH_P0, 7);
	ha_req(&d, HVSIM_ABI_RESET, seq++);
	put32(&d, HVSIM_RESET_POWER_OFF);
	ha_dgram(&s, 0, &d);
	write_seed("host_abi", "session", &s);

	/* HVSIM_SOCKET mode (first datagram given), 2 vCPUs, a full message
	 * queue: the host posts while the slot stays busy. */
	memset(&s, 0, sizeof(s));
	put8(&s, 1 | 4);
	ha_hello(&s, seq = 1, "vm-one");
	seq++;
	ha_synic(&s, &seq);
	for (int i = 0; i < 6; i++) {
		uint8_t pl[16] = { 1, 0, 0, 0, 0, 0, 0, 0, (uint8_t)i };

		put8(&s, 3);
		put16(&s, sizeof(pl));
		put8(&s, 0);
		put8(&s, 2);
		put32(&s, 1);
		putn(&s, pl, sizeof(pl));
	}
	put8(&s, 4);
	put16(&s, 0x0200);		/* vp 0, sint 2 */
	put16(&s, 7);
	ha_poke(&s, 0x2000 + 2 * 256, zero8, 8);
	ha_wrmsr(&s, seq++, 0, HV_X64_MSR_EOM, 0);
	ha_wrmsr(&s, seq++, 1, HV_X64_MSR_SIMP, 0);
	ha_wrmsr(&s, seq++, 0, HV_X64_MSR_SCONTROL, 0);
	put8(&s, 6);
	put16(&s, 0);			/* host stops the partition */
	write_seed("host_abi", "socket-queue", &s);

	/* Malformed: bad magic, unknown type, truncated, an fd, short,
	 * a second HELLO. */
	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	ha_hello(&s, 1, "x");
	ha_req(&d, 0x0042, 2);
	ha_dgram(&s, 0, &d);
	ha_req(&d, HVSIM_ABI_RDMSR, 3);
	d.b[0] = 'X';
	put32(&d, 0);
	put32(&d, HV_X64_MSR_SIMP);
	ha_dgram(&s, 0, &d);
	ha_req(&d, HVSIM_ABI_WRMSR, 4);
	zeros(&d, 16);
	ha_dgram(&s, 0x10, &d);		/* 8193 bytes */
	ha_req(&d, HVSIM_ABI_RDMSR, 5);
	put32(&d, 0);
	put32(&d, HV_X64_MSR_SIMP);
	ha_dgram(&s, 8, &d);		/* with an fd */
	ha_req(&d, HVSIM_ABI_HYPERCALL, 6);
	put32(&d, 0);
	put32(&d, 4000);		/* input_len past the datagram */
	put64(&d, HV_CALL_POST_MESSAGE);
	ha_dgram(&s, 0, &d);
	ha_req(&d, HVSIM_ABI_RESET, 7);
	put32(&d, 9);			/* bad kind */
	ha_dgram(&s, 0, &d);
	ha_hello(&s, 8, "");
	write_seed("host_abi", "malformed", &s);

	/* Not a HELLO first. */
	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	ha_rdmsr(&s, 1, 0, HV_X64_MSR_SIMP);
	write_seed("host_abi", "no-hello", &s);
}

/* =============================== host_msg =============================== */

/* One HvPostMessage record: kind 0, connection id selector sel. */
static void hm_post(struct sb *s, uint8_t sel, const struct sb *m)
{
	put8(s, (uint8_t)(sel << 3));
	put8(s, (uint8_t)m->n);
	putn(s, m->b, m->n);
}

static void hm_begin(struct sb *m, uint32_t type)
{
	memset(m, 0, sizeof(*m));
	put32(m, type);
	put32(m, 0);
}

static void hm_contact(struct sb *s, uint32_t ver, uint64_t intr,
		       uint64_t mon1, uint64_t mon2)
{
	struct sb m;

	hm_begin(&m, VMBUS_CHANMSG_INITIATE_CONTACT);
	put32(&m, ver);
	put32(&m, 0);			/* target vcpu */
	if (ver >= VMBUS_VERSION_MULTICLIENT) {
		put8(&m, VMBUS_MESSAGE_SINT);
		zeros(&m, 7);
	} else {
		put64(&m, intr);
	}
	put64(&m, mon1);
	put64(&m, mon2);
	hm_post(s, ver >= VMBUS_VERSION_MULTICLIENT ? 1 : 0, &m);
}

static void hm_simple(struct sb *s, uint32_t type)
{
	struct sb m;

	hm_begin(&m, type);
	hm_post(s, 0, &m);
}

static void hm_u32s(struct sb *s, uint32_t type, const uint32_t *v,
		    unsigned n)
{
	struct sb m;

	hm_begin(&m, type);
	for (unsigned i = 0; i < n; i++)
		put32(&m, v[i]);
	hm_post(s, 0, &m);
}

/* GPADL of npages pages from page first (one range), split in header and
 * bodies as a guest does; pfn_fix, when non-zero, replaces PFN 1. */
static void hm_gpadl(struct sb *s, uint32_t relid, uint32_t handle,
		     uint32_t first, uint32_t npages, uint64_t pfn_fix)
{
	struct sb m;
	uint32_t done, n = npages < 26 ? npages : 26;

	hm_begin(&m, VMBUS_CHANMSG_GPADL_HEADER);
	put32(&m, relid);
	put32(&m, handle);
	put16(&m, (uint16_t)(8 + 8 * npages));
	put16(&m, 1);
	put32(&m, npages * 4096);
	put32(&m, 0);
	for (uint32_t i = 0; i < n; i++)
		put64(&m, i == 1 && pfn_fix ? pfn_fix : first + i);
	hm_post(s, 0, &m);
	for (done = n; done < npages; done += n) {
		n = npages - done < 28 ? npages - done : 28;
		hm_begin(&m, VMBUS_CHANMSG_GPADL_BODY);
		put32(&m, 0);
		put32(&m, handle);
		for (uint32_t i = 0; i < n; i++)
			put64(&m, first + done + i);
		hm_post(s, 0, &m);
	}
}

static void hm_open(struct sb *s, uint32_t relid, uint32_t openid,
		    uint32_t handle, uint32_t vp, uint32_t down)
{
	struct sb m;

	hm_begin(&m, VMBUS_CHANMSG_OPENCHANNEL);
	put32(&m, relid);
	put32(&m, openid);
	put32(&m, handle);
	put32(&m, vp);
	put32(&m, down);
	zeros(&m, 120);
	hm_post(s, 0, &m);
}

/* Guest RAM write record. */
static void hm_poke(struct sb *s, uint32_t gpa, const void *b, uint8_t n)
{
	put8(s, 2);
	put8(s, n);
	put16(s, (uint16_t)(gpa >> 12));
	put16(s, (uint16_t)(gpa & 0xFFF));
	putn(s, b, n);
}

static void hm_poke32(struct sb *s, uint32_t gpa, uint32_t v)
{
	uint8_t b[4];

	hv_put_le32(b, v);
	hm_poke(s, gpa, b, 4);
}

/* A packet into the guest->host ring whose control page is at page ctl
 * (data follows), at ring offset off; returns the new write offset. */
static uint32_t hm_ring_pkt(struct sb *s, uint32_t ctl, uint32_t off,
			    const uint8_t *pkt, uint32_t len)
{
	uint8_t tr[8] = { 0 };
	uint32_t data = (ctl + 1) * 4096;

	for (uint32_t i = 0; i < len; i += 200)
		hm_poke(s, data + off + i, pkt + i,
			(uint8_t)(len - i < 200 ? len - i : 200));
	hv_put_le32(tr + 4, off);
	hm_poke(s, data + off + len, tr, 8);
	hm_poke32(s, ctl * 4096, off + len + 8);	/* write_index */
	return off + len + 8;
}

static void hm_signal(struct sb *s, uint8_t relid)
{
	put8(s, 1 | 8);
	put8(s, relid);
}

static void seeds_host_msg(void)
{
	struct sb s;
	uint8_t pkt[512];
	uint32_t off = 0;

	/* A whole guest session at 5.3 with two echo devices. */
	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	put8(&s, 1);
	hm_contact(&s, VMBUS_VERSION_IRON, 0, 0, 0);
	hm_simple(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	hm_gpadl(&s, 1, 0x100, 16, 4, 0);
	hm_open(&s, 1, 1, 0x100, 0, 2);
	/* in-band with a completion request */
	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(pkt + 2, 2);
	hv_put_le16(pkt + 4, 6);
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, 42);
	memcpy(pkt + 16, "hello, echo VSP!", 16);
	off = hm_ring_pkt(&s, 16, off, pkt, 48);
	hm_signal(&s, 1);
	/* GPA direct: 2000 bytes at offset 3000 of pages 40-41 */
	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT);
	hv_put_le16(pkt + 2, 6);
	hv_put_le16(pkt + 4, 6);
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, 43);
	hv_put_le32(pkt + 20, 1);
	hv_put_le32(pkt + 24, 2000);
	hv_put_le32(pkt + 28, 3000);
	hv_put_le64(pkt + 32, 40);
	hv_put_le64(pkt + 40, 41);
	off = hm_ring_pkt(&s, 16, off, pkt, 48);
	hm_signal(&s, 1);
	/* subchannel request through the echo protocol */
	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(pkt + 2, 2);
	hv_put_le16(pkt + 4, 4);
	memcpy(pkt + 16, "ECHOSUB", 8);
	hv_put_le16(pkt + 24, 2);
	off = hm_ring_pkt(&s, 16, off, pkt, 32);
	hm_signal(&s, 1);
	hm_gpadl(&s, 2, 0x200, 64, 40, 0);	/* header + body */
	{
		uint32_t v[] = { 2, 0x200 };
		hm_u32s(&s, VMBUS_CHANMSG_GPADL_TEARDOWN, v, 2);
	}
	{
		uint32_t v[] = { 1, 0 };
		hm_u32s(&s, VMBUS_CHANMSG_MODIFYCHANNEL, v, 2);
	}
	put8(&s, 3);
	put8(&s, 0);			/* poll */
	{
		uint32_t v[] = { 1 };
		hm_u32s(&s, VMBUS_CHANMSG_CLOSECHANNEL, v, 1);
	}
	{
		uint32_t v[] = { 1, 0x100 };
		hm_u32s(&s, VMBUS_CHANMSG_GPADL_TEARDOWN, v, 2);
	}
	put8(&s, 4);
	put8(&s, 0);
	put8(&s, 2);			/* host rescinds relid 2 */
	{
		uint32_t v[] = { 2 };
		hm_u32s(&s, VMBUS_CHANMSG_RELID_RELEASED, v, 1);
	}
	hm_simple(&s, VMBUS_CHANMSG_UNLOAD);
	write_seed("host_msg", "session-53", &s);

	/* A 1.1 host: interrupt page signalling, no UNLOAD response. */
	memset(&s, 0, sizeof(s));
	put8(&s, 2);
	put8(&s, 0);
	hm_contact(&s, VMBUS_VERSION_WIN7, 5 * 4096, 0, 0);
	hm_simple(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	hm_gpadl(&s, 1, 0x100, 16, 4, 0);
	hm_open(&s, 1, 7, 0x100, 0, 2);
	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(pkt + 2, 2);
	hv_put_le16(pkt + 4, 3);
	off = hm_ring_pkt(&s, 16, 0, pkt, 24);
	{
		uint8_t bit = 1u << 1;	/* relid 1, send half */
		hm_poke(&s, 5 * 4096 + 2048, &bit, 1);
	}
	put8(&s, 1);
	put8(&s, VMBUS_EVENT_CONNECTION_ID);
	put8(&s, 0);
	hm_simple(&s, VMBUS_CHANMSG_UNLOAD);
	write_seed("host_msg", "v11-interrupt-page", &s);

	/* Monitored notification: monitor pages, a pending bit, a poll. */
	memset(&s, 0, sizeof(s));
	put8(&s, 0x10 | 9);		/* 5.2 host, monitored */
	put8(&s, 0);
	hm_contact(&s, VMBUS_VERSION_WIN10_RS5, 0, 6 * 4096, 7 * 4096);
	hm_simple(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	hm_gpadl(&s, 1, 0x100, 16, 4, 0);
	hm_open(&s, 1, 1, 0x100, 0, 2);
	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(pkt + 2, 2);
	hv_put_le16(pkt + 4, 3);
	hm_ring_pkt(&s, 16, 0, pkt, 24);
	hm_poke32(&s, 7 * 4096 + 8, 1);	/* group 0 pending bit 0 */
	put8(&s, 3);
	put8(&s, 0);
	write_seed("host_msg", "monitored", &s);

	/* Hostile GPADLs and opens. */
	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	put8(&s, 4);			/* tight limits */
	hm_contact(&s, VMBUS_VERSION_IRON, 0, 0, 0);
	hm_simple(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	hm_simple(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	hm_gpadl(&s, 1, 0x100, 16, 4, 0x7FFFFFFFFull);	/* PFN outside RAM */
	hm_gpadl(&s, 1, 0x101, 16, 4, 0);
	hm_gpadl(&s, 1, 0x101, 16, 4, 0);		/* duplicate */
	hm_gpadl(&s, 1, 0x102, 250, 30, 0);		/* body, end of RAM */
	hm_gpadl(&s, 99, 0x103, 16, 2, 0);		/* unknown relid */
	{
		uint32_t v[] = { 0, 0x555 };
		hm_u32s(&s, VMBUS_CHANMSG_GPADL_BODY, v, 2);
	}
	hm_open(&s, 1, 1, 0x101, 9, 2);			/* bad vp */
	hm_open(&s, 1, 2, 0x101, 0, 4);			/* bad downstream */
	hm_open(&s, 1, 3, 0x101, 0, 1);			/* 1-page ring */
	hm_poke32(&s, 16 * 4096, 5);			/* bad write_index */
	hm_open(&s, 1, 4, 0x101, 0, 2);
	hm_poke32(&s, 16 * 4096, 0);
	hm_open(&s, 1, 5, 0x101, 0, 2);
	hm_open(&s, 1, 6, 0x101, 0, 2);			/* already open */
	{
		uint32_t v[] = { 1, 0x101 };
		hm_u32s(&s, VMBUS_CHANMSG_GPADL_TEARDOWN, v, 2); /* in use */
	}
	hm_poke32(&s, 16 * 4096, 4000);			/* partial packet */
	hm_signal(&s, 1);
	{
		uint32_t v[] = { 3 };
		hm_u32s(&s, VMBUS_CHANMSG_CLOSECHANNEL, v, 1);
	}
	hm_contact(&s, VMBUS_VERSION_WIN10, 0, 0, 0);	/* reconnect */
	hm_contact(&s, 0x00070000, 0, 0, 0);		/* unknown version */
	write_seed("host_msg", "hostile", &s);
}

/* =============================== host_vsp =============================== */

/* A GPA-direct packet: ranges (bc, bo, first PFN, npfn consecutive). */
static uint32_t vsp_gpa_pkt(uint8_t *data, uint32_t dsize, uint32_t off,
			    uint32_t nr, const uint32_t *bc, const uint32_t *bo,
			    const uint64_t *pfn0, uint32_t payload, uint64_t tid)
{
	uint8_t pkt[1024];
	uint32_t pos = 24, len;

	memset(pkt, 0, sizeof(pkt));
	hv_put_le32(pkt + 20, nr);
	for (uint32_t r = 0; r < nr; r++) {
		uint32_t n = (bo[r] + bc[r] + 4095u) / 4096u;

		hv_put_le32(pkt + pos, bc[r]);
		hv_put_le32(pkt + pos + 4, bo[r]);
		for (uint32_t k = 0; k < n; k++)
			hv_put_le64(pkt + pos + 8 + 8 * k, pfn0[r] + k);
		pos += 8 + 8 * n;
	}
	len = pos + ((payload + 7u) & ~7u);
	hv_put_le16(pkt, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT);
	hv_put_le16(pkt + 2, (uint16_t)(pos / 8u));
	hv_put_le16(pkt + 4, (uint16_t)(len / 8u));
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, tid);
	for (uint32_t i = pos; i < len; i++)
		pkt[i] = (uint8_t)i;
	hv_put_le32(pkt + len + 4, off);
	for (uint32_t i = 0; i < len + 8u; i++)
		data[(off + i) % dsize] = pkt[i];
	return (off + len + 8u) % dsize;
}

/* A transfer-page packet with n ranges (8 bytes each). */
static uint32_t vsp_xfer_pkt(uint8_t *data, uint32_t dsize, uint32_t off,
			     uint32_t n)
{
	uint32_t w = ring_pkt(data, dsize, off,
			      VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES,
			      (uint16_t)(3 + n), 16, 0, 77);

	data[(off + 16) % dsize] = 1;				/* pageset */
	for (uint32_t i = 0; i < 4; i++)
		data[(off + 20 + i) % dsize] = (uint8_t)(i ? 0 : n);
	for (uint32_t i = 0; i < 8 * n; i++)
		data[(off + 24 + i) % dsize] = (uint8_t)(i % 8 < 4 ? 16 : i);
	return w;
}

static void vsp_head(struct sb *s, uint8_t cfg, uint32_t wi, uint8_t nops)
{
	put8(s, cfg);
	put32(s, wi);		/* in write_index */
	put32(s, 0);		/* in read_index (host's) */
	put32(s, 0);		/* in interrupt_mask (host's) */
	put32(s, 0);		/* in pending_send_sz */
	put32(s, HV_RING_FEAT_PENDING_SEND_SZ);
	put32(s, 0);		/* out read_index */
	put32(s, 0);		/* out interrupt_mask */
	put8(s, nops);
}

static void vsp_params(struct sb *s, uint8_t buflen_idx, uint16_t off,
		       uint16_t len)
{
	put8(s, 3);
	put8(s, buflen_idx);
	put16(s, off);
	put16(s, len);
}

static void seeds_host_vsp(void)
{
	static uint8_t data[3 * 4096];
	uint32_t bc[2] = { 5000, 300 }, bo[2] = { 100, 4000 };
	uint64_t pfn[2] = { 40, 90 };
	uint32_t w = 0, dsize = 4096;
	struct sb s;

	/* Every packet kind for the test VSP; then device GPADL use, an
	 * unsolicited send, a poll. */
	memset(data, 0, sizeof(data));
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_DATA_INBAND, 2, 40,
		     VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, 1);
	w = vsp_gpa_pkt(data, dsize, w, 2, bc, bo, pfn, 32, 2);
	w = vsp_xfer_pkt(data, dsize, w, 3);
	w = ring_pkt(data, dsize, w, 0x55, 2, 8, 0, 0);
	w = ring_pkt(data, dsize, w, VMBUS_PACKET_TYPE_COMP, 2, 16, 0, 9);
	memset(&s, 0, sizeof(s));
	vsp_head(&s, 0, w, 10);
	vsp_params(&s, 6, 0, 5300);
	put8(&s, 0);				/* signal */
	put8(&s, 4);				/* hold/read BUF */
	put16(&s, 10);
	put16(&s, 500);
	put8(&s, 4 | 0x10);			/* map/unmap BUF */
	put16(&s, 0);
	put16(&s, 0);
	put8(&s, 4 | 8);			/* a handle never made */
	put32(&s, 0x999);
	put16(&s, 0);
	put16(&s, 8);
	put8(&s, 7 | (4 << 4));			/* VSP sends 32 bytes */
	put8(&s, 5);				/* poll */
	vsp_params(&s, 0, 0, 8);		/* 8-byte buffer: ENOBUFS */
	put8(&s, 1);
	put16(&s, (uint16_t)(w / 8u));
	put8(&s, 0);
	putn(&s, data, dsize);
	write_seed("host_vsp", "every-kind", &s);

	/* The echo VSP on the same ring. */
	s.b[0] = 4;
	write_seed("host_vsp", "echo", &s);

	/* Scattered 4-page ring that wraps: the guest publishes 8, then 16
	 * packets of 736 bytes, then writes two more that straddle the end
	 * (over bytes the host has read) and publishes them; then it blocks
	 * the outgoing ring with a read_index the host must refuse. */
	dsize = 3 * 4096;
	static uint8_t full[3 * 4096];
	uint32_t at[19];
	memset(data, 0, sizeof(data));
	memset(full, 0, sizeof(full));
	w = 0;
	for (int i = 0; i < 18; i++) {
		at[i] = w;
		ring_pkt(i < 16 ? data : full, dsize, w,
			 VMBUS_PACKET_TYPE_DATA_INBAND, 2, 708,
			 i % 3 ? 0 : VMBUS_PACKET_FLAG_COMPLETION_REQUESTED,
			 (uint64_t)i);
		w = ring_pkt(full, dsize, w, VMBUS_PACKET_TYPE_DATA_INBAND, 2,
			     708, i % 3 ? 0 : VMBUS_PACKET_FLAG_COMPLETION_REQUESTED,
			     (uint64_t)i);
	}
	at[18] = w;
	memset(&s, 0, sizeof(s));
	vsp_head(&s, 1 | 2, at[8], 10);
	put8(&s, 0);
	put8(&s, 1 | 8);
	put32(&s, at[16]);
	put8(&s, 0);
	put8(&s, 6 | 8);			/* write packets 16, 17 */
	put16(&s, (uint16_t)at[16]);
	put16(&s, (uint16_t)((at[18] + dsize - at[16]) % dsize));
	put8(&s, 1 | 8);
	put32(&s, at[18]);
	put8(&s, 0);
	put8(&s, 2 | 8);
	put32(&s, 4095);			/* bad out read_index */
	put8(&s, 7 | (8 << 4));			/* the VSP sends */
	put8(&s, 0);
	put8(&s, 6);				/* CLOSECHANNEL */
	putn(&s, data, dsize);
	for (uint32_t i = at[16]; i != at[18]; i = (i + 1) % dsize)
		put8(&s, full[i]);
	write_seed("host_vsp", "scattered-wrap", &s);
}

/* ============================= control_json ============================= */

static void puts_sb(struct sb *s, const char *t)
{
	putn(s, t, strlen(t));
}

static void seeds_control_json(void)
{
	static const char *const reqs =
		"{\"cmd\":\"list\"}\n"
		"{\"cmd\":\"faults\"}\n"
		"{\"cmd\":\"fault\",\"name\":\"drop_message\",\"enable\":true,"
		"\"params\":{\"type\":6,\"times\":2},\"vm\":\"fz\"}\n"
		"{\"cmd\":\"fault\",\"name\":\"nope\",\"enable\":false}\n"
		"{\"cmd\":\"channels\",\"vm\":\"fz\"}\n"
		"{\"cmd\":\"channels\",\"vm\":\"other\"}\n"
		"{\"cmd\":\"echo\",\"a\":\"x\\u00e9\\ud83d\\ude00\\n\\\"\","
		"\"n\":-9223372036854775808,\"o\":{\"k\":null,\"t\":true}}\n"
		"{\"cmd\":\"echo\",\"fail\":1}\n"
		"  {\"cmd\" : \"stop\"}  \r\n"
		"{\"cmd\":1}\n"
		"{\"a\":[1]}\n"
		"{\"a\":1.5}\n"
		"{\"a\":01}\n"
		"{\"a\":1,\"a\":2}\n"
		"{\"o\":{\"p\":{}}}\n"
		"{\"s\":\"\\ud800\"}\n"
		"{\"s\":\"\\u0000\"}\n";
	struct sb s;

	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	puts_sb(&s, reqs);
	/* 17 members: one too many */
	puts_sb(&s, "{");
	for (int i = 0; i < 17; i++) {
		char m[16];

		snprintf(m, sizeof(m), "%s\"k%d\":%d", i ? "," : "", i, i);
		puts_sb(&s, m);
	}
	puts_sb(&s, "}\n");
	write_seed("control_json", "requests", &s);

	/* The same through the socket, then an overlong line, then one
	 * more request and a partial line. */
	memset(&s, 0, sizeof(s));
	put8(&s, 1);
	puts_sb(&s, reqs);
	puts_sb(&s, "{\"cmd\":\"echo\",\"long\":\"");
	for (int i = 0; i < 4200; i++)
		put8(&s, 'x');
	puts_sb(&s, "\"}\n{\"cmd\":\"list\"}\n{\"cmd\":");
	write_seed("control_json", "socket", &s);
}

/* =============================== guest_ic =============================== */

/* A host ring packet (fuzzport RING op) with an in-band payload. */
static void s_ring(struct sb *s, uint8_t relid, uint8_t flags, uint16_t type,
		   uint16_t pflags, uint64_t tid, const void *pl, uint32_t len)
{
	uint32_t total = 16u + ((len + 7u) & ~7u);

	put8(s, FZP_OP_RING);
	put8(s, relid);
	put8(s, flags);
	put16(s, (uint16_t)total);
	put16(s, type);
	put16(s, 2);
	put16(s, (uint16_t)(total / 8u));
	put16(s, pflags);
	put64(s, tid);
	putn(s, pl, len);
	zeros(s, total - 16u - len);
}

static void s_rwait(struct sb *s, uint8_t relid, uint8_t n)
{
	put8(s, FZP_OP_RWAIT);
	put8(s, relid);
	put8(s, n);
}

/* An IC message: pipe header, IC header, body. */
static void ic_msg(struct sb *s, uint8_t relid, uint64_t tid, uint16_t type,
		   uint16_t fw, uint16_t sv, const void *body, uint16_t blen)
{
	uint8_t m[4096];

	memset(m, 0, sizeof(m));
	hv_put_le32(m, IC_PIPE_FLAG_DATA);
	hv_put_le32(m + 4, 20u + blen);
	hv_put_le16(m + 8, fw);			/* framework major.minor */
	hv_put_le16(m + 10, 0);
	hv_put_le16(m + 12, type);
	hv_put_le16(m + 14, sv >> 8);		/* service major */
	hv_put_le16(m + 16, sv & 0xFF);		/* service minor */
	hv_put_le16(m + 18, blen);
	m[25] = IC_FLAGS_HOST_REQUEST;
	memcpy(m + 28, body, blen);
	s_ring(s, relid, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, tid, m,
	       28u + blen);
}

static void ic_negotiate(struct sb *s, uint8_t relid, const uint16_t *sv,
			 unsigned nsv)
{
	uint8_t b[64];
	unsigned n = 0;

	memset(b, 0, sizeof(b));
	hv_put_le16(b, 2);
	hv_put_le16(b + 2, (uint16_t)nsv);
	n = 8;
	hv_put_le16(b + n, 1); n += 4;		/* framework 1.0 */
	hv_put_le16(b + n, 3); n += 4;		/* framework 3.0 */
	for (unsigned i = 0; i < nsv; i++) {
		hv_put_le16(b + n, sv[i] >> 8);
		hv_put_le16(b + n + 2, sv[i] & 0xFF);
		n += 4;
	}
	ic_msg(s, relid, 1, IC_MSGTYPE_NEGOTIATE, 1, 0x0100, b, (uint16_t)n);
}

/* UTF-16LE of an ASCII string, NUL included; returns bytes. */
static uint32_t utf16(uint8_t *out, const char *a)
{
	uint32_t n = 0;

	do {
		out[n++] = (uint8_t)*a;
		out[n++] = 0;
	} while (*a++);
	return n;
}

static void kvp_getset(struct sb *s, uint8_t relid, uint64_t tid, uint8_t op,
		       uint8_t pool, const char *key, const char *val)
{
	static uint8_t b[2604 - 28];

	memset(b, 0, sizeof(b));
	b[0] = op;
	b[1] = pool;
	hv_put_le32(b + 4, KVP_REG_SZ);
	hv_put_le32(b + 8, utf16(b + 16, key));
	if (val)
		hv_put_le32(b + 12, utf16(b + 16 + 512, val));
	ic_msg(s, relid, tid, IC_MSGTYPE_KVPEXCHANGE, 3, 0x0500, b, sizeof(b));
}

static void seeds_guest_ic(void)
{
	static const struct hv_guid ic_cls[4] = {
		HV_GUID_HEARTBEAT_INIT, HV_GUID_SHUTDOWN_INIT,
		HV_GUID_TIMESYNC_INIT, HV_GUID_KVP_INIT,
	};
	static const uint16_t hb_v[] = { 0x0100, 0x0300 };
	static const uint16_t sd_v[] = { 0x0100, 0x0300, 0x0301, 0x0302 };
	static const uint16_t ts_v[] = { 0x0400 };
	static const uint16_t kvp_v[] = { 0x0300, 0x0400, 0x0500 };
	uint8_t b[2700];
	struct sb s;

	/* All four services: offers, opens, negotiations, one message each
	 * and a KVP set / get / enumerate / delete, a bad header. */
	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	put16(&s, 0);			/* no saved KVP store */
	s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
	m_vresp(&s, 1, 0, VMBUS_MESSAGE_CONNECTION_ID);
	s_wait(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	for (int i = 0; i < 4; i++)
		m_offer(&s, &ic_cls[i], &inst1, (uint32_t)i + 1, 0);
	m_hdr_only(&s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	for (uint32_t i = 0; i < 4; i++)
		open_ok(&s, i + 1, 0x10000 + i, i + 1);

	ic_negotiate(&s, 1, hb_v, 2);
	s_rwait(&s, 1, 1);
	memset(b, 0, sizeof(b));
	hv_put_le64(b, 41);
	ic_msg(&s, 1, 2, IC_MSGTYPE_HEARTBEAT, 3, 0x0300, b, 40);
	s_rwait(&s, 1, 1);

	ic_negotiate(&s, 3, ts_v, 1);
	s_rwait(&s, 3, 1);
	memset(b, 0, sizeof(b));
	hv_put_le64(b, 133000000000000000ull);	/* parent time, 2022 */
	hv_put_le64(b + 8, 1000);
	b[16] = IC_TIMESYNC_FLAG_SYNC;
	ic_msg(&s, 3, 2, IC_MSGTYPE_TIMESYNC, 3, 0x0400, b, 24);
	s_rwait(&s, 3, 1);
	b[16] = IC_TIMESYNC_FLAG_SAMPLE;
	hv_put_le64(b, 133000000100000000ull);
	ic_msg(&s, 3, 3, IC_MSGTYPE_TIMESYNC, 3, 0x0400, b, 24);
	s_rwait(&s, 3, 1);

	ic_negotiate(&s, 4, kvp_v, 3);
	s_rwait(&s, 4, 1);
	kvp_getset(&s, 4, 2, KVP_OP_SET, KVP_POOL_EXTERNAL, "Key1", "Value1");
	s_rwait(&s, 4, 1);
	kvp_getset(&s, 4, 3, KVP_OP_GET, KVP_POOL_EXTERNAL, "Key1", NULL);
	s_rwait(&s, 4, 1);
	kvp_getset(&s, 4, 4, KVP_OP_GET, KVP_POOL_GUEST,
		   "GuestSystemTimeUtc", NULL);
	s_rwait(&s, 4, 1);
	memset(b, 0, sizeof(b));
	b[0] = KVP_OP_ENUMERATE;
	b[1] = KVP_POOL_AUTO;
	hv_put_le32(b + 4, 1);			/* index 1 */
	ic_msg(&s, 4, 5, IC_MSGTYPE_KVPEXCHANGE, 3, 0x0500, b, 2608 - 28);
	s_rwait(&s, 4, 1);
	memset(b, 0, sizeof(b));
	b[0] = KVP_OP_DELETE;
	b[1] = KVP_POOL_EXTERNAL;
	hv_put_le32(b + 4, utf16(b + 8, "Key1"));
	ic_msg(&s, 4, 6, IC_MSGTYPE_KVPEXCHANGE, 3, 0x0500, b, 548 - 28);
	s_rwait(&s, 4, 1);

	ic_negotiate(&s, 2, sd_v, 4);
	s_rwait(&s, 2, 1);
	memset(b, 0, sizeof(b));
	hv_put_le32(b, IC_SHUTDOWN_REASON_PLANNED);
	hv_put_le32(b + 8, IC_SHUTDOWN_FLAG_RESTART);
	memcpy(b + 12, "b\0y\0e\0", 6);
	ic_msg(&s, 2, 2, IC_MSGTYPE_SHUTDOWN, 3, 0x0302, b, 2060);
	s_rwait(&s, 2, 1);
	/* a header that lies about its size, an unknown type */
	memset(b, 0, sizeof(b));
	ic_msg(&s, 1, 9, IC_MSGTYPE_HEARTBEAT, 3, 0x0300, b, 4);
	ic_msg(&s, 1, 10, 0x77, 3, 0x0300, b, 8);
	s_rwait(&s, 1, 1);
	for (uint32_t i = 0; i < 4; i++)
		close_ok(&s, 0x10000 + i);
	unload_ok(&s);
	write_seed("guest_ic", "all-services", &s);

	/* A saved KVP store with two records (the harness seals it), then
	 * only the KVP channel: the host enumerates the external pool. */
	{
		uint8_t blob[256];
		uint32_t o = 16, kl, vl;

		memset(blob, 0, sizeof(blob));
		hv_put_le32(blob, 0x564B4349u);		/* "ICKV" */
		hv_put_le32(blob + 4, 1);
		hv_put_le32(blob + 8, 2);
		for (int r = 0; r < 2; r++) {
			uint8_t *rec = blob + o;

			rec[0] = r ? KVP_POOL_GUEST : KVP_POOL_EXTERNAL;
			kl = utf16(rec + 12, r ? "k" : "Key1");
			vl = utf16(rec + 12 + kl, r ? "v" : "Value1");
			hv_put_le16(rec + 2, (uint16_t)kl);
			hv_put_le16(rec + 4, (uint16_t)vl);
			hv_put_le32(rec + 8, KVP_REG_SZ);
			o += 12 + kl + vl;
		}
		o += 4;					/* trailer */
		memset(&s, 0, sizeof(s));
		put8(&s, 0x20);
		put16(&s, (uint16_t)o);
		putn(&s, blob, o);
	}
	s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
	m_vresp(&s, 1, 0, VMBUS_MESSAGE_CONNECTION_ID);
	s_wait(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	m_offer(&s, &ic_cls[3], &inst1, 4, 0);
	m_hdr_only(&s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	open_ok(&s, 4, 0x10000, 1);
	ic_negotiate(&s, 4, kvp_v, 3);
	s_rwait(&s, 4, 1);
	for (uint32_t i = 0; i < 3; i++) {
		memset(b, 0, sizeof(b));
		b[0] = KVP_OP_ENUMERATE;
		b[1] = KVP_POOL_EXTERNAL;
		hv_put_le32(b + 4, i);
		ic_msg(&s, 4, 5 + i, IC_MSGTYPE_KVPEXCHANGE, 3, 0x0400, b,
		       2608 - 28);
		s_rwait(&s, 4, 1);
	}
	close_ok(&s, 0x10000);
	unload_ok(&s);
	write_seed("guest_ic", "kvp-store", &s);
}

/* ============================= guest_storvsc ============================ */

/* A VSTOR completion (COMP, the guest's last trans_id) of a control step. */
static void vs_ctrl(struct sb *s, uint32_t status, const void *pl,
		    uint32_t plen)
{
	uint8_t p[64];

	memset(p, 0, sizeof(p));
	hv_put_le32(p, VSTOR_OPERATION_COMPLETE_IO);
	hv_put_le32(p + 8, status);
	if (plen)
		memcpy(p + 12, pl, plen);
	s_rwait(s, 1, 1);
	s_ring(s, 1, 1, VMBUS_PACKET_TYPE_COMP, 0, 0, p, sizeof(p));
}

/* An SRB completion: data into the guest's buffer, then COMPLETE_IO. */
static void vs_srb(struct sb *s, uint8_t srb, uint8_t scsi,
		   const void *data, uint16_t dlen)
{
	uint8_t p[64];

	s_rwait(s, 1, 1);
	if (dlen) {
		put8(s, FZP_OP_GPAW);
		put8(s, 1);
		put16(s, 0);
		put16(s, dlen);
		putn(s, data, dlen);
	}
	memset(p, 0, sizeof(p));
	hv_put_le32(p, VSTOR_OPERATION_COMPLETE_IO);
	hv_put_le16(p + 12, VMSCSI_REQUEST_SIZE);
	p[14] = srb;
	p[15] = scsi;
	hv_put_le32(p + 24, dlen);
	if (scsi == 2) {			/* CHECK CONDITION + sense */
		p[21] = 18;
		p[14] |= 0x80;			/* autosense valid */
		p[28] = 0x70;
		p[30] = 0x06;			/* UNIT ATTENTION */
		p[40] = 0x29;
	}
	s_ring(s, 1, 1, VMBUS_PACKET_TYPE_COMP, 0, 0, p, sizeof(p));
}

static void seeds_guest_storvsc(void)
{
	static const struct hv_guid scsi = HV_GUID_STORVSC_INIT;
	uint8_t d[512];
	struct sb s;

	/* 0: scan; 1: scan, then block I/O; 2: two queues (sub-channel),
	 * VSTOR 6.2 refused first. */
	for (int variant = 0; variant < 3; variant++) {
		bool mc = variant == 2;

		memset(&s, 0, sizeof(s));
		put8(&s, variant == 1 ? 8 : mc ? 1 : 0);
		s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
		m_vresp(&s, 1, 0, VMBUS_MESSAGE_CONNECTION_ID);
		s_wait(&s, VMBUS_CHANMSG_REQUESTOFFERS);
		m_offer(&s, &scsi, &inst1, 1, 0);
		m_hdr_only(&s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
		open_ok(&s, 1, 0x10000, 1);
		vs_ctrl(&s, 0, NULL, 0);			/* BEGIN */
		if (mc)					/* refuse 6.2 */
			vs_ctrl(&s, VSTOR_STATUS_REVISION_MISMATCH, NULL, 0);
		vs_ctrl(&s, 0, NULL, 0);			/* version */
		memset(d, 0, sizeof(d));
		hv_put_le16(d + 4, mc ? 1 : 0);		/* sub-channels */
		hv_put_le32(d + 8, mc ? VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL
				      : 0);
		hv_put_le32(d + 12, VSTOR_MAX_TRANSFER_BYTES_V);
		vs_ctrl(&s, 0, d, 24);			/* properties */
		vs_ctrl(&s, 0, NULL, 0);			/* END */
		if (mc) {
			vs_ctrl(&s, 0, NULL, 0);		/* CREATE_SUB_CHANNELS */
			m_offer(&s, &scsi, &inst1, 2, 1);
			open_ok(&s, 2, 0x10001, 2);
		}
		/* REPORT LUNS: LUN 0 */
		memset(d, 0, sizeof(d));
		d[3] = 8;
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 16);
		/* standard INQUIRY: a disk */
		memset(d, ' ', 36);
		d[0] = 0;
		d[1] = 0;
		d[2] = 5;
		d[3] = 2;
		d[4] = 31;
		d[5] = d[6] = d[7] = 0;
		memcpy(d + 8, "Msft    Virtual Disk    1.0 ", 28);
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 36);
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, NULL, 0);	/* TUR */
		/* VPD 0x00: pages 00 80 83 b0 b1 b2 */
		memset(d, 0, sizeof(d));
		d[3] = 6;
		memcpy(d + 4, "\x00\x80\x83\xb0\xb1\xb2", 6);
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 10);
		memset(d, 0, sizeof(d));
		d[1] = 0x80;
		d[3] = 8;
		memcpy(d + 4, "SER12345", 8);
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 12);	/* serial */
		memset(d, 0, sizeof(d));
		d[1] = 0x83;
		d[3] = 12;
		d[4] = 1;				/* binary */
		d[5] = 3;				/* NAA */
		d[7] = 8;
		d[8] = 0x60;
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 16);	/* device id */
		memset(d, 0, sizeof(d));
		d[1] = 0xb0;
		d[3] = 0x3c;
		hv_put_be32(d + 8, 2048);		/* max transfer */
		hv_put_be32(d + 20, 8192);		/* max unmap */
		hv_put_be32(d + 24, 1);
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 64);	/* limits */
		memset(d, 0, sizeof(d));
		d[1] = 0xb1;
		d[3] = 0x3c;
		d[5] = 1;				/* non-rotating */
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 64);
		memset(d, 0, sizeof(d));
		d[1] = 0xb2;
		d[3] = 4;
		d[5] = 0x80;				/* LBPU */
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 8);
		memset(d, 0, sizeof(d));
		hv_put_be32(d + 4, 2047);		/* last LBA (low) */
		hv_put_be32(d + 8, 512);
		d[14] = 0x80;				/* LBPME */
		vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 32);	/* RC16 */
		if (variant == 1) {
			/* read 1 block, write (a UNIT ATTENTION first:
			 * retried), flush */
			memset(d, 0xab, sizeof(d));
			vs_srb(&s, SRB_STATUS_SUCCESS, 0, d, 512);
			vs_srb(&s, SRB_STATUS_ERROR, 2, NULL, 0);
			vs_srb(&s, SRB_STATUS_SUCCESS, 0, NULL, 0);
			vs_srb(&s, SRB_STATUS_SUCCESS, 0, NULL, 0);
		}
		/* unsolicited: a bus rescan request */
		memset(d, 0, sizeof(d));
		hv_put_le32(d, VSTOR_OPERATION_ENUMERATE_BUS);
		s_ring(&s, 1, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 0, d, 64);
		if (mc)
			close_ok(&s, 0x10001);
		close_ok(&s, 0x10000);
		unload_ok(&s);
		write_seed("guest_storvsc", variant == 0 ? "scan" :
			   variant == 1 ? "scan-io" : "multichannel", &s);
	}
}

/* ============================= guest_netvsc ============================= */

/*
 * The guest's packets on the NIC's primary channel (relid 1) are awaited
 * with RWAIT; a request the host completes gets a COMP with the guest's
 * last trans_id (RING flag 1). RNDIS replies and frames are written into
 * receive section 0 (GPADLW 0x10001) and announced by a transfer-page
 * packet; the guest answers each with a receive completion.
 */
#define GN_RBUF 0x10001u
#define GN_SBUF 0x10002u

static uint32_t g_gn_rid;		/* the guest's next RNDIS request id */
static uint32_t g_gn_msg;		/* NVSP message size (28 or 40) */
static bool g_gn_last;			/* no request follows the reply */

/* A COMP of the guest's last packet with an NVSP message. */
static void gn_comp(struct sb *s, const uint32_t *w, unsigned nw)
{
	uint8_t p[40];

	memset(p, 0, sizeof(p));
	for (unsigned i = 0; i < nw; i++)
		hv_put_le32(p + 4 * i, w[i]);
	s_ring(s, 1, 1, VMBUS_PACKET_TYPE_COMP, 0, 0, p, g_gn_msg);
}

/* A transfer-page packet on relid with n ranges (count, offset). */
static void gn_xfer(struct sb *s, uint8_t relid, uint16_t pageset,
		    const uint32_t (*r)[2], uint32_t n, uint32_t chan_type,
		    uint64_t tid)
{
	uint32_t hdr = (24u + 8u * n + 7u) & ~7u, total = hdr + 40u;

	put8(s, FZP_OP_RING);
	put8(s, relid);
	put8(s, 0);
	put16(s, (uint16_t)total);
	put16(s, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES);
	put16(s, (uint16_t)(hdr / 8u));
	put16(s, (uint16_t)(total / 8u));
	put16(s, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	put64(s, tid);
	put16(s, pageset);
	put16(s, 0);
	put32(s, n);
	for (uint32_t i = 0; i < n; i++) {
		put32(s, r[i][0]);
		put32(s, r[i][1]);
	}
	zeros(s, hdr - 24u - 8u * n);
	put32(s, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	put32(s, chan_type);
	put32(s, NVSP_SEND_BUF_SECTION_NONE);
	zeros(s, 28);
}

/* Write m[0..len) at off of the receive buffer. */
static void gn_rbuf(struct sb *s, uint32_t off, const uint8_t *m, uint16_t len)
{
	put8(s, FZP_OP_GPADLW);
	put32(s, GN_RBUF);
	put32(s, off);
	put16(s, len);
	putn(s, m, len);
}

/* One RNDIS message from the host in section 0. */
static void gn_rx(struct sb *s, const uint8_t *m, uint16_t len,
		  uint32_t chan_type, uint64_t tid)
{
	const uint32_t r[1][2] = { { len, 0 } };

	gn_rbuf(s, 0, m, len);
	gn_xfer(s, 1, NVSP_RECV_BUF_ID_L, r, 1, chan_type, tid);
	s_rwait(s, 1, 1);			/* its receive completion */
}

/*
 * The guest's next RNDIS request is out (it was awaited): complete its
 * send, then answer with a reply of type `type` (status, then the
 * information buffer for a query / the INITIALIZE fields).
 */
static void gn_reply(struct sb *s, uint32_t type, uint32_t status,
		     const void *info, uint32_t ilen)
{
	const uint32_t done[2] = { NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE,
				   NVSP_STAT_SUCCESS };
	uint8_t m[512];
	uint32_t len;

	memset(m, 0, sizeof(m));
	gn_comp(s, done, 2);
	hv_put_le32(m, type);
	hv_put_le32(m + 8, ++g_gn_rid);
	hv_put_le32(m + 12, status);
	if (type == REMOTE_NDIS_INITIALIZE_CMPLT) {
		hv_put_le32(m + 16, RNDIS_MAJOR_VERSION);
		hv_put_le32(m + 20, RNDIS_MINOR_VERSION);
		hv_put_le32(m + 28, 0);		/* medium 802.3 */
		hv_put_le32(m + 32, 8);		/* packets per message */
		hv_put_le32(m + 36, 0x4000);
		hv_put_le32(m + 40, 3);		/* 8-byte alignment */
		len = 52;
	} else if (type == REMOTE_NDIS_QUERY_CMPLT) {
		hv_put_le32(m + 16, ilen);
		hv_put_le32(m + 20, ilen ? 16 : 0);
		if (ilen)
			memcpy(m + 24, info, ilen);
		len = 24 + ilen;
	} else {
		len = 16;
	}
	hv_put_le32(m + 4, len);
	gn_rx(s, m, (uint16_t)len, NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 0x7000);
	if (!g_gn_last)
		s_rwait(s, 1, 1);		/* the next request */
	g_gn_last = false;
}

static void gn_query_u32(struct sb *s, uint32_t v)
{
	uint8_t b[4];

	hv_put_le32(b, v);
	gn_reply(s, REMOTE_NDIS_QUERY_CMPLT, RNDIS_STATUS_SUCCESS, b, 4);
}

/* A PACKET_MSG with a 60-byte frame and PPIs (csum, VLAN, hash). */
static uint16_t gn_frame(uint8_t *m, bool ppis)
{
	uint32_t plen = ppis ? 3u * 16u : 0u, dlen = 60;
	uint32_t doff = 36u + plen;

	memset(m, 0, 44u + plen + dlen);
	hv_put_le32(m, REMOTE_NDIS_PACKET_MSG);
	hv_put_le32(m + 4, 8u + doff + dlen);
	hv_put_le32(m + 8, doff);
	hv_put_le32(m + 12, dlen);
	hv_put_le32(m + 28, ppis ? 36u : 0u);
	hv_put_le32(m + 32, plen);
	if (ppis) {
		static const uint32_t t[3] = { NDIS_PKTINFO_TYPE_CSUM,
			NDIS_PKTINFO_TYPE_VLAN, NDIS_PKTINFO_TYPE_HASHVAL };
		static const uint32_t v[3] = { NDIS_RXCSUM_INFO_TCPCS_OK,
			0x00050000u, 0xdeadbeefu };

		for (int i = 0; i < 3; i++) {
			hv_put_le32(m + 44 + 16 * i, 16);
			hv_put_le32(m + 48 + 16 * i, t[i]);
			hv_put_le32(m + 52 + 16 * i, 12);
			hv_put_le32(m + 56 + 16 * i, v[i]);
		}
	}
	memset(m + 8 + doff, 0xff, 6);
	memcpy(m + 8 + doff + 6, "\x02\x15\x5d\x00\x00\x01\x08\x00", 8);
	return (uint16_t)(8u + doff + dlen);
}

/* Connect, offer the NIC (relid 1) and play the bring-up up to the
 * attach. nvsp: the version the host accepts (6.1 refused first for
 * older); sbuf: the send buffer is offered; rss: RSS caps with 2 queues
 * and a subchannel (relid 2). */
static void gn_bringup(struct sb *s, uint32_t nvsp, bool sbuf, bool rss)
{
	static const struct hv_guid nic = HV_GUID_NETVSC_INIT;
	static const uint8_t mac[6] = { 0x02, 0x15, 0x5d, 0, 0, 2 };
	struct ndis_offload o;
	uint8_t b[64];

	g_gn_rid = 0;
	g_gn_msg = 40;
	s_wait(s, VMBUS_CHANMSG_INITIATE_CONTACT);
	m_vresp(s, 1, 0, VMBUS_MESSAGE_CONNECTION_ID);
	s_wait(s, VMBUS_CHANMSG_REQUESTOFFERS);
	m_offer(s, &nic, &inst1, 1, 0);
	m_hdr_only(s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	open_ok(s, 1, 0x10000, 1);
	/* NVSP INIT, newest first */
	s_rwait(s, 1, 1);
	if (nvsp == NVSP_PROTOCOL_VERSION_6) {	/* 6.1 refused first */
		const uint32_t no[4] = { NVSP_MSG_TYPE_INIT_COMPLETE, 0, 34, 0 };

		gn_comp(s, no, 4);
		s_rwait(s, 1, 1);
	}
	{
		const uint32_t ok[4] = { NVSP_MSG_TYPE_INIT_COMPLETE, nvsp, 34,
					 NVSP_STAT_SUCCESS };

		gn_comp(s, ok, 4);
	}
	g_gn_msg = nvsp >= NVSP_PROTOCOL_VERSION_61 ? 40 : 28;
	/* NDIS config + version (posted), receive buffer */
	s_wait(s, VMBUS_CHANMSG_GPADL_HEADER);
	m_gpadl_created(s, 1, GN_RBUF, 0);
	s_rwait(s, 1, 1);
	{
		/* one section: 32 slots of 2048 bytes */
		const uint32_t rb[7] = { NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE,
			NVSP_STAT_SUCCESS, 1, 0, 2048, 32, 65536 };

		gn_comp(s, rb, 7);
	}
	if (sbuf) {
		const uint32_t sb[3] = { NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE,
			NVSP_STAT_SUCCESS, 2048 };

		s_wait(s, VMBUS_CHANMSG_GPADL_HEADER);
		m_gpadl_created(s, 1, GN_SBUF, 0);
		s_rwait(s, 1, 1);
		gn_comp(s, sb, 3);
	}
	s_rwait(s, 1, 1);			/* RNDIS INITIALIZE */
	gn_reply(s, REMOTE_NDIS_INITIALIZE_CMPLT, RNDIS_STATUS_SUCCESS, NULL, 0);
	gn_query_u32(s, 1500);			/* maximum frame size */
	gn_reply(s, REMOTE_NDIS_QUERY_CMPLT, RNDIS_STATUS_SUCCESS, mac, 6);
	gn_reply(s, REMOTE_NDIS_QUERY_CMPLT, RNDIS_STATUS_SUCCESS, mac, 6);
	memset(&o, 0, sizeof(o));
	o.ndis_hdr.ndis_type = NDIS_OBJTYPE_OFFLOAD;
	o.ndis_hdr.ndis_rev = nvsp >= NVSP_PROTOCOL_VERSION_5 ?
		NDIS_OFFLOAD_REV_3 : 2;
	o.ndis_hdr.ndis_size = nvsp >= NVSP_PROTOCOL_VERSION_5 ?
		NDIS_OFFLOAD_SIZE : NDIS_OFFLOAD_SIZE_6_1;
	o.ndis_csum.ncs_ip4_txenc = NDIS_OFFLOAD_ENCAP_8023;
	o.ndis_csum.ncs_ip4_txcsum = NDIS_TXCSUM_CAP_IP4OPT |
		NDIS_TXCSUM_CAP_TCP4OPT | NDIS_TXCSUM_CAP_TCP4 |
		NDIS_TXCSUM_CAP_UDP4 | NDIS_TXCSUM_CAP_IP4;
	o.ndis_csum.ncs_ip6_txenc = NDIS_OFFLOAD_ENCAP_8023;
	o.ndis_csum.ncs_ip6_txcsum = NDIS_TXCSUM_CAP_IP6EXT |
		NDIS_TXCSUM_CAP_TCP6OPT | NDIS_TXCSUM_CAP_TCP6 |
		NDIS_TXCSUM_CAP_UDP6;
	o.ndis_lsov2.nl2_ip4_encap = NDIS_OFFLOAD_ENCAP_8023;
	o.ndis_lsov2.nl2_ip4_maxsz = 62780;
	o.ndis_lsov2.nl2_ip4_minsg = 2;
	gn_reply(s, REMOTE_NDIS_QUERY_CMPLT, RNDIS_STATUS_SUCCESS, &o,
		 o.ndis_hdr.ndis_size);
	gn_reply(s, REMOTE_NDIS_SET_CMPLT, RNDIS_STATUS_SUCCESS, NULL, 0);
	gn_query_u32(s, NDIS_MEDIA_STATE_CONNECTED);
	g_gn_last = !rss;	/* without RSS, the last request */
	gn_query_u32(s, 100000000);		/* link speed, 10 Gbit/s */
	if (rss) {
		const uint32_t sc[3] = { NVSP_MSG5_TYPE_SUBCHANNEL,
					 NVSP_STAT_SUCCESS, 1 };

		memset(b, 0, sizeof(b));
		b[0] = NDIS_OBJTYPE_RSS_CAPS;
		b[1] = NDIS_RSS_CAPS_REV_2;
		hv_put_le16(b + 2, NDIS_RSS_CAPS_SIZE);
		hv_put_le32(b + 8, 1);
		hv_put_le32(b + 12, 2);		/* queues */
		hv_put_le16(b + 16, 16);	/* table entries */
		gn_reply(s, REMOTE_NDIS_QUERY_CMPLT, RNDIS_STATUS_SUCCESS, b,
			 NDIS_RSS_CAPS_SIZE);
		/* the subchannel request is out */
		gn_comp(s, sc, 3);
		m_offer(s, &nic, &inst1, 2, 1);
		open_ok(s, 2, 0x10003, 2);
		s_rwait(s, 1, 1);		/* RSS parameters */
		g_gn_last = true;
		gn_reply(s, REMOTE_NDIS_SET_CMPLT, RNDIS_STATUS_SUCCESS, NULL,
			 0);
	}
	/* quiet until the attach is over (the OS's callbacks installed) */
	put8(s, FZP_OP_IDLE);
	put8(s, 60);
}

/* The teardown at unload: HALT (its send completed), the buffers
 * revoked, the channels closed, the buffers' GPADLs torn down. */
static void gn_teardown(struct sb *s, bool sbuf, bool sub)
{
	s_wait(s, VMBUS_CHANMSG_CLOSECHANNEL);
	if (sub)
		close_ok(s, 0x10003);
	close_ok(s, 0x10000);
	close_ok(s, GN_RBUF);
	if (sbuf)
		close_ok(s, GN_SBUF);
	unload_ok(s);
}

static void seeds_guest_netvsc(void)
{
	uint8_t m[512];
	uint16_t n;
	struct sb s;

	/* 0: 6.1, send buffer, frames, indications, inband notes;
	 * 1: 6 after 6.1 refused, no send buffer, sends and control calls;
	 * 2: 6.1, two queues (RSS, a subchannel), an MTU change;
	 * 3: 4, sends, hostile receives. */
	for (int v = 0; v < 4; v++) {
		static const uint8_t cfg[4] = { 0x00, 0x1a, 0x21, 0x0c };
		static const uint32_t ver[4] = { NVSP_PROTOCOL_VERSION_61,
			NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_61,
			NVSP_PROTOCOL_VERSION_4 };
		bool sbuf = !(cfg[v] & 2), rss = v == 2;

		memset(&s, 0, sizeof(s));
		put8(&s, cfg[v]);
		gn_bringup(&s, ver[v], sbuf, rss);
		/* frames: plain, with PPIs */
		n = gn_frame(m, false);
		gn_rx(&s, m, n, NVSP_RNDIS_CHANNEL_TYPE_DATA, 0x100);
		n = gn_frame(m, true);
		gn_rx(&s, m, n, NVSP_RNDIS_CHANNEL_TYPE_DATA, 0x101);
		if (v == 0) {
			static const uint32_t ind[] = {
				RNDIS_STATUS_MEDIA_DISCONNECT,
				RNDIS_STATUS_MEDIA_CONNECT,
				RNDIS_STATUS_LINK_SPEED_CHANGE,
				RNDIS_STATUS_NETWORK_CHANGE };
			uint8_t p[104];

			for (unsigned i = 0; i < 4; i++) {
				memset(m, 0, 32);
				hv_put_le32(m, REMOTE_NDIS_INDICATE_STATUS_MSG);
				hv_put_le32(m + 4, i == 2 ? 24 : 20);
				hv_put_le32(m + 8, ind[i]);
				hv_put_le32(m + 12, i == 2 ? 4 : 0);
				hv_put_le32(m + 16, i == 2 ? 12 : 0);
				hv_put_le32(m + 20, 100000);
				gn_rx(&s, m, i == 2 ? 24 : 20,
				      NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 0x200 + i);
			}
			/* two frames in one packet (ranges 0 and 2048) */
			{
				const uint32_t r[2][2] = { { 104, 0 },
							   { 104, 2048 } };

				n = gn_frame(m, false);
				gn_rbuf(&s, 0, m, n);
				gn_rbuf(&s, 2048, m, n);
				gn_xfer(&s, 1, NVSP_RECV_BUF_ID_L, r, 2,
					NVSP_RNDIS_CHANNEL_TYPE_DATA, 0x300);
				s_rwait(&s, 1, 1);
			}
			/* send indirection table, VF association */
			memset(p, 0, sizeof(p));
			hv_put_le32(p, NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE);
			hv_put_le32(p + 4, NVSP_INDIRECTION_TABLE_COUNT);
			hv_put_le32(p + 8, 12);
			s_ring(&s, 1, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 0, p,
			       12 + 64);
			memset(p, 0, sizeof(p));
			hv_put_le32(p, NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION);
			s_ring(&s, 1, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, 0, p,
			       40);
			/* a completion nobody asked for */
			memset(p, 0, sizeof(p));
			hv_put_le32(p, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
			hv_put_le32(p + 4, NVSP_STAT_SUCCESS);
			s_ring(&s, 1, 0, VMBUS_PACKET_TYPE_COMP, 0,
			       0x4E56000000010001ull, p, 8);
		}
		if (v == 3) {
			/* hostile: range past the buffer, bad pageset, RNDIS
			 * length past the range, PPI chain past its list */
			const uint32_t r1[1][2] = { { 64, 65536 - 32 } };

			gn_xfer(&s, 1, NVSP_RECV_BUF_ID_L, r1, 1,
				NVSP_RNDIS_CHANNEL_TYPE_DATA, 0x400);
			s_rwait(&s, 1, 1);
			gn_xfer(&s, 1, 0x1234, r1, 1,
				NVSP_RNDIS_CHANNEL_TYPE_DATA, 0x401);
			s_rwait(&s, 1, 1);
			n = gn_frame(m, true);
			hv_put_le32(m + 4, 4000);
			gn_rx(&s, m, n, NVSP_RNDIS_CHANNEL_TYPE_DATA, 0x402);
			n = gn_frame(m, true);
			hv_put_le32(m + 44 + 16, 200);
			gn_rx(&s, m, n, NVSP_RNDIS_CHANNEL_TYPE_DATA, 0x403);
		}
		if (cfg[v] & 8) {
			/* the sends of dev_io: complete whatever comes */
			const uint32_t done[2] = {
				NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE,
				NVSP_STAT_SUCCESS };

			for (int i = 0; i < 6; i++) {
				s_rwait(&s, 1, 1);
				gn_comp(&s, done, 2);
			}
		}
		if (cfg[v] & 0x10) {
			/* query, set, keepalive, reset (times out: no
			 * answer), filter up, down */
			uint8_t vid[4] = { 0x37, 0x13, 0, 0 };

			s_rwait(&s, 1, 1);
			gn_reply(&s, REMOTE_NDIS_QUERY_CMPLT,
				 RNDIS_STATUS_SUCCESS, vid, 4);
			gn_reply(&s, REMOTE_NDIS_SET_CMPLT,
				 RNDIS_STATUS_SUCCESS, NULL, 0);
			gn_reply(&s, REMOTE_NDIS_KEEPALIVE_CMPLT,
				 RNDIS_STATUS_SUCCESS, NULL, 0);
			++g_gn_rid;			/* RESET: unanswered */
			s_rwait(&s, 1, 1);
			gn_reply(&s, REMOTE_NDIS_SET_CMPLT,
				 RNDIS_STATUS_SUCCESS, NULL, 0);
			g_gn_last = true;
			gn_reply(&s, REMOTE_NDIS_SET_CMPLT,
				 RNDIS_STATUS_FAILURE, NULL, 0);
		}
		gn_teardown(&s, sbuf, rss);
		write_seed("guest_netvsc", v == 0 ? "bringup-rx" :
			   v == 1 ? "nvsp6-bounce-ctl" : v == 2 ? "rss-mtu" :
			   "nvsp4-hostile-rx", &s);
	}
}

/* ============================== guest_echo ============================== */

/* An echo of a frame (magic, length, seq) with len payload bytes. */
static void ge_echo(struct sb *s, uint64_t seq, uint32_t len,
		    uint32_t claimed)
{
	uint8_t p[1100];

	memset(p, 0, sizeof(p));
	hv_put_le32(p, 0x4F484345u);
	hv_put_le32(p + 4, claimed);
	hv_put_le64(p + 8, seq);
	for (uint32_t i = 0; i < len; i++)
		p[16 + i] = (uint8_t)(i * 7u + 3u);
	s_rwait(s, 1, 1);
	s_ring(s, 1, 0, VMBUS_PACKET_TYPE_DATA_INBAND, 0, seq, p, 16 + len);
}

static void seeds_guest_echo(void)
{
	struct sb s;

	/* 0: three round trips; 1: round trips, then a stream with a
	 * stale, a bad and a too-large echo; 2: small rings, rescind. */
	for (int v = 0; v < 3; v++) {
		memset(&s, 0, sizeof(s));
		put8(&s, v == 1 ? 0x0c : v == 2 ? 0x03 : 0);
		connect53(&s, false);
		open_ok(&s, 1, 0x10000, 1);
		ge_echo(&s, 1, 0, 0);
		ge_echo(&s, 2, 24, 24);
		ge_echo(&s, 3, 1000, 1000);
		if (v == 1) {
			ge_echo(&s, 4, 0, 0);
			ge_echo(&s, 5, 8, 8);
			ge_echo(&s, 6, 16, 16);
			ge_echo(&s, 2, 8, 8);		/* out of order */
			ge_echo(&s, 8, 16, 1000);	/* length lies */
		}
		if (v == 2) {
			m_rescind(&s, 1);
			close_ok(&s, 0x10000);
		} else {
			close_ok(&s, 0x10000);
		}
		unload_ok(&s);
		write_seed("guest_echo", v == 0 ? "roundtrips" :
			   v == 1 ? "stream" : "rescind", &s);
	}
}

/* ============================== host_switch ============================= */

/* A frame from port p with MAC selectors (fuzz_host_switch.c alphabet:
 * 0-4 unicast, 5 zero, 6 broadcast, 7 multicast). */
static void sw_frame(struct sb *s, uint8_t port, bool tagged, uint16_t tci,
		     uint16_t len, uint8_t dst, uint8_t src)
{
	put8(s, 0);
	put8(s, port);
	put8(s, (uint8_t)(2 | (tagged ? 1 : 0)));
	if (tagged)
		put16(s, tci);
	put16(s, len);
	put8(s, dst);
	put8(s, src);
}

static void seeds_host_switch(void)
{
	struct sb s;

	/* learning between three trunks: broadcast, then unicast both
	 * ways, a frame to a MAC on its own port, a move */
	memset(&s, 0, sizeof(s));
	put8(&s, 1);				/* 3 ports */
	put8(&s, 0);
	put8(&s, 0);
	put8(&s, 0);
	sw_frame(&s, 0, false, 0, 60, 6, 0);
	sw_frame(&s, 1, false, 0, 60, 0, 1);
	sw_frame(&s, 0, false, 0, 1514, 1, 0);
	sw_frame(&s, 0, false, 0, 64, 0, 2);	/* own port */
	sw_frame(&s, 2, false, 0, 60, 7, 0);	/* multicast; 0 moved */
	sw_frame(&s, 1, false, 0, 60, 0, 1);
	write_seed("host_switch", "learning", &s);

	/* VLANs: access ports 1, 1, 2 and a trunk; tagged and untagged,
	 * a wrong tag on an access port, priority tags */
	memset(&s, 0, sizeof(s));
	put8(&s, 2);				/* 4 ports */
	put8(&s, 1);
	put8(&s, 1);
	put8(&s, 2);
	put8(&s, 0);
	sw_frame(&s, 0, false, 0, 60, 6, 0);
	sw_frame(&s, 3, true, 2, 60, 6, 3);
	sw_frame(&s, 3, true, 1, 60, 0, 3);
	sw_frame(&s, 0, false, 0, 60, 3, 0);
	sw_frame(&s, 0, true, 5, 60, 6, 0);	/* wrong VLAN: dropped */
	sw_frame(&s, 1, true, 0xa001, 60, 0, 1);	/* PCP 5, VLAN 1 */
	sw_frame(&s, 3, true, 0x6000, 60, 6, 4);	/* priority tag */
	sw_frame(&s, 2, false, 0, 9216, 6, 2);	/* jumbo */
	write_seed("host_switch", "vlans", &s);

	/* runts and oversized frames, a refusing NIC, ports closing and
	 * opening again */
	memset(&s, 0, sizeof(s));
	put8(&s, 3);				/* 5 ports */
	put8(&s, 0);
	put8(&s, 0x80);				/* VLAN 4094 */
	put8(&s, 0);
	put8(&s, 0x81);
	put8(&s, 0);
	sw_frame(&s, 0, false, 0, 13, 6, 0);
	sw_frame(&s, 0, false, 0, 14, 6, 0);
	sw_frame(&s, 0, false, 0, 9217, 6, 0);
	sw_frame(&s, 1, false, 0, 60, 6, 1);
	put8(&s, 2);
	put8(&s, 3);				/* port 3 refuses */
	sw_frame(&s, 0, true, 4094, 60, 6, 0);
	sw_frame(&s, 0, false, 0, 60, 1, 0);
	put8(&s, 1);
	put8(&s, 1);				/* close port 1 */
	sw_frame(&s, 0, false, 0, 60, 1, 0);	/* unknown again: flood */
	put8(&s, 1);
	put8(&s, 1);				/* port 1 back */
	sw_frame(&s, 1, false, 0, 60, 0, 1);
	put8(&s, 2);
	put8(&s, 3);
	sw_frame(&s, 4, false, 0, 60, 6, 4);
	write_seed("host_switch", "runts-refusals-ports", &s);

	/* raw frames: an 802.1Q-looking frame, a multicast source */
	memset(&s, 0, sizeof(s));
	put8(&s, 0);				/* 2 ports */
	put8(&s, 0);
	put8(&s, 3);
	put8(&s, 0);
	put8(&s, 0);
	put8(&s, 0);
	put16(&s, 64);
	putn(&s, "\xff\xff\xff\xff\xff\xff\x01\x00\x5e\x00\x00\x01"
	     "\x81\x00\x00\x03\x08\x00", 18);
	zeros(&s, 64 - 18);
	write_seed("host_switch", "raw", &s);
}

/* ================================ host_ic =============================== */

/* A packet with the given payload into a ring image; returns the end. */
static uint32_t ring_payload(uint8_t *data, uint32_t dsize, uint32_t off,
			     uint16_t type, uint64_t tid, const uint8_t *pl,
			     uint32_t plen)
{
	uint32_t len = 16u + ((plen + 7u) & ~7u);
	static uint8_t pkt[8192];

	memset(pkt, 0, sizeof(pkt));
	hv_put_le16(pkt, type);
	hv_put_le16(pkt + 2, 2);
	hv_put_le16(pkt + 4, (uint16_t)(len / 8u));
	hv_put_le64(pkt + 8, tid);
	memcpy(pkt + 16, pl, plen);
	hv_put_le32(pkt + len + 4, off);
	for (uint32_t i = 0; i < len + 8u; i++)
		data[(off + i) % dsize] = pkt[i];
	return (off + len + 8u) % dsize;
}

/* The guest's IC answer: pipe + IC header (flags RESPONSE) + body. */
static uint32_t ic_answer(uint8_t *data, uint32_t dsize, uint32_t off,
			  uint64_t tid, uint16_t type, uint16_t sv,
			  uint32_t status, const uint8_t *body, uint16_t blen)
{
	static uint8_t m[4096];

	memset(m, 0, sizeof(m));
	hv_put_le32(m, IC_PIPE_FLAG_DATA);
	hv_put_le32(m + 4, 20u + blen);
	hv_put_le16(m + 8, 3);
	hv_put_le16(m + 12, type);
	hv_put_le16(m + 14, sv >> 8);
	hv_put_le16(m + 16, sv & 0xFF);
	hv_put_le16(m + 18, blen);
	hv_put_le32(m + 20, status);
	m[25] = IC_FLAGS_GUEST_RESPONSE;
	memcpy(m + 28, body, blen);
	return ring_payload(data, dsize, off, VMBUS_PACKET_TYPE_DATA_INBAND,
			    tid, m, 28u + blen);
}

static uint32_t ic_neg_answer(uint8_t *data, uint32_t dsize, uint32_t off,
			      uint16_t sv)
{
	uint8_t b[16];

	memset(b, 0, sizeof(b));
	hv_put_le16(b, 1);
	hv_put_le16(b + 2, 1);
	hv_put_le16(b + 8, 3);			/* framework 3.0 */
	hv_put_le16(b + 12, sv >> 8);
	hv_put_le16(b + 14, sv & 0xFF);
	return ic_answer(data, dsize, off, 1, IC_MSGTYPE_NEGOTIATE, 0x0100, 0,
			 b, 16);
}

static void hic_head(struct sb *s, uint8_t svc, uint32_t wi, uint8_t nops)
{
	put8(s, (uint8_t)(svc << 2 | (svc == 3 ? 1 | 0x10 : 0)));
	put32(s, wi);
	put32(s, 0);
	put32(s, 0);
	put32(s, 0);
	put32(s, HV_RING_FEAT_PENDING_SEND_SZ);
	put32(s, 0);
	put32(s, 0);
	put8(s, nops);
}

static void hic_publish(struct sb *s, uint32_t wi)
{
	put8(s, 1 | 8);
	put32(s, wi);
	put8(s, 0);				/* signal */
}

static void seeds_host_ic(void)
{
	static uint8_t data[3 * 4096];
	static const uint16_t sv[4] = { 0x0300, 0x0302, 0x0400, 0x0400 };
	static const char *const name[4] = { "heartbeat", "shutdown",
					     "timesync", "kvp" };
	uint32_t at[8], dsize = 4096;
	uint8_t b[2700];
	struct sb s;

	for (uint8_t svc = 0; svc < 4; svc++) {
		dsize = svc == 3 ? 3 * 4096 : 4096;	/* KVP: 4-page ring */
		memset(data, 0, sizeof(data));
		at[0] = 0;
		at[1] = ic_neg_answer(data, dsize, 0, sv[svc]);
		memset(b, 0, sizeof(b));
		switch (svc) {
		case 0:			/* an unsolicited heartbeat answer */
			hv_put_le64(b, 8);
			at[2] = ic_answer(data, dsize, at[1], 9,
					  IC_MSGTYPE_HEARTBEAT, 0x0300, 0, b,
					  40);
			at[3] = at[2];
			break;
		case 1:			/* shutdown accepted */
			at[2] = ic_answer(data, dsize, at[1], 2,
					  IC_MSGTYPE_SHUTDOWN, 0x0302, 0, b, 40);
			at[3] = at[2];
			break;
		case 2:			/* time sync answered */
			hv_put_le64(b, 133000000000000000ull);
			at[2] = ic_answer(data, dsize, at[1], 2,
					  IC_MSGTYPE_TIMESYNC, 0x0400, 0, b, 24);
			at[3] = at[2];
			break;
		default: {		/* KVP: the host's walk of pool 0 */
			const char *k = "Key1";
			uint32_t n;

			b[0] = KVP_OP_ENUMERATE;
			b[1] = KVP_POOL_EXTERNAL;
			hv_put_le32(b + 4, 0);		/* index */
			hv_put_le32(b + 8, KVP_REG_SZ);
			for (n = 0; k[n]; n++)
				b[20 + 2 * n] = (uint8_t)k[n];
			hv_put_le32(b + 12, 2 * n + 2);
			b[20 + 512] = 'V';
			b[20 + 514] = 0xe4;		/* U+00E4 */
			b[20 + 516] = 'l';
			hv_put_le32(b + 16, 8);
			at[2] = ic_answer(data, dsize, at[1], 2,
					  IC_MSGTYPE_KVPEXCHANGE, 0x0400, 0, b,
					  2608 - 28);
			hv_put_le32(b + 4, 1);
			at[3] = ic_answer(data, dsize, at[2], 3,
					  IC_MSGTYPE_KVPEXCHANGE, 0x0400,
					  IC_STATUS_NO_MORE_ITEMS, b, 2608 - 28);
			break;
		}
		}
		memset(&s, 0, sizeof(s));
		hic_head(&s, svc, at[1], 7);
		put8(&s, 0);				/* NEGOTIATE answer */
		put8(&s, 4 | (uint8_t)((svc == 1 ? 6 : svc == 2 ? 5 : 0) << 3));
		put8(&s, 0x04);				/* key 1, pool 0 */
		hic_publish(&s, at[2]);
		put8(&s, 4 | (2 << 3));			/* enumerate 0 */
		put8(&s, 0);
		hic_publish(&s, at[3]);
		putn(&s, data, dsize);
		write_seed("host_ic", name[svc], &s);
	}
}

/* ============================= host_storvsp ============================= */

/* The guest->host ring image being built and its write position. */
struct hsv {
	uint8_t data[3 * 4096];
	uint32_t dsize, w;
	uint64_t tid;
	bool prewin8;
};

static uint32_t hsv_len(const struct hsv *h)
{
	return h->prewin8 ? VSTOR_PACKET_SIZE_PREWIN8 : VSTOR_PACKET_SIZE;
}

/* A packet (inband, or GPA-direct with one range of bc bytes at bo in
 * consecutive pages from pfn0) carrying the VSTOR packet p; returns the
 * end offset before it (the write_index that publishes it is h->w). */
static void hsv_put(struct hsv *h, const uint8_t *p, uint32_t bc, uint32_t bo,
		    uint64_t pfn0)
{
	uint8_t pkt[1024];
	uint32_t hdr = 16, n = 0, len;

	memset(pkt, 0, sizeof(pkt));
	if (bc) {
		n = (bo + bc + 4095u) / 4096u;
		hdr = 24u + 8u + 8u * n;
		hv_put_le32(pkt + 20, 1);
		hv_put_le32(pkt + 24, bc);
		hv_put_le32(pkt + 28, bo);
		for (uint32_t k = 0; k < n; k++)
			hv_put_le64(pkt + 32 + 8 * k, pfn0 + k);
	}
	len = hdr + ((hsv_len(h) + 7u) & ~7u);
	hv_put_le16(pkt, bc ? VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT
			    : VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(pkt + 2, (uint16_t)(hdr / 8u));
	hv_put_le16(pkt + 4, (uint16_t)(len / 8u));
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, ++h->tid);
	memcpy(pkt + hdr, p, hsv_len(h));
	hv_put_le32(pkt + len + 4, h->w);
	for (uint32_t i = 0; i < len + 8u; i++)
		h->data[(h->w + i) % h->dsize] = pkt[i];
	h->w = (h->w + len + 8u) % h->dsize;
}

static void hsv_op(struct hsv *h, uint32_t op, const void *pl, uint32_t plen)
{
	uint8_t p[64];

	memset(p, 0, sizeof(p));
	hv_put_le32(p, op);
	hv_put_le32(p + 4, VSTOR_FLAG_REQUEST_COMPLETION);
	if (plen != 0)	/* pl may be NULL then */
		memcpy(p + 12, pl, plen);
	hsv_put(h, p, 0, 0, 0);
}

static void hsv_version(struct hsv *h, uint16_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), 0, 0 };

	hsv_op(h, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION, b, 4);
}

static void hsv_init(struct hsv *h, uint16_t v)
{
	hsv_op(h, VSTOR_OPERATION_BEGIN_INITIALIZATION, NULL, 0);
	hsv_version(h, v);
	hsv_op(h, VSTOR_OPERATION_QUERY_PROPERTIES, NULL, 0);
	hsv_op(h, VSTOR_OPERATION_END_INITIALIZATION, NULL, 0);
}

/* EXECUTE_SRB: cdb to lun; data (dir VSTOR_DATA_*) of bc bytes at bo in
 * pages from pfn0 (bc 0: inband, no buffer). */
static void hsv_srb(struct hsv *h, uint8_t lun, const uint8_t *cdb,
		    uint8_t cdblen, uint8_t dir, uint32_t xfer, uint32_t bc,
		    uint32_t bo, uint64_t pfn0)
{
	uint8_t p[64];

	memset(p, 0, sizeof(p));
	hv_put_le32(p, VSTOR_OPERATION_EXECUTE_SRB);
	hv_put_le32(p + 4, VSTOR_FLAG_REQUEST_COMPLETION);
	hv_put_le16(p + 12, h->prewin8 ? VMSCSI_REQUEST_SIZE_PREWIN8
				       : VMSCSI_REQUEST_SIZE);
	p[12 + 7] = lun;
	p[12 + 8] = cdblen;
	p[12 + 9] = h->prewin8 ? VSTOR_SENSE_BUFFER_SIZE_PREWIN8
			       : VSTOR_SENSE_BUFFER_SIZE;
	p[12 + 10] = dir;
	hv_put_le32(p + 12 + 12, xfer);
	memcpy(p + 12 + 16, cdb, cdblen);
	if (!h->prewin8) {
		p[12 + 38] = VSTOR_SP_UNTAGGED;
		p[12 + 39] = VSTOR_SRB_SIMPLE_TAG_REQUEST;
		hv_put_le32(p + 12 + 40, dir == VSTOR_DATA_READ ? 0x40u :
			    dir == VSTOR_DATA_WRITE ? SRB_FLAGS_DATA_OUT : 0);
		hv_put_le32(p + 12 + 44, VSTOR_SRB_TIMEOUT_DEFAULT);
	}
	hsv_put(h, p, bc, bo, pfn0);
}

static void cdb10(uint8_t *c, uint8_t op, uint32_t lba, uint16_t n)
{
	memset(c, 0, 10);
	c[0] = op;
	c[2] = (uint8_t)(lba >> 24);
	c[3] = (uint8_t)(lba >> 16);
	c[4] = (uint8_t)(lba >> 8);
	c[5] = (uint8_t)lba;
	c[7] = (uint8_t)(n >> 8);
	c[8] = (uint8_t)n;
}

static void hsv_head(struct sb *s, uint8_t cfg, uint32_t wi, uint8_t nops)
{
	put8(s, cfg);
	put32(s, wi);
	put32(s, 0);
	put32(s, 0);
	put32(s, 0);
	put32(s, HV_RING_FEAT_PENDING_SEND_SZ);
	put32(s, 0);
	put32(s, 0);
	put8(s, nops);
}

/* Publish up to wi, signal, run the loop (completions), signal. */
static void hsv_kick(struct sb *s, uint32_t wi)
{
	put8(s, 1 | 8);
	put32(s, wi);
	put8(s, 0);
	put8(s, 4);				/* run the loop */
	put8(s, 0);
	put8(s, 0);
}

/* The guest reads everything the host sent (out read_index = write). */
static void hsv_consume(struct sb *s)
{
	put8(s, 2 | 0x10 | 0x40);
}

static void seeds_host_storvsp(void)
{
	static struct hsv h;
	uint8_t c[20] = { 0 }, inq[6] = { SCSI_INQUIRY, 0, 0, 0, 96, 0 };
	uint8_t evpd[6] = { SCSI_INQUIRY, SCSI_INQUIRY_EVPD, 0x83, 0, 255, 0 };
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0 };
	uint32_t at[4];
	struct sb s;

	/* WIN10: init, INQUIRY, READ CAPACITY, READ, WRITE (unaligned
	 * buffer over three pages), UNMAP, SYNCHRONIZE CACHE, a sub-channel
	 * request, REPORT LUNS. */
	memset(&h, 0, sizeof(h));
	h.dsize = 3 * 4096;
	hsv_init(&h, VMSTOR_PROTO_VERSION_WIN10);
	at[0] = h.w;
	hsv_srb(&h, 0, inq, 6, VSTOR_DATA_READ, 96, 96, 0, 200);
	hsv_srb(&h, 0, evpd, 6, VSTOR_DATA_READ, 255, 255, 100, 200);
	memset(c, 0, sizeof(c));
	c[0] = SCSI_READ_CAPACITY_10;
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 8, 8, 0, 201);
	cdb10(c, SCSI_READ_10, 0, 8);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 4096, 4096, 0, 201);
	cdb10(c, SCSI_WRITE_10, 8, 16);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_WRITE, 8192, 8192, 512, 202);
	at[1] = h.w;
	memset(c, 0, sizeof(c));
	c[0] = SCSI_UNMAP;
	c[8] = 24;
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_WRITE, 24, 24, 0, 210);
	cdb10(c, SCSI_SYNCHRONIZE_CACHE_10, 0, 0);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_UNKNOWN, 0, 0, 0, 0);
	{
		uint8_t n[2] = { 1, 0 };

		hsv_op(&h, VSTOR_OPERATION_CREATE_SUB_CHANNELS, n, 2);
	}
	memset(c, 0, sizeof(c));
	c[0] = SCSI_REPORT_LUNS;
	c[9] = 64;
	hsv_srb(&h, 0, c, 12, VSTOR_DATA_READ, 64, 64, 0, 211);
	hsv_srb(&h, 3, tur, 6, VSTOR_DATA_UNKNOWN, 0, 0, 0, 0);
	at[2] = h.w;
	memset(&s, 0, sizeof(s));
	hsv_head(&s, 1, 0, 14);
	hsv_kick(&s, at[0]);
	hsv_kick(&s, at[1]);
	hsv_consume(&s);
	hsv_kick(&s, at[2]);
	put8(&s, 4);
	put8(&s, 0);
	putn(&s, h.data, h.dsize);
	write_seed("host_storvsp", "win10-io", &s);

	/* 4.2 host: 6.2 refused, 4.2 accepted (48-byte packets); a write to
	 * the read-only LUN 1, a read with the disk.error fault armed, LUN 0
	 * hot-removed and added back, queue depth 2 (the ring waits). */
	memset(&h, 0, sizeof(h));
	h.dsize = 3 * 4096;
	h.prewin8 = true;
	hsv_op(&h, VSTOR_OPERATION_BEGIN_INITIALIZATION, NULL, 0);
	h.prewin8 = false;
	hsv_version(&h, VMSTOR_PROTO_VERSION_WIN10);
	h.prewin8 = true;
	hsv_version(&h, VMSTOR_PROTO_VERSION_WIN7);
	hsv_op(&h, VSTOR_OPERATION_QUERY_PROPERTIES, NULL, 0);
	hsv_op(&h, VSTOR_OPERATION_END_INITIALIZATION, NULL, 0);
	at[0] = h.w;
	cdb10(c, SCSI_WRITE_10, 0, 1);
	hsv_srb(&h, 1, c, 10, VSTOR_DATA_WRITE, 512, 512, 0, 200);
	cdb10(c, SCSI_READ_10, 4, 2);
	hsv_srb(&h, 1, c, 10, VSTOR_DATA_READ, 1024, 1024, 3584, 200);
	cdb10(c, SCSI_READ_10, 0, 8);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 4096, 4096, 0, 202);
	at[1] = h.w;
	hsv_srb(&h, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0, 0, 0, 0);
	hsv_srb(&h, 0, inq, 6, VSTOR_DATA_READ, 96, 96, 0, 203);
	hsv_op(&h, VSTOR_OPERATION_RESET_LUN, NULL, 0);
	at[2] = h.w;
	memset(&s, 0, sizeof(s));
	hsv_head(&s, 1 | 0x0C | 0x20 | 0x40, 0, 21);
	hsv_kick(&s, at[0]);
	put8(&s, 4 | (3 << 3));			/* disk.error on reads */
	put8(&s, 1 | (0 << 1) | (1 << 3));
	hsv_kick(&s, at[1]);
	put8(&s, 4 | (3 << 3));			/* off */
	put8(&s, 0);
	put8(&s, 4 | (1 << 3));			/* remove LUN 0 */
	put8(&s, 0);
	hsv_kick(&s, at[2]);
	put8(&s, 4 | (2 << 3));			/* add LUN 0, 64 KiB */
	put8(&s, 0x1e);
	put8(&s, 0);
	put8(&s, 4);
	put8(&s, 0);
	hsv_consume(&s);
	put8(&s, 0);
	put8(&s, 4);
	put8(&s, 0);
	putn(&s, h.data, h.dsize);
	write_seed("host_storvsp", "win7-faults-hotplug", &s);

	/* Hostile: I/O before init, a buffer outside guest RAM, a transfer
	 * length above the buffer, a CDB of 17 bytes, an unknown operation,
	 * then a read still at the back end when the guest closes the
	 * channel (the completion comes back to no channel). */
	memset(&h, 0, sizeof(h));
	h.dsize = 3 * 4096;
	cdb10(c, SCSI_READ_10, 0, 1);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 512, 512, 0, 200);
	hsv_op(&h, VSTOR_OPERATION_END_INITIALIZATION, NULL, 0);
	hsv_init(&h, VMSTOR_PROTO_VERSION_WIN8);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 512, 512, 0, 5000);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 4096, 512, 0, 200);
	hsv_srb(&h, 0, c, 17, VSTOR_DATA_READ, 512, 512, 0, 200);
	hsv_op(&h, 99, NULL, 0);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 512, 0, 0, 0);
	at[0] = h.w;
	cdb10(c, SCSI_READ_10, 2032, 16);
	hsv_srb(&h, 0, c, 10, VSTOR_DATA_READ, 8192, 8192, 0, 220);
	at[1] = h.w;
	memset(&s, 0, sizeof(s));
	hsv_head(&s, 1 | 0x08, 0, 8);
	hsv_kick(&s, at[0]);
	put8(&s, 1 | 8);
	put32(&s, at[1]);
	put8(&s, 0);				/* signal: submitted */
	put8(&s, 6);				/* CLOSECHANNEL */
	put8(&s, 4);
	put8(&s, 0);
	putn(&s, h.data, h.dsize);
	write_seed("host_storvsp", "hostile-close-inflight", &s);
}

/* ============================== host_netvsp ============================= */

/* Pages of fuzz_host_vsp.c's FZ_HOST_NETVSP guest. */
#define HNV_SEND_PAGE0	120u
#define HNV_SECT	6144u	/* NETVSP_SECTION_SIZE */

/* A 40-byte NVSP message, inband (or GPA-direct with one range). */
static void hnv_put(struct hsv *h, const uint8_t *m, uint32_t bc, uint32_t bo,
		    uint64_t pfn0)
{
	uint8_t pkt[512];
	uint32_t hdr = 16, n = 0, len;

	memset(pkt, 0, sizeof(pkt));
	if (bc) {
		n = (bo + bc + 4095u) / 4096u;
		hdr = 24u + 8u + 8u * n;
		hv_put_le32(pkt + 20, 1);
		hv_put_le32(pkt + 24, bc);
		hv_put_le32(pkt + 28, bo);
		for (uint32_t k = 0; k < n; k++)
			hv_put_le64(pkt + 32 + 8 * k, pfn0 + k);
	}
	len = hdr + 40u;
	hv_put_le16(pkt, bc ? VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT
			    : VMBUS_PACKET_TYPE_DATA_INBAND);
	hv_put_le16(pkt + 2, (uint16_t)(hdr / 8u));
	hv_put_le16(pkt + 4, (uint16_t)(len / 8u));
	hv_put_le16(pkt + 6, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	hv_put_le64(pkt + 8, ++h->tid);
	memcpy(pkt + hdr, m, 40);
	hv_put_le32(pkt + len + 4, h->w);
	for (uint32_t i = 0; i < len + 8u; i++)
		h->data[(h->w + i) % h->dsize] = pkt[i];
	h->w = (h->w + len + 8u) % h->dsize;
}

/*
 * n 32-byte packets of an unknown type (the host skips them) where the
 * harness's "complete receives" op writes its 32-byte completions: the
 * guest's later packets stay framed whatever the number of receives.
 */
static void hnv_fill(struct hsv *h, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t p[32];

		memset(p, 0, sizeof(p));
		hv_put_le16(p, 0x55);
		hv_put_le16(p + 2, 2);
		hv_put_le16(p + 4, 3);
		hv_put_le32(p + 28, h->w);
		for (uint32_t k = 0; k < 32; k++)
			h->data[(h->w + k) % h->dsize] = p[k];
		h->w = (h->w + 32u) % h->dsize;
	}
}

static void hnv_msg(struct hsv *h, uint32_t type, uint32_t a, uint32_t b,
		    uint32_t c)
{
	uint8_t m[40];

	memset(m, 0, sizeof(m));
	hv_put_le32(m, type);
	hv_put_le32(m + 4, a);
	hv_put_le32(m + 8, b);
	hv_put_le32(m + 12, c);
	hnv_put(h, m, 0, 0, 0);
}

/* SEND_RNDIS_PKT from a send-buffer section, or (sect NONE) from bc
 * bytes of data page dpage. */
static void hnv_rndis(struct hsv *h, uint32_t chan, uint32_t sect,
		      uint32_t size, uint32_t bc, uint32_t dpage)
{
	uint8_t m[40];

	memset(m, 0, sizeof(m));
	hv_put_le32(m, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	hv_put_le32(m + 4, chan);
	hv_put_le32(m + 8, sect);
	hv_put_le32(m + 12, size);
	hnv_put(h, m, bc, 0, HNV_SEND_PAGE0 + dpage);
}

static void hnv_bringup(struct hsv *h, uint32_t nvsp, uint32_t mtu,
			uint32_t cap)
{
	hnv_msg(h, NVSP_MSG_TYPE_INIT, nvsp, nvsp, 0);
	if (nvsp >= NVSP_PROTOCOL_VERSION_2) {
		uint8_t m[40];

		memset(m, 0, sizeof(m));
		hv_put_le32(m, NVSP_MSG2_TYPE_SEND_NDIS_CONFIG);
		hv_put_le32(m + 4, mtu);
		hv_put_le64(m + 12, cap);
		hnv_put(h, m, 0, 0, 0);
	}
	hnv_msg(h, NVSP_MSG1_TYPE_SEND_NDIS_VER, 6,
		nvsp >= NVSP_PROTOCOL_VERSION_5 ? 30 : 1, 0);
	hnv_msg(h, NVSP_MSG1_TYPE_SEND_RECV_BUF, 0x302, NVSP_RECV_BUF_ID_L, 0);
	hnv_msg(h, NVSP_MSG1_TYPE_SEND_SEND_BUF, 0x301, NVSP_SEND_BUF_ID_L, 0);
}

/* Op: the guest writes b[0..n) at offset off of its send buffer + data
 * pages (fuzz_host_vsp.c nv_action case 1). */
static void hnv_write(struct sb *s, uint32_t off, const uint8_t *b, uint16_t n)
{
	put8(s, 4 | (1 << 3));
	put8(s, 0);
	put16(s, (uint16_t)off);
	put16(s, n);
	putn(s, b, n);
}

static void hnv_loop(struct sb *s)
{
	put8(s, 4);
	put8(s, 0);
}

static void hnv_complete(struct sb *s)
{
	put8(s, 4 | (2 << 3));
	put8(s, 0x80);
}

/* Publish up to wi, signal, run the loop, complete receives, signal,
 * loop: 6 ops. */
static void hnv_kick(struct sb *s, uint32_t wi)
{
	put8(s, 1 | 8);
	put32(s, wi);
	put8(s, 0);
	hnv_loop(s);
	hnv_complete(s);
	put8(s, 0);
	hnv_loop(s);
}

static uint16_t rn_req(uint8_t *b, uint32_t type, uint32_t rid, uint32_t oid,
		       const void *info, uint32_t ilen)
{
	uint32_t len = type == REMOTE_NDIS_INITIALIZE_MSG ? 24u :
		       type == REMOTE_NDIS_KEEPALIVE_MSG ||
		       type == REMOTE_NDIS_HALT_MSG ? 12u : 28u + ilen;

	memset(b, 0, len);
	hv_put_le32(b, type);
	hv_put_le32(b + 4, len);
	hv_put_le32(b + 8, rid);
	if (type == REMOTE_NDIS_INITIALIZE_MSG) {
		hv_put_le32(b + 12, RNDIS_MAJOR_VERSION);
		hv_put_le32(b + 16, RNDIS_MINOR_VERSION);
		hv_put_le32(b + 20, RNDIS_INIT_MAX_XFERSZ_L);
	} else if (len >= 28) {
		hv_put_le32(b + 12, oid);
		hv_put_le32(b + 16, ilen);
		hv_put_le32(b + 20, ilen ? RNDIS_QUERY_REQ_INFOBUFOFFSET : 0);
		if (ilen != 0)	/* info may be NULL then */
			memcpy(b + 28, info, ilen);
	}
	return (uint16_t)len;
}

/* An RNDIS PACKET_MSG: PPIs (type, u32 value) then an IPv4 frame of
 * flen bytes, TCP (proto 6) or UDP (17). */
static uint16_t rn_packet(uint8_t *b, const uint32_t *ppi_t,
			  const uint32_t *ppi_v, unsigned nppi, uint32_t flen,
			  uint8_t proto)
{
	uint32_t ppilen = 16u * nppi, doff = 44u + ppilen;
	uint8_t *f = b + doff;

	memset(b, 0, doff + flen);
	hv_put_le32(b, REMOTE_NDIS_PACKET_MSG);
	hv_put_le32(b + 4, doff + flen);
	hv_put_le32(b + 8, doff - 8u);
	hv_put_le32(b + 12, flen);
	hv_put_le32(b + 28, nppi ? 36u : 0);
	hv_put_le32(b + 32, ppilen);
	for (unsigned i = 0; i < nppi; i++) {
		uint8_t *p = b + 44 + 16 * i;

		hv_put_le32(p, 16);
		hv_put_le32(p + 4, ppi_t[i]);
		hv_put_le32(p + 8, RNDIS_PKTINFO_OFFSET);
		hv_put_le32(p + 12, ppi_v[i]);
	}
	memset(f, 0xff, 6);			/* broadcast */
	memcpy(f + 6, "\x00\x15\x5d\x01\x02\x03", 6);
	f[12] = 0x08;				/* IPv4 */
	f[14] = 0x45;
	f[16] = (uint8_t)((flen - 14u) >> 8);
	f[17] = (uint8_t)(flen - 14u);
	f[22] = 64;
	f[23] = proto;
	memcpy(f + 26, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8);
	f[34] = 0x30;				/* ports */
	f[35] = 0x39;
	f[37] = 0x50;
	if (proto == 6)
		f[46] = 0x50;			/* TCP data offset 5 */
	else {
		f[38] = (uint8_t)((flen - 34u) >> 8);
		f[39] = (uint8_t)(flen - 34u);
	}
	for (uint32_t i = proto == 6 ? 54 : 42; i < flen; i++)
		f[i] = (uint8_t)i;
	return (uint16_t)(doff + flen);
}

static void seeds_host_netvsp(void)
{
	static struct hsv h;
	static uint8_t b[8192];
	uint32_t at[4], v;
	uint16_t n;
	struct sb s;

	/* NVSP 6.1 on one queue, frames coming from the back end: buffers,
	 * RNDIS init and MAC query through send sections, then the packet
	 * filter, a UDP send with checksum offload, a TCP LSO send and a
	 * keep-alive through GPA-direct pages; receives completed; the cable
	 * pulled; the description asked for. */
	memset(&h, 0, sizeof(h));
	h.dsize = 3 * 4096;
	hnv_bringup(&h, NVSP_PROTOCOL_VERSION_61, 1514,
		    NVSP_NDIS_CONFIG_CAP_IEEE8021Q);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 0, 24, 0, 0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 1, 28, 0, 0);
	at[0] = h.w;
	hnv_fill(&h, 8);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 0, 32, 0, 0);
	{
		uint32_t t[1] = { NDIS_PKTINFO_TYPE_CSUM };
		uint32_t cv[1] = { NDIS_TXCSUM_INFO_IPV4 | NDIS_TXCSUM_INFO_UDPCS |
				   NDIS_TXCSUM_INFO_IPCS |
				   NDIS_TXCSUM_INFO_THOFF(34) };

		n = rn_packet(b, t, cv, 1, 300, 17);
	}
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA, 1, n, 0, 0);
	{
		uint8_t lso[4096];
		uint32_t t[1] = { NDIS_PKTINFO_TYPE_LSO };
		uint32_t lv[1] = { NDIS_LSO2_INFO_MAKEIPV4(34, 1460) };
		uint16_t ln = rn_packet(lso, t, lv, 1, 3000, 6);

		hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA,
			  NVSP_SEND_BUF_SECTION_NONE, 0, ln, 4);
	}
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_CONTROL,
		  NVSP_SEND_BUF_SECTION_NONE, 0, 12, 7);
	at[1] = h.w;
	memset(&s, 0, sizeof(s));
	hsv_head(&s, 1 | 4 | 8, 0, 25);
	n = rn_req(b, REMOTE_NDIS_INITIALIZE_MSG, 1, 0, NULL, 0);
	hnv_write(&s, 0, b, n);
	n = rn_req(b, REMOTE_NDIS_QUERY_MSG, 2, OID_802_3_PERMANENT_ADDRESS,
		   NULL, 0);
	hnv_write(&s, HNV_SECT, b, n);
	hnv_kick(&s, at[0]);
	v = NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST;
	n = rn_req(b, REMOTE_NDIS_SET_MSG, 3, OID_GEN_CURRENT_PACKET_FILTER,
		   &v, 4);
	hnv_write(&s, 0, b, n);
	{
		uint32_t t[1] = { NDIS_PKTINFO_TYPE_CSUM };
		uint32_t cv[1] = { NDIS_TXCSUM_INFO_IPV4 | NDIS_TXCSUM_INFO_UDPCS |
				   NDIS_TXCSUM_INFO_IPCS |
				   NDIS_TXCSUM_INFO_THOFF(34) };

		n = rn_packet(b, t, cv, 1, 300, 17);
		hnv_write(&s, HNV_SECT, b, n);
	}
	{
		uint32_t t[1] = { NDIS_PKTINFO_TYPE_LSO };
		uint32_t lv[1] = { NDIS_LSO2_INFO_MAKEIPV4(34, 1460) };

		n = rn_packet(b, t, lv, 1, 3000, 6);
		hnv_write(&s, 4 * 4096, b, n);
	}
	n = rn_req(b, REMOTE_NDIS_KEEPALIVE_MSG, 4, 0, NULL, 0);
	hnv_write(&s, 7 * 4096, b, n);
	hnv_kick(&s, at[1]);
	hnv_complete(&s);
	put8(&s, 0);
	hnv_loop(&s);
	put8(&s, 4 | (3 << 3));			/* describe, 512 bytes */
	put8(&s, 64);
	put8(&s, 4 | (2 << 3));			/* cable out */
	put8(&s, 0);
	hnv_loop(&s);
	put8(&s, 4 | (3 << 3));			/* describe, 16 bytes */
	put8(&s, 2);
	putn(&s, h.data, h.dsize);
	write_seed("host_netvsp", "v61-bringup-traffic", &s);

	/* NVSP 5 with four queues and jumbo frames: sub-channels, offload
	 * parameters and RSS set, OID_QUERY_EX, data path switch, then both
	 * buffers revoked and the receive buffer given again. */
	memset(&h, 0, sizeof(h));
	h.dsize = 3 * 4096;
	hnv_bringup(&h, NVSP_PROTOCOL_VERSION_5, 9014,
		    NVSP_NDIS_CONFIG_CAP_IEEE8021Q | NVSP_NDIS_CONFIG_CAP_TEAMING);
	hnv_msg(&h, NVSP_MSG5_TYPE_SUBCHANNEL, NVSP_SUBCHANNEL_OP_ALLOCATE, 3,
		0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 0, 24, 0, 0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 1, 28 + 28, 0, 0);
	at[0] = h.w;
	hnv_fill(&h, 8);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_CONTROL, 0, 28 + 40 + 512 + 40,
		  0, 0);
	hnv_msg(&h, NVSP_MSG5_TYPE_OID_QUERY_EX, 0x00280180u,
		OID_GEN_MAXIMUM_FRAME_SIZE, 0);
	hnv_msg(&h, NVSP_MSG4_TYPE_SWITCH_DATA_PATH, NVSP_DATAPATH_VF, 0, 0);
	hnv_msg(&h, NVSP_MSG4_TYPE_SWITCH_DATA_PATH, NVSP_DATAPATH_SYNTHETIC,
		0, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_REVOKE_RECV_BUF, NVSP_RECV_BUF_ID_L, 0, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_REVOKE_SEND_BUF, NVSP_SEND_BUF_ID_L, 0, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_SEND_RECV_BUF, 0x302, 0x1234, 0);
	at[1] = h.w;
	memset(&s, 0, sizeof(s));
	hsv_head(&s, 1 | 0x10, 0, 15);
	n = rn_req(b, REMOTE_NDIS_INITIALIZE_MSG, 1, 0, NULL, 0);
	hnv_write(&s, 0, b, n);
	{
		uint8_t op[28];

		memset(op, 0, sizeof(op));
		op[0] = NDIS_OBJTYPE_DEFAULT;
		op[1] = NDIS_OFFLOAD_PARAMS_REV_3;
		hv_put_le16(op + 2, 28);
		op[4] = op[5] = op[6] = NDIS_OFFLOAD_PARAM_TXRX;
		op[7] = op[8] = NDIS_OFFLOAD_PARAM_TXRX;
		op[11] = op[12] = 1;		/* LSOv2 on */
		n = rn_req(b, REMOTE_NDIS_SET_MSG, 2, OID_TCP_OFFLOAD_PARAMETERS,
			   op, 28);
		hnv_write(&s, HNV_SECT, b, n);
	}
	hnv_kick(&s, at[0]);
	{
		uint8_t rp[40 + 512 + 40];

		memset(rp, 0, sizeof(rp));
		rp[0] = NDIS_OBJTYPE_RSS_PARAMS;
		rp[1] = NDIS_RSS_PARAMS_REV_2;
		hv_put_le16(rp + 2, 40);
		hv_put_le32(rp + 8, NDIS_HASH_FUNCTION_TOEPLITZ | NDIS_HASH_IPV4 |
			    NDIS_HASH_TCP_IPV4);
		hv_put_le16(rp + 12, 512);
		hv_put_le32(rp + 16, 40);
		hv_put_le16(rp + 20, 40);
		hv_put_le32(rp + 24, 40 + 512);
		for (int i = 0; i < 128; i++)
			hv_put_le32(rp + 40 + 4 * i, (uint32_t)(i % 4));
		for (int i = 0; i < 40; i++)
			rp[552 + i] = (uint8_t)(0x6d + i * 31);
		n = rn_req(b, REMOTE_NDIS_SET_MSG, 3,
			   OID_GEN_RECEIVE_SCALE_PARAMETERS, rp, sizeof(rp));
		hnv_write(&s, 0, b, n);
	}
	hnv_kick(&s, at[1]);
	putn(&s, h.data, h.dsize);
	write_seed("host_netvsp", "v5-multiqueue-revoke", &s);

	/* NVSP 1 and a hostile guest: a RNDIS send before INIT, a receive
	 * buffer of an unknown GPADL and one too small, sections beyond the
	 * buffer, RNDIS offsets outside the message, a PPI of size 0, a
	 * GPA-direct page outside RAM, an unknown NVSP type, a completion for
	 * no receive. */
	memset(&h, 0, sizeof(h));
	h.dsize = 3 * 4096;
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA, 0, 64, 0, 0);
	hnv_msg(&h, NVSP_MSG_TYPE_INIT, NVSP_PROTOCOL_VERSION_1,
		NVSP_PROTOCOL_VERSION_1, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_SEND_NDIS_VER, 6, 1, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_SEND_RECV_BUF, 0x999, 1, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_SEND_RECV_BUF, 0x301, 1, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_SEND_RECV_BUF, 0x302, 1, 0);
	hnv_msg(&h, NVSP_MSG1_TYPE_SEND_SEND_BUF, 0x301, 2, 0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA, 5, 64, 0, 0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA, 0, HNV_SECT + 1, 0, 0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA, 0, 200, 0, 0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA, 1, 200, 0, 0);
	hnv_rndis(&h, NVSP_RNDIS_CHANNEL_TYPE_DATA,
		  NVSP_SEND_BUF_SECTION_NONE, 0, 100, 5000 - HNV_SEND_PAGE0);
	hnv_msg(&h, 999, 0, 0, 0);
	{
		uint8_t c[24];

		memset(c, 0, sizeof(c));
		hv_put_le16(c, VMBUS_PACKET_TYPE_COMP);
		hv_put_le16(c + 2, 2);
		hv_put_le16(c + 4, 3);
		hv_put_le64(c + 8, 0x100000007ull);
		hv_put_le32(c + 16, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
		hv_put_le32(c + 20, NVSP_STAT_SUCCESS);
		for (uint32_t i = 0; i < 24; i++)
			h.data[(h.w + i) % h.dsize] = c[i];
		for (uint32_t i = 0; i < 8; i++)
			h.data[(h.w + 24 + i) % h.dsize] =
				(uint8_t)(i < 4 ? 0 : h.w >> (8 * (i - 4)));
		h.w = (h.w + 32) % h.dsize;
	}
	at[0] = h.w;
	memset(&s, 0, sizeof(s));
	hsv_head(&s, 1 | 8, 0, 8);
	{
		uint32_t t[2] = { NDIS_PKTINFO_TYPE_VLAN, NDIS_PKTINFO_TYPE_CSUM };
		uint32_t pv[2] = { NDIS_VLAN_INFO_MAKE(5, 3, 0), 0x3ff0013 };

		n = rn_packet(b, t, pv, 2, 100, 17);
		hv_put_le32(b + 8, 0x7ffffff0);	/* data offset far out */
		hnv_write(&s, 0, b, n);
		n = rn_packet(b, t, pv, 2, 100, 6);
		hv_put_le32(b + 44, 0);		/* PPI of size 0 */
		hnv_write(&s, HNV_SECT, b, n);
	}
	hnv_kick(&s, at[0]);
	putn(&s, h.data, h.dsize);
	write_seed("host_netvsp", "v1-hostile", &s);
}

/* =============================== host_scsi ============================== */

static void scsi_seed(const char *name, uint8_t cfg, uint32_t nblocks,
		      uint32_t xfer, const uint8_t *cdb, uint8_t cdb_len,
		      const uint8_t *dout, uint32_t dlen)
{
	struct sb s;
	uint8_t c16[16] = { 0 };

	memcpy(c16, cdb, cdb_len);
	memset(&s, 0, sizeof(s));
	put8(&s, cfg);
	put32(&s, nblocks);
	put16(&s, 2048);		/* max transfer blocks */
	put16(&s, 8192);		/* max unmap blocks */
	put8(&s, 15);			/* max unmap descriptors - 1 */
	put8(&s, 3);			/* physical block = 8 logical */
	put32(&s, xfer);
	put8(&s, 3);
	put8(&s, 0);
	put8(&s, 1);
	put8(&s, 7);			/* LUNs 0 1 7 */
	put8(&s, (uint8_t)(cdb_len - 1));
	putn(&s, c16, 16);
	putn(&s, dout, dlen);
	write_seed("host_scsi", name, &s);
}

static void seeds_host_scsi(void)
{
	uint8_t p[64];
	static const struct {
		const char *name;
		uint8_t cfg;
		uint32_t xfer;
		uint8_t len;
		uint8_t cdb[16];
	} t[] = {
		{ "tur", 0, 0, 6, { 0x00 } },
		{ "inquiry", 0, 96, 6, { 0x12, 0, 0, 0, 96 } },
		{ "vpd00", 0, 252, 6, { 0x12, 1, 0x00, 0, 252 } },
		{ "vpd80", 0, 252, 6, { 0x12, 1, 0x80, 0, 252 } },
		{ "vpd83", 0, 252, 6, { 0x12, 1, 0x83, 0, 252 } },
		{ "vpdb0", 4, 252, 6, { 0x12, 1, 0xb0, 0, 252 } },
		{ "vpdb1", 0, 252, 6, { 0x12, 1, 0xb1, 0, 252 } },
		{ "vpdb2", 4, 252, 6, { 0x12, 1, 0xb2, 0, 252 } },
		{ "rc10", 0, 8, 10, { 0x25 } },
		{ "rc16", 4, 32, 16, { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				       32 } },
		{ "read6", 0, 4096, 6, { 0x08, 0, 0, 8, 8 } },
		{ "read10", 1, 8192, 10, { 0x28, 0, 0, 0, 0, 9, 0, 0, 2 } },
		{ "read16-end", 0, 4096, 16, { 0x88, 0, 0, 0, 0, 0, 0, 0, 0x0f,
					       0xf8, 0, 0, 0, 8 } },
		{ "write10-fua", 8, 512, 10, { 0x2a, 0x08, 0, 0, 0, 1, 0, 0, 1 } },
		{ "write16-ro", 2, 512, 16, { 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0,
					      0, 0, 1 } },
		{ "sync-cache", 8, 0, 10, { 0x35 } },
		{ "mode-sense6", 8, 192, 6, { 0x1a, 0, 0x3f, 0, 192 } },
		{ "mode-sense10", 0, 256, 10, { 0x5a, 0, 0x08, 0, 0, 0, 0, 1,
						0 } },
		{ "report-luns", 0, 2056, 12, { 0xa0, 0, 0, 0, 0, 0, 0, 0, 8,
						8 } },
		{ "request-sense", 0, 18, 6, { 0x03, 0, 0, 0, 18 } },
		{ "start-stop", 0, 0, 6, { 0x1b, 0, 0, 0, 1 } },
		{ "unknown-op", 0, 0, 10, { 0xee } },
		{ "no-lu-inquiry", 0x10, 96, 6, { 0x12, 0, 0, 0, 96 } },
		{ "verify", 0, 0, 10, { 0x2f, 0, 0, 0, 0, 0, 0, 0, 4 } },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		scsi_seed(t[i].name, t[i].cfg, 4096, t[i].xfer, t[i].cdb,
			  t[i].len, NULL, 0);

	/* UNMAP with two descriptors (one past the end). */
	memset(p, 0, sizeof(p));
	hv_put_be16(p, 6 + 32);
	hv_put_be16(p + 2, 32);
	hv_put_be64(p + 8, 16);
	hv_put_be32(p + 16, 64);
	hv_put_be64(p + 24, 4090);
	hv_put_be32(p + 32, 64);
	{
		uint8_t cdb[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 40 };

		scsi_seed("unmap", 4, 4096, 40, cdb, 10, p, 40);
	}
	/* WRITE SAME(16): with UNMAP and a zero block, and with NDOB. */
	{
		uint8_t cdb[16] = { 0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 100,
				    0, 0, 0, 16 };
		uint8_t blk[512];

		memset(blk, 0, sizeof(blk));
		scsi_seed("write-same-unmap", 4, 4096, 512, cdb, 16, blk, 512);
		cdb[1] = 0x09;			/* UNMAP + NDOB */
		scsi_seed("write-same-ndob", 4, 4096, 0, cdb, 16, NULL, 0);
		cdb[1] = 0;
		memset(blk, 0x5a, sizeof(blk));
		scsi_seed("write-same-pattern", 0, 4096, 512, cdb, 16, blk, 512);
	}
}

/* ======================= reproducers of known bugs ======================= */

static void repro_storvsc_lost_completion(void)
{
	static const struct hv_guid scsi = HV_GUID_STORVSC_INIT;
	uint8_t d[64], p[64];
	struct sb s;

	memset(&s, 0, sizeof(s));
	put8(&s, 0);
	s_wait(&s, VMBUS_CHANMSG_INITIATE_CONTACT);
	m_vresp(&s, 1, 0, VMBUS_MESSAGE_CONNECTION_ID);
	s_wait(&s, VMBUS_CHANMSG_REQUESTOFFERS);
	m_offer(&s, &scsi, &inst1, 1, 0);
	m_hdr_only(&s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	open_ok(&s, 1, 0x10000, 1);
	vs_ctrl(&s, 0, NULL, 0);			/* BEGIN */
	vs_ctrl(&s, 0, NULL, 0);			/* version 6.2 */
	memset(d, 0, sizeof(d));
	hv_put_le32(d + 12, VSTOR_MAX_TRANSFER_BYTES_V);
	vs_ctrl(&s, 0, d, 24);				/* properties */
	vs_ctrl(&s, 0, NULL, 0);			/* END */
	/* REPORT LUNS is answered, and in the same batch (no event in
	 * between) comes a packet the core refuses (offset8 1): the
	 * callback returns early and the completion it already gathered is
	 * never delivered; the synchronous scan waits forever. */
	s_rwait(&s, 1, 1);
	memset(p, 0, sizeof(p));
	hv_put_le32(p, VSTOR_OPERATION_COMPLETE_IO);
	hv_put_le16(p + 12, VMSCSI_REQUEST_SIZE);
	p[14] = SRB_STATUS_SUCCESS;
	s_ring(&s, 1, 1 | 4, VMBUS_PACKET_TYPE_COMP, 0, 0, p, sizeof(p));
	put8(&s, FZP_OP_RING);
	put8(&s, 1);
	put8(&s, 0);
	put16(&s, 16);
	put16(&s, VMBUS_PACKET_TYPE_DATA_INBAND);
	put16(&s, 1);					/* offset8 1: bad */
	put16(&s, 2);
	put16(&s, 0);
	put64(&s, 0);
	write_seed("guest_storvsc", "callback-error-drops-completions-hang",
		   &s);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--crashes") == 0) {
		/* Hand-made reproducers of bugs found (docs/fuzzing.md). */
		g_root = argv[2];
		g_prefix = "";
		if (mkdir(g_root, 0755) != 0 && errno != EEXIST) {
			perror(g_root);
			return 1;
		}
		repro_storvsc_lost_completion();
		printf("gen_seeds: %u reproducers under %s\n", g_files,
		       g_root);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s [--crashes] DIR\n", argv[0]);
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
	seeds_posix_abi();
	seeds_host_abi();
	seeds_host_msg();
	seeds_host_vsp();
	seeds_control_json();
	seeds_guest_ic();
	seeds_guest_storvsc();
	seeds_guest_netvsc();
	seeds_guest_echo();
	seeds_host_switch();
	seeds_host_scsi();
	seeds_host_ic();
	seeds_host_storvsp();
	seeds_host_netvsp();
	printf("gen_seeds: %u files under %s\n", g_files, g_root);
	return 0;
}
