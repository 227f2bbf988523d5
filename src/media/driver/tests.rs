//! The driver over real loopback sockets: two std sockets play the far ends.

use super::*;
use crate::media::codec::{g711, Codec};
use crate::media::control::{LegMedia, LegSource, LegStats, MediaLeg, ToneKind};
use crate::media::relay::NoPrompts;
use crate::media::rtp::{write_header, RtpHeaderFields, RtpPacket};
use crate::media::sdp::Direction;
use std::net::UdpSocket as StdUdpSocket;

/// Long enough for a loaded CI machine; only bounds a failing test, never asserted.
const PATIENCE: Duration = Duration::from_secs(10);

fn far_end() -> StdUdpSocket {
    let socket = StdUdpSocket::bind("127.0.0.1:0").expect("bind far end");
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    socket
}

fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 12 + payload.len()];
    let fields = RtpHeaderFields {
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: 160 * u32::from(seq),
        ssrc,
    };
    write_header(&mut bytes, &fields).expect("header");
    bytes[12..].copy_from_slice(payload);
    bytes
}

fn leg_media(far: &StdUdpSocket, codec: Codec, pt: u8) -> LegMedia {
    LegMedia {
        remote_rtp: Some(far.local_addr().expect("addr")),
        remote_rtcp: None,
        codec,
        payload_type: pt,
        telephone_event: None,
        direction: Direction::SendRecv,
        ptime_ms: 20,
    }
}

/// Four consecutive ports starting at an even one, free right now (found by binding them).
fn free_ports() -> u16 {
    free_port_block(4)
}

