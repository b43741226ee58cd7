"""Deterministic stand-ins for the two released ECCV16 files: exactly the
official layer names and blob/tensor shapes, random values (fixed seeds).
Used by make_golden.py (once, to write golden.npz) and by test_official.py
(at test time, to rebuild the same files byte for byte)."""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "models", "convert"), os.path.join(ROOT, "models", "train")]
import eccv16  # noqa: E402
import official  # noqa: E402

CAFFE_SEED = 2016
PTH_SEED = 2020
SIZES = ((224, 224), (176, 240))        # (h, w): square and not


def _he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def caffe_blobs():
    """{layer: [arrays]} of a synthetic colorization_release_v2.caffemodel."""
    rng = np.random.default_rng(CAFFE_SEED)
    out = {}
    for name, typ, shapes in official.caffe_layers():
        if typ == "BatchNorm":
            c = shapes[0][0]
            s = np.float32(0.999)                 # Caffe's moving-average factor
            mean = rng.uniform(0.0, 1.0, c).astype(np.float32)
            var = rng.uniform(0.5, 1.5, c).astype(np.float32)
            out[name] = [mean * s, var * s, np.array([s], np.float32)]
        else:
            w = shapes[0]
            fan_in = w[0] * w[2] * w[3] if typ == "Deconvolution" else w[1] * w[2] * w[3]
            out[name] = [_he(rng, w, fan_in),
                         (rng.standard_normal(shapes[1]) * 0.05).astype(np.float32)]
    out["conv8_313_rh"] = [np.full(313, official.LOGIT_SCALE, np.float32)]
    out["class8_ab"] = [eccv16.load_bins().T.reshape(2, 313, 1, 1).copy(), np.zeros(2, np.float32)]
    return out


def write_caffemodel(blobs, path, types=None):
    """Serialise {layer: [arrays]} as a NetParameter with the caffe.proto subset."""
    import caffe2cz
    pb = caffe2cz.caffe_pb2()
    types = types or {name: typ for name, typ, _ in official.caffe_layers()}
    types.update({"conv8_313_rh": "Scale", "class8_ab": "Convolution"})
    net = pb.NetParameter(name="LtoAB")
    for name, arrays in blobs.items():
        layer = net.layer.add(name=name, type=types.get(name, "Convolution"))
        for a in arrays:
            blob = layer.blobs.add()
            blob.shape.dim.extend(a.shape)
            blob.data.extend(a.ravel())
    with open(path, "wb") as f:
        f.write(net.SerializeToString())


def pth_state():
    """{key: array} of a synthetic colorization_release_v2-9b330a0b.pth."""
    rng = np.random.default_rng(PTH_SEED)
    out = {}
    for key, shape in official.pth_tensors().items():
        if key.endswith("num_batches_tracked"):
            out[key] = np.array(0, np.int64)
        elif key == "model_out.weight":
            out[key] = (eccv16.load_bins().T / 110.0).reshape(2, 313, 1, 1).astype(np.float32)
        elif key.endswith("running_mean"):
            out[key] = rng.uniform(0.0, 1.0, shape).astype(np.float32)
        elif key.endswith("running_var"):
            out[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif len(shape) == 1 and ".weight" in key:          # batch-norm gamma
            out[key] = rng.uniform(0.8, 1.2, shape).astype(np.float32)
        elif len(shape) == 1:
            out[key] = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        else:
            fan_in = shape[0] * 16 if key == "model8.0.weight" else int(np.prod(shape[1:]))
            out[key] = _he(rng, shape, fan_in)
    # the port's last layer carries the release's x 2.606 (and random logits
    # need some spread for the test to see errors in them)
    for key in ("model8.6.weight", "model8.6.bias"):
        out[key] = out[key] * np.float32(2 * official.LOGIT_SCALE)
    return out


def write_pth(state, path):
    import torch
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, path)


def input_plane(h, w):
    """A deterministic L* plane in [0, 100] with edges and gradients."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    L = 50 + 30 * np.sin(x / 9.0) * np.cos(y / 13.0) + 15 * ((x // 32 + y // 24) % 2) - 7
    return np.clip(L, 0, 100).astype(np.float32)
