#!/usr/bin/python3
"""Score ways of decoding one model's output, on both halves of the photos.

The network runs once per photo (PyTorch, at the model's net size, as the C
engine does: evaluate.torch_predict); every decoding asked for is then scored
on all the photos, on the even-numbered ones (the half that chooses) and on
the odd-numbered ones (the half that checks):

  --temperatures  the annealed mean's temperature (the model file keeps one)
  --prior-bias    softmax(z / T + a * log w): a test-time class rebalancing,
                  w the rebalancing weights of the training prior (--prior:
                  a train.py checkpoint) at --bias-lambda
  --shift         softmax(z / T + s * log(p_to / p_pack)): a label-shift
                  correction from the training pack's colour prior to that of
                  some of its sources (--pack, --shift-to), e.g. the general
                  scenes the element is for
  --mirror        the probabilities averaged with the mirrored photo's
  --ensemble      the probabilities averaged with other models' (same photo)
  --guided        ab upsampled bilinearly, then a guided filter with the
                  photo's L* as guide, radius in ab cells : eps (He et al. 2010)
  --saturation    a gain on the decoded ab (the element's saturation property)

  /usr/bin/python3 models/eval/decoding.py models/default.safetensors ../shared/data/photos/dev \\
      --temperatures 0.65,0.8,1.0 --prior-bias 0,0.3 --prior RUN/ckpt.pt
  /usr/bin/python3 models/eval/decoding.py models/default.safetensors ../shared/data/photos/dev \\
      --shift 0.5,1 --pack ~/.cache/gst-colorize/train/train128.npy --shift-to imagenet_samples,nips17_dev

Only the temperature and the biases (folded into conv8_313's bias) fit in
a model file (the saturation is the element's property); the rest would cost the element a second network pass or a
filter per frame.  Promotion is still judged through the C engine
(evaluate.py --against); at the same settings the two agree.
"""
import argparse
import collections
import os
import sys

import cv2
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import eccv16  # noqa: E402
import evaluate  # noqa: E402
import metrics  # noqa: E402
import pack  # noqa: E402
import rebalance  # noqa: E402
from export import load_model, model_temperature  # noqa: E402


def floats(text):
    return [float(x) for x in text.split(",")]


def guided_filter(guide, p, r, eps):
    """He et al.'s guided filter of p by guide (both float32 2-D), box radius r."""
    def box(x):
        return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)
    mi, mp = box(guide), box(p)
    a = (box(guide * p) - mi * mp) / (box(guide * guide) - mi * mi + eps)
    b = mp - a * mi
    return box(a) * guide + box(b)


def probabilities(logits, T, bias, mirror):
    """Averaged softmax(z / T + bias) over the models (and the mirrored input)."""
    ps = []
    for z in logits:
        ps.append(F.softmax(z[0] / T + bias, 1))
        if mirror:
            ps.append(F.softmax(z[1].flip(3) / T + bias, 1))
    return sum(ps) / len(ps)


def label_shift(pack_path, to, tbins, eps=1e-6):
    """log(p_to / p_pack) over the bins: the smoothed colour priors of the
    pack's photos from the sources named in `to` and of all its photos."""
    sources = pack.load_sources(pack_path)
    if sources is None:
        raise SystemExit(f"{pack_path} records no sources (pack it again with pack.py)")
    names, index = sources
    missing = [n for n in to if n not in names]
    if missing:
        raise SystemExit(f"--shift-to: the pack has no source {', '.join(missing)} (it has {', '.join(names)})")
    rgb = pack.load(pack_path)
    chosen = np.isin(index, [names.index(n) for n in to])
    # each photo's pixels counted once: the chosen ones and the rest
    c_to = rebalance.bin_counts(rgb, tbins, np.flatnonzero(chosen))
    c_all = c_to + rebalance.bin_counts(rgb, tbins, np.flatnonzero(~chosen))

    def smoothed(counts):
        return rebalance.smooth_prior(counts / counts.sum(), tbins.double())
    return (torch.log(smoothed(c_to) + eps) - torch.log(smoothed(c_all) + eps)).float()


# one way of decoding: softmax(z / T + bias) over the model (and the
# ensemble's, the mirrored input's), optionally guided-filtered, times a gain
Variant = collections.namedtuple("Variant", "name T bias mirror ensemble guided gain",
                                 defaults=(False, False, None, 1.0))


