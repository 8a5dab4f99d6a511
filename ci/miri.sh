#!/usr/bin/env bash
# Miri over the library's unit tests (src/tests.rs scales itself down under cfg(miri)):
# pass 1 with strict provenance (Stacked Borrows) over MIRI_SEEDS scheduler seeds,
# pass 2 with Tree Borrows over MIRI_TB_SEEDS seeds. cargo-miri keeps its build in
# target/miri, apart from the main cache.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seeds="${MIRI_SEEDS:-16}"
tb_seeds="${MIRI_TB_SEEDS:-8}"

ensure_nightly miri rust-src || skip_or_fail "no nightly toolchain with miri + rust-src"

run 900 cargo +nightly miri setup
# Pass 1 runs its seeds in chunks of 8, each under its own time limit: one run of all 16
# took ~2000 s of a 2400 s limit on the 2-core CI machine (session 12).
chunk=8
for ((lo = 0; lo < seeds; lo += chunk)); do
    hi=$((lo + chunk < seeds ? lo + chunk : seeds))
    run 2400 env MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=$lo..$hi" \
        cargo +nightly miri test -p readmostly --lib
done
run 2400 env MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-tree-borrows -Zmiri-many-seeds=0..$tb_seeds" \
    cargo +nightly miri test -p readmostly --lib
