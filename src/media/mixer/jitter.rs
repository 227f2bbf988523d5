//! One participant's jitter buffer: packets in, one frame per tick out, in the sample
//! domain (RTP timestamps) so any packetisation (10, 20, 30 ms) plays at the right speed.
//!
//! Storage is a ring of encoded bytes (G.711: one byte per sample) covering
//! `max_delay + 4 frames`, cut into frame slots aligned on the stream's first timestamp, so
//! the frame popped by a tick is one contiguous slot (and, for 20 ms packets, exactly one
//! packet's bytes: a room of two passes them through unchanged).
//!
//! Playout timing: a packet's transit is `arrival - timestamp` (both in samples). Sample
//! `s` is played at `s + offset`; the buffer wants `offset = min transit + target`, where
//! `target = (max transit - min transit) + margin`, both transits over the last few
//! seconds. A packet later than that raises the target at once (grows on late packets);
//! the target decays by 1/160 of a frame per tick, 6 ms a second (shrinks slowly), within
//! `min_delay..=max_delay`. The playout point follows the wanted offset by inserting a
//! frame (stretch, concealed by the caller) or dropping one, preferably where the frame
//! is missing or quiet. A sender's clock drift moves the minimum transit and is followed
//! the same way.
//!
//! Resync (a new stream): a new SSRC; two packets far outside the ring, or one whose
//! sequence number follows the last (a timestamp jump); four late packets in a row (the
//! sender restarted its timeline); or a packet after `JitterParams::idle` without any.
//! Duplicates are recognised by sequence number (a 64-packet window), wrap-around included.

/// Frames of slack in the ring beyond the maximum delay.
const RING_SLACK_FRAMES: usize = 4;
/// Sequence numbers remembered for duplicate detection.
const SEQ_WINDOW: u16 = 64;
/// Late packets in a row that mean the sender's timeline moved back.
const LATE_RESYNC: u32 = 4;
/// Far-out packets in a row that mean a new timeline.
const FAR_RESYNC: u32 = 2;
/// Ticks per transit-statistics bucket (two buckets form the window: 2.5 to 5 s).
const WINDOW_BUCKET_TICKS: u32 = 125;
/// The target delay shrinks by 1/`SHRINK_DIVISOR` of a frame per tick (6.25 ms/s).
const SHRINK_DIVISOR: i64 = 160;

/// Timing parameters, in samples at the mixer's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JitterParams {
    /// Samples per frame (one tick).
    pub(crate) frame: usize,
    /// Target delay before anything is known about the network.
    pub(crate) initial: i64,
    /// Lower bound of the target delay.
    pub(crate) min: i64,
    /// Upper bound of the target delay.
    pub(crate) max: i64,
    /// No packet for this long ends the stream (the next packet starts a new one).
    pub(crate) idle: i64,
}

impl JitterParams {
    fn frame_i64(&self) -> i64 {
        i64::try_from(self.frame).unwrap_or(i64::MAX)
    }

    /// Safety margin above the measured jitter: quantisation to frames and tick jitter.
    fn margin(&self) -> i64 {
        self.frame_i64() / 2
    }
}

/// Counters of one participant's incoming stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterCounters {
    /// Packets stored for playout.
    pub packets: u64,
    /// Packets seen twice (dropped).
    pub duplicates: u64,
    /// Packets that arrived after their time was played (dropped).
    pub late: u64,
    /// Packets outside the buffer that did not start a new stream (dropped).
    pub discarded: u64,
    /// Empty payloads (ignored).
    pub empty: u64,
    /// Times playout restarted on a new stream (new SSRC, timestamp jump, after idle).
    pub resyncs: u64,
    /// Frames played from received audio.
    pub frames_played: u64,
    /// Frames missing at their time (concealed by the mixer).
    pub frames_lost: u64,
    /// Frames inserted to grow the delay (concealed or silent).
    pub frames_stretched: u64,
    /// Frames dropped to shrink the delay.
    pub frames_skipped: u64,
}

