/*
 * tests/guest/test_guest_core.c - unit tests of the guest VMBus core
 * against the fake port and the scripted host double (fakeport.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fakeport.h"
#include "hv/guid.h"
#include "vmbus/vmbus.h"

static const uint32_t all_versions[] = {
	VMBUS_VERSION_IRON, VMBUS_VERSION_WIN10_RS5, VMBUS_VERSION_WIN10_RS4,
	VMBUS_VERSION_WIN10_RS3_1, VMBUS_VERSION_WIN10_RS3_0,
	VMBUS_VERSION_WIN10, VMBUS_VERSION_WIN8_1, VMBUS_VERSION_WIN8,
	VMBUS_VERSION_WIN7,
};
#define NVERSIONS (sizeof(all_versions) / sizeof(all_versions[0]))

/* Yields until cond holds (another thread makes it so); a test that
 * waits 10^8 yields for it fails instead of hanging. */
#define SPIN_UNTIL(cond)						\
	do {								\
		for (uint64_t spins_ = 0; !(cond); spins_++) {		\
			assert_true(spins_ < 100000000ull);		\
			sched_yield();					\
		}							\
	} while (0)

struct env {
	struct fakeport fp;
	struct vmbus *vb;
	struct vmbus_config cfg;
};

static struct env *env_new(uint32_t nvcpu)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	fp_init(&e->fp, nvcpu);
	e->cfg.vc_timeout_ns = 50ull * 1000 * 1000;	/* virtual clock */
	return e;
}

static int env_connect(struct env *e)
{
	int r = vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb);

	assert_int_equal(r, 0);
	return vmbus_connect(e->vb);
}

static void env_free(struct env *e)
{
	vmbus_destroy(e->vb);
	e->vb = NULL;
	/* Everything not leaked on purpose was returned to the port. */
	(void)fp_fini(&e->fp);
	free(e);
}

/* The channel with relid r, found through the public iteration. */
struct find_arg {
	uint32_t relid;
	int found;
	struct vmbus_chan_info ci;
};

static int find_cb(void *arg, const struct vmbus_chan_info *ci)
{
	struct find_arg *fa = arg;

	if (ci->ci_relid == fa->relid) {
		fa->ci = *ci;
		fa->found = 1;
	}
	return 0;
}

static int count_cb(void *arg, const struct vmbus_chan_info *ci)
{
	(void)ci;
	(*(int *)arg)++;
	return 0;
}

static int nchannels(struct vmbus *vb)
{
	int n = 0;

	vmbus_foreach_channel(vb, count_cb, &n);
	return n;
}

/* A driver that grabs a channel handle for tests. */
static struct vmbus_channel *grabbed[16];
static int attach_calls, detach_calls, probe_calls;

static int grab_probe(struct vmbus_device *dev)
{
	(void)dev;
	probe_calls++;
	return 0;
}

static int grab_attach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);

	attach_calls++;
	grabbed[vmbus_chan_relid(ch) % 16] = ch;
	return 0;
}

static void grab_detach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);

	detach_calls++;
	if (vmbus_chan_state(ch) != VMBUS_CHAN_OFFERED)
		(void)vmbus_chan_close(ch);
	grabbed[vmbus_chan_relid(ch) % 16] = NULL;
}

static const struct vmbus_driver grab_echo = {
	.drv_name = "grab",
	.drv_class = HV_GUID_ECHO_INIT,
	.drv_probe = grab_probe,
	.drv_attach = grab_attach,
	.drv_detach = grab_detach,
};

static void reset_grab(void)
{
	memset(grabbed, 0, sizeof(grabbed));
	attach_calls = detach_calls = probe_calls = 0;
}

/* Connect with one echo channel at relid 5, open it with the given rings. */
static struct env *env_echo(uint32_t tx, uint32_t rx, bool echo)
{
	struct env *e = env_new(1);

	reset_grab();
	fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, echo);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	assert_non_null(grabbed[5]);
	if (tx)
		assert_int_equal(vmbus_chan_open(grabbed[5], tx, rx, NULL, 0,
		    NULL, NULL), 0);
	return e;
}

/* ---- negotiation ---- */

static void test_negotiate_newest(void **state)
{
	struct env *e = env_new(2);

	(void)state;
	e->fp.fp_host.h_msg_connid = 7;	/* must be used afterwards */
	assert_int_equal(env_connect(e), 0);
	assert_int_equal(vmbus_version(e->vb), VMBUS_VERSION_IRON);
	assert_int_equal(e->fp.fp_host.h_nrequested, 1);
	assert_int_equal(e->fp.fp_host.h_contact_connid[0],
	    VMBUS_MESSAGE_CONNECTION_ID_4);
	/* REQUESTOFFERS went to connection 7 (else the host refused it). */
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_REQUESTOFFERS), 1);
	/* SynIC programmed on both vCPUs, SINT2 unmasked with a vector. */
	for (int vp = 0; vp < 2; vp++) {
		assert_true(e->fp.fp_simp[vp] & 1);
		assert_true(e->fp.fp_siefp[vp] & 1);
		assert_true(e->fp.fp_scontrol[vp] & 1);
		assert_false(e->fp.fp_sint2[vp] & HV_SINT_MASKED);
		assert_true((e->fp.fp_sint2[vp] & 0xFF) >= 16);
	}
	assert_true(e->fp.fp_guest_os_id >> 63);	/* open-source format */
	assert_true(e->fp.fp_hypercall & 1);
	assert_false(e->fp.fp_host.h_nonzero_reserved);
	assert_int_equal(vmbus_unload(e->vb), 0);
	assert_int_equal(e->fp.fp_host.h_unloads, 1);
	/* SynIC undone */
	assert_false(e->fp.fp_simp[0] & 1);
	assert_true(e->fp.fp_sint2[0] & HV_SINT_MASKED);
	env_free(e);
}

/* The host accepts only versions[k..]: the guest walks down to k. */
static void test_negotiate_fallback_each(void **state)
{
	(void)state;
	for (size_t k = 0; k < NVERSIONS; k++) {
		struct env *e = env_new(1);
		struct fake_host *h = &e->fp.fp_host;

		memset(h->h_accept, 0, sizeof(h->h_accept));
		for (size_t i = k; i < NVERSIONS; i++)
			h->h_accept[i - k] = all_versions[i];
		assert_int_equal(env_connect(e), 0);
		assert_int_equal(vmbus_version(e->vb), all_versions[k]);
		assert_int_equal(h->h_nrequested, k + 1);
		for (size_t i = 0; i <= k; i++) {
			assert_int_equal(h->h_requested[i], all_versions[i]);
			assert_int_equal(h->h_contact_connid[i],
			    all_versions[i] >= VMBUS_VERSION_MULTICLIENT ?
			    VMBUS_MESSAGE_CONNECTION_ID_4 :
			    VMBUS_MESSAGE_CONNECTION_ID);
		}
		/* UNLOAD only from 3.0 on. */
		assert_int_equal(vmbus_unload(e->vb), 0);
		assert_int_equal(h->h_unloads,
		    all_versions[k] >= VMBUS_VERSION_WIN8_1 ? 1 : 0);
		assert_false(h->h_nonzero_reserved);
		env_free(e);
	}
}

static void test_negotiate_conn4_fallback(void **state)
{
	struct env *e = env_new(1);
	struct fake_host *h = &e->fp.fp_host;

	(void)state;
	h->h_no_conn4 = true;	/* an old host: connection 4 unknown */
	memset(h->h_accept, 0, sizeof(h->h_accept));
	h->h_accept[0] = VMBUS_VERSION_WIN10_RS3_0;
	h->h_accept[1] = VMBUS_VERSION_WIN8;
	assert_int_equal(env_connect(e), 0);
	assert_int_equal(vmbus_version(e->vb), VMBUS_VERSION_WIN10_RS3_0);
	/* 5.x were refused by the hypercall, so the host saw only 4.1. */
	assert_int_equal(h->h_nrequested, 1);
	assert_int_equal(h->h_contact_connid[0], VMBUS_MESSAGE_CONNECTION_ID);
	env_free(e);
}

static void test_negotiate_none(void **state)
{
	struct env *e = env_new(1);

	(void)state;
	memset(e->fp.fp_host.h_accept, 0, sizeof(e->fp.fp_host.h_accept));
	assert_int_equal(env_connect(e), -VMBUS_EOPNOTSUPP);
	assert_int_equal(e->fp.fp_host.h_nrequested, NVERSIONS);
	assert_int_equal(vmbus_version(e->vb), 0);
	/* Everything the core allocated went back. */
	assert_int_equal(e->fp.fp_pages_live, 0);
	env_free(e);
}

static void test_negotiate_no_reply(void **state)
{
	struct env *e = env_new(1);

	(void)state;
	e->fp.fp_host.h_vresp_drop = true;
	assert_int_equal(env_connect(e), -VMBUS_ETIMEDOUT);
	assert_int_equal(e->fp.fp_pages_live, 0);
	env_free(e);
}

static void test_negotiate_bad_state(void **state)
{
	struct env *e = env_new(1);

	(void)state;
	/* Accepted but "failed": every version is moved past. */
	e->fp.fp_host.h_vresp_state = VMBUS_CONNECTION_FAILED_LOW_RESOURCES;
	memset(e->fp.fp_host.h_accept, 0, sizeof(e->fp.fp_host.h_accept));
	e->fp.fp_host.h_accept[0] = VMBUS_VERSION_WIN8;
	assert_int_equal(env_connect(e), -VMBUS_EOPNOTSUPP);
	env_free(e);
}

static void test_post_retry(void **state)
{
	struct env *e = env_new(1);
	struct vmbus_stats st;

	(void)state;
	e->fp.fp_host.h_post_busy = 3;
	assert_int_equal(env_connect(e), 0);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_post_retries, 3);
	env_free(e);
}

/* ---- offers ---- */

static void test_offers_probe_attach(void **state)
{
	struct env *e = env_new(1);
	struct find_arg fa = { .relid = 5 };
	struct vmbus_stats st;

	(void)state;
	reset_grab();
	fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, true);
	fh_add_chan(&e->fp, 9, &fh_guid_other, &fh_guid_inst[1], 0, false);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	/* Registered before connect: attached when the offers are in. */
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo),
	    -VMBUS_EEXIST);
	assert_int_equal(vmbus_connect(e->vb), 0);
	assert_int_equal(vmbus_connect(e->vb), -VMBUS_EBUSY);
	assert_int_equal(nchannels(e->vb), 2);
	assert_int_equal(probe_calls, 1);
	assert_int_equal(attach_calls, 1);
	assert_non_null(grabbed[5]);
	vmbus_foreach_channel(e->vb, find_cb, &fa);
	assert_true(fa.found);
	assert_true(hv_guid_equal(&fa.ci.ci_class, &fh_guid_echo));
	assert_true(hv_guid_equal(&fa.ci.ci_instance, &fh_guid_inst[0]));
	assert_int_equal(fa.ci.ci_conn_id, 0x2005);
	assert_int_equal(fa.ci.ci_state, VMBUS_CHAN_OFFERED);
	assert_string_equal(fa.ci.ci_driver, "grab");
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_offers, 2);
	assert_int_equal(st.bs_bad_offers, 0);

	/* Hot-add after connect: attached by deferred work (polled: poll). */
	struct fh_chan *c = fh_add_chan(&e->fp, 11, &fh_guid_echo,
	    &fh_guid_inst[2], 0, true);
	fh_offer(&e->fp, c);
	vmbus_poll(e->vb);
	assert_int_equal(attach_calls, 2);
	assert_non_null(grabbed[11]);
	assert_int_equal(nchannels(e->vb), 3);

	/* A driver registered late binds to existing devices. */
	env_free(e);
	assert_int_equal(detach_calls, 2);
}

/*
 * vmbus_device_driver() names the driver from drv_probe on: a driver that
 * embeds its struct vmbus_driver in its softc finds itself there. Two
 * drivers for one class: the first declines in probe, the second binds.
 */
struct drv_seen {
	struct vmbus_driver ds_drv;	/* embedded, found by offset */
	int ds_probe_ok;		/* probe saw itself, no softc */
	int ds_attach_ok;
	int ds_detach_ok;
	bool ds_decline;
};

static struct drv_seen *drv_seen_of(struct vmbus_device *dev)
{
	const struct vmbus_driver *d = vmbus_device_driver(dev);

	return d ? (struct drv_seen *)(void *)((char *)(uintptr_t)d -
	    offsetof(struct drv_seen, ds_drv)) : NULL;
}

