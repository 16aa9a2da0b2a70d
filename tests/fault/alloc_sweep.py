#!/usr/bin/env python3
"""Allocation and port failures (issue 9 item 5): the posix port's fault
countdowns swept over a guest's whole life.

For each kind of port call (alloc: zalloc, page: page_alloc, page_free:
page_free refused with -EISCONN, i.e. a page that cannot be made private
again, wait: a wait that returns -ETIMEDOUT early, defer: deferred work
refused, timeout: a wait that times out for real, the port's clock
jumping an hour ahead)
and each phase (connect: attach and open of every device; run: the I/O
and self-tests; unload: close and detach), the reference guest runs under
hvsim with the Nth call of that kind after the phase began failing
(`hvguest --fault KIND:N@PHASE`), or that call and every later one
(`KIND:N+@PHASE`), for N = 1, 2, 3, ... until runs end without the
countdown firing (three in a row: how many calls a run makes varies a
little with its threads' timing). The VM has every device: two echo channels
(opened, echoed), the four integration services, a StorVSC disk
(self-test) and a NetVSC NIC (a test frame).

Each run checks:
- the guest ends within a bound (no hang) with status 0 or 1 (no signal,
  no sanitizer report: the Asan build's LeakSanitizer reports heap leaks
  at exit); status 1 comes with a logged error;
- the countdown fired (the guest's fault-report line: the port's
  ps_fault_hits), except at the end of the sweep;
- a run where something failed (exit 1, or a device that did not attach
  or work) logged an error;
- guest-RAM pages still allocated after everything was freed are exactly
  the pages counted as leaked on purpose (bus, StorVSC, NICs, the
  program's own I/O buffers, pages the port kept after the bus counters
  were read): nothing else leaks, nothing is counted twice;
  the run past the end of the sweep leaks nothing at all and exits 0;
- hvsim logs the VM's end, exits, and has no sanitizer report.

usage: alloc_sweep.py [--kinds K,K] [--phases P,P] [--modes M,M]
                      [--first K] [--stride S] [--persist-stride S]
                      [--quiet-end Q] [--max N] [--start N] [--polled]
                      [--max-version X.Y] [--rescind] [--hotplug] [-v]
  --kinds    default alloc,page,page_free,wait,defer,timeout
  --phases   default connect,run,unload
  --modes    once: only the Nth call fails; persist: the Nth and every
             later one (`KIND:N+`); default once,persist
  --first K  at most K values of N per kind and phase (CI tier); without
             it the sweep runs to its end (long tier)
  --stride S N = 1, 1+S, 1+2S, ... (default 1)
  --persist-stride S  the stride of the persist mode (default: --stride)
  --quiet-end Q  the end of a sweep: Q runs in a row where the countdown
             did not fire (default 3)
  --max N    give up (a failure) past this N (default 2000)
  --start N  the first N (default 1); with --first 1: one run
  --rescind  once the guest has run its I/O, hvsim rescinds the NIC, the
             disk, an echo channel and KVP (the guest stays 0.5 s): their
             detach and close run through the rescind path
  --hotplug  once the guest has run its I/O, hvsim hot-adds a disk, then
             hot-removes the boot disk (the guest stays 0.5 s)
  --max-version X.Y  the newest VMBus version the guest asks for (older
             ones use the interrupt and monitor pages)
  --polled   the guest runs polled (no interrupt threads, waits or
             deferred work: the wait and defer kinds never fire)
  -v         echo every line of both processes

Programs from the environment: INTEG_HVSIM, INTEG_HVGUEST (docs/testing.md).
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'integration'))
import integ  # noqa: E402  (tests/integration/integ.py)

KINDS = ['alloc', 'page', 'page_free', 'wait', 'defer', 'timeout']
PHASES = ['connect', 'run', 'unload']

HVSIM_ARGS = ['--memory', '128M', '--echo', 2, '--ic', 'on', '--net',
              'switch']
GUEST_ARGS = ['--full', '--no-ip', '--echo', 3, '--ring', 16384,
              '--disk-selftest', '--net-selftest', '--stay', '0.01',
              '--kvp-file', 'none']

REPORT_RE = re.compile(r'fault-report: (.*)')
# What a run without a fault prints: every device attached and worked.
# (device, regex)
HEALTHY = [('disk', r'disk0: read check LBA 0\.\.7 ok'),
           ('disk', r'disk0: self-test LBA \S+: write, read back, compare, '
                    r'restore ok'),
           ('nic', r'nic0: sent a broadcast test frame$'),
           ('echo1', r'echo relid 1: 3/3 round trips ok, [^F]*$'),
           ('echo2', r'echo relid 2: 3/3 round trips ok, [^F]*$'),
           ('heartbeat', r'ic: heartbeat negotiated'),
           ('shutdown', r'ic: shutdown negotiated'),
           ('timesync', r'ic: timesync negotiated'),
           ('kvp', r'ic: kvp negotiated'),
           ('unload', r'unloaded \(0\)')]
# What the guest says when something failed (hvguest's own lines and the
# guest core's / drivers' log lines).
ERROR_RE = re.compile(r'fail|FAIL|error|refused|timed out|cannot|no memory|'
                      r'leak', re.I)
GUEST_BOUND = 20    # seconds (x scale) for one guest run (most take 0.2)
QUIET_END = 3       # runs in a row without the countdown firing: the end
RESCIND = (8, 7, 1, 6)  # --rescind: NIC, disk, echo 1, KVP (hvsim's relids)


def parse_report(text):
    m = None
    for line in text.splitlines():
        mm = REPORT_RE.search(line)
        if mm:
            m = mm
    if m is None:
        return None
    w = m.group(1).split()
    return {w[i]: int(w[i + 1]) for i in range(0, len(w) - 1, 2)}


class Sweep:
    def __init__(self, chk, tmp, verbose):
        self.chk = chk
        self.tmp = tmp
        self.verbose = verbose
        self.disk = os.path.join(tmp, 'd.img')
        self.runs = 0
        self.quiet_end = QUIET_END
        self.rescind = False
        self.hotplug = False

    def run(self, kind, phase, n, persist):
        """One VM with --fault kind:n[+]@phase. Returns the fault report
        (None if missing) after recording the run's checks."""
        chk = self.chk
        tag = '%s:%d%s@%s' % (kind, n, '+' if persist else '', phase)
        ls = os.path.join(self.tmp, 'l%d.sock' % self.runs)
        self.runs += 1
        create = '' if os.path.exists(self.disk) else ',create'
        hv = integ.Hvsim(['--listen', ls, '--timeout', integ.scaled(90),
                          '--name', 'f'] + [str(a) for a in HVSIM_ARGS] +
                         ['--disk', self.disk + ',size=16M' + create],
                         self.tmp, echo=self.verbose)
        g = None
        rep = None
        try:
            g = integ.Proc([integ.prog('INTEG_HVGUEST')] +
                           [str(a) for a in GUEST_ARGS] +
                           ['--fault', tag],
                           env={'HVSIM_SOCKET': ls, 'HVSIM_VM_NAME': 'f'},
                           tag='guest', echo=self.verbose)
            if self.rescind:
                # The host takes the NIC, the disk, an echo channel and
                # KVP away while the guest stays: detach and close
                # through the rescind path (deferred work).
                if g.wait_line(r'echo relid 1: ', integ.scaled(GUEST_BOUND)):
                    for relid in RESCIND:
                        hv.ctl('rescind', 'f', relid)
            if self.hotplug:
                # A disk hot-added, then the boot disk hot-removed, while
                # the guest stays: StorVSC's rescan (deferred work),
                # disk discovery and removal under the countdown.
                if g.wait_line(r'echo relid 1: ', integ.scaled(GUEST_BOUND)):
                    hv.ctl('disk-add', 'f', os.path.join(
                        self.tmp, 'e.img') + ',create,size=8M')
                    time.sleep(0.2)
                    hv.ctl('disk-remove', 'f', 0, 0)
            rc = g.wait(integ.scaled(GUEST_BOUND))
            gtext = g.text()
            bad = []
            if rc is None:
                bad.append('no exit within %.0f s' % integ.scaled(GUEST_BOUND))
            elif rc not in (0, 1):
                bad.append('exit status %d' % rc)
            rep = parse_report(gtext)
            if rep is None and rc is not None:
                bad.append('no fault-report line')
            # Something the fault made fail is logged (the port's own
            # "(fault injection)" line does not count).
            missing = [rx for _, rx in HEALTHY
                       if not re.search(rx, gtext, re.M)]
            # One failed call takes down at most one device (a failed
            # attach or I/O does not take the guest down), once the bus
            # is up; the unload may report the leak it caused. Not for
            # timeout: its clock jump ends every wait pending then.
            down = {d for d, rx in HEALTHY
                    if d != 'unload' and not re.search(rx, gtext, re.M)}
            if (not persist and kind != 'timeout' and len(down) > 1 and
                    re.search(r'vmbus: connected', gtext)):
                bad.append('one failure took down %s' % ', '.join(
                    sorted(down)))
            logged = ERROR_RE.search('\n'.join(
                t for t in gtext.splitlines()
                if 'fault-report' not in t and 'fault injection' not in t))
            if (rc == 1 or missing) and rc is not None and not logged:
                bad.append('exit %d, %d device check(s) missing, and no '
                           'logged error' % (rc, len(missing)))
            if rep is not None:
                counted = (rep['bus_leaked'] + rep['storvsc_leaked'] +
                           rep['nic_leaked'] + rep['program_leaked'] +
                           rep['late_port_leaked'])
                if rep['pages_used'] != counted:
                    bad.append('%d page(s) still allocated, %d counted as '
                               'leaked on purpose' % (rep['pages_used'],
                                                      counted))
                if rep['port_leaked'] > rep['pages_used']:
                    bad.append('port leaked more than is allocated')
                if rep['hits'] == 0 and (rc != 0 or rep['pages_used'] or
                                         counted):
                    bad.append('no fault fired, yet exit %s and %d page(s) '
                               'used, %d counted leaked'
                               % (rc, rep['pages_used'], counted))
            m = integ.CRASH_RE.search(gtext)
            if m:
                bad.append('guest: ' + m.group(0))
            if hv.wait_line(r'\[f\] VM done', integ.scaled(15)) is None:
                bad.append('hvsim did not end the VM')
            hrc = hv.wait(integ.scaled(15))
            if hrc is None:
                bad.append('hvsim still running')
            elif hrc != 0:
                bad.append('hvsim exit status %d' % hrc)
            m = integ.CRASH_RE.search(hv.text())
            if m:
                bad.append('hvsim: ' + m.group(0))
            if bad and not self.verbose:
                for t in g.text().splitlines():
                    integ.out('  guest| ' + t)
                for t in hv.text().splitlines()[-40:]:
                    integ.out('  hvsim| ' + t)
            if bad:
                chk.check(False, tag, '; '.join(bad))
            else:
                chk.log('ok: %s: exit %s, hits %d, pages %d (leaked on '
                        'purpose: bus %d storvsc %d nic %d program %d port '
                        '%d)' % (tag, rc, rep['hits'], rep['pages_used'],
                                 rep['bus_leaked'], rep['storvsc_leaked'],
                                 rep['nic_leaked'], rep['program_leaked'],
                                 rep['port_leaked']))
        finally:
            if g:
                g.cleanup()
            hv.cleanup()
        return rep

    def sweep(self, kind, phase, persist, first, stride, nmax, start=1):
        """N = start, start+stride, ...: until the countdown no longer
        fires (the end), `first` runs, or past nmax. Returns (runs, end or
        None)."""
        n, runs, quiet, end = start, 0, 0, None
        while True:
            if first and runs >= first:
                return runs, None
            if n > nmax:
                self.chk.check(False, '%s%s@%s: the sweep ends by N=%d'
                               % (kind, '+' if persist else '', phase,
                                  nmax))
                return runs, None
            rep = self.run(kind, phase, n, persist)
            runs += 1
            if rep is None:
                return runs, None
            # How many calls a run makes varies with timing (interrupt
            # and deferred-work threads): the end is the first of
            # QUIET_END runs in a row where the countdown did not fire.
            if rep['hits'] == 0:
                if quiet == 0:
                    end = n
                quiet += 1
                if quiet >= self.quiet_end:
                    return runs, end
            else:
                quiet = 0
            n += stride


