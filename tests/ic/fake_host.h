/*
 * tests/ic/fake_host.h - a fake VMBus server / VSP channel layer for the
 * host IC unit tests: the ic_*.c host sources are linked against this (and
 * the real loop, log and JSON of hvs_host_core), and the test plays the
 * guest by reading what the host sent and injecting answers.
 */
#ifndef TESTS_IC_FAKE_HOST_H
#define TESTS_IC_FAKE_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/wire.h"

struct hvs_vmbus;
struct hvs_vsp_ops;

#define FH_MAX_DEV 8
#define FH_PKT_MAX 16384

struct fh_dev {
	bool fd_used;
	const struct hvs_vsp_ops *fd_ops;
	void *fd_arg;
	struct hv_guid fd_class;
	uint16_t fd_flags;
	uint8_t fd_ud[120];
	char fd_name[32];
	bool fd_open;
	bool fd_destroyed;
	bool fd_full;		/* sends answer -EAGAIN */
};

extern struct fh_dev fh_devs[FH_MAX_DEV];

/* A fresh fake server (VMBus version word as negotiated). */
struct hvs_vmbus *fh_reset(uint32_t vmbus_version);
/* Make the next add_device fail with err. */
void fh_fail_add(int err);
/* Index of the device of class cls, or -1. */
int fh_find(const struct hv_guid *cls);
/* Guest opens / closes the channel of device i (vo_open + vo_on_signal). */
int fh_open(int i);
void fh_close(int i, int why);
/* Server destroyed: vo_close for open channels, then vo_destroy. */
void fh_destroy_all(void);
/* Signal the VSP (vo_on_signal). */
void fh_signal(int i);

/* Take the oldest packet the host sent on device i. 0 or -1 (none). */
int fh_take(int i, uint8_t *buf, uint32_t *len, uint64_t *tid);
uint32_t fh_pending(int i);
/* The guest writes a packet into device i's incoming ring (not signalled). */
void fh_inject(int i, uint16_t type, const void *data, uint32_t len,
	       uint64_t tid);
/* Inject an inband packet and signal. */
void fh_reply(int i, const void *data, uint32_t len, uint64_t tid);

#endif /* TESTS_IC_FAKE_HOST_H */
