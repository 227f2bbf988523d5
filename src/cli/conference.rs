//! `sentralbord conference ...`: conference rooms (add, set, remove, list, show), who is
//! in a room now, moderator controls through the running daemon (mute, unmute, kick,
//! lock, unlock), merging a user's two calls into one ad-hoc conference (through the
//! daemon too) and the conference log.
//!
//! Provisioning checks its input before changing anything and changes a room in one store
//! transaction, so a refused command leaves the database as it was; the daemon notices
//! every change within a second (the store's room revision). PINs are read from stdin,
//! one line each (the PIN, then the moderator PIN), never from the command line, and are
//! never printed.
//!
//! Controls and merges go through the store: the command is left for the daemon, which
//! polls each second and answers; this waits up to [`COMMAND_WAIT`] for the answer, and
//! if none came, expires the command (so a daemon started later never applies it) and
//! says the daemon did not answer. Times are shown in the tenant's time zone.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use super::calls::format_duration_ms;
use super::queue::{local_time, unix_ms, zone_of, LIVE_STALE_AFTER_MS};
use super::{tenant_by_name, user_by_extension, with_store, write_fields, write_table, CliError};
use crate::store::{
    validate, CallCommandId, CallCommandResult, CommandResult, ConferenceCommandId,
    ConferenceControl, ConferenceLogFilter, ConferenceRoom, ConferenceSummary, Field,
    LiveParticipantId, NewRoom, RoomChanges, RoomPin, StoreHandle, Tenant, User, UserRef,
};

/// How long a control waits for the daemon's answer.
pub const COMMAND_WAIT: Duration = Duration::from_secs(5);
/// How often it looks for the answer meanwhile.
const COMMAND_POLL: Duration = Duration::from_millis(100);
/// How much longer it waits once the daemon has taken the command (it answers within
/// its next tick).
const TAKEN_WAIT: Duration = Duration::from_secs(2);

/// The wall clock and waiting, injectable so tests run the daemon's side in virtual time.
pub trait CliClock {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits `d` (a test clock advances instead).
    fn sleep(&self, d: Duration);
}

/// The real clock: `now` reads the time through the given function (the runtime's
/// clock), `sleep` blocks the thread.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock(pub fn() -> SystemTime);

impl CliClock for SystemClock {
    fn now(&self) -> SystemTime {
        (self.0)()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The settings of `conference add` and `conference set` (not given: the default, or
/// unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RoomOptions {
    /// A dial-in number (E.164): a main or conference number of the tenant leading
    /// nowhere, or a new one (added as a conference number).
    #[arg(long, value_name = "E164")]
    pub number: Option<String>,
    /// At most this many participants at once, 2 to 500 (default 50).
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// The room's owner (a moderator without a PIN), by extension.
    #[arg(long, value_name = "EXT")]
    pub owner: Option<String>,
    /// Read the PIN (4 to 12 digits) from the first line of stdin.
    #[arg(long)]
    pub pin_stdin: bool,
    /// Read the moderator PIN (4 to 12 digits) from the next line of stdin.
    #[arg(long)]
    pub moderator_pin_stdin: bool,
    /// End the conference when the last moderator leaves.
    #[arg(long)]
    pub end_when_moderator_leaves: bool,
    /// Conferences start locked (newcomers refused until a moderator unlocks).
    #[arg(long)]
    pub locked: bool,
}

/// Arguments of `conference add`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConferenceAddArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The room's name (unique in the tenant, ignoring ASCII case).
    pub name: String,
    /// The extension to dial in on, 2 to 6 digits (not a user's).
    #[arg(long, value_name = "EXT")]
    pub extension: String,
    /// Settings.
    #[command(flatten)]
    pub options: RoomOptions,
}

/// Arguments of `conference set`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConferenceSetArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The room's name.
    pub name: String,
    /// A new extension, 2 to 6 digits.
    #[arg(long, value_name = "EXT")]
    pub extension: Option<String>,
    /// Settings to change.
    #[command(flatten)]
    pub options: RoomOptions,
    /// Rename the room.
    #[arg(long, value_name = "NAME")]
    pub rename: Option<String>,
    /// No dial-in number (it stays with the tenant, leading nowhere).
    #[arg(long, conflicts_with = "number")]
    pub no_number: bool,
    /// No owner.
    #[arg(long, conflicts_with = "owner")]
    pub no_owner: bool,
    /// No PIN.
    #[arg(long, conflicts_with = "pin_stdin")]
    pub no_pin: bool,
    /// No moderator PIN.
    #[arg(long, conflicts_with = "moderator_pin_stdin")]
    pub no_moderator_pin: bool,
    /// Keep the conference going when the last moderator leaves.
    #[arg(long, conflicts_with = "end_when_moderator_leaves")]
    pub no_end_when_moderator_leaves: bool,
    /// Conferences start unlocked.
    #[arg(long, conflicts_with = "locked")]
    pub unlocked: bool,
}

