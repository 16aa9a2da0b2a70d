/*
 * host/vsp/storvsp.c - the storage VSP: the host half of VSTOR (spec
 * vmbus-devices.md section 3) in front of the SCSI target and the disk
 * back ends. See storvsp.h for the API and storvsp_priv.h for ownership.
 *
 * One request = one slot of its channel, from the packet's copy-in to the
 * completion leaving the ring. Every guest-described byte goes through
 * hvs_pkt_gpa_read/write against the slot's private copy of the packet;
 * I/O runs on private bounce buffers. The loop never blocks: disk I/O
 * completes on back-end threads, which queue the slot and ring an eventfd
 * the loop watches; a full outgoing ring parks completions in the
 * channel's send queue until the guest signals space (pending_send_sz),
 * and the channel stops taking requests while slots, buffer budget or
 * ring space are exhausted (the guest then sees its ring fill: back
 * pressure).
 */
#define _GNU_SOURCE
#include "host/vsp/storvsp_priv.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "host/control.h"
#include "host/loop.h"
#include "host/partition.h"
#include "host/vmbus_server.h"
#include "hv/guid.h"
#include "vmbus/errno.h"

#define STAT(c, f) atomic_fetch_add_explicit(&(c)->sc_stat.f, 1, memory_order_relaxed)
#define STAT_ADD(c, f, n) \
	atomic_fetch_add_explicit(&(c)->sc_stat.f, (n), memory_order_relaxed)

#define DEFAULT_QUEUE_DEPTH   256u
#define DEFAULT_MAX_TRANSFER  (2u << 20)
#define DEFAULT_MAX_INFLIGHT  (64ull << 20)
#define MAX_UNMAP_DESC        64u
#define MAX_UNMAP_BLOCKS      (1u << 22)

static const uint16_t vstor_versions[] = {
	VMSTOR_PROTO_VERSION_WIN6, VMSTOR_PROTO_VERSION_WIN7,
	VMSTOR_PROTO_VERSION_WIN8, VMSTOR_PROTO_VERSION_WIN8_1,
	VMSTOR_PROTO_VERSION_WIN10,
};

static const char *vm_of(const struct svsp_ctrl *c)
{
	return hvs_vmbus_name(c->sc_srv);
}

#define GUEST_ERR(c, counter, ...) \
	hvs_log_guest(&(c)->sc_rl, &(c)->sc_stat.counter, vm_of(c), __VA_ARGS__)

static uint32_t subchannels_of(const struct hvs_storvsp_config *cfg)
{
	if (cfg->sc_max_subchannels == HVS_STORVSP_NO_SUBCHANNELS)
		return 0;
	if (cfg->sc_max_subchannels == 0)
		return HVS_STORVSP_DEFAULT_SUBCHANNELS;
	return cfg->sc_max_subchannels > HVS_STORVSP_MAX_SUBCHANNELS ?
		       HVS_STORVSP_MAX_SUBCHANNELS : cfg->sc_max_subchannels;
}

static void normalize_cfg(struct hvs_storvsp_config *cfg)
{
	if (cfg->sc_max_version == 0)
		cfg->sc_max_version = VMSTOR_PROTO_VERSION_WIN10;
	if (cfg->sc_queue_depth == 0)
		cfg->sc_queue_depth = DEFAULT_QUEUE_DEPTH;
	if (cfg->sc_queue_depth > 4096)
		cfg->sc_queue_depth = 4096;
	if (cfg->sc_max_transfer == 0)
		cfg->sc_max_transfer = DEFAULT_MAX_TRANSFER;
	if (cfg->sc_max_inflight == 0)
		cfg->sc_max_inflight = DEFAULT_MAX_INFLIGHT;
	if (cfg->sc_max_inflight < cfg->sc_max_transfer)
		cfg->sc_max_inflight = cfg->sc_max_transfer;
}

/* Completion size: the negotiated version's packet; the WIN8 size until
 * a version is agreed (current Linux drops shorter replies to its init
 * requests; older guests accept anything >= 48 bytes). */
static uint32_t resp_size(const struct svsp_ctrl *c)
{
	return c->sc_state >= SV_VERSIONED ? VSTOR_PACKET_SIZE_FOR(c->sc_version)
					   : VSTOR_PACKET_SIZE;
}

static uint32_t srb_size(const struct svsp_ctrl *c)
{
	return c->sc_state >= SV_VERSIONED ? VMSCSI_REQUEST_SIZE_FOR(c->sc_version)
					   : VMSCSI_REQUEST_SIZE;
}

/* ---- LUNs ----------------------------------------------------------------- */

static void lun_free(struct svsp_lun *lun)
{
	hvs_disk_close(lun->lu_disk); /* nothing in flight: returns at once */
	free(lun);
}

static void lun_put(struct svsp_lun *lun)
{
	if (--lun->lu_refs == 0 && lun->lu_detached)
		lun_free(lun);
}

/* ---- slots ------------------------------------------------------------------ */

static void chan_free(struct svsp_chan *ch)
{
	free(ch->sv_rx);
	free(ch->sv_reqs);
	free(ch->sv_pkbufs);
	free(ch);
}

static struct svsp_req *slot_get(struct svsp_chan *ch)
{
	struct svsp_req *rq = ch->sv_free;

	ch->sv_free = rq->rq_next;
	rq->rq_next = NULL;
	rq->rq_stage = RQ_IO;
	rq->rq_has_pk = false;
	rq->rq_lun = NULL;
	rq->rq_buf = NULL;
	rq->rq_buflen = 0;
	rq->rq_buf_cls = -1;
	rq->rq_direct = false;
	rq->rq_ext = NULL;
	rq->rq_xfer = 0;
	ch->sv_busy++;
	return rq;
}

/* ---- bounce buffers: a per-controller pool ---------------------------------
 *
 * A fresh buffer per request costs page faults, zeroing and (for the
 * large ones glibc maps) an munmap with TLB shootdowns on every request;
 * kept buffers cost nothing after their first use. Class k holds buffers
 * of 4 KiB << k; a free buffer's first bytes link it into its class. At
 * most sc_max_inflight bytes are kept; more are freed. Loop thread only.
 */

static int pool_class(uint64_t len)
{
	for (int k = 0; k < SVSP_POOL_CLASSES; k++)
		if (len <= (4096ull << k))
			return k;
	return -1;
}

static void pool_put(struct svsp_ctrl *c, void *buf, int cls)
{
	uint64_t sz = 4096ull << cls;

	if (cls < 0 || c->sc_pool_bytes + sz > c->sc_cfg.sc_max_inflight) {
		free(buf);
		return;
	}
	memcpy(buf, &c->sc_pool[cls], sizeof(void *));
	c->sc_pool[cls] = buf;
	c->sc_pool_bytes += sz;
}

static void *pool_get(struct svsp_ctrl *c, int cls, uint64_t len)
{
	void *buf;

	if (cls < 0) /* above every class: not pooled */
		return aligned_alloc(4096, (size_t)((len + 4095u) & ~(uint64_t)4095u));
	buf = c->sc_pool[cls];
	if (buf != NULL) {
		memcpy(&c->sc_pool[cls], buf, sizeof(void *));
		c->sc_pool_bytes -= 4096ull << cls;
		return buf;
	}
	return aligned_alloc(4096, (size_t)(4096ull << cls)); /* O_DIRECT-ready */
}

static void pool_free_all(struct svsp_ctrl *c)
{
	for (int k = 0; k < SVSP_POOL_CLASSES; k++) {
		while (c->sc_pool[k] != NULL) {
			void *buf = c->sc_pool[k];
			memcpy(&c->sc_pool[k], buf, sizeof(void *));
			free(buf);
		}
	}
	c->sc_pool_bytes = 0;
}

static void slot_put(struct svsp_req *rq)
{
	struct svsp_chan *ch = rq->rq_chan;
	struct svsp_ctrl *c = ch->sv_ctrl;

	if (rq->rq_buf != NULL) {
		c->sc_bytes_inflight -= rq->rq_buflen;
		pool_put(c, rq->rq_buf, rq->rq_buf_cls);
		rq->rq_buf = NULL;
	}
	if (rq->rq_direct) {
		c->sc_bytes_inflight -= rq->rq_buflen;
		ch->sv_direct_io--;
		rq->rq_direct = false;
	}
	free(rq->rq_ext);
	rq->rq_ext = NULL;
	if (rq->rq_lun != NULL) {
		lun_put(rq->rq_lun);
		rq->rq_lun = NULL;
	}
	rq->rq_stage = RQ_FREE;
	rq->rq_next = ch->sv_free;
	ch->sv_free = rq;
	if (--ch->sv_busy == 0 && ch->sv_ch == NULL)
		chan_free(ch); /* closed and drained */
}

