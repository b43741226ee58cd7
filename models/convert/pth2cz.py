#!/usr/bin/python3
"""Convert the PyTorch port of the released ECCV16 model to the project's
model file.

  /usr/bin/python3 models/convert/pth2cz.py colorization_release_v2-9b330a0b.pth eccv16.safetensors

The port (colorizers/eccv16.py) takes (L - 50) / 100 and returns
110 * model_out(softmax(model8.6)); see official.py for how that maps onto
the project's L - 50 input, raw logits and temperature 1/2.606.  Every key
and shape is checked; model_out must hold the bin centres / 110.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import official  # noqa: E402
from official import ConvertError  # noqa: E402

L_NORM = 100.0
AB_NORM = 110.0


def load_state(path):
    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and format errors alike
        raise ConvertError(f"{path}: not a PyTorch state dict ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConvertError(f"{path}: not a state dict of tensors")
    return {k: v.detach().float().numpy() for k, v in state.items()}


def convert(path):
    state = load_state(path)
    expected = official.pth_tensors()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ConvertError(f"{path}: not the ECCV16 port: missing {missing[:4]}, unexpected {extra[:4]}")
    for k, shape in expected.items():
        if k in state and tuple(state[k].shape) != shape:
            raise ConvertError(f"{path}: {k} has shape {tuple(state[k].shape)}, the port has {shape}")
        if k in state and not np.isfinite(state[k]).all():
            raise ConvertError(f"{path}: {k} holds non-finite values")
    official.check_bins(state["model_out.weight"], AB_NORM, f"{path}: model_out")

    out = {}
    for b, (n, _, _) in enumerate(official.eccv16.BLOCKS, 1):
        for i in range(n):
            out[f"conv{b}_{i + 1}.weight"] = state[f"model{b}.{2 * i}.weight"]
            out[f"conv{b}_{i + 1}.bias"] = state[f"model{b}.{2 * i}.bias"]
        bn = f"model{b}.{2 * n}"
        out[f"bn{b}.mean"] = state[f"{bn}.running_mean"]
        out[f"bn{b}.var"] = state[f"{bn}.running_var"]
        out[f"bn{b}.weight"] = state[f"{bn}.weight"]
        out[f"bn{b}.bias"] = state[f"{bn}.bias"]
    # (L - 50) / 100 in -> L - 50 in: the first conv is linear in its input
    out["conv1_1.weight"] = out["conv1_1.weight"] / L_NORM
    for ours, k in (("conv8_1", 0), ("conv8_2", 2), ("conv8_3", 4), ("conv8_313", 6)):
        out[ours + ".weight"] = state[f"model8.{k}.weight"]
        out[ours + ".bias"] = state[f"model8.{k}.bias"]
    # softmax(z_port) = softmax((z_port / 2.606) / (1 / 2.606))
    out["conv8_313.weight"] = out["conv8_313.weight"] / official.LOGIT_SCALE
    out["conv8_313.bias"] = out["conv8_313.bias"] / official.LOGIT_SCALE
    return out, 1.0 / official.LOGIT_SCALE


def main():
    official.run_cli("pth2cz", __doc__, convert)


if __name__ == "__main__":
    main()
