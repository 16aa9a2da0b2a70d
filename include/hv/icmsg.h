/*
 * hv/icmsg.h - Integration Component (IC) messages: framing, version
 * negotiation, heartbeat, shutdown, time sync, KVP.
 *
 * Source of every fact: shared/spec/vmbus-devices.md section 4.
 * All multi-byte fields hold the little-endian wire representation; read
 * and write them with hv_le16()/hv_le32()/hv_le64() from hv/wire.h.
 *
 * Every IC message is a VMBus inband packet whose payload is the 8-byte
 * pipe header, the 20-byte IC message header and the service body; offsets
 * below are from the payload start. The host sends requests; the guest
 * echoes the same buffer back (inband, same VMBus transaction id) with
 * edited flags/status/body.
 *
 * Message structs holding a u64 at offset 28 (heartbeat, time sync) are
 * packed: offset 28 is really unaligned for a u64 on the wire. Take no
 * address of their members; read them by value.
 *
 * IC class GUIDs live in hv/guid.h.
 *
 * Freestanding: only hv/wire.h.
 */
#ifndef HV_ICMSG_H
#define HV_ICMSG_H

#include "hv/wire.h"

/* ---- 4.1 Pipe header + IC message header ---- */

/* VMBus pipe (message-mode) header. */
struct ic_pipe_hdr {
	uint32_t iph_flags;		/* IC_PIPE_FLAG_*: guests echo the value */
	uint32_t iph_msgsize;		/* bytes following this header */
};
HV_ASSERT_SIZE(struct ic_pipe_hdr, 8);
HV_ASSERT_OFFSET(struct ic_pipe_hdr, iph_msgsize, 4);

#define IC_PIPE_FLAG_DATA		1u	/* V writes 1 */
#define IC_PIPE_FLAG_PARTIAL		2u	/* V: partially read */
#define IC_PIPE_FLAG_SETUP_GPA_DIRECT	3u	/* V */
#define IC_PIPE_FLAG_TEARDOWN_GPA_DIRECT 4u	/* V */

/* Version as it appears on the wire: major at the low address. */
struct ic_version {
	uint16_t iv_major;
	uint16_t iv_minor;
};
HV_ASSERT_SIZE(struct ic_version, 4);
HV_ASSERT_OFFSET(struct ic_version, iv_minor, 2);

/* Common 28-byte header of every IC message (pipe + IC header). */
struct ic_msg_hdr {
	struct ic_pipe_hdr ic_pipe;
	struct ic_version ic_verframe;	/* framework version (negotiated) */
	uint16_t ic_msgtype;		/* IC_MSGTYPE_* */
	struct ic_version ic_vermsg;	/* service version (negotiated) */
	uint16_t ic_msgsize;		/* bytes of body after this header */
	uint32_t ic_status;		/* IC_STATUS_*; set by the responder */
	uint8_t  ic_transaction_id;	/* V sends and requires 0; echo */
	uint8_t  ic_flags;		/* IC_FLAG_* */
	uint8_t  ic_rsvd[2];		/* 0 */
};
HV_ASSERT_SIZE(struct ic_msg_hdr, 28);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_verframe, 8);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_verframe.iv_minor, 10);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_msgtype, 12);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_vermsg, 14);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_vermsg.iv_minor, 16);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_msgsize, 18);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_status, 20);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_transaction_id, 24);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_flags, 25);
HV_ASSERT_OFFSET(struct ic_msg_hdr, ic_rsvd, 26);

#define IC_HDR_SIZE			28u
#define IC_PIPE_HDR_SIZE		8u

/* ic_flags */
#define IC_FLAG_TRANSACTION		0x01u
#define IC_FLAG_REQUEST			0x02u
#define IC_FLAG_RESPONSE		0x04u
#define IC_FLAGS_HOST_REQUEST		(IC_FLAG_TRANSACTION | IC_FLAG_REQUEST)	 /* 0x3 */
#define IC_FLAGS_GUEST_RESPONSE		(IC_FLAG_TRANSACTION | IC_FLAG_RESPONSE) /* 0x5 */

