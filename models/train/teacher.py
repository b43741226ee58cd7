#!/usr/bin/python3
"""A feature teacher from outside the training photos: the MobileNetV2 that
the npm package nsfwjs (MIT licence) bundles, run by PyTorch.

Its blocks up to block_10 are Keras's ImageNet weights, frozen when the
package's authors trained the later blocks to sort photos into five classes
(the model's own topology says trainable: false up to there), so block_10's
output (96 channels at stride 16) is what 1.28 M ImageNet photos taught it.
train.py --teacher makes the colouring network's conv5 (stride 8, pooled to
16) predict it from the gray crop the teacher sees in colour (a 1 x 1 head,
dropped on export): knowledge the 14,472 training photos lack.

  models/train/teacher.py fetch DIR   # npm install nsfwjs@4.3.0 --ignore-scripts into DIR,
                                      # then DIR/mobilenet_v2.json + .bin (node reads the package)
  models/train/teacher.py check DIR   # this port against TensorFlow.js (installed beside the
                                      # package, as its peer) on one random input

The package keeps the model as JavaScript: its topology (Keras's layers
format) and its weights, uint8-quantized, as base64 strings.  KerasNet runs
such a topology layer by layer in NCHW.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

PACKAGE = "nsfwjs@4.3.0"
LAYER = "block_10_project_BN"   # the last block with ImageNet's weights

# node -e: argv[1] the install, argv[2] the prefix written; the package's model files as JSON (topology, manifest) and the raw shards
DUMP = r"""
const fs = require('fs'), path = require('path');
const dir = path.join(process.argv[1], 'node_modules/nsfwjs/dist/models/mobilenet_v2');
const m = require(path.join(dir, 'model.min.js'));
const shards = [];
for (const g of m.weightsManifest)
  for (const p of g.paths) shards.push(Buffer.from(require(path.join(dir, p + '.min.js')), 'base64'));
fs.writeFileSync(process.argv[2] + '.bin', Buffer.concat(shards));
fs.writeFileSync(process.argv[2] + '.json', JSON.stringify({modelTopology: m.modelTopology,
                                                            weightsManifest: m.weightsManifest}));
"""

# node -e: the model in TensorFlow.js (its CPU backend) on argv[2] (float32,
# 1 x 224 x 224 x 3), the class probabilities and LAYER's output to argv[3]
CHECK = r"""
const path = require('path'), fs = require('fs');
const tf = require(path.join(process.argv[1], 'node_modules/@tensorflow/tfjs'));
(async () => {
  await tf.setBackend('cpu');
  const p = path.join(process.argv[1], 'mobilenet_v2');
  const m = JSON.parse(fs.readFileSync(p + '.json')), bin = fs.readFileSync(p + '.bin');
  const model = await tf.loadLayersModel(tf.io.fromMemory({modelTopology: m.modelTopology,
    weightSpecs: m.weightsManifest[0].weights,
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length)}));
  const raw = fs.readFileSync(process.argv[2]);
  const x = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4), [1, 224, 224, 3]);
  const mid = tf.model({inputs: model.inputs, outputs: model.getLayer(process.argv[4]).output});
  const out = [model.predict(x).dataSync(), mid.predict(x).dataSync()];
  fs.writeFileSync(process.argv[3], Buffer.concat(out.map(a => Buffer.from(a.buffer))));
})();
"""


def check(d):
    """The largest difference from TensorFlow.js, in the classes and at LAYER."""
    import tempfile
    prefix = os.path.join(d, "mobilenet_v2")
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as t:
        xin, out = os.path.join(t, "x.f32"), os.path.join(t, "y.f32")
        x.permute(0, 2, 3, 1).numpy().astype("<f4").tofile(xin)
        subprocess.run(["node", "-e", CHECK, d, xin, out, LAYER], check=True)
        y = np.fromfile(out, "<f4")
    probs = KerasNet(prefix)(x)[0].numpy()
    mid = KerasNet(prefix, upto=LAYER)(x)[0].permute(1, 2, 0).numpy().ravel()
    tp, tm = y[:probs.size], y[probs.size:]
    def fmt(v):
        return " ".join(f"{e:.4f}" for e in v)
    print(f"classes: ours {fmt(probs)}, TensorFlow.js {fmt(tp)}")
    print(f"{LAYER} ({mid.size} values, largest {np.abs(tm).max():.2f}): "
          f"largest difference {np.abs(mid - tm).max():.2e}")
    return max(np.abs(probs - tp).max(), np.abs(mid - tm).max() / np.abs(tm).max())


def fetch(d):
    os.makedirs(d, exist_ok=True)
    subprocess.run(["npm", "install", PACKAGE, "--ignore-scripts", "--no-audit", "--no-fund",
                    "--prefix", d], check=True)
    subprocess.run(["node", "-e", DUMP, d, os.path.join(d, "mobilenet_v2")], check=True)
    print(f"{os.path.join(d, 'mobilenet_v2')}.json, .bin")


def load_weights(manifest, raw):
    """name -> tensor, from the manifest's order; uint8 ones dequantized."""
    out, off = {}, 0
    for g in manifest:
        for w in g["weights"]:
            n = math.prod(w["shape"])
            q = w.get("quantization")
            if q:
                if q["dtype"] != "uint8":
                    raise ValueError(f"{w['name']}: {q['dtype']} quantization")
                a = np.frombuffer(raw, np.uint8, n, off).astype(np.float32) * q["scale"] + q["min"]
                off += n
            elif w["dtype"] == "float32":
                a = np.frombuffer(raw, np.float32, n, off).copy()
                off += 4 * n
            else:
                raise ValueError(f"{w['name']}: {w['dtype']}")
            out[w["name"]] = torch.from_numpy(a.reshape(w["shape"]))
    if off != len(raw):
        raise ValueError(f"the manifest names {off} bytes, the shards hold {len(raw)}")
    return out


