#!/usr/bin/env bash
# The one command that runs every check of sentralbord, on a developer's machine or in CI
# (.ci/run calls exactly this), from a fresh Debian machine as root:
#   1. installs what the tests need if it is missing: SIPp (Debian package sip-tester);
#   2. cargo fmt --check;
#   3. cargo clippy --all-targets -- -D warnings;
#   4. the tests: cargo nextest when installed (faster, one process per test), else
#      cargo test; the black-box tests spawn the real binary on loopback port 0.
# Kamailio is needed by scripts/bench-register.sh only, not here.
#
# Environment: SENTRALBORD_SKIP_SIPP=1 skips the SIPp scenarios (visibly; for developers
# without SIPp). TEST_SH_NO_INSTALL=1 never runs apt-get.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -d "$HOME/.cargo/bin" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { echo; echo "=== $* ==="; }

# --- 1. prerequisites ------------------------------------------------------------------
APT_UPDATED=""
apt_install() { # package...
    if [ "${TEST_SH_NO_INSTALL:-0}" = "1" ] || [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: cannot install $* here (not root, no apt-get, or TEST_SH_NO_INSTALL=1)" >&2
        return 1
    fi
    if [ -z "$APT_UPDATED" ]; then
        timeout 600 apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "$@"
}

step "prerequisites"
if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found (install Rust with rustup)" >&2
    exit 1
fi
for component in fmt clippy; do
    if ! cargo "$component" --version >/dev/null 2>&1; then
        echo "test.sh: cargo $component is missing: rustup component add $([ "$component" = fmt ] && echo rustfmt || echo clippy)" >&2
        exit 1
    fi
done
if [ "${SENTRALBORD_SKIP_SIPP:-0}" = "1" ]; then
    echo "SIPp scenarios will be SKIPPED (SENTRALBORD_SKIP_SIPP=1)"
elif ! command -v sipp >/dev/null 2>&1; then
    echo "sipp not found: installing Debian's sip-tester"
    # Not fatal here: the SIPp tests then fail with a message saying what is missing.
    apt_install sip-tester || true
fi
command -v sipp >/dev/null 2>&1 && echo "sipp: $(sipp -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*' || echo present)"
if [ "${SENTRALBORD_SKIP_BARESIP:-0}" = "1" ]; then
    echo "baresip tests will be SKIPPED (SENTRALBORD_SKIP_BARESIP=1)"
elif ! command -v baresip >/dev/null 2>&1; then
    echo "baresip not found: installing Debian's baresip-core"
    # Not fatal here: under CI the baresip tests then fail saying what is missing.
    apt_install baresip-core || true
fi
cargo --version

# --- 2. format -------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check

# --- 3. lints --------------------------------------------------------------------------
step "cargo clippy --all-targets -- -D warnings"
timeout 1800 cargo clippy --all-targets -- -D warnings

# --- 4. tests --------------------------------------------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
    # nextest does not run doctests; run them first so that nextest's summary is the
    # closing line of the log.
    step "cargo test --doc"
    timeout 1200 cargo test --doc
    step "cargo nextest run"
    timeout 2400 cargo nextest run --no-fail-fast
else
    step "cargo test"
    timeout 2400 cargo test --no-fail-fast
fi
