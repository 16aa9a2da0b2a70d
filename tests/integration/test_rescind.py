#!/usr/bin/env python3
"""Rescind with I/O outstanding. The guest (integ_guest waiters) opens echo
channel 1 and leaves 8 transactions and a receive wait outstanding on it,
and has the open of echo channel 2 in progress (the host withholds its
OPENCHANNEL_RESULT: fault hook withhold_reply). The host rescinds channel 1,
then channel 2. Every waiter must wake with -ENODEV (-19) promptly after
its channel's rescind (each wait is bounded by 20 s x scale, so a timeout
cannot pass for a wake-up), the guest must release both relids
(RELID_RELEASED: the host frees the channels and their GPADLs), and both
sides carry on: the guest unloads and exits 0.

usage: test_rescind.py [--host integ_host|hvsim]
  integ_host (default): hvsim's partition, server and echo VSP behind stdin
             commands; guest started by it.
  hvsim:     hvsim --listen, the guest attached with HVSIM_SOCKET, faults
             and the rescind through `hvsim ctl`. Exits 77 (skipped) while
             this hvsim has no "rescind" control command."""
import json
import os
import subprocess
import sys
import time

import integ

XACTS = 8
PROMPT = integ.scaled(1.0)   # a wake-up, not a timeout (those are 20 s+)
SKIP = 77


def guest_argv(tmp):
    return [integ.prog('INTEG_GUEST'), 'waiters', '--xacts', XACTS, '--rx', '--open-stuck',
            '--wait-ms', 20000, '--sync', tmp]


class IntegHost:
    """integ_host runs the guest; host and guest share one output."""

    def __init__(self, tmp):
        self.p = integ.Proc([integ.prog('INTEG_HOST'), '--echo', 2,
                             '--timeout', integ.scaled(60),
                             '--fault', 'withhold_reply:type=6,after=1', '--'] +
                            guest_argv(tmp), tag='host')
        self.guest = self.host = self.p

    def channels(self):
        n = len(self.p.lines)
        self.p.send('channels')
        got = self.p.wait_line(r'^host: channels: (.*)$', integ.scaled(10), start=n)
        return json.loads(got[1].group(1)) if got else None

    def rescind(self, relid):
        n = len(self.p.lines)
        self.p.send('rescind %d' % relid)
        got = self.p.wait_line(r'^host: rescind: (-?\d+)', integ.scaled(10), start=n)
        return int(got[1].group(1)) if got else None

    def wait(self):
        return self.p.wait(integ.scaled(20)), None

    def procs(self):
        return [self.p]

    def cleanup(self):
        self.p.cleanup()


class HvsimHost:
    """hvsim waiting for a socket guest that the driver starts."""

    def __init__(self, tmp, chk):
        ls = os.path.join(tmp, 'l.sock')
        self.host = integ.Hvsim(['--listen', ls, '--timeout', integ.scaled(60),
                                 '--name', 'rv', '--echo', 2, '--memory', '64M'], tmp)
        rc, js = self.host.ctl('fault', 'withhold_reply', 'on', 'type=6', 'after=1', 'vm=rv')
        chk.check(rc == 0 and js and js.get('ok'), 'fault withhold_reply switched on', js)
        self.guest = integ.Proc(guest_argv(tmp), env={'HVSIM_SOCKET': ls,
                                                      'HVSIM_VM_NAME': 'rv'}, tag='guest')

    def channels(self):
        rc, js = self.host.ctl('channels', 'rv')
        return js if rc == 0 else None

    def rescind(self, relid):
        rc, js = self.host.ctl('rescind', 'rv', relid)
        return 0 if rc == 0 and js and js.get('ok') else -1

    def wait(self):
        rc = self.guest.wait(integ.scaled(20))
        return rc, self.host.wait(integ.scaled(20))

    def procs(self):
        return [self.host, self.guest]

    def cleanup(self):
        self.guest.cleanup()
        self.host.cleanup()


