//! The load generator of `scripts/bench-media.sh`: plays both far ends of N relayed G.711
//! calls and measures what comes back through the relay.
//!
//! ```text
//! cargo run --release --example media_load -- --relays FILE \
//!     [--caller-far 127.0.0.2:20000] [--callee-far 127.0.0.3:20000] [--far-sockets 0] \
//!     [--threads 2] [--warmup 5] [--duration 20] [--drain-ms 1000] [--flood] \
//!     [--tick-us 250] [--reads-per-wake 512] [--cpu-pid PID]... [--receive-buffer 4194304]
//! ```
//!
//! `FILE` (or `-` for stdin) holds one line per call, `<session> <caller relay addr>
//! <callee relay addr>` (lines starting with `#` are skipped), as printed by
//! `examples/media_relay_server.rs` and `scripts/media-bench/ng-calls.py`. The far-end
//! options must be those given to the relay side: session `i`'s caller far end is
//! `caller-far` with the port raised by `2 * (i mod M)`, `M` = `--far-sockets` (0: one
//! socket per session and side), likewise its callee.
//!
//! Every far end sends a 172-byte PCMU packet (12-byte RTP header, 160 bytes of payload)
//! every 20 ms to its relay address: 50 packets a second in each direction of each call,
//! the calls' start times spread evenly over the 20 ms (the callee side 10 ms after the
//! caller side). A sender thread wakes at most once per `--tick-us` and sends what fell
//! due since (each wakeup costs a timer and a context switch; packets then leave in
//! bursts of at most one tick); `--tick-us 0` never sleeps (busy-polls: every packet
//! leaves on time, at the price of one core per thread). Each wakeup then reads at most
//! `--reads-per-wake` ready far-end sockets (up to 32 datagrams each, level-triggered
//! epoll, so the others come next): fewer lets datagrams gather in the far-end sockets
//! (4 MiB receive buffers) and one `recvmmsg` return several, which saves system calls;
//! the kernel receive timestamps keep the latency exact. The payload starts with a tag:
//! magic, session, direction, sequence number and the send time (CLOCK_REALTIME, ns).
//! With `--flood` every stream sends back to back instead (for the packets-per-CPU-second
//! reference; loss and latency then mean little).
//!
//! Measured over the window that starts after the warm-up and lasts `--duration` seconds,
//! by the send time carried in each packet:
//! - packets sent, and received at the right far end (loss = 1 - received / sent; the
//!   receivers keep reading `--drain-ms` after the senders stop);
//! - the one-way latency through the relay: kernel receive timestamp (`SO_TIMESTAMPNS`,
//!   taken when the relay's packet enters loopback) minus send time, so the generator's
//!   own delay in reading does not count; `app_latency_us` is the same measured when the
//!   generator read the packet;
//! - CPU time over the window of each `--cpu-pid` process (utime + stime from /proc, all
//!   its threads), of this process, and of the whole machine (busy and steal time of all
//!   CPUs from /proc/stat: what else ran shows there);
//! - the generator's own pace: `send_lag_us` and `late_sends_pct` (sent over 1 ms late),
//!   and `offered_pct`, the packets sent in the window against the 50 per second per
//!   direction and call asked for: a generator that cannot keep up shows there.
//!
//! Output: one JSON line on stdout. Bounded: fixed sessions, fixed duration.

// A benchmark harness measures wall time: the clock rule of the daemon does not apply.
#![allow(clippy::disallowed_methods)]

#[path = "support/load.rs"]
mod load;
use load::*;

use std::io::{self, BufRead};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// RTP header + 20 ms of PCMU.
const PACKET: usize = 172;
/// Tag in the payload: magic, session, direction, sequence, send time.
const MAGIC: u32 = 0x4d4c_4731;
const TAG_END: usize = 12 + 4 + 4 + 4 + 4 + 8;
/// The packetisation interval.
const PERIOD_NS: u64 = 20_000_000;
/// Latency histogram range, microseconds (1 µs buckets; beyond: the last one).
const HISTOGRAM_US: usize = 200_000;
/// Epoll tokens from here on are RTCP sockets.
const RTCP_TOKEN: u64 = 1 << 32;
/// A send this late (µs) counts as late.
const LATE_US: u64 = 1000;

