#!/usr/bin/python3
"""Pack a folder tree of colour photos into one .npy file of square uint8 RGB crops.

Training reads photos thousands of times; decoding JPEGs each time would make a
CPU run data-bound and a GPU upload tree of thousands of files.  Each photo is
resized (area) so its short side is --size, centre-cropped to --size x --size,
and kept unless it is grayscale-ish (mean chroma below --min-chroma, as the
paper's data layer skips gray images).

  /usr/bin/python3 models/train/pack.py ../shared/data/photos/train train160.npy --size 160
"""
import argparse
import glob
import os
import sys

import cv2
import numpy as np


def square_crop(img, size):
    h, w = img.shape[:2]
    s = size / min(h, w)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    y, x = (nh - size) // 2, (nw - size) // 2
    return img[y:y + size, x:x + size]


def mean_chroma(rgb):
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--min-chroma", type=float, default=3.0)
    a = ap.parse_args()
    files = sorted(f for f in glob.glob(os.path.join(a.src, "**", "*"), recursive=True)
                   if f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    out, skipped = [], 0
    for f in files:
        bgr = cv2.imread(f, cv2.IMREAD_COLOR)
        if bgr is None:
            skipped += 1
            continue
        rgb = square_crop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), a.size)
        if mean_chroma(rgb) < a.min_chroma:
            skipped += 1
            continue
        out.append(rgb)
    arr = np.stack(out)
    np.save(a.out, arr)
    print(f"{len(files)} files, kept {len(arr)}, skipped {skipped} -> {a.out} {arr.shape}", file=sys.stderr)


if __name__ == "__main__":
    main()
