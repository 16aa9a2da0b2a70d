/*
 * src/guest/storvsc/storvsc_io.c - requests: validation and queueing,
 * splitting at the transfer limit, EXECUTE_SRB packets with GPA-direct
 * data (spec 3.4, 3.8), bounce buffers, completion of SRBs with their
 * lengths clamped to the request (hostile-host 18), sense decoding and the
 * mapping of SRB/SCSI status to error codes (spec 3.6, 3.7), retries,
 * timeouts and the synchronous wait.
 */
#include "storvsc_priv.h"

/* ---- bounce pool (q_lock held) ---- */

static bool sv_bounce_get(struct storvsc_queue *q, uint32_t n, uint16_t *idx)
{
	uint32_t got = 0;

	if (q->q_bounce_free < n)
		return false;
	for (uint32_t w = 0; got < n; w++) {
		while (q->q_bounce_map[w] != 0 && got < n) {
			uint32_t bit = (uint32_t)__builtin_ctzll(q->q_bounce_map[w]);

			q->q_bounce_map[w] &= ~(1ull << bit);
			idx[got++] = (uint16_t)(w * 64u + bit);
		}
	}
	q->q_bounce_free -= n;
	return true;
}

static void sv_bounce_put(struct storvsc_queue *q, uint32_t n,
    const uint16_t *idx)
{
	for (uint32_t i = 0; i < n; i++)
		q->q_bounce_map[idx[i] / 64u] |= 1ull << (idx[i] % 64u);
	q->q_bounce_free += n;
}

static uint8_t *sv_bounce_page(struct storvsc_queue *q, uint16_t idx)
{
	return q->q_bounce_va + (size_t)idx * SV_PAGE_SIZE;
}

/* Copy between a caller buffer and a slot's bounce pages. */
static void sv_bounce_copy(struct storvsc_queue *q,
    const struct storvsc_slot *sl, uint8_t *buf, uint32_t len, bool to_bounce)
{
	for (uint32_t i = 0; len != 0 && i < sl->sl_nbounce; i++) {
		uint32_t n = len < SV_PAGE_SIZE ? len : SV_PAGE_SIZE;
		uint8_t *pg = sv_bounce_page(q, sl->sl_bounce[i]);

		if (to_bounce)
			vmbus_memcpy(pg, buf, n);
		else
			vmbus_memcpy(buf, pg, n);
		buf += n;
		len -= n;
	}
}

/* ---- slots ---- */

void storvsc_slot_set_state(struct storvsc_queue *q, struct storvsc_slot *sl,
    uint32_t state)
{
	if (sl->sl_state == SV_SLOT_RESEND)
		q->q_resend--;
	if (state == SV_SLOT_RESEND)
		q->q_resend++;
	sl->sl_state = state;
}

void storvsc_slot_release_locked(struct storvsc_queue *q,
    struct storvsc_slot *sl)
{
	if (sl->sl_nbounce != 0) {
		sv_bounce_put(q, sl->sl_nbounce, sl->sl_bounce);
		sl->sl_nbounce = 0;
	}
	storvsc_slot_set_state(q, sl, SV_SLOT_FREE);
	sl->sl_io = NULL;
	atomic_fetch_sub(&q->q_active, 1);
}

/* ---- describing memory to the host ---- */

/*
 * Describe va[0..len) page by page with the port's virt_to_gpa: pfns[]
 * gets one 4 KiB frame per page touched, *offset the byte offset in the
 * first. False when any page cannot be described (then: bounce).
 */
static bool sv_describe(const struct storvsc *sv, const uint8_t *va,
    uint32_t len, uint64_t *pfns, uint32_t *npfn, uint32_t *offset)
{
	const struct vmbus_platform *p = sv->sv_plat;
	uint32_t off = (uint32_t)((uintptr_t)va & (SV_PAGE_SIZE - 1u));
	uint32_t n = (off + len + SV_PAGE_SIZE - 1u) / SV_PAGE_SIZE;
	const uint8_t *page0 = va - off;
	uint64_t gpa;

	if (n > SV_MAX_XFER_PAGES)
		return false;
	if (p->virt_to_gpa(p->ctx, va, &gpa) != 0 ||
	    (gpa & (SV_PAGE_SIZE - 1u)) != off || gpa < SV_PAGE_SIZE)
		return false;
	if (pfns)
		pfns[0] = gpa / SV_PAGE_SIZE;
	for (uint32_t i = 1; i < n; i++) {
		if (p->virt_to_gpa(p->ctx, page0 + (size_t)i * SV_PAGE_SIZE,
		    &gpa) != 0 || (gpa & (SV_PAGE_SIZE - 1u)) != 0 ||
		    gpa == 0)
			return false;
		if (pfns)
			pfns[i] = gpa / SV_PAGE_SIZE;
	}
	if (npfn)
		*npfn = n;
	if (offset)
		*offset = off;
	return true;
}

/* ---- EXECUTE_SRB ---- */

/* q_lock held. Send (or resend) the SRB of slot sl. 0, -EAGAIN (ring
 * full: the slot stays as it was), or another send error. */
