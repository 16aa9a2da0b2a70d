/*
 * fuzz_host_switch - the host's internal virtual switch (src/host/net/
 * switch.c) fed by hostile guests: Ethernet frames from several NICs'
 * endpoints (hvs_net_send, the path netvsp takes for every frame a guest
 * transmits) with any addresses, 802.1Q tags, lengths (runts, oversized),
 * on trunk and access ports, with ports leaving and joining and NICs that
 * refuse frames (-EAGAIN).
 *
 * Input: c0 u8 (ports = 2 + c0 % 5), then per port u8 v: 0 trunk, else
 * access VLAN v & 7 (bit 7: VLAN 4094, the largest); then ops until the
 * input ends (low 2 bits of the op byte):
 *   0 send: u8 port, u8 flags, u16 tci if flags bit 0, u16 length (mod
 *     9300), then either (flags bit 1) u8 dst and u8 src selectors of a
 *     small MAC alphabet (bit 3 of a selector: multicast) and the rest of
 *     the frame zero-filled, or the frame's bytes raw;
 *   1 port u8: close it (or open it again if closed);
 *   2 port u8: its NIC refuses (-EAGAIN) or takes frames from now on;
 *   3 no-op.
 *
 * Oracles: a frame is never handed to the port it came from, nor to a
 * closed port; it arrives unchanged (length and bytes); an access port
 * gets only its VLAN's frames, untagged, a trunk gets the tag the frame
 * entered with; a VLAN mismatch on an access port, and VID 4095 (reserved)
 * on any port, is refused and counted;
 * a flooded frame reaches every other open port of its VLAN, a forwarded
 * one exactly the port that last sent from that MAC in that VLAN (an
 * independent model of the forwarding database), a frame for a MAC on its
 * own port goes nowhere; broadcast and multicast always flood; every
 * refusal of a NIC is counted (ss_dropped, es_rx_dropped); the endpoints'
 * counters and the switch's agree; ss_ports is the ports open; once every
 * port is closed the switch is gone.
 */
#include <errno.h>

#include "fuzz_common.h"

#include "host/loop.h"
#include "host/net/net.h"
#include "host/net/switch.h"

#define SW_NAME   "fzsw"
#define MAXP      6
#define MODEL_MAX 256

struct port {
	struct hvs_net_ep *ep;
	uint16_t vlan;			/* 0: trunk */
	bool refuse;
	/* counted by the callback for the send in progress */
	uint32_t offers;		/* frames offered (taken or refused) */
	uint32_t refused;
	uint64_t taken_total;
};

/* The forwarding database as the design describes it. */
struct fdb {
	uint16_t key;			/* VLAN id, or 0x1000 untagged */
	uint8_t mac[6];
	int port;
};

static struct hvs_loop *g_loop;
static struct port g_p[MAXP];
static unsigned g_np;
static struct fdb g_fdb[MODEL_MAX];
static unsigned g_nfdb;
static bool g_fdb_full;			/* the model lost track: no checks */

/* The send in progress. */
static struct {
	int src;
	const uint8_t *data;
	uint32_t len;
	uint16_t vid;			/* the VLAN it travels in */
	uint16_t tci;			/* tag towards trunks */
} g_cur;

static const struct hvs_net_nic_ops g_ops;

static int port_rx(void *arg, const struct hvs_net_frame *f)
{
	struct port *p = arg;
	int i = (int)(p - g_p);

	FZ_CHECK(g_cur.data != NULL, "frame delivered outside a send");
	FZ_CHECK(i != g_cur.src, "frame from port %d delivered back to it", i);
	FZ_CHECK(p->ep != NULL, "frame delivered to closed port %d", i);
	FZ_CHECK(f->nf_len == g_cur.len &&
		 memcmp(f->nf_data, g_cur.data, g_cur.len) == 0,
		 "frame changed on the way (%u bytes, %u sent)", f->nf_len,
		 g_cur.len);
	if (p->vlan != 0) {
		FZ_CHECK(g_cur.vid == p->vlan && f->nf_tci == 0,
			 "access port %d (VLAN %u) got VLAN %u tci 0x%x", i,
			 p->vlan, g_cur.vid, f->nf_tci);
	} else {
		FZ_CHECK(f->nf_tci == g_cur.tci, "trunk %d got tci 0x%x, "
			 "expected 0x%x", i, f->nf_tci, g_cur.tci);
	}
	p->offers++;
	if (p->refuse) {
		p->refused++;
		return -EAGAIN;
	}
	p->taken_total++;
	return 0;
}

static const struct hvs_net_nic_ops g_ops = { .no_rx = port_rx };

static void port_open(unsigned i)
{
	struct hvs_net_spec spec;
	char err[128], name[16];

	hvs_net_spec_init(&spec);
	spec.ns_kind = HVS_NET_SWITCH;
	snprintf(spec.ns_arg, sizeof(spec.ns_arg), "%s", SW_NAME);
	spec.ns_vlan = g_p[i].vlan;
	snprintf(name, sizeof(name), "fz/net%u", i);
	FZ_CHECK(hvs_net_open(g_loop, &spec, name, &g_ops, &g_p[i], &g_p[i].ep,
			      err, sizeof(err)) == 0, "open port %u: %s", i, err);
	g_p[i].taken_total = 0;
}

