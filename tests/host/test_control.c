/*
 * tests/host/test_control.c - the control socket's JSON reader and writer,
 * request handling, the socket itself, and the fault registry.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"
#include "fault.h"
#include "log.h"
#include "loop.h"

static void log_quiet(void *arg, enum hvs_log_level l, const char *line)
{
	(void)arg;
	(void)l;
	(void)line;
}

static int setup(void **state)
{
	(void)state;
	hvs_log_set_sink(log_quiet, NULL);
	hvs_fault_reset_all();
	return 0;
}

/* ---- JSON parser ---------------------------------------------------------- */

static int parse(const char *s, struct hvs_json_obj *o, char *err)
{
	return hvs_json_parse(s, strlen(s), o, err, 200);
}

static void test_json_valid(void **state)
{
	static struct hvs_json_obj o;
	char err[200];
	const struct hvs_json_member *m, *p;

	(void)state;
	assert_int_equal(parse(" {\"cmd\" : \"fault\", \"enable\":true,\"n\":-42,"
			       "\"big\":9223372036854775807,\"min\":-9223372036854775808,"
			       "\"z\":0,\"nul\":null,\"off\":false,"
			       "\"params\":{\"after\":3,\"field\":\"x\"},\"e\":{}} \n",
			       &o, err), 0);
	assert_int_equal(o.jo_n, 10);
	m = hvs_json_get(&o, "cmd");
	assert_non_null(m);
	assert_int_equal(m->jm_type, HVS_JSON_STRING);
	assert_string_equal(m->jm_str, "fault");
	m = hvs_json_get(&o, "enable");
	assert_int_equal(m->jm_type, HVS_JSON_BOOL);
	assert_true(m->jm_bool);
	assert_int_equal(hvs_json_get(&o, "n")->jm_int, -42);
	assert_true(hvs_json_get(&o, "big")->jm_int == INT64_MAX);
	assert_true(hvs_json_get(&o, "min")->jm_int == INT64_MIN);
	assert_int_equal(hvs_json_get(&o, "nul")->jm_type, HVS_JSON_NULL);
	assert_false(hvs_json_get(&o, "off")->jm_bool);
	p = hvs_json_get(&o, "params");
	assert_int_equal(p->jm_type, HVS_JSON_OBJECT);
	assert_int_equal(p->jm_sub_count, 2);
	assert_int_equal(hvs_json_get_sub(&o, p, "after")->jm_int, 3);
	assert_string_equal(hvs_json_get_sub(&o, p, "field")->jm_str, "x");
	assert_null(hvs_json_get_sub(&o, p, "cmd"));
	assert_int_equal(hvs_json_get(&o, "e")->jm_sub_count, 0);
	assert_null(hvs_json_get(&o, "missing"));

	/* Escapes and UTF-8. */
	assert_int_equal(parse("{\"s\":\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00\xc3\xa9\"}",
			       &o, err), 0);
	assert_string_equal(hvs_json_get(&o, "s")->jm_str,
			    "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9");
	assert_int_equal(parse("{}", &o, err), 0);
	assert_int_equal(o.jo_n, 0);
}

