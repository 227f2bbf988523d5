//! The per-packet RTP/RTCP layer of the media relay: parse in place over `&[u8]`, rewrite in
//! place over `&mut [u8]`, build into caller buffers; nothing allocates per packet.
//!
//! - [`header`]: RTP header view, in-place editor, writer, rtcp-mux demultiplexing.
//! - [`rtcp`]: compound RTCP reading, SSRC rewriting for the B2BUA, SR/RR + SDES building.
//! - [`rewrite`]: one continuous outgoing stream across source switches.
//! - [`stats`]: RFC 3550 receiver statistics (loss, jitter).
//! - [`event`]: RFC 4733 telephone-events (DTMF) detection and generation.

use std::time::Duration;

pub mod error;
pub mod event;
pub mod header;
pub mod rewrite;
pub mod rtcp;
pub mod stats;

pub use error::RtpError;
pub use event::{EventDetector, EventGenerator, EventReport, TelephoneEvent};
pub use header::{
    classify, is_rtcp, write_header, PacketKind, RtpHeaderFields, RtpPacket, RtpPacketMut,
};
pub use rewrite::{RelayOutcome, StreamRewriter};
pub use stats::{ReceiverStats, SeqVerdict};

/// A duration in RTP clock units at `clock_rate` Hz (truncated; saturates at `u64::MAX`).
pub fn duration_to_ticks(duration: Duration, clock_rate: u32) -> u64 {
    let ticks = duration.as_micros() * u128::from(clock_rate) / 1_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod no_panic_tests;
