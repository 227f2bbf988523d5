#!/usr/bin/env bash
# Conference benchmark (issue 7): rooms of BENCH_ROOM_SIZE (10) participants, BENCH_TALKERS
# (3) of them talking, mixed by sentralbord's real media driver over real UDP sockets;
# participants are added step by step until more than BENCH_MAX_LATE_PCT (0.1) % of the
# mix frames they receive are late or missing.
#
#   conference_load_net (phones, 127.0.0.4)  --RTP-->  conference_server (127.0.0.1)
#                                            <--mix--
#
# - examples/conference_server.rs: sentralbord's MediaDriver (one media thread, mio,
#   recvmmsg/sendmmsg), one media session per participant opened through MediaCommands as
#   the engine does (Open, Update of the caller leg: the phone's address, PCMU,
#   telephone-event 101; JoinConference into room i / ROOM_SIZE). A fresh process per step.
# - examples/conference_load_net.rs: one UDP socket per participant (BENCH_LOAD_THREADS
#   threads), a 172-byte PCMU packet every 20 ms each, start times spread over 20 ms; the
#   first TALKERS of each room send a tone of their own, the others packets of silence (as
#   phones without VAD do). Each participant's received mix is laid on its 20 ms grid (by
#   RTP timestamp, phase from the earliest arrival before the window): a frame is late if it
#   arrived more than BENCH_LATE_MS (20) ms after its slot (kernel receive timestamps,
#   i.e. when the server sent it), or missing. Once a second per participant the mix is
#   checked by spectrum: it holds the other talkers' tones and never the participant's own.
#
# Measured per step, over the BENCH_DURATION s window after BENCH_WARMUP s:
#   late or missing frames (%); frames that came more than a frame plus the limit after the
#   one before them (one per stall of the media thread); lateness p50/p99/max; mix frames
#   received per second and participant (under 50: the streams fall behind real time);
#   the media process's CPU
#   (utime+stime from /proc, every thread) per second, per participant per 20 ms and as %
#   of one core (the media driver is one thread: one core is its ceiling); the generator's
#   own CPU (it shares the 2 cores: say so) and what else ran on the machine (/proc/stat
#   busy minus both) and steal; the packet rate the step generates (2 x 50 packets/s per
#   participant: 50 in, 50 out).
# For comparison, in the same run:
#   - the sans-IO cost: `conference_load --rooms BENCH_SANSIO_ROOMS` (no sockets);
#   - the packets-per-second ceiling of the media benchmark (scripts/bench-media.sh's flood:
#     media_relay_server + media_load --flood, 16 calls in sendmmsg batches of 32), for the
#     trivial relay (the physical limit of this machine) and for sentralbord's relay:
#     packets delivered (received and sent on) per second of relay CPU.
#
# Pinning (BENCH_PIN=1, the default on 2 or more cores): the server runs on CPU 0, the
# generator on the others (taskset), so the generator's threads never preempt the media
# thread. Unpinned, on 2 cores, the scheduler lets them (the media thread's ticks then come
# late by 20 ms or more now and then): steps then fail at a lower count than the media
# thread's CPU allows.
#
# A failing step is run again (BENCH_RETRY times) and passes if a rerun passes: other work
# on this shared machine makes single stalls of the media thread, and although the relay
# is on time again right after one (it sends the frames it missed at once, or skips them
# beyond 100 ms), one stall of 40 ms or more in the window makes every participant 2 of
# its 750 frames late (0.27 %, over the 0.1 % limit). The ramp stops after the first step that still fails; then
# BENCH_BISECT steps halve the gap between the last passing and the first failing count
# (rounded to 50). Steps that could not end within the time budget are not started.
# Before each step the script waits (at most BENCH_QUIET_WAIT s) for the machine to be quiet
# (under BENCH_QUIET_BUSY_PCT % busy).
#
# Usage:
#   scripts/bench-conference.sh
#   BENCH_STEPS="100 500 1000" BENCH_DURATION=10 scripts/bench-conference.sh
# Environment: BENCH_STEPS ("100 200 500 1000 1500 2000 2500 3000"; each a multiple of the
#   room size, at most 4000) BENCH_ROOM_SIZE (10) BENCH_TALKERS (3) BENCH_WARMUP (3)
#   BENCH_DURATION (15) BENCH_LATE_MS (20) BENCH_MAX_LATE_PCT (0.1) BENCH_RETRY (2)
#   BENCH_BISECT (2) BENCH_PIN (1; 0: no pinning) BENCH_SERVER_NICE (BENCH_NICE: the server's niceness alone)
#   BENCH_LOAD_THREADS (2) BENCH_TICK_US (500) BENCH_SANSIO_ROOMS (200; 0 skips)
#   BENCH_FLOOD_SECS (6; 0 skips) BENCH_FLOOD_SERVERS ("plain sentralbord")
#   BENCH_INBAND_DTMF (0; 1: no telephone-event, the relay searches the audio for DTMF)
#   BENCH_QUIET_BUSY_PCT (25) BENCH_QUIET_WAIT (20) BENCH_BUDGET (320: seconds for
#   everything after the build; no step starts that could not end within it)
#   BENCH_NICE (0: niceness of server and generator alike) BENCH_KEEP=1 keeps the work
#   directory.
# Output: markdown for BENCHMARKS.md on stdout (summary row, every step, the command), the
# progress on stderr. Exit status: 0 for a valid run, 1 if the run was invalid (a server or
# generator that failed, a mix without the expected tones or with a participant's own,
# malformed or re-sourced streams, generator send errors, no step measured, a reference
# measurement that failed), 2 for bad arguments. A step whose generator could not offer
# the load (under 99% of the packets sent) ends the ramp without failing the run: the
# limit found is then the generator's, and the report says so.
set -euo pipefail