static void test_json_malformed(void **state)
{
	static struct hvs_json_obj o;
	char err[200];
	static const char *const bad[] = {
		"",
		"   ",
		"[]",
		"\"str\"",
		"42",
		"{",
		"}",
		"{\"a\"}",
		"{\"a\":}",
		"{\"a\":1,}",
		"{,\"a\":1}",
		"{\"a\":1 \"b\":2}",
		"{\"a\":1}}",
		"{\"a\":1} x",
		"{\"a\":1}{}",
		"{a:1}",
		"{'a':1}",
		"{\"a\":[1,2]}",
		"{\"a\":{\"b\":{\"c\":1}}}",
		"{\"a\":1.5}",
		"{\"a\":1e3}",
		"{\"a\":01}",
		"{\"a\":-}",
		"{\"a\":+1}",
		"{\"a\":9223372036854775808}",
		"{\"a\":-9223372036854775809}",
		"{\"a\":99999999999999999999999}",
		"{\"a\":tru}",
		"{\"a\":True}",
		"{\"a\":nul}",
		"{\"a\":\"unterminated}",
		"{\"a\":\"bad \\x escape\"}",
		"{\"a\":\"\\u12\"}",
		"{\"a\":\"\\u12zz\"}",
		"{\"a\":\"\\ud800\"}",
		"{\"a\":\"\\udc00\"}",
		"{\"a\":\"\\ud800\\u0041\"}",
		"{\"a\":\"\\u0000\"}",
		"{\"a\":\"tab\there\"}",
		"{\"a\":\"\xff\"}",
		"{\"a\":\"\xc0\xaf\"}",          /* overlong */
		"{\"a\":\"\xed\xa0\x80\"}",      /* UTF-8 surrogate */
		"{\"a\":\"\xf4\x90\x80\x80\"}",  /* above U+10FFFF */
		"{\"a\":\"\xe2\x82\"}",          /* truncated */
		"{\"a\":1,\"a\":2}",             /* duplicate */
		"{\"p\":{\"x\":1,\"x\":2}}",
		"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}", /* key too long */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		int r = parse(bad[i], &o, err);
		if (r != -EINVAL)
			fail_msg("accepted malformed input #%zu: %s", i, bad[i]);
		assert_true(strlen(err) > 0);
	}
	/* Embedded NUL: the length counts, the parser never stops early. */
	assert_int_equal(hvs_json_parse("{\"a\":1}\0xx", 10, &o, err, sizeof(err)),
			 -EINVAL);
	/* Limits: a string as long as a line allows (4088 bytes: KVP values,
	 * disk specs) ok, one more byte not; 16 members ok, 17 not; 32 nested
	 * members ok, 33 not; line of 4097 bytes not. */
	char big[6000];
	snprintf(big, sizeof(big), "{\"s\":\"%04088d\"}", 0);
	assert_int_equal(parse(big, &o, err), 0);
	assert_int_equal(strlen(o.jo_m[0].jm_str), 4088);
	snprintf(big, sizeof(big), "{\"s\":\"%04089d\"}", 0);
	assert_int_equal(parse(big, &o, err), -EINVAL);
	size_t n = (size_t)snprintf(big, sizeof(big), "{");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d",
				      i ? "," : "", i, i);
	snprintf(big + n, sizeof(big) - n, "}");
	assert_int_equal(parse(big, &o, err), -EINVAL);
	char *cut = strstr(big, ",\"k16\"");
	strcpy(cut, "}");
	assert_int_equal(parse(big, &o, err), 0);
	assert_int_equal(o.jo_n, 16);
	n = (size_t)snprintf(big, sizeof(big), "{\"a\":{");
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d",
				      i ? "," : "", i, i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "},\"b\":{");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d",
				      i ? "," : "", i, i);
	snprintf(big + n, sizeof(big) - n, "}}");
	assert_int_equal(parse(big, &o, err), -EINVAL);
	memset(big, ' ', 4097);
	memcpy(big, "{}", 2);
	assert_int_equal(hvs_json_parse(big, 4097, &o, err, sizeof(err)), -EINVAL);
	assert_int_equal(hvs_json_parse(big, 4096, &o, err, sizeof(err)), 0);
}

/* Every prefix and single-byte corruption of a valid request is handled
 * without crashing (sanitizers watch the reads). */
/* Regression (tests/fuzz/crashes/control_json/bad-escape-invalid-utf8):
 * the error for a backslash followed by a byte >= 0x80 quoted the raw
 * byte, so the answer was not valid UTF-8. */
static void test_bad_escape_invalid_utf8(void **state)
{
	static char out[4096];
	static const char line[] = "{\"cmd\":\"x\\\xff\"}";
	struct hvs_jw w;

	(void)state;
	hvs_jw_init(&w, out, sizeof(out));
	hvs_control_handle(NULL, line, sizeof(line) - 1, &w);
	assert_non_null(hvs_jw_result(&w));
	assert_non_null(strstr(out, "\"ok\":false"));
	assert_non_null(strstr(out, "bad escape"));
	for (const char *q = out; *q; q++)
		if ((unsigned char)*q >= 0x80)
			fail_msg("non-ASCII byte 0x%02x in the answer: %s",
				 (unsigned char)*q, out);
	/* A printable one is still quoted. */
	hvs_jw_init(&w, out, sizeof(out));
	hvs_control_handle(NULL, "{\"cmd\":\"\\q\"}", 12, &w);
	assert_non_null(strstr(out, "bad escape \\\\q"));
}

