//! Non-INVITE server transaction: RFC 3261 17.2.2.
//!
//! ```text
//!  Trying --1xx from TU--> Proceeding --200-699 from TU--> Completed --timer J--> Terminated
//!     \--200-699 from TU---------------^
//!  request retransmission: Trying: discard; Proceeding/Completed: re-send last response
//!  transport error: inform TU, Terminated
//! ```

use std::time::Instant;

use bytes::Bytes;

use super::timer::{Timer, TimerConfig, Timers};
use super::{check_status, Outputs, TransactionError, TransactionEvent};

/// States of the non-INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// The request is with the TU; nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; answering request retransmissions until timer J.
    Completed,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// A non-INVITE server transaction (sans-IO).
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Bytes>,
    timers: Timers,
    out: Outputs,
}

impl ServerNonInvite {
    /// Creates the transaction for a new request (state "Trying"); the caller passes the
    /// request to the TU (17.2.2: "The request MUST be passed to the TU.").
    pub fn new(_now: Instant, reliable: bool, cfg: &TimerConfig) -> Self {
        Self {
            state: ServerNonInviteState::Trying,
            reliable,
            cfg: *cfg,
            last_response: None,
            timers: Timers::default(),
            out: Outputs::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }

    /// A retransmission of the request arrived. It is never passed to the TU.
    pub fn handle_request_retransmission(&mut self, _now: Instant) {
        match self.state {
            // 17.2.2: "Once in the "Trying" state, any further request retransmissions
            // are discarded."
            ServerNonInviteState::Trying | ServerNonInviteState::Terminated => {}
            // "If a retransmission of the request is received while in the "Proceeding"
            // state, the most recently sent provisional response MUST be passed to the
            // transport layer for retransmission." and in "Completed": "the server
            // transaction MUST pass the final response to the transport layer for
            // retransmission whenever a retransmission of the request is received."
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => {
                if let Some(r) = &self.last_response {
                    self.out.transmit(r.clone());
                }
            }
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
        use ServerNonInviteState::*;
        match (self.state, status) {
            // 17.2.2: "While in the "Trying" state, if the TU passes a provisional
            // response to the server transaction, the server transaction MUST enter the
            // "Proceeding" state. The response MUST be passed to the transport layer for
            // transmission. Any further provisional responses that are received from the
            // TU while in the "Proceeding" state MUST be passed to the transport layer".
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.out.transmit(response.clone());
                self.last_response = Some(response);
            }
            (Trying | Proceeding, _) => {
                // "If the TU passes a final response (status codes 200-699) to the server
                // while in the "Proceeding" [or "Trying"] state, the transaction MUST
                // enter the "Completed" state, and the response MUST be passed to the
                // transport layer for transmission." "When the server transaction enters
                // the "Completed" state, it MUST set Timer J to fire in 64*T1 seconds for
                // unreliable transports, and zero seconds for reliable transports."
                self.state = Completed;
                self.out.transmit(response.clone());
                self.last_response = Some(response);
                let j = self.cfg.timer_j(self.reliable);
                if j.is_zero() {
                    self.terminate();
                } else {
                    self.timers.arm(Timer::J, now, j);
                }
            }
            // "Any other final responses passed by the TU to the server transaction MUST
            // be discarded while in the "Completed" state."
            (Completed, _) => return Err(TransactionError::FinalAlreadySent(status)),
            (Terminated, _) => return Err(TransactionError::Terminated),
        }
        Ok(())
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            // 17.2.2: "The server transaction remains in this state until Timer J fires,
            // at which point it MUST transition to the "Terminated" state."
            if let (ServerNonInviteState::Completed, Timer::J) = (self.state, timer) {
                self.terminate();
            }
        }
    }

    /// The transport failed to send a response (17.2.4).
    pub fn handle_transport_error(&mut self) {
        // 17.2.2 (figure 8) and 17.2.4: inform the TU and terminate.
        if self.state != ServerNonInviteState::Terminated {
            self.out.event(TransactionEvent::TransportError);
            self.terminate();
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
        if self.state != ServerNonInviteState::Terminated {
            self.state = ServerNonInviteState::Terminated;
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
    const OK: &[u8] = b"SIP/2.0 200 OK\r\n\r\n";
    const NOT_FOUND: &[u8] = b"SIP/2.0 404 Not Found\r\n\r\n";

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    fn drain(t: &mut ServerNonInvite) -> Vec<Bytes> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    fn events(t: &mut ServerNonInvite) -> Vec<TransactionEvent> {
        std::iter::from_fn(|| t.poll_event()).collect()
    }

    #[test]
    fn trying_discards_retransmissions_and_has_no_timer() {
        let t0 = base();
        let mut t = ServerNonInvite::new(t0, false, &TimerConfig::default());
        assert_eq!(t.poll_timeout(), None);
        t.handle_request_retransmission(t0 + ms(500));
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.state(), ServerNonInviteState::Trying);
    }

    #[test]
    fn final_resent_on_retransmission_until_timer_j() {
        let t0 = base();
        let mut t = ServerNonInvite::new(t0, false, &TimerConfig::default());
        t.send_response(t0 + ms(10), 100, b(TRYING)).unwrap();
        assert_eq!(t.state(), ServerNonInviteState::Proceeding);
        t.handle_request_retransmission(t0 + ms(500));
        assert_eq!(drain(&mut t), vec![b(TRYING), b(TRYING)]);
        t.send_response(t0 + ms(600), 200, b(OK)).unwrap();
        assert_eq!(drain(&mut t), vec![b(OK)]);
        // The 200 was lost; the client retransmits; we re-send the 200.
        t.handle_request_retransmission(t0 + ms(1500));
        assert_eq!(drain(&mut t), vec![b(OK)]);
        assert_eq!(
            t.send_response(t0 + ms(1600), 404, b(NOT_FOUND)),
            Err(TransactionError::FinalAlreadySent(404))
        );
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_600)), "timer J = 64*T1");
        t.handle_timeout(t0 + ms(32_600));
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
        t.handle_request_retransmission(t0 + ms(33_000));
        assert!(drain(&mut t).is_empty());
    }

    #[test]
    fn tcp_terminates_at_once_after_final() {
        let t0 = base();
        let mut t = ServerNonInvite::new(t0, true, &TimerConfig::default());
        t.send_response(t0, 404, b(NOT_FOUND)).unwrap();
        assert_eq!(drain(&mut t), vec![b(NOT_FOUND)]);
        assert!(t.is_terminated());
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
        assert_eq!(
            t.send_response(t0, 200, b(OK)),
            Err(TransactionError::Terminated)
        );
    }

    #[test]
    fn transport_error_informs_tu() {
        let t0 = base();
        let mut t = ServerNonInvite::new(t0, false, &TimerConfig::default());
        t.send_response(t0, 180, b(TRYING)).unwrap();
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
