//! The back-to-back user agent: turns SIP events into call-model events and call-model
//! decisions into SIP messages. Every call has an inbound leg (the caller's INVITE, a
//! server transaction, later a UAS dialog) and outbound branches (client transactions,
//! the winner's UAC dialog). Nothing of one side is forwarded to the other unless it is
//! rebuilt here: a B2BUA hides each side from the other.

use super::peer::{Peer, Proto};
use super::{Engine, Output};
use crate::call::model::{
    AnswerAction, BranchId, Call, CallId, Direction, Outcome, ProvisionalAction,
};
use crate::call::plan::{RingPlan, Target, TargetKind};
use crate::sip::dialog::{Dialog, DialogParts};
use crate::sip::ext::diversion::ForwardReason;
use crate::sip::message::{Header, HeaderName, Message, StartLine, Uri};
use crate::sip::transaction::{Disposition, TransactionEvent, TransactionKey};
use crate::sip::Method;
use crate::util::time::Now;
use bytes::Bytes;
use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Which side of a call a dialog or message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg.
    Inbound,
    /// An outbound branch.
    Branch(BranchId),
}

/// Call-level timers (transaction timers live in the transaction table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallTimer {
    /// Ring time is over.
    NoAnswer,
    /// Retransmit our 2xx to the caller until the ACK arrives (RFC 3261 s13.3.1.4).
    Retransmit2xx,
    /// The caller-name lookup's budget is over (the id is the lookup id, not a call).
    LookupDeadline,
    /// The session interval (RFC 4028) may have passed without a refresh.
    SessionExpiry,
    /// Time to send the next OPTIONS ping to the carrier (id unused).
    TrunkPing,
    /// The media plane did not report an ended call's statistics in time: log it
    /// without them.
    MediaStatsDeadline,
    /// The media plane did not open a new call's session in time: refuse the call.
    MediaOpenDeadline,
    /// Retransmit our 2xx to a re-INVITE until its ACK.
    RetransmitReinviteOk,
    /// Retransmit the caller's unacknowledged reliable provisional (RFC 3262).
    RetransmitProvisional,
    /// A queue or conference call's last announcement is over (or should be): hang up.
    QueueHangUp,
    /// A conference caller entered no further PIN digit in time.
    ConferencePin,
    /// The party being added to a call (ad hoc) did not answer in time.
    AdHocNoAnswer,
}

/// The caller's leg.
pub struct InboundLeg {
    /// The INVITE server transaction.
    pub key: TransactionKey,
    /// The INVITE as received (Via stamped).
    pub req: Message,
    /// Where responses go.
    pub peer: Peer,
    /// Our To tag toward the caller (one for all branches: the caller sees one UAS).
    pub to_tag: String,
    /// The UAS dialog, once answered.
    pub dialog: Option<Dialog>,
    /// Our 2xx, kept for retransmission until the ACK.
    pub ok: Option<Bytes>,
    /// Current 2xx retransmission interval.
    pub ok_interval: Duration,
    /// When to give up retransmitting the 2xx (64*T1).
    pub ok_give_up: Option<Instant>,
    /// The caller's ACK for our 2xx arrived.
    pub acked: bool,
    /// Reliable provisionals toward the caller, when it supports `100rel`.
    pub reliable: Option<super::reliable::ReliableProvisionals>,
}

/// One outbound branch's SIP state.
pub struct BranchLeg {
    /// The INVITE client transaction.
    pub key: TransactionKey,
    /// The INVITE we sent.
    pub invite: Message,
    /// Where it went.
    pub peer: Peer,
    /// Its Call-ID.
    pub call_id: Bytes,
    /// Our From tag.
    pub from_tag: String,
    /// A provisional arrived (a CANCEL may be sent, RFC 3261 s9.1).
    pub provisional: bool,
    /// A CANCEL is owed as soon as a provisional arrives.
    pub cancel_owed: bool,
    /// The UAC dialog, once answered.
    pub dialog: Option<Dialog>,
    /// Our ACK for its 2xx, resent when the 2xx is retransmitted.
    pub ack: Option<Bytes>,
    /// The early dialog of reliable provisionals (RFC 3262), for PRACK's CSeq.
    pub early: Option<Dialog>,
    /// The RSeq of the last reliable provisional acknowledged.
    pub last_rseq: Option<u32>,
}

/// A call with its SIP legs.
pub struct CallEntry {
    /// The call model.
    pub call: Call,
    /// The caller's leg.
    pub inbound: InboundLeg,
    /// Outbound branches, index = `BranchId`.
    pub branches: Vec<BranchLeg>,
    /// The tenant, for the call log.
    pub tenant: Option<i64>,
    /// Caller and callee as shown in the call log.
    pub caller: String,
    /// Callee number or extension.
    pub callee: String,
    /// The caller's user, if a user placed the call.
    pub caller_user: Option<i64>,
    /// The callee's user, if the call is to a user.
    pub callee_user: Option<i64>,
    /// The call's end was reported for the call log.
    pub reported: bool,
    /// The caller's name from caller-ID enrichment (shown on the phones, logged).
    pub caller_name: Option<String>,
    /// Hide the caller's number (RFC 3323 anonymous From, Privacy: id).
    pub hide_number: bool,
    /// The callee's forwarding rules.
    pub forwarding: crate::call::plan::Forwarding,
    /// Why the call was forwarded, once it was (at most once per call here).
    pub forwarded: Option<ForwardReason>,
    /// The negotiated session interval (RFC 4028), once answered with one.
    pub session_interval: Option<Duration>,
    /// The session ends here unless a re-INVITE or UPDATE refreshes it first.
    pub session_deadline: Option<Instant>,
    /// The anchored media, when the call's media goes through sentralbord.
    pub media: Option<super::media::CallMedia>,
    /// The media session is being opened: what the call needs then, and its plan.
    pub media_opening: Option<(super::media::MediaOpening, RingPlan)>,
    /// The media plane's statistics once its session closed.
    pub media_stats: Option<(
        crate::media::control::LegStats,
        crate::media::control::LegStats,
    )>,
    /// The call ended and its media session is closing: the call-log report waits for
    /// the statistics (or the deadline).
    pub awaiting_media_stats: bool,
    /// Our 2xx to re-INVITEs, retransmitted until their ACK.
    pub pending_reinvite_ok: Vec<super::reinvite::PendingOk>,
    /// The queue side of a queue, answer-group or feature-code call.
    pub queue: Option<Box<super::queue::QueueCall>>,
    /// Users this call keeps busy for the queue engine (told when it ends).
    pub busy_users: Vec<i64>,
    /// The conference side of a call to a conference room.
    pub conference: Option<Box<super::conference::ConferenceLeg>>,
    /// The switch itself answered the caller (a queue, an announcement, a conference).
    pub answered_here: bool,
    /// The ad-hoc side: keys collected for `*3<number>#`, the third party, the room.
    pub adhoc: Option<Box<super::adhoc::AdHocCall>>,
}

/// A mid-call request relayed from one side's dialog to the other's.
pub struct Relay {
    /// The call.
    pub call: CallId,
    /// The side that sent the request.
    pub from: Side,
    /// The side we sent it on.
    pub to: Side,
    /// The server transaction of the original request.
    pub server_key: TransactionKey,
    /// The original request (responses are built from it).
    pub original: Message,
    /// The request we sent (for the ACK of a non-2xx to a re-INVITE).
    pub sent: Message,
}

/// What the call log needs of a finished call.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedCall {
    /// The call model at its end.
    pub call: Call,
    /// Tenant.
    pub tenant: Option<i64>,
    /// Caller (number or extension).
    pub caller: String,
    /// Caller display name, if known.
    pub caller_name: Option<String>,
    /// Callee.
    pub callee: String,
    /// The users involved: caller, callee.
    pub caller_user: Option<i64>,
    /// The callee user.
    pub callee_user: Option<i64>,
    /// Call-IDs of every leg.
    pub sip_call_ids: Vec<String>,
    /// Why the call was forwarded, if it was.
    pub forwarded: Option<ForwardReason>,
    /// Media statistics per leg (caller, callee) when the call's media was anchored.
    pub media: Option<(
        crate::media::control::LegStats,
        crate::media::control::LegStats,
    )>,
    /// The queues the call went through, for the queue call log.
    pub queue_visits: Vec<super::queue::QueueVisit>,
}

