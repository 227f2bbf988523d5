//! The mixer on generated audio: every caller sends a tone of its own frequency (or
//! silence); what each one hears is decoded and checked by spectrum (Goertzel), not bytes,
//! except where bytes are the point (pass-through, shared encodings).

use std::collections::HashMap;
use std::f64::consts::TAU;
use std::time::Duration;

use super::*;
use crate::media::codec::{decode_to_linear, encode_from_linear, g711};
use crate::media::test_util::{db, tone_amplitude};

const FRAME: usize = 160;
const RATE: f64 = 8000.0;
const TICK: Duration = FRAME_DURATION;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Voice {
    Silent,
    Tone { hz: f64, amplitude: f64 },
}

#[derive(Debug)]
struct Caller {
    id: ParticipantId,
    codec: Codec,
    voice: Voice,
    /// Packets are sent while true.
    sending: bool,
    ssrc: u32,
    seq: u16,
    ts: u32,
    /// Samples generated so far (tone phase).
    samples: u64,
    /// Payloads sent, in order.
    sent: Vec<Vec<u8>>,
    /// Payloads received, one per tick.
    received: Vec<Vec<u8>>,
    /// `received`, decoded.
    heard: Vec<i16>,
}

impl Caller {
    fn next_payload(&mut self) -> Vec<u8> {
        let mut pcm = [0i16; FRAME];
        if let Voice::Tone { hz, amplitude } = self.voice {
            for (i, sample) in pcm.iter_mut().enumerate() {
                let n = (self.samples + i as u64) as f64;
                *sample = (amplitude * (TAU * hz * n / RATE).sin()).round() as i16;
            }
        }
        self.samples += FRAME as u64;
        let mut payload = vec![0u8; FRAME];
        encode_from_linear(self.codec, &pcm, &mut payload).unwrap();
        payload
    }
}

struct Harness {
    mixer: Mixer,
    now: Duration,
    callers: Vec<Caller>,
    /// Music for rooms of one: a tone at this frequency.
    music_hz: f64,
    music_phase: u64,
    music_calls: Vec<RoomId>,
}

impl Harness {
    fn new() -> Self {
        Self::with(MixerConfig::default())
    }

    fn with(config: MixerConfig) -> Self {
        Self {
            mixer: Mixer::new(config),
            now: Duration::from_secs(1000),
            callers: Vec::new(),
            music_hz: 0.0,
            music_phase: 0,
            music_calls: Vec::new(),
        }
    }

    fn join(&mut self, room: RoomId, codec: Codec, voice: Voice) -> usize {
        let id = self.mixer.join(room, codec).expect("room exists");
        let index = self.callers.len();
        self.callers.push(Caller {
            id,
            codec,
            voice,
            sending: true,
            ssrc: 1000 + index as u32,
            seq: 100 * index as u16,
            ts: 5000 * index as u32,
            samples: 0,
            sent: Vec::new(),
            received: Vec::new(),
            heard: Vec::new(),
        });
        index
    }

    fn tone(hz: f64, amplitude: f64) -> Voice {
        Voice::Tone { hz, amplitude }
    }

    /// Generates caller `i`'s next packet without pushing it.
    fn make_packet(&mut self, i: usize) -> (u16, u32, Vec<u8>) {
        let caller = &mut self.callers[i];
        let payload = caller.next_payload();
        let packet = (caller.seq, caller.ts, payload.clone());
        caller.sent.push(payload);
        caller.seq = caller.seq.wrapping_add(1);
        caller.ts = caller.ts.wrapping_add(FRAME as u32);
        packet
    }

    fn push(&mut self, i: usize, packet: &(u16, u32, Vec<u8>), delay: Duration) {
        let caller = &self.callers[i];
        self.mixer.push(
            caller.id,
            RtpAudio {
                ssrc: caller.ssrc,
                sequence: packet.0,
                timestamp: packet.1,
                payload: &packet.2,
            },
            self.now + delay,
        );
    }

