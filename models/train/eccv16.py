"""The ECCV16 colorization network, CIELAB conversion and the 313-bin gamut.

Shared by the trainer, the exporter and the evaluation tool, so that every
script agrees with the C engine (core/) on one definition:

  input  : L - 50, shape (N, 1, H, W), H and W multiples of 8
  output : logits over the 313 ab bins, shape (N, 313, H/4, W/4)

Channel widths are the paper's scaled by `width` (width 1 = the paper's
32M-parameter net).  Batch norm follows the ReLU of the last conv of blocks
1-7, as in the released model.
"""

import csv
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
Q = 313
PAPER_WIDTHS = (64, 128, 256, 512, 512, 512, 512, 256)


def load_bins(path=None):
    """The 313 ab bin centres, (313, 2) float32, in the released model's order."""
    path = path or os.path.join(HERE, "..", "pts_in_hull.csv")
    rows = []
    with open(path) as f:
        for row in csv.reader(f):
            if not row or row[0].startswith("#"):
                continue
            rows.append((float(row[0]), float(row[1])))
    bins = np.array(rows, dtype=np.float32)
    assert bins.shape == (Q, 2), bins.shape
    return bins


def widths_for(width):
    return [max(8, int(round(c * width))) for c in PAPER_WIDTHS]


# (n_convs, stride of last conv, dilation, batch norm at end)
BLOCKS = ((2, 2, 1), (2, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 2), (3, 1, 2), (3, 1, 1))