/// A new call's facts, known once the caller is authenticated and the callee resolved.
pub struct NewCall {
    /// The INVITE server transaction.
    pub key: TransactionKey,
    /// The INVITE.
    pub req: Message,
    /// Response destination.
    pub peer: Peer,
    /// Direction.
    pub direction: Direction,
    /// Tenant.
    pub tenant: Option<i64>,
    /// The calling user.
    pub caller_user: Option<i64>,
    /// The called user.
    pub callee_user: Option<i64>,
    /// What the caller dialled.
    pub callee: String,
    /// The caller's number as logged (E.164 for trunk calls); `None`: the From user.
    pub caller: Option<String>,
    /// The caller's name from caller-ID enrichment.
    pub caller_name: Option<String>,
    /// The caller asked to hide its number on this call.
    pub hide_number: bool,
    /// The callee's forwarding rules.
    pub forwarding: crate::call::plan::Forwarding,
    /// A queue, answer-group or feature-code call: its queue side.
    pub queue: Option<super::queue::QueueCall>,
    /// A call to a conference room: its conference side.
    pub conference: Option<super::conference::ConferenceLeg>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses a flow `udp:1.2.3.4:5060` as stored with a binding.
pub fn parse_flow(flow: &str) -> Option<(Proto, SocketAddr)> {
    let (proto, addr) = flow.split_once(':')?;
    let proto = match proto {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        _ => return None,
    };
    Some((proto, addr.parse().ok()?))
}

impl Engine {
    /// The wall clock of `now` in Unix milliseconds.
    pub fn now_ms(now: Now) -> u64 {
        now.wall
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    pub(super) fn random_hex(&mut self) -> String {
        use rand::Rng;
        let v: u64 = self.rng.gen();
        format!("{v:016x}")
    }

    pub(super) fn new_branch(&mut self) -> String {
        format!(
            "{}{}",
            super::pipeline::OUR_BRANCH_PREFIX,
            self.random_hex()
        )
    }

    /// The listener a target is reached from: phones from a phones profile, mobiles
    /// and external numbers from the trunk profile; same transport as the flow.
    pub(super) fn listener_for(
        &self,
        kind: TargetKind,
        proto: Proto,
    ) -> Option<(usize, SocketAddr)> {
        self.cfg
            .listeners
            .iter()
            .enumerate()
            .find(|(_, l)| {
                let fits = match kind {
                    TargetKind::Phone => l.realm.is_some(),
                    TargetKind::Mobile | TargetKind::Trunk => l.trusted.is_some(),
                };
                fits && l.proto == proto
            })
            .map(|(i, l)| (i, l.addr))
    }

    pub(super) fn arm(&mut self, at: Instant, call: CallId, timer: CallTimer) {
        self.call_timers.push(Reverse((at, call.0, timer)));
    }

    /// The next call-timer deadline.
    pub(super) fn next_call_timer(&self) -> Option<Instant> {
        self.call_timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Fires due call timers. Stale entries (their call gone or moved on) are skipped.
    pub(super) fn fire_call_timers(&mut self, now: Now) {
        while let Some(Reverse((at, id, timer))) = self.call_timers.peek().copied() {
            if at > now.mono {
                break;
            }
            self.call_timers.pop();
            let id = CallId(id);
            match timer {
                CallTimer::NoAnswer => self.on_no_answer(now, id),
                CallTimer::LookupDeadline => self.caller_name_found(now, id.0, None),
                CallTimer::TrunkPing => self.ping_trunk(now),
                CallTimer::SessionExpiry => self.on_session_expiry(now, id),
                CallTimer::Retransmit2xx => self.on_retransmit_2xx(now, id),
                CallTimer::RetransmitProvisional => self.on_retransmit_provisional(now, id),
                CallTimer::MediaStatsDeadline => self.media_stats_arrived(id, None),
                CallTimer::RetransmitReinviteOk => self.on_retransmit_reinvite_ok(now, id),
                CallTimer::QueueHangUp if self.is_conference_call(id) => {
                    self.conference_hang_up(now, id, "announcement played");
                }
                CallTimer::QueueHangUp => self.queue_hang_up(now, id),
                CallTimer::ConferencePin => self.conference_pin_timeout(now, id),
                CallTimer::AdHocNoAnswer => self.adhoc_no_answer(now, id),
                CallTimer::MediaOpenDeadline => {
                    let waiting = self
                        .calls
                        .get(&id)
                        .is_some_and(|e| e.media_opening.is_some());
                    if waiting {
                        tracing::error!(call = id.0, "the media plane did not open a session");
                        self.refuse_opening(
                            now,
                            id,
                            503,
                            "Service Unavailable - Media Plane Not Answering",
                        );
                    }
                }
            }
        }
    }

    /// Starts a call: creates the call, its inbound leg, and rings the plan.
    pub(super) fn start_call(&mut self, now: Now, new: NewCall, plan: RingPlan) {
        let id = CallId(self.next_call);
        self.next_call += 1;
        let opening = match self.request_media(
            id,
            &new.req,
            new.peer.listener,
            new.peer.local.ip(),
            &plan.targets,
            new.queue.is_some() || new.conference.is_some(),
        ) {
            Ok(m) => m,
            Err(refusal) => {
                self.refuse(now, &new.req, &new.key, refusal);
                return;
            }
        };
        let call = Call::new(id, new.direction, Self::now_ms(now));
        let to_tag = self.random_hex();
        let first_rseq = {
            use rand::Rng;
            self.rng.gen_range(1..=(1u32 << 20))
        };
        let reliable = super::reliable::ReliableProvisionals::for_invite(&new.req, first_rseq);
        let caller_name = new.caller_name.clone();
        let caller = new
            .caller
            .clone()
            .or_else(|| {
                new.req
                    .from()
                    .ok()
                    .and_then(|f| f.uri.user.map(|u| text(&u)))
            })
            .unwrap_or_default();
        let inbound = InboundLeg {
            key: new.key.clone(),
            req: new.req,
            peer: new.peer,
            to_tag,
            dialog: None,
            ok: None,
            ok_interval: self.cfg.timers.t1,
            ok_give_up: None,
            acked: false,
            reliable,
        };
        self.calls_by_server_key.insert(new.key, id);
        let entry = CallEntry {
            call,
            inbound,
            branches: Vec::new(),
            tenant: new.tenant,
            caller,
            callee: new.callee,
            caller_user: new.caller_user,
            callee_user: new.callee_user,
            reported: false,
            caller_name,
            hide_number: new.hide_number,
            forwarding: new.forwarding,
            forwarded: None,
            session_interval: None,
            session_deadline: None,
            media: None,
            media_opening: None,
            media_stats: None,
            awaiting_media_stats: false,
            pending_reinvite_ok: Vec::new(),
            queue: new.queue.map(Box::new),
            busy_users: Vec::new(),
            conference: new.conference.map(Box::new),
            answered_here: false,
            adhoc: None,
        };
        self.calls.insert(id, entry);
        if let Some(user) = new.caller_user {
            self.user_busy(now, id, user);
        }
        match opening {
            // Ringing starts once the media plane has bound the call's ports.
            Some(opening) => {
                if let Some(e) = self.calls.get_mut(&id) {
                    e.media_opening = Some((opening, plan));
                }
                self.arm(
                    now.mono + super::media::MEDIA_OPEN_WAIT,
                    id,
                    CallTimer::MediaOpenDeadline,
                );
            }
            None => self.ring_call(now, id, plan),
        }
    }

    /// Rings a new call's plan (after unconditional forwarding) and arms its ring time.
    pub(super) fn ring_call(&mut self, now: Now, id: CallId, plan: RingPlan) {
        let Some(entry) = self.calls.get(&id) else {
            return;
        };
        if entry.queue.is_some() {
            self.enter_first_queue(now, id);
            return;
        }
        if entry.conference.is_some() {
            self.enter_conference(now, id);
            return;
        }
        let always = entry.forwarding.always.clone();
        // A call to a user rings for the user's ring time, whether or not a no-answer
        // forwarding target follows it.
        let ring_time = match entry.callee_user {
            Some(_) => entry.forwarding.no_answer_after,
            None => plan.no_answer,
        };
        if let Some(target) = always {
            if self.forward(now, id, ForwardReason::Unconditional, &target) {
                return;
            }
        }
        if !self.ring(now, id, plan.targets) {
            // Nothing to ring (no registered phone, no mobile): the no-answer forwarding
            // applies; without it the call failed (no terminal could be reached).
            self.give_up(now, id, 480, Some(Outcome::Failed));
            return;
        }
        self.arm(now.mono + ring_time, id, CallTimer::NoAnswer);
    }

    /// Starts one branch per target; false when none could be started.
    pub(super) fn ring(&mut self, now: Now, id: CallId, targets: Vec<Target>) -> bool {
        let Some(mut entry) = self.calls.remove(&id) else {
            return false;
        };
        let mut started = false;
        for target in targets {
            if let Some(leg) = self.send_branch_invite(now, id, &mut entry, &target) {
                let bid = entry.call.add_branch(target, Self::now_ms(now));
                self.calls_by_client_key.insert(leg.key.clone(), (id, bid));
                entry.branches.push(leg);
                started = true;
            }
        }
        self.calls.insert(id, entry);
        started
    }

    /// Forwards a call (once; within the hop limit): rings the forwarding target with
    /// History-Info and Diversion on the new INVITEs. False when it could not.
    fn forward(
        &mut self,
        now: Now,
        id: CallId,
        reason: ForwardReason,
        target: &crate::call::plan::ForwardTarget,
    ) -> bool {
        use crate::call::plan::{ForwardTarget, MAX_FORWARD_HOPS};
        let Some(entry) = self.calls.get_mut(&id) else {
            return false;
        };
        if entry.forwarded.is_some()
            || crate::sip::ext::diversion::forwarding_hops(&entry.inbound.req) >= MAX_FORWARD_HOPS
        {
            return false;
        }
        entry.forwarded = Some(reason);
        let targets = match target {
            ForwardTarget::Number(n) => self.carrier_target(n).into_iter().collect(),
            ForwardTarget::User {
                user_id,
                aor,
                mobile,
            } => {
                self.plan_for_user(*user_id, aor, mobile.as_deref(), now)
                    .targets
            }
        };
        if targets.is_empty() || !self.ring(now, id, targets) {
            return false;
        }
        self.arm(
            now.mono + crate::call::plan::DEFAULT_NO_ANSWER,
            id,
            CallTimer::NoAnswer,
        );
        true
    }

    /// No branch is left: forward when a rule says so, else answer the caller `code` and
    /// end the call (with `outcome`, or the one `code` implies).
    fn give_up(&mut self, now: Now, id: CallId, code: u16, outcome: Option<Outcome>) {
        let Some(entry) = self.calls.get(&id) else {
            return;
        };
        if entry.call.state == crate::call::model::CallState::Ended {
            self.finish_if_done(id);
            return;
        }
        let rule = match code {
            486 | 600 => entry
                .forwarding
                .busy
                .clone()
                .map(|t| (ForwardReason::Busy, t)),
            _ => entry
                .forwarding
                .no_answer
                .clone()
                .map(|t| (ForwardReason::NoAnswer, t)),
        };
        if let Some((reason, target)) = rule {
            if self.forward(now, id, reason, &target) {
                return;
            }
        }
        if let Some(entry) = self.calls.get_mut(&id) {
            let outcome = outcome.unwrap_or_else(|| crate::call::model::unanswered_outcome(code));
            entry
                .call
                .end(outcome, format!("{code}"), Self::now_ms(now));
        }
        self.final_to_caller(now, id, code, reason_for(code));
        self.finish(id);
    }

    /// Builds and sends the INVITE of one branch.
    fn send_branch_invite(
        &mut self,
        now: Now,
        _id: CallId,
        entry: &mut CallEntry,
        target: &Target,
    ) -> Option<BranchLeg> {
        let (proto, remote) = parse_flow(&target.flow)?;
        let (listener, local) = self.listener_for(target.kind, proto)?;
        let uri = Uri::parse(Bytes::from(target.uri.clone())).ok()?;
        let branch = self.new_branch();
        let from_tag = self.random_hex();
        let call_id = Bytes::from(format!("{}@sentralbord", self.random_hex()));
        let a = &entry.inbound.req;
        let max_forwards = a
            .max_forwards()
            .ok()
            .flatten()
            .unwrap_or(70)
            .saturating_sub(1);
        let from = a.from().ok();
        // The enriched name wins over whatever the caller sent as its display name.
        let display = match &entry.caller_name {
            Some(name) => format!("{} ", crate::sip::ext::quoted_display(name)),
            None => from
                .as_ref()
                .and_then(|f| f.display.as_ref())
                .map(|d| format!("{} ", crate::sip::ext::quoted_display(&text(d))))
                .unwrap_or_default(),
        };
        let from_user = if entry.caller.is_empty() {
            "anonymous".to_string()
        } else {
            entry.caller.clone()
        };
        let realm = self.our_domain(listener, local);
        // Toward the carrier the To is the number called there; toward a phone, what the
        // caller dialled.
        let to_uri = if target.kind == TargetKind::Phone {
            a.request_uri().map(|u| text(&u.raw)).unwrap_or_default()
        } else {
            target.uri.clone()
        };
        let mut m = Message::request(Method::Invite, uri);
        m.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {local};branch={branch};rport",
                proto.via_token()
            ),
        );
        m.push(HeaderName::MaxForwards, max_forwards.to_string());
        m.push(
            HeaderName::From,
            format!("{display}<sip:{from_user}@{realm}>;tag={from_tag}"),
        );
        m.push(HeaderName::To, format!("<{to_uri}>"));
        m.push(HeaderName::CallId, call_id.clone());
        m.push(HeaderName::CSeq, "1 INVITE");
        m.push(HeaderName::Contact, contact_for(local, proto));
        m.push(HeaderName::Allow, super::pipeline::ALLOW);
        // Session timers (RFC 4028) are negotiated end to end through the B2BUA.
        for name in [HeaderName::SessionExpires, HeaderName::MinSe] {
            if let Some(h) = a.header(&name) {
                m.headers.push(Header::new(name, h.value.clone()));
            }
        }
        crate::sip::ext::session_timer::add_supported_timer(&mut m);
        if let Some(reason) = entry.forwarded {
            // RFC 7044 / RFC 5806: say where the call was forwarded from and why.
            use crate::sip::ext::diversion;
            if let (Some(orig), Ok(to)) = (
                entry.inbound.req.request_uri().cloned(),
                Uri::parse(Bytes::from(target.uri.clone())),
            ) {
                let _ = diversion::append_history_hop(&mut m, &orig, &to, reason);
                let _ = diversion::prepend_diversion(&mut m, &text(&orig.raw), reason);
            }
        }
        if target.kind != TargetKind::Phone {
            // The carrier may send reliable provisionals (183 with early media): we PRACK them.
            crate::sip::ext::rseq::add_supported_100rel(&mut m);
            assert_identity_to_carrier(&mut m, &from_user, &realm, &from_tag, entry.hide_number);
        } else if entry.hide_number {
            // A caller who withheld its number (RFC 3323 Privacy: id) is shown to our
            // phones as anonymous.
            let _ = crate::sip::ext::identity::set_anonymous_from(&mut m, &from_tag);
        }
        if let Some(media) = entry.media.as_ref() {
            // Anchored: every branch gets our offer, with our ports.
            m.push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            m.body = media.callee_offer_body.clone();
        } else {
            if let Some(ct) = a.header(&HeaderName::ContentType) {
                m.headers
                    .push(Header::new(HeaderName::ContentType, ct.value.clone()));
            }
            m.body = a.body.clone();
        }
        let peer = Peer {
            proto,
            remote,
            local,
            conn: None,
            listener,
        };
        self.start_branch(now, m, branch, peer, call_id, from_tag)
    }

