/*
 * host/vsp/ic_kvp.c - host half of the KVP IC (spec 4.8).
 *
 * Requests to the guest wait in a FIFO and go out one at a time (the guest
 * handles one at a time). Besides the caller's requests (get, set, delete,
 * enumerate, list) the host, like Hyper-V, keeps itself informed: after
 * negotiation it pushes its own data into the auto-external pool, and every
 * refresh period it walks all four pools into a mirror and reads the
 * guest's clock key to measure the guest's clock offset.
 *
 * Every guest answer is parsed here from the private copy: sizes even and
 * inside their fields, strings bounded (a missing NUL is tolerated, the
 * field's size bounds the string), integers of their width; anything else
 * fails the request with -EPROTO and is counted. A guest that never ends a
 * walk is cut at 4096 records.
 */
#define _GNU_SOURCE
#include "host/vsp/ic_host_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/control.h"
#include "vmbus/ic.h"

#define KV_KEY_BYTES	HV_KVP_EXCHANGE_MAX_KEY_SIZE
#define KV_VAL_BYTES	HV_KVP_EXCHANGE_MAX_VALUE_SIZE
#define KV_NPOOLS	4u
#define KV_QUEUE_MAX	64u	/* caller requests waiting */
#define KV_LIST_MAX	4096u	/* records in one walk */

enum kreq_kind {
	KR_USER = 0,	/* get / set / delete / enumerate for a caller */
	KR_LIST,	/* a caller's walk */
	KR_WALK,	/* the mirror's walk */
	KR_OFFSET,	/* read the guest clock key */
	KR_HOSTINFO,	/* push host data */
};

struct kmrec {
	uint32_t type;
	char *key;
	char *value;
};

struct kmirror {
	bool valid;
	uint64_t at_ns;
	uint32_t n;
	struct kmrec *recs;		/* HVS_IC_KVP_MIRROR_MAX */
};

struct kreq {
	struct kreq *next;
	enum kreq_kind kind;
	uint8_t op, pool;
	uint32_t index;
	uint32_t type;
	uint32_t key_size, val_size;	/* bytes, incl. NUL for strings */
	uint8_t key[KV_KEY_BYTES];
	uint8_t val[KV_VAL_BYTES];
	hvs_ic_kvp_fn *cb;
	hvs_ic_offset_fn *ocb;
	void *arg;
	int64_t sent_utc;		/* KR_OFFSET */
	bool periodic;			/* KR_OFFSET of the refresh */
	uint32_t items;			/* walks */
	struct kmirror stage;		/* KR_WALK */
};

struct ich_kvp {
	struct kreq *head, *tail;
	uint32_t nuser;			/* caller requests queued */
	struct kreq *cur;		/* outstanding */
	struct kmirror mir[KV_NPOOLS];
	bool walking[KV_NPOOLS];
	bool offset_queued;
	uint64_t next_refresh;
	bool hostinfo_due;
	uint64_t sets, deletes, gets, walks, walk_errors, cut;
	struct hvs_ic_kvp_result res;
	uint8_t msg[sizeof(struct kvp_msg_enumerate)];
};

/* ---- UTF-8 <-> UTF-16LE (the host's own) ---- */

/* Strict UTF-8 -> UTF-16LE + NUL in out[0..max). Bytes incl. NUL, or -1. */
static int u8_to_u16(const char *s, uint8_t *out, uint32_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t o = 0;

	while (*u) {
		uint32_t c = *u, n, lo;

		if (c < 0x80) {
			n = 0;
			lo = 0;
		} else if (c >= 0xC2 && c <= 0xDF) {
			c &= 0x1F;
			n = 1;
			lo = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			c &= 0x0F;
			n = 2;
			lo = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			c &= 0x07;
			n = 3;
			lo = 0x10000;
		} else {
			return -1;
		}
		u++;
		for (uint32_t i = 0; i < n; i++, u++) {
			if ((*u & 0xC0) != 0x80)
				return -1;
			c = (c << 6) | (*u & 0x3Fu);
		}
		if (c < lo || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000))
			return -1;
		if (c >= 0x10000) {
			if (o + 6 > max)
				return -1;
			c -= 0x10000;
			ich_put16(out + o, (uint16_t)(0xD800 + (c >> 10)));
			ich_put16(out + o + 2, (uint16_t)(0xDC00 + (c & 0x3FF)));
			o += 4;
		} else {
			if (o + 4 > max)
				return -1;
			ich_put16(out + o, (uint16_t)c);
			o += 2;
		}
	}
	ich_put16(out + o, 0);
	return (int)(o + 2);
}

