#!/usr/bin/env bash
# Registrar benchmark: SIPp against sentralbord and, in the same run, against Kamailio
# configured as a digest-authenticating registrar (scripts/kamailio/kamailio-registrar.cfg).
#
# Measures, for each server, over a fixed number of SIPp "calls":
#   - OPTIONS:  one OPTIONS -> 200 transaction per call                (transactions/s)
#   - REGISTER: REGISTER -> 401 -> REGISTER with MD5 digest -> 200     (registrations/s;
#               each registration is two transactions and one real digest check + binding save)
# plus the server's own CPU time per 1000 operations (all its processes, user+system),
# which stays meaningful when SIPp itself is the bottleneck on this 2-core machine.
#
# Same users (BENCH_USERS of them, cycled sequentially), same SIPp rate mode (closed
# loop, SIPp -users: BENCH_CONCURRENCY calls in flight, a new one as soon as one ends),
# same transport, loopback only, nothing pinned. Each measurement is preceded by a
# warm-up of a tenth of its size and repeated BENCH_REPEAT times, the two servers
# interleaved run by run (both are up for the whole measurement; the idle one costs
# nothing); the median run (by rate) is reported, because a shared machine is noisy.
#
# Usage:
#   scripts/bench-register.sh                   # both servers
#   scripts/bench-register.sh --only kamailio   # just the reference (works without sentralbord)
#   scripts/bench-register.sh --only sentralbord
# Environment: BENCH_COUNT (20000) BENCH_USERS (1000) BENCH_CONCURRENCY (100) BENCH_REPEAT (3)
#              BENCH_TRANSPORT (u1 = UDP one socket; t1 = TCP one connection)
#              KAMAILIO_CHILDREN (number of cores) BENCH_KEEP=1 keeps the work directory.
# Output: a markdown table (header + one row per scenario) to paste into BENCHMARKS.md,
# and the exact command line. Exit status is non-zero if any run failed.
set -euo pipefail

ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="${2:-}"; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$ONLY" in ""|kamailio|sentralbord) ;; *) echo "--only takes kamailio or sentralbord" >&2; exit 2 ;; esac

COUNT="${BENCH_COUNT:-20000}"
USERS="${BENCH_USERS:-1000}"
CONC="${BENCH_CONCURRENCY:-100}"
REPEAT="${BENCH_REPEAT:-3}"
TRANSPORT="${BENCH_TRANSPORT:-u1}"
# Kamailio's SIP worker processes default to the number of cores, the same parallelism
# sentralbord's runtime gets (one tokio worker thread per core): one server instance each,
# both free to use the whole machine.
KAM_CHILDREN="${KAMAILIO_CHILDREN:-$(nproc)}"
REALM="bench.test"
TENANT="bench"
WARMUP=$(( COUNT / 10 ))
[ "$WARMUP" -ge 1 ] || WARMUP=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMDLINE="$(printf '%q ' "$0" "$@")"
CMDLINE="BENCH_COUNT=$COUNT BENCH_USERS=$USERS BENCH_CONCURRENCY=$CONC BENCH_REPEAT=$REPEAT BENCH_TRANSPORT=$TRANSPORT KAMAILIO_CHILDREN=$KAM_CHILDREN scripts/bench-register.sh${ONLY:+ --only $ONLY}"
WORK="$(mktemp -d /tmp/sentralbord-bench.XXXXXX)"
CLK_TCK="$(getconf CLK_TCK)"
# Per server (kamailio, sentralbord): its SIP port, its main pid, all of its pids.
declare -A PORT MAIN_PID PIDS
SERVERS=()

# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench-common.sh"

