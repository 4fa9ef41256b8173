#!/usr/bin/env python3
"""Parity of vidcls with PyTorch on weights imported from torchvision files.

    test_parity.py --init VIDCLS_INIT --runner PARITY_RUNNER [--case resnet50|vit-b16|all]
                   [--tolerance 1e-5] [--keep DIR]

resnet50: a torchvision resnet50 with seeded random weights (BatchNorm affine parameters and
  running statistics too) saved with torch.save(model.state_dict()). A ResNet-50 given the file by
  import_resnet computes the same pooled features and 1000-way logits as torchvision in eval
  mode; so does the backbone of a vidcls-init --preset resnet50-tvit checkpoint.
vit-b16: a torchvision vit_b_16 with seeded random weights, through vidcls-init --preset
  vivit-b16x2-fe --tubelet-init central-frame. On a static clip (every frame the same image) the
  spatial CLS output at every temporal index equals torchvision's encoder(x)[:, 0].

Relative error ||ours - theirs|| / ||theirs|| must be <= the tolerance (float32). Every measured
error is printed; the exit status is non-zero on any mismatch.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_pretrained as mp  # noqa: E402

SEED = 20240611


def rel_err(ours, theirs):
    return float((ours.double() - theirs.double()).norm() / theirs.double().norm())


class Checks:
    def __init__(self, tolerance):
        self.tolerance = tolerance
        self.failures = []

    def compare(self, what, ours, theirs):
        if tuple(ours.shape) != tuple(theirs.shape):
            self.failures.append("%s: shape %s, PyTorch gives %s" % (what, tuple(ours.shape), tuple(theirs.shape)))
            print("FAIL %-58s shape %s vs %s" % (what, tuple(ours.shape), tuple(theirs.shape)))
            return
        err = rel_err(ours, theirs)
        ok = err <= self.tolerance
        print("%s %-58s rel err %.3e (tolerance %.0e)" % ("ok  " if ok else "FAIL", what, err, self.tolerance))
        if not ok:
            self.failures.append("%s: relative error %.3e > %.0e" % (what, err, self.tolerance))


def run(cmd):
    start = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit("test_parity.py: command failed (exit %d): %s" % (proc.returncode, " ".join(cmd)))
    print("  (%.1f s: %s)" % (time.time() - start, os.path.basename(cmd[0])))


def resnet50_case(args, work, checks):
    print("== resnet50: torchvision resnet50 .pth -> import_resnet, vidcls-init resnet50-tvit")
    model = mp.resnet(50, SEED)
    weights = os.path.join(work, "r50.pth")
    torch.save(model.state_dict(), weights)
    g = torch.Generator().manual_seed(SEED)
    images = torch.randn(2, 3, 224, 224, generator=g)
    inputs = os.path.join(work, "images.safetensors")
    mp.write_safetensors(inputs, {"images": images})
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(images))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        features = torch.flatten(model.avgpool(x), 1)
        logits = model.fc(features)
        assert torch.equal(logits, model(images))

    out = os.path.join(work, "resnet_out.safetensors")
    run([args.runner, "resnet", "--pretrained", weights, "--depth", "50", "--num-classes", "1000",
         "--input", inputs, "--out", out])
    ours = mp.read_safetensors(out)
    checks.compare("ResNet-50 pooled features (import_resnet)", ours["features"], features)
    checks.compare("ResNet-50 logits (import_resnet, fc 1000)", ours["logits"], logits)

    ckpt = os.path.join(work, "r50tvit.safetensors")
    run([args.init, "--preset", "resnet50-tvit", "--num-classes", "5", "--pretrained", weights,
         "--out", ckpt])
    out = os.path.join(work, "tvit_out.safetensors")
    run([args.runner, "checkpoint", "--checkpoint", ckpt, "--input", inputs, "--out", out])
    checks.compare("resnet50-tvit checkpoint: backbone features", mp.read_safetensors(out)["features"], features)


def vit_b16_case(args, work, checks):
    print("== vit-b16: torchvision vit_b_16 .pth -> vidcls-init vivit-b16x2-fe (central frame)")
    model = mp.vit_b16(SEED)
    weights = os.path.join(work, "vit_b16.pth")
    torch.save(model.state_dict(), weights)
    g = torch.Generator().manual_seed(SEED + 1)
    image = torch.rand(1, 3, 224, 224, generator=g) * 2 - 1  # [-1, 1], the preset's scaling
    frames = 32  # the preset's clip length
    clip = image.unsqueeze(1).expand(1, frames, 3, 224, 224).contiguous()
    inputs = os.path.join(work, "clip.safetensors")
    mp.write_safetensors(inputs, {"clip": clip})
    with torch.no_grad():
        x = model._process_input(image)
        x = torch.cat([model.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        reference = model.encoder(x)[:, 0]  # after encoder.ln
        # The same as the classifier's input: torchvision's own forward agrees.
        assert torch.allclose(model.heads(reference), model(image), rtol=1e-5, atol=1e-6)

    ckpt = os.path.join(work, "vivit.safetensors")
    run([args.init, "--preset", "vivit-b16x2-fe", "--num-classes", "5", "--pretrained", weights,
         "--tubelet-init", "central-frame", "--out", ckpt])
    os.remove(weights)  # 330 MB less on disk while the runner reads the checkpoint
    out = os.path.join(work, "vivit_out.safetensors")
    run([args.runner, "checkpoint", "--checkpoint", ckpt, "--input", inputs, "--out", out])
    spatial_cls = mp.read_safetensors(out)["spatial_cls"]  # [1, 16, 768]
    if spatial_cls.shape != (1, frames // 2, 768):
        checks.failures.append("spatial_cls has shape %s, expected (1, %d, 768)" % (tuple(spatial_cls.shape), frames // 2))
        return
    worst = max(range(spatial_cls.shape[1]), key=lambda t: rel_err(spatial_cls[:, t], reference))
    for t in sorted({0, worst, spatial_cls.shape[1] - 1}):
        checks.compare("ViViT spatial CLS, temporal index %2d vs ViT encoder(x)[:, 0]" % t,
                       spatial_cls[:, t], reference)
    checks.compare("ViViT spatial CLS, all %d temporal indices" % spatial_cls.shape[1],
                   spatial_cls, reference.unsqueeze(1).expand_as(spatial_cls))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True, help="the vidcls-init executable")
    parser.add_argument("--runner", required=True, help="the parity_runner executable")
    parser.add_argument("--case", choices=["resnet50", "vit-b16", "all"], default="all")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--keep", help="work in this folder and keep the files")
    args = parser.parse_args()

    print("torch %s, torchvision %s" % (torch.__version__, mp.torchvision.__version__))
    checks = Checks(args.tolerance)
    work = args.keep or tempfile.mkdtemp(prefix="vidcls-parity-")
    os.makedirs(work, exist_ok=True)
    try:
        if args.case in ("resnet50", "all"):
            resnet50_case(args, work, checks)
        if args.case in ("vit-b16", "all"):
            vit_b16_case(args, work, checks)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if checks.failures:
        print("\nPARITY FAILED:\n  " + "\n  ".join(checks.failures))
        return 1
    print("\nparity ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
