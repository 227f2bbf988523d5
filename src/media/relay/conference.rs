//! Conference legs: any leg of any session can be a participant of a room mixed by the
//! relay's one [`Mixer`].
//!
//! Inputs: the engine's conference commands (join, leave, mute, sounds, close; see
//! `MediaCommand`), the audio of every conference leg (pushed by `on_rtp` after latching,
//! statistics and DTMF detection), and the relay's 20 ms tick.
//!
//! Per tick (`Relay::tick_conferences`, after the generating legs): room and participant
//! sounds inject one frame each, the mixer mixes every room, and each participant's frame
//! goes out in its leg's own stream (`StreamRewriter::next_generated`, so joining and
//! leaving never break the far end's numbering); then changes of voice activity become
//! `MediaEvent::Talking`, at most one per [`TALKING_MIN_INTERVAL`] per participant.
//!
//! State: participants map to legs through a `Vec` indexed by `ParticipantId::index()`,
//! rooms to their sounds and music through one indexed by `RoomId::index()`; the engine's
//! `ConferenceId` is looked up in a map on commands only. Nothing on the tick allocates:
//! sounds and music are opened on commands (music when a room drops to one participant,
//! dropped when it grows).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::session::Output;
use super::source::{FrameFill, FrameSource, PromptFactory, SilenceSource};
use super::{send_frame, Relay, FRAME_SAMPLES};
use crate::media::codec::Codec;
use crate::media::control::{
    BeepKind, ConferenceId, ConferenceSound, MediaEvent, MediaLeg, MediaSessionId,
};
use crate::media::mixer::{InjectTarget, Mixer, ParticipantId, RoomId};
use crate::media::prompt::{tone, PlayState, SampleRate, ToneGenerator};

/// What a room of one hears (through the prompt factory, the room's tenant first).
pub const MUSIC_ON_HOLD: &str = "moh/default";

/// A participant's talking state is reported at most this often.
pub const TALKING_MIN_INTERVAL: Duration = Duration::from_millis(250);

/// One room's relay-side state (the mixing itself is the mixer's).
struct RoomState {
    id: ConferenceId,
    room: RoomId,
    /// Whose music on hold the room plays.
    tenant: Option<i64>,
    size: usize,
    /// Playing while the room has exactly one participant.
    music: Option<Box<dyn FrameSource>>,
    /// A sound for the whole room.
    sound: Option<Box<dyn FrameSource>>,
}

/// The leg a participant is.
struct Member {
    participant: ParticipantId,
    session: MediaSessionId,
    /// The session's slot in the relay.
    slot: u32,
    leg: MediaLeg,
    /// Index of its room in `Conferences::rooms`.
    room: usize,
    /// The codec the mixer encodes its frames in (the leg's).
    codec: Codec,
    /// The talking state last reported, and when.
    talking: bool,
    talking_reported: Option<Duration>,
    /// A sound for this participant only.
    sound: Option<Box<dyn FrameSource>>,
}

/// Every room and participant of the relay.
pub(super) struct Conferences {
    pub(super) mixer: Mixer,
    by_id: HashMap<ConferenceId, RoomId>,
    /// By `RoomId::index()`.
    rooms: Vec<Option<RoomState>>,
    /// By `ParticipantId::index()`.
    members: Vec<Option<Member>>,
    member_count: usize,
    /// Indexes of rooms with a sound playing.
    room_sounds: Vec<usize>,
    /// Indexes of participants with a sound playing.
    member_sounds: Vec<usize>,
}

/// Puts `value` at `index`, growing the table with empty entries if needed.
fn put<T>(table: &mut Vec<Option<T>>, index: usize, value: T) {
    if table.len() <= index {
        table.resize_with(index + 1, || None);
    }
    if let Some(entry) = table.get_mut(index) {
        *entry = Some(value);
    }
}

