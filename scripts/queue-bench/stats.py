#!/usr/bin/env python3
"""Measurements for scripts/bench-queues.sh (standard library only).

  stats.py latency SAMPLES T0 T1   free->ring samples (agents.py) with t_ring in [T0, T1]:
                                   one JSON object (n, p50/p90/p99/max/mean in us, the five
                                   slowest with their time after T0)
  stats.py threads PID             utime+stime clock ticks of PID's threads grouped by name:
                                   "media" (media-relay), "engine" (the tokio workers, named
                                   sentralbord: engine loop, transport, CLI-free runtime),
                                   "store" (store-writer, store-reader-N), "other"
  stats.py sink PORT               kernel counters of the UDP socket on 127.0.0.1:PORT from
                                   /proc/net/udp: "<drops> <rx_queue bytes>"
  stats.py probe FILE T0 T1        the probe caller's RTP (agents.py --probe-file) received in
                                   [T0, T1], its main stream: one JSON object (packets,
                                   duration, 20 ms slots without a packet, gaps > 30 ms, the
                                   longest gap, inter-arrival p99, frames the RTP timestamps
                                   skip, sequence numbers lost)
  stats.py sched PID OUT SECONDS   every 20 ms for SECONDS: one line to OUT with the wall
                                   time, the machine's steal (ms, all CPUs, read every 100 ms),
                                   runnable tasks (/proc/loadavg),
                                   and per thread group of PID the CPU time run and the time
                                   spent runnable but waiting for a CPU (/proc/.../schedstat,
                                   ms): "t steal running engine_run engine_wait media_run
                                   media_wait store_run store_wait"
  stats.py outliers SAMPLES SCHED T0 T1 MS
                                   every free->ring sample over MS ms in [T0, T1], grouped by
                                   when it rang (within 5 ms), with what the sched file saw
                                   between the agent's BYE and the ring and the likely cause:
                                   one text line per group, then a summary line
  stats.py status FILE [N]         reads `sentralbord queue status` output: prints
                                   "<waiting> <available> <busy> <logged_in> <queues>
                                   <fewest waiting in one queue>", the last over the queues
                                   Q01..QN only when N is given (the ones a run calls)
"""

import glob
import json
import math
import sys


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency(path, t0, t1):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            try:
                t, us, agent = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError:
                continue
            if t0 <= t <= t1:
                rows.append((us, t, agent))
    values = sorted(r[0] for r in rows)
    out = {"n": len(values)}
    if values:
        out.update({
            "p50_us": percentile(values, 50),
            "p90_us": percentile(values, 90),
            "p99_us": percentile(values, 99),
            "max_us": values[-1],
            "mean_us": sum(values) / len(values),
            "slowest": [{"us": us, "at_s": round(t - t0, 3), "agent": a}
                        for us, t, a in sorted(rows, reverse=True)[:5]],
        })
    print(json.dumps(out))


def probe(path, t0, t1):
    streams = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            try:
                t, seq, ts, ssrc = float(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])
            except ValueError:
                continue
            if t0 <= t <= t1:
                streams.setdefault(ssrc, []).append((t, seq, ts))
    if not streams:
        print(json.dumps({"n": 0}))
        return
    rows = sorted(max(streams.values(), key=len))
    n = len(rows)
    duration = rows[-1][0] - rows[0][0]
    slots = int(round(duration / 0.020)) + 1
    gaps = [b[0] - a[0] for a, b in zip(rows, rows[1:])]
    skipped = lost = 0
    for (_, s1, ts1), (_, s2, ts2) in zip(rows, rows[1:]):
        dseq = (s2 - s1) % 65536
        dts = (ts2 - ts1) % (1 << 32)
        lost += max(0, dseq - 1)
        skipped += max(0, int(round(dts / 160.0)) - dseq)
    out = {
        "n": n,
        "streams": len(streams),
        "duration_s": round(duration, 3),
        "slots": slots,
        "missing_pct": round(100.0 * max(0, slots - n) / slots, 2),
        "gaps_over_30ms": sum(1 for g in gaps if g > 0.030),
        "max_gap_ms": round(max(gaps) * 1000, 1) if gaps else None,
        "p99_interarrival_ms": round(percentile(sorted(gaps), 99) * 1000, 1) if gaps else None,
        "ts_skipped_frames": skipped,
        "seq_lost": lost,
    }
    print(json.dumps(out))


