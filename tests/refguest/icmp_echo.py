#!/usr/bin/env python3
"""tests/refguest/icmp_echo.py - ping without ping: three ICMP echo
requests (56 random bytes each) over a raw socket (root), each reply
checked (type 0, our id and sequence, the same payload, a good checksum).

    icmp_echo.py ADDRESS

Exits 0 if all three came back."""
import os
import socket
import struct
import sys
import time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.settimeout(2)
ok = 0
for seq in range(3):
    payload = os.urandom(56)
    hdr = struct.pack("!BBHHH", 8, 0, 0, 0x4856, seq)
    hdr = struct.pack("!BBHHH", 8, 0, csum(hdr + payload), 0x4856, seq)
    sock.sendto(hdr + payload, (sys.argv[1], 0))
    end = time.time() + 2
    while time.time() < end:
        try:
            d, _ = sock.recvfrom(2048)
        except socket.timeout:
            break
        ihl = (d[0] & 15) * 4
        typ, _, _, ident, sq = struct.unpack("!BBHHH", d[ihl:ihl + 8])
        if (typ == 0 and ident == 0x4856 and sq == seq and
                d[ihl + 8:] == payload and csum(d[ihl:]) == 0):
            ok += 1
            break
print("icmp echo replies: %d/3" % ok)
sys.exit(0 if ok == 3 else 1)
