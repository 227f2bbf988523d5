//! `sentralbord queue ...`: queues and answer groups, their members, numbers, overflow
//! rules, opening hours and holidays; VIP numbers; agents' presence; the live status,
//! the queue call log and statistics.
//!
//! Every command checks its input before changing anything and changes at most one
//! thing, in one store transaction, so a refused command leaves the database as it was.
//! The daemon notices every change within a second (the store's configuration revision).
//! Times are shown and dates read in the tenant's time zone.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};

use super::hours::{format_range, format_weekly_hours, parse_range, parse_weekly_hours};
use super::{tenant_by_name, user_by_extension, with_store, write_fields, write_table, CliError};
use crate::store::{
    validate, AgentPresence, Entity, Field, LocalDate, OverflowCondition, OverflowRule,
    OverflowTarget, Queue, QueueDefinition, QueueHoliday, QueueKind, QueueLogFilter, QueueSettings,
    QueueStrategy, QueueVisitSummary, StoreError, StoreHandle, Tenant,
};

/// How old the live snapshot may be before `queue status` says the daemon is not
/// updating it (it writes about once a second).
pub const LIVE_STALE_AFTER_MS: i64 = 5_000;

/// Queue or answer group, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Answered by sentralbord: callers wait with music and announcements.
    Queue,
    /// An answer group: members' phones ring, the caller hears ringing.
    Group,
}

impl From<KindArg> for QueueKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Queue => QueueKind::Queue,
            KindArg::Group => QueueKind::Group,
        }
    }
}

/// A ring strategy, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// Every available member at once.
    RingAll,
    /// Members in position order.
    Linear,
    /// Members in turn, after the one offered last.
    RoundRobin,
    /// The member idle longest.
    LongestIdle,
    /// The member with the fewest answered calls today.
    FewestCalls,
    /// A random member.
    Random,
}

impl From<StrategyArg> for QueueStrategy {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::RingAll => QueueStrategy::RingAll,
            StrategyArg::Linear => QueueStrategy::Linear,
            StrategyArg::RoundRobin => QueueStrategy::RoundRobin,
            StrategyArg::LongestIdle => QueueStrategy::LongestIdle,
            StrategyArg::FewestCalls => QueueStrategy::FewestCalls,
            StrategyArg::Random => QueueStrategy::Random,
        }
    }
}

/// An overflow condition, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConditionArg {
    /// The caller waited the queue's max wait.
    MaxWait,
    /// The queue holds its max callers.
    Full,
    /// No member logged in (or all paused).
    NoAgents,
    /// Outside opening hours.
    Closed,
}

impl From<ConditionArg> for OverflowCondition {
    fn from(c: ConditionArg) -> Self {
        match c {
            ConditionArg::MaxWait => OverflowCondition::MaxWait,
            ConditionArg::Full => OverflowCondition::Full,
            ConditionArg::NoAgents => OverflowCondition::NoAgents,
            ConditionArg::Closed => OverflowCondition::Closed,
        }
    }
}

/// The settings of `queue add` and `queue set` (not given: the default, or unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct QueueOptions {
    /// queue: callers wait with music; group: an answer group (callers hear ringing).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Whom to ring (default: longest-idle for a queue, ring-all for a group).
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// How long one offer rings, 1 to 600 seconds (default 20).
    #[arg(long, value_name = "SECS")]
    pub ring_timeout: Option<u32>,
    /// No queue call for an agent this long after one, 0 to 3600 seconds (default 10 for
    /// a queue, 0 for a group).
    #[arg(long, value_name = "SECS")]
    pub wrap_up: Option<u32>,
    /// Overflow after this wait, 1 to 86400 seconds.
    #[arg(long, value_name = "SECS")]
    pub max_wait: Option<u32>,
    /// Overflow when this many callers already wait, 1 to 10000.
    #[arg(long, value_name = "N")]
    pub max_callers: Option<u32>,
    /// Tell waiting callers their position this often, 5 to 3600 seconds.
    #[arg(long, value_name = "SECS")]
    pub announce_every: Option<u32>,
    /// The greeting's prompt name, e.g. queue/welcome.
    #[arg(long, value_name = "PROMPT")]
    pub greeting: Option<String>,
    /// A number (E.164) leading to the queue: a main or queue number of the tenant, or a
    /// new one (added as a queue number). May be repeated.
    #[arg(long = "number", value_name = "E164")]
    pub numbers: Vec<String>,
}

/// Arguments of `queue add`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct QueueAddArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The queue's name (unique in the tenant, ignoring ASCII case).
    pub name: String,
    /// Settings.
    #[command(flatten)]
    pub options: QueueOptions,
}

