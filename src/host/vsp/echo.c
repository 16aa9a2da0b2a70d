/*
 * host/vsp/echo.c - the echo VSP (class HV_GUID_ECHO), the host half of
 * the project's own test device (host/vsp/echo.h).
 *
 * Per guest packet:
 *  - in-band: the same payload comes back in-band (same trans_id, no
 *    completion requested); then, if the guest asked for a completion, an
 *    empty completion (type 0xB) with the same trans_id.
 *  - GPA direct: the bytes of the described guest pages come back in-band
 *    (same trans_id), then the completion if requested.
 *  - in-band payload starting with ECHO_SUBCH_MAGIC: offers subchannels
 *    (see echo.h), then the normal echo.
 *  - completions and transfer-page packets from the guest: counted, ignored.
 *
 * Flow control: replies that do not fit stay queued (at most two packets,
 * pointing into this channel's private buffers); the channel stops
 * consuming with its incoming ring masked; hvs_chan_send() has set
 * pending_send_sz, so the guest signals once it has read enough, and the
 * next vo_on_signal sends the queue and resumes.
 */
#include "host/vsp/echo.h"

#include <stdlib.h>
#include <string.h>

#include "host/log.h"
#include "host/vmbus_server.h"
#include "host/vsp/vsp.h"
#include "hv/guid.h"
#include "vmbus/errno.h"

struct echo_out {
	uint16_t eo_type;
	uint16_t eo_flags;
	uint64_t eo_tid;
	const void *eo_data;
	uint32_t eo_len;
};

struct echo_chan {
	uint8_t *ec_buf;          /* received packet, in-ring max packet */
	uint32_t ec_buflen;
	uint8_t *ec_gpa;          /* bytes read through GPA direct */
	uint32_t ec_gpalen;
	struct echo_out ec_q[2];  /* replies not yet sent */
	unsigned ec_qn, ec_qi;
	uint64_t ec_echoed;
};

static struct hvs_ratelimit echo_rl;
static atomic_uint_fast64_t echo_errors;

static int echo_open(void *arg, struct hvs_channel *ch)
{
	(void)arg;
	struct echo_chan *ec = calloc(1, sizeof(*ec));
	if (ec == NULL)
		return -VMBUS_ENOMEM;
	ec->ec_buflen = hvs_chan_in_max_packet(ch);
	/* an echo must fit one outgoing packet: descriptor + data */
	ec->ec_gpalen = hvs_chan_out_max_packet(ch) - 16u;
	ec->ec_buf = malloc(ec->ec_buflen);
	ec->ec_gpa = malloc(ec->ec_gpalen);
	if (ec->ec_buf == NULL || ec->ec_gpa == NULL) {
		free(ec->ec_buf);
		free(ec->ec_gpa);
		free(ec);
		return -VMBUS_ENOMEM;
	}
	hvs_chan_set_priv(ch, ec);
	return 0;
}

static void echo_close(void *arg, struct hvs_channel *ch, int why)
{
	(void)arg;
	(void)why;
	struct echo_chan *ec = hvs_chan_priv(ch);
	if (ec == NULL)
		return;
	hvs_chan_set_priv(ch, NULL);
	free(ec->ec_buf);
	free(ec->ec_gpa);
	free(ec);
}

static void queue(struct echo_chan *ec, uint16_t type, uint64_t tid,
		  const void *data, uint32_t len)
{
	struct echo_out *o = &ec->ec_q[ec->ec_qn++];
	o->eo_type = type;
	o->eo_flags = 0;
	o->eo_tid = tid;
	o->eo_data = data;
	o->eo_len = len;
}

/* Send what is queued. false: blocked (ring full) or broken. */
static bool flush(struct hvs_channel *ch, struct echo_chan *ec)
{
	while (ec->ec_qi < ec->ec_qn) {
		struct echo_out *o = &ec->ec_q[ec->ec_qi];
		int r = hvs_chan_send(ch, o->eo_type, o->eo_flags, o->eo_tid,
				      o->eo_data, o->eo_len);
		if (r == -VMBUS_EAGAIN)
			return false;
		if (r == -VMBUS_EPROTO || r == -VMBUS_ENODEV)
			return false;
		if (r != 0)
			hvs_log_guest(&echo_rl, &echo_errors,
				      hvs_vmbus_name(hvs_chan_server(ch)),
				      "echo: %s: reply of %u bytes dropped: %d",
				      hvs_chan_name(ch), o->eo_len, r);
		else
			ec->ec_echoed++;
		ec->ec_qi++;
	}
	ec->ec_qi = ec->ec_qn = 0;
	return true;
}

