"""Soft encoding, class rebalancing and the rebalanced loss of Zhang et al. (2016), sec. 2.2."""
import numpy as np
import torch
import torch.nn.functional as F

import eccv16

SIGMA = 5.0
K_NEAREST = 5
LAMBDA = 0.5


def nearest_bins(ab, bins):
    """ab (M, 2), bins (313, 2) -> index of the nearest bin, (M,) int64."""
    return torch.cdist(ab, bins).argmin(1)


def soft_encode(ab, bins, k=K_NEAREST, sigma=SIGMA):
    """ab (M, 2) -> (indices (M, k), weights (M, k)) of the k nearest bins.

    Weights are a Gaussian of the distance, normalised to sum to 1 per pixel.
    """
    d2 = torch.cdist(ab, bins).pow(2)
    dk, ik = d2.topk(k, dim=1, largest=False)
    # relative to the nearest: the same weights, no underflow far from the bins
    wk = torch.exp(-(dk - dk[:, :1]) / (2 * sigma * sigma))
    return ik, wk / wk.sum(1, keepdim=True)


def smooth_prior(p, bins, sigma=SIGMA):
    """Gaussian-smooth a distribution over the bins in ab space; sums to 1."""
    d2 = torch.cdist(bins, bins).pow(2)
    g = torch.exp(-d2 / (2 * sigma * sigma))
    s = g @ p
    return s / s.sum()


def rebalance_weights(prior, bins, lam=LAMBDA, sigma=SIGMA):
    """w ~ ((1-lam) p~ + lam/Q)^-1 with E_p~[w] = 1; prior (313,) un-smoothed."""
    p = smooth_prior(prior.double(), bins.double(), sigma)
    w = 1.0 / ((1 - lam) * p + lam / len(p))
    return (w / (p * w).sum()).float()


def bin_counts(pack, bins, photos=None, chunk=256):
    """How many pixels at 1/4 size have q as nearest bin, over the photos (indices;
    None: all) of a pack (N, S, S, 3) uint8; float64 (313,)."""
    from eccv16 import srgb_to_lab
    photos = np.arange(len(pack)) if photos is None else np.asarray(photos)
    counts = torch.zeros(len(bins), dtype=torch.float64)
    for i in range(0, len(photos), chunk):
        x = torch.from_numpy(np.array(pack[photos[i:i + chunk]])).permute(0, 3, 1, 2).float() / 255
        ab = F.avg_pool2d(srgb_to_lab(x)[:, 1:], 4)
        idx = nearest_bins(ab.permute(0, 2, 3, 1).reshape(-1, 2), bins)
        counts += torch.bincount(idx, minlength=len(bins)).double()
    return counts


def empirical_prior(pack, bins, chunk=256):
    """Share of pixels whose nearest bin is q, over a pack (N, S, S, 3) uint8 at 1/4 size."""
    counts = bin_counts(pack, bins, chunk=chunk)
    return (counts / counts.sum()).float()


def rebalanced_loss(logits, ab, bins, weights):
    """Mean over pixels of w(nearest bin) * CE(soft encoding, softmax(logits)).

    logits (N, 313, h, w), ab (N, 2, h, w) true ab at the same resolution.
    """
    q = logits.shape[1]
    logp = F.log_softmax(logits, 1).permute(0, 2, 3, 1).reshape(-1, q)
    ab = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    ik, wk = soft_encode(ab, bins)
    ce = -(wk * logp.gather(1, ik)).sum(1)
    return (ce * weights[ik[:, 0]]).mean()


class SoftEncodingTable:
    """soft_encode() precomputed on a 1-unit grid of ab, looked up by rounding.

    The soft encoding depends on ab alone, so the per-pixel search over all
    313 bins (the costliest part of the loss) becomes a table lookup.  The
    grid spans a, b in [-128, 127], beyond the sRGB gamut (|a|, |b| < 110);
    rounding moves ab by at most 0.71, against sigma = 5 of the encoding.
    """
    LO, N = -128, 256

    def __init__(self, bins, weights=None):
        g = torch.arange(self.LO, self.LO + self.N, dtype=torch.float32)
        grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        self.ik, self.wk = soft_encode(grid, bins.float().cpu())   # (N*N, k)
        # weight of each grid point's nearest bin, for the rebalancing
        self.wpix = None if weights is None else weights.cpu()[self.ik[:, 0]]

    def keys(self, ab):
        """ab (..., 2, h, w) -> int64 keys (..., h, w) into the table."""
        q = (ab.round() - self.LO).clamp(0, self.N - 1).long()
        return q[..., 0, :, :] * self.N + q[..., 1, :, :]

    def ab(self, keys):
        """keys (N, h, w) -> the ab (N, 2, h, w) float32 they were made from (rounded)."""
        return torch.stack((keys // self.N, keys % self.N), 1).float() + self.LO


class _SoftCrossEntropy(torch.autograd.Function):
    """Mean of wpix * CE(soft target, softmax(z)) over pixels; its gradient
    w.r.t. z is wpix * (softmax(z) - target) / M, made in one pass."""

    @staticmethod
    def forward(ctx, z, ik, wk, wpix):
        lse = z.logsumexp(1, keepdim=True)
        ce = lse[:, 0] - (wk * z.gather(1, ik)).sum(1)
        ctx.save_for_backward(z, lse, ik, wk, wpix)
        return (ce * wpix).mean()

    @staticmethod
    def backward(ctx, g):
        z, lse, ik, wk, wpix = ctx.saved_tensors
        grad = (z - lse).exp_()
        grad.scatter_add_(1, ik, -wk)
        grad.mul_((wpix * (g / wpix.numel())).unsqueeze(1))
        return grad, None, None, None


def table_loss(logits, keys, table):
    """rebalanced_loss() with the soft encoding looked up by keys (N, h, w)
    of table.  logits (N, 313, h, w) float32."""
    ik = table.ik[keys].permute(0, 3, 1, 2)          # (N, k, h, w)
    wk = table.wk[keys].permute(0, 3, 1, 2)
    return _SoftCrossEntropy.apply(logits, ik, wk, table.wpix[keys])


AUC_MAX_ERR = 150.0     # the paper's AuC integrates over thresholds 0..150


def decoded_error(logits, keys, table, bins, temperature, weights):
    """Mean over pixels of w * min(|annealed mean - true ab|, 150) / 150.

    The paper's AuC, the share of pixels within t of the truth integrated over
    t = 0..150, is 1 - E[min(err, 150)] / 150 (up to its trapezoids on the
    integer thresholds), and its rebalanced AuC is the same with each pixel
    weighted by 1 / p(its true bin).  This is that loss, made differentiable,
    through the decoding the element runs: ab = softmax(z / T) . bins.
    logits (N, 313, h, w); keys (N, h, w) into table; weights (table.N ** 2,)
    one per key, e.g. rebalance_weights() of the key's nearest bin."""
    ab = eccv16.annealed_mean(logits.float(), bins.float().to(logits.device), temperature)
    err = ((ab - table.ab(keys)).pow(2).sum(1) + 1e-6).sqrt().clamp(max=AUC_MAX_ERR)
    return (weights[keys] * err).mean() / AUC_MAX_ERR
