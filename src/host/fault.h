/*
 * host/fault.h - named, switchable fault hooks (spec/hostile-host.md, STYLE
 * 12): the host analogue of SQLite's crash VFS. Each place where the host
 * can misbehave towards a guest checks a hook by name; tests switch hooks
 * on and off at runtime through the control socket.
 *
 * A hook has a name, a help text, an enabled flag, up to
 * HVS_FAULT_MAX_PARAMS integer parameters, an optional VM filter, and
 * counters (checks while enabled, hits). Two parameter names are built in:
 *   "after" = N  let the first N matching checks pass, then fire;
 *   "times" = N  fire at most N times, then disable itself (0 = no limit).
 * Every other parameter is the hook user's (e.g. "field", "value").
 *
 * Thread-safe (one mutex). Checking a disabled hook takes no lock: one
 * atomic load while no hook at all is enabled, else a lock-free lookup
 * of the hook's own flag (hvs_fault_enabled), so per-packet paths stay
 * cheap while some other hook is on.
 */
#ifndef HVS_FAULT_H
#define HVS_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#define HVS_FAULT_MAX_HOOKS      128u
#define HVS_FAULT_NAME_MAX       48u  /* bytes including NUL */
#define HVS_FAULT_HELP_MAX       256u  /* bytes including NUL */
#define HVS_FAULT_MAX_PARAMS     8u
#define HVS_FAULT_PARAM_NAME_MAX 32u  /* bytes including NUL */
#define HVS_FAULT_VM_MAX         65u  /* bytes including NUL */

struct hvs_fault_param {
	char fp_name[HVS_FAULT_PARAM_NAME_MAX];
	int64_t fp_value;
};

/* What a firing hook hands its user. */
struct hvs_fault_args {
	uint64_t fa_hit;         /* 1 for the first time this hook fired */
	unsigned fa_nparams;
	struct hvs_fault_param fa_params[HVS_FAULT_MAX_PARAMS];
};

/* Snapshot of one hook, for listings. */
struct hvs_fault_info {
	char fi_name[HVS_FAULT_NAME_MAX];
	char fi_help[HVS_FAULT_HELP_MAX];
	char fi_vm[HVS_FAULT_VM_MAX];  /* "" = every VM */
	bool fi_enabled;
	uint64_t fi_checks;      /* checks while enabled (incl. "after" skips) */
	uint64_t fi_hits;        /* times it fired since start */
	unsigned fi_nparams;
	struct hvs_fault_param fi_params[HVS_FAULT_MAX_PARAMS];
};

/*
 * Register a hook (idempotent: registering an existing name keeps its
 * state and updates an empty help text). Names: 1..47 bytes of
 * [a-z0-9_.-]. Returns 0, -EINVAL (bad name), -ENOSPC (table full).
 * The first hooks ("malformed_offer", "bad_ring_index", "withhold_reply",
 * and the partition's) are registered at start-up.
 */
int hvs_fault_register(const char *name, const char *help);

/*
 * Enable or disable a hook and replace its parameters and VM filter (vm
 * NULL or "" = every VM). Enabling resets the "after"/"times" progress.
 * Returns 0, -ENOENT (unknown name), -EINVAL (bad parameter name, too many
 * parameters, negative "after"/"times", VM name too long).
 */
int hvs_fault_set(const char *name, bool enable,
		  const struct hvs_fault_param *params, unsigned nparams,
		  const char *vm);

/*
 * Check hook `name` for any VM / for VM `vm`: true if it fires now; then
 * *out (if not NULL) receives the parameters and hit number. Unknown names
 * never fire.
 */
bool hvs_fault_check(const char *name, struct hvs_fault_args *out);
bool hvs_fault_check_vm(const char *name, const char *vm,
			struct hvs_fault_args *out);

/*
 * True if hook `name` is enabled (for some VM or all): a lock-free hint
 * for hot paths, e.g. to skip building arguments for a check. A true
 * answer may be stale by the time hvs_fault_check*() runs, which decides.
 * Unknown names are never enabled.
 */
bool hvs_fault_enabled(const char *name);

/* Parameter `pname` of a fired hook, or dflt if absent. */
int64_t hvs_fault_param(const struct hvs_fault_args *a, const char *pname,
			int64_t dflt);

/* Snapshot of hook `name`: 0 or -ENOENT. */
int hvs_fault_get(const char *name, struct hvs_fault_info *out);

/* Call fn for every hook in registration order; stops at a non-zero
 * return and returns it. fn runs without the registry lock held. */