/* ---- 4.2 Message types ---- */

#define IC_MSGTYPE_NEGOTIATE		0u
#define IC_MSGTYPE_HEARTBEAT		1u
#define IC_MSGTYPE_KVPEXCHANGE		2u
#define IC_MSGTYPE_SHUTDOWN		3u
#define IC_MSGTYPE_TIMESYNC		4u
#define IC_MSGTYPE_VSS			5u
#define IC_MSGTYPE_RDV			6u	/* V */
/*
 * Type 7 is a conflict: L calls it FCOPY, V GUEST_INTERFACE. Neither is
 * one of our services; both names are given for the same value.
 */
#define IC_MSGTYPE_FCOPY		7u	/* L */
#define IC_MSGTYPE_GUEST_INTERFACE	7u	/* V */
#define IC_MSGTYPE_VM_SESSION		8u	/* V */

/* ---- 4.3 Status values (HRESULT style) ---- */

#define IC_STATUS_S_OK			0x00000000u
#define IC_STATUS_E_FAIL		0x80004005u
#define IC_STATUS_S_CONT		0x80070103u	/* = NO_MORE_ITEMS */
#define IC_STATUS_NO_MORE_ITEMS		IC_STATUS_S_CONT
#define IC_STATUS_NOT_SUPPORTED		0x80070032u
#define IC_STATUS_GUID_NOTFOUND		0x80041002u	/* = NOT_FOUND */
#define IC_STATUS_NOT_FOUND		IC_STATUS_GUID_NOTFOUND
#define IC_STATUS_INVALIDARG		0x80070057u	/* L */
#define IC_STATUS_MACHINE_LOCKED	0x800704F7u	/* L */
#define IC_STATUS_DEVICE_NOT_CONNECTED	0x8007048Fu	/* L */
#define IC_STATUS_ALREADY_EXISTS	0x80070050u	/* L */
#define IC_STATUS_DISK_FULL		0x80070070u	/* L */

/* ---- 4.4 Version negotiation (IC_MSGTYPE_NEGOTIATE) ---- */

/*
 * IC_MSGTYPE_NEGOTIATE - REQ H->G with the host's full lists (first message
 * on the channel, and again at any time); RESP G->H rewrites the same buffer
 * with counts 1 and 1 (chosen framework, chosen service version),
 * icmsgsize 16, flags 0x5; counts 0 and 0 when nothing matches.
 * Variable length: ICN_VERSIONS = framework versions then service versions.
 */
struct ic_negotiate {
	struct ic_msg_hdr icn_hdr;
	uint16_t icn_icframe_vercnt;	/* framework versions listed */
	uint16_t icn_icmsg_vercnt;	/* service versions listed */
	uint32_t icn_rsvd;		/* 0 */
	struct ic_version icn_versions[]; /* framework..., then service... */
};
HV_ASSERT_SIZE(struct ic_negotiate, 36);
HV_ASSERT_OFFSET(struct ic_negotiate, icn_icframe_vercnt, 28);
HV_ASSERT_OFFSET(struct ic_negotiate, icn_icmsg_vercnt, 30);
HV_ASSERT_OFFSET(struct ic_negotiate, icn_rsvd, 32);
HV_ASSERT_OFFSET(struct ic_negotiate, icn_versions, 36);

#define IC_NEGOTIATE_FIXED_SIZE		36u
#define IC_NEGOTIATE_RESP_MSGSIZE	16u	/* body of a 1+1 reply */
#define IC_NEGOTIATE_RESP_SIZE		(IC_NEGOTIATE_FIXED_SIZE + 2u * 4u) /* 44 */
#define IC_NEGOTIATE_MAX_VERCNT		100u	/* L caps each count */
/* Size of a negotiate message listing nframe + nmsg versions. */
#define IC_NEGOTIATE_SIZE(nframe, nmsg) \
	(IC_NEGOTIATE_FIXED_SIZE + 4u * ((uint32_t)(nframe) + (uint32_t)(nmsg)))
