#!/usr/bin/env bash
# Builds every fuzz target once, then runs each for SECONDS (default 300), one after the
# other, on the stable toolchain (RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo fuzz
# needs) with the seed corpus from seed-corpus.sh. Logs go to fuzz/logs/<target>.log,
# crashes to fuzz/artifacts/<target>/.
#
# The binaries are run directly rather than through `cargo fuzz run`, which rebuilds
# before running: with src/ under edit, that would fuzz a moving target and spend the
# time compiling.
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(parse_message stream_framer digest_credentials uri_and_headers engine_input)
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
cd "$here"
./seed-corpus.sh >/dev/null
mkdir -p logs
cargo fuzz build >logs/build.log 2>&1 || {
    echo "build failed: see fuzz/logs/build.log"
    exit 2
}
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
status=0
for t in "${targets[@]}"; do
    echo "== $t (${secs}s)"
    mkdir -p "artifacts/$t"
    if "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" \
        -print_final_stats=1 "corpus/$t" >"logs/$t.log" 2>&1; then
        grep -E '^#[0-9]+.*(INITED|DONE)' "logs/$t.log"
    else
        status=1
        echo "$t FAILED: see fuzz/logs/$t.log and fuzz/artifacts/$t/"
        grep -E 'panicked|ERROR|SUMMARY' "logs/$t.log" | head -5
    fi
done
exit $status
