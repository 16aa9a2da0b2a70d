/*
 * tests/host/tg.h - a scripted in-test guest for the partition: speaks the
 * partition ABI over a real socketpair while the test drives the host's
 * event loop in the same thread.
 */
#ifndef TESTS_HOST_TG_H
#define TESTS_HOST_TG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/hvsim_abi.h"
#include "hv/tlfs.h"
#include "loop.h"
#include "partition_host.h"

#ifndef VMBUS_TEST_TIME_SCALE
#define VMBUS_TEST_TIME_SCALE 1
#endif

/* What the fake VMBus server saw. */
struct tg_event {
	char ev_kind;           /* 'P' post, 'S' signal, 'C' synic_changed, 'E' ended */
	uint32_t ev_vp;
	uint32_t ev_conn;
	uint32_t ev_type;
	uint32_t ev_len;
	uint16_t ev_flag;
	int ev_end_kind;
	uint8_t ev_payload[240];
};

#define TG_MAX_EVENTS 4096
#define TG_MAX_VCPUS 8

struct tg {
	struct hvs_loop *loop;
	bool own_loop;
	struct hvs_partition *p;
	int sock;               /* guest end */
	uint64_t seq;
	uint32_t vcpus;
	uint64_t ram_bytes;
	uint8_t *ram;
	uint64_t *sig;
	int ram_fd, sig_fd, sig_efd;
	int doorbell[TG_MAX_VCPUS];
	bool welcomed;

	/* fake server */
	struct tg_event ev[TG_MAX_EVENTS];
	unsigned nev;
	uint16_t post_status;   /* returned by post_message */
	bool echo_posts;        /* deliver each post back into SIMP slot 2 */
	int host_ended_kind;    /* -1 until host_ended */
	unsigned host_ended_calls;
};

/* Create loop + partition (name, vcpus, ram) with the fake server. */
void tg_init(struct tg *g, const char *name, uint32_t vcpus, uint64_t ram,
	     uint32_t msgq_limit);
/* The same on an existing loop (not freed by tg_fini). */
void tg_init_on(struct tg *g, struct hvs_loop *loop, const char *name,
		uint32_t vcpus, uint64_t ram, uint32_t msgq_limit);
void tg_fini(struct tg *g);

/* Run the host loop until the guest socket is readable (or EOF); fails
 * the test after a scaled deadline. */
void tg_pump_until_readable(struct tg *g);
/* Run the loop a few rounds without waiting. */
void tg_pump(struct tg *g);

/* Send raw bytes as one datagram (test fails on error). */
void tg_send_raw(struct tg *g, const void *buf, size_t len);
/* Receive one datagram (after pumping); returns its length, 0 at EOF.
 * fds (if not NULL) receive up to maxfds fds; *nfds set. */
size_t tg_recv(struct tg *g, uint8_t *buf, size_t cap, int *fds, int maxfds,
	       int *nfds);
/* True if the host closed the socket (EOF) within the deadline. */
bool tg_wait_eof(struct tg *g);

/* Build a header into buf. */
void tg_hdr(uint8_t *buf, uint16_t type, uint64_t seq);

/* HELLO -> WELCOME; maps RAM and the signal page, keeps fds. */
void tg_hello(struct tg *g);

/* One request/reply; returns the reply result and copies the 8-byte
 * value after it (MSR replies) into *val if not NULL. */
int32_t tg_wrmsr(struct tg *g, uint32_t vp, uint32_t msr, uint64_t v,
		 uint64_t *stored);
int32_t tg_rdmsr(struct tg *g, uint32_t vp, uint32_t msr, uint64_t *val);
/* HYPERCALL; returns the ABI result; *hv gets the hypercall result. */
int32_t tg_hypercall(struct tg *g, uint32_t vp, uint64_t control,
		     const void *input, uint32_t in_len, uint64_t *hv);
/* HvPostMessage with a 256-byte input block. Returns the HV status. */
uint16_t tg_post(struct tg *g, uint32_t vp, uint32_t conn, uint32_t type,
		 const void *payload, uint32_t size);
/* Enable hypercalls, SIMP/SIEFP on vp at the given pages, SINT2 vector
 * 0x41 unmasked, SCONTROL. */
void tg_setup_synic(struct tg *g, uint32_t vp, uint64_t simp_gpa,
		    uint64_t siefp_gpa);

/* Doorbell count of vp (reads and resets the eventfd; 0 if none). */
uint64_t tg_doorbell(struct tg *g, uint32_t vp);

/* Reply header checks. */
uint16_t tg_reply_type(const uint8_t *b);
uint64_t tg_reply_seq(const uint8_t *b);
int32_t tg_reply_result(const uint8_t *b);

/* Scaled deadline in ns from now. */
uint64_t tg_deadline(uint64_t seconds);

#endif /* TESTS_HOST_TG_H */
