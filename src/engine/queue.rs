//! Queue and answer-group calls on the SIP side. The queue engine (`crate::queue`)
//! decides whom to offer a caller to and when to overflow; this module carries its
//! actions out: the caller is answered here (a queue: greeting, music on hold,
//! announcements) or hears ringing (an answer group), offers ring every terminal of an
//! agent as branches of the caller's call, and the first agent to answer is bridged.
//! It also keeps the queue visits of each call for the queue call log, feeds the queue
//! engine which agents are busy on any call, and handles the agents' feature codes.

use super::b2bua::CallTimer;
use super::{Engine, Output};
use crate::call::model::{BranchId, CallId, CallState, Outcome};
use crate::media::control::{LegSource, MediaCommand, MediaLeg};
use crate::queue::model::{
    AgentId, CallerKey, OfferFailure, OverflowReason, OverflowTarget, Presence, QueueAction,
    QueueId, QueueKind, QueueSnapshot, QueueSpec,
};
use crate::util::time::Now;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The prompt a queue greets its callers with when it has no greeting of its own.
pub const DEFAULT_GREETING: &str = "queue/welcome";
/// The prompt a caller hears before being hung up when nobody can take the call.
pub const ALL_BUSY: &str = "queue/all-busy";
/// How long a caller may hear a final announcement before the call is hung up anyway
/// (the media plane reports the end of the playback; this bounds a lost report).
const FINAL_ANNOUNCEMENT_LIMIT: Duration = Duration::from_secs(30);
/// How long an overflow target (a user, an external number) rings.
const OVERFLOW_RING_TIME: Duration = Duration::from_secs(30);

/// A user queue calls may ring: an agent or a user an overflow rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUser {
    /// The user's tenant.
    pub tenant_id: i64,
    /// Address-of-record of the user's phones (`sip:user@realm`).
    pub aor: String,
    /// The user's mobile (E.164), rung through the carrier with the phones.
    pub mobile: Option<String>,
}

/// The queue configuration as the runtime loads it from the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueConfig {
    /// Every queue and answer group.
    pub queues: Vec<QueueSpec>,
    /// Greeting prompt per queue (queues without one get [`DEFAULT_GREETING`]).
    pub greetings: HashMap<QueueId, String>,
    /// Users that members and overflow rules name, by user id.
    pub users: HashMap<i64, QueueUser>,
    /// (tenant, E.164 number) of every VIP caller.
    pub vip: HashSet<(i64, String)>,
    /// Every agent's presence as stored.
    pub presence: Vec<(AgentId, Presence)>,
}

/// The switch's copy of what queue calls need beyond the queue engine's specs.
#[derive(Debug, Default)]
pub(super) struct QueueDirectory {
    greetings: HashMap<QueueId, String>,
    users: HashMap<i64, QueueUser>,
    vip: HashSet<(i64, String)>,
    loaded: bool,
}

/// What a queued caller hears now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playing {
    /// Nothing of ours (ringing for an answer group, before the answer).
    Nothing,
    /// The queue's greeting.
    Greeting,
    /// Music on hold.
    Music,
    /// A position / expected-wait announcement.
    Announcement,
    /// A last announcement; the call is hung up when it ends.
    Goodbye,
    /// The agent (or overflow target) who answered.
    Connected,
}

/// How an offer to an agent ended, for the queue call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferResult {
    /// Still ringing (the call ended while it rang: logged as withdrawn).
    Ringing,
    /// The agent answered.
    Answered,
    /// The agent's ring time ran out.
    NoAnswer,
    /// Every terminal of the agent refused, or none could be reached.
    Refused,
    /// Taken back: another agent answered, the caller left or overflowed.
    Withdrawn,
}

/// One offer of a queue call to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferRecord {
    /// The agent (user id).
    pub agent: i64,
    /// When it started ringing (Unix ms).
    pub offered_ms: u64,
    /// How it ended.
    pub result: OfferResult,
}

