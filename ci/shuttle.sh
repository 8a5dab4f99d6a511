#!/usr/bin/env bash
# Shuttle: randomized-schedule tests of the protocol's races (crates/readmostly/tests/shuttle.rs):
# the races of the loom models plus two bodies loom cannot explore (3 threads of random
# operations checked for per-key linearizability, churn with clear/retain/iteration),
# each under shuttle's random scheduler and PCT at depths 2 and 3.
#
# SHUTTLE_ITERS (default 20000) schedules per scheduler per model, so 3 x SHUTTLE_ITERS
# per model; SHUTTLE_SEED fixes the seed (each model prints the one it used). Run longer
# locally with e.g. `SHUTTLE_ITERS=500000 bash ci/shuttle.sh`.
#
# Like loom.sh: its own target dir (RUSTFLAGS differ): $SHUTTLE_TARGET_DIR, else shuttle/
# under $CARGO_TARGET_DIR (default target/shuttle); and a lighter release profile.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export CARGO_TARGET_DIR="${SHUTTLE_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/shuttle}"
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0" >&2

iters="${SHUTTLE_ITERS:-20000}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# The model build of the library (reclaim's stand-in collector, what `cfg(shuttle)` leaves
# out) is linted too: test.sh lints only the real build.
run 900 env RUSTFLAGS="--cfg shuttle" cargo clippy -p readmostly --all-targets -- -D warnings
run 1200 env RUSTFLAGS="--cfg shuttle" cargo test --release -p readmostly --test shuttle --no-run
rc=0
run 1800 env RUSTFLAGS="--cfg shuttle" SHUTTLE_ITERS="$iters" \
    cargo test --release -p readmostly --test shuttle -- --nocapture 2>&1 | tee "$log" || rc=$?
awk '/^shuttle model|shuttle model / { for (i = 1; i <= NF; i++) if ($i == "schedules") { n += $(i - 1); m++ } }
     END { printf "shuttle: %d models, %d schedules in all (SHUTTLE_ITERS=%s per scheduler)\n", m, n, "'"$iters"'" }' "$log" >&2
exit "$rc"
