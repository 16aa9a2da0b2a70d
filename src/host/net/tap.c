/*
 * host/net/tap.c - the TAP back end: frames go to and come from a Linux
 * TAP interface (IFF_TAP | IFF_NO_PI), created on open or an existing
 * persistent one. The interface is left as found: the user (or a script)
 * gives it addresses, brings it up, or bridges it.
 *
 * Receive backpressure: when the NIC has no room, the frame just read is
 * held, the descriptor is no longer watched (the kernel queues, then
 * drops, as for a slow NIC), and reading resumes at hvs_net_rx_ready().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "host/loop.h"
#include "host/net/net_priv.h"

#define TAP_BUDGET  64u			/* frames read per wake-up */
#define TAP_BUFSZ   65536u		/* a read never truncates a frame */

struct tap_be {
	int tb_fd;
	struct hvs_loop_fd *tb_w;
	bool tb_held;			/* tb_buf holds a frame the NIC refused */
	uint32_t tb_held_len;
	uint16_t tb_held_tci;
	uint8_t tb_buf[TAP_BUFSZ];
	uint8_t tb_out[HVS_NET_MAX_FRAME + HVS_NET_VLAN_HLEN];
};

/* Offer the frame in tb_buf; false if the NIC refused it (now held). */
static bool tap_offer(struct hvs_net_ep *ep, uint32_t len, uint16_t tci)
{
	struct tap_be *tb = ep->ep_be;
	struct hvs_net_frame f = { .nf_data = tb->tb_buf, .nf_len = len,
				   .nf_tci = tci };

	if (hvs_net_deliver(ep, &f) != -EAGAIN)
		return true;
	tb->tb_held = true;
	tb->tb_held_len = len;
	tb->tb_held_tci = tci;
	hvs_loop_mod_fd(tb->tb_w, 0);
	return false;
}

static void tap_readable(void *arg, int fd, uint32_t events)
{
	struct hvs_net_ep *ep = arg;
	struct tap_be *tb = ep->ep_be;

	(void)events;
	for (unsigned i = 0; i < TAP_BUDGET && !tb->tb_held; i++) {
		ssize_t n = read(fd, tb->tb_buf, sizeof(tb->tb_buf));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				hvs_log_guest(&ep->ep_rl, &ep->ep_errors, NULL,
					      "net: %s: tap read: %s",
					      ep->ep_name, strerror(errno));
			return;
		}
		uint32_t len = (uint32_t)n;
		uint16_t tci = 0;
		hvs_net_frame_untag(tb->tb_buf, &len, &tci);
		if (len < HVS_NET_ETH_HLEN || len > HVS_NET_MAX_FRAME) {
			ep->ep_st.es_rx_dropped++;
			continue;
		}
		tap_offer(ep, len, tci);
	}
}

static int tap_send(struct hvs_net_ep *ep, const struct hvs_net_frame *f)
{
	struct tap_be *tb = ep->ep_be;
	const uint8_t *data = f->nf_data;
	uint32_t len = f->nf_len;

	if (f->nf_tci != 0) {
		len = hvs_net_frame_tagged(f, tb->tb_out, sizeof(tb->tb_out));
		if (len == 0)
			return -EMSGSIZE;
		data = tb->tb_out;
	}
	ssize_t n = write(tb->tb_fd, data, len);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == EAGAIN || errno == ENOBUFS))
		return -EAGAIN;
	/* EIO: the interface is down */
	return n < 0 && errno == EIO ? -ENETDOWN : -EIO;
}

static void tap_rx_ready(struct hvs_net_ep *ep)
{
	struct tap_be *tb = ep->ep_be;
	if (!tb->tb_held)
		return;
	tb->tb_held = false;
	if (!tap_offer(ep, tb->tb_held_len, tb->tb_held_tci))
		return;
	hvs_loop_mod_fd(tb->tb_w, HVS_EV_IN);
}

static void tap_close(struct hvs_net_ep *ep)
{
	struct tap_be *tb = ep->ep_be;
	if (tb == NULL)
		return;
	hvs_loop_del_fd(tb->tb_w);
	close(tb->tb_fd);
	free(tb);
	ep->ep_be = NULL;
}

static const struct hvs_net_be_ops tap_ops = {
	.bo_send = tap_send,
	.bo_rx_ready = tap_rx_ready,
	.bo_close = tap_close,
};

int hvs_net_tap_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
		     char *err, size_t errlen)
{
	struct ifreq ifr;
	struct tap_be *tb = calloc(1, sizeof(*tb));
	int r;

	if (tb == NULL) {
		hvs_net_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	tb->tb_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tb->tb_fd < 0) {
		r = -errno;
		hvs_net_errf(err, errlen, "tap=%s: /dev/net/tun: %s",
			     spec->ns_arg, strerror(errno));
		free(tb);
		return r;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, spec->ns_arg, strlen(spec->ns_arg));
	if (ioctl(tb->tb_fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		hvs_net_errf(err, errlen, "tap=%s: %s%s", spec->ns_arg,
			     strerror(errno),
			     errno == EPERM ? " (needs CAP_NET_ADMIN, or a "
					      "persistent tap owned by you)"
			     : errno == EBUSY ? " (in use by another process)"
					      : "");
		close(tb->tb_fd);
		free(tb);
		return r;
	}
	ep->ep_ops = &tap_ops;
	ep->ep_be = tb;
	tb->tb_w = hvs_loop_add_fd(ep->ep_loop, tb->tb_fd, HVS_EV_IN,
				   tap_readable, ep);
	if (tb->tb_w == NULL) {
		r = -errno;
		hvs_net_errf(err, errlen, "tap=%s: cannot watch: %s",
			     spec->ns_arg, strerror(errno));
		close(tb->tb_fd);
		free(tb);
		ep->ep_be = NULL;
		return r;
	}
	return 0;
}
