#!/usr/bin/env python3
"""Plain-PyTorch references for vidcls's Hugging Face video transformers (models/hf_video.h).

    hf_reference.py KIND OUTDIR SEED     writes OUTDIR/KIND.weights.safetensors (the state dict,
                                         config JSON in the metadata) and OUTDIR/KIND.io.safetensors
                                         ("clip" [B, T, C, H, W] and the reference "logits")

KIND is a key of CONFIGS. Written from the published architecture (no transformers package here)
as torch.nn modules whose state_dict keys are the published checkpoints' names, so the files this
writes are laid out as users download them. Inputs are [B, T, C, H, W], as transformers'
pixel_values and vidcls's clips. Every parameter is random, LayerNorm affine parameters, the CLS
token, the learned position embeddings and VideoMAE's q_bias / v_bias too, so a swapped or
misread tensor cannot go unnoticed.

Published tensors. Source: huggingface/transformers, src/transformers/models/vivit/modeling_vivit.py
(read at commit 015c87b22cb29d0651aa7e59b505f414c5f9c2b0) and .../videomae/modeling_videomae.py
(read at commit 015e68769f9823df27f5f7372dc155277e6ff7e6), with the checkpoints' config.json
(layer sizes, qkv_bias, use_mean_pooling) and file sizes on the Hub; the key layout is what the
conversion scripts convert_vivit_flax_to_pytorch.py / convert_videomae_to_pytorch.py emit.
N runs over 0..11; D = 768, F = 3072.

google/vivit-b-16x2-kinetics400 (VivitForVideoClassification; main has pytorch_model.bin only,
model.safetensors is in the Hub's refs/pr/3, SFconvertbot), 200 tensors, 88.95 M parameters
(355.8 MB in float32: the Hub lists both files at 356 MB; a pooler would make it 358):
  vivit.embeddings.cls_token                                 [1, 1, 768]
  vivit.embeddings.position_embeddings                       [1, 3137, 768]  (1 + 16*14*14)
  vivit.embeddings.patch_embeddings.projection.weight        [768, 3, 2, 16, 16]
  vivit.embeddings.patch_embeddings.projection.bias          [768]
  vivit.encoder.layer.N.attention.attention.query.weight     [768, 768]   (.bias [768])
  vivit.encoder.layer.N.attention.attention.key.weight       [768, 768]   (.bias [768])
  vivit.encoder.layer.N.attention.attention.value.weight     [768, 768]   (.bias [768])
  vivit.encoder.layer.N.attention.output.dense.weight        [768, 768]   (.bias [768])
  vivit.encoder.layer.N.intermediate.dense.weight            [3072, 768]  (.bias [3072])
  vivit.encoder.layer.N.output.dense.weight                  [768, 3072]  (.bias [768])
  vivit.encoder.layer.N.layernorm_before.weight / .bias      [768]
  vivit.encoder.layer.N.layernorm_after.weight / .bias       [768]
  vivit.layernorm.weight / .bias                             [768]
  classifier.weight                                          [400, 768]
  classifier.bias                                            [400]
  No vivit.pooler.*: VivitForVideoClassification builds VivitModel(add_pooling_layer=False).
  config: hidden_act "gelu_fast" (tanh approximation), layer_norm_eps 1e-6, qkv_bias true.

MCG-NJU/videomae-base-finetuned-kinetics (VideoMAEForVideoClassification; model.safetensors on
main since the Hub's PR #3), 186 tensors, 86.53 M parameters (346.1 MB in float32: the Hub
lists 346 MB; a stored position table would add 4.8 MB):
  videomae.embeddings.patch_embeddings.projection.weight     [768, 3, 2, 16, 16]
  videomae.embeddings.patch_embeddings.projection.bias       [768]
  videomae.encoder.layer.N.attention.attention.query.weight  [768, 768]   (no bias)
  videomae.encoder.layer.N.attention.attention.key.weight    [768, 768]   (no bias, none added)
  videomae.encoder.layer.N.attention.attention.value.weight  [768, 768]   (no bias)
  videomae.encoder.layer.N.attention.attention.q_bias        [768]
  videomae.encoder.layer.N.attention.attention.v_bias        [768]
  videomae.encoder.layer.N.attention.output.dense.weight     [768, 768]   (.bias [768])
  videomae.encoder.layer.N.intermediate.dense.weight         [3072, 768]  (.bias [3072])
  videomae.encoder.layer.N.output.dense.weight               [768, 3072]  (.bias [768])
  videomae.encoder.layer.N.layernorm_before.weight / .bias   [768]
  videomae.encoder.layer.N.layernorm_after.weight / .bias    [768]
  fc_norm.weight / .bias                                     [768]
  classifier.weight                                          [400, 768]
  classifier.bias                                            [400]
  No position tensor: VideoMAEEmbeddings keeps its sinusoid table as a plain attribute (neither
  parameter nor buffer). No videomae.layernorm: use_mean_pooling is true in the config, which
  replaces it by fc_norm (built as nn.LayerNorm(hidden_size): eps 1e-5, not layer_norm_eps).
  config: hidden_act "gelu" (exact), layer_norm_eps 1e-12, qkv_bias true, use_mean_pooling true.
"""

