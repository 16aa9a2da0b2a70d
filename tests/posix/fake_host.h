/*
 * fake_host.h - a scripted partition host for testing the posix port,
 * written from DESIGN.md ("The partition ABI") alone and independent of
 * src/host: it answers HELLO with a WELCOME carrying real sealed memfds and
 * eventfds, emulates a table of MSRs, records every request, and can be told
 * to misbehave (bad replies, silence, EOF, malformed WELCOMEs).
 */
#ifndef FAKE_HOST_H
#define FAKE_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FH_MAX_VCPUS 8
#define FH_MSR_SLOTS 0x110 /* MSRs 0x40000000 .. 0x4000010F */
#define FH_MAX_LOG   64

/* What the next reply does (one-shot, then back to FH_OK). */
enum fh_fault {
	FH_OK = 0,
	FH_BAD_SEQ,     /* seq + 1 */
	FH_BAD_TYPE,    /* type of another reply */
	FH_BAD_MAGIC,
	FH_BAD_FLAGS,
	FH_SHORT,       /* one byte short */
	FH_LONG,        /* one extra byte */
	FH_SILENT,      /* never answer */
	FH_CLOSE,       /* shut the socket down instead of answering */
	FH_ERROR,       /* error reply with fh_set_error()'s result */
	FH_HC_BAD_OUTLEN, /* HYPERCALL reply output_len beyond the datagram */
	FH_WITH_FD,     /* attach an fd to the reply */
};

struct fh_config {
	uint32_t vcpus;            /* 0: 2 */
	uint64_t ram_bytes;        /* 0: 2 MiB */
	/* WELCOME mutations */
	int fd_count_delta;        /* added to the fd_count field */
	int fds_delta;             /* fds actually sent: -n drops, +n extra */
	bool unseal_ram;
	bool unseal_sig;
	bool doorbell_is_pipe;     /* last doorbell is a pipe, not an eventfd */
	bool oversize;             /* WELCOME datagram of 9000 bytes */
	int32_t welcome_result;    /* nonzero: error reply */
	uint32_t abi_version;      /* 0: 1 */
	uint32_t vcpu_field;       /* nonzero: override vcpu_count field */
	uint64_t ram_field;        /* nonzero: override ram_bytes field */
	enum fh_fault welcome_fault;
};

struct fh_request {
	uint16_t type;
	uint64_t seq;
	size_t len;
};

struct fake_host {
	struct fh_config cfg;
	int sock;          /* our end */
	int listen_fd;     /* -1 unless fh_start_listen */
	pthread_t thr;
	bool stop;

	int ram_fd, sig_fd, sig_efd;
	int extra_fd, pipefd[2]; /* for malformed WELCOMEs */
	int doorbell[FH_MAX_VCPUS];
	uint8_t *ram, *sig;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* recorded (under lock) */
	uint8_t hello[128];
	size_t hello_len;
	struct fh_request log[FH_MAX_LOG];
	size_t nlog;             /* total requests, log keeps the first 64 */
	uint32_t hc_vp;
	uint64_t hc_control;
	uint8_t hc_input[4096];
	uint32_t hc_input_len;
	uint32_t reset_kind;
	bool reset_seen;
	uint32_t resets[8];      /* kinds, over all connections */
	size_t nresets;
	int connections;         /* accepted (listen mode) */
	bool closed;
	/* behaviour (under lock) */
	enum fh_fault fault;
	int32_t error_result;
	uint64_t hc_result;
	uint32_t hc_output_len;
	uint64_t msr[FH_MAX_VCPUS][FH_MSR_SLOTS];
};

/* Start a host thread on a socketpair; *guest_fd is the guest's end. */
struct fake_host *fh_start(const struct fh_config *cfg, int *guest_fd);
/* Start a host thread that accepts one connection on a listening socket
 * at `path` (created here). */
struct fake_host *fh_start_listen(const struct fh_config *cfg,
				  const char *path);
/* Stop the thread, close and unmap everything. */
void fh_stop(struct fake_host *h);

void fh_set_fault(struct fake_host *h, enum fh_fault f);
void fh_set_error(struct fake_host *h, int32_t result);
/* Shut the socket down now (the guest sees EOF). */
void fh_close(struct fake_host *h);
/* Ring vp's doorbell (write 1 to its eventfd). */
void fh_ring(struct fake_host *h, uint32_t vp);
/* Wait (bounded) until `n` requests were received; false on timeout. */
bool fh_wait_requests(struct fake_host *h, size_t n, int timeout_ms);
size_t fh_nrequests(struct fake_host *h);
/* Read and clear the signal eventfd counter (0 when not signalled). */
uint64_t fh_take_signal(struct fake_host *h);

#endif /* FAKE_HOST_H */
