#!/usr/bin/env python3
"""UNLOAD at guest exit. integ_guest connects, echoes, calls vmbus_unload
and then stays alive (no VMBus connection) until the driver lets it go.
While it is still running, the host must have seen UNLOAD (its log) and
dropped the connection (`hvsim ctl channels`: not connected, no GPADL,
the echo channel back to unoffered). From 3.0 on the guest sends UNLOAD; at
2.4 the message does not exist for our guest (spec 6.7: Linux and we send
it only from 3.0), so the host must not see one there."""
import os
import sys

import integ


def run(chk, tmp, ver, want_unload):
    sync = os.path.join(tmp, ver)
    os.mkdir(sync)
    hv = integ.Hvsim(['--timeout', integ.scaled(30), '--hyperv-version', ver, '--echo', 1,
                      '--memory', '64M', '--', integ.prog('INTEG_GUEST'), 'unload',
                      '--sync', sync], tmp)
    tag = 'host %s' % ver
    try:
        got = hv.wait_line(r'^\[vm0\] RESULT ', integ.scaled(15))
        if not chk.check(got is not None, '%s: guest unloaded' % tag):
            return
        res = integ.results([got[1].string[len('[vm0] '):]])[0]
        chk.check(res['unload'] == 0 and res['fails'] == 0,
                  '%s: vmbus_unload returned 0 after a good echo' % tag, res)
        info = hv.vm_info('vm0') or {}
        chk.check(info.get('state') == 'running' and info.get('pid'),
                  '%s: the guest process is still running' % tag, info.get('state'))
        saw = hv.wait_line(r'\[vm0\] vmbus: UNLOAD$', integ.scaled(2) if want_unload else 0.3)
        chk.check((saw is not None) == want_unload,
                  '%s: host log %s "vmbus: UNLOAD"' % (tag, 'shows' if want_unload
                                                          else 'has no'))
        rc, js = hv.ctl('channels', 'vm0')
        js = js or {}
        if want_unload:
            chk.check(js.get('connected') is False and js.get('gpadls') == 0 and
                      [c['state'] for c in js.get('channels', [])] == ['unoffered'],
                      '%s: host dropped the connection: not connected, no GPADL, '
                      'offer withdrawn' % tag,
                      (js.get('connected'), js.get('gpadls'), js.get('channels')))
        else:
            chk.check(js.get('gpadls') == 0 and
                      [c['state'] for c in js.get('channels', [])] == ['offered'],
                      '%s: channel closed and GPADL torn down before the exit' % tag,
                      (js.get('gpadls'), js.get('channels')))
        open(os.path.join(sync, 'go'), 'w').close()
        chk.check(hv.wait(integ.scaled(15)) == 0, '%s: guest and hvsim exit 0' % tag)
        integ.no_crash(chk, hv)
    finally:
        hv.cleanup()


def main():
    chk = integ.Checks('integ_unload')
    with integ.TempDir() as tmp:
        for ver, want in (('5.3', True), ('3.0', True), ('2.4', False)):
            run(chk, tmp, ver, want)
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
