/*
 * tools/hvsim/ctl.c - `hvsim ctl`: send one command to a running host's
 * control socket and print the answer.
 *
 *   hvsim ctl [--control PATH] [--pretty] [--timeout SEC] list
 *   hvsim ctl ... channels VM
 *   hvsim ctl ... fault NAME on|off [KEY=INT ...] [vm=VM]
 *   hvsim ctl ... faults
 *   hvsim ctl ... stop VM | shutdown
 *   hvsim ctl ... stats VM
 *   hvsim ctl ... rescind VM RELID
 *   hvsim ctl ... raw JSON
 *
 * Exit status: 0 ok, 1 the host answered ok=false, 2 usage or connection
 * error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "control.h"
#include "hvsim.h"

static void ctl_usage(FILE *f)
{
	fprintf(f,
		"usage: hvsim ctl [--control PATH] [--pretty] [--timeout SEC] COMMAND\n"
		"\n"
		"Sends one command to a running hvsim's control socket and prints the\n"
		"JSON answer (one line; --pretty indents it).\n"
		"\n"
		"options:\n"
		"  --control PATH   the socket (default $XDG_RUNTIME_DIR/hvsim/control.sock\n"
		"                   or /tmp/hvsim-$UID/control.sock)\n"
		"  --pretty         indent the answer\n"
		"  --timeout SEC    wait this long for the answer (default 10)\n"
		"\n"
		"commands:\n"
		"  list                          VMs with state, vCPUs, RAM, pid, VMBus version,\n"
		"                                partition counters\n"
		"  channels VM                   the VM's VMBus channels and their counters\n"
		"  stats VM                      the VM's VMBus server and partition counters\n"
		"  rescind VM RELID              rescind channel RELID (a primary takes its\n"
		"                                subchannels with it): the guest gets\n"
		"                                RESCIND_CHANNELOFFER, the device goes away\n"
		"  fault NAME on|off [K=INT...] [vm=VM]  switch a fault hook; K=INT are its\n"
		"                                parameters (see faults for each hook's)\n"
		"  faults                        every fault hook, its parameters and counters\n"
		"  stop VM                       end one VM (no reboot)\n"
		"  shutdown                      end every VM and the host\n"
		"  raw JSON                      send JSON as is (one object)\n"
		"\n"
		"examples:\n"
		"  hvsim ctl --pretty stats vm0\n"
		"  hvsim ctl rescind vm0 2\n"
		"  hvsim ctl fault bad_ring_index on relid=1 value=-3 times=1 vm=vm0\n"
		"  hvsim ctl raw '{\"cmd\":\"stats\",\"vm\":\"vm0\"}'\n"
		"\n"
		"Exit status: 0 ok, 1 the host answered ok=false, 2 usage or connection\n"
		"error. Reference: docs/hvsim.md.\n");
}

/* Indent a compact JSON text for humans (strings copied verbatim). */
static void print_pretty(const char *s)
{
	int depth = 0;
	bool in_str = false;

	for (; *s; s++) {
		char c = *s;

		if (in_str) {
			putchar(c);
			if (c == '\\' && s[1]) {
				putchar(*++s);
			} else if (c == '"') {
				in_str = false;
			}
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			putchar(c);
			break;
		case '{':
		case '[':
			if ((s[1] == '}' || s[1] == ']')) {
				putchar(c);
				putchar(*++s);
				break;
			}
			putchar(c);
			depth++;
			printf("\n%*s", depth * 2, "");
			break;
		case '}':
		case ']':
			depth--;
			printf("\n%*s%c", depth > 0 ? depth * 2 : 0, "", c);
			break;
		case ',':
			printf(",\n%*s", depth * 2, "");
			break;
		case ':':
			printf(": ");
			break;
		default:
			putchar(c);
		}
	}
	putchar('\n');
}

static int build_request(int argc, char **argv, struct hvs_jw *w,
			 char *err, size_t errlen)
{
	const char *cmd = argv[0];

	hvs_jw_obj_begin(w, NULL);
	if (!strcmp(cmd, "list") || !strcmp(cmd, "faults") ||
	    !strcmp(cmd, "shutdown")) {
		if (argc != 1)
			goto extra;
		hvs_jw_str(w, "cmd", cmd);
	} else if (!strcmp(cmd, "channels") || !strcmp(cmd, "stop") ||
		   !strcmp(cmd, "stats")) {
		if (argc != 2) {
			snprintf(err, errlen, "%s needs exactly one VM name", cmd);
			return -1;
		}
		hvs_jw_str(w, "cmd", cmd);
		hvs_jw_str(w, "vm", argv[1]);
	} else if (!strcmp(cmd, "rescind")) {
		uint64_t relid;

		if (argc != 3) {
			snprintf(err, errlen, "rescind needs a VM name and a relid");
			return -1;
		}
		if (hvsim_parse_uint(argv[2], 1, UINT32_MAX, &relid)) {
			snprintf(err, errlen, "rescind: relid '%s' is not an "
				 "integer >= 1", argv[2]);
			return -1;
		}
		hvs_jw_str(w, "cmd", cmd);
		hvs_jw_str(w, "vm", argv[1]);
		hvs_jw_uint(w, "relid", relid);
	} else if (!strcmp(cmd, "fault")) {
		bool on;
		const char *vm = NULL;

		if (argc < 3) {
			snprintf(err, errlen, "fault needs NAME and on|off");
			return -1;
		}
		if (!strcmp(argv[2], "on") || !strcmp(argv[2], "true") ||
		    !strcmp(argv[2], "1"))
			on = true;
		else if (!strcmp(argv[2], "off") || !strcmp(argv[2], "false") ||
			 !strcmp(argv[2], "0"))
			on = false;
		else {
			snprintf(err, errlen, "fault: '%s' is not on or off",
				 argv[2]);
			return -1;
		}
		hvs_jw_str(w, "cmd", "fault");
		hvs_jw_str(w, "name", argv[1]);
		hvs_jw_bool(w, "enable", on);
		hvs_jw_obj_begin(w, "params");
		for (int i = 3; i < argc; i++) {
			char key[64];
			const char *eq = strchr(argv[i], '=');
			char *end;
			long long v;

			if (!eq || eq == argv[i] ||
			    (size_t)(eq - argv[i]) >= sizeof(key)) {
				snprintf(err, errlen,
					 "fault parameter '%s' is not KEY=INT",
					 argv[i]);
				return -1;
			}
			memcpy(key, argv[i], (size_t)(eq - argv[i]));
			key[eq - argv[i]] = 0;
			if (!strcmp(key, "vm")) {
				vm = eq + 1;
				continue;
			}
			errno = 0;
			v = strtoll(eq + 1, &end, 0);
			if (errno || end == eq + 1 || *end) {
				snprintf(err, errlen,
					 "fault parameter '%s': value is not an integer",
					 argv[i]);
				return -1;
			}
			hvs_jw_int(w, key, v);
		}
		hvs_jw_obj_end(w);
		if (vm)
			hvs_jw_str(w, "vm", vm);
	} else {
		snprintf(err, errlen, "unknown command '%s'", cmd);
		return -1;
	}
	hvs_jw_obj_end(w);
	return w->jw_overflow ? -1 : 0;
extra:
	snprintf(err, errlen, "%s takes no arguments", cmd);
	return -1;
}

