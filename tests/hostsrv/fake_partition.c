/*
 * tests/hostsrv/fake_partition.c - test double of host/partition.h.
 */
#define _GNU_SOURCE
#include "fake_partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/wire.h"
#include "vmbus/errno.h"

#define PG 4096u

static uint8_t *map_shared(int fd, uint64_t bytes)
{
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		abort();
	return m;
}

struct hvs_partition *fp_create(const char *name, uint64_t ram_bytes,
				uint32_t vcpus)
{
	struct hvs_partition *p = calloc(1, sizeof(*p));
	if (p == NULL)
		abort();
	p->ram_fd = memfd_create("fake-ram", MFD_CLOEXEC);
	if (p->ram_fd < 0 || ftruncate(p->ram_fd, (off_t)ram_bytes) < 0)
		abort();
	p->ram = map_shared(p->ram_fd, ram_bytes);
	p->guest = map_shared(p->ram_fd, ram_bytes);
	p->allowed = calloc(1, ram_bytes / PG);
	p->host_wrote = calloc(1, ram_bytes / PG);
	if (p->allowed == NULL || p->host_wrote == NULL)
		abort();
	p->ram_bytes = ram_bytes;
	p->vcpus = vcpus;
	strncpy(p->name, name, sizeof(p->name) - 1);
	p->next_page = 16; /* keep page 0 and a few more unused */
	return p;
}

void fp_check_windows(const struct hvs_partition *p)
{
	if (p->nwindows != 0) {
		fprintf(stderr, "fake partition: %u window(s) leaked\n",
			p->nwindows);
		abort();
	}
}

void fp_destroy(struct hvs_partition *p)
{
	fp_check_windows(p);
	munmap(p->ram, p->ram_bytes);
	munmap(p->guest, p->ram_bytes);
	close(p->ram_fd);
	free(p->allowed);
	free(p->host_wrote);
	free(p);
}

void fp_reset_keep_ram(struct hvs_partition *p, uint32_t vcpus)
{
	fp_check_windows(p);
	if (p->guard)
		fp_guard(p, false);
	memset(p->allowed, 0, p->ram_bytes / PG);
	memset(p->host_wrote, 0, p->ram_bytes / PG);
	p->vcpus = vcpus;
	p->nmsgs = p->rd = 0;
	p->queue_full = false;
	p->eagain_count = 0;
	p->nevents = 0;
	p->next_page = 16;
	p->windows_total = 0;
	p->window_refusals = 0;
	p->guard_violations = 0;
	p->guard_last_gpa = 0;
}

void fp_reset(struct hvs_partition *p, uint32_t vcpus)
{
	fp_reset_keep_ram(p, vcpus);
	memset(p->guest, 0, p->ram_bytes);
}

const struct fp_msg *fp_pop(struct hvs_partition *p)
{
	if (p->rd >= p->nmsgs)
		return NULL;
	return &p->msgs[p->rd++];
}

unsigned fp_pending(const struct hvs_partition *p)
{
	return p->nmsgs - p->rd;
}

uint64_t fp_alloc(struct hvs_partition *p, uint32_t npages)
{
	uint64_t gpa = p->next_page << HV_PAGE_SHIFT;
	p->next_page += npages;
	if ((p->next_page << HV_PAGE_SHIFT) > p->ram_bytes)
		abort();
	return gpa;
}

void *fp_ptr(struct hvs_partition *p, uint64_t gpa)
{
	return p->guest + gpa;
}

