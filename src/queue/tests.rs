//! Queue engine tests in simulated time: a base `Now` advanced by durations, timers fired
//! at their exact deadlines, actions drained after every input.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use super::engine::{QueueEngine, MAX_OVERFLOW_HOPS};
use super::model::*;
use crate::util::time::Now;

// ---- harness ----

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Wall time of a UTC civil date-time.
fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> SystemTime {
    let ts = jiff::civil::date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("valid test date")
        .timestamp();
    SystemTime::UNIX_EPOCH + Duration::from_secs(ts.as_second().unsigned_abs())
}

fn a(n: i64) -> AgentId {
    AgentId(n)
}

fn c(n: u64) -> CallerKey {
    CallerKey(n)
}

const Q1: QueueId = QueueId(1);
const Q2: QueueId = QueueId(2);
const Q3: QueueId = QueueId(3);

fn spec(id: QueueId, strategy: Strategy, agents: &[i64]) -> QueueSpec {
    QueueSpec {
        id,
        tenant_id: 1,
        name: format!("q{}", id.0),
        kind: QueueKind::Queue,
        strategy,
        members: agents
            .iter()
            .enumerate()
            .map(|(i, &agent)| Member {
                agent: AgentId(agent),
                order: u32::try_from(i).unwrap_or(0) + 1,
                ring_timeout: None,
            })
            .collect(),
        ring_timeout: secs(20),
        wrap_up: Duration::ZERO,
        max_wait: None,
        max_callers: None,
        announce_every: None,
        overflow: OverflowRules::default(),
        schedule: None,
    }
}

struct Sim {
    e: QueueEngine,
    now: Now,
}

impl Sim {
    /// Monday 2025-01-06 10:00 UTC.
    fn new() -> Sim {
        Sim::at(utc(2025, 1, 6, 10, 0))
    }

    fn at(wall: SystemTime) -> Sim {
        #[allow(clippy::disallowed_methods)]
        let mono = Instant::now();
        Sim {
            e: QueueEngine::new(42),
            now: Now::new(mono, wall),
        }
    }

    fn with(queues: Vec<QueueSpec>, logged_in: &[i64]) -> Sim {
        let mut sim = Sim::new();
        sim.e.configure(sim.now, queues);
        for &agent in logged_in {
            sim.e.set_presence(sim.now, a(agent), Presence::LoggedIn);
        }
        sim.drain();
        sim
    }

    /// Advances time by `d`, firing every timer at its own deadline.
    fn advance(&mut self, d: Duration) {
        let target = self.now.mono + d;
        while let Some(at) = self.e.poll_timeout() {
            if at > target {
                break;
            }
            let step = at.saturating_duration_since(self.now.mono);
            self.now = self.now.advanced(step);
            self.e.handle_timeout(self.now);
            self.e.check_invariants(self.now);
        }
        let rest = target.saturating_duration_since(self.now.mono);
        self.now = self.now.advanced(rest);
        self.e.handle_timeout(self.now);
        self.e.check_invariants(self.now);
    }

    fn drain(&mut self) -> Vec<QueueAction> {
        self.e.check_invariants(self.now);
        std::iter::from_fn(|| self.e.poll_action()).collect()
    }

    fn enqueue(&mut self, caller: u64, queue: QueueId, vip: bool) -> Vec<QueueAction> {
        self.e.enqueue(self.now, c(caller), queue, vip);
        self.drain()
    }

    fn answer(&mut self, caller: u64, agent: i64) -> Vec<QueueAction> {
        self.e.offer_answered(self.now, c(caller), a(agent));
        self.drain()
    }

    fn hang_up_agent(&mut self, agent: i64) -> Vec<QueueAction> {
        self.e.agent_call_ended(self.now, a(agent), true);
        self.drain()
    }

    /// The caller is answered by `agent` and the call lasts `talk`.
    fn serve(&mut self, caller: u64, agent: i64, talk: Duration) -> Vec<QueueAction> {
        self.answer(caller, agent);
        self.advance(talk);
        self.drain();
        self.hang_up_agent(agent)
    }
}

fn offer(caller: u64, queue: QueueId, agents: &[i64], ring: u64) -> QueueAction {
    QueueAction::Offer {
        caller: c(caller),
        queue,
        agents: agents.iter().map(|&n| a(n)).collect(),
        ring_for: secs(ring),
    }
}

fn withdraw(caller: u64, agents: &[i64]) -> QueueAction {
    QueueAction::Withdraw {
        caller: c(caller),
        agents: agents.iter().map(|&n| a(n)).collect(),
    }
}

/// The agents offered (in action order), one entry per Offer action.
fn offered(actions: &[QueueAction]) -> Vec<(u64, Vec<i64>)> {
    actions
        .iter()
        .filter_map(|x| match x {
            QueueAction::Offer { caller, agents, .. } => {
                Some((caller.0, agents.iter().map(|a| a.0).collect()))
            }
            _ => None,
        })
        .collect()
}

fn snapshot(sim: &Sim, queue: QueueId) -> QueueSnapshot {
    sim.e
        .snapshots(sim.now)
        .into_iter()
        .find(|s| s.queue == queue)
        .expect("queue has a snapshot")
}

// ---- strategies ----

#[test]
fn ring_all_rings_every_available_member_and_withdraws_the_rest_on_answer() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::RingAll, &[1, 2, 3])], &[1, 2, 3]);
    sim.e.agent_call_started(sim.now, a(2));
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[1, 3], 20)]);
    // Agent 2 frees up while the caller rings: it joins the ring.
    sim.e.agent_call_ended(sim.now, a(2), false);
    assert_eq!(sim.drain(), vec![offer(10, Q1, &[2], 20)]);
    assert_eq!(sim.answer(10, 3), vec![withdraw(10, &[1, 2])]);
    assert_eq!(sim.e.queue_of(c(10)), None);
    assert_eq!(sim.e.waiting(), 0);
    // Nobody answers the next caller: on the ring timeout everyone is withdrawn and rung again.
    assert_eq!(sim.enqueue(11, Q1, false), vec![offer(11, Q1, &[1, 2], 20)]);
    sim.advance(secs(20));
    assert_eq!(
        sim.drain(),
        vec![withdraw(11, &[1, 2]), offer(11, Q1, &[1, 2], 20)]
    );
}

