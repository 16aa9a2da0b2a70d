/*
 * host/vsp/ic_host.h - the host halves of the integration services
 * (spec/vmbus-devices.md section 4): heartbeat, shutdown, time sync and
 * KVP, offered as four VMBus devices of one VM.
 *
 * The host is a peer of the guest drivers, not a mirror (STYLE 12): it
 * shares only hv/icmsg.h and parses and validates every guest reply itself.
 * A bad reply is logged (rate-limited, VM-prefixed), counted, and fails
 * the request it answers; it never crashes the host or stops the service.
 *
 * What the host does on its own once a guest opens the channels:
 *   all        send NEGOTIATE with the version lists of the configured host
 *              generation and check the guest's choice;
 *   heartbeat  send a heartbeat every period; track OK / no contact / lost
 *              and the time since the last good reply;
 *   timesync   send SYNC after negotiation, then a SAMPLE every period,
 *              from the host's real clock (v4: with the partition's
 *              reference time);
 *   kvp        push the host's own data into the auto-external pool, then
 *              walk the guest's pools every refresh period into a mirror
 *              (so the control socket can answer without waiting), and
 *              measure the guest's clock offset from the guest-published
 *              time key (vmbus/ic.h IC_KVP_KEY_GUEST_TIME);
 *   shutdown   nothing until asked (hvs_ic_shutdown).
 * Requests go out one at a time per channel (the guest answers each; KVP
 * guests handle one at a time); each has a reply timeout.
 *
 * Threading: everything here runs on the loop thread of the VM (the loop
 * given in the config, the one the server calls the VSP ops on); callbacks
 * run there too.
 */
#ifndef HVS_IC_HOST_H
#define HVS_IC_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hvs_vmbus;
struct hvs_loop;
struct hvs_ic;

/* The services, as indexes and as bits of hvs_ic_config.ic_services. */
enum hvs_ic_svc {
	HVS_IC_HEARTBEAT = 0,
	HVS_IC_SHUTDOWN = 1,
	HVS_IC_TIMESYNC = 2,
	HVS_IC_KVP = 3,
	HVS_IC_NSVC
};
#define HVS_IC_BIT(s)	(1u << (s))
#define HVS_IC_ALL	0xFu

/*
 * Host generations: which framework and service versions NEGOTIATE offers
 * (table and its sources in ic_host.c and docs/ic.md). AUTO derives it from
 * the VMBus version the guest negotiated with the server (0.13 -> WS2008,
 * 1.1 -> WS2008R2, 2.4 -> WS2012, 3.0 -> WS2012R2, 4.0-5.1 -> WS2016,
 * 5.2 -> WS2019, 5.3 and later -> WS2022). FUTURE also lists versions no
 * guest knows yet (a newer host than the guest).
 */
enum hvs_ic_gen {
	HVS_IC_GEN_AUTO = 0,
	HVS_IC_GEN_WS2008,
	HVS_IC_GEN_WS2008R2,
	HVS_IC_GEN_WS2012,
	HVS_IC_GEN_WS2012R2,
	HVS_IC_GEN_WS2016,
	HVS_IC_GEN_WS2019,
	HVS_IC_GEN_WS2022,
	HVS_IC_GEN_FUTURE,
	HVS_IC_GEN_COUNT
};
/* "auto", "ws2008", ... "future". */
const char *hvs_ic_gen_name(enum hvs_ic_gen g);
/* Parse a name above. 0 or -EINVAL. */
int hvs_ic_gen_parse(const char *s, enum hvs_ic_gen *out);
/* The generation AUTO picks for a VMBus version word. */
enum hvs_ic_gen hvs_ic_gen_for_vmbus(uint32_t vmbus_version);

