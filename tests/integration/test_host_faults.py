#!/usr/bin/env python3
"""A hostile host (hvsim's fault hooks, switched on through the control
socket before the guest attaches) against the guest core: each hostile
input must be rejected with a clear log line, counted, and survived: the
other echo devices keep working, the guest unloads and exits with a
reported status (never a signal), no sanitizer report on either side.

usage: test_host_faults.py [--strict]
--strict also wants a broken ring to fail the waiting round trip with
-EPROTO at once, not after the round trip's own timeout."""
import re
import sys

import integ

RT_MS = 1000       # one echo round trip's bound (port clock: x scale)
CTL_MS = 1000      # the guest core's control-path bound (same clock); a
                   # legitimate open must fit in it even on a loaded machine


def dev(res, relid):
    return next((d for d in res['devices'] if d['relid'] == relid), None)


def healthy(res, relids):
    """Devices in relids echoed every round."""
    return all(dev(res, r) and dev(res, r)['state'] == 'open' and
               dev(res, r)['received'] == res['rounds'] for r in relids)


def ring_case(value, what):
    return dict(
        name='bad_ring_index %s' % what,
        fault=['bad_ring_index', 'on', 'relid=1', 'value=%d' % value],
        host=[r'fault bad_ring_index: f/echo0 write_index 0x[0-9a-f]+ -> 0x[0-9a-f]+'],
        guest=[r'echo/1: host protocol error: bad write index in the receive ring; '
               r'channel broken'],
        exit=1,
        ok=lambda r: (dev(r, 1) and dev(r, 1)['state'] == 'broken' and
                      dev(r, 1)['proto_errors'] >= 1 and r['first_error'] in (-71, -110)
                      and healthy(r, (2, 3)) and r['bus']['leaked_pages'] == 0),
        strict=lambda r: r['first_error'] == -71 and r['first_fail_ms'] < 0.5 * RT_MS,
        unload=0)


CASES = [
    dict(name='malformed_offer short (100 of 196 bytes)',
         fault=['malformed_offer', 'on', 'field=0', 'value=100', 'relid=2'],
         host=[r'fault malformed_offer: relid 2'],
         guest=[r'vmbus: dropped message type 1 len 100: short'],
         exit=0,
         ok=lambda r: (r['bus']['bad_messages'] == 1 and r['bus']['offers'] == 2 and
                       sorted(d['relid'] for d in r['devices']) == [1, 3] and
                       healthy(r, (1, 3))),
         unload=0),
    dict(name='malformed_offer child_relid 0',
         fault=['malformed_offer', 'on', 'field=1', 'value=0', 'relid=2'],
         host=[r'fault malformed_offer: relid 2 sent as 0'],
         guest=[r'vmbus: offer relid 0 rejected: relid out of range'],
         exit=0,
         ok=lambda r: (r['bus']['bad_offers'] == 1 and
                       sorted(d['relid'] for d in r['devices']) == [1, 3] and
                       healthy(r, (1, 3))),
         unload=0),
    dict(name='malformed_offer child_relid 65535',
         fault=['malformed_offer', 'on', 'field=1', 'value=65535', 'relid=3'],
         host=[r'fault malformed_offer: relid 3 sent as 65535'],
         guest=[r'vmbus: offer relid 65535 rejected: relid out of range'],
         exit=0,
         ok=lambda r: (r['bus']['bad_offers'] == 1 and
                       sorted(d['relid'] for d in r['devices']) == [1, 2] and
                       healthy(r, (1, 2))),
         unload=0),
    ring_case(-1, 'write_index = data size'),
    ring_case(-2, 'write_index beyond the data'),
    ring_case(-3, 'write_index unaligned'),
    dict(name='withhold_reply OPENCHANNEL_RESULT',
         fault=['withhold_reply', 'on', 'type=6', 'after=1', 'times=1'],
         host=[r'fault withhold_reply: type 6 withheld'],
         guest=[r'echo/\d: open timed out waiting for OPENCHANNEL_RESULT after \d+ ms '
                r'\(limit \d+ ms\)', r'echo/\d: attach failed \(-110\)'],
         exit=0,
         ok=lambda r: (len(r['devices']) == 2 and
                       healthy(r, [d['relid'] for d in r['devices']])
                       and r['bus']['leaked_pages'] == 0 and r['port']['pages_leaked'] == 0),
         unload=0),
    dict(name='withhold_reply GPADL_CREATED',
         fault=['withhold_reply', 'on', 'type=10', 'after=1', 'times=1'],
         host=[r'fault withhold_reply: type 10 withheld'],
         guest=[r'echo/\d: GPADL 0x[0-9a-f]+ \(8 pages\) creation timed out; its memory '
                r'stays with the host', r'echo/\d: 8 ring pages leaked',
                r'echo/\d: open timed out waiting for GPADL_CREATED \(ring\) after \d+ ms '
                r'\(limit \d+ ms\)'],
         exit=0,
         # the pages the host may own are leaked on purpose, and counted
         ok=lambda r: (len(r['devices']) == 2 and
                       healthy(r, [d['relid'] for d in r['devices']])
                       and r['bus']['leaked_pages'] == 8 and r['bus']['gpadl_failures'] >= 1),
         unload=0),
    dict(name='withhold_reply UNLOAD_RESPONSE',
         fault=['withhold_reply', 'on', 'type=17'],
         host=[r'fault withhold_reply: type 17 withheld'],
         guest=[r'vmbus: UNLOAD not acknowledged \(-110\)'],
         exit=1,
         ok=lambda r: healthy(r, (1, 2, 3)),
         unload=-110),
    dict(name='drop_message VERSION_RESPONSE',
         fault=['drop_message', 'on', 'type=15'],
         host=[],
         guest=[r'vmbus: no VERSION_RESPONSE for 5\.3', r'VMBus connect failed: -110'],
         exit=1, ok=None, unload=None),
    dict(name='storm_interrupts',
         fault=['storm_interrupts', 'on', 'count=5'],
         host=[], guest=[], exit=0,
         ok=lambda r: healthy(r, (1, 2, 3)), unload=0),
    dict(name='withhold_interrupts (3 doorbells)',
         fault=['withhold_interrupts', 'on', 'times=3'],
         host=[], guest=[], exit=0,
         ok=lambda r: healthy(r, (1, 2, 3)), unload=0),
]


