#!/usr/bin/env bash
# Runs every CI step in order, timing each, and fails if any step failed (after running
# them all, so one failure does not hide another). Steps: test loom miri sanitizers
# shuttle soak fuzz; pass a subset as arguments to run only those (e.g.
# `bash ci/all.sh test loom`).
#
# Wall times of the last full run on record: clean clone of 6534053 (session 22),
# 2-core development machine, cold target dirs, 2026-11-29: total 62m19s (test 3m32s,
# loom 2m22s, miri 42m54s: 10 seeds of the lib tests, ~250 s each, sanitizers 5m45s,
# shuttle 3m40s, soak 1m15s, fuzz 2m51s). Session 21's, clean clone of 95e8697: 65m08s
# (miri 45m28s, ~264 s a seed before 2f78064 trimmed one test). An earlier one, clean clone
# of 21a5434 on the slower machine of session 17, 2026-11-28 (total 90m32s, over the
# 90 min cap, hence the lower Miri seed counts since):
#   test.sh         3m12s  fmt + clippy + `cargo test --workspace --all-features` (builds the bench crate's peers)
#   loom.sh         1m44s  clippy of the --cfg loom build + the models x 2 starting orders (several also
#                          under 3 recent-table settings)
#   miri.sh        71m42s  then 12 seeds strict provenance + 6 tree borrows; now 6 + 4 (MIRI_SEEDS,
#                          MIRI_TB_SEEDS); each seed runs the lib tests in ~204 s on that machine
#                          (~165 s on session 16's, where 12 + 6 seeds took 37 min)
#   sanitizers.sh   5m04s  TSan build + runs of tests/stress.rs and tests/soak.rs (TSAN_RUNS);
#                          ASan+LSan over every library test, all features
#   shuttle.sh      3m49s  clippy of the --cfg shuttle build + the models x 3 schedulers x 20,000
#                          schedules (one model a tenth of that)
#   soak.sh         1m17s  4M-operation soak (8 threads) + short soak + pinned reader
#   fuzz.sh         3m44s  (including installing cargo-fuzz on a fresh machine) build, fuzz crate
#                          tests, 30 s per target (FUZZ_SECONDS)
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
