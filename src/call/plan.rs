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

/// The default ring time before a call counts as unanswered.
pub const DEFAULT_NO_ANSWER: Duration = Duration::from_secs(30);

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
