# Shared helpers for the ci/*.sh scripts. Source it; do not run it.
#
# Every command goes through `run LIMIT_SECONDS cmd...`, which prints the command (with
# any `env VAR=...` prefix, so it can be copied and run by hand) and kills it when it
# runs past its limit, so no script can hang a CI run.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The host triple, for the sanitizer builds that need an explicit --target.
HOST_TARGET="$(rustc -vV | sed -n 's/^host: //p')"
export HOST_TARGET

# When set to 1, a missing nightly toolchain (Miri, sanitizers) fails the run instead of
# skipping those checks with a warning.
READMOSTLY_CI_REQUIRE_NIGHTLY="${READMOSTLY_CI_REQUIRE_NIGHTLY:-0}"

run() {
    local limit=$1
    shift
    echo "+ $*" >&2
    local rc=0
    timeout --kill-after=30 "$limit" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "!! timed out after ${limit}s: $*" >&2
    fi
    return "$rc"
}

# check LIMIT_SECONDS cmd...: like `run`, but a failure is recorded instead of ending the
# script, so the remaining checks still run; `finish` then fails if any check failed.
FAILED_CHECKS=()
check() {
    run "$@" || FAILED_CHECKS+=("$2 ${3:-} ${4:-} (exit $?)")
}
finish() {
    if [ ${#FAILED_CHECKS[@]} -gt 0 ]; then
        printf '!! failed: %s\n' "${FAILED_CHECKS[@]}" >&2
        exit 1
    fi
}

# ensure_nightly COMPONENT...: makes sure `cargo +nightly` works and has the given
# components, installing them through rustup if needed. Returns non-zero if that is not
# possible (offline machine, no rustup); callers decide whether that skips or fails.
ensure_nightly() {
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "nightly toolchain missing: installing it" >&2
        local args=()
        for c in "$@"; do args+=(--component "$c"); done
        run 900 rustup toolchain install nightly --profile minimal "${args[@]}" || return 1
    fi
    local installed
    installed="$(rustup component list --toolchain nightly --installed 2>/dev/null || true)"
    for c in "$@"; do
        if ! grep -q "^$c" <<<"$installed"; then
            run 600 rustup component add --toolchain nightly "$c" || return 1
        fi
    done
    rustup run nightly rustc --version >&2
}

# skip_or_fail MESSAGE: a nightly-only check cannot run here.
skip_or_fail() {
    if [ "$READMOSTLY_CI_REQUIRE_NIGHTLY" = 1 ]; then
        echo "!! $1 (READMOSTLY_CI_REQUIRE_NIGHTLY=1: failing)" >&2
        exit 1
    fi
    echo "!! SKIPPED: $1 (set READMOSTLY_CI_REQUIRE_NIGHTLY=1 to make this fatal)" >&2
    exit 0
}
