"""The paper's evaluation metrics (Zhang et al. 2016, sec. 3.1).

AuC: the share of pixels whose predicted ab lies within an L2 threshold t of
the true ab, integrated over t = 0..150 and normalised to 1.  Rebalanced AuC
weights each pixel by 1 / p(q), p the distribution of the true ab bins over
the evaluated set, so that rare colours count as much as common ones.
"""
import numpy as np

THRESHOLDS = np.arange(0, 151, dtype=np.float64)


def nearest_bins(ab, bins):
    """ab (M, 2) -> index of the nearest of the bins (Q, 2), (M,) int."""
    import torch
    b = torch.as_tensor(np.asarray(bins), dtype=torch.float64)
    a = torch.as_tensor(np.asarray(ab), dtype=torch.float64)
    out = [torch.cdist(a[i:i + 65536], b).argmin(1) for i in range(0, len(a), 65536)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def accuracy_curve(err, weights=None):
    """Share of (weighted) pixels with err <= t, for each threshold t."""
    err = np.asarray(err, np.float64)
    w = np.ones_like(err) if weights is None else np.asarray(weights, np.float64)
    order = np.argsort(err)
    cum = np.concatenate([[0.0], np.cumsum(w[order])]) / w.sum()
    return cum[np.searchsorted(err[order], THRESHOLDS, side="right")]


def auc(curve):
    """Area under an accuracy curve over THRESHOLDS, normalised to [0, 1]."""
    c = np.asarray(curve, np.float64)
    return float(((c[1:] + c[:-1]) / 2).sum() / (THRESHOLDS[-1] - THRESHOLDS[0]))


def rebalance_weights(true_bins, n_bins=313):
    """Per-pixel weight 1 / p(bin) with p the bins' share of all pixels."""
    counts = np.bincount(true_bins, minlength=n_bins).astype(np.float64)
    p = counts / counts.sum()
    return 1.0 / p[true_bins]


class Scores:
    """Accumulates pixels of many images; reports AuC and rebalanced AuC."""

    def __init__(self, bins):
        self.bins = bins
        self.err, self.true_bins, self.chroma_pred, self.chroma_true = [], [], [], []

    def add(self, ab_pred, ab_true, true_bins=None):
        """ab_* (2, H, W) arrays on the same grid; true_bins, if known, the
        nearest bin of each true ab (saves recomputing it)."""
        p = ab_pred.reshape(2, -1).T.astype(np.float64)
        t = ab_true.reshape(2, -1).T.astype(np.float64)
        self.err.append(np.hypot(*(p - t).T))
        self.true_bins.append(nearest_bins(t, self.bins) if true_bins is None else true_bins)
        self.chroma_pred.append(np.hypot(*p.T).mean())
        self.chroma_true.append(np.hypot(*t.T).mean())

    def histograms(self):
        """(images, bins, ERR_BINS): image_histogram of each image added."""
        return np.stack([image_histogram(e, tb, len(self.bins)) for e, tb in zip(self.err, self.true_bins)])

    def result(self):
        err = np.concatenate(self.err)
        tb = np.concatenate(self.true_bins)
        return {
            "auc": 100 * auc(accuracy_curve(err)),
            "auc_rebalanced": 100 * auc(accuracy_curve(err, rebalance_weights(tb, len(self.bins)))),
            "chroma_pred": float(np.mean(self.chroma_pred)),
            "chroma_true": float(np.mean(self.chroma_true)),
            "images": len(self.err),
        }


# The same scores from per-image histograms, so that a set of images can be
# resampled (a bootstrap) without keeping or sorting every pixel again.
ERR_BINS = len(THRESHOLDS) + 1      # ceil(err) = 0..150, and 151 for beyond


def image_histogram(err, true_bins, n_bins=313):
    """(n_bins, ERR_BINS) pixel counts of one image: row q = the pixels whose
    true ab is nearest bin q, column k = those with ceil(err) = k.  err <= t
    for an integer t exactly when ceil(err) <= t, so the curves come out as
    accuracy_curve's."""
    k = np.minimum(np.ceil(np.asarray(err, np.float64)), ERR_BINS - 1).astype(np.int64)
    flat = np.asarray(true_bins, np.int64) * ERR_BINS + k
    return np.bincount(flat, minlength=n_bins * ERR_BINS).reshape(n_bins, ERR_BINS).astype(np.int32)


def scores_from_histogram(h):
    """AuC and rebalanced AuC (percent) of the pixels counted in h."""
    h = np.asarray(h, np.float64)
    counts = h.sum(1)
    per_err = h.sum(0)
    curve = np.cumsum(per_err)[:len(THRESHOLDS)] / per_err.sum()
    w = np.zeros_like(counts)
    w[counts > 0] = counts.sum() / counts[counts > 0]
    wsum = (h * w[:, None]).sum(0)
    curve_w = np.cumsum(wsum)[:len(THRESHOLDS)] / wsum.sum()
    return 100 * auc(curve), 100 * auc(curve_w)


def paired_bootstrap(ha, hb, resamples=1000, seed=0):
    """Model A against model B on the same images: ha, hb (images, n_bins,
    ERR_BINS) from image_histogram.  The images are drawn with replacement,
    the same draw for both, and each draw's difference A - B is scored.
    Returns {"auc": (diff, low, high), "auc_rebalanced": (...)}, low..high
    the middle 95 % of the draws' differences."""
    ha, hb = np.asarray(ha, np.float64), np.asarray(hb, np.float64)
    n = len(ha)
    a, b = scores_from_histogram(ha.sum(0)), scores_from_histogram(hb.sum(0))
    rng = np.random.default_rng(seed)
    d = np.empty((resamples, 2))
    for r in range(resamples):
        c = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        sa = scores_from_histogram(np.tensordot(c, ha, axes=1))
        sb = scores_from_histogram(np.tensordot(c, hb, axes=1))
        d[r] = (sa[0] - sb[0], sa[1] - sb[1])
    lo, hi = np.percentile(d, [2.5, 97.5], axis=0)
    return {"auc": (a[0] - b[0], lo[0], hi[0]),
            "auc_rebalanced": (a[1] - b[1], lo[1], hi[1])}


# Where the colours fail: the pixels of clearly coloured truth (chroma >
# HUE_MIN_CHROMA) by the hue of their true colour.
HUE_MIN_CHROMA = 15.0
HUE_SECTORS = (("red", 0, 45), ("orange, yellow", 45, 100), ("yellow-green, green", 100, 160),
               ("cyan", 160, 220), ("blue", 220, 290), ("purple, magenta", 290, 360))


class HueTable:
    """Per sector of true hue (degrees in the ab plane): the share of the
    coloured pixels, predicted / true chroma, and how many have a predicted
    hue within 45 degrees of the true one (with a predicted chroma > 5)."""

    def __init__(self):
        self.acc = np.zeros((len(HUE_SECTORS), 4))

    def add(self, ab_pred, ab_true):
        p = ab_pred.reshape(2, -1).astype(np.float64)
        t = ab_true.reshape(2, -1).astype(np.float64)
        tc, pc = np.hypot(*t), np.hypot(*p)
        th = np.degrees(np.arctan2(t[1], t[0])) % 360
        dh = np.abs((th - np.degrees(np.arctan2(p[1], p[0])) + 180) % 360 - 180)
        right = (dh < 45) & (pc > 5)
        for k, (_, lo, hi) in enumerate(HUE_SECTORS):
            s = (tc > HUE_MIN_CHROMA) & (th >= lo) & (th < hi)
            self.acc[k] += [s.sum(), pc[s].sum(), tc[s].sum(), right[s].sum()]

    def result(self):
        """[(name, share %, chroma ratio, hue right %)], NaN where no pixels."""
        total = self.acc[:, 0].sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return [(name, 100 * n / total, p / t, 100 * r / n)
                    for (name, _, _), (n, p, t, r) in zip(HUE_SECTORS, self.acc)]


# What the rebalanced AuC is made of: weighting each pixel by 1 / p(bin)
# gives every occupied bin the same total weight, so the score is the mean,
# over the bins that occur at all, of each bin's own AuC.  On a few hundred
# photos many bins occur in one photo or two: they weigh as much as the
# bins of skin or sky.
PHOTO_GROUPS = ((1, 1), (2, 2), (3, 5), (6, 20), (21, None))


def bin_aucs(h):
    """h (n_bins, ERR_BINS) pixel counts -> each bin's AuC in percent (NaN
    where the bin has no pixels)."""
    h = np.asarray(h, np.float64)
    n = h.sum(1)
    curves = np.cumsum(h, 1)[:, :len(THRESHOLDS)]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = curves / n[:, None]
    return np.array([100 * auc(row) for row in c])


def bin_makeup(hists):
    """hists (images, n_bins, ERR_BINS) from image_histogram.  The occupied
    bins grouped by how many of the images they occur in: [(label, bins,
    share of the rebalanced weight %, share of the pixels %, mean AuC of
    those bins)]; the weighted mean of the last column by the bins is the
    rebalanced AuC."""
    hists = np.asarray(hists)
    total = hists.sum(0)
    counts = total.sum(1)
    photos = (hists.sum(2) > 0).sum(0)
    aucs = bin_aucs(total)
    occupied = counts > 0
    rows = []
    for lo, hi in PHOTO_GROUPS:
        sel = occupied & (photos >= lo) & ((photos <= hi) if hi else True)
        label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi else f"{lo}+")
        rows.append((label, int(sel.sum()), 100 * sel.sum() / occupied.sum(),
                     100 * counts[sel].sum() / counts.sum(),
                     float(aucs[sel].mean()) if sel.any() else float("nan")))
    return rows
