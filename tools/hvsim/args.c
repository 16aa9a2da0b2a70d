/*
 * tools/hvsim/args.c - argument helpers (see args.h).
 */
#define _GNU_SOURCE
#include "args.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *msg)
{
	if (errlen)
		snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

void hvsim_free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

int hvsim_split_cmd(const char *cmd, char ***argv_out, char *err,
		    size_t errlen)
{
	size_t n = strlen(cmd);
	/* Words never outnumber n/2+1 and never outgrow n bytes each. */
	size_t maxw = n / 2 + 2;
	char **argv = calloc(maxw, sizeof(*argv));
	char *word = malloc(n + 1);
	size_t argc = 0, wl = 0, i = 0;
	bool in_word = false;
	int r;

	if (!argv || !word) {
		free(argv);
		free(word);
		return -ENOMEM;
	}
	while (i <= n) {
		char c = cmd[i];

		if (c == 0 || c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				word[wl] = 0;
				argv[argc] = strdup(word);
				if (!argv[argc]) {
					r = -ENOMEM;
					goto out_fail;
				}
				argc++;
				wl = 0;
				in_word = false;
			}
			i++;
			continue;
		}
		if (c == '\\') {
			if (cmd[i + 1] == 0) {
				r = fail(err, errlen, "trailing backslash");
				goto out_fail;
			}
			if (cmd[i + 1] != '\n') {
				word[wl++] = cmd[i + 1];
				in_word = true;
			}
			i += 2;
			continue;
		}
		if (c == '\'') {
			const char *end = strchr(cmd + i + 1, '\'');
			if (!end) {
				r = fail(err, errlen, "unterminated single quote");
				goto out_fail;
			}
			size_t len = (size_t)(end - (cmd + i + 1));
			memcpy(word + wl, cmd + i + 1, len);
			wl += len;
			in_word = true;
			i = (size_t)(end - cmd) + 1;
			continue;
		}
		if (c == '"') {
			i++;
			in_word = true;
			for (;;) {
				char d = cmd[i];
				if (d == 0) {
					r = fail(err, errlen,
						 "unterminated double quote");
					goto out_fail;
				}
				if (d == '"') {
					i++;
					break;
				}
				if (d == '\\' && (cmd[i + 1] == '"' ||
						  cmd[i + 1] == '\\' ||
						  cmd[i + 1] == '$' ||
						  cmd[i + 1] == '`')) {
					word[wl++] = cmd[i + 1];
					i += 2;
					continue;
				}
				if (d == '\\' && cmd[i + 1] == '\n') {
					i += 2;
					continue;
				}
				word[wl++] = d;
				i++;
			}
			continue;
		}
		word[wl++] = c;
		in_word = true;
		i++;
	}
	free(word);
	if (argc == 0) {
		free(argv);
		return fail(err, errlen, "empty command");
	}
	argv[argc] = NULL;
	*argv_out = argv;
	return (int)argc;
out_fail:
	free(word);
	argv[argc] = NULL;
	hvsim_free_argv(argv);
	return r;
}

int hvsim_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int hvsim_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;
	char msg[160];

	if (!s || *p < '0' || *p > '9')
		return fail(err, errlen, "expected a number with an optional "
				    "K/M/G/T suffix, e.g. 512M or 1G");
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return fail(err, errlen, "size too large");
		v = v * 10 + d;
	}
	switch (*p) {
	case 'k': case 'K': mult = UINT64_C(1) << 10; p++; break;
	case 'm': case 'M': mult = UINT64_C(1) << 20; p++; break;
	case 'g': case 'G': mult = UINT64_C(1) << 30; p++; break;
	case 't': case 'T': mult = UINT64_C(1) << 40; p++; break;
	default: break;
	}
	if (mult > 1 && (!strcmp(p, "iB") || !strcmp(p, "ib") || !strcmp(p, "B") ||
			 !strcmp(p, "b")))
		p += strlen(p);
	if (*p)
		return fail(err, errlen, "unknown size suffix (use K, M, G or T)");
	if (v > HVSIM_MAX_MEMORY / mult)
		return fail(err, errlen, "size too large (at most 1T)");
	v *= mult;
	if (v == 0)
		return fail(err, errlen, "size must not be zero");
	if (v % (UINT64_C(2) << 20)) {
		uint64_t lo = v / (UINT64_C(2) << 20) * 2;
		snprintf(msg, sizeof(msg),
			 "must be a multiple of 2 MiB (e.g. %lluM or %lluM)",
			 (unsigned long long)(lo ? lo : 2),
			 (unsigned long long)(lo + 2));
		return fail(err, errlen, msg);
	}
	*out = v;
	return 0;
}

int hvsim_parse_version(const char *s, uint32_t *word)
{
	static const struct {
		const char *name;
		uint32_t word;
	} names[] = {
		{ "ws2008", 0x0000000Du },   { "ws2008r2", 0x00010001u },
		{ "ws2012", 0x00020004u },   { "ws2012r2", 0x00030000u },
		{ "ws2016", 0x00040000u },   { "ws2019", 0x00050002u },
		{ "ws2022", 0x00050003u },
	};
	static const uint32_t numeric[] = {
		0x0000000Du, 0x00010001u, 0x00020004u, 0x00030000u,
		0x00040000u, 0x00040001u, 0x00050000u, 0x00050001u,
		0x00050002u, 0x00050003u, 0x00060000u,
	};
	char norm[32];
	size_t n = 0;
	uint64_t major, minor;
	const char *dot;
	char buf[32];

	if (!s || strlen(s) >= sizeof(norm))
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (c == '-' || c == '_' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		norm[n++] = c;
	}
	norm[n] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(norm, names[i].name)) {
			*word = names[i].word;
			return 0;
		}
	dot = strchr(s, '.');
	if (!dot || (size_t)(dot - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(dot - s));
	buf[dot - s] = 0;
	if (hvsim_parse_uint(buf, 0, 0xFFFF, &major) ||
	    hvsim_parse_uint(dot + 1, 0, 0xFFFF, &minor))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++)
		if (numeric[i] == ((uint32_t)major << 16 | (uint32_t)minor)) {
			*word = numeric[i];
			return 0;
		}
	return -EINVAL;
}

int hvsim_parse_seconds(const char *s, uint64_t *ns_out)
{
	uint64_t whole = 0, frac = 0, scale = 1000000000ull;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 1000000)
			return -EINVAL;
	}
	if (p == s && *p != '.')
		return -EINVAL;
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale >= 10) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
		}
	}
	if (*p)
		return -EINVAL;
	*ns_out = whole * 1000000000ull + frac;
	return *ns_out ? 0 : -EINVAL;
}
