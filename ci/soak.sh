#!/usr/bin/env bash
# Memory soak (crates/readmostly/tests/soak.rs), release build, every test of the file
# including the ignored long one:
#   soak_long    SOAK_OPS (default here 4,000,000) operations of high churn on SOAK_THREADS
#                (8) threads, live heap bytes sampled 40 times: the curve, the plateau
#                bound and bytes per live key are printed and asserted; every value
#                dropped exactly once
#   soak_short   the same at a fixed smaller size (SOAK_SHORT_OPS)
#   pinned_reader_retains_then_releases
#                a pin and an iterator held while 3 threads churn: retention grows with
#                the churn (bounded per operation) and is released when they are dropped
# Run longer locally with e.g. `SOAK_OPS=100000000 bash ci/soak.sh` (about 0.4-1 Mops/s
# on 2 cores).
#
# Its own target dir and a lighter release profile (no LTO), as in loom.sh.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export CARGO_TARGET_DIR="${SOAK_TARGET_DIR:-target/soak}"
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16" >&2

run 1200 cargo test --release -p readmostly --test soak --no-run
run 1200 env SOAK_OPS="${SOAK_OPS:-4000000}" \
    cargo test --release -p readmostly --test soak -- --include-ignored --nocapture --test-threads=1
