//! The media driver: the I/O around [`Relay`]. One dedicated OS thread (not a tokio task)
//! runs a mio poll loop over every session's UDP sockets:
//!
//! - Commands arrive on a std channel with a [`mio::Waker`]; they are applied before the
//!   packets of the same wakeup, so a packet sent after a command sees it. `Open` binds the
//!   four ports (RTP and RTCP of each leg) on the session's local IP, non-blocking and
//!   without `SO_REUSEADDR`; a port that cannot be bound is reported as
//!   [`MediaEvent::PortFailed`] and the session is not opened. `Close` releases them.
//! - A readable socket is drained with `recvmmsg` (up to 32 datagrams a call) or `recv_from`
//!   ([`MediaDriverConfig::batch_receive`]); each datagram goes through
//!   [`Relay::on_packet`] in place, and what it says to send goes out with `sendmmsg`, one call
//!   per run of datagrams leaving from the same socket ([`MediaDriverConfig::batch_send`]),
//!   or `send_to`. A socket gets at most 64 datagrams per round so one flood cannot
//!   starve the others; the rest are read in the next round. Conference audio goes into
//!   the mixer: counted as mixed ([`DriverStats::datagrams_mixed`]), not as dropped.
//! - The poll timeout is the time to the relay's next 20 ms tick (and a long round of
//!   reading ready sockets looks at the clock every 32 of them, so the tick is not held up
//!   behind it): one tick drives every generated stream, conference mix, media timeout
//!   and RTCP report. With `batch_send`, what a tick makes is queued, grouped by source
//!   socket and sent with `sendmmsg` (a run per socket, 32 a call): one datagram per
//!   socket on a punctual tick (each leg sends from its own port), the whole burst of a
//!   socket's stream on a tick that catches up after a stall.
//! - Events leave on a bounded tokio channel with `try_send`: the media thread never
//!   blocks. When the channel is full they wait in a bounded outbox; beyond it they are
//!   dropped and counted ([`DriverStats::events_dropped`]).
//!
//! Batching is the default. Measured with `examples/media_relay_bench.rs` (1000 sessions,
//! 50 packets a second each way, loopback, 2-core VM): both modes relay about 105 000
//! packets per CPU-second, since at that rate a socket rarely has more than one datagram
//! queued; when the thread falls behind, `recvmmsg` finds 4-6 per call and relays 20-30%
//! more. The one-datagram path stays for other systems and as a fallback.
//!
//! This thread is the only place of the media plane that reads the clock.

#[cfg(target_os = "linux")]
mod batch;
#[cfg(target_os = "linux")]
mod tick_queue;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc::error::TrySendError;

use crate::media::control::{MediaCommand, MediaEvent, MediaSessionId, PortPair, PortPool};
use crate::media::relay::{PacketAction, PromptFactory, Relay, RelayConfig};
use crate::util::time::Now;

/// The waker's token; sockets use their port number as token.
const WAKER: Token = Token(usize::MAX);
/// Local ports (socket table size).
const PORT_SPACE: usize = 1 << 16;
/// Datagrams read from one socket before the others get their turn.
const SOCKET_BUDGET: usize = 64;
/// Sockets read between two looks at the clock (for a tick that fell due meanwhile).
const TICK_CHECK_SOCKETS: usize = 32;
/// Events kept while the engine's channel is full.
const MAX_OUTBOX: usize = 65_536;
/// Receive buffer of the one-datagram path.
const SINGLE_BUFFER: usize = 2048;
/// Datagrams a tick's queue has room for before it grows (it keeps what it grew to).
#[cfg(target_os = "linux")]
const TICK_QUEUE_DATAGRAMS: usize = 4096;
/// Bytes per datagram a tick's queue reserves: an RTP header and 20 ms of G.711.
#[cfg(target_os = "linux")]
const TICK_QUEUE_BYTES_EACH: usize = 172;
/// Longest the loop sleeps while events wait for room in the channel.
const EVENT_RETRY: Duration = Duration::from_millis(20);
/// The media thread's name (Linux keeps 15 bytes).
const THREAD_NAME: &str = "media-relay";