    /// Every sending caller sends one packet (1 ms of network delay), then one tick.
    fn step(&mut self) {
        for i in 0..self.callers.len() {
            if self.callers[i].sending {
                let packet = self.make_packet(i);
                self.push(i, &packet, Duration::from_millis(1));
            }
        }
        self.tick();
    }

    fn tick(&mut self) {
        self.now += TICK;
        let Harness {
            mixer,
            now,
            callers,
            music_hz,
            music_phase,
            music_calls,
        } = self;
        let hz = *music_hz;
        let mut music = |room: RoomId, samples: &mut [i16]| {
            music_calls.push(room);
            for (i, sample) in samples.iter_mut().enumerate() {
                let n = (*music_phase + i as u64) as f64;
                *sample = (6000.0 * (TAU * hz * n / RATE).sin()) as i16;
            }
            *music_phase += samples.len() as u64;
        };
        let mut outputs: HashMap<ParticipantId, Vec<u8>> = HashMap::new();
        mixer.tick(*now, &mut music, &mut |id, payload| {
            assert_eq!(payload.len(), FRAME, "one frame per participant");
            assert!(
                outputs.insert(id, payload.to_vec()).is_none(),
                "one output per participant per tick"
            );
        });
        for caller in callers.iter_mut() {
            let Some(payload) = outputs.remove(&caller.id) else {
                continue;
            };
            let mut pcm = [0i16; FRAME];
            decode_to_linear(caller.codec, &payload, &mut pcm).unwrap();
            caller.heard.extend_from_slice(&pcm);
            caller.received.push(payload);
        }
        assert!(outputs.is_empty(), "outputs only for known participants");
    }

    fn run(&mut self, ticks: usize) {
        for _ in 0..ticks {
            self.step();
        }
    }

    /// Amplitude of `hz` in what caller `i` heard over the last `frames` frames.
    fn heard(&self, i: usize, hz: f64, frames: usize) -> f64 {
        let heard = &self.callers[i].heard;
        let from = heard.len().saturating_sub(frames * FRAME);
        tone_amplitude(&heard[from..], hz, RATE)
    }

    /// Amplitude of `hz` in frame `frame` (counted from the start) heard by `i`, over
    /// samples `range` of that frame.
    fn heard_in_frame(&self, i: usize, frame: usize, hz: f64, skip: usize) -> f64 {
        let heard = &self.callers[i].heard;
        tone_amplitude(&heard[frame * FRAME + skip..(frame + 1) * FRAME], hz, RATE)
    }

    fn id(&self, i: usize) -> ParticipantId {
        self.callers[i].id
    }
}

fn max_step(samples: &[i16]) -> i32 {
    samples
        .windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap_or(0)
}

/// Tone frequencies: whole multiples of both 50 Hz and 66.67 Hz, so Goertzel over whole
/// frames, or over the last 120 samples of a frame, does not leak one into another.
const HZ: [f64; 6] = [400.0, 800.0, 1000.0, 1400.0, 2000.0, 2600.0];

/// A tone is "not heard" below this amplitude: G.711 quantisation of the others' tones
/// leaves products around 20 (36 dB under a 4000 tone).
const ABSENT: f64 = 60.0;

#[test]
fn everyone_hears_the_others_and_never_itself() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    for (i, hz) in HZ.iter().take(3).enumerate() {
        let codec = if i % 2 == 0 { Codec::Pcmu } else { Codec::Pcma };
        h.join(room, codec, Harness::tone(*hz, 4000.0));
    }
    h.run(100);
    for listener in 0..3 {
        for (speaker, &hz) in HZ.iter().take(3).enumerate() {
            let amplitude = h.heard(listener, hz, 50);
            if listener == speaker {
                assert!(
                    db(amplitude / 4000.0) < -45.0,
                    "{listener} hears itself at {amplitude}"
                );
            } else {
                assert!(
                    (3600.0..4400.0).contains(&amplitude),
                    "{listener} hears {speaker} at {amplitude}"
                );
            }
        }
        assert!(h.mixer.talking(h.id(listener)));
        assert!(h.mixer.status(h.id(listener)).unwrap().heard);
    }
}

