/*
 * host/vmbus_server.c - the VMBus server: connection life (version
 * negotiation, UNLOAD, reconnect), channel message dispatch, the outbox of
 * host -> guest messages, the device registry and listings.
 *
 * GPADL assembly lives in vmbus/gpadl.c, channel open/close/rescind/offers
 * in vmbus/chan.c, ring packet I/O in vsp/vsp.c.
 *
 * Every guest message is copied once into a zeroed private 240-byte buffer
 * (the one copy-in for SynIC messages), its true length is checked against
 * the minimum for its type and version, and only then handled. A bad
 * message is logged (rate-limited, VM-prefixed), counted, and dropped.
 */
#include "host/vmbus_server.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/guid.h"
#include "vmbus/errno.h"
#include "host/vmbus/srv_priv.h"

/* ---- outbox: host -> guest messages ------------------------------------- */

static int post_now(struct hvs_vmbus *s, uint32_t vp, uint32_t sint,
		    const void *buf, uint32_t len)
{
	return hvs_partition_post_message(s->vs_p, vp, sint, VMBUS_MESSAGE_TYPE,
					  buf, len);
}

/* Retry queued messages in order until the partition's queue is full (or
 * a delayed one is not due: hvs_vmbus_poll comes back). */
static void outbox_flush(struct hvs_vmbus *s)
{
	while (s->vs_ob_head != NULL && s->vs_p != NULL && !s->vs_ended) {
		struct hvs_outmsg *om = s->vs_ob_head;
		if (om->om_not_before_ns != 0 &&
		    hvs_now_ns() < om->om_not_before_ns)
			return;
		int r = post_now(s, om->om_vp, om->om_sint, om->om_buf,
				 om->om_len);
		if (r == -VMBUS_EAGAIN) {
			s->vs_ob_retries++;
			return;
		}
		if (r != 0)
			HVS_WARN(s->vs_name,
				 "vmbus: message type %u to vp %u dropped: %d",
				 hv_get_le32(om->om_buf), om->om_vp, r);
		s->vs_ob_head = om->om_next;
		if (s->vs_ob_head == NULL)
			s->vs_ob_tail = NULL;
		s->vs_ob_count--;
		free(om);
	}
}

static void outbox_clear(struct hvs_vmbus *s)
{
	while (s->vs_ob_head != NULL) {
		struct hvs_outmsg *om = s->vs_ob_head;
		s->vs_ob_head = om->om_next;
		free(om);
	}
	s->vs_ob_tail = NULL;
	s->vs_ob_count = 0;
}

static void send_msg_to(struct hvs_vmbus *s, uint32_t vp, uint32_t sint,
			const void *msg, uint32_t len)
{
	uint32_t type = hv_get_le32(msg);

	if (s->vs_p == NULL || s->vs_ended)
		return;
	if (hvs_srv_fault(s, "withhold_reply", "type", type, NULL)) {
		HVS_INFO(s->vs_name, "vmbus: fault withhold_reply: type %u "
			 "withheld", type);
		return;
	}
	struct hvs_fault_args fa;
	uint64_t not_before = 0;
	if (hvs_srv_fault(s, "delay_message", "type", type, &fa)) {
		int64_t ms = hvs_fault_param(&fa, "ms", 500);
		if (ms < 0 || ms > 3600000)
			ms = 500;
		not_before = hvs_now_ns() + (uint64_t)ms * 1000000ull;
		HVS_INFO(s->vs_name, "vmbus: fault delay_message: type %u "
			 "held %lld ms", type, (long long)ms);
	}
	s->vs_msgs_out++;
	if (s->vs_ob_head == NULL && not_before == 0) {
		int r = post_now(s, vp, sint, msg, len);
		if (r == 0)
			return;
		if (r != -VMBUS_EAGAIN) {
			HVS_WARN(s->vs_name, "vmbus: message type %u to vp %u "
				 "dropped: %d", type, vp, r);
			return;
		}
	}
	/* NOTE: keep order: once anything is queued, everything queues. */
	struct hvs_outmsg *om = calloc(1, sizeof(*om));
	if (om == NULL) {
		HVS_ERR(s->vs_name, "vmbus: out of memory, message type %u "
			"to vp %u lost", type, vp);
		return;
	}
	om->om_vp = vp;
	om->om_sint = sint;
	om->om_len = len;
	om->om_not_before_ns = not_before;
	memcpy(om->om_buf, msg, len);
	if (s->vs_ob_tail != NULL)
		s->vs_ob_tail->om_next = om;
	else
		s->vs_ob_head = om;
	s->vs_ob_tail = om;
	s->vs_ob_count++;
}

void hvs_srv_send_msg(struct hvs_vmbus *s, const void *msg, uint32_t len)
{
	send_msg_to(s, s->vs_msg_vp, VMBUS_MESSAGE_SINT, msg, len);
}

/* ---- fault hooks ---------------------------------------------------------- */

bool hvs_srv_fault(struct hvs_vmbus *s, const char *name, const char *filter,
		   int64_t value, struct hvs_fault_args *a)
{
	/* Lock-free while the hook is off; a filtered-out event is not
	 * counted (host/fault.h). */
	const char *const keys[1] = { filter };

	return hvs_fault_check_match(name, s->vs_name, keys, &value,
				     filter != NULL ? 1u : 0u, a);
}

/* ---- connection state ----------------------------------------------------- */

/*
 * Forget the connection: close every open channel (VSP close with why),
 * release rescinded channels and subchannels, return primaries to
 * UNOFFERED, drop every GPADL. touch_guest false after the partition ended.
 */
