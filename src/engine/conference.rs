//! Conference rooms on the SIP side: a caller dialling a room's extension or number is
//! answered here, enters the PIN by DTMF (three tries) unless the room has none or the
//! caller owns it, hears a welcome (and "you are the only participant" when alone), and
//! joins the room in the media plane's mixer. In the room, DTMF keys control it (1: mute
//! or unmute yourself; moderators: 2 lock or unlock, 3 remove the last to join, 4 mute or
//! unmute everyone else); the CLI does the same through `Input::ConferenceControl`. When
//! a room empties, its record (who, from when to when) goes to the conference log.

use super::b2bua::{CallTimer, Side};
use super::{Engine, Output};
use crate::call::model::{CallId, CallState, Outcome};
use crate::media::control::{
    BeepKind, ConferenceId, ConferenceSound, LegSource, MediaCommand, MediaLeg,
};
use crate::media::dtmf::DtmfDigit;
use crate::util::time::Now;
use std::collections::HashMap;
use std::time::Duration;

/// How long the switch waits for the next PIN digit before it checks what it has.
const PIN_DIGIT_WAIT: Duration = Duration::from_secs(10);
/// PIN entries a caller gets before the call is ended.
const PIN_TRIES: u8 = 3;
/// The longest PIN (the store refuses longer ones).
const PIN_MAX_DIGITS: usize = 12;

/// A room as the engine knows it (from the store; PIN hashes stay there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// The room's id.
    pub id: i64,
    /// Its tenant.
    pub tenant_id: i64,
    /// Its name.
    pub name: String,
    /// The extension users dial.
    pub extension: String,
    /// Participants need a PIN.
    pub has_pin: bool,
    /// There is a moderator PIN.
    pub has_moderator_pin: bool,
    /// At most this many participants at once.
    pub max_participants: u32,
    /// The owner (a moderator without PIN).
    pub owner: Option<i64>,
    /// The conference ends when its last moderator leaves.
    pub end_when_moderator_leaves: bool,
    /// Conferences start locked.
    pub locked: bool,
}

/// Which PIN a caller entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRole {
    /// The participants' PIN.
    Participant,
    /// The moderator PIN.
    Moderator,
}

/// PIN digits on their way to be checked: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PinDigits(pub String);

impl std::fmt::Debug for PinDigits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinDigits(<{} digits>)", self.0.len())
    }
}

/// A control from the CLI (through the store) for a running conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomControl {
    /// Mute participant N.
    Mute(u32),
    /// Unmute participant N.
    Unmute(u32),
    /// Remove participant N (hung up).
    Kick(u32),
    /// Refuse newcomers.
    Lock,
    /// Admit newcomers again.
    Unlock,
}

/// How a control went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlResult {
    /// Applied.
    Done,
    /// No conference runs in that room.
    NotRunning,
    /// No such participant in it.
    NoSuchParticipant,
}

/// Why a participant left, for the conference log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftBecause {
    /// Hung up.
    Left,
    /// Removed by a moderator.
    Kicked,
    /// The conference ended (its moderator left).
    RoomEnded,
}

/// One participant's stay, for the conference log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantReport {
    /// The participant's call (its first SIP Call-ID links it to the call log).
    pub sip_call_id: String,
    /// The user, when a user called.
    pub user: Option<i64>,
    /// The caller's number or extension.
    pub number: String,
    /// The caller's name, if known.
    pub name: Option<String>,
    /// Entered with the moderator PIN or as the owner.
    pub moderator: bool,
    /// Joined (Unix ms).
    pub joined_ms: u64,
    /// Left (Unix ms).
    pub left_ms: u64,
    /// Why.
    pub end: LeftBecause,
}

/// Where a conference took place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOrigin {
    /// In a room.
    Room {
        /// The room.
        room: i64,
        /// Its name at the time.
        name: String,
    },
    /// Made from calls in progress (see `engine::adhoc`).
    AdHoc,
}

/// A conference that ended, for the conference log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceReport {
    /// The tenant.
    pub tenant_id: i64,
    /// The room, or ad hoc.
    pub origin: ReportOrigin,
    /// Started (Unix ms): the first participant joined.
    pub started_ms: u64,
    /// Ended (Unix ms): the last left.
    pub ended_ms: u64,
    /// Every stay, in joining order.
    pub participants: Vec<ParticipantReport>,
}

