#!/usr/bin/env bash
# Runs every CI step in order, timing each, and fails if any step failed (after running
# them all, so one failure does not hide another). Steps: test loom miri sanitizers
# shuttle soak fuzz; pass a subset as arguments to run only those (e.g.
# `bash ci/all.sh test loom`).
#
# Wall times measured on the 2-core development machine (shared with 2-3 other builds,
# so pessimistic), cold target dirs as in a fresh CI clone, 2026-11-26/27:
#   test.sh         3m42s  fmt + clippy + `cargo test --workspace --all-features` (builds the bench crate's peers)
#   loom.sh         2m10s  2m06s build; 14 models x 2 starting orders: 0.2 s at LOOM_MAX_PREEMPTIONS=2, 3.3 s unbounded
#   miri.sh        12m51s  16 seeds strict provenance + 8 seeds tree borrows, ~25-60 s per seed (MIRI_SEEDS, MIRI_TB_SEEDS)
#   sanitizers.sh   3m49s  TSan build 1m20s + 5 runs of tests/stress.rs and tests/soak.rs (~9 s each, TSAN_RUNS);
#                          ASan+LSan over every library test, all features: build 50 s + ~70 s of tests
#   shuttle.sh     ~2m05s  1m24s build; 16 models x 3 schedulers x 20,000 schedules = 960,000 schedules in ~31 s
#   soak.sh         1m13s  1m04s build; 4M-operation soak (8 threads) + short soak + pinned reader: ~9 s
#   fuzz.sh        ~4m     cargo-fuzz install 1m21s (skipped when present), build ~1m, fuzz crate tests,
#                          30 s per target (FUZZ_SECONDS): ~46,000 differential / ~29,000 concurrent executions
#   total          ~30m    (CI cap: 90 min; budget for these checks: 45 min)
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
