#!/usr/bin/python3
"""Pack a folder tree of colour photos into one .npy file of uint8 RGB photos.

Training reads photos thousands of times; decoding JPEGs each time would make a
CPU run data-bound and a GPU upload tree of thousands of files.  Each photo is
resized (area) so its short side is --size, centre-cropped to --size x --size,
and kept unless it is grayscale-ish (mean chroma below --min-chroma, as the
paper's data layer skips gray images).

  /usr/bin/python3 models/train/pack.py ../shared/data/photos/train train160.npy --size 160

--long L keeps more of each photo than its centre square: the long side up to
L pixels (its centre, at the same scale; rounded down to a multiple of 4), so
a 3:2 photo at --size 128 keeps 128 x 192 instead of 128 x 128.  The photos
then lie in the top-left corner of L x L squares, zero beyond their extent,
which is recorded beside the sources (train.py --crop native cuts inside it).

An OUT ending in .npz stores the crops as WebP (--quality) instead of raw
pixels: ~15x smaller, for sending to a GPU machine; train.py reads both.

Each kept photo's source -- its first folder under SRC (imagenet_samples,
utkface, ...) -- is recorded beside the pixels (OUT.sources.json, or inside the
.npz), so that training can set how often each source is drawn (train.py --mix).
"""
import argparse
import glob
import json
import os
import sys

import cv2
import numpy as np


def resize_short(img, size):
    """img resized (area when shrinking) so that its short side is size."""
    h, w = img.shape[:2]
    s = size / min(h, w)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (nw, nh), interpolation=interp)


def square_crop(img, size):
    img = resize_short(img, size)
    nh, nw = img.shape[:2]
    y, x = (nh - size) // 2, (nw - size) // 2
    return img[y:y + size, x:x + size]


def frame_crop(img, size, long):
    """img with its short side resized to size and its long side to at most
    long (the centre kept), both multiples of 4, in the top-left corner of a
    long x long square of zeros; and its (height, width) there."""
    img = resize_short(img, size)
    nh, nw = img.shape[:2]
    eh, ew = min(nh, long) // 4 * 4, min(nw, long) // 4 * 4
    y, x = (nh - eh) // 2, (nw - ew) // 2
    out = np.zeros((long, long, 3), np.uint8)
    out[:eh, :ew] = img[y:y + eh, x:x + ew]
    return out, (eh, ew)


def mean_chroma(rgb):
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--long", type=int, default=0,
                    help="keep the long side up to this many pixels (default: the centre square)")
    ap.add_argument("--min-chroma", type=float, default=3.0)
    ap.add_argument("--quality", type=int, default=85, help="WebP quality for .npz output")
    a = ap.parse_args()
    files = sorted(f for f in glob.glob(os.path.join(a.src, "**", "*"), recursive=True)
                   if f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    if a.long and (a.long < a.size or a.long % 4):
        sys.exit(f"--long {a.long}: must be at least --size {a.size}, a multiple of 4")
    out, source_of, extent, skipped = [], [], [], 0
    for f in files:
        bgr = cv2.imread(f, cv2.IMREAD_COLOR)
        if bgr is None:
            skipped += 1
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if a.long:
            rgb, (h, w) = frame_crop(rgb, a.size, a.long)
        else:
            rgb = square_crop(rgb, a.size)
            h = w = a.size
        if mean_chroma(rgb[:h, :w]) < a.min_chroma:
            skipped += 1
            continue
        out.append(rgb)
        extent.append((h, w))
        rel = os.path.relpath(f, a.src).split(os.sep)
        source_of.append(rel[0] if len(rel) > 1 else "")
    arr = np.stack(out)
    names = sorted(set(source_of))
    index = np.array([names.index(s) for s in source_of], np.int32)
    extra = {"extent": extent} if a.long else {}
    if a.out.endswith(".npz"):
        blobs = [cv2.imencode(".webp", cv2.cvtColor(x, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_WEBP_QUALITY, a.quality])[1].ravel() for x in arr]
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        np.savez(a.out, webp=np.concatenate(blobs), offsets=offsets, size=a.size,
                 source_names=np.array(names), source_index=index,
                 **{k: np.array(v, np.int32) for k, v in extra.items()})
    else:
        np.save(a.out, arr)
        with open(sources_path(a.out), "w") as f:
            json.dump({"names": names, "index": index.tolist(), **extra}, f)
    print(f"{len(files)} files, kept {len(arr)}, skipped {skipped} -> {a.out} {arr.shape}", file=sys.stderr)


def beside(path, suffix):
    """The name of a file kept beside a pack: its name less .npy, plus suffix."""
    return (path[:-4] if path.endswith(".npy") else path) + suffix


def sources_path(path):
    return beside(path, ".sources.json")


def recorded(path):
    """What a pack records beside its pixels: the .npz's arrays, or the
    sources file of a .npy as a dict ({} for a pack made before it had one)."""
    if path.endswith(".npz"):
        return np.load(path)
    try:
        with open(sources_path(path)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def load_sources(path):
    """(names, index): the source of each photo of a pack, photo i from
    names[index[i]]; None for a pack made before sources were recorded."""
    r = recorded(path)
    if path.endswith(".npz"):
        if "source_names" not in r:
            return None
        return [str(n) for n in r["source_names"]], r["source_index"].astype(np.int64)
    if "names" not in r:
        return None
    return r["names"], np.array(r["index"], np.int64)


def load_extents(path):
    """(N, 2) int: each photo's (height, width) in the top-left corner of a
    pack made with --long; None for a pack of whole squares."""
    r = recorded(path)
    return np.array(r["extent"], np.int64) if "extent" in r else None


def load(path):
    """(N, S, S, 3) uint8 RGB from a pack of either kind (with --long, each
    photo within its extent: load_extents)."""
    if not path.endswith(".npz"):
        return np.load(path, mmap_mode="r")
    z = np.load(path)
    webp, off = z["webp"], z["offsets"]
    return np.stack([cv2.cvtColor(cv2.imdecode(webp[off[i]:off[i + 1]], cv2.IMREAD_COLOR),
                                  cv2.COLOR_BGR2RGB) for i in range(len(off) - 1)])


if __name__ == "__main__":
    main()