static int sv_slot_send(struct storvsc_queue *q, struct storvsc_slot *sl)
{
	struct storvsc_ctrl *ct = q->q_ctrl;
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_io *io = sl->sl_io;
	struct storvsc_io_priv *p = sv_iop(io);
	struct vstor_packet pkt;
	struct vmscsi_request *srb = &pkt.vp_srb;
	uint64_t tid, secs;
	uint32_t flags = 0;
	int r;

	vmbus_memset(&pkt, 0, sizeof(pkt));
	pkt.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_EXECUTE_SRB);
	pkt.vp_flags = hv_cpu_to_le32(VSTOR_FLAG_REQUEST_COMPLETION);
	srb->vr_length = hv_cpu_to_le16((uint16_t)ct->ct_srb_len);
	srb->vr_port_number = ct->ct_port;
	srb->vr_path_id = p->ip_path;
	srb->vr_target_id = p->ip_target;
	srb->vr_lun = p->ip_lun;
	srb->vr_cdb_length = sl->sl_cdb_len;
	srb->vr_sense_info_length = (uint8_t)ct->ct_sense_size;
	srb->vr_data_in = sl->sl_data_in;
	srb->vr_data_transfer_length = hv_cpu_to_le32(sl->sl_len);
	vmbus_memcpy(srb->vr_cdb, sl->sl_cdb, sizeof(srb->vr_cdb));
	if (ct->ct_version >= VMSTOR_PROTO_VERSION_WIN8) {
		/* The WIN8 extension (spec 3.4): what L sends. */
		flags = SRB_FLAGS_DISABLE_SYNCH_TRANSFER |
		    SRB_FLAGS_QUEUE_ACTION_ENABLE | SRB_FLAGS_NO_QUEUE_FREEZE;
		if (sl->sl_len != 0)
			flags |= sl->sl_data_in == VSTOR_DATA_READ ?
			    SRB_FLAGS_DATA_IN : SRB_FLAGS_DATA_OUT;
		srb->vr_queue_tag = VSTOR_SP_UNTAGGED;
		srb->vr_queue_action = VSTOR_SRB_SIMPLE_TAG_REQUEST;
		srb->vr_srb_flags = hv_cpu_to_le32(flags);
		secs = p->ip_timeout / 1000000000ull;
		if (secs == 0)
			secs = 1;
		if (secs > 3600u)
			secs = 3600u;
		srb->vr_time_out_value = hv_cpu_to_le32((uint32_t)secs);
	}
	tid = sv_slot_newid(q, sl);
	if (sl->sl_len == 0) {
		r = vmbus_chan_send(q->q_chan, VMBUS_PACKET_TYPE_DATA_INBAND,
		    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, &pkt,
		    ct->ct_pkt_size, tid);
	} else {
		uint64_t pfns[SV_MAX_XFER_PAGES];
		struct vmbus_gpa_buf gb;
		uint32_t npfn = 0, off = 0;

		if (sl->sl_direct) {
			if (!sv_describe(sv, (uint8_t *)io->io_buf +
			    sl->sl_buf_off, sl->sl_len, pfns, &npfn, &off))
				return -VMBUS_EFAULT;
		} else {
			npfn = (sl->sl_len + SV_PAGE_SIZE - 1u) / SV_PAGE_SIZE;
			for (uint32_t i = 0; i < npfn; i++)
				pfns[i] = q->q_bounce_pfn[sl->sl_bounce[i]];
		}
		/* Spec 3.8: exactly one range; len = transfer length. */
		gb.gb_len = sl->sl_len;
		gb.gb_offset = off;
		gb.gb_npfn = npfn;
		gb.gb_pfn = pfns;
		r = vmbus_chan_send_gpa(q->q_chan, &gb, 1, &pkt,
		    ct->ct_pkt_size, tid);
	}
	if (r != 0)
		return r;
	storvsc_slot_set_state(q, sl, SV_SLOT_ACTIVE);
	sl->sl_deadline = sv_now(sv) + p->ip_timeout;
	q->q_stats.st_srbs++;
	if (sl->sl_len != 0 && !sl->sl_direct)
		q->q_stats.st_bounced++;
	return 0;
}

/* ---- building one SRB of a request ---- */

static void sv_cdb_rw(struct storvsc_slot *sl, bool write, uint64_t lba,
    uint32_t nblk)
{
	vmbus_memset(sl->sl_cdb, 0, sizeof(sl->sl_cdb));
	if (lba + nblk <= 0xFFFFFFFFull && nblk <= 0xFFFFu) {
		sl->sl_cdb[0] = (uint8_t)(write ? SCSI_WRITE_10 : SCSI_READ_10);
		hv_put_be32(&sl->sl_cdb[2], (uint32_t)lba);
		hv_put_be16(&sl->sl_cdb[7], (uint16_t)nblk);
		sl->sl_cdb_len = SCSI_CDB10_LEN;
	} else {
		sl->sl_cdb[0] = (uint8_t)(write ? SCSI_WRITE_16 : SCSI_READ_16);
		hv_put_be64(&sl->sl_cdb[2], lba);
		hv_put_be32(&sl->sl_cdb[10], nblk);
		sl->sl_cdb_len = SCSI_CDB16_LEN;
	}
}

/* Data for sl: describe io_buf + off directly, or take bounce pages
 * (copying write data in). 0, -EAGAIN (no bounce pages now). */
static int sv_data_setup(struct storvsc_queue *q, struct storvsc_slot *sl,
    uint8_t *buf, uint32_t len, bool write, bool direct)
{
	uint32_t need;

	if (direct) {
		sl->sl_direct = true;
		return 0;
	}
	need = (len + SV_PAGE_SIZE - 1u) / SV_PAGE_SIZE;
	if (need > SV_BOUNCE_CHUNK_PAGES || !sv_bounce_get(q, need, sl->sl_bounce))
		return -VMBUS_EAGAIN;
	sl->sl_nbounce = (uint16_t)need;
	sl->sl_direct = false;
	if (write)
		sv_bounce_copy(q, sl, buf, len, true);
	return 0;
}

/*
 * Build the next SRB of io into the held slot sl and advance the request's
 * cursor. 0, -EAGAIN (no bounce pages: try again after a completion), or
 * an error for the whole request.
 */
static int sv_chunk_build(struct storvsc_queue *q, struct storvsc_io *io,
    struct storvsc_slot *sl)
{
	struct storvsc_io_priv *p = sv_iop(io);
	uint8_t *buf = io->io_buf;
	int r;

