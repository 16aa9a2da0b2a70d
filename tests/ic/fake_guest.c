/*
 * tests/ic/fake_guest.c - see fake_guest.h. Implements the part of
 * vmbus/vmbus.h the IC drivers use, single-threaded.
 */
#include "fake_guest.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/tlfs.h"
#include "hv/vmbus_pkt.h"

struct fake_pkt {
	uint16_t p_type;
	uint64_t p_tid;
	uint32_t p_len;
	uint8_t p_data[FAKE_PKT_MAX];
};

#define FAKE_QLEN 16

struct fake_q {
	struct fake_pkt *q_pkt[FAKE_QLEN];
	uint32_t q_head, q_n;
};

struct vmbus_device {
	struct vmbus_channel *dv_chan;
	const struct vmbus_driver *dv_drv;
	void *dv_softc;
	bool dv_attached;
};

struct vmbus_channel {
	struct vmbus_device ch_dev;
	struct vmbus *ch_bus;
	struct hv_guid ch_class;
	bool ch_in_use;
	bool ch_open;
	vmbus_chan_callback_t *ch_cb;
	void *ch_arg;
	struct fake_q ch_rx;		/* host -> guest */
	struct fake_q ch_tx;		/* guest -> host */
	uint64_t ch_ntx;
	int ch_send_err;
	char ch_name[32];
};

struct vmbus {
	const struct vmbus_platform *vb_plat;
	const struct vmbus_driver *vb_drv[VMBUS_MAX_DRIVERS];
	uint32_t vb_ndrv;
	struct vmbus_channel vb_ch[FAKE_MAX_CHANS];
	int vb_fail_register;
};

struct fake_port fake_port;
static struct vmbus fake_bus;

#define FAKE_MAXWORK 64
static struct {
	vmbus_work_fn *fn;
	void *arg;
} fake_works[FAKE_MAXWORK];

/* ---- the port ---- */

static void *fp_zalloc(void *ctx, size_t n)
{
	(void)ctx;
	return calloc(1, n);
}

static void fp_free(void *ctx, void *p, size_t n)
{
	(void)ctx;
	(void)n;
	free(p);
}

static void fp_lock(void *ctx, vmbus_lock_t *l)
{
	(void)ctx;
	if (l->l_opaque[0])
		fake_port.fp_lock_errors++;
	l->l_opaque[0] = 1;
	fake_port.fp_locks_held++;
}

static void fp_unlock(void *ctx, vmbus_lock_t *l)
{
	(void)ctx;
	if (!l->l_opaque[0])
		fake_port.fp_lock_errors++;
	l->l_opaque[0] = 0;
	fake_port.fp_locks_held--;
}

static int fp_defer(void *ctx, vmbus_work_fn *fn, void *arg)
{
	(void)ctx;
	if (fake_port.fp_defer_mode == FAKE_DEFER_FAIL)
		return -VMBUS_ENOMEM;
	assert(fake_port.fp_deferred < FAKE_MAXWORK);
	fake_works[fake_port.fp_deferred].fn = fn;
	fake_works[fake_port.fp_deferred].arg = arg;
	fake_port.fp_deferred++;
	return 0;
}

static uint64_t fp_now(void *ctx)
{
	(void)ctx;
	return fake_port.fp_now_ns;
}

static int64_t fp_wall_get(void *ctx)
{
	(void)ctx;
	return fake_port.fp_wall_ns;
}

static int fp_wall_step(void *ctx, int64_t ns)
{
	(void)ctx;
	if (fake_port.fp_step_err)
		return fake_port.fp_step_err;
	fake_port.fp_steps++;
	fake_port.fp_last_step = ns;
	fake_port.fp_wall_ns = ns;
	return 0;
}

static int fp_wall_slew(void *ctx, int64_t d)
{
	(void)ctx;
	if (fake_port.fp_slew_err)
		return fake_port.fp_slew_err;
	fake_port.fp_slews++;
	fake_port.fp_last_slew = d;
	return 0;
}