static void srv_reset(struct hvs_vmbus *s, int why)
{
	for (uint32_t relid = 1; relid <= s->vs_relid_top; relid++) {
		struct hvs_channel *ch = s->vs_chan[relid];
		if (ch == NULL)
			continue;
		if (ch->ch_state == HVS_CHAN_OPEN)
			hvs_chan_close_host(ch, why);
		if (ch->ch_state == HVS_CHAN_RESCINDED || ch->ch_sub != 0) {
			/* NOTE: subchannels belong to one connection; the
			 * device protocol asks for them again. */
			hvs_chan_free(s, ch);
			continue;
		}
		ch->ch_state = HVS_CHAN_UNOFFERED;
	}
	hvs_gpadl_free_all(s);
	s->vs_connected = false;
	s->vs_version = 0;
	s->vs_msg_vp = 0;
	s->vs_int_page = 0;
	s->vs_mon1 = s->vs_mon2 = 0;
	s->vs_features = 0;
	s->vs_offers_requested = false;
}

static bool gpa_page_ok(struct hvs_vmbus *s, uint64_t gpa)
{
	return gpa != 0 && (gpa & HV_PAGE_MASK) == 0 &&
	       hvs_gpa_map(s->vs_p, gpa, HV_PAGE_SIZE) != NULL;
}

static void handle_initiate_contact(struct hvs_vmbus *s, const uint8_t *m,
				    uint32_t len)
{
	struct vmbus_chanmsg_initiate_contact ic;
	struct vmbus_chanmsg_version_response vr;
	uint32_t vr_len = VMBUS_CHANMSG_VERSION_RESPONSE_SIZE;

	memset(&ic, 0, sizeof(ic));
	memcpy(&ic, m, len < sizeof(ic) ? len : sizeof(ic));
	uint32_t ver = hv_le32(ic.ic_vmbus_version_requested);
	uint32_t target = hv_le32(ic.ic_target_vcpu);
	uint64_t mon1 = hv_le64(ic.ic_monitor_page1);
	uint64_t mon2 = hv_le64(ic.ic_monitor_page2);
	uint32_t vp = 0, sint = VMBUS_MESSAGE_SINT;

	if (s->vs_connected) {
		/* Implicit disconnect (OVMM): release everything first. */
		HVS_INFO(s->vs_name, "vmbus: INITIATE_CONTACT while connected "
			 "(version %u.%u): disconnecting",
			 VMBUS_VERSION_MAJOR(s->vs_version),
			 VMBUS_VERSION_MINOR(s->vs_version));
		srv_reset(s, HVS_CLOSE_RESET);
	}

	memset(&vr, 0, sizeof(vr));
	vr.vr_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_VERSION_RESPONSE);

	bool ok = vmbus_version_known(ver) && ver <= s->vs_max_version;
	const char *why = ok ? NULL : "version not supported by this host";

	/* Messages go to target_vcpu from 3.0 on, else VP 0 (spec 1.12). */
	if (ver >= VMBUS_VERSION_WIN8_1) {
		if (target < hvs_partition_vcpu_count(s->vs_p)) {
			vp = target;
		} else if (ok) {
			ok = false;
			why = "target_vcpu out of range";
		}
	}
	if (ok && ver >= VMBUS_VERSION_WIN10_RS3_1) {
		if (ic.ic_msg_sint != VMBUS_MESSAGE_SINT) {
			ok = false;
			why = "msg_sint is not 2";
			/* "unsupported" goes to the SINT the guest named */
			sint = ic.ic_msg_sint;
		} else if (ver >= VMBUS_VERSION_WIN10_RS4 &&
			   ic.ic_msg_vtl != 0) {
			ok = false;
			why = "msg_vtl is not 0";
		}
		if (ic.ic_rsvd != 0 ||
		    (ver < VMBUS_VERSION_COPPER && ic.ic_feature_flags != 0)) {
			s->vs_rsvd_nonzero++;
			HVS_DEBUG(s->vs_name, "vmbus: INITIATE_CONTACT reserved "
				  "bytes not zero");
		}
	}
	if (ok && ver < VMBUS_VERSION_WIN8 &&
	    !gpa_page_ok(s, hv_le64(ic.ic_interrupt_page))) {
		ok = false;
		why = "bad interrupt page GPA";
	}
	if (!ok) {
		/* Guests walk down their version list: a version this host
		 * does not speak is normal, anything else is the guest's
		 * fault. */
		if (vmbus_version_known(ver) && ver > s->vs_max_version)
			HVS_INFO(s->vs_name, "vmbus: INITIATE_CONTACT version "
				 "%u.%u refused: %s", VMBUS_VERSION_MAJOR(ver),
				 VMBUS_VERSION_MINOR(ver), why);
		else
			SRV_BAD(s, "vmbus: INITIATE_CONTACT version %u.%u "
				"refused: %s", VMBUS_VERSION_MAJOR(ver),
				VMBUS_VERSION_MINOR(ver), why);
		if (sint >= HV_SYNIC_SINT_COUNT)
			return;
		vr.vr_version_supported = 0;
		send_msg_to(s, vp, sint, &vr, vr_len);
		return;
	}

	vr.vr_version_supported = 1;
	if ((mon1 == 0) != (mon2 == 0) ||
	    (s->vs_monitored && mon1 != 0 &&
	     (!gpa_page_ok(s, mon1) || !gpa_page_ok(s, mon2)))) {
		/* Both monitor pages or none (OVMM: FAILED_UNKNOWN_FAILURE). */
		SRV_BAD(s, "vmbus: INITIATE_CONTACT bad monitor pages "
			"0x%" PRIx64 " 0x%" PRIx64, mon1, mon2);
		vr.vr_connection_state = VMBUS_CONNECTION_FAILED_UNKNOWN_FAILURE;
		send_msg_to(s, vp, sint, &vr, vr_len);
		return;
	}

	s->vs_connected = true;
	s->vs_version = ver;
	s->vs_msg_vp = vp;
	s->vs_offers_requested = false;
	if (ver < VMBUS_VERSION_WIN8)
		s->vs_int_page = hv_le64(ic.ic_interrupt_page);
	if (s->vs_monitored) {
		s->vs_mon1 = mon1;
		s->vs_mon2 = mon2;
	}
	vr.vr_connection_state = VMBUS_CONNECTION_SUCCESSFUL;
	if (ver >= VMBUS_VERSION_WIN10_RS3_1)
		vr.vr_msg_conn_id = hv_cpu_to_le32(HVS_MSG_CONNID);
	else
		vr.vr_msg_conn_id = hv_cpu_to_le32(ver);
	if (ver >= VMBUS_VERSION_COPPER) {
		uint32_t want = hv_le32(ic.ic_feature_flags);
		uint32_t grant = want & HVS_FEATURES_SUPPORTED;
		if (len < VMBUS_CHANMSG_INITIATE_CONTACT_SIZE_CLIENT_ID)
			grant &= ~VMBUS_FEATURE_CLIENT_ID;
		s->vs_features = grant;
		vr.vr_supported_features = hv_cpu_to_le32(grant);
		vr_len = VMBUS_CHANMSG_VERSION_RESPONSE_SIZE_V6;
	}
	HVS_INFO(s->vs_name, "vmbus: connected, version %u.%u, messages to "
		 "vp %u", VMBUS_VERSION_MAJOR(ver), VMBUS_VERSION_MINOR(ver),
		 vp);
	hvs_srv_send_msg(s, &vr, vr_len);
}

