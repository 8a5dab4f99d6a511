#!/usr/bin/env bash
# Formatting, lints and the README's test command (unit, integration and doc tests).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# All three run even if one fails, so a formatting slip does not hide a test failure.
check 300 cargo fmt --all -- --check
check 1800 cargo clippy --workspace --all-targets --all-features -- -D warnings
check 2400 cargo test --workspace --all-features
finish
