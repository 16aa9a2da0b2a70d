/*
 * tools/hvsim/status.c - what hvsim shows while VMs run:
 *
 *   the watcher  log lines for what changed since the last look (the
 *                devices offered once the guest connects, each channel the
 *                guest opens or closes, storage and network protocol
 *                versions, heartbeat state), every 250 ms;
 *   the status   every interval, one line per VM (plain mode: stdout not a
 *                terminal), or a block of lines redrawn in place at the
 *                bottom of the terminal (live mode), with per-channel
 *                disk and NIC counters.
 *
 * In live mode every other line (guest output, log lines through a log
 * sink) goes through hvsim_term_write(), which takes the block away,
 * writes the line, and draws the block again, so the block always stays
 * below the scrolling output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hvsim.h"
#include "log.h"
#include "net/net.h"
#include "vmbus_server.h"
#include "vsp/netvsp.h"
#include "vsp/storvsp.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define BLOCK_MAX (32 * 1024)
#define MAX_CTRL 8u

static struct {
	int mode;
	pthread_mutex_t lock;
	char block[BLOCK_MAX];  /* the live block: lines joined by '\n' */
	size_t block_len;
	unsigned block_lines;
	bool shown;             /* on the terminal now */
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Under T.lock: erase the block (the cursor sits at its last line's end). */
static void block_hide(void)
{
	char buf[16 + 8 * 256];
	size_t n = 0;

	if (!T.shown)
		return;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\033[K");
	for (unsigned i = 1; i < T.block_lines && n + 8 < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\033[1A\033[K");
	write_all(STDOUT_FILENO, buf, n);
	T.shown = false;
}

static void block_show(void)
{
	if (T.shown || !T.block_len)
		return;
	write_all(STDOUT_FILENO, T.block, T.block_len);
	T.shown = true;
}

void hvsim_term_write(int fd, const char *buf, size_t n)
{
	if (T.mode != 2) {
		write_all(fd, buf, n);
		return;
	}
	pthread_mutex_lock(&T.lock);
	block_hide();
	write_all(fd, buf, n);
	block_show();
	pthread_mutex_unlock(&T.lock);
}

static void log_sink(void *arg, enum hvs_log_level level, const char *line)
{
	size_t n = strlen(line);
	char *b = malloc(n + 1);

	(void)arg;
	(void)level;
	if (!b)
		return;
	memcpy(b, line, n);
	b[n] = '\n';
	hvsim_term_write(STDERR_FILENO, b, n + 1);
	free(b);
}

void hvsim_term_init(int mode)
{
	T.mode = mode;
	if (mode == 2 && isatty(STDERR_FILENO))
		hvs_log_set_sink(log_sink, NULL);
}

void hvsim_term_fini(void)
{
	if (T.mode == 2) {
		hvs_log_set_sink(NULL, NULL);
		pthread_mutex_lock(&T.lock);
		/* The last block stays on the screen. */
		if (T.shown)
			write_all(STDOUT_FILENO, "\n", 1);
		T.shown = false;
		T.block_len = 0;
		pthread_mutex_unlock(&T.lock);
	}
	T.mode = 0;
}

/* ---- formatting ----------------------------------------------------------- */

struct sbuf {
	char *s_p;
	size_t s_cap, s_len;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->s_len + 1 >= b->s_cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s_p + b->s_len, b->s_cap - b->s_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	b->s_len += (size_t)n;
	if (b->s_len >= b->s_cap)
		b->s_len = b->s_cap - 1;
}

/* 1234 -> "1.2K" style, binary units, for bytes. */
static const char *human(uint64_t v, char out[16])
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	while (d >= 1024.0 && u < 5) {
		d /= 1024.0;
		u++;
	}
	if (u < 0)
		snprintf(out, 16, "%" PRIu64 "B", v);
	else
		snprintf(out, 16, "%.1f%ciB", d, units[u]);
	return out;
}

static const char *duration(uint64_t ns, char out[24])
{
	uint64_t s = ns / NS_PER_S;

	if (s < 60)
		snprintf(out, 24, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(out, 24, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(out, 24, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 s / 60 % 60);
	return out;
}

struct chans {
	unsigned n;
	struct hvs_chan_info c[VM_WATCH_MAX_CHANS];
};

static int collect(void *ctx, const struct hvs_chan_info *ci)
{
	struct chans *cs = ctx;

	if (cs->n < VM_WATCH_MAX_CHANS)
		cs->c[cs->n++] = *ci;
	return 0;
}

/* Per-channel packet counters of device `name`: " [ch0 in/out ...]". */
static void chan_counts(struct sbuf *b, const struct chans *cs, const char *name)
{
	bool any = false;

	for (unsigned i = 0; i < cs->n; i++) {
		const struct hvs_chan_info *ci = &cs->c[i];

		if (!ci->ci_name || strcmp(ci->ci_name, name) ||
		    ci->ci_state != HVS_CHAN_OPEN)
			continue;
		sb_printf(b, "%sch%u %" PRIu64 "/%" PRIu64, any ? " " : "  [",
			  ci->ci_sub_index, ci->ci_pkts_in, ci->ci_pkts_out);
		any = true;
	}
	if (any)
		sb_printf(b, " pkts in/out]");
}

static void vm_head(struct sbuf *b, struct vm *vm, const struct chans *cs,
		    bool name)
{
	struct hvs_vmbus_stats vs;
	char d[24];
	unsigned open = 0;

	if (name)
		sb_printf(b, "%s ", vm->name);
	sb_printf(b, "%s", hvsim_vm_state_name(vm));
	if (vm->state == VM_RUNNING && vm->started_ns)
		sb_printf(b, " %s", duration(hvs_now_ns() - vm->started_ns, d));
	if (!vm->srv)
		return;
	hvs_vmbus_get_stats(vm->srv, &vs);
	for (unsigned i = 0; i < cs->n; i++)
		open += cs->c[i].ci_state == HVS_CHAN_OPEN;
	if (vs.vs_connected)
		sb_printf(b, " | VMBus %u.%u, %u/%u channels open",
			  vs.vs_version >> 16, vs.vs_version & 0xFFFF, open, cs->n);
	else
		sb_printf(b, " | VMBus not connected, %u channels", cs->n);
	if (vm->ic) {
		struct hvs_ic_hb_status hs;
		struct hvs_ic_ts_status ts;

		/* Live mode: the services get a line of their own. */
		sb_printf(b, name ? "\033[0m\n  ic     " : " | ");
		if (hvs_ic_heartbeat_status(vm->ic, &hs) == 0) {
			sb_printf(b, "heartbeat %s", hvs_ic_hb_state_name(hs.hs_state));
			if (hs.hs_since_reply_ns != UINT64_MAX)
				sb_printf(b, " (%.1fs ago)",
					  (double)hs.hs_since_reply_ns / 1e9);
		}
		if (hvs_ic_timesync_status(vm->ic, &ts) == 0 && ts.ts_offset_valid)
			sb_printf(b, ", guest clock %+.3fms",
				  (double)ts.ts_offset_ns / 1e6);
	}
}

static void storage_lines(struct sbuf *b, struct vm *vm, const struct chans *cs,
			  bool live)
{
	char r[16], w[16], name[16];

	if (!vm->st)
		return;
	for (unsigned c = 0; c < MAX_CTRL; c++) {
		struct hvs_storvsp_stats s;

		if (hvs_storage_get_stats(vm->st, c, &s) < 0)
			continue;
		snprintf(name, sizeof(name), "scsi%u", c);
		if (live)
			sb_printf(b, "\n  %-6s", name);
		else
			sb_printf(b, " | %s", name);
		if (s.ss_version)
			sb_printf(b, " VSTOR %u.%u", s.ss_version >> 8,
				  s.ss_version & 0xFF);
		sb_printf(b, " read %s written %s, %" PRIu64 " SRBs",
			  human(s.ss_bytes_read, r), human(s.ss_bytes_written, w),
			  s.ss_srbs);
		if (s.ss_io_errors || s.ss_bad_packets || s.ss_bad_srbs)
			sb_printf(b, ", %" PRIu64 " I/O errors, %" PRIu64
				  " bad", s.ss_io_errors,
				  s.ss_bad_packets + s.ss_bad_srbs);
		if (live)
			chan_counts(b, cs, name);
	}
}

static void nic_lines(struct sbuf *b, struct vm *vm, const struct chans *cs,
		      bool live)
{
	char rx[16], tx[16], name[16];

	for (unsigned i = 0; i < vm->nnics; i++) {
		struct hvs_netvsp_stats s;

		if (!vm->nics[i].vn_nic)
			continue;
		hvs_netvsp_get_stats(vm->nics[i].vn_nic, &s);
		snprintf(name, sizeof(name), "net%u", i);
		if (live)
			sb_printf(b, "\n  %-6s", name);
		else
			sb_printf(b, " | %s", name);
		if (s.ns_nvsp_version)
			sb_printf(b, " NVSP %u.%u link %s", s.ns_nvsp_version >> 16,
				  s.ns_nvsp_version & 0xFFFF,
				  s.ns_link_up ? "up" : "down");
		sb_printf(b, " rx %" PRIu64 " (%s) tx %" PRIu64 " (%s)",
			  s.ns_rx_frames, human(s.ns_rx_bytes, rx),
			  s.ns_tx_frames, human(s.ns_tx_bytes, tx));
		if (s.ns_rx_dropped || s.ns_tx_dropped)
			sb_printf(b, " dropped %" PRIu64 "/%" PRIu64,
				  s.ns_rx_dropped, s.ns_tx_dropped);
		if (live)
			chan_counts(b, cs, name);
	}
}

static unsigned term_cols(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

void hvsim_status_tick(struct vm **vms, unsigned n)
{
	static struct chans cs;
	static char text[BLOCK_MAX];

	if (T.mode == 1) {
		for (unsigned i = 0; i < n; i++) {
			struct sbuf b = { text, sizeof(text), 0 };

			cs.n = 0;
			if (vms[i]->srv)
				hvs_vmbus_foreach_channel(vms[i]->srv, collect, &cs);
			sb_printf(&b, "hvsim: status: [%s] ", vms[i]->name);
			vm_head(&b, vms[i], &cs, false);
			storage_lines(&b, vms[i], &cs, false);
			nic_lines(&b, vms[i], &cs, false);
			sb_printf(&b, "\n");
			hvsim_term_write(STDOUT_FILENO, text, b.s_len);
		}
		return;
	}
	if (T.mode != 2)
		return;

	struct sbuf b = { text, sizeof(text), 0 };
	for (unsigned i = 0; i < n; i++) {
		cs.n = 0;
		if (vms[i]->srv)
			hvs_vmbus_foreach_channel(vms[i]->srv, collect, &cs);
		if (i)
			sb_printf(&b, "\n");
		sb_printf(&b, "\033[1m");
		vm_head(&b, vms[i], &cs, true);
		sb_printf(&b, "\033[0m");
		storage_lines(&b, vms[i], &cs, true);
		nic_lines(&b, vms[i], &cs, true);
	}
	/* Cut every line to the terminal width (escape sequences do not take
	 * columns), so no line wraps and the block's line count is exact. */
	unsigned cols = term_cols() - 1, col = 0, lines = 1;
	bool esc = false;
	size_t o = 0;

	pthread_mutex_lock(&T.lock);
	for (size_t k = 0; k < b.s_len && o + 8 < sizeof(T.block); k++) {
		char c = text[k];

		if (c == '\n') {
			if (esc)
				esc = false;
			T.block[o++] = c;
			col = 0;
			lines++;
			continue;
		}
		if (c == '\033')
			esc = true;
		if (esc) {
			T.block[o++] = c;
			if (c == 'm')
				esc = false;
			continue;
		}
		if (col < cols)
			T.block[o++] = c;
		col++;
	}
	o += (size_t)snprintf(T.block + o, sizeof(T.block) - o, "\033[0m");
	block_hide();
	T.block_len = o;
	T.block_lines = lines;
	block_show();
	pthread_mutex_unlock(&T.lock);
}

/* ---- the watcher --------------------------------------------------------------- */

void hvsim_watch_reset(struct vm *vm)
{
	memset(&vm->watch, 0, sizeof(vm->watch));
	vm->watch.w_hb = -1;
}

static const char *chan_state(int st)
{
	switch (st) {
	case HVS_CHAN_UNOFFERED: return "not offered";
	case HVS_CHAN_OFFERED: return "offered";
	case HVS_CHAN_OPEN: return "open";
	case HVS_CHAN_BROKEN: return "broken";
	case HVS_CHAN_RESCINDED: return "rescinded";
	}
	return "?";
}

static void watch_vm(struct vm *vm)
{
	static struct chans cs;
	struct vm_watch *wa = &vm->watch;
	struct hvs_vmbus_stats vs;

	if (!vm->srv || vm->state != VM_RUNNING || !vm->part)
		return;
	hvs_vmbus_get_stats(vm->srv, &vs);
	cs.n = 0;
	hvs_vmbus_foreach_channel(vm->srv, collect, &cs);

	if (vs.vs_connected && !wa->w_connected) {
		/* The guest connected: say what it is offered. */
		char line[1024];
		struct sbuf b = { line, sizeof(line), 0 };

		for (unsigned i = 0; i < cs.n; i++)
			if (cs.c[i].ci_sub_index == 0)
				sb_printf(&b, "%s%s (relid %u)", b.s_len ? ", " : "",
					  cs.c[i].ci_name ? cs.c[i].ci_name : "?",
					  cs.c[i].ci_relid);
		HVS_INFO(vm->name, "devices offered: %s", b.s_len ? line : "none");
	}
	wa->w_connected = vs.vs_connected;

	/* Channel state changes (open, close, broken, rescinded). */
	for (unsigned i = 0; i < cs.n; i++) {
		const struct hvs_chan_info *ci = &cs.c[i];
		char label[96];
		int prev = HVS_CHAN_OFFERED; /* new to us: as if just offered */

		if (ci->ci_sub_index)
			snprintf(label, sizeof(label), "%s sub %u",
				 ci->ci_name ? ci->ci_name : "?", ci->ci_sub_index);
		else
			snprintf(label, sizeof(label), "%s",
				 ci->ci_name ? ci->ci_name : "?");

		for (unsigned k = 0; k < wa->w_nchans; k++)
			if (wa->w_relid[k] == ci->ci_relid)
				prev = wa->w_state[k];
		if (prev != (int)ci->ci_state &&
		    (ci->ci_state == HVS_CHAN_OPEN || prev == HVS_CHAN_OPEN ||
		     ci->ci_state == HVS_CHAN_BROKEN)) {
			if (ci->ci_state == HVS_CHAN_OPEN)
				HVS_INFO(vm->name, "channel %u %s opened by the guest "
					 "(rings %u/%u bytes, vCPU %u)",
					 ci->ci_relid, label, ci->ci_out_ring_bytes, ci->ci_in_ring_bytes,
					 ci->ci_target_vp);
			else
				HVS_INFO(vm->name, "channel %u %s: %s", ci->ci_relid,
					 label, ci->ci_state == HVS_CHAN_OFFERED
						 ? "closed by the guest"
						 : chan_state(ci->ci_state));
		}
	}
	wa->w_nchans = cs.n;
	for (unsigned i = 0; i < cs.n; i++) {
		wa->w_relid[i] = cs.c[i].ci_relid;
		wa->w_state[i] = (int)cs.c[i].ci_state;
	}

	if (vm->ic) {
		struct hvs_ic_hb_status hs;

		if (hvs_ic_heartbeat_status(vm->ic, &hs) == 0 &&
		    (int)hs.hs_state != wa->w_hb) {
			if (wa->w_hb >= 0 || hs.hs_state != HVS_IC_HB_NO_CONTACT) {
				if (hs.hs_state == HVS_IC_HB_LOST)
					HVS_WARN(vm->name, "heartbeat lost: no "
						 "answer for %.1f s",
						 (double)hs.hs_since_reply_ns / 1e9);
				else
					HVS_INFO(vm->name, "heartbeat %s",
						 hvs_ic_hb_state_name(hs.hs_state));
			}
			wa->w_hb = (int)hs.hs_state;
		}
	}
	for (unsigned c = 0; vm->st && c < MAX_CTRL; c++) {
		struct hvs_storvsp_stats s;

		if (hvs_storage_get_stats(vm->st, c, &s) < 0)
			continue;
		if (s.ss_version != wa->w_vstor[c] && s.ss_version)
			HVS_INFO(vm->name, "scsi%u: VSTOR %u.%u negotiated, %u "
				 "channel%s open", c, s.ss_version >> 8,
				 s.ss_version & 0xFF, s.ss_channels,
				 s.ss_channels == 1 ? "" : "s");
		wa->w_vstor[c] = s.ss_version;
	}
	for (unsigned i = 0; i < vm->nnics && i < 16; i++) {
		struct hvs_netvsp_stats s;

		if (!vm->nics[i].vn_nic)
			continue;
		hvs_netvsp_get_stats(vm->nics[i].vn_nic, &s);
		if (s.ns_nvsp_version != wa->w_nvsp[i] && s.ns_nvsp_version)
			HVS_INFO(vm->name, "net%u: NVSP %u.%u, NDIS %u.%u negotiated",
				 i, s.ns_nvsp_version >> 16,
				 s.ns_nvsp_version & 0xFFFF, s.ns_ndis_version >> 16,
				 s.ns_ndis_version & 0xFFFF);
		if (s.ns_rndis_up && !wa->w_rndis[i])
			HVS_INFO(vm->name, "net%u: RNDIS up, frame size %u, %u "
				 "queue%s open, link %s", i, s.ns_frame_max,
				 s.ns_queues_open, s.ns_queues_open == 1 ? "" : "s",
				 s.ns_link_up ? "up" : "down");
		else if (wa->w_rndis[i] && s.ns_link_up != wa->w_link[i])
			HVS_INFO(vm->name, "net%u: link %s", i,
				 s.ns_link_up ? "up" : "down");
		wa->w_nvsp[i] = s.ns_nvsp_version;
		wa->w_rndis[i] = s.ns_rndis_up;
		wa->w_link[i] = s.ns_link_up;
	}
}

void hvsim_watch(struct vm **vms, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		watch_vm(vms[i]);
}