def variants(a, logw, shift):
    """The decodings asked for, as Variants."""
    zero = torch.zeros_like(logw)
    out = [Variant(f"T {T} bias {b}", T, b * logw) for T in a.temperatures for b in a.prior_bias]
    out += [Variant(f"T {T} shift {s}", T, s * shift) for T in a.temperatures for s in a.shift]
    for T in a.temperatures:
        if a.mirror:
            out.append(Variant(f"T {T} mirror", T, zero, mirror=True))
        if a.ensemble:
            out.append(Variant(f"T {T} ensemble of {1 + len(a.ensemble)}", T, zero, ensemble=True))
        for g in a.guided:
            r, eps = floats(g.replace(":", ","))
            out.append(Variant(f"T {T} guided r {r:g} eps {eps:g}", T, zero, guided=(r, eps)))
        out += [Variant(f"T {T} saturation {g:g}", T, zero, gain=g) for g in a.saturation]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("photos")
    ap.add_argument("--net-size", type=int, default=0, help="0 = the model's own")
    ap.add_argument("--temperatures", type=floats, default=None, help="default: the model's own")
    ap.add_argument("--prior-bias", type=floats, default=[0.0])
    ap.add_argument("--prior", help="a train.py checkpoint whose training prior --prior-bias uses")
    ap.add_argument("--bias-lambda", type=float, default=0.5)
    ap.add_argument("--shift", type=floats, default=[], help="label-shift strengths (--pack, --shift-to)")
    ap.add_argument("--pack", help="the training pack (pack.py, with its sources) --shift reads")
    ap.add_argument("--shift-to", default="", help="comma-separated sources of the pack: the target prior")
    ap.add_argument("--mirror", action="store_true")
    ap.add_argument("--ensemble", nargs="*", default=[], metavar="MODEL")
    ap.add_argument("--guided", nargs="*", default=[], metavar="R:EPS")
    ap.add_argument("--saturation", type=floats, default=[], help="gains on the decoded ab, comma-separated")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    if any(b != 0 for b in a.prior_bias) and not a.prior:
        ap.error("--prior-bias needs --prior (a train.py checkpoint)")
    if a.shift and not (a.pack and a.shift_to):
        ap.error("--shift needs --pack and --shift-to")
    if a.threads:
        torch.set_num_threads(a.threads)
    model, meta = load_model(a.model)
    others = [load_model(m)[0] for m in a.ensemble]
    net_size = a.net_size or int(meta["net_size"])
    a.temperatures = a.temperatures or [model_temperature(meta)]
    bins = eccv16.load_bins()
    tbins = torch.from_numpy(bins).float()
    logw = torch.zeros(len(bins))
    if a.prior:
        prior = torch.as_tensor(torch.load(a.prior, map_location="cpu", weights_only=False)["prior"])
        logw = torch.log(rebalance.rebalance_weights(prior.double(), tbins.double(), lam=a.bias_lambda))
    shift = label_shift(a.pack, a.shift_to.split(","), tbins) if a.shift else torch.zeros(len(bins))
    todo = variants(a, logw.float(), shift)
    # per variant and half: the summed per-image histograms (metrics.image_histogram) and each
    # image's mean predicted chroma; no pixels are kept
    hist = {(v.name, half): 0 for v in todo for half in ("all", "even", "odd")}
    chroma = {(v.name, half): [] for v in todo for half in ("all", "even", "odd")}
    files = evaluate.photo_files(a.photos)
    files = files[:a.limit] if a.limit else files
    for i, f in enumerate(files):
        lab = evaluate.photo_lab(f)
        true_bins = metrics.nearest_bins(lab[1:].reshape(2, -1).T, bins)
        L = lab[0].astype(np.float32)
        h, w = L.shape
        x = evaluate.net_input(L, net_size)
        with torch.no_grad():
            z = [(m(x), m(x.flip(3)) if a.mirror else None) for m in [model] + others]
            for name, T, bias, mirror, ensemble, guided, gain in todo:
                p = probabilities(z if ensemble else z[:1], T, bias[None, :, None, None], mirror)
                ab = F.interpolate(torch.einsum("bqhw,qc->bchw", p, tbins), size=(h, w),
                                   mode="bilinear", align_corners=False)[0].numpy()
                if guided:
                    r = max(1, int(round(guided[0] * h / p.shape[2])))
                    ab = np.stack([guided_filter(L, c.astype(np.float32), r, guided[1]) for c in ab])
                ab = ab * gain
                err = np.hypot(*(ab - lab[1:]).reshape(2, -1))
                h_img = metrics.image_histogram(err, true_bins, len(bins)).astype(np.int64)
                c_img = float(np.hypot(*ab.reshape(2, -1)).mean())
                for half in ("all", ("even", "odd")[i % 2]):
                    hist[(name, half)] = hist[(name, half)] + h_img
                    chroma[(name, half)].append(c_img)
    print(f"{len(files)} photos at net size {net_size}: AuC / rebalanced AuC / mean chroma")
    print("| decoding | all | even half | odd half |\n|---|---|---|---|")
    for v in todo:
        cells = []
        for half in ("all", "even", "odd"):
            if not chroma[(v.name, half)]:
                cells.append("no photos")
                continue
            auc, auc_rebalanced = metrics.scores_from_histogram(hist[(v.name, half)])
            cells.append(f"{auc:.2f} / {auc_rebalanced:.2f} / {np.mean(chroma[(v.name, half)]):.1f}")
        print(f"| {v.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
