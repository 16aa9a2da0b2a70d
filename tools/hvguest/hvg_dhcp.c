/*
 * tools/hvguest/hvg_dhcp.c - a small DHCP client (RFC 2131, options of
 * RFC 2132): message parsing and building, and the client state machine.
 * No IP stack here: hvg_dhcp.h says what the caller supplies.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hvg_dhcp.h"

/* BOOTP fixed header offsets (RFC 2131 figure 1). */
#define OFF_OP		0
#define OFF_HTYPE	1
#define OFF_HLEN	2
#define OFF_XID		4
#define OFF_SECS	8
#define OFF_FLAGS	10
#define OFF_CIADDR	12
#define OFF_YIADDR	16
#define OFF_CHADDR	28
#define OFF_SNAME	44	/* 64 bytes */
#define OFF_FILE	108	/* 128 bytes */
#define OFF_MAGIC	236
#define OFF_OPTIONS	240

#define BOOTREQUEST	1
#define BOOTREPLY	2
#define HTYPE_ETHER	1
#define FLAG_BROADCAST	0x8000u

/* Options (RFC 2132). */
#define OPT_PAD		0
#define OPT_MASK	1
#define OPT_ROUTER	3
#define OPT_DNS		6
#define OPT_HOSTNAME	12
#define OPT_REQ_IP	50
#define OPT_LEASE	51
#define OPT_OVERLOAD	52
#define OPT_MSG_TYPE	53
#define OPT_SERVER_ID	54
#define OPT_PARAMS	55
#define OPT_MESSAGE	56
#define OPT_MAX_SIZE	57
#define OPT_T1		58
#define OPT_T2		59
#define OPT_CLIENT_ID	61
#define OPT_END		255

#define LEASE_INFINITE	0xFFFFFFFFu
#define LEASE_MIN_S	10u		/* shorter leases are raised to this */
#define BACKOFF_MIN_S	4u
#define BACKOFF_MAX_S	64u
#define REQUEST_TRIES	4u		/* REQUESTING: then back to INIT */
#define RENEW_MIN_S	60u

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

const char *dhcp_ip_str(uint32_t ip, char *buf, size_t size)
{
	snprintf(buf, size, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xFFu,
	    (ip >> 8) & 0xFFu, ip & 0xFFu);
	return buf;
}

/* A unicast host address we can use: not 0/8, loopback, multicast,
 * class E or broadcast. */
static bool usable_ip(uint32_t ip)
{
	uint32_t a = ip >> 24;

	return a != 0 && a != 127 && a < 224;
}

/* A contiguous netmask of /1../30 (0 = absent is handled by the caller). */
static bool valid_mask(uint32_t m)
{
	uint32_t inv = ~m;

	return m != 0 && (inv & (inv + 1)) == 0 && inv >= 3;
}

/* The default mask of an address's class (an OFFER without option 1). */
static uint32_t class_mask(uint32_t ip)
{
	uint32_t a = ip >> 24;

	return a < 128 ? 0xFF000000u : a < 192 ? 0xFFFF0000u : 0xFFFFFF00u;
}

/* ---- parsing ---- */

struct optwalk {
	struct dhcp_reply *r;
	bool have_type, have_server, have_mask;
	uint8_t overload;
	const char *why;
};

