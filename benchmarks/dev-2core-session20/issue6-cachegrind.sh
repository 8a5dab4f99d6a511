#!/usr/bin/env bash
# cachegrind per-operation counts (1 thread, 64 Ki keys) of syncmap and sharded on every
# workload, for two readmostly-bench binaries: BEFORE (built from e259065, the commit
# before issue 6's first change, 3bc59fc) and AFTER (the commit measured).
# usage: BEFORE=path/to/bench-before AFTER=path/to/bench-after [OUT=cg-out] issue6-cachegrind.sh
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
per_op=$here/../dev-2core-session19/cachegrind-per-op.sh
for w in read100 read99 read95 read90 write50 churn10 config-snapshot ttl-cache multi-tenant \
         hot-key insert-after-promote delete-insert mostly-miss goi-collide iterate-heavy; do
  for m in syncmap sharded; do
    bash "$per_op" "$BEFORE" pre6 "$m" "$w"
    bash "$per_op" "$AFTER" head20 "$m" "$w"
  done
done