#[derive(Debug, Clone)]
struct Options {
    relays: String,
    caller_far: SocketAddr,
    callee_far: SocketAddr,
    far_sockets: usize,
    threads: usize,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
    flood: bool,
    cpu_pids: Vec<u32>,
    receive_buffer: usize,
    tick: Duration,
    reads_per_wake: usize,
}

fn parse_options() -> io::Result<Options> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut options = Options {
        relays: String::new(),
        caller_far: SocketAddr::from(([127, 0, 0, 2], 20_000)),
        callee_far: SocketAddr::from(([127, 0, 0, 3], 20_000)),
        far_sockets: 0,
        threads: 2,
        warmup: Duration::from_secs(5),
        duration: Duration::from_secs(20),
        drain: Duration::from_millis(1000),
        flood: false,
        cpu_pids: Vec::new(),
        receive_buffer: 4 << 20,
        tick: Duration::from_micros(250),
        reads_per_wake: 512,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--flood" {
            options.flood = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| bad(format!("{flag} needs a value")))?;
        let invalid = || bad(format!("bad value for {flag}: {value}"));
        let seconds = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 3600.0)
                .map(Duration::from_secs_f64)
        };
        match flag.as_str() {
            "--relays" => options.relays = value.clone(),
            "--caller-far" => options.caller_far = value.parse().map_err(|_| invalid())?,
            "--callee-far" => options.callee_far = value.parse().map_err(|_| invalid())?,
            "--far-sockets" => options.far_sockets = value.parse().map_err(|_| invalid())?,
            "--threads" => options.threads = value.parse().map_err(|_| invalid())?,
            "--warmup" => options.warmup = seconds(&value).ok_or_else(invalid)?,
            "--duration" => options.duration = seconds(&value).ok_or_else(invalid)?,
            "--drain-ms" => {
                options.drain = Duration::from_millis(value.parse().map_err(|_| invalid())?)
            }
            "--cpu-pid" => options.cpu_pids.push(value.parse().map_err(|_| invalid())?),
            "--tick-us" => {
                options.tick = Duration::from_micros(value.parse().map_err(|_| invalid())?)
            }
            "--reads-per-wake" => {
                options.reads_per_wake = value
                    .parse::<usize>()
                    .map_err(|_| invalid())?
                    .clamp(1, 4096)
            }
            "--receive-buffer" => options.receive_buffer = value.parse().map_err(|_| invalid())?,
            _ => return Err(bad(format!("unknown option {flag}"))),
        }
    }
    if options.relays.is_empty() {
        return Err(bad("--relays FILE is required".into()));
    }
    options.threads = options.threads.clamp(1, 64);
    Ok(options)
}

/// One call's relay addresses: where its caller and its callee far end send.
#[derive(Debug, Clone, Copy)]
struct Relays {
    caller: SocketAddr,
    callee: SocketAddr,
}

/// `<index> <caller relay addr> <callee relay addr>`, the index being `expected`.
fn parse_relay_line(line: &str, expected: usize) -> Option<Relays> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [index, caller, callee] = fields.as_slice() else {
        return None;
    };
    if index.parse::<usize>().ok()? != expected {
        return None;
    }
    Some(Relays {
        caller: caller.parse().ok()?,
        callee: callee.parse().ok()?,
    })
}

fn read_relays(path: &str) -> io::Result<Vec<Relays>> {
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(io::BufReader::new(io::stdin()))
    } else {
        Box::new(io::BufReader::new(std::fs::File::open(path)?))
    };
    let mut relays = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(relay) = parse_relay_line(line, relays.len()) else {
            return Err(io::Error::other(format!(
                "bad relay line (expected '{} <caller addr> <callee addr>'): {line}",
                relays.len()
            )));
        };
        relays.push(relay);
    }
    if relays.is_empty() {
        return Err(io::Error::other("no relay lines"));
    }
    Ok(relays)
}

/// The far end of pair `pair` on one side: `base` with the port raised by `2 * pair`.
fn far_end(base: SocketAddr, pair: usize) -> io::Result<SocketAddr> {
    u16::try_from(usize::from(base.port()) + pair * 2)
        .map(|port| SocketAddr::new(base.ip(), port))
        .map_err(|_| io::Error::other("far-end port beyond 65535: lower the base port"))
}

fn sockaddr_in(address: SocketAddr) -> io::Result<libc::sockaddr_in> {
    let SocketAddr::V4(v4) = address else {
        return Err(io::Error::other("IPv4 only"));
    };
    Ok(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    })
}