static int fp_rdmsr(void *ctx, uint32_t vp, uint32_t msr, uint64_t *v)
{
	(void)ctx;
	(void)vp;
	if (fake_port.fp_rdmsr_err)
		return fake_port.fp_rdmsr_err;
	if (msr != HV_X64_MSR_TIME_REF_COUNT)
		return -VMBUS_EINVAL;
	*v = fake_port.fp_ref;
	return 0;
}

static uint64_t fake_total_tx(void)
{
	uint64_t n = 0;

	for (int i = 0; i < FAKE_MAX_CHANS; i++)
		n += fake_bus.vb_ch[i].ch_ntx;
	return n;
}

static int fp_power_off(void *ctx)
{
	(void)ctx;
	fake_port.fp_power_offs++;
	fake_port.fp_replies_at_action = fake_total_tx();
	return 0;
}

static int fp_reboot(void *ctx)
{
	(void)ctx;
	fake_port.fp_reboots++;
	fake_port.fp_replies_at_action = fake_total_tx();
	return 0;
}

static void fp_vlog(void *ctx, int level, const char *fmt, va_list ap)
{
	(void)ctx;
	(void)level;
	vsnprintf(fake_port.fp_last_log, sizeof(fake_port.fp_last_log), fmt,
		  ap);
	fake_port.fp_log_lines++;
	if (getenv("FAKE_LOG"))
		fprintf(stderr, "log: %s\n", fake_port.fp_last_log);
}

static void fake_q_free(struct fake_q *q)
{
	while (q->q_n) {
		free(q->q_pkt[q->q_head]);
		q->q_head = (q->q_head + 1) % FAKE_QLEN;
		q->q_n--;
	}
	q->q_head = 0;
}

void fake_teardown(void)
{
	for (int i = 0; i < FAKE_MAX_CHANS; i++) {
		fake_q_free(&fake_bus.vb_ch[i].ch_rx);
		fake_q_free(&fake_bus.vb_ch[i].ch_tx);
	}
}

struct vmbus *fake_reset(int defer_mode)
{
	fake_teardown();
	memset(&fake_bus, 0, sizeof(fake_bus));
	memset(&fake_port, 0, sizeof(fake_port));
	fake_port.fp_now_ns = 1000000000ull;
	fake_port.fp_wall_ns = 1700000000ll * 1000000000ll;
	fake_port.fp_defer_mode = defer_mode;
	fake_port.fp_plat = (struct vmbus_platform){
		.ctx = &fake_port,
		.zalloc = fp_zalloc,
		.free = fp_free,
		.lock = fp_lock,
		.unlock = fp_unlock,
		.defer = defer_mode == FAKE_DEFER_NONE ? NULL : fp_defer,
		.now_ns = fp_now,
		.wallclock_get = fp_wall_get,
		.wallclock_step = fp_wall_step,
		.wallclock_slew = fp_wall_slew,
		.rdmsr = fp_rdmsr,
		.vlog = fp_vlog,
		.power_off = fp_power_off,
		.reboot = fp_reboot,
	};
	fake_bus.vb_plat = &fake_port.fp_plat;
	return &fake_bus;
}

void fake_run_deferred(void)
{
	while (fake_port.fp_deferred) {
		vmbus_work_fn *fn = fake_works[0].fn;
		void *arg = fake_works[0].arg;

		memmove(&fake_works[0], &fake_works[1],
			(fake_port.fp_deferred - 1) * sizeof(fake_works[0]));
		fake_port.fp_deferred--;
		fn(arg);
	}
}

/* ---- the bus ---- */

const struct vmbus_platform *vmbus_platform(const struct vmbus *vb)
{
	return vb->vb_plat;
}