/// One participant now, for `sentralbord conference participants`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveParticipant {
    /// The room's number for it.
    pub id: u32,
    /// The user, when a user called.
    pub user: Option<i64>,
    /// The caller's number or extension.
    pub number: String,
    /// The caller's name, if known.
    pub name: Option<String>,
    /// Joined (Unix ms).
    pub joined_ms: u64,
    /// Muted.
    pub muted: bool,
    /// Talking now (the media plane's voice activity).
    pub talking: bool,
    /// A moderator.
    pub moderator: bool,
}

/// A running conference now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoom {
    /// The room.
    pub room: i64,
    /// Locked.
    pub locked: bool,
    /// Started (Unix ms).
    pub started_ms: u64,
    /// Its participants in joining order.
    pub participants: Vec<LiveParticipant>,
}

/// Where a conference caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Entering the PIN.
    Pin,
    /// The PIN is being checked by the store.
    Checking,
    /// Hearing the welcome; joins when it ends.
    Welcome,
    /// In the room.
    Joined,
    /// Hearing a last announcement; hung up when it ends.
    Goodbye,
}

/// The conference side of one call.
#[derive(Debug)]
pub struct ConferenceLeg {
    /// The room dialled.
    pub room: i64,
    /// Where the caller is.
    pub stage: Stage,
    /// Digits entered so far.
    digits: String,
    /// Wrong PINs so far.
    tries: u8,
    /// Joins (or joined) as a moderator.
    pub moderator: bool,
    /// The room's number for the participant, once joined.
    pub participant: Option<u32>,
}

impl ConferenceLeg {
    /// A caller who dialled `room`.
    pub fn new(room: i64) -> ConferenceLeg {
        ConferenceLeg {
            room,
            stage: Stage::Pin,
            digits: String::new(),
            tries: 0,
            moderator: false,
            participant: None,
        }
    }
}

/// A running conference.
#[derive(Debug)]
struct Running {
    tenant_id: i64,
    name: String,
    locked: bool,
    started_ms: u64,
    next_id: u32,
    participants: Vec<Present>,
    past: Vec<ParticipantReport>,
}

/// A participant in a running conference.
#[derive(Debug)]
struct Present {
    call: CallId,
    live: LiveParticipant,
    sip_call_id: String,
    /// Why it is about to leave, when the switch ends its call (kicked, room ended).
    leaving: Option<LeftBecause>,
}

/// Rooms and running conferences.
#[derive(Debug, Default)]
pub(super) struct Conferences {
    rooms: HashMap<i64, RoomConfig>,
    by_extension: HashMap<(i64, String), i64>,
    running: HashMap<i64, Running>,
}

impl Conferences {
    /// The room a user of `tenant` reaches by dialling `extension`.
    pub(super) fn room_by_extension(&self, tenant: i64, extension: &str) -> Option<i64> {
        self.by_extension
            .get(&(tenant, extension.to_owned()))
            .copied()
    }
}

impl Engine {
    /// New room configuration (at start and whenever the store's changed). Running
    /// conferences go on; a removed room's conference ends when its last participant
    /// leaves.
    pub(super) fn configure_rooms(&mut self, rooms: Vec<RoomConfig>) {
        let c = &mut self.conferences;
        c.by_extension = rooms
            .iter()
            .map(|r| ((r.tenant_id, r.extension.clone()), r.id))
            .collect();
        c.rooms = rooms.into_iter().map(|r| (r.id, r)).collect();
    }

    /// The conferences running now.
    pub fn live_rooms(&self) -> Vec<LiveRoom> {
        let mut rooms: Vec<LiveRoom> = self
            .conferences
            .running
            .iter()
            .map(|(room, r)| LiveRoom {
                room: *room,
                locked: r.locked,
                started_ms: r.started_ms,
                participants: r.participants.iter().map(|p| p.live.clone()).collect(),
            })
            .collect();
        rooms.sort_by_key(|r| r.room);
        rooms
    }

    /// The room a user dialled by extension, if it is one.
    pub(super) fn room_for_extension(&self, tenant: i64, extension: &str) -> Option<i64> {
        self.conferences.room_by_extension(tenant, extension)
    }

    /// Whether a room is known.
    pub(super) fn room_exists(&self, room: i64) -> bool {
        self.conferences.rooms.contains_key(&room)
    }

