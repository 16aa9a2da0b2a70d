/*
 * src/guest/echo/echo.c - guest driver of the echo test device
 * (vmbus/echo.h). Opens the channel without a callback: the round trip
 * and stream calls read the ring themselves (vmbus_chan_wait_rx).
 */
#include "vmbus/echo.h"

#include "hv/guid.h"
#include "hv/vmbus_pkt.h"
#include "hv/wire.h"

#define ECHO_DEFAULT_RING	(64u * 1024)
#define ECHO_MAX_BUSES		8u

struct echo_frame {
	uint32_t ef_magic;		/* ECHO_FRAME_MAGIC, LE */
	uint32_t ef_len;		/* payload bytes after the frame, LE */
	uint64_t ef_seq;		/* LE */
};
_Static_assert(sizeof(struct echo_frame) == ECHO_FRAME_HDR, "echo frame");

struct echo_dev {
	struct echo_drv *ed_drv;
	struct vmbus_device *ed_dev;
	struct vmbus_channel *ed_chan;
	uint8_t *ed_buf;		/* one received packet */
	uint32_t ed_buflen;
	uint64_t ed_tx_seq;		/* last sequence sent */
	uint64_t ed_rx_next;		/* next sequence expected */
	struct echo_stats ed_stats;
};

struct echo_drv {
	struct vmbus_driver dr_drv;	/* first: container of the driver */
	struct vmbus *dr_bus;
	struct echo_config dr_cfg;
	struct echo_dev *dr_dev[ECHO_MAX_DEVICES];
	uint32_t dr_ndev;
};

/* One driver object per bus; registration is a set-up time call. */
static struct echo_drv echo_drivers[ECHO_MAX_BUSES];

static struct echo_drv *echo_drv_of(struct vmbus *vb)
{
	for (uint32_t i = 0; i < ECHO_MAX_BUSES; i++)
		if (echo_drivers[i].dr_bus == vb)
			return &echo_drivers[i];
	return NULL;
}

static int echo_attach(struct vmbus_device *dev)
{
	struct echo_drv *dr = (struct echo_drv *)(uintptr_t)vmbus_device_driver(dev);
	struct vmbus *vb = vmbus_device_bus(dev);
	const struct vmbus_platform *p = vmbus_platform(vb);
	struct echo_dev *ed;
	uint32_t slot;
	int r;

	for (slot = 0; slot < ECHO_MAX_DEVICES; slot++)
		if (dr->dr_dev[slot] == NULL)
			break;
	if (slot == ECHO_MAX_DEVICES)
		return -VMBUS_ENOSPC;
	ed = p->zalloc(p->ctx, sizeof(*ed));
	if (ed == NULL)
		return -VMBUS_ENOMEM;
	ed->ed_drv = dr;
	ed->ed_dev = dev;
	ed->ed_chan = vmbus_device_channel(dev);
	ed->ed_rx_next = 1;
	ed->ed_buflen = dr->dr_cfg.ec_rx_ring_bytes;
	ed->ed_buf = p->zalloc(p->ctx, ed->ed_buflen);
	if (ed->ed_buf == NULL) {
		p->free(p->ctx, ed, sizeof(*ed));
		return -VMBUS_ENOMEM;
	}
	r = vmbus_chan_open(ed->ed_chan, dr->dr_cfg.ec_tx_ring_bytes,
	    dr->dr_cfg.ec_rx_ring_bytes, NULL, 0, NULL, NULL);
	if (r != 0) {
		p->free(p->ctx, ed->ed_buf, ed->ed_buflen);
		p->free(p->ctx, ed, sizeof(*ed));
		return r;
	}
	vmbus_device_set_softc(dev, ed);
	dr->dr_dev[slot] = ed;
	dr->dr_ndev++;
	return 0;
}

static void echo_detach(struct vmbus_device *dev)
{
	struct echo_drv *dr = (struct echo_drv *)(uintptr_t)vmbus_device_driver(dev);
	const struct vmbus_platform *p = vmbus_platform(vmbus_device_bus(dev));
	struct echo_dev *ed = vmbus_device_softc(dev);

	if (ed == NULL)
		return;
	/* Close first: the channel may still deliver into ed_buf. */
	(void)vmbus_chan_close(ed->ed_chan);
	for (uint32_t i = 0; i < ECHO_MAX_DEVICES; i++)
		if (dr->dr_dev[i] == ed) {
			dr->dr_dev[i] = NULL;
			dr->dr_ndev--;
		}
	vmbus_device_set_softc(dev, NULL);
	p->free(p->ctx, ed->ed_buf, ed->ed_buflen);
	p->free(p->ctx, ed, sizeof(*ed));
}

