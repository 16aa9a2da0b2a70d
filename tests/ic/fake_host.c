/*
 * tests/ic/fake_host.c - see fake_host.h. Implements the part of
 * host/vmbus_server.h and host/vsp/vsp.h the IC VSPs use.
 */
#define _GNU_SOURCE
#include "fake_host.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/vmbus_server.h"
#include "host/vsp/vsp.h"

struct fh_pkt {
	struct fh_pkt *next;
	uint16_t type;
	uint64_t tid;
	uint32_t len;
	uint8_t data[];
};

struct hvs_channel {
	int ch_idx;
	void *ch_priv;
	struct fh_pkt *ch_in, *ch_in_tail;	/* guest -> host */
	struct fh_pkt *ch_out, *ch_out_tail;	/* host -> guest */
	uint32_t ch_nout;
};

struct hvs_vmbus {
	uint32_t s_version;
	int s_fail_add;
};

struct fh_dev fh_devs[FH_MAX_DEV];
static struct hvs_channel fh_chans[FH_MAX_DEV];
static struct hvs_vmbus fh_srv;

static void fh_q_free(struct fh_pkt **head, struct fh_pkt **tail)
{
	while (*head) {
		struct fh_pkt *p = *head;

		*head = p->next;
		free(p);
	}
	*tail = NULL;
}

static void fh_q_push(struct fh_pkt **head, struct fh_pkt **tail,
		      uint16_t type, const void *d, uint32_t len, uint64_t tid)
{
	struct fh_pkt *p = calloc(1, sizeof(*p) + len + 8);

	assert(p);
	p->type = type;
	p->tid = tid;
	p->len = len;
	memcpy(p->data, d, len);
	if (*tail)
		(*tail)->next = p;
	else
		*head = p;
	*tail = p;
}

struct hvs_vmbus *fh_reset(uint32_t vmbus_version)
{
	for (int i = 0; i < FH_MAX_DEV; i++) {
		fh_q_free(&fh_chans[i].ch_in, &fh_chans[i].ch_in_tail);
		fh_q_free(&fh_chans[i].ch_out, &fh_chans[i].ch_out_tail);
	}
	memset(fh_devs, 0, sizeof(fh_devs));
	memset(fh_chans, 0, sizeof(fh_chans));
	for (int i = 0; i < FH_MAX_DEV; i++)
		fh_chans[i].ch_idx = i;
	fh_srv.s_version = vmbus_version;
	fh_srv.s_fail_add = 0;
	return &fh_srv;
}

void fh_fail_add(int err)
{
	fh_srv.s_fail_add = err;
}

int fh_find(const struct hv_guid *cls)
{
	for (int i = 0; i < FH_MAX_DEV; i++)
		if (fh_devs[i].fd_used &&
		    memcmp(&fh_devs[i].fd_class, cls, 16) == 0)
			return i;
	return -1;
}

int fh_open(int i)
{
	struct fh_dev *d = &fh_devs[i];
	int r = d->fd_ops->vo_open(d->fd_arg, &fh_chans[i]);

	if (r == 0) {
		d->fd_open = true;
		d->fd_ops->vo_on_signal(d->fd_arg, &fh_chans[i]);
	}
	return r;
}

void fh_close(int i, int why)
{
	struct fh_dev *d = &fh_devs[i];

	if (!d->fd_open)
		return;
	d->fd_open = false;
	d->fd_ops->vo_close(d->fd_arg, &fh_chans[i], why);
	fh_q_free(&fh_chans[i].ch_in, &fh_chans[i].ch_in_tail);
	fh_q_free(&fh_chans[i].ch_out, &fh_chans[i].ch_out_tail);
	fh_chans[i].ch_nout = 0;
}

void fh_destroy_all(void)
{
	for (int i = 0; i < FH_MAX_DEV; i++) {
		if (!fh_devs[i].fd_used)
			continue;
		fh_close(i, HVS_CLOSE_RESET);
		if (fh_devs[i].fd_ops->vo_destroy && !fh_devs[i].fd_destroyed) {
			fh_devs[i].fd_destroyed = true;
			fh_devs[i].fd_ops->vo_destroy(fh_devs[i].fd_arg);
		}
	}
	fh_reset(0);
}

void fh_signal(int i)
{
	if (fh_devs[i].fd_open)
		fh_devs[i].fd_ops->vo_on_signal(fh_devs[i].fd_arg, &fh_chans[i]);
}