#[test]
fn linear_falls_through_on_ring_timeout_and_starts_over() {
    let mut q = spec(Q1, Strategy::Linear, &[1, 2, 3]);
    q.members[1].ring_timeout = Some(secs(5));
    let mut sim = Sim::with(vec![q], &[1, 2, 3]);
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[1], 20)]);
    sim.advance(secs(19));
    assert_eq!(sim.drain(), vec![]);
    sim.advance(secs(1));
    assert_eq!(
        sim.drain(),
        vec![withdraw(10, &[1]), offer(10, Q1, &[2], 5)]
    );
    sim.advance(secs(5));
    assert_eq!(
        sim.drain(),
        vec![withdraw(10, &[2]), offer(10, Q1, &[3], 20)]
    );
    // Everyone tried: the round starts again at the top.
    sim.advance(secs(20));
    assert_eq!(
        sim.drain(),
        vec![withdraw(10, &[3]), offer(10, Q1, &[1], 20)]
    );
    // A refusal also moves on (no Withdraw: the switch knows).
    sim.e
        .offer_failed(sim.now, c(10), a(1), OfferFailure::Refused);
    assert_eq!(sim.drain(), vec![offer(10, Q1, &[2], 5)]);
    // A late failure report for a withdrawn offer is ignored.
    sim.e
        .offer_failed(sim.now, c(10), a(1), OfferFailure::Unreachable);
    assert_eq!(sim.drain(), vec![]);
}

#[test]
fn linear_skips_a_tried_member_only_while_others_are_available() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::Linear, &[1, 2])], &[1, 2]);
    sim.e.agent_call_started(sim.now, a(2));
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[1], 20)]);
    // 1 fails; 2 is busy: 1 is the only one, so the round starts again with 1, but only
    // after 1 has rested (no INVITE/486 loop with a phone that refuses at once).
    sim.e
        .offer_failed(sim.now, c(10), a(1), OfferFailure::Unreachable);
    assert_eq!(sim.drain(), vec![]);
    sim.advance(super::engine::REFUSED_DELAY - secs(1));
    assert_eq!(sim.drain(), vec![]);
    sim.advance(secs(1));
    assert_eq!(sim.drain(), vec![offer(10, Q1, &[1], 20)]);
}

#[test]
fn round_robin_remembers_the_member_offered_last() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::RoundRobin, &[1, 2, 3])], &[1, 2, 3]);
    let mut order = Vec::new();
    for caller in 10..15 {
        let actions = sim.enqueue(caller, Q1, false);
        let (_, agents) = offered(&actions).pop().expect("an offer");
        order.push(agents[0]);
        sim.serve(caller, agents[0], secs(10));
    }
    assert_eq!(order, vec![1, 2, 3, 1, 2]);
    // Timing out moves the memory too: 3 times out, 1 is next, and the next caller starts after 1.
    assert_eq!(sim.enqueue(20, Q1, false), vec![offer(20, Q1, &[3], 20)]);
    sim.advance(secs(20));
    assert_eq!(
        sim.drain(),
        vec![withdraw(20, &[3]), offer(20, Q1, &[1], 20)]
    );
    sim.serve(20, 1, secs(1));
    assert_eq!(sim.enqueue(21, Q1, false), vec![offer(21, Q1, &[2], 20)]);
}

#[test]
fn longest_idle_follows_call_ends_and_logins() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::LongestIdle, &[1, 2, 3])], &[]);
    for agent in [3, 1, 2] {
        sim.e.set_presence(sim.now, a(agent), Presence::LoggedIn);
        sim.advance(secs(1));
    }
    // 3 logged in first.
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[3], 20)]);
    sim.serve(10, 3, secs(30));
    // Then 1 (logged in second).
    assert_eq!(sim.enqueue(11, Q1, false), vec![offer(11, Q1, &[1], 20)]);
    sim.serve(11, 1, secs(30));
    // 2 has been idle since its login; 3 ended a call before 1.
    assert_eq!(sim.enqueue(12, Q1, false), vec![offer(12, Q1, &[2], 20)]);
    sim.answer(12, 2);
    assert_eq!(sim.enqueue(13, Q1, false), vec![offer(13, Q1, &[3], 20)]);
    // A direct (non-queue) call counts too: 3 takes a direct call that ends later than 1's.
    sim.answer(13, 3);
    sim.hang_up_agent(3);
    sim.e.agent_call_started(sim.now, a(1));
    sim.advance(secs(5));
    sim.e.agent_call_ended(sim.now, a(1), false);
    sim.drain();
    assert_eq!(sim.enqueue(14, Q1, false), vec![offer(14, Q1, &[3], 20)]);
}

#[test]
fn fewest_calls_counts_answers_today_with_longest_idle_on_ties() {
    let mut sim = Sim::with(
        vec![spec(Q1, Strategy::FewestCalls, &[1, 2, 3])],
        &[1, 2, 3],
    );
    // Everyone logged in together: ties broken by idle time, then member order.
    let mut picks = Vec::new();
    for caller in 10..16 {
        let actions = sim.enqueue(caller, Q1, false);
        let (_, agents) = offered(&actions).pop().expect("an offer");
        picks.push(agents[0]);
        sim.serve(caller, agents[0], secs(10));
    }
    assert_eq!(picks, vec![1, 2, 3, 1, 2, 3]);
    // 1 refuses the next call: 1 keeps two answers, 2 and 3 get a third, 1 is next.
    assert_eq!(sim.enqueue(20, Q1, false), vec![offer(20, Q1, &[1], 20)]);
    sim.e
        .offer_failed(sim.now, c(20), a(1), OfferFailure::Refused);
    assert_eq!(sim.drain(), vec![offer(20, Q1, &[2], 20)]);
    sim.serve(20, 2, secs(10));
    assert_eq!(sim.enqueue(21, Q1, false), vec![offer(21, Q1, &[1], 20)]);
    // After midnight the counts start over: the longest idle wins again.
    sim.serve(21, 1, secs(10));
    sim.advance(secs(24 * 3600));
    sim.drain();
    assert_eq!(sim.enqueue(22, Q1, false), vec![offer(22, Q1, &[3], 20)]);
}

