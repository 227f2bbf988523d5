//! Conference legs in the relay, with simulated time: far ends ("phones") of several
//! sessions send tones of their own frequencies; what each one hears is decoded and checked
//! by spectrum (Goertzel), and its RTP stream by header.

use super::*;
use crate::media::codec::{decode_to_linear, encode_from_linear};
use crate::media::control::{BeepKind, ConferenceId, ConferenceSound};
use crate::media::dtmf::DtmfDigit;
use crate::media::rtp::event::EventGenerator;
use crate::media::rtp::RtpHeaderFields;
use crate::media::sdp::Direction;
use crate::media::test_util::tone_amplitude;
use std::f64::consts::TAU;

const ROOM: ConferenceId = ConferenceId(1);
const OTHER_ROOM: ConferenceId = ConferenceId(2);
const RATE: f64 = 8000.0;
/// Peak of every phone's tone.
const AMPLITUDE: f64 = 4000.0;
/// The test music on hold.
const MUSIC_HZ: f64 = 300.0;
/// The test prompt `hello` (five frames).
const HELLO_HZ: f64 = 2500.0;
/// Phone tones, away from each other, the music and the DTMF frequencies.
const A_HZ: f64 = 450.0;
const B_HZ: f64 = 1050.0;
const C_HZ: f64 = 1750.0;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An endless (or `frames` long) sine at `hz`, as a frame source.
struct Sine {
    hz: f64,
    n: u64,
    frames: Option<u32>,
}

impl FrameSource for Sine {
    fn fill(&mut self, out: &mut [i16]) -> FrameFill {
        for sample in out.iter_mut() {
            *sample = (AMPLITUDE * (TAU * self.hz * self.n as f64 / RATE).sin()) as i16;
            self.n += 1;
        }
        match &mut self.frames {
            None => FrameFill::Playing,
            Some(left) => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    FrameFill::Finished
                } else {
                    FrameFill::Playing
                }
            }
        }
    }
}

/// `moh/default` is a 300 Hz sine, `hello` five frames of 2500 Hz.
struct TestPrompts;

impl PromptFactory for TestPrompts {
    fn open(
        &self,
        _tenant: Option<i64>,
        names: &[String],
        looped: bool,
    ) -> Option<Box<dyn FrameSource>> {
        let (hz, frames) = match names.first().map(String::as_str) {
            Some("moh/default") if looped => (MUSIC_HZ, None),
            Some("hello") => (HELLO_HZ, Some(5)),
            _ => return None,
        };
        Some(Box::new(Sine { hz, n: 0, frames }))
    }
}

/// A far end of one leg.
#[derive(Debug)]
struct Phone {
    session: MediaSessionId,
    leg: MediaLeg,
    /// Our RTP port for its leg.
    port: u16,
    far: SocketAddr,
    codec: Codec,
    payload_type: u8,
    /// Its tone (0: silence).
    hz: f64,
    sending: bool,
    ssrc: u32,
    seq: u16,
    ts: u32,
    samples: u64,
}

impl Phone {
    fn next_packet(&mut self) -> Vec<u8> {
        let mut pcm = [0i16; FRAME_SAMPLES];
        for (i, sample) in pcm.iter_mut().enumerate() {
            let n = (self.samples + i as u64) as f64;
            *sample = (AMPLITUDE * (TAU * self.hz * n / RATE).sin()).round() as i16;
        }
        self.samples += FRAME_SAMPLES as u64;
        let mut payload = [0u8; FRAME_SAMPLES];
        if encode_from_linear(self.codec, &pcm, &mut payload).is_err() {
            // A codec we do not encode: opaque bytes.
            payload.fill(0x55);
        }
        let packet = rtp(
            self.payload_type,
            self.seq,
            self.ts,
            self.ssrc,
            &payload[..],
        );
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME_SAMPLES as u32);
        packet
    }
}

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

#[derive(Debug, Clone)]
struct Sent {
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

struct Conf {
    relay: Relay,
    now: Duration,
    phones: Vec<Phone>,
    sent: Vec<Sent>,
    events: Vec<(Duration, MediaEvent)>,
    sessions: usize,
}

impl Conf {
    fn new() -> Self {
        Self {
            relay: Relay::new(
                RelayConfig {
                    seed: 5,
                    ..RelayConfig::default()
                },
                Box::new(TestPrompts),
            ),
            now: Duration::ZERO,
            phones: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
            sessions: 0,
        }
    }