class KerasNet:
    """A Keras functional model's layers run in order, NCHW, float32."""

    def __init__(self, prefix, upto=None):
        with open(prefix + ".json") as f:
            m = json.load(f)
        layers = m["modelTopology"]["model_config"]["config"]["layers"]
        if upto is not None:
            names = [l["name"] for l in layers]
            if upto not in names:
                raise ValueError(f"no layer {upto}")
            layers = layers[:names.index(upto) + 1]
        self.layers, self.upto = layers, upto
        with open(prefix + ".bin", "rb") as f:
            w = load_weights(m["weightsManifest"], f.read())
        self.p = {}
        for l in layers:
            n, k, c = l["name"], l["class_name"], l["config"]
            if k == "Conv2D":
                self.p[n] = (w[f"{n}/kernel"].permute(3, 2, 0, 1).contiguous(), w.get(f"{n}/bias"))
            elif k == "DepthwiseConv2D":
                kk = w[f"{n}/depthwise_kernel"]                     # kh, kw, in, multiplier
                kh, kw, cin, mult = kk.shape
                self.p[n] = (kk.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw).contiguous(),
                             w.get(f"{n}/bias"))
            elif k == "BatchNormalization":
                s = w[f"{n}/gamma"] / torch.sqrt(w[f"{n}/moving_variance"] + c["epsilon"])
                self.p[n] = (s.view(1, -1, 1, 1), (w[f"{n}/beta"] - w[f"{n}/moving_mean"] * s).view(1, -1, 1, 1))
            elif k == "Dense":
                self.p[n] = (w[f"{n}/kernel"].t().contiguous(), w.get(f"{n}/bias"))

    def out_channels(self):
        """Of the last layer, a batch norm or a convolution."""
        w = self.p[self.layers[-1]["name"]][0]
        return w.shape[1] if w.dim() == 4 and w.shape[0] == 1 else w.shape[0]

    @torch.no_grad()
    def __call__(self, x):
        t = {}
        for l in self.layers:
            n, k, c = l["name"], l["class_name"], l["config"]
            ins = [t[i[0]] for i in l["inbound_nodes"][0]] if l["inbound_nodes"] else [x]
            a = ins[0]
            if k == "InputLayer":
                y = x
            elif k == "ZeroPadding2D":
                (pt, pb), (pl, pr) = c["padding"]
                y = F.pad(a, (pl, pr, pt, pb))
            elif k in ("Conv2D", "DepthwiseConv2D"):
                if c.get("activation", "linear") != "linear" or c.get("dilation_rate", [1, 1]) != [1, 1]:
                    raise ValueError(f"layer {n}: activation or dilation not supported")
                w, b = self.p[n]
                pad = 0
                if c["padding"] == "same":
                    if c["strides"] != [1, 1] or w.shape[2] % 2 == 0:
                        raise ValueError(f"layer {n}: 'same' padding with strides or an even kernel")
                    pad = w.shape[2] // 2
                y = F.conv2d(a, w, b, stride=c["strides"], padding=pad,
                             groups=a.shape[1] if k == "DepthwiseConv2D" else 1)
            elif k == "BatchNormalization":
                s, b = self.p[n]
                y = a * s + b
            elif k == "ReLU":
                y = a.clamp(0, c.get("max_value") or None)
            elif k == "Add":
                y = sum(ins)
            elif k == "AveragePooling2D":
                y = F.avg_pool2d(a, c["pool_size"], c["strides"])
            elif k == "Flatten":
                y = a.permute(0, 2, 3, 1).reshape(a.shape[0], -1)
            elif k == "Dense":
                w, b = self.p[n]
                y = F.linear(a, w, b)
                act = c["activation"]
                if act == "relu":
                    y = F.relu(y)
                elif act == "softmax":
                    y = F.softmax(y, -1)
                elif act != "linear":
                    raise ValueError(f"layer {n}: activation {act}")
            elif k == "Dropout":
                y = a
            else:
                raise ValueError(f"layer {n}: {k} not supported")
            t[n] = y
        return y


class Teacher:
    """rgb (N, 3, H, W) in [0, 1] -> block_10's features (N, 96, H/16, W/16),
    standardized by the channels' mean and spread on the photos given to
    fit().  It sees the crop at its own size (at twice the size, where its
    stride would meet the colouring network's conv5, it cost 9x the time:
    0.36 s against 0.04 s for 32 crops of 64, 2 threads, AMD EPYC Zen 3)."""

    def __init__(self, prefix, layer=LAYER):
        self.net = KerasNet(prefix, upto=layer)
        self.channels = self.net.out_channels()
        self.mean = self.std = None

    def raw(self, rgb):
        # Keras's ImageNet MobileNetV2 takes [-1, 1]
        return self.net((rgb * 2 - 1).contiguous(memory_format=torch.channels_last))

    def fit(self, rgb):
        f = self.raw(rgb)
        self.mean = f.mean((0, 2, 3), keepdim=True)
        self.std = f.std((0, 2, 3), keepdim=True).clamp_min(1e-3)

    def __call__(self, rgb):
        return (self.raw(rgb) - self.mean) / self.std


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="install the package into DIR and write DIR/mobilenet_v2.json, .bin")
    f.add_argument("dir")
    c = sub.add_parser("check", help="compare with TensorFlow.js in DIR (after fetch)")
    c.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "fetch":
        fetch(a.dir)
    elif check(a.dir) > 1e-4:
        sys.exit("the port differs from TensorFlow.js")


if __name__ == "__main__":
    main()
