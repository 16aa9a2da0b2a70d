/*
 * host/disk/disk_spec.c - the --disk option: text -> struct hvs_disk_spec.
 * Pure string work; opening the image is hvs_disk_open()'s job.
 */
#include "host/disk/disk.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void hvs_disk_spec_init(struct hvs_disk_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->ds_lun = HVS_DISK_AUTO;
	spec->ds_controller = HVS_DISK_AUTO;
	spec->ds_backend = HVS_DISK_BACKEND_AUTO;
}

/* Decimal u64 in [s, e), no sign, no overflow. */
static bool parse_u64(const char *s, const char *e, uint64_t *out)
{
	uint64_t v = 0;

	if (s == e)
		return false;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned dgt = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - dgt) / 10u)
			return false;
		v = v * 10u + dgt;
	}
	*out = v;
	return true;
}

static bool parse_size(const char *s, const char *e, uint64_t *out)
{
	unsigned shift = 0;

	if (s < e) {
		switch (e[-1]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		default: break;
		}
	}
	if (shift != 0)
		e--;
	uint64_t v;
	if (!parse_u64(s, e, &v) || v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

static bool key_is(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

int hvs_disk_spec_parse(const char *arg, struct hvs_disk_spec *out,
			char *err, size_t errlen)
{
	struct hvs_disk_spec sp;
	const char *p = arg;
	size_t n = 0;
	bool have_size = false;

	hvs_disk_spec_init(&sp);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (arg == NULL || *arg == '\0')
		return fail(err, errlen, "empty --disk argument");

	/* FILE: up to the first single comma; ",," is a literal comma. */
	for (; *p != '\0'; p++) {
		if (*p == ',') {
			if (p[1] != ',')
				break;
			p++;
		}
		if (n + 1 >= sizeof(sp.ds_path))
			return fail(err, errlen, "image path longer than %u bytes",
				    HVS_DISK_PATH_MAX - 1u);
		sp.ds_path[n++] = *p;
	}
	sp.ds_path[n] = '\0';
	if (n == 0)
		return fail(err, errlen, "no image path before the options");

	while (*p == ',') {
		const char *k = ++p;
		while (*p != '\0' && *p != ',')
			p++;
		const char *ke = k, *v = NULL;
		while (ke < p && *ke != '=')
			ke++;
		size_t klen = (size_t)(ke - k);
		if (ke < p)
			v = ke + 1;
		if (klen == 0)
			return fail(err, errlen, "empty option in \"%s\"", arg);
		uint64_t u;

		if (key_is(k, klen, "ro") || key_is(k, klen, "create") ||
		    key_is(k, klen, "direct")) {
			if (v != NULL)
				return fail(err, errlen, "option %.*s takes no value",
					    (int)klen, k);
			if (k[0] == 'r')
				sp.ds_ro = true;
			else if (k[0] == 'c')
				sp.ds_create = true;
			else
				sp.ds_direct = true;
			continue;
		}
		if (v == NULL || v == p)
			return fail(err, errlen, "option %.*s needs a value",
				    (int)klen, k);
		if (key_is(k, klen, "size")) {
			if (!parse_size(v, p, &u) || u == 0 || u % 512u != 0 ||
			    u > HVS_DISK_MAX_SIZE)
				return fail(err, errlen, "size=%.*s: need a non-zero "
					    "multiple of 512 up to 1P (suffix K/M/G/T)",
					    (int)(p - v), v);
			sp.ds_size = u;
			have_size = true;
		} else if (key_is(k, klen, "lun")) {
			if (!parse_u64(v, p, &u) || u >= HVS_DISK_MAX_LUNS)
				return fail(err, errlen, "lun=%.*s: need 0..%u",
					    (int)(p - v), v, HVS_DISK_MAX_LUNS - 1u);
			sp.ds_lun = (int)u;
		} else if (key_is(k, klen, "controller")) {
			if (!parse_u64(v, p, &u) || u >= HVS_DISK_MAX_CONTROLLERS)
				return fail(err, errlen, "controller=%.*s: need 0..%u",
					    (int)(p - v), v,
					    HVS_DISK_MAX_CONTROLLERS - 1u);
			sp.ds_controller = (int)u;
		} else if (key_is(k, klen, "threads")) {
			if (!parse_u64(v, p, &u) || u == 0 || u > 64)
				return fail(err, errlen, "threads=%.*s: need 1..64",
					    (int)(p - v), v);
			sp.ds_threads = (unsigned)u;
		} else if (key_is(k, klen, "backend")) {
			static const struct { const char *n; enum hvs_disk_backend b; } tab[] = {
				{ "auto", HVS_DISK_BACKEND_AUTO },
				{ "uring", HVS_DISK_BACKEND_URING },
				{ "threads", HVS_DISK_BACKEND_THREADS },
				{ "null", HVS_DISK_BACKEND_NULL },
				{ "crash", HVS_DISK_BACKEND_CRASH },
			};
			size_t i;
			for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
				if (key_is(v, (size_t)(p - v), tab[i].n))
					break;
			if (i == sizeof(tab) / sizeof(tab[0]))
				return fail(err, errlen, "backend=%.*s: need auto, "
					    "uring, threads, null or crash",
					    (int)(p - v), v);
			sp.ds_backend = tab[i].b;
		} else if (key_is(k, klen, "serial")) {
			size_t sl = (size_t)(p - v);
			if (sl >= HVS_DISK_SERIAL_MAX)
				return fail(err, errlen, "serial: at most %u characters",
					    HVS_DISK_SERIAL_MAX - 1u);
			for (size_t i = 0; i < sl; i++) {
				char c = v[i];
				if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
				      (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
				      c == '.'))
					return fail(err, errlen, "serial: only "
						    "[A-Za-z0-9._-]");
			}
			memcpy(sp.ds_serial, v, sl);
			sp.ds_serial[sl] = '\0';
		} else {
			return fail(err, errlen, "unknown option \"%.*s\" (size, ro, "
				    "create, direct, lun, controller, backend, "
				    "threads, serial)", (int)klen, k);
		}
	}
	if (sp.ds_create && !have_size)
		return fail(err, errlen, "create needs size=");
	if (sp.ds_create && sp.ds_ro)
		return fail(err, errlen, "create and ro exclude each other");
	if (sp.ds_backend == HVS_DISK_BACKEND_NULL && !have_size)
		return fail(err, errlen, "backend=null needs size=");
	*out = sp;
	return 0;
}
