/*
 * vmbus/vmbus.h - the public API of the guest VMBus core.
 *
 * Handles are opaque (STYLE 2): `struct vmbus` is one connection to the host
 * (one partition), `struct vmbus_channel` one offered channel (primary or
 * subchannel), `struct vmbus_device` the driver's view of a primary channel.
 *
 * Contexts used in the contracts below:
 *   "thread"  may sleep (port wait, hypercalls); never from a channel
 *             callback or the ISR.
 *   "any"     never sleeps; callable from channel callbacks too.
 * Every wait is bounded by a deadline on the port's clock (now_ns). In a
 * polled port (no irq_attach / wait, vmbus/platform.h) a bounded wait spins
 * on vmbus_poll() instead of sleeping, so everything below still works.
 * Once the port reports the partition gone (-VMBUS_ENODEV from its wait or
 * a hypercall), every wait, running or later, ends at once with
 * -VMBUS_ENODEV instead of at its deadline, until the next vmbus_connect.
 *
 * Errors are negative VMBUS_E* codes (vmbus/errno.h) with their fixed
 * meanings; -VMBUS_EISCONN always means "memory is still shared with the
 * host: do not free or reuse it".
 *
 * Freestanding: only compiler headers, hv/ and vmbus/ headers.
 */
#ifndef VMBUS_VMBUS_H
#define VMBUS_VMBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/wire.h"
#include "vmbus/errno.h"
#include "vmbus/platform.h"

struct vmbus;
struct vmbus_channel;
struct vmbus_device;
struct vmbus_xact;

/* ---- bus: create, connect, poll, unload, destroy ----------------------- */

struct vmbus_config {
	/*
	 * Newest VMBus version to request (version word, (major<<16)|minor),
	 * 0 = newest supported (5.3). Versions are tried newest first:
	 * 5.3 5.2 5.1 5.0 4.1 4.0 3.0 2.4 1.1; vc_min_version (0 = 1.1) is the
	 * oldest accepted.
	 */
	uint32_t vc_max_version;
	uint32_t vc_min_version;
	/* Guest OS id MSR value; 0 = this project's open-source-format id. */
	uint64_t vc_guest_os_id;
	/* SINT2 vector proposed to the port (16..255); 0 = 0x41. */
	uint8_t  vc_vector;
	/* Allocate and pass monitor pages in INITIATE_CONTACT. */
	bool     vc_monitor_pages;
	/* Bound of every control-path wait (ns); 0 = 5 s. */
	uint64_t vc_timeout_ns;
	/* Largest relid accepted + 1 (<= 2048); 0 = 2048. */
	uint32_t vc_max_relid;
	/* Channels (primaries + subchannels) the registry holds; 0 = 64. */
	uint32_t vc_max_channels;
};

/*
 * vmbus_create - allocate a bus bound to a platform port.
 *   plat: the port table; must stay valid until vmbus_destroy has
 *         returned and the port has run or dropped every call of defer()
 *         it accepted (the posix port: vmbus_posix_destroy).
 *   cfg:  NULL for defaults; copied.
 *   out:  receives the handle.
 * Touches no MSR. Context: thread. Returns 0, -VMBUS_EINVAL (NULL plat or
 * a missing mandatory port entry, bad cfg), -VMBUS_ENOMEM.
 */
int vmbus_create(const struct vmbus_platform *plat,
    const struct vmbus_config *cfg, struct vmbus **out);

/*
 * vmbus_connect - hypervisor set-up on every vCPU (guest OS id, hypercall
 * page, SIMP, SIEFP, SINT2, SCONTROL), interrupt hook-up, version
 * negotiation (newest first), REQUESTOFFERS and the wait for
 * ALLOFFERS_DELIVERED. Drivers already registered are attached to matching
 * devices before this returns. Context: thread.
 * Returns 0, or:
 *   -VMBUS_ENOMEM     page allocation failed;
 *   -VMBUS_ENODEV     the partition is gone (port error);
 *   -VMBUS_EOPNOTSUPP no version in [min, max] was accepted;
 *   -VMBUS_EPROTO     the host broke the negotiation (logged);
 *   -VMBUS_ETIMEDOUT  no VERSION_RESPONSE / ALLOFFERS_DELIVERED in time;
 *   -VMBUS_EBUSY      already connected.
 * On failure the hypervisor state is undone; vmbus_destroy still required.
 */
