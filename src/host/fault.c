/*
 * host/fault.c - fault hook registry (see fault.h).
 */
#define _GNU_SOURCE  /* clock_gettime */
#include "fault.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common/ring.h"
#include "hv/vmbus_pkt.h"
#include "log.h"
#include "partition.h"
#include "vmbus/errno.h"

struct fault_hook {
	char fh_name[HVS_FAULT_NAME_MAX];
	char fh_help[HVS_FAULT_HELP_MAX];
	char fh_vm[HVS_FAULT_VM_MAX];
	/* Written under fault_lock, read without it (hvs_fault_enabled). */
	atomic_bool fh_enabled;
	uint64_t fh_checks;
	uint64_t fh_hits;
	uint64_t fh_after;       /* skip this many matching checks */
	uint64_t fh_times;       /* fire at most this many times, 0 = no limit */
	uint64_t fh_fired;       /* fired since enabled */
	unsigned fh_nparams;
	struct hvs_fault_param fh_params[HVS_FAULT_MAX_PARAMS];
};

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault_hook hooks[HVS_FAULT_MAX_HOOKS];
/*
 * Hooks [0, nhooks) are registered. A slot's name is written before
 * nhooks is raised past it (release) and never changes afterwards, so
 * hvs_fault_enabled() reads names and flags without the lock.
 */
static atomic_uint nhooks;
static atomic_uint nenabled;  /* fast path: no lock while zero */
static bool builtins_done;

static const struct {
	const char *name;
	const char *help;
} builtin_hooks[] = {
	/* Parameters as the hooks' users read them (vmbus_server.h). */
	{ "malformed_offer", "vmbus server: corrupt an OFFERCHANNEL: field 0 = "
	  "payload size := value (8..240, default 100), 1 = child_relid := "
	  "value (default 0); relid = that offer only" },
	{ "bad_ring_index", "vmbus server: after a packet to channel relid "
	  "(0 = any), publish write_index = value: -1 data size (default), "
	  "-2 size + 8, -3 unaligned, else literal" },
	{ "withhold_reply", "vmbus server: do not send host messages of VMBus "
	  "type `type` (e.g. 6 OPENCHANNEL_RESULT, 10 GPADL_CREATED; "
	  "0/absent = any)" },
	{ "delay_message", "vmbus server: hold host messages of VMBus type "
	  "`type` (0/absent = any) for `ms` milliseconds (default 500) "
	  "before posting; later messages wait behind them (order kept)" },
	{ "withhold_interrupts", "partition: write SynIC messages/flags but "
	  "ring no doorbell" },
	{ "storm_interrupts", "partition: ring each doorbell `count` extra "
	  "times (default 16)" },
	{ "drop_message", "partition: drop host->guest SynIC messages of "
	  "VMBus type `type` (default -1 = any)" },
	/*
	 * Send-path hooks (applied by hvs_fault_msg / hvs_fault_pkt_send).
	 * A field mutation is off, width (1/2/4/8, default 4), op (0 set,
	 * 1 add, 2 xor = bit flip), value; filters absent/0/-1 = any.
	 * Every pkt.* hook (and ring.scribble, mutate_after_read,
	 * flood_events) also takes moff/mwidth/mval: only packets whose
	 * field at byte moff equals mval.
	 */
	{ "msg.corrupt", "SynIC message of VMBus type `type`: field at "
	  "byte `off` (width 1/2/4/8, default 4) op 0 set/1 add/2 xor "
	  "`value`" },
	{ "msg.resize", "SynIC message of type `type`: payload length := "
	  "`len` (1..240; longer ones are zero-extended)" },
	{ "msg.duplicate", "SynIC message of type `type`: post it `count` "
	  "more times (default 1, at most 64): duplicates and floods" },
	{ "pkt.corrupt", "ring packet to channel `relid` of packet type "
	  "`ptype` (6 inband, 7 xfer pages, 11 completion): field at byte "
	  "`off` of the packet (descriptor included), width/op/value as "
	  "msg.corrupt" },
	{ "pkt.resize", "ring packet (relid, ptype): cut or zero-extend to "
	  "`len` bytes (rounded up to 8; len8 follows, offset8 is kept)" },
	{ "pkt.drop", "ring packet (relid, ptype) is not sent: a withheld "
	  "reply or completion" },
	{ "pkt.duplicate", "ring packet (relid, ptype) is sent `count` more "
	  "times (default 1)" },
	{ "pkt.delay", "ring packet (relid, ptype) is held and sent after "
	  "the next `count` packets of its channel (default 1 = reorder)" },
	{ "pkt.inject", "with a packet (relid, ptype), also send an "
	  "unsolicited one: type `itype` (default 11), trans id `tid` "
	  "(default 0), `len` zero payload bytes, `flags`; `before` 1 = "
	  "ahead of it" },
	{ "ring.scribble", "after a packet to `relid`, write `value` into "
	  "the guest's field `field`: 0 read_index, 1 interrupt_mask (host->"
	  "guest ring), 2 write_index, 3 pending_send_sz (guest->host ring)" },
	{ "mutate_after_read", "after a packet to `relid`, a thread flips "
	  "random bytes of it from byte `from` (default 16) while the guest "
	  "has not consumed it, for at most `window` us (default 20000)" },
	{ "flood_events", "with a packet to `relid`, set event flag `flag` "
	  "(default 200: no channel) and the channel's own `count` times "
	  "each (default 8), each with a doorbell (VMBus 2.4+)" },
	{ "chan.stall", "host stops consuming the guest's packets on `relid` "
	  "while on (no reply, the guest's ring fills)" },
	{ "rescind_at", "vmbus server: on guest message type `type` (e.g. 5 "
	  "OPENCHANNEL, 8 GPADL_HEADER) rescind its channel (or `relid`) "
	  "before handling it" },
};

