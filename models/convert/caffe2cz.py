#!/usr/bin/python3
"""Convert the released Caffe ECCV16 model to the project's model file.

  /usr/bin/python3 models/convert/caffe2cz.py colorization_release_v2.caffemodel eccv16.safetensors

Reads the file with the protobuf library (caffe.proto beside this script,
compiled with protoc at run time), checks every layer name, type and blob
shape against the deploy prototxt (official.py), folds Caffe's BatchNorm
scale factor into the statistics, honours conv8_313_rh (x 2.606) and checks
class8_ab against the 313 bin centres when the file carries them.  Needs
Debian's python3-protobuf and protobuf-compiler.
"""
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import official  # noqa: E402
from official import ConvertError  # noqa: E402


def caffe_pb2():
    """The generated module of caffe.proto (protoc into a temporary folder)."""
    if "caffe_pb2" in sys.modules:
        return sys.modules["caffe_pb2"]
    if not shutil.which("protoc"):
        raise ConvertError("protoc not found: install Debian's protobuf-compiler")
    out = tempfile.mkdtemp(prefix="cz-caffe-proto-")
    subprocess.run(["protoc", f"--proto_path={HERE}", f"--python_out={out}", "caffe.proto"],
                   check=True)
    sys.path.insert(0, out)
    return importlib.import_module("caffe_pb2")


def blob_array(blob, what):
    shape = tuple(blob.shape.dim) if blob.HasField("shape") else tuple(
        d for d in (blob.num, blob.channels, blob.height, blob.width))
    data = np.asarray(blob.double_data if len(blob.double_data) else blob.data, np.float32)
    if data.size != int(np.prod(shape, dtype=np.int64)):
        raise ConvertError(f"{what}: blob of shape {shape} holds {data.size} values")
    if not np.isfinite(data).all():
        raise ConvertError(f"{what}: blob holds non-finite values")
    return data.reshape(shape)


def read_layers(path):
    """{layer name: (type, [arrays])} of every layer with weights."""
    pb = caffe_pb2()
    net = pb.NetParameter()
    with open(path, "rb") as f:
        raw = f.read()
    try:
        net.ParseFromString(raw)
    except Exception as e:  # the library's DecodeError and friends
        raise ConvertError(f"{path}: not a Caffe model (protobuf: {e})") from e
    if len(net.layers) and not len(net.layer):
        raise ConvertError(f"{path}: a pre-2015 (V1) Caffe model; the ECCV16 release uses "
                           "the current format")
    layers = {}
    for layer in net.layer:
        if len(layer.blobs):
            if layer.name in layers:
                raise ConvertError(f"{path}: layer {layer.name} appears twice")
            layers[layer.name] = (layer.type, [blob_array(b, f"{path}: {layer.name}")
                                               for b in layer.blobs])
    return layers


def convert(path):
    """(tensors in our names, temperature) from a caffemodel."""
    layers = read_layers(path)
    expected = official.caffe_layers()
    known = {name for name, _, _ in expected} | set(official.CAFFE_OPTIONAL)
    extra = sorted(set(layers) - known)
    if extra:
        raise ConvertError(f"{path}: unexpected layers with weights for ECCV16: {', '.join(extra)}")
    for name, typ, shapes in expected:
        if name not in layers:
            raise ConvertError(f"{path}: layer {name} is missing: not the ECCV16 release")
        got_type, blobs = layers[name]
        got = [b.shape for b in blobs]
        if got_type != typ or got != shapes:
            raise ConvertError(f"{path}: layer {name} is {got_type} {got}, the ECCV16 deploy "
                               f"prototxt has {typ} {shapes}")
    for name, shapes in official.CAFFE_OPTIONAL.items():
        if name in layers and [b.shape for b in layers[name][1]] != shapes:
            raise ConvertError(f"{path}: layer {name} has blobs {[b.shape for b in layers[name][1]]}, "
                               f"expected {shapes}")

    out = {}
    for name, typ, _ in expected:
        blobs = layers[name][1]
        if typ == "BatchNorm":
            b = name[4]
            s = float(blobs[2][0])
            factor = 0.0 if s == 0.0 else 1.0 / s    # as Caffe's BatchNormLayer
            out[f"bn{b}.mean"] = blobs[0] * factor
            out[f"bn{b}.var"] = blobs[1] * factor
            out[f"bn{b}.weight"] = np.ones_like(blobs[0])
            out[f"bn{b}.bias"] = np.zeros_like(blobs[0])
        else:
            ours = "conv1_1" if name == "bw_conv1_1" else name
            out[ours + ".weight"], out[ours + ".bias"] = blobs

    temperature = 1.0 / official.LOGIT_SCALE          # the prototxt's constant filler
    if "conv8_313_rh" in layers:
        scale = layers["conv8_313_rh"][1][0]
        if np.ptp(scale) <= 1e-6 * abs(scale[0]) and scale[0] > 0:
            temperature = 1.0 / float(scale[0])
        else:                                          # per-bin scales: fold them in
            out["conv8_313.weight"] = out["conv8_313.weight"] * scale[:, None, None, None]
            out["conv8_313.bias"] = out["conv8_313.bias"] * scale
            temperature = 1.0
    if "class8_ab" in layers:
        w, bias = layers["class8_ab"][1]
        official.check_bins(w, 1.0, f"{path}: class8_ab")
        if np.abs(bias).max() > 1e-6:
            raise ConvertError(f"{path}: class8_ab has a nonzero bias; the decoder has none")
    return out, temperature


def main():
    official.run_cli("caffe2cz", __doc__, convert)


if __name__ == "__main__":
    main()
