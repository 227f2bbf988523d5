//! Provisioning and administration commands (`sentralbord tenant ...`, `user ...`,
//! `directory ...`, `calls ...`, `queue ...`, `conference ...`).
//!
//! The binary embeds [`TenantCommand`], [`UserCommand`], [`DirectoryCommand`],
//! [`CallsCommand`], [`QueueCommand`] and [`ConferenceCommand`] as clap subcommands and
//! calls [`run_tenant`] / [`run_user`] / [`run_directory`] / [`run_calls`] /
//! [`run_queue`] / [`run_conference`] with the database path (for users, also the realm
//! of the `phones` profile as the default realm; for queues and conferences, the wall
//! clock). Each run opens the store, applies one command
//! through the blocking API, prints a human-readable result to stdout and closes the
//! store (which waits for the write to be applied). Safe to run while the daemon runs:
//! SQLite's WAL mode and busy timeout serialize the two processes' writes.
//!
//! Passwords are read from stdin (`--password-stdin`), the environment variable
//! [`PASSWORD_ENV`], or a prompt; never from the command line (it shows in `ps` and
//! shell history). Passwords and HA1 hashes are never printed or logged.

mod calls;
mod conference;
mod directory;
pub mod hours;
mod queue;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use crate::store::{
    validate, Entity, Field, NewUser, NumberKind, Password, Presentation, Store, StoreError,
    StoreHandle, StoreOptions, Tenant, TenantSettings, User, UserSettings,
};

pub use calls::{run_calls, run_calls_with, CallsCommand};
pub use conference::{
    run_conference, run_conference_with, CliClock, ConferenceAddArgs, ConferenceCommand,
    ConferenceSetArgs, MergeArgs, ParticipantArgs, RoomArgs, RoomOptions, SystemClock,
    COMMAND_WAIT,
};
pub use directory::{run_directory, run_directory_with, DirectoryAddArgs, DirectoryCommand};
pub use queue::{
    run_queue, run_queue_with, AgentCommand, ConditionArg, HolidayCommand, KindArg as QueueKindArg,
    MemberCommand, OverflowArgs, QueueAddArgs, QueueCommand, QueueOptions, QueueSetArgs,
    StrategyArg, VipCommand, LIVE_STALE_AFTER_MS,
};

/// The environment variable a new password may be taken from.
pub const PASSWORD_ENV: &str = "SENTRALBORD_USER_PASSWORD";