/// Arguments of `queue set`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct QueueSetArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The queue's name.
    pub name: String,
    /// Settings to change.
    #[command(flatten)]
    pub options: QueueOptions,
    /// Rename the queue.
    #[arg(long, value_name = "NAME")]
    pub rename: Option<String>,
    /// Wait forever (no max wait).
    #[arg(long, conflicts_with = "max_wait")]
    pub no_max_wait: bool,
    /// No limit of waiting callers.
    #[arg(long, conflicts_with = "max_callers")]
    pub no_max_callers: bool,
    /// No position announcements.
    #[arg(long, conflicts_with = "announce_every")]
    pub no_announce: bool,
    /// No greeting.
    #[arg(long, conflicts_with = "greeting")]
    pub no_greeting: bool,
}

/// Arguments of `queue overflow`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[command(group(ArgGroup::new("target").required(true).args([
    "to_queue", "to_user", "to_number", "announcement", "none"
])))]
pub struct OverflowArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The queue's name.
    pub queue: String,
    /// When the rule applies.
    #[arg(long, value_enum)]
    pub on: ConditionArg,
    /// Move the caller to another queue or answer group of the tenant.
    #[arg(long, value_name = "NAME")]
    pub to_queue: Option<String>,
    /// Ring a user of the tenant (by extension).
    #[arg(long, value_name = "EXT")]
    pub to_user: Option<String>,
    /// Call an external number (E.164).
    #[arg(long, value_name = "E164")]
    pub to_number: Option<String>,
    /// Play an announcement and hang up (a prompt name, or the default one).
    #[arg(long, value_name = "PROMPT", num_args = 0..=1)]
    pub announcement: Option<Option<String>>,
    /// Remove the rule for this condition.
    #[arg(long)]
    pub none: bool,
}

/// `sentralbord queue member ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum MemberCommand {
    /// Add a user as a member, or change a member's position or ring time.
    Add {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        queue: String,
        /// The user's extension.
        extension: String,
        /// Order for linear and round-robin ringing, lower first (default: last).
        #[arg(long, value_name = "N")]
        position: Option<u32>,
        /// The member's own ring time, 1 to 600 seconds (default: the queue's).
        #[arg(long, value_name = "SECS")]
        ring_timeout: Option<u32>,
    },
    /// Remove a member.
    Remove {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        queue: String,
        /// The user's extension.
        extension: String,
    },
}

/// `sentralbord queue holiday ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum HolidayCommand {
    /// Close a queue on a date, or open it only for some hours (replaces that date's).
    Add {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        queue: String,
        /// The local date, YYYY-MM-DD.
        date: String,
        /// Open only HH:MM-HH:MM that day (default: closed all day).
        #[arg(long, value_name = "HH:MM-HH:MM")]
        open: Option<String>,
    },
    /// Remove a holiday.
    Remove {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        queue: String,
        /// The local date, YYYY-MM-DD.
        date: String,
    },
}

/// `sentralbord queue vip ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum VipCommand {
    /// Add a VIP number: its calls go ahead of the others in every queue of the tenant.
    Add {
        /// The tenant's name.
        tenant: String,
        /// The number in E.164 form.
        number: String,
        /// A note.
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove a VIP number.
    Remove {
        /// The tenant's name.
        tenant: String,
        /// The number in E.164 form.
        number: String,
    },
    /// List the tenant's VIP numbers.
    List {
        /// The tenant's name.
        tenant: String,
    },
}

/// `sentralbord queue agent ...`: an agent's presence in every queue they belong to.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AgentCommand {
    /// Log in: receive queue calls.
    Login {
        /// The tenant's name.
        tenant: String,
        /// The agent's extension.
        extension: String,
    },
    /// Log out: receive no queue calls.
    Logout {
        /// The tenant's name.
        tenant: String,
        /// The agent's extension.
        extension: String,
    },
    /// Pause: stay logged in but receive no queue calls.
    Pause {
        /// The tenant's name.
        tenant: String,
        /// The agent's extension.
        extension: String,
        /// Why (shown to admins).
        #[arg(long)]
        reason: String,
    },
    /// End a pause.
    Unpause {
        /// The tenant's name.
        tenant: String,
        /// The agent's extension.
        extension: String,
    },
}

