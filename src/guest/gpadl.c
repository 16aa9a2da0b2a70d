/*
 * src/guest/gpadl.c - GPADL creation (GPADL_HEADER + GPADL_BODY messages,
 * split per the derived limits of hv/vmbus_msg.h: 26 PFNs in the header,
 * 28 per body) and teardown (spec 5). Memory the host may still reference
 * is never freed: a failed or unanswered teardown returns -VMBUS_EISCONN.
 */
#include "vmbus_priv.h"

struct gpadl_wait {
	struct vmbus_gpadl *gw_gl;
	uint32_t gw_handle;
	int gw_want;
	bool gw_rescind_ends;	/* a rescind ends the wait early */
};

static bool gpadl_settled(struct vmbus *vb, void *arg)
{
	struct gpadl_wait *gw = arg;
	struct vmbus_channel *ch = gw->gw_gl->gl_chan;

	(void)vb;
	if (gw->gw_gl->gl_handle != gw->gw_handle)
		return true;
	return gw->gw_gl->gl_state != gw->gw_want ||
	    (gw->gw_rescind_ends &&
	    vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED);
}

/* Bounded wait until gl (still `handle`) leaves state `want`; with
 * rescind_ends, its channel's rescind ends the wait too. */
static void gpadl_wait(struct vmbus *vb, struct vmbus_gpadl *gl,
    uint32_t handle, int want, bool rescind_ends)
{
	struct gpadl_wait gw = {
		.gw_gl = gl,
		.gw_handle = handle,
		.gw_want = want,
		.gw_rescind_ends = rescind_ends,
	};

	(void)vmbus_bus_wait(vb, gpadl_settled, &gw,
	    vmbus_deadline(vb, vb->vb_cfg.vc_timeout_ns));
}

static struct vmbus_gpadl *gpadl_find(struct vmbus *vb, uint32_t handle)
{
	if (handle == 0)
		return NULL;
	for (uint32_t i = 0; i < VMBUS_GPADL_MAX; i++)
		if (vb->vb_gpadl[i].gl_state != VMBUS_GPADL_FREE &&
		    vb->vb_gpadl[i].gl_handle == handle)
			return &vb->vb_gpadl[i];
	return NULL;
}

static void gpadl_release(struct vmbus *vb, struct vmbus_gpadl *gl)
{
	vmbus_lock(vb, &vb->vb_lock);
	gl->gl_state = VMBUS_GPADL_FREE;
	gl->gl_handle = 0;
	gl->gl_chan = NULL;
	vmbus_unlock(vb, &vb->vb_lock);
}

/* Forget a GPADL whose pages the host may still use: counted, not freed. */
static int gpadl_leak(struct vmbus *vb, struct vmbus_gpadl *gl,
    const char *why)
{
	vmbus_count(&vb->vb_ctr.bc_gpadl_failures, 1);
	vmbus_log(vb, VMBUS_LOG_WARN,
	    "%s: GPADL 0x%x (%u pages) %s; its memory stays with the host",
	    gl->gl_chan ? gl->gl_chan->ch_name : "vmbus",
	    (unsigned)gl->gl_handle, (unsigned)gl->gl_npages, why);
	gpadl_release(vb, gl);
	return -VMBUS_EISCONN;
}

