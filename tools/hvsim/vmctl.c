/*
 * tools/hvsim/vmctl.c - control-socket commands on one VM's devices: the
 * integration services (host/vsp/ic_host.h), the disks
 * (host/vsp/storvsp.h) and the NICs (host/vsp/netvsp.h). hvsim.c finds
 * the VM; these write the answer's members (docs/hvsim.md lists them).
 *
 * Control commands answer at once, on the loop thread. What needs the
 * guest (a KVP set or delete, a clock measurement, a shutdown) is queued
 * and answered "queued": the outcome is logged when the guest answers,
 * and shows in the mirror (kvp-get, kvp-list) or in the service state
 * (time, guest-shutdown, ic).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "hv/icmsg.h"
#include "hvsim.h"
#include "log.h"
#include "net/net.h"
#include "net/switch.h"
#include "partition_host.h"
#include "vsp/netvsp.h"
#include "vsp/storvsp.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

static const char *const vm_commands[] = {
	"heartbeat", "time", "kvp-get", "kvp-list", "kvp-set", "kvp-delete",
	"ic", "guest-shutdown", "disks", "disk_add", "disk_remove", "nics",
	"nic-link",
};

bool hvsim_is_vm_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof(vm_commands) / sizeof(vm_commands[0]); i++)
		if (!strcmp(cmd, vm_commands[i]))
			return true;
	return false;
}

/* ---- request members ----------------------------------------------------- */

/* Optional integer member: 0 (absent: *out = dflt), or -EINVAL. */
static int opt_int(const struct hvs_json_obj *req, const char *key,
		   int64_t lo, int64_t hi, int64_t dflt, int64_t *out)
{
	const struct hvs_json_member *m = hvs_json_get(req, key);

	if (!m || m->jm_type == HVS_JSON_NULL) {
		*out = dflt;
		return 0;
	}
	if (m->jm_type != HVS_JSON_INT || m->jm_int < lo || m->jm_int > hi)
		return -EINVAL;
	*out = m->jm_int;
	return 0;
}

/* Optional boolean member (absent = false). -EINVAL if not a boolean. */
static int opt_bool(const struct hvs_json_obj *req, const char *key, bool *out)
{
	const struct hvs_json_member *m = hvs_json_get(req, key);

	*out = false;
	if (!m || m->jm_type == HVS_JSON_NULL)
		return 0;
	if (m->jm_type != HVS_JSON_BOOL)
		return -EINVAL;
	*out = m->jm_bool;
	return 0;
}

static const char *req_str(const struct hvs_json_obj *req, const char *key)
{
	const struct hvs_json_member *m = hvs_json_get(req, key);

	return m && m->jm_type == HVS_JSON_STRING ? m->jm_str : NULL;
}

static void write_ms(struct hvs_jw *w, const char *key, uint64_t ns)
{
	if (ns == UINT64_MAX)
		hvs_jw_null(w, key);
	else
		hvs_jw_uint(w, key, ns / NS_PER_MS);
}

static void write_svc_version(struct hvs_jw *w, const struct hvs_ic *ic,
			      enum hvs_ic_svc svc)
{
	struct hvs_ic_svc_status ss;
	char v[24];

	if (hvs_ic_get_status(ic, svc, &ss) < 0) {
		hvs_jw_null(w, "negotiation");
		return;
	}
	hvs_jw_str(w, "negotiation", hvs_ic_neg_name(ss.ss_neg));
	if (ss.ss_neg == HVS_IC_NEG_DONE) {
		snprintf(v, sizeof(v), "%u.%u", ss.ss_msg_major, ss.ss_msg_minor);
		hvs_jw_str(w, "version", v);
	} else {
		hvs_jw_null(w, "version");
	}
}

/* ---- integration services ------------------------------------------------ */

static int cmd_heartbeat(struct vm *vm, struct hvs_jw *w, const char **errmsg)
{
	struct hvs_ic_hb_status hs;

	if (hvs_ic_heartbeat_status(vm->ic, &hs) < 0) {
		*errmsg = "the heartbeat service is not offered to this VM";
		return -ENODEV;
	}
	hvs_jw_str(w, "heartbeat", hvs_ic_hb_state_name(hs.hs_state));
	write_ms(w, "since_reply_ms", hs.hs_since_reply_ns);
	hvs_jw_uint(w, "seq", hs.hs_seq);
	hvs_jw_uint(w, "good", hs.hs_good);
	hvs_jw_uint(w, "bad", hs.hs_bad);
	hvs_jw_uint(w, "missed", hs.hs_missed);
	hvs_jw_uint(w, "app_state", hs.hs_app_state);
	write_svc_version(w, vm->ic, HVS_IC_HEARTBEAT);
	return 0;
}

