//! Persistent storage: SQLite on its own threads.
//!
//! Inputs: typed commands from async code (the runtime, the API) or blocking code (the
//! provisioning CLI), sent through a [`StoreHandle`]. Outputs: each command's result,
//! delivered on a oneshot channel as a [`Reply`] that can be `.await`ed or
//! [`Reply::wait`]ed. No timers; no configuration keys beyond the file path and
//! [`StoreOptions`].
//!
//! Threads: ONE writer thread owns the only write connection and applies commands in the
//! order they were queued (so writes never race and never wait on each other for the
//! SQLite write lock inside this process); a small pool of reader threads serves queries
//! on read-only connections, which WAL mode lets run while the writer commits.
//! Both queues are bounded: when full, a command fails at once with
//! [`StoreError::QueueFull`] instead of blocking the async runtime.
//!
//! Shutdown: [`Store::close`] (or dropping the [`Store`]) queues a shutdown marker behind
//! every command already queued, so queued writes are applied before the threads are
//! joined: nothing accepted is lost on a clean shutdown.
//!
//! Schema and migrations live in [`schema`]; the SQL of each operation in `repo`
//! (tenants, users, registrations), `directory` (contacts, the local caller-name
//! lookup, the external lookup cache), `calllog` (calls, legs, users, retention),
//! `settings` (per-user call settings: forwarding, presented number), `queues` (queue
//! provisioning, the configuration snapshot and its revision) and `queuelog` (the queue
//! call log written with each call, missed calls handled, statistics, per-tenant
//! retention, the live snapshot), `conference` (rooms, their PINs, the snapshot and its
//! revision, the conference log, the live state, the control commands), `call_commands`
//! (the CLI's commands about calls in progress); the CSV reader of directory imports in
//! [`csv`]; the queue records in [`queue_model`], the conference records in
//! [`conference_model`], the call commands in [`call_command_model`].
//!
//! Queues: the daemon polls [`StoreHandle::queue_config_revision`] (bumped by SQLite
//! triggers on every change of the queue configuration, whoever makes it) and reloads
//! [`StoreHandle::load_queue_config`] when it changed.
//!
//! Conferences: the daemon polls [`StoreHandle::conference_config_revision`] the same way
//! and reloads [`StoreHandle::load_rooms`]; it writes [`StoreHandle::write_conference_live`]
//! each second, takes the CLI's controls with [`StoreHandle::pending_conference_commands`]
//! and answers them with [`StoreHandle::finish_conference_command`], and writes each
//! finished conference with [`StoreHandle::write_conference`]. Room PINs are argon2id
//! hashes (hashed on the writer thread, verified on a reader thread by
//! [`StoreHandle::verify_room_pin`]); a PIN is never stored, printed or logged.
//!
//! Calls in progress: the CLI asks the daemon to merge a user's two answered calls with
//! [`StoreHandle::send_merge_command`]; the daemon takes such commands with
//! [`StoreHandle::pending_call_commands`] and answers them with
//! [`StoreHandle::finish_call_command`] (`call_commands`, the same life as the
//! conference controls).
//!
//! Time is an input here too: cache expiry and call retention take `now` / a cutoff
//! from the caller; only audit `created_at` columns use SQLite's clock.
//!
//! Call log: [`StoreHandle::write_call`] writes a call, its legs and users in one
//! transaction and never fails on content (text from the network is cleaned and cut,
//! not refused), so a caller cannot keep a call out of the log.
//! [`StoreHandle::delete_calls_before`] is the 30-day retention.
//! Secrets: plain passwords are hashed into digest HA1 values ([`credentials`]) on the
//! writer thread and never stored or logged; `Debug` of every type holding a password or
//! an HA1 redacts it.

pub mod call_command_model;
mod call_commands;
mod calllog;
mod conference;
pub mod conference_model;
pub mod credentials;
pub mod csv;
mod directory;
pub mod model;
pub mod queue_model;
mod queuelog;
mod queues;
mod repo;
pub mod schema;
mod service;
mod settings;
pub mod validate;

use std::fmt;
use std::path::PathBuf;