static void test_json_mutations(void **state)
{
	static struct hvs_json_obj o;
	const char *good = "{\"cmd\":\"fault\",\"name\":\"drop_message\","
			   "\"enable\":true,\"params\":{\"type\":-1,\"times\":2},"
			   "\"vm\":\"vm\\u00e90\"}";
	char buf[256], err[64];
	size_t len = strlen(good);
	unsigned accepted = 0;

	(void)state;
	for (size_t cut = 0; cut < len; cut++) {
		char *p = malloc(cut ? cut : 1);
		memcpy(p, good, cut);
		assert_int_equal(hvs_json_parse(p, cut, &o, err, sizeof(err)), -EINVAL);
		free(p);
	}
	static const char subst[] = "{}[]\":,\\0aZ\x80\xff -";
	for (size_t i = 0; i < len; i++) {
		for (size_t k = 0; k < sizeof(subst) - 1; k++) {
			memcpy(buf, good, len);
			buf[i] = subst[k];
			if (hvs_json_parse(buf, len, &o, err, sizeof(err)) == 0)
				accepted++;
		}
	}
	/* Some substitutions stay valid (inside strings); most do not. */
	assert_true(accepted > 0);
	assert_true(accepted < len * (sizeof(subst) - 1));
}

/* ---- JSON writer ----------------------------------------------------------- */

static void test_json_writer(void **state)
{
	char buf[256];
	struct hvs_jw w;
	static struct hvs_json_obj o;
	char err[100];

	(void)state;
	hvs_jw_init(&w, buf, sizeof(buf));
	hvs_jw_obj_begin(&w, NULL);
	hvs_jw_bool(&w, "ok", true);
	hvs_jw_str(&w, "s", "q\"\\\n\x01");
	hvs_jw_int(&w, "i", -5);
	hvs_jw_uint(&w, "u", UINT64_MAX);
	hvs_jw_null(&w, "n");
	hvs_jw_arr_begin(&w, "a");
	hvs_jw_int(&w, NULL, 1);
	hvs_jw_obj_begin(&w, NULL);
	hvs_jw_obj_end(&w);
	hvs_jw_arr_end(&w);
	assert_true(hvs_jw_merge_obj(&w, " {\"m\":1,\"k\":\"v\"} "));
	assert_true(hvs_jw_merge_obj(&w, "{}"));
	assert_false(hvs_jw_merge_obj(&w, "[1]"));
	hvs_jw_obj_end(&w);
	assert_non_null(hvs_jw_result(&w));
	assert_string_equal(buf, "{\"ok\":true,\"s\":\"q\\\"\\\\\\u000a\\u0001\","
				 "\"i\":-5,\"u\":18446744073709551615,\"n\":null,"
				 "\"a\":[1,{}],\"m\":1,\"k\":\"v\"}");
	/* What we write, we read back (apart from arrays). */
	hvs_jw_init(&w, buf, sizeof(buf));
	hvs_jw_obj_begin(&w, NULL);
	hvs_jw_str(&w, "s", "tab\there \xc3\xa9");
	hvs_jw_obj_end(&w);
	assert_int_equal(parse(buf, &o, err), 0);
	assert_string_equal(hvs_json_get(&o, "s")->jm_str, "tab\there \xc3\xa9");
	/* Overflow is reported, never written past the buffer. */
	char small[16];
	memset(small, 'X', sizeof(small));
	hvs_jw_init(&w, small, 10);
	hvs_jw_obj_begin(&w, NULL);
	hvs_jw_str(&w, "key", "a long value");
	hvs_jw_obj_end(&w);
	assert_null(hvs_jw_result(&w));
	assert_int_equal(small[10], 'X');
	assert_true(strlen(small) < 10);
}

/* ---- request handling -------------------------------------------------------- */

