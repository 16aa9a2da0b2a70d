/*
 * guest/ic/kvp.c - the KVP (data exchange) IC (spec/vmbus-devices.md 4.8).
 *
 * Pools, as this guest serves them:
 *   0 EXTERNAL       written by the host (SET/DELETE), stored, persisted;
 *   1 GUEST          written by the guest (ic_kvp_set) and by the host,
 *                    stored, persisted; plus the computed time record
 *                    IC_KVP_KEY_GUEST_TIME (enumeration index 0);
 *   2 AUTO           the guest's intrinsic data, computed on request at the
 *                    indexes of L's convention (FQDN, IC version, IPv4,
 *                    IPv6, OS build, name, major, minor, version,
 *                    architecture); read-only for the host;
 *   3 AUTO_EXTERNAL  written by the host (its own intrinsic data), stored,
 *                    persisted.
 * Pool 4 (AUTO_INTERNAL) never appears on the wire (V) and is refused.
 *
 * The host has one request outstanding at a time (spec 4.8, L); the
 * callback copies it into kv_req and deferred work answers it (the auto
 * pool and the time record call OS hooks, and a change is saved through
 * kc_save, both of which may sleep). A second request while one is pending
 * is refused at once (E_FAIL, counted).
 *
 * Every host string is bounded by its field, must have an even byte count
 * and a UTF-16 NUL inside it, and is stored cut after that NUL, so it is
 * always terminated (hostile-host item 20).
 */
#include "ic_priv.h"

static const struct ic_ver kvp_versions[] = IC_KVP_GUEST_VERSIONS;
#define KVP_NVERS (sizeof(kvp_versions) / sizeof(kvp_versions[0]))

#define KVP_KEY_MAX	HV_KVP_EXCHANGE_MAX_KEY_SIZE	/* bytes */
#define KVP_VAL_MAX	HV_KVP_EXCHANGE_MAX_VALUE_SIZE	/* bytes */
#define KVP_NPOOLS	4u
#define KVP_DEFAULT_RECORDS 64u

/* Persistence blob (our own format, little-endian). */
#define KVP_BLOB_MAGIC	0x564B4349u	/* "ICKV" */
#define KVP_BLOB_VERSION 1u
#define KVP_BLOB_HDR	16u
#define KVP_BLOB_REC_HDR 12u
#define KVP_BLOB_TRAILER 4u	/* FNV-1a of everything before */

struct ic_kvp_rec {
	uint8_t  kr_pool;
	uint16_t kr_key_size;		/* bytes incl. the UTF-16 NUL */
	uint16_t kr_val_size;		/* bytes (strings incl. NUL) */
	uint32_t kr_type;		/* KVP_REG_* */
	uint8_t  kr_key[KVP_KEY_MAX];
	uint8_t  kr_val[KVP_VAL_MAX];
};

struct ic_kvp {
	struct ic_kvp_rec *kv_recs;	/* [0, kv_n) in insertion order */
	uint32_t kv_n;
	uint32_t kv_max;
	struct ic_kvp_status kv_status;
	/* The pending host request (a private copy). */
	bool kv_busy;
	uint8_t *kv_req;		/* IC_RX_BUF_SIZE */
	uint32_t kv_req_len;
	uint64_t kv_req_tid;
	/* The answer is sent from here, so kv_req is free for the host's
	 * next request as soon as the answer leaves. */
	uint8_t *kv_tx;			/* IC_RX_BUF_SIZE */
	bool kv_in_work, kv_again;
	/* kc_save runs once at a time; a change meanwhile saves again. */
	atomic_bool kv_saving;
	atomic_bool kv_dirty;
	struct ic_work kv_work;
};

/* Auto pool keys, by index (spec 4.8, L's convention). */
static const char *const kvp_auto_keys[] = {
	[KVP_AUTO_IDX_FQDN] = "FullyQualifiedDomainName",
	[KVP_AUTO_IDX_IC_VERSION] = "IntegrationServicesVersion",
	[KVP_AUTO_IDX_NET_IPV4] = "NetworkAddressIPv4",
	[KVP_AUTO_IDX_NET_IPV6] = "NetworkAddressIPv6",
	[KVP_AUTO_IDX_OS_BUILD] = "OSBuildNumber",
	[KVP_AUTO_IDX_OS_NAME] = "OSName",
	[KVP_AUTO_IDX_OS_MAJOR] = "OSMajorVersion",
	[KVP_AUTO_IDX_OS_MINOR] = "OSMinorVersion",
	[KVP_AUTO_IDX_OS_VERSION] = "OSVersion",
	[KVP_AUTO_IDX_PROC_ARCH] = "ProcessorArchitecture",
};
#define KVP_NAUTO ((uint32_t)(sizeof(kvp_auto_keys) / sizeof(kvp_auto_keys[0])))

/* ---- UTF-16LE / UTF-8 ---- */

/* UTF-16 units before the first NUL in b[0..size), or -1 if none. */
static int32_t kvp_u16_len(const uint8_t *b, uint32_t size)
{
	for (uint32_t i = 0; i + 1 < size; i += 2)
		if (b[i] == 0 && b[i + 1] == 0)
			return (int32_t)(i / 2);
	return -1;
}

/*
 * UTF-8 (NUL-terminated) -> UTF-16LE with NUL in out[0..max). Rejects bad
 * UTF-8 (overlong forms, surrogates, > U+10FFFF). Returns the bytes written
 * including the NUL, -VMBUS_EINVAL bad input, -VMBUS_ENOSPC too long.
 */
