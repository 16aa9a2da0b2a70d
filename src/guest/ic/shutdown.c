/*
 * guest/ic/shutdown.c - the shutdown IC (spec/vmbus-devices.md 4.6): the
 * host asks the guest to power off, reboot or hibernate; the guest answers
 * S_OK and then does it, or answers E_FAIL and does nothing.
 *
 * Flag values accepted (L's reading of spec 4.6): 0/1 power off, 2/3
 * reboot, 4/5 hibernate (bit 0, "force", changes nothing: the action is
 * always carried out). Anything else is refused (hostile-host item 20).
 * Hibernate exists from service version 3.2 on (the version Linux added
 * with its hibernate support) and only if the OS said it can.
 */
#include "ic_priv.h"

static const struct ic_ver sd_versions[] = IC_SHUTDOWN_GUEST_VERSIONS;
#define SD_NVERS (sizeof(sd_versions) / sizeof(sd_versions[0]))

static const struct ic_ver sd_hibernate_min = { 3, 2 };

/* Keep printable ASCII of the host's text (it may be UTF-16: NUL bytes
 * between characters are skipped, two in a row end it). */
static void sd_copy_message(char *dst, uint32_t dsize, const uint8_t *src,
    uint32_t slen)
{
	uint32_t o = 0;

	for (uint32_t i = 0; i < slen && o + 1 < dsize; i++) {
		uint8_t c = src[i];

		if (c == 0) {
			if (i + 1 >= slen || src[i + 1] == 0)
				break;
			continue;
		}
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[o] = '\0';
}

static const char *sd_action_name(enum ic_power_action a)
{
	switch (a) {
	case IC_POWER_OFF: return "power off";
	case IC_POWER_REBOOT: return "reboot";
	case IC_POWER_HIBERNATE: return "hibernate";
	}
	return "?";
}

static uint32_t sd_handle(struct ic_svc *svc, struct ic_msg *m)
{
	struct ic_services *ics = svc->sv_ics;
	const struct vmbus_platform *p = ics->ics_plat;
	struct ic_sd *sd = &ics->ics_sd;
	struct ic_shutdown req;
	enum ic_power_action action;
	uint32_t flags, reason, tmo, textlen, len;
	bool can;

	len = IC_HDR_SIZE + m->im_body_len;
	ic_lock(svc);
	sd->sd_status.ss_requests++;
	ic_unlock(svc);
	if (len < IC_SHUTDOWN_MINLEN) {
		ic_log_bad(svc, "ic-shutdown: %u-byte body is short",
		    m->im_body_len);
		IC_COUNT(svc, is_malformed);
		goto refuse;
	}
	vmbus_memset(&req, 0, sizeof(req));
	vmbus_memcpy(&req, m->im_buf, len < sizeof(req) ? len : sizeof(req));
	flags = hv_le32(req.isd_flags);
	reason = hv_le32(req.isd_reason_code);
	tmo = hv_le32(req.isd_timeout_seconds);
	textlen = len - IC_SHUTDOWN_MINLEN;
	if (textlen > IC_SHUTDOWN_MSG_SIZE)
		textlen = IC_SHUTDOWN_MSG_SIZE;

	switch (flags) {
	case 0:
	case IC_SHUTDOWN_FLAG_FORCE:
		action = IC_POWER_OFF;
		can = ics->ics_cfg.icc_shutdown_action || p->power_off;
		break;
	case IC_SHUTDOWN_FLAG_RESTART:
	case IC_SHUTDOWN_FLAG_RESTART | IC_SHUTDOWN_FLAG_FORCE:
		action = IC_POWER_REBOOT;
		can = ics->ics_cfg.icc_shutdown_action || p->reboot;
		break;
	case IC_SHUTDOWN_FLAG_HIBERNATE:
	case IC_SHUTDOWN_FLAG_HIBERNATE | IC_SHUTDOWN_FLAG_FORCE:
		action = IC_POWER_HIBERNATE;
		can = ics->ics_cfg.icc_hibernate &&
		    ics->ics_cfg.icc_shutdown_action &&
		    ic_ver_cmp(ic_svc_version(svc), sd_hibernate_min) >= 0;
		break;
	default:
		ic_log_bad(svc, "ic-shutdown: unknown flags %#x refused", flags);
		IC_COUNT(svc, is_malformed);
		goto refuse;
	}
	if (!can) {
		ic_log(ics, VMBUS_LOG_WARN, "ic-shutdown: %s requested but not "
		    "available here; refused", sd_action_name(action));
		goto refuse;
	}

	ic_lock(svc);
	sd->sd_status.ss_accepted++;
	sd->sd_status.ss_last_flags = flags;
	sd->sd_status.ss_last_reason = reason;
	sd_copy_message(sd->sd_status.ss_last_message,
	    sizeof(sd->sd_status.ss_last_message), req.isd_display_message,
	    textlen);
	if (!sd->sd_pending) {
		sd->sd_pending = true;
		sd->sd_action = action;
	}
	ic_unlock(svc);
	ic_log(ics, VMBUS_LOG_INFO, "ic-shutdown: host requests %s (flags %#x, "
	    "reason %#x, timeout %u s)", sd_action_name(action), flags, reason,
	    tmo);

	/* Spec 4.6: answer first, then act (the work runs after the reply). */
	ic_msg_set_status(m, IC_STATUS_S_OK);
	(void)ic_reply(svc, m, len);
	ic_work_schedule(svc, &sd->sd_work);
	return 0;

refuse:
	ic_lock(svc);
	sd->sd_status.ss_refused++;
	ic_unlock(svc);
	ic_msg_set_status(m, IC_STATUS_E_FAIL);
	return len;
}

static void sd_work(void *arg)
{
	struct ic_services *ics = arg;
	struct ic_svc *svc = &ics->ics_svc[IC_SVC_SHUTDOWN];
	const struct vmbus_platform *p = ics->ics_plat;
	struct ic_sd *sd = &ics->ics_sd;
	enum ic_power_action action;
	int r;

	ic_lock(svc);
	if (!sd->sd_pending) {
		ic_unlock(svc);
		return;
	}
	action = sd->sd_action;
	ic_unlock(svc);

	ic_log(ics, VMBUS_LOG_INFO, "ic-shutdown: performing %s",
	    sd_action_name(action));
	if (ics->ics_cfg.icc_shutdown_action)
		r = ics->ics_cfg.icc_shutdown_action(
		    ics->ics_cfg.icc_shutdown_arg, action);
	else if (action == IC_POWER_REBOOT)
		r = p->reboot ? p->reboot(p->ctx) : -VMBUS_ENOSYS;
	else
		r = p->power_off ? p->power_off(p->ctx) : -VMBUS_ENOSYS;

	/* Only reached when the action failed (or the OS hook returned). */
	ic_lock(svc);
	sd->sd_pending = false;
	if (r != 0)
		sd->sd_status.ss_action_failures++;
	ic_unlock(svc);
	if (r != 0)
		ic_log(ics, VMBUS_LOG_ERR, "ic-shutdown: %s failed (%d)",
		    sd_action_name(action), r);
}

void ic_shutdown_init(struct ic_services *ics)
{
	ic_work_init(&ics->ics_sd.sd_work, ics, sd_work, ics);
}

int ic_shutdown_get_status(struct ic_services *ics,
    struct ic_shutdown_status *out)
{
	struct ic_svc *svc;

	if (ics == NULL || out == NULL)
		return -VMBUS_EINVAL;
	svc = &ics->ics_svc[IC_SVC_SHUTDOWN];
	ic_lock(svc);
	*out = ics->ics_sd.sd_status;
	ic_unlock(svc);
	return 0;
}

const struct ic_svc_ops ic_shutdown_ops = {
	.so_name = "shutdown",
	.so_class = HV_GUID_SHUTDOWN_INIT,
	.so_msgtype = IC_MSGTYPE_SHUTDOWN,
	.so_versions = sd_versions,
	.so_nversions = SD_NVERS,
	.so_handle = sd_handle,
};
