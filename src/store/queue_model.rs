//! The typed records of queues and answer groups as the store reads and writes them:
//! provisioning (queues, members, overflow rules, opening hours, VIP numbers, agents'
//! presence), the configuration snapshot the daemon loads, the queue call log and its
//! statistics, and the live snapshot. Plain data: the queue engine (`crate::queue`) has
//! its own vocabulary, and the runtime maps between the two.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use super::model::{text_enum, CallId, TenantId, UserId, UserRef};
use super::StoreError;

/// A queue's (or answer group's) row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub i64);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A queue visit's row id (one per visit of a call to a queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisitId(pub i64);

impl fmt::Display for VisitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

text_enum!(
    /// A queue (answered by sentralbord, callers wait with music) or an answer group
    /// (callers hear ringing until a member answers).
    QueueKind, "queues.kind", {
        /// Answered by sentralbord: greeting, music on hold, announcements.
        Queue => "queue",
        /// Rings members; the caller hears ringing.
        Group => "group",
    }
);

text_enum!(
    /// Whom to offer the next call to.
    QueueStrategy, "queues.strategy", {
        /// Every available member at once.
        RingAll => "ring-all",
        /// Members in position order.
        Linear => "linear",
        /// Members in turn, starting after the one offered last.
        RoundRobin => "round-robin",
        /// The member idle longest.
        LongestIdle => "longest-idle",
        /// The member who answered the fewest calls today.
        FewestCalls => "fewest-calls",
        /// A random member.
        Random => "random",
    }
);

text_enum!(
    /// When a caller leaves a queue for its overflow target.
    OverflowCondition, "queue_overflow.condition", {
        /// The caller waited the queue's maximum wait.
        MaxWait => "max-wait",
        /// The queue already held its maximum number of callers.
        Full => "full",
        /// No member logged in (or all paused).
        NoAgents => "no-agents",
        /// Outside opening hours.
        Closed => "closed",
    }
);

text_enum!(
    /// How a queue visit ended.
    VisitOutcome, "queue_visits.outcome", {
        /// An agent answered.
        Answered => "answered",
        /// The caller hung up while waiting.
        Abandoned => "abandoned",
        /// The caller left for the queue's overflow target.
        Overflowed => "overflowed",
        /// The caller could not be served (no rule, hop limit): announcement, hang-up.
        GivenUp => "given-up",
        /// The switch ended the call (shutdown, error) while the caller waited.
        EndedBySwitch => "ended-by-switch",
    }
);

text_enum!(
    /// How one offer of a queue call to an agent ended.
    OfferResult, "queue_offers.result", {
        /// The agent answered.
        Answered => "answered",
        /// The agent's ring time ran out.
        NoAnswer => "no-answer",
        /// The agent's terminals refused (busy, declined, unreachable).
        Refused => "refused",
        /// The offer was taken back (another agent answered, the caller left).
        Withdrawn => "withdrawn",
    }
);

impl VisitOutcome {
    /// A missed visit: anything but answered (it can later be handled by a callback).
    pub fn is_missed(self) -> bool {
        self != VisitOutcome::Answered
    }
}

/// Default ring time of one offer, seconds.
pub const DEFAULT_RING_TIMEOUT_S: u32 = 20;
/// Default wrap-up time of a queue, seconds (answer groups default to none).
pub const DEFAULT_QUEUE_WRAP_UP_S: u32 = 10;

/// A queue's settings (everything but its name and tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// Queue or answer group.
    pub kind: QueueKind,
    /// Ring strategy.
    pub strategy: QueueStrategy,
    /// How long one offer rings, seconds (1 to 600).
    pub ring_timeout_s: u32,
    /// Time after a queue call in which the agent gets no queue call, seconds (0 to 3600).
    pub wrap_up_s: u32,
    /// Overflow after this wait, seconds (1 to 86400; `None`: wait forever).
    pub max_wait_s: Option<u32>,
    /// Overflow when this many callers already wait (1 to 10000; `None`: no limit).
    pub max_callers: Option<u32>,
    /// Announce position and expected wait this often, seconds (5 to 3600; `None`: never).
    pub announce_every_s: Option<u32>,
    /// The greeting's prompt name (`None`: no greeting).
    pub greeting: Option<String>,
}