static bool valid_name(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (n + 1 >= max)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* Lock-free: see nhooks. */
static struct fault_hook *find(const char *name)
{
	unsigned n = atomic_load_explicit(&nhooks, memory_order_acquire);

	for (unsigned i = 0; i < n; i++)
		if (!strcmp(hooks[i].fh_name, name))
			return &hooks[i];
	return NULL;
}

/* fault_lock held: switch h and keep nenabled in step. */
static void set_enabled_locked(struct fault_hook *h, bool on)
{
	if (atomic_load_explicit(&h->fh_enabled, memory_order_relaxed) == on)
		return;
	atomic_store_explicit(&h->fh_enabled, on, memory_order_relaxed);
	if (on)
		atomic_fetch_add(&nenabled, 1);
	else
		atomic_fetch_sub(&nenabled, 1);
}

bool hvs_fault_enabled(const char *name)
{
	struct fault_hook *h;

	if (atomic_load_explicit(&nenabled, memory_order_relaxed) == 0 || !name)
		return false;
	h = find(name);
	return h && atomic_load_explicit(&h->fh_enabled, memory_order_relaxed);
}

static int register_locked(const char *name, const char *help)
{
	struct fault_hook *h;

	if (!valid_name(name, HVS_FAULT_NAME_MAX))
		return -VMBUS_EINVAL;
	h = find(name);
	if (!h) {
		unsigned n = atomic_load_explicit(&nhooks, memory_order_relaxed);

		if (n >= HVS_FAULT_MAX_HOOKS)
			return -VMBUS_ENOSPC;
		h = &hooks[n];
		memset(h, 0, sizeof(*h));
		strcpy(h->fh_name, name);
		/* NOTE: name first, then publish the slot. */
		atomic_store_explicit(&nhooks, n + 1, memory_order_release);
	}
	if (help && !h->fh_help[0]) {
		strncpy(h->fh_help, help, sizeof(h->fh_help) - 1);
		h->fh_help[sizeof(h->fh_help) - 1] = 0;
	}
	return 0;
}

static void builtins_locked(void)
{
	if (builtins_done)
		return;
	builtins_done = true;
	for (size_t i = 0; i < sizeof(builtin_hooks) / sizeof(builtin_hooks[0]);
	     i++)
		register_locked(builtin_hooks[i].name, builtin_hooks[i].help);
}

int hvs_fault_register(const char *name, const char *help)
{
	int r;

	pthread_mutex_lock(&fault_lock);
	builtins_locked();
	r = register_locked(name, help);
	pthread_mutex_unlock(&fault_lock);
	return r;
}

int hvs_fault_set(const char *name, bool enable,
		  const struct hvs_fault_param *params, unsigned nparams,
		  const char *vm)
{
	struct fault_hook *h;
	int64_t after = 0, times = 0;

	if (nparams > HVS_FAULT_MAX_PARAMS || (nparams && !params))
		return -VMBUS_EINVAL;
	if (vm && strlen(vm) >= HVS_FAULT_VM_MAX)
		return -VMBUS_EINVAL;
	for (unsigned i = 0; i < nparams; i++) {
		if (!valid_name(params[i].fp_name, HVS_FAULT_PARAM_NAME_MAX))
			return -VMBUS_EINVAL;
		if (!strcmp(params[i].fp_name, "after"))
			after = params[i].fp_value;
		else if (!strcmp(params[i].fp_name, "times"))
			times = params[i].fp_value;
		if (after < 0 || times < 0)
			return -VMBUS_EINVAL;
	}
	pthread_mutex_lock(&fault_lock);
	builtins_locked();
	h = find(name ? name : "");
	if (!h) {
		pthread_mutex_unlock(&fault_lock);
		return -VMBUS_ENOENT;
	}
	h->fh_nparams = nparams;
	if (nparams)
		memcpy(h->fh_params, params, nparams * sizeof(*params));
	for (unsigned i = 0; i < nparams; i++)
		h->fh_params[i].fp_name[HVS_FAULT_PARAM_NAME_MAX - 1] = 0;
	h->fh_after = (uint64_t)after;
	h->fh_times = (uint64_t)times;
	h->fh_fired = 0;
	if (vm)
		strcpy(h->fh_vm, vm);
	else
		h->fh_vm[0] = 0;
	/* NOTE: the flag last, once the parameters are in place. */
	set_enabled_locked(h, enable);
	pthread_mutex_unlock(&fault_lock);
	return 0;
}

/* fault_lock held: the hook's filter parameters accept these values. */
static bool match_locked(const struct fault_hook *h, const char *const *keys,
			 const int64_t *vals, unsigned nkeys)
{
	for (unsigned k = 0; k < nkeys; k++)
		for (unsigned i = 0; i < h->fh_nparams; i++) {
			int64_t v = h->fh_params[i].fp_value;
			if (strcmp(h->fh_params[i].fp_name, keys[k]) == 0 &&
			    v != 0 && v != -1 && v != vals[k])
				return false;
		}
	return true;
}

bool hvs_fault_check_match(const char *name, const char *vm,
			   const char *const *keys, const int64_t *vals,
			   unsigned nkeys, struct hvs_fault_args *out)
{
	struct fault_hook *h;
	bool fire = false;

	/* Lock-free answer for the common case: this hook is off. */
	if (!hvs_fault_enabled(name))
		return false;
	pthread_mutex_lock(&fault_lock);
	h = find(name);
	if (!h || !atomic_load_explicit(&h->fh_enabled, memory_order_relaxed))
		goto out;
	if (h->fh_vm[0] && (!vm || strcmp(h->fh_vm, vm)))
		goto out;
	if (!match_locked(h, keys, vals, nkeys))
		goto out;
	h->fh_checks++;
	if (h->fh_after > 0) {
		h->fh_after--;
		goto out;
	}
	fire = true;
	h->fh_hits++;
	h->fh_fired++;
	if (out) {
		out->fa_hit = h->fh_fired;
		out->fa_nparams = h->fh_nparams;
		memcpy(out->fa_params, h->fh_params,
		       h->fh_nparams * sizeof(h->fh_params[0]));
	}
	if (h->fh_times && h->fh_fired >= h->fh_times)
		set_enabled_locked(h, false);
out:
	pthread_mutex_unlock(&fault_lock);
	return fire;
}

bool hvs_fault_check_vm(const char *name, const char *vm,
			struct hvs_fault_args *out)
{
	return hvs_fault_check_match(name, vm, NULL, NULL, 0, out);
}

bool hvs_fault_check(const char *name, struct hvs_fault_args *out)
{
	return hvs_fault_check_vm(name, NULL, out);
}

int64_t hvs_fault_param(const struct hvs_fault_args *a, const char *pname,
			int64_t dflt)
{
	if (!a)
		return dflt;
	for (unsigned i = 0; i < a->fa_nparams && i < HVS_FAULT_MAX_PARAMS; i++)
		if (!strcmp(a->fa_params[i].fp_name, pname))
			return a->fa_params[i].fp_value;
	return dflt;
}

static void snapshot(const struct fault_hook *h, struct hvs_fault_info *fi)
{
	memset(fi, 0, sizeof(*fi));
	memcpy(fi->fi_name, h->fh_name, sizeof(fi->fi_name));
	memcpy(fi->fi_help, h->fh_help, sizeof(fi->fi_help));
	memcpy(fi->fi_vm, h->fh_vm, sizeof(fi->fi_vm));
	fi->fi_enabled = atomic_load_explicit(&h->fh_enabled,
					      memory_order_relaxed);
	fi->fi_checks = h->fh_checks;
	fi->fi_hits = h->fh_hits;
	fi->fi_nparams = h->fh_nparams;
	memcpy(fi->fi_params, h->fh_params, sizeof(fi->fi_params));
}

int hvs_fault_get(const char *name, struct hvs_fault_info *out)
{
	struct fault_hook *h;
	int r = -VMBUS_ENOENT;

	pthread_mutex_lock(&fault_lock);
	builtins_locked();
	h = find(name ? name : "");
	if (h) {
		snapshot(h, out);
		r = 0;
	}
	pthread_mutex_unlock(&fault_lock);
	return r;
}

int hvs_fault_foreach(int (*fn)(void *ctx, const struct hvs_fault_info *fi),
		      void *ctx)
{
	struct hvs_fault_info fi;

	for (unsigned i = 0;; i++) {
		pthread_mutex_lock(&fault_lock);
		builtins_locked();
		if (i >= atomic_load_explicit(&nhooks, memory_order_relaxed)) {
			pthread_mutex_unlock(&fault_lock);
			return 0;
		}
		snapshot(&hooks[i], &fi);
		pthread_mutex_unlock(&fault_lock);
		int r = fn(ctx, &fi);
		if (r)
			return r;
	}
}

static void sendpath_reset(void);

void hvs_fault_reset_all(void)
{
	pthread_mutex_lock(&fault_lock);
	builtins_locked();
	for (unsigned i = 0; i < atomic_load_explicit(&nhooks,
						      memory_order_relaxed); i++) {
		struct fault_hook *h = &hooks[i];
		set_enabled_locked(h, false);
		h->fh_checks = h->fh_hits = h->fh_fired = 0;
		h->fh_after = h->fh_times = 0;
		h->fh_nparams = 0;
		h->fh_vm[0] = 0;
	}
	pthread_mutex_unlock(&fault_lock);
	sendpath_reset();
}

/* ---- the host's send paths ------------------------------------------------ */

#define LOG_FIRST     5u     /* log a hook's first firings after switch-on */
#define HELD_MAX      8u     /* pkt.delay: packets held at once */
#define HELD_PKT_MAX  4096u  /* pkt.delay: larger packets are sent at once */
#define INJECT_MAX    4096u  /* pkt.inject: payload bytes */
#define PKT_MAX       (0xFFFFu * 8u)  /* len8 is 16 bits */

bool hvs_fault_mutate(const struct hvs_fault_args *a, uint8_t *buf,
		      uint32_t len, uint64_t *was, uint64_t *now)
{
	int64_t off = hvs_fault_param(a, "off", 0);
	int64_t width = hvs_fault_param(a, "width", 4);
	uint64_t v = (uint64_t)hvs_fault_param(a, "value", 0);
	uint64_t old = 0, nv;

	if (width != 1 && width != 2 && width != 4 && width != 8)
		return false;
	if (!buf || off < 0 || (uint64_t)off + (uint64_t)width > len)
		return false;
	for (int64_t i = 0; i < width; i++)
		old |= (uint64_t)buf[off + i] << (8 * i);
	switch (hvs_fault_param(a, "op", 0)) {
	case 1: nv = old + v; break;
	case 2: nv = old ^ v; break;
	default: nv = v; break;
	}
	for (int64_t i = 0; i < width; i++)
		buf[off + i] = (uint8_t)(nv >> (8 * i));
	if (width < 8)
		nv &= (UINT64_C(1) << (8 * width)) - 1;
	if (was)
		*was = old;
	if (now)
		*now = nv;
	return true;
}

static bool msg_hook(const char *name, const char *vm, uint32_t type,
		     struct hvs_fault_args *a)
{
	static const char *const keys[] = { "type" };
	int64_t v = type;

	return hvs_fault_check_match(name, vm, keys, &v, 1, a);
}

unsigned hvs_fault_msg(const char *vm, const void **payload, uint32_t *len,
		       uint8_t scratch[HVS_FAULT_MSG_MAX])
{
	struct hvs_fault_args a;
	unsigned copies = 1;
	uint32_t type = 0;
	uint64_t was, now;

	if (atomic_load_explicit(&nenabled, memory_order_relaxed) == 0)
		return 1;
	if (*len > HVS_FAULT_MSG_MAX)
		return 1;
	if (*len >= 4)
		type = hv_get_le32(*payload);
	if (msg_hook("drop_message", vm, type, &a)) {
		if (a.fa_hit <= LOG_FIRST)
			HVS_INFO(vm, "fault drop_message: type %u dropped", type);
		return 0;
	}
	if (msg_hook("msg.corrupt", vm, type, &a)) {
		if (*payload != scratch && *len)
			memcpy(scratch, *payload, *len);
		*payload = scratch;
		if (hvs_fault_mutate(&a, scratch, *len, &was, &now)) {
			if (a.fa_hit <= LOG_FIRST)
				HVS_INFO(vm, "fault msg.corrupt: type %u byte "
					 "%lld: 0x%llx -> 0x%llx", type,
					 (long long)hvs_fault_param(&a, "off", 0),
					 (unsigned long long)was,
					 (unsigned long long)now);
		} else if (a.fa_hit <= LOG_FIRST) {
			HVS_INFO(vm, "fault msg.corrupt: type %u: field outside "
				 "the %u-byte message", type, *len);
		}
	}
	if (msg_hook("msg.resize", vm, type, &a)) {
		int64_t n = hvs_fault_param(&a, "len", *len);

		if (n < 1 || n > (int64_t)HVS_FAULT_MSG_MAX)
			n = *len;
		if (*payload != scratch && *len)
			memcpy(scratch, *payload, *len);
		if ((uint32_t)n > *len)
			memset(scratch + *len, 0, (uint32_t)n - *len);
		if (a.fa_hit <= LOG_FIRST)
			HVS_INFO(vm, "fault msg.resize: type %u: %u -> %u bytes",
				 type, *len, (uint32_t)n);
		*payload = scratch;
		*len = (uint32_t)n;
	}
	if (msg_hook("msg.duplicate", vm, type, &a)) {
		int64_t n = hvs_fault_param(&a, "count", 1);

		if (n < 1 || n > 64)
			n = 1;
		copies += (unsigned)n;
		if (a.fa_hit <= LOG_FIRST)
			HVS_INFO(vm, "fault msg.duplicate: type %u posted %u "
				 "times", type, copies);
	}
	return copies;
}

/* -- packets held by pkt.delay (static: nothing to leak) -- */

struct held_pkt {
	const void *hp_key;      /* NULL = free slot */
	uint32_t hp_left;        /* packets of the channel still to pass */
	uint32_t hp_len;
	uint8_t hp_buf[HELD_PKT_MAX];
};

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held_pkt held[HELD_MAX];
static atomic_uint nheld;

/* -- the mutator thread (mutate_after_read) -- */

static struct {
	pthread_mutex_t m_lock;
	pthread_cond_t m_cv;
	bool m_started;
	bool m_armed;
	const void *m_key;
	struct hv_ring_control *m_ctl;
	uint8_t *m_data;
	uint32_t m_dsize;
	uint32_t m_pos, m_len, m_from;  /* the packet: data offset, bytes */
	uint64_t m_deadline_ns;
	uint64_t m_rng;
} mut = {
	.m_lock = PTHREAD_MUTEX_INITIALIZER,
	.m_cv = PTHREAD_COND_INITIALIZER,
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15u;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* mut.m_lock held: the armed packet lies in the unread part of the ring. */
static bool mut_unread_locked(void)
{
	uint32_t ds = mut.m_dsize;
	uint32_t rd = hv_le32(__atomic_load_n(&mut.m_ctl->rc_read_index,
					      __ATOMIC_ACQUIRE)) % ds;
	uint32_t wr = hv_le32(__atomic_load_n(&mut.m_ctl->rc_write_index,
					      __ATOMIC_ACQUIRE)) % ds;

	return (mut.m_pos + ds - rd) % ds < (wr + ds - rd) % ds;
}

static void *mutator_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mut.m_lock);
	for (;;) {
		while (!mut.m_armed)
			pthread_cond_wait(&mut.m_cv, &mut.m_lock);
		if (mono_ns() >= mut.m_deadline_ns || !mut_unread_locked() ||
		    mut.m_len <= mut.m_from) {
			mut.m_armed = false;
			continue;
		}
		uint64_t r = xorshift(&mut.m_rng);
		uint32_t o = mut.m_from + (uint32_t)(r % (mut.m_len - mut.m_from));
		uint8_t *b = mut.m_data + (mut.m_pos + o) % mut.m_dsize;
		__atomic_fetch_xor(b, (uint8_t)(1u + (r >> 32) % 255u),
				   __ATOMIC_RELAXED);
		/* NOTE: the lock is dropped between flips so that
		 * hvs_fault_chan_gone() waits for one flip at most. */
		pthread_mutex_unlock(&mut.m_lock);
		sched_yield();
		pthread_mutex_lock(&mut.m_lock);
	}
	return NULL;
}