static bool buf_alloc(struct svsp_req *rq, uint64_t len)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;
	int cls = pool_class(len);

	rq->rq_buf = pool_get(c, cls, len);
	if (rq->rq_buf == NULL)
		return false;
	rq->rq_buf_cls = cls;
	rq->rq_buflen = len;
	c->sc_bytes_inflight += len;
	return true;
}

/*
 * Direct I/O: when the first len bytes of a GPA-direct buffer lie on
 * consecutive guest pages, the back end reads into / writes from guest RAM
 * itself, with no bounce buffer and no copy. Only the private copy of the
 * packet's range list is read (validated by hvs_chan_recv: byte_offset <
 * 4096, enough PFNs); every PFN is checked here and the whole span
 * against guest RAM by hvs_gpa_map. The start must be 512-aligned (the
 * O_DIRECT rule; guests hand page-aligned buffers). The data itself is
 * the guest's to change at any time: nothing here reads it. NULL: use a
 * bounce buffer.
 */
static void *guest_span(struct svsp_req *rq, const struct hvs_pkt *pk,
			uint64_t len)
{
	struct svsp_chan *ch = rq->rq_chan;
	const uint8_t *r = pk->pk_ranges;

	if (pk->pk_type != VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT ||
	    pk->pk_range_cnt == 0 || len == 0 || len > UINT32_MAX)
		return NULL;
	uint32_t bc = hv_get_le32(r + VMBUS_GPA_RANGE_BYTE_COUNT);
	uint32_t bo = hv_get_le32(r + VMBUS_GPA_RANGE_BYTE_OFFSET);
	if (bc < len || bo >= HV_PAGE_SIZE || (bo & 511u) != 0 ||
	    pk->pk_ranges_len < VMBUS_GPA_RANGE_SIZE(VMBUS_GPA_RANGE_PFNS(bo, len)))
		return NULL;
	uint64_t npfn = VMBUS_GPA_RANGE_PFNS(bo, len);
	uint64_t pfn0 = hv_get_le64(r + VMBUS_GPA_RANGE_PFN(0));
	if (pfn0 == 0 || pfn0 >= (UINT64_MAX >> HV_PAGE_SHIFT) - npfn)
		return NULL;
	for (uint64_t i = 1; i < npfn; i++)
		if (hv_get_le64(r + VMBUS_GPA_RANGE_PFN(i)) != pfn0 + i)
			return NULL;
	uint8_t *va = hvs_gpa_map(hvs_chan_partition(ch->sv_ch),
				  (pfn0 << HV_PAGE_SHIFT) + bo, len);
	if (va == NULL || ((uintptr_t)va & 511u) != 0)
		return NULL; /* not RAM: the bounce path reports the fault */
	return va;
}

/* Take guest memory for rq's medium I/O (see guest_span). */
static void *direct_take(struct svsp_req *rq, const struct hvs_pkt *pk,
			 uint64_t len)
{
	struct svsp_chan *ch = rq->rq_chan;
	struct svsp_ctrl *c = ch->sv_ctrl;
	void *va = guest_span(rq, pk, len);

	if (va == NULL)
		return NULL;
	rq->rq_direct = true;
	rq->rq_buflen = len;
	c->sc_bytes_inflight += len;
	ch->sv_direct_io++;
	STAT(c, direct_ios);
	return va;
}

/* ---- sending ---------------------------------------------------------------- */

static int send_resp(struct svsp_req *rq)
{
	struct svsp_chan *ch = rq->rq_chan;
	int r = hvs_chan_send(ch->sv_ch, VMBUS_PACKET_TYPE_COMP, 0, rq->rq_tid,
			      &rq->rq_resp, rq->rq_resp_len);
	if (r == 0)
		STAT(ch->sv_ctrl, completions);
	return r;
}

/* The completion is built: send it, or park it until the ring has room. */
static void finish(struct svsp_req *rq)
{
	struct svsp_chan *ch = rq->rq_chan;

	rq->rq_stage = RQ_DONE;
	if (ch->sv_ch == NULL) {
		slot_put(rq); /* channel gone: nobody to tell */
		return;
	}
	if (ch->sv_sendq == NULL && send_resp(rq) != -VMBUS_EAGAIN) {
		slot_put(rq); /* sent, or the channel broke (logged) */
		return;
	}
	STAT(ch->sv_ctrl, send_waits);
	rq->rq_next = NULL;
	if (ch->sv_sendq_tail != NULL)
		ch->sv_sendq_tail->rq_next = rq;
	else
		ch->sv_sendq = rq;
	ch->sv_sendq_tail = rq;
}

/* Send parked completions. false: the ring is still full. */
static bool flush_sendq(struct svsp_chan *ch)
{
	while (ch->sv_sendq != NULL) {
		struct svsp_req *rq = ch->sv_sendq;
		if (send_resp(rq) == -VMBUS_EAGAIN)
			return false;
		ch->sv_sendq = rq->rq_next;
		if (ch->sv_sendq == NULL)
			ch->sv_sendq_tail = NULL;
		slot_put(rq);
	}
	return true;
}

/* A completion with only a packet status (non-SRB operations). */
static void complete_status(struct svsp_req *rq, uint32_t status)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;

	memset(&rq->rq_resp, 0, sizeof(rq->rq_resp));
	rq->rq_resp.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_COMPLETE_IO);
	rq->rq_resp.vp_status = hv_cpu_to_le32(status);
	rq->rq_resp_len = resp_size(c);
	finish(rq);
}

/* An SRB completion (spec 3.4, 3.6, 3.8). */
static void srb_complete(struct svsp_req *rq, uint8_t srb_status,
			 uint8_t scsi_status, uint32_t xfer,
			 const uint8_t *sense, uint32_t sense_len, uint32_t status)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;
	const struct vmscsi_request *q = &rq->rq_vp.vp_srb;
	struct vmscsi_request *s = &rq->rq_resp.vp_srb;
	uint32_t max_sense = VSTOR_SENSE_BUFFER_SIZE_FOR(c->sc_version);

	memset(&rq->rq_resp, 0, sizeof(rq->rq_resp));
	rq->rq_resp.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_COMPLETE_IO);
	rq->rq_resp.vp_status = hv_cpu_to_le32(status);
	/* echo the addressing and the WIN8 fields; results over them */
	*s = *q;
	memset(s->vr_sense_data, 0, sizeof(s->vr_sense_data));
	s->vr_length = hv_cpu_to_le16((uint16_t)srb_size(c));
	if (sense_len > q->vr_sense_info_length)
		sense_len = q->vr_sense_info_length;
	if (sense_len > max_sense)
		sense_len = max_sense;
	if (c->sc_version >= VMSTOR_PROTO_VERSION_WIN8 &&
	    (hv_le32(q->vr_srb_flags) & SRB_FLAGS_DISABLE_AUTOSENSE))
		sense_len = 0;
	if (sense != NULL && sense_len > 0) {
		memcpy(s->vr_sense_data, sense, sense_len);
		srb_status |= SRB_STATUS_AUTOSENSE_VALID;
	} else {
		sense_len = 0;
	}
	s->vr_srb_status = srb_status;
	s->vr_scsi_status = scsi_status;
	s->vr_sense_info_length = (uint8_t)sense_len;
	s->vr_data_transfer_length = hv_cpu_to_le32(xfer);
	rq->rq_resp_len = resp_size(c);
	finish(rq);
}

static void srb_fail(struct svsp_req *rq, uint8_t srb_status, uint32_t status)
{
	srb_complete(rq, srb_status, SCSI_STATUS_GOOD, 0, NULL, 0, status);
}

/* Finish an SRB from the SCSI target's result. */
static void srb_done(struct svsp_req *rq)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;
	const struct hvs_scsi_result *sr = &rq->rq_sr;

	if (sr->sr_status == SCSI_STATUS_GOOD) {
		srb_complete(rq, SRB_STATUS_SUCCESS, SCSI_STATUS_GOOD, rq->rq_xfer,
			     NULL, 0, VSTOR_STATUS_SUCCESS);
		return;
	}
	STAT(c, checks);
	srb_complete(rq, SRB_STATUS_ERROR, sr->sr_status, 0, sr->sr_sense,
		     sr->sr_sense_len, VSTOR_STATUS_IO_DEVICE_ERROR);
}

/* The guest's buffer was not (all) guest RAM. */
static void gpa_fault(struct svsp_req *rq, int r)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;

	GUEST_ERR(c, gpa_faults, "storvsp %s: SRB buffer unusable (%d)",
		  c->sc_name, r);
	srb_fail(rq, SRB_STATUS_ERROR, VSTOR_STATUS_INVALID_PARAMETER);
}

