#!/usr/bin/env bash
# Media benchmark: concurrent relayed G.711 calls through sentralbord's media plane and, in
# the same run, through rtpengine (Debian package, userspace forwarding: no kernel module,
# --table=-1), with a trivial relay as the physical floor:
#
#   media_load (caller far ends, 127.0.0.2)  --RTP-->  relay  --RTP-->  media_load (callee
#   far ends, 127.0.0.3), and back: every call, both directions, 172-byte PCMU packets
#   (12-byte RTP header + 160 bytes) every 20 ms, the calls' start times spread over 20 ms.
#
# Relays (one at a time, a fresh process per step):
#   sentralbord  examples/media_relay_server.rs --mode sentralbord: sentralbord's
#                MediaDriver (one thread, mio, recvmmsg/sendmmsg), PCMU both legs,
#                telephone-event 101, RTP+RTCP ports per leg as the daemon opens them.
#   rtpengine    `rtpengine --table=-1` (userspace), calls set up over its ng control
#                protocol by scripts/media-bench/ng-calls.py (offer + answer, same SDP).
#   plain        examples/media_relay_server.rs --mode plain: the physical floor, a
#                one-thread epoll + recvmmsg + sendmmsg relay that forwards bytes unchanged.
#
# The load generator (examples/media_load.rs; BENCH_LOAD_THREADS threads, one socket per
# far end) counts per direction the packets sent in the measured window and those that
# came back through the relay (loss), and the one-way latency through the relay: kernel
# receive timestamp (SO_TIMESTAMPNS, taken when the relay's packet enters loopback) minus
# the send time carried in the packet, same clock. It reads the relay's CPU time
# (utime+stime from /proc/<pid>/stat, every thread) over the same window.
#
# Measures:
#   1. The highest number of concurrent calls a relay carries with under BENCH_MAX_LOSS_PCT
#      (0.1) % loss and p99 latency under BENCH_MAX_P99_US (1000) µs, with the load
#      offered (the generator sent at least 99% of the packets the schedule asks for in
#      the window; else it could not keep up and the step fails). Calls step through
#      BENCH_STEPS, the relays taking turns step by step (interleaved, so background load
#      hits all alike). A relay steps on past its first p99 failure while it keeps the
#      relaxed limits (loss < 0.1%, p99 < BENCH_RELAXED_P99_US, 20 ms: what a jitter buffer
#      absorbs; past it the relay is saturated and its queues grow), so its capacity is
#      found too; it drops out at its first relaxed failure. Loss alone is no capacity
#      test: a saturated relay's socket queues hold seconds of packets, so it loses none in
#      a 20 s window while its latency climbs to seconds. Then BENCH_BISECT bisection
#      steps between the last passing and the first failing count, for each of the two. Each step: a fresh relay process, BENCH_WARMUP s, then
#      BENCH_DURATION s measured. Before each step the script waits (at most
#      BENCH_QUIET_WAIT s) until the machine is quiet (all CPUs together under
#      BENCH_QUIET_BUSY_PCT % busy over 2 s); a step failing a limit still searched is
#      run again, up to BENCH_RETRY times, and passes if a rerun passes (other work on a
#      shared machine makes single failures). The time the hypervisor took our CPUs away
#      during each window (steal, /proc/stat) is reported next to it: every packet queued
#      during such a stall is late, whatever relay forwards it.
#   2. The relay's CPU per 1,000 calls: its CPU milliseconds per second of the window,
#      per 1,000 calls, at its highest passing count, and at the highest step every relay
#      passed (the like-for-like comparison).
#   3. The physical reference, packets per CPU-second: the generator floods
#      (BENCH_FLOOD_SESSIONS calls, two shared far-end sockets per side, sendmmsg batches
#      of 32, no pacing) so the relay finds full recvmmsg batches; packets delivered
#      through the relay per second of the relay's CPU time. For `plain` that is what one
#      core moves with batched system calls on this machine; the same figure for
#      sentralbord shows what its per-packet work adds. rtpengine is not flooded by
#      default: its overload guard stops reading a socket whose queue keeps more than 50
#      packets ("UDP receive queue exceeded 5 times: discarding packet"), so it delivers
#      nothing under a flood (BENCH_FLOOD_SERVERS can add it).
#
# On a 2-core machine the generator and the relay share the cores: the call count is the
# system's, the CPU figure the relay's own. The generator's CPU is logged per step.
#
# Usage:
#   scripts/bench-media.sh                           # all three relays
#   BENCH_SERVERS="sentralbord plain" scripts/bench-media.sh
# Environment: BENCH_SERVERS ("sentralbord rtpengine plain")
#   BENCH_STEPS ("100 200 300 400 500 600 700 800 1000 1200 1500 2000 3000"; each <= 4000)
#   BENCH_BISECT (1)
#   BENCH_WARMUP (5) BENCH_DURATION (20) BENCH_MAX_LOSS_PCT (0.1) BENCH_MAX_P99_US (1000)
#   BENCH_RELAXED_P99_US (20000)
#   BENCH_LOAD_THREADS (2) BENCH_TICK_US (500: a generator thread wakes at most this often;
#   a wakeup is costly on a VM, a longer tick makes burstier traffic)
#   BENCH_FLOOD_SESSIONS (16) BENCH_FLOOD_SECS (10; 0 skips the flood reference)
#   BENCH_FLOOD_SERVERS ("plain sentralbord") RTPENGINE_THREADS (number of cores)
#   BENCH_QUIET_BUSY_PCT (20) BENCH_QUIET_WAIT (300) BENCH_RETRY (1)
#   BENCH_NICE (0: the niceness of relay and generator alike; a negative value shields
#   the measurement from other work on a shared machine) BENCH_KEEP=1 keeps the work
#   directory.
# Output: markdown rows for BENCHMARKS.md and the exact command line. Exit status is
# non-zero if a relay could not be started or measured.
set -euo pipefail

