/*
 * vmbus/ic.h - the guest integration services (ICs): heartbeat, shutdown,
 * time sync and KVP (key/value pair exchange), spec/vmbus-devices.md
 * section 4.
 *
 * One call registers the four VMBus drivers (by class GUID, hv/guid.h)
 * on a bus; from then on the core attaches them to the IC channels the
 * host offers, and they answer the host on their own:
 *
 *   heartbeat  answers each host heartbeat with seq_num + 1 (and, if the
 *              OS set one, its application state);
 *   shutdown   acknowledges a shutdown / reboot / (hibernate) request, then
 *              performs it through the port's power_off / reboot (or the
 *              OS's own hook); unknown flags are refused with E_FAIL;
 *   timesync   SYNC steps the guest wall clock (port wallclock_step),
 *              SAMPLE slews it (wallclock_slew); times before 1970 or more
 *              than 100 years ahead are refused;
 *   kvp        serves the host's GET / SET / DELETE / ENUMERATE on the
 *              pools, publishes what Linux's KVP daemon publishes in the
 *              auto pool, and its own UTC time in the guest pool
 *              (IC_KVP_KEY_GUEST_TIME); host-written records are kept
 *              across restarts through the OS's load/save callbacks.
 *
 * Every IC message from the host is copied once into private memory,
 * validated, then used; a bad one is answered with a failure status (when
 * it has a header to answer), logged (rate-limited) and counted in
 * struct ic_stats, and changes no guest state.
 *
 * Contexts (as in vmbus/vmbus.h): "thread" may sleep; "any" never sleeps.
 * Work that may sleep (clock steps, power actions, KVP requests, saving
 * the KVP store) runs through the port's defer() in thread context, or
 * inline from vmbus_poll() in a polled port.
 *
 * Freestanding: only compiler headers, hv/ and vmbus/ headers.
 */
#ifndef VMBUS_IC_H
#define VMBUS_IC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/errno.h"
#include "vmbus/vmbus.h"

struct ic_services;

/* Services, as bits for ic_config.icc_services and as indexes. */
enum ic_service {
	IC_SVC_HEARTBEAT = 0,
	IC_SVC_SHUTDOWN = 1,
	IC_SVC_TIMESYNC = 2,
	IC_SVC_KVP = 3,
	IC_SVC_COUNT
};
#define IC_SVC_BIT(s)	(1u << (s))
#define IC_SVC_ALL	0xFu

/* Returned by the default IntegrationServicesVersion (auto pool index 1). */
#define IC_VERSION_STRING	"vmbus-ic 1.0"

/*
 * Key of the guest-pool (KVP_POOL_GUEST) record in which the guest
 * publishes its own wall clock: a REG_SZ decimal count of 100-ns units
 * since 1601-01-01 UTC (the unit of time sync's parent_time), computed when
 * the host asks. No Hyper-V message carries the guest's clock to the host;
 * this is how the host measures the guest's offset.
 */
#define IC_KVP_KEY_GUEST_TIME	"GuestSystemTimeUtc"

/* Limits (bytes of UTF-8, NUL included) for the UTF-8 API below: a key is
 * at most 255 UTF-16 units, a string value at most 1023. */
#define IC_KVP_KEY_UTF8_MAX	(255u * 3u + 1u)
#define IC_KVP_VALUE_UTF8_MAX	(1023u * 3u + 1u)

/* Power actions handed to icc_shutdown_action. */
enum ic_power_action {
	IC_POWER_OFF = 0,
	IC_POWER_REBOOT = 1,
	IC_POWER_HIBERNATE = 2,
};

/* ---- configuration -------------------------------------------------------- */

