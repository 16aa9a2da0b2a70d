/*
 * vmbus/echo.h - the guest driver of the project's echo test device
 * (class HV_GUID_ECHO, hv/guid.h). The host echoes every in-band packet
 * back in-band with the same payload; the driver adds a 16-byte frame
 * header (magic, length, sequence) so replies are matched and checked.
 *
 * One thread per echo device at a time (the calls on one device are not
 * serialised internally). All waits are bounded.
 * Freestanding: only compiler headers, hv/ and vmbus/ headers.
 */
#ifndef VMBUS_ECHO_H
#define VMBUS_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/vmbus.h"

struct echo_dev;

struct echo_config {
	uint32_t ec_tx_ring_bytes;	/* whole ring incl. control page; 0 = 64 KiB */
	uint32_t ec_rx_ring_bytes;	/* 0 = 64 KiB */
};

#define ECHO_MAX_DEVICES	32u
#define ECHO_FRAME_MAGIC	0x4F484345u	/* "ECHO" */
#define ECHO_FRAME_HDR		16u

/*
 * echo_register - register the echo driver on vb: every echo device
 * offered now or later is attached and its channel opened with cfg's ring
 * sizes (cfg NULL = defaults; copied). Call once per bus. Context: thread.
 * Returns 0, -VMBUS_EINVAL, -VMBUS_ENOSPC (too many buses), or what
 * vmbus_driver_register returns.
 */
int echo_register(struct vmbus *vb, const struct echo_config *cfg);

/*
 * echo_unregister - forget the driver object of vb; call after
 * vmbus_destroy(vb) (or vmbus_unload), before a new bus may reuse vb's
 * address. Context: thread.
 */
void echo_unregister(struct vmbus *vb);

/* Number of attached echo devices on vb, and the i-th one (NULL if none). */
uint32_t echo_count(struct vmbus *vb);
struct echo_dev *echo_get(struct vmbus *vb, uint32_t index);

/* The device's channel (for vmbus_chan_get_info / stats). */
struct vmbus_channel *echo_channel(struct echo_dev *ed);

/* Largest payload of one echo_roundtrip / echo_stream_send. */
uint32_t echo_max_payload(const struct echo_dev *ed);

/*
 * echo_roundtrip - send buf[0..len) and wait for its echo; copy it into
 * out (capacity *outlen) and set *outlen = len. Replies of earlier timed
 * out round trips are skipped. Context: thread.
 * Returns 0, -VMBUS_EINVAL (len > echo_max_payload or *outlen < len),
 * -VMBUS_ETIMEDOUT, -VMBUS_ENODEV (rescinded/closed), -VMBUS_EPROTO (the
 * reply did not match what was sent, or the channel broke).
 */
int echo_roundtrip(struct echo_dev *ed, const void *buf, uint32_t len,
    void *out, uint32_t *outlen, uint64_t timeout_ns);

/*
 * Streaming, for tests and benchmarks: echo_stream_send queues one framed
 * packet without waiting (-VMBUS_EAGAIN when the ring is full);
 * echo_stream_recv takes one echoed payload without waiting (-VMBUS_EAGAIN
 * when none; -VMBUS_ENOBUFS with the needed size in *len: that echo is
 * consumed and lost);
 * echo_stream_wait waits for receive data (tx = false) or send room
 * (tx = true, may return 0 early: retry the send). Context: send/recv any,
 * wait thread. Each echoed frame is checked (magic, length, sequence in
 * send order): a mismatch returns -VMBUS_EPROTO and counts an error.
 */
int echo_stream_send(struct echo_dev *ed, const void *buf, uint32_t len);
int echo_stream_recv(struct echo_dev *ed, void *buf, uint32_t *len);
int echo_stream_wait(struct echo_dev *ed, bool tx, uint64_t timeout_ns);

struct echo_stats {
	uint64_t es_sent;
	uint64_t es_received;
	uint64_t es_bytes;		/* payload bytes echoed back */
	uint64_t es_mismatches;		/* bad frames */
	uint64_t es_stale;		/* replies of timed-out round trips */
};
void echo_get_stats(const struct echo_dev *ed, struct echo_stats *out);

#endif /* VMBUS_ECHO_H */