impl QueueSettings {
    /// The defaults of a kind: a queue rings the longest-idle member with 10 s wrap-up,
    /// an answer group rings all members with no wrap-up; 20 s ring time; no limits.
    pub fn defaults(kind: QueueKind) -> Self {
        let (strategy, wrap_up_s) = match kind {
            QueueKind::Queue => (QueueStrategy::LongestIdle, DEFAULT_QUEUE_WRAP_UP_S),
            QueueKind::Group => (QueueStrategy::RingAll, 0),
        };
        Self {
            kind,
            strategy,
            ring_timeout_s: DEFAULT_RING_TIMEOUT_S,
            wrap_up_s,
            max_wait_s: None,
            max_callers: None,
            announce_every_s: None,
            greeting: None,
        }
    }
}

/// A queue to create, or a queue's new definition (its name and settings are replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDefinition {
    /// Name, unique in the tenant ignoring ASCII case.
    pub name: String,
    /// Settings.
    pub settings: QueueSettings,
    /// E.164 numbers to lead to the queue: a main or queue number the tenant owns is
    /// assigned to it, a number nobody owns is added to the tenant as a queue number.
    pub numbers: Vec<String>,
}

/// A queue or answer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Row id.
    pub id: QueueId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub name: String,
    /// Settings.
    pub settings: QueueSettings,
}

/// A queue in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSummary {
    /// The queue.
    pub queue: Queue,
    /// Its tenant's name.
    pub tenant_name: String,
    /// How many members it has.
    pub members: u64,
    /// The numbers leading to it, in order.
    pub numbers: Vec<String>,
}

/// A member of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMember {
    /// The user.
    pub user_id: UserId,
    /// The user's extension.
    pub extension: String,
    /// The user's name.
    pub name: String,
    /// Order for linear and round-robin ringing (lower first).
    pub position: u32,
    /// The member's own ring time, seconds (`None`: the queue's).
    pub ring_timeout_s: Option<u32>,
}

/// Where an overflowing caller goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverflowTarget {
    /// Another queue or answer group of the same tenant.
    Queue(QueueId),
    /// A user of the same tenant.
    User(UserId),
    /// An external number (E.164).
    Number(String),
    /// An announcement (prompt name; `None`: the default), then hang-up.
    Announcement(Option<String>),
}

/// One overflow rule of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverflowRule {
    /// When it applies.
    pub condition: OverflowCondition,
    /// Where the caller goes.
    pub target: OverflowTarget,
}

/// An overflow rule with its target described for people ("queue Support",
/// "user 10 (Kari)", "+4790000000", "announcement queue/all-busy").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverflowRuleInfo {
    /// The rule.
    pub rule: OverflowRule,
    /// The target, described.
    pub target_label: String,
}

/// A weekly opening range in the tenant's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WeeklyHours {
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    /// Opening minute of the day (0..1440).
    pub open_min: u16,
    /// Closing minute (exclusive, 1..=1440), after `open_min`.
    pub close_min: u16,
}

/// A local calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalDate {
    /// Year (1..=9999).
    pub year: i16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31 (valid for the month).
    pub day: u8,
}

impl LocalDate {
    /// A date, if it exists in the (proleptic Gregorian) calendar.
    pub fn new(year: i16, month: u8, day: u8) -> Option<LocalDate> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        ((1..=9999).contains(&year) && (1..=days).contains(&day)).then_some(LocalDate {
            year,
            month,
            day,
        })
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for LocalDate {
    type Err = StoreError;

    /// Parses `YYYY-MM-DD` (exactly that form).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = StoreError::Invalid {
            field: super::Field::Date,
            reason: "must be a date in the form YYYY-MM-DD",
        };
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| {
            b.get(r.clone())
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .and_then(|_| s.get(r))
        };
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad);
        }
        let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
            return Err(bad);
        };
        match (y.parse(), m.parse(), d.parse()) {
            (Ok(y), Ok(m), Ok(d)) => LocalDate::new(y, m, d).ok_or(StoreError::Invalid {
                field: super::Field::Date,
                reason: "no such date in the calendar",
            }),
            _ => Err(bad),
        }
    }
}

