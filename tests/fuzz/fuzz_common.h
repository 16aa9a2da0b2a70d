/*
 * tests/fuzz/fuzz_common.h - helpers shared by the libFuzzer harnesses:
 * a bounded reader over the fuzzer's input (reads past the end yield
 * zeros, so every harness consumes any byte string), and the oracle macro.
 *
 * Each harness defines LLVMFuzzerTestOneInput(). Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer target; built otherwise it is linked
 * with replay_main.c, which runs every corpus file through it once.
 */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input cursor: never reads out of bounds; missing bytes read as 0. */
struct fz {
	const uint8_t *p;
	size_t n;
};

static inline void fz_init(struct fz *f, const uint8_t *data, size_t size)
{
	f->p = data;
	f->n = size;
}

static inline size_t fz_left(const struct fz *f)
{
	return f->n;
}

static inline uint8_t fz_u8(struct fz *f)
{
	uint8_t v;

	if (f->n == 0)
		return 0;
	v = *f->p++;
	f->n--;
	return v;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint16_t lo = fz_u8(f);

	return (uint16_t)(lo | (uint16_t)fz_u8(f) << 8);
}

static inline uint32_t fz_u32(struct fz *f)
{
	uint32_t lo = fz_u16(f);

	return lo | (uint32_t)fz_u16(f) << 16;
}

static inline uint64_t fz_u64(struct fz *f)
{
	uint64_t lo = fz_u32(f);

	return lo | (uint64_t)fz_u32(f) << 32;
}

/* Copy len bytes into dst; what the input lacks is zero. Returns bytes
 * actually taken from the input. */
static inline size_t fz_bytes(struct fz *f, void *dst, size_t len)
{
	size_t take = len < f->n ? len : f->n;

	if (take)
		memcpy(dst, f->p, take);
	if (len > take)
		memset((uint8_t *)dst + take, 0, len - take);
	f->p += take;
	f->n -= take;
	return take;
}

/*
 * An oracle failed: the code under test broke a documented property
 * without a memory error the sanitizers would see. Abort so libFuzzer
 * records the input as a crash.
 */
#define FZ_CHECK(cond, ...)                                                  \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FUZZ ORACLE FAILED at %s:%d: %s: ", \
				__FILE__, __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/* Open file descriptors of this process (fd-leak oracle), and a listing
 * of them on stderr for the report. */
int fz_count_fds(void);
void fz_list_fds(void);

#define FZ_CHECK_FDS(before)                                                 \
	do {                                                                 \
		int now_ = fz_count_fds();                                   \
		if (now_ != (before))                                        \
			fz_list_fds();                                       \
		FZ_CHECK(now_ == (before), "%d descriptors open, %d before", \
			 now_, (before));                                    \
	} while (0)

#endif /* TESTS_FUZZ_COMMON_H */