/// Everything that can go wrong in a provisioning command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The store refused or failed (its message names the bad field).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No tenant has this name.
    #[error("tenant: no tenant named {0:?}")]
    TenantNotFound(String),
    /// The tenant has no user with this extension.
    #[error("extension: tenant {tenant:?} has no user with extension {extension}")]
    UserNotFound {
        /// The tenant's name.
        tenant: String,
        /// The extension asked for.
        extension: String,
    },
    /// The tenant does not have this number.
    #[error("number: tenant {tenant:?} does not have number {number}")]
    NumberNotFound {
        /// The tenant's name.
        tenant: String,
        /// The number asked for.
        number: String,
    },
    /// No `--realm` and no default realm from the configuration.
    #[error("realm: not given with --realm and no default realm is configured")]
    NoRealm,
    /// Reading the password failed.
    #[error("password: cannot read it: {0}")]
    PasswordRead(std::io::Error),
    /// The password input was empty (end of input).
    #[error("password: no password given")]
    NoPassword,
    /// The password environment variable is not valid UTF-8.
    #[error("password: {PASSWORD_ENV} is not valid UTF-8")]
    PasswordEnvNotUnicode,
    /// Writing the result to stdout failed.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    /// The tenant's directory has no contact with this number.
    #[error("number: tenant {tenant:?} has no contact with number {number}")]
    ContactNotFound {
        /// The tenant's name.
        tenant: String,
        /// The number asked for.
        number: String,
    },
    /// An input file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An input file is not UTF-8 text.
    #[error("{path} is not UTF-8 text; save it as \"CSV UTF-8\"")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// An input file is larger than accepted.
    #[error("{path} is larger than {limit} bytes")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The largest size accepted, bytes.
        limit: usize,
    },
    /// Some lines of an import were rejected (listed on stdout); the others were
    /// imported.
    #[error("{0} line(s) were not imported (listed above); the other lines were")]
    LinesRejected(usize),
    /// `--user` is not TENANT:EXTENSION.
    #[error("user: {0:?} is not TENANT:EXTENSION")]
    BadUserRef(String),
    /// The tenant has no queue with this name.
    #[error("queue: tenant {tenant:?} has no queue named {queue:?}")]
    QueueNotFound {
        /// The tenant's name.
        tenant: String,
        /// The queue asked for.
        queue: String,
    },
    /// Opening hours text is malformed (the option, then what is wrong).
    #[error("{0}: {1}")]
    Hours(&'static str, hours::HoursError),
    /// A date option is malformed or out of order.
    #[error("{option}: {value:?} {reason}")]
    BadDate {
        /// The option or argument.
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The user is not a member of the queue.
    #[error("extension: {extension} is not a member of queue {queue:?}")]
    NotMember {
        /// The queue's name.
        queue: String,
        /// The extension given.
        extension: String,
    },
    /// The queue has no holiday on this date.
    #[error("date: queue {queue:?} has no holiday on {date}")]
    HolidayNotFound {
        /// The queue's name.
        queue: String,
        /// The date given.
        date: String,
    },
    /// The tenant has no such VIP number.
    #[error("number: tenant {tenant:?} has no VIP number {number}")]
    VipNotFound {
        /// The tenant's name.
        tenant: String,
        /// The number given.
        number: String,
    },
    /// `--unassign` for a number that does not lead to that queue.
    #[error("number: {number} does not lead to queue {queue:?}")]
    NumberNotOfQueue {
        /// The queue's name.
        queue: String,
        /// The number given.
        number: String,
    },
    /// `unpause` for an agent who is not paused.
    #[error("extension: agent {extension} is not paused ({presence})")]
    NotPaused {
        /// The agent's extension.
        extension: String,
        /// The agent's presence.
        presence: String,
    },
    /// The tenant has no conference room with this name.
    #[error("conference: tenant {tenant:?} has no conference room named {room:?}")]
    RoomNotFound {
        /// The tenant's name.
        tenant: String,
        /// The room asked for.
        room: String,
    },
    /// Reading a PIN from stdin failed.
    #[error("{0}: cannot read it from stdin: {1}")]
    PinRead(Field, std::io::Error),
    /// A PIN was asked for but stdin had no line for it.
    #[error("{0}: no PIN on stdin (one line each: the PIN, then the moderator PIN)")]
    NoPin(Field),
    /// The daemon did not take a control command in time; it was withdrawn.
    #[error("daemon did not answer (not running?)")]
    DaemonNoAnswer,
    /// The daemon took a control command but reported no result in time.
    #[error("daemon took the command but did not report a result")]
    DaemonNoResult,
    /// No conference is running in the room.
    #[error("room: no conference is running in room {room:?}")]
    ConferenceNotRunning {
        /// The room's name.
        room: String,
    },
    /// The running conference has no participant with this number.
    #[error("participant: room {room:?} has no participant {participant}")]
    NoSuchParticipant {
        /// The room's name.
        room: String,
        /// The number given.
        participant: u32,
    },
    /// The daemon could not apply a control command.
    #[error("daemon could not apply the command to room {room:?}")]
    CommandFailed {
        /// The room's name.
        room: String,
    },
    /// A merge was asked for a user without exactly two answered calls.
    #[error("user {name:?} (extension {extension}) does not have exactly two answered calls")]
    NotTwoCalls {
        /// The user's name.
        name: String,
        /// The user's extension.
        extension: String,
    },
    /// A call to merge does not have its media anchored, so it cannot be mixed.
    #[error(
        "a call of user {name:?} (extension {extension}) does not have its media through \
         sentralbord (media anchoring off): it cannot be merged"
    )]
    CallNotAnchored {
        /// The user's name.
        name: String,
        /// The user's extension.
        extension: String,
    },
    /// A call's codec cannot be mixed, or a call is in a conference already.
    #[error(
        "the calls of user {name:?} (extension {extension}) cannot be merged: a call uses a \
         codec the mixer does not take (it takes PCMU and PCMA), or is in a conference already"
    )]
    CallsNotMixable {
        /// The user's name.
        name: String,
        /// The user's extension.
        extension: String,
    },
    /// The daemon could not merge the user's calls.
    #[error("daemon could not merge the calls of user {name:?} (extension {extension})")]
    MergeFailed {
        /// The user's name.
        name: String,
        /// The user's extension.
        extension: String,
    },
}