	sl->sl_kind = SV_KIND_IO;
	sl->sl_io = io;
	sl->sl_retries = 0;
	sl->sl_direct = false;
	sl->sl_nbounce = 0;
	sl->sl_buf_off = 0;
	sl->sl_blocks = 0;
	vmbus_memset(sl->sl_cdb, 0, sizeof(sl->sl_cdb));

	switch (io->io_op) {
	case STORVSC_OP_READ:
	case STORVSC_OP_WRITE: {
		bool write = io->io_op == STORVSC_OP_WRITE;
		uint64_t off = p->ip_cursor, left = p->ip_total - off;
		uint32_t len = left < p->ip_chunk ? (uint32_t)left : p->ip_chunk;
		bool direct = sv_describe(q->q_ctrl->ct_sv, buf + off, len,
		    NULL, NULL, NULL);

		if (!direct) {
			/* Through the bounce pool: at most a bounce chunk. */
			uint32_t cap = SV_BOUNCE_CHUNK_PAGES * SV_PAGE_SIZE;

			cap -= cap % p->ip_block;
			if (len > cap)
				len = cap;
		}
		r = sv_data_setup(q, sl, buf + off, len, write, direct);
		if (r != 0)
			return r;
		sv_cdb_rw(sl, write, io->io_lba + off / p->ip_block,
		    len / p->ip_block);
		sl->sl_len = len;
		sl->sl_buf_off = off;
		sl->sl_blocks = len / p->ip_block;
		sl->sl_data_in = (uint8_t)(write ? VSTOR_DATA_WRITE :
		    VSTOR_DATA_READ);
		if (off != 0)
			q->q_stats.st_splits++;
		p->ip_cursor += len;
		break;
	}
	case STORVSC_OP_DISCARD: {
		uint64_t left = p->ip_total - p->ip_cursor;
		uint64_t lba = io->io_lba + p->ip_cursor, covered = 0;
		uint32_t k = 0;
		uint8_t *pl;

		if (!sv_bounce_get(q, 1, sl->sl_bounce))
			return -VMBUS_EAGAIN;
		sl->sl_nbounce = 1;
		pl = sv_bounce_page(q, sl->sl_bounce[0]);
		vmbus_memset(pl, 0, SV_PAGE_SIZE);
		/* UNMAP parameter list (SBC): 8-byte header, then 16-byte
		 * block descriptors {LBA u64, count u32, reserved}. */
		while (left != 0 && k < p->ip_unmap_desc) {
			uint32_t n = left < p->ip_unmap_blocks ?
			    (uint32_t)left : p->ip_unmap_blocks;
			uint8_t *d = pl + 8u + 16u * k;

			hv_put_be64(d, lba);
			hv_put_be32(d + 8, n);
			lba += n;
			left -= n;
			covered += n;
			k++;
		}
		hv_put_be16(pl, (uint16_t)(6u + 16u * k));
		hv_put_be16(pl + 2, (uint16_t)(16u * k));
		sl->sl_cdb[0] = SCSI_UNMAP;
		hv_put_be16(&sl->sl_cdb[7], (uint16_t)(8u + 16u * k));
		sl->sl_cdb_len = SCSI_CDB10_LEN;
		sl->sl_len = 8u + 16u * k;
		sl->sl_blocks = covered;
		sl->sl_data_in = VSTOR_DATA_WRITE;
		if (p->ip_cursor != 0)
			q->q_stats.st_splits++;
		p->ip_cursor += covered;
		break;
	}
	case STORVSC_OP_FLUSH:
		/* SYNCHRONIZE CACHE(10), LBA 0 count 0: the whole medium. */
		sl->sl_cdb[0] = SCSI_SYNCHRONIZE_CACHE_10;
		sl->sl_cdb_len = SCSI_CDB10_LEN;
		sl->sl_len = 0;
		sl->sl_data_in = VSTOR_DATA_UNKNOWN;
		p->ip_cursor = 1;
		break;
	case STORVSC_OP_SCSI:
		vmbus_memcpy(sl->sl_cdb, io->io_cdb, io->io_cdb_len);
		sl->sl_cdb_len = io->io_cdb_len;
		sl->sl_len = io->io_dir == STORVSC_DIR_NONE ? 0 : io->io_len;
		sl->sl_data_in = (uint8_t)(io->io_dir == STORVSC_DIR_IN ?
		    VSTOR_DATA_READ : io->io_dir == STORVSC_DIR_OUT ?
		    VSTOR_DATA_WRITE : VSTOR_DATA_UNKNOWN);
		if (sl->sl_len != 0) {
			bool direct = sv_describe(q->q_ctrl->ct_sv, buf,
			    sl->sl_len, NULL, NULL, NULL);

			if (!direct &&
			    sl->sl_len > SV_BOUNCE_CHUNK_PAGES * SV_PAGE_SIZE)
				return -VMBUS_EINVAL;	/* cannot bounce it */
			r = sv_data_setup(q, sl, buf, sl->sl_len,
			    io->io_dir == STORVSC_DIR_OUT, direct);
			if (r != 0)
				return r;
		}
		p->ip_cursor = 1;
		break;
	default:
		return -VMBUS_EINVAL;
	}
	p->ip_outstanding++;
	return 0;
}

/* ---- request completion ---- */

static void sv_pend_unlink(struct storvsc_queue *q, struct storvsc_io *io)
{
	struct storvsc_io **pp = &q->q_pend_head, *prev = NULL;

	while (*pp != NULL && *pp != io) {
		prev = *pp;
		pp = &sv_iop(*pp)->ip_next;
	}
	if (*pp == NULL)
		return;
	*pp = sv_iop(io)->ip_next;
	if (q->q_pend_tail == io)
		q->q_pend_tail = prev;
	sv_iop(io)->ip_next = NULL;
	sv_iop(io)->ip_queued = false;
}

/* q_lock held: complete io if nothing of it is in flight and nothing more
 * will be issued; it goes onto *done. */
