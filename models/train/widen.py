#!/usr/bin/python3
"""Widen an exported ECCV16 model without changing what it computes
(Net2WiderNet, Chen, Goodfellow & Shlens 2016), to go on training a wider
network from a narrower one's weights instead of from scratch.

Each widened layer keeps its channels and adds copies of channels drawn at
random; every layer that reads them gets the original's input weights split
among the copies (shares drawn at random around 1/copies and summing to 1,
so that the copies' gradients differ and training can pull them apart).
Batch norm is per channel, so a copy's statistics and affine are the
original's.  The output (313 logits) does not change beyond rounding.

  /usr/bin/python3 models/train/widen.py models/default.safetensors wide.safetensors --width 0.375
  /usr/bin/python3 models/train/train.py --init wide.safetensors --width 0.375 ...
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..")]
import eccv16  # noqa: E402
import export  # noqa: E402


def _copies(old, new, gen, spread):
    """(source channel of each new channel, its share of that source's
    outgoing weights): channel i < old is i itself, the rest drawn at random."""
    if new < old:
        raise ValueError(f"cannot narrow {old} channels to {new}")
    src = torch.cat([torch.arange(old), torch.randint(0, old, (new - old,), generator=gen)])
    share = 1.0 + spread * (2 * torch.rand(new, generator=gen, dtype=torch.float64) - 1)
    total = torch.zeros(old, dtype=torch.float64).index_add_(0, src, share)
    return src, (share / total[src]).float()


def widen(model, widths, seed=0, spread=0.2):
    """A copy of model (eccv16.ECCV16) with the given widths that computes
    the same function."""
    wide = eccv16.ECCV16(widths)
    gen = torch.Generator().manual_seed(seed)
    src, share = torch.arange(1), torch.ones(1)      # the input: one channel
    with torch.no_grad():
        for a, b in zip(model.net, wide.net):
            if isinstance(a, nn.BatchNorm2d):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(b, name).copy_(getattr(a, name)[src])
                b.num_batches_tracked.copy_(a.num_batches_tracked)
                b.eps = a.eps
            elif isinstance(a, (nn.Conv2d, nn.ConvTranspose2d)):
                w = a.weight
                if isinstance(a, nn.ConvTranspose2d):
                    w = w.transpose(0, 1)                   # (out, in, k, k) like a convolution
                w = w[:, src] * share.view(1, -1, 1, 1)
                out_old, out_new = w.shape[0], b.out_channels
                if isinstance(a, nn.Conv2d) and out_old == eccv16.Q:
                    out_src, out_share = torch.arange(out_old), None    # the logits: not widened
                else:
                    out_src, out_share = _copies(out_old, out_new, gen, spread)
                w = w[out_src]
                if isinstance(a, nn.ConvTranspose2d):
                    w = w.transpose(0, 1)
                b.weight.copy_(w)
                b.bias.copy_(a.bias[out_src])
                src, share = out_src, out_share
    return wide


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="an exported model file (input L - 50)")
    ap.add_argument("out")
    ap.add_argument("--width", type=float, required=True, help="of the paper's widths, e.g. 0.375")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=("f16", "f32"), default="f32")
    a = ap.parse_args()
    model, meta = export.load_model(a.model)
    if meta.get("input", "L-50") != "L-50":
        sys.exit(f"{a.model}: input convention {meta.get('input')} not supported")
    widths = eccv16.widths_for(a.width)
    try:
        wide = widen(model, widths, a.seed)
    except ValueError as e:
        sys.exit(f"{a.model} (widths {model.widths}) -> {widths}: {e}")
    meta = {k: v for k, v in meta.items() if k not in ("metrics",)}
    meta["widths"] = ",".join(str(w) for w in widths)
    training = json.loads(meta.get("training", "{}"))
    training["widened_from"] = ",".join(str(w) for w in model.widths)
    meta["training"] = json.dumps(training)
    export.write_safetensors(a.out, export.state_to_tensors(wide), meta, a.dtype)
    n_old = sum(p.numel() for p in model.parameters())
    n_new = sum(p.numel() for p in wide.parameters())
    print(f"wrote {a.out}: widths {widths}, {n_new} parameters (from {n_old})", file=sys.stderr)


if __name__ == "__main__":
    main()