    /// Our domain in the From of an INVITE sent from `listener`: toward a phone the phones
    /// realm, toward the carrier our own address (IPv6 in brackets).
    pub(super) fn our_domain(&self, listener: usize, local: SocketAddr) -> String {
        let domain = match self
            .cfg
            .listeners
            .get(listener)
            .and_then(|l| l.realm.clone())
        {
            Some(realm) => realm,
            None => local.ip().to_string(),
        };
        if domain.contains(':') {
            format!("[{domain}]")
        } else {
            domain
        }
    }

    /// Starts the client transaction of a branch's INVITE `m` (Via `branch`, Call-ID
    /// `call_id`, From tag `from_tag`) toward `peer`; the branch's leg, or `None` when the
    /// transaction cannot start.
    pub(super) fn start_branch(
        &mut self,
        now: Now,
        m: Message,
        branch: String,
        peer: Peer,
        call_id: Bytes,
        from_tag: String,
    ) -> Option<BranchLeg> {
        let key = TransactionKey::client(Bytes::from(branch), Method::Invite);
        self.txns
            .start_client_invite(
                now.mono,
                key.clone(),
                peer,
                m.encode(),
                peer.proto.is_reliable(),
            )
            .ok()?;
        Some(BranchLeg {
            key,
            invite: m,
            peer,
            call_id,
            from_tag,
            provisional: false,
            cancel_owed: false,
            dialog: None,
            ack: None,
            early: None,
            last_rseq: None,
        })
    }

    /// A response arrived: hand it to its client transaction, then to its call.
    pub(super) fn handle_response(&mut self, now: Now, resp: Message) {
        let (Some(code), Ok(via), Ok(cseq)) = (resp.status(), resp.top_via(), resp.cseq()) else {
            return;
        };
        let Some(branch) = via.branch() else { return };
        let key = TransactionKey::client(Bytes::copy_from_slice(branch), cseq.method.clone());
        if !self.txns.contains(&key) {
            // A 2xx retransmitted after its transaction ended (RFC 6026): ACK it again.
            if (200..300).contains(&code) && cseq.method == Method::Invite {
                self.reack(&resp);
            }
            return;
        }
        let ack = if cseq.method == Method::Invite && code >= 300 && self.relays.contains_key(&key)
        {
            self.relays.get(&key).map(|r| non_2xx_ack(&r.sent, &resp))
        } else if cseq.method == Method::Invite && code >= 300 && self.adhoc.owns_client_key(&key) {
            self.adhoc_non_2xx_ack(&key, &resp)
        } else if cseq.method == Method::Invite && code >= 300 {
            self.calls_by_client_key
                .get(&key)
                .and_then(|(c, b)| self.calls.get(c).and_then(|e| e.branches.get(b.0 as usize)))
                .map(|leg| non_2xx_ack(&leg.invite, &resp))
        } else {
            None
        };
        let disposition = self
            .txns
            .handle_response(now.mono, &key, code, || ack.unwrap_or_default());
        if disposition != Ok(Disposition::PassUp) {
            return;
        }
        if self.relays.contains_key(&key) {
            self.on_relay_response(now, &key, &resp);
            return;
        }
        if self.trunk.ping.as_ref() == Some(&key) && code >= 200 {
            self.trunk_state(true);
            return;
        }
        if self.adhoc.owns_client_key(&key) {
            self.adhoc_response(now, &key, &resp);
            return;
        }
        let Some(&(id, bid)) = self.calls_by_client_key.get(&key) else {
            return;
        };
        if cseq.method != Method::Invite {
            return;
        }
        match code {
            100 => {}
            101..=199 => self.on_branch_provisional(now, id, bid, &resp),
            200..=299 => self.on_branch_answer(now, id, bid, &resp),
            _ => self.on_branch_failed(now, id, bid, code),
        }
    }