    /// A conference call's media is open: answer it and ask for the PIN (or welcome).
    pub(super) fn enter_conference(&mut self, now: Now, id: CallId) {
        let Some((room, caller_user)) = self
            .calls
            .get(&id)
            .and_then(|e| e.conference.as_ref().map(|c| (c.room, e.caller_user)))
        else {
            return;
        };
        let Some(config) = self.conferences.rooms.get(&room).cloned() else {
            self.end_conference_call(now, id, vec!["call/number-not-in-use".into()]);
            return;
        };
        self.answer_here(now, id);
        self.mark_answered_here(now, id);
        let owner = caller_user.is_some() && caller_user == config.owner;
        if owner || !(config.has_pin || config.has_moderator_pin) {
            self.welcome(now, id, owner);
            return;
        }
        self.ask_for_pin(now, id, vec!["conference/enter-pin".into()]);
    }

    /// The call counts as answered from now on (by the switch), for the call log.
    fn mark_answered_here(&mut self, now: Now, id: CallId) {
        if let Some(e) = self.calls.get_mut(&id) {
            if e.call.answered_ms.is_none() {
                e.call.answered_ms = Some(Self::now_ms(now));
                e.call.state = CallState::Answered;
            }
        }
    }

    fn conference_leg(&mut self, id: CallId) -> Option<&mut ConferenceLeg> {
        self.calls.get_mut(&id)?.conference.as_deref_mut()
    }

    fn ask_for_pin(&mut self, now: Now, id: CallId, prompts: Vec<String>) {
        if let Some(c) = self.conference_leg(id) {
            c.stage = Stage::Pin;
            c.digits.clear();
        }
        self.prompt_caller(id, prompts);
        self.arm(now.mono + PIN_DIGIT_WAIT, id, CallTimer::ConferencePin);
    }

    /// Plays prompts to the caller's leg (before it joins the room).
    fn prompt_caller(&mut self, id: CallId, names: Vec<String>) {
        let Some(e) = self.calls.get(&id) else { return };
        let Some(session) = e.media.as_ref().map(|m| m.session) else {
            return;
        };
        let tenant = e.tenant;
        self.outputs.push_back(Output::Media(MediaCommand::Source {
            session,
            leg: MediaLeg::Caller,
            source: LegSource::Prompts {
                tenant,
                names,
                looped: false,
            },
        }));
    }

    /// A DTMF digit from a conference caller.
    pub(super) fn conference_digit(&mut self, now: Now, id: CallId, digit: DtmfDigit) {
        let Some(c) = self.conference_leg(id) else {
            return;
        };
        match c.stage {
            Stage::Pin => {
                let ch = digit.as_char();
                if ch == '#' {
                    self.check_pin(now, id);
                } else if ch.is_ascii_digit() && c.digits.len() < PIN_MAX_DIGITS {
                    c.digits.push(ch);
                    self.arm(now.mono + PIN_DIGIT_WAIT, id, CallTimer::ConferencePin);
                }
            }
            Stage::Joined => self.room_key(now, id, digit.as_char()),
            _ => {}
        }
    }

    /// The PIN wait ran out: what was entered is checked (nothing is a wrong PIN).
    pub(super) fn conference_pin_timeout(&mut self, now: Now, id: CallId) {
        let waiting = self
            .calls
            .get(&id)
            .and_then(|e| e.conference.as_ref())
            .is_some_and(|c| c.stage == Stage::Pin);
        // A digit re-armed the wait: only the last deadline counts.
        let quiet = self
            .call_timers
            .iter()
            .all(|std::cmp::Reverse((at, call, t))| {
                *call != id.0 || *t != CallTimer::ConferencePin || *at <= now.mono
            });
        if waiting && quiet {
            self.check_pin(now, id);
        }
    }

    fn check_pin(&mut self, now: Now, id: CallId) {
        let Some(c) = self.conference_leg(id) else {
            return;
        };
        let (room, digits) = (c.room, std::mem::take(&mut c.digits));
        c.stage = Stage::Checking;
        if digits.is_empty() {
            self.pin_checked(now, id, None);
            return;
        }
        let lookup = self.next_lookup;
        self.next_lookup += 1;
        self.pin_checks.insert(lookup, id);
        self.outputs.push_back(Output::VerifyRoomPin {
            lookup,
            room,
            digits: PinDigits(digits),
        });
    }