#[test]
fn only_the_three_loudest_are_mixed_and_listeners_share_bytes() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    let amplitudes = [6000.0, 5000.0, 4000.0, 2000.0];
    for (i, &amplitude) in amplitudes.iter().enumerate() {
        h.join(room, Codec::Pcmu, Harness::tone(HZ[i], amplitude));
    }
    let silent_ulaw = h.join(room, Codec::Pcmu, Voice::Silent);
    let silent_ulaw_2 = h.join(room, Codec::Pcmu, Voice::Silent);
    let silent_alaw = h.join(room, Codec::Pcma, Voice::Silent);
    h.run(100);
    // The quietest talker (3) is not heard by anyone; it hears the three loudest.
    for listener in [0, 1, 2, silent_ulaw, silent_alaw] {
        assert!(h.heard(listener, HZ[3], 50) < ABSENT, "{listener} hears 3");
    }
    for speaker in 0..3 {
        let heard = h.heard(3, HZ[speaker], 50);
        assert!(
            (heard / amplitudes[speaker] - 1.0).abs() < 0.1,
            "3 hears {speaker} at {heard}"
        );
        assert!(h.mixer.is_mixed(h.id(speaker)));
    }
    assert!(!h.mixer.is_mixed(h.id(3)));
    assert!(
        h.mixer.talking(h.id(3)),
        "active, just not among the loudest"
    );
    // Non-talkers of one codec received the very same bytes every tick.
    let a = &h.callers[silent_ulaw].received;
    assert_eq!(a, &h.callers[silent_ulaw_2].received);
    assert_eq!(a, &h.callers[3].received);
    // The A-law listener heard the same mix.
    for speaker in 0..3 {
        let heard = h.heard(silent_alaw, HZ[speaker], 50);
        assert!((heard / amplitudes[speaker] - 1.0).abs() < 0.1);
    }
}

#[test]
fn loud_talkers_saturate_instead_of_wrapping() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    // Two in-phase tones of the same frequency at 25000: their sum peaks at 50000.
    h.join(room, Codec::Pcma, Harness::tone(500.0, 25_000.0));
    h.join(room, Codec::Pcma, Harness::tone(500.0, 25_000.0));
    let listener = h.join(room, Codec::Pcmu, Voice::Silent);
    h.run(50);
    let heard = &h.callers[listener].heard[20 * FRAME..];
    let peak = heard.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak >= 31_000, "clipped at full scale: {peak}");
    // A wrapped sum would jump by about 65536 between neighbours.
    assert!(max_step(heard) < 20_000, "step {}", max_step(heard));
    // Clipped, the fundamental is still louder than either tone alone.
    assert!(tone_amplitude(heard, 500.0, RATE) > 30_000.0);
}

#[test]
fn a_talker_who_stops_is_dropped_after_the_hangover() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    let a = h.join(room, Codec::Pcmu, Harness::tone(HZ[0], 4000.0));
    let b = h.join(room, Codec::Pcmu, Harness::tone(HZ[1], 4000.0));
    h.join(room, Codec::Pcmu, Voice::Silent);
    h.run(50);
    assert!(h.mixer.is_mixed(h.id(b)));
    h.callers[b].voice = Voice::Silent;
    let mut mixed_ticks = 0;
    let mut talking_ticks = 0;
    for _ in 0..40 {
        h.step();
        if h.mixer.is_mixed(h.id(b)) {
            mixed_ticks += 1;
        }
        if h.mixer.talking(h.id(b)) {
            talking_ticks += 1;
        }
    }
    // Jitter buffer delay (2-3 frames) + 200 ms hangover (10 frames) + 1 fade-out frame.
    assert!(
        (11..=15).contains(&mixed_ticks),
        "mixed {mixed_ticks} ticks"
    );
    assert!(
        (11..=14).contains(&talking_ticks),
        "talking {talking_ticks} ticks"
    );
    assert!(!h.mixer.is_mixed(h.id(b)));
    assert!(h.mixer.is_mixed(h.id(a)));
}

