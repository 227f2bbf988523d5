//! The typed records of conferences as the store reads and writes them: rooms and their
//! PINs, the snapshot the daemon loads, the conference log, the live state and the
//! control commands between the CLI and the daemon. Plain data: the mixer
//! (`crate::media::mixer`) has its own vocabulary, and the runtime maps between the two.

use std::fmt;
use std::str::FromStr;

use super::model::{text_enum, CallId, TenantId, UserId, UserRef};
use super::StoreError;

/// A conference room's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConferenceRoomId(pub i64);

impl fmt::Display for ConferenceRoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A conference log row id (one conference that happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConferenceId(pub i64);

impl fmt::Display for ConferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A control command's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConferenceCommandId(pub i64);

impl fmt::Display for ConferenceCommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The daemon's number for a participant in a room: unique in the room while the
/// participant is in it, and what `conference mute|unmute|kick` takes (so small numbers
/// are kinder to type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LiveParticipantId(pub u32);

impl fmt::Display for LiveParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A room PIN in memory: `Debug` never prints it. Only its argon2id hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomPin(String);

impl RoomPin {
    /// Wraps the digits a user typed (checked by the store: 4 to 12 digits).
    pub fn new(digits: impl Into<String>) -> Self {
        RoomPin(digits.into())
    }

    /// The digits (only for hashing and verifying).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoomPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomPin(***)")
    }
}

/// Whom a correct PIN admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinRole {
    /// The room's PIN: a participant.
    Participant,
    /// The moderator PIN: a moderator (mutes others, kicks, locks).
    Moderator,
}

/// Default maximum number of participants of a room.
pub const DEFAULT_MAX_PARTICIPANTS: u32 = 50;

/// A room to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    /// Name, unique in the tenant ignoring ASCII case.
    pub name: String,
    /// Extension to dial in on, 2 to 6 digits, unique in the tenant among rooms and users.
    pub extension: String,
    /// A dial-in number (E.164): a main or conference number of the tenant leading
    /// nowhere, or a number nobody owns (added to the tenant as a conference number).
    pub number: Option<String>,
    /// The PIN participants enter (4 to 12 digits); `None`: no PIN.
    pub pin: Option<RoomPin>,
    /// The PIN moderators enter (4 to 12 digits, not the participants' PIN).
    pub moderator_pin: Option<RoomPin>,
    /// At most this many participants at once (2 to 500).
    pub max_participants: u32,
    /// The room's owner, a user of the tenant: a moderator without a PIN.
    pub owner: Option<UserId>,
    /// End the conference when the last moderator leaves.
    pub end_when_moderator_leaves: bool,
    /// Conferences start locked (newcomers refused until a moderator unlocks).
    pub locked: bool,
}

impl NewRoom {
    /// A room with the defaults: no number, no PINs, 50 participants, no owner, not
    /// ended by the moderator leaving, unlocked.
    pub fn new(name: impl Into<String>, extension: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            extension: extension.into(),
            number: None,
            pin: None,
            moderator_pin: None,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            owner: None,
            end_when_moderator_leaves: false,
            locked: false,
        }
    }
}

/// Changes to a room; `None` keeps a value, and for the optional ones `Some(None)`
/// removes it (no number, no PIN, no owner). Applied in one transaction, all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new extension.
    pub extension: Option<String>,
    /// A new dial-in number (the old one stays with the tenant, leading nowhere).
    pub number: Option<Option<String>>,
    /// A new PIN, or none.
    pub pin: Option<Option<RoomPin>>,
    /// A new moderator PIN, or none.
    pub moderator_pin: Option<Option<RoomPin>>,
    /// A new maximum number of participants.
    pub max_participants: Option<u32>,
    /// A new owner, or none.
    pub owner: Option<Option<UserId>>,
    /// End the conference when the last moderator leaves.
    pub end_when_moderator_leaves: Option<bool>,
    /// The lock state conferences start with.
    pub locked: Option<bool>,
}

