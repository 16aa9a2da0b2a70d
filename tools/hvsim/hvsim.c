/*
 * tools/hvsim/hvsim.c - the host emulator program: runs guest programs as
 * partitions (DESIGN.md "The partition ABI"), each with its own VMBus
 * server and devices (echo, integration services, SCSI disks, NICs), and
 * serves the control socket.
 *
 * One thread runs the event loop; signals (SIGCHLD, SIGINT, SIGTERM) come
 * through a signalfd. A VM's life: boot (partition + guest process) ->
 * the partition ends and the guest exits -> finish: reboot (fresh
 * partition, same server and device GUIDs) or done. hvsim exits when every
 * VM is done.
 *
 * `hvsim` with no VM options runs the default VM: the reference guest
 * with a disk image kept in the user's cache folder, a NIC on user
 * networking with a port forward to the guest's port 80, and every
 * integration service, with a live status view.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "control.h"
#include "disk/disk.h"
#include "fault.h"
#include "hv/hvsim_abi.h"
#include "hvsim.h"
#include "log.h"
#include "loop.h"
#include "net/net.h"
#include "partition_host.h"
#include "vmbus/errno.h"
#include "vmbus_server.h"
#include "vsp/echo.h"
#include "vsp/ic_host.h"
#include "vsp/netvsp.h"
#include "vsp/storvsp.h"

extern char **environ;

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define TERM_GRACE_NS (3ull * NS_PER_S)  /* partition gone -> SIGTERM */
#define KILL_GRACE_NS (3ull * NS_PER_S)  /* SIGTERM -> SIGKILL */
#define HELLO_TIMEOUT_NS (30ull * NS_PER_S)
#define MAX_PENDING_CONNS 16
/* Backstop for the VMBus servers (hvs_vmbus_poll): retry queued messages,
 * scan monitor pages. Faster when a VM uses monitored notification. */
#define POLL_NS (10ull * 1000000)
#define POLL_MONITORED_NS (1ull * 1000000)
/* The watcher's look at every VM (status.c). */
#define WATCH_NS (250ull * 1000000)
/* After the guest's shutdown deadline, our own backstop. */
#define SD_BACKSTOP_NS (2ull * NS_PER_S)
#define DEFAULT_SHUTDOWN_TIMEOUT_NS (10ull * NS_PER_S)
#define MAX_CONFIG_DEPTH 4

/* The default VM (hvsim without VM options). */
#define DEFAULT_VM_RAM (512ull << 20)
#define DEFAULT_DISK_SIZE "1G"
/* The reference guest's arguments when hvsim picks it: bring up every
 * device (integration services, disks, NICs) and stay until the host
 * shuts it down (docs/hvguest.md). */
#define DEFAULT_GUEST_ARGS "--full"

struct pending_conn {
	int pc_fd;
	struct hvs_loop_fd *pc_w;
	struct hvs_loop_timer *pc_timer;
};

static struct {
	struct vm **vms;
	unsigned nvms;
	struct hvs_loop *loop;
	struct hvs_control *ctl;
	char control_path[108];
	bool control_explicit;
	bool control_off;
	char listen_path[108];
	int listen_fd;
	struct hvs_loop_fd *listen_w;
	struct pending_conn *pending[MAX_PENDING_CONNS];
	uint64_t timeout_ns;
	uint64_t shutdown_timeout_ns;
	bool shutting_down;
	unsigned sigints;
	int exit_code;
	bool exit_set;
	int sigfd;
	struct hvs_loop_fd *sig_w;
	struct hvs_loop_timer *poll_timer;
	struct hvs_loop_timer *watch_timer;
	struct hvs_loop_timer *status_timer;
	int status;              /* -1 auto, 0 off, else on */
	uint64_t status_ns;      /* interval */
	bool default_run;        /* hvsim without VM options */
	unsigned config_depth;
	char guest_cmd[PATH_MAX + 64]; /* the reference guest, once found */
} g = { .listen_fd = -1, .sigfd = -1, .status = -1,
	.shutdown_timeout_ns = DEFAULT_SHUTDOWN_TIMEOUT_NS,
	.status_ns = NS_PER_S };

static void vm_boot(struct vm *vm);
static void vm_check(struct vm *vm);

struct hvs_loop *hvsim_loop(void)
{
	return g.loop;
}

uint64_t hvsim_shutdown_timeout_ns(void)
{
	return g.shutdown_timeout_ns;
}

/* ---- usage ------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
"usage: hvsim                                       (the default VM)\n"
"       hvsim [GLOBAL OPTIONS] VM [--vm VM ...]\n"
"       hvsim ctl [--control PATH] [--pretty] COMMAND   (see hvsim ctl --help)\n"
"\n"
"Runs guest programs as Hyper-V partitions (partition ABI v1).\n"
"\n"
"Without VM options hvsim runs one VM, vm0: 2 vCPUs, 512M, the reference\n"
"guest (hvguest), a 1 GiB sparse disk image kept in $XDG_CACHE_HOME/hvsim\n"
"(~/.cache/hvsim), a NIC on user networking (libslirp) with free host\n"
"ports forwarded to the guest's TCP ports 80 (HTTP) and 10809 (NBD), every\n"
"integration service, and a live status view. Ctrl-C shuts the guest down.\n"
"\n"
"VM options (apply to the VM being described; --vm or a second --guest\n"
"starts the next VM):\n"
"  --guest CMD            guest program and arguments, split like a shell\n"
"                         (quotes, backslashes; no shell is run); started\n"
"                         with HVSIM_FD in its environment. Default: the\n"
"                         reference guest (or $HVSIM_GUEST), unless --listen\n"
"  --name NAME            VM name (default vm0, vm1, ...); [A-Za-z0-9._-],\n"
"                         at most 64 bytes. --vm-name is the same option\n"
"  --vcpus N              virtual processors, 1..250 (default 2)\n"
"  --memory SIZE          guest RAM, e.g. 512M or 1G; a multiple of 2 MiB\n"
"                         (default 256M)\n"
"  --hyperv-version V     host generation: WS2008 WS2008R2 WS2012 WS2012R2\n"
"                         WS2016 WS2019 WS2022, or a VMBus version major.minor\n"
"                         (0.13 1.1 2.4 3.0 4.0 4.1 5.0 5.1 5.2 5.3 6.0);\n"
"                         default WS2022 (5.3)\n"
"  --disk FILE[,OPT...]   a SCSI disk (repeatable): size=N[KMGT] create ro\n"
"                         direct lun=N controller=N serial=S threads=N\n"
"                         backend=auto|uring|threads|null|crash\n"
"  --scsi N[,OPT...]      settings of SCSI controller N (before its disks):\n"
"                         subchannels=K version=2.0|4.2|5.1|6.0|6.2\n"
"                         queue_depth=Q max_transfer=SIZE\n"
"  --net SPEC             a NIC (repeatable): switch[=NAME] | tap=IFNAME |\n"
"                         user | null, then ,OPT=VALUE: pcap= mac= mtu=\n"
"                         queues= link=up|down name= vlan= (switch) net=\n"
"                         ipv6= hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT\n"
"                         (user) gen= count= (null)\n"
"  --clock-skew SECONDS   start the guest's wall clock this far off the\n"
"                         host's (posix guests: VMBUS_POSIX_WALL_SKEW), so\n"
"                         time sync has something to correct\n"
"  --ic on|off            the integration services: heartbeat, shutdown,\n"
"                         time sync, KVP (default on; off for a VM with\n"
"                         --echo unless given)\n"
"  --ic-gen GEN           the IC versions offered, as a host generation:\n"
"                         auto (from the VMBus version; default), ws2008,\n"
"                         ws2008r2, ws2012, ws2012r2, ws2016, ws2019,\n"
"                         ws2022, future\n"
"  --echo N               offer N echo test devices (default 0)\n"
"  --monitored on|off     offer channels with monitor ids, so the guest\n"
"                         signals through its monitor page (default off)\n"
"  --vm                   start describing the next VM\n"
"  -- CMD [ARG...]        last: the guest's argv as is (instead of --guest)\n"
"A VM without --guest runs the reference guest, or with --listen PATH waits\n"
"for a guest connecting there (HVSIM_SOCKET=PATH) that names it in HELLO.\n"
"\n"
"Global options:\n"
"  --config FILE          read options from FILE: 'key = value' lines (an\n"
"                         option without its --), '[vm NAME]' starts a VM\n"
"  --control PATH         control socket (default $XDG_RUNTIME_DIR/hvsim/\n"
"                         control.sock or /tmp/hvsim-$UID/control.sock;\n"
"                         'none' disables it)\n"
"  --listen PATH          accept HVSIM_SOCKET guests on PATH\n"
"  --timeout SECONDS      end each VM after this long (exit status 124)\n"
"  --shutdown-timeout SEC Ctrl-C and guest-shutdown: power a guest off if\n"
"                         it has not stopped this long after the shutdown\n"
"                         request (default 10)\n"
"  --status SEC|on|off    a status line per VM every SEC seconds (on = 1),\n"
"                         redrawn in place on a terminal (default: on for the\n"
"                         default VM or when stdout is a terminal)\n"
"  --log-level LEVEL      error, warn, info (default) or debug\n"
"  --help                 this text\n"
"  --version              the partition ABI and the back ends built in\n"
"\n"
"Control socket (JSON, one object per line; client: hvsim ctl):\n"
"  list, channels VM, stats VM, rescind VM RELID, fault NAME on|off\n"
"  [K=INT...] [vm=VM], faults, stop VM, shutdown, heartbeat VM, time VM,\n"
"  kvp-get/kvp-list/kvp-set/kvp-delete VM ..., ic VM, guest-shutdown VM,\n"
"  disks VM, disk-add VM SPEC, disk-remove VM C L, nics VM,\n"
"  nic-link VM N up|down (see hvsim ctl --help)\n"
"\n"
"Signals: SIGINT (Ctrl-C) asks every guest to shut down (integration\n"
"services; --shutdown-timeout), SIGTERM and SIGHUP end the VMs at once; a\n"
"second signal kills the guests.\n"
"\n"
"Exit status: 0 if every guest exited 0, else the first non-zero status\n"
"(128+N for a guest killed by signal N, 124 for a timeout, 1 for a guest\n"
"crash report); 2 for a usage or start-up error.\n"
"Reference: docs/hvsim.md, man hvsim.\n");
}

/* hvsim --version: the ABI and the back ends this build has. */
static void version(void)
{
	printf("hvsim (vmbus host emulator), partition ABI %u\n",
	       (unsigned)HVSIM_ABI_VERSION);
	printf("disk back ends: threads%s null crash\n",
#ifdef HVSIM_HAVE_URING
	       " uring"
#else
	       ""
#endif
	);
	printf("net back ends: switch tap null%s%s\n",
	       hvs_net_have_slirp() ? " user" : "",
	       hvs_net_have_pcap() ? " pcap" : "");
}

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "hvsim: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(try hvsim --help)\n");
	exit(2);
}

