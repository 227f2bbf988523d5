//! INVITE server transaction: RFC 3261 17.2.1 as updated by RFC 6026 ("Accepted", timer L).
//!
//! ```text
//!  Proceeding --2xx from TU--> Accepted --timer L--> Terminated
//!     |  1xx from TU: send; INVITE retransmission: re-send the last 1xx
//!     +--300-699 from TU--> Completed --ACK--> Confirmed --timer I--> Terminated
//!                              |  timer G: re-send final (doubling, capped at T2)
//!                              +--timer H / transport error: inform TU, Terminated
//! ```
//!
//! 100 (Trying): 17.2.1 says the server transaction "MUST generate a 100 (Trying) response
//! unless it knows that the TU will generate a provisional or final response within 200
//! ms". The transaction does not build messages, so the rule is implemented as an event:
//! if the TU has sent nothing 200 ms (`TimerConfig::trying_delay`) after creation, the
//! transaction emits [`TransactionEvent::SendTrying`] and the caller builds the 100 from
//! the request and passes it to [`ServerInvite::send_response`]. A caller that always
//! sends 100 at once (a proxy, or a UAS that knows it is slow) simply never sees the event.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Timer, TimerConfig, Timers, MIN_RETRANSMIT};
use super::{check_status, Disposition, Outputs, TransactionError, TransactionEvent};

/// States of the INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// The INVITE is with the TU; provisional responses may have been sent.
    Proceeding,
    /// RFC 6026: a 2xx was sent; the TU retransmits it and receives the ACK.
    Accepted,
    /// A 300-699 was sent; it is retransmitted until the ACK arrives (timers G, H).
    Completed,
    /// The ACK arrived; absorbing ACK retransmissions until timer I.
    Confirmed,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// An INVITE server transaction (sans-IO).
#[derive(Debug, Clone)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    cfg: TimerConfig,
    /// The most recent response the TU sent, re-sent on request retransmissions.
    last_response: Option<Bytes>,
    /// Current timer G interval.
    g_interval: Duration,
    timers: Timers,
    out: Outputs,
}

impl ServerInvite {
    /// Creates the transaction for a new INVITE (state "Proceeding"); the caller passes
    /// the request to the TU (17.2.1: "The request MUST be passed to the TU.").
    pub fn new(now: Instant, reliable: bool, cfg: &TimerConfig) -> Self {
        let mut timers = Timers::default();
        timers.arm(Timer::Trying, now, cfg.trying_delay);
        Self {
            state: ServerInviteState::Proceeding,
            reliable,
            cfg: *cfg,
            last_response: None,
            g_interval: cfg.t1.max(MIN_RETRANSMIT),
            timers,
            out: Outputs::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }

    /// A retransmission of the INVITE arrived. It is never passed to the TU.
    pub fn handle_request_retransmission(&mut self, _now: Instant) {
        match self.state {
            // 17.2.1: "If a request retransmission is received while in the "Proceeding"
            // state, the most recent provisional response that was received from the TU
            // MUST be passed to the transport layer for retransmission."
            // "Furthermore, while in the "Completed" state, if a request retransmission
            // is received, the server SHOULD pass the response to the transport for
            // retransmission."
            ServerInviteState::Proceeding | ServerInviteState::Completed => {
                if let Some(r) = &self.last_response {
                    self.out.transmit(r.clone());
                }
            }
            // RFC 6026 8.7: "While in the "Accepted" state, any retransmissions of the
            // INVITE received will match this transaction state machine and will be
            // absorbed by the machine without changing its state. These retransmissions
            // are not passed onto the TU." (The TU retransmits the 2xx itself.)
            ServerInviteState::Accepted
            | ServerInviteState::Confirmed
            | ServerInviteState::Terminated => {}
        }
    }

    /// The TU sends a response through this transaction.
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        response: Bytes,
    ) -> Result<(), TransactionError> {
        check_status(status)?;
        use ServerInviteState::*;
        match (self.state, status) {
            (Proceeding, 100..=199) => {
                // 17.2.1: "So long as the server transaction is in the "Proceeding" state,
                // each of these MUST be passed to the transport layer for transmission."
                self.timers.disarm(Timer::Trying);
                self.out.transmit(response.clone());
                self.last_response = Some(response);
            }
            (Proceeding, 200..=299) => {
                // RFC 6026 8.5: "If, while in the "Proceeding" state, the TU passes a 2xx
                // response to the server transaction, the server transaction MUST pass
                // this response to the transport layer for transmission. ... The server
                // transaction MUST then transition to the "Accepted" state." and set
                // Timer L to 64*T1 (8.6).
                self.timers.clear();
                self.out.transmit(response.clone());
                self.last_response = Some(response);
                self.state = Accepted;
                self.timers.arm(Timer::L, now, self.cfg.timer_l);
            }
            (Proceeding, _) => {
                // 17.2.1: "If, while in the "Proceeding" state, the TU passes a response
                // with status code from 300 to 699 to the server transaction, the response
                // MUST be passed to the transport layer for transmission, and the state
                // machine MUST enter the "Completed" state. For unreliable transports,
                // timer G is set to fire in T1 seconds ... For any transport, timer H
                // MUST be set to fire in 64*T1 seconds."
                self.timers.clear();
                self.out.transmit(response.clone());
                self.last_response = Some(response);
                self.state = Completed;
                if !self.reliable {
                    self.timers.arm(Timer::G, now, self.g_interval);
                }
                self.timers.arm(Timer::H, now, self.cfg.timer_h);
            }
            (Accepted, 200..=299) => {
                // RFC 6026 8.7: "While in the "Accepted" state, if the TU passes a 2xx
                // response, the server transaction MUST pass the response to the transport
                // layer for transmission."
                self.out.transmit(response.clone());
                self.last_response = Some(response);
            }
            (Terminated, _) => return Err(TransactionError::Terminated),
            (Accepted | Completed | Confirmed, _) => {
                return Err(TransactionError::FinalAlreadySent(status))
            }
        }
        Ok(())
    }

