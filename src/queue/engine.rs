//! The queue engine: sans-IO decisions for queues and answer groups.
//!
//! Inputs: configuration (`configure`), agent presence and call events, callers arriving,
//! leaving and being answered, offer outcomes, and time (`handle_timeout`). Outputs:
//! [`QueueAction`]s drained with `poll_action` after every input, and the next deadline
//! from `poll_timeout`.
//!
//! Timers (one `BinaryHeap` with lazy invalidation: every armed timer carries a fresh id
//! that its owner remembers; an entry whose id no longer matches is stale and skipped):
//! ring timeout per offer, max wait and announcement per caller, wrap-up end per agent.
//!
//! Dispatch: every input marks the queues it may have changed as dirty; at the end of the
//! input the dirty queues are dispatched once. Invariant after every input: no queue holds
//! both a caller without a running offer and an available member. So when one agent
//! frees up, only that agent can be offered, and it takes the best caller (VIP first,
//! then the longest waiting) across its queues.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use jiff::tz::TimeZone;

use super::model::{
    AgentId, CallerKey, Member, OfferFailure, OverflowReason, OverflowTarget, Presence,
    QueueAction, QueueId, QueueSnapshot, QueueSpec, Strategy,
};
use super::schedule::{self, LocalDate};
use super::strategy::{self, Candidate, Rng};
use crate::util::time::Now;

/// Overflows into another queue a caller may take; the next one gives up.
pub const MAX_OVERFLOW_HOPS: u32 = 5;

/// Average handle time of a queue before its first call ends.
const INITIAL_HANDLE_TIME: Duration = Duration::from_secs(120);

/// Weight of the newest call in the average handle time.
const HANDLE_TIME_ALPHA: f64 = 0.2;

/// How long an agent whose terminals refused or could not be reached is not offered
/// queue calls (Asterisk's `retry`, FreeSWITCH's `reject-delay-time`): without it a phone
/// answering 486 at once, or an agent with no terminal, would be re-offered in a loop.
pub const REFUSED_DELAY: Duration = Duration::from_secs(5);

/// Shortest ring time: a zero ring timeout would re-offer in a busy loop.
const MIN_RING_TIME: Duration = Duration::from_secs(1);

/// A caller's place: VIP (0) before others (1), then arrival ticket (first come first).
type OrderKey = (u8, u64, CallerKey);

/// What a heap entry wakes up for; the `u64` is the id its owner must still hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    RingTimeout { caller: CallerKey, offer: u64 },
    MaxWait { caller: CallerKey, id: u64 },
    Announce { caller: CallerKey, id: u64 },
    WrapUpEnd { agent: AgentId, id: u64 },
}

/// An offer ringing an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RunningOffer {
    caller: CallerKey,
    /// The offer (one `Offer` action) it belongs to.
    offer: u64,
}

/// A queue call the agent answered and has not ended yet.
#[derive(Debug, Clone, Copy)]
struct AnsweredCall {
    queue: QueueId,
    at: Instant,
}

#[derive(Debug)]
struct Agent {
    presence: Presence,
    /// Calls that are not queue offers (`agent_call_started`).
    other_calls: u32,
    /// Answered queue calls not ended yet (normally at most one).
    queue_calls: Vec<AnsweredCall>,
    offer: Option<RunningOffer>,
    wrap_up_until: Option<Instant>,
    wrap_up_timer: u64,
    /// The later of the last call's end and the login.
    idle_since: Option<Instant>,
    /// Queue calls answered on that local date.
    calls_today: (LocalDate, u32),
    /// Queues the agent is a member of.
    queues: Vec<QueueId>,
}

impl Agent {
    fn new() -> Agent {
        Agent {
            presence: Presence::LoggedOut,
            other_calls: 0,
            queue_calls: Vec::new(),
            offer: None,
            wrap_up_until: None,
            wrap_up_timer: 0,
            idle_since: None,
            calls_today: ((0, 0, 0), 0),
            queues: Vec::new(),
        }
    }

    fn is_available(&self, now: Instant) -> bool {
        self.presence == Presence::LoggedIn
            && !self.is_busy()
            && self.offer.is_none()
            && self.wrap_up_until.is_none_or(|until| until <= now)
    }

    fn is_busy(&self) -> bool {
        self.other_calls > 0 || !self.queue_calls.is_empty()
    }

    fn is_logged_in(&self) -> bool {
        self.presence != Presence::LoggedOut
    }

    fn calls_on(&self, today: LocalDate) -> u32 {
        if self.calls_today.0 == today {
            self.calls_today.1
        } else {
            0
        }
    }
}

#[derive(Debug)]
struct Caller {
    queue: QueueId,
    vip: bool,
    key: OrderKey,
    /// When the caller entered its current queue.
    entered: Instant,
    /// Overflows into another queue so far.
    hops: u32,
    /// Agents ringing for this caller now.
    ringing: Vec<AgentId>,
    /// Agents who failed or timed out in this round.
    tried: Vec<AgentId>,
    max_wait_timer: u64,
    announce_timer: u64,
}

#[derive(Debug)]
struct Queue {
    spec: QueueSpec,
    /// The spec's members without duplicate agents, in (order, agent) order.
    members: Vec<Member>,
    tz: TimeZone,
    /// Every waiting caller, in service order.
    order: BTreeSet<OrderKey>,
    /// The waiting callers without a running offer.
    unoffered: BTreeSet<OrderKey>,
    /// Round-robin memory: the place of the member offered last.
    last_offered: Option<(u32, AgentId)>,
    /// Exponentially weighted talk + wrap-up time, in seconds.
    handle_time_secs: f64,
    /// The local date the counters are for (`None`: seeded, adopt the next date seen).
    day: Option<LocalDate>,
    answered_today: u32,
    unanswered_today: u32,
}