static void die_oom(void)
{
	fprintf(stderr, "hvsim: out of memory\n");
	exit(2);
}

/* ---- argument parsing -------------------------------------------------- */

static struct vm *vm_new(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm **nv = realloc(g.vms, (g.nvms + 1) * sizeof(*nv));

	if (!nv)
		die_oom();
	g.vms = nv;
	if (!vm)
		die_oom();
	vm->index = (int)g.nvms;
	vm->vcpus = 2;
	vm->ram = 256ull << 20;
	vm->max_version = HVS_VMBUS_VERSION_IRON;
	vm->ic_gen = HVS_IC_GEN_AUTO;
	vm->out.lb_fd = vm->err.lb_fd = -1;
	hvsim_watch_reset(vm);
	g.vms[g.nvms++] = vm;
	return vm;
}

static bool valid_vm_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HVSIM_ABI_MAX_NAME)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
		      *s == '-'))
			return false;
	return true;
}

static void set_path(char *dst, size_t cap, const char *opt, const char *v)
{
	if (!*v)
		die_usage("%s needs a non-empty path", opt);
	if (strlen(v) >= cap)
		die_usage("%s: path longer than 107 bytes", opt);
	strcpy(dst, v);
}

static bool parse_onoff(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "yes")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "no")) {
		*out = false;
		return true;
	}
	return false;
}

/* Append s to a malloc'd string array. */
static void push_arg(char ***arr, unsigned *n, const char *s)
{
	char **na = realloc(*arr, (*n + 1) * sizeof(*na));

	if (!na)
		die_oom();
	*arr = na;
	na[*n] = strdup(s);
	if (!na[*n])
		die_oom();
	(*n)++;
}

static void free_args(char **arr, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(arr[i]);
	free(arr);
}

/* --disk, --scsi, --net: checked now (exit 2 with the parser's reason),
 * opened once the VM's server exists. */
static void add_disk_arg(struct vm *vm, const char *v)
{
	static struct hvs_disk_spec spec;
	char err[256];

	if (hvs_disk_spec_parse(v, &spec, err, sizeof(err)) < 0) {
		fprintf(stderr, "hvsim: --disk '%s': %s\n(try hvsim --help; "
			"docs/storage.md)\n", v, err);
		exit(2);
	}
	push_arg(&vm->disk_args, &vm->ndisks, v);
}

static void add_scsi_arg(struct vm *vm, const char *v)
{
	struct hvs_storvsp_config cfg;
	char err[256] = "";
	unsigned idx;

	if (hvs_storage_controller_parse(v, &idx, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hvsim: --scsi '%s': %s\n(expected N[,subchannels=K]"
			"[,version=2.0|4.2|5.1|6.0|6.2][,queue_depth=Q]"
			"[,max_transfer=SIZE]; N 0..7)\n", v,
			err[0] ? err : "malformed");
		exit(2);
	}
	for (unsigned i = 0; i < vm->nscsi; i++) {
		unsigned other;
		struct hvs_storvsp_config oc;

		if (hvs_storage_controller_parse(vm->scsi_args[i], &other, &oc,
						 err, sizeof(err)) == 0 &&
		    other == idx)
			die_usage("--scsi: controller given twice ('%s')", v);
	}
	push_arg(&vm->scsi_args, &vm->nscsi, v);
}

static void add_net_arg(struct vm *vm, const char *v)
{
	static struct hvs_net_spec spec;
	struct vm_nic *nn;
	char err[256];

	if (hvs_net_parse(v, &spec, err, sizeof(err)) < 0) {
		fprintf(stderr, "hvsim: --net '%s': %s\n(try hvsim --help; "
			"docs/network.md)\n", v, err);
		exit(2);
	}
	if (spec.ns_kind == HVS_NET_USER && !hvs_net_have_slirp())
		die_usage("--net '%s': this hvsim is built without libslirp "
			  "(user networking); see hvsim --version", v);
	if (spec.ns_pcap[0] && !hvs_net_have_pcap())
		die_usage("--net '%s': this hvsim is built without libpcap "
			  "(pcap=); see hvsim --version", v);
	if (vm->nnics >= 16)
		die_usage("--net '%s': at most 16 NICs per VM", v);
	nn = realloc(vm->nics, (vm->nnics + 1) * sizeof(*nn));
	if (!nn)
		die_oom();
	vm->nics = nn;
	memset(&nn[vm->nnics], 0, sizeof(nn[0]));
	nn[vm->nnics].vn_arg = strdup(v);
	if (!nn[vm->nnics].vn_arg)
		die_oom();
	nn[vm->nnics].vn_kind = (int)spec.ns_kind;
	snprintf(nn[vm->nnics].vn_switch, sizeof(nn[0].vn_switch), "%s",
		 spec.ns_arg);
	vm->nnics++;
}

static void parse_tokens(int argc, char **argv, struct vm **curp);

static void load_config(const char *path, struct vm **curp)
{
	char err[512];
	char **tok = NULL;
	int n;

	if (++g.config_depth > MAX_CONFIG_DEPTH)
		die_usage("--config %s: nested more than 4 deep", path);
	n = hvsim_config_load(path, &tok, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "hvsim: --config %s\n", err);
		exit(2);
	}
	/* parse_tokens starts at index 1, like argv. */
	char **v = calloc((size_t)n + 2, sizeof(*v));
	if (!v)
		die_oom();
	v[0] = (char *)path;
	for (int i = 0; i < n; i++) {
		if (!strcmp(tok[i], "--"))
			die_usage("--config %s: '--' is not an option", path);
		v[i + 1] = tok[i];
	}
	parse_tokens(n + 1, v, curp);
	free(v);
	hvsim_free_argv(tok);
	g.config_depth--;
}

/* A VM option: the current VM, or a new one. */
static struct vm *cur_vm(struct vm **curp)
{
	if (!*curp)
		*curp = vm_new();
	return *curp;
}