case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo pipefail$/{/^set/!p}' "$0"; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

STEPS="${BENCH_STEPS:-100 200 500 1000 1500 2000 2500 3000}"
ROOM_SIZE="${BENCH_ROOM_SIZE:-10}"
TALKERS="${BENCH_TALKERS:-3}"
WARMUP="${BENCH_WARMUP:-3}"
DURATION="${BENCH_DURATION:-15}"
LATE_MS="${BENCH_LATE_MS:-20}"
MAX_LATE_PCT="${BENCH_MAX_LATE_PCT:-0.1}"
RETRY="${BENCH_RETRY:-2}"
BISECT="${BENCH_BISECT:-2}"
LOAD_THREADS="${BENCH_LOAD_THREADS:-2}"
TICK_US="${BENCH_TICK_US:-500}"
SANSIO_ROOMS="${BENCH_SANSIO_ROOMS:-200}"
FLOOD_SECS="${BENCH_FLOOD_SECS:-6}"
FLOOD_SERVERS="${BENCH_FLOOD_SERVERS:-plain sentralbord}"
INBAND_DTMF="${BENCH_INBAND_DTMF:-0}"
QUIET_BUSY_PCT="${BENCH_QUIET_BUSY_PCT:-25}"
QUIET_WAIT="${BENCH_QUIET_WAIT:-20}"
BUDGET="${BENCH_BUDGET:-320}"
NICE="${BENCH_NICE:-0}"
SERVER_NICE="${BENCH_SERVER_NICE:-$NICE}"
PIN="${BENCH_PIN:-1}"
DRAIN_MS=500
# Addresses: the media server binds on 127.0.0.1 in PORT_MIN..PORT_MAX (4 ports per
# participant); participant i's phone is 127.0.0.4:(FAR_BASE + 2i) (RTCP one above). The
# flood reference uses 127.0.0.5/.6 (bench-media.sh uses .2/.3: both may run at once).
SERVER_IP=127.0.0.1
PORT_MIN=40000
PORT_MAX=59999
FAR="127.0.0.4:20000"
FLOOD_CALLER_FAR="127.0.0.5:20000"
FLOOD_CALLEE_FAR="127.0.0.6:20000"
FLOOD_SESSIONS=16
MAX_PARTICIPANTS=4000 # (PORT_MAX - PORT_MIN + 1) / 4 = 5000 sessions; phones to port 28000

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMDLINE="BENCH_STEPS=\"$STEPS\" BENCH_ROOM_SIZE=$ROOM_SIZE BENCH_TALKERS=$TALKERS BENCH_WARMUP=$WARMUP BENCH_DURATION=$DURATION BENCH_LATE_MS=$LATE_MS BENCH_MAX_LATE_PCT=$MAX_LATE_PCT BENCH_RETRY=$RETRY BENCH_BISECT=$BISECT BENCH_PIN=$PIN BENCH_LOAD_THREADS=$LOAD_THREADS BENCH_TICK_US=$TICK_US BENCH_SANSIO_ROOMS=$SANSIO_ROOMS BENCH_FLOOD_SECS=$FLOOD_SECS BENCH_FLOOD_SERVERS=\"$FLOOD_SERVERS\" BENCH_INBAND_DTMF=$INBAND_DTMF BENCH_QUIET_BUSY_PCT=$QUIET_BUSY_PCT BENCH_QUIET_WAIT=$QUIET_WAIT BENCH_BUDGET=$BUDGET BENCH_NICE=$NICE BENCH_SERVER_NICE=$SERVER_NICE scripts/bench-conference.sh"
WORK="$(mktemp -d /tmp/sentralbord-bench-conference.XXXXXX)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/examples"
declare -A MAIN_PID RES
LOAD_PID=""
STATUS=0
INVALID=()

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
# A signal ends the run through the EXIT trap (server and generator stopped).
trap 'exit 130' INT TERM