static void sv_io_try_finish(struct storvsc_queue *q, struct storvsc_io *io,
    struct storvsc_io **done)
{
	struct storvsc_io_priv *p = sv_iop(io);

	if (p->ip_outstanding != 0)
		return;
	if (p->ip_error == 0 && p->ip_cursor < p->ip_total)
		return;
	if (p->ip_queued)
		sv_pend_unlink(q, io);
	io->io_error = p->ip_error;
	io->io_bytes = p->ip_error == 0 || io->io_op == STORVSC_OP_SCSI ?
	    p->ip_bytes : 0;
	io->io_buf_shared = p->ip_shared;
	p->ip_magic = 0;
	q->q_stats.st_ios++;
	if (p->ip_error != 0)
		q->q_stats.st_io_errors++;
	p->ip_next = *done;
	*done = io;
}

void storvsc_io_finish_list(struct storvsc_io *done)
{
	struct storvsc_io *rev = NULL;

	/* Built newest first; call back in completion order. */
	while (done != NULL) {
		struct storvsc_io *next = sv_iop(done)->ip_next;

		sv_iop(done)->ip_next = rev;
		rev = done;
		done = next;
	}
	while (rev != NULL) {
		struct storvsc_io *next = sv_iop(rev)->ip_next;

		sv_iop(rev)->ip_next = NULL;
		rev->io_done(rev);	/* may reuse rev at once */
		rev = next;
	}
}

void storvsc_io_fail_slot_locked(struct storvsc_queue *q,
    struct storvsc_slot *sl, int err, bool quarantine, bool shared,
    struct storvsc_io **done)
{
	struct storvsc_io *io = sl->sl_io;

	if (io != NULL) {
		struct storvsc_io_priv *p = sv_iop(io);

		if (p->ip_error == 0)
			p->ip_error = err;
		if (shared)
			p->ip_shared = true;
		p->ip_outstanding--;
		sl->sl_io = NULL;
	}
	if (quarantine)
		storvsc_slot_set_state(q, sl, SV_SLOT_QUARANTINE);
	else
		storvsc_slot_release_locked(q, sl);
	if (io != NULL)
		sv_io_try_finish(q, io, done);
}

void storvsc_io_fail_pending_locked(struct storvsc_queue *q, int err,
    struct storvsc_io **done)
{
	while (q->q_pend_head != NULL) {
		struct storvsc_io *io = q->q_pend_head;
		struct storvsc_io_priv *p = sv_iop(io);

		sv_pend_unlink(q, io);
		if (p->ip_error == 0)
			p->ip_error = err;
		sv_io_try_finish(q, io, done);
	}
}

void storvsc_io_expire_pending_locked(struct storvsc_queue *q, uint64_t now,
    struct storvsc_io **done)
{
	struct storvsc_io *io = q->q_pend_head;

	while (io != NULL) {
		struct storvsc_io_priv *p = sv_iop(io);
		struct storvsc_io *next = p->ip_next;

		if (p->ip_outstanding == 0 && now >= p->ip_qdeadline) {
			/* Never got a slot, bounce pages or ring room. */
			q->q_stats.st_timeouts++;
			sv_pend_unlink(q, io);
			if (p->ip_error == 0)
				p->ip_error = -VMBUS_ETIMEDOUT;
			sv_io_try_finish(q, io, done);
		}
		io = next;
	}
}

/* ---- issuing ---- */

void storvsc_io_kick_locked(struct storvsc_queue *q, struct storvsc_io **done)
{
	struct storvsc *sv = q->q_ctrl->ct_sv;

	if (atomic_load(&q->q_state) != SV_Q_OPEN)
		return;
	/* First what was built but found the ring full (in slot order). */
	for (uint32_t i = 0; q->q_resend != 0 && i < q->q_nslots; i++) {
		struct storvsc_slot *sl = &q->q_slots[i];
		int r;

		if (sl->sl_state != SV_SLOT_RESEND)
			continue;
		r = sv_slot_send(q, sl);
		if (r == -VMBUS_EAGAIN) {
			q->q_stats.st_ring_full++;
			return;
		}
		if (r != 0)
			storvsc_io_fail_slot_locked(q, sl, r, false, false, done);
	}
	while (q->q_pend_head != NULL) {
		struct storvsc_io *io = q->q_pend_head;
		struct storvsc_io_priv *p = sv_iop(io);
		struct storvsc_slot *sl;
		int r;

		if (p->ip_error != 0 || p->ip_cursor >= p->ip_total) {
			sv_pend_unlink(q, io);
			sv_io_try_finish(q, io, done);
			continue;
		}
		sl = storvsc_slot_get_locked(q);
		if (sl == NULL) {
			if (!p->ip_waited) {
				p->ip_waited = true;
				q->q_stats.st_queue_waits++;
			}
			return;
		}
		r = sv_chunk_build(q, io, sl);
		if (r == -VMBUS_EAGAIN) {
			storvsc_slot_release_locked(q, sl);
			return;		/* bounce pages come back later */
		}
		if (r != 0) {
			storvsc_slot_release_locked(q, sl);
			if (p->ip_error == 0)
				p->ip_error = r;
			continue;
		}
		p->ip_qdeadline = sv_now(sv) + p->ip_timeout;
		r = sv_slot_send(q, sl);
		if (r == -VMBUS_EAGAIN) {
			storvsc_slot_set_state(q, sl, SV_SLOT_RESEND);
			sl->sl_deadline = sv_now(sv) + p->ip_timeout;
			q->q_stats.st_ring_full++;
			return;
		}
		if (r != 0)
			storvsc_io_fail_slot_locked(q, sl, r, false, false, done);
	}
}

/* ---- sense data and status mapping ---- */

