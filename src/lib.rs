//! sentralbord: a SIP softswitch daemon for hosted business switchboards.
//!
//! Architecture (see ARCHITECTURE.md for the one-page map):
//!
//! - `sip`, `registrar`, `engine` are **sans-IO**: they take inputs (a received message,
//!   the current time, answers to side effects they asked for) and return outputs
//!   (messages to transmit, store commands, the next deadline). They never read the clock,
//!   never touch a socket and never block. After every input the driver drains the outputs
//!   until none are left, then sleeps until the next deadline.
//! - `transport`, `store`, `runtime` do the I/O: sockets, SQLite on its own threads,
//!   tokio tasks, signals and systemd notification.
//! - `config` is typed, validated configuration; `cli` holds the provisioning commands.
//!
//! Time model: every core takes [`util::time::Now`] (monotonic for timers, wall clock for
//! expiry stored on disk) as an argument. `Instant::now()` and `SystemTime::now()` are only
//! called in `runtime` (enforced by `clippy.toml`).
//!
//! Panic policy: a panic is a bug. Nothing on the network path may panic on any input;
//! malformed input is a typed error mapped to a SIP status in one place.

pub mod call;
pub mod cli;
pub mod config;
pub mod engine;
pub mod lookup;
pub mod media;
pub mod queue;
pub mod registrar;
pub mod runtime;
pub mod sip;
pub mod store;
pub mod transport;
pub mod util;
