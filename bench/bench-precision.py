#!/usr/bin/python3
"""How far the oneDNN backend's fp32 and bf16 paths (bf16 with and without
Winograd) move the colours from the OpenBLAS float32 reference, on the same
photos: mean, 99.9th percentile and largest |ab difference|, and each
path's AuC and rebalanced AuC.

  /usr/bin/python3 bench/bench-precision.py models/default.safetensors \\
      ../shared/data/photos/dev
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "models", "eval"), os.path.join(ROOT, "models", "train")]
import eccv16  # noqa: E402
import evaluate  # noqa: E402
import metrics  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("photos")
    ap.add_argument("--cz", default=os.path.join(ROOT, "build", "models", "cz-predict"))
    ap.add_argument("--net-size", type=int, default=0, help="0 = the model's own")
    ap.add_argument("--temperature", type=float, default=0, help="0 = the model's own")
    a = ap.parse_args()
    files = evaluate.photo_files(a.photos)
    labs = [evaluate.photo_lab(f) for f in files]
    _, meta = evaluate.load_model(a.model)
    net_size, a.temperature = evaluate.run_settings(a, meta)
    bins = eccv16.load_bins()
    true_bins = [metrics.nearest_bins(lab[1:].reshape(2, -1).T, bins) for lab in labs]
    planes = [lab[0] for lab in labs]

    def run(backend, precision, winograd=True):
        saved = os.environ.pop("CZ_WINOGRAD", None)
        if not winograd:
            os.environ["CZ_WINOGRAD"] = "0"
        try:
            return evaluate.c_predict(a.cz, a.model, planes, net_size, a.temperature, 2, backend,
                                      precision)
        finally:
            os.environ.pop("CZ_WINOGRAD", None)
            if saved is not None:
                os.environ["CZ_WINOGRAD"] = saved

    paths = [("openblas fp32", run("openblas", "fp32")),
             ("onednn fp32", run("onednn", "fp32")),
             ("onednn bf16, Winograd", run("onednn", "bf16")),
             ("onednn bf16, direct", run("onednn", "bf16", winograd=False))]
    ref = paths[0][1]
    print(f"{len(files)} photos, net size {net_size}, T {a.temperature}")
    print(f"{'':24s} {'mean':>7s} {'99.9%':>7s} {'max':>7s} {'AuC':>7s} {'rebal':>7s}")
    for name, preds in paths:
        d = np.concatenate([np.abs(p - r).ravel() for p, r in zip(preds, ref)])
        s = metrics.Scores(bins)
        for lab, ab, tb in zip(labs, preds, true_bins):
            s.add(ab, lab[1:], tb)
        o = s.result()
        print(f"{name:24s} {d.mean():7.4f} {np.percentile(d, 99.9):7.3f} {d.max():7.3f} "
              f"{o['auc']:7.3f} {o['auc_rebalanced']:7.3f}")


if __name__ == "__main__":
    main()