/// The kind of a tenant number, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A company main number (leads to a queue or answer group).
    Main,
    /// A personal number (leads to a user).
    User,
    /// A queue or answer group's own number.
    Queue,
    /// A conference room's dial-in number.
    Conference,
}

impl From<KindArg> for NumberKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Main => NumberKind::Main,
            KindArg::User => NumberKind::User,
            KindArg::Queue => NumberKind::Queue,
            KindArg::Conference => NumberKind::Conference,
        }
    }
}

/// The number a user's outgoing calls present, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresentArg {
    /// The user's own number.
    Own,
    /// The tenant's main number.
    Main,
    /// No number (anonymous).
    Hidden,
}

impl From<PresentArg> for Presentation {
    fn from(p: PresentArg) -> Self {
        match p {
            PresentArg::Own => Presentation::Own,
            PresentArg::Main => Presentation::Main,
            PresentArg::Hidden => Presentation::Hidden,
        }
    }
}

/// Arguments of `sentralbord user forward`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct UserForwardArgs {
    /// The tenant's name.
    #[arg(long)]
    pub tenant: String,
    /// The user's extension.
    pub extension: String,
    /// Forward every call to this E.164 number or extension.
    #[arg(long, value_name = "TARGET")]
    pub always: Option<String>,
    /// Forward to this E.164 number or extension when the user is busy.
    #[arg(long, value_name = "TARGET")]
    pub busy: Option<String>,
    /// Forward to this E.164 number or extension when nobody answers.
    #[arg(long, value_name = "TARGET")]
    pub no_answer: Option<String>,
    /// Ring time before no-answer forwarding, 5 to 120 seconds.
    #[arg(long, value_name = "SECONDS")]
    pub after: Option<u32>,
    /// First remove all forwarding targets (the ring time is kept), then apply the
    /// targets given.
    #[arg(long)]
    pub clear: bool,
}

/// `sentralbord tenant ...`: manage tenants (customer companies).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Add {
        /// The tenant's name (unique, ignoring ASCII case).
        name: String,
    },
    /// List tenants.
    List,
    /// Remove a tenant.
    Remove {
        /// The tenant's name.
        name: String,
        /// Also remove its users, numbers and registrations (refused without this
        /// while it has any).
        #[arg(long)]
        force: bool,
    },
    /// Manage a tenant's phone numbers.
    #[command(subcommand)]
    Number(NumberCommand),
    /// Change a tenant's settings.
    #[command(group(clap::ArgGroup::new("setting").required(true).multiple(true)
        .args(["time_zone", "queue_retention_days"])))]
    Set {
        /// The tenant's name.
        name: String,
        /// The time zone of its opening hours and local dates (IANA name, e.g.
        /// Europe/Oslo).
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
        /// Days the queue call log is kept, 1 to 3650.
        #[arg(long, value_name = "DAYS")]
        queue_retention_days: Option<u32>,
    },
}

