#!/usr/bin/python3
"""Write an ECCV16 model file with random weights, for timing only (never a
colorizer): `--width 1` is the paper's full 32M-parameter topology.

  /usr/bin/python3 bench/make_random_model.py /tmp/eccv16-full.safetensors --width 1
"""
import argparse
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "models"), os.path.join(ROOT, "models", "train")]
import eccv16  # noqa: E402
import export  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--width", type=float, default=1.0)
ap.add_argument("--net-size", type=int, default=224)
a = ap.parse_args()
torch.manual_seed(0)
model = eccv16.ECCV16(eccv16.widths_for(a.width))
# batch norm as a trained net has it: no two tensors alike (the ONNX export
# turns identical tensors into Identity nodes, which OpenCV 4.6 cannot read)
eccv16.random_batch_norm(model)
meta = {"format": "gst-colorize", "topology": "eccv16", "input": "L-50",
        "widths": ",".join(map(str, model.widths)), "net_size": a.net_size,
        "temperature": 0.38, "training": "none: random weights for timing"}
export.write_safetensors(a.out, export.state_to_tensors(model), meta, "f32")
print(f"{a.out}: widths {model.widths}, "
      f"{sum(p.numel() for p in model.parameters())} parameters", file=sys.stderr)