impl Conferences {
    pub(super) fn new(mixer: Mixer) -> Self {
        Self {
            mixer,
            by_id: HashMap::new(),
            rooms: Vec::new(),
            members: Vec::new(),
            member_count: 0,
            room_sounds: Vec::new(),
            member_sounds: Vec::new(),
        }
    }

    pub(super) fn room_count(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn participant_count(&self) -> usize {
        self.member_count
    }

    /// Rooms with a music player (one per room of one).
    #[cfg(test)]
    pub(super) fn music_players(&self) -> usize {
        self.rooms
            .iter()
            .flatten()
            .filter(|r| r.music.is_some())
            .count()
    }

    /// Whether the mixer can take a leg with `codec`.
    fn accepts(&self, codec: Codec) -> bool {
        codec.is_convertible() && codec.sample_rate() == self.mixer.config().sample_rate
    }

    fn member(&self, participant: ParticipantId) -> Option<&Member> {
        let member = self.members.get(participant.index())?.as_ref()?;
        (member.participant == participant).then_some(member)
    }

    fn member_mut(&mut self, participant: ParticipantId) -> Option<&mut Member> {
        let member = self.members.get_mut(participant.index())?.as_mut()?;
        (member.participant == participant).then_some(member)
    }

    /// The engine's id of the room a participant is in.
    fn room_id_of(&self, participant: ParticipantId) -> Option<ConferenceId> {
        let member = self.member(participant)?;
        Some(self.rooms.get(member.room)?.as_ref()?.id)
    }

    /// Adds a leg to `id` (opening the room if needed); `None` if the mixer refuses.
    fn attach(
        &mut self,
        id: ConferenceId,
        leg: (MediaSessionId, u32, MediaLeg),
        codec: Codec,
        muted: bool,
        tenant: Option<i64>,
        prompts: &dyn PromptFactory,
    ) -> Option<ParticipantId> {
        let (room, created) = match self.by_id.get(&id) {
            Some(&room) => (room, false),
            None => {
                let room = self.mixer.open_room();
                if room.0 == 0 {
                    return None;
                }
                let state = RoomState {
                    id,
                    room,
                    tenant,
                    size: 0,
                    music: None,
                    sound: None,
                };
                put(&mut self.rooms, room.index(), state);
                self.by_id.insert(id, room);
                (room, true)
            }
        };
        let Some(participant) = self.mixer.join(room, codec) else {
            if created {
                self.free_room(room.index());
            }
            return None;
        };
        self.mixer.set_muted(participant, muted);
        let (session, slot, which) = leg;
        let member = Member {
            participant,
            session,
            slot,
            leg: which,
            room: room.index(),
            codec,
            talking: false,
            talking_reported: None,
            sound: None,
        };
        put(&mut self.members, participant.index(), member);
        self.member_count += 1;
        if let Some(state) = self.rooms.get_mut(room.index()).and_then(Option::as_mut) {
            state.size += 1;
            update_music(state, prompts);
        }
        Some(participant)
    }

    /// Takes a participant out of its room (the room ends with its last participant).
    /// The caller sets what the leg hears next.
    pub(super) fn detach(&mut self, participant: ParticipantId, prompts: &dyn PromptFactory) {
        let index = participant.index();
        if self.member(participant).is_none() {
            return;
        }
        let Some(member) = self.members.get_mut(index).and_then(Option::take) else {
            return;
        };
        self.mixer.leave(participant);
        self.member_count = self.member_count.saturating_sub(1);
        self.member_sounds.retain(|&i| i != index);
        let Some(state) = self.rooms.get_mut(member.room).and_then(Option::as_mut) else {
            return;
        };
        state.size = state.size.saturating_sub(1);
        if state.size == 0 {
            self.free_room(member.room);
        } else {
            update_music(state, prompts);
        }
    }

    /// Closes a room in the mixer and forgets it.
    fn free_room(&mut self, index: usize) {
        let Some(state) = self.rooms.get_mut(index).and_then(Option::take) else {
            return;
        };
        self.mixer.close_room(state.room);
        self.by_id.remove(&state.id);
        self.room_sounds.retain(|&i| i != index);
    }
}

/// Music on hold for a room of one, none for larger rooms.
fn update_music(state: &mut RoomState, prompts: &dyn PromptFactory) {
    if state.size == 1 {
        if state.music.is_none() {
            state.music = prompts.open(state.tenant, &[MUSIC_ON_HOLD.to_owned()], true);
        }
    } else {
        state.music = None;
    }
}

/// A conference beep as a frame source.
struct BeepSource(ToneGenerator);

impl BeepSource {
    fn new(kind: BeepKind) -> Self {
        let spec = match kind {
            BeepKind::Enter => tone::CONFERENCE_ENTER,
            BeepKind::Exit => tone::CONFERENCE_EXIT,
            BeepKind::Plain => tone::BEEP,
        };
        Self(ToneGenerator::new(spec, SampleRate::Narrowband))
    }
}

impl FrameSource for BeepSource {
    fn fill(&mut self, out: &mut [i16]) -> FrameFill {
        match self.0.fill(out) {
            PlayState::Playing => FrameFill::Playing,
            PlayState::Finished => FrameFill::Finished,
        }
    }
}

/// The participant a leg is, if it is in a room.
fn participant_of(output: &Output) -> Option<ParticipantId> {
    match output {
        Output::Conference(participant) => Some(*participant),
        Output::Relay | Output::Generated(_) => None,
    }
}

impl Relay {
    /// The session slot of `id` and the participant its leg `which` is, if any.
    fn conference_leg(
        &self,
        id: MediaSessionId,
        which: MediaLeg,
    ) -> Option<(u32, Option<ParticipantId>)> {
        let slot = *self.by_id.get(&id)?;
        let session = self.sessions.get(slot as usize)?.as_ref()?;
        Some((slot, participant_of(&session.leg(which).output)))
    }

