//! The media plane (issue 5): SDP offer/answer, RTP/RTCP, codecs, DTMF, tones and prompts.
//!
//! Everything here except `driver` is sans-IO: pure functions and state machines over
//! byte slices and sample buffers, with time passed in. `driver` is the media plane's
//! runtime: its own thread, the RTP sockets and the clock. The hot path (RTP relay,
//! codecs, mixing) allocates nothing per packet.

pub mod codec;
pub mod control;
pub mod driver;
pub mod dtmf;
pub mod mixer;
pub mod prompt;
pub mod relay;
pub mod rtp;
pub mod sdp;
#[cfg(test)]
mod test_util;
