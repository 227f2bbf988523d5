//! One-off measurement of the media driver: how many packets one core relays.
//!
//! SESSIONS sessions of two legs; a load generator thread plays both far ends of every
//! session on loopback, sending 20 ms PCMU packets (50 per second each direction), or as
//! fast as it can with `flood`. Reports the relayed rate and the media thread's CPU time
//! (from /proc, Linux), so the packets per CPU-second hold even on a busy machine.
//!
//! ```text
//! cargo run --release --example media_relay_bench -- [batch|single] [paced|flood] [SESSIONS] [SECONDS] [inband]
//! ```
//!
//! Legs negotiate telephone-event unless `inband` is given; then every packet also goes
//! through the in-band DTMF detector.

// A benchmark harness measures wall time: the clock rule of the daemon does not apply.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentralbord::media::codec::Codec;
use sentralbord::media::control::{LegMedia, MediaCommand, MediaEvent, MediaLeg, MediaSessionId};
use sentralbord::media::driver::{DriverStats, MediaDriver, MediaDriverConfig};
use sentralbord::media::relay::NoPrompts;
use sentralbord::media::rtp::{write_header, RtpHeaderFields};
use sentralbord::media::sdp::Direction;

const FIRST_PORT: u16 = 40_000;

/// Nanoseconds the media thread has run on a CPU.
fn media_thread_cpu_ns() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "media-relay" {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            return schedstat.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

fn packet(seq: u16, ssrc: u32) -> [u8; 172] {
    let mut bytes = [0xffu8; 172];
    let fields = RtpHeaderFields {
        marker: false,
        payload_type: 0,
        sequence_number: seq,
        timestamp: u32::from(seq).wrapping_mul(160),
        ssrc,
    };
    let _ = write_header(&mut bytes, &fields);
    bytes
}

struct Far {
    socket: UdpSocket,
    to: SocketAddr,
    ssrc: u32,
}

/// Sends one packet per far end per 20 ms, spread over the period (or back to back).
fn generate(fars: &[Far], flood: bool, stop: &AtomicBool) -> u64 {
    let start = Instant::now();
    let slots = 20u32;
    let per_slot = fars.len().div_ceil(slots as usize).max(1);
    let mut seq = 0u16;
    let mut sent = 0u64;
    let mut period = 0u32;
    while !stop.load(Ordering::Relaxed) {
        for (slot, chunk) in fars.chunks(per_slot).enumerate() {
            if !flood {
                let due = start
                    + Duration::from_millis(20) * period
                    + Duration::from_millis(1) * u32::try_from(slot).unwrap_or(0);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            for far in chunk {
                if far.socket.send_to(&packet(seq, far.ssrc), far.to).is_ok() {
                    sent += 1;
                }
            }
        }
        seq = seq.wrapping_add(1);
        period += 1;
    }
    sent
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let batch = args.get(1).map_or("batch", String::as_str) != "single";
    let flood = args.get(2).map_or("paced", String::as_str) == "flood";
    let sessions: u16 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10);
    let inband = args.get(5).is_some_and(|a| a == "inband");

    let (events_tx, mut events) = tokio::sync::mpsc::channel(65_536);
    let config = MediaDriverConfig {
        batch_receive: batch,
        batch_send: batch,
        receive_buffer_bytes: Some(1 << 20),
        port_min: FIRST_PORT,
        port_max: FIRST_PORT + 4 * sessions + 3,
        ..MediaDriverConfig::default()
    };
    let handle = MediaDriver::start(config, Box::new(NoPrompts), events_tx)?;
    let local: IpAddr = "127.0.0.1".parse().map_err(std::io::Error::other)?;
    let mut fars = Vec::new();
    for i in 0..sessions {
        let session = MediaSessionId(u64::from(i));
        let _ = handle.send(MediaCommand::Open {
            session,
            local_ip: local,
        });
        // The media plane picks the ports.
        let (caller, callee) = loop {
            match events.blocking_recv() {
                Some(MediaEvent::Opened {
                    session: s,
                    caller,
                    callee,
                }) if s == session => break (caller, callee),
                Some(_) => {}
                None => return Err(std::io::Error::other("media driver stopped")),
            }
        };
        for (leg, ports) in [(MediaLeg::Caller, caller), (MediaLeg::Callee, callee)] {
            let socket = UdpSocket::bind("127.0.0.2:0")?;
            let media = LegMedia {
                remote_rtp: Some(socket.local_addr()?),
                remote_rtcp: None,
                codec: Codec::Pcmu,
                payload_type: 0,
                telephone_event: (!inband).then_some(101),
                direction: Direction::SendRecv,
                ptime_ms: 20,
            };
            let _ = handle.send(MediaCommand::Update {
                session,
                leg,
                media,
            });
            fars.push(Far {
                socket,
                to: SocketAddr::new(local, ports.rtp),
                ssrc: 0x1000_0000 + u32::from(i) * 2 + u32::from(leg == MediaLeg::Callee),
            });
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    if let Ok(event) = events.try_recv() {
        eprintln!("unexpected event (port in use?): {event:?}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let generator_stop = Arc::clone(&stop);
    let generator = std::thread::spawn(move || generate(&fars, flood, &generator_stop));
    std::thread::sleep(Duration::from_secs(2));
    let (before, cpu_before, wall_before) = (handle.stats(), media_thread_cpu_ns(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let (after, cpu_after, wall) = (handle.stats(), media_thread_cpu_ns(), wall_before.elapsed());
    stop.store(true, Ordering::Relaxed);
    let offered = generator.join().unwrap_or(0);
    handle.shutdown();

    let delta = |f: fn(&DriverStats) -> u64| f(&after).saturating_sub(f(&before));
    let relayed = delta(|s| s.datagrams_relayed);
    let received = delta(|s| s.datagrams_received);
    let calls = delta(|s| s.receive_calls);
    let cpu_s = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e9,
        _ => f64::NAN,
    };
    let wall_s = wall.as_secs_f64();
    println!(
        "mode={} load={} inband_dtmf={inband} sessions={sessions} offered_total={offered} wall={wall_s:.1}s",
        if batch { "recvmmsg+sendmmsg" } else { "recv_from+send_to" },
        if flood { "flood" } else { "paced 50pps/dir" },
    );
    println!(
        "received {:.0}/s relayed {:.0}/s dropped {} send_errors {} datagrams/recv-call {:.2}",
        received as f64 / wall_s,
        relayed as f64 / wall_s,
        delta(|s| s.datagrams_dropped),
        delta(|s| s.send_errors),
        received as f64 / calls.max(1) as f64,
    );
    println!(
        "media thread cpu {:.1}% -> {:.0} packets relayed per cpu-second",
        100.0 * cpu_s / wall_s,
        relayed as f64 / cpu_s
    );
    Ok(())
}
