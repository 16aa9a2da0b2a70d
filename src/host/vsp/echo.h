/*
 * host/vsp/echo.h - the echo VSP (class HV_GUID_ECHO, our private test
 * device): every in-band packet from the guest comes back in-band with the
 * same payload (plus a completion with the same transaction id when the
 * guest asked for one); a GPA-direct packet comes back as an in-band packet
 * carrying the bytes of the guest pages it described.
 */
#ifndef HVS_VSP_ECHO_H
#define HVS_VSP_ECHO_H

#include "hv/wire.h"

struct hvs_vmbus;

/*
 * Register one echo device on server s (call before or after attach; after
 * the guest has asked for offers it is hot-added). instance NULL = derived
 * (stable per VM name and index). Returns the relid (> 0) or a negative
 * VMBUS_E* code (see hvs_vmbus_add_device).
 */
int hvs_echo_add(struct hvs_vmbus *s, const struct hv_guid *instance);

#endif /* HVS_VSP_ECHO_H */
