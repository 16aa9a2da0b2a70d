/*
 * host/vsp/ic_shutdown.c - host half of the shutdown IC (spec 4.6): send
 * the request, take the guest's answer, and keep a deadline: a guest that
 * does not answer, or answers S_OK but does not stop in time, is powered
 * off through the config's ic_power_off (hvsim's job: it owns the
 * partition). A guest that refuses keeps running and the deadline is
 * cancelled: refusing is its right.
 */
#include "host/vsp/ic_host_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/loop.h"

const char *hvs_ic_sd_state_name(enum hvs_ic_sd_state s)
{
	switch (s) {
	case HVS_IC_SD_IDLE: return "idle";
	case HVS_IC_SD_SENT: return "sent";
	case HVS_IC_SD_ACCEPTED: return "accepted";
	case HVS_IC_SD_REFUSED: return "refused";
	case HVS_IC_SD_NO_REPLY: return "no_reply";
	case HVS_IC_SD_EXPIRED: return "expired";
	case HVS_IC_SD_DONE: return "done";
	}
	return "?";
}

static bool sd_in_progress(const struct ich_sd *sd)
{
	return sd->sd_state == HVS_IC_SD_SENT ||
	       sd->sd_state == HVS_IC_SD_ACCEPTED ||
	       sd->sd_state == HVS_IC_SD_NO_REPLY;
}

static void sd_cancel_deadline(struct ich_sd *sd)
{
	hvs_loop_timer_cancel(sd->sd_timer);
	sd->sd_timer = NULL;
	sd->sd_deadline_ns = 0;
}

static void sd_finish(struct hvs_ic *ic, int err, uint32_t status)
{
	struct ich_sd *sd = &ic->ic_sd;
	hvs_ic_done_fn *done = sd->sd_done;

	sd->sd_done = NULL;
	if (done)
		done(sd->sd_done_arg, err, status);
}

static void sd_deadline(void *arg)
{
	struct hvs_ic *ic = arg;
	struct ich_sd *sd = &ic->ic_sd;

	/* NOTE: a one-shot timer frees itself after this callback. */
	sd->sd_timer = NULL;
	sd->sd_deadline_ns = 0;
	if (!sd_in_progress(sd))
		return;
	HVS_WARN(ic->ic_vm, "ic-shutdown: the guest did not stop within the "
		 "deadline (%s); powering off", hvs_ic_sd_state_name(
		 sd->sd_state));
	if (sd->sd_state == HVS_IC_SD_SENT)
		sd_finish(ic, -ETIMEDOUT, 0);
	sd->sd_state = HVS_IC_SD_EXPIRED;
	sd->sd_to_send = false;
	if (ic->ic_cfg.ic_power_off)
		ic->ic_cfg.ic_power_off(ic->ic_cfg.ic_power_off_arg,
					"shutdown deadline passed");
}

static void sd_idle(struct ich_dev *d, uint64_t now)
{
	struct ich_sd *sd = &d->d_ic->ic_sd;

	(void)now;
	if (!sd->sd_to_send)
		return;
	if (ich_request(d, sd->sd_msg, sd->sd_msglen) == 0)
		sd->sd_to_send = false;
}

static void sd_negotiated(struct ich_dev *d)
{
	struct ich_sd *sd = &d->d_ic->ic_sd;

	/* The guest came back (rebooted, or reattached) after an accepted
	 * request: it stopped, which is what we waited for. */
	if (sd->sd_state == HVS_IC_SD_ACCEPTED ||
	    sd->sd_state == HVS_IC_SD_NO_REPLY) {
		sd_cancel_deadline(sd);
		sd->sd_state = HVS_IC_SD_DONE;
	}
}