/* ---- notifications (host -> guest, id 0) ----------------------------------- */

static void send_notifications(struct svsp_ctrl *c)
{
	struct svsp_chan *ch = c->sc_chans[0];
	struct vstor_packet p;

	if (ch == NULL || ch->sv_ch == NULL || c->sc_state != SV_READY) {
		c->sc_notify_remove = c->sc_notify_enum = false;
		return; /* the guest scans the bus when it initialises */
	}
	if (ch->sv_sendq != NULL)
		return; /* after the parked completions */
	for (int i = 0; i < 2; i++) {
		bool *flag = i == 0 ? &c->sc_notify_remove : &c->sc_notify_enum;
		if (!*flag)
			continue;
		memset(&p, 0, sizeof(p));
		p.vp_operation = hv_cpu_to_le32(i == 0 ? VSTOR_OPERATION_REMOVE_DEVICE
							: VSTOR_OPERATION_ENUMERATE_BUS);
		int r = hvs_chan_send(ch->sv_ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
				      VSTOR_TRANS_ID_UNSOLICITED, &p, resp_size(c));
		if (r == -VMBUS_EAGAIN)
			return; /* retried when the guest signals */
		*flag = false;
		if (r == 0)
			STAT(c, notifications);
	}
}

/* ---- disk I/O ---------------------------------------------------------------- */

/* Back-end thread: hand the slot to the loop. */
static void io_done(struct hvs_disk_req *dr)
{
	struct svsp_req *rq = dr->dr_arg;
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;
	uint64_t one = 1;

	bool was_empty;

	pthread_mutex_lock(&c->sc_cq_lock);
	rq->rq_next = NULL;
	was_empty = c->sc_cq_tail == NULL;
	if (!was_empty)
		c->sc_cq_tail->rq_next = rq;
	else
		c->sc_cq_head = rq;
	c->sc_cq_tail = rq;
	pthread_mutex_unlock(&c->sc_cq_lock);
	/* NOTE: one wakeup per batch: the loop reads the eventfd before it
	 * takes the whole list, so a list that was not empty already has a
	 * wakeup coming that will find this request too. */
	if (!was_empty)
		return;
	ssize_t w = write(c->sc_cq_fd, &one, sizeof(one));
	(void)w; /* EAGAIN only at counter overflow: a wakeup is pending */
}

static void submit(struct svsp_req *rq, enum hvs_disk_op op, uint64_t off,
		   uint64_t len, void *buf)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;
	struct hvs_disk_req *dr = &rq->rq_dr;

	memset(dr, 0, sizeof(*dr));
	dr->dr_op = op;
	dr->dr_off = off;
	dr->dr_len = len;
	dr->dr_buf = buf;
	dr->dr_done = io_done;
	dr->dr_arg = rq;
	int r = hvs_disk_submit(rq->rq_lun->lu_disk, dr);
	if (r != 0) {
		STAT(c, io_errors);
		hvs_scsi_sense_errno(&rq->rq_sr, r, op == HVS_DISK_READ);
		srb_done(rq);
		return;
	}
	c->sc_inflight++;
}

/* Loop thread: one back-end completion. */
static void io_complete(struct svsp_req *rq)
{
	struct svsp_chan *ch = rq->rq_chan;
	struct svsp_ctrl *c = ch->sv_ctrl;
	struct hvs_disk_req *dr = &rq->rq_dr;
	int r;

	c->sc_inflight--;
	if (ch->sv_ch == NULL) {
		slot_put(rq); /* orphaned by a close: drop it */
		return;
	}
	if (dr->dr_result != 0) {
		STAT(c, io_errors);
		rq->rq_xfer = 0;
		hvs_scsi_sense_errno(&rq->rq_sr, dr->dr_result,
				     dr->dr_op == HVS_DISK_READ);
		srb_done(rq);
		return;
	}
	switch (dr->dr_op) {
	case HVS_DISK_READ:
		if (!rq->rq_direct) {
			r = hvs_pkt_gpa_write(ch->sv_ch, &rq->rq_pk, 0,
					      rq->rq_buf, rq->rq_xfer);
			if (r != 0) {
				gpa_fault(rq, r);
				return;
			}
		}
		STAT_ADD(c, bytes_read, rq->rq_xfer);
		break;
	case HVS_DISK_WRITE:
		STAT_ADD(c, bytes_written, dr->dr_len);
		if (rq->rq_sr.sr_fua && rq->rq_stage == RQ_IO) {
			rq->rq_stage = RQ_FUA_FLUSH;
			submit(rq, HVS_DISK_FLUSH, 0, 0, NULL);
			return;
		}
		break;
	case HVS_DISK_DISCARD:
		if (rq->rq_next_ext < rq->rq_n_ext) {
			const struct hvs_scsi_extent *e = &rq->rq_ext[rq->rq_next_ext++];
			submit(rq, HVS_DISK_DISCARD, e->se_offset, e->se_bytes, NULL);
			return;
		}
		break;
	case HVS_DISK_FLUSH:
		break;
	}
	hvs_scsi_good(&rq->rq_sr);
	srb_done(rq);
}

static void drain(struct svsp_chan *ch);

static void kick(struct svsp_chan *ch)
{
	if (ch == NULL || ch->sv_ch == NULL || ch->sv_draining)
		return;
	if (!flush_sendq(ch))
		return; /* the guest signals when it has read */
	if (ch->sv_sub == 0)
		send_notifications(ch->sv_ctrl);
	drain(ch);
}

static void process_cq(struct svsp_ctrl *c)
{
	struct svsp_req *rq;

	pthread_mutex_lock(&c->sc_cq_lock);
	rq = c->sc_cq_head;
	c->sc_cq_head = c->sc_cq_tail = NULL;
	pthread_mutex_unlock(&c->sc_cq_lock);
	while (rq != NULL) {
		struct svsp_req *next = rq->rq_next;
		io_complete(rq);
		rq = next;
	}
}

/* Wait (at most 100 ms) for back-end completions and process them; for
 * teardown only. Channels get their kick from a later cq_ready. */
static void cq_wait(struct svsp_ctrl *c)
{
	struct pollfd pfd = { .fd = c->sc_cq_fd, .events = POLLIN };
	uint64_t v;

	(void)poll(&pfd, 1, 100);
	while (read(c->sc_cq_fd, &v, sizeof(v)) > 0)
		;
	process_cq(c);
}

static void cq_ready(void *arg, int fd, uint32_t events)
{
	struct svsp_ctrl *c = arg;
	uint64_t v;

	(void)events;
	while (read(fd, &v, sizeof(v)) > 0)
		;
	/* One doorbell per channel for everything this wake-up completes. */
	for (unsigned i = 0; i <= HVS_STORVSP_MAX_SUBCHANNELS; i++)
		if (c->sc_chans[i] != NULL)
			hvs_chan_batch_begin(c->sc_chans[i]->sv_ch);
	process_cq(c);
	/* freed slots and buffer budget: every channel may take more */
	for (unsigned i = 0; i <= HVS_STORVSP_MAX_SUBCHANNELS; i++)
		kick(c->sc_chans[i]);
	for (unsigned i = 0; i <= HVS_STORVSP_MAX_SUBCHANNELS; i++)
		if (c->sc_chans[i] != NULL)
			hvs_chan_batch_end(c->sc_chans[i]->sv_ch);
}

/* ---- EXECUTE_SRB -------------------------------------------------------------- */

static void bad_srb(struct svsp_req *rq, uint8_t srb_status, const char *why,
		    unsigned long long a, unsigned long long b)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;

	GUEST_ERR(c, bad_srbs, "storvsp %s: SRB refused: %s (%llu, %llu)",
		  c->sc_name, why, a, b);
	srb_fail(rq, srb_status, VSTOR_STATUS_INVALID_PARAMETER);
}

/* Keep the packet: its buffer description outlives the receive buffer. */
static bool keep_packet(struct svsp_req *rq, const struct hvs_pkt *pk)
{
	if (pk->pk_type != VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT)
		return true;
	if (pk->pk_len > rq->rq_chan->sv_pkcap)
		return false;
	memcpy(rq->rq_pkbuf, pk->pk_raw, pk->pk_len);
	rq->rq_pk = *pk;
	rq->rq_pk.pk_raw = rq->rq_pkbuf;
	rq->rq_pk.pk_data = rq->rq_pkbuf + (pk->pk_data - pk->pk_raw);
	rq->rq_pk.pk_ranges = rq->rq_pkbuf + (pk->pk_ranges - pk->pk_raw);
	rq->rq_has_pk = true;
	return true;
}

