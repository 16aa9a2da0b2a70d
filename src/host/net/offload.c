/*
 * host/net/offload.c - checksums, LSO segmentation, classification and the
 * Toeplitz hash for the host's NIC emulation (host/net/offload.h).
 *
 * Facts: IPv4 (RFC 791) and IPv6 (RFC 8200) header layouts, the Internet
 * checksum (RFC 1071) with the TCP/UDP pseudo-headers (RFC 793, 768, 8200
 * section 8.1), TCP segmentation rules of LSOv2 (spec 2.4: the guest zeroes
 * the IPv4 total length), and the Toeplitz hash of Microsoft RSS.
 */
#define _GNU_SOURCE
#include "host/net/offload.h"

#include <errno.h>
#include <string.h>

#include "hv/rndis.h"

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- checksums ------------------------------------------------------------- */

uint32_t hvs_csum_add(uint32_t sum, const uint8_t *data, size_t len)
{
	uint64_t s = sum;
	size_t i = 0;

	for (; i + 1 < len; i += 2)
		s += (uint32_t)(data[i] << 8 | data[i + 1]);
	if (i < len)
		s += (uint32_t)data[i] << 8;
	while (s >> 32)
		s = (s & 0xFFFFFFFFu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t hvs_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFFu) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Pseudo-header sum for an L4 segment of l4len bytes. */
static uint32_t pseudo_sum(const uint8_t *frame, const struct hvs_pkt_info *pi,
			   uint8_t proto, uint32_t l4len)
{
	const uint8_t *ip = frame + pi->pi_l3off;
	uint32_t s;

	if (pi->pi_ethertype == HVS_ETHERTYPE_IPV4) {
		s = hvs_csum_add(0, ip + 12, 8); /* source, destination */
		return s + proto + l4len;
	}
	s = hvs_csum_add(0, ip + 8, 32);
	return s + (l4len >> 16) + (l4len & 0xFFFFu) + proto;
}

/* ---- classification --------------------------------------------------------- */

/* Walk IPv6 extension headers from p (next header nh) up to end. */
static int ip6_walk(const uint8_t *f, uint32_t *pp, uint8_t *pnh, uint32_t end,
		    bool *frag)
{
	uint32_t p = *pp;
	uint8_t nh = *pnh;

	for (unsigned hops = 0; hops < 8; hops++) {
		uint32_t hl;
		switch (nh) {
		case 0:		/* hop-by-hop */
		case 43:	/* routing */
		case 60:	/* destination options */
			if (end - p < 8)
				return -EINVAL;
			hl = ((uint32_t)f[p + 1] + 1) * 8;
			break;
		case 51:	/* authentication header */
			if (end - p < 8)
				return -EINVAL;
			hl = ((uint32_t)f[p + 1] + 2) * 4;
			break;
		case 44:	/* fragment */
			if (end - p < 8)
				return -EINVAL;
			if ((be16(f + p + 2) & 0xFFF9u) != 0)
				*frag = true;
			hl = 8;
			break;
		default:
			*pp = p;
			*pnh = nh;
			return 0;
		}
		if (hl > end - p)
			return -EINVAL;
		nh = f[p];
		p += hl;
	}
	return -EINVAL;
}

static uint32_t l3_start(const uint8_t *f, uint32_t len, uint16_t *et)
{
	uint32_t off = 14;
	*et = be16(f + 12);
	for (unsigned d = 0; d < 2 && (*et == 0x8100u || *et == 0x88A8u); d++) {
		if (len - off < 4)
			return 0;
		*et = be16(f + off + 2);
		off += 4;
	}
	return off;
}

int hvs_pkt_classify(const uint8_t *f, uint32_t len, struct hvs_pkt_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	if (len < 14)
		return -EINVAL;
	uint16_t et;
	uint32_t off = l3_start(f, len, &et);
	if (off == 0)
		return -EINVAL;
	pi->pi_ethertype = et;
	uint32_t l4, end;
	uint8_t proto;

	if (et == HVS_ETHERTYPE_IPV4) {
		if (len - off < 20 || (f[off] >> 4) != 4)
			return -EINVAL;
		uint32_t ihl = (uint32_t)(f[off] & 0xF) * 4;
		uint32_t tot = be16(f + off + 2);
		if (ihl < 20 || tot < ihl || tot > len - off)
			return -EINVAL;
		end = off + tot;
		if ((be16(f + off + 6) & 0x3FFFu) != 0)
			pi->pi_frag = true;
		proto = f[off + 9];
		l4 = off + ihl;
	} else if (et == HVS_ETHERTYPE_IPV6) {
		if (len - off < 40 || (f[off] >> 4) != 6)
			return -EINVAL;
		uint32_t plen = be16(f + off + 4);
		if (plen > len - off - 40)
			return -EINVAL;
		end = off + 40 + plen;
		proto = f[off + 6];
		l4 = off + 40;
		if (ip6_walk(f, &l4, &proto, end, &pi->pi_frag) < 0)
			return -EINVAL;
	} else {
		return 0; /* not IP */
	}
	pi->pi_l3off = off;
	pi->pi_l3end = end;
	pi->pi_l4proto = proto;
	if (pi->pi_frag)
		return 0;
	if (proto == HVS_IPPROTO_TCP && end - l4 >= 20) {
		uint32_t thl = (uint32_t)(f[l4 + 12] >> 4) * 4;
		if (thl >= 20 && thl <= end - l4)
			pi->pi_l4off = l4;
	} else if (proto == HVS_IPPROTO_UDP && end - l4 >= 8) {
		pi->pi_l4off = l4;
	}
	return 0;
}

static void ip4_hdr_csum(uint8_t *ip)
{
	uint32_t ihl = (uint32_t)(ip[0] & 0xF) * 4;
	ip[10] = ip[11] = 0;
	put_be16(ip + 10, hvs_csum_fold(hvs_csum_add(0, ip, ihl)));
}

int hvs_csum_offload(uint8_t *frame, uint32_t len, unsigned flags,
		     uint32_t l4off)
{
	struct hvs_pkt_info pi;

	if (hvs_pkt_classify(frame, len, &pi) < 0 || pi.pi_l3off == 0)
		return -EINVAL;
	if (((flags & HVS_CSUM_IPV4) && pi.pi_ethertype != HVS_ETHERTYPE_IPV4) ||
	    ((flags & HVS_CSUM_IPV6) && pi.pi_ethertype != HVS_ETHERTYPE_IPV6))
		return -EINVAL;
	if (flags & HVS_CSUM_IPHDR) {
		if (pi.pi_ethertype != HVS_ETHERTYPE_IPV4)
			return -EINVAL;
		ip4_hdr_csum(frame + pi.pi_l3off);
	}
	if (!(flags & (HVS_CSUM_TCP | HVS_CSUM_UDP)))
		return 0;
	uint8_t proto = (flags & HVS_CSUM_TCP) ? HVS_IPPROTO_TCP
					       : HVS_IPPROTO_UDP;
	if ((flags & HVS_CSUM_TCP) && (flags & HVS_CSUM_UDP))
		return -EINVAL;
	if (pi.pi_l4off == 0 || pi.pi_l4proto != proto ||
	    (l4off != 0 && l4off != pi.pi_l4off))
		return -EINVAL;
	uint32_t l4 = pi.pi_l4off, l4len = pi.pi_l3end - l4;
	uint32_t coff = proto == HVS_IPPROTO_TCP ? 16 : 6;
	frame[l4 + coff] = frame[l4 + coff + 1] = 0;
	uint32_t s = pseudo_sum(frame, &pi, proto, l4len);
	uint16_t c = hvs_csum_fold(hvs_csum_add(s, frame + l4, l4len));
	if (proto == HVS_IPPROTO_UDP && c == 0)
		c = 0xFFFF; /* 0 means "no checksum" in UDP */
	put_be16(frame + l4 + coff, c);
	return 0;
}

unsigned hvs_csum_verify(const uint8_t *frame, uint32_t len)
{
	struct hvs_pkt_info pi;
	unsigned ok = 0;

	if (hvs_pkt_classify(frame, len, &pi) < 0 || pi.pi_l3off == 0)
		return 0;
	if (pi.pi_ethertype == HVS_ETHERTYPE_IPV4) {
		const uint8_t *ip = frame + pi.pi_l3off;
		uint32_t ihl = (uint32_t)(ip[0] & 0xF) * 4;
		if (hvs_csum_fold(hvs_csum_add(0, ip, ihl)) == 0)
			ok |= HVS_CSUM_IPHDR;
	}
	if (pi.pi_l4off == 0)
		return ok;
	uint32_t l4 = pi.pi_l4off, l4len = pi.pi_l3end - l4;
	if (pi.pi_l4proto == HVS_IPPROTO_UDP &&
	    pi.pi_ethertype == HVS_ETHERTYPE_IPV4 && be16(frame + l4 + 6) == 0)
		return ok | HVS_CSUM_UDP;
	uint32_t s = pseudo_sum(frame, &pi, pi.pi_l4proto, l4len);
	if (hvs_csum_fold(hvs_csum_add(s, frame + l4, l4len)) == 0)
		ok |= pi.pi_l4proto == HVS_IPPROTO_TCP ? HVS_CSUM_TCP
						       : HVS_CSUM_UDP;
	return ok;
}

/* ---- LSO ------------------------------------------------------------------------ */

int hvs_lso_segment(const uint8_t *f, uint32_t len, bool ipv6, uint32_t l4off,
		    uint32_t mss, uint32_t max_frame, uint8_t *scratch,
		    hvs_lso_emit_fn emit, void *arg)
{
	uint16_t et;

	if (len < 14 || mss == 0)
		return -EINVAL;
	uint32_t l3 = l3_start(f, len, &et);
	if (l3 == 0)
		return -EINVAL;
	if (!ipv6) {
		if (et != HVS_ETHERTYPE_IPV4 || len - l3 < 20 ||
		    (f[l3] >> 4) != 4)
			return -EINVAL;
		uint32_t ihl = (uint32_t)(f[l3] & 0xF) * 4;
		if (ihl < 20 || l3 + ihl != l4off || f[l3 + 9] != HVS_IPPROTO_TCP)
			return -EINVAL;
	} else {
		if (et != HVS_ETHERTYPE_IPV6 || len - l3 < 40 ||
		    (f[l3] >> 4) != 6)
			return -EINVAL;
		uint32_t p = l3 + 40;
		uint8_t nh = f[l3 + 6];
		bool frag = false;
		if (ip6_walk(f, &p, &nh, len, &frag) < 0 || frag ||
		    nh != HVS_IPPROTO_TCP || p != l4off)
			return -EINVAL;
	}
	if (l4off > len || len - l4off < 20)
		return -EINVAL;
	uint32_t thl = (uint32_t)(f[l4off + 12] >> 4) * 4;
	if (thl < 20 || thl > len - l4off)
		return -EINVAL;
	uint32_t hdrlen = l4off + thl;
	uint32_t payload = len - hdrlen;
	uint32_t first = payload < mss ? payload : mss;
	if (hdrlen > max_frame || first > max_frame - hdrlen)
		return -EINVAL;

	uint32_t seq0 = be32(f + l4off + 4);
	uint16_t id0 = ipv6 ? 0 : be16(f + l3 + 4);
	uint8_t tflags = f[l4off + 13];
	uint32_t nseg = payload == 0 ? 1 : (payload + mss - 1) / mss;
	struct hvs_pkt_info pi = { .pi_ethertype = ipv6 ? HVS_ETHERTYPE_IPV6
						       : HVS_ETHERTYPE_IPV4,
				   .pi_l3off = l3 };

	for (uint32_t i = 0; i < nseg; i++) {
		uint32_t off = i * mss;
		uint32_t seg = payload - off < mss ? payload - off : mss;
		uint8_t *s = scratch;
		memcpy(s, f, hdrlen);
		memcpy(s + hdrlen, f + hdrlen + off, seg);
		uint8_t *ip = s + l3, *th = s + l4off;
		if (!ipv6) {
			put_be16(ip + 2, (uint16_t)(hdrlen - l3 + seg));
			put_be16(ip + 4, (uint16_t)(id0 + i));
			ip4_hdr_csum(ip);
		} else {
			put_be16(ip + 4, (uint16_t)(hdrlen - l3 - 40 + seg));
		}
		put_be32(th + 4, seq0 + off);
		uint8_t fl = tflags;
		if (i + 1 < nseg)
			fl &= (uint8_t)~0x09u; /* FIN, PSH: last segment only */
		if (i > 0)
			fl &= (uint8_t)~0x80u; /* CWR: first segment only */
		th[13] = fl;
		th[16] = th[17] = 0;
		uint32_t l4len = thl + seg;
		uint32_t sum = pseudo_sum(s, &pi, HVS_IPPROTO_TCP, l4len);
		put_be16(th + 16, hvs_csum_fold(hvs_csum_add(sum, th, l4len)));
		int r = emit(arg, s, hdrlen + seg);
		if (r != 0)
			return r;
	}
	return (int)nseg;
}

/* ---- RSS ------------------------------------------------------------------------ */

uint32_t hvs_toeplitz(const uint8_t *key, uint32_t keylen, const uint8_t *in,
		      uint32_t len)
{
	uint32_t result = 0, window = 0, next = 32;

	for (uint32_t i = 0; i < 4; i++)
		window = window << 8 | (i < keylen ? key[i] : 0u);
	for (uint32_t i = 0; i < len; i++) {
		for (int b = 7; b >= 0; b--) {
			if (in[i] & (1u << b))
				result ^= window;
			uint32_t kb = next / 8 < keylen
					      ? (key[next / 8] >> (7 - next % 8)) & 1u
					      : 0u;
			window = window << 1 | kb;
			next++;
		}
	}
	return result;
}

int hvs_rss_hash(const uint8_t *frame, uint32_t len, const uint8_t *key,
		 uint32_t keylen, uint32_t types, uint32_t *hash,
		 uint32_t *type)
{
	struct hvs_pkt_info pi;
	uint8_t in[36];
	uint32_t n;

	if (hvs_pkt_classify(frame, len, &pi) < 0 || pi.pi_l3off == 0)
		return -ENOENT;
	const uint8_t *ip = frame + pi.pi_l3off;
	bool v4 = pi.pi_ethertype == HVS_ETHERTYPE_IPV4;
	uint32_t alen = v4 ? 4 : 16;
	memcpy(in, ip + (v4 ? 12 : 8), 2 * alen);
	n = 2 * alen;
	uint32_t t4 = 0, t2 = v4 ? NDIS_HASH_IPV4 : NDIS_HASH_IPV6;
	if (pi.pi_l4off != 0 && pi.pi_l4proto == HVS_IPPROTO_TCP)
		t4 = v4 ? NDIS_HASH_TCP_IPV4 : NDIS_HASH_TCP_IPV6;
	else if (pi.pi_l4off != 0 && pi.pi_l4proto == HVS_IPPROTO_UDP)
		t4 = v4 ? NDIS_HASH_UDP_IPV4 : NDIS_HASH_UDP_IPV6;
	if (t4 != 0 && (types & t4)) {
		memcpy(in + n, frame + pi.pi_l4off, 4); /* ports */
		n += 4;
		*type = t4;
	} else if (types & t2) {
		*type = t2;
	} else {
		return -ENOENT;
	}
	*hash = hvs_toeplitz(key, keylen, in, n);
	return 0;
}
