/*
 * fake_vsp.h - a fake of the VSP framework (host/vsp/vsp.h) and of the few
 * server calls a VSP makes (host/vmbus_server.h), so the storage VSP runs
 * against scripted guest packets: no partition, no rings, no guest.
 *
 * Guest RAM is a private array; GPA-direct packets are parsed and checked
 * here the way the real framework does (independently written), and every
 * access outside RAM returns -EFAULT. hvs_gpa_map (host/partition.h)
 * hands out pointers into it, bounds-checked, for the VSP's direct I/O.
 */
#ifndef FAKE_VSP_H
#define FAKE_VSP_H

#include <stdbool.h>
#include <stdint.h>

#include "host/vsp/vsp.h"

#define FAKE_RAM_BYTES (16u << 20)
#define FAKE_MAX_IN    512u
#define FAKE_MAX_OUT   4096u

struct fake_out {
	uint16_t fo_type;
	uint16_t fo_flags;
	uint64_t fo_tid;
	uint32_t fo_len;          /* payload bytes as sent */
	uint8_t fo_data[128];
};

struct hvs_channel {
	uint32_t fc_relid;
	uint16_t fc_sub;
	char fc_name[32];
	void *fc_priv;
	bool fc_open;
	bool fc_broken;
	uint8_t *fc_in[FAKE_MAX_IN];
	uint32_t fc_in_len[FAKE_MAX_IN];
	unsigned fc_in_head, fc_in_tail;
	unsigned fc_space;        /* packets the out ring still takes */
	bool fc_want_signal;      /* a send failed with EAGAIN */
	struct fake_out fc_out[FAKE_MAX_OUT];
	unsigned fc_nout;
	uint64_t fc_faults;
};

struct fake_server {
	const struct hvs_vsp_ops *fs_ops;
	void *fs_arg;
	int fs_ndev;
	unsigned fs_sub_offers;
	uint16_t fs_sub_idx[64];
};

extern struct fake_server fake_srv;
extern uint8_t *fake_ram;
extern unsigned fake_gpa_maps;    /* hvs_gpa_map calls that succeeded */

void fake_reset(void);
struct hvs_channel *fake_chan_new(uint16_t sub);
void fake_chan_free(struct hvs_channel *ch);
/* Queue a raw packet (descriptor included) for the VSP to receive. */
void fake_push(struct hvs_channel *ch, const void *pkt, uint32_t len);

#endif /* FAKE_VSP_H */