static void parse_tokens(int argc, char **argv, struct vm **curp)
{
	char err[200];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		struct vm *cur = *curp;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(a, "--version")) {
			version();
			exit(0);
		}
		if (!strcmp(a, "--vm")) {
			*curp = vm_new();
			continue;
		}
		if (!strcmp(a, "--")) {
			/* The rest is the guest's argv, taken as is. */
			if (i + 1 >= argc)
				die_usage("%s must be followed by a guest command", a);
			if (!cur || cur->guest_cmd)
				cur = *curp = vm_new();
			cur->guest_argv = calloc((size_t)(argc - i), sizeof(char *));
			size_t cl = 1;
			for (int k = i + 1; k < argc; k++)
				cl += strlen(argv[k]) + 1;
			cur->guest_cmd = calloc(1, cl);
			if (!cur->guest_argv || !cur->guest_cmd)
				die_oom();
			for (int k = i + 1; k < argc; k++) {
				cur->guest_argv[k - i - 1] = strdup(argv[k]);
				if (!cur->guest_argv[k - i - 1])
					die_oom();
				if (k > i + 1)
					strcat(cur->guest_cmd, " ");
				strcat(cur->guest_cmd, argv[k]);
			}
			break;
		}
		if (strncmp(a, "--", 2))
			die_usage("unexpected argument '%s' (options start with --)", a);
		if (!v)
			die_usage("option %s needs a value", a);
		i++;
		if (!strcmp(a, "--config")) {
			load_config(v, curp);
		} else if (!strcmp(a, "--control")) {
			if (!strcmp(v, "none"))
				g.control_off = true;
			else
				set_path(g.control_path, sizeof(g.control_path), a, v);
			g.control_explicit = true;
		} else if (!strcmp(a, "--listen")) {
			set_path(g.listen_path, sizeof(g.listen_path), a, v);
		} else if (!strcmp(a, "--timeout")) {
			if (hvsim_parse_seconds(v, &g.timeout_ns))
				die_usage("--timeout '%s': expected seconds > 0", v);
		} else if (!strcmp(a, "--shutdown-timeout")) {
			if (hvsim_parse_seconds(v, &g.shutdown_timeout_ns))
				die_usage("--shutdown-timeout '%s': expected seconds > 0", v);
		} else if (!strcmp(a, "--status")) {
			bool on;
			if (parse_onoff(v, &on)) {
				g.status = on;
				g.status_ns = NS_PER_S;
			} else if (hvsim_parse_seconds(v, &g.status_ns) == 0 &&
				   g.status_ns >= NS_PER_S / 10) {
				g.status = 1;
			} else {
				die_usage("--status '%s': use on, off or seconds "
					  "(at least 0.1)", v);
			}
		} else if (!strcmp(a, "--log-level")) {
			enum hvs_log_level l;
			if (hvs_log_parse_level(v, &l))
				die_usage("--log-level '%s': use error, warn, info or debug", v);
			hvs_log_set_level(l);
		} else if (!strcmp(a, "--guest")) {
			if (!cur || cur->guest_cmd)
				cur = *curp = vm_new();
			int n = hvsim_split_cmd(v, &cur->guest_argv, err, sizeof(err));
			if (n < 0) {
				fprintf(stderr, "hvsim: --guest '%s': %s\n", v,
					n == -ENOMEM ? "out of memory" : err);
				exit(2);
			}
			cur->guest_cmd = strdup(v);
			if (!cur->guest_cmd)
				die_oom();
		} else if (!strcmp(a, "--name") || !strcmp(a, "--vm-name")) {
			cur = cur_vm(curp);
			if (cur->have_name)
				die_usage("%s given twice for one VM (use --vm between VMs)", a);
			if (!valid_vm_name(v))
				die_usage("VM name '%s': 1..64 bytes of A-Z a-z 0-9 . _ -", v);
			strcpy(cur->name, v);
			cur->have_name = true;
		} else if (!strcmp(a, "--vcpus")) {
			uint64_t n;
			cur = cur_vm(curp);
			if (cur->have_vcpus)
				die_usage("%s given twice for one VM", a);
			if (hvsim_parse_uint(v, 1, HVSIM_ABI_MAX_VCPUS, &n))
				die_usage("--vcpus '%s': expected 1..250", v);
			cur->vcpus = (uint32_t)n;
			cur->have_vcpus = true;
		} else if (!strcmp(a, "--memory")) {
			cur = cur_vm(curp);
			if (cur->have_memory)
				die_usage("%s given twice for one VM", a);
			if (hvsim_parse_size(v, &cur->ram, err, sizeof(err))) {
				fprintf(stderr, "hvsim: --memory '%s': %s\n", v, err);
				exit(2);
			}
			cur->have_memory = true;
		} else if (!strcmp(a, "--hyperv-version")) {
			cur = cur_vm(curp);
			if (cur->have_version)
				die_usage("%s given twice for one VM", a);
			if (hvsim_parse_version(v, &cur->max_version))
				die_usage("--hyperv-version '%s': use WS2008, WS2008R2, "
					  "WS2012, WS2012R2, WS2016, WS2019, WS2022 or "
					  "a version such as 4.1 or 5.0", v);
			cur->have_version = true;
		} else if (!strcmp(a, "--monitored")) {
			cur = cur_vm(curp);
			if (!parse_onoff(v, &cur->monitored))
				die_usage("--monitored '%s': use on or off", v);
		} else if (!strcmp(a, "--echo")) {
			uint64_t n;
			cur = cur_vm(curp);
			if (cur->have_echo)
				die_usage("%s given twice for one VM", a);
			if (hvsim_parse_uint(v, 0, 64, &n))
				die_usage("--echo '%s': expected 0..64", v);
			cur->echo = (uint32_t)n;
			cur->have_echo = true;
		} else if (!strcmp(a, "--ic")) {
			cur = cur_vm(curp);
			if (cur->have_ic)
				die_usage("%s given twice for one VM", a);
			if (!parse_onoff(v, &cur->ic_on))
				die_usage("--ic '%s': use on or off", v);
			cur->have_ic = true;
		} else if (!strcmp(a, "--ic-gen")) {
			cur = cur_vm(curp);
			if (cur->have_ic_gen)
				die_usage("%s given twice for one VM", a);
			if (hvs_ic_gen_parse(v, &cur->ic_gen))
				die_usage("--ic-gen '%s': use auto, ws2008, ws2008r2, "
					  "ws2012, ws2012r2, ws2016, ws2019, ws2022 "
					  "or future", v);
			cur->have_ic_gen = true;
		} else if (!strcmp(a, "--clock-skew")) {
			char *end;
			double sk;
			cur = cur_vm(curp);
			if (cur->have_clock_skew)
				die_usage("%s given twice for one VM", a);
			errno = 0;
			sk = strtod(v, &end);
			if (end == v || *end || errno || !(sk >= -1e9 && sk <= 1e9) ||
			    strlen(v) >= sizeof(cur->clock_skew))
				die_usage("--clock-skew '%s': seconds, e.g. 3600 or "
					  "-90.5, at most 1e9 either way", v);
			strcpy(cur->clock_skew, v);
			cur->have_clock_skew = true;
		} else if (!strcmp(a, "--disk")) {
			add_disk_arg(cur_vm(curp), v);
		} else if (!strcmp(a, "--scsi")) {
			add_scsi_arg(cur_vm(curp), v);
		} else if (!strcmp(a, "--net")) {
			add_net_arg(cur_vm(curp), v);
		} else {
			die_usage("unknown option '%s'", a);
		}
	}
}

/* ---- the default VM and the reference guest ------------------------------ */

/*
 * The reference guest: $HVSIM_GUEST (a command line), else hvguest next
 * to this program: ../hvguest/hvguest in the build tree, or the same
 * directory when installed. Returns false if none is found (*looked says
 * where it looked).
 */
static bool find_reference_guest(char *looked, size_t looklen)
{
	const char *env = getenv("HVSIM_GUEST");
	char self[PATH_MAX], cand[PATH_MAX + 32];
	ssize_t n;
	char *slash;

	if (g.guest_cmd[0])
		return true;
	if (env && *env) {
		snprintf(g.guest_cmd, sizeof(g.guest_cmd), "%s", env);
		return true;
	}
	looked[0] = 0;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = 0;
	static const char *const rel[] = { "/../hvguest/hvguest", "/hvguest" };
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(cand, sizeof(cand), "%s%s", self, rel[i]);
		if (access(cand, X_OK) == 0) {
			char *real = realpath(cand, NULL);
			/* Quoted for hvsim_split_cmd: paths with blanks. */
			snprintf(g.guest_cmd, sizeof(g.guest_cmd), "'%s' %s",
				 real ? real : cand, DEFAULT_GUEST_ARGS);
			free(real);
			return true;
		}
		size_t l = strlen(looked);
		snprintf(looked + l, looklen - l, "%s%s", l ? ", " : "", cand);
	}
	return false;
}

static void set_reference_guest(struct vm *vm)
{
	char looked[2 * PATH_MAX + 8], err[200];

	if (!find_reference_guest(looked, sizeof(looked))) {
		fprintf(stderr, "hvsim: VM %s has no --guest, and the reference "
			"guest hvguest is not next to hvsim (looked for %s).\n"
			"Give --guest CMD, set HVSIM_GUEST=CMD, or --listen PATH "
			"for a guest that connects.\n", vm->name, looked);
		exit(2);
	}
	if (hvsim_split_cmd(g.guest_cmd, &vm->guest_argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "hvsim: HVSIM_GUEST '%s': %s\n", g.guest_cmd, err);
		exit(2);
	}
	vm->guest_cmd = strdup(g.guest_cmd);
	if (!vm->guest_cmd)
		die_oom();
	vm->guest_default = true;
}

/* mkdir -p with mode 0700 for the components we create. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The default VM's disk: <cache>/hvsim/<vm>.img, created sparse. Its
 * path goes to path[len]. */
static void default_disk(struct vm *vm, char *path, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char dir[PATH_MAX], spec[PATH_MAX * 2 + 128];
	int r;

	if (xdg && xdg[0] == '/')
		snprintf(dir, sizeof(dir), "%s/hvsim", xdg);
	else if (home && home[0] == '/')
		snprintf(dir, sizeof(dir), "%s/.cache/hvsim", home);
	else
		snprintf(dir, sizeof(dir), "/tmp/hvsim-%u/cache", (unsigned)getuid());
	r = mkdir_p(dir);
	if (r < 0) {
		fprintf(stderr, "hvsim: cannot create the cache folder %s: %s\n",
			dir, strerror(-r));
		exit(2);
	}
	/* ",," is a literal comma in a --disk FILE. */
	char esc[PATH_MAX * 2];
	size_t o = 0;
	for (const char *p = dir; *p && o + 3 < sizeof(esc); p++) {
		esc[o++] = *p;
		if (*p == ',')
			esc[o++] = ',';
	}
	esc[o] = 0;
	r = snprintf(spec, sizeof(spec), "%s/%s.img,create,size=%s", esc,
		     vm->name, DEFAULT_DISK_SIZE);
	if (r < 0 || (size_t)r >= sizeof(spec) ||
	    strlen(dir) + strlen(vm->name) + 5 >= HVS_DISK_PATH_MAX) {
		fprintf(stderr, "hvsim: the cache folder path %s is too long\n",
			dir);
		exit(2);
	}
	r = snprintf(path, len, "%s/%s.img", dir, vm->name);
	if (r < 0 || (size_t)r >= len)
		path[0] = 0;
	add_disk_arg(vm, spec);
}

