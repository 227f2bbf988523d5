#!/usr/bin/env bash
# Call benchmark: calls per second through sentralbord (a B2BUA) and, in the same run,
# through Kamailio configured as a transaction-stateful, record-routing proxy
# (scripts/kamailio/kamailio-proxy.cfg), on the same flow:
#
#   SIPp UAC (the carrier, from a trusted address)
#     -> sentralbord trunk listener -> number lookup -> the user's registered phone
#     -> kamailio: record_route + t_relay to a static address
#   -> SIPp UAS (the same process, on the same socket, for both: a phone registered for
#      every benchmark user with scripts/sipp/bench-register.xml from that socket)
#
# Every call: INVITE -> 180 -> (20 ms) 200 -> ACK -> held BENCH_HOLD_MS -> BYE -> 200
# (scripts/sipp/bench-call-uac.xml, bench-call-uas.xml), BENCH_USERS users/numbers cycled.
#
# Measures, in this order:
#   1. memory, on a fresh daemon (after the warm-up only): sentralbord's RSS (VmRSS) with
#      BENCH_RSS_CALLS (10,000) calls held at once (held long enough that all are up
#      together), minus its RSS before, per call. The RSS once those calls ended, and
#      again at the very end of the run, is printed too: memory not given back shows
#      there. Kamailio is not measured: without the dialog module it keeps no state per
#      call once the INVITE transaction ends, and its shared memory is preallocated (-m).
#   2. latency: at a fixed, moderate rate (BENCH_LAT_RATE) with SIPp message traces on
#      both sides, the time from the UAC sending an INVITE to the UAS receiving the INVITE
#      the server sent on (matched by the From user, +4798<call number>, which both servers
#      pass through; a B2BUA changes the Call-ID). Both SIPp processes write trace
#      timestamps with the same clock, so the difference is "INVITE in -> INVITE out" plus
#      two loopback hops and SIPp's own scheduling delay (an upper bound on the server's
#      share); p50, p99 and max are reported.
#   3. highest call rate with under 0.1% failed calls: open-loop SIPp (-r), each step
#      BENCH_STEP_SECS seconds of calls, rate multiplied by BENCH_RATE_FACTOR from
#      BENCH_START_RATE until a step fails (or BENCH_MAX_RATE), then BENCH_BISECT
#      bisection steps. A step fails when >= 0.1% of its calls fail, or when SIPp could
#      not keep the offered rate (run longer than 1.2x its nominal duration). The two
#      servers are measured interleaved, step by step, so background load hits both alike.
#      Also reported: the server's CPU time (all its processes) per 1000 calls at the
#      highest passing step. On a small machine the two SIPp processes share the cores
#      with the server: the rate is the system's, the CPU figure the server's own.
#
# Usage:
#   scripts/bench-calls.sh                    # both servers
#   scripts/bench-calls.sh --only sentralbord # or --only kamailio
# Environment: BENCH_USERS (100) BENCH_HOLD_MS (1000) BENCH_STEP_SECS (10)
#   BENCH_START_RATE (50) BENCH_RATE_FACTOR (1.5) BENCH_MAX_RATE (3000) BENCH_BISECT (2)
#   BENCH_LAT_RATE (50) BENCH_LAT_CALLS (1000) BENCH_RSS_CALLS (10000)
#   BENCH_RSS_RATE (250: calls/s while filling up to BENCH_RSS_CALLS held calls)
#   KAMAILIO_CHILDREN (number of cores) BENCH_KEEP=1 keeps the work directory.
# Output: markdown rows for BENCHMARKS.md and the exact command line. Exit status is
# non-zero if a server failed to start or a measurement could not be made.
set -euo pipefail

ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="${2:-}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo pipefail$/{/^set/!p}' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$ONLY" in ""|kamailio|sentralbord) ;; *) echo "--only takes kamailio or sentralbord" >&2; exit 2 ;; esac