static int offer_cmp(const void *a, const void *b)
{
	const struct hvs_channel *x = *(const struct hvs_channel *const *)a;
	const struct hvs_channel *y = *(const struct hvs_channel *const *)b;
	int c = hvs_guid_cmp(&x->ch_dev->dv_class, &y->ch_dev->dv_class);
	if (c == 0)
		c = hvs_guid_cmp(&x->ch_dev->dv_instance,
				 &y->ch_dev->dv_instance);
	if (c == 0)
		c = (int)x->ch_sub - (int)y->ch_sub;
	return c;
}

static void handle_request_offers(struct hvs_vmbus *s)
{
	struct hvs_channel *list[HVS_RELID_MAX];
	size_t n = 0;

	if (s->vs_offers_requested) {
		/* Only one REQUESTOFFERS per connection (OVMM). */
		SRV_BAD(s, "vmbus: second REQUESTOFFERS ignored");
		return;
	}
	s->vs_offers_requested = true;
	for (uint32_t relid = 1; relid <= s->vs_relid_top; relid++) {
		struct hvs_channel *ch = s->vs_chan[relid];
		if (ch != NULL && ch->ch_state == HVS_CHAN_UNOFFERED)
			list[n++] = ch;
	}
	/* Sorted by class, then instance, then sub index (as OVMM does). */
	qsort(list, n, sizeof(list[0]), offer_cmp);
	for (size_t i = 0; i < n; i++)
		hvs_chan_send_offer(s, list[i]);

	struct vmbus_chanmsg_alloffers_delivered ad;
	memset(&ad, 0, sizeof(ad));
	ad.ad_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
	hvs_srv_send_msg(s, &ad, VMBUS_CHANMSG_ALLOFFERS_DELIVERED_SIZE);
}

static void handle_unload(struct hvs_vmbus *s)
{
	uint32_t vp = s->vs_msg_vp;
	uint32_t ver = s->vs_version;

	HVS_INFO(s->vs_name, "vmbus: UNLOAD");
	srv_reset(s, HVS_CLOSE_RESET);
	if (ver >= VMBUS_VERSION_WIN7) {
		struct vmbus_chanmsg_unload_response ur;
		memset(&ur, 0, sizeof(ur));
		ur.ur_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_UNLOAD_RESPONSE);
		send_msg_to(s, vp, VMBUS_MESSAGE_SINT, &ur,
			    VMBUS_CHANMSG_UNLOAD_RESPONSE_SIZE);
	}
}

static void handle_tl_connect(struct hvs_vmbus *s, const uint8_t *m,
			      uint32_t len)
{
	struct vmbus_chanmsg_tl_connect_request rq;
	memset(&rq, 0, sizeof(rq));
	memcpy(&rq, m, len < sizeof(rq) ? len : sizeof(rq));
	HVS_INFO(s->vs_name, "vmbus: TL_CONNECT_REQUEST refused (no hv_sock "
		 "services)");
	if (s->vs_version < VMBUS_VERSION_WIN10_RS3_0)
		return; /* no TL_CONNECT_RESULT before 4.1 */
	struct vmbus_chanmsg_tl_connect_result rs;
	memset(&rs, 0, sizeof(rs));
	rs.tcs_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_TL_CONNECT_RESULT);
	rs.tcs_endpoint_id = rq.tcr_guest_endpoint_id;
	rs.tcs_service_id = rq.tcr_host_service_id;
	rs.tcs_status = hv_cpu_to_le32(VMBUS_STATUS_CONNECTION_REFUSED);
	hvs_srv_send_msg(s, &rs, VMBUS_CHANMSG_TL_CONNECT_RESULT_SIZE);
}

/* Message types a guest may send (REQ). */
static bool guest_msg_type(uint32_t type)
{
	switch (type) {
	case VMBUS_CHANMSG_REQUESTOFFERS: case VMBUS_CHANMSG_OPENCHANNEL:
	case VMBUS_CHANMSG_CLOSECHANNEL: case VMBUS_CHANMSG_GPADL_HEADER:
	case VMBUS_CHANMSG_GPADL_BODY: case VMBUS_CHANMSG_GPADL_TEARDOWN:
	case VMBUS_CHANMSG_RELID_RELEASED: case VMBUS_CHANMSG_INITIATE_CONTACT:
	case VMBUS_CHANMSG_UNLOAD: case VMBUS_CHANMSG_OPEN_RESERVED_CHANNEL:
	case VMBUS_CHANMSG_CLOSE_RESERVED_CHANNEL:
	case VMBUS_CHANMSG_TL_CONNECT_REQUEST: case VMBUS_CHANMSG_MODIFYCHANNEL:
	case VMBUS_CHANMSG_MODIFY_CONNECTION: case VMBUS_CHANMSG_PAUSE:
	case VMBUS_CHANMSG_RESUME:
		return true;
	default:
		return false;
	}
}