def thread_list(pid):
    """(group, open schedstat fd) of each of PID's threads."""
    import os
    out = []
    for path in glob.glob("/proc/%s/task/*" % pid):
        try:
            with open(path + "/comm") as f:
                group = group_of(f.read().strip())
            out.append((group, os.open(path + "/schedstat", os.O_RDONLY)))
        except OSError:
            continue
    return out


def schedstat_groups(threads_of_pid):
    import os
    run = {"media": 0, "engine": 0, "store": 0, "other": 0}
    wait = dict(run)
    for g, fd in threads_of_pid:
        try:
            r, w, _ = os.pread(fd, 128, 0).split()
        except (OSError, ValueError):
            continue
        run[g] += int(r)
        wait[g] += int(w)
    return run, wait


def sched(pid, out, seconds):
    """Every 20 ms: the daemon's threads' schedstat; every 100 ms the machine's steal (the
    whole of /proc/stat is costly to read); procs_running from /proc/loadavg each time."""
    import os
    import time
    hz = os.sysconf("SC_CLK_TCK")
    end = time.time() + seconds
    threads_of_pid = thread_list(pid)
    loadavg = os.open("/proc/loadavg", os.O_RDONLY)
    steal = 0
    n = 0
    with open(out, "w") as f:
        while time.time() < end:
            if n % 50 == 49:
                for _g, fd in threads_of_pid:
                    os.close(fd)
                threads_of_pid = thread_list(pid)
                if not threads_of_pid:
                    break
            if n % 5 == 0:
                with open("/proc/stat") as st:
                    steal = int(st.readline().split()[8])
            n += 1
            running = int(os.pread(loadavg, 64, 0).split()[3].split(b"/")[0])
            run, wait = schedstat_groups(threads_of_pid)
            f.write("%.4f %.0f %d %.3f %.3f %.3f %.3f %.3f %.3f\n" % (
                time.time(), steal * 1000.0 / hz, running,
                run["engine"] / 1e6, wait["engine"] / 1e6, run["media"] / 1e6,
                wait["media"] / 1e6, run["store"] / 1e6, wait["store"] / 1e6))
            time.sleep(0.02)


