//! The media side of `scripts/bench-conference.sh`: sentralbord's real media driver with
//! PARTICIPANTS conference legs whose far ends live at fixed loopback addresses (played
//! by `examples/conference_load_net.rs`), in rooms of ROOM_SIZE; prints each participant's
//! relay address, then mixes until killed.
//!
//! ```text
//! cargo run --release --example conference_server -- --participants 1000 \
//!     [--room-size 10] [--far 127.0.0.4:20000] [--local-ip 127.0.0.1] \
//!     [--port-min 40000] [--port-max 59999] [--inband-dtmf] [--max-seconds 600]
//! ```
//!
//! As the engine does for a conference call: per participant one media session is opened
//! (`MediaCommand::Open`: four ports bound, RTP and RTCP of both legs), its caller leg gets
//! the far end's SDP (`Update`: `far` with the port raised by `2 * i`, PCMU, with
//! telephone-event 101 unless `--inband-dtmf`, which makes the relay look for DTMF tones
//! in the audio as it does for a phone that offers no telephone-event), and the caller leg
//! joins room `i / room-size` (`JoinConference`, unmuted). The callee leg stays unused.
//!
//! Output on stdout, one line per participant, then `# ready` once every participant is
//! in its room (a refused join is an error, before `# ready`):
//!
//! ```text
//! <participant> <relay ip:port>
//! ```
//!
//! Events are drained on a thread of their own (as the engine would), counting `Talking`
//! starts. On SIGTERM or SIGINT (or after `--max-seconds`) the driver's counters, the
//! events and the process CPU time go to stderr as one `# stats` line.

// A benchmark harness measures wall time: the clock rule of the daemon does not apply.
#![allow(clippy::disallowed_methods)]

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentralbord::media::codec::Codec;
use sentralbord::media::control::{
    ConferenceId, LegMedia, MediaCommand, MediaEvent, MediaLeg, MediaSessionId,
};
use sentralbord::media::driver::{MediaDriver, MediaDriverConfig, MediaHandle};
use sentralbord::media::relay::NoPrompts;
use sentralbord::media::sdp::Direction;

/// Set by SIGTERM/SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

/// A session id no participant uses: its `Close` is answered `Closed` after every earlier
/// command's events, which makes it a barrier.
const BARRIER: MediaSessionId = MediaSessionId(u64::MAX);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// Raises the soft open-files limit to the hard one (four sockets per participant).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// This process's user+system CPU seconds (every thread).
fn own_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

#[derive(Debug, Clone)]
struct Options {
    participants: usize,
    room_size: usize,
    far: SocketAddr,
    local_ip: IpAddr,
    port_min: u16,
    port_max: u16,
    telephone_event: Option<u8>,
    max_seconds: u64,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> io::Result<Options> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut options = Options {
        participants: 100,
        room_size: 10,
        far: SocketAddr::from(([127, 0, 0, 4], 20_000)),
        local_ip: IpAddr::from([127, 0, 0, 1]),
        port_min: 40_000,
        port_max: 59_999,
        telephone_event: Some(101),
        max_seconds: 600,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--inband-dtmf" {
            options.telephone_event = None;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| bad(format!("{flag} needs a value")))?;
        let invalid = || bad(format!("bad value for {flag}: {value}"));
        match flag.as_str() {
            "--participants" => options.participants = value.parse().map_err(|_| invalid())?,
            "--room-size" => options.room_size = value.parse().map_err(|_| invalid())?,
            "--far" => options.far = value.parse().map_err(|_| invalid())?,
            "--local-ip" => options.local_ip = value.parse().map_err(|_| invalid())?,
            "--port-min" => options.port_min = value.parse().map_err(|_| invalid())?,
            "--port-max" => options.port_max = value.parse().map_err(|_| invalid())?,
            "--max-seconds" => options.max_seconds = value.parse().map_err(|_| invalid())?,
            _ => return Err(bad(format!("unknown option {flag}"))),
        }
    }
    if options.participants == 0 || options.room_size == 0 {
        return Err(bad(
            "--participants and --room-size must be at least 1".into()
        ));
    }
    // The far ends' RTP ports (and RTCP one above) must exist.
    far_end(options.far, options.participants - 1)?;
    Ok(options)
}

