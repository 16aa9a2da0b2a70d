/*
 * src/guest/storvsc/storvsc_vstor.c - the VSTOR protocol (spec 3): queue
 * (channel) set-up, the initialisation sequence with version fallback
 * (spec 3.5), subchannels, the channel callback with the validation of
 * every host packet, transaction slots, timeouts and queue failure.
 */
#include "storvsc_priv.h"

static const uint16_t sv_versions[VSTOR_GUEST_VERSION_COUNT] =
    VSTOR_GUEST_VERSION_LIST;

/* ---- slots ---- */

struct storvsc_slot *storvsc_slot_get_locked(struct storvsc_queue *q)
{
	for (uint32_t i = 0; i < q->q_nslots; i++) {
		uint32_t idx = (q->q_free_hint + i) % q->q_nslots;
		struct storvsc_slot *sl = &q->q_slots[idx];

		if (sl->sl_state != SV_SLOT_FREE)
			continue;
		q->q_free_hint = (idx + 1) % q->q_nslots;
		sl->sl_state = SV_SLOT_HELD;
		sl->sl_io = NULL;
		sl->sl_retries = 0;
		sl->sl_nbounce = 0;
		sl->sl_len = 0;
		sl->sl_direct = false;
		atomic_store(&sl->sl_done, false);
		sl->sl_error = 0;
		atomic_fetch_add(&q->q_active, 1);
		return sl;
	}
	return NULL;
}

/* ---- logging of protocol violations ---- */

static void sv_q_violation(struct storvsc_queue *q, const char *what,
    uint64_t tid)
{
	struct storvsc *sv = q->q_ctrl->ct_sv;

	q->q_stats.st_proto_errors++;
	if (sv_ratelimit(sv, &q->q_log_next))
		sv_log(sv, VMBUS_LOG_WARN, "storvsc%u/q%u: %s (id 0x%llx)",
		    (unsigned)q->q_ctrl->ct_port, (unsigned)q->q_index, what,
		    (unsigned long long)tid);
}

/* ---- queue failure ---- */

/* q_lock held. Mark q unusable and fail everything on it. */
static void sv_q_kill_locked(struct storvsc_queue *q, int state, int err,
    bool shared, const char *why, struct storvsc_io **done)
{
	struct storvsc *sv = q->q_ctrl->ct_sv;
	int old = atomic_load(&q->q_state);

	if (old == SV_Q_DEAD || (old == SV_Q_BROKEN && state == SV_Q_BROKEN))
		return;
	atomic_store(&q->q_state, state);
	if (state == SV_Q_BROKEN && old == SV_Q_OPEN) {
		q->q_stats.st_broken_queues++;
		sv_log(sv, VMBUS_LOG_ERR, "storvsc%u/q%u: queue broken: %s",
		    (unsigned)q->q_ctrl->ct_port, (unsigned)q->q_index, why);
	}
	for (uint32_t i = 0; i < q->q_nslots; i++) {
		struct storvsc_slot *sl = &q->q_slots[i];

		if (sl->sl_state == SV_SLOT_FREE ||
		    sl->sl_state == SV_SLOT_DONE)
			continue;
		if (sl->sl_kind == SV_KIND_CTRL) {
			if (sl->sl_state == SV_SLOT_ACTIVE ||
			    sl->sl_state == SV_SLOT_RESEND) {
				sl->sl_error = err;
				sl->sl_state = SV_SLOT_DONE;
				atomic_store(&sl->sl_done, true);
			}
			continue;
		}
		if (sl->sl_state == SV_SLOT_QUARANTINE)
			continue;
		/* ACTIVE: the host had it; RESEND: never sent. */
		storvsc_io_fail_slot_locked(q, sl, err,
		    sl->sl_state == SV_SLOT_ACTIVE,
		    shared && sl->sl_state == SV_SLOT_ACTIVE, done);
	}
	storvsc_io_fail_pending_locked(q, err, done);
}

void storvsc_vstor_queue_kill(struct storvsc_queue *q, int state, int err,
    const char *why)
{
	struct storvsc *sv = q->q_ctrl->ct_sv;
	struct storvsc_io *done = NULL;

	sv_lock(sv, &q->q_lock);
	sv_q_kill_locked(q, state, err, state == SV_Q_BROKEN, why, &done);
	sv_unlock(sv, &q->q_lock);
	storvsc_io_finish_list(done);
	sv_wake(q->q_ctrl);
}