static int32_t kvp_utf8_to_u16(const char *s, uint8_t *out, uint32_t max)
{
	const uint8_t *p = (const uint8_t *)s;
	uint32_t o = 0;

	while (*p) {
		uint32_t c, need, min;

		if (p[0] < 0x80) {
			c = p[0];
			need = 0;
			min = 0;
		} else if ((p[0] & 0xE0) == 0xC0) {
			c = p[0] & 0x1Fu;
			need = 1;
			min = 0x80;
		} else if ((p[0] & 0xF0) == 0xE0) {
			c = p[0] & 0x0Fu;
			need = 2;
			min = 0x800;
		} else if ((p[0] & 0xF8) == 0xF0) {
			c = p[0] & 0x07u;
			need = 3;
			min = 0x10000;
		} else {
			return -VMBUS_EINVAL;
		}
		for (uint32_t k = 1; k <= need; k++) {
			if ((p[k] & 0xC0) != 0x80)
				return -VMBUS_EINVAL;
			c = (c << 6) | (p[k] & 0x3Fu);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return -VMBUS_EINVAL;
		p += need + 1;
		if (c >= 0x10000) {
			uint32_t v = c - 0x10000;

			if (o + 4 + 2 > max)
				return -VMBUS_ENOSPC;
			hv_put_le16(out + o, (uint16_t)(0xD800 | (v >> 10)));
			hv_put_le16(out + o + 2, (uint16_t)(0xDC00 | (v & 0x3FF)));
			o += 4;
		} else {
			if (o + 2 + 2 > max)
				return -VMBUS_ENOSPC;
			hv_put_le16(out + o, (uint16_t)c);
			o += 2;
		}
	}
	if (o + 2 > max)
		return -VMBUS_ENOSPC;
	hv_put_le16(out + o, 0);
	return (int32_t)(o + 2);
}

/*
 * UTF-16LE units in[0..units) -> UTF-8 with NUL in out[0..size). Unpaired
 * surrogates become U+FFFD. Returns the length without NUL, or
 * -VMBUS_ENOBUFS (out too small; out holds an empty string if size > 0).
 */
static int32_t kvp_u16_to_utf8(const uint8_t *in, uint32_t units, char *out,
    uint32_t size)
{
	uint32_t o = 0;

	for (uint32_t i = 0; i < units; i++) {
		uint32_t c = hv_get_le16(in + 2 * i);
		uint8_t tmp[4];
		uint32_t n;

		if (c >= 0xD800 && c <= 0xDBFF && i + 1 < units) {
			uint32_t d = hv_get_le16(in + 2 * (i + 1));

			if (d >= 0xDC00 && d <= 0xDFFF) {
				c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00);
				i++;
			}
		}
		if (c >= 0xD800 && c <= 0xDFFF)
			c = 0xFFFD;
		if (c < 0x80) {
			tmp[0] = (uint8_t)c;
			n = 1;
		} else if (c < 0x800) {
			tmp[0] = (uint8_t)(0xC0 | (c >> 6));
			tmp[1] = (uint8_t)(0x80 | (c & 0x3F));
			n = 2;
		} else if (c < 0x10000) {
			tmp[0] = (uint8_t)(0xE0 | (c >> 12));
			tmp[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
			tmp[2] = (uint8_t)(0x80 | (c & 0x3F));
			n = 3;
		} else {
			tmp[0] = (uint8_t)(0xF0 | (c >> 18));
			tmp[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
			tmp[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
			tmp[3] = (uint8_t)(0x80 | (c & 0x3F));
			n = 4;
		}
		if (o + n + 1 > size) {
			if (size > 0)
				out[0] = '\0';
			return -VMBUS_ENOBUFS;
		}
		for (uint32_t k = 0; k < n; k++)
			out[o++] = (char)tmp[k];
	}
	if (o + 1 > size) {
		if (size > 0)
			out[0] = '\0';
		return -VMBUS_ENOBUFS;
	}
	out[o] = '\0';
	return (int32_t)o;
}

static bool kvp_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* Decimal text of v into out (>= 21 bytes); returns the length. */
static uint32_t kvp_u64_dec(uint64_t v, char *out)
{
	char tmp[21];
	uint32_t n = 0, o = 0;

	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v != 0);
	while (n > 0)
		out[o++] = tmp[--n];
	out[o] = '\0';
	return o;
}

/* ---- validation of host (or blob) records ---- */

/* A key: even byte count in 2..512, a NUL inside, not empty. Returns the
 * units before the NUL, or -1. */
static int32_t kvp_check_key(const uint8_t *key, uint32_t size)
{
	int32_t n;

	if (size < 2 || size > KVP_KEY_MAX || (size & 1u) != 0)
		return -1;
	n = kvp_u16_len(key, size);
	return n >= 1 ? n : -1;
}

/* A value of `type`: strings like keys (empty allowed), integers exactly
 * their width. Returns the stored size (strings cut after the NUL), or -1. */
static int32_t kvp_check_value(uint32_t type, const uint8_t *val,
    uint32_t size)
{
	int32_t n;

	switch (type) {
	case KVP_REG_SZ:
	case KVP_REG_EXPAND_SZ:
		if (size < 2 || size > KVP_VAL_MAX || (size & 1u) != 0)
			return -1;
		n = kvp_u16_len(val, size);
		return n >= 0 ? 2 * n + 2 : -1;
	case KVP_REG_U32:
		return size == 4 ? 4 : -1;
	case KVP_REG_U64:
		return size == 8 ? 8 : -1;
	default:
		return -1;
	}
}

static bool kvp_pool_stored(uint32_t pool)
{
	return pool == KVP_POOL_EXTERNAL || pool == KVP_POOL_GUEST ||
	    pool == KVP_POOL_AUTO_EXTERNAL;
}

/* ---- the store (caller holds the KVP sv_lock) ---- */

static struct ic_svc *kvp_svc(struct ic_services *ics)
{
	return &ics->ics_svc[IC_SVC_KVP];
}

static int32_t kvp_find(struct ic_kvp *kv, uint8_t pool, const uint8_t *key,
    uint32_t key_size)
{
	for (uint32_t i = 0; i < kv->kv_n; i++) {
		const struct ic_kvp_rec *r = &kv->kv_recs[i];

		if (r->kr_pool == pool && r->kr_key_size == key_size &&
		    vmbus_memcmp(r->kr_key, key, key_size) == 0)
			return (int32_t)i;
	}
	return -1;
}

/* Insert or replace; key/value already validated and cut. */
static int kvp_store(struct ic_kvp *kv, uint8_t pool, const uint8_t *key,
    uint32_t key_size, uint32_t type, const uint8_t *val, uint32_t val_size)
{
	int32_t i = kvp_find(kv, pool, key, key_size);
	struct ic_kvp_rec *r;

	if (i < 0) {
		if (kv->kv_n >= kv->kv_max)
			return -VMBUS_ENOSPC;
		i = (int32_t)kv->kv_n++;
	}
	r = &kv->kv_recs[i];
	vmbus_memset(r, 0, sizeof(*r));
	r->kr_pool = pool;
	r->kr_type = type;
	r->kr_key_size = (uint16_t)key_size;
	r->kr_val_size = (uint16_t)val_size;
	vmbus_memcpy(r->kr_key, key, key_size);
	vmbus_memcpy(r->kr_val, val, val_size);
	return 0;
}

static int kvp_remove(struct ic_kvp *kv, uint8_t pool, const uint8_t *key,
    uint32_t key_size)
{
	int32_t i = kvp_find(kv, pool, key, key_size);

	if (i < 0)
		return -VMBUS_ENOENT;
	kv->kv_n--;
	if ((uint32_t)i < kv->kv_n)
		vmbus_memmove(&kv->kv_recs[i], &kv->kv_recs[i + 1],
		    (kv->kv_n - (uint32_t)i) * sizeof(kv->kv_recs[0]));
	vmbus_memset(&kv->kv_recs[kv->kv_n], 0, sizeof(kv->kv_recs[0]));
	return 0;
}

/* The index-th stored record of pool, or NULL. */
static struct ic_kvp_rec *kvp_nth(struct ic_kvp *kv, uint8_t pool,
    uint32_t index)
{
	for (uint32_t i = 0; i < kv->kv_n; i++)
		if (kv->kv_recs[i].kr_pool == pool && index-- == 0)
			return &kv->kv_recs[i];
	return NULL;
}

/* ---- computed records: the auto pool and the guest time ---- */

/*
 * Fill *r (zeroed by the caller) with computed record `index` of `pool`
 * (AUTO: 0..9; GUEST: 0 = the time record). Thread context; no lock held
 * (the OS hook may sleep). Returns true if it exists.
 */
static bool kvp_computed(struct ic_services *ics, uint8_t pool,
    uint32_t index, struct ic_kvp_rec *r, char *scratch, uint32_t ssize)
{
	const struct ic_kvp_config *kc = &ics->ics_cfg.icc_kvp;
	const struct vmbus_platform *p = ics->ics_plat;
	const char *key, *val = "";
	int32_t n;

	if (pool == KVP_POOL_GUEST) {
		int64_t wall;
		uint64_t ft;

		if (index != 0 || kc->kc_no_time_key ||
		    p->wallclock_get == NULL)
			return false;
		key = IC_KVP_KEY_GUEST_TIME;
		wall = p->wallclock_get(p->ctx);
		/* 100 ns since 1601; the guest clock is the subject here,
		 * so no range check: whatever it reads is reported. */
		ft = (uint64_t)((int64_t)IC_TIMESYNC_EPOCH_DELTA + wall / 100);
		kvp_u64_dec(ft, scratch);
		val = scratch;
	} else if (pool == KVP_POOL_AUTO) {
		if (index >= KVP_NAUTO)
			return false;
		key = kvp_auto_keys[index];
		switch (index) {
		case KVP_AUTO_IDX_FQDN: val = kc->kc_fqdn; break;
		case KVP_AUTO_IDX_IC_VERSION:
			val = kc->kc_ic_version ? kc->kc_ic_version :
			    IC_VERSION_STRING;
			break;
		case KVP_AUTO_IDX_NET_IPV4:
		case KVP_AUTO_IDX_NET_IPV6:
			scratch[0] = '\0';
			if (kc->kc_net_addrs &&
			    kc->kc_net_addrs(kc->kc_arg,
			    index == KVP_AUTO_IDX_NET_IPV4 ? 4 : 6, scratch,
			    ssize) >= 0) {
				scratch[ssize - 1] = '\0';
				val = scratch;
			}
			break;
		case KVP_AUTO_IDX_OS_BUILD: val = kc->kc_os_build; break;
		case KVP_AUTO_IDX_OS_NAME: val = kc->kc_os_name; break;
		case KVP_AUTO_IDX_OS_MAJOR: val = kc->kc_os_major; break;
		case KVP_AUTO_IDX_OS_MINOR: val = kc->kc_os_minor; break;
		case KVP_AUTO_IDX_OS_VERSION: val = kc->kc_os_version; break;
		case KVP_AUTO_IDX_PROC_ARCH: val = kc->kc_proc_arch; break;
		default: break;
		}
		if (val == NULL)
			val = "";
	} else {
		return false;
	}
	r->kr_pool = pool;
	r->kr_type = KVP_REG_SZ;
	n = kvp_utf8_to_u16(key, r->kr_key, KVP_KEY_MAX);
	r->kr_key_size = (uint16_t)(n > 0 ? n : 0);
	n = kvp_utf8_to_u16(val, r->kr_val, KVP_VAL_MAX);
	if (n < 0) {
		/* An OS string that is not UTF-8 or too long: empty. */
		ic_log(ics, VMBUS_LOG_WARN, "ic-kvp: value of %s not published "
		    "(%d)", key, n);
		n = kvp_utf8_to_u16("", r->kr_val, KVP_VAL_MAX);
	}
	r->kr_val_size = (uint16_t)n;
	return r->kr_key_size != 0;
}

/* Number of computed records in front of the stored ones of pool. */
static uint32_t kvp_ncomputed(struct ic_services *ics, uint8_t pool)
{
	if (pool == KVP_POOL_AUTO)
		return KVP_NAUTO;
	if (pool == KVP_POOL_GUEST && !ics->ics_cfg.icc_kvp.kc_no_time_key &&
	    ics->ics_plat->wallclock_get != NULL)
		return 1;
	return 0;
}

/* Index of a computed record with this key, or -1. */
static int32_t kvp_computed_index(struct ic_services *ics, uint8_t pool,
    const uint8_t *key, uint32_t key_size, struct ic_kvp_rec *tmp)
{
	uint32_t n = kvp_ncomputed(ics, pool);

	for (uint32_t i = 0; i < n; i++) {
		const char *name = pool == KVP_POOL_AUTO ? kvp_auto_keys[i] :
		    IC_KVP_KEY_GUEST_TIME;
		int32_t ks = kvp_utf8_to_u16(name, tmp->kr_key, KVP_KEY_MAX);

		if (ks > 0 && (uint32_t)ks == key_size &&
		    vmbus_memcmp(tmp->kr_key, key, key_size) == 0)
			return (int32_t)i;
	}
	return -1;
}

/*
 * Look a record up by key or by index into *out (a private copy), taking
 * the lock only around the store. Thread context. Returns 0 or
 * -VMBUS_ENOENT.
 */
struct kvp_scratch {
	struct ic_kvp_rec ks_rec;
	char ks_text[IC_KVP_VALUE_UTF8_MAX];
};

static int kvp_lookup(struct ic_services *ics, uint8_t pool,
    const uint8_t *key, uint32_t key_size, bool by_index, uint32_t index,
    struct kvp_scratch *s, struct ic_kvp_rec *out)
{
	struct ic_kvp *kv = ics->ics_kvp;
	struct ic_svc *svc = kvp_svc(ics);
	uint32_t nc = kvp_ncomputed(ics, pool);
	int32_t ci;
	int r = -VMBUS_ENOENT;

	vmbus_memset(out, 0, sizeof(*out));
	if (by_index) {
		if (index < nc)
			return kvp_computed(ics, pool, index, out, s->ks_text,
			    sizeof(s->ks_text)) ? 0 : -VMBUS_ENOENT;
		index -= nc;
	} else {
		ci = kvp_computed_index(ics, pool, key, key_size, &s->ks_rec);
		if (ci >= 0)
			return kvp_computed(ics, pool, (uint32_t)ci, out,
			    s->ks_text, sizeof(s->ks_text)) ? 0 :
			    -VMBUS_ENOENT;
	}
	if (!kvp_pool_stored(pool))
		return -VMBUS_ENOENT;
	ic_lock(svc);
	if (by_index) {
		struct ic_kvp_rec *rec = kvp_nth(kv, pool, index);

		if (rec) {
			*out = *rec;
			r = 0;
		}
	} else {
		int32_t i = kvp_find(kv, pool, key, key_size);

		if (i >= 0) {
			*out = kv->kv_recs[i];
			r = 0;
		}
	}
	ic_unlock(svc);
	return r;
}

/* ---- persistence ---- */

static uint32_t kvp_fnv1a(const uint8_t *b, uint32_t n)
{
	uint32_t h = 2166136261u;

	for (uint32_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t kvp_blob_max(uint32_t max_records)
{
	return KVP_BLOB_HDR + max_records * (KVP_BLOB_REC_HDR + KVP_KEY_MAX +
	    KVP_VAL_MAX) + KVP_BLOB_TRAILER;
}

/* Serialise the store and hand it to kc_save. Thread context. */
static void kvp_save_once(struct ic_services *ics)
{
	const struct ic_kvp_config *kc = &ics->ics_cfg.icc_kvp;
	struct ic_kvp *kv = ics->ics_kvp;
	struct ic_svc *svc = kvp_svc(ics);
	uint32_t size = kvp_blob_max(kv->kv_max), o = KVP_BLOB_HDR;
	uint8_t *b;
	int r;

	if (kc->kc_save == NULL)
		return;
	b = ic_zalloc(ics, size);
	if (b == NULL) {
		r = -VMBUS_ENOMEM;
		goto out;
	}
	ic_lock(svc);
	hv_put_le32(b, KVP_BLOB_MAGIC);
	hv_put_le32(b + 4, KVP_BLOB_VERSION);
	hv_put_le32(b + 8, kv->kv_n);
	for (uint32_t i = 0; i < kv->kv_n; i++) {
		const struct ic_kvp_rec *rec = &kv->kv_recs[i];

		b[o] = rec->kr_pool;
		hv_put_le16(b + o + 2, rec->kr_key_size);
		hv_put_le16(b + o + 4, rec->kr_val_size);
		hv_put_le32(b + o + 8, rec->kr_type);
		o += KVP_BLOB_REC_HDR;
		vmbus_memcpy(b + o, rec->kr_key, rec->kr_key_size);
		o += rec->kr_key_size;
		vmbus_memcpy(b + o, rec->kr_val, rec->kr_val_size);
		o += rec->kr_val_size;
	}
	ic_unlock(svc);
	hv_put_le32(b + o, kvp_fnv1a(b, o));
	o += KVP_BLOB_TRAILER;
	r = kc->kc_save(kc->kc_arg, b, o);
	ic_free(ics, b, size);
out:
	ic_lock(svc);
	if (r == 0)
		kv->kv_status.ks_saves++;
	else
		kv->kv_status.ks_save_errors++;
	ic_unlock(svc);
	if (r != 0)
		ic_log(ics, VMBUS_LOG_WARN, "ic-kvp: saving the store failed "
		    "(%d)", r);
}

/*
 * Save after a change. NOTE: kc_save is never called concurrently (the
 * guest API and the host's requests run on different threads): whoever
 * finds a save running marks the store dirty, and the saver goes again.
 */
static void kvp_save(struct ic_services *ics)
{
	struct ic_kvp *kv = ics->ics_kvp;

	atomic_store(&kv->kv_dirty, true);
	for (;;) {
		if (atomic_exchange(&kv->kv_saving, true))
			return;		/* the running saver sees kv_dirty */
		while (atomic_exchange(&kv->kv_dirty, false))
			kvp_save_once(ics);
		atomic_store(&kv->kv_saving, false);
		if (!atomic_load(&kv->kv_dirty))
			return;
	}
}

/* Parse a saved blob (untrusted): all or nothing for the frame, record by
 * record for the contents. */
static void kvp_load_blob(struct ic_services *ics, const uint8_t *b,
    uint32_t len)
{
	struct ic_kvp *kv = ics->ics_kvp;
	uint32_t count, o = KVP_BLOB_HDR, bad = 0;

	if (len < KVP_BLOB_HDR + KVP_BLOB_TRAILER ||
	    hv_get_le32(b) != KVP_BLOB_MAGIC ||
	    hv_get_le32(b + 4) != KVP_BLOB_VERSION ||
	    hv_get_le32(b + len - KVP_BLOB_TRAILER) !=
	    kvp_fnv1a(b, len - KVP_BLOB_TRAILER)) {
		kv->kv_status.ks_load_errors++;
		ic_log(ics, VMBUS_LOG_WARN, "ic-kvp: saved store is corrupt; "
		    "starting empty");
		return;
	}
	count = hv_get_le32(b + 8);
	len -= KVP_BLOB_TRAILER;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t pool, ks, vs, type;
		int32_t kn, vn;

		if (len - o < KVP_BLOB_REC_HDR) {
			bad++;
			break;
		}
		pool = b[o];
		ks = hv_get_le16(b + o + 2);
		vs = hv_get_le16(b + o + 4);
		type = hv_get_le32(b + o + 8);
		o += KVP_BLOB_REC_HDR;
		if (ks > len - o || vs > len - o - ks) {
			bad++;
			break;
		}
		kn = kvp_check_key(b + o, ks);
		vn = kvp_check_value(type, b + o + ks, vs);
		if (kn < 0 || vn < 0 || !kvp_pool_stored(pool) ||
		    kvp_store(kv, (uint8_t)pool, b + o, 2u * (uint32_t)kn + 2,
		    type, b + o + ks, (uint32_t)vn) != 0)
			bad++;
		else
			kv->kv_status.ks_loaded++;
		o += ks + vs;
	}
	if (bad) {
		kv->kv_status.ks_load_errors++;
		ic_log(ics, VMBUS_LOG_WARN, "ic-kvp: %u saved records dropped",
		    bad);
	}
}

/* ---- host requests ---- */

static uint32_t kvp_handle(struct ic_svc *svc, struct ic_msg *m)
{
	struct ic_services *ics = svc->sv_ics;
	struct ic_kvp *kv = ics->ics_kvp;
	uint32_t len = IC_HDR_SIZE + m->im_body_len;
	bool busy;

	if (len < IC_HDR_SIZE + sizeof(struct kvp_hdr)) {
		ic_log_bad(svc, "ic-kvp: %u-byte body is short",
		    m->im_body_len);
		IC_COUNT(svc, is_malformed);
		goto refuse;
	}
	ic_lock(svc);
	busy = kv->kv_busy;
	if (!busy) {
		kv->kv_busy = true;
		vmbus_memcpy(kv->kv_req, m->im_buf, len);
		kv->kv_req_len = len;
		kv->kv_req_tid = m->im_trans_id;
	} else {
		kv->kv_status.ks_busy++;
	}
	ic_unlock(svc);
	if (busy) {
		ic_log_bad(svc, "ic-kvp: request while one is pending refused");
		goto refuse;
	}
	ic_work_schedule(svc, &kv->kv_work);
	return 0;

refuse:
	ic_lock(svc);
	kv->kv_status.ks_refused++;
	ic_unlock(svc);
	ic_msg_set_status(m, IC_STATUS_E_FAIL);
	return len;
}

/* What a processed request changed, for kc_changed after the reply. */
struct kvp_change {
	bool kc_any;
	bool kc_deleted;
	uint8_t kc_pool;
	uint32_t kc_key_units;
	uint8_t kc_key[KVP_KEY_MAX];
};

/* Answer the request in kv_req (a private copy). Thread context. Returns
 * the IC status; the reply body is edited in place. */
static uint32_t kvp_process(struct ic_services *ics, uint8_t *req,
    uint32_t len, struct kvp_scratch *s, struct kvp_change *chg)
{
	struct ic_svc *svc = kvp_svc(ics);
	struct ic_kvp *kv = ics->ics_kvp;
	struct kvp_exchg_msg_value v;
	uint8_t op = req[IC_HDR_SIZE], pool = req[IC_HDR_SIZE + 1];
	uint32_t type, ks, vs, index = 0, off;
	int32_t kn, vn;
	int r;

	switch (op) {
	case KVP_OP_GET:
	case KVP_OP_SET:
		if (len < sizeof(struct kvp_msg_get_set))
			goto short_msg;
		off = (uint32_t)offsetof(struct kvp_msg_get_set, kgs_data);
		break;
	case KVP_OP_ENUMERATE:
		if (len < sizeof(struct kvp_msg_enumerate))
			goto short_msg;
		index = hv_get_le32(req + offsetof(struct kvp_msg_enumerate,
		    ken_index));
		off = (uint32_t)offsetof(struct kvp_msg_enumerate, ken_data);
		break;
	case KVP_OP_DELETE:
		if (len < sizeof(struct kvp_msg_delete))
			goto short_msg;
		off = 0;
		break;
	case KVP_OP_GET_IP_INFO:
	case KVP_OP_SET_IP_INFO:
		/* No IP injection in this guest (yet). */
		return IC_STATUS_NOT_SUPPORTED;
	default:
		ic_log_bad(svc, "ic-kvp: unknown operation %u", op);
		IC_COUNT(svc, is_malformed);
		return IC_STATUS_E_FAIL;
	}
	if (pool >= KVP_NPOOLS) {
		ic_log_bad(svc, "ic-kvp: pool %u out of range", pool);
		IC_COUNT(svc, is_malformed);
		return IC_STATUS_E_FAIL;
	}

	if (op == KVP_OP_DELETE) {
		struct kvp_msg_delete d;

		vmbus_memcpy(&d, req, sizeof(d));
		ks = hv_le32(d.kdl_key_size);
		kn = kvp_check_key(d.kdl_key, ks);
		if (kn < 0)
			goto bad_field;
		if (!kvp_pool_stored(pool))
			return IC_STATUS_E_FAIL;
		ks = 2u * (uint32_t)kn + 2;
		if (kvp_computed_index(ics, pool, d.kdl_key, ks,
		    &s->ks_rec) >= 0)
			return IC_STATUS_E_FAIL;
		ic_lock(svc);
		r = kvp_remove(kv, pool, d.kdl_key, ks);
		if (r == 0)
			kv->kv_status.ks_host_deletes++;
		ic_unlock(svc);
		if (r != 0)
			return IC_STATUS_E_FAIL;
		chg->kc_any = true;
		chg->kc_deleted = true;
		chg->kc_pool = pool;
		chg->kc_key_units = (uint32_t)kn;
		vmbus_memcpy(chg->kc_key, d.kdl_key, ks);
		return IC_STATUS_S_OK;
	}

	vmbus_memcpy(&v, req + off, sizeof(v));
	if (op == KVP_OP_ENUMERATE) {
		r = kvp_lookup(ics, pool, NULL, 0, true, index, s, &s->ks_rec);
		if (r != 0)
			return IC_STATUS_NO_MORE_ITEMS;
		goto fill;
	}
	ks = hv_le32(v.kvr_key_size);
	kn = kvp_check_key(v.kvr_key, ks);
	if (kn < 0)
		goto bad_field;
	ks = 2u * (uint32_t)kn + 2;
	if (op == KVP_OP_GET) {
		r = kvp_lookup(ics, pool, v.kvr_key, ks, false, 0, s,
		    &s->ks_rec);
		if (r != 0)
			return IC_STATUS_E_FAIL;
		goto fill;
	}

	/* SET */
	type = hv_le32(v.kvr_value_type);
	vs = hv_le32(v.kvr_value_size);
	vn = kvp_check_value(type, v.kvr_value, vs);
	if (vn < 0)
		goto bad_field;
	if (!kvp_pool_stored(pool) ||
	    kvp_computed_index(ics, pool, v.kvr_key, ks, &s->ks_rec) >= 0)
		return IC_STATUS_E_FAIL;
	ic_lock(svc);
	r = kvp_store(kv, pool, v.kvr_key, ks, type, v.kvr_value,
	    (uint32_t)vn);
	if (r == 0)
		kv->kv_status.ks_host_sets++;
	ic_unlock(svc);
	if (r != 0) {
		ic_log(ics, VMBUS_LOG_WARN, "ic-kvp: store full (%u records)",
		    kv->kv_max);
		return IC_STATUS_DISK_FULL;
	}
	chg->kc_any = true;
	chg->kc_deleted = false;
	chg->kc_pool = pool;
	chg->kc_key_units = (uint32_t)kn;
	vmbus_memcpy(chg->kc_key, v.kvr_key, ks);
	return IC_STATUS_S_OK;

fill:
	/* GET / ENUMERATE answer: the record, value field zero-padded. */
	vmbus_memset(&v, 0, sizeof(v));
	v.kvr_value_type = hv_cpu_to_le32(s->ks_rec.kr_type);
	v.kvr_key_size = hv_cpu_to_le32(s->ks_rec.kr_key_size);
	v.kvr_value_size = hv_cpu_to_le32(s->ks_rec.kr_val_size);
	vmbus_memcpy(v.kvr_key, s->ks_rec.kr_key, s->ks_rec.kr_key_size);
	vmbus_memcpy(v.kvr_value, s->ks_rec.kr_val, s->ks_rec.kr_val_size);
	vmbus_memcpy(req + off, &v, sizeof(v));
	ic_lock(svc);
	kv->kv_status.ks_host_gets++;
	ic_unlock(svc);
	return IC_STATUS_S_OK;

short_msg:
	ic_log_bad(svc, "ic-kvp: %u-byte operation %u message is short", len,
	    op);
	IC_COUNT(svc, is_malformed);
	return IC_STATUS_E_FAIL;
bad_field:
	ic_log_bad(svc, "ic-kvp: operation %u with a bad key or value "
	    "refused", op);
	IC_COUNT(svc, is_malformed);
	return IC_STATUS_E_FAIL;
}

static void kvp_work(void *arg)
{
	struct ic_services *ics = arg;
	struct ic_svc *svc = kvp_svc(ics);
	struct ic_kvp *kv = ics->ics_kvp;
	const struct ic_kvp_config *kc = &ics->ics_cfg.icc_kvp;
	struct kvp_scratch *s;
	struct kvp_change chg;
	struct ic_msg m;
	uint32_t status;

	/* NOTE: one runner at a time even if the port runs deferred work on
	 * several threads; a second run only asks the first to loop. */
	ic_lock(svc);
	if (kv->kv_in_work) {
		kv->kv_again = true;
		ic_unlock(svc);
		return;
	}
	kv->kv_in_work = true;
	ic_unlock(svc);

	s = ic_zalloc(ics, sizeof(*s));
	for (;;) {
		bool busy;

		ic_lock(svc);
		busy = kv->kv_busy;
		kv->kv_again = false;
		ic_unlock(svc);
		if (!busy)
			goto next;
		chg.kc_any = false;
		m.im_buf = kv->kv_req;
		m.im_len = kv->kv_req_len;
		m.im_body_len = kv->kv_req_len - IC_HDR_SIZE;
		m.im_type = IC_MSGTYPE_KVPEXCHANGE;
		m.im_trans_id = kv->kv_req_tid;
		status = s ? kvp_process(ics, kv->kv_req, kv->kv_req_len, s,
		    &chg) : IC_STATUS_E_FAIL;
		if (status != IC_STATUS_S_OK && status != IC_STATUS_S_CONT) {
			ic_lock(svc);
			kv->kv_status.ks_refused++;
			ic_unlock(svc);
		}
		ic_msg_set_status(&m, status);
		/* NOTE: the host sends its next request as soon as it has
		 * the answer: free kv_req before the answer leaves, sending
		 * from a copy. */
		vmbus_memcpy(kv->kv_tx, kv->kv_req, m.im_len);
		m.im_buf = kv->kv_tx;
		ic_lock(svc);
		kv->kv_busy = false;
		ic_unlock(svc);
		(void)ic_reply(svc, &m, m.im_len);
		if (chg.kc_any) {
			kvp_save(ics);
			if (kc->kc_changed && s &&
			    kvp_u16_to_utf8(chg.kc_key, chg.kc_key_units,
			    s->ks_text, sizeof(s->ks_text)) >= 0)
				kc->kc_changed(kc->kc_arg, chg.kc_pool,
				    s->ks_text, chg.kc_deleted);
		}
next:
		ic_lock(svc);
		if (!kv->kv_again && !kv->kv_busy) {
			kv->kv_in_work = false;
			ic_unlock(svc);
			break;
		}
		ic_unlock(svc);
	}
	ic_free(ics, s, sizeof(*s));
}

static void kvp_closing(struct ic_svc *svc)
{
	struct ic_kvp *kv = svc->sv_ics->ics_kvp;

	/* A request that has not been answered dies with the channel. */
	ic_lock(svc);
	kv->kv_busy = false;
	ic_unlock(svc);
}

const struct ic_svc_ops ic_kvp_ops = {
	.so_name = "kvp",
	.so_class = HV_GUID_KVP_INIT,
	.so_msgtype = IC_MSGTYPE_KVPEXCHANGE,
	.so_versions = kvp_versions,
	.so_nversions = KVP_NVERS,
	.so_handle = kvp_handle,
	.so_closing = kvp_closing,
};

/* ---- set-up ---- */

int ic_kvp_init(struct ic_services *ics)
{
	const struct ic_kvp_config *kc = &ics->ics_cfg.icc_kvp;
	struct ic_kvp *kv;

	kv = ic_zalloc(ics, sizeof(*kv));
	if (kv == NULL)
		return -VMBUS_ENOMEM;
	ics->ics_kvp = kv;
	kv->kv_max = kc->kc_max_records ? kc->kc_max_records :
	    KVP_DEFAULT_RECORDS;
	kv->kv_status.ks_max_records = kv->kv_max;
	kv->kv_recs = ic_zalloc(ics, kv->kv_max * sizeof(kv->kv_recs[0]));
	kv->kv_req = ic_zalloc(ics, IC_RX_BUF_SIZE);
	kv->kv_tx = ic_zalloc(ics, IC_RX_BUF_SIZE);
	atomic_init(&kv->kv_saving, false);
	atomic_init(&kv->kv_dirty, false);
	if (kv->kv_recs == NULL || kv->kv_req == NULL || kv->kv_tx == NULL)
		return -VMBUS_ENOMEM;	/* ic_kvp_fini frees the rest */
	ic_work_init(&kv->kv_work, ics, kvp_work, ics);

	if (kc->kc_load) {
		uint32_t size = kvp_blob_max(kv->kv_max), len = 0;
		uint8_t *b = ic_zalloc(ics, size);
		int r;

		if (b == NULL)
			return -VMBUS_ENOMEM;
		r = kc->kc_load(kc->kc_arg, b, size, &len);
		if (r == 0 && len <= size)
			kvp_load_blob(ics, b, len);
		else if (r == 0)
			kv->kv_status.ks_load_errors++;
		ic_free(ics, b, size);
		if (kv->kv_status.ks_loaded)
			ic_log(ics, VMBUS_LOG_INFO, "ic-kvp: %u records "
			    "restored", kv->kv_status.ks_loaded);
	}
	return 0;
}

void ic_kvp_fini(struct ic_services *ics)
{
	struct ic_kvp *kv = ics->ics_kvp;

	if (kv == NULL)
		return;
	ic_free(ics, kv->kv_recs, kv->kv_max * sizeof(kv->kv_recs[0]));
	ic_free(ics, kv->kv_req, IC_RX_BUF_SIZE);
	ic_free(ics, kv->kv_tx, IC_RX_BUF_SIZE);
	ic_free(ics, kv, sizeof(*kv));
	ics->ics_kvp = NULL;
}

/* ---- the guest's API ---- */

/* Convert a record's value to text for the API. */
static int kvp_value_text(const struct ic_kvp_rec *r, char *buf,
    uint32_t size)
{
	char tmp[21];
	uint32_t n;

	switch (r->kr_type) {
	case KVP_REG_U32:
		n = kvp_u64_dec(hv_get_le32(r->kr_val), tmp);
		break;
	case KVP_REG_U64:
		n = kvp_u64_dec(hv_get_le64(r->kr_val), tmp);
		break;
	default: {
		int32_t u = kvp_u16_len(r->kr_val, r->kr_val_size);

		return kvp_u16_to_utf8(r->kr_val, u < 0 ? 0 : (uint32_t)u, buf,
		    size);
	}
	}
	if (n + 1 > size)
		return -VMBUS_ENOBUFS;
	vmbus_memcpy(buf, tmp, n + 1);
	return (int)n;
}

static int kvp_api_key(struct ic_services *ics, uint8_t pool, const char *key,
    uint8_t *out)
{
	int32_t n;

	if (ics == NULL || ics->ics_kvp == NULL)
		return -VMBUS_ENODEV;
	if (pool >= KVP_NPOOLS || key == NULL || key[0] == '\0')
		return -VMBUS_EINVAL;
	n = kvp_utf8_to_u16(key, out, KVP_KEY_MAX);
	return n < 0 ? -VMBUS_EINVAL : n;
}

int ic_kvp_get(struct ic_services *ics, uint8_t pool, const char *key,
    uint32_t *type, char *buf, uint32_t size)
{
	struct kvp_scratch *s;
	uint8_t k[KVP_KEY_MAX];
	int r = kvp_api_key(ics, pool, key, k);

	if (r < 0)
		return r;
	if (buf == NULL || size == 0)
		return -VMBUS_EINVAL;
	s = ic_zalloc(ics, sizeof(*s));
	if (s == NULL)
		return -VMBUS_ENOMEM;
	r = kvp_lookup(ics, pool, k, (uint32_t)r, false, 0, s, &s->ks_rec);
	if (r == 0) {
		if (type)
			*type = s->ks_rec.kr_type;
		r = kvp_value_text(&s->ks_rec, buf, size);
	}
	ic_free(ics, s, sizeof(*s));
	return r;
}

int ic_kvp_set(struct ic_services *ics, uint8_t pool, const char *key,
    const char *value)
{
	struct ic_svc *svc;
	uint8_t k[KVP_KEY_MAX];
	uint8_t *v;
	int32_t vn;
	int r = kvp_api_key(ics, pool, key, k);

	if (r < 0)
		return r;
	if (pool != KVP_POOL_GUEST || value == NULL)
		return -VMBUS_EINVAL;
	if (kvp_streq(key, IC_KVP_KEY_GUEST_TIME))
		return -VMBUS_EINVAL;
	v = ic_zalloc(ics, KVP_VAL_MAX);
	if (v == NULL)
		return -VMBUS_ENOMEM;
	vn = kvp_utf8_to_u16(value, v, KVP_VAL_MAX);
	if (vn < 0) {
		ic_free(ics, v, KVP_VAL_MAX);
		return -VMBUS_EINVAL;
	}
	svc = kvp_svc(ics);
	ic_lock(svc);
	r = kvp_store(ics->ics_kvp, pool, k, (uint32_t)r, KVP_REG_SZ, v,
	    (uint32_t)vn);
	ic_unlock(svc);
	ic_free(ics, v, KVP_VAL_MAX);
	if (r == 0)
		kvp_save(ics);
	return r;
}

int ic_kvp_delete(struct ic_services *ics, uint8_t pool, const char *key)
{
	struct ic_svc *svc;
	uint8_t k[KVP_KEY_MAX];
	int r = kvp_api_key(ics, pool, key, k);

	if (r < 0)
		return r;
	if (pool != KVP_POOL_GUEST)
		return -VMBUS_EINVAL;
	svc = kvp_svc(ics);
	ic_lock(svc);
	r = kvp_remove(ics->ics_kvp, pool, k, (uint32_t)r);
	ic_unlock(svc);
	if (r == 0)
		kvp_save(ics);
	return r;
}

int ic_kvp_enumerate(struct ic_services *ics, uint8_t pool, uint32_t index,
    char *key, uint32_t key_size, char *value, uint32_t value_size)
{
	struct kvp_scratch *s;
	int r;

	if (ics == NULL || ics->ics_kvp == NULL)
		return -VMBUS_ENODEV;
	if (pool >= KVP_NPOOLS || (key == NULL && key_size != 0) ||
	    (value == NULL && value_size != 0))
		return -VMBUS_EINVAL;
	s = ic_zalloc(ics, sizeof(*s));
	if (s == NULL)
		return -VMBUS_ENOMEM;
	r = kvp_lookup(ics, pool, NULL, 0, true, index, s, &s->ks_rec);
	if (r == 0 && key_size) {
		int32_t u = kvp_u16_len(s->ks_rec.kr_key, s->ks_rec.kr_key_size);

		r = kvp_u16_to_utf8(s->ks_rec.kr_key, u < 0 ? 0 : (uint32_t)u,
		    key, key_size);
	}
	if (r >= 0 && value_size)
		r = kvp_value_text(&s->ks_rec, value, value_size);
	ic_free(ics, s, sizeof(*s));
	return r < 0 ? r : 0;
}

int ic_kvp_get_status(struct ic_services *ics, struct ic_kvp_status *out)
{
	struct ic_svc *svc;

	if (ics == NULL || out == NULL)
		return -VMBUS_EINVAL;
	if (ics->ics_kvp == NULL)
		return -VMBUS_ENODEV;
	svc = kvp_svc(ics);
	ic_lock(svc);
	*out = ics->ics_kvp->kv_status;
	out->ks_records = ics->ics_kvp->kv_n;
	ic_unlock(svc);
	return 0;
}
