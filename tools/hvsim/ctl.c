/*
 * tools/hvsim/ctl.c - `hvsim ctl`: send one command to a running host's
 * control socket and print the answer.
 *
 *   hvsim ctl [--control PATH] [--pretty] [--timeout SEC] list
 *   hvsim ctl ... channels VM
 *   hvsim ctl ... fault NAME on|off [KEY=INT ...] [vm=VM]
 *   hvsim ctl ... faults
 *   hvsim ctl ... stop VM | shutdown [graceful]
 *   hvsim ctl ... stats VM
 *   hvsim ctl ... rescind VM RELID
 *   hvsim ctl ... heartbeat VM | time VM [sync] [measure] | ic VM
 *   hvsim ctl ... kvp-get VM KEY [pool=P] [refresh]
 *   hvsim ctl ... kvp-list VM [POOL] [refresh]
 *   hvsim ctl ... kvp-set VM KEY VALUE [pool=P] [type=string|u32|u64]
 *   hvsim ctl ... kvp-delete VM KEY [pool=P]
 *   hvsim ctl ... guest-shutdown VM [poweroff|reboot|hibernate] [force]
 *                 [deadline=SEC] [message=TEXT]
 *   hvsim ctl ... disks VM | disk-add VM SPEC | disk-remove VM CTRL LUN
 *   hvsim ctl ... nics VM | nic-link VM NIC up|down
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
		"  shutdown [graceful]           end every VM and the host (graceful: ask\n"
		"                                each guest to shut down first, as Ctrl-C)\n"
		"\n"
		"integration services:\n"
		"  heartbeat VM                  heartbeat state (ok, lost, no_contact)\n"
		"  time VM [sync] [measure]      time sync counters and the guest clock's\n"
		"                                offset; sync: step the guest clock now;\n"
		"                                measure: read the guest's clock again\n"
		"  kvp-get VM KEY [pool=P] [refresh]  a KVP value (from the host's copy\n"
		"                                of the guest's pools, read every 5 s;\n"
		"                                refresh: read them again now). P: 0..3 or\n"
		"                                external guest auto auto_external; default:\n"
		"                                the first pool that has KEY\n"
		"  kvp-list VM [POOL] [refresh]  every record of a pool (default all)\n"
		"  kvp-set VM KEY VALUE [pool=P] [type=string|u32|u64]  queue a SET\n"
		"                                (default pool external, type string)\n"
		"  kvp-delete VM KEY [pool=P]    queue a DELETE (default pool external)\n"
		"  ic VM                         every service: versions, counters, state\n"
		"  guest-shutdown VM [poweroff|reboot|hibernate] [force] [deadline=SEC]\n"
		"               [message=TEXT]   ask the guest to shut down; powered off\n"
		"                                if it has not stopped by the deadline\n"
		"                                (default: hvsim's --shutdown-timeout)\n"
		"\n"
		"disks and NICs:\n"
		"  disks VM                      SCSI controllers, disks and counters\n"
		"  disk-add VM FILE[,OPT...]     hot-add a disk (--disk syntax)\n"
		"  disk-remove VM CTRL LUN       hot-remove a disk\n"
		"  nics VM                       NICs, counters, and their switches\n"
		"  nic-link VM NIC up|down       plug or unplug NIC number NIC (0, 1, ...)\n"
		"\n"
		"  raw JSON                      send JSON as is (one object)\n"
		"\n"
		"examples:\n"
		"  hvsim ctl --pretty stats vm0\n"
		"  hvsim ctl rescind vm0 2\n"
		"  hvsim ctl kvp-set vm0 Greeting hello && hvsim ctl kvp-get vm0 Greeting\n"
		"  hvsim ctl guest-shutdown vm0 reboot\n"
		"  hvsim ctl disk-add vm0 scratch.img,create,size=1G\n"
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

/* ---- device verbs: VM first, then positional words and KEY=VALUE ---- */

static const char *const device_verbs[] = {
	"heartbeat", "time", "ic", "kvp-get", "kvp-list", "kvp-set",
	"kvp-delete", "guest-shutdown", "disks", "disk-add", "disk_add",
	"disk-remove", "disk_remove", "nics", "nic-link",
};

