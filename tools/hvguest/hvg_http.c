/*
 * tools/hvguest/hvg_http.c - the status page over HTTP/1.1 on lwIP's raw
 * TCP API (tcpip thread only).
 *
 *   GET|HEAD /  /index.html    the page as HTML
 *   GET|HEAD /status.json      the same as JSON
 *   anything else              404, 405 (other methods), 400, 431, 505
 *
 * One request per connection ("Connection: close"); the request head is
 * read into a fixed 4 KiB buffer (longer: 431) and must arrive within
 * 10 s; at most 16 connections at once (more are refused with a reset).
 * Request bytes are client input: parsed within the buffer only, and the
 * response never echoes them.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/tcp.h"

#include "hvg_net.h"
#include "hvguest.h"

#define HTTP_HEAD_MAX	4096u
#define HTTP_MAX_CONNS	16u
#define HTTP_POLL	4u	/* tcp_poll interval: 4 x 0.5 s */
#define HTTP_IDLE_POLLS	5u	/* 5 x 2 s = 10 s to send the request */

struct http_conn {
	struct tcp_pcb *hc_pcb;
	char hc_head[HTTP_HEAD_MAX + 1];
	uint32_t hc_len;
	char *hc_out;			/* response being sent (malloc) */
	size_t hc_out_len, hc_out_off;
	uint32_t hc_polls;
	bool hc_closing;
};

static struct tcp_pcb *http_listener;
static uint32_t http_conns;
static _Atomic uint64_t http_requests;

uint64_t hvg_http_requests(void)
{
	return atomic_load(&http_requests);
}

static void conn_free(struct http_conn *c)
{
	free(c->hc_out);
	free(c);
	http_conns--;
}

/* A close that found no memory for the FIN: try again, then reset. */
static err_t close_retry(void *arg, struct tcp_pcb *pcb)
{
	(void)arg;
	if (tcp_close(pcb) == ERR_OK)
		return ERR_OK;
	tcp_abort(pcb);
	return ERR_ABRT;
}

/* Free the connection and close its pcb (never aborts here: callers may
 * be lwIP callbacks that must then return ERR_ABRT). */
static void conn_close(struct http_conn *c)
{
	struct tcp_pcb *pcb = c->hc_pcb;

	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	conn_free(c);
	if (tcp_close(pcb) != ERR_OK)
		tcp_poll(pcb, close_retry, 1);
	else
		tcp_poll(pcb, NULL, 0);
}

/* Queue as much of the response as lwIP takes; close once all is in. */
static void conn_push(struct http_conn *c)
{
	while (c->hc_out_off < c->hc_out_len) {
		size_t room = tcp_sndbuf(c->hc_pcb);
		size_t n = c->hc_out_len - c->hc_out_off;
		err_t e;

		if (n > room)
			n = room;
		if (n > 0xFFFF)
			n = 0xFFFF;
		if (n == 0)
			break;
		e = tcp_write(c->hc_pcb, c->hc_out + c->hc_out_off, (u16_t)n,
		    TCP_WRITE_FLAG_COPY);
		if (e == ERR_MEM)
			break;		/* again from sent / poll */
		if (e != ERR_OK) {
			conn_close(c);
			return;
		}
		c->hc_out_off += n;
	}
	tcp_output(c->hc_pcb);
	if (c->hc_out_off == c->hc_out_len)
		conn_close(c);	/* FIN after the queued data */
}

static void respond(struct http_conn *c, int code, const char *reason,
    const char *type, const char *body, size_t body_len, bool head_only,
    const char *extra)
{
	char hdr[512];
	int n;

	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nServer: hvguest\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\nCache-Control: "
	    "no-store\r\nConnection: close\r\n%s\r\n", code, reason, type,
	    body_len, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(hdr)) {
		conn_close(c);
		return;
	}
	c->hc_out_len = (size_t)n + (head_only ? 0 : body_len);
	c->hc_out = malloc(c->hc_out_len);
	if (c->hc_out == NULL) {
		conn_close(c);
		return;
	}
	memcpy(c->hc_out, hdr, (size_t)n);
	if (!head_only && body_len)
		memcpy(c->hc_out + n, body, body_len);
	c->hc_out_off = 0;
	/* NOTE: on_recv stays installed and drops the rest of the request
	 * (and a FIN): lwIP's default would close the pcb under us. */
	c->hc_closing = true;
	conn_push(c);
}

static void respond_text(struct http_conn *c, int code, const char *reason,
    bool head_only, const char *extra)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);

	respond(c, code, reason, "text/plain; charset=utf-8", body,
	    (size_t)n, head_only, extra);
}