/// What a tick takes from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pop {
    /// A complete frame, copied into the caller's buffer.
    Frame,
    /// The frame is missing: conceal it.
    Lost,
    /// A frame inserted to grow the delay: conceal it (or play silence).
    Stretched,
    /// A stream started but nothing has been played yet: silence.
    Waiting,
    /// No stream: silence.
    Idle,
}

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    Stored,
    Duplicate,
    Late,
    Discarded,
    Empty,
}

/// Minimum and maximum transit over two buckets of ticks.
#[derive(Debug, Clone, Copy)]
struct TransitWindow {
    current: (i64, i64),
    previous: (i64, i64),
    ticks_left: u32,
}

impl TransitWindow {
    fn new(transit: i64) -> Self {
        Self {
            current: (transit, transit),
            previous: (transit, transit),
            ticks_left: WINDOW_BUCKET_TICKS,
        }
    }

    fn observe(&mut self, transit: i64) {
        self.current.0 = self.current.0.min(transit);
        self.current.1 = self.current.1.max(transit);
    }

    fn tick(&mut self) {
        self.ticks_left = self.ticks_left.saturating_sub(1);
        if self.ticks_left == 0 {
            self.previous = self.current;
            self.current = (i64::MAX, i64::MIN);
            self.ticks_left = WINDOW_BUCKET_TICKS;
        }
    }

    fn min(&self) -> i64 {
        self.current.0.min(self.previous.0)
    }

    fn max(&self) -> i64 {
        self.current.1.max(self.previous.1)
    }
}

/// The state of the stream being played.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// The extended timestamp at ring index 0 (frame slots are aligned on it).
    origin: i64,
    /// Extended timestamp of the next frame to pop.
    next: i64,
    transit: TransitWindow,
    last_arrival: i64,
    highest_seq: u16,
    /// Bit i: sequence number `highest_seq - i` was seen.
    seen: u64,
    far_in_a_row: u32,
    late_in_a_row: u32,
    /// A real frame has been played (losses before it are not losses).
    playing: bool,
}

/// One participant's jitter buffer.
#[derive(Debug, Clone)]
pub(crate) struct JitterBuffer {
    params: JitterParams,
    /// The code of silence in the stream's codec (fills empty ring slots).
    silence: u8,
    ring: Box<[u8]>,
    /// Samples present in each frame slot.
    fill: Box<[u16]>,
    stream: Option<Stream>,
    /// Wanted playout delay above the minimum transit, in samples.
    target: i64,
    counters: JitterCounters,
}

impl JitterBuffer {
    /// An empty buffer; `silence` is the codec's code for a zero sample.
    pub(crate) fn new(params: JitterParams, silence: u8) -> Self {
        let frame = params.frame.max(1);
        let frame_i64 = i64::try_from(frame).unwrap_or(i64::MAX);
        let delay_frames = usize::try_from(params.max.max(0) / frame_i64).unwrap_or(0) + 1;
        let slots = delay_frames + RING_SLACK_FRAMES;
        let params = JitterParams { frame, ..params };
        Self {
            params,
            silence,
            ring: vec![silence; slots * frame].into_boxed_slice(),
            fill: vec![0; slots].into_boxed_slice(),
            stream: None,
            target: params.initial.clamp(params.min, params.max.max(params.min)),
            counters: JitterCounters::default(),
        }
    }

    pub(crate) fn counters(&self) -> &JitterCounters {
        &self.counters
    }

    /// The wanted playout delay above the fastest packets, in samples.
    pub(crate) fn target_delay(&self) -> i64 {
        self.target
    }

    /// Whether a stream is being received.
    pub(crate) fn has_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// Forgets the stream (a new codec: the stored bytes mean nothing any more).
    pub(crate) fn reset(&mut self, silence: u8) {
        self.silence = silence;
        self.stream = None;
        self.clear_ring();
    }

