#!/usr/bin/env bash
# A/B(/C) of static benchmark binaries on a lent 16-core machine: the same cells, binaries
# alternated ROUNDS times so that drift of the (virtual) machine hits them alike.
# Carry device-bin/ with the binaries; see device-16core.sh for how to build one.
#
#   A=device-bin/bench-old B=device-bin/bench-head [C=device-bin/bench-other] OUT=... \
#       bash benchmarks/device-ab.sh
#
# One folder per (round, binary) with the CLI's CSV/JSON/report and the printed table.
set -uo pipefail

A=${A:?path of the "before" binary}
B=${B:?path of the "after" binary}
C=${C:-}
OUT=${OUT:-bench-out/ab}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-16}
MAPS=${MAPS:-syncmap,sharded,dashmap,scc-hashmap}
WORKLOADS=${WORKLOADS:-churn10,ttl-cache,insert-after-promote,read100,read99}
DURATION=${DURATION:-1s}
mkdir -p "$OUT"
start=$(date +%s)
log() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log.txt"; }
sides=(A B)
[[ -n $C ]] && sides+=(C)
for side in "${sides[@]}"; do
    [[ -x ${!side} ]] || { echo "no binary at ${!side}" >&2; exit 2; }
done
log "machine: $(nproc) CPUs; A=$A B=$B C=$C rounds=$ROUNDS threads=$THREADS"
for ((r = 1; r <= ROUNDS; r++)); do
    for side in "${sides[@]}"; do
        bin=${!side}
        dir="$OUT/r$r-$side"
        log "start round $r $side"
        "$bin" compare --no-progress --no-claim --out "$dir" -m "$MAPS" -w "$WORKLOADS" \
            -t "$THREADS" --duration "$DURATION" >"$dir.txt" 2>&1
        log "end round $r $side (exit $?)"
    done
done
log "done"