static void offset_done(void *arg, int err, int64_t offset_ns, uint64_t rtt_ns)
{
	const char *name = arg;

	if (err)
		HVS_WARN(name, "time: measuring the guest clock failed: %s",
			 strerror(-err));
	else
		HVS_INFO(name, "time: guest clock %+" PRId64 " us from the "
			 "host's (+- %" PRIu64 " us)", offset_ns / 1000,
			 rtt_ns / 2000);
}

static int cmd_time(struct vm *vm, const struct hvs_json_obj *req,
		    struct hvs_jw *w, const char **errmsg)
{
	struct hvs_ic_ts_status ts;
	bool sync, measure;
	int r;

	if (opt_bool(req, "sync", &sync) || opt_bool(req, "measure", &measure)) {
		*errmsg = "\"sync\" and \"measure\" are booleans";
		return -EINVAL;
	}
	if (hvs_ic_timesync_status(vm->ic, &ts) < 0) {
		*errmsg = "the time sync service is not offered to this VM";
		return -ENODEV;
	}
	if (sync) {
		r = hvs_ic_timesync_sync_now(vm->ic);
		if (r < 0) {
			*errmsg = "time sync is not negotiated with the guest";
			return r;
		}
		HVS_INFO(vm->name, "control: time sync (step) requested");
	}
	if (measure) {
		r = hvs_ic_time_offset(vm->ic, offset_done, vm->name);
		if (r < 0) {
			*errmsg = r == -EAGAIN ? "KVP queue full; try again"
					       : "KVP is not negotiated with the guest";
			return r;
		}
	}
	hvs_jw_uint(w, "syncs", ts.ts_syncs);
	hvs_jw_uint(w, "samples", ts.ts_samples);
	hvs_jw_uint(w, "refused", ts.ts_refused);
	hvs_jw_uint(w, "rtt_us", ts.ts_last_rtt_ns / 1000);
	if (ts.ts_offset_valid) {
		hvs_jw_int(w, "offset_ns", ts.ts_offset_ns);
		hvs_jw_uint(w, "offset_err_ns", ts.ts_offset_err_ns);
		hvs_jw_uint(w, "offset_age_ms", ts.ts_offset_age_ns / NS_PER_MS);
	} else {
		hvs_jw_null(w, "offset_ns");
	}
	write_svc_version(w, vm->ic, HVS_IC_TIMESYNC);
	if (sync)
		hvs_jw_bool(w, "sync_queued", true);
	if (measure)
		hvs_jw_bool(w, "measure_queued", true);
	return 0;
}

static const char *kvp_type_name(uint32_t t)
{
	switch (t) {
	case KVP_REG_SZ: return "string";
	case KVP_REG_EXPAND_SZ: return "expand_string";
	case KVP_REG_U32: return "u32";
	case KVP_REG_U64: return "u64";
	default: return "unknown";
	}
}

static const char *const pool_names[4] = {
	"external", "guest", "auto", "auto_external",
};

/* "pool": 0..3 or a name; absent = dflt (-1: every pool). */
static int req_pool(const struct hvs_json_obj *req, int dflt, int *pool)
{
	const struct hvs_json_member *m = hvs_json_get(req, "pool");

	*pool = dflt;
	if (!m || m->jm_type == HVS_JSON_NULL)
		return 0;
	if (m->jm_type == HVS_JSON_INT && m->jm_int >= 0 && m->jm_int <= 3) {
		*pool = (int)m->jm_int;
		return 0;
	}
	if (m->jm_type == HVS_JSON_STRING)
		for (int i = 0; i < 4; i++)
			if (!strcmp(m->jm_str, pool_names[i])) {
				*pool = i;
				return 0;
			}
	return -EINVAL;
}

