/*
 * host/vmbus/gpadl.c - GPADL assembly, validation and teardown (spec 5).
 *
 * A GPADL arrives as GPADL_HEADER (relid, handle, range_buflen, rangecount,
 * first part of the range stream) and zero or more GPADL_BODY messages
 * (handle, continuation). The useful length of each message comes from
 * range_buflen (bytes still expected), never from the message size (MSVM
 * always sends 240-byte bodies). The stream is copied into private memory;
 * once complete it is validated as a whole and answered with one
 * GPADL_CREATED.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "srv_priv.h"
#include "vmbus/errno.h"

struct hvs_gpadl *hvs_gpadl_find(struct hvs_vmbus *s, uint32_t handle)
{
	for (struct hvs_gpadl *g = s->vs_gpadls; g; g = g->gp_next)
		if (g->gp_handle == handle)
			return g;
	return NULL;
}

static void win_unmap(struct hvs_vmbus *s, struct hvs_gpadl *g)
{
	if (g->gp_win != NULL)
		hvs_gpa_unmap_pfns(s->vs_p, g->gp_win, (uint32_t)g->gp_npfns);
	g->gp_win = NULL;
	g->gp_win_refs = 0;
}

static void gpadl_unlink_free(struct hvs_vmbus *s, struct hvs_gpadl *g)
{
	for (struct hvs_gpadl **pp = &s->vs_gpadls; *pp; pp = &(*pp)->gp_next) {
		if (*pp == g) {
			*pp = g->gp_next;
			break;
		}
	}
	s->vs_ngpadls--;
	win_unmap(s, g);
	free(g->gp_stream);
	free(g);
}

uint8_t *hvs_gpadl_win_get(struct hvs_vmbus *s, struct hvs_gpadl *g)
{
	if (g->gp_win != NULL) {
		g->gp_win_refs++;
		return g->gp_win;
	}
	/* Validated: npfns <= max_gpadl_pages, each PFN inside RAM. */
	uint64_t *pfns = malloc((size_t)g->gp_npfns * sizeof(*pfns));
	if (pfns == NULL) {
		HVS_ERR(s->vs_name, "vmbus: GPADL 0x%x: out of memory",
			g->gp_handle);
		return NULL;
	}
	uint32_t pos = 0, k = 0;
	for (uint32_t r = 0; r < g->gp_rangecount; r++) {
		uint64_t n = VMBUS_GPA_RANGE_PFNS(
			hv_get_le32(g->gp_stream + pos + VMBUS_GPA_RANGE_BYTE_OFFSET),
			hv_get_le32(g->gp_stream + pos + VMBUS_GPA_RANGE_BYTE_COUNT));
		pos += 8u;
		for (uint64_t i = 0; i < n; i++, pos += 8u)
			pfns[k++] = hv_get_le64(g->gp_stream + pos);
	}
	g->gp_win = hvs_gpa_map_pfns(s->vs_p, pfns, k);
	free(pfns);
	if (g->gp_win == NULL)
		return NULL;
	g->gp_win_refs = 1;
	return g->gp_win;
}

void hvs_gpadl_win_put(struct hvs_vmbus *s, struct hvs_gpadl *g)
{
	if (g->gp_win_refs > 0 && --g->gp_win_refs == 0)
		win_unmap(s, g);
}

uint32_t hvs_gpadl_windows(const struct hvs_vmbus *s)
{
	uint32_t n = 0;
	for (const struct hvs_gpadl *g = s->vs_gpadls; g; g = g->gp_next)
		if (g->gp_win != NULL)
			n++;
	return n;
}

static void send_torndown(struct hvs_vmbus *s, uint32_t handle)
{
	struct vmbus_chanmsg_gpadl_torndown gd;
	memset(&gd, 0, sizeof(gd));
	gd.gd_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_GPADL_TORNDOWN);
	gd.gd_gpadl = hv_cpu_to_le32(handle);
	hvs_srv_send_msg(s, &gd, VMBUS_CHANMSG_GPADL_TORNDOWN_SIZE);
}

