//! The `readmostly-bench` command. See `readmostly-bench --help`.

#![forbid(unsafe_code)]

use readmostly_bench::alloc::{mark_installed, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    mark_installed();
    let args: Vec<String> = std::env::args().collect();
    let mut stdout = std::io::stdout().lock();
    match readmostly_bench::cli::run(&args, &mut stdout) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
