/*
 * tests/storvsc/vsh.c - the scripted VSTOR host double (see vsh.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/guid.h"
#include "hv/scsi.h"
#include "hv/vmbus_pkt.h"
#include "vsh.h"

static struct vsh *g_vsh;	/* one host double at a time */

/* ---- hooks on the fake port ---- */

static int vsh_hypercall(void *ctx, uint32_t vp, uint64_t control,
    const void *in, uint32_t in_len, void *out, uint32_t out_len,
    uint64_t *result)
{
	int r = g_vsh->orig_hypercall(ctx, vp, control, in, in_len, out,
	    out_len, result);

	vsh_service(g_vsh);
	return r;
}

static uint64_t vsh_now(void *ctx)
{
	uint64_t t = g_vsh->orig_now(ctx);

	vsh_service(g_vsh);
	return t;
}

static uint32_t vsh_current_vp(void *ctx)
{
	(void)ctx;
	return g_vsh->cur_vp;
}

void vsh_init(struct vsh *h, struct fakeport *fp, uint32_t relid,
    const struct hv_guid *cls, const struct hv_guid *inst)
{
	memset(h, 0, sizeof(*h));
	h->fp = fp;
	h->accept[0] = VMSTOR_PROTO_VERSION_WIN10;
	h->accept[1] = VMSTOR_PROTO_VERSION_WIN8_1;
	h->accept[2] = VMSTOR_PROTO_VERSION_WIN8;
	h->accept[3] = VMSTOR_PROTO_VERSION_WIN7;
	h->accept[4] = VMSTOR_PROTO_VERSION_WIN6;
	h->max_sub = 0;
	h->prop_flags = 0;
	h->max_xfer = VSTOR_MAX_TRANSFER_BYTES_V;
	h->offer_subs = -1;
	h->cls = *cls;
	h->inst = *inst;
	h->out = calloc(VSH_QUEUE, sizeof(*h->out));
	h->held = calloc(VSH_QUEUE, sizeof(*h->held));
	if (h->out == NULL || h->held == NULL)
		abort();
	h->chans[0] = fh_add_chan(fp, relid, cls, inst, 0, false);
	h->nchans = 1;
	h->next_relid = relid + 1;
	g_vsh = h;
	h->orig_hypercall = fp->fp_plat.hypercall;
	h->orig_now = fp->fp_plat.now_ns;
	h->orig_vp = fp->fp_plat.current_vp;
	fp->fp_plat.hypercall = vsh_hypercall;
	fp->fp_plat.now_ns = vsh_now;
	fp->fp_plat.current_vp = vsh_current_vp;
}

void vsh_fini(struct vsh *h)
{
	for (int i = 0; i < VSH_MAX_LUNS; i++)
		free(h->luns[i].l_data);
	free(h->out);
	free(h->held);
	h->fp->fp_plat.hypercall = h->orig_hypercall;
	h->fp->fp_plat.now_ns = h->orig_now;
	h->fp->fp_plat.current_vp = h->orig_vp;
	g_vsh = NULL;
}

struct vsh_lun *vsh_add_lun(struct vsh *h, uint8_t path, uint8_t target,
    uint8_t lun, uint32_t bs, uint64_t blocks)
{
	for (int i = 0; i < VSH_MAX_LUNS; i++) {
		struct vsh_lun *l = &h->luns[i];

		if (l->l_present)
			continue;
		free(l->l_data);
		memset(l, 0, sizeof(*l));
		l->l_present = true;
		l->l_path = path;
		l->l_target = target;
		l->l_lun = lun;
		l->l_bs = bs;
		l->l_blocks = blocks;
		l->l_data = calloc(blocks, bs);
		if (l->l_data == NULL)
			abort();
		l->l_lbpu = true;
		l->l_thin = true;
		l->l_max_unmap = 0x10000;
		l->l_max_unmap_desc = 16;
		return l;
	}
	abort();
}

void vsh_remove_lun(struct vsh *h, struct vsh_lun *l)
{
	(void)h;
	l->l_present = false;
}

/* ---- sending ---- */

static uint32_t vsh_pkt_size(const struct vsh *h)
{
	return h->negotiated ? VSTOR_PACKET_SIZE_FOR(h->version) :
	    VSTOR_PACKET_SIZE_PREWIN8;
}