int vmbus_connect(struct vmbus *vb);

/*
 * vmbus_poll - the polled-mode entry point: process pending SynIC messages
 * and channel events on every vCPU, then deferred work (driver attach and
 * detach after hot-add / rescind) when the port has no defer(). Safe to
 * call in interrupt-driven mode too. Context: thread (deferred work may
 * sleep); when called re-entrantly from a bounded wait it only processes
 * messages and events. Never fails.
 */
void vmbus_poll(struct vmbus *vb);

/*
 * vmbus_isr - the per-vCPU interrupt handler the port calls (irq_attach):
 * arg is the struct vmbus, vp the vCPU whose SINT fired. Drains that
 * vCPU's SynIC message slot and event flags, runs channel callbacks.
 * Context: the port's interrupt context; never sleeps (sleeping work is
 * deferred).
 */
void vmbus_isr(void *arg, uint32_t vp);

/*
 * vmbus_unload - detach every driver, close every channel, send UNLOAD
 * (negotiated version >= 3.0) and wait for UNLOAD_RESPONSE, then undo the
 * SynIC and hypercall set-up. Idempotent. Context: thread, not a channel
 * or driver callback: it first waits (bounded, 4 x vc_timeout_ns) for a
 * pass of the core's deferred work running on another thread, and holds
 * further passes off until it is done. Returns 0, -VMBUS_ETIMEDOUT (no UNLOAD_RESPONSE; state undone anyway),
 * -VMBUS_EISCONN (some ring/GPADL memory could not be reclaimed and was
 * leaked on purpose; see vmbus_stats.bs_leaked_pages).
 */
int vmbus_unload(struct vmbus *vb);

/*
 * vmbus_destroy - vmbus_unload if still connected, then free the bus.
 * NULL is a no-op. Context: thread, not a channel or driver callback.
 * Memory leaked on purpose stays leaked. A deferred call the port has not
 * finished yet (a rescind being completed) is waited for by the unload;
 * one still queued frees the bus when it runs, so the bus handle is
 * invalid from here on either way.
 */
void vmbus_destroy(struct vmbus *vb);

/* Negotiated version word, 0 before vmbus_connect succeeded. Any. */
uint32_t vmbus_version(const struct vmbus *vb);

/* The port the bus was created with (for drivers that allocate pages). */
const struct vmbus_platform *vmbus_platform(const struct vmbus *vb);

/* Bus-wide statistics, snapshot. */
struct vmbus_stats {
	uint64_t bs_messages;		/* SynIC messages received */
	uint64_t bs_bad_messages;	/* dropped: short, unknown, unexpected */
	uint64_t bs_offers;		/* offers accepted */
	uint64_t bs_bad_offers;		/* offers rejected */
	uint64_t bs_rescinds;
	uint64_t bs_post_retries;	/* HvPostMessage back-off retries */
	uint64_t bs_events;		/* channel event flags dispatched */
	uint64_t bs_spurious_events;	/* events for no open channel */
	uint64_t bs_leaked_pages;	/* pages leaked: host may still own them */
	uint64_t bs_gpadl_failures;	/* create/teardown failed or timed out */
};
void vmbus_get_stats(const struct vmbus *vb, struct vmbus_stats *out);

/* Set the log threshold (VMBUS_LOG_*, default VMBUS_LOG_INFO). */
void vmbus_set_log_level(struct vmbus *vb, int level);

/* ---- device registry and drivers ---------------------------------------- */

/*
 * A driver binds to primary channels by class GUID. probe/attach/detach
 * run in thread context and may sleep; attach typically opens the channel.
 * The driver struct must stay valid until vmbus_destroy.
 */