#[test]
fn a_louder_fourth_talker_displaces_the_quietest() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    for (i, amplitude) in [4000.0, 3000.0, 2000.0].into_iter().enumerate() {
        h.join(room, Codec::Pcmu, Harness::tone(HZ[i], amplitude));
    }
    let d = h.join(room, Codec::Pcma, Voice::Silent);
    let listener = h.join(room, Codec::Pcmu, Voice::Silent);
    h.run(50);
    assert!(h.heard(listener, HZ[2], 25) > 1800.0);
    h.callers[d].voice = Harness::tone(HZ[3], 8000.0);
    h.run(50);
    assert!(h.mixer.is_mixed(h.id(d)));
    assert!(!h.mixer.is_mixed(h.id(2)));
    assert!(h.heard(listener, HZ[2], 25) < ABSENT);
    assert!(h.heard(listener, HZ[3], 25) > 7000.0);
    assert!(h.heard(listener, HZ[0], 25) > 3600.0);
    assert!(h.heard(listener, HZ[1], 25) > 2700.0);
    // The displaced talker now hears all three.
    assert!(h.heard(2, HZ[3], 25) > 7000.0);
    // Equal voices do not flap: over the last second the selection never changed.
    let mut h2 = Harness::new();
    let room = h2.mixer.open_room();
    for &hz in HZ.iter().take(4) {
        h2.join(room, Codec::Pcmu, Harness::tone(hz, 4000.0));
    }
    h2.run(20);
    let selected: Vec<bool> = (0..4).map(|i| h2.mixer.is_mixed(h2.id(i))).collect();
    assert_eq!(selected.iter().filter(|&&s| s).count(), 3);
    for _ in 0..50 {
        h2.step();
        let now: Vec<bool> = (0..4).map(|i| h2.mixer.is_mixed(h2.id(i))).collect();
        assert_eq!(now, selected);
    }
}

#[test]
fn mute_takes_effect_within_one_tick() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    for &hz in HZ.iter().take(3) {
        h.join(room, Codec::Pcmu, Harness::tone(hz, 4000.0));
    }
    let listener = h.join(room, Codec::Pcmu, Voice::Silent);
    h.run(50);
    assert!(h.mixer.set_muted(h.id(0), true));
    let first = h.callers[listener].received.len();
    h.run(10);
    // The tick after the mute fades 0 out within its first 5 ms; then 0 is gone.
    assert!(h.heard_in_frame(listener, first, HZ[0], 40) < ABSENT);
    assert!(h.heard_in_frame(1, first, HZ[0], 40) < ABSENT);
    assert!(h.heard(listener, HZ[0], 9) < ABSENT);
    // 0 still hears the room, and the others still hear each other.
    assert!(h.heard(0, HZ[1], 9) > 3600.0);
    assert!(h.heard(listener, HZ[2], 9) > 3600.0);
    assert!(h.mixer.status(h.id(0)).unwrap().muted);
    assert!(
        h.mixer.talking(h.id(0)),
        "the CLI still sees a muted talker talk"
    );
    // Unmuted: back within one tick.
    assert!(h.mixer.set_muted(h.id(0), false));
    let first = h.callers[listener].received.len();
    h.run(2);
    assert!(h.heard_in_frame(listener, first, HZ[0], 40) > 3600.0);
}