    /// Opens a session whose legs talk PCMU; returns the caller's and callee's phones.
    fn add_session(&mut self, caller_hz: f64, callee_hz: f64) -> (usize, usize) {
        let n = self.sessions;
        self.sessions += 1;
        let session = MediaSessionId(100 + n as u64);
        let base = 30_000 + 4 * n as u16;
        let (caller, callee) = (PortPair { rtp: base }, PortPair { rtp: base + 2 });
        self.relay.open(self.now, session, caller, callee);
        let far_caller: SocketAddr = format!("192.0.2.{}:4000", 10 + n).parse().expect("ip");
        let far_callee: SocketAddr = format!("198.51.100.{}:5000", 10 + n).parse().expect("ip");
        let mut indexes = [0; 2];
        for (k, (leg, port, far, hz)) in [
            (MediaLeg::Caller, caller, far_caller, caller_hz),
            (MediaLeg::Callee, callee, far_callee, callee_hz),
        ]
        .into_iter()
        .enumerate()
        {
            indexes[k] = self.phones.len();
            self.phones.push(Phone {
                session,
                leg,
                port: port.rtp,
                far,
                codec: Codec::Pcmu,
                payload_type: 0,
                hz,
                sending: true,
                ssrc: 0x1000 + self.phones.len() as u32,
                seq: 1000 * self.phones.len() as u16,
                ts: 77_000 * self.phones.len() as u32,
                samples: 0,
            });
            self.update(indexes[k], None);
        }
        self.collect_events();
        self.events
            .retain(|(_, e)| !matches!(e, MediaEvent::Opened { .. }));
        (indexes[0], indexes[1])
    }

    /// Sends the leg's SDP to the relay (PCMU unless the phone says otherwise).
    fn update(&mut self, phone: usize, telephone_event: Option<u8>) {
        let p = &self.phones[phone];
        let media = LegMedia {
            remote_rtp: Some(p.far),
            remote_rtcp: None,
            codec: p.codec,
            payload_type: p.payload_type,
            telephone_event,
            direction: Direction::SendRecv,
            ptime_ms: 20,
        };
        let (session, leg) = (p.session, p.leg);
        self.command(MediaCommand::Update {
            session,
            leg,
            media,
        });
    }

    fn command(&mut self, command: MediaCommand) {
        self.relay.command(self.now, command);
    }

    fn join(&mut self, phone: usize, room: ConferenceId) {
        let p = &self.phones[phone];
        let (session, leg) = (p.session, p.leg);
        self.command(MediaCommand::JoinConference {
            session,
            leg,
            room,
            muted: false,
            tenant: Some(3),
        });
    }

    fn leave(&mut self, phone: usize) {
        let p = &self.phones[phone];
        let (session, leg) = (p.session, p.leg);
        self.command(MediaCommand::LeaveConference { session, leg });
    }

    fn mute(&mut self, phone: usize, muted: bool) {
        let p = &self.phones[phone];
        let (session, leg) = (p.session, p.leg);
        self.command(MediaCommand::MuteParticipant {
            session,
            leg,
            muted,
        });
    }

    fn source(&mut self, phone: usize, source: LegSource) {
        let p = &self.phones[phone];
        let (session, leg) = (p.session, p.leg);
        self.command(MediaCommand::Source {
            session,
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
            self.collect_events();
        }
        self.now = until;
    }

    /// The media thread stalled: the first tick due after the last one runs only at `now`.
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
        self.collect_events();
    }

    fn deliver(&mut self, phone: usize, bytes: &[u8]) -> PacketAction {
        let p = &self.phones[phone];
        let (port, far) = (p.port, p.far);
        let mut buf = [0u8; 1500];
        buf[..bytes.len()].copy_from_slice(bytes);
        let action = self
            .relay
            .on_packet(self.now, port, far, &mut buf, bytes.len());
        if let PacketAction::Send { from_port, to, len } = action {
            self.sent.push(Sent {
                at: self.now,
                from_port,
                to,
                bytes: buf[..len].to_vec(),
            });
        }
        self.collect_events();
        action
    }

    /// One 20 ms period: the tick on the 20 ms grid, then 5 ms later every sending phone
    /// sends a packet. Returns what the relay did with each phone's packet.
    fn step(&mut self) -> Vec<Option<PacketAction>> {
        let next = (self.now.as_millis() as u64 / 20 + 1) * 20;
        self.advance(ms(next));
        self.now = ms(next + 5);
        (0..self.phones.len())
            .map(|i| {
                if !self.phones[i].sending {
                    return None;
                }
                let packet = self.phones[i].next_packet();
                Some(self.deliver(i, &packet))
            })
            .collect()
    }

    fn run(&mut self, millis: u64) {
        for _ in 0..millis / 20 {
            let _ = self.step();
        }
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.relay.poll_event() {
            self.events.push((self.now, event));
        }
    }

    fn take_events(&mut self) -> Vec<MediaEvent> {
        self.collect_events();
        self.events.drain(..).map(|(_, e)| e).collect()
    }