static void handle_msg(struct hvs_vmbus *s, const uint8_t *m, uint32_t len)
{
	if (len < sizeof(struct vmbus_chanmsg_hdr)) {
		SRV_BAD(s, "vmbus: short message (%u bytes)", len);
		return;
	}
	uint32_t type = hv_get_le32(m);
	if (hv_get_le32(m + 4) != 0) {
		s->vs_rsvd_nonzero++;
		HVS_DEBUG(s->vs_name, "vmbus: message type %u: header padding "
			  "not zero", type);
	}
	if (!guest_msg_type(type)) {
		SRV_BAD(s, "vmbus: unknown or host-only message type %u "
			"(%u bytes)", type, len);
		return;
	}
	if (len < vmbus_chanmsg_min_size(type)) {
		SRV_BAD(s, "vmbus: message type %u too short (%u < %u bytes)",
			type, len, vmbus_chanmsg_min_size(type));
		return;
	}
	if (type != VMBUS_CHANMSG_INITIATE_CONTACT) {
		if (!s->vs_connected) {
			SRV_BAD(s, "vmbus: message type %u before "
				"INITIATE_CONTACT", type);
			return;
		}
		if (vmbus_chanmsg_min_version(type) > s->vs_version) {
			SRV_BAD(s, "vmbus: message type %u not valid at "
				"version %u.%u", type,
				VMBUS_VERSION_MAJOR(s->vs_version),
				VMBUS_VERSION_MINOR(s->vs_version));
			return;
		}
	}

	/* Fault hook rescind_at: rescind the channel a guest request names
	 * (child_relid at byte 8) or `relid`, then handle the request. */
	struct hvs_fault_args fa;
	if (len >= 12 && hvs_srv_fault(s, "rescind_at", "type", type, &fa)) {
		int64_t r = hvs_fault_param(&fa, "relid", 0);
		uint32_t relid = r > 0 ? (uint32_t)r : hv_get_le32(m + 8);
		HVS_INFO(s->vs_name, "vmbus: fault rescind_at: message type %u: "
			 "relid %u rescinded (%d)", type, relid,
			 hvs_vmbus_rescind(s, relid));
	}

	switch (type) {
	case VMBUS_CHANMSG_INITIATE_CONTACT:
		handle_initiate_contact(s, m, len);
		break;
	case VMBUS_CHANMSG_REQUESTOFFERS:
		handle_request_offers(s);
		break;
	case VMBUS_CHANMSG_OPENCHANNEL:
		hvs_chan_handle_open(s, m, len);
		break;
	case VMBUS_CHANMSG_CLOSECHANNEL:
		hvs_chan_handle_close(s, m, len);
		break;
	case VMBUS_CHANMSG_GPADL_HEADER:
		hvs_gpadl_handle_header(s, m, len);
		break;
	case VMBUS_CHANMSG_GPADL_BODY:
		hvs_gpadl_handle_body(s, m, len);
		break;
	case VMBUS_CHANMSG_GPADL_TEARDOWN:
		hvs_gpadl_handle_teardown(s, m, len);
		break;
	case VMBUS_CHANMSG_RELID_RELEASED:
		hvs_chan_handle_relid_released(s, m, len);
		break;
	case VMBUS_CHANMSG_UNLOAD:
		handle_unload(s);
		break;
	case VMBUS_CHANMSG_MODIFYCHANNEL:
		hvs_chan_handle_modify(s, m, len);
		break;
	case VMBUS_CHANMSG_TL_CONNECT_REQUEST:
		handle_tl_connect(s, m, len);
		break;
	default:
		/* Reserved channels (kernel debuggers) and 6.0 features we
		 * never grant. */
		SRV_BAD(s, "vmbus: message type %u not supported by this host",
			type);
		break;
	}
}

/* ---- partition ops -------------------------------------------------------- */

static uint16_t op_post_message(void *arg, uint32_t vp, uint32_t connection_id,
				uint32_t message_type, const void *payload,
				uint32_t len)
{
	struct hvs_vmbus *s = arg;
	uint8_t m[HV_MESSAGE_PAYLOAD_MAX];

	(void)vp;
	if (s->vs_p == NULL || s->vs_ended)
		return HV_STATUS_INVALID_CONNECTION_ID;
	outbox_flush(s);
	if (connection_id == VMBUS_MESSAGE_CONNECTION_ID_4) {
		/* The multiclient port exists from 5.0 hosts on (spec 6.2). */
		if (s->vs_max_version < VMBUS_VERSION_WIN10_RS3_1)
			return HV_STATUS_INVALID_CONNECTION_ID;
	} else if (connection_id != VMBUS_MESSAGE_CONNECTION_ID) {
		return HV_STATUS_INVALID_CONNECTION_ID;
	}
	if (message_type != VMBUS_MESSAGE_TYPE) {
		SRV_BAD(s, "vmbus: HvPostMessage type %u ignored", message_type);
		return HV_STATUS_SUCCESS;
	}
	if (len > HV_MESSAGE_PAYLOAD_MAX) {
		SRV_BAD(s, "vmbus: HvPostMessage payload of %u bytes", len);
		return HV_STATUS_INVALID_PARAMETER;
	}
	/* Our replies must not pile up without bound: push back. */
	if (s->vs_ob_count >= s->vs_outbox_depth)
		return HV_STATUS_INSUFFICIENT_BUFFERS;

	/* The one copy-in of a guest message: zeroed private buffer. */
	memset(m, 0, sizeof(m));
	memcpy(m, payload, len);
	s->vs_msgs_in++;
	handle_msg(s, m, len);
	return HV_STATUS_SUCCESS;
}

