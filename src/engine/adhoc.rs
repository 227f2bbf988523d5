//! Ad-hoc conferences made from calls in progress.
//!
//! During an answered two-party call, a party who is one of the tenant's users presses
//! `*3`, the third party's number and `#`. The switch calls that number (an extension: the
//! user's terminals; anything else: through the trunk, from the requester's number), and
//! when it answers, the three legs join a new room of the media plane's mixer. Each leg
//! keeps its own RTP stream, so nobody hears a gap. The CLI merges a user's two answered
//! calls the same way ([`Input::MergeCalls`](super::Input::MergeCalls)).
//!
//! A party hanging up leaves the room. When the last two are the two legs of one call,
//! they go back to a plain relayed call; two legs of different calls stay in the room (the
//! mixer relays a room of two without mixing); one left alone is hung up. Each ad-hoc
//! conference is reported for the conference log.

use super::b2bua::{self, BranchLeg, CallTimer, Side};
use super::conference::{ConferenceReport, LeftBecause, ParticipantReport, ReportOrigin};
use super::media::AnchoredLeg;
use super::peer::Peer;
use super::{Engine, Output};
use crate::call::model::{AnswerAction, BranchId, Call, CallId, CallState, Direction, Outcome};
use crate::call::plan::{Target, TargetKind};
use crate::media::control::{
    BeepKind, ConferenceId, ConferenceSound, LegMedia, LegSource, MediaCommand, MediaLeg,
    MediaSessionId, PortPair,
};
use crate::media::sdp::{self, Sdp};
use crate::sip::message::{HeaderName, Message, Uri};
use crate::sip::transaction::TransactionKey;
use crate::sip::Method;
use crate::util::time::Now;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// The keys that start adding a party: `*3`, the number, `#`.
pub const ADD_PARTY_CODE: &str = "*3";
/// The longest pause between two keys of `*3<number>#` before the keys are forgotten.
const KEY_GAP_MS: u64 = 5_000;
/// The longest number taken.
const MAX_NUMBER_DIGITS: usize = 20;
/// How long the third party rings.
const THIRD_PARTY_RING: Duration = Duration::from_secs(45);
/// Ad-hoc ids (rooms and third-leg media sessions) live above call and room ids.
const ADHOC_ID_BASE: u64 = 1 << 62;
/// What the requester hears when the third party cannot be reached.
const NOT_REACHED: &str = "conference/adhoc-failed";

/// How a merge of a user's calls went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeResult {
    /// The calls are one conference now.
    Done,
    /// The user does not have exactly two answered calls.
    NotTwoCalls,
    /// A call's media does not go through the switch (it cannot be mixed).
    NotAnchored,
    /// A leg's codec cannot be mixed (the mixer takes PCMU and PCMA), or a call is in a
    /// conference already.
    NotMixable,
}

/// Collects `*3<number>#` from the keys of one leg.
#[derive(Debug, Default, Clone)]
pub struct KeyCollector {
    keys: String,
    last_ms: u64,
}

impl KeyCollector {
    /// Feeds one key pressed at `now_ms`; returns the number once `#` ends a complete
    /// `*3<number>`. A pause over five seconds, or a key that does not fit, starts again.
    pub fn push(&mut self, key: char, now_ms: u64) -> Option<String> {
        if !self.keys.is_empty() && now_ms.saturating_sub(self.last_ms) > KEY_GAP_MS {
            self.keys.clear();
        }
        self.last_ms = now_ms;
        if key == '*' {
            self.keys.clear();
            self.keys.push('*');
            return None;
        }
        if self.keys.is_empty() {
            return None;
        }
        if self.keys.len() < ADD_PARTY_CODE.len() {
            self.keys.push(key);
            if !ADD_PARTY_CODE.starts_with(self.keys.as_str()) {
                self.keys.clear();
            }
            return None;
        }
        match key {
            '#' => {
                let number = self.keys.split_off(ADD_PARTY_CODE.len());
                self.keys.clear();
                (!number.is_empty()).then_some(number)
            }
            d if d.is_ascii_digit()
                && self.keys.len() < ADD_PARTY_CODE.len() + MAX_NUMBER_DIGITS =>
            {
                self.keys.push(d);
                None
            }
            _ => {
                self.keys.clear();
                None
            }
        }
    }
}

/// A party of a call: one of its two legs, or the third party the switch called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    /// The caller's leg.
    Caller,
    /// The answering callee's leg.
    Callee,
    /// The party added by `*3<number>#`.
    Third,
}

/// The ad-hoc side of a call.
#[derive(Default)]
pub struct AdHocCall {
    /// Keys collected on the caller's and the callee's leg.
    keys: [KeyCollector; 2],
    /// The third party being called, or in the room.
    pub third: Option<Box<ThirdLeg>>,
    /// The ad-hoc room the call's legs are in.
    pub room: Option<u64>,
    /// The call's own parties that hung up while the rest of the room went on.
    gone: Vec<Party>,
    /// The leg hearing the "not reached" announcement (relayed again at its end).
    prompting: Option<MediaLeg>,
}

/// Where the third party's call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThirdState {
    /// Its number is being resolved.
    Resolving,
    /// Its media session is being opened.
    Opening,
    /// Its terminals ring.
    Ringing,
    /// It answered and is in the room.
    Joined,
    /// Over.
    Ended,
}

/// The third party's call, placed by the switch for the requester.
pub struct ThirdLeg {
    /// The leg whose party asked for it.
    requester: MediaLeg,
    /// The number dialled.
    number: String,
    /// The third party's user, when it is an extension.
    user: Option<i64>,
    /// The number shown to the third party (the From user).
    presented: String,
    /// Hide the presented number (RFC 3323).
    hide: bool,
    /// The media session of its leg (its `Callee` leg faces the third party).
    session: MediaSessionId,
    /// Our address in SDP.
    address: IpAddr,
    /// Its leg's offer/answer, once the session is open.
    anchored: Option<AnchoredLeg>,
    /// Whom to ring, once the session is open.
    targets: Vec<Target>,
    /// The call model of the third leg (branches, answer, end) for the call log.
    call: Call,
    /// The INVITEs sent, index = `BranchId`.
    branches: Vec<BranchLeg>,
    /// Where it is.
    pub state: ThirdState,
}

/// Who a member of a room is, for counting people rather than legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Person {
    /// One of the tenant's users (on one leg, or two after a merge).
    User(i64),
    /// Anyone else: the leg itself.
    Leg(CallId, Party),
}

/// A party in an ad-hoc room.
#[derive(Debug)]
struct Member {
    call: CallId,
    party: Party,
    /// Joining order (the log lists stays in it).
    seq: usize,
    report: ParticipantReport,
}

/// An ad-hoc conference running.
#[derive(Debug)]
struct AdHocRoom {
    tenant: i64,
    started_ms: u64,
    members: Vec<Member>,
    /// Finished stays, with their joining order.
    past: Vec<(usize, ParticipantReport)>,
}

