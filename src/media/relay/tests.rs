//! Scenario tests of the relay with simulated time: two far ends talk through one session.

use super::*;
use crate::media::codec::g711;
use crate::media::control::ToneKind;
use crate::media::dtmf::DtmfDigit;
use crate::media::rtp::event::EventGenerator;
use crate::media::rtp::rtcp::{packets, validate_compound, write_sender_report};
use crate::media::rtp::RtpHeaderFields;
use crate::media::sdp::Direction;
use std::net::SocketAddr;

const SESSION: MediaSessionId = MediaSessionId(7);
const CALLER_PORTS: PortPair = PortPair { rtp: 20_000 };
const CALLEE_PORTS: PortPair = PortPair { rtp: 20_002 };
const CALLER_SSRC: u32 = 0x1111_1111;
const CALLEE_SSRC: u32 = 0x2222_2222;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn caller_far() -> SocketAddr {
    addr("192.0.2.10:4000")
}

fn callee_far() -> SocketAddr {
    addr("198.51.100.20:5000")
}

fn stranger() -> SocketAddr {
    addr("203.0.113.66:6666")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn media(remote: SocketAddr, codec: Codec, payload_type: u8, te: Option<u8>) -> LegMedia {
    LegMedia {
        remote_rtp: Some(remote),
        remote_rtcp: None,
        codec,
        payload_type,
        telephone_event: te,
        direction: Direction::SendRecv,
        ptime_ms: 20,
    }
}

fn pcmu(remote: SocketAddr) -> LegMedia {
    media(remote, Codec::Pcmu, 0, None)
}

/// An RTP packet as a far end would send it.
fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 12 + payload.len()];
    let fields = RtpHeaderFields {
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc,
    };
    write_header(&mut bytes, &fields).expect("header");
    bytes[12..].copy_from_slice(payload);
    bytes
}

/// A datagram the relay emitted.
#[derive(Debug, Clone)]
struct Sent {
    /// When it was sent (the time the relay was called with).
    at: Duration,
    from_port: u16,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl Sent {
    fn rtp(&self) -> RtpPacket<'_> {
        RtpPacket::parse(&self.bytes).expect("the relay sends valid RTP")
    }
}

struct Harness {
    relay: Relay,
    now: Duration,
    /// Everything sent so far (relayed and generated), in order.
    sent: Vec<Sent>,
}

impl Harness {
    fn with_config(config: RelayConfig, prompts: Box<dyn PromptFactory>) -> Self {
        Self {
            relay: Relay::new(config, prompts),
            now: Duration::ZERO,
            sent: Vec::new(),
        }
    }

    fn new() -> Self {
        Self::with_config(
            RelayConfig {
                seed: 42,
                ..RelayConfig::default()
            },
            Box::new(NoPrompts),
        )
    }

    /// A session whose legs both talk PCMU with their far ends at the SDP addresses.
    fn talking() -> Self {
        let mut h = Self::new();
        h.open();
        h.update(MediaLeg::Caller, pcmu(caller_far()));
        h.update(MediaLeg::Callee, pcmu(callee_far()));
        h
    }

    fn open(&mut self) {
        self.relay
            .open(self.now, SESSION, CALLER_PORTS, CALLEE_PORTS);
        let opened = self.relay.poll_event();
        if !matches!(opened, Some(MediaEvent::Opened { .. }) | None) {
            // A second open of the same session reports nothing; anything else is kept.
            panic!("unexpected event on open: {opened:?}");
        }
    }

    fn command(&mut self, command: MediaCommand) {
        self.relay.command(self.now, command);
    }

    fn update(&mut self, leg: MediaLeg, media: LegMedia) {
        self.command(MediaCommand::Update {
            session: SESSION,
            leg,
            media,
        });
    }

    fn source(&mut self, leg: MediaLeg, source: LegSource) {
        self.command(MediaCommand::Source {
            session: SESSION,
            leg,
            source,
        });
    }

    /// Runs every tick due up to `until`, then sets the clock there.
    fn advance(&mut self, until: Duration) {
        while let Some(due) = self.relay.next_tick() {
            if due > until {
                break;
            }
            self.now = due;
            let sent = &mut self.sent;
            self.relay.tick(due, &mut |from_port, to, bytes| {
                sent.push(Sent {
                    at: due,
                    from_port,
                    to,
                    bytes: bytes.to_vec(),
                })
            });
        }
        self.now = until;
    }

    /// The media thread stalled: the first tick after `due` runs only at `now`.
    fn tick_late(&mut self, now: Duration) {
        self.now = now;
        let sent = &mut self.sent;
        self.relay.tick(now, &mut |from_port, to, bytes| {
            sent.push(Sent {
                at: now,
                from_port,
                to,
                bytes: bytes.to_vec(),
            })
        });
    }

    /// Delivers a datagram at the current time; relayed ones are recorded in `sent`.
    fn deliver(&mut self, local_port: u16, src: SocketAddr, bytes: &[u8]) -> PacketAction {
        let mut buf = [0u8; 1500];
        let len = bytes.len().min(buf.len());
        buf[..len].copy_from_slice(&bytes[..len]);
        let action = self
            .relay
            .on_packet(self.now, local_port, src, &mut buf, len);
        if let PacketAction::Send { from_port, to, len } = action {
            assert_eq!(len, bytes.len(), "relaying keeps the length");
            self.sent.push(Sent {
                at: self.now,
                from_port,
                to,
                bytes: buf[..len].to_vec(),
            });
        }
        action
    }

    fn events(&mut self) -> Vec<MediaEvent> {
        std::iter::from_fn(|| self.relay.poll_event()).collect()
    }

