#!/usr/bin/env python3
"""Held-out accuracy of each model's CPU preset with its default recipe on vidcls-synth motion
data in the MSR DailyActivity3D layout (cross-subject split: odd subjects train, even test), in
regimes: enough data, and as little as MSR DailyActivity3D has (20 videos per class), each on
vidcls-synth's default scenes or with a cluttered background (6 object-sized shapes, about half
of them moving slowly) and the slowly drifting camera.

  accuracy_synth.py --bin-dir BUILD/training [--classes 6] [--models vivit,mini-vivit,resnet-vit]
                    [--regimes large,small,large-clutter,small-clutter] [--mirrors]
                    [--extra "OPTIONS"] [--keep DIR]

best.safetensors is the epoch with the best top-1 on the validation side (whole subjects carved
from the training side); the test subjects are never trained on and never choose. Prints, per
model and regime, the test top-1 of that chosen epoch (the number to report), of the last epoch,
and of the chosen checkpoint re-measured with vidcls-eval on the decoded videos (the way the live
pipeline sees them), and the minutes of training. --mirrors adds vidcls-train's mirrors with the
pairs of vidcls-synth's classes that each mirror turns into each other.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CLUTTER = ["--clutter", "6", "--camera", "drift"]
REGIMES = {
    # videos per class, subjects (half of each class trains, half is held out), scene options
    "large": (60, 10, []),
    "small": (20, 10, []),
    "large-clutter": (60, 10, CLUTTER),
    "small-clutter": (20, 10, CLUTTER),
}

# vidcls-synth's motions in its order, and the pairs each mirror swaps.
MOTIONS = ["slide_left", "slide_right", "slide_up", "slide_down", "rotate_cw", "rotate_ccw",
           "grow", "shrink", "orbit_cw", "orbit_ccw"]
MIRROR_PAIRS = {
    "--flip-swap": [("slide_left", "slide_right"), ("rotate_cw", "rotate_ccw"),
                    ("orbit_cw", "orbit_ccw")],
    "--vflip-swap": [("slide_up", "slide_down"), ("rotate_cw", "rotate_ccw"),
                     ("orbit_cw", "orbit_ccw")],
    "--reverse-swap": [("slide_left", "slide_right"), ("slide_up", "slide_down"),
                       ("rotate_cw", "rotate_ccw"), ("grow", "shrink"), ("orbit_cw", "orbit_ccw")],
}


def mirror_options(classes):
    """vidcls-train's mirror options for the first `classes` motions."""
    present = set(MOTIONS[:classes])
    out = []
    for option, pairs in MIRROR_PAIRS.items():
        kept = [f"{a}:{b}" for a, b in pairs if a in present and b in present]
        if kept:
            out += [option, ",".join(kept)]
    return out


def run(cmd, log):
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.stdout.write(open(log).read()[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--models", default="vivit,mini-vivit,resnet-vit")
    ap.add_argument("--regimes", default="large,small")
    ap.add_argument("--mirrors", action="store_true",
                    help="mirror the training clips, swapping the classes each mirror swaps")
    ap.add_argument("--extra", default="", help="more vidcls-train options, space-separated")
    ap.add_argument("--keep", help="work here and keep the files")
    a = ap.parse_args()
    tool = lambda n: os.path.join(a.bin_dir, n)
    work = a.keep or tempfile.mkdtemp(prefix="vidcls-accuracy-")
    os.makedirs(work, exist_ok=True)
    results = []
    try:
        for regime in a.regimes.split(","):
            per_class, subjects, scene = REGIMES[regime]
            data = os.path.join(work, f"data-{regime}")
            if not os.path.exists(os.path.join(data, "labels.txt")):
                run([tool("vidcls-synth"), "--layout", "msr", "--out", data, "--classes",
                     str(a.classes), "--videos-per-class", str(per_class), "--subjects",
                     str(subjects), "--frames", "48", "--size", "96", "--fps", "15", "--seed",
                     "21", "-j", "2", "-q"] + scene, os.path.join(work, f"synth-{regime}.log"))
            cache = os.path.join(work, f"cache-{regime}")  # one decode for every model
            for model in a.models.split(","):
                out = os.path.join(work, f"{model}-{regime}")
                shutil.rmtree(out, ignore_errors=True)
                cmd = [tool("vidcls-train"), "--model", model, "--data", data, "--out", out,
                       "--cache", cache, "--seed", "1"] + a.extra.split()
                if a.mirrors:
                    cmd += mirror_options(a.classes)
                seconds = run(cmd, os.path.join(work, f"train-{model}-{regime}.log"))
                with open(os.path.join(out, "metrics.csv")) as f:
                    rows = list(csv.DictReader(f))
                with open(os.path.join(cache, "index.json")) as f:
                    sides = [v["split"] for v in json.load(f)["videos"]]
                train_s = sum(float(r["epoch_seconds"]) for r in rows)
                chosen = max(rows, key=lambda r: (float(r["val_top1"]), -float(r["val_loss"])))
                ev = os.path.join(out, "eval", "result.json")
                run([tool("vidcls-eval"), "--model", os.path.join(out, "best.safetensors"),
                     "--data", data, "-q", "--json", ev], os.path.join(out, "eval.log"))
                with open(ev) as f:
                    top1 = json.load(f)["top1"]
                results.append((model, regime, sides.count("train"), sides.count("val"),
                                int(chosen["epoch"]), len(rows), float(chosen["test_top1"]),
                                float(rows[-1]["test_top1"]), top1, train_s / 60, seconds / 60))
                print(f"{model} / {regime}: chosen epoch {chosen['epoch']} (validation "
                      f"{float(chosen['val_top1']):.3f}), its test {results[-1][6]:.3f}, last "
                      f"{results[-1][7]:.3f}, decoded eval {top1:.3f}, {train_s / 60:.1f} min",
                      flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.classes} classes, chance {100 / a.classes:.1f}%; cross-subject split")
    print(f"{'model':12s} {'regime':13s} {'train/val':>9s} {'chosen':>9s} {'test top-1':>10s} "
          f"{'last':>6s} {'eval (decoded)':>14s} {'train min':>9s} {'wall min':>8s}")
    for m, r, n, v, ce, e, chosen, last, ev, tmin, wmin in results:
        print(f"{m:12s} {r:13s} {n:5d}/{v:<3d} {ce:4d} of {e:<2d} {100 * chosen:9.1f}% "
              f"{100 * last:5.1f}% {100 * ev:13.1f}% {tmin:9.1f} {wmin:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