/// A conference room (no PIN hashes: only whether it has PINs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceRoom {
    /// Row id.
    pub id: ConferenceRoomId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub name: String,
    /// Extension.
    pub extension: String,
    /// The dial-in number leading to it, if any.
    pub number: Option<String>,
    /// Participants must enter a PIN (or the moderator PIN).
    pub has_pin: bool,
    /// A moderator PIN is set.
    pub has_moderator_pin: bool,
    /// At most this many participants at once.
    pub max_participants: u32,
    /// The owner (None if none, or removed since).
    pub owner: Option<UserRef>,
    /// The conference ends when the last moderator leaves.
    pub end_when_moderator_leaves: bool,
    /// Conferences start locked.
    pub locked: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A room in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    /// The room.
    pub room: ConferenceRoom,
    /// Its tenant's name.
    pub tenant_name: String,
}

/// Every room, as the daemon loads them, read in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomsSnapshot {
    /// The revision this snapshot shows (see
    /// [`conference_config_revision`](super::StoreHandle::conference_config_revision)).
    pub revision: i64,
    /// Every room of every tenant, by id.
    pub rooms: Vec<ConferenceRoom>,
}

// ---- the conference log ----

text_enum!(
    /// How a participant's stay in a conference ended.
    ParticipantEnd, "conference_participants.end_reason", {
        /// The participant hung up (or the call failed).
        Left => "left",
        /// A moderator (or the CLI) kicked the participant.
        Kicked => "kicked",
        /// The conference ended with the participant in it (the moderator left, the last
        /// two of an ad-hoc conference went back to a plain call, shutdown).
        RoomEnded => "room-ended",
    }
);

/// Where a conference took place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConferenceOrigin {
    /// In a room.
    Room {
        /// The room (stored as absent if it was removed meanwhile).
        room: ConferenceRoomId,
        /// The room's name at the time.
        name: String,
    },
    /// Made from calls in progress (no room).
    AdHoc,
}

/// One participant's stay, as the daemon reports it. Wrong-PIN callers never joined and
/// are not participants (their own call's log tells).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantRecord {
    /// The SIP Call-ID of the participant's leg: links the participant to its call log
    /// row, whether that row is written before or after the conference.
    pub sip_call_id: Option<String>,
    /// The user, if the participant is one of the tenant's users.
    pub user: Option<UserId>,
    /// The caller's number (E.164, extension, or e.g. "anonymous").
    pub number: String,
    /// The caller's name, if known.
    pub name: Option<String>,
    /// Joined as a moderator.
    pub moderator: bool,
    /// Joined, Unix ms.
    pub joined_at_ms: i64,
    /// Left, Unix ms.
    pub left_at_ms: i64,
    /// How the stay ended.
    pub end: ParticipantEnd,
}

/// A finished conference, written in one transaction with its participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceRecord {
    /// The tenant.
    pub tenant: TenantId,
    /// The room, or ad hoc.
    pub origin: ConferenceOrigin,
    /// Started (the first participant joined), Unix ms.
    pub started_at_ms: i64,
    /// Ended, Unix ms.
    pub ended_at_ms: i64,
    /// The stays, in the order they began.
    pub participants: Vec<ParticipantRecord>,
}

/// Which conferences [`list_conferences`](super::StoreHandle::list_conferences) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceLogFilter {
    /// The tenant.
    pub tenant: TenantId,
    /// Only conferences in this room.
    pub room: Option<ConferenceRoomId>,
    /// Only conferences this user took part in.
    pub user: Option<UserId>,
    /// Only conferences started at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// One participant's stay, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantSummary {
    /// The participant's call log row, once both are written (None before, or after the
    /// call's retention).
    pub call_id: Option<CallId>,
    /// The user (None if not a user, or removed since).
    pub user: Option<UserRef>,
    /// The caller's number.
    pub number: String,
    /// The caller's name.
    pub name: Option<String>,
    /// Joined as a moderator.
    pub moderator: bool,
    /// Joined, Unix ms.
    pub joined_at_ms: i64,
    /// Left, Unix ms.
    pub left_at_ms: i64,
    /// How the stay ended.
    pub end: ParticipantEnd,
}

