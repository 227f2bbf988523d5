//! Transport tests over real loopback sockets (port 0), IPv4 and IPv6.
//!
//! Timeouts are short (hundreds of milliseconds) and every wait is bounded by
//! [`WAIT`]; no test asserts on wall-clock durations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use super::*;

/// Upper bound for any single wait in these tests.
const WAIT: Duration = Duration::from_secs(2);

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn options(n: u32) -> Vec<u8> {
    format!("OPTIONS sip:a@b SIP/2.0\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n")
        .into_bytes()
}

fn limits() -> TransportLimits {
    TransportLimits {
        message_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        error_linger: Duration::from_millis(300),
        ..TransportLimits::default()
    }
}

/// True when `::1` can be bound here; prints why not otherwise.
fn ipv6_available() -> bool {
    match std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => true,
        Err(e) => {
            println!("skipping IPv6 case: cannot bind [::1]: {e}");
            false
        }
    }
}

/// A running transport layer with its event receiver.
struct Harness {
    handle: TransportHandle,
    running: Option<Running>,
    events: mpsc::Receiver<TransportEvent>,
    bound: Vec<BoundListener>,
    stop: Option<oneshot::Sender<()>>,
}

impl Harness {
    async fn start(specs: &[(IpAddr, TransportKind)], limits: TransportLimits) -> Harness {
        let specs: Vec<ListenSpec> = specs
            .iter()
            .enumerate()
            .map(|(i, (ip, kind))| ListenSpec {
                addr: SocketAddr::new(*ip, 0),
                kind: *kind,
                listener: ListenerId(i as u32 + 1),
            })
            .collect();
        let (tx, events) = mpsc::channel(64);
        let transports = Transports::bind(&specs, limits, tx).expect("bind");
        let bound = transports.local_addrs();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let running = transports
            .spawn(async move {
                let _ = stop_rx.await;
            })
            .expect("spawn");
        Harness {
            handle: running.handle(),
            running: Some(running),
            events,
            bound,
            stop: Some(stop),
        }
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.bound[i].local
    }

    async fn event(&mut self) -> TransportEvent {
        timeout(WAIT, self.events.recv())
            .await
            .expect("event within the wait")
            .expect("event channel open")
    }