case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo pipefail$/{/^set/!p}' "$0"; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

SERVERS_WANTED="${BENCH_SERVERS:-sentralbord rtpengine plain}"
STEPS="${BENCH_STEPS:-100 200 300 400 500 600 700 800 1000 1200 1500 2000 3000}"
BISECT="${BENCH_BISECT:-1}"
WARMUP="${BENCH_WARMUP:-5}"
DURATION="${BENCH_DURATION:-20}"
MAX_LOSS_PCT="${BENCH_MAX_LOSS_PCT:-0.1}"
MAX_P99_US="${BENCH_MAX_P99_US:-1000}"
RELAXED_P99_US="${BENCH_RELAXED_P99_US:-20000}"
LOAD_THREADS="${BENCH_LOAD_THREADS:-2}"
TICK_US="${BENCH_TICK_US:-500}"
FLOOD_SESSIONS="${BENCH_FLOOD_SESSIONS:-16}"
FLOOD_SECS="${BENCH_FLOOD_SECS:-10}"
FLOOD_SERVERS="${BENCH_FLOOD_SERVERS:-plain sentralbord}"
NICE="${BENCH_NICE:-0}"
QUIET_BUSY_PCT="${BENCH_QUIET_BUSY_PCT:-20}"
QUIET_WAIT="${BENCH_QUIET_WAIT:-300}"
RETRY="${BENCH_RETRY:-1}"
RTPENGINE_THREADS="${RTPENGINE_THREADS:-$(nproc)}"
# Addresses: relays bind on 127.0.0.1 in PORT_MIN..PORT_MAX (4 ports per call); far end i
# of the callers is 127.0.0.2:(FAR_BASE + 2i), of the callees 127.0.0.3:(FAR_BASE + 2i).
RELAY_IP=127.0.0.1
PORT_MIN=40000
PORT_MAX=59999
FAR_BASE=20000
CALLER_FAR="127.0.0.2:$FAR_BASE"
CALLEE_FAR="127.0.0.3:$FAR_BASE"
MAX_CALLS=4000 # (PORT_MAX - PORT_MIN + 1) / 4 = 5000 relay ports; far ends up to 28000

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMDLINE="BENCH_SERVERS=\"$SERVERS_WANTED\" BENCH_STEPS=\"$STEPS\" BENCH_BISECT=$BISECT BENCH_WARMUP=$WARMUP BENCH_DURATION=$DURATION BENCH_MAX_LOSS_PCT=$MAX_LOSS_PCT BENCH_MAX_P99_US=$MAX_P99_US BENCH_RELAXED_P99_US=$RELAXED_P99_US BENCH_LOAD_THREADS=$LOAD_THREADS BENCH_TICK_US=$TICK_US BENCH_FLOOD_SESSIONS=$FLOOD_SESSIONS BENCH_FLOOD_SECS=$FLOOD_SECS BENCH_FLOOD_SERVERS=\"$FLOOD_SERVERS\" BENCH_NICE=$NICE BENCH_QUIET_BUSY_PCT=$QUIET_BUSY_PCT BENCH_QUIET_WAIT=$QUIET_WAIT BENCH_RETRY=$RETRY RTPENGINE_THREADS=$RTPENGINE_THREADS scripts/bench-media.sh"
WORK="$(mktemp -d /tmp/sentralbord-bench-media.XXXXXX)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/examples"
declare -A MAIN_PID RES
SERVERS=()
LOAD_PID=""
STATUS=0

# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench-common.sh"

stop_load() {
    if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    LOAD_PID=""
}

cleanup() {
    stop_load || true
    stop_servers || true
    if [ "${BENCH_KEEP:-0}" = "1" ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
# A signal ends the run through the EXIT trap (relay and generator stopped).
trap 'exit 130' INT TERM

for s in $SERVERS_WANTED; do
    case "$s" in sentralbord|rtpengine|plain) SERVERS+=("$s") ;; *) echo "unknown server $s" >&2; exit 2 ;; esac
done
for n in $STEPS; do
    if ! [ "$n" -ge 1 ] 2>/dev/null || [ "$n" -gt "$MAX_CALLS" ]; then
        echo "BENCH_STEPS: each count is 1..$MAX_CALLS (got $n)" >&2; exit 2
    fi
done
# Four sockets per call in the relay, two in the generator.
if [ "$(ulimit -Hn)" != "unlimited" ] && [ "$(ulimit -Hn)" -lt $(( MAX_CALLS * 4 + 100 )) ]; then
    log "warning: hard open-files limit $(ulimit -Hn) < $(( MAX_CALLS * 4 + 100 )): large steps may fail"
fi

need_pkg ss iproute2
need_pkg python3 python3
if [[ " ${SERVERS[*]} " == *" rtpengine "* ]]; then
    need_pkg rtpengine rtpengine
fi

log "building the release examples (media_relay_server, media_load)"
(cd "$ROOT" && cargo build --release --example media_relay_server --example media_load >&2)

# The far-end ports must be free on 127.0.0.2/127.0.0.3 (a wildcard bind would take them).
if ss -Hlnu | awk -v lo="$FAR_BASE" -v hi=$(( FAR_BASE + 2 * MAX_CALLS )) '
        { n = split($4, a, ":"); p = a[n]; ip = substr($4, 1, length($4) - length(p) - 1) }
        p >= lo && p <= hi && (ip == "0.0.0.0" || ip == "*" || ip == "[::]" || ip ~ /^127\.0\.0\.[23]$/) { found = 1 }
        END { exit !found }'; then
    log "warning: some UDP ports in $FAR_BASE..$(( FAR_BASE + 2 * MAX_CALLS )) are taken on the far-end addresses; steps may fail to bind"
fi

json_field() { # file python-expression-on-d
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d})
print("n/a" if v is None else (("%.3f" % v) if isinstance(v, float) else v))' "$1" "$2" 2>/dev/null || echo "n/a"
}

# Busy percent of all CPUs together over 2 s (/proc/stat).
busy_pct() {
    local a b
    a=$(head -1 /proc/stat); sleep 2; b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); busy = 0; total = 0
        for (i = 2; i <= n && i <= 9; i++) { d = y[i] - x[i]; total += d; if (i != 5 && i != 6) busy += d }
        printf "%.0f", (total > 0) ? 100 * busy / total : 100 }'
}

