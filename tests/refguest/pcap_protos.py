#!/usr/bin/env python3
"""tests/refguest/pcap_protos.py PCAP - what a capture of Ethernet frames
holds, one line each: "arp-request", "arp-reply", "icmp-echo-request",
"icmp-echo-reply", "tcp-syn", "tcp-syn-ack", "tcp-data", "http-200" (a TCP
segment starting "HTTP/1.x 200"), counted: "arp-request 1". Reads the
classic pcap format (either byte order, micro- or nanosecond stamps), as
libpcap writes it, without tshark. Frames it cannot parse are counted as
"other"; a file that is not a pcap exits 2."""
import struct
import sys
from collections import Counter


def frames(data):
    if len(data) < 24:
        raise ValueError('short header')
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        e = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '>'
    else:
        raise ValueError('not a pcap file')
    linktype = struct.unpack(e + 'I', data[20:24])[0]
    if linktype != 1:
        raise ValueError('link type %d, not Ethernet' % linktype)
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(e + 'I', data[off + 8:off + 12])[0]
        off += 16
        if off + incl > len(data):
            break
        yield data[off:off + incl]
        off += incl


def classify(f, c):
    if len(f) < 14:
        c['other'] += 1
        return
    et = struct.unpack('>H', f[12:14])[0]
    p = f[14:]
    if et == 0x8100 and len(f) >= 18:       # one VLAN tag
        et = struct.unpack('>H', f[16:18])[0]
        p = f[18:]
    if et == 0x0806 and len(p) >= 8:
        op = struct.unpack('>H', p[6:8])[0]
        c[{1: 'arp-request', 2: 'arp-reply'}.get(op, 'other')] += 1
        return
    if et != 0x0800 or len(p) < 20:
        c['other'] += 1
        return
    ihl = (p[0] & 15) * 4
    total = struct.unpack('>H', p[2:4])[0]
    proto = p[9]
    l4 = p[ihl:total]
    if proto == 1 and len(l4) >= 8:
        c[{8: 'icmp-echo-request', 0: 'icmp-echo-reply'}.get(l4[0], 'other')] += 1
    elif proto == 6 and len(l4) >= 20:
        doff = (l4[12] >> 4) * 4
        flags = l4[13]
        payload = l4[doff:]
        if flags & 0x02:
            c['tcp-syn-ack' if flags & 0x10 else 'tcp-syn'] += 1
        if payload:
            c['tcp-data'] += 1
            if payload.startswith(b'HTTP/1.') and payload[8:12] == b' 200':
                c['http-200'] += 1
    else:
        c['other'] += 1


def main():
    try:
        data = open(sys.argv[1], 'rb').read()
        c = Counter()
        for f in frames(data):
            classify(f, c)
    except (OSError, ValueError, IndexError) as ex:
        print('pcap_protos: %s' % ex, file=sys.stderr)
        return 2
    for k in sorted(c):
        print(k, c[k])
    return 0


if __name__ == '__main__':
    sys.exit(main())