#[test]
fn random_is_deterministic_for_a_seed_and_reaches_every_member() {
    let run = |seed: u64| {
        let mut e = QueueEngine::new(seed);
        let mut sim = Sim::new();
        e.configure(sim.now, vec![spec(Q1, Strategy::Random, &[1, 2, 3, 4])]);
        for n in 1..=4 {
            e.set_presence(sim.now, a(n), Presence::LoggedIn);
        }
        std::mem::swap(&mut sim.e, &mut e);
        sim.drain();
        let mut picks = Vec::new();
        for caller in 0..60 {
            let actions = sim.enqueue(caller, Q1, false);
            let (_, agents) = offered(&actions).pop().expect("an offer");
            picks.push(agents[0]);
            sim.serve(caller, agents[0], secs(1));
        }
        picks
    };
    let picks = run(7);
    assert_eq!(picks, run(7));
    assert_ne!(picks, run(8));
    for agent in 1..=4 {
        assert!(picks.contains(&agent), "agent {agent} never offered");
    }
}

// ---- agent states ----

#[test]
fn wrap_up_is_respected_and_the_agent_is_offered_right_after() {
    let mut q = spec(Q1, Strategy::Linear, &[1]);
    q.wrap_up = secs(30);
    let mut sim = Sim::with(vec![q], &[1]);
    sim.enqueue(10, Q1, false);
    sim.answer(10, 1);
    assert_eq!(sim.enqueue(11, Q1, false), vec![]);
    sim.advance(secs(60));
    assert_eq!(sim.hang_up_agent(1), vec![]);
    assert_eq!(snapshot(&sim, Q1).agents_available, 0);
    sim.advance(secs(29));
    assert_eq!(sim.drain(), vec![]);
    assert_eq!(sim.e.poll_timeout(), Some(sim.now.mono + secs(1)));
    sim.advance(secs(1));
    assert_eq!(sim.drain(), vec![offer(11, Q1, &[1], 20)]);
}

#[test]
fn busy_paused_and_logged_out_agents_are_skipped() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::Linear, &[1, 2, 3, 4])], &[1, 2, 3]);
    sim.e.agent_call_started(sim.now, a(1));
    sim.e
        .set_presence(sim.now, a(2), Presence::Paused("lunch".into()));
    sim.drain();
    assert_eq!(sim.e.presence(a(2)), Presence::Paused("lunch".into()));
    assert_eq!(sim.e.presence(a(4)), Presence::LoggedOut);
    assert_eq!(sim.e.presence(a(99)), Presence::LoggedOut);
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[3], 20)]);
    assert_eq!(sim.enqueue(11, Q1, false), vec![]);
    // Unpausing makes 2 available.
    sim.e.set_presence(sim.now, a(2), Presence::LoggedIn);
    assert_eq!(sim.drain(), vec![offer(11, Q1, &[2], 20)]);
    // Two calls started: both must end before the agent is free.
    sim.e.agent_call_started(sim.now, a(1));
    assert_eq!(sim.enqueue(12, Q1, false), vec![]);
    sim.e.agent_call_ended(sim.now, a(1), false);
    assert_eq!(sim.drain(), vec![]);
    sim.e.agent_call_ended(sim.now, a(1), false);
    assert_eq!(sim.drain(), vec![offer(12, Q1, &[1], 20)]);
    // Unbalanced ends are ignored.
    sim.e.agent_call_ended(sim.now, a(4), false);
    sim.e.agent_call_ended(sim.now, a(4), true);
    assert_eq!(sim.drain(), vec![]);
}

#[test]
fn an_agent_who_pauses_while_ringing_is_withdrawn() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::Linear, &[1, 2])], &[1, 2]);
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[1], 20)]);
    sim.e
        .set_presence(sim.now, a(1), Presence::Paused("meeting".into()));
    assert_eq!(
        sim.drain(),
        vec![withdraw(10, &[1]), offer(10, Q1, &[2], 20)]
    );
}

#[test]
fn an_agent_in_several_queues_takes_vips_first_then_the_longest_waiting_across_queues() {
    let mut sim = Sim::with(
        vec![
            spec(Q1, Strategy::Linear, &[1]),
            spec(Q2, Strategy::Linear, &[1]),
        ],
        &[],
    );
    sim.enqueue(10, Q2, false);
    sim.advance(secs(1));
    sim.enqueue(11, Q1, false);
    sim.advance(secs(1));
    sim.enqueue(12, Q1, true);
    sim.e.set_presence(sim.now, a(1), Presence::LoggedIn);
    let first = sim.drain();
    assert_eq!(first, vec![offer(12, Q1, &[1], 20)]);
    assert_eq!(serve_in_turn(&mut sim, first, 1), vec![12, 10, 11]);
}

/// Answers each offer with `agent` and ends the call at once; returns the callers served.
fn serve_in_turn(sim: &mut Sim, mut actions: Vec<QueueAction>, agent: i64) -> Vec<u64> {
    let mut served = Vec::new();
    while let Some((caller, agents)) = offered(&actions).pop() {
        assert_eq!(agents, vec![agent]);
        served.push(caller);
        actions = sim.serve(caller, agent, secs(1));
    }
    served
}

#[test]
fn after_a_call_the_agent_takes_the_longest_waiting_caller_across_queues() {
    let mut sim = Sim::with(
        vec![
            spec(Q1, Strategy::Linear, &[1]),
            spec(Q2, Strategy::Linear, &[1]),
        ],
        &[1],
    );
    sim.enqueue(10, Q1, false);
    sim.answer(10, 1);
    sim.enqueue(11, Q2, false);
    sim.advance(secs(1));
    sim.enqueue(12, Q1, false);
    assert_eq!(sim.hang_up_agent(1), vec![offer(11, Q2, &[1], 20)]);
    sim.serve(11, 1, secs(1));
    assert_eq!(sim.drain(), vec![]);
    sim.answer(12, 1);
    assert_eq!(sim.e.waiting(), 0);
}

// ---- caller order ----

#[test]
fn vips_go_ahead_of_earlier_callers_and_are_served_first_come_first_served() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::Linear, &[1])], &[]);
    for (caller, vip) in [(10, false), (11, true), (12, false), (13, true)] {
        sim.enqueue(caller, Q1, vip);
        sim.advance(secs(1));
    }
    sim.e.set_presence(sim.now, a(1), Presence::LoggedIn);
    let first = sim.drain();
    assert_eq!(serve_in_turn(&mut sim, first, 1), vec![11, 13, 10, 12]);
}

// ---- overflow ----

fn overflow_action(
    caller: u64,
    from: QueueId,
    reason: OverflowReason,
    target: OverflowTarget,
) -> QueueAction {
    QueueAction::Overflow {
        caller: c(caller),
        from,
        reason,
        target,
    }
}