impl Queue {
    fn new(spec: QueueSpec) -> Queue {
        let mut queue = Queue {
            members: Vec::new(),
            tz: TimeZone::UTC,
            spec,
            order: BTreeSet::new(),
            unoffered: BTreeSet::new(),
            last_offered: None,
            handle_time_secs: INITIAL_HANDLE_TIME.as_secs_f64(),
            day: None,
            answered_today: 0,
            unanswered_today: 0,
        };
        queue.apply_spec();
        queue
    }

    /// Derives the member list and the time zone from `spec`.
    fn apply_spec(&mut self) {
        let mut members = self.spec.members.clone();
        members.sort_by_key(|m| (m.order, m.agent));
        let mut seen = Vec::with_capacity(members.len());
        members.retain(|m| {
            let first = !seen.contains(&m.agent);
            seen.push(m.agent);
            first
        });
        self.members = members;
        self.tz = self
            .spec
            .schedule
            .as_ref()
            .map_or(TimeZone::UTC, |s| schedule::zone(&s.time_zone));
    }

    fn today(&self, wall: SystemTime) -> LocalDate {
        schedule::local_date_in(&self.tz, wall)
    }

    /// Rolls the counters over when the local date changed.
    fn roll(&mut self, wall: SystemTime) {
        let today = self.today(wall);
        if let Some(day) = self.day {
            if day != today {
                self.answered_today = 0;
                self.unanswered_today = 0;
            }
        }
        self.day = Some(today);
    }

    fn count_answered(&mut self, wall: SystemTime) {
        self.roll(wall);
        self.answered_today = self.answered_today.saturating_add(1);
    }

    fn count_unanswered(&mut self, wall: SystemTime) {
        self.roll(wall);
        self.unanswered_today = self.unanswered_today.saturating_add(1);
    }

    fn announce_every(&self) -> Option<Duration> {
        self.spec.announce_every.filter(|d| !d.is_zero())
    }
}

/// The queue engine. Drain [`QueueEngine::poll_action`] after every input and sleep until
/// [`QueueEngine::poll_timeout`], then call [`QueueEngine::handle_timeout`].
#[derive(Debug)]
pub struct QueueEngine {
    queues: BTreeMap<QueueId, Queue>,
    agents: HashMap<AgentId, Agent>,
    callers: HashMap<CallerKey, Caller>,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    actions: VecDeque<QueueAction>,
    /// Source of timer ids, offer ids and arrival tickets.
    seq: u64,
    rng: Rng,
    /// The last wall time seen (dates for `seed_today`).
    last_wall: Option<SystemTime>,
    /// Queues to dispatch at the end of the current input.
    dirty: Vec<QueueId>,
    /// Reused buffers, so dispatch does not allocate per event.
    scratch_candidates: Vec<Candidate>,
    scratch_exhausted: Vec<bool>,
}

impl QueueEngine {
    /// `seed` feeds the Random strategy (deterministic in tests).
    pub fn new(seed: u64) -> QueueEngine {
        QueueEngine {
            queues: BTreeMap::new(),
            agents: HashMap::new(),
            callers: HashMap::new(),
            timers: BinaryHeap::new(),
            actions: VecDeque::new(),
            seq: 0,
            rng: Rng::new(seed),
            last_wall: None,
            dirty: Vec::new(),
            scratch_candidates: Vec::new(),
            scratch_exhausted: Vec::new(),
        }
    }

    /// Replaces the whole configuration. Callers keep their place when their queue still
    /// exists (spec changes apply at once: new members become eligible, removed members get
    /// no new offers, a running offer is left to finish). Callers of a removed queue get
    /// `GiveUp { reason: NoAgents }`.
    pub fn configure(&mut self, now: Now, queues: Vec<QueueSpec>) {
        self.last_wall = Some(now.wall);
        let mut specs: BTreeMap<QueueId, QueueSpec> = BTreeMap::new();
        for spec in queues {
            specs.insert(spec.id, spec);
        }
        // Queues that are gone: their callers cannot be served.
        let removed: Vec<QueueId> = self
            .queues
            .keys()
            .filter(|id| !specs.contains_key(id))
            .copied()
            .collect();
        for id in removed {
            let waiting: Vec<CallerKey> = self
                .queues
                .get(&id)
                .map(|q| q.order.iter().map(|k| k.2).collect())
                .unwrap_or_default();
            for caller in waiting {
                self.withdraw_all(caller);
                self.actions.push_back(QueueAction::GiveUp {
                    caller,
                    queue: id,
                    reason: OverflowReason::NoAgents,
                });
            }
            self.queues.remove(&id);
        }
        let mut retimed = Vec::new();
        for (id, spec) in specs {
            match self.queues.get_mut(&id) {
                Some(queue) => {
                    if queue.spec.max_wait != spec.max_wait
                        || queue.spec.announce_every != spec.announce_every
                    {
                        retimed.extend(queue.order.iter().map(|k| k.2));
                    }
                    queue.spec = spec;
                    queue.apply_spec();
                }
                None => {
                    self.queues.insert(id, Queue::new(spec));
                }
            }
        }
        for caller in retimed {
            self.arm_caller_timers(now, caller);
        }
        // Membership index.
        for agent in self.agents.values_mut() {
            agent.queues.clear();
        }
        for (id, queue) in &self.queues {
            for member in &queue.members {
                self.agents
                    .entry(member.agent)
                    .or_insert_with(Agent::new)
                    .queues
                    .push(*id);
            }
        }
        let ids: Vec<QueueId> = self.queues.keys().copied().collect();
        for id in &ids {
            self.overflow_if_no_agents(now, *id);
        }
        self.dirty.extend(ids);
        self.finish(now);
    }

