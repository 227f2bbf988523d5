//! The queue engine's vocabulary: queues and answer groups, their members, strategies,
//! overflow rules and opening hours, as the engine receives them (built by the runtime
//! from the store) and the actions it returns.

use std::time::Duration;

/// A queue or answer group (the store's row id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub i64);

/// An agent: a user who is a member of one or more queues (the store's user id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub i64);

/// A caller waiting in (or being offered from) a queue: the engine's call id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallerKey(pub u64);

/// Whether callers wait answered with music (a queue) or hear ringing until a member
/// answers (an answer group). The queue engine treats both alike; the SIP side differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// Answered by sentralbord: greeting, music on hold, announcements.
    Queue,
    /// Not answered until a member answers: the caller hears ringing.
    Group,
}

/// Whom to offer the next call to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Every available member at once; the first to answer takes the call.
    RingAll,
    /// Members in their order, the first available first, the next after a ring timeout.
    Linear,
    /// Members in turn, starting after the one offered last (remembered per queue).
    RoundRobin,
    /// The available member idle longest (since their last call ended, or since login).
    LongestIdle,
    /// The available member who answered the fewest calls today.
    FewestCalls,
    /// A random available member.
    Random,
}

/// One member of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The agent.
    pub agent: AgentId,
    /// Order for `Linear` (lower first) and `RoundRobin`.
    pub order: u32,
    /// The member's own ring timeout (`None`: the queue's).
    pub ring_timeout: Option<Duration>,
}

/// Where an overflowing caller goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverflowTarget {
    /// Another queue or answer group (followed by the queue engine itself, hop-limited).
    Queue(QueueId),
    /// A user of the tenant (by user id): rung like a direct call.
    User(i64),
    /// An external number (E.164), called through the trunk.
    Number(String),
    /// An announcement (prompt name; `None`: the default "all busy" prompt), then hang-up.
    Announcement(Option<String>),
}

/// Why a caller left a queue for its overflow target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverflowReason {
    /// Waited the queue's maximum wait.
    MaxWait,
    /// The queue already held its maximum number of callers.
    Full,
    /// No member logged in, or every logged-in member paused.
    NoAgents,
    /// Outside the queue's opening hours.
    Closed,
}

/// Overflow rules of one queue: a target per condition (`None`: no rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverflowRules {
    /// After `QueueSpec::max_wait`.
    pub max_wait: Option<OverflowTarget>,
    /// When `QueueSpec::max_callers` are already waiting.
    pub full: Option<OverflowTarget>,
    /// When no member is logged in (or all are paused).
    pub no_agents: Option<OverflowTarget>,
    /// Outside opening hours.
    pub closed: Option<OverflowTarget>,
}

/// A weekly opening range in the tenant's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyRange {
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    /// Opening minute of the day (0..1440).
    pub open_min: u16,
    /// Closing minute of the day (exclusive, 1..=1440), after `open_min`.
    pub close_min: u16,
}

/// A date on which the weekly schedule does not apply (a holiday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateException {
    /// Local date (year, month 1..=12, day 1..=31).
    pub date: (i16, u8, u8),
    /// Open only within these minutes of that day (`None`: closed all day).
    pub open: Option<(u16, u16)>,
}

/// Opening hours of a queue in a time zone. No schedule at all means always open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// IANA time zone name of the tenant (e.g. "Europe/Oslo").
    pub time_zone: String,
    /// Weekly ranges; several per day allowed.
    pub weekly: Vec<WeeklyRange>,
    /// Exceptions by date; they replace the weekly ranges of that date.
    pub exceptions: Vec<DateException>,
}

/// Everything the queue engine needs to know about one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// The queue.
    pub id: QueueId,
    /// Its tenant.
    pub tenant_id: i64,
    /// Its name (for logs and snapshots).
    pub name: String,
    /// Queue or answer group.
    pub kind: QueueKind,
    /// Ring strategy.
    pub strategy: Strategy,
    /// Members.
    pub members: Vec<Member>,
    /// How long one offer rings before the next is tried.
    pub ring_timeout: Duration,
    /// Time after a queue call during which the agent gets no queue call.
    pub wrap_up: Duration,
    /// Overflow after this wait (`None`: wait forever).
    pub max_wait: Option<Duration>,
    /// Overflow when this many callers already wait (`None`: no limit).
    pub max_callers: Option<u32>,
    /// Announce position and expected wait this often (`None`: never).
    pub announce_every: Option<Duration>,
    /// Overflow rules.
    pub overflow: OverflowRules,
    /// Opening hours (`None`: always open).
    pub schedule: Option<Schedule>,
}

/// An agent's own state, set by the agent (feature codes, CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Logged in: receives queue calls when free.
    LoggedIn,
    /// Logged out: receives no queue calls.
    LoggedOut,
    /// Logged in but paused, with a reason.
    Paused(String),
}

/// What the queue engine asks of the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAction {
    /// Ring these agents (all of each agent's terminals) for this caller, for `ring_for`.
    /// Ring-all gives several agents, every other strategy one.
    Offer {
        caller: CallerKey,
        queue: QueueId,
        agents: Vec<AgentId>,
        ring_for: Duration,
    },
    /// Stop ringing these agents for this caller (another answered, ring timeout,
    /// the caller left or overflowed).
    Withdraw {
        caller: CallerKey,
        agents: Vec<AgentId>,
    },
    /// Tell the caller their position (1 = next) and the expected wait.
    Announce {
        caller: CallerKey,
        position: u32,
        expected_wait: Option<Duration>,
    },
    /// The caller left `from` for `target`. A `Queue` target was already entered by
    /// the queue engine (it only needs logging); the others are for the switch to carry out.
    Overflow {
        caller: CallerKey,
        from: QueueId,
        reason: OverflowReason,
        target: OverflowTarget,
    },
    /// The caller cannot be served (no rule for the condition, or the overflow hop
    /// limit was reached): play a "try later" announcement and hang up.
    GiveUp {
        caller: CallerKey,
        queue: QueueId,
        reason: OverflowReason,
    },
}

/// How an offer to an agent ended without the agent answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferFailure {
    /// Every terminal of the agent refused (busy, declined, unreachable).
    Refused,
    /// The agent's terminals could not be reached at all (no registration, no mobile).
    Unreachable,
}

/// The live state of one queue, for the wallboard and `sentralbord queue status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// The queue.
    pub queue: QueueId,
    /// Its name.
    pub name: String,
    /// Members logged in (paused or not).
    pub agents_logged_in: u32,
    /// Members logged in, not paused, not busy, not ringing, not in wrap-up.
    pub agents_available: u32,
    /// Members on a call (any call).
    pub agents_busy: u32,
    /// Members paused.
    pub agents_paused: u32,
    /// Callers waiting (including those being offered).
    pub callers_waiting: u32,
    /// The longest current wait (`None` when no caller waits).
    pub longest_wait: Option<Duration>,
    /// Calls answered since local midnight.
    pub answered_today: u32,
    /// Calls that left unanswered (abandoned, overflowed, given up) since local midnight.
    pub unanswered_today: u32,
}
