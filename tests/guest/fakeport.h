/*
 * tests/guest/fakeport.h - a fake platform port and a scripted in-process
 * VMBus host double for unit tests of the guest core.
 *
 * Single-threaded and polled (no irq_attach, no wait): the fake host runs
 * inside the port calls (hypercalls, MSR accesses, the clock), like a
 * hypervisor that acts between guest instructions. The clock is virtual:
 * every now_ns() call advances it by fp_tick ns, so timeouts are exact and
 * quick. Guest "physical" memory is malloc'd pages with made-up PFNs.
 *
 * The host double is independent of src/host: its own small message
 * handling written for tests, using only the wire headers and the shared
 * ring library.
 */
#ifndef TESTS_GUEST_FAKEPORT_H
#define TESTS_GUEST_FAKEPORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/platform.h"
#include "vmbus/vmbus.h"

#include "ring.h"

#define FP_MAX_VCPU	4
#define FP_MAX_ALLOCS	512
#define FH_MAX_CHANS	32
#define FH_MAX_GPADLS	64
#define FH_QUEUE	64
#define FH_LOG		1024

struct fp_alloc {
	void    *a_va;
	size_t   a_npages;
	uint64_t a_pfn0;
	bool     a_live;
};

/* One host-side channel (an offer). */
struct fh_chan {
	bool     c_used;
	uint32_t c_relid;
	struct hv_guid c_class;
	struct hv_guid c_instance;
	uint16_t c_subidx;
	uint32_t c_connid;
	bool     c_dedicated;
	bool     c_echo;		/* echo VSP behaviour on signal */
	bool     c_offered;
	bool     c_open;
	bool     c_closed_seen;
	bool     c_released;
	uint32_t c_gpadl;
	uint32_t c_target_vp;
	uint32_t c_openid;
	uint8_t  c_userdata[120];
	struct vmbus_ring c_in;		/* guest -> host ring (host reads) */
	struct vmbus_ring c_out;	/* host -> guest ring (host writes) */
	uint32_t c_signals;		/* guest signals received */
	uint32_t c_echoed;
	uint32_t c_open_status;		/* status to answer OPEN with */
	bool     c_open_noreply;
	bool     c_rescind_on_open;
	/* replies that did not fit the host->guest ring yet (in order) */
	_Alignas(8) uint8_t c_pend[2][16 + 4096];
	uint32_t c_pend_len[2];
	uint32_t c_npend;
};

struct fh_gpadl {
	bool     g_used;
	uint32_t g_handle;
	uint32_t g_relid;
	uint32_t g_buflen;		/* range_buflen */
	uint32_t g_got;			/* range bytes received */
	_Alignas(8) uint8_t g_range[65536]; /* the range stream */
	uint32_t g_header_pfns;		/* PFNs carried by the header */
	uint32_t g_bodies;
	uint32_t g_body_max_pfns;	/* largest body */
	bool     g_complete;
	bool     g_torn;
};

struct fh_msg {
	uint32_t q_len;
	uint8_t  q_data[HV_MESSAGE_PAYLOAD_MAX];
};

struct fake_host {
	/* version negotiation script */
	uint32_t h_accept[16];		/* versions accepted, 0-terminated */
	bool     h_no_conn4;		/* a pre-5.0 host: connection 4 unknown */
	uint32_t h_msg_connid;		/* returned for >= 5.0 */
	bool     h_vresp_drop;		/* never answer INITIATE_CONTACT */
	uint32_t h_vresp_state;		/* connection_state to answer */
	uint32_t h_requested[16];	/* versions the guest asked, in order */
	uint32_t h_nrequested;
	uint32_t h_contact_connid[16];	/* connection id of each request */
	uint32_t h_version;		/* negotiated */
	uint32_t h_target_vcpu;
	uint64_t h_intr_page_gpa;
	uint32_t h_post_busy;		/* answer INSUFFICIENT_BUFFERS N times */

	/* behaviour switches */
	bool     h_teardown_noreply;
	uint32_t h_teardown_noreply_gpadl;	/* no answer for this handle */
	uint32_t h_gpadl_status;	/* GPADL_CREATED status */
	bool     h_unload_noreply;
	uint32_t h_modify_status;	/* MODIFYCHANNEL_RESPONSE status */
	bool     h_signal_if_needed;	/* ring writes signal only as spec
					 * 3.5 says (else: every write) */
	bool     h_modify_noreply;

	/* what the guest sent */
	uint32_t h_log[FH_LOG];		/* message types, in order */
	uint32_t h_log_len[FH_LOG];
	uint32_t h_nlog;
	bool     h_nonzero_reserved;	/* a reserved byte was non-zero */
	uint32_t h_unloads;

	struct fh_chan  h_chan[FH_MAX_CHANS];
	struct fh_gpadl h_gpadl[FH_MAX_GPADLS];

	/* message queues per vCPU (host -> guest) */
	struct fh_msg h_q[FP_MAX_VCPU][FH_QUEUE];
	uint32_t h_qhead[FP_MAX_VCPU], h_qtail[FP_MAX_VCPU];
	uint32_t h_eoms;
};

