/*
 * tests/hostsrv/fake_partition.h - a test double of host/partition.h for
 * the VMBus server tests: "guest RAM" in a memfd, captured SynIC messages
 * and events, and a switch that makes message delivery report a full
 * queue (-EAGAIN).
 *
 * Guest RAM has two views, as in a real partition: the host's (ram, used
 * by the hvs_gpa_* calls) and the guest's (guest, what the test writes
 * through fp_ptr()). hvs_gpa_map_pfns() windows are further shared
 * mappings of the same memfd. The guard (fp_guard) makes the host's view
 * inaccessible except for the pages the test allows, and counts every
 * hvs_gpa_* access outside them, to prove what the host touches.
 */
#ifndef HOSTSRV_FAKE_PARTITION_H
#define HOSTSRV_FAKE_PARTITION_H

#include <stdbool.h>
#include <stdint.h>

#include "host/partition.h"

#define FP_MAX_MSGS    4096u
#define FP_MAX_EVENTS  8192u
#define FP_MAX_WINDOWS 256u

struct fp_msg {
	uint32_t vp, sint, type, len;
	uint8_t buf[240];
};

struct fp_event {
	uint32_t vp, sint, flag;
};

struct fp_window {
	uint8_t *va;             /* NULL: free slot */
	uint32_t pages;
};

struct hvs_partition {
	int ram_fd;
	uint8_t *ram;            /* the host's view */
	uint8_t *guest;          /* the guest's (test's) view */
	uint64_t ram_bytes;
	uint32_t vcpus;
	char name[65];
	/* delivered messages, FIFO read with fp_pop() */
	struct fp_msg msgs[FP_MAX_MSGS];
	unsigned nmsgs, rd;
	bool queue_full;         /* post_message returns -EAGAIN */
	unsigned eagain_count;   /* times it did */
	struct fp_event events[FP_MAX_EVENTS];
	unsigned nevents;
	uint64_t next_page;      /* bump allocator for tests, in pages */
	/* hvs_gpa_map_pfns windows */
	struct fp_window windows[FP_MAX_WINDOWS];
	unsigned nwindows;       /* mapped now */
	unsigned windows_total;  /* mapped since creation */
	unsigned window_refusals;/* bad PFN lists refused */
	/* guard */
	bool guard;
	uint8_t *allowed;        /* one byte per page: host may touch it */
	unsigned guard_violations;
	uint64_t guard_last_gpa; /* first byte of the last violation */
	/* one byte per page: the host was handed a writable pointer to it
	 * (hvs_gpa_map, hvs_gpa_write: guest-named buffers, the interrupt
	 * and monitor pages), not a ring window; cleared by fp_reset */
	uint8_t *host_wrote;
};

struct hvs_partition *fp_create(const char *name, uint64_t ram_bytes,
				uint32_t vcpus);
/* Fails the process (abort) if a window is still mapped. */
void fp_check_windows(const struct hvs_partition *p);
void fp_destroy(struct hvs_partition *p);
/* Back to what fp_create left, with vcpus vCPUs: RAM zeroed, nothing
 * captured, guard off (aborts if a window is still mapped). For a fuzz
 * harness that keeps one partition instead of a new memfd per input. */
void fp_reset(struct hvs_partition *p, uint32_t vcpus);
/* fp_reset, but RAM keeps its bytes: for a caller that then writes every
 * page it relies on (clearing 1 MB it overwrites anyway was a sixth of a
 * fuzz run). */
void fp_reset_keep_ram(struct hvs_partition *p, uint32_t vcpus);
/* Did the host get write access to guest page pfn by address (not
 * through a window) since the last reset? What it wrote there, the guest
 * asked for by naming the page. */
bool fp_host_wrote(const struct hvs_partition *p, uint64_t pfn);
/* Next undelivered-to-test message, NULL if none. */
const struct fp_msg *fp_pop(struct hvs_partition *p);
unsigned fp_pending(const struct hvs_partition *p);
/* Allocate n contiguous zeroed pages of guest RAM; returns the GPA. */
uint64_t fp_alloc(struct hvs_partition *p, uint32_t npages);
/* The guest's view of gpa. */
void *fp_ptr(struct hvs_partition *p, uint64_t gpa);
/* A guest-side contiguous view of pages pfns[0..n) (the guest's own
 * virtual mapping of scattered pages); fp_unmap_guest() frees it. */
void *fp_map_guest(struct hvs_partition *p, const uint64_t *pfns, uint32_t n);
void fp_unmap_guest(void *va, uint32_t n);

/* Guard on: the host's view of RAM becomes inaccessible (PROT_NONE)
 * except for pages allowed with fp_guard_allow(), and hvs_gpa_* calls or
 * windows touching other pages fail and count a violation. Off: all
 * accessible again, the allowed set is cleared. */
void fp_guard(struct hvs_partition *p, bool on);
void fp_guard_allow(struct hvs_partition *p, uint64_t gpa, uint32_t npages);

#endif