struct hvs_ic_config {
	struct hvs_loop *ic_loop;	/* the VM's loop (timers); required */
	enum hvs_ic_gen ic_gen;		/* AUTO by default */
	uint32_t ic_services;		/* HVS_IC_BIT mask; 0 = all */
	/* Periods and bounds (ns); 0 = the default in brackets. */
	uint64_t ic_tick_ns;		/* timer granularity [100 ms] */
	uint64_t ic_reply_timeout_ns;	/* per request [5 s] */
	uint64_t ic_heartbeat_period_ns; /* [2 s, spec 4.5] */
	uint64_t ic_heartbeat_lost_ns;	/* no good reply this long = LOST
					   [3 periods] */
	uint64_t ic_timesync_period_ns;	/* SAMPLE period [5 s, spec 4.7] */
	uint64_t ic_kvp_refresh_ns;	/* pool walk + time offset [5 s] */
	uint64_t ic_shutdown_deadline_ns; /* default for hvs_ic_shutdown
					     deadline 0 [60 s] */
	/* Do not push HostName / VirtualMachineName / PhysicalHostName into
	 * the guest's auto-external pool after KVP negotiation. */
	bool ic_no_host_info;
	/*
	 * The host's clock, UTC ns since 1970; NULL = CLOCK_REALTIME. Tests
	 * and a host pretending a skewed clock override it.
	 */
	int64_t (*ic_host_utc_ns)(void *arg);
	/*
	 * The partition's reference counter now (100-ns units since the
	 * guest started: the TIME_REF_COUNT MSR), needed by time sync 4.0.
	 * NULL: time sync is offered only up to 3.0.
	 */
	uint64_t (*ic_ref_time)(void *arg);
	void *ic_clock_arg;
	/*
	 * Called when a shutdown deadline passes without the guest having
	 * stopped (the host must power the VM off; `why` is a short text).
	 * NULL: only the state shows HVS_IC_SD_EXPIRED.
	 */
	void (*ic_power_off)(void *arg, const char *why);
	void *ic_power_off_arg;
};

/* Fill *cfg with the defaults (everything 0/NULL, gen AUTO). */
void hvs_ic_config_init(struct hvs_ic_config *cfg);

/*
 * hvs_ic_add - register the selected IC devices on server s (offered when
 * the guest asks for offers, or hot-added). Instance GUIDs are derived by
 * the server (stable per VM). The config is copied.
 * Returns 0 and *out, or -EINVAL (no loop, bad gen or services), -ENOMEM,
 * or the error of hvs_vmbus_add_device() for the first device; if a later
 * device fails, the earlier ones stay registered and *out is still set.
 * The handle stays valid until hvs_vmbus_destroy(s) (the server's device
 * destroy callbacks free it); do not use it afterwards.
 */
int hvs_ic_add(struct hvs_vmbus *s, const struct hvs_ic_config *cfg,
	       struct hvs_ic **out);

/*
 * hvs_ic_partition_ended - the VM's partition ended (power off, reboot,
 * crash, gone): ends a pending shutdown request (state DONE, deadline
 * cancelled) and restarts heartbeat tracking at NO_CONTACT. hvsim calls
 * this from its partition-ended handler. Channels are closed by the
 * server separately.
 */
void hvs_ic_partition_ended(struct hvs_ic *ic, int kind);

/* ---- per-service status ---------------------------------------------- */

/* Negotiation state of one service channel. */
enum hvs_ic_neg {
	HVS_IC_NEG_CLOSED = 0,	/* channel not open */
	HVS_IC_NEG_PENDING,	/* NEGOTIATE sent (or to be sent) */
	HVS_IC_NEG_DONE,
	HVS_IC_NEG_FAILED,	/* no common version, or a bad answer */
};
const char *hvs_ic_neg_name(enum hvs_ic_neg n);

