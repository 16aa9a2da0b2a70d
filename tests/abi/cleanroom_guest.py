#!/usr/bin/env python3
"""Clean-room guest for the vmbus partition ABI, version 1.

Written from /work/shared/DESIGN.md ("The partition ABI") and
spec/vmbus-core.md (sections 1.7-1.14, 2, 6.2-6.3) alone, with no look at the
C host or guest, so that a host which talks to this guest and to the C guest
honours the same contract.  Python 3.11 standard library only.

Attaches through HVSIM_FD (inherited SOCK_SEQPACKET fd) or HVSIM_SOCKET
(connect, name the VM in HELLO), sets up vp 0's SynIC, negotiates a VMBus
version, enumerates the offers, optionally walks one channel through
GPADL/open/signal/close/teardown, unloads and powers off.  Exit status 0 on
success, 2 on an ABI or protocol violation by the host, 3 on a timeout/EOF,
4 if host and guest share no VMBus version.
"""

import argparse
import fcntl
import json
import mmap
import os
import select
import socket
import struct
import sys
import time
import uuid

MAGIC = 0x4D535648
HDR = struct.Struct('<IHHQ')  # magic, type, flags, seq
REQ_HELLO, REQ_WRMSR, REQ_RDMSR, REQ_HYPERCALL, REQ_RESET = 1, 3, 4, 5, 6
MAX_DGRAM = 8192
PAGE = 4096

MSR_GUEST_OS_ID = 0x40000000
MSR_HYPERCALL = 0x40000001
MSR_VP_INDEX = 0x40000002
MSR_TIME_REF = 0x40000020
MSR_SCONTROL = 0x40000080
MSR_SVERSION = 0x40000081
MSR_SIEFP = 0x40000082
MSR_SIMP = 0x40000083
MSR_EOM = 0x40000084
MSR_SINT0 = 0x40000090
VMBUS_SINT = 2

F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW = 0x1, 0x2, 0x4

HC_POST_MESSAGE, HC_SIGNAL_EVENT = 0x5C, 0x5D
HC_FAST = 1 << 16
HV_STATUS_SUCCESS = 0
HV_STATUS_INVALID_HYPERCALL_CODE = 0x2
HV_STATUS_INSUFFICIENT_MEMORY = 0xB
HV_STATUS_INVALID_CONNECTION_ID = 0x12
HV_STATUS_INSUFFICIENT_BUFFERS = 0x13

EINVAL, ERANGE, EPROTO = 22, 34, 71

# VMBus channel messages (spec 2.2)
OFFERCHANNEL, RESCIND, REQUESTOFFERS, ALLOFFERS_DELIVERED = 1, 2, 3, 4
OPENCHANNEL, OPENCHANNEL_RESULT, CLOSECHANNEL = 5, 6, 7
GPADL_HEADER, GPADL_BODY, GPADL_CREATED, GPADL_TEARDOWN, GPADL_TORNDOWN = 8, 9, 10, 11, 12
RELID_RELEASED, INITIATE_CONTACT, VERSION_RESPONSE, UNLOAD, UNLOAD_RESPONSE = 13, 14, 15, 16, 17

# newest first (the brief's list; 0.13 is not attempted)
VERSIONS = [(5, 3), (5, 2), (5, 1), (5, 0), (4, 1), (4, 0), (3, 0), (2, 4), (1, 1)]
KNOWN_CLASSES = {
    '57164f39-9115-4e78-ab55-382f3bd5422d': 'heartbeat',
    '0e0b6031-5213-4934-818b-38d90ced39db': 'shutdown',
    '9527e630-d0ae-497b-adce-e80ab0175caf': 'timesync',
    'a9a0f4e7-5a45-4d96-b827-8a841e8c03e6': 'kvp',
    'f8615163-df3e-46c5-913f-f2d2f965ed0e': 'netvsc',
    'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f': 'storvsc',
    '32412632-86cb-44a2-9b5c-50d1417354f5': 'ide',
    '35fa2e29-ea23-4236-96ae-3a6ebacba440': 'vss',
}


class Violation(Exception):
    """The host broke the ABI or the VMBus protocol."""


