#!/usr/bin/env bash
# Loom models of the read/dirty protocol (crates/readmostly/tests/loom.rs).
#
# Pass 1 is the documented command, at LOOM_MAX_PREEMPTIONS=2 (override from the
# environment). Pass 2 explores deeper: LOOM_DEEP_PREEMPTIONS=unbounded (the default:
# exhaustive DPOR, ~2 s today) or a number; "skip" skips it.
#
# Loom builds use their own target dir (RUSTFLAGS differ, so they would otherwise
# rebuild the main cache each time): $LOOM_TARGET_DIR, else loom/ under $CARGO_TARGET_DIR
# (default target/loom); and a lighter release profile (no LTO, parallel
# codegen): loom's runtime cost is exploring schedules, not our code's speed.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/loom}"
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0" >&2

# The model build of the library is linted too (test.sh lints only the real build).
run 900 env RUSTFLAGS="--cfg loom" cargo clippy -p readmostly --all-targets -- -D warnings
run 1200 env RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
    cargo test --release -p readmostly --test loom -- --nocapture

deep="${LOOM_DEEP_PREEMPTIONS:-unbounded}"
case "$deep" in
skip) ;;
unbounded)
    run 900 env -u LOOM_MAX_PREEMPTIONS RUSTFLAGS="--cfg loom" \
        cargo test --release -p readmostly --test loom -- --nocapture
    ;;
*)
    run 900 env RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="$deep" \
        cargo test --release -p readmostly --test loom -- --nocapture
    ;;
esac
