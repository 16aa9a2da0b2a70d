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
 * Test protocol details (for the guest-side echo client):
 *  - the in-band echo carries the guest's payload as received, i.e.
 *    (len8 - offset8) * 8 bytes including the sender's zero padding, with
 *    the same trans_id and no flags;
 *  - the completion (only if COMPLETION_REQUESTED) has no payload and the
 *    same trans_id; it follows the echo;
 *  - a GPA-direct packet is echoed in-band with the bytes its ranges
 *    describe (at most the outgoing ring's max packet - 16 bytes; larger
 *    buffers get only the completion);
 *  - an in-band payload starting with the 8 bytes ECHO_SUBCH_MAGIC followed
 *    by a u16 (LE) count n on a primary channel makes the host offer
 *    subchannels 1..min(n, ECHO_MAX_SUBCHANNELS) (then echoes as usual).
 */
#define ECHO_SUBCH_MAGIC	"ECHOSUB\0"
#define ECHO_SUBCH_MAGIC_LEN	8u
#define ECHO_MAX_SUBCHANNELS	8u

/*
 * Register one echo device on server s (call before or after attach; after
 * the guest has asked for offers it is hot-added). instance NULL = derived
 * (stable per VM name and index). Returns the relid (> 0) or a negative
 * VMBUS_E* code (see hvs_vmbus_add_device).
 */
int hvs_echo_add(struct hvs_vmbus *s, const struct hv_guid *instance);

#endif /* HVS_VSP_ECHO_H */