static void vsh_enqueue(struct vsh *h, uint32_t chan, uint16_t type,
    uint64_t tid, const void *data, uint32_t len, bool held)
{
	struct vsh_resp *r;

	if (held) {
		if (h->nheld >= VSH_QUEUE)
			abort();
		r = &h->held[h->nheld++];
	} else {
		if (h->nout >= VSH_QUEUE)
			abort();
		r = &h->out[h->nout++];
	}
	memset(r, 0, sizeof(*r));
	r->r_type = type;
	r->r_tid = tid;
	r->r_chan = chan;
	r->r_len = len;
	if (len > VSH_PKT_MAX) {
		r->r_big = len;
		r->r_len = 0;
	} else {
		memcpy(r->r_data, data, len);
	}
}

static void vsh_flush(struct vsh *h)
{
	uint32_t done = 0;

	while (done < h->nout) {
		struct vsh_resp *r = &h->out[done];
		struct fh_chan *c = h->chans[r->r_chan];
		int rc;

		if (!c->c_open) {	/* closed meanwhile: drop */
			done++;
			continue;
		}
		if (r->r_big) {
			uint8_t *big = calloc(1, r->r_big);

			rc = fh_write_pkt(h->fp, c, r->r_type, 0, r->r_tid, big,
			    r->r_big);
			free(big);
		} else {
			rc = fh_write_pkt(h->fp, c, r->r_type, 0, r->r_tid,
			    r->r_data, r->r_len);
		}
		if (rc != 0)
			break;		/* ring full: later */
		done++;
	}
	memmove(h->out, h->out + done, (h->nout - done) * sizeof(*h->out));
	h->nout -= done;
}

void vsh_release(struct vsh *h, bool reverse)
{
	for (uint32_t i = 0; i < h->nheld; i++) {
		struct vsh_resp *r = &h->held[reverse ? h->nheld - 1 - i : i];

		if (h->nout >= VSH_QUEUE)
			abort();
		h->out[h->nout++] = *r;
		if (h->outstanding)
			h->outstanding--;
	}
	h->nheld = 0;
	vsh_flush(h);
}

int vsh_unsolicited(struct vsh *h, uint32_t op, uint32_t len)
{
	struct vstor_packet p;

	memset(&p, 0, sizeof(p));
	p.vp_operation = op;
	if (len > sizeof(p))
		len = sizeof(p);
	return fh_write_pkt(h->fp, h->chans[0], VMBUS_PACKET_TYPE_DATA_INBAND,
	    0, 0, &p, len);
}

/* ---- the SCSI target ---- */

struct vsh_srb {
	uint8_t  srb_status, scsi_status;
	uint32_t xfer;
	bool     sense;
	uint8_t  key, asc, ascq;
};

static void vsh_check(struct vsh_srb *s, uint8_t key, uint8_t asc,
    uint8_t ascq)
{
	s->srb_status = SRB_STATUS_ERROR;
	s->scsi_status = SCSI_STATUS_CHECK_CONDITION;
	s->sense = true;
	s->key = key;
	s->asc = asc;
	s->ascq = ascq;
	s->xfer = 0;
}

static struct vsh_lun *vsh_lun_at(struct vsh *h, uint8_t path, uint8_t tg,
    uint8_t lun, bool *target_exists)
{
	*target_exists = false;
	for (int i = 0; i < VSH_MAX_LUNS; i++) {
		struct vsh_lun *l = &h->luns[i];

		if (!l->l_present || l->l_path != path || l->l_target != tg)
			continue;
		*target_exists = true;
		if (l->l_lun == lun)
			return l;
	}
	return NULL;
}

/* Copy between the guest pages of the GPA range and buf. */
static bool vsh_gpa_copy(struct vsh *h, const uint8_t *range, uint32_t off,
    uint8_t *buf, uint32_t len, bool to_guest)
{
	uint32_t bo = range[4] | range[5] << 8 | range[6] << 16 |
	    (uint32_t)range[7] << 24;
	uint32_t pos = bo + off;

	while (len) {
		uint32_t pg = pos / 4096, in = pos % 4096;
		uint32_t n = 4096 - in < len ? 4096 - in : len;
		uint64_t pfn;
		uint8_t *p;

		memcpy(&pfn, range + 8 + 8 * pg, 8);
		p = fp_gpa(h->fp, pfn * 4096 + in, n);
		if (p == NULL)
			return false;
		if (to_guest)
			memcpy(p, buf, n);
		else
			memcpy(buf, p, n);
		buf += n;
		pos += n;
		len -= n;
	}
	return true;
}