static int seen_probe(struct vmbus_device *dev)
{
	struct drv_seen *ds = drv_seen_of(dev);

	if (ds == NULL)
		return -VMBUS_EINVAL;
	if (vmbus_device_softc(dev) == NULL)
		ds->ds_probe_ok++;
	return ds->ds_decline ? -VMBUS_ENODEV : 0;
}

static int seen_attach(struct vmbus_device *dev)
{
	struct drv_seen *ds = drv_seen_of(dev);

	if (ds == NULL)
		return -VMBUS_EINVAL;
	ds->ds_attach_ok++;
	vmbus_device_set_softc(dev, ds);
	return 0;
}

static void seen_detach(struct vmbus_device *dev)
{
	struct drv_seen *ds = drv_seen_of(dev);

	if (ds != NULL && vmbus_device_softc(dev) == ds)
		ds->ds_detach_ok++;
}

static void test_device_driver_from_probe(void **state)
{
	struct env *e = env_new(1);
	struct drv_seen a = {
		.ds_drv = { .drv_name = "decliner", .drv_class = HV_GUID_ECHO_INIT,
		    .drv_probe = seen_probe, .drv_attach = seen_attach,
		    .drv_detach = seen_detach },
		.ds_decline = true,
	};
	struct drv_seen b = {
		.ds_drv = { .drv_name = "binder", .drv_class = HV_GUID_ECHO_INIT,
		    .drv_probe = seen_probe, .drv_attach = seen_attach,
		    .drv_detach = seen_detach },
	};
	struct find_arg fa = { .relid = 5 };

	(void)state;
	fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, false);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &a.ds_drv), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &b.ds_drv), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	assert_int_equal(a.ds_probe_ok, 1);
	assert_int_equal(a.ds_attach_ok, 0);
	assert_int_equal(b.ds_probe_ok, 1);
	assert_int_equal(b.ds_attach_ok, 1);
	vmbus_foreach_channel(e->vb, find_cb, &fa);
	assert_true(fa.found);
	assert_string_equal(fa.ci.ci_driver, "binder");
	assert_int_equal(vmbus_unload(e->vb), 0);
	assert_int_equal(b.ds_detach_ok, 1);
	assert_int_equal(a.ds_detach_ok, 0);
	env_free(e);
}

static void send_offer(struct env *e, uint32_t relid, const struct hv_guid *cls,
    const struct hv_guid *inst, uint16_t sub, uint32_t connid,
    uint8_t monid, uint8_t monalloc, uint32_t len)
{
	struct vmbus_chanmsg_offerchannel of;

	memset(&of, 0, sizeof(of));
	of.of_hdr.chm_type = VMBUS_CHANMSG_OFFERCHANNEL;
	of.of_if_type = *cls;
	of.of_if_instance = *inst;
	of.of_sub_channel_index = sub;
	of.of_child_relid = relid;
	of.of_monitorid = monid;
	of.of_monitor_allocated = monalloc;
	of.of_is_dedicated_interrupt = 1;
	of.of_connection_id = connid;
	fh_send_msg(&e->fp, &of, len);
}

static void test_offers_malformed(void **state)
{
	struct env *e = env_new(1);
	struct vmbus_stats st;
	struct find_arg fa = { .relid = 5 };
	const struct hv_guid *E = &fh_guid_echo, *O = &fh_guid_other;

	(void)state;
	e->fp.fp_quiet = true;
	fh_add_chan(&e->fp, 5, E, &fh_guid_inst[0], 0, false);
	e->cfg.vc_max_relid = 256;
	assert_int_equal(env_connect(e), 0);

	send_offer(e, 0, O, &fh_guid_inst[3], 0, 0x2100, 0xFF, 0, 196);
	send_offer(e, 256, O, &fh_guid_inst[3], 0, 0x2100, 0xFF, 0, 196);
	send_offer(e, 0xFFFFFFFF, O, &fh_guid_inst[3], 0, 0x2100, 0xFF, 0, 196);
	/* relid in use, with different GUIDs: must not overwrite */
	send_offer(e, 5, O, &fh_guid_inst[3], 0, 0x2100, 0xFF, 0, 196);
	/* duplicate (type, instance) primary */
	send_offer(e, 6, E, &fh_guid_inst[0], 0, 0x2100, 0xFF, 0, 196);
	/* subchannel without primary */
	send_offer(e, 7, O, &fh_guid_inst[4], 3, 0x2100, 0xFF, 0, 196);
	/* monitor id out of range */
	send_offer(e, 8, O, &fh_guid_inst[5], 0, 0x2100, 200, 1, 196);
	/* connection id 0 and > 24 bits */
	send_offer(e, 9, O, &fh_guid_inst[6], 0, 0, 0xFF, 0, 196);
	send_offer(e, 10, O, &fh_guid_inst[6], 0, 0x01000000, 0xFF, 0, 196);
	/* short */
	send_offer(e, 11, O, &fh_guid_inst[7], 0, 0x2100, 0xFF, 0, 100);
	vmbus_poll(e->vb);

	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_bad_offers, 9);
	assert_int_equal(st.bs_bad_messages, 1);	/* the short one */
	assert_int_equal(st.bs_offers, 1);
	assert_int_equal(nchannels(e->vb), 1);
	vmbus_foreach_channel(e->vb, find_cb, &fa);
	assert_true(hv_guid_equal(&fa.ci.ci_class, E));
	assert_true(hv_guid_equal(&fa.ci.ci_instance, &fh_guid_inst[0]));

	/* A valid subchannel of relid 5 is accepted, a duplicate index not. */
	send_offer(e, 12, E, &fh_guid_inst[0], 1, 0x2100, 0xFF, 0, 196);
	send_offer(e, 13, E, &fh_guid_inst[0], 1, 0x2101, 0xFF, 0, 196);
	vmbus_poll(e->vb);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_offers, 2);
	assert_int_equal(st.bs_bad_offers, 10);
	assert_true(e->fp.fp_logs > 0);
	env_free(e);
}

static void test_unexpected_messages(void **state)
{
	struct env *e = env_new(1);
	struct vmbus_stats st;
	uint8_t m[240];

	(void)state;
	e->fp.fp_quiet = true;
	assert_int_equal(env_connect(e), 0);
	memset(m, 0, sizeof(m));
	uint32_t types[] = { 0, 99, VMBUS_CHANMSG_OPENCHANNEL_RESULT,
	    VMBUS_CHANMSG_GPADL_CREATED, VMBUS_CHANMSG_GPADL_TORNDOWN,
	    VMBUS_CHANMSG_UNLOAD_RESPONSE, VMBUS_CHANMSG_VERSION_RESPONSE,
	    VMBUS_CHANMSG_RESCIND_CHANNELOFFER, VMBUS_CHANMSG_INITIATE_CONTACT,
	    VMBUS_CHANMSG_ALLOFFERS_DELIVERED };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memcpy(m, &types[i], 4);
		fh_send_msg(&e->fp, m, 240);
	}
	/* and one too short for its type */
	uint32_t t = VMBUS_CHANMSG_OPENCHANNEL_RESULT;
	memcpy(m, &t, 4);
	fh_send_msg(&e->fp, m, 12);
	vmbus_poll(e->vb);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_bad_messages, 11);
	/* The slot kept flowing: a later message is still handled. */
	struct fh_chan *c = fh_add_chan(&e->fp, 3, &fh_guid_other,
	    &fh_guid_inst[1], 0, false);
	fh_offer(&e->fp, c);
	vmbus_poll(e->vb);
	assert_int_equal(nchannels(e->vb), 1);
	env_free(e);
}

/* ---- GPADL ---- */

static void test_gpadl_split(void **state)
{
	/* 32 + 27 = 59 pages = 26 in the header + 28 + 5 in two bodies */
	struct env *e = env_echo(32 * 4096, 27 * 4096, true);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct fh_gpadl *g = NULL;

	(void)state;
	assert_true(c->c_open);
	for (int i = 0; i < FH_MAX_GPADLS; i++)
		if (e->fp.fp_host.h_gpadl[i].g_used)
			g = &e->fp.fp_host.h_gpadl[i];
	assert_non_null(g);
	assert_int_equal(g->g_handle, c->c_gpadl);
	assert_int_equal(g->g_buflen, 8 + 59 * 8);
	assert_int_equal(g->g_header_pfns, 26);
	assert_int_equal(g->g_bodies, 2);
	assert_int_equal(g->g_body_max_pfns, 28);
	assert_int_equal(*(uint32_t *)g->g_range, 59 * 4096);	/* byte_count */
	assert_int_equal(*(uint32_t *)(g->g_range + 4), 0);	/* offset */
	for (int i = 1; i < 59; i++)
		assert_int_equal(*(uint64_t *)(g->g_range + 8 + 8 * i),
		    *(uint64_t *)(g->g_range + 8) + i);
	/* exact message sizes: 20 + 8 + 26*8; 16 + 28*8; 16 + 5*8 */
	int seen = 0;
	for (uint32_t i = 0; i < e->fp.fp_host.h_nlog; i++) {
		if (e->fp.fp_host.h_log[i] == VMBUS_CHANMSG_GPADL_HEADER) {
			assert_int_equal(e->fp.fp_host.h_log_len[i], 236);
			assert_int_equal(e->fp.fp_host.h_log_len[i + 1], 240);
			assert_int_equal(e->fp.fp_host.h_log_len[i + 2], 56);
			seen++;
		}
	}
	assert_int_equal(seen, 1);
	assert_int_equal(c->c_userdata[0], 0);
	assert_false(e->fp.fp_host.h_nonzero_reserved);
	env_free(e);
}

static void test_gpadl_driver_buffer(void **state)
{
	struct env *e = env_echo(2 * 4096, 2 * 4096, true);
	const struct vmbus_platform *p = &e->fp.fp_plat;
	uint64_t pfns[30];
	uint32_t h1 = 0, h2 = 0;
	void *va;

	(void)state;
	va = p->page_alloc(p->ctx, 30, pfns);
	assert_non_null(va);
	assert_int_equal(vmbus_gpadl_create(grabbed[5], pfns, 30, &h1), 0);
	assert_int_equal(vmbus_gpadl_create(grabbed[5], pfns, 3, &h2), 0);
	assert_int_not_equal(h1, 0);
	assert_int_not_equal(h1, h2);
	assert_non_null(fh_find_gpadl(&e->fp, h1));
	assert_int_equal(vmbus_gpadl_create(grabbed[5], pfns, 0, &h2),
	    -VMBUS_EINVAL);
	assert_int_equal(vmbus_gpadl_destroy(grabbed[5], h1), 0);
	assert_null(fh_find_gpadl(&e->fp, h1));
	assert_int_equal(vmbus_gpadl_destroy(grabbed[5], h1), -VMBUS_EINVAL);

	/* The host refuses a GPADL */
	e->fp.fp_quiet = true;
	e->fp.fp_host.h_gpadl_status = 0xC0000001;
	assert_int_equal(vmbus_gpadl_create(grabbed[5], pfns, 3, &h1),
	    -VMBUS_EIO);
	e->fp.fp_host.h_gpadl_status = 0;

	/* Teardown never answered: -EISCONN, pages counted as leaked. */
	e->fp.fp_host.h_teardown_noreply = true;
	struct vmbus_stats st;
	assert_int_equal(vmbus_gpadl_destroy(grabbed[5], h2), -VMBUS_EISCONN);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_leaked_pages, 3);
	e->fp.fp_host.h_teardown_noreply = false;
	assert_int_equal(p->page_free(p->ctx, va, 30), 0);	/* test's own */
	env_free(e);
}

/* ---- open / close ---- */