import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_pretrained import write_safetensors  # noqa: E402

# Configs in vidcls's JSON form (VivitJointConfig / VideoMAEConfig), so the same dict builds both
# sides. The *-b ones are the published checkpoints; the small ones keep tests fast.
VIVIT_B_16X2_K400 = dict(frames=32, image_size=224, channels=3, tubelet=[2, 16, 16],
                         num_classes=400, dim=768, depth=12, heads=12, mlp_dim=3072, ln_eps=1e-6,
                         hidden_act="gelu_fast", qkv_bias=True)
VIDEOMAE_B_K400 = dict(frames=16, image_size=224, channels=3, tubelet=[2, 16, 16],
                       num_classes=400, dim=768, depth=12, heads=12, mlp_dim=3072, ln_eps=1e-12,
                       fc_norm_eps=1e-5, hidden_act="gelu", qkv_bias=True, use_mean_pooling=True)
VIVIT_SMALL = dict(VIVIT_B_16X2_K400, frames=4, image_size=32, tubelet=[2, 8, 8], num_classes=10,
                   dim=64, depth=2, heads=4, mlp_dim=128)
VIDEOMAE_SMALL = dict(VIDEOMAE_B_K400, frames=4, image_size=32, tubelet=[2, 8, 8], num_classes=10,
                      dim=64, depth=2, heads=4, mlp_dim=128)
# The config of MCG-NJU/videomae-base that many fine-tunes inherit: no mean pooling.
VIDEOMAE_SMALL_FIRST_TOKEN = dict(VIDEOMAE_SMALL, use_mean_pooling=False)

CONFIGS = {
    "vivit-joint-small": ("vivit-joint", VIVIT_SMALL),
    "videomae-small": ("videomae", VIDEOMAE_SMALL),
    "videomae-small-first-token": ("videomae", VIDEOMAE_SMALL_FIRST_TOKEN),
    "vivit-b16x2-k400": ("vivit-joint", VIVIT_B_16X2_K400),
    "videomae-b-k400": ("videomae", VIDEOMAE_B_K400),
}