int vmbus_gpadl_make(struct vmbus_channel *ch, const uint64_t *pfns,
    uint32_t npfn, uint32_t *gpadl)
{
	struct vmbus *vb = ch->ch_bus;
	struct vmbus_gpadl *gl = NULL;
	union {
		struct vmbus_chanmsg_gpadl_header h;
		struct vmbus_chanmsg_gpadl_body b;
		uint8_t raw[VMBUS_MSG_PAYLOAD_MAX];
	} u;
	uint32_t handle, n, done, len;
	int r;

	if (npfn == 0 || npfn > VMBUS_GPADL_MAX_PFNS || pfns == NULL ||
	    gpadl == NULL)
		return -VMBUS_EINVAL;

	vmbus_lock(vb, &vb->vb_lock);
	if (vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED) {
		vmbus_unlock(vb, &vb->vb_lock);
		return -VMBUS_ENODEV;
	}
	for (uint32_t i = 0; i < VMBUS_GPADL_MAX; i++) {
		if (vb->vb_gpadl[i].gl_state == VMBUS_GPADL_FREE) {
			gl = &vb->vb_gpadl[i];
			break;
		}
	}
	if (gl == NULL) {
		vmbus_unlock(vb, &vb->vb_lock);
		return -VMBUS_ENOSPC;
	}
	/* Handles are never 0 and unique among live GPADLs (spec 5.1). */
	do {
		handle = vb->vb_next_gpadl++;
	} while (handle == 0 || gpadl_find(vb, handle) != NULL);
	gl->gl_handle = handle;
	gl->gl_relid = ch->ch_relid;
	gl->gl_npages = npfn;
	gl->gl_status = 0;
	gl->gl_chan = ch;
	gl->gl_state = VMBUS_GPADL_CREATING;
	vmbus_unlock(vb, &vb->vb_lock);

	/* Header: one range (offset 0, npfn pages), first PFNs. */
	vmbus_memset(&u, 0, sizeof(u));
	n = npfn < VMBUS_GPADL_HEADER_MAX_PFNS ? npfn :
	    (uint32_t)VMBUS_GPADL_HEADER_MAX_PFNS;
	u.h.gh_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_GPADL_HEADER);
	u.h.gh_child_relid = hv_cpu_to_le32(ch->ch_relid);
	u.h.gh_gpadl = hv_cpu_to_le32(handle);
	u.h.gh_range_buflen = hv_cpu_to_le16((uint16_t)VMBUS_GPA_RANGE_SIZE(npfn));
	u.h.gh_rangecount = hv_cpu_to_le16(1);
	hv_put_le32(u.h.gh_range + VMBUS_GPA_RANGE_BYTE_COUNT,
	    npfn * HV_PAGE_SIZE);
	hv_put_le32(u.h.gh_range + VMBUS_GPA_RANGE_BYTE_OFFSET, 0);
	for (uint32_t i = 0; i < n; i++)
		hv_put_le64(u.h.gh_range + VMBUS_GPA_RANGE_PFN(i), pfns[i]);
	len = VMBUS_CHANMSG_GPADL_HEADER_SIZE + VMBUS_GPA_RANGE_SIZE(n);
	r = vmbus_post(vb, &u, len);
	if (r != 0) {
		/* Nothing reached the host. */
		gpadl_release(vb, gl);
		return r == -VMBUS_EIO ? -VMBUS_EIO : r;
	}

	/* Bodies: the rest of the PFN stream, 28 per message. */
	for (done = n; done < npfn; done += n) {
		n = npfn - done;
		if (n > VMBUS_GPADL_BODY_MAX_PFNS)
			n = (uint32_t)VMBUS_GPADL_BODY_MAX_PFNS;
		vmbus_memset(&u, 0, sizeof(u));
		u.b.gb_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_GPADL_BODY);
		u.b.gb_msgnumber = 0;
		u.b.gb_gpadl = hv_cpu_to_le32(handle);
		for (uint32_t i = 0; i < n; i++)
			u.b.gb_pfn[i] = hv_cpu_to_le64(pfns[done + i]);
		r = vmbus_post(vb, &u,
		    VMBUS_CHANMSG_GPADL_BODY_SIZE + 8u * n);
		if (r != 0)
			/* A half-built GPADL: the host cannot tear it down
			 * (OVMM refuses), so its pages are its own now. */
			return gpadl_leak(vb, gl, "left half-built");
	}

	gpadl_wait(vb, gl, handle, VMBUS_GPADL_CREATING, true);
	vmbus_lock(vb, &vb->vb_lock);
	if (gl->gl_state == VMBUS_GPADL_CREATED) {
		vmbus_unlock(vb, &vb->vb_lock);
		*gpadl = handle;
		return 0;
	}
	if (gl->gl_state == VMBUS_GPADL_FAILED) {
		uint32_t st = gl->gl_status;

		vmbus_count(&vb->vb_ctr.bc_gpadl_failures, 1);
		vmbus_unlock(vb, &vb->vb_lock);
		vmbus_log(vb, VMBUS_LOG_WARN, "%s: host refused GPADL (0x%x)",
		    ch->ch_name, (unsigned)st);
		gpadl_release(vb, gl);
		return -VMBUS_EIO;
	}
	vmbus_unlock(vb, &vb->vb_lock);
	return gpadl_leak(vb, gl, vmbus_gone(vb) ?
	    "unanswered (partition gone)" :
	    vmbus_chan_state(ch) == VMBUS_CHAN_RESCINDED ?
	    "unanswered (rescinded)" : "creation timed out");
}