static void test_open_close(void **state)
{
	struct env *e = env_echo(0, 0, true);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	uint64_t before = e->fp.fp_pages_live;
	uint8_t ud[4] = { 1, 2, 3, 4 };
	struct vmbus_chan_info ci;

	(void)state;
	assert_int_equal(vmbus_chan_open(ch, 4096, 8192, NULL, 0, NULL, NULL),
	    -VMBUS_EINVAL);
	assert_int_equal(vmbus_chan_open(ch, 8192, 12288 + 1, NULL, 0, NULL,
	    NULL), -VMBUS_EINVAL);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, ud, 121, NULL, NULL),
	    -VMBUS_EINVAL);
	assert_int_equal(vmbus_chan_close(ch), -VMBUS_EINVAL);

	assert_int_equal(vmbus_chan_open(ch, 3 * 4096, 4 * 4096, ud, 4, NULL,
	    NULL), 0);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_OPEN);
	assert_true(c->c_open);
	assert_memory_equal(c->c_userdata, ud, 4);
	assert_int_equal(c->c_userdata[4], 0);
	assert_int_equal(e->fp.fp_pages_live, before + 7);
	assert_int_equal(vmbus_chan_get_info(ch, &ci), 0);
	assert_int_equal(ci.ci_tx_ring_bytes, 3 * 4096);
	assert_int_equal(ci.ci_rx_ring_bytes, 4 * 4096);
	/* opening twice is a caller bug */
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL),
	    -VMBUS_EINVAL);

	assert_int_equal(vmbus_chan_close(ch), 0);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_CLOSED);
	assert_true(c->c_closed_seen);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_CLOSECHANNEL), 1);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_GPADL_TEARDOWN), 1);
	assert_int_equal(e->fp.fp_pages_live, before);
	/* CLOSECHANNEL came before GPADL_TEARDOWN */
	uint32_t ic = 0, it = 0;
	for (uint32_t i = 0; i < e->fp.fp_host.h_nlog; i++) {
		if (e->fp.fp_host.h_log[i] == VMBUS_CHANMSG_CLOSECHANNEL)
			ic = i;
		if (e->fp.fp_host.h_log[i] == VMBUS_CHANMSG_GPADL_TEARDOWN)
			it = i;
	}
	assert_true(ic < it);

	/* and open again */
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    "abc", 3, 1), 0);
	assert_int_equal(vmbus_chan_close(ch), 0);
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    "abc", 3, 1), -VMBUS_ENODEV);
	assert_false(e->fp.fp_host.h_nonzero_reserved);
	env_free(e);
}

static void test_open_refused_and_timeout(void **state)
{
	struct env *e = env_echo(0, 0, true);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	uint64_t before = e->fp.fp_pages_live;

	(void)state;
	e->fp.fp_quiet = true;
	c->c_open_status = 0xC0000001;
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL),
	    -VMBUS_EIO);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_CLOSED);
	assert_int_equal(e->fp.fp_pages_live, before);
	assert_non_null(strstr(e->fp.fp_logtext, "grab/5: host refused open "
	    "at OPENCHANNEL_RESULT (status 0xc0000001)"));
	c->c_open_status = 0;
	c->c_open_noreply = true;
	e->fp.fp_logtext[0] = '\0';
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL),
	    -VMBUS_ETIMEDOUT);
	assert_int_equal(e->fp.fp_pages_live, before);	/* torn down */
	/* which channel, which step, how long against which limit */
	assert_non_null(strstr(e->fp.fp_logtext, "grab/5: open timed out "
	    "waiting for OPENCHANNEL_RESULT after 50 ms (limit 50 ms)\n"));
	c->c_open_noreply = false;
	/* page allocation failure */
	e->fp.fp_fail_alloc_after = 0;
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL),
	    -VMBUS_ENOMEM);
	e->fp.fp_fail_alloc_after = -1;
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL), 0);
	env_free(e);
}

static void test_close_teardown_unanswered(void **state)
{
	struct env *e = env_echo(8192, 8192, true);
	struct vmbus_stats st;
	uint64_t live = e->fp.fp_pages_live;

	(void)state;
	e->fp.fp_quiet = true;
	e->fp.fp_host.h_teardown_noreply = true;
	assert_int_equal(vmbus_chan_close(grabbed[5]), -VMBUS_EISCONN);
	assert_int_equal(vmbus_chan_state(grabbed[5]), VMBUS_CHAN_CLOSED);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_leaked_pages, 4);
	/* Leaked, never freed: the pages are still allocated. */
	assert_int_equal(e->fp.fp_pages_live, live);
	env_free(e);
}

/* ---- send / receive ---- */

static void test_send_recv_wrap(void **state)
{
	/* Small rings (4 KiB data) so the traffic wraps many times. */
	struct env *e = env_echo(8192, 8192, true);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_chan_stats cs;
	uint8_t out[2000], in[2048];

	(void)state;
	for (uint32_t i = 0; i < 300; i++) {
		uint32_t len = 1 + (i * 37) % 1500, got = sizeof(in);
		struct vmbus_pkt_info pi;

		for (uint32_t k = 0; k < len; k++)
			out[k] = (uint8_t)(i + k * 7);
		assert_int_equal(vmbus_chan_send(ch,
		    VMBUS_PACKET_TYPE_DATA_INBAND, 0, out, len, 1000 + i), 0);
		assert_int_equal(vmbus_chan_wait_rx(ch, 1000000), 0);
		assert_int_equal(vmbus_chan_recv(ch, in, &got, &pi), 0);
		assert_int_equal(got, (len + 7) & ~7u);	/* padding included */
		assert_memory_equal(in, out, len);
		for (uint32_t k = len; k < got; k++)
			assert_int_equal(in[k], 0);
		assert_int_equal(pi.pi_type, VMBUS_PACKET_TYPE_DATA_INBAND);
		assert_int_equal(pi.pi_trans_id, 1000 + i);
		got = sizeof(in);
		assert_int_equal(vmbus_chan_recv(ch, in, &got, NULL),
		    -VMBUS_EAGAIN);
	}
	assert_int_equal(vmbus_chan_get_stats(ch, &cs), 0);
	assert_int_equal(cs.cs_tx_packets, 300);
	assert_int_equal(cs.cs_rx_packets, 300);
	assert_int_equal(cs.cs_proto_errors, 0);
	/* -EMSGSIZE for what can never fit */
	static uint8_t big[8192];
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    big, 4096, 1), -VMBUS_EMSGSIZE);
	assert_true(vmbus_chan_max_inband(ch) < 4096);
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    big, vmbus_chan_max_inband(ch), 1), 0);
	env_free(e);
}

static void test_ring_full_and_pending(void **state)
{
	/* Host consumes nothing (not echo): the TX ring fills. */
	struct env *e = env_echo(8192, 8192, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_chan_stats cs;
	uint8_t buf[512] = { 0 }, pkt[1024];
	int n = 0, r;

	(void)state;
	while ((r = vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    buf, sizeof(buf), 1)) == 0)
		n++;
	assert_int_equal(r, -VMBUS_EAGAIN);
	assert_true(n >= 6 && n <= 8);
	/* pending_send_sz was set for the host */
	assert_int_not_equal(c->c_in.rb_ctl->rc_pending_send_sz, 0);
	assert_int_equal(vmbus_chan_wait_tx(ch, sizeof(buf), 100000),
	    -VMBUS_ETIMEDOUT);
	/* Host drains everything; its read_done signals the guest. */
	while (fh_read_pkt(&e->fp, c, pkt, sizeof(pkt)) > 0)
		;
	assert_int_equal(vmbus_chan_wait_tx(ch, sizeof(buf), 1000000), 0);
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    buf, sizeof(buf), 1), 0);
	assert_int_equal(c->c_in.rb_ctl->rc_pending_send_sz, 0);
	vmbus_chan_get_stats(ch, &cs);
	assert_true(cs.cs_tx_full >= 1);
	env_free(e);
}

static void test_recv_enobufs_and_pkt(void **state)
{
	struct env *e = env_echo(8192, 8192, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	uint8_t data[100];
	_Alignas(8) uint8_t buf[256];
	uint32_t len = 10;
	struct vmbus_pkt_info pi;

	(void)state;
	memset(data, 0xAB, sizeof(data));
	assert_int_equal(fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_DATA_INBAND,
	    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED, 77, data, 100), 0);
	assert_int_equal(vmbus_chan_recv(ch, buf, &len, &pi), -VMBUS_ENOBUFS);
	assert_int_equal(len, 104);
	len = 50;
	assert_int_equal(vmbus_chan_recv_pkt(ch, buf, &len, &pi), -VMBUS_ENOBUFS);
	assert_int_equal(len, 120);
	assert_int_equal(vmbus_chan_recv_pkt(ch, buf, &len, &pi), 0);
	assert_int_equal(len, 120);
	assert_int_equal(pi.pi_flags, VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	assert_int_equal(pi.pi_hdr_len, 16);
	assert_int_equal(((struct vmbus_packet_desc *)buf)->pd_trans_id, 77);
	assert_memory_equal(buf + 16, data, 100);
	env_free(e);
}

/* Bad packets: each breaks the channel, counted, no crash. */
static void bad_case(const uint8_t *raw, uint32_t len, int corrupt_windex)
{
	struct env *e = env_echo(8192, 8192, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_xact *xa;
	struct vmbus_chan_stats cs;
	uint8_t buf[8192];
	uint32_t got = sizeof(buf);

	e->fp.fp_quiet = true;
	assert_int_equal(vmbus_xact_setup(ch, 4, 64, 64), 0);
	xa = vmbus_xact_get(ch);
	assert_non_null(xa);
	assert_int_equal(vmbus_xact_send(xa, VMBUS_PACKET_TYPE_DATA_INBAND, 8), 0);
	if (raw)
		assert_int_equal(fh_write_raw(&e->fp, c, raw, len), 0);
	if (corrupt_windex) {
		c->c_out.rb_ctl->rc_write_index = (uint32_t)corrupt_windex;
		fh_signal_guest(&e->fp, c);
	}
	assert_int_equal(vmbus_chan_recv(ch, buf, &got, NULL), -VMBUS_EPROTO);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_BROKEN);
	vmbus_chan_get_stats(ch, &cs);
	assert_true(cs.cs_proto_errors >= 1);
	/* pending request failed, I/O refused */
	assert_int_equal(vmbus_xact_wait(xa, 1000000), -VMBUS_EPROTO);
	vmbus_xact_put(xa);
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    "x", 1, 1), -VMBUS_EPROTO);
	got = sizeof(buf);
	assert_int_equal(vmbus_chan_recv(ch, buf, &got, NULL), -VMBUS_EPROTO);
	assert_true(e->fp.fp_logs >= 1);
	/* Close still works, and a reopen gives a fresh channel. */
	assert_int_equal(vmbus_chan_close(ch), 0);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_OPEN);
	env_free(e);
}

static void desc(uint8_t *p, uint16_t type, uint16_t off8, uint16_t len8,
    uint16_t flags, uint64_t tid)
{
	struct vmbus_packet_desc d = { type, off8, len8, flags, tid };

	memcpy(p, &d, sizeof(d));
}

static void test_bad_packets(void **state)
{
	uint8_t p[64];

	(void)state;
	memset(p, 0, sizeof(p));
	desc(p, VMBUS_PACKET_TYPE_DATA_INBAND, 1, 4, 0, 1);	/* offset8 < 2 */
	bad_case(p, 32, 0);
	desc(p, VMBUS_PACKET_TYPE_DATA_INBAND, 4, 3, 0, 1);	/* len8 < off8 */
	bad_case(p, 32, 0);
	desc(p, VMBUS_PACKET_TYPE_DATA_INBAND, 2, 4, 0x8000, 1); /* flags */
	bad_case(p, 32, 0);
	desc(p, VMBUS_PACKET_TYPE_DATA_INBAND, 2, 200, 0, 1);	/* past data */
	bad_case(p, 32, 0);
	desc(p, VMBUS_PACKET_TYPE_DATA_INBAND, 2, 0xFFFF, 0, 1); /* huge */
	bad_case(p, 32, 0);
	desc(p, VMBUS_PACKET_TYPE_DATA_USING_XFER_PAGES, 2, 4, 0, 1);
	bad_case(p, 32, 0);					/* hdr short */
	desc(p, VMBUS_PACKET_TYPE_DATA_USING_GPA_DIRECT, 2, 4, 0, 1);
	bad_case(p, 32, 0);
	bad_case(NULL, 0, 4096);		/* write index == data size */
	bad_case(NULL, 0, 4096 + 8);
	bad_case(NULL, 0, (int)0xFFFFFFF8u);
	bad_case(NULL, 0, 12);			/* not 8-aligned */
}

/*
 * Each violation counts once, whichever check finds it; and a bad write
 * index found by the ring while the guest only asks "anything there?"
 * (vmbus_chan_wait_rx) breaks the channel at once instead of leaving it
 * OPEN on a dead ring until the wait times out.
 */