/* A window: guard page, n pages of the memfd in pfns order, guard page. */
static uint8_t *window_map(int fd, const uint64_t *pfns, uint32_t n)
{
	uint8_t *base = mmap(NULL, ((size_t)n + 2) * PG, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		abort();
	/* One mmap per run of consecutive PFNs, as the real partition
	 * does (one per page was a quarter of the host_vsp fuzzers). */
	for (uint32_t i = 0; i < n;) {
		uint32_t run = 1;

		while (i + run < n && pfns[i + run] == pfns[i] + run)
			run++;
		if (mmap(base + (size_t)(i + 1) * PG, (size_t)run * PG,
			 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			 (off_t)(pfns[i] * PG)) == MAP_FAILED)
			abort();
		i += run;
	}
	return base + PG;
}

static void window_unmap(void *va, uint32_t n)
{
	munmap((uint8_t *)va - PG, ((size_t)n + 2) * PG);
}

void *fp_map_guest(struct hvs_partition *p, const uint64_t *pfns, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (pfns[i] >= p->ram_bytes / PG)
			abort();
	return window_map(p->ram_fd, pfns, n);
}

void fp_unmap_guest(void *va, uint32_t n)
{
	window_unmap(va, n);
}

/* ---- the guard ------------------------------------------------------------ */

static void set_prot(struct hvs_partition *p, uint64_t page, uint64_t n,
		     int prot)
{
	if (mprotect(p->ram + page * PG, n * PG, prot) != 0)
		abort();
}

void fp_guard(struct hvs_partition *p, bool on)
{
	uint64_t pages = p->ram_bytes / PG;

	p->guard = on;
	if (!on) {
		memset(p->allowed, 0, pages);
		set_prot(p, 0, pages, PROT_READ | PROT_WRITE);
		return;
	}
	set_prot(p, 0, pages, PROT_NONE);
	for (uint64_t i = 0; i < pages; i++)
		if (p->allowed[i])
			set_prot(p, i, 1, PROT_READ | PROT_WRITE);
}

void fp_guard_allow(struct hvs_partition *p, uint64_t gpa, uint32_t npages)
{
	for (uint32_t i = 0; i < npages; i++) {
		uint64_t pg = gpa / PG + i;
		if (pg >= p->ram_bytes / PG)
			abort();
		p->allowed[pg] = 1;
		if (p->guard)
			set_prot(p, pg, 1, PROT_READ | PROT_WRITE);
	}
}

/* While guarded: true if [gpa, gpa+len) lies in allowed pages, else a
 * counted violation. */
static bool guard_ok(struct hvs_partition *p, uint64_t gpa, uint64_t len)
{
	if (!p->guard)
		return true;
	for (uint64_t pg = gpa / PG; pg <= (gpa + len - 1) / PG; pg++) {
		if (!p->allowed[pg]) {
			p->guard_violations++;
			p->guard_last_gpa = gpa;
			return false;
		}
	}
	return true;
}

/* ---- host/partition.h ------------------------------------------------------ */

int hvs_partition_post_message(struct hvs_partition *p, uint32_t vp,
			       uint32_t sint, uint32_t message_type,
			       const void *payload, uint32_t len)
{
	if (vp >= p->vcpus || sint >= 16)
		return -VMBUS_ERANGE;
	if (len > 240)
		abort(); /* the server must never do this */
	if (p->queue_full) {
		p->eagain_count++;
		return -VMBUS_EAGAIN;
	}
	if (p->nmsgs >= FP_MAX_MSGS)
		abort();
	struct fp_msg *m = &p->msgs[p->nmsgs++];
	m->vp = vp;
	m->sint = sint;
	m->type = message_type;
	m->len = len;
	memset(m->buf, 0, sizeof(m->buf));
	memcpy(m->buf, payload, len);
	return 0;
}

int hvs_partition_signal_event(struct hvs_partition *p, uint32_t vp,
			       uint32_t sint, uint32_t flag)
{
	if (vp >= p->vcpus || sint >= 16 || flag >= 2048)
		return -VMBUS_ERANGE;
	if (p->nevents < FP_MAX_EVENTS) {
		struct fp_event *e = &p->events[p->nevents++];
		e->vp = vp;
		e->sint = sint;
		e->flag = flag;
	}
	return 0;
}

uint64_t hvs_partition_ram_bytes(const struct hvs_partition *p)
{
	return p->ram_bytes;
}

uint32_t hvs_partition_vcpu_count(const struct hvs_partition *p)
{
	return p->vcpus;
}

static uint8_t *gpa_ptr(struct hvs_partition *p, uint64_t gpa, uint64_t len)
{
	if (len == 0 || gpa >= p->ram_bytes || len > p->ram_bytes - gpa)
		return NULL;
	if (!guard_ok(p, gpa, len))
		return NULL;
	return p->ram + gpa;
}

bool fp_host_wrote(const struct hvs_partition *p, uint64_t pfn)
{
	return pfn < p->ram_bytes / PG && p->host_wrote[pfn];
}

void *hvs_gpa_map(struct hvs_partition *p, uint64_t gpa, uint64_t len)
{
	uint8_t *va = gpa_ptr(p, gpa, len);

	if (va != NULL)
		memset(p->host_wrote + gpa / PG, 1,
		       (gpa + len - 1) / PG - gpa / PG + 1);
	return va;
}

int hvs_gpa_read(struct hvs_partition *p, uint64_t gpa, void *buf, size_t len)
{
	void *src = gpa_ptr(p, gpa, len);
	if (src == NULL)
		return -VMBUS_EFAULT;
	memcpy(buf, src, len);
	return 0;
}

int hvs_gpa_write(struct hvs_partition *p, uint64_t gpa, const void *buf,
		  size_t len)
{
	void *dst = hvs_gpa_map(p, gpa, len);
	if (dst == NULL)
		return -VMBUS_EFAULT;
	memcpy(dst, buf, len);
	return 0;
}

/* The same contract as the real partition: PFN 0, outside RAM or listed
 * twice refuses the window. */
void *hvs_gpa_map_pfns(struct hvs_partition *p, const uint64_t *pfns,
		       uint32_t n)
{
	uint64_t pages = p->ram_bytes / PG;
	unsigned slot;

	if (n == 0 || n > pages) {
		p->window_refusals++;
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		bool dup = false;
		for (uint32_t k = 0; k < i && !dup; k++)
			dup = pfns[k] == pfns[i];
		if (pfns[i] == 0 || pfns[i] >= pages || dup) {
			p->window_refusals++;
			return NULL;
		}
		if (!guard_ok(p, pfns[i] * PG, PG))
			return NULL;
	}
	for (slot = 0; slot < FP_MAX_WINDOWS; slot++)
		if (p->windows[slot].va == NULL)
			break;
	if (slot == FP_MAX_WINDOWS)
		abort();
	p->windows[slot].va = window_map(p->ram_fd, pfns, n);
	p->windows[slot].pages = n;
	p->nwindows++;
	p->windows_total++;
	return p->windows[slot].va;
}

void hvs_gpa_unmap_pfns(struct hvs_partition *p, void *va, uint32_t n)
{
	if (va == NULL)
		return;
	for (unsigned i = 0; i < FP_MAX_WINDOWS; i++) {
		if (p->windows[i].va == va) {
			if (p->windows[i].pages != n)
				abort(); /* the server must never do this */
			window_unmap(va, n);
			p->windows[i].va = NULL;
			p->nwindows--;
			return;
		}
	}
	abort(); /* not a window of ours */
}

const char *hvs_partition_name(const struct hvs_partition *p)
{
	return p->name;
}