    /// The store's answer to `Output::VerifyRoomPin`.
    pub(super) fn room_pin_checked(&mut self, now: Now, lookup: u64, role: Option<PinRole>) {
        if let Some(id) = self.pin_checks.remove(&lookup) {
            self.pin_checked(now, id, role);
        }
    }

    fn pin_checked(&mut self, now: Now, id: CallId, role: Option<PinRole>) {
        let Some(c) = self.conference_leg(id) else {
            return;
        };
        if c.stage != Stage::Checking {
            return;
        }
        match role {
            Some(role) => self.welcome(now, id, role == PinRole::Moderator),
            None => {
                c.tries += 1;
                tracing::info!(call = id.0, tries = c.tries, "wrong conference PIN");
                if c.tries >= PIN_TRIES {
                    self.end_conference_call(
                        now,
                        id,
                        vec!["conference/wrong-pin".into(), "common/goodbye".into()],
                    );
                } else {
                    self.ask_for_pin(
                        now,
                        id,
                        vec!["conference/wrong-pin".into(), "conference/enter-pin".into()],
                    );
                }
            }
        }
    }

    /// The caller may enter: refused when locked (moderators excepted) or full; else the
    /// welcome, and "only participant" when nobody else is in.
    fn welcome(&mut self, now: Now, id: CallId, moderator: bool) {
        let Some(room) = self.conference_leg(id).map(|c| c.room) else {
            return;
        };
        let Some(config) = self.conferences.rooms.get(&room) else {
            return;
        };
        let running = self.conferences.running.get(&room);
        let locked = running.map_or(config.locked, |r| r.locked);
        let present = running.map_or(0, |r| r.participants.len());
        let full = u32::try_from(present).unwrap_or(u32::MAX) >= config.max_participants;
        if (locked && !moderator) || full {
            self.end_conference_call(
                now,
                id,
                vec!["conference/locked".into(), "common/goodbye".into()],
            );
            return;
        }
        let mut prompts = vec!["conference/welcome".to_string()];
        if present == 0 {
            prompts.push("conference/only-participant".into());
        }
        if let Some(c) = self.conference_leg(id) {
            c.stage = Stage::Welcome;
            c.moderator = moderator;
        }
        self.prompt_caller(id, prompts);
    }

    /// A conference caller's prompt ended.
    pub(super) fn conference_playback_done(&mut self, now: Now, id: CallId) {
        match self.conference_leg(id).map(|c| c.stage) {
            Some(Stage::Welcome) => self.join(now, id),
            Some(Stage::Goodbye) => self.conference_hang_up(now, id, "announcement played"),
            _ => {}
        }
    }

    fn join(&mut self, now: Now, id: CallId) {
        let Some(e) = self.calls.get(&id) else { return };
        let (Some(c), Some(session)) = (e.conference.as_ref(), e.media.as_ref().map(|m| m.session))
        else {
            return;
        };
        let (room, moderator) = (c.room, c.moderator);
        let Some(config) = self.conferences.rooms.get(&room) else {
            return;
        };
        let tenant = e.tenant;
        let number = e.caller.clone();
        let name = e.caller_name.clone();
        let user = e.caller_user;
        let sip_call_id = e
            .inbound
            .req
            .call_id()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let now_ms = Self::now_ms(now);
        let running = self
            .conferences
            .running
            .entry(room)
            .or_insert_with(|| Running {
                tenant_id: config.tenant_id,
                name: config.name.clone(),
                locked: config.locked,
                started_ms: now_ms,
                next_id: 1,
                participants: Vec::new(),
                past: Vec::new(),
            });
        let pid = running.next_id;
        running.next_id += 1;
        let others_present = !running.participants.is_empty();
        running.participants.push(Present {
            call: id,
            sip_call_id,
            leaving: None,
            live: LiveParticipant {
                id: pid,
                user,
                number,
                name,
                joined_ms: now_ms,
                muted: false,
                talking: false,
                moderator,
            },
        });
        if let Some(c) = self.conference_leg(id) {
            c.stage = Stage::Joined;
            c.participant = Some(pid);
        }
        tracing::info!(
            call = id.0,
            room,
            participant = pid,
            moderator,
            "joined conference"
        );
        self.outputs
            .push_back(Output::Media(MediaCommand::JoinConference {
                session,
                leg: MediaLeg::Caller,
                room: ConferenceId(room as u64),
                muted: false,
                tenant,
            }));
        if others_present {
            // The others hear someone come in.
            self.outputs
                .push_back(Output::Media(MediaCommand::ConferencePrompt {
                    room: ConferenceId(room as u64),
                    sound: ConferenceSound::Beep(BeepKind::Enter),
                }));
        }
    }

