/*
 * hv/hvsim_abi.h - the partition ABI between the host emulator (hvsim) and a
 * guest process, version 1 (../shared/DESIGN.md, "The partition ABI").
 *
 * This page is pinned: another host or guest written from DESIGN.md alone
 * must interoperate. Every datagram is little-endian and travels over a Unix
 * SOCK_SEQPACKET socket; at most HVSIM_ABI_MAX_DGRAM bytes. The guest speaks
 * first (HELLO), one request at a time; the host answers each request exactly
 * once, in order, and never sends anything unsolicited.
 */
#ifndef HV_HVSIM_ABI_H
#define HV_HVSIM_ABI_H

#include "hv/wire.h"

#define HVSIM_ABI_VERSION     1u
#define HVSIM_ABI_MAGIC       0x4D535648u /* bytes "HVSM" */
#define HVSIM_ABI_MAX_DGRAM   8192u
#define HVSIM_ABI_MAX_NAME    64u          /* VM name in HELLO, UTF-8 bytes */
#define HVSIM_ABI_MAX_HC_INPUT 4096u       /* HYPERCALL input_len */
#define HVSIM_ABI_MAX_VCPUS   250u
#define HVSIM_ABI_RAM_ALIGN   (2u * 1024 * 1024) /* ram_bytes multiple */
#define HVSIM_ABI_SIGNAL_PAGE_BYTES 4096u
#define HVSIM_ABI_SIGNAL_MAX_CONNID 32768u /* signal page covers ids below */

/* Environment variables a guest program reads. */
#define HVSIM_ENV_FD     "HVSIM_FD"
#define HVSIM_ENV_SOCKET "HVSIM_SOCKET"

/* Datagram types. Replies are request | HVSIM_ABI_REPLY. */
#define HVSIM_ABI_HELLO     0x0001u /* REQ */
#define HVSIM_ABI_WRMSR     0x0003u /* REQ */
#define HVSIM_ABI_RDMSR     0x0004u /* REQ */
#define HVSIM_ABI_HYPERCALL 0x0005u /* REQ */
#define HVSIM_ABI_RESET     0x0006u /* REQ */
#define HVSIM_ABI_REPLY     0x8000u
#define HVSIM_ABI_WELCOME   (HVSIM_ABI_HELLO | HVSIM_ABI_REPLY) /* RESP */

/* RESET kinds */
#define HVSIM_RESET_POWER_OFF 0u
#define HVSIM_RESET_REBOOT    1u

/* Reply results: 0 or a negative Linux errno. */
#define HVSIM_ABI_EINVAL     (-22) /* unknown MSR or bad value */
#define HVSIM_ABI_ERANGE     (-34) /* bad vp */
#define HVSIM_ABI_EPROTO     (-71) /* malformed request, unknown type */
#define HVSIM_ABI_EOPNOTSUPP (-95) /* unsupported abi_version */

/* Every datagram starts with this header. */
struct hvsim_abi_hdr {
	uint32_t ah_magic;      /* HVSIM_ABI_MAGIC */
	uint16_t ah_type;
	uint16_t ah_flags;      /* 0 */
	uint64_t ah_seq;        /* chosen by the guest, echoed in the reply */
};
HV_ASSERT_SIZE(struct hvsim_abi_hdr, 16);
HV_ASSERT_OFFSET(struct hvsim_abi_hdr, ah_type, 4);
HV_ASSERT_OFFSET(struct hvsim_abi_hdr, ah_seq, 8);

/* HVSIM_ABI_HELLO */ /* REQ */
struct hvsim_abi_hello {
	struct hvsim_abi_hdr ahh_hdr;
	uint32_t ahh_abi_version;  /* HVSIM_ABI_VERSION */
	uint32_t ahh_name_len;     /* 0 with HVSIM_FD */
	uint8_t  ahh_name[HVSIM_ABI_MAX_NAME]; /* only name_len bytes sent */
};
HV_ASSERT_OFFSET(struct hvsim_abi_hello, ahh_abi_version, 16);
HV_ASSERT_OFFSET(struct hvsim_abi_hello, ahh_name, 24);
#define HVSIM_ABI_HELLO_MIN_LEN 24u

/* HVSIM_ABI_WRMSR */ /* REQ */
struct hvsim_abi_wrmsr {
	struct hvsim_abi_hdr awm_hdr;
	uint32_t awm_vp;
	uint32_t awm_msr;
	uint64_t awm_value;
};
HV_ASSERT_SIZE(struct hvsim_abi_wrmsr, 32);
HV_ASSERT_OFFSET(struct hvsim_abi_wrmsr, awm_value, 24);

/* HVSIM_ABI_RDMSR */ /* REQ */
struct hvsim_abi_rdmsr {
	struct hvsim_abi_hdr arm_hdr;
	uint32_t arm_vp;
	uint32_t arm_msr;
};
HV_ASSERT_SIZE(struct hvsim_abi_rdmsr, 24);