struct vmbus_driver {
	const char *drv_name;
	struct hv_guid drv_class;
	/* 0 = take this device, any negative code = decline. May be NULL. */
	int  (*drv_probe)(struct vmbus_device *dev);
	/* 0 = attached; negative = failed (device stays unbound). */
	int  (*drv_attach)(struct vmbus_device *dev);
	/*
	 * The device goes away (rescind, unload, destroy). The driver must
	 * close its channels (vmbus_chan_close) before returning; the core
	 * closes any it left open. Never fails.
	 */
	void (*drv_detach)(struct vmbus_device *dev);
};

/*
 * vmbus_driver_register - add a driver; it is probed against every current
 * device without a driver (in the caller's context) and every later offer.
 * Context: thread. Returns 0, -VMBUS_EINVAL, -VMBUS_ENOSPC (table full:
 * VMBUS_MAX_DRIVERS), -VMBUS_EEXIST (already registered).
 */
#define VMBUS_MAX_DRIVERS 16
int vmbus_driver_register(struct vmbus *vb, const struct vmbus_driver *drv);

/*
 * Device accessors. Any context. A device handle is valid from the
 * driver's drv_probe until its drv_detach returns.
 *   vmbus_device_driver: the driver probing or bound to dev. Set before
 *     drv_probe is called, so probe, attach and detach can find their own
 *     struct vmbus_driver (and a softc that embeds it); NULL again once
 *     that driver's probe declined or its attach failed.
 *   vmbus_device_softc: the driver's pointer, NULL until it sets one (in
 *     probe or attach); the core clears it when attach fails.
 */
struct vmbus_channel *vmbus_device_channel(struct vmbus_device *dev);
struct vmbus *vmbus_device_bus(struct vmbus_device *dev);
void  vmbus_device_set_softc(struct vmbus_device *dev, void *softc);
void *vmbus_device_softc(const struct vmbus_device *dev);
const struct vmbus_driver *vmbus_device_driver(const struct vmbus_device *dev);

/*
 * A driver call that waits (and so may run the core's deferred work on its
 * own stack: vmbus_poll, a polled port's waits) brackets itself with these,
 * so that a rescind finished meanwhile does not detach the driver, and free
 * its state, under the call: the call's waits see the channel RESCINDED at
 * once, and the last vmbus_device_exit runs the deferred rescind (the
 * driver's rescind callback and drv_detach) in the caller's context. After
 * vmbus_device_exit the driver's state may be gone: it is the call's last
 * use of it. Calls nest and may run on several threads. Context: thread.
 * vmbus_device_enter returns 0, or -VMBUS_ENODEV when the device has no
 * bound driver or its drv_detach has begun (then no exit is owed).
 */
int  vmbus_device_enter(struct vmbus_device *dev);
void vmbus_device_exit(struct vmbus_device *dev);

/* Channel states (one transition function moves between them). */
enum vmbus_chan_state {
	VMBUS_CHAN_OFFERED = 0,
	VMBUS_CHAN_OPENING,
	VMBUS_CHAN_OPEN,
	VMBUS_CHAN_CLOSING,
	VMBUS_CHAN_CLOSED,
	VMBUS_CHAN_RESCINDED,
	VMBUS_CHAN_BROKEN,
};
const char *vmbus_chan_state_name(enum vmbus_chan_state st);

/* A snapshot of one channel for listings (lsvmbus). */
struct vmbus_chan_info {
	struct hv_guid ci_class;	/* if_type */
	struct hv_guid ci_instance;	/* if_instance */
	uint32_t ci_relid;
	uint16_t ci_sub_index;		/* 0 = primary */
	uint16_t ci_chn_flags;		/* VMBUS_OFFER_FLAG_* */
	uint32_t ci_conn_id;		/* signal connection id */
	uint32_t ci_target_vp;		/* interrupt vCPU (when open) */
	uint32_t ci_tx_ring_bytes;	/* 0 unless opened by us */
	uint32_t ci_rx_ring_bytes;
	uint8_t  ci_monitor_id;		/* VMBUS_MONITOR_ID_NONE if none */
	bool     ci_dedicated_intr;
	enum vmbus_chan_state ci_state;
	const char *ci_driver;		/* bound driver name or NULL */
};

