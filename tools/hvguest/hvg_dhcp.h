/*
 * tools/hvguest/hvg_dhcp.h - the reference guest's own DHCP client
 * (RFC 2131 / RFC 2132), independent of any IP stack: the caller feeds it
 * received UDP payloads and the time, and it calls back to send, to
 * configure or drop the address, and to log. hvg_netif.c runs one per NIC
 * over lwIP; tests/refguest/test_dhcp.c drives it with a scripted server.
 *
 * States (RFC 2131 figure 5): INIT -> SELECTING (DISCOVER sent) ->
 * REQUESTING (REQUEST for the chosen OFFER) -> BOUND; at T1 RENEWING
 * (REQUEST unicast to the server), at T2 REBINDING (REQUEST broadcast),
 * at the lease's end back to INIT with the address dropped. A NAK drops
 * the address and restarts. Retransmissions back off 4, 8, 16, 32, 64 s
 * (+-1 s), as RFC 2131 4.1 says; RENEWING/REBINDING retry after half the
 * time left, at least 60 s.
 *
 * Every received message is untrusted: fixed header checked (op, htype,
 * hlen, xid, chaddr, magic cookie), options walked with every length
 * bounded by the packet (and the option-overload fields), each option's
 * length checked against its type, addresses checked for sense (no 0/8,
 * loopback, multicast, broadcast; a contiguous mask; a router inside the
 * subnet), lease times clamped. A bad message is logged and dropped.
 *
 * All addresses are host-order uint32_t. Times are milliseconds on any
 * monotonic clock.
 */
#ifndef HVG_DHCP_H
#define HVG_DHCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_SERVER_PORT	67
#define DHCP_CLIENT_PORT	68
#define DHCP_MSG_MAX		576	/* what we build; RFC 2131 minimum */
#define DHCP_FIXED_LEN		236	/* header up to the options */
#define DHCP_MAGIC		0x63825363u
#define DHCP_MAX_DNS		3

/* Message types (option 53). */
#define DHCPDISCOVER	1
#define DHCPOFFER	2
#define DHCPREQUEST	3
#define DHCPDECLINE	4
#define DHCPACK		5
#define DHCPNAK		6
#define DHCPRELEASE	7

/* What a BOOTREPLY said, after validation. */
struct dhcp_reply {
	uint8_t  dr_type;		/* DHCPOFFER, DHCPACK, DHCPNAK */
	uint32_t dr_yiaddr;
	uint32_t dr_server_id;		/* option 54 (required) */
	uint32_t dr_mask;		/* option 1, or 0 */
	uint32_t dr_router;		/* first of option 3, or 0 */
	uint32_t dr_dns[DHCP_MAX_DNS];	/* option 6 */
	uint32_t dr_ndns;
	uint32_t dr_lease_s;		/* option 51, 0 if absent */
	uint32_t dr_t1_s;		/* option 58, 0 if absent */
	uint32_t dr_t2_s;		/* option 59, 0 if absent */
	char     dr_message[64];	/* option 56, printable, may be "" */
};

/*
 * dhcp_parse - validate a BOOTREPLY in pkt[0..len) for our xid and MAC.
 * Returns 0 and *out, or a negative reason: -1 too short / not a reply /
 * wrong hardware type, -2 not ours (xid or chaddr), -3 no magic cookie,
 * -4 malformed options, -5 no or unknown message type, -6 missing or bad
 * server id, -7 bad address (OFFER/ACK yiaddr, mask). *why (may be NULL)
 * gets a short text for the log.
 */
int dhcp_parse(const uint8_t *pkt, size_t len, uint32_t xid,
    const uint8_t mac[6], struct dhcp_reply *out, const char **why);

/* The fields of a message we send. */
struct dhcp_request {
	uint8_t  rq_type;		/* DHCPDISCOVER, DHCPREQUEST, ... */
	uint32_t rq_xid;
	uint16_t rq_secs;
	bool     rq_broadcast;		/* BROADCAST flag: we cannot take
					 * unicast before we have an address */
	uint32_t rq_ciaddr;		/* RENEWING / REBINDING / RELEASE */
	uint32_t rq_requested;		/* option 50, 0 = absent */
	uint32_t rq_server_id;		/* option 54, 0 = absent */
	const char *rq_hostname;	/* option 12, NULL = absent */
};