struct hvs_ic_svc_status {
	enum hvs_ic_neg ss_neg;
	enum hvs_ic_gen ss_gen;		/* generation offered (AUTO resolved) */
	uint16_t ss_fw_major, ss_fw_minor;
	uint16_t ss_msg_major, ss_msg_minor;
	uint64_t ss_requests;		/* requests sent */
	uint64_t ss_replies;		/* replies accepted */
	uint64_t ss_timeouts;		/* requests without a reply in time */
	uint64_t ss_bad_replies;	/* malformed / unexpected / wrong */
	uint64_t ss_failed;		/* replies with a failure status */
	uint64_t ss_unsolicited;	/* packets answering nothing pending */
};
/* 0, or -EINVAL (bad svc) / -ENODEV (service not registered). */
int hvs_ic_get_status(const struct hvs_ic *ic, enum hvs_ic_svc svc,
		      struct hvs_ic_svc_status *out);

/* ---- heartbeat ------------------------------------------------------- */

enum hvs_ic_hb_state {
	HVS_IC_HB_NO_CONTACT = 0,	/* no good reply since the VM started */
	HVS_IC_HB_OK,			/* a good reply within the lost bound */
	HVS_IC_HB_LOST,			/* replies stopped */
};
const char *hvs_ic_hb_state_name(enum hvs_ic_hb_state s);

struct hvs_ic_hb_status {
	enum hvs_ic_hb_state hs_state;
	uint64_t hs_since_reply_ns;	/* UINT64_MAX if never */
	uint64_t hs_seq;		/* last sequence number sent */
	uint64_t hs_good;		/* replies with seq + 1 */
	uint64_t hs_bad;		/* wrong sequence number or status */
	uint64_t hs_missed;		/* no reply within the timeout */
	uint32_t hs_app_state;		/* V's application state, if sent */
};
int hvs_ic_heartbeat_status(const struct hvs_ic *ic,
			    struct hvs_ic_hb_status *out);

/* ---- shutdown -------------------------------------------------------- */

/* Shutdown request flags (the wire's, hv/icmsg.h IC_SHUTDOWN_FLAG_*). */
#define HVS_IC_SD_FORCE		0x1u
#define HVS_IC_SD_REBOOT	0x2u
#define HVS_IC_SD_HIBERNATE	0x4u

enum hvs_ic_sd_state {
	HVS_IC_SD_IDLE = 0,
	HVS_IC_SD_SENT,		/* waiting for the guest's answer */
	HVS_IC_SD_ACCEPTED,	/* guest said S_OK; waiting for it to stop */
	HVS_IC_SD_REFUSED,	/* guest answered a failure status */
	HVS_IC_SD_NO_REPLY,	/* no answer in time; deadline still armed */
	HVS_IC_SD_EXPIRED,	/* deadline passed: power off requested */
	HVS_IC_SD_DONE,		/* the partition ended (or the guest came back) */
};
const char *hvs_ic_sd_state_name(enum hvs_ic_sd_state s);

struct hvs_ic_sd_status {
	enum hvs_ic_sd_state sd_state;
	uint32_t sd_flags;		/* of the last request */
	uint32_t sd_guest_status;	/* IC status of the answer */
	uint64_t sd_since_request_ns;	/* 0 if none */
	uint64_t sd_deadline_left_ns;	/* 0 if none armed */
};
int hvs_ic_shutdown_status(const struct hvs_ic *ic,
			   struct hvs_ic_sd_status *out);

/*
 * hvs_ic_shutdown - ask the guest to shut down (flags 0), reboot
 * (HVS_IC_SD_REBOOT) or hibernate (HVS_IC_SD_HIBERNATE), HVS_IC_SD_FORCE
 * optional. message (UTF-8, may be NULL) is shown by guests that show it.
 * deadline_ns: the guest must have stopped (hvs_ic_partition_ended) this
 * long after the request, else ic_power_off is called; 0 = the config's
 * default; UINT64_MAX = none. done (may be NULL) is called once with the
 * guest's answer: err 0 and the IC status, or err -ETIMEDOUT / -ENODEV /
 * -EPROTO.
 * Returns 0, -ENODEV (shutdown channel not open and negotiated), -EBUSY (a
 * request is in progress), -EOPNOTSUPP (hibernate below version 3.2),
 * -EINVAL (unknown flags; use hvs_ic_send_raw to send those on purpose).
 */