static void execute_srb(struct svsp_chan *ch, struct svsp_req *rq,
			const struct hvs_pkt *pk)
{
	struct svsp_ctrl *c = ch->sv_ctrl;
	const struct vmscsi_request *s = &rq->rq_vp.vp_srb;
	struct hvs_scsi_result *sr = &rq->rq_sr;
	bool gpa = pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT;
	uint8_t resp[HVS_SCSI_RESP_MAX];
	uint8_t cdb[VSTOR_CDB_SIZE];
	uint8_t luns[HVS_DISK_MAX_LUNS];
	unsigned nluns = 0;
	void *gbuf;
	int r;

	STAT(c, srbs);
	if (c->sc_state != SV_READY) {
		GUEST_ERR(c, bad_packets, "storvsp %s: EXECUTE_SRB before "
			  "END_INITIALIZATION", c->sc_name);
		srb_fail(rq, SRB_STATUS_INVALID_REQUEST,
			 VSTOR_STATUS_INVALID_DEVICE_STATE);
		return;
	}
	if (rq->rq_req_len < VSTOR_HEADER_SIZE + srb_size(c)) {
		bad_srb(rq, SRB_STATUS_INVALID_REQUEST, "packet shorter than the "
			"version's SRB", rq->rq_req_len, VSTOR_HEADER_SIZE + srb_size(c));
		return;
	}
	if (hv_le16(s->vr_length) != srb_size(c) || s->vr_reserved != 0 ||
	    (c->sc_version >= VMSTOR_PROTO_VERSION_WIN8 && s->vr_reserve != 0))
		GUEST_ERR(c, rsvd_nonzero, "storvsp %s: SRB length %u or reserved "
			  "fields unexpected (accepted)", c->sc_name,
			  hv_le16(s->vr_length));
	uint32_t dtl = hv_le32(s->vr_data_transfer_length);
	if (s->vr_cdb_length == 0 || s->vr_cdb_length > VSTOR_CDB_SIZE) {
		bad_srb(rq, SRB_STATUS_INVALID_REQUEST, "cdb_length",
			s->vr_cdb_length, VSTOR_CDB_SIZE);
		return;
	}
	if (s->vr_data_in > VSTOR_DATA_UNKNOWN) {
		bad_srb(rq, SRB_STATUS_INVALID_REQUEST, "data_in", s->vr_data_in, 2);
		return;
	}
	if (gpa ? dtl > pk->pk_gpa_bytes : dtl != 0) {
		bad_srb(rq, SRB_STATUS_INVALID_REQUEST, "data_transfer_length "
			"beyond the described buffer", dtl,
			gpa ? pk->pk_gpa_bytes : 0);
		return;
	}
	if (dtl > c->sc_cfg.sc_max_transfer) {
		bad_srb(rq, SRB_STATUS_INVALID_REQUEST, "data_transfer_length "
			"above max_transfer_bytes", dtl, c->sc_cfg.sc_max_transfer);
		return;
	}
	if (!keep_packet(rq, pk)) {
		bad_srb(rq, SRB_STATUS_INVALID_REQUEST, "GPA range list too long",
			pk->pk_len, ch->sv_pkcap);
		return;
	}
	/* Topology: path 0, target 0, LUNs 0..63. Elsewhere nothing answers
	 * (INVALID_LUN: guests drop the address, no error recovery). */
	struct svsp_lun *lun = NULL;
	if (s->vr_path_id != 0 || s->vr_target_id != 0 ||
	    s->vr_lun >= HVS_DISK_MAX_LUNS) {
		srb_fail(rq, SRB_STATUS_INVALID_LUN, VSTOR_STATUS_NO_SUCH_DEVICE);
		return;
	}
	lun = c->sc_luns[s->vr_lun];
	memcpy(cdb, s->vr_cdb, sizeof(cdb));
	if (lun == NULL && cdb[0] != SCSI_INQUIRY && cdb[0] != SCSI_REPORT_LUNS &&
	    cdb[0] != SCSI_REQUEST_SENSE) {
		srb_fail(rq, SRB_STATUS_INVALID_LUN, VSTOR_STATUS_NO_SUCH_DEVICE);
		return;
	}
	for (unsigned i = 0; i < HVS_DISK_MAX_LUNS; i++)
		if (c->sc_luns[i] != NULL)
			luns[nluns++] = (uint8_t)i;

	struct hvs_scsi_cmd cmd = {
		.sc_cdb = cdb, .sc_cdb_len = s->vr_cdb_length,
		.sc_xfer_len = dtl, .sc_lu = lun ? &lun->lu_scsi : NULL,
		.sc_luns = luns, .sc_nluns = nluns,
	};
	hvs_scsi_execute(&cmd, resp, sizeof(resp), sr);
	if (sr->sr_status != SCSI_STATUS_GOOD) {
		srb_done(rq);
		return;
	}
	if (sr->sr_xfer > 0) {
		uint8_t want = sr->sr_dir == HVS_SCSI_DIR_IN ? VSTOR_DATA_READ
							     : VSTOR_DATA_WRITE;
		if (s->vr_data_in != want) {
			bad_srb(rq, SRB_STATUS_INVALID_REQUEST, "data_in does not "
				"match the command", s->vr_data_in, want);
			return;
		}
	}
	rq->rq_xfer = sr->sr_xfer;
	if (sr->sr_action == HVS_SCSI_COMPLETE) {
		if (sr->sr_xfer > 0 &&
		    (r = hvs_pkt_gpa_write(ch->sv_ch, pk, 0, resp, sr->sr_xfer)) != 0) {
			gpa_fault(rq, r);
			return;
		}
		srb_done(rq);
		return;
	}

	/* medium I/O: the LUN stays referenced until the slot is freed */
	rq->rq_lun = lun;
	lun->lu_refs++;
	switch (sr->sr_action) {
	case HVS_SCSI_READ:
		if (sr->sr_bytes == sr->sr_xfer &&
		    (gbuf = direct_take(rq, pk, sr->sr_bytes)) != NULL) {
			submit(rq, HVS_DISK_READ, sr->sr_offset, sr->sr_bytes, gbuf);
			return;
		}
		if (!buf_alloc(rq, sr->sr_bytes))
			goto nomem;
		submit(rq, HVS_DISK_READ, sr->sr_offset, sr->sr_bytes, rq->rq_buf);
		return;
	case HVS_SCSI_WRITE:
		if (sr->sr_bytes == sr->sr_xfer &&
		    (gbuf = direct_take(rq, pk, sr->sr_bytes)) != NULL) {
			submit(rq, HVS_DISK_WRITE, sr->sr_offset, sr->sr_bytes, gbuf);
			return;
		}
		if (!buf_alloc(rq, sr->sr_bytes))
			goto nomem;
		r = hvs_pkt_gpa_read(ch->sv_ch, pk, 0, rq->rq_buf,
				     (uint32_t)sr->sr_bytes);
		if (r != 0) {
			gpa_fault(rq, r);
			return;
		}
		submit(rq, HVS_DISK_WRITE, sr->sr_offset, sr->sr_bytes, rq->rq_buf);
		return;
	case HVS_SCSI_FLUSH:
		submit(rq, HVS_DISK_FLUSH, 0, 0, NULL);
		return;
	case HVS_SCSI_UNMAP: {
		uint8_t plist[8 + 16 * (MAX_UNMAP_DESC + 1)];
		if (sr->sr_xfer > sizeof(plist))
			goto nomem; /* the target clamps it below this */
		r = hvs_pkt_gpa_read(ch->sv_ch, pk, 0, plist, sr->sr_xfer);
		if (r != 0) {
			gpa_fault(rq, r);
			return;
		}
		rq->rq_ext = calloc(MAX_UNMAP_DESC, sizeof(*rq->rq_ext));
		if (rq->rq_ext == NULL)
			goto nomem;
		int n = hvs_scsi_unmap_params(&lun->lu_scsi, plist, sr->sr_xfer,
					      rq->rq_ext, MAX_UNMAP_DESC, sr);
		rq->rq_xfer = sr->sr_xfer;
		if (n <= 0) {
			if (n == 0)
				hvs_scsi_good(sr);
			srb_done(rq);
			return;
		}
		rq->rq_n_ext = (unsigned)n;
		rq->rq_next_ext = 1;
		submit(rq, HVS_DISK_DISCARD, rq->rq_ext[0].se_offset,
		       rq->rq_ext[0].se_bytes, NULL);
		return;
	}
	case HVS_SCSI_WRITE_SAME: {
		uint8_t blk[4096];
		bool have = sr->sr_xfer > 0;
		if (have) {
			if (sr->sr_xfer > sizeof(blk))
				goto nomem;
			r = hvs_pkt_gpa_read(ch->sv_ch, pk, 0, blk, sr->sr_xfer);
			if (r != 0) {
				gpa_fault(rq, r);
				return;
			}
		}
		hvs_scsi_write_same(&lun->lu_scsi, have ? blk : NULL, sr);
		if (sr->sr_action == HVS_SCSI_DISCARD) {
			submit(rq, HVS_DISK_DISCARD, sr->sr_offset, sr->sr_bytes, NULL);
			return;
		}
		if (!buf_alloc(rq, sr->sr_bytes))
			goto nomem;
		hvs_scsi_fill_pattern(rq->rq_buf, sr->sr_bytes, have ? blk : NULL,
				      lun->lu_scsi.lu_block_size);
		sr->sr_fua = false;
		submit(rq, HVS_DISK_WRITE, sr->sr_offset, sr->sr_bytes, rq->rq_buf);
		return;
	}
	default:
		break;
	}
nomem:
	hvs_scsi_sense_errno(sr, -ENOMEM, sr->sr_action == HVS_SCSI_READ);
	srb_done(rq);
}