pub use call_command_model::{
    CallAction, CallCommand, CallCommandId, CallCommandResult, CallCommandStatus,
};
pub use conference::COMMAND_MAX_AGE_MS;
pub use conference_model::{
    CommandResult, CommandStatus, ConferenceAction, ConferenceCommand, ConferenceCommandId,
    ConferenceControl, ConferenceId, ConferenceLive, ConferenceLiveSnapshot, ConferenceLogFilter,
    ConferenceOrigin, ConferenceRecord, ConferenceRoom, ConferenceRoomId, ConferenceSummary,
    LiveParticipant, LiveParticipantId, NewRoom, ParticipantEnd, ParticipantRecord,
    ParticipantSummary, PinRole, RoomChanges, RoomPin, RoomSummary, RoomsSnapshot,
};
pub use directory::{MAX_CACHED_ADDRESS_LEN, MAX_CACHED_NAME_LEN, MAX_CSV_BYTES};
pub use model::{
    Binding, CachedLookup, CallFilter, CallId, CallOutcome, CallRecord, CallSummary, CallUserRole,
    Contact, ContactId, Direction, ForwardReason, ImportReport, LegKind, LegRecord, LocalName,
    MediaLegKind, MediaStatsRecord, NewContact, NewUser, NumberKind, Password, PresentableNumbers,
    Presentation, RejectReason, SipCredentials, Source, Tenant, TenantId, TenantNumber,
    TenantSummary, User, UserId, UserRef, UserSettings,
};
pub use queue_model::{
    AgentPresence, AgentState, LocalDate, OfferRecord, OfferResult, OfferSummary, OperatorStats,
    OverflowCondition, OverflowRule, OverflowRuleInfo, OverflowTarget, Queue, QueueConfig,
    QueueConfigSnapshot, QueueDefinition, QueueDetails, QueueHoliday, QueueId, QueueKind,
    QueueLive, QueueLogFilter, QueueMember, QueueSettings, QueueStats, QueueStatsReport,
    QueueStrategy, QueueSummary, QueueVisitRecord, QueueVisitSummary, TenantSettings, VipNumber,
    VisitId, VisitOutcome, WeeklyHours,
};
pub use service::{Reply, Store, StoreHandle, StoreOptions};

/// An input field or a stored column, named in errors so the user knows what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// A tenant's name.
    TenantName,
    /// A phone number in E.164 form.
    Number,
    /// The kind of a tenant number.
    NumberKind,
    /// A user's display name.
    UserName,
    /// A user's extension.
    Extension,
    /// A user's mobile number.
    Mobile,
    /// A user's SIP (digest) username.
    SipUsername,
    /// A digest realm.
    Realm,
    /// A user's password.
    Password,
    /// A binding's address-of-record.
    Aor,
    /// A binding's Contact URI.
    Contact,
    /// A binding's Contact parameters.
    ContactParams,
    /// A binding's q-value.
    Q,
    /// A binding's Call-ID.
    CallId,
    /// Where a REGISTER came from.
    Source,
    /// A binding's `+sip.instance`.
    Instance,
    /// A binding's Path header values.
    Path,
    /// A binding's User-Agent.
    UserAgent,
    /// A directory contact's number (E.164), unique in the tenant's directory.
    ContactNumber,
    /// A contact's first name.
    FirstName,
    /// A contact's last name.
    LastName,
    /// A contact's company.
    Company,
    /// A contact's department.
    Department,
    /// A contact's note.
    Note,
    /// A CSV file as a whole.
    Csv,
    /// A user's unconditional forwarding target.
    ForwardAlways,
    /// A user's forwarding target when busy.
    ForwardBusy,
    /// A user's forwarding target when not answering.
    ForwardNoAnswer,
    /// How long a user's phones ring before no-answer forwarding, seconds.
    NoAnswerSeconds,
    /// Which number a user's outgoing calls present.
    Presentation,
    /// A queue's name.
    QueueName,
    /// How long one offer of a queue call rings, seconds.
    RingTimeout,
    /// A queue's wrap-up time, seconds.
    WrapUp,
    /// A queue's maximum wait, seconds.
    MaxWait,
    /// A queue's maximum number of waiting callers.
    MaxCallers,
    /// How often waiting callers hear their position, seconds.
    AnnounceEvery,
    /// A queue's greeting prompt.
    Greeting,
    /// A member's position in a queue.
    Position,
    /// An overflow rule's target.
    OverflowTarget,
    /// A queue's opening hours.
    Hours,
    /// A calendar date.
    Date,
    /// A tenant's time zone.
    TimeZone,
    /// How many days a tenant's queue history is kept.
    RetentionDays,
    /// Why an agent paused.
    PauseReason,
    /// A VIP number.
    VipNumber,
    /// A conference room's name.
    ConferenceName,
    /// A conference room's PIN.
    Pin,
    /// A conference room's moderator PIN.
    ModeratorPin,
    /// A conference room's maximum number of participants.
    MaxParticipants,
}

