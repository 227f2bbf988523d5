//! The load generator of `scripts/bench-conference.sh`: plays the phones of N conference
//! participants over real UDP sockets against `examples/conference_server.rs` and measures
//! how punctually each one receives its mix.
//!
//! ```text
//! cargo run --release --example conference_load_net -- --relays FILE \
//!     [--far 127.0.0.4:20000] [--room-size 10] [--talkers 3] [--threads 2] \
//!     [--warmup 3] [--duration 15] [--drain-ms 500] [--late-ms 20] [--tick-us 500] \
//!     [--reads-per-wake 512] [--cpu-pid PID]...
//! ```
//!
//! `FILE` (or `-` for stdin) holds one line per participant, `<participant> <relay addr>`
//! (lines starting with `#` are skipped), as printed by `conference_server`. Participant
//! `i` sends from (and receives at) `far` with the port raised by `2 * i` (its RTCP one
//! port above), and sits in room `i / room-size`, as the server was told.
//!
//! Sending: every participant sends a 172-byte PCMU packet (12-byte RTP header, 160 bytes)
//! every 20 ms, the participants' start times spread evenly over the 20 ms. The first
//! `--talkers` of each room send a tone of their own (talker `t`: 300 + 200 t Hz, about
//! -21 dBov); the others send packets of silence, as phones without VAD do. A sender
//! thread wakes at most once per `--tick-us`.
//!
//! Receiving: each participant's mix stream is laid on a 20 ms grid: the packet with RTP
//! timestamp `ts` belongs to slot `(ts - ts0) / 160` (`ts0`: the first packet's), due at
//! `t0 + slot * 20 ms`. `t0` is the earliest phase (arrival minus the slot's offset) seen
//! from the first packet until the grid is fixed, 100 ms before the window. Not simply the
//! first packet's: one that happened to be late would make all later ones look early. The
//! relay's frames keep their grid (its 20 ms tick is the media clock), so any later shift
//! of the phase is lateness. A slot is late if its packet arrived more than `--late-ms`
//! after it was due (kernel receive timestamps, `SO_TIMESTAMPNS`: on loopback that is when
//! the server sent it, whatever the generator's own delay in reading), and missing if no
//! packet for it arrived by the end of the drain. Counted are the slots due in the
//! measured window (after the warm-up, `--duration` seconds). After a stall of the media
//! thread the relay sends the frames it missed at once (late by the stall) and is on time
//! again; after one of over 100 ms it skips the older ones (a timestamp jump: their slots
//! are missing). `gaps` counts, besides, the slots that arrived more than a frame plus
//! `--late-ms` after the slot before them: one per stall.
//!
//! Mix check: once a second per participant, the received frame is searched (Goertzel, at
//! the talkers' frequencies) for the tones it must hear (every talker of its room but
//! itself) and for its own tone, which it must not hear.
//!
//! Also measured over the window: CPU time of every `--cpu-pid` process (utime + stime
//! from /proc), of this process, busy and steal time of the machine (/proc/stat), and the
//! generator's own pace (`offered_pct`: packets sent in the window against 50 per second
//! per participant; `late_sends_pct`: sent more than 1 ms after their due time).
//!
//! Output: one JSON line on stdout. Bounded: fixed participants, fixed duration.

// A benchmark harness measures wall time: the clock rule of the daemon does not apply.
#![allow(clippy::disallowed_methods)]

#[path = "support/load.rs"]
mod load;
use load::*;

use std::f64::consts::TAU;
use std::io::{self, BufRead};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use sentralbord::media::codec::g711::{linear_to_ulaw, ULAW_TO_LINEAR};

/// Samples (and PCMU bytes) per 20 ms frame.
const FRAME: usize = 160;
/// RTP header without CSRCs or extension.
const RTP_HEADER: usize = 12;
/// RTP header + 20 ms of PCMU.
const PACKET: usize = RTP_HEADER + FRAME;
/// The packetisation interval.
const PERIOD_NS: u64 = 20_000_000;
/// Precomputed frames per tone: one second, which loops seamlessly (whole cycles).
const TONE_FRAMES: usize = 50;
/// PCMU code of silence.
const ULAW_SILENCE: u8 = 0xff;
/// Peak of the talkers' tones (about -21 dBov: speech to the mixer's VAD).
const TONE_PEAK: f64 = 3000.0;
/// A tone at least this strong (peak amplitude) in a frame is heard.
const HEARD_PEAK: f64 = 600.0;
/// Tones are 300 + 200 t Hz: whole cycles in a 20 ms frame, apart by four Goertzel bins.
const MAX_TALKERS: usize = 8;
/// Lateness histogram range, microseconds (1 µs buckets; beyond: the last one).
const HISTOGRAM_US: usize = 500_000;
/// Epoll tokens from here on are RTCP sockets.
const RTCP_TOKEN: u64 = 1 << 32;
/// A send this late (µs) counts as late.
const LATE_SEND_US: u64 = 1000;
/// Every this many slots a received frame is checked for the tones it must hear.
const CHECK_EVERY: i64 = 50;