/* dhcp_build - the message for rq into buf (>= DHCP_MSG_MAX bytes).
 * Returns its length (always DHCP_MSG_MAX: padded, as some servers want
 * 300+ bytes), or 0 if size is too small. */
size_t dhcp_build(uint8_t *buf, size_t size, const uint8_t mac[6],
    const struct dhcp_request *rq);

/* ---- the client state machine ---- */

enum dhcp_state {
	DHCP_STOPPED = 0,
	DHCP_INIT,
	DHCP_SELECTING,
	DHCP_REQUESTING,
	DHCP_BOUND,
	DHCP_RENEWING,
	DHCP_REBINDING,
};

/* A lease in use. */
struct dhcp_lease {
	uint32_t dl_ip;
	uint32_t dl_mask;
	uint32_t dl_router;		/* 0 = none */
	uint32_t dl_server;
	uint32_t dl_dns[DHCP_MAX_DNS];
	uint32_t dl_ndns;
	uint32_t dl_lease_s;		/* 0xFFFFFFFF = infinite */
	uint32_t dl_t1_s;
	uint32_t dl_t2_s;
};

struct dhcp_ops {
	/* Send msg[0..len) from port 68 to dst:67 (0xFFFFFFFF = broadcast,
	 * from 0.0.0.0 unless src is nonzero). Returns 0 or < 0 (counted). */
	int  (*send)(void *arg, const uint8_t *msg, size_t len, uint32_t dst,
	    uint32_t src);
	/* Configure (bind) or drop (unbind) the address. */
	void (*bind)(void *arg, const struct dhcp_lease *l);
	void (*unbind)(void *arg);
	/* One log line (no newline). */
	void (*log)(void *arg, const char *line);
	/* A random 32-bit value (xid, jitter). */
	uint32_t (*random)(void *arg);
};

struct dhcp_stats {
	uint64_t ds_sent;
	uint64_t ds_send_errors;
	uint64_t ds_received;
	uint64_t ds_dropped;		/* malformed, not ours, wrong state */
	uint64_t ds_offers;
	uint64_t ds_acks;
	uint64_t ds_naks;
	uint64_t ds_leases;		/* times bound (incl. renewals) */
	uint64_t ds_timeouts;		/* retransmissions */
};

struct dhcp_client {
	enum dhcp_state dc_state;
	struct dhcp_ops dc_ops;
	void *dc_arg;
	uint8_t  dc_mac[6];
	char     dc_name[16];		/* log prefix, e.g. "nic0" */
	char     dc_hostname[64];	/* option 12; "" = none */
	uint32_t dc_xid;
	uint32_t dc_tries;		/* sends in this exchange */
	uint64_t dc_start_ms;		/* start of this exchange (secs) */
	uint64_t dc_next_ms;		/* next timer event; 0 = none */
	uint64_t dc_bound_ms;		/* when the lease was granted */
	uint32_t dc_backoff_s;
	struct dhcp_reply dc_offer;	/* chosen OFFER (REQUESTING) */
	struct dhcp_lease dc_lease;	/* BOUND / RENEWING / REBINDING */
	bool     dc_have_lease;
	struct dhcp_stats dc_stats;
};

/* Set up a client (stopped). name and hostname are copied (cut). */
void dhcp_init(struct dhcp_client *c, const struct dhcp_ops *ops, void *arg,
    const uint8_t mac[6], const char *name, const char *hostname);
/* Start (or restart: e.g. after a link change) from INIT-REBOOT-less
 * INIT: a fresh DISCOVER now. */
void dhcp_start(struct dhcp_client *c, uint64_t now_ms);
/* Stop: drop the address (unbind) if bound; no RELEASE is sent. */
void dhcp_stop(struct dhcp_client *c);
/* A UDP payload that arrived on port 68. */
void dhcp_input(struct dhcp_client *c, uint64_t now_ms, const uint8_t *pkt,
    size_t len);
/* Run timers due at now_ms. Returns the next time to call (0 = none). */
uint64_t dhcp_timer(struct dhcp_client *c, uint64_t now_ms);
/* Name of a state, for logs and the status page. */
const char *dhcp_state_name(enum dhcp_state s);
/* "a.b.c.d" into buf (>= 16 bytes). */
const char *dhcp_ip_str(uint32_t ip, char *buf, size_t size);

#endif /* HVG_DHCP_H */