    fn reack(&mut self, resp: &Message) {
        let (Some(call_id), Ok(from)) = (resp.call_id(), resp.from()) else {
            return;
        };
        let Some(tag) = from.tag() else { return };
        let Some(&(id, Side::Branch(bid))) = self
            .calls_by_dialog
            .get(&(call_id.clone(), Bytes::copy_from_slice(tag)))
        else {
            return;
        };
        let Some(leg) = self
            .calls
            .get(&id)
            .and_then(|e| e.branches.get(bid.0 as usize))
        else {
            return;
        };
        if let Some(ack) = leg.ack.clone() {
            self.outputs.push_back(Output::Transmit {
                data: ack,
                peer: leg.peer,
            });
        }
    }

    fn on_branch_provisional(&mut self, now: Now, id: CallId, bid: BranchId, resp: &Message) {
        let with_sdp = !resp.body.is_empty();
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = entry.branches.get_mut(bid.0 as usize) else {
            return;
        };
        leg.provisional = true;
        // RFC 3262: a reliable provisional is acknowledged with PRACK in its early dialog;
        // one whose RSeq is not the next is a retransmission and is not processed again.
        if crate::sip::ext::rseq::requires_100rel(resp) {
            let Ok(Some(rseq)) = crate::sip::ext::rseq::rseq(resp) else {
                return;
            };
            if leg.last_rseq.is_some_and(|last| rseq <= last) {
                return;
            }
            leg.last_rseq = Some(rseq);
            if leg.early.is_none() {
                leg.early = uac_dialog(&leg.invite, resp);
            }
            let invite_cseq = leg.invite.cseq().map(|c| c.seq).unwrap_or(1);
            let peer = leg.peer;
            if let Some(early) = leg.early.as_mut() {
                if let Ok(seq) = early.next_local_cseq() {
                    let branch = format!(
                        "{}{:08x}{}",
                        super::pipeline::OUR_BRANCH_PREFIX,
                        rseq,
                        leg.from_tag
                    );
                    let mut prack = build_in_dialog(early, Method::Prack, seq, &peer, &branch);
                    let rack = crate::sip::ext::rseq::RAck {
                        rseq,
                        cseq: invite_cseq,
                        method: Method::Invite,
                    };
                    crate::sip::ext::rseq::set_rack(&mut prack, &rack);
                    let key = TransactionKey::client(Bytes::from(branch), Method::Prack);
                    let _ = self.txns.start_client_non_invite(
                        now.mono,
                        key,
                        peer,
                        prack.encode(),
                        peer.proto.is_reliable(),
                    );
                }
            }
        }
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = entry.branches.get_mut(bid.0 as usize) else {
            return;
        };
        let owed = std::mem::take(&mut leg.cancel_owed);
        if owed {
            self.send_cancel(now, id, bid);
            return;
        }
        // A queue caller hears our greeting and music (or its own ringing), never an
        // agent's provisional responses.
        let queue_call = entry.queue.is_some();
        if entry.call.on_provisional(bid, with_sdp) == ProvisionalAction::Relay && !queue_call {
            let code = resp.status().unwrap_or(180);
            let reliable = self
                .calls
                .get(&id)
                .is_some_and(|e| e.inbound.reliable.is_some());
            let anchored = if with_sdp {
                self.callee_sdp_for_caller(id, &resp.body, reliable)
            } else {
                None
            };
            if let Some(mut r) = self.response_to_caller(id, code, reason_of(resp)) {
                match anchored {
                    Some(Some(sdp)) => super::media::set_sdp_body(&mut r, &sdp),
                    Some(None) => {}
                    None if with_sdp => copy_body(resp, &mut r),
                    None => {}
                }
                self.provisional_to_caller(now, id, code, r);
            }
        }
    }

    fn on_branch_answer(&mut self, now: Now, id: CallId, bid: BranchId, resp: &Message) {
        let now_ms = Self::now_ms(now);
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let action = entry.call.on_answer(bid, now_ms);
        // Whatever happens next, this 2xx is acknowledged and its dialog exists.
        let Some(leg) = entry.branches.get_mut(bid.0 as usize) else {
            return;
        };
        let Some(mut dialog) = uac_dialog(&leg.invite, resp) else {
            return;
        };
        // PRACKs of the early dialog used CSeq numbers: later requests continue after them.
        if let Some(used) = leg.early.as_ref().and_then(|e| e.local_cseq()) {
            while dialog.local_cseq().is_some_and(|c| c < used) {
                if dialog.next_local_cseq().is_err() {
                    break;
                }
            }
        }
        let ack = build_in_dialog(
            &dialog,
            Method::Ack,
            1,
            &leg.peer,
            &format!("{}{}", super::pipeline::OUR_BRANCH_PREFIX, leg.from_tag),
        );
        let ack_bytes = ack.encode();
        leg.ack = Some(ack_bytes.clone());
        let peer = leg.peer;
        let dkey = (leg.call_id.clone(), Bytes::from(leg.from_tag.clone()));
        leg.dialog = Some(dialog);
        self.outputs.push_back(Output::Transmit {
            data: ack_bytes,
            peer,
        });
        self.calls_by_dialog.insert(dkey, (id, Side::Branch(bid)));
        match action {
            AnswerAction::HangUp => self.send_bye(now, id, Side::Branch(bid)),
            AnswerAction::Bridge { cancel } => {
                for c in cancel {
                    self.send_cancel(now, id, c);
                }
                if self.is_queue_call(id) {
                    self.queue_branch_answered(now, id, bid, resp);
                    return;
                }
                self.answer_caller(now, id, resp);
                let user = self
                    .calls
                    .get(&id)
                    .and_then(|e| e.call.branch(bid))
                    .and_then(|b| b.target.user_id);
                if let Some(user) = user {
                    self.user_busy(now, id, user);
                }
            }
        }
    }

    /// Sends our 2xx to the caller and creates the caller's dialog.
    /// A session timer the caller asked for that the callee did not take up (RFC 4028
    /// s9: we are the caller's UAS and support timers): the caller's interval with the
    /// caller as refresher. Not when the caller wants us to refresh (we do not yet).
    pub(super) fn caller_refreshed_session(
        &self,
        id: CallId,
    ) -> Option<crate::sip::ext::session_timer::SessionExpires> {
        use crate::sip::ext::session_timer::{self as st, Refresher};
        let invite = &self.calls.get(&id)?.inbound.req;
        if !st::supports_timer(invite) {
            return None;
        }
        let asked = st::session_expires(invite).ok().flatten()?;
        if asked.refresher == Some(Refresher::Uas) {
            return None;
        }
        Some(st::SessionExpires {
            delta: asked.delta,
            refresher: Some(Refresher::Uac),
        })
    }

    pub(super) fn answer_caller(&mut self, now: Now, id: CallId, resp: &Message) {
        if self.hold_answer_for_prack(id, resp) {
            return;
        }
        let anchored = if resp.body.is_empty() {
            self.caller_sdp_again(id)
        } else {
            self.callee_sdp_for_caller(id, &resp.body, true)
        };
        let Some(mut ok) = self.response_to_caller(id, 200, "OK") else {
            return;
        };
        match anchored {
            Some(Some(sdp)) => super::media::set_sdp_body(&mut ok, &sdp),
            Some(None) => {}
            None => copy_body(resp, &mut ok),
        }
        // The callee's session interval goes to the caller; with it, `Require: timer` when
        // the caller supports timers (RFC 4028 s9). We end the session if nobody refreshes.
        let session = crate::sip::ext::session_timer::session_expires(resp)
            .ok()
            .flatten()
            .or_else(|| self.caller_refreshed_session(id));
        if let Some(se) = &session {
            ok.push(HeaderName::SessionExpires, se.to_string());
            let caller_supports = self
                .calls
                .get(&id)
                .is_some_and(|e| crate::sip::ext::session_timer::supports_timer(&e.inbound.req));
            if caller_supports {
                crate::sip::ext::session_timer::add_require_timer(&mut ok);
            }
        }
        if let Some(se) = session {
            self.refresh_session(now, id, Duration::from_secs(u64::from(se.delta)));
        }
        self.send_ok_to_caller(now, id, ok);
    }

    /// Sends our 2xx to the caller, creates the caller's dialog and retransmits the 2xx
    /// until the ACK (RFC 3261 s13.3.1.4).
    pub(super) fn send_ok_to_caller(&mut self, now: Now, id: CallId, ok: Message) {
        let bytes = ok.encode();
        let t1 = self.cfg.timers.t1;
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let inbound = &mut entry.inbound;
        let Some(dialog) = uas_dialog(&inbound.req, &inbound.to_tag) else {
            return;
        };
        let dkey = (dialog.id().call_id.clone(), dialog.id().local_tag.clone());
        inbound.dialog = Some(dialog);
        inbound.ok = Some(bytes.clone());
        inbound.ok_interval = t1;
        inbound.ok_give_up = Some(now.mono + 64 * t1);
        let key = inbound.key.clone();
        let reliable = inbound.peer.proto.is_reliable();
        self.calls_by_dialog.insert(dkey, (id, Side::Inbound));
        let _ = self.txns.send_response(now.mono, &key, 200, bytes);
        if !reliable {
            self.arm(now.mono + t1, id, CallTimer::Retransmit2xx);
        }
    }

    fn on_retransmit_2xx(&mut self, now: Now, id: CallId) {
        let t2 = self.cfg.timers.t2;
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let inbound = &mut entry.inbound;
        if inbound.acked {
            return;
        }
        let (Some(ok), Some(give_up)) = (inbound.ok.clone(), inbound.ok_give_up) else {
            return;
        };
        if now.mono >= give_up {
            // RFC 3261 s13.3.1.4: no ACK within 64*T1: confirm and end the session.
            inbound.acked = true;
            self.hang_up_all(now, id, "no ACK from the caller");
            return;
        }
        inbound.ok_interval = (inbound.ok_interval * 2).min(t2);
        let next = now.mono + inbound.ok_interval;
        let peer = inbound.peer;
        self.outputs.push_back(Output::Transmit { data: ok, peer });
        self.arm(next, id, CallTimer::Retransmit2xx);
    }

