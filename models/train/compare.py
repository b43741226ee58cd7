#!/usr/bin/python3
"""Equal-CPU-time training runs of several recipes from the same start, to
pick the recipe that learns fastest per CPU hour (models/README.md keeps the
table this prints).

Every recipe starts from --init, runs for --cpu-hours of its own CPU time with
one thread (two one-thread runs side by side use 2 cores better than one
two-thread run: measured 280 vs 230 crops/s at 64 px), is scored on the dev
photos every --eval-minutes of CPU time, and keeps its state in OUT/<name>.
Runs already finished are not run again.

  nice -n 19 /usr/bin/python3 models/train/compare.py --out ~/.cache/gst-colorize/compare \\
      --pack128 ~/.cache/gst-colorize/train128.npy --pack160 ~/.cache/gst-colorize/train160.npy \\
      --dev ../shared/data/photos/dev --cpu-hours 0.5
  /usr/bin/python3 models/train/compare.py --out ~/.cache/gst-colorize/compare --table
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

NEW_OPT = ["--input-scale", "0.01", "--lr", "4.2e-4", "--wd", "1e-3"]
# the chosen crops: 80 % of the steps 64 px at the element's scale, then whole at 128
PROG64 = ["--crop", "native", "--sizes", "64:0.8,128:0.2", "--net-size", "128"]
# how often each source is drawn: 60 or 85 % of the crops from the general scenes
MIX60 = ["--mix", "utkface:0.15,catsdogs:0.1,flowers128:0.15,*:0.6"]
MIX85 = ["--mix", "utkface:0.05,catsdogs:0.05,flowers128:0.05,*:0.85"]
# name -> (pack, arguments, what it tests)
RECIPES = {
    "first": ("160", ["--crop", "zoom", "--sizes", "128", "--input-scale", "1", "--lr", "5e-4",
                      "--wd", "1e-4"],
              "the first model's recipe: zoomed crops of 160 at 128, input L-50, lr 5e-4"),
    "whole128": ("128", ["--crop", "native", "--sizes", "128"] + NEW_OPT,
                 "whole photos at 128, input (L-50)/100, lr 4.2e-4, wd 1e-3"),
    "prog64": ("128", PROG64 + NEW_OPT,
               "as whole128, 80 % of steps on 64 px crops at the element's scale, then whole at 128"),
    "prog64s": ("128", ["--crop", "scale", "--sizes", "64:0.8,128:0.2", "--net-size", "128"] + NEW_OPT,
                "as prog64, but the 64 px steps see the whole photo shrunk to 64"),
    "prog64hi": ("128", PROG64 + ["--input-scale", "0.01", "--lr", "1e-3", "--wd", "1e-3"],
                 "as prog64 with lr 1e-3"),
    "prog64mix60": ("128", PROG64 + MIX60 + NEW_OPT,
                    "as prog64, 60 % of the crops from the general scenes (ImageNet, NIPS'17, BSDS, "
                    "Debian...; 22 % of the photos), 40 % from faces, pets and flowers"),
    "prog64mix85": ("128", PROG64 + MIX85 + NEW_OPT,
                    "as prog64mix60, 85 % general scenes"),
    "prog64lam75": ("128", PROG64 + ["--rebalance", "0.75"] + NEW_OPT,
                    "as prog64, milder class rebalancing (lambda 0.75 instead of the paper's 0.5)"),
    "prog64jit": ("160", PROG64 + ["--crop", "jitter", "--jitter", "1.25", "--rebalance", "0.75"] + NEW_OPT,
                  "as prog64lam75, each batch at a random magnification 0.8-1.25x of the element's "
                  "view, cut anywhere in the 160 px square"),
    "prog64jitrot": ("160", PROG64 + ["--crop", "jitter", "--jitter", "1.25", "--rotate", "10",
                                      "--rebalance", "0.75"] + NEW_OPT,
                     "as prog64jit, each batch also turned by up to 10 degrees"),
    "prog64mix85p": ("128", PROG64 + MIX85 + ["--prior", "pack", "--rebalance", "0.75"] + NEW_OPT,
                     "as prog64lam75, 85 % of the crops from the general scenes, the loss weighted by "
                     "the whole pack's prior (as without the mix)"),
    "prog64mix60p": ("128", PROG64 + MIX60 + ["--prior", "pack", "--rebalance", "0.75"] + NEW_OPT,
                     "as prog64mix85p, 60 % general scenes"),
    "prog64mix85p90": ("128", PROG64 + MIX85 + ["--prior", "pack", "--rebalance", "0.9"] + NEW_OPT,
                       "as prog64mix85p, milder rebalancing (lambda 0.9)"),
    "prog64wide375": ("128", PROG64 + ["--width", "0.375", "--rebalance", "0.75"] + NEW_OPT,
                      "as prog64lam75 on a network of 3/8 of the paper's widths (2.2x the work per "
                      "crop), started from --init widened by widen.py"),
    "whole128lam75": ("128", ["--crop", "native", "--sizes", "128", "--rebalance", "0.75"] + NEW_OPT,
                      "as prog64lam75 but every step on the whole 128 px square (no 64 px phase)"),
    "whole128mix85p": ("128", ["--crop", "native", "--sizes", "128"] + MIX85 +
                       ["--prior", "pack", "--rebalance", "0.75"] + NEW_OPT,
                       "as whole128lam75, 85 % of the crops from the general scenes, the loss weighted "
                       "by the whole pack's prior"),
    "prog64lam90": ("128", PROG64 + ["--rebalance", "0.9"] + NEW_OPT,
                    "as prog64, milder still (lambda 0.9)"),
    "prog64lam75b128": ("128", PROG64 + ["--rebalance", "0.75"] + NEW_OPT + ["--batch", "128", "--warmup", "75"],
                        "as prog64lam75 in batches of 128 (the GPU run's), the same learning rate and "
                        "warm-up in crops"),
    "prog64lam75lr1": ("128", PROG64 + ["--rebalance", "0.75"] + NEW_OPT + ["--lr", "1e-4"],
                       "as prog64lam75 at a quarter of the learning rate (1e-4)"),
    "prog64lam75ab4": ("128", PROG64 + ["--rebalance", "0.75", "--ab-loss", "4", "--ab-rebalance", "0.1"] + NEW_OPT,
                       "as prog64lam75, plus 4 x the decoded error (the distance of the annealed mean at "
                       "T 0.8 from the truth, rebalanced with lambda 0.1: one minus the AuC the issue scores)"),
    "prog64lam75ab16": ("128", PROG64 + ["--rebalance", "0.75", "--ab-loss", "16", "--ab-rebalance", "0.1"] + NEW_OPT,
                        "as prog64lam75ab4 with 16 x the decoded error (its gradient about twice the "
                        "cross-entropy's on the default model)"),
    "prog64lam75ab4w75": ("128", PROG64 + ["--rebalance", "0.75", "--ab-loss", "4", "--ab-rebalance", "0.75"] + NEW_OPT,
                          "as prog64lam75ab4, the decoded error rebalanced as the cross-entropy is (lambda 0.75)"),
    "prog64lam75gray": ("128", PROG64 + ["--rebalance", "0.75", "--gray-aug", "0.5"] + NEW_OPT,
                        "as prog64lam75, half the crops given another gray than their L* (a random mix "
                        "of R, G, B about the eye's, a random tone curve: train.py --gray-aug 0.5)"),
    "prog64lam75gray100": ("128", PROG64 + ["--rebalance", "0.75", "--gray-aug", "1"] + NEW_OPT,
                           "as prog64lam75gray, every crop given another gray (--gray-aug 1)"),
}


def run(a, name):
    pack, args, _ = RECIPES[name]
    out = os.path.join(a.out, name)
    status = os.path.join(out, "status.json")
    if os.path.exists(status) and json.load(open(status)).get("finished"):
        return None
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, os.path.join(HERE, "train.py"), "--pack", a.pack128 if pack == "128" else a.pack160,
           "--out", out, "--init", a.init, "--cpu-hours", str(a.cpu_hours), "--steps", "10000000",
           "--threads", "1", "--dev", a.dev, "--eval-minutes", str(a.eval_minutes),
           "--batch", "32", "--warmup", "300", "--seed", str(a.seed)] + args
    log = open(os.path.join(out, "train.log"), "a")
    return subprocess.Popen(cmd, stdout=log, stderr=log, env=dict(os.environ, OMP_NUM_THREADS="1"))


def table(a):
    print("| recipe | what | steps | crops | CPU h | dev loss | dev AuC | dev rebalanced AuC | chroma |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (_, _, what) in RECIPES.items():
        curve = os.path.join(a.out, name, "curve.jsonl")
        if not os.path.exists(curve):
            continue
        pts = [json.loads(line) for line in open(curve)]
        last = pts[-1]
        loss = " → ".join(f"{p['dev_loss']:.3f}" for p in pts if "dev_loss" in p)
        trail = " → ".join(f"{p['auc_rebalanced']:.2f}" for p in pts)
        print(f"| {name} | {what} | {last['step']} | {last['crops']:,} | {last['cpu_hours']:.2f} | "
              f"{loss} | {last['auc']:.2f} | {trail} | {last['chroma']:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pack128")
    ap.add_argument("--pack160")
    ap.add_argument("--dev")
    ap.add_argument("--init", default=os.path.join(ROOT, "models", "default.safetensors"))
    ap.add_argument("--cpu-hours", type=float, default=0.25)
    ap.add_argument("--eval-minutes", type=float, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="train.py --seed of every arm (their batches)")
    ap.add_argument("--only", nargs="*", default=list(RECIPES))
    ap.add_argument("--table", action="store_true", help="only print the table of finished runs")
    a = ap.parse_args()
    if not a.table:
        pending, running = list(a.only), []
        while pending or running:
            running = [p for p in running if p.poll() is None]
            while pending and len(running) < a.jobs:
                p = run(a, pending.pop(0))
                if p:
                    running.append(p)
            time.sleep(5)
    table(a)


if __name__ == "__main__":
    main()