    fn sent_to(&self, to: SocketAddr, from_port: u16) -> Vec<Sent> {
        self.sent
            .iter()
            .filter(|s| s.to == to && s.from_port == from_port)
            .cloned()
            .collect()
    }

    fn drops(&self, leg: MediaLeg, reason: DropReason) -> u64 {
        self.relay
            .leg_counters(SESSION, leg)
            .map_or(0, |c| c.drops.get(reason))
    }
}

#[test]
fn relays_both_ways_with_payload_types_mapped() {
    let mut h = Harness::new();
    h.open();
    // Same codec, different dynamic payload types on each leg.
    h.update(
        MediaLeg::Caller,
        media(caller_far(), Codec::Opus, 111, Some(101)),
    );
    h.update(
        MediaLeg::Callee,
        media(callee_far(), Codec::Opus, 107, Some(96)),
    );
    let payload = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let mut to_callee = Vec::new();
    let mut to_caller = Vec::new();
    for k in 0..5u16 {
        h.now = ms(20 * u64::from(k));
        let a = h.deliver(
            CALLER_PORTS.rtp,
            caller_far(),
            &rtp(111, 100 + k, 960 * u32::from(k), CALLER_SSRC, &payload),
        );
        assert_eq!(
            a,
            PacketAction::Send {
                from_port: CALLEE_PORTS.rtp,
                to: callee_far(),
                len: 20
            }
        );
        to_callee.push(h.sent.last().cloned().expect("sent"));
        let b = h.deliver(
            CALLEE_PORTS.rtp,
            callee_far(),
            &rtp(
                107,
                9000 + k,
                5000 + 960 * u32::from(k),
                CALLEE_SSRC,
                &payload,
            ),
        );
        assert!(matches!(b, PacketAction::Send { from_port, to, .. }
            if from_port == CALLER_PORTS.rtp && to == caller_far()));
        to_caller.push(h.sent.last().cloned().expect("sent"));
    }
    for (stream, pt, their_ssrc) in [
        (&to_callee, 107, CALLER_SSRC),
        (&to_caller, 111, CALLEE_SSRC),
    ] {
        let first = stream[0].rtp();
        assert_ne!(first.ssrc(), their_ssrc, "our own SSRC toward each far end");
        for (k, sent) in stream.iter().enumerate() {
            let p = sent.rtp();
            assert_eq!(p.payload_type(), pt);
            assert_eq!(p.payload(), &payload);
            assert_eq!(p.ssrc(), first.ssrc());
            assert_eq!(
                p.sequence_number(),
                first.sequence_number().wrapping_add(k as u16)
            );
            assert_eq!(
                p.timestamp(),
                first.timestamp().wrapping_add(960 * k as u32)
            );
        }
    }
    assert_ne!(to_callee[0].rtp().ssrc(), to_caller[0].rtp().ssrc());
    assert_eq!(h.relay.counters().relayed, 10);
}

#[test]
fn transcodes_pcmu_to_pcma_and_back_with_the_g711_tables() {
    let mut h = Harness::new();
    h.open();
    h.update(MediaLeg::Caller, pcmu(caller_far()));
    h.update(MediaLeg::Callee, media(callee_far(), Codec::Pcma, 8, None));
    let every_code: Vec<u8> = (0..=255).collect();
    let a = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(0, 1, 0, CALLER_SSRC, &every_code),
    );
    assert!(matches!(a, PacketAction::Send { len: 268, .. }));
    let sent = h.sent.last().cloned().expect("sent");
    let p = sent.rtp();
    assert_eq!(p.payload_type(), 8);
    let expected: Vec<u8> = every_code
        .iter()
        .map(|&c| g711::ULAW_TO_ALAW[usize::from(c)])
        .collect();
    assert_eq!(p.payload(), &expected[..]);

    let b = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(8, 1, 0, CALLEE_SSRC, &every_code),
    );
    assert!(matches!(b, PacketAction::Send { .. }));
    let sent = h.sent.last().cloned().expect("sent");
    let p = sent.rtp();
    assert_eq!(p.payload_type(), 0);
    let expected: Vec<u8> = every_code
        .iter()
        .map(|&c| g711::ALAW_TO_ULAW[usize::from(c)])
        .collect();
    assert_eq!(p.payload(), &expected[..]);
}

#[test]
fn codecs_that_cannot_be_converted_are_dropped_and_counted() {
    let mut h = Harness::new();
    h.open();
    h.update(MediaLeg::Caller, pcmu(caller_far()));
    h.update(MediaLeg::Callee, media(callee_far(), Codec::G722, 9, None));
    let a = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(0, 1, 0, CALLER_SSRC, &[0xff; 160]),
    );
    assert_eq!(a, PacketAction::Drop(DropReason::CodecMismatch));
    assert_eq!(h.drops(MediaLeg::Caller, DropReason::CodecMismatch), 1);
    // A payload type the leg did not negotiate.
    let b = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(8, 2, 160, CALLER_SSRC, &[0xd5; 160]),
    );
    assert_eq!(b, PacketAction::Drop(DropReason::UnknownPayloadType));
    assert_eq!(h.relay.counters().drops.get(DropReason::CodecMismatch), 1);
    assert_eq!(h.relay.counters().drops.total(), 2);
}

