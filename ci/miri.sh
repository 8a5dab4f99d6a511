#!/usr/bin/env bash
# Miri over the library's unit tests (src/tests.rs scales itself down under cfg(miri)):
# pass 1 with strict provenance (Stacked Borrows) over MIRI_SEEDS scheduler seeds,
# pass 2 with Tree Borrows over MIRI_TB_SEEDS seeds. cargo-miri keeps its build in
# target/miri, apart from the main cache.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# 6 + 4 seeds keep the CI run inside its 90 min: on the slower 2-core host of session 17
# (~204 s per seed, two seeds at a time) 12 + 6 seeds took 71m42s of a 90m32s full run;
# on session 16's host they took 37 min. One strict-provenance invocation instead of two
# also saves a build.
# Interleavings are explored by loom and shuttle; Miri's seeds vary the schedule of the
# stress-style unit tests under its undefined-behaviour checks.
seeds="${MIRI_SEEDS:-6}"
tb_seeds="${MIRI_TB_SEEDS:-4}"

ensure_nightly miri rust-src || skip_or_fail "no nightly toolchain with miri + rust-src"

run 900 cargo +nightly miri setup
# Pass 1 runs its seeds in chunks of 6, each under its own time limit: one run of 16
# seeds took ~2000 s of a 2400 s limit on the 2-core CI machine (session 12).
chunk=6
for ((lo = 0; lo < seeds; lo += chunk)); do
    hi=$((lo + chunk < seeds ? lo + chunk : seeds))
    run 2400 env MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=$lo..$hi" \
        cargo +nightly miri test -p readmostly --lib
done
run 2400 env MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-tree-borrows -Zmiri-many-seeds=0..$tb_seeds" \
    cargo +nightly miri test -p readmostly --lib