/// A date on which a queue's weekly hours do not apply (a holiday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueHoliday {
    /// The local date.
    pub date: LocalDate,
    /// Open only within these minutes of the day (`None`: closed all day).
    pub open: Option<(u16, u16)>,
}

/// A VIP number of a tenant: callers from it go ahead in every queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipNumber {
    /// The number (E.164).
    pub number: String,
    /// A note for the admin.
    pub note: Option<String>,
}

/// An agent's own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentPresence {
    /// Logged in: receives queue calls.
    LoggedIn,
    /// Logged out (also every user without a stored state).
    LoggedOut,
    /// Logged in but paused, with an optional reason.
    Paused(Option<String>),
}

impl AgentPresence {
    /// The value of the `presence` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            AgentPresence::LoggedIn => "in",
            AgentPresence::LoggedOut => "out",
            AgentPresence::Paused(_) => "paused",
        }
    }
}

impl fmt::Display for AgentPresence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentPresence::LoggedIn => f.write_str("logged in"),
            AgentPresence::LoggedOut => f.write_str("logged out"),
            AgentPresence::Paused(None) => f.write_str("paused"),
            AgentPresence::Paused(Some(r)) => write!(f, "paused ({r})"),
        }
    }
}

/// An agent's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    /// The user.
    pub user_id: UserId,
    /// Presence.
    pub presence: AgentPresence,
    /// When it was last changed, Unix ms.
    pub changed_at_ms: i64,
}

/// Changes of a tenant's queue-related settings (`None`: keep).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSettings {
    /// IANA time zone name, e.g. "Europe/Oslo".
    pub time_zone: Option<String>,
    /// Days queue history is kept (1 to 3650).
    pub queue_retention_days: Option<u32>,
}

/// Everything `queue show` tells about one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDetails {
    /// The queue.
    pub queue: Queue,
    /// Its members by position.
    pub members: Vec<QueueMember>,
    /// The members' presence (members without a stored state are logged out).
    pub presence: Vec<AgentState>,
    /// The numbers leading to it.
    pub numbers: Vec<String>,
    /// Its overflow rules, in condition order.
    pub overflow: Vec<OverflowRuleInfo>,
    /// Its weekly hours by day and time.
    pub weekly: Vec<WeeklyHours>,
    /// Its holidays by date.
    pub holidays: Vec<QueueHoliday>,
    /// Queues whose overflow rules lead here: (queue name, condition).
    pub referred_by: Vec<(String, OverflowCondition)>,
}

/// One queue as the daemon loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue.
    pub queue: Queue,
    /// The tenant's time zone (for its opening hours and "today").
    pub time_zone: String,
    /// Members by position, then user id.
    pub members: Vec<QueueMember>,
    /// Overflow rules.
    pub overflow: Vec<OverflowRule>,
    /// Weekly hours. Both this and `holidays` empty: always open.
    pub weekly: Vec<WeeklyHours>,
    /// Holidays. The store refuses holidays without weekly hours, so a non-empty list
    /// comes with weekly hours.
    pub holidays: Vec<QueueHoliday>,
    /// The numbers leading to the queue.
    pub numbers: Vec<String>,
}

/// Everything the queue engine needs, read in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueConfigSnapshot {
    /// The configuration revision this snapshot shows (see
    /// [`queue_config_revision`](super::StoreHandle::queue_config_revision)).
    pub revision: i64,
    /// Every queue of every tenant, by id.
    pub queues: Vec<QueueConfig>,
    /// VIP numbers per tenant (tenants without any are absent).
    pub vip_numbers: HashMap<TenantId, HashSet<String>>,
    /// Every stored agent state (users without one are logged out).
    pub agents: Vec<AgentState>,
}

/// One offer of a queue call to an agent, as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferRecord {
    /// The agent.
    pub user: UserId,
    /// When the agent's terminals started ringing, Unix ms.
    pub offered_at_ms: i64,
    /// How it ended.
    pub result: OfferResult,
}

