//! SDP (RFC 8866, formerly RFC 4566) and RFC 3264 offer/answer for a media-anchoring B2BUA.
//!
//! This runs once per offer or answer, not per packet, so the model owns its strings.
//!
//! - [`Sdp::parse`] is lenient: CRLF or bare LF, trailing whitespace, lines in any order,
//!   unknown lines and attributes kept in order. It is strict only where the media plane
//!   needs the value: `v=` first, one `o=`, well-formed `c=` and `m=` lines.
//! - [`Sdp::encode`] writes CRLF lines in RFC 8866 order; a body already in that order
//!   re-encodes byte for byte (apart from whitespace and IPv6 spelling).
//! - Attributes stay as raw `name[:value]` pairs in order; typed views (`rtpmap`, `fmtp`,
//!   direction, `ptime`, `rtcp`) are accessors, so editing never reorders what we keep.
//! - [`anchor`] rewrites one leg's SDP into the SDP we send on the other leg (our address
//!   and relay ports, codec filter, plain RTP/AVP only); [`OriginState::stamp`] keeps the
//!   `o=` version rules of RFC 3264 section 8.
//! - [`answer`] / [`offer`] build SDP when sentralbord terminates media itself, and
//!   [`negotiated`] summarises an offer/answer pair for the media engine.

mod anchor;
mod codecs;
mod direction;
mod encode;
mod model;
mod negotiate;
mod parse;

#[cfg(test)]
mod fixtures;

pub use anchor::{
    anchor, filter_codecs, is_dropped_when_anchoring, AnchorConfig, OriginState, RelayPorts,
};
pub use codecs::{static_payload_type, CodecName, RtpMap};
pub use direction::Direction;
pub use model::{Attribute, Connection, Field, Media, MediaKind, Origin, OriginNumber, Rtcp, Sdp};
pub use negotiate::{answer, negotiated, offer, Endpoint, LocalMedia, NegotiatedStream, Role};

/// Why an SDP body could not be parsed or an offer could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body holds no SDP line at all.
    #[error("SDP body is empty")]
    Empty,
    /// The first line is not `v=` (RFC 8866 section 5).
    #[error("SDP line {line}: the first line must be v=")]
    VersionNotFirst {
        /// 1-based line number in the body.
        line: usize,
    },
    /// A line is not `<letter>=<value>`.
    #[error("SDP line {line}: expected <type>=<value>")]
    BadLine {
        /// 1-based line number in the body.
        line: usize,
    },
    /// A `v=` or `o=` line appears again, or `o=` appears after the first `m=`.
    #[error("SDP line {line}: unexpected {letter}= line")]
    UnexpectedLine {
        /// 1-based line number in the body.
        line: usize,
        /// The line type letter.
        letter: char,
    },
    /// There is no `o=` line.
    #[error("SDP has no o= line")]
    MissingOrigin,
    /// The `o=` line does not have six fields.
    #[error("SDP line {line}: malformed o= line")]
    BadOrigin {
        /// 1-based line number in the body.
        line: usize,
    },
    /// The `c=` line is not `IN IP4|IP6 <address>[/ttl[/count]]` with a literal address.
    #[error("SDP line {line}: malformed c= line")]
    BadConnection {
        /// 1-based line number in the body.
        line: usize,
    },
    /// The `m=` line has fewer than three fields.
    #[error("SDP line {line}: malformed m= line")]
    BadMediaLine {
        /// 1-based line number in the body.
        line: usize,
    },
    /// The `m=` port (or port count) is not a number from 0 to 65535.
    #[error("SDP line {line}: bad port in m= line")]
    BadMediaPort {
        /// 1-based line number in the body.
        line: usize,
    },
    /// No audio codec offered is one we can handle (telephone-event and CN do not count).
    #[error("no codec in common")]
    NoCommonCodec,
    /// The audio stream uses a secure or non-RTP transport that a plain RTP relay cannot carry.
    #[error("media line {media_index}: unsupported transport")]
    UnsupportedTransport {
        /// 0-based index of the `m=` line.
        media_index: usize,
    },
    /// The SDP has no active (non-zero port) audio stream we could accept.
    #[error("no usable audio stream")]
    NoAudioStream,
}