static int fake_channels(void *arg, const char *vm, struct hvs_jw *w)
{
	(void)arg;
	if (strcmp(vm, "vm0"))
		return -ENOENT;
	hvs_jw_merge_obj(w, "{\"vm\":\"vm0\",\"channels\":[{\"relid\":1}]}");
	return 0;
}

static void fake_list(void *arg, struct hvs_jw *w)
{
	(void)arg;
	hvs_jw_obj_begin(w, NULL);
	hvs_jw_str(w, "name", "vm0");
	hvs_jw_obj_end(w);
}

static int fake_command(void *arg, const char *cmd, const struct hvs_json_obj *req,
			struct hvs_jw *w, const char **errmsg)
{
	(void)arg;
	(void)req;
	if (!strcmp(cmd, "stop")) {
		hvs_jw_str(w, "stopped", "vm0");
		return 0;
	}
	if (!strcmp(cmd, "boom")) {
		*errmsg = "boom failed";
		return -EIO;
	}
	return -ENOSYS;
}

static const struct hvs_control_ops fops = {
	.list_vms = fake_list,
	.channels = fake_channels,
	.command = fake_command,
};

static const char *handle(struct hvs_control *c, const char *req, char *buf,
			  size_t cap)
{
	struct hvs_jw w;

	hvs_jw_init(&w, buf, cap);
	hvs_control_handle(c, req, strlen(req), &w);
	return buf;
}

/* Run a request through a real control socket. */
struct sock_ctx {
	struct hvs_loop *loop;
	struct hvs_control *ctl;
	char path[108];
};

static void sock_setup(struct sock_ctx *s)
{
	snprintf(s->path, sizeof(s->path), "/tmp/hvs-test-ctl-%d.sock", (int)getpid());
	s->loop = hvs_loop_create();
	assert_non_null(s->loop);
	assert_int_equal(hvs_control_create(s->loop, s->path, &fops, NULL, &s->ctl), 0);
}

static int sock_connect(struct sock_ctx *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, s->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send bytes, pump the loop until a full line arrives (or EOF). */
static ssize_t sock_roundtrip(struct sock_ctx *s, int fd, const char *req,
			      size_t len, char *out, size_t cap)
{
	size_t got = 0;

	if (len)
		assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	for (int i = 0; i < 2000; i++) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		hvs_loop_run_once(s->loop, 2);
		if (poll(&pf, 1, 0) <= 0)
			continue;
		ssize_t r = recv(fd, out + got, cap - 1 - got, MSG_DONTWAIT);
		if (r <= 0)
			return r == 0 ? (ssize_t)got : -1;
		got += (size_t)r;
		out[got] = 0;
		if (memchr(out, '\n', got))
			return (ssize_t)got;
	}
	return -1;
}

