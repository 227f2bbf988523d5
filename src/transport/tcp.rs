//! SIP over TCP: listening, accepting under a connection limit, outgoing connects, and
//! the per-connection task (framing, keepalive pongs, writes, timeouts).
//!
//! Each connection is ONE task owning the whole stream: it selects over "bytes
//! readable", "message queued for writing", the shutdown signal and the nearest
//! deadline. One owner means no lock around the stream and one place that closes it.
//! Writes happen inside the select arm (reads pause meanwhile, which is TCP
//! backpressure, bounded by `write_timeout`). `read_buf` and `mpsc::Receiver::recv` are
//! cancel safe, so losing a select race loses no bytes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::{sleep_until, timeout, Instant};
use tracing::debug;

use super::framing::{self, Frame, Framer, PONG};
use super::{
    stopped, BoundListener, CloseReason, ConnEntry, ConnId, Inbound, Outbound, PendingConnect,
    Shared, Stats, TransportError, TransportEvent, TransportLimits,
};
use crate::util::redact::Pii;

/// Bytes reserved in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;
/// Pause after a failed accept (e.g. EMFILE) so the loop cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Creates, binds and listens on a non-blocking TCP socket.
pub(super) fn bind(
    addr: SocketAddr,
    limits: &TransportLimits,
) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted daemon bind while old connections are in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let backlog = i32::try_from(limits.tcp_backlog).unwrap_or(i32::MAX);
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Accepts connections until shutdown; over `max_connections` a new connection is
/// closed at once.
pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    bound: BoundListener,
    listener: tokio::net::TcpListener,
    _done: mpsc::Sender<()>,
) {
    let mut stop = shared.stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => break,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // Usually out of file descriptors; the listener itself is fine.
                debug!(listener = %bound.listener, error = %e, "accept failed");
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
                continue;
            }
        };
        let Ok(permit) = shared.conn_slots.clone().try_acquire_owned() else {
            Stats::inc(&shared.stats.conns_rejected);
            debug!(peer = %Pii(remote), "connection limit reached, closing new connection");
            drop(stream);
            continue;
        };
        let Some(done) = shared.done_guard() else {
            break;
        };
        Stats::inc(&shared.stats.conns_accepted);
        let local = stream.local_addr().unwrap_or(bound.local);
        // Nagle would hold back the tail of a message waiting for an ACK.
        let _ = stream.set_nodelay(true);
        debug!(peer = %Pii(remote), "connection accepted");
        start_conn(&shared, stream, remote, local, bound, permit, done, false);
    }
    debug!(listener = %bound.listener, "TCP accept loop stopped");
}

/// The stream part of [`super::TransportHandle::send`].
pub(super) fn send(
    shared: &Arc<Shared>,
    bound: BoundListener,
    out: Outbound,
) -> Result<(), TransportError> {
    let key = (out.kind, out.dest);
    let mut reg = shared.lock_registry();
    let target = out
        .conn
        .filter(|c| reg.conns.contains_key(c))
        .or_else(|| reg.by_remote.get(&key).copied());
    if let Some(entry) = target.and_then(|id| reg.conns.get(&id)) {
        return entry.tx.try_send(out.data).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => TransportError::QueueFull,
            // A connection task removes its entry before dropping its receiver, so a
            // closed queue is only seen during shutdown.
            mpsc::error::TrySendError::Closed(_) => TransportError::ShutDown,
        });
    }
    if let Some(pending) = reg.connecting.get_mut(&key) {
        if pending.queued.len() >= shared.limits.conn_send_queue {
            return Err(TransportError::QueueFull);
        }
        pending.queued.push(out.data);
        return Ok(());
    }
    let permit = shared
        .conn_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| TransportError::ConnectionLimit)?;
    let done = shared.done_guard().ok_or(TransportError::ShutDown)?;
    reg.connecting.insert(
        key,
        PendingConnect {
            queued: vec![out.data],
        },
    );
    drop(reg);
    shared
        .runtime
        .spawn(connect(shared.clone(), bound, out.dest, permit, done));
    Ok(())
}

/// Opens an outgoing connection and hands it the messages queued meanwhile.
async fn connect(
    shared: Arc<Shared>,
    bound: BoundListener,
    dest: SocketAddr,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<()>,
) {
    let key = (bound.kind, dest);
    let mut stop = shared.stop.clone();
    let result = tokio::select! {
        _ = stopped(&mut stop) => Err(None),
        r = timeout(shared.limits.connect_timeout, open(bound.local, dest)) => match r {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(Some(e.to_string())),
            Err(_) => Err(Some("timed out".to_owned())),
        },
    };
    match result {
        Ok(stream) => {
            Stats::inc(&shared.stats.conns_connected);
            let local = stream.local_addr().unwrap_or(bound.local);
            let _ = stream.set_nodelay(true);
            debug!(peer = %Pii(dest), "connection opened");
            start_conn(&shared, stream, dest, local, bound, permit, done, true);
        }
        Err(why) => {
            let dropped = shared
                .lock_registry()
                .connecting
                .remove(&key)
                .map_or(0, |p| p.queued.len());
            shared
                .stats
                .dropped_out
                .fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
            if let Some(why) = why {
                Stats::inc(&shared.stats.connect_failures);
                debug!(peer = %Pii(dest), error = %why, "connect failed");
                shared
                    .deliver(TransportEvent::ConnectFailed {
                        dest,
                        kind: bound.kind,
                        dropped,
                    })
                    .await;
            }
        }
    }
}