static void test_proto_errors_counted_once(void **state)
{
	struct env *e = env_echo(8192, 8192, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_chan_stats cs;
	uint8_t p[32], buf[64];
	uint32_t got = sizeof(buf);

	(void)state;
	e->fp.fp_quiet = true;
	memset(p, 0, sizeof(p));
	desc(p, VMBUS_PACKET_TYPE_DATA_INBAND, 1, 4, 0, 1);	/* offset8 < 2 */
	assert_int_equal(fh_write_raw(&e->fp, c, p, 32), 0);
	assert_int_equal(vmbus_chan_recv(ch, buf, &got, NULL), -VMBUS_EPROTO);
	assert_int_equal(vmbus_chan_get_stats(ch, &cs), 0);
	assert_int_equal(cs.cs_proto_errors, 1);

	assert_int_equal(vmbus_chan_close(ch), 0);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL), 0);
	c->c_out.rb_ctl->rc_write_index = 12;		/* not 8-aligned */
	fh_signal_guest(&e->fp, c);
	assert_int_equal(vmbus_chan_wait_rx(ch, 1000000), -VMBUS_EPROTO);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_BROKEN);
	assert_int_equal(vmbus_chan_get_stats(ch, &cs), 0);
	assert_int_equal(cs.cs_proto_errors, 2);
	env_free(e);
}

/* A driver breaks a channel the core's way (vmbus_chan_set_broken). */
static void test_driver_set_broken(void **state)
{
	struct env *e = env_echo(8192, 8192, false);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_chan_stats cs;
	struct vmbus_xact *xa;
	uint8_t buf[64];
	uint32_t got = sizeof(buf), logs;

	(void)state;
	e->fp.fp_quiet = true;
	assert_int_equal(vmbus_xact_setup(ch, 2, 16, 16), 0);
	xa = vmbus_xact_get(ch);
	assert_non_null(xa);
	assert_int_equal(vmbus_xact_send(xa, VMBUS_PACKET_TYPE_DATA_INBAND, 8), 0);
	logs = e->fp.fp_logs;
	vmbus_chan_set_broken(ch, "impossible reply");
	assert_int_equal(e->fp.fp_logs, logs + 1);	/* logged once ... */
	vmbus_chan_set_broken(ch, NULL);
	assert_int_equal(e->fp.fp_logs, logs + 1);	/* ... only once */
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_BROKEN);
	assert_int_equal(vmbus_chan_get_stats(ch, &cs), 0);
	assert_int_equal(cs.cs_proto_errors, 2);	/* every call counts */
	/* the pending transaction failed, new I/O is refused */
	assert_int_equal(vmbus_xact_wait(xa, 1000000), -VMBUS_EPROTO);
	vmbus_xact_put(xa);
	assert_null(vmbus_xact_get(ch));
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    "x", 1, 1), -VMBUS_EPROTO);
	assert_int_equal(vmbus_chan_recv(ch, buf, &got, NULL), -VMBUS_EPROTO);
	assert_int_equal(vmbus_chan_wait_rx(ch, 1000), -VMBUS_EPROTO);
	/* close and reopen as after any protocol error */
	assert_int_equal(vmbus_chan_close(ch), 0);
	vmbus_chan_set_broken(ch, "late");		/* not open: counts only */
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_CLOSED);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    "x", 1, 1), 0);
	vmbus_chan_set_broken(NULL, "no-op");
	env_free(e);
}

static void test_unknown_type_dropped(void **state)
{
	struct env *e = env_echo(8192, 8192, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_chan_stats cs;
	uint8_t p[32], buf[64];
	uint32_t got = sizeof(buf);

	(void)state;
	e->fp.fp_quiet = true;
	memset(p, 0, sizeof(p));
	desc(p, 0x5, 2, 4, 0, 1);			/* reserved type */
	assert_int_equal(fh_write_raw(&e->fp, c, p, 32), 0);
	assert_int_equal(fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_DATA_INBAND,
	    0, 9, "hello", 5), 0);
	assert_int_equal(vmbus_chan_recv(ch, buf, &got, NULL), 0);
	assert_memory_equal(buf, "hello", 5);
	vmbus_chan_get_stats(ch, &cs);
	assert_int_equal(cs.cs_unknown_packets, 1);
	assert_int_equal(cs.cs_proto_errors, 0);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_OPEN);
	env_free(e);
}

/* ---- callbacks and events ---- */

struct cb_state {
	int calls;
	int packets;
	uint8_t last[64];
};

static void rx_cb(struct vmbus_channel *ch, void *arg)
{
	struct cb_state *s = arg;
	uint8_t buf[64];
	uint32_t len = sizeof(buf);

	s->calls++;
	while (vmbus_chan_recv(ch, buf, &len, NULL) == 0) {
		s->packets++;
		memcpy(s->last, buf, len);
		len = sizeof(buf);
	}
}

static void test_callback_dispatch(void **state)
{
	struct env *e = env_echo(0, 0, true);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct cb_state s = { 0 };
	struct vmbus_stats st;

	(void)state;
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, rx_cb, &s), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND,
		    0, "ping", 4, (uint64_t)i + 1), 0);
	vmbus_poll(e->vb);
	assert_int_equal(s.packets, 5);
	assert_true(s.calls >= 1);
	assert_memory_equal(s.last, "ping", 4);
	/* the ring is unmasked after the callback */
	assert_int_equal(c->c_out.rb_ctl->rc_interrupt_mask, 0);
	/* events for unknown relids are counted, not dispatched */
	struct fh_chan fake = { .c_relid = 77, .c_target_vp = 0 };
	fh_signal_guest(&e->fp, &fake);
	vmbus_poll(e->vb);
	vmbus_get_stats(e->vb, &st);
	assert_true(st.bs_spurious_events >= 1);
	env_free(e);
}

/*
 * A host that keeps writing while the callback drains (each round finds
 * more) outlasts the dispatch budget. The ring is then unmasked but not
 * empty, so a host that signals only on empty -> non-empty (spec 3.5)
 * never signals again: the core must come back by itself.
 */
struct storm {
	struct fakeport *st_fp;
	struct fh_chan *st_c;
	int st_received;
	int st_to_write;
	uint64_t st_comp_id;	/* nonzero: complete it after the storm */
};

static void storm_cb(struct vmbus_channel *ch, void *arg)
{
	struct storm *st = arg;
	uint8_t buf[64];
	uint32_t len = sizeof(buf);

	while (vmbus_chan_recv(ch, buf, &len, NULL) == 0) {
		st->st_received++;
		len = sizeof(buf);
	}
	if (st->st_to_write > 0) {
		st->st_to_write--;
		assert_int_equal(fh_write_pkt(st->st_fp, st->st_c,
		    VMBUS_PACKET_TYPE_DATA_INBAND, 0, 1, "more", 4), 0);
	} else if (st->st_comp_id != 0) {
		assert_int_equal(fh_write_pkt(st->st_fp, st->st_c,
		    VMBUS_PACKET_TYPE_COMP, 0, st->st_comp_id, "done", 4), 0);
		st->st_comp_id = 0;
	}
}

static void test_callback_budget_resumes(void **state)
{
	struct env *e = env_echo(0, 0, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct storm st = { .st_fp = &e->fp, .st_c = c, .st_to_write = 40 };

	(void)state;
	e->fp.fp_host.h_signal_if_needed = true;
	assert_int_equal(vmbus_chan_open(grabbed[5], 8192, 8192, NULL, 0,
	    storm_cb, &st), 0);
	assert_int_equal(fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_DATA_INBAND,
	    0, 1, "first", 5), 0);
	for (int i = 0; i < 8 && st.st_received < 41; i++)
		vmbus_poll(e->vb);
	assert_int_equal(st.st_to_write, 0);
	assert_int_equal(st.st_received, 41);
	env_free(e);
}

/*
 * Hostile-host item 23, the unmask window: a packet the host writes after
 * the callback's last read but before the core unmasks finds the ring
 * masked, so a host that honours the mask does not signal. The core must
 * see it in what unmask returns (spec 3.6) and go round again: one poll,
 * both packets delivered (without the re-check the late one waits for an
 * event that never comes).
 */
struct window {
	struct fakeport *w_fp;
	struct fh_chan *w_c;
	int w_calls;
	int w_received;
	uint32_t w_mask_seen;
};

static void window_cb(struct vmbus_channel *ch, void *arg)
{
	struct window *w = arg;
	uint8_t buf[64];
	uint32_t len = sizeof(buf);

	w->w_calls++;
	while (vmbus_chan_recv(ch, buf, &len, NULL) == 0) {
		w->w_received++;
		len = sizeof(buf);
	}
	if (w->w_calls == 1) {
		/* In the window: drained, not yet unmasked. */
		w->w_mask_seen = w->w_c->c_out.rb_ctl->rc_interrupt_mask;
		assert_int_equal(fh_write_pkt(w->w_fp, w->w_c,
		    VMBUS_PACKET_TYPE_DATA_INBAND, 0, 2, "late", 4), 0);
	}
}

static void test_unmask_window_recheck(void **state)
{
	struct env *e = env_echo(0, 0, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct window w = { .w_fp = &e->fp, .w_c = c };

	(void)state;
	e->fp.fp_host.h_signal_if_needed = true;
	assert_int_equal(vmbus_chan_open(grabbed[5], 8192, 8192, NULL, 0,
	    window_cb, &w), 0);
	assert_int_equal(fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_DATA_INBAND,
	    0, 1, "first", 5), 0);
	vmbus_poll(e->vb);
	assert_int_equal(w.w_mask_seen, 1);	/* the host saw it masked */
	assert_int_equal(w.w_received, 2);	/* no second event needed */
	assert_true(w.w_calls >= 2);
	assert_int_equal(c->c_out.rb_ctl->rc_interrupt_mask, 0);
	env_free(e);
}

/*
 * The same storm while a thread waits for a completion behind it, and
 * nobody calls vmbus_poll (the deferred context that would take the
 * channel's next pass may be the waiter itself: a driver attaching from
 * deferred work). The waiter's own scan must take the pass.
 */
static void test_callback_budget_resumes_for_waiter(void **state)
{
	struct env *e = env_echo(0, 0, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct storm st = { .st_fp = &e->fp, .st_c = c, .st_to_write = 40 };
	struct vmbus_xact *xa;
	uint32_t len = 0;
	const uint8_t *resp;

	(void)state;
	e->fp.fp_host.h_signal_if_needed = true;
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, storm_cb,
	    &st), 0);
	assert_int_equal(vmbus_xact_setup(ch, 1, 16, 16), 0);
	xa = vmbus_xact_get(ch);
	assert_non_null(xa);
	assert_int_equal(vmbus_xact_send(xa, VMBUS_PACKET_TYPE_DATA_INBAND, 8),
	    0);
	st.st_comp_id = vmbus_xact_id(xa);
	assert_int_equal(fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_DATA_INBAND,
	    0, 1, "first", 5), 0);
	assert_int_equal(vmbus_xact_wait(xa, 1000000000ull), 0);
	resp = vmbus_xact_resp(xa, &len, NULL);
	assert_non_null(resp);
	assert_int_equal(len, 8);
	assert_memory_equal(resp, "done", 4);
	assert_int_equal(st.st_received, 41);
	vmbus_xact_put(xa);
	env_free(e);
}

static void test_pre_win8_events(void **state)
{
	struct env *e = env_new(1);
	struct fh_chan *c;
	struct cb_state s = { 0 };

	(void)state;
	reset_grab();
	memset(e->fp.fp_host.h_accept, 0, sizeof(e->fp.fp_host.h_accept));
	e->fp.fp_host.h_accept[0] = VMBUS_VERSION_WIN7;
	c = fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, true);
	c->c_dedicated = false;
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	assert_int_equal(vmbus_version(e->vb), VMBUS_VERSION_WIN7);
	assert_int_not_equal(e->fp.fp_host.h_intr_page_gpa, 0);
	assert_int_equal(vmbus_chan_open(grabbed[5], 8192, 8192, NULL, 0, rx_cb,
	    &s), 0);
	assert_int_equal(c->c_target_vp, 0);
	assert_int_equal(vmbus_chan_send(grabbed[5],
	    VMBUS_PACKET_TYPE_DATA_INBAND, 0, "old!", 4, 1), 0);
	/* the guest set its relid bit in the send half of the page */
	struct hv_interrupt_page *ip = fp_gpa(&e->fp,
	    e->fp.fp_host.h_intr_page_gpa, 4096);
	assert_true(ip->ip_send[0] & (1u << 5));
	vmbus_poll(e->vb);
	assert_int_equal(s.packets, 1);
	assert_memory_equal(s.last, "old!", 4);
	env_free(e);
}

/* ---- interrupt vCPU (vmbus_chan_set_target_vp) ---- */

