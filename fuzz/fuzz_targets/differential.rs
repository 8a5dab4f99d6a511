//! `SyncMap` vs `std::collections::HashMap` (see `src/differential.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: readmostly_fuzz::differential::Input| {
    readmostly_fuzz::differential::run(input);
});
