#!/usr/bin/env python3
"""1,000 open/close cycles of the echo channel (one echoed packet each)
leak nothing on either side. The guest (integ_guest cycles) reports its
page allocator, leaked-page counters, fds and private RSS before and after;
the driver measures hvsim the same way at the same two moments (the guest
waits for DIR/go and DIR/finish): no GPADL left in the host, no fd growth,
private RSS (RssAnon) within a small bound on both sides."""
import os
import sys

import integ

CYCLES = int(os.environ.get('INTEG_CYCLES', '1000'))
# Private memory growth allowed over the whole run (kB). Generous for the
# sanitizer flavour's allocator; a per-cycle leak of even 64 bytes would
# be 64 kB, a leaked ring 32 MB.
RSS_BOUND_KB = 1024 if integ.SCALE <= 1 else 4096


def host_snapshot(hv, chk, when):
    rc, js = hv.ctl('channels', 'vm0')
    fds = integ.settled_fds(hv.pid)
    rss = integ.proc_status(hv.pid, 'RssAnon')
    gpadls = js.get('gpadls') if js else None
    chans = js.get('channels', []) if js else []
    chk.log('host %s: %d fds, RssAnon %d kB, %s GPADLs, channel states %s'
            % (when, len(fds), rss, gpadls, [c['state'] for c in chans]))
    return fds, rss, gpadls, chans


def main():
    chk = integ.Checks('integ_cycles')
    # Sanitizer flavour: freed blocks sit in ASan's quarantine (256 MB by
    # default) and would read as growth; a small one keeps RSS meaningful
    # (LeakSanitizer still checks both sides at exit).
    os.environ['ASAN_OPTIONS'] = ':'.join(
        x for x in (os.environ.get('ASAN_OPTIONS', ''), 'quarantine_size_mb=1') if x)
    with integ.TempDir() as tmp:
        sync = os.path.join(tmp, 'sync')
        os.mkdir(sync)
        hv = integ.Hvsim(['--timeout', integ.scaled(120), '--vcpus', 2, '--memory', '64M',
                          '--echo', 1, '--', integ.prog('INTEG_GUEST'), 'cycles',
                          '--count', CYCLES, '--sync', sync], tmp)
        try:
            got = hv.wait_line(r'^\[vm0\] integ: ready', integ.scaled(20))
            if not chk.check(got is not None, 'guest warmed up and ready'):
                return chk.finish()
            fds0, rss0, gp0, ch0 = host_snapshot(hv, chk, 'before')
            chk.check(gp0 == 0, 'host: no GPADL before the cycles', gp0)
            open(os.path.join(sync, 'go'), 'w').close()
            got = hv.wait_line(r'^\[vm0\] integ: cycles done', integ.scaled(90))
            if not chk.check(got is not None, '%d cycles finished in time' % CYCLES):
                return chk.finish()
            fds1, rss1, gp1, ch1 = host_snapshot(hv, chk, 'after')
            open(os.path.join(sync, 'finish'), 'w').close()
            rc = hv.wait(integ.scaled(20))

            res = integ.results(integ.vm_lines(hv, 'vm0'))
            if not chk.check(len(res) == 1, 'guest printed its RESULT'):
                return chk.finish()
            r = res[0]
            chk.log('guest: %.1f us per open/echo/close cycle' % r['us_per_cycle'])
            chk.check(r['done'] == CYCLES and r['first_error'] == 0,
                      'guest: all %d cycles opened, echoed and closed' % CYCLES,
                      (r['done'], r['first_error']))
            chk.check(r['pages_used_after'] == r['pages_used_before'],
                      'guest: page allocator usage back to the start',
                      (r['pages_used_before'], r['pages_used_after']))
            chk.check(r['pages_leaked_after'] == 0 and r['bus_leaked_after'] == 0
                      and r['gpadl_failures_after'] == 0,
                      'guest: no page leaked, no GPADL failure',
                      (r['pages_leaked_after'], r['bus_leaked_after'],
                       r['gpadl_failures_after']))
            chk.check(r['fds_after'] == r['fds_before'], 'guest: no fd growth',
                      (r['fds_before'], r['fds_after']))
            grow = r['rss_anon_kb_after'] - r['rss_anon_kb_before']
            chk.check(grow <= RSS_BOUND_KB, 'guest: private RSS grew %d kB (bound %d)'
                      % (grow, RSS_BOUND_KB))
            chk.log('guest: touched guest RAM (RssShmem) %d -> %d kB: the next-fit '
                    'page allocator walks RAM; bounded by its size'
                    % (r['rss_shmem_kb_before'], r['rss_shmem_kb_after']))
            chk.check(r['bus']['bad_messages'] == 0, 'guest: no message dropped')

            chk.check(gp1 == 0, 'host: no GPADL left after the cycles', gp1)
            chk.check(all(c['state'] == 'offered' for c in ch1) and len(ch1) == 1,
                      'host: the channel is closed (offered again)', ch1)
            chk.check(len(fds1) == len(fds0), 'host: no fd growth (%d -> %d)'
                      % (len(fds0), len(fds1)), sorted(set(fds1.values()) ^ set(fds0.values())))
            hgrow = rss1 - rss0
            chk.check(hgrow <= RSS_BOUND_KB, 'host: private RSS grew %d kB (bound %d)'
                      % (hgrow, RSS_BOUND_KB))
            chk.check(rc == 0, 'guest and hvsim exit 0', rc)
            integ.no_crash(chk, hv)
        finally:
            hv.cleanup()
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
