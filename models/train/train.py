#!/usr/bin/python3
"""Train an ECCV16 colorizer as in Zhang, Isola & Efros (2016).

Loss: multinomial cross-entropy over the 313 ab bins against a soft encoding of
the true ab (5 nearest bins, Gaussian sigma 5) at 1/4 of the net input, each
pixel weighted by class rebalancing w ~ ((1-lam) p~ + lam/Q)^-1, lam = 1/2,
p~ the empirical bin prior of the training photos smoothed with sigma 5,
normalised so that E_p~[w] = 1.

Data: a pack made by pack.py (N, S, S, 3) uint8 RGB; each batch takes random
crops of a random scale, flips them and resizes them to --size.

Resumes from OUT/ckpt.pt when it exists; writes it every --ckpt-every steps and
at the end.  Export with models/export.py.

  /usr/bin/python3 models/train/train.py --pack train160.npy --out run1 \
      --width 0.25 --size 128 --steps 20000
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eccv16  # noqa: E402
import pack as packs  # noqa: E402
import rebalance  # noqa: E402


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def random_batch(pack, n, size, rng, device):
    """n random scaled crops, flipped at random, as Lab (n, 3, size, size)."""
    s_full = pack.shape[1]
    crop = int(rng.integers(int(0.6 * s_full), s_full + 1))
    idx = rng.integers(0, len(pack), n)
    ys = rng.integers(0, s_full - crop + 1, n)
    xs = rng.integers(0, s_full - crop + 1, n)
    flips = rng.random(n) < 0.5
    crops = np.empty((n, crop, crop, 3), np.uint8)
    for k in range(n):
        c = pack[idx[k], ys[k]:ys[k] + crop, xs[k]:xs[k] + crop]
        crops[k] = c[:, ::-1] if flips[k] else c
    x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float() / 255.0
    if crop != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=crop > size)
    return eccv16.srgb_to_lab(x.clamp(0, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=0,
                    help="wall-time budget: the schedule ends at --steps or at this many minutes")
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fp32", action="store_true",
                    help="no bf16 autocast (by default on GPUs, and on CPUs with AVX512-BF16 "
                         "or AMX, where it trains about 3x faster)")
    a = ap.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = not a.fp32 and (device == "cuda" or cpu_has_bf16())
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    ckpt_path = os.path.join(a.out, "ckpt.pt")

    pack = packs.load(a.pack)
    bins = torch.from_numpy(eccv16.load_bins()).to(device)
    model = eccv16.ECCV16(eccv16.widths_for(a.width)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=a.wd)
    step, seconds = 0, 0.0

    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, seconds, prior = ck["step"], ck["seconds"], ck["prior"]
        rng = np.random.default_rng(a.seed + step)
        print(f"resumed at step {step}", file=sys.stderr)
    else:
        prior = rebalance.empirical_prior(pack, bins.cpu())
        rng = np.random.default_rng(a.seed)
    weights = rebalance.rebalance_weights(torch.as_tensor(prior), bins.cpu()).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"widths {model.widths}, {n_params} parameters, device {device}, "
          f"bf16 {bf16}, {len(pack)} photos", file=sys.stderr)

    def save():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "seconds": seconds, "prior": prior, "args": vars(a),
                    "widths": model.widths, "photos": len(pack)}, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    model.train()
    t0, running = time.time(), None
    def progress():
        done = step / a.steps
        if a.minutes:
            done = max(done, (seconds + time.time() - t0) / (60 * a.minutes))
        return done

    while progress() < 1.0:
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * progress()))
        for g in opt.param_groups:
            g["lr"] = lr
        lab = random_batch(pack, a.batch, a.size, rng, device)
        ab4 = F.avg_pool2d(lab[:, 1:], 4)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            logits = model(lab[:, :1] - 50.0)
        loss = rebalance.rebalanced_loss(logits.float(), ab4, bins, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            el = seconds + time.time() - t0
            print(f"step {step} loss {running:.4f} lr {lr:.2e} {el:.0f}s", file=sys.stderr, flush=True)
        if step % a.ckpt_every == 0 or progress() >= 1.0:
            seconds += time.time() - t0
            t0 = time.time()
            save()
    json.dump({"step": step, "seconds": seconds}, open(os.path.join(a.out, "done.json"), "w"))


if __name__ == "__main__":
    main()
