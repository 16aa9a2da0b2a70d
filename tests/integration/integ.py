"""Shared helpers of the end-to-end test drivers (Python 3 stdlib only).

A driver starts the host (hvsim, or integ_host) and guests as separate
processes, follows their output line by line, talks to hvsim through its
control socket (`hvsim ctl`), reads /proc of both sides, and records
checks. Every wait is bounded and scaled by VMBUS_TEST_TIME_SCALE.

Programs come from the environment (CTest sets them; see docs/testing.md):
  INTEG_HVSIM, INTEG_HVGUEST, INTEG_GUEST, INTEG_HOST, INTEG_HOSTILE
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

_out_lock = threading.Lock()


def out(text):
    """One whole line to stdout (reader threads and checks interleave)."""
    with _out_lock:
        sys.stdout.write(text + '\n')
        sys.stdout.flush()


SCALE = max(1.0, float(os.environ.get('VMBUS_TEST_TIME_SCALE', '1') or 1))

# What a sanitizer or a crash leaves in the output of either side.
CRASH_RE = re.compile(r'ERROR: AddressSanitizer|ERROR: LeakSanitizer|'
                      r'runtime error:|Segmentation fault|core dumped|'
                      r'SUMMARY: UndefinedBehaviorSanitizer')


def prog(var):
    path = os.environ.get(var)
    if not path or not os.path.exists(path):
        sys.stderr.write('integ: %s not set or missing (%r)\n' % (var, path))
        sys.exit(2)
    return path


def scaled(seconds):
    return seconds * SCALE


class Checks:
    """Collects named checks; exit status 1 if any failed."""

    def __init__(self, name):
        self.name = name
        self.failed = []
        self.t0 = time.monotonic()

    def log(self, msg):
        out('[%7.3f] %s' % (time.monotonic() - self.t0, msg))

    def check(self, cond, what, detail=''):
        if cond:
            self.log('ok: ' + what)
        else:
            self.failed.append(what)
            self.log('FAIL: %s%s' % (what, (' (' + str(detail) + ')') if detail != '' else ''))
        return bool(cond)

    def finish(self):
        if self.failed:
            self.log('%s: %d check(s) failed: %s' % (self.name, len(self.failed),
                                                     '; '.join(self.failed)))
            return 1
        self.log('%s: all checks passed' % self.name)
        return 0


class Proc:
    """A child process whose stdout and stderr lines are collected with
    their arrival time (both streams in one list, tagged)."""

    def __init__(self, argv, env=None, echo=True, tag=None):
        self.argv = [str(a) for a in argv]
        self.tag = tag or os.path.basename(self.argv[0])
        self.lines = []          # (time, stream, text)
        self.cv = threading.Condition()
        self.echo = echo
        e = dict(os.environ)
        if env:
            e.update(env)
        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=e, start_new_session=True)
        self.pid = self.p.pid
        self.readers = [threading.Thread(target=self._read, args=(s, n), daemon=True)
                        for s, n in ((self.p.stdout, 'out'), (self.p.stderr, 'err'))]
        for t in self.readers:
            t.start()

    def _read(self, stream, name):
        for raw in iter(stream.readline, b''):
            text = raw.decode('utf-8', 'replace').rstrip('\n')
            with self.cv:
                self.lines.append((time.monotonic(), name, text))
                self.cv.notify_all()
            if self.echo:
                out('  %s %s| %s' % (self.tag, name, text))
        stream.close()

    def text(self, stream=None):
        with self.cv:
            return '\n'.join(t for _, s, t in self.lines if stream in (None, s))

    def wait_line(self, regex, timeout, start=0):
        """First line (index >= start) matching regex, as (index, match);
        None on timeout or if the process ended without it."""
        rx = re.compile(regex)
        end = time.monotonic() + timeout
        i = start
        with self.cv:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][2])
                    if m:
                        return i, m
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    return None
                if self.p.poll() is not None and not any(t.is_alive() for t in self.readers):
                    return None
                self.cv.wait(min(left, 0.1))

    def send(self, line):
        self.p.stdin.write((line + '\n').encode())
        self.p.stdin.flush()

    def wait(self, timeout):
        """Exit status (negative = signal), or None if it did not end in time."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self.readers:
            t.join(timeout=5)
        return rc

    def kill(self, sig=signal.SIGKILL):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def cleanup(self):
        """End the process if still running: SIGTERM (hvsim then ends its
        guests), SIGKILL after a grace period."""
        if self.p.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.p.wait(timeout=scaled(3))
            except subprocess.TimeoutExpired:
                self.kill()
                self.p.wait()
        for t in self.readers:
            t.join(timeout=5)


