//! INVITE client transaction: RFC 3261 17.1.1 as updated by RFC 6026 ("Accepted", timer M).
//!
//! ```text
//!  Calling --1xx--> Proceeding --2xx--> Accepted --timer M--> Terminated
//!     |  \--2xx-----------------------^
//!     +--300-699 (ACK sent)--> Completed --timer D--> Terminated
//!  timer B / transport error in Calling: inform TU, Terminated
//! ```
//!
//! The ACK for a non-2xx final response needs the response's To header, so the caller
//! builds it: `handle_response` takes a closure that is called exactly once, on the first
//! 300-699 response; the transaction keeps the bytes and re-sends them for every
//! retransmission of that response. The ACK for a 2xx is not part of the transaction
//! (17.1.1.3); the TU sends it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Timer, TimerConfig, Timers, MIN_RETRANSMIT};
use super::{check_status, Disposition, Outputs, TransactionError, TransactionEvent};

/// States of the INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// The INVITE was sent; no response yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// RFC 6026: a 2xx arrived; further 2xx are passed to the TU until timer M.
    Accepted,
    /// A 300-699 arrived and was ACKed; absorbing its retransmissions until timer D.
    Completed,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// An INVITE client transaction (sans-IO).
#[derive(Debug, Clone)]
pub struct ClientInvite {
    state: ClientInviteState,
    reliable: bool,
    cfg: TimerConfig,
    request: Bytes,
    ack: Option<Bytes>,
    /// Current timer A interval; doubles after every retransmission.
    a_interval: Duration,
    timers: Timers,
    out: Outputs,
}

impl ClientInvite {
    /// Starts the transaction: queues `request` for transmission and arms timers A and B.
    pub fn new(now: Instant, request: Bytes, reliable: bool, cfg: &TimerConfig) -> Self {
        let mut txn = Self {
            state: ClientInviteState::Calling,
            reliable,
            cfg: *cfg,
            request: request.clone(),
            ack: None,
            a_interval: cfg.t1.max(MIN_RETRANSMIT),
            timers: Timers::default(),
            out: Outputs::default(),
        };
        txn.out.transmit(request);
        // 17.1.1.2: "If an unreliable transport is being used, the client transaction MUST
        // start timer A with a value of T1. If a reliable transport is being used, the
        // client transaction SHOULD NOT start timer A".
        if !reliable {
            txn.timers.arm(Timer::A, now, txn.a_interval);
        }
        // "For any transport, the client transaction MUST start timer B with a value of
        // 64*T1 seconds".
        txn.timers.arm(Timer::B, now, cfg.timer_b);
        txn
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }

    /// A response matched this transaction. `build_ack` is called only for the first
    /// 300-699 response and must return the serialized ACK (17.1.1.3).
    pub fn handle_response<F>(
        &mut self,
        now: Instant,
        status: u16,
        build_ack: F,
    ) -> Result<Disposition, TransactionError>
    where
        F: FnOnce() -> Bytes,
    {
        check_status(status)?;
        use ClientInviteState::*;
        let disposition = match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                // 17.1.1.2: in "Proceeding" the client transaction "SHOULD NOT retransmit
                // the request any longer"; timer B only guards "Calling".
                self.timers.disarm(Timer::A);
                self.timers.disarm(Timer::B);
                self.state = Proceeding;
                Disposition::PassUp
            }
            (Calling | Proceeding, 200..=299) => {
                // RFC 6026 8.4: "If a 2xx response is received while the client INVITE
                // state machine is in the "Calling" or "Proceeding" states, it MUST
                // transition to the "Accepted" state, pass the 2xx response to the TU, and
                // set Timer M to 64*T1."
                self.timers.clear();
                self.state = Accepted;
                self.timers.arm(Timer::M, now, self.cfg.timer_m);
                Disposition::PassUp
            }
            (Calling | Proceeding, _) => {
                // 17.1.1.2: "When in either the "Calling" or "Proceeding" states, reception
                // of a response with status code from 300-699 MUST cause the client
                // transaction to transition to "Completed". The client transaction MUST
                // pass the received response up to the TU, and the client transaction MUST
                // generate an ACK request".
                self.timers.clear();
                let ack = build_ack();
                self.out.transmit(ack.clone());
                self.ack = Some(ack);
                self.state = Completed;
                // "The client transaction SHOULD start timer D ... set to at least 32
                // seconds for unreliable transports, and ... zero seconds for reliable".
                let d = self.cfg.timer_d(self.reliable);
                if d.is_zero() {
                    self.terminate();
                } else {
                    self.timers.arm(Timer::D, now, d);
                }
                Disposition::PassUp
            }
            // RFC 6026 8.4: "A 2xx response received while in the "Accepted" state MUST be
            // passed to the TU and the machine remains in the "Accepted" state."
            (Accepted, 200..=299) => Disposition::PassUp,
            (Accepted, _) => Disposition::Absorb,
            (Completed, 300..=699) => {
                // 17.1.1.2: "Any retransmissions of the final response that are received
                // while in the "Completed" state MUST cause the ACK to be re-passed to the
                // transport layer for retransmission, but the newly received response MUST
                // NOT be passed up to the TU."
                if let Some(ack) = &self.ack {
                    self.out.transmit(ack.clone());
                }
                Disposition::Absorb
            }
            (Completed, _) | (Terminated, _) => Disposition::Absorb,
        };
        Ok(disposition)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match (self.state, timer) {
                (ClientInviteState::Calling, Timer::A) => {
                    // 17.1.1.2: "When timer A fires, the client transaction MUST retransmit
                    // the request by passing it to the transport layer, and MUST reset the
                    // timer with a value of 2*T1." (no cap for INVITE: it doubles until B)
                    self.out.transmit(self.request.clone());
                    self.a_interval = self.a_interval.saturating_mul(2);
                    self.timers.arm(Timer::A, now, self.a_interval);
                }
                (ClientInviteState::Calling, Timer::B) => {
                    // "If the client transaction is still in the "Calling" state when timer
                    // B fires, the client transaction SHOULD inform the TU that a timeout
                    // has occurred."
                    self.out.event(TransactionEvent::Timeout(Timer::B));
                    self.terminate();
                }
                // "If timer D fires while the client transaction is in the "Completed"
                // state, the client transaction MUST move to the "Terminated" state."
                (ClientInviteState::Completed, Timer::D) => self.terminate(),
                // RFC 6026 8.4: "If Timer M fires while the client INVITE transaction
                // state machine is in the "Accepted" state, the machine MUST transition to
                // the "Terminated" state."
                (ClientInviteState::Accepted, Timer::M) => self.terminate(),
                // A timer left from an earlier state: state changes disarm them, so this
                // is unreachable in practice and harmless to ignore.
                _ => {}
            }
        }
    }

    /// The transport failed to send the INVITE or the ACK (17.1.4).
    pub fn handle_transport_error(&mut self) {
        match self.state {
            // Only "Calling" (the INVITE) and "Completed" (the ACK) send anything.
            ClientInviteState::Calling | ClientInviteState::Completed => {
                self.out.event(TransactionEvent::TransportError);
                self.terminate();
            }
            _ => {}
        }
    }

    /// The next message to send to the transaction's destination.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.out.events.pop_front()
    }

    /// The earliest armed timer; `None` once terminated.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    fn terminate(&mut self) {
        if self.state != ClientInviteState::Terminated {
            self.state = ClientInviteState::Terminated;
            self.timers.clear();
            self.out.event(TransactionEvent::Terminated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_util::{base, ms};

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n";
    const ACK: &[u8] = b"ACK sip:bob@example.com SIP/2.0\r\n\r\n";

    fn ack() -> Bytes {
        Bytes::from_static(ACK)
    }

    fn no_ack() -> Bytes {
        panic!("no ACK must be built for this response")
    }

    fn drain(t: &mut ClientInvite) -> Vec<Bytes> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    fn events(t: &mut ClientInvite) -> Vec<TransactionEvent> {
        std::iter::from_fn(|| t.poll_event()).collect()
    }

    fn udp(t0: Instant) -> ClientInvite {
        ClientInvite::new(
            t0,
            Bytes::from_static(INVITE),
            false,
            &TimerConfig::default(),
        )
    }

    #[test]
    fn udp_timer_a_doubles_without_cap_until_timer_b() {
        let t0 = base();
        let mut t = udp(t0);
        assert_eq!(drain(&mut t).len(), 1);
        // A fires at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: intervals 0.5,1,2,4,8,16 (past T2).
        let mut fired = Vec::new();
        let mut now = t0;
        while let Some(next) = t.poll_timeout() {
            now = next;
            t.handle_timeout(now);
            for b in drain(&mut t) {
                assert_eq!(&b[..], INVITE);
                fired.push(now - t0);
            }
        }
        let expected: Vec<Duration> = [500, 1500, 3500, 7500, 15_500, 31_500]
            .into_iter()
            .map(ms)
            .collect();
        assert_eq!(fired, expected);
        assert_eq!(now - t0, ms(32_000));
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::Timeout(Timer::B),
                TransactionEvent::Terminated
            ]
        );
        assert!(t.is_terminated());
    }

    #[test]
    fn provisional_stops_retransmissions_and_timer_b() {
        let t0 = base();
        let mut t = udp(t0);
        drain(&mut t);
        assert_eq!(
            t.handle_response(t0 + ms(100), 180, no_ack),
            Ok(Disposition::PassUp)
        );
        assert_eq!(t.state(), ClientInviteState::Proceeding);
        assert_eq!(t.poll_timeout(), None);
        t.handle_timeout(t0 + ms(60_000));
        assert!(drain(&mut t).is_empty());
        assert!(events(&mut t).is_empty());
        assert_eq!(
            t.handle_response(t0 + ms(200), 183, no_ack),
            Ok(Disposition::PassUp)
        );
    }

    #[test]
    fn non_2xx_final_is_acked_and_retransmissions_reack() {
        let t0 = base();
        let mut t = udp(t0);
        drain(&mut t);
        let _ = t.handle_response(t0 + ms(50), 100, no_ack);
        let mut built = 0;
        let d = t.handle_response(t0 + ms(100), 486, || {
            built += 1;
            ack()
        });
        assert_eq!(d, Ok(Disposition::PassUp));
        assert_eq!(built, 1);
        assert_eq!(t.state(), ClientInviteState::Completed);
        assert_eq!(drain(&mut t), vec![ack()]);
        // The 486 is retransmitted (our ACK was lost): re-ACK, absorb, no new build.
        let d = t.handle_response(t0 + ms(600), 486, no_ack);
        assert_eq!(d, Ok(Disposition::Absorb));
        assert_eq!(drain(&mut t), vec![ack()]);
        // Timer D: 32 s after entering Completed.
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_100)));
        t.handle_timeout(t0 + ms(32_100));
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
        assert!(t.is_terminated());
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn lost_response_request_retransmitted_then_final_passed_once() {
        let t0 = base();
        let mut t = udp(t0);
        drain(&mut t);
        t.handle_timeout(t0 + ms(500));
        assert_eq!(drain(&mut t).len(), 1, "INVITE retransmitted after A");
        assert_eq!(
            t.handle_response(t0 + ms(700), 404, ack),
            Ok(Disposition::PassUp)
        );
        assert_eq!(
            t.handle_response(t0 + ms(710), 404, ack),
            Ok(Disposition::Absorb)
        );
        assert_eq!(drain(&mut t), vec![ack(), ack()]);
        // No more INVITE retransmissions in Completed.
        t.handle_timeout(t0 + ms(1500));
        assert!(drain(&mut t).is_empty());
    }

    #[test]
    fn rfc6026_accepted_passes_2xx_retransmissions_up_until_timer_m() {
        let t0 = base();
        let mut t = udp(t0);
        drain(&mut t);
        assert_eq!(
            t.handle_response(t0 + ms(100), 200, no_ack),
            Ok(Disposition::PassUp)
        );
        assert_eq!(t.state(), ClientInviteState::Accepted);
        // The transaction never ACKs a 2xx itself.
        assert!(drain(&mut t).is_empty());
        // 2xx retransmission (or another fork's 2xx): passed up so the TU re-ACKs.
        assert_eq!(
            t.handle_response(t0 + ms(600), 200, no_ack),
            Ok(Disposition::PassUp)
        );
        // Stray provisional or non-2xx final: absorbed.
        assert_eq!(
            t.handle_response(t0 + ms(700), 180, no_ack),
            Ok(Disposition::Absorb)
        );
        assert_eq!(
            t.handle_response(t0 + ms(700), 500, no_ack),
            Ok(Disposition::Absorb)
        );
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_100)));
        t.handle_timeout(t0 + ms(32_099));
        assert!(!t.is_terminated());
        t.handle_timeout(t0 + ms(32_100));
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn tcp_no_retransmissions_and_timer_d_zero() {
        let t0 = base();
        let cfg = TimerConfig::default();
        let mut t = ClientInvite::new(t0, Bytes::from_static(INVITE), true, &cfg);
        assert_eq!(drain(&mut t).len(), 1);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_000)), "only timer B");
        t.handle_timeout(t0 + ms(31_999));
        assert!(drain(&mut t).is_empty());
        assert_eq!(
            t.handle_response(t0 + ms(1000), 603, ack),
            Ok(Disposition::PassUp)
        );
        assert_eq!(drain(&mut t), vec![ack()]);
        assert!(t.is_terminated(), "timer D is zero on reliable transports");
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn tcp_timer_b_timeout() {
        let t0 = base();
        let cfg = TimerConfig::default();
        let mut t = ClientInvite::new(t0, Bytes::from_static(INVITE), true, &cfg);
        drain(&mut t);
        t.handle_timeout(t0 + ms(32_000));
        assert!(drain(&mut t).is_empty());
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::Timeout(Timer::B),
                TransactionEvent::Terminated
            ]
        );
    }

    #[test]
    fn transport_error_in_calling_informs_tu() {
        let t0 = base();
        let mut t = udp(t0);
        t.handle_transport_error();
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::TransportError,
                TransactionEvent::Terminated
            ]
        );
        // Terminated is reported once only.
        t.handle_transport_error();
        assert!(events(&mut t).is_empty());
    }

    #[test]
    fn invalid_status_is_an_error() {
        let t0 = base();
        let mut t = udp(t0);
        assert_eq!(
            t.handle_response(t0, 99, no_ack),
            Err(TransactionError::InvalidStatus(99))
        );
        assert_eq!(
            t.handle_response(t0, 700, no_ack),
            Err(TransactionError::InvalidStatus(700))
        );
        assert_eq!(t.state(), ClientInviteState::Calling);
    }

    #[test]
    fn late_handle_timeout_does_not_burst() {
        // The driver wakes up late: one retransmission, not a burst to catch up.
        let t0 = base();
        let mut t = udp(t0);
        drain(&mut t);
        t.handle_timeout(t0 + ms(5000));
        assert_eq!(drain(&mut t).len(), 1);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(6000)));
    }
}