/// Connects to `dest`, from the listener's IP when it is a specific address of the same
/// family (so multi-homed hosts send from the address in our Via), else from any.
async fn open(listen: SocketAddr, dest: SocketAddr) -> io::Result<TcpStream> {
    let socket = if dest.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if !listen.ip().is_unspecified() && listen.is_ipv4() == dest.is_ipv4() {
        socket.bind(SocketAddr::new(listen.ip(), 0))?;
    }
    socket.connect(dest).await
}

/// Registers a connection (with any messages queued while connecting) and spawns its task.
#[allow(clippy::too_many_arguments)]
fn start_conn(
    shared: &Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    bound: BoundListener,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<()>,
    outgoing: bool,
) -> ConnId {
    let id = shared.alloc_conn_id();
    let (tx, rx) = mpsc::channel(shared.limits.conn_send_queue);
    {
        // One critical section: the queued messages go first, before any sender can
        // find the new connection, so their order is kept.
        let mut reg = shared.lock_registry();
        if outgoing {
            if let Some(pending) = reg.connecting.remove(&(bound.kind, remote)) {
                for data in pending.queued {
                    if tx.try_send(data).is_err() {
                        Stats::inc(&shared.stats.dropped_out);
                    }
                }
            }
        }
        reg.by_remote.insert((bound.kind, remote), id);
        reg.conns.insert(id, ConnEntry { tx });
    }
    let conn = Conn {
        shared: shared.clone(),
        id,
        remote,
        local,
        bound,
        buf: BytesMut::with_capacity(READ_CHUNK),
        framer: Framer::new(
            shared.limits.max_header_size,
            shared.limits.max_message_size,
        ),
        read_deadline: None,
        linger_deadline: None,
    };
    shared.runtime.spawn(conn.run(stream, rx, permit, done));
    id
}

/// What to do after handling some input.
type Step = Result<(), CloseReason>;

/// The state of one connection task.
struct Conn {
    shared: Arc<Shared>,
    id: ConnId,
    remote: SocketAddr,
    local: SocketAddr,
    bound: BoundListener,
    buf: BytesMut,
    framer: Framer,
    /// Set while a message is partly received: it must be complete by then.
    read_deadline: Option<Instant>,
    /// Set after rejected input: reading stopped, close at the first write or then.
    linger_deadline: Option<Instant>,
}

impl Conn {
    /// Runs the connection until it closes, then unregisters it.
    ///
    /// Generic over the stream so TLS and WebSocket streams can reuse it.
    async fn run<S>(
        mut self,
        mut stream: S,
        mut rx: mpsc::Receiver<Bytes>,
        _permit: OwnedSemaphorePermit,
        _done: mpsc::Sender<()>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = self.shared.limits.clone();
        let mut stop = self.shared.stop.clone();
        let mut idle_deadline = Instant::now() + limits.idle_timeout;
        let reason = loop {
            let deadline = [
                Some(idle_deadline),
                self.read_deadline,
                self.linger_deadline,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(idle_deadline);
            let reading = self.linger_deadline.is_none();
            self.buf.reserve(READ_CHUNK);
            tokio::select! {
                _ = stopped(&mut stop) => break CloseReason::Shutdown,
                r = stream.read_buf(&mut self.buf), if reading => match r {
                    Ok(0) => break CloseReason::PeerClosed,
                    Ok(_) => {
                        idle_deadline = Instant::now() + limits.idle_timeout;
                        if let Err(reason) = self.on_read(&mut stream).await {
                            break reason;
                        }
                    }
                    Err(e) => break classify(&e),
                },
                m = rx.recv() => {
                    // The registry holds a sender while this task runs.
                    let Some(data) = m else { break CloseReason::Shutdown };
                    if let Err(reason) = write(&mut stream, &data, limits.write_timeout).await {
                        break reason;
                    }
                    Stats::inc(&self.shared.stats.messages_out);
                    idle_deadline = Instant::now() + limits.idle_timeout;
                    if self.linger_deadline.is_some() {
                        // The engine's answer to the rejected message went out.
                        break CloseReason::FramingError;
                    }
                }
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    if self.linger_deadline.is_some_and(|d| now >= d) {
                        break CloseReason::FramingError;
                    }
                    if self.read_deadline.is_some_and(|d| now >= d) {
                        break CloseReason::ReadTimeout;
                    }
                    if now >= idle_deadline {
                        break CloseReason::IdleTimeout;
                    }
                }
            }
        };
        self.close(stream, rx, reason).await;
    }

