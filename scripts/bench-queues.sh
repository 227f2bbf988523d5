#!/usr/bin/env bash
# Queue benchmark (issue 6): callers waiting in queues with music on hold while agents
# answer at a steady rate, on one sentralbord daemon:
#
#   SIPp UAC (the carrier, trusted address; scripts/queue-bench/caller.xml)
#     -> trunk listener -> a queue number -> answered by the queue: greeting, music on hold
#     -> an offer to the longest-idle agent of that queue
#   -> scripts/queue-bench/agents.py: one asyncio process playing every agent's phone (its
#      own UDP port each, MD5 digest registration): 180, 200 after BENCH_ANSWER_MS, talk
#      BENCH_TALK_MS from the ACK, BYE. The daemon hangs the caller up with it.
#
# Provisioning (CLI, before the daemon starts): one tenant, BENCH_QUEUES queues
# (longest-idle, --wrap-up 0, each with its own number +47210000NN), BENCH_AGENTS_PER_QUEUE
# agents per queue (users without a mobile, each a member of one queue), all logged in.
# Every agent registers at the start and stays registered for both runs.
#
# Two runs on the same daemon, the small one first:
#   baseline: BENCH_BASE_CALLERS callers over the first BENCH_BASE_QUEUES queues (and only
#             their agents get calls), measured BENCH_BASE_WINDOW seconds;
#   full:     BENCH_CALLERS callers over all BENCH_QUEUES queues, BENCH_WINDOW seconds.
# Each run is closed-loop: SIPp keeps callers + agents calls open (-l), so once the queues
# hold `callers` waiting, every call an agent ends is replaced by a new caller at once and
# the number waiting stays there; SIPp starts calls at up to BENCH_FILL_RATE/s. The window
# starts once `sentralbord queue status` shows that many waiting. After it, SIPp is told to
# stop calling (a soft quit on its control port) and the waiting callers drain.
#
# Measured over each window:
#   - callers waiting (queue status, sampled every second): min / mean / max, and the
#     fewest in any one queue of the run (0 would mean agents waited for a caller);
#   - agent calls completed per second, and free->ring: the time from an agent's BYE leaving
#     its socket to the kernel receive timestamp of that agent's next INVITE (p50/p99/max;
#     the five slowest are printed with their time in the window);
#   - daemon CPU (utime+stime, % of one core), and per thread group: media-relay (the media
#     plane), the tokio workers (engine loop, SIP transport), the store threads;
#   - RSS (VmRSS at the end of the window, VmHWM);
#   - the daemon's RTP output: every SDP (callers' and agents') points at one sink socket
#     pair that agents.py binds and never reads; the kernel's drop counter of that socket
#     (/proc/net/udp) counts every packet once the buffer is full (immediately at 50k pps);
#   - the load generators' CPU (SIPp, agents.py) and the machine's steal time;
#   - one caller's ears: a probe caller (one more SIPp call, to the first queue) whose SDP
#     points at a socket agents.py reads: 20 ms slots without music, gaps over 30 ms;
#   - latency outliers explained: every 20 ms, stats.py records the daemon's threads'
#     run time and run-queue wait (/proc/PID/task/*/schedstat), the machine's steal and
#     procs_running; each free->ring sample over BENCH_OUTLIER_MS is shown with what
#     happened between the agent's BYE and the ring (waiting for a CPU, steal, busy).
# Validity (exit status 1 otherwise): every agent registered, the number waiting reached
# the target in both runs, latency samples in both windows, under 0.1% of caller calls
# failed, the daemon alive at the end.
#
# No queue-capable peer is installable here from Debian (asterisk left Debian 12; FreeSWITCH
# is not packaged; Kamailio has no queues): see BENCHMARKS.md.
#
# Usage: scripts/bench-queues.sh
# Environment: BENCH_CALLERS (1000) BENCH_QUEUES (50) BENCH_AGENTS_PER_QUEUE (4)
#   BENCH_BASE_CALLERS (100) BENCH_BASE_QUEUES (10) BENCH_WINDOW (60) BENCH_BASE_WINDOW (30)
#   BENCH_TALK_MS (3000) BENCH_ANSWER_MS (100) BENCH_FILL_RATE (150)
#   BENCH_OUTLIER_MS (5: free->ring samples above this are explained in the log)
#   BENCH_QUIET_BUSY_PCT (20) BENCH_QUIET_WAIT (30): before each run, wait up to that many
#   seconds for the machine to be under that share of all CPUs busy (a shared machine)
#   BENCH_KEEP=1 keeps the work directory. CARGO_TARGET_DIR is honoured.
# Output: a markdown table for BENCHMARKS.md and the exact command line.
set -euo pipefail