/*
 * vmbus_foreach_channel - call fn once per known channel (primaries and
 * subchannels, in relid order) with a private snapshot. Stops early and
 * returns fn's value when it is non-zero; else returns 0. fn must not call
 * back into the bus. Context: any (fn runs without bus locks held).
 */
int vmbus_foreach_channel(struct vmbus *vb,
    int (*fn)(void *arg, const struct vmbus_chan_info *ci), void *arg);

/* Snapshot of one channel. Any. Returns 0 or -VMBUS_EINVAL. */
int vmbus_chan_get_info(const struct vmbus_channel *ch,
    struct vmbus_chan_info *ci);

/* ---- channels ---------------------------------------------------------- */

/*
 * Channel callback: the host signalled the channel (receive data, or room
 * in the send ring). Runs in the ISR or vmbus_poll (or, after a burst that
 * outlasted the ISR's budget, in the core's deferred work), never
 * concurrently with itself for one channel, with the receive ring masked;
 * it should drain with vmbus_chan_recv() until -VMBUS_EAGAIN. Must not
 * sleep. The core unmasks afterwards and calls it again if data arrived
 * meanwhile.
 */
typedef void vmbus_chan_callback_t(struct vmbus_channel *ch, void *arg);

/*
 * vmbus_chan_open - allocate both rings (txbytes guest->host, rxbytes
 * host->guest: whole ring sizes incl. the 4 KiB control page, multiples of
 * 4096, >= 8192), describe them with one GPADL, send OPENCHANNEL with
 * userdata[0..udlen) (udlen <= 120; the rest zero) and wait for
 * OPENCHANNEL_RESULT. callback may be NULL: events then only wake
 * vmbus_chan_wait_rx() / vmbus_xact_wait() waiters.
 * Context: thread. Returns 0, or:
 *   -VMBUS_EINVAL     bad sizes, udlen > 120, channel not OFFERED/CLOSED;
 *   -VMBUS_ENOMEM     ring allocation failed;
 *   -VMBUS_ENODEV     rescinded (before or during the open), or the
 *                     partition is gone;
 *   -VMBUS_EIO        the host refused (GPADL_CREATED or OPEN status != 0);
 *   -VMBUS_ETIMEDOUT  no answer in time.
 * On failure the rings are freed, or leaked on purpose (counted) if the
 * host may still own them, and one warning names the channel, the answer
 * it waited for, how long it waited and why the open ended.
 */
int vmbus_chan_open(struct vmbus_channel *ch, uint32_t txbytes,
    uint32_t rxbytes, const void *userdata, uint32_t udlen,
    vmbus_chan_callback_t *callback, void *arg);

/*
 * vmbus_chan_close - close an OPEN, BROKEN or RESCINDED-while-open channel.
 * NOTE order: unhook from ISR dispatch, drain the running callback,
 * CLOSECHANNEL, GPADL teardown (wait for GPADL_TORNDOWN), free rings.
 * Pending transactions fail with -VMBUS_ENODEV. Context: thread.
 * Returns 0, -VMBUS_EINVAL (not open), -VMBUS_EISCONN (teardown failed or
 * timed out, or the callback was still running after the bus timeout: ring
 * memory leaked on purpose and counted, the channel is CLOSED anyway).
 * Subchannels must be closed before their primary (closing a primary
 * closes its open subchannels first).
 */
int vmbus_chan_close(struct vmbus_channel *ch);