    /// An ACK matched this transaction. In "Accepted" it is the ACK for the 2xx and goes
    /// to the TU; otherwise the transaction consumes it.
    pub fn handle_ack(&mut self, now: Instant) -> Disposition {
        match self.state {
            ServerInviteState::Completed => {
                // 17.2.1: "If an ACK is received while the server transaction is in the
                // "Completed" state, the server transaction MUST transition to the
                // "Confirmed" state. As Timer G is ignored in this state, any
                // retransmissions of the response will cease." Timer I: "T4 seconds for
                // unreliable transports, and zero seconds for reliable transports".
                self.timers.clear();
                self.state = ServerInviteState::Confirmed;
                let i = self.cfg.timer_i(self.reliable);
                if i.is_zero() {
                    self.terminate();
                } else {
                    self.timers.arm(Timer::I, now, i);
                }
                Disposition::Absorb
            }
            // RFC 6026 8.7: "Any ACKs received from the network while in the "Accepted"
            // state MUST be passed directly to the TU and not absorbed."
            ServerInviteState::Accepted => Disposition::PassUp,
            // "The purpose of the "Confirmed" state is to absorb any additional ACK
            // messages that arrive". An ACK before any final response is bogus.
            ServerInviteState::Confirmed
            | ServerInviteState::Proceeding
            | ServerInviteState::Terminated => Disposition::Absorb,
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ServerInviteState::*;
        while let Some(timer) = self.timers.pop_due(now) {
            match (self.state, timer) {
                (Proceeding, Timer::Trying) => self.out.event(TransactionEvent::SendTrying),
                (Completed, Timer::G) => {
                    // 17.2.1: "If timer G fires, the response is passed to the transport
                    // layer once more for retransmission, and timer G is set to fire in
                    // MIN(2*T1, T2) seconds."
                    if let Some(r) = &self.last_response {
                        self.out.transmit(r.clone());
                    }
                    self.g_interval = self
                        .g_interval
                        .saturating_mul(2)
                        .min(self.cfg.t2)
                        .max(MIN_RETRANSMIT);
                    self.timers.arm(Timer::G, now, self.g_interval);
                }
                (Completed, Timer::H) => {
                    // "If timer H fires while in the "Completed" state, it implies that the
                    // ACK was never received. In this case, the server transaction MUST
                    // transition to the "Terminated" state, and MUST indicate to the TU
                    // that a transaction failure has occurred."
                    self.out.event(TransactionEvent::Timeout(Timer::H));
                    self.terminate();
                }
                // "Once timer I fires, the server MUST transition to the "Terminated" state."
                (Confirmed, Timer::I) => self.terminate(),
                // RFC 6026 8.7: "If Timer L fires while the INVITE server transaction is in
                // the "Accepted" state, the transaction MUST transition to the
                // "Terminated" state."
                (Accepted, Timer::L) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport failed to send a response (17.2.4).
    pub fn handle_transport_error(&mut self) {
        match self.state {
            ServerInviteState::Proceeding | ServerInviteState::Completed => {
                self.out.event(TransactionEvent::TransportError);
                self.terminate();
            }
            // RFC 6026 figure 7: in "Accepted" a transport error informs the TU and the
            // machine stays, so 2xx retransmissions and the ACK still find it.
            ServerInviteState::Accepted => self.out.event(TransactionEvent::TransportError),
            ServerInviteState::Confirmed | ServerInviteState::Terminated => {}
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
        if self.state != ServerInviteState::Terminated {
            self.state = ServerInviteState::Terminated;
            self.timers.clear();
            self.out.event(TransactionEvent::Terminated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_util::{base, ms};

    const TRYING: &[u8] = b"SIP/2.0 100 Trying\r\n\r\n";
    const RINGING: &[u8] = b"SIP/2.0 180 Ringing\r\n\r\n";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\n\r\n";
    const BUSY: &[u8] = b"SIP/2.0 486 Busy Here\r\n\r\n";

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    fn udp(t0: Instant) -> ServerInvite {
        ServerInvite::new(t0, false, &TimerConfig::default())
    }

    fn drain(t: &mut ServerInvite) -> Vec<Bytes> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    fn events(t: &mut ServerInvite) -> Vec<TransactionEvent> {
        std::iter::from_fn(|| t.poll_event()).collect()
    }

    #[test]
    fn asks_for_100_trying_after_200ms_without_response() {
        let t0 = base();
        let mut t = udp(t0);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(200)));
        t.handle_timeout(t0 + ms(199));
        assert!(events(&mut t).is_empty());
        t.handle_timeout(t0 + ms(200));
        assert_eq!(events(&mut t), vec![TransactionEvent::SendTrying]);
        t.send_response(t0 + ms(201), 100, b(TRYING)).unwrap();
        assert_eq!(drain(&mut t), vec![b(TRYING)]);
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn early_provisional_cancels_the_trying_rule() {
        let t0 = base();
        let mut t = udp(t0);
        t.send_response(t0 + ms(10), 180, b(RINGING)).unwrap();
        t.handle_timeout(t0 + ms(1000));
        assert!(events(&mut t).is_empty());
        assert_eq!(drain(&mut t), vec![b(RINGING)]);
    }

    #[test]
    fn request_retransmission_resends_latest_provisional() {
        let t0 = base();
        let mut t = udp(t0);
        // Nothing sent yet: a retransmission has nothing to re-send.
        t.handle_request_retransmission(t0 + ms(50));
        assert!(drain(&mut t).is_empty());
        t.send_response(t0 + ms(60), 100, b(TRYING)).unwrap();
        t.send_response(t0 + ms(70), 180, b(RINGING)).unwrap();
        drain(&mut t);
        t.handle_request_retransmission(t0 + ms(500));
        assert_eq!(drain(&mut t), vec![b(RINGING)]);
    }

    #[test]
    fn udp_non_2xx_timer_g_capped_at_t2_until_timer_h() {
        let t0 = base();
        let mut t = udp(t0);
        t.send_response(t0, 486, b(BUSY)).unwrap();
        assert_eq!(drain(&mut t), vec![b(BUSY)]);
        assert_eq!(t.state(), ServerInviteState::Completed);
        let mut fired = Vec::new();
        let mut now = t0;
        while let Some(next) = t.poll_timeout() {
            now = next;
            t.handle_timeout(now);
            for r in drain(&mut t) {
                assert_eq!(r, b(BUSY));
                fired.push((now - t0).as_millis() as u64);
            }
        }
        // G: 0.5, 1, 2, 4, 4, 4 ... (capped at T2) until H at 32 s.
        let mut expected = vec![500, 1500, 3500, 7500];
        let mut at = 7500;
        while at + 4000 < 32_000 {
            at += 4000;
            expected.push(at);
        }
        assert_eq!(fired, expected);
        assert_eq!((now - t0).as_millis(), 32_000);
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::Timeout(Timer::H),
                TransactionEvent::Terminated
            ]
        );
    }

    #[test]
    fn ack_confirms_then_absorbs_until_timer_i() {
        let t0 = base();
        let mut t = udp(t0);
        t.send_response(t0, 486, b(BUSY)).unwrap();
        drain(&mut t);
        // The 486 was lost: the INVITE is retransmitted and the 486 re-sent.
        t.handle_request_retransmission(t0 + ms(300));
        assert_eq!(drain(&mut t), vec![b(BUSY)]);
        assert_eq!(t.handle_ack(t0 + ms(400)), Disposition::Absorb);
        assert_eq!(t.state(), ServerInviteState::Confirmed);
        // No more G retransmissions, no H.
        assert_eq!(t.poll_timeout(), Some(t0 + ms(5400)), "timer I = T4");
        assert_eq!(t.handle_ack(t0 + ms(500)), Disposition::Absorb);
        t.handle_request_retransmission(t0 + ms(600));
        assert!(drain(&mut t).is_empty());
        t.handle_timeout(t0 + ms(5400));
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
        assert!(drain(&mut t).is_empty());
    }

    #[test]
    fn rfc6026_accepted_absorbs_invite_passes_ack_and_tu_2xx() {
        let t0 = base();
        let mut t = udp(t0);
        t.send_response(t0 + ms(10), 180, b(RINGING)).unwrap();
        t.send_response(t0 + ms(20), 200, b(OK)).unwrap();
        assert_eq!(drain(&mut t), vec![b(RINGING), b(OK)]);
        assert_eq!(t.state(), ServerInviteState::Accepted);
        // INVITE retransmission: absorbed, nothing re-sent by the transaction.
        t.handle_request_retransmission(t0 + ms(500));
        assert!(drain(&mut t).is_empty());
        // The TU retransmits its 2xx (13.3.1.4): passed to the transport.
        t.send_response(t0 + ms(520), 200, b(OK)).unwrap();
        assert_eq!(drain(&mut t), vec![b(OK)]);
        // A non-2xx after a 2xx is refused.
        assert_eq!(
            t.send_response(t0 + ms(530), 500, b(BUSY)),
            Err(TransactionError::FinalAlreadySent(500))
        );
        // ACK goes to the TU, repeatedly.
        assert_eq!(t.handle_ack(t0 + ms(600)), Disposition::PassUp);
        assert_eq!(t.handle_ack(t0 + ms(700)), Disposition::PassUp);
        // Transport error: TU informed, machine stays until L.
        t.handle_transport_error();
        assert_eq!(events(&mut t), vec![TransactionEvent::TransportError]);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_020)), "timer L = 64*T1");
        t.handle_timeout(t0 + ms(32_020));
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
        assert_eq!(
            t.send_response(t0 + ms(40_000), 200, b(OK)),
            Err(TransactionError::Terminated)
        );
    }

    #[test]
    fn tcp_no_retransmissions_and_timer_i_zero() {
        let t0 = base();
        let mut t = ServerInvite::new(t0, true, &TimerConfig::default());
        t.send_response(t0, 486, b(BUSY)).unwrap();
        assert_eq!(drain(&mut t), vec![b(BUSY)]);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_000)), "only timer H");
        assert_eq!(t.handle_ack(t0 + ms(100)), Disposition::Absorb);
        assert!(t.is_terminated());
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn tcp_timer_h_without_ack() {
        let t0 = base();
        let mut t = ServerInvite::new(t0, true, &TimerConfig::default());
        t.send_response(t0, 404, b(BUSY)).unwrap();
        drain(&mut t);
        t.handle_timeout(t0 + ms(32_000));
        assert!(drain(&mut t).is_empty());
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::Timeout(Timer::H),
                TransactionEvent::Terminated
            ]
        );
    }

    #[test]
    fn second_final_is_refused() {
        let t0 = base();
        let mut t = udp(t0);
        t.send_response(t0, 486, b(BUSY)).unwrap();
        assert_eq!(
            t.send_response(t0, 200, b(OK)),
            Err(TransactionError::FinalAlreadySent(200))
        );
        assert_eq!(
            t.send_response(t0, 1000, b(OK)),
            Err(TransactionError::InvalidStatus(1000))
        );
    }

    #[test]
    fn transport_error_in_completed_terminates() {
        let t0 = base();
        let mut t = udp(t0);
        t.send_response(t0, 486, b(BUSY)).unwrap();
        t.handle_transport_error();
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::TransportError,
                TransactionEvent::Terminated
            ]
        );
    }
}