/* nvcpu vCPUs, the host speaks only `version`, echo channel at relid 5. */
static struct env *env_grab_v(uint32_t nvcpu, uint32_t version)
{
	struct env *e = env_new(nvcpu);

	reset_grab();
	memset(e->fp.fp_host.h_accept, 0, sizeof(e->fp.fp_host.h_accept));
	e->fp.fp_host.h_accept[0] = version;
	fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, false);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	assert_int_equal(vmbus_version(e->vb), version);
	assert_non_null(grabbed[5]);
	return e;
}

/* A packet from the host: dispatched by the ISR of vp only. */
static void expect_events_on(struct env *e, struct cb_state *s, uint32_t vp)
{
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	int before = s->packets;

	assert_int_equal(fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_DATA_INBAND,
	    0, 1, "vcpu", 4), 0);
	for (uint32_t other = 0; other < e->fp.fp_nvcpu; other++)
		if (other != vp)
			vmbus_isr(e->vb, other);
	assert_int_equal(s->packets, before);
	vmbus_isr(e->vb, vp);
	assert_int_equal(s->packets, before + 1);
}

static void test_target_vp_before_open(void **state)
{
	struct env *e = env_grab_v(2, VMBUS_VERSION_IRON);
	struct vmbus_channel *ch = grabbed[5];
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct cb_state s = { 0 };
	struct vmbus_chan_info ci;

	(void)state;
	assert_int_equal(vmbus_chan_set_target_vp(NULL, 0), -VMBUS_EINVAL);
	assert_int_equal(vmbus_chan_set_target_vp(ch, 2), -VMBUS_EINVAL);
	assert_int_equal(vmbus_chan_set_target_vp(ch, 1), 0);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, rx_cb, &s),
	    0);
	assert_int_equal(c->c_target_vp, 1);	/* OPENCHANNEL target_vp */
	assert_int_equal(vmbus_chan_get_info(ch, &ci), 0);
	assert_int_equal(ci.ci_target_vp, 1);
	expect_events_on(e, &s, 1);
	/* kept across close and reopen */
	assert_int_equal(vmbus_chan_close(ch), 0);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, rx_cb, &s),
	    0);
	assert_int_equal(c->c_target_vp, 1);
	expect_events_on(e, &s, 1);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_MODIFYCHANNEL), 0);
	env_free(e);
}

static void test_target_vp_modify(void **state)
{
	struct env *e = env_grab_v(3, VMBUS_VERSION_IRON);
	struct vmbus_channel *ch = grabbed[5];
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct cb_state s = { 0 };
	struct vmbus_chan_info ci;
	struct vmbus_stats st;

	(void)state;
	e->fp.fp_quiet = true;
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, rx_cb, &s),
	    0);
	assert_int_equal(c->c_target_vp, 0);
	expect_events_on(e, &s, 0);
	/* acknowledged (5.3) */
	assert_int_equal(vmbus_chan_set_target_vp(ch, 2), 0);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_MODIFYCHANNEL), 1);
	assert_int_equal(c->c_target_vp, 2);
	assert_int_equal(vmbus_chan_get_info(ch, &ci), 0);
	assert_int_equal(ci.ci_target_vp, 2);
	expect_events_on(e, &s, 2);
	/* the same vCPU again: nothing to ask */
	assert_int_equal(vmbus_chan_set_target_vp(ch, 2), 0);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_MODIFYCHANNEL), 1);
	/* refused: unchanged */
	e->fp.fp_host.h_modify_status = 0xC0000001;
	assert_int_equal(vmbus_chan_set_target_vp(ch, 1), -VMBUS_EIO);
	assert_int_equal(vmbus_chan_get_info(ch, &ci), 0);
	assert_int_equal(ci.ci_target_vp, 2);
	expect_events_on(e, &s, 2);
	/* unanswered: a bounded wait; the late answer is dropped, counted */
	e->fp.fp_host.h_modify_status = 0;
	e->fp.fp_host.h_modify_noreply = true;
	assert_int_equal(vmbus_chan_set_target_vp(ch, 1), -VMBUS_ETIMEDOUT);
	struct vmbus_chanmsg_modifychannel_response mr = {
		.mcr_hdr.chm_type = VMBUS_CHANMSG_MODIFYCHANNEL_RESPONSE,
		.mcr_child_relid = 5,
	};
	vmbus_get_stats(e->vb, &st);
	uint64_t bad = st.bs_bad_messages;
	fh_send_msg(&e->fp, &mr, sizeof(mr));
	vmbus_poll(e->vb);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_bad_messages, bad + 1);
	/* rescinded */
	fh_rescind(&e->fp, c);
	assert_int_equal(vmbus_chan_set_target_vp(ch, 0), -VMBUS_ENODEV);
	env_free(e);
}

static void test_target_vp_old_hosts(void **state)
{
	struct env *e;
	struct fh_chan *c;
	struct cb_state s = { 0 };

	(void)state;
	/* 4.1: MODIFYCHANNEL without an answer */
	e = env_grab_v(2, VMBUS_VERSION_WIN10_RS3_0);
	c = fh_find_chan(&e->fp, 5);
	assert_int_equal(vmbus_chan_open(grabbed[5], 8192, 8192, NULL, 0, rx_cb,
	    &s), 0);
	assert_int_equal(vmbus_chan_set_target_vp(grabbed[5], 1), 0);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_MODIFYCHANNEL), 1);
	assert_int_equal(c->c_target_vp, 1);
	expect_events_on(e, &s, 1);
	env_free(e);

	/* 4.0: only before open */
	e = env_grab_v(2, VMBUS_VERSION_WIN10);
	c = fh_find_chan(&e->fp, 5);
	assert_int_equal(vmbus_chan_open(grabbed[5], 8192, 8192, NULL, 0, rx_cb,
	    &s), 0);
	assert_int_equal(vmbus_chan_set_target_vp(grabbed[5], 1),
	    -VMBUS_EOPNOTSUPP);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_MODIFYCHANNEL), 0);
	assert_int_equal(vmbus_chan_close(grabbed[5]), 0);
	assert_int_equal(vmbus_chan_set_target_vp(grabbed[5], 1), 0);
	assert_int_equal(vmbus_chan_open(grabbed[5], 8192, 8192, NULL, 0, rx_cb,
	    &s), 0);
	assert_int_equal(c->c_target_vp, 1);
	expect_events_on(e, &s, 1);
	env_free(e);

	/* 1.1: every event comes to vCPU 0 */
	e = env_grab_v(2, VMBUS_VERSION_WIN7);
	assert_int_equal(vmbus_chan_set_target_vp(grabbed[5], 1),
	    -VMBUS_EOPNOTSUPP);
	assert_int_equal(vmbus_chan_set_target_vp(grabbed[5], 0), 0);
	env_free(e);
}

/* ---- transactions ---- */

static void test_xact_generation(void **state)
{
	struct env *e = env_echo(8192, 8192, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_chan_stats cs;
	struct vmbus_xact *xa, *xb;
	_Alignas(8) uint8_t pkt[256];
	uint64_t old_id, new_id;
	const void *resp;
	uint32_t rlen;
	bool trunc;

	(void)state;
	e->fp.fp_quiet = true;
	assert_null(vmbus_xact_get(ch));		/* no table yet */
	assert_int_equal(vmbus_xact_setup(ch, 1, 32, 8), 0);
	assert_int_equal(vmbus_xact_setup(ch, 1, 32, 8), -VMBUS_EEXIST);
	xa = vmbus_xact_get(ch);
	assert_non_null(xa);
	assert_null(vmbus_xact_get(ch));		/* one slot only */
	old_id = vmbus_xact_id(xa);
	assert_int_not_equal(old_id, 0);
	memcpy(vmbus_xact_req(xa), "req1", 4);
	assert_int_equal(vmbus_xact_send(xa, VMBUS_PACKET_TYPE_DATA_INBAND, 4), 0);
	int n = fh_read_pkt(&e->fp, c, pkt, sizeof(pkt));
	assert_int_equal(n, 24);
	assert_int_equal(((struct vmbus_packet_desc *)pkt)->pd_trans_id, old_id);
	assert_int_equal(((struct vmbus_packet_desc *)pkt)->pd_flags,
	    VMBUS_PACKET_FLAG_COMPLETION_REQUESTED);
	/* no answer: timeout, slot put back */
	assert_int_equal(vmbus_xact_wait(xa, 100000), -VMBUS_ETIMEDOUT);
	vmbus_xact_put(xa);

	xb = vmbus_xact_get(ch);
	assert_ptr_equal(xb, xa);			/* same slot ... */
	new_id = vmbus_xact_id(xb);
	assert_int_not_equal(new_id, old_id);		/* ... new generation */
	assert_int_equal(new_id & 0xFFFF, old_id & 0xFFFF);
	assert_int_equal(vmbus_xact_send(xb, VMBUS_PACKET_TYPE_DATA_INBAND, 4), 0);
	/* the late completion of the first use: stale, dropped */
	fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_COMP, 0, old_id, "OLD", 3);
	/* out-of-range slot, and idle generation */
	fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_COMP, 0,
	    (new_id & ~0xFFFFull) | 9, "BAD", 3);
	assert_int_equal(vmbus_xact_wait(xb, 100000), -VMBUS_ETIMEDOUT);
	vmbus_chan_get_stats(ch, &cs);
	assert_int_equal(cs.cs_bad_completions, 2);
	/* the right one, longer than resp_max: truncated and flagged */
	fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_COMP, 0, new_id,
	    "0123456789abcdef", 16);
	assert_int_equal(vmbus_xact_wait(xb, 100000), 0);
	resp = vmbus_xact_resp(xb, &rlen, &trunc);
	assert_non_null(resp);
	assert_int_equal(rlen, 8);
	assert_true(trunc);
	assert_memory_equal(resp, "01234567", 8);
	/* a duplicate of it is dropped too */
	fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_COMP, 0, new_id, "dup", 3);
	vmbus_xact_put(xb);
	/* id 0 completion goes to the caller's path */
	fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_COMP, 0, 0, "zero", 4);
	uint8_t buf[64];
	uint32_t len = sizeof(buf);
	struct vmbus_pkt_info pi;
	assert_int_equal(vmbus_chan_recv(ch, buf, &len, &pi), 0);
	assert_int_equal(pi.pi_type, VMBUS_PACKET_TYPE_COMP);
	assert_int_equal(pi.pi_trans_id, 0);
	assert_memory_equal(buf, "zero", 4);
	vmbus_chan_get_stats(ch, &cs);
	assert_int_equal(cs.cs_bad_completions, 3);
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_OPEN);
	env_free(e);
}

static void test_xact_echo_roundtrip(void **state)
{
	/* echo host: in-band echo + empty completion; callback-less pump */
	struct env *e = env_echo(8192, 8192, true);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_xact *xa;
	uint32_t rlen = 99;

	(void)state;
	assert_int_equal(vmbus_xact_setup(ch, 8, 64, 64), 0);
	for (int i = 0; i < 20; i++) {
		xa = vmbus_xact_get(ch);
		assert_non_null(xa);
		memcpy(vmbus_xact_req(xa), "hi", 2);
		assert_int_equal(vmbus_xact_send(xa,
		    VMBUS_PACKET_TYPE_DATA_INBAND, 2), 0);
		assert_int_equal(vmbus_xact_wait(xa, 1000000), 0);
		assert_non_null(vmbus_xact_resp(xa, &rlen, NULL));
		assert_int_equal(rlen, 0);
		vmbus_xact_put(xa);
	}
	env_free(e);
}

/* ---- rescind ---- */

