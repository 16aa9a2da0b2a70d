#!/usr/bin/env python3
"""The hostile-host fault matrix (spec/hostile-host.md, issue 9): each case
switches hvsim fault hooks on through the control socket (`hvsim ctl fault
...`), runs a guest (tests/integration/integ_guest) against it, and checks
the guest's behaviour (exit status, RESULT counters), its log line, the
host's log line, and that neither side has a sanitizer report or crash.

usage: fault_matrix.py [--group G] [--only SUBSTRING] [--list] [--markdown]
  --group G     run the cases of group G (ring, vmbus, faults, storage,
                ic, net, netrx); default all
  --only S      run the cases whose name contains S
  --list        print the cases, run nothing
  --markdown    print the matrix table for docs/testing.md, run nothing

A case with `xfail` documents a guest bug (another helper owns the guest
core): its checks run, a failure is reported as XFAIL and does not fail
the test (a crash or sanitizer report included: that is often the bug);
a pass is reported as XPASS (remove the xfail once it passes reliably).

Programs come from the environment like the integration tests'
(INTEG_HVSIM, INTEG_GUEST; see docs/testing.md)."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'integration'))
import integ  # noqa: E402  (tests/integration/integ.py, shared helpers)

RT_MS = 1000    # one echo round trip's bound (guest port clock: x scale)
CTL_MS = 1000   # the guest core's control-path bound (same clock)

ENOBUFS, EPROTO, ETIMEDOUT, ENODEV = -105, -71, -110, -19

# SynIC message types (spec vmbus-core) and packet types used below.
OFFER, RESCIND, OPEN_RESULT, GPADL_CREATED, GPADL_TORNDOWN = 1, 2, 6, 10, 12
VERSION_RESPONSE = 15
INBAND, COMP = 6, 11


# ---- predicates on the guest's RESULT ----------------------------------

def dev(r, relid):
    return next((d for d in r['devices'] if d['relid'] == relid), None)


def healthy(r, relids):
    """Devices in relids are open and echoed every round."""
    return all(dev(r, x) and dev(r, x)['state'] == 'open' and
               dev(r, x)['received'] == r['rounds'] for x in relids)


def running(r, relids):
    """Devices in relids are open and echoed every round but at most one
    (a device detaching mid-round shifts the guest's device list)."""
    return all(dev(r, x) and dev(r, x)['state'] == 'open' and
               dev(r, x)['received'] >= r['rounds'] - 1 and
               dev(r, x)['mismatches'] == 0 and dev(r, x)['proto_errors'] == 0
               for x in relids)


def broken(r, relid):
    d = dev(r, relid)
    return d is not None and d['state'] == 'broken' and d['proto_errors'] >= 1


def attached(r, relids):
    return sorted(d['relid'] for d in r['devices']) == sorted(relids)


def no_leak(r):
    return r['bus']['leaked_pages'] == 0 and r['port']['pages_leaked'] == 0


# ---- the cases -----------------------------------------------------------
#
# name      unique, starts with the spec item: "01 ..."
# item      spec/hostile-host.md item number
# group     CTest entry: ring (1-6), vmbus (7-10), faults (21-25)
# faults    list of `hvsim ctl fault` argument lists (vm=f is added)
# guest     integ_guest arguments (default: echo, 4 rounds, 200 bytes)
# exit      the guest's exit status (None = any reported status, not a
#           signal)
# glog/hlog regexes the guest / host output must match
# gnot      regexes the guest output must not match
# fired     hooks that must have fired (hits >= 1 in `hvsim ctl faults`
#           while the guest runs): for hooks that log nothing themselves
# ok        predicate on the guest's RESULT (None: no RESULT expected)
# during    callable(hv, tmp, chk, case): actions while the guest runs
# expect    the expected behaviour in words (docs/testing.md's matrix)
# xfail     reason, if the guest is known to misbehave here

def echo(count=4, payload=200, *extra):
    return ['echo', '--count', count, '--payload', payload,
            '--timeout-ms', CTL_MS, '--rt-ms', RT_MS] + list(extra)


CASES = []


def case(**kw):
    kw.setdefault('guest', echo())
    kw.setdefault('glog', [])
    kw.setdefault('gnot', [])
    kw.setdefault('fired', [])
    kw.setdefault('faults', [])
    kw.setdefault('hlog', [])
    kw.setdefault('exit', None)
    kw.setdefault('ok', None)
    kw.setdefault('during', None)
    kw.setdefault('xfail', None)
    kw.setdefault('hvsim', [])
    kw.setdefault('prog', 'INTEG_GUEST')
    CASES.append(kw)


BROKEN_LOG = r'echo/1: host protocol error: .*channel broken'

# 1. host write index out of range
for value, what in ((-1, 'write_index = data size'), (-2, 'data size + 8'),
                    (4294967288, '0xFFFFFFF8'), (-3, 'unaligned')):
    case(name='01 bad write_index: %s' % what, item=1, group='ring',
         faults=[['bad_ring_index', 'on', 'relid=1', 'value=%d' % value]],
         exit=1,
         hlog=[r'fault bad_ring_index: f/echo0 write_index'],
         glog=[r'echo/1: host protocol error: bad write index in the receive '
               r'ring; channel broken'],
         ok=lambda r: broken(r, 1) and healthy(r, (2, 3)) and no_leak(r),
         expect='no data read; channel BROKEN, logged, counted; others run')

# 2. bad packet descriptor (the echo reply: in-band, to relid 1)
for off, width, value, what in ((4, 2, 1, 'len8 < offset8'),
                                (2, 2, 1, 'offset8 < descriptor'),
                                (4, 2, 0xFFFF, 'length > available'),
                                (4, 2, 0x2000, 'length x8 past the ring'),
                                (6, 2, 0x8000, 'unknown flag bits')):
    case(name='02 bad descriptor: %s' % what, item=2, group='ring',
         faults=[['pkt.corrupt', 'on', 'relid=1', 'ptype=%d' % INBAND,
                  'off=%d' % off, 'width=%d' % width, 'value=%d' % value,
                  'times=1']],
         exit=1, hlog=[r'fault pkt.corrupt: f/echo0: type 6 byte %d' % off],
         glog=[BROKEN_LOG],
         ok=lambda r: broken(r, 1) and healthy(r, (2, 3)) and no_leak(r),
         expect='channel BROKEN; nothing read past the packet')
case(name='02 bad descriptor: unknown packet type', item=2, group='ring',
     faults=[['pkt.corrupt', 'on', 'relid=1', 'ptype=%d' % INBAND, 'off=0',
              'width=2', 'value=99', 'times=1']],
     exit=1, hlog=[r'fault pkt.corrupt: f/echo0: type 6 byte 0'],
     glog=[r'echo/1: dropped packet of unknown type 99'],
     ok=lambda r: (dev(r, 1)['state'] == 'open' and
                   dev(r, 1)['received'] == r['rounds'] - 1 and
                   healthy(r, (2, 3))),
     expect='the packet is skipped and logged once; the channel runs on '
            '(the one round trip times out)')

# 3. packet larger than the channel's maximum
case(name='03 oversized packet (8 KiB reply)', item=3, group='ring',
     faults=[['pkt.resize', 'on', 'relid=1', 'ptype=%d' % INBAND,
              'len=8192', 'times=1']],
     exit=None, hlog=[r'fault pkt.resize: f/echo0: type 6: \d+ -> 8192 bytes'],
     # the echo driver's buffer holds it: it sees a reply of the wrong
     # length (a mismatch), never a cut one
     ok=lambda r: (dev(r, 1)['state'] == 'open' and
                   dev(r, 1)['received'] == r['rounds'] - 1 and
                   dev(r, 1)['mismatches'] == 1 and
                   r['first_error'] in (EPROTO, ENOBUFS) and
                   healthy(r, (2, 3)) and no_leak(r)),
     expect='never truncated silently: -ENOBUFS with the size, or BROKEN')

# 4. TOCTOU: a host thread flips packet bytes while the guest reads them
case(name='04 mutate after read: payload', item=4, group='ring',
     guest=echo(40, 2000),
     faults=[['mutate_after_read', 'on', 'relid=1', 'ptype=%d' % INBAND,
              'from=16', 'window=50000']],
     exit=None, hlog=[r'fault mutate_after_read: f/echo0: type 6'],
     ok=lambda r: (dev(r, 1)['state'] == 'open' and healthy(r, (2, 3)) and
                   no_leak(r)),
     expect='no effect beyond the data: the descriptor the guest checked is '
            'the one it uses; no crash, the channel stays open')
case(name='04 mutate after read: descriptor too', item=4, group='ring',
     guest=echo(40, 2000),
     faults=[['mutate_after_read', 'on', 'relid=1', 'ptype=%d' % INBAND,
              'from=0', 'window=50000']],
     exit=None, hlog=[r'fault mutate_after_read: f/echo0: type 6'],
     ok=lambda r: (dev(r, 1)['state'] in ('open', 'broken') and
                   healthy(r, (2, 3))),
     expect='a changed descriptor is caught by the checks on the private '
            'copy (BROKEN) or not seen; never used unchecked')

# 5. host scribbles on the guest-owned ring fields
for field, value, what in ((1, 1, 'interrupt_mask := 1 (RX ring)'),
                           (3, 0, 'pending_send_sz := 0 (TX ring)'),
                           (3, -3, 'pending_send_sz > the ring'),
                           (3, -2, 'pending_send_sz unaligned'),
                           (0, -2, 'read_index unaligned (RX ring)'),
                           (2, -3, 'write_index > the ring (TX ring)')):
    case(name='05 scribble: %s' % what, item=5, group='ring',
         guest=echo(3),
         faults=[['ring.scribble', 'on', 'relid=1', 'field=%d' % field,
                  'value=%d' % value, 'times=1']],
         exit=None, hlog=[r'fault ring.scribble: f/echo0: '],
         ok=lambda r: healthy(r, (2, 3)) and no_leak(r) and
         dev(r, 1)['state'] in ('open', 'broken'),
         expect='the guest\'s private cursors ignore it; no signal loop, no '
                'hang (the host may break its side of the ring)')

# 6. completions with bad transaction ids: the echo driver takes no
# completions (it skips them), so only the unsolicited one runs here; the
# transaction-id cases run against StorVSC (group devices)
case(name='06 completion: unsolicited, id 0xdead', item=6, group='ring',
     faults=[['pkt.inject', 'on', 'relid=1', 'ptype=%d' % INBAND,
              'itype=11', 'tid=57005', 'len=8', 'times=2']],
     exit=0, hlog=[r'fault pkt.inject: f/echo0: type 11 trans id 0xdead'],
     ok=lambda r: healthy(r, (1, 2, 3)),
     expect='skipped by a driver that takes no completions; the channel '
            'runs on')

# 7. unexpected control messages (applied to the first matching message)
for what, fault, glog in (
        ('unknown message type', ['msg.corrupt', 'type=%d' % OPEN_RESULT,
                                  'off=0', 'value=99'],
         r'vmbus: dropped message type 99 len 20: unknown type'),
        ('OPENCHANNEL_RESULT, unknown relid',
         ['msg.corrupt', 'type=%d' % OPEN_RESULT, 'off=8', 'value=77'],
         r'vmbus: unexpected OPENCHANNEL_RESULT relid 77 openid'),
        ('OPENCHANNEL_RESULT, wrong open id',
         ['msg.corrupt', 'type=%d' % OPEN_RESULT, 'off=12', 'op=1', 'value=5'],
         r'vmbus: unexpected OPENCHANNEL_RESULT relid \d+ openid 6'),
        ('GPADL_CREATED, wrong GPADL id',
         ['msg.corrupt', 'type=%d' % GPADL_CREATED, 'off=12', 'op=1',
          'value=4096'],
         r'vmbus: unexpected GPADL_CREATED 0x11000 relid \d+'),
        ('OPENCHANNEL_RESULT, short (8 bytes)',
         ['msg.resize', 'type=%d' % OPEN_RESULT, 'len=8'],
         r'vmbus: dropped message type 6 len 8: short'),
        ('OPENCHANNEL_RESULT, no request outstanding',
         ['msg.duplicate', 'type=%d' % OPEN_RESULT],
         r'vmbus: unexpected OPENCHANNEL_RESULT relid \d+ openid 1')):
    case(name='07 message: %s' % what, item=7, group='vmbus',
         faults=[[fault[0], 'on', 'times=1'] + fault[1:]],
         exit=None, hlog=[r'fault %s: type' % re.escape(fault[0])], glog=[glog],
         ok=(lambda n: lambda r: (
             len(r['devices']) == n and
             healthy(r, [d['relid'] for d in r['devices']])))(
                 3 if fault[0] == 'msg.duplicate' else 2),
         expect='ignored and logged; the slot is released (later messages '
                'arrive); at most that one device fails to attach')

# 8. malicious offers
for what, fault, glog, relids in (
        ('relid 0', ['malformed_offer', 'field=1', 'value=0', 'relid=2'],
         r'offer relid 0 rejected', (1, 3)),
        ('relid >= max', ['malformed_offer', 'field=1', 'value=65535',
                          'relid=2'], r'offer relid 65535 rejected', (1, 3)),
        ('relid already in use (offer sent twice)',
         ['msg.duplicate', 'type=%d' % OFFER, 'times=1'],
         r'offer relid \d+ rejected: relid in use', (1, 2, 3)),
        ('monitor id 200', ['msg.corrupt', 'type=%d' % OFFER, 'off=188',
                            'width=2', 'value=%d' % (200 | 1 << 8),
                            'times=1'],
         r'offer relid \d+ rejected: bad monitor id', None),
        ('class not on the allow-list', ['msg.corrupt', 'type=%d' % OFFER,
                                         'off=8', 'op=2', 'value=255',
                                         'times=1'],
         None, 2),
        ('connection id 0', ['msg.corrupt', 'type=%d' % OFFER, 'off=192',
                             'value=0', 'times=1'],
         r'offer relid \d+ rejected: bad connection id', 2),
        ('short offer (100 bytes)', ['malformed_offer', 'field=0',
                                     'value=100', 'relid=2'],
         r'dropped message type 1 len 100: short', (1, 3))):
    case(name='08 offer: %s' % what, item=8, group='vmbus',
         faults=[[fault[0], 'on'] + fault[1:]],
         exit=None, glog=[glog] if glog else [],
         hlog=[r'fault (malformed_offer|msg\.\w+)'],
         ok=(lambda rel: lambda r: (
             (rel is None or (len(r['devices']) == rel if isinstance(rel, int)
                              else attached(r, rel))) and
             healthy(r, [d['relid'] for d in r['devices']])))(relids),
         expect='offer rejected and counted (an unknown class: offered, no '
                'driver binds); an existing channel is never overwritten')

# 9. version negotiation abuse
case(name='09 version: every version refused', item=9, group='vmbus',
     faults=[['msg.corrupt', 'on', 'type=%d' % VERSION_RESPONSE, 'off=8',
              'width=1', 'value=0']],
     exit=1, hlog=[r'fault msg.corrupt: type 15 byte 8'],
     glog=[r'vmbus: the host accepted no version',
           r'VMBus connect failed: -(71|110|95)'],
     expect='bounded retries (each older version once), then a clean '
            'attach failure')
case(name='09 version: no reply at all', item=9, group='vmbus',
     faults=[['drop_message', 'on', 'type=%d' % VERSION_RESPONSE]],
     exit=1, hlog=[r'fault drop_message: type 15 dropped'],
     glog=[r'vmbus: no VERSION_RESPONSE for 5\.3',
           r'VMBus connect failed: -110'],
     expect='-ETIMEDOUT after a bounded wait')
case(name='09 version: answer for a version never asked (2 answers)',
     item=9, group='vmbus',
     faults=[['msg.duplicate', 'on', 'type=%d' % VERSION_RESPONSE,
              'times=1']],
     exit=None, hlog=[r'fault msg.duplicate: type 15'],
     glog=[r'vmbus: dropped message type 15 len 16: unexpected VERSION_RESPONSE'],
     ok=lambda r: healthy(r, (1, 2, 3)) and r['version'] == '5.3',
     expect='the extra answer is ignored; the version used is one offered')


# 10. uninitialised bytes to the host: hvsim counts nonzero reserved bytes
def rsvd_zero(hv, tmp, chk, c):
    ok = integ.wait_until(lambda: re.search(r'echo rounds=\d+', hv.text() +
                                            c['gtext']()), integ.scaled(20))
    _, js = hv.ctl('channels', 'f')
    chk.check(js and js.get('ok') and js.get('rsvd_nonzero') == 0 and
              js.get('msgs_bad', 0) == 0,
              '%s: host counted no nonzero reserved byte' % c['name'],
              js and {k: js.get(k) for k in ('rsvd_nonzero', 'msgs_bad')})
    open(os.path.join(tmp, 'stop'), 'w').close()
    return ok


case(name='10 reserved and pad bytes sent as zero', item=10, group='vmbus',
     faults=[], guest=['echoloop', '--until', '{tmp}/stop', '--payload', 100,
                       '--timeout-ms', CTL_MS, '--rt-ms', RT_MS],
     exit=0, during=rsvd_zero, ok=lambda r: healthy(r, (1, 2, 3)),
     expect='all zero; the host logs and counts nonzero ones (0 here)')


def counters(js, names):
    """Every integer member named in names anywhere in js: [(name, v)]."""
    out = []
    if isinstance(js, dict):
        for k, v in js.items():
            if k in names and isinstance(v, int):
                out.append((k, v))
            else:
                out += counters(v, names)
    elif isinstance(js, list):
        for v in js:
            out += counters(v, names)
    return out


def rsvd_zero_devices(hv, tmp, chk, c):
    ready = integ.wait_until(
        lambda: (re.search(r'nic0: sent a broadcast test frame', c['gtext']()) and
                 re.search(r'disk0: self-test .* ok', c['gtext']()) and
                 re.search(r'ic: kvp negotiated', c['gtext']())),
        integ.scaled(20))
    chk.check(ready, '%s: every device ran' % c['name'])
    names = ('rsvd_nonzero', 'msgs_bad', 'bad_packets', 'bad_srbs',
             'bad_replies', 'bad')
    for what in ('channels', 'nics', 'disks', 'ic'):
        _, js = hv.ctl(what, 'f')
        got = counters(js, names) if js and js.get('ok') else None
        chk.check(got and all(v == 0 for _, v in got),
                  '%s: hvsim ctl %s: nothing nonzero or bad' % (c['name'], what),
                  got)


case(name='10 device protocols: reserved bytes zero', item=10,
             group='vmbus', prog='INTEG_HVGUEST', exit=0,
             hvsim=['--ic', 'on', '--net', 'switch', '--disk',
                    '{tmp}/d.img,size=16M,create'],
             guest=['--full', '--disk-selftest', '--net-selftest', '--stay',
                    '1.5', '--kvp-file', 'none'],
             during=rsvd_zero_devices, glog=[r'unloaded \(0\)'],
             expect='all zero: VMBus, NVSP/RNDIS, VSTOR and IC messages of '
                    'hvguest count no nonzero reserved byte and nothing bad')


# 21. rescind during I/O and during open
def rescind_mid(relid):
    def during(hv, tmp, chk, c):
        def rounds():
            m = re.findall(r'echo rounds=(\d+)', c['gtext']())
            return int(m[-1]) if m else 0
        integ.wait_until(lambda: rounds() >= 1, integ.scaled(20))
        rc, js = hv.ctl('rescind', 'f', relid)
        chk.check(rc == 0 and js and js.get('ok'), '%s: rescinded' % c['name'],
                  js)
        # Until the loop has gone on for a while, or a round failed (a
        # round trip on the rescinded device, if one was waiting: -ENODEV;
        # one the host no longer answers: a timeout).
        n = rounds()
        integ.wait_until(lambda: rounds() >= n + 50 or re.search(
            r'echo rounds=\d+ fails=[1-9]', c['gtext']()), integ.scaled(10))
        open(os.path.join(tmp, 'stop'), 'w').close()
    return during


def rescinded_ok(r):
    """Device 2 gone; a round trip that was on it when the rescind came
    ended with -ENODEV (the rescind may also land between two: then no
    round fails); the others ran on."""
    return ((dev(r, 2) is None or dev(r, 2)['state'] != 'open') and
            (r['fails'] == 0 or r['first_error'] == ENODEV) and
            running(r, (1, 3)))


ECHOLOOP = ['echoloop', '--until', '{tmp}/stop', '--payload', 100,
            '--timeout-ms', CTL_MS, '--rt-ms', RT_MS, '--progress-ms', 20]
case(name='21 rescind during I/O', item=21, group='faults', guest=ECHOLOOP,
     faults=[], during=rescind_mid(2), exit=None,
     hlog=[r'control: channel relid 2 rescinded'], glog=[r'echo/2: rescinded'],
     ok=rescinded_ok,
     expect='waiters wake with -ENODEV; the device detaches; others run')
case(name='21 rescind twice (duplicate RESCIND)', item=21, group='faults',
     guest=ECHOLOOP, faults=[['msg.duplicate', 'on', 'type=%d' % RESCIND,
                              'count=2']],
     during=rescind_mid(2), exit=None, hlog=[r'fault msg.duplicate: type 2'],
     glog=[r'echo/2: rescinded', r'vmbus: rescind of unknown relid 2 ignored'],
     ok=lambda r: running(r, (1, 3)),
     expect='the duplicate is ignored, never a panic')
case(name='21 rescind of an unknown relid', item=21, group='faults',
     guest=ECHOLOOP, faults=[['msg.corrupt', 'on', 'type=%d' % RESCIND,
                              'off=8', 'value=99']],
     during=rescind_mid(2), exit=None, hlog=[r'fault msg.corrupt: type 2'],
     glog=[r'vmbus: rescind of unknown relid 99 ignored'],
     ok=lambda r: running(r, (1, 3)),
     expect='ignored and logged')
case(name='21 rescind during open (before OPENCHANNEL_RESULT)', item=21,
     group='faults', faults=[['rescind_at', 'on', 'type=5', 'times=1']],
     exit=None, hlog=[r'fault rescind_at: message type 5: relid \d+ rescinded'],
     glog=[r'echo/\d: open failed waiting for OPENCHANNEL_RESULT after \d+ ms: '
           r'channel rescinded', r'echo/\d: attach failed \(-19\)'],
     ok=lambda r: len(r['devices']) == 2 and
     healthy(r, [d['relid'] for d in r['devices']]),
     expect='the open fails at once (-ENODEV), no hang; others attach')
case(name='21 rescind during GPADL creation', item=21, group='faults',
     faults=[['rescind_at', 'on', 'type=8', 'times=1']],
     exit=None, hlog=[r'fault rescind_at: message type 8: relid \d+ rescinded'],
     glog=[r'echo/\d: open failed waiting for GPADL_CREATED \(ring\) after \d+ '
           r'ms: channel rescinded', r'echo/\d: attach failed \(-19\)'],
     ok=lambda r: len(r['devices']) == 2 and
     healthy(r, [d['relid'] for d in r['devices']]),
     expect='the attach fails without a hang; pages the host may hold are '
            'leaked on purpose and counted')

# 22. host stops consuming / replying
case(name='22 host stops consuming (forever)', item=22, group='faults',
     guest=echo(1), faults=[['chan.stall', 'on', 'relid=1']],
     exit=1, hlog=[r'fault chan.stall: relid 1: not consuming'],
     ok=lambda r: (dev(r, 1)['received'] == 0 and
                   r['first_error'] == ETIMEDOUT and healthy(r, (2, 3))),
     expect='each wait times out with -ETIMEDOUT; other channels run')
case(name='22 host stops replying (forever)', item=22, group='faults',
     guest=echo(1), faults=[['pkt.drop', 'on', 'relid=1']],
     exit=1, hlog=[r'fault pkt.drop: f/echo0: type \d+'],
     ok=lambda r: (dev(r, 1)['received'] == 0 and
                   r['first_error'] == ETIMEDOUT and healthy(r, (2, 3))),
     expect='each wait times out with -ETIMEDOUT; other channels run')



def stall_then_resume(relid, stall_s):
    def during(hv, tmp, chk, c):
        def rounds():
            m = re.findall(r'echo rounds=(\d+)', c['gtext']())
            return int(m[-1]) if m else 0
        integ.wait_until(lambda: rounds() >= 1, integ.scaled(20))
        rc, js = hv.ctl('fault', 'chan.stall', 'on', 'relid=%d' % relid,
                        'vm=f')
        chk.check(rc == 0 and js and js.get('ok'),
                  '%s: stall on' % c['name'], js)
        integ.wait_until(lambda: re.search(
            r'fault chan.stall: relid %d: not consuming' % relid,
            hv.text()), integ.scaled(10))
        time.sleep(integ.scaled(stall_s))
        rc, js = hv.ctl('fault', 'chan.stall', 'off')
        chk.check(rc == 0 and js and js.get('ok'),
                  '%s: stall off' % c['name'], js)
        n = rounds()
        integ.wait_until(lambda: rounds() >= n + 3, integ.scaled(20))
        open(os.path.join(tmp, 'stop'), 'w').close()
    return during


# The stall ends within a round trip's bound (RT_MS): the host must read
# what the guest sent meanwhile by itself (the guest signalled once and
# waits), so no round fails.
case(name='22 host stops consuming for a while, then resumes', item=22,
     group='faults', guest=ECHOLOOP, faults=[],
     during=stall_then_resume(1, 0.3), exit=0,
     hlog=[r'fault chan.stall: relid 1: not consuming',
           r'fault chan.stall: relid 1: consuming again'],
     ok=lambda r: r['fails'] == 0 and running(r, (1, 2, 3)),
     expect='the late replies arrive within the bound; no round fails')

def full_then_resume(stall_s):
    def during(hv, tmp, chk, c):
        full = integ.wait_until(
            lambda: re.search(r'txfull: ring full after \d+ packets',
                              c['gtext']()), integ.scaled(20))
        chk.check(full, '%s: the guest\'s ring filled' % c['name'])
        time.sleep(integ.scaled(stall_s))
        rc, js = hv.ctl('fault', 'chan.stall', 'off')
        chk.check(rc == 0 and js and js.get('ok'),
                  '%s: stall off' % c['name'], js)
    return during


# 23. The guest's TX ring full for long: the host reads nothing for 0.5 s
# while the guest has 100 packets of 1000 bytes to send through an 8 KiB
# ring. -EAGAIN, then vmbus_chan_wait_tx (pending_send_sz) until the host
# reads again; nothing lost, nothing reordered.
case(name='23 TX ring full for long (back-pressure)', item=23,
     group='faults',
     guest=['txfull', '--payload', 1000, '--ring', 8192, '--count', 100,
            '--wait-ms', 20000, '--timeout-ms', CTL_MS],
     faults=[['chan.stall', 'on', 'relid=1']],
     during=full_then_resume(0.5), exit=0,
     hlog=[r'fault chan.stall: relid 1: not consuming',
           r'fault chan.stall: relid 1: consuming again'],
     glog=[r'txfull: ring full after \d+ packets',
           r'txfull done: sent 100, received 100, 0 bad'],
     ok=lambda r: (r['received'] == r['count'] == 100 and r['bad'] == 0 and
                   r['eagain'] >= 1 and r['full_ms'] >= 400 and no_leak(r)),
     expect='-EAGAIN, then the send waits for room (pending_send_sz) and '
            'completes once the host reads; every echo back, in order')


# 23. lost or late interrupts; 24. spurious and stormy notifications.
# The guest echoes in a loop until the hooks have fired (seen in hvsim ctl
# faults: the partition's hooks log nothing) and it has made progress.
def fire_then_stop(names):
    def during(hv, tmp, chk, c):
        seen = set()

        def fired():
            _, js = hv.ctl('faults')
            for f in (js or {}).get('faults', []):
                if f.get('name') in names and f.get('hits', 0) > 0:
                    seen.add(f['name'])
            return len(seen) == len(names)
        integ.wait_until(fired, integ.scaled(20), step=0.05)
        chk.check(len(seen) == len(names),
                  '%s: %s fired' % (c['name'], ', '.join(names)), seen)
        n0 = len(re.findall(r'echo rounds=', c['gtext']()))
        integ.wait_until(lambda: len(re.findall(r'echo rounds=', c['gtext']()))
                         >= n0 + 2, integ.scaled(20))
        open(os.path.join(tmp, 'stop'), 'w').close()
    return during


case(name='23 lost interrupts (3 doorbells)', item=23, group='faults',
     guest=ECHOLOOP, during=fire_then_stop(['withhold_interrupts']),
     faults=[['withhold_interrupts', 'on', 'times=3']], exit=0,
     ok=lambda r: healthy(r, (1, 2, 3)) and r['rounds'] > 0,
     expect='the available count is re-checked: nothing stalls')
case(name='23 no interrupts at all, polled guest', item=23, group='faults',
     guest=ECHOLOOP + ['--polled'],
     during=fire_then_stop(['withhold_interrupts']),
     faults=[['withhold_interrupts', 'on']], exit=0,
     ok=lambda r: healthy(r, (1, 2, 3)) and r['rounds'] > 0,
     expect='in polled mode the periodic poll recovers everything')
case(name='24 events for unknown channels + storm', item=24, group='faults',
     guest=ECHOLOOP,
     during=fire_then_stop(['flood_events', 'storm_interrupts']),
     faults=[['flood_events', 'on', 'relid=1', 'flag=200', 'count=64'],
             ['storm_interrupts', 'on', 'count=32']],
     exit=0, hlog=[r'fault flood_events: f/echo0: flags 200 and 1'],
     ok=lambda r: healthy(r, (1, 2, 3)) and r['rounds'] > 0,
     expect='events for inactive channels are ignored; callbacks keep a '
            'budget; the control path stays responsive')

# 25. shared-memory ownership: GPADL teardown never acknowledged
case(name='25 GPADL teardown never acknowledged', item=25, group='faults',
     guest=['cycles', '--count', 1, '--timeout-ms', CTL_MS],
     faults=[['withhold_reply', 'on', 'type=%d' % GPADL_TORNDOWN]],
     exit=None, hlog=[r'fault withhold_reply: type 12 withheld'],
     glog=[r'GPADL 0x[0-9a-f]+ \(8 pages\) teardown unanswered; its memory '
           r'stays with the host', r'8 ring pages leaked',
           r'close: -106'],
     expect='the ring memory is leaked, marked and counted, never freed '
            'or reused')


# ---- device protocols: hvguest (the reference guest) as the guest ---------
#
# hvguest prints its own view ("disk0: self-test ... ok", "nic0: ...",
# "ic: ... negotiated") and the guest core's warnings; the cases check
# those lines and its exit status.

DISK = ['--ic', 'off', '--disk', '{tmp}/d.img,size=16M,create']
DISK_GUEST = ['--full', '--disk-selftest', '--stay', '0.2', '--kvp-file', 'none']
DISK_OK = [r'disk0: self-test LBA \d+\.\.\d+: write, read back, compare, '
           r'restore ok', r'unloaded \(0\)']
# completions of the primary SCSI channel (relid 1); the first 10 are the
# VSTOR init sequence and enumeration, so after=10 hits block I/O
SCSI_IO = ['relid=1', 'ptype=%d' % COMP, 'after=10', 'times=1']


def hvguest_case(**kw):
    kw.setdefault('prog', 'INTEG_HVGUEST')
    kw.setdefault('exit', 0)
    case(**kw)


for what, fault, glog in (
        ('id 0', ['pkt.corrupt', 'off=8', 'width=8', 'value=0'],
         [r'storvsc0/q0: completion with transaction id 0 dropped',
          r'storvsc0/q0: request 0x[0-9a-f]+ timed out; slot quarantined']),
        ('delivered twice', ['pkt.duplicate'],
         [r'storvsc0/q0: stale or duplicate completion dropped']),
        ('an idle slot (unsolicited)',
         ['pkt.inject', 'itype=11', 'tid=65541', 'len=64'],
         [r'storvsc0/q0: stale or duplicate completion dropped '
          r'\(id 0x10005\)'])):
    hvguest_case(name='06 completion: %s (StorVSC)' % what, item=6,
                 group='storage', hvsim=DISK, guest=DISK_GUEST,
                 faults=[[fault[0], 'on'] + SCSI_IO + fault[1:]],
                 hlog=[r'fault %s: f/scsi0: type 11' % re.escape(fault[0])],
                 glog=glog + DISK_OK,
                 expect='dropped and logged; no callback for an idle slot; '
                        'a request whose completion never came is quarantined '
                        'after its timeout')
hvguest_case(name='17 VSTOR completion shorter than the protocol\'s',
             item=17, group='storage', hvsim=DISK, guest=DISK_GUEST,
             faults=[['pkt.resize', 'on', 'len=24'] + SCSI_IO],
             hlog=[r'fault pkt.resize: f/scsi0: type 11: \d+ -> 24 bytes'],
             glog=[r'storvsc0/q0: completion shorter than the negotiated '
                   r'packet size', r'storvsc0/q0: queue broken: malformed '
                   r'completion'] + DISK_OK,
             expect='dropped; the queue is BROKEN and its I/O goes to the '
                    'other queue; the disk keeps working')
hvguest_case(name='17 VSTOR completion with the wrong operation',
             item=17, group='storage', hvsim=DISK, guest=DISK_GUEST,
             faults=[['pkt.corrupt', 'on', 'off=16', 'value=99'] + SCSI_IO],
             hlog=[r'fault pkt.corrupt: f/scsi0: type 11 byte 16'],
             glog=[r'storvsc0/q0: completion with an operation other than '
                   r'COMPLETE_IO', r'storvsc0/q0: queue broken'] + DISK_OK,
             expect='as above')
hvguest_case(name='17 unsolicited id-0 VSTOR packet', item=17,
             group='storage', hvsim=DISK, guest=DISK_GUEST,
             faults=[['pkt.inject', 'on', 'itype=6', 'tid=0', 'len=64'] +
                     SCSI_IO],
             hlog=[r'fault pkt.inject: f/scsi0: type 6 trans id 0x0'],
             glog=DISK_OK,
             expect='takes the unsolicited path, never a request completion')
hvguest_case(name='18 data_transfer_length > the request', item=18,
             group='storage', hvsim=DISK, guest=DISK_GUEST,
             faults=[['pkt.corrupt', 'on', 'off=40', 'value=1048576'] +
                     SCSI_IO],
             hlog=[r'fault pkt.corrupt: f/scsi0: type 11 byte 40'],
             glog=[r'storvsc0/q0: host reports 1048576 bytes for a \d+-byte '
                   r'request; clamped'] + DISK_OK,
             expect='the residual is clamped to the request')
hvguest_case(name='18 sense_info_length > the sense buffer', item=18,
             group='storage', hvsim=DISK, guest=DISK_GUEST,
             faults=[['pkt.corrupt', 'on', 'off=37', 'width=1',
                      'value=255'] + SCSI_IO],
             hlog=[r'fault pkt.corrupt: f/scsi0: type 11 byte 37'],
             glog=DISK_OK,
             expect='the sense copy is clamped to the buffer (and unused '
                    'with a good status)')

IC = ['--ic', 'on']
IC_GUEST = ['--ic', '--stay', '0.5', '--kvp-file', 'none']
IC_UP = [r'ic: shutdown negotiated', r'ic: kvp negotiated',
         r'unloaded \(0\)']
for what, value in (('0 framework versions', 0), ('200 versions', 200)):
    hvguest_case(name='19 IC negotiate: %s' % what, item=19, group='ic',
                 hvsim=IC, guest=IC_GUEST,
                 faults=[['pkt.corrupt', 'on', 'relid=1', 'off=44', 'width=2',
                          'value=%d' % value, 'times=1']],
                 hlog=[r'fault pkt.corrupt: f/heartbeat: type 6 byte 44',
                       r'ic-heartbeat: the guest shares no version'],
                 glog=[r'ic-heartbeat: negotiate with %d\+2 versions in 52 '
                       r'bytes refused' % value] + IC_UP,
                 expect='refused with a failure status; the service stays '
                        'quiet but alive, the others negotiate')
hvguest_case(name='19 IC message shorter than its header', item=19,
             group='ic', hvsim=IC, guest=IC_GUEST,
             faults=[['pkt.resize', 'on', 'relid=1', 'len=40', 'times=1']],
             hlog=[r'fault pkt.resize: f/heartbeat: type 6: \d+ -> 40 bytes'],
             glog=[r'ic-heartbeat: 24-byte message is shorter than the IC '
                   r'header'] + IC_UP,
             expect='dropped and logged')
hvguest_case(name='20 heartbeat payload shorter than its struct', item=20,
             group='ic', hvsim=IC, guest=IC_GUEST,
             faults=[['pkt.resize', 'on', 'relid=1', 'len=48', 'after=1',
                      'times=1']],
             hlog=[r'ic-heartbeat: heartbeat answer of 28 bytes, status '
                   r'0x80004005'],
             glog=[r'ic-heartbeat: icmsgsize 40 runs past the 32-byte '
                   r'message'] + IC_UP,
             expect='answered with a failure status; no guest state changes')
for what, value in (('before 1970', 1),
                    ('more than 100 years ahead', 999999999999999999)):
    hvguest_case(name='20 time sync: host time %s' % what, item=20,
                 group='ic', hvsim=IC, guest=IC_GUEST,
                 faults=[['pkt.corrupt', 'on', 'relid=3', 'off=44', 'width=8',
                          'value=%d' % value, 'after=1', 'times=1']],
                 hlog=[r'ic-timesync: the guest refused the host time'],
                 glog=[r'ic-timesync: host time %d \(100 ns since 1601\) out '
                       r'of range; refused' % value] + IC_UP,
                 expect='refused with a failure status; the clock is not '
                        'stepped')

def ic_request(wait_rx, fault, ctl):
    """Once the guest printed wait_rx, switch fault on and send a host
    request with `hvsim ctl CTL...`."""
    def during(hv, tmp, chk, c):
        up = integ.wait_until(lambda: re.search(wait_rx, c['gtext']()),
                              integ.scaled(20))
        chk.check(up, '%s: guest ready (/%s/)' % (c['name'], wait_rx))
        rc, js = hv.ctl('fault', *(fault + ['vm=f']))
        chk.check(rc == 0 and js and js.get('ok'),
                  '%s: %s switched on' % (c['name'], fault[0]), js)
        rc, js = hv.ctl(*ctl)
        chk.check(rc == 0 and js and js.get('ok'),
                  '%s: hvsim ctl %s' % (c['name'], ' '.join(ctl)), js)
    return during


IC_LONG = ['--ic', '--stay', '1', '--kvp-file', 'none']
KVP_READY = r'ic: kvp: host set VirtualMachineName'
for what, field, glog in (
        ('pool index out of range', ['off=45', 'width=1', 'value=9'],
         r'ic-kvp: pool 9 out of range'),
        ('key length > the field', ['off=52', 'value=9999'],
         r'ic-kvp: operation 1 with a bad key or value refused'),
        ('odd key byte count', ['off=52', 'value=7'],
         r'ic-kvp: operation 1 with a bad key or value refused'),
        ('value length > the field', ['off=56', 'value=99999'],
         r'ic-kvp: operation 1 with a bad key or value refused')):
    hvguest_case(name='20 KVP SET: %s' % what, item=20, group='ic',
                 hvsim=IC, guest=IC_LONG,
                 # only the SET (operation 1 at byte 44: after the
                 # descriptor and the IC header): the host sends others
                 during=ic_request(KVP_READY, ['pkt.corrupt', 'on', 'relid=4',
                                               'moff=44', 'mwidth=1', 'mval=1',
                                               'times=1'] + field,
                                   ['kvp-set', 'f', 'Key1', 'Val1']),
                 hlog=[r'fault pkt.corrupt: f/kvp: type 6 byte',
                       r'kvp: set Key1 in pool 0 failed: .*guest status '
                       r'0x80004005'],
                 glog=[glog] + IC_UP, gnot=[r'host set Key1'],
                 expect='answered with a failure status; the store is not '
                        'changed')
hvguest_case(name='20 shutdown with unknown flags', item=20, group='ic',
             hvsim=IC, guest=IC_LONG,
             during=ic_request(r'ic: shutdown negotiated',
                               ['pkt.corrupt', 'on', 'relid=2', 'off=52',
                                'value=128', 'times=1'],
                               ['guest-shutdown', 'f']),
             hlog=[r'fault pkt.corrupt: f/shutdown: type 6 byte 52',
                   r'ic-shutdown: the guest refused'],
             glog=[r'ic-shutdown: unknown flags 0x80 refused',
                   r'ic: shutdown: refused a request'] + IC_UP,
             expect='refused with a failure status; no shutdown')


NET = ['--ic', 'off', '--net', 'switch']
NET_GUEST = ['--full', '--net-selftest', '--stay', '0.2', '--kvp-file', 'none']
# 13 and 14 need a received frame: a second VM (g) on the same virtual
# switch sends a broadcast once f's NIC is up and the hook is on for f.
NET2 = NET + ['--vm', '--name', 'g', '--memory', '128M'] + NET
NET_RX_GUEST = ['--full', '--stay', '1.5', '--kvp-file', 'none']


def peer_sends(fault):
    def during(hv, tmp, chk, c):
        up = integ.wait_until(lambda: re.search(r'nic0: MAC', c['gtext']()),
                              integ.scaled(20))
        chk.check(up, '%s: f\'s NIC is up' % c['name'])
        rc, js = hv.ctl('fault', *(fault + ['vm=f']))
        chk.check(rc == 0 and js and js.get('ok'),
                  '%s: %s switched on' % (c['name'], fault[0]), js)
        peer = integ.Proc([integ.prog('INTEG_HVGUEST'), '--full',
                           '--net-selftest', '--stay', '0.2', '--kvp-file',
                           'none'], tag='peer',
                          env={'HVSIM_SOCKET': tmp + '/l.sock',
                               'HVSIM_VM_NAME': 'g'})
        try:
            chk.check(peer.wait(integ.scaled(30)) == 0,
                      '%s: the peer sent its frame and exited 0' % c['name'])
            chk.check(re.search(r'nic0: sent a broadcast test frame',
                                peer.text()), '%s: peer frame sent' % c['name'])
            integ.no_crash(chk, peer)
        finally:
            peer.cleanup()
    return during


RX_DROPPED = [r'nic0 up: rx 0 frames 0 B, tx \d+ frames, [1-9]\d* drops',
              r'unloaded \(0\)']
for item, what, fault, glog in (
        (13, 'range count too large for the packet',
         ['netvsp.xfer', 'field=3', 'value=1000'],
         r'netvsc1: queue 0: range count does not fit the packet: dropped'),
        (13, 'range outside the receive buffer',
         ['netvsp.xfer', 'field=1', 'value=4294963200'],
         r'netvsc1: queue 0: range outside the receive buffer: dropped'),
        (13, 'zero-length range', ['netvsp.xfer', 'field=2', 'value=0'],
         r'netvsc1: queue 0: range outside the receive buffer: dropped'),
        (13, 'unknown transfer-page set id',
         ['netvsp.xfer', 'field=0', 'value=7'],
         r'netvsc1: queue 0: unknown transfer page set: dropped'),
        (14, 'RNDIS message length > the range',
         ['netvsp.rndis_rx', 'field=0', 'value=100000'],
         r'netvsc1: queue 0: RNDIS length outside the range: dropped'),
        (14, 'RNDIS data offset beyond the message',
         ['netvsp.rndis_rx', 'field=1', 'value=4000'],
         r'netvsc1: queue 0: data offset/length outside the message: '
         r'dropped')):
    hvguest_case(name='%02d receive: %s' % (item, what), item=item,
                 group='netrx', hvsim=NET2, guest=NET_RX_GUEST,
                 faults=[], during=peer_sends([fault[0], 'on'] + fault[1:]),
                 glog=[glog] + RX_DROPPED,
                 expect='the frame is dropped and counted (drops), no '
                        'out-of-bounds read; the NIC keeps working')

hvguest_case(name='12 receive buffer reply with 2 sections', item=12,
             group='net', hvsim=NET, guest=NET_GUEST,
             faults=[['netvsp.recv_buf_comp', 'on', 'field=1', 'value=2']],
             fired=['netvsp.recv_buf_comp'],
             glog=[r'netvsc1: receive buffer refused or bad sections',
                   r'netvsc1: bring-up failed \(-71\)', r'network: 0 NIC',
                   r'unloaded \(0\)'],
             expect='attach fails with -EPROTO, nothing leaks')
hvguest_case(name='12 send section size 0', item=12, group='net',
             hvsim=NET, guest=NET_GUEST,
             faults=[['netvsp.send_buf_comp', 'on', 'field=1', 'value=0']],
             fired=['netvsp.send_buf_comp'],
             glog=[r'netvsc1: send buffer section size out of range: using '
                   r'bounce pages', r'nic0: sent a broadcast test frame',
                   r'unloaded \(0\)'],
             expect='falls back to no send buffer and works')
hvguest_case(name='16 more subchannels than requested', item=16,
             group='net', hvsim=NET, guest=NET_GUEST,
             faults=[['netvsp.subchannel_comp', 'on', 'value=64']],
             fired=['netvsp.subchannel_comp'],
             glog=[r'netvsc1: NVSP \S+ NDIS \S+, 2 queue\(s\)',
                   r'nic0: sent a broadcast test frame', r'unloaded \(0\)'],
             expect='clamped to what was requested and supported')
hvguest_case(name='16 subchannel offer arrives late', item=16,
             group='net', hvsim=NET, guest=NET_GUEST,
             faults=[['delay_message', 'on', 'type=%d' % OFFER, 'after=1',
                      'ms=400', 'times=1']],
             hlog=[r'fault delay_message: type 1 held 400 ms'],
             glog=[r'netvsc1: NVSP \S+ NDIS \S+, 2 queue\(s\)',
                   r'nic0: sent a broadcast test frame', r'unloaded \(0\)'],
             expect='the wait for it covers the delay: both queues open')
hvguest_case(name='16 subchannel offer never arrives', item=16,
             group='net', hvsim=NET, guest=NET_GUEST,
             faults=[['drop_message', 'on', 'type=%d' % OFFER, 'after=1']],
             hlog=[r'fault drop_message: type 1 dropped'],
             glog=[r'netvsc1: no subchannel offer \(-110\)',
                   r'netvsc1: NVSP \S+ NDIS \S+, 1 queue\(s\)',
                   r'nic0: sent a broadcast test frame', r'unloaded \(0\)'],
             expect='the wait times out and the NIC runs with fewer queues')
hvguest_case(name='15 RNDIS reply with an unknown request id', item=15,
             group='net', hvsim=NET, guest=NET_GUEST,
             faults=[['netvsp.rndis_ctrl', 'on', 'field=0', 'value=999',
                      'times=1']],
             fired=['netvsp.rndis_ctrl'],
             glog=[r'netvsc1: RNDIS INITIALIZE failed \(-110\)',
                   r'netvsc/1: attach failed \(-110\)', r'unloaded \(0\)'],
             expect='ignored; the request it answered times out cleanly')
for what, field in (('info buffer longer than the message', 2),
                    ('info buffer offset outside the message', 3)):
    hvguest_case(name='15 RNDIS QUERY reply: %s' % what, item=15,
                 group='net', hvsim=NET, guest=NET_GUEST,
                 faults=[['netvsp.rndis_ctrl', 'on', 'field=%d' % field,
                          'value=60000', 'after=1', 'times=1']],
                 fired=['netvsp.rndis_ctrl'],
                 glog=[r'netvsc1: malformed QUERY_CMPLT for 0x[0-9a-f]+',
                       r'nic0: sent a broadcast test frame',
                       r'unloaded \(0\)'],
                 expect='refused without overflowing anything (-EPROTO to '
                        'the query; an optional OID, so the NIC attaches)')
hvguest_case(name='15 RNDIS QUERY reply with a failure status', item=15,
             group='net', hvsim=NET, guest=NET_GUEST,
             faults=[['netvsp.rndis_ctrl', 'on', 'field=1',
                      'value=%d' % 0xC0000001, 'after=1', 'times=1']],
             fired=['netvsp.rndis_ctrl'],
             glog=[r'nic0: sent a broadcast test frame', r'unloaded \(0\)'],
             expect='the query fails; an optional OID, so the NIC attaches')


def link_flap_with(fault):
    """Once f's NIC is up: the fault on, the link down (its indication
    corrupted), then up and down again (clean indications)."""
    def during(hv, tmp, chk, c):
        up = integ.wait_until(lambda: re.search(r'nic0: MAC', c['gtext']()),
                              integ.scaled(20))
        chk.check(up, '%s: the NIC is up' % c['name'])
        rc, js = hv.ctl('fault', *(fault + ['vm=f']))
        chk.check(rc == 0 and js and js.get('ok'),
                  '%s: %s switched on' % (c['name'], fault[0]), js)
        for state in ('down', 'up', 'down'):
            rc, js = hv.ctl('nic-link', 'f', 0, state)
            chk.check(rc == 0, '%s: nic-link %s' % (c['name'], state), js)
            time.sleep(integ.scaled(0.1))
        chk.check(integ.wait_until(
            lambda: re.search(r'nic0: link down', c['gtext']()),
            integ.scaled(10)), '%s: a clean indication still works'
            % c['name'])
        chk.check(len(re.findall(r'nic0: link down', c['gtext']())) == 1,
                  '%s: the corrupted one changed nothing' % c['name'])
    return during


for what, field, value in (('buffer offset inside the header', 1, 4),
                           ('buffer past the message', 2, 12)):
    hvguest_case(name='15 link-status indication: %s' % what, item=15,
                 group='net', hvsim=NET,
                 guest=['--full', '--stay', '2', '--kvp-file', 'none'],
                 during=link_flap_with(['netvsp.indicate', 'on',
                                        'field=%d' % field,
                                        'value=%d' % value, 'buflen=5000',
                                        'times=1']),
                 hlog=[r'fault netvsp.indicate: f/net0: status 0x4001000c'],
                 glog=[r'netvsc1: status 0x4001000c buffer outside the '
                       r'message', r'unloaded \(0\)'],
                 expect='dropped and logged; the link state is unchanged; '
                        'later indications work')
hvguest_case(name='11 NVSP reply shorter than its type', item=11,
             group='net', hvsim=NET, guest=NET_GUEST,
             faults=[['pkt.resize', 'on', 'relid=1', 'len=24', 'times=1']],
             hlog=[r'fault pkt.resize: f/net0: type 11: \d+ -> 24 bytes'],
             glog=[r'netvsc1: bad INIT reply \(type \d+, 8 bytes\)',
                   r'netvsc/1: attach failed \(-71\)', r'unloaded \(0\)'],
             expect='dropped and logged; the pending init fails (-EPROTO, at '
                    'once rather than at its timeout)')


# ---- running -------------------------------------------------------------

def run_case(chk, c):
    tag = c['name']
    with integ.TempDir() as tmp:
        ls = tmp + '/l.sock'
        base = (['--memory', '128M'] if c['prog'] == 'INTEG_HVGUEST' else
                ['--echo', 3, '--memory', '64M'])
        hv = integ.Hvsim(['--listen', ls, '--timeout', integ.scaled(60),
                          '--name', 'f'] + base +
                         [str(a).replace('{tmp}', tmp) for a in c['hvsim']],
                         tmp)
        g = None
        try:
            for f in c['faults']:
                rc, js = hv.ctl('fault', *(f + ['vm=f']))
                chk.check(rc == 0 and js and js.get('ok'),
                          '%s: %s switched on' % (tag, f[0]), js)
            argv = [str(a).replace('{tmp}', tmp) for a in c['guest']]
            g = integ.Proc([integ.prog(c['prog'])] + argv,
                           env={'HVSIM_SOCKET': ls, 'HVSIM_VM_NAME': 'f'},
                           tag='guest')
            c['gtext'] = g.text
            if c['during']:
                c['during'](hv, tmp, chk, c)
            if c['fired']:
                seen = set()

                def fired():
                    _, js = hv.ctl('faults')
                    for f in (js or {}).get('faults', []):
                        if f.get('name') in c['fired'] and f.get('hits', 0) > 0:
                            seen.add(f['name'])
                    return len(seen) == len(c['fired'])
                integ.wait_until(lambda: fired() or g.p.poll() is not None,
                                 integ.scaled(20))
                chk.check(len(seen) == len(c['fired']),
                          '%s: %s fired' % (tag, ', '.join(c['fired'])), seen)
            grc = g.wait(integ.scaled(60))
            if c['exit'] is None:
                chk.check(grc is not None and grc >= 0,
                          '%s: guest exits with a reported status' % tag, grc)
            else:
                chk.check(grc == c['exit'], '%s: guest exits %d' %
                          (tag, c['exit']), grc)
            gtext = g.text()
            for rx in c['glog']:
                chk.check(re.search(rx, gtext), '%s: guest logs /%s/' % (tag, rx))
            for rx in c['gnot']:
                chk.check(not re.search(rx, gtext),
                          '%s: guest does not log /%s/' % (tag, rx))
            if c['ok']:
                res = integ.results(g.text('out').splitlines())
                if chk.check(res, '%s: guest reported' % tag):
                    try:
                        good = c['ok'](res[0])
                    except (KeyError, TypeError) as e:
                        good = False
                        res[0]['error'] = repr(e)
                    chk.check(good, '%s: behaviour and counters' % tag, res[0])
            hv.wait_line(r'\[f\] VM done', integ.scaled(10))
            for rx in c['hlog']:
                chk.check(re.search(rx, hv.text()), '%s: host logs /%s/' % (tag, rx))
            chk.check(hv.wait(integ.scaled(10)) is not None,
                      '%s: hvsim ends with its VM' % tag)
            integ.no_crash(chk, hv, g)
        finally:
            if g:
                g.cleanup()
            hv.cleanup()


# Items no case covers yet, with the reason (docs/testing.md shows them).
NOT_COVERED = {}


def markdown():
    print('| item | test | case | expected | status |')
    print('|---|---|---|---|---|')
    rows = [(c['item'], 'fault_' + c['group'], c['name'][3:], c['expect'],
             'xfail: ' + c['xfail'] if c['xfail'] else 'pass') for c in CASES]
    rows += [(i, '-', '-', '-', 'not covered: ' + why)
             for i, why in NOT_COVERED.items()]
    for r in sorted(rows, key=lambda r: r[0]):
        print('| %d | %s | %s | %s | %s |' % r)


def main(argv):
    group = only = None
    if '--markdown' in argv:
        markdown()
        return 0
    if '--group' in argv:
        group = argv[argv.index('--group') + 1]
    if '--only' in argv:
        only = argv[argv.index('--only') + 1]
    cases = [c for c in CASES if (group is None or c['group'] == group) and
             (only is None or only in c['name'])]
    if '--list' in argv:
        for c in cases:
            print('%-7s %s%s' % (c['group'], c['name'],
                                 '  [xfail]' if c['xfail'] else ''))
        return 0
    if not cases:
        sys.stderr.write('no case selected\n')
        return 2
    chk = integ.Checks('fault_matrix' + ('_' + group if group else ''))
    xfails, xpasses = [], []
    for c in cases:
        chk.log('--- ' + c['name'])
        if c['xfail']:
            sub = integ.Checks(c['name'])
            sub.t0 = chk.t0
            run_case(sub, c)
            if sub.failed:
                xfails.append(c['name'])
                chk.log('XFAIL: %s (%s): %s' % (c['name'], c['xfail'],
                                                '; '.join(sub.failed)))
            else:
                xpasses.append(c['name'])
                chk.log('XPASS: %s: remove its xfail' % c['name'])
        else:
            run_case(chk, c)
    chk.log('%d case(s), %d xfail, %d xpass' % (len(cases), len(xfails),
                                                len(xpasses)))
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
