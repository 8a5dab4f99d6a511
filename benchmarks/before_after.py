#!/usr/bin/env python3
"""Before/after table from repeated `readmostly-bench compare` runs.

Usage: before_after.py BEFORE_DIR[,BEFORE_DIR...] AFTER_DIR[,AFTER_DIR...]

Each directory holds a `results.csv` written by `readmostly-bench compare --out DIR`
(a path ending in `.csv` is read as such a file).
Runs of the two builds should be interleaved (before, after, before, after) so that drift
of a shared machine hits both alike; every cell is the median over its runs. Prints a
Markdown table: per workload and thread count, `syncmap` before and after, the change, and
the after-run ratios of `syncmap` against dashmap and scc HashIndex and of `sharded`
against scc HashMap (peers measured in the same runs as the "after" build).
"""

import csv
import statistics
import sys
from collections import defaultdict


def load(dirs):
    cells = defaultdict(list)
    order = []
    for d in dirs.split(","):
        path = d if d.endswith(".csv") else f"{d}/results.csv"
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["dist"] != "uniform":
                    continue
                key = (row["workload"], int(row["threads"]))
                if key not in order:
                    order.append(key)
                cells[(row["map"],) + key].append(float(row["mops"]))
    return {k: statistics.median(v) for k, v in cells.items()}, order


def fmt(x):
    return "–" if x is None else (f"{x:.1f}" if x >= 1 else f"{x:.2f}")


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    before, _ = load(sys.argv[1])
    after, order = load(sys.argv[2])
    print(
        "| workload | thr | syncmap before | syncmap after | after ÷ before "
        "| syncmap-go | ÷ dashmap | ÷ scc-hashindex | sharded ÷ scc-hashmap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w, t in order:
        b = before.get(("syncmap", w, t))
        a = after.get(("syncmap", w, t))
        print(
            f"| {w} | {t} | {fmt(b)} | {fmt(a)} | {ratio(a, b)} "
            f"| {fmt(after.get(('syncmap-go', w, t)))} "
            f"| {ratio(a, after.get(('dashmap', w, t)))} "
            f"| {ratio(a, after.get(('scc-hashindex', w, t)))} "
            f"| {ratio(after.get(('sharded', w, t)), after.get(('scc-hashmap', w, t)))} |"
        )


if __name__ == "__main__":
    main()