# Waits (at most QUIET_WAIT s) until the machine is quiet; QUIET_NOTE says how it went.
wait_quiet() {
    local waited=0 busy
    busy=$(busy_pct)
    while [ "$busy" -ge "$QUIET_BUSY_PCT" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
        [ "$waited" = 0 ] && log "machine busy (${busy}% of all CPUs): waiting up to ${QUIET_WAIT}s for it to quiet down"
        sleep 3; waited=$(( waited + 5 ))
        busy=$(busy_pct)
    done
    QUIET_NOTE="${busy}% busy before"
    [ "$busy" -lt "$QUIET_BUSY_PCT" ] || { QUIET_NOTE="$QUIET_NOTE (not quiet after ${QUIET_WAIT}s)"; QUIET_BUSY_STEPS=$(( QUIET_BUSY_STEPS + 1 )); }
    return 0
}

# Waits (at most $2 s) for "# ready" in file $1 while pid $3 lives.
wait_ready() {
    local i
    for i in $(seq 1 $(( $2 * 10 ))); do
        grep -q '^# ready' "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_relay NAME CALLS LABEL [FAR_SOCKETS]: a fresh relay with CALLS calls set up;
# their relay addresses in $WORK/LABEL.relays.
start_relay() {
    local name="$1" calls="$2" label="$3" far="${4:-0}" pid port i
    local relays="$WORK/$label.relays"
    : > "$relays"
    case "$name" in
        sentralbord|plain)
            nice -n "$NICE" "$BIN/media_relay_server" --mode "$name" --sessions "$calls" \
                --caller-far "$CALLER_FAR" --callee-far "$CALLEE_FAR" --far-sockets "$far" \
                --local-ip "$RELAY_IP" --port-min "$PORT_MIN" --port-max "$PORT_MAX" \
                --max-seconds 600 > "$relays" 2> "$WORK/$label.server.err" &
            pid=$!
            MAIN_PID[$name]=$pid
            if ! wait_ready "$relays" 120 "$pid"; then
                log "$name did not set up $calls calls:"; tail -5 "$WORK/$label.server.err" >&2; return 1
            fi
            ;;
        rtpengine)
            port=$(free_port)
            # Userspace forwarding only (--table=-1); no config file, no Redis, warnings only.
            nice -n "$NICE" rtpengine --config-file=none --table=-1 --foreground --log-stderr --log-level=4 \
                --interface="$RELAY_IP" --listen-ng="$RELAY_IP:$port" \
                --port-min="$PORT_MIN" --port-max="$PORT_MAX" \
                --num-threads="$RTPENGINE_THREADS" --timeout=120 --delete-delay=0 \
                > "$WORK/$label.server.err" 2>&1 &
            pid=$!
            MAIN_PID[$name]=$pid
            for i in $(seq 1 100); do
                ss -Hlnu "sport = :$port" | grep -q . && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if ! kill -0 "$pid" 2>/dev/null; then
                log "rtpengine did not start:"; tail -20 "$WORK/$label.server.err" >&2; return 1
            fi
            if ! timeout 300 python3 "$ROOT/scripts/media-bench/ng-calls.py" --ng "$RELAY_IP:$port" \
                    --sessions "$calls" --caller-far "$CALLER_FAR" --callee-far "$CALLEE_FAR" \
                    --far-sockets "$far" > "$relays" 2> "$WORK/$label.ng.err"; then
                log "setting up $calls calls on rtpengine failed:"; tail -5 "$WORK/$label.ng.err" >&2; return 1
            fi
            ;;
    esac
    RELAY_PID=$pid
}

# run_load LABEL RELAY_PID [media_load args...] -> $WORK/LABEL.json
run_load() {
    local label="$1" pid="$2" rc
    shift 2
    set +e
    timeout $(( WARMUP + DURATION + FLOOD_SECS + 60 )) nice -n "$NICE" "$BIN/media_load" \
        --relays "$WORK/$label.relays" --caller-far "$CALLER_FAR" --callee-far "$CALLEE_FAR" \
        --threads "$LOAD_THREADS" --tick-us "$TICK_US" --cpu-pid "$pid" "$@" \
        > "$WORK/$label.json" 2> "$WORK/$label.load.err" &
    LOAD_PID=$!
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=""
    set -e
    if [ "$rc" != 0 ] || ! [ -s "$WORK/$label.json" ]; then
        log "$label: the load generator failed (rc $rc):"; tail -5 "$WORK/$label.load.err" >&2; return 1
    fi
}

