/*
 * tools/hvguest/hvg_status.c - the status page the HTTP server serves:
 * VMBus version and channels (with each bound driver's negotiated
 * protocol), the integration services, the disks with the StorVSC
 * counters, the NICs with their NetVSC counters and IP lease, and the
 * servers' own counters; as JSON (/status.json) and as HTML (/).
 *
 * Built by the main thread every 0.5 s (hvg_net_tick), where taking the
 * device locks is allowed, and swapped in under a mutex; the tcpip thread
 * only copies the latest one (hvg_status_copy). Host-chosen text (disk
 * vendor and product) is escaped for JSON and for HTML.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/guid.h"
#include "hv/vmbus_msg.h"
#include "hvg_net.h"
#include "hvguest.h"
#include "vmbus/ic.h"
#include "vmbus/netvsc.h"
#include "vmbus/storvsc.h"

/* ---- a growing string ---- */

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sb *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_add(struct sb *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->oom)
		return;
	for (;;) {
		size_t room = s->cap - s->len;

		va_start(ap, fmt);
		n = vsnprintf(s->p ? s->p + s->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			s->oom = true;
			return;
		}
		if ((size_t)n < room) {
			s->len += (size_t)n;
			return;
		}
		{
			size_t nc = s->cap ? s->cap * 2 : 8192;
			char *np;

			while (nc < s->len + (size_t)n + 1)
				nc *= 2;
			np = realloc(s->p, nc);
			if (np == NULL) {
				s->oom = true;
				return;
			}
			s->p = np;
			s->cap = nc;
		}
	}
}

/* in as HTML text: & < > " ' escaped, control bytes as '?'. */
static void html_str(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (; *in && o + 7 < size; in++) {
		unsigned char c = (unsigned char)*in;
		const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" :
		    c == '>' ? "&gt;" : c == '"' ? "&quot;" :
		    c == '\'' ? "&#39;" : NULL;

		if (e != NULL) {
			memcpy(out + o, e, strlen(e));
			o += strlen(e);
		} else {
			out[o++] = c < 0x20 || c == 0x7F ? '?' : (char)c;
		}
	}
	out[o] = '\0';
}

/* ---- what goes on the page ---- */

#define ST_MAX_CHANNELS	128
#define ST_MAX_DISKS	16

static const char *const svc_names[IC_SVC_COUNT] = {
	"heartbeat", "shutdown", "timesync", "kvp",
};

struct chan_row {
	struct vmbus_chan_info ci;
	char proto[128];
	bool has_proto;
};

struct disk_row {
	struct storvsc_disk_info di;
};

struct page {
	uint32_t version;
	uint32_t nch;
	struct chan_row ch[ST_MAX_CHANNELS];
	uint32_t ndisk;
	struct disk_row disk[ST_MAX_DISKS];
	bool have_sv;
	struct storvsc_stats ss;
	uint32_t nnic;
	struct hvg_nic_snap nic[NETVSC_MAX_DEVICES];
	struct vmbus_stats vs;
	struct hvg_nbd_stats nbd;
	uint64_t http_requests;
	double uptime_s;
};

static int collect(void *arg, const struct vmbus_chan_info *ci)
{
	struct page *pg = arg;

	if (pg->nch < ST_MAX_CHANNELS)
		pg->ch[pg->nch++].ci = *ci;
	return 0;
}

