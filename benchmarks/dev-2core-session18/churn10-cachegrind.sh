#!/bin/bash
# cachegrind (simulated 32 KiB L1d, 1 MiB L2 as the last level), churn10, 64 Ki keys,
# 1 thread, 1 M and 3 M operations per map; per operation = (3M run - 1M run) / 2M
# (cg_diff the two outputs, then cg_annotate the difference).
# Run from the repository root after `cargo build --release -p readmostly-bench`;
# OUT (default cg-out) receives cg.MAP.OPS and out.MAP.OPS.
set -eu
out="${OUT:-cg-out}"
mkdir -p "$out"
for m in syncmap sharded dashmap scc-hashindex scc-hashmap; do
  for ops in 1M 3M; do
    valgrind --tool=cachegrind --cache-sim=yes --LL=1048576,16,64 --cachegrind-out-file="$out/cg.$m.$ops" \
      ./target/release/readmostly-bench compare -m "$m" -w churn10 -t 1 --ops "$ops" --max-time 600s \
      --keys 64Ki --no-files --no-claim --no-progress > "$out/out.$m.$ops" 2>&1
  done
done
