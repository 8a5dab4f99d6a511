#!/usr/bin/env bash
# ThreadSanitizer over the multi-thread stress test and the memory soak test (a short
# run: TSAN_SOAK_OPS operations, TSAN_PIN_OPS per thread for the pinned reader), the
# pair run TSAN_RUNS times (races are probabilistic); then AddressSanitizer +
# LeakSanitizer (LSan is part of ASan on Linux) over every library test: the unit tests
# and all integration tests, with all features. Each sanitizer builds in its own target
# dir.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

tsan_runs="${TSAN_RUNS:-5}"
tsan_soak_ops="${TSAN_SOAK_OPS:-40000}"
tsan_pin_ops="${TSAN_PIN_OPS:-6000}"

ensure_nightly rust-src || skip_or_fail "no nightly toolchain with rust-src"

# ---------------------------------------------------------------- ThreadSanitizer
# -Zbuild-std: std itself must be instrumented, or TSan reports races inside it.
if [ -f crates/readmostly/tests/stress.rs ]; then
    tsan_tests=(--test stress)
else
    echo "crates/readmostly/tests/stress.rs not found: running TSan over the lib tests" >&2
    tsan_tests=(--lib)
fi
[ -f crates/readmostly/tests/soak.rs ] && tsan_tests+=(--test soak)
tsan_env=(
    CARGO_TARGET_DIR=target/tsan
    RUSTFLAGS=-Zsanitizer=thread
    RUSTDOCFLAGS=-Zsanitizer=thread
    TSAN_OPTIONS="suppressions=$PWD/ci/tsan.supp"
    SOAK_SHORT_OPS="$tsan_soak_ops"
    SOAK_PIN_OPS="$tsan_pin_ops"
)
tsan_cmd=(cargo +nightly test -Zbuild-std --target "$HOST_TARGET" -p readmostly "${tsan_tests[@]}")
run 1800 env "${tsan_env[@]}" "${tsan_cmd[@]}" --no-run
for i in $(seq 1 "$tsan_runs"); do
    echo "TSan run $i/$tsan_runs" >&2
    run 900 env "${tsan_env[@]}" "${tsan_cmd[@]}"
done

# ---------------------------------------------------------------- AddressSanitizer
# `--lib --tests`: the unit tests and every integration test (stress, soak, alloc,
# linearizability, unwind, ...); `--all-features` adds the serde and metrics tests.
# READMOSTLY_LEAK_CHECK: the unwind tests that leak on purpose (a forgotten guard, a
# panicking `Drop`) skip themselves under the leak checker.
run 2400 env CARGO_TARGET_DIR=target/asan RUSTFLAGS=-Zsanitizer=address ASAN_OPTIONS=detect_leaks=1 READMOSTLY_LEAK_CHECK=1 \
    cargo +nightly test --target "$HOST_TARGET" -p readmostly --all-features --lib --tests