/// `sentralbord tenant number ...`: manage a tenant's phone numbers.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum NumberCommand {
    /// Add a number to a tenant.
    Add {
        /// The tenant's name.
        tenant: String,
        /// The number in E.164 form, e.g. +4721000000.
        number: String,
        /// What the number is for.
        #[arg(long, value_enum, default_value_t = KindArg::Main)]
        kind: KindArg,
        /// Assign a personal number to the user with this extension (it rings the user
        /// and is the number the user's calls present).
        #[arg(long, value_name = "EXTENSION", conflicts_with = "queue")]
        user: Option<String>,
        /// Lead a main or queue number to this queue or answer group.
        #[arg(long, value_name = "NAME")]
        queue: Option<String>,
    },
    /// Assign a personal number to a user, or take it away with --none.
    Assign {
        /// The tenant's name.
        tenant: String,
        /// The number in E.164 form.
        number: String,
        /// The user's extension.
        #[arg(required_unless_present = "none", conflicts_with = "none")]
        extension: Option<String>,
        /// Leave the number unassigned.
        #[arg(long)]
        none: bool,
    },
    /// List a tenant's numbers.
    List {
        /// The tenant's name.
        tenant: String,
    },
    /// Remove a number from a tenant.
    Remove {
        /// The tenant's name.
        tenant: String,
        /// The number in E.164 form.
        number: String,
    },
}

/// Where a new password comes from.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of stdin (otherwise from
    /// $SENTRALBORD_USER_PASSWORD, otherwise prompt).
    #[arg(long)]
    pub password_stdin: bool,
}

/// Arguments of `sentralbord user add`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct UserAddArgs {
    /// The tenant's name.
    #[arg(long)]
    pub tenant: String,
    /// The user's display name.
    #[arg(long)]
    pub name: String,
    /// The extension, 2 to 6 digits, unique in the tenant.
    #[arg(long)]
    pub extension: String,
    /// The user's mobile number in E.164 form.
    #[arg(long)]
    pub mobile: Option<String>,
    /// The SIP (digest) username, unique in the realm.
    #[arg(long)]
    pub username: String,
    /// The digest realm (default: the realm of the phones profile).
    #[arg(long)]
    pub realm: Option<String>,
    /// Where the password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `sentralbord user ...`: manage users and their SIP credentials.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Create a user with SIP credentials.
    Add(UserAddArgs),
    /// List users.
    List {
        /// Only this tenant's users.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove a user (and the user's registrations).
    Remove {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The user's extension.
        extension: String,
    },
    /// Set a user's SIP password.
    Passwd {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The user's extension.
        extension: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set a user's call forwarding; targets not given are kept.
    Forward(UserForwardArgs),
    /// Set which number a user's outgoing external calls present.
    Present {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The user's extension.
        extension: String,
        /// own: the user's number; main: the tenant's main number; hidden: anonymous.
        #[arg(value_enum)]
        present: PresentArg,
    },
    /// Show a user and the user's call settings.
    Show {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The user's extension.
        extension: String,
    },
}

/// The process's input and output, injectable for tests.
pub struct CliIo<'a> {
    /// Where passwords are read from (stdin).
    pub input: &'a mut dyn BufRead,
    /// Where results go (stdout).
    pub out: &'a mut dyn Write,
    /// Where the password prompt goes (stderr), so stdout stays machine-friendly.
    pub prompt: &'a mut dyn Write,
    /// The value of [`PASSWORD_ENV`], if set.
    pub env_password: Option<Result<String, std::ffi::OsString>>,
}

/// Runs a tenant command against the database at `db_path`, printing to stdout.
pub fn run_tenant(cmd: TenantCommand, db_path: &Path) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_tenant_with(cmd, db_path, &mut out)
}

/// Runs a user command against the database at `db_path`, with the real stdin, stdout,
/// stderr and environment. `default_realm` (the phones profile's realm) is used when
/// `--realm` is not given; pass "" if there is none.
pub fn run_user(cmd: UserCommand, db_path: &Path, default_realm: &str) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut prompt = std::io::stderr();
    let mut io = CliIo {
        input: &mut input,
        out: &mut out,
        prompt: &mut prompt,
        env_password: std::env::var_os(PASSWORD_ENV).map(|v| v.into_string()),
    };
    run_user_with(cmd, db_path, default_realm, &mut io)
}