/// One conference, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceSummary {
    /// Row id.
    pub id: ConferenceId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The room (None for an ad-hoc conference, or a room removed since).
    pub room_id: Option<ConferenceRoomId>,
    /// The room's name at the time (None: ad hoc).
    pub room_name: Option<String>,
    /// Made from calls in progress.
    pub ad_hoc: bool,
    /// Started, Unix ms.
    pub started_at_ms: i64,
    /// Ended, Unix ms.
    pub ended_at_ms: i64,
    /// The stays, in the order they began.
    pub participants: Vec<ParticipantSummary>,
}

// ---- live state ----

/// A participant currently in a room, as the daemon writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveParticipant {
    /// The daemon's number for the participant.
    pub id: LiveParticipantId,
    /// The user, if the participant is one.
    pub user: Option<UserId>,
    /// The caller's number.
    pub number: String,
    /// The caller's name.
    pub name: Option<String>,
    /// Joined, Unix ms.
    pub joined_at_ms: i64,
    /// Muted (by themselves or a moderator).
    pub muted: bool,
    /// Voice activity now.
    pub talking: bool,
    /// A moderator.
    pub moderator: bool,
}

/// A room with a conference running, as the daemon writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceLive {
    /// The room.
    pub room: ConferenceRoomId,
    /// Locked now (newcomers refused).
    pub locked: bool,
    /// The conference started, Unix ms.
    pub started_at_ms: i64,
    /// Its participants, by id.
    pub participants: Vec<LiveParticipant>,
}

/// The live state of a tenant's rooms as last written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConferenceLiveSnapshot {
    /// When the daemon last wrote the live state, Unix ms (None: never). Compare with the
    /// clock to tell a running daemon from a stopped one.
    pub updated_at_ms: Option<i64>,
    /// The rooms with a conference running, by room id.
    pub rooms: Vec<ConferenceLive>,
}

// ---- control commands ----

text_enum!(
    /// What a control command asks the daemon to do.
    ConferenceAction, "conference_commands.action", {
        /// Mute a participant.
        Mute => "mute",
        /// Unmute a participant.
        Unmute => "unmute",
        /// Hang up a participant.
        Kick => "kick",
        /// Refuse newcomers.
        Lock => "lock",
        /// Admit newcomers again.
        Unlock => "unlock",
    }
);

text_enum!(
    /// How a control command ended.
    CommandResult, "conference_commands.result", {
        /// Applied.
        Done => "done",
        /// No conference is running in the room.
        NotRunning => "not-running",
        /// The room has no participant with that number.
        NoSuchParticipant => "no-such-participant",
        /// The daemon could not apply it.
        Failed => "failed",
        /// Nobody took it in time (daemon not running); it will never be applied.
        Expired => "expired",
    }
);

/// A control of a running conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConferenceControl {
    /// Mute a participant.
    Mute(LiveParticipantId),
    /// Unmute a participant.
    Unmute(LiveParticipantId),
    /// Hang up a participant.
    Kick(LiveParticipantId),
    /// Refuse newcomers.
    Lock,
    /// Admit newcomers again.
    Unlock,
}

impl ConferenceControl {
    /// The action, without its participant.
    pub fn action(self) -> ConferenceAction {
        match self {
            ConferenceControl::Mute(_) => ConferenceAction::Mute,
            ConferenceControl::Unmute(_) => ConferenceAction::Unmute,
            ConferenceControl::Kick(_) => ConferenceAction::Kick,
            ConferenceControl::Lock => ConferenceAction::Lock,
            ConferenceControl::Unlock => ConferenceAction::Unlock,
        }
    }