/// One visit of a call to a queue, written with its call (see
/// [`CallRecord::queue_visits`](super::CallRecord::queue_visits)). The caller's number
/// and name and the tenant are the call's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueVisitRecord {
    /// The queue (stored as absent if it was removed meanwhile).
    pub queue: QueueId,
    /// The queue's name at the time.
    pub queue_name: String,
    /// The caller's number was on the VIP list.
    pub vip: bool,
    /// Entered the queue, Unix ms.
    pub entered_at_ms: i64,
    /// An agent answered, Unix ms.
    pub answered_at_ms: Option<i64>,
    /// The agent who answered.
    pub answered_by: Option<UserId>,
    /// Left the queue (answered, hung up, overflowed, given up), Unix ms.
    pub left_at_ms: i64,
    /// Talk time with the answering agent, ms (0 if unanswered). The wait is computed
    /// by the store: entered to answered, or to left.
    pub talk_ms: i64,
    /// How the visit ended.
    pub outcome: VisitOutcome,
    /// Why it overflowed (with outcome `overflowed` or `given-up`).
    pub overflow_reason: Option<OverflowCondition>,
    /// Where it overflowed to, described ("queue Support", "+4790000000", ...).
    pub overflow_target: Option<String>,
    /// Whom the answering agent transferred the caller to, described.
    pub transferred_to: Option<String>,
    /// The offers to agents, in order.
    pub offers: Vec<OfferRecord>,
}

/// One offer as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// The agent (None if removed since).
    pub user: Option<UserRef>,
    /// When, Unix ms.
    pub offered_at_ms: i64,
    /// How it ended.
    pub result: OfferResult,
}

/// Which visits [`queue_log`](super::StoreHandle::queue_log) lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLogFilter {
    /// The tenant.
    pub tenant: TenantId,
    /// Only visits to this queue.
    pub queue: Option<QueueId>,
    /// Only visits to queues this user is a member of now (an operator's queue log).
    pub member: Option<UserId>,
    /// Only visits entered at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// One queue visit as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueVisitSummary {
    /// Row id.
    pub id: VisitId,
    /// The call (None once the call log row is deleted by its own retention).
    pub call_id: Option<CallId>,
    /// The queue (None if removed since).
    pub queue_id: Option<QueueId>,
    /// The queue's name at the time.
    pub queue_name: String,
    /// The caller's number.
    pub caller_number: String,
    /// The caller's name.
    pub caller_name: Option<String>,
    /// The caller was a VIP.
    pub vip: bool,
    /// Entered, Unix ms.
    pub entered_at_ms: i64,
    /// Answered, Unix ms.
    pub answered_at_ms: Option<i64>,
    /// The agent who answered (None if nobody, or removed since).
    pub answered_by: Option<UserRef>,
    /// Left the queue, Unix ms.
    pub left_at_ms: i64,
    /// Wait before answer (or before leaving), ms.
    pub wait_ms: i64,
    /// Talk time, ms.
    pub talk_ms: i64,
    /// How it ended.
    pub outcome: VisitOutcome,
    /// Why it overflowed.
    pub overflow_reason: Option<OverflowCondition>,
    /// Where it overflowed to.
    pub overflow_target: Option<String>,
    /// Whom it was transferred to.
    pub transferred_to: Option<String>,
    /// Who handled the missed visit (called back, or answered the caller's next call).
    pub handled_by: Option<UserRef>,
    /// When it was handled, Unix ms.
    pub handled_at_ms: Option<i64>,
    /// The offers to agents, in order.
    pub offers: Vec<OfferSummary>,
}

/// Statistics of one queue over a period, computed from the queue call log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue (None: removed since; then `name` is its name at the time).
    pub queue_id: Option<QueueId>,
    /// Its name.
    pub name: String,
    /// Visits (calls distributed to the queue).
    pub offered: u64,
    /// Answered visits.
    pub answered: u64,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
    /// Visits that overflowed.
    pub overflowed: u64,
    /// Visits given up (no rule, hop limit).
    pub given_up: u64,
    /// Answered visits the agent transferred.
    pub transfers: u64,
    /// Average wait of answered visits, ms.
    pub avg_wait_answered_ms: Option<i64>,
    /// Longest wait of an answered visit, ms.
    pub max_wait_answered_ms: Option<i64>,
    /// Average wait of unanswered visits until they left, ms.
    pub avg_wait_unanswered_ms: Option<i64>,
    /// Longest wait of an unanswered visit, ms.
    pub max_wait_unanswered_ms: Option<i64>,
    /// Average talk time of answered visits, ms.
    pub avg_talk_ms: Option<i64>,
}

