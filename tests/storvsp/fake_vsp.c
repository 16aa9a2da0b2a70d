/*
 * fake_vsp.c - see fake_vsp.h.
 */
#include "fake_vsp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/partition.h"
#include "host/vmbus_server.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/errno.h"

struct fake_server fake_srv;
uint8_t *fake_ram;

void fake_reset(void)
{
	memset(&fake_srv, 0, sizeof(fake_srv));
	if (fake_ram == NULL)
		fake_ram = aligned_alloc(4096, FAKE_RAM_BYTES); /* as mmap'd RAM */
	memset(fake_ram, 0, FAKE_RAM_BYTES);
}

struct hvs_channel *fake_chan_new(uint16_t sub)
{
	struct hvs_channel *ch = calloc(1, sizeof(*ch));
	ch->fc_relid = 1u + sub;
	ch->fc_sub = sub;
	snprintf(ch->fc_name, sizeof(ch->fc_name), "scsi/%u", sub);
	ch->fc_open = true;
	ch->fc_space = 1000000;
	return ch;
}

void fake_chan_free(struct hvs_channel *ch)
{
	while (ch->fc_in_head != ch->fc_in_tail)
		free(ch->fc_in[ch->fc_in_head++ % FAKE_MAX_IN]);
	free(ch);
}

void fake_push(struct hvs_channel *ch, const void *pkt, uint32_t len)
{
	uint8_t *b = malloc(len ? len : 1);
	memcpy(b, pkt, len);
	ch->fc_in[ch->fc_in_tail % FAKE_MAX_IN] = b;
	ch->fc_in_len[ch->fc_in_tail % FAKE_MAX_IN] = len;
	ch->fc_in_tail++;
}

/* ---- vsp.h ------------------------------------------------------------------ */

/* The partition is only a handle for hvs_gpa_map (host/partition.h). */
static int fake_partition;
unsigned fake_gpa_maps;

struct hvs_partition *hvs_chan_partition(const struct hvs_channel *ch)
{
	(void)ch;
	return (struct hvs_partition *)(void *)&fake_partition;
}

/* Linked with --wrap=hvs_gpa_map: the VSP's calls land here, while the
 * real partition.c (pulled in by the host core) keeps its own. */
void *__wrap_hvs_gpa_map(struct hvs_partition *p, uint64_t gpa, uint64_t len);
void *__wrap_hvs_gpa_map(struct hvs_partition *p, uint64_t gpa, uint64_t len)
{
	if (p != (struct hvs_partition *)(void *)&fake_partition || len == 0 ||
	    gpa >= FAKE_RAM_BYTES || len > FAKE_RAM_BYTES - gpa)
		return NULL;
	fake_gpa_maps++;
	return fake_ram + gpa;
}

