#!/usr/bin/env python3
"""Training clips per core from a clip cache of Kinetics-shaped video: vidcls-synth writes short
videos in the Kinetics-400 layout at 25 fps and 256 px short side (4:3), vidcls-prep caches them
for a full-size preset's clip spec, and bench-clip-read cuts training clips from the cache with the
page cache dropped and warm.

  clip_read.py --bin-dir BUILD [--preset vivit-b16x2-fe] [--videos 8] [--seconds 10] [--keep DIR]
"""
import argparse
import os
import shutil
import subprocess
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True, help="the build folder")
    ap.add_argument("--preset", default="vivit-b16x2-fe")
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--keep", help="work folder to keep (default: a temporary one)")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="vidcls-clip-read-")
    try:
        data, cache = os.path.join(work, "data"), os.path.join(work, "cache")
        b = a.bin_dir
        subprocess.run([f"{b}/training/vidcls-synth", "--layout", "kinetics400", "--out", data,
                        "--classes", "2", "--videos-per-class", str(a.videos // 2),
                        "--frames", str(25 * a.seconds), "--fps", "25", "--size", "256",
                        "--jobs", str(os.cpu_count() or 1), "--quiet"], check=True)
        subprocess.run([f"{b}/training/vidcls-prep", "--data", data, "--out", cache,
                        "--preset", a.preset, "--val-fraction", "0", "--quiet"], check=True)
        subprocess.run([f"{b}/benchmarks/bench-clip-read", "--cache", cache, "--preset",
                        a.preset, "--clips", str(a.clips)], check=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
