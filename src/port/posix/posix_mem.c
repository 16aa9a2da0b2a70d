/*
 * posix_mem.c - guest memory: a first-fit (next-fit hint) bitmap allocator
 * over the guest-RAM mapping, which is shared with the host by
 * construction, and private memory from calloc.
 *
 * Virtually contiguous pages are physically contiguous here (GPA = offset
 * in the mapping), so page_alloc looks for a run of free pages. Page 0 is
 * never handed out (DESIGN.md: 0 means "absent" in several messages).
 */
#include "posix_priv.h"

#include <stdlib.h>
#include <string.h>

#include "hv/wire.h"

static bool bit_get(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1u;
}

static void bits_set(uint64_t *bm, uint64_t from, uint64_t n, bool v)
{
	for (uint64_t i = from; i < from + n; i++) {
		if (v)
			bm[i / 64] |= UINT64_C(1) << (i % 64);
		else
			bm[i / 64] &= ~(UINT64_C(1) << (i % 64));
	}
}

int posix_mem_init(struct vmbus_posix *p)
{
	uint64_t pages = p->pw_ram_bytes >> HV_PAGE_SHIFT;

	p->pm_bitmap = calloc((size_t)((pages + 63) / 64), sizeof(uint64_t));
	if (!p->pm_bitmap)
		return -VMBUS_ENOMEM;
	p->pm_pages = pages;
	bits_set(p->pm_bitmap, 0, 1, true);
	p->pm_used = 0;
	p->pm_hint = 1;
	return 0;
}

void posix_mem_fini(struct vmbus_posix *p)
{
	free(p->pm_bitmap);
	p->pm_bitmap = NULL;
}

/* First free run of n pages at or after `from`, below `to`; 0 if none. */
static uint64_t find_run(struct vmbus_posix *p, uint64_t from, uint64_t to,
			 uint64_t n)
{
	uint64_t i = from;

	while (i + n <= to) {
		uint64_t j;

		/* Skip full words quickly. */
		if (i % 64 == 0 && p->pm_bitmap[i / 64] == UINT64_MAX) {
			i += 64;
			continue;
		}
		for (j = 0; j < n && !bit_get(p->pm_bitmap, i + j); j++)
			;
		if (j == n)
			return i;
		i += j + 1;
	}
	return 0;
}

void *posix_page_alloc(void *ctx, size_t npages, uint64_t *pfns)
{
	struct vmbus_posix *p = ctx;
	uint64_t first;

	if (npages == 0 || !pfns || !p->pm_bitmap)
		return NULL;
	if (posix_fault(p, VMBUS_POSIX_FAULT_PAGE))
		return NULL;
	pthread_mutex_lock(&p->pm_lock);
	if (npages > p->pm_pages - 1) {
		pthread_mutex_unlock(&p->pm_lock);
		return NULL;
	}
	first = find_run(p, p->pm_hint, p->pm_pages, npages);
	if (!first)
		first = find_run(p, 1, p->pm_pages, npages);
	if (!first) {
		pthread_mutex_unlock(&p->pm_lock);
		posix_log(p, VMBUS_LOG_DEBUG,
			  "page_alloc: no run of %zu free pages", npages);
		return NULL;
	}
	bits_set(p->pm_bitmap, first, npages, true);
	p->pm_used += npages;
	p->pm_hint = first + npages < p->pm_pages ? first + npages : 1;
	pthread_mutex_unlock(&p->pm_lock);

	/* Outside the lock: the pages are ours now. */
	memset(p->pw_ram + (first << HV_PAGE_SHIFT), 0,
	       npages << HV_PAGE_SHIFT);
	for (size_t i = 0; i < npages; i++)
		pfns[i] = first + i;
	return p->pw_ram + (first << HV_PAGE_SHIFT);
}

int posix_page_free(void *ctx, void *va, size_t npages)
{
	struct vmbus_posix *p = ctx;
	uintptr_t off;
	uint64_t first;

	if (!va || npages == 0)
		return 0;
	off = (uintptr_t)va - (uintptr_t)p->pw_ram;
	if ((uintptr_t)va < (uintptr_t)p->pw_ram || off % HV_PAGE_SIZE != 0 ||
	    (off >> HV_PAGE_SHIFT) == 0 ||
	    (off >> HV_PAGE_SHIFT) + npages > p->pm_pages) {
		posix_log(p, VMBUS_LOG_ERR,
			  "page_free: %p (+%zu pages) was not page_alloc'd",
			  va, npages);
		return -VMBUS_EINVAL;
	}
	first = off >> HV_PAGE_SHIFT;
	pthread_mutex_lock(&p->pm_lock);
	for (uint64_t i = first; i < first + npages; i++) {
		if (!bit_get(p->pm_bitmap, i)) {
			pthread_mutex_unlock(&p->pm_lock);
			posix_log(p, VMBUS_LOG_ERR,
				  "page_free: pfn %llu is not allocated "
				  "(double free?)", (unsigned long long)i);
			return -VMBUS_EINVAL;
		}
	}
	/* Forced by the countdown only: the pages "could not be made
	 * private again", so they stay allocated and are counted. */
	if (posix_fault(p, VMBUS_POSIX_FAULT_PAGE_FREE)) {
		p->pm_leaked += npages;
		pthread_mutex_unlock(&p->pm_lock);
		posix_log(p, VMBUS_LOG_WARN,
			  "page_free: leaking %zu page(s) at pfn %llu "
			  "(fault injection)", npages,
			  (unsigned long long)first);
		return -VMBUS_EISCONN;
	}
	bits_set(p->pm_bitmap, first, npages, false);
	p->pm_used -= npages;
	pthread_mutex_unlock(&p->pm_lock);
	return 0;
}

int posix_virt_to_gpa(void *ctx, const void *va, uint64_t *gpa)
{
	struct vmbus_posix *p = ctx;
	uintptr_t a = (uintptr_t)va, base = (uintptr_t)p->pw_ram;

	/* Page 0 is never handed to the host. */
	if (!gpa || !p->pw_ram || a < base + HV_PAGE_SIZE ||
	    a - base >= p->pw_ram_bytes)
		return -VMBUS_EFAULT;
	*gpa = (uint64_t)(a - base);
	return 0;
}

void *posix_zalloc(void *ctx, size_t bytes)
{
	struct vmbus_posix *p = ctx;

	if (posix_fault(p, VMBUS_POSIX_FAULT_ALLOC))
		return NULL;
	return calloc(1, bytes ? bytes : 1);
}

void posix_free(void *ctx, void *ptr, size_t bytes)
{
	(void)ctx;
	(void)bytes;
	free(ptr);
}
