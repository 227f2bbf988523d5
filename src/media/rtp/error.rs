//! The one error type of the RTP layer: every malformed packet or undersized buffer maps here.

use thiserror::Error;

/// Why an RTP/RTCP packet could not be parsed, rewritten or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed part of the structure being read.
    #[error("packet truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The version field is not 2.
    #[error("unsupported RTP/RTCP version {0}")]
    BadVersion(u8),
    /// The padding count is zero or larger than the bytes after the header.
    #[error("padding count {padding} invalid with {available} bytes after the header")]
    BadPadding {
        /// The padding count from the last byte.
        padding: u8,
        /// Bytes between the header and the end of the packet.
        available: usize,
    },
    /// The CSRC count points past the end of the packet.
    #[error("{count} CSRCs do not fit in a {available}-byte packet")]
    CsrcBeyondPacket {
        /// The CC field.
        count: u8,
        /// Packet length.
        available: usize,
    },
    /// The header extension (or its length field) runs past the end of the packet.
    #[error("header extension runs past the end of a {available}-byte packet")]
    ExtensionBeyondPacket {
        /// Packet length.
        available: usize,
    },
    /// An RTCP length field points past the end of the compound packet.
    #[error("RTCP packet declares {declared} bytes, only {available} left")]
    RtcpLengthBeyondPacket {
        /// Bytes declared by the length field.
        declared: usize,
        /// Bytes left in the compound packet.
        available: usize,
    },
    /// An RTCP packet body is too short for what its count field announces.
    #[error("RTCP packet type {packet_type} body too short for its contents")]
    RtcpBodyTooShort {
        /// The RTCP packet type.
        packet_type: u8,
    },
    /// An empty compound RTCP packet.
    #[error("empty RTCP compound packet")]
    EmptyCompound,
    /// The caller's output buffer is too small.
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A payload type outside 0-127.
    #[error("payload type {0} outside 0-127")]
    InvalidPayloadType(u8),
    /// More items than a 5-bit (RTCP) or 4-bit (CSRC) count field can carry.
    #[error("{0} items exceed the count field")]
    TooManyItems(usize),
    /// An SDES item or BYE reason longer than 255 bytes.
    #[error("text of {0} bytes exceeds 255")]
    TextTooLong(usize),
    /// A telephone-event volume outside 0-63.
    #[error("telephone-event volume {0} outside 0-63")]
    InvalidVolume(u8),
}
