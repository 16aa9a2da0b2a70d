#!/usr/bin/env python3
"""Tiny partition-ABI guest for hvsim's reboot test.

Boot 1: HELLO, write a marker into guest RAM, RESET reboot.
Boot 2 (hvsim starts the program again): HELLO, check the RAM is fresh
(marker gone), RESET power off. The boot number is kept in the file given
as argv[1]. Exit 0 on success, 2 on a failed check.
"""
import mmap
import os
import socket
import struct
import sys

MAGIC = 0x4D535648
HDR = struct.Struct('<IHHQ')


def request(sock, seq, typ, body):
    sock.sendmsg([HDR.pack(MAGIC, typ, 0, seq) + body], [], socket.MSG_NOSIGNAL)
    data, anc, _, _ = sock.recvmsg(8192, socket.CMSG_SPACE(4 * 300))
    fds = []
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(struct.unpack('<%di' % (len(cdata) // 4), cdata[:len(cdata) // 4 * 4]))
    magic, rtype, _, rseq = HDR.unpack_from(data)
    result = struct.unpack_from('<i', data, 16)[0]
    if magic != MAGIC or rtype != typ | 0x8000 or rseq != seq:
        sys.exit('bad reply')
    return result, data, fds


def main():
    state = sys.argv[1]
    boot = int(open(state).read()) + 1 if os.path.exists(state) else 1
    with open(state, 'w') as f:
        f.write(str(boot))
    sock = socket.socket(fileno=int(os.environ['HVSIM_FD']))
    sock.settimeout(10)
    res, data, fds = request(sock, 1, 1, struct.pack('<II', 1, 0))
    if res != 0:
        sys.exit('HELLO refused')
    ram_bytes = struct.unpack_from('<Q', data, 32)[0]
    ram = mmap.mmap(fds[0], ram_bytes)
    for f in fds:
        os.close(f)
    print('boot %d: ram %d MiB' % (boot, ram_bytes >> 20), flush=True)
    if boot == 1:
        ram[0x5000:0x5004] = b'MARK'
        kind = 1
    else:
        if ram[0x5000:0x5004] != b'\0\0\0\0':
            print('RAM not fresh after reboot', flush=True)
            return 2
        kind = 0
    res, _, _ = request(sock, 2, 6, struct.pack('<I', kind))
    if res != 0:
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
