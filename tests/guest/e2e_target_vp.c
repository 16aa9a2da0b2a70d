/*
 * tests/guest/e2e_target_vp.c - channel interrupts on the vCPU the driver
 * chooses (vmbus_chan_set_target_vp), end to end: hvsim runs this program
 * (--echo 1, several vCPUs) on the posix port, whose per-vCPU interrupt
 * threads call the core's ISR.
 *
 * The echo channel is pointed at every vCPU in turn, first before each open
 * (OPENCHANNEL target_vp), then on the open channel (MODIFYCHANNEL, from
 * version 4.1). Echo traffic flows after each choice, and the channel
 * callback notes which vCPU's interrupt thread ran it (a wrapper around the
 * ISR the port calls). Every packet must be taken by the ISR of the chosen
 * vCPU; before 5.3 a MODIFYCHANNEL is not acknowledged, so there only
 * "some" is required. Exit status 0 = pass, 1 = fail.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv/guid.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define ROUND_PACKETS	50u
#define ROUND_WAIT_S	20

static _Thread_local int tls_vp = -1;	/* vCPU whose ISR runs here */
static vmbus_isr_fn *real_isr;
static int (*port_irq_attach)(void *, uint8_t *, vmbus_isr_fn *, void *);

static void isr_wrap(void *arg, uint32_t vp)
{
	tls_vp = (int)vp;
	real_isr(arg, vp);
	tls_vp = -1;
}

static int irq_attach_wrap(void *ctx, uint8_t *vector, vmbus_isr_fn *isr,
    void *arg)
{
	real_isr = isr;
	return port_irq_attach(ctx, vector, isr_wrap, arg);
}

static struct vmbus_channel *echo_ch;
static atomic_uint pk_total, pk_want, pk_other, pk_thread;
static atomic_int want_vp;
static int failures;

static int drv_attach(struct vmbus_device *dev)
{
	echo_ch = vmbus_device_channel(dev);
	return 0;
}

static void drv_detach(struct vmbus_device *dev)
{
	if (vmbus_chan_state(vmbus_device_channel(dev)) == VMBUS_CHAN_OPEN)
		(void)vmbus_chan_close(vmbus_device_channel(dev));
	echo_ch = NULL;
}

static const struct vmbus_driver drv = {
	.drv_name = "e2e-vp",
	.drv_class = HV_GUID_ECHO_INIT,
	.drv_attach = drv_attach,
	.drv_detach = drv_detach,
};

static void rx_cb(struct vmbus_channel *ch, void *arg)
{
	uint8_t buf[64];
	uint32_t len = sizeof(buf);
	int vp = tls_vp;

	(void)arg;
	while (vmbus_chan_recv(ch, buf, &len, NULL) == 0) {
		len = sizeof(buf);
		atomic_fetch_add(&pk_total, 1);
		if (vp < 0)
			atomic_fetch_add(&pk_thread, 1);   /* a bus wait polled */
		else if (vp == atomic_load(&want_vp))
			atomic_fetch_add(&pk_want, 1);
		else
			atomic_fetch_add(&pk_other, 1);
	}
}

