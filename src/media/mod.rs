//! The media plane (issue 5): SDP offer/answer, RTP/RTCP, codecs, DTMF, tones and prompts.
//!
//! Everything here except the future socket driver is sans-IO: pure functions and state
//! machines over byte slices and sample buffers, with time passed in. The hot path
//! (RTP relay, codecs, mixing) allocates nothing per packet.

pub mod codec;
pub mod control;
pub mod dtmf;
pub mod prompt;
pub mod rtp;
pub mod sdp;