#[test]
fn lost_packets_fade_out_smoothly_and_come_back_without_a_click() {
    for room_size in [2usize, 3] {
        let mut h = Harness::new();
        let room = h.mixer.open_room();
        let talker = h.join(room, Codec::Pcmu, Harness::tone(300.0, 8000.0));
        let listener = h.join(room, Codec::Pcmu, Voice::Silent);
        if room_size == 3 {
            h.join(room, Codec::Pcma, Voice::Silent);
        }
        h.run(50);
        let start = h.callers[listener].received.len();
        // Two short losses and one long one.
        for tick in 0..100 {
            let lost =
                (10..11).contains(&tick) || (30..32).contains(&tick) || (50..60).contains(&tick);
            h.callers[talker].sending = !lost;
            if lost {
                // The packet is generated (phase moves on) but never arrives.
                let _ = h.make_packet(talker);
            }
            h.step();
        }
        let counters = h.mixer.status(h.id(talker)).unwrap().counters;
        // Lost, or (once) dropped to shrink the delay while missing anyway.
        assert_eq!(
            counters.frames_lost + counters.frames_skipped,
            13,
            "{room_size}: {counters:?}"
        );
        let heard = &h.callers[listener].heard[start * FRAME..];
        // The 300 Hz tone's own steepest step is 2 pi 300 / 8000 * 8000 = 1885.
        assert!(
            max_step(heard) < 2600,
            "{room_size}: step {}",
            max_step(heard)
        );
        // Frame by frame level around the long loss (shifted by the playout delay).
        let levels: Vec<f64> = (0..100)
            .map(|f| tone_amplitude(&heard[f * FRAME..(f + 1) * FRAME], 300.0, RATE))
            .collect();
        let first_quiet = (45..70).find(|&f| levels[f] < 7000.0).unwrap();
        assert!(levels[first_quiet] > 4000.0, "{room_size}: {levels:?}");
        assert!(levels[first_quiet + 1] < levels[first_quiet] * 0.7);
        assert!(levels[first_quiet + 2] < levels[first_quiet + 1] * 0.7);
        // Silence after 60 ms, until audio resumes with a 5 ms fade-in (one of the ten
        // missing frames may have been dropped to shrink the delay instead).
        let silent = levels[first_quiet + 3..]
            .iter()
            .take_while(|&&level| level < 1.0)
            .count();
        assert!((6..=7).contains(&silent), "{room_size}: {levels:?}");
        let back = first_quiet + 3 + silent;
        assert!(levels[back] > 6000.0, "{room_size}: fade-in: {levels:?}");
        assert!(levels[back + 1] > 7800.0, "{room_size}: back: {levels:?}");
    }
}

#[test]
fn reordered_packets_play_in_order_and_late_ones_are_dropped() {
    let run = |reorder: bool, late: bool| {
        let mut h = Harness::new();
        let room = h.mixer.open_room();
        let talker = h.join(room, Codec::Pcma, Harness::tone(440.0, 5000.0));
        let listener = h.join(room, Codec::Pcma, Voice::Silent);
        h.callers[talker].sending = false;
        let mut held: Option<(u16, u32, Vec<u8>)> = None;
        let mut very_late: Option<(u16, u32, Vec<u8>)> = None;
        for tick in 0..100 {
            let packet = h.make_packet(talker);
            if late && tick == 40 {
                very_late = Some(packet);
            } else if reorder && tick % 4 == 1 {
                // Held back one tick: arrives after its successor.
                held = Some(packet);
            } else {
                h.push(talker, &packet, Duration::from_millis(1));
                if let Some(earlier) = held.take() {
                    h.push(talker, &earlier, Duration::from_millis(2));
                }
            }
            if tick == 50 {
                if let Some(packet) = very_late.take() {
                    h.push(talker, &packet, Duration::from_millis(1));
                }
            }
            h.step();
        }
        let counters = h.mixer.status(h.id(talker)).unwrap().counters;
        (h.callers[listener].received.clone(), counters)
    };
    let (in_order, counters) = run(false, false);
    assert_eq!(counters.late, 0);
    let (reordered, counters) = run(true, false);
    assert_eq!(counters.frames_lost, 0);
    assert_eq!(
        reordered, in_order,
        "reordering changes nothing that is heard"
    );
    let (with_late, counters) = run(false, true);
    assert_eq!(counters.late, 1);
    assert_eq!(counters.frames_lost, 1);
    assert_ne!(with_late, in_order);
}

