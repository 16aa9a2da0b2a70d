/*
 * tools/hvguest/hvguest.c - the reference guest program: the guest VMBus
 * core on the posix port. Started by any host implementing the partition
 * ABI (HVSIM_FD or HVSIM_SOCKET), it connects, lists what it found like
 * Linux's lsvmbus, optionally exercises the echo devices, then unloads and
 * exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv/guid.h"
#include "hv/vmbus_msg.h"
#include "vmbus/echo.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define NS_PER_S 1000000000ull

static struct {
	bool json;
	uint32_t echo_n;
	bool open_echo;
	double stay_s;
	uint32_t ring;
	uint32_t max_version;
	uint32_t payload;
	bool polled;
} opt;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: hvguest [--json] [--echo N] [--open-all-echo] [--stay SECONDS]\n"
	    "               [--ring BYTES] [--payload BYTES] [--max-version X.Y]\n"
	    "Runs as a guest partition (HVSIM_FD or HVSIM_SOCKET + HVSIM_VM_NAME):\n"
	    "connects to VMBus, lists the offered channels, then unloads.\n"
	    "  --json            machine-readable output\n"
	    "  --echo N          N echo round trips per echo device (opens them)\n"
	    "  --open-all-echo   attach and open every echo device\n"
	    "  --stay SECONDS    stay connected this long before unloading\n"
	    "  --ring BYTES      echo ring size per direction (default 65536)\n"
	    "  --payload BYTES   largest echo payload (default: ring maximum)\n"
	    "  --max-version X.Y newest VMBus version to request (default 5.3)\n"
	    "  --polled          no interrupt threads: the core polls\n");
}

static int parse_version(const char *s, uint32_t *v)
{
	unsigned maj, min;

	if (sscanf(s, "%u.%u", &maj, &min) != 2 || maj > 0xFFFF || min > 0xFFFF)
		return -1;
	*v = VMBUS_VERSION(maj, min);
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
			if (*end || opt.stay_s < 0)
				return -1;
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
			continue;
		}
		printf("%s\n    {\"class\": \"%s\", \"class_name\": \"%s\", "
		    "\"instance\": \"%s\", \"relid\": %u, \"sub_channel\": %u, "
		    "\"target_vp\": %u, \"conn_id\": %u, \"tx_ring\": %u, "
		    "\"rx_ring\": %u, \"state\": \"%s\", \"driver\": %s%s%s}",
		    i ? "," : "", cls, gc ? gc->gc_name : "unknown", inst,
		    ci->ci_relid, ci->ci_sub_index, ci->ci_target_vp,
		    ci->ci_conn_id, ci->ci_tx_ring_bytes, ci->ci_rx_ring_bytes,
		    vmbus_chan_state_name(ci->ci_state),
		    ci->ci_driver ? "\"" : "",
		    ci->ci_driver ? ci->ci_driver : "null",
		    ci->ci_driver ? "\"" : "");
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

int main(int argc, char **argv)
{
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px = NULL;
	struct vmbus_config cfg;
	struct vmbus_stats st;
	struct vmbus *vb = NULL;
	int r, rc = 0;

	if (parse_args(argc, argv) != 0) {
		usage(stderr);
		return 2;
	}
	vmbus_posix_options_init(&po);
	po.po_polled = opt.polled ? 1 : 0;
	r = vmbus_posix_create(&po, &plat, &px);
	if (r != 0) {
		fprintf(stderr, "hvguest: cannot attach to a partition: %d "
		    "(started by a host with HVSIM_FD or HVSIM_SOCKET?)\n", r);
		return 1;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.vc_max_version = opt.max_version;
	r = vmbus_create(&plat, &cfg, &vb);
	if (r == 0 && opt.open_echo) {
		struct echo_config ec = { opt.ring, opt.ring };

		r = echo_register(vb, &ec);
	}
	if (r == 0)
		r = vmbus_connect(vb);
	if (r != 0) {
		fprintf(stderr, "hvguest: VMBus connect failed: %d\n", r);
		vmbus_destroy(vb);
		vmbus_posix_destroy(px);
		return 1;
	}

	if (opt.json)
		printf("{\n");
	print_listing(vb, opt.json, false);
	if (opt.echo_n && run_echo(vb, opt.json) != 0)
		rc = 1;

	if (opt.stay_s > 0) {
		uint64_t end = mono_ns() + (uint64_t)(opt.stay_s * 1e9);
		struct timespec nap = { 0, 50 * 1000 * 1000 };

		fflush(stdout);
		while (mono_ns() < end && vmbus_posix_gone(px) == 0) {
			vmbus_poll(vb);	/* hot-add / rescind work */
			nanosleep(&nap, NULL);
		}
		if (!opt.json)
			printf("after %.1f s:\n", opt.stay_s);
		else
			printf("  \"after_stay\": {\n");
		print_listing(vb, opt.json, true);
		if (opt.json)
			printf("  },\n");
	}

	r = vmbus_unload(vb);
	vmbus_get_stats(vb, &st);
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
	if (r != 0)
		rc = 1;
	fflush(stdout);
	vmbus_destroy(vb);
	echo_unregister(vb);
	vmbus_posix_destroy(px);
	return rc;
}
