/*
 * tools/hvguest/hvguest.c - the reference guest program: the guest VMBus
 * core on the posix port. Started by any host implementing the partition
 * ABI (HVSIM_FD or HVSIM_SOCKET), it connects, lists what it found like
 * Linux's lsvmbus, optionally exercises the echo devices, then unloads and
 * exits 0.
 *
 * With --ic (and --full, which adds the disks and NICs) it is a long-running
 * guest instead: it registers the integration services, reports what the
 * host does (negotiations, shutdown, clock steps, KVP writes) and stays until
 * the host shuts it down (shutdown IC -> main loop -> port power_off -> our
 * hook: UNLOAD -> RESET -> exit) or --stay passes. docs/hvguest.md describes it all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv/guid.h"
#include "hv/vmbus_msg.h"
#include "hvg_net.h"
#include "hvguest.h"
#include "vmbus/echo.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

struct hvg g = { .life_mu = PTHREAD_MUTEX_INITIALIZER };
#define opt g.opt

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t hvg_now_ns(void)
{
	return mono_ns();
}

double hvg_time_scale(void)
{
	const char *s = getenv("VMBUS_TEST_TIME_SCALE");
	double v = s ? strtod(s, NULL) : 1.0;

	return v >= 1.0 ? v : 1.0;
}

void hvg_event(const char *fmt, ...)
{
	FILE *f = opt.json ? stderr : stdout;
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One call per line, so lines of several threads do not mix. */
	fprintf(f, "%s\n", line);
	fflush(f);
}

void hvg_append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

void hvg_json_str(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (; *in && o + 7 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: hvguest [--json] [--echo N] [--open-all-echo] [--stay SECONDS]\n"
	    "               [--ring BYTES] [--payload BYTES] [--max-version X.Y]\n"
	    "               [--ic | --full] [--kvp-file PATH] [--disk-selftest]\n"
	    "               [--net-selftest] [--status SECONDS] [--no-ip]\n"
	    "               [--ip A.B.C.D/N[,GATEWAY]] [--probe A.B.C.D]\n"
	    "Runs as a guest partition (HVSIM_FD or HVSIM_SOCKET + HVSIM_VM_NAME):\n"
	    "connects to VMBus, lists the offered channels, then unloads.\n"
	    "  --json            machine-readable output (events go to stderr)\n"
	    "  --echo N          N echo round trips per echo device (opens them)\n"
	    "  --open-all-echo   attach and open every echo device\n"
	    "  --stay SECONDS    stay connected this long before unloading\n"
	    "                    (with --ic: 0 or absent = until shut down)\n"
	    "  --ring BYTES      echo ring size per direction (default 65536)\n"
	    "  --payload BYTES   largest echo payload (default: ring maximum)\n"
	    "  --max-version X.Y newest VMBus version to request (default 5.3)\n"
	    "  --polled          no interrupt threads: the core polls\n"
	    "Long-running guest:\n"
	    "  --ic              integration services (heartbeat, shutdown, time\n"
	    "                    sync, KVP); stay until the host shuts us down\n"
	    "  --full            --ic plus the StorVSC disks and NetVSC NICs\n"
	    "  --kvp-file PATH   KVP store (default $XDG_STATE_HOME/hvguest/\n"
	    "                    <vm>.kvp or ~/.local/state/...; 'none': not kept)\n"
	    "  --disk-selftest   write, read back and restore the last 8 blocks\n"
	    "                    of every disk (--full)\n"
	    "  --net-selftest    send one broadcast test frame (EtherType 0x88B5)\n"
	    "                    from every NIC (--full)\n"
	    "  --status SECONDS  print a status line this often (default: never)\n"
	    "  --no-ip           (--full) no IP stack: no DHCP, HTTP status page\n"
	    "                    (TCP 80) or NBD server (TCP 10809)\n"
	    "  --ip A.B.C.D/N[,GW] (--full) nic0's IPv4 address, instead of DHCP\n"
	    "  --probe A.B.C.D   (--full) once nic0 has an address: ARP, 3 ICMP\n"
	    "                    echoes and an HTTP GET of /status.json on port\n"
	    "                    80 of that host; results on standard output\n"
	    "Fault injection (tests/fault/alloc_sweep.py):\n"
	    "  --fault KIND:N[+][@PHASE]  fail the Nth port call of KIND (alloc,\n"
	    "                    page, page_free, wait, defer, timeout; +: and every one\n"
	    "                    after it) counted from PHASE (connect (default),\n"
	    "                    run, unload); print a fault-report line at exit\n");
}