#[test]
fn nat_source_is_latched_within_the_window_and_strangers_are_refused_later() {
    let mut h = Harness::new();
    h.open();
    // The caller wrote its private address into SDP.
    h.update(MediaLeg::Caller, pcmu(addr("10.0.0.5:4000")));
    h.update(MediaLeg::Callee, pcmu(callee_far()));
    // Before anything arrives from the caller, its media goes to the SDP address.
    let a = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(0, 1, 0, CALLEE_SSRC, &[0xff; 160]),
    );
    assert!(matches!(a, PacketAction::Send { to, .. } if to == addr("10.0.0.5:4000")));
    // 1 s after the Update, its public (NAT) address sends: latched.
    let nat = addr("192.0.2.10:31000");
    h.now = ms(1000);
    let b = h.deliver(
        CALLER_PORTS.rtp,
        nat,
        &rtp(0, 1, 0, CALLER_SSRC, &[0xff; 160]),
    );
    assert!(matches!(b, PacketAction::Send { to, .. } if to == callee_far()));
    h.now = ms(1020);
    let c = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(0, 2, 160, CALLEE_SSRC, &[0xff; 160]),
    );
    assert!(matches!(c, PacketAction::Send { to, .. } if to == nat));
    // 5 s after the Update a stranger is refused; the latched far end still talks.
    h.now = ms(5000);
    for seq in 0..3 {
        let d = h.deliver(
            CALLER_PORTS.rtp,
            stranger(),
            &rtp(0, 500 + seq, 0, 0x6666, &[0; 160]),
        );
        assert_eq!(d, PacketAction::Drop(DropReason::Stranger));
    }
    assert_eq!(h.drops(MediaLeg::Caller, DropReason::Stranger), 3);
    let e = h.deliver(
        CALLER_PORTS.rtp,
        nat,
        &rtp(0, 2, 160, CALLER_SSRC, &[0xff; 160]),
    );
    assert!(matches!(e, PacketAction::Send { .. }));
    let f = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(0, 3, 320, CALLEE_SSRC, &[0xff; 160]),
    );
    assert!(matches!(f, PacketAction::Send { to, .. } if to == nat));
    // Nothing ever went to the stranger.
    assert!(h.sent.iter().all(|s| s.to != stranger()));
}

#[test]
fn strangers_are_refused_even_in_the_window_once_the_sdp_ip_was_heard() {
    let mut h = Harness::talking();
    h.now = ms(100);
    let a = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(0, 1, 0, CALLER_SSRC, &[0xff; 160]),
    );
    assert!(matches!(a, PacketAction::Send { .. }));
    h.now = ms(200);
    let b = h.deliver(
        CALLER_PORTS.rtp,
        stranger(),
        &rtp(0, 2, 160, CALLER_SSRC, &[0xff; 160]),
    );
    assert_eq!(b, PacketAction::Drop(DropReason::Stranger));
    // The SDP's IP from another port re-latches.
    let moved = addr("192.0.2.10:4100");
    let c = h.deliver(
        CALLER_PORTS.rtp,
        moved,
        &rtp(0, 3, 320, CALLER_SSRC, &[0xff; 160]),
    );
    assert!(matches!(c, PacketAction::Send { .. }));
    let d = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(0, 1, 0, CALLEE_SSRC, &[0xff; 160]),
    );
    assert!(matches!(d, PacketAction::Send { to, .. } if to == moved));
    // A leg without SDP accepts nobody.
    let mut fresh = Harness::new();
    fresh.open();
    let e = fresh.deliver(CALLER_PORTS.rtp, caller_far(), &rtp(0, 1, 0, 1, &[0; 160]));
    assert_eq!(e, PacketAction::Drop(DropReason::NotNegotiated));
}

/// The caller's far end hears relayed media, then ringback, then relayed media again.
#[test]
fn a_leg_hears_one_continuous_stream_across_relay_tone_relay() {
    let mut h = Harness::talking();
    let mut k = 0u16;
    for t in (0..=400u64).step_by(5) {
        h.advance(ms(t));
        if t == 110 {
            h.source(MediaLeg::Caller, LegSource::Tone(ToneKind::Ringback));
        }
        if t == 210 {
            h.source(MediaLeg::Caller, LegSource::Relay);
        }
        if t % 20 == 5 {
            let packet = rtp(
                0,
                5000 + k,
                90_000 + 160 * u32::from(k),
                CALLEE_SSRC,
                &[0x55; 160],
            );
            let action = h.deliver(CALLEE_PORTS.rtp, callee_far(), &packet);
            let hears_tone = (110..210).contains(&t);
            if hears_tone {
                assert_eq!(action, PacketAction::Drop(DropReason::PeerHearsGenerated));
            } else {
                assert!(
                    matches!(action, PacketAction::Send { .. }),
                    "t={t}: {action:?}"
                );
            }
            k += 1;
        }
    }
    let stream = h.sent_to(caller_far(), CALLER_PORTS.rtp);
    // 6 relayed (5..105), 5 tone frames (ticks 120..200), 9 relayed (225..385).
    assert_eq!(stream.len(), 6 + 5 + 9, "{stream:#?}");
    let first = stream[0].rtp();
    for (i, pair) in stream.windows(2).enumerate() {
        let (a, b) = (pair[0].rtp(), pair[1].rtp());
        assert_eq!(b.ssrc(), first.ssrc(), "packet {i}: one SSRC");
        assert_eq!(
            b.sequence_number(),
            a.sequence_number().wrapping_add(1),
            "packet {i}"
        );
        assert_eq!(b.timestamp(), a.timestamp().wrapping_add(160), "packet {i}");
    }
    let markers: Vec<usize> = (0..stream.len())
        .filter(|&i| stream[i].rtp().marker())
        .collect();
    assert_eq!(markers, vec![0, 6, 11], "marker on each new input");
    // The tone frames carry the tone (not silence), in PCMU.
    for frame in &stream[6..11] {
        let p = frame.rtp();
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.payload().len(), FRAME_SAMPLES);
        assert!(
            p.payload()
                .iter()
                .filter(|&&c| c != 0xff && c != 0x7f)
                .count()
                > 100
        );
    }
    // The callee heard nothing generated.
    assert!(h.sent.iter().all(|s| s.to != callee_far()));
}