static void gather(struct page *pg)
{
	memset(pg, 0, sizeof(*pg));
	pg->uptime_s = (double)(hvg_now_ns() - g.t0_ns) / 1e9;
	pg->version = vmbus_version(g.vb);
	vmbus_foreach_channel(g.vb, collect, pg);
	/* protocols after the walk: fn may not call back into the bus */
	for (uint32_t i = 0; i < pg->nch; i++) {
		struct chan_row *r = &pg->ch[i];

		r->has_proto = hvg_ic_protocol(&r->ci, r->proto,
		    sizeof(r->proto)) || hvg_dev_protocol(&r->ci, r->proto,
		    sizeof(r->proto));
	}
	if (g.sv != NULL) {
		uint32_t n = storvsc_disk_count(g.sv);

		pg->have_sv = storvsc_get_stats(g.sv, &pg->ss) == 0;
		for (uint32_t i = 0; i < n && pg->ndisk < ST_MAX_DISKS; i++) {
			struct storvsc_disk *d = storvsc_disk_get(g.sv, i);

			if (d == NULL)
				continue;
			if (storvsc_disk_info(d, &pg->disk[pg->ndisk].di) == 0)
				pg->ndisk++;
			storvsc_disk_put(d);
		}
	}
	for (uint32_t i = 0; i < NETVSC_MAX_DEVICES; i++)
		if (hvg_dev_nic_snap(i, &pg->nic[pg->nnic]) == 0)
			pg->nnic++;
	vmbus_get_stats(g.vb, &pg->vs);
	hvg_nbd_get_stats(&pg->nbd);
	pg->http_requests = hvg_http_requests();
}

static void mac_str(const uint8_t *m, char *out, size_t size)
{
	snprintf(out, size, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
	    m[3], m[4], m[5]);
}

static unsigned prefix_len(uint32_t mask)
{
	unsigned n = 0;

	for (; mask; mask <<= 1)
		n++;
	return n;
}

