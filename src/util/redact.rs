//! A wrapper that keeps personal data (numbers, addresses, user names) out of logs.

use std::fmt;

/// Personal data: `Debug`/`Display` print a redacted form unless
/// `SENTRALBORD_LOG_PII=1` was set when the process started (see `runtime`).
pub struct Pii<T>(pub T);

static SHOW_PII: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Enables or disables printing personal data in logs (set once at start-up).
pub fn set_show_pii(show: bool) {
    SHOW_PII.store(show, std::sync::atomic::Ordering::Relaxed);
}

impl<T: fmt::Display> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if SHOW_PII.load(std::sync::atomic::Ordering::Relaxed) {
            self.0.fmt(f)
        } else {
            let s = self.0.to_string();
            // Keep the last two characters: enough to tell entries apart, not to identify.
            let tail: String = s
                .chars()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            write!(f, "***{tail}")
        }
    }
}

impl<T: fmt::Display> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
