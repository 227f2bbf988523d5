//! RFC 3261 / RFC 6026 transaction timers: their names, their durations, and the small
//! per-transaction table that holds their deadlines.

use std::time::{Duration, Instant};

/// A transaction timer, named as in RFC 3261 17 (table 4 in appendix A) and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Client INVITE request retransmission (unreliable transports only).
    A,
    /// Client INVITE transaction timeout.
    B,
    /// Client INVITE: wait time for response retransmissions in "Completed".
    D,
    /// Client non-INVITE request retransmission (unreliable transports only).
    E,
    /// Client non-INVITE transaction timeout.
    F,
    /// Server INVITE final response retransmission (unreliable transports only).
    G,
    /// Server INVITE: wait time for the ACK.
    H,
    /// Server INVITE: wait time for ACK retransmissions in "Confirmed".
    I,
    /// Server non-INVITE: wait time for request retransmissions in "Completed".
    J,
    /// Client non-INVITE: wait time for response retransmissions in "Completed".
    K,
    /// Server INVITE (RFC 6026): wait time for 2xx/ACK traffic in "Accepted".
    L,
    /// Client INVITE (RFC 6026): wait time for 2xx retransmissions in "Accepted".
    M,
    /// Server INVITE: the 200 ms after which a 100 (Trying) is due (17.2.1; unnamed there).
    Trying,
}

impl Timer {
    /// How many timers exist; the size of the per-transaction table.
    const COUNT: usize = 13;

    /// Every timer, in table order (used to break deadline ties deterministically).
    const ALL: [Timer; Timer::COUNT] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Trying,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Timer durations (RFC 3261 17.1.1.1, table 4 in appendix A; RFC 6026 for L and M).
///
/// `Default` gives the RFC values. Use [`TimerConfig::from_base`] when an operator changes
/// T1 so that the 64*T1 timers follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Maximum duration a message will remain in the network (default 5 s).
    pub t4: Duration,
    /// Client INVITE timeout (default 64*T1).
    pub timer_b: Duration,
    /// Client INVITE "Completed" linger on unreliable transports (default 32 s; 0 on reliable).
    pub timer_d: Duration,
    /// Client non-INVITE timeout (default 64*T1).
    pub timer_f: Duration,
    /// Server INVITE wait for ACK (default 64*T1).
    pub timer_h: Duration,
    /// Server non-INVITE "Completed" linger on unreliable transports (default 64*T1; 0 on reliable).
    pub timer_j: Duration,
    /// Server INVITE "Accepted" linger (RFC 6026, default 64*T1).
    pub timer_l: Duration,
    /// Client INVITE "Accepted" linger (RFC 6026, default 64*T1).
    pub timer_m: Duration,
    /// Delay after which a server INVITE asks for a 100 (Trying) (RFC 3261 17.2.1: 200 ms).
    pub trying_delay: Duration,
}

impl TimerConfig {
    /// Derives every timer from T1, T2 and T4 as RFC 3261 and RFC 6026 define them.
    pub fn from_base(t1: Duration, t2: Duration, t4: Duration) -> Self {
        let t64 = t1.saturating_mul(64);
        Self {
            t1,
            t2,
            t4,
            timer_b: t64,
            // "at least 32 seconds" (17.1.1.2): keep 32 s even for a small T1.
            timer_d: Duration::from_secs(32).max(t64),
            timer_f: t64,
            timer_h: t64,
            timer_j: t64,
            timer_l: t64,
            timer_m: t64,
            trying_delay: Duration::from_millis(200),
        }
    }

    /// Checks the values an operator could get wrong: a zero T1 (no retransmission
    /// backoff) and a T2 below T1 (the cap would shrink the first interval).
    pub fn validate(&self) -> Result<(), TimerConfigFault> {
        if self.t1.is_zero() {
            return Err(TimerConfigFault::ZeroT1);
        }
        if self.t2 < self.t1 {
            return Err(TimerConfigFault::T2BelowT1);
        }
        Ok(())
    }

    /// Timer I: T4 on unreliable transports, zero on reliable ones (17.2.1).
    pub(crate) fn timer_i(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer K: T4 on unreliable transports, zero on reliable ones (17.1.2.2).
    pub(crate) fn timer_k(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer D: `timer_d` on unreliable transports, zero on reliable ones (17.1.1.2).
    pub(crate) fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_d
        }
    }

    /// Timer J: `timer_j` on unreliable transports, zero on reliable ones (17.2.2).
    pub(crate) fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_j
        }
    }
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self::from_base(
            Duration::from_millis(500),
            Duration::from_secs(4),
            Duration::from_secs(5),
        )
    }
}

/// What is wrong with a [`TimerConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimerConfigFault {
    /// T1 is zero.
    #[error("T1 must be greater than zero")]
    ZeroT1,
    /// T2 is smaller than T1.
    #[error("T2 must not be smaller than T1")]
    T2BelowT1,
}