int vmbus_gpadl_teardown(struct vmbus_channel *ch, uint32_t gpadl)
{
	struct vmbus *vb = ch->ch_bus;
	struct vmbus_chanmsg_gpadl_teardown gt;
	struct vmbus_gpadl *gl;
	int r;

	vmbus_lock(vb, &vb->vb_lock);
	gl = gpadl_find(vb, gpadl);
	if (gl == NULL || gl->gl_chan != ch ||
	    gl->gl_state != VMBUS_GPADL_CREATED) {
		vmbus_unlock(vb, &vb->vb_lock);
		return -VMBUS_EINVAL;
	}
	gl->gl_state = VMBUS_GPADL_TEARING;
	vmbus_unlock(vb, &vb->vb_lock);

	/* Sent even after a rescind: only GPADL_TORNDOWN proves the host let
	 * go of the pages (OVMM answers at once for a revoked channel). */
	vmbus_memset(&gt, 0, sizeof(gt));
	gt.gt_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_GPADL_TEARDOWN);
	gt.gt_child_relid = hv_cpu_to_le32(ch->ch_relid);
	gt.gt_gpadl = hv_cpu_to_le32(gpadl);
	r = vmbus_post(vb, &gt, VMBUS_CHANMSG_GPADL_TEARDOWN_SIZE);
	if (r != 0)
		return gpadl_leak(vb, gl, "teardown not sent");

	/* Not ended by a rescind: the host may still answer then. */
	gpadl_wait(vb, gl, gpadl, VMBUS_GPADL_TEARING, false);
	vmbus_lock(vb, &vb->vb_lock);
	if (gl->gl_state == VMBUS_GPADL_TORNDOWN) {
		vmbus_unlock(vb, &vb->vb_lock);
		gpadl_release(vb, gl);
		return 0;
	}
	vmbus_unlock(vb, &vb->vb_lock);
	return gpadl_leak(vb, gl, vmbus_gone(vb) ?
	    "teardown unanswered (partition gone)" : "teardown unanswered");
}

/* GPADL_CREATED (vb_lock held): match (relid, gpadl) of a CREATING one. */
void vmbus_handle_gpadl_created(struct vmbus *vb, const struct vmbus_msg *m)
{
	const struct vmbus_chanmsg_gpadl_created *gc = (const void *)m->m_data;
	struct vmbus_gpadl *gl = gpadl_find(vb, hv_le32(gc->gc_gpadl));

	if (gl == NULL || gl->gl_state != VMBUS_GPADL_CREATING ||
	    gl->gl_relid != hv_le32(gc->gc_child_relid)) {
		vmbus_drop(vb, &vb->vb_ctr.bc_bad_messages, &vb->vb_log_next_ns,
		    "vmbus: unexpected GPADL_CREATED 0x%x relid %u",
		    (unsigned)hv_le32(gc->gc_gpadl),
		    (unsigned)hv_le32(gc->gc_child_relid));
		return;
	}
	gl->gl_status = hv_le32(gc->gc_creation_status);
	gl->gl_state = gl->gl_status == 0 ? VMBUS_GPADL_CREATED :
	    VMBUS_GPADL_FAILED;
	vmbus_bus_wakeup(vb);
}

/* GPADL_TORNDOWN (vb_lock held): matched on the handle only (spec 5.4). */
void vmbus_handle_gpadl_torndown(struct vmbus *vb, const struct vmbus_msg *m)
{
	const struct vmbus_chanmsg_gpadl_torndown *gd = (const void *)m->m_data;
	struct vmbus_gpadl *gl = gpadl_find(vb, hv_le32(gd->gd_gpadl));

	if (gl == NULL || gl->gl_state != VMBUS_GPADL_TEARING) {
		vmbus_drop(vb, &vb->vb_ctr.bc_bad_messages, &vb->vb_log_next_ns,
		    "vmbus: unexpected GPADL_TORNDOWN 0x%x",
		    (unsigned)hv_le32(gd->gd_gpadl));
		return;
	}
	gl->gl_state = VMBUS_GPADL_TORNDOWN;
	vmbus_bus_wakeup(vb);
}

/* ---- public wrappers ---- */

int vmbus_gpadl_create(struct vmbus_channel *ch, const uint64_t *pfns,
    uint32_t npfn, uint32_t *gpadl)
{
	if (ch == NULL || !ch->ch_in_use)
		return -VMBUS_EINVAL;
	return vmbus_gpadl_make(ch, pfns, npfn, gpadl);
}

int vmbus_gpadl_destroy(struct vmbus_channel *ch, uint32_t gpadl)
{
	struct vmbus *vb;
	uint32_t npages = 0;
	int r;

	if (ch == NULL)
		return -VMBUS_EINVAL;
	vb = ch->ch_bus;
	vmbus_lock(vb, &vb->vb_lock);
	{
		struct vmbus_gpadl *gl = gpadl_find(vb, gpadl);

		if (gl)
			npages = gl->gl_npages;
	}
	vmbus_unlock(vb, &vb->vb_lock);
	r = vmbus_gpadl_teardown(ch, gpadl);
	if (r == -VMBUS_EISCONN)
		vmbus_count(&vb->vb_ctr.bc_leaked_pages, npages);
	return r;
}