/* A TCP port on 127.0.0.1 nobody listens on now (0 if none). */
static unsigned free_tcp_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void default_vm(void)
{
	struct vm *vm = vm_new();
	char spec[160], disk[PATH_MAX + 16];
	unsigned port = 0, nbd_port = 0;

	g.default_run = true;
	snprintf(vm->name, sizeof(vm->name), "vm0");
	vm->have_name = true;
	vm->ram = DEFAULT_VM_RAM;
	default_disk(vm, disk, sizeof(disk));
	if (hvs_net_have_slirp()) {
		/* The reference guest's HTTP status page (80) and NBD
		 * server (10809). */
		port = free_tcp_port();
		nbd_port = free_tcp_port();
		if (nbd_port == port)
			nbd_port = 0;
		if (port && nbd_port)
			snprintf(spec, sizeof(spec),
				 "user,hostfwd=tcp:127.0.0.1:%u-:80,"
				 "hostfwd=tcp:127.0.0.1:%u-:10809", port,
				 nbd_port);
		else if (port)
			snprintf(spec, sizeof(spec),
				 "user,hostfwd=tcp:127.0.0.1:%u-:80", port);
		else
			snprintf(spec, sizeof(spec), "user");
	} else {
		snprintf(spec, sizeof(spec), "switch=vm0");
	}
	add_net_arg(vm, spec);
	printf("hvsim: the default VM: vm0, 2 vCPUs, 512 MiB, disk %s (1 GiB, "
	       "sparse, kept), %s, integration services\n", disk,
	       port ? "a NIC on user networking" :
	       hvs_net_have_slirp() ? "a NIC on user networking (no free port "
				      "to forward)" :
				      "a NIC on an internal switch (built "
				      "without libslirp)");
	if (port)
		printf("hvsim: vm0's TCP port 80 is at http://127.0.0.1:%u/\n",
		       port);
	if (nbd_port)
		printf("hvsim: vm0's TCP port 10809 (NBD) is at "
		       "nbd://127.0.0.1:%u/disk0\n", nbd_port);
	printf("hvsim: Ctrl-C shuts the guest down; meanwhile try "
	       "'hvsim ctl list' or 'hvsim ctl kvp-list vm0'\n");
	fflush(stdout);
}

static void parse_args(int argc, char **argv)
{
	struct vm *cur = NULL;

	parse_tokens(argc, argv, &cur);
	if (g.nvms == 0) {
		if (g.listen_path[0]) {
			fprintf(stderr, "hvsim: no VM given: --listen needs a VM "
					"(--name NAME) for the guest to attach to\n"
					"(try hvsim --help)\n");
			exit(2);
		}
		default_vm();
	}
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		if (!vm->have_name)
			snprintf(vm->name, sizeof(vm->name), "vm%u", i);
		/* Integration services: on, except for VMs of echo test devices
		 * (raw VMBus test benches that count their channels). */
		if (!vm->have_ic)
			vm->ic_on = vm->echo == 0;
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(g.vms[k]->name, vm->name)) {
				fprintf(stderr, "hvsim: two VMs named %s\n", vm->name);
				exit(2);
			}
	}
	for (unsigned i = 0; i < g.nvms; i++)
		if (!g.vms[i]->guest_cmd && !g.listen_path[0])
			set_reference_guest(g.vms[i]);
	if (g.status < 0)
		g.status = g.default_run || isatty(STDOUT_FILENO);
}

/* ---- guest output -------------------------------------------------------- */

static void emit_line(struct linebuf *lb, const char *s, size_t n)
{
	char buf[HVSIM_LINE_MAX + HVSIM_ABI_MAX_NAME + 8];
	int h = snprintf(buf, sizeof(buf), "[%s] ", lb->lb_vm->name);

	if (h < 0)
		return;
	memcpy(buf + h, s, n);
	buf[(size_t)h + n] = '\n';
	hvsim_term_write(lb->lb_out, buf, (size_t)h + n + 1);
}

static void linebuf_close(struct linebuf *lb)
{
	if (lb->lb_len) {
		emit_line(lb, lb->lb_buf, lb->lb_len);
		lb->lb_len = 0;
	}
	hvs_loop_del_fd(lb->lb_w);
	lb->lb_w = NULL;
	if (lb->lb_fd >= 0)
		close(lb->lb_fd);
	lb->lb_fd = -1;
}

/* Read what is there; returns false at EOF/error. */
static bool linebuf_read(struct linebuf *lb)
{
	char chunk[8192];

	for (int rounds = 0; rounds < 8; rounds++) {
		ssize_t r = read(lb->lb_fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return true;
		if (r <= 0)
			return false;
		for (ssize_t i = 0; i < r; i++) {
			if (chunk[i] == '\n') {
				emit_line(lb, lb->lb_buf, lb->lb_len);
				lb->lb_len = 0;
				continue;
			}
			if (lb->lb_len == sizeof(lb->lb_buf)) {
				emit_line(lb, lb->lb_buf, lb->lb_len);
				lb->lb_len = 0;
			}
			lb->lb_buf[lb->lb_len++] = chunk[i];
		}
	}
	return true;
}

static void linebuf_cb(void *arg, int fd, uint32_t events)
{
	struct linebuf *lb = arg;

	(void)fd;
	(void)events;
	if (!linebuf_read(lb)) {
		linebuf_close(lb);
		vm_check(lb->lb_vm);
	}
}

/* ---- VM life cycle ---------------------------------------------------------- */

static int exit_code_of(struct vm *vm)
{
	int code = 0;

	if (vm->timed_out)
		return 124;
	if (vm->pid || vm->guest_cmd) {
		if (WIFEXITED(vm->wstatus))
			code = WEXITSTATUS(vm->wstatus);
		else if (WIFSIGNALED(vm->wstatus))
			code = 128 + WTERMSIG(vm->wstatus);
	}
	if (code == 0 && vm->end_kind == HVS_END_CRASH)
		code = 1;
	return code;
}

static void all_done_check(void)
{
	for (unsigned i = 0; i < g.nvms; i++)
		if (g.vms[i]->state != VM_DONE)
			return;
	hvs_loop_stop(g.loop);
}

static void vm_done(struct vm *vm)
{
	vm->state = VM_DONE;
	hvs_loop_timer_cancel(vm->timeout_timer);
	vm->timeout_timer = NULL;
	hvs_loop_timer_cancel(vm->sd_timer);
	vm->sd_timer = NULL;
	vm->exit_code = exit_code_of(vm);
	HVS_INFO(vm->name, "VM done, status %d", vm->exit_code);
	if (vm->exit_code && !g.exit_set) {
		g.exit_code = vm->exit_code;
		g.exit_set = true;
	}
	all_done_check();
}

static void kill_cb(void *arg)
{
	struct vm *vm = arg;

	vm->kill_timer = NULL;
	if (vm->pid && !vm->reaped) {
		HVS_WARN(vm->name, "guest pid %d did not exit: SIGKILL",
			 (int)vm->pid);
		kill(vm->pid, SIGKILL);
	}
}

static void term_now(struct vm *vm)
{
	if (!vm->pid || vm->reaped)
		return;
	kill(vm->pid, SIGTERM);
	if (!vm->kill_timer)
		vm->kill_timer = hvs_loop_timer_add(g.loop, KILL_GRACE_NS, 0,
						    kill_cb, vm);
}

static void term_cb(void *arg)
{
	struct vm *vm = arg;

	vm->term_timer = NULL;
	if (vm->pid && !vm->reaped) {
		HVS_INFO(vm->name, "guest pid %d still running after the "
			 "partition ended: SIGTERM", (int)vm->pid);
		term_now(vm);
	}
}

static void finish_cb(void *arg)
{
	struct vm *vm = arg;
	bool reboot;

	vm->finish_scheduled = false;
	hvs_loop_timer_cancel(vm->term_timer);
	vm->term_timer = NULL;
	hvs_loop_timer_cancel(vm->kill_timer);
	vm->kill_timer = NULL;
	hvs_partition_destroy(vm->part);
	vm->part = NULL;
	linebuf_close(&vm->out);
	linebuf_close(&vm->err);
	reboot = vm->part_ended && vm->end_kind == HVS_END_REBOOT &&
		 !vm->stop_requested && !vm->timed_out && !g.shutting_down;
	if (reboot) {
		HVS_INFO(vm->name, "rebooting");
		vm_boot(vm);
		return;
	}
	vm_done(vm);
}

/* Called whenever something of a VM ended: finish once all of it has. */
static void vm_check(struct vm *vm)
{
	if (vm->state != VM_RUNNING && vm->state != VM_ENDING)
		return;
	if (vm->part && !vm->part_ended)
		return;
	if (vm->pid && !vm->reaped)
		return;
	if (vm->finish_scheduled)
		return;
	vm->state = VM_ENDING;
	vm->finish_scheduled = true;
	/* Deferred: we may be inside the partition's own callback. */
	if (hvs_loop_call(g.loop, finish_cb, vm) < 0) {
		vm->finish_scheduled = false;
		HVS_ERR(vm->name, "out of memory finishing the VM");
	}
}

static void part_ended_cb(void *arg, struct hvs_partition *p, int kind)
{
	struct vm *vm = arg;

	(void)p;
	vm->part_ended = true;
	vm->end_kind = kind;
	vm->state = VM_ENDING;
	if (vm->ic)
		hvs_ic_partition_ended(vm->ic, kind);
	hvs_loop_timer_cancel(vm->sd_timer);
	vm->sd_timer = NULL;
	if (vm->pid && !vm->reaped && !vm->term_timer && !vm->kill_timer)
		vm->term_timer = hvs_loop_timer_add(g.loop, TERM_GRACE_NS, 0,
						    term_cb, vm);
	vm_check(vm);
}

static void vm_stop(struct vm *vm, const char *why)
{
	vm->stop_requested = true;
	switch (vm->state) {
	case VM_WAITING:
		HVS_INFO(vm->name, "stopping (%s)", why);
		vm_done(vm);
		return;
	case VM_RUNNING:
	case VM_ENDING:
		HVS_INFO(vm->name, "stopping (%s)", why);
		if (vm->part && !vm->part_ended)
			hvs_partition_stop(vm->part, HVS_END_GONE);
		term_now(vm);
		vm_check(vm);
		return;
	case VM_DONE:
		return;
	}
}

static void timeout_cb(void *arg)
{
	struct vm *vm = arg;

	vm->timeout_timer = NULL;
	if (vm->state == VM_DONE)
		return;
	HVS_WARN(vm->name, "timeout: ending the VM");
	vm->timed_out = true;
	vm_stop(vm, "timeout");
}

/* ---- guest shutdown through the shutdown service ------------------------- */

static void power_off_now(void *arg)
{
	struct vm *vm = arg;

	if (vm->part && !vm->part_ended && vm->state == VM_RUNNING)
		hvs_partition_stop(vm->part, HVS_END_POWER_OFF);
}

/* Power the VM off from the loop, outside any partition or channel
 * callback (hvs_partition_stop must not run inside the partition's own
 * callbacks). */
static void power_off_later(struct vm *vm)
{
	if (hvs_loop_call(g.loop, power_off_now, vm) < 0)
		vm_stop(vm, "power off");
}

/* ic_power_off: the guest did not stop by the shutdown deadline. */
static void ic_power_off_cb(void *arg, const char *why)
{
	struct vm *vm = arg;

	HVS_WARN(vm->name, "%s: powering the VM off", why ? why : "shutdown deadline");
	power_off_later(vm);
}

static void sd_done(void *arg, int err, uint32_t ic_status)
{
	struct vm *vm = arg;

	if (!vm->sd_requested || vm->state != VM_RUNNING || vm->part_ended)
		return;
	if (err || ic_status) {
		HVS_WARN(vm->name, "the guest did not accept the shutdown request "
			 "(%s, status 0x%x): powering it off",
			 err ? strerror(-err) : "refused", ic_status);
		power_off_later(vm);
	}
}

/* Our own backstop behind the service's deadline. */
static void sd_backstop_cb(void *arg)
{
	struct vm *vm = arg;

	vm->sd_timer = NULL;
	if (vm->state == VM_RUNNING && vm->part && !vm->part_ended) {
		HVS_WARN(vm->name, "the guest did not shut down in time: "
			 "powering it off");
		power_off_now(vm);
	}
}

int hvsim_guest_shutdown(struct vm *vm, uint32_t flags, uint64_t deadline_ns,
			 const char *message)
{
	if (!vm->ic)
		return -ENODEV;
	return hvs_ic_shutdown(vm->ic, flags,
			       deadline_ns ? deadline_ns : g.shutdown_timeout_ns,
			       message, sd_done, vm);
}

/*
 * SIGINT (Ctrl-C), or `ctl shutdown` with graceful: ask each running guest
 * to shut down through its shutdown service; a guest without one (or that
 * cannot be asked now) is stopped at once.
 */
static void shutdown_graceful(const char *why)
{
	HVS_INFO(NULL, "shutting down (%s): asking the guests to shut down, "
		 "%.1f s each", why, (double)g.shutdown_timeout_ns / 1e9);
	g.shutting_down = true;
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		int r = -ENODEV;

		if (vm->state == VM_DONE || vm->sd_requested)
			continue;
		vm->stop_requested = true;
		if (vm->state == VM_RUNNING && vm->part && !vm->part_ended)
			r = hvsim_guest_shutdown(vm, 0, g.shutdown_timeout_ns, why);
		if (r == 0 || r == -EBUSY) {
			vm->sd_requested = true;
			if (!vm->sd_timer)
				vm->sd_timer = hvs_loop_timer_add(
					g.loop, g.shutdown_timeout_ns + SD_BACKSTOP_NS,
					0, sd_backstop_cb, vm);
			HVS_INFO(vm->name, "asked the guest to shut down");
			continue;
		}
		vm_stop(vm, why);
	}
}