static void test_rescind_with_xacts(void **state)
{
	struct env *e = env_echo(8192, 8192, false);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_channel *ch = grabbed[5];
	struct vmbus_xact *xa[3];
	uint64_t base = e->fp.fp_pages_live;

	(void)state;
	e->fp.fp_quiet = true;
	assert_int_equal(vmbus_xact_setup(ch, 4, 16, 16), 0);
	for (int i = 0; i < 3; i++) {
		xa[i] = vmbus_xact_get(ch);
		assert_non_null(xa[i]);
		assert_int_equal(vmbus_xact_send(xa[i],
		    VMBUS_PACKET_TYPE_DATA_INBAND, 8), 0);
	}
	fh_rescind(&e->fp, c);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vmbus_xact_wait(xa[i], 1000000), -VMBUS_ENODEV);
		vmbus_xact_put(xa[i]);
	}
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_RESCINDED);
	assert_int_equal(vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    "x", 1, 1), -VMBUS_ENODEV);
	/* a duplicate rescind and an unknown one are ignored */
	fh_rescind(&e->fp, c);
	struct fh_chan ghost = { .c_relid = 99 };
	fh_rescind(&e->fp, &ghost);
	/* deferred work: detach (driver closes), RELID_RELEASED */
	vmbus_poll(e->vb);
	assert_int_equal(detach_calls, 1);
	assert_true(c->c_released);
	assert_true(c->c_closed_seen);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_RELID_RELEASED), 1);
	assert_int_equal(nchannels(e->vb), 0);
	/* the ring came back: the host confirmed the teardown */
	assert_true(e->fp.fp_pages_live < base);
	/* the relid may be offered again, as a new channel */
	c->c_released = false;
	c->c_instance = fh_guid_inst[6];
	fh_offer(&e->fp, c);
	vmbus_poll(e->vb);
	assert_int_equal(nchannels(e->vb), 1);
	assert_int_equal(attach_calls, 2);
	env_free(e);
}

/*
 * A rescind that lands while the driver's attach is still running (its
 * waits poll the bus, and vmbus_poll runs the deferred work): the rest of
 * the rescind used to run at once, found no attached driver to detach,
 * released the slot, and then the attach returned and marked a released
 * channel attached: the driver was never detached (storvsc_destroy then
 * refused with its controller still linked, found by the guest_storvsc
 * fuzzer). Now the rescind waits for the attach: the driver is detached
 * if its attach succeeded, and the relid is released either way.
 */
static struct {
	struct env *e;
	int result;			/* what attach returns */
	int opened;
	int cb_calls;			/* the primary's rescind callback */
	int cb_before_detach;		/* ... ran before drv_detach */
} s_ra;

static void rescind_attach_cb(struct vmbus_channel *ch, void *arg)
{
	(void)ch;
	(void)arg;
	s_ra.cb_calls++;
	if (detach_calls == 0)
		s_ra.cb_before_detach++;
}

static int rescind_attach(struct vmbus_device *dev)
{
	struct vmbus_channel *ch = vmbus_device_channel(dev);

	attach_calls++;
	grabbed[vmbus_chan_relid(ch) % 16] = ch;
	s_ra.opened = vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL);
	assert_int_equal(vmbus_chan_set_rescind_cb(ch, rescind_attach_cb,
	    NULL), 0);
	fh_rescind(&s_ra.e->fp, fh_find_chan(&s_ra.e->fp,
	    vmbus_chan_relid(ch)));
	vmbus_poll(s_ra.e->vb);		/* as a driver's wait does */
	assert_int_equal(vmbus_chan_state(ch), VMBUS_CHAN_RESCINDED);
	if (s_ra.result != 0)
		(void)vmbus_chan_close(ch);
	return s_ra.result;
}

static const struct vmbus_driver rescind_in_attach = {
	.drv_name = "rescind-in-attach",
	.drv_class = HV_GUID_ECHO_INIT,
	.drv_attach = rescind_attach,
	.drv_detach = grab_detach,
};

static void test_rescind_during_attach(void **state)
{
	for (int fail = 0; fail < 2; fail++) {
		struct env *e = env_new(1);
		struct fh_chan *c;

		(void)state;
		reset_grab();
		memset(&s_ra, 0, sizeof(s_ra));
		s_ra.e = e;
		s_ra.result = fail ? -VMBUS_ENODEV : 0;
		c = fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0,
		    true);
		assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb),
		    0);
		assert_int_equal(vmbus_driver_register(e->vb,
		    &rescind_in_attach), 0);
		assert_int_equal(vmbus_connect(e->vb), 0);
		assert_int_equal(s_ra.opened, 0);
		assert_int_equal(attach_calls, 1);
		/* detached once if the attach succeeded, not if it failed;
		 * its rescind callback runs (before the detach) only for a
		 * driver still there */
		assert_int_equal(detach_calls, fail ? 0 : 1);
		assert_int_equal(s_ra.cb_calls, fail ? 0 : 1);
		assert_int_equal(s_ra.cb_before_detach, fail ? 0 : 1);
		assert_true(c->c_released);
		assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_RELID_RELEASED),
		    1);
		assert_int_equal(nchannels(e->vb), 0);
		assert_false(c->c_open);
		vmbus_poll(e->vb);	/* nothing left to finish */
		assert_int_equal(detach_calls, fail ? 0 : 1);
		assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_RELID_RELEASED),
		    1);
		assert_int_equal(vmbus_unload(e->vb), 0);
		env_free(e);
	}
}

/*
 * A driver call that waits runs the deferred work on its own stack (a
 * polled port): a rescind finished there must not detach the driver under
 * the call (guest_netvsc's uaf-rescind-detach-during-set-mtu). Between
 * vmbus_device_enter and the last vmbus_device_exit the channel reads
 * RESCINDED (the call's waits fail) but the detach waits for the exit.
 */
static void test_rescind_during_driver_call(void **state)
{
	struct env *e = env_echo(8192, 8192, true);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	struct vmbus_device *dev = vmbus_chan_device(grabbed[5]);

	(void)state;
	e->fp.fp_quiet = true;
	vmbus_device_exit(dev);			/* unpaired: logged, no-op */
	assert_int_equal(vmbus_device_enter(NULL), -VMBUS_EINVAL);
	assert_int_equal(vmbus_device_enter(dev), 0);
	assert_int_equal(vmbus_device_enter(dev), 0);	/* nested */
	fh_rescind(&e->fp, c);
	vmbus_poll(e->vb);
	assert_int_equal(vmbus_chan_state(grabbed[5]), VMBUS_CHAN_RESCINDED);
	assert_int_equal(detach_calls, 0);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_RELID_RELEASED), 0);
	vmbus_device_exit(dev);
	vmbus_poll(e->vb);
	assert_int_equal(detach_calls, 0);
	vmbus_device_exit(dev);			/* the last: detach now */
	assert_int_equal(detach_calls, 1);
	assert_true(c->c_released);
	assert_false(c->c_open);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_RELID_RELEASED), 1);
	assert_int_equal(nchannels(e->vb), 0);
	vmbus_poll(e->vb);			/* nothing left to finish */
	assert_int_equal(detach_calls, 1);
	/* Detached: no driver call may enter any more. */
	assert_int_equal(vmbus_device_enter(dev), -VMBUS_ENODEV);
	assert_int_equal(vmbus_unload(e->vb), 0);
	env_free(e);
}

static void test_rescind_during_open(void **state)
{
	struct env *e = env_echo(0, 0, true);
	struct fh_chan *c = fh_find_chan(&e->fp, 5);
	uint64_t base = e->fp.fp_pages_live;

	(void)state;
	e->fp.fp_quiet = true;
	/* The host answers OPENCHANNEL with a rescind (spec 6.4: no result
	 * for a rescinded channel). */
	c->c_rescind_on_open = true;
	assert_int_equal(vmbus_chan_open(grabbed[5], 8192, 8192, NULL, 0, NULL,
	    NULL), -VMBUS_ENODEV);
	vmbus_poll(e->vb);
	assert_true(c->c_released);
	/* nothing is left allocated but what the bus itself uses */
	assert_true(e->fp.fp_pages_live <= base);
	env_free(e);
}

static void test_subchannels(void **state)
{
	struct env *e = env_echo(8192, 8192, true);
	struct vmbus_channel *pri = grabbed[5], *sub[4];
	struct fh_chan *s1, *s2;
	struct vmbus_chan_info ci;

	(void)state;
	assert_int_equal(vmbus_chan_subchan_get(pri, 2, sub, 100000),
	    -VMBUS_ETIMEDOUT);
	/* offered out of order; returned in sub index order */
	s2 = fh_add_chan(&e->fp, 31, &fh_guid_echo, &fh_guid_inst[0], 2, true);
	s1 = fh_add_chan(&e->fp, 30, &fh_guid_echo, &fh_guid_inst[0], 1, true);
	fh_offer(&e->fp, s2);
	assert_int_equal(vmbus_chan_subchan_get(pri, 2, sub, 100000), 1);
	fh_offer(&e->fp, s1);
	assert_int_equal(vmbus_chan_subchan_get(pri, 2, sub, 100000), 2);
	assert_int_equal(vmbus_chan_sub_index(sub[0]), 1);
	assert_int_equal(vmbus_chan_sub_index(sub[1]), 2);
	assert_ptr_equal(vmbus_chan_device(sub[0]), vmbus_chan_device(pri));
	assert_int_equal(vmbus_chan_subchan_get(sub[0], 1, sub + 2, 1),
	    -VMBUS_EINVAL);	/* not a primary */
	/* no driver attach for subchannels; they open like any channel */
	assert_int_equal(attach_calls, 1);
	for (int i = 0; i < 2; i++) {
		uint8_t b[16];
		uint32_t len = sizeof(b);

		assert_int_equal(vmbus_chan_open(sub[i], 8192, 8192, NULL, 0,
		    NULL, NULL), 0);
		assert_int_equal(vmbus_chan_send(sub[i],
		    VMBUS_PACKET_TYPE_DATA_INBAND, 0, "sub", 3, 1), 0);
		assert_int_equal(vmbus_chan_wait_rx(sub[i], 1000000), 0);
		assert_int_equal(vmbus_chan_recv(sub[i], b, &len, NULL), 0);
		assert_memory_equal(b, "sub", 3);
	}
	/* closing the primary closes its subchannels first */
	assert_int_equal(vmbus_chan_close(pri), 0);
	assert_int_equal(vmbus_chan_state(sub[0]), VMBUS_CHAN_CLOSED);
	assert_int_equal(vmbus_chan_state(sub[1]), VMBUS_CHAN_CLOSED);
	assert_false(s1->c_open);
	uint32_t first_close = UINT32_MAX, last_close = 0, n = 0;
	for (uint32_t i = 0; i < e->fp.fp_host.h_nlog; i++)
		if (e->fp.fp_host.h_log[i] == VMBUS_CHANMSG_CLOSECHANNEL) {
			if (first_close == UINT32_MAX)
				first_close = i;
			last_close = i;
			n++;
		}
	assert_int_equal(n, 3);
	(void)last_close;
	/* rescind of a subchannel releases it; the primary stays */
	fh_rescind(&e->fp, s2);
	vmbus_poll(e->vb);
	assert_true(s2->c_released);
	assert_int_equal(nchannels(e->vb), 2);
	assert_int_equal(vmbus_chan_get_info(pri, &ci), 0);
	assert_int_equal(ci.ci_state, VMBUS_CHAN_CLOSED);
	/* the freed index may be offered again */
	s2->c_released = false;
	s2->c_relid = 32;
	fh_offer(&e->fp, s2);
	assert_int_equal(vmbus_chan_subchan_get(pri, 2, sub, 100000), 2);
	env_free(e);
}

/*
 * A host may offer any sub index 1..65535, sparse and in any order: the
 * guest returns the lowest ones in order, whatever the table order (it
 * used to try every index in turn: 65535 table scans under the bus lock
 * for a host that offers index 65535).
 */
static void test_subchannels_sparse_index(void **state)
{
	struct env *e = env_echo(8192, 8192, true);
	struct vmbus_channel *pri = grabbed[5], *sub[5] = { 0 };
	static const uint16_t idx[] = { 0xFFFF, 7, 300, 3 };

	(void)state;
	for (uint32_t i = 0; i < 4; i++)
		fh_offer(&e->fp, fh_add_chan(&e->fp, 30 + i, &fh_guid_echo,
		    &fh_guid_inst[0], idx[i], true));
	assert_int_equal(vmbus_chan_subchan_get(pri, 4, sub, 100000), 4);
	assert_int_equal(vmbus_chan_sub_index(sub[0]), 3);
	assert_int_equal(vmbus_chan_sub_index(sub[1]), 7);
	assert_int_equal(vmbus_chan_sub_index(sub[2]), 300);
	assert_int_equal(vmbus_chan_sub_index(sub[3]), 0xFFFF);
	/* fewer slots than subs: the lowest, in order */
	memset(sub, 0, sizeof(sub));
	assert_int_equal(vmbus_chan_subchan_get(pri, 2, sub, 100000), 2);
	assert_int_equal(vmbus_chan_sub_index(sub[0]), 3);
	assert_int_equal(vmbus_chan_sub_index(sub[1]), 7);
	assert_null(sub[2]);
	/* more slots than subs: all four, the rest untouched */
	memset(sub, 0, sizeof(sub));
	assert_int_equal(vmbus_chan_subchan_get(pri, 5, sub, 1000), 4);
	assert_int_equal(vmbus_chan_sub_index(sub[3]), 0xFFFF);
	assert_null(sub[4]);
	env_free(e);
}