#[test]
fn two_parties_get_each_others_bytes() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    let a = h.join(room, Codec::Pcmu, Harness::tone(440.0, 5000.0));
    let b = h.join(room, Codec::Pcmu, Harness::tone(1000.0, 3000.0));
    // Sequence numbers and timestamps about to wrap.
    h.callers[a].seq = 65_500;
    h.callers[a].ts = u32::MAX - 10 * FRAME as u32;
    h.run(100);
    for (listener, speaker) in [(a, b), (b, a)] {
        let received = &h.callers[listener].received;
        let sent = &h.callers[speaker].sent;
        let delay = received
            .iter()
            .position(|frame| frame == &sent[0])
            .expect("first packet relayed");
        assert!(delay <= 3, "delay {delay}");
        for (n, frame) in received[delay..].iter().enumerate() {
            assert_eq!(frame, &sent[n], "{listener} frame {n} is the sent bytes");
        }
    }
    assert_eq!(h.mixer.status(h.id(a)).unwrap().counters.resyncs, 0);
}

#[test]
fn two_parties_with_different_codecs_are_transcoded() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    let a = h.join(room, Codec::Pcmu, Harness::tone(440.0, 5000.0));
    let b = h.join(room, Codec::Pcma, Harness::tone(1000.0, 3000.0));
    h.run(60);
    let mut converted = vec![0u8; FRAME];
    g711::ulaw_to_alaw(&h.callers[a].sent[0], &mut converted);
    let delay = h.callers[b]
        .received
        .iter()
        .position(|frame| frame == &converted)
        .expect("transcoded by table");
    for (n, frame) in h.callers[b].received[delay..].iter().enumerate() {
        g711::ulaw_to_alaw(&h.callers[a].sent[n], &mut converted);
        assert_eq!(frame, &converted);
    }
    assert!((h.heard(b, 440.0, 40) / 5000.0 - 1.0).abs() < 0.05);
    assert!((h.heard(a, 1000.0, 40) / 3000.0 - 1.0).abs() < 0.05);
    assert!(h.heard(a, 440.0, 40) < ABSENT);
    // A muted party is not heard; the other still is.
    h.mixer.set_muted(h.id(a), true);
    h.run(10);
    assert!(h.heard(b, 440.0, 9) < ABSENT);
    assert!(h.heard(a, 1000.0, 9) > 2900.0);
}

#[test]
fn one_person_hears_the_music_source() {
    let mut h = Harness::new();
    h.music_hz = 440.0;
    let alone = h.mixer.open_room();
    let busy = h.mixer.open_room();
    let a = h.join(alone, Codec::Pcma, Harness::tone(1000.0, 3000.0));
    h.join(busy, Codec::Pcmu, Voice::Silent);
    h.join(busy, Codec::Pcmu, Voice::Silent);
    h.run(20);
    assert!((h.heard(a, 440.0, 20) / 6000.0 - 1.0).abs() < 0.05);
    assert!(h.heard(a, 1000.0, 20) < ABSENT);
    assert_eq!(h.music_calls.len(), 20);
    assert!(h.music_calls.iter().all(|&room| room == alone));
    // A second person joins: no more music.
    let b = h.join(alone, Codec::Pcmu, Voice::Silent);
    h.run(10);
    assert!(h.heard(b, 440.0, 5) < ABSENT);
    assert!(h.heard(b, 1000.0, 5) > 2800.0);
    assert_eq!(h.music_calls.len(), 20);
}

