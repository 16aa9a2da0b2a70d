/*
 * host/control.h - the host's control socket and its JSON.
 *
 * Protocol: a Unix SOCK_STREAM socket; each request is one JSON object on
 * one line (at most HVS_JSON_MAX_LINE bytes), each answer one JSON object
 * on one line: {"ok":true,...} or {"ok":false,"error":"..."}.
 *
 *   {"cmd":"list"}                      -> {"ok":true,"vms":[{"name":..,
 *        "state":..,"vcpus":..,"ram":..,"pid":..,"version":..,
 *        "channels":..}, ...]}
 *   {"cmd":"channels","vm":NAME}        -> {"ok":true,"vm":NAME,<the VMBus
 *                                           server's description members>}
 *   {"cmd":"fault","name":N,"enable":B[,"params":{K:INT,...}][,"vm":V]}
 *                                       -> {"ok":true,"fault":{...}}
 *   {"cmd":"faults"}                    -> {"ok":true,"faults":[{...},...]}
 *   anything else goes to hvs_control_ops.command (e.g. "stop").
 *
 * The JSON subset: one object per request, members of type string,
 * integer (64-bit, no fraction or exponent), true/false/null, and objects
 * one level deep holding those scalars. No arrays in requests. Every limit
 * below is checked; malformed input gets {"ok":false,"error":...}.
 *
 * Threading: the control socket runs on the loop thread; so do the ops.
 */
#ifndef HVS_CONTROL_H
#define HVS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hvs_loop;

/* ---- JSON parsing ------------------------------------------------------- */

#define HVS_JSON_MAX_LINE    4096u /* request line, bytes without newline */
#define HVS_JSON_MAX_MEMBERS 16u   /* per object */
#define HVS_JSON_MAX_SUB     32u   /* members of all nested objects */
#define HVS_JSON_MAX_KEY     32u   /* key bytes including NUL */
#define HVS_JSON_MAX_STR     HVS_JSON_MAX_LINE /* string bytes incl. NUL:
					     a KVP value, a disk spec */

enum hvs_json_type {
	HVS_JSON_NULL = 0,
	HVS_JSON_BOOL,
	HVS_JSON_INT,
	HVS_JSON_STRING,
	HVS_JSON_OBJECT,
};

struct hvs_json_member {
	char jm_key[HVS_JSON_MAX_KEY];
	enum hvs_json_type jm_type;
	bool jm_bool;
	int64_t jm_int;
	char jm_str[HVS_JSON_MAX_STR];  /* UTF-8, NUL-free, NUL-terminated */
	unsigned jm_sub_first;         /* OBJECT: index into jo_sub */
	unsigned jm_sub_count;
};

struct hvs_json_obj {
	unsigned jo_n;
	struct hvs_json_member jo_m[HVS_JSON_MAX_MEMBERS];
	unsigned jo_nsub;
	struct hvs_json_member jo_sub[HVS_JSON_MAX_SUB];
};

/*
 * Parse one JSON object from text[0..len) (surrounding whitespace allowed,
 * nothing else). Returns 0, or -EINVAL with a message in err (always
 * NUL-terminated when errlen > 0).
 */
int hvs_json_parse(const char *text, size_t len, struct hvs_json_obj *out,
		   char *err, size_t errlen);

/* Member `key` of a top-level object, or NULL. */
const struct hvs_json_member *hvs_json_get(const struct hvs_json_obj *o,
					   const char *key);
/* Member `key` of nested object member `obj`, or NULL. */
const struct hvs_json_member *hvs_json_get_sub(const struct hvs_json_obj *o,
					       const struct hvs_json_member *obj,
					       const char *key);

/* ---- JSON writing ------------------------------------------------------- */

#define HVS_JW_MAX_DEPTH 8

/*
 * Writer into a caller buffer. Every call appends; once the buffer is full
 * jw_overflow is set and later calls do nothing. Keys are NULL inside
 * arrays. Strings are escaped (control characters as \u00XX).
 */
struct hvs_jw {
	char *jw_buf;
	size_t jw_cap;
	size_t jw_len;
	bool jw_overflow;
	int jw_depth;
	bool jw_first[HVS_JW_MAX_DEPTH];
};

void hvs_jw_init(struct hvs_jw *w, char *buf, size_t cap);
void hvs_jw_obj_begin(struct hvs_jw *w, const char *key);
void hvs_jw_obj_end(struct hvs_jw *w);
void hvs_jw_arr_begin(struct hvs_jw *w, const char *key);
void hvs_jw_arr_end(struct hvs_jw *w);
void hvs_jw_str(struct hvs_jw *w, const char *key, const char *val);
void hvs_jw_int(struct hvs_jw *w, const char *key, int64_t val);
void hvs_jw_uint(struct hvs_jw *w, const char *key, uint64_t val);
void hvs_jw_bool(struct hvs_jw *w, const char *key, bool val);
void hvs_jw_null(struct hvs_jw *w, const char *key);
/* Append already-valid JSON text as a value. */
void hvs_jw_raw(struct hvs_jw *w, const char *key, const char *json);
/*
 * Append the members of the JSON object text `json` (which must start
 * with '{' and end with '}') to the object being written. Returns false
 * (and writes nothing) if json is not of that shape.
 */
bool hvs_jw_merge_obj(struct hvs_jw *w, const char *json);
/* NUL-terminated result, or NULL if it overflowed. */
const char *hvs_jw_result(struct hvs_jw *w);

/* ---- the control socket --------------------------------------------- */

struct hvs_control;

struct hvs_control_ops {
	/* Write one object per VM into the open array of w. */
	void (*list_vms)(void *arg, struct hvs_jw *w);
	/* Write the members describing VM `vm`'s channels (including
	 * "vm":NAME) into the open response object. 0, or -ENOENT. */
	int (*channels)(void *arg, const char *vm, struct hvs_jw *w);
	/* Other commands: write members into the open response object
	 * (never one named "ok": the dispatcher wrote it first, and a
	 * response with a key twice is refused by our own parser) and
	 * return 0, or return -ENOSYS (unknown command) or another negative
	 * errno with *errmsg set to a static message. May be NULL. */
	int (*command)(void *arg, const char *cmd, const struct hvs_json_obj *req,
		       struct hvs_jw *w, const char **errmsg);
};

/*
 * Listen on path (created with mode 0600; a stale socket file there is
 * replaced, a live one is -EADDRINUSE). Returns 0 and *out or a negative
 * errno.
 */
int hvs_control_create(struct hvs_loop *loop, const char *path,
		       const struct hvs_control_ops *ops, void *arg,
		       struct hvs_control **out);
/* Close every client, unlink the socket file, free. NULL no-op. */
void hvs_control_destroy(struct hvs_control *c);

/*
 * Handle one request line (without the newline) and write the response
 * object (without newline) into out. Used by the socket and by tests.
 */
void hvs_control_handle(struct hvs_control *c, const char *line, size_t len,
			struct hvs_jw *out);

/* Default control socket path: $XDG_RUNTIME_DIR/hvsim/control.sock or
 * /tmp/hvsim-$UID/control.sock. Returns 0 or -ENAMETOOLONG. The directory
 * is not created. */
int hvs_control_default_path(char *buf, size_t len);

/* Create the parent directory of path with mode 0700 if missing. */
int hvs_control_mkdir_parent(const char *path);

#endif /* HVS_CONTROL_H */