# One step: NAME at CALLS concurrent calls, run again (up to RETRY times) while it fails
# the limits still searched for it (NEED_BOTH=1: the strict limits; 0: the relaxed ones).
# Sets STEP_LOSS_OK (relaxed limits kept) and STEP_BOTH_OK (strict limits kept) from its
# last run; returns 1 if it could not be measured.
step() {
    local name="$1" calls="$2" need_both="$3" attempt
    for attempt in $(seq 0 "$RETRY"); do
        step_once "$name" "$calls" "$attempt" || return 1
        [ "$STEP_BOTH_OK" = 1 ] && break
        [ "$STEP_LOSS_OK" = 1 ] && [ "$need_both" = 0 ] && break
    done
    RES[$name,$calls,both]=$STEP_BOTH_OK
    RES[$name,$calls,lossok]=$STEP_LOSS_OK
    return 0
}

step_once() {
    local name="$1" calls="$2" attempt="$3" label json loss p50 p99 pmax cpu per1k load_cpu late offered steal why
    label="$name-c$calls-$attempt"
    STEP_LOSS_OK=0; STEP_BOTH_OK=0
    wait_quiet
    if ! start_relay "$name" "$calls" "$label"; then
        stop_servers; STATUS=1; BENCH_KEEP=1; return 1
    fi
    if ! run_load "$label" "$RELAY_PID" --warmup "$WARMUP" --duration "$DURATION"; then
        stop_servers; STATUS=1; BENCH_KEEP=1; return 1
    fi
    stop_servers
    json="$WORK/$label.json"
    loss=$(json_field "$json" 'd["loss_pct"]')
    p50=$(json_field "$json" 'd["latency_us"]["p50"]')
    p99=$(json_field "$json" 'd["latency_us"]["p99"]')
    pmax=$(json_field "$json" 'd["latency_us"]["max"]')
    cpu=$(json_field "$json" 'd["server_cpu_ms_per_s"]')
    load_cpu=$(json_field "$json" 'd["load_cpu_ms_per_s"]')
    late=$(json_field "$json" 'd["late_sends_pct"]')
    offered=$(json_field "$json" 'd["offered_pct"]')
    steal=$(json_field "$json" 'round(d["machine_steal_ms_per_s"])')
    per1k=$(awk -v c="$cpu" -v n="$calls" 'BEGIN { if (c == "n/a") print "n/a"; else printf "%.0f", c * 1000 / n }')
    why=$(awk -v l="$loss" -v p="$p99" -v o="$offered" -v ml="$MAX_LOSS_PCT" -v mp="$MAX_P99_US" -v rp="$RELAXED_P99_US" 'BEGIN {
        w = ""
        if (l == "n/a" || l + 0 >= ml + 0) w = w " loss"
        if (o == "n/a" || o + 0 < 99) w = w " not-offered"
        if (p == "n/a" || p + 0 >= rp + 0) w = w " p99>relaxed"
        else if (p + 0 >= mp + 0) w = w " p99"
        print (w == "") ? "PASS" : "FAIL:" w }')
    case "$why" in
        PASS) STEP_LOSS_OK=1; STEP_BOTH_OK=1 ;;
        "FAIL: p99") STEP_LOSS_OK=1 ;;
    esac
    RES[$name,$calls,p50]=$p50; RES[$name,$calls,p99]=$p99; RES[$name,$calls,pmax]=$pmax
    RES[$name,$calls,per1k]=$per1k
    cpu=$(awk -v c="$cpu" 'BEGIN { if (c == "n/a") print c; else printf "%.0f", c }')
    load_cpu=$(awk -v c="$load_cpu" 'BEGIN { if (c == "n/a") print c; else printf "%.0f", c }')
    loss=$(awk -v c="$loss" 'BEGIN { if (c == "n/a") print c; else printf "%.3f", c }')
    offered=$(awk -v c="$offered" 'BEGIN { if (c == "n/a") print c; else printf "%.1f", c }')
    late=$(awk -v c="$late" 'BEGIN { if (c == "n/a") print c; else printf "%.1f", c }')
    DETAIL+=("| $calls | $name | $loss | $p50 / $p99 / $pmax | $cpu | $per1k | $load_cpu | $steal | $offered / $late | $why |")
    log "$label: loss ${loss}%, latency p50/p99/max ${p50}/${p99}/${pmax} us, relay CPU ${cpu} ms/s (${per1k} per 1k calls), generator CPU ${load_cpu} ms/s, steal ${steal} ms/s ($QUIET_NOTE), offered ${offered}%, sent >1 ms late ${late}% -> $why"
}