typedef void hvs_ic_done_fn(void *arg, int err, uint32_t ic_status);
int hvs_ic_shutdown(struct hvs_ic *ic, uint32_t flags, uint64_t deadline_ns,
		    const char *message, hvs_ic_done_fn *done, void *arg);

/* ---- time sync ------------------------------------------------------- */

struct hvs_ic_ts_status {
	uint64_t ts_syncs;		/* SYNC messages answered S_OK */
	uint64_t ts_samples;		/* SAMPLE messages answered S_OK */
	uint64_t ts_refused;		/* answered with a failure status */
	uint64_t ts_last_rtt_ns;	/* of the last exchange */
	/* The guest's clock minus the host's, from the KVP time key. */
	bool ts_offset_valid;
	int64_t ts_offset_ns;
	uint64_t ts_offset_err_ns;	/* +- half the measuring round trip */
	uint64_t ts_offset_age_ns;	/* since it was measured */
};
int hvs_ic_timesync_status(const struct hvs_ic *ic,
			   struct hvs_ic_ts_status *out);
/* Send a SYNC (step) at the next chance, before the next sample. 0,
 * -ENODEV (not negotiated). */
int hvs_ic_timesync_sync_now(struct hvs_ic *ic);

/*
 * Measure the guest clock offset now (a KVP GET of the time key); cb is
 * called once with err 0, offset (guest - host, ns) and the round trip,
 * or err < 0 (-ENODEV KVP not negotiated, -ENOENT the guest publishes no
 * time, -ETIMEDOUT, -EPROTO). The result also updates the cached offset.
 * Returns 0 (queued), -ENODEV, -EAGAIN (queue full), -ENOMEM.
 */
typedef void hvs_ic_offset_fn(void *arg, int err, int64_t offset_ns,
			      uint64_t rtt_ns);
int hvs_ic_time_offset(struct hvs_ic *ic, hvs_ic_offset_fn *cb, void *arg);

/* ---- KVP ------------------------------------------------------------- */

#define HVS_IC_KVP_KEY_MAX	(255u * 3u + 1u)  /* UTF-8 bytes incl. NUL */
#define HVS_IC_KVP_VALUE_MAX	(1023u * 3u + 1u)
#define HVS_IC_KVP_MIRROR_MAX	256u	/* records mirrored per pool */

/* The answer to one KVP request (valid during the callback only). */
struct hvs_ic_kvp_result {
	int kr_err;			/* 0, -ENOENT (no such key / end of
					   the walk), -EIO (guest refused:
					   see kr_status), -ETIMEDOUT,
					   -ENODEV, -EPROTO, -EOVERFLOW */
	uint32_t kr_status;		/* the guest's IC status */
	uint8_t kr_op;			/* KVP_OP_* */
	uint8_t kr_pool;
	uint32_t kr_index;		/* ENUMERATE */
	bool kr_last;			/* hvs_ic_kvp_list: walk finished */
	uint32_t kr_type;		/* KVP_REG_*, when there is a value */
	char kr_key[HVS_IC_KVP_KEY_MAX];	/* UTF-8 */
	char kr_value[HVS_IC_KVP_VALUE_MAX];	/* UTF-8; integers in decimal */
};
typedef void hvs_ic_kvp_fn(void *arg, const struct hvs_ic_kvp_result *r);

/*
 * Queue a request to the guest's KVP service; cb (may be NULL) gets the
 * answer. Keys and values are UTF-8 (at most 255 / 1023 UTF-16 units).
 * hvs_ic_kvp_set_int sends REG_U32 (value <= UINT32_MAX and !u64) or
 * REG_U64.
 * hvs_ic_kvp_list walks pool by ENUMERATE from index 0: cb once per record
 * (kr_last false), then once with kr_last true (kr_err 0, or the error that
 * stopped the walk; a guest that never ends is cut at 4096 records with
 * -EOVERFLOW).
 * Return 0 (queued), -ENODEV (KVP not negotiated), -EINVAL (pool > 3,
 * key or value empty/too long/not UTF-8), -EAGAIN (queue full), -ENOMEM.
 */