static void emit_json(struct sb *s, const struct page *pg)
{
	int64_t off = 0, pending = 0;
	char a[64], b[64];

	sb_add(s, "{\n  \"uptime_s\": %.1f,\n  \"vmbus\": {\"version\": "
	    "\"%u.%u\", \"messages\": %llu, \"bad_messages\": %llu},\n"
	    "  \"channels\": [", pg->uptime_s,
	    VMBUS_VERSION_MAJOR(pg->version), VMBUS_VERSION_MINOR(pg->version),
	    (unsigned long long)pg->vs.bs_messages,
	    (unsigned long long)pg->vs.bs_bad_messages);
	for (uint32_t i = 0; i < pg->nch; i++) {
		const struct chan_row *r = &pg->ch[i];
		char cls[HV_GUID_STR_LEN], inst[HV_GUID_STR_LEN], pj[160];

		hv_guid_to_str(&r->ci.ci_class, cls);
		hv_guid_to_str(&r->ci.ci_instance, inst);
		hvg_json_str(pj, sizeof(pj), r->has_proto ? r->proto : "");
		sb_add(s, "%s\n    {\"relid\": %u, \"class\": \"%s\", "
		    "\"class_name\": \"%s\", \"instance\": \"%s\", "
		    "\"sub_channel\": %u, \"state\": \"%s\", \"driver\": %s%s%s, "
		    "\"target_vp\": %u, \"protocol\": %s%s%s}", i ? "," : "",
		    r->ci.ci_relid, cls, hv_guid_class_name(&r->ci.ci_class),
		    inst, r->ci.ci_sub_index,
		    vmbus_chan_state_name(r->ci.ci_state),
		    r->ci.ci_driver ? "\"" : "",
		    r->ci.ci_driver ? r->ci.ci_driver : "null",
		    r->ci.ci_driver ? "\"" : "", r->ci.ci_target_vp,
		    r->has_proto ? "\"" : "", r->has_proto ? pj : "null",
		    r->has_proto ? "\"" : "");
	}
	sb_add(s, "%s],\n  \"ic\": {", pg->nch ? "\n  " : "");
	for (int sv = 0; g.ics != NULL && sv < IC_SVC_COUNT; sv++) {
		struct ic_stats st;

		if (ic_get_stats(g.ics, (enum ic_service)sv, &st) != 0)
			continue;
		sb_add(s, "%s\n    \"%s\": {\"attached\": %s, \"negotiated\": "
		    "%s, \"framework\": \"%u.%u\", \"version\": \"%u.%u\", "
		    "\"messages\": %llu, \"replies\": %llu, \"malformed\": "
		    "%llu}", sv ? "," : "", svc_names[sv],
		    st.is_attached ? "true" : "false",
		    st.is_negotiated ? "true" : "false", st.is_fw_major,
		    st.is_fw_minor, st.is_msg_major, st.is_msg_minor,
		    (unsigned long long)st.is_messages,
		    (unsigned long long)st.is_replies,
		    (unsigned long long)st.is_malformed);
	}
	if (g.ics != NULL) {
		struct ic_timesync_status ts;
		struct ic_kvp_status ks;

		vmbus_posix_wallclock_state(g.px, &off, &pending);
		if (ic_timesync_get_status(g.ics, &ts) == 0)
			sb_add(s, ",\n    \"time\": {\"steps\": %llu, \"slews\": "
			    "%llu, \"last_correction_ns\": %lld, "
			    "\"clock_offset_ns\": %lld}",
			    (unsigned long long)ts.ts_steps,
			    (unsigned long long)ts.ts_slews,
			    (long long)ts.ts_last_correction_ns,
			    (long long)off);
		if (ic_kvp_get_status(g.ics, &ks) == 0)
			sb_add(s, ",\n    \"kvp\": {\"records\": %u, "
			    "\"host_sets\": %llu}", ks.ks_records,
			    (unsigned long long)ks.ks_host_sets);
		sb_add(s, ",\n    \"heartbeat_seq\": %llu",
		    (unsigned long long)ic_heartbeat_last_seq(g.ics));
	}
	sb_add(s, "\n  },\n  \"disks\": [");
	for (uint32_t i = 0; i < pg->ndisk; i++) {
		const struct storvsc_disk_info *di = &pg->disk[i].di;

		hvg_json_str(a, sizeof(a), di->di_vendor);
		hvg_json_str(b, sizeof(b), di->di_product);
		sb_add(s, "%s\n    {\"index\": %u, \"lun\": \"%u:%u:%u\", "
		    "\"vendor\": \"%s\", \"product\": \"%s\", \"blocks\": %llu, "
		    "\"block_size\": %u, \"bytes\": %llu, \"read_only\": %s, "
		    "\"thin\": %s, \"vstor\": \"%u.%u\", \"queues\": %u}",
		    i ? "," : "", i, di->di_path, di->di_target, di->di_lun, a,
		    b, (unsigned long long)di->di_blocks, di->di_block_size,
		    (unsigned long long)(di->di_blocks * di->di_block_size),
		    di->di_write_protected ? "true" : "false",
		    di->di_thin ? "true" : "false", di->di_vstor_version >> 8,
		    di->di_vstor_version & 0xFFu, di->di_queues);
	}
	sb_add(s, "%s],\n", pg->ndisk ? "\n  " : "");
	if (pg->have_sv)
		sb_add(s, "  \"storage\": {\"ios\": %llu, \"io_errors\": %llu, "
		    "\"bytes_read\": %llu, \"bytes_written\": %llu, \"srbs\": "
		    "%llu, \"timeouts\": %llu, \"protocol_errors\": %llu},\n",
		    (unsigned long long)pg->ss.st_ios,
		    (unsigned long long)pg->ss.st_io_errors,
		    (unsigned long long)pg->ss.st_bytes_read,
		    (unsigned long long)pg->ss.st_bytes_written,
		    (unsigned long long)pg->ss.st_srbs,
		    (unsigned long long)pg->ss.st_timeouts,
		    (unsigned long long)pg->ss.st_proto_errors);
	sb_add(s, "  \"nics\": [");
	for (uint32_t i = 0; i < pg->nnic; i++) {
		const struct hvg_nic_snap *n = &pg->nic[i];
		const struct netvsc_queue_stats *q = &n->sn_stats.ns_total;
		char mac[24], ip[16], gw[16], dns[16];

		mac_str(n->sn_info.ni_cur_mac, mac, sizeof(mac));
		sb_add(s, "%s\n    {\"index\": %u, \"mac\": \"%s\", \"mtu\": %u, "
		    "\"link_up\": %s, \"link_speed_bps\": %llu, \"nvsp\": "
		    "\"%#x\", \"ndis\": \"%u.%u\", \"queues\": %u, \"offloads\": "
		    "%u, \"rx_frames\": %llu, \"rx_bytes\": %llu, \"rx_drops\": "
		    "%llu, \"tx_frames\": %llu, \"tx_bytes\": %llu, "
		    "\"tx_busy\": %llu", i ? "," : "", n->sn_index, mac,
		    n->sn_info.ni_mtu, n->sn_info.ni_link_up ? "true" : "false",
		    (unsigned long long)n->sn_info.ni_link_speed_bps,
		    n->sn_info.ni_nvsp_version, n->sn_info.ni_ndis_version >> 16,
		    n->sn_info.ni_ndis_version & 0xFFFFu, n->sn_info.ni_queues,
		    n->sn_info.ni_offloads, (unsigned long long)q->qs_rx_frames,
		    (unsigned long long)q->qs_rx_bytes,
		    (unsigned long long)q->qs_rx_drops,
		    (unsigned long long)q->qs_tx_frames,
		    (unsigned long long)q->qs_tx_bytes,
		    (unsigned long long)q->qs_tx_busy);
		if (n->sn_has_if)
			sb_add(s, ", \"ip\": {\"address\": %s%s%s, \"prefix\": "
			    "%u, \"router\": %s%s%s, \"dns\": %s%s%s, "
			    "\"dhcp_state\": \"%s\", \"lease_s\": %u, "
			    "\"lease_left_s\": %llu, \"dhcp_sent\": %llu, "
			    "\"dhcp_received\": %llu, \"tx_csum_offloaded\": "
			    "%llu, \"tx_drops\": %llu, \"rx_drops\": %llu}",
			    n->sn_if.nf_ip ? "\"" : "", n->sn_if.nf_ip ?
			    hvg_ip_str(n->sn_if.nf_ip, ip, sizeof(ip)) : "null",
			    n->sn_if.nf_ip ? "\"" : "",
			    prefix_len(n->sn_if.nf_mask),
			    n->sn_if.nf_router ? "\"" : "", n->sn_if.nf_router ?
			    hvg_ip_str(n->sn_if.nf_router, gw, sizeof(gw)) :
			    "null", n->sn_if.nf_router ? "\"" : "",
			    n->sn_if.nf_dns ? "\"" : "", n->sn_if.nf_dns ?
			    hvg_ip_str(n->sn_if.nf_dns, dns, sizeof(dns)) :
			    "null", n->sn_if.nf_dns ? "\"" : "",
			    n->sn_if.nf_dhcp_state, n->sn_if.nf_lease_s,
			    (unsigned long long)n->sn_if.nf_lease_left_s,
			    (unsigned long long)n->sn_if.nf_dhcp_sent,
			    (unsigned long long)n->sn_if.nf_dhcp_received,
			    (unsigned long long)n->sn_if.nf_tx_csum_offloaded,
			    (unsigned long long)n->sn_if.nf_tx_drops,
			    (unsigned long long)n->sn_if.nf_rx_drops);
		sb_add(s, "}");
	}
	sb_add(s, "%s],\n  \"http\": {\"requests\": %llu},\n  \"nbd\": "
	    "{\"connections\": %llu, \"active\": %llu, \"requests\": %llu, "
	    "\"errors\": %llu, \"rejected\": %llu, \"bytes_read\": %llu, "
	    "\"bytes_written\": %llu, \"max_inflight\": %llu}\n}\n",
	    pg->nnic ? "\n  " : "",
	    (unsigned long long)pg->http_requests,
	    (unsigned long long)pg->nbd.nb_connections,
	    (unsigned long long)pg->nbd.nb_active,
	    (unsigned long long)pg->nbd.nb_requests,
	    (unsigned long long)pg->nbd.nb_errors,
	    (unsigned long long)pg->nbd.nb_rejected,
	    (unsigned long long)pg->nbd.nb_bytes_read,
	    (unsigned long long)pg->nbd.nb_bytes_written,
	    (unsigned long long)pg->nbd.nb_max_inflight);
}