/* 0.13: the guest set relid bits in the send half of the interrupt page. */
static void scan_interrupt_page(struct hvs_vmbus *s)
{
	uint8_t *half = hvs_gpa_map(s->vs_p, s->vs_int_page +
				    HV_INTERRUPT_PAGE_HALF,
				    HV_INTERRUPT_PAGE_HALF);
	if (half == NULL)
		return;
	for (uint32_t w = 0; w < HV_INTERRUPT_PAGE_HALF / 8u; w++) {
		uint64_t *word = (uint64_t *)(void *)(half + 8u * w);
		if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0)
			continue;
		uint64_t bits = hv_le64(__atomic_exchange_n(word, 0,
							    __ATOMIC_ACQUIRE));
		while (bits != 0) {
			unsigned b = (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			uint32_t relid = 64u * w + b;
			struct hvs_channel *ch = relid >= 1 &&
				relid <= HVS_RELID_MAX ? s->vs_chan[relid] : NULL;
			if (ch == NULL) {
				s->vs_msgs_bad++;
				continue;
			}
			ch->ch_signals_in++;
			hvs_chan_dispatch_signal(ch);
		}
	}
}

static uint16_t op_signal_event(void *arg, uint32_t connection_id,
				uint16_t flag)
{
	struct hvs_vmbus *s = arg;

	if (s->vs_p == NULL || s->vs_ended)
		return HV_STATUS_INVALID_CONNECTION_ID;
	outbox_flush(s);
	if (connection_id == VMBUS_EVENT_CONNECTION_ID) {
		if (!s->vs_connected || s->vs_int_page == 0)
			return HV_STATUS_INVALID_CONNECTION_ID;
		if (flag != 0)
			return HV_STATUS_INVALID_PARAMETER;
		scan_interrupt_page(s);
		return HV_STATUS_SUCCESS;
	}
	if (connection_id <= HVS_CONNID_BASE ||
	    connection_id > HVS_CONNID_BASE + HVS_RELID_MAX)
		return HV_STATUS_INVALID_CONNECTION_ID;
	struct hvs_channel *ch = s->vs_chan[connection_id - HVS_CONNID_BASE];
	if (ch == NULL || ch->ch_state == HVS_CHAN_UNOFFERED)
		return HV_STATUS_INVALID_CONNECTION_ID;
	if (flag != 0)
		return HV_STATUS_INVALID_PARAMETER;
	ch->ch_signals_in++;
	hvs_chan_dispatch_signal(ch);
	return HV_STATUS_SUCCESS;
}

static void op_synic_changed(void *arg, uint32_t vp)
{
	(void)vp;
	outbox_flush(arg);
}

static void op_ended(void *arg, int kind)
{
	struct hvs_vmbus *s = arg;

	HVS_INFO(s->vs_name, "vmbus: partition ended (%d)", kind);
	/* NOTE: VSPs stop here; after this no guest memory is touched. */
	srv_reset(s, HVS_CLOSE_RESET);
	s->vs_ended = true;
	outbox_clear(s);
}

static const struct hvs_partition_ops srv_ops = {
	.post_message = op_post_message,
	.signal_event = op_signal_event,
	.synic_changed = op_synic_changed,
	.ended = op_ended,
};

const struct hvs_partition_ops *hvs_vmbus_partition_ops(void)
{
	return &srv_ops;
}

/* Monitored channels: treat pending bits in the child->parent page as
 * signals. Called from hvs_vmbus_poll(). */
static void scan_monitor_page(struct hvs_vmbus *s)
{
	uint8_t *pg = hvs_gpa_map(s->vs_p, s->vs_mon2, HV_PAGE_SIZE);
	if (pg == NULL)
		return;
	for (uint32_t g = 0; g < HV_MONITOR_GROUPS; g++) {
		uint32_t *pend = (uint32_t *)(void *)(pg + 8u + 8u * g);
		if (__atomic_load_n(pend, __ATOMIC_RELAXED) == 0)
			continue;
		uint32_t bits = hv_le32(__atomic_exchange_n(pend, 0,
							    __ATOMIC_ACQUIRE));
		while (bits != 0) {
			unsigned b = (unsigned)__builtin_ctz(bits);
			bits &= bits - 1;
			/* monitor id m = relid - 1 (vmbus/chan.c) */
			uint32_t relid = g * HV_MONITOR_BITS_PER_GROUP + b + 1u;
			struct hvs_channel *ch = s->vs_chan[relid];
			if (ch != NULL) {
				ch->ch_signals_in++;
				hvs_chan_dispatch_signal(ch);
			}
		}
	}
}

void hvs_vmbus_poll(struct hvs_vmbus *s)
{
	if (s->vs_p == NULL || s->vs_ended)
		return;
	outbox_flush(s);
	if (s->vs_connected && s->vs_mon2 != 0)
		scan_monitor_page(s);
	/* Backstop for a guest that does not signal after reading: retry
	 * channels that wait for ring space. */
	bool stall_checked = false, stall_on = false;
	for (uint32_t relid = 1; relid <= s->vs_relid_top; relid++) {
		struct hvs_channel *ch = s->vs_chan[relid];
		if (ch == NULL || ch->ch_state != HVS_CHAN_OPEN)
			continue;
		if (ch->ch_stalled) {
			/* fault chan.stall switched off: the guest signalled
			 * while we ignored its packets and will not signal
			 * again for them, so read them now. */
			if (!stall_checked) {
				struct hvs_fault_info fi;
				stall_on = hvs_fault_get("chan.stall", &fi) == 0 &&
					   fi.fi_enabled;
				stall_checked = true;
			}
			if (stall_on)
				continue;
			ch->ch_stalled = false;
			HVS_INFO(s->vs_name, "fault chan.stall: relid %u: "
				 "consuming again", relid);
			hvs_chan_dispatch_signal(ch);
		} else if (ch->ch_pending_set) {
			hvs_chan_dispatch_signal(ch);
		}
	}
}