static void mutator_arm(const struct hvs_fault_chan *fc,
			const struct hvs_fault_args *a, uint32_t pos,
			uint32_t len)
{
	int64_t from = hvs_fault_param(a, "from", 16);
	int64_t window = hvs_fault_param(a, "window", 20000);

	if (from < 0 || (uint64_t)from >= len)
		from = 0;
	if (window < 1 || window > 10000000)
		window = 20000;
	pthread_mutex_lock(&mut.m_lock);
	if (!mut.m_started) {
		pthread_attr_t at;
		pthread_t t;

		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		mut.m_started = pthread_create(&t, &at, mutator_main, NULL) == 0;
		pthread_attr_destroy(&at);
		if (!mut.m_started) {
			pthread_mutex_unlock(&mut.m_lock);
			HVS_WARN(fc->fc_vm, "fault mutate_after_read: no thread");
			return;
		}
	}
	mut.m_key = fc->fc_key;
	mut.m_ctl = fc->fc_out->rb_ctl;
	mut.m_data = fc->fc_out->rb_data;
	mut.m_dsize = fc->fc_out->rb_dsize;
	mut.m_pos = pos;
	mut.m_len = len;
	mut.m_from = (uint32_t)from;
	mut.m_deadline_ns = mono_ns() + (uint64_t)window * 1000u;
	mut.m_rng ^= (uint64_t)hvs_fault_param(a, "seed", (int64_t)a->fa_hit) *
		     0x9E3779B97F4A7C15u;
	mut.m_armed = true;
	pthread_cond_signal(&mut.m_cv);
	pthread_mutex_unlock(&mut.m_lock);
}