/// Opens the store for one CLI command: one reader is plenty.
fn open(db_path: &Path) -> Result<Store, CliError> {
    Ok(Store::open_with(
        db_path,
        StoreOptions {
            readers: 1,
            ..StoreOptions::default()
        },
    )?)
}

/// Runs `body` with an open store and closes it afterwards, so every write is applied
/// before the process exits; a close error is reported only if `body` succeeded.
fn with_store<T>(
    db_path: &Path,
    body: impl FnOnce(&StoreHandle) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let store = open(db_path)?;
    let result = body(&store.handle());
    let closed = store.close();
    let value = result?;
    closed?;
    Ok(value)
}

fn tenant_by_name(h: &StoreHandle, name: &str) -> Result<Tenant, CliError> {
    h.find_tenant(name)
        .wait()?
        .ok_or_else(|| CliError::TenantNotFound(name.to_owned()))
}

fn user_by_extension(h: &StoreHandle, tenant: &Tenant, extension: &str) -> Result<User, CliError> {
    h.find_user(tenant.id, extension)
        .wait()?
        .ok_or_else(|| CliError::UserNotFound {
            tenant: tenant.name.clone(),
            extension: extension.to_owned(),
        })
}

/// Writes `label: value` lines with the values aligned.
fn write_fields(out: &mut dyn Write, fields: &[(&str, String)]) -> Result<(), CliError> {
    let width = fields
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (label, value) in fields {
        let pad = width.saturating_sub(label.chars().count());
        writeln!(out, "{label}:{:pad$} {value}", "").map_err(CliError::Output)?;
    }
    Ok(())
}

/// The lines describing a user's call settings ("-" for no target).
fn settings_fields(s: &UserSettings) -> Vec<(&'static str, String)> {
    let target = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
    vec![
        ("forward always", target(&s.forward_always)),
        ("forward busy", target(&s.forward_busy)),
        ("forward no-answer", target(&s.forward_no_answer)),
        ("no-answer after", format!("{} s", s.no_answer_s)),
        ("presentation", s.present.to_string()),
    ]
}