/* UTF-16LE in[0..bytes) (stops at NUL) -> UTF-8 in out[0..size), always
 * terminated; lone surrogates become U+FFFD. */
static void u16_to_u8(const uint8_t *in, uint32_t bytes, char *out,
		      size_t size)
{
	size_t o = 0;

	for (uint32_t i = 0; i + 1 < bytes; i += 2) {
		uint32_t c = ich_get16(in + i);
		char t[4];
		size_t n;

		if (c == 0)
			break;
		if (c >= 0xD800 && c < 0xDC00 && i + 3 < bytes) {
			uint32_t c2 = ich_get16(in + i + 2);

			if (c2 >= 0xDC00 && c2 < 0xE000) {
				c = 0x10000 + ((c - 0xD800) << 10) +
				    (c2 - 0xDC00);
				i += 2;
			}
		}
		if (c >= 0xD800 && c < 0xE000)
			c = 0xFFFD;
		if (c < 0x80) {
			t[0] = (char)c;
			n = 1;
		} else if (c < 0x800) {
			t[0] = (char)(0xC0 | (c >> 6));
			t[1] = (char)(0x80 | (c & 0x3F));
			n = 2;
		} else if (c < 0x10000) {
			t[0] = (char)(0xE0 | (c >> 12));
			t[1] = (char)(0x80 | ((c >> 6) & 0x3F));
			t[2] = (char)(0x80 | (c & 0x3F));
			n = 3;
		} else {
			t[0] = (char)(0xF0 | (c >> 18));
			t[1] = (char)(0x80 | ((c >> 12) & 0x3F));
			t[2] = (char)(0x80 | ((c >> 6) & 0x3F));
			t[3] = (char)(0x80 | (c & 0x3F));
			n = 4;
		}
		if (o + n + 1 > size)
			break;
		memcpy(out + o, t, n);
		o += n;
	}
	out[o] = '\0';
}

/* ---- the mirror ---- */

static void km_clear(struct kmirror *m)
{
	for (uint32_t i = 0; i < m->n; i++) {
		free(m->recs[i].key);
		free(m->recs[i].value);
	}
	m->n = 0;
}

static void km_free(struct kmirror *m)
{
	km_clear(m);
	free(m->recs);
	m->recs = NULL;
	m->valid = false;
}

