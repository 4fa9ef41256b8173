#!/usr/bin/env python3
"""What the decode-once clip cache and the per-frame feature cache save, measured with
vidcls-train itself on a vidcls-synth dataset (MSR layout):

  - ViViT (vivit-xs): share of step time spent waiting for data with the clip cache, and with
    every training clip decoded from its file at every step (--decode-every-step, as the study's
    notebooks did), both through the same prefetching loader;
  - ResNet + Temporal ViT (resnet18-tvit-xs, frozen backbone): epoch time training on cached
    per-frame features, and running the backbone on every clip (--no-feature-cache).

  training_data.py --bin-dir BUILD/training [--epochs 2] [--keep DIR]
"""
import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def run(cmd):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.stdout.write(p.stdout)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return p.stdout, time.monotonic() - t0


def metrics(out):
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    secs = [float(r["epoch_seconds"]) for r in rows]
    wait = [float(r["data_wait_share"]) for r in rows]
    return sum(secs) / len(secs), sum(wait) / len(wait)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--keep", help="work here and keep the files")
    a = ap.parse_args()
    tool = lambda n: os.path.join(a.bin_dir, n)
    work = a.keep or tempfile.mkdtemp(prefix="vidcls-bench-data-")
    os.makedirs(work, exist_ok=True)
    try:
        data, cache = os.path.join(work, "data"), os.path.join(work, "cache")
        _, t_synth = run([tool("vidcls-synth"), "--layout", "msr", "--out", data, "--classes", "6",
                          "--videos-per-class", "10", "--subjects", "10", "--frames", "48",
                          "--size", "96", "--fps", "15", "--seed", "9", "-q"])
        out, t_prep = run([tool("vidcls-prep"), "--data", data, "--out", cache])
        print(f"dataset: 60 videos x 48 frames, 128x96 MJPEG/AVI (vidcls-synth {t_synth:.1f} s); "
              f"vidcls-prep decoded it once in {t_prep:.1f} s")
        common = ["--data", cache, "--epochs", str(a.epochs), "--repeats", "2", "--seed", "1"]
        rows = []
        for name, model, extra in [
                ("vivit-xs, clip cache", "vivit", []),
                ("vivit-xs, decode every step", "vivit", ["--decode-every-step"]),
                ("resnet18-tvit-xs, feature cache", "resnet-vit", ["--freeze-backbone"]),
                ("resnet18-tvit-xs, backbone every step", "resnet-vit",
                 ["--freeze-backbone", "--no-feature-cache"])]:
            o = os.path.join(work, re.sub(r"[^a-z0-9]+", "-", name))
            shutil.rmtree(o, ignore_errors=True)
            log, wall = run([tool("vidcls-train"), "--model", model, "--out", o] + common + extra)
            epoch_s, wait = metrics(o)
            m = re.search(r"backbone features of \d+ videos cached in ([\d.]+) s", log)
            once = float(m.group(1)) if m else 0.0
            rows.append((name, epoch_s, wait, once, wall))
        print(f"\n{'run':40s} {'epoch s':>8s} {'data wait':>10s} {'one-off s':>10s} {'wall s':>8s}")
        for name, epoch_s, wait, once, wall in rows:
            print(f"{name:40s} {epoch_s:8.2f} {100 * wait:9.1f}% {once:10.1f} {wall:8.1f}")
        print(f"\nclip cache: data wait {100 * rows[0][2]:.1f}% of step time, against "
              f"{100 * rows[1][2]:.1f}% decoding every step (study: ~80%); epoch "
              f"{rows[1][1] / rows[0][1]:.2f}x faster")
        print(f"feature cache: resnet epoch {rows[3][1] / rows[2][1]:.1f}x faster "
              f"({rows[2][1]:.2f} s against {rows[3][1]:.2f} s, after {rows[2][3]:.1f} s once)")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