static void test_control_requests(void **state)
{
	static char buf[64 * 1024];
	struct sock_ctx s;

	(void)state;
	sock_setup(&s);
	assert_string_equal(handle(s.ctl, "{\"cmd\":\"list\"}", buf, sizeof(buf)),
			    "{\"ok\":true,\"vms\":[{\"name\":\"vm0\"}]}");
	assert_string_equal(handle(s.ctl, "{\"cmd\":\"channels\",\"vm\":\"vm0\"}", buf, sizeof(buf)),
			    "{\"ok\":true,\"vm\":\"vm0\",\"channels\":[{\"relid\":1}]}");
	assert_string_equal(handle(s.ctl, "{\"cmd\":\"channels\",\"vm\":\"nope\"}", buf, sizeof(buf)),
			    "{\"ok\":false,\"error\":\"no such VM\"}");
	assert_string_equal(handle(s.ctl, "{\"cmd\":\"channels\"}", buf, sizeof(buf)),
			    "{\"ok\":false,\"error\":\"\\\"vm\\\" (string) required\"}");
	assert_string_equal(handle(s.ctl, "{\"cmd\":\"stop\"}", buf, sizeof(buf)),
			    "{\"ok\":true,\"stopped\":\"vm0\"}");
	assert_string_equal(handle(s.ctl, "{\"cmd\":\"boom\"}", buf, sizeof(buf)),
			    "{\"ok\":false,\"error\":\"boom failed\"}");
	assert_string_equal(handle(s.ctl, "{\"cmd\":\"what\"}", buf, sizeof(buf)),
			    "{\"ok\":false,\"error\":\"unknown command\"}");
	assert_string_equal(handle(s.ctl, "{\"cmd\":5}", buf, sizeof(buf)),
			    "{\"ok\":false,\"error\":\"\\\"cmd\\\" (string) required\"}");
	assert_true(strstr(handle(s.ctl, "{\"cmd\":", buf, sizeof(buf)),
			   "{\"ok\":false,\"error\":\"malformed JSON") == buf);

	/* fault / faults */
	handle(s.ctl, "{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":true,"
		      "\"params\":{\"type\":6,\"times\":1},\"vm\":\"vm0\"}", buf, sizeof(buf));
	assert_true(strstr(buf, "{\"ok\":true,\"fault\":{\"name\":\"withhold_reply\","
				"\"enabled\":true") == buf);
	assert_non_null(strstr(buf, "\"params\":{\"type\":6,\"times\":1}"));
	assert_non_null(strstr(buf, "\"vm\":\"vm0\""));
	struct hvs_fault_args fa;
	assert_false(hvs_fault_check_vm("withhold_reply", "vm1", &fa));
	assert_true(hvs_fault_check_vm("withhold_reply", "vm0", &fa));
	assert_int_equal(hvs_fault_param(&fa, "type", 0), 6);
	assert_false(hvs_fault_check_vm("withhold_reply", "vm0", &fa)); /* times 1 */
	handle(s.ctl, "{\"cmd\":\"faults\"}", buf, sizeof(buf));
	assert_true(strstr(buf, "{\"ok\":true,\"faults\":[") == buf);
	assert_non_null(strstr(buf, "\"name\":\"malformed_offer\""));
	assert_non_null(strstr(buf, "\"name\":\"bad_ring_index\""));
	assert_non_null(strstr(buf, "\"name\":\"withhold_reply\",\"enabled\":false,\"hits\":1"));
	static const char *const bad_fault[] = {
		"{\"cmd\":\"fault\",\"name\":\"nope\",\"enable\":true}",
		"{\"cmd\":\"fault\",\"enable\":true}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\"}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":1}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":true,\"params\":5}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":true,\"params\":{\"a\":\"s\"}}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":true,\"params\":{\"times\":-1}}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":true,\"params\":{\"Bad Name\":1}}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":true,\"vm\":3}",
		"{\"cmd\":\"fault\",\"name\":\"withhold_reply\",\"enable\":true,\"params\":{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1}}",
	};
	for (size_t i = 0; i < sizeof(bad_fault) / sizeof(bad_fault[0]); i++) {
		handle(s.ctl, bad_fault[i], buf, sizeof(buf));
		if (strncmp(buf, "{\"ok\":false,\"error\":", 20))
			fail_msg("bad fault request #%zu accepted: %s", i, buf);
	}
	struct hvs_fault_info fi;
	assert_int_equal(hvs_fault_get("withhold_reply", &fi), 0);
	assert_false(fi.fi_enabled);

	/* Over the socket: one answer per line, blank lines ignored, CRLF
	 * tolerated, overlong lines refused, then the connection goes on. */
	int fd = sock_connect(&s);
	const char *two = "\n{\"cmd\":\"list\"}\r\n";
	assert_true(sock_roundtrip(&s, fd, two, strlen(two), buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "{\"ok\":true,\"vms\":[{\"name\":\"vm0\"}]}\n");
	static char huge[10000];
	memset(huge, 'x', sizeof(huge));
	huge[sizeof(huge) - 1] = '\n';
	assert_true(sock_roundtrip(&s, fd, huge, sizeof(huge), buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "{\"ok\":false,\"error\":\"request line too long\"}\n");
	const char *bin = "\x01\x02\xff{{{\n";
	assert_true(sock_roundtrip(&s, fd, bin, strlen(bin), buf, sizeof(buf)) > 0);
	assert_true(strncmp(buf, "{\"ok\":false,\"error\":\"malformed JSON", 34) == 0);
	assert_true(sock_roundtrip(&s, fd, "{\"cmd\":\"faults\"}\n", 17, buf, sizeof(buf)) > 0);
	assert_true(strncmp(buf, "{\"ok\":true,\"faults\":[", 20) == 0);
	close(fd);
	/* A second server on the same live path is refused. */
	struct hvs_control *c2;
	assert_int_equal(hvs_control_create(s.loop, s.path, &fops, NULL, &c2), -EADDRINUSE);
	hvs_control_destroy(s.ctl);
	/* The socket file is gone; a stale one is replaced. */
	assert_int_not_equal(access(s.path, F_OK), 0);
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, s.path);
	assert_int_equal(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(stale);
	assert_int_equal(hvs_control_create(s.loop, s.path, &fops, NULL, &s.ctl), 0);
	hvs_control_destroy(s.ctl);
	hvs_loop_destroy(s.loop);
}

/* ---- fault registry ------------------------------------------------------------ */

/*
 * Mutex locks taken by this thread: the test binary is linked with
 * --wrap=pthread_mutex_lock (tests/host/CMakeLists.txt), so every lock in
 * the code under test comes through here.
 */
static _Thread_local unsigned long my_locks;
int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
	my_locks++;
	return __real_pthread_mutex_lock(m);
}

