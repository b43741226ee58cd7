#!/usr/bin/python3
"""Train an ECCV16 colorizer as in Zhang, Isola & Efros (2016).

Loss: multinomial cross-entropy over the 313 ab bins against a soft encoding of
the true ab (5 nearest bins, Gaussian sigma 5; looked up in a table over the ab
grid) at 1/4 of the net input, each pixel weighted by class rebalancing
w ~ ((1-lam) p~ + lam/Q)^-1, lam = 1/2, p~ the empirical bin prior of the
training photos smoothed with sigma 5, normalised so that E_p~[w] = 1.

Data: a pack made by pack.py, (N, S, S, 3) uint8 RGB squares.  --crop says how
a batch is cut from it:
  native  random SIZE x SIZE crops at the pack's own scale (SIZE = S: the whole
          square).  With a pack of S = 128 -- the photo's short side at 128,
          the element's default net size -- objects have the size the element
          shows them to the network.  From a pack made with --long (each
          photo's long side kept up to L pixels, not only its centre
          square) the crops come from anywhere in the photo, as the element
          sees the whole frame; the other modes need a pack of squares.
  scale   the whole square resized to SIZE.
  zoom    a random crop of 60-100 % of the square resized to SIZE (the recipe
          of the first default model; it magnifies objects up to 1.7x).
  jitter  per batch a magnification m drawn log-uniform in [1/J, J] of the
          element's view (--jitter J; the element shows a photo with its
          short side at --net-size) and an angle in [-D, D] degrees
          (--rotate D); each photo cut at a random place, resized
          (antialiased) and turned.  More views of each photo than native.
Every crop is flipped at random.  --mix sets how often each source of the
pack (its first folder: utkface, catsdogs, ...) is drawn:
"utkface:0.15,catsdogs:0.1,flowers128:0.15,*:0.6" draws 60 % of the crops from
the sources not named, each of their photos equally often; without --mix every
photo is drawn equally often.  The class-rebalancing prior is then that of
the photos as drawn, or with --prior pack that of all the pack's photos alike
(the loss then weighs each bin as without --mix).  --sizes gives a progressive schedule:
"64:0.7,96:0.2,128:0.1" trains the first 70 % of the run at 64 px, then 20 % at
96, the last 10 % at 128.

--gray-aug P gives each crop with probability P another gray than its own L*:
the network then learns the colours behind the grays the element is given
(a film's response to the colours, a video's luma; models/eval/evaluate.py
--gray scores those), not only behind the eye's.  The gray is the lightness of
a random mix of the crop's R, G, B about the eye's weights (linear light, or
in a quarter of the cases the gamma-encoded values), its tone curve bent by a
gamma log-uniform in [1/G, G] (--gray-gamma G); the targets are unchanged.

Schedule: the run lasts --steps steps, --cpu-hours of this process's CPU
time or --minutes of wall time, whichever ends first; the learning rate warms up over --warmup steps and
follows a cosine to 0 over the run.  --wall-minutes only ends this sitting
(the schedule goes on when the run is resumed).  SIGINT or SIGTERM end it at
the next step with a checkpoint.

--ab-loss B adds B times the decoded error to the loss: the distance of the
annealed mean (at --ab-temperature, the export's) from the true ab, each
pixel weighted by a class rebalancing of its own (--ab-rebalance lambda; 0
weighs every colour bin alike, as the rebalanced AuC does).  The
cross-entropy trains the distribution; this trains the colour the element
paints from it, on the scores issue 7 sets.

--ema D keeps an exponential moving average of the weights and batch-norm
statistics (D per step; 0.999 averages about the last 1000 steps): the dev
scores and the export are of the average, which varies less from batch to
batch than the last step's weights.

State lives in OUT: ckpt.pt (resumed when present; written every
--ckpt-minutes and at the end), curve.jsonl (one line per evaluation on the dev
photos: steps, crops, CPU hours, AuC, rebalanced AuC, chroma), status.json.
Without a checkpoint, --init MODEL starts from an exported model file.
--seed picks the batches of a new run; a resumed run keeps its own.
Export with models/export.py.

  /usr/bin/python3 models/train/pack.py ../shared/data/photos/train train128.npy --size 128
  /usr/bin/python3 models/train/train.py --pack train128.npy --out run2 \\
      --init models/default.safetensors --sizes 64:0.8,128:0.2 --steps 60000 \\
      --dev ../shared/data/photos/dev
"""
import argparse
import copy
import json
import math
import os
import signal
import sys
import time
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, ".."), os.path.join(HERE, "..", "eval")]
import eccv16  # noqa: E402
import pack as packs  # noqa: E402
import rebalance  # noqa: E402


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def parse_sizes(text):
    """"64:0.7,128:0.3" -> [(64, 0.7), (128, 1.0)]: size until cumulative share."""
    out, total = [], 0.0
    for part in text.split(","):
        size, _, share = part.partition(":")
        total += float(share) if share else 1.0
        out.append((int(size), total))
    if any(s % 8 or s <= 0 for s, _ in out):
        raise ValueError(f"--sizes {text}: sizes must be positive multiples of 8")
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"--sizes {text}: shares must sum to 1")
    out[-1] = (out[-1][0], 1.0)
    return out