int hvs_ic_kvp_get(struct hvs_ic *ic, uint8_t pool, const char *key,
		   hvs_ic_kvp_fn *cb, void *arg);
int hvs_ic_kvp_set(struct hvs_ic *ic, uint8_t pool, const char *key,
		   const char *value, hvs_ic_kvp_fn *cb, void *arg);
int hvs_ic_kvp_set_int(struct hvs_ic *ic, uint8_t pool, const char *key,
		       uint64_t value, bool u64, hvs_ic_kvp_fn *cb, void *arg);
int hvs_ic_kvp_delete(struct hvs_ic *ic, uint8_t pool, const char *key,
		      hvs_ic_kvp_fn *cb, void *arg);
int hvs_ic_kvp_enumerate(struct hvs_ic *ic, uint8_t pool, uint32_t index,
			 hvs_ic_kvp_fn *cb, void *arg);
int hvs_ic_kvp_list(struct hvs_ic *ic, uint8_t pool, hvs_ic_kvp_fn *cb,
		    void *arg);

/*
 * The mirror of the guest's pools from the last completed walk (refreshed
 * every ic_kvp_refresh_ns, and after each successful host SET/DELETE the
 * mirror of that pool is updated at once). For synchronous control
 * commands.
 * hvs_ic_kvp_mirror_get: 0 and the value (UTF-8, NUL-terminated; *type
 * may be NULL), -ENOENT (not in the mirror), -ENOBUFS (buffer too small),
 * -ENODATA (pool never walked yet), -EINVAL.
 * hvs_ic_kvp_mirror_foreach: fn per record of pool in walk order; stops
 * at fn's non-zero return and returns it. *age_ns (may be NULL) = time
 * since the walk ended (UINT64_MAX if never).
 * hvs_ic_kvp_refresh: walk every pool and measure the offset now.
 */
int hvs_ic_kvp_mirror_get(const struct hvs_ic *ic, uint8_t pool,
			  const char *key, uint32_t *type, char *value,
			  size_t size);
int hvs_ic_kvp_mirror_foreach(const struct hvs_ic *ic, uint8_t pool,
			      int (*fn)(void *arg, const char *key,
					uint32_t type, const char *value),
			      void *arg, uint64_t *age_ns);
int hvs_ic_kvp_refresh(struct hvs_ic *ic);

/* ---- raw messages and description ------------------------------------ */

/*
 * Send msg[0..len) as is (an IC message the caller built: pipe + IC header
 * + body) on service svc's channel as the next request, and hand the
 * guest's raw answer to cb (err 0 and the bytes, or -ETIMEDOUT / -ENODEV).
 * For fault tests (hostile-host items 19/20 from the host side); works
 * before negotiation too. len 1..16384.
 * Returns 0, -ENODEV (channel not open), -EINVAL, -EBUSY (another raw
 * request is queued or waiting for its answer), -ENOMEM.
 */
typedef void hvs_ic_raw_fn(void *arg, int err, const uint8_t *reply,
			   uint32_t len);
int hvs_ic_send_raw(struct hvs_ic *ic, enum hvs_ic_svc svc, const void *msg,
		    uint32_t len, hvs_ic_raw_fn *cb, void *arg);

/*
 * A JSON object describing every service (for the control socket: add it
 * with hvs_jw_raw() or hvs_jw_merge_obj()): {"generation":..,
 * "heartbeat":{...},"shutdown":{...},"timesync":{...},"kvp":{...}}.
 * Returns the length (without NUL) or -ENOBUFS (buf holds "").
 */
int hvs_ic_describe_json(const struct hvs_ic *ic, char *buf, size_t len);

/* Service names: "heartbeat", "shutdown", "timesync", "kvp". */
const char *hvs_ic_svc_name(enum hvs_ic_svc svc);

#endif /* HVS_IC_HOST_H */
