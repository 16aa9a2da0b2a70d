/*
 * posix_reboot_guest.c - helper for test_posix_port: attaches by
 * HVSIM_SOCKET, reboots on its first boot (the port re-executes the program
 * to reconnect, DESIGN.md "Power and reboot"), powers off on the second.
 * The boot count travels in POSIX_REBOOT_BOOT, which exec preserves.
 * Exit: 0 from power_off, 2 attach failed, 5 power action returned.
 */
#include <stdio.h>
#include <stdlib.h>

#include "vmbus/posix.h"

int main(void)
{
	struct vmbus_posix_options o;
	struct vmbus_platform pl;
	struct vmbus_posix *p;
	const char *s = getenv("POSIX_REBOOT_BOOT");
	int boot = s ? atoi(s) : 0, err;
	char next[16];

	snprintf(next, sizeof(next), "%d", boot + 1);
	setenv("POSIX_REBOOT_BOOT", next, 1);
	vmbus_posix_options_init(&o);
	o.po_log_prefix = "reboot-guest";
	err = vmbus_posix_create(&o, &pl, &p);
	if (err) {
		fprintf(stderr, "reboot-guest: attach %d\n", err);
		return 2;
	}
	err = boot == 0 ? pl.reboot(pl.ctx) : pl.power_off(pl.ctx);
	fprintf(stderr, "reboot-guest: power action returned %d\n", err);
	return 5;
}