static void fake_try_attach(struct vmbus_channel *ch)
{
	struct vmbus *vb = ch->ch_bus;

	for (uint32_t i = 0; i < vb->vb_ndrv; i++) {
		const struct vmbus_driver *drv = vb->vb_drv[i];

		if (memcmp(&drv->drv_class, &ch->ch_class, 16) != 0)
			continue;
		ch->ch_dev.dv_drv = drv;
		if (drv->drv_probe && drv->drv_probe(&ch->ch_dev) != 0) {
			ch->ch_dev.dv_drv = NULL;
			continue;
		}
		if (drv->drv_attach(&ch->ch_dev) != 0) {
			ch->ch_dev.dv_drv = NULL;
			ch->ch_open = false;
			continue;
		}
		ch->ch_dev.dv_attached = true;
		return;
	}
}

void fake_fail_register(int err)
{
	fake_bus.vb_fail_register = err;
}

int vmbus_driver_register(struct vmbus *vb, const struct vmbus_driver *drv)
{
	if (vb->vb_fail_register) {
		int e = vb->vb_fail_register;

		vb->vb_fail_register = 0;
		return e;
	}
	if (vb->vb_ndrv >= VMBUS_MAX_DRIVERS)
		return -VMBUS_ENOSPC;
	vb->vb_drv[vb->vb_ndrv++] = drv;
	for (int i = 0; i < FAKE_MAX_CHANS; i++)
		if (vb->vb_ch[i].ch_in_use && !vb->vb_ch[i].ch_dev.dv_attached)
			fake_try_attach(&vb->vb_ch[i]);
	return 0;
}

int fake_offer(const struct hv_guid *cls)
{
	for (int i = 0; i < FAKE_MAX_CHANS; i++) {
		struct vmbus_channel *ch = &fake_bus.vb_ch[i];

		if (ch->ch_in_use)
			continue;
		memset(ch, 0, sizeof(*ch));
		ch->ch_in_use = true;
		ch->ch_bus = &fake_bus;
		ch->ch_class = *cls;
		ch->ch_dev.dv_chan = ch;
		snprintf(ch->ch_name, sizeof(ch->ch_name), "chan%d", i);
		fake_try_attach(ch);
		return i;
	}
	assert(!"too many channels");
	return -1;
}

void fake_rescind(int idx)
{
	struct vmbus_channel *ch = &fake_bus.vb_ch[idx];

	if (ch->ch_dev.dv_attached && ch->ch_dev.dv_drv->drv_detach)
		ch->ch_dev.dv_drv->drv_detach(&ch->ch_dev);
	ch->ch_open = false;
	ch->ch_dev.dv_attached = false;
	fake_q_free(&ch->ch_rx);
	fake_q_free(&ch->ch_tx);
	ch->ch_in_use = false;
}

bool fake_chan_open(int idx)
{
	return fake_bus.vb_ch[idx].ch_open;
}

struct vmbus_channel *vmbus_device_channel(struct vmbus_device *dev)
{
	return dev->dv_chan;
}

const struct vmbus_driver *vmbus_device_driver(const struct vmbus_device *dev)
{
	return dev->dv_drv;
}

void vmbus_device_set_softc(struct vmbus_device *dev, void *softc)
{
	dev->dv_softc = softc;
}

const char *vmbus_chan_name(const struct vmbus_channel *ch)
{
	return ch->ch_name;
}

int vmbus_chan_open(struct vmbus_channel *ch, uint32_t txbytes,
    uint32_t rxbytes, const void *userdata, uint32_t udlen,
    vmbus_chan_callback_t *callback, void *arg)
{
	(void)userdata;
	if (txbytes < 8192 || rxbytes < 8192 || udlen > 120 || ch->ch_open)
		return -VMBUS_EINVAL;
	ch->ch_open = true;
	ch->ch_cb = callback;
	ch->ch_arg = arg;
	return 0;
}

int vmbus_chan_close(struct vmbus_channel *ch)
{
	if (!ch->ch_open)
		return -VMBUS_EINVAL;
	ch->ch_open = false;
	return 0;
}

