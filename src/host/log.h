/*
 * host/log.h - host emulator logging: per-VM prefix, levels, rate limiting
 * for guest-caused errors, and counters.
 *
 * Every line goes out whole (one write per line, serialised by a mutex) as
 * "hvsim: <level>: [<vm>] <text>\n" to stderr, or to a sink installed with
 * hvs_log_set_sink() (tests capture lines this way).
 *
 * Guest-caused errors (STYLE 8): the guest must not be able to flood the
 * host's log. Each error site has a `struct hvs_ratelimit`; at most
 * HVS_RL_BURST lines per HVS_RL_INTERVAL_NS pass, the rest are counted as
 * suppressed and reported with the next line that passes.
 *
 * Thread-safe. Never sleeps except on the log mutex.
 */
#ifndef HVS_LOG_H
#define HVS_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum hvs_log_level {
	HVS_LOG_ERR = 0,
	HVS_LOG_WARN = 1,
	HVS_LOG_INFO = 2,
	HVS_LOG_DEBUG = 3,
};

/* Current threshold: lines above it are dropped. Default HVS_LOG_INFO. */
void hvs_log_set_level(enum hvs_log_level level);
enum hvs_log_level hvs_log_get_level(void);
/* Parse "err", "warn", "info", "debug" (or 0..3). -EINVAL if unknown. */
int hvs_log_parse_level(const char *s, enum hvs_log_level *out);

/*
 * Sink for finished lines (without the trailing newline); NULL restores
 * stderr. Called with the log mutex held: the sink must not log.
 */
typedef void (*hvs_log_sink_fn)(void *arg, enum hvs_log_level level,
				const char *line);
void hvs_log_set_sink(hvs_log_sink_fn fn, void *arg);

/* Log one line. vm may be NULL (host-wide message). */
void hvs_log(enum hvs_log_level level, const char *vm, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void hvs_vlog(enum hvs_log_level level, const char *vm, const char *fmt,
	      va_list ap);

/* Rate limit state for one error site (zero-initialised = ready). */
struct hvs_ratelimit {
	atomic_uint_fast64_t rl_window_start; /* CLOCK_MONOTONIC ns */
	atomic_uint rl_in_window;             /* lines passed this window */
	atomic_uint rl_suppressed;            /* lines dropped since last pass */
};
#define HVS_RL_BURST       10u
#define HVS_RL_INTERVAL_NS (5ull * 1000 * 1000 * 1000)

/*
 * Log a guest-caused error through rate limit rl (may be shared by several
 * sites of one VM) and add 1 to *counter (if not NULL; relaxed atomic).
 * Level is HVS_LOG_WARN. Returns true if the line was printed.
 */
bool hvs_log_guest(struct hvs_ratelimit *rl, atomic_uint_fast64_t *counter,
		   const char *vm, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* True if a line may pass rl now (and accounts for it). */
bool hvs_ratelimit_pass(struct hvs_ratelimit *rl, unsigned *suppressed);

/* Total lines suppressed by rate limits since start (all sites). */
uint64_t hvs_log_suppressed_total(void);

/* Monotonic clock in ns (CLOCK_MONOTONIC). */
uint64_t hvs_now_ns(void);

#define HVS_ERR(vm, ...)   hvs_log(HVS_LOG_ERR, (vm), __VA_ARGS__)
#define HVS_WARN(vm, ...)  hvs_log(HVS_LOG_WARN, (vm), __VA_ARGS__)
#define HVS_INFO(vm, ...)  hvs_log(HVS_LOG_INFO, (vm), __VA_ARGS__)
#define HVS_DEBUG(vm, ...)                                                   \
	do {                                                                 \
		if (hvs_log_get_level() >= HVS_LOG_DEBUG)                    \
			hvs_log(HVS_LOG_DEBUG, (vm), __VA_ARGS__);          \
	} while (0)

#endif /* HVS_LOG_H */