def size_at(sizes, progress):
    """The crop size of the progressive schedule at progress in [0, 1]."""
    for size, until in sizes:
        if progress < until:
            return size
    return sizes[-1][0]


def parse_mix(text, names, index):
    """Per-photo draw probabilities from "name:share,...,*:share" over a pack
    whose photo i comes from source names[index[i]]."""
    shares, rest = {}, 0.0
    for part in text.split(","):
        name, sep, share = part.partition(":")
        if not sep:
            raise ValueError(f"--mix {text}: '{part}' is not NAME:SHARE")
        if name == "*":
            rest = float(share)
        elif name not in names:
            raise ValueError(f"--mix {text}: the pack has no source '{name}' (it has {', '.join(names)})")
        else:
            shares[name] = float(share)
    if any(v < 0 for v in shares.values()) or rest < 0:
        raise ValueError(f"--mix {text}: shares must not be negative")
    if abs(sum(shares.values()) + rest - 1.0) > 1e-6:
        raise ValueError(f"--mix {text}: shares must sum to 1")
    named = np.isin(index, [names.index(n) for n in shares])
    if rest and named.all():
        raise ValueError(f"--mix {text}: '*' has no source left to draw from")
    counts = np.bincount(index, minlength=len(names))
    p = np.where(named, 0.0, rest / max(1, int((~named).sum())))
    for n, v in shares.items():
        k = names.index(n)
        p[index == k] = v / counts[k]
    return p / p.sum()


