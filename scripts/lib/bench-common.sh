#!/usr/bin/env bash
# Shared helpers of the benchmark scripts (sourced by scripts/bench-*.sh, never run alone).
# The sourcing script declares `declare -A MAIN_PID` (server name -> pid) before use.

log() { echo "bench: $*" >&2; }

# --- prerequisites -----------------------------------------------------------------
need_pkg() { # command package
    if ! command -v "$1" >/dev/null 2>&1; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            log "installing $2"
            if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >&2; APT_UPDATED=1; fi
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
        else
            echo "missing $1 (Debian package $2)" >&2; exit 1
        fi
    fi
}

# A loopback port free for both UDP and TCP (bounded number of tries).
free_port() {
    local i p
    for i in $(seq 1 200); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        if ! ss -Hlnu "sport = :$p" | grep -q . && ! ss -Hlnt "sport = :$p" | grep -q .; then
            echo "$p"; return 0
        fi
    done
    echo "no free port found" >&2; return 1
}

# Sum of utime+stime clock ticks of the given pids (a pid that is gone counts 0).
cpu_ticks() {
    local total=0 pid stat rest
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        rest="${stat##*) }"   # drop "pid (comm) " whatever comm contains
        # shellcheck disable=SC2086
        set -- $rest
        total=$(( total + ${12} + ${13} ))
    done
    echo "$total"
}

now_ns() { date +%s%N; }

stop_servers() {
    local name pid i
    for name in "${!MAIN_PID[@]}"; do
        pid="${MAIN_PID[$name]}"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        unset "MAIN_PID[$name]"
    done
}

# a / b with two decimals, or "n/a" when either is missing or b is 0.
ratio_of() {
    if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != "0" ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "n/a"
    fi
}