/* Walk one option area buf[0..len); false on a malformed area. */
static bool walk_options(struct optwalk *w, const uint8_t *buf, size_t len,
    bool main_area)
{
	size_t i = 0;

	while (i < len) {
		uint8_t code = buf[i++], ol;
		const uint8_t *v;

		if (code == OPT_PAD)
			continue;
		if (code == OPT_END)
			return true;
		if (i >= len) {
			w->why = "option without a length";
			return false;
		}
		ol = buf[i++];
		if (ol > len - i) {
			w->why = "option runs past the packet";
			return false;
		}
		v = buf + i;
		i += ol;
		switch (code) {
		case OPT_MSG_TYPE:
			if (ol != 1) {
				w->why = "message type length";
				return false;
			}
			w->r->dr_type = v[0];
			w->have_type = true;
			break;
		case OPT_SERVER_ID:
			if (ol != 4) {
				w->why = "server id length";
				return false;
			}
			w->r->dr_server_id = rd32(v);
			w->have_server = true;
			break;
		case OPT_MASK:
			if (ol != 4) {
				w->why = "subnet mask length";
				return false;
			}
			w->r->dr_mask = rd32(v);
			w->have_mask = true;
			break;
		case OPT_ROUTER:
			if (ol < 4 || ol % 4) {
				w->why = "router length";
				return false;
			}
			w->r->dr_router = rd32(v);
			break;
		case OPT_DNS:
			if (ol < 4 || ol % 4) {
				w->why = "DNS server length";
				return false;
			}
			w->r->dr_ndns = 0;
			for (size_t k = 0; k + 4 <= ol &&
			    w->r->dr_ndns < DHCP_MAX_DNS; k += 4) {
				uint32_t d = rd32(v + k);

				if (usable_ip(d))
					w->r->dr_dns[w->r->dr_ndns++] = d;
			}
			break;
		case OPT_LEASE:
		case OPT_T1:
		case OPT_T2:
			if (ol != 4) {
				w->why = "lease time length";
				return false;
			}
			if (code == OPT_LEASE)
				w->r->dr_lease_s = rd32(v);
			else if (code == OPT_T1)
				w->r->dr_t1_s = rd32(v);
			else
				w->r->dr_t2_s = rd32(v);
			break;
		case OPT_MESSAGE: {
			size_t n = ol < sizeof(w->r->dr_message) - 1 ? ol :
			    sizeof(w->r->dr_message) - 1;

			for (size_t k = 0; k < n; k++)
				w->r->dr_message[k] = v[k] >= 0x20 &&
				    v[k] < 0x7F ? (char)v[k] : '?';
			w->r->dr_message[n] = '\0';
			break;
		}
		case OPT_OVERLOAD:
			if (ol != 1 || v[0] < 1 || v[0] > 3) {
				w->why = "option overload value";
				return false;
			}
			/* Only the main area may say where more options
			 * are (RFC 2131 4.1). */
			if (main_area)
				w->overload = v[0];
			break;
		default:
			break;	/* not ours: skipped */
		}
	}
	/* The main area must end with END; the overloaded fields may just
	 * run out (they are padded with PAD or end with END). */
	if (main_area) {
		w->why = "no end option";
		return false;
	}
	return true;
}

int dhcp_parse(const uint8_t *pkt, size_t len, uint32_t xid,
    const uint8_t mac[6], struct dhcp_reply *out, const char **why)
{
	struct optwalk w;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	memset(out, 0, sizeof(*out));
	if (len < OFF_OPTIONS + 1) {
		*why = "too short";
		return -1;
	}
	if (pkt[OFF_OP] != BOOTREPLY || pkt[OFF_HTYPE] != HTYPE_ETHER ||
	    pkt[OFF_HLEN] != 6) {
		*why = "not an Ethernet BOOTREPLY";
		return -1;
	}
	if (rd32(pkt + OFF_XID) != xid || memcmp(pkt + OFF_CHADDR, mac, 6)) {
		*why = "not ours (xid or client address)";
		return -2;
	}
	if (rd32(pkt + OFF_MAGIC) != DHCP_MAGIC) {
		*why = "no magic cookie";
		return -3;
	}
	memset(&w, 0, sizeof(w));
	w.r = out;
	if (!walk_options(&w, pkt + OFF_OPTIONS, len - OFF_OPTIONS, true) ||
	    ((w.overload & 1) && !walk_options(&w, pkt + OFF_FILE, 128,
	    false)) || ((w.overload & 2) && !walk_options(&w, pkt + OFF_SNAME,
	    64, false))) {
		*why = w.why;
		return -4;
	}
	if (!w.have_type || (out->dr_type != DHCPOFFER &&
	    out->dr_type != DHCPACK && out->dr_type != DHCPNAK)) {
		*why = "no OFFER/ACK/NAK message type";
		return -5;
	}
	if (!w.have_server || !usable_ip(out->dr_server_id)) {
		*why = "missing or bad server identifier";
		return -6;
	}
	if (out->dr_type == DHCPNAK)
		return 0;
	out->dr_yiaddr = rd32(pkt + OFF_YIADDR);
	if (!usable_ip(out->dr_yiaddr)) {
		*why = "unusable offered address";
		return -7;
	}
	if (!w.have_mask)
		out->dr_mask = class_mask(out->dr_yiaddr);
	if (!valid_mask(out->dr_mask)) {
		*why = "bad subnet mask";
		return -7;
	}
	if ((out->dr_yiaddr & ~out->dr_mask) == 0 ||
	    (out->dr_yiaddr | out->dr_mask) == 0xFFFFFFFFu) {
		*why = "offered the network or broadcast address";
		return -7;
	}
	/* A router outside our subnet (or ourselves) is ignored. */
	if (out->dr_router != 0 && (!usable_ip(out->dr_router) ||
	    (out->dr_router & out->dr_mask) != (out->dr_yiaddr &
	    out->dr_mask) || out->dr_router == out->dr_yiaddr))
		out->dr_router = 0;
	return 0;
}