/// Runs a tenant command, writing results to `out`.
pub fn run_tenant_with(
    cmd: TenantCommand,
    db_path: &Path,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if let TenantCommand::Set {
        time_zone,
        queue_retention_days,
        ..
    } = &cmd
    {
        // Checked before the database is opened, like every other argument error.
        if let Some(tz) = time_zone {
            validate::time_zone(tz)?;
        }
        if let Some(d) = queue_retention_days {
            validate::retention_days(*d)?;
        }
    }
    with_store(db_path, |h| match cmd {
        TenantCommand::Add { name } => {
            let id = h.add_tenant(&name).wait()?;
            writeln!(out, "tenant {name:?} added (id {id})").map_err(CliError::Output)
        }
        TenantCommand::List => {
            let tenants = h.list_tenants().wait()?;
            if tenants.is_empty() {
                return writeln!(out, "no tenants").map_err(CliError::Output);
            }
            let rows = tenants
                .into_iter()
                .map(|t| {
                    vec![
                        t.tenant.id.to_string(),
                        t.tenant.name,
                        t.users.to_string(),
                        t.numbers.to_string(),
                        format_date(t.tenant.created_at),
                        t.tenant.time_zone,
                        format!("{} d", t.tenant.queue_retention_days),
                    ]
                })
                .collect();
            write_table(
                out,
                &[
                    "ID",
                    "NAME",
                    "USERS",
                    "NUMBERS",
                    "CREATED",
                    "TIME ZONE",
                    "QUEUE HISTORY",
                ],
                rows,
            )
        }
        TenantCommand::Set {
            name,
            time_zone,
            queue_retention_days,
        } => {
            let t = tenant_by_name(h, &name)?;
            h.set_tenant_settings(
                t.id,
                TenantSettings {
                    time_zone,
                    queue_retention_days,
                },
            )
            .wait()?;
            let t = tenant_by_name(h, &name)?;
            writeln!(out, "tenant {:?} updated", t.name).map_err(CliError::Output)?;
            write_fields(
                out,
                &[
                    ("time zone", t.time_zone),
                    ("queue history", format!("{} days", t.queue_retention_days)),
                ],
            )
        }
        TenantCommand::Remove { name, force } => {
            let t = tenant_by_name(h, &name)?;
            h.remove_tenant(t.id, force).wait()?;
            writeln!(out, "tenant {:?} removed", t.name).map_err(CliError::Output)
        }
        TenantCommand::Number(NumberCommand::Add {
            tenant,
            number,
            kind,
            user: _,
            queue: Some(queue),
        }) => {
            let t = tenant_by_name(h, &tenant)?;
            let q = h
                .find_queue(t.id, &queue)
                .wait()?
                .ok_or(CliError::QueueNotFound {
                    tenant: t.name.clone(),
                    queue,
                })?;
            let kind = NumberKind::from(kind);
            h.add_queue_number(t.id, &number, kind, q.id).wait()?;
            writeln!(
                out,
                "number {number} ({kind}) added to tenant {:?}, leading to queue {:?}",
                t.name, q.name
            )
            .map_err(CliError::Output)
        }
        TenantCommand::Number(NumberCommand::Add {
            tenant,
            number,
            kind,
            user,
            queue: None,
        }) => {
            let t = tenant_by_name(h, &tenant)?;
            let kind = NumberKind::from(kind);
            let user = match user {
                Some(ext) => Some(user_by_extension(h, &t, &ext)?),
                None => None,
            };
            h.add_tenant_number(t.id, &number, kind, user.as_ref().map(|u| u.id))
                .wait()?;
            match user {
                Some(u) => writeln!(
                    out,
                    "number {number} ({kind}) added to tenant {:?}, assigned to {}",
                    t.name, u.extension
                ),
                None => writeln!(out, "number {number} ({kind}) added to tenant {:?}", t.name),
            }
            .map_err(CliError::Output)
        }
        TenantCommand::Number(NumberCommand::Assign {
            tenant,
            number,
            extension,
            none: _,
        }) => {
            let t = tenant_by_name(h, &tenant)?;
            let user = match extension {
                Some(ext) => Some(user_by_extension(h, &t, &ext)?),
                None => None,
            };
            match h
                .assign_tenant_number(t.id, &number, user.as_ref().map(|u| u.id))
                .wait()
            {
                Err(StoreError::NotFound(Entity::Number)) => Err(CliError::NumberNotFound {
                    tenant: t.name,
                    number,
                }),
                other => {
                    other?;
                    match user {
                        Some(u) => writeln!(out, "number {number} assigned to {}", u.extension),
                        None => writeln!(out, "number {number} unassigned"),
                    }
                    .map_err(CliError::Output)
                }
            }
        }
        TenantCommand::Number(NumberCommand::List { tenant }) => {
            let t = tenant_by_name(h, &tenant)?;
            let numbers = h.list_tenant_numbers(t.id).wait()?;
            if numbers.is_empty() {
                return writeln!(out, "tenant {:?} has no numbers", t.name)
                    .map_err(CliError::Output);
            }
            let users = h.list_users(Some(t.id)).wait()?;
            let extension_of = |id: crate::store::UserId| {
                users
                    .iter()
                    .find(|u| u.id == id)
                    .map(|u| u.extension.clone())
                    .unwrap_or_default()
            };
            let queues = h.list_queues(Some(t.id)).wait()?;
            let queue_of = |id: crate::store::QueueId| {
                queues
                    .iter()
                    .find(|q| q.queue.id == id)
                    .map(|q| q.queue.name.clone())
                    .unwrap_or_default()
            };
            let rooms = h.list_rooms(Some(t.id)).wait()?;
            let room_of = |id: crate::store::ConferenceRoomId| {
                rooms
                    .iter()
                    .find(|r| r.room.id == id)
                    .map(|r| r.room.name.clone())
                    .unwrap_or_default()
            };
            let rows = numbers
                .into_iter()
                .map(|n| {
                    let user = n.user_id.map(extension_of).unwrap_or_default();
                    let queue = n.queue_id.map(queue_of).unwrap_or_default();
                    let room = n.conference_id.map(room_of).unwrap_or_default();
                    vec![n.number, n.kind.to_string(), user, queue, room]
                })
                .collect();
            write_table(
                out,
                &["NUMBER", "KIND", "USER", "QUEUE", "CONFERENCE"],
                rows,
            )
        }
        TenantCommand::Number(NumberCommand::Remove { tenant, number }) => {
            let t = tenant_by_name(h, &tenant)?;
            match h.remove_tenant_number(t.id, &number).wait() {
                Err(StoreError::NotFound(Entity::Number)) => Err(CliError::NumberNotFound {
                    tenant: t.name,
                    number,
                }),
                other => {
                    other?;
                    writeln!(out, "number {number} removed from tenant {:?}", t.name)
                        .map_err(CliError::Output)
                }
            }
        }
    })
}

