//! The relay side of `scripts/bench-media.sh`: opens SESSIONS relayed calls whose far ends
//! live at fixed loopback addresses (played by `examples/media_load.rs`), prints each
//! call's two relay addresses, then relays until killed.
//!
//! ```text
//! cargo run --release --example media_relay_server -- --sessions 1000 \
//!     [--mode sentralbord|plain] [--caller-far 127.0.0.2:20000] [--callee-far 127.0.0.3:20000] \
//!     [--far-sockets 0] [--local-ip 127.0.0.1] [--port-min 40000] [--port-max 59999] \
//!     [--single] [--max-seconds 3600]
//! ```
//!
//! Far ends: session `i`'s caller sends from (and receives at) `caller-far` with the port
//! raised by `2 * (i mod M)`, its callee likewise from `callee-far`; `M` is
//! `--far-sockets` (0: one far-end socket per session and side). The load generator takes
//! the same options.
//!
//! Modes:
//! - `sentralbord`: sentralbord's media plane (`MediaDriver`: one thread, mio,
//!   recvmmsg/sendmmsg unless `--single`) with PCMU on both legs and telephone-event 101,
//!   four ports per call (RTP and RTCP of each leg), as the daemon opens them.
//! - `plain`: the physical floor, a trivial relay on one thread: level-triggered epoll over
//!   two sockets per call, `recvmmsg` of up to 32 datagrams from a readable socket and one
//!   `sendmmsg` of them, unchanged, from the other leg's socket to the other far end. No
//!   parsing, no checks: what the kernel and the system calls cost alone.
//!
//! Output on stdout, one line per call, then `# ready` once every call is set up:
//!
//! ```text
//! <session> <caller relay ip:port> <callee relay ip:port>
//! ```
//!
//! The caller's far end sends to the first address, the callee's to the second. On
//! SIGTERM or SIGINT (or after `--max-seconds`) it prints its counters and CPU time on
//! stderr as a `# stats` line and exits.

// A benchmark harness measures wall time: the clock rule of the daemon does not apply.
#![allow(clippy::disallowed_methods)]

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sentralbord::media::codec::Codec;
use sentralbord::media::control::{LegMedia, MediaCommand, MediaEvent, MediaLeg, MediaSessionId};
use sentralbord::media::driver::{MediaDriver, MediaDriverConfig};
use sentralbord::media::relay::NoPrompts;
use sentralbord::media::sdp::Direction;

/// Set by SIGTERM/SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

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

/// Raises the soft open-files limit to the hard one (four sockets per call).
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

/// This process's user+system CPU seconds.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sentralbord,
    Plain,
}

#[derive(Debug, Clone)]
struct Options {
    mode: Mode,
    sessions: usize,
    caller_far: SocketAddr,
    callee_far: SocketAddr,
    far_sockets: usize,
    local_ip: IpAddr,
    port_min: u16,
    port_max: u16,
    batch: bool,
    max_seconds: u64,
}