void storvsc_sense_decode(struct storvsc_scsi_result *r)
{
	const uint8_t *s = r->sr_sense;
	uint32_t n = r->sr_sense_len, code;

	r->sr_sense_valid = false;
	r->sr_info_valid = false;
	r->sr_sense_key = r->sr_asc = r->sr_ascq = 0;
	r->sr_info = 0;
	if (n == 0)
		return;
	code = s[0] & 0x7Fu;
	if (code == SCSI_SENSE_RESPONSE_CURRENT ||
	    code == SCSI_SENSE_RESPONSE_DEFERRED) {
		/* Fixed format: key @2, INFORMATION @3..6, ASC/ASCQ @12/13. */
		if (n < 3)
			return;
		r->sr_sense_key = s[2] & SCSI_SENSE_KEY_MASK;
		if (n >= 13)
			r->sr_asc = s[12];
		if (n >= 14)
			r->sr_ascq = s[13];
		if ((s[0] & SCSI_SENSE_VALID) && n >= 7) {
			r->sr_info = hv_get_be32(&s[3]);
			r->sr_info_valid = true;
		}
		r->sr_sense_valid = true;
	} else if (code == 0x72u || code == 0x73u) {
		/* Descriptor format: key @1, ASC/ASCQ @2/3, descriptors from
		 * byte 8 (additional length @7), each {type, len, ...}. */
		uint32_t end, i;

		if (n < 4)
			return;
		r->sr_sense_key = s[1] & SCSI_SENSE_KEY_MASK;
		r->sr_asc = s[2];
		r->sr_ascq = s[3];
		r->sr_sense_valid = true;
		end = n >= 8 ? 8u + s[7] : n;
		if (end > n)
			end = n;
		for (i = 8; i + 2 <= end; i += 2u + s[i + 1]) {
			/* Information descriptor: type 0, length 0x0A. */
			if (s[i] == 0 && s[i + 1] >= 0x0Au && i + 12 <= end &&
			    (s[i + 2] & 0x80u)) {
				r->sr_info = hv_get_be64(&s[i + 4]);
				r->sr_info_valid = true;
				break;
			}
		}
	}
}

static int sv_map_sense(const struct storvsc_scsi_result *r, bool *retry,
    bool *rescan)
{
	if (!r->sr_sense_valid)
		return -VMBUS_EIO;
	switch (r->sr_sense_key) {
	case SCSI_SENSE_RECOVERED_ERROR:
		return 0;	/* done, with recovery */
	case SCSI_SENSE_NOT_READY:
		if (r->sr_asc == SCSI_ASC_MEDIUM_NOT_PRESENT)
			return -VMBUS_ENODEV;
		*retry = true;
		return -VMBUS_EBUSY;
	case SCSI_SENSE_ILLEGAL_REQUEST:
		switch (r->sr_asc) {
		case SCSI_ASC_LBA_OUT_OF_RANGE:
			return -VMBUS_ERANGE;
		case SCSI_ASC_INVALID_OPCODE:
		case SCSI_ASC_INVALID_FIELD_IN_CDB:
			return -VMBUS_EOPNOTSUPP;
		case SCSI_ASC_LUN_NOT_SUPPORTED:
			*rescan = true;
			return -VMBUS_ENODEV;
		default:
			return -VMBUS_EIO;
		}
	case SCSI_SENSE_UNIT_ATTENTION:
		/* L: capacity data changed (2A/09) or target changes (3F):
		 * rescan, and requeue the command. */
		if ((r->sr_asc == SCSI_ASC_PARAMETERS_CHANGED &&
		    r->sr_ascq == SCSI_ASCQ_CAPACITY_DATA_CHANGED) ||
		    r->sr_asc == SCSI_ASC_TARGET_CHANGED)
			*rescan = true;
		*retry = true;
		return -VMBUS_EIO;
	case SCSI_SENSE_DATA_PROTECT:
		if (r->sr_asc == SCSI_ASC_SPACE_ALLOCATION_FAILED &&
		    r->sr_ascq == SCSI_ASCQ_SPACE_ALLOCATION_FAILED)
			return -VMBUS_ENOSPC;
		return -VMBUS_EPERM;
	case SCSI_SENSE_ABORTED_COMMAND:
		*retry = true;
		return -VMBUS_EIO;
	case SCSI_SENSE_NO_SENSE:		/* CHECK CONDITION, no reason */
	case SCSI_SENSE_MEDIUM_ERROR:
	case SCSI_SENSE_HARDWARE_ERROR:
	default:
		return -VMBUS_EIO;
	}
}

