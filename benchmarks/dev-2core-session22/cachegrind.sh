#!/bin/bash
# Per-operation cachegrind counts, 1 thread, 64 Ki keys, before issue 6 and now
# (benchmarks/dev-2core-session19/cachegrind-per-op.sh; simulated 1 MiB last level).
# usage: BEFORE=readmostly-bench-of-e259065 AFTER=readmostly-bench-of-7c31224 cachegrind.sh
S="$(dirname "$0")/../dev-2core-session19/cachegrind-per-op.sh"
for w in read100 read99 write50 churn10 ttl-cache insert-after-promote delete-insert mostly-miss; do
  bash "$S" "$BEFORE" before syncmap $w >> before.txt
  bash "$S" "$AFTER" after syncmap $w >> after.txt
done
for m in dashmap scc-hashindex; do for w in read100 churn10 write50; do
  bash "$S" "$AFTER" after $m $w >> peers.txt
done; done