static void vsh_put_ascii(uint8_t *d, const char *s, size_t n)
{
	size_t l = strlen(s);

	memset(d, ' ', n);
	memcpy(d, s, l < n ? l : n);
}

/* Build response data for a data-in command into d; returns its length. */
static uint32_t vsh_inquiry(struct vsh_lun *l, const uint8_t *cdb, uint8_t *d,
    struct vsh_srb *s)
{
	uint32_t n;

	if (!(cdb[1] & 1)) {
		if (l == NULL) {
			d[0] = 0x7F;
			return 36;
		}
		d[0] = l->l_type;
		d[2] = SCSI_VERSION_SPC4;
		d[3] = 2;
		d[4] = 31;
		vsh_put_ascii(d + 8, "Msft", 8);
		vsh_put_ascii(d + 16, "Virtual Disk", 16);
		vsh_put_ascii(d + 32, "1.0", 4);
		return 36;
	}
	if (l == NULL) {
		vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_LUN_NOT_SUPPORTED, 0);
		return 0;
	}
	d[0] = l->l_type;
	d[1] = cdb[2];
	switch (cdb[2]) {
	case 0x00:
		n = 6;
		d[4] = 0x00; d[5] = 0x80; d[6] = 0x83;
		d[7] = 0xB0; d[8] = 0xB1; d[9] = 0xB2;
		break;
	case 0x80:
		n = (uint32_t)snprintf((char *)d + 4, 64, "  VSH-%u-%u  ",
		    l->l_target, l->l_lun);
		break;
	case 0x83:
		/* T10 vendor id (rank low) then NAA (rank high), LU assoc. */
		d[4] = 2; d[5] = 0x01; d[7] = 8;
		memcpy(d + 8, "MSFT    ", 8);
		d[16] = 1; d[17] = 0x03; d[19] = 8;
		d[20] = 0x60; d[21] = 0x02; d[22] = 0x24; d[23] = l->l_lun;
		d[27] = 0x5A;
		n = 24;
		break;
	case 0xB0:
		n = 0x3C;
		hv_put_be32(d + 8, l->l_vpd_max_xfer);
		hv_put_be32(d + 12, 0);
		hv_put_be32(d + 20, l->l_max_unmap);
		hv_put_be32(d + 24, l->l_max_unmap_desc);
		hv_put_be32(d + 28, 8);
		break;
	case 0xB1:
		n = 0x3C;
		hv_put_be16(d + 4, 1);
		break;
	case 0xB2:
		n = 4;
		d[5] = l->l_lbpu ? 0x80 : 0;
		break;
	default:
		vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_INVALID_FIELD_IN_CDB, 0);
		return 0;
	}
	hv_put_be16(d + 2, (uint16_t)n);
	return 4 + n;
}

static bool vsh_range_ok(struct vsh_lun *l, uint64_t lba, uint64_t n,
    struct vsh_srb *s)
{
	if (lba > l->l_blocks || n > l->l_blocks - lba) {
		vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
		    SCSI_ASC_LBA_OUT_OF_RANGE, 0);
		return false;
	}
	return true;
}

