#!/usr/bin/env python3
"""docs/accuracy.md's tables, rendered from the rows that accuracy_synth.py --csv appends to
docs/accuracy/synth.csv: one markdown table per set, between the page's marker lines

  <!-- accuracy-table: SET -->
  ...
  <!-- /accuracy-table -->

  accuracy_table.py [--csv docs/accuracy/synth.csv] [SET ...]       print the tables
  accuracy_table.py [--csv ...] --write [docs/accuracy.md]          rewrite the page's tables
  accuracy_table.py [--csv ...] --check [docs/accuracy.md]          exit 1 where one differs

A later row of the same set, model, preset, options (in any order) and seed replaces an earlier
one, in the earlier one's place; rows are grouped by model (vivit, mini-vivit, resnet-vit).
Cells the CSV leaves empty (not measured) read "-". The options that accuracy_synth.py --mirrors
adds read "mirrors", and --val-fraction is left to the validation column. Python 3 standard
library only.
"""
import argparse
import csv
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the sources for the import below
from accuracy_synth import CSV_COLUMNS, mirror_options  # noqa: E402 (the same folder)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CSV = os.path.join(ROOT, "docs", "accuracy", "synth.csv")
DEFAULT_PAGE = os.path.join(ROOT, "docs", "accuracy.md")
START = re.compile(r"^<!-- accuracy-table: (\S+) -->$")
END = "<!-- /accuracy-table -->"
MODEL_ORDER = ["vivit", "mini-vivit", "resnet-vit"]
HEADER = ["model (preset)", "recipe", "seed", "validation", "chosen epoch (validation top-1)",
          "**test top-1**", "last epoch", "decoded", "minutes"]
ALIGN = ["---", "---", "---:", "---", "---:", "---:", "---:", "---:", "---:"]
WRITE_HINT = "run benchmarks/accuracy_table.py --write docs/accuracy.md"


def option_groups(options):
    """vidcls-train options as groups: '--name value' or a lone '--flag'."""
    tokens = options.split()
    groups = []
    for token in tokens:
        if token.startswith("--") or not groups:
            groups.append(token)
        else:
            groups[-1] += " " + token
    return groups


MIRRORS = [sorted(option_groups(" ".join(mirror_options(k)))) for k in range(2, 11)]
MIRROR_NAMES = ("--flip-swap ", "--vflip-swap ", "--reverse-swap ")


def recipe(options):
    """The recipe cell: the options beyond the preset's, mirrors named as such."""
    groups = [g for g in option_groups(options) if not g.startswith("--val-fraction ")]
    mirrors = sorted(g for g in groups if g.startswith(MIRROR_NAMES))
    cells = [f"`{g}`" for g in groups if not (mirrors in MIRRORS and g in mirrors)]
    if mirrors and mirrors in MIRRORS:
        cells.append("mirrors")
    return ", ".join(cells) if cells else "the preset's"


def percent(value):
    return f"{float(value):.1f} %" if value.strip() else "-"


def row_cells(r):
    chosen = "-"
    if r["chosen_epoch"].strip():
        chosen = f"{r['chosen_epoch']} of {r['epochs']}"
        if r["val_top1"].strip():
            chosen += f" ({percent(r['val_top1'])})"
    validation = re.sub(r"(--\S+ [^\s)]+)", r"`\1`", r["validation"]) or "-"
    return [f"{r['model']} ({r['preset']})", recipe(r["options"]), r["seed"] or "-", validation,
            chosen, f"**{percent(r['test_top1'])}**" if r["test_top1"].strip() else "-",
            percent(r["last_top1"]), percent(r["decoded_top1"]), r["minutes"].strip() or "-"]


def read_rows(path):
    """The CSV's current rows per set, in table order."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != CSV_COLUMNS:
            raise SystemExit(f"{path}: the columns are not {','.join(CSV_COLUMNS)}")
        rows = list(reader)
    current = {}  # key -> (position of its first row, its last row)
    for i, r in enumerate(rows):
        key = (r["set"], r["model"], r["preset"], tuple(sorted(option_groups(r["options"]))),
               r["seed"])
        current[key] = (current[key][0] if key in current else i, r)
    per_set = {}
    for key, (position, r) in current.items():
        rank = MODEL_ORDER.index(r["model"]) if r["model"] in MODEL_ORDER else len(MODEL_ORDER)
        per_set.setdefault(r["set"], []).append(((rank, r["model"], position), r))
    return {s: [r for _, r in sorted(rs, key=lambda x: x[0])] for s, rs in per_set.items()}


def table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "| " + " | ".join(ALIGN) + " |"]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    return lines


def block(rows):
    """What stands between a set's marker lines: the table with a blank line either side."""
    return [""] + table(rows) + [""]


def sections(lines, page):
    """(set, index of its start marker, index of its end marker) for each table of the page."""
    out = []
    i = 0
    while i < len(lines):
        m = START.match(lines[i].strip())
        if m:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END), None)
            if end is None:
                raise SystemExit(f"{page}: the table for set '{m.group(1)}' (line {i + 1}) has no "
                                 f"{END} line")
            out.append((m.group(1), i, end))
            i = end
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser(description="docs/accuracy.md's tables from its CSV")
    ap.add_argument("--csv", default=DEFAULT_CSV,
                    help="the rows (default: docs/accuracy/synth.csv)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", nargs="?", const=DEFAULT_PAGE, metavar="PAGE",
                      help="replace the tables between the marker lines of PAGE")
    mode.add_argument("--check", nargs="?", const=DEFAULT_PAGE, metavar="PAGE",
                      help="exit 1 where a table of PAGE is not what the CSV renders")
    ap.add_argument("sets", nargs="*", help="print these sets' tables (default: all)")
    a = ap.parse_args()
    per_set = read_rows(a.csv)
    a.csv = os.path.relpath(a.csv)  # for the messages
    page = a.write or a.check
    if page is None:
        for s in a.sets or per_set:
            if s not in per_set:
                raise SystemExit(f"{a.csv}: no rows for set '{s}'")
            print(f"{s}:\n")
            print("\n".join(table(per_set[s])) + "\n")
        return 0

    with open(page) as f:
        lines = f.read().split("\n")
    found = sections(lines, page)
    problems = []
    for s, start, end in found:
        if s not in per_set:
            problems.append(f"{page}: set '{s}' has a table but no rows in {a.csv}")
        elif lines[start + 1:end] != block(per_set[s]):
            problems.append(f"{page}: the table for set '{s}' is not what {a.csv} renders")
    for s in per_set:
        if s not in [f[0] for f in found]:
            problems.append(f"{page}: {a.csv} has rows for set '{s}' but the page has no "
                            f"<!-- accuracy-table: {s} --> line")

    if a.check:
        if problems:
            print("\n".join(problems) + f"\n{WRITE_HINT}", file=sys.stderr)
            return 1
        print(f"{page}: {len(found)} tables match {a.csv}")
        return 0

    for s, start, end in reversed(found):
        if s in per_set:
            lines[start + 1:end] = block(per_set[s])
    with open(page, "w") as f:
        f.write("\n".join(lines))
    left = [p for p in problems if "is not what" not in p]
    if left:
        print("\n".join(left), file=sys.stderr)
        return 1
    print(f"{page}: {len(found)} tables written from {a.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