/// How the media driver runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDriverConfig {
    /// No RTP from either leg for this long reports [`MediaEvent::Timeout`].
    pub media_timeout: Duration,
    /// Receive with `recvmmsg` (Linux), else one `recv_from` per datagram.
    pub batch_receive: bool,
    /// Send what one `recvmmsg` batch relays with `sendmmsg`, else one `send_to` each.
    pub batch_send: bool,
    /// The SDES CNAME of our RTCP reports.
    pub cname: String,
    /// `SO_RCVBUF` for media sockets (`None`: the system default).
    pub receive_buffer_bytes: Option<usize>,
    /// The lowest RTP port (even ports RTP, the next odd one RTCP).
    pub port_min: u16,
    /// The highest RTP/RTCP port.
    pub port_max: u16,
}

/// How many port pairs one `Open` tries before it reports `OpenFailed`.
const BIND_ATTEMPTS: usize = 64;

impl Default for MediaDriverConfig {
    fn default() -> Self {
        Self {
            media_timeout: Duration::from_secs(60),
            batch_receive: true,
            batch_send: true,
            cname: "sentralbord".to_string(),
            receive_buffer_bytes: None,
            port_min: 10_000,
            port_max: 59_999,
        }
    }
}

/// Counters of the media thread (cumulative since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams received on media sockets.
    pub datagrams_received: u64,
    /// Datagrams relayed (sent on after rewriting).
    pub datagrams_relayed: u64,
    /// Datagrams the relay dropped (strangers, RTCP, hold, malformed...).
    pub datagrams_dropped: u64,
    /// Conference audio taken into the mixer (neither relayed nor dropped).
    pub datagrams_mixed: u64,
    /// Datagrams we originated (generated audio, RTCP reports).
    pub datagrams_generated: u64,
    /// Sends that failed (buffer full, unreachable family...).
    pub send_errors: u64,
    /// Receives that failed with something else than "would block".
    pub receive_errors: u64,
    /// Receive system calls that returned data.
    pub receive_calls: u64,
    /// Events lost because the engine's channel and the outbox were full.
    pub events_dropped: u64,
    /// 20 ms ticks made late, in a burst after a stall of the media thread.
    pub ticks_caught_up: u64,
    /// 20 ms ticks skipped after a stall too long to catch up (their frames are never sent).
    pub ticks_skipped: u64,
}

/// [`DriverStats`] shared with the handle.
#[derive(Debug, Default)]
struct SharedStats([AtomicU64; 11]);

impl SharedStats {
    fn store(&self, stats: &DriverStats) {
        let values = [
            stats.datagrams_received,
            stats.datagrams_relayed,
            stats.datagrams_dropped,
            stats.datagrams_mixed,
            stats.datagrams_generated,
            stats.send_errors,
            stats.receive_errors,
            stats.receive_calls,
            stats.events_dropped,
            stats.ticks_caught_up,
            stats.ticks_skipped,
        ];
        for (cell, value) in self.0.iter().zip(values) {
            cell.store(value, Ordering::Relaxed);
        }
    }

    fn load(&self) -> DriverStats {
        let [received, relayed, dropped, mixed, generated, send_errors, receive_errors, receive_calls, events_dropped, ticks_caught_up, ticks_skipped] =
            self.0.each_ref().map(|cell| cell.load(Ordering::Relaxed));
        DriverStats {
            datagrams_received: received,
            datagrams_relayed: relayed,
            datagrams_dropped: dropped,
            datagrams_mixed: mixed,
            datagrams_generated: generated,
            send_errors,
            receive_errors,
            receive_calls,
            events_dropped,
            ticks_caught_up,
            ticks_skipped,
        }
    }
}

/// What the handle tells the media thread.
#[derive(Debug)]
enum Message {
    Command(MediaCommand),
    Shutdown,
}

/// The media thread is gone (shut down or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the media driver has stopped")]
pub struct MediaDriverStopped;

/// Sends commands to the media thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct MediaCommander {
    commands: mpsc::Sender<Message>,
    waker: Arc<Waker>,
}

impl MediaCommander {
    /// Queues a command and wakes the media thread.
    pub fn send(&self, command: MediaCommand) -> Result<(), MediaDriverStopped> {
        self.deliver(Message::Command(command))
    }