    /// An agent logged in/out/paused (global across all the agent's queues). A running
    /// offer to an agent who logs out or pauses is withdrawn.
    pub fn set_presence(&mut self, now: Now, agent: AgentId, presence: Presence) {
        self.last_wall = Some(now.wall);
        let entry = self.agents.entry(agent).or_insert_with(Agent::new);
        if entry.presence == Presence::LoggedOut && presence != Presence::LoggedOut {
            entry.idle_since = Some(now.mono);
        }
        let leaving = presence != Presence::LoggedIn;
        entry.presence = presence;
        let offer = if leaving { entry.offer.take() } else { None };
        self.dirty.extend_from_slice(&entry.queues);
        if let Some(offer) = offer {
            self.offer_ended(offer.caller, agent);
            self.actions.push_back(QueueAction::Withdraw {
                caller: offer.caller,
                agents: vec![agent],
            });
        }
        if leaving {
            let queues = self
                .agents
                .get(&agent)
                .map(|a| a.queues.clone())
                .unwrap_or_default();
            for queue in queues {
                self.overflow_if_no_agents(now, queue);
            }
            self.forget_if_idle(agent);
        }
        self.finish(now);
    }

    /// Drops the state of an agent who is in no queue, logged out and on no call, so
    /// users who are not agents (their calls are reported too) leave nothing behind.
    fn forget_if_idle(&mut self, agent: AgentId) {
        let idle = self.agents.get(&agent).is_some_and(|a| {
            a.queues.is_empty()
                && a.presence == Presence::LoggedOut
                && !a.is_busy()
                && a.offer.is_none()
        });
        if idle {
            self.agents.remove(&agent);
        }
    }

    /// The agent's presence (`LoggedOut` if unknown).
    pub fn presence(&self, agent: AgentId) -> Presence {
        self.agents
            .get(&agent)
            .map_or(Presence::LoggedOut, |a| a.presence.clone())
    }

    /// The agent's terminals began a call that is not a queue offer (busy counter;
    /// an agent busy on any call is not offered queue calls).
    pub fn agent_call_started(&mut self, now: Now, agent: AgentId) {
        self.last_wall = Some(now.wall);
        let entry = self.agents.entry(agent).or_insert_with(Agent::new);
        entry.other_calls = entry.other_calls.saturating_add(1);
        self.finish(now);
    }

    /// A call of the agent ended. `queue_call`: it was a queue call the agent answered
    /// (then wrap-up starts). Calls ended must balance started + answered offers; an
    /// unbalanced end is ignored.
    pub fn agent_call_ended(&mut self, now: Now, agent: AgentId, queue_call: bool) {
        self.last_wall = Some(now.wall);
        let Some(entry) = self.agents.get_mut(&agent) else {
            return;
        };
        if queue_call {
            if entry.queue_calls.is_empty() {
                return;
            }
            let call = entry.queue_calls.remove(0);
            let talk = now.mono.saturating_duration_since(call.at);
            let wrap_up = match self.queues.get_mut(&call.queue) {
                Some(queue) => {
                    let sample = (talk + queue.spec.wrap_up).as_secs_f64();
                    queue.handle_time_secs = (1.0 - HANDLE_TIME_ALPHA) * queue.handle_time_secs
                        + HANDLE_TIME_ALPHA * sample;
                    queue.spec.wrap_up
                }
                None => Duration::ZERO,
            };
            if !wrap_up.is_zero() {
                let until = now.mono + wrap_up;
                let until = entry.wrap_up_until.map_or(until, |u| u.max(until));
                self.seq += 1;
                entry.wrap_up_until = Some(until);
                entry.wrap_up_timer = self.seq;
                self.timers.push(Reverse((
                    until,
                    self.seq,
                    Timer::WrapUpEnd {
                        agent,
                        id: self.seq,
                    },
                )));
            }
        } else {
            if entry.other_calls == 0 {
                return;
            }
            entry.other_calls -= 1;
        }
        entry.idle_since = Some(now.mono);
        self.dirty.extend_from_slice(&entry.queues);
        self.forget_if_idle(agent);
        self.finish(now);
    }

    /// A caller arrives at a queue. `vip`: the caller's number is on the tenant's VIP list.
    /// May immediately produce Overflow/GiveUp (closed, no agents, full) or Offer. An
    /// unknown queue gives `GiveUp { reason: NoAgents }`. A caller already waiting
    /// elsewhere first leaves that queue (counted unanswered there).
    pub fn enqueue(&mut self, now: Now, caller: CallerKey, queue: QueueId, vip: bool) {
        self.last_wall = Some(now.wall);
        if self.callers.contains_key(&caller) {
            self.leave(now, caller);
        }
        if self.queues.contains_key(&queue) {
            self.admit(now, caller, queue, vip, 0);
        } else {
            self.actions.push_back(QueueAction::GiveUp {
                caller,
                queue,
                reason: OverflowReason::NoAgents,
            });
        }
        self.finish(now);
    }