void hvs_fault_chan_gone(const void *key)
{
	if (!key)
		return;
	pthread_mutex_lock(&mut.m_lock);
	if (mut.m_key == key) {
		mut.m_armed = false;
		mut.m_key = NULL;
		mut.m_ctl = NULL;
		mut.m_data = NULL;
	}
	pthread_mutex_unlock(&mut.m_lock);
	if (atomic_load_explicit(&nheld, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&held_lock);
	for (unsigned i = 0; i < HELD_MAX; i++)
		if (held[i].hp_key == key) {
			held[i].hp_key = NULL;
			atomic_fetch_sub(&nheld, 1);
		}
	pthread_mutex_unlock(&held_lock);
}

/* hvs_fault_reset_all: no held packet, the mutator idle. */
static void sendpath_reset(void)
{
	pthread_mutex_lock(&mut.m_lock);
	mut.m_armed = false;
	mut.m_key = NULL;
	pthread_mutex_unlock(&mut.m_lock);
	pthread_mutex_lock(&held_lock);
	for (unsigned i = 0; i < HELD_MAX; i++)
		held[i].hp_key = NULL;
	atomic_store(&nheld, 0);
	pthread_mutex_unlock(&held_lock);
}

bool hvs_fault_pkt_enabled(void)
{
	return atomic_load_explicit(&nenabled, memory_order_relaxed) != 0 ||
	       atomic_load_explicit(&nheld, memory_order_relaxed) != 0;
}

bool hvs_fault_chan_stalled(const char *vm, uint32_t relid)
{
	static const char *const keys[] = { "relid" };
	struct hvs_fault_args a;
	int64_t v = relid;

	if (!hvs_fault_check_match("chan.stall", vm, keys, &v, 1, &a))
		return false;
	if (a.fa_hit == 1)
		HVS_INFO(vm, "fault chan.stall: relid %u: not consuming", relid);
	return true;
}

/*
 * Packet hooks filter on relid, ptype and, with `moff` set, on the
 * packet's field at byte moff (width `mwidth`, default 4) equalling `mval`
 * (e.g. a device protocol's message type; 0 cannot be asked for).
 */
static bool pkt_hook(const char *name, const struct hvs_fault_chan *fc,
		     uint16_t ptype, const uint8_t *buf, uint32_t len,
		     struct hvs_fault_args *a)
{
	static const char *const keys[] = { "relid", "ptype", "mval" };
	int64_t v[3] = { fc->fc_relid, ptype, -1 };
	struct hvs_fault_info fi;

	if (!hvs_fault_enabled(name))
		return false;
	if (hvs_fault_get(name, &fi) == 0) {
		struct hvs_fault_args p = { .fa_nparams = fi.fi_nparams };
		memcpy(p.fa_params, fi.fi_params, sizeof(p.fa_params));
		int64_t off = hvs_fault_param(&p, "moff", -1);
		int64_t w = hvs_fault_param(&p, "mwidth", 4);
		if (off >= 0) {
			uint64_t x = 0;
			v[2] = -2;  /* outside the packet: matches no mval */
			if ((w == 1 || w == 2 || w == 4 || w == 8) &&
			    (uint64_t)off + (uint64_t)w <= len) {
				for (int64_t i = 0; i < w; i++)
					x |= (uint64_t)buf[off + i] << (8 * i);
				v[2] = (int64_t)x;
			}
		}
	}
	return hvs_fault_check_match(name, fc->fc_vm, keys, v, 3, a);
}

static int write_one(hvs_fault_write_fn wr, void *ctx, const uint8_t *buf,
		     uint32_t len)
{
	struct vmbus_iov v = { .iov_base = buf, .iov_len = len };

	return wr(ctx, &v, 1);
}

static int inject(const struct hvs_fault_chan *fc,
		  const struct hvs_fault_args *a, hvs_fault_write_fn wr,
		  void *ctx)
{
	static const uint8_t zeros[INJECT_MAX];
	struct vmbus_packet_desc d;
	struct vmbus_iov v[2];
	int64_t n = hvs_fault_param(a, "len", 0);
	uint16_t t = (uint16_t)hvs_fault_param(a, "itype",
					       VMBUS_PACKET_TYPE_COMP);
	uint64_t tid = (uint64_t)hvs_fault_param(a, "tid", 0);

	if (n < 0 || n > (int64_t)INJECT_MAX)
		n = 0;
	n = (n + 7) & ~(int64_t)7;
	memset(&d, 0, sizeof(d));
	d.pd_type = hv_cpu_to_le16(t);
	d.pd_offset8 = hv_cpu_to_le16(VMBUS_PACKET_INBAND_OFFSET8);
	d.pd_len8 = hv_cpu_to_le16((uint16_t)((sizeof(d) + (uint64_t)n) / 8u));
	d.pd_flags = hv_cpu_to_le16((uint16_t)hvs_fault_param(a, "flags", 0));
	d.pd_trans_id = hv_cpu_to_le64(tid);
	v[0].iov_base = &d;
	v[0].iov_len = sizeof(d);
	v[1].iov_base = zeros;
	v[1].iov_len = (uint32_t)n;
	if (a->fa_hit <= LOG_FIRST)
		HVS_INFO(fc->fc_vm, "fault pkt.inject: %s: type %u trans id "
			 "0x%llx, %u payload bytes", fc->fc_name, t,
			 (unsigned long long)tid, (uint32_t)n);
	return wr(ctx, v, n ? 2u : 1u);
}

/* After a packet of fc's channel went out: count down and send the held
 * packets whose turn has come (in the order they were held). */
static int release_held(const struct hvs_fault_chan *fc,
			hvs_fault_write_fn wr, void *ctx, int skip)
{
	int r = 0;

	if (atomic_load_explicit(&nheld, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&held_lock);
	for (unsigned i = 0; i < HELD_MAX; i++) {
		struct held_pkt *h = &held[i];

		if (h->hp_key != fc->fc_key || (int)i == skip)
			continue;
		if (h->hp_left > 1) {
			h->hp_left--;
			continue;
		}
		int w = write_one(wr, ctx, h->hp_buf, h->hp_len);
		HVS_INFO(fc->fc_vm, "fault pkt.delay: %s: held packet sent (%d)",
			 fc->fc_name, w);
		if (w && !r)
			r = w;
		h->hp_key = NULL;
		atomic_fetch_sub(&nheld, 1);
	}
	pthread_mutex_unlock(&held_lock);
	return r;
}

/* Hold buf for pkt.delay: the slot index, or -1 if it cannot be held. */
static int hold(const struct hvs_fault_chan *fc, const uint8_t *buf,
		uint32_t len, int64_t count)
{
	int slot = -1;

	if (len > HELD_PKT_MAX || !fc->fc_key)
		return -1;
	pthread_mutex_lock(&held_lock);
	for (unsigned i = 0; i < HELD_MAX && slot < 0; i++)
		if (!held[i].hp_key)
			slot = (int)i;
	if (slot >= 0) {
		struct held_pkt *h = &held[slot];
		h->hp_key = fc->fc_key;
		h->hp_left = count < 1 || count > 1000 ? 1u : (uint32_t)count;
		h->hp_len = len;
		memcpy(h->hp_buf, buf, len);
		atomic_fetch_add(&nheld, 1);
	}
	pthread_mutex_unlock(&held_lock);
	return slot;
}

static void scribble(const struct hvs_fault_chan *fc,
		     const struct hvs_fault_args *a)
{
	int64_t field = hvs_fault_param(a, "field", 1);
	int64_t want = hvs_fault_param(a, "value", 0);
	struct vmbus_ring *r = field <= 1 ? fc->fc_out : fc->fc_in;
	uint32_t *f;
	static const char *const names[] = {
		"read_index", "interrupt_mask", "write_index", "pending_send_sz",
	};

	if (field < 0 || field > 3 || !r || !r->rb_ctl)
		return;
	switch (field) {
	case 0: f = &r->rb_ctl->rc_read_index; break;
	case 1: f = &r->rb_ctl->rc_interrupt_mask; break;
	case 2: f = &r->rb_ctl->rc_write_index; break;
	default: f = &r->rb_ctl->rc_pending_send_sz; break;
	}
	uint32_t cur = hv_le32(__atomic_load_n(f, __ATOMIC_RELAXED));
	uint32_t v;
	switch (want) {
	case -1: v = r->rb_dsize; break;             /* the data size */
	case -2: v = cur + 4u; break;                /* unaligned */
	case -3: v = r->rb_dsize + HV_PAGE_SIZE; break; /* > the ring */
	default: v = (uint32_t)want; break;
	}
	if (a->fa_hit <= LOG_FIRST)
		HVS_INFO(fc->fc_vm, "fault ring.scribble: %s: %s 0x%x -> 0x%x",
			 fc->fc_name, names[field], cur, v);
	__atomic_store_n(f, hv_cpu_to_le32(v), __ATOMIC_RELEASE);
}

static void flood(const struct hvs_fault_chan *fc,
		  const struct hvs_fault_args *a)
{
	int64_t n = hvs_fault_param(a, "count", 8);
	int64_t flag = hvs_fault_param(a, "flag", 200);

	if (!fc->fc_p)
		return;
	if (n < 1 || n > 100000)
		n = 8;
	if (flag < 0 || flag > 2047)
		flag = 200;
	if (a->fa_hit <= LOG_FIRST)
		HVS_INFO(fc->fc_vm, "fault flood_events: %s: flags %lld and %u, "
			 "%lld times", fc->fc_name, (long long)flag,
			 fc->fc_relid, (long long)n);
	for (int64_t i = 0; i < n; i++) {
		hvs_partition_signal_event(fc->fc_p, fc->fc_vp, fc->fc_sint,
					   (uint32_t)flag);
		hvs_partition_signal_event(fc->fc_p, fc->fc_vp, fc->fc_sint,
					   fc->fc_relid);
	}
}

int hvs_fault_pkt_send(const struct hvs_fault_chan *fc,
		       const struct vmbus_iov *iov, unsigned iovcnt,
		       hvs_fault_write_fn wr, void *ctx)
{
	struct hvs_fault_args a;
	uint64_t total = 0, was, now;
	uint32_t len, cap, pos;
	uint16_t ptype;
	uint8_t *buf;
	int r = 0, held_slot = -1;
	unsigned copies = 1;

	for (unsigned i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total < sizeof(struct vmbus_packet_desc) || total > PKT_MAX)
		return wr(ctx, iov, iovcnt);
	/* Flattened, with room to grow (pkt.resize). */
	cap = (uint32_t)total;
	if (hvs_fault_enabled("pkt.resize"))
		cap = PKT_MAX;
	buf = malloc(cap);
	if (!buf)
		return wr(ctx, iov, iovcnt);
	len = 0;
	for (unsigned i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	ptype = hv_get_le16(buf);

	if (pkt_hook("pkt.drop", fc, ptype, buf, len, &a)) {
		if (a.fa_hit <= LOG_FIRST)
			HVS_INFO(fc->fc_vm, "fault pkt.drop: %s: type %u trans "
				 "id 0x%llx dropped", fc->fc_name, ptype,
				 (unsigned long long)hv_get_le64(buf + 8));
		free(buf);
		return release_held(fc, wr, ctx, -1);
	}
	if (pkt_hook("pkt.corrupt", fc, ptype, buf, len, &a)) {
		if (hvs_fault_mutate(&a, buf, len, &was, &now)) {
			if (a.fa_hit <= LOG_FIRST)
				HVS_INFO(fc->fc_vm, "fault pkt.corrupt: %s: type "
					 "%u byte %lld: 0x%llx -> 0x%llx",
					 fc->fc_name, ptype,
					 (long long)hvs_fault_param(&a, "off", 0),
					 (unsigned long long)was,
					 (unsigned long long)now);
		} else if (a.fa_hit <= LOG_FIRST) {
			HVS_INFO(fc->fc_vm, "fault pkt.corrupt: %s: field "
				 "outside the %u-byte packet", fc->fc_name, len);
		}
	}
	if (pkt_hook("pkt.resize", fc, ptype, buf, len, &a)) {
		int64_t n = hvs_fault_param(&a, "len", len);

		n = (n + 7) & ~(int64_t)7;
		if (n < (int64_t)sizeof(struct vmbus_packet_desc) ||
		    n > (int64_t)cap)
			n = len;
		if ((uint32_t)n > len)
			memset(buf + len, 0, (uint32_t)n - len);
		if (a.fa_hit <= LOG_FIRST)
			HVS_INFO(fc->fc_vm, "fault pkt.resize: %s: type %u: %u "
				 "-> %u bytes", fc->fc_name, ptype, len,
				 (uint32_t)n);
		len = (uint32_t)n;
		hv_put_le16(buf + 4, (uint16_t)(len / 8u));
	}
	if (pkt_hook("pkt.duplicate", fc, ptype, buf, len, &a)) {
		int64_t n = hvs_fault_param(&a, "count", 1);

		copies += n < 1 || n > 64 ? 1u : (unsigned)n;
		if (a.fa_hit <= LOG_FIRST)
			HVS_INFO(fc->fc_vm, "fault pkt.duplicate: %s: type %u "
				 "trans id 0x%llx sent %u times", fc->fc_name,
				 ptype, (unsigned long long)hv_get_le64(buf + 8),
				 copies);
	}
	if (pkt_hook("pkt.delay", fc, ptype, buf, len, &a)) {
		held_slot = hold(fc, buf, len, hvs_fault_param(&a, "count", 1));
		if (a.fa_hit <= LOG_FIRST)
			HVS_INFO(fc->fc_vm, "fault pkt.delay: %s: type %u trans "
				 "id 0x%llx %s", fc->fc_name, ptype,
				 (unsigned long long)hv_get_le64(buf + 8),
				 held_slot >= 0 ? "held" : "too big to hold");
		if (held_slot >= 0)
			copies = 0;
	}
	bool inj = pkt_hook("pkt.inject", fc, ptype, buf, len, &a);
	if (inj && hvs_fault_param(&a, "before", 0) == 1) {
		r = inject(fc, &a, wr, ctx);
		inj = false;
	}
	pos = fc->fc_out ? fc->fc_out->rb_cur : 0;
	for (unsigned i = 0; i < copies && r == 0; i++)
		r = write_one(wr, ctx, buf, len);
	if (inj && r == 0)
		r = inject(fc, &a, wr, ctx);
	if (copies && r == 0 && fc->fc_out && fc->fc_out->rb_ctl) {
		if (pkt_hook("ring.scribble", fc, ptype, buf, len, &a))
			scribble(fc, &a);
		if (pkt_hook("mutate_after_read", fc, ptype, buf, len, &a)) {
			if (a.fa_hit <= LOG_FIRST)
				HVS_INFO(fc->fc_vm, "fault mutate_after_read: %s: "
					 "type %u, %u bytes at 0x%x", fc->fc_name,
					 ptype, len, pos);
			mutator_arm(fc, &a, pos, len);
		}
	}
	if (pkt_hook("flood_events", fc, ptype, buf, len, &a))
		flood(fc, &a);
	free(buf);
	int rr = release_held(fc, wr, ctx, held_slot);
	return r ? r : rr;
}
