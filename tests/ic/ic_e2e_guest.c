/*
 * tests/ic/ic_e2e_guest.c - the guest program of the IC end-to-end test:
 * the guest core on the posix port with the four integration services
 * (vmbus/ic.h) registered, as an OS would: KVP persistence in a file,
 * UNLOAD as a shutdown hook, then it just lives until the host shuts it
 * down (IC shutdown -> port power_off/reboot -> exit) or kills it.
 *
 * What the host cannot see otherwise, the guest publishes in its guest
 * KVP pool: "SeenPersist" = the external-pool "Persist" value it restored
 * at boot (or "none"), and "BootPid".
 *
 *   ic_e2e_guest [--kvp-file PATH] [--ignore-shutdown] [--slew-ppm N]
 * The wall clock skew comes from VMBUS_POSIX_WALL_SKEW (posix port).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmbus/ic.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

static const char *kvp_file;
static struct vmbus *vb;

static int kvp_load(void *arg, void *buf, uint32_t size, uint32_t *len)
{
	int fd;
	ssize_t n;

	(void)arg;
	if (kvp_file == NULL)
		return -VMBUS_ENOENT;
	fd = open(kvp_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -VMBUS_ENOENT;
	n = read(fd, buf, size);
	close(fd);
	if (n < 0)
		return -VMBUS_EIO;
	*len = (uint32_t)n;
	return 0;
}

/* Write a new file and rename it over the old one: a crash leaves either. */
static int kvp_save(void *arg, const void *buf, uint32_t len)
{
	char tmp[4096];
	int fd;

	(void)arg;
	if (kvp_file == NULL)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", kvp_file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -VMBUS_EIO;
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) != 0) {
		close(fd);
		return -VMBUS_EIO;
	}
	close(fd);
	return rename(tmp, kvp_file) == 0 ? 0 : -VMBUS_EIO;
}

static void kvp_changed(void *arg, uint8_t pool, const char *key, bool del)
{
	(void)arg;
	printf("e2e-guest: host %s %s in pool %u\n", del ? "deleted" : "set",
	       key, pool);
	fflush(stdout);
}

/* A guest that acknowledges a shutdown and then does not stop. */
static int ignore_action(void *arg, enum ic_power_action a)
{
	(void)arg;
	printf("e2e-guest: ignoring power action %d\n", (int)a);
	fflush(stdout);
	return 0;
}

static void unload_hook(void *arg)
{
	(void)arg;
	printf("e2e-guest: unloading\n");
	fflush(stdout);
	vmbus_unload(vb);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "kvp-file", required_argument, NULL, 'k' },
		{ "ignore-shutdown", no_argument, NULL, 'i' },
		{ "slew-ppm", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct vmbus_posix_options po;
	struct vmbus_platform pl;
	struct vmbus_posix *px;
	struct ic_services *ics;
	struct ic_config cfg;
	bool ignore = false;
	char val[256], pid[32];
	int c, r;

	vmbus_posix_options_init(&po);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'k': kvp_file = optarg; break;
		case 'i': ignore = true; break;
		case 's': po.po_slew_ppm = (uint32_t)strtoul(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	r = vmbus_posix_create(&po, &pl, &px);
	if (r != 0) {
		printf("e2e-guest: FAIL: attach %d\n", r);
		return 1;
	}
	r = vmbus_create(&pl, NULL, &vb);
	if (r != 0) {
		printf("e2e-guest: FAIL: create %d\n", r);
		return 1;
	}
	ic_config_init(&cfg);
	cfg.icc_kvp.kc_fqdn = "e2e-guest.example";
	cfg.icc_kvp.kc_os_name = "vmbus e2e";
	cfg.icc_kvp.kc_os_version = "1.0.0";
	cfg.icc_kvp.kc_os_build = "100";
	cfg.icc_kvp.kc_os_major = "1";
	cfg.icc_kvp.kc_os_minor = "0";
	cfg.icc_kvp.kc_proc_arch = "x86_64";
	cfg.icc_kvp.kc_load = kvp_load;
	cfg.icc_kvp.kc_save = kvp_save;
	cfg.icc_kvp.kc_changed = kvp_changed;
	if (ignore)
		cfg.icc_shutdown_action = ignore_action;
	/* NOTE: drivers before connect, so the IC offers attach at once. */
	r = ic_services_register(vb, &cfg, &ics);
	if (r != 0) {
		printf("e2e-guest: FAIL: ic register %d\n", r);
		return 1;
	}
	vmbus_posix_add_shutdown_hook(px, unload_hook, NULL);
	r = vmbus_connect(vb);
	if (r != 0) {
		printf("e2e-guest: FAIL: connect %d\n", r);
		return 1;
	}
	if (ic_kvp_get(ics, 0, "Persist", NULL, val, sizeof(val)) < 0)
		snprintf(val, sizeof(val), "none");
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	ic_kvp_set(ics, 1, "SeenPersist", val);
	ic_kvp_set(ics, 1, "BootPid", pid);
	printf("e2e-guest: connected, Persist=%s\n", val);
	fflush(stdout);

	/* Live until the host shuts us down (power_off exits) or kills us. */
	while (vmbus_posix_gone(px) == VMBUS_POSIX_ALIVE) {
		struct timespec nap = { 0, 20 * 1000 * 1000 };

		vmbus_poll(vb);
		nanosleep(&nap, NULL);
	}
	printf("e2e-guest: partition gone\n");
	return 0;
}