/* A subchannel can be rescinded on its own: the core closes it without
 * telling the driver, so look at its state (and identity: the core may
 * reuse the channel slot for a later offer). */
void storvsc_vstor_check_chan(struct storvsc_queue *q)
{
	struct vmbus_chan_info ci;
	enum vmbus_chan_state st;

	if (atomic_load(&q->q_state) != SV_Q_OPEN || q->q_chan == NULL)
		return;
	st = vmbus_chan_state(q->q_chan);
	if (st == VMBUS_CHAN_OPEN && vmbus_chan_get_info(q->q_chan, &ci) == 0 &&
	    ci.ci_relid == q->q_relid && ci.ci_sub_index == q->q_sub_index)
		return;
	if (st == VMBUS_CHAN_BROKEN)
		storvsc_vstor_queue_kill(q, SV_Q_BROKEN, -VMBUS_EPROTO,
		    "channel broken by the core");
	else
		storvsc_vstor_queue_kill(q, SV_Q_DEAD, -VMBUS_ENODEV,
		    "channel gone");
}

/* ---- timeouts ---- */

void storvsc_vstor_expire(struct storvsc_queue *q, bool force)
{
	struct storvsc *sv = q->q_ctrl->ct_sv;
	struct storvsc_io *done = NULL;
	uint64_t now = sv_now(sv);

	if (atomic_load(&q->q_state) != SV_Q_OPEN || q->q_slots == NULL)
		return;
	if (!force && now < atomic_load(&q->q_next_expire))
		return;
	sv_lock(sv, &q->q_lock);
	atomic_store(&q->q_next_expire, now + SV_EXPIRE_INTERVAL_NS);
	for (uint32_t i = 0; i < q->q_nslots; i++) {
		struct storvsc_slot *sl = &q->q_slots[i];
		bool sent;

		if (sl->sl_kind != SV_KIND_IO ||
		    (sl->sl_state != SV_SLOT_ACTIVE &&
		    sl->sl_state != SV_SLOT_RESEND) ||
		    sl->sl_deadline > now)
			continue;
		/* Control requests time out in their waiter. */
		sent = sl->sl_state == SV_SLOT_ACTIVE;
		q->q_stats.st_timeouts++;
		if (sv_ratelimit(sv, &q->q_log_next))
			sv_log(sv, VMBUS_LOG_WARN,
			    "storvsc%u/q%u: request 0x%llx timed out%s",
			    (unsigned)q->q_ctrl->ct_port, (unsigned)q->q_index,
			    (unsigned long long)sv_slot_id(q, sl),
			    sent ? "; slot quarantined" : " in the send queue");
		storvsc_io_fail_slot_locked(q, sl, -VMBUS_ETIMEDOUT, sent,
		    sent && sl->sl_direct, &done);
	}
	storvsc_io_expire_pending_locked(q, now, &done);
	storvsc_io_kick_locked(q, &done);
	sv_unlock(sv, &q->q_lock);
	storvsc_io_finish_list(done);
	if (atomic_exchange(&q->q_want_rescan, false))
		storvsc_rescan_request(q->q_ctrl, false);
}

/* ---- the receive path ---- */

/* Minimum payload of a completion: the negotiated packet size, the
 * pre-WIN8 size before negotiation (spec 3.8: the host uses it then). */
static uint32_t sv_min_completion(const struct storvsc_ctrl *ct)
{
	return ct->ct_negotiated ? ct->ct_pkt_size : VSTOR_PACKET_SIZE_PREWIN8;
}

static void sv_rx_unsolicited(struct storvsc_queue *q,
    const struct vstor_packet *pkt, uint32_t len)
{
	uint32_t op = hv_le32(pkt->vp_operation);

	q->q_stats.st_unsolicited++;
	if (len < VSTOR_HEADER_SIZE) {
		q->q_stats.st_bad_packets++;
		sv_q_violation(q, "short unsolicited packet dropped", 0);
		return;
	}
	switch (op) {
	case VSTOR_OPERATION_ENUMERATE_BUS:
	case VSTOR_OPERATION_REMOVE_DEVICE:
		/* Never a request completion (hostile-host 17): a deferred
		 * rescan, coalesced however many the host sends. */
		atomic_store(&q->q_want_rescan, true);
		break;
	case VSTOR_OPERATION_FCHBA_DATA:
	case VSTOR_OPERATION_EVENT_NOTIFICATION:
		break;		/* not used by a SCSI/IDE guest */
	default:
		q->q_stats.st_bad_packets++;
		sv_q_violation(q, "unknown unsolicited operation dropped", 0);
		break;
	}
}

