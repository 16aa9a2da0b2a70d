/*
 * src/guest/xact.c - transactions as table slots (STYLE 10): the wire id
 * of a slot is (generation << 16) | (slot + 1), id 0 is never used, a
 * completion is copied into the slot (truncated to resp_max, flagged)
 * before its waiter wakes, stale / duplicate / unknown ids are dropped
 * and counted, and orphaning wakes every waiter with an error.
 */
#include "vmbus_priv.h"

#define XACT_SLOT_BITS	16
#define XACT_SLOT_MASK	((UINT64_C(1) << XACT_SLOT_BITS) - 1)
#define XACT_GEN_MAX	UINT32_MAX

static uint64_t xact_wire_id(const struct vmbus_xact *xa)
{
	return ((uint64_t)xa->xa_gen << XACT_SLOT_BITS) |
	    (uint64_t)(xa->xa_slot + 1u);
}

int vmbus_xact_setup(struct vmbus_channel *ch, uint32_t nslots,
    uint32_t req_max, uint32_t resp_max)
{
	struct vmbus *vb;
	const struct vmbus_platform *p;
	struct vmbus_xact_tbl *t;
	size_t bytes, hdr, per;
	uint8_t *mem;

	if (ch == NULL || nslots == 0 || nslots > VMBUS_XACT_MAX_SLOTS ||
	    req_max == 0 || resp_max == 0 || req_max > (1u << 20) ||
	    resp_max > (1u << 20))
		return -VMBUS_EINVAL;
	vb = ch->ch_bus;
	p = vb->vb_plat;
	if (ch->ch_xact != NULL)
		return -VMBUS_EEXIST;
	req_max = (req_max + 7u) & ~7u;
	resp_max = (resp_max + 7u) & ~7u;
	hdr = sizeof(*t) + sizeof(t->xt_slot[0]) * nslots;
	hdr = (hdr + 15u) & ~(size_t)15u;
	per = (size_t)req_max + resp_max;
	bytes = hdr + per * nslots + VMBUS_XACT_HDR_MAX + resp_max;
	mem = p->zalloc(p->ctx, bytes);
	if (mem == NULL)
		return -VMBUS_ENOMEM;
	t = (struct vmbus_xact_tbl *)(void *)mem;
	t->xt_chan = ch;
	t->xt_nslots = nslots;
	t->xt_req_max = req_max;
	t->xt_resp_max = resp_max;
	t->xt_alloc_bytes = bytes;
	for (uint32_t i = 0; i < nslots; i++) {
		struct vmbus_xact *xa = &t->xt_slot[i];

		xa->xa_tbl = t;
		xa->xa_slot = i;
		xa->xa_gen = 0;
		xa->xa_state = VMBUS_XACT_FREE;
		xa->xa_req = mem + hdr + per * i;
		xa->xa_resp = xa->xa_req + req_max;
	}
	t->xt_scratch = mem + hdr + per * nslots;

	vmbus_lock(vb, &ch->ch_lock);
	if (ch->ch_xact != NULL) {
		vmbus_unlock(vb, &ch->ch_lock);
		p->free(p->ctx, mem, bytes);
		return -VMBUS_EEXIST;
	}
	ch->ch_xact = t;
	vmbus_unlock(vb, &ch->ch_lock);
	return 0;
}

/* At slot reuse of the channel (vb_lock or single owner). */
void vmbus_xact_free(struct vmbus_channel *ch)
{
	struct vmbus *vb = ch->ch_bus;
	struct vmbus_xact_tbl *t = ch->ch_xact;

	if (t == NULL)
		return;
	ch->ch_xact = NULL;
	vb->vb_plat->free(vb->vb_plat->ctx, t, t->xt_alloc_bytes);
}

struct vmbus_xact *vmbus_xact_get(struct vmbus_channel *ch)
{
	struct vmbus *vb;
	struct vmbus_xact_tbl *t;
	struct vmbus_xact *got = NULL;

	if (ch == NULL || (t = ch->ch_xact) == NULL ||
	    vmbus_chan_state(ch) != VMBUS_CHAN_OPEN)
		return NULL;
	vb = ch->ch_bus;
	vmbus_lock(vb, &ch->ch_lock);
	for (uint32_t i = 0; i < t->xt_nslots; i++) {
		struct vmbus_xact *xa = &t->xt_slot[i];

		if (xa->xa_state != VMBUS_XACT_FREE)
			continue;
		/* A new generation per use: late completions of an earlier
		 * use of this slot no longer match. */
		xa->xa_gen = xa->xa_gen == XACT_GEN_MAX ? 1 : xa->xa_gen + 1;
		xa->xa_state = VMBUS_XACT_HELD;
		xa->xa_error = 0;
		xa->xa_resp_len = 0;
		xa->xa_truncated = false;
		got = xa;
		break;
	}
	vmbus_unlock(vb, &ch->ch_lock);
	return got;
}

