/*
 * host/vsp/netvsp_rndis.c - RNDIS control for the NetVSP: INITIALIZE,
 * QUERY and SET with the OIDs guests use, RESET, KEEPALIVE, HALT
 * (spec/vmbus-devices.md section 2).
 *
 * Input: one control message in the queue's private copy; every length
 * and offset is checked against that copy before use. Output: replies go
 * to the guest through receive slots (netvsp_ctrl_send).
 */
#define _GNU_SOURCE
#include <string.h>

#include "host/vsp/netvsp_priv.h"
#include "vmbus/errno.h"

#define QUERY_OUT_MAX (NETVSP_CTRL_MAX - sizeof(struct rndis_query_comp))

/* Every OID a QUERY answers, for OID_GEN_SUPPORTED_LIST. */
static const uint32_t supported_oids[] = {
	OID_GEN_SUPPORTED_LIST,
	OID_GEN_HARDWARE_STATUS,
	OID_GEN_MEDIA_SUPPORTED,
	OID_GEN_MEDIA_IN_USE,
	OID_GEN_MAXIMUM_LOOKAHEAD,
	OID_GEN_MAXIMUM_FRAME_SIZE,
	OID_GEN_LINK_SPEED,
	OID_GEN_TRANSMIT_BUFFER_SPACE,
	OID_GEN_RECEIVE_BUFFER_SPACE,
	OID_GEN_TRANSMIT_BLOCK_SIZE,
	OID_GEN_RECEIVE_BLOCK_SIZE,
	OID_GEN_VENDOR_ID,
	OID_GEN_VENDOR_DESCRIPTION,
	OID_GEN_CURRENT_PACKET_FILTER,
	OID_GEN_CURRENT_LOOKAHEAD,
	OID_GEN_DRIVER_VERSION,
	OID_GEN_MAXIMUM_TOTAL_SIZE,
	OID_GEN_MAC_OPTIONS,
	OID_GEN_MEDIA_CONNECT_STATUS,
	OID_GEN_MAXIMUM_SEND_PACKETS,
	OID_GEN_VENDOR_DRIVER_VERSION,
	OID_GEN_RECEIVE_SCALE_CAPABILITIES,
	OID_GEN_MAX_LINK_SPEED,
	OID_GEN_LINK_STATE,
	OID_GEN_FRIENDLY_NAME,
	OID_GEN_BYTES_RCV,
	OID_GEN_BYTES_XMIT,
	OID_802_3_PERMANENT_ADDRESS,
	OID_802_3_CURRENT_ADDRESS,
	OID_802_3_MULTICAST_LIST,
	OID_802_3_MAXIMUM_LIST_SIZE,
	OID_OFFLOAD_ENCAPSULATION,
	OID_TCP_OFFLOAD_CURRENT_CONFIG,
	OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES,
};

static const char vendor_desc[] = "hvsim synthetic network adapter";

/* ---- reply shaping (fault hook) ------------------------------------------------ */

/* netvsp.rndis_ctrl: corrupt one field of a reply of `len` bytes. */
static void ctrl_fault(struct hvs_netvsp *nic, uint8_t *r, uint32_t len)
{
	struct hvs_fault_args fa;
	if (!netvsp_fault(nic, "netvsp.rndis_ctrl", &fa))
		return;
	uint32_t v = (uint32_t)hvs_fault_param(&fa, "value", 0xDEADBEEF);
	uint32_t type = hv_get_le32(r);
	switch (hvs_fault_param(&fa, "field", 0)) {
	case 0: /* request id (RESET_CMPLT has none) */
		if (type != REMOTE_NDIS_RESET_CMPLT)
			hv_put_le32(r + 8, v);
		break;
	case 1:
		hv_put_le32(r + (type == REMOTE_NDIS_RESET_CMPLT ? 8 : 12), v);
		break;
	case 2:
		if (type == REMOTE_NDIS_QUERY_CMPLT && len >= 24)
			hv_put_le32(r + 16, v);
		break;
	case 3:
		if (type == REMOTE_NDIS_QUERY_CMPLT && len >= 24)
			hv_put_le32(r + 20, v);
		break;
	case 4:
		hv_put_le32(r + 4, v);
		break;
	default:
		break;
	}
}

static void reply(struct hvs_netvsp *nic, uint8_t *r, uint32_t len)
{
	ctrl_fault(nic, r, len);
	netvsp_ctrl_send(nic, r, len);
}