    /// Every RTP packet the relay sent to `phone`'s far end, in order.
    fn stream(&self, phone: usize) -> Vec<&Sent> {
        let p = &self.phones[phone];
        self.sent
            .iter()
            .filter(|s| s.to == p.far && s.from_port == p.port)
            .collect()
    }

    /// What `phone` heard from packets sent in `[from, until)`, decoded.
    fn heard(&self, phone: usize, from: Duration, until: Duration) -> Vec<i16> {
        let codec = self.phones[phone].codec;
        let mut pcm = Vec::new();
        for sent in self.stream(phone) {
            if sent.at < from || sent.at >= until {
                continue;
            }
            let packet = sent.rtp();
            let mut frame = vec![0i16; packet.payload().len()];
            decode_to_linear(codec, packet.payload(), &mut frame).expect("G.711");
            pcm.extend_from_slice(&frame);
        }
        pcm
    }

    /// Amplitude of `hz` in what `phone` heard over the last `millis` ms.
    fn level(&self, phone: usize, hz: f64, millis: u64) -> f64 {
        let heard = self.heard(phone, self.now.saturating_sub(ms(millis)), self.now);
        assert!(
            heard.len() as u64 >= millis * 8 * 9 / 10,
            "phone {phone} heard {} samples in {millis} ms",
            heard.len()
        );
        tone_amplitude(&heard, hz, RATE)
    }
}

/// Asserts what `phone` heard over the last `millis` ms: each of `present` loud, each of
/// `absent` not at all.
fn assert_hears(conf: &Conf, phone: usize, present: &[f64], absent: &[f64], millis: u64) {
    for &hz in present {
        let level = conf.level(phone, hz, millis);
        assert!(
            level > 0.8 * AMPLITUDE,
            "phone {phone} should hear {hz} Hz: {level:.0}"
        );
    }
    for &hz in absent {
        let level = conf.level(phone, hz, millis);
        assert!(
            level < 0.01 * AMPLITUDE,
            "phone {phone} should not hear {hz} Hz: {level:.0}"
        );
    }
}

/// One SSRC, sequence numbers +1 and timestamps +160 packet after packet.
fn assert_continuous(stream: &[&Sent]) {
    assert!(stream.len() > 1);
    let ssrc = stream[0].rtp().ssrc();
    for (i, pair) in stream.windows(2).enumerate() {
        let (a, b) = (pair[0].rtp(), pair[1].rtp());
        assert_eq!(b.ssrc(), ssrc, "packet {i}: one SSRC");
        assert_eq!(
            b.sequence_number(),
            a.sequence_number().wrapping_add(1),
            "packet {i} at {:?}",
            pair[1].at
        );
        assert_eq!(
            b.timestamp(),
            a.timestamp().wrapping_add(160),
            "packet {i} at {:?}",
            pair[1].at
        );
    }
}

#[test]
fn three_callers_hear_the_other_two_in_one_continuous_stream_across_join_and_leave() {
    let mut conf = Conf::new();
    let tones = [A_HZ, B_HZ, C_HZ];
    let phones: Vec<(usize, usize)> = tones.iter().map(|&hz| conf.add_session(hz, 0.0)).collect();
    // A plain call first: each caller hears its callee (silence), relayed.
    conf.run(200);
    for &(caller, callee) in &phones {
        assert!(!conf.stream(caller).is_empty());
        assert_hears(
            &conf,
            callee,
            &[tones[phones.iter().position(|p| p.1 == callee).unwrap()]],
            &[],
            100,
        );
    }
    for &(caller, _) in &phones {
        conf.join(caller, ROOM);
    }
    assert_eq!(conf.relay.conference_count(), 1);
    assert_eq!(conf.relay.participant_count(), 3);
    let joined_at = conf.now;
    let actions = conf.step();
    for &(caller, callee) in &phones {
        assert_eq!(actions[caller], Some(PacketAction::Mixed));
        assert_eq!(
            actions[callee],
            Some(PacketAction::Drop(DropReason::PeerInConference))
        );
    }
    conf.run(1000);
    for (k, &(caller, callee)) in phones.iter().enumerate() {
        let others: Vec<f64> = (0..3).filter(|&j| j != k).map(|j| tones[j]).collect();
        assert_hears(&conf, caller, &others, &[tones[k]], 600);
        // The callee heard nothing since: its caller's audio went into the room.
        assert!(
            conf.stream(callee).iter().all(|s| s.at <= joined_at),
            "callee {callee} got packets after the join"
        );
    }
    // Leave: silence, then the engine puts the plain calls back.
    for &(caller, _) in &phones {
        conf.leave(caller);
    }
    assert_eq!(conf.relay.conference_count(), 0);
    assert_eq!(conf.relay.participant_count(), 0);
    conf.run(200);
    for &(caller, _) in &phones {
        assert_hears(&conf, caller, &[], &tones, 160);
    }
    for &(caller, _) in &phones {
        conf.source(caller, LegSource::Relay);
    }
    let actions = conf.step();
    for &(caller, callee) in &phones {
        assert!(
            matches!(actions[caller], Some(PacketAction::Send { to, .. }) if to == conf.phones[callee].far)
        );
        assert!(
            matches!(actions[callee], Some(PacketAction::Send { to, .. }) if to == conf.phones[caller].far)
        );
    }
    conf.run(200);
    for &(caller, callee) in &phones {
        let k = phones.iter().position(|p| p.0 == caller).expect("phone");
        assert_hears(&conf, callee, &[tones[k]], &[], 160);
        // Relayed, generated (the mix, then silence), relayed again: one stream.
        assert_continuous(&conf.stream(caller));
    }
}

#[test]
fn a_muted_participant_is_gone_within_one_tick_and_back_when_unmuted() {
    let mut conf = Conf::new();
    let (a, _) = conf.add_session(A_HZ, 0.0);
    let (b, _) = conf.add_session(B_HZ, 0.0);
    let (c, _) = conf.add_session(C_HZ, 0.0);
    for phone in [a, b, c] {
        conf.join(phone, ROOM);
    }
    conf.run(600);
    assert_hears(&conf, b, &[A_HZ, C_HZ], &[B_HZ], 400);
    conf.mute(a, true);
    let muted_at = conf.now;
    conf.run(400);
    for listener in [b, c] {
        let stream = conf.stream(listener);
        let first = stream
            .iter()
            .position(|s| s.at > muted_at)
            .expect("frames after the mute");
        // The first frame after the mute fades A out over 5 ms (40 samples).
        let mut pcm = [0i16; FRAME_SAMPLES];
        decode_to_linear(Codec::Pcmu, stream[first].rtp().payload(), &mut pcm).expect("G.711");
        let fading = tone_amplitude(&pcm[40..], A_HZ, RATE);
        assert!(
            fading < 0.1 * AMPLITUDE,
            "A still heard after the fade: {fading:.0}"
        );
        let later = conf.heard(listener, stream[first + 1].at, conf.now);
        let level = tone_amplitude(&later, A_HZ, RATE);
        assert!(level < 0.01 * AMPLITUDE, "A heard while muted: {level:.0}");
    }
    // A still hears the others, and the others still hear each other.
    assert_hears(&conf, a, &[B_HZ, C_HZ], &[A_HZ], 300);
    assert_hears(&conf, b, &[C_HZ], &[A_HZ, B_HZ], 300);
    conf.mute(a, false);
    conf.run(300);
    assert_hears(&conf, b, &[A_HZ, C_HZ], &[B_HZ], 200);
}

#[test]
fn ad_hoc_room_of_both_legs_of_a_call_and_a_third_party_then_back_to_a_plain_call() {
    let mut conf = Conf::new();
    // A call between A and B; C on a call of its own.
    let (a, b) = conf.add_session(A_HZ, B_HZ);
    let (c, _) = conf.add_session(C_HZ, 0.0);
    conf.run(200);
    assert_hears(&conf, a, &[B_HZ], &[A_HZ], 100);
    for phone in [a, b, c] {
        conf.join(phone, ROOM);
    }
    conf.run(800);
    assert_hears(&conf, a, &[B_HZ, C_HZ], &[A_HZ], 500);
    assert_hears(&conf, b, &[A_HZ, C_HZ], &[B_HZ], 500);
    assert_hears(&conf, c, &[A_HZ, B_HZ], &[C_HZ], 500);
    // C leaves: the room of two still works (A and B hear each other).
    conf.leave(c);
    conf.run(300);
    assert_hears(&conf, a, &[B_HZ], &[A_HZ, C_HZ], 200);
    assert_hears(&conf, b, &[A_HZ], &[B_HZ, C_HZ], 200);
    // The last two go back to a plain call: A leaves then relays; for B, `Source` alone
    // takes it out of the room.
    conf.leave(a);
    conf.source(a, LegSource::Relay);
    assert_eq!(conf.relay.participant_count(), 1);
    conf.source(b, LegSource::Relay);
    assert_eq!(conf.relay.conference_count(), 0);
    assert_eq!(conf.relay.participant_count(), 0);
    let actions = conf.step();
    assert!(matches!(actions[a], Some(PacketAction::Send { to, .. }) if to == conf.phones[b].far));
    assert!(matches!(actions[b], Some(PacketAction::Send { to, .. }) if to == conf.phones[a].far));
    conf.run(300);
    assert_hears(&conf, a, &[B_HZ], &[A_HZ, C_HZ], 200);
    assert_hears(&conf, b, &[A_HZ], &[B_HZ, C_HZ], 200);
    assert_continuous(&conf.stream(a));
    assert_continuous(&conf.stream(b));
    assert_continuous(&conf.stream(c));
}

#[test]
fn a_room_of_one_hears_music_until_someone_joins_and_again_after_they_leave() {
    let mut conf = Conf::new();
    let (a, _) = conf.add_session(A_HZ, 0.0);
    let (b, _) = conf.add_session(B_HZ, 0.0);
    conf.join(a, ROOM);
    assert_eq!(conf.relay.conferences.music_players(), 1);
    conf.run(400);
    assert_hears(&conf, a, &[MUSIC_HZ], &[A_HZ, B_HZ], 300);
    conf.join(b, ROOM);
    assert_eq!(conf.relay.conferences.music_players(), 0, "dropped");
    conf.run(400);
    assert_hears(&conf, a, &[B_HZ], &[MUSIC_HZ, A_HZ], 300);
    assert_hears(&conf, b, &[A_HZ], &[MUSIC_HZ, B_HZ], 300);
    conf.leave(a);
    assert_eq!(conf.relay.conferences.music_players(), 1);
    conf.run(400);
    assert_hears(&conf, b, &[MUSIC_HZ], &[A_HZ, B_HZ], 300);
    // A room sound plays on top of the music.
    conf.command(MediaCommand::ConferencePrompt {
        room: ROOM,
        sound: ConferenceSound::Prompts {
            tenant: None,
            names: vec!["hello".to_owned()],
        },
    });
    conf.run(100);
    assert_hears(&conf, b, &[MUSIC_HZ], &[], 100);
    assert!(conf.level(b, HELLO_HZ, 100) > 0.5 * AMPLITUDE);
}

#[test]
fn talking_changes_are_reported_at_most_four_times_a_second() {
    let mut conf = Conf::new();
    let (a, _) = conf.add_session(0.0, 0.0);
    let (b, _) = conf.add_session(0.0, 0.0);
    conf.join(a, ROOM);
    conf.join(b, ROOM);
    conf.run(500);
    let talking = |conf: &mut Conf| -> Vec<(Duration, bool)> {
        conf.collect_events();
        conf.events
            .drain(..)
            .filter_map(|(at, e)| match e {
                MediaEvent::Talking {
                    session: MediaSessionId(100),
                    leg: MediaLeg::Caller,
                    talking,
                } => Some((at, talking)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(talking(&mut conf), vec![], "silence is not talking");
    conf.phones[a].hz = A_HZ;
    let started = conf.now;
    conf.run(500);
    let events = talking(&mut conf);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].1);
    assert!(events[0].0 - started <= ms(100), "{events:?}");
    assert_eq!(
        conf.relay
            .participant_status(MediaSessionId(100), MediaLeg::Caller)
            .map(|s| s.talking),
        Some(true)
    );
    conf.phones[a].hz = 0.0;
    let stopped = conf.now;
    conf.run(600);
    let events = talking(&mut conf);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(!events[0].1);
    assert!(events[0].0 - stopped >= ms(200), "hangover: {events:?}");
    // A voice that comes and goes faster than the limit: 20 ms on, 280 ms off.
    for _ in 0..10 {
        conf.phones[a].hz = A_HZ;
        conf.run(20);
        conf.phones[a].hz = 0.0;
        conf.run(280);
    }
    conf.run(1000);
    let events = talking(&mut conf);
    assert!(events.len() >= 4, "{events:?}");
    for pair in events.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= TALKING_MIN_INTERVAL, "{events:?}");
        assert_ne!(pair[0].1, pair[1].1, "changes only: {events:?}");
    }
    assert_eq!(events.last().map(|e| e.1), Some(false), "ends not talking");
}

#[test]
fn dtmf_from_a_conference_leg_is_still_reported() {
    let mut conf = Conf::new();
    let (a, _) = conf.add_session(A_HZ, 0.0);
    let (b, _) = conf.add_session(B_HZ, 0.0);
    conf.update(b, Some(101));
    conf.join(a, ROOM);
    conf.join(b, ROOM);
    conf.run(200);
    conf.take_events();
    // B presses 5 (RFC 4733).
    let digit = DtmfDigit::from_char('5').expect("digit");
    conf.phones[b].sending = false;
    for (k, event) in EventGenerator::dtmf(digit, ms(120), 8000).enumerate() {
        conf.run(20);
        let mut packet = rtp(101, 5000 + k as u16, 999, 0xbbbb, &event.payload);
        packet[1] |= if event.start { 0x80 } else { 0 };
        assert_eq!(
            conf.deliver(b, &packet),
            PacketAction::Drop(DropReason::EventInConference)
        );
    }
    // A presses 7 in-band (852 + 1209 Hz) instead of its tone.
    conf.phones[a].sending = false;
    for k in 0..12u32 {
        conf.run(20);
        let pcm: Vec<i16> = (0..160u32)
            .map(|i| {
                if k >= 6 {
                    return 0;
                }
                let t = f64::from(k * 160 + i) / RATE;
                (7000.0 * (TAU * 852.0 * t).sin() + 7000.0 * (TAU * 1209.0 * t).sin()) as i16
            })
            .collect();
        let mut payload = [0u8; 160];
        encode_from_linear(Codec::Pcmu, &pcm, &mut payload).expect("G.711");
        let packet = rtp(0, 9000 + k as u16, 160 * k, 0xaaaa, &payload);
        assert_eq!(conf.deliver(a, &packet), PacketAction::Mixed);
    }
    let digits: Vec<(MediaSessionId, char, DigitSource)> = conf
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            MediaEvent::Digit {
                session,
                digit,
                source,
                ..
            } => Some((session, digit.as_char(), source)),
            _ => None,
        })
        .collect();
    assert_eq!(
        digits,
        vec![
            (MediaSessionId(101), '5', DigitSource::Rfc4733),
            (MediaSessionId(100), '7', DigitSource::Inband),
        ]
    );
}

