#!/usr/bin/env python3
"""Minimal Python host ("hypervisor + VMBus server") for the vmbus partition ABI v1.

Written from /work/shared/DESIGN.md ("The partition ABI") and
spec/vmbus-core.md alone, with no look at the C host or guest.  Python 3.11
standard library only.  It moves no ring data: it plays the TLFS mechanisms
(MSRs, HvPostMessage/HvSignalEvent, SIMP delivery with the pending/EOM
protocol, doorbells, the signal page) and the VMBus control protocol
(negotiation, offers, GPADLs, open/close, unload), and prints a transcript.

    pyhost.py [--version 5.3] [--vcpus 2] [--ram-mib 64] -- GUEST_CMD ARGS...

Exit status: the guest's exit status if non-zero; else 1 if the guest broke
the ABI, 124 on --timeout, 0 otherwise.
"""

import argparse
import collections
import fcntl
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

MAGIC = 0x4D535648
HDR = struct.Struct('<IHHQ')
MAX_DGRAM = 8192
PAGE = 4096
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW = 0x1, 0x2, 0x4
EINVAL, ERANGE, EPROTO, EOPNOTSUPP = 22, 34, 71, 95

MSR_GUEST_OS_ID, MSR_HYPERCALL, MSR_VP_INDEX = 0x40000000, 0x40000001, 0x40000002
MSR_TIME_REF = 0x40000020
MSR_SCONTROL, MSR_SVERSION, MSR_SIEFP, MSR_SIMP, MSR_EOM = (0x40000080, 0x40000081,
                                                          0x40000082, 0x40000083, 0x40000084)
MSR_SINT0, MSR_SINT15 = 0x40000090, 0x4000009F
MSR_CRASH_P0, MSR_CRASH_CTL = 0x40000100, 0x40000105
PARTITION_MSRS = {MSR_GUEST_OS_ID, MSR_HYPERCALL, MSR_TIME_REF} | set(range(MSR_CRASH_P0, MSR_CRASH_CTL + 1))
VP_MSRS = {MSR_VP_INDEX, MSR_SCONTROL, MSR_SVERSION, MSR_SIEFP, MSR_SIMP, MSR_EOM} | \
    set(range(MSR_SINT0, MSR_SINT15 + 1))

HV_SUCCESS, HV_INVALID_HYPERCALL_CODE, HV_INVALID_HYPERCALL_INPUT = 0, 2, 3
HV_INVALID_PARAMETER, HV_INVALID_CONNECTION_ID, HV_INSUFFICIENT_BUFFERS = 5, 0x12, 0x13
VMBUS_SINT = 2
QUEUE_MAX = 64

VERSIONS = {'0.13': 0x0000000D, '1.1': 0x00010001, '2.4': 0x00020004, '3.0': 0x00030000,
            '4.0': 0x00040000, '4.1': 0x00040001, '5.0': 0x00050000, '5.1': 0x00050001,
            '5.2': 0x00050002, '5.3': 0x00050003}
MSG_NAMES = {1: 'OFFERCHANNEL', 2: 'RESCIND', 3: 'REQUESTOFFERS', 4: 'ALLOFFERS_DELIVERED',
             5: 'OPENCHANNEL', 6: 'OPENCHANNEL_RESULT', 7: 'CLOSECHANNEL', 8: 'GPADL_HEADER',
             9: 'GPADL_BODY', 10: 'GPADL_CREATED', 11: 'GPADL_TEARDOWN', 12: 'GPADL_TORNDOWN',
             13: 'RELID_RELEASED', 14: 'INITIATE_CONTACT', 15: 'VERSION_RESPONSE', 16: 'UNLOAD',
             17: 'UNLOAD_RESPONSE', 21: 'TL_CONNECT_REQUEST', 22: 'MODIFYCHANNEL'}
# (class GUID, instance GUID) of the integration-service channels we offer
OFFERS = [
    ('heartbeat', '57164f39-9115-4e78-ab55-382f3bd5422d', 'fd149e91-82e0-4a7d-afa6-2a4166cbd7c0'),
    ('shutdown', '0e0b6031-5213-4934-818b-38d90ced39db', 'b6650ff7-33bc-4840-8048-e0676786f393'),
    ('timesync', '9527e630-d0ae-497b-adce-e80ab0175caf', '2dd1ce17-079e-403c-b352-a1921ee207ee'),
    ('kvp', 'a9a0f4e7-5a45-4d96-b827-8a841e8c03e6', '242ff919-07db-4180-9c2e-b86cb68c8c55'),
]
GPADL_FAIL = 0x8000FFFF
HOST_FAULTS = ['unsealed', 'dirty-ram', 'fd-count', 'no-doorbell', 'no-pending', 'short-offer',
               'bad-seq']