    /// A key pressed in the room.
    fn room_key(&mut self, now: Now, id: CallId, key: char) {
        let Some(c) = self.calls.get(&id).and_then(|e| e.conference.as_ref()) else {
            return;
        };
        let (room, moderator, me) = (c.room, c.moderator, c.participant);
        let Some(me) = me else { return };
        match (key, moderator) {
            ('1', _) => {
                let muted = self.present(room, me).is_some_and(|p| !p.live.muted);
                self.set_muted(room, me, muted);
            }
            ('2', true) => {
                if let Some(r) = self.conferences.running.get_mut(&room) {
                    r.locked = !r.locked;
                    tracing::info!(room, locked = r.locked, "conference lock by a moderator");
                }
            }
            ('3', true) => {
                let last = self.conferences.running.get(&room).and_then(|r| {
                    r.participants
                        .iter()
                        .rev()
                        .find(|p| p.live.id != me)
                        .map(|p| p.live.id)
                });
                if let Some(last) = last {
                    self.kick(now, room, last);
                }
            }
            ('4', true) => {
                let others: Vec<(u32, bool)> = self
                    .conferences
                    .running
                    .get(&room)
                    .map(|r| {
                        r.participants
                            .iter()
                            .filter(|p| p.live.id != me)
                            .map(|p| (p.live.id, p.live.muted))
                            .collect()
                    })
                    .unwrap_or_default();
                let mute = others.iter().any(|(_, muted)| !muted);
                for (p, _) in others {
                    self.set_muted(room, p, mute);
                }
            }
            _ => {}
        }
    }

    fn present(&self, room: i64, participant: u32) -> Option<&Present> {
        self.conferences
            .running
            .get(&room)?
            .participants
            .iter()
            .find(|p| p.live.id == participant)
    }

    fn set_muted(&mut self, room: i64, participant: u32, muted: bool) -> bool {
        let Some(p) = self
            .conferences
            .running
            .get_mut(&room)
            .and_then(|r| r.participants.iter_mut().find(|p| p.live.id == participant))
        else {
            return false;
        };
        p.live.muted = muted;
        let call = p.call;
        if let Some(session) = self
            .calls
            .get(&call)
            .and_then(|e| e.media.as_ref())
            .map(|m| m.session)
        {
            let tenant = self.calls.get(&call).and_then(|e| e.tenant);
            self.outputs
                .push_back(Output::Media(MediaCommand::MuteParticipant {
                    session,
                    leg: MediaLeg::Caller,
                    muted,
                }));
            // The participant hears that its microphone is off (or on again), over the room.
            let prompt = if muted {
                "conference/muted"
            } else {
                "conference/unmuted"
            };
            self.outputs
                .push_back(Output::Media(MediaCommand::ParticipantPrompt {
                    session,
                    leg: MediaLeg::Caller,
                    sound: ConferenceSound::Prompts {
                        tenant,
                        names: vec![prompt.into()],
                    },
                }));
        }
        true
    }

    fn kick(&mut self, now: Now, room: i64, participant: u32) -> bool {
        let Some(call) = self.present(room, participant).map(|p| p.call) else {
            return false;
        };
        if let Some(r) = self.conferences.running.get_mut(&room) {
            r.past_reason(call, LeftBecause::Kicked);
        }
        self.conference_hang_up(now, call, "removed from the conference");
        true
    }

    /// A control from the CLI.
    pub(super) fn conference_control(
        &mut self,
        now: Now,
        room: i64,
        control: RoomControl,
    ) -> ControlResult {
        let Some(r) = self.conferences.running.get_mut(&room) else {
            return ControlResult::NotRunning;
        };
        let applied = match control {
            RoomControl::Lock | RoomControl::Unlock => {
                r.locked = control == RoomControl::Lock;
                true
            }
            RoomControl::Mute(p) => self.set_muted(room, p, true),
            RoomControl::Unmute(p) => self.set_muted(room, p, false),
            RoomControl::Kick(p) => self.kick(now, room, p),
        };
        if applied {
            ControlResult::Done
        } else {
            ControlResult::NoSuchParticipant
        }
    }