static struct hvs_partition *make_partition(struct vm *vm, int sock,
					    const void *first, size_t first_len)
{
	struct hvs_partition_config pc = {
		.name = vm->name,
		.vcpus = vm->vcpus,
		.ram_bytes = vm->ram,
		.ops = hvs_vmbus_partition_ops(),
		.ops_arg = vm->srv,
		.sock_fd = sock,
		.first_dgram = first,
		.first_len = first_len,
		.host_ended = part_ended_cb,
		.host_arg = vm,
		.hello_timeout_ns = HELLO_TIMEOUT_NS,
	};
	struct hvs_partition *p;
	int r;

	vm->part_ended = false;
	vm->end_kind = HVS_END_GONE;
	vm->part = NULL;
	r = hvs_partition_create(g.loop, &pc, &p);
	if (r < 0) {
		HVS_ERR(vm->name, "cannot create the partition: %s",
			strerror(-r));
		return NULL;
	}
	vm->part = p;
	vm->started_ns = hvs_now_ns();
	hvsim_watch_reset(vm);
	hvs_vmbus_attach(vm->srv, p);
	return p;
}

static int spawn_guest(struct vm *vm, int child_sock)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, defs;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char **envp = NULL;
	size_t nenv = 0, k = 0;
	char fdvar[32], namevar[HVSIM_ABI_MAX_NAME + 32], skewvar[64];
	int r, co = -1, ce = -1, cs = -1;

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = errno;
		goto out;
	}
	/* Child ends above 10 so the dup2 to 1, 2, 3 never clobbers them. */
	co = fcntl(outp[1], F_DUPFD_CLOEXEC, 10);
	ce = fcntl(errp[1], F_DUPFD_CLOEXEC, 10);
	cs = fcntl(child_sock, F_DUPFD_CLOEXEC, 10);
	if (co < 0 || ce < 0 || cs < 0) {
		r = errno;
		goto out;
	}
	for (char **e = environ; *e; e++)
		nenv++;
	envp = calloc(nenv + 4, sizeof(*envp));
	if (!envp) {
		r = ENOMEM;
		goto out;
	}
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "HVSIM_FD=", 9) && strncmp(*e, "HVSIM_SOCKET=", 13) &&
		    strncmp(*e, "HVSIM_VM_NAME=", 14) &&
		    (!vm->have_clock_skew ||
		     strncmp(*e, "VMBUS_POSIX_WALL_SKEW=", 22)))
			envp[k++] = *e;
	snprintf(fdvar, sizeof(fdvar), "%s=3", HVSIM_ENV_FD);
	snprintf(namevar, sizeof(namevar), "HVSIM_VM_NAME=%s", vm->name);
	envp[k++] = fdvar;
	envp[k++] = namevar;
	if (vm->have_clock_skew) {
		snprintf(skewvar, sizeof(skewvar), "VMBUS_POSIX_WALL_SKEW=%s",
			 vm->clock_skew);
		envp[k++] = skewvar;
	}
	envp[k] = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, co, 1);
	posix_spawn_file_actions_adddup2(&fa, ce, 2);
	posix_spawn_file_actions_adddup2(&fa, cs, 3);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGCHLD);
	sigaddset(&defs, SIGPIPE);
	sigaddset(&defs, SIGHUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &defs);
	/* Own process group: a terminal ^C reaches hvsim, which ends the
	 * VMs in order. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF |
					      POSIX_SPAWN_SETPGROUP);
	r = posix_spawnp(&vm->pid, vm->guest_argv[0], &fa, &at,
			 vm->guest_argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r) {
		vm->pid = 0;
		goto out;
	}
	vm->reaped = false;
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	vm->out = (struct linebuf){ .lb_fd = outp[0], .lb_out = STDOUT_FILENO,
				    .lb_vm = vm };
	vm->err = (struct linebuf){ .lb_fd = errp[0], .lb_out = STDERR_FILENO,
				    .lb_vm = vm };
	outp[0] = errp[0] = -1;
	vm->out.lb_w = hvs_loop_add_fd(g.loop, vm->out.lb_fd, HVS_EV_IN,
				       linebuf_cb, &vm->out);
	vm->err.lb_w = hvs_loop_add_fd(g.loop, vm->err.lb_fd, HVS_EV_IN,
				       linebuf_cb, &vm->err);
	HVS_INFO(vm->name, "guest started: pid %d (%s)", (int)vm->pid,
		 vm->guest_cmd);
out:
	free(envp);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (co >= 0)
		close(co);
	if (ce >= 0)
		close(ce);
	if (cs >= 0)
		close(cs);
	return r;
}

static void vm_boot(struct vm *vm)
{
	int sv[2];
	int r;

	vm->boots++;
	vm->pid = 0;
	vm->reaped = false;
	vm->wstatus = 0;
	vm->part_ended = false;
	if (!vm->guest_cmd) {
		vm->state = VM_WAITING;
		HVS_INFO(vm->name, "waiting for a guest on %s", g.listen_path);
		return;
	}
	vm->state = VM_RUNNING;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		HVS_ERR(vm->name, "socketpair: %s", strerror(errno));
		vm->wstatus = 2 << 8;
		vm_done(vm);
		return;
	}
	if (!make_partition(vm, sv[0], NULL, 0)) {
		close(sv[0]);
		close(sv[1]);
		vm->wstatus = 2 << 8;
		vm_done(vm);
		return;
	}
	r = spawn_guest(vm, sv[1]);
	close(sv[1]);
	if (r) {
		HVS_ERR(vm->name, "cannot start guest '%s': %s",
			vm->guest_argv[0], strerror(r));
		vm->wstatus = 127 << 8;
		hvs_partition_stop(vm->part, HVS_END_GONE);
		return; /* part_ended_cb -> vm_check -> finish */
	}
}

