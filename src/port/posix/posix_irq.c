/*
 * posix_irq.c - interrupts: one thread per vCPU blocks on that vCPU's
 * doorbell eventfd and calls the core's ISR, as a real interrupt would.
 */
#include "posix_priv.h"

#include "hv/tlfs.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* vp + 1 on an interrupt thread, 0 elsewhere. */
static _Thread_local uint32_t tls_vp_plus1;
/* The port whose thread this is (irq, defer, watchdog), or NULL. */
static _Thread_local struct vmbus_posix *tls_port;

uint32_t posix_current_vp(void *ctx)
{
	(void)ctx;
	return tls_vp_plus1 ? tls_vp_plus1 - 1 : 0;
}

bool posix_on_port_thread(struct vmbus_posix *p)
{
	return tls_port == p;
}

void posix_mark_port_thread(struct vmbus_posix *p)
{
	tls_port = p;
}

static void *irq_main(void *arg)
{
	struct posix_irq *iq = arg;
	struct vmbus_posix *p = iq->iq_port;
	int db = p->pw_doorbell[iq->iq_vp];

	tls_vp_plus1 = iq->iq_vp + 1;
	tls_port = p;
	while (!atomic_load(&p->pi_stop)) {
		struct pollfd pfd[2] = {
			{ .fd = db, .events = POLLIN },
			{ .fd = p->pi_stop_efd, .events = POLLIN },
		};
		uint64_t count;
		ssize_t n;
		int r = poll(pfd, 2, 1000);

		if (r < 0 && errno != EINTR) {
			posix_log(p, VMBUS_LOG_ERR, "irq vp %u: poll: %s",
				  iq->iq_vp, strerror(errno));
			break;
		}
		if (r <= 0 || pfd[1].revents || !(pfd[0].revents & POLLIN))
			continue;
		/* NOTE: read (reset) the doorbell before the ISR scans the
		 * SIMP and SIEFP, so a doorbell rung during the scan is not
		 * lost (DESIGN.md "SynIC delivery"). */
		n = read(db, &count, sizeof(count));
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			posix_log(p, VMBUS_LOG_ERR, "irq vp %u: read: %s",
				  iq->iq_vp, strerror(errno));
			break;
		}
		if (n != (ssize_t)sizeof(count))
			continue;
		atomic_fetch_add(&p->st_interrupts, 1);
		p->pi_isr(p->pi_isr_arg, iq->iq_vp);
	}
	return NULL;
}

static void irq_stop(struct vmbus_posix *p, uint32_t started)
{
	uint64_t one = 1, drain;

	atomic_store(&p->pi_stop, true);
	if (write(p->pi_stop_efd, &one, sizeof(one)) < 0)
		posix_log(p, VMBUS_LOG_WARN, "irq stop: %s", strerror(errno));
	for (uint32_t i = 0; i < started; i++)
		pthread_join(p->pi_irq[i].iq_thread, NULL);
	/* Re-arm for a later attach. */
	if (read(p->pi_stop_efd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
		posix_log(p, VMBUS_LOG_WARN, "irq stop drain: %s",
			  strerror(errno));
	atomic_store(&p->pi_stop, false);
	free(p->pi_irq);
	p->pi_irq = NULL;
	p->pi_isr = NULL;
	p->pi_isr_arg = NULL;
}

int posix_irq_attach(void *ctx, uint8_t *vector, vmbus_isr_fn *isr, void *arg)
{
	struct vmbus_posix *p = ctx;
	uint32_t i;

	if (!isr)
		return -VMBUS_EINVAL;
	pthread_mutex_lock(&p->pi_lock);
	if (p->pi_irq) {
		pthread_mutex_unlock(&p->pi_lock);
		return -VMBUS_EBUSY;
	}
	p->pi_irq = calloc(p->pw_vcpus, sizeof(*p->pi_irq));
	if (!p->pi_irq) {
		pthread_mutex_unlock(&p->pi_lock);
		return -VMBUS_ENOMEM;
	}
	p->pi_isr = isr;
	p->pi_isr_arg = arg;
	for (i = 0; i < p->pw_vcpus; i++) {
		p->pi_irq[i].iq_vp = i;
		p->pi_irq[i].iq_port = p;
		if (pthread_create(&p->pi_irq[i].iq_thread, NULL, irq_main,
				   &p->pi_irq[i]) != 0)
			break;
	}
	if (i < p->pw_vcpus) {
		irq_stop(p, i);
		pthread_mutex_unlock(&p->pi_lock);
		posix_log(p, VMBUS_LOG_ERR, "irq_attach: cannot start threads");
		return -VMBUS_ENOMEM;
	}
	/* The core proposes a vector; an explicit port option overrides it,
	 * an invalid proposal (below 16) gets the port's default. */
	if (vector && (p->po_irq_vector_forced || *vector < HV_SINT_VECTOR_MIN))
		*vector = p->po_irq_vector;
	pthread_mutex_unlock(&p->pi_lock);
	return 0;
}

void posix_irq_detach(void *ctx)
{
	struct vmbus_posix *p = ctx;

	if (tls_vp_plus1 != 0 && tls_port == p) {
		/* Our own invariant: joining ourselves would hang. */
		posix_log(p, VMBUS_LOG_ERR, "irq_detach called from the ISR");
		abort();
	}
	pthread_mutex_lock(&p->pi_lock);
	if (p->pi_irq)
		irq_stop(p, p->pw_vcpus);
	pthread_mutex_unlock(&p->pi_lock);
}