# Between a passing and a failing count: the middle, rounded down to 25 (0: none left).
middle() {
    local mid=$(( ($1 + $2) / 2 / 25 * 25 ))
    if [ "$mid" -gt "$1" ] && [ "$mid" -lt "$2" ]; then echo "$mid"; else echo 0; fi
}

# --- run -------------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RTPENGINE_VERSION=$(dpkg-query -W -f='${Version}' rtpengine-daemon 2>/dev/null || echo "?")
DETAIL=()
QUIET_NOTE=""
QUIET_BUSY_STEPS=0
# Per relay: highest passing / first failing count for the strict limits (B) and for the
# relaxed ones (L); 0 = none yet.
declare -A BGOOD BBAD LGOOD LBAD
for name in "${SERVERS[@]}"; do BGOOD[$name]=0; BBAD[$name]=0; LGOOD[$name]=0; LBAD[$name]=0; done

# Applies a step's result to NAME's frontiers.
record() { # name calls need_both
    if [ "$STEP_LOSS_OK" = 1 ]; then
        [ "$2" -gt "${LGOOD[$1]}" ] && LGOOD[$1]=$2
    elif [ "${LBAD[$1]}" = 0 ] || [ "$2" -lt "${LBAD[$1]}" ]; then
        LBAD[$1]=$2
    fi
    if [ "$3" = 1 ]; then
        if [ "$STEP_BOTH_OK" = 1 ]; then BGOOD[$1]=$2; else BBAD[$1]=$2; fi
    fi
}

# 1. ramp, interleaved: a relay steps on while it keeps the relaxed limits; the strict
# frontier is its first step failing p99 < MAX_P99_US (or loss).
for calls in $STEPS; do
    for name in "${SERVERS[@]}"; do
        [ "${LBAD[$name]}" = "0" ] || continue
        need_both=0; [ "${BBAD[$name]}" = 0 ] && need_both=1
        if ! step "$name" "$calls" "$need_both"; then LBAD[$name]=$calls; [ "$need_both" = 0 ] || BBAD[$name]=$calls; continue; fi
        record "$name" "$calls" "$need_both"
    done
done
for round in $(seq 1 "$BISECT"); do
    for name in "${SERVERS[@]}"; do
        if [ "${BBAD[$name]}" != 0 ] && mid=$(middle "${BGOOD[$name]}" "${BBAD[$name]}") && [ "$mid" != 0 ]; then
            step "$name" "$mid" 1 && record "$name" "$mid" 1
        fi
        if [ "${LBAD[$name]}" != 0 ] && mid=$(middle "${LGOOD[$name]}" "${LBAD[$name]}") && [ "$mid" != 0 ]; then
            step "$name" "$mid" 0 && record "$name" "$mid" 0
        fi
    done
    : "$round"
done
# The highest step every relay passed (like-for-like CPU comparison), strict and relaxed.
COMMON_BOTH=0
COMMON_LOSS=0
for calls in $STEPS; do
    both=1; lossok=1
    for name in "${SERVERS[@]}"; do
        [ "${RES[$name,$calls,both]:-0}" = 1 ] || both=0
        [ "${RES[$name,$calls,lossok]:-0}" = 1 ] || lossok=0
    done
    [ "$both" = 1 ] && COMMON_BOTH=$calls
    [ "$lossok" = 1 ] && COMMON_LOSS=$calls