static void model_forget(int port)
{
	for (unsigned k = 0; k < g_nfdb;) {
		if (g_fdb[k].port == port)
			g_fdb[k] = g_fdb[--g_nfdb];
		else
			k++;
	}
}

static struct fdb *model_find(uint16_t key, const uint8_t *mac)
{
	for (unsigned k = 0; k < g_nfdb; k++)
		if (g_fdb[k].key == key && !memcmp(g_fdb[k].mac, mac, 6))
			return &g_fdb[k];
	return NULL;
}

static void model_learn(uint16_t key, const uint8_t *mac, int port)
{
	struct fdb *e = model_find(key, mac);

	if (e == NULL) {
		if (g_nfdb == MODEL_MAX) {
			g_fdb_full = true;
			return;
		}
		e = &g_fdb[g_nfdb++];
		e->key = key;
		memcpy(e->mac, mac, 6);
	}
	e->port = port;
}

static unsigned open_ports(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g_np; i++)
		n += g_p[i].ep != NULL;
	return n;
}

static void get_stats(struct hvs_switch_stats *st)
{
	FZ_CHECK(hvs_switch_get_stats(SW_NAME, st) == 0,
		 "switch gone with %u ports open", open_ports());
	FZ_CHECK(st->ss_ports == open_ports(), "%u ports counted, %u open",
		 st->ss_ports, open_ports());
}

