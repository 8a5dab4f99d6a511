#!/usr/bin/env bash
# membarrier calls and the process's user / system CPU time for the same work (fixed
# operations, one map, one workload) at each retire batch, alternated.
# usage: [BIN=...] [ROUNDS=3] [BATCHES="512 2048 8192"] [THREADS=2] [OPS=2M] membarrier-count.sh
# Needs perf with syscall tracepoints. Prints: round batch workload membarriers user sys
set -euo pipefail
bin=${BIN:-target/release/readmostly-bench}
for round in $(seq "${ROUNDS:-3}"); do
  for w in ${WORKLOADS:-write50 read95 churn10}; do
    for rb in ${BATCHES:-512 2048 8192}; do
      tmp=$(mktemp)
      cpu=$(perf stat -x, -o "$tmp" -e syscalls:sys_enter_membarrier /usr/bin/time -f "%U %S" \
          "$bin" compare -m syncmap -w "$w" -t "${THREADS:-2}" --ops "${OPS:-2M}" --max-time 60s \
          --keys 64Ki --retire-batch "$rb" --no-claim --no-progress --no-files --format csv \
          2>&1 >/dev/null | tail -1)
      calls=$(grep membarrier "$tmp" | cut -d, -f1)
      rm -f "$tmp"
      echo "$round $rb $w membarriers $calls user/sys $cpu"
    done
  done
done