    fn on_branch_failed(&mut self, now: Now, id: CallId, bid: BranchId, code: u16) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let final_code = entry.call.on_branch_failed(bid, code, Self::now_ms(now));
        if entry.queue.is_some() {
            self.queue_branch_failed(now, id, bid, final_code.is_some());
            return;
        }
        let Some(final_code) = final_code else {
            return;
        };
        self.give_up(now, id, final_code, None);
    }

    fn on_no_answer(&mut self, now: Now, id: CallId) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if entry.call.winner.is_some() || entry.call.state == crate::call::model::CallState::Ended {
            return;
        }
        if entry.queue.is_some() {
            self.queue_no_answer(now, id);
            return;
        }
        let cancel = entry.call.cancel_all();
        let rule = entry.forwarding.no_answer.clone();
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        if let Some(target) = rule {
            if self.forward(now, id, ForwardReason::NoAnswer, &target) {
                return;
            }
        }
        if let Some(entry) = self.calls.get_mut(&id) {
            entry
                .call
                .end(Outcome::Missed, "no answer", Self::now_ms(now));
        }
        self.final_to_caller(now, id, 480, "Temporarily Unavailable - No Answer");
        self.finish_if_done(id);
    }

    /// The caller cancelled its INVITE (the CANCEL was already answered 200 and the
    /// INVITE 487 by the caller).
    pub(super) fn on_caller_cancel(&mut self, now: Now, server_key: &TransactionKey) -> bool {
        let Some(&id) = self.calls_by_server_key.get(server_key) else {
            return false;
        };
        let Some(entry) = self.calls.get_mut(&id) else {
            return false;
        };
        if entry.call.winner.is_some() {
            return true;
        }
        // A caller who hangs up while it rings is a missed call; before any ringing the
        // call was merely cancelled.
        let gave_up = match entry.call.state {
            crate::call::model::CallState::Ringing | crate::call::model::CallState::EarlyMedia => {
                Outcome::Missed
            }
            _ => Outcome::Cancelled,
        };
        let cancel = entry.call.cancel_all();
        entry
            .call
            .end(gave_up, "caller cancelled", Self::now_ms(now));
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        self.finish_if_done(id);
        true
    }

    /// CANCEL one branch (RFC 3261 s9.1): only after a provisional; otherwise owed.
    pub(super) fn send_cancel(&mut self, now: Now, id: CallId, bid: BranchId) {
        let Some(leg) = self
            .calls
            .get_mut(&id)
            .and_then(|e| e.branches.get_mut(bid.0 as usize))
        else {
            return;
        };
        if !leg.provisional {
            leg.cancel_owed = true;
            return;
        }
        let cancel = cancel_for(&leg.invite);
        let TransactionKey::Client { branch, .. } = &leg.key else {
            return;
        };
        let key = TransactionKey::client(branch.clone(), Method::Cancel);
        let peer = leg.peer;
        let _ = self.txns.start_client_non_invite(
            now.mono,
            key,
            peer,
            cancel.encode(),
            peer.proto.is_reliable(),
        );
    }

    /// An in-dialog request (To tag present). Returns false when no dialog matches.
    pub(super) fn handle_in_dialog(
        &mut self,
        now: Now,
        req: &Message,
        key: &TransactionKey,
        method: &Method,
    ) -> bool {
        let (Some(call_id), Ok(to)) = (req.call_id(), req.to()) else {
            return false;
        };
        let Some(tag) = to.tag() else { return false };
        if self.adhoc_in_dialog(now, req, key, method) {
            return true;
        }
        let Some(&(id, side)) = self
            .calls_by_dialog
            .get(&(call_id.clone(), Bytes::copy_from_slice(tag)))
        else {
            return false;
        };
        match method {
            Method::Ack => {
                if side == Side::Inbound {
                    if let Some(e) = self.calls.get_mut(&id) {
                        e.inbound.acked = true;
                    }
                }
                if !req.body.is_empty() {
                    self.answer_in_ack(id, side, &req.body);
                }
                if let Ok(cseq) = req.cseq() {
                    self.reinvite_acked(id, side, cseq.seq);
                }
            }
            Method::Bye => {
                let mut ok = Message::response_to(req, 200, "OK", None);
                self.add_common(&mut ok);
                let _ = self.txns.send_response(now.mono, key, 200, ok.encode());
                if self.adhoc_room_of(id).is_some() {
                    // In an ad-hoc room the others stay: only this party leaves.
                    if let Some(d) = self.calls.get_mut(&id).and_then(|e| match side {
                        Side::Inbound => e.inbound.dialog.as_mut(),
                        Side::Branch(b) => e
                            .branches
                            .get_mut(b.0 as usize)
                            .and_then(|l| l.dialog.as_mut()),
                    }) {
                        d.terminate();
                    }
                    self.adhoc_bye(now, id, side);
                    return true;
                }
                let other: Vec<Side> = match side {
                    Side::Inbound => self
                        .calls
                        .get(&id)
                        .and_then(|e| e.call.winner)
                        .map(Side::Branch)
                        .into_iter()
                        .collect(),
                    Side::Branch(_) => vec![Side::Inbound],
                };
                let reason = if side == Side::Inbound {
                    "caller hung up"
                } else {
                    "callee hung up"
                };
                // A caller hanging up before anyone answered (waiting in a queue, answered
                // by the switch) did not have an answered call; its branches stop ringing.
                let mut cancel = Vec::new();
                if let Some(e) = self.calls.get_mut(&id) {
                    let outcome = if e.call.answered_ms.is_some() {
                        Outcome::Answered
                    } else {
                        cancel = e.call.cancel_all();
                        Outcome::Missed
                    };
                    e.call.end(outcome, reason, Self::now_ms(now));
                    if let Some(d) = match side {
                        Side::Inbound => e.inbound.dialog.as_mut(),
                        Side::Branch(b) => e
                            .branches
                            .get_mut(b.0 as usize)
                            .and_then(|l| l.dialog.as_mut()),
                    } {
                        d.terminate();
                    }
                }
                for s in other {
                    self.send_bye(now, id, s);
                }
                for bid in cancel {
                    self.send_cancel(now, id, bid);
                }
                self.finish_if_done(id);
            }
            Method::Prack if side == Side::Inbound => self.on_caller_prack(now, id, req, key),
            _ => self.relay_in_dialog(now, req, key, method, id, side),
        }
        true
    }

    /// Relays a mid-call request (re-INVITE, UPDATE, INFO, ...) to the other side's
    /// dialog as a new request of that dialog; its responses come back the same way.
    fn relay_in_dialog(
        &mut self,
        now: Now,
        req: &Message,
        key: &TransactionKey,
        method: &Method,
        id: CallId,
        side: Side,
    ) {
        let branch = self.new_branch();
        let refuse = |e: &mut Self, code: u16, reason: &'static str| {
            let mut r = Message::response_to(req, code, reason, None);
            e.add_common(&mut r);
            let _ = e.txns.send_response(now.mono, key, code, r.encode());
        };
        if self.answers_in_room(id) {
            // The call's legs are in an ad-hoc room: the other side may have left, and
            // what it hears is the room; its requests are answered here.
            self.answer_in_dialog_here(now, req, key, method, id, side);
            return;
        }
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let target = match side {
            Side::Inbound => match entry.call.winner {
                Some(w) => Side::Branch(w),
                None if entry.answered_here => {
                    self.answer_in_dialog_here(now, req, key, method, id, Side::Inbound);
                    return;
                }
                None => return refuse(self, 481, "Call/Transaction Does Not Exist"),
            },
            Side::Branch(_) => Side::Inbound,
        };
        // RFC 3261 s12.2.2: requests out of CSeq order get 500; a re-INVITE may refresh
        // the sender's target (s12.2).
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let origin = match side {
            Side::Inbound => entry.inbound.dialog.as_mut(),
            Side::Branch(b) => entry
                .branches
                .get_mut(b.0 as usize)
                .and_then(|l| l.dialog.as_mut()),
        };
        let Some(origin) = origin else {
            return refuse(self, 481, "Call/Transaction Does Not Exist");
        };
        if origin.check_remote_cseq(cseq, method).is_err() {
            return refuse(self, 500, "Server Internal Error - CSeq Out Of Order");
        }
        if matches!(method, Method::Invite | Method::Update) {
            if let Some(contact) = first_contact_uri(req) {
                let _ = origin.target_refresh(contact);
            }
        }
        if *method == Method::Invite && self.hold_locally(now, id, side, req, key) {
            return;
        }
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let (dialog, peer) = match target {
            Side::Inbound => (entry.inbound.dialog.as_mut(), entry.inbound.peer),
            Side::Branch(b) => match entry.branches.get_mut(b.0 as usize) {
                Some(l) => (l.dialog.as_mut(), l.peer),
                None => return,
            },
        };
        let Some(dialog) = dialog else {
            return refuse(self, 481, "Call/Transaction Does Not Exist");
        };
        let Ok(seq) = dialog.next_local_cseq() else {
            return refuse(self, 500, "Server Internal Error");
        };
        let mut out = build_in_dialog(dialog, method.clone(), seq, &peer, &branch);
        if matches!(method, Method::Invite | Method::Update) {
            out.push(HeaderName::Contact, contact_for(peer.local, peer.proto));
        }
        // The body and the headers that describe it, or the event package, go across.
        for h in &req.headers {
            let keep = matches!(
                h.name,
                HeaderName::ContentType | HeaderName::Event | HeaderName::Subject
            ) || h.raw_name.eq_ignore_ascii_case(b"Info-Package")
                || h.raw_name.eq_ignore_ascii_case(b"Content-Disposition");
            if keep {
                out.headers.push(h.clone());
            }
        }
        out.body = req.body.clone();
        if matches!(method, Method::Invite | Method::Update) && !req.body.is_empty() {
            match self.translate_offer(id, side, &req.body) {
                Some(Ok(sdp)) => super::media::set_sdp_body(&mut out, &sdp),
                Some(Err(refusal)) => return refuse(self, refusal.code, refusal.reason),
                None => {}
            }
        }
        let ckey = TransactionKey::client(Bytes::from(branch), method.clone());
        let started = if *method == Method::Invite {
            self.txns.start_client_invite(
                now.mono,
                ckey.clone(),
                peer,
                out.encode(),
                peer.proto.is_reliable(),
            )
        } else {
            self.txns.start_client_non_invite(
                now.mono,
                ckey.clone(),
                peer,
                out.encode(),
                peer.proto.is_reliable(),
            )
        };
        if started.is_err() {
            return refuse(self, 500, "Server Internal Error");
        }
        self.relays.insert(
            ckey,
            Relay {
                call: id,
                from: side,
                to: target,
                server_key: key.clone(),
                original: req.clone(),
                sent: out,
            },
        );
    }

    /// A session refresh (or the answer) restarts the session timer (RFC 4028 s10).
    pub(super) fn refresh_session(&mut self, now: Now, id: CallId, interval: Duration) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let deadline = now.mono + interval;
        entry.session_interval = Some(interval);
        entry.session_deadline = Some(deadline);
        self.arm(deadline, id, CallTimer::SessionExpiry);
    }

    fn on_session_expiry(&mut self, now: Now, id: CallId) {
        // Calls the switch answered itself (queues, conferences) expire the same way.
        let expired = self.calls.get(&id).is_some_and(|e| {
            !e.reported
                && (e.call.winner.is_some() || e.answered_here)
                && e.session_deadline.is_some_and(|d| d <= now.mono)
        });
        if expired {
            self.hang_up_all(now, id, "session timer expired");
        }
    }

    /// A response to a relayed mid-call request: pass it back to the side that asked.
    fn on_relay_response(&mut self, now: Now, ckey: &TransactionKey, resp: &Message) {
        let Some(code) = resp.status() else { return };
        if code == 100 {
            return;
        }
        let Some(relay) = self.relays.get(ckey) else {
            return;
        };
        let reason = match &resp.start {
            StartLine::Response { reason, .. } => reason.clone(),
            StartLine::Request { .. } => Bytes::new(),
        };
        let mut r = Message::response_to_with_reason(&relay.original, code, reason, None);
        let invite = relay.original.method() == Some(Method::Invite);
        let (id, from, to, server_key) =
            (relay.call, relay.from, relay.to, relay.server_key.clone());
        let original_cseq = relay.sent.cseq().map(|c| c.seq).unwrap_or(1);
        let local = self.calls.get(&id).map(|e| match from {
            Side::Inbound => (e.inbound.peer.local, e.inbound.peer.proto),
            Side::Branch(b) => e
                .branches
                .get(b.0 as usize)
                .map(|l| (l.peer.local, l.peer.proto))
                .unwrap_or((e.inbound.peer.local, e.inbound.peer.proto)),
        });
        if (101..300).contains(&code) && invite {
            if let Some((addr, proto)) = local {
                r.push(HeaderName::Contact, contact_for(addr, proto));
            }
        }
        let offer_answer = matches!(
            relay_method(resp),
            Some(Method::Invite) | Some(Method::Update)
        ) && (101..300).contains(&code)
            && !resp.body.is_empty();
        let mut ack_sdp = None;
        match offer_answer
            .then(|| self.translate_answer(id, to, &resp.body))
            .flatten()
        {
            Some((for_asker, for_ack)) => {
                if let Some(sdp) = for_asker {
                    super::media::set_sdp_body(&mut r, &sdp);
                }
                ack_sdp = for_ack;
            }
            None => copy_body(resp, &mut r),
        }
        self.add_common(&mut r);
        let bytes = r.encode();
        let _ = self
            .txns
            .send_response(now.mono, &server_key, code, bytes.clone());
        if code < 200 {
            return;
        }
        if invite && (200..300).contains(&code) {
            let requester = self.calls.get(&id).and_then(|e| match from {
                Side::Inbound => Some(e.inbound.peer),
                Side::Branch(b) => e.branches.get(b.0 as usize).map(|l| l.peer),
            });
            let cseq = relay_cseq(&r);
            if let Some(peer) = requester {
                self.track_reinvite_ok(now, id, from, cseq, bytes, peer);
            }
        }
        self.relays.remove(ckey);
        let refreshes = (200..300).contains(&code)
            && matches!(
                relay_method(resp),
                Some(Method::Invite) | Some(Method::Update)
            );
        if refreshes {
            let interval = crate::sip::ext::session_timer::session_expires(resp)
                .ok()
                .flatten()
                .map(|se| Duration::from_secs(u64::from(se.delta)))
                .or_else(|| self.calls.get(&id).and_then(|e| e.session_interval));
            if let Some(interval) = interval {
                self.refresh_session(now, id, interval);
            }
        }
        if invite && (200..300).contains(&code) {
            // Acknowledge the far side's 2xx ourselves and follow its target refresh.
            let branch = self.new_branch();
            if let Some(entry) = self.calls.get_mut(&id) {
                let (dialog, peer) = match to {
                    Side::Inbound => (entry.inbound.dialog.as_mut(), entry.inbound.peer),
                    Side::Branch(b) => match entry.branches.get_mut(b.0 as usize) {
                        Some(l) => (l.dialog.as_mut(), l.peer),
                        None => return,
                    },
                };
                if let Some(d) = dialog {
                    if let Some(contact) = first_contact_uri(resp) {
                        let _ = d.target_refresh(contact);
                    }
                    let mut ack = build_in_dialog(d, Method::Ack, original_cseq, &peer, &branch);
                    if let Some(sdp) = &ack_sdp {
                        super::media::set_sdp_body(&mut ack, sdp);
                    }
                    self.outputs.push_back(Output::Transmit {
                        data: ack.encode(),
                        peer,
                    });
                }
            }
        }
    }

    /// Sends BYE on one side's dialog.
    pub(super) fn send_bye(&mut self, now: Now, id: CallId, side: Side) {
        let branch = self.new_branch();
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let (dialog, peer) = match side {
            Side::Inbound => (entry.inbound.dialog.as_mut(), entry.inbound.peer),
            Side::Branch(b) => match entry.branches.get_mut(b.0 as usize) {
                Some(l) => (l.dialog.as_mut(), l.peer),
                None => return,
            },
        };
        let Some(dialog) = dialog else { return };
        if dialog.state() == crate::sip::dialog::DialogState::Terminated {
            return;
        }
        let Ok(cseq) = dialog.next_local_cseq() else {
            return;
        };
        let bye = build_in_dialog(dialog, Method::Bye, cseq, &peer, &branch);
        dialog.terminate();
        let key = TransactionKey::client(Bytes::from(branch), Method::Bye);
        let _ = self.txns.start_client_non_invite(
            now.mono,
            key,
            peer,
            bye.encode(),
            peer.proto.is_reliable(),
        );
    }

    fn hang_up_all(&mut self, now: Now, id: CallId, reason: &str) {
        let Some(e) = self.calls.get_mut(&id) else {
            return;
        };
        // Answered by the switch but by nobody else (a queue caller): not an answered call.
        let outcome = if e.call.answered_ms.is_some() {
            Outcome::Answered
        } else {
            Outcome::Missed
        };
        let cancel = e.call.cancel_all();
        e.call.end(outcome, reason, Self::now_ms(now));
        let mut sides = vec![Side::Inbound];
        if let Some(w) = e.call.winner {
            sides.push(Side::Branch(w));
        }
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        for s in sides {
            self.send_bye(now, id, s);
        }
        self.finish_if_done(id);
    }

    /// The media of a call failed (RTP stopped, a port could not be bound): an answered
    /// call is hung up on both sides; a ringing one is refused and its branches cancelled.
    pub(super) fn hang_up_for_media(&mut self, now: Now, id: CallId, reason: &'static str) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if entry.call.state == crate::call::model::CallState::Ended {
            return;
        }
        if self.caller_answered(id) {
            self.hang_up_all(now, id, reason);
            return;
        }
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let cancel = entry.call.cancel_all();
        entry.call.end(Outcome::Failed, reason, Self::now_ms(now));
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        self.final_to_caller(now, id, 500, "Server Internal Error - Media Unavailable");
        self.finish_if_done(id);
    }

    /// The media session of a call waiting to ring could not be opened: the caller gets
    /// `code` and the call is logged failed.
    pub(super) fn refuse_opening(&mut self, now: Now, id: CallId, code: u16, reason: &'static str) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if entry.call.state == crate::call::model::CallState::Ended {
            return;
        }
        entry.media_opening = None;
        entry
            .call
            .end(Outcome::Failed, "media unavailable", Self::now_ms(now));
        self.final_to_caller(now, id, code, reason);
        self.finish_if_done(id);
    }

    /// A client transaction reported a timeout or transport error.
    pub(super) fn on_client_event(
        &mut self,
        now: Now,
        key: &TransactionKey,
        event: TransactionEvent,
    ) {
        if self.trunk.ping.as_ref() == Some(key) {
            if matches!(
                event,
                TransactionEvent::Timeout(_) | TransactionEvent::TransportError
            ) {
                self.trunk_state(false);
            }
            return;
        }
        if let Some(relay) = self.relays.get(key) {
            let (server_key, original) = (relay.server_key.clone(), relay.original.clone());
            match event {
                TransactionEvent::Timeout(_) | TransactionEvent::TransportError => {
                    self.relays.remove(key);
                    let mut r = Message::response_to(&original, 408, "Request Timeout", None);
                    self.add_common(&mut r);
                    let _ = self
                        .txns
                        .send_response(now.mono, &server_key, 408, r.encode());
                }
                TransactionEvent::Terminated => {
                    self.relays.remove(key);
                }
                TransactionEvent::SendTrying => {}
            }
            return;
        }
        if self.adhoc.owns_client_key(key) {
            let code = match event {
                TransactionEvent::Timeout(_) => Some(408),
                TransactionEvent::TransportError => Some(503),
                TransactionEvent::Terminated | TransactionEvent::SendTrying => None,
            };
            if code.is_some() || matches!(event, TransactionEvent::Terminated) {
                self.adhoc_client_event(now, key, code);
            }
            return;
        }
        let Some(&(id, bid)) = self.calls_by_client_key.get(key) else {
            return;
        };
        match event {
            TransactionEvent::Timeout(_) => self.on_branch_failed(now, id, bid, 408),
            TransactionEvent::TransportError => self.on_branch_failed(now, id, bid, 503),
            TransactionEvent::Terminated => self.forget_if_quiet(id),
            TransactionEvent::SendTrying => {}
        }
    }

    pub(super) fn response_to_caller(
        &self,
        id: CallId,
        code: u16,
        reason: &'static str,
    ) -> Option<Message> {
        let entry = self.calls.get(&id)?;
        let mut r = Message::response_to(
            &entry.inbound.req,
            code,
            reason,
            Some(&entry.inbound.to_tag),
        );
        if code > 100 && code < 300 {
            let local = entry.inbound.peer.local;
            r.push(
                HeaderName::Contact,
                contact_for(local, entry.inbound.peer.proto),
            );
        }
        self.add_common(&mut r);
        Some(r)
    }

    pub(super) fn send_to_caller(&mut self, now: Now, id: CallId, code: u16, r: Message) {
        let Some(entry) = self.calls.get(&id) else {
            return;
        };
        let key = entry.inbound.key.clone();
        let _ = self.txns.send_response(now.mono, &key, code, r.encode());
    }

    pub(super) fn final_to_caller(
        &mut self,
        now: Now,
        id: CallId,
        code: u16,
        reason: &'static str,
    ) {
        if let Some(rel) = self
            .calls
            .get_mut(&id)
            .and_then(|e| e.inbound.reliable.as_mut())
        {
            rel.settle();
        }
        if let Some(r) = self.response_to_caller(id, code, reason) {
            self.send_to_caller(now, id, code, r);
        }
    }

    pub(super) fn add_common(&self, m: &mut Message) {
        m.headers.push(Header::new(
            HeaderName::Server,
            self.cfg.server_header.clone(),
        ));
    }

    /// Ends the bookkeeping of a call that is over and reports it for the call log.
    pub(super) fn finish_if_done(&mut self, id: CallId) {
        let done = self
            .calls
            .get(&id)
            .is_some_and(|e| e.call.state == crate::call::model::CallState::Ended);
        if done {
            self.finish(id);
        }
    }

    /// Reports an ended call for the call log (once; with its media statistics when
    /// its media was anchored, so after the media plane reported them or their
    /// deadline passed), then forgets it as soon as none of its INVITE transactions is
    /// alive: a branch that answers after the call ended
    /// must still be found, acknowledged and hung up.
    pub(super) fn finish(&mut self, id: CallId) {
        self.adhoc_call_finished(id);
        self.close_queue_side(id);
        self.leave_conference(id);
        self.close_media(id);
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        // Feature-code calls are not calls anyone wants in a call log.
        if entry.queue.as_ref().is_some_and(|q| q.service.is_some()) {
            entry.reported = true;
        }
        if !entry.reported && !entry.awaiting_media_stats {
            entry.reported = true;
            let mut sip_call_ids = vec![entry
                .inbound
                .req
                .call_id()
                .map(|c| text(c))
                .unwrap_or_default()];
            sip_call_ids.extend(entry.branches.iter().map(|l| text(&l.call_id)));
            let caller_name = entry.caller_name.clone().or_else(|| {
                entry
                    .inbound
                    .req
                    .from()
                    .ok()
                    .and_then(|f| f.display.map(|d| text(&d)))
            });
            let report = FinishedCall {
                call: entry.call.clone(),
                tenant: entry.tenant,
                caller: entry.caller.clone(),
                caller_name,
                callee: entry.callee.clone(),
                caller_user: entry.caller_user,
                callee_user: entry.callee_user,
                sip_call_ids,
                forwarded: entry.forwarded,
                media: entry.media_stats,
                queue_visits: entry
                    .queue
                    .as_ref()
                    .map(|q| q.visits.clone())
                    .unwrap_or_default(),
            };
            self.outputs.push_back(Output::CallEnded(Box::new(report)));
        }
        self.forget_if_quiet(id);
    }

    /// Removes an ended, reported call once its INVITE transactions are all gone.
    pub(super) fn forget_if_quiet(&mut self, id: CallId) {
        let Some(entry) = self.calls.get(&id) else {
            return;
        };
        if !entry.reported
            || entry.branches.iter().any(|l| self.txns.contains(&l.key))
            || self.third_leg_ringing(id)
        {
            return;
        }
        let Some(entry) = self.calls.remove(&id) else {
            return;
        };
        self.adhoc_forget(id);
        self.calls_by_server_key.remove(&entry.inbound.key);
        if let Some(d) = &entry.inbound.dialog {
            self.calls_by_dialog
                .remove(&(d.id().call_id.clone(), d.id().local_tag.clone()));
        }
        // The early dialog of reliable provisionals has the same key when answered.
        if let Some(call_id) = entry.inbound.req.call_id() {
            self.calls_by_dialog
                .remove(&(call_id.clone(), Bytes::from(entry.inbound.to_tag.clone())));
        }
        for leg in &entry.branches {
            self.calls_by_dialog
                .remove(&(leg.call_id.clone(), Bytes::from(leg.from_tag.clone())));
            self.calls_by_client_key.remove(&leg.key);
        }
    }

    /// Live calls (for metrics and tests).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Calls not yet ended (ringing or answered).
    pub fn active_calls(&self) -> usize {
        self.calls.values().filter(|e| !e.reported).count()
    }

    /// Shutdown: ends every call still up so none is lost from the call log. Answered
    /// calls get BYE on both legs; ringing ones are cancelled and the caller gets 503.
    pub(super) fn hang_up_everything(&mut self, now: Now) {
        let ids: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, e)| !e.reported)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if self.caller_answered(id) {
                self.hang_up_all(now, id, "switch shut down");
                continue;
            }
            let cancel = match self.calls.get_mut(&id) {
                Some(e) => {
                    let c = e.call.cancel_all();
                    e.call
                        .end(Outcome::Failed, "switch shut down", Self::now_ms(now));
                    c
                }
                None => continue,
            };
            for bid in cancel {
                self.send_cancel(now, id, bid);
            }
            self.final_to_caller(now, id, 503, "Service Unavailable - Shutting Down");
            self.finish(id);
        }
    }
}