/* ---- subchannel rescind: callback and handle lifetime ---- */

struct rescind_note {
	struct fakeport *rn_fp;
	int rn_calls;
	struct vmbus_channel *rn_ch;
	enum vmbus_chan_state rn_state;
	uint32_t rn_closes;		/* CLOSECHANNELs sent before the call */
	uint32_t rn_released;		/* RELID_RELEASEDs sent before it */
	int rn_send;			/* a send from inside the callback */
};

static void rescind_note_cb(struct vmbus_channel *ch, void *arg)
{
	struct rescind_note *rn = arg;

	rn->rn_calls++;
	rn->rn_ch = ch;
	rn->rn_state = vmbus_chan_state(ch);
	rn->rn_closes = fh_count(rn->rn_fp, VMBUS_CHANMSG_CLOSECHANNEL);
	rn->rn_released = fh_count(rn->rn_fp, VMBUS_CHANMSG_RELID_RELEASED);
	rn->rn_send = vmbus_chan_send(ch, VMBUS_PACKET_TYPE_DATA_INBAND, 0,
	    "x", 1, 1);
}

static void test_subchan_rescind(void **state)
{
	struct env *e = env_new(1);
	struct rescind_note rn = { .rn_fp = &e->fp };
	struct vmbus_channel *pri, *sub[2], *now[2];
	struct fh_chan *s1, *s2, *n1, *n2, *c;
	struct vmbus_stats st;
	uint32_t closes;

	(void)state;
	e->fp.fp_quiet = true;
	e->cfg.vc_max_channels = 4;
	reset_grab();
	c = fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, true);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	pri = grabbed[5];
	assert_int_equal(vmbus_chan_open(pri, 8192, 8192, NULL, 0, NULL, NULL),
	    0);
	s1 = fh_add_chan(&e->fp, 30, &fh_guid_echo, &fh_guid_inst[0], 1, true);
	s2 = fh_add_chan(&e->fp, 31, &fh_guid_echo, &fh_guid_inst[0], 2, true);
	fh_offer(&e->fp, s1);
	fh_offer(&e->fp, s2);
	assert_int_equal(vmbus_chan_subchan_get(pri, 2, sub, 100000), 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(vmbus_chan_open(sub[i], 8192, 8192, NULL, 0,
		    NULL, NULL), 0);

	/* With a callback: called once, in thread context, on a RESCINDED
	 * channel, before the core closes it and releases the relid. */
	assert_int_equal(vmbus_chan_set_rescind_cb(NULL, NULL, NULL),
	    -VMBUS_EINVAL);
	assert_int_equal(vmbus_chan_set_rescind_cb(sub[0], rescind_note_cb,
	    &rn), 0);
	closes = fh_count(&e->fp, VMBUS_CHANMSG_CLOSECHANNEL);
	fh_rescind(&e->fp, s1);
	assert_int_equal(rn.rn_calls, 0);	/* not from the message path */
	vmbus_poll(e->vb);
	assert_int_equal(rn.rn_calls, 1);
	assert_ptr_equal(rn.rn_ch, sub[0]);
	assert_int_equal(rn.rn_state, VMBUS_CHAN_RESCINDED);
	assert_int_equal(rn.rn_send, -VMBUS_ENODEV);
	assert_int_equal(rn.rn_closes, closes);
	assert_int_equal(rn.rn_released, 0);
	assert_int_equal(fh_count(&e->fp, VMBUS_CHANMSG_CLOSECHANNEL),
	    closes + 1);
	assert_true(s1->c_released);
	assert_false(s1->c_open);
	/* ... and its slot is free again: a new subchannel 1 takes it. */
	n1 = fh_add_chan(&e->fp, 40, &fh_guid_echo, &fh_guid_inst[0], 1, true);
	fh_offer(&e->fp, n1);
	vmbus_poll(e->vb);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_bad_offers, 0);

	/* Without one: the bound driver's handle keeps naming the rescinded
	 * subchannel; a later offer gets another slot. */
	fh_rescind(&e->fp, s2);
	vmbus_poll(e->vb);
	assert_true(s2->c_released);
	assert_int_equal(vmbus_chan_state(sub[1]), VMBUS_CHAN_RESCINDED);
	assert_int_equal(vmbus_chan_relid(sub[1]), 31);
	assert_int_equal(vmbus_chan_set_rescind_cb(sub[1], rescind_note_cb,
	    &rn), -VMBUS_ENODEV);
	n2 = fh_add_chan(&e->fp, 41, &fh_guid_echo, &fh_guid_inst[0], 2, true);
	fh_offer(&e->fp, n2);
	assert_int_equal(vmbus_chan_subchan_get(pri, 2, now, 100000), 2);
	assert_true(now[1] != sub[1]);
	assert_int_equal(vmbus_chan_relid(now[1]), 41);
	assert_int_equal(vmbus_chan_state(sub[1]), VMBUS_CHAN_RESCINDED);
	assert_int_equal(vmbus_chan_relid(sub[1]), 31);
	assert_int_equal(nchannels(e->vb), 3);	/* the kept slot is unlisted */
	assert_int_equal(rn.rn_calls, 1);

	/* The driver goes (the primary is rescinded): every slot comes back,
	 * so a full table of new offers is accepted. */
	fh_rescind(&e->fp, c);
	fh_rescind(&e->fp, n1);
	fh_rescind(&e->fp, n2);
	vmbus_poll(e->vb);
	assert_int_equal(detach_calls, 1);
	assert_int_equal(nchannels(e->vb), 0);
	for (int i = 0; i < 4; i++) {
		struct fh_chan *x = fh_add_chan(&e->fp, 50u + (uint32_t)i,
		    &fh_guid_other, &fh_guid_inst[i], 0, false);

		fh_offer(&e->fp, x);
	}
	vmbus_poll(e->vb);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_bad_offers, 0);
	assert_int_equal(nchannels(e->vb), 4);
	env_free(e);
}

static void test_unload_unanswered(void **state)
{
	struct env *e = env_new(1);

	(void)state;
	e->fp.fp_quiet = true;
	assert_int_equal(env_connect(e), 0);
	e->fp.fp_host.h_unload_noreply = true;
	assert_int_equal(vmbus_unload(e->vb), -VMBUS_ETIMEDOUT);
	assert_int_equal(vmbus_version(e->vb), 0);
	/* interrupt page kept (the host may still write it) */
	assert_true(e->fp.fp_pages_live >= 1);
	assert_int_equal(vmbus_unload(e->vb), 0);	/* idempotent */
	env_free(e);
}

/*
 * The partition goes away (the port's wait answers -VMBUS_ENODEV, as the
 * posix port does once the host closed the socket): the wait that saw it
 * and every later one end at once with -VMBUS_ENODEV, not at their own
 * deadlines, and later ones do not even sleep. The fake port here has
 * interrupts (a no-op irq_attach) and a wait that advances the virtual
 * clock by 1 ms per call.
 */
static struct {
	uint32_t g_after;	/* waits left before the partition goes */
	bool     g_gone;
	uint32_t g_waits;	/* port wait calls */
} gone;

static int gone_irq_attach(void *ctx, uint8_t *vector, vmbus_isr_fn *isr,
    void *arg)
{
	(void)ctx;
	(void)vector;
	(void)isr;
	(void)arg;
	return 0;
}

static void gone_irq_detach(void *ctx)
{
	(void)ctx;
}

static int gone_wait(void *ctx, vmbus_wait_t *w, vmbus_lock_t *l,
    uint64_t deadline_ns)
{
	struct fakeport *fp = ctx;

	(void)w;
	(void)l;
	gone.g_waits++;
	if (gone.g_after > 0 && --gone.g_after == 0)
		gone.g_gone = true;
	if (gone.g_gone)
		return -VMBUS_ENODEV;
	fp->fp_now += 1000000;
	return fp->fp_now >= deadline_ns ? -VMBUS_ETIMEDOUT : 0;
}

static void gone_wake_all(void *ctx, vmbus_wait_t *w)
{
	(void)ctx;
	(void)w;
}

static void test_partition_gone(void **state)
{
	struct env *e = env_new(1);
	struct vmbus_platform *p = &e->fp.fp_plat;
	struct vmbus_channel *ch, *stuck;
	struct vmbus_xact *xa[2];
	uint64_t t0, waits, logs;

	(void)state;
	memset(&gone, 0, sizeof(gone));
	e->fp.fp_quiet = true;
	e->cfg.vc_timeout_ns = 2ull * 1000 * 1000 * 1000;	/* virtual */
	p->irq_attach = gone_irq_attach;
	p->irq_detach = gone_irq_detach;
	p->wait = gone_wait;
	p->wake_all = gone_wake_all;
	reset_grab();
	fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, false);
	fh_add_chan(&e->fp, 6, &fh_guid_echo, &fh_guid_inst[1], 0, false);
	assert_int_equal(vmbus_create(p, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	ch = grabbed[5];
	stuck = grabbed[6];
	assert_non_null(ch);
	assert_non_null(stuck);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, NULL, NULL),
	    0);
	assert_int_equal(vmbus_xact_setup(ch, 2, 16, 16), 0);
	for (int i = 0; i < 2; i++) {
		xa[i] = vmbus_xact_get(ch);
		assert_non_null(xa[i]);
		assert_int_equal(vmbus_xact_send(xa[i],
		    VMBUS_PACKET_TYPE_DATA_INBAND, 8), 0);
	}

	/* A bus wait (OPENCHANNEL_RESULT never comes) sees the port's
	 * -ENODEV on its third sleep and ends there, not at its 2 s. */
	fh_find_chan(&e->fp, 6)->c_open_noreply = true;
	gone.g_after = gone.g_waits + 3;
	logs = e->fp.fp_logs;
	t0 = e->fp.fp_now;
	assert_int_equal(vmbus_chan_open(stuck, 8192, 8192, NULL, 0, NULL,
	    NULL), -VMBUS_ENODEV);
	assert_true(e->fp.fp_now - t0 < 50ull * 1000 * 1000);
	assert_true(e->fp.fp_logs > logs);	/* "partition gone" and more */

	/* Latched: channel waits end at once, without sleeping. */
	waits = gone.g_waits;
	t0 = e->fp.fp_now;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vmbus_xact_wait(xa[i], 1000000000ull),
		    -VMBUS_ENODEV);
		vmbus_xact_put(xa[i]);
	}
	assert_int_equal(vmbus_chan_wait_rx(ch, 1000000000ull),
	    -VMBUS_ENODEV);
	/* the check still has the first word: room is room */
	assert_int_equal(vmbus_chan_wait_tx(ch, 64, 1000000000ull), 0);
	assert_int_equal(vmbus_chan_wait_tx(ch, 8000, 1000000000ull),
	    -VMBUS_ENODEV);
	assert_int_equal(gone.g_waits, waits);
	assert_true(e->fp.fp_now - t0 < 1000000ull);
	/* Messages are not even tried any more. */
	assert_int_equal(vmbus_chan_set_target_vp(ch, 0), 0);
	assert_int_equal(vmbus_unload(e->vb), -VMBUS_ENODEV);
	assert_int_equal(gone.g_waits, waits);
	assert_true(e->fp.fp_now - t0 < 1000000ull);
	env_free(e);
}

/* ---- concurrency (fp_threaded: real locks, an interrupt thread) ---- */

/*
 * One thread sets its relid's event flag and runs the ISR, another does the
 * same through vmbus_poll: every flag set is taken by exactly one of the
 * two, so the bus must count exactly as many events (and, as no channel has
 * those relids, as many spurious ones). Counters bumped without atomics
 * lose updates here (and ThreadSanitizer flags them).
 */
struct hammer {
	struct vmbus *h_vb;
	_Atomic uint8_t *h_flags;
	uint8_t  h_bit;
	bool     h_isr;
	uint32_t h_rounds;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;

	for (uint32_t i = 0; i < h->h_rounds; i++) {
		atomic_fetch_or(h->h_flags, h->h_bit);
		if (h->h_isr)
			vmbus_isr(h->h_vb, 0);
		else
			vmbus_poll(h->h_vb);
	}
	return NULL;
}

