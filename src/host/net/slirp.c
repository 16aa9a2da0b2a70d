/*
 * host/net/slirp.c - user-mode networking through libslirp: the NIC sits
 * on a private network (10.0.2.0/24 by default: gateway .2, DNS .3, DHCP
 * leases from .15, IPv6 fec0::/64) that libslirp NATs onto the host's own
 * sockets, with host port forwards (hostfwd=).
 *
 * libslirp is poll()-shaped: slirp_pollfds_fill() names the descriptors it
 * wants and the longest sleep, slirp_pollfds_poll() consumes readiness and
 * runs its timers. Here it rides the host's epoll loop: after every fill
 * the loop's watchers are reconciled with the wanted descriptors (added,
 * modified, deleted), a timer is armed for the returned timeout, and any
 * wake-up (a watched descriptor, that timer) polls the wanted set with a
 * zero timeout, hands the result to slirp_pollfds_poll() and fills again.
 * slirp's own timers (timer_new_opaque) are loop timers.
 *
 * Built only with libslirp (HVS_HAVE_SLIRP); otherwise `user` fails with
 * -EOPNOTSUPP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/loop.h"
#include "host/net/net_priv.h"

#ifdef HVS_HAVE_SLIRP
#include <arpa/inet.h>
#include <poll.h>
#include <libslirp.h>

struct sb_watch {
	int sw_fd;
	uint32_t sw_events;		/* HVS_EV_* now watched */
	uint32_t sw_want;		/* HVS_EV_* of the last fill */
	bool sw_seen;			/* named by the last fill */
	struct hvs_loop_fd *sw_w;
};

struct sb_timer {
	struct slirp_be *st_sb;
	SlirpTimerId st_id;		/* timer_new_opaque timers */
	void *st_cb_opaque;
	SlirpTimerCb st_cb;		/* timer_new timers (NULL otherwise) */
	struct hvs_loop_timer *st_t;
};

struct slirp_be {
	struct hvs_net_ep *sb_ep;
	Slirp *sb_slirp;
	struct pollfd *sb_pfd;		/* the last fill */
	unsigned sb_npfd, sb_pfd_cap;
	struct sb_watch *sb_w;
	unsigned sb_nw, sb_w_cap;
	struct hvs_loop_timer *sb_timeout; /* fill's timeout */
	struct hvs_loop_timer *sb_kick;	/* deferred refresh */
	bool sb_in_poll;
	bool sb_oom;			/* a fill did not fit: poll again soon */
};

static void sb_refresh(struct slirp_be *sb);
static void sb_dispatch(struct slirp_be *sb);

/* ---- slirp callbacks ----------------------------------------------------- */

static ssize_t sb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_be *sb = opaque;
	struct hvs_net_frame f = { .nf_data = buf, .nf_len = (uint32_t)len };

	if (len < HVS_NET_ETH_HLEN || len > HVS_NET_MAX_FRAME) {
		sb->sb_ep->ep_st.es_rx_dropped++;
		return (ssize_t)len;
	}
	/* No room in the NIC: drop, TCP retransmits (libslirp's contract). */
	if (hvs_net_deliver(sb->sb_ep, &f) == -EAGAIN)
		sb->sb_ep->ep_st.es_rx_dropped++;
	return (ssize_t)len;
}

static void sb_guest_error(const char *msg, void *opaque)
{
	struct slirp_be *sb = opaque;
	hvs_log_guest(&sb->sb_ep->ep_rl, &sb->sb_ep->ep_errors, NULL,
		      "net: %s: slirp: %s", sb->sb_ep->ep_name, msg);
}

static int64_t sb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return (int64_t)hvs_now_ns();
}

static void sb_timer_fire(void *arg)
{
	struct sb_timer *t = arg;
	struct slirp_be *sb = t->st_sb;

	t->st_t = NULL; /* one-shot: the loop frees it */
	if (t->st_cb != NULL)
		t->st_cb(t->st_cb_opaque);
	else
		slirp_handle_timer(sb->sb_slirp, t->st_id, t->st_cb_opaque);
	sb_refresh(sb);
}

static void *sb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct sb_timer *t = calloc(1, sizeof(*t));
	if (t != NULL) {
		t->st_sb = opaque;
		t->st_cb = cb;
		t->st_cb_opaque = cb_opaque;
	}
	return t;
}