/// `sentralbord queue ...`: manage queues and answer groups.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum QueueCommand {
    /// Create a queue or answer group.
    Add(QueueAddArgs),
    /// Change a queue's settings (options not given are kept).
    Set(QueueSetArgs),
    /// Remove a queue (refused while another queue overflows to it, unless --force).
    Remove {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        name: String,
        /// Also remove other queues' overflow rules leading to it.
        #[arg(long)]
        force: bool,
    },
    /// List queues.
    List {
        /// Only this tenant's queues.
        tenant: Option<String>,
    },
    /// Show a queue: settings, members, numbers, overflow rules, hours, holidays.
    Show {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        name: String,
    },
    /// Manage a queue's members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Lead one of the tenant's main or queue numbers to a queue.
    Number {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        queue: String,
        /// The number in E.164 form (owned by the tenant).
        number: String,
        /// Take the number away from the queue instead.
        #[arg(long)]
        unassign: bool,
    },
    /// Set or remove an overflow rule.
    Overflow(OverflowArgs),
    /// Set a queue's weekly opening hours, e.g. "mon-fri 08:00-16:00, sat 10:00-14:00".
    #[command(group(ArgGroup::new("hours_or_always").required(true).args(["hours", "always"])))]
    Hours {
        /// The tenant's name.
        tenant: String,
        /// The queue's name.
        queue: String,
        /// The weekly hours in the tenant's time zone.
        hours: Option<String>,
        /// Always open (removes the weekly hours and every holiday).
        #[arg(long)]
        always: bool,
    },
    /// Manage a queue's holidays (dates the weekly hours do not apply).
    #[command(subcommand)]
    Holiday(HolidayCommand),
    /// Manage the tenant's VIP numbers.
    #[command(subcommand)]
    Vip(VipCommand),
    /// Log agents in and out, pause them.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// The live state of the queues, as the running daemon last wrote it.
    Status {
        /// Only this tenant's queues.
        tenant: Option<String>,
    },
    /// The queue call log, newest first.
    Log {
        /// The tenant's name.
        tenant: String,
        /// Only this queue's calls.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Statistics per queue and per operator for local dates (default: today).
    Stats {
        /// The tenant's name.
        tenant: String,
        /// First day, YYYY-MM-DD in the tenant's time zone (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<String>,
        /// Last day, included (default: the first day).
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: Option<String>,
    },
}

/// Runs a queue command against the database at `db_path`, printing to stdout. `now` is
/// the wall clock (agent presence changes, "today", the age of the live snapshot).
pub fn run_queue(cmd: QueueCommand, db_path: &Path, now: SystemTime) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_queue_with(cmd, db_path, now, &mut out)
}

fn queue_by_name(h: &StoreHandle, tenant: &Tenant, name: &str) -> Result<Queue, CliError> {
    h.find_queue(tenant.id, name)
        .wait()?
        .ok_or_else(|| CliError::QueueNotFound {
            tenant: tenant.name.clone(),
            queue: name.to_owned(),
        })
}

pub(super) fn unix_ms(t: SystemTime) -> i64 {
    jiff::Timestamp::try_from(t).map_or(0, |ts| ts.as_millisecond())
}

/// The tenant's time zone (UTC if the stored name is unknown, which the store prevents).
pub(super) fn zone_of(tenant: &Tenant) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(&tenant.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Formats Unix ms as local `YYYY-MM-DD HH:MM:SS` in `tz`.
pub(super) fn local_time(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => "-".into(),
    }
}

/// Checks the options of `queue add`/`set` that need no database, before opening it.
fn check_options(o: &QueueOptions) -> Result<(), CliError> {
    if let Some(g) = &o.greeting {
        validate::prompt_name(Field::Greeting, g)?;
    }
    for n in &o.numbers {
        validate::e164(Field::Number, n)?;
    }
    Ok(())
}

/// Applies the given options to settings.
fn apply_options(s: &mut QueueSettings, o: &QueueOptions) {
    if let Some(k) = o.kind {
        s.kind = k.into();
    }
    if let Some(v) = o.strategy {
        s.strategy = v.into();
    }
    if let Some(v) = o.ring_timeout {
        s.ring_timeout_s = v;
    }
    if let Some(v) = o.wrap_up {
        s.wrap_up_s = v;
    }
    if let Some(v) = o.max_wait {
        s.max_wait_s = Some(v);
    }
    if let Some(v) = o.max_callers {
        s.max_callers = Some(v);
    }
    if let Some(v) = o.announce_every {
        s.announce_every_s = Some(v);
    }
    if let Some(v) = &o.greeting {
        s.greeting = Some(v.clone());
    }
}

fn secs(v: Option<u32>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{s} s"))
}

/// Formats a duration in ms as `m:ss` (or `h:mm:ss`); "-" for none.
fn duration(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), super::calls::format_duration_ms)
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0))
}