    async fn message(&mut self) -> Inbound {
        match self.event().await {
            TransportEvent::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    async fn closed(&mut self) -> (ConnId, CloseReason) {
        match self.event().await {
            TransportEvent::Closed { conn, reason, .. } => (conn, reason),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    fn reply(&self, to: &Inbound, data: &[u8], dest: SocketAddr) -> Result<(), TransportError> {
        self.handle.send(Outbound {
            data: Bytes::copy_from_slice(data),
            dest,
            kind: to.kind,
            conn: to.conn,
            listener: to.listener,
        })
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            timeout(WAIT, running.stopped())
                .await
                .expect("stopped in time");
        }
    }
}

/// Reads until `n` bytes arrived or the stream ends.
async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    timeout(WAIT, stream.read_exact(&mut out))
        .await
        .expect("read within the wait")
        .expect("read");
    out
}

/// Waits for the peer to close: EOF or reset, within the wait.
async fn expect_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    loop {
        match timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("closed within the wait")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

// ---- UDP ----------------------------------------------------------------------------

async fn udp_echo(ip: IpAddr) {
    let mut h = Harness::start(&[(ip, TransportKind::Udp)], limits()).await;
    let server = h.addr(0);
    assert_ne!(server.port(), 0, "port 0 resolved to the real port");
    let client = UdpSocket::bind((ip, 0)).await.unwrap();
    client.send_to(&options(1), server).await.unwrap();
    let m = h.message().await;
    assert_eq!(&m.data[..], &options(1)[..]);
    assert_eq!(m.source, client.local_addr().unwrap());
    assert_eq!(m.local, server);
    assert_eq!(
        (m.kind, m.conn, m.listener),
        (TransportKind::Udp, None, ListenerId(1))
    );

    h.reply(&m, b"SIP/2.0 200 OK\r\n\r\n", m.source).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"SIP/2.0 200 OK\r\n\r\n");
    assert_eq!(from, server, "replies leave from the listening port");

    // Keepalive datagrams are swallowed, the next real message still arrives.
    client.send_to(b"\r\n\r\n", server).await.unwrap();
    client.send_to(&options(2), server).await.unwrap();
    assert_eq!(&h.message().await.data[..], &options(2)[..]);
    let stats = h.handle.stats();
    assert_eq!(stats.keepalives_in, 1);
    assert_eq!(stats.messages_in, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn udp_echo_ipv4() {
    udp_echo(V4).await;
}

#[tokio::test]
async fn udp_echo_ipv6() {
    if ipv6_available() {
        udp_echo(V6).await;
    }
}

#[tokio::test]
async fn udp_oversize_datagram_is_dropped() {
    let lim = TransportLimits {
        max_message_size: 100,
        ..limits()
    };
    let mut h = Harness::start(&[(V4, TransportKind::Udp)], lim).await;
    let client = UdpSocket::bind((V4, 0)).await.unwrap();
    client.send_to(&[b'x'; 101], h.addr(0)).await.unwrap();
    client.send_to(&options(3), h.addr(0)).await.unwrap();
    assert_eq!(&h.message().await.data[..], &options(3)[..]);
    assert_eq!(h.handle.stats().dropped_in, 1);
    h.shutdown().await;
}

// ---- TCP: framing and responses ----------------------------------------------------

async fn tcp_two_messages_and_response(ip: IpAddr) {
    let mut h = Harness::start(&[(ip, TransportKind::Tcp)], limits()).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    let mut both = options(1);
    both.extend_from_slice(&options(2));
    client.write_all(&both).await.unwrap();
    let a = h.message().await;
    let b = h.message().await;
    assert_eq!(&a.data[..], &options(1)[..]);
    assert_eq!(&b.data[..], &options(2)[..]);
    assert!(a.conn.is_some());
    assert_eq!(a.conn, b.conn);
    assert_eq!(a.source, client.local_addr().unwrap());
    assert_eq!(a.kind, TransportKind::Tcp);
    assert_eq!(h.handle.connection_count(), 1);

    // The response goes back on the request's connection even with a useless dest.
    let nowhere = SocketAddr::new(ip, 9);
    let resp = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    h.reply(&a, resp, nowhere).unwrap();
    assert_eq!(read_n(&mut client, resp.len()).await, resp);

    // Without a connection id, the open connection to the source address is reused.
    let b_no_conn = Inbound {
        conn: None,
        ..b.clone()
    };
    h.reply(&b_no_conn, resp, b.source).unwrap();
    assert_eq!(read_n(&mut client, resp.len()).await, resp);

    // RFC 5626 keepalive: CRLFCRLF ping gets a CRLF pong.
    client.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_n(&mut client, 2).await, b"\r\n");

    drop(client);
    let (conn, reason) = h.closed().await;
    assert_eq!(Some(conn), a.conn);
    assert_eq!(reason, CloseReason::PeerClosed);
    assert_eq!(h.handle.connection_count(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_two_messages_and_response_ipv4() {
    tcp_two_messages_and_response(V4).await;
}

#[tokio::test]
async fn tcp_two_messages_and_response_ipv6() {
    if ipv6_available() {
        tcp_two_messages_and_response(V6).await;
    }
}

#[tokio::test]
async fn tcp_message_split_across_writes() {
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], limits()).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    client.set_nodelay(true).unwrap();
    let msg = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";
    for chunk in msg.chunks(7) {
        client.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(&h.message().await.data[..], &msg[..]);
    h.shutdown().await;
}

// ---- TCP: limits and timeouts ------------------------------------------------------

#[tokio::test]
async fn tcp_connection_limit() {
    let lim = TransportLimits {
        max_connections: 1,
        ..limits()
    };
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], lim).await;
    let mut first = TcpStream::connect(h.addr(0)).await.unwrap();
    first.write_all(&options(1)).await.unwrap();
    let m = h.message().await;

    let mut second = TcpStream::connect(h.addr(0)).await.unwrap();
    expect_eof(&mut second).await;
    assert_eq!(h.handle.stats().conns_rejected, 1);

    // The first connection is unaffected.
    let resp = b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n";
    h.reply(&m, resp, m.source).unwrap();
    assert_eq!(read_n(&mut first, resp.len()).await, resp);

    // After it closes, its slot is free again.
    drop(first);
    assert_eq!(h.closed().await.1, CloseReason::PeerClosed);
    let mut third = TcpStream::connect(h.addr(0)).await.unwrap();
    third.write_all(&options(3)).await.unwrap();
    assert_eq!(&h.message().await.data[..], &options(3)[..]);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_idle_timeout_closes() {
    let lim = TransportLimits {
        idle_timeout: Duration::from_millis(300),
        ..limits()
    };
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], lim).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    expect_eof(&mut client).await;
    assert_eq!(h.closed().await.1, CloseReason::IdleTimeout);
    assert_eq!(h.handle.connection_count(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_slowloris_read_timeout_closes() {
    // Idle timeout far away: the trickle keeps the connection "active", only the
    // message read timeout can end it.
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], limits()).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    client.set_nodelay(true).unwrap();
    client
        .write_all(b"INVITE sip:a@b SIP/2.0\r\nX: ")
        .await
        .unwrap();
    let (mut rd, mut wr) = client.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            if wr.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(h.closed().await.1, CloseReason::ReadTimeout);
    let mut buf = [0u8; 16];
    let n = timeout(WAIT, rd.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "server closed its side");
    trickle.abort();
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_oversize_message_is_rejected_answered_and_closed() {
    let lim = TransportLimits {
        max_message_size: 1000,
        ..limits()
    };
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], lim).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    let head = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n";
    client.write_all(head).await.unwrap();
    let (inbound, error) = match h.event().await {
        TransportEvent::Rejected { head, error } => (head, error),
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(&inbound.data[..], &head[..]);
    assert!(matches!(
        error,
        FramingError::MessageTooLarge { limit: 1000, .. }
    ));
    assert_eq!(error.sip_status(), 513);
    // The engine answers on the connection; then it closes.
    let resp = b"SIP/2.0 513 Message Too Large\r\nl: 0\r\n\r\n";
    h.reply(&inbound, resp, inbound.source).unwrap();
    assert_eq!(read_n(&mut client, resp.len()).await, resp);
    expect_eof(&mut client).await;
    assert_eq!(h.closed().await.1, CloseReason::FramingError);
    assert_eq!(h.handle.stats().framing_errors, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_missing_content_length_closes_after_linger() {
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], limits()).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    client
        .write_all(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n")
        .await
        .unwrap();
    match h.event().await {
        TransportEvent::Rejected { error, .. } => {
            assert_eq!(error, FramingError::MissingContentLength)
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // Nobody answers: the connection closes when the linger ends.
    expect_eof(&mut client).await;
    assert_eq!(h.closed().await.1, CloseReason::FramingError);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_header_overflow_closes_at_once() {
    let lim = TransportLimits {
        max_header_size: 256,
        ..limits()
    };
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], lim).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    let mut junk = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
    while junk.len() < 1000 {
        junk.extend_from_slice(b"X-Junk: aaaaaaaaaaaaaaaa\r\n");
    }
    // The server may close before it read everything, so a failed write is fine.
    let _ = client.write_all(&junk).await;
    // No header block to answer to: closed without a Rejected event.
    assert_eq!(h.closed().await.1, CloseReason::FramingError);
    expect_eof(&mut client).await;
    h.shutdown().await;
}

// ---- TCP: outgoing connections -----------------------------------------------------

async fn tcp_outgoing_connection(ip: IpAddr) {
    let mut h = Harness::start(&[(ip, TransportKind::Tcp)], limits()).await;
    let peer = TcpListener::bind((ip, 0)).await.unwrap();
    let dest = peer.local_addr().unwrap();
    let send = |n: u32| {
        h.handle.send(Outbound {
            data: Bytes::from(options(n)),
            dest,
            kind: TransportKind::Tcp,
            conn: None,
            listener: ListenerId(1),
        })
    };
    // Both are queued while the connection opens; order is kept and one connection used.
    send(1).unwrap();
    send(2).unwrap();
    let (mut stream, from) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
    assert_eq!(from.ip(), ip, "sourced from the listener's address");
    let mut want = options(1);
    want.extend_from_slice(&options(2));
    assert_eq!(read_n(&mut stream, want.len()).await, want);
    send(3).unwrap();
    assert_eq!(read_n(&mut stream, options(3).len()).await, options(3));
    assert!(
        timeout(Duration::from_millis(100), peer.accept())
            .await
            .is_err(),
        "no second connection"
    );

    // The peer's request arrives tagged with the same connection.
    stream.write_all(&options(4)).await.unwrap();
    let m = h.message().await;
    assert_eq!(&m.data[..], &options(4)[..]);
    assert_eq!(m.source, dest);
    assert!(m.conn.is_some());
    assert_eq!(h.handle.stats().conns_connected, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_outgoing_connection_ipv4() {
    tcp_outgoing_connection(V4).await;
}

#[tokio::test]
async fn tcp_outgoing_connection_ipv6() {
    if ipv6_available() {
        tcp_outgoing_connection(V6).await;
    }
}

#[tokio::test]
async fn tcp_send_on_closed_connection_falls_back_to_dest() {
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], limits()).await;
    let mut client = TcpStream::connect(h.addr(0)).await.unwrap();
    client.write_all(&options(1)).await.unwrap();
    let m = h.message().await;
    drop(client);
    assert_eq!(h.closed().await.1, CloseReason::PeerClosed);
    // RFC 3261 s18.2.2: the request's connection is gone, so a new one is opened to dest.
    let peer = TcpListener::bind((V4, 0)).await.unwrap();
    h.reply(&m, &options(2), peer.local_addr().unwrap())
        .unwrap();
    let (mut stream, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
    assert_eq!(read_n(&mut stream, options(2).len()).await, options(2));
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_connect_failure_is_reported() {
    let mut h = Harness::start(&[(V4, TransportKind::Tcp)], limits()).await;
    // A port that was just free: connecting to it is refused.
    let dest = {
        let l = std::net::TcpListener::bind((V4, 0)).unwrap();
        l.local_addr().unwrap()
    };
    for n in 0..2 {
        h.handle
            .send(Outbound {
                data: Bytes::from(options(n)),
                dest,
                kind: TransportKind::Tcp,
                conn: None,
                listener: ListenerId(1),
            })
            .unwrap();
    }
    match h.event().await {
        TransportEvent::ConnectFailed {
            dest: d,
            kind,
            dropped,
        } => {
            assert_eq!((d, kind, dropped), (dest, TransportKind::Tcp, 2));
        }
        other => panic!("expected a connect failure, got {other:?}"),
    }
    let stats = h.handle.stats();
    assert_eq!((stats.connect_failures, stats.dropped_out), (1, 2));
    h.shutdown().await;
}

// ---- binding, sending errors, shutdown ---------------------------------------------

#[tokio::test]
async fn bind_errors_are_typed() {
    let (tx, _rx) = mpsc::channel(1);
    let spec = |kind, id| ListenSpec {
        addr: SocketAddr::new(V4, 0),
        kind,
        listener: ListenerId(id),
    };
    let r = Transports::bind(
        &[spec(TransportKind::Udp, 1), spec(TransportKind::Tcp, 1)],
        limits(),
        tx.clone(),
    );
    assert!(matches!(
        r,
        Err(TransportError::DuplicateListener(ListenerId(1)))
    ));
    let r = Transports::bind(&[spec(TransportKind::Tls, 1)], limits(), tx.clone());
    assert!(matches!(
        r,
        Err(TransportError::Unsupported(TransportKind::Tls))
    ));
    let bad = TransportLimits {
        conn_send_queue: 0,
        ..limits()
    };
    let r = Transports::bind(&[spec(TransportKind::Udp, 1)], bad, tx.clone());
    assert!(matches!(
        r,
        Err(TransportError::InvalidLimit {
            field: "conn_send_queue"
        })
    ));

    // A UDP port already in use cannot be taken over (no SO_REUSEADDR on UDP).
    let taken = std::net::UdpSocket::bind((V4, 0)).unwrap();
    let spec_taken = ListenSpec {
        addr: taken.local_addr().unwrap(),
        kind: TransportKind::Udp,
        listener: ListenerId(1),
    };
    let r = Transports::bind(&[spec_taken], limits(), tx);
    assert!(
        matches!(
            r,
            Err(TransportError::Bind {
                kind: TransportKind::Udp,
                ..
            })
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn udp_and_tcp_on_both_families_bind_together() {
    if !ipv6_available() {
        return;
    }
    let h = Harness::start(
        &[
            (V4, TransportKind::Udp),
            (V4, TransportKind::Tcp),
            (V6, TransportKind::Udp),
            (V6, TransportKind::Tcp),
        ],
        limits(),
    )
    .await;
    assert_eq!(h.handle.listeners().len(), 4);
    assert!(h.bound.iter().all(|b| b.local.port() != 0));
    h.shutdown().await;
}

#[tokio::test]
async fn send_errors_are_typed() {
    let h = Harness::start(&[(V4, TransportKind::Udp)], limits()).await;
    let out = |kind, listener| Outbound {
        data: Bytes::from_static(b"x"),
        dest: SocketAddr::new(V4, 9),
        kind,
        conn: None,
        listener: ListenerId(listener),
    };
    assert!(matches!(
        h.handle.send(out(TransportKind::Udp, 7)),
        Err(TransportError::UnknownListener(ListenerId(7)))
    ));
    assert!(matches!(
        h.handle.send(out(TransportKind::Tcp, 1)),
        Err(TransportError::KindMismatch { .. })
    ));
    assert_eq!(h.handle.stats().dropped_out, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_everything() {
    let mut h = Harness::start(
        &[(V4, TransportKind::Udp), (V4, TransportKind::Tcp)],
        limits(),
    )
    .await;
    let mut client = TcpStream::connect(h.addr(1)).await.unwrap();
    client.write_all(&options(1)).await.unwrap();
    let _ = h.message().await;
    let handle = h.handle.clone();
    let tcp_addr = h.addr(1);
    h.shutdown().await;
    expect_eof(&mut client).await;
    let r = handle.send(Outbound {
        data: Bytes::from_static(b"x"),
        dest: tcp_addr,
        kind: TransportKind::Udp,
        conn: None,
        listener: ListenerId(1),
    });
    assert!(matches!(r, Err(TransportError::ShutDown)));
    assert!(
        TcpStream::connect(tcp_addr).await.is_err(),
        "listener closed"
    );
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let (tx, _rx) = mpsc::channel(1);
    let spec = ListenSpec {
        addr: SocketAddr::new(V4, 0),
        kind: TransportKind::Udp,
        listener: ListenerId(1),
    };
    // Binding needs no runtime; spawning does.
    let t = Transports::bind(&[spec], limits(), tx).expect("bind without a runtime");
    assert!(matches!(t.spawn(async {}), Err(TransportError::NoRuntime)));
}

#[test]
fn via_tokens() {
    assert_eq!(TransportKind::Udp.as_via_str(), "UDP");
    assert_eq!(TransportKind::Tcp.as_via_str(), "TCP");
    assert_eq!(TransportKind::Wss.to_string(), "WSS");
    assert!(!TransportKind::Udp.is_reliable());
    assert!(TransportKind::Tcp.is_stream());
}