/// A participant of a running conference, as the control commands take it.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ParticipantArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The room's name.
    pub name: String,
    /// The participant's number in the room (see `conference participants`).
    pub participant: u32,
}

/// A room, as the commands about the whole room take it.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RoomArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The room's name.
    pub name: String,
}

/// Arguments of `conference merge`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct MergeArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The user whose two answered calls become one conference, by extension.
    #[arg(value_name = "EXT")]
    pub user: String,
}

/// `sentralbord conference ...`: conference rooms, participants, controls, the log.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConferenceCommand {
    /// Create a conference room (PINs from stdin with --pin-stdin/--moderator-pin-stdin).
    Add(ConferenceAddArgs),
    /// Change a room (options not given are kept).
    Set(ConferenceSetArgs),
    /// Remove a room (its conference log stays).
    Remove(RoomArgs),
    /// List rooms.
    List {
        /// Only this tenant's rooms.
        tenant: Option<String>,
    },
    /// Show a room's settings and whether a conference runs in it.
    Show(RoomArgs),
    /// Who is in a room now: since when, muted, talking, moderator (from the daemon).
    Participants(RoomArgs),
    /// Mute a participant (through the running daemon).
    Mute(ParticipantArgs),
    /// Unmute a participant (through the running daemon).
    Unmute(ParticipantArgs),
    /// Hang up a participant (through the running daemon).
    Kick(ParticipantArgs),
    /// Refuse newcomers to the running conference (through the daemon; the room's
    /// default is `set --locked`).
    Lock(RoomArgs),
    /// Admit newcomers to the running conference again (through the daemon).
    Unlock(RoomArgs),
    /// Merge a user's two answered calls into one ad-hoc conference (through the daemon;
    /// both calls' media must go through sentralbord).
    Merge(MergeArgs),
    /// The conference log, newest first: conferences with their participants.
    Log {
        /// The tenant's name.
        tenant: String,
        /// Only this room's conferences.
        #[arg(long, value_name = "NAME")]
        room: Option<String>,
        /// At most this many conferences.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// Runs a conference command against the database at `db_path` with the real stdin and
/// stdout. `now` reads the wall clock (the runtime's).
pub fn run_conference(
    cmd: ConferenceCommand,
    db_path: &Path,
    now: fn() -> SystemTime,
) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_conference_with(cmd, db_path, &SystemClock(now), &mut input, &mut out)
}

/// Reads one PIN line from stdin and checks it (4 to 12 digits).
fn read_pin(input: &mut dyn BufRead, field: Field) -> Result<RoomPin, CliError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| CliError::PinRead(field, e))?;
    let digits = line.trim();
    if digits.is_empty() {
        return Err(CliError::NoPin(field));
    }
    validate::pin(field, digits)?;
    Ok(RoomPin::new(digits))
}