static void test_fault_enabled_lock_free(void **state)
{
	struct hvs_fault_param once = { "times", 1 };

	(void)state;
	assert_int_equal(hvs_fault_register("test.fast-a", "a"), 0);
	assert_int_equal(hvs_fault_register("test.fast-b", "b"), 0);
	assert_false(hvs_fault_enabled("test.fast-a"));
	assert_false(hvs_fault_enabled("no_such_hook"));
	assert_false(hvs_fault_enabled(NULL));

	/* Another hook on: this one still answers "off" without a lock,
	 * through hvs_fault_enabled and through the checks themselves. */
	assert_int_equal(hvs_fault_set("test.fast-b", true, NULL, 0, "vmA"), 0);
	assert_true(hvs_fault_enabled("test.fast-b"));
	unsigned long before = my_locks;
	for (int i = 0; i < 1000; i++) {
		assert_false(hvs_fault_enabled("test.fast-a"));
		assert_false(hvs_fault_enabled("malformed_offer"));
		assert_false(hvs_fault_check_vm("test.fast-a", "vmA", NULL));
		assert_false(hvs_fault_check("bad_ring_index", NULL));
	}
	assert_int_equal(my_locks, before);
	/* The switched-on hook takes the lock (VM filter, counters). */
	assert_true(hvs_fault_enabled("test.fast-b"));
	assert_false(hvs_fault_check_vm("test.fast-b", "vmB", NULL));
	assert_true(hvs_fault_check_vm("test.fast-b", "vmA", NULL));
	assert_true(my_locks > before);

	/* The flag follows set, "times" running out, and reset. */
	assert_int_equal(hvs_fault_set("test.fast-a", true, &once, 1, NULL), 0);
	assert_true(hvs_fault_enabled("test.fast-a"));
	assert_true(hvs_fault_check("test.fast-a", NULL));
	assert_false(hvs_fault_enabled("test.fast-a"));
	assert_int_equal(hvs_fault_set("test.fast-a", true, NULL, 0, NULL), 0);
	assert_int_equal(hvs_fault_set("test.fast-a", false, NULL, 0, NULL), 0);
	assert_false(hvs_fault_enabled("test.fast-a"));
	assert_true(hvs_fault_enabled("test.fast-b"));
	hvs_fault_reset_all();
	assert_false(hvs_fault_enabled("test.fast-b"));
	before = my_locks;
	assert_false(hvs_fault_check_vm("test.fast-b", "vmA", NULL));
	assert_int_equal(my_locks, before);
}

