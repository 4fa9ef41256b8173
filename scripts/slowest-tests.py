#!/usr/bin/env python3
"""The slowest tests of the last `meson test` run, as a markdown table.

  scripts/slowest-tests.py [BUILD_DIR] [--top 10]

Reads BUILD_DIR/meson-logs/testlog.json (written by every `meson test`) and prints the `--top`
slowest tests with their suites, seconds and result, then the run's total, so docs/benchmarks.md
can show where the suite's time goes.
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--top", type=int, default=10)
    a = ap.parse_args()
    path = os.path.join(a.build, "meson-logs", "testlog.json")
    try:
        with open(path) as f:
            runs = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        sys.exit(f"slowest-tests: {path}: {e.strerror} (run meson test -C {a.build} first)")
    runs.sort(key=lambda r: r["duration"], reverse=True)
    print("| test | suites | seconds | result |")
    print("| --- | --- | ---: | --- |")
    for r in runs[:a.top]:
        # "project:suite+suite / name"
        suites, _, name = r["name"].partition(" / ")
        suites = suites.split(":", 1)[-1].replace("+", ", ")
        print(f"| `{name}` | {suites} | {r['duration']:.1f} | {r['result']} |")
    total = sum(r["duration"] for r in runs)
    print(f"\n{len(runs)} tests, {total / 60:.1f} minutes in all (one at a time).")


if __name__ == "__main__":
    main()