/// Our Contact on a listener.
pub(super) fn contact_for(local: SocketAddr, proto: Proto) -> String {
    match proto {
        Proto::Udp => format!("<sip:{local}>"),
        Proto::Tcp => format!("<sip:{local};transport=tcp>"),
    }
}

fn reason_of(resp: &Message) -> &'static str {
    match resp.status() {
        Some(180) => "Ringing",
        Some(181) => "Call Is Being Forwarded",
        Some(182) => "Queued",
        Some(183) => "Session Progress",
        _ => "Progress",
    }
}

fn reason_for(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Call Failed",
    }
}

fn copy_body(from: &Message, to: &mut Message) {
    if from.body.is_empty() {
        return;
    }
    if let Some(ct) = from.header(&HeaderName::ContentType) {
        to.headers
            .push(Header::new(HeaderName::ContentType, ct.value.clone()));
    }
    to.body = from.body.clone();
}

/// The ACK for a non-2xx final response (RFC 3261 s17.1.1.3): same Request-URI, top Via,
/// From, Call-ID and CSeq number as the INVITE, To from the response, Route as sent.
pub(super) fn non_2xx_ack(invite: &Message, resp: &Message) -> Bytes {
    let StartLine::Request { uri, .. } = &invite.start else {
        return Bytes::new();
    };
    let mut ack = Message::request(Method::Ack, uri.clone());
    if let Some(v) = invite.header(&HeaderName::Via) {
        ack.headers.push(v.clone());
    }
    ack.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(h) = invite.header(&name) {
            ack.headers.push(h.clone());
        }
    }
    if let Some(h) = resp.header(&HeaderName::To) {
        ack.headers.push(h.clone());
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    ack.push(HeaderName::CSeq, format!("{seq} ACK"));
    for r in invite.headers_named(&HeaderName::Route) {
        ack.headers.push(r.clone());
    }
    ack.encode()
}

