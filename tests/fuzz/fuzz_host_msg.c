/*
 * fuzz_host_msg - the host VMBus server's parsing of the guest's channel
 * messages (src/host/vmbus_server.c, vmbus/chan.c, vmbus/gpadl.c): every
 * HvPostMessage payload goes through the partition op the real partition
 * calls, so version negotiation, REQUESTOFFERS, GPADL_HEADER/BODY assembly
 * and validation against guest RAM, OPENCHANNEL with ring mapping,
 * CLOSECHANNEL, teardown, RELID_RELEASED, MODIFYCHANNEL, UNLOAD and
 * TL_CONNECT all run, interleaved with guest signals, guest writes to RAM
 * (ring indices, the interrupt and monitor pages) and host-side actions
 * (rescind, hot-add, subchannel offers, a full message queue). Echo VSPs
 * serve the channels; the partition is tests/hostsrv/fake_partition.c.
 *
 * Input: c0 u8 (bits 0-3: host generation, index into the version list;
 * bit 4: monitored; bits 5-6: vCPUs - 1; bit 7: the partition ends before
 * destroy), c1 u8 (bits 0-1: echo devices - 1; bit 2: tight limits on
 * GPADLs and the outbox), then records [kind u8][len u8][...]:
 *   kind&7 = 0  HvPostMessage of len (<= 240) bytes; kind bits 3-4: the
 *               connection id (1, 4, a u32 from the input, or 1 with a
 *               message type other than 1); bits 5-7: vp
 *            1  HvSignalEvent: kind bit 3: connection 0x2000 + len (a
 *               channel), else len | u8 << 8; kind bit 4: flag 1
 *            2  guest writes RAM: u16 page, u16 offset, len bytes
 *            3  hvs_vmbus_poll()
 *            4  host action len: 0 rescind (u8 relid), 1 hot-add an echo
 *               device, 2/3 message queue full / not, 4 synic_changed,
 *               5 offer subchannel (u8 relid, u8 sub index)
 *
 * Oracles: ASan/UBSan (guest RAM is a bounded mapping, GPADL streams and
 * rings are exact allocations), the fake partition's own checks (no
 * message over 240 bytes, no window left mapped at destroy), and: every
 * message the server sends is a host->guest type of at least its minimum
 * size, and GPADL_CREATED / OPENCHANNEL_RESULT answer something the guest
 * asked for.
 */
#include "fuzz_common.h"

#include "fake_partition.h"
#include "host/fault.h"
#include "host/log.h"
#include "host/partition.h"
#include "host/vmbus_server.h"
#include "host/vsp/echo.h"
#include "hv/tlfs.h"
#include "hv/vmbus_msg.h"

#define RAM_BYTES (1u << 20)

static const uint32_t versions[] = {
	HVS_VMBUS_VERSION_IRON, HVS_VMBUS_VERSION_WS2008,
	HVS_VMBUS_VERSION_WIN7, HVS_VMBUS_VERSION_WIN8,
	HVS_VMBUS_VERSION_WIN8_1, HVS_VMBUS_VERSION_WIN10,
	HVS_VMBUS_VERSION_WIN10_RS3_0, HVS_VMBUS_VERSION_WIN10_RS3_1,
	HVS_VMBUS_VERSION_WIN10_RS4, HVS_VMBUS_VERSION_WIN10_RS5,
	HVS_VMBUS_VERSION_COPPER,
};

static bool g_verbose;
static struct hvs_partition *g_part;	/* kept across inputs */

static void sink(void *arg, enum hvs_log_level level, const char *line)
{
	(void)arg;
	if (g_verbose)
		fprintf(stderr, "[host %d] %s\n", level, line);
}

/* What the guest asked for, to match the server's answers. */
struct asked {
	uint32_t gpadl[64];	/* handles in GPADL_HEADERs */
	unsigned ngpadl;
	uint32_t open[64];	/* openids in OPENCHANNELs */
	unsigned nopen;
};

static bool in(const uint32_t *a, unsigned n, uint32_t v)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i] == v)
			return true;
	return false;
}

static void note_guest(struct asked *a, const uint8_t *m, uint32_t len)
{
	if (len < 8)
		return;
	switch (hv_get_le32(m)) {
	case VMBUS_CHANMSG_GPADL_HEADER:
		if (len >= 16 && a->ngpadl < 64)
			a->gpadl[a->ngpadl++] = hv_get_le32(m + 12);
		break;
	case VMBUS_CHANMSG_OPENCHANNEL:
		if (len >= 16 && a->nopen < 64)
			a->open[a->nopen++] = hv_get_le32(m + 12);
		break;
	}
}

