/*
 * hv/tlfs.h - the Hyper-V hypervisor interface used by VMBus (x64).
 *
 * Synthetic MSRs and their bit fields, the hypercall control/result values,
 * the PostMessage/SignalEvent inputs, the SynIC message and event-flags
 * pages, VMBus constants at the SynIC level, the monitor page and the
 * pre-Win8 interrupt page. Facts from shared/spec/vmbus-core.md section 1
 * (which restates the TLFS).
 *
 * Wire structs hold the little-endian representation: read and write their
 * fields with hv_le16()/hv_le32()/hv_le64() from hv/wire.h.
 *
 * Freestanding: only compiler-provided headers.
 */
#ifndef HV_TLFS_H
#define HV_TLFS_H

#include <stdint.h>

#include "hv/wire.h"

/* ---- 1.1 Detection (CPUID) ------------------------------------------- */

#define HV_CPUID_INTERFACE		0x40000001u
#define HV_CPUID_INTERFACE_HV1		0x31237648u	/* "Hv#1" in EAX */
#define HV_CPUID_FEATURES		0x40000003u
#define HV_CPUID_FEATURE_SYNIC		(1u << 2)	/* EAX: SynIC MSRs */
#define HV_CPUID_FEATURE_HYPERCALL	(1u << 5)	/* EAX: GuestOsId + Hypercall MSRs */
#define HV_CPUID_FEATURE_VP_INDEX	(1u << 6)	/* EAX: VP_INDEX MSR */

/* ---- 1.2 Synthetic MSRs ------------------------------------------------ */

#define HV_X64_MSR_GUEST_OS_ID		0x40000000u
#define HV_X64_MSR_HYPERCALL		0x40000001u
#define HV_X64_MSR_VP_INDEX		0x40000002u
#define HV_X64_MSR_TIME_REF_COUNT	0x40000020u	/* 100 ns units */
#define HV_X64_MSR_SCONTROL		0x40000080u
#define HV_X64_MSR_SVERSION		0x40000081u	/* read-only, reads 1 */
#define HV_X64_MSR_SIEFP		0x40000082u
#define HV_X64_MSR_SIMP			0x40000083u
#define HV_X64_MSR_EOM			0x40000084u
#define HV_X64_MSR_SINT0		0x40000090u
#define HV_X64_MSR_SINT(n)		(HV_X64_MSR_SINT0 + (uint32_t)(n))
#define HV_X64_MSR_SINT15		0x4000009Fu
#define HV_X64_MSR_STIMER0_CONFIG	0x400000B0u	/* +2 per timer, 4 timers */
#define HV_X64_MSR_STIMER0_COUNT	0x400000B1u
#define HV_X64_MSR_CRASH_P0		0x40000100u
#define HV_X64_MSR_CRASH_P1		0x40000101u
#define HV_X64_MSR_CRASH_P2		0x40000102u
#define HV_X64_MSR_CRASH_P3		0x40000103u
#define HV_X64_MSR_CRASH_P4		0x40000104u
#define HV_X64_MSR_CRASH_CTL		0x40000105u
#define HV_CRASH_CTL_CRASH_NOTIFY	(UINT64_C(1) << 63)

#define HV_SYNIC_VERSION_1		1u	/* value read from SVERSION */
#define HV_SYNIC_SINT_COUNT		16u

/* ---- 1.3 Guest OS ID (MSR 0x40000000) --------------------------------- */