/// Runs a user command with injected I/O. `default_realm` is used when `--realm` is not
/// given ("" means none).
pub fn run_user_with(
    cmd: UserCommand,
    db_path: &Path,
    default_realm: &str,
    io: &mut CliIo<'_>,
) -> Result<(), CliError> {
    with_store(db_path, |h| match cmd {
        UserCommand::Add(a) => {
            let realm = a
                .realm
                .as_deref()
                .or(Some(default_realm).filter(|r| !r.is_empty()))
                .ok_or(CliError::NoRealm)?
                .to_owned();
            // Check everything checkable before asking for the password, so nobody types
            // a password only to learn that the extension was wrong.
            validate::display_name(Field::UserName, &a.name)?;
            validate::extension(&a.extension)?;
            if let Some(m) = &a.mobile {
                validate::e164(Field::Mobile, m)?;
            }
            validate::sip_username(&a.username)?;
            validate::realm(&realm)?;
            let t = tenant_by_name(h, &a.tenant)?;
            let password = read_password(&a.password, &a.username, io)?;
            let user = NewUser {
                tenant: t.id,
                name: a.name,
                extension: a.extension,
                mobile: a.mobile,
                sip_username: a.username,
                realm,
                password,
            };
            let (ext, username, realm) = (
                user.extension.clone(),
                user.sip_username.clone(),
                user.realm.clone(),
            );
            let id = h.add_user(user).wait()?;
            writeln!(
                io.out,
                "user {ext} added to tenant {:?} (id {id}, sip username {username:?}, realm {realm:?})",
                t.name
            )
            .map_err(CliError::Output)
        }
        UserCommand::List { tenant } => {
            let tenant = tenant.map(|name| tenant_by_name(h, &name)).transpose()?;
            let users = h.list_users(tenant.map(|t| t.id)).wait()?;
            if users.is_empty() {
                return writeln!(io.out, "no users").map_err(CliError::Output);
            }
            let rows = users
                .into_iter()
                .map(|u| {
                    vec![
                        u.tenant_name,
                        u.extension,
                        u.name,
                        u.sip_username,
                        u.realm,
                        u.mobile.unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            write_table(
                io.out,
                &["TENANT", "EXT", "NAME", "USERNAME", "REALM", "MOBILE"],
                rows,
            )
        }
        UserCommand::Remove { tenant, extension } => {
            let t = tenant_by_name(h, &tenant)?;
            let u =
                h.find_user(t.id, &extension)
                    .wait()?
                    .ok_or_else(|| CliError::UserNotFound {
                        tenant: t.name.clone(),
                        extension: extension.clone(),
                    })?;
            h.remove_user(u.id).wait()?;
            writeln!(io.out, "user {extension} removed from tenant {:?}", t.name)
                .map_err(CliError::Output)
        }
        UserCommand::Passwd {
            tenant,
            extension,
            password,
        } => {
            let t = tenant_by_name(h, &tenant)?;
            let u =
                h.find_user(t.id, &extension)
                    .wait()?
                    .ok_or_else(|| CliError::UserNotFound {
                        tenant: t.name.clone(),
                        extension: extension.clone(),
                    })?;
            let password = read_password(&password, &u.sip_username, io)?;
            h.set_user_password(u.id, password).wait()?;
            writeln!(
                io.out,
                "password changed for user {extension} of tenant {:?}",
                t.name
            )
            .map_err(CliError::Output)
        }
        UserCommand::Forward(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let u = user_by_extension(h, &t, &a.extension)?;
            // Read, change, write: the store replaces the whole row, so targets not
            // given here are carried over from what is stored.
            let mut s = h.user_settings(u.id).wait()?;
            if a.clear {
                s.forward_always = None;
                s.forward_busy = None;
                s.forward_no_answer = None;
            }
            if let Some(x) = a.always {
                s.forward_always = Some(x);
            }
            if let Some(x) = a.busy {
                s.forward_busy = Some(x);
            }
            if let Some(x) = a.no_answer {
                s.forward_no_answer = Some(x);
            }
            if let Some(secs) = a.after {
                s.no_answer_s = secs;
            }
            h.set_user_settings(u.id, s.clone()).wait()?;
            writeln!(
                io.out,
                "forwarding set for user {} of tenant {:?}",
                u.extension, t.name
            )
            .map_err(CliError::Output)?;
            let mut fields = settings_fields(&s);
            fields.truncate(4);
            write_fields(io.out, &fields)
        }
        UserCommand::Present {
            tenant,
            extension,
            present,
        } => {
            let t = tenant_by_name(h, &tenant)?;
            let u = user_by_extension(h, &t, &extension)?;
            let mut s = h.user_settings(u.id).wait()?;
            s.present = present.into();
            h.set_user_settings(u.id, s.clone()).wait()?;
            writeln!(
                io.out,
                "user {} of tenant {:?} presents: {}",
                u.extension, t.name, s.present
            )
            .map_err(CliError::Output)
        }
        UserCommand::Show { tenant, extension } => {
            let t = tenant_by_name(h, &tenant)?;
            let u = user_by_extension(h, &t, &extension)?;
            let s = h.user_settings(u.id).wait()?;
            // No secrets: the HA1 hashes are not even read.
            let mut fields = vec![
                ("tenant", u.tenant_name),
                ("extension", u.extension),
                ("name", u.name),
                ("mobile", u.mobile.unwrap_or_else(|| "-".into())),
                ("sip username", u.sip_username),
                ("realm", u.realm),
                ("id", u.id.to_string()),
                ("created", format_date(u.created_at)),
            ];
            fields.extend(settings_fields(&s));
            write_fields(io.out, &fields)
        }
    })
}

/// Gets a password from stdin (`--password-stdin`), the environment, or a prompt.
fn read_password(args: &PasswordArgs, who: &str, io: &mut CliIo<'_>) -> Result<Password, CliError> {
    if !args.password_stdin {
        match io.env_password.take() {
            Some(Ok(p)) => return non_empty(p),
            Some(Err(_)) => return Err(CliError::PasswordEnvNotUnicode),
            None => {
                // The prompt goes to stderr; echo is not suppressed (documented).
                write!(io.prompt, "Password for {who}: ").map_err(CliError::Output)?;
                io.prompt.flush().map_err(CliError::Output)?;
            }
        }
    }
    let mut line = String::new();
    io.input
        .read_line(&mut line)
        .map_err(CliError::PasswordRead)?;
    // Only the line ending is removed: spaces are legitimate password characters.
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    non_empty(trimmed.to_owned())
}

fn non_empty(p: String) -> Result<Password, CliError> {
    if p.is_empty() {
        return Err(CliError::NoPassword);
    }
    Ok(Password::new(p))
}

/// Writes left-aligned columns separated by two spaces.
fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<(), CliError> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> Result<(), CliError> {
        let mut s = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
            s.extend(std::iter::repeat_n(' ', pad));
        }
        writeln!(out, "{}", s.trim_end()).map_err(CliError::Output)
    };
    line(&mut headers.iter().copied())?;
    for row in &rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Formats Unix seconds as a UTC date `YYYY-MM-DD` (days-to-civil, H. Hinnant).
fn format_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod conference_tests;
#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod tests;
