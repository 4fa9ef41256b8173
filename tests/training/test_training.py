#!/usr/bin/env python3
"""vidcls-train / vidcls-eval end to end, on small synthetic motion datasets.

  test_training.py --bin-dir BUILD/training --work DIR CASE

CASE is one of: step, learns, corrupt, select, reproducible, resume, eval, distill, precision,
backbone, mirrors, people. The cases but step and people share one dataset and clip cache under
DIR (made once, under a lock), so each spends its time on what it checks; step (the quick
tier's) makes a tiny dataset of its own, people (per-person actions) two of its own. Default
cache locations go under DIR too (VIDCLS_CACHE_DIR).
"""
import argparse
import csv
import fcntl
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib

# Columns that measure time, not the training: they differ between identical runs.
TIMING_COLUMNS = {"epoch_seconds", "data_wait_share"}
SYNTH = ["--layout", "msr", "--classes", "4", "--videos-per-class", "30", "--subjects", "6",
         "--frames", "32", "--size", "80", "--fps", "15", "--seed", "3", "--no-drift"]
EPOCHS_LEARN = 3


CURVES_SIZE = (1500, 480)  # kCurvesWidth x kCurvesHeight in metrics.h
CURVE_COLOURS = {"train": (31, 119, 180), "validation": (255, 127, 14), "test": (44, 160, 44)}


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def png_pixels(path):
    """Width, height and the RGB(A) rows of an 8-bit truecolour PNG, read with the standard
    library alone (a PNG checker independent of the library that wrote it)."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    pos, chunks = 8, {}
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        check(zlib.crc32(kind + body) == int.from_bytes(data[pos + 8 + length:pos + 12 + length],
                                                         "big"), f"{path}: bad CRC in {kind}")
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    check(b"IHDR" in chunks and b"IEND" in chunks, f"{path}: no IHDR or IEND")
    ihdr = chunks[b"IHDR"]
    w, h = int.from_bytes(ihdr[0:4], "big"), int.from_bytes(ihdr[4:8], "big")
    depth, colour = ihdr[8], ihdr[9]
    check(depth == 8 and colour in (2, 6), f"{path}: expected 8-bit RGB(A), got {depth}/{colour}")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = w * bpp
    check(len(raw) == h * (stride + 1), f"{path}: image data of the wrong length")
    rows, prev = [], bytearray(stride)
    for y in range(h):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def check_curves(path, series):
    """curves.png: a PNG of the documented size, drawn on (not blank), with each series of
    `series` in its own colour."""
    w, h, bpp, rows = png_pixels(path)
    check((w, h) == CURVES_SIZE, f"curves.png is {w}x{h}, expected {CURVES_SIZE}")
    counts = {}
    for row in rows:
        for x in range(0, w * bpp, bpp):
            px = tuple(row[x:x + 3])
            counts[px] = counts.get(px, 0) + 1
    background = max(counts, key=counts.get)
    drawn = w * h - counts[background]
    print(f"curves.png {w}x{h}: {drawn} pixels drawn, {len(counts)} colours; "
          + ", ".join(f"{k} {counts.get(v, 0)} px" for k, v in CURVE_COLOURS.items()))
    check(drawn > 0.02 * w * h, f"curves.png is almost blank ({drawn} pixels drawn)")
    for name, colour in CURVE_COLOURS.items():
        n = counts.get(colour, 0)
        if name in series:
            check(n >= 200, f"the {name} series is missing from curves.png ({n} pixels)")
        else:
            check(n < 20, f"curves.png draws a {name} series the run did not have ({n} pixels)")


def run(cmd, timeout=300, **kw):
    print("$", " ".join(cmd), flush=True)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    print(p.stdout, end="")
    print(f"  ({time.monotonic() - t0:.1f} s, exit {p.returncode})", flush=True)
    return p


class Env:
    def __init__(self, bin_dir, work):
        self.bin = bin_dir
        self.work = os.path.abspath(work)
        os.makedirs(self.work, exist_ok=True)

    def tool(self, name):
        return os.path.join(self.bin, name)

    def dataset(self):
        """The shared dataset (with one corrupt video) and its clip cache, made once."""
        data = os.path.join(self.work, "data")
        cache_run = os.path.join(self.work, "cache-run")
        cache = os.path.join(self.work, "cache")
        with open(os.path.join(self.work, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = os.path.join(self.work, ".ready")
            recipe = " ".join(SYNTH)  # a work folder left by another version is made again
            if (not os.path.exists(done) or open(done).read() != recipe or
                    not os.path.isfile(os.path.join(cache, "index.json"))):
                for d in (data, cache_run, cache):
                    shutil.rmtree(d, ignore_errors=True)
                p = run([self.tool("vidcls-synth"), "--out", data, "--corrupt", "1", "-q"] + SYNTH)
                check(p.returncode == 0, "vidcls-synth failed")
                # A one-epoch run builds the cache; its output is the cache report.
                p = run([self.tool("vidcls-train"), "--model", "vivit", "--data", data, "--out",
                         cache_run, "--cache", cache, "--epochs", "1", "--repeats", "1"])
                check(p.returncode == 0, "vidcls-train failed to build the cache")
                with open(os.path.join(self.work, "cache-report.txt"), "w") as f:
                    f.write(p.stdout)
                with open(done, "w") as f:
                    f.write(recipe)
        return data, cache

    def train(self, out, *args, timeout=300):
        data, cache = self.dataset()
        return run([self.tool("vidcls-train"), "--model", "vivit", "--data", cache, "--out",
                    os.path.join(self.work, out)] + list(args), timeout=timeout)


def read_metrics(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def training_columns(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def case_learns(env):
    """A short run learns: the training loss falls, training accuracy climbs, and on the
    held-out subjects (videos it never saw: other shapes, colours, backgrounds and positions)
    top-1 ends far above chance (25 %). CI-sized: 60 training videos, 3 epochs of 30 steps at
    the preset's peak learning rate, one epoch of warmup. Measured on this set with the
    normal-flow input: 100 % held-out from the first epoch on (8 epochs at a peak of 5e-4);
    with the temporal residual before it, 38 % after 8 epochs."""
    t0 = time.monotonic()
    p = env.train("learns", "--epochs", str(EPOCHS_LEARN), "--repeats", "8",
                  "--warmup-epochs", "1", "--seed", "1")
    check(p.returncode == 0, "training failed")
    out = os.path.join(env.work, "learns")
    rows = read_metrics(os.path.join(out, "metrics.csv"))
    check(len(rows) == EPOCHS_LEARN, f"{len(rows)} rows in metrics.csv")
    first, last = float(rows[0]["train_loss"]), float(rows[-1]["train_loss"])
    train_acc = max(float(r["train_acc"]) for r in rows)
    test_last = float(rows[-1]["test_top1"])
    print(f"train loss {first:.3f} -> {last:.3f}, best train accuracy {train_acc:.3f}, "
          f"held-out top-1 at the end {test_last:.3f}, {time.monotonic() - t0:.0f} s")
    check(last < 0.8 * first, f"the training loss fell from {first:.3f} only to {last:.3f}")
    check(train_acc >= 0.8, f"training accuracy {train_acc:.3f} < 0.8")
    check(test_last >= 0.75, f"held-out top-1 {test_last:.3f} < 0.75 (chance 0.25)")
    check(all(0 <= float(r["val_top1"]) <= 1 for r in rows), "validation top-1 missing")
    for f in ("best.safetensors", "last.safetensors", "curves.png"):
        check(os.path.exists(os.path.join(out, f)), f"{f} missing")
    check_curves(os.path.join(out, "curves.png"), ("train", "validation", "test"))


def case_corrupt(env):
    """The corrupt video is skipped, named in the cache report, and training goes on."""
    env.dataset()
    with open(os.path.join(env.work, "cache-report.txt")) as f:
        report = f.read()
    print(report)
    skipped = [l for l in report.splitlines() if l.strip().startswith("skipped ")]
    check(len(skipped) == 1, f"expected one skipped video, report says {skipped}")
    check("_rgb.avi" in skipped[0], "the skipped line names no file")
    check("epoch   1/1" in report, "training did not go on after the skipped video")
    # A dataset folder given directly, the cache left to its default place: the first run decodes
    # it there, the next run (another model, another output folder) finds it and decodes nothing.
    data, _ = env.dataset()
    caches = os.path.join(env.work, "default-caches")
    shutil.rmtree(caches, ignore_errors=True)
    runs = []
    for model, out in (("vivit", "default-a"), ("mini-vivit", "default-b")):
        runs.append(run([env.tool("vidcls-train"), "--model", model, "--data", data, "--out",
                         os.path.join(env.work, out), "--epochs", "1", "--repeats", "1"],
                        env=dict(os.environ, VIDCLS_CACHE_DIR=caches)))
        check(runs[-1].returncode == 0, f"{model} run on the dataset folder failed")
    check("(0 decoded" not in runs[0].stdout, "the first run found a cache that was not there")
    check(os.path.dirname(re.search(r"clip cache of \S+: (\S+)", runs[0].stdout).group(1)) ==
          caches, "the default cache is not under VIDCLS_CACHE_DIR")
    check("(0 decoded" in runs[1].stdout and "skipped" in runs[1].stdout,
          "the next run on the unchanged dataset decoded it again, or lost the skipped video")


def swapped_test_side(data, out):
    """A copy of the dataset whose test videos (even subjects) carry the labels of their pairs
    (actions 1 <-> 2, 3 <-> 4): the better a model learns, the worse it does on the test side."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    swap = {1: 2, 2: 1, 3: 4, 4: 3}
    for name in os.listdir(data):
        m = re.match(r"a(\d+)_s(\d+)_(e\d+_rgb\.avi)$", name)
        target = name
        if m and int(m.group(2)) % 2 == 0:
            target = f"a{swap[int(m.group(1))]:02d}_s{m.group(2)}_{m.group(3)}"
        shutil.copy(os.path.join(data, name), os.path.join(out, target))
    return out