    /// The caller hung up (or was taken away): removed at once, its offers withdrawn
    /// (Withdraw action), counted as unanswered (abandoned). No-op when unknown.
    pub fn caller_left(&mut self, now: Now, caller: CallerKey) {
        self.last_wall = Some(now.wall);
        self.leave(now, caller);
        self.finish(now);
    }

    /// The agent answered the caller: the caller leaves the queue, other agents ringing for
    /// it are withdrawn, the agent is busy (until `agent_call_ended(.., true)`).
    /// Accepted even when the agent's offer was just withdrawn (a race with the switch).
    pub fn offer_answered(&mut self, now: Now, caller: CallerKey, agent: AgentId) {
        self.last_wall = Some(now.wall);
        let Some(state) = self.callers.get(&caller) else {
            return;
        };
        let queue = state.queue;
        let mut others = self.detach(caller);
        others.retain(|a| *a != agent);
        if !others.is_empty() {
            self.actions.push_back(QueueAction::Withdraw {
                caller,
                agents: others,
            });
        }
        let today = self.queues.get_mut(&queue).map(|q| {
            q.count_answered(now.wall);
            q.today(now.wall)
        });
        let entry = self.agents.entry(agent).or_insert_with(Agent::new);
        if entry.offer.is_some_and(|o| o.caller == caller) {
            entry.offer = None;
        }
        entry.queue_calls.push(AnsweredCall {
            queue,
            at: now.mono,
        });
        if let Some(today) = today {
            entry.calls_today = (today, entry.calls_on(today).saturating_add(1));
        }
        self.finish(now);
    }

    /// The offer to this agent ended without an answer before its ring time ran out.
    /// Ignored when no such offer is running (e.g. after a Withdraw).
    pub fn offer_failed(&mut self, now: Now, caller: CallerKey, agent: AgentId, why: OfferFailure) {
        self.last_wall = Some(now.wall);
        // Refused and unreachable are treated alike: the next member is tried, and this
        // one rests for `REFUSED_DELAY`.
        let _ = why;
        let Some(entry) = self.agents.get_mut(&agent) else {
            return;
        };
        if entry.offer.is_none_or(|o| o.caller != caller) {
            return;
        }
        entry.offer = None;
        let until = now.mono + REFUSED_DELAY;
        let until = entry.wrap_up_until.map_or(until, |u| u.max(until));
        self.seq += 1;
        entry.wrap_up_until = Some(until);
        entry.wrap_up_timer = self.seq;
        self.timers.push(Reverse((
            until,
            self.seq,
            Timer::WrapUpEnd {
                agent,
                id: self.seq,
            },
        )));
        self.dirty.extend_from_slice(&entry.queues);
        self.offer_ended(caller, agent);
        if let Some(state) = self.callers.get_mut(&caller) {
            if !state.tried.contains(&agent) {
                state.tried.push(agent);
            }
        }
        self.finish(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        self.last_wall = Some(now.wall);
        while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
            if at > now.mono {
                break;
            }
            self.timers.pop();
            if !self.is_live(&timer) {
                continue;
            }
            match timer {
                Timer::RingTimeout { caller, offer } => self.ring_timeout(caller, offer),
                Timer::MaxWait { caller, .. } => {
                    self.overflow(now, caller, OverflowReason::MaxWait);
                }
                Timer::Announce { caller, .. } => self.announce(now, at, caller),
                Timer::WrapUpEnd { agent, .. } => {
                    if let Some(entry) = self.agents.get_mut(&agent) {
                        entry.wrap_up_until = None;
                        self.dirty.extend_from_slice(&entry.queues);
                    }
                }
            }
        }
        self.finish(now);
    }

    /// The next deadline (ring timeouts, max waits, announcements, wrap-up ends).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next action for the switch.
    pub fn poll_action(&mut self) -> Option<QueueAction> {
        self.actions.pop_front()
    }

    /// The queue a caller currently waits in.
    pub fn queue_of(&self, caller: CallerKey) -> Option<QueueId> {
        self.callers.get(&caller).map(|c| c.queue)
    }

    /// The spec of a queue.
    pub fn spec(&self, queue: QueueId) -> Option<&QueueSpec> {
        self.queues.get(&queue).map(|q| &q.spec)
    }

    /// Live snapshots of every queue, ordered by id.
    pub fn snapshots(&self, now: Now) -> Vec<QueueSnapshot> {
        self.queues
            .iter()
            .map(|(id, queue)| self.snapshot(now, *id, queue))
            .collect()
    }

    /// Seeds today's counters after a restart (from the queue call log). Call after
    /// `configure`; unknown queues are ignored. The counters are for the local date of
    /// the last input's time (or of the next input when none came yet).
    pub fn seed_today(&mut self, queue: QueueId, answered: u32, unanswered: u32) {
        let wall = self.last_wall;
        if let Some(q) = self.queues.get_mut(&queue) {
            q.day = wall.map(|w| q.today(w));
            q.answered_today = answered;
            q.unanswered_today = unanswered;
        }
    }

    /// Number of waiting callers across all queues.
    pub fn waiting(&self) -> usize {
        self.callers.len()
    }

    // ---- callers entering and leaving ----

