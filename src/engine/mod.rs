//! SANS-IO: the engine composes the SIP codec, the transaction layer, the request
//! pipeline and the registrar behind one input/output surface.
//!
//! Contract (as in str0m and quinn-proto): call [`Engine::handle_input`], then drain
//! [`Engine::poll_output`] until it returns `None`, then sleep until
//! [`Engine::poll_timeout`] and feed `Input::Timeout`. The engine never reads the clock,
//! never touches a socket and never blocks; side effects it cannot do itself (database
//! reads and writes) are outputs whose answers come back as inputs.
//!
//! Sharding: all state of one request lives in the engine that received it, keyed by the
//! transaction key; a runtime that runs one engine per core routes each datagram by a hash
//! of its Call-ID (bindings, shared by all shards, would then move to their own shard).

pub mod adhoc;
pub mod b2bua;
pub mod conference;
pub mod media;
pub mod peer;
pub mod pipeline;
pub mod queue;
pub mod reinvite;
pub mod reliable;
pub mod respond;
#[cfg(test)]
mod tests;

use crate::call::model::{CallId, Direction};
use crate::registrar::{
    AuthOutcome, Binding, BindingChange, Credentials, Registrar, RegistrarConfig,
};
use crate::sip::message::{parse, Header, HeaderName, Message, Parsed, StartLine};
use crate::sip::transaction::{
    ServerKeyParts, TimerConfig, Transaction, TransactionKey, TransactionTable,
};
use crate::sip::Method;
use crate::util::time::Now;
use b2bua::{CallEntry, CallTimer, FinishedCall, NewCall, Side};
use bytes::Bytes;
use peer::{Peer, Proto};
use pipeline::Refusal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the engine knows about each listening socket (index = `Peer::listener`).
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    /// The profile the socket belongs to.
    pub profile: String,
    /// Our bound address.
    pub addr: SocketAddr,
    /// Transport of the socket.
    pub proto: Proto,
    /// Digest realm for phones profiles; `None` on trunks (no registration there).
    pub realm: Option<String>,
    /// Digest algorithms offered on this profile, preferred first.
    pub digest_algorithms: Vec<crate::sip::auth::Algorithm>,
    /// Number formats on trunk profiles.
    pub numbering: Option<crate::config::Numbering>,
    /// The carrier's address for calls out through a trunk profile (IP literal only:
    /// the switch never resolves names on the signalling path).
    pub outbound: Option<SocketAddr>,
    /// How often the carrier is pinged with OPTIONS (`None`: never).
    pub options_ping: Option<std::time::Duration>,
    /// Whether calls on this listener's profile have their media anchored.
    pub anchor_media: bool,
    /// Trusted carrier networks on trunk profiles (`None` on phones profiles).
    pub trusted: Option<Vec<crate::config::IpNetwork>>,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Listening sockets, indexed by `Peer::listener`.
    pub listeners: Vec<ListenerInfo>,
    /// Transaction timers (T1, T2, T4 and derived).
    pub timers: TimerConfig,
    /// Registrar settings.
    pub registrar: RegistrarConfig,
    /// Value of the Server header.
    pub server_header: String,
    /// Retry-After seconds on 503 while draining.
    pub retry_after_s: u32,
    /// How long an inbound call waits for the caller's name before it rings anyway.
    pub caller_lookup_budget: Duration,
    /// Seed of the engine's random numbers (tags, nonces); the runtime uses OS randomness.
    pub seed: [u8; 32],
    /// Key of the digest nonces; kept in the store so nonces outlive a restart.
    pub nonce_secret: [u8; 32],
    /// Media anchoring (`None`: SDP passes through, no media plane).
    pub media: Option<media::MediaConfig>,
}

/// An input to the engine.
#[derive(Debug)]
pub enum Input {
    /// A message arrived (one datagram or one stream frame).
    Received { now: Now, data: Bytes, peer: Peer },
    /// The deadline from `poll_timeout` passed.
    Timeout(Now),
    /// The answer to `Output::LookupCredentials`.
    CredentialsFound {
        now: Now,
        lookup: u64,
        credentials: Option<Credentials>,
    },
    /// The answer to `Output::ResolveNumber`.
    NumberResolved {
        now: Now,
        lookup: u64,
        owner: Option<NumberOwner>,
    },
    /// The answer to `Output::LookupCaller` (`None`: no name, or the lookup failed).
    CallerFound {
        now: Now,
        lookup: u64,
        name: Option<String>,
    },
    /// The answer to `Output::ResolveMobile`: (tenant, user).
    MobileResolved {
        now: Now,
        lookup: u64,
        user: Option<(i64, i64)>,
    },
    /// The answer to `Output::ResolveCallerNumbers`.
    CallerNumbersResolved {
        now: Now,
        lookup: u64,
        numbers: CallerNumbers,
    },
    /// The answer to `Output::ResolveUser`.
    UserResolved {
        now: Now,
        lookup: u64,
        user: Option<ResolvedUser>,
    },
    /// Bindings persisted before a restart.
    RestoreBindings { now: Now, bindings: Vec<Binding> },
    /// A stream message the framer refused; `head` is its header block. Answered
    /// statelessly with `code` (400 or 513) when it was a request.
    Rejected {
        now: Now,
        head: Bytes,
        peer: Peer,
        code: u16,
    },
    /// An event from the media plane.
    Media {
        now: Now,
        event: crate::media::control::MediaEvent,
    },
    /// The queue configuration (at start, and after every change in the store).
    QueueConfig {
        now: Now,
        config: Box<queue::QueueConfig>,
    },
    /// The conference rooms (at start, and after every change in the store).
    RoomConfig {
        now: Now,
        rooms: Vec<conference::RoomConfig>,
    },
    /// The answer to `Output::VerifyRoomPin` (`None`: wrong PIN, or the check failed).
    RoomPinChecked {
        now: Now,
        lookup: u64,
        role: Option<conference::PinRole>,
    },
    /// A control for a running conference (from the CLI through the store); answered
    /// with `Output::ConferenceControlDone`.
    ConferenceControl {
        now: Now,
        command: i64,
        room: i64,
        control: conference::RoomControl,
    },
    /// Merge a user's two answered calls into one ad-hoc conference (from the CLI);
    /// answered with `Output::MergeDone`.
    MergeCalls {
        now: Now,
        command: i64,
        tenant: i64,
        user: i64,
    },
    /// Graceful shutdown began: new requests get 503 with Retry-After.
    Drain,
    /// The drain time is over: every call still up is hung up (and logged).
    HangUpAll(Now),
}