/// How a caller's stay in one queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitOutcome {
    /// An agent answered.
    Answered,
    /// The caller hung up while waiting.
    Abandoned,
    /// The caller overflowed to the visit's overflow target.
    Overflowed,
    /// Nobody could take the call (no rule, hop limit): announcement and hang-up.
    GivenUp,
    /// The switch ended the call (shutdown, media failure).
    EndedBySwitch,
}

/// A caller's stay in one queue (a call overflowing from A to B has two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueVisit {
    /// The queue.
    pub queue: QueueId,
    /// Its name at the time.
    pub name: String,
    /// The caller's number is on the tenant's VIP list.
    pub vip: bool,
    /// When the caller entered it (Unix ms).
    pub entered_ms: u64,
    /// When an agent answered (Unix ms).
    pub answered_ms: Option<u64>,
    /// The agent who answered (user id).
    pub answered_by: Option<i64>,
    /// When the caller left it (Unix ms).
    pub left_ms: Option<u64>,
    /// How it ended (`None` while the caller is still in it).
    pub outcome: Option<VisitOutcome>,
    /// Why and where the caller overflowed (a readable target: `queue:Name`,
    /// `user:42`, `number:+47...`, `announcement`).
    pub overflow: Option<(OverflowReason, String)>,
    /// The offers made to agents during the visit.
    pub offers: Vec<OfferRecord>,
}

/// The queue side of one call.
#[derive(Debug)]
pub struct QueueCall {
    /// Queue (answered here) or answer group (rings until an agent answers).
    pub kind: QueueKind,
    /// The queue the call reached first (`None`: a feature-code call).
    pub first_queue: Option<QueueId>,
    /// A feature-code call: these prompts are played, then the call is hung up.
    pub service: Option<Vec<String>>,
    /// What the caller hears now.
    pub playing: Playing,
    /// Offers ringing now: each agent and its branches.
    pub offers: Vec<(AgentId, Vec<BranchId>)>,
    /// The queue visits, for the queue call log.
    pub visits: Vec<QueueVisit>,
    /// The caller is in the queue engine.
    pub queued: bool,
    /// The caller's number is on the tenant's VIP list.
    pub vip: bool,
    /// The agent who answered.
    pub agent: Option<AgentId>,
    /// The queue side of the call was closed (queue engine told, visits closed).
    pub closed: bool,
}

impl QueueCall {
    /// A call that reached queue `queue`.
    pub fn new(kind: QueueKind, queue: QueueId, vip: bool) -> QueueCall {
        QueueCall {
            kind,
            first_queue: Some(queue),
            service: None,
            playing: Playing::Nothing,
            offers: Vec::new(),
            visits: Vec::new(),
            queued: false,
            vip,
            agent: None,
            closed: false,
        }
    }

    /// A feature-code call: answered here, `prompts` played, hung up.
    pub fn service(prompts: Vec<String>) -> QueueCall {
        QueueCall {
            service: Some(prompts),
            first_queue: None,
            ..QueueCall::new(QueueKind::Queue, QueueId(0), false)
        }
    }

    fn open_visit(&mut self) -> Option<&mut QueueVisit> {
        self.visits.iter_mut().rev().find(|v| v.outcome.is_none())
    }

    /// The agent whose offer rang on branch `bid`.
    fn agent_of(&self, bid: BranchId) -> Option<AgentId> {
        self.offers
            .iter()
            .find(|(_, b)| b.contains(&bid))
            .map(|(a, _)| *a)
    }

    fn record_offer_result(&mut self, agent: AgentId, result: OfferResult) {
        if let Some(v) = self.open_visit() {
            if let Some(o) = v
                .offers
                .iter_mut()
                .rev()
                .find(|o| o.agent == agent.0 && o.result == OfferResult::Ringing)
            {
                o.result = result;
            }
        }
    }
}

