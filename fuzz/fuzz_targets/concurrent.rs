//! Two threads, per-key linearizability and the final state (see `src/concurrent.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: readmostly_fuzz::concurrent::Input| {
    readmostly_fuzz::concurrent::run(input);
});