/* q_lock held. A COMP packet with a non-zero id. */
static void sv_rx_completion(struct storvsc_queue *q, uint64_t tid,
    const struct vstor_packet *pkt, uint32_t len, struct storvsc_io **done)
{
	struct storvsc_ctrl *ct = q->q_ctrl;
	uint64_t idx = (tid & 0xFFFFu), gen = tid >> 16;
	struct storvsc_slot *sl;

	if (idx == 0 || idx > q->q_nslots) {
		q->q_stats.st_bad_ids++;
		sv_q_violation(q, "completion for an unknown slot dropped", tid);
		return;
	}
	sl = &q->q_slots[idx - 1];
	if (sl->sl_gen != gen || (sl->sl_state != SV_SLOT_ACTIVE &&
	    sl->sl_state != SV_SLOT_QUARANTINE)) {
		/* Idle slot, a stale generation or a duplicate: nothing
		 * runs for it (hostile-host 6). */
		q->q_stats.st_bad_ids++;
		sv_q_violation(q, "stale or duplicate completion dropped", tid);
		return;
	}
	if (sl->sl_state == SV_SLOT_QUARANTINE) {
		/* The host finished a request we gave up on: only now may
		 * the slot and its pages be reused. */
		q->q_stats.st_late_completions++;
		storvsc_slot_release_locked(q, sl);
		return;
	}
	if (len < sv_min_completion(ct) ||
	    hv_le32(pkt->vp_operation) != VSTOR_OPERATION_COMPLETE_IO) {
		q->q_stats.st_bad_packets++;
		sv_q_violation(q, len < sv_min_completion(ct) ?
		    "completion shorter than the negotiated packet size" :
		    "completion with an operation other than COMPLETE_IO", tid);
		sv_q_kill_locked(q, SV_Q_BROKEN, -VMBUS_EPROTO, true,
		    "malformed completion", done);
		return;
	}
	if (sl->sl_kind == SV_KIND_CTRL) {
		vmbus_memcpy(&sl->sl_resp, pkt, sizeof(sl->sl_resp));
		sl->sl_resp_len = len;
		sl->sl_state = SV_SLOT_DONE;
		atomic_store(&sl->sl_done, true);
		return;
	}
	storvsc_io_complete_locked(q, sl, pkt, len, done);
}