#[derive(Debug, Clone)]
struct Options {
    relays: String,
    far: SocketAddr,
    room_size: usize,
    talkers: usize,
    threads: usize,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
    late: Duration,
    cpu_pids: Vec<u32>,
    tick: Duration,
    reads_per_wake: usize,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> io::Result<Options> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut options = Options {
        relays: String::new(),
        far: SocketAddr::from(([127, 0, 0, 4], 20_000)),
        room_size: 10,
        talkers: 3,
        threads: 2,
        warmup: Duration::from_secs(3),
        duration: Duration::from_secs(15),
        drain: Duration::from_millis(500),
        late: Duration::from_millis(20),
        cpu_pids: Vec::new(),
        tick: Duration::from_micros(500),
        reads_per_wake: 512,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
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
            "--far" => options.far = value.parse().map_err(|_| invalid())?,
            "--room-size" => options.room_size = value.parse().map_err(|_| invalid())?,
            "--talkers" => options.talkers = value.parse().map_err(|_| invalid())?,
            "--threads" => options.threads = value.parse().map_err(|_| invalid())?,
            "--warmup" => options.warmup = seconds(&value).ok_or_else(invalid)?,
            "--duration" => options.duration = seconds(&value).ok_or_else(invalid)?,
            "--drain-ms" => {
                options.drain = Duration::from_millis(value.parse().map_err(|_| invalid())?)
            }
            "--late-ms" => {
                options.late = Duration::from_millis(value.parse().map_err(|_| invalid())?)
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
            _ => return Err(bad(format!("unknown option {flag}"))),
        }
    }
    if options.relays.is_empty() {
        return Err(bad("--relays FILE is required".into()));
    }
    if options.room_size == 0 || options.talkers > MAX_TALKERS.min(options.room_size) {
        return Err(bad(format!(
            "--room-size must be at least 1 and --talkers at most {MAX_TALKERS} and the room size"
        )));
    }
    if options.duration < Duration::from_secs(1) {
        return Err(bad("--duration must be at least 1 s".into()));
    }
    options.threads = options.threads.clamp(1, 64);
    Ok(options)
}

/// `<index> <relay addr>`, the index being `expected`.
fn parse_relay_line(line: &str, expected: usize) -> Option<SocketAddr> {
    let mut fields = line.split_whitespace();
    let (Some(index), Some(address), None) = (fields.next(), fields.next(), fields.next()) else {
        return None;
    };
    if index.parse::<usize>().ok()? != expected {
        return None;
    }
    address.parse().ok()
}

fn read_relays(path: &str) -> io::Result<Vec<SocketAddr>> {
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
                "bad relay line (expected '{} <relay addr>'): {line}",
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

/// Participant `i`'s far end: `base` with the port raised by `2 * i`.
fn far_end(base: SocketAddr, participant: usize) -> io::Result<SocketAddr> {
    let port = usize::from(base.port()) + participant * 2;
    u16::try_from(port + 1)
        .map(|_| SocketAddr::new(base.ip(), port as u16))
        .map_err(|_| io::Error::other("far-end port beyond 65535: lower the base port"))
}

/// The tone of talker `t`, in Hz.
fn talker_hz(talker: usize) -> f64 {
    300.0 + 200.0 * talker as f64
}

/// One second of talker `t`'s tone, PCMU, frame by frame.
fn tone_frames(talker: usize) -> Vec<[u8; FRAME]> {
    let hz = talker_hz(talker);
    (0..TONE_FRAMES)
        .map(|f| {
            let mut frame = [0u8; FRAME];
            for (i, code) in frame.iter_mut().enumerate() {
                let n = (f * FRAME + i) as f64;
                *code = linear_to_ulaw((TONE_PEAK * (TAU * hz * n / 8000.0).sin()) as i16);
            }
            frame
        })
        .collect()
}

/// Peak amplitude of the `hz` component of 8 kHz `samples` (Goertzel; exact for a tone
/// with whole cycles in the frame).
fn tone_amplitude(samples: &[i16], hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coefficient = 2.0 * (TAU * hz / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len() as f64
}

/// The talker slot of participant `i` (`None`: a silent one).
fn talker_of(i: usize, room_size: usize, talkers: usize) -> Option<usize> {
    let k = i % room_size;
    (k < talkers).then_some(k)
}

/// Bit `t` set: participant `i` must hear talker `t` of its room (every talker present in
/// the room but itself).
fn expected_tones(i: usize, participants: usize, room_size: usize, talkers: usize) -> u8 {
    let first = i - i % room_size;
    let own = talker_of(i, room_size, talkers);
    (0..talkers)
        .filter(|&t| first + t < participants && Some(t) != own)
        .fold(0u8, |mask, t| mask | (1 << t))
}

/// The fields of an RTP packet the receiver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RtpView<'a> {
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &'a [u8],
}

/// Parses an RTP packet (CSRCs, extension and padding skipped); `None` if it is not one.
fn parse_rtp(bytes: &[u8]) -> Option<RtpView<'_>> {
    let first = *bytes.first()?;
    if first >> 6 != 2 || bytes.len() < RTP_HEADER {
        return None;
    }
    let mut start = RTP_HEADER + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = bytes.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = bytes.len();
    if first & 0x20 != 0 {
        end = end.checked_sub(usize::from(*bytes.last()?))?;
    }
    Some(RtpView {
        payload_type: bytes[1] & 0x7f,
        sequence: u16::from_be_bytes([bytes[2], bytes[3]]),
        timestamp: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        ssrc: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        payload: bytes.get(start..end)?,
    })
}

/// Writes one PCMU packet.
fn write_packet(
    packet: &mut [u8; PACKET],
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8; FRAME],
) {
    packet[0] = 0x80;
    packet[1] = 0; // PCMU, no marker
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    packet[RTP_HEADER..].copy_from_slice(payload);
}