    /// Lets a caller into `queue` (known to exist) after its checks: closed, no agents,
    /// full. `hops`: queue overflows taken so far.
    fn admit(&mut self, now: Now, caller: CallerKey, queue: QueueId, vip: bool, hops: u32) {
        let Some(q) = self.queues.get(&queue) else {
            return;
        };
        let closed = q
            .spec
            .schedule
            .as_ref()
            .is_some_and(|s| !schedule::is_open_in(s, &q.tz, now.wall));
        let refusal = if closed {
            Some(OverflowReason::Closed)
        } else if q.spec.overflow.no_agents.is_some() && !self.has_agents(q) {
            Some(OverflowReason::NoAgents)
        } else if q
            .spec
            .max_callers
            .is_some_and(|max| q.order.len() >= usize::try_from(max).unwrap_or(usize::MAX))
        {
            Some(OverflowReason::Full)
        } else {
            None
        };
        if let Some(reason) = refusal {
            if let Some(q) = self.queues.get_mut(&queue) {
                q.count_unanswered(now.wall);
            }
            self.route(now, caller, queue, reason, vip, hops);
            return;
        }
        self.seq += 1;
        let key = (u8::from(!vip), self.seq, caller);
        if let Some(q) = self.queues.get_mut(&queue) {
            q.order.insert(key);
            q.unoffered.insert(key);
        }
        self.callers.insert(
            caller,
            Caller {
                queue,
                vip,
                key,
                entered: now.mono,
                hops,
                ringing: Vec::new(),
                tried: Vec::new(),
                max_wait_timer: 0,
                announce_timer: 0,
            },
        );
        self.arm_caller_timers(now, caller);
        self.dirty.push(queue);
    }

    /// Sends a caller who left `from` for `reason` to its overflow target (or gives up).
    fn route(
        &mut self,
        now: Now,
        caller: CallerKey,
        from: QueueId,
        reason: OverflowReason,
        vip: bool,
        hops: u32,
    ) {
        let rule = self.queues.get(&from).and_then(|q| {
            let rules = &q.spec.overflow;
            match reason {
                OverflowReason::MaxWait => rules.max_wait.clone(),
                OverflowReason::Full => rules.full.clone(),
                OverflowReason::NoAgents => rules.no_agents.clone(),
                OverflowReason::Closed => rules.closed.clone(),
            }
        });
        let give_up = QueueAction::GiveUp {
            caller,
            queue: from,
            reason,
        };
        match rule {
            None => self.actions.push_back(give_up),
            Some(OverflowTarget::Queue(next)) => {
                if hops >= MAX_OVERFLOW_HOPS || !self.queues.contains_key(&next) {
                    self.actions.push_back(give_up);
                } else {
                    self.actions.push_back(QueueAction::Overflow {
                        caller,
                        from,
                        reason,
                        target: OverflowTarget::Queue(next),
                    });
                    self.admit(now, caller, next, vip, hops + 1);
                }
            }
            Some(target) => self.actions.push_back(QueueAction::Overflow {
                caller,
                from,
                reason,
                target,
            }),
        }
    }

    /// A waiting caller leaves its queue for `reason` (max wait, no agents).
    fn overflow(&mut self, now: Now, caller: CallerKey, reason: OverflowReason) {
        let Some(state) = self.callers.get(&caller) else {
            return;
        };
        let (from, vip, hops) = (state.queue, state.vip, state.hops);
        self.withdraw_all(caller);
        if let Some(q) = self.queues.get_mut(&from) {
            q.count_unanswered(now.wall);
        }
        self.route(now, caller, from, reason, vip, hops);
    }

    /// Callers of a queue whose last member logged out or paused leave by its `no_agents`
    /// rule (without a rule they keep waiting).
    fn overflow_if_no_agents(&mut self, now: Now, queue: QueueId) {
        let Some(q) = self.queues.get(&queue) else {
            return;
        };
        if q.order.is_empty() || q.spec.overflow.no_agents.is_none() || self.has_agents(q) {
            return;
        }
        let waiting: Vec<CallerKey> = q.order.iter().map(|k| k.2).collect();
        for caller in waiting {
            // A caller sent back into this same queue by the rule has moved on already.
            if self.callers.get(&caller).is_some_and(|c| c.queue == queue) {
                self.overflow(now, caller, OverflowReason::NoAgents);
            }
        }
    }

    /// The caller hung up or was taken away: abandoned.
    fn leave(&mut self, now: Now, caller: CallerKey) {
        let Some(queue) = self.callers.get(&caller).map(|c| c.queue) else {
            return;
        };
        self.withdraw_all(caller);
        if let Some(q) = self.queues.get_mut(&queue) {
            q.count_unanswered(now.wall);
        }
    }

    /// Removes a caller and withdraws every offer ringing for it (one Withdraw action).
    fn withdraw_all(&mut self, caller: CallerKey) {
        let agents = self.detach(caller);
        if !agents.is_empty() {
            self.actions
                .push_back(QueueAction::Withdraw { caller, agents });
        }
    }

    /// Removes a caller from its queue; frees the agents ringing for it and returns them.
    fn detach(&mut self, caller: CallerKey) -> Vec<AgentId> {
        let Some(state) = self.callers.remove(&caller) else {
            return Vec::new();
        };
        if let Some(q) = self.queues.get_mut(&state.queue) {
            q.order.remove(&state.key);
            q.unoffered.remove(&state.key);
        }
        for agent in &state.ringing {
            if let Some(entry) = self.agents.get_mut(agent) {
                if entry.offer.is_some_and(|o| o.caller == caller) {
                    entry.offer = None;
                }
                self.dirty.extend_from_slice(&entry.queues);
            }
        }
        state.ringing
    }

