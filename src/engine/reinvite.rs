//! Our 2xx to a re-INVITE (relayed or answered here) is retransmitted over unreliable
//! transports until its ACK arrives (RFC 3261 s13.3.1.4 and s14.2), like the 2xx of the
//! initial INVITE: the server transaction absorbs retransmitted INVITEs (RFC 6026), so
//! without this one lost 200 would leave the requester retrying until its timeout.

use super::b2bua::{CallTimer, Side};
use super::peer::Peer;
use super::{Engine, Output};
use crate::call::model::CallId;
use crate::util::time::Now;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// A 2xx to a re-INVITE waiting for its ACK.
pub struct PendingOk {
    /// The side that sent the re-INVITE (and will ACK).
    side: Side,
    /// The re-INVITE's CSeq number (the ACK carries the same).
    cseq: u32,
    /// The 2xx as sent.
    bytes: Bytes,
    /// Where it goes.
    peer: Peer,
    /// The current retransmission interval.
    interval: Duration,
    /// When it is next sent.
    next: Instant,
    /// When we stop (64*T1).
    give_up: Instant,
}

impl Engine {
    /// Keeps a 2xx just sent for a re-INVITE from `side` for retransmission (unreliable
    /// transports only).
    pub(super) fn track_reinvite_ok(
        &mut self,
        now: Now,
        id: CallId,
        side: Side,
        cseq: u32,
        bytes: Bytes,
        peer: Peer,
    ) {
        if peer.proto.is_reliable() {
            return;
        }
        let t1 = self.cfg.timers.t1;
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        entry
            .pending_reinvite_ok
            .retain(|p| !(p.side == side && p.cseq == cseq));
        entry.pending_reinvite_ok.push(PendingOk {
            side,
            cseq,
            bytes,
            peer,
            interval: t1,
            next: now.mono + t1,
            give_up: now.mono + 64 * t1,
        });
        self.arm(now.mono + t1, id, CallTimer::RetransmitReinviteOk);
    }

    /// The ACK for a re-INVITE's 2xx arrived from `side`.
    pub(super) fn reinvite_acked(&mut self, id: CallId, side: Side, cseq: u32) {
        if let Some(entry) = self.calls.get_mut(&id) {
            entry
                .pending_reinvite_ok
                .retain(|p| !(p.side == side && p.cseq == cseq));
        }
    }

    /// Resends the 2xx whose time has come (T1 doubling up to T2) and forgets those
    /// unacknowledged for 64*T1.
    pub(super) fn on_retransmit_reinvite_ok(&mut self, now: Now, id: CallId) {
        let t2 = self.cfg.timers.t2;
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        entry.pending_reinvite_ok.retain(|p| now.mono < p.give_up);
        let mut sends = Vec::new();
        for p in entry.pending_reinvite_ok.iter_mut() {
            if p.next <= now.mono {
                sends.push((p.bytes.clone(), p.peer));
                p.interval = (p.interval * 2).min(t2);
                p.next = now.mono + p.interval;
            }
        }
        let next = entry.pending_reinvite_ok.iter().map(|p| p.next).min();
        for (data, peer) in sends {
            self.outputs.push_back(Output::Transmit { data, peer });
        }
        if let Some(at) = next {
            self.arm(at, id, CallTimer::RetransmitReinviteOk);
        }
    }
}