impl Input {
    /// The time an input carries (all but `Drain`).
    pub fn now(&self) -> Option<Now> {
        match self {
            Input::Received { now, .. }
            | Input::CredentialsFound { now, .. }
            | Input::RestoreBindings { now, .. }
            | Input::Rejected { now, .. }
            | Input::NumberResolved { now, .. }
            | Input::CallerFound { now, .. }
            | Input::MobileResolved { now, .. }
            | Input::CallerNumbersResolved { now, .. }
            | Input::UserResolved { now, .. }
            | Input::Media { now, .. }
            | Input::QueueConfig { now, .. }
            | Input::RoomConfig { now, .. }
            | Input::RoomPinChecked { now, .. }
            | Input::ConferenceControl { now, .. }
            | Input::MergeCalls { now, .. } => Some(*now),
            Input::Timeout(now) | Input::HangUpAll(now) => Some(*now),
            Input::Drain => None,
        }
    }
}

/// An output of the engine.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Output {
    /// Send these bytes. `peer.remote` is the destination.
    Transmit { data: Bytes, peer: Peer },
    /// Look up a user's digest credentials; answer with `Input::CredentialsFound`.
    LookupCredentials {
        lookup: u64,
        realm: String,
        username: String,
    },
    /// Persist a binding change.
    Persist(BindingChange),
    /// Find who owns a called number (E.164); answer with `Input::NumberResolved`.
    ResolveNumber { lookup: u64, number: String },
    /// Look up the caller's name (users, directory, external service) within the
    /// budget; answer with `Input::CallerFound`.
    LookupCaller {
        lookup: u64,
        tenant_id: i64,
        number: String,
    },
    /// Find the user whose mobile this is; answer with `Input::MobileResolved`.
    ResolveMobile { lookup: u64, number: String },
    /// Find the numbers a user may present on outgoing calls; answer with
    /// `Input::CallerNumbersResolved`.
    ResolveCallerNumbers {
        lookup: u64,
        tenant_id: i64,
        user_id: i64,
    },
    /// Find a user of a tenant by extension; answer with `Input::UserResolved`.
    ResolveUser {
        lookup: u64,
        tenant_id: i64,
        extension: String,
    },
    /// A call ended: write it to the call log.
    CallEnded(Box<FinishedCall>),
    /// A command for the media plane.
    Media(crate::media::control::MediaCommand),
    /// An agent changed its queue presence from its phone: store it.
    AgentPresence {
        user_id: i64,
        presence: crate::queue::model::Presence,
    },
    /// Check a PIN entered for a room; answer with `Input::RoomPinChecked`.
    VerifyRoomPin {
        lookup: u64,
        room: i64,
        digits: conference::PinDigits,
    },
    /// A conference control was applied (or not).
    ConferenceControlDone {
        command: i64,
        result: conference::ControlResult,
    },
    /// A conference ended: write it to the conference log.
    ConferenceEnded(Box<conference::ConferenceReport>),
    /// A merge was applied (or not).
    MergeDone {
        command: i64,
        result: adhoc::MergeResult,
    },
}

/// The owner of a called number, as found by `Output::ResolveNumber`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberOwner {
    /// The tenant owning the number.
    pub tenant_id: i64,
    /// The user the number leads to (a personal number).
    pub user: Option<ResolvedUser>,
    /// The queue or answer group the number leads to (main and queue numbers).
    pub queue: Option<crate::queue::model::QueueId>,
    /// The conference room the number leads to.
    pub conference: Option<i64>,
}

/// The numbers a user may present on outgoing calls (only numbers the tenant owns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerNumbers {
    /// The user's own number (E.164).
    pub own: Option<String>,
    /// The tenant's main number (E.164).
    pub main: Option<String>,
    /// The user hides the number on every outgoing call (presentation setting).
    pub hide_by_default: bool,
}

/// A user a call is routed to, as found by `Output::ResolveUser`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user's id.
    pub user_id: i64,
    /// Digest username (with the realm: the address-of-record).
    pub username: String,
    /// Realm.
    pub realm: String,
    /// The user's mobile (E.164), rung in parallel with the phones through the trunk.
    pub mobile: Option<String>,
    /// The user's forwarding rules.
    pub forwarding: crate::call::plan::Forwarding,
}

/// Counters for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests received (valid).
    pub requests: u64,
    /// Responses received (valid).
    pub responses: u64,
    /// Messages that failed to parse.
    pub malformed: u64,
    /// Retransmitted requests absorbed by a transaction.
    pub retransmissions: u64,
}

/// What a request waiting for a lookup will do next.
enum Purpose {
    /// A REGISTER waiting for its user's credentials.
    Register(Box<crate::registrar::PendingCheck>),
    /// An INVITE from a phone waiting for its caller's credentials.
    AuthCaller(Box<crate::registrar::PendingCheck>),
    /// An INVITE from the trunk waiting for the owner of the called number.
    CalledNumber { number: String },
    /// An inbound call waiting for its caller's name (bounded by the lookup budget).
    CallerName(Box<PendingCall>),
    /// A call from a user's mobile waiting for the user to be found.
    MobileCaller,
    /// A call to an external number waiting for the caller's presentable numbers.
    Outbound {
        tenant_id: i64,
        caller_user: i64,
        number: String,
        presentation: crate::call::numbering::PresentationChoice,
    },
    /// An INVITE waiting for its callee (by extension) to be found.
    Callee {
        tenant_id: i64,
        caller_user: i64,
        extension: String,
    },
}

/// Where an inbound call goes.
enum InboundRoute {
    /// A user: ring the plan.
    User(Box<(ResolvedUser, crate::call::plan::RingPlan)>),
    /// A queue or answer group.
    Queue(crate::queue::model::QueueId),
    /// A conference room.
    Conference(i64),
}

/// An inbound call routed and ready to ring once the caller's name is known.
struct PendingCall {
    owner: NumberOwner,
    route: InboundRoute,
    number: String,
    caller: Option<String>,
}

/// The tenant and user a call is placed for.
struct UserRef {
    tenant_id: i64,
    user_id: i64,
}

/// A request waiting for a side-effect answer.
struct PendingAuth {
    key: TransactionKey,
    req: Message,
    peer: Peer,
    purpose: Purpose,
}