_Static_assert(IC_NEGOTIATE_RESP_SIZE == IC_HDR_SIZE + IC_NEGOTIATE_RESP_MSGSIZE,
	       "negotiate reply is header + 16");

/* Version values (major, minor). */
#define IC_VERSION(maj, min)	{ (uint16_t)(maj), (uint16_t)(min) }

/*
 * Advertised version lists (spec 4.4). The spec records what the Linux
 * guest prefers and what the OpenVMM host offers; what real Windows Server
 * hosts offer is not recorded there, so no such list is given.
 */
/* Framework: L guest prefers 3.0, 1.0; V host offers 1.0, 3.0. */
#define IC_FRAMEWORK_GUEST_VERSIONS	{ IC_VERSION(3, 0), IC_VERSION(1, 0) }
#define IC_FRAMEWORK_GUEST_VERCNT	2
#define IC_FRAMEWORK_HOST_VERSIONS	{ IC_VERSION(1, 0), IC_VERSION(3, 0) }
#define IC_FRAMEWORK_HOST_VERCNT	2
/* Heartbeat: L guest 3.0, 1.0; F max 3.0. No V host list. */
#define IC_HEARTBEAT_GUEST_VERSIONS	{ IC_VERSION(3, 0), IC_VERSION(1, 0) }
#define IC_HEARTBEAT_GUEST_VERCNT	2
/* Shutdown: L guest 3.2, 3.1, 3.0, 1.0; V host 1.0, 3.0, 3.1, 3.2. */
#define IC_SHUTDOWN_GUEST_VERSIONS                                          \
	{ IC_VERSION(3, 2), IC_VERSION(3, 1), IC_VERSION(3, 0), IC_VERSION(1, 0) }
#define IC_SHUTDOWN_GUEST_VERCNT	4
#define IC_SHUTDOWN_HOST_VERSIONS                                           \
	{ IC_VERSION(1, 0), IC_VERSION(3, 0), IC_VERSION(3, 1), IC_VERSION(3, 2) }
#define IC_SHUTDOWN_HOST_VERCNT		4
/* Time sync: L guest 4.0, 3.0, 1.0; V host 4.0 only. */
#define IC_TIMESYNC_GUEST_VERSIONS                                          \
	{ IC_VERSION(4, 0), IC_VERSION(3, 0), IC_VERSION(1, 0) }
#define IC_TIMESYNC_GUEST_VERCNT	3
#define IC_TIMESYNC_HOST_VERSIONS	{ IC_VERSION(4, 0) }
#define IC_TIMESYNC_HOST_VERCNT		1
/* KVP: L guest 4.0, 3.0, 1.0; V host 3.0, 4.0, 5.0. */
#define IC_KVP_GUEST_VERSIONS                                               \
	{ IC_VERSION(4, 0), IC_VERSION(3, 0), IC_VERSION(1, 0) }
#define IC_KVP_GUEST_VERCNT		3
#define IC_KVP_HOST_VERSIONS                                                \
	{ IC_VERSION(3, 0), IC_VERSION(4, 0), IC_VERSION(5, 0) }
#define IC_KVP_HOST_VERCNT		3

/* ---- 4.5 Heartbeat (IC_MSGTYPE_HEARTBEAT) ---- */

/*
 * IC_MSGTYPE_HEARTBEAT - REQ H->G (L: every 2 s); RESP G->H with
 * seq_num + 1 and status 0.
 * Conflict on what follows seq_num: L/F reserve u32[8] (body 40 bytes),
 * V has application_state u32 + reserved u32 (body 16). The spec makes no
 * recommendation; this struct is the L/F 40-byte body whose first reserved
 * word is V's application_state, so both readings hold. A reader requires
 * only IC_HEARTBEAT_MINLEN (the host may send fewer bytes).
 */