int echo_register(struct vmbus *vb, const struct echo_config *cfg)
{
	static const struct hv_guid echo_class = HV_GUID_ECHO_INIT;
	struct echo_drv *dr;
	int r;

	if (vb == NULL)
		return -VMBUS_EINVAL;
	if (echo_drv_of(vb) != NULL)
		return -VMBUS_EEXIST;
	dr = echo_drv_of(NULL);
	if (dr == NULL)
		return -VMBUS_ENOSPC;
	vmbus_memset(dr, 0, sizeof(*dr));
	if (cfg)
		dr->dr_cfg = *cfg;
	if (dr->dr_cfg.ec_tx_ring_bytes == 0)
		dr->dr_cfg.ec_tx_ring_bytes = ECHO_DEFAULT_RING;
	if (dr->dr_cfg.ec_rx_ring_bytes == 0)
		dr->dr_cfg.ec_rx_ring_bytes = ECHO_DEFAULT_RING;
	if (dr->dr_cfg.ec_tx_ring_bytes % 4096u ||
	    dr->dr_cfg.ec_rx_ring_bytes % 4096u ||
	    dr->dr_cfg.ec_tx_ring_bytes < 8192u ||
	    dr->dr_cfg.ec_rx_ring_bytes < 8192u)
		return -VMBUS_EINVAL;
	dr->dr_drv.drv_name = "echo";
	dr->dr_drv.drv_class = echo_class;
	dr->dr_drv.drv_attach = echo_attach;
	dr->dr_drv.drv_detach = echo_detach;
	dr->dr_bus = vb;
	r = vmbus_driver_register(vb, &dr->dr_drv);
	if (r != 0)
		dr->dr_bus = NULL;
	return r;
}

void echo_unregister(struct vmbus *vb)
{
	struct echo_drv *dr = vb ? echo_drv_of(vb) : NULL;

	if (dr)
		vmbus_memset(dr, 0, sizeof(*dr));
}

uint32_t echo_count(struct vmbus *vb)
{
	struct echo_drv *dr = vb ? echo_drv_of(vb) : NULL;

	return dr ? dr->dr_ndev : 0;
}

struct echo_dev *echo_get(struct vmbus *vb, uint32_t index)
{
	struct echo_drv *dr = vb ? echo_drv_of(vb) : NULL;

	if (dr == NULL)
		return NULL;
	for (uint32_t i = 0; i < ECHO_MAX_DEVICES; i++) {
		if (dr->dr_dev[i] == NULL)
			continue;
		if (index-- == 0)
			return dr->dr_dev[i];
	}
	return NULL;
}

struct vmbus_channel *echo_channel(struct echo_dev *ed)
{
	return ed ? ed->ed_chan : NULL;
}

uint32_t echo_max_payload(const struct echo_dev *ed)
{
	uint32_t m;

	if (ed == NULL)
		return 0;
	m = vmbus_chan_max_inband(ed->ed_chan);
	/* the reply must fit our receive buffer and ring too */
	if (m > ed->ed_buflen - 64u)
		m = ed->ed_buflen - 64u;
	return m > ECHO_FRAME_HDR ? (m - ECHO_FRAME_HDR) & ~7u : 0;
}

/* Frame + payload in one send (two gather pieces via a bounce). */
static int echo_send_frame(struct echo_dev *ed, const void *buf, uint32_t len,
    uint64_t seq)
{
	struct echo_frame f;
	uint8_t *tmp = ed->ed_buf;	/* free between receives */
	int r;

	if (len > echo_max_payload(ed))
		return -VMBUS_EINVAL;
	f.ef_magic = hv_cpu_to_le32(ECHO_FRAME_MAGIC);
	f.ef_len = hv_cpu_to_le32(len);
	f.ef_seq = hv_cpu_to_le64(seq);
	vmbus_memcpy(tmp, &f, sizeof(f));
	if (len)
		vmbus_memcpy(tmp + sizeof(f), buf, len);
	r = vmbus_chan_send(ed->ed_chan, VMBUS_PACKET_TYPE_DATA_INBAND, 0, tmp,
	    (uint32_t)sizeof(f) + len, seq);
	if (r == 0)
		ed->ed_stats.es_sent++;
	return r;
}

/*
 * Take one in-band echo: returns 0 with the frame's sequence in *seq and
 * its payload at ed_buf + ECHO_FRAME_HDR (*plen bytes), -VMBUS_EAGAIN, or
 * an error (bad frames: -VMBUS_EPROTO, counted).
 */
static int echo_take(struct echo_dev *ed, uint64_t *seq, uint32_t *plen)
{
	struct vmbus_pkt_info pi;
	struct echo_frame f;
	uint32_t len;
	int r;

	for (;;) {
		len = ed->ed_buflen;
		r = vmbus_chan_recv(ed->ed_chan, ed->ed_buf, &len, &pi);
		if (r != 0)
			return r;
		if (pi.pi_type != VMBUS_PACKET_TYPE_DATA_INBAND)
			continue;	/* completions etc.: not ours */
		if (len < sizeof(f)) {
			ed->ed_stats.es_mismatches++;
			return -VMBUS_EPROTO;
		}
		vmbus_memcpy(&f, ed->ed_buf, sizeof(f));
		*seq = hv_le64(f.ef_seq);
		*plen = hv_le32(f.ef_len);
		/* The echo carries our zero padding: len rounds up to 8. */
		if (hv_le32(f.ef_magic) != ECHO_FRAME_MAGIC ||
		    *plen > len - (uint32_t)sizeof(f) ||
		    len - (uint32_t)sizeof(f) - *plen >= 8u) {
			ed->ed_stats.es_mismatches++;
			return -VMBUS_EPROTO;
		}
		return 0;
	}
}

