/*
 * host/loop.h - the host emulator's event loop: epoll fd callbacks, timers
 * on CLOCK_MONOTONIC, and cross-thread calls.
 *
 * One thread runs a loop (hvs_loop_run). Everything except hvs_loop_call()
 * and hvs_loop_stop() must be called on that thread (or before it starts).
 * Callbacks run on the loop thread, one at a time. A watcher or timer may
 * be removed from inside any callback, including its own; removed objects
 * never get another callback.
 */
#ifndef HVS_LOOP_H
#define HVS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct hvs_loop;
struct hvs_loop_fd;
struct hvs_loop_timer;

/* Event bits for fd watchers (same values as EPOLLIN/EPOLLOUT/...). */
#define HVS_EV_IN  0x001u
#define HVS_EV_OUT 0x004u
#define HVS_EV_ERR 0x008u
#define HVS_EV_HUP 0x010u

typedef void (*hvs_fd_cb)(void *arg, int fd, uint32_t events);
typedef void (*hvs_timer_cb)(void *arg);
typedef void (*hvs_call_fn)(void *arg);

/* Create / free a loop. NULL on failure (errno set). destroy frees the
 * watchers and timers still registered (without calling them) and drops
 * queued calls. */
struct hvs_loop *hvs_loop_create(void);
void hvs_loop_destroy(struct hvs_loop *loop);

/*
 * Run until hvs_loop_stop(). Returns 0, or a negative errno if epoll fails.
 * hvs_loop_run_once() waits at most timeout_ms (-1 = no limit, but timers
 * and calls still wake it) and dispatches one batch; returns the number of
 * callbacks run (>= 0) or a negative errno.
 */
int hvs_loop_run(struct hvs_loop *loop);
int hvs_loop_run_once(struct hvs_loop *loop, int timeout_ms);

/* Make hvs_loop_run return after the current batch. Thread-safe. */
void hvs_loop_stop(struct hvs_loop *loop);

/* True when called on the thread currently running the loop. */
bool hvs_loop_on_thread(const struct hvs_loop *loop);

/*
 * Watch fd for events (HVS_EV_IN / HVS_EV_OUT; ERR and HUP are always
 * reported). Level-triggered. The loop does not own or close fd. NULL on
 * failure (errno set).
 */
struct hvs_loop_fd *hvs_loop_add_fd(struct hvs_loop *loop, int fd,
				    uint32_t events, hvs_fd_cb cb, void *arg);
int hvs_loop_mod_fd(struct hvs_loop_fd *w, uint32_t events);
/* Stop watching and free w (safe inside callbacks). NULL is a no-op. */
void hvs_loop_del_fd(struct hvs_loop_fd *w);

/*
 * One-shot timer firing after delay_ns (CLOCK_MONOTONIC); if period_ns is
 * non-zero it re-arms itself every period_ns until cancelled. NULL on
 * allocation failure. A one-shot timer is freed after its callback runs:
 * do not cancel it afterwards.
 */
struct hvs_loop_timer *hvs_loop_timer_add(struct hvs_loop *loop,
					  uint64_t delay_ns, uint64_t period_ns,
					  hvs_timer_cb cb, void *arg);
/* Cancel and free t (safe inside callbacks, also its own). NULL no-op. */
void hvs_loop_timer_cancel(struct hvs_loop_timer *t);

/*
 * Run fn(arg) on the loop thread, soon, in call order. Thread-safe (any
 * thread, also the loop thread itself: then it runs in a later batch).
 * Returns 0 or -ENOMEM.
 */
int hvs_loop_call(struct hvs_loop *loop, hvs_call_fn fn, void *arg);

#endif /* HVS_LOOP_H */
