//! `readmostly-bench`: which concurrent map is fastest for *your* workload, on *your* machine?
//!
//! The `readmostly-bench` binary compares `readmostly::SyncMap` with the usual Rust
//! alternatives on named workloads (`compare`), recommends a map for a described workload
//! (`advise`), and lists what it knows (`list`). This library holds the pieces so that they
//! can be tested: workloads and their operation streams ([`workloads`]), one adapter per map
//! ([`adapters`]), the measuring loop ([`runner`]), whole runs ([`suite`]), and the outputs
//! ([`record`], [`report`], [`plot`]).
//!
//! How numbers are made (kept identical to the anchor measurements in `shared/anchors/`):
//! keys are `u64` mixed by a bijective finalizer; every map uses foldhash with a fixed seed
//! (selectable); the map is prefilled, then a warm-up of a tenth of the operations runs, then
//! the timed operations; every 32nd operation is timed; streams are generated before the
//! timed region; threads start on a barrier.

#![deny(unsafe_code)] // the counting allocator (`alloc`) is the only exception

pub mod adapters;
pub mod advise;
pub mod alloc;
pub mod cli;
pub mod keys;
pub mod plot;
pub mod record;
pub mod report;
pub mod runner;
pub mod suite;
pub mod workloads;

use std::fmt;

/// A one-line error for the user; `usage` errors exit with status 2, others with 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    usage: bool,
}

impl Error {
    /// A runtime error (exit status 1).
    pub fn msg(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            usage: false,
        }
    }

    /// Bad command-line input (exit status 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            usage: true,
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        if self.usage {
            2
        } else {
            1
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