/// Agent feature codes dialled from a phone: the presence they set and the prompt
/// that confirms it.
pub fn feature_code(code: &str) -> Option<(Presence, &'static str)> {
    match code {
        "*45" => Some((Presence::LoggedIn, "agent/logged-in")),
        "*46" => Some((Presence::LoggedOut, "agent/logged-out")),
        "*47" => Some((Presence::Paused("pause".into()), "agent/paused")),
        "*48" => Some((Presence::LoggedIn, "agent/unpaused")),
        _ => None,
    }
}

fn target_text(target: &OverflowTarget, engine: &crate::queue::QueueEngine) -> String {
    match target {
        OverflowTarget::Queue(q) => match engine.spec(*q) {
            Some(s) => format!("queue:{}", s.name),
            None => format!("queue:#{}", q.0),
        },
        OverflowTarget::User(u) => format!("user:{u}"),
        OverflowTarget::Number(n) => format!("number:{n}"),
        OverflowTarget::Announcement(Some(p)) => format!("announcement:{p}"),
        OverflowTarget::Announcement(None) => "announcement".into(),
    }
}

impl Engine {
    /// A new queue configuration (at start and whenever the store's changed): the queue
    /// engine keeps waiting callers in place; presence changes made elsewhere apply.
    pub(super) fn configure_queues(&mut self, now: Now, config: QueueConfig) {
        self.queues.configure(now, config.queues);
        for (agent, presence) in config.presence {
            if self.queues.presence(agent) != presence {
                self.queues.set_presence(now, agent, presence);
            }
        }
        self.queue_dir = QueueDirectory {
            greetings: config.greetings,
            users: config.users,
            vip: config.vip,
            loaded: true,
        };
        self.run_queue_actions(now);
    }

    /// Live snapshots of every queue (wallboard, `sentralbord queue status`).
    pub fn queue_snapshots(&self, now: Now) -> Vec<QueueSnapshot> {
        self.queues.snapshots(now)
    }

    /// Seeds a queue's answered/unanswered counts of today (after a restart).
    pub fn seed_queue_today(&mut self, queue: QueueId, answered: u32, unanswered: u32) {
        self.queues.seed_today(queue, answered, unanswered);
    }

    /// Whether the queue configuration was loaded (queue calls are refused before).
    pub fn queues_loaded(&self) -> bool {
        self.queue_dir.loaded
    }

