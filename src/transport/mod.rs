//! SIP transport layer (I/O): UDP and TCP sockets over IPv4 and IPv6.
//!
//! Inputs: the listen addresses ([`ListenSpec`]), [`TransportLimits`], a shutdown future,
//! and [`Outbound`] messages handed to [`TransportHandle::send`].
//! Outputs: [`TransportEvent`]s (received messages, rejected stream messages, closed
//! connections, failed connects) on a bounded `tokio::sync::mpsc` channel owned by the
//! caller.
//!
//! Life cycle: [`Transports::bind`] opens every socket synchronously (no runtime needed),
//! so the daemon can tell systemd READY only after all ports are bound and can print the
//! real ports when it asked for port 0 ([`Transports::local_addrs`]). Then
//! [`Transports::spawn`] starts the tasks and returns a [`Running`] with the cloneable
//! [`TransportHandle`].
//!
//! Tasks: per UDP socket a receive loop and a send loop (sending through the listening
//! socket, so the source port is the SIP port as RFC 3261 s18.1.1 requires for
//! symmetric response routing); per TCP listener an accept loop; per TCP connection one
//! task that reads, frames ([`framing`]), writes, and enforces the timeouts. Nothing
//! here blocks the engine: [`TransportHandle::send`] never waits, it drops and counts
//! when a queue is full.
//!
//! Stream errors: when the framer rejects a message whose header block is complete (no
//! or bad Content-Length, message too large) the connection stops reading, delivers
//! [`TransportEvent::Rejected`] with that header block so the engine may answer 400/513
//! on the same connection, and closes after the first write or after
//! [`TransportLimits::error_linger`]. Without a complete header block it closes at once.
//!
//! Timers (tokio timers, all from [`TransportLimits`]): `message_read_timeout` (a message
//! whose first byte arrived must be complete in time: slowloris), `idle_timeout` (no
//! bytes either way), `connect_timeout`, `write_timeout`, `error_linger`.
//!
//! TLS and WebSocket will plug in as other stream types: the connection task is generic
//! over `AsyncRead + AsyncWrite`; binding them today returns
//! [`TransportError::Unsupported`].

pub mod framing;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, warn};

pub use framing::FramingError;

/// The SIP transport protocol of a socket or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// SIP over UDP (RFC 3261 s18).
    Udp,
    /// SIP over TCP (RFC 3261 s18).
    Tcp,
    /// SIP over TLS (RFC 3261 s26.2); not implemented yet.
    Tls,
    /// SIP over WebSocket (RFC 7118); not implemented yet.
    Ws,
    /// SIP over secure WebSocket (RFC 7118); not implemented yet.
    Wss,
}

impl TransportKind {
    /// The transport token used in the Via header (RFC 3261 s20.42, RFC 7118 s5).
    pub fn as_via_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }

    /// True for transports that deliver reliably (no Timer A/E retransmissions, RFC 3261 s17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// True for connection-oriented transports (messages framed by Content-Length).
    pub fn is_stream(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_via_str())
    }
}

/// Identifies one stream connection for the life of the process (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Identifies one listening socket; chosen by the caller in its [`ListenSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub u32);

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l{}", self.0)
    }
}

/// One socket to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    /// Address to bind; port 0 picks a free port (see [`Transports::local_addrs`]).
    pub addr: SocketAddr,
    /// Transport protocol of the socket.
    pub kind: TransportKind,
    /// Caller-chosen identifier, unique among the specs.
    pub listener: ListenerId,
}

/// A bound listening socket, as reported by [`Transports::local_addrs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundListener {
    /// The identifier from the [`ListenSpec`].
    pub listener: ListenerId,
    /// Transport protocol of the socket.
    pub kind: TransportKind,
    /// The address actually bound (real port when the spec asked for port 0).
    pub local: SocketAddr,
}