void storvsc_vstor_callback(struct vmbus_channel *ch, void *arg)
{
	struct storvsc_queue *q = arg;
	struct storvsc *sv = q->q_ctrl->ct_sv;
	_Alignas(8) uint8_t buf[SV_RX_BUF];
	struct storvsc_io *done = NULL;
	bool wake = false;

	for (uint32_t n = 0; n < 4u * STORVSC_MAX_QUEUE_DEPTH; n++) {
		struct vmbus_pkt_info info;
		struct vstor_packet pkt;
		uint32_t len = sizeof(buf);
		int r;

		if (atomic_load(&q->q_state) != SV_Q_OPEN)
			break;
		r = vmbus_chan_recv(ch, buf, &len, &info);
		if (r == -VMBUS_EAGAIN)
			break;
		if (r == -VMBUS_ENOBUFS) {
			/* Larger than any VSTOR packet (hostile-host 3). */
			sv_lock(sv, &q->q_lock);
			q->q_stats.st_bad_packets++;
			sv_q_violation(q, "oversized packet", 0);
			sv_unlock(sv, &q->q_lock);
			storvsc_vstor_queue_kill(q, SV_Q_BROKEN, -VMBUS_EPROTO,
			    "oversized packet");
			/* NOTE: break, not return: completions gathered in
			 * done earlier in this run must still finish. */
			break;
		}
		if (r != 0) {
			storvsc_vstor_queue_kill(q,
			    r == -VMBUS_EPROTO ? SV_Q_BROKEN : SV_Q_DEAD,
			    r == -VMBUS_EPROTO ? -VMBUS_EPROTO : -VMBUS_ENODEV,
			    "receive failed");
			break;
		}
		/* The core copied the packet once; this is our zero-padded,
		 * fixed-size view of it, checked against its true length. */
		vmbus_memset(&pkt, 0, sizeof(pkt));
		vmbus_memcpy(&pkt, buf, len < sizeof(pkt) ? len : sizeof(pkt));

		if (info.pi_type == VMBUS_PACKET_TYPE_DATA_INBAND &&
		    info.pi_trans_id == VSTOR_TRANS_ID_UNSOLICITED) {
			sv_lock(sv, &q->q_lock);
			sv_rx_unsolicited(q, &pkt, len);
			sv_unlock(sv, &q->q_lock);
			continue;
		}
		if (info.pi_type != VMBUS_PACKET_TYPE_COMP ||
		    info.pi_trans_id == VSTOR_TRANS_ID_UNSOLICITED) {
			sv_lock(sv, &q->q_lock);
			q->q_stats.st_bad_packets++;
			sv_q_violation(q, info.pi_type == VMBUS_PACKET_TYPE_COMP ?
			    "completion with transaction id 0 dropped" :
			    "unexpected packet type dropped",
			    info.pi_trans_id);
			sv_unlock(sv, &q->q_lock);
			continue;
		}
		sv_lock(sv, &q->q_lock);
		sv_rx_completion(q, info.pi_trans_id, &pkt, len, &done);
		sv_unlock(sv, &q->q_lock);
		wake = true;
	}
	sv_lock(sv, &q->q_lock);
	if (atomic_load(&q->q_state) == SV_Q_OPEN)
		storvsc_io_kick_locked(q, &done);
	sv_unlock(sv, &q->q_lock);
	storvsc_io_finish_list(done);
	if (atomic_exchange(&q->q_want_rescan, false))
		storvsc_rescan_request(q->q_ctrl, false);
	if (wake)
		sv_wake(q->q_ctrl);
}

/* ---- queue set-up and teardown ---- */

int storvsc_vstor_queue_setup(struct storvsc_ctrl *ct,
    struct storvsc_queue *q, struct vmbus_channel *ch)
{
	struct storvsc *sv = ct->ct_sv;
	const struct vmbus_platform *p = sv->sv_plat;
	uint8_t ud[VSTOR_OPEN_USER_DATA_SIZE];
	struct vmbus_chan_info ci;
	uint32_t words;
	int r;

	q->q_ctrl = ct;
	q->q_chan = ch;
	q->q_index = (uint32_t)(q - ct->ct_q);
	atomic_store(&q->q_state, SV_Q_CLOSED);
	if (p->lock_init)
		p->lock_init(p->ctx, &q->q_lock);
	q->q_slots = sv_zalloc(sv, sizeof(*q->q_slots) * ct->ct_depth);
	if (q->q_slots == NULL)
		return -VMBUS_ENOMEM;
	q->q_nslots = ct->ct_depth;
	q->q_bounce_pages = sv->sv_cfg.sc_bounce_pages;
	words = (q->q_bounce_pages + 63u) / 64u;
	q->q_bounce_pfn = sv_zalloc(sv, sizeof(uint64_t) * q->q_bounce_pages);
	q->q_bounce_map = sv_zalloc(sv, sizeof(uint64_t) * words);
	if (q->q_bounce_pfn == NULL || q->q_bounce_map == NULL)
		return -VMBUS_ENOMEM;
	q->q_bounce_va = p->page_alloc(p->ctx, q->q_bounce_pages,
	    q->q_bounce_pfn);
	if (q->q_bounce_va == NULL)
		return -VMBUS_ENOMEM;
	for (uint32_t i = 0; i < q->q_bounce_pages; i++)
		q->q_bounce_map[i / 64u] |= 1ull << (i % 64u);
	q->q_bounce_free = q->q_bounce_pages;

	if (vmbus_chan_get_info(ch, &ci) == 0) {
		q->q_relid = ci.ci_relid;
		q->q_sub_index = ci.ci_sub_index;
	}
	/* Spec 3.5 step 0: open with 24 zero bytes of user data (the size
	 * of the channel properties). Subchannels: same ring and data. */
	vmbus_memset(ud, 0, sizeof(ud));
	atomic_store(&q->q_state, SV_Q_OPEN);
	r = vmbus_chan_open(ch, ct->ct_ring, ct->ct_ring, ud, sizeof(ud),
	    storvsc_vstor_callback, q);
	if (r != 0) {
		atomic_store(&q->q_state, SV_Q_CLOSED);
		return r;
	}
	return 0;
}