class ECCV16(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.widths = list(widths)
        layers = []
        cin = 1
        for b, (n, stride, dil) in enumerate(BLOCKS):
            cout = self.widths[b]
            for i in range(n):
                s = stride if i == n - 1 else 1
                layers += [nn.Conv2d(cin, cout, 3, s, dil, dil), nn.ReLU(True)]
                cin = cout
            layers += [nn.BatchNorm2d(cout)]
        c8 = self.widths[7]
        layers += [nn.ConvTranspose2d(cin, c8, 4, 2, 1), nn.ReLU(True),
                   nn.Conv2d(c8, c8, 3, 1, 1), nn.ReLU(True),
                   nn.Conv2d(c8, c8, 3, 1, 1), nn.ReLU(True),
                   nn.Conv2d(c8, Q, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, l_centred):
        layers = list(self.net)
        x = l_centred
        for m in layers[:-1]:
            x = deconv4x4s2(x, m.weight, m.bias) if isinstance(m, nn.ConvTranspose2d) else m(x)
        # the 313 logits in float32 even under autocast: the loss needs them
        # so, and converting bf16 logits costs more than this small GEMM
        with torch.autocast(device_type=x.device.type, enabled=False):
            return layers[-1](x.float())


def random_batch_norm(model):
    """Batch-norm statistics and affine drawn at random, as a trained net has
    them (no two tensors alike), for tests and timing on random weights."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def deconv4x4s2(x, weight, bias):
    """conv_transpose2d(x, weight, bias, stride=2, padding=1) for a 4x4 kernel,
    computed as one 2x2 convolution with 4x the output channels followed by an
    interleave.  Output pixel (2i + py, 2j + px) takes input rows i - 1, i
    (py = 0: kernel rows 3, 1) or i, i + 1 (py = 1: kernel rows 2, 0), and
    likewise for columns; on the input padded by 1, both are a 2x2 window.
    Same result as the transposed convolution, which PyTorch runs 3x slower
    on the CPU (no oneDNN path for it in bf16)."""
    n, _, h, w = x.shape
    cout = weight.shape[1]
    taps = torch.tensor([[3, 1], [2, 0]], device=weight.device)
    # k[(py, px, co), ci, dy, dx] = weight[ci, co, taps[py, dy], taps[px, dx]]
    k = weight[:, :, taps[:, None, :, None], taps[None, :, None, :]]   # (ci, co, py, px, dy, dx)
    k = k.permute(2, 3, 1, 0, 4, 5).reshape(4 * cout, -1, 2, 2)
    y = F.conv2d(F.pad(x, (1, 1, 1, 1)), k)
    y = y.view(n, 2, 2, cout, h + 1, w + 1)
    out = torch.stack([torch.stack([y[:, py, px, :, py:py + h, px:px + w] for px in (0, 1)], -1)
                       for py in (0, 1)], -3)                 # (n, co, h, py, w, px)
    out = out.reshape(n, cout, 2 * h, 2 * w)
    return out + bias.to(out.dtype).view(1, -1, 1, 1)


# --- CIELAB (D65), the same formulas as core/cz-color.c -----------------------
_M = torch.tensor([[0.412453, 0.357580, 0.180423],
                   [0.212671, 0.715160, 0.072169],
                   [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
# the eye's weights of linear R, G, B in relative luminance (the Y row of _M)
EYE = tuple(_M[1].tolist())


def srgb_to_linear(rgb):
    """sRGB-encoded values in [0, 1] -> linear light (any shape)."""
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab_f(t):
    d = 6.0 / 29.0
    return torch.where(t > d ** 3, t.clamp_min(1e-12) ** (1.0 / 3.0), t / (3 * d * d) + 4.0 / 29.0)


def lightness(y):
    """L* of relative luminance y (white 1), any shape."""
    return 116.0 * _lab_f(y) - 16.0


def mix_lightness(rgb, weights, encoded=False):
    """L* (N, H, W) of the gray sum_c w_c c of sRGB photos rgb (N, 3, H, W) in
    [0, 1], weights (N, 3) or (3,): mixed in linear light (a film's or a
    sensor's response; the eye's weights, EYE, give the photo's own L*), or,
    encoded, the gamma-encoded values mixed and the sum read as an sRGB gray
    level (a video's luma)."""
    w = torch.as_tensor(weights, dtype=rgb.dtype, device=rgb.device).expand(rgb.shape[0], 3)
    if encoded:
        return lightness(srgb_to_linear(torch.einsum("nchw,nc->nhw", rgb, w).clamp(0, 1)))
    return lightness(torch.einsum("nchw,nc->nhw", srgb_to_linear(rgb), w).clamp(0, 1))


def bend_tone(L, gamma):
    """L* through the tone curve L' = 100 (L / 100)^gamma (a film's contrast);
    gamma a number or one per photo (N,) of L (N, ...)."""
    g = torch.as_tensor(gamma, dtype=L.dtype, device=L.device)
    g = g.view(-1, *[1] * (L.dim() - 1)) if g.dim() else g
    return 100.0 * (L.clamp(0, 100) / 100.0) ** g


def srgb_to_lab(rgb):
    """rgb: (N, 3, H, W) float in [0, 1] -> Lab (N, 3, H, W)."""
    lin = srgb_to_linear(rgb)
    xyz = torch.einsum("ij,njhw->nihw", _M.to(rgb), lin) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = _lab_f(xyz)
    L = 116.0 * f[:, 1:2] - 16.0
    a = 500.0 * (f[:, 0:1] - f[:, 1:2])
    b = 200.0 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([L, a, b], 1)


def lab_to_srgb(lab):
    """Lab (N, 3, H, W) -> sRGB in [0, 1] (clipped)."""
    L, a, b = lab[:, 0:1], lab[:, 1:2], lab[:, 2:3]
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    d = 6.0 / 29.0

    def finv(t):
        return torch.where(t > d, t ** 3, 3 * d * d * (t - 4.0 / 29.0))
    xyz = torch.cat([finv(fx), finv(fy), finv(fz)], 1) * _WHITE.to(lab).view(1, 3, 1, 1)
    lin = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_M).to(lab), xyz).clamp(0, 1)
    return torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def annealed_mean(logits, bins, temperature=0.38):
    """logits (N, 313, h, w), bins (313, 2) tensor -> ab (N, 2, h, w)."""
    p = F.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, bins)