static int parse_version(const char *s, uint32_t *v)
{
	unsigned maj, min;

	if (sscanf(s, "%u.%u", &maj, &min) != 2 || maj > 0xFFFF || min > 0xFFFF)
		return -1;
	*v = VMBUS_VERSION(maj, min);
	return 0;
}

/* --fault KIND:N[+][@PHASE] */
static int parse_fault(const char *s)
{
	static const char *const kinds[VMBUS_POSIX_FAULT_COUNT] = {
		[VMBUS_POSIX_FAULT_ALLOC] = "alloc",
		[VMBUS_POSIX_FAULT_PAGE] = "page",
		[VMBUS_POSIX_FAULT_PAGE_FREE] = "page_free",
		[VMBUS_POSIX_FAULT_WAIT] = "wait",
		[VMBUS_POSIX_FAULT_DEFER] = "defer",
		[VMBUS_POSIX_FAULT_TIMEOUT] = "timeout",
	};
	static const char *const phases[] = { "connect", "run", "unload" };
	const char *colon = strchr(s, ':'), *at;
	unsigned long n;
	char *end;
	int k;

	if (colon == NULL)
		return -1;
	for (k = 0; k < VMBUS_POSIX_FAULT_COUNT; k++)
		if (strlen(kinds[k]) == (size_t)(colon - s) &&
		    strncmp(s, kinds[k], (size_t)(colon - s)) == 0)
			break;
	if (k == VMBUS_POSIX_FAULT_COUNT)
		return -1;
	errno = 0;
	n = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || n == 0 || n > UINT32_MAX)
		return -1;
	opt.fault_persist = false;
	if (*end == '+') {
		opt.fault_persist = true;
		end++;
	}
	opt.fault_phase = HVG_PHASE_CONNECT;
	if (*end == '@') {
		at = end + 1;
		for (opt.fault_phase = 0; opt.fault_phase < 3; opt.fault_phase++)
			if (strcmp(at, phases[opt.fault_phase]) == 0)
				break;
		if (opt.fault_phase == 3)
			return -1;
	} else if (*end != '\0') {
		return -1;
	}
	opt.fault = true;
	opt.fault_kind = k;
	opt.fault_n = (uint32_t)n;
	return 0;
}

/* Arm the --fault countdown when its phase begins. */
static void fault_arm(int phase)
{
	if (opt.fault && opt.fault_phase == phase)
		vmbus_posix_fault_set(g.px, opt.fault_kind, opt.fault_n,
		    opt.fault_persist);
}

/*
 * The --fault report, at exit with everything freed but the port: how
 * often the countdown fired, the guest-RAM pages still allocated, and
 * every count of pages leaked on purpose (the bus's, StorVSC's, NetVSC's,
 * this program's I/O buffers, and pages the port refused to take back
 * after the bus counters were read). A page still allocated that no count
 * covers is a leak.
 */
static void fault_report(const struct vmbus_stats *bs, uint64_t port_leaked0,
    uint64_t sv_leaked, uint64_t nic_leaked, int rc)
{
	struct vmbus_posix_stats ps;

	if (!opt.fault)
		return;
	vmbus_posix_get_stats(g.px, &ps);
	fprintf(stderr, "fault-report: kind %d n %u persist %d phase %d "
	    "hits %llu pages_used %llu port_leaked %llu bus_leaked %llu "
	    "storvsc_leaked %llu nic_leaked %llu program_leaked %llu "
	    "late_port_leaked %llu exit %d\n", opt.fault_kind, opt.fault_n,
	    opt.fault_persist ? 1 : 0, opt.fault_phase,
	    (unsigned long long)ps.ps_fault_hits[opt.fault_kind],
	    (unsigned long long)ps.ps_pages_used,
	    (unsigned long long)ps.ps_pages_leaked,
	    (unsigned long long)bs->bs_leaked_pages,
	    (unsigned long long)sv_leaked,
	    (unsigned long long)nic_leaked,
	    (unsigned long long)atomic_load(&g.leaked_pages),
	    (unsigned long long)(ps.ps_pages_leaked - port_leaked0), rc);
	fflush(stderr);
}