static int km_find(const struct kmirror *m, const char *key)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (strcmp(m->recs[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* Insert or replace. false when full or out of memory. */
static bool km_put(struct kmirror *m, const char *key, uint32_t type,
		   const char *value)
{
	int i = km_find(m, key);
	char *k, *v;

	if (m->recs == NULL) {
		m->recs = calloc(HVS_IC_KVP_MIRROR_MAX, sizeof(m->recs[0]));
		if (m->recs == NULL)
			return false;
	}
	if (i < 0 && m->n >= HVS_IC_KVP_MIRROR_MAX)
		return false;
	k = strdup(key);
	v = strdup(value);
	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		return false;
	}
	if (i < 0) {
		i = (int)m->n++;
	} else {
		free(m->recs[i].key);
		free(m->recs[i].value);
	}
	m->recs[i].key = k;
	m->recs[i].value = v;
	m->recs[i].type = type;
	return true;
}

static void km_del(struct kmirror *m, const char *key)
{
	int i = km_find(m, key);

	if (i < 0)
		return;
	free(m->recs[i].key);
	free(m->recs[i].value);
	memmove(&m->recs[i], &m->recs[i + 1],
		(m->n - (uint32_t)i - 1) * sizeof(m->recs[0]));
	m->n--;
}

/* ---- the queue ---- */

static struct kreq *kq_new(struct ich_kvp *kv, enum kreq_kind kind,
			   uint8_t op, uint8_t pool)
{
	struct kreq *r;

	if ((kind == KR_USER || kind == KR_LIST) && kv->nuser >= KV_QUEUE_MAX)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->kind = kind;
	r->op = op;
	r->pool = pool;
	return r;
}

static void kq_push(struct ich_kvp *kv, struct kreq *r, bool front)
{
	if (r->kind == KR_USER || r->kind == KR_LIST)
		kv->nuser++;
	if (front) {
		r->next = kv->head;
		kv->head = r;
		if (kv->tail == NULL)
			kv->tail = r;
	} else {
		r->next = NULL;
		if (kv->tail)
			kv->tail->next = r;
		else
			kv->head = r;
		kv->tail = r;
	}
}

static struct kreq *kq_pop(struct ich_kvp *kv)
{
	struct kreq *r = kv->head;

	if (r == NULL)
		return NULL;
	kv->head = r->next;
	if (kv->head == NULL)
		kv->tail = NULL;
	if (r->kind == KR_USER || r->kind == KR_LIST)
		kv->nuser--;
	r->next = NULL;
	return r;
}

static void kq_free(struct kreq *r)
{
	km_free(&r->stage);
	free(r);
}

/* ---- building requests ---- */

static uint32_t kv_build(struct ich_dev *d, const struct kreq *r, uint8_t *b)
{
	uint32_t len;

	switch (r->op) {
	case KVP_OP_DELETE:
		len = sizeof(struct kvp_msg_delete);
		break;
	case KVP_OP_ENUMERATE:
		len = sizeof(struct kvp_msg_enumerate);
		break;
	default:
		len = sizeof(struct kvp_msg_get_set);
		break;
	}
	memset(b, 0, len);
	ich_put_hdr(d, b, IC_MSGTYPE_KVPEXCHANGE, len - IC_HDR_SIZE);
	b[28] = r->op;
	b[29] = r->pool;
	switch (r->op) {
	case KVP_OP_DELETE:
		ich_put32(b + 32, r->key_size);
		memcpy(b + 36, r->key, r->key_size);
		break;
	case KVP_OP_ENUMERATE:
		ich_put32(b + 32, r->index);
		break;
	default:
		ich_put32(b + 32, r->type);
		ich_put32(b + 36, r->key_size);
		ich_put32(b + 40, r->val_size);
		memcpy(b + 44, r->key, r->key_size);
		memcpy(b + 556, r->val, r->val_size);
		break;
	}
	return len;
}

/* ---- answers ---- */

static void kv_result_init(struct ich_kvp *kv, const struct kreq *r, int err,
			   uint32_t status)
{
	struct hvs_ic_kvp_result *res = &kv->res;

	memset(res, 0, sizeof(*res));
	res->kr_err = err;
	res->kr_status = status;
	res->kr_op = r->op;
	res->kr_pool = r->pool;
	res->kr_index = r->index;
	if (r->op != KVP_OP_ENUMERATE)
		u16_to_u8(r->key, r->key_size, res->kr_key,
			  sizeof(res->kr_key));
	if (r->op == KVP_OP_SET) {
		/* What was set, as the caller and the mirror see it. */
		res->kr_type = r->type;
		if (r->type == KVP_REG_U32)
			snprintf(res->kr_value, sizeof(res->kr_value), "%u",
				 ich_get32(r->val));
		else if (r->type == KVP_REG_U64)
			snprintf(res->kr_value, sizeof(res->kr_value), "%llu",
				 (unsigned long long)ich_get64(r->val));
		else
			u16_to_u8(r->val, r->val_size, res->kr_value,
				  sizeof(res->kr_value));
	}
}

/*
 * Parse the record of a GET / ENUMERATE answer at p + off into kv->res.
 * Returns 0 or -EPROTO.
 */
static int kv_parse_record(struct ich_dev *d, const uint8_t *rec)
{
	struct hvs_ic_kvp_result *res = &d->d_ic->ic_kvp->res;
	uint32_t type = ich_get32(rec), ks = ich_get32(rec + 4),
		 vs = ich_get32(rec + 8);
	const uint8_t *key = rec + 12, *val = rec + 12 + KV_KEY_BYTES;

	if (ks < 2 || ks > KV_KEY_BYTES || (ks & 1u) || vs > KV_VAL_BYTES) {
		ich_bad(d, "record with key_size %u, value_size %u", ks, vs);
		return -EPROTO;
	}
	res->kr_type = type;
	u16_to_u8(key, ks, res->kr_key, sizeof(res->kr_key));
	switch (type) {
	case KVP_REG_SZ:
	case KVP_REG_EXPAND_SZ:
		if (vs & 1u) {
			ich_bad(d, "string value of odd size %u", vs);
			return -EPROTO;
		}
		u16_to_u8(val, vs, res->kr_value, sizeof(res->kr_value));
		break;
	case KVP_REG_U32:
		if (vs < 4) {
			ich_bad(d, "u32 value of %u bytes", vs);
			return -EPROTO;
		}
		snprintf(res->kr_value, sizeof(res->kr_value), "%u",
			 ich_get32(val));
		break;
	case KVP_REG_U64:
	case KVP_REG_U64_L_DAEMON:
		if (vs < 8) {
			ich_bad(d, "u64 value of %u bytes", vs);
			return -EPROTO;
		}
		res->kr_type = KVP_REG_U64;
		snprintf(res->kr_value, sizeof(res->kr_value), "%llu",
			 (unsigned long long)ich_get64(val));
		break;
	default:
		ich_bad(d, "record of unknown value type %u", type);
		return -EPROTO;
	}
	if (res->kr_key[0] == '\0') {
		ich_bad(d, "record with an empty key");
		return -EPROTO;
	}
	return 0;
}

/* 100-ns units since 1601 in decimal -> unix ns. false if not that. */
static bool kv_parse_time(const char *s, int64_t *unix_ns)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < IC_TIMESYNC_EPOCH_DELTA ||
	    v - IC_TIMESYNC_EPOCH_DELTA > (uint64_t)INT64_MAX / 100)
		return false;
	*unix_ns = (int64_t)(v - IC_TIMESYNC_EPOCH_DELTA) * 100;
	return true;
}