static void test_fault_registry(void **state)
{
	struct hvs_fault_args fa;
	struct hvs_fault_info fi;
	struct hvs_fault_param p[3] = { { "after", 2 }, { "times", 3 }, { "value", -7 } };

	(void)state;
	/* Built-in hooks exist from the start, disabled, and their help
	 * names the parameters their users read (vmbus_server.h,
	 * partition.c). */
	assert_int_equal(hvs_fault_get("malformed_offer", &fi), 0);
	assert_false(fi.fi_enabled);
	static const struct {
		const char *hook;
		const char *params[4];
	} helps[] = {
		{ "malformed_offer", { "field", "value", "relid", "child_relid" } },
		{ "bad_ring_index", { "relid", "value", "write_index", NULL } },
		{ "withhold_reply", { "type", NULL } },
		{ "storm_interrupts", { "count", NULL } },
		{ "drop_message", { "type", NULL } },
	};
	for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		assert_int_equal(hvs_fault_get(helps[i].hook, &fi), 0);
		for (int k = 0; k < 4 && helps[i].params[k]; k++)
			if (!strstr(fi.fi_help, helps[i].params[k]))
				fail_msg("help of %s lacks \"%s\": %s",
					 helps[i].hook, helps[i].params[k],
					 fi.fi_help);
	}
	assert_int_equal(hvs_fault_get("bad_ring_index", &fi), 0);
	assert_int_equal(hvs_fault_get("withhold_reply", &fi), 0);
	assert_false(hvs_fault_check("malformed_offer", &fa));
	assert_false(hvs_fault_check("no_such_hook", &fa));
	assert_int_equal(hvs_fault_get("no_such_hook", &fi), -ENOENT);
	assert_int_equal(hvs_fault_set("no_such_hook", true, NULL, 0, NULL), -ENOENT);

	/* Registration: names checked, idempotent. */
	assert_int_equal(hvs_fault_register("test.hook-1", "a test"), 0);
	assert_int_equal(hvs_fault_register("test.hook-1", "other help"), 0);
	assert_int_equal(hvs_fault_get("test.hook-1", &fi), 0);
	assert_string_equal(fi.fi_help, "a test");
	assert_int_equal(hvs_fault_register("Bad", NULL), -EINVAL);
	assert_int_equal(hvs_fault_register("", NULL), -EINVAL);
	assert_int_equal(hvs_fault_register("has space", NULL), -EINVAL);
	assert_int_equal(hvs_fault_register(
		"a_name_that_is_much_too_long_for_the_hook_table_xx", NULL), -EINVAL);

	/* after 2, times 3: checks 1-2 pass, 3-5 fire, then it disables. */
	assert_int_equal(hvs_fault_set("test.hook-1", true, p, 3, NULL), 0);
	bool fired[7];
	for (int i = 0; i < 7; i++) {
		memset(&fa, 0, sizeof(fa));
		fired[i] = hvs_fault_check("test.hook-1", &fa);
		if (fired[i]) {
			assert_int_equal(hvs_fault_param(&fa, "value", 0), -7);
			assert_int_equal(hvs_fault_param(&fa, "missing", 99), 99);
			assert_int_equal(fa.fa_hit, (uint64_t)(i - 1));
		}
	}
	assert_false(fired[0]);
	assert_false(fired[1]);
	assert_true(fired[2] && fired[3] && fired[4]);
	assert_false(fired[5]);
	assert_false(fired[6]);
	assert_int_equal(hvs_fault_get("test.hook-1", &fi), 0);
	assert_false(fi.fi_enabled);
	assert_int_equal(fi.fi_hits, 3);
	assert_int_equal(fi.fi_checks, 5);

	/* Bad params. */
	struct hvs_fault_param neg = { "times", -1 }, badname = { "X", 1 };
	assert_int_equal(hvs_fault_set("test.hook-1", true, &neg, 1, NULL), -EINVAL);
	assert_int_equal(hvs_fault_set("test.hook-1", true, &badname, 1, NULL), -EINVAL);
	assert_int_equal(hvs_fault_set("test.hook-1", true, p, 9, NULL), -EINVAL);
	char longvm[80];
	memset(longvm, 'v', sizeof(longvm) - 1);
	longvm[sizeof(longvm) - 1] = 0;
	assert_int_equal(hvs_fault_set("test.hook-1", true, NULL, 0, longvm), -EINVAL);

	/* VM filter. */
	assert_int_equal(hvs_fault_set("test.hook-1", true, NULL, 0, "vmA"), 0);
	assert_false(hvs_fault_check_vm("test.hook-1", "vmB", NULL));
	assert_false(hvs_fault_check("test.hook-1", NULL));
	assert_true(hvs_fault_check_vm("test.hook-1", "vmA", NULL));
	assert_true(hvs_fault_check_vm("test.hook-1", "vmA", NULL));
	assert_int_equal(hvs_fault_set("test.hook-1", false, NULL, 0, NULL), 0);
	assert_false(hvs_fault_check_vm("test.hook-1", "vmA", NULL));
	hvs_fault_reset_all();
	assert_int_equal(hvs_fault_get("test.hook-1", &fi), 0);
	assert_int_equal(fi.fi_hits, 0);
}