invalid() { # reason: the run is invalid (exit 1), kept for the report
    INVALID+=("$1")
    STATUS=1
    BENCH_KEEP=1
    log "INVALID: $1"
}

is_count() { [[ "$1" =~ ^[0-9]+$ ]]; }
for v in ROOM_SIZE TALKERS WARMUP DURATION LATE_MS RETRY BISECT LOAD_THREADS TICK_US SANSIO_ROOMS FLOOD_SECS QUIET_BUSY_PCT QUIET_WAIT BUDGET; do
    is_count "${!v}" || { echo "BENCH_$v must be a whole number (got ${!v})" >&2; exit 2; }
done
if [ "$ROOM_SIZE" -lt 1 ] || [ "$TALKERS" -gt "$ROOM_SIZE" ] || [ "$TALKERS" -gt 8 ] || [ "$DURATION" -lt 1 ]; then
    echo "need BENCH_ROOM_SIZE >= 1, BENCH_TALKERS <= min(8, room size), BENCH_DURATION >= 1" >&2; exit 2
fi
for n in $STEPS; do
    if ! is_count "$n" || [ "$n" -lt 1 ] || [ "$n" -gt "$MAX_PARTICIPANTS" ] || [ $(( n % ROOM_SIZE )) != 0 ]; then
        echo "BENCH_STEPS: each count is a multiple of $ROOM_SIZE in 1..$MAX_PARTICIPANTS (got $n)" >&2; exit 2
    fi
done
# Four sockets per participant in the server, two in the generator.
max_step=$(printf '%s\n' $STEPS | sort -n | tail -1)
if [ "$(ulimit -Hn)" != "unlimited" ] && [ "$(ulimit -Hn)" -lt $(( max_step * 4 + 100 )) ]; then
    log "warning: hard open-files limit $(ulimit -Hn) < $(( max_step * 4 + 100 )): large steps may fail"
fi
need_pkg python3 python3
SERVER_PIN=()
LOAD_PIN=()
PIN_NOTE="not pinned"
if [ "$PIN" = 1 ]; then
    if [ "$(nproc)" -ge 2 ]; then
        need_pkg taskset util-linux
        load_cpus=1
        [ "$(nproc)" -gt 2 ] && load_cpus="1-$(( $(nproc) - 1 ))"
        SERVER_PIN=(taskset -c 0)
        LOAD_PIN=(taskset -c "$load_cpus")
        PIN_NOTE="server on CPU 0, generator on CPU $load_cpus"
    else
        log "one CPU: no pinning"
    fi
fi
need_pkg ss iproute2

log "building the release examples"
EXAMPLES=(--example conference_server --example conference_load_net --example conference_load)
[ "$FLOOD_SECS" -gt 0 ] && EXAMPLES+=(--example media_relay_server --example media_load)
(cd "$ROOT" && cargo build --release "${EXAMPLES[@]}" >&2)

