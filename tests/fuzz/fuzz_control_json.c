/*
 * fuzz_control_json - the host control socket (src/host/control.c): the
 * strict JSON subset parser (hvs_json_parse), the request dispatcher
 * (hvs_control_handle: list, channels, fault, faults, other commands) and,
 * in socket mode, the line assembly of a real connected client (overlong
 * lines, many requests per read, partial lines, a client that stops).
 *
 * Input: cfg u8 (bit 0: through a real control socket, else direct
 * calls), then request lines separated by '\n'.
 *
 * Oracles: every response is one valid JSON object (checked by an
 * independent validator for full JSON, UTF-8 included) whose "ok" member
 * is a boolean; a request the parser accepts respects every limit
 * (members, keys, strings without NUL) and survives a round trip through
 * the writer (hvs_jw_*) unchanged; fault hooks are reset after each
 * input; no descriptor leaks.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/control.h"
#include "host/fault.h"
#include "host/log.h"
#include "host/loop.h"
#include "vmbus/errno.h"

#define RESP_MAX (256u * 1024)

/* ---- an independent JSON validator (RFC 8259, UTF-8 checked) ---------- */

struct jv {
	const unsigned char *s;
	size_t n, i;
	int depth;
};

static bool jv_value(struct jv *v);

static void jv_ws(struct jv *v)
{
	while (v->i < v->n && (v->s[v->i] == ' ' || v->s[v->i] == '\t' ||
			       v->s[v->i] == '\n' || v->s[v->i] == '\r'))
		v->i++;
}