#[test]
fn rfc4733_digit_is_reported_once_and_relayed_with_the_mapped_type() {
    let mut h = Harness::new();
    h.open();
    h.update(
        MediaLeg::Caller,
        media(caller_far(), Codec::Pcmu, 0, Some(101)),
    );
    h.update(
        MediaLeg::Callee,
        media(callee_far(), Codec::Pcmu, 0, Some(96)),
    );
    let digit = DtmfDigit::from_char('5').expect("digit");
    let generator = EventGenerator::dtmf(digit, ms(120), 8000);
    for (seq, event) in generator.enumerate() {
        h.now = ms(20 * seq as u64);
        let mut packet = rtp(101, 300 + seq as u16, 8000, CALLER_SSRC, &event.payload);
        packet[1] |= if event.start { 0x80 } else { 0 };
        let action = h.deliver(CALLER_PORTS.rtp, caller_far(), &packet);
        assert!(matches!(action, PacketAction::Send { to, .. } if to == callee_far()));
        let sent = h.sent.last().cloned().expect("sent");
        assert_eq!(sent.rtp().payload_type(), 96);
        assert_eq!(sent.rtp().payload(), &event.payload);
    }
    assert_eq!(
        h.events(),
        vec![MediaEvent::Digit {
            session: SESSION,
            leg: MediaLeg::Caller,
            digit,
            source: DigitSource::Rfc4733,
        }]
    );
    // The callee has no telephone-event toward a caller without one: dropped and counted.
    h.update(MediaLeg::Caller, media(caller_far(), Codec::Pcmu, 0, None));
    let packet = rtp(96, 1, 0, CALLEE_SSRC, &[3, 0x0a, 0, 0]);
    let action = h.deliver(CALLEE_PORTS.rtp, callee_far(), &packet);
    assert_eq!(action, PacketAction::Drop(DropReason::NoTelephoneEvent));
    assert_eq!(h.events().len(), 1, "the callee's digit is still detected");
}

/// 120 ms of the key '5' (770 + 1336 Hz) then silence, in 20 ms PCMU packets.
fn inband_five() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for frame in 0..12u32 {
        let pcm: Vec<i16> = (0..160u32)
            .map(|i| {
                if frame >= 6 {
                    return 0;
                }
                let t = f64::from(frame * 160 + i) / 8000.0;
                let tau = std::f64::consts::TAU;
                (7000.0 * (tau * 770.0 * t).sin() + 7000.0 * (tau * 1336.0 * t).sin()) as i16
            })
            .collect();
        let mut payload = vec![0u8; 160];
        g711::encode_ulaw(&pcm, &mut payload);
        frames.push(payload);
    }
    frames
}

#[test]
fn inband_digit_is_reported_once_when_no_telephone_event_is_negotiated() {
    for te in [None, Some(101)] {
        let mut h = Harness::new();
        h.open();
        h.update(MediaLeg::Caller, media(caller_far(), Codec::Pcmu, 0, te));
        h.update(MediaLeg::Callee, pcmu(callee_far()));
        for (k, payload) in inband_five().iter().enumerate() {
            h.now = ms(20 * k as u64);
            let packet = rtp(0, k as u16, 160 * k as u32, CALLER_SSRC, payload);
            let action = h.deliver(CALLER_PORTS.rtp, caller_far(), &packet);
            assert!(matches!(action, PacketAction::Send { .. }));
        }
        let expected = match te {
            None => vec![MediaEvent::Digit {
                session: SESSION,
                leg: MediaLeg::Caller,
                digit: DtmfDigit::from_char('5').expect("digit"),
                source: DigitSource::Inband,
            }],
            // With telephone-event negotiated the audio is not searched for tones.
            Some(_) => vec![],
        };
        assert_eq!(h.events(), expected, "telephone-event {te:?}");
    }
}

/// Both far ends talk for 1 s, 50 packets a second each way.
fn talk_for_a_second(h: &mut Harness, start: Duration, seq_base: u16) {
    for k in 0..50u16 {
        h.advance(start + ms(20 * u64::from(k)));
        let seq = seq_base.wrapping_add(k);
        let ts = 160 * u32::from(seq);
        let _ = h.deliver(
            CALLER_PORTS.rtp,
            caller_far(),
            &rtp(0, seq, ts, CALLER_SSRC, &[0xff; 160]),
        );
        let _ = h.deliver(
            CALLEE_PORTS.rtp,
            callee_far(),
            &rtp(0, seq, ts, CALLEE_SSRC, &[0xff; 160]),
        );
    }
}

fn timeouts(events: &[MediaEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Timeout { .. }))
        .count()
}

#[test]
fn media_timeout_fires_once_and_not_while_on_hold() {
    let mut h = Harness::talking();
    talk_for_a_second(&mut h, Duration::ZERO, 0);
    h.advance(Duration::from_secs(59));
    assert_eq!(timeouts(&h.events()), 0);
    h.advance(Duration::from_secs(62));
    assert_eq!(timeouts(&h.events()), 1, "60 s after the last packet");
    h.advance(Duration::from_secs(200));
    assert_eq!(timeouts(&h.events()), 0, "reported once");
    // Media again re-arms it.
    talk_for_a_second(&mut h, Duration::from_secs(200), 50);
    h.advance(Duration::from_secs(262));
    assert_eq!(timeouts(&h.events()), 1);

    // Hold: the caller sends sendonly, the callee answers recvonly and stops sending, and
    // the caller's phone sends no music either. Nobody is silent "wrongly": no timeout.
    let mut held = Harness::talking();
    talk_for_a_second(&mut held, Duration::ZERO, 0);
    held.update(
        MediaLeg::Caller,
        LegMedia {
            direction: Direction::SendOnly,
            ..pcmu(caller_far())
        },
    );
    held.update(
        MediaLeg::Callee,
        LegMedia {
            direction: Direction::RecvOnly,
            ..pcmu(callee_far())
        },
    );
    held.advance(Duration::from_secs(300));
    assert_eq!(timeouts(&held.events()), 0);
    // Taken off hold without media resuming: the timeout runs from the Update.
    held.update(MediaLeg::Caller, pcmu(caller_far()));
    held.update(MediaLeg::Callee, pcmu(callee_far()));
    held.advance(Duration::from_secs(359));
    assert_eq!(timeouts(&held.events()), 0);
    held.advance(Duration::from_secs(362));
    assert_eq!(timeouts(&held.events()), 1);
}

