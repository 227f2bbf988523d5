//! Reliable provisional responses toward the caller (RFC 3262, the UAS side).
//!
//! When the caller's INVITE requires `100rel`, every provisional we relay to it (except
//! 100) is sent reliably; when it only supports `100rel`, provisionals that carry SDP
//! (early media) are, so the early answer cannot be lost. A reliable provisional carries
//! `Require: 100rel` and an `RSeq`, is retransmitted (T1 doubling, over unreliable
//! transports) until the caller's PRACK, and only one is outstanding at a time: later
//! provisionals wait in a short queue. Our 2xx waits for the PRACK of a provisional that
//! carried SDP (RFC 3262 s3). Without a PRACK within 64*T1 the call is refused with 5xx.

use super::b2bua::{CallTimer, Side};
use super::Engine;
use crate::call::model::{CallId, CallState, Outcome};
use crate::sip::ext::rseq;
use crate::sip::message::Message;
use crate::util::time::Now;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many provisionals may wait behind an unacknowledged one; older ones are dropped
/// (a newer provisional supersedes them for the caller's display).
const QUEUE_LIMIT: usize = 4;

/// The caller's reliable-provisional state (only for callers that support `100rel`).
pub struct ReliableProvisionals {
    /// The caller requires `100rel`: every provisional is sent reliably.
    required: bool,
    /// The RSeq of the next reliable provisional.
    next_rseq: u32,
    /// The reliable provisional waiting for its PRACK.
    unacked: Option<Unacked>,
    /// Provisionals waiting for the outstanding one to be acknowledged.
    queue: VecDeque<(u16, Message)>,
    /// The callee's 2xx, held back until the SDP-carrying provisional is acknowledged.
    deferred_answer: Option<Message>,
}

/// One sent, not yet acknowledged reliable provisional.
struct Unacked {
    rseq: u32,
    bytes: Bytes,
    has_sdp: bool,
    interval: Duration,
    give_up: Instant,
}

/// Why a PRACK was refused (each maps to a response to the PRACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrackOutcome {
    /// It acknowledged the outstanding provisional: 200.
    Acknowledged,
    /// It matches no unacknowledged provisional: 481 (RFC 3262 s3).
    NoMatch,
}

impl ReliableProvisionals {
    /// The state for a caller's INVITE, or `None` when it does not support `100rel`.
    /// `first_rseq` is random (RFC 3262 s3: between 1 and 2**31 - 1).
    pub fn for_invite(invite: &Message, first_rseq: u32) -> Option<Self> {
        let required = rseq::requires_100rel(invite);
        if !required && !rseq::supports_100rel(invite) {
            return None;
        }
        Some(Self {
            required,
            next_rseq: first_rseq.clamp(1, (1 << 31) - 1),
            unacked: None,
            queue: VecDeque::new(),
            deferred_answer: None,
        })
    }

    /// Whether a provisional with or without SDP must go reliably.
    fn wants_reliable(&self, has_sdp: bool) -> bool {
        self.required || has_sdp
    }

    /// Whether our 2xx must wait (an SDP-carrying provisional is not acknowledged yet).
    pub fn answer_must_wait(&self) -> bool {
        self.unacked.as_ref().is_some_and(|u| u.has_sdp)
    }

    /// Matches a PRACK's RAck against the outstanding provisional.
    fn acknowledge(&mut self, rack: &rseq::RAck, invite_cseq: u32) -> PrackOutcome {
        let matches = self.unacked.as_ref().is_some_and(|u| {
            u.rseq == rack.rseq
                && rack.cseq == invite_cseq
                && rack.method == crate::sip::Method::Invite
        });
        if matches {
            self.unacked = None;
            PrackOutcome::Acknowledged
        } else {
            PrackOutcome::NoMatch
        }
    }

    /// The call is decided (final response sent): nothing more is retransmitted.
    pub fn settle(&mut self) {
        self.unacked = None;
        self.queue.clear();
        self.deferred_answer = None;
    }
}

impl Engine {
    /// Sends a provisional response to the caller: reliably when the caller's 100rel
    /// support asks for it, after the outstanding one is acknowledged.
    pub(super) fn provisional_to_caller(&mut self, now: Now, id: CallId, code: u16, r: Message) {
        let has_sdp = !r.body.is_empty();
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(rel) = entry.inbound.reliable.as_mut() else {
            self.send_to_caller(now, id, code, r);
            return;
        };
        if !rel.wants_reliable(has_sdp) && rel.unacked.is_none() {
            self.send_to_caller(now, id, code, r);
            return;
        }
        if rel.unacked.is_some() {
            if rel.queue.len() >= QUEUE_LIMIT {
                rel.queue.pop_front();
            }
            rel.queue.push_back((code, r));
            return;
        }
        self.send_reliable(now, id, code, r);
    }