int storvsc_io_map_result(const struct storvsc_scsi_result *r, bool *retry,
    bool *rescan, struct storvsc_stats *st)
{
	uint8_t srb = r->sr_srb_status & SRB_STATUS_MASK;
	uint8_t scsi = r->sr_scsi_status;
	bool bad = false;
	int err;

	*retry = false;
	*rescan = false;
	if (scsi == SCSI_STATUS_CHECK_CONDITION && st && r->sr_sense_valid)
		st->st_check_conditions++;
	switch (srb) {
	case SRB_STATUS_SUCCESS:
	case SRB_STATUS_DATA_OVERRUN:	/* L: an underrun, length kept */
		switch (scsi) {
		case SCSI_STATUS_GOOD:
		case SCSI_STATUS_CONDITION_MET:
			/* A failure NTSTATUS with SRB success is
			 * inconsistent: trust neither (hostile-host 18). */
			if ((r->sr_vstor_status & 0xC0000000u) == 0xC0000000u) {
				bad = true;
				err = -VMBUS_EIO;
			} else {
				err = 0;
			}
			break;
		case SCSI_STATUS_CHECK_CONDITION:
			err = sv_map_sense(r, retry, rescan);
			if (err == 0 && srb != SRB_STATUS_SUCCESS &&
			    srb != SRB_STATUS_DATA_OVERRUN)
				err = -VMBUS_EIO;
			break;
		case SCSI_STATUS_BUSY:
		case SCSI_STATUS_TASK_SET_FULL:
			*retry = true;
			err = -VMBUS_EBUSY;
			break;
		default:
			bad = true;
			err = -VMBUS_EIO;
			break;
		}
		break;
	case SRB_STATUS_ERROR:
		if (scsi == SCSI_STATUS_CHECK_CONDITION) {
			err = sv_map_sense(r, retry, rescan);
			if (err == 0)
				err = -VMBUS_EIO;	/* ERROR is not success */
		} else if (scsi == SCSI_STATUS_BUSY ||
		    scsi == SCSI_STATUS_TASK_SET_FULL) {
			*retry = true;
			err = -VMBUS_EBUSY;
		} else if (scsi == SCSI_STATUS_RESERVATION_CONFLICT) {
			err = -VMBUS_EBUSY;
		} else {
			if (scsi == SCSI_STATUS_GOOD)
				bad = true;	/* ERROR but GOOD */
			err = -VMBUS_EIO;
		}
		break;
	case SRB_STATUS_BUSY:
		*retry = true;
		err = -VMBUS_EBUSY;
		break;
	case SRB_STATUS_ABORTED:
	case SRB_STATUS_REQUEST_FLUSHED:
	case SRB_STATUS_BUS_RESET:
		err = -VMBUS_ECANCELED;
		break;
	case SRB_STATUS_INVALID_LUN:
	case SRB_STATUS_INVALID_TARGET_ID:
	case SRB_STATUS_NO_DEVICE:
	case SRB_STATUS_SELECTION_TIMEOUT:
	case SRB_STATUS_NO_HBA:
	case SRB_STATUS_INVALID_PATH_ID:
		/* The LUN is not there (spec 3.7): rescan drops it. */
		*rescan = true;
		err = -VMBUS_ENODEV;
		break;
	case SRB_STATUS_TIMEOUT:
	case SRB_STATUS_COMMAND_TIMEOUT:
		err = -VMBUS_ETIMEDOUT;
		break;
	case SRB_STATUS_INVALID_REQUEST:
	case SRB_STATUS_BAD_FUNCTION:
		err = -VMBUS_EOPNOTSUPP;
		break;
	case SRB_STATUS_ABORT_FAILED:
	case SRB_STATUS_MESSAGE_REJECTED:
	case SRB_STATUS_PARITY_ERROR:
	case SRB_STATUS_REQUEST_SENSE_FAILED:
	case SRB_STATUS_UNEXPECTED_BUS_FREE:
	case SRB_STATUS_PHASE_SEQUENCE_FAILURE:
	case SRB_STATUS_BAD_SRB_BLOCK_LENGTH:
	case SRB_STATUS_ERROR_RECOVERY:
	case SRB_STATUS_NOT_POWERED:
	case SRB_STATUS_LINK_DOWN:
	case SRB_STATUS_INTERNAL_ERROR:
		if (scsi == SCSI_STATUS_CHECK_CONDITION && r->sr_sense_valid) {
			err = sv_map_sense(r, retry, rescan);
			if (err == 0)
				err = -VMBUS_EIO;
		} else {
			err = -VMBUS_EIO;
		}
		break;
	case SRB_STATUS_PENDING:	/* a completion cannot be pending */
	default:
		bad = true;
		err = -VMBUS_EIO;
		break;
	}
	if (bad && st)
		st->st_bad_status++;
	return err;
}

/* ---- SRB completion ---- */

void storvsc_io_complete_locked(struct storvsc_queue *q,
    struct storvsc_slot *sl, const struct vstor_packet *pkt, uint32_t len,
    struct storvsc_io **done)
{
	struct storvsc_ctrl *ct = q->q_ctrl;
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_io *io = sl->sl_io;
	struct storvsc_io_priv *p;
	const struct vmscsi_request *srb = &pkt->vp_srb;
	struct storvsc_scsi_result r;
	bool retry, rescan;
	uint32_t xfer;
	int err;

	(void)len;
	if (io == NULL) {	/* cannot happen: ACTIVE I/O slots have one */
		storvsc_slot_release_locked(q, sl);
		return;
	}
	p = sv_iop(io);
	vmbus_memset(&r, 0, sizeof(r));
	r.sr_vstor_status = hv_le32(pkt->vp_status);
	r.sr_srb_status = srb->vr_srb_status;
	r.sr_scsi_status = srb->vr_scsi_status;
	/* Never believe more data than we asked for (hostile-host 18). */
	xfer = hv_le32(srb->vr_data_transfer_length);
	if (xfer > sl->sl_len) {
		q->q_stats.st_clamped++;
		if (sv_ratelimit(sv, &q->q_log_next))
			sv_log(sv, VMBUS_LOG_WARN,
			    "storvsc%u/q%u: host reports %u bytes for a %u-byte"
			    " request; clamped", (unsigned)ct->ct_port,
			    (unsigned)q->q_index, (unsigned)xfer,
			    (unsigned)sl->sl_len);
		xfer = sl->sl_len;
	}
	/* Sense overlays the CDB area; copy at most our buffer size. */
	if (r.sr_srb_status & SRB_STATUS_AUTOSENSE_VALID) {
		uint32_t slen = srb->vr_sense_info_length;

		if (slen > ct->ct_sense_size) {
			q->q_stats.st_clamped++;
			slen = ct->ct_sense_size;
		}
		vmbus_memcpy(r.sr_sense, srb->vr_sense_data, slen);
		r.sr_sense_len = (uint8_t)slen;
		storvsc_sense_decode(&r);
	}
	err = storvsc_io_map_result(&r, &retry, &rescan, &q->q_stats);
	if (err == 0 && sl->sl_len != 0 && xfer < sl->sl_len &&
	    io->io_op != STORVSC_OP_SCSI)
		err = -VMBUS_EIO;	/* short block transfer */
	if (rescan && !p->ip_scan)
		atomic_store(&q->q_want_rescan, true);
	if (err != 0 && retry && sl->sl_retries < SV_MAX_RETRIES &&
	    p->ip_error == 0 && atomic_load(&q->q_state) == SV_Q_OPEN) {
		int rs;

		sl->sl_retries++;
		q->q_stats.st_retries++;
		rs = sv_slot_send(q, sl);
		if (rs == 0)
			return;
		if (rs == -VMBUS_EAGAIN) {
			storvsc_slot_set_state(q, sl, SV_SLOT_RESEND);
			sl->sl_deadline = sv_now(sv) + p->ip_timeout;
			q->q_stats.st_ring_full++;
			return;
		}
		err = rs;
	}
	if (err == 0) {
		if (sl->sl_data_in == VSTOR_DATA_READ && !sl->sl_direct &&
		    xfer != 0)
			sv_bounce_copy(q, sl, (uint8_t *)io->io_buf +
			    sl->sl_buf_off, xfer, false);
		if (io->io_op != STORVSC_OP_DISCARD) {
			p->ip_bytes += xfer;
			if (sl->sl_data_in == VSTOR_DATA_READ)
				q->q_stats.st_bytes_read += xfer;
			else if (sl->sl_data_in == VSTOR_DATA_WRITE)
				q->q_stats.st_bytes_written += xfer;
		}
		if (p->ip_error == 0)
			io->io_status = r;
	} else {
		if (io->io_op == STORVSC_OP_SCSI)
			p->ip_bytes = xfer;
		if (p->ip_error == 0) {
			p->ip_error = err;
			io->io_status = r;
		}
	}
	storvsc_slot_release_locked(q, sl);
	p->ip_outstanding--;
	sv_io_try_finish(q, io, done);
}

