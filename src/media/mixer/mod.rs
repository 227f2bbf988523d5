//! The conference mixer (issue 7): rooms of participants, sans-IO. No sockets, no clock:
//! time is a [`Duration`] since any fixed origin (the relay's and driver's convention).
//!
//! Inputs:
//! - [`Mixer::push`]: an RTP audio payload of a participant (its SSRC, sequence number,
//!   timestamp, bytes in the participant's codec) as it arrives, with its arrival time.
//!   Only audio: telephone-events and comfort noise are the caller's business.
//! - [`Mixer::tick`]: once per [`FRAME_DURATION`] for ALL rooms. Each participant's jitter
//!   buffer gives one frame (received, concealed or silence); each room then produces one
//!   encoded frame per participant through `out(participant, payload)`. Rooms of one hear
//!   `music(room, samples)`; rooms of two are relayed without mixing; larger rooms mix the
//!   loudest [`MixerConfig::max_talkers`] unmuted talkers, everyone hearing the sum minus
//!   themselves (see `room`).
//! - Control: rooms and participants come and go, [`Mixer::set_muted`],
//!   [`Mixer::set_codec`], [`Mixer::inject`] (a frame of audio, e.g. an entry beep, for a
//!   room or one participant at the next tick). Every change applies at the next tick.
//!
//! Outputs: the payloads (the caller adds RTP headers, e.g. with its `StreamRewriter`),
//! and per-participant state for the CLI: [`Mixer::talking`], [`Mixer::status`].
//!
//! Cost: participants live in a slab indexed by id (no hashing); every buffer is allocated
//! at join or room creation, and `tick` allocates nothing (it only writes into those
//! buffers). A participant nobody hears is never decoded: its energy comes from its G.711
//! bytes by table, and it gets the room's shared mix, encoded once per codec.
//!
//! Rates: the mixer runs at [`MixerConfig::sample_rate`] (8 kHz today, 160-sample frames);
//! a participant joins only with a codec decoded at that rate (PCMU, PCMA). A 16 kHz mixer
//! needs a wideband codec (or resampling) at join, nothing else.

mod conceal;
mod jitter;
mod participant;
mod room;
mod talker;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::media::codec::Codec;
use crate::media::rtp::RtpPacket;

pub use jitter::JitterCounters;

use jitter::JitterParams;
use participant::{silence_code, Participant, TickContext};
use room::{participant, Room, RoomContext, SilenceFrames};
use talker::{dbov_to_mean_square, mean_square_to_dbov, EnergyTables};

/// The mixing period: one frame per participant per tick.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Frames per second at [`FRAME_DURATION`].
const FRAMES_PER_SECOND: u32 = 50;

/// A room, valid until it is closed (a stale id never addresses a later room).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

impl RoomId {
    /// A small dense index (its slot, reused once it is closed), for the caller's own
    /// per-room data in a `Vec` (see [`ParticipantId::index`]).
    pub fn index(self) -> usize {
        usize::try_from(self.0 & u64::from(u32::MAX)).unwrap_or(usize::MAX)
    }
}

/// A participant, valid until it leaves (a stale id never addresses a later one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

impl ParticipantId {
    /// A small dense index (its slot, reused once it has left), so a caller can keep its
    /// own per-participant data (e.g. the RTP leg to send on) in a `Vec` instead of a map.
    pub fn index(self) -> usize {
        usize::try_from(self.0 & u64::from(u32::MAX)).unwrap_or(usize::MAX)
    }
}

/// Tunables of the mixer.
#[derive(Debug, Clone, PartialEq)]
pub struct MixerConfig {
    /// Internal sample rate in Hz (8000 today; frames are [`FRAME_DURATION`] long).
    pub sample_rate: u32,
    /// At most this many talkers are mixed (the loudest active ones).
    pub max_talkers: usize,
    /// A frame at or above this level (dBov) is speech.
    pub vad_threshold_dbov: f32,
    /// A talker stays active this long after its last frame of speech.
    pub hangover: Duration,
    /// Jitter buffer delay before anything is known about a stream's network.
    pub initial_delay: Duration,
    /// Lower bound of the adaptive jitter buffer delay.
    pub min_delay: Duration,
    /// Upper bound of the adaptive jitter buffer delay.
    pub max_delay: Duration,
    /// No packet for this long ends a stream (the next one starts afresh, uncounted).
    pub idle_timeout: Duration,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            sample_rate: 8000,
            max_talkers: 3,
            vad_threshold_dbov: -40.0,
            hangover: Duration::from_millis(200),
            initial_delay: Duration::from_millis(40),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(500),
        }
    }
}

