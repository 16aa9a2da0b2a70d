/*
 * host/net/offload.h - what a NIC's "hardware" does to frames: Internet
 * checksums (IPv4 header, TCP and UDP over IPv4/IPv6), TCP segmentation
 * of large sends (LSO), frame classification, and the Toeplitz RSS hash.
 *
 * Every function works on a private copy of a frame and checks every
 * offset and length it uses against the frame's length: hostile input
 * yields -EINVAL, never an access outside [frame, frame + len).
 * Pure functions: no state, no allocation, any thread.
 */
#ifndef HVS_NET_OFFLOAD_H
#define HVS_NET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HVS_ETHERTYPE_IPV4	0x0800u
#define HVS_ETHERTYPE_IPV6	0x86DDu
#define HVS_ETHERTYPE_VLAN	0x8100u
#define HVS_IPPROTO_TCP		6u
#define HVS_IPPROTO_UDP		17u

/* What a frame is, as far as offloads care. */
struct hvs_pkt_info {
	uint16_t pi_ethertype;		/* after in-band VLAN tags */
	uint32_t pi_l3off;		/* IP header, 0 if not IP */
	uint32_t pi_l3end;		/* end of the IP datagram (IP length) */
	uint32_t pi_l4off;		/* TCP/UDP header, 0 if none */
	uint8_t pi_l4proto;		/* HVS_IPPROTO_*, 0 otherwise */
	bool pi_frag;			/* an IP fragment (no L4 header use) */
};

/*
 * Classify an Ethernet frame. Returns 0 with *pi filled (pi_l3off 0 for
 * non-IP frames; pi_l4off 0 when there is no complete TCP/UDP header),
 * or -EINVAL if an IP header is truncated or inconsistent.
 */
int hvs_pkt_classify(const uint8_t *frame, uint32_t len,
		     struct hvs_pkt_info *pi);

/* Ones' complement sum of data added to sum (not folded, not inverted). */
uint32_t hvs_csum_add(uint32_t sum, const uint8_t *data, size_t len);
/* Fold and invert: the value to store in a checksum field. */
uint16_t hvs_csum_fold(uint32_t sum);

/* Transmit checksum requests (the guest's checksum PPI, spec 2.4). */
#define HVS_CSUM_IPV4	0x01u
#define HVS_CSUM_IPV6	0x02u
#define HVS_CSUM_TCP	0x04u
#define HVS_CSUM_UDP	0x08u
#define HVS_CSUM_IPHDR	0x10u

/*
 * Fill in the checksums the flags ask for, in place. l4off is the TCP/UDP
 * header offset the guest gave (0 = find it). The datagram length comes
 * from the IP header (Ethernet padding is not summed). Checksums are
 * computed from scratch: whatever the guest seeded is ignored.
 * Returns 0, or -EINVAL (the frame does not match the request).
 */
int hvs_csum_offload(uint8_t *frame, uint32_t len, unsigned flags,
		     uint32_t l4off);

/*
 * Verify the IPv4 header checksum and the TCP/UDP checksum of a frame.
 * Returns a mask of HVS_CSUM_IPHDR / HVS_CSUM_TCP / HVS_CSUM_UDP that are
 * present AND correct (a UDP checksum of 0 over IPv4 counts as correct).
 */
unsigned hvs_csum_verify(const uint8_t *frame, uint32_t len);

/* Receives each segment hvs_lso_segment() builds. Non-zero stops. */
typedef int (*hvs_lso_emit_fn)(void *arg, const uint8_t *seg, uint32_t len);

/*
 * TCP segmentation offload (LSOv2): cut the TCP payload of frame into
 * segments of at most mss bytes, each a complete frame (headers copied;
 * IPv4 total length and id (+1 per segment) / IPv6 payload length; TCP
 * sequence number; FIN and PSH only on the last segment, CWR only on the
 * first; IPv4 header and TCP checksums computed) of at most max_frame
 * bytes, built in scratch (max_frame bytes) and handed to emit. The
 * guest's IP length fields are ignored (LSO senders zero them); the
 * payload runs to the end of frame. l4off = TCP header offset.
 * Returns the number of segments (>= 1), -EINVAL (malformed, mss 0 or a
 * segment that cannot fit max_frame), or emit's non-zero value.
 */
int hvs_lso_segment(const uint8_t *frame, uint32_t len, bool ipv6,
		    uint32_t l4off, uint32_t mss, uint32_t max_frame,
		    uint8_t *scratch, hvs_lso_emit_fn emit, void *arg);

/*
 * Toeplitz hash (Microsoft RSS) of in[0..len) with key (keylen >= len + 4
 * bytes for every bit to have a window; shorter keys are zero-extended).
 */
uint32_t hvs_toeplitz(const uint8_t *key, uint32_t keylen, const uint8_t *in,
		      uint32_t len);

/*
 * RSS hash of a frame for the enabled hash types (NDIS_HASH_* bits of
 * hv/rndis.h): TCP (and, if enabled, UDP) 4-tuples, else the IP 2-tuple.
 * Returns 0 with *hash and *type (the one NDIS_HASH_* used), or -ENOENT
 * when no enabled type applies (non-IP, or type not enabled).
 */
int hvs_rss_hash(const uint8_t *frame, uint32_t len, const uint8_t *key,
		 uint32_t keylen, uint32_t types, uint32_t *hash,
		 uint32_t *type);

#endif /* HVS_NET_OFFLOAD_H */