fn give_up(caller: u64, queue: QueueId, reason: OverflowReason) -> QueueAction {
    QueueAction::GiveUp {
        caller: c(caller),
        queue,
        reason,
    }
}

#[test]
fn max_wait_overflows_and_withdraws_the_running_offer() {
    let mut q = spec(Q1, Strategy::Linear, &[1]);
    q.ring_timeout = secs(25);
    q.max_wait = Some(secs(60));
    q.overflow.max_wait = Some(OverflowTarget::Number("+4799999999".into()));
    let mut sim = Sim::with(vec![q], &[1]);
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[1], 25)]);
    sim.advance(secs(59));
    assert_eq!(sim.drain().len(), 4); // two ring timeouts: withdraw + offer each
    sim.advance(secs(1));
    assert_eq!(
        sim.drain(),
        vec![
            withdraw(10, &[1]),
            overflow_action(
                10,
                Q1,
                OverflowReason::MaxWait,
                OverflowTarget::Number("+4799999999".into())
            ),
        ]
    );
    assert_eq!(sim.e.queue_of(c(10)), None);
    assert_eq!(snapshot(&sim, Q1).unanswered_today, 1);
    // Nothing is left to fire for that caller.
    assert_eq!(sim.e.poll_timeout(), None);
}

#[test]
fn max_wait_is_measured_from_entering_each_queue_and_gives_up_without_a_rule() {
    let mut q1 = spec(Q1, Strategy::Linear, &[1]);
    q1.max_wait = Some(secs(30));
    q1.overflow.max_wait = Some(OverflowTarget::Queue(Q2));
    let mut q2 = spec(Q2, Strategy::Linear, &[1]);
    q2.max_wait = Some(secs(50));
    let mut sim = Sim::with(vec![q1, q2], &[]);
    assert_eq!(sim.enqueue(10, Q1, true), vec![]);
    sim.advance(secs(30));
    assert_eq!(
        sim.drain(),
        vec![overflow_action(
            10,
            Q1,
            OverflowReason::MaxWait,
            OverflowTarget::Queue(Q2)
        )]
    );
    assert_eq!(sim.e.queue_of(c(10)), Some(Q2));
    sim.advance(secs(49));
    assert_eq!(sim.drain(), vec![]);
    sim.advance(secs(1));
    assert_eq!(sim.drain(), vec![give_up(10, Q2, OverflowReason::MaxWait)]);
    assert_eq!(sim.e.waiting(), 0);
}

#[test]
fn a_full_queue_overflows_by_its_rule_or_gives_up() {
    let mut q1 = spec(Q1, Strategy::Linear, &[1]);
    q1.max_callers = Some(2);
    q1.overflow.full = Some(OverflowTarget::User(7));
    let mut q2 = spec(Q2, Strategy::Linear, &[1]);
    q2.max_callers = Some(1);
    let mut sim = Sim::with(vec![q1, q2], &[]);
    assert_eq!(sim.enqueue(10, Q1, false), vec![]);
    assert_eq!(sim.enqueue(11, Q1, false), vec![]);
    assert_eq!(
        sim.enqueue(12, Q1, true),
        vec![overflow_action(
            12,
            Q1,
            OverflowReason::Full,
            OverflowTarget::User(7)
        )]
    );
    assert_eq!(sim.enqueue(20, Q2, false), vec![]);
    assert_eq!(
        sim.enqueue(21, Q2, false),
        vec![give_up(21, Q2, OverflowReason::Full)]
    );
    // A caller leaving makes room again.
    sim.e.caller_left(sim.now, c(10));
    assert_eq!(sim.enqueue(13, Q1, false), vec![]);
    assert_eq!(snapshot(&sim, Q1).callers_waiting, 2);
    assert_eq!(snapshot(&sim, Q1).unanswered_today, 2);
}

#[test]
fn no_agents_at_enqueue_overflows_with_a_rule_and_waits_without() {
    let mut q1 = spec(Q1, Strategy::Linear, &[1, 2]);
    q1.overflow.no_agents = Some(OverflowTarget::Announcement(None));
    let q2 = spec(Q2, Strategy::Linear, &[1, 2]);
    let mut sim = Sim::with(vec![q1, q2], &[]);
    let no_agents = overflow_action(
        10,
        Q1,
        OverflowReason::NoAgents,
        OverflowTarget::Announcement(None),
    );
    assert_eq!(sim.enqueue(10, Q1, false), vec![no_agents.clone()]);
    // Logged in but paused counts as no agents.
    sim.e
        .set_presence(sim.now, a(1), Presence::Paused("x".into()));
    sim.drain();
    assert_eq!(sim.enqueue(10, Q1, false), vec![no_agents]);
    // Without a rule the caller waits, and is offered when someone logs in.
    assert_eq!(sim.enqueue(20, Q2, false), vec![]);
    assert_eq!(sim.e.queue_of(c(20)), Some(Q2));
    sim.e.set_presence(sim.now, a(2), Presence::LoggedIn);
    assert_eq!(sim.drain(), vec![offer(20, Q2, &[2], 20)]);
    // A logged-in agent busy on a call is an agent: no overflow.
    sim.answer(20, 2);
    assert_eq!(sim.enqueue(11, Q1, false), vec![]);
}

#[test]
fn no_agents_while_waiting_overflows_everyone_into_the_target_queue() {
    let mut q1 = spec(Q1, Strategy::Linear, &[1, 2]);
    q1.overflow.no_agents = Some(OverflowTarget::Queue(Q2));
    let q2 = spec(Q2, Strategy::Linear, &[3]);
    let mut sim = Sim::with(vec![q1, q2], &[1, 2, 3]);
    sim.e.agent_call_started(sim.now, a(1));
    sim.e.agent_call_started(sim.now, a(2));
    sim.e.agent_call_started(sim.now, a(3));
    sim.enqueue(10, Q1, false);
    sim.enqueue(11, Q1, false);
    sim.e.set_presence(sim.now, a(1), Presence::LoggedOut);
    assert_eq!(sim.drain(), vec![]);
    sim.e
        .set_presence(sim.now, a(2), Presence::Paused("x".into()));
    let to_q2 = |caller| {
        overflow_action(
            caller,
            Q1,
            OverflowReason::NoAgents,
            OverflowTarget::Queue(Q2),
        )
    };
    assert_eq!(sim.drain(), vec![to_q2(10), to_q2(11)]);
    assert_eq!(sim.e.queue_of(c(11)), Some(Q2));
    assert_eq!(snapshot(&sim, Q1).unanswered_today, 2);
    // In Q2 they keep their order.
    sim.e.agent_call_ended(sim.now, a(3), false);
    assert_eq!(sim.drain(), vec![offer(10, Q2, &[3], 20)]);
}

