#!/usr/bin/env python3
"""Scenic's ViViT factorised encoder in plain PyTorch, on parameters laid out as its Flax
checkpoints hold them, and a writer of such checkpoints (python3-msgpack; no JAX or Flax in
Debian).

Written from scenic/projects/vivit/model.py (SpaceTimeViViT, EncoderBlock, Encoder,
embed_3d_patch; read at google-research/scenic commit 4a38d47) and the Kinetics-400 config
configs/kinetics400/vivit_base_factorised_encoder.py: hidden 768, 12 spatial and 4 temporal
layers of 12 heads with MLP 3072, tubelets of 2 x 16 x 16 by a 'VALID' 3D convolution over
[B, T, H, W, C] clips, classifier 'token' (a zero-initialised CLS token per encoder,
"cls_SpatialTransformer" / "cls_TemporalTransformer", prepended before the learned position
embedding), no representation layer, Flax defaults elsewhere: LayerNorm epsilon 1e-6, nn.gelu
(the tanh approximation), attention scaling the query by 1/sqrt(head_dim). The spatial encoder
runs on every tubelet slice with the same parameters (jax.vmap over time).

Published tensors, under "optimizer/target/" in scenic's checkpoints (flax.optim train state;
the optimizer's momentum under "optimizer/state/param_states/", the step and the RNG beside
them), N = 0..11 (spatial) or 0..3 (temporal), E = SpatialTransformer or TemporalTransformer:
  embedding/kernel                                          [2, 16, 16, 3, 768]
  embedding/bias                                            [768]
  cls_E                                                     [1, 1, 768]
  E/posembed_input/pos_embedding                            [1, 197, 768] / [1, 17, 768]
  E/encoderblock_N/LayerNorm_0/scale, bias                  [768]
  E/encoderblock_N/MultiHeadDotProductAttention_0/{query,key,value}/kernel  [768, 12, 64]
  E/encoderblock_N/MultiHeadDotProductAttention_0/{query,key,value}/bias    [12, 64]
  E/encoderblock_N/MultiHeadDotProductAttention_0/out/kernel                [12, 64, 768]
  E/encoderblock_N/MultiHeadDotProductAttention_0/out/bias                  [768]
  E/encoderblock_N/LayerNorm_1/scale, bias                  [768]
  E/encoderblock_N/MlpBlock_0/Dense_0/kernel, bias          [768, 3072], [3072]
  E/encoderblock_N/MlpBlock_0/Dense_1/kernel, bias          [3072, 768], [768]
  E/encoder_norm/scale, bias                                [768]
  output_projection/kernel, bias                            [768, 400], [400]
The file format is flax.serialization.to_bytes: a msgpack map; each array an extension object
of type 1 whose payload is msgpack (shape, dtype name, C-order bytes).
"""

import math

import msgpack
import numpy as np
import torch

VIVIT_B16X2_FE_K400 = dict(frames=32, image_size=224, channels=3, tubelet=(2, 16, 16), dim=768,
                           spatial_depth=12, temporal_depth=4, heads=12, mlp_dim=3072,
                           num_classes=400)


