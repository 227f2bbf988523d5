//! The time model: cores receive time as a value and never read the clock themselves.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The current time as seen by the runtime, handed to every sans-IO core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, used for protocol timers.
    pub mono: Instant,
    /// Wall-clock time, used for anything persisted (binding expiry, call log).
    pub wall: SystemTime,
}

impl Now {
    /// Builds a `Now` from explicit parts (tests use this to simulate time).
    pub fn new(mono: Instant, wall: SystemTime) -> Self {
        Self { mono, wall }
    }

    /// Returns this time advanced by `d` on both clocks (simulated time in tests).
    pub fn advanced(self, d: Duration) -> Self {
        Self {
            mono: self.mono + d,
            wall: self.wall + d,
        }
    }

    /// Seconds since the Unix epoch of the wall clock (0 if the clock is before 1970).
    pub fn unix_secs(&self) -> u64 {
        self.wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