/// Lower bound for a retransmission interval, so a zero T1 in a bad config cannot make a
/// timer re-arm at `now` and spin the driver.
pub(crate) const MIN_RETRANSMIT: Duration = Duration::from_millis(1);

/// The deadlines of one transaction's timers, indexed by [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    at: [Option<Instant>; Timer::COUNT],
}

impl Timers {
    /// Arms `timer` to fire `after` from `now`. A deadline beyond what `Instant` can hold
    /// (an absurd configured duration) leaves the timer unarmed rather than panicking.
    pub(crate) fn arm(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.at[timer.index()] = now.checked_add(after);
    }

    /// Disarms `timer`.
    pub(crate) fn disarm(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
    }

    /// Disarms every timer (on entering "Terminated").
    pub(crate) fn clear(&mut self) {
        self.at = [None; Timer::COUNT];
    }

    /// The earliest armed deadline.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer due at `now` (ties in table order).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let mut best: Option<(Instant, Timer)> = None;
        for timer in Timer::ALL {
            if let Some(at) = self.at[timer.index()] {
                if at <= now && best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, timer));
                }
            }
        }
        let (_, timer) = best?;
        self.disarm(timer);
        Some(timer)
    }

    /// The deadline of `timer`, if armed.
    #[cfg(test)]
    pub(crate) fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_util::{base, ms};

    #[test]
    fn defaults_follow_rfc_3261_table_4() {
        let c = TimerConfig::default();
        assert_eq!(c.t1, ms(500));
        assert_eq!(c.t2, ms(4000));
        assert_eq!(c.t4, ms(5000));
        assert_eq!(c.timer_b, ms(32_000));
        assert_eq!(c.timer_f, ms(32_000));
        assert_eq!(c.timer_h, ms(32_000));
        assert_eq!(c.timer_d, ms(32_000));
        assert_eq!(c.timer_l, ms(32_000));
        assert_eq!(c.timer_m, ms(32_000));
        assert_eq!(c.timer_d(true), Duration::ZERO);
        assert_eq!(c.timer_i(false), ms(5000));
        assert_eq!(c.timer_k(true), Duration::ZERO);
    }

    #[test]
    fn from_base_scales_64_t1_but_keeps_timer_d_at_least_32s() {
        let c = TimerConfig::from_base(ms(100), ms(4000), ms(5000));
        assert_eq!(c.timer_b, ms(6400));
        assert_eq!(c.timer_d, ms(32_000));
        let c = TimerConfig::from_base(ms(1000), ms(4000), ms(5000));
        assert_eq!(c.timer_d, ms(64_000));
    }

    #[test]
    fn validate_rejects_zero_t1_and_t2_below_t1() {
        assert_eq!(TimerConfig::default().validate(), Ok(()));
        let zero = TimerConfig::from_base(Duration::ZERO, ms(4000), ms(5000));
        assert_eq!(zero.validate(), Err(TimerConfigFault::ZeroT1));
        let inverted = TimerConfig::from_base(ms(500), ms(400), ms(5000));
        assert_eq!(inverted.validate(), Err(TimerConfigFault::T2BelowT1));
    }

    #[test]
    fn zero_t1_cannot_spin_retransmissions() {
        use crate::sip::transaction::ClientNonInvite;
        let t0 = base();
        let cfg = TimerConfig {
            t1: Duration::ZERO,
            ..TimerConfig::default()
        };
        let mut t = ClientNonInvite::new(t0, bytes::Bytes::from_static(b"X"), false, &cfg);
        assert!(t.poll_transmit().is_some(), "the request itself");
        let mut now = t0;
        for _ in 0..5 {
            let next = t.poll_timeout().expect("timer E stays armed");
            assert!(next > now, "every re-arm is strictly in the future");
            now = next;
            t.handle_timeout(now);
            assert_eq!(std::iter::from_fn(|| t.poll_transmit()).count(), 1);
        }
    }

    #[test]
    fn pop_due_returns_earliest_first_and_ties_in_table_order() {
        let t0 = base();
        let mut t = Timers::default();
        t.arm(Timer::B, t0, ms(10));
        t.arm(Timer::A, t0, ms(10));
        t.arm(Timer::D, t0, ms(5));
        assert_eq!(t.earliest(), Some(t0 + ms(5)));
        assert_eq!(t.pop_due(t0 + ms(4)), None);
        assert_eq!(t.pop_due(t0 + ms(10)), Some(Timer::D));
        assert_eq!(t.pop_due(t0 + ms(10)), Some(Timer::A));
        assert_eq!(t.pop_due(t0 + ms(10)), Some(Timer::B));
        assert_eq!(t.pop_due(t0 + ms(10)), None);
        assert_eq!(t.earliest(), None);
    }

    #[test]
    fn overflowing_deadline_leaves_timer_unarmed() {
        let t0 = base();
        let mut t = Timers::default();
        t.arm(Timer::B, t0, Duration::MAX);
        assert_eq!(t.deadline(Timer::B), None);
    }
}
