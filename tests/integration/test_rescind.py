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

The host is integ_host (hvsim's partition, server and echo VSP) because
hvsim's control socket has no "rescind" command yet."""
import json
import os
import sys
import time

import integ

XACTS = 8
PROMPT = integ.scaled(1.0)   # a wake-up, not a timeout (those are 20 s+)


def channels(h, chk):
    n = len(h.lines)
    h.send('channels')
    got = h.wait_line(r'^host: channels: (.*)$', integ.scaled(10), start=n)
    if not chk.check(got is not None, 'host answers "channels"'):
        return None
    return json.loads(got[1].group(1))


def main():
    chk = integ.Checks('integ_rescind')
    with integ.TempDir() as tmp:
        h = integ.Proc([integ.prog('INTEG_HOST'), '--echo', 2, '--timeout', integ.scaled(60),
                        '--fault', 'withhold_reply:type=6,after=1',
                        '--', integ.prog('INTEG_GUEST'), 'waiters', '--xacts', XACTS,
                        '--rx', '--open-stuck', '--wait-ms', 20000, '--sync', tmp],
                       tag='host')
        try:
            got = h.wait_line(r'^integ: waiting: (\d+) waiter', integ.scaled(20))
            if not chk.check(got is not None, 'guest has its waiters outstanding'):
                return chk.finish()
            chk.check(int(got[1].group(1)) == XACTS + 2, '%d waiters (8 xacts, rx, open)'
                      % (XACTS + 2), got[1].group(1))
            chk.check(h.wait_line(r'fault withhold_reply: type 6 withheld', integ.scaled(5))
                      is not None, 'host withheld the second OPENCHANNEL_RESULT')
            ch = channels(h, chk)
            st = {c['relid']: c['state'] for c in (ch or {}).get('channels', [])}
            chk.check(st == {1: 'open', 2: 'open'}, 'host: both channels open before', st)

            t_r1 = time.monotonic()
            h.send('rescind 1')
            chk.check(h.wait_line(r'integ-raw/1: rescinded', integ.scaled(10)) is not None,
                      'guest logged the rescind of relid 1')
            time.sleep(0.2)
            t_r2 = time.monotonic()
            h.send('rescind 2')
            got = h.wait_line(r'^RESULT ', integ.scaled(30))
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

            chk.check(h.wait_line(r'^integ: rescind work finished', integ.scaled(20))
                      is not None, 'guest finished detach, close and RELID_RELEASED')
            ch = channels(h, chk) or {}
            chk.check(ch.get('channels') == [] and ch.get('gpadls') == 0,
                      'host: both relids released, their GPADLs gone',
                      (ch.get('channels'), ch.get('gpadls')))
            chk.check(ch.get('msgs_bad') == 0, 'host: no bad message from the guest',
                      ch.get('msgs_bad'))
            open(os.path.join(tmp, 'finish'), 'w').close()
            rc = h.wait(integ.scaled(20))
            chk.check(rc == 0, 'guest unloads and exits 0, host exits 0', rc)
            chk.check('vmbus: UNLOAD' in h.text(), 'host saw UNLOAD after the rescinds')
            integ.no_crash(chk, h)
        finally:
            h.cleanup()
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