/// A far-end socket: non-blocking, kernel receive timestamps, a large receive buffer.
fn far_socket(address: SocketAddr, receive_buffer: usize) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(address)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind far end {address}: {e}")))?;
    socket.set_nonblocking(true)?;
    let fd = socket.as_raw_fd();
    let bytes = libc::c_int::try_from(receive_buffer).unwrap_or(libc::c_int::MAX);
    // SO_RCVBUFFORCE passes net.core.rmem_max when we may (root); else the capped one.
    if !set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes) {
        set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes);
    }
    if !set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1) {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// Microsecond histogram with 1 µs buckets.
#[derive(Debug, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: vec![0; HISTOGRAM_US + 1],
            count: 0,
            max: 0,
        }
    }

    fn record(&mut self, micros: u64) {
        let index = usize::try_from(micros)
            .unwrap_or(HISTOGRAM_US)
            .min(HISTOGRAM_US);
        if let Some(bucket) = self.buckets.get_mut(index) {
            *bucket += 1;
        }
        self.count += 1;
        self.max = self.max.max(micros);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// The smallest value with at least `fraction` of the samples at or below it.
    fn percentile(&self, fraction: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((fraction * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (value, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(if value == HISTOGRAM_US {
                    self.max
                } else {
                    value as u64
                });
            }
        }
        Some(self.max)
    }

    fn above(&self, micros: u64) -> u64 {
        let from = usize::try_from(micros)
            .unwrap_or(HISTOGRAM_US)
            .min(HISTOGRAM_US);
        self.buckets.iter().skip(from + 1).sum()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "samples": self.count,
            "p50": self.percentile(0.50),
            "p99": self.percentile(0.99),
            "p999": self.percentile(0.999),
            "max": (self.count > 0).then_some(self.max),
        })
    }
}

/// What one worker thread counted.
#[derive(Debug, Clone)]
struct Counts {
    sent_window: u64,
    received_window: u64,
    received_total: u64,
    send_errors: u64,
    misrouted: u64,
    malformed: u64,
    out_of_order: u64,
    kernel_timestamps: u64,
    rtcp_received: u64,
    latency: Histogram,
    app_latency: Histogram,
    send_lag: Histogram,
}

impl Counts {
    fn new() -> Self {
        Self {
            sent_window: 0,
            received_window: 0,
            received_total: 0,
            send_errors: 0,
            misrouted: 0,
            malformed: 0,
            out_of_order: 0,
            kernel_timestamps: 0,
            rtcp_received: 0,
            latency: Histogram::new(),
            app_latency: Histogram::new(),
            send_lag: Histogram::new(),
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.sent_window += other.sent_window;
        self.received_window += other.received_window;
        self.received_total += other.received_total;
        self.send_errors += other.send_errors;
        self.misrouted += other.misrouted;
        self.malformed += other.malformed;
        self.out_of_order += other.out_of_order;
        self.kernel_timestamps += other.kernel_timestamps;
        self.rtcp_received += other.rtcp_received;
        self.latency.merge(&other.latency);
        self.app_latency.merge(&other.app_latency);
        self.send_lag.merge(&other.send_lag);
    }
}

/// One direction of one call, sent by this thread.
#[derive(Debug, Clone, Copy)]
struct Stream {
    session: u32,
    /// 0: caller to callee, 1: callee to caller.
    direction: u32,
    /// Local socket index it leaves from.
    socket: usize,
    to: libc::sockaddr_in,
    offset_ns: u64,
    seq: u32,
    ssrc: u32,
}

/// Packets waiting to leave one socket with one sendmmsg.
struct SendBatch {
    packets: Vec<[u8; PACKET]>,
    to: Vec<libc::sockaddr_in>,
    in_window: Vec<bool>,
    len: usize,
}

impl SendBatch {
    fn new(capacity: usize) -> Self {
        Self {
            packets: vec![[0xff; PACKET]; capacity],
            to: vec![
                libc::sockaddr_in {
                    sin_family: 0,
                    sin_port: 0,
                    sin_addr: libc::in_addr { s_addr: 0 },
                    sin_zero: [0; 8],
                };
                capacity
            ],
            in_window: vec![false; capacity],
            len: 0,
        }
    }
}

/// Window and phase boundaries shared by the threads.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    start: Instant,
    send_end: Instant,
    receive_end: Instant,
    /// The measured window, CLOCK_REALTIME ns (what the packets carry).
    window_start_ns: u64,
    window_end_ns: u64,
}