    /// Cuts whole frames out of the buffer, delivers messages and answers pings.
    async fn on_read<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> Step {
        let mut completed = false;
        loop {
            match self.framer.next_frame(&mut self.buf) {
                Ok(Some(Frame::Message(data))) => {
                    completed = true;
                    if !self
                        .shared
                        .deliver(TransportEvent::Message(self.inbound(data)))
                        .await
                    {
                        return Err(CloseReason::Shutdown);
                    }
                    Stats::inc(&self.shared.stats.messages_in);
                }
                Ok(Some(Frame::KeepAlive)) => {
                    // RFC 5626 s4.4.1: answer a double-CRLF ping with a single CRLF pong.
                    completed = true;
                    Stats::inc(&self.shared.stats.keepalives_in);
                    write(stream, PONG, self.shared.limits.write_timeout).await?;
                }
                Ok(None) => break,
                Err(error) => return self.on_framing_error(error).await,
            }
        }
        // A message in progress must finish within the read timeout, counted from the
        // first byte after the last complete frame.
        self.read_deadline = if framing::Framer::in_progress(&self.buf) {
            match self.read_deadline {
                Some(d) if !completed => Some(d),
                _ => Some(Instant::now() + self.shared.limits.message_read_timeout),
            }
        } else {
            None
        };
        Ok(())
    }

    /// Stops reading; hands a complete header block to the engine so it can answer on
    /// this connection, else closes at once.
    async fn on_framing_error(&mut self, error: framing::FramingError) -> Step {
        Stats::inc(&self.shared.stats.framing_errors);
        debug!(conn = %self.id, peer = %Pii(self.remote), %error, "stream framing error");
        let head_len = match error {
            // The header block never completed within the limit: nothing to answer to.
            framing::FramingError::HeadersTooLarge { .. } => None,
            _ => framing::headers_end(&self.buf),
        };
        let Some(head_len) = head_len else {
            return Err(CloseReason::FramingError);
        };
        // New messages for this peer must not land on a connection about to close;
        // only sends naming this connection (the engine's answer) still reach it.
        self.unmap_remote();
        let head = self.buf.split_to(head_len).freeze();
        self.buf.clear();
        self.framer.reset();
        self.read_deadline = None;
        self.linger_deadline = Some(Instant::now() + self.shared.limits.error_linger);
        let event = TransportEvent::Rejected {
            head: self.inbound(head),
            error,
        };
        if !self.shared.deliver(event).await {
            return Err(CloseReason::Shutdown);
        }
        Ok(())
    }

    /// Stops routing sends by address to this connection (if the address maps to it).
    fn unmap_remote(&self) {
        let mut reg = self.shared.lock_registry();
        let key = (self.bound.kind, self.remote);
        if reg.by_remote.get(&key) == Some(&self.id) {
            reg.by_remote.remove(&key);
        }
    }

    fn inbound(&self, data: Bytes) -> Inbound {
        Inbound {
            data,
            source: self.remote,
            local: self.local,
            kind: self.bound.kind,
            conn: Some(self.id),
            listener: self.bound.listener,
        }
    }

    /// Unregisters the connection, flushes on shutdown, closes the stream and reports.
    async fn close<S>(self, mut stream: S, mut rx: mpsc::Receiver<Bytes>, reason: CloseReason)
    where
        S: AsyncWrite + Unpin,
    {
        self.shared.lock_registry().conns.remove(&self.id);
        self.unmap_remote();
        // Nothing can be queued any more: the sender was in the registry.
        let write_timeout = self.shared.limits.write_timeout;
        if reason == CloseReason::Shutdown {
            // Best effort, bounded as a whole: what the engine queued before shutdown.
            let flush = async {
                while let Ok(data) = rx.try_recv() {
                    if stream.write_all(&data).await.is_err() {
                        break;
                    }
                    Stats::inc(&self.shared.stats.messages_out);
                }
            };
            let _ = timeout(write_timeout, flush).await;
        }
        let mut lost = 0u64;
        while rx.try_recv().is_ok() {
            lost += 1;
        }
        self.shared
            .stats
            .dropped_out
            .fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
        // Send our FIN; a peer that does not read cannot hold us past the timeout.
        let _ = timeout(write_timeout, stream.shutdown()).await;
        drop(stream);
        Stats::inc(&self.shared.stats.conns_closed);
        debug!(conn = %self.id, peer = %Pii(self.remote), ?reason, "connection closed");
        if reason != CloseReason::Shutdown {
            self.shared
                .deliver(TransportEvent::Closed {
                    conn: self.id,
                    remote: self.remote,
                    reason,
                })
                .await;
        }
    }
}

/// Writes one whole message within `limit`.
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8], limit: Duration) -> Step {
    let op = async {
        stream.write_all(data).await?;
        // A no-op on TCP; TLS streams buffer and need it.
        stream.flush().await
    };
    match timeout(limit, op).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(CloseReason::WriteTimeout),
    }
}

/// Maps a socket error to a close reason.
fn classify(e: &io::Error) -> CloseReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => CloseReason::PeerClosed,
        _ => CloseReason::IoError,
    }
}