static void do_send(struct fz *f)
{
	static uint8_t frame[9400];
	static const uint8_t macs[8][6] = {
		{ 0x02, 0, 0, 0, 0, 1 }, { 0x02, 0, 0, 0, 0, 2 },
		{ 0x02, 0, 0, 0, 0, 3 }, { 0x02, 0, 0, 0, 0, 4 },
		{ 0x02, 0x15, 0x5d, 0, 0, 1 }, { 0x00, 0, 0, 0, 0, 0 },
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x01, 0x00, 0x5e, 0, 0, 1 },
	};
	struct hvs_switch_stats a, b;
	struct hvs_net_ep_stats es0, es1;
	struct hvs_net_frame fr;
	int src = (int)(fz_u8(f) % g_np), r;
	uint8_t flags = fz_u8(f);
	uint16_t tci = (flags & 1) ? fz_u16(f) : 0, key;
	uint32_t len = fz_u16(f) % 9300u, offered = 0, refused = 0;
	struct port *sp = &g_p[src];
	struct fdb *known = NULL;
	bool vlan_bad = false, multi;

	if (flags & 2) {
		uint8_t d = fz_u8(f), s = fz_u8(f);

		memset(frame, 0, sizeof(frame));
		memcpy(frame, macs[d & 7], 6);
		memcpy(frame + 6, macs[s & 7], 6);
		frame[12] = 0x08;
		for (uint32_t i = 14; i < len; i++)
			frame[i] = (uint8_t)(i ^ d ^ s);
	} else {
		fz_bytes(f, frame, len);
	}
	if (sp->ep == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	fr.nf_data = frame;
	fr.nf_len = len;
	fr.nf_tci = tci;

	/* Where the frame should go (VID 4095 is reserved: nowhere). */
	vlan_bad = (tci & 0x0FFFu) == 0x0FFFu;
	if (sp->vlan != 0) {
		uint16_t fvid = tci & 0x0FFFu;

		vlan_bad = vlan_bad || (fvid != 0 && fvid != sp->vlan);
		g_cur.vid = sp->vlan;
		g_cur.tci = (uint16_t)((tci & 0xF000u) | sp->vlan);
	} else {
		g_cur.vid = tci & 0x0FFFu;
		g_cur.tci = tci;
	}
	key = g_cur.vid != 0 ? g_cur.vid : 0x1000u;
	multi = len >= 14 && (frame[0] & 1);
	/* The source is learned before the destination is looked up. */
	if (len >= 14 && len <= 9216 && !vlan_bad && !(frame[6] & 1))
		model_learn(key, frame + 6, src);
	if (len >= 14 && !vlan_bad && !multi)
		known = model_find(key, frame);

	get_stats(&a);
	hvs_net_get_stats(sp->ep, &es0);
	for (unsigned i = 0; i < g_np; i++)
		g_p[i].offers = g_p[i].refused = 0;
	g_cur.src = src;
	g_cur.data = frame;
	g_cur.len = len;
	r = hvs_net_send(sp->ep, &fr);
	g_cur.data = NULL;
	get_stats(&b);
	hvs_net_get_stats(sp->ep, &es1);
	if (b.ss_evictions != 0)
		g_fdb_full = true;	/* a full bucket: the model is off */
	for (unsigned i = 0; i < g_np; i++) {
		offered += g_p[i].offers;
		refused += g_p[i].refused;
	}

	if (len < 14 || len > 9216) {
		FZ_CHECK(r == (len < 14 ? -EINVAL : -EMSGSIZE) && offered == 0,
			 "%u-byte frame: %d, %u deliveries", len, r, offered);
		FZ_CHECK(es1.es_tx_dropped == es0.es_tx_dropped + 1,
			 "refused frame not counted");
		return;
	}
	if (vlan_bad) {
		FZ_CHECK(r == -EINVAL && offered == 0 &&
			 b.ss_vlan_dropped == a.ss_vlan_dropped + 1,
			 "VLAN %u frame on access port of VLAN %u: %d, %u "
			 "deliveries", tci & 0x0FFFu, sp->vlan, r, offered);
		return;
	}
	FZ_CHECK(r == 0, "send: %d", r);
	FZ_CHECK(es1.es_tx_frames == es0.es_tx_frames + 1 &&
		 es1.es_tx_bytes == es0.es_tx_bytes + len,
		 "sender's counters");
	FZ_CHECK(b.ss_dropped - a.ss_dropped == refused,
		 "%u refusals, %llu counted", refused,
		 (unsigned long long)(b.ss_dropped - a.ss_dropped));
	FZ_CHECK((b.ss_flooded - a.ss_flooded) + (b.ss_forwarded - a.ss_forwarded)
		 <= 1, "one frame flooded and forwarded");
	if (b.ss_flooded != a.ss_flooded) {
		/* every other open port of the VLAN, once */
		FZ_CHECK(multi || known == NULL || g_fdb_full,
			 "frame to a known MAC (port %d) flooded", known->port);
		for (unsigned i = 0; i < g_np; i++) {
			bool want = (int)i != src && g_p[i].ep != NULL &&
				    (g_p[i].vlan == 0 || g_p[i].vlan == g_cur.vid);

			FZ_CHECK(g_p[i].offers == (want ? 1u : 0u),
				 "flood: port %u got %u copies", i,
				 g_p[i].offers);
		}
	} else if (b.ss_forwarded != a.ss_forwarded) {
		FZ_CHECK(!multi, "multicast frame not flooded");
		FZ_CHECK(offered <= 1, "forwarded to %u ports", offered);
		if (!g_fdb_full) {
			FZ_CHECK(known != NULL && known->port != src &&
				 g_p[known->port].offers == 1,
				 "forwarded to the wrong port (model: %d)",
				 known ? known->port : -1);
		}
	} else {
		FZ_CHECK(offered == 0 && !multi, "frame neither flooded nor "
			 "forwarded, %u deliveries", offered);
		FZ_CHECK(g_fdb_full || (known != NULL && known->port == src),
			 "frame dropped silently (model: port %d)",
			 known ? known->port : -1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvs_switch_stats st;
	struct fz f;
	uint8_t c0;

	if (g_loop == NULL && (g_loop = hvs_loop_create()) == NULL)
		abort();
	fz_init(&f, data, size);
	memset(g_p, 0, sizeof(g_p));
	g_nfdb = 0;
	g_fdb_full = false;
	c0 = fz_u8(&f);
	g_np = 2u + c0 % 5u;
	for (unsigned i = 0; i < g_np; i++) {
		uint8_t v = fz_u8(&f);

		g_p[i].vlan = v == 0 ? 0 : (v & 0x80) ? 4094 : (v & 7) ? v & 7 : 1;
		port_open(i);
	}
	for (unsigned n = 0; fz_left(&f) > 0 && n < 4096; n++) {
		uint8_t op = fz_u8(&f);
		unsigned i;

		switch (op & 3) {
		case 0:
			do_send(&f);
			break;
		case 1:
			i = fz_u8(&f) % g_np;
			if (g_p[i].ep != NULL && open_ports() > 1) {
				struct hvs_net_ep_stats es;

				hvs_net_get_stats(g_p[i].ep, &es);
				FZ_CHECK(es.es_rx_frames == g_p[i].taken_total,
					 "port %u: %llu frames counted, %llu "
					 "taken", i,
					 (unsigned long long)es.es_rx_frames,
					 (unsigned long long)g_p[i].taken_total);
				hvs_net_close(g_p[i].ep);
				g_p[i].ep = NULL;
				model_forget((int)i);
			} else if (g_p[i].ep == NULL) {
				port_open(i);
			}
			break;
		case 2:
			i = fz_u8(&f) % g_np;
			g_p[i].refuse = !g_p[i].refuse;
			break;
		default:
			break;
		}
	}
	get_stats(&st);
	FZ_CHECK(st.ss_entries <= st.ss_learned, "%u entries, %llu learned",
		 st.ss_entries, (unsigned long long)st.ss_learned);
	for (unsigned i = 0; i < g_np; i++) {
		hvs_net_close(g_p[i].ep);
		g_p[i].ep = NULL;
	}
	FZ_CHECK(hvs_switch_get_stats(SW_NAME, &st) == -ENOENT,
		 "switch outlives its ports");
	return 0;
}