int echo_roundtrip(struct echo_dev *ed, const void *buf, uint32_t len,
    void *out, uint32_t *outlen, uint64_t timeout_ns)
{
	struct vmbus *vb;
	uint64_t seq, got, t0, elapsed;
	uint32_t plen;
	int r;

	if (ed == NULL || (len && (buf == NULL || out == NULL)) ||
	    outlen == NULL || *outlen < len || len > echo_max_payload(ed))
		return -VMBUS_EINVAL;
	vb = vmbus_chan_bus(ed->ed_chan);
	t0 = vmbus_platform(vb)->now_ns(vmbus_platform(vb)->ctx);
	seq = ++ed->ed_tx_seq;
	for (;;) {
		r = echo_send_frame(ed, buf, len, seq);
		if (r != -VMBUS_EAGAIN)
			break;
		elapsed = vmbus_platform(vb)->now_ns(vmbus_platform(vb)->ctx) - t0;
		if (elapsed >= timeout_ns)
			return -VMBUS_ETIMEDOUT;
		r = vmbus_chan_wait_tx(ed->ed_chan,
		    ECHO_FRAME_HDR + len, timeout_ns - elapsed);
		if (r != 0)
			return r;
	}
	if (r != 0)
		return r;
	for (;;) {
		r = echo_take(ed, &got, &plen);
		if (r == 0) {
			if (got < seq) {
				ed->ed_stats.es_stale++;	/* earlier timeout */
				continue;
			}
			if (got != seq || plen != len ||
			    (len && vmbus_memcmp(ed->ed_buf + ECHO_FRAME_HDR,
			    buf, len) != 0)) {
				ed->ed_stats.es_mismatches++;
				return -VMBUS_EPROTO;
			}
			if (len)
				vmbus_memcpy(out, ed->ed_buf + ECHO_FRAME_HDR, len);
			*outlen = len;
			ed->ed_rx_next = seq + 1;
			ed->ed_stats.es_received++;
			ed->ed_stats.es_bytes += len;
			return 0;
		}
		if (r != -VMBUS_EAGAIN)
			return r;
		elapsed = vmbus_platform(vb)->now_ns(vmbus_platform(vb)->ctx) - t0;
		if (elapsed >= timeout_ns)
			return -VMBUS_ETIMEDOUT;
		r = vmbus_chan_wait_rx(ed->ed_chan, timeout_ns - elapsed);
		if (r != 0)
			return r;
	}
}

int echo_stream_send(struct echo_dev *ed, const void *buf, uint32_t len)
{
	int r;

	if (ed == NULL || (len && buf == NULL))
		return -VMBUS_EINVAL;
	r = echo_send_frame(ed, buf, len, ed->ed_tx_seq + 1);
	if (r == 0)
		ed->ed_tx_seq++;
	return r;
}

int echo_stream_recv(struct echo_dev *ed, void *buf, uint32_t *len)
{
	uint64_t seq;
	uint32_t plen;
	int r;

	if (ed == NULL || len == NULL || (buf == NULL && *len))
		return -VMBUS_EINVAL;
	r = echo_take(ed, &seq, &plen);
	if (r != 0)
		return r;
	/* The packet is consumed: a too-small buffer loses it (ENOBUFS
	 * tells the size for the next call). */
	if (seq != ed->ed_rx_next) {
		ed->ed_stats.es_mismatches++;
		ed->ed_rx_next = seq + 1;
		return -VMBUS_EPROTO;
	}
	ed->ed_rx_next++;
	if (*len < plen) {
		*len = plen;
		return -VMBUS_ENOBUFS;
	}
	if (plen)
		vmbus_memcpy(buf, ed->ed_buf + ECHO_FRAME_HDR, plen);
	*len = plen;
	ed->ed_stats.es_received++;
	ed->ed_stats.es_bytes += plen;
	return 0;
}

int echo_stream_wait(struct echo_dev *ed, bool tx, uint64_t timeout_ns)
{
	if (ed == NULL)
		return -VMBUS_EINVAL;
	if (tx)
		return vmbus_chan_wait_tx(ed->ed_chan, echo_max_payload(ed) +
		    ECHO_FRAME_HDR, timeout_ns);
	return vmbus_chan_wait_rx(ed->ed_chan, timeout_ns);
}

void echo_get_stats(const struct echo_dev *ed, struct echo_stats *out)
{
	if (ed && out)
		*out = ed->ed_stats;
}