static void check(bool ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

static void nap(void)
{
	struct timespec ts = { 0, 200000 };

	nanosleep(&ts, NULL);
}

/* Echo traffic with the channel's interrupts on vp; strict: every packet
 * taken by an ISR must be taken by vp's. */
static void round_on(uint32_t vp, bool strict, const char *how)
{
	char what[128];
	time_t end = time(NULL) + ROUND_WAIT_S;
	struct vmbus_chan_info ci;

	atomic_store(&pk_total, 0);
	atomic_store(&pk_want, 0);
	atomic_store(&pk_other, 0);
	atomic_store(&pk_thread, 0);
	atomic_store(&want_vp, (int)vp);
	check(vmbus_chan_get_info(echo_ch, &ci) == 0 && ci.ci_target_vp == vp,
	    "channel info shows the chosen vCPU");
	for (uint32_t i = 0; i < ROUND_PACKETS; i++) {
		int r;

		while ((r = vmbus_chan_send(echo_ch,
		    VMBUS_PACKET_TYPE_DATA_INBAND, 0, "ping", 4, i + 1u)) ==
		    -VMBUS_EAGAIN && time(NULL) < end)
			nap();
		if (r != 0) {
			check(false, "send");
			return;
		}
	}
	while (atomic_load(&pk_total) < ROUND_PACKETS && time(NULL) < end)
		nap();
	snprintf(what, sizeof(what), "%s vCPU %u: %u/%u echoes, %u on it, %u "
	    "on another vCPU, %u polled", how, (unsigned)vp,
	    atomic_load(&pk_total), ROUND_PACKETS, atomic_load(&pk_want),
	    atomic_load(&pk_other), atomic_load(&pk_thread));
	check(atomic_load(&pk_total) == ROUND_PACKETS &&
	    atomic_load(&pk_want) > 0 &&
	    (!strict || atomic_load(&pk_other) == 0), what);
}

int main(void)
{
	struct vmbus_posix_options po;
	struct vmbus_platform plat;
	struct vmbus_posix *px = NULL;
	struct vmbus *vb = NULL;
	uint32_t n, ver;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	vmbus_posix_options_init(&po);
	po.po_gone_action = VMBUS_POSIX_GONE_FAIL;
	if ((r = vmbus_posix_create(&po, &plat, &px)) != 0) {
		fprintf(stderr, "e2e_target_vp: attach failed (%d)\n", r);
		return 1;
	}
	port_irq_attach = plat.irq_attach;
	if (port_irq_attach == NULL) {
		fprintf(stderr, "e2e_target_vp: the port is polled\n");
		return 1;
	}
	plat.irq_attach = irq_attach_wrap;
	if (vmbus_create(&plat, NULL, &vb) != 0 ||
	    vmbus_driver_register(vb, &drv) != 0 ||
	    (r = vmbus_connect(vb)) != 0) {
		fprintf(stderr, "e2e_target_vp: connect failed (%d)\n", r);
		return 1;
	}
	n = vmbus_posix_vcpu_count(px);
	ver = vmbus_version(vb);
	printf("version %u.%u, %u vCPUs\n", (unsigned)(ver >> 16),
	    (unsigned)(ver & 0xFFFF), (unsigned)n);
	check(echo_ch != NULL && n >= 2, "an echo channel and >= 2 vCPUs");
	if (echo_ch == NULL || n < 2)
		goto out;

	/* Before open: OPENCHANNEL carries the choice. */
	for (uint32_t vp = 0; vp < n; vp++) {
		r = vmbus_chan_set_target_vp(echo_ch, vp);
		if (ver < VMBUS_VERSION_WIN8 && vp != 0) {
			check(r == -VMBUS_EOPNOTSUPP,
			    "before 2.4 only vCPU 0 takes channel events");
			continue;
		}
		check(r == 0, "set_target_vp before open");
		check(vmbus_chan_open(echo_ch, 16384, 16384, NULL, 0, rx_cb,
		    NULL) == 0, "open");
		round_on(vp, true, "opened on");
		check(vmbus_chan_close(echo_ch) == 0, "close");
	}

	/* Open: MODIFYCHANNEL, acknowledged from 5.3 on. */
	check(vmbus_chan_set_target_vp(echo_ch, 0) == 0, "back to vCPU 0");
	check(vmbus_chan_open(echo_ch, 16384, 16384, NULL, 0, rx_cb, NULL) == 0,
	    "open");
	for (uint32_t k = 1; k <= n; k++) {
		uint32_t vp = n - k;

		r = vmbus_chan_set_target_vp(echo_ch, vp);
		if (ver < VMBUS_VERSION_WIN10_RS3_0) {
			check(r == -VMBUS_EOPNOTSUPP || vp == 0,
			    "no MODIFYCHANNEL before 4.1");
			break;
		}
		check(r == 0, "set_target_vp on the open channel");
		round_on(vp, ver >= VMBUS_VERSION_IRON, "moved to");
	}
	check(vmbus_chan_close(echo_ch) == 0, "close");
out:
	r = vmbus_unload(vb);
	check(r == 0, "unload");
	vmbus_destroy(vb);
	vmbus_posix_destroy(px);
	printf("e2e_target_vp: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