/// Resource limits and timeouts of the transport layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportLimits {
    /// Largest SIP message accepted, headers plus body (UDP datagrams and stream messages).
    pub max_message_size: usize,
    /// Largest stream header block (start-line to blank line); capped at `max_message_size`.
    pub max_header_size: usize,
    /// Most TCP connections open at once, accepted plus outgoing.
    pub max_connections: usize,
    /// Time from the first byte of a stream message until it must be complete.
    pub message_read_timeout: Duration,
    /// A connection with no bytes read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed to open an outgoing TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed to write one message to a connection.
    pub write_timeout: Duration,
    /// How long a connection whose input was rejected waits for the engine's error answer.
    pub error_linger: Duration,
    /// Outbound messages queued per connection before new ones are dropped.
    pub conn_send_queue: usize,
    /// Outbound datagrams queued per UDP socket before new ones are dropped.
    pub udp_send_queue: usize,
    /// Requested kernel receive buffer of UDP sockets in bytes (the kernel may cap it).
    pub udp_recv_buffer: usize,
    /// Listen backlog of TCP sockets.
    pub tcp_backlog: u32,
}

impl Default for TransportLimits {
    fn default() -> Self {
        Self {
            max_message_size: 65_535,
            max_header_size: 16 * 1024,
            max_connections: 4096,
            message_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            error_linger: Duration::from_secs(2),
            conn_send_queue: 64,
            udp_send_queue: 4096,
            udp_recv_buffer: 4 * 1024 * 1024,
            tcp_backlog: 1024,
        }
    }
}

impl TransportLimits {
    /// Checks that no limit is zero (a zero queue or size would make the layer unusable).
    pub fn validate(&self) -> Result<(), TransportError> {
        let zero = |field: &'static str, v: u128| {
            if v == 0 {
                Err(TransportError::InvalidLimit { field })
            } else {
                Ok(())
            }
        };
        zero("max_message_size", self.max_message_size as u128)?;
        zero("max_header_size", self.max_header_size as u128)?;
        zero("max_connections", self.max_connections as u128)?;
        zero("message_read_timeout", self.message_read_timeout.as_nanos())?;
        zero("idle_timeout", self.idle_timeout.as_nanos())?;
        zero("connect_timeout", self.connect_timeout.as_nanos())?;
        zero("write_timeout", self.write_timeout.as_nanos())?;
        zero("conn_send_queue", self.conn_send_queue as u128)?;
        zero("udp_send_queue", self.udp_send_queue as u128)?;
        zero("tcp_backlog", u128::from(self.tcp_backlog))?;
        if self.max_connections > Semaphore::MAX_PERMITS {
            return Err(TransportError::InvalidLimit {
                field: "max_connections",
            });
        }
        Ok(())
    }
}

/// A message received from the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The whole SIP message (one datagram, or one framed stream message).
    pub data: Bytes,
    /// The peer's address (the `received`/`rport` source, RFC 3261 s18.2.1, RFC 3581).
    pub source: SocketAddr,
    /// Our address the message arrived on.
    pub local: SocketAddr,
    /// Transport it arrived over.
    pub kind: TransportKind,
    /// The connection for stream transports; answer on it (RFC 3261 s18.2.2).
    pub conn: Option<ConnId>,
    /// The listener that accepted it (for outgoing connections: the one used to connect).
    pub listener: ListenerId,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The whole SIP message.
    pub data: Bytes,
    /// Destination; for streams used when `conn` is absent or closed.
    pub dest: SocketAddr,
    /// Transport to use; must match the listener's.
    pub kind: TransportKind,
    /// Preferred connection (the one a request came on); see [`TransportHandle::send`].
    pub conn: Option<ConnId>,
    /// The listener to send from (UDP source socket; TCP source address).
    pub listener: ListenerId,
}

/// Why a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed or reset the connection.
    PeerClosed,
    /// No bytes in either direction for `idle_timeout`.
    IdleTimeout,
    /// A started message was not complete within `message_read_timeout`.
    ReadTimeout,
    /// A write did not finish within `write_timeout`.
    WriteTimeout,
    /// The framer rejected the input.
    FramingError,
    /// A socket error other than a peer close.
    IoError,
    /// The transport layer shut down.
    Shutdown,
}