#define HV_GUEST_OS_ID_OPEN_SOURCE	(UINT64_C(1) << 63)
/* open-source format (bit 63 = 1) */
#define HV_GUEST_OS_ID_OS_TYPE_SHIFT	56	/* bits 62:56 */
#define HV_GUEST_OS_ID_OS_TYPE_MASK	UINT64_C(0x7F)
#define HV_GUEST_OS_TYPE_LINUX		0x01u
#define HV_GUEST_OS_TYPE_FREEBSD	0x02u	/* OpenBSD: 0x02 with OS id 0x01 */
#define HV_GUEST_OS_ID_OS_ID_SHIFT	48	/* bits 55:48, vendor-specific 2 */
#define HV_GUEST_OS_ID_OS_ID_MASK	UINT64_C(0xFF)
#define HV_GUEST_OS_ID_VERSION_SHIFT	16	/* bits 47:16 */
#define HV_GUEST_OS_ID_VERSION_MASK	UINT64_C(0xFFFFFFFF)
#define HV_GUEST_OS_ID_BUILD_SHIFT	0	/* bits 15:0, vendor-specific 1 */
#define HV_GUEST_OS_ID_BUILD_MASK	UINT64_C(0xFFFF)
#define HV_GUEST_OS_ID_OPEN(os_type, os_id, version, build)                  \
	(HV_GUEST_OS_ID_OPEN_SOURCE |                                         \
	 (((uint64_t)(os_type) & HV_GUEST_OS_ID_OS_TYPE_MASK)                 \
	  << HV_GUEST_OS_ID_OS_TYPE_SHIFT) |                                  \
	 (((uint64_t)(os_id) & HV_GUEST_OS_ID_OS_ID_MASK)                     \
	  << HV_GUEST_OS_ID_OS_ID_SHIFT) |                                    \
	 (((uint64_t)(version) & HV_GUEST_OS_ID_VERSION_MASK)                 \
	  << HV_GUEST_OS_ID_VERSION_SHIFT) |                                  \
	 ((uint64_t)(build) & HV_GUEST_OS_ID_BUILD_MASK))
/* Microsoft format (bit 63 = 0) */
#define HV_GUEST_OS_ID_MS_BUILD_SHIFT	0	/* 15:0 */
#define HV_GUEST_OS_ID_MS_SERVICE_SHIFT	16	/* 23:16 */
#define HV_GUEST_OS_ID_MS_MINOR_SHIFT	24	/* 31:24 */
#define HV_GUEST_OS_ID_MS_MAJOR_SHIFT	32	/* 39:32 */
#define HV_GUEST_OS_ID_MS_OS_ID_SHIFT	40	/* 47:40 */
#define HV_GUEST_OS_ID_MS_VENDOR_SHIFT	48	/* 63:48, 0x0001 = Microsoft */

/* ---- 1.4 Hypercall MSR (0x40000001) ------------------------------------ */

#define HV_HYPERCALL_ENABLE		UINT64_C(0x1)
#define HV_HYPERCALL_LOCKED		UINT64_C(0x2)
#define HV_HYPERCALL_RSVD_MASK		UINT64_C(0xFFC)	/* 11:2, preserve */
#define HV_HYPERCALL_PGSHIFT		12		/* 63:12 GPA page number */

/* ---- 1.5 Hypercall control (input) value ------------------------------- */

#define HV_HYPERCALL_CODE_MASK		UINT64_C(0xFFFF)	/* 15:0 */
#define HV_HYPERCALL_FAST		(UINT64_C(1) << 16)
#define HV_HYPERCALL_VARHEAD_SHIFT	17			/* 26:17, qwords */
#define HV_HYPERCALL_VARHEAD_MASK	UINT64_C(0x3FF)
#define HV_HYPERCALL_NESTED		(UINT64_C(1) << 31)
#define HV_HYPERCALL_REP_COUNT_SHIFT	32			/* 43:32 */
#define HV_HYPERCALL_REP_COUNT_MASK	UINT64_C(0xFFF)
#define HV_HYPERCALL_REP_START_SHIFT	48			/* 59:48 */
#define HV_HYPERCALL_REP_START_MASK	UINT64_C(0xFFF)

/* Result value (RAX). */
#define HV_HYPERCALL_RESULT_STATUS_MASK	UINT64_C(0xFFFF)	/* 15:0 */
#define HV_HYPERCALL_RESULT_REPS_SHIFT	32			/* 43:32 */
#define HV_HYPERCALL_RESULT_REPS_MASK	UINT64_C(0xFFF)
#define HV_HYPERCALL_STATUS(result)                                          \
	((uint16_t)((result) & HV_HYPERCALL_RESULT_STATUS_MASK))
#define HV_HYPERCALL_REPS_COMPLETED(result)                                  \
	((uint16_t)(((result) >> HV_HYPERCALL_RESULT_REPS_SHIFT) &             \
		    HV_HYPERCALL_RESULT_REPS_MASK))

/* Memory input/output blocks: 8-byte aligned, padded to multiples of 8. */
#define HV_HYPERCALL_PARAM_ALIGN	8u