void storvsc_vstor_queue_free(struct storvsc_ctrl *ct, struct storvsc_queue *q)
{
	struct storvsc *sv = ct->ct_sv;
	const struct vmbus_platform *p = sv->sv_plat;

	if (q->q_ctrl == NULL)
		return;
	if (q->q_bounce_va != NULL) {
		/* Pages the host may still write into stay leaked (counted
		 * at the close), and so do pages the port refuses to take
		 * back: counted here. The queue's counters were folded into
		 * sv_stats_dead already; no storvsc lock is held. */
		if (!q->q_leak && p->page_free(p->ctx, q->q_bounce_va,
		    q->q_bounce_pages) != 0) {
			sv_lock(sv, &sv->sv_lock);
			sv->sv_stats_dead.st_leaked_pages += q->q_bounce_pages;
			sv_unlock(sv, &sv->sv_lock);
			sv_log(sv, VMBUS_LOG_WARN, "storvsc%u: %u bounce pages "
			    "leaked (the port kept them)",
			    (unsigned)ct->ct_port, (unsigned)q->q_bounce_pages);
		}
		q->q_bounce_va = NULL;
	}
	sv_free(sv, q->q_bounce_pfn, sizeof(uint64_t) * q->q_bounce_pages);
	sv_free(sv, q->q_bounce_map,
	    sizeof(uint64_t) * ((q->q_bounce_pages + 63u) / 64u));
	sv_free(sv, q->q_slots, sizeof(*q->q_slots) * q->q_nslots);
	q->q_slots = NULL;
	q->q_bounce_pfn = NULL;
	q->q_bounce_map = NULL;
	if (p->lock_fini)
		p->lock_fini(p->ctx, &q->q_lock);
	q->q_ctrl = NULL;
}

void storvsc_vstor_close(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;
	bool leak = false;
	int r;

	/*
	 * NOTE order: vmbus_chan_close on the primary closes the
	 * subchannels first, and for each channel unhooks and drains our
	 * callback, sends CLOSECHANNEL and tears the ring GPADL down. Only
	 * then are the requests still on the queues failed: the host no
	 * longer touches their buffers, unless the teardown failed.
	 */
	if (ct->ct_nq > 0 && ct->ct_chan != NULL &&
	    vmbus_chan_state(ct->ct_chan) != VMBUS_CHAN_OFFERED &&
	    vmbus_chan_state(ct->ct_chan) != VMBUS_CHAN_CLOSED) {
		r = vmbus_chan_close(ct->ct_chan);
		if (r == -VMBUS_EISCONN) {
			leak = true;
			sv_log(sv, VMBUS_LOG_WARN,
			    "storvsc%u: channel teardown failed; request "
			    "memory stays with the host", (unsigned)ct->ct_port);
		}
	}
	for (uint32_t i = 0; i < ct->ct_nq; i++) {
		struct storvsc_queue *q = &ct->ct_q[i];
		struct storvsc_io *done = NULL;

		if (q->q_ctrl == NULL || q->q_slots == NULL)
			continue;
		sv_lock(sv, &q->q_lock);
		if (leak && !q->q_leak && q->q_bounce_va != NULL) {
			q->q_leak = true;
			q->q_stats.st_leaked_pages += q->q_bounce_pages;
		}
		sv_q_kill_locked(q, SV_Q_DEAD, -VMBUS_ENODEV, leak,
		    "controller closed", &done);
		sv_unlock(sv, &q->q_lock);
		storvsc_io_finish_list(done);
	}
	sv_wake(ct);
}

/* ---- control requests (initialisation) ---- */

static bool sv_slot_done(void *arg)
{
	struct storvsc_slot *sl = arg;

	return atomic_load(&sl->sl_done);
}

/*
 * One control request on queue q: send `op` with payload[0..plen) as an
 * in-band packet with REQUEST_COMPLETION, wait for its COMPLETE_IO and
 * copy it to *resp. Returns 0 (response in *resp, status not checked),
 * -VMBUS_ETIMEDOUT, -VMBUS_EPROTO / -VMBUS_ENODEV (queue failed), or a
 * send error.
 */
