/*
 * tests/hostsrv/echo_guest.c - end-to-end smoke of the host VMBus server:
 * a guest program (guest core + posix port) run by hvsim with --echo N.
 * It connects, opens every echo channel, sends in-band packets of several
 * sizes and one GPA-direct packet, checks each echo, closes and unloads.
 * Exit 0 on success; any mismatch or failure exits 1 with a message.
 *
 * Usage: echo_guest EXPECTED_DEVICES
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/guid.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/errno.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define MAX_DEVS 8
#define TIMEOUT_NS (5ull * 1000 * 1000 * 1000)

static struct vmbus_device *devs[MAX_DEVS];
static unsigned ndevs;

static int echo_attach(struct vmbus_device *dev)
{
	if (ndevs >= MAX_DEVS)
		return -VMBUS_ENOSPC;
	devs[ndevs++] = dev;
	return 0;
}

static void echo_detach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);
	if (vmbus_chan_state(ch) == VMBUS_CHAN_OPEN)
		vmbus_chan_close(ch);
}

static struct vmbus_driver echo_drv = {
	.drv_name = "echo_guest",
	.drv_class = HV_GUID_ECHO_INIT,
	.drv_attach = echo_attach,
	.drv_detach = echo_detach,
};

static void die(const char *what, int r)
{
	fprintf(stderr, "echo_guest: %s: %d\n", what, r);
	exit(1);
}

/* Receive the next in-band packet (skipping completions). */
static uint32_t recv_inband(struct vmbus_channel *ch, uint8_t *buf,
			    uint32_t max, uint64_t *tid)
{
	for (int tries = 0; tries < 1000; tries++) {
		struct vmbus_pkt_info pi;
		uint32_t len = max;
		int r = vmbus_chan_recv(ch, buf, &len, &pi);
		if (r == -VMBUS_EAGAIN) {
			r = vmbus_chan_wait_rx(ch, TIMEOUT_NS);
			if (r != 0)
				die("wait_rx", r);
			continue;
		}
		if (r != 0)
			die("recv", r);
		if (pi.pi_type != VMBUS_PACKET_TYPE_DATA_INBAND)
			continue;
		*tid = pi.pi_trans_id;
		return len;
	}
	die("no in-band packet", 0);
	return 0;
}

static void exercise(const struct vmbus_platform *plat,
		     struct vmbus_channel *ch)
{
	static uint8_t data[4000], buf[8192];
	const uint32_t sizes[] = { 1, 8, 13, 100, 1000, 3000 };
	uint64_t tid;

	int r = vmbus_chan_open(ch, 4 * 4096, 4 * 4096, NULL, 0, NULL, NULL);
	if (r != 0)
		die("open", r);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (uint32_t k = 0; k < sizes[i]; k++)
			data[k] = (uint8_t)(k * 13 + i);
		r = vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0, data,
				    sizes[i], 1000 + i);
		if (r != 0)
			die("send", r);
		uint32_t n = recv_inband(ch, buf, sizeof(buf), &tid);
		if (tid != 1000 + i || n != ((sizes[i] + 7) & ~7u) ||
		    memcmp(buf, data, sizes[i]) != 0)
			die("in-band echo mismatch", (int)i);
	}

	/* GPA direct: two pages, 5000 bytes from offset 100 */
	uint64_t pfns[2];
	uint8_t *pg = plat->page_alloc(plat->ctx, 2, pfns);
	if (pg == NULL)
		die("page_alloc", 0);
	for (uint32_t k = 0; k < 8192; k++)
		pg[k] = (uint8_t)(k ^ (k >> 7));
	struct vmbus_gpa_buf gb = { .gb_len = 5000, .gb_offset = 100,
				    .gb_npfn = 2, .gb_pfn = pfns };
	uint8_t req[8] = { 0 };
	r = vmbus_chan_send_gpa(ch, &gb, 1, req, sizeof(req), 77);
	if (r != 0)
		die("send_gpa", r);
	uint32_t n = recv_inband(ch, buf, sizeof(buf), &tid);
	if (tid != 77 || n != 5000 || memcmp(buf, pg + 100, 5000) != 0)
		die("GPA-direct echo mismatch", (int)n);

	r = vmbus_chan_close(ch);
	if (r != 0)
		die("close", r);
	plat->page_free(plat->ctx, pg, 2);
}

int main(int argc, char **argv)
{
	struct vmbus_platform plat;
	struct vmbus_posix *port;
	struct vmbus *vb;
	unsigned want = argc > 1 ? (unsigned)atoi(argv[1]) : 1;

	int r = vmbus_posix_create(NULL, &plat, &port);
	if (r != 0)
		die("posix_create", r);
	r = vmbus_create(&plat, NULL, &vb);
	if (r != 0)
		die("vmbus_create", r);
	r = vmbus_driver_register(vb, &echo_drv);
	if (r != 0)
		die("driver_register", r);
	r = vmbus_connect(vb);
	if (r != 0)
		die("connect", r);
	if (ndevs != want)
		die("echo devices found", (int)ndevs);
	for (unsigned i = 0; i < ndevs; i++)
		exercise(&plat, vmbus_device_channel(devs[i]));
	printf("echo_guest: version 0x%x, %u devices echoed\n",
	       vmbus_version(vb), ndevs);
	r = vmbus_unload(vb);
	if (r != 0)
		die("unload", r);
	vmbus_destroy(vb);
	vmbus_posix_destroy(port);
	return 0;
}
