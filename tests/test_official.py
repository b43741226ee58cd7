#!/usr/bin/python3
"""Fidelity of the converters for the released ECCV16 model.

Synthesises (synth.py, fixed seeds) a caffemodel and a .pth with exactly the
official layer names and shapes, converts each with the user-facing command,
runs the result through the C engine (cz-predict) and compares ab with the
golden outputs of independent reference forward passes (official/golden.npz,
written by official/make_golden.py): max |dab| <= 0.5 on a 224x224 and a
176x240 input.  Then the converters must refuse files that are not what
they claim, and the element must run a converted model."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(HERE, "official"), os.path.join(ROOT, "models", "eval"),
                os.path.join(ROOT, "models", "convert")]
import evaluate  # noqa: E402
import synth  # noqa: E402

CZ_PREDICT = os.environ.get("CZ_PREDICT", os.path.join(ROOT, "build", "models", "cz-predict"))
CONVERT = os.path.join(ROOT, "models", "convert")
GOLDEN = np.load(os.path.join(HERE, "official", "golden.npz"))


def convert(tool, src, dst):
    return subprocess.run([sys.executable, os.path.join(CONVERT, tool), src, dst],
                          capture_output=True, text=True)


def temperature_of(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return float(json.loads(f.read(n))["__metadata__"]["temperature"])



def _have_onednn():
    """Whether cz-predict was built with the oneDNN backend."""
    with tempfile.NamedTemporaryFile() as empty:
        r = subprocess.run([CZ_PREDICT, os.path.join(ROOT, "models", "default.safetensors"),
                            empty.name, os.devnull, "--backend", "onednn"],
                           capture_output=True, text=True)
    return r.returncode == 0


# (backend, precision, largest |ab - golden| allowed); bf16 is held to the
# trained model on real photos (test_training.py), not to these random weights
BACKENDS = [("openblas", "fp32", 0.5)]
if _have_onednn():
    BACKENDS += [("onednn", "fp32", 0.5)]

class Converters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.caffemodel = os.path.join(d, "colorization_release_v2.caffemodel")
        cls.pth = os.path.join(d, "colorization_release_v2-9b330a0b.pth")
        synth.write_caffemodel(synth.caffe_blobs(), cls.caffemodel)
        synth.write_pth(synth.pth_state(), cls.pth)
        cls.models = {}
        for kind, tool, src in (("caffe", "caffe2cz.py", cls.caffemodel), ("pth", "pth2cz.py", cls.pth)):
            out = os.path.join(d, f"{kind}.safetensors")
            r = convert(tool, src, out)
            assert r.returncode == 0, r.stderr
            cls.models[kind] = out

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_against_golden(self, kind):
        model = self.models[kind]
        self.assertAlmostEqual(temperature_of(model), 1 / 2.606, places=6)
        for backend, precision, tolerance in BACKENDS:
            for h, w in synth.SIZES:
                L = synth.input_plane(h, w)
                (ab,) = evaluate.c_predict(CZ_PREDICT, model, [L], min(h, w),
                                           temperature_of(model), 2, backend, precision)
                gold = GOLDEN[f"{kind}_{h}x{w}"].astype(np.float32)
                diff = float(np.abs(ab - gold).max())
                print(f"{kind} {h}x{w} {backend} {precision}: max |ab C - golden| = {diff:.4f}")
                self.assertLessEqual(diff, tolerance, f"{backend} {precision}")

    def test_caffemodel_matches_golden(self):
        self.check_against_golden("caffe")

    def test_pth_matches_golden(self):
        self.check_against_golden("pth")

    def refused(self, tool, path, fragment):
        r = convert(tool, path, path + ".out")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(fragment, r.stderr)
        self.assertFalse(os.path.exists(path + ".out"))

    def test_caffe_refusals(self):
        d = self.tmp.name
        with open(self.caffemodel, "rb") as f:
            raw = f.read()
        cut = os.path.join(d, "cut.caffemodel")
        with open(cut, "wb") as f:
            f.write(raw[:len(raw) // 2])
        self.refused("caffe2cz.py", cut, "not a Caffe model")

        blobs = synth.caffe_blobs()
        blobs["conv5_2"][0] = blobs["conv5_2"][0][:, :256]
        wrong = os.path.join(d, "wrong-shape.caffemodel")
        synth.write_caffemodel(blobs, wrong)
        self.refused("caffe2cz.py", wrong, "layer conv5_2 is Convolution")

        blobs = synth.caffe_blobs()
        del blobs["conv4_3norm"]
        missing = os.path.join(d, "missing.caffemodel")
        synth.write_caffemodel(blobs, missing)
        self.refused("caffe2cz.py", missing, "layer conv4_3norm is missing")

        blobs = synth.caffe_blobs()
        blobs["class8_ab"][0] = blobs["class8_ab"][0][:, ::-1].copy()   # bins reversed
        bins = os.path.join(d, "bins.caffemodel")
        synth.write_caffemodel(blobs, bins)
        self.refused("caffe2cz.py", bins, "not the 313 bin centres")

        blobs = synth.caffe_blobs()
        blobs["fc9"] = [np.zeros((10, 10), np.float32)]
        extra = os.path.join(d, "extra.caffemodel")
        synth.write_caffemodel(blobs, extra)
        self.refused("caffe2cz.py", extra, "unexpected layers with weights for ECCV16: fc9")

    def test_pth_refusals(self):
        import torch
        d = self.tmp.name
        state = synth.pth_state()
        del state["model5.2.bias"]
        missing = os.path.join(d, "missing.pth")
        synth.write_pth(state, missing)
        self.refused("pth2cz.py", missing, "not the ECCV16 port")

        state = synth.pth_state()
        state["model_out.weight"] = state["model_out.weight"] * 2
        scaled = os.path.join(d, "scaled.pth")
        synth.write_pth(state, scaled)
        self.refused("pth2cz.py", scaled, "not the 313 bin centres")

        state = synth.pth_state()
        state["model4.0.weight"] = state["model4.0.weight"][:, :128]
        shape = os.path.join(d, "shape.pth")
        synth.write_pth(state, shape)
        self.refused("pth2cz.py", shape, "model4.0.weight has shape")

        garbage = os.path.join(d, "garbage.pth")
        with open(garbage, "wb") as f:
            f.write(b"PK\x03\x04 this is not a checkpoint")
        self.refused("pth2cz.py", garbage, "not a PyTorch state dict")
        torch.save([1, 2, 3], os.path.join(d, "list.pth"))
        self.refused("pth2cz.py", os.path.join(d, "list.pth"), "not a state dict of tensors")

    def test_element_runs_converted_model(self):
        r = subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=3", "!",
                            "video/x-raw,format=GRAY8,width=224,height=224", "!",
                            "colorize", f"model-file={self.models['caffe']}", "!",
                            "video/x-raw,format=RGB", "!", "fakesink"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