/* ---- create / attach / destroy ------------------------------------------- */

struct hvs_vmbus *hvs_vmbus_create(const struct hvs_vmbus_config *cfg)
{
	uint32_t maxv = cfg->max_version ? cfg->max_version
					 : VMBUS_VERSION_IRON;
	if (!vmbus_version_known(maxv))
		return NULL;
	struct hvs_vmbus *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	snprintf(s->vs_name, sizeof(s->vs_name), "%s",
		 cfg->vm_name ? cfg->vm_name : "vm");
	snprintf(s->vs_salt, sizeof(s->vs_salt), "%s",
		 cfg->instance_salt ? cfg->instance_salt : s->vs_name);
	s->vs_max_version = maxv;
	s->vs_monitored = cfg->monitored;
	s->vs_outbox_depth = cfg->outbox_depth ? cfg->outbox_depth : 256;
	s->vs_max_gpadls = cfg->max_gpadls ? cfg->max_gpadls : 1024;
	s->vs_max_gpadl_pages = cfg->max_gpadl_pages ? cfg->max_gpadl_pages
						     : 262144;
	return s;
}

void hvs_vmbus_attach(struct hvs_vmbus *s, struct hvs_partition *p)
{
	if (s->vs_p != NULL && !s->vs_ended)
		srv_reset(s, HVS_CLOSE_RESET);
	outbox_clear(s);
	s->vs_p = p;
	s->vs_ended = false;
}

void hvs_vmbus_destroy(struct hvs_vmbus *s)
{
	if (s == NULL)
		return;
	if (s->vs_p != NULL && !s->vs_ended)
		srv_reset(s, HVS_CLOSE_RESET);
	for (uint32_t relid = 1; relid <= s->vs_relid_top; relid++)
		if (s->vs_chan[relid] != NULL)
			hvs_chan_free(s, s->vs_chan[relid]);
	/* Devices without channels left (all freed above) are gone; any
	 * device still listed had no channel (cannot happen) - free it. */
	while (s->vs_devs != NULL) {
		struct hvs_device *dv = s->vs_devs;
		s->vs_devs = dv->dv_next;
		if (dv->dv_ops->vo_destroy)
			dv->dv_ops->vo_destroy(dv->dv_arg);
		free(dv);
	}
	hvs_gpadl_free_all(s);
	outbox_clear(s);
	free(s);
}

const char *hvs_vmbus_name(const struct hvs_vmbus *s)
{
	return s->vs_name;
}

/* ---- devices ------------------------------------------------------------- */

static uint32_t alloc_relid(struct hvs_vmbus *s)
{
	for (uint32_t relid = 1; relid <= HVS_RELID_MAX; relid++)
		if (s->vs_chan[relid] == NULL)
			return relid;
	return 0;
}

static struct hvs_channel *chan_new(struct hvs_vmbus *s, struct hvs_device *dv,
				    uint32_t relid, uint16_t sub)
{
	struct hvs_channel *ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return NULL;
	ch->ch_srv = s;
	ch->ch_dev = dv;
	ch->ch_relid = relid;
	ch->ch_connid = HVS_CONNID_BASE + relid;
	ch->ch_sub = sub;
	ch->ch_state = HVS_CHAN_UNOFFERED;
	ch->ch_monitor_id = VMBUS_MONITOR_ID_NONE;
	ch->ch_target_vp = 0;
	hvs_chan_update_name(ch);
	dv->dv_nchan++;
	s->vs_chan[relid] = ch;
	if (relid > s->vs_relid_top)
		s->vs_relid_top = relid;
	return ch;
}

/* Called by hvs_chan_free(): the device goes with its last channel. */
void hvs_srv_device_unref(struct hvs_vmbus *s, struct hvs_device *dv)
{
	if (--dv->dv_nchan != 0)
		return;
	for (struct hvs_device **pp = &s->vs_devs; *pp; pp = &(*pp)->dv_next) {
		if (*pp == dv) {
			*pp = dv->dv_next;
			break;
		}
	}
	if (dv->dv_ops->vo_destroy)
		dv->dv_ops->vo_destroy(dv->dv_arg);
	free(dv);
}