#[test]
fn injected_audio_reaches_the_room_or_one_participant() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    let a = h.join(room, Codec::Pcmu, Voice::Silent);
    let b = h.join(room, Codec::Pcma, Voice::Silent);
    let c = h.join(room, Codec::Pcmu, Harness::tone(HZ[0], 4000.0));
    h.run(20);
    let beep: Vec<i16> = (0..FRAME)
        .map(|n| (5000.0 * (TAU * 1000.0 * n as f64 / RATE).sin()) as i16)
        .collect();
    assert!(h.mixer.inject(InjectTarget::Room(room), &beep));
    let first = h.callers[a].received.len();
    h.step();
    for listener in [a, b, c] {
        let beep_level = h.heard_in_frame(listener, first, 1000.0, 0);
        assert!(beep_level > 4500.0, "{listener}: {beep_level}");
    }
    // Only for b, and only for one tick; short input is padded.
    assert!(h
        .mixer
        .inject(InjectTarget::Participant(h.id(b)), &beep[..80]));
    h.step();
    assert!(h.heard_in_frame(b, first + 1, 1000.0, 0) > 2000.0);
    assert!(h.heard_in_frame(a, first + 1, 1000.0, 0) < ABSENT);
    assert!(h.heard_in_frame(c, first + 1, 1000.0, 0) < ABSENT);
    // b still hears c under the beep.
    assert!(h.heard_in_frame(b, first + 1, HZ[0], 0) > 3000.0);
    h.step();
    assert!(h.heard_in_frame(b, first + 2, 1000.0, 0) < ABSENT);
    assert!(!h.mixer.inject(InjectTarget::Room(RoomId(12345)), &beep));
}

#[test]
fn rooms_and_participants_come_and_go() {
    let mut mixer = Mixer::new(MixerConfig::default());
    let room = mixer.open_room();
    let other = mixer.open_room();
    assert_ne!(room, other);
    assert_eq!((room.index(), other.index()), (0, 1));
    assert_eq!(mixer.room_count(), 2);
    let a = mixer.join(room, Codec::Pcmu).unwrap();
    let b = mixer.join(room, Codec::Pcma).unwrap();
    let c = mixer.join(other, Codec::Pcma).unwrap();
    assert_eq!(mixer.participants(room).collect::<Vec<_>>(), [a, b]);
    assert_eq!(mixer.room_of(c), Some(other));
    assert!(mixer.join(room, Codec::G722).is_none());
    assert!(mixer.join(room, Codec::Opus).is_none());
    assert!(mixer.leave(a));
    assert!(!mixer.leave(a));
    assert_eq!(mixer.participants(room).collect::<Vec<_>>(), [b]);
    // The freed slot is reused, but the old id stays invalid.
    let d = mixer.join(room, Codec::Pcmu).unwrap();
    assert_ne!(d, a);
    assert_eq!(d.index(), a.index());
    assert_eq!((a.index(), b.index(), c.index()), (0, 1, 2));
    assert!(!mixer.set_muted(a, true));
    assert!(mixer.status(a).is_none());
    assert!(mixer.close_room(room));
    assert!(!mixer.close_room(room));
    assert!(mixer.status(b).is_none() && mixer.status(d).is_none());
    assert_eq!(mixer.participants(room).count(), 0);
    assert!(mixer.join(room, Codec::Pcmu).is_none());
    assert_eq!(mixer.room_count(), 1);
    let reopened = mixer.open_room();
    assert_ne!(reopened, room);
    assert_eq!(
        reopened.index(),
        room.index(),
        "the closed room's slot is reused"
    );
    assert!(mixer.set_codec(c, Codec::Pcmu));
    assert!(!mixer.set_codec(c, Codec::G722));
    assert_eq!(mixer.status(c).unwrap().codec, Codec::Pcmu);
}