fn office_hours(tz: &str) -> Schedule {
    Schedule {
        time_zone: tz.into(),
        weekly: (0..5)
            .map(|weekday| WeeklyRange {
                weekday,
                open_min: 8 * 60,
                close_min: 16 * 60,
            })
            .collect(),
        exceptions: vec![DateException {
            date: (2025, 12, 25),
            open: None,
        }],
    }
}

fn closed_at(wall: SystemTime, rule: Option<OverflowTarget>) -> Vec<QueueAction> {
    let mut q = spec(Q1, Strategy::Linear, &[1]);
    q.schedule = Some(office_hours("Europe/Oslo"));
    q.overflow.closed = rule;
    let mut sim = Sim::at(wall);
    sim.e.configure(sim.now, vec![q]);
    sim.e.set_presence(sim.now, a(1), Presence::LoggedIn);
    sim.drain();
    sim.enqueue(10, Q1, false)
}

#[test]
fn closed_by_weekly_schedule_in_local_time_and_by_a_holiday() {
    let rule = Some(OverflowTarget::Announcement(Some("closed".into())));
    let closed = vec![overflow_action(
        10,
        Q1,
        OverflowReason::Closed,
        OverflowTarget::Announcement(Some("closed".into())),
    )];
    let open = vec![offer(10, Q1, &[1], 20)];
    // Summer (UTC+2): 06:30 UTC is 08:30 in Oslo, 14:30 UTC is 16:30.
    assert_eq!(closed_at(utc(2025, 6, 2, 6, 30), rule.clone()), open);
    assert_eq!(closed_at(utc(2025, 6, 2, 14, 30), rule.clone()), closed);
    // Winter (UTC+1): 14:30 UTC is 15:30, open; 06:30 UTC is 07:30, closed.
    assert_eq!(closed_at(utc(2025, 1, 6, 14, 30), rule.clone()), open);
    assert_eq!(closed_at(utc(2025, 1, 6, 6, 30), rule.clone()), closed);
    // Christmas Day, a Thursday: closed by the exception; without a rule: give up.
    assert_eq!(closed_at(utc(2025, 12, 25, 10, 0), rule), closed);
    assert_eq!(
        closed_at(utc(2025, 12, 25, 10, 0), None),
        vec![give_up(10, Q1, OverflowReason::Closed)]
    );
}

#[test]
fn an_overflow_chain_enters_each_queue_as_a_newcomer_with_its_own_checks() {
    let mut q1 = spec(Q1, Strategy::Linear, &[1]);
    q1.schedule = Some(Schedule {
        time_zone: "UTC".into(),
        weekly: vec![],
        exceptions: vec![],
    });
    q1.overflow.closed = Some(OverflowTarget::Queue(Q2));
    let mut q2 = spec(Q2, Strategy::Linear, &[1]);
    q2.max_callers = Some(0);
    q2.overflow.full = Some(OverflowTarget::Queue(Q3));
    let q3 = spec(Q3, Strategy::Linear, &[1]);
    let mut sim = Sim::with(vec![q1, q2, q3], &[]);
    sim.enqueue(5, Q3, false);
    sim.advance(secs(1));
    sim.enqueue(6, Q3, true);
    sim.advance(secs(1));
    assert_eq!(
        sim.enqueue(10, Q1, true),
        vec![
            overflow_action(10, Q1, OverflowReason::Closed, OverflowTarget::Queue(Q2)),
            overflow_action(10, Q2, OverflowReason::Full, OverflowTarget::Queue(Q3)),
        ]
    );
    assert_eq!(sim.e.queue_of(c(10)), Some(Q3));
    sim.e.set_presence(sim.now, a(1), Presence::LoggedIn);
    let first = sim.drain();
    assert_eq!(serve_in_turn(&mut sim, first, 1), vec![6, 10, 5]);
    assert_eq!(snapshot(&sim, Q1).unanswered_today, 1);
    assert_eq!(snapshot(&sim, Q2).unanswered_today, 1);
    assert_eq!(snapshot(&sim, Q3).answered_today, 3);
}

#[test]
fn the_hop_limit_ends_an_overflow_loop_with_give_up() {
    // Every queue is closed and overflows into the next; Q(n) -> Q(n+1).
    let closed = || Schedule {
        time_zone: "UTC".into(),
        weekly: vec![],
        exceptions: vec![],
    };
    let queues: Vec<QueueSpec> = (1..=8)
        .map(|n| {
            let mut q = spec(QueueId(n), Strategy::Linear, &[1]);
            q.schedule = Some(closed());
            q.overflow.closed = Some(OverflowTarget::Queue(QueueId(n + 1)));
            q
        })
        .collect();
    let mut sim = Sim::with(queues, &[1]);
    let actions = sim.enqueue(10, QueueId(1), false);
    let hops = u64::from(MAX_OVERFLOW_HOPS);
    assert_eq!(actions.len(), usize::try_from(hops).unwrap_or(0) + 1);
    for (n, action) in actions.iter().take(5).enumerate() {
        let from = i64::try_from(n).unwrap_or(0) + 1;
        assert_eq!(
            *action,
            overflow_action(
                10,
                QueueId(from),
                OverflowReason::Closed,
                OverflowTarget::Queue(QueueId(from + 1))
            )
        );
    }
    assert_eq!(actions[5], give_up(10, QueueId(6), OverflowReason::Closed));
    // A queue overflowing into itself stops at the same limit.
    let mut q = spec(Q1, Strategy::Linear, &[1]);
    q.schedule = Some(closed());
    q.overflow.closed = Some(OverflowTarget::Queue(Q1));
    sim.e.configure(sim.now, vec![q]);
    let actions = sim.enqueue(11, Q1, false);
    assert_eq!(actions.len(), 6);
    assert_eq!(actions[5], give_up(11, Q1, OverflowReason::Closed));
    assert_eq!(sim.e.waiting(), 0);
}

