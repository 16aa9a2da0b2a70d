#!/usr/bin/env python3
"""A hostile guest against hvsim. Six VMs run hostile_guest, one kind of
attack each (malformed messages, messages for channels in the wrong
state, GPADLs with PFNs outside guest RAM or bad range descriptions,
refused hypercalls, corrupted ring indices, a GPA-direct packet beyond
RAM and rings whose pages alias, and on a SCSI controller: bad VSTOR
requests and SRB buffers, reads whose replies are never taken before a
close, and an exit with reads in flight); a seventh VM echoes all along.
hvsim must log a clear line for every attack (checked by regex), count it
(control socket), keep each attacker's other channels working (the
attacker checks an echo after each attack) and the bystander VM
undisturbed, and never crash (ASan+UBSan flavour)."""
import os
import sys

import integ

PHASES = {
    'messages': [r'vmbus: short message \(4 bytes\)',
                 r'vmbus: unknown or host-only message type 153 \(8 bytes\)',
                 r'vmbus: unknown or host-only message type 1 \(196 bytes\)',
                 r'vmbus: message type 5 too short \(12 < 148 bytes\)'],
    'states': [r'vmbus: OPENCHANNEL relid 999 openid 7 refused: unknown relid',
               r'vmbus: OPENCHANNEL relid 2 openid 7 refused: unknown ring GPADL',
               r'vmbus: CLOSECHANNEL for relid 2 that is not open',
               r'vmbus: RELID_RELEASED for relid 2 not rescinded',
               r'vmbus: GPADL_BODY for unknown handle 0xb0d1 dropped',
               r'vmbus: GPADL_TEARDOWN 0x7ea2 relid 2 refused: unknown handle'],
    'gpadls': [r'vmbus: GPADL 0xbad1 \(relid 2\) refused: PFN outside guest RAM',
               r'vmbus: GPADL 0xbad2 \(relid 2\) refused: PFN outside guest RAM',
               r'vmbus: GPADL 0xbad3 \(relid 2\) refused: PFN 0',
               r'vmbus: GPADL 0xbad4 \(relid 2\) refused: byte_offset >= 4096',
               r'vmbus: GPADL 0xbad5 \(relid 2\) refused: not enough PFNs for byte_count',
               r'vmbus: GPADL_HEADER 0xbad6 relid 2 refused: rangecount 0',
               r'vmbus: GPADL 0xbad7 \(relid 2\) refused: byte_count 0'],
    'hypercalls': [r'HvPostMessage payload size 241 > 240',
                   r'HvPostMessage message type 0x0'],
    'rings': [r'vmbus: h-rings/echo2: channel broken: bad write_index in incoming ring',
              r'vmbus: h-rings/echo3: channel broken: bad read_index in outgoing ring',
              r'vmbus: h-rings/echo4: GPA-direct PFN 0x[0-9a-f]+ outside guest RAM',
              r'GPA window of 8 pages refused: PFN listed twice \(0x[0-9a-f]+\)',
              r'vmbus: OPENCHANNEL relid 2 openid \d+ refused: ring pages cannot be mapped'],
    'storage': [r'storvsp \S+: EXECUTE_SRB before END_INITIALIZATION',
                r'storvsp \S+: VSTOR packet of 8 bytes \(12\.\.64\)',
                r'storvsp \S+: operation 99 not supported',
                r'storvsp \S+: SRB refused: cdb_length \(0, 16\)',
                r'storvsp \S+: SRB refused: data_transfer_length beyond the described '
                r'buffer \(8192, 4096\)',
                r'storvsp \S+: SRB buffer unusable'],
}
# h-storage walks away without unloading, two floods of reads in flight
# (one closed with its replies parked, one left behind at its exit)