struct Worker {
    index: usize,
    threads: usize,
    far_sockets: usize,
    sockets: Vec<UdpSocket>,
    /// The far ends' RTCP sockets (RTP port + 1), in the order of `sockets`: read and
    /// counted only, so the relay's reports land somewhere as they would on a real phone.
    rtcp_sockets: Vec<UdpSocket>,
    streams: Vec<Stream>,
    batches: Vec<SendBatch>,
    dirty: Vec<usize>,
    /// Last sequence number seen per (session, direction).
    last_seq: Vec<u32>,
    counts: Counts,
    timeline: Timeline,
    flood: bool,
    tick_ns: u64,
    reads_per_wake: usize,
}

fn write_packet(packet: &mut [u8; PACKET], stream: &Stream, send_ns: u64) {
    let seq16 = (stream.seq & 0xffff) as u16;
    packet[0] = 0x80;
    packet[1] = 0; // PCMU, no marker
    packet[2..4].copy_from_slice(&seq16.to_be_bytes());
    packet[4..8].copy_from_slice(&stream.seq.wrapping_mul(160).to_be_bytes());
    packet[8..12].copy_from_slice(&stream.ssrc.to_be_bytes());
    packet[12..16].copy_from_slice(&MAGIC.to_be_bytes());
    packet[16..20].copy_from_slice(&stream.session.to_be_bytes());
    packet[20..24].copy_from_slice(&stream.direction.to_be_bytes());
    packet[24..28].copy_from_slice(&stream.seq.to_be_bytes());
    packet[28..36].copy_from_slice(&send_ns.to_be_bytes());
}

/// What a received packet's payload says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    session: u32,
    direction: u32,
    seq: u32,
    send_ns: u64,
}