static atomic_uint_fast64_t fires;

static void *fault_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++)
		if (hvs_fault_check("test.mt", NULL))
			atomic_fetch_add(&fires, 1);
	return NULL;
}

static void *toggle_thread(void *arg)
{
	struct hvs_fault_param t = { "times", 1000 };

	(void)arg;
	for (int i = 0; i < 200; i++)
		hvs_fault_set("test.mt", i % 2 == 0, &t, 1, NULL);
	return NULL;
}

/* Switching hooks while other threads check them: counts stay exact. */
static void test_fault_threads(void **state)
{
	pthread_t th[5];
	struct hvs_fault_info fi;
	struct hvs_fault_param t = { "times", 5000 };

	(void)state;
	assert_int_equal(hvs_fault_register("test.mt", "threads"), 0);
	assert_int_equal(hvs_fault_set("test.mt", true, &t, 1, NULL), 0);
	atomic_store(&fires, 0);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, fault_thread, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* times 5000 across 80000 checks: exactly 5000 fire. */
	assert_int_equal(atomic_load(&fires), 5000);
	assert_int_equal(hvs_fault_get("test.mt", &fi), 0);
	assert_int_equal(fi.fi_hits, 5000);
	assert_false(fi.fi_enabled);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, fault_thread, NULL);
	pthread_create(&th[4], NULL, toggle_thread, NULL);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(hvs_fault_get("test.mt", &fi), 0);
	assert_int_equal(fi.fi_hits, atomic_load(&fires));
}

/* ---- log rate limit ---------------------------------------------------------- */

static unsigned sink_lines;
static void count_sink(void *arg, enum hvs_log_level l, const char *line)
{
	(void)arg;
	(void)l;
	if (strstr(line, "[vmX] guest error: bad thing 7"))
		sink_lines++;
}

static void test_log_ratelimit(void **state)
{
	static struct hvs_ratelimit rl;
	atomic_uint_fast64_t ctr = 0;

	(void)state;
	hvs_log_set_sink(count_sink, NULL);
	unsigned printed = 0;
	for (int i = 0; i < 1000; i++)
		printed += hvs_log_guest(&rl, &ctr, "vmX", "bad thing %d", 7);
	assert_int_equal(atomic_load(&ctr), 1000);
	assert_int_equal(printed, HVS_RL_BURST);
	assert_int_equal(sink_lines, HVS_RL_BURST);
	assert_true(hvs_log_suppressed_total() >= 990);
	hvs_log_set_sink(log_quiet, NULL);
	enum hvs_log_level lv;
	assert_int_equal(hvs_log_parse_level("debug", &lv), 0);
	assert_int_equal(lv, HVS_LOG_DEBUG);
	assert_int_equal(hvs_log_parse_level("warn", &lv), 0);
	assert_int_equal(lv, HVS_LOG_WARN);
	assert_int_equal(hvs_log_parse_level("loud", &lv), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_json_valid, setup),
		cmocka_unit_test_setup(test_json_malformed, setup),
		cmocka_unit_test_setup(test_json_mutations, setup),
		cmocka_unit_test_setup(test_bad_escape_invalid_utf8, setup),
		cmocka_unit_test_setup(test_json_writer, setup),
		cmocka_unit_test_setup(test_control_requests, setup),
		cmocka_unit_test_setup(test_fault_registry, setup),
		cmocka_unit_test_setup(test_fault_enabled_lock_free, setup),
		cmocka_unit_test_setup(test_fault_threads, setup),
		cmocka_unit_test_setup(test_log_ratelimit, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