/// Participant `i`'s far end: `base` with the port raised by `2 * i`.
fn far_end(base: SocketAddr, participant: usize) -> io::Result<SocketAddr> {
    let port = usize::from(base.port()) + participant * 2;
    u16::try_from(port + 1)
        .map(|_| SocketAddr::new(base.ip(), port as u16))
        .map_err(|_| io::Error::other("far-end port beyond 65535: lower the base port"))
}

/// The room of participant `i`.
fn room_of(participant: usize, room_size: usize) -> ConferenceId {
    ConferenceId(u64::try_from(participant / room_size.max(1)).unwrap_or(u64::MAX))
}

/// What the event thread counted.
#[derive(Debug, Default)]
struct EventCounts {
    talking_started: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

/// Sleeps until a signal or `--max-seconds`.
fn wait_for_stop(max_seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(max_seconds);
    while !STOP.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(handle: &MediaHandle, command: MediaCommand) -> io::Result<()> {
    handle.send(command).map_err(io::Error::other)
}

/// Opens participant `i`'s session and returns its caller leg's RTP port.
fn open_session(
    handle: &MediaHandle,
    events: &mut tokio::sync::mpsc::Receiver<MediaEvent>,
    options: &Options,
    i: usize,
) -> io::Result<u16> {
    let session = MediaSessionId(u64::try_from(i).map_err(io::Error::other)?);
    send(
        handle,
        MediaCommand::Open {
            session,
            local_ip: options.local_ip,
        },
    )?;
    loop {
        match events.blocking_recv() {
            Some(MediaEvent::Opened {
                session: s, caller, ..
            }) if s == session => return Ok(caller.rtp),
            Some(MediaEvent::OpenFailed { session: s }) if s == session => {
                return Err(io::Error::other(format!(
                    "participant {i}: no free port pair in {}..={}",
                    options.port_min, options.port_max
                )));
            }
            Some(MediaEvent::ConferenceRefused { session: s, .. }) => {
                return Err(io::Error::other(format!(
                    "participant {}: conference join refused",
                    s.0
                )));
            }
            Some(_) => {}
            None => return Err(io::Error::other("the media driver stopped")),
        }
    }
}

/// Waits for the barrier's `Closed`: every earlier command has been applied and its
/// events sent; a refused join among them is an error.
fn wait_barrier(
    handle: &MediaHandle,
    events: &mut tokio::sync::mpsc::Receiver<MediaEvent>,
) -> io::Result<()> {
    send(handle, MediaCommand::Close { session: BARRIER })?;
    loop {
        match events.blocking_recv() {
            Some(MediaEvent::Closed { session, .. }) if session == BARRIER => return Ok(()),
            Some(MediaEvent::ConferenceRefused { session, .. }) => {
                return Err(io::Error::other(format!(
                    "participant {}: conference join refused",
                    session.0
                )));
            }
            Some(_) => {}
            None => return Err(io::Error::other("the media driver stopped")),
        }
    }
}

fn main() -> io::Result<()> {
    let options = parse_options(std::env::args().skip(1))?;
    install_signal_handlers();
    raise_fd_limit();
    let (events_tx, mut events) = tokio::sync::mpsc::channel(65_536);
    let config = MediaDriverConfig {
        port_min: options.port_min,
        port_max: options.port_max,
        ..MediaDriverConfig::default()
    };
    let handle = MediaDriver::start(config, Box::new(NoPrompts), events_tx)?;
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    for i in 0..options.participants {
        let port = open_session(&handle, &mut events, &options, i)?;
        let session = MediaSessionId(u64::try_from(i).map_err(io::Error::other)?);
        let media = LegMedia {
            remote_rtp: Some(far_end(options.far, i)?),
            remote_rtcp: None,
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: options.telephone_event,
            direction: Direction::SendRecv,
            ptime_ms: 20,
        };
        send(
            &handle,
            MediaCommand::Update {
                session,
                leg: MediaLeg::Caller,
                media,
            },
        )?;
        send(
            &handle,
            MediaCommand::JoinConference {
                session,
                leg: MediaLeg::Caller,
                room: room_of(i, options.room_size),
                muted: false,
                tenant: None,
            },
        )?;
        writeln!(stdout, "{i} {}", SocketAddr::new(options.local_ip, port))?;
    }
    wait_barrier(&handle, &mut events)?;
    writeln!(stdout, "# ready")?;
    stdout.flush()?;
    drop(stdout);

    // From here on the engine's part: take every event at once so none waits in the
    // driver's outbox.
    let counts = Arc::new(EventCounts::default());
    let thread_counts = Arc::clone(&counts);
    let drain = std::thread::Builder::new()
        .name("events".into())
        .spawn(move || {
            while let Some(event) = events.blocking_recv() {
                let counter = match event {
                    MediaEvent::Talking { talking: true, .. } => &thread_counts.talking_started,
                    MediaEvent::Talking { .. } => continue,
                    MediaEvent::ConferenceRefused { .. } => &thread_counts.refused,
                    _ => &thread_counts.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })?;

    let started = Instant::now();
    wait_for_stop(options.max_seconds);
    let stats = handle.stats();
    let cpu = own_cpu_seconds();
    handle.shutdown();
    // The driver's sender is gone with it: the event thread ends.
    let _ = drain.join();
    eprintln!(
        "# stats participants={} rooms={} received={} relayed={} mixed={} dropped={} generated={} send_errors={} receive_errors={} receive_calls={} events_dropped={} ticks_caught_up={} ticks_skipped={} talking_started={} refused={} other_events={} cpu_s={cpu:.2} wall_s={:.1}",
        options.participants,
        options.participants.div_ceil(options.room_size),
        stats.datagrams_received,
        stats.datagrams_relayed,
        stats.datagrams_mixed,
        stats.datagrams_dropped,
        stats.datagrams_generated,
        stats.send_errors,
        stats.receive_errors,
        stats.receive_calls,
        stats.events_dropped,
        stats.ticks_caught_up,
        stats.ticks_skipped,
        counts.talking_started.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn participants_fill_rooms_in_order() {
        assert_eq!(room_of(0, 10), ConferenceId(0));
        assert_eq!(room_of(9, 10), ConferenceId(0));
        assert_eq!(room_of(10, 10), ConferenceId(1));
        assert_eq!(room_of(25, 5), ConferenceId(5));
    }

    #[test]
    fn far_ends_step_by_two_ports_with_room_for_rtcp() {
        let base = SocketAddr::from(([127, 0, 0, 4], 20_000));
        assert_eq!(far_end(base, 0).unwrap(), base);
        assert_eq!(
            far_end(base, 7).unwrap(),
            SocketAddr::from(([127, 0, 0, 4], 20_014))
        );
        let top = SocketAddr::from(([127, 0, 0, 4], 65_532));
        assert!(far_end(top, 1).is_ok(), "RTP 65534, RTCP 65535");
        assert!(far_end(top, 2).is_err(), "RTP 65536 does not exist");
    }

    #[test]
    fn options_parse_and_check_the_far_end_range() {
        let options = parse_options(args(&[
            "--participants",
            "30",
            "--room-size",
            "5",
            "--inband-dtmf",
        ]))
        .unwrap();
        assert_eq!((options.participants, options.room_size), (30, 5));
        assert_eq!(options.telephone_event, None);
        assert_eq!(parse_options(args(&[])).unwrap().telephone_event, Some(101));
        assert!(parse_options(args(&["--participants", "0"])).is_err());
        assert!(parse_options(args(&["--participants"])).is_err());
        assert!(parse_options(args(&[
            "--far",
            "127.0.0.4:65000",
            "--participants",
            "1000"
        ]))
        .is_err());
        assert!(parse_options(args(&["--bogus", "1"])).is_err());
    }
}