#[test]
fn close_conference_and_closing_sessions_free_everything() {
    let mut conf = Conf::new();
    let phones: Vec<usize> = [A_HZ, B_HZ, C_HZ]
        .iter()
        .map(|&hz| conf.add_session(hz, 0.0).0)
        .collect();
    for &phone in &phones {
        conf.join(phone, ROOM);
    }
    conf.run(300);
    conf.command(MediaCommand::CloseConference { room: ROOM });
    assert_eq!(conf.relay.conference_count(), 0);
    assert_eq!(conf.relay.participant_count(), 0);
    conf.run(300);
    for &phone in &phones {
        // Silence, still in the same stream.
        assert_hears(&conf, phone, &[], &[A_HZ, B_HZ, C_HZ], 200);
        assert_continuous(&conf.stream(phone));
    }
    // A room whose participants' sessions close goes with the last one.
    for &phone in &phones {
        conf.join(phone, OTHER_ROOM);
    }
    assert_eq!(conf.relay.participant_count(), 3);
    for n in 0..3 {
        conf.command(MediaCommand::Close {
            session: MediaSessionId(100 + n),
        });
        assert_eq!(conf.relay.participant_count(), 2 - n as usize);
    }
    assert_eq!(conf.relay.conference_count(), 0);
    assert_eq!(conf.relay.session_count(), 0);
    assert_eq!(conf.relay.next_tick(), None);
    let closed = conf
        .take_events()
        .iter()
        .filter(|e| matches!(e, MediaEvent::Closed { .. }))
        .count();
    assert_eq!(closed, 3);
    // Commands for a closed room or session change nothing and do not panic.
    conf.command(MediaCommand::CloseConference { room: ROOM });
    conf.command(MediaCommand::MuteParticipant {
        session: MediaSessionId(100),
        leg: MediaLeg::Caller,
        muted: true,
    });
    conf.command(MediaCommand::LeaveConference {
        session: MediaSessionId(100),
        leg: MediaLeg::Caller,
    });
    assert_eq!(conf.relay.conference_count(), 0);
}