#[test]
fn overflow_to_an_unknown_queue_and_enqueue_to_an_unknown_queue_give_up() {
    let mut q = spec(Q1, Strategy::Linear, &[1]);
    q.max_callers = Some(0);
    q.overflow.full = Some(OverflowTarget::Queue(QueueId(99)));
    let mut sim = Sim::with(vec![q], &[1]);
    assert_eq!(
        sim.enqueue(10, Q1, false),
        vec![give_up(10, Q1, OverflowReason::Full)]
    );
    assert_eq!(
        sim.enqueue(11, QueueId(98), false),
        vec![give_up(11, QueueId(98), OverflowReason::NoAgents)]
    );
}

// ---- callers leaving ----

#[test]
fn a_caller_who_hangs_up_is_removed_at_once_and_its_offers_withdrawn() {
    let mut q = spec(Q1, Strategy::RingAll, &[1, 2]);
    q.max_wait = Some(secs(100));
    q.announce_every = Some(secs(10));
    let mut sim = Sim::with(vec![q], &[1, 2]);
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[1, 2], 20)]);
    sim.enqueue(11, Q1, false);
    sim.advance(secs(5));
    sim.e.caller_left(sim.now, c(10));
    assert_eq!(
        sim.drain(),
        vec![withdraw(10, &[1, 2]), offer(11, Q1, &[1, 2], 20)]
    );
    assert_eq!(sim.e.queue_of(c(10)), None);
    let s = snapshot(&sim, Q1);
    assert_eq!((s.callers_waiting, s.unanswered_today), (1, 1));
    // Unknown callers are ignored; so are answers and failures for them.
    sim.e.caller_left(sim.now, c(10));
    sim.e.offer_answered(sim.now, c(10), a(1));
    sim.e
        .offer_failed(sim.now, c(10), a(1), OfferFailure::Refused);
    assert_eq!(sim.drain(), vec![]);
    assert_eq!(snapshot(&sim, Q1).unanswered_today, 1);
    // The left caller's timers never fire: only caller 11 is announced.
    sim.advance(secs(10));
    let announced: Vec<_> = sim
        .drain()
        .into_iter()
        .filter(|x| matches!(x, QueueAction::Announce { .. }))
        .collect();
    assert_eq!(
        announced,
        vec![QueueAction::Announce {
            caller: c(11),
            position: 1,
            expected_wait: Some(secs(60)),
        }]
    );
}

// ---- announcements ----

fn announce(caller: u64, position: u32, wait: Option<u64>) -> QueueAction {
    QueueAction::Announce {
        caller: c(caller),
        position,
        expected_wait: wait.map(secs),
    }
}

#[test]
fn announcements_come_every_interval_with_position_and_expected_wait() {
    let mut q = spec(Q1, Strategy::Linear, &[1, 2, 3]);
    q.announce_every = Some(secs(30));
    let mut sim = Sim::with(vec![q], &[1, 2]);
    sim.e.agent_call_started(sim.now, a(1));
    sim.e.agent_call_started(sim.now, a(2));
    sim.enqueue(10, Q1, false);
    sim.advance(secs(10));
    sim.enqueue(11, Q1, false);
    sim.advance(secs(10));
    sim.enqueue(12, Q1, false);
    sim.advance(secs(9));
    assert_eq!(sim.drain(), vec![]);
    sim.advance(secs(1));
    // Two members logged in and not paused: 120 s per call / 2.
    assert_eq!(sim.drain(), vec![announce(10, 1, Some(60))]);
    sim.advance(secs(10));
    assert_eq!(sim.drain(), vec![announce(11, 2, Some(120))]);
    // A VIP arrives ahead of 12.
    sim.enqueue(13, Q1, true);
    sim.advance(secs(10));
    assert_eq!(sim.drain(), vec![announce(12, 4, Some(240))]);
    // One member pauses: the wait is divided by one.
    sim.e
        .set_presence(sim.now, a(2), Presence::Paused("x".into()));
    sim.drain();
    sim.advance(secs(10));
    assert_eq!(sim.drain(), vec![announce(10, 2, Some(240))]);
    // 13 entered at 40 s: first announced at 70 s, with 11 (entered at 10 s).
    sim.advance(secs(10));
    assert_eq!(
        sim.drain(),
        vec![announce(11, 3, Some(360)), announce(13, 1, Some(120))]
    );
    // Everyone logged out: no estimate.
    sim.e.set_presence(sim.now, a(1), Presence::LoggedOut);
    sim.e.set_presence(sim.now, a(2), Presence::LoggedOut);
    sim.drain();
    sim.advance(secs(10));
    assert_eq!(sim.drain(), vec![announce(12, 4, None)]);
}

#[test]
fn the_expected_wait_follows_the_average_handle_time() {
    let mut q = spec(Q1, Strategy::Linear, &[1]);
    q.announce_every = Some(secs(1000));
    q.wrap_up = secs(20);
    let mut sim = Sim::with(vec![q], &[1]);
    sim.enqueue(10, Q1, false);
    // Talk 200 s + wrap-up 20 s: 0.8 × 120 + 0.2 × 220 = 140 s.
    sim.serve(10, 1, secs(200));
    // The agent takes a direct call, so the next caller waits.
    sim.e.agent_call_started(sim.now, a(1));
    sim.enqueue(11, Q1, false);
    sim.advance(secs(1000));
    assert_eq!(sim.drain(), vec![announce(11, 1, Some(140))]);
}

// ---- snapshots ----

