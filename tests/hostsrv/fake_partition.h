/*
 * tests/hostsrv/fake_partition.h - a test double of host/partition.h for
 * the VMBus server tests: malloc'd "guest RAM", captured SynIC messages
 * and events, and a switch that makes message delivery report a full
 * queue (-EAGAIN).
 */
#ifndef HOSTSRV_FAKE_PARTITION_H
#define HOSTSRV_FAKE_PARTITION_H

#include <stdbool.h>
#include <stdint.h>

#include "host/partition.h"

#define FP_MAX_MSGS   4096u
#define FP_MAX_EVENTS 8192u

struct fp_msg {
	uint32_t vp, sint, type, len;
	uint8_t buf[240];
};

struct fp_event {
	uint32_t vp, sint, flag;
};

struct hvs_partition {
	uint8_t *ram;
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
};

struct hvs_partition *fp_create(const char *name, uint64_t ram_bytes,
				uint32_t vcpus);
void fp_destroy(struct hvs_partition *p);
/* Next undelivered-to-test message, NULL if none. */
const struct fp_msg *fp_pop(struct hvs_partition *p);
unsigned fp_pending(const struct hvs_partition *p);
/* Allocate n contiguous zeroed pages of guest RAM; returns the GPA. */
uint64_t fp_alloc(struct hvs_partition *p, uint32_t npages);
void *fp_ptr(struct hvs_partition *p, uint64_t gpa);

#endif
