/*
 * fuzz_guest_msg - the guest core's SynIC message boundary: msg.c's
 * copy-in and dispatch, and everything it drives (version negotiation,
 * offers and rescinds, GPADL_CREATED / TORNDOWN, OPENCHANNEL_RESULT,
 * UNLOAD_RESPONSE, event scanning), reached through the public API only:
 * vmbus_connect / vmbus_poll / vmbus_unload on the scripted port
 * (fuzzport.h), with a test driver that opens what it is offered.
 *
 * Input: 4 config bytes, then the host script (fuzzport.h ops).
 *   c0: bits 0-1 vCPUs - 1; bits 2-3 message vCPU; bit 4 monitor pages.
 *   c1: newest version to ask for (index into the guest's list, 0 = 5.3).
 *   c2: driver: bit 0 open on attach; bit 1 big rings (GPADL_BODY);
 *       bit 2 a transaction; bit 3 an extra 40-page GPADL; bit 4 two
 *       subchannels; bit 5 close and reopen; bit 6 probe declines;
 *       bit 7 attach fails after opening.
 *   c3: vmbus_poll rounds after connect.
 *
 * Oracles: the port's (no page the host holds is freed), and: after
 * vmbus_unload every page still allocated is counted as leaked
 * (bs_leaked_pages, plus the driver's own buffer when the core told it to
 * leak it without counting), i.e. nothing leaks unrecorded.
 */
#include "fuzz_common.h"
#include "fuzzport.h"

#include "hv/guid.h"
#include "hv/vmbus_pkt.h"
#include "vmbus/vmbus.h"

#define XBUF_PAGES 40u

static const uint32_t versions[] = {
	VMBUS_VERSION_IRON, VMBUS_VERSION_WIN10_RS5, VMBUS_VERSION_WIN10_RS4,
	VMBUS_VERSION_WIN10_RS3_1, VMBUS_VERSION_WIN10_RS3_0,
	VMBUS_VERSION_WIN10, VMBUS_VERSION_WIN8_1, VMBUS_VERSION_WIN8,
	VMBUS_VERSION_WIN7,
};

struct drv_state {
	struct fzp *ds_fp;
	struct vmbus_platform *ds_plat;
	uint8_t ds_flags;
	uint64_t ds_uncounted;		/* pages leaked with no core count */
	unsigned ds_attached;
};

struct dev_softc {
	struct vmbus_channel *sc_sub[2];
	unsigned sc_nsub;
	void *sc_buf;
	uint64_t sc_pfn[XBUF_PAGES];
	uint32_t sc_gpadl;
	bool sc_gpadl_live;
};

static struct drv_state g_ds;

static void cb(struct vmbus_channel *ch, void *arg)
{
	uint8_t buf[256];

	(void)arg;
	for (int i = 0; i < 16; i++) {
		uint32_t len = sizeof(buf);
		if (vmbus_chan_recv(ch, buf, &len, NULL) != 0)
			break;
	}
}

static int open_chan(struct vmbus_channel *ch)
{
	uint32_t pages = (g_ds.ds_flags & 2) ? 16 : 2;
	uint8_t ud[8] = { 1, 2, 3, 4 };

	return vmbus_chan_open(ch, pages * HV_PAGE_SIZE, pages * HV_PAGE_SIZE,
			       ud, sizeof(ud), cb, NULL);
}

static int drv_probe(struct vmbus_device *dev)
{
	(void)dev;
	return (g_ds.ds_flags & 0x40) ? -VMBUS_ENODEV : 0;
}

static void drv_detach(struct vmbus_device *dev);

static int drv_attach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);
	struct dev_softc *sc = calloc(1, sizeof(*sc));
	uint8_t f = g_ds.ds_flags;
	int r;

	if (sc == NULL)
		return -VMBUS_ENOMEM;
	vmbus_device_set_softc(dev, sc);
	g_ds.ds_attached++;
	if (!(f & 1))
		return 0;
	r = open_chan(ch);
	if (r == 0 && (f & 0x20)) {
		(void)vmbus_chan_close(ch);
		r = open_chan(ch);
	}
	if (r == 0 && (f & 4) && vmbus_xact_setup(ch, 4, 64, 64) == 0) {
		struct vmbus_xact *xa = vmbus_xact_get(ch);

		if (xa != NULL) {
			memset(vmbus_xact_req(xa), 0x5a, 16);
			if (vmbus_xact_send(xa, VMBUS_PACKET_TYPE_DATA_INBAND,
					    16) == 0)
				(void)vmbus_xact_wait(xa, 5000000);
			vmbus_xact_put(xa);
		}
	}
	if (r == 0 && (f & 8)) {
		sc->sc_buf = g_ds.ds_plat->page_alloc(g_ds.ds_plat->ctx,
						      XBUF_PAGES, sc->sc_pfn);
		if (sc->sc_buf != NULL) {
			int g = vmbus_gpadl_create(ch, sc->sc_pfn, XBUF_PAGES,
						   &sc->sc_gpadl);
			if (g == 0) {
				sc->sc_gpadl_live = true;
			} else if (g == -VMBUS_EISCONN) {
				/* The host's now: never freed, and the core
				 * does not count it (vmbus.h). */
				g_ds.ds_uncounted += XBUF_PAGES;
				sc->sc_buf = NULL;
			} else {
				(void)g_ds.ds_plat->page_free(g_ds.ds_plat->ctx,
							      sc->sc_buf,
							      XBUF_PAGES);
				sc->sc_buf = NULL;
			}
		}
	}
	if (r == 0 && (f & 0x10)) {
		int n = vmbus_chan_subchan_get(ch, 2, sc->sc_sub, 5000000);

		for (int i = 0; i < n && i < 2; i++) {
			if (open_chan(sc->sc_sub[i]) == 0)
				sc->sc_nsub++;
			else
				sc->sc_sub[i] = NULL;
		}
	}
	if (f & 0x80) {
		/* Fail after opening: the driver undoes its work. */
		drv_detach(dev);
		return -VMBUS_EIO;
	}
	return 0;
}