# The phones' ports must be free on 127.0.0.4 (a wildcard bind would take them).
if ss -Hlnu | awk -v lo=20000 -v hi=$(( 20000 + 2 * max_step + 1 )) '
        { n = split($4, a, ":"); p = a[n]; ip = substr($4, 1, length($4) - length(p) - 1) }
        p >= lo && p <= hi && (ip == "0.0.0.0" || ip == "*" || ip == "[::]" || ip == "127.0.0.4") { found = 1 }
        END { exit !found }'; then
    log "warning: some UDP ports in 20000..$(( 20000 + 2 * max_step + 1 )) are taken on 127.0.0.4; steps may fail to bind"
fi

json_field() { # file python-expression-on-d
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d})
print("n/a" if v is None else (("%.3f" % v) if isinstance(v, float) else v))' "$1" "$2" 2>/dev/null || echo "n/a"
}

# Field KEY=VALUE of the server's "# stats" line in file $1.
stat_field() {
    grep '^# stats' "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | tail -1
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

# Runs a generator in the background (so a signal reaches the EXIT trap) and waits for it:
# run_bg OUT ERR SECONDS command...
run_bg() {
    local out="$1" err="$2" secs="$3" rc
    shift 3
    set +e
    timeout "$secs" nice -n "$NICE" "$@" > "$out" 2> "$err" &
    LOAD_PID=$!
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=""
    set -e
    return "$rc"
}

# --- references ---------------------------------------------------------------------------
SECONDS=0
QUIET_NOTE=""
QUIET_BUSY_STEPS=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RES[sansio]="n/a"
RES[sansio_per_core]="n/a"
if [ "$SANSIO_ROOMS" -gt 0 ]; then
    log "sans-IO reference: conference_load --rooms $SANSIO_ROOMS"
    if timeout 120 "$BIN/conference_load" --rooms "$SANSIO_ROOMS" --size "$ROOM_SIZE" --talkers "$TALKERS" > "$WORK/sansio.out" 2> "$WORK/sansio.err"; then
        RES[sansio]=$(sed -n 's/^CPU per participant per 20 ms: \([0-9]*\) ns.*/\1/p' "$WORK/sansio.out")
        RES[sansio_per_core]=$(sed -n 's/.*participants per core in real time: \([0-9]*\).*/\1/p' "$WORK/sansio.out")
        allocations=$(sed -n 's/.*heap allocations while measuring: \([0-9]*\).*/\1/p' "$WORK/sansio.out")
        log "sans-IO: ${RES[sansio]} ns per participant per 20 ms, ${RES[sansio_per_core]} participants per core; allocations ${allocations:-?}"
        [ -n "${RES[sansio]}" ] || invalid "the sans-IO reference printed no figure"
    else
        invalid "the sans-IO reference (conference_load) failed"; cat "$WORK/sansio.err" >&2 || true
    fi
fi

if [ "$FLOOD_SECS" -gt 0 ]; then
    for name in $FLOOD_SERVERS; do
        label="flood-$name"
        wait_quiet
        "${SERVER_PIN[@]}" nice -n "$NICE" "$BIN/media_relay_server" --mode "$name" --sessions "$FLOOD_SESSIONS" \
            --caller-far "$FLOOD_CALLER_FAR" --callee-far "$FLOOD_CALLEE_FAR" --far-sockets 2 \
            --local-ip "$SERVER_IP" --port-min "$PORT_MIN" --port-max "$PORT_MAX" \
            --max-seconds 120 > "$WORK/$label.relays" 2> "$WORK/$label.server.err" &
        MAIN_PID[$label]=$!
        if ! wait_ready "$WORK/$label.relays" 30 "${MAIN_PID[$label]}"; then
            invalid "flood reference: $name relay did not start"; tail -5 "$WORK/$label.server.err" >&2 || true
            stop_servers; continue
        fi
        if run_bg "$WORK/$label.json" "$WORK/$label.load.err" $(( FLOOD_SECS + 30 )) \
                "${LOAD_PIN[@]}" "$BIN/media_load" --relays "$WORK/$label.relays" --caller-far "$FLOOD_CALLER_FAR" \
                --callee-far "$FLOOD_CALLEE_FAR" --far-sockets 2 --threads 2 --flood \
                --warmup 2 --duration "$FLOOD_SECS" --cpu-pid "${MAIN_PID[$label]}" \
            && [ -s "$WORK/$label.json" ]; then
            pps=$(json_field "$WORK/$label.json" 'round(d["received_pps"])')
            cpu=$(json_field "$WORK/$label.json" 'd["server_cpu_ms_per_s"]')
            RES[flood_$name]=$(awk -v p="$pps" -v c="$cpu" 'BEGIN { if (c + 0 > 0) printf "%.0f", p / (c / 1000); else print "n/a" }')
            log "flood $name: $pps packets/s through the relay at $cpu ms/s relay CPU -> ${RES[flood_$name]} packets per CPU-second"
            [ "${RES[flood_$name]}" != "n/a" ] || invalid "flood reference: no CPU figure for $name"
        else
            invalid "flood reference: the load generator failed for $name"; tail -5 "$WORK/$label.load.err" >&2 || true
        fi
        stop_servers
    done
fi

# --- ramp ---------------------------------------------------------------------------------
DETAIL=()
STEP_SECS=$(( WARMUP + DURATION + 12 )) # + quiet check, set-up, drain, tear-down (a guess)
GOOD=0
BAD=0
BUDGET_STOP=""
RETRY_NOTE=""
GENERATOR_NOTE=""

# One run at N participants; sets RESULT (PASS, FAIL or INVALID) and fills RES[N,...].
step_once() {
    local n="$1" attempt="$2" label pid json server_err rooms late_pct late missing p50 p99 pmax
    local cpu load_cpu busy steal offered rate gaps mix_ok heard_self malformed ssrc send_errors
    local talking expected_talking per_part core_pct both_pct other pps why
    label="c$n-$attempt"
    rooms=$(( n / ROOM_SIZE ))
    RESULT=INVALID
    wait_quiet
    local dtmf=()
    [ "$INBAND_DTMF" = 1 ] && dtmf=(--inband-dtmf)
    server_err="$WORK/$label.server.err"
    "${SERVER_PIN[@]}" nice -n "$SERVER_NICE" "$BIN/conference_server" --participants "$n" --room-size "$ROOM_SIZE" \
        --far "$FAR" --local-ip "$SERVER_IP" --port-min "$PORT_MIN" --port-max "$PORT_MAX" \
        "${dtmf[@]}" --max-seconds 300 > "$WORK/$label.relays" 2> "$server_err" &
    pid=$!
    MAIN_PID[server]=$pid
    if ! wait_ready "$WORK/$label.relays" 60 "$pid"; then
        invalid "$n participants: the server did not set up ($(tail -1 "$server_err" 2>/dev/null))"
        stop_servers; return 1
    fi
    json="$WORK/$label.json"
    if ! run_bg "$json" "$WORK/$label.load.err" $(( WARMUP + DURATION + 60 )) \
            "${LOAD_PIN[@]}" "$BIN/conference_load_net" --relays "$WORK/$label.relays" --far "$FAR" \
            --room-size "$ROOM_SIZE" --talkers "$TALKERS" --threads "$LOAD_THREADS" \
            --warmup "$WARMUP" --duration "$DURATION" --drain-ms "$DRAIN_MS" \
            --late-ms "$LATE_MS" --tick-us "$TICK_US" --cpu-pid "$pid" \
        || ! [ -s "$json" ]; then
        invalid "$n participants: the load generator failed ($(tail -1 "$WORK/$label.load.err" 2>/dev/null))"
        stop_servers; return 1
    fi
    stop_servers # TERM: the server prints its "# stats" line
    late_pct=$(json_field "$json" 'd["late_or_missing_pct"]')
    late=$(json_field "$json" 'd["late"]')
    missing=$(json_field "$json" 'd["missing"]')
    p50=$(json_field "$json" 'd["lateness_us"]["p50"]')
    p99=$(json_field "$json" 'd["lateness_us"]["p99"]')
    pmax=$(json_field "$json" 'd["lateness_us"]["max"]')
    cpu=$(json_field "$json" 'd["server_cpu_ms_per_s"]')
    load_cpu=$(json_field "$json" 'd["load_cpu_ms_per_s"]')
    busy=$(json_field "$json" 'd["machine_busy_ms_per_s"]')
    steal=$(json_field "$json" 'd["machine_steal_ms_per_s"]')
    offered=$(json_field "$json" 'd["offered_pct"]')
    rate=$(json_field "$json" 'd["mix_rate_per_participant"]')
    gaps=$(json_field "$json" 'd["gaps_pct"]')
    mix_ok=$(json_field "$json" 'd["mix_ok_pct"]')
    heard_self=$(json_field "$json" 'd["heard_self"]')
    malformed=$(json_field "$json" 'd["malformed"]')
    ssrc=$(json_field "$json" 'd["ssrc_changes"]')
    send_errors=$(json_field "$json" 'd["send_errors"]')
    talking=$(stat_field "$server_err" talking_started)
    expected_talking=$(( rooms * TALKERS ))
    why=$(awk -v l="$late_pct" -v m="$MAX_LATE_PCT" 'BEGIN { print (l == "n/a" || l + 0 > m + 0) ? "FAIL" : "PASS" }')
    # Validity: what makes the step measure something else than the mixing of N participants.
    local bad=""
    [ "$cpu" = "n/a" ] && bad="$bad no server CPU figure;"
    [ "$heard_self" = "0" ] || bad="$bad $heard_self mix checks heard the participant's own tone;"
    [ "$malformed" = "0" ] || bad="$bad $malformed malformed packets;"
    [ "$ssrc" = "0" ] || bad="$bad $ssrc SSRC changes;"
    [ "$send_errors" = "0" ] || bad="$bad $send_errors generator send errors;"
    if [ "$why" = PASS ]; then
        awk -v k="$mix_ok" 'BEGIN { exit !(k == "n/a" || k + 0 < 95) }' && bad="$bad only ${mix_ok}% of the mix checks heard every other talker;"
        { [ -n "$talking" ] && [ "$talking" -ge "$expected_talking" ]; } || bad="$bad ${talking:-no} talking events for $expected_talking talkers;"
    fi
    per_part=$(awk -v c="$cpu" -v n="$n" 'BEGIN { if (c == "n/a") print c; else printf "%.1f", c * 20 / n }')
    core_pct=$(awk -v c="$cpu" 'BEGIN { if (c == "n/a") print c; else printf "%.0f", c / 10 }')
    both_pct=$(awk -v c="$cpu" -v g="$load_cpu" 'BEGIN { if (c == "n/a" || g == "n/a") print "n/a"; else printf "%.0f", (c + g) / 20 }')
    other=$(awk -v b="$busy" -v c="$cpu" -v g="$load_cpu" 'BEGIN { if (b == "n/a" || c == "n/a" || g == "n/a") print "n/a"; else { o = b - c - g; printf "%.0f", (o < 0) ? 0 : o } }')
    pps=$(( n * 100 ))
    fmt0() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.0f", v }'; }
    # Lateness in ms; the generator's histogram ends at 500 ms (beyond: 500001 µs).
    ms() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else if (v + 0 > 500000) print ">500"; else printf "%.1f", v / 1000 }'; }
    RESULT=$why
    if awk -v o="$offered" 'BEGIN { exit !(o == "n/a" || o + 0 < 99) }'; then
        RESULT=GENERATOR-BOUND
        GENERATOR_NOTE="at $n participants the generator sent only ${offered}% of the packets (the limit found is the generator's)"
        log "$GENERATOR_NOTE"
    fi
    if [ -n "$bad" ]; then
        RESULT=INVALID
        invalid "$n participants:$bad"
    fi
    RES[$n,late]=$late_pct; RES[$n,cpu]=$(fmt0 "$cpu"); RES[$n,per]=$per_part; RES[$n,core]=$core_pct
    RES[$n,load]=$(fmt0 "$load_cpu"); RES[$n,both]=$both_pct; RES[$n,lat]="$(ms "$p50") / $(ms "$p99") / $(ms "$pmax")"
    DETAIL+=("| $n | $rooms | $pps | $(awk -v v="$late_pct" 'BEGIN { if (v == "n/a") print v; else printf "%.3f", v }') ($late / $missing) | $(awk -v v="$gaps" 'BEGIN { if (v == "n/a") print v; else printf "%.3f", v }') | $(ms "$p50") / $(ms "$p99") / $(ms "$pmax") | $(fmt0 "$cpu") ($core_pct %) | $per_part | $(fmt0 "$load_cpu") | $both_pct | $other | $(fmt0 "$steal") | $(awk -v v="$offered" 'BEGIN { if (v == "n/a") print v; else printf "%.1f", v }') | $(awk -v v="$rate" 'BEGIN { if (v == "n/a") print v; else printf "%.1f", v }') | $(awk -v v="$mix_ok" 'BEGIN { if (v == "n/a") print v; else printf "%.1f", v }') | $RESULT |")
    log "$n participants (attempt $attempt): late or missing ${late_pct}% ($late late, $missing missing), after a stall ${gaps}%, lateness p50/p99/max $(ms "$p50")/$(ms "$p99")/$(ms "$pmax") ms, server CPU $(fmt0 "$cpu") ms/s ($per_part us per participant per 20 ms), generator $(fmt0 "$load_cpu") ms/s, other $other ms/s, steal $(fmt0 "$steal") ms/s ($QUIET_NOTE), offered ${offered}%, mix frames ${rate}/s per participant, mix ok ${mix_ok}%, talking events ${talking:-?}/$expected_talking -> $RESULT"
    return 0
}