/* ---- 1.6 Hypercall codes used by VMBus --------------------------------- */

#define HV_CALL_POST_MESSAGE		0x005Cu
#define HV_CALL_SIGNAL_EVENT		0x005Du	/* also usable as a fast call */
#define HV_CALL_SIGNAL_EVENT_DIRECT	0x00C0u	/* paravisor/host only */
#define HV_CALL_POST_MESSAGE_DIRECT	0x00C1u	/* paravisor/host only */

/* ---- 1.9 HV_STATUS ----------------------------------------------------- */

#define HV_STATUS_SUCCESS			0x0000u
#define HV_STATUS_INVALID_HYPERCALL_CODE	0x0002u
#define HV_STATUS_INVALID_HYPERCALL_INPUT	0x0003u
#define HV_STATUS_INVALID_ALIGNMENT		0x0004u
#define HV_STATUS_INVALID_PARAMETER		0x0005u
#define HV_STATUS_ACCESS_DENIED			0x0006u
#define HV_STATUS_INSUFFICIENT_MEMORY		0x000Bu	/* transient */
#define HV_STATUS_INVALID_PORT_ID		0x0011u
/* NOTE: a pre-5.0 host returns this for InitiateContact on connection 4. */
#define HV_STATUS_INVALID_CONNECTION_ID		0x0012u
#define HV_STATUS_INSUFFICIENT_BUFFERS		0x0013u	/* queue full, retry */

/* ---- 1.10 SynIC registers --------------------------------------------- */

#define HV_SCONTROL_ENABLE		UINT64_C(0x1)

/* SIMP and SIEFP share one format. */
#define HV_SIMP_ENABLE			UINT64_C(0x1)
#define HV_SIMP_RSVD_MASK		UINT64_C(0xFFE)	/* 11:1, preserve */
#define HV_SIMP_PGSHIFT			12		/* 63:12 GPA page number */
#define HV_SIEFP_ENABLE			UINT64_C(0x1)
#define HV_SIEFP_RSVD_MASK		UINT64_C(0xFFE)
#define HV_SIEFP_PGSHIFT		12

/* EOM: write any value (guests write 0); reads as 0. */

#define HV_SINT_VECTOR_MASK		UINT64_C(0xFF)	/* 7:0, valid 16..255 */
#define HV_SINT_VECTOR_MIN		16u
#define HV_SINT_MASKED			(UINT64_C(1) << 16)
#define HV_SINT_AUTO_EOI		(UINT64_C(1) << 17)
#define HV_SINT_POLLING			(UINT64_C(1) << 18)
#define HV_SINT_AS_INTERCEPT		(UINT64_C(1) << 19)
#define HV_SINT_PROXY			(UINT64_C(1) << 20)
#define HV_SINT_RSVD_MASK		(UINT64_C(0xFFFFFFFFFFE0FF00))
#define HV_SINT_DEFAULT			HV_SINT_MASKED	/* after VP creation */

/* ---- 1.7 HvPostMessage input (256 bytes) ------------------------------ */

#define HV_CONNECTION_ID_MASK		0x00FFFFFFu	/* bits 23:0 */
#define HV_MESSAGE_SIZE			256u
#define HV_MESSAGE_PAYLOAD_MAX		240u

/* Input of HV_CALL_POST_MESSAGE. */
struct hv_post_message_input {
	uint32_t pm_connection_id;	/* 23:0 connection id, 31:24 zero */
	uint32_t pm_rsvd;		/* must be 0 */
	uint32_t pm_message_type;	/* non-zero, bit 31 clear; VMBus: 1 */
	uint32_t pm_payload_size;	/* bytes, <= HV_MESSAGE_PAYLOAD_MAX */
	uint8_t pm_payload[HV_MESSAGE_PAYLOAD_MAX];
};
HV_ASSERT_SIZE(struct hv_post_message_input, 256);
HV_ASSERT_OFFSET(struct hv_post_message_input, pm_message_type, 8);
HV_ASSERT_OFFSET(struct hv_post_message_input, pm_payload_size, 12);
HV_ASSERT_OFFSET(struct hv_post_message_input, pm_payload, 16);

/* ---- 1.8 HvSignalEvent input (8 bytes) -------------------------------- */