struct ic_heartbeat {
	struct ic_msg_hdr ihb_hdr;
	uint64_t ihb_seq_num;		/* host's sequence number */
	uint32_t ihb_app_state;		/* V: IC_HEARTBEAT_APP_*; L/F reserved */
	uint32_t ihb_rsvd[7];		/* 0 */
} __attribute__((packed));
HV_ASSERT_SIZE(struct ic_heartbeat, 68);
HV_ASSERT_OFFSET(struct ic_heartbeat, ihb_seq_num, 28);
HV_ASSERT_OFFSET(struct ic_heartbeat, ihb_app_state, 36);
HV_ASSERT_OFFSET(struct ic_heartbeat, ihb_rsvd, 40);

#define IC_HEARTBEAT_MINLEN		36u	/* header + seq_num */
#define IC_HEARTBEAT_SIZE_V		44u	/* V: 16-byte body */
#define IC_HEARTBEAT_APP_UNKNOWN	0u
#define IC_HEARTBEAT_APP_HEALTHY	1u
#define IC_HEARTBEAT_APP_CRITICAL	2u
#define IC_HEARTBEAT_APP_STOPPED	3u
#define IC_HEARTBEAT_PERIOD_S		2u	/* L: host period, seconds */

/* ---- 4.6 Shutdown (IC_MSGTYPE_SHUTDOWN) ---- */

#define IC_SHUTDOWN_MSG_SIZE		2048u	/* display_message, bytes */

/*
 * IC_MSGTYPE_SHUTDOWN - REQ H->G; RESP G->H (S_OK on acceptance, sent
 * before acting; E_FAIL otherwise). Body 2060 bytes, packet 2088.
 */
struct ic_shutdown {
	struct ic_msg_hdr isd_hdr;
	uint32_t isd_reason_code;	/* Windows shutdown reason */
	uint32_t isd_timeout_seconds;	/* seconds; V sends 0 */
	uint32_t isd_flags;		/* IC_SHUTDOWN_FLAG_* */
	uint8_t  isd_display_message[IC_SHUTDOWN_MSG_SIZE]; /* text, 0-padded */
};
HV_ASSERT_SIZE(struct ic_shutdown, 2088);
HV_ASSERT_OFFSET(struct ic_shutdown, isd_reason_code, 28);
HV_ASSERT_OFFSET(struct ic_shutdown, isd_timeout_seconds, 32);
HV_ASSERT_OFFSET(struct ic_shutdown, isd_flags, 36);
HV_ASSERT_OFFSET(struct ic_shutdown, isd_display_message, 40);

#define IC_SHUTDOWN_MINLEN		40u	/* F: everything before the text */
#define IC_SHUTDOWN_FLAG_FORCE		0x1u
#define IC_SHUTDOWN_FLAG_RESTART	0x2u
#define IC_SHUTDOWN_FLAG_HIBERNATE	0x4u
/* L: 0/1 power off, 2/3 reboot, 4/5 hibernate, other -> E_FAIL. */
#define IC_SHUTDOWN_REASON_PLANNED	0x80000000u	/* what V sends */

/* ---- 4.7 Time sync (IC_MSGTYPE_TIMESYNC) ---- */

/* 1601-01-01 -> 1970-01-01 in 100-ns units. */
#define IC_TIMESYNC_EPOCH_DELTA		116444736000000000ull
#define IC_TIMESYNC_TICKS_PER_SEC	10000000ull	/* 100-ns units */

#define IC_TIMESYNC_FLAG_PROBE		0x0u	/* L: no flag */
#define IC_TIMESYNC_FLAG_SYNC		0x1u	/* set the clock now */
#define IC_TIMESYNC_FLAG_SAMPLE		0x2u	/* hint only */
#define IC_TIMESYNC_SAMPLE_PERIOD_S	5u	/* V, seconds */

/*
 * IC_MSGTYPE_TIMESYNC, service version < 4.0 - REQ H->G; RESP G->H echo.
 * L's struct ends at byte 53; V adds 3 reserved bytes (56).
 */