cleanup() {
    stop_servers || true
    if [ "${BENCH_KEEP:-0}" = "1" ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

need_pkg sipp sip-tester
need_pkg md5sum coreutils
need_pkg ss iproute2
if [ "$ONLY" != "sentralbord" ]; then
    need_pkg kamailio kamailio
fi

# --- helpers -------------------------------------------------------------------------





# Users: u00001..uNNNNN in realm bench.test, password "pw-<user>".
write_users() {
    local i u
    printf 'SEQUENTIAL\n' > "$WORK/users.csv"
    for i in $(seq 1 "$USERS"); do
        u=$(printf 'u%05d' "$i")
        printf '%s;%s;pw-%s\n' "$u" "$REALM" "$u" >> "$WORK/users.csv"
    done
    # One user with a wrong password: the honesty check that digests are really verified.
    printf 'SEQUENTIAL\nu00001;%s;not-the-password\n' "$REALM" > "$WORK/wrong.csv"
}

# run_sipp SERVER LABEL SCENARIO COUNT CSV -> sets RUN_OK RUN_FAILED RUN_NS RUN_TICKS RUN_SIPP_CPU RUN_RC
run_sipp() {
    local server="$1" label="$2" scenario="$3" count="$4" csv="$5" port out t0 t1 c0 c1 rc
    local -a pids
    port="${PORT[$server]}"
    read -r -a pids <<< "${PIDS[$server]}"
    out="$WORK/sipp-$label.out"
    c0=$(cpu_ticks "${pids[@]}")
    t0=$(now_ns)
    set +e
    # `time` reports SIPp's own CPU: if it is near 1 core, SIPp is the bottleneck.
    { TIMEFORMAT='%U %S'; time timeout $(( 60 + count / 50 )) sipp "127.0.0.1:$port" \
        -sf "$ROOT/scripts/sipp/$scenario" -inf "$csv" -t "$TRANSPORT" \
        -i 127.0.0.1 -auth_uri "$REALM" \
        -m "$count" -users "$CONC" \
        -max_recv_loops 10000 -max_sched_loops 10000 \
        -timeout $(( 30 + count / 100 ))s -recv_timeout 5000 \
        -nostdin -trace_err -error_file "$WORK/sipp-$label.err" \
        > "$out" 2>&1; } 2> "$WORK/sipp-$label.time"
    rc=$?
    set -e
    t1=$(now_ns)
    c1=$(cpu_ticks "${pids[@]}")
    RUN_NS=$(( t1 - t0 ))
    RUN_TICKS=$(( c1 - c0 ))
    RUN_OK=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$out")
    RUN_FAILED=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); v = $3 } END { print v + 0 }' "$out")
    RUN_SIPP_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/sipp-$label.time" 2>/dev/null || echo "?")
    RUN_RC=$rc
}

