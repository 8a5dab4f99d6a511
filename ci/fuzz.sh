#!/usr/bin/env bash
# cargo-fuzz targets (fuzz/, its own crate outside the workspace):
#   differential  arbitrary operation sequences on SyncMap and std's HashMap, every result
#                 compared (all public operations, forced promotions, long-lived pins)
#   concurrent    a sequence split over two threads: per-key linearizability of the
#                 results and the final state
# Each runs FUZZ_SECONDS (default 30) with AddressSanitizer (cargo-fuzz's default), from
# and into the committed corpus fuzz/corpus/<target>; the executions are reported.
# FUZZ_CMIN=auto (default) minimises a corpus that has grown past 1000 files (`cargo fuzz
# cmin` keeping one input per coverage edge, not per hit count: a few hundred files of
# a few dozen bytes), 1 always, 0 never. A crash leaves its input in
# fuzz/artifacts/<target>/.
#
# Run longer locally with e.g. `FUZZ_SECONDS=3600 bash ci/fuzz.sh`, or one target with
# `FUZZ_TARGETS=concurrent`; commit the corpus that grew. Also runs the fuzz crate's own
# tests (the linearizability checker).
#
# Needs nightly (sanitizer flags) and cargo-fuzz, installed here when missing (~1.5 min).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds="${FUZZ_SECONDS:-30}"
read -r -a targets <<<"${FUZZ_TARGETS:-differential concurrent}"
cmin="${FUZZ_CMIN:-auto}"

ensure_nightly rust-src || skip_or_fail "no nightly toolchain (cargo-fuzz needs it)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    start=$(date +%s)
    run 900 cargo install cargo-fuzz --locked || skip_or_fail "cargo-fuzz could not be installed"
    echo "cargo-fuzz installed in $(($(date +%s) - start)) s" >&2
fi
cargo fuzz --version >&2

run 600 env CARGO_TARGET_DIR=fuzz/target/test \
    cargo +nightly test --manifest-path fuzz/Cargo.toml --release --lib -- --nocapture
run 1200 cargo +nightly fuzz build

summary=()
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus"
    log="$(mktemp)"
    rc=0
    run $((seconds + 600)) cargo +nightly fuzz run "$t" "$corpus" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1 | tee "$log" | grep -v '^#[0-9]' || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rm -f "$log"
    files=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -ne 0 ]; then
        echo "!! fuzz target $t failed (see fuzz/artifacts/$t/; reproduce with cargo +nightly fuzz run $t <file>)" >&2
        exit "$rc"
    fi
    if [ "$cmin" = 1 ] || { [ "$cmin" = auto ] && [ "$files" -gt 1000 ]; }; then
        run 1200 cargo +nightly fuzz cmin "$t" "$corpus" -- -use_counters=0
        files=$(find "$corpus" -type f | wc -l)
    fi
    bytes=$(find "$corpus" -type f -exec cat {} + | wc -c)
    summary+=("$(printf '%-13s %10s executions in %ss, corpus %s files, %s bytes' "$t" "${execs:-?}" "$seconds" "$files" "$bytes")")
done
printf 'fuzz: %s\n' "${summary[@]}" >&2
