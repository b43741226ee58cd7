#!/usr/bin/python3
"""Rows of gray | coloured by the C engine | original for some photos.

  /usr/bin/python3 models/eval/montage.py models/default.safetensors out.jpg \
      photo1.jpg photo2.jpg ... [--height 192] [--temperature 0.38,0.75]

With several temperatures, one coloured column for each, in that order.
"""
import argparse
import os
import sys

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "train")]
import eccv16  # noqa: E402
import evaluate  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--cz", default="build/models/cz-predict")
    ap.add_argument("--net-size", type=int, default=0)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--temperature", help="annealed-mean temperatures, comma-separated "
                    "(default: the model's own)")
    a = ap.parse_args()
    _, meta = evaluate.load_model(a.model)
    net_size = a.net_size or int(meta["net_size"])
    temps = ([float(t) for t in a.temperature.split(",")] if a.temperature
             else [evaluate.model_temperature(meta)])
    labs = [evaluate.photo_lab(p) for p in a.photos]
    per_t = [evaluate.c_predict(a.cz, a.model, [lab[0] for lab in labs], net_size, t, 0) for t in temps]
    rows = []
    for i, lab in enumerate(labs):
        L = torch.from_numpy(lab[:1])
        tiles = [torch.cat([L, torch.zeros(2, *L.shape[1:])])]
        tiles += [torch.cat([L, torch.from_numpy(preds[i].copy())]) for preds in per_t]
        tiles.append(torch.from_numpy(lab))
        rgb = [eccv16.lab_to_srgb(t[None])[0].permute(1, 2, 0).numpy() for t in tiles]
        h, w = rgb[0].shape[:2]
        size = (round(w * a.height / h), a.height)
        rows.append(np.hstack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in rgb]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    img = (np.clip(np.vstack(rows), 0, 1) * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(a.out, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