static void vsh_scsi(struct vsh *h, const struct vmscsi_request *srb,
    const uint8_t *range, uint32_t dlen, struct vsh_srb *s)
{
	static uint8_t d[1 << 20];
	const uint8_t *cdb = srb->vr_cdb;
	bool tgt;
	struct vsh_lun *l = vsh_lun_at(h, srb->vr_path_id, srb->vr_target_id,
	    srb->vr_lun, &tgt);
	uint32_t n = 0;
	uint64_t lba = 0, nb = 0;
	bool in = srb->vr_data_in == VSTOR_DATA_READ;

	s->srb_status = SRB_STATUS_SUCCESS;
	s->scsi_status = SCSI_STATUS_GOOD;
	s->xfer = 0;
	h->srb_opcodes[cdb[0]]++;
	if (h->rescind_armed && cdb[0] == h->rescind_opcode) {
		/* Gone while the guest waits for this one (answered too). */
		h->rescind_armed = false;
		h->rescinds++;
		fh_rescind(h->fp, h->chans[0]);
	}
	if (h->inj.inj_count && (h->inj.inj_opcode == 0xFF ||
	    h->inj.inj_opcode == cdb[0])) {
		h->inj.inj_count--;
		s->srb_status = h->inj.inj_srb;
		s->scsi_status = h->inj.inj_scsi;
		s->sense = h->inj.inj_sense;
		s->key = h->inj.inj_key;
		s->asc = h->inj.inj_asc;
		s->ascq = h->inj.inj_ascq;
		return;
	}
	if (!tgt) {
		s->srb_status = SRB_STATUS_INVALID_LUN;
		return;
	}
	if (l == NULL && cdb[0] != SCSI_INQUIRY && cdb[0] != SCSI_REPORT_LUNS) {
		s->srb_status = SRB_STATUS_INVALID_LUN;
		return;
	}
	memset(d, 0, 65536);
	switch (cdb[0]) {
	case SCSI_TEST_UNIT_READY:
		break;
	case SCSI_INQUIRY:
		n = vsh_inquiry(l, cdb, d, s);
		if (n > hv_get_be16(cdb + 3))
			n = hv_get_be16(cdb + 3);
		break;
	case SCSI_REPORT_LUNS: {
		uint32_t k = 0;

		if (l != NULL && l->l_no_report_luns) {
			vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
			    SCSI_ASC_INVALID_OPCODE, 0);
			break;
		}
		for (int i = 0; i < VSH_MAX_LUNS; i++) {
			struct vsh_lun *x = &h->luns[i];

			if (x->l_present && x->l_path == srb->vr_path_id &&
			    x->l_target == srb->vr_target_id) {
				d[8 + 8 * k + 1] = x->l_lun;
				k++;
			}
		}
		hv_put_be32(d, 8 * k);
		n = 8 + 8 * k;
		if (n > hv_get_be32(cdb + 6))
			n = hv_get_be32(cdb + 6);
		break;
	}
	case SCSI_READ_CAPACITY_10:
		hv_put_be32(d, l->l_blocks > 0xFFFFFFFFull ? 0xFFFFFFFFu :
		    (uint32_t)(l->l_blocks - 1));
		hv_put_be32(d + 4, l->l_bs);
		n = 8;
		break;
	case SCSI_SERVICE_ACTION_IN_16:
		if (l->l_no_rc16 || (cdb[1] & 0x1F) != SCSI_SAI_READ_CAPACITY_16) {
			vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
			    SCSI_ASC_INVALID_OPCODE, 0);
			break;
		}
		hv_put_be64(d, l->l_blocks - 1);
		hv_put_be32(d + 8, l->l_bs);
		d[14] = l->l_thin ? 0x80 : 0;
		n = 32;
		if (n > hv_get_be32(cdb + 10))
			n = hv_get_be32(cdb + 10);
		break;
	case SCSI_MODE_SENSE_6:
		d[0] = 3;
		d[2] = l->l_wp ? SCSI_MODE_DEVSPEC_WP : 0;
		n = 4;
		if (n > cdb[4])
			n = cdb[4];
		break;
	case SCSI_READ_10:
	case SCSI_WRITE_10:
	case SCSI_READ_16:
	case SCSI_WRITE_16: {
		bool wr = cdb[0] == SCSI_WRITE_10 || cdb[0] == SCSI_WRITE_16;

		if (cdb[0] == SCSI_READ_10 || cdb[0] == SCSI_WRITE_10) {
			lba = hv_get_be32(cdb + 2);
			nb = hv_get_be16(cdb + 7);
		} else {
			lba = hv_get_be64(cdb + 2);
			nb = hv_get_be32(cdb + 10);
		}
		if (!vsh_range_ok(l, lba, nb, s))
			break;
		if (nb * l->l_bs != dlen || range == NULL) {
			h->range_bad++;
			vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
			    SCSI_ASC_INVALID_FIELD_IN_CDB, 0);
			break;
		}
		if (wr && l->l_wp) {
			vsh_check(s, SCSI_SENSE_DATA_PROTECT,
			    SCSI_ASC_WRITE_PROTECTED, 0);
			break;
		}
		if (!vsh_gpa_copy(h, range, 0, l->l_data + lba * l->l_bs,
		    dlen, !wr)) {
			h->range_bad++;
			s->srb_status = SRB_STATUS_ERROR;
			break;
		}
		s->xfer = dlen;
		return;
	}
	case SCSI_SYNCHRONIZE_CACHE_10:
	case SCSI_SYNCHRONIZE_CACHE_16:
		h->syncs++;
		break;
	case SCSI_UNMAP: {
		uint32_t pl = hv_get_be16(cdb + 7), nd;

		if (range == NULL || pl != dlen || pl < 8 || pl > 4096 ||
		    !vsh_gpa_copy(h, range, 0, d, pl, false)) {
			h->range_bad++;
			vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
			    SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST, 0);
			break;
		}
		nd = hv_get_be16(d + 2) / 16;
		if (hv_get_be16(d) != 6 + 16 * nd || 8 + 16 * nd > pl ||
		    nd > l->l_max_unmap_desc) {
			h->range_bad++;
			vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST,
			    SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST, 0);
			break;
		}
		for (uint32_t i = 0; i < nd; i++) {
			uint64_t ulba = hv_get_be64(d + 8 + 16 * i);
			uint32_t cnt = hv_get_be32(d + 16 + 16 * i);

			if (cnt > l->l_max_unmap)
				h->range_bad++;
			if (!vsh_range_ok(l, ulba, cnt, s))
				return;
			memset(l->l_data + ulba * l->l_bs, 0,
			    (size_t)cnt * l->l_bs);
			h->unmap_blocks_total += cnt;
		}
		h->unmap_desc_total += nd;
		s->xfer = pl;
		return;
	}
	default:
		vsh_check(s, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE, 0);
		break;
	}
	if (s->srb_status != SRB_STATUS_SUCCESS || !in || n == 0)
		return;
	if (n > dlen)
		n = dlen;
	if (range == NULL || !vsh_gpa_copy(h, range, 0, d, n, true)) {
		h->range_bad++;
		return;
	}
	s->xfer = n;
	if (n < dlen)
		s->srb_status = SRB_STATUS_DATA_OVERRUN;	/* underrun */
}