    fn deliver(&self, message: Message) -> Result<(), MediaDriverStopped> {
        self.commands
            .send(message)
            .map_err(|_| MediaDriverStopped)?;
        self.waker.wake().map_err(|_| MediaDriverStopped)
    }
}

/// The running media driver; dropping it stops the thread without waiting.
#[derive(Debug)]
pub struct MediaHandle {
    commander: MediaCommander,
    thread: Option<JoinHandle<()>>,
    stats: Arc<SharedStats>,
}

impl MediaHandle {
    /// Queues a command for the media thread.
    pub fn send(&self, command: MediaCommand) -> Result<(), MediaDriverStopped> {
        self.commander.send(command)
    }

    /// A clonable sender of commands (for other tasks).
    pub fn commander(&self) -> MediaCommander {
        self.commander.clone()
    }

    /// The media thread's counters.
    pub fn stats(&self) -> DriverStats {
        self.stats.load()
    }

    /// Stops the media thread and waits for it; open sessions' sockets are closed.
    pub fn shutdown(mut self) {
        let _ = self.commander.deliver(Message::Shutdown);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the media thread panicked");
            }
        }
    }
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.commander.deliver(Message::Shutdown);
        }
    }
}

/// Starts the media plane's I/O thread.
#[derive(Debug, Clone, Copy)]
pub struct MediaDriver;

impl MediaDriver {
    /// Spawns the media thread; `prompts` resolves prompt playlists, `events` carries
    /// [`MediaEvent`]s to the engine.
    pub fn start(
        config: MediaDriverConfig,
        prompts: Box<dyn PromptFactory>,
        events: tokio::sync::mpsc::Sender<MediaEvent>,
    ) -> io::Result<MediaHandle> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (commands_tx, commands_rx) = mpsc::channel();
        let stats = Arc::new(SharedStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .spawn(move || {
                MediaThread::new(poll, config, prompts, commands_rx, events, thread_stats).run();
            })?;
        Ok(MediaHandle {
            commander: MediaCommander {
                commands: commands_tx,
                waker,
            },
            thread: Some(thread),
            stats,
        })
    }
}

