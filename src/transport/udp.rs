//! SIP over UDP: one receive loop and one send loop per socket, sharing the socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{stopped, BoundListener, Inbound, Shared, Stats, TransportEvent, TransportLimits};
use crate::util::redact::Pii;

/// Largest UDP payload; the receive buffer is one byte larger so an oversize datagram is
/// recognised (the kernel truncates silently to the buffer size).
const MAX_DATAGRAM: usize = 65_535;

/// Creates and binds a non-blocking UDP socket.
pub(super) fn bind(addr: SocketAddr, limits: &TransportLimits) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // The kernel caps this at net.core.rmem_max; a smaller buffer still works, so a
    // refusal is only worth a warning.
    if let Err(e) = socket.set_recv_buffer_size(limits.udp_recv_buffer) {
        warn!(error = %e, "cannot enlarge UDP receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// True for datagrams that carry no SIP message: CRLF keepalives that phones send to
/// keep NAT bindings open (RFC 5626 s3.5.1 style), and zero-filled pings.
fn is_keepalive(data: &[u8]) -> bool {
    data.iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
}

/// Receives datagrams and delivers each as one message until shutdown.
pub(super) async fn recv_loop(
    shared: Arc<Shared>,
    bound: BoundListener,
    sock: Arc<UdpSocket>,
    _done: mpsc::Sender<()>,
) {
    let mut stop = shared.stop.clone();
    // One reusable buffer; each datagram is copied out into its own `Bytes` so the
    // engine may keep it while the next one is read.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let max = shared.limits.max_message_size.min(MAX_DATAGRAM);
    loop {
        let received = tokio::select! {
            _ = stopped(&mut stop) => break,
            r = sock.recv_from(&mut buf) => r,
        };
        let (n, source) = match received {
            Ok(v) => v,
            Err(e) => {
                // ICMP port-unreachable after our own sends shows up here on some
                // systems (ECONNREFUSED); nothing is wrong with the socket. Pause briefly
                // on other errors so a persistent failure cannot spin the CPU.
                debug!(listener = %bound.listener, error = %e, "UDP receive error");
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) {
                    tokio::select! {
                        _ = stopped(&mut stop) => break,
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
                continue;
            }
        };
        let Some(data) = buf.get(..n) else { continue };
        if is_keepalive(data) {
            Stats::inc(&shared.stats.keepalives_in);
            continue;
        }
        if n > max {
            Stats::inc(&shared.stats.dropped_in);
            debug!(peer = %Pii(source), size = n, "oversize UDP datagram dropped");
            continue;
        }
        let inbound = Inbound {
            data: Bytes::copy_from_slice(data),
            source,
            local: bound.local,
            kind: bound.kind,
            conn: None,
            listener: bound.listener,
        };
        if !shared.deliver(TransportEvent::Message(inbound)).await {
            break;
        }
        Stats::inc(&shared.stats.messages_in);
    }
    debug!(listener = %bound.listener, "UDP receive loop stopped");
}

/// Sends queued datagrams from the listening socket until shutdown, then flushes what
/// is still queued without waiting.
pub(super) async fn send_loop(
    shared: Arc<Shared>,
    sock: Arc<UdpSocket>,
    mut rx: mpsc::Receiver<(Bytes, SocketAddr)>,
    _done: mpsc::Sender<()>,
) {
    let mut stop = shared.stop.clone();
    loop {
        let next = tokio::select! {
            _ = stopped(&mut stop) => break,
            m = rx.recv() => m,
        };
        let Some((data, dest)) = next else { break };
        match sock.send_to(&data, dest).await {
            Ok(_) => {
                Stats::inc(&shared.stats.messages_out);
            }
            Err(e) => {
                Stats::inc(&shared.stats.send_errors);
                debug!(peer = %Pii(dest), error = %e, "UDP send failed");
            }
        }
    }
    // Best effort: whatever was queued before shutdown (e.g. 503s) still goes out.
    rx.close();
    while let Ok((data, dest)) = rx.try_recv() {
        if sock.try_send_to(&data, dest).is_ok() {
            Stats::inc(&shared.stats.messages_out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_keepalive;

    #[test]
    fn keepalive_datagrams() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(b"\r\n"));
        assert!(is_keepalive(&[0, 0, 0, 0]));
        assert!(is_keepalive(b""));
        assert!(!is_keepalive(b"OPTIONS sip:a SIP/2.0\r\n\r\n"));
    }
}