static bool is_device_verb(const char *cmd)
{
	for (size_t i = 0; i < sizeof(device_verbs) / sizeof(device_verbs[0]); i++)
		if (!strcmp(cmd, device_verbs[i]))
			return true;
	return false;
}

/* "pool=P" / a bare pool: an integer 0..3 or a pool name. */
static bool put_pool(struct hvs_jw *w, const char *v)
{
	uint64_t n;

	if (hvsim_parse_uint(v, 0, 3, &n) == 0) {
		hvs_jw_uint(w, "pool", n);
		return true;
	}
	if (!strcmp(v, "external") || !strcmp(v, "guest") || !strcmp(v, "auto") ||
	    !strcmp(v, "auto_external")) {
		hvs_jw_str(w, "pool", v);
		return true;
	}
	return false;
}

static int device_request(int argc, char **argv, struct hvs_jw *w,
			  char *err, size_t errlen)
{
	const char *cmd = argv[0];
	int pos = 0;            /* positional words after the VM */
	const char *p[3] = { NULL, NULL, NULL };

	if (argc < 2) {
		snprintf(err, errlen, "%s needs a VM name", cmd);
		return -1;
	}
	if (!strcmp(cmd, "disk-add"))
		hvs_jw_str(w, "cmd", "disk_add");
	else if (!strcmp(cmd, "disk-remove"))
		hvs_jw_str(w, "cmd", "disk_remove");
	else
		hvs_jw_str(w, "cmd", cmd);
	hvs_jw_str(w, "vm", argv[1]);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *eq = strchr(a, '=');
		bool kv_ok = !strcmp(cmd, "kvp-get") || !strcmp(cmd, "kvp-list") ||
			     !strcmp(cmd, "kvp-set") || !strcmp(cmd, "kvp-delete") ||
			     !strcmp(cmd, "guest-shutdown");

		/* disk-add takes its spec whole (it may hold '='), kvp-set
		 * its value (the third word) too. */
		if (!strcmp(cmd, "disk-add") || !strcmp(cmd, "disk_add") ||
		    (!strcmp(cmd, "kvp-set") && pos < 2))
			eq = NULL;
		if (eq && kv_ok) {
			size_t kl = (size_t)(eq - a);
			const char *v = eq + 1;

			if (kl == 4 && !strncmp(a, "pool", 4) && strcmp(cmd, "guest-shutdown")) {
				if (!put_pool(w, v)) {
					snprintf(err, errlen, "pool '%s': use 0..3, external, "
						 "guest, auto or auto_external", v);
					return -1;
				}
			} else if (kl == 4 && !strncmp(a, "type", 4) &&
				   !strcmp(cmd, "kvp-set")) {
				hvs_jw_str(w, "type", v);
			} else if (kl == 8 && !strncmp(a, "deadline", 8) &&
				   !strcmp(cmd, "guest-shutdown")) {
				uint64_t s;
				if (hvsim_parse_uint(v, 0, 86400 * 365, &s)) {
					snprintf(err, errlen, "deadline '%s': whole "
						 "seconds", v);
					return -1;
				}
				hvs_jw_uint(w, "deadline_s", s);
			} else if (kl == 7 && !strncmp(a, "message", 7) &&
				   !strcmp(cmd, "guest-shutdown")) {
				hvs_jw_str(w, "message", v);
			} else {
				snprintf(err, errlen, "%s: unknown parameter '%s'", cmd, a);
				return -1;
			}
			continue;
		}
		if (!strcmp(a, "refresh") &&
		    (!strcmp(cmd, "kvp-get") || !strcmp(cmd, "kvp-list"))) {
			hvs_jw_bool(w, "refresh", true);
			continue;
		}
		if (!strcmp(cmd, "time") && (!strcmp(a, "sync") || !strcmp(a, "measure"))) {
			hvs_jw_bool(w, a, true);
			continue;
		}
		if (!strcmp(cmd, "guest-shutdown") && !strcmp(a, "force")) {
			hvs_jw_bool(w, "force", true);
			continue;
		}
		if (pos >= 3) {
			snprintf(err, errlen, "%s: too many arguments", cmd);
			return -1;
		}
		p[pos++] = a;
	}
	if (!strcmp(cmd, "heartbeat") || !strcmp(cmd, "time") ||
	    !strcmp(cmd, "ic") || !strcmp(cmd, "disks") || !strcmp(cmd, "nics")) {
		if (pos)
			goto usage;
	} else if (!strcmp(cmd, "kvp-get") || !strcmp(cmd, "kvp-delete")) {
		if (pos != 1)
			goto usage;
		hvs_jw_str(w, "key", p[0]);
	} else if (!strcmp(cmd, "kvp-list")) {
		if (pos > 1)
			goto usage;
		if (pos == 1 && !put_pool(w, p[0])) {
			snprintf(err, errlen, "pool '%s': use 0..3, external, guest, "
				 "auto or auto_external", p[0]);
			return -1;
		}
	} else if (!strcmp(cmd, "kvp-set")) {
		if (pos != 2)
			goto usage;
		hvs_jw_str(w, "key", p[0]);
		hvs_jw_str(w, "value", p[1]);
	} else if (!strcmp(cmd, "guest-shutdown")) {
		if (pos > 1)
			goto usage;
		if (pos == 1) {
			if (strcmp(p[0], "poweroff") && strcmp(p[0], "reboot") &&
			    strcmp(p[0], "hibernate")) {
				snprintf(err, errlen, "guest-shutdown: '%s' is not "
					 "poweroff, reboot or hibernate", p[0]);
				return -1;
			}
			hvs_jw_str(w, "action", p[0]);
		}
	} else if (!strcmp(cmd, "disk-add") || !strcmp(cmd, "disk_add")) {
		if (pos != 1)
			goto usage;
		hvs_jw_str(w, "spec", p[0]);
	} else if (!strcmp(cmd, "disk-remove") || !strcmp(cmd, "disk_remove")) {
		uint64_t c, l;
		if (pos != 2 || hvsim_parse_uint(p[0], 0, 7, &c) ||
		    hvsim_parse_uint(p[1], 0, 63, &l)) {
			snprintf(err, errlen, "disk-remove needs VM, controller "
				 "(0..7) and LUN (0..63)");
			return -1;
		}
		hvs_jw_uint(w, "controller", c);
		hvs_jw_uint(w, "lun", l);
	} else if (!strcmp(cmd, "nic-link")) {
		uint64_t n;
		if (pos != 2 || hvsim_parse_uint(p[0], 0, 1023, &n) ||
		    (strcmp(p[1], "up") && strcmp(p[1], "down"))) {
			snprintf(err, errlen, "nic-link needs VM, NIC number and "
				 "up or down");
			return -1;
		}
		hvs_jw_uint(w, "nic", n);
		hvs_jw_str(w, "link", p[1]);
	}
	hvs_jw_obj_end(w);
	if (w->jw_overflow) {
		snprintf(err, errlen, "request longer than %u bytes",
			 HVS_JSON_MAX_LINE);
		return -1;
	}
	return 0;
usage:
	snprintf(err, errlen, "%s: wrong arguments (see hvsim ctl --help)", cmd);
	return -1;
}

static int build_request(int argc, char **argv, struct hvs_jw *w,
			 char *err, size_t errlen)
{
	const char *cmd = argv[0];

	hvs_jw_obj_begin(w, NULL);
	if (!strcmp(cmd, "list") || !strcmp(cmd, "faults")) {
		if (argc != 1)
			goto extra;
		hvs_jw_str(w, "cmd", cmd);
	} else if (!strcmp(cmd, "shutdown")) {
		if (argc > 2 || (argc == 2 && strcmp(argv[1], "graceful"))) {
			snprintf(err, errlen, "shutdown takes nothing or 'graceful'");
			return -1;
		}
		hvs_jw_str(w, "cmd", cmd);
		if (argc == 2)
			hvs_jw_bool(w, "graceful", true);
	} else if (is_device_verb(cmd)) {
		return device_request(argc, argv, w, err, errlen);
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
	if (w->jw_overflow) {
		snprintf(err, errlen, "request longer than %u bytes",
			 HVS_JSON_MAX_LINE);
		return -1;
	}
	return 0;
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
	size_t cap = 4u << 20, len = 0;
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