/// The ad-hoc conferences and the third legs in progress.
#[derive(Debug, Default)]
pub(super) struct AdHocConferences {
    next: u64,
    rooms: HashMap<u64, AdHocRoom>,
    /// Third legs' media sessions.
    sessions: HashMap<MediaSessionId, CallId>,
    /// Third legs' INVITE client transactions: (call, branch).
    client_keys: HashMap<TransactionKey, (CallId, BranchId)>,
    /// Third legs' dialogs: (Call-ID, our tag).
    dialogs: HashMap<(Bytes, Bytes), (CallId, BranchId)>,
    /// Number lookups for third legs.
    lookups: HashMap<u64, CallId>,
}

impl AdHocConferences {
    fn next_id(&mut self) -> u64 {
        self.next += 1;
        ADHOC_ID_BASE + self.next
    }

    /// The call whose third leg uses `session`.
    pub(super) fn third_session(&self, session: MediaSessionId) -> Option<CallId> {
        self.sessions.get(&session).copied()
    }

    /// Whether `key` is a third leg's INVITE.
    pub(super) fn owns_client_key(&self, key: &TransactionKey) -> bool {
        self.client_keys.contains_key(key)
    }
}

fn media_leg(party: Party) -> MediaLeg {
    match party {
        Party::Caller => MediaLeg::Caller,
        Party::Callee | Party::Third => MediaLeg::Callee,
    }
}