/* ---- one guest packet ---- */

static void vsh_complete_srb(struct vsh *h, uint32_t ci, uint64_t tid,
    const struct vstor_packet *req, const struct vsh_srb *s)
{
	struct vstor_packet p;
	struct vmscsi_request *srb = &p.vp_srb;
	uint32_t size = vsh_pkt_size(h);
	uint32_t sense_max = VSTOR_SENSE_BUFFER_SIZE_FOR(h->version);
	uint16_t type = VMBUS_PACKET_TYPE_COMP;
	enum vsh_mut mut = VSH_MUT_NONE;
	bool held = h->hold;

	memset(&p, 0, sizeof(p));
	p.vp_operation = VSTOR_OPERATION_COMPLETE_IO;
	p.vp_srb = req->vp_srb;
	srb->vr_length = (uint16_t)VMSCSI_REQUEST_SIZE_FOR(h->version);
	srb->vr_srb_status = s->srb_status;
	srb->vr_scsi_status = s->scsi_status;
	srb->vr_data_transfer_length = s->xfer;
	memset(srb->vr_sense_data, 0, sizeof(srb->vr_sense_data));
	srb->vr_sense_info_length = 0;
	if (s->sense) {
		struct scsi_sense_fixed *f = (void *)srb->vr_sense_data;

		f->ss_response_code = SCSI_SENSE_RESPONSE_CURRENT;
		f->ss_sense_key = s->key;
		f->ss_add_sense_len = SCSI_SENSE_FIXED_ADD_LEN;
		f->ss_asc = s->asc;
		f->ss_ascq = s->ascq;
		srb->vr_srb_status |= SRB_STATUS_AUTOSENSE_VALID;
		srb->vr_sense_info_length = (uint8_t)(sense_max < 18 ?
		    sense_max : 18);
	}
	if (h->mut_count) {
		h->mut_count--;
		mut = h->mut;
	}
	switch (mut) {
	case VSH_MUT_SHORT:
		size -= 8;
		break;
	case VSH_MUT_WRONG_OP:
		p.vp_operation = VSTOR_OPERATION_EXECUTE_SRB;
		break;
	case VSH_MUT_ID_UNKNOWN:
		tid = (tid & ~0xFFFFull) | 0xFFFF;
		break;
	case VSH_MUT_ID_ZERO:
		tid = 0;
		break;
	case VSH_MUT_XFER_LONG:
		srb->vr_data_transfer_length = req->vp_srb.vr_data_transfer_length +
		    4096;
		break;
	case VSH_MUT_SENSE_LONG:
		srb->vr_sense_info_length = 200;
		srb->vr_srb_status |= SRB_STATUS_AUTOSENSE_VALID;
		srb->vr_scsi_status = SCSI_STATUS_CHECK_CONDITION;
		srb->vr_srb_status = (uint8_t)((srb->vr_srb_status & 0xC0) |
		    SRB_STATUS_ERROR);
		srb->vr_sense_data[0] = 0x70;
		srb->vr_sense_data[2] = SCSI_SENSE_MEDIUM_ERROR;
		break;
	case VSH_MUT_INBAND:
		type = VMBUS_PACKET_TYPE_DATA_INBAND;
		break;
	case VSH_MUT_OVERSIZE:
		size = 2048;
		break;
	case VSH_MUT_DROP:
		return;
	case VSH_MUT_STATUS:
		srb->vr_srb_status = h->mut_srb;
		srb->vr_scsi_status = h->mut_scsi;
		break;
	default:
		break;
	}
	if (held)
		h->outstanding++;
	if (h->outstanding > h->max_outstanding)
		h->max_outstanding = h->outstanding;
	vsh_enqueue(h, ci, type, tid, &p, size, held);
	if (mut == VSH_MUT_DUP)
		vsh_enqueue(h, ci, type, tid, &p, size, held);
}