struct ic_timesync {
	struct ic_msg_hdr its_hdr;
	uint64_t its_parent_time;	/* host UTC, 100 ns since 1601 */
	uint64_t its_child_time;	/* unused */
	uint64_t its_round_trip_time;	/* 100 ns */
	uint8_t  its_flags;		/* IC_TIMESYNC_FLAG_* */
	uint8_t  its_rsvd[3];		/* V only */
} __attribute__((packed));
HV_ASSERT_SIZE(struct ic_timesync, 56);
HV_ASSERT_OFFSET(struct ic_timesync, its_parent_time, 28);
HV_ASSERT_OFFSET(struct ic_timesync, its_child_time, 36);
HV_ASSERT_OFFSET(struct ic_timesync, its_round_trip_time, 44);
HV_ASSERT_OFFSET(struct ic_timesync, its_flags, 52);

#define IC_TIMESYNC_MINLEN		53u	/* through flags (L) */

/*
 * IC_MSGTYPE_TIMESYNC, service version 4.0 - REQ H->G; RESP G->H echo.
 * The guest corrects parent_time by (reference counter now - vm_reference_time).
 * Conflict on the trailing reserved size (L 3, V 5). We follow V, the host
 * side: a guest echoes the host's buffer, so the host's length is what goes
 * on the wire. Readers require only IC_TIMESYNC4_MINLEN (through stratum).
 */
struct ic_timesync4 {
	struct ic_msg_hdr its4_hdr;
	uint64_t its4_parent_time;	/* host UTC, 100 ns since 1601 */
	uint64_t its4_vm_reference_time; /* guest reference counter, 100 ns */
	uint8_t  its4_flags;		/* IC_TIMESYNC_FLAG_* */
	uint8_t  its4_leap_indicator;	/* NTP leap indicator (V: 0) */
	uint8_t  its4_stratum;		/* NTP stratum (V: 0) */
	uint8_t  its4_rsvd[5];		/* V: 5; L: 3 */
} __attribute__((packed));
HV_ASSERT_SIZE(struct ic_timesync4, 52);
HV_ASSERT_OFFSET(struct ic_timesync4, its4_parent_time, 28);
HV_ASSERT_OFFSET(struct ic_timesync4, its4_vm_reference_time, 36);
HV_ASSERT_OFFSET(struct ic_timesync4, its4_flags, 44);
HV_ASSERT_OFFSET(struct ic_timesync4, its4_leap_indicator, 45);
HV_ASSERT_OFFSET(struct ic_timesync4, its4_stratum, 46);
HV_ASSERT_OFFSET(struct ic_timesync4, its4_rsvd, 47);

#define IC_TIMESYNC4_MINLEN		47u	/* through stratum */
#define IC_TIMESYNC4_SIZE_L		50u	/* L: 3 reserved bytes */

/* ---- 4.8 KVP exchange (IC_MSGTYPE_KVPEXCHANGE) ---- */

#define HV_KVP_EXCHANGE_MAX_KEY_SIZE	512u	/* bytes: 256 UTF-16 units */
#define HV_KVP_EXCHANGE_MAX_VALUE_SIZE	2048u	/* bytes */
#define HV_KVP_MAX_IC_MSG_SIZE_V	13312u	/* V max IC message, bytes */
#define HV_KVP_RECV_BUF_SIZE		(16u * 1024)	/* L/F receive buffer */

/* kvh_operation */
#define KVP_OP_GET		0u
#define KVP_OP_SET		1u
#define KVP_OP_DELETE		2u
#define KVP_OP_ENUMERATE	3u
#define KVP_OP_GET_IP_INFO	4u
#define KVP_OP_SET_IP_INFO	5u

/* kvh_pool */
#define KVP_POOL_EXTERNAL	0u
#define KVP_POOL_GUEST		1u
#define KVP_POOL_AUTO		2u
#define KVP_POOL_AUTO_EXTERNAL	3u
#define KVP_POOL_AUTO_INTERNAL	4u	/* never on the wire (V) */

