#!/usr/bin/python3
"""The network forward pass of the C engine against its peers on the same
weights and input, in one run: PyTorch (CPU) and OpenCV dnn (from an ONNX
export).  Prints each median and the ratio peer / C (> 1: C is faster).

  /usr/bin/python3 bench/compare_net.py /tmp/eccv16-full.safetensors \
      --size 224 --threads 2 --bench-net build/bench/bench-net
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "models"), os.path.join(ROOT, "models", "train")]
import export  # noqa: E402


def median_ms(fn, runs):
    fn()
    fn()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(t))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--bench-net", default=os.path.join(ROOT, "build", "bench", "bench-net"))
    a = ap.parse_args()

    out = subprocess.run([a.bench_net, a.model, str(a.size), str(a.size), str(a.runs),
                          str(a.threads)], check=True, capture_output=True, text=True).stdout
    c_ms = float(re.search(r"median ([0-9.]+) ms", out).group(1))
    results = {"C engine (OpenBLAS + OpenMP)": c_ms}

    torch.set_num_threads(a.threads)
    model, _ = export.load_model(a.model)
    x = torch.from_numpy((np.arange(a.size * a.size) * 37 % 100 - 50).astype(np.float32)
                         ).view(1, 1, a.size, a.size)
    with torch.inference_mode():
        results[f"PyTorch {torch.__version__}"] = median_ms(lambda: model(x), a.runs)

    try:
        import cv2
        with tempfile.TemporaryDirectory() as tmp:
            onnx = os.path.join(tmp, "m.onnx")
            torch.onnx.export(model, x, onnx, opset_version=11)
            net = cv2.dnn.readNetFromONNX(onnx)
        cv2.setNumThreads(a.threads)
        blob = x.numpy()

        def run_cv():
            net.setInput(blob)
            return net.forward()
        results[f"OpenCV dnn {cv2.__version__}"] = median_ms(run_cv, a.runs)
    except Exception as e:  # noqa: BLE001 -- report, do not hide
        print(f"OpenCV dnn: not measured ({type(e).__name__}: {e})")
    print("ONNX Runtime: not measured (no Debian 12 package)")

    print(f"ECCV16 forward, {a.size}x{a.size}, {a.threads} threads, median of {a.runs}:")
    for name, ms in results.items():
        ratio = ms / c_ms
        print(f"  {name:34s} {ms:9.1f} ms   {ratio:5.2f}x the C engine's time")


if __name__ == "__main__":
    main()
