/*
 * host/fault.c - fault hook registry (see fault.h).
 */
#include "fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

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
	{ "withhold_interrupts", "partition: write SynIC messages/flags but "
	  "ring no doorbell" },
	{ "storm_interrupts", "partition: ring each doorbell `count` extra "
	  "times (default 16)" },
	{ "drop_message", "partition: drop host->guest SynIC messages of "
	  "VMBus type `type` (default -1 = any)" },
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

bool hvs_fault_check_vm(const char *name, const char *vm,
			struct hvs_fault_args *out)
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
}