/*
 * kvr_value_type. Conflict on the u64 code: V uses 11 (REG_QWORD), L's
 * daemon header 8 (probably daemon-internal); the spec recommends 11 as the
 * wire value, so REG_U64 is 11.
 */
#define KVP_REG_SZ		1u	/* UTF-16 string */
#define KVP_REG_EXPAND_SZ	2u
#define KVP_REG_U32		4u	/* REG_DWORD */
#define KVP_REG_U64		11u	/* REG_QWORD (wire, V) */
#define KVP_REG_U64_L_DAEMON	8u	/* L daemon-internal; not a wire value */

/* KVP header at body start (28). The pad exists for operations 0-3 only. */
struct kvp_hdr {
	uint8_t  kvh_operation;		/* KVP_OP_* */
	uint8_t  kvh_pool;		/* KVP_POOL_* */
	uint16_t kvh_pad;		/* 0; operations 0-3 only */
};
HV_ASSERT_SIZE(struct kvp_hdr, 4);
HV_ASSERT_OFFSET(struct kvp_hdr, kvh_pool, 1);

/* Key/value record used by GET, SET and ENUMERATE: 2572 bytes. */
struct kvp_exchg_msg_value {
	uint32_t kvr_value_type;	/* KVP_REG_* */
	uint32_t kvr_key_size;		/* bytes incl. UTF-16 NUL */
	uint32_t kvr_value_size;	/* bytes (strings incl. NUL) */
	uint8_t  kvr_key[HV_KVP_EXCHANGE_MAX_KEY_SIZE];	/* UTF-16LE */
	uint8_t  kvr_value[HV_KVP_EXCHANGE_MAX_VALUE_SIZE]; /* UTF-16LE or LE int */
};
HV_ASSERT_SIZE(struct kvp_exchg_msg_value, 2572);
HV_ASSERT_OFFSET(struct kvp_exchg_msg_value, kvr_key_size, 4);
HV_ASSERT_OFFSET(struct kvp_exchg_msg_value, kvr_value_size, 8);
HV_ASSERT_OFFSET(struct kvp_exchg_msg_value, kvr_key, 12);
HV_ASSERT_OFFSET(struct kvp_exchg_msg_value, kvr_value, 524);

/* KVP_OP_GET / KVP_OP_SET - REQ H->G; RESP G->H echo (GET fills value). */
struct kvp_msg_get_set {
	struct ic_msg_hdr kgs_ichdr;
	struct kvp_hdr kgs_hdr;
	struct kvp_exchg_msg_value kgs_data;
};
HV_ASSERT_SIZE(struct kvp_msg_get_set, 2604);
HV_ASSERT_OFFSET(struct kvp_msg_get_set, kgs_hdr, 28);
HV_ASSERT_OFFSET(struct kvp_msg_get_set, kgs_data, 32);
HV_ASSERT_OFFSET(struct kvp_msg_get_set, kgs_data.kvr_key, 44);
HV_ASSERT_OFFSET(struct kvp_msg_get_set, kgs_data.kvr_value, 556);

/*
 * KVP_OP_ENUMERATE - REQ H->G (index 0, 1, 2...); RESP G->H with the record
 * for that index, or status IC_STATUS_NO_MORE_ITEMS at the end.
 */
struct kvp_msg_enumerate {
	struct ic_msg_hdr ken_ichdr;
	struct kvp_hdr ken_hdr;
	uint32_t ken_index;
	struct kvp_exchg_msg_value ken_data;
};
HV_ASSERT_SIZE(struct kvp_msg_enumerate, 2608);
HV_ASSERT_OFFSET(struct kvp_msg_enumerate, ken_index, 32);
HV_ASSERT_OFFSET(struct kvp_msg_enumerate, ken_data, 36);