static void test_event_counters_concurrent(void **state)
{
	struct env *e = env_new(1);
	struct hv_event_flags_page *pg;
	struct hammer h[2];
	pthread_t t[2];
	struct vmbus_stats st;
	const uint32_t rounds = 100000;

	(void)state;
	fp_threaded(&e->fp, false);
	assert_int_equal(env_connect(e), 0);
	pg = fp_gpa(&e->fp, e->fp.fp_siefp[0] & ~0xFFFull, 4096);
	assert_non_null(pg);
	for (int i = 0; i < 2; i++) {
		uint32_t relid = 40u + (uint32_t)i;

		h[i].h_vb = e->vb;
		h[i].h_flags = (_Atomic uint8_t *)
		    &pg->efp_sint[VMBUS_MESSAGE_SINT].ef_flags[relid / 8];
		h[i].h_bit = (uint8_t)(1u << (relid % 8));
		h[i].h_isr = i == 0;
		h[i].h_rounds = rounds;
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]),
		    0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	vmbus_get_stats(e->vb, &st);
	assert_int_equal(st.bs_events, 2ull * rounds);
	assert_int_equal(st.bs_spurious_events, 2ull * rounds);
	env_free(e);
}

struct rx_count {
	atomic_uint rc_calls;
	atomic_uint rc_packets;
};

static void rx_count_cb(struct vmbus_channel *ch, void *arg)
{
	struct rx_count *rc = arg;
	uint8_t buf[64];
	uint32_t len = sizeof(buf);

	atomic_fetch_add(&rc->rc_calls, 1);
	while (vmbus_chan_recv(ch, buf, &len, NULL) == 0) {
		atomic_fetch_add(&rc->rc_packets, 1);
		len = sizeof(buf);
	}
}

/*
 * The whole life of a bus (connect on two vCPUs, open, echo traffic, stats
 * read while the ISR runs callbacks, close, unload) with an interrupt
 * thread calling the ISR from irq_attach on, including while the SynIC is
 * being set up. Run under ThreadSanitizer it must report nothing from
 * src/guest; in every build the traffic must arrive and add up.
 */
static void test_isr_thread_whole_life(void **state)
{
	struct env *e = env_new(2);
	struct rx_count rc = { 0 };
	struct vmbus_chan_stats cs;
	struct vmbus_channel *ch;
	const unsigned n = 200;

	(void)state;
	reset_grab();
	fp_threaded(&e->fp, true);
	fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, true);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	/* A loaded machine may not have run the interrupt thread yet: the
	 * traffic below must race it. */
	SPIN_UNTIL(atomic_load(&e->fp.fp_isr_calls) != 0);
	ch = grabbed[5];
	assert_non_null(ch);
	assert_int_equal(vmbus_chan_open(ch, 8192, 8192, NULL, 0, rx_count_cb,
	    &rc), 0);
	for (unsigned i = 0; i < n; i++) {
		int r;

		SPIN_UNTIL((r = vmbus_chan_send(ch,
		    VMBUS_PACKET_TYPE_DATA_INBAND, 0, "ping", 4, i + 1u)) !=
		    -VMBUS_EAGAIN);
		assert_int_equal(r, 0);
		/* Readers of the counters race the callback's updates. */
		assert_int_equal(vmbus_chan_get_stats(ch, &cs), 0);
		assert_true(cs.cs_rx_packets <= i + 1u);
	}
	SPIN_UNTIL(atomic_load(&rc.rc_packets) >= n);
	assert_int_equal(vmbus_chan_get_stats(ch, &cs), 0);
	assert_int_equal(cs.cs_tx_packets, n);
	assert_int_equal(cs.cs_rx_packets, n);
	assert_int_equal(cs.cs_proto_errors, 0);
	assert_true(cs.cs_interrupts >= 1);
	assert_true(atomic_load(&e->fp.fp_isr_calls) > 0);
	assert_int_equal(vmbus_chan_close(ch), 0);
	assert_int_equal(vmbus_unload(e->vb), 0);
	env_free(e);
}

/*
 * Hostile-host item 25, a close racing a callback: the callback is still
 * running when the bus timeout of the close's drain runs out (a driver
 * that broke the never-sleep rule). It goes on using the channel and,
 * once it returns, the core unmasks the receive ring: the rings must
 * outlive it. The close leaks them (counted, -VMBUS_EISCONN) instead of
 * freeing them under the callback (a heap-use-after-free under Asan).
 */
struct stuck {
	struct vmbus_channel *s_ch;
	atomic_int s_armed;		/* not the run at the end of open */
	atomic_int s_entered;
	atomic_int s_close_done;
	atomic_int s_left;
	int s_recv;
};

static void stuck_cb(struct vmbus_channel *ch, void *arg)
{
	struct stuck *s = arg;
	uint8_t buf[64];
	uint32_t len = sizeof(buf);

	if (!atomic_load(&s->s_armed) || atomic_exchange(&s->s_entered, 1))
		return;		/* only the first run after arming waits */
	SPIN_UNTIL(atomic_load(&s->s_close_done));
	s->s_recv = vmbus_chan_recv(ch, buf, &len, NULL);
	atomic_store(&s->s_left, 1);
}

static void test_close_racing_stuck_callback(void **state)
{
	struct env *e = env_new(1);
	struct fh_chan *c;
	struct stuck s = { 0 };
	struct vmbus_stats before, after;

	(void)state;
	reset_grab();
	fp_threaded(&e->fp, true);	/* the interrupt thread runs it */
	e->cfg.vc_timeout_ns = 2ull * 1000 * 1000;	/* 2000 clock reads */
	fh_add_chan(&e->fp, 5, &fh_guid_echo, &fh_guid_inst[0], 0, false);
	assert_int_equal(vmbus_create(&e->fp.fp_plat, &e->cfg, &e->vb), 0);
	assert_int_equal(vmbus_driver_register(e->vb, &grab_echo), 0);
	assert_int_equal(vmbus_connect(e->vb), 0);
	s.s_ch = grabbed[5];
	assert_int_equal(vmbus_chan_open(s.s_ch, 8192, 8192, NULL, 0,
	    stuck_cb, &s), 0);
	c = fh_find_chan(&e->fp, 5);
	atomic_store(&s.s_armed, 1);
	fp_host_lock(&e->fp);
	assert_int_equal(fh_write_pkt(&e->fp, c, VMBUS_PACKET_TYPE_DATA_INBAND,
	    0, 1, "first", 5), 0);
	fp_host_unlock(&e->fp);
	SPIN_UNTIL(atomic_load(&s.s_entered));
	vmbus_get_stats(e->vb, &before);
	assert_int_equal(vmbus_chan_close(s.s_ch), -VMBUS_EISCONN);
	vmbus_get_stats(e->vb, &after);
	/* Both rings (2 x 8 KiB) kept for the callback, counted. */
	assert_int_equal(after.bs_leaked_pages - before.bs_leaked_pages, 4);
	atomic_store(&s.s_close_done, 1);
	SPIN_UNTIL(atomic_load(&s.s_left));
	assert_true(s.s_recv < 0);	/* closed: refused, ring untouched */
	env_free(e);
}

static void test_create_args(void **state)
{
	struct fakeport *fpp = calloc(1, sizeof(*fpp));
	struct vmbus *vb = NULL;
	struct vmbus_config cfg = { 0 };
	struct vmbus_platform bad;

	(void)state;
	assert_non_null(fpp);
#define fp (*fpp)
	fp_init(&fp, 1);
	assert_int_equal(vmbus_create(NULL, NULL, &vb), -VMBUS_EINVAL);
	bad = fp.fp_plat;
	bad.hypercall = NULL;
	assert_int_equal(vmbus_create(&bad, NULL, &vb), -VMBUS_EINVAL);
	cfg.vc_vector = 3;
	assert_int_equal(vmbus_create(&fp.fp_plat, &cfg, &vb), -VMBUS_EINVAL);
	cfg.vc_vector = 0;
	cfg.vc_min_version = VMBUS_VERSION_IRON;
	cfg.vc_max_version = VMBUS_VERSION_WIN8;
	assert_int_equal(vmbus_create(&fp.fp_plat, &cfg, &vb), -VMBUS_EINVAL);
	assert_null(vb);
	vmbus_destroy(NULL);
	(void)fp_fini(&fp);
#undef fp
	free(fpp);
}

/* vmbus/errno.h: Linux errno values, so a port can pass them through. */
static void test_errno_values(void **state)
{
	(void)state;
	assert_int_equal(VMBUS_EPERM, EPERM);
	assert_int_equal(VMBUS_ENOENT, ENOENT);
	assert_int_equal(VMBUS_EIO, EIO);
	assert_int_equal(VMBUS_EAGAIN, EAGAIN);
	assert_int_equal(VMBUS_ENOMEM, ENOMEM);
	assert_int_equal(VMBUS_EFAULT, EFAULT);
	assert_int_equal(VMBUS_EBUSY, EBUSY);
	assert_int_equal(VMBUS_EEXIST, EEXIST);
	assert_int_equal(VMBUS_ENODEV, ENODEV);
	assert_int_equal(VMBUS_EINVAL, EINVAL);
	assert_int_equal(VMBUS_ENOSPC, ENOSPC);
	assert_int_equal(VMBUS_ERANGE, ERANGE);
	assert_int_equal(VMBUS_ENOSYS, ENOSYS);
	assert_int_equal(VMBUS_EPROTO, EPROTO);
	assert_int_equal(VMBUS_EOVERFLOW, EOVERFLOW);
	assert_int_equal(VMBUS_EMSGSIZE, EMSGSIZE);
	assert_int_equal(VMBUS_EOPNOTSUPP, EOPNOTSUPP);
	assert_int_equal(VMBUS_ENOBUFS, ENOBUFS);
	assert_int_equal(VMBUS_EISCONN, EISCONN);
	assert_int_equal(VMBUS_ETIMEDOUT, ETIMEDOUT);
	assert_int_equal(VMBUS_ECANCELED, ECANCELED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_args),
		cmocka_unit_test(test_errno_values),
		cmocka_unit_test(test_negotiate_newest),
		cmocka_unit_test(test_negotiate_fallback_each),
		cmocka_unit_test(test_negotiate_conn4_fallback),
		cmocka_unit_test(test_negotiate_none),
		cmocka_unit_test(test_negotiate_no_reply),
		cmocka_unit_test(test_negotiate_bad_state),
		cmocka_unit_test(test_post_retry),
		cmocka_unit_test(test_offers_probe_attach),
		cmocka_unit_test(test_device_driver_from_probe),
		cmocka_unit_test(test_offers_malformed),
		cmocka_unit_test(test_unexpected_messages),
		cmocka_unit_test(test_gpadl_split),
		cmocka_unit_test(test_gpadl_driver_buffer),
		cmocka_unit_test(test_open_close),
		cmocka_unit_test(test_open_refused_and_timeout),
		cmocka_unit_test(test_close_teardown_unanswered),
		cmocka_unit_test(test_send_recv_wrap),
		cmocka_unit_test(test_ring_full_and_pending),
		cmocka_unit_test(test_recv_enobufs_and_pkt),
		cmocka_unit_test(test_bad_packets),
		cmocka_unit_test(test_proto_errors_counted_once),
		cmocka_unit_test(test_driver_set_broken),
		cmocka_unit_test(test_unknown_type_dropped),
		cmocka_unit_test(test_callback_dispatch),
		cmocka_unit_test(test_callback_budget_resumes),
		cmocka_unit_test(test_unmask_window_recheck),
		cmocka_unit_test(test_close_racing_stuck_callback),
		cmocka_unit_test(test_callback_budget_resumes_for_waiter),
		cmocka_unit_test(test_pre_win8_events),
		cmocka_unit_test(test_target_vp_before_open),
		cmocka_unit_test(test_target_vp_modify),
		cmocka_unit_test(test_target_vp_old_hosts),
		cmocka_unit_test(test_xact_generation),
		cmocka_unit_test(test_xact_echo_roundtrip),
		cmocka_unit_test(test_rescind_with_xacts),
		cmocka_unit_test(test_rescind_during_open),
		cmocka_unit_test(test_rescind_during_attach),
		cmocka_unit_test(test_rescind_during_driver_call),
		cmocka_unit_test(test_subchannels),
		cmocka_unit_test(test_subchannels_sparse_index),
		cmocka_unit_test(test_subchan_rescind),
		cmocka_unit_test(test_unload_unanswered),
		cmocka_unit_test(test_partition_gone),
		cmocka_unit_test(test_event_counters_concurrent),
		cmocka_unit_test(test_isr_thread_whole_life),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