/// One RTP audio packet's fields the mixer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpAudio<'a> {
    /// The sender's SSRC (a new one restarts the jitter buffer).
    pub ssrc: u32,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp (at the codec's clock rate, equal to the mixer's for G.711).
    pub timestamp: u32,
    /// The encoded audio in the participant's codec.
    pub payload: &'a [u8],
}

impl<'a> RtpAudio<'a> {
    /// The fields of a parsed RTP packet.
    pub fn from_packet(packet: &RtpPacket<'a>) -> Self {
        Self {
            ssrc: packet.ssrc(),
            sequence: packet.sequence_number(),
            timestamp: packet.timestamp(),
            payload: packet.payload(),
        }
    }
}

/// Where injected audio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectTarget {
    /// Everyone in the room.
    Room(RoomId),
    /// One participant only.
    Participant(ParticipantId),
}

/// A participant as the CLI shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantStatus {
    /// The room it is in.
    pub room: RoomId,
    /// The codec it sends and receives.
    pub codec: Codec,
    /// Muted: never mixed.
    pub muted: bool,
    /// Voice activity (with hangover), muted or not.
    pub talking: bool,
    /// The others heard it in the last tick.
    pub heard: bool,
    /// Smoothed level of what it sends, dBov.
    pub level_dbov: f32,
    /// A stream is being received (packets within the idle timeout).
    pub receiving: bool,
    /// The jitter buffer's current target delay.
    pub playout_delay: Duration,
    /// Its incoming stream's counters.
    pub counters: JitterCounters,
}

/// Entries addressed by generation-tagged ids: a stale id never reaches a reused slot.
#[derive(Debug)]
struct Slab<T> {
    entries: Vec<Option<T>>,
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
        }
    }

    fn split(id: u64) -> (u32, usize) {
        // High half: generation, low half: slot.
        ((id >> 32) as u32, (id & u64::from(u32::MAX)) as usize)
    }

    /// Inserts what `make(id, slot)` builds; `None` when the slots are exhausted.
    fn insert_with(&mut self, make: impl FnOnce(u64, u32) -> T) -> Option<u64> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.entries.len()).ok()?;
                self.entries.push(None);
                self.generations.push(0);
                slot
            }
        };
        let index = usize::try_from(slot).ok()?;
        let generation = self.generations.get_mut(index)?;
        // Generation 0 is never handed out, so `0` is never a valid id.
        *generation = generation.wrapping_add(1).max(1);
        let id = (u64::from(*generation) << 32) | u64::from(slot);
        *self.entries.get_mut(index)? = Some(make(id, slot));
        Some(id)
    }

    fn slot_of(&self, id: u64) -> Option<usize> {
        let (generation, slot) = Self::split(id);
        let current = *self.generations.get(slot)?;
        (current == generation && self.entries.get(slot)?.is_some()).then_some(slot)
    }

    fn get(&self, id: u64) -> Option<&T> {
        self.entries.get(self.slot_of(id)?)?.as_ref()
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let slot = self.slot_of(id)?;
        self.entries.get_mut(slot)?.as_mut()
    }

    fn remove(&mut self, id: u64) -> Option<T> {
        let slot = self.slot_of(id)?;
        let entry = self.entries.get_mut(slot)?.take();
        self.free.push(u32::try_from(slot).ok()?);
        entry
    }
}

/// The conference mixer: every room, every participant, one tick for all.
#[derive(Debug)]
pub struct Mixer {
    config: MixerConfig,
    frame_len: usize,
    jitter: JitterParams,
    threshold: u32,
    hangover_frames: u32,
    tables: EnergyTables,
    silence: SilenceFrames,
    rooms: Slab<Room>,
    participants: Slab<Participant>,
}

impl Mixer {
    /// A mixer with no rooms. Out-of-range settings are brought into range (rate 8..48
    /// kHz in steps of 50 Hz, at least one talker, `min_delay <= max_delay`).
    pub fn new(config: MixerConfig) -> Mixer {
        let mut config = config;
        config.sample_rate =
            (config.sample_rate.clamp(8000, 48_000) / FRAMES_PER_SECOND) * FRAMES_PER_SECOND;
        config.max_talkers = config.max_talkers.clamp(1, 64);
        config.max_delay = config.max_delay.max(config.min_delay);
        let frame_len = usize::try_from(config.sample_rate / FRAMES_PER_SECOND).unwrap_or(160);
        let rate = config.sample_rate;
        let jitter = JitterParams {
            frame: frame_len,
            initial: duration_to_samples(config.initial_delay, rate),
            min: duration_to_samples(config.min_delay, rate),
            max: duration_to_samples(config.max_delay, rate),
            idle: duration_to_samples(config.idle_timeout, rate),
        };
        let frame_ms = FRAME_DURATION.as_millis();
        let hangover_frames =
            u32::try_from(config.hangover.as_millis().div_ceil(frame_ms)).unwrap_or(u32::MAX);
        let silence = [
            vec![silence_code(Codec::Pcmu); frame_len].into_boxed_slice(),
            vec![silence_code(Codec::Pcma); frame_len].into_boxed_slice(),
        ];
        Mixer {
            threshold: dbov_to_mean_square(config.vad_threshold_dbov),
            config,
            frame_len,
            jitter,
            hangover_frames,
            tables: EnergyTables::new(),
            silence,
            rooms: Slab::new(),
            participants: Slab::new(),
        }
    }

