#!/usr/bin/python3
"""Golden ab outputs of the two released ECCV16 formats on synthetic weights
(synth.py), by reference forward passes written from each source's own
definition -- the deploy prototxt for Caffe, colorizers/eccv16.py for the
PyTorch port -- in float64, independently of models/convert.

  /usr/bin/python3 tests/official/make_golden.py   # rewrites golden.npz
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import synth

HERE = os.path.dirname(os.path.abspath(__file__))

# colorization_deploy_v2.prototxt, in order: (layer, kind, stride, pad, dilation)
PROTOTXT = [("bw_conv1_1", "conv", 1, 1, 1), ("conv1_2", "conv", 2, 1, 1), ("conv1_2norm", "bn"),
            ("conv2_1", "conv", 1, 1, 1), ("conv2_2", "conv", 2, 1, 1), ("conv2_2norm", "bn"),
            ("conv3_1", "conv", 1, 1, 1), ("conv3_2", "conv", 1, 1, 1), ("conv3_3", "conv", 2, 1, 1),
            ("conv3_3norm", "bn")]
PROTOTXT += [(f"conv4_{i}", "conv", 1, 1, 1) for i in (1, 2, 3)] + [("conv4_3norm", "bn")]
PROTOTXT += [(f"conv5_{i}", "conv", 1, 2, 2) for i in (1, 2, 3)] + [("conv5_3norm", "bn")]
PROTOTXT += [(f"conv6_{i}", "conv", 1, 2, 2) for i in (1, 2, 3)] + [("conv6_3norm", "bn")]
PROTOTXT += [(f"conv7_{i}", "conv", 1, 1, 1) for i in (1, 2, 3)] + [("conv7_3norm", "bn")]
PROTOTXT += [("conv8_1", "deconv", 2, 1, 1), ("conv8_2", "conv", 1, 1, 1), ("conv8_3", "conv", 1, 1, 1)]


def caffe_forward(blobs, L):
    t = {k: [torch.from_numpy(a).double() for a in v] for k, v in blobs.items()}
    x = torch.from_numpy(L).double()[None, None] - 50.0          # data_l = L - 50
    for layer in PROTOTXT:
        name, kind = layer[0], layer[1]
        if kind == "bn":                 # Caffe BatchNorm, use_global_stats, eps 1e-5
            mean, var, s = t[name]
            f = 0.0 if s[0] == 0 else 1.0 / s[0]
            x = (x - (mean * f).view(1, -1, 1, 1)) / torch.sqrt((var * f).view(1, -1, 1, 1) + 1e-5)
        elif kind == "deconv":
            x = F.relu(F.conv_transpose2d(x, t[name][0], t[name][1], stride=2, padding=1))
        else:
            _, _, s, p, d = layer
            x = F.relu(F.conv2d(x, t[name][0], t[name][1], stride=s, padding=p, dilation=d))
    z = F.conv2d(x, t["conv8_313"][0], t["conv8_313"][1])
    z = z * t["conv8_313_rh"][0].view(1, -1, 1, 1)               # Scale, x 2.606
    p = F.softmax(z, dim=1)                                       # class8_313_rh
    ab = F.conv2d(p, t["class8_ab"][0], t["class8_ab"][1])        # class8_ab
    return F.interpolate(ab, size=L.shape, mode="bilinear", align_corners=False)[0].numpy()


class PortECCV16(nn.Module):
    """colorizers/eccv16.py's ECCVGenerator, layer for layer."""

    def __init__(self):
        super().__init__()

        def block(cin, cout, n, last_stride=1, dil=1, bn=True):
            layers = []
            for i in range(n):
                layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3,
                                     last_stride if i == n - 1 else 1, dil, dil), nn.ReLU(True)]
            return layers + ([nn.BatchNorm2d(cout)] if bn else [])
        self.model1 = nn.Sequential(*block(1, 64, 2, 2))
        self.model2 = nn.Sequential(*block(64, 128, 2, 2))
        self.model3 = nn.Sequential(*block(128, 256, 3, 2))
        self.model4 = nn.Sequential(*block(256, 512, 3))
        self.model5 = nn.Sequential(*block(512, 512, 3, 1, 2))
        self.model6 = nn.Sequential(*block(512, 512, 3, 1, 2))
        self.model7 = nn.Sequential(*block(512, 512, 3))
        self.model8 = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, 2, 1), nn.ReLU(True),
                                    nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(True),
                                    nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(True),
                                    nn.Conv2d(256, 313, 1))
        self.model_out = nn.Conv2d(313, 2, 1, bias=False)

    def forward(self, L):
        x = (L - 50.0) / 100.0
        for m in (self.model1, self.model2, self.model3, self.model4, self.model5,
                  self.model6, self.model7, self.model8):
            x = m(x)
        ab = self.model_out(F.softmax(x, dim=1))
        return 110.0 * nn.Upsample(scale_factor=4, mode="bilinear")(ab)


def port_forward(state, L):
    model = PortECCV16().double().eval()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        return model(torch.from_numpy(L).double()[None, None])[0].numpy()


def main():
    blobs, state = synth.caffe_blobs(), synth.pth_state()
    out = {}
    for h, w in synth.SIZES:
        L = synth.input_plane(h, w)
        out[f"caffe_{h}x{w}"] = caffe_forward(blobs, L).astype(np.float16)
        out[f"pth_{h}x{w}"] = port_forward(state, L).astype(np.float16)
        for k in (f"caffe_{h}x{w}", f"pth_{h}x{w}"):
            a = out[k].astype(np.float32)
            print(f"{k}: ab in [{a.min():.1f}, {a.max():.1f}], mean |ab| {np.abs(a).mean():.2f}")
    np.savez_compressed(os.path.join(HERE, "golden.npz"), **out)


if __name__ == "__main__":
    main()
