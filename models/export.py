#!/usr/bin/python3
"""Export a training checkpoint to the project's model file (safetensors).

Writes exactly what core/cz-model.c reads (its header comment is the spec):
tensor names conv{b}_{i}.*, bn{b}.*, conv8_*.*, metadata topology/widths/
input/net_size/temperature plus the training provenance.

  /usr/bin/python3 models/export.py run1/ckpt.pt models/default.safetensors \
      --dtype f16 --metrics metrics.json
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "train"))
import eccv16  # noqa: E402


def state_to_tensors(model):
    """Map the nn.Sequential of eccv16.ECCV16 to the file's tensor names."""
    out = {}
    layers = list(model.net)
    convs = [m for m in layers if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    bns = [m for m in layers if isinstance(m, torch.nn.BatchNorm2d)]
    names = []
    for b, (n, _, _) in enumerate(eccv16.BLOCKS, 1):
        names += [f"conv{b}_{i}" for i in range(1, n + 1)]
    names += ["conv8_1", "conv8_2", "conv8_3", "conv8_313"]
    assert len(names) == len(convs)
    for name, m in zip(names, convs):
        out[name + ".weight"] = m.weight.detach()
        out[name + ".bias"] = m.bias.detach()
    for b, m in enumerate(bns, 1):
        out[f"bn{b}.mean"] = m.running_mean
        out[f"bn{b}.var"] = m.running_var
        out[f"bn{b}.weight"] = m.weight.detach()
        out[f"bn{b}.bias"] = m.bias.detach()
    return out


FP16_MAX = 65504.0


def tensor_dtype(name, values, dtype):
    """fp16 where asked, except batch-norm statistics and anything beyond
    fp16's range: running variances reach 1e5 and would become inf."""
    if dtype == "f16" and not name.startswith("bn") and np.abs(values).max(initial=0) < FP16_MAX / 2:
        return np.float16, "F16"
    return np.float32, "F32"


def write_safetensors(path, tensors, metadata, dtype="f16"):
    header, blobs, offset = {"__metadata__": {k: str(v) for k, v in metadata.items()}}, [], 0
    for name in sorted(tensors):
        values = tensors[name].cpu().float().numpy()
        np_dtype, tag = tensor_dtype(name, values, dtype)
        a = np.ascontiguousarray(values.astype(np_dtype)).astype("<" + np.dtype(np_dtype).str[1:])
        raw = a.tobytes()
        header[name] = {"dtype": tag, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for raw in blobs:
            f.write(raw)
    os.replace(path + ".tmp", path)


# The annealed-mean temperature of a model file that names none: the paper's
# (1/2.606, the released model's; core/cz-model.c and the element agree).
DEFAULT_TEMPERATURE = 0.38


def model_temperature(meta):
    """The temperature a model file's metadata asks to be run at."""
    return float(meta.get("temperature", DEFAULT_TEMPERATURE))


def read_safetensors(path):
    """(tensors as float32 numpy, metadata) of a file this script wrote."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        dt = {"F16": "<f2", "F32": "<f4"}[e["dtype"]]
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype=dt).reshape(e["shape"]).astype(np.float32)
    return out, meta


def load_model(path):
    """An eccv16.ECCV16 in eval mode with the weights of a model file."""
    tensors, meta = read_safetensors(path)
    widths = [int(x) for x in meta["widths"].split(",")]
    model = eccv16.ECCV16(widths)
    names = state_to_tensors(model)
    for name, t in names.items():
        t.data.copy_(torch.from_numpy(tensors[name]))
    model.eval()
    return model, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=("f16", "f32"), default="f16")
    t = ap.add_mutually_exclusive_group()
    t.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                   help=f"the annealed-mean temperature to record (default {DEFAULT_TEMPERATURE})")
    t.add_argument("--temperature-of", metavar="MODEL",
                   help="record the temperature of this model file (e.g. the shipped one)")
    ap.add_argument("--last", action="store_true",
                    help="the last step's weights even where the checkpoint has a moving average")
    ap.add_argument("--data", default="", help="what it was trained on, for the metadata")
    ap.add_argument("--metrics", help="a JSON file of measured metrics to record")
    a = ap.parse_args()
    if a.temperature_of:
        a.temperature = model_temperature(read_safetensors(a.temperature_of)[1])
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    model = eccv16.ECCV16(ck["widths"])
    # a moving average of the weights (train.py --ema) is what was scored
    model.load_state_dict(ck["ema"] if "ema" in ck and not a.last else ck["model"])
    args = ck["args"]
    # the file's input is L - 50: fold the training input scale into conv1_1
    with torch.no_grad():
        model.net[0].weight *= args.get("input_scale", 1.0)
    net_size = args.get("net_size") or (int(args["sizes"].split(",")[-1].split(":")[0])
                                        if "sizes" in args else args["size"])
    meta = {
        "format": "gst-colorize",
        "topology": "eccv16",
        "widths": ",".join(str(w) for w in ck["widths"]),
        "input": "L-50",
        "net_size": net_size,
        "temperature": a.temperature,
        "bn_eps": model.net[4].eps,
        "training": json.dumps({"steps": ck["step"], "crops": ck.get("crops", ck["step"] * args["batch"]),
                                "seconds": round(ck["seconds"]),
                                "cpu_seconds": round(ck.get("cpu_seconds", 0)),
                                "batch": args["batch"], "lr": args["lr"], "width": args["width"],
                                "crop": args.get("crop", "zoom"), "sizes": args.get("sizes", args.get("size")),
                                "input_scale": args.get("input_scale", 1.0), "init": args.get("init"),
                                "ema": 0 if a.last else args.get("ema", 0), "mix": args.get("mix"),
                                "seed": args.get("seed"),
                                "photos": ck.get("photos"),
                                "data": a.data, "script": "models/train/train.py"}),
    }
    if a.metrics:
        meta["metrics"] = json.dumps(json.load(open(a.metrics)))
    write_safetensors(a.out, state_to_tensors(model), meta, a.dtype)
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes, step {ck['step']}, "
          f"temperature {a.temperature}", file=sys.stderr)


if __name__ == "__main__":
    main()