struct fakeport {
	struct vmbus_platform fp_plat;
	struct fake_host fp_host;
	uint32_t fp_nvcpu;
	uint64_t fp_now;
	uint64_t fp_tick;
	bool     fp_in_host;		/* re-entrancy guard */

	struct fp_alloc fp_alloc[FP_MAX_ALLOCS];
	uint64_t fp_next_pfn;
	uint64_t fp_pages_live;
	int      fp_fail_alloc_after;	/* >= 0: fail the Nth page_alloc */

	uint64_t fp_guest_os_id;
	uint64_t fp_hypercall;
	uint64_t fp_simp[FP_MAX_VCPU];
	uint64_t fp_siefp[FP_MAX_VCPU];
	uint64_t fp_sint2[FP_MAX_VCPU];
	uint64_t fp_scontrol[FP_MAX_VCPU];
	uint32_t fp_signals;
	uint32_t fp_logs;
	bool     fp_quiet;
	char     fp_logtext[8192];	/* every log line, '\n'-ended; the
					 * oldest dropped when full */

	/* threaded mode (fp_threaded) */
	bool     fp_threads;
	pthread_mutex_t fp_big;		/* recursive: host double + clock */
	bool     fp_irq;		/* irq_attach starts fp_irq_thread */
	pthread_t fp_irq_thread;
	atomic_bool fp_irq_run;
	vmbus_isr_fn *fp_isr;
	void    *fp_isr_arg;
	atomic_ullong fp_isr_calls;	/* ISR invocations so far */
};

/* Set up a port with nvcpu vCPUs and a host accepting every version. */
void fp_init(struct fakeport *fp, uint32_t nvcpu);
/* Frees every still-live allocation; returns how many pages were live. */
uint64_t fp_fini(struct fakeport *fp);

/*
 * Threaded mode, for race tests; call after fp_init, before vmbus_create.
 * The core gets real locks (pthread mutexes in the port's lock storage);
 * every port call into the host double and the virtual clock runs under one
 * recursive lock; with irq = true, irq_attach starts an interrupt thread
 * that calls the core's ISR for every vCPU in a loop until irq_detach (a
 * storm of mostly spurious interrupts, racing everything the bus does).
 * Waits stay polled. Tests that touch the host double from their own
 * threads bracket that with fp_host_lock / fp_host_unlock.
 */
void fp_threaded(struct fakeport *fp, bool irq);
void fp_host_lock(struct fakeport *fp);
void fp_host_unlock(struct fakeport *fp);

/* Memory: guest pointer for a GPA range (NULL if not allocated). */
void *fp_gpa(struct fakeport *fp, uint64_t gpa, size_t len);

/* ---- the host double ---- */
struct fh_chan *fh_add_chan(struct fakeport *fp, uint32_t relid,
    const struct hv_guid *cls, const struct hv_guid *inst, uint16_t subidx,
    bool echo);
struct fh_chan *fh_find_chan(struct fakeport *fp, uint32_t relid);
/* Queue a raw message for vCPU vp (delivered when the slot is free). */
void fh_send(struct fakeport *fp, uint32_t vp, const void *msg, uint32_t len);
/* Queue a message for the negotiated message vCPU. */
void fh_send_msg(struct fakeport *fp, const void *msg, uint32_t len);
/* Offer channel c now (hot-add) / rescind it. */
void fh_offer(struct fakeport *fp, struct fh_chan *c);
void fh_rescind(struct fakeport *fp, struct fh_chan *c);
/* Write one packet into the host->guest ring and signal the guest. */
int  fh_write_pkt(struct fakeport *fp, struct fh_chan *c, uint16_t type,
    uint16_t flags, uint64_t tid, const void *data, uint32_t len);
/* Write raw bytes (descriptor included, multiple of 8) as one packet. */
int  fh_write_raw(struct fakeport *fp, struct fh_chan *c, const void *bytes,
    uint32_t len);
/* Set the channel's event for the guest (as after a ring write). */
void fh_signal_guest(struct fakeport *fp, struct fh_chan *c);
/* Read one packet from the guest->host ring: returns len or -EAGAIN. */
int  fh_read_pkt(struct fakeport *fp, struct fh_chan *c, void *buf,
    uint32_t cap);
/* Run the echo behaviour now (as a host thread would after a pause). */
void fh_kick(struct fakeport *fp, struct fh_chan *c);
/* Count of logged guest messages of a type. */
uint32_t fh_count(struct fakeport *fp, uint32_t type);
struct fh_gpadl *fh_find_gpadl(struct fakeport *fp, uint32_t handle);
/* Deliver queued messages (the port calls this; tests may too). */
void fh_pump(struct fakeport *fp);

/* Well-known test GUIDs */
extern const struct hv_guid fh_guid_echo;
extern const struct hv_guid fh_guid_other;
extern const struct hv_guid fh_guid_inst[8];

#endif /* TESTS_GUEST_FAKEPORT_H */