    /// Whether a call is a call to a conference room.
    pub(super) fn is_conference_call(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|e| e.conference.is_some())
    }

    /// Whether a call is a queue (or feature-code) call.
    pub(super) fn is_queue_call(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|e| e.queue.is_some())
    }

    /// Whether the caller is in an answered dialog with us: an agent or callee answered,
    /// or the switch answered it (a queue).
    pub(super) fn caller_answered(&self, id: CallId) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|e| e.call.winner.is_some() || e.answered_here)
    }

    /// Whether the caller's number is on its tenant's VIP list.
    pub(super) fn is_vip(&self, tenant: i64, caller: Option<&str>) -> bool {
        caller.is_some_and(|n| self.queue_dir.vip.contains(&(tenant, n.to_owned())))
    }

    /// The caller of a queue call: its media is open, so it is answered (queue) or rung
    /// (group) and enters its first queue; a feature-code call plays its confirmation.
    pub(super) fn enter_first_queue(&mut self, now: Now, id: CallId) {
        let Some(q) = self.calls.get(&id).and_then(|e| e.queue.as_ref()) else {
            return;
        };
        if let Some(prompts) = q.service.clone() {
            self.answer_here(now, id);
            self.play_and_hang_up(now, id, prompts);
            return;
        }
        let (Some(queue), kind, vip) = (q.first_queue, q.kind, q.vip) else {
            return;
        };
        match kind {
            QueueKind::Queue => {
                self.answer_here(now, id);
                let tenant = self.calls.get(&id).and_then(|e| e.tenant);
                let greeting = self
                    .queue_dir
                    .greetings
                    .get(&queue)
                    .cloned()
                    .unwrap_or_else(|| DEFAULT_GREETING.to_owned());
                self.play(now, id, Playing::Greeting, vec![greeting], false, tenant);
            }
            QueueKind::Group => {
                if let Some(r) = self.response_to_caller(id, 180, "Ringing") {
                    self.provisional_to_caller(now, id, 180, r);
                }
            }
        }
        self.open_visit(now, id, queue);
        if let Some(q) = self.calls.get_mut(&id).and_then(|e| e.queue.as_mut()) {
            q.queued = true;
        }
        self.queues.enqueue(now, CallerKey(id.0), queue, vip);
        self.run_queue_actions(now);
    }

    fn open_visit(&mut self, now: Now, id: CallId, queue: QueueId) {
        let name = self
            .queues
            .spec(queue)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        if let Some(q) = self.calls.get_mut(&id).and_then(|e| e.queue.as_mut()) {
            q.visits.push(QueueVisit {
                queue,
                name,
                vip: q.vip,
                entered_ms: Self::now_ms(now),
                answered_ms: None,
                answered_by: None,
                left_ms: None,
                outcome: None,
                overflow: None,
                offers: Vec::new(),
            });
        }
    }

    fn close_visit(
        &mut self,
        now: Now,
        id: CallId,
        outcome: VisitOutcome,
        overflow: Option<(OverflowReason, String)>,
    ) {
        if let Some(v) = self
            .calls
            .get_mut(&id)
            .and_then(|e| e.queue.as_mut())
            .and_then(|q| q.open_visit())
        {
            v.outcome = Some(outcome);
            v.left_ms = Some(Self::now_ms(now));
            v.overflow = overflow;
            for o in &mut v.offers {
                if o.result == OfferResult::Ringing {
                    o.result = OfferResult::Withdrawn;
                }
            }
        }
    }

    /// Answers the caller ourselves (a queue, a final announcement, a feature code).
    pub(super) fn answer_here(&mut self, now: Now, id: CallId) {
        if self.caller_answered(id) {
            return;
        }
        let Some(mut ok) = self.response_to_caller(id, 200, "OK") else {
            return;
        };
        if let Some(Some(sdp)) = self.caller_sdp_again(id) {
            super::media::set_sdp_body(&mut ok, &sdp);
        }
        if let Some(se) = self.caller_refreshed_session(id) {
            use crate::sip::message::HeaderName;
            ok.push(HeaderName::SessionExpires, se.to_string());
            crate::sip::ext::session_timer::add_require_timer(&mut ok);
            self.refresh_session(now, id, Duration::from_secs(u64::from(se.delta)));
        }
        if let Some(rel) = self
            .calls
            .get_mut(&id)
            .and_then(|e| e.inbound.reliable.as_mut())
        {
            rel.settle();
        }
        if let Some(e) = self.calls.get_mut(&id) {
            e.answered_here = true;
        }
        self.send_ok_to_caller(now, id, ok);
    }

    /// Plays prompts to the caller (what it hears next is `playing`).
    fn play(
        &mut self,
        _now: Now,
        id: CallId,
        playing: Playing,
        names: Vec<String>,
        looped: bool,
        tenant: Option<i64>,
    ) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(session) = entry.media.as_ref().map(|m| m.session) else {
            return;
        };
        if let Some(q) = entry.queue.as_mut() {
            q.playing = playing;
        }
        self.outputs.push_back(Output::Media(MediaCommand::Source {
            session,
            leg: MediaLeg::Caller,
            source: LegSource::Prompts {
                tenant,
                names,
                looped,
            },
        }));
    }

    fn play_music(&mut self, now: Now, id: CallId) {
        let tenant = self.calls.get(&id).and_then(|e| e.tenant);
        self.play(
            now,
            id,
            Playing::Music,
            vec![super::media::MUSIC_ON_HOLD.to_owned()],
            true,
            tenant,
        );
    }

    /// Plays `prompts` to the caller (answering it first), then hangs up.
    fn play_and_hang_up(&mut self, now: Now, id: CallId, prompts: Vec<String>) {
        self.answer_here(now, id);
        let tenant = self.calls.get(&id).and_then(|e| e.tenant);
        self.play(now, id, Playing::Goodbye, prompts, false, tenant);
        self.arm(
            now.mono + FINAL_ANNOUNCEMENT_LIMIT,
            id,
            CallTimer::QueueHangUp,
        );
    }

    /// A finite playlist to the caller ended.
    pub(super) fn queue_playback_done(&mut self, now: Now, id: CallId) {
        let playing = self
            .calls
            .get(&id)
            .and_then(|e| e.queue.as_ref())
            .map(|q| q.playing);
        match playing {
            Some(Playing::Greeting | Playing::Announcement) => self.play_music(now, id),
            Some(Playing::Goodbye) => self.queue_hang_up(now, id),
            _ => {}
        }
    }

    /// Ends a queue call from our side after its last announcement (or its limit).
    pub(super) fn queue_hang_up(&mut self, now: Now, id: CallId) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if entry.call.state == CallState::Ended {
            return;
        }
        let cancel = entry.call.cancel_all();
        let outcome = if entry.call.winner.is_some() {
            Outcome::Answered
        } else {
            Outcome::Missed
        };
        entry
            .call
            .end(outcome, "announcement played", Self::now_ms(now));
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        self.send_bye(now, id, super::b2bua::Side::Inbound);
        self.finish_if_done(id);
    }

    /// Carries out everything the queue engine asked for.
    pub(super) fn run_queue_actions(&mut self, now: Now) {
        while let Some(action) = self.queues.poll_action() {
            match action {
                QueueAction::Offer {
                    caller,
                    queue: _,
                    agents,
                    ring_for: _,
                } => self.offer(now, caller, agents),
                QueueAction::Withdraw { caller, agents } => self.withdraw(now, caller, &agents),
                QueueAction::Announce {
                    caller,
                    position,
                    expected_wait,
                } => self.announce(now, caller, position, expected_wait),
                QueueAction::Overflow {
                    caller,
                    from: _,
                    reason,
                    target,
                } => self.overflow(now, caller, reason, target),
                QueueAction::GiveUp {
                    caller,
                    queue: _,
                    reason,
                } => {
                    let id = CallId(caller.0);
                    tracing::info!(call = id.0, ?reason, "queue call cannot be served");
                    if let Some(q) = self.calls.get_mut(&id).and_then(|e| e.queue.as_mut()) {
                        q.queued = false;
                    }
                    self.close_visit(now, id, VisitOutcome::GivenUp, None);
                    self.end_unserved(now, id, None);
                }
            }
        }
    }

    /// The call behind a queue caller, when it is still live.
    fn live_queue_call(&self, caller: CallerKey) -> Option<CallId> {
        let id = CallId(caller.0);
        let e = self.calls.get(&id)?;
        (e.call.state != CallState::Ended && e.queue.is_some()).then_some(id)
    }

    /// Rings every terminal of each agent as branches of the caller's call.
    fn offer(&mut self, now: Now, caller: CallerKey, agents: Vec<AgentId>) {
        let Some(id) = self.live_queue_call(caller) else {
            // The call is gone (its end is being reported): take it out of the queue.
            self.queues.caller_left(now, caller);
            return;
        };
        let mut unreachable = Vec::new();
        for agent in agents {
            let targets = match self.queue_dir.users.get(&agent.0) {
                Some(u) => {
                    self.plan_for_user(agent.0, &u.aor, u.mobile.as_deref(), now)
                        .targets
                }
                None => Vec::new(),
            };
            let before = self.calls.get(&id).map_or(0, |e| e.call.branches.len());
            let started = !targets.is_empty() && self.ring(now, id, targets);
            let after = self.calls.get(&id).map_or(0, |e| e.call.branches.len());
            let offered_ms = Self::now_ms(now);
            let Some(q) = self.calls.get_mut(&id).and_then(|e| e.queue.as_mut()) else {
                return;
            };
            let result = if started {
                let bids = (before..after).map(|b| BranchId(b as u32)).collect();
                q.offers.push((agent, bids));
                OfferResult::Ringing
            } else {
                unreachable.push(agent);
                OfferResult::Refused
            };
            if let Some(v) = q.open_visit() {
                v.offers.push(OfferRecord {
                    agent: agent.0,
                    offered_ms,
                    result,
                });
            }
        }
        for agent in unreachable {
            tracing::info!(
                call = id.0,
                agent = agent.0,
                "agent has no reachable terminal"
            );
            self.queues
                .offer_failed(now, caller, agent, OfferFailure::Unreachable);
        }
    }

    /// Stops ringing these agents for the caller.
    fn withdraw(&mut self, now: Now, caller: CallerKey, agents: &[AgentId]) {
        let id = CallId(caller.0);
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let timed_out = entry.call.winner.is_none() && entry.call.state != CallState::Ended;
        let Some(q) = entry.queue.as_mut() else {
            return;
        };
        let mut cancel = Vec::new();
        for agent in agents {
            if let Some(pos) = q.offers.iter().position(|(a, _)| a == agent) {
                let (_, bids) = q.offers.remove(pos);
                cancel.extend(bids);
                let result = if timed_out {
                    OfferResult::NoAnswer
                } else {
                    OfferResult::Withdrawn
                };
                q.record_offer_result(*agent, result);
            }
        }
        let cancel: Vec<BranchId> = cancel
            .into_iter()
            .filter(|b| entry.call.cancel_branch(*b))
            .collect();
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
    }

    fn announce(&mut self, now: Now, caller: CallerKey, position: u32, wait: Option<Duration>) {
        let Some(id) = self.live_queue_call(caller) else {
            return;
        };
        let (music, tenant) = match self.calls.get(&id) {
            Some(e) => (
                e.answered_here
                    && e.queue
                        .as_ref()
                        .is_some_and(|q| q.playing == Playing::Music),
                e.tenant,
            ),
            None => return,
        };
        // Only between pieces of music: the greeting and a ringing agent go first.
        if !music {
            return;
        }
        use crate::media::prompt::announce;
        let mut names: Vec<String> = announce::queue_position(position)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if let Some(w) = wait {
            let secs = u32::try_from(w.as_secs()).unwrap_or(u32::MAX);
            names.extend(announce::expected_wait(secs).into_iter().map(str::to_owned));
        }
        self.play(now, id, Playing::Announcement, names, false, tenant);
    }

    fn overflow(
        &mut self,
        now: Now,
        caller: CallerKey,
        reason: OverflowReason,
        target: OverflowTarget,
    ) {
        let id = CallId(caller.0);
        let text = target_text(&target, &self.queues);
        tracing::info!(call = id.0, ?reason, target = %text, "queue overflow");
        self.close_visit(now, id, VisitOutcome::Overflowed, Some((reason, text)));
        if let OverflowTarget::Queue(q) = target {
            // The queue engine already moved the caller there.
            self.open_visit(now, id, q);
            return;
        }
        if let Some(q) = self.calls.get_mut(&id).and_then(|e| e.queue.as_mut()) {
            q.queued = false;
        }
        if self.live_queue_call(caller).is_none() {
            return;
        }
        let targets = match &target {
            OverflowTarget::User(user) => match self.queue_dir.users.get(user) {
                Some(u) => {
                    self.plan_for_user(*user, &u.aor, u.mobile.as_deref(), now)
                        .targets
                }
                None => Vec::new(),
            },
            OverflowTarget::Number(n) => self.carrier_target(n).into_iter().collect(),
            OverflowTarget::Announcement(prompt) => {
                let prompt = prompt.clone().unwrap_or_else(|| ALL_BUSY.to_owned());
                self.play_and_hang_up(now, id, vec![prompt]);
                return;
            }
            OverflowTarget::Queue(_) => return,
        };
        if targets.is_empty() || !self.ring(now, id, targets) {
            self.end_unserved(now, id, None);
            return;
        }
        self.arm(now.mono + OVERFLOW_RING_TIME, id, CallTimer::NoAnswer);
    }

    /// Nobody can take the call: an answered caller hears why and is hung up; a ringing
    /// one (answer group) gets 480.
    fn end_unserved(&mut self, now: Now, id: CallId, prompt: Option<String>) {
        if self.live_queue_call(CallerKey(id.0)).is_none() {
            return;
        }
        let answered = self.caller_answered(id);
        if answered {
            self.play_and_hang_up(now, id, vec![prompt.unwrap_or_else(|| ALL_BUSY.into())]);
            return;
        }
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let cancel = entry.call.cancel_all();
        entry
            .call
            .end(Outcome::Missed, "no agent answered", Self::now_ms(now));
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        self.final_to_caller(now, id, 480, "Temporarily Unavailable - No Agent Available");
        self.finish_if_done(id);
    }

    /// A branch of a queue call answered (it already won the call): the caller is
    /// bridged to it.
    pub(super) fn queue_branch_answered(
        &mut self,
        now: Now,
        id: CallId,
        bid: BranchId,
        resp: &crate::sip::message::Message,
    ) {
        let Some(e) = self.calls.get(&id) else {
            return;
        };
        let Some(q) = e.queue.as_ref() else {
            return;
        };
        let agent = q.agent_of(bid);
        if e.answered_here {
            if !resp.body.is_empty() && !self.take_answer(id, MediaLeg::Callee, &resp.body) {
                tracing::warn!(call = id.0, "agent's SDP answer is unusable; no media");
            }
            let session = self
                .calls
                .get(&id)
                .and_then(|e| e.media.as_ref())
                .map(|m| m.session);
            if let Some(session) = session {
                self.outputs.push_back(Output::Media(MediaCommand::Source {
                    session,
                    leg: MediaLeg::Caller,
                    source: LegSource::Relay,
                }));
            }
        } else {
            self.answer_caller(now, id, resp);
        }
        let now_ms = Self::now_ms(now);
        let user = self
            .calls
            .get(&id)
            .and_then(|e| e.call.branch(bid))
            .and_then(|b| b.target.user_id);
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(q) = entry.queue.as_mut() {
            q.playing = Playing::Connected;
            q.offers.retain(|(a, _)| Some(*a) != agent);
        }
        match agent {
            Some(agent) => {
                entry.callee_user = Some(agent.0);
                if let Some(q) = entry.queue.as_mut() {
                    q.agent = Some(agent);
                    q.queued = false;
                    q.record_offer_result(agent, OfferResult::Answered);
                    if let Some(v) = q.open_visit() {
                        v.answered_ms = Some(now_ms);
                        v.answered_by = Some(agent.0);
                        v.outcome = Some(VisitOutcome::Answered);
                        v.left_ms = Some(now_ms);
                    }
                }
                self.queues.offer_answered(now, CallerKey(id.0), agent);
            }
            None => {
                // An overflow target (a user or an external number) answered.
                if let Some(u) = user {
                    entry.callee_user = Some(u);
                    entry.busy_users.push(u);
                    self.queues.agent_call_started(now, AgentId(u));
                }
            }
        }
        self.run_queue_actions(now);
    }

    /// A branch of a queue call failed: when it was the agent's last ringing terminal,
    /// the offer failed; when an overflow target failed entirely, nobody can take it.
    pub(super) fn queue_branch_failed(
        &mut self,
        now: Now,
        id: CallId,
        bid: BranchId,
        all_failed: bool,
    ) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let live: Vec<bool> = entry
            .call
            .branches
            .iter()
            .map(|b| b.state.is_live())
            .collect();
        let Some(q) = entry.queue.as_mut() else {
            return;
        };
        match q.agent_of(bid) {
            Some(agent) => {
                let still_ringing =
                    q.offers
                        .iter()
                        .find(|(a, _)| *a == agent)
                        .is_some_and(|(_, bids)| {
                            bids.iter()
                                .any(|b| live.get(b.0 as usize).copied().unwrap_or(false))
                        });
                if still_ringing {
                    return;
                }
                q.offers.retain(|(a, _)| *a != agent);
                q.record_offer_result(agent, OfferResult::Refused);
                self.queues
                    .offer_failed(now, CallerKey(id.0), agent, OfferFailure::Refused);
                self.run_queue_actions(now);
            }
            None => {
                if all_failed && !q.queued && entry.call.state != CallState::Ended {
                    self.end_unserved(now, id, None);
                }
            }
        }
    }

    /// The ring time of an overflow target ran out.
    pub(super) fn queue_no_answer(&mut self, now: Now, id: CallId) {
        let queued = self
            .calls
            .get(&id)
            .and_then(|e| e.queue.as_ref())
            .is_some_and(|q| q.queued);
        if queued {
            return;
        }
        let cancel = match self.calls.get_mut(&id) {
            Some(e) => e.call.cancel_all(),
            None => return,
        };
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        self.end_unserved(now, id, None);
    }

    /// A call is ending: its caller leaves the queue engine, the busy agents are freed,
    /// its visits are closed. Runs once per call, before its report.
    pub(super) fn close_queue_side(&mut self, id: CallId) {
        let Some(now) = self.last_now else {
            return;
        };
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let busy = std::mem::take(&mut entry.busy_users);
        let ended_by_switch = entry
            .call
            .end_reason
            .as_deref()
            .is_some_and(|r| r.contains("switch") || r.contains("media"));
        let (queued, agent) = match entry.queue.as_mut() {
            Some(q) if !q.closed => {
                q.closed = true;
                (std::mem::take(&mut q.queued), q.agent)
            }
            _ => (false, None),
        };
        for user in busy {
            self.queues.agent_call_ended(now, AgentId(user), false);
        }
        if let Some(agent) = agent {
            self.queues.agent_call_ended(now, agent, true);
        }
        if queued {
            self.queues.caller_left(now, CallerKey(id.0));
        }
        let outcome = if ended_by_switch {
            VisitOutcome::EndedBySwitch
        } else {
            VisitOutcome::Abandoned
        };
        self.close_visit(now, id, outcome, None);
        self.run_queue_actions(now);
    }

    /// A user's call started (as the caller) or was answered (as the callee): the user
    /// is busy for the queue engine until the call ends.
    pub(super) fn user_busy(&mut self, now: Now, id: CallId, user: i64) {
        if let Some(e) = self.calls.get_mut(&id) {
            e.busy_users.push(user);
            self.queues.agent_call_started(now, AgentId(user));
        }
    }

    /// A feature code dialled by a user: sets the user's queue presence, tells the
    /// store, and answers with a confirmation. Returns the prompt to confirm with, or
    /// `None` for an unknown code.
    pub(super) fn apply_feature_code(
        &mut self,
        now: Now,
        user_id: i64,
        code: &str,
    ) -> Option<&'static str> {
        let (presence, prompt) = feature_code(code)?;
        // *48 resumes only a paused agent; an agent logged out stays out.
        if code == "*48" && !matches!(self.queues.presence(AgentId(user_id)), Presence::Paused(_)) {
            return Some(prompt);
        }
        tracing::info!(
            user = user_id,
            ?presence,
            code,
            "agent presence by feature code"
        );
        self.queues
            .set_presence(now, AgentId(user_id), presence.clone());
        self.outputs
            .push_back(Output::AgentPresence { user_id, presence });
        self.run_queue_actions(now);
        Some(prompt)
    }
}