/* Complete r (no longer outstanding) with err/status; kv->res holds the
 * record when err is 0 for GET/ENUMERATE. Frees r unless continued. */
static void kv_complete(struct ich_dev *d, struct kreq *r, int err,
			uint32_t status)
{
	struct hvs_ic *ic = d->d_ic;
	struct ich_kvp *kv = ic->ic_kvp;
	struct hvs_ic_kvp_result *res = &kv->res;
	bool more = err == 0 && r->op == KVP_OP_ENUMERATE;

	switch (r->kind) {
	case KR_USER:
	case KR_HOSTINFO:
		if (err == 0 && r->op == KVP_OP_SET) {
			kv->sets++;
			if (kv->mir[r->pool].valid)
				(void)km_put(&kv->mir[r->pool], res->kr_key,
					     r->type, res->kr_value);
		} else if (err == 0 && r->op == KVP_OP_DELETE) {
			kv->deletes++;
			km_del(&kv->mir[r->pool], res->kr_key);
		} else if (err == 0) {
			kv->gets++;
		}
		if (r->kind == KR_HOSTINFO && err != 0 && err != -ENODEV)
			HVS_WARN(ic->ic_vm, "ic-kvp: host data %s not pushed: "
				 "%d (status %#x)", res->kr_key, err, status);
		if (r->cb)
			r->cb(r->arg, res);
		break;
	case KR_LIST:
		if (more && r->items >= KV_LIST_MAX) {
			kv->cut++;
			more = false;
			err = -EOVERFLOW;
		}
		if (more) {
			r->items++;
			res->kr_last = false;
			if (r->cb)
				r->cb(r->arg, res);
			r->index++;
			kq_push(kv, r, true);
			return;
		}
		kv_result_init(kv, r, err == -ENOENT ? 0 : err, status);
		res->kr_last = true;
		if (r->cb)
			r->cb(r->arg, res);
		break;
	case KR_WALK:
		if (more && !km_put(&r->stage, res->kr_key, res->kr_type,
				    res->kr_value)) {
			kv->cut++;
			more = false;
			err = -ENOENT;	/* keep what fits */
		}
		if (more) {
			r->index++;
			kq_push(kv, r, true);
			return;
		}
		kv->walking[r->pool] = false;
		if (err == -ENOENT) {
			struct kmirror *m = &kv->mir[r->pool];

			km_free(m);
			*m = r->stage;
			memset(&r->stage, 0, sizeof(r->stage));
			m->valid = true;
			m->at_ns = ich_now();
			kv->walks++;
		} else {
			kv->walk_errors++;
		}
		break;
	case KR_OFFSET: {
		struct ich_ts *ts = &ic->ic_ts;
		int64_t guest, now = ich_host_utc_ns(ic), off = 0;
		uint64_t rtt = 0;

		if (r->periodic)
			kv->offset_queued = false;
		if (err == 0 && !kv_parse_time(res->kr_value, &guest)) {
			ich_bad(d, "guest time '%.40s' is not a time",
				res->kr_value);
			err = -EPROTO;
		}
		if (err == 0) {
			/* The guest read its clock somewhere in the round
			 * trip: take the middle, +- half of it. */
			rtt = (uint64_t)(now - r->sent_utc);
			off = guest - (r->sent_utc + (now - r->sent_utc) / 2);
			ts->ts_off_valid = true;
			ts->ts_off_ns = off;
			ts->ts_off_err_ns = rtt / 2;
			ts->ts_off_at_ns = ich_now();
		}
		if (r->ocb)
			r->ocb(r->arg, err, off, rtt);
		break;
	}
	}
	kq_free(r);
}