/*
 * vmbus_chan_send - write one packet: descriptor {type, offset8 = 2,
 * flags, trans_id} + data[0..len) zero-padded to 8 bytes. Use type
 * VMBUS_PACKET_TYPE_DATA_INBAND (or _COMP for a completion) and flags
 * VMBUS_PACKET_FLAG_COMPLETION_REQUESTED to ask for a completion
 * (hv/vmbus_pkt.h). Signals the host if the ring went non-empty.
 * Never blocks. Context: any. Returns 0, or:
 *   -VMBUS_EAGAIN    ring full now (pending_send_sz is set so the host
 *                    signals when room appears; see vmbus_chan_wait_tx);
 *   -VMBUS_EMSGSIZE  the packet can never fit this ring;
 *   -VMBUS_ENODEV    not open / rescinded;
 *   -VMBUS_EPROTO    channel BROKEN;
 *   -VMBUS_EINVAL    bad argument.
 */
int vmbus_chan_send(struct vmbus_channel *ch, uint16_t type, uint16_t flags,
    const void *data, uint32_t len, uint64_t trans_id);

/* One GPA range for vmbus_chan_send_gpa (a "multi-page buffer"). */
struct vmbus_gpa_buf {
	uint32_t gb_len;		/* bytes */
	uint32_t gb_offset;		/* into the first page, < 4096 */
	uint32_t gb_npfn;		/* == ceil((offset + len) / 4096) */
	const uint64_t *gb_pfn;		/* 4 KiB guest page frame numbers */
};

/*
 * vmbus_chan_send_gpa - write one GPA-direct packet (type 9, COMPLETION_
 * REQUESTED set) describing nbuf ranges, followed by data[0..len).
 * The described memory belongs to the host until it completes trans_id.
 * Context: any. Returns as vmbus_chan_send, plus -VMBUS_EINVAL for a range
 * whose PFN count does not match its offset and length, or nbuf == 0.
 */
int vmbus_chan_send_gpa(struct vmbus_channel *ch,
    const struct vmbus_gpa_buf *bufs, uint32_t nbuf,
    const void *data, uint32_t len, uint64_t trans_id);

/* What vmbus_chan_recv reports about a packet (validated private copy). */
struct vmbus_pkt_info {
	uint16_t pi_type;		/* VMBUS_PACKET_TYPE_* */
	uint16_t pi_flags;		/* VMBUS_PACKET_FLAG_* */
	uint64_t pi_trans_id;
	uint32_t pi_hdr_len;		/* offset8 * 8 */
	uint32_t pi_pkt_len;		/* len8 * 8 */
};

/*
 * vmbus_chan_recv - take the next packet: validate its descriptor (spec
 * 4.7) and copy its payload (bytes offset8*8 .. len8*8, padding included)
 * into buf, exactly once. Completions whose transaction id belongs to the
 * channel's xact table are consumed here (copied to the slot, waiter woken)
 * and never returned; bad or stale ids are dropped and counted.
 *   buf, *len: in = buffer size; out = payload bytes, or the required
 *              size on -VMBUS_ENOBUFS (the packet stays in the ring).
 *   info:      may be NULL.
 * Context: any (normally the channel callback). Returns 0, or
 *   -VMBUS_EAGAIN  no packet;
 *   -VMBUS_ENOBUFS buffer too small, *len = required size;
 *   -VMBUS_EPROTO  the packet was malformed: channel now BROKEN (logged
 *                  once, counted, pending transactions failed);
 *   -VMBUS_ENODEV  not open.
 */
int vmbus_chan_recv(struct vmbus_channel *ch, void *buf, uint32_t *len,
    struct vmbus_pkt_info *info);

/*
 * vmbus_chan_recv_pkt - as vmbus_chan_recv but copies the whole packet
 * (descriptor, type-specific header and payload: len8 * 8 bytes) into
 * buf; the descriptor bytes in buf are the validated private copy.
 */
int vmbus_chan_recv_pkt(struct vmbus_channel *ch, void *buf, uint32_t *len,
    struct vmbus_pkt_info *info);

/*
 * vmbus_chan_wait_rx - wait until a packet is available, the channel stops
 * being OPEN, or timeout_ns passes. Context: thread. Returns 0 (data),
 * -VMBUS_ETIMEDOUT, -VMBUS_ENODEV, -VMBUS_EPROTO (BROKEN).
 */