    /// Arms (or re-arms after a spec change) a caller's max-wait and announce timers.
    fn arm_caller_timers(&mut self, now: Now, caller: CallerKey) {
        let Some(state) = self.callers.get_mut(&caller) else {
            return;
        };
        let Some(q) = self.queues.get(&state.queue) else {
            return;
        };
        state.max_wait_timer = 0;
        state.announce_timer = 0;
        if let Some(max_wait) = q.spec.max_wait {
            self.seq += 1;
            state.max_wait_timer = self.seq;
            let id = self.seq;
            self.timers.push(Reverse((
                state.entered + max_wait,
                id,
                Timer::MaxWait { caller, id },
            )));
        }
        if let Some(every) = q.announce_every() {
            // Keep the rhythm counted from entering: the first tick after now.
            let waited = now.mono.saturating_duration_since(state.entered);
            let ticks = waited.as_nanos() / every.as_nanos() + 1;
            let next = u32::try_from(ticks)
                .ok()
                .and_then(|t| every.checked_mul(t))
                .map_or(now.mono + every, |d| state.entered + d);
            self.seq += 1;
            state.announce_timer = self.seq;
            let id = self.seq;
            self.timers
                .push(Reverse((next, id, Timer::Announce { caller, id })));
        }
    }

    // ---- offers ----

    /// Removes `agent` from the caller's ringing set; a caller left without ringing agents
    /// waits for the next offer.
    fn offer_ended(&mut self, caller: CallerKey, agent: AgentId) {
        let Some(state) = self.callers.get_mut(&caller) else {
            return;
        };
        state.ringing.retain(|a| *a != agent);
        if state.ringing.is_empty() {
            if let Some(q) = self.queues.get_mut(&state.queue) {
                q.unoffered.insert(state.key);
            }
        }
        self.dirty.push(state.queue);
    }

    fn ring_timeout(&mut self, caller: CallerKey, offer: u64) {
        let Some(state) = self.callers.get_mut(&caller) else {
            return;
        };
        let mut expired = Vec::new();
        for agent in &state.ringing {
            if let Some(entry) = self.agents.get_mut(agent) {
                if entry.offer == Some(RunningOffer { caller, offer }) {
                    entry.offer = None;
                    expired.push(*agent);
                    self.dirty.extend_from_slice(&entry.queues);
                }
            }
        }
        if expired.is_empty() {
            return;
        }
        state.ringing.retain(|a| !expired.contains(a));
        for agent in &expired {
            if !state.tried.contains(agent) {
                state.tried.push(*agent);
            }
        }
        if state.ringing.is_empty() {
            if let Some(q) = self.queues.get_mut(&state.queue) {
                q.unoffered.insert(state.key);
            }
        }
        self.dirty.push(state.queue);
        self.actions.push_back(QueueAction::Withdraw {
            caller,
            agents: expired,
        });
    }

    fn announce(&mut self, now: Now, due: Instant, caller: CallerKey) {
        let Some(state) = self.callers.get(&caller) else {
            return;
        };
        let Some(q) = self.queues.get(&state.queue) else {
            return;
        };
        let Some(every) = q.announce_every() else {
            return;
        };
        let position = q.order.range(..state.key).count() + 1;
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        let expected_wait = self.expected_wait(q, position);
        let next = if due + every > now.mono {
            due + every
        } else {
            now.mono + every
        };
        self.seq += 1;
        let id = self.seq;
        if let Some(state) = self.callers.get_mut(&caller) {
            state.announce_timer = id;
        }
        self.timers
            .push(Reverse((next, id, Timer::Announce { caller, id })));
        self.actions.push_back(QueueAction::Announce {
            caller,
            position,
            expected_wait,
        });
    }

    /// Position × average handle time ÷ max(1, logged-in unpaused members); `None` when no
    /// member is logged in.
    fn expected_wait(&self, q: &Queue, position: u32) -> Option<Duration> {
        let mut logged_in = 0u32;
        let mut active = 0u32;
        for member in &q.members {
            if let Some(agent) = self.agents.get(&member.agent) {
                logged_in += u32::from(agent.is_logged_in());
                active += u32::from(agent.presence == Presence::LoggedIn);
            }
        }
        if logged_in == 0 {
            return None;
        }
        let secs = f64::from(position) * q.handle_time_secs / f64::from(active.max(1));
        Duration::try_from_secs_f64(secs).ok()
    }

    /// Whether some member is logged in and not paused.
    fn has_agents(&self, q: &Queue) -> bool {
        q.members.iter().any(|m| {
            self.agents
                .get(&m.agent)
                .is_some_and(|a| a.presence == Presence::LoggedIn)
        })
    }

    // ---- dispatch ----

    /// Dispatches the dirty queues, prunes stale timers. Ends every input.
    fn finish(&mut self, now: Now) {
        if !self.dirty.is_empty() {
            self.dispatch(now);
        }
        self.prune_timers();
    }