static void kv_reply(struct ich_dev *d, const uint8_t *p, uint32_t len,
		     uint32_t status)
{
	struct ich_kvp *kv = d->d_ic->ic_kvp;
	struct kreq *r = kv->cur;
	uint32_t need = 0;
	int err = 0;

	kv->cur = NULL;
	if (r == NULL)
		return;
	kv_result_init(kv, r, 0, status);
	if (len < IC_HDR_SIZE + 2u || p[28] != r->op || p[29] != r->pool) {
		ich_bad(d, "answer does not echo operation %u pool %u", r->op,
			r->pool);
		err = -EPROTO;
	} else if (status == IC_STATUS_S_OK) {
		if (r->op == KVP_OP_GET)
			need = sizeof(struct kvp_msg_get_set);
		else if (r->op == KVP_OP_ENUMERATE)
			need = sizeof(struct kvp_msg_enumerate);
		if (len < need) {
			ich_bad(d, "%u-byte answer to operation %u", len,
				r->op);
			err = -EPROTO;
		} else if (r->op == KVP_OP_GET) {
			err = kv_parse_record(d, p + 32);
		} else if (r->op == KVP_OP_ENUMERATE) {
			err = kv_parse_record(d, p + 36);
		}
	} else if (r->op == KVP_OP_ENUMERATE &&
		   status == IC_STATUS_NO_MORE_ITEMS) {
		err = -ENOENT;
	} else if (r->op == KVP_OP_GET && status == IC_STATUS_E_FAIL) {
		/* L and our guest answer E_FAIL for a key they lack. */
		err = -ENOENT;
	} else {
		err = -EIO;
	}
	kv->res.kr_err = err;
	kv_complete(d, r, err, status);
}

static void kv_failed(struct ich_dev *d, int err)
{
	struct ich_kvp *kv = d->d_ic->ic_kvp;
	struct kreq *r = kv->cur;

	kv->cur = NULL;
	if (r == NULL)
		return;
	kv_result_init(kv, r, err, 0);
	kv_complete(d, r, err, 0);
}

/* Fail everything queued (channel gone). */
static void kv_fail_all(struct ich_dev *d, int err)
{
	struct ich_kvp *kv = d->d_ic->ic_kvp;
	struct kreq *r;

	kv_failed(d, err);
	while ((r = kq_pop(kv)) != NULL) {
		kv_result_init(kv, r, err, 0);
		kv_complete(d, r, err, 0);
	}
	/* Continuations pushed back by kv_complete for err != 0 do not
	 * exist: only a successful item continues a walk. */
}