static void check_out(struct hvs_partition *p, const struct asked *a)
{
	const struct fp_msg *m;

	while ((m = fp_pop(p)) != NULL) {
		uint32_t type;

		FZ_CHECK(m->len <= HV_MESSAGE_PAYLOAD_MAX && m->len >= 8,
			 "message of %u bytes", m->len);
		FZ_CHECK(m->sint < HV_SYNIC_SINT_COUNT && m->type != 0,
			 "sint %u type %u", m->sint, m->type);
		type = hv_get_le32(m->buf);
		switch (type) {
		case VMBUS_CHANMSG_OFFERCHANNEL:
		case VMBUS_CHANMSG_RESCIND_CHANNELOFFER:
		case VMBUS_CHANMSG_ALLOFFERS_DELIVERED:
		case VMBUS_CHANMSG_OPENCHANNEL_RESULT:
		case VMBUS_CHANMSG_GPADL_CREATED:
		case VMBUS_CHANMSG_GPADL_TORNDOWN:
		case VMBUS_CHANMSG_VERSION_RESPONSE:
		case VMBUS_CHANMSG_UNLOAD_RESPONSE:
		case VMBUS_CHANMSG_TL_CONNECT_RESULT:
		case VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE:
			break;
		default:
			FZ_CHECK(0, "server sent message type %u", type);
		}
		FZ_CHECK(m->len >= vmbus_chanmsg_min_size(type),
			 "type %u in %u bytes", type, m->len);
		if (type == VMBUS_CHANMSG_GPADL_CREATED)
			FZ_CHECK(in(a->gpadl, a->ngpadl, hv_get_le32(m->buf + 12)),
				 "GPADL_CREATED for handle 0x%x never asked",
				 hv_get_le32(m->buf + 12));
		if (type == VMBUS_CHANMSG_OPENCHANNEL_RESULT)
			FZ_CHECK(in(a->open, a->nopen, hv_get_le32(m->buf + 12)),
				 "OPENCHANNEL_RESULT for openid %u never asked",
				 hv_get_le32(m->buf + 12));
	}
	/* The test double keeps every message: start over once drained. */
	p->nmsgs = p->rd = 0;
	p->nevents = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct asked asked;
	const struct hvs_partition_ops *ops = hvs_vmbus_partition_ops();
	struct hvs_vmbus_config cfg;
	struct hvs_partition *p;
	struct hvs_vmbus *s;
	struct fz f;
	uint8_t c0, c1;
	uint32_t vcpus;

	g_verbose = getenv("FUZZ_VERBOSE") != NULL;
	hvs_log_set_sink(sink, NULL);
	hvs_fault_reset_all();
	memset(&asked, 0, sizeof(asked));
	fz_init(&f, data, size);
	c0 = fz_u8(&f);
	c1 = fz_u8(&f);
	vcpus = 1u + ((c0 >> 5) & 3u);

	/* One partition for every input, reset (a new memfd and 1 MB of
	 * captures per input were most of the time). */
	if (g_part == NULL)
		g_part = fp_create("fz", RAM_BYTES, vcpus);
	p = g_part;
	fp_reset(p, vcpus);
	memset(&cfg, 0, sizeof(cfg));
	cfg.vm_name = "fz";
	cfg.max_version = versions[(c0 & 15u) % (sizeof(versions) /
						 sizeof(versions[0]))];
	cfg.monitored = (c0 & 0x10) != 0;
	if (c1 & 4) {
		cfg.outbox_depth = 4;
		cfg.max_gpadls = 4;
		cfg.max_gpadl_pages = 64;
	}
	s = hvs_vmbus_create(&cfg);
	FZ_CHECK(s != NULL, "create");
	hvs_vmbus_attach(s, p);
	for (unsigned i = 0; i <= (c1 & 3u); i++)
		FZ_CHECK(hvs_echo_add(s, NULL) > 0, "echo device");

	for (unsigned steps = 0; fz_left(&f) >= 2 && steps < 256; steps++) {
		uint8_t kind = fz_u8(&f), len = fz_u8(&f);
		uint8_t buf[256];

		switch (kind & 7) {
		case 0: {
			uint32_t connid = VMBUS_MESSAGE_CONNECTION_ID, type = 1;

			switch ((kind >> 3) & 3) {
			case 1: connid = VMBUS_MESSAGE_CONNECTION_ID_4; break;
			case 2: connid = fz_u32(&f); break;
			case 3: type = 2u + len; break;
			}
			if (len > HV_MESSAGE_PAYLOAD_MAX)
				len = HV_MESSAGE_PAYLOAD_MAX;
			len = (uint8_t)fz_bytes(&f, buf, len);
			note_guest(&asked, buf, len);
			(void)ops->post_message(s, (kind >> 5) % vcpus, connid,
						type, buf, len);
			break;
		}
		case 1: {
			uint32_t connid = (kind & 8) ? 0x2000u + len
						     : (uint32_t)len |
						       (uint32_t)fz_u8(&f) << 8;

			(void)ops->signal_event(s, connid, (kind >> 4) & 1u);
			break;
		}
		case 2: {
			uint16_t page = fz_u16(&f), off = fz_u16(&f);
			uint64_t gpa = ((uint64_t)page << 12) + (off & 0xFFFu);

			len = (uint8_t)fz_bytes(&f, buf, len);
			if (gpa + len <= RAM_BYTES)
				memcpy(fp_ptr(p, gpa), buf, len);
			break;
		}
		case 3:
			hvs_vmbus_poll(s);
			break;
		case 4:
			switch (len % 6) {
			case 0: (void)hvs_vmbus_rescind(s, fz_u8(&f)); break;
			case 1: (void)hvs_echo_add(s, NULL); break;
			case 2: p->queue_full = true; break;
			case 3: p->queue_full = false; break;
			case 4:
				if (ops->synic_changed)
					ops->synic_changed(s, 0);
				break;
			default: {
				uint8_t relid = fz_u8(&f);
				(void)hvs_vmbus_offer_subchannel(s, relid,
								 fz_u8(&f));
				break;
			}
			}
			break;
		default:
			break;
		}
		check_out(p, &asked);
	}
	if (g_verbose) {
		struct hvs_vmbus_stats st;

		hvs_vmbus_get_stats(s, &st);
		fprintf(stderr, "host_msg: version 0x%x connected %d in %llu out "
			"%llu bad %llu gpadls %u\n", st.vs_version,
			st.vs_connected, (unsigned long long)st.vs_msgs_in,
			(unsigned long long)st.vs_msgs_out,
			(unsigned long long)st.vs_msgs_bad, st.vs_gpadls);
	}
	if ((c0 & 0x80) && ops->ended)
		ops->ended(s, 3);
	hvs_vmbus_destroy(s);
	fp_check_windows(p);
	return 0;
}