static void sd_reply(struct ich_dev *d, const uint8_t *p, uint32_t len,
		     uint32_t status)
{
	struct hvs_ic *ic = d->d_ic;
	struct ich_sd *sd = &ic->ic_sd;

	(void)p;
	(void)len;
	if (sd->sd_state != HVS_IC_SD_SENT)
		return;
	sd->sd_guest_status = status;
	if (status == IC_STATUS_S_OK) {
		sd->sd_state = HVS_IC_SD_ACCEPTED;
		HVS_INFO(ic->ic_vm, "ic-shutdown: the guest accepted (flags "
			 "%#x)", sd->sd_flags);
	} else {
		sd->sd_state = HVS_IC_SD_REFUSED;
		sd_cancel_deadline(sd);
		HVS_INFO(ic->ic_vm, "ic-shutdown: the guest refused (flags "
			 "%#x, status %#x)", sd->sd_flags, status);
	}
	sd_finish(ic, 0, status);
}

static void sd_failed(struct ich_dev *d, int err)
{
	struct hvs_ic *ic = d->d_ic;
	struct ich_sd *sd = &ic->ic_sd;

	if (sd->sd_state != HVS_IC_SD_SENT)
		return;
	/* No answer: the deadline (if any) decides. */
	sd->sd_state = HVS_IC_SD_NO_REPLY;
	sd_finish(ic, err, 0);
}

static void sd_closed(struct ich_dev *d)
{
	struct ich_sd *sd = &d->d_ic->ic_sd;

	/* Not sent before the channel went away: nobody will answer. */
	if (sd->sd_state == HVS_IC_SD_SENT && sd->sd_to_send) {
		sd->sd_to_send = false;
		sd->sd_state = HVS_IC_SD_NO_REPLY;
		sd_finish(d->d_ic, -ENODEV, 0);
	}
}

const struct ich_ops ich_shutdown_ops = {
	.o_name = "shutdown",
	.o_class = HV_GUID_SHUTDOWN_INIT,
	.o_msgtype = IC_MSGTYPE_SHUTDOWN,
	.o_negotiated = sd_negotiated,
	.o_reply = sd_reply,
	.o_failed = sd_failed,
	.o_idle = sd_idle,
	.o_closed = sd_closed,
};

/* UTF-8 -> UTF-16LE (BMP only; other code points become '?'), bounded,
 * NUL-terminated. */
static void sd_put_text(uint8_t *dst, uint32_t size, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t o = 0;

	while (s && *u && o + 4 <= size) {
		uint32_t c = *u++;

		if (c >= 0xC0 && c < 0xE0 && (*u & 0xC0) == 0x80) {
			c = ((c & 0x1F) << 6) | (*u++ & 0x3F);
		} else if (c >= 0xE0 && c < 0xF0 && (u[0] & 0xC0) == 0x80 &&
			   (u[1] & 0xC0) == 0x80) {
			c = ((c & 0x0F) << 12) | ((u[0] & 0x3Fu) << 6) |
			    (u[1] & 0x3Fu);
			u += 2;
		} else if (c >= 0x80) {
			c = '?';
			while ((*u & 0xC0) == 0x80)
				u++;
		}
		ich_put16(dst + o, (uint16_t)c);
		o += 2;
	}
}