fn parse_options() -> io::Result<Options> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    let mut options = Options {
        mode: Mode::Sentralbord,
        sessions: 1000,
        caller_far: SocketAddr::from(([127, 0, 0, 2], 20_000)),
        callee_far: SocketAddr::from(([127, 0, 0, 3], 20_000)),
        far_sockets: 0,
        local_ip: IpAddr::from([127, 0, 0, 1]),
        port_min: 40_000,
        port_max: 59_999,
        batch: true,
        max_seconds: 3600,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--single" {
            options.batch = false;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| bad(&format!("{flag} needs a value")))?;
        let invalid = |_| bad(&format!("bad value for {flag}: {value}"));
        match flag.as_str() {
            "--mode" => {
                options.mode = match value.as_str() {
                    "sentralbord" => Mode::Sentralbord,
                    "plain" => Mode::Plain,
                    _ => return Err(bad("--mode is sentralbord or plain")),
                }
            }
            "--sessions" => options.sessions = value.parse().map_err(|_| bad("--sessions"))?,
            "--caller-far" => options.caller_far = value.parse().map_err(invalid)?,
            "--callee-far" => options.callee_far = value.parse().map_err(invalid)?,
            "--far-sockets" => {
                options.far_sockets = value.parse().map_err(|_| bad("--far-sockets"))?
            }
            "--local-ip" => options.local_ip = value.parse().map_err(invalid)?,
            "--port-min" => options.port_min = value.parse().map_err(|_| bad("--port-min"))?,
            "--port-max" => options.port_max = value.parse().map_err(|_| bad("--port-max"))?,
            "--max-seconds" => {
                options.max_seconds = value.parse().map_err(|_| bad("--max-seconds"))?
            }
            _ => return Err(bad(&format!("unknown option {flag}"))),
        }
    }
    if options.far_sockets == 0 || options.far_sockets > options.sessions {
        options.far_sockets = options.sessions;
    }
    Ok(options)
}

/// The far end of `session` on one side: `base` with the port raised by `2 * (i mod M)`.
fn far_end(base: SocketAddr, session: usize, far_sockets: usize) -> io::Result<SocketAddr> {
    let step = session % far_sockets.max(1) * 2;
    u16::try_from(usize::from(base.port()) + step)
        .map(|port| SocketAddr::new(base.ip(), port))
        .map_err(|_| io::Error::other("far-end port beyond 65535: lower the base port"))
}

fn main() -> io::Result<()> {
    let options = parse_options()?;
    install_signal_handlers();
    raise_fd_limit();
    match options.mode {
        Mode::Sentralbord => run_sentralbord(&options),
        Mode::Plain => run_plain(&options),
    }
}