def case_select(env):
    """best.safetensors is the epoch with the best validation top-1 (ties: lower validation loss),
    never the test side's choice; metrics.csv records validation and test apart; validation
    subjects are whole training subjects, never a test subject. The test side here is made
    adversarial (its labels swapped in pairs), so choosing on it would pick another epoch."""
    data, _ = env.dataset()
    swapped = swapped_test_side(data, os.path.join(env.work, "swapped"))
    cache = os.path.join(env.work, "swapped-cache")
    p = run([env.tool("vidcls-train"), "--model", "vivit", "--data", swapped, "--cache", cache,
             "--out", os.path.join(env.work, "select"), "--epochs", "5", "--repeats", "2",
             "--seed", "9"])
    check(p.returncode == 0, "training failed")
    with open(os.path.join(cache, "index.json")) as f:
        index = json.load(f)
    subjects = {}
    for v in index["videos"]:
        subjects.setdefault(v["split"], set()).add(v["subject"])
    print({k: sorted(v) for k, v in subjects.items()})
    check(set(subjects) == {"train", "val", "test"}, f"sides {sorted(subjects)}")
    check(not (subjects["val"] & subjects["test"]), "a subject in validation and test")
    check(not (subjects["val"] & subjects["train"]), "a subject in validation and training")
    check(all(s % 2 == 1 for s in subjects["val"]), "validation is not from the training side")
    out = os.path.join(env.work, "select")
    rows = read_metrics(os.path.join(out, "metrics.csv"))
    for col in ("val_loss", "val_top1", "val_top5", "test_loss", "test_top1", "test_top5"):
        check(col in rows[0], f"metrics.csv has no {col}")
    chosen = max(rows, key=lambda r: (float(r["val_top1"]), -float(r["val_loss"])))
    on_test = max(rows, key=lambda r: float(r["test_top1"]))
    info = run([env.tool("../models/vidcls-info"), os.path.join(out, "best.safetensors"), "--json"])
    prov = json.loads(info.stdout)["provenance"]
    print(f"best.safetensors: epoch {prov['epochs']}; by validation {chosen['epoch']}, by test "
          f"{on_test['epoch']}; validation {[r['val_top1'] for r in rows]}, test "
          f"{[r['test_top1'] for r in rows]}")
    check(float(chosen["val_top1"]) >= 0.5, "the model did not learn (chance 0.25): nothing to "
          "choose from")
    check(float(on_test["test_top1"]) > float(chosen["test_top1"]),
          "the adversarial test side would have chosen the same epoch: this run tells nothing")
    check(prov["epochs"] == int(chosen["epoch"]), "best.safetensors is not the best validation "
          f"epoch ({prov['epochs']} vs {chosen['epoch']})")
    check(prov["selected_on"] == "validation", "the provenance does not say what chose it")
    check(abs(prov["metrics"]["test_top1"] - float(chosen["test_top1"])) < 1e-6 and
          abs(prov["metrics"]["val_top1"] - float(chosen["val_top1"])) < 1e-6,
          "best.safetensors' metrics are not its epoch's")
    check(f"best.safetensors: epoch {chosen['epoch']}" in p.stdout,
          "the run does not report the chosen epoch")