/// Statistics of one operator (agent) over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorStats {
    /// The user.
    pub user_id: UserId,
    /// The user's extension.
    pub extension: String,
    /// The user's name.
    pub name: String,
    /// Queue calls offered to (rung at) the user, each call once.
    pub offered: u64,
    /// Queue calls the user answered.
    pub answered: u64,
    /// Average talk time of those, ms.
    pub avg_talk_ms: Option<i64>,
    /// Answered queue calls the user transferred.
    pub transfers: u64,
    /// Outgoing external calls the user made (from the call log, kept 30 days).
    pub outgoing: u64,
}

/// Answered as a share of offered, 0.0 to 1.0 (`None` when nothing was offered).
pub fn answer_rate(answered: u64, offered: u64) -> Option<f64> {
    // Counts far below 2^53: exact as f64.
    (offered > 0).then(|| answered as f64 / offered as f64)
}

impl QueueStats {
    /// Answered as a share of offered.
    pub fn answer_rate(&self) -> Option<f64> {
        answer_rate(self.answered, self.offered)
    }
}

impl OperatorStats {
    /// Answered as a share of offered.
    pub fn answer_rate(&self) -> Option<f64> {
        answer_rate(self.answered, self.offered)
    }
}

/// Queue statistics of a tenant over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatsReport {
    /// Per queue: every current queue of the tenant (zeros if it had no calls), then
    /// removed queues that had calls in the period; by name.
    pub queues: Vec<QueueStats>,
    /// Per operator: current members of the tenant's queues and anyone offered a call
    /// in the period; by extension.
    pub operators: Vec<OperatorStats>,
}

/// The live state of one queue as the daemon wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLive {
    /// The queue.
    pub queue_id: QueueId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its name.
    pub name: String,
    /// Members logged in (paused or not).
    pub agents_logged_in: u32,
    /// Members free to take a call.
    pub agents_available: u32,
    /// Members on a call.
    pub agents_busy: u32,
    /// Members paused.
    pub agents_paused: u32,
    /// Callers waiting.
    pub callers_waiting: u32,
    /// The longest current wait, ms (`None` when nobody waits).
    pub longest_wait_ms: Option<i64>,
    /// Calls answered since local midnight.
    pub answered_today: u32,
    /// Calls that left unanswered since local midnight.
    pub unanswered_today: u32,
    /// When the daemon wrote this, Unix ms.
    pub updated_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Field;

    #[test]
    fn dates_parse_and_print() {
        let d: LocalDate = "2024-02-29".parse().expect("leap day");
        assert_eq!(
            (d.year, d.month, d.day, d.to_string().as_str()),
            (2024, 2, 29, "2024-02-29")
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "0000-01-01",
        ] {
            assert!(
                matches!(
                    bad.parse::<LocalDate>(),
                    Err(StoreError::Invalid {
                        field: Field::Date,
                        reason: "no such date in the calendar"
                    })
                ),
                "{bad}"
            );
        }
        for bad in [
            "24-02-01",
            "2024-2-01",
            "2024/02/01",
            "2024-02-01x",
            "",
            "2024-٠٢-01",
        ] {
            assert!(
                matches!(
                    bad.parse::<LocalDate>(),
                    Err(StoreError::Invalid {
                        field: Field::Date,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn enums_round_trip_and_defaults() {
        for s in QueueStrategy::ALL {
            assert_eq!(s.as_str().parse::<QueueStrategy>().ok(), Some(*s));
        }
        for o in VisitOutcome::ALL {
            assert_eq!(o.is_missed(), *o != VisitOutcome::Answered);
        }
        assert_eq!(
            QueueSettings::defaults(QueueKind::Group).strategy,
            QueueStrategy::RingAll
        );
        assert_eq!(QueueSettings::defaults(QueueKind::Group).wrap_up_s, 0);
        assert_eq!(QueueSettings::defaults(QueueKind::Queue).wrap_up_s, 10);
        assert_eq!(answer_rate(3, 4), Some(0.75));
        assert_eq!(answer_rate(0, 0), None);
    }
}
