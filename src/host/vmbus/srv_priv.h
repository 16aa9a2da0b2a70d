/*
 * host/vmbus/srv_priv.h - private state of the VMBus server (host side).
 * Only src/host/vmbus_server.c, the files in src/host/vmbus/ and
 * src/host/vsp/vsp.c include this.
 *
 * Threading: all of it is touched only on the partition's loop thread.
 */
#ifndef HVS_VMBUS_SRV_PRIV_H
#define HVS_VMBUS_SRV_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/ring.h"
#include "host/fault.h"
#include "host/log.h"
#include "host/partition.h"
#include "host/vmbus_server.h"
#include "host/vsp/vsp.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"

/*
 * Relids 1..HVS_RELID_MAX: a relid is a bit index in the 2048-bit SIEF area
 * and in each half of the pre-Win8 interrupt page, and relid 0 is never a
 * channel (spec 1.13, 1.16).
 */
#define HVS_RELID_MAX        2047u
/* Per-channel event connection id (OVMM numbering relid | SINT << 12). */
#define HVS_CONNID_BASE      0x2000u
/* Message connection id we return for >= 5.0 (OVMM: 1). */
#define HVS_MSG_CONNID       VMBUS_MESSAGE_CONNECTION_ID
/* 6.0 features this host grants. */
#define HVS_FEATURES_SUPPORTED VMBUS_FEATURE_CLIENT_ID
/* Failure status in GPADL_CREATED / OPENCHANNEL_RESULT (OVMM's value). */
#define HVS_STATUS_FAIL      VMBUS_STATUS_OVMM_FAILURE

struct hvs_device {
	struct hvs_device *dv_next;
	const struct hvs_vsp_ops *dv_ops;
	void *dv_arg;
	struct hv_guid dv_class;
	struct hv_guid dv_instance;
	struct hvs_device_opts dv_opts;
	uint32_t dv_index;           /* per-class index (instance derivation) */
	uint32_t dv_nchan;           /* channels referring to this device */
	char dv_name[48];
};

struct hvs_gpadl {
	struct hvs_gpadl *gp_next;
	uint32_t gp_handle;
	uint32_t gp_relid;           /* owning channel */
	bool gp_complete;            /* all range bytes arrived and valid */
	uint32_t gp_ring_user;       /* relid whose open rings use it, 0 none */
	uint32_t gp_holds;           /* VSP holds (hvs_chan_gpadl_hold) */
	uint32_t gp_maps;            /* VSP maps (hvs_chan_map_gpadl) */
	bool gp_teardown;            /* GPADL_TEARDOWN waits for holds and
					maps to go (spec 5.4) */
	uint8_t *gp_win;             /* all pages mapped contiguously
					(hvs_gpa_map_pfns), NULL if not */
	uint32_t gp_win_refs;        /* ring user + gp_maps */
	uint16_t gp_rangecount;
	uint32_t gp_buflen;          /* range stream bytes expected */
	uint32_t gp_have;            /* range stream bytes received */
	uint8_t *gp_stream;          /* private copy of the range stream */
	uint64_t gp_npfns;           /* after validation */
	uint64_t gp_bytes;           /* sum of byte_count */
};

struct hvs_channel {
	struct hvs_vmbus *ch_srv;
	struct hvs_device *ch_dev;
	uint32_t ch_relid;
	uint32_t ch_connid;
	uint16_t ch_sub;
	enum hvs_chan_state ch_state; /* UNOFFERED, OFFERED, OPEN, RESCINDED */
	bool ch_broken;
	bool ch_in_signal;           /* re-entrancy guard for vo_on_signal */
	int ch_close_deferred;       /* why + 1: close asked for from inside
					vo_on_signal, done when it returns */
	uint8_t ch_monitor_id;       /* VMBUS_MONITOR_ID_NONE if none */
	uint32_t ch_target_vp;       /* VMBUS_OPEN_TARGET_VP_NONE = poll */
	uint32_t ch_openid;
	uint32_t ch_gpadl;           /* ring GPADL while open */
	uint8_t ch_userdata[VMBUS_OPEN_USER_DATA_SIZE];
	struct vmbus_ring ch_in;     /* guest -> host, we read */
	struct vmbus_ring ch_out;    /* host -> guest, we write */
	uint32_t ch_in_bytes;        /* whole ring incl. control page */
	uint32_t ch_out_bytes;
	bool ch_pending_set;         /* we set pending_send_sz on ch_out */
	bool ch_batch;               /* hvs_chan_batch_begin .. _end */
	bool ch_batch_signal;        /* a send in the batch needs a signal */
	bool ch_stalled;             /* fault chan.stall held packets back */
	bool ch_scribbled;           /* fault bad_ring_index fired: every later
					write republishes ch_scribble_wi */
	uint32_t ch_scribble_wi;
	void *ch_priv;
	char ch_name[128];
	/* counters */
	uint64_t ch_signals_in;
	uint64_t ch_signals_out;
	uint64_t ch_spurious;
	atomic_uint_fast64_t ch_proto_errors;
};

struct hvs_outmsg {
	struct hvs_outmsg *om_next;
	uint32_t om_vp;
	uint32_t om_sint;
	uint32_t om_len;
	uint64_t om_not_before_ns;   /* fault delay_message: CLOCK_MONOTONIC */
	uint8_t om_buf[HV_MESSAGE_PAYLOAD_MAX];
};

struct hvs_vmbus {
	char vs_name[72];
	uint32_t vs_max_version;
	bool vs_monitored;
	uint32_t vs_outbox_depth;
	uint32_t vs_max_gpadls;
	uint32_t vs_max_gpadl_pages;
	char vs_salt[72];

