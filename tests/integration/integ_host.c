/*
 * tests/integration/integ_host.c - a minimal host for the end-to-end tests
 * that need a host action hvsim's control socket does not offer yet (a
 * channel rescind): the real partition, VMBus server and echo VSP of
 * src/host, one VM, one guest program started with HVSIM_FD, and line
 * commands on stdin. Everything else (logging, fault hooks) is the same
 * code hvsim runs.
 *
 * usage: integ_host [--echo N] [--hyperv-version X.Y] [--vcpus N]
 *                   [--memory MIB] [--name VM] [--timeout S]
 *                   [--fault NAME[:K=V,...]]... -- GUEST [ARG...]
 *
 * stdin commands (answer: one line "host: CMD: ..." on stdout):
 *   rescind RELID            hvs_vmbus_rescind
 *   fault NAME on|off [K=V]  hvs_fault_set (this VM)
 *   channels                 hvs_vmbus_describe_json
 *   quit                     end the partition (the guest sees EOF)
 * The guest's stdout and stderr are ours. Exit status: the guest's (128+N
 * if killed by signal N), 124 on timeout, 2 for a usage or start error.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/fault.h"
#include "host/log.h"
#include "host/loop.h"
#include "host/partition_host.h"
#include "host/vmbus_server.h"
#include "host/vsp/echo.h"

#define NS_PER_MS 1000000ull

static struct {
	struct hvs_loop *loop;
	struct hvs_vmbus *srv;
	struct hvs_partition *part;
	struct hvs_loop_fd *in_w;
	pid_t pid;
	int wstatus;
	bool reaped, ended, timed_out;
	char inbuf[4096];
	size_t inlen;
	const char *name;
} g;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("host: ", stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

/* "NAME[:K=V,K=V]" or "NAME on|off K=V ..." parameters into params. */
static int parse_params(char *s, const char *sep, struct hvs_fault_param *pp,
			unsigned *np)
{
	char *save = NULL;

	*np = 0;
	for (char *t = strtok_r(s, sep, &save); t; t = strtok_r(NULL, sep, &save)) {
		char *eq = strchr(t, '=');

		if (!eq || *np >= HVS_FAULT_MAX_PARAMS ||
		    (size_t)(eq - t) >= HVS_FAULT_PARAM_NAME_MAX)
			return -1;
		memset(&pp[*np], 0, sizeof(pp[*np]));
		memcpy(pp[*np].fp_name, t, (size_t)(eq - t));
		pp[*np].fp_value = strtoll(eq + 1, NULL, 0);
		(*np)++;
	}
	return 0;
}

static void cmd_line(char *line)
{
	char *save = NULL;
	char *cmd = strtok_r(line, " \t", &save);

	if (!cmd)
		return;
	if (!strcmp(cmd, "rescind")) {
		char *a = strtok_r(NULL, " \t", &save);
		int r = a ? hvs_vmbus_rescind(g.srv, (uint32_t)strtoul(a, NULL, 0))
			  : -EINVAL;

		say("rescind: %d", r);
	} else if (!strcmp(cmd, "fault")) {
		char *name = strtok_r(NULL, " \t", &save);
		char *onoff = strtok_r(NULL, " \t", &save);
		struct hvs_fault_param pp[HVS_FAULT_MAX_PARAMS];
		unsigned np = 0;
		int r = -EINVAL;

		if (name && onoff && parse_params(save ? save : (char *)"", " \t",
						  pp, &np) == 0)
			r = hvs_fault_set(name, !strcmp(onoff, "on"), pp, np, g.name);
		say("fault: %d", r);
	} else if (!strcmp(cmd, "channels")) {
		static char buf[64 * 1024];
		int n = hvs_vmbus_describe_json(g.srv, buf, sizeof(buf));

		say("channels: %s", n < 0 ? "null" : buf);
	} else if (!strcmp(cmd, "quit")) {
		if (g.part)
			hvs_partition_stop(g.part, HVS_END_GONE);
		say("quit: 0");
	} else {
		say("%s: unknown command", cmd);
	}
}

static void stdin_cb(void *arg, int fd, uint32_t ev)
{
	ssize_t n;
	char *nl;

	(void)arg;
	(void)ev;
	n = read(fd, g.inbuf + g.inlen, sizeof(g.inbuf) - 1 - g.inlen);
	if (n <= 0) {
		hvs_loop_del_fd(g.in_w);
		g.in_w = NULL;
		return;
	}
	g.inlen += (size_t)n;
	g.inbuf[g.inlen] = '\0';
	while ((nl = strchr(g.inbuf, '\n')) != NULL) {
		size_t used = (size_t)(nl - g.inbuf) + 1;

		*nl = '\0';
		cmd_line(g.inbuf);
		memmove(g.inbuf, g.inbuf + used, g.inlen - used);
		g.inlen -= used;
		g.inbuf[g.inlen] = '\0';
	}
	if (g.inlen == sizeof(g.inbuf) - 1)
		g.inlen = 0;	/* an overlong line: drop it */
}

static void ended_cb(void *arg, struct hvs_partition *p, int kind)
{
	(void)arg;
	(void)p;
	g.ended = true;
	say("partition ended: %s", hvs_partition_end_name(kind));
}