int hvs_vmbus_add_device(struct hvs_vmbus *s, const struct hvs_vsp_ops *ops,
			 void *arg, const struct hv_guid *class_guid,
			 const struct hv_guid *instance,
			 const struct hvs_device_opts *opts)
{
	if (s == NULL || ops == NULL || class_guid == NULL)
		return -VMBUS_EINVAL;

	/* Per-class index: the lowest one not in use, so instance GUIDs are
	 * the same for the same configuration on every boot. */
	uint32_t idx = 0;
	for (bool again = true; again;) {
		again = false;
		for (struct hvs_device *d = s->vs_devs; d; d = d->dv_next) {
			if (hv_guid_equal(&d->dv_class, class_guid) &&
			    d->dv_index == idx) {
				idx++;
				again = true;
			}
		}
	}
	struct hv_guid inst;
	if (instance != NULL)
		inst = *instance;
	else
		hvs_guid_derive(s->vs_salt, class_guid, idx, &inst);
	for (struct hvs_device *d = s->vs_devs; d; d = d->dv_next)
		if (hv_guid_equal(&d->dv_class, class_guid) &&
		    hv_guid_equal(&d->dv_instance, &inst))
			return -VMBUS_EEXIST;

	uint32_t relid = alloc_relid(s);
	if (relid == 0)
		return -VMBUS_ENOSPC;
	struct hvs_device *dv = calloc(1, sizeof(*dv));
	if (dv == NULL)
		return -VMBUS_ENOMEM;
	dv->dv_ops = ops;
	dv->dv_arg = arg;
	dv->dv_class = *class_guid;
	dv->dv_instance = inst;
	dv->dv_index = idx;
	if (opts != NULL)
		dv->dv_opts = *opts;
	if (opts != NULL && opts->do_name != NULL)
		snprintf(dv->dv_name, sizeof(dv->dv_name), "%s", opts->do_name);
	else
		snprintf(dv->dv_name, sizeof(dv->dv_name), "%s%u",
			 hv_guid_class_name(class_guid), idx);
	dv->dv_opts.do_name = NULL; /* not kept: caller's storage */

	struct hvs_channel *ch = chan_new(s, dv, relid, 0);
	if (ch == NULL) {
		free(dv);
		return -VMBUS_ENOMEM;
	}
	dv->dv_next = s->vs_devs;
	s->vs_devs = dv;
	if (s->vs_connected && s->vs_offers_requested)
		hvs_chan_send_offer(s, ch); /* hot add */
	return (int)relid;
}

int hvs_vmbus_offer_subchannel(struct hvs_vmbus *s, uint32_t primary_relid,
			       uint16_t sub_index)
{
	if (primary_relid == 0 || primary_relid > HVS_RELID_MAX)
		return -VMBUS_ENOENT;
	struct hvs_channel *pr = s->vs_chan[primary_relid];
	if (pr == NULL || pr->ch_sub != 0 ||
	    pr->ch_state == HVS_CHAN_RESCINDED)
		return -VMBUS_ENOENT;
	struct hvs_device *dv = pr->ch_dev;
	if (sub_index == 0 || sub_index > dv->dv_opts.do_max_subchannels)
		return -VMBUS_EINVAL;
	for (uint32_t r = 1; r <= s->vs_relid_top; r++) {
		struct hvs_channel *c = s->vs_chan[r];
		if (c != NULL && c->ch_dev == dv && c->ch_sub == sub_index)
			return -VMBUS_EEXIST;
	}
	uint32_t relid = alloc_relid(s);
	if (relid == 0)
		return -VMBUS_ENOSPC;
	struct hvs_channel *ch = chan_new(s, dv, relid, sub_index);
	if (ch == NULL)
		return -VMBUS_ENOMEM;
	if (s->vs_connected && s->vs_offers_requested)
		hvs_chan_send_offer(s, ch);
	return (int)relid;
}

static void rescind_one(struct hvs_vmbus *s, struct hvs_channel *ch)
{
	const struct hvs_vsp_ops *ops = ch->ch_dev->dv_ops;

	if (ops->vo_rescind)
		ops->vo_rescind(ch->ch_dev->dv_arg, ch);
	if (ch->ch_state == HVS_CHAN_UNOFFERED) {
		/* The guest never saw it: gone at once. */
		hvs_chan_free(s, ch);
		return;
	}
	if (ch->ch_state == HVS_CHAN_OPEN)
		hvs_chan_close_host(ch, HVS_CLOSE_RESCIND);
	ch->ch_state = HVS_CHAN_RESCINDED;

	struct vmbus_chanmsg_rescind_channeloffer rc;
	memset(&rc, 0, sizeof(rc));
	rc.rc_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_RESCIND_CHANNELOFFER);
	rc.rc_child_relid = hv_cpu_to_le32(ch->ch_relid);
	hvs_srv_send_msg(s, &rc, VMBUS_CHANMSG_RESCIND_CHANNELOFFER_SIZE);
}

int hvs_vmbus_rescind(struct hvs_vmbus *s, uint32_t relid)
{
	if (relid == 0 || relid > HVS_RELID_MAX || s->vs_chan[relid] == NULL)
		return -VMBUS_ENOENT;
	struct hvs_channel *ch = s->vs_chan[relid];
	if (ch->ch_state == HVS_CHAN_RESCINDED)
		return -VMBUS_EBUSY;
	if (ch->ch_sub == 0) {
		/* Subchannels go first (guests close them before the
		 * primary). */
		for (uint32_t r = 1; r <= s->vs_relid_top; r++) {
			struct hvs_channel *c = s->vs_chan[r];
			if (c != NULL && c != ch && c->ch_dev == ch->ch_dev &&
			    c->ch_state != HVS_CHAN_RESCINDED)
				rescind_one(s, c);
		}
	}
	rescind_one(s, ch);
	return 0;
}

/* ---- listings -------------------------------------------------------------- */

void hvs_vmbus_get_stats(const struct hvs_vmbus *s, struct hvs_vmbus_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->vs_version = s->vs_version;
	st->vs_connected = s->vs_connected;
	st->vs_msgs_in = s->vs_msgs_in;
	st->vs_msgs_out = s->vs_msgs_out;
	st->vs_msgs_bad = atomic_load(&s->vs_msgs_bad);
	st->vs_outbox_queued = s->vs_ob_count;
	st->vs_outbox_retries = s->vs_ob_retries;
	st->vs_rsvd_nonzero = s->vs_rsvd_nonzero;
	for (const struct hvs_gpadl *g = s->vs_gpadls; g; g = g->gp_next)
		if (g->gp_complete)
			st->vs_gpadls++;
	st->vs_windows = hvs_gpadl_windows(s);
}

