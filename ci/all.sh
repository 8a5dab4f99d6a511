#!/usr/bin/env bash
# Runs every CI step in order, timing each, and fails if any step failed (after running
# them all, so one failure does not hide another). Steps: test loom miri sanitizers
# shuttle soak fuzz; pass a subset as arguments to run only those (e.g.
# `bash ci/all.sh test loom`).
#
# Wall times of the last full run on record: clean clone of 7907127 on the 2-core
# development machine, cold target dirs, 2026-11-28, machine otherwise idle (total 52m22s;
# the CI cap is 90 min):
#   test.sh         2m37s  fmt + clippy + `cargo test --workspace --all-features` (builds the bench crate's peers)
#   loom.sh         1m13s  clippy of the --cfg loom build + 39 models x 2 starting orders (several also
#                          under 3 recent-table settings)
#   miri.sh        39m42s  12 seeds strict provenance (two runs of 6, each under its own 2400 s limit)
#                          + 6 seeds tree borrows (MIRI_SEEDS, MIRI_TB_SEEDS); each seed runs the lib
#                          tests in ~170 s (16 + 8 seeds took 58m20s in session 13)
#   sanitizers.sh   3m34s  TSan build + runs of tests/stress.rs and tests/soak.rs (TSAN_RUNS);
#                          ASan+LSan over every library test, all features
#   shuttle.sh      2m12s  clippy of the --cfg shuttle build + 32 models x 3 schedulers x 20,000
#                          schedules (one model a tenth of that)
#   soak.sh         0m50s  4M-operation soak (8 threads) + short soak + pinned reader
#   fuzz.sh         2m14s  (+ ~1.5 min to install cargo-fuzz on a fresh machine) build, fuzz crate tests,
#                          30 s per target (FUZZ_SECONDS)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(test loom miri sanitizers shuttle soak fuzz)

failed=()
summary=()
total_start=$(date +%s)
for step in "${steps[@]}"; do
    echo "=== ci/$step.sh ===" >&2
    start=$(date +%s)
    rc=0
    bash "ci/$step.sh" || rc=$?
    secs=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        summary+=("$(printf '%-12s ok      %4dm%02ds' "$step" $((secs / 60)) $((secs % 60)))")
    else
        summary+=("$(printf '%-12s FAILED  %4dm%02ds  (exit %d)' "$step" $((secs / 60)) $((secs % 60)) "$rc")")
        failed+=("$step")
    fi
done
total=$(($(date +%s) - total_start))

echo "=== summary ===" >&2
printf '%s\n' "${summary[@]}" >&2
printf 'total        %4dm%02ds\n' $((total / 60)) $((total % 60)) >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed steps: ${failed[*]}" >&2
    exit 1
fi