def learning_rate(peak, warmup, step, progress):
    return peak * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class LabPack:
    """A pack's photos as L* (float16) and soft-encoding keys of their 4x4
    averaged ab, computed once: a batch is then a gather, a crop and a flip."""

    def __init__(self, rgb, table, chunk=256, device="cpu", draw=None, extent=None, cache=None):
        n, s = len(rgb), rgb.shape[1]
        # per-photo draw probabilities (--mix); None: every photo equally often
        self.draw = draw
        if s % 4:
            raise ValueError(f"pack size {s} is not a multiple of 4")
        self.rgb, self.size = rgb, s
        # each photo's (height, width) in its square's top-left corner (pack.py
        # --long); None: the whole square
        self.extent = None
        if extent is not None:
            self.extent = np.asarray(extent, np.int64)
            if self.extent.shape != (n, 2) or (self.extent % 4).any() or \
                    (self.extent < 4).any() or (self.extent > s).any():
                raise ValueError(f"photo extents {self.extent.shape} do not fit {n} squares of {s}")
        planes = cache.load() if cache is not None else None
        if planes is None:
            planes = self.planes(rgb, table, chunk, device)
            if cache is not None:
                cache.save(*planes)
        # on a GPU the photos stay there: a batch is cut without the host
        self.L, self.keys = (p.to(device) for p in planes)
        if self.extent is not None:
            # beyond a photo's extent: no key (-1), left out of the prior
            r = torch.arange(s // 4)
            h, w = (torch.from_numpy(self.extent) // 4).T
            outside = (r[None, :, None] >= h[:, None, None]) | (r[None, None, :] >= w[:, None, None])
            self.keys[outside.to(device)] = -1

    @staticmethod
    def planes(rgb, table, chunk, device):
        """(L* (n, s, s) float16, keys (n, s/4, s/4) int32 of the 4x4-averaged ab)."""
        n, s = len(rgb), rgb.shape[1]
        L = torch.empty((n, s, s), dtype=torch.float16, device=device)
        keys = torch.empty((n, s // 4, s // 4), dtype=torch.int32, device=device)
        for i in range(0, n, chunk):
            x = torch.from_numpy(np.array(rgb[i:i + chunk])).to(device).permute(0, 3, 1, 2).float() / 255
            lab = eccv16.srgb_to_lab(x)
            L[i:i + chunk] = lab[:, 0].half()
            keys[i:i + chunk] = table.keys(F.avg_pool2d(lab[:, 1:], 4)).int()
        return L, keys

    def __len__(self):
        return len(self.L)

    @staticmethod
    def _crop(planes, idx, ys, xs, size, flips):
        """planes[idx[k], ys[k]:+size, xs[k]:+size], mirrored where flips[k]."""
        r = torch.arange(size, device=planes.device)
        rows = ys[:, None] + r
        cols = torch.where(flips[:, None], size - 1 - r, r) + xs[:, None]
        return planes[idx[:, None, None], rows[:, :, None], cols[:, None, :]]

    def prior(self, table, drawn=True):
        """Share of the (1/4-size) pixels whose nearest bin is q, of the photos
        as they are drawn (drawn=False: of all the pack's photos alike)."""
        keys = self.keys.long().flatten().cpu()
        inside = keys >= 0
        nearest = table.ik[keys[inside], 0]
        weights = None
        if self.draw is not None and drawn:
            per_photo = self.keys[0].numel()
            weights = torch.from_numpy(self.draw).double().repeat_interleave(per_photo)[inside]
        counts = torch.bincount(nearest, weights=weights, minlength=eccv16.Q).double()
        return (counts / counts.sum()).float()

    def photos(self, n, rng):
        """The indices of n photos drawn for a batch."""
        if self.draw is None:
            return rng.integers(0, len(self), n)
        return rng.choice(len(self), n, p=self.draw)

    def batch(self, n, size, mode, rng, table, aug=None, gray=None, with_rgb=False):
        """(L (n, 1, size, size), keys (n, size/4, size/4)).  aug: the
        Jitter of mode "jitter"; gray: a Regray, which gives some crops
        another gray than their L* (drawn after the crops, so the crops are
        those of the same rng without it).  with_rgb: rgb_of as well (the
        crops in colour, for the teacher)."""
        L, keys, rgb_of = self._batch(n, size, mode, rng, table, aug)
        if gray is not None:
            L = gray.apply(L, rgb_of, rng)
        return (L, keys, rgb_of) if with_rgb else (L, keys)

    def _batch(self, n, size, mode, rng, table, aug):
        """(L, keys, rgb_of): rgb_of(ks) gives crops ks of the batch as
        float sRGB (len(ks), 3, size, size) in [0, 1], as L was made of them."""
        idx = torch.from_numpy(self.photos(n, rng))
        flips = rng.random(n) < 0.5
        if mode == "native":
            if size > self.size:
                raise ValueError(f"crop {size} larger than the pack's {self.size}")
            # offsets on the 4-pixel grid of the targets
            if self.extent is None:
                ys = rng.integers(0, (self.size - size) // 4 + 1, n) * 4
                xs = rng.integers(0, (self.size - size) // 4 + 1, n) * 4
            else:   # anywhere inside each photo's extent
                h, w = self.extent[idx.numpy()].T
                if (h < size).any() or (w < size).any():
                    raise ValueError(f"crop {size} larger than a photo of the pack "
                                     f"({int(min(h.min(), w.min()))} pixels)")
                ys = rng.integers(0, (h - size) // 4 + 1) * 4
                xs = rng.integers(0, (w - size) // 4 + 1) * 4
            if self.L.is_cuda:      # one gather for the whole batch
                dev = self.L.device
                idx, flips = idx.to(dev), torch.from_numpy(flips).to(dev)
                L = self._crop(self.L, idx, torch.from_numpy(ys).to(dev),
                               torch.from_numpy(xs).to(dev), size, flips)
                keys = self._crop(self.keys, idx, torch.from_numpy(ys // 4).to(dev),
                                  torch.from_numpy(xs // 4).to(dev), size // 4, flips)
                return L[:, None].float(), keys.long(), self._pack_crops(idx, ys, xs, flips, size)
            # on the CPU slices are 4x faster than a gather
            L = torch.empty((n, 1, size, size))
            keys = torch.empty((n, size // 4, size // 4), dtype=torch.long)
            for k in range(n):
                i, y, x = int(idx[k]), int(ys[k]), int(xs[k])
                lk = self.L[i, y:y + size, x:x + size]
                kk = self.keys[i, y // 4:(y + size) // 4, x // 4:(x + size) // 4]
                L[k, 0] = lk.flip(-1) if flips[k] else lk
                keys[k] = kk.flip(-1) if flips[k] else kk
            return L, keys, self._pack_crops(idx, ys, xs, flips, size)
        if self.extent is not None:
            raise ValueError(f"--crop {mode} cuts whole squares: it needs a pack without --long")
        if mode == "jitter":
            return self._jitter(idx, flips, size, rng, table, aug)
        s = self.size
        crop = s if mode == "scale" else int(rng.integers(int(0.6 * s), s + 1))
        x = self._cut(idx, crop, flips, rng)
        if crop != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=crop > size)
        return self._lab_keys(x, table)

    def _pack_crops(self, idx, ys, xs, flips, size):
        """rgb_of for crops cut from the pack's photos at (ys, xs)."""
        def rgb_of(ks):
            c = np.empty((len(ks), size, size, 3), np.uint8)
            for j, k in enumerate(ks):
                i, y, x = int(idx[k]), int(ys[k]), int(xs[k])
                p = self.rgb[i, y:y + size, x:x + size]
                c[j] = p[:, ::-1] if flips[k] else p
            return torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255.0
        return rgb_of

    def _cut(self, idx, side, flips, rng):
        """Each photo's side x side square at a random place, mirrored where
        flips says, as float RGB (n, 3, side, side) in [0, 1]."""
        n = len(idx)
        ys = rng.integers(0, self.size - side + 1, n)
        xs = rng.integers(0, self.size - side + 1, n)
        crops = np.empty((n, side, side, 3), np.uint8)
        for k in range(n):
            c = self.rgb[int(idx[k]), ys[k]:ys[k] + side, xs[k]:xs[k] + side]
            crops[k] = c[:, ::-1] if flips[k] else c
        return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0

    @staticmethod
    def _lab_keys(x, table):
        """(L, soft-encoding keys of the 4x4-averaged ab, rgb_of) of an RGB batch."""
        x = x.clamp(0, 1)
        lab = eccv16.srgb_to_lab(x)
        return lab[:, :1], table.keys(F.avg_pool2d(lab[:, 1:], 4)), lambda ks: x[ks]

    def _jitter(self, idx, flips, size, rng, table, aug):
        """Mode "jitter": one magnification and one angle per batch (drawn by
        aug), each photo cut at its own random place: a square of side
        c (|cos| + |sin|) of the pack's photo, resized (antialiased) and
        rotated about its centre, whose central size x size is kept."""
        c, angle = aug.draw(size, self.size, rng)
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        outer = min(self.size, math.ceil(c * (abs(cos) + abs(sin))))
        x = self._cut(idx, outer, flips, rng)
        # the outer square at the output's scale (size / c output pixels per pack pixel)
        o = max(size, round(outer * size / c))
        if o != outer:
            x = F.interpolate(x, size=(o, o), mode="bilinear", align_corners=False, antialias=o < outer)
        if angle or o != size:
            # output pixel (u, v) from the centre -> input (cos u - sin v, sin u + cos v);
            # affine_grid's coordinates are in units of half the side of each image
            n = len(idx)
            theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]) * (size / o)
            grid = F.affine_grid(theta.expand(n, 2, 3), (n, 3, size, size), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return self._lab_keys(x, table)


class PlaneCache:
    """LabPack's planes of a .npy pack kept beside it (PACK.lab.npz), so that a
    resumed run does not convert its photos again (2.5-7 minutes for the 14,470
    frames on 2 cores).  The file names the pack's size and modification time
    and the conversion's version: a pack packed again, or planes made another
    way, are made anew.  Written to a temporary name and renamed, so an
    interrupted write leaves no file that looks whole."""
    VERSION = 1   # raise when srgb_to_lab, the pooling or the keys change

    def __init__(self, pack, table, device="cpu"):
        st = os.stat(pack)
        self.path = packs.beside(pack, ".lab.npz")
        self.tag = (f"v{self.VERSION} size {st.st_size} mtime {st.st_mtime_ns} "
                    f"grid {table.LO} {table.N} on {torch.device(device).type}")

    def load(self):
        try:
            with np.load(self.path) as z:
                if str(z["tag"]) != self.tag:
                    return None
                return torch.from_numpy(z["L"]), torch.from_numpy(z["keys"])
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            if not isinstance(e, FileNotFoundError):
                print(f"{self.path}: {e}; converting the photos again", file=sys.stderr)
            return None

    def save(self, L, keys):
        tmp = self.path + ".tmp.npz"
        try:
            np.savez(tmp, tag=np.array(self.tag), L=L.cpu().numpy(), keys=keys.cpu().numpy())
            os.replace(tmp, self.path)
        except OSError as e:
            print(f"{self.path}: not kept ({e})", file=sys.stderr)


class Jitter:
    """What mode "jitter" draws per batch: a magnification m, log-uniform in
    [1/jitter, jitter] relative to the element's view (a photo's short side
    at net_size pixels; the pack's at its own size), and an angle uniform in
    [-rotate, rotate] degrees.  A crop of `size` output pixels then covers
    c = size * pack / (net_size * m) pack pixels, made smaller (m larger)
    where its rotated square would not fit in the pack's photo."""

    def __init__(self, jitter, rotate, net_size):
        if jitter < 1:
            raise ValueError(f"--jitter {jitter}: must be at least 1")
        if not 0 <= rotate < 45:
            raise ValueError(f"--rotate {rotate}: must be in [0, 45) degrees")
        self.jitter, self.rotate, self.net_size = jitter, rotate, net_size

    def draw(self, size, pack, rng):
        """(c, angle): the side of the crop in pack pixels and its angle."""
        m = math.exp(rng.uniform(-math.log(self.jitter), math.log(self.jitter)))
        angle = rng.uniform(-self.rotate, self.rotate) if self.rotate else 0.0
        r = math.radians(angle)
        span = abs(math.cos(r)) + abs(math.sin(r))
        return min(size * pack / (self.net_size * m), pack / span), angle


class Regray:
    """--gray-aug P: each crop with probability P gets another gray than its
    L*, as films, sensors and videos make them (models/eval/evaluate.py
    --gray): the lightness of the mix w of its R, G, B, w a uniform random
    point between the eye's weights and a uniformly random mix (so mixes
    near a red-blind film's 0 / 0.45 / 0.55 are among them), the mix taken
    in linear light or, in a quarter of the cases, of the gamma-encoded
    values (a video's luma); then its tone curve bent by
    L' = 100 (L / 100)^g, g log-uniform in [1/gamma, gamma].  The targets
    stay the photo's own ab: the network learns the colours behind any gray."""

    def __init__(self, p, gamma=1.4):
        if not 0 <= p <= 1:
            raise ValueError(f"--gray-aug {p}: a probability in [0, 1]")
        if gamma < 1:
            raise ValueError(f"--gray-gamma {gamma}: must be at least 1")
        self.p, self.gamma = p, gamma

    def draw(self, n, rng):
        """(ks, weights (m, 3), encoded (m,), gammas (m,)): which crops of n
        get another gray, and which."""
        ks = np.flatnonzero(rng.random(n) < self.p)
        m = len(ks)
        t = rng.random((m, 1))
        w = (1 - t) * np.asarray(eccv16.EYE) + t * rng.dirichlet(np.ones(3), m)
        encoded = rng.random(m) < 0.25
        g = np.exp(rng.uniform(-math.log(self.gamma), math.log(self.gamma), m))
        return ks, w, encoded, g

    def apply(self, L, rgb_of, rng):
        """L (n, 1, s, s) with the crops drawn replaced by their new gray;
        rgb_of(ks): those crops' sRGB."""
        ks, w, encoded, g = self.draw(len(L), rng)
        if not len(ks):
            return L
        rgb = rgb_of(ks).to(L.device).float()
        w = torch.from_numpy(w).float().to(L.device)
        new = torch.empty((len(ks),) + L.shape[2:], device=L.device)
        for enc in (False, True):
            sel = torch.from_numpy(encoded == enc).to(L.device)
            if sel.any():
                new[sel] = eccv16.mix_lightness(rgb[sel], w[sel], encoded=enc)
        L = L.clone()
        L[torch.from_numpy(ks).to(L.device), 0] = eccv16.bend_tone(
            new, torch.from_numpy(g).float().to(L.device)).to(L.dtype)
        return L


class DevSet:
    """The dev photos, scored the way models/eval/evaluate.py scores the C
    engine (PyTorch agrees with it to 1e-4 in ab)."""

    def __init__(self, folder, limit=0):
        import evaluate
        files = evaluate.photo_files(folder)
        self.labs = [evaluate.photo_lab(f) for f in files[:limit or None]]
        self.bins = eccv16.load_bins()
        import metrics
        self.true_bins = [metrics.nearest_bins(lab[1:].reshape(2, -1).T, self.bins)
                          for lab in self.labs]

    def score(self, model, input_scale, net_size, table=None, temperature=0.38, state=None):
        """AuC, rebalanced AuC, chroma; with a loss table also the training
        loss on the dev photos ("loss"): it moves long before the AuC does.
        With state (a moving average of the weights), that state is scored."""
        import evaluate
        import metrics

        # a float32 copy on the CPU, as the C engine runs it (also when training on a GPU)
        model = copy.deepcopy(model)
        if state is not None:
            model.load_state_dict(state)
        model = model.float().cpu().eval()

        class Scaled(torch.nn.Module):      # torch_predict feeds L - 50
            def forward(self, x):
                return model(x * input_scale)
        scores = metrics.Scores(self.bins)
        losses = []
        for lab, tb in zip(self.labs, self.true_bins):
            ab = evaluate.torch_predict(Scaled(), lab[0], net_size, temperature, self.bins)
            scores.add(ab, lab[1:], tb)
            if table is not None:
                losses.append(self.loss(model, lab, input_scale, net_size, table))
        r = scores.result()
        if losses:
            r["loss"] = float(np.mean(losses))
        return r

    @staticmethod
    def loss(model, lab, input_scale, net_size, table):
        """The training loss of one photo at the net size the element runs."""
        import evaluate
        h, w = lab.shape[1:]
        nw, nh = evaluate.net_dims(w, h, net_size)
        x = F.interpolate(torch.from_numpy(lab)[None].double(), size=(nh, nw), mode="bilinear",
                          align_corners=False, antialias=True).float()
        with torch.no_grad():
            logits = model((x[:, :1] - 50.0) * input_scale)
            keys = table.keys(F.avg_pool2d(x[:, 1:], 4))
            dev = table.ik.device
            return float(rebalance.table_loss(logits.to(dev), keys.to(dev), table))


class Distill:
    """--teacher: the network's conv5 (the fifth block's batch norm, stride
    8), pooled to the teacher's stride 16, through a 1 x 1 head, regressed
    on the teacher's standardized features of the crop in colour
    (teacher.py).  The teacher runs on the CPU; its channels' mean and
    spread are fitted on the run's first batch and kept in the checkpoint."""

    def __init__(self, model, prefix, saved=None):
        import teacher
        self.teacher = teacher.Teacher(prefix)
        conv5 = [m for m in model.net if isinstance(m, torch.nn.BatchNorm2d)][4]
        self.head = torch.nn.Conv2d(conv5.num_features, self.teacher.channels, 1)
        self.feat = None
        conv5.register_forward_hook(lambda m, i, out: setattr(self, "feat", out))
        if saved:
            self.head.load_state_dict(saved["head"])
            self.teacher.mean, self.teacher.std = saved["mean"], saved["std"]

    def to(self, device):
        self.head.to(device)
        return self

    def loss(self, rgb):
        """After the network's forward pass on the gray of rgb (N, 3, H, W)."""
        if self.teacher.mean is None:
            self.teacher.fit(rgb)
        target = self.teacher(rgb).to(self.feat.device)
        pred = self.head(F.avg_pool2d(self.feat.float(), 2))
        if pred.shape != target.shape:
            raise ValueError(f"the teacher's features {tuple(target.shape)} do not meet conv5's "
                             f"{tuple(pred.shape)}: a teacher of stride 16 is needed")
        return F.mse_loss(pred, target)

    def state(self):
        return {"head": self.head.state_dict(), "mean": self.teacher.mean, "std": self.teacher.std}


def ema_update(ema, model, decay):
    """ema <- decay * ema + (1 - decay) * model, per float tensor of the state
    (weights and batch-norm statistics); integer counters are copied."""
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                ema[k].lerp_(v.to(ema[k].device), 1.0 - decay)
            else:
                ema[k].copy_(v)


def init_from_model(model, path, input_scale):
    """Copies an exported model's weights (input L - 50) into model, whose
    input is (L - 50) * input_scale."""
    import export
    src, meta = export.load_model(path)
    if meta.get("input", "L-50") != "L-50":
        raise ValueError(f"{path}: input convention {meta.get('input')} not supported")
    if src.widths != model.widths:
        raise ValueError(f"{path}: widths {src.widths}, training {model.widths}")
    model.load_state_dict(src.state_dict())
    with torch.no_grad():
        model.net[0].weight /= input_scale
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", help="an exported model file to start from (when OUT has no checkpoint)")
    ap.add_argument("--width", type=float,
                    help="of the paper's channel widths (default: the --init model's, else 0.25)")
    ap.add_argument("--crop", choices=("native", "scale", "zoom", "jitter"), default="native")
    ap.add_argument("--jitter", type=float, default=1.25,
                    help="--crop jitter: magnifications from 1/J to J of the element's view")
    ap.add_argument("--rotate", type=float, default=0,
                    help="--crop jitter: angles from -D to D degrees")
    ap.add_argument("--mix", help='how often each source of the pack is drawn, e.g. '
                    '"utkface:0.15,catsdogs:0.1,flowers128:0.15,*:0.6" (default: every photo equally)')
    ap.add_argument("--prior", choices=("drawn", "pack"), default="drawn",
                    help="the class-rebalancing prior: of the photos as --mix draws them, "
                         "or of all the pack's photos alike")
    ap.add_argument("--gray-aug", type=float, default=0, metavar="P",
                    help="give each crop with probability P another gray than its L*: a random mix of "
                         "its R, G, B about the eye's and a random tone curve (class Regray)")
    ap.add_argument("--gray-gamma", type=float, default=1.4,
                    help="--gray-aug's tone curves: gamma log-uniform in [1/G, G]")
    ap.add_argument("--sizes", default="128", help='progressive crop sizes, e.g. "64:0.8,128:0.2"')
    ap.add_argument("--net-size", type=int, default=0,
                    help="the net size the element should run it at (default: the last of --sizes)")
    ap.add_argument("--input-scale", type=float, default=0.01,
                    help="the net sees (L - 50) * this (0.01 as the PyTorch port; export folds it "
                         "into conv1_1)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--cpu-hours", type=float, default=0,
                    help="the run ends after this much CPU time of its own (all sittings)")
    ap.add_argument("--minutes", type=float, default=0,
                    help="the run ends after this much wall time of training (all sittings; "
                         "for GPUs, where CPU time says little)")
    ap.add_argument("--wall-minutes", type=float, default=0, help="end this sitting after this long")
    ap.add_argument("--sitting-steps", type=int, default=0, help="end this sitting after this many steps")
    ap.add_argument("--lr", type=float, default=4.2e-4)
    ap.add_argument("--wd", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--rebalance", type=float, default=rebalance.LAMBDA,
                    help="lambda of the class rebalancing, w ~ ((1-lambda) p + lambda/Q)^-1: 1 = none, "
                         "the paper's 0.5 by default")
    ap.add_argument("--ab-loss", type=float, default=0,
                    help="add this much of the decoded error (rebalance.decoded_error: one minus "
                         "the paper's AuC through the annealed mean the element runs) to the loss")
    ap.add_argument("--ab-rebalance", type=float, default=0.25,
                    help="lambda of the decoded error's class rebalancing (0: every colour bin "
                         "counts alike, as in the rebalanced AuC; 1: every pixel alike, as in the AuC)")
    ap.add_argument("--ab-temperature", type=float, default=0.8,
                    help="the annealed mean's temperature in the decoded error (the export's)")
    ap.add_argument("--teacher", metavar="PREFIX",
                    help="teacher.py's MobileNetV2 (PREFIX.json, PREFIX.bin: teacher.py fetch DIR "
                         "writes DIR/mobilenet_v2): conv5 learns to predict its ImageNet features "
                         "of the crop in colour, through a 1 x 1 head that is not exported")
    ap.add_argument("--teacher-weight", type=float, default=1.0,
                    help="the teacher's mean squared error (standardized features) in the loss")
    ap.add_argument("--ema", type=float, default=0,
                    help="decay of a moving average of the weights, scored and exported "
                         "(e.g. 0.999; 0 = none)")
    ap.add_argument("--ckpt-minutes", type=float, default=5)
    ap.add_argument("--dev", help="a folder of dev photos to score on every --eval-minutes")
    ap.add_argument("--dev-limit", type=int, default=0)
    ap.add_argument("--eval-minutes", type=float, default=30, help="of training CPU time")
    ap.add_argument("--log-every", type=int, default=50, help="steps between progress lines")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fp32", action="store_true",
                    help="no bf16 autocast (by default on GPUs, and on CPUs with AVX512-BF16 "
                         "or AMX, where it trains faster)")
    ap.add_argument("--memory-format", choices=("auto", "channels-last", "nchw"), default="auto",
                    help="the activations' layout; auto: channels-last with bf16 (GPUs, AVX512-BF16, "
                         "AMX), NCHW in fp32 on the CPU (models/README.md, seventeenth round)")
    ap.add_argument("--no-plane-cache", action="store_true",
                    help="convert a .npy pack's photos to L* and targets at every start, instead of "
                         "keeping them beside it (PACK.lab.npz, 1.2 GB for the frames pack)")
    a = ap.parse_args()
    if not 0 <= a.ab_rebalance <= 1 or a.ab_temperature <= 0 or a.ab_loss < 0:
        sys.exit("--ab-loss must be >= 0, --ab-rebalance in [0, 1], --ab-temperature > 0")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = not a.fp32 and (device == "cuda" or cpu_has_bf16())
    mem = (torch.channels_last if a.memory_format == "channels-last"
           or (a.memory_format == "auto" and bf16) else torch.contiguous_format)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True   # fixed shapes per crop size
    torch.manual_seed(a.seed)
    sizes = parse_sizes(a.sizes)
    os.makedirs(a.out, exist_ok=True)
    ckpt_path = os.path.join(a.out, "ckpt.pt")

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, f: stop.append(s))

    bins = torch.from_numpy(eccv16.load_bins())
    step, cpu_s, wall_s, crops = 0, 0.0, 0.0, 0
    ck = (torch.load(ckpt_path, map_location="cpu", weights_only=False)
          if os.path.exists(ckpt_path) else None)
    # the widths: the checkpoint's, --width's, the --init model's, or 1/4 of the paper's
    if ck:
        widths = ck["widths"]
        a.width = ck["args"].get("width") if a.width is None else a.width
    elif a.width is not None:
        widths = eccv16.widths_for(a.width)
    elif a.init:
        import export
        widths = export.load_model(a.init)[0].widths
        a.width = widths[0] / eccv16.PAPER_WIDTHS[0]   # recorded in the checkpoint's args
    else:
        a.width = 0.25
        widths = eccv16.widths_for(a.width)
    model = eccv16.ECCV16(widths)
    if ck:
        model.load_state_dict(ck["model"])
        step, prior = ck["step"], ck["prior"]
        cpu_s, wall_s, crops = ck.get("cpu_seconds", 0.0), ck["seconds"], ck.get("crops", step * a.batch)
        if ck["args"].get("input_scale", 1.0) != a.input_scale:
            sys.exit(f"{ckpt_path} was trained with --input-scale {ck['args'].get('input_scale', 1.0)}")
        # the run's own seed, whatever this sitting was given: the batches
        # go on as an uninterrupted run would have drawn them
        a.seed = ck["args"].get("seed", a.seed)
        print(f"resumed at step {step} (seed {a.seed})", file=sys.stderr)
    elif a.init:
        init_from_model(model, a.init, a.input_scale)
        print(f"initialised from {a.init}", file=sys.stderr)
    model.to(device, memory_format=mem)
    params = list(model.parameters())
    teach = None
    if ck and bool(a.teacher) != ("teacher" in ck):
        sys.exit(f"{ckpt_path} was trained {'with' if 'teacher' in ck else 'without'} a teacher: "
                 "resume it the same way")
    if a.teacher:
        teach = Distill(model, a.teacher, ck["teacher"] if ck else None).to(device)
        params += list(teach.head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.99), weight_decay=a.wd)
    if ck:
        opt.load_state_dict(ck["opt"])
    ema = None
    if a.ema:
        saved = ck.get("ema") if ck else None
        ema = {k: (saved[k] if saved else v).detach().clone().to(device)
               for k, v in model.state_dict().items()}

    t_load = time.time()
    table = rebalance.SoftEncodingTable(bins)
    draw = None
    if a.mix:
        src = packs.load_sources(a.pack)
        if src is None:
            sys.exit(f"--mix: {a.pack} does not record its photos' sources; pack it again with pack.py")
        draw = parse_mix(a.mix, *src)
    extent = packs.load_extents(a.pack)
    if extent is not None and a.crop != "native":
        sys.exit(f"--crop {a.crop}: {a.pack} holds photos wider than their squares (pack.py --long); "
                 "use --crop native or a pack of squares")
    cache = PlaneCache(a.pack, table, device) if a.pack.endswith(".npy") and not a.no_plane_cache else None
    data = LabPack(packs.load(a.pack), table, device=device, draw=draw, extent=extent, cache=cache)
    if not ck:
        prior = data.prior(table, drawn=a.prior == "drawn")
    table.wpix = rebalance.rebalance_weights(torch.as_tensor(prior), bins, lam=a.rebalance)[table.ik[:, 0]]
    table.ik, table.wk, table.wpix = table.ik.to(device), table.wk.to(device), table.wpix.to(device)
    if a.ab_loss:   # the decoded error's own rebalancing, one weight per table key
        wab = rebalance.rebalance_weights(torch.as_tensor(prior), bins, lam=a.ab_rebalance)[table.ik[:, 0].cpu()]
        wab, bins_dev = wab.to(device), bins.float().to(device)
    dev = DevSet(a.dev, a.dev_limit) if a.dev else None
    net_size = a.net_size or sizes[-1][0]
    try:
        aug = Jitter(a.jitter, a.rotate, net_size)
        gray = Regray(a.gray_aug, a.gray_gamma) if a.gray_aug else None
    except ValueError as e:
        sys.exit(str(e))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"widths {model.widths}, {n_params} parameters, device {device}, bf16 {bf16}, "
          f"{'channels-last' if mem == torch.channels_last else 'NCHW'}, {len(data)} photos, "
          f"{time.time() - t_load:.0f}s to load", file=sys.stderr)

    def progress():
        done = step / a.steps
        if a.cpu_hours:
            done = max(done, cpu_s / (3600 * a.cpu_hours))
        if a.minutes:
            done = max(done, wall_s / (60 * a.minutes))
        return done

    def save():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "seconds": wall_s, "cpu_seconds": cpu_s, "crops": crops, "prior": prior,
                    "args": vars(a), "widths": model.widths, "photos": len(data),
                    **({"ema": ema} if ema is not None else {}),
                    **({"teacher": teach.state()} if teach is not None else {})},
                   ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    def record(**extra):
        st = {"step": step, "crops": crops, "cpu_hours": round(cpu_s / 3600, 4),
              "wall_hours": round(wall_s / 3600, 4), "progress": round(progress(), 4),
              "size": size_at(sizes, progress()), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
              **extra}
        if "auc" in extra:
            with open(os.path.join(a.out, "curve.jsonl"), "a") as f:
                f.write(json.dumps(st) + "\n")
        with open(os.path.join(a.out, "status.json"), "w") as f:
            json.dump(st, f)
        return st

    def evaluate():
        nonlocal running
        if run_t is not None:
            running = run_t.item()
        r = dev.score(model, a.input_scale, net_size, table, state=ema)
        st = record(auc=round(r["auc"], 3), auc_rebalanced=round(r["auc_rebalanced"], 3),
                    chroma=round(r["chroma_pred"], 2), chroma_true=round(r["chroma_true"], 2),
                    dev_loss=round(r["loss"], 4), net_size=net_size, loss=running)
        print(f"dev at step {step}: AuC {st['auc']:.2f} rebalanced {st['auc_rebalanced']:.2f} "
              f"chroma {st['chroma']:.1f} loss {st['dev_loss']:.4f}", file=sys.stderr, flush=True)

    model.train()
    running, run_t, last_eval = None, None, cpu_s
    eval_step = -1
    if dev and step == 0:
        evaluate()
        eval_step = 0
    t_wall, t_cpu, t_ckpt = time.time(), time.process_time(), time.time()
    sitting_start, sitting_first_step = time.time(), step
    log_crops, log_wall = crops, wall_s
    while progress() < 1.0 and not stop:
        if a.wall_minutes and time.time() - sitting_start > 60 * a.wall_minutes:
            break
        if a.sitting_steps and step - sitting_first_step >= a.sitting_steps:
            break
        size = size_at(sizes, progress())
        lr = learning_rate(a.lr, a.warmup, step, progress())
        for g in opt.param_groups:
            g["lr"] = lr
        # the batch depends on the seed and the step alone: a resumed run
        # draws what an uninterrupted one would have drawn
        rng = np.random.default_rng([a.seed, step])
        L, keys, rgb_of = data.batch(a.batch, size, a.crop, rng, table, aug, gray, with_rgb=True)
        L = L.to(device).contiguous(memory_format=mem)
        keys = keys.to(device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            logits = model((L - 50.0) * a.input_scale)
        loss = rebalance.table_loss(logits.contiguous(), keys, table)
        colour_loss = loss
        if teach is not None:
            t_loss = teach.loss(rgb_of(range(a.batch)))
            loss = loss + a.teacher_weight * t_loss
        if a.ab_loss:
            loss = loss + a.ab_loss * rebalance.decoded_error(logits, keys, table, bins_dev,
                                                              a.ab_temperature, wab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema_update(ema, model, a.ema)
        step += 1
        crops += a.batch
        # kept on the device: a GPU is not made to wait for the host every step
        # the colour loss alone, comparable with runs without a teacher
        run_t = colour_loss.detach() if run_t is None else 0.98 * run_t + 0.02 * colour_loss.detach()
        now_wall, now_cpu = time.time(), time.process_time()
        wall_s += now_wall - t_wall
        cpu_s += now_cpu - t_cpu
        t_wall, t_cpu = now_wall, now_cpu
        if step % a.log_every == 0:
            running = run_t.item()
            # the rate since the last line: the run's average over its sittings
            # would mix in every pause and every contended hour
            rate = (crops - log_crops) / max(wall_s - log_wall, 1e-9)
            log_crops, log_wall = crops, wall_s
            print(f"step {step} size {size} loss {running:.4f} lr {lr:.2e} "
                  f"cpu {cpu_s / 3600:.3f} h {rate:.1f} crops/s"
                  + (f" teacher {t_loss.item():.3f}" if teach is not None else ""),
                  file=sys.stderr, flush=True)
            record(loss=running, lr=lr)
        if dev and cpu_s - last_eval >= 60 * a.eval_minutes:
            last_eval, eval_step = cpu_s, step
            evaluate()
            t_wall, t_cpu = time.time(), time.process_time()    # scoring is not training
        if time.time() - t_ckpt >= 60 * a.ckpt_minutes:
            save()
            t_ckpt = time.time()
    save()
    if run_t is not None:
        running = run_t.item()
    finished = progress() >= 1.0
    if dev and step != eval_step:
        evaluate()
    record(loss=running, finished=finished, stopped=bool(stop))
    print(f"{'finished' if finished else 'paused'} at step {step}, {crops} crops, "
          f"{cpu_s / 3600:.3f} CPU hours", file=sys.stderr)


if __name__ == "__main__":
    main()
