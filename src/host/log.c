/*
 * host/log.c - host logging (see log.h).
 */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmbus/errno.h"

#define HVS_LOG_LINE_MAX 1024

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_level = HVS_LOG_INFO;
static hvs_log_sink_fn log_sink;
static void *log_sink_arg;
static atomic_uint_fast64_t log_suppressed_total;

static const char *const level_names[] = { "error", "warning", "info",
					   "debug" };

uint64_t hvs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void hvs_log_set_level(enum hvs_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum hvs_log_level hvs_log_get_level(void)
{
	return (enum hvs_log_level)atomic_load_explicit(&log_level,
							memory_order_relaxed);
}

int hvs_log_parse_level(const char *s, enum hvs_log_level *out)
{
	static const char *const alias[] = { "err", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, level_names[i]) || !strcmp(s, alias[i]) ||
		    (s[0] == (char)('0' + i) && s[1] == 0)) {
			*out = (enum hvs_log_level)i;
			return 0;
		}
	}
	return -VMBUS_EINVAL;
}

void hvs_log_set_sink(hvs_log_sink_fn fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_sink = fn;
	log_sink_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

static void emit(enum hvs_log_level level, const char *line, size_t len)
{
	pthread_mutex_lock(&log_lock);
	if (log_sink) {
		log_sink(log_sink_arg, level, line);
	} else {
		char buf[HVS_LOG_LINE_MAX + 2];
		size_t n = len < HVS_LOG_LINE_MAX ? len : HVS_LOG_LINE_MAX;

		memcpy(buf, line, n);
		buf[n++] = '\n';
		/* One write per line so lines from threads never interleave. */
		const char *p = buf;
		while (n > 0) {
			ssize_t w = write(STDERR_FILENO, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			p += w;
			n -= (size_t)w;
		}
	}
	pthread_mutex_unlock(&log_lock);
}

/* Replace control characters (a guest-chosen string may end up in a line). */
static void sanitize(char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			*s = '?';
	}
}

void hvs_vlog(enum hvs_log_level level, const char *vm, const char *fmt,
	      va_list ap)
{
	char line[HVS_LOG_LINE_MAX];
	int n;

	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	if ((unsigned)level > HVS_LOG_DEBUG)
		level = HVS_LOG_DEBUG;
	if (vm)
		n = snprintf(line, sizeof(line), "hvsim: %s: [%s] ",
			     level_names[level], vm);
	else
		n = snprintf(line, sizeof(line), "hvsim: %s: ",
			     level_names[level]);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	sanitize(line);
	emit(level, line, strlen(line));
}

void hvs_log(enum hvs_log_level level, const char *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hvs_vlog(level, vm, fmt, ap);
	va_end(ap);
}

bool hvs_ratelimit_pass(struct hvs_ratelimit *rl, unsigned *suppressed)
{
	uint64_t now = hvs_now_ns();
	uint_fast64_t start = atomic_load(&rl->rl_window_start);

	if (start == 0 || now - start >= HVS_RL_INTERVAL_NS) {
		/* One thread opens the new window; others just count. */
		if (atomic_compare_exchange_strong(&rl->rl_window_start, &start,
						   now ? now : 1))
			atomic_store(&rl->rl_in_window, 0);
	}
	if (atomic_fetch_add(&rl->rl_in_window, 1) >= HVS_RL_BURST) {
		atomic_fetch_add(&rl->rl_suppressed, 1);
		atomic_fetch_add_explicit(&log_suppressed_total, 1,
					  memory_order_relaxed);
		return false;
	}
	unsigned s = atomic_exchange(&rl->rl_suppressed, 0);
	if (suppressed)
		*suppressed = s;
	return true;
}

bool hvs_log_guest(struct hvs_ratelimit *rl, atomic_uint_fast64_t *counter,
		   const char *vm, const char *fmt, ...)
{
	unsigned suppressed = 0;
	char text[HVS_LOG_LINE_MAX];
	va_list ap;

	if (counter)
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	if (!hvs_ratelimit_pass(rl, &suppressed))
		return false;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (suppressed)
		hvs_log(HVS_LOG_WARN, vm, "guest error: %s (%u similar suppressed)",
			text, suppressed);
	else
		hvs_log(HVS_LOG_WARN, vm, "guest error: %s", text);
	return true;
}

uint64_t hvs_log_suppressed_total(void)
{
	return atomic_load(&log_suppressed_total);
}