CALLERS="${BENCH_CALLERS:-1000}"
QUEUES="${BENCH_QUEUES:-50}"
APQ="${BENCH_AGENTS_PER_QUEUE:-4}"
BASE_CALLERS="${BENCH_BASE_CALLERS:-100}"
BASE_QUEUES="${BENCH_BASE_QUEUES:-10}"
WINDOW="${BENCH_WINDOW:-60}"
BASE_WINDOW="${BENCH_BASE_WINDOW:-30}"
TALK_MS="${BENCH_TALK_MS:-3000}"
ANSWER_MS="${BENCH_ANSWER_MS:-100}"
FILL_RATE="${BENCH_FILL_RATE:-150}"
OUTLIER_MS="${BENCH_OUTLIER_MS:-5}"
QUIET_BUSY_PCT="${BENCH_QUIET_BUSY_PCT:-20}"
QUIET_WAIT="${BENCH_QUIET_WAIT:-30}"
REALM="bench.test"
TENANT="bench"
case "${1:-}" in
    "") ;;
    -h|--help) sed -n '2,/^set -euo pipefail$/{/^set/!p}' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (settings are environment variables, see --help)" >&2; exit 2 ;;
esac
if [ "$BASE_QUEUES" -gt "$QUEUES" ] || [ "$QUEUES" -gt 99 ] || [ "$QUEUES" -lt 1 ]; then
    echo "need 1 <= BENCH_BASE_QUEUES <= BENCH_QUEUES <= 99" >&2; exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/queue-bench"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/sentralbord"
CMDLINE="BENCH_CALLERS=$CALLERS BENCH_QUEUES=$QUEUES BENCH_AGENTS_PER_QUEUE=$APQ BENCH_BASE_CALLERS=$BASE_CALLERS BENCH_BASE_QUEUES=$BASE_QUEUES BENCH_WINDOW=$WINDOW BENCH_BASE_WINDOW=$BASE_WINDOW BENCH_TALK_MS=$TALK_MS BENCH_ANSWER_MS=$ANSWER_MS BENCH_FILL_RATE=$FILL_RATE BENCH_OUTLIER_MS=$OUTLIER_MS BENCH_QUIET_BUSY_PCT=$QUIET_BUSY_PCT BENCH_QUIET_WAIT=$QUIET_WAIT scripts/bench-queues.sh"
WORK="$(mktemp -d /tmp/sentralbord-bench-queues.XXXXXX)"
CLK_TCK="$(getconf CLK_TCK)"
declare -A MAIN_PID RES
AGENTS_PID=""
SIPP_PID=""
PROBE_PID=""
SCHED_PID=""
STATUS=0

# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench-common.sh"

