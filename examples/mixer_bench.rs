//! CPU cost of the conference mixer core (no sockets): ROOMS rooms of SIZE participants,
//! TALKERS of them sending tones and the rest silence (or `--noise`: comfort-level noise
//! at about -60 dBov), PCMU and PCMA alternating. Every 20 ms of simulated time each
//! participant pushes one packet, then one tick mixes every room; this runs for SECONDS
//! of simulated audio as fast as it can, after one second of warm-up.
//!
//! ```text
//! cargo run --release --example mixer_bench -- --rooms 200 [--size 10] [--talkers 3] [--seconds 10] [--noise]
//! ```
//!
//! Prints the thread CPU time per tick (push + tick; mean, p50, p99, max), per participant
//! per tick, the participants one core could mix in real time (20 ms per tick), and the
//! heap allocations made while measuring (a counting global allocator: expected 0).

// A benchmark harness measures time: the clock rule of the daemon does not apply.
#![allow(clippy::disallowed_methods)]

#[path = "support/bench.rs"]
mod bench;

use std::f64::consts::TAU;
use std::hint::black_box;

use std::time::Duration;

use sentralbord::media::codec::{encode_from_linear, Codec};
use sentralbord::media::mixer::{Mixer, MixerConfig, ParticipantId, RtpAudio, FRAME_DURATION};

#[global_allocator]
static GLOBAL: bench::CountingAllocator = bench::CountingAllocator;

const FRAME: usize = 160;
/// Distinct precomputed frames per tone (one second: the tone repeats seamlessly).
const TONE_FRAMES: usize = 50;

struct Options {
    rooms: usize,
    size: usize,
    talkers: usize,
    seconds: u64,
    noise: bool,
}

fn options() -> Options {
    let mut options = Options {
        rooms: 10,
        size: 10,
        talkers: 3,
        seconds: 10,
        noise: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--noise" {
            options.noise = true;
            continue;
        }
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

/// One second of a tone, encoded, frame by frame.
fn tone_frames(codec: Codec, hz: f64, amplitude: f64) -> Vec<Vec<u8>> {
    (0..TONE_FRAMES)
        .map(|f| {
            let pcm: Vec<i16> = (0..FRAME)
                .map(|i| {
                    let n = (f * FRAME + i) as f64;
                    (amplitude * (TAU * hz * n / 8000.0).sin()) as i16
                })
                .collect();
            let mut bytes = vec![0u8; FRAME];
            let _ = encode_from_linear(codec, &pcm, &mut bytes);
            bytes
        })
        .collect()
}

/// Frames of quiet noise (about -60 dBov) or digital silence.
fn quiet_frames(codec: Codec, noise: bool, seed: u32) -> Vec<Vec<u8>> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..TONE_FRAMES)
        .map(|_| {
            let pcm: Vec<i16> = (0..FRAME)
                .map(|_| {
                    // xorshift32: cheap deterministic noise.
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    if noise {
                        (i64::from(state % 101) - 50) as i16
                    } else {
                        0
                    }
                })
                .collect();
            let mut bytes = vec![0u8; FRAME];
            let _ = encode_from_linear(codec, &pcm, &mut bytes);
            bytes
        })
        .collect()
}

struct Sender {
    id: ParticipantId,
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
    // The audio each participant sends, built before the mixer so the mixer's own memory
    // can be measured.
    let mut audio = Vec::with_capacity(options.rooms * options.size);
    for room_index in 0..options.rooms {
        for k in 0..options.size {
            let codec = if (room_index + k) % 2 == 0 {
                Codec::Pcmu
            } else {
                Codec::Pcma
            };
            let frames = if k < options.talkers {
                let hz = 300.0 + 150.0 * k as f64;
                tone_frames(codec, hz, 3000.0 + 1000.0 * k as f64)
            } else {
                quiet_frames(
                    codec,
                    options.noise,
                    u32::try_from(audio.len()).unwrap_or(1),
                )
            };
            audio.push((room_index, codec, frames));
        }
    }
    let mut senders = Vec::with_capacity(audio.len());
    let live_before = bench::live_bytes();
    let mut mixer = Mixer::new(MixerConfig::default());
    let mut rooms = Vec::with_capacity(options.rooms);
    for _ in 0..options.rooms {
        rooms.push(mixer.open_room());
    }
    for (ssrc, (room_index, codec, frames)) in audio.into_iter().enumerate() {
        let Some(id) = mixer.join(rooms[room_index], codec) else {
            eprintln!("join failed");
            return;
        };
        senders.push(Sender {
            id,
            ssrc: u32::try_from(ssrc).unwrap_or(0),
            frames,
        });
    }
    let participants = senders.len();
    let mixer_bytes = bench::live_bytes().wrapping_sub(live_before);