fn party_of(leg: MediaLeg) -> Party {
    match leg {
        MediaLeg::Caller => Party::Caller,
        MediaLeg::Callee => Party::Callee,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether the mixer takes a leg's codec.
fn mixable(codec: Option<&sdp::RtpMap>) -> bool {
    codec.is_some_and(|c| {
        c.clock_rate == 8000
            && (c.encoding.eq_ignore_ascii_case("PCMU") || c.encoding.eq_ignore_ascii_case("PCMA"))
    })
}

impl Engine {
    fn adhoc_side(&mut self, id: CallId) -> Option<&mut AdHocCall> {
        let e = self.calls.get_mut(&id)?;
        Some(e.adhoc.get_or_insert_with(Default::default))
    }

    /// The call's ad-hoc room, if its legs are in one.
    pub(super) fn adhoc_room_of(&self, id: CallId) -> Option<u64> {
        self.calls.get(&id)?.adhoc.as_ref()?.room
    }

    /// A DTMF key on a leg of a plain answered call: `*3<number>#` from a user's leg calls
    /// a third party.
    pub(super) fn adhoc_key(&mut self, now: Now, id: CallId, leg: MediaLeg, key: char) {
        let Some(e) = self.calls.get(&id) else { return };
        let winner_user = e
            .call
            .winner
            .and_then(|w| e.call.branch(w))
            .and_then(|b| b.target.user_id);
        let user = match leg {
            MediaLeg::Caller => e.caller_user,
            MediaLeg::Callee => winner_user,
        };
        let eligible = e.call.state == CallState::Answered
            && e.call.winner.is_some()
            && !e.answered_here
            && e.queue.is_none()
            && e.conference.is_none()
            && e.media.is_some()
            && e.tenant.is_some()
            && user.is_some();
        if !eligible {
            return;
        }
        // One third leg at a time, and not before the last one's INVITEs are all over
        // (their late responses are routed by branch index).
        let busy = self.third_leg_ringing(id)
            || e.adhoc.as_ref().is_some_and(|a| {
                a.room.is_some()
                    || a.third
                        .as_ref()
                        .is_some_and(|t| t.state != ThirdState::Ended)
            });
        let now_ms = Self::now_ms(now);
        let Some(side) = self.adhoc_side(id) else {
            return;
        };
        let slot = match leg {
            MediaLeg::Caller => 0,
            MediaLeg::Callee => 1,
        };
        let Some(number) = side.keys[slot].push(key, now_ms) else {
            return;
        };
        if busy {
            tracing::info!(call = id.0, "a party is being added already: *3 ignored");
            return;
        }
        self.start_third(now, id, leg, number);
    }

    /// Resolves the dialled number: an extension of the tenant, or an external number.
    fn start_third(&mut self, now: Now, id: CallId, requester: MediaLeg, number: String) {
        let Some(e) = self.calls.get(&id) else { return };
        let Some(tenant_id) = e.tenant else { return };
        let Some(address) = e.media.as_ref().map(|m| m.address) else {
            return;
        };
        let winner_user = e
            .call
            .winner
            .and_then(|w| e.call.branch(w))
            .and_then(|b| b.target.user_id);
        let (user_id, own) = match requester {
            MediaLeg::Caller => (e.caller_user, e.caller.clone()),
            MediaLeg::Callee => (winner_user, e.callee.clone()),
        };
        let Some(user_id) = user_id else { return };
        let classified = crate::call::numbering::classify_dialled(
            &number,
            &self.dialling_numbering(),
            crate::util::EXTENSION_DIGITS,
        );
        let session = MediaSessionId(self.adhoc.next_id());
        let lookup = self.next_lookup;
        self.next_lookup += 1;
        let (direction, dialled) = match classified.dialled {
            crate::call::numbering::Dialled::Extension(ext) => {
                self.outputs.push_back(Output::ResolveUser {
                    lookup,
                    tenant_id,
                    extension: ext.clone(),
                });
                (Direction::Internal, ext)
            }
            crate::call::numbering::Dialled::External(n) => {
                self.outputs.push_back(Output::ResolveCallerNumbers {
                    lookup,
                    tenant_id,
                    user_id,
                });
                (Direction::Outbound, n.to_string())
            }
            _ => {
                tracing::info!(
                    call = id.0,
                    "*3 with a number that is no extension or external number"
                );
                self.not_reached(id, requester);
                return;
            }
        };
        tracing::info!(call = id.0, ?requester, number = %dialled, "adding a party to the call");
        self.adhoc.lookups.insert(lookup, id);
        let third = ThirdLeg {
            requester,
            number: dialled,
            user: None,
            presented: own,
            hide: false,
            session,
            address,
            anchored: None,
            targets: Vec::new(),
            call: Call::new(CallId(session.0), direction, Self::now_ms(now)),
            branches: Vec::new(),
            state: ThirdState::Resolving,
        };
        if let Some(side) = self.adhoc_side(id) {
            side.third = Some(Box::new(third));
        }
    }

    fn third_mut(&mut self, id: CallId) -> Option<&mut ThirdLeg> {
        self.calls
            .get_mut(&id)?
            .adhoc
            .as_mut()?
            .third
            .as_deref_mut()
    }

    /// The answer to a third leg's `Output::ResolveUser`; false when the lookup is not one.
    pub(super) fn adhoc_user_resolved(
        &mut self,
        now: Now,
        lookup: u64,
        user: &Option<super::ResolvedUser>,
    ) -> bool {
        let Some(id) = self.adhoc.lookups.remove(&lookup) else {
            return false;
        };
        let Some(user) = user else {
            self.third_not_reached(now, id, Outcome::Failed, "no such extension");
            return true;
        };
        let aor = format!("sip:{}@{}", user.username, user.realm);
        let plan = self.plan_for_user(user.user_id, &aor, user.mobile.as_deref(), now);
        if let Some(t) = self.third_mut(id) {
            t.user = Some(user.user_id);
        }
        self.open_third(now, id, plan.targets);
        true
    }

    /// The answer to a third leg's `Output::ResolveCallerNumbers`; false when the lookup
    /// is not one.
    pub(super) fn adhoc_numbers_resolved(
        &mut self,
        now: Now,
        lookup: u64,
        numbers: &super::CallerNumbers,
    ) -> bool {
        let Some(id) = self.adhoc.lookups.remove(&lookup) else {
            return false;
        };
        let number = self.third_mut(id).map(|t| t.number.clone());
        let target = number.as_deref().and_then(|n| self.carrier_target(n));
        let presented = numbers.own.clone().or(numbers.main.clone());
        let (Some(target), Some(presented)) = (target, presented) else {
            self.third_not_reached(
                now,
                id,
                Outcome::Failed,
                "no trunk, or no number to present",
            );
            return true;
        };
        if let Some(t) = self.third_mut(id) {
            t.presented = presented;
            t.hide = numbers.hide_by_default;
        }
        self.open_third(now, id, vec![target]);
        true
    }

    /// Opens the third leg's media session; it rings once the session is open.
    fn open_third(&mut self, now: Now, id: CallId, targets: Vec<Target>) {
        if targets.is_empty() {
            self.third_not_reached(now, id, Outcome::Failed, "no terminal to ring");
            return;
        }
        let Some(t) = self.third_mut(id) else { return };
        if t.state != ThirdState::Resolving {
            return;
        }
        t.targets = targets;
        t.state = ThirdState::Opening;
        let (session, address) = (t.session, t.address);
        self.adhoc.sessions.insert(session, id);
        self.outputs.push_back(Output::Media(MediaCommand::Open {
            session,
            local_ip: address,
        }));
    }

    /// A third leg's media session is open on `ports`: our offer goes to every target.
    pub(super) fn adhoc_media_opened(&mut self, now: Now, id: CallId, ports: PortPair) {
        let session_id = {
            use rand::Rng;
            self.rng.gen_range(1..(1u64 << 62))
        };
        let Some(t) = self.third_mut(id) else { return };
        if t.state != ThirdState::Opening {
            return;
        }
        let address = t.address;
        let mut leg = AnchoredLeg::new(ports, session_id, address);
        let mut offer = sdp::offer(&self.local_media(address, &leg, None));
        leg.origin.stamp(&mut offer);
        leg.our_offer = Some(offer.clone());
        let body = Bytes::from(offer.encode());
        let Some(t) = self.third_mut(id) else { return };
        t.anchored = Some(leg);
        t.state = ThirdState::Ringing;
        let targets = std::mem::take(&mut t.targets);
        for target in targets {
            let Some(leg) = self.invite_third(now, id, &target, &body) else {
                continue;
            };
            let now_ms = Self::now_ms(now);
            let Some(t) = self.third_mut(id) else { return };
            let bid = t.call.add_branch(target, now_ms);
            self.adhoc.client_keys.insert(leg.key.clone(), (id, bid));
            if let Some(t) = self.third_mut(id) {
                t.branches.push(leg);
            }
        }
        let rung = self.third_mut(id).is_some_and(|t| !t.branches.is_empty());
        if rung {
            self.arm(now.mono + THIRD_PARTY_RING, id, CallTimer::AdHocNoAnswer);
        } else {
            self.third_not_reached(now, id, Outcome::Failed, "no terminal could be rung");
        }
    }

    /// Sends the third leg's INVITE to one target, from the requester.
    fn invite_third(
        &mut self,
        now: Now,
        id: CallId,
        target: &Target,
        body: &Bytes,
    ) -> Option<BranchLeg> {
        let (proto, remote) = b2bua::parse_flow(&target.flow)?;
        let (listener, local) = self.listener_for(target.kind, proto)?;
        let uri = Uri::parse(Bytes::from(target.uri.clone())).ok()?;
        let t = self.calls.get(&id)?.adhoc.as_ref()?.third.as_ref()?;
        let (presented, hide, number) = (t.presented.clone(), t.hide, t.number.clone());
        let branch = self.new_branch();
        let from_tag = self.random_hex();
        let call_id = Bytes::from(format!("{}@sentralbord", self.random_hex()));
        let realm = self.our_domain(listener, local);
        let to_uri = if target.kind == TargetKind::Phone {
            format!("sip:{number}@{realm}")
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
        m.push(HeaderName::MaxForwards, "70");
        m.push(
            HeaderName::From,
            format!("<sip:{presented}@{realm}>;tag={from_tag}"),
        );
        m.push(HeaderName::To, format!("<{to_uri}>"));
        m.push(HeaderName::CallId, call_id.clone());
        m.push(HeaderName::CSeq, "1 INVITE");
        m.push(HeaderName::Contact, b2bua::contact_for(local, proto));
        m.push(HeaderName::Allow, super::pipeline::ALLOW);
        if target.kind != TargetKind::Phone {
            b2bua::assert_identity_to_carrier(&mut m, &presented, &realm, &from_tag, hide);
        }
        m.push(
            HeaderName::ContentType,
            Bytes::from_static(b"application/sdp"),
        );
        m.body = body.clone();
        let peer = Peer {
            proto,
            remote,
            local,
            conn: None,
            listener,
        };
        self.start_branch(now, m, branch, peer, call_id, from_tag)
    }

    /// The ACK for a third leg's non-2xx final response, if `key` is a third leg's INVITE.
    pub(super) fn adhoc_non_2xx_ack(&self, key: &TransactionKey, resp: &Message) -> Option<Bytes> {
        let (id, bid) = self.adhoc.client_keys.get(key)?;
        let t = self.calls.get(id)?.adhoc.as_ref()?.third.as_ref()?;
        let leg = t.branches.get(bid.0 as usize)?;
        Some(b2bua::non_2xx_ack(&leg.invite, resp))
    }

    /// A response to a third leg's INVITE (after its transaction passed it up).
    pub(super) fn adhoc_response(&mut self, now: Now, key: &TransactionKey, resp: &Message) {
        let Some(&(id, bid)) = self.adhoc.client_keys.get(key) else {
            return;
        };
        let Some(code) = resp.status() else { return };
        match code {
            100..=199 => {
                let owed = self
                    .third_mut(id)
                    .and_then(|t| t.branches.get_mut(bid.0 as usize))
                    .map(|l| {
                        l.provisional = true;
                        std::mem::take(&mut l.cancel_owed)
                    });
                if owed == Some(true) {
                    self.cancel_third_branch(now, id, bid);
                }
            }
            200..=299 => self.third_answered(now, id, bid, resp),
            _ => self.third_branch_failed(now, id, bid, code),
        }
    }

    /// A third leg's INVITE timed out or could not be sent.
    pub(super) fn adhoc_client_event(&mut self, now: Now, key: &TransactionKey, code: Option<u16>) {
        let Some(&(id, bid)) = self.adhoc.client_keys.get(key) else {
            return;
        };
        match code {
            Some(code) => self.third_branch_failed(now, id, bid, code),
            None => {
                // The INVITE transaction is over: a call that ended waits for no more.
                self.adhoc.client_keys.remove(key);
                self.forget_if_quiet(id);
            }
        }
    }

    fn third_branch_failed(&mut self, now: Now, id: CallId, bid: BranchId, code: u16) {
        let now_ms = Self::now_ms(now);
        let Some(t) = self.third_mut(id) else { return };
        if let Some(last) = t.call.on_branch_failed(bid, code, now_ms) {
            let reason = format!("the third party answered {last}");
            let outcome = crate::call::model::unanswered_outcome(last);
            self.third_not_reached(now, id, outcome, &reason);
        }
    }

    fn cancel_third_branch(&mut self, now: Now, id: CallId, bid: BranchId) {
        let Some(leg) = self
            .third_mut(id)
            .and_then(|t| t.branches.get_mut(bid.0 as usize))
        else {
            return;
        };
        if !leg.provisional {
            leg.cancel_owed = true;
            return;
        }
        let cancel = b2bua::cancel_for(&leg.invite);
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

    /// The third party's ring time is over.
    pub(super) fn adhoc_no_answer(&mut self, now: Now, id: CallId) {
        let ringing = self
            .calls
            .get(&id)
            .and_then(|e| e.adhoc.as_ref())
            .and_then(|a| a.third.as_ref())
            .is_some_and(|t| t.state == ThirdState::Ringing);
        if ringing {
            self.third_not_reached(now, id, Outcome::Missed, "no answer");
        }
    }

    /// The third party cannot be reached: its leg ends, and the requester hears so.
    fn third_not_reached(&mut self, now: Now, id: CallId, outcome: Outcome, reason: &str) {
        let requester = self.third_mut(id).map(|t| t.requester);
        tracing::info!(call = id.0, reason, "the party to add was not reached");
        self.end_third(now, id, outcome, reason);
        if let Some(requester) = requester {
            self.not_reached(id, requester);
        }
    }

    /// Plays "not reached" to the requester (relayed again when it ends).
    fn not_reached(&mut self, id: CallId, requester: MediaLeg) {
        let Some(e) = self.calls.get(&id) else { return };
        let (Some(session), tenant) = (e.media.as_ref().map(|m| m.session), e.tenant) else {
            return;
        };
        if let Some(side) = self.adhoc_side(id) {
            side.prompting = Some(requester);
        }
        self.outputs.push_back(Output::Media(MediaCommand::Source {
            session,
            leg: requester,
            source: LegSource::Prompts {
                tenant,
                names: vec![NOT_REACHED.into()],
                looped: false,
            },
        }));
    }

    /// A prompt on a leg of a call ended: the leg that heard "not reached" is relayed
    /// again. False when the prompt was not ours.
    pub(super) fn adhoc_playback_done(&mut self, id: CallId, leg: MediaLeg) -> bool {
        let ours = self
            .calls
            .get(&id)
            .and_then(|e| e.adhoc.as_ref())
            .is_some_and(|a| a.prompting == Some(leg));
        if !ours {
            return false;
        }
        let session = self
            .calls
            .get(&id)
            .and_then(|e| e.media.as_ref())
            .map(|m| m.session);
        if let Some(side) = self.adhoc_side(id) {
            side.prompting = None;
        }
        let in_room = self.adhoc_room_of(id).is_some();
        if let (Some(session), false) = (session, in_room) {
            self.outputs.push_back(Output::Media(MediaCommand::Source {
                session,
                leg,
                source: LegSource::Relay,
            }));
        }
        true
    }

    /// Ends the third leg: cancels what rings, hangs up an answered one, closes its media
    /// and reports its call.
    fn end_third(&mut self, now: Now, id: CallId, outcome: Outcome, reason: &str) {
        let now_ms = Self::now_ms(now);
        let Some(t) = self.third_mut(id) else { return };
        if t.state == ThirdState::Ended {
            return;
        }
        let opened = matches!(t.state, ThirdState::Ringing | ThirdState::Joined);
        t.state = ThirdState::Ended;
        let cancel = t.call.cancel_all();
        let winner = t.call.winner;
        let outcome = if t.call.answered_ms.is_some() {
            Outcome::Answered
        } else {
            outcome
        };
        t.call.end(outcome, reason.to_owned(), now_ms);
        let session = t.session;
        for bid in cancel {
            self.cancel_third_branch(now, id, bid);
        }
        if let Some(w) = winner {
            self.bye_third(now, id, w);
        }
        self.adhoc.sessions.remove(&session);
        if opened || self.third_mut(id).is_some_and(|t| t.anchored.is_some()) {
            self.outputs
                .push_back(Output::Media(MediaCommand::Close { session }));
        }
        self.report_third(id);
    }

    /// BYE on the third leg's dialog (nothing when the far end ended it).
    fn bye_third(&mut self, now: Now, id: CallId, bid: BranchId) {
        let branch = self.new_branch();
        let Some(leg) = self
            .third_mut(id)
            .and_then(|t| t.branches.get_mut(bid.0 as usize))
        else {
            return;
        };
        let peer = leg.peer;
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        if dialog.state() == crate::sip::dialog::DialogState::Terminated {
            return;
        }
        let Ok(cseq) = dialog.next_local_cseq() else {
            return;
        };
        let bye = b2bua::build_in_dialog(dialog, Method::Bye, cseq, &peer, &branch);
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

    /// The third leg's call for the call log: from the requester to the number dialled.
    fn report_third(&mut self, id: CallId) {
        let Some(e) = self.calls.get(&id) else { return };
        let Some(t) = e.adhoc.as_ref().and_then(|a| a.third.as_ref()) else {
            return;
        };
        let winner_user = e
            .call
            .winner
            .and_then(|w| e.call.branch(w))
            .and_then(|b| b.target.user_id);
        let requester_user = match t.requester {
            MediaLeg::Caller => e.caller_user,
            MediaLeg::Callee => winner_user,
        };
        let report = b2bua::FinishedCall {
            call: t.call.clone(),
            tenant: e.tenant,
            caller: t.presented.clone(),
            caller_name: None,
            callee: t.number.clone(),
            caller_user: requester_user,
            callee_user: t.user,
            sip_call_ids: t.branches.iter().map(|l| text(&l.call_id)).collect(),
            forwarded: None,
            media: None,
            queue_visits: Vec::new(),
        };
        // The client keys stay until their transactions end: a late 487 still needs its
        // ACK, and a late 2xx its ACK and BYE.
        self.outputs.push_back(Output::CallEnded(Box::new(report)));
    }

    /// The third party answered on branch `bid`: ACK, its media, then the room.
    fn third_answered(&mut self, now: Now, id: CallId, bid: BranchId, resp: &Message) {
        let now_ms = Self::now_ms(now);
        let Some(t) = self.third_mut(id) else { return };
        let action = t.call.on_answer(bid, now_ms);
        let Some(leg) = t.branches.get_mut(bid.0 as usize) else {
            return;
        };
        let Some(dialog) = b2bua::uac_dialog(&leg.invite, resp) else {
            return;
        };
        let ack = b2bua::build_in_dialog(
            &dialog,
            Method::Ack,
            1,
            &leg.peer,
            &format!("{}{}", super::pipeline::OUR_BRANCH_PREFIX, leg.from_tag),
        )
        .encode();
        leg.ack = Some(ack.clone());
        leg.dialog = Some(dialog);
        let peer = leg.peer;
        let dkey = (leg.call_id.clone(), Bytes::from(leg.from_tag.clone()));
        self.outputs.push_back(Output::Transmit { data: ack, peer });
        self.adhoc.dialogs.insert(dkey, (id, bid));
        let cancel = match action {
            AnswerAction::HangUp => {
                // Another terminal answered first, or the leg ended meanwhile.
                self.bye_third(now, id, bid);
                return;
            }
            AnswerAction::Bridge { cancel } => cancel,
        };
        for c in cancel {
            self.cancel_third_branch(now, id, c);
        }
        if !self.take_third_answer(id, &resp.body) {
            self.third_not_reached(now, id, Outcome::Failed, "unusable SDP answer");
            return;
        }
        let still_plain = self.calls.get(&id).is_some_and(|e| {
            e.call.state == CallState::Answered
                && e.adhoc.as_ref().is_some_and(|a| a.room.is_none())
        });
        if !still_plain {
            self.end_third(now, id, Outcome::Answered, "the call ended meanwhile");
            return;
        }
        if let Some(t) = self.third_mut(id) {
            t.state = ThirdState::Joined;
        }
        let Some(tenant) = self.calls.get(&id).and_then(|e| e.tenant) else {
            return;
        };
        let members = [(id, Party::Caller), (id, Party::Callee), (id, Party::Third)];
        if !self.members_mixable(&members) {
            tracing::warn!(
                call = id.0,
                "a leg's codec cannot be mixed: party not added"
            );
            self.third_not_reached(now, id, Outcome::Failed, "a codec the mixer does not take");
            return;
        }
        tracing::info!(call = id.0, "the third party answered: ad-hoc conference");
        self.form_room(now, tenant, &members);
    }

    /// The third party's SDP answer to our offer: its leg's media.
    fn take_third_answer(&mut self, id: CallId, body: &[u8]) -> bool {
        let Ok(answer) = Sdp::parse(body) else {
            return false;
        };
        let Some(t) = self.third_mut(id) else {
            return false;
        };
        let session = t.session;
        let Some(leg) = t.anchored.as_mut() else {
            return false;
        };
        let Some(offer) = leg.our_offer.as_ref() else {
            return false;
        };
        let Some(n) = sdp::negotiated(offer, &answer).into_iter().next() else {
            return false;
        };
        leg.codec = Some(n.codec.clone());
        let Some(media) = super::media::leg_media(&n, sdp::Role::Offerer) else {
            return false;
        };
        self.outputs.push_back(Output::Media(MediaCommand::Update {
            session,
            leg: MediaLeg::Callee,
            media,
        }));
        true
    }

    /// The media session and leg of a party.
    fn party_media(&self, call: CallId, party: Party) -> Option<(MediaSessionId, MediaLeg)> {
        let e = self.calls.get(&call)?;
        match party {
            Party::Third => Some((e.adhoc.as_ref()?.third.as_ref()?.session, MediaLeg::Callee)),
            _ => Some((e.media.as_ref()?.session, media_leg(party))),
        }
    }

    fn party_codec(&self, call: CallId, party: Party) -> Option<&sdp::RtpMap> {
        let e = self.calls.get(&call)?;
        match party {
            Party::Caller => e.media.as_ref()?.caller.codec.as_ref(),
            Party::Callee => e.media.as_ref()?.callee.codec.as_ref(),
            Party::Third => e
                .adhoc
                .as_ref()?
                .third
                .as_ref()?
                .anchored
                .as_ref()?
                .codec
                .as_ref(),
        }
    }

    fn members_mixable(&self, members: &[(CallId, Party)]) -> bool {
        members
            .iter()
            .all(|(c, p)| mixable(self.party_codec(*c, *p)))
    }

    /// Who a party is, for the conference log.
    fn party_report(&self, call: CallId, party: Party, now_ms: u64) -> ParticipantReport {
        let mut r = ParticipantReport {
            sip_call_id: String::new(),
            user: None,
            number: String::new(),
            name: None,
            moderator: false,
            joined_ms: now_ms,
            left_ms: now_ms,
            end: LeftBecause::Left,
        };
        let Some(e) = self.calls.get(&call) else {
            return r;
        };
        let winner = e.call.winner.and_then(|w| e.call.branch(w).map(|b| (w, b)));
        match party {
            Party::Caller => {
                r.sip_call_id = e.inbound.req.call_id().map(|c| text(c)).unwrap_or_default();
                r.user = e.caller_user;
                r.number = e.caller.clone();
                r.name = e.caller_name.clone();
            }
            Party::Callee => {
                if let Some((w, b)) = winner {
                    r.user = b.target.user_id;
                    r.sip_call_id = e
                        .branches
                        .get(w.0 as usize)
                        .map(|l| text(&l.call_id))
                        .unwrap_or_default();
                }
                r.number = e.callee.clone();
            }
            Party::Third => {
                if let Some(t) = e.adhoc.as_ref().and_then(|a| a.third.as_ref()) {
                    r.user = t.user;
                    r.number = t.number.clone();
                    r.sip_call_id = t
                        .call
                        .winner
                        .and_then(|w| t.branches.get(w.0 as usize))
                        .map(|l| text(&l.call_id))
                        .unwrap_or_default();
                }
            }
        }
        r
    }

    /// Puts `members` into a new ad-hoc room of the mixer.
    fn form_room(&mut self, now: Now, tenant: i64, members: &[(CallId, Party)]) {
        let now_ms = Self::now_ms(now);
        let room = self.adhoc.next_id();
        let mut present = Vec::new();
        for &(call, party) in members {
            let Some((session, leg)) = self.party_media(call, party) else {
                continue;
            };
            present.push(Member {
                call,
                party,
                seq: present.len(),
                report: self.party_report(call, party, now_ms),
            });
            if let Some(side) = self.adhoc_side(call) {
                side.room = Some(room);
                if side
                    .prompting
                    .is_some_and(|l| l == leg && party != Party::Third)
                {
                    side.prompting = None;
                }
            }
            self.outputs
                .push_back(Output::Media(MediaCommand::JoinConference {
                    session,
                    leg,
                    room: ConferenceId(room),
                    muted: false,
                    tenant: Some(tenant),
                }));
        }
        self.outputs
            .push_back(Output::Media(MediaCommand::ConferencePrompt {
                room: ConferenceId(room),
                sound: ConferenceSound::Beep(BeepKind::Enter),
            }));
        tracing::info!(room, members = present.len(), "ad-hoc conference formed");
        self.adhoc.rooms.insert(
            room,
            AdHocRoom {
                tenant,
                started_ms: now_ms,
                members: present,
                past: Vec::new(),
            },
        );
    }

    /// A BYE from one side of a call in an ad-hoc room (already answered 200): that party
    /// leaves and the room goes on. False when the call is in no ad-hoc room.
    pub(super) fn adhoc_bye(&mut self, now: Now, id: CallId, side: Side) -> bool {
        if self.adhoc_room_of(id).is_none() {
            return false;
        }
        let party = match side {
            Side::Inbound => Party::Caller,
            Side::Branch(_) => Party::Callee,
        };
        self.party_gone(now, id, party, LeftBecause::Left);
        true
    }

    /// An in-dialog request on a third leg's dialog; false when the dialog is not one.
    pub(super) fn adhoc_in_dialog(
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
        let Some(&(id, bid)) = self
            .adhoc
            .dialogs
            .get(&(call_id.clone(), Bytes::copy_from_slice(tag)))
        else {
            return false;
        };
        if *method == Method::Ack {
            return true;
        }
        let mut ok = Message::response_to(req, 200, "OK", None);
        if matches!(method, Method::Invite | Method::Update) {
            let peer = self
                .third_mut(id)
                .and_then(|t| t.branches.get(bid.0 as usize))
                .map(|l| l.peer);
            if let Some(peer) = peer {
                ok.push(
                    HeaderName::Contact,
                    b2bua::contact_for(peer.local, peer.proto),
                );
            }
            // A refresh or a new offer: our answer is the offer we made (same ports and
            // codecs), and what the far end now says goes to its leg.
            if !req.body.is_empty() {
                match self.answer_third_again(id, &req.body) {
                    Some(sdp) => super::media::set_sdp_body(&mut ok, &sdp),
                    None => {
                        let mut r = Message::response_to(req, 488, "Not Acceptable Here", None);
                        self.add_common(&mut r);
                        let _ = self.txns.send_response(now.mono, key, 488, r.encode());
                        return true;
                    }
                }
            }
        }
        self.add_common(&mut ok);
        let _ = self.txns.send_response(now.mono, key, 200, ok.encode());
        if *method == Method::Bye {
            if let Some(d) = self
                .third_mut(id)
                .and_then(|t| t.branches.get_mut(bid.0 as usize))
                .and_then(|l| l.dialog.as_mut())
            {
                d.terminate();
            }
            self.party_gone(now, id, Party::Third, LeftBecause::Left);
        }
        true
    }

    /// Our answer to the third party's new offer: its codec again, on our ports.
    fn answer_third_again(&mut self, id: CallId, body: &[u8]) -> Option<Sdp> {
        let offer = Sdp::parse(body).ok()?;
        let t = self.calls.get(&id)?.adhoc.as_ref()?.third.as_ref()?;
        let (session, address) = (t.session, t.address);
        let leg = t.anchored.as_ref()?;
        let local = self.local_media(address, leg, leg.codec.as_ref());
        let mut answer = sdp::answer(&offer, &local).ok()?;
        let leg = self.third_mut(id)?.anchored.as_mut()?;
        leg.origin.stamp(&mut answer);
        let n = sdp::negotiated(&offer, &answer).into_iter().next()?;
        if !mixable(Some(&n.codec)) {
            return None;
        }
        leg.codec = Some(n.codec.clone());
        let media = super::media::leg_media(&n, sdp::Role::Answerer)?;
        self.outputs.push_back(Output::Media(MediaCommand::Update {
            session,
            leg: MediaLeg::Callee,
            media,
        }));
        Some(answer)
    }

    /// The third leg's media stopped (no RTP for the media timeout): it is hung up.
    pub(super) fn adhoc_third_media_timeout(&mut self, now: Now, id: CallId) {
        let joined = self
            .third_mut(id)
            .is_some_and(|t| t.state == ThirdState::Joined);
        if joined {
            if let Some(w) = self.third_mut(id).and_then(|t| t.call.winner) {
                self.bye_third(now, id, w);
            }
            self.party_gone(now, id, Party::Third, LeftBecause::Left);
        }
    }

    /// A party of a call in an ad-hoc room is gone (hung up, or hung up by us): it leaves
    /// the room, and the room settles.
    fn party_gone(&mut self, now: Now, id: CallId, party: Party, end: LeftBecause) {
        let Some(room) = self.adhoc_room_of(id) else {
            return;
        };
        let now_ms = Self::now_ms(now);
        if let Some(r) = self.adhoc.rooms.get_mut(&room) {
            if let Some(pos) = r
                .members
                .iter()
                .position(|m| m.call == id && m.party == party)
            {
                let mut m = r.members.remove(pos);
                m.report.left_ms = now_ms;
                m.report.end = end;
                r.past.push((m.seq, m.report));
            }
        }
        match party {
            Party::Third => {
                self.end_third(now, id, Outcome::Answered, "the third party hung up");
            }
            Party::Caller | Party::Callee => {
                // Its leg stops: it leaves the room, and no RTP goes to a party that left.
                if let Some((session, leg)) = self.party_media(id, party) {
                    self.outputs
                        .push_back(Output::Media(MediaCommand::LeaveConference {
                            session,
                            leg,
                        }));
                    if let Some(media) = self.silenced_leg(id, party) {
                        self.outputs.push_back(Output::Media(MediaCommand::Update {
                            session,
                            leg,
                            media,
                        }));
                    }
                }
                if let Some(side) = self.adhoc_side(id) {
                    if !side.gone.contains(&party) {
                        side.gone.push(party);
                    }
                }
            }
        }
        self.settle_room(now, room);
        self.end_call_if_all_gone(now, id);
    }

    /// A leg's media with no far end (after its party hung up). It still counts as a
    /// sending far end, so its silence lets the session's media timeout end what remains.
    fn silenced_leg(&self, id: CallId, party: Party) -> Option<LegMedia> {
        let codec = self.party_codec(id, party)?;
        Some(LegMedia {
            remote_rtp: None,
            remote_rtcp: None,
            codec: crate::media::codec::Codec::from_rtpmap(&codec.encoding, codec.clock_rate)?,
            payload_type: codec.payload_type,
            telephone_event: None,
            direction: crate::media::sdp::Direction::SendRecv,
            ptime_ms: 20,
        })
    }

    /// Ends a call whose caller and callee both left a room.
    fn end_call_if_all_gone(&mut self, now: Now, id: CallId) {
        let done = self.calls.get(&id).is_some_and(|e| {
            e.call.state != CallState::Ended
                && e.adhoc.as_ref().is_some_and(|a| {
                    a.gone.contains(&Party::Caller) && a.gone.contains(&Party::Callee)
                })
        });
        if done {
            if let Some(e) = self.calls.get_mut(&id) {
                e.call
                    .end(Outcome::Answered, "the conference ended", Self::now_ms(now));
            }
            self.finish(id);
        }
    }

    /// After a party left: three or more people go on; the two legs of one call go back to
    /// a plain call; two people on legs of different calls stay in the room; one person
    /// left alone (on one leg, or on both legs of a merge) is hung up.
    fn settle_room(&mut self, now: Now, room: u64) {
        self.drop_redundant_legs(now, room);
        let Some(r) = self.adhoc.rooms.get(&room) else {
            return;
        };
        let members: Vec<(CallId, Party)> = r.members.iter().map(|m| (m.call, m.party)).collect();
        let mut persons: Vec<Person> = members.iter().map(|&(c, p)| self.person(c, p)).collect();
        persons.sort();
        persons.dedup();
        let one_call = members.len() == 2
            && members[0].0 == members[1].0
            && members.iter().all(|(_, p)| *p != Party::Third);
        if persons.len() >= 2 && !one_call {
            self.outputs
                .push_back(Output::Media(MediaCommand::ConferencePrompt {
                    room: ConferenceId(room),
                    sound: ConferenceSound::Beep(BeepKind::Exit),
                }));
            return;
        }
        if one_call {
            let call = members[0].0;
            tracing::info!(room, call = call.0, "the last two go back to a plain call");
            if let Some(session) = self
                .calls
                .get(&call)
                .and_then(|e| e.media.as_ref())
                .map(|m| m.session)
            {
                for leg in [MediaLeg::Caller, MediaLeg::Callee] {
                    self.outputs
                        .push_back(Output::Media(MediaCommand::LeaveConference {
                            session,
                            leg,
                        }));
                    self.outputs.push_back(Output::Media(MediaCommand::Source {
                        session,
                        leg,
                        source: LegSource::Relay,
                    }));
                }
            }
            self.close_adhoc_room(now, room, false);
            return;
        }
        for &(call, party) in &members {
            tracing::info!(room, call = call.0, ?party, "left alone: hung up");
            self.hang_up_party(now, call, party);
        }
        self.close_adhoc_room(now, room, true);
    }

    /// Who a party is: the user, or (not a user) the leg itself.
    fn person(&self, call: CallId, party: Party) -> Person {
        match self.party_user(call, party) {
            Some(user) => Person::User(user),
            None => Person::Leg(call, party),
        }
    }

    /// The user on a party's leg, if it is one.
    fn party_user(&self, call: CallId, party: Party) -> Option<i64> {
        let e = self.calls.get(&call)?;
        match party {
            Party::Caller => e.caller_user,
            Party::Callee => e
                .call
                .winner
                .and_then(|w| e.call.branch(w))
                .and_then(|b| b.target.user_id),
            Party::Third => e.adhoc.as_ref()?.third.as_ref()?.user,
        }
    }

    /// A user in the room on two legs (a merge) whose other party on one of them left
    /// keeps only the other leg: the leg that leads nowhere is hung up, and its call ends.
    fn drop_redundant_legs(&mut self, now: Now, room: u64) {
        let Some(r) = self.adhoc.rooms.get(&room) else {
            return;
        };
        let members: Vec<(CallId, Party)> = r.members.iter().map(|m| (m.call, m.party)).collect();
        let mut ended = Vec::new();
        for &(call, party) in &members {
            if party == Party::Third {
                continue;
            }
            let counterpart = if party == Party::Caller {
                Party::Callee
            } else {
                Party::Caller
            };
            let counterpart_gone = self
                .calls
                .get(&call)
                .and_then(|e| e.adhoc.as_ref())
                .is_some_and(|a| a.gone.contains(&counterpart));
            let user = self.party_user(call, party);
            let elsewhere = user.is_some()
                && members
                    .iter()
                    .any(|&(c, p)| (c, p) != (call, party) && self.party_user(c, p) == user);
            let still_in = self
                .adhoc
                .rooms
                .get(&room)
                .is_some_and(|r| r.members.iter().any(|m| (m.call, m.party) == (call, party)));
            if !(counterpart_gone && elsewhere && still_in) {
                continue;
            }
            tracing::info!(
                room,
                call = call.0,
                "the user stays on another leg: this one is hung up"
            );
            self.hang_up_party(now, call, party);
            let now_ms = Self::now_ms(now);
            if let Some(r) = self.adhoc.rooms.get_mut(&room) {
                if let Some(pos) = r
                    .members
                    .iter()
                    .position(|m| (m.call, m.party) == (call, party))
                {
                    let mut m = r.members.remove(pos);
                    m.report.left_ms = now_ms;
                    m.report.end = LeftBecause::Left;
                    r.past.push((m.seq, m.report));
                }
            }
            if let Some((session, leg)) = self.party_media(call, party) {
                self.outputs
                    .push_back(Output::Media(MediaCommand::LeaveConference {
                        session,
                        leg,
                    }));
            }
            if let Some(side) = self.calls.get_mut(&call).and_then(|e| e.adhoc.as_mut()) {
                side.gone.push(party);
                side.room = None;
            }
            ended.push(call);
        }
        for call in ended {
            self.end_call_if_all_gone(now, call);
        }
    }

    /// Hangs up a party still in a room (it is alone).
    fn hang_up_party(&mut self, now: Now, call: CallId, party: Party) {
        match party {
            Party::Third => {
                if let Some(w) = self.third_mut(call).and_then(|t| t.call.winner) {
                    self.bye_third(now, call, w);
                }
            }
            Party::Caller => self.send_bye(now, call, Side::Inbound),
            Party::Callee => {
                if let Some(w) = self.calls.get(&call).and_then(|e| e.call.winner) {
                    self.send_bye(now, call, Side::Branch(w));
                }
            }
        }
    }

    /// Ends an ad-hoc room: every member still in it is reported as "room ended", its
    /// calls are out of the room (a party hung up here is gone), and the record goes to
    /// the conference log.
    fn close_adhoc_room(&mut self, now: Now, room: u64, hung_up: bool) {
        let Some(r) = self.adhoc.rooms.remove(&room) else {
            return;
        };
        let now_ms = Self::now_ms(now);
        let mut past = r.past;
        let mut remaining = Vec::new();
        for mut m in r.members {
            m.report.left_ms = now_ms;
            m.report.end = LeftBecause::RoomEnded;
            past.push((m.seq, m.report));
            remaining.push((m.call, m.party));
        }
        past.sort_by_key(|(seq, _)| *seq);
        let past: Vec<ParticipantReport> = past.into_iter().map(|(_, p)| p).collect();
        self.outputs
            .push_back(Output::Media(MediaCommand::CloseConference {
                room: ConferenceId(room),
            }));
        self.outputs
            .push_back(Output::ConferenceEnded(Box::new(ConferenceReport {
                tenant_id: r.tenant,
                origin: ReportOrigin::AdHoc,
                started_ms: r.started_ms,
                ended_ms: now_ms,
                participants: past,
            })));
        // Calls whose legs were in the room are out of it now.
        for &(call, _) in &remaining {
            if let Some(side) = self.calls.get_mut(&call).and_then(|e| e.adhoc.as_mut()) {
                if side.room == Some(room) {
                    side.room = None;
                }
            }
        }
        // Who was left alone was hung up: its calls are over too.
        if !hung_up {
            return;
        }
        for (call, party) in remaining {
            match party {
                Party::Third => self.end_third(now, call, Outcome::Answered, "left alone"),
                _ => {
                    if let Some(side) = self.calls.get_mut(&call).and_then(|e| e.adhoc.as_mut()) {
                        side.gone.push(party);
                        side.gone.push(match party {
                            Party::Caller => Party::Callee,
                            _ => Party::Caller,
                        });
                    }
                    self.end_call_if_all_gone(now, call);
                }
            }
        }
    }

    /// A call is finishing (both sides hung up, a timer, shutdown): its third leg ends
    /// and its legs leave their room, which settles.
    pub(super) fn adhoc_call_finished(&mut self, id: CallId) {
        let Some(now) = self.last_now else { return };
        let Some(side) = self.calls.get(&id).and_then(|e| e.adhoc.as_ref()) else {
            return;
        };
        let room = side.room;
        let gone = side.gone.clone();
        let third_live = side
            .third
            .as_ref()
            .is_some_and(|t| t.state != ThirdState::Ended);
        if let Some(room) = room {
            let now_ms = Self::now_ms(now);
            if let Some(r) = self.adhoc.rooms.get_mut(&room) {
                let (leaving, staying): (Vec<Member>, Vec<Member>) = std::mem::take(&mut r.members)
                    .into_iter()
                    .partition(|m| m.call == id && m.party != Party::Third);
                r.members = staying;
                for mut m in leaving {
                    if !gone.contains(&m.party) {
                        m.report.left_ms = now_ms;
                        m.report.end = LeftBecause::Left;
                        r.past.push((m.seq, m.report));
                    }
                }
            }
            if let Some(side) = self.calls.get_mut(&id).and_then(|e| e.adhoc.as_mut()) {
                side.gone.extend([Party::Caller, Party::Callee]);
            }
            self.settle_room(now, room);
        }
        let still_live = self
            .third_mut(id)
            .is_some_and(|t| t.state != ThirdState::Ended);
        if third_live && still_live {
            // Its room (if any) already hung it up when left alone; else it ends here.
            let in_room = self.adhoc_room_of(id).is_some();
            if in_room {
                self.party_gone(now, id, Party::Third, LeftBecause::RoomEnded);
            } else {
                self.end_third(now, id, Outcome::Cancelled, "the call ended");
            }
        }
    }

    /// Whether an INVITE of the call's third leg is still alive (a late 2xx must still
    /// find its call to be acknowledged and hung up).
    pub(super) fn third_leg_ringing(&self, id: CallId) -> bool {
        self.calls
            .get(&id)
            .and_then(|e| e.adhoc.as_ref())
            .and_then(|a| a.third.as_ref())
            .is_some_and(|t| t.branches.iter().any(|l| self.txns.contains(&l.key)))
    }

    /// The third leg's media session could not be opened (no free ports).
    pub(super) fn adhoc_open_failed(&mut self, now: Now, id: CallId) {
        // Nothing was opened, so `end_third` closes nothing in the media plane.
        self.third_not_reached(now, id, Outcome::Failed, "no media ports");
    }

    /// The mixer refused a leg of an ad-hoc room (its codec changed to one it cannot
    /// mix): that party is hung up rather than left hearing nothing.
    pub(super) fn adhoc_refused(&mut self, now: Now, session: MediaSessionId, leg: MediaLeg) {
        let (call, party) = match self.adhoc.third_session(session) {
            Some(call) => (call, Party::Third),
            None => (CallId(session.0), party_of(leg)),
        };
        tracing::warn!(
            call = call.0,
            ?party,
            "the mixer refused an ad-hoc leg: hung up"
        );
        self.hang_up_party(now, call, party);
        self.party_gone(now, call, party, LeftBecause::Left);
    }

    /// Forgets what the ad-hoc side of a removed call kept in the engine's maps.
    pub(super) fn adhoc_forget(&mut self, id: CallId) {
        self.adhoc.lookups.retain(|_, c| *c != id);
        self.adhoc.sessions.retain(|_, c| *c != id);
        self.adhoc.client_keys.retain(|_, (c, _)| *c != id);
        self.adhoc.dialogs.retain(|_, (c, _)| *c != id);
    }

    /// Merges a user's two answered calls into one ad-hoc conference (from the CLI).
    pub(super) fn merge_calls(&mut self, now: Now, tenant: i64, user: i64) -> MergeResult {
        let mut calls: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, e)| {
                let winner_user = e
                    .call
                    .winner
                    .and_then(|w| e.call.branch(w))
                    .and_then(|b| b.target.user_id);
                e.tenant == Some(tenant)
                    && e.call.state == CallState::Answered
                    && e.call.winner.is_some()
                    && !e.reported
                    && !e.answered_here
                    && (e.caller_user == Some(user) || winner_user == Some(user))
            })
            .map(|(id, _)| *id)
            .collect();
        calls.sort();
        if calls.len() != 2 {
            return MergeResult::NotTwoCalls;
        }
        if calls
            .iter()
            .any(|c| self.calls.get(c).is_some_and(|e| e.media.is_none()))
        {
            return MergeResult::NotAnchored;
        }
        let busy = calls.iter().any(|c| {
            self.calls
                .get(c)
                .and_then(|e| e.adhoc.as_ref())
                .is_some_and(|a| {
                    a.room.is_some()
                        || a.third
                            .as_ref()
                            .is_some_and(|t| t.state != ThirdState::Ended)
                })
        });
        let members: Vec<(CallId, Party)> = calls
            .iter()
            .flat_map(|c| [(*c, Party::Caller), (*c, Party::Callee)])
            .collect();
        if busy || !self.members_mixable(&members) {
            return MergeResult::NotMixable;
        }
        for c in &calls {
            // A call one of them had on hold is taken off hold: everyone hears the room.
            if let Some(m) = self.calls.get_mut(c).and_then(|e| e.media.as_mut()) {
                m.held_by = None;
            }
            self.adhoc_side(*c);
        }
        tracing::info!(user, calls = ?calls, "merging a user's two calls into a conference");
        self.form_room(now, tenant, &members);
        MergeResult::Done
    }

    /// Whether a call's legs are in an ad-hoc room, so mid-call requests are answered
    /// here instead of being relayed to a party that may have left.
    pub(super) fn answers_in_room(&self, id: CallId) -> bool {
        self.adhoc_room_of(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(c: &mut KeyCollector, keys: &str, start_ms: u64, step_ms: u64) -> Vec<String> {
        keys.chars()
            .enumerate()
            .filter_map(|(i, k)| c.push(k, start_ms + i as u64 * step_ms))
            .collect()
    }

    #[test]
    fn star_three_number_hash_gives_the_number() {
        let mut c = KeyCollector::default();
        assert_eq!(feed(&mut c, "*3103#", 0, 300), ["103"]);
        // And again later on the same call.
        assert_eq!(feed(&mut c, "*347912345678#", 60_000, 300), ["47912345678"]);
    }

    #[test]
    fn other_keys_and_codes_give_nothing() {
        let mut c = KeyCollector::default();
        assert!(feed(&mut c, "123#", 0, 300).is_empty());
        assert!(feed(&mut c, "*4103#", 10_000, 300).is_empty());
        assert!(feed(&mut c, "*3#", 20_000, 300).is_empty());
        assert!(feed(&mut c, "*31A3#", 30_000, 300).is_empty());
    }

    #[test]
    fn a_star_starts_again_and_a_long_pause_forgets() {
        let mut c = KeyCollector::default();
        assert_eq!(feed(&mut c, "*31*3104#", 0, 300), ["104"]);
        let mut c = KeyCollector::default();
        assert!(c.push('*', 0).is_none());
        assert!(c.push('3', 100).is_none());
        assert!(c.push('1', 200).is_none());
        // Over five seconds later: the keys so far are forgotten.
        assert!(c.push('0', 5_300).is_none());
        assert!(c.push('#', 5_400).is_none());
    }

    #[test]
    fn a_number_longer_than_twenty_digits_is_refused() {
        let mut c = KeyCollector::default();
        let long = format!("*3{}#", "1".repeat(21));
        assert!(feed(&mut c, &long, 0, 100).is_empty());
        let ok = format!("*3{}#", "1".repeat(20));
        assert_eq!(feed(&mut c, &ok, 10_000, 100).len(), 1);
    }

    #[test]
    fn only_g711_is_mixable() {
        let pcmu = sdp::RtpMap::parse("0 PCMU/8000").expect("rtpmap");
        let g722 = sdp::RtpMap::parse("9 G722/8000").expect("rtpmap");
        assert!(mixable(Some(&pcmu)));
        assert!(!mixable(Some(&g722)));
        assert!(!mixable(None));
    }
}