    /// The participant it addresses (None for lock and unlock).
    pub fn participant(self) -> Option<LiveParticipantId> {
        match self {
            ConferenceControl::Mute(p)
            | ConferenceControl::Unmute(p)
            | ConferenceControl::Kick(p) => Some(p),
            ConferenceControl::Lock | ConferenceControl::Unlock => None,
        }
    }

    /// Rebuilds a control from its stored parts (None if they do not fit together).
    pub fn from_parts(
        action: ConferenceAction,
        participant: Option<LiveParticipantId>,
    ) -> Option<Self> {
        match (action, participant) {
            (ConferenceAction::Mute, Some(p)) => Some(ConferenceControl::Mute(p)),
            (ConferenceAction::Unmute, Some(p)) => Some(ConferenceControl::Unmute(p)),
            (ConferenceAction::Kick, Some(p)) => Some(ConferenceControl::Kick(p)),
            (ConferenceAction::Lock, None) => Some(ConferenceControl::Lock),
            (ConferenceAction::Unlock, None) => Some(ConferenceControl::Unlock),
            _ => None,
        }
    }
}

/// A command the daemon is to apply (taken by
/// [`pending_conference_commands`](super::StoreHandle::pending_conference_commands)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceCommand {
    /// Row id, to report the result with.
    pub id: ConferenceCommandId,
    /// The room.
    pub room: ConferenceRoomId,
    /// The room's tenant.
    pub tenant: TenantId,
    /// What to do.
    pub control: ConferenceControl,
    /// When the CLI sent it, Unix ms.
    pub created_at_ms: i64,
}

/// Where a command stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStatus {
    /// Row id.
    pub id: ConferenceCommandId,
    /// The room.
    pub room: ConferenceRoomId,
    /// What it asks.
    pub control: ConferenceControl,
    /// Sent, Unix ms.
    pub created_at_ms: i64,
    /// Taken by the daemon, Unix ms (None: not yet).
    pub taken_at_ms: Option<i64>,
    /// Finished (by the daemon, or expired), Unix ms.
    pub done_at_ms: Option<i64>,
    /// How it ended (None while not finished).
    pub result: Option<CommandResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_never_show_in_debug() {
        let p = RoomPin::new("123456");
        assert_eq!(format!("{p:?}"), "RoomPin(***)");
        let room = NewRoom {
            pin: Some(p.clone()),
            moderator_pin: Some(RoomPin::new("987654")),
            ..NewRoom::new("Board", "800")
        };
        let shown = format!("{room:?}");
        assert!(
            !shown.contains("123456") && !shown.contains("987654"),
            "{shown}"
        );
        let changes = RoomChanges {
            pin: Some(Some(p)),
            ..RoomChanges::default()
        };
        assert!(!format!("{changes:?}").contains("123456"));
    }

    #[test]
    fn controls_round_trip_through_their_parts() {
        let p = LiveParticipantId(3);
        for c in [
            ConferenceControl::Mute(p),
            ConferenceControl::Unmute(p),
            ConferenceControl::Kick(p),
            ConferenceControl::Lock,
            ConferenceControl::Unlock,
        ] {
            assert_eq!(
                ConferenceControl::from_parts(c.action(), c.participant()),
                Some(c)
            );
            assert_eq!(
                c.action().as_str().parse::<ConferenceAction>().ok(),
                Some(c.action())
            );
        }
        assert_eq!(
            ConferenceControl::from_parts(ConferenceAction::Kick, None),
            None
        );
        assert_eq!(
            ConferenceControl::from_parts(ConferenceAction::Lock, Some(p)),
            None
        );
        for r in CommandResult::ALL {
            assert_eq!(r.as_str().parse::<CommandResult>().ok(), Some(*r));
        }
        assert!(matches!(
            "wrong-pin".parse::<ParticipantEnd>(),
            Err(StoreError::BadRow {
                column: "conference_participants.end_reason"
            })
        ));
    }
}