/* ---- HVSIM_SOCKET listener ------------------------------------------------ */

static void pending_free(struct pending_conn *pc, bool close_fd)
{
	for (int i = 0; i < MAX_PENDING_CONNS; i++)
		if (g.pending[i] == pc)
			g.pending[i] = NULL;
	hvs_loop_del_fd(pc->pc_w);
	hvs_loop_timer_cancel(pc->pc_timer);
	if (close_fd)
		close(pc->pc_fd);
	free(pc);
}

static void pending_timeout_cb(void *arg)
{
	struct pending_conn *pc = arg;

	pc->pc_timer = NULL;
	HVS_WARN(NULL, "listener: a guest connected but sent no HELLO");
	pending_free(pc, true);
}

static void refuse_hello(int fd, const uint8_t *dg, size_t len, int32_t result)
{
	uint8_t rep[sizeof(struct hvsim_abi_reply)];
	uint64_t seq = len >= 16 ? hv_get_le64(dg + 8) : 0;

	hv_put_le32(rep, HVSIM_ABI_MAGIC);
	hv_put_le16(rep + 4, HVSIM_ABI_WELCOME);
	hv_put_le16(rep + 6, 0);
	hv_put_le64(rep + 8, seq);
	hv_put_le32(rep + 16, (uint32_t)result);
	hv_put_le32(rep + 20, 0);
	send(fd, rep, sizeof(rep), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void pending_cb(void *arg, int fd, uint32_t events)
{
	struct pending_conn *pc = arg;
	uint8_t dg[HVSIM_ABI_MAX_DGRAM];
	char name[HVSIM_ABI_MAX_NAME + 1];
	struct vm *vm = NULL;
	unsigned waiting = 0;
	ssize_t n;
	int r;

	(void)events;
	n = recv(fd, dg, sizeof(dg), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		pending_free(pc, true);
		return;
	}
	if ((size_t)n > sizeof(dg)) {
		HVS_WARN(NULL, "listener: oversized first datagram: closing");
		pending_free(pc, true);
		return;
	}
	r = hvs_abi_parse_hello(dg, (size_t)n, name);
	if (r < 0) {
		HVS_WARN(NULL, "listener: first datagram is not a valid HELLO: closing");
		if ((size_t)n >= 16)
			refuse_hello(fd, dg, (size_t)n,
				     r == -VMBUS_EOPNOTSUPP ? HVSIM_ABI_EOPNOTSUPP
							    : HVSIM_ABI_EPROTO);
		pending_free(pc, true);
		return;
	}
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *c = g.vms[i];
		if (c->guest_cmd || c->state != VM_WAITING)
			continue;
		waiting++;
		if (name[0] ? !strcmp(c->name, name) : true)
			vm = vm ? vm : c;
	}
	if (!name[0] && waiting != 1)
		vm = NULL;
	if (!vm) {
		HVS_WARN(NULL, "listener: HELLO for VM \"%s\": no such VM waiting",
			 name);
		refuse_hello(fd, dg, (size_t)n, HVSIM_ABI_EINVAL);
		pending_free(pc, true);
		return;
	}
	pending_free(pc, false);
	vm->state = VM_RUNNING;
	if (!make_partition(vm, fd, dg, (size_t)n)) {
		close(fd);
		vm->state = VM_WAITING;
	}
}

static void listen_cb(void *arg, int fd, uint32_t events)
{
	struct pending_conn *pc;
	int slot = -1, cfd;

	(void)arg;
	(void)events;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	for (int i = 0; i < MAX_PENDING_CONNS; i++)
		if (!g.pending[i]) {
			slot = i;
			break;
		}
	pc = slot >= 0 ? calloc(1, sizeof(*pc)) : NULL;
	if (!pc) {
		HVS_WARN(NULL, "listener: too many guests connecting; refusing one");
		close(cfd);
		return;
	}
	pc->pc_fd = cfd;
	pc->pc_w = hvs_loop_add_fd(g.loop, cfd, HVS_EV_IN, pending_cb, pc);
	pc->pc_timer = hvs_loop_timer_add(g.loop, HELLO_TIMEOUT_NS, 0,
					  pending_timeout_cb, pc);
	if (!pc->pc_w || !pc->pc_timer) {
		hvs_loop_del_fd(pc->pc_w);
		hvs_loop_timer_cancel(pc->pc_timer);
		close(cfd);
		free(pc);
		return;
	}
	g.pending[slot] = pc;
}

static int listen_start(void)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, g.listen_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (e == EADDRINUSE) {
			int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
			bool live = probe >= 0 &&
				    connect(probe, (struct sockaddr *)&sa,
					    sizeof(sa)) == 0;
			if (probe >= 0)
				close(probe);
			if (!live && unlink(g.listen_path) == 0 &&
			    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
				e = 0;
		}
		if (e) {
			close(fd);
			return -e;
		}
	}
	if (listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		unlink(g.listen_path);
		return -e;
	}
	g.listen_fd = fd;
	g.listen_w = hvs_loop_add_fd(g.loop, fd, HVS_EV_IN, listen_cb, NULL);
	return g.listen_w ? 0 : -ENOMEM;
}

/* ---- signals -------------------------------------------------------------- */

static void poll_cb(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		if (vm->srv && vm->part && !vm->part_ended)
			hvs_vmbus_poll(vm->srv);
	}
}

static void watch_cb(void *arg)
{
	(void)arg;
	hvsim_watch(g.vms, g.nvms);
}

static void status_cb(void *arg)
{
	(void)arg;
	hvsim_status_tick(g.vms, g.nvms);
}

static void shutdown_all(const char *why)
{
	if (!g.shutting_down)
		HVS_INFO(NULL, "shutting down (%s)", why);
	g.shutting_down = true;
	for (unsigned i = 0; i < g.nvms; i++)
		vm_stop(g.vms[i], why);
}

static void reap(void)
{
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		int st;

		if (!vm->pid || vm->reaped)
			continue;
		pid_t r = waitpid(vm->pid, &st, WNOHANG);
		if (r != vm->pid)
			continue;
		vm->reaped = true;
		vm->wstatus = st;
		if (WIFEXITED(st))
			HVS_INFO(vm->name, "guest pid %d exited with status %d",
				 (int)vm->pid, WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			HVS_INFO(vm->name, "guest pid %d killed by signal %d",
				 (int)vm->pid, WTERMSIG(st));
		/* What it wrote before exiting is in the pipes: take it now;
		 * descendants holding the pipes must not keep the VM alive. */
		if (vm->out.lb_fd >= 0)
			linebuf_read(&vm->out);
		if (vm->err.lb_fd >= 0)
			linebuf_read(&vm->err);
		linebuf_close(&vm->out);
		linebuf_close(&vm->err);
		hvs_loop_timer_cancel(vm->term_timer);
		vm->term_timer = NULL;
		hvs_loop_timer_cancel(vm->kill_timer);
		vm->kill_timer = NULL;
		if (vm->part && !vm->part_ended)
			hvs_partition_stop(vm->part, HVS_END_GONE);
		else
			vm_check(vm);
	}
}

static void signal_cb(void *arg, int fd, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)arg;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap();
			break;
		case SIGINT:
		case SIGTERM:
		case SIGHUP:
			if (si.ssi_signo == SIGINT && g.sigints++ == 0) {
				shutdown_graceful("SIGINT");
				break;
			}
			if (++g.sigints > 1) {
				HVS_WARN(NULL, "second signal: killing every guest");
				for (unsigned i = 0; i < g.nvms; i++)
					if (g.vms[i]->pid && !g.vms[i]->reaped)
						kill(g.vms[i]->pid, SIGKILL);
			}
			shutdown_all(strsignal((int)si.ssi_signo));
			break;
		}
	}
}

/* ---- control socket ops ------------------------------------------------- */

static struct vm *vm_by_name(const char *name)
{
	for (unsigned i = 0; i < g.nvms; i++)
		if (!strcmp(g.vms[i]->name, name))
			return g.vms[i];
	return NULL;
}

static int count_chan_cb(void *ctx, const struct hvs_chan_info *ci)
{
	(void)ci;
	(*(unsigned *)ctx)++;
	return 0;
}

const char *hvsim_vm_state_name(const struct vm *vm)
{
	switch (vm->state) {
	case VM_WAITING: return "waiting";
	case VM_RUNNING:
		if (vm->part) {
			struct hvs_partition_stats st;
			hvs_partition_get_stats(vm->part, &st);
			if (st.ps_state == HVS_PART_WAIT_HELLO)
				return "starting";
		}
		return "running";
	case VM_ENDING: return "ending";
	case VM_DONE: return "done";
	}
	return "?";
}

/* The partition's counters as members of an object named key. */
static void write_partition_stats(struct hvs_jw *w, const char *key,
				  struct hvs_partition *p)
{
	struct hvs_partition_stats st;

