#!/usr/bin/env bash
# Runs every CI step in order, timing each, and fails if any step failed (after running
# them all, so one failure does not hide another). Steps: test loom miri sanitizers
# shuttle soak fuzz; pass a subset as arguments to run only those (e.g.
# `bash ci/all.sh test loom`).
#
# Wall times of the last full run on record: clean clone of 65c54ac on the 2-core
# development machine, cold target dirs, 2026-11-28, with other work sharing the machine
# for part of it (total 70m37s; the CI cap is 90 min; a468856 took 61m53s alone):
#   test.sh         2m46s  fmt + clippy + `cargo test --workspace --all-features` (builds the bench crate's peers)
#   loom.sh         1m06s  build + 39 models x 2 starting orders (several also under 3 recent-table settings);
#                          since then also clippy of the --cfg loom build (~1 min)
#   miri.sh        58m20s  then 16 seeds strict provenance (two runs of 8) + 8 seeds tree borrows;
#                          now 12 (two runs of 6, each under its own 2400 s limit) + 6 (MIRI_SEEDS,
#                          MIRI_TB_SEEDS): ~44 min expected; each seed runs the lib tests in ~165 s
#   sanitizers.sh   3m13s  TSan build + runs of tests/stress.rs and tests/soak.rs (TSAN_RUNS);
#                          ASan+LSan over every library test, all features
#   shuttle.sh      1m54s  30 models x 3 schedulers x 20,000 schedules; since then also clippy of the
#                          --cfg shuttle build (~1 min)
#   soak.sh         0m54s  4M-operation soak (8 threads) + short soak + pinned reader
#   fuzz.sh         2m24s  (+ ~1.5 min to install cargo-fuzz on a fresh machine) build, fuzz crate tests,
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
