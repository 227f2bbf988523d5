//! Routing plans: whom a call rings, in what order, for how long. A planner turns what
//! is known about the callee (registered phones, mobile, forwarding) into a [`RingPlan`];
//! the call model only executes plans, so queues and answer groups are new planners.

use std::time::Duration;

/// What kind of terminal a target is (for the call log and for policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A SIP phone registered on a phones profile.
    Phone,
    /// The user's mobile, reached back out through the carrier trunk.
    Mobile,
    /// An external number through the trunk.
    Trunk,
}

/// One terminal to ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The user the terminal belongs to, if any.
    pub user_id: Option<i64>,
    /// What it is.
    pub kind: TargetKind,
    /// The Request-URI to send to (a registered Contact, or a number URI).
    pub uri: String,
    /// Where to send it: `udp:ip:port` / `tcp:ip:port` (the flow a phone registered
    /// from), so requests follow the phone's NAT binding.
    pub flow: String,
}

/// The targets rung together and how long to wait for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingPlan {
    /// Rung in parallel; the first answer wins.
    pub targets: Vec<Target>,
    /// No answer after this long: the call is cancelled (or forwarded, later).
    pub no_answer: Duration,
}

/// The default ring time before a call counts as unanswered (the same as a user's
/// default ring time in the store's `user_settings`).
pub const DEFAULT_NO_ANSWER: Duration = Duration::from_secs(20);

/// Plans a call to a user: every registered phone at once (parallel ringing).
pub fn ring_user(
    user_id: i64,
    contacts: impl IntoIterator<Item = (String, String)>,
    no_answer: Duration,
) -> RingPlan {
    RingPlan {
        targets: contacts
            .into_iter()
            .map(|(uri, flow)| Target {
                user_id: Some(user_id),
                kind: TargetKind::Phone,
                uri,
                flow,
            })
            .collect(),
        no_answer,
    }
}

/// Where a forwarded call goes, resolved before the call rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTarget {
    /// A number (E.164), reached through the carrier trunk.
    Number(String),
    /// Another user of the tenant: that user's phones (address-of-record) and mobile.
    User {
        /// The user's id.
        user_id: i64,
        /// The user's address-of-record, `sip:user@realm`.
        aor: String,
        /// The user's mobile (E.164), rung through the trunk.
        mobile: Option<String>,
    },
}

/// A user's forwarding rules for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    /// Forward every call at once (unconditional).
    pub always: Option<ForwardTarget>,
    /// Forward when every terminal is busy.
    pub busy: Option<ForwardTarget>,
    /// Forward when nobody answers in time (or no terminal is reachable).
    pub no_answer: Option<ForwardTarget>,
    /// Ring time before forwarding on no answer.
    pub no_answer_after: Duration,
}

impl Default for Forwarding {
    fn default() -> Self {
        Forwarding {
            always: None,
            busy: None,
            no_answer: None,
            no_answer_after: DEFAULT_NO_ANSWER,
        }
    }
}

/// Most forwarding hops a call may already carry (History-Info / Diversion) before the
/// switch stops forwarding it: a guard against forwarding loops between users and switches.
pub const MAX_FORWARD_HOPS: usize = 5;