	hvs_partition_get_stats(p, &st);
	hvs_jw_obj_begin(w, key);
	hvs_jw_str(w, "state", hvs_partition_state_name(st.ps_state));
	if (st.ps_state == HVS_PART_ENDED)
		hvs_jw_str(w, "end", hvs_partition_end_name(st.ps_end_kind));
	hvs_jw_uint(w, "vcpus", st.ps_vcpus);
	hvs_jw_uint(w, "ram_bytes", st.ps_ram_bytes);
	hvs_jw_uint(w, "requests", st.ps_requests);
	hvs_jw_uint(w, "malformed", st.ps_malformed);
	hvs_jw_uint(w, "bad_vp", st.ps_bad_vp);
	hvs_jw_uint(w, "bad_msr", st.ps_bad_msr);
	hvs_jw_uint(w, "hc_errors", st.ps_hc_errors);
	hvs_jw_uint(w, "posts", st.ps_posts);
	hvs_jw_uint(w, "post_busy", st.ps_post_busy);
	hvs_jw_uint(w, "signals", st.ps_signals);
	hvs_jw_uint(w, "msgs_delivered", st.ps_msgs_delivered);
	hvs_jw_uint(w, "msgq_len", st.ps_msgq_len);
	hvs_jw_uint(w, "msgq_max", st.ps_msgq_max);
	hvs_jw_uint(w, "msgq_full", st.ps_msgq_full);
	hvs_jw_uint(w, "events", st.ps_events);
	hvs_jw_uint(w, "events_dropped", st.ps_events_dropped);
	hvs_jw_uint(w, "doorbells", st.ps_doorbells);
	hvs_jw_uint(w, "gpa_faults", st.ps_gpa_faults);
	hvs_jw_uint(w, "windows", st.ps_windows);
	hvs_jw_uint(w, "window_pages", st.ps_window_pages);
	hvs_jw_uint(w, "windows_total", st.ps_windows_total);
	if (st.ps_state == HVS_PART_ENDED && st.ps_end_kind == HVS_END_CRASH) {
		hvs_jw_arr_begin(w, "crash");
		for (int i = 0; i < 5; i++)
			hvs_jw_uint(w, NULL, st.ps_crash[i]);
		hvs_jw_arr_end(w);
	}
	hvs_jw_obj_end(w);
}

static void write_version(struct hvs_jw *w, const char *key, uint32_t v)
{
	char ver[16];

	if (!v) {
		hvs_jw_null(w, key);
		return;
	}
	snprintf(ver, sizeof(ver), "%u.%u", v >> 16, v & 0xFFFF);
	hvs_jw_str(w, key, ver);
}

static void ctl_list(void *arg, struct hvs_jw *w)
{
	(void)arg;
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		struct hvs_vmbus_stats vs;
		unsigned nch = 0;

		hvs_jw_obj_begin(w, NULL);
		hvs_jw_str(w, "name", vm->name);
		hvs_jw_str(w, "state", hvsim_vm_state_name(vm));
		hvs_jw_uint(w, "vcpus", vm->vcpus);
		hvs_jw_uint(w, "ram", vm->ram);
		hvs_jw_int(w, "pid", vm->pid && !vm->reaped ? vm->pid : 0);
		hvs_jw_str(w, "mode", vm->guest_cmd ? "fd" : "socket");
		hvs_jw_uint(w, "boots", vm->boots);
		memset(&vs, 0, sizeof(vs));
		if (vm->srv) {
			hvs_vmbus_get_stats(vm->srv, &vs);
			hvs_vmbus_foreach_channel(vm->srv, count_chan_cb, &nch);
		}
		write_version(w, "version", vs.vs_version);
		hvs_jw_uint(w, "channels", nch);
		hvs_jw_bool(w, "ic", vm->ic != NULL);
		hvs_jw_uint(w, "disks", vm->ndisks);
		hvs_jw_uint(w, "nics", vm->nnics);
		if (vm->state == VM_DONE)
			hvs_jw_int(w, "exit", vm->exit_code);
		if (vm->part)
			write_partition_stats(w, "partition", vm->part);
		hvs_jw_obj_end(w);
	}
}

static int ctl_channels(void *arg, const char *name, struct hvs_jw *w)
{
	struct vm *vm = vm_by_name(name);
	static char buf[192 * 1024];
	int n;

	(void)arg;
	if (!vm || !vm->srv)
		return -ENOENT;
	n = hvs_vmbus_describe_json(vm->srv, buf, sizeof(buf));
	if (n < 0 || !strstr(buf, "\"vm\":"))
		hvs_jw_str(w, "vm", vm->name);
	if (n < 0 || !hvs_jw_merge_obj(w, buf))
		hvs_jw_raw(w, "vmbus", n < 0 ? "null" : buf);
	return 0;
}

/* The VM named by the request's "vm" member; NULL with *errmsg set. */
static struct vm *req_vm(const struct hvs_json_obj *req, const char **errmsg,
			 int *err)
{
	const struct hvs_json_member *m = hvs_json_get(req, "vm");
	struct vm *vm;

	if (!m || m->jm_type != HVS_JSON_STRING) {
		*errmsg = "\"vm\" (string) required";
		*err = -EINVAL;
		return NULL;
	}
	vm = vm_by_name(m->jm_str);
	if (!vm) {
		*errmsg = "no such VM";
		*err = -ENOENT;
	}
	return vm;
}

/* {"cmd":"rescind","vm":V,"relid":N}: runs on the loop thread, like
 * every control command, so the server is called directly. */
static int ctl_rescind(struct vm *vm, const struct hvs_json_obj *req,
		       struct hvs_jw *w, const char **errmsg)
{
	const struct hvs_json_member *m = hvs_json_get(req, "relid");
	int r;

	if (!m || m->jm_type != HVS_JSON_INT || m->jm_int < 1 ||
	    m->jm_int > UINT32_MAX) {
		*errmsg = "\"relid\" (integer >= 1) required";
		return -EINVAL;
	}
	r = hvs_vmbus_rescind(vm->srv, (uint32_t)m->jm_int);
	if (r == -VMBUS_ENOENT) {
		*errmsg = "no such channel";
		return -ENOENT;
	}
	if (r == -VMBUS_EBUSY) {
		*errmsg = "channel already rescinded";
		return -EBUSY;
	}
	if (r < 0) {
		*errmsg = "rescind failed";
		return r;
	}
	HVS_INFO(vm->name, "control: channel relid %lld rescinded",
		 (long long)m->jm_int);
	hvs_jw_str(w, "vm", vm->name);
	hvs_jw_int(w, "relid", m->jm_int);
	return 0;
}

/* {"cmd":"stats","vm":V}: the VMBus server's and the partition's
 * counters (partition null while no guest is attached). */
static void ctl_stats(struct vm *vm, struct hvs_jw *w)
{
	struct hvs_vmbus_stats vs;

	hvs_vmbus_get_stats(vm->srv, &vs);
	hvs_jw_str(w, "vm", vm->name);
	hvs_jw_str(w, "state", hvsim_vm_state_name(vm));
	hvs_jw_uint(w, "boots", vm->boots);
	hvs_jw_obj_begin(w, "vmbus");
	hvs_jw_bool(w, "connected", vs.vs_connected);
	write_version(w, "version", vs.vs_version);
	hvs_jw_uint(w, "msgs_in", vs.vs_msgs_in);
	hvs_jw_uint(w, "msgs_out", vs.vs_msgs_out);
	hvs_jw_uint(w, "msgs_bad", vs.vs_msgs_bad);
	hvs_jw_uint(w, "outbox_queued", vs.vs_outbox_queued);
	hvs_jw_uint(w, "outbox_retries", vs.vs_outbox_retries);
	hvs_jw_uint(w, "gpadls", vs.vs_gpadls);
	hvs_jw_uint(w, "gpadl_windows", vs.vs_windows);
	hvs_jw_uint(w, "rsvd_nonzero", vs.vs_rsvd_nonzero);
	hvs_jw_obj_end(w);
	if (vm->part)
		write_partition_stats(w, "partition", vm->part);
	else
		hvs_jw_null(w, "partition");
	hvs_jw_uint(w, "log_suppressed", hvs_log_suppressed_total());
}

static int ctl_command(void *arg, const char *cmd, const struct hvs_json_obj *req,
		       struct hvs_jw *w, const char **errmsg)
{
	struct vm *vm;
	int err = 0;

	(void)arg;
	if (hvsim_is_vm_command(cmd)) {
		vm = req_vm(req, errmsg, &err);
		if (!vm)
			return err;
		return hvsim_vm_command(vm, cmd, req, w, errmsg);
	}
	if (!strcmp(cmd, "stop") || !strcmp(cmd, "rescind") ||
	    !strcmp(cmd, "stats")) {
		vm = req_vm(req, errmsg, &err);
		if (!vm)
			return err;
		if (!strcmp(cmd, "rescind"))
			return ctl_rescind(vm, req, w, errmsg);
		if (!strcmp(cmd, "stats")) {
			ctl_stats(vm, w);
			return 0;
		}
		vm_stop(vm, "control stop");
		hvs_jw_str(w, "vm", vm->name);
		return 0;
	}
	if (!strcmp(cmd, "shutdown")) {
		const struct hvs_json_member *gr = hvs_json_get(req, "graceful");

		if (gr && gr->jm_type != HVS_JSON_BOOL && gr->jm_type != HVS_JSON_NULL) {
			*errmsg = "\"graceful\" is a boolean";
			return -EINVAL;
		}
		if (gr && gr->jm_type == HVS_JSON_BOOL && gr->jm_bool)
			shutdown_graceful("control shutdown");
		else
			shutdown_all("control shutdown");
		hvs_jw_bool(w, "graceful", gr && gr->jm_type == HVS_JSON_BOOL &&
					   gr->jm_bool);
		return 0;
	}
	return -ENOSYS;
}

static const struct hvs_control_ops ctl_ops = {
	.list_vms = ctl_list,
	.channels = ctl_channels,
	.command = ctl_command,
};

/* ---- main -------------------------------------------------------------------- */