def vstr(w):
    return '%d.%d' % (w >> 16, w & 0xFFFF)


class Host:
    def __init__(self, a):
        self.a = a
        self.violations = []
        self.version_max = VERSIONS[a.version]
        self.vcpus = a.vcpus
        self.ram_bytes = a.ram_mib << 20
        self.welcomed = False
        self.t0 = time.monotonic()
        self.stats = collections.Counter()
        self.done = False
        self.negotiated = None
        self.reset_partition_state()

    # ---------------------------------------------------------- transcript
    def log(self, msg):
        print('pyhost: [%7.3f] %s' % (time.monotonic() - self.t0, msg), flush=True)

    def violation(self, msg):
        self.violations.append(msg)
        self.log('GUEST VIOLATION: ' + msg)

    # ---------------------------------------------------------- partition
    def make_partition(self):
        flags = os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC
        seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL
        if self.a.fault == 'unsealed':
            seals = F_SEAL_SHRINK | F_SEAL_GROW
        self.ram_fd = os.memfd_create('pyhost-guest-ram', flags)
        os.ftruncate(self.ram_fd, self.ram_bytes)
        fcntl.fcntl(self.ram_fd, F_ADD_SEALS, seals)
        self.sig_fd = os.memfd_create('pyhost-signal-page', flags)
        os.ftruncate(self.sig_fd, PAGE)
        fcntl.fcntl(self.sig_fd, F_ADD_SEALS, seals)
        self.ram = mmap.mmap(self.ram_fd, self.ram_bytes, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self.ram32 = memoryview(self.ram).cast('I')
        self.sig = mmap.mmap(self.sig_fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.sig64 = memoryview(self.sig).cast('Q')
        efd = os.EFD_NONBLOCK | os.EFD_CLOEXEC
        self.signal_efd = os.eventfd(0, efd)
        self.doorbells = [os.eventfd(0, efd) for _ in range(self.vcpus)]
        if self.a.fault == 'dirty-ram':
            self.ram[5 * PAGE + 123] = 0x5A

    def reset_partition_state(self):
        self.msr = {MSR_GUEST_OS_ID: 0, MSR_HYPERCALL: 0}
        for m in range(MSR_CRASH_P0, MSR_CRASH_CTL + 1):
            self.msr[m] = 0
        self.vp = []
        for i in range(self.vcpus):
            d = {MSR_SCONTROL: 0, MSR_SIEFP: 0, MSR_SIMP: 0}
            for s in range(16):
                d[MSR_SINT0 + s] = 0x10000
            self.vp.append(d)
        self.queues = [collections.deque() for _ in range(self.vcpus)]
        self.reset_vmbus()

    def reset_vmbus(self):
        self.version = None
        self.msg_vp = 0
        self.offers_requested = False
        self.channels = {}
        self.gpadls = {}

    def gpa_ok(self, gpa, length=PAGE):
        return PAGE <= gpa and gpa + length <= self.ram_bytes

    # ---------------------------------------------------------- SynIC delivery
    def deliver(self, vp, payload, what):
        if len(self.queues[vp]) >= QUEUE_MAX:
            self.violation('message queue of vp %d full (guest not consuming SIMP slot 2)' % vp)
            return
        self.queues[vp].append((payload, what))
        self.pump(vp)

    def pump(self, vp):
        """Deliver queued messages into SIMP slot 2 (pending/EOM protocol)."""
        st = self.vp[vp]
        simp = st[MSR_SIMP]
        if not (st[MSR_SCONTROL] & 1) or not (simp & 1):
            return
        slot = (simp & ~0xFFF) + VMBUS_SINT * 256
        q = self.queues[vp]
        while q:
            if self.ram32[slot // 4] == 0:
                payload, what = q.popleft()
                msg = struct.pack('<BBHQ', len(payload), 0, 0, 0) + payload
                self.ram[slot + 4:slot + 256] = msg.ljust(252, b'\0')
                time.sleep(0)  # release: payload before type (GIL drop = barrier)
                self.ram32[slot // 4] = 1
                self.stats['delivered'] += 1
                self.log('  -> vp%d SIMP: %s' % (vp, what))
                sint = st[MSR_SINT0 + VMBUS_SINT]
                if not sint & 0x10000 and self.a.fault != 'no-doorbell':
                    os.eventfd_write(self.doorbells[vp], 1)
                continue
            # busy: mark pending.  Python has no 64-bit CAS; write only the
            # flags byte, then re-check the type: if the guest emptied the
            # slot meanwhile, deliver directly (an EOM it may also send is
            # harmless).
            if self.a.fault != 'no-pending':
                self.ram[slot + 5] = self.ram[slot + 5] | 1
            time.sleep(0)
            if self.ram32[slot // 4] != 0:
                break

    def drain_signals(self):
        try:
            os.eventfd_read(self.signal_efd)
        except BlockingIOError:
            pass
        for w in range(PAGE // 8):
            v = self.sig64[w]
            if v:
                self.sig64[w] = 0  # not atomic: see README
                for b in range(64):
                    if v >> b & 1:
                        self.on_signal(w * 64 + b, 'signal page')

    def on_signal(self, conn, how):
        self.stats['signals'] += 1
        ch = next((c for c in self.channels.values() if c['conn'] == conn), None)
        if ch is None:
            self.violation('signal (%s) to unknown connection id 0x%x' % (how, conn))
            return False
        if not ch['open']:
            self.violation('signal (%s) to relid %d, which is not open' % (how, ch['relid']))
        else:
            self.log('  signal (%s) conn 0x%x = relid %d' % (how, conn, ch['relid']))
        return True

    # ---------------------------------------------------------- requests
    def handle(self, data):
        """One request datagram -> (type, body) of the reply, or None to disconnect."""
        if len(data) < HDR.size:
            self.violation('datagram of %d bytes' % len(data))
            return None
        magic, typ, flags, seq = HDR.unpack_from(data)
        body = data[HDR.size:]
        if magic != MAGIC:
            self.violation('bad magic 0x%08x' % magic)
            return None
        self.seq = seq
        if not self.welcomed:
            if typ != 1:
                self.violation('first request type 0x%04x is not HELLO' % typ)
                return None
            return self.hello(body)
        self.drain_signals()
        if flags != 0:
            self.violation('request flags 0x%x' % flags)
            return self.err(typ, -EPROTO)
        if typ == 1:
            self.violation('second HELLO')
            return None
        if typ == 3 and len(body) == 16:
            vp, msr, value = struct.unpack('<IIQ', body)
            return self.wrmsr(vp, msr, value)
        if typ == 4 and len(body) == 8:
            vp, msr = struct.unpack('<II', body)
            return self.rdmsr(vp, msr)
        if typ == 5 and len(body) >= 16:
            vp, ilen, control = struct.unpack_from('<IIQ', body)
            if ilen > PAGE or len(body) != 16 + ilen:
                self.log('malformed HYPERCALL (input_len %d, %d bytes)' % (ilen, len(body) - 16))
                return self.err(typ, -EPROTO)
            if vp >= self.vcpus:
                return self.err(typ, -ERANGE)
            return self.hypercall(vp, control, body[16:])
        if typ == 6 and len(body) == 4:
            kind, = struct.unpack('<I', body)
            if kind not in (0, 1):
                return self.err(typ, -EINVAL)
            self.log('RESET %s' % ('power off' if kind == 0 else 'reboot (pyhost: ends the run)'))
            self.done = True
            return (0x8006, struct.pack('<iI', 0, 0))
        self.log('malformed or unknown request type 0x%04x (%d body bytes) -> -EPROTO'
                 % (typ, len(body)))
        self.stats['eproto'] += 1
        return self.err(typ, -EPROTO)

    def err(self, typ, e):
        return (typ | 0x8000, struct.pack('<iI', e, 0))

    def hello(self, body):
        if len(body) < 8:
            self.violation('HELLO body of %d bytes' % len(body))
            return self.err(1, -EPROTO)
        abi, name_len = struct.unpack_from('<II', body)
        if abi != 1:
            self.log('HELLO abi_version %d -> -EOPNOTSUPP' % abi)
            return self.err(1, -EOPNOTSUPP)
        if name_len > 64 or len(body) != 8 + name_len:
            self.violation('HELLO name_len %d with %d name bytes' % (name_len, len(body) - 8))
            return self.err(1, -EPROTO)
        name = body[8:].decode('utf-8', 'replace')
        if self.a.listen and name != self.a.vm_name:
            self.violation('HELLO names VM %r, this host runs %r' % (name, self.a.vm_name))
            return self.err(1, -EINVAL)
        if not self.a.listen and name_len != 0:
            self.violation('HELLO with a name (%r) on an HVSIM_FD socket' % name)
        self.welcomed = True
        self.welcome_time = time.monotonic_ns()
        self.log('HELLO abi 1%s -> WELCOME (%d vcpu, %d MiB, %d fds)'
                 % (' name %r' % name if name else '', self.vcpus, self.ram_bytes >> 20,
                    3 + self.vcpus))
        body = struct.pack('<iIIIQII', 0, 0, 1, self.vcpus, self.ram_bytes, 3 + self.vcpus, 0)
        fds = [self.ram_fd, self.sig_fd, self.signal_efd] + self.doorbells
        if self.a.fault == 'fd-count':
            fds = fds[:-1]
        return (0x8001, body, fds)

    def msr_reply(self, typ, value):
        return (typ | 0x8000, struct.pack('<iIQ', 0, 0, value))

    def rdmsr(self, vp, msr):
        if vp >= self.vcpus:
            return self.err(4, -ERANGE)
        if msr == MSR_TIME_REF:
            return self.msr_reply(4, (time.monotonic_ns() - self.welcome_time) // 100)
        if msr == MSR_VP_INDEX:
            return self.msr_reply(4, vp)
        if msr == MSR_SVERSION:
            return self.msr_reply(4, 1)
        if msr == MSR_EOM:
            return self.msr_reply(4, 0)
        if msr in PARTITION_MSRS:
            return self.msr_reply(4, self.msr[msr])
        if msr in VP_MSRS:
            return self.msr_reply(4, self.vp[vp][msr])
        self.log('RDMSR unknown MSR 0x%x -> -EINVAL' % msr)
        return self.err(4, -EINVAL)

    def wrmsr(self, vp, msr, value):
        if vp >= self.vcpus:
            return self.err(3, -ERANGE)
        if msr in (MSR_VP_INDEX, MSR_SVERSION, MSR_TIME_REF):
            self.log('WRMSR read-only MSR 0x%x -> -EINVAL' % msr)
            return self.err(3, -EINVAL)
        if msr == MSR_EOM:
            self.stats['eom'] += 1
            self.pump(vp)
            return self.msr_reply(3, 0)
        if msr in (MSR_HYPERCALL, MSR_SIMP, MSR_SIEFP) and value & 1:
            if not self.gpa_ok(value & ~0xFFF):
                self.violation('WRMSR 0x%x enables page GPA 0x%x (page 0 or beyond RAM)'
                               % (msr, value & ~0xFFF))
                return self.err(3, -EINVAL)
        if MSR_SINT0 <= msr <= MSR_SINT15 and not value & 0x10000 and (value & 0xFF) < 16:
            self.log('WRMSR SINT%d unmasked with vector %d -> -EINVAL' % (msr - MSR_SINT0, value & 0xFF))
            return self.err(3, -EINVAL)
        if msr in PARTITION_MSRS:
            self.msr[msr] = value
            self.log('WRMSR %s = 0x%x' % (self.msr_name(msr), value))
            if msr == MSR_CRASH_CTL and value >> 63:
                self.violation('guest crash: P0-P4 = %s' % ', '.join(
                    '0x%x' % self.msr[MSR_CRASH_P0 + i] for i in range(5)))
                self.done = True
            return self.msr_reply(3, value)
        if msr in VP_MSRS:
            self.vp[vp][msr] = value
            self.log('WRMSR vp%d %s = 0x%x' % (vp, self.msr_name(msr), value))
            self.pump(vp)
            return self.msr_reply(3, value)
        self.log('WRMSR unknown MSR 0x%x -> -EINVAL' % msr)
        return self.err(3, -EINVAL)

    @staticmethod
    def msr_name(msr):
        names = {MSR_GUEST_OS_ID: 'GUEST_OS_ID', MSR_HYPERCALL: 'HYPERCALL',
                 MSR_SCONTROL: 'SCONTROL', MSR_SIEFP: 'SIEFP', MSR_SIMP: 'SIMP',
                 MSR_CRASH_CTL: 'CRASH_CTL'}
        if MSR_SINT0 <= msr <= MSR_SINT15:
            return 'SINT%d' % (msr - MSR_SINT0)
        if MSR_CRASH_P0 <= msr < MSR_CRASH_CTL:
            return 'CRASH_P%d' % (msr - MSR_CRASH_P0)
        return names.get(msr, '0x%x' % msr)

    def hc_reply(self, status):
        return (0x8005, struct.pack('<iIQII', 0, 0, status, 0, 0))

    def hypercall(self, vp, control, inp):
        code, fast = control & 0xFFFF, control >> 16 & 1
        self.stats['hypercalls'] += 1
        if self.msr[MSR_GUEST_OS_ID] == 0 or not self.msr[MSR_HYPERCALL] & 1:
            self.log('hypercall 0x%x before guest OS id + hypercall MSR -> INVALID_HYPERCALL_CODE'
                     % code)
            return self.hc_reply(HV_INVALID_HYPERCALL_CODE)
        if control >> 32 & 0xFFF:
            return self.hc_reply(HV_INVALID_HYPERCALL_INPUT)
        if code == 0x5C and not fast:
            return self.post_message(vp, inp)
        if code == 0x5D:
            if fast:
                if len(inp) != 16:
                    return self.hc_reply(HV_INVALID_HYPERCALL_INPUT)
                rdx, = struct.unpack_from('<Q', inp)
                conn, flag = rdx & 0xFFFFFFFF, rdx >> 32 & 0xFFFF
            else:
                if len(inp) < 8:
                    return self.hc_reply(HV_INVALID_HYPERCALL_INPUT)
                conn, flag, _ = struct.unpack_from('<IHH', inp)
            if flag != 0:
                return self.hc_reply(HV_INVALID_PARAMETER)
            if not self.on_signal(conn, 'HvSignalEvent'):
                return self.hc_reply(HV_INVALID_CONNECTION_ID)
            return self.hc_reply(HV_SUCCESS)
        self.log('hypercall code 0x%x fast %d -> INVALID_HYPERCALL_CODE' % (code, fast))
        return self.hc_reply(HV_INVALID_HYPERCALL_CODE)

    def post_message(self, vp, inp):
        if len(inp) < 16:
            return self.hc_reply(HV_INVALID_HYPERCALL_INPUT)
        conn, rsvd, mtype, size = struct.unpack_from('<IIII', inp)
        if rsvd or mtype != 1 or size > 240 or size < 8 or conn >> 24:
            self.violation('HvPostMessage conn 0x%x reserved %d type %d size %d'
                           % (conn, rsvd, mtype, size))
            return self.hc_reply(HV_INVALID_PARAMETER)
        if len(inp) < 16 + size:
            return self.hc_reply(HV_INVALID_HYPERCALL_INPUT)
        payload = bytes(inp[16:16 + size])
        msg, = struct.unpack_from('<I', payload)
        name = MSG_NAMES.get(msg, 'type %d' % msg)
        if conn == 4 and self.version_max < 0x50000:
            self.log('post %s on connection 4 to a %s host -> INVALID_CONNECTION_ID'
                     % (name, vstr(self.version_max)))
            return self.hc_reply(HV_INVALID_CONNECTION_ID)
        if msg == 14:
            ok = conn in (1, 4)
        elif self.version is not None and self.version >= 0x50000:
            ok = conn == self.a.msg_conn_id
        else:
            ok = conn == 1
        if not ok:
            self.violation('%s posted on connection id %d' % (name, conn))
            return self.hc_reply(HV_INVALID_CONNECTION_ID)
        if any(len(q) >= QUEUE_MAX - 8 for q in self.queues):
            return self.hc_reply(HV_INSUFFICIENT_BUFFERS)
        self.log('<- vp%d post conn %d: %s (%d bytes)' % (vp, conn, name, size))
        self.vmbus(msg, payload)
        return self.hc_reply(HV_SUCCESS)

    # ---------------------------------------------------------- VMBus server
    def send(self, payload, what):
        self.deliver(self.msg_vp, payload, what)

    def vmbus(self, msg, p):
        if p[4:8] != b'\0\0\0\0':
            self.violation('message type %d header padding not zero' % msg)
        if msg == 14:
            return self.initiate_contact(p)
        if self.version is None:
            self.violation('%s before a successful INITIATE_CONTACT' % MSG_NAMES.get(msg, msg))
            return
        mins = {3: 8, 5: 148, 7: 12, 8: 20, 9: 16, 11: 16, 13: 12, 16: 8}
        if msg in mins and len(p) < mins[msg]:
            self.violation('%s of %d bytes (minimum %d)' % (MSG_NAMES[msg], len(p), mins[msg]))
            return
        if msg == 3:
            if self.offers_requested:
                self.violation('second REQUESTOFFERS on this connection')
                return
            self.offers_requested = True
            for i, (label, cls, inst) in enumerate(OFFERS):
                relid = i + 1
                conn = 0x2000 + relid
                self.channels[relid] = dict(relid=relid, conn=conn, open=False, label=label)
                o = struct.pack('<II', 1, 0) + uuid.UUID(cls).bytes_le + uuid.UUID(inst).bytes_le
                o += b'\0' * 16 + struct.pack('<HH', 0, 0) + b'\0' * 120
                o += struct.pack('<HHIBBHI', 0, 0, relid, 0xFF, 0, 1, conn)
                assert len(o) == 196
                if self.a.fault == 'short-offer':
                    o = o[:190]
                self.send(o, 'OFFERCHANNEL relid %d %s' % (relid, label))
            self.send(struct.pack('<II', 4, 0), 'ALLOFFERS_DELIVERED')
        elif msg == 8:
            self.gpadl_header(p)
        elif msg == 9:
            self.gpadl_body(p)
        elif msg == 5:
            self.open_channel(p)
        elif msg == 7:
            relid, = struct.unpack_from('<I', p, 8)
            ch = self.channels.get(relid)
            if ch is None or not ch['open']:
                self.violation('CLOSECHANNEL for relid %d, which is not open' % relid)
                return
            ch['open'] = False
            self.gpadls[ch['gpadl']]['in_use'] = False
            self.log('  relid %d closed' % relid)
        elif msg == 11:
            relid, handle = struct.unpack_from('<II', p, 8)
            g = self.gpadls.get(handle)
            if g is None or g['relid'] != relid or not g['done']:
                self.violation('GPADL_TEARDOWN relid %d gpadl 0x%x: no such created GPADL'
                               % (relid, handle))
                return
            if g['in_use']:
                self.violation('GPADL_TEARDOWN of gpadl 0x%x still used by open relid %d'
                               % (handle, relid))
                return
            del self.gpadls[handle]
            self.send(struct.pack('<III', 12, 0, handle), 'GPADL_TORNDOWN 0x%x' % handle)
        elif msg == 13:
            relid, = struct.unpack_from('<I', p, 8)
            self.log('  RELID_RELEASED %d (pyhost never rescinds; noted)' % relid)
        elif msg == 16:
            self.log('  UNLOAD: releasing %d channel(s), %d GPADL(s)'
                     % (len(self.channels), len(self.gpadls)))
            vp = self.msg_vp
            self.reset_vmbus()
            self.deliver(vp, struct.pack('<II', 17, 0), 'UNLOAD_RESPONSE')
        else:
            self.log('  %s: not implemented by pyhost, ignored' % MSG_NAMES.get(msg, msg))

    def initiate_contact(self, p):
        if len(p) < 40:
            self.violation('INITIATE_CONTACT of %d bytes' % len(p))
            return
        v, target_vcpu, ipage, mon1, mon2 = struct.unpack_from('<IIQQQ', p, 8)
        if self.version is not None:
            self.log('  INITIATE_CONTACT while connected: implicit disconnect')
            self.reset_vmbus()
        supported = v in VERSIONS.values() and v <= self.version_max
        vp = target_vcpu if v >= 0x30000 else 0
        if vp >= self.vcpus:
            self.violation('INITIATE_CONTACT target_vcpu %d >= vcpu_count' % target_vcpu)
            vp, supported = 0, False
        state = 0
        if supported and v >= 0x50000 and (ipage & 0xFF) != VMBUS_SINT:
            self.log('  msg_sint %d != 2 -> unsupported' % (ipage & 0xFF))
            supported = False
        if supported and v < 0x50000 and ipage and not self.gpa_ok(ipage):
            self.violation('interrupt page GPA 0x%x' % ipage)
            state = 2
        if supported and (bool(mon1) != bool(mon2) or
                          any(m and (m & 0xFFF or not self.gpa_ok(m)) for m in (mon1, mon2))):
            self.violation('monitor pages 0x%x / 0x%x (both or neither, page-aligned, in RAM)'
                           % (mon1, mon2))
            state = 2
        word = (self.a.msg_conn_id if v >= 0x50000 else v) if supported else 0
        self.log('  INITIATE_CONTACT %s target_vcpu %d -> %s' %
                 (vstr(v), target_vcpu, 'accepted' if supported and state == 0 else
                  'state %d' % state if supported else 'not supported'))
        if supported and state == 0:
            self.version, self.msg_vp, self.offers_requested = v, vp, False
            self.negotiated = v
        self.deliver(vp, struct.pack('<IIBBHI', 15, 0, int(supported), state, 0, word),
                     'VERSION_RESPONSE supported=%d state=%d word=0x%x' % (supported, state, word))

    def gpadl_header(self, p):
        relid, handle, buflen, rcount = struct.unpack_from('<IIHH', p, 8)
        fail = None
        if relid not in self.channels:
            fail = 'unknown relid %d' % relid
        elif handle == 0 or handle in self.gpadls:
            fail = 'handle 0x%x zero or in use' % handle
        elif rcount == 0 or buflen < 16 or buflen % 8:
            fail = 'rangecount %d range_buflen %d' % (rcount, buflen)
        if fail:
            self.violation('GPADL_HEADER: ' + fail)
            self.send(struct.pack('<IIIII', 10, 0, relid, handle, GPADL_FAIL),
                      'GPADL_CREATED (failed) 0x%x' % handle)
            return
        g = dict(relid=relid, handle=handle, buflen=buflen, rcount=rcount,
                 data=bytes(p[20:20 + buflen]), done=False, in_use=False, bodies=0)
        self.gpadls[handle] = g
        self.gpadl_check_complete(g)

    def gpadl_body(self, p):
        handle, = struct.unpack_from('<I', p, 12)
        g = self.gpadls.get(handle)
        if g is None or g['done']:
            self.violation('GPADL_BODY for gpadl 0x%x, which is not being built' % handle)
            return
        g['data'] += bytes(p[16:16 + g['buflen'] - len(g['data'])])
        g['bodies'] += 1
        self.gpadl_check_complete(g)

    def gpadl_check_complete(self, g):
        if len(g['data']) < g['buflen']:
            return
        data, off, pages, err = g['data'], 0, [], None
        for _ in range(g['rcount']):
            if off + 8 > len(data):
                err = 'ranges overrun range_buflen'
                break
            count, boff = struct.unpack_from('<II', data, off)
            n = (boff + count + PAGE - 1) // PAGE
            if count == 0 or boff >= PAGE or off + 8 + 8 * n > len(data):
                err = 'range byte_count %d byte_offset %d' % (count, boff)
                break
            pfns = struct.unpack_from('<%dQ' % n, data, off + 8)
            bad = [x for x in pfns if x == 0 or (x + 1) * PAGE > self.ram_bytes]
            if bad:
                err = 'PFN 0x%x is page 0 or beyond RAM' % bad[0]
                break
            pages.extend(pfns)
            off += 8 + 8 * n
        if err is None and off != len(data):
            err = 'range_buflen %d but ranges use %d bytes' % (len(data), off)
        status = 0
        if err:
            self.violation('GPADL 0x%x: %s' % (g['handle'], err))
            del self.gpadls[g['handle']]
            status = GPADL_FAIL
        else:
            g.update(done=True, pages=pages, single=g['rcount'] == 1)
            self.log('  GPADL 0x%x relid %d: %d page(s), %d range(s), %d body message(s)'
                     % (g['handle'], g['relid'], len(pages), g['rcount'], g['bodies']))
        self.send(struct.pack('<IIIII', 10, 0, g['relid'], g['handle'], status),
                  'GPADL_CREATED 0x%x status 0x%x' % (g['handle'], status))

    def open_channel(self, p):
        relid, openid, handle, target_vp, down = struct.unpack_from('<IIIII', p, 8)
        ch = self.channels.get(relid)
        g = self.gpadls.get(handle)
        fail = None
        if ch is None or ch['open']:
            fail = 'relid %d unknown or already open' % relid
        elif g is None or not g['done'] or g['relid'] != relid or g['in_use']:
            fail = 'gpadl 0x%x not a free created GPADL of relid %d' % (handle, relid)
        elif not g['single'] or not 0 < down < len(g['pages']):
            fail = 'ring GPADL must be one range, downstream offset %d of %d pages' % (
                down, len(g['pages']))
        elif target_vp >= self.vcpus and target_vp != 0xFFFFFFFF:
            fail = 'target_vp %d' % target_vp
        if fail:
            self.violation('OPENCHANNEL: ' + fail)
            status = GPADL_FAIL
        else:
            ch.update(open=True, gpadl=handle, target_vp=target_vp)
            g['in_use'] = True
            status = 0
        self.send(struct.pack('<IIIII', 6, 0, relid, openid, status),
                  'OPENCHANNEL_RESULT relid %d openid 0x%x status 0x%x' % (relid, openid, status))


def send_reply(sock, host, reply, deadline):
    typ, body = reply[0], reply[1]
    fds = reply[2] if len(reply) > 2 else []
    seq = host.seq + (1 if host.a.fault == 'bad-seq' and typ != 0x8001 else 0)
    dg = HDR.pack(MAGIC, typ, 0, seq) + body
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack('<%di' % len(fds), *fds))] if fds else []
    while True:
        try:
            sock.sendmsg([dg], anc, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            select.select([], [sock], [], 0.1)
        except (BrokenPipeError, ConnectionResetError):
            return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--version', default='5.3', choices=sorted(VERSIONS, key=VERSIONS.get),
                    help='newest VMBus version this host speaks (default 5.3)')
    ap.add_argument('--vcpus', type=int, default=2)
    ap.add_argument('--ram-mib', type=int, default=64, help='guest RAM, multiple of 2')
    ap.add_argument('--msg-conn-id', type=int, default=1,
                    help='message connection id returned for versions >= 5.0')
    ap.add_argument('--listen', action='store_true',
                    help='start the guest with HVSIM_SOCKET (listening socket) instead of HVSIM_FD')
    ap.add_argument('--vm-name', default='pyvm', help='VM name expected in HELLO with --listen')
    ap.add_argument('--timeout', type=float, default=30.0)
    ap.add_argument('--fault', choices=HOST_FAULTS,
                    help='misbehave on purpose (to prove a guest catches it)')
    ap.add_argument('cmd', nargs=argparse.REMAINDER, help='-- guest command and arguments')
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ['--'] else a.cmd
    if not cmd:
        ap.error('missing guest command (after --)')
    if not 1 <= a.vcpus <= 250 or a.ram_mib <= 0 or a.ram_mib % 2:
        ap.error('bad --vcpus or --ram-mib')
    a.timeout *= float(os.environ.get('VMBUS_TEST_TIME_SCALE', '1') or 1)

    host = Host(a)
    host.make_partition()
    env = dict(os.environ)
    tmpdir = None
    if a.listen:
        tmpdir = tempfile.mkdtemp(prefix='pyhost-')
        path = os.path.join(tmpdir, 'vm.sock')
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        lsock.bind(path)
        lsock.listen(1)
        env.pop('HVSIM_FD', None)
        env.update(HVSIM_SOCKET=path, HVSIM_VM_NAME=a.vm_name)
        proc = subprocess.Popen(cmd, env=env)
        lsock.settimeout(a.timeout)
        try:
            sock, _ = lsock.accept()
        except socket.timeout:
            host.log('guest never connected to %s' % path)
            proc.kill()
            return 124
        finally:
            lsock.close()
            os.unlink(path)
            os.rmdir(tmpdir)
    else:
        sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env.pop('HVSIM_SOCKET', None)
        env['HVSIM_FD'] = str(child.fileno())
        proc = subprocess.Popen(cmd, env=env, pass_fds=(child.fileno(),))
        child.close()
    host.log('started guest pid %d: %s (host VMBus %s, %d vcpu)'
             % (proc.pid, ' '.join(cmd), a.version, a.vcpus))

    deadline = time.monotonic() + a.timeout
    timed_out, eof = False, False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(host.signal_efd, select.POLLIN)
    while not host.done:
        if time.monotonic() > deadline:
            timed_out = True
            break
        events = poller.poll(100)
        if not events and proc.poll() is not None:
            # the guest is gone; pick up anything still queued, then stop
            if not select.select([sock], [], [], 0)[0]:
                eof = True
                break
        for fd, ev in events:
            if fd == host.signal_efd:
                host.drain_signals()
                continue
            data, _, mflags, _ = sock.recvmsg(MAX_DGRAM, 0, socket.MSG_DONTWAIT)
            if not data:
                eof = True
                break
            if mflags & socket.MSG_TRUNC:
                host.violation('request datagram truncated (> %d bytes)' % MAX_DGRAM)
                host.done = True
                break
            reply = host.handle(data)
            if reply is None:
                host.log('disconnecting the guest')
                host.done = True
                break
            if not send_reply(sock, host, reply, deadline):
                host.log('could not send reply (guest gone or stuck)')
                host.done = True
                break
        if eof:
            break
    if eof:
        host.log('EOF from guest')
    sock.close()
    try:
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        host.log('guest did not exit; killing it')
        proc.kill()
        status = proc.wait()
        timed_out = True
    if status < 0:
        status = 128 - status
    host.log('guest exited with status %d; negotiated %s; %s'
             % (status, vstr(host.negotiated) if host.negotiated else 'nothing',
                ', '.join('%s %d' % kv for kv in sorted(host.stats.items()))))
    for v in host.violations:
        host.log('violation: ' + v)
    if status:
        return status
    if timed_out:
        host.log('TIMEOUT after %.1fs' % a.timeout)
        return 124
    return 1 if host.violations else 0


if __name__ == '__main__':
    sys.exit(main())