static void vsh_reply(struct vsh *h, uint32_t ci, uint64_t tid,
    struct vstor_packet *p, uint32_t status)
{
	p->vp_operation = VSTOR_OPERATION_COMPLETE_IO;
	p->vp_status = status;
	vsh_enqueue(h, ci, VMBUS_PACKET_TYPE_COMP, tid, p, vsh_pkt_size(h),
	    false);
}

static void vsh_offer_subs(struct vsh *h, uint32_t n)
{
	for (uint32_t i = 0; i < n && h->nchans < VSH_MAX_CHANS; i++) {
		struct fh_chan *c = fh_add_chan(h->fp, h->next_relid++, &h->cls,
		    &h->inst, (uint16_t)h->nchans, false);

		h->chans[h->nchans++] = c;
		fh_offer(h->fp, c);
	}
}

static void vsh_packet(struct vsh *h, uint32_t ci, const uint8_t *pkt,
    uint32_t n)
{
	const struct vmbus_packet_desc *d = (const void *)pkt;
	uint32_t off = (uint32_t)d->pd_offset8 * 8, plen, op, subs = 0;
	const uint8_t *range = NULL;
	struct vstor_packet req, resp;
	uint32_t dlen = 0;

	if (off > n)
		return;
	plen = n - off;
	if (d->pd_type == VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT) {
		uint32_t cnt;

		memcpy(&cnt, pkt + 20, 4);
		if (cnt != 1)
			h->range_bad++;
		range = pkt + 24;
		memcpy(&dlen, range, 4);
	} else if (d->pd_type != VMBUS_PACKET_TYPE_DATA_INBAND) {
		return;
	}
	memset(&req, 0, sizeof(req));
	memcpy(&req, pkt + off, plen < sizeof(req) ? plen : sizeof(req));
	resp = req;
	op = req.vp_operation;
	if (op != VSTOR_OPERATION_EXECUTE_SRB && h->nops < 64)
		h->ops[h->nops++] = op;
	if (!h->negotiated && plen != VSTOR_PACKET_SIZE_PREWIN8)
		h->pre_neg_sizes_bad++;
	if (h->init_drop_op == op)
		return;
	if (h->init_fail_op == op) {
		vsh_reply(h, ci, d->pd_trans_id, &resp,
		    VSTOR_STATUS_INVALID_DEVICE_STATE);
		return;
	}
	switch (op) {
	case VSTOR_OPERATION_BEGIN_INITIALIZATION:
	case VSTOR_OPERATION_END_INITIALIZATION:
		vsh_reply(h, ci, d->pd_trans_id, &resp, 0);
		break;
	case VSTOR_OPERATION_QUERY_PROTOCOL_VERSION: {
		uint16_t v = req.vp_version.vpv_major_minor;
		bool ok = false;

		if (h->nqueried < 16)
			h->queried[h->nqueried++] = v;
		for (int i = 0; i < 8 && h->accept[i]; i++)
			ok |= h->accept[i] == v;
		if (ok && h->echo_override)
			resp.vp_version.vpv_major_minor = h->echo_override;
		vsh_reply(h, ci, d->pd_trans_id, &resp, ok ? 0 :
		    VSTOR_STATUS_REVISION_MISMATCH);
		if (ok) {
			h->version = v;
			h->negotiated = true;
		}
		break;
	}
	case VSTOR_OPERATION_QUERY_PROPERTIES:
		memset(resp.vp_raw, 0, sizeof(resp.vp_raw));
		resp.vp_properties.vcp_max_channel_cnt = h->max_sub;
		resp.vp_properties.vcp_flags = h->prop_flags;
		resp.vp_properties.vcp_max_transfer_bytes = h->max_xfer;
		vsh_reply(h, ci, d->pd_trans_id, &resp, 0);
		break;
	case VSTOR_OPERATION_CREATE_SUB_CHANNELS:
		h->subs_requested = req.vp_subchannel.vsc_sub_channel_count;
		subs = h->offer_subs < 0 ? h->subs_requested :
		    (uint32_t)h->offer_subs;
		vsh_reply(h, ci, d->pd_trans_id, &resp, 0);
		vsh_flush(h);
		vsh_offer_subs(h, subs);
		break;
	case VSTOR_OPERATION_EXECUTE_SRB: {
		struct vsh_srb s;

		memset(&s, 0, sizeof(s));
		h->srbs++;
		h->chan_srbs[ci]++;
		if (plen != VSTOR_PACKET_SIZE_FOR(h->version) ||
		    req.vp_srb.vr_length != VMSCSI_REQUEST_SIZE_FOR(h->version))
			h->srb_size_bad++;
		if (req.vp_srb.vr_sense_info_length !=
		    VSTOR_SENSE_BUFFER_SIZE_FOR(h->version))
			h->srb_sense_bad++;
		if (req.vp_srb.vr_data_transfer_length != dlen)
			h->range_bad++;
		if (dlen > h->max_req_xfer)
			h->max_req_xfer = dlen;
		vsh_scsi(h, &req.vp_srb, range, dlen, &s);
		vsh_complete_srb(h, ci, d->pd_trans_id, &req, &s);
		break;
	}
	default:
		vsh_reply(h, ci, d->pd_trans_id, &resp,
		    VSTOR_STATUS_INVALID_DEVICE_REQUEST);
		break;
	}
}

void vsh_service(struct vsh *h)
{
	static _Alignas(8) uint8_t pkt[16384];

	if (h == NULL || h->busy)
		return;
	h->busy = true;
	vsh_flush(h);
	for (uint32_t ci = 0; ci < h->nchans; ci++) {
		struct fh_chan *c = h->chans[ci];
		int n;

		if (!c->c_open)
			continue;
		for (;;) {
			struct vmbus_packet_desc d;

			if (h->srb_deaf && h->negotiated &&
			    vmbus_ring_peek(&c->c_in, &d, sizeof(d)) == 0)
				break;
			/* Leave room for our answers first. */
			if (h->nout > VSH_QUEUE / 2)
				break;
			n = fh_read_pkt(h->fp, c, pkt, sizeof(pkt));
			if (n <= 0)
				break;
			vsh_packet(h, ci, pkt, (uint32_t)n);
		}
	}
	vsh_flush(h);
	h->busy = false;
}