/// Runs a queue command, writing results to `out`.
pub fn run_queue_with(
    cmd: QueueCommand,
    db_path: &Path,
    now: SystemTime,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // Input that needs no database is checked before it is opened.
    match &cmd {
        QueueCommand::Add(a) => {
            validate::display_name(Field::QueueName, &a.name)?;
            check_options(&a.options)?;
        }
        QueueCommand::Set(a) => {
            if let Some(n) = &a.rename {
                validate::display_name(Field::QueueName, n)?;
            }
            check_options(&a.options)?;
        }
        QueueCommand::Hours {
            hours: Some(text), ..
        } => {
            parse_weekly_hours(text).map_err(|e| CliError::Hours("hours", e))?;
        }
        QueueCommand::Holiday(HolidayCommand::Add { date, open, .. }) => {
            parse_date("date", date)?;
            if let Some(o) = open {
                parse_range(o).map_err(|e| CliError::Hours("open", e))?;
            }
        }
        QueueCommand::Holiday(HolidayCommand::Remove { date, .. }) => {
            parse_date("date", date)?;
        }
        QueueCommand::Stats { from, to, .. } => {
            if let Some(d) = from {
                parse_date("from", d)?;
            }
            if let Some(d) = to {
                parse_date("to", d)?;
            }
        }
        _ => {}
    }
    let now_ms = unix_ms(now);
    with_store(db_path, |h| match cmd {
        QueueCommand::Add(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let kind = a.options.kind.map_or(QueueKind::Queue, QueueKind::from);
            let mut settings = QueueSettings::defaults(kind);
            apply_options(&mut settings, &a.options);
            let numbers = a.options.numbers.clone();
            let id = h
                .add_queue(
                    t.id,
                    QueueDefinition {
                        name: a.name.clone(),
                        settings: settings.clone(),
                        numbers: numbers.clone(),
                    },
                )
                .wait()?;
            writeln!(
                out,
                "{} {:?} added to tenant {:?} (id {id}, {})",
                settings.kind, a.name, t.name, settings.strategy
            )
            .map_err(CliError::Output)?;
            for n in numbers {
                writeln!(out, "number {n} leads to it").map_err(CliError::Output)?;
            }
            Ok(())
        }
        QueueCommand::Set(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let q = queue_by_name(h, &t, &a.name)?;
            let mut settings = q.settings.clone();
            apply_options(&mut settings, &a.options);
            if a.no_max_wait {
                settings.max_wait_s = None;
            }
            if a.no_max_callers {
                settings.max_callers = None;
            }
            if a.no_announce {
                settings.announce_every_s = None;
            }
            if a.no_greeting {
                settings.greeting = None;
            }
            let name = a.rename.clone().unwrap_or(q.name.clone());
            h.update_queue(
                q.id,
                QueueDefinition {
                    name: name.clone(),
                    settings: settings.clone(),
                    numbers: a.options.numbers.clone(),
                },
            )
            .wait()?;
            writeln!(
                out,
                "{} {name:?} of tenant {:?} updated",
                settings.kind, t.name
            )
            .map_err(CliError::Output)?;
            write_fields(out, &settings_fields(&settings))
        }
        QueueCommand::Remove {
            tenant,
            name,
            force,
        } => {
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &name)?;
            h.remove_queue(q.id, force).wait()?;
            writeln!(out, "queue {:?} removed from tenant {:?}", q.name, t.name)
                .map_err(CliError::Output)
        }
        QueueCommand::List { tenant } => {
            let tenant = tenant.map(|n| tenant_by_name(h, &n)).transpose()?;
            let queues = h.list_queues(tenant.as_ref().map(|t| t.id)).wait()?;
            if queues.is_empty() {
                return writeln!(out, "no queues").map_err(CliError::Output);
            }
            let with_tenant = tenant.is_none();
            let rows = queues
                .into_iter()
                .map(|s| {
                    let mut row = Vec::new();
                    if with_tenant {
                        row.push(s.tenant_name);
                    }
                    row.extend([
                        s.queue.name,
                        s.queue.settings.kind.to_string(),
                        s.queue.settings.strategy.to_string(),
                        s.members.to_string(),
                        if s.numbers.is_empty() {
                            "-".into()
                        } else {
                            s.numbers.join(" ")
                        },
                    ]);
                    row
                })
                .collect();
            let mut headers = Vec::new();
            if with_tenant {
                headers.push("TENANT");
            }
            headers.extend(["NAME", "KIND", "STRATEGY", "MEMBERS", "NUMBERS"]);
            write_table(out, &headers, rows)
        }
        QueueCommand::Show { tenant, name } => {
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &name)?;
            let d = h.queue_details(q.id).wait()?;
            let mut fields = vec![("queue", d.queue.name.clone()), ("tenant", t.name.clone())];
            fields.extend(settings_fields(&d.queue.settings));
            fields.push((
                "numbers",
                if d.numbers.is_empty() {
                    "-".into()
                } else {
                    d.numbers.join(", ")
                },
            ));
            fields.push((
                "hours",
                if d.weekly.is_empty() {
                    "always open".into()
                } else {
                    format!("{} ({})", format_weekly_hours(&d.weekly), t.time_zone)
                },
            ));
            let holidays: Vec<String> = d
                .holidays
                .iter()
                .map(|hd| match hd.open {
                    Some((o, c)) => format!("{} open {}", hd.date, format_range(o, c)),
                    None => format!("{} closed", hd.date),
                })
                .collect();
            fields.push((
                "holidays",
                if holidays.is_empty() {
                    "-".into()
                } else {
                    holidays.join(", ")
                },
            ));
            for c in OverflowCondition::ALL {
                let target = d
                    .overflow
                    .iter()
                    .find(|i| i.rule.condition == *c)
                    .map_or_else(|| "-".into(), |i| i.target_label.clone());
                fields.push((overflow_label(*c), target));
            }
            if !d.referred_by.is_empty() {
                let refs: Vec<String> = d
                    .referred_by
                    .iter()
                    .map(|(n, c)| format!("{n} ({c})"))
                    .collect();
                fields.push(("overflow from", refs.join(", ")));
            }
            write_fields(out, &fields)?;
            if d.members.is_empty() {
                return writeln!(out, "no members").map_err(CliError::Output);
            }
            let rows = d
                .members
                .iter()
                .map(|m| {
                    let presence = d
                        .presence
                        .iter()
                        .find(|p| p.user_id == m.user_id)
                        .map_or(AgentPresence::LoggedOut, |p| p.presence.clone());
                    vec![
                        m.position.to_string(),
                        m.extension.clone(),
                        m.name.clone(),
                        secs(m.ring_timeout_s),
                        presence.to_string(),
                    ]
                })
                .collect();
            write_table(out, &["POS", "EXT", "NAME", "RING", "PRESENCE"], rows)
        }
        QueueCommand::Member(MemberCommand::Add {
            tenant,
            queue,
            extension,
            position,
            ring_timeout,
        }) => {
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &queue)?;
            let u = user_by_extension(h, &t, &extension)?;
            let added = h
                .add_queue_member(q.id, u.id, position, ring_timeout)
                .wait()?;
            let verb = if added { "added to" } else { "updated in" };
            writeln!(
                out,
                "member {} ({}) {verb} queue {:?}",
                u.extension, u.name, q.name
            )
            .map_err(CliError::Output)
        }
        QueueCommand::Member(MemberCommand::Remove {
            tenant,
            queue,
            extension,
        }) => {
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &queue)?;
            let u = user_by_extension(h, &t, &extension)?;
            match h.remove_queue_member(q.id, u.id).wait() {
                Err(StoreError::NotFound(Entity::Member)) => Err(CliError::NotMember {
                    queue: q.name,
                    extension,
                }),
                other => {
                    other?;
                    writeln!(out, "member {extension} removed from queue {:?}", q.name)
                        .map_err(CliError::Output)
                }
            }
        }
        QueueCommand::Number {
            tenant,
            queue,
            number,
            unassign,
        } => {
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &queue)?;
            let owned = h
                .list_tenant_numbers(t.id)
                .wait()?
                .into_iter()
                .find(|n| n.number == number);
            let Some(owned) = owned else {
                validate::e164(Field::Number, &number)?;
                return Err(CliError::NumberNotFound {
                    tenant: t.name,
                    number,
                });
            };
            if unassign {
                if owned.queue_id != Some(q.id) {
                    return Err(CliError::NumberNotOfQueue {
                        queue: q.name,
                        number,
                    });
                }
                h.assign_queue_number(t.id, &number, None).wait()?;
                writeln!(out, "number {number} no longer leads to queue {:?}", q.name)
            } else {
                h.assign_queue_number(t.id, &number, Some(q.id)).wait()?;
                writeln!(
                    out,
                    "number {number} ({}) leads to queue {:?}",
                    owned.kind, q.name
                )
            }
            .map_err(CliError::Output)
        }
        QueueCommand::Overflow(a) => {
            let t = tenant_by_name(h, &a.tenant)?;
            let q = queue_by_name(h, &t, &a.queue)?;
            let condition = OverflowCondition::from(a.on);
            if a.none {
                let had = h.clear_overflow_rule(q.id, condition).wait()?;
                return if had {
                    writeln!(out, "queue {:?}: no overflow on {condition}", q.name)
                } else {
                    writeln!(
                        out,
                        "queue {:?} had no overflow rule on {condition}",
                        q.name
                    )
                }
                .map_err(CliError::Output);
            }
            let (target, label) = if let Some(name) = &a.to_queue {
                let target = queue_by_name(h, &t, name)?;
                (
                    OverflowTarget::Queue(target.id),
                    format!("queue {:?}", target.name),
                )
            } else if let Some(ext) = &a.to_user {
                let u = user_by_extension(h, &t, ext)?;
                (
                    OverflowTarget::User(u.id),
                    format!("user {} ({})", u.extension, u.name),
                )
            } else if let Some(n) = &a.to_number {
                (OverflowTarget::Number(n.clone()), format!("number {n}"))
            } else {
                let prompt = a.announcement.clone().flatten();
                let label = match &prompt {
                    Some(p) => format!("announcement {p}"),
                    None => "the default announcement".into(),
                };
                (OverflowTarget::Announcement(prompt), label)
            };
            h.set_overflow_rule(q.id, OverflowRule { condition, target })
                .wait()?;
            writeln!(
                out,
                "queue {:?}: on {condition}, overflow to {label}",
                q.name
            )
            .map_err(CliError::Output)
        }
        QueueCommand::Hours {
            tenant,
            queue,
            hours,
            always: _,
        } => {
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &queue)?;
            let weekly = match &hours {
                Some(text) => parse_weekly_hours(text).map_err(|e| CliError::Hours("hours", e))?,
                None => Vec::new(),
            };
            h.set_queue_hours(q.id, weekly.clone()).wait()?;
            if weekly.is_empty() {
                writeln!(out, "queue {:?} is always open", q.name)
            } else {
                writeln!(
                    out,
                    "queue {:?} is open {} ({})",
                    q.name,
                    format_weekly_hours(&weekly),
                    t.time_zone
                )
            }
            .map_err(CliError::Output)
        }
        QueueCommand::Holiday(HolidayCommand::Add {
            tenant,
            queue,
            date,
            open,
        }) => {
            let date = parse_date("date", &date)?;
            let open = open
                .as_deref()
                .map(parse_range)
                .transpose()
                .map_err(|e| CliError::Hours("open", e))?;
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &queue)?;
            h.add_queue_holiday(q.id, QueueHoliday { date, open })
                .wait()?;
            match open {
                Some((o, c)) => writeln!(
                    out,
                    "queue {:?} on {date}: open {} only",
                    q.name,
                    format_range(o, c)
                ),
                None => writeln!(out, "queue {:?} on {date}: closed", q.name),
            }
            .map_err(CliError::Output)
        }
        QueueCommand::Holiday(HolidayCommand::Remove {
            tenant,
            queue,
            date,
        }) => {
            let date = parse_date("date", &date)?;
            let t = tenant_by_name(h, &tenant)?;
            let q = queue_by_name(h, &t, &queue)?;
            match h.remove_queue_holiday(q.id, date).wait() {
                Err(StoreError::NotFound(Entity::Holiday)) => Err(CliError::HolidayNotFound {
                    queue: q.name,
                    date: date.to_string(),
                }),
                other => {
                    other?;
                    writeln!(out, "queue {:?} on {date}: normal hours", q.name)
                        .map_err(CliError::Output)
                }
            }
        }
        QueueCommand::Vip(VipCommand::Add {
            tenant,
            number,
            note,
        }) => {
            let t = tenant_by_name(h, &tenant)?;
            h.add_vip(t.id, &number, note.as_deref()).wait()?;
            writeln!(out, "VIP number {number} added to tenant {:?}", t.name)
                .map_err(CliError::Output)
        }
        QueueCommand::Vip(VipCommand::Remove { tenant, number }) => {
            let t = tenant_by_name(h, &tenant)?;
            match h.remove_vip(t.id, &number).wait() {
                Err(StoreError::NotFound(Entity::Vip)) => Err(CliError::VipNotFound {
                    tenant: t.name,
                    number,
                }),
                other => {
                    other?;
                    writeln!(out, "VIP number {number} removed from tenant {:?}", t.name)
                        .map_err(CliError::Output)
                }
            }
        }
        QueueCommand::Vip(VipCommand::List { tenant }) => {
            let t = tenant_by_name(h, &tenant)?;
            let vips = h.list_vips(t.id).wait()?;
            if vips.is_empty() {
                return writeln!(out, "tenant {:?} has no VIP numbers", t.name)
                    .map_err(CliError::Output);
            }
            let rows = vips
                .into_iter()
                .map(|v| vec![v.number, v.note.unwrap_or_else(|| "-".into())])
                .collect();
            write_table(out, &["NUMBER", "NOTE"], rows)
        }
        QueueCommand::Agent(a) => {
            let (tenant, extension, presence, unpause) = match a {
                AgentCommand::Login { tenant, extension } => {
                    (tenant, extension, AgentPresence::LoggedIn, false)
                }
                AgentCommand::Logout { tenant, extension } => {
                    (tenant, extension, AgentPresence::LoggedOut, false)
                }
                AgentCommand::Unpause { tenant, extension } => {
                    (tenant, extension, AgentPresence::LoggedIn, true)
                }
                AgentCommand::Pause {
                    tenant,
                    extension,
                    reason,
                } => {
                    validate::display_name(Field::PauseReason, &reason)?;
                    (
                        tenant,
                        extension,
                        AgentPresence::Paused(Some(reason)),
                        false,
                    )
                }
            };
            let t = tenant_by_name(h, &tenant)?;
            let u = user_by_extension(h, &t, &extension)?;
            if unpause {
                // Unpausing a logged-out agent would log them in unasked.
                let current = h.agent_presence(u.id).wait()?;
                if !matches!(current, AgentPresence::Paused(_)) {
                    return Err(CliError::NotPaused {
                        extension: u.extension,
                        presence: current.to_string(),
                    });
                }
            }
            h.set_agent_presence(u.id, presence.clone(), now_ms)
                .wait()?;
            writeln!(
                out,
                "agent {} ({}) of tenant {:?}: {presence}",
                u.extension, u.name, t.name
            )
            .map_err(CliError::Output)
        }
        QueueCommand::Status { tenant } => {
            let tenant = tenant.map(|n| tenant_by_name(h, &n)).transpose()?;
            let rows = h.queue_live(tenant.as_ref().map(|t| t.id)).wait()?;
            if rows.is_empty() {
                let queues = h.list_queues(tenant.as_ref().map(|t| t.id)).wait()?;
                return if queues.is_empty() {
                    writeln!(out, "no queues")
                } else {
                    writeln!(out, "no live data: daemon not running or not updating")
                }
                .map_err(CliError::Output);
            }
            let oldest = rows.iter().map(|r| r.updated_at_ms).min().unwrap_or(now_ms);
            let age_ms = now_ms.saturating_sub(oldest);
            if age_ms > LIVE_STALE_AFTER_MS {
                writeln!(
                    out,
                    "daemon not running or not updating: this is from {} s ago",
                    age_ms / 1000
                )
                .map_err(CliError::Output)?;
            }
            let tenants = if tenant.is_none() {
                h.list_tenants().wait()?
            } else {
                Vec::new()
            };
            let table = rows
                .into_iter()
                .map(|r| {
                    let mut row = Vec::new();
                    if tenant.is_none() {
                        row.push(
                            tenants
                                .iter()
                                .find(|t| t.tenant.id == r.tenant_id)
                                .map_or_else(|| "-".into(), |t| t.tenant.name.clone()),
                        );
                    }
                    row.extend([
                        r.name,
                        r.callers_waiting.to_string(),
                        duration(r.longest_wait_ms),
                        r.agents_available.to_string(),
                        r.agents_logged_in.to_string(),
                        r.agents_busy.to_string(),
                        r.agents_paused.to_string(),
                        r.answered_today.to_string(),
                        r.unanswered_today.to_string(),
                    ]);
                    row
                })
                .collect();
            let mut headers = Vec::new();
            if tenant.is_none() {
                headers.push("TENANT");
            }
            headers.extend([
                "QUEUE",
                "WAITING",
                "LONGEST",
                "AVAILABLE",
                "LOGGED IN",
                "BUSY",
                "PAUSED",
                "ANSWERED",
                "UNANSWERED",
            ]);
            write_table(out, &headers, table)
        }
        QueueCommand::Log {
            tenant,
            queue,
            limit,
        } => {
            let t = tenant_by_name(h, &tenant)?;
            let q = queue.map(|n| queue_by_name(h, &t, &n)).transpose()?;
            let visits = h
                .queue_log(QueueLogFilter {
                    tenant: t.id,
                    queue: q.map(|q| q.id),
                    member: None,
                    since_ms: None,
                    limit,
                })
                .wait()?;
            if visits.is_empty() {
                return writeln!(out, "no queue calls").map_err(CliError::Output);
            }
            let tz = zone_of(&t);
            let rows = visits.iter().map(|v| log_row(v, &tz)).collect();
            write_table(
                out,
                &[
                    "ENTERED",
                    "QUEUE",
                    "CALLER",
                    "VIP",
                    "OUTCOME",
                    "WAIT",
                    "TALK",
                    "ANSWERED BY",
                    "OFFERED TO",
                    "OVERFLOW",
                    "TRANSFERRED TO",
                    "HANDLED BY",
                ],
                rows,
            )
        }
        QueueCommand::Stats { tenant, from, to } => {
            let t = tenant_by_name(h, &tenant)?;
            let tz = zone_of(&t);
            let today = jiff::Timestamp::try_from(now)
                .map(|ts| ts.to_zoned(tz.clone()).date())
                .unwrap_or(jiff::civil::date(1970, 1, 1));
            let from = match from {
                Some(d) => civil(parse_date("from", &d)?),
                None => today,
            };
            let to = match to {
                Some(d) => civil(parse_date("to", &d)?),
                None => from,
            };
            if to < from {
                return Err(CliError::BadDate {
                    option: "to",
                    value: to.to_string(),
                    reason: "is before --from",
                });
            }
            let from_ms = local_midnight_ms(from, &tz)?;
            let to_ms = local_midnight_ms(to.tomorrow().unwrap_or(to), &tz)?;
            let report = h.queue_stats(t.id, from_ms, to_ms).wait()?;
            let period = if from == to {
                from.to_string()
            } else {
                format!("{from} to {to}")
            };
            writeln!(out, "tenant {:?}, {period} ({})", t.name, t.time_zone)
                .map_err(CliError::Output)?;
            writeln!(out).map_err(CliError::Output)?;
            if report.queues.is_empty() {
                writeln!(out, "no queues").map_err(CliError::Output)?;
            } else {
                let rows = report
                    .queues
                    .iter()
                    .map(|q| {
                        vec![
                            q.name.clone(),
                            q.offered.to_string(),
                            q.answered.to_string(),
                            rate(q.answer_rate()),
                            duration(q.avg_wait_answered_ms),
                            duration(q.max_wait_answered_ms),
                            duration(q.avg_wait_unanswered_ms),
                            duration(q.max_wait_unanswered_ms),
                            duration(q.avg_talk_ms),
                            q.abandoned.to_string(),
                            q.overflowed.to_string(),
                            q.given_up.to_string(),
                            q.transfers.to_string(),
                        ]
                    })
                    .collect();
                write_table(
                    out,
                    &[
                        "QUEUE",
                        "OFFERED",
                        "ANSWERED",
                        "RATE",
                        "AVG WAIT",
                        "MAX WAIT",
                        "AVG WAIT MISSED",
                        "MAX WAIT MISSED",
                        "AVG TALK",
                        "ABANDONED",
                        "OVERFLOWED",
                        "GIVEN UP",
                        "TRANSFERS",
                    ],
                    rows,
                )?;
            }
            writeln!(out).map_err(CliError::Output)?;
            if report.operators.is_empty() {
                return writeln!(out, "no operators").map_err(CliError::Output);
            }
            let rows = report
                .operators
                .iter()
                .map(|o| {
                    vec![
                        o.extension.clone(),
                        o.name.clone(),
                        o.offered.to_string(),
                        o.answered.to_string(),
                        rate(o.answer_rate()),
                        duration(o.avg_talk_ms),
                        o.transfers.to_string(),
                        o.outgoing.to_string(),
                    ]
                })
                .collect();
            write_table(
                out,
                &[
                    "EXT",
                    "OPERATOR",
                    "OFFERED",
                    "ANSWERED",
                    "RATE",
                    "AVG TALK",
                    "TRANSFERS",
                    "OUTGOING",
                ],
                rows,
            )
        }
    })
}