#[test]
fn hold_stops_sending_toward_a_far_end_that_does_not_receive() {
    let mut h = Harness::talking();
    // The callee holds the caller: it does not want to receive.
    h.update(
        MediaLeg::Callee,
        LegMedia {
            direction: Direction::SendOnly,
            ..pcmu(callee_far())
        },
    );
    let a = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(0, 1, 0, CALLER_SSRC, &[0xff; 160]),
    );
    assert_eq!(a, PacketAction::Drop(DropReason::PeerNotReceiving));
    let b = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(0, 1, 0, CALLEE_SSRC, &[0xff; 160]),
    );
    assert!(matches!(b, PacketAction::Send { to, .. } if to == caller_far()));
    // Nor does it get generated audio.
    h.source(MediaLeg::Callee, LegSource::Tone(ToneKind::Busy));
    h.advance(ms(500));
    assert!(h.sent.iter().all(|s| s.to != callee_far()));
    // Inactive: what it sends anyway is not relayed.
    h.update(
        MediaLeg::Callee,
        LegMedia {
            direction: Direction::Inactive,
            ..pcmu(callee_far())
        },
    );
    let c = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(0, 2, 160, CALLEE_SSRC, &[0xff; 160]),
    );
    assert_eq!(c, PacketAction::Drop(DropReason::NotSending));
    // c=0.0.0.0 hold: no address at all, nothing is sent, not even to the latched one.
    let d = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(0, 2, 160, CALLER_SSRC, &[0xff; 160]),
    );
    assert_eq!(d, PacketAction::Drop(DropReason::PeerHearsGenerated));
    h.update(
        MediaLeg::Caller,
        LegMedia {
            remote_rtp: None,
            ..pcmu(caller_far())
        },
    );
    h.source(MediaLeg::Caller, LegSource::Silence);
    let before = h.sent.len();
    h.advance(ms(10_000));
    assert!(h.sent[before..]
        .iter()
        .all(|s| s.from_port != CALLER_PORTS.rtp && s.from_port != CALLER_PORTS.rtcp()));
    // Off hold: silence flows again, to the latched address.
    h.update(MediaLeg::Caller, pcmu(caller_far()));
    h.advance(ms(10_100));
    assert!(h.sent.last().is_some_and(|s| s.to == caller_far()));
}

#[test]
fn close_reports_stats_with_loss_and_packet_counts() {
    let mut h = Harness::talking();
    for seq in (100u16..110).filter(|s| *s != 103 && *s != 106) {
        h.now = ms(20 * u64::from(seq - 100));
        let packet = rtp(0, seq, 160 * u32::from(seq), CALLER_SSRC, &[0xff; 160]);
        assert!(matches!(
            h.deliver(CALLER_PORTS.rtp, caller_far(), &packet),
            PacketAction::Send { .. }
        ));
    }
    for seq in 0..5u16 {
        h.now = ms(20 * u64::from(seq));
        let packet = rtp(0, seq, 160 * u32::from(seq), CALLEE_SSRC, &[0xff; 80]);
        assert!(matches!(
            h.deliver(CALLEE_PORTS.rtp, callee_far(), &packet),
            PacketAction::Send { .. }
        ));
    }
    h.command(MediaCommand::Close { session: SESSION });
    let events = h.events();
    let [MediaEvent::Closed {
        session,
        caller,
        callee,
    }] = events.as_slice()
    else {
        panic!("expected one Closed: {events:?}");
    };
    assert_eq!(*session, SESSION);
    assert_eq!(
        (
            caller.packets_received,
            caller.packets_lost,
            caller.bytes_received,
            caller.packets_sent
        ),
        (8, 2, 8 * 160, 5)
    );
    assert_eq!(
        (
            callee.packets_received,
            callee.packets_lost,
            callee.bytes_received,
            callee.packets_sent
        ),
        (5, 0, 5 * 80, 8)
    );
    assert_eq!(caller.codec, Some(Codec::Pcmu));
    assert!(caller.jitter_ms.abs() < 1e-9, "packets arrived on time");
    assert_eq!(h.relay.session_count(), 0);
    assert_eq!(h.relay.next_tick(), None);
    let after = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(0, 111, 0, CALLER_SSRC, &[0; 4]),
    );
    assert_eq!(after, PacketAction::Drop(DropReason::UnknownPort));
}