/* KVP_OP_DELETE - REQ H->G; RESP G->H echo. */
struct kvp_msg_delete {
	struct ic_msg_hdr kdl_ichdr;
	struct kvp_hdr kdl_hdr;
	uint32_t kdl_key_size;		/* bytes incl. UTF-16 NUL */
	uint8_t  kdl_key[HV_KVP_EXCHANGE_MAX_KEY_SIZE]; /* UTF-16LE */
};
HV_ASSERT_SIZE(struct kvp_msg_delete, 548);
HV_ASSERT_OFFSET(struct kvp_msg_delete, kdl_key_size, 32);
HV_ASSERT_OFFSET(struct kvp_msg_delete, kdl_key, 36);

/* IP info string sizes, in UTF-16 units. */
#define KVP_MAX_ADAPTER_ID_UNITS	128u
#define KVP_MAX_IP_ADDR_UNITS		1024u
#define KVP_MAX_GATEWAY_UNITS		512u
#define KVP_ADDR_FAMILY_NONE		0u
#define KVP_ADDR_FAMILY_IPV4		1u
#define KVP_ADDR_FAMILY_IPV6		2u
#define KVP_ADDR_FAMILY_BOTH		3u	/* V */

/*
 * KVP_OP_GET_IP_INFO / KVP_OP_SET_IP_INFO, text form (service < 5) -
 * REQ H->G; RESP G->H. No pad after operation/pool: the adapter id starts
 * at 30. UTF-16LE strings.
 */
struct kvp_msg_ip_info {
	struct ic_msg_hdr kip_ichdr;
	uint8_t  kip_operation;		/* KVP_OP_GET_IP_INFO / _SET_IP_INFO */
	uint8_t  kip_pool;		/* KVP_POOL_* */
	uint16_t kip_adapter_id[KVP_MAX_ADAPTER_ID_UNITS];
	uint8_t  kip_addr_family;	/* KVP_ADDR_FAMILY_* */
	uint8_t  kip_dhcp_enabled;
	uint16_t kip_ip_addr[KVP_MAX_IP_ADDR_UNITS];
	uint16_t kip_sub_net[KVP_MAX_IP_ADDR_UNITS];
	uint16_t kip_gate_way[KVP_MAX_GATEWAY_UNITS];
	uint16_t kip_dns_addr[KVP_MAX_IP_ADDR_UNITS];
};
HV_ASSERT_SIZE(struct kvp_msg_ip_info, 7456);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_operation, 28);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_pool, 29);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_adapter_id, 30);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_addr_family, 286);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_dhcp_enabled, 287);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_ip_addr, 288);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_sub_net, 2336);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_gate_way, 4384);
HV_ASSERT_OFFSET(struct kvp_msg_ip_info, kip_dns_addr, 5408);

/*
 * The binary IP info form (service >= 5, V only) is described in the spec
 * only in outline (count fields are ambiguous); it is not defined here.
 */

/* Host auto-pool index -> key convention (L). */
#define KVP_AUTO_IDX_FQDN		0u	/* FullyQualifiedDomainName */
#define KVP_AUTO_IDX_IC_VERSION		1u	/* IntegrationServicesVersion */
#define KVP_AUTO_IDX_NET_IPV4		2u	/* NetworkAddressIPv4 */
#define KVP_AUTO_IDX_NET_IPV6		3u	/* NetworkAddressIPv6 */
#define KVP_AUTO_IDX_OS_BUILD		4u	/* OSBuildNumber */
#define KVP_AUTO_IDX_OS_NAME		5u	/* OSName */
#define KVP_AUTO_IDX_OS_MAJOR		6u	/* OSMajorVersion */
#define KVP_AUTO_IDX_OS_MINOR		7u	/* OSMinorVersion */
#define KVP_AUTO_IDX_OS_VERSION		8u	/* OSVersion */
#define KVP_AUTO_IDX_PROC_ARCH		9u	/* ProcessorArchitecture */

/* ---- 4.9 Ring sizes ---- */

#define IC_RING_SIZE			(4u * HV_PAGE_SIZE)	/* 16 KiB each way */
#define IC_MAX_MSG_SIZE			(16u * 1024)	/* L/F receive buffer */

#endif /* HV_ICMSG_H */
