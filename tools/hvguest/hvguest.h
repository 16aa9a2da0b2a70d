/*
 * tools/hvguest/hvguest.h - shared state of the reference guest program:
 * hvguest.c (options, listing, echo, main loop), hvg_ic.c (integration
 * services and KVP persistence), hvg_dev.c (StorVSC disks and NetVSC NICs).
 *
 * Threads: main runs the program; the posix port's interrupt threads run
 * channel callbacks; its deferred-work thread runs IC work (KVP changes,
 * the shutdown request). A host shutdown is carried out by the main loop:
 * the port's power_off runs our shutdown hook (the UNLOAD), sends RESET
 * and exits the process.
 */
#ifndef HVGUEST_H
#define HVGUEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmbus/ic.h"
#include "vmbus/posix.h"
#include "vmbus/vmbus.h"

#define NS_PER_S 1000000000ull

struct storvsc;

struct hvg_options {
	bool json;
	uint32_t echo_n;
	bool open_echo;
	double stay_s;
	bool stay_given;
	uint32_t ring;
	uint32_t max_version;
	uint32_t payload;
	bool polled;
	/* long-running mode */
	bool ic;		/* --ic (implied by --full) */
	bool full;		/* --full: + StorVSC and NetVSC */
	const char *kvp_file;	/* --kvp-file: NULL default, "none" off */
	bool disk_selftest;	/* --disk-selftest */
	bool net_selftest;	/* --net-selftest */
	double status_s;	/* --status: 0 = no status lines */
	bool no_ip;		/* --no-ip: no lwIP, DHCP, HTTP, NBD */
	/* --ip A.B.C.D/N[,GW]: nic0's address without DHCP (host order;
	 * ip 0 = DHCP) */
	uint32_t static_ip, static_mask, static_gw;
	uint32_t probe_ip;	/* --probe A.B.C.D (host order), 0 = none */
	/* --fault KIND:N[+][@PHASE]: the port's countdown of that kind
	 * (VMBUS_POSIX_FAULT_*) is armed with N (persistent with +) when
	 * PHASE begins; the program then prints a "fault-report:" line at
	 * its exit. */
	bool fault;
	bool fault_persist;
	int fault_kind;
	uint32_t fault_n;
	int fault_phase;	/* HVG_PHASE_* */
};

#define HVG_PHASE_CONNECT 0	/* before vmbus_create: attach + open */
#define HVG_PHASE_RUN     1	/* after the connect: I/O, self-tests */
#define HVG_PHASE_UNLOAD  2	/* before the unload: close + detach */

struct hvg {
	struct hvg_options opt;
	struct vmbus_platform plat;
	struct vmbus_posix *px;
	struct vmbus *vb;
	struct ic_services *ics;
	struct storvsc *sv;
	bool net;			/* netvsc_register succeeded */
	uint64_t t0_ns;			/* program start, monotonic */
	/* Life cycle: whoever unloads (main at the end, or the shutdown
	 * hook on the port's power path) holds life_mu meanwhile. */
	pthread_mutex_t life_mu;
	bool unloaded;
	int unload_result;
	volatile int unloading;		/* an unload started: quiet detach */
	/* Set once the boot-time report is printed: later device events
	 * (hot add / remove) are printed as they happen. */
	volatile int booted;
	/* Pages this program leaked on purpose (I/O buffers the host may
	 * still hold after a timeout): for the fault-report line. */
	_Atomic uint64_t leaked_pages;
};

extern struct hvg g;

/* Monotonic clock, ns. */
uint64_t hvg_now_ns(void);
/* Time scale for bounded waits (VMBUS_TEST_TIME_SCALE, >= 1). */
double hvg_time_scale(void);

/*
 * One event line ("ic: ...", "disk 0: ...", "status: ..."): on stdout, or on
 * stderr with --json so stdout stays one JSON document. Flushed at once.
 */
void hvg_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- hvg_ic.c ---- */

/* Register the four IC drivers (before vmbus_connect). 0 or an error
 * (printed). */
int hvg_ic_register(void);
/* Wait (bounded) until every attached IC service negotiated, so the
 * listing shows their versions. */
void hvg_ic_wait_negotiated(uint64_t timeout_ns);
/* Print what changed since the last call: negotiations, clock steps,
 * refused requests. Main thread. */
void hvg_ic_poll_events(void);
/* Carry out a host shutdown / reboot request (main thread, outside
 * vmbus_poll); returns only if none is pending or the port failed. */
void hvg_ic_power_pending(void);
/* "IC framework 3.0, heartbeat 3.0" for a channel bound to an IC driver,
 * or 0 when ci is not an IC channel. */
int hvg_ic_protocol(const struct vmbus_chan_info *ci, char *buf, size_t size);
/* Whether the host offered (and we opened) any IC channel. */
bool hvg_ic_any_attached(void);
/* Append the IC part of a status line. */
void hvg_ic_status(char *buf, size_t size);
/* JSON member "ic": {...} for the listing (prints "  \"ic\": ...,\n"). */
void hvg_ic_json(void);
/* After vmbus_destroy. */
void hvg_ic_free(void);

/* ---- hvg_dev.c ---- */

/* Register StorVSC and NetVSC (before vmbus_connect). 0 or an error. */
int hvg_dev_register(void);
/* After the connect: list disks (with the read check, and the write
 * self-test with --disk-selftest), bring the NICs up and list them.
 * Returns the number of failed checks. */
int hvg_dev_report(void);
/* Main-loop housekeeping: storvsc_tick, bring up NICs added later. */
void hvg_dev_tick(void);
/* "VSTOR 6.2, 2 queues" / "NVSP 6.1 (NDIS 6.30), 2 queues", or 0. */
int hvg_dev_protocol(const struct vmbus_chan_info *ci, char *buf,
    size_t size);
void hvg_dev_status(char *buf, size_t size);
/* JSON members "disks": [...], "nics": [...] (each line ends with ",\n"). */
void hvg_dev_json(void);
/* After vmbus_destroy. */
void hvg_dev_free(void);
/* Pages StorVSC / NetVSC (NICs gone or never attached) leaked on purpose;
 * before hvg_dev_free, 0 without --full. */
uint64_t hvg_dev_storvsc_leaked(void);
uint64_t hvg_dev_nic_leaked(void);

/* in as the inside of a JSON string (quotes, backslashes and control
 * bytes escaped), cut to fit size. */
void hvg_json_str(char *out, size_t size, const char *in);

/* Append printf-style text to buf (always NUL-terminated). */
void hvg_append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* HVGUEST_H */