def outliers(samples_path, sched_path, t0, t1, threshold_ms):
    import bisect
    rows = []
    with open(sched_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 9:
                rows.append([float(x) for x in parts])
    times = [r[0] for r in rows]

    def delta(a, b):
        """What the counters moved between the last line at or before a and the first at or after b."""
        i = max(0, bisect.bisect_right(times, a) - 1)
        j = min(len(rows) - 1, bisect.bisect_left(times, b))
        if not rows or j <= i:
            return None
        x, y = rows[i], rows[j]
        return {
            "span_ms": round((y[0] - x[0]) * 1000, 1),
            "steal_ms": round(y[1] - x[1], 1),
            "max_running": int(max(r[2] for r in rows[i:j + 1])),
            "engine_run_ms": round(y[3] - x[3], 1),
            "engine_wait_ms": round(y[4] - x[4], 1),
            "media_run_ms": round(y[5] - x[5], 1),
            "media_wait_ms": round(y[6] - x[6], 1),
        }

    slow = []
    with open(samples_path) as f:
        for line in f:
            parts = line.split()
            try:
                t, us = float(parts[0]), float(parts[1])
            except (ValueError, IndexError):
                continue
            if t0 <= t <= t1 and us > threshold_ms * 1000:
                slow.append((t, us))
    slow.sort()
    clusters = []
    for t, us in slow:
        if clusters and t - clusters[-1]["last"] <= 0.005:
            c = clusters[-1]
            c["n"] += 1
            c["last"] = t
            c["max_ms"] = max(c["max_ms"], us / 1000)
            c["free"] = min(c["free"], t - us / 1e6)
        else:
            clusters.append({"first": t, "last": t, "n": 1, "max_ms": us / 1000, "free": t - us / 1e6})
    causes = {}
    for c in clusters:
        d = delta(c["free"], c["last"])
        half = c["max_ms"] / 2
        if d is None:
            cause = "no sched data"
        elif d["engine_wait_ms"] >= half:
            cause = "engine threads runnable, waiting for a CPU"
        elif d["steal_ms"] >= half:
            cause = "hypervisor steal"
        elif d["engine_run_ms"] >= half:
            cause = "engine threads busy"
        else:
            cause = "not explained by CPU"
        causes[cause] = causes.get(cause, 0) + c["n"]
        print("  at %.3f s: %d sample(s) up to %.1f ms: %s (%s)" % (
            c["first"] - t0, c["n"], c["max_ms"], cause,
            ", ".join("%s %s" % (k, v) for k, v in (d or {}).items())))
    print("  %d samples over %s ms in %d clusters; by cause (samples): %s" % (
        len(slow), threshold_ms, len(clusters),
        "; ".join("%s %d" % kv for kv in sorted(causes.items(), key=lambda kv: -kv[1])) or "none"))


def group_of(name):
    if name.startswith("media-relay"):
        return "media"
    if name.startswith("sentralbord"):
        return "engine"
    if name.startswith("store-"):
        return "store"
    return "other"


def threads(pid):
    totals = {"media": 0, "engine": 0, "store": 0, "other": 0}
    for path in glob.glob("/proc/%s/task/*/stat" % pid):
        try:
            with open(path) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        rest = stat[stat.rfind(")") + 2:].split()
        # After "pid (comm) ": state is field 3, utime field 14, stime field 15.
        totals[group_of(name)] += int(rest[11]) + int(rest[12])
    for k, v in totals.items():
        print(k, v)


def sink(port):
    want = "0100007F:%04X" % int(port)
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[1] == want:
                rx_queue = int(cols[4].split(":")[1], 16)
                print(cols[-1], rx_queue)
                return
    print("0 0")


def status(path, first=None):
    waiting = available = busy = logged_in = queues = 0
    fewest = None
    with open(path) as f:
        lines = [l for l in f if l.strip()]
    if not lines or not lines[0].startswith("QUEUE"):
        print("0 0 0 0 0 0")
        return
    header = lines[0]
    cols = {name: header.index(name) for name in ("WAITING", "AVAILABLE", "LOGGED IN", "BUSY")}

    def cell(line, name):
        start = cols[name]
        word = line[start:].split()
        return int(word[0]) if word and word[0].isdigit() else 0

    for line in lines[1:]:
        queues += 1
        w = cell(line, "WAITING")
        waiting += w
        name = line.split()[0] if line.split() else ""
        called = first is None or (name[1:].isdigit() and int(name[1:]) <= first)
        if called:
            fewest = w if fewest is None else min(fewest, w)
        available += cell(line, "AVAILABLE")
        busy += cell(line, "BUSY")
        logged_in += cell(line, "LOGGED IN")
    print(waiting, available, busy, logged_in, queues, fewest or 0)


def main(argv):
    if len(argv) == 5 and argv[1] == "latency":
        latency(argv[2], float(argv[3]), float(argv[4]))
    elif len(argv) == 5 and argv[1] == "probe":
        probe(argv[2], float(argv[3]), float(argv[4]))
    elif len(argv) == 5 and argv[1] == "sched":
        sched(argv[2], argv[3], float(argv[4]))
    elif len(argv) == 7 and argv[1] == "outliers":
        outliers(argv[2], argv[3], float(argv[4]), float(argv[5]), float(argv[6]))
    elif len(argv) == 3 and argv[1] == "threads":
        threads(argv[2])
    elif len(argv) == 3 and argv[1] == "sink":
        sink(argv[2])
    elif len(argv) in (3, 4) and argv[1] == "status":
        status(argv[2], int(argv[3]) if len(argv) == 4 else None)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