    /// Sends one reliable provisional and starts its retransmission.
    fn send_reliable(&mut self, now: Now, id: CallId, code: u16, mut r: Message) {
        let t1 = self.cfg.timers.t1;
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(rel) = entry.inbound.reliable.as_mut() else {
            return;
        };
        let number = rel.next_rseq;
        rel.next_rseq = rel.next_rseq.wrapping_add(1);
        rseq::add_require_100rel(&mut r);
        rseq::set_rseq(&mut r, number);
        let bytes = r.encode();
        rel.unacked = Some(Unacked {
            rseq: number,
            bytes: bytes.clone(),
            has_sdp: !r.body.is_empty(),
            interval: t1,
            give_up: now.mono + 64 * t1,
        });
        // The PRACK arrives in the early dialog our To tag made.
        if let Some(call_id) = entry.inbound.req.call_id() {
            let dkey = (call_id.clone(), Bytes::from(entry.inbound.to_tag.clone()));
            self.calls_by_dialog.insert(dkey, (id, Side::Inbound));
        }
        let key = entry.inbound.key.clone();
        let _ = self.txns.send_response(now.mono, &key, code, bytes);
        self.arm(now.mono + t1, id, CallTimer::RetransmitProvisional);
    }

    /// Retransmits the outstanding reliable provisional, or gives up after 64*T1.
    pub(super) fn on_retransmit_provisional(&mut self, now: Now, id: CallId) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if entry.call.state == CallState::Ended {
            return;
        }
        let reliable_transport = entry.inbound.peer.proto.is_reliable();
        let peer = entry.inbound.peer;
        let Some(unacked) = entry
            .inbound
            .reliable
            .as_mut()
            .and_then(|r| r.unacked.as_mut())
        else {
            return;
        };
        if now.mono >= unacked.give_up {
            self.provisional_not_acknowledged(now, id);
            return;
        }
        // A stream transport delivers it once; only the give-up deadline applies.
        unacked.interval = if reliable_transport {
            unacked.give_up.saturating_duration_since(now.mono)
        } else {
            unacked.interval * 2
        };
        let next = (now.mono + unacked.interval).min(unacked.give_up);
        if !reliable_transport {
            let data = unacked.bytes.clone();
            self.outputs
                .push_back(super::Output::Transmit { data, peer });
        }
        self.arm(next, id, CallTimer::RetransmitProvisional);
    }

    /// RFC 3262 s3: no PRACK within 64*T1: the INVITE is refused with a 5xx and the
    /// branches are cancelled.
    fn provisional_not_acknowledged(&mut self, now: Now, id: CallId) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(rel) = entry.inbound.reliable.as_mut() {
            rel.settle();
        }
        if entry.call.winner.is_some() {
            // Answered meanwhile (the 2xx did not need this PRACK): nothing to refuse.
            return;
        }
        let cancel = entry.call.cancel_all();
        let now_ms = Self::now_ms(now);
        entry.call.end(
            Outcome::Failed,
            "provisional response not acknowledged",
            now_ms,
        );
        for bid in cancel {
            self.send_cancel(now, id, bid);
        }
        self.final_to_caller(now, id, 504, "Server Time-out - No PRACK");
        self.finish_if_done(id);
    }

    /// A PRACK from the caller: acknowledges the outstanding provisional (200) and lets
    /// the next one, or our held-back 2xx, go; anything else gets 481.
    pub(super) fn on_caller_prack(
        &mut self,
        now: Now,
        id: CallId,
        req: &Message,
        key: &crate::sip::transaction::TransactionKey,
    ) {
        let invite_cseq = self
            .calls
            .get(&id)
            .and_then(|e| e.inbound.req.cseq().ok())
            .map(|c| c.seq)
            .unwrap_or(0);
        let outcome = match (rseq::rack(req), self.calls.get_mut(&id)) {
            (Ok(Some(rack)), Some(entry)) => match entry.inbound.reliable.as_mut() {
                Some(rel) => rel.acknowledge(&rack, invite_cseq),
                None => PrackOutcome::NoMatch,
            },
            (Err(_) | Ok(None), _) => {
                let mut r = Message::response_to(req, 400, "Bad Request - Malformed RAck", None);
                self.add_common(&mut r);
                let _ = self.txns.send_response(now.mono, key, 400, r.encode());
                return;
            }
            (_, None) => PrackOutcome::NoMatch,
        };
        let (code, reason) = match outcome {
            PrackOutcome::Acknowledged => (200, "OK"),
            PrackOutcome::NoMatch => (481, "Call/Transaction Does Not Exist - No Such RSeq"),
        };
        let mut r = Message::response_to(req, code, reason, None);
        self.add_common(&mut r);
        let _ = self.txns.send_response(now.mono, key, code, r.encode());
        if outcome != PrackOutcome::Acknowledged {
            return;
        }
        let Some(rel) = self
            .calls
            .get_mut(&id)
            .and_then(|e| e.inbound.reliable.as_mut())
        else {
            return;
        };
        if let Some(answer) = rel.deferred_answer.take() {
            rel.queue.clear();
            self.answer_caller(now, id, &answer);
            return;
        }
        self.flush_queue(now, id);
    }

    /// Sends queued provisionals until one must go reliably.
    fn flush_queue(&mut self, now: Now, id: CallId) {
        loop {
            let Some(rel) = self
                .calls
                .get_mut(&id)
                .and_then(|e| e.inbound.reliable.as_mut())
            else {
                return;
            };
            let Some((code, r)) = rel.queue.pop_front() else {
                return;
            };
            if rel.wants_reliable(!r.body.is_empty()) {
                self.send_reliable(now, id, code, r);
                return;
            }
            self.send_to_caller(now, id, code, r);
        }
    }

    /// Holds the callee's 2xx back while an SDP-carrying provisional is unacknowledged;
    /// returns true when it was held.
    pub(super) fn hold_answer_for_prack(&mut self, id: CallId, resp: &Message) -> bool {
        let Some(rel) = self
            .calls
            .get_mut(&id)
            .and_then(|e| e.inbound.reliable.as_mut())
        else {
            return false;
        };
        if !rel.answer_must_wait() {
            rel.queue.clear();
            return false;
        }
        rel.deferred_answer = Some(resp.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(extra: &str) -> Message {
        let raw = format!(
            "INVITE sip:1002@example.no SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: <sip:1001@example.no>;tag=a\r\n\
             To: <sip:1002@example.no>\r\n\
             Call-ID: c1\r\n\
             CSeq: 7 INVITE\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n"
        );
        match crate::sip::message::parse(Bytes::from(raw)) {
            crate::sip::message::parse::Parsed::Valid(m) => m,
            other => panic!("not valid: {other:?}"),
        }
    }

    #[test]
    fn only_callers_that_support_100rel_get_reliable_provisionals() {
        assert!(ReliableProvisionals::for_invite(&invite(""), 1).is_none());
        let s = ReliableProvisionals::for_invite(&invite("Supported: timer, 100rel\r\n"), 5)
            .expect("supported");
        assert!(!s.required);
        assert!(!s.wants_reliable(false), "a plain 180 goes unreliably");
        assert!(s.wants_reliable(true), "early media goes reliably");
        let r =
            ReliableProvisionals::for_invite(&invite("Require: 100rel\r\n"), 0).expect("required");
        assert!(r.required && r.wants_reliable(false));
        assert_eq!(r.next_rseq, 1, "RSeq starts at 1 or above");
        let big = ReliableProvisionals::for_invite(&invite("Require: 100rel\r\n"), u32::MAX)
            .expect("required");
        assert_eq!(big.next_rseq, (1 << 31) - 1);
    }

    #[test]
    fn a_prack_must_name_the_outstanding_rseq_and_the_invite() {
        let mut s =
            ReliableProvisionals::for_invite(&invite("Require: 100rel\r\n"), 10).expect("rel");
        let rack = |rseq, cseq, method| rseq::RAck { rseq, cseq, method };
        assert_eq!(
            s.acknowledge(&rack(10, 7, crate::sip::Method::Invite), 7),
            PrackOutcome::NoMatch,
            "nothing outstanding"
        );
        s.unacked = Some(Unacked {
            rseq: 10,
            bytes: Bytes::new(),
            has_sdp: true,
            interval: Duration::from_millis(500),
            #[allow(clippy::disallowed_methods)]
            give_up: Instant::now(),
        });
        assert!(s.answer_must_wait());
        for wrong in [
            rack(9, 7, crate::sip::Method::Invite),
            rack(10, 8, crate::sip::Method::Invite),
            rack(10, 7, crate::sip::Method::Bye),
        ] {
            assert_eq!(s.acknowledge(&wrong, 7), PrackOutcome::NoMatch);
        }
        assert_eq!(
            s.acknowledge(&rack(10, 7, crate::sip::Method::Invite), 7),
            PrackOutcome::Acknowledged
        );
        assert!(!s.answer_must_wait());
        assert_eq!(
            s.acknowledge(&rack(10, 7, crate::sip::Method::Invite), 7),
            PrackOutcome::NoMatch,
            "a second PRACK for the same response matches nothing"
        );
    }
}