static void tick_cb(void *arg)
{
	(void)arg;
	if (!g.ended)
		hvs_vmbus_poll(g.srv);
	if (!g.reaped && waitpid(g.pid, &g.wstatus, WNOHANG) == g.pid) {
		g.reaped = true;
		if (!g.ended)
			hvs_partition_stop(g.part, HVS_END_GONE);
	}
	if (g.reaped && g.ended)
		hvs_loop_stop(g.loop);
}

static void timeout_cb(void *arg)
{
	(void)arg;
	say("timeout: killing the guest");
	g.timed_out = true;
	kill(g.pid, SIGKILL);
}

static int parse_version(const char *s, uint32_t *v)
{
	unsigned maj, min;

	if (sscanf(s, "%u.%u", &maj, &min) != 2)
		return -1;
	*v = (maj << 16) | min;
	return 0;
}

int main(int argc, char **argv)
{
	struct hvs_vmbus_config vc = { .vm_name = "vm0" };
	uint32_t echo = 1, vcpus = 2;
	uint64_t ram = 64ull << 20;
	double timeout_s = 60;
	const char *faults[16];
	unsigned nfaults = 0;
	char **gargv = NULL;
	int sv[2], i;

	for (i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--")) {
			gargv = &argv[i + 1];
			break;
		}
		if (!v)
			goto usage;
		if (!strcmp(a, "--echo"))
			echo = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--hyperv-version")) {
			if (parse_version(v, &vc.max_version))
				goto usage;
		} else if (!strcmp(a, "--vcpus"))
			vcpus = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--memory"))
			ram = strtoull(v, NULL, 0) << 20;
		else if (!strcmp(a, "--name"))
			vc.vm_name = v;
		else if (!strcmp(a, "--timeout"))
			timeout_s = atof(v);
		else if (!strcmp(a, "--fault") && nfaults < 16)
			faults[nfaults++] = v;
		else
			goto usage;
	}
	if (!gargv || !gargv[0])
		goto usage;
	g.name = vc.vm_name;
	signal(SIGPIPE, SIG_IGN);

	g.loop = hvs_loop_create();
	g.srv = g.loop ? hvs_vmbus_create(&vc) : NULL;
	if (!g.srv) {
		fprintf(stderr, "integ_host: cannot create the loop or server\n");
		return 2;
	}
	for (unsigned k = 0; k < nfaults; k++) {
		char spec[256], *colon;
		struct hvs_fault_param pp[HVS_FAULT_MAX_PARAMS];
		unsigned np = 0;
		snprintf(spec, sizeof(spec), "%s", faults[k]);
		colon = strchr(spec, ':');
		if (colon)
			*colon++ = '\0';
		if ((colon && parse_params(colon, ",", pp, &np) != 0) ||
		    hvs_fault_set(spec, true, pp, np, g.name) != 0) {
			fprintf(stderr, "integ_host: bad --fault %s\n", faults[k]);
			return 2;
		}
	}
	for (uint32_t k = 0; k < echo; k++)
		if (hvs_echo_add(g.srv, NULL) < 0)
			return 2;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 2;
	{
		struct hvs_partition_config pc = {
			.name = g.name,
			.vcpus = vcpus,
			.ram_bytes = ram,
			.ops = hvs_vmbus_partition_ops(),
			.ops_arg = g.srv,
			.sock_fd = sv[0],
			.host_ended = ended_cb,
			.hello_timeout_ns = 10000 * NS_PER_MS,
		};
		if (hvs_partition_create(g.loop, &pc, &g.part) != 0) {
			fprintf(stderr, "integ_host: cannot create the partition\n");
			return 2;
		}
	}
	hvs_vmbus_attach(g.srv, g.part);

	g.pid = fork();
	if (g.pid < 0)
		return 2;
	if (g.pid == 0) {
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		setenv("HVSIM_FD", "3", 1);
		setenv("HVSIM_VM_NAME", g.name, 1);
		unsetenv("HVSIM_SOCKET");
		signal(SIGPIPE, SIG_DFL);
		execvp(gargv[0], gargv);
		fprintf(stderr, "integ_host: cannot start %s: %s\n", gargv[0],
			strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	say("guest started: pid %d", (int)g.pid);

	g.in_w = hvs_loop_add_fd(g.loop, STDIN_FILENO, HVS_EV_IN, stdin_cb, NULL);
	hvs_loop_timer_add(g.loop, 10 * NS_PER_MS, 10 * NS_PER_MS, tick_cb, NULL);
	hvs_loop_timer_add(g.loop, (uint64_t)(timeout_s * 1e9), 0, timeout_cb,
			   NULL);
	hvs_loop_run(g.loop);

	hvs_partition_destroy(g.part);
	hvs_vmbus_destroy(g.srv);
	hvs_loop_destroy(g.loop);
	if (g.timed_out)
		return 124;
	if (WIFSIGNALED(g.wstatus))
		return 128 + WTERMSIG(g.wstatus);
	say("guest exited with status %d", WEXITSTATUS(g.wstatus));
	return WEXITSTATUS(g.wstatus);

usage:
	fprintf(stderr,
		"usage: integ_host [--echo N] [--hyperv-version X.Y] [--vcpus N]\n"
		"                  [--memory MIB] [--name VM] [--timeout S]\n"
		"                  [--fault NAME[:K=V,...]]... -- GUEST [ARG...]\n");
	return 2;
}