int hvs_fault_foreach(int (*fn)(void *ctx, const struct hvs_fault_info *fi),
		      void *ctx);

/* Disable every hook and zero its counters (tests). */
void hvs_fault_reset_all(void);

/*
 * Filtered check: as hvs_fault_check_vm(), but each (key, value) pair in
 * keys[]/vals[] filters: if the hook has a parameter named key whose value
 * is not 0 and not -1 ("any"), it must equal value, or the hook neither
 * fires nor counts the event ("after"/"times" count matching events only).
 */
bool hvs_fault_check_match(const char *name, const char *vm,
			   const char *const *keys, const int64_t *vals,
			   unsigned nkeys, struct hvs_fault_args *out);

/*
 * Apply a field mutation a fired hook describes to buf[0..len): params
 * off (byte offset, default 0), width (1, 2, 4 or 8 bytes, little-endian;
 * default 4), op (0 set, 1 add, 2 xor = bit flip; default 0) and value
 * (default 0). Returns true and the old and new field values if the field
 * lies inside the buffer, else false (buffer unchanged).
 */
bool hvs_fault_mutate(const struct hvs_fault_args *a, uint8_t *buf,
		      uint32_t len, uint64_t *was, uint64_t *now);

/* ---- the host's send paths (host -> guest) -------------------------------
 *
 * The hooks below are applied where the host writes to a guest; the code
 * there hands its message or packet to these functions. Every hook's
 * parameters are in its help text (`hvsim ctl faults`); a filter parameter
 * that is absent, 0 or -1 matches anything. The packet hooks also select
 * by content: moff (byte offset in the packet, descriptor included),
 * mwidth (1/2/4/8, default 4) and mval (the value that field must have).
 */

#define HVS_FAULT_MSG_MAX 240u  /* HV_MESSAGE_PAYLOAD_MAX */

/*
 * A SynIC message (payload = a VMBus channel message, its type in bytes
 * 0-3) about to be posted to VM vm. Applies drop_message, msg.corrupt,
 * msg.resize and msg.duplicate; a changed payload is built in scratch and
 * *payload and *len point at it. Returns how many copies to post (0 = drop).
 */
unsigned hvs_fault_msg(const char *vm, const void **payload, uint32_t *len,
		       uint8_t scratch[HVS_FAULT_MSG_MAX]);

struct vmbus_ring;
struct vmbus_iov;
struct hvs_partition;

/* One channel as the send-path hooks see it. */
struct hvs_fault_chan {
	const char *fc_vm;
	const char *fc_name;            /* for log lines, e.g. "vm0/echo0" */
	uint32_t fc_relid;
	const void *fc_key;             /* identifies the open channel */
	struct vmbus_ring *fc_out;      /* host -> guest ring (host writes) */
	struct vmbus_ring *fc_in;       /* guest -> host ring (host reads) */
	struct hvs_partition *fc_p;     /* for flood_events (NULL: none) */
	uint32_t fc_vp;                 /* the channel's target vCPU */
	uint32_t fc_sint;
};

/* Writes one packet (descriptor included) to the channel's ring. */
typedef int (*hvs_fault_write_fn)(void *ctx, const struct vmbus_iov *iov,
				  unsigned iovcnt);

/* True if a packet hook may be on: cheap, for the per-packet path. */
bool hvs_fault_pkt_enabled(void);

/*
 * Send one packet through the packet hooks (pkt.corrupt, pkt.resize,
 * pkt.drop, pkt.duplicate, pkt.delay, pkt.inject, ring.scribble,
 * mutate_after_read, flood_events): calls wr(ctx, ...) zero or more times
 * with the (possibly changed) packet, held and injected packets. Returns
 * wr's first error, else 0 (a dropped or held packet counts as sent).
 */
int hvs_fault_pkt_send(const struct hvs_fault_chan *fc,
		       const struct vmbus_iov *iov, unsigned iovcnt,
		       hvs_fault_write_fn wr, void *ctx);

/*
 * chan.stall: true while the host must not consume the guest's packets
 * on this channel (the receive path then reports an empty ring).
 */
bool hvs_fault_chan_stalled(const char *vm, uint32_t relid);

/*
 * The channel identified by key is closing (its rings are about to be
 * unmapped): the mutator stops touching it and its held packets go. Must
 * be called before the ring memory goes away.
 */
void hvs_fault_chan_gone(const void *key);

#endif /* HVS_FAULT_H */