/// What the transport layer reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A whole SIP message.
    Message(Inbound),
    /// A stream message the framer rejected. `head.data` is its complete header block
    /// (start-line to blank line, no body) so the engine can answer `error.sip_status()`
    /// on `head.conn`; the connection reads no more and closes after the first message
    /// written to it or after `error_linger`.
    Rejected {
        /// The header block and where it came from.
        head: Inbound,
        /// What was wrong with it.
        error: FramingError,
    },
    /// A stream connection closed and was removed; later sends to it fall back to `dest`.
    Closed {
        /// The connection.
        conn: ConnId,
        /// The peer it was connected to.
        remote: SocketAddr,
        /// Why it closed.
        reason: CloseReason,
    },
    /// An outgoing connection could not be opened; `dropped` queued messages were lost
    /// (a transport error for the transactions that sent them, RFC 3261 s17.1.4).
    ConnectFailed {
        /// The destination.
        dest: SocketAddr,
        /// The transport.
        kind: TransportKind,
        /// How many messages were waiting for the connection.
        dropped: usize,
    },
}

/// Errors of the transport layer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A socket could not be created, configured or bound.
    #[error("cannot bind {kind} {addr}: {source}")]
    Bind {
        /// The address from the spec.
        addr: SocketAddr,
        /// The transport of the spec.
        kind: TransportKind,
        /// The operating system error.
        #[source]
        source: io::Error,
    },
    /// Two specs share one [`ListenerId`].
    #[error("listener id {0} is used twice")]
    DuplicateListener(ListenerId),
    /// The transport is not implemented yet.
    #[error("transport {0} is not supported")]
    Unsupported(TransportKind),
    /// A limit is zero or out of range.
    #[error("transport limit {field} is out of range")]
    InvalidLimit {
        /// The [`TransportLimits`] field.
        field: &'static str,
    },
    /// [`Outbound::listener`] names no listener.
    #[error("no listener {0}")]
    UnknownListener(ListenerId),
    /// [`Outbound::kind`] differs from the listener's transport.
    #[error("listener {listener} is {actual}, not {requested}")]
    KindMismatch {
        /// The listener.
        listener: ListenerId,
        /// Its transport.
        actual: TransportKind,
        /// The transport asked for.
        requested: TransportKind,
    },
    /// A send queue was full; the message was dropped.
    #[error("send queue full, message dropped")]
    QueueFull,
    /// No connection slot is free for an outgoing connection.
    #[error("connection limit reached")]
    ConnectionLimit,
    /// The transport layer has shut down.
    #[error("transport is shut down")]
    ShutDown,
    /// [`Transports::spawn`] was called outside a tokio runtime.
    #[error("no tokio runtime to run the transport tasks")]
    NoRuntime,
}

/// Counters of the transport layer (monotonic since start).
#[derive(Debug, Default)]
struct Stats {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    keepalives_in: AtomicU64,
    dropped_in: AtomicU64,
    dropped_out: AtomicU64,
    send_errors: AtomicU64,
    framing_errors: AtomicU64,
    conns_accepted: AtomicU64,
    conns_rejected: AtomicU64,
    conns_connected: AtomicU64,
    connect_failures: AtomicU64,
    conns_closed: AtomicU64,
}