static int sv_ctrl_xact(struct storvsc_queue *q, uint32_t op,
    const void *payload, uint32_t plen, struct vstor_packet *resp)
{
	struct storvsc_ctrl *ct = q->q_ctrl;
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_slot *sl;
	uint64_t tid;
	uint32_t len;
	int r;

	sv_lock(sv, &q->q_lock);
	if (atomic_load(&q->q_state) != SV_Q_OPEN) {
		sv_unlock(sv, &q->q_lock);
		return atomic_load(&q->q_state) == SV_Q_BROKEN ?
		    -VMBUS_EPROTO : -VMBUS_ENODEV;
	}
	sl = storvsc_slot_get_locked(q);
	if (sl == NULL) {
		sv_unlock(sv, &q->q_lock);
		return -VMBUS_EBUSY;
	}
	sl->sl_kind = SV_KIND_CTRL;
	sl->sl_op = op;
	vmbus_memset(&sl->sl_req, 0, sizeof(sl->sl_req));
	sl->sl_req.vp_operation = hv_cpu_to_le32(op);
	sl->sl_req.vp_flags = hv_cpu_to_le32(VSTOR_FLAG_REQUEST_COMPLETION);
	if (plen)
		vmbus_memcpy(sl->sl_req.vp_raw, payload, plen);
	/* Before the version is agreed the pre-WIN8 size is the safe one
	 * (every host accepts it; spec 3.8). */
	len = ct->ct_negotiated ? ct->ct_pkt_size : VSTOR_PACKET_SIZE_PREWIN8;
	sl->sl_req_len = len;
	tid = sv_slot_newid(q, sl);
	sl->sl_state = SV_SLOT_ACTIVE;
	r = vmbus_chan_send(q->q_chan, VMBUS_PACKET_TYPE_DATA_INBAND,
	    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, &sl->sl_req, len, tid);
	if (r != 0) {
		storvsc_slot_release_locked(q, sl);
		sv_unlock(sv, &q->q_lock);
		return r;
	}
	q->q_stats.st_srbs++;
	sv_unlock(sv, &q->q_lock);

	r = sv_wait(ct, sv_slot_done, sl,
	    sv_now(sv) + sv->sv_cfg.sc_init_timeout_ns);

	sv_lock(sv, &q->q_lock);
	if (sl->sl_state == SV_SLOT_DONE) {
		r = sl->sl_error;
		if (r == 0)
			*resp = sl->sl_resp;
		storvsc_slot_release_locked(q, sl);
	} else {
		/* No answer: the host may still send one; the slot waits
		 * for it in quarantine. */
		q->q_stats.st_timeouts++;
		sl->sl_state = SV_SLOT_QUARANTINE;
		if (r == 0)
			r = -VMBUS_ETIMEDOUT;
	}
	sv_unlock(sv, &q->q_lock);
	return r;
}

static const char *sv_op_name(uint32_t op)
{
	switch (op) {
	case VSTOR_OPERATION_BEGIN_INITIALIZATION: return "BEGIN_INITIALIZATION";
	case VSTOR_OPERATION_END_INITIALIZATION: return "END_INITIALIZATION";
	case VSTOR_OPERATION_QUERY_PROTOCOL_VERSION: return "QUERY_PROTOCOL_VERSION";
	case VSTOR_OPERATION_QUERY_PROPERTIES: return "QUERY_PROPERTIES";
	case VSTOR_OPERATION_CREATE_SUB_CHANNELS: return "CREATE_SUB_CHANNELS";
	default: return "request";
	}
}

/* A control step that must answer status 0. */
static int sv_ctrl_step(struct storvsc_queue *q, uint32_t op,
    const void *payload, uint32_t plen, struct vstor_packet *resp)
{
	struct storvsc *sv = q->q_ctrl->ct_sv;
	uint32_t status;
	int r;

	r = sv_ctrl_xact(q, op, payload, plen, resp);
	if (r != 0) {
		sv_log(sv, VMBUS_LOG_WARN, "storvsc%u: %s failed (%d)",
		    (unsigned)q->q_ctrl->ct_port, sv_op_name(op), r);
		return r;
	}
	status = hv_le32(resp->vp_status);
	if (status != VSTOR_STATUS_SUCCESS) {
		sv_log(sv, VMBUS_LOG_WARN, "storvsc%u: %s: host status 0x%08x",
		    (unsigned)q->q_ctrl->ct_port, sv_op_name(op),
		    (unsigned)status);
		return -VMBUS_EIO;
	}
	return 0;
}