def vm_lines(proc, vm, stream='out'):
    """The guest lines hvsim forwarded for VM `vm` from the guest's stdout
    (stream 'out'), stderr ('err') or both (None), prefix removed."""
    pre = '[%s] ' % vm
    with proc.cv:
        return [t[len(pre):] for _, s, t in proc.lines
                if t.startswith(pre) and stream in (None, s)]


def results(lines):
    """Every RESULT {json} object in lines (prefix already removed)."""
    out = []
    for t in lines:
        i = t.find('RESULT {')
        if i >= 0:
            out.append(json.loads(t[i + 7:]))
    return out


def json_block(lines):
    """The first multi-line JSON object in lines (hvguest --json)."""
    text, depth, started = [], 0, False
    for t in lines:
        if not started and t.strip() != '{':
            continue
        started = True
        text.append(t)
        depth += t.count('{') - t.count('}')
        if depth == 0:
            break
    return json.loads('\n'.join(text)) if text else None


class Hvsim(Proc):
    """hvsim with its own control socket in a private directory."""

    def __init__(self, args, tmp, echo=True):
        self.hvsim = prog('INTEG_HVSIM')
        self.ctl_path = os.path.join(tmp, 'ctl.sock')
        super().__init__([self.hvsim, '--control', self.ctl_path] + list(args),
                         echo=echo, tag='hvsim')
        # Ready when the control socket answers (its file appears at
        # bind(), a moment before listen()).
        end = time.monotonic() + scaled(10)
        while time.monotonic() < end and self.p.poll() is None:
            if os.path.exists(self.ctl_path) and self.ctl('list')[0] == 0:
                break
            time.sleep(0.01)

    def ctl(self, *args):
        """Run `hvsim ctl ARGS`: (exit status, parsed JSON or None)."""
        r = subprocess.run([self.hvsim, 'ctl', '--control', self.ctl_path,
                            '--timeout', str(scaled(5))] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(20))
        try:
            js = json.loads(r.stdout.decode())
        except ValueError:
            js = None
        return r.returncode, js

    def vm_info(self, name):
        _, js = self.ctl('list')
        for vm in (js or {}).get('vms', []):
            if vm.get('name') == name:
                return vm
        return None


def proc_fds(pid):
    """{fd: link target} of a live process."""
    d = '/proc/%d/fd' % pid
    out = {}
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def settled_fds(pid):
    """proc_fds once two reads 50 ms apart agree: a control-socket client
    that just hung up may still be open in hvsim for a moment."""
    last = proc_fds(pid)
    for _ in range(int(scaled(40))):
        time.sleep(0.05)
        cur = proc_fds(pid)
        if cur == last:
            return cur
        last = cur
    return last


def proc_status(pid, key):
    """Integer field of /proc/PID/status in kB (RssAnon, VmRSS...), or -1."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        return state not in ('Z', 'X')
    except OSError:
        return False


def wait_until(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def no_crash(chk, *procs):
    """No sanitizer report or crash text in any output."""
    for p in procs:
        m = CRASH_RE.search(p.text())
        chk.check(m is None, '%s: no sanitizer report or crash' % p.tag,
                  m.group(0) if m else '')


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix='integ-')
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