/// A copy of the transport counters (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages delivered to the owner (datagrams and framed messages).
    pub messages_in: u64,
    /// Messages written to a socket.
    pub messages_out: u64,
    /// Keepalives received (RFC 5626 pings on streams, CRLF-only datagrams).
    pub keepalives_in: u64,
    /// Received datagrams dropped (oversize).
    pub dropped_in: u64,
    /// Outbound messages dropped (full queue, no connection slot, failed connect).
    pub dropped_out: u64,
    /// Socket write errors.
    pub send_errors: u64,
    /// Stream framing errors.
    pub framing_errors: u64,
    /// TCP connections accepted.
    pub conns_accepted: u64,
    /// TCP connections refused at once because of `max_connections`.
    pub conns_rejected: u64,
    /// Outgoing TCP connections opened.
    pub conns_connected: u64,
    /// Outgoing TCP connections that failed or timed out.
    pub connect_failures: u64,
    /// TCP connections closed.
    pub conns_closed: u64,
}

impl Stats {
    fn inc(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            messages_in: g(&self.messages_in),
            messages_out: g(&self.messages_out),
            keepalives_in: g(&self.keepalives_in),
            dropped_in: g(&self.dropped_in),
            dropped_out: g(&self.dropped_out),
            send_errors: g(&self.send_errors),
            framing_errors: g(&self.framing_errors),
            conns_accepted: g(&self.conns_accepted),
            conns_rejected: g(&self.conns_rejected),
            conns_connected: g(&self.conns_connected),
            connect_failures: g(&self.connect_failures),
            conns_closed: g(&self.conns_closed),
        }
    }
}

/// A bound socket waiting for [`Transports::spawn`].
#[derive(Debug)]
enum BoundSocket {
    Udp(std::net::UdpSocket),
    Tcp(std::net::TcpListener),
}

/// The bound but not yet running transport layer.
#[derive(Debug)]
pub struct Transports {
    sockets: Vec<(BoundListener, BoundSocket)>,
    limits: TransportLimits,
    events: mpsc::Sender<TransportEvent>,
}