/*
 * Input of HV_CALL_SIGNAL_EVENT. As a fast call: RDX = connection id
 * | flag_number << 32.
 */
struct hv_signal_event_input {
	uint32_t se_connection_id;	/* event connection id */
	uint16_t se_flag_number;	/* relative to port base; VMBus: 0 */
	uint16_t se_rsvdz;		/* 0 */
};
HV_ASSERT_SIZE(struct hv_signal_event_input, 8);
HV_ASSERT_OFFSET(struct hv_signal_event_input, se_flag_number, 4);
HV_ASSERT_OFFSET(struct hv_signal_event_input, se_rsvdz, 6);

/* ---- 1.11 HV_MESSAGE and the SynIC message page ----------------------- */

#define HV_MESSAGE_TYPE_NONE		0x00000000u	/* slot empty */
#define HV_MESSAGE_TYPE_HYPERVISOR	0x80000000u	/* bit 31: hypervisor-generated */
#define HV_MESSAGE_TYPE_TIMER_EXPIRED	0x80000010u

/* One 256-byte SynIC message slot (16-byte aligned in the SIM page). */
struct hv_message {
	uint32_t hm_type;		/* HV_MESSAGE_TYPE_*, VMBUS_MESSAGE_TYPE */
	uint8_t hm_payload_size;	/* bytes valid in hm_payload, <= 240 */
	uint8_t hm_flags;
#define HV_MESSAGE_FLAG_PENDING		0x01u	/* MessagePending; 7:1 reserved */
	uint16_t hm_rsvd;
	uint64_t hm_sender;		/* port id (23:0) / partition id; ignored */
	uint8_t hm_payload[HV_MESSAGE_PAYLOAD_MAX];
};
HV_ASSERT_SIZE(struct hv_message, 256);
HV_ASSERT_OFFSET(struct hv_message, hm_payload_size, 4);
HV_ASSERT_OFFSET(struct hv_message, hm_flags, 5);
HV_ASSERT_OFFSET(struct hv_message, hm_rsvd, 6);
HV_ASSERT_OFFSET(struct hv_message, hm_sender, 8);
HV_ASSERT_OFFSET(struct hv_message, hm_payload, 16);

/* SIM page: slot n belongs to SINT n (VMBus slot at offset 0x200). */
struct hv_message_page {
	struct hv_message mp_slot[HV_SYNIC_SINT_COUNT];
};
HV_ASSERT_SIZE(struct hv_message_page, 4096);
HV_ASSERT_OFFSET(struct hv_message_page, mp_slot[2], 0x200);

/* ---- 1.13 SynIC event-flags page -------------------------------------- */

#define HV_EVENT_FLAGS_BYTES		256u	/* per SINT */
#define HV_EVENT_FLAGS_COUNT		(HV_EVENT_FLAGS_BYTES * 8u) /* 2048 */
/* Flag k = byte k/8, bit k%8 (bit 0 = LSB): endian-neutral as bytes. */
#define HV_EVENT_FLAG_BYTE(k)		((k) / 8u)
#define HV_EVENT_FLAG_BIT(k)		((uint8_t)(1u << ((k) % 8u)))

struct hv_event_flags {
	uint8_t ef_flags[HV_EVENT_FLAGS_BYTES];
};
HV_ASSERT_SIZE(struct hv_event_flags, 256);

/* SIEF page: area n belongs to SINT n (VMBus area at 0x200-0x2FF). */
struct hv_event_flags_page {
	struct hv_event_flags efp_sint[HV_SYNIC_SINT_COUNT];
};
HV_ASSERT_SIZE(struct hv_event_flags_page, 4096);
HV_ASSERT_OFFSET(struct hv_event_flags_page, efp_sint[2], 0x200);

/* ---- 1.14 VMBus constants at the SynIC level -------------------------- */

