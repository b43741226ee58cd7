#!/usr/bin/python3
"""Does a model fit its training photos better than held-out ones?

The training loss (soft-encoded cross-entropy over the 313 bins, targets from
4x4-averaged ab, at the net size the element runs; without class
rebalancing, so that sources with different colours compare) of a model on
--per photos drawn from each source folder of PHOTOS/train and on all of
PHOTOS/dev.  A model that learned its photos by heart scores its training
sources far below the dev photos of the same kind (ImageNet, Flickr scenes);
one that underfits scores them alike.

  /usr/bin/python3 models/eval/source_losses.py models/default.safetensors ../shared/data/photos
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, ".."), os.path.join(HERE, "..", "train")]
import eccv16  # noqa: E402
import evaluate  # noqa: E402
import export  # noqa: E402
import rebalance  # noqa: E402
import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("photos", help="a folder with train/<source>/ and dev/")
    ap.add_argument("--per", type=int, default=120, help="photos drawn from each training source")
    ap.add_argument("--net-size", type=int, default=0, help="default: the model file's")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    model, meta = export.load_model(a.model)
    net_size = a.net_size or int(meta.get("net_size", 128))
    table = rebalance.SoftEncodingTable(torch.from_numpy(eccv16.load_bins()))
    table.wpix = torch.ones(len(table.ik))         # plain cross-entropy
    rng = np.random.default_rng(a.seed)
    sets = [("dev (all)", evaluate.photo_files(os.path.join(a.photos, "dev")))]
    for src in sorted(os.listdir(os.path.join(a.photos, "train"))):
        files = evaluate.photo_files(os.path.join(a.photos, "train", src))
        if files:
            pick = rng.choice(len(files), min(a.per, len(files)), replace=False)
            sets.append((f"train/{src}", [files[i] for i in sorted(pick)]))
    if not sets[0][1]:
        sys.exit(f"{a.photos}/dev: no photos")
    print(f"{a.model}, net size {net_size}, plain cross-entropy (no rebalancing)")
    print("| photos | n | loss (mean ± standard error) |")
    print("|---|---|---|")
    for name, files in sets:
        losses = [train.DevSet.loss(model, evaluate.photo_lab(f), 1.0, net_size, table) for f in files]
        sem = np.std(losses) / np.sqrt(len(losses))
        print(f"| {name} | {len(files)} | {np.mean(losses):.3f} ± {sem:.3f} |", flush=True)


if __name__ == "__main__":
    main()