/// `count` consecutive ports starting at an even one, free right now.
fn free_port_block(count: u16) -> u16 {
    for _ in 0..100 {
        let probe = StdUdpSocket::bind("127.0.0.1:0").expect("probe");
        let base = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if base > 65_000 {
            continue;
        }
        let held: Vec<_> = (0..count)
            .map_while(|i| StdUdpSocket::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(count) {
            return base;
        }
    }
    panic!("no {count} free consecutive ports");
}

/// Sends `packet` from `from` to `to` until `receiver` gets something from `expected_from`;
/// returns what it got (the first sends may precede the driver's bind).
fn exchange(
    from: &StdUdpSocket,
    to: SocketAddr,
    packet: &[u8],
    receiver: &StdUdpSocket,
    expected_from: SocketAddr,
) -> Vec<u8> {
    let deadline = read_clock().mono + PATIENCE;
    let mut buf = [0u8; 2048];
    while read_clock().mono < deadline {
        from.send_to(packet, to).expect("send");
        while let Ok((len, src)) = receiver.recv_from(&mut buf) {
            if src == expected_from {
                return buf[..len].to_vec();
            }
        }
    }
    panic!("nothing relayed from {expected_from}");
}

fn wait_event(
    events: &mut tokio::sync::mpsc::Receiver<MediaEvent>,
    mut wanted: impl FnMut(&MediaEvent) -> bool,
) -> MediaEvent {
    let deadline = read_clock().mono + PATIENCE;
    while read_clock().mono < deadline {
        match events.try_recv() {
            Ok(event) if wanted(&event) => return event,
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    panic!("event not reported");
}

fn relay_round_trip(config: MediaDriverConfig) {
    let (events_tx, mut events) = tokio::sync::mpsc::channel(64);
    let base = free_ports();
    // Exactly the four free ports: the driver must use them.
    let config = MediaDriverConfig {
        port_min: base,
        port_max: base + 3,
        ..config
    };
    let handle = MediaDriver::start(config, Box::new(NoPrompts), events_tx).expect("start");
    let caller_far = far_end();
    let callee_far = far_end();
    let session = MediaSessionId(1);
    let local: IpAddr = "127.0.0.1".parse().expect("ip");
    handle
        .send(MediaCommand::Open {
            session,
            local_ip: local,
        })
        .expect("open");
    let MediaEvent::Opened { caller, callee, .. } =
        wait_event(&mut events, |e| matches!(e, MediaEvent::Opened { .. }))
    else {
        unreachable!("filtered")
    };
    let mut ports = [caller.rtp, callee.rtp];
    ports.sort_unstable();
    assert_eq!(ports, [base, base + 2]);
    for (leg, media) in [
        (MediaLeg::Caller, leg_media(&caller_far, Codec::Pcmu, 0)),
        (MediaLeg::Callee, leg_media(&callee_far, Codec::Pcma, 8)),
    ] {
        handle
            .send(MediaCommand::Update {
                session,
                leg,
                media,
            })
            .expect("update");
    }
    let caller_port = SocketAddr::new(local, caller.rtp);
    let callee_port = SocketAddr::new(local, callee.rtp);
    let payload: Vec<u8> = (0..160).map(|i| i as u8).collect();

    // Caller -> callee: PCMU becomes PCMA, payload type 8, our SSRC, from the callee's port.
    let sent = rtp(0, 1, 0xaaaa, &payload);
    let got = exchange(&caller_far, caller_port, &sent, &callee_far, callee_port);
    let p = RtpPacket::parse(&got).expect("valid RTP");
    assert_eq!(p.payload_type(), 8);
    assert_ne!(p.ssrc(), 0xaaaa);
    let alaw: Vec<u8> = payload
        .iter()
        .map(|&c| g711::ULAW_TO_ALAW[usize::from(c)])
        .collect();
    assert_eq!(p.payload(), &alaw[..]);

    // Callee -> caller.
    let sent = rtp(8, 1, 0xbbbb, &alaw);
    let got = exchange(&callee_far, callee_port, &sent, &caller_far, caller_port);
    let p = RtpPacket::parse(&got).expect("valid RTP");
    assert_eq!(p.payload_type(), 0);
    let ulaw: Vec<u8> = alaw
        .iter()
        .map(|&c| g711::ALAW_TO_ULAW[usize::from(c)])
        .collect();
    assert_eq!(p.payload(), &ulaw[..]);

    // The caller hears busy tone generated on the tick, then the callee again.
    handle
        .send(MediaCommand::Source {
            session,
            leg: MediaLeg::Caller,
            source: LegSource::Tone(ToneKind::Busy),
        })
        .expect("source");
    let mut buf = [0u8; 2048];
    let mut tone_frames = 0;
    let deadline = read_clock().mono + PATIENCE;
    while tone_frames < 3 && read_clock().mono < deadline {
        if let Ok((len, src)) = caller_far.recv_from(&mut buf) {
            let generated = RtpPacket::parse(&buf[..len]).is_ok_and(|p| p.payload().len() == 160);
            if src == caller_port && generated {
                tone_frames += 1;
            }
        }
    }
    assert_eq!(tone_frames, 3, "generated frames reach the caller");

    handle.send(MediaCommand::Close { session }).expect("close");
    let closed = wait_event(&mut events, |e| matches!(e, MediaEvent::Closed { .. }));
    let MediaEvent::Closed {
        session: closed_session,
        caller,
        callee,
    } = closed
    else {
        unreachable!("filtered above");
    };
    assert_eq!(closed_session, session);
    assert!(caller.packets_received >= 1 && callee.packets_received >= 1);
    assert!(caller.packets_sent >= 4, "relayed + tone: {caller:?}");
    assert_eq!(
        (caller.codec, callee.codec),
        (Some(Codec::Pcmu), Some(Codec::Pcma))
    );
    let stats = handle.stats();
    assert!(
        stats.datagrams_relayed >= 2 && stats.datagrams_generated >= 3,
        "{stats:?}"
    );
    handle.shutdown();
}

#[test]
fn relays_over_loopback_with_batched_syscalls() {
    relay_round_trip(MediaDriverConfig::default());
}

#[test]
fn relays_over_loopback_one_datagram_per_syscall() {
    relay_round_trip(MediaDriverConfig {
        batch_receive: false,
        batch_send: false,
        ..MediaDriverConfig::default()
    });
}

#[test]
fn a_port_in_use_is_reported_and_close_still_answers() {
    let (events_tx, mut events) = tokio::sync::mpsc::channel(8);
    let base = free_ports();
    // The range has two pairs, and another program holds the second pair's RTCP port.
    let config = MediaDriverConfig {
        port_min: base,
        port_max: base + 3,
        ..MediaDriverConfig::default()
    };
    let handle = MediaDriver::start(config, Box::new(NoPrompts), events_tx).expect("start");
    let squatter = StdUdpSocket::bind(("127.0.0.1", base + 3)).expect("squat");
    let session = MediaSessionId(2);
    handle
        .send(MediaCommand::Open {
            session,
            local_ip: "127.0.0.1".parse().expect("ip"),
        })
        .expect("open");
    let failed = wait_event(&mut events, |_| true);
    assert_eq!(failed, MediaEvent::OpenFailed { session });
    // The pair bound before the failure was released again.
    drop(StdUdpSocket::bind(("127.0.0.1", base)).expect("first pair released"));
    drop(StdUdpSocket::bind(("127.0.0.1", base + 1)).expect("first pair released"));
    handle.send(MediaCommand::Close { session }).expect("close");
    assert_eq!(
        wait_event(&mut events, |_| true),
        MediaEvent::Closed {
            session,
            caller: LegStats::default(),
            callee: LegStats::default(),
        }
    );
    drop(squatter);
    handle.shutdown();
}

/// Drains `socket` until `quiet` passes without a datagram; returns (source, bytes) pairs.
fn receive_all(
    socket: &StdUdpSocket,
    until: impl Fn(&[(SocketAddr, Vec<u8>)]) -> bool,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let deadline = read_clock().mono + PATIENCE;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while !until(&got) && read_clock().mono < deadline {
        if let Ok((len, src)) = socket.recv_from(&mut buf) {
            got.push((src, buf[..len].to_vec()));
        }
    }
    got
}

#[cfg(target_os = "linux")]
#[test]
fn a_tick_queue_goes_out_per_socket_in_order_with_sendmmsg() {
    let far = far_end();
    let to = far.local_addr().expect("addr");
    let mut sockets: Vec<Option<UdpSocket>> = Vec::new();
    sockets.resize_with(PORT_SPACE, || None);
    let mut ports = Vec::new();
    for _ in 0..2 {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let port = socket.local_addr().expect("addr").port();
        sockets[usize::from(port)] = Some(socket);
        ports.push(port);
    }
    // A port without a socket (closed meanwhile): its datagrams are send errors.
    let gone = (1..u16::MAX)
        .find(|p| !ports.contains(p))
        .expect("a free index");
    let mut queue = tick_queue::TickQueue::with_capacity(4, 64);
    // More than one sendmmsg call's worth per socket, interleaved as a burst makes them.
    let per_socket = batch::BATCH + 8;
    for n in 0..per_socket {
        for &port in &ports {
            queue.push(port, to, &[(port & 0xff) as u8, n as u8]);
        }
    }
    queue.push(gone, to, &[0]);
    let mut batch = batch::MmsgBatch::new();
    let mut stats = DriverStats::default();
    flush_tick(&mut queue, &mut batch, &sockets, &mut stats);
    assert_eq!(
        (stats.datagrams_generated, stats.send_errors),
        (2 * per_socket as u64, 1)
    );
    let got = receive_all(&far, |got| got.len() >= 2 * per_socket);
    for &port in &ports {
        let from_port: Vec<Vec<u8>> = got
            .iter()
            .filter(|(src, _)| src.port() == port)
            .map(|(_, bytes)| bytes.clone())
            .collect();
        let expected: Vec<Vec<u8>> = (0..per_socket)
            .map(|n| vec![(port & 0xff) as u8, n as u8])
            .collect();
        assert_eq!(from_port, expected, "port {port}: all, in order");
    }
    assert_eq!(queue.runs().count(), 0, "flushed");
}

/// Sessions whose caller legs all hear a tone: every tick sends one frame per session,
/// each from its own socket; all of them reach the far end, in order.
fn every_generated_frame_arrives(config: MediaDriverConfig) {
    const SESSIONS: usize = 12;
    const FRAMES: usize = 10;
    let (events_tx, mut events) = tokio::sync::mpsc::channel(256);
    let ports = 4 * SESSIONS as u16;
    let base = free_port_block(ports);
    let config = MediaDriverConfig {
        port_min: base,
        port_max: base + ports - 1,
        ..config
    };
    let handle = MediaDriver::start(config, Box::new(NoPrompts), events_tx).expect("start");
    let far = far_end();
    let local: IpAddr = "127.0.0.1".parse().expect("ip");
    let mut caller_ports = Vec::new();
    for n in 0..SESSIONS {
        let session = MediaSessionId(100 + n as u64);
        handle
            .send(MediaCommand::Open {
                session,
                local_ip: local,
            })
            .expect("open");
        let MediaEvent::Opened { caller, .. } =
            wait_event(&mut events, |e| matches!(e, MediaEvent::Opened { .. }))
        else {
            unreachable!("filtered")
        };
        caller_ports.push(caller.rtp);
        for command in [
            MediaCommand::Update {
                session,
                leg: MediaLeg::Caller,
                media: leg_media(&far, Codec::Pcmu, 0),
            },
            MediaCommand::Source {
                session,
                leg: MediaLeg::Caller,
                source: LegSource::Tone(ToneKind::Ringback),
            },
        ] {
            handle.send(command).expect("command");
        }
    }
    let enough = |got: &[(SocketAddr, Vec<u8>)]| {
        caller_ports
            .iter()
            .all(|&port| got.iter().filter(|(src, _)| src.port() == port).count() >= FRAMES)
    };
    let got = receive_all(&far, enough);
    for &port in &caller_ports {
        let stream: Vec<RtpPacket<'_>> = got
            .iter()
            .filter(|(src, _)| src.port() == port)
            .map(|(_, bytes)| RtpPacket::parse(bytes).expect("valid RTP"))
            .collect();
        assert!(
            stream.len() >= FRAMES,
            "port {port}: {} frames",
            stream.len()
        );
        for pair in stream.windows(2) {
            assert_eq!(
                pair[1].sequence_number(),
                pair[0].sequence_number().wrapping_add(1),
                "port {port}: nothing lost, nothing reordered"
            );
        }
    }
    let stats = handle.stats();
    assert_eq!(stats.send_errors, 0, "{stats:?}");
    assert!(
        stats.datagrams_generated >= (SESSIONS * FRAMES) as u64,
        "{stats:?}"
    );
    handle.shutdown();
}

#[test]
fn every_generated_frame_of_a_tick_arrives_with_sendmmsg() {
    every_generated_frame_arrives(MediaDriverConfig::default());
}

#[test]
fn every_generated_frame_of_a_tick_arrives_with_send_to() {
    every_generated_frame_arrives(MediaDriverConfig {
        batch_receive: false,
        batch_send: false,
        ..MediaDriverConfig::default()
    });
}