/* ---- QUERY ---------------------------------------------------------------------- */

static uint32_t put32(uint8_t *out, uint32_t *olen, uint32_t v)
{
	hv_put_le32(out, v);
	*olen = 4;
	return RNDIS_STATUS_SUCCESS;
}

static void offload_caps(struct hvs_netvsp *nic, uint8_t rev,
			 struct ndis_offload *o, uint32_t *size)
{
	const uint32_t enc = hv_cpu_to_le32(NDIS_OFFLOAD_ENCAP_8023);
	const uint32_t c4 = NDIS_TXCSUM_CAP_IP4OPT | NDIS_TXCSUM_CAP_TCP4OPT |
			    NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_UDP4 |
			    NDIS_TXCSUM_CAP_IP4;
	const uint32_t c6 = NDIS_TXCSUM_CAP_IP6EXT | NDIS_TXCSUM_CAP_TCP6OPT |
			    NDIS_TXCSUM_CAP_TCP6 | NDIS_TXCSUM_CAP_UDP6;

	(void)nic;
	memset(o, 0, sizeof(*o));
	*size = rev == NDIS_OFFLOAD_REV_1 ? NDIS_OFFLOAD_SIZE_6_0
		: rev == NDIS_OFFLOAD_REV_2 ? NDIS_OFFLOAD_SIZE_6_1
					    : NDIS_OFFLOAD_SIZE;
	o->ndis_hdr.ndis_type = NDIS_OBJTYPE_OFFLOAD;
	o->ndis_hdr.ndis_rev = rev;
	o->ndis_hdr.ndis_size = hv_cpu_to_le16((uint16_t)*size);
	o->ndis_csum.ncs_ip4_txenc = enc;
	o->ndis_csum.ncs_ip4_txcsum = hv_cpu_to_le32(c4);
	o->ndis_csum.ncs_ip4_rxenc = enc;
	o->ndis_csum.ncs_ip4_rxcsum = hv_cpu_to_le32(c4);
	o->ndis_csum.ncs_ip6_txenc = enc;
	o->ndis_csum.ncs_ip6_txcsum = hv_cpu_to_le32(c6);
	o->ndis_csum.ncs_ip6_rxenc = enc;
	o->ndis_csum.ncs_ip6_rxcsum = hv_cpu_to_le32(c6);
	o->ndis_lsov2.nl2_ip4_encap = enc;
	o->ndis_lsov2.nl2_ip4_maxsz = hv_cpu_to_le32(NETVSP_LSO_MAX);
	o->ndis_lsov2.nl2_ip4_minsg = hv_cpu_to_le32(NDIS_LSO_V_MIN_SEGS);
	o->ndis_lsov2.nl2_ip6_encap = enc;
	o->ndis_lsov2.nl2_ip6_maxsz = hv_cpu_to_le32(NETVSP_LSO_MAX);
	o->ndis_lsov2.nl2_ip6_minsg = hv_cpu_to_le32(NDIS_LSO_V_MIN_SEGS);
	o->ndis_lsov2.nl2_ip6_opts = hv_cpu_to_le32(NDIS_LSOV2_CAP_IP6);
}