/// The one place the media plane reads the clock: the media driver is a runtime component
/// (clippy.toml allows clock reads only under src/runtime; to be reconciled by the lead).
#[allow(clippy::disallowed_methods)]
fn read_clock() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Binds one media port: non-blocking UDP, no address reuse.
fn bind_port(ip: IpAddr, port: u16, receive_buffer: Option<usize>) -> io::Result<UdpSocket> {
    let address = SocketAddr::new(ip, port);
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_reuse_address(false)?;
    if ip.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// Sends one datagram from the socket bound to `from_port`; true if the kernel took it.
fn send_one(
    sockets: &[Option<UdpSocket>],
    from_port: u16,
    to: SocketAddr,
    bytes: Option<&[u8]>,
    stats: &mut DriverStats,
) -> bool {
    let (Some(Some(socket)), Some(bytes)) = (sockets.get(usize::from(from_port)), bytes) else {
        stats.send_errors += 1;
        return false;
    };
    match socket.send_to(bytes, to) {
        Ok(_) => true,
        Err(_) => {
            stats.send_errors += 1;
            false
        }
    }
}

struct MediaThread {
    poll: Poll,
    relay: Relay,
    origin: Instant,
    commands: mpsc::Receiver<Message>,
    events: tokio::sync::mpsc::Sender<MediaEvent>,
    outbox: VecDeque<MediaEvent>,
    /// Socket by local port.
    sockets: Box<[Option<UdpSocket>]>,
    session_ports: HashMap<MediaSessionId, [u16; 4]>,
    /// Free RTP/RTCP port pairs.
    pool: PortPool,
    /// Ports to read from (readable, or left over from the last round).
    ready: Vec<u16>,
    receive_buffer: Option<usize>,
    batch_receive: bool,
    batch_send: bool,
    /// Kernel structures (and receive buffers) for `recvmmsg`/`sendmmsg`, when either is on.
    #[cfg(target_os = "linux")]
    batch: Option<Box<batch::MmsgBatch>>,
    #[cfg(target_os = "linux")]
    outgoing: Vec<batch::Outgoing>,
    /// What a tick makes, with `batch_send`.
    #[cfg(target_os = "linux")]
    tick_queue: tick_queue::TickQueue,
    single: Box<[u8; SINGLE_BUFFER]>,
    stats: DriverStats,
    shared: Arc<SharedStats>,
}

impl MediaThread {
    fn new(
        poll: Poll,
        config: MediaDriverConfig,
        prompts: Box<dyn PromptFactory>,
        commands: mpsc::Receiver<Message>,
        events: tokio::sync::mpsc::Sender<MediaEvent>,
        shared: Arc<SharedStats>,
    ) -> Self {
        let origin = read_clock();
        let relay_config = RelayConfig {
            media_timeout: config.media_timeout,
            cname: config.cname,
            wall_clock_origin: origin.wall.duration_since(UNIX_EPOCH).unwrap_or_default(),
            seed: rand::random(),
            ..RelayConfig::default()
        };
        let mut sockets = Vec::new();
        sockets.resize_with(PORT_SPACE, || None);
        Self {
            poll,
            relay: Relay::new(relay_config, prompts),
            origin: origin.mono,
            commands,
            events,
            outbox: VecDeque::new(),
            sockets: sockets.into_boxed_slice(),
            session_ports: HashMap::new(),
            pool: PortPool::starting_at(config.port_min, config.port_max, rand::random()),
            ready: Vec::with_capacity(1024),
            receive_buffer: config.receive_buffer_bytes,
            batch_receive: config.batch_receive,
            batch_send: config.batch_send,
            #[cfg(target_os = "linux")]
            batch: (config.batch_receive || config.batch_send).then(batch::MmsgBatch::new),
            #[cfg(target_os = "linux")]
            outgoing: Vec::with_capacity(batch::BATCH),
            #[cfg(target_os = "linux")]
            tick_queue: tick_queue::TickQueue::with_capacity(
                TICK_QUEUE_DATAGRAMS,
                TICK_QUEUE_DATAGRAMS * TICK_QUEUE_BYTES_EACH,
            ),
            single: Box::new([0; SINGLE_BUFFER]),
            stats: DriverStats::default(),
            shared,
        }
    }

    fn elapsed(&self) -> Duration {
        read_clock().mono.saturating_duration_since(self.origin)
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            if self.drain_commands() == Flow::Stop {
                break;
            }
            let now = self.elapsed();
            self.tick(now);
            self.flush_events();
            self.publish();
            let timeout = self.poll_timeout(now);
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(%error, "media poll failed; media thread stops");
                break;
            }
            // Commands first: a packet sent after a command must find it applied.
            if self.drain_commands() == Flow::Stop {
                break;
            }
            for event in events.iter() {
                if let Ok(port) = u16::try_from(event.token().0) {
                    self.ready.push(port);
                }
            }
            let now = self.elapsed();
            self.service_ready(now);
        }
        self.flush_events();
        self.publish();
    }

    fn poll_timeout(&self, now: Duration) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let until_tick = self.relay.next_tick().map(|due| due.saturating_sub(now));
        if self.outbox.is_empty() {
            until_tick
        } else {
            Some(until_tick.map_or(EVENT_RETRY, |d| d.min(EVENT_RETRY)))
        }
    }

    fn publish(&mut self) {
        let mut stats = self.stats;
        let relay = self.relay.counters();
        stats.events_dropped += relay.events_dropped;
        stats.ticks_caught_up = relay.catch_up_ticks;
        stats.ticks_skipped = relay.skipped_ticks;
        self.shared.store(&stats);
    }

    fn drain_commands(&mut self) -> Flow {
        loop {
            match self.commands.try_recv() {
                Ok(Message::Command(command)) => self.apply(command),
                Ok(Message::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => return Flow::Stop,
                Err(mpsc::TryRecvError::Empty) => return Flow::Continue,
            }
        }
    }

    fn apply(&mut self, command: MediaCommand) {
        let now = self.elapsed();
        let mut closing = None;
        match &command {
            MediaCommand::Open { session, local_ip } => {
                if self.session_ports.contains_key(session) {
                    tracing::warn!(session = session.0, "media session opened twice; ignored");
                    return;
                }
                match (self.bind_pair(*local_ip), self.bind_pair(*local_ip)) {
                    (Some(caller), Some(callee)) => {
                        let ports = [caller.rtp, caller.rtcp(), callee.rtp, callee.rtcp()];
                        self.session_ports.insert(*session, ports);
                        self.relay.open(now, *session, caller, callee);
                    }
                    (caller, callee) => {
                        for pair in [caller, callee].into_iter().flatten() {
                            self.release(&[pair.rtp, pair.rtcp()]);
                            self.pool.give_back(pair);
                        }
                        self.push_event(MediaEvent::OpenFailed { session: *session });
                    }
                }
                return;
            }
            MediaCommand::Close { session } => closing = Some(*session),
            _ => {}
        }
        self.relay.command(now, command);
        if let Some(session) = closing {
            if let Some(ports) = self.session_ports.remove(&session) {
                self.release(&ports);
                self.pool.give_back(PortPair { rtp: ports[0] });
                self.pool.give_back(PortPair { rtp: ports[2] });
            }
        }
    }

    /// Takes a free pair from the pool and binds both ports; a pair another program
    /// holds goes to the back of the pool and a pair at a random place in the pool is
    /// tried next (at most [`BIND_ATTEMPTS`] times).
    fn bind_pair(&mut self, ip: IpAddr) -> Option<PortPair> {
        for _ in 0..BIND_ATTEMPTS {
            let pair = self.pool.take()?;
            if self.bind_session(ip, &[pair.rtp, pair.rtcp()]).is_ok() {
                return Some(pair);
            }
            self.pool.give_back(pair);
            // Another program may hold a whole block here: try elsewhere in the range.
            let jump = rand::random::<usize>() % self.pool.available().max(1);
            self.pool.skip(jump);
        }
        None
    }

    /// Binds and registers a session's ports; on failure releases those bound and returns
    /// the port that failed.
    fn bind_session(&mut self, ip: IpAddr, ports: &[u16]) -> Result<(), u16> {
        for (bound, &port) in ports.iter().enumerate() {
            let registered = bind_port(ip, port, self.receive_buffer).and_then(|mut socket| {
                self.poll
                    .registry()
                    .register(&mut socket, Token(usize::from(port)), Interest::READABLE)
                    .map(|()| socket)
            });
            match (registered, self.sockets.get_mut(usize::from(port))) {
                (Ok(socket), Some(slot @ None)) => *slot = Some(socket),
                (result, _) => {
                    // A port another program holds is expected (the pool jumps past it):
                    // only other failures are worth a warning.
                    let in_use = matches!(&result, Err(e) if e.kind() == io::ErrorKind::AddrInUse);
                    let error = result.err().map(|e| e.to_string());
                    if in_use {
                        tracing::debug!(%ip, port, "media port held by another program");
                    } else {
                        tracing::warn!(%ip, port, ?error, "cannot bind a media port");
                    }
                    self.release(ports.get(..bound).unwrap_or_default());
                    return Err(port);
                }
            }
        }
        Ok(())
    }

    fn release(&mut self, ports: &[u16]) {
        for &port in ports {
            if let Some(mut socket) = self
                .sockets
                .get_mut(usize::from(port))
                .and_then(Option::take)
            {
                let _ = self.poll.registry().deregister(&mut socket);
            }
        }
    }

    fn tick(&mut self, now: Duration) {
        if self.relay.next_tick().is_none_or(|due| due > now) {
            return;
        }
        #[cfg(target_os = "linux")]
        if self.batch_send {
            if let Some(batch) = self.batch.as_mut() {
                let queue = &mut self.tick_queue;
                self.relay.tick(now, &mut |from_port, to, bytes| {
                    queue.push(from_port, to, bytes);
                });
                flush_tick(queue, batch, &self.sockets, &mut self.stats);
                return;
            }
        }
        let sockets = &self.sockets;
        let stats = &mut self.stats;
        self.relay.tick(now, &mut |from_port, to, bytes| {
            if send_one(sockets, from_port, to, Some(bytes), stats) {
                stats.datagrams_generated += 1;
            }
        });
    }

    fn push_event(&mut self, event: MediaEvent) {
        if self.outbox.len() >= MAX_OUTBOX {
            self.stats.events_dropped += 1;
        } else {
            self.outbox.push_back(event);
        }
    }

    fn flush_events(&mut self) {
        while let Some(event) = self.relay.poll_event() {
            self.push_event(event);
        }
        while let Some(event) = self.outbox.pop_front() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.outbox.push_front(event);
                    break;
                }
                Err(TrySendError::Closed(_)) => {
                    let lost = 1 + self.outbox.len();
                    self.stats.events_dropped += u64::try_from(lost).unwrap_or(u64::MAX);
                    self.outbox.clear();
                    break;
                }
            }
        }
    }

    /// Reads every ready socket. Every [`TICK_CHECK_SOCKETS`] sockets the clock is read
    /// again: the packets' arrival times stay true, and a tick that fell due meanwhile runs
    /// at once instead of after the whole round (which under load takes milliseconds and
    /// would make every generated frame that late).
    fn service_ready(&mut self, mut now: Duration) {
        let mut ready = std::mem::take(&mut self.ready);
        ready.sort_unstable();
        ready.dedup();
        let mut serviced = 0usize;
        ready.retain(|&port| {
            if serviced > 0 && serviced % TICK_CHECK_SOCKETS == 0 {
                now = self.elapsed();
                self.tick(now);
            }
            serviced += 1;
            self.service(port, now)
        });
        self.ready = ready;
    }

    /// Reads from one socket up to the budget; true if it may have more queued.
    fn service(&mut self, port: u16, now: Duration) -> bool {
        #[cfg(target_os = "linux")]
        if self.batch_receive && self.batch.is_some() {
            return self.service_batched(port, now);
        }
        self.service_single(port, now)
    }

    fn service_single(&mut self, port: u16, now: Duration) -> bool {
        let mut handled = 0;
        while handled < SOCKET_BUDGET {
            let Some(Some(socket)) = self.sockets.get(usize::from(port)) else {
                return false;
            };
            handled += 1;
            let (len, src) = match socket.recv_from(&mut self.single[..]) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => {
                    self.stats.receive_errors += 1;
                    continue;
                }
            };
            self.stats.receive_calls += 1;
            self.stats.datagrams_received += 1;
            match self
                .relay
                .on_packet(now, port, src, &mut self.single[..], len)
            {
                PacketAction::Send { from_port, to, len } => {
                    let bytes = self.single.get(..len);
                    if send_one(&self.sockets, from_port, to, bytes, &mut self.stats) {
                        self.stats.datagrams_relayed += 1;
                    }
                }
                PacketAction::Mixed => self.stats.datagrams_mixed += 1,
                PacketAction::Drop(_) => self.stats.datagrams_dropped += 1,
            }
        }
        true
    }

    #[cfg(target_os = "linux")]
    fn service_batched(&mut self, port: u16, now: Duration) -> bool {
        use std::os::fd::AsRawFd;
        let Some(batch) = self.batch.as_mut() else {
            return false;
        };
        let mut handled = 0;
        while handled < SOCKET_BUDGET {
            let Some(Some(socket)) = self.sockets.get(usize::from(port)) else {
                return false;
            };
            let count = match batch.receive(socket.as_raw_fd()) {
                Ok(0) => return false,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => {
                    self.stats.receive_errors += 1;
                    handled += 1;
                    continue;
                }
            };
            handled += count;
            self.stats.receive_calls += 1;
            self.stats.datagrams_received += u64::try_from(count).unwrap_or(0);
            self.outgoing.clear();
            let mut leaving_from = None;
            for index in 0..count {
                let Some(received) = batch.received(index) else {
                    break;
                };
                let (Some(src), false) = (received.src, received.truncated) else {
                    self.stats.datagrams_dropped += 1;
                    continue;
                };
                let Some(buffer) = batch.buffer_mut(index) else {
                    break;
                };
                match self.relay.on_packet(now, port, src, buffer, received.len) {
                    PacketAction::Send { from_port, to, len } if self.batch_send => {
                        if leaving_from.is_some_and(|p| p != from_port) {
                            flush_batch(
                                batch,
                                &self.sockets,
                                leaving_from,
                                &mut self.outgoing,
                                &mut self.stats,
                            );
                        }
                        leaving_from = Some(from_port);
                        self.outgoing.push(batch::Outgoing {
                            buffer: index,
                            len,
                            to,
                        });
                    }
                    PacketAction::Send { from_port, to, len } => {
                        let bytes = batch.buffer_mut(index).and_then(|b| b.get(..len));
                        if send_one(&self.sockets, from_port, to, bytes, &mut self.stats) {
                            self.stats.datagrams_relayed += 1;
                        }
                    }
                    PacketAction::Mixed => self.stats.datagrams_mixed += 1,
                    PacketAction::Drop(_) => self.stats.datagrams_dropped += 1,
                }
            }
            flush_batch(
                batch,
                &self.sockets,
                leaving_from,
                &mut self.outgoing,
                &mut self.stats,
            );
            // Fewer than a full batch: the queue was empty when the kernel looked, which
            // is as good as "would block" (a later datagram raises a new readiness edge).
            if count < batch::BATCH {
                return false;
            }
        }
        true
    }
}