/* ---- submission ---- */

/*
 * Queues spread over vCPUs: the submitting vCPU's queue while it is less
 * than half busy, else the least busy open queue (one busy thread then
 * still uses every channel).
 */
static struct storvsc_queue *sv_pick_queue(struct storvsc_ctrl *ct, int *err)
{
	const struct vmbus_platform *p = ct->ct_sv->sv_plat;
	struct storvsc_queue *best = NULL, *q;
	uint32_t nq = ct->ct_nq, start, best_active = UINT32_MAX;
	bool broken = false;

	if (nq == 0) {
		*err = -VMBUS_ENODEV;
		return NULL;
	}
	start = p->current_vp ? p->current_vp(p->ctx) :
	    atomic_fetch_add(&ct->ct_rr, 1);
	start %= nq;
	q = &ct->ct_q[start];
	if (atomic_load(&q->q_state) == SV_Q_OPEN &&
	    atomic_load(&q->q_active) < (q->q_nslots + 1u) / 2u)
		return q;
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t active;
		int st;

		q = &ct->ct_q[(start + i) % nq];
		st = atomic_load(&q->q_state);
		if (st == SV_Q_BROKEN)
			broken = true;
		if (st != SV_Q_OPEN)
			continue;
		active = atomic_load(&q->q_active);
		if (active < best_active) {
			best = q;
			best_active = active;
		}
	}
	if (best == NULL)
		*err = broken ? -VMBUS_EPROTO : -VMBUS_ENODEV;
	return best;
}

static bool sv_pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1u)) == 0;
}

int storvsc_io_submit_tgt(struct storvsc_ctrl *ct, const struct sv_target *t,
    struct storvsc_io *io)
{
	struct storvsc *sv = ct->ct_sv;
	struct storvsc_io_priv *p;
	struct storvsc_queue *q;
	struct storvsc_io *done = NULL;
	uint64_t total = 1;
	uint32_t chunk = 0;
	int err = 0;

	if (io == NULL || io->io_done == NULL)
		return -VMBUS_EINVAL;
	p = sv_iop(io);
	if (p->ip_magic == SV_IO_MAGIC_BUSY)
		return -VMBUS_EINVAL;
	if (atomic_load(&ct->ct_state) != SV_CT_READY)
		return -VMBUS_ENODEV;
	switch (io->io_op) {
	case STORVSC_OP_READ:
	case STORVSC_OP_WRITE:
		if (io->io_nblocks == 0 || io->io_buf == NULL)
			return -VMBUS_EINVAL;
		if (!sv_pow2(t->t_block) || t->t_block < 512u ||
		    t->t_block > 65536u)
			return -VMBUS_EOPNOTSUPP;
		if (io->io_lba > t->t_blocks ||
		    io->io_nblocks > t->t_blocks - io->io_lba)
			return -VMBUS_ERANGE;
		chunk = ct->ct_max_xfer - ct->ct_max_xfer % t->t_block;
		if (t->t_max_xfer_blocks != 0 &&
		    (uint64_t)t->t_max_xfer_blocks * t->t_block < chunk)
			chunk = t->t_max_xfer_blocks * t->t_block;
		if (chunk < t->t_block)
			return -VMBUS_EOPNOTSUPP;
		total = (uint64_t)io->io_nblocks * t->t_block;
		break;
	case STORVSC_OP_DISCARD:
		if (io->io_nblocks == 0)
			return -VMBUS_EINVAL;
		if (!t->t_discard || t->t_unmap_blocks == 0 ||
		    t->t_unmap_desc == 0)
			return -VMBUS_EOPNOTSUPP;
		if (io->io_lba > t->t_blocks ||
		    io->io_nblocks > t->t_blocks - io->io_lba)
			return -VMBUS_ERANGE;
		total = io->io_nblocks;
		break;
	case STORVSC_OP_FLUSH:
		break;
	case STORVSC_OP_SCSI:
		if (io->io_cdb_len < SCSI_CDB6_LEN ||
		    io->io_cdb_len > VSTOR_CDB_SIZE ||
		    io->io_dir > STORVSC_DIR_OUT)
			return -VMBUS_EINVAL;
		if (io->io_dir == STORVSC_DIR_NONE ? io->io_len != 0 :
		    (io->io_len == 0 || io->io_buf == NULL ||
		    io->io_len > ct->ct_max_xfer))
			return -VMBUS_EINVAL;
		break;
	default:
		return -VMBUS_EINVAL;
	}
	q = sv_pick_queue(ct, &err);
	if (q == NULL)
		return err;