/// Deterministic xorshift64 so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn malformed_and_random_datagrams_never_panic_nor_reach_strangers() {
    let mut h = Harness::new();
    h.open();
    h.update(
        MediaLeg::Caller,
        media(caller_far(), Codec::Pcmu, 0, Some(101)),
    );
    h.update(
        MediaLeg::Callee,
        media(callee_far(), Codec::Pcma, 8, Some(96)),
    );
    // Both far ends speak first, so nobody else can latch.
    let _ = h.deliver(
        CALLER_PORTS.rtp,
        caller_far(),
        &rtp(0, 1, 0, CALLER_SSRC, &[0xff; 160]),
    );
    let _ = h.deliver(
        CALLEE_PORTS.rtp,
        callee_far(),
        &rtp(8, 1, 0, CALLEE_SSRC, &[0xd5; 160]),
    );
    h.source(MediaLeg::Callee, LegSource::Tone(ToneKind::Congestion));
    let valid = rtp(0, 7, 1120, CALLER_SSRC, &[0xff; 160]);
    let ports = [
        CALLER_PORTS.rtp,
        CALLER_PORTS.rtcp(),
        CALLEE_PORTS.rtp,
        CALLEE_PORTS.rtcp(),
        30_000,
    ];
    let sources = [
        caller_far(),
        callee_far(),
        stranger(),
        addr("[2001:db8::1]:4000"),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 1500];
    for round in 0..30_000u64 {
        h.now = ms(round);
        let len = rng.below(300) as usize;
        match round % 3 {
            // Pure noise, often with a plausible first byte.
            0 => {
                for b in &mut buf[..len] {
                    *b = rng.next() as u8;
                }
                if rng.below(2) == 0 && len > 0 {
                    buf[0] = 0x80 | (buf[0] & 0x3f);
                }
            }
            // A valid packet truncated or with flipped bytes.
            1 => {
                let n = len.min(valid.len());
                buf[..n].copy_from_slice(&valid[..n]);
                if n > 0 {
                    let at = rng.below(n as u64) as usize;
                    buf[at] ^= rng.next() as u8;
                }
            }
            // Plausible RTCP headers with random lengths.
            _ => {
                for b in &mut buf[..len] {
                    *b = rng.next() as u8;
                }
                if len >= 2 {
                    buf[0] = 0x80 | (buf[0] & 0x3f);
                    buf[1] = 200 + (buf[1] % 8);
                }
            }
        }
        let port = ports[rng.below(ports.len() as u64) as usize];
        let src = sources[rng.below(sources.len() as u64) as usize];
        // Sometimes claim more bytes than the buffer holds.
        let claimed = if rng.below(50) == 0 { 2000 } else { len };
        if let PacketAction::Send {
            to, len: sent_len, ..
        } = h.relay.on_packet(h.now, port, src, &mut buf, claimed)
        {
            assert!(to == caller_far() || to == callee_far(), "sent to {to}");
            assert!(sent_len <= claimed.min(buf.len()));
        }
        if round % 20 == 0 {
            let mut strays = 0;
            h.relay.tick(h.now, &mut |_, to, _| {
                if to != caller_far()
                    && to != callee_far()
                    && to != addr("192.0.2.10:4001")
                    && to != addr("198.51.100.20:5001")
                {
                    strays += 1;
                }
            });
            assert_eq!(strays, 0);
        }
    }
    assert!(h.relay.counters().drops.get(DropReason::Malformed) > 0);
    assert!(h.relay.counters().drops.get(DropReason::Stranger) > 0);
}

#[test]
fn rtcp_is_terminated_and_our_reports_go_out_every_few_seconds() {
    let mut h = Harness::talking();
    // The callee's far end sends an SR; its NTP middle bits come back as our LSR.
    let mut sr = [0u8; 28];
    let info = SenderInfo {
        ntp_timestamp: 0x1234_5678_9abc_def0,
        rtp_timestamp: 1,
        packet_count: 1,
        octet_count: 160,
    };
    let sr_len = write_sender_report(&mut sr, CALLEE_SSRC, &info, &[]).expect("sr");
    for k in 0..1000u16 {
        h.advance(ms(20 * u64::from(k)));
        let ts = 160 * u32::from(k);
        let _ = h.deliver(
            CALLER_PORTS.rtp,
            caller_far(),
            &rtp(0, k, ts, CALLER_SSRC, &[0xff; 160]),
        );
        let _ = h.deliver(
            CALLEE_PORTS.rtp,
            callee_far(),
            &rtp(0, k, ts, CALLEE_SSRC, &[0xff; 160]),
        );
        if k == 100 {
            let from_far_rtcp = addr("198.51.100.20:5001");
            let a = h.deliver(CALLEE_PORTS.rtcp(), from_far_rtcp, &sr[..sr_len]);
            assert_eq!(a, PacketAction::Drop(DropReason::RtcpTerminated));
            let b = h.deliver(CALLEE_PORTS.rtcp(), stranger(), &sr[..sr_len]);
            assert_eq!(b, PacketAction::Drop(DropReason::Stranger));
        }
    }
    for (far, ports, their_ssrc) in [
        (caller_far(), CALLER_PORTS, CALLER_SSRC),
        (callee_far(), CALLEE_PORTS, CALLEE_SSRC),
    ] {
        let rtcp_to = SocketAddr::new(far.ip(), far.port() + 1);
        let reports = h.sent_to(rtcp_to, ports.rtcp());
        // 20 s at a 2.5-7.5 s interval, checked once a second.
        assert!(
            (2..=8).contains(&reports.len()),
            "{} reports to {far}",
            reports.len()
        );
        let our_ssrc = h.sent_to(far, ports.rtp)[0].rtp().ssrc();
        for report in &reports {
            assert_eq!(validate_compound(&report.bytes), Ok(2), "SR + SDES");
            let first = packets(&report.bytes).next().expect("one").expect("valid");
            let RtcpView::SenderReport(sr) = first.view().expect("view") else {
                panic!("we sent media, so an SR");
            };
            assert_eq!(sr.ssrc, our_ssrc);
            assert!(sr.info.packet_count > 0);
            let blocks: Vec<ReportBlock> = sr.report_blocks().collect();
            assert_eq!(blocks.len(), 1);
            assert_eq!(blocks[0].ssrc, their_ssrc);
            assert_eq!(blocks[0].cumulative_lost, 0);
        }
        if far == callee_far() {
            let last = reports.last().expect("a report");
            let first = packets(&last.bytes).next().expect("one").expect("valid");
            let RtcpView::SenderReport(sr) = first.view().expect("view") else {
                panic!("SR");
            };
            let block = sr.report_blocks().next().expect("block");
            assert_eq!(block.last_sr, 0x5678_9abc);
            assert!(block.delay_since_last_sr > 0);
        }
    }
    assert_eq!(
        h.relay
            .leg_counters(SESSION, MediaLeg::Callee)
            .map(|c| c.rtcp_received),
        Some(1)
    );
}