static void fake_q_push(struct fake_q *q, uint16_t type, const void *d,
			uint32_t len, uint64_t tid)
{
	struct fake_pkt *p = calloc(1, sizeof(*p));

	assert(p && len <= FAKE_PKT_MAX && q->q_n < FAKE_QLEN);
	p->p_type = type;
	p->p_tid = tid;
	p->p_len = len;
	memcpy(p->p_data, d, len);
	q->q_pkt[(q->q_head + q->q_n) % FAKE_QLEN] = p;
	q->q_n++;
}

int vmbus_chan_send(struct vmbus_channel *ch, uint16_t type, uint16_t flags,
    const void *data, uint32_t len, uint64_t trans_id)
{
	(void)flags;
	if (!ch->ch_open)
		return -VMBUS_ENODEV;
	if (ch->ch_send_err)
		return ch->ch_send_err;
	if (ch->ch_tx.q_n >= FAKE_QLEN)
		return -VMBUS_EAGAIN;
	fake_q_push(&ch->ch_tx, type, data, len, trans_id);
	ch->ch_ntx++;
	return 0;
}

int vmbus_chan_recv(struct vmbus_channel *ch, void *buf, uint32_t *len,
    struct vmbus_pkt_info *info)
{
	struct fake_pkt *p;
	uint32_t padded;

	if (!ch->ch_open)
		return -VMBUS_ENODEV;
	if (ch->ch_rx.q_n == 0)
		return -VMBUS_EAGAIN;
	p = ch->ch_rx.q_pkt[ch->ch_rx.q_head];
	/* Like the core: the payload comes padded to 8 bytes. */
	padded = (p->p_len + 7u) & ~7u;
	if (padded > *len) {
		*len = padded;
		return -VMBUS_ENOBUFS;
	}
	memset(buf, 0, padded);
	memcpy(buf, p->p_data, p->p_len);
	*len = padded;
	if (info) {
		info->pi_type = p->p_type;
		info->pi_flags = 0;
		info->pi_trans_id = p->p_tid;
		info->pi_hdr_len = 16;
		info->pi_pkt_len = 16 + padded;
	}
	ch->ch_rx.q_head = (ch->ch_rx.q_head + 1) % FAKE_QLEN;
	ch->ch_rx.q_n--;
	free(p);
	return 0;
}

void fake_host_send_type(int idx, uint16_t type, const void *data,
			 uint32_t len, uint64_t tid)
{
	struct vmbus_channel *ch = &fake_bus.vb_ch[idx];

	fake_q_push(&ch->ch_rx, type, data, len, tid);
	if (ch->ch_open && ch->ch_cb)
		ch->ch_cb(ch, ch->ch_arg);
}

void fake_host_send(int idx, const void *data, uint32_t len, uint64_t tid)
{
	fake_host_send_type(idx, VMBUS_PACKET_TYPE_DATA_INBAND, data, len, tid);
}

int fake_host_recv(int idx, void *buf, uint32_t *len, uint64_t *tid)
{
	struct vmbus_channel *ch = &fake_bus.vb_ch[idx];
	struct fake_pkt *p;

	if (ch->ch_tx.q_n == 0)
		return -1;
	p = ch->ch_tx.q_pkt[ch->ch_tx.q_head];
	memcpy(buf, p->p_data, p->p_len);
	*len = p->p_len;
	if (tid)
		*tid = p->p_tid;
	ch->ch_tx.q_head = (ch->ch_tx.q_head + 1) % FAKE_QLEN;
	ch->ch_tx.q_n--;
	free(p);
	return 0;
}

uint32_t fake_host_pending(int idx)
{
	return fake_bus.vb_ch[idx].ch_tx.q_n;
}

uint64_t fake_tx_count(int idx)
{
	return fake_bus.vb_ch[idx].ch_ntx;
}

void fake_send_error(int idx, int err)
{
	fake_bus.vb_ch[idx].ch_send_err = err;
}