    /// Offers waiting callers to available agents: repeatedly the best caller without an
    /// offer (VIP first, then longest waiting) across the dirty queues, per its queue's
    /// strategy; then ring-all queues add newly available members to ringing callers.
    fn dispatch(&mut self, now: Now) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut exhausted = std::mem::take(&mut self.scratch_exhausted);
        exhausted.clear();
        exhausted.resize(dirty.len(), false);
        loop {
            let mut best: Option<(OrderKey, usize)> = None;
            for (i, id) in dirty.iter().enumerate() {
                if exhausted[i] {
                    continue;
                }
                match self.queues.get(id).and_then(|q| q.unoffered.first()) {
                    Some(key) if best.is_none_or(|(b, _)| *key < b) => best = Some((*key, i)),
                    Some(_) => {}
                    None => exhausted[i] = true,
                }
            }
            let Some((key, i)) = best else {
                break;
            };
            if !self.offer_next(now, dirty[i], key) {
                exhausted[i] = true;
            }
        }
        for id in &dirty {
            if self
                .queues
                .get(id)
                .is_some_and(|q| q.spec.strategy == Strategy::RingAll)
            {
                self.extend_ring_all(now, *id);
            }
        }
        self.scratch_exhausted = exhausted;
        dirty.clear();
        // Keep the buffer unless dispatch marked queues dirty again (it does not).
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Fills the candidate buffer with the queue's available members (skipping
    /// `exclude`d agents); returns whether any.
    fn collect_candidates(
        &mut self,
        now: Now,
        queue: QueueId,
        exclude: &[AgentId],
        today: Option<LocalDate>,
    ) -> bool {
        self.scratch_candidates.clear();
        let Some(q) = self.queues.get(&queue) else {
            return false;
        };
        for member in &q.members {
            if exclude.contains(&member.agent) {
                continue;
            }
            if let Some(agent) = self.agents.get(&member.agent) {
                if agent.is_available(now.mono) {
                    self.scratch_candidates.push(Candidate {
                        agent: member.agent,
                        order: member.order,
                        idle_since: agent.idle_since,
                        calls_today: today.map_or(0, |t| agent.calls_on(t)),
                    });
                }
            }
        }
        !self.scratch_candidates.is_empty()
    }

    /// Offers the caller (waiting in `queue`, no offer running) per the queue's strategy.
    /// Returns false when no member of the queue is available.
    fn offer_next(&mut self, now: Now, queue: QueueId, key: OrderKey) -> bool {
        let caller = key.2;
        let Some(q) = self.queues.get(&queue) else {
            return false;
        };
        let strategy = q.spec.strategy;
        let today = (strategy == Strategy::FewestCalls).then(|| q.today(now.wall));
        let tried = match self.callers.get_mut(&caller) {
            Some(state) => {
                if strategy == Strategy::RingAll {
                    // A ring-all round ends when nobody rings any more: ring everyone again.
                    state.tried.clear();
                }
                std::mem::take(&mut state.tried)
            }
            None => {
                // Not a caller (cannot happen): drop the stale key so dispatch moves on.
                if let Some(q) = self.queues.get_mut(&queue) {
                    q.order.remove(&key);
                    q.unoffered.remove(&key);
                }
                return true;
            }
        };
        let mut tried = tried;
        if !self.collect_candidates(now, queue, &tried, today) {
            // Everyone available has been tried in this round: the round starts again.
            if tried.is_empty() || !self.collect_candidates(now, queue, &[], today) {
                self.restore_tried(caller, tried);
                return false;
            }
            tried.clear();
        }
        self.restore_tried(caller, tried);
        let mut candidates = std::mem::take(&mut self.scratch_candidates);
        if strategy != Strategy::RingAll {
            let last = self.queues.get(&queue).and_then(|q| q.last_offered);
            let chosen = strategy::choose(strategy, &candidates, last, &mut self.rng)
                .and_then(|i| candidates.get(i).copied());
            candidates.clear();
            candidates.extend(chosen);
        }
        self.start_offer(now, queue, caller, &candidates);
        if let Some(q) = self.queues.get_mut(&queue) {
            q.unoffered.remove(&key);
        }
        candidates.clear();
        self.scratch_candidates = candidates;
        true
    }

    fn restore_tried(&mut self, caller: CallerKey, tried: Vec<AgentId>) {
        if let Some(state) = self.callers.get_mut(&caller) {
            state.tried = tried;
        }
    }

    /// Ring-all: members who became available while callers are ringing join the ring of
    /// the first ringing caller (in service order) they have not failed for yet.
    fn extend_ring_all(&mut self, now: Now, queue: QueueId) {
        if !self.collect_candidates(now, queue, &[], None) {
            return;
        }
        let mut free = std::mem::take(&mut self.scratch_candidates);
        let ringing: Vec<CallerKey> = match self.queues.get(&queue) {
            Some(q) => q
                .order
                .iter()
                .filter(|k| !q.unoffered.contains(k))
                .map(|k| k.2)
                .collect(),
            None => Vec::new(),
        };
        let mut joining = Vec::new();
        for caller in ringing {
            if free.is_empty() {
                break;
            }
            let Some(state) = self.callers.get(&caller) else {
                continue;
            };
            joining.clear();
            free.retain(|c| {
                let joins = !state.tried.contains(&c.agent);
                if joins {
                    joining.push(*c);
                }
                !joins
            });
            if !joining.is_empty() {
                self.start_offer(now, queue, caller, &joining);
            }
        }
        free.clear();
        self.scratch_candidates = free;
    }