    pub(super) fn join_conference(
        &mut self,
        id: MediaSessionId,
        which: MediaLeg,
        room: ConferenceId,
        muted: bool,
        tenant: Option<i64>,
    ) {
        let refused = MediaEvent::ConferenceRefused {
            session: id,
            leg: which,
            room,
        };
        let Some((slot, current)) = self.conference_leg(id, which) else {
            tracing::debug!(
                session = id.0,
                "conference join for an unknown media session"
            );
            self.events.push(refused);
            return;
        };
        if let Some(participant) = current {
            if self.conferences.room_id_of(participant) == Some(room) {
                self.conferences.mixer.set_muted(participant, muted);
                return;
            }
        }
        let codec = self
            .sessions
            .get(slot as usize)
            .and_then(Option::as_ref)
            .and_then(|s| s.leg(which).media.as_ref())
            .map(|m| m.codec)
            .filter(|&codec| self.conferences.accepts(codec));
        let Some(codec) = codec else {
            tracing::info!(
                session = id.0,
                ?which,
                "conference refused: the leg has no PCMU/PCMA"
            );
            self.events.push(refused);
            return;
        };
        let leg = (id, slot, which);
        let joined = self
            .conferences
            .attach(room, leg, codec, muted, tenant, &*self.prompts);
        match joined {
            // Leaves the previous room, if any.
            Some(participant) => self.set_output(slot, which, Output::Conference(participant)),
            None => self.events.push(refused),
        }
    }

    /// The leg leaves its room and hears silence; true if it was in one.
    pub(super) fn leave_conference(&mut self, id: MediaSessionId, which: MediaLeg) -> bool {
        let Some((slot, Some(_))) = self.conference_leg(id, which) else {
            tracing::debug!(session = id.0, ?which, "leave for a leg in no conference");
            return false;
        };
        self.set_output(slot, which, Output::Generated(Box::new(SilenceSource)));
        true
    }