/* ---- one VSTOR packet ------------------------------------------------------- */

static bool version_ok(const struct svsp_ctrl *c, uint16_t v)
{
	for (size_t i = 0; i < sizeof(vstor_versions) / sizeof(vstor_versions[0]); i++)
		if (vstor_versions[i] == v)
			return v <= c->sc_cfg.sc_max_version;
	return false;
}

static void bad_state(struct svsp_req *rq, const char *op)
{
	struct svsp_ctrl *c = rq->rq_chan->sv_ctrl;

	GUEST_ERR(c, bad_packets, "storvsp %s: %s out of order (state %d, "
		  "channel %u)", c->sc_name, op, c->sc_state, rq->rq_chan->sv_sub);
	complete_status(rq, VSTOR_STATUS_INVALID_DEVICE_STATE);
}

static void offer_subchannels(struct svsp_ctrl *c, uint16_t n)
{
	for (uint16_t i = (uint16_t)(c->sc_subs_offered + 1); i <= n; i++) {
		int r = hvs_vmbus_offer_subchannel(c->sc_srv, c->sc_relid, i);
		if (r < 0 && r != -VMBUS_EEXIST) {
			HVS_WARN(vm_of(c), "storvsp %s: subchannel %u not offered: %d",
				 c->sc_name, i, r);
			return;
		}
		c->sc_subs_offered = i;
	}
}

static void handle(struct svsp_chan *ch, const struct hvs_pkt *pk)
{
	struct svsp_ctrl *c = ch->sv_ctrl;
	struct svsp_req *rq;
	uint32_t len = pk->pk_datalen;

	STAT(c, requests);
	if (pk->pk_type != VMBUS_PACKET_TYPE_DATA_INBAND &&
	    pk->pk_type != VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
		/* nothing of ours asks the guest for completions */
		GUEST_ERR(c, bad_packets, "storvsp %s: packet type %u ignored",
			  c->sc_name, pk->pk_type);
		return;
	}
	rq = slot_get(ch);
	rq->rq_tid = pk->pk_trans_id;
	memset(&rq->rq_vp, 0, sizeof(rq->rq_vp));
	rq->rq_req_len = len < sizeof(rq->rq_vp) ? len : (uint32_t)sizeof(rq->rq_vp);
	memcpy(&rq->rq_vp, pk->pk_data, rq->rq_req_len);
	if (len < VSTOR_HEADER_SIZE || len > VSTOR_PACKET_SIZE) {
		GUEST_ERR(c, bad_packets, "storvsp %s: VSTOR packet of %u bytes "
			  "(12..64)", c->sc_name, len);
		complete_status(rq, VSTOR_STATUS_INVALID_PARAMETER);
		return;
	}
	uint32_t op = hv_le32(rq->rq_vp.vp_operation);
	if (hv_le32(rq->rq_vp.vp_flags) & ~VSTOR_FLAG_REQUEST_COMPLETION)
		GUEST_ERR(c, rsvd_nonzero, "storvsp %s: unknown VSTOR flags 0x%x "
			  "(accepted)", c->sc_name, hv_le32(rq->rq_vp.vp_flags));
	if (pk->pk_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT &&
	    op != VSTOR_OPERATION_EXECUTE_SRB) {
		GUEST_ERR(c, bad_packets, "storvsp %s: GPA-direct operation %u",
			  c->sc_name, op);
		complete_status(rq, VSTOR_STATUS_INVALID_PARAMETER);
		return;
	}
	bool primary = ch->sv_sub == 0;

	switch (op) {
	case VSTOR_OPERATION_EXECUTE_SRB:
		execute_srb(ch, rq, pk);
		return;
	case VSTOR_OPERATION_BEGIN_INITIALIZATION:
		if (!primary) {
			bad_state(rq, "BEGIN_INITIALIZATION");
			return;
		}
		c->sc_state = SV_BEGUN;
		c->sc_version = 0;
		complete_status(rq, VSTOR_STATUS_SUCCESS);
		return;
	case VSTOR_OPERATION_QUERY_PROTOCOL_VERSION: {
		if (!primary || c->sc_state == SV_WAIT_BEGIN || c->sc_state == SV_READY) {
			bad_state(rq, "QUERY_PROTOCOL_VERSION");
			return;
		}
		uint16_t v = hv_le16(rq->rq_vp.vp_version.vpv_major_minor);
		uint32_t st = VSTOR_STATUS_REVISION_MISMATCH;
		if (version_ok(c, v)) {
			c->sc_version = v;
			c->sc_state = SV_VERSIONED;
			st = VSTOR_STATUS_SUCCESS;
		}
		memset(&rq->rq_resp, 0, sizeof(rq->rq_resp));
		rq->rq_resp.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_COMPLETE_IO);
		rq->rq_resp.vp_status = hv_cpu_to_le32(st);
		rq->rq_resp.vp_version.vpv_major_minor = hv_cpu_to_le16(v); /* echo */
		rq->rq_resp.vp_version.vpv_revision = rq->rq_vp.vp_version.vpv_revision;
		rq->rq_resp_len = resp_size(c);
		finish(rq);
		return;
	}
	case VSTOR_OPERATION_QUERY_PROPERTIES: {
		if (!primary || c->sc_state < SV_VERSIONED) {
			bad_state(rq, "QUERY_PROPERTIES");
			return;
		}
		uint32_t subs = c->sc_version >= VMSTOR_PROTO_VERSION_WIN8 ?
					subchannels_of(&c->sc_cfg) : 0;
		memset(&rq->rq_resp, 0, sizeof(rq->rq_resp));
		rq->rq_resp.vp_operation = hv_cpu_to_le32(VSTOR_OPERATION_COMPLETE_IO);
		struct vmstor_channel_properties *p = &rq->rq_resp.vp_properties;
		p->vcp_max_channel_cnt = hv_cpu_to_le16((uint16_t)subs);
		p->vcp_flags = hv_cpu_to_le32(subs ? VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL : 0);
		p->vcp_max_transfer_bytes = hv_cpu_to_le32(c->sc_cfg.sc_max_transfer);
		rq->rq_resp_len = resp_size(c);
		finish(rq);
		return;
	}
	case VSTOR_OPERATION_END_INITIALIZATION:
		if (!primary || c->sc_state != SV_VERSIONED) {
			bad_state(rq, "END_INITIALIZATION");
			return;
		}
		c->sc_state = SV_READY;
		complete_status(rq, VSTOR_STATUS_SUCCESS);
		return;
	case VSTOR_OPERATION_CREATE_SUB_CHANNELS: {
		uint16_t n = hv_le16(rq->rq_vp.vp_subchannel.vsc_sub_channel_count);
		if (!primary || c->sc_state < SV_VERSIONED ||
		    c->sc_version < VMSTOR_PROTO_VERSION_WIN8) {
			bad_state(rq, "CREATE_SUB_CHANNELS");
			return;
		}
		if (n == 0 || n > subchannels_of(&c->sc_cfg)) {
			GUEST_ERR(c, bad_packets, "storvsp %s: %u subchannels asked, "
				  "%u offered", c->sc_name, n,
				  subchannels_of(&c->sc_cfg));
			complete_status(rq, VSTOR_STATUS_INVALID_PARAMETER);
			return;
		}
		/* NOTE: answer first; the guest waits for the reply, then
		 * for the offers (spec 3.5 step 6). */
		complete_status(rq, VSTOR_STATUS_SUCCESS);
		offer_subchannels(c, n);
		return;
	}
	case VSTOR_OPERATION_RESET_LUN:
	case VSTOR_OPERATION_RESET_ADAPTER:
	case VSTOR_OPERATION_RESET_BUS:
		/* Requests are never lost here; nothing to abort (as V). */
		complete_status(rq, VSTOR_STATUS_SUCCESS);
		return;
	default:
		GUEST_ERR(c, bad_packets, "storvsp %s: operation %u not supported",
			  c->sc_name, op);
		complete_status(rq, VSTOR_STATUS_INVALID_DEVICE_REQUEST);
		return;
	}
}

