#!/usr/bin/python3
"""A trained model and real encoded test videos for the result elements' tests, made once.

  fixture.py --bin-dir BUILD_ROOT --work DIR

Makes, under DIR, once (under DIR/.lock, so tests running at the same time wait for one
another; a work folder made by another recipe is made again), and prints as JSON:

  model    vivit-xs trained with vidcls-train on a vidcls-synth set of the four slides
           (slide_left, slide_right, slide_up, slide_down: msr layout, 16 videos a class, 32
           frames at 15 fps, 107x80, seed 3); held-out top-1 is checked >= 0.9
  videos   MJPEG/AVI files at 15 fps cut from one held-out vidcls-synth video (slide_left, 96
           frames, seed 11: another object, background and path than any training video) by
           playing its frames forwards and backwards, so one object in one scene moves one way
           and then another, without a cut:
             turn   slide_left 6.07 s, at a third of its speed for the last 3 s, then
                    slide_right 8 s, at a third of its speed for the first 6 s (211 frames);
                    the slow part after the turn is where a model trained on faster motion is
                    less sure, the turn itself is in the middle of a clip
             swing  slide_left 4 s, then slide_right 3.9 s, both at full speed (119 frames)
             burst  slide_left 4 s, a slide_right burst of 1.6 s, slide_left 4 s (144 frames)
           each with its truth: [label, start_s, end_s] per motion, the boundaries being frame
           counts / fps

Other tests may reuse it (vidclsoverlay, vidclspublish): call it with the same --work.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time

FPS = 15
SYNTH_TRAIN = ["--layout", "msr", "--classes", "4", "--videos-per-class", "16", "--subjects",
               "2", "--frames", "32", "--size", "80", "--fps", str(FPS), "--seed", "3",
               "--no-drift"]
# Four epochs at 5e-4 without label smoothing: held-out top-1 reaches 100 % on this set
# (measured; about 30 s on two free cores, two minutes on a loaded machine).
TRAIN = ["--model", "vivit", "--epochs", "4", "--repeats", "16", "--warmup-epochs", "1",
         "--lr", "5e-4", "--label-smoothing", "0", "--val-fraction", "0", "--seed", "1"]
SYNTH_SOURCE = ["--layout", "msr", "--classes", "1", "--videos-per-class", "1", "--subjects",
                "1", "--frames", "96", "--size", "80", "--fps", str(FPS), "--seed", "11",
                "--no-drift"]
LABELS = ["slide_left", "slide_right", "slide_up", "slide_down"]


def slow(first, stop, step):
    """Frames first..stop (exclusive) by step, each shown three times: a third of the speed."""
    return [i for i in range(first, stop, step) for _ in range(3)]


# Frame orders over the source video (slide_left): forwards is slide_left, backwards slide_right.
VIDEOS = {
    "turn": [("slide_left", list(range(0, 46)) + slow(46, 61, 1)),
             ("slide_right", slow(59, 29, -1) + list(range(29, -1, -1)))],
    "swing": [("slide_left", list(range(0, 60))),
              ("slide_right", list(range(58, -1, -1)))],
    "burst": [("slide_left", list(range(0, 60))),
              ("slide_right", list(range(58, 34, -1))),
              ("slide_left", list(range(36, 96)))],
}
MODEL_RECIPE = json.dumps([SYNTH_TRAIN, TRAIN])
VIDEO_RECIPE = json.dumps([SYNTH_SOURCE, VIDEOS], sort_keys=True)


def run(cmd, log, timeout=900):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    log.write(f"$ {' '.join(cmd)}\n{p.stdout}"
              f"({time.monotonic() - t0:.1f} s, exit {p.returncode})\n")
    log.flush()
    if p.returncode != 0:
        sys.exit(f"fixture: {os.path.basename(cmd[0])} failed:\n{p.stdout[-3000:]}")
    return p.stdout


def train(bin_dir, work, log):
    data, cache, out = (os.path.join(work, d) for d in ("data", "cache", "model"))
    run([os.path.join(bin_dir, "training", "vidcls-synth"), "--out", data, "-q"] + SYNTH_TRAIN,
        log)
    text = run([os.path.join(bin_dir, "training", "vidcls-train"), "--data", data, "--cache",
                cache, "--out", out] + TRAIN, log)
    tops = re.findall(r"test top-1\s+([0-9.]+)%", text)
    if not tops or float(tops[-1]) < 90.0:
        sys.exit(f"fixture: the model did not learn (held-out top-1 {tops}):\n{text[-3000:]}")
    return os.path.join(out, "best.safetensors")


def make_videos(bin_dir, work, log):
    source = os.path.join(work, "source")
    frames = os.path.join(work, "frames")
    run([os.path.join(bin_dir, "training", "vidcls-synth"), "--out", source, "-q"] + SYNTH_SOURCE,
        log)
    os.makedirs(frames)
    # The MJPEG frames as they are, one JPEG file each.
    run(["gst-launch-1.0", "-q", "filesrc", f"location={source}/a01_s01_e01_rgb.avi", "!",
         "avidemux", "!", "multifilesink", f"location={frames}/f_%03d.jpg"], log)
    videos = {}
    for name, parts in VIDEOS.items():
        order = [i for _, part in parts for i in part]
        seq = os.path.join(work, f"{name}-frames")
        os.makedirs(seq)
        for k, i in enumerate(order):
            os.link(os.path.join(frames, f"f_{i:03d}.jpg"), os.path.join(seq, f"s_{k:03d}.jpg"))
        path = os.path.join(work, f"{name}.avi")
        run(["gst-launch-1.0", "-q", "imagesequencesrc", f"location={seq}/s_%03d.jpg",
             "start-index=0", f"framerate={FPS}/1", "!", "jpegdec", "!", "videoconvert", "!",
             "jpegenc", "quality=90", "!", "avimux", "!", "filesink", f"location={path}"], log)
        truth, at = [], 0
        for label, part in parts:
            truth.append([label, at / FPS, (at + len(part)) / FPS])
            at += len(part)
        videos[name] = {"path": path, "frames": len(order), "truth": truth}
    return videos


def clear(work, names):
    for name in names:
        path = os.path.join(work, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def made(work, name, recipe):
    path = os.path.join(work, name + ".recipe")
    return os.path.exists(path) and open(path).read() == recipe


def make(bin_dir, work):
    """The model and the videos, each made again when its recipe changed."""
    with open(os.path.join(work, "fixture.log"), "a") as log:
        if not made(work, "model", MODEL_RECIPE):
            clear(work, ["model.recipe", "data", "cache", "model"])
            train(bin_dir, work, log)
            with open(os.path.join(work, "model.recipe"), "w") as f:
                f.write(MODEL_RECIPE)
        if not made(work, "videos", VIDEO_RECIPE):
            clear(work, ["videos.recipe", "videos.json", "source", "frames"] +
                  [n for n in os.listdir(work) if n.endswith("-frames") or n.endswith(".avi")])
            videos = make_videos(bin_dir, work, log)
            with open(os.path.join(work, "videos.json"), "w") as f:
                json.dump(videos, f, indent=1)
            with open(os.path.join(work, "videos.recipe"), "w") as f:
                f.write(VIDEO_RECIPE)
    with open(os.path.join(work, "videos.json")) as f:
        videos = json.load(f)
    return {"model": os.path.join(work, "model", "best.safetensors"), "labels": LABELS,
            "fps": FPS, "videos": videos}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", required=True, help="the build folder's root")
    ap.add_argument("--work", required=True, help="where to make it (reused when made)")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        print(json.dumps(make(os.path.abspath(args.bin_dir), work), indent=1))


if __name__ == "__main__":
    main()