static void kv_closed(struct ich_dev *d)
{
	struct ich_kvp *kv = d->d_ic->ic_kvp;

	kv_fail_all(d, -ENODEV);
	kv->hostinfo_due = false;
	kv->offset_queued = false;
	memset(kv->walking, 0, sizeof(kv->walking));
}

/* Queue a SET of host data into the auto-external pool. */
static void kv_push_info(struct ich_kvp *kv, const char *key, const char *v)
{
	struct kreq *r = kq_new(kv, KR_HOSTINFO, KVP_OP_SET,
				KVP_POOL_AUTO_EXTERNAL);
	int ks, vs;

	if (r == NULL)
		return;
	ks = u8_to_u16(key, r->key, KV_KEY_BYTES);
	vs = u8_to_u16(v, r->val, KV_VAL_BYTES);
	if (ks < 0 || vs < 0) {
		kq_free(r);
		return;
	}
	r->key_size = (uint32_t)ks;
	r->val_size = (uint32_t)vs;
	r->type = KVP_REG_SZ;
	kq_push(kv, r, false);
}

static void kv_negotiated(struct ich_dev *d)
{
	struct ich_kvp *kv = d->d_ic->ic_kvp;

	kv->hostinfo_due = !d->d_ic->ic_cfg.ic_no_host_info;
	kv->next_refresh = 0;
}

static void kv_queue_refresh(struct hvs_ic *ic)
{
	struct ich_kvp *kv = ic->ic_kvp;

	for (uint8_t pool = 0; pool < KV_NPOOLS; pool++) {
		struct kreq *r;

		if (kv->walking[pool])
			continue;
		r = kq_new(kv, KR_WALK, KVP_OP_ENUMERATE, pool);
		if (r == NULL)
			continue;
		kv->walking[pool] = true;
		kq_push(kv, r, false);
	}
	if (!kv->offset_queued) {
		struct kreq *r = kq_new(kv, KR_OFFSET, KVP_OP_GET,
					KVP_POOL_GUEST);

		if (r) {
			r->key_size = (uint32_t)u8_to_u16(IC_KVP_KEY_GUEST_TIME,
							  r->key, KV_KEY_BYTES);
			r->periodic = true;
			kv->offset_queued = true;
			kq_push(kv, r, false);
		}
	}
}

static void kv_idle(struct ich_dev *d, uint64_t now)
{
	struct hvs_ic *ic = d->d_ic;
	struct ich_kvp *kv = ic->ic_kvp;
	struct kreq *r;
	uint32_t len;
	int err;

	if (kv->hostinfo_due) {
		char host[256];

		kv->hostinfo_due = false;
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		kv_push_info(kv, "HostName", host);
		kv_push_info(kv, "PhysicalHostName", host);
		kv_push_info(kv, "VirtualMachineName", ic->ic_vm);
	}
	if (now >= kv->next_refresh) {
		kv->next_refresh = now + ic->ic_cfg.ic_kvp_refresh_ns;
		kv_queue_refresh(ic);
	}
	if (kv->cur != NULL || (r = kq_pop(kv)) == NULL)
		return;
	len = kv_build(d, r, kv->msg);
	if (r->kind == KR_OFFSET)
		r->sent_utc = ich_host_utc_ns(ic);
	kv->cur = r;
	err = ich_request(d, kv->msg, len);
	if (err != 0) {
		kv->cur = NULL;
		kv_result_init(kv, r, err, 0);
		kv_complete(d, r, err, 0);
	}
}

const struct ich_ops ich_kvp_ops = {
	.o_name = "kvp",
	.o_class = HV_GUID_KVP_INIT,
	.o_msgtype = IC_MSGTYPE_KVPEXCHANGE,
	.o_negotiated = kv_negotiated,
	.o_reply = kv_reply,
	.o_failed = kv_failed,
	.o_idle = kv_idle,
	.o_closed = kv_closed,
};

/* ---- set-up ---- */

int ich_kvp_init(struct hvs_ic *ic)
{
	ic->ic_kvp = calloc(1, sizeof(*ic->ic_kvp));
	return ic->ic_kvp ? 0 : -ENOMEM;
}

