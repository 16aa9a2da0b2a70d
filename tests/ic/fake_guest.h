/*
 * tests/ic/fake_guest.h - a fake VMBus core and fake platform port for the
 * guest IC unit tests: the IC sources are linked against this instead of
 * the real core, so a test plays the host by handing IC messages straight
 * to a channel and reading back what the guest sent.
 */
#ifndef TESTS_IC_FAKE_GUEST_H
#define TESTS_IC_FAKE_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "vmbus/platform.h"
#include "vmbus/vmbus.h"

#define FAKE_MAX_CHANS	8
#define FAKE_PKT_MAX	16384

/* What the fake port recorded. */
struct fake_port {
	struct vmbus_platform fp_plat;
	uint64_t fp_now_ns;		/* monotonic clock, test-driven */
	int64_t fp_wall_ns;		/* guest wall clock */
	uint64_t fp_ref;		/* TIME_REF_COUNT value */
	int fp_rdmsr_err;		/* rdmsr result when non-zero */
	int fp_step_err, fp_slew_err;
	uint64_t fp_steps, fp_slews;
	int64_t fp_last_step;		/* unix ns */
	int64_t fp_last_slew;		/* delta ns */
	uint64_t fp_power_offs, fp_reboots;
	uint64_t fp_replies_at_action;	/* channel tx count when acting */
	int fp_defer_mode;		/* FAKE_DEFER_* */
	uint32_t fp_deferred;		/* queued works */
	uint64_t fp_log_lines;
	char fp_last_log[512];
	int fp_locks_held;
	uint64_t fp_lock_errors;	/* lock taken twice / unlock unheld */
};

#define FAKE_DEFER_NONE		0	/* platform defer == NULL: inline */
#define FAKE_DEFER_QUEUE	1	/* queued until fake_run_deferred() */
#define FAKE_DEFER_FAIL		2	/* defer returns -ENOMEM */

extern struct fake_port fake_port;

/* Reset everything: a new bus with the port (defer mode as given). */
struct vmbus *fake_reset(int defer_mode);
void fake_teardown(void);
/* Run every queued deferred work (and what they queue). */
void fake_run_deferred(void);

/* Offer a channel of class cls; the registered drivers probe/attach.
 * Returns the channel index. */
int fake_offer(const struct hv_guid *cls);
/* Rescind: detach the bound driver. */
void fake_rescind(int idx);
bool fake_chan_open(int idx);
/* Make the next vmbus_driver_register fail with err (0 = none). */
void fake_fail_register(int err);

/* The host sends an inband packet (type: VMBUS_PACKET_TYPE_*); the
 * channel callback runs at once if open. */
void fake_host_send_type(int idx, uint16_t type, const void *data,
			 uint32_t len, uint64_t tid);
void fake_host_send(int idx, const void *data, uint32_t len, uint64_t tid);
/* Take the oldest packet the guest sent on idx: 0, or -1 if none. */
int fake_host_recv(int idx, void *buf, uint32_t *len, uint64_t *tid);
uint32_t fake_host_pending(int idx);
uint64_t fake_tx_count(int idx);
/* Make the guest's sends on idx fail with err (0 = none). */
void fake_send_error(int idx, int err);

#endif /* TESTS_IC_FAKE_GUEST_H */