    /// The media plane's voice activity for a participant.
    pub(super) fn conference_talking(&mut self, id: CallId, talking: bool) {
        let Some(room) = self
            .calls
            .get(&id)
            .and_then(|e| e.conference.as_ref())
            .map(|c| c.room)
        else {
            return;
        };
        if let Some(p) = self
            .conferences
            .running
            .get_mut(&room)
            .and_then(|r| r.participants.iter_mut().find(|p| p.call == id))
        {
            p.live.talking = talking;
        }
    }

    /// Plays `prompts` to the caller (answering it first), then hangs up.
    fn end_conference_call(&mut self, now: Now, id: CallId, prompts: Vec<String>) {
        self.answer_here(now, id);
        if let Some(c) = self.conference_leg(id) {
            c.stage = Stage::Goodbye;
        }
        self.prompt_caller(id, prompts);
        self.arm(
            now.mono + Duration::from_secs(30),
            id,
            CallTimer::QueueHangUp,
        );
    }

    /// Ends a conference call from our side.
    pub(super) fn conference_hang_up(&mut self, now: Now, id: CallId, reason: &str) {
        let Some(e) = self.calls.get_mut(&id) else {
            return;
        };
        if e.call.state == CallState::Ended {
            return;
        }
        let outcome = if e.call.answered_ms.is_some()
            && e.conference
                .as_ref()
                .is_some_and(|c| c.participant.is_some())
        {
            Outcome::Answered
        } else {
            Outcome::Missed
        };
        e.call.end(outcome, reason, Self::now_ms(now));
        self.send_bye(now, id, Side::Inbound);
        self.finish_if_done(id);
    }

    /// A conference call is ending: the participant leaves its room; the room's record
    /// is reported when the last one leaves, and the others are hung up when the last
    /// moderator of a room that ends with its moderator leaves.
    pub(super) fn leave_conference(&mut self, id: CallId) {
        let Some(now) = self.last_now else { return };
        let Some(c) = self.calls.get_mut(&id).and_then(|e| e.conference.as_mut()) else {
            return;
        };
        let (room, Some(_)) = (c.room, c.participant.take()) else {
            return;
        };
        let now_ms = Self::now_ms(now);
        let end_with_moderator = self
            .conferences
            .rooms
            .get(&room)
            .is_some_and(|r| r.end_when_moderator_leaves);
        let Some(r) = self.conferences.running.get_mut(&room) else {
            return;
        };
        let Some(pos) = r.participants.iter().position(|p| p.call == id) else {
            return;
        };
        let p = r.participants.remove(pos);
        let end = p.leaving.unwrap_or(LeftBecause::Left);
        r.past.push(ParticipantReport {
            sip_call_id: p.sip_call_id,
            user: p.live.user,
            number: p.live.number,
            name: p.live.name,
            moderator: p.live.moderator,
            joined_ms: p.live.joined_ms,
            left_ms: now_ms,
            end,
        });
        let room_ends = p.live.moderator
            && end_with_moderator
            && !r.participants.iter().any(|q| q.live.moderator);
        let others: Vec<CallId> = r.participants.iter().map(|q| q.call).collect();
        if room_ends {
            for call in &others {
                r.past_reason(*call, LeftBecause::RoomEnded);
            }
            for call in others {
                self.conference_hang_up(now, call, "the moderator left the conference");
            }
        }
        let empty = self
            .conferences
            .running
            .get(&room)
            .is_some_and(|r| r.participants.is_empty());
        if !empty && !room_ends {
            self.outputs
                .push_back(Output::Media(MediaCommand::ConferencePrompt {
                    room: ConferenceId(room as u64),
                    sound: ConferenceSound::Beep(BeepKind::Exit),
                }));
        }
        if empty {
            if let Some(r) = self.conferences.running.remove(&room) {
                self.outputs
                    .push_back(Output::Media(MediaCommand::CloseConference {
                        room: ConferenceId(room as u64),
                    }));
                self.outputs
                    .push_back(Output::ConferenceEnded(Box::new(ConferenceReport {
                        tenant_id: r.tenant_id,
                        origin: ReportOrigin::Room { room, name: r.name },
                        started_ms: r.started_ms,
                        ended_ms: now_ms,
                        participants: r.past,
                    })));
            }
        }
    }
}

impl Running {
    /// Remembers why a participant is about to leave (kicked, room ended) until it does.
    fn past_reason(&mut self, call: CallId, why: LeftBecause) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.call == call) {
            p.leaving = Some(why);
        }
    }
}