done
for name in "${SERVERS[@]}"; do
    g=${BGOOD[$name]}
    RES[$name,calls]=$g
    RES[$name,per1k]=${RES[$name,$g,per1k]:-n/a}
    RES[$name,lat]="${RES[$name,$g,p50]:-n/a} / ${RES[$name,$g,p99]:-n/a} / ${RES[$name,$g,pmax]:-n/a}"
    RES[$name,loss_calls]=${LGOOD[$name]}
    RES[$name,loss_per1k]=${RES[$name,${LGOOD[$name]},per1k]:-n/a}
    RES[$name,common_both]=${RES[$name,$COMMON_BOTH,per1k]:-n/a}
    RES[$name,common_loss]=${RES[$name,$COMMON_LOSS,per1k]:-n/a}
    first() { if [ "$1" = 0 ]; then echo "none up to the last step"; else echo "$1"; fi; }
    RES[$name,first_bad]=$(first "${BBAD[$name]}")
    RES[$name,first_loss_bad]=$(first "${LBAD[$name]}")
    log "$name: strict limits kept up to ${BGOOD[$name]} calls (first failing: ${RES[$name,first_bad]}); relaxed limits up to ${LGOOD[$name]} (first failing: ${RES[$name,first_loss_bad]})"
done

# 2. physical reference: flood, packets per CPU-second
if [ "$FLOOD_SECS" -gt 0 ]; then
    for name in "${SERVERS[@]}"; do
        [[ " $FLOOD_SERVERS " == *" $name "* ]] || continue
        label="$name-flood"
        wait_quiet
        if start_relay "$name" "$FLOOD_SESSIONS" "$label" 2 \
            && run_load "$label" "$RELAY_PID" --flood --far-sockets 2 --warmup 2 --duration "$FLOOD_SECS"; then
            pps=$(json_field "$WORK/$label.json" 'round(d["received_pps"])')
            cpu=$(json_field "$WORK/$label.json" 'round(d["server_cpu_ms_per_s"])')
            RES[$name,flood_pps]=$(awk -v p="$pps" 'BEGIN { printf "%.0f", p }')
            RES[$name,flood_cpu]=$cpu
            RES[$name,flood]=$(awk -v p="$pps" -v c="$cpu" 'BEGIN { if (c + 0 > 0) printf "%.0f", p / (c / 1000); else print "n/a" }')
            log "flood $name: $pps packets/s delivered through the relay at ${cpu} ms/s relay CPU -> ${RES[$name,flood]} packets per CPU-second (generator CPU $(json_field "$WORK/$label.json" 'round(d["load_cpu_ms_per_s"])') ms/s)"
        else
            STATUS=1; BENCH_KEEP=1
        fi
        stop_servers
    done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------------