#[test]
fn snapshots_count_agents_callers_and_today_with_the_midnight_rollover() {
    let every_day = Schedule {
        time_zone: "Europe/Oslo".into(),
        weekly: (0..7)
            .map(|weekday| WeeklyRange {
                weekday,
                open_min: 0,
                close_min: 1440,
            })
            .collect(),
        exceptions: vec![],
    };
    let mut q1 = spec(Q1, Strategy::Linear, &[1, 2, 3, 4, 5]);
    q1.schedule = Some(every_day);
    q1.wrap_up = secs(60);
    let q2 = spec(Q2, Strategy::Linear, &[1]);
    // 22:40 UTC is 23:40 in Oslo.
    let mut sim = Sim::at(utc(2025, 1, 6, 22, 40));
    sim.e.configure(sim.now, vec![q2, q1]);
    for agent in [1, 2, 3, 4] {
        sim.e.set_presence(sim.now, a(agent), Presence::LoggedIn);
    }
    sim.e
        .set_presence(sim.now, a(4), Presence::Paused("x".into()));
    sim.e.agent_call_started(sim.now, a(3));
    sim.drain();
    sim.e.seed_today(Q1, 5, 3);
    sim.e.seed_today(QueueId(77), 1, 1);
    sim.enqueue(10, Q1, false); // offered to 1
    sim.serve(10, 1, secs(30)); // 1 in wrap-up
    sim.enqueue(11, Q1, false); // offered to 2
    sim.enqueue(12, Q1, false);
    sim.advance(secs(15));
    sim.enqueue(13, Q1, false);
    sim.advance(secs(5));
    let s = snapshot(&sim, Q1);
    assert_eq!(
        s,
        QueueSnapshot {
            queue: Q1,
            name: "q1".into(),
            agents_logged_in: 4,
            agents_available: 0,
            agents_busy: 1,
            agents_paused: 1,
            callers_waiting: 3,
            longest_wait: Some(secs(20)),
            answered_today: 6,
            unanswered_today: 3,
        }
    );
    let ids: Vec<QueueId> = sim.e.snapshots(sim.now).iter().map(|s| s.queue).collect();
    assert_eq!(ids, vec![Q1, Q2]);
    sim.e.caller_left(sim.now, c(12));
    assert_eq!(snapshot(&sim, Q1).unanswered_today, 4);
    // Past midnight in Oslo (00:05 local, still 23:05 UTC): the counters start over.
    sim.advance(secs(20 * 60));
    let s = snapshot(&sim, Q1);
    assert_eq!((s.answered_today, s.unanswered_today), (0, 0));
    sim.answer(11, 2);
    let s = snapshot(&sim, Q1);
    assert_eq!((s.answered_today, s.unanswered_today), (1, 0));
    assert_eq!(s.longest_wait, Some(secs(20 * 60 + 5)));
    // Q2 counts in UTC: it is still the same day there.
    assert_eq!(snapshot(&sim, Q2).agents_available, 0);
}

// ---- configuration ----

#[test]
fn configure_keeps_callers_in_place_and_applies_changes_at_once() {
    let mut q1 = spec(Q1, Strategy::Linear, &[1, 2]);
    q1.max_wait = None;
    let q2 = spec(Q2, Strategy::Linear, &[1]);
    let mut sim = Sim::with(vec![q1.clone(), q2.clone()], &[1, 3]);
    assert_eq!(sim.enqueue(10, Q1, false), vec![offer(10, Q1, &[1], 20)]);
    sim.enqueue(11, Q1, false);
    sim.enqueue(12, Q1, false);
    sim.enqueue(20, Q2, false);
    sim.advance(secs(10));
    // Member 1 removed, member 3 added, max wait 30 s, Q2 removed.
    let mut q1b = spec(Q1, Strategy::Linear, &[2, 3]);
    q1b.max_wait = Some(secs(30));
    q1b.overflow.max_wait = Some(OverflowTarget::User(9));
    sim.e.configure(sim.now, vec![q1b]);
    assert_eq!(
        sim.drain(),
        vec![
            give_up(20, Q2, OverflowReason::NoAgents),
            offer(11, Q1, &[3], 20),
        ]
    );
    assert_eq!(sim.e.queue_of(c(10)), Some(Q1));
    assert_eq!(sim.e.queue_of(c(12)), Some(Q1));
    assert_eq!(sim.e.spec(Q2), None);
    assert_eq!(sim.e.spec(Q1).map(|s| s.members.len()), Some(2));
    // The removed member's running offer finishes normally (ring timeout at 20 s),
    // and the removed member gets no new offer.
    sim.advance(secs(10));
    assert_eq!(sim.drain(), vec![withdraw(10, &[1])]);
    // The new max wait counts from entering: 30 s after the start.
    sim.advance(secs(10));
    let actions = sim.drain();
    assert!(actions.contains(&overflow_action(
        10,
        Q1,
        OverflowReason::MaxWait,
        OverflowTarget::User(9)
    )));
    assert!(actions.contains(&overflow_action(
        12,
        Q1,
        OverflowReason::MaxWait,
        OverflowTarget::User(9)
    )));
}

#[test]
fn configure_with_no_logged_in_member_overflows_by_the_no_agents_rule() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::Linear, &[1])], &[]);
    sim.enqueue(10, Q1, false);
    let mut q = spec(Q1, Strategy::Linear, &[1]);
    q.overflow.no_agents = Some(OverflowTarget::User(5));
    sim.e.configure(sim.now, vec![q]);
    assert_eq!(
        sim.drain(),
        vec![overflow_action(
            10,
            Q1,
            OverflowReason::NoAgents,
            OverflowTarget::User(5)
        )]
    );
}

#[test]
fn a_removed_members_running_offer_can_still_be_answered() {
    let mut sim = Sim::with(vec![spec(Q1, Strategy::Linear, &[1, 2])], &[1, 2]);
    sim.enqueue(10, Q1, false);
    sim.e
        .configure(sim.now, vec![spec(Q1, Strategy::Linear, &[2])]);
    assert_eq!(sim.drain(), vec![]);
    assert_eq!(sim.answer(10, 1), vec![]);
    assert_eq!(snapshot(&sim, Q1).answered_today, 1);
}

// ---- property: random input never breaks the engine ----

/// Tracks the offers the switch would be ringing, from the actions alone.
#[derive(Default)]
struct Switch {
    /// agent -> caller it rings for.
    ringing: BTreeMap<AgentId, CallerKey>,
    /// Agents with an answered queue call not yet ended.
    on_queue_call: Vec<AgentId>,
    /// Agents' other calls.
    other_calls: BTreeMap<AgentId, u32>,
    /// Callers the switch believes are in the queue engine.
    waiting: BTreeSet<CallerKey>,
}

impl Switch {
    fn apply(&mut self, actions: Vec<QueueAction>) {
        for action in actions {
            match action {
                QueueAction::Offer { caller, agents, .. } => {
                    assert!(self.waiting.contains(&caller), "offer for a gone caller");
                    assert!(!agents.is_empty());
                    for agent in agents {
                        let previous = self.ringing.insert(agent, caller);
                        assert_eq!(previous, None, "{agent:?} got a second offer");
                    }
                }
                QueueAction::Withdraw { caller, agents } => {
                    for agent in agents {
                        assert_eq!(self.ringing.remove(&agent), Some(caller));
                    }
                }
                QueueAction::Overflow { caller, target, .. } => {
                    assert!(self.ringing.values().all(|c| *c != caller));
                    if !matches!(target, OverflowTarget::Queue(_)) {
                        self.waiting.remove(&caller);
                    }
                }
                QueueAction::GiveUp { caller, .. } => {
                    assert!(self.ringing.values().all(|c| *c != caller));
                    self.waiting.remove(&caller);
                }
                QueueAction::Announce {
                    caller, position, ..
                } => {
                    assert!(self.waiting.contains(&caller));
                    assert!(position >= 1);
                }
            }
        }
    }
}

