#!/usr/bin/env python3
"""echobench - the echo channel end to end (guest core + posix port +
partition ABI + hvsim's echo VSP, two processes), printed beside this
machine's limits measured in the same run by ringbench (bench/ring): the
cache-line round trip and the socketpair round trip and stream rate.

  echobench.py [--build DIR | --hvsim P --guest P --ringbench P]
               [--quick] [--seconds S] [--sizes 64,4096] [--json FILE]

A report, not an assertion: --quick (the CTest smoke test) only checks
that every part runs and every echo is verified."""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def run_ringbench(rb, quick, seconds, sizes):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, 'rb.json')
        cmd = [rb, '--seconds', str(seconds), '--sizes', sizes, '--json', out]
        if quick:
            cmd.insert(1, '--quick')
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=600)
        with open(out) as f:
            return json.load(f)['results']


def run_echo(hvsim, guest, polled, seconds, sizes):
    cmd = [hvsim, '--control', 'none', '--timeout', '300', '--vcpus', '2',
           '--memory', '64M', '--echo', '1', '--', guest, '--seconds', str(seconds),
           '--sizes', sizes]
    if polled:
        cmd.append('--polled')
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    out = r.stdout.decode()
    for line in out.splitlines():
        i = line.find('RESULT {')
        if i >= 0:
            res = json.loads(line[i + 7:])
            if r.returncode != 0 or res.get('error'):
                raise SystemExit('echobench: %s guest failed (exit %d, error %s in %s)\n%s'
                                 % ('polled' if polled else 'interrupt', r.returncode,
                                    res.get('error'), res.get('failed'), r.stderr.decode()))
            return res
    raise SystemExit('echobench: no RESULT from the guest (exit %d)\n%s%s'
                     % (r.returncode, out, r.stderr.decode()))


def fmt_rate(v):
    for unit, div in (('G', 1e9), ('M', 1e6), ('k', 1e3)):
        if v >= div:
            return '%.2f %s' % (v / div, unit)
    return '%.0f' % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--build', help='build directory holding the three programs')
    ap.add_argument('--hvsim')
    ap.add_argument('--guest')
    ap.add_argument('--ringbench')
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--seconds', type=float, default=None)
    ap.add_argument('--sizes', default='64,4096')
    ap.add_argument('--json')
    a = ap.parse_args()
    if a.build:
        a.hvsim = a.hvsim or os.path.join(a.build, 'tools/hvsim/hvsim')
        a.guest = a.guest or os.path.join(a.build, 'bench/echo/echobench_guest')
        a.ringbench = a.ringbench or os.path.join(a.build, 'bench/ring/ringbench')
    if not (a.hvsim and a.guest and a.ringbench):
        ap.error('give --build DIR or all of --hvsim, --guest, --ringbench')
    secs = a.seconds if a.seconds is not None else (0.05 if a.quick else 0.5)

    rb = run_ringbench(a.ringbench, a.quick, secs, a.sizes)
    lim = {}
    for f in rb:
        lim[(f['figure'], f['size'])] = f['value']
    cl = lim.get(('cacheline round trip', 64))
    echo = {m: run_echo(a.hvsim, a.guest, m == 'polled', secs, a.sizes)
            for m in ('polled', 'interrupt')}

    rows = []
    for mode in ('polled', 'interrupt'):
        for f in echo[mode]['figures']:
            s = f['size']
            sp_rr = lim.get(('limit: socketpair rr', s))
            sp_st = lim.get(('limit: socketpair stream', s))
            rows.append(('echo rr %s' % mode, s, f['rr_median_ns'], 'ns',
                         'socketpair rr', sp_rr, 'cacheline rtt', cl))
            rows.append(('echo stream %s' % mode, s, f['stream_msgs_s'], 'msg/s',
                         'socketpair stream', sp_st, None, None))
            rows.append(('echo stream %s bw' % mode, s, f['stream_bytes_s'], 'B/s',
                         None, None, None, None))
    print('echobench: echo channel through hvsim (2 processes) beside ringbench '
          'limits of the same run%s' % (' (quick: noisy)' if a.quick else ''))
    print('%-26s %6s %14s %-6s  %-18s %12s  %-14s %8s' %
          ('figure', 'size', 'value', 'unit', 'limit', 'limit value', 'also', 'value'))
    print('%-26s %6s %14s %-6s  %-18s %12s  %-14s %8s' %
          ('cacheline round trip', 64, '%.0f' % cl if cl else '-', 'ns', '-', '', '', ''))
    for s in a.sizes.split(','):
        s = int(s)
        v = lim.get(('limit: socketpair rr', s))
        print('%-26s %6d %14s %-6s' % ('limit: socketpair rr', s,
                                       '%.0f' % v if v else '-', 'ns'))
        v = lim.get(('limit: socketpair stream', s))
        print('%-26s %6d %14s %-6s' % ('limit: socketpair stream', s,
                                       fmt_rate(v) if v else '-', 'msg/s'))
    for name, size, val, unit, ln, lv, an, av in rows:
        val_s = '%.0f' % val if unit == 'ns' else fmt_rate(val)
        lv_s = ('%.0f' % lv if unit == 'ns' else fmt_rate(lv)) if lv else ''
        ratio = ' (%.1fx)' % (val / lv) if lv else ''
        also = '%.0f' % av if av else ''
        print('%-26s %6d %14s %-6s  %-18s %12s%s  %-14s %8s' %
              (name, size, val_s, unit, ln or '', lv_s, ratio, an or '', also))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'benchmark': 'echobench', 'quick': a.quick, 'seconds': secs,
                       'ringbench': rb, 'echo': echo}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
