#!/bin/bash
# Per-operation cachegrind counts of one map on one workload, 1 thread, KEYS keys:
# (run of 3 M operations - run of 1 M) / 2 M, so prefill and set-up cancel.
# Simulated caches: valgrind's default L1d (this host: 32 KiB model), and a 1 MiB 16-way
# last level (this host's L2). Cachegrind does not model prefetch instructions.
# usage: [KEYS=64Ki] cachegrind-per-op.sh BIN TAG MAP WORKLOAD   (BIN: a release readmostly-bench)
# prints: TAG MAP WORKLOAD instr, data reads, L1d read misses, LL read misses, data writes
set -eu
bin=$1; tag=$2; m=$3; w=$4; d="${OUT:-cg-out}/$tag"; mkdir -p "$d"
for ops in 1M 3M; do
  valgrind --tool=cachegrind --cache-sim=yes --LL=1048576,16,64 \
    --cachegrind-out-file="$d/cg.$m.$w.$ops" "$bin" compare -m "$m" -w "$w" -t 1 --ops "$ops" \
    --max-time 600s --keys "${KEYS:-64Ki}" --no-files --no-claim --no-progress > "$d/out.$m.$w.$ops" 2>&1
done
tot() { grep "^summary:" "$1" | awk '{print $2,$3,$4,$5,$6,$7,$8,$9,$10}'; }
paste <(tot "$d/cg.$m.$w.1M" | tr ' ' '\n') <(tot "$d/cg.$m.$w.3M" | tr ' ' '\n') |
  awk -v m="$m" -v w="$w" -v t="$tag" '{d[NR]=($2-$1)/2e6} END{printf "%-8s %-10s %-8s instr %6.1f Dr %5.1f D1mr %5.2f DLmr %5.2f Dw %5.1f\n", t,m,w,d[1],d[4],d[5],d[6],d[7]}'