struct ic_kvp_config {
	/*
	 * Auto-pool strings (UTF-8), published at the index the host's
	 * auto-pool walk expects (spec 4.8, L's convention). The pointers are
	 * kept, not copied: they must stay valid until ic_services_free().
	 * NULL publishes an empty value.
	 */
	const char *kc_fqdn;		/* FullyQualifiedDomainName */
	const char *kc_os_name;		/* OSName */
	const char *kc_os_version;	/* OSVersion (e.g. kernel release) */
	const char *kc_os_build;	/* OSBuildNumber */
	const char *kc_os_major;	/* OSMajorVersion */
	const char *kc_os_minor;	/* OSMinorVersion */
	const char *kc_proc_arch;	/* ProcessorArchitecture */
	const char *kc_ic_version;	/* NULL: IC_VERSION_STRING */
	/*
	 * NetworkAddressIPv4 / NetworkAddressIPv6 (a hook for when networking
	 * exists): write the NIC addresses of `family` (4 or 6) as UTF-8,
	 * ';'-separated, into buf[0..size) and return the length without NUL,
	 * or a negative code (published empty). Called in thread context with
	 * no IC lock held. May be NULL.
	 */
	int (*kc_net_addrs)(void *arg, int family, char *buf, uint32_t size);
	/*
	 * Persistence of the stored records (host-written pools and the
	 * guest pool). The freestanding driver does no file I/O: the OS
	 * supplies both callbacks (the reference posix guest writes a file).
	 *   kc_load: at ic_services_register(), fill buf[0..size) with the
	 *            blob saved last and set *len; return 0, or a negative
	 *            code when there is nothing (start empty). The blob is
	 *            untrusted: it is validated and dropped if corrupt.
	 *   kc_save: after every change, in thread context, with a private
	 *            blob; return 0 or a negative code (logged, counted).
	 *            Never called concurrently with itself (a change made
	 *            during a save is saved right after it).
	 * Either may be NULL (no persistence).
	 */
	int (*kc_load)(void *arg, void *buf, uint32_t size, uint32_t *len);
	int (*kc_save)(void *arg, const void *buf, uint32_t len);
	/*
	 * The host set or deleted `key` (UTF-8) in `pool`. Thread context,
	 * no IC lock held. May be NULL.
	 */
	void (*kc_changed)(void *arg, uint8_t pool, const char *key,
			   bool deleted);
	void *kc_arg;
	/* Records stored over all writable pools; 0 = 64, at most 1024. */
	uint32_t kc_max_records;
	/* Do not publish IC_KVP_KEY_GUEST_TIME. */
	bool kc_no_time_key;
};

struct ic_config {
	/* IC_SVC_BIT() mask of the services to register; 0 = IC_SVC_ALL. */
	uint32_t icc_services;

	/*
	 * Shutdown: perform `action` (thread context, after the reply to the
	 * host went out). NULL = the port's power_off / reboot; hibernate is
	 * then refused (E_FAIL) as the port has no hibernate. Return only on
	 * failure (a negative code, logged and counted).
	 */
	int (*icc_shutdown_action)(void *arg, enum ic_power_action action);
	void *icc_shutdown_arg;
	/* Accept the hibernate flag (shutdown version >= 3.2 only). */
	bool icc_hibernate;

	/*
	 * Time sync. A SAMPLE whose correction exceeds icc_sample_step_ns is
	 * stepped like a SYNC (Linux's opt-in for hosts that omit SYNC after
	 * resume); 0 = 5 s, UINT64_MAX = always slew. icc_timesync_passive:
	 * validate and answer, record, but never touch the clock (for a guest
	 * that runs its own NTP).
	 */
	uint64_t icc_sample_step_ns;
	bool icc_timesync_passive;

	struct ic_kvp_config icc_kvp;
};

/* Fill *cfg with the defaults (all services, no hooks). Never fails. */
void ic_config_init(struct ic_config *cfg);

/* ---- life cycle ------------------------------------------------------------- */