/// Sleeps until a signal or `--max-seconds`.
fn wait_for_stop(max_seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(max_seconds);
    while !STOP.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_sentralbord(options: &Options) -> io::Result<()> {
    let (events_tx, mut events) = tokio::sync::mpsc::channel(65_536);
    let config = MediaDriverConfig {
        batch_receive: options.batch,
        batch_send: options.batch,
        port_min: options.port_min,
        port_max: options.port_max,
        ..MediaDriverConfig::default()
    };
    let handle = MediaDriver::start(config, Box::new(NoPrompts), events_tx)?;
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    for i in 0..options.sessions {
        let session = MediaSessionId(u64::try_from(i).unwrap_or(u64::MAX));
        handle
            .send(MediaCommand::Open {
                session,
                local_ip: options.local_ip,
            })
            .map_err(io::Error::other)?;
        let (caller, callee) = loop {
            match events.blocking_recv() {
                Some(MediaEvent::Opened {
                    session: s,
                    caller,
                    callee,
                }) if s == session => break (caller, callee),
                Some(MediaEvent::OpenFailed { session: s }) if s == session => {
                    return Err(io::Error::other(format!(
                        "session {i}: no free port pair in {}..={}",
                        options.port_min, options.port_max
                    )));
                }
                Some(_) => {}
                None => return Err(io::Error::other("the media driver stopped")),
            }
        };
        for (leg, base) in [
            (MediaLeg::Caller, options.caller_far),
            (MediaLeg::Callee, options.callee_far),
        ] {
            let media = LegMedia {
                remote_rtp: Some(far_end(base, i, options.far_sockets)?),
                remote_rtcp: None,
                codec: Codec::Pcmu,
                payload_type: 0,
                telephone_event: Some(101),
                direction: Direction::SendRecv,
                ptime_ms: 20,
            };
            handle
                .send(MediaCommand::Update {
                    session,
                    leg,
                    media,
                })
                .map_err(io::Error::other)?;
        }
        writeln!(
            stdout,
            "{i} {} {}",
            SocketAddr::new(options.local_ip, caller.rtp),
            SocketAddr::new(options.local_ip, callee.rtp)
        )?;
    }
    writeln!(stdout, "# ready")?;
    stdout.flush()?;
    drop(stdout);

    let started = Instant::now();
    wait_for_stop(options.max_seconds);
    let stats = handle.stats();
    let mut other_events = 0u64;
    while events.try_recv().is_ok() {
        other_events += 1;
    }
    eprintln!(
        "# stats mode=sentralbord batch={} sessions={} received={} relayed={} dropped={} generated={} send_errors={} receive_calls={} events={other_events} cpu_s={:.2} wall_s={:.1}",
        options.batch,
        options.sessions,
        stats.datagrams_received,
        stats.datagrams_relayed,
        stats.datagrams_dropped,
        stats.datagrams_generated,
        stats.send_errors,
        stats.receive_calls,
        own_cpu_seconds(),
        started.elapsed().as_secs_f64(),
    );
    handle.shutdown();
    Ok(())
}

/// Datagrams per system call of the plain relay.
const BATCH: usize = 32;
/// Largest datagram the plain relay carries.
const MAX_DATAGRAM: usize = 2048;

/// `recvmmsg`/`sendmmsg` buffers of the plain relay.
struct Mmsg {
    buffers: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    iovecs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
}

impl Mmsg {
    fn new() -> Self {
        Self {
            buffers: Box::new([[0; MAX_DATAGRAM]; BATCH]),
            iovecs: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH],
            // SAFETY: mmsghdr is plain data; zeroes are empty headers.
            headers: unsafe { std::mem::zeroed() },
        }
    }

    /// Receives up to BATCH datagrams (without their sources) from `fd`.
    fn receive(&mut self, fd: libc::c_int) -> io::Result<usize> {
        for ((buffer, iovec), header) in self
            .buffers
            .iter_mut()
            .zip(self.iovecs.iter_mut())
            .zip(self.headers.iter_mut())
        {
            *iovec = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            // SAFETY: plain data.
            *header = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live iovec and buffer of self.
        let count = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if count < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Sends the first `count` received datagrams from `fd` to `to` (IPv4 only).
    fn send(&mut self, fd: libc::c_int, count: usize, to: &libc::sockaddr_in) -> io::Result<usize> {
        let count = count.min(BATCH);
        for i in 0..count {
            let len = self.headers[i].msg_len as usize;
            self.iovecs[i] = libc::iovec {
                iov_base: self.buffers[i].as_mut_ptr().cast(),
                iov_len: len,
            };
            // SAFETY: plain data.
            self.headers[i] = unsafe { std::mem::zeroed() };
            self.headers[i].msg_hdr.msg_name = (to as *const libc::sockaddr_in).cast_mut().cast();
            self.headers[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            self.headers[i].msg_hdr.msg_iov = &mut self.iovecs[i];
            self.headers[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `count` headers point at live iovecs, buffers and `to`.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                self.headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(sent).unwrap_or(0))
    }
}

fn sockaddr_in(address: SocketAddr) -> io::Result<libc::sockaddr_in> {
    let SocketAddr::V4(v4) = address else {
        return Err(io::Error::other("the plain relay is IPv4 only"));
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

fn run_plain(options: &Options) -> io::Result<()> {
    // Socket 2i faces session i's caller, 2i + 1 its callee; what one receives leaves
    // from the other, to the other far end.
    let mut sockets = Vec::with_capacity(options.sessions * 2);
    let mut destinations = Vec::with_capacity(options.sessions * 2);
    let mut port = u32::from(options.port_min + options.port_min % 2);
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    for i in 0..options.sessions {
        let mut pair = Vec::with_capacity(2);
        while pair.len() < 2 {
            if port > u32::from(options.port_max) {
                return Err(io::Error::other("port range exhausted"));
            }
            let address = SocketAddr::new(options.local_ip, u16::try_from(port).unwrap_or(0));
            port += 2;
            if let Ok(socket) = UdpSocket::bind(address) {
                socket.set_nonblocking(true)?;
                pair.push(socket);
            }
        }
        writeln!(
            stdout,
            "{i} {} {}",
            pair[0].local_addr()?,
            pair[1].local_addr()?
        )?;
        sockets.extend(pair);
        // What socket 2i receives goes to the callee, what 2i + 1 receives to the caller.
        destinations.push(sockaddr_in(far_end(
            options.callee_far,
            i,
            options.far_sockets,
        )?)?);
        destinations.push(sockaddr_in(far_end(
            options.caller_far,
            i,
            options.far_sockets,
        )?)?);
    }
    writeln!(stdout, "# ready")?;
    stdout.flush()?;
    drop(stdout);

    // SAFETY: plain system call.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        return Err(io::Error::last_os_error());
    }
    for (index, socket) in sockets.iter().enumerate() {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: index as u64,
        };
        // SAFETY: valid epoll and socket descriptors and event.
        if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, socket.as_raw_fd(), &mut event) }
            < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.max_seconds);
    let mut mmsg = Mmsg::new();
    let mut ready = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let (mut received, mut relayed, mut errors, mut receive_calls) = (0u64, 0u64, 0u64, 0u64);
    while !STOP.load(Ordering::Relaxed) && Instant::now() < deadline {
        // SAFETY: `ready` is a live array of its length.
        let count = unsafe { libc::epoll_wait(epoll, ready.as_mut_ptr(), 1024, 100) };
        if count < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        for event in ready.iter().take(usize::try_from(count).unwrap_or(0)) {
            let index = event.u64 as usize;
            let (Some(from), Some(out), Some(to)) = (
                sockets.get(index),
                sockets.get(index ^ 1),
                destinations.get(index),
            ) else {
                continue;
            };
            // One batch per readable socket per round (level-triggered: the rest next).
            match mmsg.receive(from.as_raw_fd()) {
                Ok(0) => {}
                Ok(n) => {
                    received += n as u64;
                    receive_calls += 1;
                    match mmsg.send(out.as_raw_fd(), n, to) {
                        Ok(sent) => relayed += sent as u64,
                        Err(_) => errors += 1,
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => errors += 1,
            }
        }
    }
    eprintln!(
        "# stats mode=plain sessions={} received={received} relayed={relayed} errors={errors} receive_calls={receive_calls} cpu_s={:.2} wall_s={:.1}",
        options.sessions,
        own_cpu_seconds(),
        started.elapsed().as_secs_f64(),
    );
    // SAFETY: our own descriptor.
    unsafe { libc::close(epoll) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_ends_repeat_every_far_sockets_sessions() {
        let base = SocketAddr::from(([127, 0, 0, 3], 20_000));
        let at = |port| SocketAddr::from(([127, 0, 0, 3], port));
        assert_eq!(far_end(base, 0, 100).unwrap(), at(20_000));
        assert_eq!(far_end(base, 7, 100).unwrap(), at(20_014));
        assert_eq!(
            far_end(base, 7, 2).unwrap(),
            at(20_002),
            "shared: session 7 uses pair 1"
        );
        assert_eq!(
            far_end(base, 7, 0).unwrap(),
            at(20_000),
            "no sockets: pair 0"
        );
        assert!(
            far_end(base, 30_000, 40_000).is_err(),
            "port 80000 does not exist"
        );
    }

    #[test]
    fn sockaddr_in_is_in_network_order() {
        let address = sockaddr_in(SocketAddr::from(([127, 0, 0, 1], 40_000))).unwrap();
        assert_eq!(address.sin_family, libc::AF_INET as libc::sa_family_t);
        assert_eq!(u16::from_be(address.sin_port), 40_000);
        assert_eq!(u32::from_be(address.sin_addr.s_addr), 0x7f00_0001);
        assert!(sockaddr_in("[::1]:5".parse().unwrap()).is_err());
    }
}