fn random_specs(rng: &mut super::strategy::Rng, agents: i64) -> Vec<QueueSpec> {
    let strategies = [
        Strategy::RingAll,
        Strategy::Linear,
        Strategy::RoundRobin,
        Strategy::LongestIdle,
        Strategy::FewestCalls,
        Strategy::Random,
    ];
    let targets = |rng: &mut super::strategy::Rng| match rng.next_u64() % 5 {
        0 => None,
        1 => Some(OverflowTarget::User(1)),
        2 => Some(OverflowTarget::Announcement(None)),
        _ => Some(OverflowTarget::Queue(QueueId(
            i64::try_from(rng.next_u64() % 7).unwrap_or(0),
        ))),
    };
    (0..6)
        .map(|n| {
            let members: Vec<i64> = (0..agents).filter(|_| rng.next_u64() % 3 == 0).collect();
            let mut q = spec(
                QueueId(n),
                strategies[usize::try_from(rng.next_u64() % 6).unwrap_or(0)],
                &members,
            );
            q.ring_timeout = secs(5 + rng.next_u64() % 20);
            q.wrap_up = secs(rng.next_u64() % 15);
            q.max_wait = (rng.next_u64() % 2 == 0).then(|| secs(30 + rng.next_u64() % 120));
            q.max_callers = (rng.next_u64() % 3 == 0).then(|| (rng.next_u64() % 6) as u32);
            q.announce_every = (rng.next_u64() % 2 == 0).then(|| secs(rng.next_u64() % 40));
            q.overflow = OverflowRules {
                max_wait: targets(rng),
                full: targets(rng),
                no_agents: targets(rng),
                closed: targets(rng),
            };
            if rng.next_u64() % 4 == 0 {
                q.schedule = Some(office_hours("Europe/Oslo"));
            }
            q
        })
        .collect()
}

#[test]
fn random_event_sequences_keep_the_invariants() {
    for seed in 0..5u64 {
        let mut rng = super::strategy::Rng::new(seed);
        let agents = 12i64;
        let mut sim = Sim::at(utc(2025, 3, 28, 6, 0));
        let mut sw = Switch::default();
        sim.e.configure(sim.now, random_specs(&mut rng, agents));
        sw.apply(sim.drain());
        let mut next_caller = 0u64;
        for _ in 0..3000 {
            let agent = AgentId(i64::try_from(rng.next_u64() % 13).unwrap_or(0));
            let caller = CallerKey(rng.next_u64() % (next_caller + 2));
            match rng.next_u64() % 14 {
                0 | 1 => {
                    next_caller += 1;
                    let queue = QueueId(i64::try_from(rng.next_u64() % 7).unwrap_or(0));
                    sw.waiting.insert(CallerKey(next_caller));
                    sim.e.enqueue(
                        sim.now,
                        CallerKey(next_caller),
                        queue,
                        rng.next_u64() % 4 == 0,
                    );
                }
                2 => {
                    sim.e.caller_left(sim.now, caller);
                    sw.waiting.remove(&caller);
                }
                3 | 4 => {
                    // Answer a ringing offer (or, rarely, a made-up one).
                    let pick = sw.ringing.iter().next().map(|(a, c)| (*a, *c));
                    if let Some((agent, caller)) = pick {
                        sim.e.offer_answered(sim.now, caller, agent);
                        sw.ringing.remove(&agent);
                        sw.waiting.remove(&caller);
                        sw.on_queue_call.push(agent);
                    } else {
                        // An answer racing a withdrawal is accepted too.
                        if sim.e.queue_of(caller).is_some() {
                            sw.waiting.remove(&caller);
                            sw.on_queue_call.push(agent);
                        }
                        sim.e.offer_answered(sim.now, caller, agent);
                    }
                }
                5 => {
                    let pick = sw.ringing.iter().next().map(|(a, c)| (*a, *c));
                    if let Some((agent, caller)) = pick {
                        sw.ringing.remove(&agent);
                        sim.e
                            .offer_failed(sim.now, caller, agent, OfferFailure::Refused);
                    } else {
                        sim.e
                            .offer_failed(sim.now, caller, agent, OfferFailure::Unreachable);
                    }
                }
                6 => {
                    let presence = match rng.next_u64() % 3 {
                        0 => Presence::LoggedOut,
                        1 => Presence::Paused("p".into()),
                        _ => Presence::LoggedIn,
                    };
                    sim.e.set_presence(sim.now, agent, presence);
                }
                7 => {
                    if !sw.on_queue_call.is_empty() {
                        let i =
                            usize::try_from(rng.next_u64()).unwrap_or(0) % sw.on_queue_call.len();
                        let agent = sw.on_queue_call.swap_remove(i);
                        sim.e.agent_call_ended(sim.now, agent, true);
                    }
                }
                8 => {
                    sim.e.agent_call_started(sim.now, agent);
                    *sw.other_calls.entry(agent).or_default() += 1;
                }
                9 => {
                    let calls = sw.other_calls.entry(agent).or_default();
                    if *calls > 0 {
                        *calls -= 1;
                    }
                    // Also unbalanced ends: ignored by the engine.
                    sim.e.agent_call_ended(sim.now, agent, false);
                }
                10 if rng.next_u64() % 20 == 0 => {
                    sim.e.configure(sim.now, random_specs(&mut rng, agents));
                }
                _ => {
                    let d = Duration::from_millis(rng.next_u64() % 30_000);
                    sim.advance(d);
                }
            }
            sw.apply(sim.drain());
            let _ = sim.e.snapshots(sim.now);
            assert_eq!(sim.e.waiting(), sw.waiting.len());
        }
        // Every caller leaves: every offer still ringing must be withdrawn.
        let callers: Vec<CallerKey> = sw.waiting.iter().copied().collect();
        for caller in callers {
            sim.e.caller_left(sim.now, caller);
            sw.waiting.remove(&caller);
            sw.apply(sim.drain());
        }
        assert!(
            sw.ringing.is_empty(),
            "offers never ended: {:?}",
            sw.ringing
        );
        assert_eq!(sim.e.waiting(), 0);
    }
}
