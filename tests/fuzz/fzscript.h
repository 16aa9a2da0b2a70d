/*
 * tests/fuzz/fzscript.h - builders for fuzz inputs: a byte string, and the
 * fuzzport.h script ops with the VMBus channel messages a host sends (from
 * the wire headers). Used by gen_seeds.c and by harnesses that play a
 * fixed host prefix before the fuzzed part.
 */
#ifndef TESTS_FUZZ_FZSCRIPT_H
#define TESTS_FUZZ_FZSCRIPT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzzport.h"
#include "hv/guid.h"
#include "hv/vmbus_msg.h"
#include "hv/wire.h"

/* ---- a byte-string builder ----------------------------------------- */

struct sb {
	uint8_t b[65536];
	size_t n;
};

static inline void put8(struct sb *s, uint8_t v)
{
	if (s->n < sizeof(s->b))
		s->b[s->n++] = v;
}
static inline void put16(struct sb *s, uint16_t v)
{
	put8(s, (uint8_t)v);
	put8(s, (uint8_t)(v >> 8));
}
static inline void put32(struct sb *s, uint32_t v)
{
	put16(s, (uint16_t)v);
	put16(s, (uint16_t)(v >> 16));
}
static inline void put64(struct sb *s, uint64_t v)
{
	put32(s, (uint32_t)v);
	put32(s, (uint32_t)(v >> 32));
}
static inline void putn(struct sb *s, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put8(s, ((const uint8_t *)p)[i]);
}
static inline void zeros(struct sb *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put8(s, 0);
}

#define FZ_UNUSED __attribute__((unused))
static const struct hv_guid guid_echo FZ_UNUSED = HV_GUID_ECHO_INIT;
static const struct hv_guid guid_hb FZ_UNUSED = HV_GUID_HEARTBEAT_INIT;
static const struct hv_guid inst1 FZ_UNUSED =
	HV_GUID(0x11111111, 0x1, 0x1, 1, 1, 1, 1, 1, 1, 1, 1);
static const struct hv_guid inst2 FZ_UNUSED =
	HV_GUID(0x22222222, 0x2, 0x2, 2, 2, 2, 2, 2, 2, 2, 2);

static inline void s_msg(struct sb *s, const void *pl, uint8_t len)
{
	put8(s, FZP_OP_MSG);
	put32(s, VMBUS_MESSAGE_TYPE);
	put8(s, len);
	put8(s, 0);
	put8(s, len);
	putn(s, pl, len);
}
static inline void s_wait(struct sb *s, uint8_t type)
{
	put8(s, FZP_OP_WAIT);
	put8(s, type);
}
static inline void s_event(struct sb *s, uint16_t relid)
{
	put8(s, FZP_OP_EVENT);
	put16(s, relid);
}

static inline void m_vresp(struct sb *s, uint8_t ok, uint8_t state,
			   uint32_t connid)
{
	struct vmbus_chanmsg_version_response vr;

	memset(&vr, 0, sizeof(vr));
	vr.vr_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_VERSION_RESPONSE);
	vr.vr_version_supported = ok;
	vr.vr_connection_state = state;
	vr.vr_msg_conn_id = hv_cpu_to_le32(connid);
	s_msg(s, &vr, VMBUS_CHANMSG_VERSION_RESPONSE_SIZE);
}

static inline void m_offer(struct sb *s, const struct hv_guid *cls,
			   const struct hv_guid *inst, uint32_t relid,
			   uint16_t sub)
{
	struct vmbus_chanmsg_offerchannel of;

	memset(&of, 0, sizeof(of));
	of.of_hdr.chm_type = hv_cpu_to_le32(VMBUS_CHANMSG_OFFERCHANNEL);
	of.of_if_type = *cls;
	of.of_if_instance = *inst;
	of.of_sub_channel_index = hv_cpu_to_le16(sub);
	of.of_child_relid = hv_cpu_to_le32(relid);
	of.of_monitorid = VMBUS_MONITOR_ID_NONE;
	of.of_is_dedicated_interrupt =
		hv_cpu_to_le16(VMBUS_OFFER_DEDICATED_INTERRUPT);
	of.of_connection_id = hv_cpu_to_le32(0x2000u + relid);
	s_msg(s, &of, VMBUS_CHANMSG_OFFERCHANNEL_SIZE);
}

static inline void m_hdr_only(struct sb *s, uint32_t type)
{
	struct vmbus_chanmsg_hdr h = { hv_cpu_to_le32(type), 0 };

	s_msg(s, &h, sizeof(h));
}

static inline void m_u32s(struct sb *s, uint32_t type, uint32_t a,
			  uint32_t b, uint32_t c, uint8_t len)
{
	uint8_t m[20];

	memset(m, 0, sizeof(m));
	hv_put_le32(m, type);
	hv_put_le32(m + 8, a);
	hv_put_le32(m + 12, b);
	hv_put_le32(m + 16, c);
	s_msg(s, m, len);
}

static inline void m_gpadl_created(struct sb *s, uint32_t relid,
				   uint32_t h, uint32_t st)
{
	m_u32s(s, VMBUS_CHANMSG_GPADL_CREATED, relid, h, st, 20);
}
static inline void m_open_result(struct sb *s, uint32_t relid,
				 uint32_t openid, uint32_t st)
{
	m_u32s(s, VMBUS_CHANMSG_OPENCHANNEL_RESULT, relid, openid, st, 20);
}
static inline void m_torndown(struct sb *s, uint32_t h)
{
	m_u32s(s, VMBUS_CHANMSG_GPADL_TORNDOWN, h, 0, 0, 12);
}
static inline void m_rescind(struct sb *s, uint32_t relid)
{
	m_u32s(s, VMBUS_CHANMSG_RESCIND_CHANNELOFFER, relid, 0, 0, 12);
}

/* Connect at 5.3 and deliver the offers of relid 1 (echo) and 2. */
static inline void connect53(struct sb *s, bool two)
{
	s_wait(s, VMBUS_CHANMSG_INITIATE_CONTACT);
	m_vresp(s, 1, 0, VMBUS_MESSAGE_CONNECTION_ID);
	s_wait(s, VMBUS_CHANMSG_REQUESTOFFERS);
	m_offer(s, &guid_echo, &inst1, 1, 0);
	if (two)
		m_offer(s, &guid_hb, &inst2, 2, 0);
	m_hdr_only(s, VMBUS_CHANMSG_ALLOFFERS_DELIVERED);
}

/* Open of relid with GPADL h and openid, then the close at unload. */
static inline void open_ok(struct sb *s, uint32_t relid, uint32_t h,
			   uint32_t oid)
{
	s_wait(s, VMBUS_CHANMSG_GPADL_HEADER);
	m_gpadl_created(s, relid, h, 0);
	s_wait(s, VMBUS_CHANMSG_OPENCHANNEL);
	m_open_result(s, relid, oid, 0);
}

static inline void close_ok(struct sb *s, uint32_t h)
{
	s_wait(s, VMBUS_CHANMSG_GPADL_TEARDOWN);
	m_torndown(s, h);
}

static inline void unload_ok(struct sb *s)
{
	s_wait(s, VMBUS_CHANMSG_UNLOAD);
	m_hdr_only(s, VMBUS_CHANMSG_UNLOAD_RESPONSE);
}

#endif /* TESTS_FUZZ_FZSCRIPT_H */
