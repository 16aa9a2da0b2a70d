/*
 * host/net/null.c - the null back end: every frame from the NIC is counted
 * and dropped. With gen=LEN it is also a source: it offers the NIC
 * broadcast frames of LEN bytes as fast as the NIC takes them (until
 * count=N frames), for host->guest benchmarks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/loop.h"
#include "host/net/net_priv.h"

#define GEN_BATCH 64u	/* frames offered per loop turn */

struct null_be {
	uint32_t nb_gen_len;
	uint64_t nb_gen_left;		/* UINT64_MAX = unlimited */
	uint64_t nb_seq;
	bool nb_waiting;		/* NIC said -EAGAIN */
	struct hvs_loop_timer *nb_timer;
	uint8_t nb_frame[HVS_NET_MAX_FRAME];
};

static void gen_run(void *arg);

static void gen_schedule(struct hvs_net_ep *ep)
{
	struct null_be *nb = ep->ep_be;
	if (nb->nb_timer != NULL || nb->nb_gen_left == 0)
		return;
	nb->nb_timer = hvs_loop_timer_add(ep->ep_loop, 0, 0, gen_run, ep);
}

static void gen_run(void *arg)
{
	struct hvs_net_ep *ep = arg;
	struct null_be *nb = ep->ep_be;
	struct hvs_net_frame f = { .nf_data = nb->nb_frame,
				   .nf_len = nb->nb_gen_len };

	nb->nb_timer = NULL; /* one-shot: freed after this callback */
	for (unsigned i = 0; i < GEN_BATCH && nb->nb_gen_left > 0; i++) {
		uint64_t seq = nb->nb_seq;
		if (nb->nb_gen_len >= HVS_NET_ETH_HLEN + 8)
			memcpy(nb->nb_frame + HVS_NET_ETH_HLEN, &seq, 8);
		if (hvs_net_deliver(ep, &f) == -EAGAIN) {
			nb->nb_waiting = true;
			return;
		}
		nb->nb_seq++;
		if (nb->nb_gen_left != UINT64_MAX)
			nb->nb_gen_left--;
	}
	gen_schedule(ep);
}

static int null_send(struct hvs_net_ep *ep, const struct hvs_net_frame *f)
{
	(void)ep;
	(void)f;
	return 0;
}

static void null_rx_ready(struct hvs_net_ep *ep)
{
	struct null_be *nb = ep->ep_be;
	if (!nb->nb_waiting)
		return;
	nb->nb_waiting = false;
	gen_schedule(ep);
}

static void null_close(struct hvs_net_ep *ep)
{
	struct null_be *nb = ep->ep_be;
	if (nb == NULL)
		return;
	hvs_loop_timer_cancel(nb->nb_timer);
	free(nb);
	ep->ep_be = NULL;
}

static const struct hvs_net_be_ops null_ops = {
	.bo_send = null_send,
	.bo_rx_ready = null_rx_ready,
	.bo_close = null_close,
};

int hvs_net_null_open(struct hvs_net_ep *ep, const struct hvs_net_spec *spec,
		      char *err, size_t errlen)
{
	struct null_be *nb = calloc(1, sizeof(*nb));
	if (nb == NULL) {
		hvs_net_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ep->ep_ops = &null_ops;
	ep->ep_be = nb;
	nb->nb_gen_len = spec->ns_gen_len;
	if (nb->nb_gen_len == 0)
		return 0;
	nb->nb_gen_left = spec->ns_gen_count ? spec->ns_gen_count : UINT64_MAX;
	/* broadcast from a locally administered source, local EtherType */
	memset(nb->nb_frame, 0xff, 6);
	static const uint8_t src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	memcpy(nb->nb_frame + 6, src, 6);
	nb->nb_frame[12] = 0x88;
	nb->nb_frame[13] = 0xB5;
	for (uint32_t i = HVS_NET_ETH_HLEN; i < nb->nb_gen_len; i++)
		nb->nb_frame[i] = (uint8_t)i;
	gen_schedule(ep);
	if (nb->nb_timer == NULL) {
		free(nb);
		ep->ep_be = NULL;
		hvs_net_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}