static int kvp_ready(struct vm *vm, const char **errmsg)
{
	struct hvs_ic_svc_status ss;

	if (hvs_ic_get_status(vm->ic, HVS_IC_KVP, &ss) < 0) {
		*errmsg = "the KVP service is not offered to this VM";
		return -ENODEV;
	}
	return 0;
}

static int cmd_kvp_get(struct vm *vm, const struct hvs_json_obj *req,
		       struct hvs_jw *w, const char **errmsg)
{
	static char value[HVS_IC_KVP_VALUE_MAX];
	const char *key = req_str(req, "key");
	bool refresh, walked = false;
	uint32_t type = 0;
	int pool, r = -ENOENT;

	if (!key || !*key) {
		*errmsg = "\"key\" (string) required";
		return -EINVAL;
	}
	if (req_pool(req, -1, &pool) || opt_bool(req, "refresh", &refresh)) {
		*errmsg = "\"pool\" is 0..3 or external, guest, auto, "
			  "auto_external; \"refresh\" a boolean";
		return -EINVAL;
	}
	if ((r = kvp_ready(vm, errmsg)) < 0)
		return r;
	if (refresh)
		hvs_ic_kvp_refresh(vm->ic);
	r = -ENOENT;
	for (int p = pool < 0 ? 0 : pool; p <= (pool < 0 ? 3 : pool); p++) {
		int q = hvs_ic_kvp_mirror_get(vm->ic, (uint8_t)p, key, &type,
					      value, sizeof(value));
		if (q != -ENODATA)
			walked = true;
		if (q == 0) {
			pool = p;
			r = 0;
			break;
		}
	}
	if (r < 0) {
		*errmsg = walked ? "no such key in the guest's pools (as last read; "
				   "they are read every 5 s)"
				 : "the guest's pools have not been read yet";
		return walked ? -ENOENT : -EAGAIN;
	}
	hvs_jw_uint(w, "pool", (uint64_t)pool);
	hvs_jw_str(w, "pool_name", pool_names[pool]);
	hvs_jw_str(w, "key", key);
	hvs_jw_str(w, "value", value);
	hvs_jw_str(w, "type", kvp_type_name(type));
	return 0;
}

static int list_rec(void *arg, const char *key, uint32_t type, const char *value)
{
	struct hvs_jw *w = arg;

	hvs_jw_obj_begin(w, NULL);
	hvs_jw_str(w, "key", key);
	hvs_jw_str(w, "value", value);
	hvs_jw_str(w, "type", kvp_type_name(type));
	hvs_jw_obj_end(w);
	return 0;
}

static int cmd_kvp_list(struct vm *vm, const struct hvs_json_obj *req,
			struct hvs_jw *w, const char **errmsg)
{
	bool refresh;
	int pool, r;

	if (req_pool(req, -1, &pool) || opt_bool(req, "refresh", &refresh)) {
		*errmsg = "\"pool\" is 0..3 or external, guest, auto, "
			  "auto_external; \"refresh\" a boolean";
		return -EINVAL;
	}
	if ((r = kvp_ready(vm, errmsg)) < 0)
		return r;
	if (refresh)
		hvs_ic_kvp_refresh(vm->ic);
	hvs_jw_arr_begin(w, "pools");
	for (int p = pool < 0 ? 0 : pool; p <= (pool < 0 ? 3 : pool); p++) {
		uint64_t age;

		hvs_jw_obj_begin(w, NULL);
		hvs_jw_uint(w, "pool", (uint64_t)p);
		hvs_jw_str(w, "name", pool_names[p]);
		hvs_jw_arr_begin(w, "records");
		hvs_ic_kvp_mirror_foreach(vm->ic, (uint8_t)p, list_rec, w, &age);
		hvs_jw_arr_end(w);
		write_ms(w, "age_ms", age);
		hvs_jw_obj_end(w);
	}
	hvs_jw_arr_end(w);
	return 0;
}

/* What a queued KVP change was, for the log line of its answer. */
struct kvp_op {
	char ko_vm[HVSIM_ABI_MAX_NAME + 1];
	char ko_what[16];
};

static void kvp_done(void *arg, const struct hvs_ic_kvp_result *r)
{
	struct kvp_op *op = arg;

	if (r->kr_err == 0)
		HVS_INFO(op->ko_vm, "kvp: %s %s in pool %u: done", op->ko_what,
			 r->kr_key, r->kr_pool);
	else
		HVS_WARN(op->ko_vm, "kvp: %s %s in pool %u failed: %s (guest "
			 "status 0x%x)", op->ko_what, r->kr_key, r->kr_pool,
			 strerror(-r->kr_err), r->kr_status);
	free(op);
}

