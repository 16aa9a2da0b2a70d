#!/usr/bin/env python3
"""tests/refguest/nbd_hostile.py - a misbehaving NBD client against the
reference guest's NBD server (tools/hvguest/hvg_nbd.c):

    nbd_hostile.py HOST PORT DISK_BYTES

Every length the client sends must be bounded by the server: bad magics
and flags close the connection, oversized options are refused or close it,
out-of-range, unaligned and oversized requests are answered with an error
and the connection keeps working, an unskippable WRITE closes it, and the
server still serves a well-behaved client afterwards. Prints one line per
check; exits 1 if any failed."""
import socket
import struct
import sys

HOST, PORT, SIZE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
fails = 0


def check(ok, what):
    global fails
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        fails += 1


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


def closed(s):
    """The server closed the connection (EOF or reset) within 10 s."""
    s.settimeout(10)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def connect(flags=3):
    s = socket.create_connection((HOST, PORT), timeout=10)
    hello = recv_exact(s, 18)
    magic, opt, hflags = struct.unpack(">QQH", hello)
    assert magic == 0x4E42444D41474943 and opt == IHAVEOPT, hello
    s.sendall(struct.pack(">I", flags))
    return s, hflags


def option(s, opt, data):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def opt_reply(s):
    magic, opt, typ, ln = struct.unpack(">QIII", recv_exact(s, 20))
    assert magic == REPLY_MAGIC, hex(magic)
    return opt, typ, recv_exact(s, ln)


def go(s, name=b"disk0"):
    option(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    size = None
    while True:
        _, typ, data = opt_reply(s)
        if typ == 3 and struct.unpack(">H", data[:2])[0] == 0:
            size = struct.unpack(">Q", data[2:10])[0]
        if typ != 3:
            return typ, size


def request(s, typ, off, ln, handle, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, typ, handle, off, ln)
              + payload)


def reply(s, want_data=0):
    magic, err, handle = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == 0x67446698, hex(magic)
    data = recv_exact(s, want_data) if err == 0 and want_data else b""
    return err, handle, data


# -- handshake abuse --
s, hflags = connect()
check(hflags & 1 == 1, "fixed newstyle advertised")
s.close()

s, _ = connect(flags=0xFFFF0000)
check(closed(s), "unknown client flags: closed")

s, _ = connect()
s.sendall(struct.pack(">QII", 0x1122334455667788, 7, 0))
check(closed(s), "bad option magic: closed")

s, _ = connect()
s.sendall(struct.pack(">QII", IHAVEOPT, 99, 0x7FFFFFFF))
check(closed(s), "2 GiB of option data: closed")

s, _ = connect()
option(s, 99, b"x" * 8192)
_, typ, _ = opt_reply(s)
check(typ == 0x80000009, "8 KiB option skipped, answered ERR_TOO_BIG")
option(s, 99, b"")
_, typ, _ = opt_reply(s)
check(typ == 0x80000001, "unknown option: ERR_UNSUP, still talking")
option(s, 7, struct.pack(">I", 1000) + b"disk0" + struct.pack(">H", 0))
_, typ, _ = opt_reply(s)
check(typ == 0x80000003, "GO with a name length past the data: ERR_INVALID")
option(s, 6, struct.pack(">I", 5) + b"disk0" + struct.pack(">H", 40))
_, typ, _ = opt_reply(s)
check(typ == 0x80000003, "INFO with a request count past the data: "
      "ERR_INVALID")
option(s, 3, b"")
_, typ, data = opt_reply(s)
_, typ2, _ = opt_reply(s)
check(typ == 2 and data[4:] == b"disk0" and typ2 == 1, "LIST: disk0, ACK")
typ, _ = go(s, b"nosuch")
check(typ == 0x80000006, "GO of an unknown export: ERR_UNKNOWN")
typ, size = go(s)
check(typ == 1 and size == SIZE, "GO disk0: ACK, size %s" % size)

# -- transmission abuse: errors, and the connection lives on --
request(s, 0, SIZE, 512, 1)
check(reply(s)[0] == 22, "read past the end: EINVAL")
request(s, 0, SIZE - 512, 1024, 2)
check(reply(s)[0] == 22, "read across the end: EINVAL")
request(s, 0, (1 << 64) - 512, 1024, 3)
check(reply(s)[0] == 22, "read at an offset that wraps: EINVAL")
request(s, 0, 1, 512, 4)
check(reply(s)[0] == 22, "unaligned read: EINVAL")
request(s, 0, 0, 64 << 20, 5)
check(reply(s)[0] == 22, "64 MiB read (over the maximum): EINVAL")
request(s, 1, SIZE, 512, 6, b"\xAA" * 512)
check(reply(s)[0] == 28, "write past the end: ENOSPC, payload skipped")
request(s, 9, 0, 0, 7)
check(reply(s)[0] == 22, "unknown command: EINVAL")
request(s, 1, 4096, 512, 8, b"\x5A" * 512)
check(reply(s)[0] == 0, "good write after the errors")
request(s, 0, 4096, 512, 9)
err, h, data = reply(s, 512)
check(err == 0 and h == 9 and data == b"\x5A" * 512, "read back")
request(s, 1, 0, 0x7FFFFFFF, 10)
check(closed(s), "2 GiB write (cannot be skipped): closed")

# -- a well-behaved client is still served --
s, _ = connect()
typ, size = go(s)
request(s, 0, 4096, 512, 11)
err, h, data = reply(s, 512)
check(err == 0 and data == b"\x5A" * 512, "served afterwards")
request(s, 2, 0, 0, 12)		# DISC
check(closed(s), "DISC: closed")
sys.exit(1 if fails else 0)