void hvs_gpadl_released(struct hvs_vmbus *s, struct hvs_gpadl *g)
{
	if (!g->gp_teardown || g->gp_holds != 0 || g->gp_maps != 0)
		return;
	uint32_t handle = g->gp_handle;
	HVS_DEBUG(s->vs_name, "vmbus: GPADL 0x%x released by the device: "
		  "torn down", handle);
	gpadl_unlink_free(s, g);
	send_torndown(s, handle);
}

void hvs_gpadl_release_chan(struct hvs_vmbus *s, uint32_t relid, bool answer)
{
	struct hvs_gpadl *g = s->vs_gpadls, *next;
	for (; g; g = next) {
		next = g->gp_next;
		if (g->gp_relid != relid ||
		    (g->gp_holds == 0 && g->gp_maps == 0))
			continue;
		g->gp_holds = 0;
		while (g->gp_maps > 0) {
			g->gp_maps--;
			hvs_gpadl_win_put(s, g);
		}
		if (answer)
			hvs_gpadl_released(s, g);
	}
}

void hvs_gpadl_free_relid(struct hvs_vmbus *s, uint32_t relid)
{
	struct hvs_gpadl *g = s->vs_gpadls, *next;
	for (; g; g = next) {
		next = g->gp_next;
		if (g->gp_relid == relid)
			gpadl_unlink_free(s, g);
	}
}

void hvs_gpadl_free_all(struct hvs_vmbus *s)
{
	while (s->vs_gpadls != NULL)
		gpadl_unlink_free(s, s->vs_gpadls);
}

static void send_created(struct hvs_vmbus *s, uint32_t relid, uint32_t handle,
			 uint32_t status)
{
	struct vmbus_chanmsg_gpadl_created gc;
	memset(&gc, 0, sizeof(gc));
	gc.gc_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_GPADL_CREATED);
	gc.gc_child_relid = hv_cpu_to_le32(relid);
	gc.gc_gpadl = hv_cpu_to_le32(handle);
	gc.gc_creation_status = hv_cpu_to_le32(status);
	hvs_srv_send_msg(s, &gc, VMBUS_CHANMSG_GPADL_CREATED_SIZE);
}

/*
 * Validate the complete private stream: rangecount ranges, each
 * byte_offset < 4096, byte_count > 0, enough PFNs, every PFN non-zero and
 * inside guest RAM, the ranges using exactly range_buflen bytes.
 * Returns NULL or the reason.
 */
static const char *gpadl_validate(struct hvs_vmbus *s, struct hvs_gpadl *g)
{
	uint64_t ram_pages = hvs_partition_ram_bytes(s->vs_p) >> HV_PAGE_SHIFT;
	uint32_t pos = 0;
	uint64_t npfns = 0, bytes = 0;

	for (uint32_t r = 0; r < g->gp_rangecount; r++) {
		if (g->gp_buflen - pos < 8u)
			return "range header past range_buflen";
		uint32_t count = hv_get_le32(g->gp_stream + pos +
					     VMBUS_GPA_RANGE_BYTE_COUNT);
		uint32_t off = hv_get_le32(g->gp_stream + pos +
					   VMBUS_GPA_RANGE_BYTE_OFFSET);
		pos += 8u;
		if (off >= HV_PAGE_SIZE)
			return "byte_offset >= 4096";
		if (count == 0)
			return "byte_count 0";
		uint64_t n = VMBUS_GPA_RANGE_PFNS(off, count);
		if (n > (uint64_t)(g->gp_buflen - pos) / 8u)
			return "not enough PFNs for byte_count";
		for (uint64_t i = 0; i < n; i++) {
			uint64_t pfn = hv_get_le64(g->gp_stream + pos);
			pos += 8u;
			if (pfn == 0)
				return "PFN 0";
			if (pfn >= ram_pages)
				return "PFN outside guest RAM";
		}
		npfns += n;
		bytes += count;
		if (npfns > s->vs_max_gpadl_pages)
			return "too many pages";
	}
	if (pos != g->gp_buflen)
		return "range_buflen larger than the ranges";
	g->gp_npfns = npfns;
	g->gp_bytes = bytes;
	return NULL;
}