static int kvp_queue_err(int r, const char **errmsg)
{
	switch (r) {
	case -ENODEV:
		*errmsg = "KVP is not negotiated with the guest";
		break;
	case -EAGAIN:
		*errmsg = "KVP request queue full; try again";
		break;
	case -EINVAL:
		*errmsg = "bad key or value (1..255 / 0..1023 UTF-16 units of "
			  "UTF-8; pool 0..3)";
		break;
	default:
		*errmsg = "out of memory";
		break;
	}
	return r;
}

static int cmd_kvp_change(struct vm *vm, const struct hvs_json_obj *req,
			  bool del, struct hvs_jw *w, const char **errmsg)
{
	const struct hvs_json_member *v = hvs_json_get(req, "value");
	const char *key = req_str(req, "key");
	const char *type = req_str(req, "type");
	struct kvp_op *op;
	int pool, r;

	if (!key || !*key) {
		*errmsg = "\"key\" (string) required";
		return -EINVAL;
	}
	if (req_pool(req, KVP_POOL_EXTERNAL, &pool)) {
		*errmsg = "\"pool\" is 0..3 or external, guest, auto, auto_external";
		return -EINVAL;
	}
	if (!del && (!v || (v->jm_type != HVS_JSON_STRING &&
			    v->jm_type != HVS_JSON_INT))) {
		*errmsg = "\"value\" (string or integer) required";
		return -EINVAL;
	}
	if (!del && type && strcmp(type, "string") && strcmp(type, "u32") &&
	    strcmp(type, "u64")) {
		*errmsg = "\"type\" is string, u32 or u64";
		return -EINVAL;
	}
	if ((r = kvp_ready(vm, errmsg)) < 0)
		return r;
	op = calloc(1, sizeof(*op));
	if (!op) {
		*errmsg = "out of memory";
		return -ENOMEM;
	}
	snprintf(op->ko_vm, sizeof(op->ko_vm), "%s", vm->name);
	snprintf(op->ko_what, sizeof(op->ko_what), "%s", del ? "delete" : "set");
	if (del) {
		r = hvs_ic_kvp_delete(vm->ic, (uint8_t)pool, key, kvp_done, op);
	} else if ((type && strcmp(type, "string")) || v->jm_type == HVS_JSON_INT) {
		uint64_t n;
		char *end;

		if (v->jm_type == HVS_JSON_INT) {
			if (v->jm_int < 0) {
				free(op);
				*errmsg = "integer values are unsigned";
				return -EINVAL;
			}
			n = (uint64_t)v->jm_int;
		} else {
			errno = 0;
			n = strtoull(v->jm_str, &end, 0);
			if (errno || end == v->jm_str || *end || v->jm_str[0] == '-') {
				free(op);
				*errmsg = "value is not an unsigned integer";
				return -EINVAL;
			}
		}
		if (type && !strcmp(type, "u32") && n > UINT32_MAX) {
			free(op);
			*errmsg = "value does not fit u32";
			return -EINVAL;
		}
		r = hvs_ic_kvp_set_int(vm->ic, (uint8_t)pool, key, n,
				       (type && !strcmp(type, "u64")) ||
					       n > UINT32_MAX,
				       kvp_done, op);
	} else {
		r = hvs_ic_kvp_set(vm->ic, (uint8_t)pool, key, v->jm_str,
				   kvp_done, op);
	}
	if (r < 0) {
		free(op);
		return kvp_queue_err(r, errmsg);
	}
	HVS_INFO(vm->name, "control: kvp %s %s in pool %d queued",
		 del ? "delete" : "set", key, pool);
	hvs_jw_uint(w, "pool", (uint64_t)pool);
	hvs_jw_str(w, "key", key);
	hvs_jw_bool(w, "queued", true);
	return 0;
}

static int cmd_ic(struct vm *vm, struct hvs_jw *w, const char **errmsg)
{
	static char buf[64 * 1024];

	if (hvs_ic_describe_json(vm->ic, buf, sizeof(buf)) < 0 ||
	    !hvs_jw_merge_obj(w, buf)) {
		*errmsg = "integration services description too large";
		return -ENOBUFS;
	}
	return 0;
}