USERS="${BENCH_USERS:-100}"
HOLD_MS="${BENCH_HOLD_MS:-1000}"
STEP_SECS="${BENCH_STEP_SECS:-10}"
START_RATE="${BENCH_START_RATE:-50}"
FACTOR="${BENCH_RATE_FACTOR:-1.5}"
MAX_RATE="${BENCH_MAX_RATE:-3000}"
BISECT="${BENCH_BISECT:-2}"
LAT_RATE="${BENCH_LAT_RATE:-50}"
LAT_CALLS="${BENCH_LAT_CALLS:-1000}"
RSS_CALLS="${BENCH_RSS_CALLS:-10000}"
RSS_RATE="${BENCH_RSS_RATE:-250}"
KAM_CHILDREN="${KAMAILIO_CHILDREN:-$(nproc)}"
REALM="bench.test"
TENANT="bench"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMDLINE="BENCH_USERS=$USERS BENCH_HOLD_MS=$HOLD_MS BENCH_STEP_SECS=$STEP_SECS BENCH_START_RATE=$START_RATE BENCH_RATE_FACTOR=$FACTOR BENCH_MAX_RATE=$MAX_RATE BENCH_BISECT=$BISECT BENCH_LAT_RATE=$LAT_RATE BENCH_LAT_CALLS=$LAT_CALLS BENCH_RSS_CALLS=$RSS_CALLS BENCH_RSS_RATE=$RSS_RATE KAMAILIO_CHILDREN=$KAM_CHILDREN scripts/bench-calls.sh${ONLY:+ --only $ONLY}"
WORK="$(mktemp -d /tmp/sentralbord-bench-calls.XXXXXX)"
CLK_TCK="$(getconf CLK_TCK)"
declare -A PORT MAIN_PID PIDS RES TOTAL_CALLS
SERVERS=()
UAS_PID=""
UAS_PORT=""
STATUS=0

# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench-common.sh"

