#!/usr/bin/env python3
"""Checkpoint load time per preset against reading the same file, on this machine.

  load_per_preset.py --init BUILD/models/vidcls-init --info BUILD/models/vidcls-info
                     [--dir DIR] [--iters 3] [--presets a,b] [--reuse]

Writes a randomly initialised checkpoint of every preset (400 classes) into DIR, then runs
vidcls-info on it --iters times; vidcls-info times load_checkpoint and, after it, a plain read()
of the file into fresh memory. Prints the medians as a Markdown table. Numbers, not a verdict.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile


def presets(init):
    text = subprocess.run([init, "--help"], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^  (\S+) \([\w-]+\): ", text, re.MULTILINE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", required=True)
    ap.add_argument("--info", required=True)
    ap.add_argument("--dir", default="")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--presets", default="")
    ap.add_argument("--reuse", action="store_true", help="keep checkpoints already in DIR")
    args = ap.parse_args()
    folder = args.dir or tempfile.mkdtemp(prefix="vidcls-load-")
    os.makedirs(folder, exist_ok=True)
    names = [p for p in args.presets.split(",") if p] or presets(args.init)

    print("| preset | file MB | read ms | load ms | load / read |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        ckpt = os.path.join(folder, name + ".safetensors")
        if not (args.reuse and os.path.exists(ckpt)):
            subprocess.run([args.init, "--preset", name, "--num-classes", "400", "--out", ckpt],
                           check=True, stdout=subprocess.DEVNULL)
        loads, reads = [], []
        for _ in range(args.iters):
            out = subprocess.run([args.info, ckpt, "--json"], capture_output=True, text=True,
                                 check=True).stdout
            info = json.loads(out)
            loads.append(info["load_ms"])
            reads.append(info["file_read_ms"])
        load, read = statistics.median(loads), statistics.median(reads)
        mb = os.path.getsize(ckpt) / 1e6
        print(f"| {name} | {mb:.1f} | {read:.0f} | {load:.0f} | {load / read:.1f} |", flush=True)


if __name__ == "__main__":
    main()
