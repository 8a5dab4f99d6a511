#!/usr/bin/env bash
# A/B(/C/...) of static benchmark binaries on a lent 16-core machine: the same cells,
# binaries alternated ROUNDS times so that drift of the (virtual) machine hits them alike.
# Carry device-bin/ with the binaries; see device-16core.sh for how to build one.
#
#   A=device-bin/bench-old B=device-bin/bench-head [C=device-bin/bench-other] OUT=... \
#       bash benchmarks/device-ab.sh
#   BINS="device-bin/bench-1 device-bin/bench-2 ..." OUT=... bash benchmarks/device-ab.sh
#
# With A/B/C the folders are named r<round>-A, r<round>-B, ...; with BINS (any number of
# binaries, e.g. to bisect a regression) r<round>-<file name of the binary>. Each folder
# holds the CLI's CSV/JSON/report, and <folder>.txt the printed table.
set -uo pipefail

bins=()
names=()
if [[ -n ${BINS:-} ]]; then
    read -r -a bins <<<"$BINS"
    for bin in "${bins[@]}"; do names+=("$(basename "$bin")"); done
else
    bins=("${A:?path of the "before" binary}" "${B:?path of the "after" binary}")
    names=(A B)
    if [[ -n ${C:-} ]]; then
        bins+=("$C")
        names+=(C)
    fi
fi
OUT=${OUT:-bench-out/ab}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-16}
MAPS=${MAPS:-syncmap,sharded,dashmap,scc-hashmap}
WORKLOADS=${WORKLOADS:-churn10,ttl-cache,insert-after-promote,read100,read99}
DURATION=${DURATION:-1s}
mkdir -p "$OUT"
start=$(date +%s)
log() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log.txt"; }
for bin in "${bins[@]}"; do
    [[ -x $bin ]] || { echo "no binary at $bin" >&2; exit 2; }
done
log "machine: $(nproc) CPUs; binaries ${bins[*]}; rounds=$ROUNDS threads=$THREADS"
for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!bins[@]}"; do
        dir="$OUT/r$r-${names[$i]}"
        log "start round $r ${names[$i]}"
        "${bins[$i]}" compare --no-progress --no-claim --out "$dir" -m "$MAPS" -w "$WORKLOADS" \
            -t "$THREADS" --duration "$DURATION" >"$dir.txt" 2>&1
        log "end round $r ${names[$i]} (exit $?)"
    done
done
log "done"