def run(chk, case, strict):
    tag = case['name']
    with integ.TempDir() as tmp:
        ls = tmp + '/l.sock'
        hv = integ.Hvsim(['--listen', ls, '--timeout', integ.scaled(60), '--name', 'f',
                          '--echo', 3, '--memory', '64M'], tmp)
        g = None
        try:
            rc, js = hv.ctl('fault', *(case['fault'] + ['vm=f']))
            chk.check(rc == 0 and js and js.get('ok'), '%s: hook switched on' % tag, js)
            g = integ.Proc([integ.prog('INTEG_GUEST'), 'echo', '--count', 4,
                            '--payload', 200, '--timeout-ms', CTL_MS, '--rt-ms', RT_MS],
                           env={'HVSIM_SOCKET': ls, 'HVSIM_VM_NAME': 'f'}, tag='guest')
            grc = g.wait(integ.scaled(40))
            chk.check(grc == case['exit'], '%s: guest exits %d (a reported status)'
                      % (tag, case['exit']), grc)
            gtext = g.text()
            for rx in case['guest']:
                chk.check(re.search(rx, gtext), '%s: guest logs /%s/' % (tag, rx))
            res = integ.results(g.text('out').splitlines())
            if case['ok']:
                if chk.check(res, '%s: guest reported' % tag):
                    r = res[0]
                    chk.check(case['ok'](r), '%s: rejected, counted, other devices fine'
                              % tag, r)
                    if strict and case.get('strict'):
                        chk.check(case['strict'](r), '%s: the waiting round trip fails '
                                  'with -EPROTO at once' % tag,
                                  (r['first_error'], r['first_fail_ms']))
            if case['unload'] is not None:
                chk.check(re.search(r'^integ: unload %d$' % case['unload'], gtext, re.M),
                          '%s: unload returned %d' % (tag, case['unload']))
            hv.wait_line(r'\[f\] VM done', integ.scaled(10))
            for rx in case['host']:
                chk.check(re.search(rx, hv.text()), '%s: host logs /%s/' % (tag, rx))
            hv.wait(integ.scaled(10))
            integ.no_crash(chk, hv, g)
        finally:
            if g:
                g.cleanup()
            hv.cleanup()


def main():
    strict = '--strict' in sys.argv[1:]
    chk = integ.Checks('integ_host_faults' + ('_strict' if strict else ''))
    for case in CASES:
        if strict and not case.get('strict'):
            continue
        chk.log('--- ' + case['name'])
        run(chk, case, strict)
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