#[test]
fn legs_without_g711_are_refused_and_keep_relaying() {
    let mut conf = Conf::new();
    let (a, b) = conf.add_session(A_HZ, B_HZ);
    conf.phones[a].codec = Codec::G722;
    conf.phones[a].payload_type = 9;
    conf.update(a, None);
    conf.join(a, ROOM);
    let refused = MediaEvent::ConferenceRefused {
        session: MediaSessionId(100),
        leg: MediaLeg::Caller,
        room: ROOM,
    };
    assert_eq!(conf.take_events(), vec![refused.clone()]);
    assert_eq!(conf.relay.conference_count(), 0);
    // An unknown session is refused too.
    conf.command(MediaCommand::JoinConference {
        session: MediaSessionId(999),
        leg: MediaLeg::Callee,
        room: ROOM,
        muted: false,
        tenant: None,
    });
    assert!(matches!(
        conf.take_events().as_slice(),
        [MediaEvent::ConferenceRefused {
            session: MediaSessionId(999),
            ..
        }]
    ));
    // Both legs are still on the relay path (where G.722 and PCMU do not meet).
    let actions = conf.step();
    for phone in [a, b] {
        assert_eq!(
            actions[phone],
            Some(PacketAction::Drop(DropReason::CodecMismatch))
        );
    }
    // A G.711 participant that renegotiates G.722 leaves its room and hears silence.
    conf.join(b, ROOM);
    assert_eq!(conf.relay.participant_count(), 1);
    conf.phones[b].codec = Codec::G722;
    conf.phones[b].payload_type = 9;
    conf.update(b, None);
    assert_eq!(
        conf.take_events(),
        vec![MediaEvent::ConferenceRefused {
            session: MediaSessionId(100),
            leg: MediaLeg::Callee,
            room: ROOM,
        }]
    );
    assert_eq!(conf.relay.conference_count(), 0);
}