    pub(super) fn mute_participant(&mut self, id: MediaSessionId, which: MediaLeg, muted: bool) {
        match self.conference_leg(id, which) {
            Some((_, Some(participant))) => {
                self.conferences.mixer.set_muted(participant, muted);
            }
            _ => tracing::debug!(session = id.0, ?which, "mute for a leg in no conference"),
        }
    }

    fn open_sound(&self, sound: &ConferenceSound) -> Option<Box<dyn FrameSource>> {
        match sound {
            ConferenceSound::Prompts { tenant, names } => self.prompts.open(*tenant, names, false),
            ConferenceSound::Beep(kind) => Some(Box::new(BeepSource::new(*kind))),
        }
    }

    pub(super) fn room_sound(&mut self, id: ConferenceId, sound: &ConferenceSound) {
        let source = self.open_sound(sound);
        let conferences = &mut self.conferences;
        let state = conferences
            .by_id
            .get(&id)
            .and_then(|room| conferences.rooms.get_mut(room.index()))
            .and_then(Option::as_mut);
        match (state, source) {
            (Some(state), Some(source)) => {
                state.sound = Some(source);
                let index = state.room.index();
                if !conferences.room_sounds.contains(&index) {
                    conferences.room_sounds.push(index);
                }
            }
            (state, _) => {
                if state.is_none() {
                    tracing::debug!(room = id.0, "sound for an unknown conference");
                } else {
                    tracing::warn!(room = id.0, ?sound, "no playable conference sound");
                }
                self.events
                    .push(MediaEvent::ConferencePlaybackDone { room: id });
            }
        }
    }

    pub(super) fn participant_sound(
        &mut self,
        id: MediaSessionId,
        which: MediaLeg,
        sound: &ConferenceSound,
    ) {
        let source = self.open_sound(sound);
        let participant = self.conference_leg(id, which).and_then(|(_, p)| p);
        let conferences = &mut self.conferences;
        let member = participant.and_then(|p| conferences.member_mut(p));
        match (member, source) {
            (Some(member), Some(source)) => {
                member.sound = Some(source);
                let index = member.participant.index();
                if !conferences.member_sounds.contains(&index) {
                    conferences.member_sounds.push(index);
                }
            }
            _ => {
                tracing::debug!(session = id.0, ?which, "participant sound not played");
                self.events.push(MediaEvent::PlaybackDone {
                    session: id,
                    leg: which,
                });
            }
        }
    }

    /// Every leg of the room leaves it (hearing silence); the room is freed.
    pub(super) fn close_conference(&mut self, id: ConferenceId) {
        let Some(&room) = self.conferences.by_id.get(&id) else {
            tracing::debug!(room = id.0, "close for an unknown conference");
            return;
        };
        let legs: Vec<(u32, MediaLeg)> = self
            .conferences
            .mixer
            .participants(room)
            .filter_map(|p| self.conferences.member(p).map(|m| (m.slot, m.leg)))
            .collect();
        for (slot, which) in legs {
            self.set_output(slot, which, Output::Generated(Box::new(SilenceSource)));
        }
        // Normally gone with its last participant.
        self.conferences.free_room(room.index());
    }

    /// A conference leg renegotiated its codec: the mixer follows, or the leg is taken
    /// out of its room (hearing silence) if the mixer cannot take the new codec.
    pub(super) fn conference_codec_changed(
        &mut self,
        id: MediaSessionId,
        which: MediaLeg,
        codec: Codec,
    ) {
        let Some((slot, Some(participant))) = self.conference_leg(id, which) else {
            return;
        };
        if self.conferences.mixer.set_codec(participant, codec) {
            if let Some(member) = self.conferences.member_mut(participant) {
                member.codec = codec;
            }
            return;
        }
        let room = self.conferences.room_id_of(participant);
        self.set_output(slot, which, Output::Generated(Box::new(SilenceSource)));
        if let Some(room) = room {
            tracing::info!(session = id.0, ?which, ?codec, "codec cannot be mixed");
            self.events.push(MediaEvent::ConferenceRefused {
                session: id,
                leg: which,
                room,
            });
        }
    }