# One measured run of SERVER for scenario SC, repetition R: logs it, appends to RUNS.
declare -A RES RUNS
measure_once() {
    local name="$1" sc="$2" r="$3" label per_s cpu_ms secs
    label="$name-$sc-$r"
    run_sipp "$name" "$label" "bench-$sc.xml" "$COUNT" "$WORK/users.csv"
    if [ "$RUN_RC" != "0" ] || [ "$RUN_OK" != "$COUNT" ]; then
        log "$label: sipp exit $RUN_RC, $RUN_OK ok, $RUN_FAILED failed (see $WORK/sipp-$label.out, kept)"
        BENCH_KEEP=1
        RES[$name,$sc,failed]=1
    fi
    per_s=$(awk -v n="$RUN_OK" -v ns="$RUN_NS" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
    cpu_ms=$(awk -v t="$RUN_TICKS" -v hz="$CLK_TCK" -v n="$RUN_OK" \
        'BEGIN { if (n > 0) printf "%.1f", (t / hz * 1000) / (n / 1000); else print "n/a" }')
    secs=$(awk -v ns="$RUN_NS" 'BEGIN { printf "%.2f", ns / 1e9 }')
    log "$label: $RUN_OK/$COUNT ok in $secs s = $per_s/s, server CPU $cpu_ms ms per 1000, sipp CPU ${RUN_SIPP_CPU} s"
    RUNS[$name,$sc]+="$per_s $cpu_ms $RUN_SIPP_CPU $secs"$'\n'
}

# Measures every started server, interleaved run by run (kamailio, sentralbord,
# kamailio, ...) so that background load on a shared machine hits both alike.
measure_all() {
    local name sc r per_s cpu_ms sippcpu secs live=()
    # Honesty check first: a wrong password must not register.
    for name in "${SERVERS[@]}"; do
        run_sipp "$name" "$name-wrongpw" bench-register.xml 1 "$WORK/wrong.csv"
        if [ "$RUN_OK" != "0" ]; then
            log "$name ACCEPTED A WRONG PASSWORD: digest is not verified, its results are void"
            RES[$name,options,failed]=1
            RES[$name,register,failed]=1
            STATUS=1
        else
            live+=("$name")
        fi
    done
    [ "${#live[@]}" -gt 0 ] || return 0
    for sc in options register; do
        for name in "${live[@]}"; do
            run_sipp "$name" "$name-$sc-warmup" "bench-$sc.xml" "$WARMUP" "$WORK/users.csv"
        done
        for r in $(seq 1 "$REPEAT"); do
            for name in "${live[@]}"; do
                measure_once "$name" "$sc" "$r"
            done
        done
        for name in "${live[@]}"; do
            # Median by rate: the middle line once sorted numerically.
            read -r per_s cpu_ms sippcpu secs < <(printf '%s' "${RUNS[$name,$sc]}" | sort -n \
                | sed -n "$(( (REPEAT + 1) / 2 ))p")
            RES[$name,$sc,rate]=$per_s
            RES[$name,$sc,cpu]=$cpu_ms
            RES[$name,$sc,sippcpu]=$sippcpu
            RES[$name,$sc,secs]=$secs
            RES[$name,$sc,all]=$(printf '%s' "${RUNS[$name,$sc]}" | awk '{ printf "%s ", $1 }')
        done
    done
}

# --- kamailio ------------------------------------------------------------------------
start_kamailio() {
    local db="$WORK/kamailio-db" port i u ha1 pid
    mkdir -p "$db" "$WORK/kamailio-run"
    # db_text tables: version (table versions kamailio 5.x checks) and subscriber.
    printf 'id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n0:location:9\n' > "$db/version"
    printf 'id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n' > "$db/subscriber"
    for i in $(seq 1 "$USERS"); do
        u=$(printf 'u%05d' "$i")
        ha1=$(printf '%s:%s:%s' "$u" "$REALM" "pw-$u" | md5sum | cut -d' ' -f1)
        # The plain password column is left as "-": only the HA1 is used (calculate_ha1=0).
        printf '%d:%s:%s:-:%s:-\n' "$i" "$u" "$REALM" "$ha1" >> "$db/subscriber"
    done
    port=$(free_port)
    log "kamailio $(kamailio -v 2>/dev/null | head -1 | awk '{print $2}') on 127.0.0.1:$port, children=$KAM_CHILDREN"
    kamailio -f "$ROOT/scripts/kamailio/kamailio-registrar.cfg" \
        -A "KAMAILIO_DBTEXT_DIR=\"text://$db\"" -A "KAMAILIO_CHILDREN=$KAM_CHILDREN" \
        -l "udp:127.0.0.1:$port" -l "tcp:127.0.0.1:$port" \
        -P "$WORK/kamailio-run/kamailio.pid" -Y "$WORK/kamailio-run" -w "$WORK/kamailio-run" \
        -m 256 -M 16 > "$WORK/kamailio.log" 2>&1
    for i in $(seq 1 100); do
        [ -s "$WORK/kamailio-run/kamailio.pid" ] && ss -Hlnu "sport = :$port" | grep -q . && break
        sleep 0.1
    done
    pid=$(cat "$WORK/kamailio-run/kamailio.pid" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        log "kamailio did not start:"; tail -20 "$WORK/kamailio.log" >&2; BENCH_KEEP=1; return 1
    fi
    # All of kamailio's processes (main + forked workers/timers) count for CPU.
    MAIN_PID[kamailio]=$pid
    PIDS[kamailio]="$pid $(pgrep -P "$pid" | tr '\n' ' ' || true)"
    PORT[kamailio]=$port
    KAM_VERSION=$(kamailio -v 2>/dev/null | head -1 | awk '{print $3}')
    SERVERS+=(kamailio)
}

# --- sentralbord -----------------------------------------------------------------------
start_sentralbord() {
    local bin="$ROOT/target/release/sentralbord" i u port pid
    # Explicit checks below: `set -e` does not apply inside a function called as `f || ...`.
    log "building sentralbord (release)"
    if ! (cd "$ROOT" && cargo build --release --quiet --bin sentralbord) >&2; then
        log "cargo build --release failed"; return 1
    fi
    export SENTRALBORD_STORE__PATH="$WORK/sentralbord.db"
    export SENTRALBORD_PROFILES__DIR="$WORK/profiles"
    mkdir -p "$WORK/profiles"
    # MD5 must be offered (first, or alone): SIPp 3.6 computes only MD5 digests and fails
    # on a first challenge with algorithm=SHA-256. The key is the one tests/common/mod.rs
    # uses (MD5_FIRST_PROFILE_LINES); keep the two in sync.
    cat > "$WORK/profiles/phones.toml" <<EOF
name = "phones"
kind = "phones"
realm = "$REALM"
digest_algorithms = ["MD5"]

[[listen]]
address = "127.0.0.1:0"
transports = ["udp", "tcp"]
EOF
    if ! "$bin" tenant add "$TENANT" >&2; then
        log "sentralbord tenant add failed"; BENCH_KEEP=1; return 1
    fi
    for i in $(seq 1 "$USERS"); do
        u=$(printf 'u%05d' "$i")
        if ! printf '%s' "pw-$u" | "$bin" user add --tenant "$TENANT" --name "Bench User $i" \
            --extension "$(( 10000 + i ))" --username "$u" --realm "$REALM" --password-stdin >/dev/null; then
            log "sentralbord user add $u failed"; BENCH_KEEP=1; return 1
        fi
    done
    log "provisioned $USERS users"
    "$bin" run > "$WORK/sentralbord.out" 2> "$WORK/sentralbord.log" &
    pid=$!
    MAIN_PID[sentralbord]=$pid
    for i in $(seq 1 200); do
        grep -qx 'ready' "$WORK/sentralbord.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -qx 'ready' "$WORK/sentralbord.out" 2>/dev/null; then
        log "sentralbord did not become ready:"; tail -20 "$WORK/sentralbord.log" >&2; BENCH_KEEP=1; return 1
    fi
    local want=udp
    [ "$TRANSPORT" = "t1" ] && want=tcp
    # "listening profile=phones transport=udp addr=127.0.0.1:PORT" (transport in any case).
    port=$(awk -v want="$want" 'tolower($0) ~ ("^listening profile=phones transport=" want " addr=127\\.0\\.0\\.1:[0-9]+$") {
            n = split($0, parts, ":"); print parts[n]; exit }' "$WORK/sentralbord.out")
    if [ -z "$port" ]; then
        log "no phones/$want listener in sentralbord's output"; BENCH_KEEP=1; return 1
    fi
    log "sentralbord on 127.0.0.1:$port"
    # One process: /proc/<pid>/stat counts all of its threads.
    PIDS[sentralbord]="$pid"
    PORT[sentralbord]=$port
    SERVERS+=(sentralbord)
}

write_users
STATUS=0
KAM_VERSION="-"
if [ "$ONLY" != "kamailio" ]; then start_sentralbord || STATUS=1; fi
if [ "$ONLY" != "sentralbord" ]; then start_kamailio || STATUS=1; fi
measure_all
stop_servers

# --- report ----------------------------------------------------------------------------
val() { echo "${RES[$1]:-n/a}"; }
ratio() { ratio_of "${RES[sentralbord,$1,rate]:-}" "${RES[kamailio,$1,rate]:-}"; } # sentralbord/kamailio
DATE=$(date -u +%Y-%m-%d)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "?")
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
for s in options register; do
    for n in sentralbord kamailio; do
        if [ -n "${RES[$n,$s,failed]:-}" ]; then RES[$n,$s,rate]="FAILED"; STATUS=1; fi
    done
done
echo
echo "| date | commit | scenario | sentralbord /s | kamailio ${KAM_VERSION} /s | ratio | sentralbord CPU ms/1k | kamailio CPU ms/1k |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
echo "| $DATE | $COMMIT | OPTIONS transactions | $(val sentralbord,options,rate) | $(val kamailio,options,rate) | $(ratio options) | $(val sentralbord,options,cpu) | $(val kamailio,options,cpu) |"
echo "| $DATE | $COMMIT | REGISTER+MD5 digest registrations (2 transactions each) | $(val sentralbord,register,rate) | $(val kamailio,register,rate) | $(ratio register) | $(val sentralbord,register,cpu) | $(val kamailio,register,cpu) |"
echo
echo "Command: \`$CMDLINE\`"
echo "Runs (rate per run, median reported): sentralbord options [$(val sentralbord,options,all)] register [$(val sentralbord,register,all)]; kamailio options [$(val kamailio,options,all)] register [$(val kamailio,register,all)]."
echo "Setup: median of $REPEAT runs (the servers interleaved run by run) of $COUNT SIPp calls each after $WARMUP warm-up, $USERS users, at most $CONC in flight, SIPp -t $TRANSPORT, loopback, $(nproc) cores ($CPU), nothing pinned."
echo "kamailio: children=$KAM_CHILDREN (SIP worker processes; sentralbord: one process, one runtime worker thread per core), auth_db on db_text (HA1 stored), usrloc in memory only (db_mode=0); sentralbord persists bindings in SQLite."
echo "SIPp CPU seconds per measured run (a value near the run's duration means SIPp was the bottleneck):" \
    "sentralbord options $(val sentralbord,options,sippcpu)/$(val sentralbord,options,secs) s," \
    "register $(val sentralbord,register,sippcpu)/$(val sentralbord,register,secs) s;" \
    "kamailio options $(val kamailio,options,sippcpu)/$(val kamailio,options,secs) s," \
    "register $(val kamailio,register,sippcpu)/$(val kamailio,register,secs) s."
exit $STATUS
