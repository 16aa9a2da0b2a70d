/*
 * posix_smoke_guest.c - the guest core on the posix port, as a guest
 * program any host can start (HVSIM_FD or HVSIM_SOCKET): attach, connect
 * (SynIC set-up, version negotiation, offers), list the channels, unload,
 * then power off through the port (shutdown hooks, RESET, exit).
 *
 * Paired with tests/abi/pyhost.py (written from DESIGN.md alone), it checks
 * the port against a host that shares nothing with ours.
 *
 *   posix_smoke_guest [--min-offers N]
 * Exit: 0 ok (from power_off), 2 attach failed, 3 connect failed,
 * 4 fewer offers than expected, 5 RESET failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

static int print_channel(void *arg, const struct vmbus_chan_info *ci)
{
	int *n = arg;
	const uint8_t *g = ci->ci_class.g_bytes;

	(*n)++;
	printf("smoke: relid %u class %02x%02x%02x%02x-... conn %u\n",
	       ci->ci_relid, g[3], g[2], g[1], g[0], ci->ci_conn_id);
	return 0;
}

static void unload_hook(void *arg)
{
	int err = vmbus_unload(arg);

	printf("smoke: unload %d\n", err);
}

int main(int argc, char **argv)
{
	struct vmbus_posix_options o;
	struct vmbus_platform pl;
	struct vmbus_posix *p;
	struct vmbus *vb;
	int min_offers = 0, n = 0, err;
	uint32_t v;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--min-offers") == 0 && i + 1 < argc)
			min_offers = atoi(argv[++i]);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	vmbus_posix_options_init(&o);
	o.po_log_prefix = "smoke";
	err = vmbus_posix_create(&o, &pl, &p);
	if (err) {
		printf("smoke: FAIL: attach %d\n", err);
		return 2;
	}
	printf("smoke: attached, %u vCPU(s), %llu MiB\n",
	       vmbus_posix_vcpu_count(p),
	       (unsigned long long)(vmbus_posix_ram_bytes(p) >> 20));
	err = vmbus_create(&pl, NULL, &vb);
	if (!err)
		err = vmbus_connect(vb);
	if (err) {
		printf("smoke: FAIL: connect %d\n", err);
		return 3;
	}
	v = vmbus_version(vb);
	vmbus_foreach_channel(vb, print_channel, &n);
	printf("smoke: connected %u.%u, %d offers\n", v >> 16, v & 0xFFFF, n);
	if (n < min_offers) {
		printf("smoke: FAIL: %d offers, want >= %d\n", n, min_offers);
		return 4;
	}
	/* The core's UNLOAD runs as a shutdown hook, as an OS would. */
	vmbus_posix_add_shutdown_hook(p, unload_hook, vb);
	err = pl.power_off(pl.ctx); /* exits on success */
	printf("smoke: FAIL: power_off %d\n", err);
	return 5;
}