/// The tag [`write_packet`] put in a packet; `None` for anything else.
fn parse_tag(bytes: &[u8]) -> Option<Tag> {
    if bytes.len() < TAG_END || be_u32(bytes, 12)? != MAGIC {
        return None;
    }
    let direction = be_u32(bytes, 20).filter(|&d| d <= 1)?;
    Some(Tag {
        session: be_u32(bytes, 16)?,
        direction,
        seq: be_u32(bytes, 24)?,
        send_ns: be_u64(bytes, 28)?,
    })
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

impl Worker {
    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.timeline.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn in_window(&self, send_ns: u64) -> bool {
        send_ns >= self.timeline.window_start_ns && send_ns < self.timeline.window_end_ns
    }

    /// Queues stream `k`'s next packet; `lag_ns` is how late it leaves.
    fn push(&mut self, k: usize, lag_ns: u64) {
        let Some(stream) = self.streams.get_mut(k) else {
            return;
        };
        let socket = stream.socket;
        let Some(batch) = self.batches.get_mut(socket) else {
            return;
        };
        let send_ns = realtime_ns();
        let slot = batch.len;
        write_packet(&mut batch.packets[slot], stream, send_ns);
        batch.to[slot] = stream.to;
        stream.seq = stream.seq.wrapping_add(1);
        let window =
            send_ns >= self.timeline.window_start_ns && send_ns < self.timeline.window_end_ns;
        batch.in_window[slot] = window;
        batch.len += 1;
        if window {
            self.counts.sent_window += 1;
            self.counts.send_lag.record(lag_ns / 1000);
        }
        if batch.len == 1 {
            self.dirty.push(socket);
        }
        if batch.len == batch.packets.len() {
            self.flush(socket);
        }
    }

    fn flush(&mut self, socket: usize) {
        let (Some(batch), Some(fd)) = (
            self.batches.get_mut(socket),
            self.sockets.get(socket).map(AsRawFd::as_raw_fd),
        ) else {
            return;
        };
        let count = batch.len;
        if count == 0 {
            return;
        }
        let mut iovecs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: plain data.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..count {
            iovecs[i] = libc::iovec {
                iov_base: batch.packets[i].as_mut_ptr().cast(),
                iov_len: PACKET,
            };
            headers[i].msg_hdr.msg_name = (&mut batch.to[i] as *mut libc::sockaddr_in).cast();
            headers[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            headers[i].msg_hdr.msg_iov = &mut iovecs[i];
            headers[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `count` headers point at live iovecs, packets and addresses.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        let sent = usize::try_from(sent).unwrap_or(0).min(count);
        for i in sent..count {
            self.counts.send_errors += 1;
            if batch.in_window[i] {
                // Never offered to the relay: not the relay's loss.
                self.counts.sent_window = self.counts.sent_window.saturating_sub(1);
            }
        }
        batch.len = 0;
    }

    fn flush_all(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &socket in &dirty {
            self.flush(socket);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Reads every readable socket once; returns the number of datagrams read.
    fn receive(
        &mut self,
        epoll: libc::c_int,
        events: &mut [libc::epoll_event],
        receiver: &mut Receiver,
        timeout_ms: libc::c_int,
    ) -> usize {
        // SAFETY: `events` is a live array of its length.
        let ready = unsafe {
            libc::epoll_wait(
                epoll,
                events.as_mut_ptr(),
                libc::c_int::try_from(events.len()).unwrap_or(1),
                timeout_ms,
            )
        };
        let mut total = 0;
        for event in events.iter().take(usize::try_from(ready).unwrap_or(0)) {
            if let Some(rtcp) = event.u64.checked_sub(RTCP_TOKEN) {
                let socket = self.rtcp_sockets.get(rtcp as usize).map(AsRawFd::as_raw_fd);
                if let Some(Ok(count)) = socket.map(|fd| receiver.receive(fd)) {
                    self.counts.rtcp_received += count as u64;
                }
                continue;
            }
            let socket = event.u64 as usize;
            let Some(fd) = self.sockets.get(socket).map(AsRawFd::as_raw_fd) else {
                continue;
            };
            let Ok(count) = receiver.receive(fd) else {
                continue;
            };
            let now_ns = realtime_ns();
            total += count;
            for i in 0..count {
                if let Some((bytes, stamp, truncated)) = receiver.datagram(i) {
                    self.account(socket, bytes, stamp, truncated, now_ns);
                }
            }
        }
        total
    }

    fn account(
        &mut self,
        socket: usize,
        bytes: &[u8],
        stamp: Option<u64>,
        truncated: bool,
        now_ns: u64,
    ) {
        self.counts.received_total += 1;
        let Some(Tag {
            session,
            direction,
            seq,
            send_ns,
        }) = parse_tag(bytes).filter(|_| !truncated)
        else {
            self.counts.malformed += 1;
            return;
        };
        // Caller-to-callee packets arrive at the callee side (odd local sockets), and the
        // pair must be this session's.
        let pair = (socket / 2) * self.threads + self.index;
        let expected_side = if direction == 0 { 1 } else { 0 };
        if socket % 2 != expected_side || session as usize % self.far_sockets != pair {
            self.counts.misrouted += 1;
            return;
        }
        let key = session as usize * 2 + direction as usize;
        if let Some(last) = self.last_seq.get_mut(key) {
            if *last != u32::MAX && seq <= *last {
                self.counts.out_of_order += 1;
            } else {
                *last = seq;
            }
        }
        if !self.in_window(send_ns) {
            return;
        }
        self.counts.received_window += 1;
        self.counts
            .app_latency
            .record(now_ns.saturating_sub(send_ns) / 1000);
        if let Some(kernel_ns) = stamp {
            self.counts.kernel_timestamps += 1;
            self.counts
                .latency
                .record(kernel_ns.saturating_sub(send_ns) / 1000);
        } else {
            self.counts
                .latency
                .record(now_ns.saturating_sub(send_ns) / 1000);
        }
    }

    fn run(mut self) -> io::Result<Counts> {
        // SAFETY: plain system call.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let rtp = self.sockets.iter().enumerate().map(|(i, s)| (i as u64, s));
        let rtcp = (self.rtcp_sockets.iter().enumerate()).map(|(i, s)| (RTCP_TOKEN + i as u64, s));
        for (token, socket) in rtp.chain(rtcp) {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: token,
            };
            // SAFETY: valid descriptors and event.
            if unsafe {
                libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, socket.as_raw_fd(), &mut event)
            } < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; self.reads_per_wake];
        let mut drain_events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
        let mut receiver = Receiver::new();
        let send_end = self.timeline.send_end;
        let receive_end = self.timeline.receive_end;
        // Wait for the common start.
        if let Some(wait) = self.timeline.start.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut next = 0usize;
        let mut cycle = 0u64;
        let streams = self.streams.len();
        while Instant::now() < send_end && streams > 0 {
            if self.flood {
                for _ in 0..64 {
                    self.push(next, 0);
                    next = (next + 1) % streams;
                }
            } else {
                let now = self.elapsed_ns();
                loop {
                    let due = cycle * PERIOD_NS + self.streams[next].offset_ns;
                    if due > now {
                        break;
                    }
                    self.push(next, now - due);
                    next += 1;
                    if next == streams {
                        next = 0;
                        cycle += 1;
                    }
                }
            }
            self.flush_all();
            self.receive(epoll, &mut events, &mut receiver, 0);
            if !self.flood && self.tick_ns > 0 {
                // Wake at most once a tick: what fell due meanwhile leaves together (its
                // send time is stamped when it leaves), what arrived is read together.
                let due = cycle * PERIOD_NS + self.streams[next].offset_ns;
                let now = self.elapsed_ns();
                if due > now {
                    let wait = (due - now).max(self.tick_ns).min(PERIOD_NS);
                    std::thread::sleep(Duration::from_nanos(wait));
                }
            }
        }
        // Senders stopped: collect what is still on its way.
        while Instant::now() < receive_end {
            self.receive(epoll, &mut drain_events, &mut receiver, 10);
        }
        // SAFETY: our own descriptor.
        unsafe { libc::close(epoll) };
        Ok(self.counts)
    }
}

fn main() -> io::Result<()> {
    let options = parse_options()?;
    raise_fd_limit();
    let relays = read_relays(&options.relays)?;
    let sessions = relays.len();
    let far_sockets = if options.far_sockets == 0 || options.far_sockets > sessions {
        sessions
    } else {
        options.far_sockets
    };
    let threads = options.threads.min(far_sockets);

    // Far-end sockets, bound before anything is sent: pair j (caller side, callee side)
    // belongs to thread j mod threads, as its local pair j / threads.
    let mut sockets: Vec<Vec<UdpSocket>> = (0..threads).map(|_| Vec::new()).collect();
    let mut rtcp_sockets: Vec<Vec<UdpSocket>> = (0..threads).map(|_| Vec::new()).collect();
    for pair in 0..far_sockets {
        for base in [options.caller_far, options.callee_far] {
            let rtp = far_end(base, pair)?;
            sockets[pair % threads].push(far_socket(rtp, options.receive_buffer)?);
            let rtcp = SocketAddr::new(rtp.ip(), rtp.port().saturating_add(1));
            let socket = UdpSocket::bind(rtcp).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind far end {rtcp}: {e}"))
            })?;
            socket.set_nonblocking(true)?;
            rtcp_sockets[pair % threads].push(socket);
        }
    }
    let mut streams: Vec<Vec<Stream>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, relay) in relays.iter().enumerate() {
        let pair = i % far_sockets;
        let local = (pair / threads) * 2;
        let offset = (i as u64 * PERIOD_NS) / sessions as u64;
        let session = u32::try_from(i).map_err(io::Error::other)?;
        let owner = &mut streams[pair % threads];
        owner.push(Stream {
            session,
            direction: 0,
            socket: local,
            to: sockaddr_in(relay.caller)?,
            offset_ns: offset,
            seq: 0,
            ssrc: 0x5000_0000 | (session << 1),
        });
        owner.push(Stream {
            session,
            direction: 1,
            socket: local + 1,
            to: sockaddr_in(relay.callee)?,
            offset_ns: (offset + PERIOD_NS / 2) % PERIOD_NS,
            seq: 0,
            ssrc: 0x5000_0000 | (session << 1) | 1,
        });
    }
    for owned in &mut streams {
        owned.sort_by_key(|s| s.offset_ns);
    }

    let start = Instant::now() + Duration::from_millis(100);
    let start_real = realtime_ns() + 100_000_000;
    let as_ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let timeline = Timeline {
        start,
        send_end: start + options.warmup + options.duration,
        receive_end: start + options.warmup + options.duration + options.drain,
        window_start_ns: start_real + as_ns(options.warmup),
        window_end_ns: start_real + as_ns(options.warmup + options.duration),
    };
    let mut workers = Vec::new();
    let owned = sockets.into_iter().zip(rtcp_sockets).zip(streams);
    for (index, ((owned_sockets, owned_rtcp), owned_streams)) in owned.enumerate() {
        let capacity = if owned_sockets.len() <= 64 { BATCH } else { 1 };
        let worker = Worker {
            index,
            threads,
            far_sockets,
            batches: (0..owned_sockets.len())
                .map(|_| SendBatch::new(capacity))
                .collect(),
            sockets: owned_sockets,
            rtcp_sockets: owned_rtcp,
            streams: owned_streams,
            dirty: Vec::new(),
            last_seq: vec![u32::MAX; sessions * 2],
            counts: Counts::new(),
            timeline,
            flood: options.flood,
            tick_ns: as_ns(options.tick),
            reads_per_wake: options.reads_per_wake,
        };
        workers.push(
            std::thread::Builder::new()
                .name(format!("media-load-{index}"))
                .spawn(move || worker.run())?,
        );
    }

    // CPU over the measured window.
    let clock_ticks = {
        // SAFETY: plain system call.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 {
            ticks as f64
        } else {
            100.0
        }
    };
    sleep_until(start + options.warmup);
    let ticks_before: Vec<Option<u64>> =
        options.cpu_pids.iter().map(|&p| process_ticks(p)).collect();
    let own_before = own_cpu_seconds();
    let machine_before = machine_ticks();
    let window_began = Instant::now();
    sleep_until(start + options.warmup + options.duration);
    let ticks_after: Vec<Option<u64>> =
        options.cpu_pids.iter().map(|&p| process_ticks(p)).collect();
    let own_after = own_cpu_seconds();
    let machine_after = machine_ticks();
    let window = window_began.elapsed().as_secs_f64();

    let mut counts = Counts::new();
    for worker in workers {
        let result = worker
            .join()
            .map_err(|_| io::Error::other("a load thread panicked"))??;
        counts.merge(&result);
    }
    let server_cpu: Option<f64> = ticks_before
        .iter()
        .zip(&ticks_after)
        .map(|(a, b)| Some(b.as_ref()?.saturating_sub(*a.as_ref()?) as f64 / clock_ticks))
        .sum();
    let machine = machine_before
        .zip(machine_after)
        .map(|((b0, s0), (b1, s1))| {
            (
                1000.0 * b1.saturating_sub(b0) as f64 / clock_ticks / window,
                1000.0 * s1.saturating_sub(s0) as f64 / clock_ticks / window,
            )
        });
    let lost = counts.sent_window.saturating_sub(counts.received_window);
    let loss_pct = if counts.sent_window > 0 {
        100.0 * lost as f64 / counts.sent_window as f64
    } else {
        100.0
    };
    // What the schedule asks for in the window (paced): 50 packets/s each way per call.
    let nominal = sessions as f64 * 2.0 * 50.0 * options.duration.as_secs_f64();
    let late_pct = if counts.send_lag.count > 0 {
        100.0 * counts.send_lag.above(LATE_US) as f64 / counts.send_lag.count as f64
    } else {
        0.0
    };
    let summary = serde_json::json!({
        "sessions": sessions,
        "mode": if options.flood { "flood" } else { "paced" },
        "threads": threads,
        "far_sockets": far_sockets,
        "warmup_s": options.warmup.as_secs_f64(),
        "window_s": window,
        "sent": counts.sent_window,
        "offered_pct": (!options.flood).then(|| 100.0 * counts.sent_window as f64 / nominal.max(1.0)),
        "received": counts.received_window,
        "lost": lost,
        "loss_pct": loss_pct,
        "received_pps": counts.received_window as f64 / options.duration.as_secs_f64().max(1e-9),
        "received_total": counts.received_total,
        "send_errors": counts.send_errors,
        "misrouted": counts.misrouted,
        "malformed": counts.malformed,
        "out_of_order": counts.out_of_order,
        "kernel_timestamps": counts.kernel_timestamps,
        "rtcp_received": counts.rtcp_received,
        "latency_us": counts.latency.summary(),
        "app_latency_us": counts.app_latency.summary(),
        "send_lag_us": counts.send_lag.summary(),
        "late_sends_pct": late_pct,
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_s": server_cpu.map(|c| 1000.0 * c / window),
        "load_cpu_s": own_after - own_before,
        "load_cpu_ms_per_s": 1000.0 * (own_after - own_before) / window,
        "machine_busy_ms_per_s": machine.map(|m| m.0),
        "machine_steal_ms_per_s": machine.map(|m| m.1),
    });
    println!("{summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(session: u32, direction: u32, seq: u32) -> Stream {
        Stream {
            session,
            direction,
            socket: 0,
            to: sockaddr_in(SocketAddr::from(([127, 0, 0, 1], 40_000))).unwrap(),
            offset_ns: 0,
            seq,
            ssrc: 0x5000_0007,
        }
    }

    #[test]
    fn a_written_packet_is_rtp_pcmu_and_carries_its_tag() {
        let mut packet = [0xffu8; PACKET];
        write_packet(&mut packet, &stream(7, 1, 70_000), 1_234_567_890_123);
        assert_eq!(
            packet[0], 0x80,
            "RTP version 2, no padding, extension or CSRC"
        );
        assert_eq!(packet[1], 0, "PCMU, no marker");
        assert_eq!(
            u16::from_be_bytes([packet[2], packet[3]]),
            (70_000u32 & 0xffff) as u16
        );
        assert_eq!(be_u32(&packet, 4), Some(70_000 * 160));
        assert_eq!(be_u32(&packet, 8), Some(0x5000_0007));
        assert_eq!(
            parse_tag(&packet),
            Some(Tag {
                session: 7,
                direction: 1,
                seq: 70_000,
                send_ns: 1_234_567_890_123
            })
        );
        assert!(
            packet[TAG_END..].iter().all(|&b| b == 0xff),
            "PCMU silence after the tag"
        );
    }

    #[test]
    fn foreign_or_short_packets_have_no_tag() {
        let mut packet = [0xffu8; PACKET];
        write_packet(&mut packet, &stream(1, 0, 5), 99);
        assert_eq!(
            parse_tag(&packet[..TAG_END - 1]),
            None,
            "cut inside the tag"
        );
        let mut foreign = packet;
        foreign[12] ^= 1;
        assert_eq!(parse_tag(&foreign), None, "wrong magic");
        let mut bad_direction = packet;
        bad_direction[20..24].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(parse_tag(&bad_direction), None, "direction is 0 or 1");
        assert_eq!(parse_tag(&[]), None);
    }

    #[test]
    fn histogram_percentiles_are_nearest_rank() {
        let mut histogram = Histogram::new();
        assert_eq!(histogram.percentile(0.5), None);
        for micros in 1..=100 {
            histogram.record(micros);
        }
        assert_eq!(histogram.percentile(0.5), Some(50));
        assert_eq!(histogram.percentile(0.99), Some(99));
        assert_eq!(histogram.percentile(1.0), Some(100));
        assert_eq!(histogram.above(98), 2);
        let mut other = Histogram::new();
        other.record(HISTOGRAM_US as u64 * 3);
        histogram.merge(&other);
        assert_eq!(histogram.count, 101);
        assert_eq!(
            histogram.percentile(1.0),
            Some(HISTOGRAM_US as u64 * 3),
            "beyond the range: the maximum"
        );
    }

    #[test]
    fn far_ends_step_by_two_ports_and_stay_in_range() {
        let base = SocketAddr::from(([127, 0, 0, 2], 20_000));
        assert_eq!(far_end(base, 0).unwrap(), base);
        assert_eq!(
            far_end(base, 3).unwrap(),
            SocketAddr::from(([127, 0, 0, 2], 20_006))
        );
        assert!(far_end(base, 30_000).is_err(), "port 80000 does not exist");
    }

    #[test]
    fn relay_lines_need_the_expected_index_and_two_addresses() {
        let relay = parse_relay_line("2 127.0.0.1:40000 127.0.0.1:40002", 2).unwrap();
        assert_eq!(relay.caller, SocketAddr::from(([127, 0, 0, 1], 40_000)));
        assert_eq!(relay.callee, SocketAddr::from(([127, 0, 0, 1], 40_002)));
        assert!(parse_relay_line("3 127.0.0.1:40000 127.0.0.1:40002", 2).is_none());
        assert!(parse_relay_line("2 127.0.0.1:40000", 2).is_none());
        assert!(parse_relay_line("2 127.0.0.1 127.0.0.1:40002", 2).is_none());
    }
}
