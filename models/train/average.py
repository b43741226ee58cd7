#!/usr/bin/python3
"""Average model files weight by weight (a "model soup"): the files must
have the same widths; each tensor of OUT is sum_i w_i * tensor_i with the
weights normalised to sum to 1.  The metadata (net size, temperature,
input) are the first file's; files of different temperatures need
--temperature (the average would otherwise be scored at whichever came
first).  The training provenance records what was averaged.

Used to interpolate between a run's start and its end (runs warm-started
from one model stay near it, where their average can be lower in loss
than either):

  /usr/bin/python3 models/train/average.py models/default.safetensors:0.5 \\
      ~/.cache/gst-colorize/train/candidate.safetensors:0.5 OUT --dtype f16
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import export  # noqa: E402


def parse_inputs(specs):
    """[(path, weight)] from PATH or PATH:WEIGHT, weights normalised to 1."""
    out = []
    for s in specs:
        path, sep, w = s.rpartition(":")
        if not sep:
            path, w = s, "1"
        try:
            weight = float(w)
        except ValueError:
            raise SystemExit(f"{s}: the weight after ':' is not a number")
        if not weight >= 0:
            raise SystemExit(f"{s}: a weight must be >= 0")
        out.append((path, weight))
    total = sum(w for _, w in out)
    if total <= 0:
        raise SystemExit("the weights sum to 0")
    return [(p, w / total) for p, w in out]


def average(inputs):
    """(tensors averaged over [(path, weight)], the files' metadata)."""
    acc, first_names, metas = None, None, []
    for path, weight in inputs:
        tensors, meta = export.read_safetensors(path)
        if not metas:
            first_names = sorted(tensors)
            acc = {k: torch.zeros(v.shape, dtype=torch.float64) for k, v in tensors.items()}
        elif meta.get("widths") != metas[0].get("widths") or sorted(tensors) != first_names:
            raise SystemExit(f"{path}: widths {meta.get('widths')} differ from the first file's "
                             f"{metas[0].get('widths')}")
        metas.append(meta)
        for k, v in tensors.items():
            if tuple(v.shape) != tuple(acc[k].shape):
                raise SystemExit(f"{path}: {k} has shape {list(v.shape)}, not {list(acc[k].shape)}")
            acc[k] += weight * torch.from_numpy(v).double()
    return {k: v.float() for k, v in acc.items()}, metas


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="MODEL[:WEIGHT]")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=("f16", "f32"), default="f16")
    ap.add_argument("--temperature", type=float, help="default: the first file's")
    a = ap.parse_args()
    if len(a.inputs) < 2:
        ap.error("give at least two model files")
    inputs = parse_inputs(a.inputs)
    tensors, metas = average(inputs)
    meta = metas[0]
    temps = [export.model_temperature(m) for m in metas]
    if a.temperature is not None:
        meta["temperature"] = a.temperature
    elif len(set(temps)) > 1:
        ap.error("the files' temperatures differ (" + ", ".join(f"{p}: {t}" for (p, _), t in zip(inputs, temps))
                 + "): say which with --temperature")
    meta["training"] = json.dumps({"average": [{"model": os.path.abspath(p), "weight": round(w, 6)}
                                               for p, w in inputs],
                                   "script": "models/train/average.py"})
    meta.pop("metrics", None)
    export.write_safetensors(a.out, tensors, meta, a.dtype)
    print(f"wrote {a.out}: the average of {len(inputs)} models, temperature "
          f"{export.model_temperature(meta)}", file=sys.stderr)


if __name__ == "__main__":
    main()
