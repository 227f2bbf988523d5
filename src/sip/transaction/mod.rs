//! SANS-IO SIP transactions: RFC 3261 section 17, with the RFC 6026 fixes for 2xx to INVITE.
//!
//! Four state machines, one per file, each driven the same way:
//!
//! - **Inputs**: `new(now, ..)`, `handle_response` / `send_response` / `handle_ack` /
//!   `handle_request_retransmission`, `handle_timeout(now)`, `handle_transport_error()`.
//!   Time is always an argument; nothing here reads the clock.
//! - **Outputs**, drained after every input: `poll_transmit()` (already serialized bytes to
//!   send to the transaction's destination), `poll_event()` ([`TransactionEvent`]) and
//!   `poll_timeout()` (the earliest armed timer, `None` once terminated).
//!
//! Messages are opaque [`bytes::Bytes`] serialized by the caller: the machines only need
//! status codes and "a request/ACK arrived" facts, so they do not depend on the codec.
//!
//! Timers are named after the RFC ([`Timer`]) and live in a small per-transaction table.
//! [`TransactionTable`] holds many transactions and keeps one binary heap of deadlines
//! with lazy deletion, so the driver sleeps on a single deadline. Timer durations come from
//! [`TimerConfig`] (T1, T2, T4 and the derived timers), which the config module exposes
//! to operators.
//!
//! Reliability: `reliable = true` (TCP, TLS, WebSocket) disables retransmission timers
//! (A, E, G) and makes the "wait for stray retransmissions" timers (D, I, J, K) zero, so
//! those transactions terminate as soon as they complete (RFC 3261 17.1.1.2, 17.1.2.2,
//! 17.2.1, 17.2.2).

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;
#[cfg(test)]
mod sim_tests;
mod table;
mod timer;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::{is_rfc3261_branch, new_branch, ServerKeyParts, TransactionKey, MAGIC_COOKIE};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use table::{KeyedEvent, Transaction, TransactionTable, Transmit};
pub use timer::{Timer, TimerConfig, TimerConfigFault};

use std::collections::VecDeque;

use bytes::Bytes;

/// What the caller must do with a response or ACK it handed to a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Disposition {
    /// Deliver the message to the transaction user (core, dialog layer, proxy logic).
    PassUp,
    /// Drop it: it was a retransmission the transaction has already dealt with.
    Absorb,
}

/// Something a transaction tells its user, in addition to messages to transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEvent {
    /// A timeout timer fired: B or F on a client (the TU synthesizes a 408 response,
    /// RFC 3261 8.1.3.1), H on a server INVITE (the ACK never came, 17.2.1).
    Timeout(Timer),
    /// The transport failed to send one of the transaction's messages (17.1.4, 17.2.4).
    TransportError,
    /// Server INVITE only: 200 ms passed without any response from the TU, so the caller
    /// must now build a 100 (Trying) and pass it to `send_response` (17.2.1).
    SendTrying,
    /// The transaction reached "Terminated"; it is emitted exactly once and is the last event.
    Terminated,
}

/// Errors from the transaction layer: misuse by the caller or invalid values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// A status code outside 100..=699.
    #[error("invalid SIP status code {0}")]
    InvalidStatus(u16),
    /// The TU tried to send a response after the transaction's final response.
    #[error("a final response was already sent; status {0} discarded")]
    FinalAlreadySent(u16),
    /// The TU tried to send a response on a terminated transaction.
    #[error("the transaction is terminated")]
    Terminated,
    /// A transaction with this key already exists in the table.
    #[error("a transaction with this key already exists")]
    DuplicateKey,
    /// No transaction with this key exists in the table.
    #[error("no transaction with this key")]
    NotFound,
    /// The input does not apply to this kind of transaction (e.g. a response to a server).
    #[error("input does not apply to this kind of transaction")]
    WrongKind,
}

/// Checks that a status code is a SIP status code (RFC 3261 7.2: 100..=699).
fn check_status(status: u16) -> Result<(), TransactionError> {
    if (100..=699).contains(&status) {
        Ok(())
    } else {
        Err(TransactionError::InvalidStatus(status))
    }
}

/// The output queues every state machine keeps until the caller polls them.
#[derive(Debug, Default, Clone)]
struct Outputs {
    transmits: VecDeque<Bytes>,
    events: VecDeque<TransactionEvent>,
}

impl Outputs {
    fn transmit(&mut self, bytes: Bytes) {
        self.transmits.push_back(bytes);
    }

    fn event(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod test_util {
    //! Simulated time and output draining shared by the machines' tests.

    use std::time::{Duration, Instant};

    /// A fixed base instant: tests only ever add durations to it.
    #[allow(clippy::disallowed_methods)]
    pub fn base() -> Instant {
        Instant::now()
    }

    /// Milliseconds as a `Duration`, to keep schedules readable.
    pub fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