def gelu_fast(x):
    """transformers' "gelu_fast": the tanh approximation, with its own constant for sqrt(2/pi)."""
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def gelu_exact(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def activation(name):
    return gelu_exact if name == "gelu" else gelu_fast


class Dense(nn.Module):
    """A Linear one level down (".dense"), as the published names nest it."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.dense(x)


class SelfAttention(nn.Module):
    def __init__(self, cfg, separate_qv_bias):
        super().__init__()
        d = cfg["dim"]
        own_bias = cfg["qkv_bias"] and not separate_qv_bias
        self.heads = cfg["heads"]
        self.query = nn.Linear(d, d, bias=own_bias)
        self.key = nn.Linear(d, d, bias=own_bias)
        self.value = nn.Linear(d, d, bias=own_bias)
        if cfg["qkv_bias"] and separate_qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(d))
            self.v_bias = nn.Parameter(torch.zeros(d))
        else:
            self.q_bias = self.v_bias = None

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.heads
        q_bias = self.q_bias if self.q_bias is not None else self.query.bias
        v_bias = self.v_bias if self.v_bias is not None else self.value.bias
        q = nn.functional.linear(x, self.query.weight, q_bias)
        k = nn.functional.linear(x, self.key.weight, self.key.bias)
        v = nn.functional.linear(x, self.value.weight, v_bias)
        q, k, v = (t.reshape(b, n, self.heads, hd).permute(0, 2, 1, 3) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return out.permute(0, 2, 1, 3).reshape(b, n, d)


class Attention(nn.Module):
    def __init__(self, cfg, separate_qv_bias):
        super().__init__()
        self.attention = SelfAttention(cfg, separate_qv_bias)
        self.output = Dense(cfg["dim"], cfg["dim"])

    def forward(self, x):
        return self.output(self.attention(x))


class Layer(nn.Module):
    """Pre-norm: x + attention(LN(x)), then + output(act(intermediate(LN(.))))."""

    def __init__(self, cfg, separate_qv_bias):
        super().__init__()
        d, eps = cfg["dim"], cfg["ln_eps"]
        self.attention = Attention(cfg, separate_qv_bias)
        self.intermediate = Dense(d, cfg["mlp_dim"])
        self.output = Dense(cfg["mlp_dim"], d)
        self.layernorm_before = nn.LayerNorm(d, eps=eps)
        self.layernorm_after = nn.LayerNorm(d, eps=eps)
        self.act = activation(cfg["hidden_act"])

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(self.act(self.intermediate(self.layernorm_after(x))))


class Encoder(nn.Module):
    def __init__(self, cfg, separate_qv_bias):
        super().__init__()
        self.layer = nn.ModuleList([Layer(cfg, separate_qv_bias) for _ in range(cfg["depth"])])

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return x


class TubeletEmbedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        t, h, w = cfg["tubelet"]
        self.projection = nn.Conv3d(cfg["channels"], cfg["dim"], (t, h, w), stride=(t, h, w))

    def forward(self, clips):  # [B, T, C, H, W] -> [B, tubelets, D]
        return self.projection(clips.permute(0, 2, 1, 3, 4)).flatten(2).transpose(1, 2)


def num_tubelets(cfg):
    t, h, w = cfg["tubelet"]
    return (cfg["frames"] // t) * (cfg["image_size"] // h) * (cfg["image_size"] // w)


class VivitEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["dim"]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.patch_embeddings = TubeletEmbedding(cfg)
        self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + num_tubelets(cfg), d))

    def forward(self, clips):
        x = self.patch_embeddings(clips)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.position_embeddings


class VivitBackbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = VivitEmbeddings(cfg)
        self.encoder = Encoder(cfg, separate_qv_bias=False)
        self.layernorm = nn.LayerNorm(cfg["dim"], eps=cfg["ln_eps"])

    def forward(self, clips):
        return self.layernorm(self.encoder(self.embeddings(clips)))


class VivitJoint(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.vivit = VivitBackbone(cfg)
        self.classifier = nn.Linear(cfg["dim"], cfg["num_classes"])

    def forward(self, clips):
        return self.classifier(self.vivit(clips)[:, 0])


def sinusoid_table(n_position, dim):
    """VideoMAE's fixed table: angle pos / 10000^(2 floor(i / 2) / dim), sin even, cos odd."""
    pos = np.arange(n_position, dtype=np.float64)[:, None]
    i = np.arange(dim)
    angles = pos / np.power(10000.0, 2 * (i // 2) / dim)[None, :]
    table = np.where(i % 2 == 0, np.sin(angles), np.cos(angles))
    return torch.from_numpy(table).float().unsqueeze(0)


class VideoMAEEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.patch_embeddings = TubeletEmbedding(cfg)
        # A plain attribute, as in transformers: not in the state dict.
        self.position_table = sinusoid_table(num_tubelets(cfg), cfg["dim"])

    def forward(self, clips):
        return self.patch_embeddings(clips) + self.position_table.to(clips.dtype)


class VideoMAEBackbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = VideoMAEEmbeddings(cfg)
        self.encoder = Encoder(cfg, separate_qv_bias=True)
        mean_pooling = cfg.get("use_mean_pooling", True)
        self.layernorm = None if mean_pooling else nn.LayerNorm(cfg["dim"], eps=cfg["ln_eps"])

    def forward(self, clips):
        x = self.encoder(self.embeddings(clips))
        return x if self.layernorm is None else self.layernorm(x)


class VideoMAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.videomae = VideoMAEBackbone(cfg)
        mean_pooling = cfg.get("use_mean_pooling", True)
        self.fc_norm = nn.LayerNorm(cfg["dim"], eps=cfg["fc_norm_eps"]) if mean_pooling else None
        self.classifier = nn.Linear(cfg["dim"], cfg["num_classes"])

    def forward(self, clips):
        x = self.videomae(clips)
        # Without mean pooling transformers takes token 0, which here is the first tubelet's.
        x = self.fc_norm(x.mean(1)) if self.fc_norm is not None else x[:, 0]
        return self.classifier(x)


def randomise(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("layernorm_before.weight", "layernorm_after.weight",
                              "layernorm.weight", "fc_norm.weight")):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(("bias", "q_bias", "v_bias")):
                p.copy_(0.05 * torch.randn_like(p))
            elif name.endswith(("cls_token", "position_embeddings")):
                p.copy_(0.1 * torch.randn_like(p))
    return model.eval()


def vivit_joint(config):
    """VivitForVideoClassification's layout and computation, with random weights drawn by the
    caller's seed (randomise() for the affine and embedding parameters too)."""
    return VivitJoint(config)


def videomae(config):
    """VideoMAEForVideoClassification's layout and computation."""
    return VideoMAE(config)


def build(kind, seed):
    arch, cfg = CONFIGS[kind]
    torch.manual_seed(seed)
    model = randomise(vivit_joint(cfg) if arch == "vivit-joint" else videomae(cfg))
    return arch, cfg, model


def main(argv):
    if len(argv) != 4 or argv[1] not in CONFIGS:
        raise SystemExit(__doc__ + "\nkinds: " + ", ".join(CONFIGS))
    kind, outdir, seed = argv[1], argv[2], int(argv[3])
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    arch, cfg, model = build(kind, seed)
    g = torch.Generator().manual_seed(seed + 1)
    clip = torch.randn(1, cfg["frames"], cfg["channels"], cfg["image_size"], cfg["image_size"],
                       generator=g)
    with torch.no_grad():
        logits = model(clip)
    os.makedirs(outdir, exist_ok=True)
    meta = {"architecture": arch, "config": json.dumps(cfg)}
    write_safetensors(os.path.join(outdir, kind + ".weights.safetensors"), model.state_dict(), meta)
    write_safetensors(os.path.join(outdir, kind + ".io.safetensors"),
                      {"clip": clip, "logits": logits}, meta)
    print("%s: %d tensors, %.2f M parameters, logits %s" % (
        kind, len(model.state_dict()), sum(p.numel() for p in model.parameters()) / 1e6,
        tuple(logits.shape)))


if __name__ == "__main__":
    main(sys.argv)
