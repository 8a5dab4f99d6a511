#!/bin/bash
# Interleaved before/after runs of every workload at 1 and 2 threads, 300 ms cells.
# usage: BEFORE=path/to/readmostly-bench-of-e259065 AFTER=path/to/readmostly-bench-of-7c31224 before-after.sh
# then:  python3 benchmarks/before_after.py before1,...,before6 after1,...,after6
# (e259065 is the last commit before issue 6's work; it has no --rounds, hence six separate runs.)
set -u
M=syncmap,syncmap-batch,sharded,dashmap,scc-hashindex,scc-hashmap,papaya,frozen-std
for i in 1 2 3 4 5 6; do
  "$BEFORE" compare -m $M -w all -t 1,2 --duration 300ms --no-claim --no-progress --out before$i > before$i.log 2>&1
  "$AFTER" compare -m $M,syncmap-go -w all -t 1,2 --duration 300ms --no-claim --no-progress --out after$i > after$i.log 2>&1
done
