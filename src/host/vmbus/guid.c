/*
 * host/vmbus/guid.c - stable per-VM instance GUIDs.
 *
 * An offer's instance GUID must stay the same across reboots of one VM (a
 * guest keys its device names and configuration on it) and differ between
 * VMs. We derive it like a name-based (version 5) UUID: SHA-1 over a fixed
 * project namespace, the VM name (or the configured salt), the class GUID
 * and the device's per-class index; the first 16 bytes of the digest with
 * the version and variant bits set.
 */
#include <stdint.h>
#include <string.h>

#include "hv/guid.h"
#include "srv_priv.h"

struct sha1 {
	uint32_t h[5];
	uint64_t len;      /* bytes hashed */
	uint8_t blk[64];
	uint32_t fill;
};

static uint32_t rol32(uint32_t v, unsigned n)
{
	return (v << n) | (v >> (32u - n));
}

static void sha1_block(struct sha1 *c, const uint8_t *p)
{
	uint32_t w[80];
	for (unsigned i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (unsigned i = 16; i < 80; i++)
		w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

	uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3],
		 e = c->h[4];
	for (unsigned i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & cc) | (~b & d);
			k = 0x5A827999u;
		} else if (i < 40) {
			f = b ^ cc ^ d;
			k = 0x6ED9EBA1u;
		} else if (i < 60) {
			f = (b & cc) | (b & d) | (cc & d);
			k = 0x8F1BBCDCu;
		} else {
			f = b ^ cc ^ d;
			k = 0xCA62C1D6u;
		}
		uint32_t t = rol32(a, 5) + f + e + k + w[i];
		e = d;
		d = cc;
		cc = rol32(b, 30);
		b = a;
		a = t;
	}
	c->h[0] += a;
	c->h[1] += b;
	c->h[2] += cc;
	c->h[3] += d;
	c->h[4] += e;
}

static void sha1_init(struct sha1 *c)
{
	static const uint32_t iv[5] = { 0x67452301u, 0xEFCDAB89u, 0x98BADCFEu,
					0x10325476u, 0xC3D2E1F0u };
	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
	c->fill = 0;
}

static void sha1_update(struct sha1 *c, const void *data, size_t n)
{
	const uint8_t *p = data;
	c->len += n;
	while (n > 0) {
		size_t take = 64u - c->fill;
		if (take > n)
			take = n;
		memcpy(c->blk + c->fill, p, take);
		c->fill += (uint32_t)take;
		p += take;
		n -= take;
		if (c->fill == 64) {
			sha1_block(c, c->blk);
			c->fill = 0;
		}
	}
}

static void sha1_final(struct sha1 *c, uint8_t out[20])
{
	uint64_t bits = c->len * 8u;
	uint8_t pad = 0x80;
	sha1_update(c, &pad, 1);
	pad = 0;
	while (c->fill != 56)
		sha1_update(c, &pad, 1);
	uint8_t lenb[8];
	for (unsigned i = 0; i < 8; i++)
		lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha1_update(c, lenb, 8);
	for (unsigned i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
}

/* Our namespace for instance GUIDs {6d0a5c1e-3f2b-4e8a-b1c7-9e4d2a6f8b30}. */
static const struct hv_guid hvs_instance_ns =
	HV_GUID(0x6d0a5c1e, 0x3f2b, 0x4e8a, 0xb1, 0xc7, 0x9e, 0x4d, 0x2a, 0x6f,
		0x8b, 0x30);

void hvs_guid_derive(const char *salt, const struct hv_guid *class_guid,
		     uint32_t index, struct hv_guid *out)
{
	struct sha1 c;
	uint8_t dig[20];
	uint8_t idx[4];

	hv_put_le32(idx, index);
	sha1_init(&c);
	sha1_update(&c, hvs_instance_ns.g_bytes, 16);
	sha1_update(&c, salt, strlen(salt));
	sha1_update(&c, "/", 1);
	sha1_update(&c, class_guid->g_bytes, 16);
	sha1_update(&c, idx, 4);
	sha1_final(&c, dig);

	memcpy(out->g_bytes, dig, 16);
	/*
	 * Version 5 in the top nibble of Data3 and the RFC 4122 variant in
	 * Data4[0]. Data3 is little-endian on the wire: its high byte is
	 * wire byte 7.
	 */
	out->g_bytes[7] = (uint8_t)((out->g_bytes[7] & 0x0Fu) | 0x50u);
	out->g_bytes[8] = (uint8_t)((out->g_bytes[8] & 0x3Fu) | 0x80u);
}

/* Order of GUIDs in their textual form (how OVMM sorts offers). */
int hvs_guid_cmp(const struct hv_guid *a, const struct hv_guid *b)
{
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					   8, 9, 10, 11, 12, 13, 14, 15 };
	for (unsigned i = 0; i < 16; i++) {
		uint8_t x = a->g_bytes[order[i]], y = b->g_bytes[order[i]];
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

void hvs_guid_format(const struct hv_guid *g, char out[37])
{
	hv_guid_to_str(g, out);
}
