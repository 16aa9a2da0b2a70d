#!/usr/bin/env python3
"""tests/storvsc/test_hvsim_e2e.py - StorVSC end to end through hvsim.

  test_hvsim_e2e.py HVSIM GUEST workload
      hvsim --disk IMG,create,size=16M -- storvsc_e2e ...: the random
      read/write/flush/discard workload of test_e2e.c, but with hvsim as
      the host (its --disk parser, storage set-up and event loop); the
      guest's final model must equal the image file byte for byte.

  test_hvsim_e2e.py HVSIM GUEST durability
      The crash test. hvsim --disk IMG,...,backend=crash keeps every write
      in host memory until a flush (SYNCHRONIZE CACHE) makes it durable.
      The guest runs the workload, flushes, records its model, prints
      DURABLE, makes more writes it never flushes (each block stamped with
      a magic and its LBA), prints UNFLUSHED; then this script kills hvsim
      with SIGKILL. Every block of the image must be the durable model's
      or one of the stamped unflushed writes (the cache may have written
      some back: allowed). And some unflushed writes must be gone, or the
      back end did not simulate the loss (the page cache of a raw image
      would keep them all) and the test could not see a missing flush.
      Run for several seeds and both image back-end paths (uring/threads).

Exit status 0 on success, 1 on a failed check, 77 if a program is missing.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BS = 512
MAGIC = b"E2E-UNFLUSHED-1\0"
SCALE = max(1, int(os.environ.get("VMBUS_TEST_TIME_SCALE", "1") or 1))


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def hvsim_cmd(hvsim, tmp, disk, guest_args):
    return [hvsim, "--control", os.path.join(tmp, "c.sock"),
            "--ic", "off", "--disk", disk, "--"] + guest_args


def workload(hvsim, guest, tmp):
    for i, (backend, extra) in enumerate([("uring", []),
                                          ("threads", ["--queues", "1"])]):
        img = os.path.join(tmp, "w%d.img" % i)
        model = os.path.join(tmp, "w%d.model" % i)
        cmd = hvsim_cmd(hvsim, tmp, "%s,create,size=16M,backend=%s" %
                        (img, backend),
                        [guest, "--ops", "1500", "--qd", "32", "--seed",
                         str(7 + i), "--max-size", "2M", "--model", model,
                         "--time-limit", str(40 * SCALE)] + extra)
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60 * SCALE)
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0 or "storvsc_e2e: OK" not in out:
            print(out)
            fail("hvsim/storvsc_e2e (%s) exit %d" % (backend, p.returncode))
        with open(img, "rb") as a, open(model, "rb") as b:
            ia, mb = a.read(), b.read()
        if len(ia) != 16 << 20 or ia != mb:
            fail("%s: image and guest model differ" % backend)
        print("workload %s: image == model (%d bytes)" % (backend, len(ia)))


def durability_once(hvsim, guest, tmp, seed, unflushed):
    img = os.path.join(tmp, "d%d.img" % seed)
    model = os.path.join(tmp, "d%d.model" % seed)
    cmd = hvsim_cmd(hvsim, tmp, "%s,create,size=8M,backend=crash" % img,
                    [guest, "--ops", "800", "--qd", "16", "--seed",
                     str(seed), "--max-size", "256K", "--model", model,
                     "--durability", str(unflushed),
                     "--time-limit", str(40 * SCALE)])
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    lines, durable, ready, stamped = [], False, False, 0
    deadline = time.monotonic() + 60 * SCALE
    # Read until the guest says its unflushed writes are acknowledged.
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        s = line.decode(errors="replace").rstrip()
        lines.append(s)
        if "storvsc_e2e: DURABLE" in s:
            durable = True
        if "storvsc_e2e: UNFLUSHED" in s:
            ready = True
            stamped = int(s.split()[-2])
            break
    if not (durable and ready):
        p.kill()
        p.wait()
        print("\n".join(lines))
        fail("seed %d: the guest never reached UNFLUSHED" % seed)
    # The power cut: the host process dies with its write cache.
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    # The orphaned guest notices and exits; make sure it is gone.
    time.sleep(0.1)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    with open(img, "rb") as a, open(model, "rb") as b:
        ia, mb = a.read(), b.read()
    if len(ia) != 8 << 20 or len(mb) != len(ia):
        fail("seed %d: image %d bytes, model %d" % (seed, len(ia), len(mb)))
    kept = 0
    for blk in range(len(ia) // BS):
        x = ia[blk * BS:(blk + 1) * BS]
        m = mb[blk * BS:(blk + 1) * BS]
        if x == m:
            if x[:16] == MAGIC:
                fail("seed %d: model holds a stamped block" % seed)
            continue
        if x[:16] == MAGIC and int.from_bytes(x[16:24], "little") == blk:
            kept += 1
            continue
        fail("seed %d: block %d is neither the flushed data nor an "
             "unflushed write (flushed data lost or corrupted)" % (seed, blk))
    print("durability seed %d: every flushed block survived; %d of %d "
          "unflushed block(s) kept" % (seed, kept, stamped))
    return kept, stamped


def durability(hvsim, guest, tmp):
    kept = stamped = 0
    for seed in (1, 2, 3):
        k, n = durability_once(hvsim, guest, tmp, seed, 64)
        kept, stamped = kept + k, stamped + n
    # A back end that kept every acknowledged write without a flush (no
    # volatile cache: the page cache of a raw image) could not catch a
    # missing flush; the crash back end loses what it did not write back.
    if stamped == 0 or kept >= stamped:
        fail("all %d unflushed blocks survived the kill: nothing was lost, "
             "so a missing flush would go unseen" % stamped)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    hvsim, guest, what = sys.argv[1:]
    for prog in (hvsim, guest):
        if not os.access(prog, os.X_OK):
            print("SKIP: %s missing" % prog)
            return 77
    tmp = tempfile.mkdtemp(prefix="storvsc-hvsim-")
    try:
        if what == "workload":
            workload(hvsim, guest, tmp)
        elif what == "durability":
            durability(hvsim, guest, tmp)
        else:
            print(__doc__)
            return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