int vmbus_chan_wait_rx(struct vmbus_channel *ch, uint64_t timeout_ns);

/*
 * vmbus_chan_wait_tx - wait until an in-band packet of `bytes` payload
 * fits the send ring (pending_send_sz asks the host to signal), or the
 * channel dies, or timeout_ns passes. Another writer may take the room
 * first: retry the send. Context: thread. Returns 0, -VMBUS_ETIMEDOUT,
 * -VMBUS_ENODEV, -VMBUS_EPROTO (BROKEN).
 */
int vmbus_chan_wait_tx(struct vmbus_channel *ch, uint32_t bytes,
    uint64_t timeout_ns);

/*
 * vmbus_chan_set_target_vp - choose the vCPU the host interrupts for ch's
 * events (multi-queue drivers spread their queues over the vCPUs); the
 * port's ISR for that vCPU dispatches them (every vCPU's SynIC is set up).
 *   Not open (OFFERED, CLOSED): kept for the OPENCHANNEL of every later
 *     vmbus_chan_open (until the channel is rescinded). Default: the vCPU
 *     the bus connected from (vCPU 0 before version 2.4).
 *   OPEN, version >= 4.1: MODIFYCHANNEL; from 5.3 on the host answers and
 *     this waits for MODIFYCHANNEL_RESPONSE. Before 5.3 there is no answer
 *     and events may keep coming on the old vCPU for a while (they are
 *     dispatched all the same). The choice is kept for later opens too.
 * vmbus_chan_info.ci_target_vp shows the vCPU in use. Context: thread (an
 * open channel posts a message and may wait). Returns 0, or:
 *   -VMBUS_EINVAL     NULL ch, vp >= the port's vcpu_count, or the
 *                     channel is opening or closing right now;
 *   -VMBUS_EOPNOTSUPP the host cannot: vp != 0 at version < 2.4, or an
 *                     OPEN channel at version < 4.1 (close, set, reopen);
 *   -VMBUS_EBUSY      another retarget of ch is waiting for its answer;
 *   -VMBUS_EIO        the host refused (status != 0): the vCPU is unchanged;
 *   -VMBUS_ETIMEDOUT  no answer in time: the host may still switch, events
 *                     are dispatched from either vCPU;
 *   -VMBUS_ENODEV     rescinded (or closed meanwhile); -VMBUS_EPROTO BROKEN.
 */
int vmbus_chan_set_target_vp(struct vmbus_channel *ch, uint32_t vp);

/*
 * vmbus_chan_set_broken - the driver caught the host breaking the device
 * protocol on ch (a malformed or impossible reply): break the channel the
 * way the core does for ring and packet violations (STYLE 8). Every call
 * counts one protocol error (cs_proto_errors). The first call on an OPEN
 * channel also logs one line naming the channel and `why` (rate-limited),
 * moves it to BROKEN, fails every pending transaction with -VMBUS_EPROTO
 * and wakes every waiter; from then on sends, receives and waits return
 * -VMBUS_EPROTO and vmbus_xact_get returns NULL. vmbus_chan_close works as
 * on any BROKEN channel (and is what the driver does next). On a channel
 * that is not OPEN it only counts. why: read during the call only; NULL
 * logs "driver". NULL ch is a no-op. Context: any (the channel callback
 * too); never sleeps.
 */
void vmbus_chan_set_broken(struct vmbus_channel *ch, const char *why);

/* Accessors. Any context. */
enum vmbus_chan_state vmbus_chan_state(const struct vmbus_channel *ch);
struct vmbus_device *vmbus_chan_device(struct vmbus_channel *ch);
struct vmbus *vmbus_chan_bus(struct vmbus_channel *ch);
uint32_t vmbus_chan_relid(const struct vmbus_channel *ch);
uint16_t vmbus_chan_sub_index(const struct vmbus_channel *ch);
/* Largest in-band payload one send can carry on this (open) channel. */
uint32_t vmbus_chan_max_inband(const struct vmbus_channel *ch);
/* Name for logs: "<driver or class>/<relid>". */
const char *vmbus_chan_name(const struct vmbus_channel *ch);

