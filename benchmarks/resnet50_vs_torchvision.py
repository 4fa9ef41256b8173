#!/usr/bin/python3
"""Our ResNet-50 forward against torchvision's, in one run on the same machine.

Runs `bench-forward --resnet50-batch` (LibTorch, C++) and times torchvision.models.resnet50 in
Debian's python3-torch on the same input shape (8 x 3 x 224 x 224, eval, no grad), with the same
thread count, one after the other, and prints both medians and their ratio (ours / torchvision).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import torch
import torchvision


def torchvision_ms(iters: int) -> float:
    torch.manual_seed(0)
    net = torchvision.models.resnet50().eval()
    x = torch.randn(8, 3, 224, 224)
    times = []
    with torch.no_grad():
        for _ in range(2):
            net(x)
        for _ in range(iters):
            t0 = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench", required=True, help="path to bench-forward")
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    out = subprocess.run([args.bench, "--resnet50-batch", "--iters", str(args.iters)],
                         check=True, capture_output=True, text=True).stdout
    ours = float(re.search(r"resnet50_ms ([0-9.]+)", out).group(1))
    ref = torchvision_ms(args.iters)
    print(f"ResNet-50 forward, 8x3x224x224, eval, {threads} threads, median of {args.iters}")
    print(f"  vidcls (LibTorch C++):        {ours:9.1f} ms")
    print(f"  torchvision {torchvision.__version__} (Python): {ref:9.1f} ms")
    print(f"  ratio ours / torchvision:     {ours / ref:9.3f}  (goal <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