static void *sb_timer_new_opaque(SlirpTimerId id, void *cb_opaque,
				 void *opaque)
{
	struct sb_timer *t = calloc(1, sizeof(*t));
	if (t != NULL) {
		t->st_sb = opaque;
		t->st_id = id;
		t->st_cb_opaque = cb_opaque;
	}
	return t;
}

static void sb_timer_free(void *timer, void *opaque)
{
	struct sb_timer *t = timer;
	(void)opaque;
	if (t == NULL)
		return;
	hvs_loop_timer_cancel(t->st_t);
	free(t);
}

/* expire_time: absolute, milliseconds of clock_get_ns */
static void sb_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
	struct sb_timer *t = timer;
	struct slirp_be *sb = opaque;
	int64_t now = (int64_t)hvs_now_ns();
	int64_t at = expire_time * 1000000;

	hvs_loop_timer_cancel(t->st_t);
	t->st_t = hvs_loop_timer_add(sb->sb_ep->ep_loop,
				     at > now ? (uint64_t)(at - now) : 0, 0,
				     sb_timer_fire, t);
}

static void sb_register_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque; /* watched after the next fill */
}

/* slirp is about to close fd: stop watching it before the number can be
 * reused. */
static void sb_unregister_poll_fd(int fd, void *opaque)
{
	struct slirp_be *sb = opaque;
	for (unsigned i = 0; i < sb->sb_nw; i++) {
		if (sb->sb_w[i].sw_fd == fd) {
			hvs_loop_del_fd(sb->sb_w[i].sw_w);
			sb->sb_w[i] = sb->sb_w[--sb->sb_nw];
			return;
		}
	}
}

static void sb_kick_fire(void *arg)
{
	struct slirp_be *sb = arg;
	sb->sb_kick = NULL;
	sb_dispatch(sb);
}

/* Run a poll pass soon (outside whatever callback we are in). */
static void sb_schedule(struct slirp_be *sb)
{
	if (sb->sb_kick == NULL)
		sb->sb_kick = hvs_loop_timer_add(sb->sb_ep->ep_loop, 0, 0,
						 sb_kick_fire, sb);
}

static void sb_notify(void *opaque)
{
	sb_schedule(opaque);
}

static const SlirpCb sb_callbacks = {
	.send_packet = sb_send_packet,
	.guest_error = sb_guest_error,
	.clock_get_ns = sb_clock_get_ns,
	.timer_new = sb_timer_new,
	.timer_free = sb_timer_free,
	.timer_mod = sb_timer_mod,
	.register_poll_fd = sb_register_poll_fd,
	.unregister_poll_fd = sb_unregister_poll_fd,
	.notify = sb_notify,
	.timer_new_opaque = sb_timer_new_opaque,
};

/* ---- the poll bridge ------------------------------------------------------- */

static int sb_add_poll(int fd, int events, void *opaque)
{
	struct slirp_be *sb = opaque;
	if (sb->sb_npfd == sb->sb_pfd_cap) {
		unsigned cap = sb->sb_pfd_cap ? sb->sb_pfd_cap * 2 : 16;
		struct pollfd *n = realloc(sb->sb_pfd, cap * sizeof(*n));
		if (n == NULL) {
			sb->sb_oom = true;
			return -1;
		}
		sb->sb_pfd = n;
		sb->sb_pfd_cap = cap;
	}
	struct pollfd *p = &sb->sb_pfd[sb->sb_npfd];
	p->fd = fd;
	p->events = (short)(((events & SLIRP_POLL_IN) ? POLLIN : 0) |
			    ((events & SLIRP_POLL_OUT) ? POLLOUT : 0) |
			    ((events & SLIRP_POLL_PRI) ? POLLPRI : 0));
	p->revents = 0;
	return (int)sb->sb_npfd++;
}