    /// The configuration in effect (after range corrections).
    pub fn config(&self) -> &MixerConfig {
        &self.config
    }

    /// Samples in one frame, in and out ([`FRAME_DURATION`] at the sample rate).
    pub fn frame_samples(&self) -> usize {
        self.frame_len
    }

    /// Opens an empty room.
    pub fn open_room(&mut self) -> RoomId {
        let (max_talkers, frame_len) = (self.config.max_talkers, self.frame_len);
        let id = self
            .rooms
            .insert_with(|id, _| Room::new(RoomId(id), max_talkers, frame_len));
        // Four billion rooms at once are not a practical concern: 0 is never valid.
        RoomId(id.unwrap_or(0))
    }

    /// Closes a room; its participants leave with it. False for an unknown room.
    pub fn close_room(&mut self, room: RoomId) -> bool {
        let Some(closed) = self.rooms.remove(room.0) else {
            return false;
        };
        for slot in closed.members {
            let id = participant(&self.participants.entries, slot).map(|p| p.id);
            if let Some(id) = id {
                self.participants.remove(id.0);
            }
        }
        true
    }

    /// Rooms open.
    pub fn room_count(&self) -> usize {
        self.rooms.entries.iter().flatten().count()
    }

    /// Adds a participant to `room`; `None` if the room is unknown or the codec cannot be
    /// mixed at this mixer's rate.
    pub fn join(&mut self, room: RoomId, codec: Codec) -> Option<ParticipantId> {
        if !self.accepts(codec) {
            return None;
        }
        let room_slot = u32::try_from(self.rooms.slot_of(room.0)?).ok()?;
        let (params, frame_len) = (self.jitter, self.frame_len);
        let mut joined_slot = 0;
        let id = self.participants.insert_with(|id, slot| {
            joined_slot = slot;
            Participant::new(ParticipantId(id), room_slot, codec, params, frame_len)
        })?;
        self.rooms.get_mut(room.0)?.members.push(joined_slot);
        Some(ParticipantId(id))
    }

    fn accepts(&self, codec: Codec) -> bool {
        codec.is_convertible() && codec.sample_rate() == self.config.sample_rate
    }

    /// Removes a participant from its room. False for an unknown participant.
    pub fn leave(&mut self, participant: ParticipantId) -> bool {
        let Some(left) = self.participants.remove(participant.0) else {
            return false;
        };
        let room = self
            .rooms
            .entries
            .get_mut(usize::try_from(left.room).unwrap_or(usize::MAX))
            .and_then(Option::as_mut);
        if let Some(room) = room {
            let slot = u32::try_from(participant.0 & u64::from(u32::MAX)).unwrap_or(u32::MAX);
            if let Some(at) = room.members.iter().position(|&m| m == slot) {
                room.members.remove(at);
            }
        }
        true
    }

    /// Mutes or unmutes: a muted participant is never mixed (it still hears the room).
    pub fn set_muted(&mut self, participant: ParticipantId, muted: bool) -> bool {
        match self.participants.get_mut(participant.0) {
            Some(p) => {
                p.muted = muted;
                true
            }
            None => false,
        }
    }

    /// Changes the codec a participant sends and receives (after a re-INVITE); its jitter
    /// buffer starts over. False for an unknown participant or a codec that cannot join.
    pub fn set_codec(&mut self, participant: ParticipantId, codec: Codec) -> bool {
        if !self.accepts(codec) {
            return false;
        }
        match self.participants.get_mut(participant.0) {
            Some(p) => {
                if p.codec != codec {
                    p.set_codec(codec);
                }
                true
            }
            None => false,
        }
    }

    /// Stores a received audio packet of `participant` (ignored for an unknown one).
    pub fn push(&mut self, participant: ParticipantId, packet: RtpAudio<'_>, arrival: Duration) {
        let arrival = duration_to_samples(arrival, self.config.sample_rate);
        if let Some(p) = self.participants.get_mut(participant.0) {
            let _ = p.jitter.push(
                packet.ssrc,
                packet.sequence,
                packet.timestamp,
                packet.payload,
                arrival,
            );
        }
    }