/* ---- building ---- */

size_t dhcp_build(uint8_t *buf, size_t size, const uint8_t mac[6],
    const struct dhcp_request *rq)
{
	static const uint8_t params[] = { OPT_MASK, OPT_ROUTER, OPT_DNS,
	    OPT_LEASE, OPT_T1, OPT_T2 };
	size_t o = OFF_OPTIONS;

	if (size < DHCP_MSG_MAX)
		return 0;
	memset(buf, 0, DHCP_MSG_MAX);
	buf[OFF_OP] = BOOTREQUEST;
	buf[OFF_HTYPE] = HTYPE_ETHER;
	buf[OFF_HLEN] = 6;
	wr32(buf + OFF_XID, rq->rq_xid);
	buf[OFF_SECS] = (uint8_t)(rq->rq_secs >> 8);
	buf[OFF_SECS + 1] = (uint8_t)rq->rq_secs;
	if (rq->rq_broadcast)
		buf[OFF_FLAGS] = FLAG_BROADCAST >> 8;
	wr32(buf + OFF_CIADDR, rq->rq_ciaddr);
	memcpy(buf + OFF_CHADDR, mac, 6);
	wr32(buf + OFF_MAGIC, DHCP_MAGIC);
	buf[o++] = OPT_MSG_TYPE;
	buf[o++] = 1;
	buf[o++] = rq->rq_type;
	buf[o++] = OPT_CLIENT_ID;	/* RFC 2132 9.14: type 1 + MAC */
	buf[o++] = 7;
	buf[o++] = HTYPE_ETHER;
	memcpy(buf + o, mac, 6);
	o += 6;
	if (rq->rq_requested) {
		buf[o++] = OPT_REQ_IP;
		buf[o++] = 4;
		wr32(buf + o, rq->rq_requested);
		o += 4;
	}
	if (rq->rq_server_id) {
		buf[o++] = OPT_SERVER_ID;
		buf[o++] = 4;
		wr32(buf + o, rq->rq_server_id);
		o += 4;
	}
	if (rq->rq_type == DHCPDISCOVER || rq->rq_type == DHCPREQUEST) {
		buf[o++] = OPT_MAX_SIZE;
		buf[o++] = 2;
		buf[o++] = DHCP_MSG_MAX >> 8;
		buf[o++] = DHCP_MSG_MAX & 0xFF;
		buf[o++] = OPT_PARAMS;
		buf[o++] = (uint8_t)sizeof(params);
		memcpy(buf + o, params, sizeof(params));
		o += sizeof(params);
	}
	if (rq->rq_hostname != NULL && rq->rq_hostname[0] != '\0') {
		size_t n = strlen(rq->rq_hostname);

		if (n > 63)
			n = 63;
		buf[o++] = OPT_HOSTNAME;
		buf[o++] = (uint8_t)n;
		memcpy(buf + o, rq->rq_hostname, n);
		o += n;
	}
	buf[o++] = OPT_END;
	return DHCP_MSG_MAX;
}

/* ---- the state machine ---- */

static const char *const state_names[] = {
	"stopped", "init", "selecting", "requesting", "bound", "renewing",
	"rebinding",
};

