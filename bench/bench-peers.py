#!/usr/bin/python3
"""The network, ours against its peers, one after another in one run, on the
same weights and the same input:

  ours        bench-net: the OpenBLAS path (fp32), oneDNN fp32, oneDNN bf16
              with its Winograd layers off (direct) and on (the default);
              bf16 only where the CPU computes it natively
  PyTorch     fp32, and its fastest CPU mode: bf16 autocast, channels-last
  ONNX Rt     the npm package onnxruntime-node (installed into bench/ with
              `npm install --ignore-scripts`; a peer, never a dependency)
  OpenCV dnn  from the same ONNX export

for the default model at its net input for 4:3 frames (168x128) and the
paper's full network (random weights, same shapes) at 224x224, 320x240 and
640x480, on 1 and 2 threads.  Every measurement is a process of its own:
median ms of --runs runs after two warm-up runs, and the process's peak RSS.
Prints a table and, per row, our best against each peer (> 1: ours faster).
Pause the background training first (bench/quiet.sh).

  bench/quiet.sh /usr/bin/python3 bench/bench-peers.py [--runs 10] [--quick]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from cpuinfo import cpu_name  # noqa: E402
HERE = os.path.join(ROOT, "bench")
PY = "/usr/bin/python3"


def measure(cmd, env=None):
    """(median ms, peak RSS MiB, None) of one measuring process, or
    (None, None, why it failed)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, **(env or {})))
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    m = re.search(r"median ([0-9.]+) ms", out)
    if status != 0 or not m:
        return None, None, (err.strip().splitlines() or ["failed"])[-1][:70]
    return float(m.group(1)), ru.ru_maxrss / 1024.0, None


WORKER = r'''
import os, sys, time, numpy as np
kind, model, w, h, runs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
x = (np.arange(w * h) * 37 % 100 - 50).astype(np.float32).reshape(1, 1, h, w)
if kind == "opencv":
    import cv2
    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromONNX(model)
    def f():
        net.setInput(x)
        return net.forward()
else:
    import torch
    torch.set_num_threads(threads)
    sys.path[:0] = [os.path.join(sys.argv[7], "models"), os.path.join(sys.argv[7], "models", "train")]
    import export
    m, _ = export.load_model(model)
    net = m.net.eval()               # the plain layers: ConvTranspose2d as PyTorch runs it
    t = torch.from_numpy(x)
    if kind == "torch-bf16":
        net = net.to(memory_format=torch.channels_last)
        t = t.contiguous(memory_format=torch.channels_last)
        def f():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                return net(t)
    else:
        def f():
            with torch.no_grad():
                return net(t)
for _ in range(2):
    f()
ts = []
for _ in range(runs):
    t0 = time.perf_counter()
    f()
    ts.append((time.perf_counter() - t0) * 1e3)
print("median %.3f ms" % float(np.median(ts)))
'''


def export_onnx(model, path, w, h):
    code = f'''
import sys, torch
sys.path[:0] = ["{ROOT}/models", "{ROOT}/models/train"]
import export
m, _ = export.load_model("{model}")
torch.onnx.export(m.net.eval(), torch.zeros(1, 1, {h}, {w}), "{path}", opset_version=13,
                  input_names=["L"], output_names=["logits"], do_constant_folding=True)
'''
    subprocess.run([PY, "-c", code], check=True, capture_output=True)


def ensure_ort():
    if os.path.isdir(os.path.join(HERE, "node_modules", "onnxruntime-node")):
        return True
    r = subprocess.run(["npm", "install", "--prefix", HERE, "--ignore-scripts", "--no-save",
                        "--no-audit", "--no-fund", "onnxruntime-node"], capture_output=True, text=True)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="the default model and the full net at 224 only")
    ap.add_argument("--bench-net", default=os.path.join(ROOT, "build", "bench", "bench-net"))
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-peers-")
    full = os.path.join(tmp, "eccv16-full.safetensors")
    subprocess.run([PY, os.path.join(HERE, "make_random_model.py"), full, "--width", "1"],
                   check=True, capture_output=True)
    cases = [("default model", os.path.join(ROOT, "models", "default.safetensors"), 168, 128)]
    cases += [("full net", full, 224, 224)]
    if not a.quick:
        cases += [("full net", full, 320, 240), ("full net", full, 640, 480)]
    have_ort = ensure_ort()
    bf16 = "avx512_bf16" in open("/proc/cpuinfo").read() or "amx_bf16" in open("/proc/cpuinfo").read()

    ours = [("openblas fp32", "openblas"), ("onednn fp32", "onednn-fp32")]
    if bf16:
        ours += [("onednn bf16 direct", "onednn-bf16-direct"), ("onednn bf16", "onednn-bf16")]
    peers = ["torch fp32", "torch bf16 CL", "onnxruntime", "opencv dnn"]
    cols = [n for n, _ in ours] + peers
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; median of {a.runs} runs; peak RSS in MiB")
    print("| net, input, threads | " + " | ".join(cols) + " | ours best / peer |")
    print("|---" * (len(cols) + 2) + "|")
    results = []
    for name, model, w, h in cases:
        onnx = os.path.join(tmp, f"{os.path.basename(model)}-{w}x{h}.onnx")
        try:
            export_onnx(model, onnx, w, h)
        except subprocess.CalledProcessError:
            onnx = None
        for t in [int(x) for x in a.threads.split(",")]:
            row = {}
            for label, backend in ours:
                row[label] = measure([a.bench_net, model, str(w), str(h), str(a.runs), str(t), backend])
            for kind, label in (("torch-fp32", "torch fp32"), ("torch-bf16", "torch bf16 CL")):
                if label == "torch bf16 CL" and not bf16:
                    row[label] = (None, None, "no native bf16")
                    continue
                row[label] = measure([PY, "-c", WORKER, kind, model, str(w), str(h), str(a.runs), str(t), ROOT])
            if onnx and have_ort:
                row["onnxruntime"] = measure(["node", os.path.join(HERE, "ort-bench.js"), onnx, str(w), str(h),
                                              str(a.runs), str(t)], {"NODE_PATH": os.path.join(HERE, "node_modules")})
            else:
                row["onnxruntime"] = (None, None, "not installed" if not have_ort else "no ONNX export")
            row["opencv dnn"] = measure([PY, "-c", WORKER, "opencv", onnx or "-", str(w), str(h), str(a.runs), str(t)]) \
                if onnx else (None, None, "no ONNX export")
            best = min((row[n][0] for n, _ in ours if row[n][0]), default=None)
            cells = []
            for c in cols:
                ms, rss, why = row[c]
                cells.append(f"{ms:.1f} ms, {rss:.0f}" if ms else f"– ({why})")
            ratios = ", ".join(f"{p.split()[0]}{' bf16' if 'bf16' in p else ''} {row[p][0] / best:.2f}x"
                               for p in peers if row[p][0] and best)
            print(f"| {name} {w}x{h}, {t} | " + " | ".join(cells) + f" | {ratios} |", flush=True)
            results.append({"net": name, "w": w, "h": h, "threads": t,
                            **{c: {"ms": row[c][0], "rss_mib": row[c][1], "why": row[c][2]} for c in cols}})
    if a.json:
        json.dump({"cpu": cpu_name(), "runs": a.runs, "results": results}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
