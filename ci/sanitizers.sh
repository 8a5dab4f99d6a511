#!/usr/bin/env bash
# ThreadSanitizer over the multi-thread stress test (run TSAN_RUNS times), then
# AddressSanitizer + LeakSanitizer (LSan is part of ASan on Linux) over the library's
# unit tests and the integration tests. Each sanitizer builds in its own target dir.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

tsan_runs="${TSAN_RUNS:-5}"

ensure_nightly rust-src || skip_or_fail "no nightly toolchain with rust-src"

# ---------------------------------------------------------------- ThreadSanitizer
# -Zbuild-std: std itself must be instrumented, or TSan reports races inside it.
if [ -f crates/readmostly/tests/stress.rs ]; then
    tsan_tests=(--test stress)
else
    echo "crates/readmostly/tests/stress.rs not found: running TSan over the lib tests" >&2
    tsan_tests=(--lib)
fi
tsan_env=(
    CARGO_TARGET_DIR=target/tsan
    RUSTFLAGS=-Zsanitizer=thread
    RUSTDOCFLAGS=-Zsanitizer=thread
    TSAN_OPTIONS="suppressions=$PWD/ci/tsan.supp"
)
tsan_cmd=(cargo +nightly test -Zbuild-std --target "$HOST_TARGET" -p readmostly "${tsan_tests[@]}")
run 1800 env "${tsan_env[@]}" "${tsan_cmd[@]}" --no-run
for i in $(seq 1 "$tsan_runs"); do
    echo "TSan run $i/$tsan_runs" >&2
    run 900 env "${tsan_env[@]}" "${tsan_cmd[@]}"
done

# ---------------------------------------------------------------- AddressSanitizer
run 2400 env CARGO_TARGET_DIR=target/asan RUSTFLAGS=-Zsanitizer=address ASAN_OPTIONS=detect_leaks=1 \
    cargo +nightly test --target "$HOST_TARGET" -p readmostly --lib --tests