fn overflow_label(c: OverflowCondition) -> &'static str {
    match c {
        OverflowCondition::MaxWait => "overflow max-wait",
        OverflowCondition::Full => "overflow full",
        OverflowCondition::NoAgents => "overflow no-agents",
        OverflowCondition::Closed => "overflow closed",
    }
}

/// The lines describing a queue's settings.
fn settings_fields(s: &QueueSettings) -> Vec<(&'static str, String)> {
    vec![
        ("kind", s.kind.to_string()),
        ("strategy", s.strategy.to_string()),
        ("ring timeout", format!("{} s", s.ring_timeout_s)),
        ("wrap-up", format!("{} s", s.wrap_up_s)),
        ("max wait", secs(s.max_wait_s)),
        (
            "max callers",
            s.max_callers.map_or_else(|| "-".into(), |n| n.to_string()),
        ),
        ("announce every", secs(s.announce_every_s)),
        ("greeting", s.greeting.clone().unwrap_or_else(|| "-".into())),
    ]
}

/// One row of `queue log`.
fn log_row(v: &QueueVisitSummary, tz: &jiff::tz::TimeZone) -> Vec<String> {
    let caller = match &v.caller_name {
        Some(n) => format!("{n} <{}>", v.caller_number),
        None => v.caller_number.clone(),
    };
    let who = |u: &Option<crate::store::UserRef>| {
        u.as_ref()
            .map_or_else(|| "-".into(), |u| format!("{} ({})", u.name, u.extension))
    };
    let mut offered: Vec<&str> = Vec::new();
    for o in &v.offers {
        let ext = o.user.as_ref().map_or("?", |u| u.extension.as_str());
        if !offered.contains(&ext) {
            offered.push(ext);
        }
    }
    let overflow = match (v.overflow_reason, &v.overflow_target) {
        (Some(r), Some(t)) => format!("{r}: {t}"),
        (Some(r), None) => r.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "-".into(),
    };
    let answered = v.answered_at_ms.is_some();
    vec![
        local_time(v.entered_at_ms, tz),
        v.queue_name.clone(),
        caller,
        if v.vip { "yes".into() } else { "-".into() },
        v.outcome.to_string(),
        super::calls::format_duration_ms(v.wait_ms),
        if answered {
            super::calls::format_duration_ms(v.talk_ms)
        } else {
            "-".into()
        },
        who(&v.answered_by),
        if offered.is_empty() {
            "-".into()
        } else {
            offered.join(",")
        },
        overflow,
        v.transferred_to.clone().unwrap_or_else(|| "-".into()),
        who(&v.handled_by),
    ]
}

/// Parses a `YYYY-MM-DD` date given for `option`.
fn parse_date(option: &'static str, s: &str) -> Result<LocalDate, CliError> {
    s.parse::<LocalDate>().map_err(|e| CliError::BadDate {
        option,
        value: s.to_owned(),
        reason: match e {
            StoreError::Invalid { reason, .. } => reason,
            _ => "is not a date",
        },
    })
}

fn civil(d: LocalDate) -> jiff::civil::Date {
    // A LocalDate is a valid calendar date in years 1..=9999, which jiff accepts.
    let (month, day) = (
        i8::try_from(d.month).unwrap_or(1),
        i8::try_from(d.day).unwrap_or(1),
    );
    jiff::civil::Date::new(d.year, month, day).unwrap_or(jiff::civil::Date::MIN)
}

/// The Unix ms of a local date's first instant in `tz`.
fn local_midnight_ms(d: jiff::civil::Date, tz: &jiff::tz::TimeZone) -> Result<i64, CliError> {
    d.to_zoned(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|_| CliError::BadDate {
            option: "from",
            value: d.to_string(),
            reason: "is out of range",
        })
}
