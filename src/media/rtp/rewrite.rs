//! Keeps one outgoing RTP stream continuous while its input changes underneath it.
//!
//! The far end must see ONE stream: one SSRC, sequence numbers that only skip where packets
//! were really lost, and timestamps that advance with real time. The input however changes:
//! a re-INVITE or another forked branch brings a new SSRC/sequence/timestamp base, and the
//! call switches between media relayed from the other leg and media sentralbord generates
//! (prompts, music on hold, DTMF).
//!
//! [`StreamRewriter`] owns the outgoing SSRC and an *anchor*: the highest sequence number
//! sent, the RTP time of the media at that moment and the monotonic time it was sent.
//! - Relaying a packet of the current input applies fixed offsets to its sequence number and
//!   timestamp, so loss and reordering stay visible to the far end as they were.
//! - When the input changes (new SSRC, a sequence jump beyond `max_seq_jump` forward or
//!   `max_misorder` back, a timestamp jump beyond `max_ts_jump`, or a switch to or from
//!   generated media), new offsets are chosen so that the next sequence number is the last
//!   one + 1 and the timestamp is the anchor's + the elapsed time, rounded to a whole frame,
//!   but never before the end of the media already sent. The marker bit is set on that packet.
//! - Packets of the new input that are older than its first one are dropped: their numbers
//!   would collide with what the previous input already used.
//! - Generated media (prompts, music, a conference mix) follows the media clock: the `now`
//!   of each frame is when it is due on its 20 ms grid, and its timestamp is the start of
//!   the generated run plus the time since, in whole frames. Frames sent late in a burst
//!   keep consecutive timestamps; frames never made (a stall skipped them, a pause) leave a
//!   timestamp jump of exactly their length, with the sequence continuous and the marker
//!   set on the first packet after the jump, so a receiver's jitter buffer keeps playing
//!   each frame at its due time.
//!
//! Wrap-around: sequence numbers are `u16` and timestamps `u32`; all arithmetic on them is
//! modular (`wrapping_add`/`wrapping_sub`), and "before/after" is the sign of the wrapping
//! difference read as `i16`/`i32`, valid while two values are less than half the space apart
//! (32768 packets, 2^31 timestamp units: 3 days at 8 kHz). Both input and output may wrap at
//! any point; elapsed times longer than 2^32 timestamp units wrap the same way.
//!
//! Time is passed in as a monotonic [`Duration`] since any fixed origin; it is never read.

use std::time::Duration;

use super::duration_to_ticks;
use super::error::RtpError;
use super::header::{RtpHeaderFields, RtpPacketMut};

/// Default largest forward sequence jump still treated as loss within one input.
pub const DEFAULT_MAX_SEQ_JUMP: u16 = 1000;
/// Default largest backward sequence jump still treated as reordering.
pub const DEFAULT_MAX_MISORDER: u16 = 100;
/// Default largest timestamp jump (either way) still treated as the same input.
pub const DEFAULT_MAX_TS_JUMP: Duration = Duration::from_secs(30);
/// Default frame length until one is observed (20 ms, the usual G.711 ptime).
pub const DEFAULT_FRAME: Duration = Duration::from_millis(20);
/// Longest timestamp step between consecutive packets taken as the frame length.
const MAX_FRAME: Duration = Duration::from_millis(120);

/// What [`StreamRewriter::relay`] did with a packet.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Rewritten with the current offsets: send it.
    Forwarded,
    /// First packet of a new input: rebased, marker set: send it.
    SourceSwitched,
    /// A late packet from before the current input's first one: do not send it.
    DroppedStale,
}

impl RelayOutcome {
    /// Whether the rewritten packet should go out.
    pub fn should_send(self) -> bool {
        !matches!(self, Self::DroppedStale)
    }
}

/// The highest packet sent: what the next new input is joined onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    seq: u16,
    /// RTP time of the media at `at` (packet timestamp; event start + duration for events).
    ts: u32,
    /// Where the media already sent ends: the next input may not start earlier.
    min_next_ts: u32,
    at: Duration,
}

