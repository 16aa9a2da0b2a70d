/*
 * host/loop.c - epoll event loop (see loop.h).
 *
 * Timers sit in a list sorted by deadline and drive one timerfd (absolute
 * CLOCK_MONOTONIC deadline of the earliest). Cross-thread calls go through
 * a mutex-protected FIFO and an eventfd. Removed watchers are parked on a
 * zombie list until the end of the batch, so a callback may delete a
 * watcher whose event is still pending in the same epoll batch.
 */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vmbus/errno.h"

#define LOOP_BATCH 64

struct hvs_loop_fd {
	struct hvs_loop *w_loop;
	int w_fd;
	bool w_dead;
	hvs_fd_cb w_cb;
	void *w_arg;
	struct hvs_loop_fd *w_next; /* live list, then zombie list */
	struct hvs_loop_fd *w_prev;
};

struct hvs_loop_timer {
	struct hvs_loop *t_loop;
	uint64_t t_deadline;
	uint64_t t_period;
	hvs_timer_cb t_cb;
	void *t_arg;
	bool t_armed;               /* on the sorted list */
	bool t_firing;              /* its callback is running */
	bool t_cancelled;           /* cancelled while firing */
	struct hvs_loop_timer *t_next;
};

struct loop_call {
	hvs_call_fn c_fn;
	void *c_arg;
	struct loop_call *c_next;
};

struct hvs_loop {
	int l_epfd;
	int l_timerfd;
	int l_callfd;
	/* Marker objects: epoll data pointers for the internal fds. */
	struct hvs_loop_fd l_timer_w;
	struct hvs_loop_fd l_call_w;
	atomic_bool l_stop;
	pthread_t l_thread;
	atomic_bool l_running;
	struct hvs_loop_fd *l_live;      /* registered watchers */
	struct hvs_loop_fd *l_zombies;
	struct hvs_loop_timer *l_timers; /* sorted by deadline */
	pthread_mutex_t l_call_lock;
	struct loop_call *l_call_head, *l_call_tail;
};

static void timer_rearm(struct hvs_loop *loop)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (loop->l_timers) {
		uint64_t d = loop->l_timers->t_deadline;
		if (d == 0)
			d = 1; /* 0 would disarm */
		its.it_value.tv_sec = (time_t)(d / 1000000000ull);
		its.it_value.tv_nsec = (long)(d % 1000000000ull);
	}
	timerfd_settime(loop->l_timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

struct hvs_loop *hvs_loop_create(void)
{
	struct hvs_loop *loop = calloc(1, sizeof(*loop));
	struct epoll_event ev;

	if (!loop)
		return NULL;
	loop->l_epfd = loop->l_timerfd = loop->l_callfd = -1;
	pthread_mutex_init(&loop->l_call_lock, NULL);
	loop->l_epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->l_timerfd = timerfd_create(CLOCK_MONOTONIC,
					 TFD_NONBLOCK | TFD_CLOEXEC);
	loop->l_callfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->l_epfd < 0 || loop->l_timerfd < 0 || loop->l_callfd < 0)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &loop->l_timer_w;
	if (epoll_ctl(loop->l_epfd, EPOLL_CTL_ADD, loop->l_timerfd, &ev) < 0)
		goto fail;
	ev.data.ptr = &loop->l_call_w;
	if (epoll_ctl(loop->l_epfd, EPOLL_CTL_ADD, loop->l_callfd, &ev) < 0)
		goto fail;
	return loop;
fail: {
	int e = errno;
	hvs_loop_destroy(loop);
	errno = e;
	return NULL;
}
}

void hvs_loop_destroy(struct hvs_loop *loop)
{
	if (!loop)
		return;
	while (loop->l_zombies) {
		struct hvs_loop_fd *w = loop->l_zombies;
		loop->l_zombies = w->w_next;
		free(w);
	}
	while (loop->l_live) {
		struct hvs_loop_fd *w = loop->l_live;
		loop->l_live = w->w_next;
		free(w);
	}
	while (loop->l_timers) {
		struct hvs_loop_timer *t = loop->l_timers;
		loop->l_timers = t->t_next;
		free(t);
	}
	while (loop->l_call_head) {
		struct loop_call *c = loop->l_call_head;
		loop->l_call_head = c->c_next;
		free(c);
	}
	if (loop->l_epfd >= 0)
		close(loop->l_epfd);
	if (loop->l_timerfd >= 0)
		close(loop->l_timerfd);
	if (loop->l_callfd >= 0)
		close(loop->l_callfd);
	pthread_mutex_destroy(&loop->l_call_lock);
	free(loop);
}