impl Field {
    /// The human-readable name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::TenantName => "tenant name",
            Field::Number => "number",
            Field::NumberKind => "number kind",
            Field::UserName => "name",
            Field::Extension => "extension",
            Field::Mobile => "mobile",
            Field::SipUsername => "sip username",
            Field::Realm => "realm",
            Field::Password => "password",
            Field::Aor => "aor",
            Field::Contact => "contact",
            Field::ContactParams => "contact params",
            Field::Q => "q",
            Field::CallId => "call-id",
            Field::Source => "source",
            Field::Instance => "instance",
            Field::Path => "path",
            Field::UserAgent => "user-agent",
            Field::ContactNumber => "contact number",
            Field::FirstName => "first name",
            Field::LastName => "last name",
            Field::Company => "company",
            Field::Department => "department",
            Field::Note => "note",
            Field::Csv => "csv",
            Field::ForwardAlways => "forward always",
            Field::ForwardBusy => "forward busy",
            Field::ForwardNoAnswer => "forward no-answer",
            Field::NoAnswerSeconds => "no-answer seconds",
            Field::Presentation => "presentation",
            Field::QueueName => "queue name",
            Field::RingTimeout => "ring timeout",
            Field::WrapUp => "wrap-up",
            Field::MaxWait => "max wait",
            Field::MaxCallers => "max callers",
            Field::AnnounceEvery => "announce every",
            Field::Greeting => "greeting",
            Field::Position => "position",
            Field::OverflowTarget => "overflow target",
            Field::Hours => "hours",
            Field::Date => "date",
            Field::TimeZone => "time zone",
            Field::RetentionDays => "queue retention days",
            Field::PauseReason => "pause reason",
            Field::VipNumber => "vip number",
            Field::ConferenceName => "conference name",
            Field::Pin => "pin",
            Field::ModeratorPin => "moderator pin",
            Field::MaxParticipants => "max participants",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kind of stored record, named in "not found" errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    /// A tenant.
    Tenant,
    /// A tenant number.
    Number,
    /// A user.
    User,
    /// A directory contact.
    Contact,
    /// A call log entry.
    Call,
    /// A queue or answer group.
    Queue,
    /// A member of a queue.
    Member,
    /// An overflow rule.
    OverflowRule,
    /// A holiday of a queue.
    Holiday,
    /// A VIP number.
    Vip,
    /// A conference room.
    Room,
    /// A conference control command.
    ConferenceCommand,
    /// A command about a user's calls in progress.
    CallCommand,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Tenant => "tenant",
            Entity::Number => "number",
            Entity::User => "user",
            Entity::Contact => "contact",
            Entity::Call => "call",
            Entity::Queue => "queue",
            Entity::Member => "queue member",
            Entity::OverflowRule => "overflow rule",
            Entity::Holiday => "holiday",
            Entity::Vip => "vip number",
            Entity::Room => "conference room",
            Entity::ConferenceCommand => "conference command",
            Entity::CallCommand => "call command",
        })
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory that should hold the database could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database file could not be created.
    #[error("cannot create database file {path}: {source}")]
    CreateFile {
        /// The database file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file cannot be put in WAL mode (e.g. an in-memory database), which the
    /// concurrent readers need.
    #[error("database {path} is in journal mode {mode:?}; WAL is required")]
    NotWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The database was written by a newer sentralbord; refusing to touch it.
    #[error(
        "database schema version {found} is newer than this binary supports ({supported}); \
         upgrade sentralbord or restore a matching backup"
    )]
    SchemaTooNew {
        /// The version found in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// A migration step failed; the database stays at the previous version.
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        /// The version the failed step would have reached.
        version: i64,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// An input value is malformed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: Field,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A value that must be unique is already taken.
    #[error("{field} already exists{scope}", scope = match .field {
        Field::Extension => " in this tenant",
        Field::SipUsername => " in this realm",
        Field::ContactNumber => " in this tenant's directory",
        Field::QueueName => " in this tenant",
        Field::VipNumber => " in this tenant's VIP list",
        Field::ConferenceName => " in this tenant",
        _ => "",
    })]
    Duplicate {
        /// The field whose uniqueness was violated.
        field: Field,
    },
    /// The referenced record does not exist.
    #[error("{0} not found")]
    NotFound(Entity),
    /// A tenant still has users, numbers, queues or conference rooms and removal was not
    /// forced.
    #[error(
        "tenant still has {users} user(s), {numbers} number(s), {queues} queue(s) and {rooms} \
         conference room(s); remove them first or force"
    )]
    TenantInUse {
        /// Users of the tenant.
        users: u64,
        /// Numbers of the tenant.
        numbers: u64,
        /// Queues and answer groups of the tenant.
        queues: u64,
        /// Conference rooms of the tenant.
        rooms: u64,
    },
    /// A queue is another queue's overflow target and removal was not forced.
    #[error("queue is the overflow target of {referring}; change those rules first or force")]
    QueueInUse {
        /// The referring queues and conditions, e.g. `queue "Sales" (max-wait)`.
        referring: String,
    },
    /// A PIN could not be hashed (the system's random source or argon2 failed); nothing
    /// was stored.
    #[error("cannot hash the PIN: {0}")]
    PinHash(&'static str),
    /// A stored value could not be decoded (the file was edited by hand or is damaged).
    #[error("unexpected value in stored column {column}")]
    BadRow {
        /// The column holding the value.
        column: &'static str,
    },
    /// A CSV import's header row is unusable, so no line can be read.
    #[error("csv header: {0}")]
    CsvHeader(#[from] csv::HeaderError),
    /// The command queue is full: the database is not keeping up. Retry later.
    #[error("store queue is full")]
    QueueFull,
    /// The store has been closed (or its thread died); the command was not applied.
    #[error("store is closed")]
    Closed,
    /// A store thread could not be started.
    #[error("cannot start store thread: {0}")]
    Spawn(std::io::Error),
    /// A store thread panicked (a bug); found when joining it on close.
    #[error("a store thread panicked")]
    ThreadPanicked,
    /// Any other SQLite error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