/// A prompt of `frames` frames of a constant level.
struct Beeps(u32);

impl FrameSource for Beeps {
    fn fill(&mut self, out: &mut [i16]) -> FrameFill {
        out.fill(8000);
        self.0 = self.0.saturating_sub(1);
        if self.0 == 0 {
            FrameFill::Finished
        } else {
            FrameFill::Playing
        }
    }
}

struct TestPrompts;

impl PromptFactory for TestPrompts {
    fn open(
        &self,
        _tenant: Option<i64>,
        names: &[String],
        _looped: bool,
    ) -> Option<Box<dyn FrameSource>> {
        (names == ["hello"]).then(|| Box::new(Beeps(3)) as Box<dyn FrameSource>)
    }
}

#[test]
fn a_finite_prompt_reports_playback_done_once_then_plays_silence() {
    let mut h = Harness::with_config(
        RelayConfig {
            seed: 1,
            ..RelayConfig::default()
        },
        Box::new(TestPrompts),
    );
    h.open();
    h.update(MediaLeg::Caller, pcmu(caller_far()));
    h.source(
        MediaLeg::Caller,
        LegSource::Prompts {
            tenant: Some(3),
            names: vec!["hello".to_string()],
            looped: false,
        },
    );
    h.advance(ms(200));
    let done = |events: &[MediaEvent]| {
        events
            .iter()
            .filter(|e| {
                **e == MediaEvent::PlaybackDone {
                    session: SESSION,
                    leg: MediaLeg::Caller,
                }
            })
            .count()
    };
    assert_eq!(done(&h.events()), 1);
    let stream = h.sent_to(caller_far(), CALLER_PORTS.rtp);
    assert_eq!(stream.len(), 10, "one frame per tick");
    let loud = g711::linear_to_ulaw(8000);
    for (i, frame) in stream.iter().enumerate() {
        let expected = if i < 3 { loud } else { 0xff };
        assert!(
            frame.rtp().payload().iter().all(|&c| c == expected),
            "frame {i}"
        );
        if i > 0 {
            assert_eq!(
                frame.rtp().sequence_number(),
                stream[i - 1].rtp().sequence_number().wrapping_add(1)
            );
        }
    }
    // An unknown prompt: done at once (silence plays); looped ones stay silent without it.
    h.source(
        MediaLeg::Caller,
        LegSource::Prompts {
            tenant: None,
            names: vec!["missing".to_string()],
            looped: false,
        },
    );
    assert_eq!(done(&h.events()), 1);
    h.source(
        MediaLeg::Caller,
        LegSource::Prompts {
            tenant: None,
            names: vec!["missing".to_string()],
            looped: true,
        },
    );
    h.advance(ms(400));
    assert_eq!(done(&h.events()), 0);
}

#[test]
fn conflicting_ports_fail_and_every_close_gets_closed() {
    let mut h = Harness::talking();
    let other = MediaSessionId(8);
    let now = h.now;
    h.relay.open(
        now,
        other,
        PortPair { rtp: 20_003 },
        PortPair { rtp: 20_010 },
    );
    h.relay.open(
        now,
        MediaSessionId(9),
        PortPair { rtp: 20_020 },
        PortPair { rtp: 20_021 },
    );
    // Opening the same session again changes nothing.
    h.relay.open(now, SESSION, CALLER_PORTS, CALLEE_PORTS);
    assert_eq!(
        h.events(),
        vec![
            MediaEvent::OpenFailed { session: other },
            MediaEvent::OpenFailed {
                session: MediaSessionId(9)
            },
        ]
    );
    assert_eq!(h.relay.session_count(), 1);
    h.command(MediaCommand::Close { session: other });
    assert_eq!(
        h.events(),
        vec![MediaEvent::Closed {
            session: other,
            caller: LegStats::default(),
            callee: LegStats::default(),
        }]
    );
    // The ports of a closed session can be opened again.
    h.command(MediaCommand::Close { session: SESSION });
    assert!(matches!(h.events().as_slice(), [MediaEvent::Closed { .. }]));
    h.open();
    assert_eq!(h.relay.session_count(), 1);
}

#[test]
fn a_new_branch_on_the_other_leg_keeps_the_stream_continuous() {
    let mut h = Harness::talking();
    for k in 0..5u16 {
        h.now = ms(20 * u64::from(k));
        let packet = rtp(
            0,
            100 + k,
            1000 + 160 * u32::from(k),
            CALLEE_SSRC,
            &[0xff; 160],
        );
        let _ = h.deliver(CALLEE_PORTS.rtp, callee_far(), &packet);
    }
    // Another branch answers: new address, new SSRC, numbering anywhere.
    let branch = addr("198.51.100.30:7000");
    h.now = ms(90);
    h.update(MediaLeg::Callee, pcmu(branch));
    for k in 0..5u16 {
        h.now = ms(100 + 20 * u64::from(k));
        let packet = rtp(
            0,
            40_000 + k,
            7_777_777 + 160 * u32::from(k),
            0x3333_3333,
            &[0xff; 160],
        );
        let action = h.deliver(CALLEE_PORTS.rtp, branch, &packet);
        assert!(matches!(action, PacketAction::Send { .. }));
    }
    // The old branch is now a stranger.
    h.now = ms(5000);
    let late = rtp(0, 105, 1800, CALLEE_SSRC, &[0xff; 160]);
    assert_eq!(
        h.deliver(CALLEE_PORTS.rtp, callee_far(), &late),
        PacketAction::Drop(DropReason::Stranger)
    );
    let stream = h.sent_to(caller_far(), CALLER_PORTS.rtp);
    assert_eq!(stream.len(), 10);
    for pair in stream.windows(2) {
        let (a, b) = (pair[0].rtp(), pair[1].rtp());
        assert_eq!(b.ssrc(), a.ssrc());
        assert_eq!(b.sequence_number(), a.sequence_number().wrapping_add(1));
        assert_eq!(b.timestamp(), a.timestamp().wrapping_add(160));
    }
    assert!(stream[5].rtp().marker());
}