static void gpadl_append(struct hvs_vmbus *s, struct hvs_gpadl *g,
			 const uint8_t *data, uint32_t avail)
{
	uint32_t want = g->gp_buflen - g->gp_have;
	uint32_t take = avail < want ? avail : want;

	memcpy(g->gp_stream + g->gp_have, data, take);
	g->gp_have += take;
	if (g->gp_have < g->gp_buflen)
		return;

	const char *why = gpadl_validate(s, g);
	if (why != NULL) {
		SRV_BAD(s, "vmbus: GPADL 0x%x (relid %u) refused: %s",
			g->gp_handle, g->gp_relid, why);
		uint32_t relid = g->gp_relid, handle = g->gp_handle;
		gpadl_unlink_free(s, g);
		send_created(s, relid, handle, HVS_STATUS_FAIL);
		return;
	}
	g->gp_complete = true;
	HVS_DEBUG(s->vs_name, "vmbus: GPADL 0x%x relid %u: %u ranges, %"
		  PRIu64 " pages", g->gp_handle, g->gp_relid,
		  g->gp_rangecount, g->gp_npfns);
	send_created(s, g->gp_relid, g->gp_handle, 0);
}

void hvs_gpadl_handle_header(struct hvs_vmbus *s, const uint8_t *m,
			     uint32_t len)
{
	struct vmbus_chanmsg_gpadl_header gh;
	memcpy(&gh, m, sizeof(gh));
	uint32_t relid = hv_le32(gh.gh_child_relid);
	uint32_t handle = hv_le32(gh.gh_gpadl);
	uint32_t buflen = hv_le16(gh.gh_range_buflen);
	uint32_t rcount = hv_le16(gh.gh_rangecount);
	const char *why = NULL;

	struct hvs_channel *ch = relid >= 1 && relid <= HVS_RELID_MAX
					 ? s->vs_chan[relid] : NULL;
	if (ch == NULL || ch->ch_state == HVS_CHAN_UNOFFERED ||
	    ch->ch_state == HVS_CHAN_RESCINDED)
		why = "unknown or rescinded relid";
	else if (handle == 0)
		why = "handle 0";
	else if (hvs_gpadl_find(s, handle) != NULL)
		why = "handle already in use";
	else if (rcount == 0)
		why = "rangecount 0";
	else if (buflen < 16u * rcount)
		why = "range_buflen too small for rangecount";
	else if (s->vs_ngpadls >= s->vs_max_gpadls)
		why = "too many GPADLs";
	if (why != NULL) {
		SRV_BAD(s, "vmbus: GPADL_HEADER 0x%x relid %u refused: %s",
			handle, relid, why);
		send_created(s, relid, handle, HVS_STATUS_FAIL);
		return;
	}

	struct hvs_gpadl *g = calloc(1, sizeof(*g));
	uint8_t *stream = malloc(buflen);
	if (g == NULL || stream == NULL) {
		free(g);
		free(stream);
		HVS_ERR(s->vs_name, "vmbus: GPADL 0x%x: out of memory", handle);
		send_created(s, relid, handle, HVS_STATUS_FAIL);
		return;
	}
	g->gp_handle = handle;
	g->gp_relid = relid;
	g->gp_rangecount = (uint16_t)rcount;
	g->gp_buflen = buflen;
	g->gp_stream = stream;
	g->gp_next = s->vs_gpadls;
	s->vs_gpadls = g;
	s->vs_ngpadls++;
	gpadl_append(s, g, m + VMBUS_CHANMSG_GPADL_HEADER_SIZE,
		     len - VMBUS_CHANMSG_GPADL_HEADER_SIZE);
}

void hvs_gpadl_handle_body(struct hvs_vmbus *s, const uint8_t *m,
			   uint32_t len)
{
	struct vmbus_chanmsg_gpadl_body gb;
	memcpy(&gb, m, sizeof(gb));
	uint32_t handle = hv_le32(gb.gb_gpadl);
	struct hvs_gpadl *g = hvs_gpadl_find(s, handle);

	if (g == NULL || g->gp_complete) {
		/* No relid in a body: nothing to answer (spec 5.3). */
		SRV_BAD(s, "vmbus: GPADL_BODY for %s handle 0x%x dropped",
			g == NULL ? "unknown" : "complete", handle);
		return;
	}
	if (len == VMBUS_CHANMSG_GPADL_BODY_SIZE) {
		SRV_BAD(s, "vmbus: empty GPADL_BODY for 0x%x", handle);
		return;
	}
	gpadl_append(s, g, m + VMBUS_CHANMSG_GPADL_BODY_SIZE,
		     len - VMBUS_CHANMSG_GPADL_BODY_SIZE);
}

