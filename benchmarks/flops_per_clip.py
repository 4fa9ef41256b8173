#!/usr/bin/env python3
"""Multiply-add work of one clip through a ViViT preset, counted by PyTorch's profiler on the
preset's PyTorch twin (the model train_step_vs_pytorch.py builds from vidcls-info's config, with
the same parameter count): the FLOPs the profiler attributes to matrix products (mm, addmm, bmm)
in one forward pass of one clip, plus the tubelet Conv3d (which PyTorch 1.13's profiler does not
count: 2 x output elements x kernel volume x input channels). Training costs about three forward
passes (forward, and backward's two products per weight).

  flops_per_clip.py --init BUILD/models/vidcls-init --info BUILD/models/vidcls-info
                    [--preset vivit-b16x2-fe]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from train_step_vs_pytorch import ViViT, preset_config  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--info", required=True)
    ap.add_argument("--preset", default="vivit-b16x2-fe")
    ap.add_argument("--classes", type=int, default=400)
    a = ap.parse_args()
    cfg = preset_config(a.init, a.info, a.preset, a.classes)
    # train(): nn.TransformerEncoderLayer's fused inference path hides its products from the
    # profiler's count; the twin has no dropout, so the pass computes the same thing.
    model = ViViT(cfg).train()
    x = torch.randn(1, cfg["frames"], cfg["channels"], cfg["image_size"], cfg["image_size"])
    with torch.no_grad(), torch.profiler.profile(with_flops=True) as prof:
        model(x)
    counted = {}
    for e in prof.key_averages():
        if e.flops:
            counted[e.key] = counted.get(e.key, 0) + e.flops
    conv = model.tubelet
    t, h, w = conv.kernel_size
    grid = [cfg["frames"] // t, cfg["image_size"] // h, cfg["image_size"] // w]
    tubelet = 2 * conv.out_channels * grid[0] * grid[1] * grid[2] * t * h * w * conv.in_channels
    total = sum(counted.values()) + tubelet
    print(f"{a.preset}: one clip [{cfg['frames']}, {cfg['channels']}, {cfg['image_size']}, "
          f"{cfg['image_size']}], forward:")
    for k, v in sorted(counted.items(), key=lambda kv: -kv[1]):
        print(f"  {k:14s} {v / 1e9:9.2f} GFLOP")
    print(f"  {'tubelet conv3d':14s} {tubelet / 1e9:9.2f} GFLOP (counted from its shape)")
    print(f"  total          {total / 1e9:9.2f} GFLOP per clip forward, "
          f"~{3 * total / 1e9:.0f} GFLOP per training clip (x3)")
    print(f"  parameters: {sum(p.numel() for p in model.parameters())}")


if __name__ == "__main__":
    main()
