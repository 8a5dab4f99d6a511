#!/usr/bin/env bash
# Runs every CI step in order, timing each, and fails if any step failed (after running
# them all, so one failure does not hide another). Steps: test loom miri sanitizers;
# pass a subset as arguments to run only those (e.g. `bash ci/all.sh test loom`).
#
# Wall times measured on the 2-core development machine (shared with 2-3 other builds,
# so pessimistic), cold target dirs as in a fresh CI clone, 2026-11-26:
#   test.sh         3m42s  fmt + clippy + `cargo test --workspace --all-features` (builds the bench crate's peers)
#   loom.sh         2m10s  2m06s build; 14 models x 2 starting orders: 0.2 s at LOOM_MAX_PREEMPTIONS=2, 3.3 s unbounded
#   miri.sh        12m51s  16 seeds strict provenance + 8 seeds tree borrows, ~25-60 s per seed (MIRI_SEEDS, MIRI_TB_SEEDS)
#   sanitizers.sh   3m16s  TSan build 51 s + 5 runs of tests/stress.rs (~7 s each, TSAN_RUNS); ASan+LSan --lib --tests ~2 min
#   total          ~22m    (CI cap: 90 min; budget for these checks: 45 min)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(test loom miri sanitizers)

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