    let warmup_ticks = 50u64;
    let ticks = options.seconds * 50;
    let mut tick_ns = Vec::with_capacity(usize::try_from(ticks).unwrap_or(0));
    let mut out_bytes = 0u64;
    let mut out_frames = 0u64;
    let mut checksum = 0u64;
    let mut now = Duration::from_secs(1);
    let mut allocations_measured = 0;
    let mut push_total = 0u64;
    for tick in 0..warmup_ticks + ticks {
        if tick == warmup_ticks {
            allocations_measured = bench::allocations();
        }
        let start = bench::thread_cpu_ns();
        let frame_index = usize::try_from(tick).unwrap_or(0) % TONE_FRAMES;
        let seq = (tick & 0xFFFF) as u16;
        let timestamp = (tick as u32).wrapping_mul(FRAME as u32);
        for sender in &senders {
            let packet = RtpAudio {
                ssrc: sender.ssrc,
                sequence: seq,
                timestamp,
                payload: &sender.frames[frame_index],
            };
            mixer.push(sender.id, packet, now + Duration::from_millis(1));
        }
        let pushed = bench::thread_cpu_ns();
        now += FRAME_DURATION;
        mixer.tick(
            now,
            &mut |_, samples| samples.fill(0),
            &mut |id, payload| {
                out_frames += 1;
                out_bytes += payload.len() as u64;
                checksum = checksum
                    .wrapping_mul(31)
                    .wrapping_add(u64::from(payload[payload.len() / 2]) ^ id.0);
            },
        );
        let end = bench::thread_cpu_ns();
        if tick >= warmup_ticks {
            tick_ns.push(end - start);
            push_total += pushed - start;
        }
    }
    let allocations = bench::allocations() - allocations_measured;
    black_box(checksum);

    let measured = tick_ns.len().max(1) as f64;
    let total: u64 = tick_ns.iter().sum();
    let mut sorted = tick_ns.clone();
    sorted.sort_unstable();
    let mean_ns = total as f64 / measured;
    let per_participant_ns = mean_ns / participants.max(1) as f64;
    let per_core = 20_000_000.0 / per_participant_ns;
    let p99 = percentile(&sorted, 0.99);
    let per_core_p99 = participants as f64 * 20_000_000.0 / p99.max(1) as f64;
    println!(
        "rooms {} x {} ({} talking, {} {}), {} participants, {} s simulated",
        options.rooms,
        options.size,
        options.talkers,
        options.size.saturating_sub(options.talkers),
        if options.noise { "noise" } else { "silent" },
        participants,
        options.seconds
    );
    println!(
        "CPU per tick (push + tick): mean {:.1} us, p50 {:.1} us, p99 {:.1} us, max {:.1} us (push share {:.0}%)",
        mean_ns / 1e3,
        percentile(&sorted, 0.5) as f64 / 1e3,
        p99 as f64 / 1e3,
        sorted.last().copied().unwrap_or(0) as f64 / 1e3,
        100.0 * push_total as f64 / total.max(1) as f64
    );
    println!(
        "CPU per participant per tick: {:.0} ns; participants per core at 20 ms real time: {:.0} (at p99 tick: {:.0})",
        per_participant_ns, per_core, per_core_p99
    );
    println!(
        "frames out {} ({} bytes); heap allocations while measuring: {}; mixer memory per participant: {} bytes",
        out_frames,
        out_bytes,
        allocations,
        mixer_bytes / participants.max(1) as u64
    );
}