    /// The delay the measured jitter asks for, within the bounds.
    fn needed_delay(&self, transit: &TransitWindow) -> i64 {
        transit
            .max()
            .saturating_sub(transit.min())
            .saturating_add(self.params.margin())
            .clamp(self.params.min, self.params.max.max(self.params.min))
    }

    fn capacity(&self) -> i64 {
        i64::try_from(self.ring.len()).unwrap_or(i64::MAX)
    }

    fn clear_ring(&mut self) {
        self.ring.fill(self.silence);
        self.fill.fill(0);
    }

    /// Ring index of extended timestamp `ext` (frame-aligned when `ext - origin` is).
    fn index(&self, origin: i64, ext: i64) -> usize {
        // rem_euclid of a positive capacity is in 0..capacity.
        usize::try_from((ext - origin).rem_euclid(self.capacity().max(1))).unwrap_or(0)
    }

    fn slot_of(&self, origin: i64, ext: i64) -> usize {
        self.index(origin, ext) / self.params.frame
    }

    fn slot_is_full(&self, slot: usize) -> bool {
        self.fill
            .get(slot)
            .is_some_and(|&n| usize::from(n) >= self.params.frame)
    }

    fn slot_bytes(&self, slot: usize) -> &[u8] {
        let frame = self.params.frame;
        self.ring
            .get(slot * frame..(slot + 1) * frame)
            .unwrap_or_default()
    }

    fn clear_slot(&mut self, slot: usize) {
        let frame = self.params.frame;
        if let Some(bytes) = self.ring.get_mut(slot * frame..(slot + 1) * frame) {
            bytes.fill(self.silence);
        }
        if let Some(n) = self.fill.get_mut(slot) {
            *n = 0;
        }
    }