def case_reproducible(env):
    """Same seed, same data -> the same metrics, bit for bit (timing columns aside)."""
    a = env.train("repro-a", "--epochs", "2", "--seed", "7", "--repeats", "2")
    b = env.train("repro-b", "--epochs", "2", "--seed", "7", "--repeats", "2")
    check(a.returncode == 0 and b.returncode == 0, "training failed")
    ra = read_metrics(os.path.join(env.work, "repro-a", "metrics.csv"))
    rb = read_metrics(os.path.join(env.work, "repro-b", "metrics.csv"))
    check(training_columns(ra) == training_columns(rb), "metrics differ between identical runs")
    c = env.train("repro-c", "--epochs", "2", "--seed", "8", "--repeats", "2")
    rc = read_metrics(os.path.join(env.work, "repro-c", "metrics.csv"))
    check(training_columns(ra) != training_columns(rc), "another seed gave the same metrics")
    # Stochastic depth is really in the training forward pass (same seed, other metrics) and in
    # the checkpoint's config (both encoders); an out-of-range rate is refused.
    d = env.train("repro-drop-path", "--epochs", "2", "--seed", "7", "--repeats", "2",
                  "--drop-path", "0.3")
    check(d.returncode == 0, "training with --drop-path failed")
    check("stochastic depth: up to 0.30" in d.stdout, "the run does not say its drop-path rate")
    rd = read_metrics(os.path.join(env.work, "repro-drop-path", "metrics.csv"))
    check(training_columns(ra) != training_columns(rd), "--drop-path 0.3 changed nothing")
    info = run([env.tool("../models/vidcls-info"),
                os.path.join(env.work, "repro-drop-path", "last.safetensors"), "--json"])
    config = json.loads(info.stdout)["config"]
    check(config["spatial"]["drop_path"] == 0.3 and config["temporal"]["drop_path"] == 0.3,
          f"drop_path not in the checkpoint: {config['spatial']}, {config['temporal']}")
    bad = env.train("repro-drop-path-bad", "--epochs", "1", "--drop-path", "1.5")
    check(bad.returncode != 0 and "--drop-path" in bad.stdout, "--drop-path 1.5 was accepted")