static void chan_info(const struct hvs_channel *ch, struct hvs_chan_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->ci_relid = ch->ch_relid;
	ci->ci_connection_id = ch->ch_connid;
	ci->ci_class = ch->ch_dev->dv_class;
	ci->ci_instance = ch->ch_dev->dv_instance;
	ci->ci_sub_index = ch->ch_sub;
	ci->ci_state = ch->ch_state;
	if (ch->ch_state == HVS_CHAN_OPEN && ch->ch_broken)
		ci->ci_state = HVS_CHAN_BROKEN;
	ci->ci_target_vp = ch->ch_target_vp;
	if (ch->ch_state == HVS_CHAN_OPEN) {
		ci->ci_in_ring_bytes = ch->ch_in.rb_dsize;
		ci->ci_out_ring_bytes = ch->ch_out.rb_dsize;
		ci->ci_pkts_in = ch->ch_in.rb_packets;
		ci->ci_pkts_out = ch->ch_out.rb_packets;
		ci->ci_bytes_in = ch->ch_in.rb_bytes;
		ci->ci_bytes_out = ch->ch_out.rb_bytes;
	}
	ci->ci_signals_in = ch->ch_signals_in;
	ci->ci_signals_out = ch->ch_signals_out;
	ci->ci_proto_errors = atomic_load(&((struct hvs_channel *)ch)->ch_proto_errors);
	ci->ci_name = ch->ch_dev->dv_name;
}

int hvs_vmbus_foreach_channel(const struct hvs_vmbus *s,
			      int (*fn)(void *ctx, const struct hvs_chan_info *ci),
			      void *ctx)
{
	struct hvs_chan_info ci;
	for (uint32_t relid = 1; relid <= s->vs_relid_top; relid++) {
		const struct hvs_channel *ch = s->vs_chan[relid];
		if (ch == NULL)
			continue;
		chan_info(ch, &ci);
		int r = fn(ctx, &ci);
		if (r != 0)
			return r;
	}
	return 0;
}

static const char *state_name(enum hvs_chan_state st)
{
	switch (st) {
	case HVS_CHAN_UNOFFERED: return "unoffered";
	case HVS_CHAN_OFFERED: return "offered";
	case HVS_CHAN_OPEN: return "open";
	case HVS_CHAN_BROKEN: return "broken";
	case HVS_CHAN_RESCINDED: return "rescinded";
	}
	return "?";
}

struct jbuf {
	char *b;
	size_t len, pos;
	bool trunc;
	bool first;	/* no comma before the next array element */
};

__attribute__((format(printf, 2, 3)))
static void jprintf(struct jbuf *j, const char *fmt, ...)
{
	va_list ap;
	size_t room = j->pos < j->len ? j->len - j->pos : 0;
	va_start(ap, fmt);
	int n = vsnprintf(room ? j->b + j->pos : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room)
		j->trunc = true;
	j->pos += (size_t)n;
}

static int describe_chan(void *ctx, const struct hvs_chan_info *ci)
{
	struct jbuf *j = ctx;
	char cls[HV_GUID_STR_LEN], inst[HV_GUID_STR_LEN];
	hv_guid_to_str(&ci->ci_class, cls);
	hv_guid_to_str(&ci->ci_instance, inst);
	const char *sep = j->first ? "" : ",";
	j->first = false;
	jprintf(j, "%s{\"relid\":%u,\"connection_id\":%u,\"name\":\"%s\","
		"\"class\":\"%s\",\"class_name\":\"%s\",\"instance\":\"%s\","
		"\"sub_index\":%u,\"state\":\"%s\",\"target_vp\":%u,"
		"\"in_ring_bytes\":%u,\"out_ring_bytes\":%u,"
		"\"pkts_in\":%" PRIu64 ",\"pkts_out\":%" PRIu64 ","
		"\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ","
		"\"signals_in\":%" PRIu64 ",\"signals_out\":%" PRIu64 ","
		"\"proto_errors\":%" PRIu64 "}",
		sep,
		ci->ci_relid, ci->ci_connection_id, ci->ci_name, cls,
		hv_guid_class_name(&ci->ci_class), inst, ci->ci_sub_index,
		state_name(ci->ci_state), ci->ci_target_vp,
		ci->ci_in_ring_bytes, ci->ci_out_ring_bytes, ci->ci_pkts_in,
		ci->ci_pkts_out, ci->ci_bytes_in, ci->ci_bytes_out,
		ci->ci_signals_in, ci->ci_signals_out, ci->ci_proto_errors);
	return 0;
}

int hvs_vmbus_describe_json(const struct hvs_vmbus *s, char *buf, size_t len)
{
	struct hvs_vmbus_stats st;
	struct jbuf j = { .b = buf, .len = len, .pos = 0, .trunc = false,
			  .first = true };

	hvs_vmbus_get_stats(s, &st);
	jprintf(&j, "{\"vm\":\"%s\",\"max_version\":\"%u.%u\","
		"\"connected\":%s,\"version\":\"%u.%u\",\"msgs_in\":%" PRIu64
		",\"msgs_out\":%" PRIu64 ",\"msgs_bad\":%" PRIu64
		",\"rsvd_nonzero\":%" PRIu64 ",\"outbox_queued\":%" PRIu64
		",\"gpadls\":%u,\"gpadl_windows\":%u,\"channels\":[",
		s->vs_name, VMBUS_VERSION_MAJOR(s->vs_max_version),
		VMBUS_VERSION_MINOR(s->vs_max_version),
		st.vs_connected ? "true" : "false",
		VMBUS_VERSION_MAJOR(st.vs_version),
		VMBUS_VERSION_MINOR(st.vs_version), st.vs_msgs_in,
		st.vs_msgs_out, st.vs_msgs_bad, st.vs_rsvd_nonzero,
		st.vs_outbox_queued, st.vs_gpadls, st.vs_windows);
	hvs_vmbus_foreach_channel(s, describe_chan, &j);
	jprintf(&j, "]}");
	if (j.trunc || j.pos >= len) {
		if (len > 0)
			buf[len - 1] = '\0';
		return -VMBUS_ENOBUFS;
	}
	return (int)j.pos;
}