/*
 * HVSIM_ABI_HYPERCALL (REQ).
 * Followed by input_len bytes: the input page contents, or for a fast call
 * (control bit 16) the input registers RDX then R8 (16 bytes).
 */
struct hvsim_abi_hypercall {
	struct hvsim_abi_hdr ahc_hdr;
	uint32_t ahc_vp;
	uint32_t ahc_input_len;    /* at most HVSIM_ABI_MAX_HC_INPUT */
	uint64_t ahc_control;      /* TLFS hypercall input value */
	/* uint8_t input[input_len] follows */
};
HV_ASSERT_SIZE(struct hvsim_abi_hypercall, 32);
HV_ASSERT_OFFSET(struct hvsim_abi_hypercall, ahc_control, 24);

/* HVSIM_ABI_RESET */ /* REQ */
struct hvsim_abi_reset {
	struct hvsim_abi_hdr ars_hdr;
	uint32_t ars_kind;         /* HVSIM_RESET_* */
	uint32_t ars_pad;          /* NOT sent: the datagram is HVSIM_ABI_RESET_LEN */
};
HV_ASSERT_SIZE(struct hvsim_abi_reset, 24);
HV_ASSERT_OFFSET(struct hvsim_abi_reset, ars_kind, 16);

/*
 * Exact datagram lengths of the fixed-size requests and replies: a sender
 * sends exactly these (HELLO: HVSIM_ABI_HELLO_MIN_LEN + name_len; HYPERCALL
 * and its reply: the fixed part + input/output bytes).
 */
#define HVSIM_ABI_WRMSR_LEN     32u
#define HVSIM_ABI_RDMSR_LEN     24u
#define HVSIM_ABI_HYPERCALL_LEN 32u /* + input_len */
#define HVSIM_ABI_RESET_LEN     20u
#define HVSIM_ABI_ERROR_REPLY_LEN 24u
#define HVSIM_ABI_WELCOME_LEN   48u
#define HVSIM_ABI_MSR_REPLY_LEN 32u
#define HVSIM_ABI_HC_REPLY_LEN  40u /* + output_len */
#define HVSIM_ABI_RESET_REPLY_LEN 24u

/* Every reply body starts with result + reserved; an error reply ends there. */
struct hvsim_abi_reply {
	struct hvsim_abi_hdr ar_hdr;
	int32_t  ar_result;        /* 0 or negative Linux errno */
	uint32_t ar_reserved;
};
HV_ASSERT_SIZE(struct hvsim_abi_reply, 24);

/*
 * HVSIM_ABI_WELCOME (RESP).
 * One SCM_RIGHTS control message carries, in order: the guest-RAM memfd, the
 * signal-page memfd, the signal eventfd, then one doorbell eventfd per vCPU
 * (vp 0 first). A wrong fd_count or MSG_CTRUNC means disconnect.
 */
struct hvsim_abi_welcome {
	struct hvsim_abi_reply aw_reply;
	uint32_t aw_abi_version;
	uint32_t aw_vcpu_count;    /* 1..250 */
	uint64_t aw_ram_bytes;     /* multiple of 2 MiB */
	uint32_t aw_fd_count;      /* 3 + vcpu_count */
	uint32_t aw_reserved;
};
HV_ASSERT_SIZE(struct hvsim_abi_welcome, 48);
HV_ASSERT_OFFSET(struct hvsim_abi_welcome, aw_vcpu_count, 28);
HV_ASSERT_OFFSET(struct hvsim_abi_welcome, aw_ram_bytes, 32);
HV_ASSERT_OFFSET(struct hvsim_abi_welcome, aw_fd_count, 40);
#define HVSIM_ABI_WELCOME_FIXED_FDS 3u

/* MSR replies (0x8003, 0x8004): RDMSR's value; WRMSR echoes what was stored. */
struct hvsim_abi_msr_reply {
	struct hvsim_abi_reply amr_reply;
	uint64_t amr_value;
};
HV_ASSERT_SIZE(struct hvsim_abi_msr_reply, 32);

/* HYPERCALL reply (0x8005), followed by output_len output bytes. */
struct hvsim_abi_hypercall_reply {
	struct hvsim_abi_reply ahr_reply;
	uint64_t ahr_result;       /* TLFS result: status 0-15, reps 32-43 */
	uint32_t ahr_output_len;
	uint32_t ahr_reserved;
};
HV_ASSERT_SIZE(struct hvsim_abi_hypercall_reply, 40);
HV_ASSERT_OFFSET(struct hvsim_abi_hypercall_reply, ahr_result, 24);
HV_ASSERT_OFFSET(struct hvsim_abi_hypercall_reply, ahr_output_len, 32);

#endif /* HV_HVSIM_ABI_H */
