#!/usr/bin/env python3
"""Writes pretrained-weight files as users download them, made from seeded random torchvision
models, for the import tests of vidcls (tests/unit/test_pretrained.cpp, test_parity.py).

    make_pretrained.py KIND OUT SEED
    make_pretrained.py KIND1,KIND2,... OUTDIR SEED    (one file per kind: OUTDIR/KIND.pth|.safetensors)

Every kind of one family holds the same weights for the same seed, renamed:

  tv-vit-small          torchvision VisionTransformer, 32 px, 8x8 patches, 4 layers, 32-d (.pth)
  timm-vit-small        the same in timm naming (.safetensors)
  hf-vit-small          the same in Hugging Face ViTForImageClassification naming (.safetensors)
  deit-vit-small        the same in timm naming wrapped as DeiT's {"model": state_dict} (.pth)
  deit-distilled-small  DeiT distilled: timm naming + dist_token and its position slot (.pth)
  hf-deit-small         the distilled one in Hugging Face DeiT naming (.safetensors)
  tv-vit-b16            torchvision vit_b_16 (.pth)
  tv-resnet18, tv-resnet50   torchvision resnet (.pth)
  hf-resnet18, hf-resnet50   the same in Hugging Face microsoft/resnet-* naming (.safetensors)

Every parameter is random (LayerNorm and BatchNorm affine parameters and running statistics too),
so a mapping that swaps two LayerNorms or BatchNorms cannot go unnoticed. No safetensors package
is needed: the format is written here (8-byte header length, JSON header, raw bytes).
"""

import json
import os
import re
import struct
import sys

import numpy as np
import torch
import torchvision

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.float64: "F64", torch.int64: "I64",
           torch.int32: "I32", torch.uint8: "U8"}
_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
       "U8": np.uint8}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        a = np.frombuffer(raw, dtype=_NP[e["dtype"]], count=(end - begin) // np.dtype(_NP[e["dtype"]]).itemsize,
                          offset=8 + n + begin)
        out[name] = torch.from_numpy(a.copy()).reshape(e["shape"])
    return out


def randomise_vit(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if re.search(r"(ln_\d|\.ln)\.weight$", name):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias") or name == "class_token":
                p.copy_(0.05 * torch.randn_like(p))
    return model


def randomise_resnet(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, ())))
        model.fc.bias.normal_(0.0, 0.1)
    return model


def small_vit(seed):
    torch.manual_seed(seed)
    from torchvision.models.vision_transformer import VisionTransformer
    m = VisionTransformer(image_size=32, patch_size=8, num_layers=4, num_heads=2, hidden_dim=32,
                          mlp_dim=64, num_classes=10)
    return randomise_vit(m).eval()


def vit_b16(seed):
    torch.manual_seed(seed)
    return randomise_vit(torchvision.models.vit_b_16()).eval()


def resnet(depth, seed):
    torch.manual_seed(seed)
    return randomise_resnet(getattr(torchvision.models, "resnet%d" % depth)()).eval()


_TIMM_VIT = [
    (r"^class_token$", "cls_token"),
    (r"^encoder\.pos_embedding$", "pos_embed"),
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.", r"blocks.\1.norm1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)$",
     r"blocks.\1.attn.qkv.\2"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.", r"blocks.\1.norm2."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.3\.", r"blocks.\1.mlp.fc2."),
    (r"^encoder\.ln\.", "norm."),
    (r"^heads\.head\.", "head."),
]