/// `ceil(a / b)` for a positive `b`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// The slot of a packet with RTP timestamp `ts` on a grid whose slot 0 has `anchor_ts`
/// (nearest frame; timestamps wrap).
fn slot_of(ts: u32, anchor_ts: u32) -> i64 {
    let diff = i64::from(ts.wrapping_sub(anchor_ts) as i32);
    (diff + FRAME as i64 / 2).div_euclid(FRAME as i64)
}

/// The first slot due in the window and the first one after it, for a grid anchored at
/// `anchor_ns`; all times in ns of one clock.
fn window_slots(anchor_ns: u64, window: (u64, u64)) -> (i64, i64) {
    let period = PERIOD_NS as i64;
    let relative = |t: u64| i64::try_from(i128::from(t) - i128::from(anchor_ns)).unwrap_or(0);
    (
        ceil_div(relative(window.0), period),
        ceil_div(relative(window.1), period),
    )
}

/// Where a stream's grid starts: its first packet's RTP timestamp (slot 0) and SSRC, and
/// when slot 0 was due (ns; the earliest phase seen so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    ts: u32,
    ssrc: u32,
    due_ns: Option<i128>,
}

/// One received stream on its 20 ms grid: which window slots arrived, how late.
///
/// The grid's phase is the earliest seen (each packet's arrival minus its slot's offset,
/// the minimum) before the grid is fixed, 100 ms before the window: a first packet that
/// happened to be late would make everything after it look early. Then the window's slots
/// are counted against the fixed grid.
#[derive(Debug, Clone)]
struct Grid {
    window: (u64, u64),
    late_ns: i64,
    anchor: Option<Anchor>,
    /// The window's slots `[first, end)`, once the grid is fixed.
    fixed: Option<(i64, i64)>,
    seen: Vec<u64>,
    last: Option<(u16, u32)>,
    /// The last window slot received and when.
    previous: Option<(i64, u64)>,
    received: u64,
    late: u64,
    /// Window slots that arrived more than a frame plus the late limit after the slot
    /// before them: one per stall, whether or not the stream catches up afterwards.
    gaps: u64,
    duplicates: u64,
    ssrc_changes: u64,
    timestamp_jumps: u64,
}

/// The grid is fixed by the first packet arriving at most this long before the window.
const FIX_BEFORE_WINDOW_NS: u64 = 100_000_000;

/// What [`Grid::record`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slotted {
    /// A window slot, first arrival; how late it came (negative: early) in ns.
    InWindow { slot: i64, lateness_ns: i64 },
    /// Before the grid was fixed, due before or after the window, a second packet for a
    /// slot, or another SSRC.
    Ignored,
}

impl Grid {
    fn new(window: (u64, u64), late: Duration) -> Self {
        Self {
            window,
            late_ns: i64::try_from(late.as_nanos()).unwrap_or(i64::MAX),
            anchor: None,
            fixed: None,
            seen: Vec::new(),
            last: None,
            previous: None,
            received: 0,
            late: 0,
            gaps: 0,
            duplicates: 0,
            ssrc_changes: 0,
            timestamp_jumps: 0,
        }
    }

    /// A packet of the stream, received at `arrival_ns`.
    fn record(&mut self, arrival_ns: u64, ssrc: u32, sequence: u16, ts: u32) -> Slotted {
        let anchor = self.anchor.get_or_insert(Anchor {
            ts,
            ssrc,
            due_ns: None,
        });
        if ssrc != anchor.ssrc {
            // A new stream breaks the grid; the relay never changes a leg's SSRC.
            self.ssrc_changes += 1;
            return Slotted::Ignored;
        }
        if let Some((last_seq, last_ts)) = self.last {
            if sequence == last_seq.wrapping_add(1) && ts != last_ts.wrapping_add(FRAME as u32) {
                self.timestamp_jumps += 1;
            }
        }
        self.last = Some((sequence, ts));
        let slot = slot_of(ts, anchor.ts);
        let offset = i128::from(slot) * i128::from(PERIOD_NS);
        let (first, end) = match self.fixed {
            Some(range) => range,
            None => {
                let phase = i128::from(arrival_ns) - offset;
                let fix_at = self.window.0.saturating_sub(FIX_BEFORE_WINDOW_NS);
                anchor.due_ns = Some(anchor.due_ns.map_or(phase, |due| due.min(phase)));
                if arrival_ns < fix_at {
                    return Slotted::Ignored;
                }
                let due = u64::try_from(anchor.due_ns.unwrap_or(phase)).unwrap_or(0);
                let range = window_slots(due, self.window);
                let slots = usize::try_from(range.1 - range.0).unwrap_or(0);
                self.seen = vec![0; slots.div_ceil(64)];
                self.fixed = Some(range);
                range
            }
        };
        if slot < first || slot >= end {
            return Slotted::Ignored;
        }
        let index = usize::try_from(slot - first).unwrap_or(usize::MAX);
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let Some(bits) = self.seen.get_mut(word) else {
            return Slotted::Ignored;
        };
        if *bits & bit != 0 {
            self.duplicates += 1;
            return Slotted::Ignored;
        }
        *bits |= bit;
        self.received += 1;
        let Some(due_ns) = anchor.due_ns else {
            return Slotted::Ignored;
        };
        let lateness = i128::from(arrival_ns) - (due_ns + offset);
        let lateness_ns = i64::try_from(lateness).unwrap_or(i64::MAX);
        if lateness_ns > self.late_ns {
            self.late += 1;
        }
        if let Some((previous_slot, previous_ns)) = self.previous {
            let gap = i128::from(arrival_ns) - i128::from(previous_ns);
            if slot == previous_slot + 1 && gap > i128::from(PERIOD_NS) + i128::from(self.late_ns) {
                self.gaps += 1;
            }
        }
        self.previous = Some((slot, arrival_ns));
        Slotted::InWindow { slot, lateness_ns }
    }

