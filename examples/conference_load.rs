//! CPU cost of conferences in the media plane's sans-IO relay (no sockets): ROOMS rooms of
//! SIZE participants, each the caller leg of its own session, TALKERS of them sending tones
//! and the rest silence, PCMU and PCMA alternating. Every 20 ms of simulated time each
//! participant's far end sends one RTP packet through `Relay::on_packet` (latching,
//! statistics, in-band DTMF detection, the mixer's jitter buffer), then one `Relay::tick`
//! mixes every room and writes every participant's RTP packet; this runs for SECONDS of
//! simulated audio as fast as it can, after one second of warm-up.
//!
//! ```text
//! cargo run --release --example conference_load -- --rooms 200 [--size 10] [--talkers 3] [--seconds 10]
//! ```
//!
//! Prints the thread CPU time per 20 ms (packets in + tick; mean, p50, p99, max), per
//! participant, the participants one core could serve in real time, and the heap
//! allocations made while measuring (a counting global allocator: expected 0). Compare with
//! `examples/mixer_bench.rs` (the mixer alone): the difference is the relay's share.

// A benchmark harness measures time: the clock rule of the daemon does not apply.
#![allow(clippy::disallowed_methods)]

#[path = "support/bench.rs"]
mod bench;

use std::f64::consts::TAU;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use std::time::Duration;

use sentralbord::media::codec::{encode_from_linear, Codec};
use sentralbord::media::control::{
    ConferenceId, LegMedia, MediaCommand, MediaLeg, MediaSessionId, PortPair,
};
use sentralbord::media::relay::{NoPrompts, PacketAction, Relay, RelayConfig, TICK};
use sentralbord::media::rtp::{write_header, RtpHeaderFields};
use sentralbord::media::sdp::Direction;

#[global_allocator]
static GLOBAL: bench::CountingAllocator = bench::CountingAllocator;

const FRAME: usize = 160;
/// Distinct precomputed frames per participant (one second: the tone repeats seamlessly).
const FRAMES: usize = 50;
/// First local RTP port; each session takes four ports.
const FIRST_PORT: u16 = 10_000;

struct Options {
    rooms: usize,
    size: usize,
    talkers: usize,
    seconds: u64,
}