    /// One mixing tick for every room: sounds, the mix sent to every participant, talking
    /// changes. `out(from_port, to, bytes)` sends a datagram.
    pub(super) fn tick_conferences(
        &mut self,
        now: Duration,
        out: &mut impl FnMut(u16, SocketAddr, &[u8]),
    ) {
        if self.conferences.member_count == 0 {
            return;
        }
        let Relay {
            conferences,
            sessions,
            events,
            pcm,
            build,
            counters,
            ..
        } = self;
        let Conferences {
            mixer,
            rooms,
            members,
            room_sounds,
            member_sounds,
            ..
        } = conferences;
        let frame = pcm.get_mut(..FRAME_SAMPLES).unwrap_or_default();
        room_sounds.retain(|&index| {
            let Some(state) = rooms.get_mut(index).and_then(Option::as_mut) else {
                return false;
            };
            let Some(sound) = state.sound.as_mut() else {
                return false;
            };
            let fill = sound.fill(frame);
            mixer.inject(InjectTarget::Room(state.room), frame);
            if fill == FrameFill::Finished {
                state.sound = None;
                events.push(MediaEvent::ConferencePlaybackDone { room: state.id });
                return false;
            }
            true
        });
        member_sounds.retain(|&index| {
            let Some(member) = members.get_mut(index).and_then(Option::as_mut) else {
                return false;
            };
            let Some(sound) = member.sound.as_mut() else {
                return false;
            };
            let fill = sound.fill(frame);
            mixer.inject(InjectTarget::Participant(member.participant), frame);
            if fill == FrameFill::Finished {
                member.sound = None;
                events.push(MediaEvent::PlaybackDone {
                    session: member.session,
                    leg: member.leg,
                });
                return false;
            }
            true
        });

        let mut sent = 0u64;
        let mut music = |room: RoomId, samples: &mut [i16]| {
            let state = rooms.get_mut(room.index()).and_then(Option::as_mut);
            if let Some(music) = state
                .filter(|s| s.room == room)
                .and_then(|s| s.music.as_mut())
            {
                // Music loops: it never finishes.
                let _ = music.fill(samples);
            }
        };
        let mut send = |participant: ParticipantId, payload: &[u8]| {
            let Some(member) = members
                .get(participant.index())
                .and_then(Option::as_ref)
                .filter(|m| m.participant == participant)
            else {
                return;
            };
            let Some(session) = sessions
                .get_mut(member.slot as usize)
                .and_then(Option::as_mut)
            else {
                return;
            };
            let codec = member.codec;
            let samples = u32::try_from(payload.len()).unwrap_or(0);
            let written = send_frame(
                session.leg_mut(member.leg),
                now,
                samples,
                &mut build[..],
                out,
                |leg_codec, buffer| {
                    let target = buffer.get_mut(..payload.len())?;
                    // G.711 only: one byte per sample, in the codec the mixer encoded.
                    (leg_codec == codec).then(|| target.copy_from_slice(payload))?;
                    Some(payload.len())
                },
            );
            if written {
                sent += 1;
            }
        };
        mixer.tick(now, &mut music, &mut send);
        counters.generated += sent;

        for member in members.iter_mut().flatten() {
            let talking = mixer.talking(member.participant);
            let may_report = member
                .talking_reported
                .is_none_or(|at| now.saturating_sub(at) >= TALKING_MIN_INTERVAL);
            if talking != member.talking && may_report {
                member.talking = talking;
                member.talking_reported = Some(now);
                events.push(MediaEvent::Talking {
                    session: member.session,
                    leg: member.leg,
                    talking,
                });
            }
        }
    }
}