/* ---- channel callbacks ------------------------------------------------------ */

static bool can_take(const struct svsp_chan *ch)
{
	const struct svsp_ctrl *c = ch->sv_ctrl;

	return ch->sv_free != NULL && ch->sv_sendq == NULL &&
	       c->sc_bytes_inflight + c->sc_cfg.sc_max_transfer <=
		       c->sc_cfg.sc_max_inflight;
}

static void drain(struct svsp_chan *ch)
{
	struct hvs_channel *vc = ch->sv_ch;
	struct hvs_pkt pk;
	int r = 0;

	ch->sv_draining = true;
	for (;;) {
		hvs_chan_mask(vc);
		while (can_take(ch)) {
			r = hvs_chan_recv(vc, &pk, ch->sv_rx, ch->sv_rxlen, NULL);
			if (r != 0)
				break;
			handle(ch, &pk);
		}
		hvs_chan_recv_done(vc);
		if (!can_take(ch))
			break; /* resumed by a completion or a guest signal;
				  incoming stays masked meanwhile */
		if (r == -VMBUS_ENOBUFS)
			hvs_chan_set_broken(vc, "storvsp: packet above the ring's maximum");
		if (r != -VMBUS_EAGAIN)
			break; /* broken (logged) or closed */
		if (hvs_chan_unmask(vc) == 0)
			break;
	}
	ch->sv_draining = false;
}

static int sv_open(void *arg, struct hvs_channel *vc)
{
	struct svsp_ctrl *c = arg;
	uint16_t sub = hvs_chan_sub_index(vc);
	struct svsp_chan *ch;

	if (sub > HVS_STORVSP_MAX_SUBCHANNELS || c->sc_chans[sub] != NULL)
		return -VMBUS_EINVAL;
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return -VMBUS_ENOMEM;
	ch->sv_ctrl = c;
	ch->sv_ch = vc;
	ch->sv_sub = sub;
	ch->sv_rxlen = hvs_chan_in_max_packet(vc);
	ch->sv_nreq = c->sc_cfg.sc_queue_depth;
	/* a GPA-direct SRB of max_transfer: header, one range, its PFNs */
	ch->sv_pkcap = (uint32_t)VMBUS_PACKET_ROUNDUP(
		sizeof(struct vmbus_gpa_direct_hdr) + 8u +
		8u * (c->sc_cfg.sc_max_transfer / HV_PAGE_SIZE + 1u) +
		VSTOR_PACKET_SIZE);
	ch->sv_rx = malloc(ch->sv_rxlen ? ch->sv_rxlen : 8u);
	ch->sv_reqs = calloc(ch->sv_nreq, sizeof(*ch->sv_reqs));
	ch->sv_pkbufs = malloc((size_t)ch->sv_nreq * ch->sv_pkcap);
	if (ch->sv_rx == NULL || ch->sv_reqs == NULL || ch->sv_pkbufs == NULL) {
		chan_free(ch);
		return -VMBUS_ENOMEM;
	}
	for (unsigned i = ch->sv_nreq; i-- > 0;) {
		struct svsp_req *rq = &ch->sv_reqs[i];
		rq->rq_chan = ch;
		rq->rq_pkbuf = ch->sv_pkbufs + (size_t)i * ch->sv_pkcap;
		rq->rq_next = ch->sv_free;
		ch->sv_free = rq;
	}
	if (sub == 0) {
		/* a (re)opened primary starts the protocol over */
		c->sc_state = SV_WAIT_BEGIN;
		c->sc_version = 0;
		c->sc_subs_offered = 0;
		c->sc_notify_enum = c->sc_notify_remove = false;
	}
	c->sc_chans[sub] = ch;
	hvs_chan_set_priv(vc, ch);
	return 0;
}

static void sv_close(void *arg, struct hvs_channel *vc, int why)
{
	struct svsp_ctrl *c = arg;
	struct svsp_chan *ch = hvs_chan_priv(vc);

	(void)why;
	if (ch == NULL)
		return;
	hvs_chan_set_priv(vc, NULL);
	if (c->sc_chans[ch->sv_sub] == ch)
		c->sc_chans[ch->sv_sub] = NULL;
	if (ch->sv_sub == 0) {
		c->sc_state = SV_WAIT_BEGIN;
		c->sc_notify_enum = c->sc_notify_remove = false;
	}
	/* NOTE: forget the ring first; requests still at the back end are
	 * orphaned and freed when they come back (the rings are unmapped
	 * after we return). */
	ch->sv_ch = NULL;
	ch->sv_busy++; /* hold ch while the send queue is dropped */
	/* NOTE: first the completions parked for ring room: a finished
	 * direct read among them still counts in sv_direct_io until its
	 * slot goes back, and would keep the wait below going forever (the
	 * guest that never reads its ring; host_storvsp fuzzer). */
	while (ch->sv_sendq != NULL) {
		struct svsp_req *rq = ch->sv_sendq;
		ch->sv_sendq = rq->rq_next;
		slot_put(rq);
	}
	ch->sv_sendq_tail = NULL;
	/* NOTE: back-end I/O into guest RAM (direct_take) ends before we
	 * return: when the partition ends, its RAM is unmapped (and the
	 * addresses may be reused) right after the channels are closed.
	 * Bounded by the disk's latency; the other channels' completions
	 * processed meanwhile get their kick from the eventfd written below. */
	if (ch->sv_direct_io > 0) {
		uint64_t one = 1;
		while (ch->sv_direct_io > 0)
			cq_wait(c);
		ssize_t w = write(c->sc_cq_fd, &one, sizeof(one));
		(void)w;
	}
	if (--ch->sv_busy == 0)
		chan_free(ch);
}

static void sv_on_signal(void *arg, struct hvs_channel *vc)
{
	struct svsp_chan *ch = hvs_chan_priv(vc);

	(void)arg;
	kick(ch);
}

static void ctrl_free(struct svsp_ctrl *c)
{
	if (c->sc_st != NULL && c->sc_st->st_ctrl[c->sc_index] == c)
		c->sc_st->st_ctrl[c->sc_index] = NULL;
	hvs_loop_del_fd(c->sc_cq_watch);
	c->sc_cq_watch = NULL;
	/* every channel is closed by now: wait for orphaned I/O */
	while (c->sc_inflight > 0)
		cq_wait(c);
	for (unsigned i = 0; i <= HVS_STORVSP_MAX_SUBCHANNELS; i++) {
		struct svsp_chan *ch = c->sc_chans[i];
		if (ch != NULL) { /* not closed by the server: orphan it */
			ch->sv_ch = NULL;
			while (ch->sv_sendq != NULL) {
				struct svsp_req *rq = ch->sv_sendq;
				ch->sv_sendq = rq->rq_next;
				rq->rq_next = NULL;
				ch->sv_busy++;
				slot_put(rq);
				ch->sv_busy--;
			}
			chan_free(ch);
		}
	}
	for (unsigned i = 0; i < HVS_DISK_MAX_LUNS; i++)
		if (c->sc_luns[i] != NULL)
			lun_free(c->sc_luns[i]);
	pool_free_all(c);
	if (c->sc_cq_fd >= 0)
		close(c->sc_cq_fd);
	pthread_mutex_destroy(&c->sc_cq_lock);
	free(c);
}

static void sv_destroy(void *arg)
{
	ctrl_free(arg);
}

static const struct hvs_vsp_ops storvsp_ops = {
	.vo_open = sv_open,
	.vo_close = sv_close,
	.vo_on_signal = sv_on_signal,
	.vo_destroy = sv_destroy,
};

/* ---- the storage set ------------------------------------------------------- */

struct hvs_storage *hvs_storage_create(struct hvs_vmbus *srv,
				       struct hvs_loop *loop)
{
	struct hvs_storage *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->st_srv = srv;
	st->st_loop = loop;
	return st;
}

void hvs_storage_destroy(struct hvs_storage *st)
{
	if (st == NULL)
		return;
	for (unsigned i = 0; i < SVSP_MAX_CONTROLLERS; i++)
		if (st->st_ctrl[i] != NULL)
			st->st_ctrl[i]->sc_st = NULL; /* still owned by the server */
	free(st);
}