static void subchannel_request(struct hvs_channel *ch, const struct hvs_pkt *pk)
{
	if (pk->pk_datalen < ECHO_SUBCH_MAGIC_LEN + 2u ||
	    memcmp(pk->pk_data, ECHO_SUBCH_MAGIC, ECHO_SUBCH_MAGIC_LEN) != 0 ||
	    hvs_chan_sub_index(ch) != 0)
		return;
	uint16_t n = hv_get_le16(pk->pk_data + ECHO_SUBCH_MAGIC_LEN);
	for (uint16_t i = 1; i <= n && i <= ECHO_MAX_SUBCHANNELS; i++) {
		int r = hvs_vmbus_offer_subchannel(hvs_chan_server(ch),
						   hvs_chan_relid(ch), i);
		if (r < 0 && r != -VMBUS_EEXIST)
			HVS_WARN(hvs_vmbus_name(hvs_chan_server(ch)),
				 "echo: %s: subchannel %u not offered: %d",
				 hvs_chan_name(ch), i, r);
	}
}

static void handle(struct hvs_channel *ch, struct echo_chan *ec,
		   const struct hvs_pkt *pk)
{
	const char *vm = hvs_vmbus_name(hvs_chan_server(ch));
	bool want_comp = pk->pk_flags & VMBUS_PACKET_FLAG_COMPLETION_REQUESTED;

	switch (pk->pk_type) {
	case VMBUS_PACKET_TYPE_DATA_INBAND:
		subchannel_request(ch, pk);
		queue(ec, VMBUS_PACKET_TYPE_DATA_INBAND, pk->pk_trans_id,
		      pk->pk_data, pk->pk_datalen);
		break;
	case VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT:
		if (pk->pk_gpa_bytes > ec->ec_gpalen) {
			hvs_log_guest(&echo_rl, &echo_errors, vm,
				      "echo: %s: GPA-direct buffer of %llu "
				      "bytes too large to echo",
				      hvs_chan_name(ch),
				      (unsigned long long)pk->pk_gpa_bytes);
			break;
		}
		if (hvs_pkt_gpa_read(ch, pk, 0, ec->ec_gpa,
				     (uint32_t)pk->pk_gpa_bytes) != 0)
			break; /* logged and counted by the framework */
		queue(ec, VMBUS_PACKET_TYPE_DATA_INBAND, pk->pk_trans_id,
		      ec->ec_gpa, (uint32_t)pk->pk_gpa_bytes);
		break;
	default:
		/* completions and transfer pages: nothing to echo */
		return;
	}
	if (want_comp)
		queue(ec, VMBUS_PACKET_TYPE_COMP, pk->pk_trans_id, NULL, 0);
}

static void echo_on_signal(void *arg, struct hvs_channel *ch)
{
	(void)arg;
	struct echo_chan *ec = hvs_chan_priv(ch);
	struct hvs_pkt pk;
	int r;

	if (ec == NULL)
		return;
	if (!flush(ch, ec))
		return; /* still blocked: incoming stays masked */
	for (;;) {
		hvs_chan_mask(ch);
		while ((r = hvs_chan_recv(ch, &pk, ec->ec_buf, ec->ec_buflen,
					  NULL)) == 0) {
			handle(ch, ec, &pk);
			if (!flush(ch, ec)) {
				/* NOTE: return the space we consumed before
				 * waiting for the guest to read ours. */
				hvs_chan_recv_done(ch);
				return;
			}
		}
		hvs_chan_recv_done(ch);
		if (r != -VMBUS_EAGAIN)
			return; /* broken (logged) or closed */
		if (hvs_chan_unmask(ch) == 0)
			return;
	}
}

static const struct hvs_vsp_ops echo_ops = {
	.vo_open = echo_open,
	.vo_close = echo_close,
	.vo_on_signal = echo_on_signal,
};

int hvs_echo_add(struct hvs_vmbus *s, const struct hv_guid *instance)
{
	static const struct hv_guid echo_class = HV_GUID_ECHO_INIT;
	struct hvs_device_opts opts;

	memset(&opts, 0, sizeof(opts));
	opts.do_max_subchannels = ECHO_MAX_SUBCHANNELS;
	return hvs_vmbus_add_device(s, &echo_ops, NULL, &echo_class, instance,
				    &opts);
}