/// The engine. See the module docs for the driving contract.
pub struct Engine {
    cfg: EngineConfig,
    txns: TransactionTable<Peer>,
    registrar: Registrar,
    rng: StdRng,
    outputs: VecDeque<Output>,
    pending: HashMap<u64, PendingAuth>,
    next_lookup: u64,
    draining: bool,
    last_now: Option<Now>,
    stats: EngineStats,
    our_addrs: Vec<SocketAddr>,
    calls: HashMap<CallId, CallEntry>,
    next_call: u64,
    calls_by_server_key: HashMap<TransactionKey, CallId>,
    calls_by_client_key: HashMap<TransactionKey, (CallId, crate::call::model::BranchId)>,
    calls_by_dialog: HashMap<(Bytes, Bytes), (CallId, Side)>,
    relays: HashMap<TransactionKey, b2bua::Relay>,
    trunk: b2bua::TrunkHealth,
    call_timers: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64, CallTimer)>>,
    /// The drain time is over (`Input::HangUpAll`): calls are reported at once, without
    /// waiting for their media statistics, since the process is about to exit.
    final_hangup: bool,
    /// The queue engine (sans-IO): whom each queue caller is offered to, and when.
    queues: crate::queue::QueueEngine,
    /// What queue calls need beyond the queue engine's specs (agents' terminals, VIPs).
    queue_dir: queue::QueueDirectory,
    /// Conference rooms and the conferences running in them.
    conferences: conference::Conferences,
    /// PIN checks waiting for the store, by lookup id.
    pin_checks: HashMap<u64, CallId>,
    /// Ad-hoc conferences and the third parties being added to calls.
    adhoc: adhoc::AdHocConferences,
}

