//! Non-INVITE client transaction: RFC 3261 17.1.2.
//!
//! ```text
//!  Trying --1xx--> Proceeding --200-699--> Completed --timer K--> Terminated
//!     \--200-699----------------^
//!  timer E: retransmit (doubling, capped at T2; T2 flat in Proceeding)
//!  timer F / transport error in Trying or Proceeding: inform TU, Terminated
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Timer, TimerConfig, Timers, MIN_RETRANSMIT};
use super::{check_status, Disposition, Outputs, TransactionError, TransactionEvent};

/// States of the non-INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// The request was sent; no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing its retransmissions until timer K.
    Completed,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// A non-INVITE client transaction (sans-IO).
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    reliable: bool,
    cfg: TimerConfig,
    request: Bytes,
    /// Current timer E interval.
    e_interval: Duration,
    timers: Timers,
    out: Outputs,
}

impl ClientNonInvite {
    /// Starts the transaction: queues `request` for transmission and arms timers E and F.
    pub fn new(now: Instant, request: Bytes, reliable: bool, cfg: &TimerConfig) -> Self {
        let mut txn = Self {
            state: ClientNonInviteState::Trying,
            reliable,
            cfg: *cfg,
            request: request.clone(),
            e_interval: cfg.t1.max(MIN_RETRANSMIT),
            timers: Timers::default(),
            out: Outputs::default(),
        };
        txn.out.transmit(request);
        // 17.1.2.2: "The "Trying" state is entered when the TU initiates a new client
        // transaction with a request. When entering this state, the client transaction
        // SHOULD set timer F to fire in 64*T1 seconds. ... If an unreliable transport is
        // in use, the client transaction MUST set timer E to fire in T1 seconds."
        txn.timers.arm(Timer::F, now, cfg.timer_f);
        if !reliable {
            txn.timers.arm(Timer::E, now, txn.e_interval);
        }
        txn
    }

    /// The current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }

    /// A response matched this transaction.
    pub fn handle_response(
        &mut self,
        now: Instant,
        status: u16,
    ) -> Result<Disposition, TransactionError> {
        check_status(status)?;
        use ClientNonInviteState::*;
        let disposition = match (self.state, status) {
            // 17.1.2.2: "If a provisional response is received while in the "Trying"
            // state, the response MUST be passed to the TU, and then the client
            // transaction SHOULD move to the "Proceeding" state." Timer E keeps running.
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                Disposition::PassUp
            }
            (Trying | Proceeding, _) => {
                // "If a final response (status codes 200-699) is received while in the
                // "Trying" [or "Proceeding"] state, the response MUST be passed to the TU,
                // and the client transaction MUST transition to the "Completed" state."
                self.timers.clear();
                self.state = Completed;
                // "Once the client transaction enters the "Completed" state, it MUST set
                // Timer K to fire in T4 seconds for unreliable transports, and zero
                // seconds for reliable transports."
                let k = self.cfg.timer_k(self.reliable);
                if k.is_zero() {
                    self.terminate();
                } else {
                    self.timers.arm(Timer::K, now, k);
                }
                Disposition::PassUp
            }
            // "The "Completed" state exists to buffer any additional response
            // retransmissions that may be received".
            (Completed | Terminated, _) => Disposition::Absorb,
        };
        Ok(disposition)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientNonInviteState::*;
        while let Some(timer) = self.timers.pop_due(now) {
            match (self.state, timer) {
                (Trying, Timer::E) => {
                    // 17.1.2.2: "If timer E fires while still in this state, the timer is
                    // reset, but this time with a value of MIN(2*T1, T2)." (and so on)
                    self.out.transmit(self.request.clone());
                    self.e_interval = self
                        .e_interval
                        .saturating_mul(2)
                        .min(self.cfg.t2)
                        .max(MIN_RETRANSMIT);
                    self.timers.arm(Timer::E, now, self.e_interval);
                }
                (Proceeding, Timer::E) => {
                    // "If Timer E fires while in the "Proceeding" state, the request MUST
                    // be passed to the transport layer for retransmission, and Timer E
                    // MUST be reset with a value of T2 seconds."
                    self.out.transmit(self.request.clone());
                    self.e_interval = self.cfg.t2.max(MIN_RETRANSMIT);
                    self.timers.arm(Timer::E, now, self.e_interval);
                }
                (Trying | Proceeding, Timer::F) => {
                    // "If Timer F fires while the client transaction is still in the
                    // "Trying" [or "Proceeding"] state, the client transaction SHOULD
                    // inform the TU about the timeout, and then it SHOULD enter the
                    // "Terminated" state."
                    self.out.event(TransactionEvent::Timeout(Timer::F));
                    self.terminate();
                }
                // "If Timer K fires while in this state, the client transaction MUST
                // transition to the "Terminated" state."
                (Completed, Timer::K) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport failed to send the request (17.1.4).
    pub fn handle_transport_error(&mut self) {
        use ClientNonInviteState::*;
        if matches!(self.state, Trying | Proceeding) {
            // "If a fatal transport error is reported by the transport layer (generally,
            // due to fatal ICMP errors in UDP or connection failures in TCP), the
            // condition MUST be treated as a 503 (Service Unavailable) status code."
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
        if self.state != ClientNonInviteState::Terminated {
            self.state = ClientNonInviteState::Terminated;
            self.timers.clear();
            self.out.event(TransactionEvent::Terminated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_util::{base, ms};

    const OPTIONS: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\r\n";

    fn udp(t0: Instant) -> ClientNonInvite {
        ClientNonInvite::new(
            t0,
            Bytes::from_static(OPTIONS),
            false,
            &TimerConfig::default(),
        )
    }

    fn drain(t: &mut ClientNonInvite) -> usize {
        std::iter::from_fn(|| t.poll_transmit()).count()
    }

    fn events(t: &mut ClientNonInvite) -> Vec<TransactionEvent> {
        std::iter::from_fn(|| t.poll_event()).collect()
    }

    /// Runs the machine to its end by following `poll_timeout`, returning the offsets
    /// at which the request was retransmitted and the offset of the last timer.
    fn run(t: &mut ClientNonInvite, t0: Instant) -> (Vec<u64>, u64) {
        let mut fired = Vec::new();
        let mut now = t0;
        while let Some(next) = t.poll_timeout() {
            now = next;
            t.handle_timeout(now);
            for _ in 0..drain(t) {
                fired.push((now - t0).as_millis() as u64);
            }
        }
        (fired, (now - t0).as_millis() as u64)
    }

    #[test]
    fn udp_timer_e_doubles_capped_at_t2_then_timer_f() {
        let t0 = base();
        let mut t = udp(t0);
        assert_eq!(drain(&mut t), 1);
        let (fired, end) = run(&mut t, t0);
        // Intervals 0.5, 1, 2, 4, 4, 4, ... until F at 32 s.
        let mut expected = vec![500, 1500, 3500, 7500];
        let mut at = 7500;
        while at + 4000 < 32_000 {
            at += 4000;
            expected.push(at);
        }
        assert_eq!(fired, expected);
        assert_eq!(end, 32_000);
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::Timeout(Timer::F),
                TransactionEvent::Terminated
            ]
        );
    }

    #[test]
    fn proceeding_retransmits_every_t2() {
        let t0 = base();
        let mut t = udp(t0);
        drain(&mut t);
        assert_eq!(
            t.handle_response(t0 + ms(100), 100),
            Ok(Disposition::PassUp)
        );
        assert_eq!(t.state(), ClientNonInviteState::Proceeding);
        // E was armed for 0.5 s in Trying; when it fires in Proceeding it resets to T2.
        t.handle_timeout(t0 + ms(500));
        assert_eq!(drain(&mut t), 1);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(4500)));
        t.handle_timeout(t0 + ms(4500));
        assert_eq!(drain(&mut t), 1);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(8500)));
    }

