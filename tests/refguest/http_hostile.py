#!/usr/bin/env python3
"""tests/refguest/http_hostile.py - a misbehaving HTTP client against the
reference guest's status page server (tools/hvguest/hvg_http.c):

    http_hostile.py HOST PORT

Oversized, binary, malformed and half-closed requests get the documented
status (or a close) and the server keeps serving. Exits 1 on a failure."""
import socket
import sys

HOST, PORT = sys.argv[1], int(sys.argv[2])
fails = 0


def check(ok, what):
    global fails
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        fails += 1


def exchange(data, half_close=False):
    """Send data, read until the server closes; the status line."""
    s = socket.create_connection((HOST, PORT), timeout=15)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            got += c
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return got.split(b"\r\n", 1)[0].decode("latin-1"), got


status, _ = exchange(b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n")
check(status == "HTTP/1.1 200 OK", "plain GET: " + status)
status, _ = exchange(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
check(status.startswith("HTTP/1.1 431"), "5 KB header: " + status)
status, _ = exchange(b"\x00\x01\x02\xff" * 100 + b"\r\n\r\n")
check(status.startswith("HTTP/1.1 400"), "binary request: " + status)
status, _ = exchange(b"GET / HTTP/2.0\r\n\r\n")
check(status.startswith("HTTP/1.1 505"), "HTTP/2.0: " + status)
status, _ = exchange(b"GET  / HTTP/1.1\r\n\r\n")
check(status.startswith("HTTP/1.1 400"), "extra space: " + status)
status, _ = exchange(b"DELETE /status.json HTTP/1.1\r\n\r\n")
check(status.startswith("HTTP/1.1 405"), "DELETE: " + status)
status, body = exchange(b"HEAD /status.json HTTP/1.1\r\n\r\n")
check(status == "HTTP/1.1 200 OK" and body.endswith(b"\r\n\r\n"),
      "HEAD: headers only")
status, body = exchange(b"GET /status.json?x=<script> HTTP/1.1\r\n\r\n",
                        half_close=True)
check(status == "HTTP/1.1 200 OK" and b"<script>" not in body,
      "half-closed client gets the page; the query is not echoed")
# A client that never finishes its request is dropped (10 s), and others
# are served meanwhile.
slow = socket.create_connection((HOST, PORT), timeout=30)
slow.sendall(b"GET / HTTP/1.1\r\n")
status, _ = exchange(b"GET / HTTP/1.1\r\n\r\n")
check(status == "HTTP/1.1 200 OK", "served while a slow client waits")
try:
    slow.settimeout(30)
    check(slow.recv(100) == b"", "slow client closed by the server")
except (ConnectionResetError, socket.timeout) as e:
    check(isinstance(e, ConnectionResetError), "slow client dropped: %r" % e)
slow.close()
sys.exit(1 if fails else 0)
