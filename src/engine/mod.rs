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

pub mod peer;
pub mod pipeline;
pub mod respond;
#[cfg(test)]
mod tests;

use crate::registrar::{
    AuthOutcome, Binding, BindingChange, Credentials, Registrar, RegistrarConfig,
};
use crate::sip::message::{parse, Header, HeaderName, Message, Parsed, StartLine};
use crate::sip::transaction::{
    ServerKeyParts, TimerConfig, Transaction, TransactionKey, TransactionTable,
};
use crate::sip::Method;
use crate::util::time::Now;
use bytes::Bytes;
use peer::Peer;
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
    /// Digest realm for phones profiles; `None` on trunks (no registration there).
    pub realm: Option<String>,
    /// Digest algorithms offered on this profile, preferred first.
    pub digest_algorithms: Vec<crate::sip::auth::Algorithm>,
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
    /// Seed of the engine's random numbers (tags, nonces); the runtime uses OS randomness.
    pub seed: [u8; 32],
    /// Key of the digest nonces; kept in the store so nonces outlive a restart.
    pub nonce_secret: [u8; 32],
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
    /// Graceful shutdown began: new requests get 503 with Retry-After.
    Drain,
}

/// An output of the engine.
#[derive(Debug, PartialEq)]
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

/// A REGISTER waiting for its user's credentials.
struct PendingAuth {
    key: TransactionKey,
    req: Message,
    peer: Peer,
    auth: Box<crate::registrar::PendingCheck>,
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

    /// Whether any REGISTER still waits for a credentials lookup.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input) {
        match input {
            Input::Received { now, data, peer } => {
                self.last_now = Some(now);
                self.handle_received(now, data, peer);
            }
            Input::Timeout(now) => {
                self.last_now = Some(now);
                self.txns.handle_timeout(now.mono);
                for change in self.registrar.expire(now.unix_secs()) {
                    self.outputs.push_back(Output::Persist(change));
                }
            }
            Input::CredentialsFound {
                now,
                lookup,
                credentials,
            } => {
                self.last_now = Some(now);
                self.finish_register(now, lookup, credentials);
            }
            Input::RestoreBindings { now, bindings } => {
                self.last_now = Some(now);
                self.registrar.restore(bindings, now.unix_secs());
            }
            Input::Rejected {
                now,
                head,
                peer,
                code,
            } => {
                self.last_now = Some(now);
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
            Input::Drain => self.draining = true,
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
        match (txn, binding) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn collect_transaction_outputs(&mut self) {
        while let Some(t) = self.txns.poll_transmit() {
            self.outputs.push_back(Output::Transmit {
                data: t.payload,
                peer: t.destination,
            });
        }
        while let Some(ev) = self.txns.poll_event() {
            if ev.event == crate::sip::transaction::TransactionEvent::SendTrying {
                // The 200 ms rule of RFC 3261 s17.2.1 fired before we answered; we keep the
                // request to build the 100 from it in `trying`.
                tracing::debug!("100 Trying due for an INVITE still being handled");
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
                    // No client transactions are started in this release; a stray
                    // response is dropped (RFC 3261 s18.1.2 lets a UAC discard it).
                    tracing::debug!(
                        code = msg.status(),
                        "response with no client transaction dropped"
                    );
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
            // an ACK for a 2xx belongs to a dialog, and there are none yet.
            let _ = self.txns.handle_ack(now.mono, &key);
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
            Method::Invite => {
                // Call routing arrives with the call model; until then no INVITE has a target.
                self.refuse(now, &req, &key, Refusal::plain(404, "Not Found"));
            }
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
                let tag = self.new_tag();
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
                let lookup = self.next_lookup;
                self.next_lookup += 1;
                self.pending.insert(
                    lookup,
                    PendingAuth {
                        key,
                        req,
                        peer,
                        auth: check,
                    },
                );
                self.outputs.push_back(Output::LookupCredentials {
                    lookup,
                    realm,
                    username,
                });
            }
        }
    }

    fn finish_register(&mut self, now: Now, lookup: u64, credentials: Option<Credentials>) {
        let Some(p) = self.pending.remove(&lookup) else {
            return;
        };
        let random: [u8; 16] = self.rng.gen();
        let source = format!(
            "{}:{}",
            p.peer.proto.via_token().to_ascii_lowercase(),
            p.peer.remote
        );
        match self.registrar.complete(
            &p.req,
            p.auth,
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
}