void hvs_gpadl_handle_teardown(struct hvs_vmbus *s, const uint8_t *m,
			       uint32_t len)
{
	struct vmbus_chanmsg_gpadl_teardown gt;
	(void)len;
	memcpy(&gt, m, sizeof(gt));
	uint32_t relid = hv_le32(gt.gt_child_relid);
	uint32_t handle = hv_le32(gt.gt_gpadl);
	struct hvs_gpadl *g = hvs_gpadl_find(s, handle);
	const char *why = NULL;

	if (g == NULL)
		why = "unknown handle";
	else if (g->gp_relid != relid)
		why = "GPADL belongs to another channel";
	else if (!g->gp_complete)
		why = "GPADL still being built";
	else if (g->gp_ring_user != 0)
		why = "GPADL in use by an open channel's rings";
	else if (g->gp_teardown)
		why = "teardown already pending";
	if (why != NULL) {
		/* NOTE: no GPADL_TORNDOWN: the memory is not released. */
		SRV_BAD(s, "vmbus: GPADL_TEARDOWN 0x%x relid %u refused: %s",
			handle, relid, why);
		return;
	}
	if (g->gp_holds != 0 || g->gp_maps != 0) {
		/* The device still uses the buffer: the host stops using it
		 * first, then answers (spec 5.4). hvs_gpadl_released() does,
		 * at the latest when the channel closes. */
		g->gp_teardown = true;
		HVS_INFO(s->vs_name, "vmbus: GPADL_TEARDOWN 0x%x relid %u "
			 "waits until the device releases the buffer", handle,
			 relid);
		return;
	}
	gpadl_unlink_free(s, g);
	send_torndown(s, handle);
}

/*
 * Copy len bytes at offset off of the buffer GPADL g describes (ranges
 * concatenated), page by page through the partition's checked calls.
 */
int hvs_gpadl_copy(struct hvs_vmbus *s, const struct hvs_gpadl *g,
		   uint64_t off, void *buf, uint32_t len, bool write)
{
	uint8_t *p = buf;
	uint32_t pos = 0;

	if (off > g->gp_bytes || len > g->gp_bytes - off)
		return -VMBUS_ERANGE;
	for (uint32_t r = 0; r < g->gp_rangecount && len > 0; r++) {
		uint32_t count = hv_get_le32(g->gp_stream + pos);
		uint32_t roff = hv_get_le32(g->gp_stream + pos + 4);
		const uint8_t *pfns = g->gp_stream + pos + 8;
		uint64_t n = VMBUS_GPA_RANGE_PFNS(roff, count);
		pos += 8u + 8u * (uint32_t)n;
		if (off >= count) {
			off -= count;
			continue;
		}
		while (len > 0 && off < count) {
			uint64_t abs = roff + off;
			uint64_t pfn = hv_get_le64(pfns + 8u * (abs >> HV_PAGE_SHIFT));
			uint32_t in_pg = (uint32_t)(abs & HV_PAGE_MASK);
			uint32_t chunk = HV_PAGE_SIZE - in_pg;
			if (chunk > len)
				chunk = len;
			if (chunk > count - off)
				chunk = (uint32_t)(count - off);
			uint64_t gpa = (pfn << HV_PAGE_SHIFT) + in_pg;
			int rc = write ? hvs_gpa_write(s->vs_p, gpa, p, chunk)
				       : hvs_gpa_read(s->vs_p, gpa, p, chunk);
			if (rc != 0)
				return -VMBUS_EFAULT;
			p += chunk;
			len -= chunk;
			off += chunk;
		}
		off = 0;
	}
	return len == 0 ? 0 : -VMBUS_ERANGE;
}