#define VMBUS_MESSAGE_SINT		2u	/* messages and channel events */
#define VMBUS_MESSAGE_TYPE		1u	/* PostMessage type / slot type */
#define VMBUS_MESSAGE_CONNECTION_ID	1u	/* < 5.0, or as host returns */
#define VMBUS_MESSAGE_CONNECTION_ID_4	4u	/* InitiateContact for >= 5.0 */
#define VMBUS_EVENT_CONNECTION_ID	2u	/* shared event connection */
#define VMBUS_MONITOR_CONNECTION_ID	3u	/* single source: LNX */
#define VMBUS_MESSAGE_PORT_ID		1u	/* host-internal */
#define VMBUS_EVENT_PORT_ID		2u	/* host-internal */
#define VMBUS_MONITOR_PORT_ID		3u	/* host-internal */
/* OVMM per-channel connection id: relid | SINT << 12 | VTL << 16 (opaque). */

/* ---- 1.15 Monitor pages (MNF) ------------------------------------------ */

#define HV_MONITOR_GROUPS		4u
#define HV_MONITOR_BITS_PER_GROUP	32u
#define VMBUS_MONITOR_ID_MAX		128u	/* ids 0..127 */
#define VMBUS_MONITOR_ID_NONE		0xFFu	/* OVMM when not allocated */
#define VMBUS_MONITOR_GROUP(m)		((m) / HV_MONITOR_BITS_PER_GROUP)
#define VMBUS_MONITOR_BIT(m)		((uint32_t)1 << ((m) % HV_MONITOR_BITS_PER_GROUP))

struct hv_monitor_trigger_group {
	uint32_t tg_pending;		/* bit per monitor id in the group */
	uint32_t tg_armed;
};
HV_ASSERT_SIZE(struct hv_monitor_trigger_group, 8);

struct hv_monitor_parameter {
	uint32_t mpa_connection_id;
	uint16_t mpa_flag_number;
	uint16_t mpa_rsvd;
};
HV_ASSERT_SIZE(struct hv_monitor_parameter, 8);

/*
 * Monitor page (4096 bytes). monitor_page1 = parent->child (unused by
 * guests), monitor_page2 = child->parent: the guest sets
 * mn_trigger_group[m/32].tg_pending bit m%32 to signal monitor id m.
 */
struct hv_monitor_page {
	uint32_t mn_trigger_state;	/* 3:0 GroupEnable */
	uint32_t mn_rsvd1;
	struct hv_monitor_trigger_group mn_trigger_group[HV_MONITOR_GROUPS];
	uint8_t mn_rsvd2[24];
	uint32_t mn_next_check_time[HV_MONITOR_GROUPS][HV_MONITOR_BITS_PER_GROUP]; /* s32 */
	uint16_t mn_latency[HV_MONITOR_GROUPS][HV_MONITOR_BITS_PER_GROUP]; /* 100 ns */
	uint8_t mn_rsvd3[256];
	struct hv_monitor_parameter mn_parameter[HV_MONITOR_GROUPS][HV_MONITOR_BITS_PER_GROUP];
	uint8_t mn_rsvd4[1984];
};
HV_ASSERT_SIZE(struct hv_monitor_page, 4096);
HV_ASSERT_OFFSET(struct hv_monitor_page, mn_trigger_group, 0x008);
HV_ASSERT_OFFSET(struct hv_monitor_page, mn_rsvd2, 0x028);
HV_ASSERT_OFFSET(struct hv_monitor_page, mn_next_check_time, 0x040);
HV_ASSERT_OFFSET(struct hv_monitor_page, mn_latency, 0x240);
HV_ASSERT_OFFSET(struct hv_monitor_page, mn_rsvd3, 0x340);
HV_ASSERT_OFFSET(struct hv_monitor_page, mn_parameter, 0x440);
HV_ASSERT_OFFSET(struct hv_monitor_page, mn_rsvd4, 0x840);

/* ---- 1.16 Pre-Win8 interrupt page (versions 0.13 and 1.1) ------------- */

#define HV_INTERRUPT_PAGE_HALF		2048u
/*
 * Bit index = relid, bit k = byte k/8, bit k%8. The first half is host->
 * guest ("receive"), the second guest->host ("send").
 */
struct hv_interrupt_page {
	uint8_t ip_recv[HV_INTERRUPT_PAGE_HALF];	/* host -> guest */
	uint8_t ip_send[HV_INTERRUPT_PAGE_HALF];	/* guest -> host */
};
HV_ASSERT_SIZE(struct hv_interrupt_page, 4096);
HV_ASSERT_OFFSET(struct hv_interrupt_page, ip_send, 0x800);

#endif /* HV_TLFS_H */
