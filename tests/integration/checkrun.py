#!/usr/bin/env python3
"""checkrun.py - run one command line (a host with its guest) and check
its exit status AND its output, which CTest cannot do together:

  checkrun.py [--exit N] [--expect REGEX]... [--reject REGEX]...
              [--timeout SECONDS] -- CMD [ARG...]

--exit N      wanted exit status (default 0; 'nonzero' = any of 1..127)
--expect RE   must match some line of stdout+stderr (Python regex)
--reject RE   must match no line
--timeout S   kill the command after S seconds x VMBUS_TEST_TIME_SCALE
Sanitizer reports and crash texts are always rejected."""
import argparse
import re
import subprocess
import sys
import time

import integ


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--exit', default='0')
    ap.add_argument('--expect', action='append', default=[])
    ap.add_argument('--reject', action='append', default=[])
    ap.add_argument('--timeout', type=float, default=60)
    ap.add_argument('cmd', nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ['--'] else a.cmd
    if not cmd:
        ap.error('no command')
    chk = integ.Checks('checkrun')
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=integ.scaled(a.timeout))
        out, rc = r.stdout.decode('utf-8', 'replace'), r.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b'').decode('utf-8', 'replace'), None
    sys.stdout.write(out)
    chk.log('%s: exit %s after %.2f s' % (' '.join(cmd), rc, time.monotonic() - t0))
    chk.check(rc is not None, 'ends within %.0f s' % integ.scaled(a.timeout))
    if a.exit == 'nonzero':
        chk.check(rc is not None and 0 < rc < 128, 'non-zero exit, not a signal', rc)
    else:
        chk.check(rc == int(a.exit), 'exit status %s' % a.exit, rc)
    for rx in a.expect:
        chk.check(re.search(rx, out, re.M), 'output matches /%s/' % rx)
    for rx in a.reject + [integ.CRASH_RE.pattern]:
        m = re.search(rx, out, re.M)
        chk.check(m is None, 'output does not match /%s/' % rx, m.group(0) if m else '')
    return chk.finish()


if __name__ == '__main__':
    sys.exit(main())