#[test]
fn a_participant_moves_rooms_and_follows_a_codec_change() {
    let mut conf = Conf::new();
    let (a, _) = conf.add_session(A_HZ, 0.0);
    let (b, _) = conf.add_session(B_HZ, 0.0);
    let (c, _) = conf.add_session(C_HZ, 0.0);
    conf.join(a, ROOM);
    conf.join(b, ROOM);
    conf.join(c, OTHER_ROOM);
    assert_eq!(conf.relay.conference_count(), 2);
    conf.run(400);
    assert_hears(&conf, a, &[B_HZ], &[C_HZ, MUSIC_HZ], 200);
    assert_hears(&conf, c, &[MUSIC_HZ], &[A_HZ, B_HZ], 200);
    // A joins C's room: B is alone (music), A and C hear each other.
    conf.join(a, OTHER_ROOM);
    assert_eq!(conf.relay.conference_count(), 2);
    assert_eq!(conf.relay.participant_count(), 3);
    conf.run(400);
    assert_hears(&conf, a, &[C_HZ], &[B_HZ, MUSIC_HZ], 200);
    assert_hears(&conf, b, &[MUSIC_HZ], &[A_HZ, C_HZ], 200);
    // Joining the room it is in only changes the mute.
    conf.command(MediaCommand::JoinConference {
        session: MediaSessionId(100),
        leg: MediaLeg::Caller,
        room: OTHER_ROOM,
        muted: true,
        tenant: None,
    });
    conf.run(200);
    assert_hears(&conf, c, &[], &[A_HZ], 100);
    conf.mute(a, false);
    // C renegotiates PCMA: it sends and hears PCMA from now on.
    conf.phones[c].codec = Codec::Pcma;
    conf.phones[c].payload_type = 8;
    conf.update(c, None);
    let changed_at = conf.now;
    conf.run(400);
    assert!(conf
        .stream(c)
        .iter()
        .filter(|s| s.at > changed_at)
        .all(|s| s.rtp().payload_type() == 8));
    assert_hears(&conf, c, &[A_HZ], &[C_HZ], 200);
    assert_hears(&conf, a, &[C_HZ], &[A_HZ], 200);
    assert_continuous(&conf.stream(c));
}