/// Sends the queued `outgoing` datagrams from the socket of `from_port` with `sendmmsg`.
#[cfg(target_os = "linux")]
fn flush_batch(
    batch: &mut batch::MmsgBatch,
    sockets: &[Option<UdpSocket>],
    from_port: Option<u16>,
    outgoing: &mut Vec<batch::Outgoing>,
    stats: &mut DriverStats,
) {
    use std::os::fd::AsRawFd;
    if outgoing.is_empty() {
        return;
    }
    let socket = from_port
        .and_then(|port| sockets.get(usize::from(port)))
        .and_then(Option::as_ref);
    let Some(socket) = socket else {
        stats.send_errors += u64::try_from(outgoing.len()).unwrap_or(0);
        outgoing.clear();
        return;
    };
    let (sent, failed) = send_all(outgoing.len(), |from| {
        batch.send(socket.as_raw_fd(), outgoing.get(from..).unwrap_or_default())
    });
    stats.datagrams_relayed += sent;
    stats.send_errors += failed;
    outgoing.clear();
}

/// Sends what a tick queued: grouped by source socket, a `sendmmsg` per run (up to
/// [`batch::BATCH`] datagrams a call); empties the queue.
#[cfg(target_os = "linux")]
fn flush_tick(
    queue: &mut tick_queue::TickQueue,
    batch: &mut batch::MmsgBatch,
    sockets: &[Option<UdpSocket>],
    stats: &mut DriverStats,
) {
    use std::os::fd::AsRawFd;
    queue.group_by_port();
    for run in queue.runs() {
        let socket = run
            .first()
            .and_then(|first| sockets.get(usize::from(first.from_port)))
            .and_then(Option::as_ref);
        let Some(socket) = socket else {
            stats.send_errors += u64::try_from(run.len()).unwrap_or(0);
            continue;
        };
        let (sent, failed) = send_all(run.len(), |from| {
            let rest = run.get(from..).unwrap_or_default();
            let datagrams = rest
                .iter()
                .map(|queued| (queue.bytes_of(queued), queued.to));
            batch.send_slices(socket.as_raw_fd(), datagrams)
        });
        stats.datagrams_generated += sent;
        stats.send_errors += failed;
    }
    queue.clear();
}

/// Sends `count` datagrams from one socket with `send(from)`, a `sendmmsg` of those from
/// index `from` on that returns how many the kernel took; returns (sent, failed).
#[cfg(target_os = "linux")]
fn send_all(count: usize, mut send: impl FnMut(usize) -> io::Result<usize>) -> (u64, u64) {
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut start = 0;
    while start < count {
        match send(start) {
            Ok(0) => {
                failed += u64::try_from(count - start).unwrap_or(0);
                break;
            }
            Ok(taken) => {
                sent += u64::try_from(taken).unwrap_or(0);
                start += taken;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // sendmmsg fails only on its first datagram: skip that one, send the rest.
                failed += 1;
                start += 1;
            }
        }
    }
    (sent, failed)
}

#[cfg(test)]
mod tests;
