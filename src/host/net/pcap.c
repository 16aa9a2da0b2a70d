/*
 * host/net/pcap.c - capture of a NIC's frames (both directions) to a pcap
 * file through libpcap (link type Ethernet), readable by tcpdump, tshark
 * and Wireshark. 802.1Q tags are put back into the captured frame.
 *
 * Built only with libpcap (HVS_HAVE_PCAP); otherwise pcap= fails with
 * -EOPNOTSUPP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "host/net/net_priv.h"

#ifdef HVS_HAVE_PCAP
#include <pcap/pcap.h>

#define PCAP_SNAPLEN     65535
#define PCAP_FLUSH_NS    (200ull * 1000 * 1000)

struct hvs_pcap {
	pcap_t *pc_pcap;
	pcap_dumper_t *pc_dump;
	uint64_t pc_flushed_ns;
	uint8_t pc_buf[HVS_NET_MAX_FRAME + HVS_NET_VLAN_HLEN];
};

int hvs_pcap_open(const char *path, struct hvs_pcap **out, char *err,
		  size_t errlen)
{
	struct hvs_pcap *pc = calloc(1, sizeof(*pc));
	if (pc == NULL) {
		hvs_net_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pc->pc_pcap = pcap_open_dead(DLT_EN10MB, PCAP_SNAPLEN);
	if (pc->pc_pcap == NULL) {
		hvs_net_errf(err, errlen, "pcap=%s: pcap_open_dead failed", path);
		free(pc);
		return -ENOMEM;
	}
	pc->pc_dump = pcap_dump_open(pc->pc_pcap, path);
	if (pc->pc_dump == NULL) {
		hvs_net_errf(err, errlen, "pcap=%s: %s", path,
			     pcap_geterr(pc->pc_pcap));
		pcap_close(pc->pc_pcap);
		free(pc);
		return -EIO;
	}
	pc->pc_flushed_ns = hvs_now_ns();
	*out = pc;
	return 0;
}

int hvs_pcap_write(struct hvs_pcap *pc, const struct hvs_net_frame *f)
{
	struct pcap_pkthdr h;
	struct timeval tv;
	uint32_t len = hvs_net_frame_tagged(f, pc->pc_buf, sizeof(pc->pc_buf));

	if (len == 0)
		return -EMSGSIZE;
	gettimeofday(&tv, NULL);
	memset(&h, 0, sizeof(h));
	h.ts = tv;
	h.caplen = len;
	h.len = len;
	pcap_dump((u_char *)pc->pc_dump, &h, pc->pc_buf);
	uint64_t now = hvs_now_ns();
	if (now - pc->pc_flushed_ns >= PCAP_FLUSH_NS) {
		pcap_dump_flush(pc->pc_dump);
		pc->pc_flushed_ns = now;
	}
	return 0;
}

void hvs_pcap_close(struct hvs_pcap *pc)
{
	if (pc == NULL)
		return;
	pcap_dump_close(pc->pc_dump);
	pcap_close(pc->pc_pcap);
	free(pc);
}

#else /* !HVS_HAVE_PCAP */

int hvs_pcap_open(const char *path, struct hvs_pcap **out, char *err,
		  size_t errlen)
{
	(void)out;
	hvs_net_errf(err, errlen, "pcap=%s: this hvsim was built without "
		     "libpcap", path);
	return -EOPNOTSUPP;
}

int hvs_pcap_write(struct hvs_pcap *pc, const struct hvs_net_frame *f)
{
	(void)pc;
	(void)f;
	return -EOPNOTSUPP;
}

void hvs_pcap_close(struct hvs_pcap *pc)
{
	(void)pc;
}

#endif /* HVS_HAVE_PCAP */
