#!/usr/bin/python3
"""Measure a model the way the paper does, through the C engine.

For every colour photo in a folder: L* and the true ab from the photo; the
C engine (cz-predict, the code the element runs) predicts ab from L* at the
given net size and temperature; the script reports AuC and class-rebalanced
AuC over thresholds 0..150 (metrics.py), mean predicted vs true chroma, and
the same for the all-gray prediction (ab = 0).  With --torch it also runs the
PyTorch network on the same weights and reports the largest |ab| difference
between the two engines.

  /usr/bin/python3 models/eval/evaluate.py models/default.safetensors \
      ../shared/data/photos/dev --cz build/models/cz-predict --torch
"""
import argparse
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, os.path.join(HERE, ".."))
import eccv16  # noqa: E402
import metrics  # noqa: E402
from export import load_model, model_temperature  # noqa: E402


# The gray a network is given of a colour photo (--gray): "lstar", the
# photo's own L* (what training sees, and the paper's test); "luma", the L* of
# the 8-bit BT.601 luma code Y' = 0.299 R' + 0.587 G' + 0.114 B' read as a gray
# level, which is what the element gets from a colour video turned GRAY8 by
# videoconvert (or from the Y plane of a YUV one), as the shipped clip was made;
# and two films' grays, the lightness of another mix of linear R, G, B than
# the eye's (0.2126, 0.7152, 0.0722): "ortho", a film blind to red (early,
# orthochromatic stock; rough weights 0, 0.45, 0.55), and "red-filter", a
# panchromatic film behind an orange-red filter, as landscapes were shot to
# darken skies (0.55, 0.40, 0.05).  --gamma G then bends the tone curve:
# L' = 100 (L / 100)^G.
FILM_MIXES = {"ortho": (0.0, 0.45, 0.55), "red-filter": (0.55, 0.40, 0.05)}
GRAYS = ("lstar", "luma") + tuple(FILM_MIXES)


def photo_lab(path, gray="lstar", gamma=1.0):
    """Lab (3, H, W) float32 of a colour photo; with another gray than
    "lstar" the L plane is that gray instead of its own L* (GRAYS), and
    with gamma its tone curve is bent."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read {path}")
    rgb = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None].float() / 255
    lab = eccv16.srgb_to_lab(rgb)[0].numpy()
    if gray == "luma":
        lab[0] = luma_lstar(bgr)
    elif gray in FILM_MIXES:
        lab[0] = mix_lstar(rgb, FILM_MIXES[gray])
    elif gray != "lstar":
        raise ValueError(f"unknown gray {gray!r}: one of {', '.join(GRAYS)}")
    if gamma != 1.0:
        lab[0] = eccv16.bend_tone(torch.from_numpy(lab[0]), gamma).numpy()
    return lab


def gray_lstar(gray):
    """L* (H, W) of gray levels in [0, 1] read as sRGB R = G = B."""
    return eccv16.lightness(eccv16.srgb_to_linear(torch.as_tensor(gray).float())).numpy()


def luma_lstar(bgr):
    """L* (H, W) of the 8-bit BT.601 luma of an 8-bit BGR photo, each code read
    as an sRGB gray level (R = G = B = code), as the element reads GRAY8."""
    rgb = bgr[..., ::-1].astype(np.float64)
    return gray_lstar(np.clip(np.rint(rgb @ np.array([0.299, 0.587, 0.114])), 0, 255) / 255.0)


def mix_lstar(rgb, weights):
    """L* (H, W) of the relative luminance sum(w_c * linear c) of an sRGB
    photo (1, 3, H, W) in [0, 1]: the eye's weights give its own L*."""
    return eccv16.mix_lightness(rgb.double(), weights)[0].float().numpy()


def net_dims(w, h, net_size):
    """Same as cz_colorizer_net_dims()."""
    short, long_ = min(w, h), max(w, h)
    other = int(np.floor(net_size * long_ / short / 8.0 + 0.5)) * 8
    other = min(max(other, net_size), 8 * net_size)
    return (net_size, other) if w <= h else (other, net_size)