int hvs_ic_shutdown(struct hvs_ic *ic, uint32_t flags, uint64_t deadline_ns,
		    const char *message, hvs_ic_done_fn *done, void *arg)
{
	struct ich_dev *d;
	struct ich_sd *sd;
	uint64_t now = ich_now(), secs;

	if (ic == NULL)
		return -EINVAL;
	if (flags & ~(HVS_IC_SD_FORCE | HVS_IC_SD_REBOOT | HVS_IC_SD_HIBERNATE) ||
	    (flags & HVS_IC_SD_REBOOT && flags & HVS_IC_SD_HIBERNATE))
		return -EINVAL;
	d = &ic->ic_dev[HVS_IC_SHUTDOWN];
	sd = &ic->ic_sd;
	if (!d->d_registered || !ich_ready(d))
		return -ENODEV;
	if (sd_in_progress(sd))
		return -EBUSY;
	/* Hibernate came with shutdown 3.2 (ic_host.c header). */
	if ((flags & HVS_IC_SD_HIBERNATE) &&
	    (d->d_msg.major < 3 || (d->d_msg.major == 3 && d->d_msg.minor < 2)))
		return -EOPNOTSUPP;
	if (deadline_ns == 0)
		deadline_ns = ic->ic_cfg.ic_shutdown_deadline_ns;

	memset(sd->sd_msg, 0, sizeof(struct ic_shutdown));
	ich_put_hdr(d, sd->sd_msg, IC_MSGTYPE_SHUTDOWN,
		    sizeof(struct ic_shutdown) - IC_HDR_SIZE);
	ich_put32(sd->sd_msg + 28, IC_SHUTDOWN_REASON_PLANNED);
	secs = deadline_ns == UINT64_MAX ? 0 : (deadline_ns + ICH_NS - 1) / ICH_NS;
	ich_put32(sd->sd_msg + 32, secs > UINT32_MAX ? UINT32_MAX : (uint32_t)secs);
	ich_put32(sd->sd_msg + 36, flags);
	sd_put_text(sd->sd_msg + 40, IC_SHUTDOWN_MSG_SIZE, message);
	sd->sd_msglen = sizeof(struct ic_shutdown);

	sd_cancel_deadline(sd);
	sd->sd_state = HVS_IC_SD_SENT;
	sd->sd_flags = flags;
	sd->sd_guest_status = 0;
	sd->sd_req_ns = now;
	sd->sd_done = done;
	sd->sd_done_arg = arg;
	sd->sd_to_send = true;
	if (deadline_ns != UINT64_MAX) {
		sd->sd_deadline_ns = now + deadline_ns;
		sd->sd_timer = hvs_loop_timer_add(ic->ic_cfg.ic_loop,
						  deadline_ns, 0, sd_deadline,
						  ic);
		if (sd->sd_timer == NULL) {
			sd->sd_state = HVS_IC_SD_IDLE;
			sd->sd_to_send = false;
			sd->sd_deadline_ns = 0;
			sd->sd_done = NULL;
			return -ENOMEM;
		}
	}
	HVS_INFO(ic->ic_vm, "ic-shutdown: requesting %s%s",
		 flags & HVS_IC_SD_REBOOT ? "reboot" :
		 flags & HVS_IC_SD_HIBERNATE ? "hibernate" : "shutdown",
		 flags & HVS_IC_SD_FORCE ? " (forced)" : "");
	ich_pump(ic);
	return 0;
}

void ich_sd_partition_ended(struct hvs_ic *ic)
{
	struct ich_sd *sd = &ic->ic_sd;

	if (sd_in_progress(sd)) {
		sd->sd_to_send = false;
		sd->sd_state = HVS_IC_SD_DONE;
		sd_finish(ic, -ENODEV, 0);
	}
	sd_cancel_deadline(sd);
}

void ich_sd_fini(struct hvs_ic *ic)
{
	sd_cancel_deadline(&ic->ic_sd);
	free(ic->ic_sd.sd_msg);
	ic->ic_sd.sd_msg = NULL;
}

int hvs_ic_shutdown_status(const struct hvs_ic *ic,
			   struct hvs_ic_sd_status *out)
{
	const struct ich_sd *sd;
	uint64_t now = ich_now();

	if (ic == NULL || out == NULL)
		return -EINVAL;
	if (!ic->ic_dev[HVS_IC_SHUTDOWN].d_registered)
		return -ENODEV;
	sd = &ic->ic_sd;
	memset(out, 0, sizeof(*out));
	out->sd_state = sd->sd_state;
	out->sd_flags = sd->sd_flags;
	out->sd_guest_status = sd->sd_guest_status;
	if (sd->sd_req_ns)
		out->sd_since_request_ns = now - sd->sd_req_ns;
	if (sd->sd_deadline_ns > now)
		out->sd_deadline_left_ns = sd->sd_deadline_ns - now;
	return 0;
}