/// The PINs the options ask for, read in order (PIN, then moderator PIN).
fn read_pins(
    o: &RoomOptions,
    input: &mut dyn BufRead,
) -> Result<(Option<RoomPin>, Option<RoomPin>), CliError> {
    let pin = o
        .pin_stdin
        .then(|| read_pin(input, Field::Pin))
        .transpose()?;
    let moderator = o
        .moderator_pin_stdin
        .then(|| read_pin(input, Field::ModeratorPin))
        .transpose()?;
    Ok((pin, moderator))
}

/// Checks the options that need no database.
fn check_options(o: &RoomOptions) -> Result<(), CliError> {
    if let Some(n) = &o.number {
        validate::e164(Field::Number, n)?;
    }
    if let Some(m) = o.max {
        validate::max_participants(m)?;
    }
    if let Some(ext) = &o.owner {
        validate::extension(ext)?;
    }
    Ok(())
}

fn room_by_name(h: &StoreHandle, tenant: &Tenant, name: &str) -> Result<ConferenceRoom, CliError> {
    h.find_room(tenant.id, name)
        .wait()?
        .ok_or_else(|| CliError::RoomNotFound {
            tenant: tenant.name.clone(),
            room: name.to_owned(),
        })
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn set_or_not(b: bool) -> String {
    if b { "set" } else { "-" }.to_owned()
}

fn owner_label(owner: &Option<UserRef>) -> String {
    owner
        .as_ref()
        .map_or_else(|| "-".into(), |u| format!("{} ({})", u.extension, u.name))
}

/// The lines describing a room's settings (never its PINs, only whether it has them).
fn room_fields(r: &ConferenceRoom) -> Vec<(&'static str, String)> {
    vec![
        ("extension", r.extension.clone()),
        ("number", r.number.clone().unwrap_or_else(|| "-".into())),
        ("max participants", r.max_participants.to_string()),
        ("pin", set_or_not(r.has_pin)),
        ("moderator pin", set_or_not(r.has_moderator_pin)),
        ("owner", owner_label(&r.owner)),
        (
            "end when moderator leaves",
            yes_no(r.end_when_moderator_leaves),
        ),
        ("starts locked", yes_no(r.locked)),
    ]
}

/// Runs a conference command with an injected clock, stdin and stdout.
pub fn run_conference_with(
    cmd: ConferenceCommand,
    db_path: &Path,
    clock: &dyn CliClock,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // Input that needs no database is checked (and the PINs read) before it is opened.
    let pins = match &cmd {
        ConferenceCommand::Add(a) => {
            validate::display_name(Field::ConferenceName, &a.name)?;
            validate::extension(&a.extension)?;
            check_options(&a.options)?;
            read_pins(&a.options, input)?
        }
        ConferenceCommand::Set(a) => {
            if let Some(n) = &a.rename {
                validate::display_name(Field::ConferenceName, n)?;
            }
            if let Some(e) = &a.extension {
                validate::extension(e)?;
            }
            check_options(&a.options)?;
            read_pins(&a.options, input)?
        }
        ConferenceCommand::Merge(a) => {
            validate::extension(&a.user)?;
            (None, None)
        }
        _ => (None, None),
    };
    with_store(db_path, |h| match cmd {
        ConferenceCommand::Add(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let owner = a
                .options
                .owner
                .as_deref()
                .map(|ext| user_by_extension(h, &t, ext))
                .transpose()?;
            let (pin, moderator_pin) = pins;
            let id = h
                .add_room(
                    t.id,
                    NewRoom {
                        name: a.name.clone(),
                        extension: a.extension.clone(),
                        number: a.options.number.clone(),
                        pin,
                        moderator_pin,
                        max_participants: a
                            .options
                            .max
                            .unwrap_or(crate::store::conference_model::DEFAULT_MAX_PARTICIPANTS),
                        owner: owner.map(|u| u.id),
                        end_when_moderator_leaves: a.options.end_when_moderator_leaves,
                        locked: a.options.locked,
                    },
                )
                .wait()?;
            writeln!(
                out,
                "conference room {:?} added to tenant {:?} (id {id}, extension {})",
                a.name, t.name, a.extension
            )
            .map_err(CliError::Output)?;
            if let Some(n) = a.options.number {
                writeln!(out, "number {n} leads to it").map_err(CliError::Output)?;
            }
            Ok(())
        }
        ConferenceCommand::Set(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let r = room_by_name(h, &t, &a.name)?;
            let o = &a.options;
            let owner = match (&o.owner, a.no_owner) {
                (Some(ext), _) => Some(Some(user_by_extension(h, &t, ext)?.id)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let (pin, moderator_pin) = pins;
            let change = |set: Option<RoomPin>, clear: bool| match (set, clear) {
                (Some(p), _) => Some(Some(p)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let flag = |on: bool, off: bool| (on || off).then_some(on);
            let changes = RoomChanges {
                name: a.rename.clone(),
                extension: a.extension.clone(),
                number: match (&o.number, a.no_number) {
                    (Some(n), _) => Some(Some(n.clone())),
                    (None, true) => Some(None),
                    (None, false) => None,
                },
                pin: change(pin, a.no_pin),
                moderator_pin: change(moderator_pin, a.no_moderator_pin),
                max_participants: o.max,
                owner,
                end_when_moderator_leaves: flag(
                    o.end_when_moderator_leaves,
                    a.no_end_when_moderator_leaves,
                ),
                locked: flag(o.locked, a.unlocked),
            };
            h.update_room(r.id, changes).wait()?;
            let name = a.rename.unwrap_or(r.name);
            let r = room_by_name(h, &t, &name)?;
            writeln!(
                out,
                "conference room {:?} of tenant {:?} updated",
                r.name, t.name
            )
            .map_err(CliError::Output)?;
            write_fields(out, &room_fields(&r))
        }
        ConferenceCommand::Remove(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let r = room_by_name(h, &t, &a.name)?;
            h.remove_room(r.id).wait()?;
            writeln!(
                out,
                "conference room {:?} removed from tenant {:?}",
                r.name, t.name
            )
            .map_err(CliError::Output)
        }
        ConferenceCommand::List { tenant } => {
            let tenant = tenant.map(|n| tenant_by_name(h, &n)).transpose()?;
            let rooms = h.list_rooms(tenant.as_ref().map(|t| t.id)).wait()?;
            if rooms.is_empty() {
                return writeln!(out, "no conference rooms").map_err(CliError::Output);
            }
            let with_tenant = tenant.is_none();
            let rows = rooms
                .into_iter()
                .map(|s| {
                    let r = s.room;
                    let mut row = Vec::new();
                    if with_tenant {
                        row.push(s.tenant_name);
                    }
                    row.extend([
                        r.name,
                        r.extension,
                        r.number.unwrap_or_else(|| "-".into()),
                        r.max_participants.to_string(),
                        set_or_not(r.has_pin),
                        set_or_not(r.has_moderator_pin),
                        r.owner.map_or_else(|| "-".into(), |u| u.extension),
                        if r.locked { "yes" } else { "-" }.into(),
                    ]);
                    row
                })
                .collect();
            let mut headers = Vec::new();
            if with_tenant {
                headers.push("TENANT");
            }
            headers.extend([
                "NAME",
                "EXT",
                "NUMBER",
                "MAX",
                "PIN",
                "MOD PIN",
                "OWNER",
                "STARTS LOCKED",
            ]);
            write_table(out, &headers, rows)
        }
        ConferenceCommand::Show(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let r = room_by_name(h, &t, &a.name)?;
            let now_ms = unix_ms(clock.now());
            let live = h.conference_live(t.id, Some(r.id)).wait()?;
            let tz = zone_of(&t);
            let now_in_room = match live.updated_at_ms {
                Some(at) if now_ms.saturating_sub(at) <= LIVE_STALE_AFTER_MS => {
                    match live.rooms.first() {
                        Some(c) => format!(
                            "{} participant(s) since {}{}",
                            c.participants.len(),
                            local_time(c.started_at_ms, &tz),
                            if c.locked { ", locked" } else { "" }
                        ),
                        None => "nobody".into(),
                    }
                }
                _ => "unknown (daemon not running or not updating)".into(),
            };
            let mut fields = vec![
                ("conference room", r.name.clone()),
                ("tenant", t.name.clone()),
            ];
            fields.extend(room_fields(&r));
            fields.extend([
                ("in the room", now_in_room),
                ("id", r.id.to_string()),
                ("created", super::format_date(r.created_at)),
            ]);
            write_fields(out, &fields)
        }
        ConferenceCommand::Participants(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let r = room_by_name(h, &t, &a.name)?;
            let now_ms = unix_ms(clock.now());
            let live = h.conference_live(t.id, Some(r.id)).wait()?;
            let Some(at) = live.updated_at_ms else {
                return writeln!(out, "no live data: daemon not running or not updating")
                    .map_err(CliError::Output);
            };
            let age_ms = now_ms.saturating_sub(at);
            if age_ms > LIVE_STALE_AFTER_MS {
                writeln!(
                    out,
                    "daemon not running or not updating: this is from {} s ago",
                    age_ms / 1000
                )
                .map_err(CliError::Output)?;
            }
            let Some(c) = live.rooms.into_iter().next() else {
                return writeln!(out, "no conference in room {:?}", r.name)
                    .map_err(CliError::Output);
            };
            let tz = zone_of(&t);
            writeln!(
                out,
                "room {:?}: {} participant(s), {}, started {}",
                r.name,
                c.participants.len(),
                if c.locked { "locked" } else { "unlocked" },
                local_time(c.started_at_ms, &tz)
            )
            .map_err(CliError::Output)?;
            let users = h.list_users(Some(t.id)).wait()?;
            let flag = |b: bool| if b { "yes" } else { "-" }.to_owned();
            let rows = c
                .participants
                .into_iter()
                .map(|p| {
                    let user = p
                        .user
                        .and_then(|id| users.iter().find(|u| u.id == id))
                        .map_or_else(|| "-".into(), |u| u.extension.clone());
                    vec![
                        p.id.to_string(),
                        p.number,
                        p.name.unwrap_or_else(|| "-".into()),
                        user,
                        local_time(p.joined_at_ms, &tz),
                        format_duration_ms(now_ms.saturating_sub(p.joined_at_ms)),
                        flag(p.muted),
                        flag(p.talking),
                        flag(p.moderator),
                    ]
                })
                .collect();
            write_table(
                out,
                &[
                    "ID",
                    "NUMBER",
                    "NAME",
                    "USER",
                    "JOINED",
                    "FOR",
                    "MUTED",
                    "TALKING",
                    "MODERATOR",
                ],
                rows,
            )
        }
        ConferenceCommand::Mute(a) => {
            let p = LiveParticipantId(a.participant);
            control(
                h,
                clock,
                out,
                &a.tenant,
                &a.name,
                ConferenceControl::Mute(p),
            )
        }
        ConferenceCommand::Unmute(a) => {
            let p = LiveParticipantId(a.participant);
            control(
                h,
                clock,
                out,
                &a.tenant,
                &a.name,
                ConferenceControl::Unmute(p),
            )
        }
        ConferenceCommand::Kick(a) => {
            let p = LiveParticipantId(a.participant);
            control(
                h,
                clock,
                out,
                &a.tenant,
                &a.name,
                ConferenceControl::Kick(p),
            )
        }
        ConferenceCommand::Lock(a) => {
            control(h, clock, out, &a.tenant, &a.name, ConferenceControl::Lock)
        }
        ConferenceCommand::Unlock(a) => {
            control(h, clock, out, &a.tenant, &a.name, ConferenceControl::Unlock)
        }
        ConferenceCommand::Merge(a) => merge(h, clock, out, &a.tenant, &a.user),
        ConferenceCommand::Log {
            tenant,
            room,
            limit,
        } => {
            let t = tenant_by_name(h, &tenant)?;
            let room = room.map(|n| room_by_name(h, &t, &n)).transpose()?;
            let conferences = h
                .list_conferences(ConferenceLogFilter {
                    tenant: t.id,
                    room: room.map(|r| r.id),
                    user: None,
                    since_ms: None,
                    limit,
                })
                .wait()?;
            if conferences.is_empty() {
                return writeln!(out, "no conferences").map_err(CliError::Output);
            }
            let tz = zone_of(&t);
            for (i, c) in conferences.iter().enumerate() {
                if i > 0 {
                    writeln!(out).map_err(CliError::Output)?;
                }
                write_conference(out, c, &tz)?;
            }
            Ok(())
        }
    })
}

/// One conference of `conference log`: a line about it, then its participants indented.
fn write_conference(
    out: &mut dyn Write,
    c: &ConferenceSummary,
    tz: &jiff::tz::TimeZone,
) -> Result<(), CliError> {
    let place = match &c.room_name {
        Some(name) => format!("room {name:?}"),
        None => "ad hoc".into(),
    };
    writeln!(
        out,
        "{} to {}  {place}  {}  {} participant(s)",
        local_time(c.started_at_ms, tz),
        local_time(c.ended_at_ms, tz),
        format_duration_ms(c.ended_at_ms.saturating_sub(c.started_at_ms)),
        c.participants.len()
    )
    .map_err(CliError::Output)?;
    if c.participants.is_empty() {
        return Ok(());
    }
    let rows = c
        .participants
        .iter()
        .map(|p| {
            vec![
                p.number.clone(),
                p.name.clone().unwrap_or_else(|| "-".into()),
                p.user
                    .as_ref()
                    .map_or_else(|| "-".into(), |u| u.extension.clone()),
                if p.moderator { "yes" } else { "-" }.into(),
                local_time(p.joined_at_ms, tz),
                local_time(p.left_at_ms, tz),
                format_duration_ms(p.left_at_ms.saturating_sub(p.joined_at_ms)),
                p.end.to_string(),
            ]
        })
        .collect();
    let mut table = Vec::new();
    write_table(
        &mut table,
        &[
            "NUMBER",
            "NAME",
            "USER",
            "MODERATOR",
            "JOINED",
            "LEFT",
            "STAYED",
            "ENDED",
        ],
        rows,
    )?;
    for line in String::from_utf8_lossy(&table).lines() {
        writeln!(out, "  {line}").map_err(CliError::Output)?;
    }
    Ok(())
}

/// Sends a control to the daemon through the store, waits for its answer and prints it.
fn control(
    h: &StoreHandle,
    clock: &dyn CliClock,
    out: &mut dyn Write,
    tenant: &str,
    name: &str,
    control: ConferenceControl,
) -> Result<(), CliError> {
    let t = tenant_by_name(h, tenant)?;
    let r = room_by_name(h, &t, name)?;
    let id = h
        .send_conference_command(r.id, control, unix_ms(clock.now()))
        .wait()?;
    match wait_for_answer(h, clock, id)? {
        CommandResult::Done => {
            let done = match control {
                ConferenceControl::Mute(p) => format!("participant {p} of room {:?} muted", r.name),
                ConferenceControl::Unmute(p) => {
                    format!("participant {p} of room {:?} unmuted", r.name)
                }
                ConferenceControl::Kick(p) => {
                    format!("participant {p} kicked from room {:?}", r.name)
                }
                ConferenceControl::Lock => format!("room {:?} locked", r.name),
                ConferenceControl::Unlock => format!("room {:?} unlocked", r.name),
            };
            writeln!(out, "{done}").map_err(CliError::Output)
        }
        CommandResult::NotRunning => Err(CliError::ConferenceNotRunning { room: r.name }),
        CommandResult::NoSuchParticipant => Err(CliError::NoSuchParticipant {
            room: r.name,
            participant: control.participant().map_or(0, |p| p.0),
        }),
        CommandResult::Failed => Err(CliError::CommandFailed { room: r.name }),
        CommandResult::Expired => Err(CliError::DaemonNoAnswer),
    }
}

/// A command left for the daemon, as [`wait_for_answer`] follows it.
trait DaemonCommand: Copy {
    /// How the daemon answers it.
    type Answer;
    /// Its answer, if there is one yet.
    fn answer(self, h: &StoreHandle) -> Result<Option<Self::Answer>, CliError>;
    /// Expires it at `now_ms` unless the daemon took it; its answer afterwards (None:
    /// taken, the answer is still to come).
    fn expire(self, h: &StoreHandle, now_ms: i64) -> Result<Option<Self::Answer>, CliError>;
}

impl DaemonCommand for ConferenceCommandId {
    type Answer = CommandResult;

    fn answer(self, h: &StoreHandle) -> Result<Option<CommandResult>, CliError> {
        Ok(h.conference_command(self).wait()?.result)
    }

    fn expire(self, h: &StoreHandle, now_ms: i64) -> Result<Option<CommandResult>, CliError> {
        Ok(h.expire_conference_command(self, now_ms).wait()?.result)
    }
}

impl DaemonCommand for CallCommandId {
    type Answer = CallCommandResult;

    fn answer(self, h: &StoreHandle) -> Result<Option<CallCommandResult>, CliError> {
        Ok(h.call_command(self).wait()?.result)
    }

    fn expire(self, h: &StoreHandle, now_ms: i64) -> Result<Option<CallCommandResult>, CliError> {
        Ok(h.expire_call_command(self, now_ms).wait()?.result)
    }
}

/// Polls for the daemon's answer for [`COMMAND_WAIT`]; then expires the command, unless
/// the daemon has taken it, in which case it waits [`TAKEN_WAIT`] more for the answer.
fn wait_for_answer<C: DaemonCommand>(
    h: &StoreHandle,
    clock: &dyn CliClock,
    command: C,
) -> Result<C::Answer, CliError> {
    let polls = |d: Duration| d.as_millis() / COMMAND_POLL.as_millis();
    for _ in 0..polls(COMMAND_WAIT) {
        clock.sleep(COMMAND_POLL);
        if let Some(r) = command.answer(h)? {
            return Ok(r);
        }
    }
    if let Some(r) = command.expire(h, unix_ms(clock.now()))? {
        return Ok(r);
    }
    for _ in 0..polls(TAKEN_WAIT) {
        clock.sleep(COMMAND_POLL);
        if let Some(r) = command.answer(h)? {
            return Ok(r);
        }
    }
    Err(CliError::DaemonNoResult)
}

/// Asks the daemon to merge a user's two answered calls into one ad-hoc conference,
/// waits for its answer and prints it.
fn merge(
    h: &StoreHandle,
    clock: &dyn CliClock,
    out: &mut dyn Write,
    tenant: &str,
    extension: &str,
) -> Result<(), CliError> {
    let t = tenant_by_name(h, tenant)?;
    let u = user_by_extension(h, &t, extension)?;
    let id = h
        .send_merge_command(t.id, u.id, unix_ms(clock.now()))
        .wait()?;
    let User {
        name, extension, ..
    } = u;
    match wait_for_answer(h, clock, id)? {
        CallCommandResult::Done => writeln!(
            out,
            "calls of user {name:?} (extension {extension}) merged into one conference"
        )
        .map_err(CliError::Output),
        CallCommandResult::NotTwoCalls => Err(CliError::NotTwoCalls { name, extension }),
        CallCommandResult::NotAnchored => Err(CliError::CallNotAnchored { name, extension }),
        CallCommandResult::NotMixable => Err(CliError::CallsNotMixable { name, extension }),
        CallCommandResult::Failed => Err(CliError::MergeFailed { name, extension }),
        CallCommandResult::Expired => Err(CliError::DaemonNoAnswer),
    }
}