    #[test]
    fn final_response_completes_and_absorbs_retransmissions_until_k() {
        let t0 = base();
        let mut t = udp(t0);
        drain(&mut t);
        // The first 200 was lost: the request is retransmitted, the 200 comes again.
        t.handle_timeout(t0 + ms(500));
        assert_eq!(drain(&mut t), 1);
        assert_eq!(
            t.handle_response(t0 + ms(600), 200),
            Ok(Disposition::PassUp)
        );
        assert_eq!(
            t.handle_response(t0 + ms(610), 200),
            Ok(Disposition::Absorb)
        );
        assert_eq!(t.state(), ClientNonInviteState::Completed);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(5600)), "timer K = T4");
        t.handle_timeout(t0 + ms(5600));
        assert_eq!(drain(&mut t), 0);
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn tcp_no_retransmissions_and_k_zero() {
        let t0 = base();
        let cfg = TimerConfig::default();
        let mut t = ClientNonInvite::new(t0, Bytes::from_static(OPTIONS), true, &cfg);
        assert_eq!(drain(&mut t), 1);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_000)), "only timer F");
        assert_eq!(t.handle_response(t0 + ms(10), 404), Ok(Disposition::PassUp));
        assert!(t.is_terminated());
        assert_eq!(events(&mut t), vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn tcp_timer_f() {
        let t0 = base();
        let cfg = TimerConfig::default();
        let mut t = ClientNonInvite::new(t0, Bytes::from_static(OPTIONS), true, &cfg);
        drain(&mut t);
        let (fired, end) = run(&mut t, t0);
        assert!(fired.is_empty());
        assert_eq!(end, 32_000);
        assert_eq!(
            events(&mut t),
            vec![
                TransactionEvent::Timeout(Timer::F),
                TransactionEvent::Terminated
            ]
        );
    }

    #[test]
    fn transport_error_in_trying() {
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
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn small_t2_caps_immediately() {
        let t0 = base();
        let cfg = TimerConfig {
            t2: ms(700),
            ..TimerConfig::default()
        };
        let mut t = ClientNonInvite::new(t0, Bytes::from_static(OPTIONS), false, &cfg);
        drain(&mut t);
        t.handle_timeout(t0 + ms(500));
        assert_eq!(t.poll_timeout(), Some(t0 + ms(1200)));
    }
}
