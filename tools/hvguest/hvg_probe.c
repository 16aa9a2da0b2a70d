/*
 * tools/hvguest/hvg_probe.c - --probe A.B.C.D: this guest reaches another
 * host over its own IP stack, the way an OS checks a neighbour: ARP (lwIP
 * resolves the address on the first packet), three ICMP echo requests, then
 * an HTTP/1.0 GET of /status.json on TCP port 80 (the reference guest's
 * status page, so two reference guests on one switch can probe each other).
 *
 * Everything runs in lwIP's tcpip thread: hvg_probe_tick() from the
 * netif's 250 ms tick starts the probe once the default netif has an
 * address, and the raw and TCP callbacks below come from the same thread.
 * Each step is bounded (PROBE_STEP_MS of lwIP's clock); results and
 * failures are events on standard output:
 *
 *   probe 10.0.0.1: ICMP echo reply 1 of 3 in 0.4 ms
 *   probe 10.0.0.1: HTTP/1.0 200 OK, 2345 bytes
 *   probe 10.0.0.1: done (3 of 3 echo replies, HTTP ok)
 *
 * Replies are checked (ICMP type, code, identifier, sequence, payload; the
 * HTTP status line) before they count.
 */
#include <stdio.h>
#include <string.h>

#include "lwip/icmp.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/prot/icmp.h"
#include "lwip/prot/ip4.h"
#include "lwip/raw.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "hvg_net.h"
#include "hvguest.h"

#define PROBE_PINGS	3u
#define PROBE_ID	0x4856u		/* "HV" */
#define PROBE_PAYLOAD	56u
#define PROBE_STEP_MS	3000u
#define PROBE_HTTP_MAX	256u		/* status line kept */

enum probe_state { P_IDLE, P_PING, P_HTTP, P_DONE };

static struct {
	enum probe_state st;
	ip_addr_t dst;
	char dst_s[16];
	struct raw_pcb *raw;
	struct tcp_pcb *tcp;
	uint16_t seq;			/* last echo request sent */
	uint32_t sent_ms;
	unsigned replies;
	char line[PROBE_HTTP_MAX];	/* HTTP status line */
	size_t line_len;
	bool line_done;
	uint64_t http_bytes;
	bool http_ok;
} pr;

static void probe_step_timeout(void *arg);
static void http_start(void);

static void finish(void)
{
	sys_untimeout(probe_step_timeout, NULL);
	if (pr.raw != NULL) {
		raw_remove(pr.raw);
		pr.raw = NULL;
	}
	if (pr.tcp != NULL) {
		tcp_arg(pr.tcp, NULL);
		tcp_recv(pr.tcp, NULL);
		tcp_err(pr.tcp, NULL);
		if (tcp_close(pr.tcp) != ERR_OK)
			tcp_abort(pr.tcp);
		pr.tcp = NULL;
	}
	pr.st = P_DONE;
	hvg_event("probe %s: done (%u of %u echo replies, HTTP %s)", pr.dst_s,
	    pr.replies, PROBE_PINGS, pr.http_ok ? "ok" : "failed");
}

/* ---- ICMP echo ---- */

static void ping_send(void)
{
	struct pbuf *p;
	struct icmp_echo_hdr *h;
	uint8_t *d;

	p = pbuf_alloc(PBUF_IP, sizeof(*h) + PROBE_PAYLOAD, PBUF_RAM);
	if (p == NULL) {
		hvg_event("probe %s: no memory for an echo request", pr.dst_s);
		return;
	}
	h = p->payload;
	memset(h, 0, sizeof(*h));
	ICMPH_TYPE_SET(h, ICMP_ECHO);
	ICMPH_CODE_SET(h, 0);
	h->id = lwip_htons(PROBE_ID);
	h->seqno = lwip_htons(++pr.seq);
	d = (uint8_t *)(h + 1);
	for (unsigned i = 0; i < PROBE_PAYLOAD; i++)
		d[i] = (uint8_t)(pr.seq + i);
	h->chksum = inet_chksum(h, (u16_t)p->len);
	pr.sent_ms = sys_now();
	if (raw_sendto(pr.raw, p, &pr.dst) != ERR_OK)
		hvg_event("probe %s: echo request %u not sent", pr.dst_s,
		    (unsigned)pr.seq);
	pbuf_free(p);
	sys_untimeout(probe_step_timeout, NULL);
	sys_timeout(PROBE_STEP_MS, probe_step_timeout, NULL);
}

/* Raw ICMP input: take our echo replies (eaten), leave the rest to lwIP. */
static u8_t ping_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p,
    const ip_addr_t *addr)
{
	struct icmp_echo_hdr h;
	uint8_t d[PROBE_PAYLOAD];
	uint16_t iphl;
	uint8_t v;

	(void)arg;
	(void)pcb;
	if (pr.st != P_PING || !ip_addr_cmp(addr, &pr.dst) || p->tot_len < 1)
		return 0;
	/* p starts at the IP header; its length is in the first byte. */
	if (pbuf_copy_partial(p, &v, 1, 0) != 1)
		return 0;
	iphl = (uint16_t)((v & 0x0Fu) * 4u);
	if (iphl < IP_HLEN ||
	    p->tot_len < iphl + sizeof(h) + PROBE_PAYLOAD ||
	    pbuf_copy_partial(p, &h, sizeof(h), iphl) != sizeof(h) ||
	    pbuf_copy_partial(p, d, PROBE_PAYLOAD, (u16_t)(iphl + sizeof(h))) !=
	    PROBE_PAYLOAD)
		return 0;
	if (ICMPH_TYPE(&h) != ICMP_ER || ICMPH_CODE(&h) != 0 ||
	    lwip_ntohs(h.id) != PROBE_ID)
		return 0;
	if (lwip_ntohs(h.seqno) != pr.seq) {
		pbuf_free(p);
		return 1;		/* a late one: ours, not counted */
	}
	for (unsigned i = 0; i < PROBE_PAYLOAD; i++)
		if (d[i] != (uint8_t)(pr.seq + i)) {
			hvg_event("probe %s: echo reply %u with a wrong payload",
			    pr.dst_s, (unsigned)pr.seq);
			pbuf_free(p);
			return 1;
		}
	pr.replies++;
	hvg_event("probe %s: ICMP echo reply %u of %u in %u ms", pr.dst_s,
	    (unsigned)pr.seq, PROBE_PINGS, (unsigned)(sys_now() - pr.sent_ms));
	pbuf_free(p);
	if (pr.seq < PROBE_PINGS)
		ping_send();
	else
		http_start();
	return 1;
}

