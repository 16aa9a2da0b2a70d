/*
 * tools/hvsim/config.c - hvsim's config file (--config FILE): the same
 * options as the command line, one per line, so a set-up can be kept and
 * repeated (see hvsim.h and docs/hvsim.md "Config files").
 *
 *   # a comment
 *   control = /tmp/lab.sock       # global options anywhere
 *   [vm web]                      # = --vm --name web
 *   memory = 1G
 *   disk = web.img,create,size=4G # repeatable options repeat
 *   net = user,hostfwd=tcp::8080-:80
 *   guest = ./tools/hvguest/hvguest --stay 600
 *
 * A value is the rest of the line after '=', blanks trimmed; it is taken
 * as is (quotes are not removed: `guest` is split like the command line's
 * --guest). Comments start a line ('#' or ';'); a '#' inside a value is
 * part of it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "hvsim.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_LINE 8192

struct toks {
	char **t_v;
	size_t t_n, t_cap;
};

static int push(struct toks *t, const char *s, size_t n)
{
	if (t->t_n + 2 > t->t_cap) {
		size_t cap = t->t_cap ? t->t_cap * 2 : 16;
		char **nv = realloc(t->t_v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		t->t_v = nv;
		t->t_cap = cap;
	}
	t->t_v[t->t_n] = strndup(s, n);
	if (!t->t_v[t->t_n])
		return -ENOMEM;
	t->t_n++;
	t->t_v[t->t_n] = NULL;
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Trim blanks at both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

static int key_ok(const char *k, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
		      (k[i] == '-' && i > 0)))
			return 0;
	return 1;
}

int hvsim_config_load(const char *path, char ***tokens, char *err,
		      size_t errlen)
{
	struct toks t = { 0 };
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t len;
	unsigned lineno = 0;
	int r = 0;

	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
#define BAD(...)                                                              \
	do {                                                                  \
		char m_[256];                                                 \
		snprintf(m_, sizeof(m_), __VA_ARGS__);                        \
		snprintf(err, errlen, "%s:%u: %s", path, lineno, m_);         \
		r = -EINVAL;                                                  \
		goto out;                                                     \
	} while (0)
	while ((len = getline(&line, &cap, f)) >= 0) {
		const char *s = line, *eq;
		size_t n = (size_t)len;

		lineno++;
		total += (size_t)len;
		if (total > CONFIG_MAX_BYTES)
			BAD("file larger than 1 MiB");
		if (n && s[n - 1] == '\n')
			n--;
		if (n > CONFIG_MAX_LINE)
			BAD("line longer than %u bytes", CONFIG_MAX_LINE);
		if (memchr(s, 0, n))
			BAD("NUL byte in the line");
		trim(&s, &n);
		if (n == 0 || s[0] == '#' || s[0] == ';')
			continue;
		if (s[0] == '[') {
			const char *name;
			size_t nl;

			if (s[n - 1] != ']')
				BAD("section header without ']'");
			name = s + 1;
			nl = n - 2;
			trim(&name, &nl);
			if (nl < 2 || strncmp(name, "vm", 2) ||
			    (nl > 2 && !is_blank(name[2])))
				BAD("unknown section '%.*s' (use [vm] or [vm NAME])",
				    (int)(n > 64 ? 64 : n), s);
			name += 2;
			nl -= 2;
			trim(&name, &nl);
			if ((r = push(&t, "--vm", 4)) < 0)
				goto oom;
			if (nl) {
				if ((r = push(&t, "--name", 6)) < 0 ||
				    (r = push(&t, name, nl)) < 0)
					goto oom;
			}
			continue;
		}
		eq = memchr(s, '=', n);
		if (!eq)
			BAD("expected 'key = value', '[vm NAME]' or a comment");
		{
			const char *k = s, *v = eq + 1;
			size_t kl = (size_t)(eq - s), vl = n - kl - 1;
			char opt[80];

			trim(&k, &kl);
			trim(&v, &vl);
			if (!key_ok(k, kl))
				BAD("bad key '%.*s' (option names without the "
				    "leading --, e.g. memory)", (int)(kl > 64 ? 64 : kl), k);
			if (vl == 0)
				BAD("%.*s: empty value", (int)kl, k);
			snprintf(opt, sizeof(opt), "--%.*s", (int)kl, k);
			if ((r = push(&t, opt, strlen(opt))) < 0 ||
			    (r = push(&t, v, vl)) < 0)
				goto oom;
		}
	}
	if (ferror(f)) {
		r = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	if (!t.t_v && (r = push(&t, "", 0)) == 0) {
		/* An empty file: an empty (NULL-terminated) list. */
		free(t.t_v[0]);
		t.t_v[0] = NULL;
		t.t_n = 0;
	}
	if (r < 0)
		goto oom;
	free(line);
	fclose(f);
	*tokens = t.t_v;
	return (int)t.t_n;
#undef BAD
oom:
	snprintf(err, errlen, "%s: out of memory", path);
out:
	free(line);
	fclose(f);
	hvsim_free_argv(t.t_v);
	return r;
}