int fh_take(int i, uint8_t *buf, uint32_t *len, uint64_t *tid)
{
	struct hvs_channel *ch = &fh_chans[i];
	struct fh_pkt *p = ch->ch_out;

	if (p == NULL)
		return -1;
	ch->ch_out = p->next;
	if (ch->ch_out == NULL)
		ch->ch_out_tail = NULL;
	ch->ch_nout--;
	memcpy(buf, p->data, p->len);
	*len = p->len;
	if (tid)
		*tid = p->tid;
	free(p);
	return 0;
}

uint32_t fh_pending(int i)
{
	return fh_chans[i].ch_nout;
}

void fh_inject(int i, uint16_t type, const void *data, uint32_t len,
	       uint64_t tid)
{
	fh_q_push(&fh_chans[i].ch_in, &fh_chans[i].ch_in_tail, type, data, len,
		  tid);
}

void fh_reply(int i, const void *data, uint32_t len, uint64_t tid)
{
	fh_inject(i, VMBUS_PACKET_TYPE_DATA_INBAND, data, len, tid);
	fh_signal(i);
}

/* ---- the server API ---- */

int hvs_vmbus_add_device(struct hvs_vmbus *s, const struct hvs_vsp_ops *ops,
			 void *arg, const struct hv_guid *class_guid,
			 const struct hv_guid *instance,
			 const struct hvs_device_opts *opts)
{
	(void)instance;
	if (s->s_fail_add) {
		int e = s->s_fail_add;

		s->s_fail_add = 0;
		return e;
	}
	for (int i = 0; i < FH_MAX_DEV; i++) {
		struct fh_dev *d = &fh_devs[i];

		if (d->fd_used)
			continue;
		d->fd_used = true;
		d->fd_ops = ops;
		d->fd_arg = arg;
		d->fd_class = *class_guid;
		if (opts) {
			d->fd_flags = opts->do_flags;
			memcpy(d->fd_ud, opts->do_user_defined, 120);
			snprintf(d->fd_name, sizeof(d->fd_name), "%s",
				 opts->do_name ? opts->do_name : "");
		}
		return i + 1;
	}
	return -ENOSPC;
}

void hvs_vmbus_get_stats(const struct hvs_vmbus *s, struct hvs_vmbus_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->vs_version = s->s_version;
	st->vs_connected = true;
}

const char *hvs_vmbus_name(const struct hvs_vmbus *s)
{
	(void)s;
	return "vmtest";
}

struct hvs_vmbus *hvs_chan_server(const struct hvs_channel *ch)
{
	(void)ch;
	return &fh_srv;
}

uint32_t hvs_chan_in_max_packet(const struct hvs_channel *ch)
{
	(void)ch;
	return FH_PKT_MAX;
}

void hvs_chan_set_priv(struct hvs_channel *ch, void *priv)
{
	ch->ch_priv = priv;
}

int hvs_chan_recv(struct hvs_channel *ch, struct hvs_pkt *pk, void *buf,
		  uint32_t buflen, uint32_t *needed)
{
	struct fh_pkt *p = ch->ch_in;
	uint32_t padded;

	if (!fh_devs[ch->ch_idx].fd_open)
		return -ENODEV;
	if (p == NULL)
		return -EAGAIN;
	padded = (p->len + 7u) & ~7u;
	if (16 + padded > buflen) {
		if (needed)
			*needed = 16 + padded;
		return -ENOBUFS;
	}
	ch->ch_in = p->next;
	if (ch->ch_in == NULL)
		ch->ch_in_tail = NULL;
	/* Like the framework: a private copy, descriptor then payload. */
	memset(buf, 0, 16 + padded);
	memcpy((uint8_t *)buf + 16, p->data, p->len);
	memset(pk, 0, sizeof(*pk));
	pk->pk_type = p->type;
	pk->pk_trans_id = p->tid;
	pk->pk_len = 16 + padded;
	pk->pk_raw = buf;
	pk->pk_data = (const uint8_t *)buf + 16;
	pk->pk_datalen = padded;
	free(p);
	return 0;
}

void hvs_chan_recv_done(struct hvs_channel *ch)
{
	(void)ch;
}

void hvs_chan_mask(struct hvs_channel *ch)
{
	(void)ch;
}

uint32_t hvs_chan_unmask(struct hvs_channel *ch)
{
	return ch->ch_in ? 1 : 0;
}

int hvs_chan_send(struct hvs_channel *ch, uint16_t type, uint16_t flags,
		  uint64_t trans_id, const void *data, uint32_t len)
{
	(void)flags;
	if (!fh_devs[ch->ch_idx].fd_open)
		return -ENODEV;
	if (fh_devs[ch->ch_idx].fd_full)
		return -EAGAIN;
	fh_q_push(&ch->ch_out, &ch->ch_out_tail, type, data, len, trans_id);
	ch->ch_nout++;
	return 0;
}