/* A whole request head is in hc_head[0..hc_len). */
static void handle(struct http_conn *c)
{
	char *sp1, *sp2, *eol, *path, *q;
	bool head = false, json;
	size_t body_len = 0;
	char *body;

	atomic_fetch_add(&http_requests, 1);
	eol = strstr(c->hc_head, "\r\n");
	if (eol == NULL) {
		respond_text(c, 400, "Bad Request", false, NULL);
		return;
	}
	*eol = '\0';
	sp1 = strchr(c->hc_head, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL) {
		respond_text(c, 400, "Bad Request", false, NULL);
		return;
	}
	*sp1 = *sp2 = '\0';
	path = sp1 + 1;
	if (strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] == '\0' ||
	    sp2[9] != '\0') {
		respond_text(c, 505, "HTTP Version Not Supported", false, NULL);
		return;
	}
	if (strcmp(c->hc_head, "HEAD") == 0)
		head = true;
	else if (strcmp(c->hc_head, "GET") != 0) {
		respond_text(c, 405, "Method Not Allowed", false,
		    "Allow: GET, HEAD\r\n");
		return;
	}
	q = strpbrk(path, "?#");
	if (q != NULL)
		*q = '\0';
	if (strcmp(path, "/status.json") == 0)
		json = true;
	else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
		json = false;
	else {
		respond_text(c, 404, "Not Found", head, NULL);
		return;
	}
	body = hvg_status_copy(json, &body_len);
	if (body == NULL) {
		respond_text(c, 503, "Service Unavailable", head,
		    "Retry-After: 1\r\n");
		return;
	}
	respond(c, 200, "OK", json ? "application/json" :
	    "text/html; charset=utf-8", body, body_len, head, NULL);
	free(body);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p,
    err_t err)
{
	struct http_conn *c = arg;
	uint32_t take;

	(void)pcb;
	if (c == NULL) {
		if (p)
			pbuf_free(p);
		return ERR_OK;
	}
	if (p == NULL || err != ERR_OK) {	/* peer closed */
		if (p)
			pbuf_free(p);
		if (!c->hc_closing)
			conn_close(c);
		return ERR_OK;
	}
	tcp_recved(pcb, p->tot_len);
	if (c->hc_closing) {
		pbuf_free(p);
		return ERR_OK;
	}
	take = p->tot_len;
	if (take > HTTP_HEAD_MAX - c->hc_len)
		take = HTTP_HEAD_MAX - c->hc_len;
	pbuf_copy_partial(p, c->hc_head + c->hc_len, (u16_t)take, 0);
	c->hc_len += take;
	c->hc_head[c->hc_len] = '\0';
	pbuf_free(p);
	if (memchr(c->hc_head, '\0', c->hc_len) != NULL) {
		respond_text(c, 400, "Bad Request", false, NULL);
		return ERR_OK;
	}
	if (strstr(c->hc_head, "\r\n\r\n") != NULL)
		handle(c);
	else if (c->hc_len == HTTP_HEAD_MAX)
		respond_text(c, 431, "Request Header Fields Too Large", false,
		    NULL);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct http_conn *c = arg;

	(void)pcb;
	(void)len;
	if (c != NULL && c->hc_out != NULL)
		conn_push(c);
	return ERR_OK;
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	struct http_conn *c = arg;

	if (c == NULL) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	if (c->hc_out != NULL) {
		if (++c->hc_polls > 4 * HTTP_IDLE_POLLS) {	/* 40 s stuck */
			tcp_arg(pcb, NULL);
			conn_free(c);
			tcp_abort(pcb);
			return ERR_ABRT;
		}
		conn_push(c);
		return ERR_OK;
	}
	if (++c->hc_polls >= HTTP_IDLE_POLLS) {
		tcp_arg(pcb, NULL);
		conn_free(c);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct http_conn *c = arg;

	(void)err;
	if (c != NULL)		/* the pcb is already gone */
		conn_free(c);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct http_conn *c;

	(void)arg;
	if (err != ERR_OK || pcb == NULL)
		return ERR_VAL;
	if (http_conns >= HTTP_MAX_CONNS ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	http_conns++;
	c->hc_pcb = pcb;
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_poll(pcb, on_poll, HTTP_POLL);
	tcp_nagle_disable(pcb);
	return ERR_OK;
}

int hvg_http_start(uint16_t port)
{
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
	err_t e;

	if (pcb == NULL)
		return -1;
	ip_set_option(pcb, SOF_REUSEADDR);
	e = tcp_bind(pcb, IP4_ADDR_ANY, port);
	if (e != ERR_OK) {
		tcp_close(pcb);
		hvg_event("net: HTTP: cannot bind TCP port %u (%d)", port, e);
		return -1;
	}
	http_listener = tcp_listen(pcb);
	if (http_listener == NULL) {
		tcp_close(pcb);
		return -1;
	}
	tcp_accept(http_listener, on_accept);
	return 0;
}

void hvg_http_stop(void)
{
	if (http_listener != NULL)
		tcp_close(http_listener);
	http_listener = NULL;
	/* open connections end by their own timeouts */
}
