#!/usr/bin/env python3
"""What a frozen, per-frame image backbone lets a temporal model see of motion.

  resnet_motion_probe.py CACHE

CACHE is a vidcls clip cache (vidcls-prep) of a vidcls-synth MSR-layout dataset. A frozen
ResNet-18 (torchvision's, random weights: nothing can be downloaded here) turns every frame of
8-frame windows (stride 2, centre 64x64 crop, ImageNet normalisation) into features; an MLP over
the window is trained on the training side and scored on the held-out side, for three inputs:
raw frames globally pooled (what resnet-tvit does), raw frames with a 2x2 grid of pooled
features (position kept), temporal-residual frames (each frame minus the window's mean)
globally pooled, and per-frame normal flow (u, v of each frame against the one sampled before
it, as vidcls' "normal-flow" input computes them, with the grey frame difference as the third
channel) globally pooled: unlike the residual, that image depends on one pair of frames only,
so a per-frame feature ring could still compute each frame's features once. Prints train and
held-out accuracy of each.
"""
import json
import mmap
import sys
import time

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, __import__("os").path.dirname(__file__))
from train_step_vs_pytorch import normal_flow  # noqa: E402


def pair_flow(x):
    """x [T, 3, H, W] -> [T, 3, H, W]: normal flow of each frame against the previous one (the
    first frame takes the first pair's) and the grey frame difference."""
    f = normal_flow(x.unsqueeze(0))[0, :, :2]  # flow of pair (t, t+1) at index t
    f = torch.cat([f[:1], f[:-1]], 0)          # ... now at index t + 1
    d = (x[1:] - x[:-1]).mean(1, keepdim=True)
    return torch.cat([f, torch.cat([d[:1], d], 0)], 1)


def load_cache(cache):
    with open(f"{cache}/index.json") as f:
        index = json.load(f)
    with open(f"{cache}/{index['data_file']}", "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    for v in index["videos"]:
        n, h, w = v["frames"], v["height"], v["width"]
        raw = bytearray(data[v["offset"]:v["offset"] + n * h * w * 3])
        yield torch.frombuffer(raw, dtype=torch.uint8).reshape(n, h, w, 3), v["label"], \
            v["split"] == "train"


def windows(frames, mean, std, length=8, stride=2, size=64):
    idx = list(range(0, frames.shape[0], stride))
    for s in range(0, len(idx) - length + 1, length):
        x = frames[idx[s:s + length]].permute(0, 3, 1, 2).float() / 255.0
        top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
        yield (x[:, :, top:top + size, left:left + size] - mean) / std


def main():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.manual_seed(0)
    backbone = torchvision.models.resnet18()
    body = nn.Sequential(*list(backbone.children())[:-2]).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    feats = {"raw, global pool": [], "raw, 2x2 grid": [], "temporal residual, global pool": [],
             "pair normal flow, global pool": []}
    labels, train = [], []
    t0 = time.monotonic()
    with torch.no_grad():
        for frames, label, is_train in load_cache(sys.argv[1]):
            for x in windows(frames, mean, std):
                m, r = body(x), body(x - x.mean(0, keepdim=True))
                feats["raw, global pool"].append(m.mean((2, 3)))
                feats["raw, 2x2 grid"].append(nn.functional.adaptive_avg_pool2d(m, 2).flatten(1))
                feats["temporal residual, global pool"].append(r.mean((2, 3)))
                feats["pair normal flow, global pool"].append(body(pair_flow(x)).mean((2, 3)))
                labels.append(label)
                train.append(is_train)
    y, tr = torch.tensor(labels), torch.tensor(train)
    classes = int(y.max()) + 1
    print(f"{len(labels)} windows ({int(tr.sum())} train), features in "
          f"{time.monotonic() - t0:.0f} s; chance {100 / classes:.1f} %")
    for name, rows in feats.items():
        x = torch.stack(rows)
        x = (x - x[tr].mean((0, 1))) / (x[tr].std((0, 1)) + 1e-5)
        torch.manual_seed(0)
        net = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(x[0].numel(), 256), nn.GELU(),
                            nn.Linear(256, classes))
        opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
        xt, yt = x[tr], y[tr]
        for _ in range(300):
            net.train()
            perm = torch.randperm(len(yt))
            for i in range(0, len(yt), 32):
                b = perm[i:i + 32]
                loss = nn.functional.cross_entropy(net(xt[b]), yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            a_tr = (net(xt).argmax(1) == yt).float().mean().item()
            a_te = (net(x[~tr]).argmax(1) == y[~tr]).float().mean().item()
        print(f"{name:32s} train {100 * a_tr:5.1f} %  held-out {100 * a_te:5.1f} %", flush=True)


if __name__ == "__main__":
    main()