const char *dhcp_state_name(enum dhcp_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ?
	    state_names[s] : "?";
}

static void dlog(struct dhcp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void dlog(struct dhcp_client *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%s: dhcp: ", c->dc_name);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (c->dc_ops.log)
		c->dc_ops.log(c->dc_arg, line);
}

void dhcp_init(struct dhcp_client *c, const struct dhcp_ops *ops, void *arg,
    const uint8_t mac[6], const char *name, const char *hostname)
{
	memset(c, 0, sizeof(*c));
	c->dc_ops = *ops;
	c->dc_arg = arg;
	memcpy(c->dc_mac, mac, 6);
	snprintf(c->dc_name, sizeof(c->dc_name), "%s", name ? name : "nic");
	snprintf(c->dc_hostname, sizeof(c->dc_hostname), "%s",
	    hostname ? hostname : "");
	c->dc_state = DHCP_STOPPED;
}

/* Seconds -> ms, with +-1 s jitter (RFC 2131 4.1), never below 1 s. */
static uint64_t jitter_ms(struct dhcp_client *c, uint32_t s)
{
	uint64_t ms = (uint64_t)s * 1000u;
	uint32_t j = c->dc_ops.random ? c->dc_ops.random(c->dc_arg) % 2001u :
	    1000u;

	ms = ms + j >= 2000u ? ms + j - 1000u : 1000u;
	return ms;
}

static void send_msg(struct dhcp_client *c, uint64_t now, uint8_t type,
    uint32_t dst, uint32_t src)
{
	struct dhcp_request rq;
	uint8_t buf[DHCP_MSG_MAX];
	uint64_t secs = (now - c->dc_start_ms) / 1000u;
	size_t len;

	memset(&rq, 0, sizeof(rq));
	rq.rq_type = type;
	rq.rq_xid = c->dc_xid;
	rq.rq_secs = (uint16_t)(secs > 0xFFFF ? 0xFFFF : secs);
	rq.rq_hostname = c->dc_hostname;
	switch (c->dc_state) {
	case DHCP_SELECTING:
		rq.rq_broadcast = true;
		break;
	case DHCP_REQUESTING:
		rq.rq_broadcast = true;
		rq.rq_requested = c->dc_offer.dr_yiaddr;
		rq.rq_server_id = c->dc_offer.dr_server_id;
		break;
	case DHCP_RENEWING:
	case DHCP_REBINDING:
		/* RFC 2131 4.3.2: ciaddr set, no server id / requested IP */
		rq.rq_ciaddr = c->dc_lease.dl_ip;
		break;
	default:
		break;
	}
	len = dhcp_build(buf, sizeof(buf), c->dc_mac, &rq);
	c->dc_tries++;
	if (c->dc_ops.send(c->dc_arg, buf, len, dst, src) == 0)
		c->dc_stats.ds_sent++;
	else
		c->dc_stats.ds_send_errors++;
}

/* A new exchange: fresh xid, first try. */
static void new_exchange(struct dhcp_client *c, uint64_t now)
{
	c->dc_xid = c->dc_ops.random ? c->dc_ops.random(c->dc_arg) :
	    (uint32_t)now;
	c->dc_tries = 0;
	c->dc_start_ms = now;
	c->dc_backoff_s = BACKOFF_MIN_S;
}

static void drop_lease(struct dhcp_client *c)
{
	if (c->dc_have_lease && c->dc_ops.unbind)
		c->dc_ops.unbind(c->dc_arg);
	c->dc_have_lease = false;
	memset(&c->dc_lease, 0, sizeof(c->dc_lease));
}

static void discover(struct dhcp_client *c, uint64_t now)
{
	new_exchange(c, now);
	c->dc_state = DHCP_SELECTING;
	dlog(c, "DISCOVER (xid %#010x)", c->dc_xid);
	send_msg(c, now, DHCPDISCOVER, 0xFFFFFFFFu, 0);
	c->dc_next_ms = now + jitter_ms(c, c->dc_backoff_s);
}

void dhcp_start(struct dhcp_client *c, uint64_t now_ms)
{
	drop_lease(c);
	c->dc_state = DHCP_INIT;
	discover(c, now_ms);
}

void dhcp_stop(struct dhcp_client *c)
{
	drop_lease(c);
	c->dc_state = DHCP_STOPPED;
	c->dc_next_ms = 0;
}

/* The ms until `s` seconds after the binding; infinite leases never. */
static uint64_t at_lease_s(const struct dhcp_client *c, uint32_t s)
{
	if (c->dc_lease.dl_lease_s == LEASE_INFINITE)
		return 0;
	return c->dc_bound_ms + (uint64_t)s * 1000u;
}

/* Retry time in RENEWING / REBINDING: half of what is left until `end`,
 * at least 60 s (RFC 2131 4.4.5), but never past `end`. */
static uint64_t half_way(uint64_t now, uint64_t end)
{
	uint64_t left = end > now ? end - now : 0, step = left / 2;

	if (step < RENEW_MIN_S * 1000u)
		step = RENEW_MIN_S * 1000u;
	return now + step < end ? now + step : end;
}

static void take_lease(struct dhcp_client *c, uint64_t now,
    const struct dhcp_reply *r)
{
	struct dhcp_lease *l = &c->dc_lease;
	bool renewed = c->dc_have_lease && l->dl_ip == r->dr_yiaddr;
	char a[16], gw[16], sv[16], dns[16];
	uint32_t prefix = 0;

	if (c->dc_have_lease && !renewed)
		drop_lease(c);
	memset(l, 0, sizeof(*l));
	l->dl_ip = r->dr_yiaddr;
	l->dl_mask = r->dr_mask;
	l->dl_router = r->dr_router;
	l->dl_server = r->dr_server_id;
	l->dl_ndns = r->dr_ndns;
	memcpy(l->dl_dns, r->dr_dns, sizeof(l->dl_dns));
	/* Lease times: none given is a protocol error we forgive with a
	 * short lease; T1 < T2 < lease or the RFC defaults (0.5, 0.875). */
	l->dl_lease_s = r->dr_lease_s ? r->dr_lease_s : 3600u;
	if (l->dl_lease_s < LEASE_MIN_S)
		l->dl_lease_s = LEASE_MIN_S;
	if (l->dl_lease_s != LEASE_INFINITE) {
		l->dl_t1_s = r->dr_t1_s;
		l->dl_t2_s = r->dr_t2_s;
		if (l->dl_t2_s == 0 || l->dl_t2_s >= l->dl_lease_s)
			l->dl_t2_s = (uint32_t)((uint64_t)l->dl_lease_s * 7 / 8);
		if (l->dl_t1_s == 0 || l->dl_t1_s >= l->dl_t2_s)
			l->dl_t1_s = l->dl_lease_s / 2;
		if (l->dl_t1_s >= l->dl_t2_s)
			l->dl_t1_s = l->dl_t2_s ? l->dl_t2_s - 1 : 0;
	}
	for (uint32_t x = ~l->dl_mask; x; x >>= 1)
		prefix++;
	prefix = 32 - prefix;
	c->dc_bound_ms = now;
	c->dc_state = DHCP_BOUND;
	c->dc_stats.ds_leases++;
	c->dc_have_lease = true;
	c->dc_next_ms = at_lease_s(c, l->dl_t1_s);
	if (l->dl_lease_s == LEASE_INFINITE)
		dlog(c, "%s %s/%u router %s dns %s from %s, infinite lease",
		    renewed ? "renewed" : "lease",
		    dhcp_ip_str(l->dl_ip, a, sizeof(a)), prefix,
		    l->dl_router ? dhcp_ip_str(l->dl_router, gw, sizeof(gw)) :
		    "none", l->dl_ndns ? dhcp_ip_str(l->dl_dns[0], dns,
		    sizeof(dns)) : "none", dhcp_ip_str(l->dl_server, sv,
		    sizeof(sv)));
	else
		dlog(c, "%s %s/%u router %s dns %s from %s, %u s (renew in "
		    "%u s, rebind in %u s)", renewed ? "renewed" : "lease",
		    dhcp_ip_str(l->dl_ip, a, sizeof(a)), prefix,
		    l->dl_router ? dhcp_ip_str(l->dl_router, gw, sizeof(gw)) :
		    "none", l->dl_ndns ? dhcp_ip_str(l->dl_dns[0], dns,
		    sizeof(dns)) : "none", dhcp_ip_str(l->dl_server, sv,
		    sizeof(sv)), l->dl_lease_s, l->dl_t1_s, l->dl_t2_s);
	if (!renewed && c->dc_ops.bind)
		c->dc_ops.bind(c->dc_arg, l);
}

void dhcp_input(struct dhcp_client *c, uint64_t now_ms, const uint8_t *pkt,
    size_t len)
{
	struct dhcp_reply r;
	const char *why = NULL;
	char a[16], s[16];
	int e;

	c->dc_stats.ds_received++;
	if (c->dc_state == DHCP_STOPPED || c->dc_state == DHCP_INIT ||
	    c->dc_state == DHCP_BOUND) {
		c->dc_stats.ds_dropped++;	/* nothing asked */
		return;
	}
	e = dhcp_parse(pkt, len, c->dc_xid, c->dc_mac, &r, &why);
	if (e == -2) {
		c->dc_stats.ds_dropped++;	/* another client's: quiet */
		return;
	}
	if (e != 0) {
		c->dc_stats.ds_dropped++;
		dlog(c, "dropped a malformed reply: %s", why ? why : "?");
		return;
	}
	switch (r.dr_type) {
	case DHCPOFFER:
		c->dc_stats.ds_offers++;
		if (c->dc_state != DHCP_SELECTING) {
			c->dc_stats.ds_dropped++;	/* a late second one */
			return;
		}
		dlog(c, "OFFER %s from %s", dhcp_ip_str(r.dr_yiaddr, a,
		    sizeof(a)), dhcp_ip_str(r.dr_server_id, s, sizeof(s)));
		/* The first acceptable OFFER wins (RFC 2131 4.4.1 lets the
		 * client choose; waiting buys nothing here). Same xid. */
		c->dc_offer = r;
		c->dc_state = DHCP_REQUESTING;
		c->dc_tries = 0;
		c->dc_backoff_s = BACKOFF_MIN_S;
		dlog(c, "REQUEST %s from %s", a, s);
		send_msg(c, now_ms, DHCPREQUEST, 0xFFFFFFFFu, 0);
		c->dc_next_ms = now_ms + jitter_ms(c, c->dc_backoff_s);
		return;
	case DHCPACK:
		c->dc_stats.ds_acks++;
		if (c->dc_state == DHCP_SELECTING) {
			c->dc_stats.ds_dropped++;
			return;
		}
		if (c->dc_state == DHCP_REQUESTING &&
		    (r.dr_yiaddr != c->dc_offer.dr_yiaddr ||
		    r.dr_server_id != c->dc_offer.dr_server_id)) {
			c->dc_stats.ds_dropped++;
			dlog(c, "dropped an ACK for %s: not what was requested",
			    dhcp_ip_str(r.dr_yiaddr, a, sizeof(a)));
			return;
		}
		if ((c->dc_state == DHCP_RENEWING ||
		    c->dc_state == DHCP_REBINDING) &&
		    r.dr_yiaddr != c->dc_lease.dl_ip) {
			/* The server moved us: take the new address. */
			dlog(c, "ACK moves us to %s",
			    dhcp_ip_str(r.dr_yiaddr, a, sizeof(a)));
		}
		take_lease(c, now_ms, &r);
		return;
	case DHCPNAK:
		c->dc_stats.ds_naks++;
		if (c->dc_state == DHCP_SELECTING) {
			c->dc_stats.ds_dropped++;
			return;
		}
		/* In REQUESTING only the chosen server may refuse us. */
		if (c->dc_state == DHCP_REQUESTING &&
		    r.dr_server_id != c->dc_offer.dr_server_id) {
			c->dc_stats.ds_dropped++;
			return;
		}
		dlog(c, "NAK from %s%s%s%s; starting over",
		    dhcp_ip_str(r.dr_server_id, s, sizeof(s)),
		    r.dr_message[0] ? " (\"" : "", r.dr_message,
		    r.dr_message[0] ? "\")" : "");
		drop_lease(c);
		c->dc_state = DHCP_INIT;
		/* RFC 2131 3.1 step 5: restart; a short pause avoids a
		 * tight loop against a server that NAKs everything. */
		c->dc_next_ms = now_ms + jitter_ms(c, 2);
		return;
	default:
		c->dc_stats.ds_dropped++;
		return;
	}
}

uint64_t dhcp_timer(struct dhcp_client *c, uint64_t now)
{
	uint64_t t2, end;
	char a[16], sv[16];

	if (c->dc_state == DHCP_STOPPED || c->dc_next_ms == 0 ||
	    now < c->dc_next_ms)
		return c->dc_next_ms;
	switch (c->dc_state) {
	case DHCP_INIT:
		discover(c, now);
		break;
	case DHCP_SELECTING:
		c->dc_stats.ds_timeouts++;
		if (c->dc_backoff_s < BACKOFF_MAX_S)
			c->dc_backoff_s *= 2;
		dlog(c, "no OFFER after %u DISCOVER(s); next in %u s",
		    c->dc_tries, c->dc_backoff_s);
		send_msg(c, now, DHCPDISCOVER, 0xFFFFFFFFu, 0);
		c->dc_next_ms = now + jitter_ms(c, c->dc_backoff_s);
		break;
	case DHCP_REQUESTING:
		c->dc_stats.ds_timeouts++;
		if (c->dc_tries >= REQUEST_TRIES) {
			dlog(c, "no ACK after %u REQUEST(s); starting over",
			    c->dc_tries);
			c->dc_state = DHCP_INIT;
			c->dc_next_ms = now + jitter_ms(c, BACKOFF_MIN_S);
			break;
		}
		if (c->dc_backoff_s < BACKOFF_MAX_S)
			c->dc_backoff_s *= 2;
		dlog(c, "no ACK yet; REQUEST again (next in %u s)",
		    c->dc_backoff_s);
		send_msg(c, now, DHCPREQUEST, 0xFFFFFFFFu, 0);
		c->dc_next_ms = now + jitter_ms(c, c->dc_backoff_s);
		break;
	case DHCP_BOUND:
	case DHCP_RENEWING:
	case DHCP_REBINDING:
		end = at_lease_s(c, c->dc_lease.dl_lease_s);
		t2 = at_lease_s(c, c->dc_lease.dl_t2_s);
		if (end == 0) {
			c->dc_next_ms = 0;	/* infinite */
			break;
		}
		if (now >= end) {
			dlog(c, "lease of %s expired; starting over",
			    dhcp_ip_str(c->dc_lease.dl_ip, a, sizeof(a)));
			drop_lease(c);
			c->dc_state = DHCP_INIT;
			discover(c, now);
			break;
		}
		if (now >= t2) {
			if (c->dc_state != DHCP_REBINDING) {
				c->dc_state = DHCP_REBINDING;
				dlog(c, "no answer from the server: rebinding "
				    "%s (broadcast)", dhcp_ip_str(
				    c->dc_lease.dl_ip, a, sizeof(a)));
				new_exchange(c, now);
			} else {
				c->dc_stats.ds_timeouts++;
			}
			send_msg(c, now, DHCPREQUEST, 0xFFFFFFFFu,
			    c->dc_lease.dl_ip);
			c->dc_next_ms = half_way(now, end);
			break;
		}
		if (c->dc_state == DHCP_BOUND) {
			c->dc_state = DHCP_RENEWING;
			dlog(c, "T1: renewing %s with %s",
			    dhcp_ip_str(c->dc_lease.dl_ip, a, sizeof(a)),
			    dhcp_ip_str(c->dc_lease.dl_server, sv, sizeof(sv)));
			new_exchange(c, now);
		} else {
			c->dc_stats.ds_timeouts++;
		}
		send_msg(c, now, DHCPREQUEST, c->dc_lease.dl_server,
		    c->dc_lease.dl_ip);
		c->dc_next_ms = half_way(now, t2);
		break;
	default:
		c->dc_next_ms = 0;
		break;
	}
	return c->dc_next_ms;
}
