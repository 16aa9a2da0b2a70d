/*
 * host/net/net.c - the --net parser, MAC derivation, and the endpoint
 * core every back end plugs into (capture, statistics, delivery).
 */
#define _GNU_SOURCE
#include "host/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/net/net_priv.h"

void hvs_net_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *hvs_net_kind_name(enum hvs_net_kind kind)
{
	switch (kind) {
	case HVS_NET_NULL: return "null";
	case HVS_NET_SWITCH: return "switch";
	case HVS_NET_TAP: return "tap";
	case HVS_NET_USER: return "user";
	}
	return "?";
}

bool hvs_net_have_slirp(void)
{
#ifdef HVS_HAVE_SLIRP
	return true;
#else
	return false;
#endif
}

bool hvs_net_have_pcap(void)
{
#ifdef HVS_HAVE_PCAP
	return true;
#else
	return false;
#endif
}

/* ---- MAC addresses ----------------------------------------------------------- */

void hvs_net_mac_derive(const char *vm, unsigned index, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
	const char *p = vm != NULL ? vm : "vm";

	for (; *p != '\0'; p++) {
		h ^= (uint8_t)*p;
		h *= 0x100000001b3ull;
	}
	for (unsigned i = 0; i < 5; i++) {
		h ^= i == 0 ? 0u : (uint8_t)(index >> (8 * (i - 1)));
		h *= 0x100000001b3ull;
	}
	/* Hyper-V's OUI 00:15:5d with the locally-administered bit set. */
	mac[0] = 0x02;
	mac[1] = 0x15;
	mac[2] = 0x5d;
	mac[3] = (uint8_t)(h >> 40);
	mac[4] = (uint8_t)(h >> 24);
	mac[5] = (uint8_t)(h >> 8);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hvs_net_mac_parse(const char *s, uint8_t mac[6])
{
	if (s == NULL || strlen(s) != 17)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		if (i < 5 && s[3 * i + 2] != ':' && s[3 * i + 2] != '-')
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* ---- the specification ---------------------------------------------------- */

void hvs_net_spec_init(struct hvs_net_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->ns_kind = HVS_NET_NULL;
	spec->ns_mtu = HVS_NET_MTU_DEFAULT;
	spec->ns_queues = HVS_NET_DEFAULT_QUEUES;
	spec->ns_net = 0x0A000200u; /* 10.0.2.0 */
	spec->ns_prefix = 24;
	spec->ns_ipv6 = true;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_ip4(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (*s == '\0') {
		*out = 0;
		return 0;
	}
	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

/* "[ADDR]:PORT" */
static int parse_addr_port(char *s, uint32_t *addr, uint16_t *port)
{
	char *colon = strrchr(s, ':');
	uint64_t v;
	if (colon == NULL)
		return -EINVAL;
	*colon = '\0';
	if (parse_ip4(s, addr) < 0 || parse_u64(colon + 1, 1, 65535, &v) < 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
static int parse_hostfwd(const char *val, struct hvs_net_hostfwd *hf)
{
	char tmp[128];
	if (strlen(val) >= sizeof(tmp))
		return -EINVAL;
	strcpy(tmp, val);
	char *colon = strchr(tmp, ':');
	if (colon == NULL)
		return -EINVAL;
	*colon = '\0';
	if (tmp[0] == '\0' || !strcmp(tmp, "tcp"))
		hf->hf_udp = false;
	else if (!strcmp(tmp, "udp"))
		hf->hf_udp = true;
	else
		return -EINVAL;
	char *host = colon + 1;
	char *dash = strchr(host, '-');
	if (dash == NULL)
		return -EINVAL;
	*dash = '\0';
	if (parse_addr_port(host, &hf->hf_host_addr, &hf->hf_host_port) < 0 ||
	    parse_addr_port(dash + 1, &hf->hf_guest_addr, &hf->hf_guest_port) < 0)
		return -EINVAL;
	return 0;
}

static int parse_net(const char *val, uint32_t *net, uint32_t *prefix)
{
	char tmp[32];
	uint64_t p;
	if (strlen(val) >= sizeof(tmp))
		return -EINVAL;
	strcpy(tmp, val);
	char *slash = strchr(tmp, '/');
	if (slash == NULL)
		return -EINVAL;
	*slash = '\0';
	/* at least 32 addresses: .2 host, .3 DNS, .15 first lease */
	if (tmp[0] == '\0' || parse_ip4(tmp, net) < 0 ||
	    parse_u64(slash + 1, 8, 27, &p) < 0)
		return -EINVAL;
	uint32_t mask = ~0u << (32 - p);
	if ((*net & ~mask) != 0)
		return -EINVAL;
	*prefix = (uint32_t)p;
	return 0;
}

/*
 * Split the next comma-separated token of *pp into tok (",," = one comma).
 * Returns false at the end.
 */
static bool next_token(const char **pp, char *tok, size_t cap, bool *toolong)
{
	const char *p = *pp;
	size_t n = 0;

	if (p == NULL)
		return false;
	*toolong = false;
	for (;;) {
		if (*p == ',' && p[1] == ',') {
			if (n + 1 < cap)
				tok[n++] = ',';
			else
				*toolong = true;
			p += 2;
			continue;
		}
		if (*p == ',' || *p == '\0')
			break;
		if (n + 1 < cap)
			tok[n++] = *p;
		else
			*toolong = true;
		p++;
	}
	tok[n] = '\0';
	*pp = *p == ',' ? p + 1 : NULL;
	return true;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n == 0 || n >= cap)
		return -EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

int hvs_net_parse(const char *arg, struct hvs_net_spec *out, char *err,
		  size_t errlen)
{
	struct hvs_net_spec s;
	char tok[HVS_NET_PATH_MAX + 16];
	const char *p = arg;
	bool toolong, have_vlan = false, have_user_opt = false;
	bool have_gen_opt = false, have_count = false;
	uint64_t v;

	hvs_net_spec_init(&s);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (arg == NULL || *arg == '\0') {
		hvs_net_errf(err, errlen, "empty network specification");
		return -EINVAL;
	}
	next_token(&p, tok, sizeof(tok), &toolong);
	char *eq = strchr(tok, '=');
	const char *kval = eq != NULL ? eq + 1 : NULL;
	if (eq != NULL)
		*eq = '\0';
	if (!strcmp(tok, "switch")) {
		s.ns_kind = HVS_NET_SWITCH;
		if (copy_str(s.ns_arg, sizeof(s.ns_arg),
			     kval != NULL ? kval : "default") < 0) {
			hvs_net_errf(err, errlen, "switch name must be 1..%u bytes",
				     HVS_NET_NAME_MAX - 1);
			return -EINVAL;
		}
	} else if (!strcmp(tok, "tap")) {
		s.ns_kind = HVS_NET_TAP;
		/* IFNAMSIZ is 16 with the NUL */
		if (kval == NULL || *kval == '\0' || strlen(kval) > 15 ||
		    strchr(kval, '/') != NULL || strchr(kval, ' ') != NULL) {
			hvs_net_errf(err, errlen,
				     "tap needs an interface name of 1..15 "
				     "bytes: tap=IFNAME");
			return -EINVAL;
		}
		strcpy(s.ns_arg, kval);
	} else if (!strcmp(tok, "user") || !strcmp(tok, "null")) {
		s.ns_kind = tok[0] == 'u' ? HVS_NET_USER : HVS_NET_NULL;
		if (kval != NULL) {
			hvs_net_errf(err, errlen, "'%s' takes no '=' value", tok);
			return -EINVAL;
		}
	} else {
		hvs_net_errf(err, errlen,
			     "unknown network back end '%s' (switch, tap, user, "
			     "null)", tok);
		return -EINVAL;
	}

	while (next_token(&p, tok, sizeof(tok), &toolong)) {
		char *e = strchr(tok, '=');
		if (toolong) {
			hvs_net_errf(err, errlen, "option too long");
			return -EINVAL;
		}
		if (e == NULL) {
			hvs_net_errf(err, errlen, "option '%s' needs a value",
				     tok);
			return -EINVAL;
		}
		*e = '\0';
		const char *k = tok, *val = e + 1;
		if (!strcmp(k, "pcap")) {
			if (copy_str(s.ns_pcap, sizeof(s.ns_pcap), val) < 0) {
				hvs_net_errf(err, errlen, "pcap= needs a file");
				return -EINVAL;
			}
		} else if (!strcmp(k, "mac")) {
			if (hvs_net_mac_parse(val, s.ns_mac) < 0 ||
			    (s.ns_mac[0] & 1) != 0) {
				hvs_net_errf(err, errlen, "mac=%s: expected a "
					     "unicast xx:xx:xx:xx:xx:xx", val);
				return -EINVAL;
			}
			s.ns_have_mac = true;
		} else if (!strcmp(k, "mtu")) {
			if (parse_u64(val, HVS_NET_MTU_MIN, HVS_NET_MTU_MAX,
				      &v) < 0) {
				hvs_net_errf(err, errlen, "mtu=%s: expected %u..%u",
					     val, HVS_NET_MTU_MIN,
					     HVS_NET_MTU_MAX);
				return -EINVAL;
			}
			s.ns_mtu = (uint32_t)v;
		} else if (!strcmp(k, "queues")) {
			if (parse_u64(val, 1, HVS_NET_MAX_QUEUES, &v) < 0) {
				hvs_net_errf(err, errlen, "queues=%s: expected "
					     "1..%u", val, HVS_NET_MAX_QUEUES);
				return -EINVAL;
			}
			s.ns_queues = (uint32_t)v;
		} else if (!strcmp(k, "link")) {
			if (!strcmp(val, "up"))
				s.ns_link_down = false;
			else if (!strcmp(val, "down"))
				s.ns_link_down = true;
			else {
				hvs_net_errf(err, errlen, "link=%s: up or down",
					     val);
				return -EINVAL;
			}
		} else if (!strcmp(k, "name")) {
			if (copy_str(s.ns_friendly, sizeof(s.ns_friendly),
				     val) < 0) {
				hvs_net_errf(err, errlen, "name= must be 1..%u "
					     "bytes", HVS_NET_NAME_MAX - 1);
				return -EINVAL;
			}
		} else if (!strcmp(k, "vlan")) {
			if (parse_u64(val, 1, HVS_NET_MAX_VLAN, &v) < 0) {
				hvs_net_errf(err, errlen, "vlan=%s: expected "
					     "1..%u", val, HVS_NET_MAX_VLAN);
				return -EINVAL;
			}
			s.ns_vlan = (uint16_t)v;
			have_vlan = true;
		} else if (!strcmp(k, "net")) {
			if (parse_net(val, &s.ns_net, &s.ns_prefix) < 0) {
				hvs_net_errf(err, errlen, "net=%s: expected "
					     "A.B.C.D/N with N 8..27 and no "
					     "host bits", val);
				return -EINVAL;
			}
			have_user_opt = true;
		} else if (!strcmp(k, "ipv6")) {
			if (!strcmp(val, "on"))
				s.ns_ipv6 = true;
			else if (!strcmp(val, "off"))
				s.ns_ipv6 = false;
			else {
				hvs_net_errf(err, errlen, "ipv6=%s: on or off",
					     val);
				return -EINVAL;
			}
			have_user_opt = true;
		} else if (!strcmp(k, "hostfwd")) {
			if (s.ns_nhostfwd >= HVS_NET_MAX_HOSTFWD) {
				hvs_net_errf(err, errlen, "at most %u hostfwd=",
					     HVS_NET_MAX_HOSTFWD);
				return -EINVAL;
			}
			if (parse_hostfwd(val, &s.ns_hostfwd[s.ns_nhostfwd]) < 0) {
				hvs_net_errf(err, errlen, "hostfwd=%s: expected "
					     "[tcp|udp]:[HOSTADDR]:HOSTPORT-"
					     "[GUESTADDR]:GUESTPORT", val);
				return -EINVAL;
			}
			s.ns_nhostfwd++;
			have_user_opt = true;
		} else if (!strcmp(k, "gen")) {
			if (parse_u64(val, HVS_NET_ETH_HLEN, HVS_NET_MAX_FRAME,
				      &v) < 0) {
				hvs_net_errf(err, errlen, "gen=%s: expected "
					     "%u..%u", val, HVS_NET_ETH_HLEN,
					     HVS_NET_MAX_FRAME);
				return -EINVAL;
			}
			s.ns_gen_len = (uint32_t)v;
			have_gen_opt = true;
		} else if (!strcmp(k, "count")) {
			if (parse_u64(val, 1, UINT64_MAX, &v) < 0) {
				hvs_net_errf(err, errlen, "count=%s: expected "
					     "a positive number", val);
				return -EINVAL;
			}
			s.ns_gen_count = v;
			have_count = true;
		} else {
			hvs_net_errf(err, errlen, "unknown option '%s'", k);
			return -EINVAL;
		}
	}
	if (have_vlan && s.ns_kind != HVS_NET_SWITCH) {
		hvs_net_errf(err, errlen, "vlan= is a switch option");
		return -EINVAL;
	}
	if (have_user_opt && s.ns_kind != HVS_NET_USER) {
		hvs_net_errf(err, errlen, "net=, ipv6= and hostfwd= are user "
			     "options");
		return -EINVAL;
	}
	if ((have_gen_opt || have_count) && s.ns_kind != HVS_NET_NULL) {
		hvs_net_errf(err, errlen, "gen= and count= are null options");
		return -EINVAL;
	}
	if (have_count && !have_gen_opt) {
		hvs_net_errf(err, errlen, "count= needs gen=");
		return -EINVAL;
	}
	if (s.ns_gen_len > s.ns_mtu + HVS_NET_ETH_HLEN) {
		hvs_net_errf(err, errlen, "gen=%u is larger than the frame "
			     "size of mtu=%u", s.ns_gen_len, s.ns_mtu);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

/* ---- frames ---------------------------------------------------------------------- */

uint32_t hvs_net_frame_tagged(const struct hvs_net_frame *f, uint8_t *out,
			      uint32_t cap)
{
	if (f->nf_len < 12)
		return 0;
	if (f->nf_tci == 0) {
		if (f->nf_len > cap)
			return 0;
		memcpy(out, f->nf_data, f->nf_len);
		return f->nf_len;
	}
	if (f->nf_len + HVS_NET_VLAN_HLEN > cap)
		return 0;
	memcpy(out, f->nf_data, 12);
	out[12] = 0x81;
	out[13] = 0x00;
	out[14] = (uint8_t)(f->nf_tci >> 8);
	out[15] = (uint8_t)f->nf_tci;
	memcpy(out + 16, f->nf_data + 12, f->nf_len - 12);
	return f->nf_len + HVS_NET_VLAN_HLEN;
}

bool hvs_net_frame_untag(uint8_t *buf, uint32_t *len, uint16_t *tci)
{
	if (*len < HVS_NET_ETH_HLEN + HVS_NET_VLAN_HLEN)
		return false;
	uint16_t tpid = (uint16_t)(buf[12] << 8 | buf[13]);
	if (tpid != 0x8100 && tpid != 0x88A8)
		return false;
	*tci = (uint16_t)(buf[14] << 8 | buf[15]);
	memmove(buf + 12, buf + 16, *len - 16);
	*len -= HVS_NET_VLAN_HLEN;
	return true;
}

/* ---- endpoints ------------------------------------------------------------------- */

int hvs_net_open(struct hvs_loop *loop, const struct hvs_net_spec *spec,
		 const char *name, const struct hvs_net_nic_ops *ops,
		 void *arg, struct hvs_net_ep **out, char *err, size_t errlen)
{
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (loop == NULL || spec == NULL || ops == NULL || ops->no_rx == NULL ||
	    out == NULL) {
		hvs_net_errf(err, errlen, "bad arguments");
		return -EINVAL;
	}
	struct hvs_net_ep *ep = calloc(1, sizeof(*ep));
	if (ep == NULL) {
		hvs_net_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ep->ep_kind = spec->ns_kind;
	ep->ep_loop = loop;
	ep->ep_nic = ops;
	ep->ep_nic_arg = arg;
	snprintf(ep->ep_name, sizeof(ep->ep_name), "%s",
		 name != NULL ? name : "net");
	if (spec->ns_pcap[0] != '\0') {
		r = hvs_pcap_open(spec->ns_pcap, &ep->ep_pcap, err, errlen);
		if (r < 0) {
			free(ep);
			return r;
		}
	}
	switch (spec->ns_kind) {
	case HVS_NET_NULL:
		r = hvs_net_null_open(ep, spec, err, errlen);
		break;
	case HVS_NET_SWITCH:
		r = hvs_net_switch_open(ep, spec, err, errlen);
		break;
	case HVS_NET_TAP:
		r = hvs_net_tap_open(ep, spec, err, errlen);
		break;
	case HVS_NET_USER:
		r = hvs_net_slirp_open(ep, spec, err, errlen);
		break;
	default:
		hvs_net_errf(err, errlen, "unknown back end");
		r = -EINVAL;
		break;
	}
	if (r < 0) {
		hvs_pcap_close(ep->ep_pcap);
		free(ep);
		return r;
	}
	*out = ep;
	return 0;
}

void hvs_net_close(struct hvs_net_ep *ep)
{
	if (ep == NULL)
		return;
	if (ep->ep_ops != NULL && ep->ep_ops->bo_close != NULL)
		ep->ep_ops->bo_close(ep);
	hvs_pcap_close(ep->ep_pcap);
	free(ep);
}

static void capture(struct hvs_net_ep *ep, const struct hvs_net_frame *f)
{
	if (ep->ep_pcap != NULL && hvs_pcap_write(ep->ep_pcap, f) == 0)
		ep->ep_st.es_captured++;
}

int hvs_net_send(struct hvs_net_ep *ep, const struct hvs_net_frame *f)
{
	if (f->nf_len < HVS_NET_ETH_HLEN || f->nf_len > HVS_NET_MAX_FRAME) {
		ep->ep_st.es_tx_dropped++;
		return f->nf_len < HVS_NET_ETH_HLEN ? -EINVAL : -EMSGSIZE;
	}
	capture(ep, f);
	int r = ep->ep_ops->bo_send(ep, f);
	if (r < 0) {
		ep->ep_st.es_tx_dropped++;
		return r;
	}
	ep->ep_st.es_tx_frames++;
	ep->ep_st.es_tx_bytes += f->nf_len;
	return 0;
}

int hvs_net_deliver(struct hvs_net_ep *ep, const struct hvs_net_frame *f)
{
	int r = ep->ep_nic->no_rx(ep->ep_nic_arg, f);
	if (r == -EAGAIN) {
		ep->ep_st.es_rx_deferred++;
		return r;
	}
	/* NOTE: captured once the NIC took it, so a deferred frame offered
	 * again is not captured twice. */
	capture(ep, f);
	ep->ep_st.es_rx_frames++;
	ep->ep_st.es_rx_bytes += f->nf_len;
	return 0;
}

void hvs_net_link(struct hvs_net_ep *ep, bool up)
{
	if (ep->ep_nic->no_link != NULL)
		ep->ep_nic->no_link(ep->ep_nic_arg, up);
}

void hvs_net_rx_ready(struct hvs_net_ep *ep)
{
	if (ep != NULL && ep->ep_ops->bo_rx_ready != NULL)
		ep->ep_ops->bo_rx_ready(ep);
}

void hvs_net_get_stats(const struct hvs_net_ep *ep, struct hvs_net_ep_stats *st)
{
	*st = ep->ep_st;
}

const char *hvs_net_ep_name(const struct hvs_net_ep *ep)
{
	return ep->ep_name;
}

enum hvs_net_kind hvs_net_ep_kind(const struct hvs_net_ep *ep)
{
	return ep->ep_kind;
}