static void emit_html(struct sb *s, const struct page *pg)
{
	int64_t off = 0, pending = 0;
	char a[64], b[64];
	const char *vm = getenv("HVSIM_VM_NAME");

	html_str(a, sizeof(a), vm && *vm ? vm : "hvguest");
	sb_add(s, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>%s: hvguest status</title>\n<style>body{font-family:"
	    "sans-serif;margin:1em 2em}table{border-collapse:collapse;"
	    "margin-bottom:1em}td,th{border:1px solid #bbb;padding:2px 8px;"
	    "text-align:left}th{background:#eee}</style></head><body>\n"
	    "<h1>%s</h1>\n<p>hvguest up %.1f s, VMBus %u.%u, %llu messages. "
	    "Machine-readable: <a href=\"/status.json\">/status.json</a>."
	    "</p>\n", a, a, pg->uptime_s, VMBUS_VERSION_MAJOR(pg->version),
	    VMBUS_VERSION_MINOR(pg->version),
	    (unsigned long long)pg->vs.bs_messages);
	sb_add(s, "<h2>VMBus channels</h2>\n<table><tr><th>relid</th><th>"
	    "device</th><th>sub</th><th>state</th><th>driver</th><th>"
	    "protocol</th></tr>\n");
	for (uint32_t i = 0; i < pg->nch; i++) {
		const struct chan_row *r = &pg->ch[i];
		const struct hv_guid_class *gc =
		    hv_guid_class_lookup(&r->ci.ci_class);
		char ph[200];

		html_str(ph, sizeof(ph), r->has_proto ? r->proto : "");
		sb_add(s, "<tr><td>%u</td><td>%s</td><td>%u</td><td>%s</td>"
		    "<td>%s</td><td>%s</td></tr>\n", r->ci.ci_relid,
		    gc ? gc->gc_desc : "Unknown", r->ci.ci_sub_index,
		    vmbus_chan_state_name(r->ci.ci_state),
		    r->ci.ci_driver ? r->ci.ci_driver : "", ph);
	}
	sb_add(s, "</table>\n<h2>Integration services</h2>\n<table><tr><th>"
	    "service</th><th>state</th><th>framework</th><th>version</th>"
	    "<th>messages</th></tr>\n");
	for (int sv = 0; g.ics != NULL && sv < IC_SVC_COUNT; sv++) {
		struct ic_stats st;

		if (ic_get_stats(g.ics, (enum ic_service)sv, &st) != 0)
			continue;
		sb_add(s, "<tr><td>%s</td><td>%s</td><td>%u.%u</td><td>%u.%u"
		    "</td><td>%llu</td></tr>\n", svc_names[sv],
		    st.is_negotiated ? "negotiated" : st.is_attached ?
		    "open" : "not offered", st.is_fw_major, st.is_fw_minor,
		    st.is_msg_major, st.is_msg_minor,
		    (unsigned long long)st.is_messages);
	}
	sb_add(s, "</table>\n");
	if (g.ics != NULL) {
		vmbus_posix_wallclock_state(g.px, &off, &pending);
		sb_add(s, "<p>Heartbeat sequence %llu; guest clock offset "
		    "%+.3f ms.</p>\n", (unsigned long long)
		    ic_heartbeat_last_seq(g.ics), (double)off / 1e6);
	}
	sb_add(s, "<h2>Disks</h2>\n<table><tr><th>disk</th><th>LUN</th><th>"
	    "vendor</th><th>product</th><th>size</th><th>VSTOR</th><th>"
	    "queues</th></tr>\n");
	for (uint32_t i = 0; i < pg->ndisk; i++) {
		const struct storvsc_disk_info *di = &pg->disk[i].di;

		html_str(a, sizeof(a), di->di_vendor);
		html_str(b, sizeof(b), di->di_product);
		sb_add(s, "<tr><td>disk%u</td><td>%u:%u:%u</td><td>%s</td><td>"
		    "%s</td><td>%llu x %u B%s</td><td>%u.%u</td><td>%u</td>"
		    "</tr>\n", i, di->di_path, di->di_target, di->di_lun, a, b,
		    (unsigned long long)di->di_blocks, di->di_block_size,
		    di->di_write_protected ? " (read-only)" : "",
		    di->di_vstor_version >> 8, di->di_vstor_version & 0xFFu,
		    di->di_queues);
	}
	sb_add(s, "</table>\n");
	if (pg->have_sv)
		sb_add(s, "<p>Storage: %llu I/Os, %llu errors, %llu bytes read, "
		    "%llu bytes written.</p>\n",
		    (unsigned long long)pg->ss.st_ios,
		    (unsigned long long)pg->ss.st_io_errors,
		    (unsigned long long)pg->ss.st_bytes_read,
		    (unsigned long long)pg->ss.st_bytes_written);
	sb_add(s, "<h2>Network</h2>\n<table><tr><th>NIC</th><th>MAC</th><th>"
	    "link</th><th>MTU</th><th>queues</th><th>IP</th><th>DHCP</th>"
	    "<th>rx frames</th><th>tx frames</th><th>drops</th></tr>\n");
	for (uint32_t i = 0; i < pg->nnic; i++) {
		const struct hvg_nic_snap *n = &pg->nic[i];
		const struct netvsc_queue_stats *q = &n->sn_stats.ns_total;
		char mac[24], ip[16];

		mac_str(n->sn_info.ni_cur_mac, mac, sizeof(mac));
		sb_add(s, "<tr><td>nic%u</td><td>%s</td><td>%s</td><td>%u</td>"
		    "<td>%u</td><td>%s/%u</td><td>%s</td><td>%llu</td><td>%llu"
		    "</td><td>%llu</td></tr>\n", n->sn_index, mac,
		    n->sn_info.ni_link_up ? "up" : "down", n->sn_info.ni_mtu,
		    n->sn_info.ni_queues, n->sn_has_if && n->sn_if.nf_ip ?
		    hvg_ip_str(n->sn_if.nf_ip, ip, sizeof(ip)) : "-",
		    prefix_len(n->sn_if.nf_mask),
		    n->sn_has_if ? n->sn_if.nf_dhcp_state : "-",
		    (unsigned long long)q->qs_rx_frames,
		    (unsigned long long)q->qs_tx_frames,
		    (unsigned long long)q->qs_rx_drops);
	}
	sb_add(s, "</table>\n<h2>Servers</h2>\n<p>HTTP: %llu requests. NBD "
	    "(TCP %u, export \"disk0\"): %llu connections (%llu open), %llu "
	    "requests, %llu errors, %llu bytes read, %llu bytes written.</p>\n"
	    "</body></html>\n", (unsigned long long)pg->http_requests,
	    HVG_NBD_PORT, (unsigned long long)pg->nbd.nb_connections,
	    (unsigned long long)pg->nbd.nb_active,
	    (unsigned long long)pg->nbd.nb_requests,
	    (unsigned long long)pg->nbd.nb_errors,
	    (unsigned long long)pg->nbd.nb_bytes_read,
	    (unsigned long long)pg->nbd.nb_bytes_written);
}

/* ---- the current page ---- */

static pthread_mutex_t page_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sb cur_json, cur_html;

void hvg_status_refresh(void)
{
	struct page *pg = malloc(sizeof(*pg));
	struct sb j = { 0 }, h = { 0 }, oj, oh;

	if (pg == NULL)
		return;
	gather(pg);
	emit_json(&j, pg);
	emit_html(&h, pg);
	free(pg);
	if (j.oom || h.oom) {
		free(j.p);
		free(h.p);
		return;
	}
	pthread_mutex_lock(&page_mu);
	oj = cur_json;
	oh = cur_html;
	cur_json = j;
	cur_html = h;
	pthread_mutex_unlock(&page_mu);
	free(oj.p);
	free(oh.p);
}

char *hvg_status_copy(bool json, size_t *len)
{
	char *out = NULL;
	const struct sb *s;

	pthread_mutex_lock(&page_mu);
	s = json ? &cur_json : &cur_html;
	if (s->p != NULL && (out = malloc(s->len + 1)) != NULL) {
		memcpy(out, s->p, s->len + 1);
		*len = s->len;
	}
	pthread_mutex_unlock(&page_mu);
	return out;
}

void hvg_status_free(void)
{
	pthread_mutex_lock(&page_mu);
	free(cur_json.p);
	free(cur_html.p);
	memset(&cur_json, 0, sizeof(cur_json));
	memset(&cur_html, 0, sizeof(cur_html));
	pthread_mutex_unlock(&page_mu);
}
