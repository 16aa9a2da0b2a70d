/*
 * host/net/switch.h - the internal virtual switch's statistics (the
 * switch itself is reached through host/net/net.h: --net switch[=NAME]).
 */
#ifndef HVS_NET_SWITCH_H
#define HVS_NET_SWITCH_H

#include <stdint.h>

struct hvs_switch_stats {
	uint32_t ss_ports;		/* ports now */
	uint32_t ss_entries;		/* forwarding-database entries now */
	uint64_t ss_learned;		/* new (VLAN, MAC) -> port entries */
	uint64_t ss_moves;		/* a MAC seen on another port */
	uint64_t ss_evictions;		/* live entries pushed out (table full) */
	uint64_t ss_forwarded;		/* unicast frames sent to one port */
	uint64_t ss_flooded;		/* frames sent to every port of a VLAN */
	uint64_t ss_vlan_dropped;	/* access port sent another VLAN's tag,
					   or any port VID 4095 (reserved) */
	uint64_t ss_dropped;		/* a port had no room */
};

/*
 * Snapshot of switch `name` (exists while it has ports). 0, or -ENOENT.
 * Thread-safe.
 */
int hvs_switch_get_stats(const char *name, struct hvs_switch_stats *st);

#endif /* HVS_NET_SWITCH_H */