	struct hvs_partition *vs_p;
	bool vs_ended;

	/* connection (reset by UNLOAD / reconnect / attach) */
	bool vs_connected;
	uint32_t vs_version;
	uint32_t vs_msg_vp;          /* VP receiving our messages */
	uint64_t vs_int_page;        /* GPA of the interrupt page (< 2.4) */
	uint64_t vs_mon1, vs_mon2;   /* monitor pages (monitored config) */
	uint32_t vs_features;        /* granted 6.0 features */
	bool vs_offers_requested;

	struct hvs_channel *vs_chan[HVS_RELID_MAX + 1];
	uint32_t vs_relid_top;       /* no channel above it ever: walks of
					vs_chan stop there (relids are
					allocated lowest first) */
	struct hvs_device *vs_devs;
	struct hvs_gpadl *vs_gpadls;
	uint32_t vs_ngpadls;

	struct hvs_outmsg *vs_ob_head, *vs_ob_tail;
	uint32_t vs_ob_count;

	struct hvs_ratelimit vs_rl;
	atomic_uint_fast64_t vs_msgs_bad;
	uint64_t vs_msgs_in;
	uint64_t vs_msgs_out;
	uint64_t vs_ob_retries;
	uint64_t vs_rsvd_nonzero;    /* reserved/pad bytes set by the guest */
};

/* Guest-caused error: rate-limited, VM-prefixed, counted in vs_msgs_bad. */
#define SRV_BAD(s, ...) \
	hvs_log_guest(&(s)->vs_rl, &(s)->vs_msgs_bad, (s)->vs_name, __VA_ARGS__)

/* vmbus_server.c */
void hvs_srv_send_msg(struct hvs_vmbus *s, const void *msg, uint32_t len);
/*
 * Fault hook `name` (host/fault.h) for this VM. If filter is not NULL and
 * the hook has that parameter set to a non-zero value other than `value`,
 * the hook neither fires nor counts (so "times" counts matching events).
 */
bool hvs_srv_fault(struct hvs_vmbus *s, const char *name, const char *filter,
		   int64_t value, struct hvs_fault_args *a);
void hvs_srv_device_unref(struct hvs_vmbus *s, struct hvs_device *dv);

/* vmbus/gpadl.c */
void hvs_gpadl_handle_header(struct hvs_vmbus *s, const uint8_t *m,
			     uint32_t len);
void hvs_gpadl_handle_body(struct hvs_vmbus *s, const uint8_t *m,
			   uint32_t len);
void hvs_gpadl_handle_teardown(struct hvs_vmbus *s, const uint8_t *m,
			       uint32_t len);
struct hvs_gpadl *hvs_gpadl_find(struct hvs_vmbus *s, uint32_t handle);
void hvs_gpadl_free_relid(struct hvs_vmbus *s, uint32_t relid);
void hvs_gpadl_free_all(struct hvs_vmbus *s);
/*
 * The window over every page of complete GPADL g (ranges in order), mapped
 * on the first get through the partition's checked hvs_gpa_map_pfns() and
 * unmapped when the last reference is put (or g is freed). NULL if the
 * partition refused a page (logged there).
 */
uint8_t *hvs_gpadl_win_get(struct hvs_vmbus *s, struct hvs_gpadl *g);
void hvs_gpadl_win_put(struct hvs_vmbus *s, struct hvs_gpadl *g);
/*
 * The VSP dropped a hold or map of g: if the guest's GPADL_TEARDOWN waits
 * and nothing holds g any more, free it and answer GPADL_TORNDOWN.
 */
void hvs_gpadl_released(struct hvs_vmbus *s, struct hvs_gpadl *g);
/*
 * Channel relid closed: drop every VSP hold and map of its GPADLs. A
 * waiting teardown is answered if `answer` (false when the connection
 * goes anyway: its GPADLs are freed without replies).
 */
void hvs_gpadl_release_chan(struct hvs_vmbus *s, uint32_t relid, bool answer);
/* Windows mapped now (statistics). */
uint32_t hvs_gpadl_windows(const struct hvs_vmbus *s);
int hvs_gpadl_copy(struct hvs_vmbus *s, const struct hvs_gpadl *g,
		   uint64_t off, void *buf, uint32_t len, bool write);

/* vmbus/chan.c */
void hvs_chan_handle_open(struct hvs_vmbus *s, const uint8_t *m, uint32_t len);
void hvs_chan_handle_close(struct hvs_vmbus *s, const uint8_t *m,
			   uint32_t len);
void hvs_chan_handle_modify(struct hvs_vmbus *s, const uint8_t *m,
			    uint32_t len);
void hvs_chan_handle_relid_released(struct hvs_vmbus *s, const uint8_t *m,
				    uint32_t len);
void hvs_chan_send_offer(struct hvs_vmbus *s, struct hvs_channel *ch);
void hvs_chan_close_host(struct hvs_channel *ch, int why);
void hvs_chan_free(struct hvs_vmbus *s, struct hvs_channel *ch);
void hvs_chan_dispatch_signal(struct hvs_channel *ch);
void hvs_chan_update_name(struct hvs_channel *ch);

/* vmbus/guid.c */
void hvs_guid_derive(const char *salt, const struct hv_guid *class_guid,
		     uint32_t index, struct hv_guid *out);
int hvs_guid_cmp(const struct hv_guid *a, const struct hv_guid *b);

#endif /* HVS_VMBUS_SRV_PRIV_H */