/* ---- fd watchers ------------------------------------------------------ */

struct hvs_loop_fd *hvs_loop_add_fd(struct hvs_loop *loop, int fd,
				    uint32_t events, hvs_fd_cb cb, void *arg)
{
	struct hvs_loop_fd *w = calloc(1, sizeof(*w));
	struct epoll_event ev;

	if (!w)
		return NULL;
	w->w_loop = loop;
	w->w_fd = fd;
	w->w_cb = cb;
	w->w_arg = arg;
	memset(&ev, 0, sizeof(ev));
	ev.events = events & (EPOLLIN | EPOLLOUT);
	ev.data.ptr = w;
	if (epoll_ctl(loop->l_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		free(w);
		errno = e;
		return NULL;
	}
	w->w_next = loop->l_live;
	if (w->w_next)
		w->w_next->w_prev = w;
	loop->l_live = w;
	return w;
}

int hvs_loop_mod_fd(struct hvs_loop_fd *w, uint32_t events)
{
	struct epoll_event ev;

	if (w->w_dead)
		return -VMBUS_EINVAL;
	memset(&ev, 0, sizeof(ev));
	ev.events = events & (EPOLLIN | EPOLLOUT);
	ev.data.ptr = w;
	if (epoll_ctl(w->w_loop->l_epfd, EPOLL_CTL_MOD, w->w_fd, &ev) < 0)
		return -errno;
	return 0;
}

void hvs_loop_del_fd(struct hvs_loop_fd *w)
{
	if (!w || w->w_dead)
		return;
	epoll_ctl(w->w_loop->l_epfd, EPOLL_CTL_DEL, w->w_fd, NULL);
	w->w_dead = true;
	if (w->w_prev)
		w->w_prev->w_next = w->w_next;
	else
		w->w_loop->l_live = w->w_next;
	if (w->w_next)
		w->w_next->w_prev = w->w_prev;
	w->w_prev = NULL;
	/* Freed at the end of the batch: its event may still be pending. */
	w->w_next = w->w_loop->l_zombies;
	w->w_loop->l_zombies = w;
}

/* ---- timers ------------------------------------------------------------ */

static void timer_insert(struct hvs_loop *loop, struct hvs_loop_timer *t)
{
	struct hvs_loop_timer **pp = &loop->l_timers;

	while (*pp && (*pp)->t_deadline <= t->t_deadline)
		pp = &(*pp)->t_next;
	t->t_next = *pp;
	*pp = t;
	t->t_armed = true;
}

static void timer_unlink(struct hvs_loop *loop, struct hvs_loop_timer *t)
{
	struct hvs_loop_timer **pp = &loop->l_timers;

	while (*pp && *pp != t)
		pp = &(*pp)->t_next;
	if (*pp)
		*pp = t->t_next;
	t->t_armed = false;
	t->t_next = NULL;
}

struct hvs_loop_timer *hvs_loop_timer_add(struct hvs_loop *loop,
					  uint64_t delay_ns, uint64_t period_ns,
					  hvs_timer_cb cb, void *arg)
{
	struct hvs_loop_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->t_loop = loop;
	t->t_deadline = hvs_now_ns() + delay_ns;
	t->t_period = period_ns;
	t->t_cb = cb;
	t->t_arg = arg;
	timer_insert(loop, t);
	timer_rearm(loop);
	return t;
}

void hvs_loop_timer_cancel(struct hvs_loop_timer *t)
{
	if (!t)
		return;
	if (t->t_firing) {
		/* Inside its own callback: freed by the dispatcher. */
		t->t_cancelled = true;
		return;
	}
	if (t->t_armed) {
		timer_unlink(t->t_loop, t);
		timer_rearm(t->t_loop);
	}
	free(t);
}

static int run_timers(struct hvs_loop *loop)
{
	uint64_t expirations, now = hvs_now_ns();
	int n = 0;

	while (read(loop->l_timerfd, &expirations, sizeof(expirations)) > 0)
		;
	/* Bounded: timers added by callbacks for "now" wait for next round. */
	int budget = 1024;
	while (loop->l_timers && loop->l_timers->t_deadline <= now &&
	       budget-- > 0) {
		struct hvs_loop_timer *t = loop->l_timers;
		timer_unlink(loop, t);
		t->t_firing = true;
		t->t_cb(t->t_arg);
		t->t_firing = false;
		n++;
		if (t->t_cancelled || t->t_period == 0) {
			free(t);
		} else {
			t->t_deadline += t->t_period;
			if (t->t_deadline <= now)
				t->t_deadline = now + t->t_period;
			timer_insert(loop, t);
		}
	}
	timer_rearm(loop);
	return n;
}

/* ---- cross-thread calls ------------------------------------------------ */

int hvs_loop_call(struct hvs_loop *loop, hvs_call_fn fn, void *arg)
{
	struct loop_call *c = malloc(sizeof(*c));
	uint64_t one = 1;

	if (!c)
		return -VMBUS_ENOMEM;
	c->c_fn = fn;
	c->c_arg = arg;
	c->c_next = NULL;
	pthread_mutex_lock(&loop->l_call_lock);
	if (loop->l_call_tail)
		loop->l_call_tail->c_next = c;
	else
		loop->l_call_head = c;
	loop->l_call_tail = c;
	pthread_mutex_unlock(&loop->l_call_lock);
	/* EAGAIN only at counter overflow: then a wakeup is pending anyway. */
	ssize_t r = write(loop->l_callfd, &one, sizeof(one));
	(void)r;
	return 0;
}

static int run_calls(struct hvs_loop *loop)
{
	uint64_t v;
	struct loop_call *c;
	int n = 0;

	while (read(loop->l_callfd, &v, sizeof(v)) > 0)
		;
	/* Take the queue as it is now; calls queued by these run next batch. */
	pthread_mutex_lock(&loop->l_call_lock);
	c = loop->l_call_head;
	loop->l_call_head = loop->l_call_tail = NULL;
	pthread_mutex_unlock(&loop->l_call_lock);
	while (c) {
		struct loop_call *next = c->c_next;
		c->c_fn(c->c_arg);
		free(c);
		c = next;
		n++;
	}
	return n;
}

/* ---- running ------------------------------------------------------------ */

void hvs_loop_stop(struct hvs_loop *loop)
{
	uint64_t one = 1;

	atomic_store(&loop->l_stop, true);
	ssize_t r = write(loop->l_callfd, &one, sizeof(one));
	(void)r;
}

bool hvs_loop_on_thread(const struct hvs_loop *loop)
{
	return atomic_load(&loop->l_running) &&
	       pthread_equal(loop->l_thread, pthread_self());
}

int hvs_loop_run_once(struct hvs_loop *loop, int timeout_ms)
{
	struct epoll_event evs[LOOP_BATCH];
	int n, ran = 0;

	if (!atomic_load(&loop->l_running)) {
		loop->l_thread = pthread_self();
		atomic_store(&loop->l_running, true);
	}
	n = epoll_wait(loop->l_epfd, evs, LOOP_BATCH, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		struct hvs_loop_fd *w = evs[i].data.ptr;
		if (w == &loop->l_timer_w) {
			ran += run_timers(loop);
		} else if (w == &loop->l_call_w) {
			ran += run_calls(loop);
		} else if (!w->w_dead) {
			w->w_cb(w->w_arg, w->w_fd,
				evs[i].events & (EPOLLIN | EPOLLOUT | EPOLLERR |
						 EPOLLHUP));
			ran++;
		}
	}
	while (loop->l_zombies) {
		struct hvs_loop_fd *w = loop->l_zombies;
		loop->l_zombies = w->w_next;
		free(w);
	}
	return ran;
}

int hvs_loop_run(struct hvs_loop *loop)
{
	loop->l_thread = pthread_self();
	atomic_store(&loop->l_running, true);
	while (!atomic_load(&loop->l_stop)) {
		int r = hvs_loop_run_once(loop, -1);
		if (r < 0) {
			atomic_store(&loop->l_running, false);
			return r;
		}
	}
	atomic_store(&loop->l_stop, false);
	atomic_store(&loop->l_running, false);
	return 0;
}