impl Transports {
    /// Binds every socket in `specs` (all or nothing); events will go to `events`.
    ///
    /// Needs no tokio runtime. TCP sockets get SO_REUSEADDR (restart while old
    /// connections sit in TIME_WAIT); IPv6 sockets get IPV6_V6ONLY so an IPv4 listener
    /// on the same port can coexist; UDP sockets get a larger receive buffer. UDP sockets
    /// deliberately do NOT get SO_REUSEADDR: on Linux it would let a second process bind
    /// the same port and silently take part of the traffic, and UDP has no TIME_WAIT.
    pub fn bind(
        specs: &[ListenSpec],
        limits: TransportLimits,
        events: mpsc::Sender<TransportEvent>,
    ) -> Result<Transports, TransportError> {
        limits.validate()?;
        let mut sockets = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|s| s.listener == spec.listener) {
                return Err(TransportError::DuplicateListener(spec.listener));
            }
            let bind_err = |source| TransportError::Bind {
                addr: spec.addr,
                kind: spec.kind,
                source,
            };
            let (socket, local) = match spec.kind {
                TransportKind::Udp => {
                    let s = udp::bind(spec.addr, &limits).map_err(bind_err)?;
                    let local = s.local_addr().map_err(bind_err)?;
                    (BoundSocket::Udp(s), local)
                }
                TransportKind::Tcp => {
                    let s = tcp::bind(spec.addr, &limits).map_err(bind_err)?;
                    let local = s.local_addr().map_err(bind_err)?;
                    (BoundSocket::Tcp(s), local)
                }
                other => return Err(TransportError::Unsupported(other)),
            };
            debug!(listener = %spec.listener, kind = %spec.kind, %local, "bound");
            let bound = BoundListener {
                listener: spec.listener,
                kind: spec.kind,
                local,
            };
            sockets.push((bound, socket));
        }
        Ok(Transports {
            sockets,
            limits,
            events,
        })
    }

    /// The bound addresses, in the order of the specs (real ports for port 0).
    pub fn local_addrs(&self) -> Vec<BoundListener> {
        self.sockets.iter().map(|(b, _)| *b).collect()
    }

    /// Starts all tasks on the current tokio runtime; they stop when `shutdown` completes.
    ///
    /// Must be called from within a tokio runtime ([`TransportError::NoRuntime`]
    /// otherwise); fails with [`TransportError::Bind`] if a socket cannot be registered
    /// with the runtime.
    pub fn spawn<F>(self, shutdown: F) -> Result<Running, TransportError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Checked first: registering sockets outside a runtime would panic.
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel::<()>(1);
        let mut listeners = HashMap::new();
        let mut udp_tasks = Vec::new();
        let mut tcp_tasks = Vec::new();
        for (bound, socket) in self.sockets {
            let reg_err = |source| TransportError::Bind {
                addr: bound.local,
                kind: bound.kind,
                source,
            };
            match socket {
                BoundSocket::Udp(s) => {
                    let sock = Arc::new(tokio::net::UdpSocket::from_std(s).map_err(reg_err)?);
                    let (tx, rx) = mpsc::channel(self.limits.udp_send_queue);
                    listeners.insert(
                        bound.listener,
                        ListenerEntry {
                            bound,
                            udp: Some(tx),
                        },
                    );
                    udp_tasks.push((bound, sock, rx));
                }
                BoundSocket::Tcp(s) => {
                    let l = tokio::net::TcpListener::from_std(s).map_err(reg_err)?;
                    listeners.insert(bound.listener, ListenerEntry { bound, udp: None });
                    tcp_tasks.push((bound, l));
                }
            }
        }
        let shared = Arc::new(Shared {
            conn_slots: Arc::new(Semaphore::new(self.limits.max_connections)),
            limits: self.limits,
            listeners,
            registry: Mutex::new(Registry::default()),
            next_conn: AtomicU64::new(1),
            events: self.events,
            stats: Stats::default(),
            stop: stop_rx,
            done: Mutex::new(Some(done_tx)),
            runtime,
        });
        for (bound, sock, rx) in udp_tasks {
            if let Some(done) = shared.done_guard() {
                tokio::spawn(udp::recv_loop(shared.clone(), bound, sock.clone(), done));
            }
            if let Some(done) = shared.done_guard() {
                tokio::spawn(udp::send_loop(shared.clone(), sock, rx, done));
            }
        }
        for (bound, listener) in tcp_tasks {
            if let Some(done) = shared.done_guard() {
                tokio::spawn(tcp::accept_loop(shared.clone(), bound, listener, done));
            }
        }
        let watcher = shared.clone();
        tokio::spawn(async move {
            shutdown.await;
            // Refuse new tasks first, then tell the running ones to stop.
            watcher.lock_done().take();
            // Receivers are held by `watcher` itself, so this cannot fail.
            let _ = stop_tx.send(true);
        });
        Ok(Running {
            handle: TransportHandle { shared },
            done: done_rx,
        })
    }
}

/// The running transport layer.
#[derive(Debug)]
pub struct Running {
    handle: TransportHandle,
    done: mpsc::Receiver<()>,
}

impl Running {
    /// A handle to send messages (clone it freely).
    pub fn handle(&self) -> TransportHandle {
        self.handle.clone()
    }

    /// Waits until shutdown was signalled and every task has finished (connections
    /// flush what was already queued, bounded by `write_timeout`).
    pub async fn stopped(mut self) {
        // Every task holds a sender; `recv` returns `None` once all are gone and the
        // shutdown watcher has dropped the original.
        while self.done.recv().await.is_some() {}
    }
}

/// A cloneable, non-blocking handle for sending messages.
#[derive(Debug, Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

impl TransportHandle {
    /// Queues `out` for sending and returns at once; never blocks.
    ///
    /// UDP: sent from the listener's socket to `dest`. Streams: on `conn` if it is still
    /// open; otherwise on an open connection to `dest` (RFC 3261 s18.2.2: the response
    /// goes back on the request's connection, or a new one to the sender); otherwise a
    /// connection to `dest` is opened (sourced from the listener's IP if it is specific)
    /// and the message waits for it. When a queue is full the message is dropped and
    /// counted; the caller's retransmission timers (UDP) or transaction timeouts cover
    /// the loss.
    pub fn send(&self, out: Outbound) -> Result<(), TransportError> {
        let result = self.shared.send(out);
        if let Err(e) = &result {
            let n = Stats::inc(&self.shared.stats.dropped_out);
            // Power-of-two sampling keeps a flood of drops from flooding the log.
            if n.is_power_of_two() {
                warn!(dropped_total = n, error = %e, "outbound SIP message dropped");
            }
        }
        result
    }

