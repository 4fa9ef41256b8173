#!/usr/bin/python3
"""Clips per tracked object: what a frame costs against the number of objects followed, and what
a followed object costs in memory.

  objects.py --bin-dir BUILD --plugin-dir BUILD/gst-plugins [--frames 240] [--counts 1,4,16]

Each case is one gst-launch-1.0 process (its peak RSS comes from wait4()) running, for S streams
of F frames of 320x240 at 30 fps,

  videotestsrc ! vidclsroireplay location=N-objects.txt ! \
      vidclsclipper inference-region=roi-list max-objects=N ! vividinfer mode=sync ... ! fakesink

with N boxes per frame replayed from a MOTChallenge file written here (boxes of 64x96 drifting
across the frame). S = 4 streams share one model instance (model-instance-id, batch-size 4).
The whole-frame pipeline (no objects) is the baseline. Prints milliseconds per frame (the time
from PLAYING to EOS that gst-launch-1.0 reports, over all streams' frames), clips per second and
peak RSS. Then, for the clip sizes of vivit-xs and vivit-b16x2-fe, memory per followed object:
the clip ring's size from the clip spec (T x 3 x H x W float32), and the peak RSS of the clipper
alone (no model: the model's own memory would hide it) following 16 objects against 1, over 15,
with frames enough to fill every ring.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def write_tracks(path, objects, frames, width=320, height=240):
    """MOT ground truth: `objects` boxes of 64x96 on every frame, each drifting right by a
    pixel every other frame, placed in a grid."""
    with open(path, "w") as f:
        for t in range(frames):
            for k in range(objects):
                x = (20 * k + t // 2) % (width - 64)
                y = (37 * k) % (height - 96)
                f.write(f"{t + 1},{k + 1},{x},{y},64,96,1,1,1\n")


def branch(video_caps, frames, tracks, objects, model, shared, name):
    roi = (f"vidclsroireplay location={tracks} ! "
           f"vidclsclipper inference-region=roi-list max-objects={max(objects, 1)} ! "
           if objects > 0 else "vidclsclipper ! ")
    share = " model-instance-id=bench batch-size=4 batch-timeout=10000" if shared else ""
    return (f"videotestsrc num-buffers={frames} pattern=ball ! {video_caps} ! {roi}"
            f"vividinfer name={name} mode=sync model={model}{share} ! fakesink")


CAPS = "video/x-raw,format=RGB,width=320,height=240,framerate=30/1"


def launch(env, text):
    """Runs a gst-launch-1.0 line: seconds from PLAYING to EOS, its output, peak RSS in MiB."""
    p = subprocess.Popen(["gst-launch-1.0", "-m"] + text.split(), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"gst-launch-1.0 failed ({status}):\n{out[-2000:]}")
    m = re.search(r"Execution ended after (\d+):(\d+):([\d.]+)", out)
    seconds = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return seconds, out, usage.ru_maxrss / 1024.0


def run_case(env, streams, frames, tracks, objects, model):
    text = " ".join(branch(CAPS, frames, tracks, objects, model, streams > 1, f"infer{s}")
                    for s in range(streams))
    seconds, out, rss = launch(env, text)
    return seconds, out.count("vidcls-classification,"), rss


def clipper_rss(env, clip, tracks, objects):
    """Peak RSS of the clipper alone following `objects` objects with `clip`'s clip size."""
    frames = clip["frames"] * clip["frame_stride"] + 2
    _, _, rss = launch(env, f"videotestsrc num-buffers={frames} pattern=ball ! {CAPS} ! "
                            f"vidclsroireplay location={tracks} ! vidclsclipper "
                            f"inference-region=roi-list max-objects={objects} "
                            f"clip-length={clip['frames']} clip-stride={clip['frames']} "
                            f"frame-stride={clip['frame_stride']} width={clip['width']} "
                            f"height={clip['height']} ! fakesink")
    return rss


def clip_spec(info_tool, model):
    return json.loads(subprocess.run([info_tool, model, "--json"], check=True,
                                     capture_output=True, text=True).stdout)["clip"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True, help="the build folder")
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--counts", default="1,4,16")
    a = ap.parse_args()
    counts = [int(c) for c in a.counts.split(",")]
    env = dict(os.environ, GST_PLUGIN_PATH=a.plugin_dir, OMP_WAIT_POLICY="PASSIVE")
    init = os.path.join(a.bin_dir, "models", "vidcls-init")
    info = os.path.join(a.bin_dir, "models", "vidcls-info")
    with tempfile.TemporaryDirectory(prefix="vidcls-bench-objects-") as tmp:
        models = {}
        for preset in ("vivit-xs", "vivit-b16x2-fe"):
            models[preset] = os.path.join(tmp, preset + ".safetensors")
            subprocess.run([init, "--preset", preset, "--num-classes", "6", "--out",
                            models[preset]], check=True, capture_output=True)
        tracks = {}
        for n in counts:
            tracks[n] = os.path.join(tmp, f"{n}-objects.txt")
            write_tracks(tracks[n], n, max(a.frames, 100))

        print(f"vivit-xs, {a.frames} frames of 320x240 per stream, sync mode "
              f"({os.cpu_count()} CPUs)")
        print(f"{'streams':>7} {'objects':>7} {'ms/frame':>9} {'clips/s':>8} {'peak MiB':>9}")
        for streams in (1, 4):
            for n in [0] + counts:
                s, clips, rss = run_case(env, streams, a.frames, tracks.get(n, ""), n,
                                         models["vivit-xs"])
                label = "whole" if n == 0 else str(n)
                print(f"{streams:>7} {label:>7} {1000 * s / (a.frames * streams):>9.2f} "
                      f"{clips / s:>8.1f} {rss:>9.1f}", flush=True)

        print("\nmemory per followed object (the clipper alone, every ring filled)")
        print(f"{'preset':>16} {'ring MiB':>9} {'1 obj MiB':>10} {'16 obj MiB':>11} "
              f"{'per object MiB':>15}")
        for preset, model in models.items():
            clip = clip_spec(info, model)
            ring = clip["frames"] * 3 * clip["height"] * clip["width"] * 4 / 2**20
            one = clipper_rss(env, clip, tracks[counts[0]], 1)
            many = clipper_rss(env, clip, tracks[counts[-1]], counts[-1])
            print(f"{preset:>16} {ring:>9.2f} {one:>10.1f} {many:>11.1f} "
                  f"{(many - one) / (counts[-1] - 1):>15.2f}", flush=True)


if __name__ == "__main__":
    main()