    /// Adds one frame of audio (linear, at the mixer's rate; longer input is cut, shorter
    /// is padded with silence) to what `target` hears at the next tick, on top of the mix.
    /// Several injections before a tick add up. False for an unknown target.
    pub fn inject(&mut self, target: InjectTarget, samples: &[i16]) -> bool {
        match target {
            InjectTarget::Room(room) => match self.rooms.get_mut(room.0) {
                Some(room) => {
                    room.inject(samples);
                    true
                }
                None => false,
            },
            InjectTarget::Participant(p) => match self.participants.get_mut(p.0) {
                Some(p) => {
                    p.inject(samples);
                    true
                }
                None => false,
            },
        }
    }

    /// Mixes one frame for every room: call once per [`FRAME_DURATION`]. Rooms of one call
    /// `music(room, samples)` to fill a frame (left as silence if it does nothing); every
    /// participant's encoded frame goes to `out(participant, payload)`.
    pub fn tick<M, O>(&mut self, now: Duration, music: &mut M, out: &mut O)
    where
        M: FnMut(RoomId, &mut [i16]) + ?Sized,
        O: FnMut(ParticipantId, &[u8]) + ?Sized,
    {
        let context = RoomContext {
            tick: TickContext {
                now: duration_to_samples(now, self.config.sample_rate),
                tables: &self.tables,
                threshold: self.threshold,
                sample_rate: self.config.sample_rate,
            },
            hangover_frames: self.hangover_frames,
            silence: &self.silence,
        };
        let slab = &mut self.participants.entries;
        for room in self.rooms.entries.iter_mut().flatten() {
            room.tick(slab, &context, music, out);
        }
    }

    /// The participants of a room, in joining order (none for an unknown room).
    pub fn participants(&self, room: RoomId) -> impl Iterator<Item = ParticipantId> + '_ {
        self.rooms
            .get(room.0)
            .into_iter()
            .flat_map(|room| room.members.iter())
            .filter_map(|&slot| participant(&self.participants.entries, slot).map(|p| p.id))
    }

    /// The room a participant is in.
    pub fn room_of(&self, participant: ParticipantId) -> Option<RoomId> {
        let p = self.participants.get(participant.0)?;
        let room = self
            .rooms
            .entries
            .get(usize::try_from(p.room).ok()?)?
            .as_ref()?;
        Some(room.id)
    }

    /// Whether a participant is talking (voice activity with hangover, muted or not).
    pub fn talking(&self, participant: ParticipantId) -> bool {
        self.participants
            .get(participant.0)
            .is_some_and(|p| p.vad.talking(self.hangover_frames))
    }

    /// A participant's state and counters.
    pub fn status(&self, participant: ParticipantId) -> Option<ParticipantStatus> {
        let p = self.participants.get(participant.0)?;
        let rate = u64::from(self.config.sample_rate.max(1));
        let delay_samples = u64::try_from(p.jitter.target_delay()).unwrap_or(0);
        Some(ParticipantStatus {
            room: self.room_of(participant)?,
            codec: p.codec,
            muted: p.muted,
            talking: p.vad.talking(self.hangover_frames),
            heard: p.heard,
            level_dbov: mean_square_to_dbov(p.vad.level()),
            receiving: p.jitter.has_stream(),
            playout_delay: Duration::from_micros(delay_samples * 1_000_000 / rate),
            counters: *p.jitter.counters(),
        })
    }

    /// Whether a participant was in its room's sum in the last tick (selected talker or
    /// fading out).
    #[cfg(test)]
    fn is_mixed(&self, participant: ParticipantId) -> bool {
        let Some(slot) = self.participants.slot_of(participant.0) else {
            return false;
        };
        let Some(p) = self.participants.get(participant.0) else {
            return false;
        };
        let room = self
            .rooms
            .entries
            .get(usize::try_from(p.room).unwrap_or(usize::MAX))
            .and_then(Option::as_ref);
        room.is_some_and(|r| r.is_mixing(u32::try_from(slot).unwrap_or(u32::MAX)))
    }
}

/// A time as a sample count at `rate` (saturating far below `i64::MAX`, so differences of
/// two such values never overflow).
fn duration_to_samples(time: Duration, rate: u32) -> i64 {
    let samples = time.as_nanos() * u128::from(rate) / 1_000_000_000;
    i64::try_from(samples).unwrap_or(i64::MAX).min(i64::MAX / 4)
}