	vmbus_memset(p, 0, sizeof(*p));
	p->ip_q = q;
	p->ip_total = total;
	p->ip_chunk = chunk;
	p->ip_block = t->t_block;
	p->ip_timeout = io->io_timeout_ns ? io->io_timeout_ns :
	    sv->sv_cfg.sc_io_timeout_ns;
	p->ip_unmap_blocks = t->t_unmap_blocks;
	p->ip_unmap_desc = (uint16_t)(t->t_unmap_desc < SV_UNMAP_MAX_DESC ?
	    t->t_unmap_desc : SV_UNMAP_MAX_DESC);
	p->ip_path = t->t_path;
	p->ip_target = t->t_target;
	p->ip_lun = t->t_lun;
	p->ip_scan = t->t_scan;
	io->io_error = 0;
	io->io_bytes = 0;
	io->io_buf_shared = false;
	vmbus_memset(&io->io_status, 0, sizeof(io->io_status));

	sv_lock(sv, &q->q_lock);
	if (atomic_load(&q->q_state) != SV_Q_OPEN) {
		int st = atomic_load(&q->q_state);

		sv_unlock(sv, &q->q_lock);
		return st == SV_Q_BROKEN ? -VMBUS_EPROTO : -VMBUS_ENODEV;
	}
	p->ip_magic = SV_IO_MAGIC_BUSY;
	p->ip_qdeadline = sv_now(sv) + p->ip_timeout;
	p->ip_queued = true;
	if (q->q_pend_tail != NULL)
		sv_iop(q->q_pend_tail)->ip_next = io;
	else
		q->q_pend_head = io;
	q->q_pend_tail = io;
	storvsc_io_kick_locked(q, &done);
	sv_unlock(sv, &q->q_lock);
	storvsc_io_finish_list(done);
	return 0;
}

/* ---- synchronous wait ---- */

struct sv_sync {
	_Atomic bool ss_done;
	struct storvsc_ctrl *ss_ct;
};

static void sv_sync_done(struct storvsc_io *io)
{
	struct sv_sync *s = io->io_arg;
	struct storvsc_ctrl *ct = s->ss_ct;

	/* NOTE: after the store the waiter may return and free *s. */
	atomic_store(&s->ss_done, true);
	sv_wake(ct);
}

static bool sv_sync_cond(void *arg)
{
	struct sv_sync *s = arg;

	return atomic_load(&s->ss_done);
}

/* Give up on io: what the host holds is quarantined, the rest dropped;
 * io completes with -ETIMEDOUT (unless it completed meanwhile). */
static void sv_io_abandon(struct storvsc_io *io)
{
	struct storvsc_io_priv *p = sv_iop(io);
	struct storvsc_queue *q = p->ip_q;
	struct storvsc *sv = q->q_ctrl->ct_sv;
	struct storvsc_io *done = NULL;

	sv_lock(sv, &q->q_lock);
	if (p->ip_magic == SV_IO_MAGIC_BUSY) {
		if (p->ip_error == 0)
			p->ip_error = -VMBUS_ETIMEDOUT;
		for (uint32_t i = 0; i < q->q_nslots; i++) {
			struct storvsc_slot *sl = &q->q_slots[i];

			if (sl->sl_io != io || sl->sl_kind != SV_KIND_IO)
				continue;
			if (sl->sl_state == SV_SLOT_ACTIVE) {
				q->q_stats.st_timeouts++;
				storvsc_io_fail_slot_locked(q, sl,
				    -VMBUS_ETIMEDOUT, true, sl->sl_direct,
				    &done);
			} else if (sl->sl_state == SV_SLOT_RESEND) {
				storvsc_io_fail_slot_locked(q, sl,
				    -VMBUS_ETIMEDOUT, false, false, &done);
			}
		}
		if (p->ip_queued)
			sv_pend_unlink(q, io);
		sv_io_try_finish(q, io, &done);
	}
	sv_unlock(sv, &q->q_lock);
	storvsc_io_finish_list(done);
}

int storvsc_io_sync_tgt(struct storvsc_ctrl *ct, const struct sv_target *t,
    struct storvsc_io *io)
{
	struct storvsc *sv = ct->ct_sv;
	struct sv_sync s;
	uint64_t timeout, last_cursor = 0, last_bytes = 0;
	int r;

	if (io == NULL)
		return -VMBUS_EINVAL;
	atomic_store(&s.ss_done, false);
	s.ss_ct = ct;
	io->io_done = sv_sync_done;
	io->io_arg = &s;
	r = storvsc_io_submit_tgt(ct, t, io);
	if (r != 0)
		return r;
	timeout = io->io_timeout_ns ? io->io_timeout_ns :
	    sv->sv_cfg.sc_io_timeout_ns;
	for (;;) {
		struct storvsc_io_priv *p = sv_iop(io);
		struct storvsc_queue *q = p->ip_q;
		uint64_t cur, bytes;

		/* Each SRB times out on its own (expire); this bound only
		 * catches a request that makes no progress at all. */
		(void)sv_wait(ct, sv_sync_cond, &s, sv_now(sv) + timeout +
		    SV_EXPIRE_INTERVAL_NS);
		if (atomic_load(&s.ss_done))
			break;
		sv_lock(sv, &q->q_lock);
		cur = p->ip_cursor;
		bytes = p->ip_bytes;
		sv_unlock(sv, &q->q_lock);
		if (cur != last_cursor || bytes != last_bytes) {
			last_cursor = cur;
			last_bytes = bytes;
			continue;
		}
		sv_io_abandon(io);
	}
	return io->io_error;
}