# Runs N participants until it passes, fails clearly, or is out of retries; returns 0 if
# it passed, 1 if it failed, 2 if it could not be run (budget) or was invalid.
measure() {
    local n="$1" attempt tried=0
    for attempt in $(seq 0 "$RETRY"); do
        if [ $(( SECONDS + STEP_SECS )) -gt "$BUDGET" ]; then
            if [ "$tried" = 0 ]; then
                BUDGET_STOP="the time budget (${BUDGET}s) ran out before $n participants"
                log "$BUDGET_STOP"
                return 2
            fi
            RETRY_NOTE="no time left to run $n participants again"
            log "$RETRY_NOTE"
            return 1
        fi
        tried=1
        step_once "$n" "$attempt" || return 2
        case "$RESULT" in
            PASS) return 0 ;;
            INVALID|GENERATOR-BOUND) return 2 ;;
        esac
    done
    return 1
}

# Between a passing and a failing count: the middle, rounded down to 50 and to the room
# size (0: none left).
middle() {
    local unit=$(( ROOM_SIZE * 50 / $(gcd "$ROOM_SIZE" 50) ))
    local mid=$(( ($1 + $2) / 2 / unit * unit ))
    if [ "$mid" -gt "$1" ] && [ "$mid" -lt "$2" ]; then echo "$mid"; else echo 0; fi
}
gcd() { local a=$1 b=$2 t; while [ "$b" != 0 ]; do t=$(( a % b )); a=$b; b=$t; done; echo "$a"; }