uint32_t hvs_chan_relid(const struct hvs_channel *ch) { return ch->fc_relid; }
uint16_t hvs_chan_sub_index(const struct hvs_channel *ch) { return ch->fc_sub; }
struct hvs_vmbus *hvs_chan_server(const struct hvs_channel *ch)
{
	(void)ch;
	return (struct hvs_vmbus *)&fake_srv;
}
const char *hvs_chan_name(const struct hvs_channel *ch) { return ch->fc_name; }
void hvs_chan_set_priv(struct hvs_channel *ch, void *p) { ch->fc_priv = p; }
void *hvs_chan_priv(const struct hvs_channel *ch) { return ch->fc_priv; }
uint32_t hvs_chan_in_max_packet(const struct hvs_channel *ch)
{
	return ch->fc_open ? 128u * 1024 - 4096 - 8 : 0;
}
uint32_t hvs_chan_out_max_packet(const struct hvs_channel *ch)
{
	return hvs_chan_in_max_packet(ch);
}
bool hvs_chan_is_open(const struct hvs_channel *ch) { return ch->fc_open; }
bool hvs_chan_is_broken(const struct hvs_channel *ch) { return ch->fc_broken; }
void hvs_chan_set_broken(struct hvs_channel *ch, const char *why)
{
	(void)why;
	ch->fc_broken = true;
}
void hvs_chan_recv_done(struct hvs_channel *ch) { (void)ch; }
/* The fake sends no signals: a batch changes nothing it records. */
void hvs_chan_batch_begin(struct hvs_channel *ch) { (void)ch; }
void hvs_chan_batch_end(struct hvs_channel *ch) { (void)ch; }
void hvs_chan_mask(struct hvs_channel *ch) { (void)ch; }
uint32_t hvs_chan_unmask(struct hvs_channel *ch)
{
	return ch->fc_in_head != ch->fc_in_tail ? 1u : 0u;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

int hvs_chan_recv(struct hvs_channel *ch, struct hvs_pkt *pk, void *buf,
		  uint32_t buflen, uint32_t *needed)
{
	if (!ch->fc_open)
		return -VMBUS_ENODEV;
	if (ch->fc_broken)
		return -VMBUS_EPROTO;
	if (ch->fc_in_head == ch->fc_in_tail)
		return -VMBUS_EAGAIN;
	unsigned i = ch->fc_in_head % FAKE_MAX_IN;
	uint32_t len = ch->fc_in_len[i];
	if (len > buflen) {
		if (needed)
			*needed = len;
		return -VMBUS_ENOBUFS;
	}
	uint8_t *raw = buf;
	memcpy(raw, ch->fc_in[i], len);
	free(ch->fc_in[i]);
	ch->fc_in_head++;
	uint32_t off = le16(raw + 2) * 8u;
	if (len < 16 || le16(raw + 4) * 8u != len || off < 16 || off > len) {
		ch->fc_broken = true;
		return -VMBUS_EPROTO;
	}
	memset(pk, 0, sizeof(*pk));
	pk->pk_type = le16(raw);
	pk->pk_flags = le16(raw + 6);
	pk->pk_trans_id = le64(raw + 8);
	pk->pk_len = len;
	pk->pk_raw = raw;
	pk->pk_data = raw + off;
	pk->pk_datalen = len - off;
	if (pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
		if (off < 24) {
			ch->fc_broken = true;
			return -VMBUS_EPROTO;
		}
		uint32_t cnt = le32(raw + 20), pos = 24;
		for (uint32_t r = 0; r < cnt; r++) {
			if (pos + 8 > off)
				goto bad;
			uint32_t bc = le32(raw + pos), bo = le32(raw + pos + 4);
			if (bc == 0 || bo >= 4096)
				goto bad;
			uint64_t n = ((uint64_t)bo + bc + 4095) / 4096;
			if (n > (off - pos - 8) / 8)
				goto bad;
			pos += 8 + 8 * (uint32_t)n;
			pk->pk_gpa_bytes += bc;
		}
		if (cnt == 0)
			goto bad;
		pk->pk_range_cnt = cnt;
		pk->pk_ranges = raw + 24;
		pk->pk_ranges_len = pos - 24;
	}
	return 0;
bad:
	ch->fc_broken = true;
	return -VMBUS_EPROTO;
}

static int gpa_copy(struct hvs_channel *ch, const struct hvs_pkt *pk,
		    uint64_t off, uint8_t *p, uint32_t len, bool write)
{
	if (pk->pk_type != VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT)
		return -VMBUS_EINVAL;
	if (off > pk->pk_gpa_bytes || len > pk->pk_gpa_bytes - off)
		return -VMBUS_ERANGE;
	const uint8_t *r = pk->pk_ranges;
	for (uint32_t i = 0; i < pk->pk_range_cnt && len > 0; i++) {
		uint32_t bc = le32(r), bo = le32(r + 4);
		const uint8_t *pfns = r + 8;
		r += 8 + 8 * (((uint64_t)bo + bc + 4095) / 4096);
		if (off >= bc) {
			off -= bc;
			continue;
		}
		while (len > 0 && off < bc) {
			uint64_t a = bo + off;
			uint64_t pfn = le64(pfns + 8 * (a / 4096));
			uint32_t in = (uint32_t)(a % 4096), n = 4096 - in;
			if (n > len)
				n = len;
			if (n > bc - off)
				n = (uint32_t)(bc - off);
			if (pfn == 0 || pfn >= FAKE_RAM_BYTES / 4096) {
				ch->fc_faults++;
				return -VMBUS_EFAULT;
			}
			uint8_t *g = fake_ram + pfn * 4096 + in;
			if (write)
				memcpy(g, p, n);
			else
				memcpy(p, g, n);
			p += n;
			len -= n;
			off += n;
		}
		off = 0;
	}
	return len == 0 ? 0 : -VMBUS_ERANGE;
}

int hvs_pkt_gpa_read(struct hvs_channel *ch, const struct hvs_pkt *pk,
		     uint64_t off, void *dst, uint32_t len)
{
	return gpa_copy(ch, pk, off, dst, len, false);
}

int hvs_pkt_gpa_write(struct hvs_channel *ch, const struct hvs_pkt *pk,
		      uint64_t off, const void *src, uint32_t len)
{
	return gpa_copy(ch, pk, off, (uint8_t *)(uintptr_t)src, len, true);
}

int hvs_chan_send(struct hvs_channel *ch, uint16_t type, uint16_t flags,
		  uint64_t tid, const void *data, uint32_t len)
{
	if (!ch->fc_open)
		return -VMBUS_ENODEV;
	if (ch->fc_broken)
		return -VMBUS_EPROTO;
	if (ch->fc_space == 0) {
		ch->fc_want_signal = true;
		return -VMBUS_EAGAIN;
	}
	if (ch->fc_nout == FAKE_MAX_OUT || len > sizeof(ch->fc_out[0].fo_data))
		return -VMBUS_EMSGSIZE;
	struct fake_out *o = &ch->fc_out[ch->fc_nout++];
	o->fo_type = type;
	o->fo_flags = flags;
	o->fo_tid = tid;
	o->fo_len = len;
	memcpy(o->fo_data, data, len);
	ch->fc_space--;
	return 0;
}

/* ---- vmbus_server.h ---------------------------------------------------------- */

int hvs_vmbus_add_device(struct hvs_vmbus *s, const struct hvs_vsp_ops *ops,
			 void *arg, const struct hv_guid *class_guid,
			 const struct hv_guid *instance,
			 const struct hvs_device_opts *opts)
{
	(void)s;
	(void)class_guid;
	(void)instance;
	(void)opts;
	fake_srv.fs_ops = ops;
	fake_srv.fs_arg = arg;
	return ++fake_srv.fs_ndev;
}

int hvs_vmbus_offer_subchannel(struct hvs_vmbus *s, uint32_t primary_relid,
			       uint16_t sub_index)
{
	(void)s;
	(void)primary_relid;
	if (fake_srv.fs_sub_offers < 64)
		fake_srv.fs_sub_idx[fake_srv.fs_sub_offers++] = sub_index;
	return 100 + sub_index;
}

const char *hvs_vmbus_name(const struct hvs_vmbus *s)
{
	(void)s;
	return "vmT";
}