static int ctrl_get(struct hvs_storage *st, unsigned idx, struct svsp_ctrl **out,
		    char *err, size_t errlen)
{
	struct svsp_ctrl *c = st->st_ctrl[idx];
	static const struct hv_guid scsi_class = HV_GUID_STORVSC_INIT;
	struct hvs_device_opts opts;

	if (c != NULL) {
		*out = c;
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->sc_st = st;
	c->sc_index = idx;
	c->sc_srv = st->st_srv;
	c->sc_loop = st->st_loop;
	if (st->st_cfg_set[idx])
		c->sc_cfg = st->st_cfg[idx];
	normalize_cfg(&c->sc_cfg);
	snprintf(c->sc_name, sizeof(c->sc_name), "scsi%u", idx);
	pthread_mutex_init(&c->sc_cq_lock, NULL);
	c->sc_cq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->sc_cq_fd < 0)
		goto fail;
	c->sc_cq_watch = hvs_loop_add_fd(st->st_loop, c->sc_cq_fd, HVS_EV_IN,
					 cq_ready, c);
	if (c->sc_cq_watch == NULL)
		goto fail;
	memset(&opts, 0, sizeof(opts));
	opts.do_max_subchannels = subchannels_of(&c->sc_cfg);
	opts.do_name = c->sc_name;
	int r = hvs_vmbus_add_device(st->st_srv, &storvsp_ops, c, &scsi_class,
				     NULL, &opts);
	if (r < 0) {
		snprintf(err, errlen, "controller %u: VMBus device not added: %s",
			 idx, strerror(-r));
		hvs_loop_del_fd(c->sc_cq_watch);
		close(c->sc_cq_fd);
		pthread_mutex_destroy(&c->sc_cq_lock);
		free(c);
		return r;
	}
	c->sc_relid = (uint32_t)r;
	st->st_ctrl[idx] = c;
	*out = c;
	return 0;
fail:
	r = -errno;
	snprintf(err, errlen, "controller %u: %s", idx, strerror(-r));
	if (c->sc_cq_fd >= 0)
		close(c->sc_cq_fd);
	pthread_mutex_destroy(&c->sc_cq_lock);
	free(c);
	return r;
}

int hvs_storage_config_controller(struct hvs_storage *st, unsigned idx,
				  const struct hvs_storvsp_config *cfg,
				  bool create)
{
	char err[128];
	struct svsp_ctrl *c;

	if (idx >= SVSP_MAX_CONTROLLERS || cfg == NULL)
		return -EINVAL;
	if (cfg->sc_max_transfer != 0 &&
	    (cfg->sc_max_transfer % 4096u != 0 || cfg->sc_max_transfer < (64u << 10) ||
	     cfg->sc_max_transfer > (8u << 20)))
		return -EINVAL;
	if (st->st_ctrl[idx] != NULL)
		return -EEXIST;
	st->st_cfg[idx] = *cfg;
	st->st_cfg_set[idx] = true;
	return create ? ctrl_get(st, idx, &c, err, sizeof(err)) : 0;
}

int hvs_storage_add_disk(struct hvs_storage *st, const struct hvs_disk_spec *spec,
			 unsigned *ctrl_out, unsigned *lun_out, char *err,
			 size_t errlen)
{
	unsigned idx = spec->ds_controller == HVS_DISK_AUTO ? 0u
							    : (unsigned)spec->ds_controller;
	struct svsp_ctrl *c;
	struct svsp_lun *lun;
	int r;

	snprintf(err, errlen, "ok");
	if (idx >= SVSP_MAX_CONTROLLERS) {
		snprintf(err, errlen, "controller %u: at most %u", idx,
			 SVSP_MAX_CONTROLLERS);
		return -EINVAL;
	}
	r = ctrl_get(st, idx, &c, err, errlen);
	if (r != 0)
		return r;
	unsigned n = 0;
	if (spec->ds_lun == HVS_DISK_AUTO) {
		while (n < HVS_DISK_MAX_LUNS && c->sc_luns[n] != NULL)
			n++;
		if (n == HVS_DISK_MAX_LUNS) {
			snprintf(err, errlen, "controller %u has no free LUN", idx);
			return -ENOSPC;
		}
	} else {
		n = (unsigned)spec->ds_lun;
		if (n >= HVS_DISK_MAX_LUNS) {
			snprintf(err, errlen, "lun %u: at most %u", n, HVS_DISK_MAX_LUNS);
			return -EINVAL;
		}
		if (c->sc_luns[n] != NULL) {
			snprintf(err, errlen, "controller %u lun %u is taken", idx, n);
			return -EEXIST;
		}
	}
	lun = calloc(1, sizeof(*lun));
	if (lun == NULL)
		return -ENOMEM;
	r = hvs_disk_open(spec, &lun->lu_disk, err, errlen);
	if (r != 0) {
		free(lun);
		return r;
	}
	const struct hvs_disk_info *di = hvs_disk_get_info(lun->lu_disk);
	memcpy(lun->lu_serial, di->di_serial, sizeof(lun->lu_serial));
	lun->lu_num = (uint8_t)n;
	lun->lu_scsi.lu_nblocks = di->di_size / di->di_block_size;
	lun->lu_scsi.lu_block_size = di->di_block_size;
	lun->lu_scsi.lu_phys_block_size = di->di_phys_block;
	lun->lu_scsi.lu_ro = di->di_ro;
	lun->lu_scsi.lu_unmap = di->di_discard && !di->di_ro;
	lun->lu_scsi.lu_wce = true; /* completed writes need a flush */
	lun->lu_scsi.lu_max_xfer_blocks = c->sc_cfg.sc_max_transfer / di->di_block_size;
	lun->lu_scsi.lu_max_unmap_blocks = MAX_UNMAP_BLOCKS;
	lun->lu_scsi.lu_max_unmap_desc = MAX_UNMAP_DESC;
	lun->lu_scsi.lu_serial = lun->lu_serial;
	lun->lu_scsi.lu_id = di->di_id;
	c->sc_luns[n] = lun;
	HVS_INFO(vm_of(c), "storvsp %s: lun %u = %s (%llu bytes, %s%s)", c->sc_name,
		 n, di->di_path, (unsigned long long)di->di_size,
		 hvs_disk_backend_name(di->di_backend), di->di_ro ? ", ro" : "");
	if (c->sc_state == SV_READY) {
		c->sc_notify_enum = true;
		send_notifications(c);
	}
	if (ctrl_out != NULL)
		*ctrl_out = idx;
	if (lun_out != NULL)
		*lun_out = n;
	return 0;
}

int hvs_storage_remove_disk(struct hvs_storage *st, unsigned idx, unsigned n)
{
	struct svsp_ctrl *c;
	struct svsp_lun *lun;

	if (idx >= SVSP_MAX_CONTROLLERS || n >= HVS_DISK_MAX_LUNS ||
	    (c = st->st_ctrl[idx]) == NULL || (lun = c->sc_luns[n]) == NULL)
		return -ENOENT;
	c->sc_luns[n] = NULL;
	lun->lu_detached = true;
	HVS_INFO(vm_of(c), "storvsp %s: lun %u removed (%u requests in flight)",
		 c->sc_name, n, lun->lu_refs);
	if (lun->lu_refs == 0)
		lun_free(lun);
	if (c->sc_state == SV_READY) {
		c->sc_notify_remove = c->sc_notify_enum = true;
		send_notifications(c);
	}
	return 0;
}

struct hvs_disk *hvs_storage_disk(struct hvs_storage *st, unsigned idx,
				  unsigned n)
{
	if (idx >= SVSP_MAX_CONTROLLERS || n >= HVS_DISK_MAX_LUNS ||
	    st->st_ctrl[idx] == NULL || st->st_ctrl[idx]->sc_luns[n] == NULL)
		return NULL;
	return st->st_ctrl[idx]->sc_luns[n]->lu_disk;
}

int hvs_storage_get_stats(struct hvs_storage *st, unsigned idx,
			  struct hvs_storvsp_stats *o)
{
	struct svsp_ctrl *c;