#[test]
fn nothing_panics_on_odd_input() {
    let mut mixer = Mixer::new(MixerConfig::default());
    let nobody = ParticipantId(0);
    let packet = RtpAudio {
        ssrc: 1,
        sequence: 0,
        timestamp: 0,
        payload: &[0xFF; 160],
    };
    mixer.push(nobody, packet, Duration::ZERO);
    mixer.push(ParticipantId(u64::MAX), packet, Duration::MAX);
    assert!(!mixer.set_muted(nobody, true));
    assert!(!mixer.talking(nobody));
    assert!(mixer.room_of(nobody).is_none());
    assert!(!mixer.inject(InjectTarget::Participant(nobody), &[1; 1000]));
    // Trait objects work as well as closures.
    let music: &mut dyn FnMut(RoomId, &mut [i16]) = &mut |_, _| {};
    let out: &mut dyn FnMut(ParticipantId, &[u8]) = &mut |_, _| {};
    mixer.tick(Duration::ZERO, music, out);

    let room = mixer.open_room();
    let ids: Vec<_> = (0..4)
        .map(|i| {
            mixer
                .join(room, if i % 2 == 0 { Codec::Pcmu } else { Codec::Pcma })
                .unwrap()
        })
        .collect();
    let payloads: [&[u8]; 5] = [&[], &[1], &[0x80; 161], &[0x00; 3000], &[0x55; 159]];
    let mut now = Duration::from_secs(1);
    for round in 0..200u32 {
        for (i, &id) in ids.iter().enumerate() {
            let payload = payloads[(round as usize + i) % payloads.len()];
            let packet = RtpAudio {
                ssrc: round % 3,
                sequence: (round * 7919 + i as u32) as u16,
                timestamp: round.wrapping_mul(2_654_435_761),
                payload,
            };
            mixer.push(
                id,
                packet,
                now + Duration::from_millis(u64::from(round % 50)),
            );
        }
        mixer.inject(InjectTarget::Room(room), &[i16::MAX; 400]);
        mixer.inject(InjectTarget::Participant(ids[0]), &[i16::MIN; 10]);
        let mut outputs = 0;
        mixer.tick(
            now,
            &mut |_, samples| samples.fill(i16::MAX),
            &mut |_, payload| {
                assert_eq!(payload.len(), 160);
                outputs += 1;
            },
        );
        assert_eq!(outputs, 4);
        // Time that goes backwards now and then.
        now = if round % 17 == 0 {
            now.saturating_sub(TICK * 3)
        } else {
            now + TICK
        };
    }
    mixer.tick(Duration::MAX, &mut |_, _| {}, &mut |_, _| {});
    for id in ids {
        assert!(mixer.status(id).is_some());
    }
}

#[test]
fn configuration_is_brought_into_range() {
    let mixer = Mixer::new(MixerConfig {
        sample_rate: 0,
        max_talkers: 0,
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(10),
        ..MixerConfig::default()
    });
    assert_eq!(mixer.config().sample_rate, 8000);
    assert_eq!(mixer.frame_samples(), 160);
    assert_eq!(mixer.config().max_talkers, 1);
    assert!(mixer.config().max_delay >= mixer.config().min_delay);
    // A 16 kHz mixer takes no narrowband participant.
    let mut wide = Mixer::new(MixerConfig {
        sample_rate: 16_000,
        ..MixerConfig::default()
    });
    assert_eq!(wide.frame_samples(), 320);
    let room = wide.open_room();
    assert!(wide.join(room, Codec::Pcmu).is_none());
}

#[test]
fn status_reports_level_delay_and_counters() {
    let mut h = Harness::new();
    let room = h.mixer.open_room();
    let a = h.join(room, Codec::Pcmu, Harness::tone(HZ[0], 4000.0));
    let b = h.join(room, Codec::Pcmu, Voice::Silent);
    h.callers[b].sending = false;
    h.run(30);
    let status = h.mixer.status(h.id(a)).unwrap();
    assert_eq!(status.room, room);
    assert!(status.talking && status.heard && status.receiving && !status.muted);
    // A 4000 peak sine: 20 log10(4000 / sqrt(2) / 32768) = -21.3 dBov.
    assert!(
        (status.level_dbov + 21.3).abs() < 0.5,
        "{}",
        status.level_dbov
    );
    assert_eq!(status.counters.packets, 30);
    assert!(status.playout_delay >= Duration::from_millis(20));
    assert!(status.playout_delay <= Duration::from_millis(40));
    let silent = h.mixer.status(h.id(b)).unwrap();
    assert!(!silent.talking && !silent.receiving);
    assert_eq!(silent.counters.packets, 0);
    assert_eq!(silent.counters.frames_lost, 0);
}