def main(argv):
    kinds, phases = KINDS, PHASES
    first, stride, nmax, verbose = 0, 1, 2000, '-v' in argv
    start, modes, pstride = 1, ['once', 'persist'], None
    quiet_end = QUIET_END
    rescind = hotplug = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == '--kinds':
            kinds = argv[i + 1].split(',')
        elif a == '--phases':
            phases = argv[i + 1].split(',')
        elif a == '--first':
            first = int(argv[i + 1])
        elif a == '--stride':
            stride = int(argv[i + 1])
        elif a == '--max':
            nmax = int(argv[i + 1])
        elif a == '--start':
            start = int(argv[i + 1])
        elif a == '--polled':
            GUEST_ARGS.append('--polled')
            i += 1
            continue
        elif a == '--hotplug':
            hotplug = True
            i += 1
            continue
        elif a == '--rescind':
            rescind = True
            i += 1
            continue
        elif a == '--max-version':
            GUEST_ARGS.extend(['--max-version', argv[i + 1]])
        elif a == '--quiet-end':
            quiet_end = int(argv[i + 1])
        elif a == '--modes':
            modes = argv[i + 1].split(',')
        elif a == '--persist-stride':
            pstride = int(argv[i + 1])
        elif a == '-v':
            i += 1
            continue
        else:
            sys.stderr.write(__doc__)
            return 2
        i += 2
    if (not set(kinds) <= set(KINDS) or not set(phases) <= set(PHASES) or
            not set(modes) <= {'once', 'persist'}):
        sys.stderr.write(__doc__)
        return 2
    chk = integ.Checks('alloc_sweep')
    summary = []
    with integ.TempDir() as tmp:
        sw = Sweep(chk, tmp, verbose)
        sw.quiet_end = max(1, quiet_end)
        sw.rescind = rescind
        sw.hotplug = hotplug
        if rescind or hotplug:
            GUEST_ARGS[GUEST_ARGS.index('--stay') + 1] = '0.5'
        for mode in modes:
            persist = mode == 'persist'
            st = stride if not persist or pstride is None else pstride
            for kind in kinds:
                for phase in phases:
                    what = '%s%s@%s' % (kind, '+' if persist else '', phase)
                    runs, end = sw.sweep(kind, phase, persist, first, st,
                                         nmax, start)
                    summary.append('%s: %d run(s), %s' % (
                        what, runs, 'end at N=%d' % end if end
                        else 'stopped'))
                    if not first:
                        chk.check(end is not None, '%s: the sweep reached '
                                  'its end' % what)
    for s in summary:
        chk.log(s)
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