fn options() -> Options {
    let mut options = Options {
        rooms: 10,
        size: 10,
        talkers: 3,
        seconds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: Option<u64> = args.next().and_then(|v| v.parse().ok());
        let Some(value) = value else {
            eprintln!("{flag} needs a number");
            std::process::exit(2);
        };
        let value_usize = usize::try_from(value).unwrap_or(usize::MAX);
        match flag.as_str() {
            "--rooms" => options.rooms = value_usize,
            "--size" => options.size = value_usize,
            "--talkers" => options.talkers = value_usize,
            "--seconds" => options.seconds = value,
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    options
}

/// One second of a participant's audio (a tone, or silence), encoded, frame by frame.
fn frames(codec: Codec, hz: Option<f64>) -> Vec<Vec<u8>> {
    (0..FRAMES)
        .map(|f| {
            let pcm: Vec<i16> = (0..FRAME)
                .map(|i| {
                    let n = (f * FRAME + i) as f64;
                    hz.map_or(0, |hz| (3000.0 * (TAU * hz * n / 8000.0).sin()) as i16)
                })
                .collect();
            let mut bytes = vec![0u8; FRAME];
            let _ = encode_from_linear(codec, &pcm, &mut bytes);
            bytes
        })
        .collect()
}

/// A participant's far end.
struct Phone {
    port: u16,
    far: SocketAddr,
    payload_type: u8,
    ssrc: u32,
    frames: Vec<Vec<u8>>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let options = options();
    let participants = options.rooms * options.size;
    if participants * 4 + usize::from(FIRST_PORT) > usize::from(u16::MAX) {
        eprintln!("at most {} participants", (u16::MAX - FIRST_PORT) / 4);
        std::process::exit(2);
    }
    let mut relay = Relay::new(RelayConfig::default(), Box::new(NoPrompts));
    let mut now = Duration::ZERO;
    let mut phones = Vec::with_capacity(participants);
    for index in 0..participants {
        let (room, k) = (index / options.size, index % options.size);
        let (codec, payload_type) = if index % 2 == 0 {
            (Codec::Pcmu, 0)
        } else {
            (Codec::Pcma, 8)
        };
        let session = MediaSessionId(index as u64);
        let port = FIRST_PORT + 4 * index as u16;
        relay.open(
            now,
            session,
            PortPair { rtp: port },
            PortPair { rtp: port + 2 },
        );
        let far = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + index as u32)), 4000);
        let media = LegMedia {
            remote_rtp: Some(far),
            remote_rtcp: None,
            codec,
            payload_type,
            telephone_event: None,
            direction: Direction::SendRecv,
            ptime_ms: 20,
        };
        relay.command(
            now,
            MediaCommand::Update {
                session,
                leg: MediaLeg::Caller,
                media,
            },
        );
        relay.command(
            now,
            MediaCommand::JoinConference {
                session,
                leg: MediaLeg::Caller,
                room: ConferenceId(room as u64),
                muted: false,
                tenant: None,
            },
        );
        let hz = (k < options.talkers).then_some(300.0 + 150.0 * k as f64);
        phones.push(Phone {
            port,
            far,
            payload_type,
            ssrc: 0x5000_0000 + index as u32,
            frames: frames(codec, hz),
        });
    }
    while relay.poll_event().is_some() {}
    if relay.participant_count() != participants {
        eprintln!("only {} joined", relay.participant_count());
        std::process::exit(1);
    }

    let warmup_ticks = 50u64;
    let ticks = options.seconds * 50;
    let mut tick_ns = Vec::with_capacity(usize::try_from(ticks).unwrap_or(0));
    let mut in_total = 0u64;
    let mut packets_out = 0u64;
    let mut dropped_unexpectedly = 0u64;
    let mut events = 0u64;
    let mut checksum = 0u64;
    let mut allocations_before = 0;
    let mut buffer = [0u8; 1500];
    for tick in 0..warmup_ticks + ticks {
        if tick == warmup_ticks {
            allocations_before = bench::allocations();
        }
        let start = bench::thread_cpu_ns();
        let frame_index = usize::try_from(tick).unwrap_or(0) % FRAMES;
        let arrival = now + Duration::from_millis(1);
        for phone in &phones {
            let header = RtpHeaderFields {
                marker: false,
                payload_type: phone.payload_type,
                sequence_number: (tick & 0xffff) as u16,
                timestamp: (tick as u32).wrapping_mul(FRAME as u32),
                ssrc: phone.ssrc,
            };
            let Ok(len) = write_header(&mut buffer, &header) else {
                continue;
            };
            let payload = &phone.frames[frame_index];
            buffer[len..len + payload.len()].copy_from_slice(payload);
            let action = relay.on_packet(arrival, phone.port, phone.far, &mut buffer, len + FRAME);
            if matches!(action, PacketAction::Send { .. }) {
                dropped_unexpectedly += 1;
            }
        }
        let received = bench::thread_cpu_ns();
        now += TICK;
        relay.tick(now, &mut |from_port, _, bytes| {
            packets_out += 1;
            checksum = checksum
                .wrapping_mul(31)
                .wrapping_add(u64::from(bytes[bytes.len() / 2]) ^ u64::from(from_port));
        });
        while relay.poll_event().is_some() {
            events += 1;
        }
        let end = bench::thread_cpu_ns();
        if tick >= warmup_ticks {
            tick_ns.push(end - start);
            in_total += received - start;
        }
    }
    let allocations = bench::allocations() - allocations_before;
    black_box(checksum);

    let measured = tick_ns.len().max(1) as f64;
    let total: u64 = tick_ns.iter().sum();
    let mut sorted = tick_ns.clone();
    sorted.sort_unstable();
    let mean_ns = total as f64 / measured;
    let per_participant_ns = mean_ns / participants.max(1) as f64;
    let p99 = percentile(&sorted, 0.99);
    println!(
        "rooms {} x {} ({} talking), {} participants (one session each), {} s simulated",
        options.rooms, options.size, options.talkers, participants, options.seconds
    );
    println!(
        "CPU per 20 ms (packets in + tick): mean {:.1} us, p50 {:.1} us, p99 {:.1} us, max {:.1} us (packets-in share {:.0}%)",
        mean_ns / 1e3,
        percentile(&sorted, 0.5) as f64 / 1e3,
        p99 as f64 / 1e3,
        sorted.last().copied().unwrap_or(0) as f64 / 1e3,
        100.0 * in_total as f64 / total.max(1) as f64
    );
    println!(
        "CPU per participant per 20 ms: {:.0} ns; participants per core in real time: {:.0} (at p99: {:.0})",
        per_participant_ns,
        20_000_000.0 / per_participant_ns,
        participants as f64 * 20_000_000.0 / p99.max(1) as f64
    );
    println!(
        "packets out {packets_out} (incl. RTCP), events {events}, relayed instead of mixed {dropped_unexpectedly}; heap allocations while measuring: {allocations}"
    );
}