    /// Rings `agents` for the caller: one Offer action with its own ring timeout.
    fn start_offer(&mut self, now: Now, queue: QueueId, caller: CallerKey, agents: &[Candidate]) {
        let Some(q) = self.queues.get_mut(&queue) else {
            return;
        };
        let Some(first) = agents.first() else {
            return;
        };
        let ring_for = if q.spec.strategy == Strategy::RingAll {
            q.spec.ring_timeout
        } else {
            q.members
                .iter()
                .find(|m| m.agent == first.agent)
                .and_then(|m| m.ring_timeout)
                .unwrap_or(q.spec.ring_timeout)
        }
        .max(MIN_RING_TIME);
        if let Some(last) = agents.last() {
            q.last_offered = Some((last.order, last.agent));
        }
        self.seq += 1;
        let offer = self.seq;
        let Some(state) = self.callers.get_mut(&caller) else {
            return;
        };
        let mut offered = Vec::with_capacity(agents.len());
        for candidate in agents {
            if let Some(agent) = self.agents.get_mut(&candidate.agent) {
                agent.offer = Some(RunningOffer { caller, offer });
                state.ringing.push(candidate.agent);
                offered.push(candidate.agent);
            }
        }
        self.timers.push(Reverse((
            now.mono + ring_for,
            offer,
            Timer::RingTimeout { caller, offer },
        )));
        self.actions.push_back(QueueAction::Offer {
            caller,
            queue,
            agents: offered,
            ring_for,
        });
    }

    // ---- timers ----

    fn is_live(&self, timer: &Timer) -> bool {
        match *timer {
            Timer::RingTimeout { caller, offer } => self.callers.get(&caller).is_some_and(|c| {
                c.ringing.iter().any(|a| {
                    self.agents
                        .get(a)
                        .is_some_and(|e| e.offer == Some(RunningOffer { caller, offer }))
                })
            }),
            Timer::MaxWait { caller, id } => self
                .callers
                .get(&caller)
                .is_some_and(|c| c.max_wait_timer == id),
            Timer::Announce { caller, id } => self
                .callers
                .get(&caller)
                .is_some_and(|c| c.announce_timer == id),
            Timer::WrapUpEnd { agent, id } => self
                .agents
                .get(&agent)
                .is_some_and(|a| a.wrap_up_timer == id && a.wrap_up_until.is_some()),
        }
    }

    /// Drops stale entries from the top of the heap (so `poll_timeout` is exact) and
    /// rebuilds the heap when stale entries pile up below.
    fn prune_timers(&mut self) {
        while let Some(Reverse((_, _, timer))) = self.timers.peek() {
            if self.is_live(timer) {
                break;
            }
            self.timers.pop();
        }
        // Live timers: at most max wait + announce + one ring timeout per ringing agent
        // per caller, and one wrap-up per agent.
        let bound = 4 * (self.callers.len() + self.agents.len()) + 1024;
        if self.timers.len() > 2 * bound {
            let mut timers = std::mem::take(&mut self.timers).into_vec();
            timers.retain(|Reverse((_, _, t))| self.is_live(t));
            self.timers = BinaryHeap::from(timers);
        }
    }

    // ---- snapshots ----

    fn snapshot(&self, now: Now, id: QueueId, q: &Queue) -> QueueSnapshot {
        let mut s = QueueSnapshot {
            queue: id,
            name: q.spec.name.clone(),
            agents_logged_in: 0,
            agents_available: 0,
            agents_busy: 0,
            agents_paused: 0,
            callers_waiting: u32::try_from(q.order.len()).unwrap_or(u32::MAX),
            longest_wait: None,
            answered_today: 0,
            unanswered_today: 0,
        };
        for member in &q.members {
            let Some(agent) = self.agents.get(&member.agent) else {
                continue;
            };
            s.agents_logged_in += u32::from(agent.is_logged_in());
            s.agents_available += u32::from(agent.is_available(now.mono));
            s.agents_busy += u32::from(agent.is_busy());
            s.agents_paused += u32::from(matches!(agent.presence, Presence::Paused(_)));
        }
        // Tickets grow with time: the longest waiting is the first VIP or the first other.
        let first_vip = q.order.first().filter(|k| k.0 == 0);
        let first_other = q.order.range((1, 0, CallerKey(0))..).next();
        s.longest_wait = [first_vip, first_other]
            .into_iter()
            .flatten()
            .filter_map(|k| self.callers.get(&k.2))
            .map(|c| now.mono.saturating_duration_since(c.entered))
            .max();
        if q.day.is_none_or(|day| day == q.today(now.wall)) {
            s.answered_today = q.answered_today;
            s.unanswered_today = q.unanswered_today;
        }
        s
    }

    /// Checks the engine's internal consistency (tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self, now: Now) {
        let mut waiting = 0;
        for (id, q) in &self.queues {
            waiting += q.order.len();
            assert!(q.unoffered.is_subset(&q.order), "queue {id:?}");
            for key in &q.order {
                let c = self.callers.get(&key.2).expect("queued caller is known");
                assert_eq!(c.queue, *id);
                assert_eq!(c.key, *key);
                assert_eq!(q.unoffered.contains(key), c.ringing.is_empty());
            }
            // Dispatch leaves no waiting caller beside an available member.
            if !q.unoffered.is_empty() {
                for m in &q.members {
                    if let Some(a) = self.agents.get(&m.agent) {
                        assert!(!a.is_available(now.mono), "{:?} idle in {id:?}", m.agent);
                    }
                }
            }
        }
        assert_eq!(waiting, self.callers.len());
        for (key, c) in &self.callers {
            for agent in &c.ringing {
                let a = self.agents.get(agent).expect("ringing agent is known");
                assert_eq!(a.offer.map(|o| o.caller), Some(*key));
            }
        }
        for (id, a) in &self.agents {
            if let Some(o) = a.offer {
                let c = self.callers.get(&o.caller).expect("offered caller waits");
                assert!(c.ringing.contains(id));
            }
        }
    }
}
