"""The released ECCV16 model of Zhang, Isola & Efros, as its two circulating
files describe it, and how each maps onto the project's model file.

Caffe: colorization_release_v2.caffemodel with colorization_deploy_v2.prototxt
  input  data_l = L - 50 (the demo subtracts 50; no other scaling)
  layers bw_conv1_1, conv1_2, conv1_2norm (BatchNorm: mean, variance and a
         scale factor s; the statistics are mean/s and variance/s, eps 1e-5,
         no affine), conv2_1 ... conv7_3norm, conv8_1 (Deconvolution, blob
         (512, 256, 4, 4) = (cin, cout, k, k)), conv8_2, conv8_3, conv8_313;
         conv8_313_rh (Scale, x 2.606, a constant filler in the prototxt),
         class8_313_rh (Softmax), class8_ab (1x1 Convolution whose weights
         are the 313 bin centres, set from pts_in_hull.npy by the demo)
  output ab = class8_ab(softmax(2.606 * conv8_313)), at 1/4 of the input

PyTorch port: colorization_release_v2-9b330a0b.pth (colorizers/eccv16.py)
  input  (L - 50) / 100
  layers model1.0 model1.2 model1.4 (BatchNorm2d) ... model8.0 (ConvTranspose2d)
         model8.2 model8.4 model8.6 (313 logits), model_out (313 -> 2, no bias)
  output 110 * model_out(softmax(model8.6)): no temperature in the code, so the
         annealing (x 2.606) lives in model8.6's weights
  -> conv1_1.weight / 100 (same function of L - 50); conv8_313 / 2.606 with
     temperature 1/2.606 (the same softmax); model_out must be bins / 110.

Project file: logits z = conv8_313 (unscaled), decoded as softmax(z / T) with
T = 1/2.606 = 0.38373 recorded in the metadata, so the element's default
temperature reproduces the paper's system exactly.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "train")]
import eccv16  # noqa: E402
import export  # noqa: E402

LOGIT_SCALE = 2.606
WIDTHS = list(eccv16.PAPER_WIDTHS)


def _conv_names():
    """(block, index) of every 3x3 conv of blocks 1-7."""
    for b, (n, _, _) in enumerate(eccv16.BLOCKS, 1):
        for i in range(1, n + 1):
            yield b, i


def caffe_layers():
    """[(layer name, type, [blob shapes])] of the official caffemodel, in order."""
    out = []
    cin = 1
    for b, i in _conv_names():
        c = WIDTHS[b - 1]
        name = "bw_conv1_1" if (b, i) == (1, 1) else f"conv{b}_{i}"
        out.append((name, "Convolution", [(c, cin, 3, 3), (c,)]))
        cin = c
        if i == eccv16.BLOCKS[b - 1][0]:
            out.append((f"conv{b}_{i}norm", "BatchNorm", [(c,), (c,), (1,)]))
    out.append(("conv8_1", "Deconvolution", [(512, 256, 4, 4), (256,)]))
    out.append(("conv8_2", "Convolution", [(256, 256, 3, 3), (256,)]))
    out.append(("conv8_3", "Convolution", [(256, 256, 3, 3), (256,)]))
    out.append(("conv8_313", "Convolution", [(313, 256, 1, 1), (313,)]))
    return out


# Layers that may carry blobs but need not (the demo sets them at run time).
CAFFE_OPTIONAL = {"conv8_313_rh": [(313,)], "class8_ab": [(2, 313, 1, 1), (2,)]}


def pth_tensors():
    """{name: shape} of the PyTorch port's state dict."""
    out = {}
    cin = 1
    for b, (n, _, _) in enumerate(eccv16.BLOCKS, 1):
        c = WIDTHS[b - 1]
        for i in range(n):
            out[f"model{b}.{2 * i}.weight"] = (c, cin, 3, 3)
            out[f"model{b}.{2 * i}.bias"] = (c,)
            cin = c
        bn = f"model{b}.{2 * n}"
        for f in ("weight", "bias", "running_mean", "running_var"):
            out[f"{bn}.{f}"] = (c,)
        out[f"{bn}.num_batches_tracked"] = ()
    out["model8.0.weight"], out["model8.0.bias"] = (512, 256, 4, 4), (256,)
    for k in (2, 4):
        out[f"model8.{k}.weight"], out[f"model8.{k}.bias"] = (256, 256, 3, 3), (256,)
    out["model8.6.weight"], out["model8.6.bias"] = (313, 256, 1, 1), (313,)
    out["model_out.weight"] = (2, 313, 1, 1)
    return out


class ConvertError(Exception):
    """The input is not the model it claims to be."""


def check_bins(ab_weight, scale, what):
    """ab_weight (2, 313, 1, 1) must be the bin centres / scale, in order."""
    bins = eccv16.load_bins()
    got = np.asarray(ab_weight, np.float64).reshape(2, 313).T * scale
    err = np.abs(got - bins).max()
    if err > 1e-3:
        raise ConvertError(f"{what}: the decoding weights are not the 313 bin centres of "
                           f"pts_in_hull.csv in the released order (max difference {err:.4g})")


def write_model(out, tensors, source, dtype="f32", temperature=1.0 / LOGIT_SCALE):
    """Write our model file from {our name: array}; every name and shape is
    checked against the topology by the C loader when it is read."""
    import torch
    meta = {"format": "gst-colorize", "topology": "eccv16", "input": "L-50",
            "widths": ",".join(map(str, WIDTHS)), "net_size": 224,
            "temperature": f"{temperature:.9g}", "bn_eps": "1e-05",
            "training": f"converted from the released ECCV16 model ({source}) "
                        "by models/convert; Zhang, Isola & Efros 2016, BSD-2-Clause"}
    export.write_safetensors(out, {k: torch.from_numpy(np.ascontiguousarray(v, np.float32))
                                   for k, v in tensors.items()}, meta, dtype)


def run_cli(tool, doc, convert):
    """The command line both converters share: SOURCE OUT [--dtype].
    convert(path) -> (tensors in our names, temperature)."""
    import argparse
    ap = argparse.ArgumentParser(prog=tool, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    a = ap.parse_args()
    try:
        tensors, temperature = convert(a.source)
    except (ConvertError, OSError) as e:
        sys.exit(f"{tool}: {e}")
    write_model(a.out, tensors, os.path.basename(a.source), a.dtype, temperature)
    print(f"{tool}: wrote {a.out} (temperature {temperature:.6g})", file=sys.stderr)