/// The current input's mapping onto the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RelayInput {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    first_seq: u16,
    highest_seq: u16,
    highest_ts: u32,
    /// Still close enough to `first_seq` that a late packet may predate this input.
    young: bool,
}

/// Where a run of generated media started on the media clock: its timestamps follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GeneratedClock {
    ts: u32,
    at: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Idle,
    Relay(RelayInput),
    Generated(GeneratedClock),
    Event { timestamp: u32 },
}

enum Step {
    Continue(RelayInput),
    Switch,
    Stale,
}

/// Rewrites one outgoing RTP stream so the far end sees a single continuous source.
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    out_ssrc: u32,
    clock_rate: u32,
    initial_seq: u16,
    initial_ts: u32,
    anchor: Option<Anchor>,
    source: Source,
    frame_ticks: u32,
    max_seq_jump: u16,
    max_misorder: u16,
    max_ts_jump: u32,
}

fn is_after_u32(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl StreamRewriter {
    /// A stream with SSRC `out_ssrc` at `clock_rate` Hz, starting at `initial_seq` and
    /// `initial_ts` (random values chosen by the caller, RFC 3550 §5.1).
    pub fn new(out_ssrc: u32, clock_rate: u32, initial_seq: u16, initial_ts: u32) -> Self {
        let clock_rate = clock_rate.max(1);
        let ticks =
            |d: Duration| u32::try_from(duration_to_ticks(d, clock_rate)).unwrap_or(u32::MAX);
        Self {
            out_ssrc,
            clock_rate,
            initial_seq,
            initial_ts,
            anchor: None,
            source: Source::Idle,
            frame_ticks: ticks(DEFAULT_FRAME).max(1),
            max_seq_jump: DEFAULT_MAX_SEQ_JUMP,
            max_misorder: DEFAULT_MAX_MISORDER,
            max_ts_jump: ticks(DEFAULT_MAX_TS_JUMP),
        }
    }

    /// Changes the discontinuity thresholds (sequence limits are capped at 32767).
    pub fn with_limits(
        mut self,
        max_seq_jump: u16,
        max_misorder: u16,
        max_ts_jump: Duration,
    ) -> Self {
        self.max_seq_jump = max_seq_jump.min(i16::MAX as u16);
        self.max_misorder = max_misorder.min(i16::MAX as u16);
        self.max_ts_jump = u32::try_from(self.ticks(max_ts_jump)).unwrap_or(u32::MAX);
        self
    }

    /// The outgoing SSRC.
    pub fn out_ssrc(&self) -> u32 {
        self.out_ssrc
    }

    /// The RTP clock rate.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// The highest sequence number sent, if any.
    pub fn last_sequence_number(&self) -> Option<u16> {
        self.anchor.map(|a| a.seq)
    }

    /// The RTP time of the stream at `now` (for the RTP timestamp of an SR), if anything was sent.
    pub fn timestamp_at(&self, now: Duration) -> Option<u32> {
        let anchor = self.anchor?;
        let elapsed = self.ticks(now.saturating_sub(anchor.at));
        Some(anchor.ts.wrapping_add((elapsed & 0xffff_ffff) as u32))
    }

    /// Makes the next relayed packet start a new input even if its SSRC and numbering look
    /// continuous (e.g. after a re-INVITE to a peer that keeps its SSRC).
    pub fn force_switch(&mut self) {
        self.source = Source::Idle;
    }

    fn ticks(&self, d: Duration) -> u64 {
        duration_to_ticks(d, self.clock_rate)
    }

    fn next_seq(&self) -> u16 {
        self.anchor
            .map_or(self.initial_seq, |a| a.seq.wrapping_add(1))
    }

    /// The timestamp for media starting now after a switch: the anchor plus the elapsed time
    /// rounded to whole frames, but not before the end of the media already sent.
    fn rebased_ts(&self, now: Duration) -> u32 {
        let Some(anchor) = self.anchor else {
            return self.initial_ts;
        };
        let frame = u64::from(self.frame_ticks.max(1));
        let elapsed = self.ticks(now.saturating_sub(anchor.at));
        let rounded = elapsed.saturating_add(frame / 2) / frame * frame;
        let by_time = anchor.ts.wrapping_add((rounded & 0xffff_ffff) as u32);
        if is_after_u32(anchor.min_next_ts, by_time) {
            anchor.min_next_ts
        } else {
            by_time
        }
    }

    fn classify(&self, input: RelayInput, seq: u16, ts: u32) -> Step {
        let seq_delta = i32::from(seq.wrapping_sub(input.highest_seq) as i16);
        let ts_delta = ts.wrapping_sub(input.highest_ts) as i32;
        if seq_delta > i32::from(self.max_seq_jump)
            || seq_delta < -i32::from(self.max_misorder)
            || ts_delta.unsigned_abs() > self.max_ts_jump
        {
            return Step::Switch;
        }
        if input.young && (seq.wrapping_sub(input.first_seq) as i16) < 0 {
            return Step::Stale;
        }
        Step::Continue(input)
    }

    /// Rewrites a relayed packet in place (SSRC, sequence number, timestamp, marker on a
    /// switch) for sending at `now`; fails only on a malformed packet, leaving state unchanged.
    pub fn relay(&mut self, packet: &mut [u8], now: Duration) -> Result<RelayOutcome, RtpError> {
        let mut packet = RtpPacketMut::parse(packet)?;
        let fields = packet.fields();
        let (seq, ts) = (fields.sequence_number, fields.timestamp);
        let step = match self.source {
            Source::Relay(input) if input.ssrc == fields.ssrc => self.classify(input, seq, ts),
            _ => Step::Switch,
        };
        let outcome = match step {
            Step::Stale => return Ok(RelayOutcome::DroppedStale),
            Step::Continue(mut input) => {
                let max_frame = u32::try_from(self.ticks(MAX_FRAME)).unwrap_or(u32::MAX);
                let out_seq = seq.wrapping_add(input.seq_offset);
                let out_ts = ts.wrapping_add(input.ts_offset);
                let seq_delta = seq.wrapping_sub(input.highest_seq) as i16;
                if seq_delta > 0 {
                    let step = ts.wrapping_sub(input.highest_ts);
                    if seq_delta == 1 && step > 0 && step <= max_frame {
                        self.frame_ticks = step;
                    }
                    input.highest_seq = seq;
                    input.highest_ts = ts;
                    if input.young && seq.wrapping_sub(input.first_seq) > self.max_misorder {
                        input.young = false;
                    }
                    self.anchor = Some(Anchor {
                        seq: out_seq,
                        ts: out_ts,
                        min_next_ts: out_ts.wrapping_add(self.frame_ticks),
                        at: now,
                    });
                }
                self.source = Source::Relay(input);
                packet.set_sequence_number(out_seq);
                packet.set_timestamp(out_ts);
                RelayOutcome::Forwarded
            }
            Step::Switch => {
                let out_seq = self.next_seq();
                let out_ts = self.rebased_ts(now);
                self.source = Source::Relay(RelayInput {
                    ssrc: fields.ssrc,
                    seq_offset: out_seq.wrapping_sub(seq),
                    ts_offset: out_ts.wrapping_sub(ts),
                    first_seq: seq,
                    highest_seq: seq,
                    highest_ts: ts,
                    young: true,
                });
                self.anchor = Some(Anchor {
                    seq: out_seq,
                    ts: out_ts,
                    min_next_ts: out_ts.wrapping_add(self.frame_ticks),
                    at: now,
                });
                packet.set_sequence_number(out_seq);
                packet.set_timestamp(out_ts);
                packet.set_marker(true);
                RelayOutcome::SourceSwitched
            }
        };
        packet.set_ssrc(self.out_ssrc);
        Ok(outcome)
    }

    /// Timestamp and marker for the next frame of a generated run that started at `clock`,
    /// due at `now`: right after the media already sent while the clock is within half a
    /// frame of it (a burst of frames sent late counts from their due times, so it stays
    /// continuous); else (frames were skipped, or the source paused) the clock's time in
    /// whole frames past that point, with the marker. A clock behind the media sent (frames
    /// made early) never moves the timestamp back.
    fn continue_generated(&self, clock: GeneratedClock, now: Duration) -> (u32, bool) {
        let Some(anchor) = self.anchor else {
            return (self.rebased_ts(now), true);
        };
        let elapsed = self.ticks(now.saturating_sub(clock.at));
        let by_clock = clock.ts.wrapping_add((elapsed & 0xffff_ffff) as u32);
        // How far the clock is past the end of what was sent (wrapping, signed).
        let lag = i64::from(by_clock.wrapping_sub(anchor.min_next_ts) as i32);
        let frame = i64::from(self.frame_ticks.max(1));
        if 2 * lag <= frame {
            return (anchor.min_next_ts, false);
        }
        let skipped = (lag + frame / 2) / frame * frame;
        let jump = u32::try_from(skipped).unwrap_or(u32::MAX);
        (anchor.min_next_ts.wrapping_add(jump), true)
    }

    /// Header fields for the next packet we generate, carrying `samples` timestamp units of
    /// media, due at `now` on the media clock (when it should go out, even if it goes out
    /// later in a burst); the first one after relayed media, skipped frames or a pause has
    /// the marker set.
    pub fn next_generated(
        &mut self,
        payload_type: u8,
        samples: u32,
        now: Duration,
    ) -> RtpHeaderFields {
        let sequence_number = self.next_seq();
        let (timestamp, marker, clock) = match self.source {
            Source::Generated(clock) => {
                let (timestamp, marker) = self.continue_generated(clock, now);
                (timestamp, marker, clock)
            }
            _ => {
                let timestamp = self.rebased_ts(now);
                let clock = GeneratedClock {
                    ts: timestamp,
                    at: now,
                };
                (timestamp, true, clock)
            }
        };
        let max_frame = u32::try_from(self.ticks(MAX_FRAME)).unwrap_or(u32::MAX);
        if samples > 0 && samples <= max_frame {
            self.frame_ticks = samples;
        }
        self.source = Source::Generated(clock);
        self.anchor = Some(Anchor {
            seq: sequence_number,
            ts: timestamp,
            min_next_ts: timestamp.wrapping_add(samples),
            at: now,
        });
        RtpHeaderFields {
            marker,
            payload_type,
            sequence_number,
            timestamp,
            ssrc: self.out_ssrc,
        }
    }

    /// Header fields for a telephone-event packet we generate (see
    /// [`super::event::EventGenerator`]): `start` for its first packet, `duration` from its
    /// payload. All packets of the event share the start timestamp; media after the event
    /// continues from its end.
    pub fn next_generated_event(
        &mut self,
        payload_type: u8,
        start: bool,
        duration: u16,
        now: Duration,
    ) -> RtpHeaderFields {
        let sequence_number = self.next_seq();
        let (timestamp, marker) = match self.source {
            Source::Event { timestamp } if !start => (timestamp, false),
            Source::Generated(clock) => (self.continue_generated(clock, now).0, true),
            _ => (self.rebased_ts(now), true),
        };
        let end = timestamp.wrapping_add(u32::from(duration));
        self.source = Source::Event { timestamp };
        self.anchor = Some(Anchor {
            seq: sequence_number,
            ts: end,
            min_next_ts: end,
            at: now,
        });
        RtpHeaderFields {
            marker,
            payload_type,
            sequence_number,
            timestamp,
            ssrc: self.out_ssrc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::header::{write_header, RtpPacket};

    const OUT: u32 = 0xaaaa_aaaa;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn packet(ssrc: u32, seq: u16, ts: u32) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        let fields = RtpHeaderFields {
            marker: false,
            payload_type: 0,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
        };
        write_header(&mut bytes, &fields).unwrap();
        bytes[12..].copy_from_slice(&[1, 2, 3, 4]);
        bytes
    }

    /// Relays one packet and returns the outcome and the (seq, ts, marker) that went out.
    fn relay(
        rw: &mut StreamRewriter,
        ssrc: u32,
        seq: u16,
        ts: u32,
        at_ms: u64,
    ) -> (RelayOutcome, (u16, u32, bool)) {
        let mut bytes = packet(ssrc, seq, ts);
        let outcome = rw.relay(&mut bytes, ms(at_ms)).unwrap();
        let out = RtpPacket::parse(&bytes).unwrap();
        if outcome.should_send() {
            assert_eq!(out.ssrc(), OUT);
            assert_eq!(out.payload(), &[1, 2, 3, 4]);
        }
        (
            outcome,
            (out.sequence_number(), out.timestamp(), out.marker()),
        )
    }

    /// Relays one packet that must go out.
    fn send(rw: &mut StreamRewriter, ssrc: u32, seq: u16, ts: u32, at_ms: u64) {
        assert!(relay(rw, ssrc, seq, ts, at_ms).0.should_send());
    }

    fn rewriter() -> StreamRewriter {
        StreamRewriter::new(OUT, 8000, 1000, 50_000)
    }

    #[test]
    fn offsets_keep_loss_and_reordering_visible() {
        let mut rw = rewriter();
        assert_eq!(
            relay(&mut rw, 1, 10, 5000, 0),
            (RelayOutcome::SourceSwitched, (1000, 50_000, true))
        );
        assert_eq!(
            relay(&mut rw, 1, 11, 5160, 20),
            (RelayOutcome::Forwarded, (1001, 50_160, false))
        );
        // 12 and 13 late, 14 first: the gap and the reordering go out as they came.
        assert_eq!(relay(&mut rw, 1, 14, 5640, 80).1, (1004, 50_640, false));
        assert_eq!(relay(&mut rw, 1, 13, 5480, 81).1, (1003, 50_480, false));
        assert_eq!(relay(&mut rw, 1, 12, 5320, 82).1, (1002, 50_320, false));
        assert_eq!(relay(&mut rw, 1, 14, 5640, 83).1, (1004, 50_640, false));
        assert_eq!(rw.last_sequence_number(), Some(1004));
    }

    #[test]
    fn a_new_ssrc_continues_the_numbering_and_the_clock() {
        let mut rw = rewriter();
        for i in 0..5u16 {
            send(
                &mut rw,
                1,
                10 + i,
                5000 + 160 * u32::from(i),
                20 * u64::from(i),
            );
        }
        // Last out: seq 1004, ts 50_640 at 80 ms. A re-INVITE answer 20 ms later.
        assert_eq!(
            relay(&mut rw, 2, 7000, 900_000, 100),
            (RelayOutcome::SourceSwitched, (1005, 50_800, true))
        );
        assert_eq!(
            relay(&mut rw, 2, 7001, 900_160, 120).1,
            (1006, 50_960, false)
        );
        // Another branch after 1.007 s of silence: 8056 ticks, rounded to 50 frames.
        assert_eq!(
            relay(&mut rw, 3, 1, 77, 1127).1,
            (1007, 50_960 + 8000, true)
        );
        // Two sources at the same instant never share a timestamp: at least one frame apart.
        assert_eq!(relay(&mut rw, 4, 1, 0, 1127).1, (1008, 50_960 + 8160, true));
    }

    #[test]
    fn numbering_jumps_within_one_ssrc_are_switches() {
        let mut rw = rewriter();
        send(&mut rw, 1, 10, 5000, 0);
        send(&mut rw, 1, 11, 5160, 20);
        // Sequence jump beyond 1000 forward.
        assert_eq!(
            relay(&mut rw, 1, 5000, 5320, 40),
            (RelayOutcome::SourceSwitched, (1002, 50_320, true))
        );
        assert_eq!(relay(&mut rw, 1, 5001, 5480, 60).1, (1003, 50_480, false));
        // A loss of 999 packets is still loss.
        assert_eq!(
            relay(&mut rw, 1, 6000, 5480 + 999 * 160, 80).1 .0,
            1003 + 999
        );
        // Timestamp going back a minute with the next sequence number: a restarted sender.
        let back = (5480 + 999 * 160u32).wrapping_sub(60 * 8000);
        let (outcome, (seq, _, marker)) = relay(&mut rw, 1, 6001, back, 100);
        assert_eq!(
            (outcome, seq, marker),
            (RelayOutcome::SourceSwitched, 2003, true)
        );
        // An explicit switch (re-INVITE) rebases even when everything looks continuous.
        rw.force_switch();
        assert_eq!(
            relay(&mut rw, 1, 6002, back + 160, 120).0,
            RelayOutcome::SourceSwitched
        );
    }

    #[test]
    fn late_packets_from_before_a_switch_are_dropped() {
        let mut rw = rewriter();
        send(&mut rw, 1, 10, 5000, 0);
        send(&mut rw, 2, 500, 80_000, 20);
        assert_eq!(relay(&mut rw, 2, 502, 80_320, 40).1 .0, 1003);
        assert_eq!(relay(&mut rw, 2, 501, 80_160, 41).1 .0, 1002);
        // 499 predates this input's first packet: its number 1000 was source 1's.
        assert_eq!(
            relay(&mut rw, 2, 499, 79_840, 42).0,
            RelayOutcome::DroppedStale
        );
        // Once the input is well under way, reordering is just reordering again.
        for i in 3..=200u16 {
            send(
                &mut rw,
                2,
                500 + i,
                80_000 + 160 * u32::from(i),
                20 + 20 * u64::from(i),
            );
        }
        assert_eq!(
            relay(&mut rw, 2, 650, 80_000 + 150 * 160, 4100),
            (
                RelayOutcome::Forwarded,
                (1151, 50_000 + 160 + 150 * 160, false)
            )
        );
    }

    #[test]
    fn relayed_and_generated_media_form_one_stream() {
        let mut rw = rewriter();
        send(&mut rw, 1, 10, 5000, 0);
        send(&mut rw, 1, 11, 5160, 20);
        // A prompt starts 20 ms after the last relayed packet.
        let first = rw.next_generated(0, 160, ms(40));
        assert_eq!(
            (
                first.sequence_number,
                first.timestamp,
                first.marker,
                first.ssrc
            ),
            (1002, 50_320, true, OUT)
        );
        // Paced with timer jitter: exact increments, no marker.
        let mut ts = Vec::new();
        for (i, jitter) in [3u64, 0, 7, 1].iter().enumerate() {
            let h = rw.next_generated(0, 160, ms(60 + 20 * i as u64 + jitter));
            assert!(!h.marker);
            ts.push((h.sequence_number, h.timestamp));
        }
        assert_eq!(
            ts,
            vec![
                (1003, 50_480),
                (1004, 50_640),
                (1005, 50_800),
                (1006, 50_960)
            ]
        );
        // Back to the relay 20 ms after the last generated packet (sent at 121 ms).
        assert_eq!(
            relay(&mut rw, 1, 30, 8040, 147),
            (RelayOutcome::SourceSwitched, (1007, 51_120, true))
        );
        assert_eq!(relay(&mut rw, 1, 31, 8200, 167).1, (1008, 51_280, false));
    }

    #[test]
    fn a_pause_in_generated_media_follows_real_time() {
        let mut rw = rewriter();
        let a = rw.next_generated(8, 160, ms(0));
        assert_eq!(
            (a.sequence_number, a.timestamp, a.marker, a.payload_type),
            (1000, 50_000, true, 8)
        );
        let b = rw.next_generated(8, 160, ms(20));
        assert_eq!((b.timestamp, b.marker), (50_160, false));
        // Next prompt two seconds later: timestamp by the clock, marker for the new talkspurt.
        let c = rw.next_generated(8, 160, ms(2020));
        assert_eq!(
            (c.sequence_number, c.timestamp, c.marker),
            (1002, 50_160 + 16_000, true)
        );
        assert_eq!(rw.timestamp_at(ms(2030)), Some(50_160 + 16_080));
    }

    #[test]
    fn generated_media_follows_the_media_clock_through_bursts_and_skips() {
        let mut rw = rewriter();
        let mut out = Vec::new();
        // Frames due every 20 ms: 0, 20, 40 on time; 60 and 80 made late in one burst (each
        // with its due time); 100 and 120 skipped; 140 and 160 on time; 180 sent 9 ms late.
        for due in [0u64, 20, 40, 60, 80, 140, 160, 189] {
            let h = rw.next_generated(0, 160, ms(due));
            out.push((h.sequence_number, h.timestamp, h.marker));
        }
        assert_eq!(
            out,
            vec![
                (1000, 50_000, true),
                (1001, 50_160, false),
                (1002, 50_320, false),
                (1003, 50_480, false),
                (1004, 50_640, false),
                // The clock's time (140 ms after the start), the sequence continuous.
                (1005, 50_000 + 140 * 8, true),
                (1006, 50_000 + 160 * 8, false),
                (1007, 50_000 + 180 * 8, false),
            ]
        );
        // A clock that runs behind (frames made early) never moves the timestamp back.
        let early = rw.next_generated(0, 160, ms(190));
        assert_eq!((early.timestamp, early.marker), (50_000 + 200 * 8, false));
    }

    #[test]
    fn generated_dtmf_shares_one_timestamp_and_media_resumes_after_it() {
        let mut rw = rewriter();
        for i in 0..3u64 {
            rw.next_generated(0, 160, ms(20 * i));
        }
        // Event starts where the next audio frame would: 50_480.
        let start = rw.next_generated_event(101, true, 0, ms(60));
        assert_eq!(
            (start.sequence_number, start.timestamp, start.marker),
            (1003, 50_480, true)
        );
        let mut later = Vec::new();
        for (duration, at) in [
            (400u16, 110u64),
            (800, 160),
            (960, 180),
            (960, 180),
            (960, 180),
        ] {
            let h = rw.next_generated_event(101, false, duration, ms(at));
            later.push((h.sequence_number, h.timestamp, h.marker));
        }
        assert_eq!(
            later,
            vec![
                (1004, 50_480, false),
                (1005, 50_480, false),
                (1006, 50_480, false),
                (1007, 50_480, false),
                (1008, 50_480, false)
            ]
        );
        // Audio 20 ms after the end: event end (50_480 + 960) + 160.
        let audio = rw.next_generated(0, 160, ms(200));
        assert_eq!(
            (audio.sequence_number, audio.timestamp, audio.marker),
            (1009, 51_600, true)
        );
    }

    #[test]
    fn sequence_and_timestamp_wrap_on_both_sides() {
        let mut rw = StreamRewriter::new(OUT, 8000, 65_534, 0xffff_ff00);
        let input = [(65_535u16, 0xffff_ff60u32), (0, 0), (1, 0xa0)];
        let out: Vec<_> = input
            .iter()
            .enumerate()
            .map(|(i, &(seq, ts))| relay(&mut rw, 1, seq, ts, 20 * i as u64).1)
            .collect();
        assert_eq!(
            out,
            vec![
                (65_534, 0xffff_ff00, true),
                (65_535, 0xffff_ffa0, false),
                (0, 0x40, false)
            ]
        );
        // Reordering across the wrap: 3 before 2.
        assert_eq!(relay(&mut rw, 1, 3, 0x1e0, 80).1, (2, 0x180, false));
        assert_eq!(relay(&mut rw, 1, 2, 0x140, 81).1, (1, 0xe0, false));
        assert_eq!(rw.last_sequence_number(), Some(2));
        // A switch right after the wrap continues from the highest.
        assert_eq!(relay(&mut rw, 9, 40_000, 7, 100).1, (3, 0x180 + 160, true));
    }

    #[test]
    fn malformed_input_changes_nothing() {
        let mut rw = rewriter();
        let mut short = [0x80u8, 0, 0, 1, 0, 0];
        assert!(rw.relay(&mut short, ms(0)).is_err());
        let mut v1 = packet(1, 10, 5000);
        v1[0] = 0x40;
        assert_eq!(rw.relay(&mut v1, ms(0)), Err(RtpError::BadVersion(1)));
        assert_eq!(rw.last_sequence_number(), None);
        assert_eq!(relay(&mut rw, 1, 10, 5000, 0).1, (1000, 50_000, true));
    }
}
