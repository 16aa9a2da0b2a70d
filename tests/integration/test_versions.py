#!/usr/bin/env python3
"""Version matrix: hvsim answering as every host generation, the reference
guest (hvguest --json --echo) connecting to it. 1.1 and newer must connect
at the expected version and echo on both echo devices; 0.13 (WS2008) must
fail cleanly: a clear message, a non-zero status that is not a signal, in
bounded time, with no sanitizer report on either side."""
import sys
import time

import integ

# host generation -> version the guest must end up with (the guest asks
# for 5.3 at most, so a 6.0 host is met at 5.3)
MATRIX = [('1.1', '1.1'), ('2.4', '2.4'), ('3.0', '3.0'), ('4.0', '4.0'),
          ('4.1', '4.1'), ('5.0', '5.0'), ('5.1', '5.1'), ('5.2', '5.2'),
          ('5.3', '5.3'), ('6.0', '5.3')]
ROUNDS = 20


def run(chk, tmp, host_ver):
    hv = integ.Hvsim(['--timeout', integ.scaled(30), '--hyperv-version', host_ver,
                      '--vcpus', 2, '--memory', '64M', '--echo', 2,
                      '--', integ.prog('INTEG_HVGUEST'), '--json', '--echo', ROUNDS,
                      '--ring', 16384], tmp, echo=False)
    t0 = time.monotonic()
    rc = hv.wait(integ.scaled(45))
    dt = time.monotonic() - t0
    if rc is None:
        hv.cleanup()
    return hv, rc, dt


def main():
    chk = integ.Checks('integ_versions')
    with integ.TempDir() as tmp:
        for host_ver, want in MATRIX:
            hv, rc, dt = run(chk, tmp, host_ver)
            tag = 'host %s' % host_ver
            chk.log('%s: exit %s in %.2f s' % (tag, rc, dt))
            chk.check(rc == 0, '%s: hvguest and hvsim exit 0' % tag, rc)
            js = None
            try:
                js = integ.json_block(integ.vm_lines(hv, 'vm0'))
            except ValueError as e:
                chk.check(False, '%s: guest JSON parses' % tag, e)
            if js is None:
                chk.check(False, '%s: guest printed its JSON listing' % tag)
                integ.out(hv.text())
                continue
            chk.check(js.get('version') == want, '%s: guest negotiated %s' % (tag, want),
                      js.get('version'))
            chk.check('connected, version %s' % want in hv.text('err'),
                      '%s: host logged the connection at %s' % (tag, want))
            echo = js.get('echo', [])
            chk.check(len(echo) == 2 and all(e['ok'] == ROUNDS and e['failed'] == 0
                                             and e['protocol_errors'] == 0 for e in echo),
                      '%s: %d echo round trips ok on both devices' % (tag, ROUNDS), echo)
            chk.check(js.get('unload') == 0 and js.get('leaked_pages') == 0
                      and js.get('bad_messages') == 0,
                      '%s: clean unload, nothing leaked or dropped' % tag,
                      {k: js.get(k) for k in ('unload', 'leaked_pages', 'bad_messages')})
            unload = '[vm0] vmbus: UNLOAD' in hv.text('err')
            chk.check(unload == (want >= '3.0'), '%s: UNLOAD at guest exit %s'
                      % (tag, 'seen (3.0+)' if want >= '3.0' else 'not sent (before 3.0)'))
            integ.no_crash(chk, hv)

        # WS2008 (0.13): the guest supports 1.1 and newer only.
        hv, rc, dt = run(chk, tmp, '0.13')
        chk.log('host 0.13: exit %s in %.2f s' % (rc, dt))
        chk.check(rc is not None, 'host 0.13: ends in bounded time (no hang)')
        chk.check(rc is not None and 0 < rc < 128,
                  'host 0.13: non-zero exit status, not a signal', rc)
        err = hv.text()
        chk.check('the host accepted no version' in err and 'connect failed: -95' in err,
                  'host 0.13: guest says clearly that no version was accepted (-EOPNOTSUPP)')
        chk.check('version 1.1 refused' in err, 'host 0.13: host logged refusing 1.1')
        chk.check('VM done, status %s' % rc in err, 'host 0.13: host ended the VM normally')
        integ.no_crash(chk, hv)
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