/*
 * ic_services_register - allocate the IC state with the bus's port
 * (zalloc), load the KVP store (kc_load), and register one VMBus driver per
 * selected service on vb. Devices already offered are attached now (the
 * core probes them in this call); later offers as they come.
 * At most one channel per service is served; a second offer of the same
 * class is declined (probe fails with -VMBUS_EBUSY).
 *   cfg: may be NULL (defaults); copied (the kc_* strings are not).
 * Context: thread. Returns 0 and *out, or:
 *   -VMBUS_EINVAL  NULL vb/out, bad cfg (*out untouched);
 *   -VMBUS_ENOMEM  allocation failed (*out untouched, nothing registered);
 *   another code from vmbus_driver_register (e.g. -VMBUS_ENOSPC, the
 *                  core's driver table is full): the core cannot unregister
 *                  a driver, so the services registered before the failure
 *                  stay registered and working, and *out IS set: free it
 *                  with ic_services_free() after vmbus_destroy() as usual.
 */
int ic_services_register(struct vmbus *vb, const struct ic_config *cfg,
    struct ic_services **out);

/*
 * ic_services_free - free the state. Call after vmbus_destroy(vb) (the
 * core holds the driver structs until then); the port must still be
 * valid. Waits (bounded, 5 s on the port clock) for deferred IC work
 * still queued; if some never runs, the state is leaked rather than
 * freed under it. NULL is a no-op. Context: thread.
 */
void ic_services_free(struct ic_services *ics);

/* ---- status ------------------------------------------------------------- */

/* Per-service counters (a snapshot). */
struct ic_stats {
	bool     is_attached;		/* a channel is bound and open */
	bool     is_negotiated;		/* versions below are valid */
	uint16_t is_fw_major, is_fw_minor;	/* framework version */
	uint16_t is_msg_major, is_msg_minor;	/* service version */
	uint64_t is_messages;		/* IC messages received */
	uint64_t is_replies;		/* replies sent */
	uint64_t is_negotiations;	/* successful negotiations */
	uint64_t is_failed_replies;	/* replies with a failure status */
	uint64_t is_malformed;		/* short / bad sizes / bad fields */
	uint64_t is_unknown;		/* unknown message type or packet */
	uint64_t is_not_negotiated;	/* service message before negotiate */
	uint64_t is_dropped;		/* could not be answered (no header) */
	uint64_t is_send_errors;	/* reply could not be sent */
	uint64_t is_defer_failures;	/* port defer failed: ran inline */
};

/* Snapshot of service svc's counters. Any. 0, -VMBUS_EINVAL. */
int ic_get_stats(struct ic_services *ics, enum ic_service svc,
    struct ic_stats *out);

/* Heartbeat: set the application state reported in replies that carry
 * the field (IC_HEARTBEAT_APP_*; 0 = leave the host's bytes). Any. */
void ic_heartbeat_set_app_state(struct ic_services *ics, uint32_t state);
/* Last sequence number received (0 = none yet). Any. */
uint64_t ic_heartbeat_last_seq(struct ic_services *ics);

/* Shutdown: what the last accepted request asked. */
struct ic_shutdown_status {
	uint64_t ss_requests;		/* requests received */
	uint64_t ss_accepted;		/* acknowledged with S_OK */
	uint64_t ss_refused;		/* answered E_FAIL */
	uint64_t ss_action_failures;	/* the action returned */
	uint32_t ss_last_flags;		/* IC_SHUTDOWN_FLAG_* of the last one */
	uint32_t ss_last_reason;
	char     ss_last_message[128];	/* printable ASCII, NUL-terminated */
};
int ic_shutdown_get_status(struct ic_services *ics,
    struct ic_shutdown_status *out);