void *vmbus_xact_req(struct vmbus_xact *xa)
{
	return xa ? xa->xa_req : NULL;
}

uint64_t vmbus_xact_id(const struct vmbus_xact *xa)
{
	return xa ? xact_wire_id(xa) : 0;
}

void vmbus_xact_activate(struct vmbus_xact *xa)
{
	struct vmbus_channel *ch;

	if (xa == NULL)
		return;
	ch = xa->xa_tbl->xt_chan;
	vmbus_lock(ch->ch_bus, &ch->ch_lock);
	if (xa->xa_state == VMBUS_XACT_HELD)
		xa->xa_state = VMBUS_XACT_ACTIVE;
	vmbus_unlock(ch->ch_bus, &ch->ch_lock);
}

int vmbus_xact_send(struct vmbus_xact *xa, uint16_t type, uint32_t len)
{
	struct vmbus_channel *ch;
	int r;

	if (xa == NULL || len > xa->xa_tbl->xt_req_max)
		return -VMBUS_EINVAL;
	ch = xa->xa_tbl->xt_chan;
	/* NOTE: active before the send, so a fast completion finds it. */
	vmbus_xact_activate(xa);
	r = vmbus_chan_send(ch, type, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED,
	    xa->xa_req, len, xact_wire_id(xa));
	if (r != 0) {
		vmbus_lock(ch->ch_bus, &ch->ch_lock);
		if (xa->xa_state == VMBUS_XACT_ACTIVE)
			xa->xa_state = VMBUS_XACT_HELD;
		vmbus_unlock(ch->ch_bus, &ch->ch_lock);
	}
	return r;
}

/*
 * Called from the receive copy-in (ch_rx_lock held) for a validated COMP
 * packet of hdr_len + payload_len bytes at the ring cursor. Returns true if
 * the packet was consumed: copied into its slot, or dropped as a bad
 * completion. Returns false for id 0 (unsolicited: the caller's path).
 */
bool vmbus_xact_complete(struct vmbus_channel *ch, uint64_t trans_id,
    uint32_t hdr_len, uint32_t payload_len)
{
	struct vmbus *vb = ch->ch_bus;
	struct vmbus_xact_tbl *t = ch->ch_xact;
	struct vmbus_xact *xa = NULL;
	uint64_t slot1 = trans_id & XACT_SLOT_MASK;
	uint64_t gen = trans_id >> XACT_SLOT_BITS;
	uint32_t pkt_len = hdr_len + payload_len, take;
	bool ok;
	int r;

	if (trans_id == 0)
		return false;
	vmbus_lock(vb, &ch->ch_lock);
	if (slot1 >= 1 && slot1 <= t->xt_nslots && gen <= XACT_GEN_MAX) {
		xa = &t->xt_slot[slot1 - 1];
		if (xa->xa_state != VMBUS_XACT_ACTIVE || xa->xa_gen != gen)
			xa = NULL;
	}
	vmbus_unlock(vb, &ch->ch_lock);

	if (xa == NULL) {
		/* Idle slot, stale generation, duplicate, or out of range. */
		vmbus_drop(vb, &ch->ch_ctr.cc_bad_completions,
		    &ch->ch_log_next_ns,
		    "%s: dropped completion with bad id 0x%llx",
		    ch->ch_name, (unsigned long long)trans_id);
		(void)vmbus_ring_skip(&ch->ch_rx, pkt_len);
		return true;
	}

	/* Copy once, into the slot; truncated to resp_max, flagged. */
	take = payload_len <= t->xt_resp_max ? payload_len : t->xt_resp_max;
	if (take == payload_len) {
		r = vmbus_ring_read(&ch->ch_rx, xa->xa_resp, payload_len, hdr_len);
	} else if (hdr_len <= VMBUS_XACT_HDR_MAX) {
		r = vmbus_ring_peek(&ch->ch_rx, t->xt_scratch, hdr_len + take);
		if (r == 0) {
			vmbus_memcpy(xa->xa_resp, t->xt_scratch + hdr_len, take);
			r = vmbus_ring_skip(&ch->ch_rx, pkt_len);
		}
	} else {
		take = 0;	/* a header we do not keep: payload lost */
		r = vmbus_ring_skip(&ch->ch_rx, pkt_len);
	}

	vmbus_lock(vb, &ch->ch_lock);
	ok = xa->xa_state == VMBUS_XACT_ACTIVE && xa->xa_gen == gen;
	if (ok) {
		if (r == 0) {
			xa->xa_resp_len = take;
			xa->xa_truncated = take != payload_len;
			xa->xa_state = VMBUS_XACT_DONE;
		} else {
			xa->xa_error = -VMBUS_EPROTO;
			xa->xa_state = VMBUS_XACT_FAILED;
		}
	}
	vmbus_unlock(vb, &ch->ch_lock);
	if (ok)
		vmbus_chan_wakeup(ch);
	return true;
}