static uint64_t port_leaked_now(void)
{
	struct vmbus_posix_stats ps;

	vmbus_posix_get_stats(g.px, &ps);
	return ps.ps_pages_leaked;
}

/*
 * After the unload: read the bus counters, destroy the bus, free the
 * drivers' state (keeping their leak counts) and print the --fault report
 * with exit status rc. The port is left to the caller.
 */
static void release_all(int rc)
{
	struct vmbus_stats bs;
	uint64_t pl0, svl, nvl;

	memset(&bs, 0, sizeof(bs));
	vmbus_get_stats(g.vb, &bs);
	pl0 = port_leaked_now();
	vmbus_destroy(g.vb);
	echo_unregister(g.vb);
	svl = hvg_dev_storvsc_leaked();
	nvl = hvg_dev_nic_leaked();
	hvg_dev_free();
	hvg_ic_free();
	fault_report(&bs, pl0, svl, nvl, rc);
}

/* --ip A.B.C.D/N[,GW]: a unicast address, N in 8..30, a gateway inside
 * the subnet. */
static int parse_static_ip(const char *s)
{
	char buf[64], *slash, *comma, *end;
	struct in_addr a, gw;
	unsigned long n;
	uint32_t ip, mask;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	comma = strchr(buf, ',');
	if (comma != NULL)
		*comma++ = '\0';
	slash = strchr(buf, '/');
	if (slash == NULL)
		return -1;
	*slash++ = '\0';
	n = strtoul(slash, &end, 10);
	if (*end || end == slash || n < 8 || n > 30 ||
	    inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	ip = ntohl(a.s_addr);
	mask = 0xFFFFFFFFu << (32 - n);
	if ((ip >> 24) == 0 || (ip >> 24) == 127 || (ip >> 24) >= 224 ||
	    (ip & ~mask) == 0 || (ip & ~mask) == ~mask)
		return -1;
	opt.static_gw = 0;
	if (comma != NULL) {
		if (inet_pton(AF_INET, comma, &gw) != 1 ||
		    (ntohl(gw.s_addr) & mask) != (ip & mask) ||
		    ntohl(gw.s_addr) == ip)
			return -1;
		opt.static_gw = ntohl(gw.s_addr);
	}
	opt.static_ip = ip;
	opt.static_mask = mask;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "echo", required_argument, NULL, 'e' },
		{ "open-all-echo", no_argument, NULL, 'o' },
		{ "stay", required_argument, NULL, 's' },
		{ "ring", required_argument, NULL, 'r' },
		{ "payload", required_argument, NULL, 'p' },
		{ "max-version", required_argument, NULL, 'V' },
		{ "polled", no_argument, NULL, 'P' },
		{ "ic", no_argument, NULL, 'I' },
		{ "full", no_argument, NULL, 'F' },
		{ "kvp-file", required_argument, NULL, 'K' },
		{ "disk-selftest", no_argument, NULL, 'D' },
		{ "net-selftest", no_argument, NULL, 'N' },
		{ "status", required_argument, NULL, 'S' },
		{ "no-ip", no_argument, NULL, 'X' },
		{ "ip", required_argument, NULL, 'A' },
		{ "probe", required_argument, NULL, 1001 },
		{ "fault", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	opt.ring = 65536;
	while ((c = getopt_long(argc, argv, "je:os:r:p:V:Ph", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			opt.json = true;
			break;
		case 'e':
			errno = 0;
			opt.echo_n = (uint32_t)strtoul(optarg, &end, 10);
			if (errno || *end)
				return -1;
			opt.open_echo = true;
			break;
		case 'o':
			opt.open_echo = true;
			break;
		case 's':
			opt.stay_s = strtod(optarg, &end);
			if (*end || end == optarg || !(opt.stay_s >= 0) ||
			    opt.stay_s > 1e9)
				return -1;
			opt.stay_given = true;
			break;
		case 'r':
			opt.ring = (uint32_t)strtoul(optarg, &end, 0);
			if (*end || opt.ring < 8192 || opt.ring % 4096)
				return -1;
			break;
		case 'p':
			opt.payload = (uint32_t)strtoul(optarg, &end, 0);
			if (*end)
				return -1;
			break;
		case 'V':
			if (parse_version(optarg, &opt.max_version))
				return -1;
			break;
		case 'P':
			opt.polled = true;
			break;
		case 'F':
			opt.full = true;
			/* fall through */
		case 'I':
			opt.ic = true;
			break;
		case 'K':
			if (*optarg == '\0')
				return -1;
			opt.kvp_file = optarg;
			break;
		case 'D':
			opt.disk_selftest = true;
			break;
		case 'N':
			opt.net_selftest = true;
			break;
		case 'S':
			opt.status_s = strtod(optarg, &end);
			if (*end || end == optarg || !(opt.status_s >= 0) ||
			    opt.status_s > 1e6)
				return -1;
			break;
		case 'X':
			opt.no_ip = true;
			break;
		case 'A':
			if (parse_static_ip(optarg) != 0)
				return -1;
			break;
		case 1001: {
			struct in_addr a;

			if (inet_pton(AF_INET, optarg, &a) != 1 ||
			    a.s_addr == 0 || a.s_addr == 0xFFFFFFFFu) {
				fprintf(stderr, "hvguest: --probe '%s': an IPv4 "
				    "host address\n", optarg);
				return -1;
			}
			opt.probe_ip = ntohl(a.s_addr);
			break;
		}
		case 'f':
			if (parse_fault(optarg) != 0)
				return -1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

/* ---- listing ---- */

#define MAX_LIST 256
static struct vmbus_chan_info list[MAX_LIST];
static uint32_t nlist;

static int collect(void *arg, const struct vmbus_chan_info *ci)
{
	(void)arg;
	if (nlist < MAX_LIST)
		list[nlist++] = *ci;
	return 0;
}

/* The negotiated device protocol of a channel bound to one of our drivers
 * (IC, StorVSC, NetVSC), or 0. */
static int channel_protocol(const struct vmbus_chan_info *ci, char *buf,
    size_t size)
{
	return hvg_ic_protocol(ci, buf, size) ||
	    hvg_dev_protocol(ci, buf, size);
}

static void print_listing(struct vmbus *vb, bool json, bool last_json)
{
	uint32_t v = vmbus_version(vb);

	nlist = 0;
	vmbus_foreach_channel(vb, collect, NULL);
	if (!json) {
		printf("VMBus version %u.%u, %u channel(s)\n",
		    VMBUS_VERSION_MAJOR(v), VMBUS_VERSION_MINOR(v), nlist);
	} else {
		printf("  \"version\": \"%u.%u\",\n  \"channels\": [",
		    VMBUS_VERSION_MAJOR(v), VMBUS_VERSION_MINOR(v));
	}
	for (uint32_t i = 0; i < nlist; i++) {
		const struct vmbus_chan_info *ci = &list[i];
		const struct hv_guid_class *gc = hv_guid_class_lookup(&ci->ci_class);
		char cls[HV_GUID_STR_LEN], inst[HV_GUID_STR_LEN];
		char proto[128];
		int has_proto = channel_protocol(ci, proto, sizeof(proto));

		hv_guid_to_str(&ci->ci_class, cls);
		hv_guid_to_str(&ci->ci_instance, inst);
		if (!json) {
			printf("VMBUS ID %3u: Class_ID = {%s} - %s\n"
			    "\tDevice_ID = {%s}\n"
			    "\tSub_Channel_ID = %u, Rel_ID = %u, target_cpu = %u",
			    ci->ci_relid, cls, gc ? gc->gc_desc : "Unknown",
			    inst, ci->ci_sub_index, ci->ci_relid,
			    ci->ci_target_vp);
			if (ci->ci_tx_ring_bytes)
				printf(", rings = %u/%u", ci->ci_tx_ring_bytes,
				    ci->ci_rx_ring_bytes);
			printf(", state = %s%s%s\n",
			    vmbus_chan_state_name(ci->ci_state),
			    ci->ci_driver ? ", driver = " : "",
			    ci->ci_driver ? ci->ci_driver : "");
			if (has_proto)
				printf("\tProtocol = %s\n", proto);
			continue;
		}
		printf("%s\n    {\"class\": \"%s\", \"class_name\": \"%s\", "
		    "\"instance\": \"%s\", \"relid\": %u, \"sub_channel\": %u, "
		    "\"target_vp\": %u, \"conn_id\": %u, \"tx_ring\": %u, "
		    "\"rx_ring\": %u, \"state\": \"%s\", \"driver\": %s%s%s",
		    i ? "," : "", cls, gc ? gc->gc_name : "unknown", inst,
		    ci->ci_relid, ci->ci_sub_index, ci->ci_target_vp,
		    ci->ci_conn_id, ci->ci_tx_ring_bytes, ci->ci_rx_ring_bytes,
		    vmbus_chan_state_name(ci->ci_state),
		    ci->ci_driver ? "\"" : "",
		    ci->ci_driver ? ci->ci_driver : "null",
		    ci->ci_driver ? "\"" : "");
		if (has_proto)
			printf(", \"protocol\": \"%s\"", proto);
		printf("}");
	}
	if (json)
		printf("%s]%s\n", nlist ? "\n  " : "", last_json ? "" : ",");
}

/* ---- echo ---- */

static int run_echo(struct vmbus *vb, bool json)
{
	uint32_t n = echo_count(vb);
	int fails = 0;

	if (json)
		printf("  \"echo\": [");
	for (uint32_t d = 0; d < n; d++) {
		struct echo_dev *ed = echo_get(vb, d);
		struct vmbus_chan_stats cs;
		struct echo_stats es;
		uint32_t max = echo_max_payload(ed), ok = 0, bad = 0;
		uint8_t *in, *out;
		uint64_t t0, dt;
		int first_err = 0;

		if (opt.payload && opt.payload < max)
			max = opt.payload;
		in = malloc(max + 1);
		out = malloc(max + 1);
		if (in == NULL || out == NULL) {
			fprintf(stderr, "hvguest: out of memory\n");
			exit(1);
		}
		t0 = mono_ns();
		for (uint32_t i = 0; i < opt.echo_n; i++) {
			/* sizes cycle through 0..max, hitting both ends */
			uint32_t len = i % 4 == 3 ? max :
			    (uint32_t)(((uint64_t)i * 2654435761u) % (max + 1));
			uint32_t got = max;
			int r;

			for (uint32_t k = 0; k < len; k++)
				in[k] = (uint8_t)(i * 31 + k);
			r = echo_roundtrip(ed, in, len, out, &got,
			    10 * NS_PER_S);
			if (r == 0 && got == len && memcmp(in, out, len) == 0) {
				ok++;
			} else {
				bad++;
				if (!first_err)
					first_err = r ? r : -VMBUS_EPROTO;
				if (r == -VMBUS_ENODEV)
					break;
			}
		}
		dt = mono_ns() - t0;
		echo_get_stats(ed, &es);
		vmbus_chan_get_stats(echo_channel(ed), &cs);
		if (bad)
			fails++;
		if (!json) {
			printf("echo relid %u: %u/%u round trips ok, %llu bytes, "
			    "%.1f us/round trip, max payload %u",
			    vmbus_chan_relid(echo_channel(ed)), ok, opt.echo_n,
			    (unsigned long long)es.es_bytes,
			    opt.echo_n ? (double)dt / 1000.0 / opt.echo_n : 0.0,
			    max);
			if (bad)
				printf(", %u FAILED (first error %d)", bad,
				    first_err);
			printf("\n");
		} else {
			printf("%s\n    {\"relid\": %u, \"round_trips\": %u, "
			    "\"ok\": %u, \"failed\": %u, \"first_error\": %d, "
			    "\"bytes\": %llu, \"ns_per_round_trip\": %.0f, "
			    "\"max_payload\": %u, \"signals\": %llu, "
			    "\"interrupts\": %llu, \"protocol_errors\": %llu}",
			    d ? "," : "", vmbus_chan_relid(echo_channel(ed)),
			    opt.echo_n, ok, bad, first_err,
			    (unsigned long long)es.es_bytes,
			    opt.echo_n ? (double)dt / opt.echo_n : 0.0, max,
			    (unsigned long long)cs.cs_signals,
			    (unsigned long long)cs.cs_interrupts,
			    (unsigned long long)cs.cs_proto_errors);
		}
		free(in);
		free(out);
	}
	if (json)
		printf("%s],\n", n ? "\n  " : "");
	return fails;
}

/* ---- long-running mode ---- */

static void status_line(const char *tag)
{
	struct vmbus_stats st;
	char line[1536];

	vmbus_get_stats(g.vb, &st);
	snprintf(line, sizeof(line), "status%s: up %.1f s", tag,
	    (double)(mono_ns() - g.t0_ns) / 1e9);
	hvg_ic_status(line, sizeof(line));
	hvg_dev_status(line, sizeof(line));
	hvg_net_status(line, sizeof(line));
	hvg_append(line, sizeof(line), ", vmbus %llu messages",
	    (unsigned long long)st.bs_messages);
	hvg_event("%s", line);
}

/*
 * Unload once, from whichever path gets here first: the end of main, or the
 * shutdown hook the port runs before RESET on a host shutdown. Prints the
 * final summary line (or the JSON document's last member).
 */
static int finish_unload(void)
{
	struct vmbus_stats st;
	int r;

	pthread_mutex_lock(&g.life_mu);
	if (g.unloaded) {
		r = g.unload_result;
		pthread_mutex_unlock(&g.life_mu);
		return r;
	}
	if (opt.ic)
		status_line(" (final)");
	g.unloading = 1;
	r = vmbus_unload(g.vb);
	g.unload_result = r;
	g.unloaded = true;
	vmbus_get_stats(g.vb, &st);
	if (opt.json) {
		printf("  \"unload\": %d, \"messages\": %llu, \"bad_messages\": %llu, "
		    "\"bad_offers\": %llu, \"leaked_pages\": %llu\n}\n", r,
		    (unsigned long long)st.bs_messages,
		    (unsigned long long)st.bs_bad_messages,
		    (unsigned long long)st.bs_bad_offers,
		    (unsigned long long)st.bs_leaked_pages);
	} else {
		printf("unloaded (%d); %llu messages, %llu dropped, %llu offers "
		    "rejected, %llu pages leaked\n", r,
		    (unsigned long long)st.bs_messages,
		    (unsigned long long)st.bs_bad_messages,
		    (unsigned long long)st.bs_bad_offers,
		    (unsigned long long)st.bs_leaked_pages);
	}
	fflush(stdout);
	pthread_mutex_unlock(&g.life_mu);
	return r;
}

/* The port's power_off / reboot (a host shutdown) runs this before RESET;
 * the port exits the process afterwards. */
static void unload_hook(void *arg)
{
	(void)arg;
	if (!g.unloaded)
		hvg_event("shutdown: unloading VMBus");
	finish_unload();
}

/*
 * Stay connected: poll (hot add / rescind work, polled ports), report IC
 * events, bring up NICs added later, print status lines. Until the
 * deadline (0 = none), the partition is gone, or a host shutdown unloaded
 * us (a power_off that returned: the RESET failed).
 */
static void stay_loop(uint64_t stay_ns)
{
	uint64_t start = mono_ns(), end = stay_ns ? start + stay_ns : 0;
	uint64_t status_ns = (uint64_t)(opt.status_s * 1e9), next_status;
	uint64_t next_tick = start;
	struct timespec nap = { 0, 50 * 1000 * 1000 };

	next_status = start + status_ns;
	fflush(stdout);
	while ((end == 0 || mono_ns() < end) &&
	    vmbus_posix_gone(g.px) == VMBUS_POSIX_ALIVE && !g.unloading) {
		uint64_t now;

		vmbus_poll(g.vb);	/* hot-add / rescind work */
		now = mono_ns();
		if (opt.ic) {
			hvg_ic_poll_events();
			hvg_ic_power_pending();
		}
		if (opt.full && now >= next_tick) {
			hvg_dev_tick();
			next_tick = now + 250 * 1000 * 1000;
		}
		if (opt.full)
			hvg_net_tick();
		if (status_ns && now >= next_status) {
			status_line("");
			next_status += status_ns;
			if (next_status < now)
				next_status = now + status_ns;
		}
		nanosleep(&nap, NULL);
	}
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_config cfg;
	int r, rc = 0;

	if (parse_args(argc, argv) != 0) {
		usage(stderr);
		return 2;
	}
	if ((opt.disk_selftest || opt.net_selftest) && !opt.full) {
		fprintf(stderr, "hvguest: --disk-selftest and --net-selftest "
		    "need --full\n");
		return 2;
	}
	g.t0_ns = mono_ns();
	vmbus_posix_options_init(&po);
	po.po_polled = opt.polled ? 1 : 0;
	r = vmbus_posix_create(&po, &g.plat, &g.px);
	if (r != 0) {
		fprintf(stderr, "hvguest: cannot attach to a partition: %d "
		    "(started by a host with HVSIM_FD or HVSIM_SOCKET?)\n", r);
		return 1;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.vc_max_version = opt.max_version;
	fault_arm(HVG_PHASE_CONNECT);
	r = vmbus_create(&g.plat, &cfg, &g.vb);
	if (r == 0 && opt.open_echo) {
		struct echo_config ec = { opt.ring, opt.ring };

		r = echo_register(g.vb, &ec);
	}
	/* NOTE: drivers before the connect, so boot-time devices attach
	 * during it (disks are scanned, NICs up, IC channels open). */
	if (r == 0 && opt.ic)
		r = hvg_ic_register();
	if (r == 0 && opt.full)
		r = hvg_dev_register();
	if (r == 0)
		r = vmbus_posix_add_shutdown_hook(g.px, unload_hook, NULL);
	if (r == 0)
		r = vmbus_connect(g.vb);
	if (r != 0) {
		fprintf(stderr, "hvguest: VMBus connect failed: %d\n", r);
		vmbus_posix_remove_shutdown_hook(g.px, unload_hook, NULL);
		(void)vmbus_unload(g.vb);
		release_all(1);
		vmbus_posix_destroy(g.px);
		return 1;
	}
	fault_arm(HVG_PHASE_RUN);
	if (opt.ic) {
		/* The host negotiates right after each IC channel opens; wait
		 * (bounded) so the listing shows the versions. */
		hvg_ic_wait_negotiated((uint64_t)(3e9 * hvg_time_scale()));
		hvg_ic_poll_events();
		if (!hvg_ic_any_attached())
			hvg_event("ic: the host offers no integration "
			    "services");
	}

	if (opt.json)
		printf("{\n");
	print_listing(g.vb, opt.json, false);
	if (opt.full && hvg_dev_report() != 0)
		rc = 1;
	g.booted = 1;
	if (opt.full)
		hvg_net_servers_start();
	if (opt.echo_n && run_echo(g.vb, opt.json) != 0)
		rc = 1;
	if (opt.json && opt.ic) {
		hvg_ic_json();
		hvg_dev_json();
	}

	if (opt.ic || opt.stay_s > 0) {
		uint64_t t0 = mono_ns();

		stay_loop((uint64_t)(opt.stay_s * 1e9));
		if (opt.ic)
			hvg_ic_power_pending();	/* one that came at the end */
		if (!g.unloaded) {
			double s = opt.stay_s > 0 ? opt.stay_s :
			    (double)(mono_ns() - t0) / 1e9;

			if (!opt.json)
				printf("after %.1f s:\n", s);
			else
				printf("  \"after_stay\": {\n");
			print_listing(g.vb, opt.json, true);
			if (opt.json)
				printf("  },\n");
		}
	}

	fault_arm(HVG_PHASE_UNLOAD);
	r = finish_unload();
	if (r != 0)
		rc = 1;
	vmbus_posix_remove_shutdown_hook(g.px, unload_hook, NULL);
	release_all(rc);
	vmbus_posix_destroy(g.px);
	return rc;
}