int hvsim_ctl_main(int argc, char **argv)
{
	char path[108], reqbuf[HVS_JSON_MAX_LINE + 1], err[200];
	const char *req = NULL;
	bool pretty = false;
	uint64_t timeout_ns = 10ull * 1000000000;
	struct sockaddr_un sa;
	struct hvs_jw w;
	int i, fd;

	if (hvs_control_default_path(path, sizeof(path)) < 0)
		path[0] = 0;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--control") && i + 1 < argc) {
			if (strlen(argv[++i]) >= sizeof(path)) {
				fprintf(stderr, "hvsim ctl: control path too long\n");
				return 2;
			}
			strcpy(path, argv[i]);
		} else if (!strcmp(argv[i], "--pretty")) {
			pretty = true;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (hvsim_parse_seconds(argv[++i], &timeout_ns)) {
				fprintf(stderr, "hvsim ctl: bad --timeout '%s'\n",
					argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			ctl_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			fprintf(stderr, "hvsim ctl: unknown or incomplete option '%s'\n",
				argv[i]);
			ctl_usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "hvsim ctl: no command given\n");
		ctl_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "raw")) {
		if (argc - i != 2) {
			fprintf(stderr, "hvsim ctl: raw needs one JSON argument\n");
			return 2;
		}
		req = argv[i + 1];
		if (strchr(req, '\n') || strlen(req) > HVS_JSON_MAX_LINE) {
			fprintf(stderr, "hvsim ctl: raw JSON must be one line of "
					"at most %u bytes\n", HVS_JSON_MAX_LINE);
			return 2;
		}
	} else {
		hvs_jw_init(&w, reqbuf, sizeof(reqbuf));
		if (build_request(argc - i, argv + i, &w, err, sizeof(err))) {
			fprintf(stderr, "hvsim ctl: %s\n", err);
			ctl_usage(stderr);
			return 2;
		}
		req = reqbuf;
	}
	if (!path[0]) {
		fprintf(stderr, "hvsim ctl: no control socket path\n");
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "hvsim ctl: cannot connect to %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	size_t rl = strlen(req), off = 0;
	char *line = malloc(rl + 2);
	if (!line) {
		close(fd);
		return 2;
	}
	memcpy(line, req, rl);
	line[rl] = '\n';
	while (off < rl + 1) {
		ssize_t n = send(fd, line + off, rl + 1 - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "hvsim ctl: send: %s\n", strerror(errno));
			free(line);
			close(fd);
			return 2;
		}
		off += (size_t)n;
	}
	free(line);

	/* Read one answer line, bounded in size and time. */
	size_t cap = 1u << 20, len = 0;
	char *resp = malloc(cap + 1);
	struct timespec t0, t1;
	if (!resp) {
		close(fd);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t el;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		el = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
		     (uint64_t)(t1.tv_nsec - t0.tv_nsec);
		if (el >= timeout_ns) {
			fprintf(stderr, "hvsim ctl: no answer from %s\n", path);
			free(resp);
			close(fd);
			return 2;
		}
		if (poll(&pfd, 1, (int)((timeout_ns - el) / 1000000 + 1)) <= 0)
			continue;
		n = recv(fd, resp + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "hvsim ctl: connection closed without an answer\n");
			free(resp);
			close(fd);
			return 2;
		}
		len += (size_t)n;
		resp[len] = 0;
		char *nl = memchr(resp, '\n', len);
		if (nl) {
			*nl = 0;
			break;
		}
		if (len == cap) {
			fprintf(stderr, "hvsim ctl: answer too long\n");
			free(resp);
			close(fd);
			return 2;
		}
	}
	close(fd);
	if (pretty)
		print_pretty(resp);
	else
		printf("%s\n", resp);
	int rc = strncmp(resp, "{\"ok\":true", 10) == 0 ? 0 : 1;
	free(resp);
	return rc;
}