impl Engine {
    /// A new engine.
    pub fn new(cfg: EngineConfig) -> Engine {
        let rng = StdRng::from_seed(cfg.seed);
        Engine {
            txns: TransactionTable::new(cfg.timers),
            registrar: Registrar::new(cfg.registrar.clone(), cfg.nonce_secret),
            rng,
            outputs: VecDeque::new(),
            pending: HashMap::new(),
            next_lookup: 1,
            draining: false,
            last_now: None,
            stats: EngineStats::default(),
            our_addrs: cfg.listeners.iter().map(|l| l.addr).collect(),
            calls: HashMap::new(),
            next_call: 1,
            calls_by_server_key: HashMap::new(),
            calls_by_client_key: HashMap::new(),
            calls_by_dialog: HashMap::new(),
            relays: HashMap::new(),
            trunk: b2bua::TrunkHealth::default(),
            call_timers: std::collections::BinaryHeap::new(),
            final_hangup: false,
            queues: crate::queue::QueueEngine::new(u64::from_le_bytes([
                cfg.seed[0],
                cfg.seed[1],
                cfg.seed[2],
                cfg.seed[3],
                cfg.seed[4],
                cfg.seed[5],
                cfg.seed[6],
                cfg.seed[7],
            ])),
            queue_dir: queue::QueueDirectory::default(),
            conferences: conference::Conferences::default(),
            pin_checks: HashMap::new(),
            adhoc: adhoc::AdHocConferences::default(),
            cfg,
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Number of live server and client transactions.
    pub fn transactions(&self) -> usize {
        self.txns.len()
    }

    /// Whether nothing waits for an answer: no request parked on a lookup, no call up.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.active_calls() == 0
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input) {
        if let Some(now) = input.now() {
            self.last_now = Some(now);
        }
        match input {
            Input::Received { now, data, peer } => {
                self.handle_received(now, data, peer);
            }
            Input::Timeout(now) => {
                self.txns.handle_timeout(now.mono);
                self.collect_transaction_outputs();
                self.fire_call_timers(now);
                self.queues.handle_timeout(now);
                self.run_queue_actions(now);
                for change in self.registrar.expire(now.unix_secs()) {
                    self.outputs.push_back(Output::Persist(change));
                }
            }
            Input::CredentialsFound {
                now,
                lookup,
                credentials,
            } => {
                self.finish_register(now, lookup, credentials);
            }
            Input::NumberResolved { now, lookup, owner } => {
                self.number_resolved(now, lookup, owner);
            }
            Input::CallerFound { now, lookup, name } => {
                self.caller_name_found(now, lookup, name);
            }
            Input::MobileResolved { now, lookup, user } => {
                self.mobile_resolved(now, lookup, user);
            }
            Input::CallerNumbersResolved {
                now,
                lookup,
                numbers,
            } => {
                if !self.adhoc_numbers_resolved(now, lookup, &numbers) {
                    self.outbound_ready(now, lookup, numbers);
                }
            }
            Input::UserResolved { now, lookup, user } => {
                if !self.adhoc_user_resolved(now, lookup, &user) {
                    self.callee_resolved(now, lookup, user);
                }
            }
            Input::RestoreBindings { now, bindings } => {
                self.registrar.restore(bindings, now.unix_secs());
            }
            Input::Rejected {
                head, peer, code, ..
            } => {
                self.stats.malformed += 1;
                let req = match parse(head) {
                    Parsed::Valid(m) => Some(m),
                    Parsed::Invalid { partial, .. } => partial.map(|b| *b),
                };
                if let Some(req) = req.filter(Message::is_request) {
                    let reason = if code == 513 {
                        "Message Too Large"
                    } else {
                        "Bad Request - Malformed Message Framing"
                    };
                    self.reply_stateless(req, &peer, code, reason);
                }
            }
            Input::Media { now, event } => self.on_media_event(now, event),
            Input::QueueConfig { now, config } => self.configure_queues(now, *config),
            Input::RoomConfig { now: _, rooms } => self.configure_rooms(rooms),
            Input::RoomPinChecked { now, lookup, role } => {
                self.room_pin_checked(now, lookup, role);
            }
            Input::ConferenceControl {
                now,
                command,
                room,
                control,
            } => {
                let result = self.conference_control(now, room, control);
                self.outputs
                    .push_back(Output::ConferenceControlDone { command, result });
            }
            Input::MergeCalls {
                now,
                command,
                tenant,
                user,
            } => {
                let result = self.merge_calls(now, tenant, user);
                self.outputs
                    .push_back(Output::MergeDone { command, result });
            }
            Input::Drain => self.draining = true,
            Input::HangUpAll(now) => {
                self.final_hangup = true;
                self.hang_up_everything(now);
            }
        }
        if let Some(now) = self.last_now {
            self.arm_trunk_ping(now);
        }
        self.collect_transaction_outputs();
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the engine next needs `Input::Timeout`.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let txn = self.txns.poll_timeout();
        let binding = match (self.registrar.next_expiry(), self.last_now) {
            (Some(at), Some(now)) => {
                let secs = at.saturating_sub(now.unix_secs());
                Some(now.mono + Duration::from_secs(secs))
            }
            _ => None,
        };
        [
            txn,
            binding,
            self.next_call_timer(),
            self.queues.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Moves transaction outputs to the engine's outputs; client transaction events go
    /// to their calls, which may send more, so this loops until both queues are empty.
    fn collect_transaction_outputs(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.txns.poll_transmit() {
                progressed = true;
                self.outputs.push_back(Output::Transmit {
                    data: t.payload,
                    peer: t.destination,
                });
            }
            while let Some(ev) = self.txns.poll_event() {
                progressed = true;
                if ev.key.is_client() {
                    if let Some(now) = self.last_now {
                        self.on_client_event(now, &ev.key, ev.event);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn handle_received(&mut self, now: Now, data: Bytes, peer: Peer) {
        match parse(data) {
            Parsed::Valid(msg) => {
                if msg.is_request() {
                    self.stats.requests += 1;
                    self.handle_request(now, msg, peer);
                } else {
                    self.stats.responses += 1;
                    self.handle_response(now, msg);
                }
            }
            Parsed::Invalid { error, partial } => {
                self.stats.malformed += 1;
                tracing::debug!(%error, "malformed message");
                // Responses and garbage are dropped; an ACK is never answered.
                let Some(req) = partial else { return };
                let (code, reason) = error.status();
                self.reply_stateless(*req, &peer, code, reason);
            }
        }
    }

    /// Answers a request outside any transaction (it could not be parsed well enough
    /// to match one). An ACK is never answered; without a Via nothing can be routed.
    fn reply_stateless(&mut self, mut req: Message, peer: &Peer, code: u16, reason: &'static str) {
        if matches!(
            &req.start,
            StartLine::Request {
                method: Method::Ack,
                ..
            }
        ) {
            return;
        }
        if req.header(&HeaderName::Via).is_none() {
            return;
        }
        respond::stamp_top_via(&mut req, peer);
        let tag = self.new_tag();
        let mut resp = Message::response_to(&req, code, reason, Some(&tag));
        self.add_common_headers(&mut resp);
        let dest = respond::response_destination(&req, peer);
        self.outputs.push_back(Output::Transmit {
            data: resp.encode(),
            peer: Peer {
                remote: dest,
                ..*peer
            },
        });
    }

    fn server_key(msg: &Message) -> Option<TransactionKey> {
        let via = msg.top_via().ok()?;
        let top_via_raw = msg
            .header(&HeaderName::Via)
            .map(|h| h.value.clone())
            .unwrap_or_default();
        let StartLine::Request { method, uri } = &msg.start else {
            return None;
        };
        let tag = |n: Result<crate::sip::message::NameAddr, _>| {
            n.ok()
                .and_then(|n| n.tag().map(Bytes::copy_from_slice))
                .unwrap_or_default()
        };
        Some(TransactionKey::server(ServerKeyParts {
            branch: via.branch().map(Bytes::copy_from_slice),
            sent_by: Bytes::from(via.sent_by()),
            method: method.clone(),
            request_uri: uri.raw.clone(),
            from_tag: tag(msg.from()),
            to_tag: tag(msg.to()),
            call_id: msg.call_id().cloned().unwrap_or_default(),
            cseq: msg.cseq().map(|c| c.seq).unwrap_or(0),
            top_via: top_via_raw,
        }))
    }

    fn handle_request(&mut self, now: Now, mut req: Message, peer: Peer) {
        let Some(method) = req.method() else { return };
        respond::stamp_top_via(&mut req, &peer);
        let Some(key) = Self::server_key(&req) else {
            return;
        };
        let dest = Peer {
            remote: respond::response_destination(&req, &peer),
            ..peer
        };

        if method == Method::Ack {
            // ACK for a non-2xx final belongs to the INVITE transaction (RFC 3261 s17.2.1);
            // an ACK for a 2xx belongs to a dialog. An ACK is never answered.
            if self.txns.handle_ack(now.mono, &key).is_err() {
                let _ = self.handle_in_dialog(now, &req, &key, &method);
            }
            return;
        }
        if self.txns.contains(&key) {
            self.stats.retransmissions += 1;
            let _ = self.txns.handle_request_retransmission(now.mono, &key);
            return;
        }
        let started = if method == Method::Invite {
            self.txns
                .start_server_invite(now.mono, key.clone(), dest, peer.proto.is_reliable())
        } else {
            self.txns
                .start_server_non_invite(now.mono, key.clone(), dest, peer.proto.is_reliable())
        };
        if started.is_err() {
            return;
        }
        if method == Method::Cancel {
            self.handle_cancel(now, &req, &key);
            return;
        }
        // Requests inside a dialog go to their call, even while draining.
        if req.to().ok().is_some_and(|t| t.tag().is_some()) {
            if !self.handle_in_dialog(now, &req, &key, &method) {
                self.refuse(
                    now,
                    &req,
                    &key,
                    Refusal::plain(481, "Call/Transaction Does Not Exist"),
                );
            }
            return;
        }
        if self.draining {
            let refusal = Refusal {
                code: 503,
                reason: "Service Unavailable - Shutting Down",
                headers: vec![(HeaderName::RetryAfter, self.cfg.retry_after_s.to_string())],
            };
            self.refuse(now, &req, &key, refusal);
            return;
        }
        if let Some(r) = self.check(&req, &method, &peer) {
            self.refuse(now, &req, &key, r);
            return;
        }
        match method {
            Method::Options => self.reply_options(now, &req, &key),
            Method::Register => self.handle_register(now, req, key, peer),
            Method::Invite => self.handle_invite(now, req, key, dest),
            _ => self.refuse(now, &req, &key, Refusal::plain(405, "Method Not Allowed")),
        }
    }

    /// The pipeline checks, in the order of RFC 3261 s8.2.
    fn check(&self, req: &Message, method: &Method, peer: &Peer) -> Option<Refusal> {
        if let Some(info) = self.cfg.listeners.get(peer.listener) {
            if let Some(trusted) = &info.trusted {
                if !trusted.iter().any(|net| net.contains(peer.remote.ip())) {
                    return Some(Refusal::plain(403, "Forbidden - Untrusted Source"));
                }
            }
        }
        pipeline::method_refusal(method)
            .or_else(|| pipeline::check_max_forwards(req, method))
            .or_else(|| pipeline::check_loop(req, &self.our_addrs))
            .or_else(|| pipeline::check_scheme(req, method))
            .or_else(|| pipeline::check_require(req, method))
            .or_else(|| pipeline::check_session_interval(req, method))
            .or_else(|| pipeline::check_content(req, method))
    }

    fn handle_cancel(&mut self, now: Now, req: &Message, cancel_key: &TransactionKey) {
        // RFC 3261 s9.2: the CANCEL matches the INVITE transaction with the same key
        // (branch, sent-by) and method INVITE.
        let invite_key = match cancel_key.clone() {
            TransactionKey::Server {
                branch, sent_by, ..
            } => TransactionKey::Server {
                branch,
                sent_by,
                method: Method::Invite,
            },
            TransactionKey::Rfc2543 {
                request_uri,
                from_tag,
                to_tag,
                call_id,
                cseq,
                top_via,
                ..
            } => TransactionKey::Rfc2543 {
                request_uri,
                from_tag,
                to_tag,
                call_id,
                cseq,
                top_via,
                method: Method::Invite,
            },
            TransactionKey::Client { .. } => return,
        };
        let pending_invite = match self.txns.get(&invite_key) {
            Some(Transaction::ServerInvite(t)) => {
                Some(t.state() == crate::sip::transaction::ServerInviteState::Proceeding)
            }
            _ => None,
        };
        match pending_invite {
            None => self.refuse(
                now,
                req,
                cancel_key,
                Refusal::plain(481, "Call/Transaction Does Not Exist"),
            ),
            Some(still_proceeding) => {
                // The responses to the CANCEL and to the INVITE carry the To tag the
                // caller already saw in our provisional responses (RFC 3261 s9.2).
                let tag = match self
                    .calls_by_server_key
                    .get(&invite_key)
                    .and_then(|id| self.calls.get(id))
                {
                    Some(entry) => entry.inbound.to_tag.clone(),
                    None => self.new_tag(),
                };
                let mut ok = Message::response_to(req, 200, "OK", Some(&tag));
                self.add_common_headers(&mut ok);
                let _ = self
                    .txns
                    .send_response(now.mono, cancel_key, 200, ok.encode());
                if still_proceeding {
                    // 487 for the INVITE itself; built from the CANCEL, which carries the
                    // same Via, From, To, Call-ID and CSeq number (RFC 3261 s9.1).
                    let mut terminated =
                        Message::response_to(req, 487, "Request Terminated", Some(&tag));
                    for h in terminated
                        .headers
                        .iter_mut()
                        .filter(|h| h.name == HeaderName::CSeq)
                    {
                        let seq = req.cseq().map(|c| c.seq).unwrap_or(0);
                        h.value = Bytes::from(format!("{seq} INVITE"));
                    }
                    self.add_common_headers(&mut terminated);
                    let _ =
                        self.txns
                            .send_response(now.mono, &invite_key, 487, terminated.encode());
                    self.on_caller_cancel(now, &invite_key);
                }
            }
        }
    }

    fn refuse(&mut self, now: Now, req: &Message, key: &TransactionKey, r: Refusal) {
        let tag = self.new_tag();
        let mut resp = Message::response_to(req, r.code, r.reason, Some(&tag));
        for (name, value) in r.headers {
            resp.headers.push(Header::new(name, value));
        }
        self.add_common_headers(&mut resp);
        let _ = self
            .txns
            .send_response(now.mono, key, r.code, resp.encode());
    }

    fn reply_options(&mut self, now: Now, req: &Message, key: &TransactionKey) {
        let tag = self.new_tag();
        let mut resp = Message::response_to(req, 200, "OK", Some(&tag));
        resp.push(HeaderName::Allow, pipeline::ALLOW);
        resp.push(HeaderName::Accept, pipeline::ACCEPT);
        self.add_common_headers(&mut resp);
        let _ = self.txns.send_response(now.mono, key, 200, resp.encode());
    }

    fn add_common_headers(&self, resp: &mut Message) {
        resp.headers.push(Header::new(
            HeaderName::Server,
            self.cfg.server_header.clone(),
        ));
    }

    fn new_tag(&mut self) -> String {
        let v: u64 = self.rng.gen();
        format!("{v:016x}")
    }

    fn handle_register(&mut self, now: Now, req: Message, key: TransactionKey, peer: Peer) {
        let listener = self.cfg.listeners.get(peer.listener);
        let realm = listener.and_then(|l| l.realm.clone());
        let algorithms = listener
            .map(|l| l.digest_algorithms.clone())
            .unwrap_or_default();
        let Some(realm) = realm else {
            self.refuse(
                now,
                &req,
                &key,
                Refusal::plain(403, "Forbidden - Registration Not Served Here"),
            );
            return;
        };
        let random: [u8; 16] = self.rng.gen();
        match self
            .registrar
            .authenticate(&req, &realm, &algorithms, now.unix_secs(), random)
        {
            AuthOutcome::Refuse(r) => self.refuse(now, &req, &key, r),
            AuthOutcome::Lookup { username, check } => {
                let lookup = self.park(key, req, peer, Purpose::Register(check));
                self.outputs.push_back(Output::LookupCredentials {
                    lookup,
                    realm,
                    username,
                });
            }
        }
    }

    /// Parks a request until a side effect answers; returns the lookup id for the output.
    fn park(&mut self, key: TransactionKey, req: Message, peer: Peer, purpose: Purpose) -> u64 {
        let lookup = self.next_lookup;
        self.next_lookup += 1;
        self.pending.insert(
            lookup,
            PendingAuth {
                key,
                req,
                peer,
                purpose,
            },
        );
        lookup
    }

    /// 100 Trying on a new INVITE that waits for a database answer (RFC 3261 s17.2.1).
    fn send_trying(&mut self, now: Now, req: &Message, key: &TransactionKey) {
        let trying = Message::response_to(req, 100, "Trying", None);
        let _ = self.txns.send_response(now.mono, key, 100, trying.encode());
    }

    fn finish_register(&mut self, now: Now, lookup: u64, credentials: Option<Credentials>) {
        let Some(p) = self.pending.remove(&lookup) else {
            return;
        };
        let random: [u8; 16] = self.rng.gen();
        let check = match p.purpose {
            Purpose::Register(check) => check,
            Purpose::AuthCaller(check) => {
                let PendingAuth { key, req, peer, .. } = p;
                self.caller_authenticated(now, key, req, peer, check, credentials, random);
                self.collect_transaction_outputs();
                return;
            }
            Purpose::Callee { .. }
            | Purpose::CalledNumber { .. }
            | Purpose::CallerName(_)
            | Purpose::Outbound { .. }
            | Purpose::MobileCaller => return,
        };
        let source = format!(
            "{}:{}",
            p.peer.proto.via_token().to_ascii_lowercase(),
            p.peer.remote
        );
        match self.registrar.complete(
            &p.req,
            check,
            credentials.as_ref(),
            source,
            now.unix_secs(),
            random,
        ) {
            Ok((changes, contacts)) => {
                let tag = self.new_tag();
                let mut resp = Message::response_to(&p.req, 200, "OK", Some(&tag));
                for c in contacts {
                    resp.push(HeaderName::Contact, c);
                }
                self.add_common_headers(&mut resp);
                let _ = self
                    .txns
                    .send_response(now.mono, &p.key, 200, resp.encode());
                for change in changes {
                    self.outputs.push_back(Output::Persist(change));
                }
            }
            Err(r) => self.refuse(now, &p.req, &p.key, r),
        }
        self.collect_transaction_outputs();
    }

    /// A new INVITE (no To tag). Phones must authenticate (407); the trunk profile's
    /// inbound routing comes with the carrier-trunk work.
    fn handle_invite(&mut self, now: Now, req: Message, key: TransactionKey, peer: Peer) {
        let listener = self.cfg.listeners.get(peer.listener);
        let realm = listener.and_then(|l| l.realm.clone());
        let algorithms = listener
            .map(|l| l.digest_algorithms.clone())
            .unwrap_or_default();
        let Some(realm) = realm else {
            self.trunk_invite(now, req, key, peer);
            return;
        };
        let random: [u8; 16] = self.rng.gen();
        match self
            .registrar
            .authenticate_caller(&req, &realm, &algorithms, now.unix_secs(), random)
        {
            AuthOutcome::Refuse(r) => self.refuse(now, &req, &key, r),
            AuthOutcome::Lookup { username, check } => {
                // The answer needs a database round trip: tell the caller we are on it.
                self.send_trying(now, &req, &key);
                let lookup = self.park(key, req, peer, Purpose::AuthCaller(check));
                self.outputs.push_back(Output::LookupCredentials {
                    lookup,
                    realm,
                    username,
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn caller_authenticated(
        &mut self,
        now: Now,
        key: TransactionKey,
        req: Message,
        peer: Peer,
        check: Box<crate::registrar::PendingCheck>,
        credentials: Option<Credentials>,
        random: [u8; 16],
    ) {
        let creds =
            match self
                .registrar
                .verify_caller(check, credentials.as_ref(), now.unix_secs(), random)
            {
                Ok(c) => c.clone(),
                Err(r) => {
                    self.refuse(now, &req, &key, r);
                    return;
                }
            };
        self.route_user_call(now, key, req, peer, creds.tenant_id, creds.user_id);
    }

    /// Routes a call placed by a user (from a phone, or from the user's mobile through
    /// the trunk) by what was dialled.
    fn route_user_call(
        &mut self,
        now: Now,
        key: TransactionKey,
        req: Message,
        peer: Peer,
        tenant_id: i64,
        user_id: i64,
    ) {
        let creds = UserRef { tenant_id, user_id };
        // The dialling plan: an extension of the caller's own tenant, or a number that
        // leaves through the trunk (`#31#` first hides the caller's number on that call).
        let dialled = req
            .request_uri()
            .and_then(|u| u.user_unescaped())
            .map(|u| String::from_utf8_lossy(&u).into_owned())
            .unwrap_or_default();
        let classified = crate::call::numbering::classify_dialled(
            &dialled,
            &self.dialling_numbering(),
            crate::util::EXTENSION_DIGITS,
        );
        let extension = match classified.dialled {
            crate::call::numbering::Dialled::Extension(ext) => ext,
            crate::call::numbering::Dialled::External(number) => {
                let (tenant_id, user_id) = (creds.tenant_id, creds.user_id);
                let lookup = self.park(
                    key,
                    req,
                    peer,
                    Purpose::Outbound {
                        tenant_id,
                        caller_user: user_id,
                        number: number.to_string(),
                        presentation: classified.presentation,
                    },
                );
                self.outputs.push_back(Output::ResolveCallerNumbers {
                    lookup,
                    tenant_id,
                    user_id,
                });
                return;
            }
            crate::call::numbering::Dialled::FeatureCode(code) => {
                self.feature_code_call(now, key, req, peer, creds, &code);
                return;
            }
            _ => {
                self.refuse(now, &req, &key, Refusal::plain(404, "Not Found"));
                return;
            }
        };
        let tenant_id = creds.tenant_id;
        if let Some(room) = self.room_for_extension(tenant_id, &extension) {
            let new = NewCall {
                key,
                req,
                peer,
                direction: Direction::Internal,
                tenant: Some(tenant_id),
                caller_user: Some(creds.user_id),
                callee_user: None,
                callee: extension,
                caller: None,
                caller_name: None,
                hide_number: false,
                forwarding: crate::call::plan::Forwarding::default(),
                queue: None,
                conference: Some(conference::ConferenceLeg::new(room)),
            };
            let plan = crate::call::plan::RingPlan {
                targets: Vec::new(),
                no_answer: crate::call::plan::DEFAULT_NO_ANSWER,
            };
            self.start_call(now, new, plan);
            return;
        }
        let lookup = self.park(
            key,
            req,
            peer,
            Purpose::Callee {
                tenant_id,
                caller_user: creds.user_id,
                extension: extension.clone(),
            },
        );
        self.outputs.push_back(Output::ResolveUser {
            lookup,
            tenant_id,
            extension,
        });
    }

    /// A feature code from a user's phone: applied, then confirmed by an announcement
    /// the switch plays before it hangs up. Needs the media plane (else 503, and nothing
    /// changes).
    fn feature_code_call(
        &mut self,
        now: Now,
        key: TransactionKey,
        req: Message,
        peer: Peer,
        creds: UserRef,
        code: &str,
    ) {
        if queue::feature_code(code).is_none() {
            self.refuse(
                now,
                &req,
                &key,
                Refusal::plain(404, "Not Found - Unknown Feature Code"),
            );
            return;
        }
        if self.cfg.media.is_none() {
            self.refuse(
                now,
                &req,
                &key,
                Refusal::plain(
                    503,
                    "Service Unavailable - No Media Plane For Feature Codes",
                ),
            );
            return;
        }
        let Some(prompt) = self.apply_feature_code(now, creds.user_id, code) else {
            return;
        };
        let new = NewCall {
            key,
            req,
            peer,
            direction: Direction::Internal,
            tenant: Some(creds.tenant_id),
            caller_user: None,
            callee_user: None,
            callee: code.to_owned(),
            caller: None,
            caller_name: None,
            hide_number: false,
            forwarding: crate::call::plan::Forwarding::default(),
            queue: Some(queue::QueueCall::service(vec![prompt.to_owned()])),
            conference: None,
        };
        let plan = crate::call::plan::RingPlan {
            targets: Vec::new(),
            no_answer: crate::call::plan::DEFAULT_NO_ANSWER,
        };
        self.start_call(now, new, plan);
    }

    fn callee_resolved(&mut self, now: Now, lookup: u64, user: Option<ResolvedUser>) {
        let Some(p) = self.pending.remove(&lookup) else {
            return;
        };
        let Purpose::Callee {
            tenant_id,
            caller_user,
            extension,
        } = p.purpose
        else {
            return;
        };
        let Some(user) = user else {
            self.refuse(now, &p.req, &p.key, Refusal::plain(404, "Not Found"));
            self.collect_transaction_outputs();
            return;
        };
        let aor = format!("sip:{}@{}", user.username, user.realm);
        let plan = self.plan_for_user(user.user_id, &aor, user.mobile.as_deref(), now);
        let new = NewCall {
            key: p.key,
            req: p.req,
            peer: p.peer,
            direction: Direction::Internal,
            tenant: Some(tenant_id),
            caller_user: Some(caller_user),
            callee_user: Some(user.user_id),
            callee: extension,
            caller: None,
            caller_name: None,
            hide_number: false,
            forwarding: user.forwarding.clone(),
            queue: None,
            conference: None,
        };
        self.start_call(now, new, plan);
        self.collect_transaction_outputs();
    }

    /// An INVITE from the carrier (its source already checked against the trusted
    /// networks): find the owner of the called number.
    fn trunk_invite(&mut self, now: Now, req: Message, key: TransactionKey, peer: Peer) {
        // A call originated by a user's mobile (RFC 5502 P-Served-User with sescase=orig)
        // is that user's outgoing call.
        if let Ok(Some(served)) = crate::sip::ext::served_user::served_user(&req) {
            if served.is_originating() {
                let numbering = self
                    .cfg
                    .listeners
                    .get(peer.listener)
                    .and_then(|l| l.numbering.clone());
                let mobile = served
                    .uri
                    .user_unescaped()
                    .map(|u| String::from_utf8_lossy(&u).into_owned())
                    .zip(numbering)
                    .and_then(|(u, n)| crate::call::numbering::to_e164(&u, &n).ok());
                let Some(mobile) = mobile else {
                    self.refuse(
                        now,
                        &req,
                        &key,
                        Refusal::plain(403, "Forbidden - Unknown Served User"),
                    );
                    return;
                };
                self.send_trying(now, &req, &key);
                let lookup = self.park(key, req, peer, Purpose::MobileCaller);
                self.outputs.push_back(Output::ResolveMobile {
                    lookup,
                    number: mobile.to_string(),
                });
                return;
            }
        }
        let numbering = self
            .cfg
            .listeners
            .get(peer.listener)
            .and_then(|l| l.numbering.clone());
        let called = req
            .request_uri()
            .and_then(|u| u.user_unescaped())
            .map(|u| String::from_utf8_lossy(&u).into_owned());
        let number = match (called, numbering) {
            (Some(c), Some(n)) => crate::call::numbering::to_e164(&c, &n).ok(),
            _ => None,
        };
        let Some(number) = number else {
            self.refuse(
                now,
                &req,
                &key,
                Refusal::plain(404, "Not Found - Unknown Number"),
            );
            return;
        };
        self.send_trying(now, &req, &key);
        let number = number.to_string();
        let lookup = self.park(
            key,
            req,
            peer,
            Purpose::CalledNumber {
                number: number.clone(),
            },
        );
        self.outputs
            .push_back(Output::ResolveNumber { lookup, number });
    }

    /// Routes an inbound call to the number's user: every registered phone and the
    /// mobile (through the trunk) at once; the first to answer wins.
    fn number_resolved(&mut self, now: Now, lookup: u64, owner: Option<NumberOwner>) {
        let Some(p) = self.pending.remove(&lookup) else {
            return;
        };
        let Purpose::CalledNumber { number } = p.purpose else {
            return;
        };
        let route = match owner.as_ref() {
            Some(NumberOwner {
                user: Some(user), ..
            }) => {
                let aor = format!("sip:{}@{}", user.username, user.realm);
                let plan = self.plan_for_user(user.user_id, &aor, user.mobile.as_deref(), now);
                Some(InboundRoute::User(Box::new((user.clone(), plan))))
            }
            Some(NumberOwner {
                queue: Some(queue), ..
            }) => Some(InboundRoute::Queue(*queue)),
            Some(NumberOwner {
                conference: Some(room),
                ..
            }) if self.room_exists(*room) => Some(InboundRoute::Conference(*room)),
            _ => None,
        };
        let (Some(owner), Some(route)) = (owner, route) else {
            self.refuse(now, &p.req, &p.key, Refusal::plain(404, "Not Found"));
            self.collect_transaction_outputs();
            return;
        };
        // Caller-ID enrichment: ask for the caller's name within the lookup budget;
        // the call rings with the bare number if no answer comes in time.
        let numbering = self
            .cfg
            .listeners
            .get(p.peer.listener)
            .and_then(|l| l.numbering.clone());
        let caller = caller_number(&p.req, numbering.as_ref());
        let pending = PendingCall {
            owner,
            route,
            number,
            caller: caller.clone(),
        };
        match caller {
            Some(number) => {
                let tenant_id = pending.owner.tenant_id;
                let purpose = Purpose::CallerName(Box::new(pending));
                let lookup = self.park(p.key, p.req, p.peer, purpose);
                self.outputs.push_back(Output::LookupCaller {
                    lookup,
                    tenant_id,
                    number,
                });
                let deadline = now.mono + self.cfg.caller_lookup_budget;
                self.call_timers.push(std::cmp::Reverse((
                    deadline,
                    lookup,
                    CallTimer::LookupDeadline,
                )));
            }
            None => self.ring_inbound(now, p.key, p.req, p.peer, pending, None),
        }
        self.collect_transaction_outputs();
    }

    /// The caller's name arrived (or the budget ran out: `name` is `None`).
    pub(crate) fn caller_name_found(&mut self, now: Now, lookup: u64, name: Option<String>) {
        let Some(p) = self.pending.remove(&lookup) else {
            return;
        };
        let Purpose::CallerName(pending) = p.purpose else {
            self.pending.insert(lookup, p);
            return;
        };
        self.ring_inbound(now, p.key, p.req, p.peer, *pending, name);
        self.collect_transaction_outputs();
    }

    fn ring_inbound(
        &mut self,
        now: Now,
        key: TransactionKey,
        req: Message,
        peer: Peer,
        c: PendingCall,
        name: Option<String>,
    ) {
        let hide_number = crate::sip::ext::identity::privacy(&req).hides_identity();
        let tenant = c.owner.tenant_id;
        let mut conference = None;
        let (callee_user, forwarding, plan, queue) = match c.route {
            InboundRoute::User(route) => {
                let (user, plan) = *route;
                (Some(user.user_id), user.forwarding, plan, None)
            }
            InboundRoute::Queue(queue) => {
                let Some(kind) = self.queues.spec(queue).map(|s| s.kind) else {
                    self.refuse(
                        now,
                        &req,
                        &key,
                        Refusal::plain(480, "Temporarily Unavailable - Queue Not Loaded"),
                    );
                    return;
                };
                let vip = self.is_vip(tenant, c.caller.as_deref());
                let plan = crate::call::plan::RingPlan {
                    targets: Vec::new(),
                    no_answer: crate::call::plan::DEFAULT_NO_ANSWER,
                };
                (
                    None,
                    crate::call::plan::Forwarding::default(),
                    plan,
                    Some(queue::QueueCall::new(kind, queue, vip)),
                )
            }
            InboundRoute::Conference(room) => {
                conference = Some(conference::ConferenceLeg::new(room));
                (
                    None,
                    crate::call::plan::Forwarding::default(),
                    crate::call::plan::RingPlan {
                        targets: Vec::new(),
                        no_answer: crate::call::plan::DEFAULT_NO_ANSWER,
                    },
                    None,
                )
            }
        };
        let new = NewCall {
            key,
            req,
            peer,
            direction: Direction::Inbound,
            tenant: Some(tenant),
            caller_user: None,
            callee_user,
            callee: c.number,
            caller: c.caller,
            caller_name: name,
            hide_number,
            forwarding,
            queue,
            conference,
        };
        self.start_call(now, new, plan);
    }

    /// Places a user's call to an external number through the carrier trunk. The
    /// presented number is the user's own number, else the tenant's main number; `#31#`
    /// hides it (Privacy: id, with the identity still asserted to the trusted carrier).
    fn outbound_ready(&mut self, now: Now, lookup: u64, numbers: CallerNumbers) {
        let Some(p) = self.pending.remove(&lookup) else {
            return;
        };
        let Purpose::Outbound {
            tenant_id,
            caller_user,
            number,
            presentation,
        } = p.purpose
        else {
            return;
        };
        let hide = presentation.hides(numbers.hide_by_default);
        let Some(target) = self.carrier_target(&number) else {
            let reason = if self.carrier().is_some() {
                "Service Unavailable - Trunk Down"
            } else {
                "Service Unavailable - No Trunk Configured"
            };
            self.refuse(now, &p.req, &p.key, Refusal::plain(503, reason));
            self.collect_transaction_outputs();
            return;
        };
        let Some(presented) = numbers.own.or(numbers.main) else {
            self.refuse(
                now,
                &p.req,
                &p.key,
                Refusal::plain(403, "Forbidden - No Number To Present"),
            );
            self.collect_transaction_outputs();
            return;
        };
        // A call to an external number rings for up to two minutes (the carrier usually
        // ends it sooner with its own no-answer treatment).
        let plan = crate::call::plan::RingPlan {
            targets: vec![target],
            no_answer: std::time::Duration::from_secs(120),
        };
        let new = NewCall {
            key: p.key,
            req: p.req,
            peer: p.peer,
            direction: Direction::Outbound,
            tenant: Some(tenant_id),
            caller_user: Some(caller_user),
            callee_user: None,
            callee: number,
            caller: Some(presented),
            caller_name: None,
            hide_number: hide,
            forwarding: crate::call::plan::Forwarding::default(),
            queue: None,
            conference: None,
        };
        self.start_call(now, new, plan);
        self.collect_transaction_outputs();
    }

    /// The number formats users dial in (the trunk's; Norway's when no trunk says).
    pub(crate) fn dialling_numbering(&self) -> crate::config::Numbering {
        self.cfg
            .listeners
            .iter()
            .find_map(|l| l.numbering.clone())
            .unwrap_or(crate::config::Numbering {
                country_code: "47".into(),
                national_prefix: String::new(),
                international_prefix: "00".into(),
            })
    }

    /// Whom a call to a user rings: every registered phone of the address-of-record and
    /// the mobile (the extra terminal) through the carrier, all at once.
    pub(crate) fn plan_for_user(
        &self,
        user_id: i64,
        aor: &str,
        mobile: Option<&str>,
        now: Now,
    ) -> crate::call::plan::RingPlan {
        let mut contacts: Vec<(String, String)> = self
            .registrar
            .bindings_of(aor, now.unix_secs())
            .map(|b| (b.contact.clone(), b.source.clone()))
            .collect();
        contacts.dedup();
        let mut plan =
            crate::call::plan::ring_user(user_id, contacts, crate::call::plan::DEFAULT_NO_ANSWER);
        if let Some(target) = mobile.and_then(|m| self.carrier_target(m)) {
            plan.targets.push(crate::call::plan::Target {
                user_id: Some(user_id),
                kind: crate::call::plan::TargetKind::Mobile,
                ..target
            });
        }
        plan
    }

    /// A number reached through the carrier trunk's outbound address, if one is set.
    pub(crate) fn carrier_target(&self, number: &str) -> Option<crate::call::plan::Target> {
        if !self.trunk_up() {
            return None;
        }
        let (_, _, carrier) = self.carrier()?;
        Some(crate::call::plan::Target {
            user_id: None,
            kind: crate::call::plan::TargetKind::Trunk,
            uri: format!("sip:{number}@{carrier};user=phone"),
            flow: format!("udp:{carrier}"),
        })
    }

    fn mobile_resolved(&mut self, now: Now, lookup: u64, user: Option<(i64, i64)>) {
        let Some(p) = self.pending.remove(&lookup) else {
            return;
        };
        if !matches!(p.purpose, Purpose::MobileCaller) {
            return;
        }
        match user {
            Some((tenant_id, user_id)) => {
                self.route_user_call(now, p.key, p.req, p.peer, tenant_id, user_id)
            }
            None => self.refuse(
                now,
                &p.req,
                &p.key,
                Refusal::plain(403, "Forbidden - Unknown Served User"),
            ),
        }
        self.collect_transaction_outputs();
    }
}

/// The caller's number in E.164 from a trusted trunk INVITE: P-Asserted-Identity first
/// (RFC 3325), then From. `None` when the caller withheld it (Privacy: id, anonymous).
fn caller_number(req: &Message, numbering: Option<&crate::config::Numbering>) -> Option<String> {
    use crate::sip::ext::identity;
    if identity::privacy(req).hides_identity() {
        return None;
    }
    let numbering = numbering?;
    let from_pai = identity::asserted_identities(req)
        .into_iter()
        .map(|na| na.uri);
    let from = req.from().ok().map(|f| f.uri);
    from_pai.chain(from).find_map(|uri| {
        let user = uri.user_unescaped()?;
        let user = String::from_utf8_lossy(&user).into_owned();
        crate::call::numbering::to_e164(&user, numbering)
            .ok()
            .map(|n| n.to_string())
    })
}
