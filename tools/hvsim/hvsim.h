/*
 * tools/hvsim/hvsim.h - pieces of the hvsim program shared between its
 * files: the VM record, the control-command handlers of the devices
 * (vmctl.c), the live view (status.c) and the config file (config.c).
 *
 * Everything here runs on hvsim's one event-loop thread, except
 * hvsim_term_write() (any thread: the log sink calls it).
 */
#ifndef HVSIM_HVSIM_H
#define HVSIM_HVSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv/hvsim_abi.h"
#include "vsp/ic_host.h"

struct hvs_jw;
struct hvs_json_obj;
struct hvs_loop;
struct hvs_loop_fd;
struct hvs_loop_timer;
struct hvs_netvsp;
struct hvs_partition;
struct hvs_storage;
struct hvs_vmbus;

/* `hvsim ctl ...`: the control-socket client. Returns the exit status. */
int hvsim_ctl_main(int argc, char **argv);

#define HVSIM_LINE_MAX 4096

enum vm_state {
	VM_WAITING,   /* socket mode: no guest attached */
	VM_RUNNING,   /* partition live (guest process maybe) */
	VM_ENDING,    /* partition ended or guest exited; waiting for both */
	VM_DONE,
};

struct vm;

struct linebuf {
	int lb_fd;              /* read end, -1 when closed */
	int lb_out;             /* STDOUT_FILENO or STDERR_FILENO */
	struct hvs_loop_fd *lb_w;
	char lb_buf[HVSIM_LINE_MAX];
	size_t lb_len;
	struct vm *lb_vm;
};

/* One --net NIC of a VM. */
struct vm_nic {
	char *vn_arg;             /* the --net argument */
	int vn_kind;              /* enum hvs_net_kind */
	char vn_switch[64];       /* switch name (switch back end) */
	struct hvs_netvsp *vn_nic;
	uint32_t vn_relid;
};

/* What the watcher last saw of a VM (status.c), to log changes once. */
#define VM_WATCH_MAX_CHANS 128
struct vm_watch {
	bool w_connected;
	uint32_t w_nchans;
	uint32_t w_relid[VM_WATCH_MAX_CHANS];
	int w_state[VM_WATCH_MAX_CHANS];
	int w_hb;                 /* enum hvs_ic_hb_state, -1 unknown */
	uint16_t w_vstor[8];
	uint32_t w_nvsp[16];
	bool w_rndis[16];
	bool w_link[16];
};

struct vm {
	int index;
	char name[HVSIM_ABI_MAX_NAME + 1];
	char *guest_cmd;        /* NULL: waits for an HVSIM_SOCKET guest */
	char **guest_argv;
	bool guest_default;     /* the reference guest, found by hvsim */
	uint32_t vcpus;
	uint64_t ram;
	uint32_t max_version;
	uint32_t echo;          /* echo devices */
	bool monitored;         /* offers with monitor ids (MNF) */
	bool have_name, have_vcpus, have_memory, have_version, have_echo;
	bool have_ic, have_ic_gen, have_clock_skew;
	char clock_skew[32];    /* --clock-skew SECONDS, as given */

	/* integration services */
	bool ic_on;
	enum hvs_ic_gen ic_gen;
	struct hvs_ic *ic;
	/* storage: --scsi and --disk arguments, in order */
	char **scsi_args;
	unsigned nscsi;
	char **disk_args;
	unsigned ndisks;
	struct hvs_storage *st;
	/* network */
	struct vm_nic *nics;
	unsigned nnics;

	enum vm_state state;
	struct hvs_vmbus *srv;
	struct hvs_partition *part;
	bool part_ended;
	int end_kind;
	pid_t pid;              /* 0: none */
	bool reaped;
	int wstatus;
	struct linebuf out, err;
	struct hvs_loop_timer *term_timer, *kill_timer, *timeout_timer;
	struct hvs_loop_timer *sd_timer; /* graceful shutdown backstop */
	bool finish_scheduled;
	bool stop_requested;    /* control stop / shutdown: no reboot */
	bool sd_requested;      /* graceful shutdown asked (Ctrl-C) */
	bool timed_out;
	unsigned boots;
	int exit_code;
	uint64_t started_ns;    /* last boot */

	struct vm_watch watch;
};

/* ---- hvsim.c ------------------------------------------------------------ */

struct hvs_loop *hvsim_loop(void);
/* The default deadline of a guest shutdown (--shutdown-timeout). */
uint64_t hvsim_shutdown_timeout_ns(void);
/* A VM's state as the control socket names it. */
const char *hvsim_vm_state_name(const struct vm *vm);

/* ---- vmctl.c: control commands of a VM's devices ------------------------ */

/*
 * Commands on one VM's integration services, disks and NICs (the caller
 * found the VM named by "vm"): heartbeat, time, kvp-get, kvp-list,
 * kvp-set, kvp-delete, ic, guest-shutdown, disks, disk_add, disk_remove,
 * nics, nic-link. Same contract as hvs_control_ops.command: 0 with members
 * written, -ENOSYS (not one of these), or a negative errno and *errmsg.
 */
int hvsim_vm_command(struct vm *vm, const char *cmd,
		     const struct hvs_json_obj *req, struct hvs_jw *w,
		     const char **errmsg);
/* True if cmd is one of the commands above (they all need "vm"). */
bool hvsim_is_vm_command(const char *cmd);

/*
 * Ask the guest to shut down (flags HVS_IC_SD_*) through its shutdown
 * service, with deadline_ns (0 = --shutdown-timeout) after which it is
 * powered off. Returns 0 or the error of hvs_ic_shutdown (-ENODEV when
 * the VM has no negotiated shutdown service).
 */
int hvsim_guest_shutdown(struct vm *vm, uint32_t flags, uint64_t deadline_ns,
			 const char *message);

/* ---- status.c: what happens, as it happens ------------------------------ */

/*
 * The live view. mode: 0 off, 1 plain lines (one per VM every interval),
 * 2 a block redrawn in place on the terminal (stdout a tty).
 */
void hvsim_term_init(int mode);
void hvsim_term_fini(void);
/* Write one whole line (with its '\n') to fd, keeping the live block
 * below it. Any thread. */
void hvsim_term_write(int fd, const char *buf, size_t n);
/* Once per interval: print / redraw the status of every VM. */
void hvsim_status_tick(struct vm **vms, unsigned n);
/* Often (every 250 ms): log what changed (channels opened, versions
 * negotiated, heartbeat state) since the last call. */
void hvsim_watch(struct vm **vms, unsigned n);
/* Forget what the watcher saw of vm (a new boot). */
void hvsim_watch_reset(struct vm *vm);

/* ---- config.c: --config FILE --------------------------------------------- */

/*
 * Read a config file into the command-line tokens it stands for:
 *   key = value      ->  --key value
 *   [vm]             ->  --vm
 *   [vm NAME]        ->  --vm --name NAME
 * '#' starts a comment line; blank lines are ignored. Returns the token
 * count (>= 0) and a NULL-terminated malloc'd array (hvsim_free_argv),
 * or -EINVAL / -errno with "FILE:LINE: reason" in err.
 */
int hvsim_config_load(const char *path, char ***tokens, char *err,
		      size_t errlen);

#endif /* HVSIM_HVSIM_H */