def main():
    chk = integ.Checks('integ_hostile_guest')
    with integ.TempDir() as tmp:
        stop = os.path.join(tmp, 'stop-bystander')
        args = ['--timeout', integ.scaled(90)]
        for ph in PHASES:
            args += ['--name', 'h-' + ph, '--echo', 5, '--vcpus', 1, '--memory', '64M',
                     '--guest', '%s %s --sync %s' % (integ.prog('INTEG_HOSTILE'), ph, tmp)]
            if ph == 'storage':
                args += ['--disk', os.path.join(tmp, 'h.img') + ',create,size=1M']
            args += ['--vm']
        args += ['--name', 'bystander', '--echo', 1, '--vcpus', 1, '--memory', '64M',
                 '--guest', '%s echoloop --progress-ms 50 --until %s'
                 % (integ.prog('INTEG_GUEST'), stop)]
        hv = integ.Hvsim(args, tmp)
        try:
            m = hv.wait_line(r'^\[bystander\] integ: echo rounds=(\d+) fails=0', integ.scaled(20))
            chk.check(m is not None, 'bystander VM echoing')
            for ph in PHASES:
                got = hv.wait_line(r'^\[h-%s\] RESULT (.*)$' % ph, integ.scaled(30))
                if not chk.check(got is not None, 'h-%s: attacks done' % ph):
                    continue
                res = integ.results([got[1].string])[0]
                chk.check(res['fails'] == 0, 'h-%s: host answered every attack as expected '
                          'and still echoed after each' % ph, res)
            # hvsim's log (its stderr) is read apart from the guests' lines
            # (its stdout): wait for each line rather than look once.
            for ph, rxs in PHASES.items():
                for rx in rxs:
                    full = r'hvsim: warning: \[h-%s\] guest error: %s' % (ph, rx)
                    chk.check(hv.wait_line(full, integ.scaled(5)) is not None,
                              'h-%s: host log /%s/' % (ph, rx))

            chans = {}
            for ph in PHASES:
                rc, js = hv.ctl('channels', 'h-' + ph)
                chans[ph] = js or {}
            _, lst = hv.ctl('list')
            part = {v['name']: v.get('partition', {}) for v in (lst or {}).get('vms', [])}
            chk.check(chans['messages'].get('msgs_bad', 0) >= 4 and
                      chans['states'].get('msgs_bad', 0) >= 6 and
                      chans['gpadls'].get('msgs_bad', 0) >= 7,
                      'host counted the bad messages per VM',
                      [chans[p].get('msgs_bad') for p in ('messages', 'states', 'gpadls')])
            chk.check(chans['gpadls'].get('gpadls') == 1,
                      'h-gpadls: no refused GPADL was kept (only relid 1\'s ring)',
                      chans['gpadls'].get('gpadls'))
            _, dk = hv.ctl('disks', 'h-storage')
            ctl = ((dk or {}).get('storage', {}).get('controllers') or [{}])[0]
            chk.check(ctl.get('bad_packets', 0) >= 3 and ctl.get('bad_srbs', 0) >= 2 and
                      ctl.get('gpa_faults', 0) >= 1,
                      'h-storage: the controller counted the bad packets, SRBs and buffers',
                      [ctl.get(k) for k in ('bad_packets', 'bad_srbs', 'gpa_faults')])
            chk.check(part.get('h-hypercalls', {}).get('hc_errors', 0) >= 2,
                      'h-hypercalls: hypercall errors counted', part.get('h-hypercalls'))
            st = {c['relid']: (c['state'], c['proto_errors'])
                  for c in chans['rings'].get('channels', [])}
            chk.check(st.get(1) == ('open', 0) and st.get(3, ('', 0))[0] == 'broken' and
                      st.get(4, ('', 0))[0] == 'broken' and st[3][1] >= 1 and st[4][1] >= 1
                      and st.get(5, ('', 0))[1] >= 1,
                      'h-rings: relids 3 and 4 broken, 5 counted, 1 untouched', st)

            m0 = hv.wait_line(r'^\[bystander\] integ: echo rounds=(\d+) fails=0',
                              integ.scaled(5), start=len(hv.lines))
            m1 = m0 and hv.wait_line(r'^\[bystander\] integ: echo rounds=(\d+) fails=0',
                                     integ.scaled(5), start=m0[0] + 1)
            chk.check(m1 and int(m1[1].group(1)) > int(m0[1].group(1)),
                      'bystander still echoing after every attack')
            open(os.path.join(tmp, 'finish'), 'w').close()
            for ph in PHASES:
                chk.check(hv.wait_line(r'\[h-%s\] guest pid \d+ exited with status 0' % ph,
                                       integ.scaled(20)) is not None,
                          'h-%s: unloads and exits 0' % ph)
            open(stop, 'w').close()
            rc = hv.wait(integ.scaled(20))
            chk.check(rc == 0, 'hvsim and all seven guests exit 0', rc)
            res = integ.results(integ.vm_lines(hv, 'bystander'))
            chk.check(res and res[0]['fails'] == 0 and res[0]['rounds'] > 0,
                      'bystander: every round trip ok',
                      res and (res[0]['rounds'], res[0]['fails']))
            integ.no_crash(chk, hv)
        finally:
            hv.cleanup()
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