static int cmd_guest_shutdown(struct vm *vm, const struct hvs_json_obj *req,
			      struct hvs_jw *w, const char **errmsg)
{
	const char *action = req_str(req, "action");
	const char *message = req_str(req, "message");
	struct hvs_ic_sd_status sd;
	uint32_t flags = 0;
	int64_t deadline_s;
	bool force;
	int r;

	if (hvs_json_get(req, "action") && !action) {
		*errmsg = "\"action\" is poweroff, reboot or hibernate";
		return -EINVAL;
	}
	if (!action || !strcmp(action, "poweroff") || !strcmp(action, "shutdown"))
		flags = 0;
	else if (!strcmp(action, "reboot"))
		flags = HVS_IC_SD_REBOOT;
	else if (!strcmp(action, "hibernate"))
		flags = HVS_IC_SD_HIBERNATE;
	else {
		*errmsg = "\"action\" is poweroff, reboot or hibernate";
		return -EINVAL;
	}
	if (opt_bool(req, "force", &force) ||
	    opt_int(req, "deadline_s", 0, 86400 * 365, 0, &deadline_s)) {
		*errmsg = "\"force\" is a boolean, \"deadline_s\" seconds "
			  "(0 = --shutdown-timeout)";
		return -EINVAL;
	}
	if (force)
		flags |= HVS_IC_SD_FORCE;
	if (vm->state != VM_RUNNING || !vm->part || vm->part_ended) {
		*errmsg = "the VM is not running";
		return -ENODEV;
	}
	r = hvsim_guest_shutdown(vm, flags, (uint64_t)deadline_s * NS_PER_S,
				 message ? message : "hvsim ctl guest-shutdown");
	switch (r) {
	case 0:
		break;
	case -ENODEV:
		*errmsg = "the guest has not negotiated the shutdown service";
		return r;
	case -EBUSY:
		*errmsg = "a shutdown request is already in progress";
		return r;
	case -EOPNOTSUPP:
		*errmsg = "hibernate needs shutdown version 3.2";
		return r;
	default:
		*errmsg = "shutdown request failed";
		return r;
	}
	hvs_jw_str(w, "action", !action ? "poweroff" : action);
	hvs_jw_bool(w, "force", force);
	if (hvs_ic_shutdown_status(vm->ic, &sd) == 0) {
		hvs_jw_str(w, "state", hvs_ic_sd_state_name(sd.sd_state));
		hvs_jw_uint(w, "deadline_ms", sd.sd_deadline_left_ns / NS_PER_MS);
	}
	return 0;
}

/* ---- NICs ------------------------------------------------------------------ */

static int cmd_nics(struct vm *vm, struct hvs_jw *w, const char **errmsg)
{
	static char buf[32 * 1024];
	char seen[16][64];
	unsigned nseen = 0;

	hvs_jw_arr_begin(w, "nics");
	for (unsigned i = 0; i < vm->nnics; i++) {
		if (!vm->nics[i].vn_nic)
			continue;
		if (hvs_netvsp_describe_json(vm->nics[i].vn_nic, buf, sizeof(buf)) < 0) {
			*errmsg = "NIC description too large";
			return -ENOBUFS;
		}
		hvs_jw_raw(w, NULL, buf);
	}
	hvs_jw_arr_end(w);
	hvs_jw_arr_begin(w, "switches");
	for (unsigned i = 0; i < vm->nnics; i++) {
		struct hvs_switch_stats ss;
		bool dup = false;

		if (vm->nics[i].vn_kind != HVS_NET_SWITCH)
			continue;
		for (unsigned k = 0; k < nseen; k++)
			dup |= !strcmp(seen[k], vm->nics[i].vn_switch);
		if (dup || hvs_switch_get_stats(vm->nics[i].vn_switch, &ss) < 0)
			continue;
		if (nseen < 16)
			snprintf(seen[nseen++], sizeof(seen[0]), "%s",
				 vm->nics[i].vn_switch);
		hvs_jw_obj_begin(w, NULL);
		hvs_jw_str(w, "name", vm->nics[i].vn_switch);
		hvs_jw_uint(w, "ports", ss.ss_ports);
		hvs_jw_uint(w, "entries", ss.ss_entries);
		hvs_jw_uint(w, "learned", ss.ss_learned);
		hvs_jw_uint(w, "moves", ss.ss_moves);
		hvs_jw_uint(w, "evictions", ss.ss_evictions);
		hvs_jw_uint(w, "forwarded", ss.ss_forwarded);
		hvs_jw_uint(w, "flooded", ss.ss_flooded);
		hvs_jw_uint(w, "vlan_dropped", ss.ss_vlan_dropped);
		hvs_jw_uint(w, "dropped", ss.ss_dropped);
		hvs_jw_obj_end(w);
	}
	hvs_jw_arr_end(w);
	return 0;
}

