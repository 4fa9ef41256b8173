#!/usr/bin/env python3
"""Data-parallel vidcls-train on this machine: 2 processes against 1, the same global batch.

  distributed_training.py --bin-dir BUILD/training [--models vivit,resnet-vit] [--epochs 2]

For each model: one process with global batch 2B (all cores as intra-op threads, and one thread),
and two processes on loopback with batch B each (the cores split between them). Prints training
throughput (clips/s of the last epoch, all ranks together) and, for 2 processes, rank 0's
gradient all-reduce per step: time in flight (launch to completion, overlapping the backward
pass) and the time waited after the backward pass for it, as a share of the step.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile

EPOCH = re.compile(r"^epoch +(\d+)/\d+ .* (\d+) clips/s .* ([\d.]+) s +ETA")
COMM = re.compile(r"all-reduce: ([\d.]+) buckets/step, ([\d.]+) ms/step in flight .*, "
                  r"([\d.]+) ms/step waited after backward = ([\d.]+)% of the ([\d.]+) ms step")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT", "OMP_NUM_THREADS", "VIDCLS_NUM_THREADS")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def last_epoch(stdout):
    epochs = [EPOCH.match(l) for l in stdout.splitlines()]
    epochs = [m for m in epochs if m]
    comm = [COMM.search(l) for l in stdout.splitlines()]
    comm = [m for m in comm if m]
    if not epochs:
        sys.exit("no epoch line in:\n" + stdout)
    return epochs[-1], (comm[-1] if comm else None)


def run_one(cmd, threads):
    env = clean_env(**({"VIDCLS_NUM_THREADS": threads} if threads else {}))
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(p.stdout)
    return last_epoch(p.stdout)


def run_two(cmd):
    port = free_port()
    procs = []
    for rank in (0, 1):
        env = clean_env(RANK=rank, LOCAL_RANK=rank, WORLD_SIZE=2, LOCAL_WORLD_SIZE=2,
                        MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        out = cmd[cmd.index("--out") + 1] + f"-{rank}"
        c = list(cmd)
        c[c.index("--out") + 1] = out
        procs.append(subprocess.Popen(c, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode != 0 for p in procs):
        sys.exit("\n".join(outs))
    return last_epoch(outs[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--models", default="vivit,resnet-vit")
    ap.add_argument("--batch", type=int, default=8, help="per rank; one process gets twice it")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=4)
    a = ap.parse_args()
    tool = lambda n: os.path.join(a.bin_dir, n)  # noqa: E731
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as work:
        data = os.path.join(work, "data")
        subprocess.run([tool("vidcls-synth"), "--out", data, "-q", "--layout", "msr", "--classes",
                        "4", "--videos-per-class", "16", "--subjects", "4", "--frames", "32",
                        "--size", "80", "--fps", "15", "--seed", "3", "--no-drift"], check=True)
        print(f"{cores} cores; vidcls-synth msr 4 classes x 16 videos; batch {a.batch} per rank; "
              f"{a.epochs} epochs, numbers of the last\n")
        print("| model | run | threads/process | clips/s | step ms | all-reduce in flight ms/step "
              "| waited ms/step | waited share of step |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for model in a.models.split(","):
            base = [tool("vidcls-train"), "--model", model, "--data", data, "--cache",
                    os.path.join(work, "cache"), "--epochs", str(a.epochs), "--repeats",
                    str(a.repeats), "--val-fraction", "0.25"]
            if model == "resnet-vit":  # the temporal transformer on cached backbone features
                base.append("--freeze-backbone")
            for threads in (cores, 1):
                e, _ = run_one(base + ["--out", os.path.join(work, f"{model}-1x{threads}"),
                                       "--batch-size", str(2 * a.batch)], threads)
                print(f"| {model} | 1 process, batch {2 * a.batch} | {threads} | {e.group(2)} "
                      f"| | | | |", flush=True)
            e, c = run_two(base + ["--out", os.path.join(work, f"{model}-2"), "--batch-size",
                                   str(a.batch)])
            print(f"| {model} | 2 processes, batch {a.batch} each | {max(1, cores // 2)} "
                  f"| {e.group(2)} | {c.group(5)} | {c.group(2)} | {c.group(3)} | {c.group(4)}% |",
                  flush=True)


if __name__ == "__main__":
    main()