stop_pid() { # pid: TERM, up to 5 s, then KILL
    local pid="$1" i
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$SIPP_PID"; SIPP_PID=""
    stop_pid "$PROBE_PID"; PROBE_PID=""
    stop_pid "$SCHED_PID"; SCHED_PID=""
    stop_pid "$AGENTS_PID"; AGENTS_PID=""
    stop_servers || true
    if [ "${BENCH_KEEP:-0}" = "1" ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_pkg sipp sip-tester
need_pkg ss iproute2
need_pkg python3 python3

# A file's first field of the daemon's /proc/PID/status key, in KiB.
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# Steal, total and busy (not idle or iowait) jiffies of the machine: "steal total busy".
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t, t - $5 - $6; exit }' /proc/stat; }
# Percentage of all CPUs busy over one second.
busy_pct() {
    local s0 t0 b0 s1 t1 b1
    read -r s0 t0 b0 < <(machine_ticks); sleep 1; read -r s1 t1 b1 < <(machine_ticks)
    awk -v b=$(( b1 - b0 )) -v t=$(( t1 - t0 )) 'BEGIN { if (t > 0) printf "%d", b * 100 / t; else print 0 }'
}
# Waits (at most QUIET_WAIT s) until under QUIET_BUSY_PCT of all CPUs are busy: other
# programs on a shared machine take CPU from the daemon and show up as latency.
wait_quiet() {
    local waited=0 busy
    busy=$(busy_pct)
    while [ "$busy" -ge "$QUIET_BUSY_PCT" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
        [ "$waited" = 0 ] && log "machine busy (${busy}% of all CPUs): waiting up to ${QUIET_WAIT}s for it to quiet down"
        sleep 4; waited=$(( waited + 5 ))
        busy=$(busy_pct)
    done
    QUIET_NOTE="${busy}% busy before"
    [ "$busy" -lt "$QUIET_BUSY_PCT" ] || QUIET_NOTE="$QUIET_NOTE (not quiet after ${QUIET_WAIT}s)"
}
ms_per_s() { awk -v t="$1" -v hz="$CLK_TCK" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", t / hz * 1000 / s; else print "n/a" }'; }
pct_core() { awk -v t="$1" -v hz="$CLK_TCK" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", t / hz * 100 / s; else print "n/a" }'; }
json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if v is not None else "n/a")' "$1" "$2" 2>/dev/null || echo "n/a"; }
cli() { "$BIN" "$@"; }
# Sum over the tenant's queues: "waiting available busy logged_in queues".
queue_totals() { # [N: the fewest waiting over Q01..QN only]
    cli queue status "$TENANT" > "$WORK/status.txt" 2>/dev/null || true
    python3 "$HERE/stats.py" status "$WORK/status.txt" "$@"
}
thread_ticks() { python3 "$HERE/stats.py" threads "$1" | awk '{ printf "%s=%s ", $1, $2 }'; }
tick_of() { # "media=1 engine=2 ..." group
    echo "$1" | tr ' ' '\n' | awk -F= -v g="$2" '$1 == g { print $2 }'
}
sink_drops() { python3 "$HERE/stats.py" sink "$1" | awk '{ print $1 }'; }

# --- build and provision -------------------------------------------------------------
log "building sentralbord (release)"
if ! (cd "$ROOT" && cargo build --release --quiet --bin sentralbord) >&2; then
    log "cargo build --release failed"; exit 1
fi
ulimit -n 65536 2>/dev/null || true
export SENTRALBORD_STORE__PATH="$WORK/sentralbord.db"
export SENTRALBORD_PROFILES__DIR="$WORK/profiles"
export SENTRALBORD_SHUTDOWN__DRAIN_TIMEOUT_S=2
mkdir -p "$WORK/profiles"
# MD5 only: the agents' simulator answers MD5 challenges (like SIPp).
cat > "$WORK/profiles/phones.toml" <<EOF
name = "phones"
kind = "phones"
realm = "$REALM"
digest_algorithms = ["MD5"]

[[listen]]
address = "127.0.0.1:0"
transports = ["udp"]
EOF
# No outbound proxy: the benchmark places no calls toward the carrier (so no OPTIONS ping).
cat > "$WORK/profiles/trunk.toml" <<EOF
name = "trunk"
kind = "trunk"
trusted = ["127.0.0.1/32"]

[numbering]
country_code = "47"
national_prefix = ""
international_prefix = "00"

[[listen]]
address = "127.0.0.1:0"
transports = ["udp"]
EOF
queue_name() { printf 'Q%02d' "$1"; }
queue_number() { printf '+47210000%02d' "$1"; }
t_prov=$(now_ns)
cli tenant add "$TENANT" >/dev/null || { log "tenant add failed"; exit 1; }
: > "$WORK/users.txt"
for q in $(seq 1 "$QUEUES"); do
    cli queue add "$TENANT" "$(queue_name "$q")" --strategy longest-idle --wrap-up 0 \
        --number "$(queue_number "$q")" >/dev/null || { log "queue add $q failed"; exit 1; }
    for a in $(seq 1 "$APQ"); do
        n=$(( (q - 1) * APQ + a ))
        u=$(printf 'agent%04d' "$n")
        ext=$(( 1000 + n ))
        pw="pw-$u-bench"
        if ! printf '%s\n' "$pw" | cli user add --tenant "$TENANT" --name "Agent $n" --extension "$ext" \
                --username "$u" --realm "$REALM" --password-stdin >/dev/null \
            || ! cli queue member add "$TENANT" "$(queue_name "$q")" "$ext" >/dev/null \
            || ! cli queue agent login "$TENANT" "$ext" >/dev/null; then
            log "provisioning agent $n failed"; exit 1
        fi
        echo "$u $pw" >> "$WORK/users.txt"
    done
done
AGENTS=$(( QUEUES * APQ ))
log "provisioned $QUEUES queues, $AGENTS agents in $(awk -v a="$t_prov" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"

# --- daemon and agents ---------------------------------------------------------------
"$BIN" run > "$WORK/sentralbord.out" 2> "$WORK/sentralbord.log" &
PID=$!
MAIN_PID[sentralbord]=$PID
for i in $(seq 1 200); do
    grep -qx 'ready' "$WORK/sentralbord.out" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if ! grep -qx 'ready' "$WORK/sentralbord.out" 2>/dev/null; then
    log "sentralbord did not become ready:"; tail -20 "$WORK/sentralbord.log" >&2; BENCH_KEEP=1; exit 1
fi
port_of() { awk -v p="$1" 'tolower($0) ~ ("^listening profile=" p " transport=udp addr=127\\.0\\.0\\.1:[0-9]+$") {
        n = split($0, parts, ":"); print parts[n]; exit }' "$WORK/sentralbord.out"; }
PHONES=$(port_of phones)
TRUNK=$(port_of trunk)
[ -n "$PHONES" ] && [ -n "$TRUNK" ] || { log "no phones/trunk UDP listener in the daemon's output"; BENCH_KEEP=1; exit 1; }
log "sentralbord pid $PID: phones 127.0.0.1:$PHONES, trunk 127.0.0.1:$TRUNK"
RSS_IDLE=$(status_kib "$PID" VmRSS)

# The agents run for both runs; bounded by the longest the script can take.
AGENTS_MAX_S=$(( BASE_WINDOW + WINDOW + 600 ))
sink_base=$(free_port)
sink_base=$(( sink_base / 2 * 2 ))
probe_base=$(free_port)
probe_base=$(( probe_base / 2 * 2 ))
python3 "$HERE/agents.py" --server "127.0.0.1:$PHONES" --realm "$REALM" --users "$WORK/users.txt" \
    --sink-port "$sink_base" --answer-ms "$ANSWER_MS" --talk-ms "$TALK_MS" \
    --probe-port "$probe_base" --probe-file "$WORK/probe.txt" \
    --samples "$WORK/samples.txt" --summary "$WORK/agents.json" --max-seconds "$AGENTS_MAX_S" \
    > "$WORK/agents.out" 2> "$WORK/agents.err" &
AGENTS_PID=$!
for i in $(seq 1 600); do
    grep -q '^registered ' "$WORK/agents.out" 2>/dev/null && break
    kill -0 "$AGENTS_PID" 2>/dev/null || break
    sleep 0.1
done
SINK=$(awk '$1 == "sink" { print $2 }' "$WORK/agents.out")
PROBE=$(awk '$1 == "probe" { print $2 }' "$WORK/agents.out")
read -r _ REGISTERED REG_FAILED REG_SECS < <(grep '^registered ' "$WORK/agents.out" || echo "registered 0 0 0")
log "agents: $REGISTERED registered, $REG_FAILED failed (${REG_SECS}s); RTP sink 127.0.0.1:$SINK"
if [ -z "$SINK" ] || [ -z "$PROBE" ] || [ "$REGISTERED" != "$AGENTS" ]; then
    log "not every agent registered:"; tail -5 "$WORK/agents.err" >&2; STATUS=1; BENCH_KEEP=1
    exit 1
fi
# Every agent available in the daemon's snapshot (written each second).
for i in $(seq 1 30); do
    read -r _w avail _b logged _q < <(queue_totals)
    [ "$avail" = "$AGENTS" ] && break
    sleep 1
done
log "queue status: $avail of $logged logged-in agents available"

# --- one run -------------------------------------------------------------------------
# run_phase NAME CALLERS NQUEUES WINDOW_S
run_phase() {
    local name="$1" callers="$2" nq="$3" window="$4"
    local agents=$(( nq * APQ )) limit mu fill_timeout max_calls cp port q i
    local qmin="" fewest t0 t1 secs waiting peak=0 c0 c1 th0 th1 s0 s1 a0 a1 m0 m1 m0t m1t m0b m1b d0 d1 r0 r1 wsum=0 wn=0 wmin="" wmax=0
    limit=$(( callers + agents ))
    # Agent calls per second when every agent is busy (an upper bound: no free->ring time).
    mu=$(awk -v a="$agents" -v t="$TALK_MS" -v r="$ANSWER_MS" 'BEGIN { printf "%.2f", a * 1000 / (t + r) }')
    fill_timeout=$(awk -v l="$limit" -v r="$FILL_RATE" -v m="$mu" 'BEGIN { d = r - m; if (d < 1) d = 1; t = 2 * l / d + 20; if (t > 180) t = 180; printf "%d", t }')
    max_calls=$(awk -v l="$limit" -v m="$mu" -v f="$fill_timeout" -v w="$window" 'BEGIN { printf "%d", l + 1.5 * m * (f + w + 10) }')
    wait_quiet
    RES[$name,quiet]=$QUIET_NOTE
    printf 'SEQUENTIAL\n' > "$WORK/numbers-$name.csv"
    for q in $(seq 1 "$nq"); do echo "$(queue_number "$q")" >> "$WORK/numbers-$name.csv"; done
    cp=$(free_port)
    port=$(free_port)
    log "$name: $callers callers over $nq queues ($agents agents, up to $mu calls/s), SIPp limit $limit open calls, up to $FILL_RATE calls/s"
    sipp "127.0.0.1:$TRUNK" -sf "$HERE/caller.xml" -inf "$WORK/numbers-$name.csv" -t u1 -i 127.0.0.1 -p "$port" \
        -cp "$cp" -r "$FILL_RATE" -rp 1000 -l "$limit" -m "$max_calls" -set sink_port "$SINK" \
        -max_recv_loops 10000 -max_sched_loops 10000 \
        -recv_timeout 240000 -timeout "$(( fill_timeout + window + 300 ))s" \
        -nostdin -trace_err -error_file "$WORK/sipp-$name.err" > "$WORK/sipp-$name.out" 2>&1 &
    SIPP_PID=$!
    # Fill: until the queues show `callers` waiting.
    t0=$(now_ns)
    while :; do
        read -r waiting _ < <(queue_totals)
        [ "$waiting" -gt "$peak" ] && peak=$waiting
        [ "$waiting" -ge "$callers" ] && break
        if ! kill -0 "$SIPP_PID" 2>/dev/null || ! kill -0 "$PID" 2>/dev/null; then
            log "$name: SIPp or the daemon ended while filling"; break
        fi
        if [ $(( ($(now_ns) - t0) / 1000000000 )) -ge "$fill_timeout" ]; then
            log "$name: only $peak callers waiting after ${fill_timeout}s"; break
        fi
        sleep 0.5
    done
    RES[$name,fill_s]=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    log "$name: $waiting callers waiting after ${RES[$name,fill_s]}s; measuring ${window}s"
    # Window. The probe: one more caller (to the first queue) whose music agents.py records.
    printf 'SEQUENTIAL\n%s\n' "$(queue_number 1)" > "$WORK/probe-$name.csv"
    sipp "127.0.0.1:$TRUNK" -sf "$HERE/caller.xml" -inf "$WORK/probe-$name.csv" -t u1 -i 127.0.0.1 \
        -p "$(free_port)" -cp "$(free_port)" -m 1 -set sink_port "$PROBE" -recv_timeout 240000 \
        -timeout "$(( window + 240 ))s" -nostdin -trace_err -error_file "$WORK/probe-$name.err" \
        > "$WORK/probe-$name.out" 2>&1 &
    PROBE_PID=$!
    python3 "$HERE/stats.py" sched "$PID" "$WORK/sched-$name.txt" "$(( window + 3 ))" &
    SCHED_PID=$!
    t0=$(now_ns)
    c0=$(cpu_ticks "$PID"); th0=$(thread_ticks "$PID"); s0=$(cpu_ticks "$SIPP_PID"); a0=$(cpu_ticks "$AGENTS_PID")
    read -r m0 m0t m0b < <(machine_ticks)
    d0=$(sink_drops "$SINK"); r0=$(sink_drops $(( SINK + 1 )))
    while [ $(( ($(now_ns) - t0) / 1000000000 )) -lt "$window" ]; do
        sleep 1
        read -r waiting _ _ _ _ fewest < <(queue_totals "$nq")
        wsum=$(( wsum + waiting )); wn=$(( wn + 1 ))
        # A queue that runs empty leaves its agents waiting for a caller: their next
        # free->ring sample would include that wait.
        if [ -z "$qmin" ] || [ "$fewest" -lt "$qmin" ]; then qmin=$fewest; fi
        [ "$waiting" -gt "$wmax" ] && wmax=$waiting
        if [ -z "$wmin" ] || [ "$waiting" -lt "$wmin" ]; then wmin=$waiting; fi
        kill -0 "$PID" 2>/dev/null || { log "$name: the daemon died"; break; }
    done
    t1=$(now_ns)
    c1=$(cpu_ticks "$PID"); th1=$(thread_ticks "$PID"); s1=$(cpu_ticks "$SIPP_PID"); a1=$(cpu_ticks "$AGENTS_PID")
    read -r m1 m1t m1b < <(machine_ticks)
    d1=$(sink_drops "$SINK"); r1=$(sink_drops $(( SINK + 1 )))
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    [ "$wmax" -gt "$peak" ] && peak=$wmax
    RES[$name,t0]=$(awk -v a="$t0" 'BEGIN { printf "%.6f", a / 1e9 }')
    RES[$name,t1]=$(awk -v a="$t1" 'BEGIN { printf "%.6f", a / 1e9 }')
    RES[$name,secs]=$secs
    RES[$name,peak]=$peak
    RES[$name,waiting]="${wmin:-0} / $(awk -v s="$wsum" -v n="$wn" 'BEGIN { if (n) printf "%.0f", s / n; else print 0 }') / $wmax"
    RES[$name,cpu]=$(pct_core $(( c1 - c0 )) "$secs")
    for g in media engine store other; do
        RES[$name,cpu_$g]=$(pct_core $(( $(tick_of "$th1" "$g") - $(tick_of "$th0" "$g") )) "$secs")
    done
    RES[$name,sipp_cpu]=$(pct_core $(( s1 - s0 )) "$secs")
    RES[$name,agents_cpu]=$(pct_core $(( a1 - a0 )) "$secs")
    RES[$name,steal]=$(awk -v s=$(( m1 - m0 )) -v t=$(( m1t - m0t )) -v n="$(nproc)" 'BEGIN { if (t > 0) printf "%.1f", s * 100 * n / t; else print "n/a" }')
    # Busy share of the whole machine, in % of one core (200 = both cores of two).
    RES[$name,machine]=$(awk -v b=$(( m1b - m0b )) -v t=$(( m1t - m0t )) -v n="$(nproc)" 'BEGIN { if (t > 0) printf "%.0f", b * 100 * n / t; else print "n/a" }')
    RES[$name,rss]=$(( $(status_kib "$PID" VmRSS) / 1024 ))
    RES[$name,hwm]=$(( $(status_kib "$PID" VmHWM) / 1024 ))
    RES[$name,rtp_pps]=$(awk -v d=$(( d1 - d0 )) -v s="$secs" 'BEGIN { printf "%.0f", d / s }')
    RES[$name,rtcp_pps]=$(awk -v d=$(( r1 - r0 )) -v s="$secs" 'BEGIN { printf "%.0f", d / s }')
    RES[$name,callers]=$callers; RES[$name,queues]=$nq; RES[$name,agents]=$agents
    RES[$name,qmin]=${qmin:-0}
    if [ "${qmin:-0}" -lt 2 ]; then
        log "$name: WARNING: a queue had ${qmin:-0} callers waiting at one sample: some free->ring samples may include waiting for a caller"
    fi
    log "$name: waiting min/mean/max ${RES[$name,waiting]} (fewest in one queue: ${qmin:-0}), daemon CPU ${RES[$name,cpu]}% (media ${RES[$name,cpu_media]}, engine ${RES[$name,cpu_engine]}, store ${RES[$name,cpu_store]}, other ${RES[$name,cpu_other]}), RSS ${RES[$name,rss]} MiB (HWM ${RES[$name,hwm]}), RTP to the sink ${RES[$name,rtp_pps]}/s (RTCP ${RES[$name,rtcp_pps]}/s), SIPp ${RES[$name,sipp_cpu]}%, agents ${RES[$name,agents_cpu]}%, whole machine ${RES[$name,machine]}% of a core, steal ${RES[$name,steal]}% (${RES[$name,quiet]})"
    # Drain: SIPp places no new call (soft quit) and ends once its callers are all served.
    local drain_timeout
    drain_timeout=$(awk -v l="$limit" -v m="$mu" 'BEGIN { printf "%d", 2 * l / m + 60 }')
    printf 'q' > "/dev/udp/127.0.0.1/$cp" || true
    t0=$(now_ns)
    while kill -0 "$SIPP_PID" 2>/dev/null; do
        if [ $(( ($(now_ns) - t0) / 1000000000 )) -ge "$drain_timeout" ]; then
            log "$name: SIPp still running ${drain_timeout}s after the soft quit: stopping it"; break
        fi
        sleep 0.5
    done
    stop_pid "$SIPP_PID"
    SIPP_PID=""
    stop_pid "$PROBE_PID"
    PROBE_PID=""
    wait "$SCHED_PID" 2>/dev/null || true
    RES[$name,drain_s]=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    RES[$name,ok]=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$WORK/sipp-$name.out")
    RES[$name,failed]=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$WORK/sipp-$name.out")
    log "$name: drained in ${RES[$name,drain_s]}s; caller calls: ${RES[$name,ok]} completed, ${RES[$name,failed]} failed"
    if [ "$peak" -lt "$callers" ]; then
        log "$name: INVALID: at most $peak callers waited (wanted $callers)"; STATUS=1
    fi
    if awk -v f="${RES[$name,failed]}" -v o="${RES[$name,ok]}" 'BEGIN { exit !(f * 1000 >= (f + o) || o == 0) }'; then
        log "$name: INVALID: ${RES[$name,failed]} of $(( RES[$name,ok] + RES[$name,failed] )) caller calls failed (see $WORK/sipp-$name.err)"; STATUS=1
    fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run_phase baseline "$BASE_CALLERS" "$BASE_QUEUES" "$BASE_WINDOW"
run_phase full "$CALLERS" "$QUEUES" "$WINDOW"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
kill -0 "$PID" 2>/dev/null || { log "INVALID: the daemon is gone"; STATUS=1; }
stop_pid "$AGENTS_PID"
AGENTS_PID=""
for name in baseline full; do
    python3 "$HERE/stats.py" latency "$WORK/samples.txt" "${RES[$name,t0]}" "${RES[$name,t1]}" > "$WORK/latency-$name.json"
    n=$(json_field "$WORK/latency-$name.json" 'd["n"]')
    RES[$name,n]=$n
    ms() { json_field "$WORK/latency-$name.json" "round(d.get('$1', 0) / 1000, 2) if d['n'] else None"; }
    RES[$name,lat]="$(ms p50_us) / $(ms p99_us) / $(ms max_us)"
    RES[$name,rate]=$(awk -v n="$n" -v s="${RES[$name,secs]}" 'BEGIN { if (n != "n/a" && s > 0) printf "%.1f", n / s; else print "n/a" }')
    log "$name: $n free->ring samples, p50/p99/max ${RES[$name,lat]} ms; slowest: $(json_field "$WORK/latency-$name.json" 'd.get("slowest")')"
    if [ "$n" = "n/a" ] || [ "$n" = 0 ]; then log "$name: INVALID: no latency samples"; STATUS=1; fi
    python3 "$HERE/stats.py" probe "$WORK/probe.txt" "${RES[$name,t0]}" "${RES[$name,t1]}" > "$WORK/probe-$name.json"
    pj() { json_field "$WORK/probe-$name.json" "d.get('$1')"; }
    RES[$name,probe]="$(pj missing_pct) % / $(pj gaps_over_30ms) / $(pj max_gap_ms) ms ($(pj n) pkts, $(pj duration_s) s)"
    log "$name: probe caller's music: $(cat "$WORK/probe-$name.json")"
    log "$name: free->ring samples over $OUTLIER_MS ms, grouped by when they rang, with what the daemon's threads and the machine did meanwhile:"
    python3 "$HERE/stats.py" outliers "$WORK/samples.txt" "$WORK/sched-$name.txt" "${RES[$name,t0]}" "${RES[$name,t1]}" "$OUTLIER_MS" \
        | tee "$WORK/outliers-$name.txt" >&2
    RES[$name,outliers]=$(tail -1 "$WORK/outliers-$name.txt" | sed 's/^ *//')
done
log "agents: $(cat "$WORK/agents.json" 2>/dev/null || echo 'no summary')"
stop_servers
# What the daemon logged above INFO.
WARNINGS=$(grep -c '"level":"\(WARN\|ERROR\)"' "$WORK/sentralbord.log" || true)
if [ "$WARNINGS" != 0 ]; then
    log "daemon log: $WARNINGS WARN/ERROR lines, by message:"
    grep '"level":"\(WARN\|ERROR\)"' "$WORK/sentralbord.log" \
        | python3 -c 'import sys, json, collections
c = collections.Counter()
for l in sys.stdin:
    try:
        d = json.loads(l); c[(d.get("level"), d.get("fields", {}).get("message"))] += 1
    except ValueError:
        pass
for (lvl, msg), n in c.most_common(10): print("  %6d %s %s" % (n, lvl, msg))' >&2
fi

# --- report ----------------------------------------------------------------------------
DATE=$(date -u +%Y-%m-%d)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "?")
DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src 2>/dev/null | grep -q . && echo "+dirty" || true)
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "| date | commit | run | queues / agents | callers waiting min / mean / max (fewest in one queue) | agent calls/s | free→ring p50 / p99 / max ms (samples) | daemon CPU % of a core | media / engine / store % | RSS / HWM MiB | MOH RTP out pkts/s (per waiting caller) | one caller's music: 20 ms slots missed / gaps > 30 ms / longest gap | caller calls ok / failed | SIPp / agents / whole machine CPU % of a core | steal % of a core |"
echo "|---|---|---|---|---|---:|---|---:|---|---|---|---|---|---|---:|"
for name in baseline full; do
    per=$(awk -v p="${RES[$name,rtp_pps]}" -v w="${RES[$name,waiting]}" 'BEGIN { split(w, a, " / "); if (a[2] > 0) printf "%.1f", p / a[2]; else print "n/a" }')
    echo "| $DATE | $COMMIT$DIRTY | $name: ${RES[$name,callers]} callers | ${RES[$name,queues]} / ${RES[$name,agents]} | ${RES[$name,waiting]} (${RES[$name,qmin]}) | ${RES[$name,rate]} | ${RES[$name,lat]} (${RES[$name,n]}) | ${RES[$name,cpu]} | ${RES[$name,cpu_media]} / ${RES[$name,cpu_engine]} / ${RES[$name,cpu_store]} | ${RES[$name,rss]} / ${RES[$name,hwm]} | ${RES[$name,rtp_pps]} ($per) | ${RES[$name,probe]} | ${RES[$name,ok]} / ${RES[$name,failed]} | ${RES[$name,sipp_cpu]} / ${RES[$name,agents_cpu]} / ${RES[$name,machine]} | ${RES[$name,steal]} |"
done
echo
echo "Command: \`$CMDLINE\`"
echo "Flow: SIPp callers (closed loop: callers + agents calls open, new calls at up to $FILL_RATE/s) to $QUEUES longest-idle queues (wrap-up 0), $APQ agents each, one asyncio process answering for every agent (180, 200 after $ANSWER_MS ms, BYE $TALK_MS ms after the ACK). Windows: baseline ${RES[baseline,secs]} s, full ${RES[full,secs]} s, each once the queues held the target (filled in ${RES[baseline,fill_s]} s / ${RES[full,fill_s]} s). free→ring: an agent's BYE leaving its socket to the kernel receive timestamp of its next INVITE. RSS idle before any call: $(( RSS_IDLE / 1024 )) MiB. RTP: packets the daemon sent to the callers' and agents' sink (kernel drop counter of a never-read socket); RTCP to the sink: baseline ${RES[baseline,rtcp_pps]}/s, full ${RES[full,rtcp_pps]}/s. Daemon log: $WARNINGS WARN/ERROR lines."
for name in baseline full; do echo "Latency outliers, $name: ${RES[$name,outliers]}."; done
echo "Machine: $(nproc) cores ($CPU) shared by the daemon, SIPp, the agents' process, the samplers and whatever else runs; load average before $LOAD_BEFORE, after $LOAD_AFTER; before the baseline ${RES[baseline,quiet]}, before the full run ${RES[full,quiet]}."
exit $STATUS