static int sb_get_revents(int idx, void *opaque)
{
	struct slirp_be *sb = opaque;
	if (idx < 0 || (unsigned)idx >= sb->sb_npfd)
		return 0;
	short r = sb->sb_pfd[idx].revents;
	return ((r & POLLIN) ? SLIRP_POLL_IN : 0) |
	       ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
	       ((r & POLLPRI) ? SLIRP_POLL_PRI : 0) |
	       ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
	       ((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

static void sb_fd_ready(void *arg, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	sb_dispatch(arg);
}

static void sb_timeout_fire(void *arg)
{
	struct slirp_be *sb = arg;
	sb->sb_timeout = NULL;
	sb_dispatch(sb);
}

static struct sb_watch *sb_watch_find(struct slirp_be *sb, int fd)
{
	for (unsigned i = 0; i < sb->sb_nw; i++)
		if (sb->sb_w[i].sw_fd == fd)
			return &sb->sb_w[i];
	return NULL;
}

/* Fill, then make the loop watch exactly what slirp wants. */
static void sb_refresh(struct slirp_be *sb)
{
	uint32_t timeout = UINT32_MAX;

	sb->sb_npfd = 0;
	sb->sb_oom = false;
	slirp_pollfds_fill(sb->sb_slirp, &timeout, sb_add_poll, sb);
	for (unsigned i = 0; i < sb->sb_nw; i++) {
		sb->sb_w[i].sw_seen = false;
		sb->sb_w[i].sw_want = 0;
	}
	for (unsigned i = 0; i < sb->sb_npfd; i++) {
		struct pollfd *p = &sb->sb_pfd[i];
		uint32_t ev = ((p->events & (POLLIN | POLLPRI)) ? HVS_EV_IN : 0) |
			      ((p->events & POLLOUT) ? HVS_EV_OUT : 0);
		struct sb_watch *w = sb_watch_find(sb, p->fd);
		if (w == NULL) {
			if (sb->sb_nw == sb->sb_w_cap) {
				unsigned cap = sb->sb_w_cap ? sb->sb_w_cap * 2 : 16;
				struct sb_watch *n = realloc(sb->sb_w,
							     cap * sizeof(*n));
				if (n == NULL) {
					sb->sb_oom = true;
					continue;
				}
				sb->sb_w = n;
				sb->sb_w_cap = cap;
			}
			w = &sb->sb_w[sb->sb_nw++];
			memset(w, 0, sizeof(*w));
			w->sw_fd = p->fd;
		}
		w->sw_seen = true;
		w->sw_want |= ev;
	}
	for (unsigned i = 0; i < sb->sb_nw;) {
		struct sb_watch *w = &sb->sb_w[i];
		if (!w->sw_seen || w->sw_want == 0) {
			hvs_loop_del_fd(w->sw_w);
			*w = sb->sb_w[--sb->sb_nw];
			continue;
		}
		if (w->sw_w == NULL) {
			w->sw_w = hvs_loop_add_fd(sb->sb_ep->ep_loop, w->sw_fd,
						  w->sw_want, sb_fd_ready, sb);
			if (w->sw_w == NULL)
				sb->sb_oom = true;
			else
				w->sw_events = w->sw_want;
		} else if (w->sw_events != w->sw_want) {
			if (hvs_loop_mod_fd(w->sw_w, w->sw_want) == 0)
				w->sw_events = w->sw_want;
			else
				sb->sb_oom = true;
		}
		i++;
	}
	hvs_loop_timer_cancel(sb->sb_timeout);
	sb->sb_timeout = NULL;
	if (sb->sb_oom && timeout > 10)
		timeout = 10; /* could not watch everything: poll instead */
	if (timeout != UINT32_MAX)
		sb->sb_timeout = hvs_loop_timer_add(sb->sb_ep->ep_loop,
						    (uint64_t)timeout * 1000000u,
						    0, sb_timeout_fire, sb);
}

static void sb_dispatch(struct slirp_be *sb)
{
	if (sb->sb_in_poll)
		return;
	sb->sb_in_poll = true;
	int n = sb->sb_npfd > 0 ? poll(sb->sb_pfd, sb->sb_npfd, 0) : 0;
	if (n == 0)
		for (unsigned i = 0; i < sb->sb_npfd; i++)
			sb->sb_pfd[i].revents = 0;
	slirp_pollfds_poll(sb->sb_slirp, n < 0, sb_get_revents, sb);
	sb->sb_in_poll = false;
	sb_refresh(sb);
}

/* ---- the back end ---------------------------------------------------------- */

static int sb_send(struct hvs_net_ep *ep, const struct hvs_net_frame *f)
{
	struct slirp_be *sb = ep->ep_be;

	if (f->nf_tci != 0)
		return -EINVAL; /* the user network is untagged */
	slirp_input(sb->sb_slirp, f->nf_data, (int)f->nf_len);
	/* new connections may want new descriptors watched */
	sb_schedule(sb);
	return 0;
}

static void sb_close(struct hvs_net_ep *ep)
{
	struct slirp_be *sb = ep->ep_be;
	if (sb == NULL)
		return;
	/* NOTE: slirp_cleanup frees its timers and unregisters its fds
	 * through our callbacks, so it runs first. */
	if (sb->sb_slirp != NULL)
		slirp_cleanup(sb->sb_slirp);
	for (unsigned i = 0; i < sb->sb_nw; i++)
		hvs_loop_del_fd(sb->sb_w[i].sw_w);
	hvs_loop_timer_cancel(sb->sb_timeout);
	hvs_loop_timer_cancel(sb->sb_kick);
	free(sb->sb_w);
	free(sb->sb_pfd);
	free(sb);
	ep->ep_be = NULL;
}

static const struct hvs_net_be_ops slirp_ops = {
	.bo_send = sb_send,
	.bo_close = sb_close,
};

static struct in_addr ip4(uint32_t host_order)
{
	struct in_addr a = { .s_addr = htonl(host_order) };
	return a;
}

int hvs_net_slirp_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
		       char *err, size_t errlen)
{
	SlirpConfig cfg;
	struct slirp_be *sb = calloc(1, sizeof(*sb));
	uint32_t mask = ~0u << (32 - spec->ns_prefix);

	if (sb == NULL) {
		hvs_net_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sb->sb_ep = ep;
	ep->ep_be = sb;
	ep->ep_ops = &slirp_ops;

	memset(&cfg, 0, sizeof(cfg));
	cfg.version = SLIRP_CONFIG_VERSION_MAX < 4 ? SLIRP_CONFIG_VERSION_MAX : 4;
	cfg.restricted = 0;
	cfg.in_enabled = true;
	cfg.vnetwork = ip4(spec->ns_net);
	cfg.vnetmask = ip4(mask);
	cfg.vhost = ip4(spec->ns_net + 2);
	cfg.vnameserver = ip4(spec->ns_net + 3);
	cfg.vdhcp_start = ip4(spec->ns_net + 15);
	cfg.in6_enabled = spec->ns_ipv6;
	if (spec->ns_ipv6) {
		inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
		cfg.vprefix_len = 64;
		inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
		inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
	}
	cfg.if_mtu = spec->ns_mtu;
	cfg.if_mru = spec->ns_mtu;
	sb->sb_slirp = slirp_new(&cfg, &sb_callbacks, sb);
	if (sb->sb_slirp == NULL) {
		hvs_net_errf(err, errlen, "user: libslirp refused the "
			     "configuration");
		sb_close(ep);
		return -EINVAL;
	}
	for (unsigned i = 0; i < spec->ns_nhostfwd; i++) {
		const struct hvs_net_hostfwd *hf = &spec->ns_hostfwd[i];
		uint32_t gaddr = hf->hf_guest_addr ? hf->hf_guest_addr
						   : spec->ns_net + 15;
		if (slirp_add_hostfwd(sb->sb_slirp, hf->hf_udp,
				      ip4(hf->hf_host_addr), hf->hf_host_port,
				      ip4(gaddr), hf->hf_guest_port) < 0) {
			int e = errno ? errno : EADDRINUSE;
			hvs_net_errf(err, errlen, "user: hostfwd %s host port "
				     "%u: %s", hf->hf_udp ? "udp" : "tcp",
				     hf->hf_host_port, strerror(e));
			sb_close(ep);
			return -e;
		}
	}
	sb_refresh(sb);
	return 0;
}

#else /* !HVS_HAVE_SLIRP */

int hvs_net_slirp_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
		       char *err, size_t errlen)
{
	(void)ep;
	(void)spec;
	hvs_net_errf(err, errlen, "user: this hvsim was built without "
		     "libslirp");
	return -EOPNOTSUPP;
}

#endif /* HVS_HAVE_SLIRP */