static void drv_detach(struct vmbus_device *dev)
{
	struct dev_softc *sc = vmbus_device_softc(dev);
	struct vmbus_channel *ch = vmbus_device_channel(dev);

	if (sc == NULL)
		return;
	for (unsigned i = 0; i < 2; i++)
		if (sc->sc_sub[i] != NULL)
			(void)vmbus_chan_close(sc->sc_sub[i]);
	if (sc->sc_gpadl_live) {
		if (vmbus_gpadl_destroy(ch, sc->sc_gpadl) == 0)
			(void)g_ds.ds_plat->page_free(g_ds.ds_plat->ctx,
						      sc->sc_buf, XBUF_PAGES);
		/* -EISCONN: leaked on purpose, counted by the core. */
	}
	(void)vmbus_chan_close(ch);
	free(sc);
	vmbus_device_set_softc(dev, NULL);
}

static const struct vmbus_driver drv = {
	.drv_name = "fuzz",
	.drv_class = HV_GUID_ECHO_INIT,
	.drv_probe = drv_probe,
	.drv_attach = drv_attach,
	.drv_detach = drv_detach,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fzp fp;
	struct vmbus_config cfg;
	struct vmbus_stats st;
	struct vmbus *vb = NULL;
	struct fz f;
	uint8_t c0, c1, c2, c3;

	fz_init(&f, data, size);
	c0 = fz_u8(&f);
	c1 = fz_u8(&f);
	c2 = fz_u8(&f);
	c3 = fz_u8(&f);
	fzp_init(&fp, 1u + (c0 & 3u), (c0 >> 2) & 3u, f.p, fz_left(&f));

	memset(&g_ds, 0, sizeof(g_ds));
	g_ds.ds_fp = &fp;
	g_ds.ds_plat = &fp.fp_plat;
	g_ds.ds_flags = c2;

	memset(&cfg, 0, sizeof(cfg));
	cfg.vc_max_version = versions[c1 % (sizeof(versions) /
					    sizeof(versions[0]))];
	cfg.vc_monitor_pages = (c0 & 0x10) != 0;
	cfg.vc_timeout_ns = 20000000;	/* 20 ticks of the port clock */
	cfg.vc_max_channels = 8;
	cfg.vc_max_relid = 64;
	FZ_CHECK(vmbus_create(&fp.fp_plat, &cfg, &vb) == 0, "create failed");
	FZ_CHECK(vmbus_driver_register(vb, &drv) == 0, "register failed");

	if (vmbus_connect(vb) == 0) {
		for (unsigned i = 0; i < c3 && (i < 4 || (!fzp_done(&fp) &&
							   !fzp_stuck(&fp)));
		     i++) {
			fzp_pump(&fp);
			fzp_advance(&fp);
			vmbus_poll(vb);
		}
	}
	(void)vmbus_unload(vb);
	vmbus_get_stats(vb, &st);
	vmbus_destroy(vb);
	if (fp.fp_verbose) {
		fprintf(stderr, "guest_msg: script %zu/%zu, msgs %llu bad %llu "
			"offers %llu leaked %llu, attached %u; posted:",
			fp.fp_spos, fp.fp_slen,
			(unsigned long long)st.bs_messages,
			(unsigned long long)st.bs_bad_messages,
			(unsigned long long)st.bs_offers,
			(unsigned long long)st.bs_leaked_pages, g_ds.ds_attached);
		for (unsigned t = 0; t < VMBUS_CHANMSG_COUNT; t++)
			if (fp.fp_posted[t])
				fprintf(stderr, " %u:%u", t, fp.fp_posted[t]);
		fputc('\n', stderr);
	}

	/* Nothing leaks unrecorded: every page still allocated was counted
	 * as leaked on purpose. */
	FZ_CHECK(fp.fp_pages_live == st.bs_leaked_pages + g_ds.ds_uncounted,
		 "%llu pages still allocated, %llu counted as leaked (+%llu "
		 "driver)", (unsigned long long)fp.fp_pages_live,
		 (unsigned long long)st.bs_leaked_pages,
		 (unsigned long long)g_ds.ds_uncounted);
	fzp_fini(&fp);
	return 0;
}