	if (idx >= SVSP_MAX_CONTROLLERS || (c = st->st_ctrl[idx]) == NULL)
		return -ENOENT;
	memset(o, 0, sizeof(*o));
#define LD(f) atomic_load_explicit(&c->sc_stat.f, memory_order_relaxed)
	o->ss_requests = LD(requests);
	o->ss_srbs = LD(srbs);
	o->ss_completions = LD(completions);
	o->ss_bad_packets = LD(bad_packets);
	o->ss_bad_srbs = LD(bad_srbs);
	o->ss_gpa_faults = LD(gpa_faults);
	o->ss_rsvd_nonzero = LD(rsvd_nonzero);
	o->ss_check_conditions = LD(checks);
	o->ss_io_errors = LD(io_errors);
	o->ss_send_waits = LD(send_waits);
	o->ss_notifications = LD(notifications);
	o->ss_bytes_read = LD(bytes_read);
	o->ss_bytes_written = LD(bytes_written);
	o->ss_direct_ios = LD(direct_ios);
#undef LD
	o->ss_version = c->sc_state >= SV_VERSIONED ? c->sc_version : 0;
	for (unsigned i = 0; i <= HVS_STORVSP_MAX_SUBCHANNELS; i++)
		o->ss_channels += c->sc_chans[i] != NULL;
	o->ss_inflight = c->sc_inflight;
	return 0;
}

void hvs_storage_describe(struct hvs_storage *st, struct hvs_jw *w)
{
	hvs_jw_obj_begin(w, "storage");
	hvs_jw_arr_begin(w, "controllers");
	for (unsigned i = 0; i < SVSP_MAX_CONTROLLERS; i++) {
		struct svsp_ctrl *c = st->st_ctrl[i];
		struct hvs_storvsp_stats s;
		char ver[8];
		if (c == NULL)
			continue;
		hvs_storage_get_stats(st, i, &s);
		snprintf(ver, sizeof(ver), "%u.%u", VSTOR_VERSION_MAJOR(s.ss_version),
			 VSTOR_VERSION_MINOR(s.ss_version));
		hvs_jw_obj_begin(w, NULL);
		hvs_jw_uint(w, "controller", i);
		hvs_jw_uint(w, "relid", c->sc_relid);
		hvs_jw_str(w, "version", s.ss_version ? ver : "none");
		hvs_jw_uint(w, "channels", s.ss_channels);
		hvs_jw_uint(w, "inflight", s.ss_inflight);
		hvs_jw_uint(w, "srbs", s.ss_srbs);
		hvs_jw_uint(w, "bad_packets", s.ss_bad_packets);
		hvs_jw_uint(w, "bad_srbs", s.ss_bad_srbs);
		hvs_jw_uint(w, "gpa_faults", s.ss_gpa_faults);
		hvs_jw_uint(w, "rsvd_nonzero", s.ss_rsvd_nonzero);
		hvs_jw_uint(w, "check_conditions", s.ss_check_conditions);
		hvs_jw_uint(w, "io_errors", s.ss_io_errors);
		hvs_jw_uint(w, "bytes_read", s.ss_bytes_read);
		hvs_jw_uint(w, "bytes_written", s.ss_bytes_written);
		hvs_jw_arr_begin(w, "disks");
		for (unsigned n = 0; n < HVS_DISK_MAX_LUNS; n++) {
			struct svsp_lun *l = c->sc_luns[n];
			if (l == NULL)
				continue;
			const struct hvs_disk_info *di = hvs_disk_get_info(l->lu_disk);
			hvs_jw_obj_begin(w, NULL);
			hvs_jw_uint(w, "lun", n);
			hvs_jw_str(w, "path", di->di_path);
			hvs_jw_uint(w, "size", di->di_size);
			hvs_jw_bool(w, "ro", di->di_ro);
			hvs_jw_str(w, "backend", hvs_disk_backend_name(di->di_backend));
			hvs_jw_str(w, "serial", di->di_serial);
			hvs_jw_obj_end(w);
		}
		hvs_jw_arr_end(w);
		hvs_jw_obj_end(w);
	}
	hvs_jw_arr_end(w);
	hvs_jw_obj_end(w);
}

int hvs_storage_control(struct hvs_storage *st, const char *cmd,
			const struct hvs_json_obj *req, struct hvs_jw *w,
			const char **errmsg)
{
	static char msg[256]; /* loop thread only */

	if (strcmp(cmd, "disks") == 0) {
		hvs_storage_describe(st, w);
		return 0;
	}
	if (strcmp(cmd, "disk_add") == 0) {
		const struct hvs_json_member *m = hvs_json_get(req, "spec");
		struct hvs_disk_spec spec;
		unsigned ci, li;
		if (m == NULL || m->jm_type != HVS_JSON_STRING) {
			*errmsg = "disk_add needs \"spec\": \"FILE[,options]\"";
			return -EINVAL;
		}
		int r = hvs_disk_spec_parse(m->jm_str, &spec, msg, sizeof(msg));
		if (r == 0)
			r = hvs_storage_add_disk(st, &spec, &ci, &li, msg, sizeof(msg));
		if (r != 0) {
			*errmsg = msg;
			return r;
		}
		hvs_jw_uint(w, "controller", ci);
		hvs_jw_uint(w, "lun", li);
		return 0;
	}
	if (strcmp(cmd, "disk_remove") == 0) {
		const struct hvs_json_member *c = hvs_json_get(req, "controller");
		const struct hvs_json_member *l = hvs_json_get(req, "lun");
		if (c == NULL || l == NULL || c->jm_type != HVS_JSON_INT ||
		    l->jm_type != HVS_JSON_INT || c->jm_int < 0 || l->jm_int < 0 ||
		    c->jm_int >= SVSP_MAX_CONTROLLERS || l->jm_int >= HVS_DISK_MAX_LUNS) {
			*errmsg = "disk_remove needs integer \"controller\" and \"lun\"";
			return -EINVAL;
		}
		if (hvs_storage_remove_disk(st, (unsigned)c->jm_int,
					    (unsigned)l->jm_int) != 0) {
			*errmsg = "no disk at that controller and lun";
			return -ENOENT;
		}
		return 0;
	}
	return -ENOSYS;
}

int hvs_storage_controller_parse(const char *arg, unsigned *index,
				 struct hvs_storvsp_config *cfg, char *err,
				 size_t errlen)
{
	struct hvs_storvsp_config c;
	const char *p = arg;
	char *end;
	unsigned long v;

	memset(&c, 0, sizeof(c));
	if (arg == NULL || *arg < '0' || *arg > '9')
		goto bad;
	v = strtoul(p, &end, 10);
	if (v >= SVSP_MAX_CONTROLLERS)
		goto bad;
	*index = (unsigned)v;
	p = end;
	while (*p == ',') {
		const char *k = ++p;
		const char *eq = strchr(k, '=');
		if (eq == NULL)
			goto bad;
		const char *val = eq + 1;
		size_t kl = (size_t)(eq - k);
		if (*val < '0' || *val > '9')
			goto bad;
		v = strtoul(val, &end, 10);
		if (kl == 11 && strncmp(k, "subchannels", kl) == 0) {
			if (v > HVS_STORVSP_MAX_SUBCHANNELS)
				goto bad;
			c.sc_max_subchannels = v ? (uint32_t)v : HVS_STORVSP_NO_SUBCHANNELS;
		} else if (kl == 7 && strncmp(k, "version", kl) == 0) {
			if (*end != '.' || end[1] < '0' || end[1] > '9' || v > 255)
				goto bad;
			unsigned long mi = strtoul(end + 1, &end, 10);
			bool ok = false;
			uint16_t word = (uint16_t)((v << 8) | (mi & 0xFFu));
			for (size_t i = 0; i < sizeof(vstor_versions) / sizeof(vstor_versions[0]); i++)
				ok |= vstor_versions[i] == word && mi < 256;
			if (!ok)
				goto bad;
			c.sc_max_version = word;
		} else if (kl == 11 && strncmp(k, "queue_depth", kl) == 0) {
			if (v == 0 || v > 4096)
				goto bad;
			c.sc_queue_depth = (uint32_t)v;
		} else if (kl == 12 && strncmp(k, "max_transfer", kl) == 0) {
			unsigned long mul = 1;
			if (*end == 'k' || *end == 'K')
				mul = 1024;
			else if (*end == 'm' || *end == 'M')
				mul = 1024 * 1024;
			if (mul != 1)
				end++;
			if (v > (8ul << 20) / mul)
				goto bad;
			v *= mul;
			if (v % 4096 != 0 || v < (64u << 10))
				goto bad;
			c.sc_max_transfer = (uint32_t)v;
		} else {
			goto bad;
		}
		p = end;
		if (*p != ',' && *p != '\0')
			goto bad;
	}
	if (*p != '\0')
		goto bad;
	*cfg = c;
	return 0;
bad:
	snprintf(err, errlen, "--scsi N[,subchannels=0..63][,version=2.0|4.2|"
		 "5.1|6.0|6.2][,queue_depth=1..4096][,max_transfer=64K..8M]: "
		 "bad \"%s\"", arg ? arg : "");
	return -EINVAL;
}
