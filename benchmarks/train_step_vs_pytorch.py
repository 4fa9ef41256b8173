#!/usr/bin/env python3
"""Training step time of a ViViT preset in vidcls (LibTorch) against the same model and batch in
Debian's Python PyTorch, on this machine, as a ratio.

  train_step_vs_pytorch.py --bench BUILD/benchmarks/bench-train-step --init BUILD/models/vidcls-init
                           --info BUILD/models/vidcls-info [--preset vivit-xs] [--batch 16]

The PyTorch model is built from the preset's config as vidcls-info prints it: tubelet Conv3d,
spatial encoder (CLS, position embedding, pre-norm blocks, final LayerNorm) per temporal index,
temporal encoder over the spatial CLS outputs, linear head. Both sides use the same thread count
and report their trainable parameter count, which must agree.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self, c, tokens, pos):
        super().__init__()
        d = c["dim"]
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, tokens + 1, d)) if pos else None
        layer = lambda: nn.TransformerEncoderLayer(d, c["heads"], c["mlp_dim"], dropout=0.0,
                                                   activation="gelu", batch_first=True,
                                                   norm_first=True, layer_norm_eps=c["ln_eps"])
        self.blocks = nn.ModuleList([layer() for _ in range(c["depth"])])
        self.norm = nn.LayerNorm(d, eps=c["ln_eps"])

    def forward(self, x):
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        if self.pos is not None:
            x = x + self.pos
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


def normal_flow(x, eps=0.05, max_flow=4.0):
    """vidcls' "normal-flow" input: per pair of consecutive frames, the normal flow (u, v) from
    central differences of the pair's mean frame, and the grey temporal residual."""
    a, b = x[:, :-1], x[:, 1:]
    dt, m = b - a, 0.5 * (a + b)
    gx = nn.functional.pad(0.5 * (m[..., 2:] - m[..., :-2]), (1, 1))
    gy = nn.functional.pad(0.5 * (m[..., 2:, :] - m[..., :-2, :]), (0, 0, 1, 1))
    den = (gx * gx + gy * gy).sum(2, keepdim=True) + eps
    flow = torch.cat([-(dt * gx).sum(2, keepdim=True) / den,
                      -(dt * gy).sum(2, keepdim=True) / den], 2).clamp(-max_flow, max_flow)
    flow = torch.cat([flow, flow[:, -1:]], 1)
    return torch.cat([flow, (x - x.mean(1, keepdim=True)).mean(2, keepdim=True)], 2)


class ViViT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        t, h, w = cfg["tubelet"]
        s, tc = cfg["spatial"], cfg["temporal"]
        self.nt = cfg["frames"] // t
        n = (cfg["image_size"] // h) * (cfg["image_size"] // w)
        self.tubelet = nn.Conv3d(cfg["channels"], s["dim"], (t, h, w), (t, h, w))
        self.transform = cfg.get("input_transform", "none")
        if self.transform not in ("none", "temporal-residual", "normal-flow"):
            raise ValueError(f"unknown input_transform {self.transform!r}")
        self.spatial = Encoder(s, n, cfg["spatial_pos_embed"])
        self.temporal = Encoder(tc, self.nt, cfg["temporal_pos_embed"])
        self.head = nn.Linear(tc["dim"], cfg["num_classes"])

    def forward(self, clips):  # [B, T, C, H, W]
        if self.transform == "temporal-residual":
            clips = clips - clips.mean(1, keepdim=True)
        elif self.transform == "normal-flow":
            clips = normal_flow(clips)
        x = self.tubelet(clips.transpose(1, 2))  # [B, D, nt, gh, gw]
        B, D = x.shape[:2]
        x = x.flatten(3).permute(0, 2, 3, 1)  # [B, nt, n, D]
        s = self.spatial(x.reshape(B * self.nt, -1, D))[:, 0].reshape(B, self.nt, D)
        return self.head(self.temporal(s)[:, 0])


def preset_config(init, info, preset, classes):
    """The model config of `preset` as vidcls-info prints it for a checkpoint vidcls-init made."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "m.safetensors")
        subprocess.run([init, "--preset", preset, "--num-classes", str(classes), "--out", ckpt],
                       check=True, stdout=subprocess.DEVNULL)
        out = subprocess.run([info, ckpt, "--json"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
    return json.loads(out)["config"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--info", required=True)
    ap.add_argument("--preset", default="vivit-xs")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    cfg = preset_config(a.init, a.info, a.preset, a.classes)
    if cfg["spatial"].get("share", 1) != 1 or cfg["spatial"].get("attn_mix"):
        raise SystemExit("only plain ViViT presets have a PyTorch twin here")

    torch.manual_seed(0)
    model = ViViT(cfg).train()
    n = sum(p.numel() for p in model.parameters())
    x = torch.randn(a.batch, cfg["frames"], cfg["channels"], cfg["image_size"], cfg["image_size"])
    y = torch.randint(a.classes, (a.batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    # Rounds alternate between the two sides, so a load that comes and goes on the machine
    # weighs on both alike; the ratio is the median of the rounds' ratios.
    rows = []
    for _ in range(a.rounds):
        ours = json.loads(subprocess.run([a.bench, "--preset", a.preset, "--batch", str(a.batch),
                                          "--iters", str(a.iters), "--classes", str(a.classes)],
                                         check=True, stdout=subprocess.PIPE, text=True).stdout)
        torch.set_num_threads(ours["threads"])
        for _ in range(2):
            step()
        ms = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            step()
            ms.append((time.perf_counter() - t0) * 1e3)
        rows.append((ours["step_ms"], statistics.median(ms)))
    ratios = sorted(o / t for o, t in rows)
    print(f"training step, {a.preset}, batch {a.batch}, {ours['threads']} threads "
          f"({a.rounds} alternating rounds, median of {a.iters} steps each):")
    for i, (o, t) in enumerate(rows):
        print(f"  round {i + 1}: vidcls (LibTorch C++) {o:8.1f} ms, PyTorch {torch.__version__} "
              f"(Python) {t:8.1f} ms, ratio {o / t:.3f}")
    print(f"  parameters: vidcls {ours['trainable_parameters']}, PyTorch {n}")
    print(f"  ratio vidcls / PyTorch (median of rounds): {statistics.median(ratios):.3f}")
    # Load from other processes only ever adds time: the fastest round of each side is the
    # estimate least disturbed by it.
    fastest = min(o for o, _ in rows), min(t for _, t in rows)
    print(f"  fastest rounds: vidcls {fastest[0]:.1f} ms, PyTorch {fastest[1]:.1f} ms, "
          f"ratio {fastest[0] / fastest[1]:.3f}")
    if n != ours["trainable_parameters"]:
        print("  WARNING: the parameter counts differ: the models are not the same")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