/// Toward the trusted carrier the caller's identity is asserted (RFC 3325); a hidden
/// number keeps the assertion but asks for privacy (RFC 3323) with an anonymous From.
pub(super) fn assert_identity_to_carrier(
    m: &mut Message,
    from_user: &str,
    realm: &str,
    from_tag: &str,
    hide: bool,
) {
    use crate::sip::ext::identity;
    let _ =
        identity::set_asserted_identity(m, None, &format!("sip:{from_user}@{realm};user=phone"));
    if hide {
        let _ = identity::set_anonymous_from(m, from_tag);
        identity::set_privacy(m, identity::PrivacySet::of(&[identity::PrivacyValue::Id]));
    }
}

/// The CANCEL for an INVITE we sent (RFC 3261 s9.1).
pub(super) fn cancel_for(invite: &Message) -> Message {
    let StartLine::Request { uri, .. } = &invite.start else {
        return invite.clone();
    };
    let mut c = Message::request(Method::Cancel, uri.clone());
    if let Some(v) = invite.header(&HeaderName::Via) {
        c.headers.push(v.clone());
    }
    c.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(h) = invite.header(&name) {
            c.headers.push(h.clone());
        }
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    c.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    for r in invite.headers_named(&HeaderName::Route) {
        c.headers.push(r.clone());
    }
    c
}