void ich_kvp_fini(struct hvs_ic *ic)
{
	struct ich_kvp *kv = ic->ic_kvp;
	struct kreq *r;

	if (kv == NULL)
		return;
	if (kv->cur)
		kq_free(kv->cur);
	while ((r = kq_pop(kv)) != NULL)
		kq_free(r);
	for (unsigned i = 0; i < KV_NPOOLS; i++)
		km_free(&kv->mir[i]);
	free(kv);
	ic->ic_kvp = NULL;
}

/* ---- public ---- */

static int kv_enqueue(struct hvs_ic *ic, enum kreq_kind kind, uint8_t op,
		      uint8_t pool, const char *key, const char *value,
		      hvs_ic_kvp_fn *cb, void *arg, struct kreq **out)
{
	struct ich_kvp *kv;
	struct kreq *r;
	int n;

	if (ic == NULL || pool >= KV_NPOOLS)
		return -EINVAL;
	kv = ic->ic_kvp;
	if (!ic->ic_dev[HVS_IC_KVP].d_registered ||
	    !ich_ready(&ic->ic_dev[HVS_IC_KVP]))
		return -ENODEV;
	if (kv->nuser >= KV_QUEUE_MAX)
		return -EAGAIN;
	r = kq_new(kv, kind, op, pool);
	if (r == NULL)
		return -ENOMEM;
	if (key) {
		n = key[0] ? u8_to_u16(key, r->key, KV_KEY_BYTES) : -1;
		if (n < 0) {
			kq_free(r);
			return -EINVAL;
		}
		r->key_size = (uint32_t)n;
	}
	if (value) {
		n = u8_to_u16(value, r->val, KV_VAL_BYTES);
		if (n < 0) {
			kq_free(r);
			return -EINVAL;
		}
		r->val_size = (uint32_t)n;
		r->type = KVP_REG_SZ;
	}
	r->cb = cb;
	r->arg = arg;
	if (out) {
		*out = r;	/* the caller finishes and pushes it */
		return 0;
	}
	kq_push(kv, r, false);
	ich_pump(ic);
	return 0;
}

int hvs_ic_kvp_get(struct hvs_ic *ic, uint8_t pool, const char *key,
		   hvs_ic_kvp_fn *cb, void *arg)
{
	if (key == NULL)
		return -EINVAL;
	return kv_enqueue(ic, KR_USER, KVP_OP_GET, pool, key, NULL, cb, arg,
			  NULL);
}

int hvs_ic_kvp_set(struct hvs_ic *ic, uint8_t pool, const char *key,
		   const char *value, hvs_ic_kvp_fn *cb, void *arg)
{
	if (key == NULL || value == NULL)
		return -EINVAL;
	return kv_enqueue(ic, KR_USER, KVP_OP_SET, pool, key, value, cb, arg,
			  NULL);
}

int hvs_ic_kvp_set_int(struct hvs_ic *ic, uint8_t pool, const char *key,
		       uint64_t value, bool u64, hvs_ic_kvp_fn *cb, void *arg)
{
	struct kreq *r;
	int err;

	if (key == NULL || (!u64 && value > UINT32_MAX))
		return -EINVAL;
	err = kv_enqueue(ic, KR_USER, KVP_OP_SET, pool, key, NULL, cb, arg,
			 &r);
	if (err != 0)
		return err;
	if (u64) {
		r->type = KVP_REG_U64;
		r->val_size = 8;
		ich_put64(r->val, value);
	} else {
		r->type = KVP_REG_U32;
		r->val_size = 4;
		ich_put32(r->val, (uint32_t)value);
	}
	kq_push(ic->ic_kvp, r, false);
	ich_pump(ic);
	return 0;
}

int hvs_ic_kvp_delete(struct hvs_ic *ic, uint8_t pool, const char *key,
		      hvs_ic_kvp_fn *cb, void *arg)
{
	if (key == NULL)
		return -EINVAL;
	return kv_enqueue(ic, KR_USER, KVP_OP_DELETE, pool, key, NULL, cb, arg,
			  NULL);
}

