#!/usr/bin/env python3
"""Held-out accuracy of each model's CPU preset with its default recipe on vidcls-synth motion
data in the MSR DailyActivity3D layout (cross-subject split: odd subjects train, even test), in
regimes: enough data, and as little as MSR DailyActivity3D has (20 videos per class), each on
vidcls-synth's default scenes or with a cluttered background (6 object-sized shapes, about half
of them moving slowly) and the slowly drifting camera.

  accuracy_synth.py --bin-dir BUILD/training [--classes 6] [--models vivit,mini-vivit,resnet-vit]
                    [--regimes large,small,large-clutter,small-clutter] [--mirrors]
                    [--extra "OPTIONS"] [--seed 1] [--keep DIR] [--csv FILE]

best.safetensors is the epoch with the best top-1 on the validation side (whole subjects carved
from the training side); the test subjects are never trained on and never choose. Prints, per
model and regime, the test top-1 of that chosen epoch (the number to report), of the last epoch,
and of the chosen checkpoint re-measured with vidcls-eval on the decoded videos (the way the live
pipeline sees them), and the minutes of training. --mirrors adds vidcls-train's mirrors with the
pairs of vidcls-synth's classes that each mirror turns into each other. --csv appends one row
per model and regime to FILE (written with its header first if it does not exist; the columns
are CSV_COLUMNS): docs/accuracy/synth.csv is the file that benchmarks/accuracy_table.py renders
into docs/accuracy.md.
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

# The preset vidcls-train gives each model when --preset is not among the options.
PRESETS = {"vivit": "vivit-xs", "mini-vivit": "mini-vivit-xs", "resnet-vit": "resnet18-tvit-xs"}
# One row of --csv: the regime ("set"), the run's options beyond the preset's recipe (mirrors
# included; empty for the recipe itself), top-1 in percent, minutes of training (the sum of
# metrics.csv's epoch times).
CSV_COLUMNS = ["set", "model", "preset", "options", "seed", "validation", "epochs", "chosen_epoch",
               "val_top1", "test_top1", "last_top1", "decoded_top1", "minutes", "date",
               "revision"]

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


def option_value(options, name):
    """The value of the last `name` among the tokens `options`, or None."""
    value = None
    for i, token in enumerate(options[:-1]):
        if token == name:
            value = options[i + 1]
    return value


def validation_side(videos, options):
    """How many training subjects the run held out for validation, and the option that did it."""
    subjects = len({v["subject"] for v in videos if v["split"] == "val"})
    text = f"{subjects} subject{'' if subjects == 1 else 's'}"
    fraction = option_value(options, "--val-fraction")
    return f"{text} (--val-fraction {fraction})" if fraction is not None else text


def revision():
    """The checkout's commit (marked -dirty where tracked files differ from it), or ''."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", here, "status", "--porcelain",
                                  "--untracked-files=no"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("-dirty" if changed else "")


def append_row(path, row):
    """Appends `row` to the CSV file `path`, writing the header first where the file is new."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if header != CSV_COLUMNS:
            raise SystemExit(f"{path}: its columns are not {','.join(CSV_COLUMNS)}")
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow(row)


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
    ap.add_argument("--seed", type=int, default=1, help="vidcls-train's seed")
    ap.add_argument("--keep", help="work here and keep the files")
    ap.add_argument("--csv", help="append one row per model and regime to this CSV file")
    a = ap.parse_args()
    if a.csv:
        a.csv = os.path.abspath(a.csv)
    options = a.extra.split() + (mirror_options(a.classes) if a.mirrors else [])
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
                       "--cache", cache, "--seed", str(a.seed)] + options
                seconds = run(cmd, os.path.join(work, f"train-{model}-{regime}.log"))
                with open(os.path.join(out, "metrics.csv")) as f:
                    rows = list(csv.DictReader(f))
                with open(os.path.join(cache, "index.json")) as f:
                    videos = json.load(f)["videos"]
                sides = [v["split"] for v in videos]
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
                if a.csv:
                    append_row(a.csv, {
                        "set": regime, "model": model,
                        "preset": option_value(options, "--preset") or PRESETS.get(model, ""),
                        "options": " ".join(options), "seed": a.seed,
                        "validation": validation_side(videos, options), "epochs": len(rows),
                        "chosen_epoch": int(chosen["epoch"]),
                        "val_top1": f"{100 * float(chosen['val_top1']):.1f}",
                        "test_top1": f"{100 * float(chosen['test_top1']):.1f}",
                        "last_top1": f"{100 * float(rows[-1]['test_top1']):.1f}",
                        "decoded_top1": f"{100 * top1:.1f}", "minutes": f"{train_s / 60:.1f}",
                        "date": time.strftime("%Y-%m-%d"), "revision": revision()})
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.classes} classes, chance {100 / a.classes:.1f}%; cross-subject split, "
          f"seed {a.seed}")
    print(f"{'model':12s} {'regime':13s} {'train/val':>9s} {'chosen':>9s} {'test top-1':>10s} "
          f"{'last':>6s} {'eval (decoded)':>14s} {'train min':>9s} {'wall min':>8s}")
    for m, r, n, v, ce, e, chosen, last, ev, tmin, wmin in results:
        print(f"{m:12s} {r:13s} {n:5d}/{v:<3d} {ce:4d} of {e:<2d} {100 * chosen:9.1f}% "
              f"{100 * last:5.1f}% {100 * ev:13.1f}% {tmin:9.1f} {wmin:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
