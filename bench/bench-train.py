#!/usr/bin/python3
"""Training throughput, side by side: a base revision's models/train/train.py
against the working tree's, in one run, on this machine.

Each configuration runs as a whole process for --warm + --measure steps; the
rate is taken between the step lines the trainer prints (every 50 steps), so
start-up (loading the pack, the prior) is not counted.  Pause the background
training first (bench/quiet.sh does).

  bench/quiet.sh /usr/bin/python3 bench/bench-train.py --base a8586cb \
      --pack160 ~/.cache/gst-colorize/train160.npy --pack128 ~/.cache/gst-colorize/train128.npy

--memory-formats compares the working tree's train.py with itself instead, its
activations channels-last against NCHW, at 64 px crops and whole 128 px photos,
each pair run --repeat times alternating (step lines every 10 steps, so
--warm and --measure in tens; any pack of 128 px or more will do: the rate
does not depend on how many photos it holds):

  bench/quiet.sh /usr/bin/python3 bench/bench-train.py --memory-formats --pack128 PACK
"""
import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from cpuinfo import cpu_name  # noqa: E402
TRAIN_PY = os.path.join(ROOT, "models", "train", "train.py")   # the working tree's


def checkout(rev, dest):
    """models/ of a revision, as it was, into dest."""
    tar = subprocess.run(["git", "-C", ROOT, "archive", rev, "models/train", "models/pts_in_hull.csv"],
                         check=True, capture_output=True).stdout
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(dest)
    return os.path.join(dest, "models", "train", "train.py")


def rate(cmd, batch, warm, measure, threads):
    """Crops per second between step `warm` and step `warm + measure`."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    seen = {}
    for line in p.stderr:
        m = re.match(r"step (\d+) ", line)
        if m:
            seen[int(m.group(1))] = time.time()
            if warm + measure in seen:
                break
    p.kill()
    p.wait()
    if warm not in seen or warm + measure not in seen:
        sys.exit(f"no step lines from {' '.join(cmd)}")
    return batch * measure / (seen[warm + measure] - seen[warm])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="git revision of the trainer to compare with")
    ap.add_argument("--pack160", help="pack.py --size 160 (the base recipe's data)")
    ap.add_argument("--memory-formats", action="store_true",
                    help="train.py's --memory-format channels-last against nchw")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--pack128", required=True, help="pack.py --size 128")
    ap.add_argument("--warm", type=int, default=50)
    ap.add_argument("--measure", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    py = sys.executable
    common = ["--batch", str(a.batch), "--threads", str(a.threads), "--steps", "100000"]
    if a.memory_formats:
        return memory_formats(a, py, common)
    if not a.base or not a.pack160:
        ap.error("--base and --pack160 are needed (or --memory-formats)")
    with tempfile.TemporaryDirectory() as tmp:
        base = checkout(a.base, os.path.join(tmp, "base"))
        new = TRAIN_PY
        configs = [
            (f"{a.base} train.py, zoomed crops of 160 -> 128", [py, base, "--pack", a.pack160, "--size", "128"]),
            ("new train.py, same zoomed crops -> 128", [py, new, "--pack", a.pack160, "--crop", "zoom", "--sizes", "128"]),
            ("new train.py, whole photos at 128", [py, new, "--pack", a.pack128, "--crop", "native", "--sizes", "128"]),
            ("new train.py, native-scale crops of 96", [py, new, "--pack", a.pack128, "--crop", "native", "--sizes", "96"]),
            ("new train.py, native-scale crops of 64", [py, new, "--pack", a.pack128, "--crop", "native", "--sizes", "64"]),
        ]
        print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {a.threads} threads, batch {a.batch}, "
              f"steps {a.warm}..{a.warm + a.measure}")
        print(f"{'configuration':48s} {'crops/s':>8s} {'vs base':>8s}")
        first = None
        for i, (name, cmd) in enumerate(configs):
            out = os.path.join(tmp, f"run{i}")
            r = rate(cmd + common + ["--out", out], a.batch, a.warm, a.measure, a.threads)
            first = first or r
            print(f"{name:48s} {r:8.1f} {r / first:7.2f}x", flush=True)


def memory_formats(a, py, common):
    """The tree's train.py, channels-last against NCHW, alternating."""
    new = TRAIN_PY
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {a.threads} threads, batch {a.batch}, "
          f"steps {a.warm}..{a.warm + a.measure}")
    print(f"{'crops':8s} {'try':>3s} {'channels-last':>14s} {'NCHW':>8s} {'NCHW / CL':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (64, 128):
            cmd = [py, new, "--pack", a.pack128, "--crop", "native", "--sizes", str(size),
                   "--log-every", "10"] + common
            for t in range(a.repeat):
                r = {f: rate(cmd + ["--memory-format", f, "--out", os.path.join(tmp, f"{f}{size}{t}")],
                             a.batch, a.warm, a.measure, a.threads) for f in ("channels-last", "nchw")}
                print(f"{size:>3d} px   {t + 1:3d} {r['channels-last']:14.1f} {r['nchw']:8.1f} "
                      f"{r['nchw'] / r['channels-last']:9.2f}x", flush=True)


if __name__ == "__main__":
    main()