/* ---- HTTP GET ---- */

static void http_fail(const char *why)
{
	hvg_event("probe %s: HTTP failed: %s", pr.dst_s, why);
	finish();
}

static err_t http_recv(void *arg, struct tcp_pcb *tpcb, struct pbuf *p,
    err_t err)
{
	(void)arg;
	if (p == NULL || err != ERR_OK) {
		if (p != NULL)
			pbuf_free(p);
		if (!pr.line_done) {
			http_fail("closed before a status line");
			return ERR_OK;
		}
		pr.http_ok = strncmp(pr.line, "HTTP/1.", 7) == 0 &&
		    strlen(pr.line) >= 12 && memcmp(pr.line + 8, " 200", 4) == 0;
		hvg_event("probe %s: %s, %llu bytes", pr.dst_s, pr.line,
		    (unsigned long long)pr.http_bytes);
		finish();
		return ERR_OK;
	}
	for (struct pbuf *q = p; q != NULL && !pr.line_done; q = q->next) {
		const char *c = q->payload;

		for (u16_t i = 0; i < q->len && !pr.line_done; i++) {
			if (c[i] == '\r' || c[i] == '\n' ||
			    pr.line_len + 1 >= sizeof(pr.line))
				pr.line_done = true;
			else if (c[i] >= 0x20 && c[i] < 0x7F)
				pr.line[pr.line_len++] = c[i];
			else
				pr.line[pr.line_len++] = '?';
		}
	}
	pr.http_bytes += p->tot_len;
	tcp_recved(tpcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void http_err(void *arg, err_t err)
{
	char why[48];

	(void)arg;
	pr.tcp = NULL;		/* lwIP freed it */
	snprintf(why, sizeof(why), "connection error %d", (int)err);
	http_fail(why);
}

static err_t http_connected(void *arg, struct tcp_pcb *tpcb, err_t err)
{
	static const char req[] = "GET /status.json HTTP/1.0\r\n"
	    "User-Agent: hvguest-probe\r\n\r\n";

	(void)arg;
	if (err != ERR_OK) {
		http_fail("connect failed");
		return ERR_OK;
	}
	if (tcp_write(tpcb, req, sizeof(req) - 1, TCP_WRITE_FLAG_COPY) !=
	    ERR_OK || tcp_output(tpcb) != ERR_OK) {
		http_fail("request not sent");
		return ERR_OK;
	}
	return ERR_OK;
}

static void http_start(void)
{
	pr.st = P_HTTP;
	sys_untimeout(probe_step_timeout, NULL);
	sys_timeout(PROBE_STEP_MS, probe_step_timeout, NULL);
	pr.tcp = tcp_new_ip_type(IPADDR_TYPE_V4);
	if (pr.tcp == NULL) {
		http_fail("no TCP pcb");
		return;
	}
	tcp_arg(pr.tcp, NULL);
	tcp_recv(pr.tcp, http_recv);
	tcp_err(pr.tcp, http_err);
	if (tcp_connect(pr.tcp, &pr.dst, HVG_HTTP_PORT, http_connected) !=
	    ERR_OK)
		http_fail("tcp_connect refused");
}

static void probe_step_timeout(void *arg)
{
	(void)arg;
	if (pr.st == P_PING) {
		hvg_event("probe %s: no echo reply %u in %u ms", pr.dst_s,
		    (unsigned)pr.seq, PROBE_STEP_MS);
		if (pr.seq < PROBE_PINGS)
			ping_send();
		else
			http_start();
	} else if (pr.st == P_HTTP) {
		http_fail("no answer in time");
	}
}

/* ---- start ---- */

void hvg_probe_tick(void)
{
	struct netif *n = netif_default;

	if (pr.st != P_IDLE || g.opt.probe_ip == 0 || n == NULL ||
	    !netif_is_up(n) || !netif_is_link_up(n) ||
	    ip4_addr_isany_val(*netif_ip4_addr(n)))
		return;
	ip_addr_set_ip4_u32(&pr.dst, lwip_htonl(g.opt.probe_ip));
	hvg_ip_str(g.opt.probe_ip, pr.dst_s, sizeof(pr.dst_s));
	pr.raw = raw_new(IP_PROTO_ICMP);
	if (pr.raw == NULL) {
		hvg_event("probe %s: no raw pcb for ICMP", pr.dst_s);
		http_start();
		return;
	}
	raw_recv(pr.raw, ping_recv, NULL);
	pr.st = P_PING;
	hvg_event("probe %s: starting (ARP, %u ICMP echoes, HTTP GET)",
	    pr.dst_s, PROBE_PINGS);
	ping_send();
}