def layout(cfg):
    """{name: shape} of every parameter, as under optimizer/target/."""
    t, h, w = cfg["tubelet"]
    D, H, F = cfg["dim"], cfg["heads"], cfg["mlp_dim"]
    grid = (cfg["image_size"] // h) ** 2
    out = {"embedding/kernel": (t, h, w, cfg["channels"], D), "embedding/bias": (D,)}
    for enc, depth, tokens in (("SpatialTransformer", cfg["spatial_depth"], 1 + grid),
                               ("TemporalTransformer", cfg["temporal_depth"], 1 + cfg["frames"] // t)):
        out["cls_" + enc] = (1, 1, D)
        out[enc + "/posembed_input/pos_embedding"] = (1, tokens, D)
        for n in range(depth):
            b = "%s/encoderblock_%d/" % (enc, n)
            for ln in ("LayerNorm_0", "LayerNorm_1"):
                out[b + ln + "/scale"] = (D,)
                out[b + ln + "/bias"] = (D,)
            a = b + "MultiHeadDotProductAttention_0/"
            for p in ("query", "key", "value"):
                out[a + p + "/kernel"] = (D, H, D // H)
                out[a + p + "/bias"] = (H, D // H)
            out[a + "out/kernel"] = (H, D // H, D)
            out[a + "out/bias"] = (D,)
            out[b + "MlpBlock_0/Dense_0/kernel"] = (D, F)
            out[b + "MlpBlock_0/Dense_0/bias"] = (F,)
            out[b + "MlpBlock_0/Dense_1/kernel"] = (F, D)
            out[b + "MlpBlock_0/Dense_1/bias"] = (D,)
        out[enc + "/encoder_norm/scale"] = (D,)
        out[enc + "/encoder_norm/bias"] = (D,)
    out["output_projection/kernel"] = (D, cfg["num_classes"])
    out["output_projection/bias"] = (cfg["num_classes"],)
    return out


def random_params(cfg, seed):
    """Every parameter random: scales and biases too, the CLS tokens and position tables, so a
    swapped or misread tensor cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in layout(cfg).items():
        if name.endswith("/scale"):
            p = 1 + 0.2 * torch.randn(shape, generator=g)
        elif name.endswith("/bias") or name.startswith("cls_") or "pos_embedding" in name:
            p = 0.1 * torch.randn(shape, generator=g)
        else:  # a kernel: the output dimensions are the last ones but for out/kernel
            fan_in = shape[0] if "/query/" in name or "/key/" in name or "/value/" in name \
                else math.prod(shape[:-1])
            p = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        params[name] = p
    return params


def layer_norm(x, params, name):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-6) * params[name + "/scale"] + params[name + "/bias"]


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(x, params, prefix):
    def project(p):
        return torch.einsum("bnd,dhk->bnhk", x, params[prefix + p + "/kernel"]) + params[prefix + p + "/bias"]
    q, k, v = project("query"), project("key"), project("value")
    q = q / math.sqrt(q.shape[-1])
    weights = torch.einsum("bqhk,bshk->bhqs", q, k).softmax(-1)
    out = torch.einsum("bhqs,bshk->bqhk", weights, v)
    return torch.einsum("bqhk,hkd->bqd", out, params[prefix + "out/kernel"]) + params[prefix + "out/bias"]


def encoder(x, params, enc, depth):
    """Prepend the CLS token, add the position embedding, the pre-norm blocks, the final norm;
    returns the CLS output."""
    cls = params["cls_" + enc].expand(x.shape[0], 1, x.shape[2])
    x = torch.cat([cls, x], 1) + params[enc + "/posembed_input/pos_embedding"]
    for n in range(depth):
        b = "%s/encoderblock_%d/" % (enc, n)
        x = x + attention(layer_norm(x, params, b + "LayerNorm_0"), params, b + "MultiHeadDotProductAttention_0/")
        y = layer_norm(x, params, b + "LayerNorm_1")
        y = gelu_tanh(y @ params[b + "MlpBlock_0/Dense_0/kernel"] + params[b + "MlpBlock_0/Dense_0/bias"])
        x = x + y @ params[b + "MlpBlock_0/Dense_1/kernel"] + params[b + "MlpBlock_0/Dense_1/bias"]
    return layer_norm(x, params, enc + "/encoder_norm")[:, 0]


def forward(params, cfg, clip):
    """clip [B, T, H, W, C] (scenic's layout) -> logits [B, classes]."""
    B, T, Hh, Ww, C = clip.shape
    t, h, w = cfg["tubelet"]
    patches = clip.reshape(B, T // t, t, Hh // h, h, Ww // w, w, C)
    x = torch.einsum("bTtHhWwc,thwcd->bTHWd", patches, params["embedding/kernel"]) + params["embedding/bias"]
    x = x.reshape(B, T // t, -1, cfg["dim"])
    spatial = torch.stack([encoder(x[:, i], params, "SpatialTransformer", cfg["spatial_depth"])
                           for i in range(x.shape[1])], 1)
    features = encoder(spatial, params, "TemporalTransformer", cfg["temporal_depth"])
    return features @ params["output_projection/kernel"] + params["output_projection/bias"]


def _ext(obj):
    if isinstance(obj, np.ndarray):
        payload = msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes("C")), use_bin_type=True)
        return msgpack.ExtType(1, payload)
    raise TypeError("cannot serialise %r" % type(obj))


def nest(flat):
    """{"a/b/c": value} -> {"a": {"b": {"c": value}}}."""
    out = {}
    for name, value in flat.items():
        node = out
        parts = name.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def write_checkpoint(path, params, optimizer_state=True):
    """A train state as flax.training.checkpoints saves scenic's: the parameters under
    optimizer/target, the momentum of the first parameters under optimizer/state (all of them in
    the real files; a few keep this one small), the step, an RNG key (uint32) and a float."""
    arrays = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    state = {"global_step": 1234, "accum_train_time": 5.5, "model_state": {},
             "rng": np.array([7, 4000000000], dtype=np.uint32)}
    optimizer = {"target": nest(arrays)}
    if optimizer_state:
        firsts = dict(list(arrays.items())[:3])
        optimizer["state"] = {"step": 1234, "param_states": nest(
            {k + "/momentum": np.zeros_like(v) for k, v in firsts.items()})}
    state["optimizer"] = optimizer
    with open(path, "wb") as f:
        f.write(msgpack.packb(state, default=_ext, use_bin_type=True, strict_types=True))