static int setup_control(void)
{
	int r;

	if (g.control_off)
		return 0;
	if (!g.control_explicit &&
	    hvs_control_default_path(g.control_path, sizeof(g.control_path)) < 0) {
		HVS_WARN(NULL, "default control socket path too long; no control socket");
		return 0;
	}
	hvs_control_mkdir_parent(g.control_path);
	r = hvs_control_create(g.loop, g.control_path, &ctl_ops, NULL, &g.ctl);
	if (r == 0) {
		HVS_INFO(NULL, "control socket %s", g.control_path);
		return 0;
	}
	if (g.control_explicit) {
		fprintf(stderr, "hvsim: --control %s: %s%s\n", g.control_path,
			strerror(-r),
			r == -EADDRINUSE ? " (another hvsim is serving it)" : "");
		return r;
	}
	/* The default path is shared by every hvsim of this user: a second
	 * one runs without (tests pass --control). */
	HVS_WARN(NULL, "control socket %s unavailable (%s); running without",
		 g.control_path, strerror(-r));
	return 0;
}

/* The VM's devices, in offer order: echo, integration services, SCSI
 * controllers with their disks, NICs. Prints the reason and returns -1 on
 * failure. */
/* The server freed a NIC (its channel rescinded): forget the pointer. */
static void nic_gone(void *arg)
{
	struct vm_nic *n = arg;

	n->vn_nic = NULL;
}

static int vm_setup(struct vm *vm)
{
	char err[512];
	int r;

	for (uint32_t k = 0; k < vm->echo; k++) {
		r = hvs_echo_add(vm->srv, NULL);
		if (r < 0) {
			fprintf(stderr, "hvsim: %s: cannot add echo device: %s\n",
				vm->name, strerror(-r));
			return -1;
		}
	}
	if (vm->ic_on) {
		struct hvs_ic_config c;

		hvs_ic_config_init(&c);
		c.ic_loop = g.loop;
		c.ic_gen = vm->ic_gen;
		c.ic_shutdown_deadline_ns = g.shutdown_timeout_ns;
		/* Time sync 4.0 carries the partition's reference counter;
		 * read through vm->part so it follows reboots. */
		c.ic_ref_time = hvs_partition_ref_time_at;
		c.ic_clock_arg = &vm->part;
		c.ic_power_off = ic_power_off_cb;
		c.ic_power_off_arg = vm;
		r = hvs_ic_add(vm->srv, &c, &vm->ic);
		if (r < 0 && !vm->ic) {
			fprintf(stderr, "hvsim: %s: cannot add the integration "
				"services: %s\n", vm->name, strerror(-r));
			return -1;
		}
	}
	vm->st = hvs_storage_create(vm->srv, g.loop);
	if (!vm->st) {
		fprintf(stderr, "hvsim: %s: out of memory\n", vm->name);
		return -1;
	}
	for (unsigned i = 0; i < vm->nscsi; i++) {
		struct hvs_storvsp_config cfg;
		unsigned idx;

		if (hvs_storage_controller_parse(vm->scsi_args[i], &idx, &cfg, err,
						 sizeof(err)) < 0 ||
		    (r = hvs_storage_config_controller(vm->st, idx, &cfg,
						       false)) < 0) {
			fprintf(stderr, "hvsim: %s: --scsi '%s' refused\n", vm->name,
				vm->scsi_args[i]);
			return -1;
		}
	}
	for (unsigned i = 0; i < vm->ndisks; i++) {
		static struct hvs_disk_spec spec;
		unsigned ctrl, lun;

		err[0] = 0;
		r = hvs_disk_spec_parse(vm->disk_args[i], &spec, err, sizeof(err));
		if (r == 0)
			r = hvs_storage_add_disk(vm->st, &spec, &ctrl, &lun, err,
						 sizeof(err));
		if (r < 0) {
			fprintf(stderr, "hvsim: %s: --disk '%s': %s\n", vm->name,
				vm->disk_args[i], err[0] ? err : strerror(-r));
			return -1;
		}
	}
	for (unsigned i = 0; i < vm->nnics; i++) {
		static struct hvs_net_spec spec;

		err[0] = 0;
		r = hvs_net_parse(vm->nics[i].vn_arg, &spec, err, sizeof(err));
		if (r == 0)
			r = hvs_netvsp_add(vm->srv, g.loop, &spec, i,
					   &vm->nics[i].vn_nic, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "hvsim: %s: --net '%s': %s\n", vm->name,
				vm->nics[i].vn_arg, err[0] ? err : strerror(-r));
			vm->nics[i].vn_nic = NULL;
			return -1;
		}
		vm->nics[i].vn_relid = (uint32_t)r;
		hvs_netvsp_on_destroy(vm->nics[i].vn_nic, nic_gone,
				      &vm->nics[i]);
	}
	return 0;
}

/* Free everything (the partitions are gone, or never were). */
static void teardown(void)
{
	hvsim_term_fini();
	for (int i = 0; i < MAX_PENDING_CONNS; i++)
		if (g.pending[i])
			pending_free(g.pending[i], true);
	hvs_control_destroy(g.ctl);
	g.ctl = NULL;
	if (g.listen_fd >= 0) {
		hvs_loop_del_fd(g.listen_w);
		close(g.listen_fd);
		unlink(g.listen_path);
		g.listen_fd = -1;
	}
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		hvs_partition_destroy(vm->part);
		linebuf_close(&vm->out);
		linebuf_close(&vm->err);
		hvs_loop_timer_cancel(vm->timeout_timer);
		hvs_loop_timer_cancel(vm->term_timer);
		hvs_loop_timer_cancel(vm->kill_timer);
		hvs_loop_timer_cancel(vm->sd_timer);
		/* NOTE: the server first: it frees the devices (IC, SCSI
		 * controllers and their disks, NICs); the storage set after. */
		if (vm->srv)
			hvs_vmbus_destroy(vm->srv);
		hvs_storage_destroy(vm->st);
		hvsim_free_argv(vm->guest_argv);
		free(vm->guest_cmd);
		free_args(vm->disk_args, vm->ndisks);
		free_args(vm->scsi_args, vm->nscsi);
		for (unsigned k = 0; k < vm->nnics; k++)
			free(vm->nics[k].vn_arg);
		free(vm->nics);
		free(vm);
	}
	free(g.vms);
	g.vms = NULL;
	g.nvms = 0;
	hvs_loop_timer_cancel(g.poll_timer);
	hvs_loop_timer_cancel(g.watch_timer);
	hvs_loop_timer_cancel(g.status_timer);
	hvs_loop_del_fd(g.sig_w);
	hvs_loop_destroy(g.loop);
	close(g.sigfd);
}

int main(int argc, char **argv)
{
	sigset_t mask;

	if (argc >= 2 && !strcmp(argv[1], "ctl"))
		return hvsim_ctl_main(argc - 1, argv + 1);
	parse_args(argc, argv);

	/* Before any thread exists: every thread inherits the mask, and the
	 * signals arrive only through the signalfd. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	g.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	g.loop = hvs_loop_create();
	if (g.sigfd < 0 || !g.loop) {
		fprintf(stderr, "hvsim: cannot set up the event loop: %s\n",
			strerror(errno));
		return 2;
	}
	g.sig_w = hvs_loop_add_fd(g.loop, g.sigfd, HVS_EV_IN, signal_cb, NULL);
	if (!g.sig_w) {
		fprintf(stderr, "hvsim: signalfd watch: %s\n", strerror(errno));
		return 2;
	}
	if (setup_control() < 0) {
		teardown();
		return 2;
	}
	if (g.listen_path[0]) {
		int r = listen_start();
		if (r < 0) {
			fprintf(stderr, "hvsim: --listen %s: %s\n", g.listen_path,
				strerror(-r));
			teardown();
			return 2;
		}
		HVS_INFO(NULL, "accepting HVSIM_SOCKET guests on %s",
			 g.listen_path);
	}
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		struct hvs_vmbus_config sc = {
			.vm_name = vm->name,
			.max_version = vm->max_version,
			.monitored = vm->monitored,
		};
		vm->srv = hvs_vmbus_create(&sc);
		if (!vm->srv) {
			fprintf(stderr, "hvsim: %s: cannot create the VMBus server\n",
				vm->name);
			teardown();
			return 2;
		}
		if (vm_setup(vm) < 0) {
			teardown();
			return 2;
		}
	}
	bool any_monitored = false;
	for (unsigned i = 0; i < g.nvms; i++)
		any_monitored |= g.vms[i]->monitored;
	uint64_t period = any_monitored ? POLL_MONITORED_NS : POLL_NS;
	g.poll_timer = hvs_loop_timer_add(g.loop, period, period, poll_cb, NULL);
	g.watch_timer = hvs_loop_timer_add(g.loop, WATCH_NS, WATCH_NS, watch_cb,
					   NULL);
	if (g.status) {
		hvsim_term_init(isatty(STDOUT_FILENO) ? 2 : 1);
		g.status_timer = hvs_loop_timer_add(g.loop, g.status_ns,
						    g.status_ns, status_cb, NULL);
	}
	for (unsigned i = 0; i < g.nvms; i++) {
		struct vm *vm = g.vms[i];
		if (g.timeout_ns)
			vm->timeout_timer = hvs_loop_timer_add(g.loop, g.timeout_ns,
							       0, timeout_cb, vm);
		vm_boot(vm);
	}

	int lr = hvs_loop_run(g.loop);
	if (lr < 0)
		HVS_ERR(NULL, "event loop failed: %s", strerror(-lr));
	if (g.status == 1 || g.status_timer)
		hvsim_status_tick(g.vms, g.nvms);
	teardown();
	if (lr < 0 && !g.exit_set)
		return 2;
	return g.exit_code;
}
