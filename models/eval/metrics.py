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