int hvs_ic_kvp_enumerate(struct hvs_ic *ic, uint8_t pool, uint32_t index,
			 hvs_ic_kvp_fn *cb, void *arg)
{
	struct kreq *r;
	int err = kv_enqueue(ic, KR_USER, KVP_OP_ENUMERATE, pool, NULL, NULL,
			     cb, arg, &r);

	if (err != 0)
		return err;
	r->index = index;
	kq_push(ic->ic_kvp, r, false);
	ich_pump(ic);
	return 0;
}

int hvs_ic_kvp_list(struct hvs_ic *ic, uint8_t pool, hvs_ic_kvp_fn *cb,
		    void *arg)
{
	return kv_enqueue(ic, KR_LIST, KVP_OP_ENUMERATE, pool, NULL, NULL, cb,
			  arg, NULL);
}

int hvs_ic_time_offset(struct hvs_ic *ic, hvs_ic_offset_fn *cb, void *arg)
{
	struct kreq *r;
	int err = kv_enqueue(ic, KR_USER, KVP_OP_GET, KVP_POOL_GUEST,
			     IC_KVP_KEY_GUEST_TIME, NULL, NULL, arg, &r);

	if (err != 0)
		return err;
	r->kind = KR_OFFSET;
	r->ocb = cb;
	kq_push(ic->ic_kvp, r, false);
	ich_pump(ic);
	return 0;
}

int hvs_ic_kvp_refresh(struct hvs_ic *ic)
{
	if (ic == NULL)
		return -EINVAL;
	if (!ich_ready(&ic->ic_dev[HVS_IC_KVP]))
		return -ENODEV;
	ic->ic_kvp->next_refresh = 0;
	ich_pump(ic);
	return 0;
}

int hvs_ic_kvp_mirror_get(const struct hvs_ic *ic, uint8_t pool,
			  const char *key, uint32_t *type, char *value,
			  size_t size)
{
	const struct kmirror *m;
	int i;

	if (ic == NULL || ic->ic_kvp == NULL || pool >= KV_NPOOLS ||
	    key == NULL || value == NULL || size == 0)
		return -EINVAL;
	m = &ic->ic_kvp->mir[pool];
	if (!m->valid)
		return -ENODATA;
	i = km_find(m, key);
	if (i < 0)
		return -ENOENT;
	if (strlen(m->recs[i].value) + 1 > size)
		return -ENOBUFS;
	strcpy(value, m->recs[i].value);
	if (type)
		*type = m->recs[i].type;
	return 0;
}

int hvs_ic_kvp_mirror_foreach(const struct hvs_ic *ic, uint8_t pool,
			      int (*fn)(void *arg, const char *key,
					uint32_t type, const char *value),
			      void *arg, uint64_t *age_ns)
{
	const struct kmirror *m;

	if (ic == NULL || ic->ic_kvp == NULL || pool >= KV_NPOOLS || fn == NULL)
		return -EINVAL;
	m = &ic->ic_kvp->mir[pool];
	if (age_ns)
		*age_ns = m->valid ? ich_now() - m->at_ns : UINT64_MAX;
	for (uint32_t i = 0; m->valid && i < m->n; i++) {
		int r = fn(arg, m->recs[i].key, m->recs[i].type,
			   m->recs[i].value);

		if (r != 0)
			return r;
	}
	return 0;
}

int ich_kvp_describe(const struct hvs_ic *ic, struct hvs_jw *w)
{
	const struct ich_kvp *kv = ic->ic_kvp;

	hvs_jw_uint(w, "queued", kv->nuser);
	hvs_jw_uint(w, "sets", kv->sets);
	hvs_jw_uint(w, "deletes", kv->deletes);
	hvs_jw_uint(w, "gets", kv->gets);
	hvs_jw_uint(w, "walks", kv->walks);
	hvs_jw_uint(w, "walk_errors", kv->walk_errors);
	hvs_jw_obj_begin(w, "pools");
	for (unsigned i = 0; i < KV_NPOOLS; i++) {
		static const char *const names[KV_NPOOLS] = {
			"external", "guest", "auto", "auto_external",
		};

		if (kv->mir[i].valid)
			hvs_jw_uint(w, names[i], kv->mir[i].n);
		else
			hvs_jw_null(w, names[i]);
	}
	hvs_jw_obj_end(w);
	return 0;
}