def hvsim_can_rescind():
    r = subprocess.run([integ.prog('INTEG_HVSIM'), 'ctl', '--help'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return b'rescind' in r.stdout


def main():
    which = 'integ_host'
    if sys.argv[1:2] == ['--host'] and len(sys.argv) > 2:
        which = sys.argv[2]
    if which not in ('integ_host', 'hvsim'):
        sys.stderr.write(__doc__)
        return 2
    if which == 'hvsim' and not hvsim_can_rescind():
        integ.out('integ_rescind: hvsim ctl has no "rescind" command yet: skipped')
        return SKIP
    chk = integ.Checks('integ_rescind (%s)' % which)
    with integ.TempDir() as tmp:
        h = IntegHost(tmp) if which == 'integ_host' else HvsimHost(tmp, chk)
        g = h.guest
        try:
            got = g.wait_line(r'^integ: waiting: (\d+) waiter', integ.scaled(20))
            if not chk.check(got is not None, 'guest has its waiters outstanding'):
                return chk.finish()
            chk.check(int(got[1].group(1)) == XACTS + 2, '%d waiters (8 xacts, rx, open)'
                      % (XACTS + 2), got[1].group(1))
            chk.check(h.host.wait_line(r'fault withhold_reply: type 6 withheld',
                                       integ.scaled(5)) is not None,
                      'host withheld the second OPENCHANNEL_RESULT')
            ch = h.channels()
            st = {c['relid']: c['state'] for c in (ch or {}).get('channels', [])}
            chk.check(st == {1: 'open', 2: 'open'}, 'host: both channels open before', st)

            t_r1 = time.monotonic()
            chk.check(h.rescind(1) == 0, 'host rescinded relid 1')
            chk.check(g.wait_line(r'integ-raw/1: rescinded', integ.scaled(10)) is not None,
                      'guest logged the rescind of relid 1')
            time.sleep(0.2)
            t_r2 = time.monotonic()
            chk.check(h.rescind(2) == 0, 'host rescinded relid 2')
            got = g.wait_line(r'^RESULT ', integ.scaled(30))
            if not chk.check(got is not None, 'every waiter returned and reported'):
                return chk.finish()
            res = integ.results([got[1].string])[0]
            for w in res['waiters']:
                t_r = t_r2 if w['name'] == 'open' else t_r1
                late = w['end_mono'] - t_r
                chk.check(w['rc'] == -19 and 0 <= late < PROMPT,
                          '%s: woke with -ENODEV %.1f ms after its rescind'
                          % (w['name'], late * 1e3), (w['rc'], late))
            chk.check(res['bus']['rescinds'] == 2, 'guest counted 2 rescinds',
                      res['bus']['rescinds'])
            chk.log('guest: leaked pages after the rescinds: bus %d, port %d'
                    % (res['bus']['leaked_pages'], res['port']['pages_leaked']))

            chk.check(g.wait_line(r'^integ: rescind work finished', integ.scaled(20))
                      is not None, 'guest finished detach, close and RELID_RELEASED')
            ch = h.channels() or {}
            chk.check(ch.get('channels') == [] and ch.get('gpadls') == 0,
                      'host: both relids released, their GPADLs gone',
                      (ch.get('channels'), ch.get('gpadls')))
            chk.check(ch.get('msgs_bad') == 0, 'host: no bad message from the guest',
                      ch.get('msgs_bad'))
            open(os.path.join(tmp, 'finish'), 'w').close()
            rc, hrc = h.wait()
            chk.check(rc == 0 and hrc in (None, 0), 'guest unloads and exits 0, host exits 0',
                      (rc, hrc))
            chk.check('vmbus: UNLOAD' in h.host.text(), 'host saw UNLOAD after the rescinds')
            integ.no_crash(chk, *h.procs())
        finally:
            h.cleanup()
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
