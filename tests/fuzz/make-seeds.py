#!/usr/bin/python3
"""Writes the fuzzer's seed corpus (small valid models) and its dictionary.

The seeds follow core/cz-model.h exactly: ECCV16 tensors for tiny widths,
one all-F16 (as the exporter writes weights), one all-F32.  Run from the repo
root; the outputs are committed (tests/fuzz/corpus/, tests/fuzz/model.dict).

  /usr/bin/python3 tests/fuzz/make-seeds.py
"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKS = (2, 2, 3, 3, 3, 3, 3)


def tensors(widths, rng):
    out, cin = {}, 1
    for b, n in enumerate(BLOCKS, 1):
        c = widths[b - 1]
        for i in range(1, n + 1):
            out[f"conv{b}_{i}.weight"] = rng.standard_normal((c, cin, 3, 3))
            out[f"conv{b}_{i}.bias"] = rng.standard_normal(c)
            cin = c
        out[f"bn{b}.mean"] = rng.standard_normal(c)
        out[f"bn{b}.var"] = rng.random(c) + 0.5
        out[f"bn{b}.weight"] = rng.standard_normal(c)
        out[f"bn{b}.bias"] = rng.standard_normal(c)
    c7, c8 = widths[6], widths[7]
    out["conv8_1.weight"] = rng.standard_normal((c7, c8, 4, 4))
    out["conv8_1.bias"] = rng.standard_normal(c8)
    for n in ("conv8_2", "conv8_3"):
        out[n + ".weight"] = rng.standard_normal((c8, c8, 3, 3))
        out[n + ".bias"] = rng.standard_normal(c8)
    out["conv8_313.weight"] = rng.standard_normal((313, c8, 1, 1))
    out["conv8_313.bias"] = rng.standard_normal(313)
    return out


def write(path, widths, dtype, rng):
    meta = {"format": "gst-colorize", "topology": "eccv16",
            "widths": ",".join(map(str, widths)), "input": "L-50", "net_size": "16",
            "temperature": "0.38", "bn_eps": "1e-05"}
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, v in sorted(tensors(widths, rng).items()):
        raw = np.ascontiguousarray(v, dtype="<" + dtype).tobytes()
        header[name] = {"dtype": "F16" if dtype == "f2" else "F32", "shape": list(v.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return header


def main():
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(HERE, "corpus"), exist_ok=True)
    h = write(os.path.join(HERE, "corpus", "widths1-f16.safetensors"), [1] * 8, "f2", rng)
    write(os.path.join(HERE, "corpus", "widths2-f32.safetensors"), [2, 2, 1, 2, 1, 2, 1, 2], "f4", rng)
    words = sorted(set(h) | set(h["__metadata__"]) | {
        "eccv16", "L-50", "F16", "F32", "dtype", "shape", "data_offsets", "I32", "BF16"})
    with open(os.path.join(HERE, "model.dict"), "w") as f:
        f.write("# tokens of the model file's header (tests/fuzz/make-seeds.py)\n")
        for w in words:
            f.write(f'"{w}"\n')
        for tok in ('"\\x22:{"', '"}"', '"["', '"]"', '","', '":"', '"\\x5c"'):
            f.write(tok + "\n")


if __name__ == "__main__":
    main()