    /// Slots due in the window (for a stream that never arrived: the window's length).
    fn expected(&self) -> u64 {
        match self.fixed {
            Some((first, end)) => u64::try_from(end - first).unwrap_or(0),
            None => self.window.1.saturating_sub(self.window.0) / PERIOD_NS,
        }
    }

    fn missing(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

/// A phone's socket: non-blocking, with kernel receive timestamps if `timestamps`.
fn phone_socket(address: SocketAddr, timestamps: bool) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(address)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind far end {address}: {e}")))?;
    socket.set_nonblocking(true)?;
    if timestamps
        && !set_int_option(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            1,
        )
    {
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

    /// The smallest value with at least `fraction` of the samples at or below it;
    /// `HISTOGRAM_US + 1` stands for anything beyond the range (the maximum stays exact).
    fn percentile(&self, fraction: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((fraction * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (value, &n) in self.buckets.iter().enumerate().take(HISTOGRAM_US) {
            seen += n;
            if seen >= rank {
                return Some(value as u64);
            }
        }
        Some(HISTOGRAM_US as u64 + 1)
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

/// One participant's phone.
struct Phone {
    index: usize,
    socket: UdpSocket,
    rtcp: UdpSocket,
    to: SocketAddr,
    offset_ns: u64,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    talker: Option<usize>,
    expected_tones: u8,
    grid: Grid,
}

/// What one worker thread counted.
#[derive(Debug, Clone)]
struct Counts {
    sent_window: u64,
    send_errors: u64,
    received_total: u64,
    /// Mix packets that arrived in the window (whatever their slot): the stream's rate.
    arrived_in_window: u64,
    malformed: u64,
    rtcp_received: u64,
    /// Lateness of the window slots that arrived (early ones count as 0).
    lateness: Histogram,
    /// From the kernel's receive timestamp to the generator reading the packet.
    read_delay: Histogram,
    send_lag: Histogram,
    checks: u64,
    /// Checks that heard every expected tone and not its own.
    mix_ok: u64,
    /// Checks that heard the participant's own tone.
    heard_self: u64,
}

impl Counts {
    fn new() -> Self {
        Self {
            sent_window: 0,
            send_errors: 0,
            received_total: 0,
            arrived_in_window: 0,
            malformed: 0,
            rtcp_received: 0,
            lateness: Histogram::new(),
            read_delay: Histogram::new(),
            send_lag: Histogram::new(),
            checks: 0,
            mix_ok: 0,
            heard_self: 0,
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.sent_window += other.sent_window;
        self.send_errors += other.send_errors;
        self.received_total += other.received_total;
        self.arrived_in_window += other.arrived_in_window;
        self.malformed += other.malformed;
        self.rtcp_received += other.rtcp_received;
        self.lateness.merge(&other.lateness);
        self.read_delay.merge(&other.read_delay);
        self.send_lag.merge(&other.send_lag);
        self.checks += other.checks;
        self.mix_ok += other.mix_ok;
        self.heard_self += other.heard_self;
    }
}

/// The grids' totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct GridTotals {
    expected: u64,
    received: u64,
    late: u64,
    missing: u64,
    gaps: u64,
    duplicates: u64,
    ssrc_changes: u64,
    timestamp_jumps: u64,
    never_received: u64,
    with_late_or_missing: u64,
}

impl GridTotals {
    fn add(&mut self, grid: &Grid) {
        self.expected += grid.expected();
        self.received += grid.received;
        self.late += grid.late;
        self.missing += grid.missing();
        self.gaps += grid.gaps;
        self.duplicates += grid.duplicates;
        self.ssrc_changes += grid.ssrc_changes;
        self.timestamp_jumps += grid.timestamp_jumps;
        self.never_received += u64::from(grid.anchor.is_none());
        self.with_late_or_missing += u64::from(grid.late + grid.missing() > 0);
    }

    fn merge(&mut self, other: &GridTotals) {
        self.expected += other.expected;
        self.received += other.received;
        self.late += other.late;
        self.missing += other.missing;
        self.gaps += other.gaps;
        self.duplicates += other.duplicates;
        self.ssrc_changes += other.ssrc_changes;
        self.timestamp_jumps += other.timestamp_jumps;
        self.never_received += other.never_received;
        self.with_late_or_missing += other.with_late_or_missing;
    }
}

/// Phase boundaries shared by the threads.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    start: Instant,
    send_end: Instant,
    receive_end: Instant,
    /// The measured window, CLOCK_REALTIME ns (the kernel timestamps' clock).
    window: (u64, u64),
}

struct Worker {
    /// Sorted by send offset.
    phones: Vec<Phone>,
    /// PCMU frames per talker slot.
    tones: Vec<Vec<[u8; FRAME]>>,
    timeline: Timeline,
    tick_ns: u64,
    reads_per_wake: usize,
    counts: Counts,
    pcm: [i16; FRAME],
}

impl Worker {
    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.timeline.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Sends phone `k`'s next packet; `lag_ns` is how late it leaves.
    fn send(&mut self, k: usize, lag_ns: u64, packet: &mut [u8; PACKET]) {
        let Some(phone) = self.phones.get_mut(k) else {
            return;
        };
        let silence = [ULAW_SILENCE; FRAME];
        let frame = usize::from(phone.sequence) % TONE_FRAMES;
        let payload = phone
            .talker
            .and_then(|t| self.tones.get(t))
            .and_then(|frames| frames.get(frame))
            .unwrap_or(&silence);
        write_packet(packet, phone.sequence, phone.timestamp, phone.ssrc, payload);
        phone.sequence = phone.sequence.wrapping_add(1);
        phone.timestamp = phone.timestamp.wrapping_add(FRAME as u32);
        let send_ns = realtime_ns();
        let in_window = send_ns >= self.timeline.window.0 && send_ns < self.timeline.window.1;
        match phone.socket.send_to(&packet[..], phone.to) {
            Ok(_) if in_window => {
                self.counts.sent_window += 1;
                self.counts.send_lag.record(lag_ns / 1000);
            }
            Ok(_) => {}
            Err(_) => self.counts.send_errors += 1,
        }
    }

    /// Reads every readable socket once (at most `events.len()` of them).
    fn receive(
        &mut self,
        epoll: libc::c_int,
        events: &mut [libc::epoll_event],
        receiver: &mut Receiver,
        timeout_ms: libc::c_int,
    ) {
        // SAFETY: `events` is a live array of its length.
        let ready = unsafe {
            libc::epoll_wait(
                epoll,
                events.as_mut_ptr(),
                libc::c_int::try_from(events.len()).unwrap_or(1),
                timeout_ms,
            )
        };
        for event in events.iter().take(usize::try_from(ready).unwrap_or(0)) {
            if let Some(rtcp) = event.u64.checked_sub(RTCP_TOKEN) {
                let socket = self.phones.get(rtcp as usize).map(|p| p.rtcp.as_raw_fd());
                if let Some(Ok(count)) = socket.map(|fd| receiver.receive(fd)) {
                    self.counts.rtcp_received += count as u64;
                }
                continue;
            }
            let k = event.u64 as usize;
            let Some(fd) = self.phones.get(k).map(|p| p.socket.as_raw_fd()) else {
                continue;
            };
            let Ok(count) = receiver.receive(fd) else {
                continue;
            };
            let now_ns = realtime_ns();
            for i in 0..count {
                if let Some((bytes, stamp, truncated)) = receiver.datagram(i) {
                    let arrival_ns = stamp.unwrap_or(now_ns);
                    self.counts
                        .read_delay
                        .record(now_ns.saturating_sub(arrival_ns) / 1000);
                    self.account(k, bytes, truncated, arrival_ns);
                }
            }
        }
    }

    fn account(&mut self, k: usize, bytes: &[u8], truncated: bool, arrival_ns: u64) {
        self.counts.received_total += 1;
        if arrival_ns >= self.timeline.window.0 && arrival_ns < self.timeline.window.1 {
            self.counts.arrived_in_window += 1;
        }
        let Some(phone) = self.phones.get_mut(k) else {
            return;
        };
        let Some(rtp) = parse_rtp(bytes)
            .filter(|r| !truncated && r.payload_type == 0 && r.payload.len() == FRAME)
        else {
            self.counts.malformed += 1;
            return;
        };
        let Slotted::InWindow { slot, lateness_ns } =
            phone
                .grid
                .record(arrival_ns, rtp.ssrc, rtp.sequence, rtp.timestamp)
        else {
            return;
        };
        self.counts
            .lateness
            .record(u64::try_from(lateness_ns.max(0) / 1000).unwrap_or(0));
        if slot.rem_euclid(CHECK_EVERY) != 0 {
            return;
        }
        for (sample, &code) in self.pcm.iter_mut().zip(rtp.payload) {
            *sample = ULAW_TO_LINEAR[usize::from(code)];
        }
        let heard = (0..self.tones.len()).fold(0u8, |mask, t| {
            if tone_amplitude(&self.pcm, talker_hz(t)) >= HEARD_PEAK {
                mask | (1 << t)
            } else {
                mask
            }
        });
        let own = phone.talker.map_or(0, |t| 1u8 << t);
        self.counts.checks += 1;
        if heard & own != 0 {
            self.counts.heard_self += 1;
        } else if heard & phone.expected_tones == phone.expected_tones {
            self.counts.mix_ok += 1;
        }
    }

    fn run(mut self) -> io::Result<(Counts, GridTotals)> {
        // SAFETY: plain system call.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        for (k, phone) in self.phones.iter().enumerate() {
            for (token, fd) in [
                (k as u64, phone.socket.as_raw_fd()),
                (RTCP_TOKEN + k as u64, phone.rtcp.as_raw_fd()),
            ] {
                let mut event = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: token,
                };
                // SAFETY: valid descriptors and event.
                if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; self.reads_per_wake];
        let mut drain_events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
        let mut receiver = Receiver::new();
        let mut packet = [0u8; PACKET];
        let (send_end, receive_end) = (self.timeline.send_end, self.timeline.receive_end);
        if let Some(wait) = self.timeline.start.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let phones = self.phones.len();
        let (mut next, mut cycle) = (0usize, 0u64);
        while Instant::now() < send_end && phones > 0 {
            let now = self.elapsed_ns();
            loop {
                let due = cycle * PERIOD_NS + self.phones[next].offset_ns;
                if due > now {
                    break;
                }
                self.send(next, now - due, &mut packet);
                next += 1;
                if next == phones {
                    next = 0;
                    cycle += 1;
                }
            }
            self.receive(epoll, &mut events, &mut receiver, 0);
            if self.tick_ns > 0 {
                // Wake at most once a tick: what fell due meanwhile leaves together.
                let due = cycle * PERIOD_NS + self.phones[next].offset_ns;
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
        let mut totals = GridTotals::default();
        for phone in &self.phones {
            totals.add(&phone.grid);
        }
        Ok((self.counts, totals))
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn main() -> io::Result<()> {
    let options = parse_options(std::env::args().skip(1))?;
    raise_fd_limit();
    let relays = read_relays(&options.relays)?;
    let participants = relays.len();
    let threads = options.threads.min(participants);
    let tones: Vec<Vec<[u8; FRAME]>> = (0..options.talkers).map(tone_frames).collect();

    let start = Instant::now() + Duration::from_millis(100);
    let start_real = realtime_ns() + 100_000_000;
    let as_ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let timeline = Timeline {
        start,
        send_end: start + options.warmup + options.duration,
        receive_end: start + options.warmup + options.duration + options.drain,
        window: (
            start_real + as_ns(options.warmup),
            start_real + as_ns(options.warmup + options.duration),
        ),
    };

    // Phones, bound before anything is sent; phone i belongs to thread i mod threads.
    let mut owned: Vec<Vec<Phone>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, &to) in relays.iter().enumerate() {
        let rtp = far_end(options.far, i)?;
        let rtcp = SocketAddr::new(rtp.ip(), rtp.port() + 1);
        if to.is_ipv4() != rtp.is_ipv4() {
            return Err(io::Error::other(format!(
                "participant {i}: relay {to} and phone {rtp} are of different IP versions"
            )));
        }
        let index = u32::try_from(i).map_err(io::Error::other)?;
        owned[i % threads].push(Phone {
            index: i,
            socket: phone_socket(rtp, true)?,
            rtcp: phone_socket(rtcp, false)?,
            to,
            offset_ns: (i as u64 * PERIOD_NS) / participants as u64,
            sequence: (index.wrapping_mul(7919) & 0xffff) as u16,
            timestamp: index.wrapping_mul(104_729),
            ssrc: 0x6000_0000 | index,
            talker: talker_of(i, options.room_size, options.talkers),
            expected_tones: expected_tones(i, participants, options.room_size, options.talkers),
            grid: Grid::new(timeline.window, options.late),
        });
    }
    let mut workers = Vec::new();
    for (index, mut phones) in owned.into_iter().enumerate() {
        phones.sort_by_key(|p| (p.offset_ns, p.index));
        let worker = Worker {
            phones,
            tones: tones.clone(),
            timeline,
            tick_ns: as_ns(options.tick),
            reads_per_wake: options.reads_per_wake,
            counts: Counts::new(),
            pcm: [0; FRAME],
        };
        workers.push(
            std::thread::Builder::new()
                .name(format!("conf-load-{index}"))
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
    let mut totals = GridTotals::default();
    for worker in workers {
        let (worker_counts, worker_totals) = worker
            .join()
            .map_err(|_| io::Error::other("a load thread panicked"))??;
        counts.merge(&worker_counts);
        totals.merge(&worker_totals);
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
    let nominal = participants as f64 * 50.0 * options.duration.as_secs_f64();
    let summary = serde_json::json!({
        "participants": participants,
        "room_size": options.room_size,
        "talkers": options.talkers,
        "threads": threads,
        "warmup_s": options.warmup.as_secs_f64(),
        "window_s": window,
        "late_ms": options.late.as_secs_f64() * 1000.0,
        "expected": totals.expected,
        "received": totals.received,
        "late": totals.late,
        "missing": totals.missing,
        "late_pct": percent(totals.late, totals.expected),
        "missing_pct": percent(totals.missing, totals.expected),
        "late_or_missing_pct": percent(totals.late + totals.missing, totals.expected),
        "gaps": totals.gaps,
        "gaps_pct": percent(totals.gaps, totals.expected),
        "participants_hit": totals.with_late_or_missing,
        "never_received": totals.never_received,
        "duplicates": totals.duplicates,
        "ssrc_changes": totals.ssrc_changes,
        "timestamp_jumps": totals.timestamp_jumps,
        "lateness_us": counts.lateness.summary(),
        "read_delay_us": counts.read_delay.summary(),
        "received_total": counts.received_total,
        "mix_rate_per_participant": counts.arrived_in_window as f64
            / participants as f64
            / options.duration.as_secs_f64(),
        "malformed": counts.malformed,
        "rtcp_received": counts.rtcp_received,
        "mix_checks": counts.checks,
        "mix_ok_pct": (counts.checks > 0).then(|| percent(counts.mix_ok, counts.checks)),
        "heard_self": counts.heard_self,
        "sent": counts.sent_window,
        "send_errors": counts.send_errors,
        "offered_pct": 100.0 * counts.sent_window as f64 / nominal.max(1.0),
        "late_sends_pct": if counts.send_lag.count > 0 {
            percent(counts.send_lag.above(LATE_SEND_US), counts.send_lag.count)
        } else {
            0.0
        },
        "send_lag_us": counts.send_lag.summary(),
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_s": server_cpu.map(|c| 1000.0 * c / window),
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

    const MS: u64 = 1_000_000;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A grid whose window is [1000 ms, 1100 ms): five slots when anchored at 0.
    fn grid() -> Grid {
        Grid::new((1000 * MS, 1100 * MS), Duration::from_millis(20))
    }

    #[test]
    fn slots_follow_the_timestamp_and_wrap() {
        assert_eq!(slot_of(1000, 1000), 0);
        assert_eq!(slot_of(1160, 1000), 1);
        assert_eq!(slot_of(1000 + 160 * 50, 1000), 50);
        assert_eq!(slot_of(840, 1000), -1, "before the anchor");
        assert_eq!(slot_of(1070, 1000), 0, "nearest frame");
        assert_eq!(slot_of(100, u32::MAX - 59), 1, "the timestamp wrapped");
    }

    #[test]
    fn window_slots_are_those_due_inside_the_window() {
        assert_eq!(window_slots(0, (1000 * MS, 1100 * MS)), (50, 55));
        assert_eq!(window_slots(5 * MS, (1000 * MS, 1100 * MS)), (50, 55));
        assert_eq!(window_slots(1000 * MS, (1000 * MS, 1100 * MS)), (0, 5));
        assert_eq!(
            window_slots(1010 * MS, (1000 * MS, 1100 * MS)),
            (0, 5),
            "anchored inside the window: 1010, 1030, ... 1090"
        );
        assert_eq!(ceil_div(-30, 20), -1);
        assert_eq!(ceil_div(30, 20), 2);
        assert_eq!(ceil_div(40, 20), 2);
    }

    #[test]
    fn a_punctual_stream_has_nothing_late_or_missing() {
        let mut grid = grid();
        for k in 0..60u16 {
            let arrival = u64::from(k) * 20 * MS + 3 * MS;
            grid.record(arrival, 7, k, u32::from(k) * 160);
        }
        assert_eq!(grid.expected(), 5);
        assert_eq!((grid.received, grid.late, grid.missing()), (5, 0, 0));
        assert_eq!(grid.timestamp_jumps, 0);
    }

    #[test]
    fn a_packet_more_than_a_frame_after_its_slot_is_late() {
        let mut grid = grid();
        assert_eq!(grid.record(0, 7, 0, 0), Slotted::Ignored, "the anchor");
        let on_time = grid.record(1000 * MS + 20 * MS, 7, 50, 50 * 160);
        assert_eq!(
            on_time,
            Slotted::InWindow {
                slot: 50,
                lateness_ns: 20 * MS as i64
            },
            "exactly one frame late is not late"
        );
        grid.record(1020 * MS + 21 * MS, 7, 51, 51 * 160);
        assert_eq!((grid.received, grid.late), (2, 1));
        assert_eq!(grid.missing(), 3, "slots 52..54 never came");
    }

    #[test]
    fn duplicates_other_streams_and_slots_outside_the_window_do_not_count() {
        let mut grid = grid();
        grid.record(0, 7, 0, 0);
        grid.record(1000 * MS, 7, 50, 50 * 160);
        assert_eq!(grid.record(1000 * MS, 7, 50, 50 * 160), Slotted::Ignored);
        assert_eq!(grid.duplicates, 1);
        assert_eq!(grid.record(1100 * MS, 7, 55, 55 * 160), Slotted::Ignored);
        assert_eq!(grid.record(1020 * MS, 9, 51, 51 * 160), Slotted::Ignored);
        assert_eq!(grid.ssrc_changes, 1);
        assert_eq!((grid.received, grid.missing()), (1, 4));
    }

    #[test]
    fn the_grid_takes_the_earliest_phase_seen_before_the_window() {
        let mut grid = grid();
        // The first packet came 15 ms late, the others on time.
        grid.record(15 * MS, 7, 0, 0);
        for k in 1..50u16 {
            grid.record(u64::from(k) * 20 * MS, 7, k, u32::from(k) * 160);
        }
        // 21 ms late on the earliest grid (6 ms on the first packet's).
        let late = grid.record(1021 * MS, 7, 50, 50 * 160);
        assert_eq!(
            late,
            Slotted::InWindow {
                slot: 50,
                lateness_ns: 21 * MS as i64
            }
        );
        assert_eq!(grid.late, 1);
        // Once fixed, an earlier packet does not move the grid.
        let early = grid.record(1030 * MS, 7, 51, 52 * 160);
        assert_eq!(
            early,
            Slotted::InWindow {
                slot: 52,
                lateness_ns: -10 * MS as i64
            }
        );
    }

    #[test]
    fn a_stall_in_the_warm_up_does_not_move_the_grid() {
        let mut grid = Grid::new((3000 * MS, 3100 * MS), Duration::from_millis(20));
        // On time, but for a 50 ms stall at 1 s: slots 50 and 51 arrive with slot 52.
        for k in 0..160u32 {
            let at = if (50..52).contains(&k) {
                52 * 20
            } else {
                k * 20
            };
            grid.record(u64::from(at) * MS, 7, k as u16, k * 160);
        }
        assert_eq!(grid.expected(), 5);
        assert_eq!((grid.received, grid.late, grid.missing()), (5, 0, 0));
    }

    #[test]
    fn a_phase_that_shifts_for_good_in_the_warm_up_is_late() {
        let mut grid = Grid::new((3000 * MS, 3100 * MS), Duration::from_millis(20));
        // On time until 1 s, then 25 ms later for good: a sender that lost its clock.
        for k in 0..160u32 {
            let shift = if k >= 50 { 25 } else { 0 };
            grid.record((u64::from(k) * 20 + shift) * MS, 7, k as u16, k * 160);
        }
        assert_eq!(grid.expected(), 5);
        assert_eq!((grid.received, grid.late, grid.missing()), (5, 5, 0));
    }

    #[test]
    fn a_stall_shifts_the_stream_late_for_good_but_is_one_gap() {
        let mut grid = grid();
        grid.record(0, 7, 0, 0);
        grid.record(1000 * MS, 7, 50, 50 * 160);
        // A 25 ms stall after which the sender keeps its new phase (no timestamp jump).
        for (k, at) in [(51, 1045), (52, 1065), (53, 1085), (54, 1105)] {
            grid.record(at * MS, 7, k as u16, k * 160);
        }
        assert_eq!((grid.received, grid.late, grid.missing()), (5, 4, 0));
        assert_eq!(grid.gaps, 1, "one stall");
        assert_eq!(grid.timestamp_jumps, 0);
    }

    #[test]
    fn a_timestamp_jump_leaves_its_slots_missing_and_is_counted() {
        let mut grid = grid();
        grid.record(0, 7, 0, 0);
        grid.record(1000 * MS, 7, 50, 50 * 160);
        // The sender stalled 60 ms and resumed with the timestamp of real time.
        grid.record(1060 * MS, 7, 51, 53 * 160);
        grid.record(1080 * MS, 7, 52, 54 * 160);
        assert_eq!(grid.timestamp_jumps, 1);
        assert_eq!((grid.received, grid.late, grid.missing()), (3, 0, 2));
    }

    #[test]
    fn a_stream_that_never_arrives_is_all_missing() {
        let grid = grid();
        assert_eq!((grid.expected(), grid.missing()), (5, 5));
        let mut totals = GridTotals::default();
        totals.add(&grid);
        assert_eq!((totals.never_received, totals.with_late_or_missing), (1, 1));
    }

    #[test]
    fn goertzel_finds_the_talkers_tones_in_a_decoded_frame() {
        let frames = tone_frames(1);
        let mut pcm = [0i16; FRAME];
        for (sample, &code) in pcm.iter_mut().zip(&frames[17]) {
            *sample = ULAW_TO_LINEAR[usize::from(code)];
        }
        let own = tone_amplitude(&pcm, talker_hz(1));
        assert!((own - TONE_PEAK).abs() < 150.0, "amplitude {own}");
        for other in [0, 2, 3] {
            let leak = tone_amplitude(&pcm, talker_hz(other));
            assert!(leak < 50.0, "talker {other}: {leak}");
        }
        assert_eq!(tone_amplitude(&[], 300.0), 0.0);
    }

    #[test]
    fn every_participant_expects_the_other_talkers_of_its_room() {
        assert_eq!(talker_of(12, 10, 3), Some(2));
        assert_eq!(talker_of(13, 10, 3), None);
        assert_eq!(
            expected_tones(5, 20, 10, 3),
            0b111,
            "a silent one hears all three"
        );
        assert_eq!(expected_tones(11, 20, 10, 3), 0b101, "talker 1 not itself");
        assert_eq!(
            expected_tones(20, 22, 10, 3),
            0b010,
            "a last room of two: talker 2 is missing"
        );
    }

    #[test]
    fn rtp_packets_parse_with_csrcs_extension_and_padding() {
        let mut packet = [0u8; PACKET];
        write_packet(&mut packet, 0xfffe, 123_456, 0x6000_0005, &[0x55; FRAME]);
        let view = parse_rtp(&packet).unwrap();
        assert_eq!(
            (view.payload_type, view.sequence, view.timestamp, view.ssrc),
            (0, 0xfffe, 123_456, 0x6000_0005)
        );
        assert_eq!(view.payload.len(), FRAME);
        let mut fancy = vec![0x80 | 0x20 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        fancy.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        fancy.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one extension word
        fancy.extend_from_slice(&[7; 4]);
        fancy.extend_from_slice(&[0, 2]); // two bytes of padding
        assert_eq!(parse_rtp(&fancy).unwrap().payload, &[7, 7, 7, 7]);
        assert!(parse_rtp(&packet[..11]).is_none());
        assert!(parse_rtp(&[0x40; 20]).is_none(), "version 1");
    }

    #[test]
    fn histogram_percentiles_mark_values_beyond_the_range() {
        let mut histogram = Histogram::new();
        assert_eq!(histogram.percentile(0.5), None);
        for micros in 1..=100 {
            histogram.record(micros);
        }
        assert_eq!(histogram.percentile(0.5), Some(50));
        assert_eq!(histogram.percentile(0.99), Some(99));
        let mut far = Histogram::new();
        for _ in 0..3 {
            far.record(HISTOGRAM_US as u64 * 4);
        }
        histogram.merge(&far);
        assert_eq!(histogram.count, 103);
        assert_eq!(histogram.percentile(1.0), Some(HISTOGRAM_US as u64 + 1));
        assert_eq!(
            histogram.max,
            HISTOGRAM_US as u64 * 4,
            "the maximum stays exact"
        );
        assert_eq!(histogram.above(98), 5);
    }

    #[test]
    fn relay_lines_and_options() {
        assert_eq!(
            parse_relay_line("3 127.0.0.1:40000", 3),
            Some(SocketAddr::from(([127, 0, 0, 1], 40_000)))
        );
        assert_eq!(parse_relay_line("3 127.0.0.1:40000", 2), None);
        assert_eq!(parse_relay_line("3 127.0.0.1:40000 x", 3), None);
        let options = parse_options(args(&["--relays", "-", "--talkers", "2"])).unwrap();
        assert_eq!((options.talkers, options.room_size), (2, 10));
        assert!(
            parse_options(args(&["--talkers", "3"])).is_err(),
            "no relays"
        );
        assert!(parse_options(args(&["--relays", "-", "--talkers", "9"])).is_err());
        assert!(parse_options(args(&["--relays", "-", "--duration", "0.5"])).is_err());
    }
}
