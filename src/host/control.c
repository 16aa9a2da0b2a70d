/*
 * host/control.c - control socket and its small JSON reader/writer (see
 * control.h). The reader is strict and bounded: it never reads past len,
 * never recurses more than one object deep, and every string, key and
 * member count has a fixed limit.
 */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "loop.h"
#include "vmbus/errno.h"

/* ==== JSON parser ======================================================= */

struct jp {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
	bool failed;
};

static int jp_fail(struct jp *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int jp_fail(struct jp *p, const char *fmt, ...)
{
	if (!p->failed && p->errlen) {
		va_list ap;
		char msg[160];

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		snprintf(p->err, p->errlen, "%s at offset %zu", msg, p->pos);
	}
	p->failed = true;
	return -VMBUS_EINVAL;
}

static void jp_ws(struct jp *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
		p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int jp_peek(struct jp *p)
{
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int jp_hex4(struct jp *p, unsigned *out)
{
	unsigned v = 0;

	if (p->len - p->pos < 4)
		return jp_fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		int h = hexval((unsigned char)p->s[p->pos + (size_t)i]);
		if (h < 0)
			return jp_fail(p, "bad \\u escape");
		v = v * 16 + (unsigned)h;
	}
	p->pos += 4;
	*out = v;
	return 0;
}

/*
 * 1 for the bytes a string may hold as they are: printable ASCII but the
 * quote and the backslash (0x80 and up go through the UTF-8 check). A
 * table, so that a run costs one load per byte.
 */
static const unsigned char jp_plain[256] = {
	/* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 0x20 */ 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x40 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	/* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Parse a string (at '"') into out[cap]; UTF-8 validated. */
static int jp_string(struct jp *p, char *out, size_t cap)
{
	size_t n = 0;

	if (jp_peek(p) != '"')
		return jp_fail(p, "expected string");
	p->pos++;
	for (;;) {
		unsigned char enc[4];
		size_t elen = 0, run = 0;
		int c;

		/* A run of printable ASCII without quote or backslash: one
		 * copy (same result and error offsets as byte by byte). */
		size_t left = p->len - p->pos;

		while (run < left &&
		       jp_plain[(unsigned char)p->s[p->pos + run]])
			run++;
		if (run != 0) {
			if (n + run >= cap) {
				p->pos += cap - n;
				return jp_fail(p, "string longer than %zu bytes",
					       cap - 1);
			}
			memcpy(out + n, p->s + p->pos, run);
			n += run;
			p->pos += run;
			continue;
		}
		c = jp_peek(p);

		if (c < 0)
			return jp_fail(p, "unterminated string");
		p->pos++;
		if (c == '"')
			break;
		if (c < 0x20)
			return jp_fail(p, "control character in string");
		if (c == '\\') {
			int e = jp_peek(p);
			unsigned cp;

			if (e < 0)
				return jp_fail(p, "unterminated escape");
			p->pos++;
			switch (e) {
			case '"': case '\\': case '/':
				enc[elen++] = (unsigned char)e; break;
			case 'b': enc[elen++] = '\b'; break;
			case 'f': enc[elen++] = '\f'; break;
			case 'n': enc[elen++] = '\n'; break;
			case 'r': enc[elen++] = '\r'; break;
			case 't': enc[elen++] = '\t'; break;
			case 'u':
				if (jp_hex4(p, &cp))
					return -VMBUS_EINVAL;
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					unsigned lo;
					if (p->len - p->pos < 2 || p->s[p->pos] != '\\' ||
					    p->s[p->pos + 1] != 'u')
						return jp_fail(p, "unpaired surrogate");
					p->pos += 2;
					if (jp_hex4(p, &lo))
						return -VMBUS_EINVAL;
					if (lo < 0xDC00 || lo > 0xDFFF)
						return jp_fail(p, "unpaired surrogate");
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
					return jp_fail(p, "unpaired surrogate");
				}
				if (cp == 0)
					return jp_fail(p, "\\u0000 not allowed");
				if (cp < 0x80) {
					enc[elen++] = (unsigned char)cp;
				} else if (cp < 0x800) {
					enc[elen++] = (unsigned char)(0xC0 | (cp >> 6));
					enc[elen++] = (unsigned char)(0x80 | (cp & 0x3F));
				} else if (cp < 0x10000) {
					enc[elen++] = (unsigned char)(0xE0 | (cp >> 12));
					enc[elen++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
					enc[elen++] = (unsigned char)(0x80 | (cp & 0x3F));
				} else {
					enc[elen++] = (unsigned char)(0xF0 | (cp >> 18));
					enc[elen++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
					enc[elen++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
					enc[elen++] = (unsigned char)(0x80 | (cp & 0x3F));
				}
				break;
			default:
				/* NOTE: quote the byte only if it is printable
				 * ASCII: the error goes into a JSON answer,
				 * which must stay valid UTF-8. */
				if (e >= 0x20 && e < 0x7F)
					return jp_fail(p, "bad escape \\%c", e);
				return jp_fail(p, "bad escape \\ followed by byte "
					       "0x%02X", (unsigned)(unsigned char)e);
			}
		} else if (c < 0x80) {
			enc[elen++] = (unsigned char)c;
		} else {
			/* Validate one UTF-8 sequence (no overlongs, no
			 * surrogates, at most U+10FFFF). */
			size_t more;
			unsigned cp, min;

			if (c >= 0xC2 && c <= 0xDF) {
				more = 1; cp = (unsigned)c & 0x1F; min = 0x80;
			} else if (c >= 0xE0 && c <= 0xEF) {
				more = 2; cp = (unsigned)c & 0x0F; min = 0x800;
			} else if (c >= 0xF0 && c <= 0xF4) {
				more = 3; cp = (unsigned)c & 0x07; min = 0x10000;
			} else {
				return jp_fail(p, "invalid UTF-8");
			}
			if (p->len - p->pos < more)
				return jp_fail(p, "truncated UTF-8");
			enc[elen++] = (unsigned char)c;
			for (size_t i = 0; i < more; i++) {
				unsigned char cc = (unsigned char)p->s[p->pos++];
				if ((cc & 0xC0) != 0x80)
					return jp_fail(p, "invalid UTF-8");
				cp = (cp << 6) | (cc & 0x3F);
				enc[elen++] = cc;
			}
			if (cp < min || cp > 0x10FFFF ||
			    (cp >= 0xD800 && cp <= 0xDFFF))
				return jp_fail(p, "invalid UTF-8");
		}
		if (n + elen >= cap)
			return jp_fail(p, "string longer than %zu bytes", cap - 1);
		memcpy(out + n, enc, elen);
		n += elen;
	}
	out[n] = 0;
	return 0;
}

static int jp_int(struct jp *p, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0, limit;
	size_t start;

	if (jp_peek(p) == '-') {
		neg = true;
		p->pos++;
	}
	start = p->pos;
	if (jp_peek(p) < '0' || jp_peek(p) > '9')
		return jp_fail(p, "expected a digit");
	if (jp_peek(p) == '0' && p->pos + 1 < p->len && p->s[p->pos + 1] >= '0' &&
	    p->s[p->pos + 1] <= '9')
		return jp_fail(p, "leading zero");
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	while (jp_peek(p) >= '0' && jp_peek(p) <= '9') {
		unsigned d = (unsigned)(jp_peek(p) - '0');
		if (v > (limit - d) / 10)
			return jp_fail(p, "integer out of range");
		v = v * 10 + d;
		p->pos++;
		if (p->pos - start > 20)
			return jp_fail(p, "integer out of range");
	}
	if (jp_peek(p) == '.' || jp_peek(p) == 'e' || jp_peek(p) == 'E')
		return jp_fail(p, "only integers are supported");
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

static int jp_word(struct jp *p, const char *w)
{
	size_t n = strlen(w);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n))
		return jp_fail(p, "unexpected token");
	p->pos += n;
	return 0;
}

static int jp_object(struct jp *p, struct hvs_json_obj *o, bool nested,
		     struct hvs_json_member *parent);

static int jp_value(struct jp *p, struct hvs_json_obj *o,
		    struct hvs_json_member *m, bool nested)
{
	int c = jp_peek(p);

	switch (c) {
	case '"':
		m->jm_type = HVS_JSON_STRING;
		return jp_string(p, m->jm_str, sizeof(m->jm_str));
	case 't':
		m->jm_type = HVS_JSON_BOOL;
		m->jm_bool = true;
		return jp_word(p, "true");
	case 'f':
		m->jm_type = HVS_JSON_BOOL;
		m->jm_bool = false;
		return jp_word(p, "false");
	case 'n':
		m->jm_type = HVS_JSON_NULL;
		return jp_word(p, "null");
	case '{':
		if (nested)
			return jp_fail(p, "objects nest at most one level");
		m->jm_type = HVS_JSON_OBJECT;
		return jp_object(p, o, true, m);
	case '[':
		return jp_fail(p, "arrays are not supported");
	default:
		if (c == '-' || (c >= '0' && c <= '9')) {
			m->jm_type = HVS_JSON_INT;
			return jp_int(p, &m->jm_int);
		}
		return jp_fail(p, "expected a value");
	}
}

static int jp_object(struct jp *p, struct hvs_json_obj *o, bool nested,
		     struct hvs_json_member *parent)
{
	unsigned first = nested ? o->jo_nsub : 0, count = 0;

	if (jp_peek(p) != '{')
		return jp_fail(p, "expected '{'");
	p->pos++;
	jp_ws(p);
	if (jp_peek(p) == '}') {
		p->pos++;
		goto done;
	}
	for (;;) {
		struct hvs_json_member *m;
		char key[HVS_JSON_MAX_KEY];

		jp_ws(p);
		if (jp_string(p, key, sizeof(key)))
			return -VMBUS_EINVAL;
		/* Duplicate keys are ambiguous: refuse them. */
		for (unsigned i = 0; i < count; i++) {
			const struct hvs_json_member *q =
				nested ? &o->jo_sub[first + i] : &o->jo_m[i];
			if (!strcmp(q->jm_key, key))
				return jp_fail(p, "duplicate key \"%s\"", key);
		}
		if (nested) {
			if (o->jo_nsub >= HVS_JSON_MAX_SUB)
				return jp_fail(p, "too many nested members");
			m = &o->jo_sub[o->jo_nsub++];
		} else {
			if (o->jo_n >= HVS_JSON_MAX_MEMBERS)
				return jp_fail(p, "too many members");
			m = &o->jo_m[o->jo_n++];
		}
		count++;
		memset(m, 0, sizeof(*m));
		memcpy(m->jm_key, key, sizeof(key));
		jp_ws(p);
		if (jp_peek(p) != ':')
			return jp_fail(p, "expected ':'");
		p->pos++;
		jp_ws(p);
		if (jp_value(p, o, m, nested))
			return -VMBUS_EINVAL;
		jp_ws(p);
		if (jp_peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (jp_peek(p) == '}') {
			p->pos++;
			break;
		}
		return jp_fail(p, "expected ',' or '}'");
	}
done:
	if (parent) {
		parent->jm_sub_first = first;
		parent->jm_sub_count = count;
	}
	return 0;
}

int hvs_json_parse(const char *text, size_t len, struct hvs_json_obj *out,
		   char *err, size_t errlen)
{
	struct jp p = { .s = text, .len = len, .err = err, .errlen = errlen };

	if (errlen)
		err[0] = 0;
	/* Members are zeroed as they are added and only jo_n / jo_nsub of
	 * them are ever read: no need to clear all ~200 KB of out. */
	out->jo_n = 0;
	out->jo_nsub = 0;
	if (!text)
		return jp_fail(&p, "no input");
	if (len > HVS_JSON_MAX_LINE)
		return jp_fail(&p, "request longer than %u bytes",
			       HVS_JSON_MAX_LINE);
	jp_ws(&p);
	if (jp_object(&p, out, false, NULL))
		return -VMBUS_EINVAL;
	jp_ws(&p);
	if (p.pos != len)
		return jp_fail(&p, "trailing characters after the object");
	return 0;
}

const struct hvs_json_member *hvs_json_get(const struct hvs_json_obj *o,
					   const char *key)
{
	for (unsigned i = 0; i < o->jo_n && i < HVS_JSON_MAX_MEMBERS; i++)
		if (!strcmp(o->jo_m[i].jm_key, key))
			return &o->jo_m[i];
	return NULL;
}

const struct hvs_json_member *hvs_json_get_sub(const struct hvs_json_obj *o,
					       const struct hvs_json_member *obj,
					       const char *key)
{
	if (!obj || obj->jm_type != HVS_JSON_OBJECT)
		return NULL;
	for (unsigned i = 0; i < obj->jm_sub_count; i++) {
		unsigned k = obj->jm_sub_first + i;
		if (k < HVS_JSON_MAX_SUB && !strcmp(o->jo_sub[k].jm_key, key))
			return &o->jo_sub[k];
	}
	return NULL;
}

/* ==== JSON writer ======================================================= */

void hvs_jw_init(struct hvs_jw *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->jw_buf = buf;
	w->jw_cap = cap;
	w->jw_first[0] = true;
	if (cap)
		buf[0] = 0;
	else
		w->jw_overflow = true;
}

static void jw_put(struct hvs_jw *w, const char *s, size_t n)
{
	if (w->jw_overflow)
		return;
	if (n >= w->jw_cap - w->jw_len) {
		w->jw_overflow = true;
		return;
	}
	memcpy(w->jw_buf + w->jw_len, s, n);
	w->jw_len += n;
	w->jw_buf[w->jw_len] = 0;
}

static void jw_puts(struct hvs_jw *w, const char *s)
{
	jw_put(w, s, strlen(s));
}

/* The bytes a JSON string cannot carry as they are (NUL ends the input). */
static const char jw_special[] =
	"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"
	"\"\\\x7f";

static void jw_escaped(struct hvs_jw *w, const char *s)
{
	jw_put(w, "\"", 1);
	while (s && *s) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		/* A run of characters that need no escape: one copy. */
		size_t n = strcspn(s, jw_special);

		if (n != 0) {
			jw_put(w, s, n);
			s += n;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jw_put(w, esc, 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			jw_put(w, esc, 6);
		}
		s++;
	}
	jw_put(w, "\"", 1);
}

/* Comma and key before a value. */
static void jw_prefix(struct hvs_jw *w, const char *key)
{
	int d = w->jw_depth;

	if (d > 0) {
		if (!w->jw_first[d])
			jw_put(w, ",", 1);
		w->jw_first[d] = false;
	}
	if (key && d > 0) {
		jw_escaped(w, key);
		jw_put(w, ":", 1);
	}
}

static void jw_open(struct hvs_jw *w, const char *key, const char *tok)
{
	jw_prefix(w, key);
	jw_puts(w, tok);
	if (w->jw_depth + 1 >= HVS_JW_MAX_DEPTH) {
		w->jw_overflow = true;
		return;
	}
	w->jw_depth++;
	w->jw_first[w->jw_depth] = true;
}

static void jw_close(struct hvs_jw *w, const char *tok)
{
	if (w->jw_depth > 0)
		w->jw_depth--;
	jw_puts(w, tok);
}

void hvs_jw_obj_begin(struct hvs_jw *w, const char *key) { jw_open(w, key, "{"); }
void hvs_jw_obj_end(struct hvs_jw *w) { jw_close(w, "}"); }
void hvs_jw_arr_begin(struct hvs_jw *w, const char *key) { jw_open(w, key, "["); }
void hvs_jw_arr_end(struct hvs_jw *w) { jw_close(w, "]"); }

void hvs_jw_str(struct hvs_jw *w, const char *key, const char *val)
{
	jw_prefix(w, key);
	if (val)
		jw_escaped(w, val);
	else
		jw_puts(w, "null");
}

void hvs_jw_int(struct hvs_jw *w, const char *key, int64_t val)
{
	char b[32];

	jw_prefix(w, key);
	snprintf(b, sizeof(b), "%lld", (long long)val);
	jw_puts(w, b);
}

void hvs_jw_uint(struct hvs_jw *w, const char *key, uint64_t val)
{
	char b[32];

	jw_prefix(w, key);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)val);
	jw_puts(w, b);
}

void hvs_jw_bool(struct hvs_jw *w, const char *key, bool val)
{
	jw_prefix(w, key);
	jw_puts(w, val ? "true" : "false");
}

void hvs_jw_null(struct hvs_jw *w, const char *key)
{
	jw_prefix(w, key);
	jw_puts(w, "null");
}

void hvs_jw_raw(struct hvs_jw *w, const char *key, const char *json)
{
	jw_prefix(w, key);
	jw_puts(w, json && *json ? json : "null");
}

bool hvs_jw_merge_obj(struct hvs_jw *w, const char *json)
{
	size_t n;
	const char *b, *e;

	if (!json)
		return false;
	b = json;
	while (*b == ' ' || *b == '\n' || *b == '\t' || *b == '\r')
		b++;
	n = strlen(b);
	if (n < 2 || b[0] != '{')
		return false;
	e = b + n - 1;
	while (e > b && (*e == ' ' || *e == '\n' || *e == '\t' || *e == '\r'))
		e--;
	if (*e != '}')
		return false;
	b++;
	while (b < e && (*b == ' ' || *b == '\n' || *b == '\t' || *b == '\r'))
		b++;
	if (b == e)
		return true; /* empty object */
	if (w->jw_depth > 0 && !w->jw_first[w->jw_depth])
		jw_put(w, ",", 1);
	if (w->jw_depth > 0)
		w->jw_first[w->jw_depth] = false;
	jw_put(w, b, (size_t)(e - b));
	return true;
}

const char *hvs_jw_result(struct hvs_jw *w)
{
	return w->jw_overflow ? NULL : w->jw_buf;
}

/* ==== control socket ==================================================== */

#define CTL_MAX_CLIENTS 32
#define CTL_RESP_MAX    (1024u * 1024)
#define CTL_OUT_MAX     (4u * 1024 * 1024)

struct ctl_client {
	struct hvs_control *cl_ctl;
	int cl_fd;
	struct hvs_loop_fd *cl_w;
	char cl_in[HVS_JSON_MAX_LINE + 2];
	size_t cl_in_len;
	bool cl_discarding;    /* skipping the rest of an overlong line */
	char *cl_out;
	size_t cl_out_len, cl_out_off;
	bool cl_closing;       /* close once cl_out is sent */
};

struct hvs_control {
	struct hvs_loop *c_loop;
	char c_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int c_fd;
	struct hvs_loop_fd *c_w;
	const struct hvs_control_ops *c_ops;
	void *c_arg;
	struct ctl_client *c_clients[CTL_MAX_CLIENTS];
	char *c_resp;          /* CTL_RESP_MAX scratch */
};

static void write_fault(struct hvs_jw *w, const char *key,
			const struct hvs_fault_info *fi)
{
	hvs_jw_obj_begin(w, key);
	hvs_jw_str(w, "name", fi->fi_name);
	hvs_jw_bool(w, "enabled", fi->fi_enabled);
	hvs_jw_uint(w, "hits", fi->fi_hits);
	hvs_jw_uint(w, "checks", fi->fi_checks);
	if (fi->fi_vm[0])
		hvs_jw_str(w, "vm", fi->fi_vm);
	hvs_jw_obj_begin(w, "params");
	for (unsigned i = 0; i < fi->fi_nparams && i < HVS_FAULT_MAX_PARAMS; i++)
		hvs_jw_int(w, fi->fi_params[i].fp_name, fi->fi_params[i].fp_value);
	hvs_jw_obj_end(w);
	hvs_jw_str(w, "help", fi->fi_help);
	hvs_jw_obj_end(w);
}

static int list_fault_cb(void *ctx, const struct hvs_fault_info *fi)
{
	write_fault(ctx, NULL, fi);
	return 0;
}

static void respond_error(struct hvs_jw *w, const char *msg)
{
	hvs_jw_init(w, w->jw_buf, w->jw_cap);
	hvs_jw_obj_begin(w, NULL);
	hvs_jw_bool(w, "ok", false);
	hvs_jw_str(w, "error", msg);
	hvs_jw_obj_end(w);
}

static const char *cmd_fault(const struct hvs_json_obj *req, struct hvs_jw *w)
{
	const struct hvs_json_member *name = hvs_json_get(req, "name");
	const struct hvs_json_member *en = hvs_json_get(req, "enable");
	const struct hvs_json_member *params = hvs_json_get(req, "params");
	const struct hvs_json_member *vm = hvs_json_get(req, "vm");
	struct hvs_fault_param fp[HVS_FAULT_MAX_PARAMS];
	struct hvs_fault_info fi;
	unsigned n = 0;
	int r;

	if (!name || name->jm_type != HVS_JSON_STRING)
		return "\"name\" (string) required";
	if (!en || en->jm_type != HVS_JSON_BOOL)
		return "\"enable\" (true/false) required";
	if (vm && vm->jm_type != HVS_JSON_STRING && vm->jm_type != HVS_JSON_NULL)
		return "\"vm\" must be a string";
	if (params && params->jm_type != HVS_JSON_OBJECT &&
	    params->jm_type != HVS_JSON_NULL)
		return "\"params\" must be an object";
	if (params && params->jm_type == HVS_JSON_OBJECT) {
		if (params->jm_sub_count > HVS_FAULT_MAX_PARAMS)
			return "too many params";
		for (unsigned i = 0; i < params->jm_sub_count; i++) {
			const struct hvs_json_member *m =
				&req->jo_sub[params->jm_sub_first + i];
			if (m->jm_type != HVS_JSON_INT && m->jm_type != HVS_JSON_BOOL)
				return "params values must be integers";
			if (strlen(m->jm_key) >= HVS_FAULT_PARAM_NAME_MAX)
				return "param name too long";
			memset(&fp[n], 0, sizeof(fp[n]));
			strcpy(fp[n].fp_name, m->jm_key);
			fp[n].fp_value = m->jm_type == HVS_JSON_BOOL ? m->jm_bool
								     : m->jm_int;
			n++;
		}
	}
	r = hvs_fault_set(name->jm_str, en->jm_bool, fp, n,
			  vm && vm->jm_type == HVS_JSON_STRING ? vm->jm_str : NULL);
	if (r == -VMBUS_ENOENT)
		return "unknown fault hook (see {\"cmd\":\"faults\"})";
	if (r < 0)
		return "bad params (names [a-z0-9_.-], after/times >= 0)";
	if (hvs_fault_get(name->jm_str, &fi) < 0)
		return "fault hook vanished";
	HVS_INFO(NULL, "control: fault hook %s %s", fi.fi_name,
		 fi.fi_enabled ? "enabled" : "disabled");
	write_fault(w, "fault", &fi);
	return NULL;
}

void hvs_control_handle(struct hvs_control *c, const char *line, size_t len,
			struct hvs_jw *w)
{
	static struct hvs_json_obj req; /* loop thread only; ~200 KiB */
	char err[200];
	const struct hvs_json_member *cmd, *vm;
	const char *msg = NULL;

	if (hvs_json_parse(line, len, &req, err, sizeof(err))) {
		char m[240];
		snprintf(m, sizeof(m), "malformed JSON: %s", err);
		respond_error(w, m);
		return;
	}
	cmd = hvs_json_get(&req, "cmd");
	if (!cmd || cmd->jm_type != HVS_JSON_STRING) {
		respond_error(w, "\"cmd\" (string) required");
		return;
	}
	hvs_jw_obj_begin(w, NULL);
	hvs_jw_bool(w, "ok", true);
	if (!strcmp(cmd->jm_str, "list")) {
		hvs_jw_arr_begin(w, "vms");
		if (c && c->c_ops && c->c_ops->list_vms)
			c->c_ops->list_vms(c->c_arg, w);
		hvs_jw_arr_end(w);
	} else if (!strcmp(cmd->jm_str, "channels")) {
		vm = hvs_json_get(&req, "vm");
		if (!vm || vm->jm_type != HVS_JSON_STRING) {
			msg = "\"vm\" (string) required";
		} else {
			if (!c || !c->c_ops || !c->c_ops->channels ||
			    c->c_ops->channels(c->c_arg, vm->jm_str, w) < 0)
				msg = "no such VM";
		}
	} else if (!strcmp(cmd->jm_str, "fault")) {
		msg = cmd_fault(&req, w);
	} else if (!strcmp(cmd->jm_str, "faults")) {
		hvs_jw_arr_begin(w, "faults");
		hvs_fault_foreach(list_fault_cb, w);
		hvs_jw_arr_end(w);
	} else {
		int r = -VMBUS_ENOSYS;
		msg = "unknown command";
		if (c && c->c_ops && c->c_ops->command) {
			const char *m2 = NULL;
			r = c->c_ops->command(c->c_arg, cmd->jm_str, &req, w, &m2);
			if (r == 0)
				msg = NULL;
			else if (r != -VMBUS_ENOSYS)
				msg = m2 ? m2 : "command failed";
		}
	}
	hvs_jw_obj_end(w);
	if (msg)
		respond_error(w, msg);
	else if (w->jw_overflow)
		respond_error(w, "response too large");
}

static void client_free(struct ctl_client *cl)
{
	struct hvs_control *c = cl->cl_ctl;

	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->c_clients[i] == cl)
			c->c_clients[i] = NULL;
	hvs_loop_del_fd(cl->cl_w);
	close(cl->cl_fd);
	free(cl->cl_out);
	free(cl);
}

static void client_queue(struct ctl_client *cl, const char *s, size_t n)
{
	size_t pending = cl->cl_out_len - cl->cl_out_off;
	char *nb;

	if (pending + n + 1 > CTL_OUT_MAX) {
		/* A client that does not read its answers: drop it. */
		cl->cl_closing = true;
		cl->cl_out_len = cl->cl_out_off = 0;
		return;
	}
	nb = malloc(pending + n + 1);
	if (!nb) {
		cl->cl_closing = true;
		return;
	}
	if (pending)
		memcpy(nb, cl->cl_out + cl->cl_out_off, pending);
	memcpy(nb + pending, s, n);
	nb[pending + n] = '\n';
	free(cl->cl_out);
	cl->cl_out = nb;
	cl->cl_out_len = pending + n + 1;
	cl->cl_out_off = 0;
}

static void client_line(struct ctl_client *cl, const char *line, size_t len)
{
	struct hvs_control *c = cl->cl_ctl;
	struct hvs_jw w;

	if (len && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return; /* blank line: nothing to answer */
	hvs_jw_init(&w, c->c_resp, CTL_RESP_MAX);
	hvs_control_handle(c, line, len, &w);
	client_queue(cl, w.jw_buf, w.jw_len);
}

/* Returns false if the client was freed. */
static bool client_flush(struct ctl_client *cl)
{
	while (cl->cl_out_off < cl->cl_out_len) {
		ssize_t r = send(cl->cl_fd, cl->cl_out + cl->cl_out_off,
				 cl->cl_out_len - cl->cl_out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			hvs_loop_mod_fd(cl->cl_w, HVS_EV_OUT);
			return true;
		}
		if (r <= 0) {
			client_free(cl);
			return false;
		}
		cl->cl_out_off += (size_t)r;
	}
	cl->cl_out_off = cl->cl_out_len = 0;
	if (cl->cl_closing) {
		client_free(cl);
		return false;
	}
	hvs_loop_mod_fd(cl->cl_w, HVS_EV_IN);
	return true;
}

static void client_cb(void *arg, int fd, uint32_t events)
{
	struct ctl_client *cl = arg;
	char buf[4096];
	ssize_t r;

	(void)fd;
	if (cl->cl_out_len > cl->cl_out_off) {
		client_flush(cl);
		return; /* read again once the answer is out */
	}
	if (!(events & (HVS_EV_IN | HVS_EV_HUP | HVS_EV_ERR)))
		return;
	r = recv(cl->cl_fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		client_free(cl);
		return;
	}
	for (ssize_t i = 0; i < r; i++) {
		char ch = buf[i];
		if (ch == '\n') {
			if (cl->cl_discarding) {
				cl->cl_discarding = false;
				const char *e = "{\"ok\":false,\"error\":\"request line too long\"}";
				client_queue(cl, e, strlen(e));
			} else {
				client_line(cl, cl->cl_in, cl->cl_in_len);
			}
			cl->cl_in_len = 0;
			continue;
		}
		if (cl->cl_discarding)
			continue;
		if (cl->cl_in_len >= HVS_JSON_MAX_LINE + 1) {
			cl->cl_discarding = true;
			cl->cl_in_len = 0;
			continue;
		}
		cl->cl_in[cl->cl_in_len++] = ch;
	}
	client_flush(cl);
}

static void accept_cb(void *arg, int fd, uint32_t events)
{
	struct hvs_control *c = arg;
	struct ctl_client *cl;
	int cfd, slot = -1;

	(void)events;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (!c->c_clients[i]) {
			slot = i;
			break;
		}
	if (slot < 0) {
		HVS_WARN(NULL, "control: too many clients, refusing one");
		close(cfd);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(cfd);
		return;
	}
	cl->cl_ctl = c;
	cl->cl_fd = cfd;
	cl->cl_w = hvs_loop_add_fd(c->c_loop, cfd, HVS_EV_IN, client_cb, cl);
	if (!cl->cl_w) {
		close(cfd);
		free(cl);
		return;
	}
	c->c_clients[slot] = cl;
}

int hvs_control_default_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/hvsim/control.sock", xdg);
	else
		n = snprintf(buf, len, "/tmp/hvsim-%u/control.sock",
			     (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int hvs_control_mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	char *slash;

	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int hvs_control_create(struct hvs_loop *loop, const char *path,
		       const struct hvs_control_ops *ops, void *arg,
		       struct hvs_control **out)
{
	struct sockaddr_un sa;
	struct hvs_control *c;
	int fd, r;

	*out = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -EADDRINUSE) {
			/* Stale socket file, or a live host? Ask it. */
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			bool live = probe >= 0 &&
				    connect(probe, (struct sockaddr *)&sa,
					    sizeof(sa)) == 0;
			if (probe >= 0)
				close(probe);
			if (!live && unlink(path) == 0 &&
			    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
				r = 0;
		}
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	chmod(path, 0600);
	if (listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		unlink(path);
		return r;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->c_resp = malloc(CTL_RESP_MAX);
	if (!c || !c->c_resp) {
		if (c)
			free(c);
		close(fd);
		unlink(path);
		return -VMBUS_ENOMEM;
	}
	c->c_loop = loop;
	strcpy(c->c_path, path);
	c->c_fd = fd;
	c->c_ops = ops;
	c->c_arg = arg;
	c->c_w = hvs_loop_add_fd(loop, fd, HVS_EV_IN, accept_cb, c);
	if (!c->c_w) {
		r = -errno;
		free(c->c_resp);
		free(c);
		close(fd);
		unlink(path);
		return r;
	}
	*out = c;
	return 0;
}

void hvs_control_destroy(struct hvs_control *c)
{
	if (!c)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->c_clients[i])
			client_free(c->c_clients[i]);
	hvs_loop_del_fd(c->c_w);
	close(c->c_fd);
	unlink(c->c_path);
	free(c->c_resp);
	free(c);
}