    /// The counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Number of open stream connections.
    pub fn connection_count(&self) -> usize {
        self.shared.lock_registry().conns.len()
    }

    /// The bound listeners.
    pub fn listeners(&self) -> Vec<BoundListener> {
        let mut v: Vec<_> = self.shared.listeners.values().map(|l| l.bound).collect();
        v.sort_by_key(|b| b.listener);
        v
    }
}

/// One listener as seen by the send path.
#[derive(Debug)]
struct ListenerEntry {
    bound: BoundListener,
    /// The UDP socket's send queue (None for stream listeners).
    udp: Option<mpsc::Sender<(Bytes, SocketAddr)>>,
}

/// An open stream connection as seen by the send path.
#[derive(Debug)]
struct ConnEntry {
    tx: mpsc::Sender<Bytes>,
}

/// Messages waiting for an outgoing connection to open.
#[derive(Debug, Default)]
struct PendingConnect {
    queued: Vec<Bytes>,
}

/// Open connections, indexed both ways; only touched in short critical sections.
#[derive(Debug, Default)]
struct Registry {
    conns: HashMap<ConnId, ConnEntry>,
    by_remote: HashMap<(TransportKind, SocketAddr), ConnId>,
    connecting: HashMap<(TransportKind, SocketAddr), PendingConnect>,
}

/// State shared by the handle and all tasks.
#[derive(Debug)]
struct Shared {
    limits: TransportLimits,
    listeners: HashMap<ListenerId, ListenerEntry>,
    registry: Mutex<Registry>,
    next_conn: AtomicU64,
    conn_slots: Arc<Semaphore>,
    events: mpsc::Sender<TransportEvent>,
    stats: Stats,
    /// Becomes `true` on shutdown.
    stop: watch::Receiver<bool>,
    /// Completion guard handed to each task; `None` once shutdown began.
    done: Mutex<Option<mpsc::Sender<()>>>,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn lock_registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing them, so recover from poisoning instead of panicking.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_done(&self) -> MutexGuard<'_, Option<mpsc::Sender<()>>> {
        self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A completion guard for a new task, or `None` when shutting down.
    fn done_guard(&self) -> Option<mpsc::Sender<()>> {
        self.lock_done().clone()
    }

    fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn alloc_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    fn send(self: &Arc<Self>, out: Outbound) -> Result<(), TransportError> {
        if self.is_stopping() {
            return Err(TransportError::ShutDown);
        }
        let entry = self
            .listeners
            .get(&out.listener)
            .ok_or(TransportError::UnknownListener(out.listener))?;
        if entry.bound.kind != out.kind {
            return Err(TransportError::KindMismatch {
                listener: out.listener,
                actual: entry.bound.kind,
                requested: out.kind,
            });
        }
        if let Some(udp) = &entry.udp {
            return udp.try_send((out.data, out.dest)).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => TransportError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => TransportError::ShutDown,
            });
        }
        tcp::send(self, entry.bound, out)
    }

    /// Delivers an event, waiting for room (backpressure on the socket) but giving up
    /// on shutdown. Returns false when the event could not be delivered.
    async fn deliver(&self, event: TransportEvent) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            r = self.events.send(event) => r.is_ok(),
            _ = stopped(&mut stop) => false,
        }
    }
}

/// Completes once shutdown was signalled (or its sender is gone).
///
/// Cancel safe. Returns `()` so no `watch::Ref` (a lock guard) is held by callers.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
