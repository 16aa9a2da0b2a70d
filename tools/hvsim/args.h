/*
 * tools/hvsim/args.h - argument helpers of hvsim: shell-style command
 * splitting (no shell is ever run), memory sizes, Hyper-V versions.
 */
#ifndef HVSIM_ARGS_H
#define HVSIM_ARGS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Split cmd into words as a POSIX shell would for a simple command
 * without expansions: blanks separate words; '...' is literal; "..."
 * allows \" \\ \$ \` and backslash-newline; a backslash outside quotes
 * quotes the next character (backslash-newline is removed). $, `, *, ~,
 * ;, |, & and the like are ordinary characters.
 * Returns the word count (>= 1) and a NULL-terminated malloc'd argv
 * (free with hvsim_free_argv), or -EINVAL with a message in err (empty
 * command, unterminated quote, trailing backslash), -ENOMEM.
 */
int hvsim_split_cmd(const char *cmd, char ***argv_out, char *err,
		    size_t errlen);
void hvsim_free_argv(char **argv);

/*
 * Parse a memory size: digits with an optional suffix K, M, G or T
 * (powers of 1024, case-insensitive, optionally followed by "iB" or "B").
 * No suffix = bytes. Must be a non-zero multiple of 2 MiB and at most
 * HVSIM_MAX_MEMORY. Returns 0 or -EINVAL with a message in err.
 */
#define HVSIM_MAX_MEMORY (UINT64_C(1) << 40)
int hvsim_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);

/*
 * Parse a Hyper-V generation or VMBus version into a VMBus version word
 * ((major << 16) | minor): WS2008 (0.13), WS2008R2 (1.1), WS2012 (2.4),
 * WS2012R2 (3.0), WS2016 (4.0), WS2019 (5.2), WS2022 (5.3), names
 * case-insensitive with optional '-'/'_'/' ' removed; or a numeric
 * "major.minor" among 0.13 1.1 2.4 3.0 4.0 4.1 5.0 5.1 5.2 5.3 6.0.
 * Returns 0 or -EINVAL.
 */
int hvsim_parse_version(const char *s, uint32_t *word);

/* Parse a decimal unsigned integer in [min, max]. 0 or -EINVAL. */
int hvsim_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse a duration in seconds ("30", "2.5"); > 0 and <= 1e6 s. */
int hvsim_parse_seconds(const char *s, uint64_t *ns_out);

#endif /* HVSIM_ARGS_H */