static uint32_t oid_query(struct hvs_netvsp *nic, uint32_t oid,
			  const uint8_t *in, uint32_t ilen, uint8_t *out,
			  uint32_t *olen)
{
	uint32_t mtu = nic->se_frame_max - HVS_NET_ETH_HLEN;

	*olen = 0;
	switch (oid) {
	case OID_GEN_SUPPORTED_LIST:
		for (size_t i = 0; i < sizeof(supported_oids) / 4; i++)
			hv_put_le32(out + 4 * i, supported_oids[i]);
		*olen = (uint32_t)sizeof(supported_oids);
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_HARDWARE_STATUS:
		return put32(out, olen, NDIS_HARDWARE_STATUS_READY);
	case OID_GEN_MEDIA_SUPPORTED:
	case OID_GEN_MEDIA_IN_USE:
		return put32(out, olen, RNDIS_MEDIUM_802_3);
	case OID_GEN_MAXIMUM_LOOKAHEAD:
	case OID_GEN_CURRENT_LOOKAHEAD:
	case OID_GEN_MAXIMUM_FRAME_SIZE: /* the MTU, L3 (spec 2.6) */
		return put32(out, olen, mtu);
	case OID_GEN_LINK_SPEED:
		return put32(out, olen,
			     (uint32_t)(NETVSP_LINK_BPS / NDIS_LINK_SPEED_UNIT_BPS));
	case OID_GEN_TRANSMIT_BUFFER_SPACE:
	case OID_GEN_RECEIVE_BUFFER_SPACE:
		return put32(out, olen, 262144);
	case OID_GEN_TRANSMIT_BLOCK_SIZE:
	case OID_GEN_RECEIVE_BLOCK_SIZE:
	case OID_GEN_MAXIMUM_TOTAL_SIZE:
		return put32(out, olen, nic->se_frame_max);
	case OID_GEN_VENDOR_ID:
		return put32(out, olen, NDIS_VENDOR_ID_MICROSOFT_V);
	case OID_GEN_VENDOR_DESCRIPTION:
		memcpy(out, vendor_desc, sizeof(vendor_desc));
		*olen = sizeof(vendor_desc);
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_CURRENT_PACKET_FILTER:
		return put32(out, olen, nic->se_filter);
	case OID_GEN_DRIVER_VERSION:
		hv_put_le16(out, 0x0600); /* NDIS 6.0 */
		*olen = 2;
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_VENDOR_DRIVER_VERSION:
		return put32(out, olen, 0x00010000);
	case OID_GEN_MAC_OPTIONS:
		return put32(out, olen,
			     NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA |
				     NDIS_MAC_OPTION_TRANSFERS_NOT_PEND |
				     NDIS_MAC_OPTION_NO_LOOPBACK |
				     NDIS_MAC_OPTION_8021P_PRIORITY |
				     NDIS_MAC_OPTION_8021Q_VLAN);
	case OID_GEN_MEDIA_CONNECT_STATUS:
		return put32(out, olen, nic->nd_link_up
						? NDIS_MEDIA_STATE_CONNECTED
						: NDIS_MEDIA_STATE_DISCONNECTED);
	case OID_GEN_MAXIMUM_SEND_PACKETS:
		return put32(out, olen, NETVSP_MAX_PKTS_PER_MSG);
	case OID_GEN_RECEIVE_SCALE_CAPABILITIES: {
		struct ndis_rss_caps c;
		memset(&c, 0, sizeof(c));
		c.ndis_hdr.ndis_type = NDIS_OBJTYPE_RSS_CAPS;
		c.ndis_hdr.ndis_rev = NDIS_RSS_CAPS_REV_2;
		c.ndis_hdr.ndis_size = hv_cpu_to_le16(NDIS_RSS_CAPS_SIZE);
		c.ndis_caps = hv_cpu_to_le32(NDIS_RSS_CAP_HASH_TOEPLITZ |
					     NDIS_RSS_CAP_TCP_IPV4 |
					     NDIS_RSS_CAP_TCP_IPV6);
		c.ndis_nmsi = hv_cpu_to_le32(1);
		c.ndis_nrxr = hv_cpu_to_le32(nic->nd_max_queues);
		c.ndis_nind = hv_cpu_to_le16(NETVSP_RSS_TABLE_ADV);
		memcpy(out, &c, sizeof(c));
		*olen = sizeof(c);
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_GEN_MAX_LINK_SPEED: {
		hv_put_le64(out, NETVSP_LINK_BPS);
		hv_put_le64(out + 8, NETVSP_LINK_BPS);
		*olen = sizeof(struct ndis_max_link_speed);
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_GEN_LINK_STATE: {
		struct ndis_link_state s;
		memset(&s, 0, sizeof(s));
		s.ndis_hdr.ndis_type = NDIS_OBJTYPE_DEFAULT;
		s.ndis_hdr.ndis_rev = 1;
		s.ndis_hdr.ndis_size = hv_cpu_to_le16(sizeof(s));
		/* NDIS6 enum: 1 connected, 2 disconnected; duplex 2 full */
		s.ndis_media_connect_state = hv_cpu_to_le32(
			nic->nd_link_up ? NDIS_LINK_STATE_CONNECTED : 2u);
		s.ndis_duplex = hv_cpu_to_le32(2);
		s.ndis_xmit_link_speed = hv_cpu_to_le64(NETVSP_LINK_BPS);
		s.ndis_rcv_link_speed = hv_cpu_to_le64(NETVSP_LINK_BPS);
		memcpy(out, &s, sizeof(s));
		*olen = sizeof(s);
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_GEN_FRIENDLY_NAME: {
		uint32_t n = 0;
		for (const char *p = nic->nd_friendly; *p != '\0'; p++, n++)
			hv_put_le16(out + 2 * n, (uint8_t)*p);
		hv_put_le16(out + 2 * n, 0);
		*olen = 2 * (n + 1);
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_GEN_BYTES_RCV:
		hv_put_le64(out, nic->nd_st.ns_rx_bytes);
		*olen = 8;
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_BYTES_XMIT:
		hv_put_le64(out, nic->nd_st.ns_tx_bytes);
		*olen = 8;
		return RNDIS_STATUS_SUCCESS;
	case OID_802_3_PERMANENT_ADDRESS:
		memcpy(out, nic->nd_perm_mac, 6);
		*olen = 6;
		return RNDIS_STATUS_SUCCESS;
	case OID_802_3_CURRENT_ADDRESS:
		memcpy(out, nic->se_mac, 6);
		*olen = 6;
		return RNDIS_STATUS_SUCCESS;
	case OID_802_3_MULTICAST_LIST:
		memcpy(out, nic->se_mcast, 6u * nic->se_nmcast);
		*olen = 6u * nic->se_nmcast;
		return RNDIS_STATUS_SUCCESS;
	case OID_802_3_MAXIMUM_LIST_SIZE:
		return put32(out, olen, NETVSP_MCAST_MAX);
	case OID_OFFLOAD_ENCAPSULATION: {
		struct ndis_offload_encap e;
		memset(&e, 0, sizeof(e));
		e.ndis_hdr.ndis_type = NDIS_OBJTYPE_OFFLOAD_ENCAP;
		e.ndis_hdr.ndis_rev = NDIS_OFFLOAD_ENCAP_REV_1;
		e.ndis_hdr.ndis_size = hv_cpu_to_le16(sizeof(e));
		e.ndis_ip4_enabled = hv_cpu_to_le32(NDIS_OFFLOAD_ENCAP_SUPPORTED);
		e.ndis_ip4_encap_type = hv_cpu_to_le32(NDIS_OFFLOAD_ENCAP_8023);
		e.ndis_ip4_hdr_size = hv_cpu_to_le32(HVS_NET_ETH_HLEN);
		e.ndis_ip6_enabled = hv_cpu_to_le32(NDIS_OFFLOAD_ENCAP_SUPPORTED);
		e.ndis_ip6_encap_type = hv_cpu_to_le32(NDIS_OFFLOAD_ENCAP_8023);
		e.ndis_ip6_hdr_size = hv_cpu_to_le32(HVS_NET_ETH_HLEN);
		memcpy(out, &e, sizeof(e));
		*olen = sizeof(e);
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES:
	case OID_TCP_OFFLOAD_CURRENT_CONFIG: {
		/* the revision the guest asked for (its object header), or
		 * the one its NVSP version implies (spec 2.7) */
		uint8_t rev = nic->se_nvsp >= NVSP_PROTOCOL_VERSION_5
				      ? NDIS_OFFLOAD_REV_3
			      : nic->se_nvsp >= NVSP_PROTOCOL_VERSION_4
				      ? NDIS_OFFLOAD_REV_2
				      : NDIS_OFFLOAD_REV_1;
		if (ilen >= sizeof(struct ndis_object_hdr) &&
		    in[0] == NDIS_OBJTYPE_OFFLOAD && in[1] >= NDIS_OFFLOAD_REV_1 &&
		    in[1] <= NDIS_OFFLOAD_REV_3)
			rev = in[1];
		struct ndis_offload o;
		uint32_t size;
		offload_caps(nic, rev, &o, &size);
		memcpy(out, &o, size);
		*olen = size;
		return RNDIS_STATUS_SUCCESS;
	}
	default:
		return RNDIS_STATUS_NOT_SUPPORTED;
	}
}

static void rndis_query(struct hvs_netvsp *nic, const uint8_t *msg,
			uint32_t mlen)
{
	uint8_t r[NETVSP_CTRL_MAX];
	uint32_t rid = hv_get_le32(msg + 8), olen = 0, status;
	const uint8_t *in = NULL;
	uint32_t ilen = 0;

	if (mlen < sizeof(struct rndis_query_req)) {
		netvsp_bad(nic, "RNDIS QUERY of %u bytes", mlen);
		status = RNDIS_STATUS_INVALID_LENGTH;
		goto out;
	}
	uint32_t oid = hv_get_le32(msg + 12);
	ilen = hv_get_le32(msg + 16);
	uint32_t ioff = hv_get_le32(msg + 20);
	if (ilen != 0) {
		uint64_t abs = (uint64_t)RNDIS_HEADER_SIZE + ioff;
		if (abs < sizeof(struct rndis_query_req) || abs > mlen ||
		    ilen > mlen - abs) {
			netvsp_bad(nic, "RNDIS QUERY 0x%x: info buffer %u+%u "
				   "outside %u bytes", oid, ioff, ilen, mlen);
			status = RNDIS_STATUS_INVALID_DATA;
			goto out;
		}
		in = msg + abs;
	}
	if (hv_get_le32(msg + 24) != 0)
		nic->nd_st.ns_rsvd_nonzero++;
	status = oid_query(nic, oid, in, ilen, r + 24, &olen);
	if (status == RNDIS_STATUS_NOT_SUPPORTED)
		HVS_DEBUG(nic->nd_vm, "netvsp: %s: QUERY OID 0x%08x not "
			  "supported", nic->nd_name, oid);
out:
	if (olen > QUERY_OUT_MAX)
		olen = 0; /* cannot happen: every answer is small */
	hv_put_le32(r, REMOTE_NDIS_QUERY_CMPLT);
	hv_put_le32(r + 4, 24 + olen);
	hv_put_le32(r + 8, rid);
	hv_put_le32(r + 12, status);
	hv_put_le32(r + 16, olen);
	hv_put_le32(r + 20, olen != 0 ? RNDIS_QUERY_COMP_INFOBUFOFFSET : 0);
	reply(nic, r, 24 + olen);
}

/* ---- SET -------------------------------------------------------------------------- */

/* UTF-16LE text equals an ASCII word (case-insensitive). */
static bool utf16_is(const uint8_t *s, uint32_t bytes, const char *word)
{
	size_t n = strlen(word);
	if (bytes != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint16_t c = hv_get_le16(s + 2 * i);
		char w = word[i];
		if (c >= 'a' && c <= 'z')
			c = (uint16_t)(c - 'a' + 'A');
		if (w >= 'a' && w <= 'z')
			w = (char)(w - 'a' + 'A');
		if (c != (uint16_t)(uint8_t)w)
			return false;
	}
	return true;
}

static int hexdigit(uint16_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* OID_GEN_RNDIS_CONFIG_PARAMETER: "NetworkAddress" sets the MAC (L). */
static uint32_t set_config_param(struct hvs_netvsp *nic, const uint8_t *in,
				 uint32_t ilen)
{
	if (ilen < sizeof(struct rndis_config_param))
		return RNDIS_STATUS_INVALID_LENGTH;
	uint32_t noff = hv_get_le32(in), nlen = hv_get_le32(in + 4);
	uint32_t type = hv_get_le32(in + 8);
	uint32_t voff = hv_get_le32(in + 12), vlen = hv_get_le32(in + 16);
	if (noff > ilen || nlen > ilen - noff || voff > ilen ||
	    vlen > ilen - voff) {
		netvsp_bad(nic, "RNDIS config parameter name %u+%u value %u+%u "
			   "outside %u bytes", noff, nlen, voff, vlen, ilen);
		return RNDIS_STATUS_INVALID_DATA;
	}
	if (!utf16_is(in + noff, nlen, "NetworkAddress")) {
		HVS_DEBUG(nic->nd_vm, "netvsp: %s: config parameter ignored",
			  nic->nd_name);
		return RNDIS_STATUS_SUCCESS;
	}
	uint8_t mac[6];
	uint32_t digits = 0;
	if (type != RNDIS_CONFIG_PARAM_TYPE_STRING)
		return RNDIS_STATUS_INVALID_DATA;
	memset(mac, 0, sizeof(mac));
	for (uint32_t i = 0; 2 * i + 1 < vlen; i++) {
		uint16_t c = hv_get_le16(in + voff + 2 * i);
		if (c == 0)
			break;
		if (c == '-' || c == ':')
			continue;
		int d = hexdigit(c);
		if (d < 0 || digits >= 12)
			return RNDIS_STATUS_INVALID_DATA;
		mac[digits / 2] = (uint8_t)(mac[digits / 2] << 4 | d);
		digits++;
	}
	static const uint8_t zero[6];
	if (digits != 12 || (mac[0] & 1) || !memcmp(mac, zero, 6))
		return RNDIS_STATUS_INVALID_DATA;
	memcpy(nic->se_mac, mac, 6);
	HVS_INFO(nic->nd_vm, "netvsp: %s: MAC set to %02x:%02x:%02x:%02x:%02x:%02x",
		 nic->nd_name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return RNDIS_STATUS_SUCCESS;
}

static uint32_t set_rss(struct hvs_netvsp *nic, const uint8_t *in, uint32_t ilen)
{
	if (ilen < NDIS_RSS_PARAMS_SIZE_REV_1)
		return RNDIS_STATUS_INVALID_LENGTH;
	uint8_t type = in[0], rev = in[1];
	uint16_t size = hv_get_le16(in + 2);
	if (type != NDIS_OBJTYPE_RSS_PARAMS || rev < NDIS_RSS_PARAMS_REV_1 ||
	    rev > NDIS_RSS_PARAMS_REV_3 || size < NDIS_RSS_PARAMS_SIZE_REV_1 ||
	    size > ilen) {
		netvsp_bad(nic, "RSS parameters: type 0x%x rev %u size %u (%u "
			   "bytes)", type, rev, size, ilen);
		return RNDIS_STATUS_INVALID_DATA;
	}
	uint16_t flags = hv_get_le16(in + 4);
	if (flags & NDIS_RSS_FLAG_DISABLE) {
		nic->se_rss = false;
		return RNDIS_STATUS_SUCCESS;
	}
	uint32_t hash = hv_get_le32(in + 8);
	uint32_t indsize = hv_get_le16(in + 12), indoff = hv_get_le32(in + 16);
	uint32_t keysize = hv_get_le16(in + 20), keyoff = hv_get_le32(in + 24);
	if (!(flags & NDIS_RSS_FLAG_HASH_UNCHG) &&
	    (hash & NDIS_HASH_FUNCTION_MASK) != NDIS_HASH_FUNCTION_TOEPLITZ) {
		netvsp_bad(nic, "RSS hash function 0x%x", hash);
		return RNDIS_STATUS_INVALID_DATA;
	}
	if (!(flags & NDIS_RSS_FLAG_IND_UNCHG) &&
	    (indsize == 0 || indsize % 4 != 0 ||
	     indsize / 4 > NETVSP_RSS_TABLE_MAX || indoff > ilen ||
	     indsize > ilen - indoff)) {
		netvsp_bad(nic, "RSS indirection table %u+%u in %u bytes",
			   indoff, indsize, ilen);
		return RNDIS_STATUS_INVALID_DATA;
	}
	if (!(flags & NDIS_RSS_FLAG_KEY_UNCHG) &&
	    (keysize == 0 || keysize > NDIS_RSS_KEY_SIZE || keyoff > ilen ||
	     keysize > ilen - keyoff)) {
		netvsp_bad(nic, "RSS key %u+%u in %u bytes", keyoff, keysize,
			   ilen);
		return RNDIS_STATUS_INVALID_DATA;
	}
	if (!(flags & NDIS_RSS_FLAG_HASH_UNCHG))
		nic->se_rss_types = hash & NDIS_HASH_TYPE_MASK;
	if (!(flags & NDIS_RSS_FLAG_IND_UNCHG)) {
		nic->se_rss_n = indsize / 4;
		for (uint32_t i = 0; i < nic->se_rss_n; i++)
			nic->se_rss_table[i] = hv_get_le32(in + indoff + 4 * i);
	}
	if (!(flags & NDIS_RSS_FLAG_KEY_UNCHG)) {
		memset(nic->se_rss_key, 0, sizeof(nic->se_rss_key));
		memcpy(nic->se_rss_key, in + keyoff, keysize);
		nic->se_rss_keylen = keysize;
	}
	nic->se_rss = nic->se_rss_n > 0 && nic->se_rss_keylen > 0;
	if (nic->se_rss)
		netvsp_send_indirection(nic);
	return RNDIS_STATUS_SUCCESS;
}

static uint32_t oid_set(struct hvs_netvsp *nic, uint32_t oid,
			const uint8_t *in, uint32_t ilen)
{
	switch (oid) {
	case OID_GEN_CURRENT_PACKET_FILTER:
		if (ilen < 4)
			return RNDIS_STATUS_INVALID_LENGTH;
		nic->se_filter = hv_get_le32(in);
		if (nic->se_filter != 0)
			netvsp_rx_kick(nic); /* the interface is open */
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_CURRENT_LOOKAHEAD:
		return ilen < 4 ? RNDIS_STATUS_INVALID_LENGTH
				: RNDIS_STATUS_SUCCESS;
	case OID_802_3_MULTICAST_LIST:
		if (ilen % 6 != 0 || ilen / 6 > NETVSP_MCAST_MAX)
			return RNDIS_STATUS_INVALID_LENGTH;
		nic->se_nmcast = ilen / 6;
		memcpy(nic->se_mcast, in, ilen);
		return RNDIS_STATUS_SUCCESS;
	case OID_802_3_CURRENT_ADDRESS:
		if (ilen < 6)
			return RNDIS_STATUS_INVALID_LENGTH;
		if (in[0] & 1)
			return RNDIS_STATUS_INVALID_DATA;
		memcpy(nic->se_mac, in, 6);
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_RNDIS_CONFIG_PARAMETER:
		return set_config_param(nic, in, ilen);
	case OID_TCP_OFFLOAD_PARAMETERS: {
		/* V accepts revision >= 1, size >= 20 (spec 2.7). The host
		 * does whatever each packet's PPIs ask, so this is recorded
		 * only. */
		if (ilen < NDIS_OFFLOAD_PARAMS_SIZE_6_0)
			return RNDIS_STATUS_INVALID_LENGTH;
		uint16_t size = hv_get_le16(in + 2);
		if (in[0] != NDIS_OBJTYPE_DEFAULT || in[1] < 1 ||
		    size < NDIS_OFFLOAD_PARAMS_SIZE_6_0 || size > ilen) {
			netvsp_bad(nic, "offload parameters: type 0x%x rev %u "
				   "size %u", in[0], in[1], size);
			return RNDIS_STATUS_INVALID_DATA;
		}
		memset(&nic->se_ofl, 0, sizeof(nic->se_ofl));
		memcpy(&nic->se_ofl, in,
		       size < sizeof(nic->se_ofl) ? size : sizeof(nic->se_ofl));
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_GEN_RECEIVE_SCALE_PARAMETERS:
		return set_rss(nic, in, ilen);
	case OID_OFFLOAD_ENCAPSULATION:
		if (ilen < sizeof(struct ndis_offload_encap) ||
		    in[0] != NDIS_OBJTYPE_OFFLOAD_ENCAP)
			return RNDIS_STATUS_INVALID_DATA;
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_NETWORK_LAYER_ADDRESSES:
	case OID_GEN_TRANSPORT_HEADER_OFFSET:
		return RNDIS_STATUS_SUCCESS; /* informational */
	default:
		return RNDIS_STATUS_NOT_SUPPORTED;
	}
}

static void rndis_set(struct hvs_netvsp *nic, const uint8_t *msg,
		      uint32_t mlen)
{
	uint8_t r[sizeof(struct rndis_set_comp)];
	uint32_t rid = hv_get_le32(msg + 8), status;

	if (mlen < sizeof(struct rndis_set_req)) {
		netvsp_bad(nic, "RNDIS SET of %u bytes", mlen);
		status = RNDIS_STATUS_INVALID_LENGTH;
		goto out;
	}
	uint32_t oid = hv_get_le32(msg + 12), ilen = hv_get_le32(msg + 16);
	uint32_t ioff = hv_get_le32(msg + 20);
	const uint8_t *in = NULL;
	if (ilen != 0) {
		uint64_t abs = (uint64_t)RNDIS_HEADER_SIZE + ioff;
		if (abs < sizeof(struct rndis_set_req) || abs > mlen ||
		    ilen > mlen - abs) {
			netvsp_bad(nic, "RNDIS SET 0x%x: info buffer %u+%u "
				   "outside %u bytes", oid, ioff, ilen, mlen);
			status = RNDIS_STATUS_INVALID_DATA;
			goto out;
		}
		in = msg + abs;
	}
	static const uint8_t none[1];
	status = oid_set(nic, oid, in != NULL ? in : none, ilen);
	if (status == RNDIS_STATUS_NOT_SUPPORTED)
		HVS_DEBUG(nic->nd_vm, "netvsp: %s: SET OID 0x%08x not supported",
			  nic->nd_name, oid);
out:
	hv_put_le32(r, REMOTE_NDIS_SET_CMPLT);
	hv_put_le32(r + 4, sizeof(r));
	hv_put_le32(r + 8, rid);
	hv_put_le32(r + 12, status);
	reply(nic, r, sizeof(r));
}

/* ---- the other messages ------------------------------------------------------------ */

static void rndis_init(struct hvs_netvsp *nic, const uint8_t *msg,
		       uint32_t mlen)
{
	struct rndis_init_comp c;
	uint32_t status = RNDIS_STATUS_SUCCESS;

	if (mlen < sizeof(struct rndis_init_req)) {
		netvsp_bad(nic, "RNDIS INITIALIZE of %u bytes", mlen);
		status = RNDIS_STATUS_INVALID_LENGTH;
	} else if (hv_get_le32(msg + 12) != RNDIS_MAJOR_VERSION) {
		netvsp_bad(nic, "RNDIS version %u.%u", hv_get_le32(msg + 12),
			   hv_get_le32(msg + 16));
		status = RNDIS_STATUS_NOT_SUPPORTED;
	}
	memset(&c, 0, sizeof(c));
	c.rm_type = hv_cpu_to_le32(REMOTE_NDIS_INITIALIZE_CMPLT);
	c.rm_len = hv_cpu_to_le32(sizeof(c));
	c.rm_rid = hv_cpu_to_le32(hv_get_le32(msg + 8));
	c.rm_status = hv_cpu_to_le32(status);
	c.rm_ver_major = hv_cpu_to_le32(RNDIS_MAJOR_VERSION);
	c.rm_ver_minor = hv_cpu_to_le32(RNDIS_MINOR_VERSION);
	c.rm_devflags = hv_cpu_to_le32(RNDIS_DF_CONNECTIONLESS);
	c.rm_medium = hv_cpu_to_le32(RNDIS_MEDIUM_802_3);
	c.rm_pktmaxcnt = hv_cpu_to_le32(NETVSP_MAX_PKTS_PER_MSG);
	c.rm_pktmaxsz = hv_cpu_to_le32(NETVSP_TX_MAX);
	c.rm_align = hv_cpu_to_le32(NETVSP_ALIGN_SHIFT);
	if (status == RNDIS_STATUS_SUCCESS)
		nic->se_rndis_up = true;
	reply(nic, (uint8_t *)&c, sizeof(c));
}

uint32_t netvsp_rndis_control(struct hvs_netvsp *nic, uint8_t *msg,
			      uint32_t len)
{
	uint32_t type = hv_get_le32(msg);
	uint32_t mlen = hv_get_le32(msg + 4);
	uint8_t r[16];

	if (len < 12 || mlen < 12 || mlen > len) {
		netvsp_bad(nic, "RNDIS control message type 0x%x length %u "
			   "(%u bytes sent)", type, mlen, len);
		return NVSP_STAT_INVALID_RNDIS_PKT;
	}
	nic->nd_st.ns_ctrl_msgs++;
	switch (type) {
	case REMOTE_NDIS_INITIALIZE_MSG:
		rndis_init(nic, msg, mlen);
		break;
	case REMOTE_NDIS_HALT_MSG:
		/* no reply (spec 2.2); the guest revokes the buffers next */
		nic->se_rndis_up = false;
		break;
	case REMOTE_NDIS_QUERY_MSG:
		rndis_query(nic, msg, mlen);
		break;
	case REMOTE_NDIS_SET_MSG:
		rndis_set(nic, msg, mlen);
		break;
	case REMOTE_NDIS_RESET_MSG:
		hv_put_le32(r, REMOTE_NDIS_RESET_CMPLT);
		hv_put_le32(r + 4, 16);
		hv_put_le32(r + 8, RNDIS_STATUS_SUCCESS);
		hv_put_le32(r + 12, 0); /* addressing kept */
		reply(nic, r, 16);
		break;
	case REMOTE_NDIS_KEEPALIVE_MSG:
		hv_put_le32(r, REMOTE_NDIS_KEEPALIVE_CMPLT);
		hv_put_le32(r + 4, 16);
		hv_put_le32(r + 8, hv_get_le32(msg + 8));
		hv_put_le32(r + 12, RNDIS_STATUS_SUCCESS);
		reply(nic, r, 16);
		break;
	default:
		netvsp_bad(nic, "RNDIS message type 0x%x not supported", type);
		return NVSP_STAT_INVALID_RNDIS_PKT;
	}
	return NVSP_STAT_SUCCESS;
}