/*
 * vmbus_chan_subchan_get - wait until `count` subchannel offers of the
 * primary `ch` exist (the device protocol asked the host for them) and
 * store them, in sub index order, in out[0..count). Context: thread.
 * Returns the number stored: count, or fewer (>= 1) if the deadline passed
 * first; or -VMBUS_ETIMEDOUT (none arrived), -VMBUS_ENODEV (primary
 * rescinded), -VMBUS_EINVAL (not a primary, count 0).
 */
int vmbus_chan_subchan_get(struct vmbus_channel *ch, uint32_t count,
    struct vmbus_channel **out, uint64_t timeout_ns);

/*
 * Rescind notification. The host may take a channel away at any time;
 * for a primary the driver hears of it through drv_detach, for a
 * subchannel through this callback:
 *
 * vmbus_chan_set_rescind_cb - have fn(ch, arg) called once when the host
 * rescinds ch. fn runs in thread context (the core's deferred work; it may
 * sleep and use the bus) after ch became RESCINDED (its sends, receives
 * and waits already fail with -VMBUS_ENODEV, its transactions failed) and
 * before the core closes ch (if still open) and sends RELID_RELEASED. fn
 * ends the driver's use of ch (it may vmbus_chan_close it itself); once fn
 * returns, ch is no longer the driver's and its slot may name a later
 * offer. For a primary, drv_detach follows fn. fn NULL removes it.
 *
 * Handle lifetime without a callback: a rescinded subchannel of a bound
 * device keeps its slot (RESCINDED, no longer listed) until the driver
 * detaches, so a handle from vmbus_chan_subchan_get never names another
 * channel while the driver is bound; vmbus_chan_state() tells it is gone.
 *
 * Context: any. Returns 0, -VMBUS_EINVAL (NULL ch), -VMBUS_ENODEV (ch is
 * rescinded already, or not a live channel: fn is not installed and never
 * called; stop using ch now).
 */
typedef void vmbus_chan_rescind_fn(struct vmbus_channel *ch, void *arg);
int vmbus_chan_set_rescind_cb(struct vmbus_channel *ch,
    vmbus_chan_rescind_fn *fn, void *arg);

/* Per-channel statistics (STYLE 7: protocol errors counted per channel). */
struct vmbus_chan_stats {
	uint64_t cs_tx_packets;
	uint64_t cs_tx_bytes;
	uint64_t cs_tx_full;		/* -EAGAIN from send */
	uint64_t cs_rx_packets;
	uint64_t cs_rx_bytes;
	uint64_t cs_proto_errors;	/* malformed packets / ring indices */
	uint64_t cs_unknown_packets;	/* unknown type, dropped */
	uint64_t cs_bad_completions;	/* bad / stale / duplicate xact ids */
	uint64_t cs_signals;		/* signals sent to the host */
	uint64_t cs_interrupts;		/* events dispatched */
};
int vmbus_chan_get_stats(const struct vmbus_channel *ch,
    struct vmbus_chan_stats *out);

/* ---- GPADLs for driver buffers ------------------------------------------ */

/*
 * vmbus_gpadl_create - describe npfn pages (one range, offset 0, length
 * npfn * 4096) to the host on channel ch and wait for GPADL_CREATED.
 * Memory from the port's page_alloc. npfn <= 8190 (range_buflen is u16).
 * Context: thread. Returns 0 and *gpadl, or -VMBUS_EINVAL, -VMBUS_ENOSPC
 * (GPADL table full), -VMBUS_EIO (host refused), -VMBUS_ENODEV,
 * -VMBUS_ETIMEDOUT, -VMBUS_EISCONN (the host may have built it: the
 * pages are the host's now; never free them).
 */