for n in $STEPS; do
    rc=0
    measure "$n" || rc=$?
    case "$rc" in
        0) GOOD=$n ;;
        1) BAD=$n; break ;;
        *) break ;;
    esac
done
if [ "$BAD" != 0 ] && [ "$STATUS" = 0 ]; then
    for round in $(seq 1 "$BISECT"); do
        mid=$(middle "$GOOD" "$BAD")
        [ "$mid" != 0 ] || break
        rc=0
        measure "$mid" || rc=$?
        case "$rc" in
            0) GOOD=$mid ;;
            1) BAD=$mid ;;
            *) break ;;
        esac
        : "$round"
    done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
[ "${#DETAIL[@]}" -gt 0 ] || invalid "no step was measured"

# --- report -------------------------------------------------------------------------------
val() { echo "${RES[$1]:-n/a}"; }
DATE=$(date -u +%Y-%m-%d)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "?")
DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src 2>/dev/null | grep -q . && echo "+dirty" || true)
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
if [ "$BAD" != 0 ]; then FIRST_BAD=$BAD; elif [ -n "$GENERATOR_NOTE" ]; then FIRST_BAD="none (generator-bound)"; elif [ -n "$BUDGET_STOP" ]; then FIRST_BAD="none (budget)"; else FIRST_BAD="none up to the last step"; fi
FLOOD_PLAIN=$(val flood_plain)
FLOOD_SB=$(val flood_sentralbord)
# The flood relay's CPU for the traffic of the best step: 50 packets/s in and 50 out per
# participant are 50 relayed packets per second each.
FLOOR_MS=$(awk -v f="$FLOOD_PLAIN" -v n="$GOOD" 'BEGIN { if (f == "n/a" || f + 0 == 0 || n == 0) print "n/a"; else printf "%.0f", 1000 * 50 * n / f }')
echo
echo "| date | commit | machine | participants (≤ ${MAX_LATE_PCT}% late) | first failing | server CPU per participant, µs per 20 ms | server CPU, % of one core | generator CPU, % of one core | server + generator, % of 2 cores | packets/s in + out | sans-IO, ns per participant per 20 ms | flood ceiling, packets per CPU-second: plain / sentralbord | plain relay CPU for this traffic at the ceiling, ms/s |"
echo "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"
if [ "$GOOD" != 0 ]; then
    GEN_PCT=$(awk -v g="$(val "$GOOD,load")" 'BEGIN { if (g == "n/a") print g; else printf "%.0f", g / 10 }')
    echo "| $DATE | $COMMIT$DIRTY | $(nproc) cores, load avg $LOAD_BEFORE → $LOAD_AFTER | $GOOD | $FIRST_BAD | $(val "$GOOD,per") | $(val "$GOOD,core") | $GEN_PCT | $(val "$GOOD,both") | $(( GOOD * 100 )) | $(val sansio) | $FLOOD_PLAIN / $FLOOD_SB | $FLOOR_MS |"