#[test]
fn sounds_play_to_the_room_or_one_participant_once() {
    let mut conf = Conf::new();
    let (a, _) = conf.add_session(0.0, 0.0);
    let (b, _) = conf.add_session(0.0, 0.0);
    let (c, _) = conf.add_session(0.0, 0.0);
    for phone in [a, b, c] {
        conf.join(phone, ROOM);
    }
    conf.run(200);
    conf.take_events();
    conf.command(MediaCommand::ConferencePrompt {
        room: ROOM,
        sound: ConferenceSound::Beep(BeepKind::Enter),
    });
    let beep_at = conf.now;
    conf.run(300);
    for phone in [a, b, c] {
        let beep = conf.heard(phone, beep_at, beep_at + ms(120));
        assert!(tone_amplitude(&beep, 660.0, RATE) > 1000.0, "phone {phone}");
        let after = conf.heard(phone, beep_at + ms(260), conf.now);
        assert!(tone_amplitude(&after, 880.0, RATE) < 20.0, "the beep ended");
    }
    assert_eq!(
        conf.take_events(),
        vec![MediaEvent::ConferencePlaybackDone { room: ROOM }]
    );
    conf.command(MediaCommand::ParticipantPrompt {
        session: MediaSessionId(101),
        leg: MediaLeg::Caller,
        sound: ConferenceSound::Prompts {
            tenant: Some(3),
            names: vec!["hello".to_owned()],
        },
    });
    let hello_at = conf.now;
    conf.run(200);
    let heard = |conf: &Conf, phone| {
        let pcm = conf.heard(phone, hello_at, hello_at + ms(100));
        tone_amplitude(&pcm, HELLO_HZ, RATE)
    };
    assert!(heard(&conf, b) > 0.8 * AMPLITUDE);
    assert!(heard(&conf, a) < 20.0 && heard(&conf, c) < 20.0, "B's only");
    assert_eq!(
        conf.take_events(),
        vec![MediaEvent::PlaybackDone {
            session: MediaSessionId(101),
            leg: MediaLeg::Caller,
        }]
    );
    // Nothing playable, a leg in no room, an unknown room: done at once.
    conf.command(MediaCommand::ConferencePrompt {
        room: ROOM,
        sound: ConferenceSound::Prompts {
            tenant: None,
            names: vec!["missing".to_owned()],
        },
    });
    conf.command(MediaCommand::ParticipantPrompt {
        session: MediaSessionId(101),
        leg: MediaLeg::Callee,
        sound: ConferenceSound::Beep(BeepKind::Plain),
    });
    conf.command(MediaCommand::ConferencePrompt {
        room: ConferenceId(77),
        sound: ConferenceSound::Beep(BeepKind::Exit),
    });
    assert_eq!(
        conf.take_events(),
        vec![
            MediaEvent::ConferencePlaybackDone { room: ROOM },
            MediaEvent::PlaybackDone {
                session: MediaSessionId(101),
                leg: MediaLeg::Callee,
            },
            MediaEvent::ConferencePlaybackDone {
                room: ConferenceId(77)
            },
        ]
    );
}