def case_resume(env):
    """SIGKILL a 4-epoch run after its 2nd epoch, --resume: the curve is the uninterrupted one."""
    ref = env.train("resume-ref", "--epochs", "4", "--seed", "5", "--repeats", "2")
    check(ref.returncode == 0, "reference run failed")
    ref_rows = training_columns(read_metrics(os.path.join(env.work, "resume-ref", "metrics.csv")))

    # A real SIGKILL in the middle of epoch 3.
    data, cache = env.dataset()
    out = os.path.join(env.work, "resume-kill")
    cmd = [env.tool("vidcls-train"), "--model", "vivit", "--data", cache, "--out", out,
           "--epochs", "4", "--seed", "5", "--repeats", "2"]
    print("$", " ".join(cmd), "(killed after epoch 2)", flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        print(line, end="")
        if line.startswith("epoch   2/4"):
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    check(proc.returncode == -signal.SIGKILL, f"the run ended before the kill ({proc.returncode})")
    p = env.train("resume-kill", "--epochs", "4", "--seed", "5", "--repeats", "2", "--resume")
    check(p.returncode == 0 and "resuming after epoch" in p.stdout, "resume after kill failed")
    got = training_columns(read_metrics(os.path.join(out, "metrics.csv")))
    check(got == ref_rows, f"curve after kill + resume differs:\n{got}\n{ref_rows}")
    # Resuming with clips sampled otherwise would mix two trainings: refused, nothing written.
    before = open(os.path.join(out, "metrics.csv")).read()
    p = env.train("resume-kill", "--epochs", "6", "--seed", "5", "--repeats", "2", "--resume",
                  "--frame-stride", "3")
    check(p.returncode == 1 and "--frame-stride" in p.stdout,
          "resuming with another --frame-stride was not refused with a message")
    check(open(os.path.join(out, "metrics.csv")).read() == before, "the refused resume wrote")
    # So is a model configured otherwise (stochastic depth here), with what differs named.
    p = env.train("resume-kill", "--epochs", "6", "--seed", "5", "--repeats", "2", "--resume",
                  "--drop-path", "0.2")
    check(p.returncode == 1 and "temporal" in p.stdout and "--drop-path" in p.stdout,
          "resuming with another --drop-path was not refused with a message")
    check(open(os.path.join(out, "metrics.csv")).read() == before, "the refused resume wrote")


def case_eval(env):
    """vidcls-eval writes top1/top5/per_class/confusion and confusion.png; on the cache it
    reproduces the training's own test top-1 of the saved epoch."""
    out = os.path.join(env.work, "eval-run")
    # Every 3rd frame instead of the preset's every 2nd: the checkpoint's clip spec says so, and
    # evaluation samples that way (the preset's stride would give other scores than training's).
    p = env.train("eval-run", "--epochs", "2", "--seed", "2", "--repeats", "1",
                  "--frame-stride", "3")
    check(p.returncode == 0, "training failed")
    check("frame stride 3" in p.stdout, "the clip sampling is not printed")
    ckpt = os.path.join(out, "best.safetensors")
    info = run([env.tool("../models/vidcls-info"), ckpt, "--json"])
    check(info.returncode == 0 and json.loads(info.stdout)["clip"]["frame_stride"] == 3,
          "--frame-stride 3 is not in the checkpoint's clip spec")
    bad = env.train("eval-bad", "--epochs", "1", "--frame-stride", "0")
    check(bad.returncode == 2 and "--frame-stride" in bad.stdout, "--frame-stride 0 was taken")
    data, cache = env.dataset()
    # Decoded from the dataset folder, as the live pipeline decodes (the corrupt file skipped).
    jpath = os.path.join(env.work, "eval-decode", "result.json")
    p = run([env.tool("vidcls-eval"), "--model", ckpt, "--data", data, "--json", jpath, "-q"])
    check(p.returncode == 0, "vidcls-eval failed")
    with open(jpath) as f:
        j = json.load(f)
    for k in ("top1", "top5", "per_class", "confusion"):
        check(k in j, f"{k} missing from the JSON")
    n = len(j["classes"])
    check(len(j["confusion"]) == n and all(len(r) == n for r in j["confusion"]),
          "confusion is not classes x classes")
    check(sum(map(sum, j["confusion"])) == j["count"] == 60, f"{j['count']} test videos, not 60")
    check(0 <= j["top1"] <= j["top5"] <= 1, "top1 / top5 out of order")
    check(os.path.getsize(os.path.join(env.work, "eval-decode", "confusion.png")) > 0,
          "confusion.png missing")
    # From the cache: the training's evaluation, exactly.
    jpath = os.path.join(env.work, "eval-cache", "result.json")
    p = run([env.tool("vidcls-eval"), "--model", ckpt, "--data", cache, "--json", jpath, "-q"])
    check(p.returncode == 0, "vidcls-eval on the cache failed")
    with open(jpath) as f:
        j = json.load(f)
    info = run([env.tool("../models/vidcls-info"), ckpt, "--json"])
    best = json.loads(info.stdout)["provenance"]["metrics"]["test_top1"]
    check(abs(j["top1"] - best) < 1e-9, f"eval top-1 {j['top1']} != training's {best}")
    # Multi-view testing runs and keeps the fields.
    p = run([env.tool("vidcls-eval"), "--model", ckpt, "--data", cache, "--views", "2x3", "-q"])
    check(p.returncode == 0 and "views 2x3" in p.stdout, "--views 2x3 failed")


def case_distill(env):
    """Mini-ViViT learns from a ViViT teacher (soft labels, attention, hidden states); a teacher
    that does not fit is refused with a message that says why."""
    p = env.train("distill-teacher", "--epochs", "3", "--seed", "4", "--repeats", "2")
    check(p.returncode == 0, "teacher training failed")
    teacher = os.path.join(env.work, "distill-teacher", "best.safetensors")
    data, cache = env.dataset()
    out = os.path.join(env.work, "distill-student")
    base = [env.tool("vidcls-train"), "--model", "mini-vivit", "--data", cache, "--epochs", "2",
            "--seed", "4", "--repeats", "2"]
    p = run(base + ["--out", out, "--teacher", teacher])
    check(p.returncode == 0, "distillation failed")
    check("distilling from" in p.stdout, "the teacher is not announced")
    terms = [l for l in p.stdout.splitlines() if "distillation: soft-label KL" in l]
    check(len(terms) == 2, f"{len(terms)} distillation lines for 2 epochs")
    for line in terms:
        values = [float(v) for v in re.findall(r"(?:KL|MSE) (\S+)", line)]
        check(len(values) == 3 and all(math.isfinite(v) and v >= 0 for v in values),
              f"distillation terms not finite and non-negative: {line}")
    info = run([env.tool("../models/vidcls-info"), os.path.join(out, "last.safetensors"), "--json"])
    check(info.returncode == 0, "vidcls-info failed on the student")
    prov = json.loads(info.stdout)["provenance"]
    check(prov.get("distillation", {}).get("teacher") == teacher, "provenance lacks the teacher")
    # Without a teacher the same run learns differently: the terms are really in the loss.
    q = run(base + ["--out", os.path.join(env.work, "distill-none")])
    check(q.returncode == 0, "plain mini-vivit run failed")
    check(training_columns(read_metrics(os.path.join(out, "metrics.csv"))) !=
          training_columns(read_metrics(os.path.join(env.work, "distill-none", "metrics.csv"))),
          "distillation changed nothing")
    # Teachers that cannot teach this student.
    wrong = os.path.join(env.work, "teacher-3-classes.safetensors")
    check(run([env.tool("../models/vidcls-init"), "--preset", "vivit-xs", "--num-classes", "3",
               "--out", wrong]).returncode == 0, "vidcls-init failed")
    r = run(base + ["--out", os.path.join(env.work, "distill-bad"), "--teacher", wrong])
    check(r.returncode != 0 and "other classes" in r.stdout, "a teacher of 3 classes was taken")
    resnet = os.path.join(env.work, "teacher-resnet.safetensors")
    check(run([env.tool("../models/vidcls-init"), "--preset", "resnet18-tvit-xs",
               "--num-classes", "4", "--out", resnet]).returncode == 0, "vidcls-init failed")
    r = run(base + ["--out", os.path.join(env.work, "distill-bad"), "--teacher", resnet])
    check(r.returncode != 0 and "must be a ViViT" in r.stdout, "a ResNet teacher was taken")


def case_precision(env):
    """--precision bf16 runs the forward passes under autocast (CPU autocast here; on CUDA the
    same code path, plus fp16 with loss scaling): it trains, says so, records it, and computes
    differently from float32. fp16 on the CPU is refused with the reason."""
    args = ["--epochs", "1", "--seed", "3", "--repeats", "1"]
    ref = env.train("precision-fp32", *args)
    check(ref.returncode == 0, "fp32 run failed")
    p = env.train("precision-bf16", *args, "--precision", "bf16")
    check(p.returncode == 0, "bf16 run failed")
    check("autocast to bf16" in p.stdout, "mixed precision is not announced")
    a = read_metrics(os.path.join(env.work, "precision-fp32", "metrics.csv"))
    b = read_metrics(os.path.join(env.work, "precision-bf16", "metrics.csv"))
    check(math.isfinite(float(b[0]["train_loss"])), "bf16 loss not finite")
    check(a[0]["train_loss"] != b[0]["train_loss"], "bf16 computed exactly as fp32: autocast off?")
    info = run([env.tool("../models/vidcls-info"),
                os.path.join(env.work, "precision-bf16", "last.safetensors"), "--json"])
    check(json.loads(info.stdout)["provenance"]["recipe"]["precision"] == "bf16",
          "provenance lacks the precision")
    r = env.train("precision-fp16", *args, "--precision", "fp16")
    check(r.returncode == 1 and "needs --device cuda" in r.stdout, "fp16 on the CPU was taken")


def safetensors_tensors(path):
    """Each tensor of a .safetensors file by name: its header entry (dtype, shape) and its raw
    bytes (standard library only)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        body = f.read()
    return {k: (v, body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def case_backbone(env):
    """resnet-vit trains its ResNet by default (resnet18-tvit-xs), or keeps it as initialised
    with --freeze-backbone and trains on cached per-frame features; the checkpoint says which.
    Same seed, same initialisation: only the trained run's backbone weights move."""
    _, cache = env.dataset()
    args = ["--model", "resnet-vit", "--data", cache, "--repeats", "1", "--seed", "4"]
    runs = {}
    for name, extra in (("trained", []), ("frozen", ["--freeze-backbone"])):
        out = os.path.join(env.work, "backbone-" + name)
        p = run([env.tool("vidcls-train")] + args + ["--epochs", "1", "--out", out] + extra)
        check(p.returncode == 0, f"the {name} resnet-vit run failed")
        info = run([env.tool("../models/vidcls-info"), os.path.join(out, "last.safetensors"),
                    "--json"])
        tensors = safetensors_tensors(os.path.join(out, "last.safetensors"))
        runs[name] = (p.stdout, json.loads(info.stdout)["config"],
                      {k: raw for k, (_, raw) in tensors.items()})
    (t_log, t_cfg, t_w), (f_log, f_cfg, f_w) = runs["trained"], runs["frozen"]
    check(t_cfg["freeze_backbone"] is False and f_cfg["freeze_backbone"] is True,
          f"freeze_backbone in the checkpoints: {t_cfg['freeze_backbone']}, "
          f"{f_cfg['freeze_backbone']}")
    check("features of" in f_log and "features of" not in t_log,
          "only the frozen run should train on cached backbone features")
    conv = [k for k in t_w if k.startswith("backbone.") and k.endswith("conv1.weight")]
    heads = [k for k in t_w if k.startswith("head.")]
    check(conv and heads, f"no backbone / head tensors in {sorted(t_w)[:8]}")
    moved = [k for k in t_w if k.startswith("backbone.") and t_w[k] != f_w[k]]
    print(f"{len(moved)} backbone tensors differ between the trained and the frozen run")
    check(all(t_w[k] != f_w[k] for k in conv), "training left the backbone's convolutions as "
          "initialised")
    check(all(t_w[k] != f_w[k] for k in heads), "the two runs' heads are identical")
    # The frozen run's backbone is the initialisation: a second frozen run with other training
    # (another epoch count) has the same backbone.
    out = os.path.join(env.work, "backbone-frozen-2")
    p = run([env.tool("vidcls-train")] + args + ["--epochs", "2", "--out", out,
                                                 "--freeze-backbone"])
    check(p.returncode == 0, "the second frozen run failed")
    f2 = {k: raw for k, (_, raw) in safetensors_tensors(
        os.path.join(out, "last.safetensors")).items()}
    check(all(f2[k] == f_w[k] for k in f_w if k.startswith("backbone.")),
          "a frozen backbone changed during training")
    both = run([env.tool("vidcls-train")] + args + ["--out", out, "--freeze-backbone",
                                                    "--fine-tune-backbone"])
    check(both.returncode != 0 and "excludes" in both.stdout, "both flags together were taken")
    # --no-feature-cache (a benchmark of the frozen backbone's cache) on a trained backbone.
    p = run([env.tool("vidcls-train")] + args + ["--epochs", "1", "--out", out,
                                                 "--no-feature-cache"])
    check(p.returncode != 0 and "--freeze-backbone" in p.stdout,
          "--no-feature-cache without a frozen backbone was taken")
    # Any other model trains its classifier head alone.
    vivit = env.train("backbone-vivit", "--epochs", "1", "--repeats", "1", "--freeze-backbone")
    check(vivit.returncode == 0 and "only the classifier head trains" in vivit.stdout,
          "--freeze-backbone on a ViViT did not train the head alone")


def case_init(env):
    """--init fine-tunes a checkpoint of another architecture (a published Kinetics-400 one, as
    vidcls-import writes them; here R3D-18 with random weights from vidcls-init): its clip spec
    (the publisher's) and every tensor but the head, which is new for the data set's classes.
    With --freeze-backbone the rest stays exactly as imported, BatchNorm statistics included.
    Given a checkpoint of the same classes, the head is kept."""
    _, cache = env.dataset()
    init = os.path.join(env.work, "init-r3d.safetensors")
    p = run([env.tool("../models/vidcls-init"), "--preset", "r3d-18-k400", "--num-classes", "400",
             "--seed", "5", "--out", init])
    check(p.returncode == 0, "vidcls-init r3d-18-k400 failed")
    out = os.path.join(env.work, "init-frozen")
    p = run([env.tool("vidcls-train"), "--init", init, "--data", cache, "--out", out, "--epochs", "1",
             "--batch-size", "8", "--freeze-backbone"], timeout=600)
    check(p.returncode == 0, "vidcls-train --init --freeze-backbone failed")
    check("classifier head (fc.weight, fc.bias) new for 4 classes" in p.stdout,
          "the log does not say the head is new")
    before = {k: raw for k, (_, raw) in safetensors_tensors(init).items()}
    after = safetensors_tensors(os.path.join(out, "best.safetensors"))
    check(after["fc.weight"][0]["shape"] == [4, 512], f"head shape {after['fc.weight'][0]['shape']}")
    moved = [k for k in before if k in after and not k.startswith("fc.") and after[k][1] != before[k]]
    check(not moved, f"frozen tensors changed: {moved[:5]}")
    check(any(k.endswith("running_var") for k in before), "no BatchNorm statistics to compare")
    info = json.loads(run([env.tool("../models/vidcls-info"), os.path.join(out, "best.safetensors"),
                           "--json"]).stdout)
    clip = info["clip"]
    check(info["architecture"] == "video-resnet" and len(info["labels"]) == 4,
          f"checkpoint: {info['architecture']}, {len(info['labels'])} labels")
    check(clip["sample_rate"] == 15 and clip["width"] == 112 and clip["resize_width"] == 171 and
          clip["antialias"] is False, f"the clip spec is not the publisher's: {clip}")
    # The same classes: the head is kept.
    p = run([env.tool("vidcls-train"), "--init", os.path.join(out, "best.safetensors"), "--data", cache,
             "--out", os.path.join(env.work, "init-again"), "--epochs", "1", "--batch-size", "8",
             "--freeze-backbone"], timeout=600)
    check(p.returncode == 0 and "kept: the same classes" in p.stdout, "the head was not kept")
    both = run([env.tool("vidcls-train"), "--init", init, "--model", "vivit", "--data", cache,
                "--out", out])
    check(both.returncode != 0 and "excludes" in both.stdout, "--init with --model was taken")


def case_mirrors(env):
    """Mirrors that swap the classes they turn into each other: a left-right flip makes a
    slide_left clip a slide_right one, a top-bottom flip slide_up slide_down, a clip played
    backwards both. With the right pairs a short run learns as without mirrors; with the wrong
    pairs (the top-bottom pair given to the left-right flip) half of every direction's clips
    carry the wrong label and held-out top-1 falls towards 50 %: the label follows the mirror
    actually drawn for each clip. Unknown classes and a frozen backbone's cached features are
    refused."""
    common = ["--epochs", str(EPOCHS_LEARN), "--repeats", "8", "--warmup-epochs", "1",
              "--seed", "1"]
    right = env.train("mirrors-right", *common, "--flip-swap", "slide_left:slide_right",
                      "--vflip-swap", "slide_up:slide_down",
                      "--reverse-swap", "slide_left:slide_right,slide_up:slide_down")
    check(right.returncode == 0, "the run with mirrors failed")
    check("left-right swapping slide_left:slide_right; top-bottom swapping slide_up:slide_down"
          in right.stdout, "the run does not say which mirrors it draws")
    wrong = env.train("mirrors-wrong", *common, "--flip-swap", "slide_up:slide_down")
    check(wrong.returncode == 0, "the run with the wrong pair failed")
    top1 = {}
    for name in ("right", "wrong"):
        rows = read_metrics(os.path.join(env.work, "mirrors-" + name, "metrics.csv"))
        top1[name] = float(rows[-1]["test_top1"])
    print(f"held-out top-1 after {EPOCHS_LEARN} epochs: right pairs {top1['right']:.3f}, "
          f"wrong pairs {top1['wrong']:.3f}")
    check(top1["right"] >= 0.75, f"held-out top-1 {top1['right']:.3f} < 0.75 with the right "
          "pairs (chance 0.25)")
    check(top1["wrong"] <= top1["right"] - 0.2, "the wrong pairs learned as well as the right "
          "ones: labels do not follow the mirrors")
    bad = env.train("mirrors-bad", "--epochs", "1", "--flip-swap", "slide_left:jump")
    check(bad.returncode != 0 and "--flip-swap: no class 'jump'" in bad.stdout and
          "slide_down" in bad.stdout, "an unknown class was taken, or the classes not listed")
    bad = env.train("mirrors-bad", "--epochs", "1", "--vflip-swap", "slide_up:slide_up")
    check(bad.returncode != 0 and "paired with itself" in bad.stdout,
          "a class paired with itself was taken")
    _, cache = env.dataset()
    frozen = run([env.tool("vidcls-train"), "--model", "resnet-vit", "--data", cache, "--out",
                  os.path.join(env.work, "mirrors-bad"), "--epochs", "1", "--freeze-backbone",
                  "--flip-swap", "slide_left:slide_right"])
    check(frozen.returncode != 0 and "--no-feature-cache" in frozen.stdout,
          "mirrors on cached features of a frozen backbone were taken")


STEP_SYNTH = ["--layout", "msr", "--classes", "2", "--videos-per-class", "6", "--subjects", "6",
              "--frames", "24", "--size", "64", "--fps", "15", "--seed", "5", "-q"]


def case_step(env):
    """Two optimiser steps of each model family through vidcls-train, from a tiny dataset to a
    checkpoint vidcls-info reads back: data, cache, model, loss, backward, AdamW, evaluation
    and the checkpoint all run. No accuracy is asked for (the quick tier's training check)."""
    data = os.path.join(env.work, "step-data")
    shutil.rmtree(data, ignore_errors=True)
    p = run([env.tool("vidcls-synth"), "--out", data] + STEP_SYNTH)
    check(p.returncode == 0, "vidcls-synth failed")
    # 6 subjects: 1, 3, 5 train (one of them validates), 2, 4, 6 test; 4 training videos,
    # batch 2: two steps.
    for model, architecture in (("vivit", "vivit"), ("mini-vivit", "mini-vivit"),
                                ("resnet-vit", "resnet-tvit")):
        out = os.path.join(env.work, "step-" + model)
        p = run([env.tool("vidcls-train"), "--model", model, "--data", data, "--cache",
                 os.path.join(env.work, "step-cache"), "--out", out, "--epochs", "1",
                 "--repeats", "1", "--batch-size", "2", "--seed", "1"])
        check(p.returncode == 0, f"vidcls-train --model {model} failed")
        rows = read_metrics(os.path.join(out, "metrics.csv"))
        check(len(rows) == 1, f"{model}: {len(rows)} rows in metrics.csv")
        loss = float(rows[0]["train_loss"])
        check(math.isfinite(loss) and loss > 0, f"{model}: training loss {loss}")
        p = run([env.tool("../models/vidcls-info"), os.path.join(out, "best.safetensors"),
                 "--json"])
        check(p.returncode == 0, f"{model}: vidcls-info cannot read the checkpoint")
        info = json.loads(p.stdout[p.stdout.index("{"):])
        check(info.get("architecture") == architecture,
              f"{model}: the checkpoint says {info.get('architecture')}")


MIRRORS = ["--flip-swap", "slide_left:slide_right,rotate_cw:rotate_ccw",
           "--vflip-swap", "slide_up:slide_down,rotate_cw:rotate_ccw",
           "--reverse-swap", "slide_left:slide_right,slide_up:slide_down,rotate_cw:rotate_ccw"]


def eval_people(env, model, data, side, name):
    """vidcls-eval per person on `data`; returns (result json, per-clip top-1)."""
    jpath = os.path.join(env.work, name, "result.json")
    p = run([env.tool("vidcls-eval"), "--model", model, "--data", data, "--side", side,
             "--views", "0x1", "-q", "--json", jpath], timeout=600)
    check(p.returncode == 0, f"vidcls-eval on {name} failed")
    check("frame mAP@0.5" in p.stdout, "no frame mAP printed")
    with open(jpath) as f:
        j = json.load(f)
    people = j["videos"]
    check(all("#" in v["path"] for v in people), "an item is not a person (path#id)")
    clips = [c["label"] == v["label"] for v in people for c in v["clips"]]
    per_clip = sum(clips) / len(clips)
    fm = j["frame_map"]
    print(f"{name}: {len(people)} people, per-person top-1 {j['top1']:.3f}, per-clip top-1 "
          f"{per_clip:.3f} ({len(clips)} clips), frame mAP@0.5 {fm['map']:.3f} "
          f"({fm['scored']} of {fm['keyframe_boxes']} keyframe boxes scored)")
    check(0 < fm["map"] <= 1 and len(fm["ap"]) == 6, "frame mAP missing or not per class")
    check(fm["scored"] == fm["keyframe_boxes"],
          "a keyframe box had no clip although the clips cover every frame")
    return j, per_clip


def case_people(env):
    """Per-person actions (the ava layout), issue 22's acceptance: 2-4 people per video, each a
    card with its own motion (6 classes, chance 1/6), crossing and occluding each other. Trained
    on per-person crops (480 people of 192-pixel videos; 3-frame stride and the mirrors, chosen
    on this setting), the checkpoint chosen on validation labels the clips of the people of the
    videos it never saw (val.csv) at least 85 % right: measured 93.3 % per clip, 96.7 % per
    person on Debian 12 (2026-12-07). Videos of a setting never tuned on (224-pixel frames, 64
    frames, another seed) are reported and must stay far above chance: measured 76.1 % per clip
    (84.4 % of the complete clips, 59.4 % of the end-of-stream clips padded from 16 of 24
    frames), 86.7 % per person. The pipeline's scores on the same crops equal vidcls-eval's:
    test_train_serve_parity.cpp, PersonParity."""
    data = os.path.join(env.work, "people-data")
    unseen = os.path.join(env.work, "people-unseen")
    for out, args in ((data, ["--videos-per-class", "80", "--frames", "48", "--size", "192",
                              "--seed", "1"]),
                      (unseen, ["--videos-per-class", "30", "--frames", "64", "--size", "224",
                                "--seed", "77"])):
        shutil.rmtree(out, ignore_errors=True)
        p = run([env.tool("vidcls-synth"), "--layout", "ava", "--out", out, "--classes", "6",
                 "--fps", "15", "-q"] + args, timeout=600)
        check(p.returncode == 0, "vidcls-synth --layout ava failed")
    run_dir = os.path.join(env.work, "people-run")
    shutil.rmtree(run_dir, ignore_errors=True)
    p = run([env.tool("vidcls-train"), "--model", "vivit", "--data", data, "--cache",
             os.path.join(env.work, "people-cache"), "--out", run_dir, "--epochs", "30",
             "--val-fraction", "0.2", "--frame-stride", "3", "--seed", "1"] + MIRRORS,
            timeout=1500)
    check(p.returncode == 0, "training on people failed")
    check("ava layout" in p.stdout, "the dataset was not read as people (ava layout)")
    best = os.path.join(run_dir, "best.safetensors")
    j, per_clip = eval_people(env, best, data, "test", "people-test")
    check(len(j["videos"]) == 90, f"{len(j['videos'])} test people, not 90 (every 5th video)")
    check(per_clip >= 0.85, f"per-clip top-1 {per_clip:.3f} < 0.85 on videos never trained on")
    _, unseen_clip = eval_people(env, best, unseen, "all", "people-unseen-eval")
    check(unseen_clip >= 0.5, f"per-clip top-1 {unseen_clip:.3f} < 0.5 on the untuned setting")


CASES = {"step": case_step, "learns": case_learns, "corrupt": case_corrupt, "select": case_select,
         "reproducible": case_reproducible,
         "resume": case_resume, "eval": case_eval, "distill": case_distill,
         "precision": case_precision, "backbone": case_backbone, "mirrors": case_mirrors,
         "people": case_people, "init": case_init}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    env = Env(a.bin_dir, a.work)
    try:
        CASES[a.case](env)
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