else
    echo "| $DATE | $COMMIT$DIRTY | $(nproc) cores, load avg $LOAD_BEFORE → $LOAD_AFTER | 0 | $FIRST_BAD | n/a | n/a | n/a | n/a | n/a | $(val sansio) | $FLOOD_PLAIN / $FLOOD_SB | n/a |"
fi
echo
echo "| participants | rooms | packets/s in + out | late or missing % (late / missing) | frames after a stall (gap > $(( LATE_MS + 20 )) ms) % | lateness p50 / p99 / max ms | server CPU ms/s (% of one core) | µs per participant per 20 ms | generator CPU ms/s | server + generator, % of 2 cores | other load ms/s | steal ms/s | offered % | mix frames/s per participant | mix checks ok % | result |"
echo "|---:|---:|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${DETAIL[@]}"
echo
echo "Command: \`$CMDLINE\`"
echo "Flow: rooms of $ROOM_SIZE, $TALKERS talking (tones) and the rest sending silence, PCMU 20 ms, one session per participant through sentralbord's MediaDriver (one media thread); ${WARMUP} s warm-up, ${DURATION} s measured, a fresh server per step; late: more than ${LATE_MS} ms after its slot on the participant's 20 ms grid, or missing; a step passes with at most ${MAX_LATE_PCT}% late or missing; \"after a stall\": frames that arrived more than $(( LATE_MS + 20 )) ms after the frame before them (one per stall of the media thread). CPU: the server process's utime+stime over the window; the generator ($LOAD_THREADS threads) shares the machine ($PIN_NOTE)."
echo "References: sans-IO \`conference_load --rooms $SANSIO_ROOMS\` (no sockets): $(val sansio) ns per participant per 20 ms ($(val sansio_per_core) participants per core). Flood (bench-media.sh's ceiling, $FLOOD_SESSIONS calls in batches of 32): plain $FLOOD_PLAIN, sentralbord $FLOOD_SB packets relayed per CPU-second."
echo "Machine: $(nproc) cores ($CPU); load average before $LOAD_BEFORE, after $LOAD_AFTER; $QUIET_BUSY_STEPS measurement(s) started on a machine still busy after ${QUIET_WAIT}s; $PIN_NOTE; niceness: server $SERVER_NICE, generator $NICE; run time ${SECONDS}s after the build.${BUDGET_STOP:+ Stopped early: $BUDGET_STOP.}${RETRY_NOTE:+ Note: $RETRY_NOTE.}${GENERATOR_NOTE:+ Note: $GENERATOR_NOTE.}"
if [ "${#INVALID[@]}" -gt 0 ]; then
    echo
    echo "INVALID RUN:"
    printf -- '- %s\n' "${INVALID[@]}"
fi
exit $STATUS