#[test]
fn conference_legs_keep_rtcp_statistics_and_the_media_timeout() {
    let mut conf = Conf::new();
    let (a, _) = conf.add_session(A_HZ, 0.0);
    let (b, _) = conf.add_session(B_HZ, 0.0);
    conf.join(a, ROOM);
    conf.join(b, ROOM);
    conf.run(12_000);
    let session = MediaSessionId(100);
    let counters = conf
        .relay
        .leg_counters(session, MediaLeg::Caller)
        .expect("open");
    assert!(counters.rtcp_sent >= 1, "{counters:?}");
    let stats = conf
        .relay
        .leg_stats(session, MediaLeg::Caller)
        .expect("open");
    assert!(stats.packets_received >= 590, "{stats:?}");
    assert!(stats.packets_sent >= 590, "{stats:?}");
    assert_eq!(stats.packets_lost, 0);
    let rtcp_to = SocketAddr::new(conf.phones[a].far.ip(), 4001);
    assert!(conf.sent.iter().any(|s| s.to == rtcp_to));
    // Everyone stops sending: the media timeout still ends the calls.
    for phone in &mut conf.phones {
        phone.sending = false;
    }
    conf.take_events();
    conf.run(62_000);
    let timeouts = conf
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, MediaEvent::Timeout { .. }))
        .count();
    assert_eq!(timeouts, 2);
}

#[test]
fn a_conference_mix_keeps_the_media_clock_across_a_50_ms_stall() {
    let mut conf = Conf::new();
    let tones = [A_HZ, B_HZ, C_HZ];
    let phones: Vec<usize> = tones
        .iter()
        .map(|&hz| conf.add_session(hz, 0.0).0)
        .collect();
    for &phone in &phones {
        conf.join(phone, ROOM);
    }
    // Ticks at 20 ms, 40 ms, ..., 1000 ms; the phones send 5 ms after each.
    conf.run(1000);
    // The media thread stops for 50 ms: the ticks due at 1020 and 1040 do not run, the
    // phones' packets of 1025 and 1045 wait in the sockets; at 1050 the thread reads
    // them, then ticks.
    conf.now = ms(1050);
    for _ in 0..2 {
        for &phone in &phones {
            let packet = conf.phones[phone].next_packet();
            assert_eq!(conf.deliver(phone, &packet), PacketAction::Mixed);
        }
    }
    conf.tick_late(ms(1050));
    conf.run(1000);
    for (k, &phone) in phones.iter().enumerate() {
        let stream = conf.stream(phone);
        assert_continuous(&stream);
        let before = stream
            .iter()
            .find(|s| s.at == ms(1000))
            .expect("the mix of 1000 ms");
        let late: Vec<&&Sent> = stream.iter().filter(|s| s.at == ms(1050)).collect();
        assert_eq!(
            late.len(),
            2,
            "phone {phone}: the two mixes the stall held up"
        );
        for sent in stream.iter().filter(|s| s.at > ms(1050)) {
            // On time again, and stamped by the media clock: 8 per ms since 1000 ms.
            assert_eq!(sent.at.as_millis() % 20, 0, "on the 20 ms grid");
            let rtp_time = sent
                .rtp()
                .timestamp()
                .wrapping_sub(before.rtp().timestamp());
            let elapsed = sent.at - before.at;
            assert_eq!(
                u128::from(rtp_time),
                8 * elapsed.as_millis(),
                "phone {phone}: mix sent at {:?}",
                sent.at
            );
        }
        let others: Vec<f64> = (0..3).filter(|&j| j != k).map(|j| tones[j]).collect();
        assert_hears(&conf, phone, &others, &[tones[k]], 600);
    }
    // Every packet of the three phones (50 steps, the two held up, 50 steps) was mixed.
    assert_eq!(conf.relay.counters().mixed, 3 * (50 + 2 + 50));
}