static bool jv_utf8(struct jv *v)
{
	unsigned char c = v->s[v->i];
	unsigned more, cp, min;

	if (c < 0x80) {
		v->i++;
		return true;
	}
	if (c >= 0xC2 && c <= 0xDF) { more = 1; cp = c & 0x1F; min = 0x80; }
	else if (c >= 0xE0 && c <= 0xEF) { more = 2; cp = c & 0x0F; min = 0x800; }
	else if (c >= 0xF0 && c <= 0xF4) { more = 3; cp = c & 0x07; min = 0x10000; }
	else return false;
	if (v->n - v->i <= more)
		return false;
	for (unsigned k = 1; k <= more; k++) {
		if ((v->s[v->i + k] & 0xC0) != 0x80)
			return false;
		cp = cp << 6 | (v->s[v->i + k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return false;
	v->i += 1 + more;
	return true;
}

static bool jv_string(struct jv *v)
{
	if (v->i >= v->n || v->s[v->i] != '"')
		return false;
	v->i++;
	while (v->i < v->n) {
		unsigned char c = v->s[v->i];

		if (c == '"') {
			v->i++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (++v->i >= v->n)
				return false;
			c = v->s[v->i++];
			if (c == 'u') {
				for (int k = 0; k < 4; k++, v->i++)
					if (v->i >= v->n ||
					    !strchr("0123456789abcdefABCDEF",
						    v->s[v->i]) || !v->s[v->i])
						return false;
			} else if (!strchr("\"\\/bfnrt", c) || c == 0) {
				return false;
			}
			continue;
		}
		if (!jv_utf8(v))
			return false;
	}
	return false;
}

static bool jv_number(struct jv *v)
{
	size_t st = v->i;

	if (v->i < v->n && v->s[v->i] == '-')
		v->i++;
	if (v->i >= v->n || v->s[v->i] < '0' || v->s[v->i] > '9')
		return false;
	if (v->s[v->i] == '0')
		v->i++;
	else
		while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9')
			v->i++;
	if (v->i < v->n && v->s[v->i] == '.') {
		v->i++;
		if (v->i >= v->n || v->s[v->i] < '0' || v->s[v->i] > '9')
			return false;
		while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9')
			v->i++;
	}
	return v->i > st;
}

static bool jv_seq(struct jv *v, char open, char close, bool obj)
{
	if (v->i >= v->n || v->s[v->i] != open || ++v->depth > 32)
		return false;
	v->i++;
	jv_ws(v);
	if (v->i < v->n && v->s[v->i] == close) {
		v->i++;
		v->depth--;
		return true;
	}
	for (;;) {
		jv_ws(v);
		if (obj) {
			if (!jv_string(v))
				return false;
			jv_ws(v);
			if (v->i >= v->n || v->s[v->i++] != ':')
				return false;
		}
		if (!jv_value(v))
			return false;
		jv_ws(v);
		if (v->i >= v->n)
			return false;
		if (v->s[v->i] == ',') {
			v->i++;
			continue;
		}
		if (v->s[v->i] == close) {
			v->i++;
			v->depth--;
			return true;
		}
		return false;
	}
}

static bool jv_lit(struct jv *v, const char *w)
{
	size_t k = strlen(w);

	if (v->n - v->i < k || memcmp(v->s + v->i, w, k) != 0)
		return false;
	v->i += k;
	return true;
}

static bool jv_value(struct jv *v)
{
	jv_ws(v);
	if (v->i >= v->n)
		return false;
	switch (v->s[v->i]) {
	case '{': return jv_seq(v, '{', '}', true);
	case '[': return jv_seq(v, '[', ']', false);
	case '"': return jv_string(v);
	case 't': return jv_lit(v, "true");
	case 'f': return jv_lit(v, "false");
	case 'n': return jv_lit(v, "null");
	default: return jv_number(v);
	}
}

static void check_response(const char *r, size_t n)
{
	struct jv v = { (const unsigned char *)r, n, 0, 0 };
	char err[200];

	FZ_CHECK(n > 0 && r[0] == '{', "response does not start with '{'");
	FZ_CHECK(jv_seq(&v, '{', '}', true), "response is not valid JSON "
		 "(at byte %zu of %zu): %.*s", v.i, n, (int)(n < 300 ? n : 300),
		 r);
	jv_ws(&v);
	FZ_CHECK(v.i == n, "bytes after the response object");
	/* "ok" is the first member and a boolean: our own parser reads it
	 * when the response has no arrays. */
	FZ_CHECK(n > 6 && (!memcmp(r, "{\"ok\":true", 10) ||
			   !memcmp(r, "{\"ok\":false", 11)),
		 "response without a leading \"ok\" boolean");
	/* One object kept (~200 KB: a fresh one per input was mostly page
	 * faults). */
	static struct hvs_json_obj *o;

	if (o == NULL && (o = malloc(sizeof(*o))) == NULL)
		abort();
	if (!memchr(r, '[', n))
		FZ_CHECK(hvs_json_parse(r, n, o, err, sizeof(err)) == 0 ||
			 strstr(err, "too many") || strstr(err, "nest") ||
			 strstr(err, "longer than"),
			 "our own parser refuses our response: %s: %.*s", err,
			 (int)(n < 300 ? n : 300), r);
}

/* ---- round trip of an accepted request ------------------------------- */

static void write_member(struct hvs_jw *w, const struct hvs_json_obj *o,
			 const struct hvs_json_member *m)
{
	switch (m->jm_type) {
	case HVS_JSON_NULL: hvs_jw_null(w, m->jm_key); break;
	case HVS_JSON_BOOL: hvs_jw_bool(w, m->jm_key, m->jm_bool); break;
	case HVS_JSON_INT: hvs_jw_int(w, m->jm_key, m->jm_int); break;
	case HVS_JSON_STRING: hvs_jw_str(w, m->jm_key, m->jm_str); break;
	case HVS_JSON_OBJECT:
		hvs_jw_obj_begin(w, m->jm_key);
		for (unsigned i = 0; i < m->jm_sub_count; i++)
			write_member(w, o, &o->jo_sub[m->jm_sub_first + i]);
		hvs_jw_obj_end(w);
		break;
	}
}

static bool same_member(const struct hvs_json_obj *a,
			const struct hvs_json_member *x,
			const struct hvs_json_obj *b,
			const struct hvs_json_member *y)
{
	if (strcmp(x->jm_key, y->jm_key) || x->jm_type != y->jm_type)
		return false;
	switch (x->jm_type) {
	case HVS_JSON_BOOL: return x->jm_bool == y->jm_bool;
	case HVS_JSON_INT: return x->jm_int == y->jm_int;
	case HVS_JSON_STRING: return !strcmp(x->jm_str, y->jm_str);
	case HVS_JSON_OBJECT:
		if (x->jm_sub_count != y->jm_sub_count)
			return false;
		for (unsigned i = 0; i < x->jm_sub_count; i++)
			if (!same_member(a, &a->jo_sub[x->jm_sub_first + i], b,
					 &b->jo_sub[y->jm_sub_first + i]))
				return false;
		return true;
	default: return true;
	}
}

static void check_request(const char *line, size_t len)
{
	static struct hvs_json_obj a, b;
	static char out[64 * 1024];
	struct hvs_jw w;
	char err[200];

	if (hvs_json_parse(line, len, &a, err, sizeof(err)) != 0) {
		FZ_CHECK(memchr(err, 0, sizeof(err)) != NULL,
			 "error message not terminated");
		return;
	}
	FZ_CHECK(a.jo_n <= HVS_JSON_MAX_MEMBERS && a.jo_nsub <= HVS_JSON_MAX_SUB,
		 "%u members, %u nested", a.jo_n, a.jo_nsub);
	for (unsigned i = 0; i < a.jo_n + a.jo_nsub; i++) {
		const struct hvs_json_member *m =
			i < a.jo_n ? &a.jo_m[i] : &a.jo_sub[i - a.jo_n];

		FZ_CHECK(memchr(m->jm_key, 0, sizeof(m->jm_key)) != NULL,
			 "key not terminated");
		FZ_CHECK(memchr(m->jm_str, 0, sizeof(m->jm_str)) != NULL,
			 "string not terminated");
		if (m->jm_type == HVS_JSON_OBJECT)
			FZ_CHECK(i < a.jo_n && m->jm_sub_first <= a.jo_nsub &&
				 m->jm_sub_count <= a.jo_nsub - m->jm_sub_first,
				 "nested range %u+%u of %u", m->jm_sub_first,
				 m->jm_sub_count, a.jo_nsub);
	}
	hvs_jw_init(&w, out, sizeof(out));
	hvs_jw_obj_begin(&w, NULL);
	for (unsigned i = 0; i < a.jo_n; i++)
		write_member(&w, &a, &a.jo_m[i]);
	hvs_jw_obj_end(&w);
	FZ_CHECK(hvs_jw_result(&w) != NULL, "writer overflow");
	FZ_CHECK(hvs_json_parse(w.jw_buf, w.jw_len, &b, err, sizeof(err)) == 0,
		 "parser refuses what the writer made of it: %s: %s", err,
		 w.jw_buf);
	FZ_CHECK(a.jo_n == b.jo_n, "member count changed in the round trip");
	for (unsigned i = 0; i < a.jo_n; i++)
		FZ_CHECK(same_member(&a, &a.jo_m[i], &b, &b.jo_m[i]),
			 "member %u changed in the round trip", i);
}

/* ---- control ops: what hvsim would plug in --------------------------- */

static void op_list(void *arg, struct hvs_jw *w)
{
	(void)arg;
	hvs_jw_obj_begin(w, NULL);
	hvs_jw_str(w, "name", "fz");
	hvs_jw_uint(w, "vcpus", 2);
	hvs_jw_obj_end(w);
}

static int op_channels(void *arg, const char *vm, struct hvs_jw *w)
{
	(void)arg;
	if (strcmp(vm, "fz") != 0)
		return -VMBUS_ENOENT;
	hvs_jw_str(w, "vm", vm);
	hvs_jw_raw(w, "channels", "[]");
	return 0;
}

static int op_command(void *arg, const char *cmd, const struct hvs_json_obj *req,
		      struct hvs_jw *w, const char **errmsg)
{
	(void)arg;
	if (strcmp(cmd, "echo") != 0)
		return -VMBUS_ENOSYS;
	/* Echo every member back, as a command that reports its input,
	 * but "ok": the dispatcher's own member (control.h). */
	for (unsigned i = 0; i < req->jo_n; i++)
		if (strcmp(req->jo_m[i].jm_key, "ok") != 0)
			write_member(w, req, &req->jo_m[i]);
	if (hvs_json_get(req, "fail") != NULL) {
		*errmsg = "asked to fail";
		return -VMBUS_EINVAL;
	}
	return 0;
}

static const struct hvs_control_ops ctl_ops = {
	.list_vms = op_list,
	.channels = op_channels,
	.command = op_command,
};

static void sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	(void)level;
	(void)line;
}

/* ---- the two modes ------------------------------------------------------ */

static void direct(const char *text, size_t n)
{
	static char *resp;
	size_t pos = 0;

	if (resp == NULL && (resp = malloc(RESP_MAX)) == NULL)
		abort();
	while (pos < n) {
		const char *nl = memchr(text + pos, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - (text + pos)) : n - pos;
		struct hvs_jw w;

		if (len > 0) {
			check_request(text + pos, len);
			hvs_jw_init(&w, resp, RESP_MAX);
			hvs_control_handle(NULL, text + pos, len, &w);
			check_response(w.jw_buf, w.jw_len);
		}
		pos += len + 1;
	}
}

static struct hvs_loop *s_loop;
static struct hvs_control *s_ctl;
static char s_path[108];

static void drop_control(void)
{
	hvs_control_destroy(s_ctl);	/* unlinks the socket file */
	hvs_loop_destroy(s_loop);
	s_ctl = NULL;
}

/* One control socket for the whole run (its fds are not a leak). */
static void ensure_control(void)
{
	if (s_ctl != NULL)
		return;
	snprintf(s_path, sizeof(s_path), "/tmp/fuzz-control-%d.sock",
		 (int)getpid());
	s_loop = hvs_loop_create();
	if (s_loop == NULL ||
	    hvs_control_create(s_loop, s_path, &ctl_ops, NULL, &s_ctl))
		abort();
	atexit(drop_control);
}

static void through_socket(const char *text, size_t n)
{
	struct sockaddr_un sa;
	char buf[8192], *acc = NULL;
	size_t acc_len = 0;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, s_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		abort();
	(void)hvs_loop_run_once(s_loop, 0);	/* accept */
	for (size_t sent = 0; sent < n;) {
		ssize_t k = send(fd, text + sent, n - sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k > 0)
			sent += (size_t)k;
		(void)hvs_loop_run_once(s_loop, 0);
		for (;;) {
			ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			char *na;

			if (r <= 0)
				break;
			na = realloc(acc, acc_len + (size_t)r);
			if (na == NULL)
				abort();
			acc = na;
			memcpy(acc + acc_len, buf, (size_t)r);
			acc_len += (size_t)r;
		}
		if (k <= 0 && (k == 0 || errno != EAGAIN))
			break;
	}
	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 64; i++) {
		ssize_t r;

		(void)hvs_loop_run_once(s_loop, 0);
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0)
			break;	/* the server closed its end */
		if (r > 0) {
			char *na = realloc(acc, acc_len + (size_t)r);

			if (na == NULL)
				abort();
			acc = na;
			memcpy(acc + acc_len, buf, (size_t)r);
			acc_len += (size_t)r;
		}
	}
	close(fd);
	for (int i = 0; i < 4; i++)
		(void)hvs_loop_run_once(s_loop, 0);	/* client freed */
	/* Every line the server wrote is one response object. */
	for (size_t pos = 0; pos < acc_len;) {
		char *nl = memchr(acc + pos, '\n', acc_len - pos);

		FZ_CHECK(nl != NULL, "response without a newline");
		check_response(acc + pos, (size_t)(nl - (acc + pos)));
		pos = (size_t)(nl - acc) + 1;
	}
	free(acc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds_before;
	struct fz f;
	uint8_t cfg;

	hvs_log_set_sink(sink, NULL);
	fz_init(&f, data, size);
	cfg = fz_u8(&f);
	if (cfg & 1) {
		ensure_control();
		fds_before = fz_count_fds();
		through_socket((const char *)f.p, fz_left(&f));
		FZ_CHECK_FDS(fds_before);
	} else {
		direct((const char *)f.p, fz_left(&f));
	}
	hvs_fault_reset_all();
	return 0;
}