/// Music on hold: an endless source whose frames count up (frame n: level 100 n).
struct Music(i16);

impl FrameSource for Music {
    fn fill(&mut self, out: &mut [i16]) -> FrameFill {
        self.0 = self.0.wrapping_add(1);
        out.fill(self.0.wrapping_mul(100));
        FrameFill::Playing
    }
}

struct MusicPrompts;

impl PromptFactory for MusicPrompts {
    fn open(
        &self,
        _tenant: Option<i64>,
        _names: &[String],
        _looped: bool,
    ) -> Option<Box<dyn FrameSource>> {
        Some(Box::new(Music(0)))
    }
}

/// The caller's far end hears music on hold from 0 ms (first frame due at 20 ms).
fn on_hold_music() -> Harness {
    let mut h = Harness::with_config(
        RelayConfig {
            seed: 3,
            ..RelayConfig::default()
        },
        Box::new(MusicPrompts),
    );
    h.open();
    h.update(MediaLeg::Caller, pcmu(caller_far()));
    h.source(
        MediaLeg::Caller,
        LegSource::Prompts {
            tenant: None,
            names: vec!["moh/default".to_string()],
            looped: true,
        },
    );
    h
}

/// The RTP time (in ms, at 8 kHz) between two packets.
fn rtp_ms(from: &Sent, to: &Sent) -> u64 {
    u64::from(to.rtp().timestamp().wrapping_sub(from.rtp().timestamp()) / 8)
}

#[test]
fn music_keeps_the_media_clock_across_a_50_ms_stall() {
    let mut h = on_hold_music();
    h.advance(ms(200));
    // The media thread stops for 50 ms: the ticks due at 220 and 240 run at 250.
    h.tick_late(ms(250));
    h.advance(ms(400));
    let stream = h.sent_to(caller_far(), CALLER_PORTS.rtp);
    // One frame for every 20 ms of the grid, none lost: 20, 40, ..., 400.
    assert_eq!(stream.len(), 20);
    for (i, frame) in stream.iter().enumerate() {
        let due = ms(20 * (i as u64 + 1));
        let p = frame.rtp();
        // Sent when due, or at the end of the stall for the two it held up.
        let expected_at = if due == ms(220) || due == ms(240) {
            ms(250)
        } else {
            due
        };
        assert_eq!(frame.at, expected_at, "frame {i}");
        // Its timestamp is the media clock's at its due time: 8 per ms since the first.
        assert_eq!(rtp_ms(&stream[0], frame), 20 * i as u64, "frame {i}");
        assert_eq!(
            p.sequence_number(),
            stream[0].rtp().sequence_number().wrapping_add(i as u16)
        );
        assert_eq!(p.marker(), i == 0, "frame {i}: one talkspurt");
        // The music's frames in order, none skipped.
        let level = g711::linear_to_ulaw(100 * (i as i16 + 1));
        assert!(p.payload().iter().all(|&c| c == level), "frame {i}");
    }
    // Across the stall: the frame sent at 200 and the next one sent on time (at 260) are
    // 60 ms apart on the media clock.
    let before = stream
        .iter()
        .find(|f| f.at == ms(200))
        .expect("frame at 200");
    let after = stream
        .iter()
        .find(|f| f.at == ms(260))
        .expect("frame at 260");
    assert_eq!(rtp_ms(before, after), 60);
    let counters = h.relay.counters();
    assert_eq!((counters.catch_up_ticks, counters.skipped_ticks), (1, 0));
}

#[test]
fn a_stall_longer_than_the_catch_up_skips_frames_and_jumps_the_timestamp() {
    let mut h = on_hold_music();
    h.advance(ms(200));
    // Stopped for 210 ms: ten ticks due (220..=400); the last five go out at 410.
    h.tick_late(ms(410));
    h.advance(ms(500));
    let stream = h.sent_to(caller_far(), CALLER_PORTS.rtp);
    let at: Vec<u64> = stream.iter().map(|f| f.at.as_millis() as u64).collect();
    let mut expected: Vec<u64> = (1..=10).map(|n| 20 * n).collect();
    expected.extend([410; 5]);
    expected.extend([420, 440, 460, 480, 500]);
    assert_eq!(at, expected, "the grid stays where it was");
    let last_before = &stream[9];
    for (k, frame) in stream[10..].iter().enumerate() {
        let p = frame.rtp();
        // Due at 320 + 20 k: its RTP time is that far from the frame due at 200.
        assert_eq!(rtp_ms(last_before, frame), 120 + 20 * k as u64, "frame {k}");
        assert_eq!(
            p.sequence_number(),
            last_before
                .rtp()
                .sequence_number()
                .wrapping_add(k as u16 + 1),
            "the sequence never skips"
        );
        assert_eq!(p.marker(), k == 0, "frame {k}: marker after the jump only");
    }
    let counters = h.relay.counters();
    assert_eq!((counters.catch_up_ticks, counters.skipped_ticks), (4, 5));
}