_HF_VIT = [
    (r"^class_token$", "vit.embeddings.cls_token"),
    (r"^encoder\.pos_embedding$", "vit.embeddings.position_embeddings"),
    (r"^conv_proj\.", "vit.embeddings.patch_embeddings.projection."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.", r"vit.encoder.layer.\1.layernorm_before."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.",
     r"vit.encoder.layer.\1.attention.output.dense."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.", r"vit.encoder.layer.\1.layernorm_after."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.0\.", r"vit.encoder.layer.\1.intermediate.dense."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.3\.", r"vit.encoder.layer.\1.output.dense."),
    (r"^encoder\.ln\.", "vit.layernorm."),
    (r"^heads\.head\.", "classifier."),
]

_HF_RESNET = [
    (r"^conv1\.weight$", "resnet.embedder.embedder.convolution.weight"),
    (r"^bn1\.", "resnet.embedder.embedder.normalization."),
    (r"^layer(\d)\.(\d+)\.downsample\.0\.", lambda m: "resnet.encoder.stages.%d.layers.%s.shortcut.convolution." % (int(m[1]) - 1, m[2])),
    (r"^layer(\d)\.(\d+)\.downsample\.1\.", lambda m: "resnet.encoder.stages.%d.layers.%s.shortcut.normalization." % (int(m[1]) - 1, m[2])),
    (r"^layer(\d)\.(\d+)\.conv(\d)\.", lambda m: "resnet.encoder.stages.%d.layers.%s.layer.%d.convolution." % (int(m[1]) - 1, m[2], int(m[3]) - 1)),
    (r"^layer(\d)\.(\d+)\.bn(\d)\.", lambda m: "resnet.encoder.stages.%d.layers.%s.layer.%d.normalization." % (int(m[1]) - 1, m[2], int(m[3]) - 1)),
    (r"^fc\.", "classifier.1."),
]


def rename(sd, rules):
    out = {}
    for key, t in sd.items():
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = t
                break
        else:
            raise KeyError("no rule for " + key)
    return out


def to_timm(sd):
    return rename(sd, _TIMM_VIT)


def to_hf_vit(sd, prefix="vit."):
    out = {}
    for key, t in sd.items():
        m = re.match(r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)$", key)
        if m:
            for part, chunk in zip(("query", "key", "value"), t.chunk(3, dim=0)):
                out["%sencoder.layer.%s.attention.attention.%s.%s" % (prefix, m[1], part, m[2])] = chunk.clone()
        else:
            new = rename({key: t}, _HF_VIT)
            (name, value), = new.items()
            out[name.replace("vit.", prefix, 1) if name.startswith("vit.") else name] = value
    return out


def with_dist_token(timm_sd, seed):
    """DeiT distilled: a distillation token after CLS, with its own position slot and head."""
    g = torch.Generator().manual_seed(seed + 1)
    d = timm_sd["cls_token"].shape[-1]
    out = dict(timm_sd)
    out["dist_token"] = 0.02 * torch.randn(1, 1, d, generator=g)
    pos = timm_sd["pos_embed"]
    out["pos_embed"] = torch.cat([pos[:, :1], 0.02 * torch.randn(1, 1, d, generator=g), pos[:, 1:]], 1)
    out["head_dist.weight"] = timm_sd["head.weight"].clone()
    out["head_dist.bias"] = timm_sd["head.bias"].clone()
    return out


def timm_to_hf_deit(sd):
    """timm DeiT distilled -> Hugging Face DeiTForImageClassificationWithTeacher."""
    out = {}
    for key, t in sd.items():
        if key == "dist_token":
            out["deit.embeddings.distillation_token"] = t
        elif key == "head_dist.weight" or key == "head_dist.bias":
            out["distillation_classifier." + key.split(".")[-1]] = t
        elif key in ("head.weight", "head.bias"):
            out["cls_classifier." + key.split(".")[-1]] = t
        elif key == "pos_embed":
            out["deit.embeddings.position_embeddings"] = t
        elif key == "cls_token":
            out["deit.embeddings.cls_token"] = t
        elif key.startswith("patch_embed.proj."):
            out["deit.embeddings.patch_embeddings.projection." + key.split(".")[-1]] = t
        elif key.startswith("norm."):
            out["deit.layernorm." + key.split(".")[-1]] = t
        else:
            m = re.match(r"^blocks\.(\d+)\.(.*)\.(weight|bias)$", key)
            i, part, p = m[1], m[2], m[3]
            base = "deit.encoder.layer.%s." % i
            if part == "attn.qkv":
                for name, chunk in zip(("query", "key", "value"), t.chunk(3, dim=0)):
                    out[base + "attention.attention.%s.%s" % (name, p)] = chunk.clone()
                continue
            names = {"norm1": "layernorm_before", "attn.proj": "attention.output.dense",
                     "norm2": "layernorm_after", "mlp.fc1": "intermediate.dense",
                     "mlp.fc2": "output.dense"}
            out[base + names[part] + "." + p] = t
    return out


def make(kind, out, seed):
    if kind == "tv-vit-small":
        torch.save(small_vit(seed).state_dict(), out)
    elif kind == "timm-vit-small":
        write_safetensors(out, to_timm(small_vit(seed).state_dict()), {"format": "pt"})
    elif kind == "hf-vit-small":
        write_safetensors(out, to_hf_vit(small_vit(seed).state_dict()), {"format": "pt"})
    elif kind == "deit-vit-small":
        torch.save({"model": to_timm(small_vit(seed).state_dict())}, out)
    elif kind == "deit-distilled-small":
        torch.save({"model": with_dist_token(to_timm(small_vit(seed).state_dict()), seed)}, out)
    elif kind == "hf-deit-small":
        sd = with_dist_token(to_timm(small_vit(seed).state_dict()), seed)
        write_safetensors(out, timm_to_hf_deit(sd), {"format": "pt"})
    elif kind == "tv-vit-b16":
        torch.save(vit_b16(seed).state_dict(), out)
    elif kind in ("tv-resnet18", "tv-resnet50"):
        torch.save(resnet(int(kind[9:]), seed).state_dict(), out)
    elif kind in ("hf-resnet18", "hf-resnet50"):
        sd = rename(resnet(int(kind[9:]), seed).state_dict(), _HF_RESNET)
        write_safetensors(out, sd, {"format": "pt"})
    else:
        raise SystemExit("make_pretrained.py: unknown kind '%s'" % kind)


def extension(kind):
    return ".pth" if kind.startswith(("tv-", "deit-")) else ".safetensors"


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    kinds, out, seed = argv[1].split(","), argv[2], int(argv[3])
    torch.set_num_threads(1)
    if len(kinds) == 1:
        make(kinds[0], out, seed)
    else:
        os.makedirs(out, exist_ok=True)
        for kind in kinds:
            make(kind, os.path.join(out, kind + extension(kind)), seed)


if __name__ == "__main__":
    main(sys.argv)