cleanup() {
    stop_uas || true
    stop_servers || true
    if [ "${BENCH_KEEP:-0}" = "1" ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
# A signal ends the run through the EXIT trap (servers and the UAS stopped).
trap 'exit 130' INT TERM

need_pkg sipp sip-tester
need_pkg ss iproute2
if [ "$ONLY" != "sentralbord" ]; then
    need_pkg kamailio kamailio
fi

# --- helpers -------------------------------------------------------------------------


# Waits (at most 10 s) until something listens on UDP port $1.
wait_udp() {
    local i
    for i in $(seq 1 100); do
        ss -Hlnu "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    return 1
}


rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }


# The answering phone: bench-call-uas.xml on UAS_PORT (the socket the users registered
# from). $1 = label; $2 = "trace" to write a message trace (latency runs).
start_uas() {
    local label="$1" trace="${2:-}" i
    local -a extra=()
    if [ "$trace" = "trace" ]; then
        extra=(-trace_msg -message_file "$WORK/uas-$label.msg")
    fi
    sipp -sf "$ROOT/scripts/sipp/bench-call-uas.xml" -t u1 -i 127.0.0.1 -p "$UAS_PORT" \
        -recv_timeout 600000 -max_recv_loops 10000 -max_sched_loops 10000 \
        -nostdin -trace_err -error_file "$WORK/uas-$label.err" "${extra[@]}" \
        > "$WORK/uas-$label.out" 2>&1 &
    UAS_PID=$!
    # The UAS binds the port the previous one just released.
    for i in $(seq 1 100); do
        if ss -Hlnup "sport = :$UAS_PORT" 2>/dev/null | grep -q "pid=$UAS_PID,"; then return 0; fi
        kill -0 "$UAS_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "the UAS did not start:"; tail -5 "$WORK/uas-$label.out" >&2; return 1
}

stop_uas() {
    local i
    if [ -n "$UAS_PID" ] && kill -0 "$UAS_PID" 2>/dev/null; then
        kill -TERM "$UAS_PID" 2>/dev/null || true
        for i in $(seq 1 50); do kill -0 "$UAS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$UAS_PID" 2>/dev/null || true
        wait "$UAS_PID" 2>/dev/null || true
    fi
    UAS_PID=""
}

# run_calls SERVER LABEL RATE COUNT HOLD_MS [extra sipp args...]
#   -> RUN_OK RUN_FAILED RUN_NS RUN_TICKS RUN_RC RUN_SIPP_CPU RUN_SUSTAINED (1/0)
run_calls() {
    local server="$1" label="$2" rate="$3" count="$4" hold="$5" port out t0 t1 c0 c1 rc nominal_ms
    shift 5
    local -a pids
    port="${PORT[$server]}"
    read -r -a pids <<< "${PIDS[$server]}"
    out="$WORK/uac-$label.out"
    nominal_ms=$(( count * 1000 / rate + hold ))
    c0=$(cpu_ticks "${pids[@]}")
    t0=$(now_ns)
    set +e
    { TIMEFORMAT='%U %S'; time timeout $(( nominal_ms / 1000 * 2 + 120 )) sipp "127.0.0.1:$port" \
        -sf "$ROOT/scripts/sipp/bench-call-uac.xml" -inf "$WORK/numbers.csv" -t u1 -i 127.0.0.1 \
        -r "$rate" -rp 1000 -m "$count" -l $(( count + 10 )) -d "$hold" \
        -max_recv_loops 10000 -max_sched_loops 10000 \
        -timeout $(( nominal_ms / 1000 + 60 ))s -recv_timeout 10000 \
        -nostdin -trace_err -error_file "$WORK/uac-$label.err" "$@" \
        > "$out" 2>&1; } 2> "$WORK/uac-$label.time"
    rc=$?
    set -e
    t1=$(now_ns)
    c1=$(cpu_ticks "${pids[@]}")
    RUN_NS=$(( t1 - t0 ))
    RUN_TICKS=$(( c1 - c0 ))
    RUN_RC=$rc
    RUN_OK=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$out")
    RUN_FAILED=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$out")
    TOTAL_CALLS[$server]=$(( ${TOTAL_CALLS[$server]:-0} + RUN_OK + RUN_FAILED ))
    RUN_SIPP_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/uac-$label.time" 2>/dev/null || echo "?")
    # SIPp could not offer the rate (or the server slowed every call down) when the run
    # took much longer than its nominal duration (+2 s for setup and the last BYE).
    RUN_SUSTAINED=$(awk -v ns="$RUN_NS" -v nom="$nominal_ms" 'BEGIN { print (ns / 1e6 <= nom * 1.2 + 2000) ? 1 : 0 }')
}

# One ramp step for SERVER at RATE: returns 0 when it passes.
step() {
    local name="$1" rate="$2" label count ok
    count=$(( rate * STEP_SECS ))
    label="$name-r$rate-$(( ${RES[$name,steps]:-0} + 1 ))"
    RES[$name,steps]=$(( ${RES[$name,steps]:-0} + 1 ))
    run_calls "$name" "$label" "$rate" "$count" "$HOLD_MS"
    # Passes: under 0.1% failed (and every call accounted for), rate sustained.
    ok=$(awk -v ok="$RUN_OK" -v f="$RUN_FAILED" -v n="$count" -v s="$RUN_SUSTAINED" \
        'BEGIN { print (f * 1000 < n && ok * 1000 > n * 999 && s == 1) ? 1 : 0 }')
    log "$label: $rate calls/s x ${STEP_SECS}s: $RUN_OK ok, $RUN_FAILED failed of $count, $(awk -v ns="$RUN_NS" 'BEGIN { printf "%.1f", ns / 1e9 }') s (sustained=$RUN_SUSTAINED), server CPU $(awk -v t="$RUN_TICKS" -v hz="$CLK_TCK" -v n="$RUN_OK" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }') ms/1000 calls, sipp CPU ${RUN_SIPP_CPU} s -> $([ "$ok" = 1 ] && echo PASS || echo FAIL)"
    if [ "$ok" = 1 ]; then
        RES[$name,cpu]=$(awk -v t="$RUN_TICKS" -v hz="$CLK_TCK" -v n="$RUN_OK" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }')
        return 0
    fi
    # Let the server drain what the overload left (retransmissions, hanging calls).
    sleep $(( HOLD_MS / 1000 + 5 ))
    return 1
}

# Latency of SERVER: LAT_CALLS calls at LAT_RATE with message traces on both sides.
latency() {
    local name="$1"
    stop_uas
    start_uas "lat-$name" trace || return 1
    run_calls "$name" "lat-$name" "$LAT_RATE" "$LAT_CALLS" "$HOLD_MS" \
        -trace_msg -message_file "$WORK/uac-lat-$name.msg"
    stop_uas
    if [ "$RUN_OK" != "$LAT_CALLS" ]; then
        log "latency run of $name: only $RUN_OK of $LAT_CALLS calls succeeded"
    fi
    # First INVITE sent (UAC) / received (UAS) per From user, as seconds of the day.
    invites() { # file direction(sent|received)
        awk -v dir="$2" '
            /^----------------------------------------------- / {
                split($3, t, ":"); ts = t[1] * 3600 + t[2] * 60 + t[3]; state = 1; next }
            state == 1 { state = ($0 ~ ("message " dir)) ? 2 : 0; next }
            state == 2 && /^$/ { next }
            state == 2 { state = ($1 == "INVITE") ? 3 : 0; next }
            state == 3 && /^From:/ {
                if (match($0, /sip:[^@]*@/)) {
                    u = substr($0, RSTART + 4, RLENGTH - 5)
                    if (!(u in seen)) { seen[u] = 1; printf "%s %.6f\n", u, ts }
                }
                state = 0 }
            state == 3 && /^$/ { state = 0 }' "$1"
    }
    invites "$WORK/uac-lat-$name.msg" sent > "$WORK/lat-$name.uac"
    invites "$WORK/uas-lat-$name.msg" received > "$WORK/lat-$name.uas"
    awk 'NR == FNR { sent[$1] = $2; next } ($1 in sent) { printf "%.0f\n", ($2 - sent[$1]) * 1e6 }' \
        "$WORK/lat-$name.uac" "$WORK/lat-$name.uas" | sort -n > "$WORK/lat-$name.us"
    local n
    n=$(wc -l < "$WORK/lat-$name.us")
    if [ "$n" -eq 0 ]; then
        log "latency of $name: no INVITE matched across the traces"; return 1
    fi
    pct() { sed -n "$(( ($1 * n + 99) / 100 ))p" "$WORK/lat-$name.us"; }
    RES[$name,lat_n]=$n
    RES[$name,p50]=$(pct 50)
    RES[$name,p99]=$(pct 99)
    RES[$name,pmax]=$(tail -1 "$WORK/lat-$name.us")
    log "latency $name: $n INVITEs matched, INVITE in->out p50 ${RES[$name,p50]} us, p99 ${RES[$name,p99]} us, max ${RES[$name,pmax]} us"
    start_uas "main-$name"
}

# --- provisioning files --------------------------------------------------------------
# Users u00001.. with password pw-<user>; user i owns +4721<6 digits of i> (a tenant
# number of kind user and the user's mobile: a trunk call to it rings the user's phones).
printf 'SEQUENTIAL\n' > "$WORK/users.csv"
printf 'SEQUENTIAL\n' > "$WORK/numbers.csv"
for i in $(seq 1 "$USERS"); do
    printf 'u%05d;%s;pw-u%05d\n' "$i" "$REALM" "$i" >> "$WORK/users.csv"
    printf '+4721%06d\n' "$i" >> "$WORK/numbers.csv"
done

# --- sentralbord -----------------------------------------------------------------------
start_sentralbord() {
    local bin="$ROOT/target/release/sentralbord" i u pid phones trunk
    log "building sentralbord (release)"
    if ! (cd "$ROOT" && cargo build --release --quiet --bin sentralbord) >&2; then
        log "cargo build --release failed"; return 1
    fi
    export SENTRALBORD_STORE__PATH="$WORK/sentralbord.db"
    export SENTRALBORD_PROFILES__DIR="$WORK/profiles"
    mkdir -p "$WORK/profiles"
    # MD5 only: SIPp 3.6 computes only MD5 digests (tests/common/mod.rs
    # MD5_FIRST_PROFILE_LINES says why).
    cat > "$WORK/profiles/phones.toml" <<EOF
name = "phones"
kind = "phones"
realm = "$REALM"
digest_algorithms = ["MD5"]
# Signalling only, like the proxy it is compared with: the media relay has its own
# benchmark (and 10,000 held calls would need 40,000 RTP sockets).
anchor_media = false

[[listen]]
address = "127.0.0.1:0"
transports = ["udp"]
EOF
    cat > "$WORK/profiles/trunk.toml" <<EOF
name = "trunk"
kind = "trunk"
trusted = ["127.0.0.1/32"]
anchor_media = false

[numbering]
country_code = "47"
national_prefix = ""
international_prefix = "00"

[[listen]]
address = "127.0.0.1:0"
transports = ["udp"]
EOF
    "$bin" tenant add "$TENANT" >/dev/null || { log "tenant add failed"; return 1; }
    for i in $(seq 1 "$USERS"); do
        u=$(printf 'u%05d' "$i")
        if ! printf '%s\n' "pw-$u" | "$bin" user add --tenant "$TENANT" --name "Bench User $i" \
            --extension "$(( 10000 + i ))" --mobile "$(printf '+4721%06d' "$i")" \
            --username "$u" --realm "$REALM" --password-stdin >/dev/null \
            || ! "$bin" tenant number add "$TENANT" "$(printf '+4721%06d' "$i")" --kind user >/dev/null; then
            log "provisioning $u failed"; return 1
        fi
    done
    log "provisioned $USERS users with numbers"
    "$bin" run > "$WORK/sentralbord.out" 2> "$WORK/sentralbord.log" &
    pid=$!
    MAIN_PID[sentralbord]=$pid
    for i in $(seq 1 200); do
        grep -qx 'ready' "$WORK/sentralbord.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -qx 'ready' "$WORK/sentralbord.out" 2>/dev/null; then
        log "sentralbord did not become ready:"; tail -20 "$WORK/sentralbord.log" >&2; return 1
    fi
    port_of() { awk -v p="$1" 'tolower($0) ~ ("^listening profile=" p " transport=udp addr=127\\.0\\.0\\.1:[0-9]+$") {
            n = split($0, parts, ":"); print parts[n]; exit }' "$WORK/sentralbord.out"; }
    phones=$(port_of phones)
    trunk=$(port_of trunk)
    if [ -z "$phones" ] || [ -z "$trunk" ]; then
        log "no phones/trunk UDP listener in sentralbord's output"; return 1
    fi
    log "sentralbord: phones 127.0.0.1:$phones, trunk 127.0.0.1:$trunk"
    # Register every user from the UAS socket (the daemon rings the flow a binding
    # came from), then the UAS answers there.
    sipp "127.0.0.1:$phones" -sf "$ROOT/scripts/sipp/bench-register.xml" -inf "$WORK/users.csv" \
        -t u1 -i 127.0.0.1 -p "$UAS_PORT" -auth_uri "$REALM" -m "$USERS" -r 200 \
        -timeout 60s -timeout_error -nostdin -trace_err -error_file "$WORK/register.err" \
        > "$WORK/register.out" 2>&1 || { log "registering the users failed (see $WORK/register.out)"; return 1; }
    log "registered $USERS phones from 127.0.0.1:$UAS_PORT"
    PIDS[sentralbord]="$pid"
    PORT[sentralbord]=$trunk
    SERVERS+=(sentralbord)
}

# --- kamailio ------------------------------------------------------------------------
start_kamailio() {
    local port i pid
    mkdir -p "$WORK/kamailio-run"
    port=$(free_port)
    log "kamailio $(kamailio -v 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1:$port, children=$KAM_CHILDREN"
    kamailio -f "$ROOT/scripts/kamailio/kamailio-proxy.cfg" \
        -A "BENCH_UAS_URI=\"sip:127.0.0.1:$UAS_PORT\"" -A "KAMAILIO_CHILDREN=$KAM_CHILDREN" \
        -l "udp:127.0.0.1:$port" \
        -P "$WORK/kamailio-run/kamailio.pid" -Y "$WORK/kamailio-run" -w "$WORK/kamailio-run" \
        -m 512 -M 16 > "$WORK/kamailio.log" 2>&1
    for i in $(seq 1 100); do
        [ -s "$WORK/kamailio-run/kamailio.pid" ] && ss -Hlnu "sport = :$port" | grep -q . && break
        sleep 0.1
    done
    pid=$(cat "$WORK/kamailio-run/kamailio.pid" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        log "kamailio did not start:"; tail -20 "$WORK/kamailio.log" >&2; return 1
    fi
    MAIN_PID[kamailio]=$pid
    PIDS[kamailio]="$pid $(pgrep -P "$pid" | tr '\n' ' ' || true)"
    PORT[kamailio]=$port
    KAM_VERSION=$(kamailio -v 2>/dev/null | head -1 | awk '{print $3}')
    SERVERS+=(kamailio)
}

# --- run -------------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
UAS_PORT=$(free_port)
KAM_VERSION="-"
if [ "$ONLY" != "kamailio" ]; then start_sentralbord || { STATUS=1; BENCH_KEEP=1; }; fi
if [ "$ONLY" != "sentralbord" ]; then start_kamailio || { STATUS=1; BENCH_KEEP=1; }; fi
[ "${#SERVERS[@]}" -gt 0 ] || { log "no server started"; exit 1; }
start_uas main

# Warm-up, and a check that the flow works at all.
for name in "${SERVERS[@]}"; do
    run_calls "$name" "warmup-$name" "$START_RATE" "$START_RATE" "$HOLD_MS"
    log "warm-up $name: $RUN_OK ok, $RUN_FAILED failed of $START_RATE"
    if [ "$RUN_OK" = "0" ]; then
        log "$name completes no call: see $WORK/uac-warmup-$name.*"; STATUS=1; BENCH_KEEP=1
    fi
done

# 1. memory at RSS_CALLS held calls (sentralbord), on a fresh daemon (only the warm-up
# before it), then the RSS once they all ended.
if [ -n "${PORT[sentralbord]:-}" ]; then
    ramp_s=$(( (RSS_CALLS + RSS_RATE - 1) / RSS_RATE ))
    rss_hold_ms=$(( (ramp_s + 20) * 1000 ))
    pid="${MAIN_PID[sentralbord]}"
    sleep 3
    RSS_BASE=$(rss_kib "$pid")
    log "memory: $RSS_CALLS calls at $RSS_RATE/s held ${rss_hold_ms} ms; RSS before: $RSS_BASE KiB"
    ( run_calls sentralbord rss "$RSS_RATE" "$RSS_CALLS" "$rss_hold_ms"
      echo "$RUN_OK $RUN_FAILED" > "$WORK/rss.result" ) &
    rss_job=$!
    # Every call is up from the ramp's end until the first BYE (hold after the first
    # call started): sample in the middle of that window.
    sleep $(( ramp_s + 8 ))
    RSS_PEAK=$(rss_kib "$pid")
    log "memory: RSS with all $RSS_CALLS calls up: $RSS_PEAK KiB"
    wait "$rss_job" || true
    read -r rss_ok rss_failed < "$WORK/rss.result" || { rss_ok=0; rss_failed=0; }
    # run_calls ran in a subshell: count its calls here.
    TOTAL_CALLS[sentralbord]=$(( ${TOTAL_CALLS[sentralbord]:-0} + rss_ok + rss_failed ))
    if [ "$rss_ok" != "$RSS_CALLS" ]; then
        log "memory run: only $rss_ok of $RSS_CALLS calls succeeded ($rss_failed failed): the RSS figure is not of $RSS_CALLS held calls"
        RES[rss_note]=" (only $rss_ok of $RSS_CALLS calls succeeded)"
        STATUS=1
    fi
    sleep 5
    RES[rss_after_held]=$(rss_kib "$pid")
    log "memory: RSS once they all ended: ${RES[rss_after_held]} KiB"
    RES[rss_base]=$RSS_BASE
    RES[rss_peak]=$RSS_PEAK
    RES[rss_per_call]=$(awk -v a="$RSS_PEAK" -v b="$RSS_BASE" -v n="$RSS_CALLS" 'BEGIN { printf "%.2f", (a - b) / n }')
fi

# 2. latency
for name in "${SERVERS[@]}"; do
    latency "$name" || { STATUS=1; BENCH_KEEP=1; start_uas "main-$name-retry" || true; }
done

# 3. ramp, interleaved
declare -A GOOD BAD
for name in "${SERVERS[@]}"; do GOOD[$name]=0; BAD[$name]=0; done
rate=$START_RATE
while [ "$rate" -le "$MAX_RATE" ]; do
    alive=0
    for name in "${SERVERS[@]}"; do
        [ "${BAD[$name]}" = "0" ] || continue
        alive=1
        if step "$name" "$rate"; then GOOD[$name]=$rate; else BAD[$name]=$rate; fi
    done
    [ "$alive" = 1 ] || break
    rate=$(awk -v r="$rate" -v f="$FACTOR" 'BEGIN { n = int(r * f + 0.5); print (n > r) ? n : r + 1 }')
done
for name in "${SERVERS[@]}"; do
    for i in $(seq 1 "$BISECT"); do
        [ "${BAD[$name]}" != "0" ] || break
        mid=$(( (GOOD[$name] + BAD[$name]) / 2 ))
        [ "$mid" -gt "${GOOD[$name]}" ] || break
        if step "$name" "$mid"; then GOOD[$name]=$mid; else BAD[$name]=$mid; fi
    done
    RES[$name,rate]=${GOOD[$name]}
    if [ "${BAD[$name]}" = "0" ]; then
        RES[$name,first_bad]="none up to $MAX_RATE/s (BENCH_MAX_RATE)"
    else
        RES[$name,first_bad]="${BAD[$name]}/s"
    fi
    log "$name: highest rate with < 0.1% failed calls: ${GOOD[$name]} calls/s (first failing: ${RES[$name,first_bad]})"
done

# Memory once every call of the whole run has ended (a leak shows here).
if [ -n "${MAIN_PID[sentralbord]:-}" ]; then
    sleep 5
    RES[rss_end]=$(rss_kib "${MAIN_PID[sentralbord]}")
    log "memory: RSS after the whole run (${TOTAL_CALLS[sentralbord]:-?} calls, all ended): ${RES[rss_end]} KiB"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
stop_uas
stop_servers

# --- report ----------------------------------------------------------------------------
val() { echo "${RES[$1]:-n/a}"; }
ratio() { ratio_of "${RES[sentralbord,rate]:-}" "${RES[kamailio,rate]:-}"; }
ms() { [ -n "${RES[$1]:-}" ] && awk -v u="${RES[$1]}" 'BEGIN { printf "%.2f", u / 1000 }' || echo "n/a"; }
DATE=$(date -u +%Y-%m-%d)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "?")
DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src 2>/dev/null | grep -q . && echo "+dirty" || true)
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "| date | commit | sentralbord calls/s | kamailio ${KAM_VERSION} calls/s | ratio | sentralbord CPU ms/1k calls | kamailio CPU ms/1k calls | INVITE in->out p50 / p99 / max ms sentralbord | same, kamailio | sentralbord RSS at ${RSS_CALLS} held calls |"
echo "|---|---|---:|---:|---:|---:|---:|---|---|---|"
echo "| $DATE | $COMMIT$DIRTY | $(val sentralbord,rate) | $(val kamailio,rate) | $(ratio) | $(val sentralbord,cpu) | $(val kamailio,cpu) | $(ms sentralbord,p50) / $(ms sentralbord,p99) / $(ms sentralbord,pmax) | $(ms kamailio,p50) / $(ms kamailio,p99) / $(ms kamailio,pmax) | $(( ${RES[rss_peak]:-0} / 1024 )) MiB (idle $(( ${RES[rss_base]:-0} / 1024 )) MiB, $(val rss_per_call) KiB/call)$(val rss_note | sed 's/^n\/a$//') |"
echo
echo "Command: \`$CMDLINE\`"
echo "Flow: SIPp UAC (carrier, trusted 127.0.0.1) -> server -> SIPp UAS (registered phone of each of $USERS users), UDP, loopback; each call INVITE/180/200/ACK, held $HOLD_MS ms, BYE/200. Rate: open loop (-r), steps of ${STEP_SECS} s from $START_RATE/s x$FACTOR then $BISECT bisections; a step passes with < 0.1% failed calls and the rate sustained. First failing rate: sentralbord $(val sentralbord,first_bad), kamailio $(val kamailio,first_bad)."
echo "Latency: $LAT_CALLS calls at $LAT_RATE/s with SIPp message traces on both sides; UAC 'INVITE sent' to UAS 'INVITE received' timestamps (same clock), matched by From user: server time plus two loopback hops and SIPp scheduling (an upper bound). Matched INVITEs: sentralbord $(val sentralbord,lat_n), kamailio $(val kamailio,lat_n)."
echo "Memory: VmRSS of the sentralbord process sampled once all $RSS_CALLS calls (sent at $RSS_RATE/s, after the warm-up only) were up, minus VmRSS before them. RSS once they had ended: $(( ${RES[rss_after_held]:-0} / 1024 )) MiB; at the end of the run, after ${TOTAL_CALLS[sentralbord]:-n/a} calls, all ended: $(( ${RES[rss_end]:-0} / 1024 )) MiB. Kamailio (no dialog module) keeps no per-call state after the INVITE transaction; not measured."
echo "Machine: $(nproc) cores ($CPU), load average before $LOAD_BEFORE, after $LOAD_AFTER (other builds were running: treat as indicative); kamailio children=$KAM_CHILDREN, -m 512; sentralbord: release build, one process."
exit $STATUS