int vmbus_gpadl_create(struct vmbus_channel *ch, const uint64_t *pfns,
    uint32_t npfn, uint32_t *gpadl);

/*
 * vmbus_gpadl_destroy - GPADL_TEARDOWN and wait for GPADL_TORNDOWN.
 * Context: thread. Returns 0 (the caller may free the pages), or
 * -VMBUS_EISCONN (teardown refused/timed out/channel gone: the caller must
 * leak the pages; the core counts them in bs_leaked_pages), -VMBUS_EINVAL
 * (unknown handle).
 */
int vmbus_gpadl_destroy(struct vmbus_channel *ch, uint32_t gpadl);

/* ---- transactions (STYLE 10) --------------------------------------------- */

/*
 * A per-channel table of request slots. The wire transaction id of a slot
 * is (generation << 16) | (slot + 1): never 0 (reserved for unsolicited
 * host packets), and a completion with a stale generation is dropped and
 * counted. A completion (VMBUS_PACKET_TYPE_COMP) whose id matches an
 * active slot is copied (truncated to resp_max, flagged) into the slot
 * before its waiter wakes. On rescind every waiter wakes with -ENODEV; on
 * BROKEN with -EPROTO.
 */
#define VMBUS_XACT_MAX_SLOTS 256

/*
 * vmbus_xact_setup - create the table: nslots (1..256) slots, each with a
 * req_max-byte request buffer and resp_max-byte response buffer. Once per
 * channel, before or after open. Context: thread. Returns 0, -VMBUS_EINVAL,
 * -VMBUS_ENOMEM, -VMBUS_EEXIST.
 */
int vmbus_xact_setup(struct vmbus_channel *ch, uint32_t nslots,
    uint32_t req_max, uint32_t resp_max);

/*
 * vmbus_xact_get - take a free slot (new generation). Context: any.
 * Returns the slot or NULL (none free, no table, or channel not open).
 */
struct vmbus_xact *vmbus_xact_get(struct vmbus_channel *ch);

/* The slot's private request buffer (req_max bytes) to fill. Any. */
void *vmbus_xact_req(struct vmbus_xact *xa);
/* The slot's wire transaction id. Any. */
uint64_t vmbus_xact_id(const struct vmbus_xact *xa);

/*
 * vmbus_xact_send - send the request (len bytes of the request buffer) as
 * type (normally DATA_INBAND) with COMPLETION_REQUESTED and the slot's id;
 * the slot becomes active first, so a fast completion is never lost.
 * Context: any. Returns as vmbus_chan_send (on error the slot is idle
 * again and may be re-sent or put).
 */
int vmbus_xact_send(struct vmbus_xact *xa, uint16_t type, uint32_t len);

/*
 * vmbus_xact_activate - mark the slot active without sending (for
 * requests the caller sends itself, e.g. with vmbus_chan_send_gpa using
 * vmbus_xact_id). Any.
 */
void vmbus_xact_activate(struct vmbus_xact *xa);

/*
 * vmbus_xact_wait - wait for the completion. In polled mode or with no
 * channel callback, this also drains the channel's receive ring (packets
 * other than completions for this table are dropped and counted then).
 * Context: thread. Returns 0 (response ready), -VMBUS_ETIMEDOUT (a late
 * completion is later dropped as stale), -VMBUS_ENODEV (rescinded/closed,
 * or the partition is gone), -VMBUS_EPROTO (channel BROKEN).
 */
int vmbus_xact_wait(struct vmbus_xact *xa, uint64_t timeout_ns);

/*
 * vmbus_xact_resp - the private copy of the response payload; *len gets its
 * length, *truncated (may be NULL) whether the host sent more than
 * resp_max. NULL until vmbus_xact_wait returned 0. Any.
 */
const void *vmbus_xact_resp(const struct vmbus_xact *xa, uint32_t *len,
    bool *truncated);

/* vmbus_xact_put - return the slot (any state). Any. */
void vmbus_xact_put(struct vmbus_xact *xa);

#endif /* VMBUS_VMBUS_H */
