/*
 * tests/storvsc/vsh.h - a small scripted VSTOR host double for the StorVSC
 * unit tests. It sits on the guest core's fake port (tests/guest/fakeport):
 * it wraps the port's hypercall and clock entries so that, like a host
 * thread between guest instructions, it reads the guest's StorVSC channel
 * rings, answers VSTOR (spec 3) from in-memory LUNs, and can be told to
 * misbehave (refuse versions, hold or drop completions, corrupt them,
 * inject SCSI errors, send unsolicited packets).
 *
 * Written for the tests from shared/spec/vmbus-devices.md section 3 and
 * hv/vstor.h alone; it shares no code with src/host (the real storvsp).
 */
#ifndef TESTS_STORVSC_VSH_H
#define TESTS_STORVSC_VSH_H

#include <stdbool.h>
#include <stdint.h>

#include "fakeport.h"
#include "hv/vstor.h"

#define VSH_MAX_LUNS	8
#define VSH_MAX_CHANS	16
#define VSH_QUEUE	2048
#define VSH_PKT_MAX	512

struct vsh_lun {
	bool     l_present;
	uint8_t  l_path, l_target, l_lun;
	uint8_t  l_type;		/* peripheral device type */
	uint32_t l_bs;
	uint64_t l_blocks;
	uint8_t *l_data;		/* l_blocks * l_bs */
	bool     l_wp;
	bool     l_thin;		/* RC16 LBPME */
	bool     l_lbpu;		/* VPD B2 */
	bool     l_no_rc16;		/* READ CAPACITY(16) unsupported */
	bool     l_no_report_luns;
	uint32_t l_vpd_max_xfer;	/* B0 max transfer (blocks) */
	uint32_t l_max_unmap;		/* B0 */
	uint32_t l_max_unmap_desc;	/* B0 */
};

/* Mutation applied to the next mut_count SRB completions. */
enum vsh_mut {
	VSH_MUT_NONE = 0,
	VSH_MUT_SHORT,		/* payload 8 bytes shorter than the version's */
	VSH_MUT_WRONG_OP,	/* operation EXECUTE_SRB instead of COMPLETE_IO */
	VSH_MUT_ID_UNKNOWN,	/* transaction id of a slot never used */
	VSH_MUT_ID_ZERO,	/* COMP with id 0 */
	VSH_MUT_DUP,		/* the completion twice */
	VSH_MUT_XFER_LONG,	/* data_transfer_length = requested + 4096 */
	VSH_MUT_SENSE_LONG,	/* sense_info_length = 200 */
	VSH_MUT_INBAND,		/* sent as DATA_INBAND instead of COMP */
	VSH_MUT_OVERSIZE,	/* a 2 KiB payload */
	VSH_MUT_DROP,		/* never answered */
	VSH_MUT_STATUS,		/* srb_status = mut_srb, scsi = mut_scsi */
};

/* An injected SCSI result for the next inj_count commands with opcode
 * inj_opcode (0xFF: any). */
struct vsh_inject {
	uint32_t inj_count;
	uint8_t  inj_opcode;
	uint8_t  inj_srb;		/* SRB status (flags added as needed) */
	uint8_t  inj_scsi;
	bool     inj_sense;
	uint8_t  inj_key, inj_asc, inj_ascq;
};

struct vsh_resp {
	uint16_t r_type;
	uint64_t r_tid;
	uint32_t r_len;
	uint32_t r_chan;		/* index in vsh_chans */
	uint8_t  r_data[VSH_PKT_MAX];
	uint32_t r_big;			/* oversize payload length, or 0 */
};

struct vsh {
	struct fakeport *fp;
	int (*orig_hypercall)(void *, uint32_t, uint64_t, const void *,
	    uint32_t, void *, uint32_t, uint64_t *);
	uint64_t (*orig_now)(void *);
	uint32_t (*orig_vp)(void *);
	bool busy;
	uint32_t cur_vp;		/* what current_vp() answers */

	/* script */
	uint16_t accept[8];		/* versions accepted, 0-terminated */
	uint16_t echo_override;		/* accept but echo this version */
	uint16_t max_sub;		/* max_channel_cnt */
	uint32_t prop_flags;
	uint32_t max_xfer;
	int      offer_subs;		/* -1: as asked */
	bool     hold;			/* keep SRB completions until released */
	bool     srb_deaf;		/* stop reading SRBs (ring fills) */
	uint32_t init_fail_op;		/* answer this init op with a failure */
	uint32_t init_drop_op;		/* never answer this init op */
	struct vsh_inject inj;
	bool     rescind_armed;		/* rescind the controller on the next */
	uint8_t  rescind_opcode;	/* SRB with this opcode (once) */
	uint32_t rescinds;
	enum vsh_mut mut;
	uint32_t mut_count;
	uint8_t  mut_srb, mut_scsi;

	/* state */
	uint16_t version;
	bool     negotiated;
	struct vsh_lun luns[VSH_MAX_LUNS];
	struct fh_chan *chans[VSH_MAX_CHANS];
	uint32_t nchans;
	uint32_t next_relid;
	struct hv_guid cls, inst;
	struct vsh_resp *out;		/* [VSH_QUEUE] waiting for ring room */
	uint32_t nout;
	struct vsh_resp *held;		/* [VSH_QUEUE] */
	uint32_t nheld;

	/* record */
	uint32_t ops[64], nops;		/* init operations in order */
	uint16_t queried[16];
	uint32_t nqueried;
	uint32_t pre_neg_sizes_bad;	/* init packets not 48 bytes */
	uint32_t srb_size_bad;		/* SRB packet size / length wrong */
	uint32_t srb_sense_bad;		/* sense_info_length wrong */
	uint32_t srbs;
	uint32_t srb_opcodes[256];
	uint32_t max_req_xfer;		/* largest data_transfer_length */
	uint32_t range_bad;		/* GPA range inconsistent */
	uint32_t outstanding, max_outstanding;
	uint32_t subs_requested;
	uint32_t unmap_desc_total;
	uint64_t unmap_blocks_total;
	uint32_t syncs;
	uint32_t chan_srbs[VSH_MAX_CHANS];
};

void vsh_init(struct vsh *h, struct fakeport *fp, uint32_t relid,
    const struct hv_guid *cls, const struct hv_guid *inst);
void vsh_fini(struct vsh *h);
struct vsh_lun *vsh_add_lun(struct vsh *h, uint8_t path, uint8_t target,
    uint8_t lun, uint32_t bs, uint64_t blocks);
void vsh_remove_lun(struct vsh *h, struct vsh_lun *l);
/* Move held completions to the guest (reverse: newest first). */
void vsh_release(struct vsh *h, bool reverse);
/* Send an unsolicited packet (id 0, in-band) with operation op. */
int  vsh_unsolicited(struct vsh *h, uint32_t op, uint32_t len);
/* Service the rings now. */
void vsh_service(struct vsh *h);

#endif /* TESTS_STORVSC_VSH_H */