static int cmd_nic_link(struct vm *vm, const struct hvs_json_obj *req,
			struct hvs_jw *w, const char **errmsg)
{
	const struct hvs_json_member *link = hvs_json_get(req, "link");
	int64_t idx;
	bool up;

	if (opt_int(req, "nic", 0, 1023, -1, &idx) || idx < 0) {
		*errmsg = "\"nic\" (the NIC's index, 0..) required";
		return -EINVAL;
	}
	if (link && link->jm_type == HVS_JSON_BOOL)
		up = link->jm_bool;
	else if (link && link->jm_type == HVS_JSON_STRING &&
		 (!strcmp(link->jm_str, "up") || !strcmp(link->jm_str, "down")))
		up = !strcmp(link->jm_str, "up");
	else {
		*errmsg = "\"link\" is \"up\", \"down\", true or false";
		return -EINVAL;
	}
	if ((uint64_t)idx >= vm->nnics || !vm->nics[idx].vn_nic) {
		*errmsg = "no such NIC";
		return -ENOENT;
	}
	hvs_netvsp_set_link(vm->nics[idx].vn_nic, up);
	HVS_INFO(vm->name, "control: %s link %s",
		 hvs_netvsp_name(vm->nics[idx].vn_nic), up ? "up" : "down");
	hvs_jw_uint(w, "nic", (uint64_t)idx);
	hvs_jw_str(w, "name", hvs_netvsp_name(vm->nics[idx].vn_nic));
	hvs_jw_str(w, "link", up ? "up" : "down");
	return 0;
}

/* ---- dispatch ---------------------------------------------------------------- */

int hvsim_vm_command(struct vm *vm, const char *cmd,
		     const struct hvs_json_obj *req, struct hvs_jw *w,
		     const char **errmsg)
{
	if (!hvsim_is_vm_command(cmd))
		return -ENOSYS;
	hvs_jw_str(w, "vm", vm->name);
	if (!strcmp(cmd, "disks") || !strcmp(cmd, "disk_add") ||
	    !strcmp(cmd, "disk_remove")) {
		int r;

		if (!vm->st) {
			*errmsg = "the VM has no storage";
			return -ENODEV;
		}
		r = hvs_storage_control(vm->st, cmd, req, w, errmsg);
		if (r == 0 && strcmp(cmd, "disks"))
			HVS_INFO(vm->name, "control: %s done", cmd);
		return r;
	}
	if (!strcmp(cmd, "nics"))
		return cmd_nics(vm, w, errmsg);
	if (!strcmp(cmd, "nic-link"))
		return cmd_nic_link(vm, req, w, errmsg);
	/* The rest are integration services. */
	if (!vm->ic) {
		*errmsg = "integration services are off for this VM (--ic on)";
		return -ENODEV;
	}
	if (!strcmp(cmd, "heartbeat"))
		return cmd_heartbeat(vm, w, errmsg);
	if (!strcmp(cmd, "time"))
		return cmd_time(vm, req, w, errmsg);
	if (!strcmp(cmd, "kvp-get"))
		return cmd_kvp_get(vm, req, w, errmsg);
	if (!strcmp(cmd, "kvp-list"))
		return cmd_kvp_list(vm, req, w, errmsg);
	if (!strcmp(cmd, "kvp-set"))
		return cmd_kvp_change(vm, req, false, w, errmsg);
	if (!strcmp(cmd, "kvp-delete"))
		return cmd_kvp_change(vm, req, true, w, errmsg);
	if (!strcmp(cmd, "ic"))
		return cmd_ic(vm, w, errmsg);
	return cmd_guest_shutdown(vm, req, w, errmsg);
}