/* Orphan: every held or active slot fails with `error` (waiters wake). */
void vmbus_xact_fail_all(struct vmbus_channel *ch, int error)
{
	struct vmbus *vb = ch->ch_bus;
	struct vmbus_xact_tbl *t = ch->ch_xact;

	if (t == NULL)
		return;
	vmbus_lock(vb, &ch->ch_lock);
	for (uint32_t i = 0; i < t->xt_nslots; i++) {
		struct vmbus_xact *xa = &t->xt_slot[i];

		if (xa->xa_state == VMBUS_XACT_ACTIVE ||
		    xa->xa_state == VMBUS_XACT_HELD) {
			xa->xa_state = VMBUS_XACT_FAILED;
			xa->xa_error = error;
		}
	}
	vmbus_unlock(vb, &ch->ch_lock);
	vmbus_chan_wakeup(ch);
}

/* Drain the receive ring from a waiter (no callback, or polled mode):
 * completions land in their slots, anything else is dropped, counted. */
static void xact_pump(struct vmbus_channel *ch)
{
	for (uint32_t n = 0; n < 256; n++)
		if (vmbus_chan_recv_discard(ch) != 0)
			break;
}

/* The slot's outcome: 0, its error, or VMBUS_WAIT_AGAIN while active. */
static int xact_outcome(struct vmbus_channel *ch, struct vmbus_xact *xa)
{
	int st, err;

	vmbus_lock(ch->ch_bus, &ch->ch_lock);
	st = xa->xa_state;
	err = xa->xa_error;
	vmbus_unlock(ch->ch_bus, &ch->ch_lock);
	switch (st) {
	case VMBUS_XACT_DONE:
		return 0;
	case VMBUS_XACT_FAILED:
		return err;
	case VMBUS_XACT_ACTIVE:
		return VMBUS_WAIT_AGAIN;
	default:
		return -VMBUS_EINVAL;	/* never sent */
	}
}

static int xact_check(struct vmbus_channel *ch, void *arg)
{
	struct vmbus_xact *xa = arg;
	int r = xact_outcome(ch, xa);

	if (r == VMBUS_WAIT_AGAIN && ch->ch_cb == NULL) {
		/* No callback drains the ring: the waiter does. */
		xact_pump(ch);
		r = xact_outcome(ch, xa);
	}
	return r;
}

int vmbus_xact_wait(struct vmbus_xact *xa, uint64_t timeout_ns)
{
	struct vmbus_channel *ch;

	if (xa == NULL)
		return -VMBUS_EINVAL;
	ch = xa->xa_tbl->xt_chan;
	return vmbus_chan_wait_cond(ch, xact_check, xa,
	    vmbus_deadline(ch->ch_bus, timeout_ns));
}

const void *vmbus_xact_resp(const struct vmbus_xact *xa, uint32_t *len,
    bool *truncated)
{
	if (xa == NULL || xa->xa_state != VMBUS_XACT_DONE)
		return NULL;
	if (len)
		*len = xa->xa_resp_len;
	if (truncated)
		*truncated = xa->xa_truncated;
	return xa->xa_resp;
}

void vmbus_xact_put(struct vmbus_xact *xa)
{
	struct vmbus_channel *ch;

	if (xa == NULL)
		return;
	ch = xa->xa_tbl->xt_chan;
	vmbus_lock(ch->ch_bus, &ch->ch_lock);
	/* An active slot put after a timeout: its generation moves on at
	 * the next get, so the late completion is dropped as stale. */
	xa->xa_state = VMBUS_XACT_FREE;
	vmbus_unlock(ch->ch_bus, &ch->ch_lock);
}
