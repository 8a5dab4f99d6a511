#!/usr/bin/env python3
"""Medians of the alternated A/B runs of session 14 (run 2: bisect, run 3: the fix).

Run from this folder: `python3 summarize.py`. Prints, per run, the median Mops/s of each
(workload, map) for each binary over its rounds, and the rounds' range.
"""
import csv
import glob
import os
import re
import statistics
from collections import defaultdict

for run in ("run2-bisect", "run3-fix"):
    cells = defaultdict(list)  # (workload, map, binary) -> [mops]
    binaries = []
    for path in sorted(glob.glob(os.path.join(run, "r*-*/results.csv"))):
        binary = re.match(r"r\d+-(.+)", os.path.basename(os.path.dirname(path))).group(1)
        if binary not in binaries:
            binaries.append(binary)
        for row in csv.DictReader(open(path)):
            cells[(row["workload"], row["map"], binary)].append(float(row["mops"]))
    print(f"== {run}: median Mops/s (min-max) at 16 threads")
    keys = sorted({(w, m) for (w, m, _) in cells})
    print("%-22s %-8s " % ("workload", "map") + " ".join("%-22s" % b for b in binaries))
    for w, m in keys:
        out = []
        for b in binaries:
            v = cells.get((w, m, b), [])
            out.append("%6.1f (%5.1f-%5.1f)    " % (statistics.median(v), min(v), max(v)) if v else "-".ljust(22))
        print("%-22s %-8s " % (w, m) + " ".join(out))
    print()