fn first_contact_uri(m: &Message) -> Option<Bytes> {
    m.contacts().ok()?.into_iter().find_map(|c| match c {
        crate::sip::message::ContactValue::Addr(na) => Some(na.uri.raw),
        crate::sip::message::ContactValue::Star => None,
    })
}

fn strip_tag(value: &[u8]) -> Bytes {
    // The name-addr without header parameters: a dialog's URI side stays tag-free and
    // tags are added when requests are built.
    match crate::sip::message::NameAddr::parse(Bytes::copy_from_slice(value)) {
        Ok(na) => Bytes::from(format!("<{}>", text(&na.uri.raw))),
        Err(_) => Bytes::copy_from_slice(value),
    }
}

/// The UAC dialog a 2xx creates (RFC 3261 s12.1.2).
pub(super) fn uac_dialog(invite: &Message, resp: &Message) -> Option<Dialog> {
    let to = resp.to().ok()?;
    let from = invite.from().ok()?;
    let parts = DialogParts {
        call_id: invite.call_id()?.clone(),
        local_tag: Bytes::copy_from_slice(from.tag()?),
        remote_tag: Bytes::copy_from_slice(to.tag()?),
        local_uri: strip_tag(&invite.header(&HeaderName::From)?.value),
        remote_uri: strip_tag(&resp.header(&HeaderName::To)?.value),
        remote_target: first_contact_uri(resp)?,
        record_route: resp
            .values(&HeaderName::RecordRoute)
            .map(|(_, v)| v)
            .collect(),
        cseq: invite.cseq().ok()?.seq,
        secure: false,
    };
    let mut d = Dialog::new_uac(parts, false).ok()?;
    let _ = d.confirm();
    Some(d)
}

/// The UAS dialog our 2xx creates (RFC 3261 s12.1.1).
fn uas_dialog(invite: &Message, to_tag: &str) -> Option<Dialog> {
    let from = invite.from().ok()?;
    let parts = DialogParts {
        call_id: invite.call_id()?.clone(),
        local_tag: Bytes::from(to_tag.to_string()),
        remote_tag: from.tag().map(Bytes::copy_from_slice).unwrap_or_default(),
        local_uri: strip_tag(&invite.header(&HeaderName::To)?.value),
        remote_uri: strip_tag(&invite.header(&HeaderName::From)?.value),
        remote_target: first_contact_uri(invite)?,
        record_route: invite
            .values(&HeaderName::RecordRoute)
            .map(|(_, v)| v)
            .collect(),
        cseq: invite.cseq().ok()?.seq,
        secure: false,
    };
    let mut d = Dialog::new_uas(parts, false).ok()?;
    let _ = d.confirm();
    Some(d)
}

/// A request inside a dialog (RFC 3261 s12.2.1.1).
pub(super) fn build_in_dialog(
    dialog: &Dialog,
    method: Method,
    cseq: u32,
    peer: &Peer,
    branch: &str,
) -> Message {
    let target = dialog.request_target();
    let uri = Uri::parse(target.request_uri.clone())
        .or_else(|_| Uri::parse(Bytes::from_static(b"sip:invalid")))
        .expect("static fallback URI parses");
    let mut m = Message::request(method.clone(), uri);
    m.push(
        HeaderName::Via,
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            peer.proto.via_token(),
            peer.local
        ),
    );
    m.push(HeaderName::MaxForwards, "70");
    for r in &target.route {
        m.headers.push(Header::new(HeaderName::Route, r.clone()));
    }
    let id = dialog.id();
    m.push(
        HeaderName::From,
        format!("{};tag={}", text(dialog.local_uri()), text(&id.local_tag)),
    );
    let remote_tag = if id.remote_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={}", text(&id.remote_tag))
    };
    m.push(
        HeaderName::To,
        format!("{}{remote_tag}", text(dialog.remote_uri())),
    );
    m.push(HeaderName::CallId, id.call_id.clone());
    m.push(HeaderName::CSeq, format!("{cseq} {method}"));
    m
}

/// The carrier trunk's reachability, from OPTIONS pings (a keepalive any carrier answers).
#[derive(Debug, Default)]
pub struct TrunkHealth {
    /// The transaction of the ping in flight.
    pub ping: Option<TransactionKey>,
    /// The carrier answered the last ping (assumed up until a ping times out).
    pub down: bool,
    /// The first ping is scheduled.
    pub armed: bool,
}

impl Engine {
    /// Schedules the first ping once the engine knows the time.
    pub(super) fn arm_trunk_ping(&mut self, now: Now) {
        if self.trunk.armed || self.ping_interval().is_none() {
            return;
        }
        self.trunk.armed = true;
        self.arm(now.mono, CallId(0), CallTimer::TrunkPing);
    }

    /// The trunk listener (UDP) and the carrier's address: (listener, our address, carrier).
    pub(super) fn carrier(&self) -> Option<(usize, SocketAddr, SocketAddr)> {
        self.cfg.listeners.iter().enumerate().find_map(|(i, l)| {
            l.outbound
                .filter(|_| l.trusted.is_some() && l.proto == Proto::Udp)
                .map(|o| (i, l.addr, o))
        })
    }

    /// Whether calls may be sent to the carrier (its last OPTIONS ping was answered).
    pub fn trunk_up(&self) -> bool {
        !self.trunk.down
    }

    fn trunk_state(&mut self, up: bool) {
        if up != self.trunk.down {
            return;
        }
        self.trunk.down = !up;
        if up {
            tracing::info!("carrier trunk answers OPTIONS again: marked up");
        } else {
            tracing::warn!("carrier trunk stopped answering OPTIONS: marked down");
        }
    }

    /// The OPTIONS ping interval of the carrier's trunk listener, if pinging is on.
    fn ping_interval(&self) -> Option<Duration> {
        let (listener, _, _) = self.carrier()?;
        self.cfg.listeners.get(listener)?.options_ping
    }

    fn ping_trunk(&mut self, now: Now) {
        let Some(interval) = self.ping_interval() else {
            return;
        };
        self.arm(now.mono + interval, CallId(0), CallTimer::TrunkPing);
        let Some((listener, local, carrier)) = self.carrier() else {
            return;
        };
        if self
            .trunk
            .ping
            .as_ref()
            .is_some_and(|k| self.txns.contains(k))
        {
            return;
        }
        let branch = self.new_branch();
        let tag = self.random_hex();
        let uri = Uri::parse(Bytes::from(format!("sip:{carrier}")))
            .or_else(|_| Uri::parse(Bytes::from_static(b"sip:invalid")));
        let Ok(uri) = uri else { return };
        let mut m = Message::request(Method::Options, uri);
        m.push(
            HeaderName::Via,
            format!("SIP/2.0/UDP {local};branch={branch};rport"),
        );
        m.push(HeaderName::MaxForwards, "70");
        m.push(HeaderName::From, format!("<sip:ping@{local}>;tag={tag}"));
        m.push(HeaderName::To, format!("<sip:{carrier}>"));
        m.push(
            HeaderName::CallId,
            format!("{}@sentralbord", self.random_hex()),
        );
        m.push(HeaderName::CSeq, "1 OPTIONS");
        m.push(HeaderName::Contact, contact_for(local, Proto::Udp));
        let key = TransactionKey::client(Bytes::from(branch), Method::Options);
        let peer = Peer {
            proto: Proto::Udp,
            remote: carrier,
            local,
            conn: None,
            listener,
        };
        if self
            .txns
            .start_client_non_invite(now.mono, key.clone(), peer, m.encode(), false)
            .is_ok()
        {
            self.trunk.ping = Some(key);
        }
    }
}

/// The CSeq number of a response (0 when unreadable).
fn relay_cseq(resp: &Message) -> u32 {
    resp.cseq().map(|c| c.seq).unwrap_or(0)
}

fn relay_method(resp: &Message) -> Option<Method> {
    resp.cseq().ok().map(|c| c.method)
}