val() { echo "${RES[$1]:-n/a}"; }
ratio() { case "$1$2" in *n/a*) echo "n/a" ;; *) ratio_of "$1" "$2" ;; esac; }
DATE=$(date -u +%Y-%m-%d)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "?")
DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src 2>/dev/null | grep -q . && echo "+dirty" || true)
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "| date | commit | machine | sentralbord calls | rtpengine ${RTPENGINE_VERSION} calls | ratio | sentralbord CPU ms/s per 1k calls | rtpengine CPU ms/s per 1k calls | latency p50 / p99 / max µs, sentralbord | same, rtpengine | capacity (p99 < $(( RELAXED_P99_US / 1000 )) ms): sentralbord / rtpengine calls (ratio) | plain relay (floor): calls, capacity, CPU ms/s per 1k | packets per CPU-second (flood): plain / sentralbord |"
echo "|---|---|---|---:|---:|---:|---:|---:|---|---|---|---|---|"
echo "| $DATE | $COMMIT$DIRTY | $(nproc) cores, load avg $LOAD_BEFORE → $LOAD_AFTER | $(val sentralbord,calls) | $(val rtpengine,calls) | $(ratio "${RES[sentralbord,calls]:-}" "${RES[rtpengine,calls]:-}") | $(val sentralbord,per1k) | $(val rtpengine,per1k) | $(val sentralbord,lat) | $(val rtpengine,lat) | $(val sentralbord,loss_calls) / $(val rtpengine,loss_calls) ($(ratio "${RES[sentralbord,loss_calls]:-}" "${RES[rtpengine,loss_calls]:-}")) | $(val plain,calls), $(val plain,loss_calls), $(val plain,per1k) | $(val plain,flood) / $(val sentralbord,flood) |"
echo
echo "Calls: the highest count with loss < ${MAX_LOSS_PCT}% and p99 < ${MAX_P99_US} µs (first failing: sentralbord $(val sentralbord,first_bad), rtpengine $(val rtpengine,first_bad), plain $(val plain,first_bad)); CPU and latency at that count. Capacity (loss < ${MAX_LOSS_PCT}%, p99 < ${RELAXED_P99_US} µs): first failing sentralbord $(val sentralbord,first_loss_bad), rtpengine $(val rtpengine,first_loss_bad), plain $(val plain,first_loss_bad); CPU ms/s per 1k calls there: sentralbord $(val sentralbord,loss_per1k), rtpengine $(val rtpengine,loss_per1k), plain $(val plain,loss_per1k)."
echo "Like for like, CPU ms/s per 1k calls at $COMMON_BOTH calls (the highest step every relay passed with both limits): sentralbord $(val sentralbord,common_both), rtpengine $(val rtpengine,common_both), plain $(val plain,common_both) (sentralbord / rtpengine $(ratio "${RES[sentralbord,common_both]:-}" "${RES[rtpengine,common_both]:-}")); at $COMMON_LOSS calls (the highest step every relay passed the relaxed limits): sentralbord $(val sentralbord,common_loss), rtpengine $(val rtpengine,common_loss), plain $(val plain,common_loss) (sentralbord / rtpengine $(ratio "${RES[sentralbord,common_loss]:-}" "${RES[rtpengine,common_loss]:-}"))."
echo
echo "| calls | relay | loss % | latency p50 / p99 / max µs | relay CPU ms/s | per 1k calls | generator CPU ms/s | steal ms/s | offered % / sent >1 ms late % | result |"
echo "|---:|---|---:|---|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${DETAIL[@]}"
echo
echo "Command: \`$CMDLINE\`"
echo "Flow: media_load plays both far ends of every call (one socket per far end, $LOAD_THREADS threads, waking at most every $TICK_US µs), 172-byte PCMU packets every 20 ms each way, start times spread over 20 ms; ${WARMUP} s warm-up, ${DURATION} s measured, a fresh relay process per step. Pass: loss < ${MAX_LOSS_PCT}%, p99 < ${MAX_P99_US} µs (relaxed: < ${RELAXED_P99_US} µs; kernel receive timestamp minus send time: the relay's queueing and work plus two loopback hops), at least 99% of the scheduled packets offered. CPU: the relay process's utime+stime over the window."
echo "Flood: $FLOOD_SESSIONS calls, far ends sharing two sockets per side, sent back to back in sendmmsg batches of 32; packets delivered through the relay per second of relay CPU (relay CPU ms/s: plain $(val plain,flood_cpu), sentralbord $(val sentralbord,flood_cpu), rtpengine $(val rtpengine,flood_cpu); delivered pps: $(val plain,flood_pps) / $(val sentralbord,flood_pps) / $(val rtpengine,flood_pps))."
echo "Machine: $(nproc) cores ($CPU) shared by the generator and the relay; load average before $LOAD_BEFORE, after $LOAD_AFTER; $QUIET_BUSY_STEPS step(s) started on a machine still busy after ${QUIET_WAIT}s (\"steal\": time per second the hypervisor ran something else on our CPUs during a window, a stall for every packet queued meanwhile). rtpengine $RTPENGINE_VERSION: --table=-1 (no kernel forwarding), --num-threads=$RTPENGINE_THREADS; sentralbord and plain: one media thread. Niceness of relays and generator: $NICE."
exit $STATUS