/* Spec 3.5 step 2: newest first, until status 0. */
static int sv_negotiate(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_queue *q = &ct->ct_q[0];
	struct vmstor_protocol_version pv;
	struct vstor_packet resp;

	for (uint32_t i = 0; i < VSTOR_GUEST_VERSION_COUNT; i++) {
		uint16_t v = sv_versions[i], echo;
		uint32_t status;
		int r;

		if (v > sv->sv_cfg.sc_max_version ||
		    v < sv->sv_cfg.sc_min_version)
			continue;
		vmbus_memset(&pv, 0, sizeof(pv));
		pv.vpv_major_minor = hv_cpu_to_le16(v);
		pv.vpv_revision = 0;
		r = sv_ctrl_xact(q, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
		    &pv, sizeof(pv), &resp);
		if (r != 0)
			return r;
		status = hv_le32(resp.vp_status);
		if (status != VSTOR_STATUS_SUCCESS) {
			sv_log(sv, VMBUS_LOG_DEBUG,
			    "storvsc%u: VSTOR %u.%u refused (0x%08x)",
			    (unsigned)ct->ct_port, VSTOR_VERSION_MAJOR(v),
			    VSTOR_VERSION_MINOR(v), (unsigned)status);
			continue;
		}
		/* Hosts echo the version; "accepted" for another version
		 * than the one asked is a violation (hostile-host 9). */
		echo = hv_le16(resp.vp_version.vpv_major_minor);
		if (echo != 0 && echo != v) {
			q->q_stats.st_proto_errors++;
			sv_log(sv, VMBUS_LOG_ERR,
			    "storvsc%u: host accepted 0x%04x when asked 0x%04x",
			    (unsigned)ct->ct_port, (unsigned)echo, (unsigned)v);
			return -VMBUS_EPROTO;
		}
		ct->ct_version = v;
		ct->ct_pkt_size = VSTOR_PACKET_SIZE_FOR(v);
		ct->ct_srb_len = VMSCSI_REQUEST_SIZE_FOR(v);
		ct->ct_sense_size = VSTOR_SENSE_BUFFER_SIZE_FOR(v);
		ct->ct_negotiated = true;
		return 0;
	}
	sv_log(sv, VMBUS_LOG_ERR, "storvsc%u: no VSTOR version accepted",
	    (unsigned)ct->ct_port);
	return -VMBUS_EOPNOTSUPP;
}

/* Spec 3.5 step 3, with the clamps of hostile-host 18. */
static void sv_properties(struct storvsc_ctrl *ct, const struct vstor_packet *r)
{
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_queue *q = &ct->ct_q[0];
	uint32_t x;

	ct->ct_host_max_sub = hv_le16(r->vp_properties.vcp_max_channel_cnt);
	ct->ct_host_flags = hv_le32(r->vp_properties.vcp_flags);
	ct->ct_host_max_xfer = hv_le32(r->vp_properties.vcp_max_transfer_bytes);
	x = ct->ct_host_max_xfer;
	if (x == 0) {
		q->q_stats.st_clamped++;
		sv_log(sv, VMBUS_LOG_WARN,
		    "storvsc%u: host max transfer 0; using %u",
		    (unsigned)ct->ct_port, (unsigned)SV_DEFAULT_XFER);
		x = SV_DEFAULT_XFER;
	}
	if (x > SV_MAX_XFER_CAP)
		x = SV_MAX_XFER_CAP;
	/* L: whole 4 KiB pages; a tiny limit keeps whole sectors. */
	if (x >= SV_PAGE_SIZE)
		x &= ~(SV_PAGE_SIZE - 1u);
	else
		x = x >= 512u ? x & ~511u : 512u;
	ct->ct_max_xfer = x;
}

