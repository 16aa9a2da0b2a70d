/*
 * tests/hostsrv/fake_partition.c - test double of host/partition.h.
 */
#include "fake_partition.h"

#include <stdlib.h>
#include <string.h>

#include "hv/wire.h"
#include "vmbus/errno.h"

struct hvs_partition *fp_create(const char *name, uint64_t ram_bytes,
				uint32_t vcpus)
{
	struct hvs_partition *p = calloc(1, sizeof(*p));
	if (p == NULL)
		abort();
	p->ram = calloc(1, ram_bytes);
	if (p->ram == NULL)
		abort();
	p->ram_bytes = ram_bytes;
	p->vcpus = vcpus;
	strncpy(p->name, name, sizeof(p->name) - 1);
	p->next_page = 16; /* keep page 0 and a few more unused */
	return p;
}

void fp_destroy(struct hvs_partition *p)
{
	free(p->ram);
	free(p);
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
	return p->ram + gpa;
}

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

void *hvs_gpa_map(struct hvs_partition *p, uint64_t gpa, uint64_t len)
{
	if (len == 0 || gpa >= p->ram_bytes || len > p->ram_bytes - gpa)
		return NULL;
	return p->ram + gpa;
}

int hvs_gpa_read(struct hvs_partition *p, uint64_t gpa, void *buf, size_t len)
{
	void *src = hvs_gpa_map(p, gpa, len);
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

const char *hvs_partition_name(const struct hvs_partition *p)
{
	return p->name;
}