class NoVersion(Exception):
    """Host and guest share no VMBus version (not a violation)."""


class Gone(Exception):
    """Timeout or EOF: the partition is gone (the ABI's -ENODEV)."""


def vstr(w):
    return '%d.%d' % (w >> 16, w & 0xFFFF)


def log(msg):
    print('guest: ' + msg, flush=True)


def fence():
    # Python has no atomics: dropping and retaking the GIL goes through a
    # mutex, which is a full barrier on x86 and arm64.  Used where the ABI
    # asks for a full fence (after clearing a SIMP slot's type).
    time.sleep(0)


class Guest:
    def __init__(self, args):
        self.a = args
        self.timeout = args.timeout
        self.seq = 0
        self.next_page = 1          # bump allocator; page 0 is never handed out
        self.warnings = []
        self.summary = {'offers': []}

    # ---------------------------------------------------------- socket
    def attach(self):
        fd = os.environ.get('HVSIM_FD')
        path = os.environ.get('HVSIM_SOCKET')
        if fd is not None:
            try:
                self.sock = socket.socket(fileno=int(fd))
            except (ValueError, OSError) as e:
                raise Violation('HVSIM_FD=%r is not a usable socket: %s' % (fd, e))
            name = b'stray' if self.a.fault == 'fd-name' else b''
        elif path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self.sock.settimeout(self.timeout)
            try:
                self.sock.connect(path)
            except OSError as e:
                raise Gone('cannot connect to HVSIM_SOCKET %s: %s' % (path, e))
            name = (self.a.vm_name or os.environ.get('HVSIM_VM_NAME', '')).encode()
            if not name or len(name) > 64:
                raise SystemExit('guest: HVSIM_SOCKET needs a VM name of 1..64 bytes '
                                 '(--vm-name or HVSIM_VM_NAME)')
        else:
            raise SystemExit('guest: neither HVSIM_FD nor HVSIM_SOCKET is set')
        if self.sock.family != socket.AF_UNIX or self.sock.type != socket.SOCK_SEQPACKET:
            raise Violation('partition socket is not AF_UNIX/SOCK_SEQPACKET')
        self.sock.settimeout(self.timeout)
        return name

    def request(self, typ, body, want_fds=False):
        self.seq += 1
        seq = self.seq * 0x10001 + 0x1234  # not just a counter: the host must echo it
        dg = HDR.pack(MAGIC, typ, 0, seq) + body
        assert len(dg) <= MAX_DGRAM
        try:
            self.sock.sendmsg([dg], [], socket.MSG_NOSIGNAL)
            data, anc, mflags, _ = self.sock.recvmsg(MAX_DGRAM, socket.CMSG_SPACE(4 * 300))
        except socket.timeout:
            raise Gone('no reply to request type 0x%04x within %.1fs' % (typ, self.timeout))
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Gone('partition socket closed: %s' % e)
        fds = []
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(cdata) // 4
                fds.extend(struct.unpack('<%di' % n, cdata[:4 * n]))
        if not data:
            raise Gone('EOF from host while waiting for reply to type 0x%04x' % typ)
        if mflags & socket.MSG_TRUNC:
            raise Violation('reply datagram truncated (MSG_TRUNC, > %d bytes)' % MAX_DGRAM)
        if mflags & socket.MSG_CTRUNC:
            raise Violation('reply control data truncated (MSG_CTRUNC)')
        if fds and not want_fds:
            for f in fds:
                os.close(f)
            raise Violation('reply type 0x%04x carried %d unexpected fds' % (typ, len(fds)))
        if len(data) < HDR.size + 8:
            raise Violation('reply of %d bytes is shorter than header+result' % len(data))
        magic, rtype, rflags, rseq = HDR.unpack_from(data)
        if magic != MAGIC:
            raise Violation('reply magic 0x%08x' % magic)
        if rtype != typ | 0x8000:
            raise Violation('reply type 0x%04x to request 0x%04x' % (rtype, typ))
        if rflags != 0:
            raise Violation('reply flags 0x%04x (must be 0)' % rflags)
        if rseq != seq:
            raise Violation('reply seq 0x%x, request seq 0x%x' % (rseq, seq))
        result, reserved = struct.unpack_from('<iI', data, HDR.size)
        if reserved != 0:
            raise Violation('reply reserved word 0x%x (must be 0)' % reserved)
        if result != 0 and len(data) != HDR.size + 8:
            raise Violation('error reply %d has %d bytes after the result' %
                            (result, len(data) - HDR.size - 8))
        if result > 0:
            raise Violation('positive result %d' % result)
        return result, data[HDR.size + 8:], fds

    # ---------------------------------------------------------- HELLO
    def hello(self, name):
        body = struct.pack('<II', 1, len(name)) + name
        res, rest, fds = self.request(REQ_HELLO, body, want_fds=True)
        if res != 0:
            raise Violation('HELLO refused with %d' % res)
        if len(rest) != 24:
            raise Violation('WELCOME body is %d bytes, expected 32' % (len(rest) + 8))
        abi, vcpus, ram, fd_count, rsvd = struct.unpack('<IIQII', rest)
        if abi != 1:
            raise Violation('WELCOME abi_version %d' % abi)
        if not 1 <= vcpus <= 250:
            raise Violation('WELCOME vcpu_count %d not in 1..250' % vcpus)
        if ram == 0 or ram % (2 << 20):
            raise Violation('WELCOME ram_bytes %d not a nonzero multiple of 2 MiB' % ram)
        if fd_count != 3 + vcpus:
            raise Violation('WELCOME fd_count %d, expected 3 + vcpu_count = %d' % (fd_count, 3 + vcpus))
        if len(fds) != fd_count:
            raise Violation('WELCOME carried %d fds, fd_count says %d' % (len(fds), fd_count))
        if rsvd != 0:
            raise Violation('WELCOME reserved word 0x%x' % rsvd)
        self.vcpus, self.ram_bytes = vcpus, ram
        ram_fd, sig_fd, self.signal_efd = fds[0], fds[1], fds[2]
        self.doorbells = fds[3:]
        self.check_memfd(ram_fd, ram, 'guest RAM')
        self.check_memfd(sig_fd, PAGE, 'signal page')
        for i, f in enumerate([self.signal_efd] + self.doorbells):
            self.check_eventfd(f, 'signal eventfd' if i == 0 else 'doorbell vp%d' % (i - 1))
        self.ram = mmap.mmap(ram_fd, ram, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.sig = mmap.mmap(sig_fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(ram_fd)
        os.close(sig_fd)
        self.ram32 = memoryview(self.ram).cast('I')
        self.summary.update(vcpu_count=vcpus, ram_bytes=ram)
        log('WELCOME: abi 1, %d vcpu(s), %d MiB RAM, %d fds, memfds sealed'
            % (vcpus, ram >> 20, fd_count))

    def check_memfd(self, fd, size, what):
        try:
            seals = fcntl.fcntl(fd, F_GET_SEALS)
        except OSError as e:
            raise Violation('%s fd: F_GET_SEALS failed (%s): not a sealable memfd' % (what, e))
        need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL
        if seals & need != need:
            raise Violation('%s memfd seals 0x%x lack SHRINK|GROW|SEAL (0x%x); refusing it'
                            % (what, seals, need))
        st = os.fstat(fd)
        if st.st_size != size:
            raise Violation('%s memfd is %d bytes, expected %d' % (what, st.st_size, size))

    def check_eventfd(self, fd, what):
        try:
            link = os.readlink('/proc/self/fd/%d' % fd)
        except OSError:
            link = None
        if link is not None and link != 'anon_inode:[eventfd]':
            raise Violation('%s is %r, not an eventfd' % (what, link))
        if not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK:
            raise Violation('%s is not O_NONBLOCK (host must create it EFD_NONBLOCK)' % what)

    # ---------------------------------------------------------- MSRs, hypercalls
    def wrmsr(self, msr, value, vp=0, expect=0):
        res, rest, _ = self.request(REQ_WRMSR, struct.pack('<IIQ', vp, msr, value))
        if res != expect:
            raise Violation('WRMSR 0x%x=0x%x on vp %d: result %d, expected %d'
                            % (msr, value, vp, res, expect))
        if res == 0:
            if len(rest) != 8:
                raise Violation('WRMSR reply body %d bytes, expected 16' % (len(rest) + 8))
            stored = struct.unpack('<Q', rest)[0]
            if msr != MSR_EOM and stored != value:
                raise Violation('WRMSR 0x%x: wrote 0x%x, host echoed 0x%x' % (msr, value, stored))

    def rdmsr(self, msr, vp=0, expect=0):
        res, rest, _ = self.request(REQ_RDMSR, struct.pack('<II', vp, msr))
        if res != expect:
            raise Violation('RDMSR 0x%x on vp %d: result %d, expected %d' % (msr, vp, res, expect))
        if res != 0:
            return None
        if len(rest) != 8:
            raise Violation('RDMSR reply body %d bytes, expected 16' % (len(rest) + 8))
        return struct.unpack('<Q', rest)[0]

    def hypercall(self, control, inp, vp=0):
        assert len(inp) <= PAGE
        res, rest, _ = self.request(REQ_HYPERCALL,
                                    struct.pack('<IIQ', vp, len(inp), control) + inp)
        if res != 0:
            raise Violation('HYPERCALL 0x%x: error reply %d' % (control, res))
        if len(rest) < 16:
            raise Violation('HYPERCALL reply body %d bytes, shorter than 24' % (len(rest) + 8))
        value, out_len, rsvd = struct.unpack_from('<QII', rest)
        if out_len != len(rest) - 16:
            raise Violation('HYPERCALL reply output_len %d but %d bytes follow'
                            % (out_len, len(rest) - 16))
        return value

    def alloc_page(self):
        if (self.next_page + 1) * PAGE > self.ram_bytes:
            raise SystemExit('guest: out of guest RAM')
        gpa = self.next_page * PAGE
        self.next_page += 1
        if self.ram[gpa:gpa + PAGE].count(0) != PAGE:
            raise Violation('freshly WELCOMEd guest RAM at GPA 0x%x is not zero' % gpa)
        return gpa

    def post_message(self, conn_id, payload, retry=True):
        """HvPostMessage; returns the HV status (after retrying transient ones)."""
        inp = struct.pack('<IIII', conn_id, 0, 1, len(payload)) + payload.ljust(240, b'\0')
        self.ram[self.input_page:self.input_page + 256] = inp  # the input page, as on hardware
        delay = 0.001
        deadline = time.monotonic() + self.timeout
        while True:
            value = self.hypercall(HC_POST_MESSAGE, inp)
            status = value & 0xFFFF
            if status in (HV_STATUS_INSUFFICIENT_BUFFERS, HV_STATUS_INSUFFICIENT_MEMORY) and retry:
                if time.monotonic() > deadline:
                    raise Gone('HvPostMessage still busy (0x%x) after %.1fs' % (status, self.timeout))
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            return status

    # ---------------------------------------------------------- bring-up
    def probes(self):
        """ABI facts that need no VMBus: initial MSR values and error codes."""
        st = self.hypercall(HC_SIGNAL_EVENT | HC_FAST, struct.pack('<QQ', 0x7FFF, 0)) & 0xFFFF
        if st != HV_STATUS_INVALID_HYPERCALL_CODE:
            raise Violation('hypercall before guest OS id/hypercall MSR: status 0x%x, expected 0x2' % st)
        for vp in range(self.vcpus):
            if self.rdmsr(MSR_VP_INDEX, vp) != vp:
                raise Violation('VP index MSR of vp %d is not %d' % (vp, vp))
        checks = [(MSR_SVERSION, 1), (MSR_SCONTROL, 0), (MSR_SIMP, 0), (MSR_SIEFP, 0),
                  (MSR_GUEST_OS_ID, 0), (MSR_HYPERCALL, 0), (MSR_SINT0 + VMBUS_SINT, 0x10000),
                  (MSR_SINT0 + 15, 0x10000)]
        for msr, want in checks:
            got = self.rdmsr(msr)
            if got != want:
                raise Violation('MSR 0x%x at WELCOME is 0x%x, ABI says 0x%x' % (msr, got, want))
        self.wrmsr(MSR_VP_INDEX, 5, expect=-EINVAL)
        self.wrmsr(MSR_SVERSION, 2, expect=-EINVAL)
        self.rdmsr(0x12345678, expect=-EINVAL)
        self.rdmsr(MSR_SCONTROL, vp=self.vcpus, expect=-ERANGE)
        res, _, _ = self.request(0x0007, b'')
        if res != -EPROTO:
            raise Violation('unknown request type 0x0007: result %d, expected -71' % res)
        res, _, _ = self.request(REQ_WRMSR, b'\0' * 4)
        if res != -EPROTO:
            raise Violation('WRMSR with a 4-byte body: result %d, expected -71' % res)
        t0 = time.monotonic_ns()
        c1 = self.rdmsr(MSR_TIME_REF)
        time.sleep(0.02)
        c2 = self.rdmsr(MSR_TIME_REF)
        t1 = time.monotonic_ns()
        if not 0.02e7 * 0.99 <= c2 - c1 <= (t1 - t0) / 100 * 1.01 + 1000:
            raise Violation('time reference count moved %d units over %.1f ms of wall time '
                            '(100 ns units expected)' % (c2 - c1, (t1 - t0) / 1e6))
        log('probes passed: initial MSRs, -22/-34/-71 errors, time reference count')

    def setup_synic(self):
        self.wrmsr(MSR_GUEST_OS_ID, 0x8100_0000_0001_0000 | 0x7F << 48)
        self.hypercall_page = self.alloc_page()
        self.wrmsr(MSR_HYPERCALL, self.hypercall_page | 1)
        self.input_page = self.alloc_page()
        self.simp = self.alloc_page()
        self.siefp = self.alloc_page()
        self.wrmsr(MSR_SIMP, self.simp | 1)
        self.wrmsr(MSR_SIEFP, self.siefp | 1)
        self.wrmsr(MSR_SINT0 + VMBUS_SINT, 0x41)  # vector 0x41, unmasked, no auto-EOI
        self.wrmsr(MSR_SCONTROL, 1)
        self.int_page = self.alloc_page()
        self.mon1 = self.alloc_page() if not self.a.no_monitor_pages else 0
        self.mon2 = self.alloc_page() if not self.a.no_monitor_pages else 0
        log('SynIC vp0: hypercall page 0x%x, SIMP 0x%x, SIEFP 0x%x, SINT2 vector 0x41'
            % (self.hypercall_page, self.simp, self.siefp))

    # ---------------------------------------------------------- message receive
    def next_message(self, what, deadline):
        """Wait for the doorbell, then take one message from SIMP slot 2."""
        slot = self.simp + VMBUS_SINT * 256
        db = self.doorbells[0]
        idle = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raw = bytes(self.ram[slot:slot + 8])
                typ = struct.unpack_from('<I', raw)[0]
                if typ != 0:
                    raise Violation('waiting for %s: a message (type 0x%x) sits in SIMP slot 2 '
                                    'but the vp0 doorbell never rang' % (what, typ))
                raise Gone('timed out after %.1fs waiting for %s' % (self.timeout, what))
            p = select.poll()
            p.register(db, select.POLLIN)
            if not p.poll(min(left, 0.2) * 1000):
                idle += 1
                if self.ram32[slot // 4] == 0 and self.ram[slot + 5] & 1:
                    # Only possible if our non-atomic clear raced the host's
                    # pending CAS; EOM is always allowed, so recover.
                    self.warnings.append('pending flag on an empty slot; wrote EOM')
                    self.wrmsr(MSR_EOM, 0)
                continue
            try:
                os.eventfd_read(db)
            except BlockingIOError:
                continue
            msg = bytes(self.ram[slot:slot + 256])      # copied once
            typ, size, mflags = struct.unpack_from('<IBB', msg)
            if typ == 0:
                continue                                  # doorbell for an earlier message
            self.ram32[slot // 4] = 0                     # clear the type (4-byte store)
            fence()
            pending = self.ram[slot + 5] & 1
            if pending:
                self.wrmsr(MSR_EOM, 0)
            if typ != 1:
                raise Violation('SIMP slot 2 message type 0x%x (VMBus uses 1)' % typ)
            if size > 240:
                raise Violation('SIMP message payload size %d > 240' % size)
            if size < 8:
                raise Violation('VMBus message of %d bytes, shorter than its header' % size)
            payload = msg[16:16 + size]
            mtype, pad = struct.unpack_from('<II', payload)
            if pad != 0:
                raise Violation('VMBus message type %d header padding 0x%x' % (mtype, pad))
            return mtype, payload

    def wait_for(self, want, what):
        deadline = time.monotonic() + self.timeout
        while True:
            mtype, payload = self.next_message(what, deadline)
            if mtype in want:
                return mtype, payload
            log('  (ignoring VMBus message type %d while waiting for %s)' % (mtype, what))

    def expect_size(self, mtype, payload, size):
        if len(payload) != size:
            raise Violation('VMBus message type %d is %d bytes, spec size is %d'
                            % (mtype, len(payload), size))

    # ---------------------------------------------------------- VMBus
    def negotiate(self):
        for major, minor in VERSIONS:
            v = major << 16 | minor
            if v >= 0x50000:
                tail = struct.pack('<BBHI', VMBUS_SINT, 0, 0, 0)
                conn = 4
            else:
                tail = struct.pack('<Q', self.int_page)
                conn = 1
            target_vcpu = 0
            msg = struct.pack('<IIII', INITIATE_CONTACT, 0, v, target_vcpu) + tail + \
                struct.pack('<QQ', self.mon1, self.mon2)
            assert len(msg) == 40
            st = self.post_message(conn, msg)
            if st == HV_STATUS_INVALID_CONNECTION_ID and conn == 4:
                log('InitiateContact %s on connection 4: INVALID_CONNECTION_ID, older host'
                    % vstr(v))
                continue
            if st != HV_STATUS_SUCCESS:
                raise Violation('InitiateContact %s on connection %d: HV status 0x%x'
                                % (vstr(v), conn, st))
            mtype, p = self.wait_for({VERSION_RESPONSE}, 'VERSION_RESPONSE to %s' % vstr(v))
            self.expect_size(mtype, p, 16)
            supported, state, _pad, word = struct.unpack_from('<BBHI', p, 8)
            if supported not in (0, 1):
                raise Violation('VERSION_RESPONSE version_supported=%d' % supported)
            if not supported:
                log('version %s: not supported' % vstr(v))
                continue
            if state != 0:
                log('version %s: supported but connection_state %d; trying older' % (vstr(v), state))
                continue
            if v >= 0x50000:
                if word == 0 or word >> 24:
                    raise Violation('VERSION_RESPONSE message connection id 0x%x' % word)
                self.msg_conn = word
            else:
                self.msg_conn = 1
            self.version = v
            log('negotiated VMBus %s, message connection id %d' % (vstr(v), self.msg_conn))
            self.summary.update(version=vstr(v), version_word=v, msg_conn_id=self.msg_conn)
            return
        raise NoVersion('the host accepted none of the versions %s'
                        % ', '.join('%d.%d' % x for x in VERSIONS))

    def post(self, payload):
        st = self.post_message(self.msg_conn, payload)
        if st != HV_STATUS_SUCCESS:
            raise Violation('HvPostMessage type %d: HV status 0x%x'
                            % (struct.unpack_from('<I', payload)[0], st))

    def enumerate(self):
        self.post(struct.pack('<II', REQUESTOFFERS, 0))
        if self.a.fault == 'double-requestoffers':
            self.post(struct.pack('<II', REQUESTOFFERS, 0))
        seen_relids, seen_ids = set(), set()
        while True:
            mtype, p = self.wait_for({OFFERCHANNEL, ALLOFFERS_DELIVERED}, 'offers')
            if mtype == ALLOFFERS_DELIVERED:
                self.expect_size(mtype, p, 8)
                break
            self.expect_size(mtype, p, 196)
            cls = str(uuid.UUID(bytes_le=p[8:24]))
            inst = str(uuid.UUID(bytes_le=p[24:40]))
            chn_flags, = struct.unpack_from('<H', p, 56)
            subidx, = struct.unpack_from('<H', p, 180)
            relid, monid, monalloc, dedicated, conn = struct.unpack_from('<IBBHI', p, 184)
            if relid == 0 or relid in seen_relids:
                raise Violation('offer with relid %d (zero or duplicate)' % relid)
            if (cls, inst, subidx) in seen_ids:
                raise Violation('duplicate offer %s/%s sub %d' % (cls, inst, subidx))
            seen_relids.add(relid)
            seen_ids.add((cls, inst, subidx))
            o = dict(class_guid=cls, device=KNOWN_CLASSES.get(cls, 'unknown'), instance_guid=inst,
                     relid=relid, sub_channel_index=subidx, connection_id=conn,
                     is_dedicated_interrupt=dedicated & 1, chn_flags=chn_flags,
                     monitor_allocated=monalloc & 1, monitor_id=monid)
            self.summary['offers'].append(o)
            log('offer relid %d: class %s (%s) instance %s sub %d conn 0x%x '
                'dedicated %d monitor %s'
                % (relid, cls, o['device'], inst, subidx, conn, o['is_dedicated_interrupt'],
                   ('id %d' % monid) if monalloc & 1 else 'none'))
        n = len(self.summary['offers'])
        log('ALLOFFERS_DELIVERED after %d offer(s)' % n)
        if n < self.a.expect_min_offers:
            raise Violation('%d offers, expected at least %d' % (n, self.a.expect_min_offers))

    def signal(self, conn):
        if conn < 32768:
            word, bit = divmod(conn, 64)
            off = word * 8 + bit // 8
            self.sig[off] = self.sig[off] | (1 << (bit % 8))  # byte OR (no atomics in Python)
            fence()
            os.eventfd_write(self.signal_efd, 1)
            return 'signal page'
        st = self.hypercall(HC_SIGNAL_EVENT | HC_FAST, struct.pack('<QQ', conn, 0)) & 0xFFFF
        if st != 0:
            raise Violation('HvSignalEvent(0x%x): status 0x%x' % (conn, st))
        return 'HvSignalEvent'

    def exercise_channel(self):
        """GPADL (header + bodies), open, signal, close, teardown on the first offer."""
        offers = [o for o in self.summary['offers'] if o['sub_channel_index'] == 0]
        if not offers:
            raise Violation('--open-first: no primary offer to open')
        o = offers[0]
        relid, npages, handle = o['relid'], 40, 0x4A8E0001
        first = self.next_page
        pfns = [self.alloc_page() // PAGE for _ in range(npages)]
        assert pfns == list(range(first, first + npages))
        stream = struct.pack('<II', npages * PAGE, 0) + struct.pack('<%dQ' % npages, *pfns)
        head = stream[:220]
        self.post(struct.pack('<IIIIHH', GPADL_HEADER, 0, relid, handle, len(stream), 1) + head)
        rest, bodies = stream[220:], 0
        while rest:
            chunk, rest = rest[:224], rest[224:]
            self.post(struct.pack('<IIII', GPADL_BODY, 0, 0, handle) + chunk)
            bodies += 1
        _, p = self.wait_for({GPADL_CREATED}, 'GPADL_CREATED')
        self.expect_size(GPADL_CREATED, p, 20)
        r, g, status = struct.unpack_from('<III', p, 8)
        if (r, g) != (relid, handle) or status != 0:
            raise Violation('GPADL_CREATED relid %d gpadl 0x%x status 0x%x' % (r, g, status))
        openid = 0x0B0E0000 | relid
        self.post(struct.pack('<IIIIII', OPENCHANNEL, 0, relid, openid, handle, 0) +
                  struct.pack('<I', npages // 2) + b'\0' * 120)
        _, p = self.wait_for({OPENCHANNEL_RESULT}, 'OPENCHANNEL_RESULT')
        self.expect_size(OPENCHANNEL_RESULT, p, 20)
        r, oid, status = struct.unpack_from('<III', p, 8)
        if (r, oid) != (relid, openid) or status != 0:
            raise Violation('OPENCHANNEL_RESULT relid %d openid 0x%x status 0x%x' % (r, oid, status))
        how = self.signal(o['connection_id'])
        self.post(struct.pack('<III', CLOSECHANNEL, 0, relid))
        if self.a.fault == 'signal-closed':
            self.signal(o['connection_id'])
        self.post(struct.pack('<IIII', GPADL_TEARDOWN, 0, relid, handle))
        _, p = self.wait_for({GPADL_TORNDOWN}, 'GPADL_TORNDOWN')
        self.expect_size(GPADL_TORNDOWN, p, 12)
        if struct.unpack_from('<I', p, 8)[0] != handle:
            raise Violation('GPADL_TORNDOWN for gpadl 0x%x' % struct.unpack_from('<I', p, 8)[0])
        log('channel relid %d: GPADL of %d pages (%d body msgs), open, signalled via %s, '
            'closed, torn down' % (relid, npages, bodies, how))
        self.summary['exercised_relid'] = relid

    def unload(self):
        if self.version < 0x30000:
            log('version %s < 3.0: no UNLOAD' % vstr(self.version))
            return
        self.post(struct.pack('<II', UNLOAD, 0))
        _, p = self.wait_for({UNLOAD_RESPONSE}, 'UNLOAD_RESPONSE')
        self.expect_size(UNLOAD_RESPONSE, p, 8)
        log('UNLOAD_RESPONSE received')
        self.summary['unloaded'] = True

    def finish(self):
        if self.ram[self.hypercall_page:self.hypercall_page + PAGE].count(0) != PAGE:
            raise Violation('the host wrote into the hypercall page')
        if self.a.no_reset:
            log('exiting without RESET')
            return
        res, rest, _ = self.request(REQ_RESET, struct.pack('<I', 0))
        if res != 0 or rest:
            raise Violation('RESET power off: result %d, %d extra bytes' % (res, len(rest)))
        log('RESET power off acknowledged')

    def run(self):
        name = self.attach()
        self.hello(name)
        if not self.a.no_probes:
            self.probes()
        self.setup_synic()
        self.negotiate()
        self.enumerate()
        if self.a.open_first:
            self.exercise_channel()
        self.unload()
        self.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--expect-min-offers', type=int, default=0, metavar='N')
    ap.add_argument('--json', action='store_true', help='print a JSON summary on stdout')
    ap.add_argument('--timeout', type=float, default=10.0, help='seconds for every wait')
    ap.add_argument('--vm-name', help='VM name for HVSIM_SOCKET (default $HVSIM_VM_NAME)')
    ap.add_argument('--open-first', action='store_true',
                    help='GPADL/open/signal/close/teardown the first primary offer')
    ap.add_argument('--no-probes', action='store_true', help='skip the MSR/error-code probes')
    ap.add_argument('--no-monitor-pages', action='store_true')
    ap.add_argument('--fault', choices=['fd-name', 'double-requestoffers', 'signal-closed'],
                    help='break the ABI on purpose (to prove a host catches it)')
    ap.add_argument('--no-reset', action='store_true', help='exit without RESET power off')
    a = ap.parse_args()
    a.timeout *= float(os.environ.get('VMBUS_TEST_TIME_SCALE', '1') or 1)
    g = Guest(a)
    code, err = 0, None
    try:
        g.run()
    except Violation as e:
        code, err = 2, 'ABI/protocol violation: %s' % e
    except Gone as e:
        code, err = 3, 'partition gone (-ENODEV): %s' % e
    except NoVersion as e:
        code, err = 4, 'no common VMBus version: %s' % e
    for w in g.warnings:
        log('WARNING: ' + w)
    if err:
        print('guest: FAIL: ' + err, file=sys.stderr, flush=True)
    if a.json:
        g.summary.update(ok=code == 0, error=err, warnings=g.warnings)
        print(json.dumps(g.summary, indent=1), flush=True)
    if code == 0:
        log('OK')
    return code


if __name__ == '__main__':
    sys.exit(main())