/* Time sync: what the service did with the host's samples. */
struct ic_timesync_status {
	uint64_t ts_syncs;		/* SYNC messages accepted */
	uint64_t ts_samples;		/* SAMPLE (or probe) messages accepted */
	uint64_t ts_rejected;		/* out-of-range times refused */
	uint64_t ts_steps;		/* wallclock_step calls that succeeded */
	uint64_t ts_slews;		/* wallclock_slew calls that succeeded */
	uint64_t ts_clock_errors;	/* step/slew/reference reads failed */
	uint64_t ts_coalesced;		/* samples replaced before applied */
	uint64_t ts_last_parent_time;	/* 100 ns since 1601, last accepted */
	int64_t  ts_last_correction_ns;	/* host - guest at the last apply */
};
int ic_timesync_get_status(struct ic_services *ics,
    struct ic_timesync_status *out);

/* ---- KVP: the guest's own view of the pools --------------------------------- */

/* Value types of ic_kvp_get (KVP_REG_* of hv/icmsg.h). */

/*
 * ic_kvp_get - look `key` (UTF-8) up in `pool` (KVP_POOL_EXTERNAL, _GUEST,
 * _AUTO or _AUTO_EXTERNAL). A string value comes back as UTF-8, an integer
 * as its decimal text; *type (may be NULL) gets the KVP_REG_* type.
 *   buf, size: out buffer; the value is always NUL-terminated.
 * Context: thread (the auto pool may call kc_net_addrs).
 * Returns the value length without NUL, or -VMBUS_ENOENT (no such key),
 * -VMBUS_ENOBUFS (buf too small; nothing written), -VMBUS_EINVAL (bad
 * pool, key empty or too long, not UTF-8), -VMBUS_ENODEV (KVP not
 * registered).
 */
int ic_kvp_get(struct ic_services *ics, uint8_t pool, const char *key,
    uint32_t *type, char *buf, uint32_t size);

/*
 * ic_kvp_set - create or replace a REG_SZ record `key` = `value` (UTF-8)
 * in the guest pool (KVP_POOL_GUEST: the pool the guest writes and the
 * host reads), then save the store. Context: thread. Returns 0,
 * -VMBUS_EINVAL (bad pool, key/value empty or too long, not UTF-8,
 * the reserved IC_KVP_KEY_GUEST_TIME), -VMBUS_ENOSPC (store full),
 * -VMBUS_ENODEV.
 */
int ic_kvp_set(struct ic_services *ics, uint8_t pool, const char *key,
    const char *value);

/* ic_kvp_delete - remove `key` from the guest pool and save. Thread.
 * Returns 0, -VMBUS_ENOENT, -VMBUS_EINVAL, -VMBUS_ENODEV. */
int ic_kvp_delete(struct ic_services *ics, uint8_t pool, const char *key);

/*
 * ic_kvp_enumerate - the record at `index` of `pool` in the order the
 * host's ENUMERATE walk sees it. key/value as for ic_kvp_get (either buffer
 * may be NULL with size 0 to skip it). Thread. Returns 0, -VMBUS_ENOENT
 * (index past the end), -VMBUS_ENOBUFS, -VMBUS_EINVAL, -VMBUS_ENODEV.
 */
int ic_kvp_enumerate(struct ic_services *ics, uint8_t pool, uint32_t index,
    char *key, uint32_t key_size, char *value, uint32_t value_size);

/* KVP store counters. */
struct ic_kvp_status {
	uint32_t ks_records;		/* stored records now */
	uint32_t ks_max_records;
	uint64_t ks_host_sets;		/* SET from the host accepted */
	uint64_t ks_host_deletes;
	uint64_t ks_host_gets;		/* GET and ENUMERATE answered */
	uint64_t ks_refused;		/* requests answered with a failure */
	uint64_t ks_busy;		/* a request came while one was pending */
	uint64_t ks_saves;		/* kc_save calls that succeeded */
	uint64_t ks_save_errors;
	uint64_t ks_load_errors;	/* corrupt or unreadable blob at load */
	uint32_t ks_loaded;		/* records restored at register */
};
int ic_kvp_get_status(struct ic_services *ics, struct ic_kvp_status *out);

#endif /* VMBUS_IC_H */
