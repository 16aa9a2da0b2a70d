/*
 * posix.c - the posix platform port: options and environment, create and
 * destroy, logging, the gone state, power actions and shutdown hooks, fault
 * countdowns, and the `struct vmbus_platform` table.
 */
#include "posix_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hv/hvsim_abi.h"

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

static const char level_char[] = { 'E', 'W', 'I', 'D' };

static void posix_vlog(void *ctx, int level, const char *fmt, va_list ap)
{
	struct vmbus_posix *p = ctx;
	char line[1024];
	int n;

	if (level > p->po_log_level)
		return;
	if (level < VMBUS_LOG_ERR)
		level = VMBUS_LOG_ERR;
	if (level > VMBUS_LOG_DEBUG)
		level = VMBUS_LOG_DEBUG;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	if (p->po_log_fn) {
		p->po_log_fn(p->po_log_arg, level, line);
		return;
	}
	/* One call per line, so concurrent lines do not interleave. */
	fprintf(stderr, "%s: %c: %s\n", p->po_log_prefix, level_char[level],
		line);
}

void posix_log(struct vmbus_posix *p, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	posix_vlog(p, level, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Fault countdowns                                                    */
/* ------------------------------------------------------------------ */

bool posix_fault(struct vmbus_posix *p, int kind)
{
	bool hit = false;

	pthread_mutex_lock(&p->pf_lock);
	if (p->pf_tripped & (1u << kind)) {
		hit = true;
	} else if (p->pf_countdown[kind] != 0 && --p->pf_countdown[kind] == 0) {
		hit = true;
		if (p->pf_persist & (1u << kind))
			p->pf_tripped |= 1u << kind;
	}
	pthread_mutex_unlock(&p->pf_lock);
	if (hit)
		atomic_fetch_add(&p->st_fault_hits[kind], 1);
	return hit;
}

int vmbus_posix_fault_set(struct vmbus_posix *p, int kind, uint32_t n,
			  int persist)
{
	if (kind < 0 || kind >= VMBUS_POSIX_FAULT_COUNT)
		return -VMBUS_EINVAL;
	pthread_mutex_lock(&p->pf_lock);
	p->pf_countdown[kind] = n;
	p->pf_tripped &= ~(1u << kind);
	if (persist)
		p->pf_persist |= 1u << kind;
	else
		p->pf_persist &= ~(1u << kind);
	pthread_mutex_unlock(&p->pf_lock);
	return 0;
}

/* "N" or "N+" (persistent). Returns false when unset or malformed. */
static bool env_fault(struct vmbus_posix *p, const char *var, uint32_t *n,
		      bool *persist)
{
	const char *s = getenv(var);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	*persist = false;
	if (*end == '+') {
		*persist = true;
		end++;
	}
	if (errno || *end || v == 0 || v > UINT32_MAX) {
		posix_log(p, VMBUS_LOG_WARN, "ignoring %s=%s (want N or N+)",
			  var, s);
		return false;
	}
	*n = (uint32_t)v;
	return true;
}

/* ------------------------------------------------------------------ */
/* Gone                                                                */
/* ------------------------------------------------------------------ */

static const char *gone_name(int reason)
{
	switch (reason) {
	case VMBUS_POSIX_GONE_EOF: return "the host closed the socket";
	case VMBUS_POSIX_GONE_TIMEOUT: return "a request timed out";
	case VMBUS_POSIX_GONE_PROTO: return "the host broke the ABI";
	case VMBUS_POSIX_GONE_IOERR: return "socket error";
	case VMBUS_POSIX_GONE_RESET: return "RESET";
	default: return "?";
	}
}

bool posix_mark_gone(struct vmbus_posix *p, int reason)
{
	int alive = VMBUS_POSIX_ALIVE;

	return atomic_compare_exchange_strong(&p->pr_gone, &alive, reason);
}

void posix_gone_act(struct vmbus_posix *p)
{
	int no = 0;
	int reason = atomic_load(&p->pr_gone);

	if (!atomic_compare_exchange_strong(&p->pr_gone_acted, &no, 1))
		return;
	posix_log(p, VMBUS_LOG_ERR, "partition gone: %s", gone_name(reason));
	if (p->po_on_gone)
		p->po_on_gone(p->po_on_gone_arg, reason);
	if (p->po_gone_action == VMBUS_POSIX_GONE_EXIT) {
		posix_log(p, VMBUS_LOG_INFO, "exiting");
		exit(0);
	}
}

int vmbus_posix_gone(const struct vmbus_posix *p)
{
	return atomic_load(&((struct vmbus_posix *)p)->pr_gone);
}

/* ------------------------------------------------------------------ */
/* Shutdown hooks and power                                            */
/* ------------------------------------------------------------------ */

int vmbus_posix_add_shutdown_hook(struct vmbus_posix *p,
				  vmbus_posix_hook_fn *fn, void *arg)
{
	struct posix_hook *h;

	if (!fn)
		return -VMBUS_EINVAL;
	pthread_mutex_lock(&p->ph_lock);
	h = realloc(p->ph_hooks, (p->ph_count + 1) * sizeof(*h));
	if (!h) {
		pthread_mutex_unlock(&p->ph_lock);
		return -VMBUS_ENOMEM;
	}
	h[p->ph_count++] = (struct posix_hook){ .h_fn = fn, .h_arg = arg };
	p->ph_hooks = h;
	pthread_mutex_unlock(&p->ph_lock);
	return 0;
}

int vmbus_posix_remove_shutdown_hook(struct vmbus_posix *p,
				     vmbus_posix_hook_fn *fn, void *arg)
{
	int ret = -VMBUS_ENOENT;

	pthread_mutex_lock(&p->ph_lock);
	for (size_t i = p->ph_count; i-- > 0;) {
		if (p->ph_hooks[i].h_fn == fn && p->ph_hooks[i].h_arg == arg) {
			memmove(&p->ph_hooks[i], &p->ph_hooks[i + 1],
				(p->ph_count - i - 1) * sizeof(*p->ph_hooks));
			p->ph_count--;
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->ph_lock);
	return ret;
}

static void run_hooks(struct vmbus_posix *p)
{
	struct posix_hook *snap = NULL;
	size_t n;

	pthread_mutex_lock(&p->ph_lock);
	n = p->ph_count;
	if (n) {
		snap = malloc(n * sizeof(*snap));
		if (snap)
			memcpy(snap, p->ph_hooks, n * sizeof(*snap));
	}
	pthread_mutex_unlock(&p->ph_lock);
	if (n && !snap) {
		posix_log(p, VMBUS_LOG_ERR, "no memory to run shutdown hooks");
		return;
	}
	/* Last added first, like atexit. */
	for (size_t i = n; i-- > 0;)
		snap[i].h_fn(snap[i].h_arg);
	free(snap);
}

/* Run this program again with the same argv and environment. Every fd the
 * port opened is close-on-exec. Returns only on failure. */
static void reexec(struct vmbus_posix *p)
{
	static char buf[65536];
	char *argv[256];
	size_t len = 0, argc = 0;
	ssize_t n;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		goto fail;
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (size_t i = 0; i < len && argc < 255; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	argv[argc] = NULL;
	if (argc == 0)
		goto fail;
	posix_log(p, VMBUS_LOG_INFO, "reboot: starting %s again", argv[0]);
	execv("/proc/self/exe", argv);
fail:
	posix_log(p, VMBUS_LOG_ERR, "reboot: cannot start the program again: %s",
		  strerror(errno));
}

static int power(struct vmbus_posix *p, uint32_t kind)
{
	int err;

	posix_log(p, VMBUS_LOG_INFO, "%s: running shutdown hooks",
		  kind == HVSIM_RESET_REBOOT ? "reboot" : "power off");
	run_hooks(p);
	err = vmbus_posix_reset(p, kind);
	if (err) {
		posix_log(p, VMBUS_LOG_ERR, "RESET failed: %d", err);
		return err;
	}
	if (p->po_gone_action == VMBUS_POSIX_GONE_EXIT) {
		/* HVSIM_FD: the host starts the program again on reboot; a
		 * guest attached by HVSIM_SOCKET reconnects (DESIGN.md "Power
		 * and reboot"): start this program again ourselves. */
		if (kind == HVSIM_RESET_REBOOT && p->pr_by_socket)
			reexec(p);
		posix_log(p, VMBUS_LOG_INFO, "exiting");
		exit(0);
	}
	return 0;
}

static int posix_power_off(void *ctx)
{
	return power(ctx, HVSIM_RESET_POWER_OFF);
}

static int posix_reboot(void *ctx)
{
	return power(ctx, HVSIM_RESET_REBOOT);
}

/* ------------------------------------------------------------------ */
/* Options, create, destroy                                            */
/* ------------------------------------------------------------------ */

void vmbus_posix_options_init(struct vmbus_posix_options *o)
{
	memset(o, 0, sizeof(*o));
	o->po_fd = -1;
	o->po_log_level = -1;
	o->po_gone_action = VMBUS_POSIX_GONE_EXIT;
}

static uint32_t posix_vcpu_count(void *ctx)
{
	return ((struct vmbus_posix *)ctx)->pw_vcpus;
}

static double env_scale(struct vmbus_posix *p)
{
	static const char *const vars[] = { "VMBUS_TIME_SCALE",
					    "VMBUS_TEST_TIME_SCALE" };

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *s = getenv(vars[i]);
		char *end;
		double v;

		if (!s || !*s)
			continue;
		v = strtod(s, &end);
		if (*end || !isfinite(v) || v < 0.001 || v > 1e6) {
			posix_log(p, VMBUS_LOG_WARN, "ignoring %s=%s", vars[i],
				  s);
			continue;
		}
		return v;
	}
	return 1.0;
}

static int env_log_level(void)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };
	const char *s = getenv("VMBUS_LOG_LEVEL");

	if (!s || !*s)
		return VMBUS_LOG_INFO;
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (s[0] >= '0' && s[0] <= '3' && s[1] == '\0')
		return s[0] - '0';
	return VMBUS_LOG_INFO;
}

static int64_t env_skew_ns(struct vmbus_posix *p)
{
	const char *s = getenv("VMBUS_POSIX_WALL_SKEW");
	char *end;
	double v;

	if (!s || !*s)
		return 0;
	v = strtod(s, &end);
	if (*end || !isfinite(v) || fabs(v) > 1e9) {
		posix_log(p, VMBUS_LOG_WARN, "ignoring VMBUS_POSIX_WALL_SKEW=%s",
			  s);
		return 0;
	}
	return (int64_t)(v * 1e9);
}

/* HVSIM_FD: a decimal fd number of an open SOCK_SEQPACKET socket. */
static int env_fd(struct vmbus_posix *p, const char *s)
{
	char *end;
	long v;
	int type = 0;
	socklen_t tl = sizeof(type);

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 1 << 20 || fcntl((int)v, F_GETFD) < 0) {
		posix_log(p, VMBUS_LOG_ERR, "HVSIM_FD=%s is not an open fd", s);
		return -VMBUS_EINVAL;
	}
	if (getsockopt((int)v, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
	    type != SOCK_SEQPACKET) {
		posix_log(p, VMBUS_LOG_ERR,
			  "HVSIM_FD=%s is not a SOCK_SEQPACKET socket", s);
		return -VMBUS_EINVAL;
	}
	/* Not inherited by programs the guest may start. */
	fcntl((int)v, F_SETFD, FD_CLOEXEC);
	return (int)v;
}

static int connect_path(struct vmbus_posix *p, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		posix_log(p, VMBUS_LOG_ERR, "socket path too long: %s", path);
		return -VMBUS_EINVAL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -VMBUS_ENOMEM;
	deadline = posix_raw_mono_ns() +
		   posix_port_span_to_raw(p, p->pc_timeout_ns);
	/* A full listen backlog answers EAGAIN; retry until the deadline. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if ((errno == EAGAIN || errno == EINTR) &&
		    posix_raw_mono_ns() < deadline) {
			struct timespec ts = { 0, 10 * 1000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		posix_log(p, VMBUS_LOG_ERR, "connect %s: %s", path,
			  strerror(errno));
		close(fd);
		return -VMBUS_ENODEV;
	}
	return fd;
}

static void teardown(struct vmbus_posix *p)
{
	posix_watchdog_stop(p);
	posix_irq_detach(p);
	posix_defer_stop(p);
	posix_abi_detach(p);
	posix_mem_fini(p);
	if (p->pi_stop_efd >= 0)
		close(p->pi_stop_efd);
	if (p->pg_stop_efd >= 0)
		close(p->pg_stop_efd);
	pthread_mutex_destroy(&p->pr_lock);
	pthread_mutex_destroy(&p->pm_lock);
	pthread_mutex_destroy(&p->pi_lock);
	pthread_mutex_destroy(&p->pd_lock);
	pthread_cond_destroy(&p->pd_cond);
	pthread_mutex_destroy(&p->pt_lock);
	pthread_mutex_destroy(&p->ph_lock);
	pthread_mutex_destroy(&p->pf_lock);
	free(p->ph_hooks);
	free(p);
}

static void fill_platform(struct vmbus_posix *p, struct vmbus_platform *pl)
{
	memset(pl, 0, sizeof(*pl));
	pl->ctx = p;
	pl->vcpu_count = posix_vcpu_count;
	pl->current_vp = posix_current_vp;
	pl->rdmsr = posix_rdmsr;
	pl->wrmsr = posix_wrmsr;
	pl->hypercall = posix_hypercall;
	pl->page_alloc = posix_page_alloc;
	pl->page_free = posix_page_free;
	pl->virt_to_gpa = posix_virt_to_gpa;
	pl->zalloc = posix_zalloc;
	pl->free = posix_free;
	pl->lock_init = posix_lock_init;
	pl->lock_fini = posix_lock_fini;
	pl->lock = posix_lock;
	pl->unlock = posix_unlock;
	pl->wait_init = posix_wait_init;
	pl->wait_fini = posix_wait_fini;
	pl->now_ns = posix_now_ns;
	pl->wallclock_get = posix_wallclock_get;
	pl->wallclock_step = posix_wallclock_step;
	pl->wallclock_slew = posix_wallclock_slew;
	pl->vlog = posix_vlog;
	pl->power_off = posix_power_off;
	pl->reboot = posix_reboot;
	if (!p->po_polled) {
		pl->irq_attach = posix_irq_attach;
		pl->irq_detach = posix_irq_detach;
		pl->wait = posix_wait;
		pl->wake_all = posix_wake_all;
		pl->defer = posix_defer;
	}
}

int vmbus_posix_create(const struct vmbus_posix_options *opt,
		       struct vmbus_platform *out_plat,
		       struct vmbus_posix **out)
{
	static const char *const fault_env[VMBUS_POSIX_FAULT_COUNT] = {
		"VMBUS_POSIX_FAIL_ALLOC", "VMBUS_POSIX_FAIL_PAGE",
		"VMBUS_POSIX_FAIL_PAGE_FREE", "VMBUS_POSIX_FAIL_WAIT",
		"VMBUS_POSIX_FAIL_DEFER", "VMBUS_POSIX_FAIL_TIMEOUT",
	};
	struct vmbus_posix_options defaults;
	struct vmbus_posix *p;
	const char *name = NULL, *env;
	double scale;
	int fd = -1, err;
	bool by_socket = false;

	if (!out_plat || !out)
		return -VMBUS_EINVAL;
	*out = NULL;
	if (!opt) {
		vmbus_posix_options_init(&defaults);
		opt = &defaults;
	}
	if ((opt->po_gone_action != VMBUS_POSIX_GONE_EXIT &&
	     opt->po_gone_action != VMBUS_POSIX_GONE_FAIL) ||
	    (opt->po_time_scale != 0 &&
	     !(opt->po_time_scale >= 0.001 && opt->po_time_scale <= 1e6))) {
		if (opt->po_fd >= 0)
			close(opt->po_fd);
		return -VMBUS_EINVAL;
	}

	p = calloc(1, sizeof(*p));
	if (!p) {
		if (opt->po_fd >= 0)
			close(opt->po_fd);
		return -VMBUS_ENOMEM;
	}
	pthread_mutex_init(&p->pr_lock, NULL);
	pthread_mutex_init(&p->pm_lock, NULL);
	pthread_mutex_init(&p->pi_lock, NULL);
	pthread_mutex_init(&p->pd_lock, NULL);
	posix_cond_init_mono(&p->pd_cond);
	pthread_mutex_init(&p->pt_lock, NULL);
	pthread_mutex_init(&p->ph_lock, NULL);
	pthread_mutex_init(&p->pf_lock, NULL);
	p->pr_sock = -1;
	p->pw_sig_efd = -1;
	p->pi_stop_efd = -1;
	p->pg_stop_efd = -1;

	p->po_gone_action = opt->po_gone_action;
	p->po_on_gone = opt->po_on_gone;
	p->po_on_gone_arg = opt->po_on_gone_arg;
	p->po_log_level = opt->po_log_level >= 0 ? opt->po_log_level
						  : env_log_level();
	snprintf(p->po_log_prefix, sizeof(p->po_log_prefix), "%s",
		 opt->po_log_prefix ? opt->po_log_prefix : "vmbus");
	p->po_log_fn = opt->po_log_fn;
	p->po_log_arg = opt->po_log_arg;
	p->po_polled = opt->po_polled != 0;
	p->po_irq_vector = opt->po_irq_vector ? opt->po_irq_vector
					      : POSIX_DEFAULT_VECTOR;
	p->po_irq_vector_forced = opt->po_irq_vector != 0;

	scale = opt->po_time_scale != 0 ? opt->po_time_scale : env_scale(p);
	posix_time_init(p, scale,
			opt->po_wall_skew_ns ? opt->po_wall_skew_ns
					     : env_skew_ns(p),
			opt->po_slew_ppm ? opt->po_slew_ppm
					 : POSIX_DEFAULT_SLEW_PPM);
	p->pc_timeout_ns = opt->po_request_timeout_ns
				   ? opt->po_request_timeout_ns
				   : POSIX_DEFAULT_TIMEOUT_NS;

	for (int k = 0; k < VMBUS_POSIX_FAULT_COUNT; k++) {
		uint32_t n = opt->po_fault[k];
		bool persist = (opt->po_fault_persist >> k) & 1u;

		if (n || env_fault(p, fault_env[k], &n, &persist))
			vmbus_posix_fault_set(p, k, n, persist);
	}

	p->pi_stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->pg_stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->pi_stop_efd < 0 || p->pg_stop_efd < 0) {
		if (opt->po_fd >= 0)
			close(opt->po_fd);
		teardown(p);
		return -VMBUS_ENOMEM;
	}

	/* Attach: explicit fd, explicit path, $HVSIM_FD, $HVSIM_SOCKET. */
	if (opt->po_fd >= 0) {
		fd = opt->po_fd;
	} else if (opt->po_socket_path) {
		fd = connect_path(p, opt->po_socket_path);
		by_socket = p->pr_by_socket = true;
		name = opt->po_vm_name ? opt->po_vm_name
				       : getenv("HVSIM_VM_NAME");
	} else if ((env = getenv(HVSIM_ENV_FD)) != NULL && *env) {
		fd = env_fd(p, env);
	} else if ((env = getenv(HVSIM_ENV_SOCKET)) != NULL && *env) {
		fd = connect_path(p, env);
		by_socket = p->pr_by_socket = true;
		name = opt->po_vm_name ? opt->po_vm_name
				       : getenv("HVSIM_VM_NAME");
	} else {
		posix_log(p, VMBUS_LOG_ERR,
			  "no partition: set HVSIM_FD or HVSIM_SOCKET");
		fd = -VMBUS_EINVAL;
	}
	if (fd < 0) {
		teardown(p);
		return fd;
	}
	if (by_socket && (!name || !*name || strlen(name) > HVSIM_ABI_MAX_NAME)) {
		posix_log(p, VMBUS_LOG_ERR,
			  "socket attach needs a VM name of 1..%u bytes",
			  HVSIM_ABI_MAX_NAME);
		close(fd);
		teardown(p);
		return -VMBUS_EINVAL;
	}
	err = posix_abi_attach(p, fd, name);
	if (!err)
		err = posix_mem_init(p);
	if (!err && !p->po_polled)
		err = posix_defer_start(p, opt->po_defer_queue
						   ? opt->po_defer_queue
						   : POSIX_DEFAULT_DEFERQ);
	if (!err)
		err = posix_watchdog_start(p);
	if (err) {
		teardown(p);
		return err;
	}
	fill_platform(p, out_plat);
	*out = p;
	return 0;
}

void vmbus_posix_destroy(struct vmbus_posix *p)
{
	if (!p)
		return;
	if (posix_on_port_thread(p)) {
		/* Our own invariant: a port thread cannot join itself. */
		posix_log(p, VMBUS_LOG_ERR,
			  "vmbus_posix_destroy called from a port thread");
		abort();
	}
	teardown(p);
}

uint32_t vmbus_posix_vcpu_count(const struct vmbus_posix *p)
{
	return p->pw_vcpus;
}

uint64_t vmbus_posix_ram_bytes(const struct vmbus_posix *p)
{
	return p->pw_ram_bytes;
}

void *vmbus_posix_ram_base(const struct vmbus_posix *p)
{
	return p->pw_ram;
}

void vmbus_posix_get_stats(const struct vmbus_posix *cp,
			   struct vmbus_posix_stats *st)
{
	struct vmbus_posix *p = (struct vmbus_posix *)cp;

	memset(st, 0, sizeof(*st));
	st->ps_requests = atomic_load(&p->st_requests);
	st->ps_signals = atomic_load(&p->st_signals);
	st->ps_hypercalls = atomic_load(&p->st_hypercalls);
	st->ps_interrupts = atomic_load(&p->st_interrupts);
	st->ps_bad_replies = atomic_load(&p->st_bad_replies);
	st->ps_defer_dropped = atomic_load(&p->st_defer_dropped);
	st->ps_wall_steps = atomic_load(&p->st_wall_steps);
	st->ps_wall_slews = atomic_load(&p->st_wall_slews);
	for (int k = 0; k < VMBUS_POSIX_FAULT_COUNT; k++)
		st->ps_fault_hits[k] = atomic_load(&p->st_fault_hits[k]);
	pthread_mutex_lock(&p->pm_lock);
	st->ps_pages_total = p->pm_pages ? p->pm_pages - 1 : 0;
	st->ps_pages_used = p->pm_used;
	st->ps_pages_leaked = p->pm_leaked;
	pthread_mutex_unlock(&p->pm_lock);
}