static int sv_subchannels(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;
	const struct vmbus_platform *p = sv->sv_plat;
	struct vmbus_channel *subs[STORVSC_MAX_QUEUES];
	struct vmstor_subchannel_req sr;
	struct vstor_packet resp;
	uint32_t vcpus, want;
	int n, r;

	vcpus = p->vcpu_count ? p->vcpu_count(p->ctx) : 1;
	/* Spec 3.5 step 6: WIN8+, MULTI_CHANNEL, more than one CPU; and a
	 * VMBus that knows subchannels (2.4+, F). */
	if (ct->ct_version < VMSTOR_PROTO_VERSION_WIN8 ||
	    !(ct->ct_host_flags & VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL) ||
	    ct->ct_host_max_sub == 0 || vcpus < 2 ||
	    sv->sv_cfg.sc_max_queues < 2 ||
	    vmbus_version(sv->sv_bus) < VMBUS_VERSION_WIN8)
		return 0;
	want = vcpus - 1;
	if (want > ct->ct_host_max_sub)
		want = ct->ct_host_max_sub;
	if (want > sv->sv_cfg.sc_max_queues - 1)
		want = sv->sv_cfg.sc_max_queues - 1;
	if (want > STORVSC_MAX_QUEUES - 1)
		want = STORVSC_MAX_QUEUES - 1;
	vmbus_memset(&sr, 0, sizeof(sr));
	sr.vsc_sub_channel_count = hv_cpu_to_le16((uint16_t)want);
	r = sv_ctrl_step(&ct->ct_q[0], VSTOR_OPERATION_CREATE_SUB_CHANNELS,
	    &sr, sizeof(sr), &resp);
	if (r != 0)
		return r;
	n = vmbus_chan_subchan_get(ct->ct_chan, want, subs,
	    SV_SUBCHAN_NS > sv->sv_cfg.sc_init_timeout_ns ?
	    SV_SUBCHAN_NS : sv->sv_cfg.sc_init_timeout_ns);
	if (n < 0) {
		sv_log(sv, VMBUS_LOG_WARN,
		    "storvsc%u: no subchannel offered (%d); one queue",
		    (unsigned)ct->ct_port, n);
		return 0;
	}
	/* Never more than asked for (hostile-host 16). */
	if ((uint32_t)n > want)
		n = (int)want;
	for (int i = 0; i < n; i++) {
		struct storvsc_queue *q = &ct->ct_q[ct->ct_nq];

		r = storvsc_vstor_queue_setup(ct, q, subs[i]);
		ct->ct_nq++;	/* freed with the controller either way */
		if (r != 0) {
			sv_log(sv, VMBUS_LOG_WARN,
			    "storvsc%u: subchannel %d open failed (%d)",
			    (unsigned)ct->ct_port, i + 1, r);
			atomic_store(&q->q_state, SV_Q_DEAD);
		}
	}
	return 0;
}

int storvsc_vstor_init(struct storvsc_ctrl *ct)
{
	struct storvsc *sv = ct->ct_sv;
	struct vstor_packet resp;
	int r;

	ct->ct_depth = sv->sv_cfg.sc_queue_depth;
	ct->ct_ring = sv->sv_cfg.sc_ring_bytes;
	ct->ct_nq = 1;
	r = storvsc_vstor_queue_setup(ct, &ct->ct_q[0], ct->ct_chan);
	if (r != 0)
		return r;
	/* NOTE: spec 3.5 order: BEGIN, versions, PROPERTIES, END, then
	 * CREATE_SUB_CHANNELS. */
	r = sv_ctrl_step(&ct->ct_q[0], VSTOR_OPERATION_BEGIN_INITIALIZATION,
	    NULL, 0, &resp);
	if (r != 0)
		return r;
	r = sv_negotiate(ct);
	if (r != 0)
		return r;
	r = sv_ctrl_step(&ct->ct_q[0], VSTOR_OPERATION_QUERY_PROPERTIES,
	    NULL, 0, &resp);
	if (r != 0)
		return r;
	sv_properties(ct, &resp);
	r = sv_ctrl_step(&ct->ct_q[0], VSTOR_OPERATION_END_INITIALIZATION,
	    NULL, 0, &resp);
	if (r != 0)
		return r;
	/* Multi-channel is an optimisation: a failure leaves one queue. */
	if (sv_subchannels(ct) != 0)
		sv_log(sv, VMBUS_LOG_WARN,
		    "storvsc%u: CREATE_SUB_CHANNELS failed; one queue",
		    (unsigned)ct->ct_port);
	return 0;
}