def net_input(L, net_size):
    """The network's input for L (H, W), as cz_colorizer_run() makes it:
    resized to the net size, L - 50, (1, 1, nh, nw) float32."""
    h, w = L.shape
    nw, nh = net_dims(w, h, net_size)
    x = torch.from_numpy(L)[None, None].double()
    return F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                         antialias=True).float() - 50.0


def torch_predict(model, L, net_size, temperature, bins):
    """Reference of cz_colorizer_run() in PyTorch: L (H, W) -> ab (2, H, W)."""
    h, w = L.shape
    x = net_input(L, net_size)
    with torch.no_grad():
        ab = eccv16.annealed_mean(model(x), torch.from_numpy(bins), temperature)
        ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
    return ab[0].numpy()


def c_predict(cz, model_path, planes, net_size, temperature, threads, backend="auto",
              precision="auto"):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.raw"), os.path.join(tmp, "out.raw")
        with open(src, "wb") as f:
            for L in planes:
                f.write(struct.pack("<ii", L.shape[1], L.shape[0]))
                f.write(np.ascontiguousarray(L, "<f4").tobytes())
        cmd = [cz, model_path, src, dst, "--net-size", str(net_size),
               "--temperature", str(temperature), "--threads", str(threads),
               "--backend", backend, "--precision", precision]
        # its messages kept, not shown: a failure carries them (CalledProcessError.stderr)
        subprocess.run(cmd, check=True, stderr=subprocess.PIPE)
        out = []
        with open(dst, "rb") as f:
            for L in planes:
                w, h = struct.unpack("<ii", f.read(8))
                assert (h, w) == L.shape
                out.append(np.frombuffer(f.read(8 * w * h), "<f4").reshape(2, h, w))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("photos", help="a folder of colour photos (searched recursively)")
    ap.add_argument("--cz", default="build/models/cz-predict", help="the C engine's cz-predict")
    ap.add_argument("--net-size", type=int, default=0, help="0 = the model's own")
    ap.add_argument("--temperature", type=float, default=0,
                    help="annealed-mean temperature (default: each model's own, as the element runs it)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--backend", default="auto", choices=("auto", "openblas", "onednn"))
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--torch", action="store_true", help="also compare with PyTorch")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--gray", default="lstar", choices=GRAYS,
                    help="the network's gray: the photo's L* (default, as in training), the L* of its "
                         "8-bit BT.601 luma (a colour video turned GRAY8, as the element gets it), or a "
                         "film's (ortho: blind to red; red-filter: behind an orange-red filter)")
    ap.add_argument("--gamma", type=float, default=1.0,
                    help="bend the gray's tone curve: L' = 100 (L / 100)^GAMMA (a film's contrast)")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--against", metavar="MODEL",
                    help="also score MODEL on the same photos and print the difference with a 95 %% "
                         "interval from a paired bootstrap over the photos")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap draws for --against")
    ap.add_argument("--hues", action="store_true",
                    help="also where the colours fail: the clearly coloured pixels by true hue")
    ap.add_argument("--bins", action="store_true",
                    help="also what the rebalanced AuC is made of: the ab bins by how many photos they occur in")
    a = ap.parse_args()

    bins = eccv16.load_bins()
    files = photo_files(a.photos)
    if a.limit:
        files = files[:a.limit]
    labs = [photo_lab(f, a.gray, a.gamma) for f in files]
    model, meta = load_model(a.model)
    net_size, temperature = run_settings(a, meta)

    preds = c_predict(a.cz, a.model, [lab[0] for lab in labs], net_size, temperature, a.threads,
                      a.backend, a.precision)
    ours, gray, hues = metrics.Scores(bins), metrics.Scores(bins), metrics.HueTable()
    max_diff = 0.0
    for lab, ab in zip(labs, preds):
        tb = metrics.nearest_bins(lab[1:].reshape(2, -1).T, bins)
        ours.add(ab, lab[1:], tb)
        if a.hues:
            hues.add(ab, lab[1:])
        gray.add(np.zeros_like(lab[1:]), lab[1:], tb)
        if a.torch:
            ref = torch_predict(model, lab[0], net_size, temperature, bins)
            max_diff = max(max_diff, float(np.abs(ref - ab).max()))
    res = {"model": a.model, "photos": a.photos, "net_size": net_size, "input_gray": a.gray, "gamma": a.gamma,
           "backend": a.backend, "precision": a.precision,
           "temperature": temperature, "c_engine": ours.result(), "gray": gray.result()}
    if a.torch:
        res["max_abs_ab_diff_c_vs_torch"] = max_diff
    g, o = res["gray"], res["c_engine"]
    print(f"{len(files)} photos, net size {net_size}, T {temperature}, gray {a.gray}"
          + (f", gamma {a.gamma:g}" if a.gamma != 1.0 else ""))
    print(f"{'':12s} {'AuC':>7s} {'AuC rebal':>10s} {'chroma':>8s}")
    print(f"{'gray':12s} {g['auc']:7.2f} {g['auc_rebalanced']:10.2f} {g['chroma_pred']:8.2f}")
    print(f"{'C engine':12s} {o['auc']:7.2f} {o['auc_rebalanced']:10.2f} {o['chroma_pred']:8.2f}"
          f"   (true chroma {o['chroma_true']:.2f})")
    if a.torch:
        print(f"max |ab C - ab PyTorch| = {max_diff:.4f}")
    if a.hues:
        res["hues"] = hues.result()
        print(f"pixels of true chroma > {metrics.HUE_MIN_CHROMA:g} by true hue: share, predicted / true chroma, "
              "hue within 45 degrees (predicted chroma > 5)")
        for name, share, ratio, right in res["hues"]:
            print(f"  {name:20s} {share:5.1f} %  {ratio:5.2f}  {right:5.1f} %")
    if a.bins:
        res["bins"] = {"c_engine": metrics.bin_makeup(ours.histograms()),
                       "gray": metrics.bin_makeup(gray.histograms())}
        print("ab bins by the number of photos they occur in: bins, share of the rebalanced weight, "
              "share of the pixels, mean AuC of those bins (C engine, gray)")
        for (label, n, wt, px, auc_c), (*_, auc_g) in zip(res["bins"]["c_engine"], res["bins"]["gray"]):
            print(f"  in {label:>5s} photos: {n:3d} bins {wt:5.1f} %  {px:7.3f} % of pixels  "
                  f"{auc_c:6.2f}  {auc_g:6.2f}")
    if a.against:
        res["against"] = against(a, labs, ours, bins)
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)


