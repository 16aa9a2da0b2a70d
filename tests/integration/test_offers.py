#!/usr/bin/env python3
"""Offers arrive and match: two VMs under one hvsim, each running the
reference guest (hvguest --json --stay). While the guests stay connected,
the channel list each guest printed is compared with what the host reports
through the control socket (`hvsim ctl channels VM`): same relids, class
and instance GUIDs, signal connection ids and states. Instance GUIDs must
differ between VMs and be stable per VM name (a second hvsim run with the
same names reports the same ones)."""
import sys

import integ

VMS = [('alpha', 3, '5.3'), ('beta', 1, '2.4')]
ECHO_CLASS = '7a1e6c3d-5b0e-4f5b-9c1e-3d5f7e9a0b21'


def host_channels(hv, vm):
    rc, js = hv.ctl('channels', vm)
    return rc, js


def main():
    chk = integ.Checks('integ_offers')
    stay = integ.scaled(1.5)
    args = ['--timeout', integ.scaled(30)]
    for i, (name, n, ver) in enumerate(VMS):
        if i:
            args.append('--vm')
        args += ['--name', name, '--echo', n, '--hyperv-version', ver, '--vcpus', 2,
                 '--memory', '64M', '--guest',
                 '%s --json --stay %.1f' % (integ.prog('INTEG_HVGUEST'), stay)]
    with integ.TempDir() as tmp:
        hv = integ.Hvsim(args, tmp)
        instances = {}
        try:
            for name, n, ver in VMS:
                got = hv.wait_line(r'^\[%s\]   \],$' % name, integ.scaled(15))
                if not chk.check(got is not None, '%s: guest printed its channel list' % name):
                    continue
                guest = integ.json_block(_listing(hv, name))
                rc, host = host_channels(hv, name)
                chk.check(rc == 0 and host and host.get('ok'),
                          '%s: hvsim ctl channels answers' % name, rc)
                if not host:
                    continue
                chk.check(host.get('connected') is True and host.get('version') == ver,
                          '%s: host says connected at %s' % (name, ver),
                          (host.get('connected'), host.get('version')))
                chk.check(guest['version'] == ver, '%s: guest says %s' % (name, ver),
                          guest['version'])
                g = {c['relid']: c for c in guest['channels']}
                h = {c['relid']: c for c in host['channels']}
                chk.check(len(h) == n and sorted(g) == sorted(h),
                          '%s: same %d relids on both sides' % (name, n),
                          (sorted(g), sorted(h)))
                for relid in sorted(set(g) & set(h)):
                    gc, hc = g[relid], h[relid]
                    same = (gc['class'] == hc['class'] == ECHO_CLASS and
                            gc['instance'] == hc['instance'] and
                            gc['conn_id'] == hc['connection_id'] and
                            gc['sub_channel'] == hc['sub_index'] == 0 and
                            gc['state'] == hc['state'] == 'offered')
                    chk.check(same, '%s relid %d: class, instance, connection id, '
                              'state match' % (name, relid), (gc, hc))
                instances[name] = sorted(c['instance'] for c in host['channels'])
                _, lst = hv.ctl('list')
                vm = [v for v in (lst or {}).get('vms', []) if v['name'] == name]
                chk.check(vm and vm[0]['channels'] == n and vm[0]['version'] == ver,
                          '%s: hvsim ctl list shows %d channels at %s' % (name, n, ver), vm)
            all_inst = [i for v in instances.values() for i in v]
            chk.check(len(all_inst) == len(set(all_inst)),
                      'instance GUIDs differ between devices and VMs', all_inst)
            rc = hv.wait(stay + integ.scaled(20))
            chk.check(rc == 0, 'both guests and hvsim exit 0', rc)
            for name, n, ver in VMS:
                lines = integ.vm_lines(hv, name)
                blk = integ.json_block(lines)
                after = blk.get('after_stay', {}) if blk else {}
                chk.check(len(after.get('channels', [])) == n,
                          '%s: still %d channels after the stay' % (name, n))
            integ.no_crash(chk, hv)
        finally:
            hv.cleanup()

        # Stable per VM name: a host waiting for socket guests, same names.
        args2 = ['--timeout', integ.scaled(30), '--listen', tmp + '/l.sock']
        for i, (name, n, ver) in enumerate(VMS):
            if i:
                args2.append('--vm')
            args2 += ['--name', name, '--echo', n]
        hv2 = integ.Hvsim(args2, tmp)
        try:
            for name, n, ver in VMS:
                rc, host = host_channels(hv2, name)
                inst = sorted(c['instance'] for c in (host or {}).get('channels', []))
                chk.check(inst and inst == instances.get(name),
                          '%s: same instance GUIDs in a second hvsim run' % name,
                          (inst, instances.get(name)))
            hv2.ctl('shutdown')
            chk.check(hv2.wait(integ.scaled(10)) is not None, 'second hvsim shuts down')
        finally:
            hv2.cleanup()
    return chk.finish()


def _listing(hv, name):
    """The guest's first listing: '{', version, channels ... '  ],', closed."""
    lines = integ.vm_lines(hv, name)
    out = []
    for t in lines:
        if not out and t.strip() != '{':
            continue
        out.append(t)
        if t == '  ],':
            out[-1] = '  ]'
            out.append('}')
            break
    return out


if __name__ == '__main__':
    sys.exit(main())