    /// Stores one packet that arrived at `arrival` (samples since the mixer's origin).
    pub(crate) fn push(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        payload: &[u8],
        arrival: i64,
    ) -> PushOutcome {
        if payload.is_empty() {
            self.counters.empty += 1;
            return PushOutcome::Empty;
        }
        let Some(mut stream) = self.stream else {
            return self.resync(ssrc, seq, timestamp, payload, arrival, false);
        };
        if stream.ssrc != ssrc {
            return self.resync(ssrc, seq, timestamp, payload, arrival, true);
        }
        let len = i64::try_from(payload.len()).unwrap_or(i64::MAX);
        // Timestamps compare within +-2^31 of the playout point: wrap-around is free.
        let ext = stream.next + i64::from(timestamp.wrapping_sub(stream.next as u32) as i32);
        let offset = ext - stream.next;
        let capacity = self.capacity();
        let seq_step = seq.wrapping_sub(stream.highest_seq) as i16;
        if offset >= capacity || offset + len <= -capacity {
            stream.far_in_a_row += 1;
            if seq_step == 1 || stream.far_in_a_row >= FAR_RESYNC {
                return self.resync(ssrc, seq, timestamp, payload, arrival, true);
            }
            self.stream = Some(stream);
            self.counters.discarded += 1;
            return PushOutcome::Discarded;
        }
        stream.far_in_a_row = 0;
        if !Self::mark_seen(&mut stream, seq, seq_step) {
            self.stream = Some(stream);
            self.counters.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        stream.last_arrival = arrival;
        // A packet later than the longest delay we would use cannot be saved by growing:
        // it is a timeline that moved, not jitter to learn from.
        if offset >= -self.params.max {
            stream.transit.observe(arrival.saturating_sub(ext));
            self.target = self.target.max(self.needed_delay(&stream.transit));
        }
        if offset + len <= 0 {
            stream.late_in_a_row += 1;
            self.counters.late += 1;
            if stream.late_in_a_row >= LATE_RESYNC {
                return self.resync(ssrc, seq, timestamp, payload, arrival, true);
            }
            self.stream = Some(stream);
            return PushOutcome::Late;
        }
        stream.late_in_a_row = 0;
        self.stream = Some(stream);
        // Only what is still ahead of the playout point, and fits the ring.
        let skip = usize::try_from((-offset).max(0)).unwrap_or(0);
        let room = usize::try_from(capacity - offset.max(0)).unwrap_or(0);
        let first = stream.next + offset.max(0);
        let bytes = payload.get(skip..).unwrap_or_default();
        let bytes = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        self.write(stream.origin, first, bytes);
        self.counters.packets += 1;
        PushOutcome::Stored
    }

    /// Duplicate check and window update; false for a duplicate.
    fn mark_seen(stream: &mut Stream, seq: u16, step: i16) -> bool {
        if step > 0 {
            let shift = u32::from(step.unsigned_abs());
            stream.seen = if shift >= u64::BITS {
                1
            } else {
                (stream.seen << shift) | 1
            };
            stream.highest_seq = seq;
            return true;
        }
        let behind = step.unsigned_abs();
        if behind >= SEQ_WINDOW {
            // Too old to remember: the playout window decides (late or not).
            return true;
        }
        let bit = 1u64 << behind;
        if stream.seen & bit != 0 {
            return false;
        }
        stream.seen |= bit;
        true
    }

    fn write(&mut self, origin: i64, first: i64, bytes: &[u8]) {
        let frame = self.params.frame;
        let mut done = 0;
        while done < bytes.len() {
            let ext = first + i64::try_from(done).unwrap_or(i64::MAX);
            let index = self.index(origin, ext);
            let slot = index / frame;
            let run = (frame - index % frame).min(bytes.len() - done);
            let (Some(dst), Some(src)) = (
                self.ring.get_mut(index..index + run),
                bytes.get(done..done + run),
            ) else {
                break;
            };
            dst.copy_from_slice(src);
            if let Some(n) = self.fill.get_mut(slot) {
                let added = u16::try_from(run).unwrap_or(u16::MAX);
                *n = n.saturating_add(added);
            }
            done += run;
        }
    }

    fn resync(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        payload: &[u8],
        arrival: i64,
        counted: bool,
    ) -> PushOutcome {
        if counted {
            // The target delay is kept: the network path is the same.
            self.counters.resyncs += 1;
        }
        self.clear_ring();
        let frame = self.params.frame_i64().max(1);
        let origin = i64::from(timestamp);
        // The first packet plays one target delay from now (whole frames, rounded up).
        let lead = (self.target + frame - 1) / frame * frame;
        let stream = Stream {
            ssrc,
            origin,
            next: origin - lead,
            transit: TransitWindow::new(arrival.saturating_sub(origin)),
            last_arrival: arrival,
            highest_seq: seq,
            seen: 1,
            far_in_a_row: 0,
            late_in_a_row: 0,
            playing: false,
        };
        self.stream = Some(stream);
        let room = usize::try_from(self.capacity() - lead).unwrap_or(0);
        let bytes = payload.get(..room.min(payload.len())).unwrap_or_default();
        self.write(origin, origin, bytes);
        self.counters.packets += 1;
        PushOutcome::Stored
    }

    /// Takes the frame due at `now` (samples since the mixer's origin) into `out` (one
    /// frame long). `quiet(bytes)` says whether a stored frame may be dropped or delayed
    /// unheard when the delay must change.
    pub(crate) fn pop(
        &mut self,
        now: i64,
        out: &mut [u8],
        quiet: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Pop {
        let Some(mut stream) = self.stream else {
            return Pop::Idle;
        };
        if now.saturating_sub(stream.last_arrival) > self.params.idle {
            self.stream = None;
            self.clear_ring();
            return Pop::Idle;
        }
        let frame = self.params.frame_i64();
        stream.transit.tick();
        let needed = self.needed_delay(&stream.transit);
        if needed < self.target {
            let step = (frame / SHRINK_DIVISOR).max(1);
            self.target = (self.target - step).max(needed);
        }
        let wanted_next = now.saturating_sub(stream.transit.min().saturating_add(self.target));
        let early = stream.next.saturating_sub(wanted_next);
        let mut slot = self.slot_of(stream.origin, stream.next);
        let mut full = self.slot_is_full(slot);

        // Too little delay: insert a frame (not consuming this one).
        if early > frame / 4 && (!full || early > 2 * frame || quiet(self.slot_bytes(slot))) {
            self.stream = Some(stream);
            if !stream.playing {
                return Pop::Waiting;
            }
            self.counters.frames_stretched += 1;
            return Pop::Stretched;
        }
        // Too much delay: drop one frame.
        let late = early.saturating_neg();
        if late > frame + frame / 2 && (!full || late > 4 * frame || quiet(self.slot_bytes(slot))) {
            self.clear_slot(slot);
            stream.next += frame;
            self.counters.frames_skipped += 1;
            slot = self.slot_of(stream.origin, stream.next);
            full = self.slot_is_full(slot);
        }

        let result = if full {
            let frame_len = self.params.frame;
            if let Some(dst) = out.get_mut(..frame_len) {
                dst.copy_from_slice(self.slot_bytes(slot));
            }
            stream.playing = true;
            self.counters.frames_played += 1;
            Pop::Frame
        } else if stream.playing {
            self.counters.frames_lost += 1;
            Pop::Lost
        } else {
            Pop::Waiting
        };
        self.clear_slot(slot);
        stream.next += frame;
        self.stream = Some(stream);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 160;
    const MS: i64 = 8;

    fn params() -> JitterParams {
        JitterParams {
            frame: FRAME,
            initial: 40 * MS,
            min: 20 * MS,
            max: 200 * MS,
            idle: 500 * MS,
        }
    }

    /// A payload whose bytes all carry `tag` (to recognise which packet was played).
    fn payload(tag: u8) -> [u8; FRAME] {
        [tag; FRAME]
    }

    struct Sim {
        jb: JitterBuffer,
        now: i64,
        out: [u8; FRAME],
    }

    impl Sim {
        fn new() -> Self {
            Self {
                jb: JitterBuffer::new(params(), 0xFF),
                now: 0,
                out: [0; FRAME],
            }
        }

        fn push(&mut self, seq: u16, ts: u32, tag: u8, delay_ms: i64) -> PushOutcome {
            self.jb
                .push(7, seq, ts, &payload(tag), self.now + delay_ms * MS)
        }

        /// Advances 20 ms and pops; the tag of the frame played, or what happened.
        fn tick(&mut self) -> Result<u8, Pop> {
            self.now += 20 * MS;
            self.out = [0; FRAME];
            match self.jb.pop(self.now, &mut self.out, &mut |_| false) {
                Pop::Frame => {
                    assert!(self.out.iter().all(|&b| b == self.out[0]), "one packet");
                    Ok(self.out[0])
                }
                other => Err(other),
            }
        }
    }

    #[test]
    fn a_steady_stream_plays_in_order_after_the_initial_delay() {
        let mut sim = Sim::new();
        let mut played = Vec::new();
        for i in 0..100u16 {
            sim.push(i, u32::from(i) * 160, i as u8, 1);
            played.push(sim.tick());
        }
        let first = played.iter().position(Result::is_ok).unwrap();
        assert!(first <= 3, "starts after about 40 ms: {first}");
        for (n, result) in played.iter().enumerate().skip(first) {
            assert_eq!(*result, Ok((n - first) as u8));
        }
        assert!(played[..first].iter().all(|r| *r == Err(Pop::Waiting)));
        let counters = sim.jb.counters();
        assert_eq!(counters.frames_lost, 0);
        assert_eq!(counters.late, 0);
        assert_eq!(counters.resyncs, 0);
        // Shrinks towards the minimum on a perfect network.
        assert!(sim.jb.target_delay() < 40 * MS);
        for i in 100..2000u16 {
            sim.push(i, u32::from(i) * 160, i as u8, 1);
            assert!(sim.tick().is_ok());
        }
        assert_eq!(sim.jb.target_delay(), 20 * MS);
    }

    #[test]
    fn reordered_packets_play_in_order_and_duplicates_are_dropped() {
        let mut sim = Sim::new();
        // Pairs swapped: 1 0 3 2 5 4 ... and every packet sent twice.
        let order: Vec<u16> = (0..60u16).map(|i| i ^ 1).collect();
        let mut played = Vec::new();
        for &i in &order {
            assert_eq!(
                sim.push(i, u32::from(i) * 160, i as u8, 0),
                PushOutcome::Stored
            );
            assert_eq!(
                sim.push(i, u32::from(i) * 160, i as u8, 0),
                PushOutcome::Duplicate
            );
            if let Ok(tag) = sim.tick() {
                played.push(tag);
            }
        }
        let expected: Vec<u8> = (0..played.len() as u8).collect();
        assert_eq!(played, expected);
        assert_eq!(sim.jb.counters().duplicates, 60);
        assert_eq!(sim.jb.counters().frames_lost, 0);
    }

    #[test]
    fn lost_packets_are_reported_once_each() {
        let mut sim = Sim::new();
        let mut results = Vec::new();
        for i in 0..40u16 {
            if !(10..13).contains(&i) {
                sim.push(i, u32::from(i) * 160, i as u8, 0);
            }
            results.push(sim.tick());
        }
        assert_eq!(sim.jb.counters().frames_lost, 3);
        let lost = results.iter().filter(|r| **r == Err(Pop::Lost)).count();
        assert_eq!(lost, 3);
        assert!(results.contains(&Ok(13)) && results.contains(&Ok(9)));
    }

    #[test]
    fn late_packets_are_dropped_and_grow_the_delay() {
        let mut sim = Sim::new();
        for i in 0..50u16 {
            sim.push(i, u32::from(i) * 160, i as u8, 0);
            let _ = sim.tick();
        }
        let before = sim.jb.target_delay();
        // Packet 50 is 100 ms late: by then its frame has been played (concealed).
        let mut late_result = None;
        for i in 51..56u16 {
            sim.push(i, u32::from(i) * 160, i as u8, 0);
            let _ = sim.tick();
            if i == 55 {
                late_result = Some(sim.push(50, 50 * 160, 50, 0));
            }
        }
        assert_eq!(late_result, Some(PushOutcome::Late));
        assert_eq!(sim.jb.counters().late, 1);
        assert!(
            sim.jb.target_delay() >= 100 * MS,
            "grew: {before} -> {}",
            sim.jb.target_delay()
        );
        // Then the same lateness no longer loses anything.
        let lost_before = sim.jb.counters().frames_lost;
        let late_before = sim.jb.counters().late;
        for i in 56..200u16 {
            let delay = if i % 10 == 0 { 90 } else { 0 };
            sim.push(i, u32::from(i) * 160, i as u8, delay);
            let _ = sim.tick();
        }
        assert_eq!(sim.jb.counters().late, late_before);
        assert!(sim.jb.counters().frames_lost - lost_before <= 6);
        assert!(sim.jb.target_delay() <= 200 * MS);
    }

    #[test]
    fn a_network_freeze_teaches_the_delay() {
        let mut sim = Sim::new();
        let mut held = Vec::new();
        let mut lost_per_freeze = Vec::new();
        for i in 0..400u16 {
            // 160 ms freezes: packets held, then delivered at once.
            let frozen = (100..108).contains(&i) || (200..208).contains(&i);
            if frozen {
                held.push(i);
            } else {
                for j in held.drain(..) {
                    sim.push(j, u32::from(j) * 160, j as u8, 0);
                }
                sim.push(i, u32::from(i) * 160, i as u8, 0);
            }
            let _ = sim.tick();
            if i == 150 || i == 250 {
                let counters = sim.jb.counters();
                lost_per_freeze.push(counters.frames_lost + counters.late);
            }
            if i == 150 {
                assert!(
                    sim.jb.target_delay() >= 150 * MS,
                    "{}",
                    sim.jb.target_delay()
                );
            }
        }
        let first = lost_per_freeze[0];
        let second = lost_per_freeze[1] - first;
        assert!(second < first, "first freeze {first}, second {second}");
        assert!(second <= 1, "the second freeze is absorbed: {second}");
        // The burst after the first freeze was late four times in a row: playout restarted
        // on it (rather than dropping all of it).
        assert_eq!(sim.jb.counters().resyncs, 1);
    }

    #[test]
    fn the_delay_is_bounded_and_shrinks_slowly() {
        let mut sim = Sim::new();
        for i in 0..20u16 {
            // A 500 ms spike: beyond the bound.
            let delay = if i == 10 { 500 } else { 0 };
            sim.push(i, u32::from(i) * 160, i as u8, delay);
            let _ = sim.tick();
        }
        assert_eq!(sim.jb.target_delay(), 200 * MS);
        for i in 20..70u16 {
            sim.push(i, u32::from(i) * 160, i as u8, 0);
            let _ = sim.tick();
        }
        // One second later it has not collapsed.
        assert!(sim.jb.target_delay() > 150 * MS);
        for i in 70..2000u16 {
            sim.push(i, u32::from(i) * 160, i as u8, 0);
            let _ = sim.tick();
        }
        assert_eq!(sim.jb.target_delay(), 20 * MS);
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let mut sim = Sim::new();
        let mut played = Vec::new();
        let ts0 = u32::MAX - 160 * 20 + 1;
        for i in 0..60u16 {
            let seq = 65_520u16.wrapping_add(i);
            let ts = ts0.wrapping_add(u32::from(i) * 160);
            // Swap neighbours to exercise reordering across the wrap.
            let j = i ^ 1;
            let (seq_j, ts_j) = (
                65_520u16.wrapping_add(j),
                ts0.wrapping_add(u32::from(j) * 160),
            );
            let _ = (seq, ts);
            assert_eq!(sim.push(seq_j, ts_j, j as u8, 0), PushOutcome::Stored);
            assert_eq!(sim.push(seq_j, ts_j, j as u8, 0), PushOutcome::Duplicate);
            if let Ok(tag) = sim.tick() {
                played.push(tag);
            }
        }
        let expected: Vec<u8> = (0..played.len() as u8).collect();
        assert!(played.len() > 50);
        assert_eq!(played, expected);
        assert_eq!(sim.jb.counters().resyncs, 0);
    }

    #[test]
    fn a_new_ssrc_or_a_timestamp_jump_resyncs() {
        let mut sim = Sim::new();
        for i in 0..20u16 {
            sim.push(i, u32::from(i) * 160, 1, 0);
            let _ = sim.tick();
        }
        // Same SSRC, sequence continues, timestamp jumps by a minute.
        let jump = 8000 * 60;
        let mut tags = Vec::new();
        for i in 20..40u16 {
            sim.push(i, jump + u32::from(i) * 160, 2, 0);
            tags.push(sim.tick());
        }
        assert_eq!(sim.jb.counters().resyncs, 1);
        assert!(tags.iter().filter(|t| **t == Ok(2)).count() >= 15);
        // A new SSRC with unrelated numbering.
        let mut tags = Vec::new();
        for i in 0..20u16 {
            sim.jb.push(
                99,
                5000 + i,
                123_456 + u32::from(i) * 160,
                &payload(3),
                sim.now,
            );
            tags.push(sim.tick());
        }
        assert_eq!(sim.jb.counters().resyncs, 2);
        assert!(tags.iter().filter(|t| **t == Ok(3)).count() >= 15);
        // A single wild packet (sequence not following) is discarded, not a resync.
        assert_eq!(
            sim.jb.push(99, 9, 999_999_999, &payload(4), sim.now),
            PushOutcome::Discarded
        );
        assert_eq!(sim.jb.counters().resyncs, 2);
    }

    #[test]
    fn a_sender_that_restarts_its_timeline_is_followed() {
        let mut sim = Sim::new();
        for i in 0..30u16 {
            sim.push(i, u32::from(i) * 160, 1, 0);
            let _ = sim.tick();
        }
        // Same SSRC, timestamps go back 300 ms (and sequence numbers continue).
        let mut tags = Vec::new();
        for i in 30..60u16 {
            sim.push(i, (u32::from(i) - 15) * 160, 2, 0);
            tags.push(sim.tick());
        }
        assert_eq!(sim.jb.counters().resyncs, 1);
        assert!(
            tags.iter().filter(|t| **t == Ok(2)).count() >= 20,
            "{tags:?}"
        );
    }

    #[test]
    fn silence_then_idle_then_a_fresh_start() {
        let mut sim = Sim::new();
        for i in 0..10u16 {
            sim.push(i, u32::from(i) * 160, 1, 0);
            let _ = sim.tick();
        }
        let mut results = Vec::new();
        for _ in 0..40 {
            results.push(sim.tick());
        }
        assert!(results.contains(&Err(Pop::Idle)));
        assert!(!sim.jb.has_stream());
        let lost = sim.jb.counters().frames_lost;
        assert!(lost < 30, "idle stops counting losses: {lost}");
        // Sequence continues after the pause, timestamps too: a fresh start.
        for i in 10..30u16 {
            sim.push(i, u32::from(i + 50) * 160, 2, 0);
            let _ = sim.tick();
        }
        assert!(sim.jb.has_stream());
        assert!(sim.jb.counters().frames_played > 20);
    }

    #[test]
    fn other_packet_sizes_play_at_the_right_speed() {
        for ptime_ms in [10u32, 30, 60] {
            let mut sim = Sim::new();
            let samples = ptime_ms * 8;
            let bytes = vec![0x55u8; samples as usize];
            let mut frames = 0;
            let mut sent_ms = 0u32;
            let mut seq = 0u16;
            for _ in 0..300 {
                // Send everything due by this tick's time.
                while i64::from(sent_ms) * MS <= sim.now {
                    sim.jb.push(1, seq, seq as u32 * samples, &bytes, sim.now);
                    seq = seq.wrapping_add(1);
                    sent_ms += ptime_ms;
                }
                if sim.tick().is_ok() {
                    frames += 1;
                }
            }
            let counters = sim.jb.counters();
            assert!(
                frames >= 290,
                "{ptime_ms} ms: {frames} frames, {counters:?}"
            );
            assert_eq!(counters.late, 0, "{ptime_ms} ms");
        }
    }

    #[test]
    fn odd_and_empty_payloads_do_not_break_anything() {
        let mut jb = JitterBuffer::new(params(), 0xD5);
        assert_eq!(jb.push(1, 0, 0, &[], 0), PushOutcome::Empty);
        assert!(!jb.has_stream());
        let huge = vec![1u8; 100_000];
        assert_eq!(jb.push(1, 0, 0, &huge, 0), PushOutcome::Stored);
        assert_eq!(jb.push(1, 1, 3, &[1, 2, 3], 0), PushOutcome::Stored);
        assert_eq!(jb.push(1, 2, 7, &[9], 0), PushOutcome::Stored);
        let mut out = [0u8; FRAME];
        let mut short = [0u8; 3];
        for tick in 1..100 {
            let _ = jb.pop(tick * 160, &mut out, &mut |_| true);
            let _ = jb.pop(tick * 160, &mut short, &mut |_| false);
        }
        // Time going backwards.
        assert_ne!(
            jb.push(1, 3, 1000, &[1; 160], -1_000_000),
            PushOutcome::Empty
        );
        let _ = jb.pop(i64::MIN / 2, &mut out, &mut |_| false);
        let _ = jb.pop(i64::MAX / 2, &mut out, &mut |_| false);
        jb.reset(0xFF);
        assert!(!jb.has_stream());
    }
}