def photo_files(folder):
    """The photos (JPEG, PNG) anywhere under folder, sorted."""
    return sorted(f for f in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                  if f.lower().endswith((".jpg", ".jpeg", ".png")))


def run_settings(a, meta):
    """(net size, temperature): as given, else the model file's own."""
    return (a.net_size or int(meta["net_size"]),
            a.temperature or model_temperature(meta))


def against(a, labs, ours, bins):
    """The other model on the same photos (at its own net size and
    temperature unless given), and the difference ours - other with a
    paired-bootstrap 95 % interval."""
    _, meta = load_model(a.against)
    net_size, temperature = run_settings(a, meta)
    other = c_predict(a.cz, a.against, [lab[0] for lab in labs], net_size, temperature, a.threads,
                      a.backend, a.precision)
    scores = metrics.Scores(bins)
    for lab, ab, tb in zip(labs, other, ours.true_bins):
        scores.add(ab, lab[1:], tb)
    diff = metrics.paired_bootstrap(ours.histograms(), scores.histograms(), a.resamples)
    o = scores.result()
    print(f"{'against':12s} {o['auc']:7.2f} {o['auc_rebalanced']:10.2f} {o['chroma_pred']:8.2f}   "
          f"({a.against}, T {temperature})")
    for key, name in (("auc", "AuC"), ("auc_rebalanced", "AuC rebal")):
        d, lo, hi = diff[key]
        print(f"difference {name:>9s} {d:+.2f}  (95 % of {a.resamples} paired bootstrap draws of the "
              f"photos: {lo:+.2f} .. {hi:+.2f})")
    return {"model": a.against, "c_engine": o,
            "difference": {k: {"diff": v[0], "low": v[1], "high": v[2]} for k, v in diff.items()}}


if __name__ == "__main__":
    main()
