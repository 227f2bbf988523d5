//! The RTP header (RFC 3550 §5.1): a zero-copy view for reading, an in-place editor for
//! relaying, a writer for packets we generate, and the rtp-mux demultiplexer (RFC 5761/7983).
//!
//! ```text
//!  0                   1                   2                   3
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers  (CC x 32)  |
//! |   profile-defined (16)        |   extension length in words   |  (if X)
//! |                        extension data ...                     |
//! |                     payload ...           | padding ... | count |  (if P)
//! ```

use super::error::RtpError;

/// The only RTP/RTCP version in use.
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed RTP header (no CSRCs, no extension).
pub const RTP_HEADER_LEN: usize = 12;
/// Highest payload type (7 bits).
pub const MAX_PAYLOAD_TYPE: u8 = 127;

/// A header extension: the profile-defined 16 bits and the extension data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The 16-bit "defined by profile" field (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// The extension data (length field x 4 bytes).
    pub data: &'a [u8],
}

/// The header fields that change per packet: what we rewrite and what we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeaderFields {
    /// Marker bit (start of a talkspurt for audio, start of an event for RFC 4733).
    pub marker: bool,
    /// Payload type, 0-127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp in clock-rate units.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
}

/// Where the parts of a validated packet lie (offsets into the whole packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    csrc_count: u8,
    /// Offset of the extension's 4-byte header, if X is set.
    extension_at: Option<usize>,
    /// Header length including CSRCs and extension: the payload offset.
    header_len: usize,
    /// End of the payload (packet length minus padding).
    payload_end: usize,
    padding_len: u8,
}

/// Validates the structure of an RTP packet and returns where its parts lie.
fn layout(bytes: &[u8]) -> Result<Layout, RtpError> {
    let available = bytes.len();
    let head: &[u8; RTP_HEADER_LEN] = bytes.first_chunk().ok_or(RtpError::Truncated {
        needed: RTP_HEADER_LEN,
        available,
    })?;
    let version = head[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion(version));
    }
    let has_padding = head[0] & 0x20 != 0;
    let has_extension = head[0] & 0x10 != 0;
    let csrc_count = head[0] & 0x0f;
    let mut header_len = RTP_HEADER_LEN + 4 * usize::from(csrc_count);
    if header_len > available {
        return Err(RtpError::CsrcBeyondPacket {
            count: csrc_count,
            available,
        });
    }
    let mut extension_at = None;
    if has_extension {
        let ext_head: &[u8; 4] = bytes
            .get(header_len..)
            .and_then(<[u8]>::first_chunk)
            .ok_or(RtpError::ExtensionBeyondPacket { available })?;
        let words = u16::from_be_bytes([ext_head[2], ext_head[3]]);
        extension_at = Some(header_len);
        header_len += 4 + 4 * usize::from(words);
        if header_len > available {
            return Err(RtpError::ExtensionBeyondPacket { available });
        }
    }
    let mut payload_end = available;
    let mut padding_len = 0;
    if has_padding {
        // The last byte counts the padding including itself (RFC 3550 §5.1), so 0 is invalid.
        let padding = bytes.last().copied().unwrap_or(0);
        let room = available - header_len;
        if padding == 0 || usize::from(padding) > room {
            return Err(RtpError::BadPadding {
                padding,
                available: room,
            });
        }
        payload_end -= usize::from(padding);
        padding_len = padding;
    }
    Ok(Layout {
        csrc_count,
        extension_at,
        header_len,
        payload_end,
        padding_len,
    })
}

fn read_fields(head: &[u8; RTP_HEADER_LEN]) -> RtpHeaderFields {
    RtpHeaderFields {
        marker: head[1] & 0x80 != 0,
        payload_type: head[1] & 0x7f,
        sequence_number: u16::from_be_bytes([head[2], head[3]]),
        timestamp: u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
        ssrc: u32::from_be_bytes([head[8], head[9], head[10], head[11]]),
    }
}

/// A validated, zero-copy view of one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    bytes: &'a [u8],
    fields: RtpHeaderFields,
    layout: Layout,
}

impl<'a> RtpPacket<'a> {
    /// Parses and validates a packet: version 2, CSRC list, extension and padding within bounds.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtpError> {
        let layout = layout(bytes)?;
        let head = bytes.first_chunk().ok_or(RtpError::Truncated {
            needed: RTP_HEADER_LEN,
            available: bytes.len(),
        })?;
        Ok(Self {
            bytes,
            fields: read_fields(head),
            layout,
        })
    }

    /// The per-packet header fields (marker, payload type, seq, timestamp, SSRC).
    pub fn fields(&self) -> RtpHeaderFields {
        self.fields
    }

    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.fields.marker
    }

    /// Payload type (0-127).
    pub fn payload_type(&self) -> u8 {
        self.fields.payload_type
    }

    /// Sequence number.
    pub fn sequence_number(&self) -> u16 {
        self.fields.sequence_number
    }

    /// RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        self.fields.timestamp
    }

    /// Synchronization source.
    pub fn ssrc(&self) -> u32 {
        self.fields.ssrc
    }

    /// Number of contributing sources (CC field).
    pub fn csrc_count(&self) -> u8 {
        self.layout.csrc_count
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let end = RTP_HEADER_LEN + 4 * usize::from(self.layout.csrc_count);
        self.bytes
            .get(RTP_HEADER_LEN..end)
            .unwrap_or_default()
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension, if the X bit is set.
    pub fn extension(&self) -> Option<RtpExtension<'a>> {
        let at = self.layout.extension_at?;
        let ext_head: &[u8; 4] = self.bytes.get(at..)?.first_chunk()?;
        let data = self.bytes.get(at + 4..self.layout.header_len)?;
        Some(RtpExtension {
            profile: u16::from_be_bytes([ext_head[0], ext_head[1]]),
            data,
        })
    }

    /// Whether the P bit is set.
    pub fn has_padding(&self) -> bool {
        self.layout.padding_len > 0
    }

    /// Padding bytes after the payload (including the count byte), 0 without padding.
    pub fn padding_len(&self) -> u8 {
        self.layout.padding_len
    }

    /// Header length including CSRCs and extension: the offset of the payload.
    pub fn header_len(&self) -> usize {
        self.layout.header_len
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
            .get(self.layout.header_len..self.layout.payload_end)
            .unwrap_or_default()
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// An in-place editor over a validated RTP packet, for relaying without copying.
#[derive(Debug)]
pub struct RtpPacketMut<'a> {
    head: &'a mut [u8; RTP_HEADER_LEN],
    /// Everything after the fixed header.
    rest: &'a mut [u8],
    layout: Layout,
}

impl<'a> RtpPacketMut<'a> {
    /// Validates the packet like [`RtpPacket::parse`] and opens it for in-place edits.
    pub fn parse(bytes: &'a mut [u8]) -> Result<Self, RtpError> {
        let layout = layout(bytes)?;
        let available = bytes.len();
        let (head, rest) =
            bytes
                .split_first_chunk_mut::<RTP_HEADER_LEN>()
                .ok_or(RtpError::Truncated {
                    needed: RTP_HEADER_LEN,
                    available,
                })?;
        Ok(Self { head, rest, layout })
    }

    /// The current per-packet header fields.
    pub fn fields(&self) -> RtpHeaderFields {
        read_fields(self.head)
    }

    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.head[1] & 0x80 != 0
    }

    /// Payload type.
    pub fn payload_type(&self) -> u8 {
        self.head[1] & 0x7f
    }

    /// Sequence number.
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.head[2], self.head[3]])
    }

    /// RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.head[4], self.head[5], self.head[6], self.head[7]])
    }

    /// Synchronization source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.head[8], self.head[9], self.head[10], self.head[11]])
    }

    /// Sets or clears the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.head[1] = (self.head[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Sets the payload type (e.g. to map telephone-event 101 on one leg to 96 on the other).
    pub fn set_payload_type(&mut self, payload_type: u8) -> Result<(), RtpError> {
        if payload_type > MAX_PAYLOAD_TYPE {
            return Err(RtpError::InvalidPayloadType(payload_type));
        }
        self.head[1] = (self.head[1] & 0x80) | payload_type;
        Ok(())
    }

    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        let [a, b] = seq.to_be_bytes();
        self.head[2] = a;
        self.head[3] = b;
    }

    /// Sets the RTP timestamp.
    pub fn set_timestamp(&mut self, timestamp: u32) {
        let [a, b, c, d] = timestamp.to_be_bytes();
        self.head[4] = a;
        self.head[5] = b;
        self.head[6] = c;
        self.head[7] = d;
    }

    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        let [a, b, c, d] = ssrc.to_be_bytes();
        self.head[8] = a;
        self.head[9] = b;
        self.head[10] = c;
        self.head[11] = d;
    }

    /// Header length including CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.layout.header_len
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &[u8] {
        let start = self.layout.header_len - RTP_HEADER_LEN;
        let end = self.layout.payload_end - RTP_HEADER_LEN;
        self.rest.get(start..end).unwrap_or_default()
    }

    /// The payload for in-place edits (e.g. transcoding between same-size codecs).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.layout.header_len - RTP_HEADER_LEN;
        let end = self.layout.payload_end - RTP_HEADER_LEN;
        self.rest.get_mut(start..end).unwrap_or_default()
    }
}

/// Writes a 12-byte header (no CSRCs, extension or padding) for a packet we originate;
/// returns the header length, where the payload starts.
pub fn write_header(buf: &mut [u8], fields: &RtpHeaderFields) -> Result<usize, RtpError> {
    if fields.payload_type > MAX_PAYLOAD_TYPE {
        return Err(RtpError::InvalidPayloadType(fields.payload_type));
    }
    let available = buf.len();
    let head: &mut [u8; RTP_HEADER_LEN] =
        buf.first_chunk_mut().ok_or(RtpError::BufferTooSmall {
            needed: RTP_HEADER_LEN,
            available,
        })?;
    head[0] = RTP_VERSION << 6;
    head[1] = fields.payload_type | if fields.marker { 0x80 } else { 0 };
    head[2..4].copy_from_slice(&fields.sequence_number.to_be_bytes());
    head[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    head[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    Ok(RTP_HEADER_LEN)
}

/// What arrived on a shared media port, by its first bytes (RFC 7983 and RFC 5761).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// RTP (version 2, second byte not in 192-223).
    Rtp,
    /// RTCP multiplexed on the RTP port (second byte 192-223).
    Rtcp,
    /// STUN (first byte 0-3), e.g. ICE connectivity checks.
    Stun,
    /// DTLS (first byte 20-63), e.g. the DTLS-SRTP handshake.
    Dtls,
    /// Anything else (ZRTP, TURN channels, garbage).
    Unknown,
}

/// Classifies a packet received on a port that may carry RTP, RTCP, STUN and DTLS.
pub fn classify(packet: &[u8]) -> PacketKind {
    match packet.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) if packet.len() >= 2 => {
            if is_rtcp(packet) {
                PacketKind::Rtcp
            } else {
                PacketKind::Rtp
            }
        }
        _ => PacketKind::Unknown,
    }
}

/// Whether a version-2 packet on an rtcp-mux port is RTCP: RFC 5761 §4 reserves second-byte
/// values 192-223 (RTCP types; RTP payload types 64-95 with marker) for RTCP.
pub fn is_rtcp(packet: &[u8]) -> bool {
    match packet {
        [first, second, ..] => first >> 6 == RTP_VERSION && (192..=223).contains(second),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PCMU packet laid out by hand per RFC 3550 §5.1: M=1, PT=0, seq 0x1234,
    /// ts 0xDEADBEEF, SSRC 0x11223344, 4 payload bytes.
    pub(crate) const PCMU: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22, 0x33, 0x44, 0xff, 0x7f, 0x00,
        0x80,
    ];

    /// P, X and CC=2 all set: 2 CSRCs, a one-word 0xBEDE extension, 3 payload bytes, 3 padding.
    pub(crate) const FULL: [u8; 34] = [
        0xb2, 0x08, 0x00, 0x07, 0x00, 0x00, 0x01, 0x40, 0xca, 0xfe, 0xba, 0xbe, // fixed
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // CSRCs 1 and 2
        0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0x00, 0x00, // extension, 1 word
        0x01, 0x02, 0x03, 0x00, 0x00, 0x03, // payload, then 3 padding bytes (count 3)
    ];

    #[test]
    fn parses_a_plain_pcmu_packet() {
        let p = RtpPacket::parse(&PCMU).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x1122_3344);
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.extension(), None);
        assert!(!p.has_padding());
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.payload(), &[0xff, 0x7f, 0x00, 0x80]);
    }

    #[test]
    fn parses_csrcs_extension_and_padding() {
        let p = RtpPacket::parse(&FULL).unwrap();
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.sequence_number(), 7);
        assert_eq!(p.timestamp(), 320);
        assert_eq!(p.ssrc(), 0xcafe_babe);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        let ext = p.extension().unwrap();
        assert_eq!(ext.profile, 0xbede);
        assert_eq!(ext.data, &[0x10, 0xaa, 0, 0]);
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.padding_len(), 3);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        assert_eq!(
            RtpPacket::parse(&PCMU[..11]),
            Err(RtpError::Truncated {
                needed: 12,
                available: 11
            })
        );
        let mut v1 = PCMU;
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
        // Padding count larger than everything after the header.
        let mut pad = PCMU;
        pad[0] |= 0x20;
        pad[15] = 5;
        assert_eq!(
            RtpPacket::parse(&pad),
            Err(RtpError::BadPadding {
                padding: 5,
                available: 4
            })
        );
        pad[15] = 0;
        assert!(matches!(
            RtpPacket::parse(&pad),
            Err(RtpError::BadPadding { padding: 0, .. })
        ));
        // Padding exactly filling the payload is valid (empty payload).
        pad[15] = 4;
        assert_eq!(RtpPacket::parse(&pad).unwrap().payload(), &[] as &[u8]);
        // CC=2 needs 20 bytes.
        let mut cc = PCMU;
        cc[0] |= 0x02;
        assert_eq!(
            RtpPacket::parse(&cc),
            Err(RtpError::CsrcBeyondPacket {
                count: 2,
                available: 16
            })
        );
        // X set but the extension length (2 words) runs past the end.
        let mut ext = PCMU;
        ext[0] |= 0x10;
        ext[12..16].copy_from_slice(&[0xbe, 0xde, 0x00, 0x02]);
        assert_eq!(
            RtpPacket::parse(&ext),
            Err(RtpError::ExtensionBeyondPacket { available: 16 })
        );
        // X set, no room for the extension header at all.
        assert_eq!(
            RtpPacket::parse(&ext[..14]),
            Err(RtpError::ExtensionBeyondPacket { available: 14 })
        );
    }

    #[test]
    fn setters_rewrite_in_place_and_leave_the_rest_alone() {
        let mut bytes = FULL;
        let mut p = RtpPacketMut::parse(&mut bytes).unwrap();
        p.set_ssrc(0x0102_0304);
        p.set_sequence_number(0xfffe);
        p.set_timestamp(0x8000_0001);
        p.set_payload_type(101).unwrap();
        p.set_marker(true);
        assert_eq!(
            p.set_payload_type(128),
            Err(RtpError::InvalidPayloadType(128))
        );
        assert_eq!(p.payload(), &[1, 2, 3]);
        p.payload_mut()[0] = 9;
        assert_eq!(
            p.fields(),
            RtpHeaderFields {
                marker: true,
                payload_type: 101,
                sequence_number: 0xfffe,
                timestamp: 0x8000_0001,
                ssrc: 0x0102_0304
            }
        );
        let reparsed = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(reparsed.ssrc(), 0x0102_0304);
        assert_eq!(reparsed.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(reparsed.payload(), &[9, 2, 3]);
        assert_eq!(bytes[0], 0xb2, "V/P/X/CC untouched");
        let mut p = RtpPacketMut::parse(&mut bytes).unwrap();
        p.set_marker(false);
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 101);
    }

    #[test]
    fn written_header_matches_the_rfc_layout() {
        let mut buf = [0u8; 16];
        let fields = RtpHeaderFields {
            marker: true,
            payload_type: 0,
            sequence_number: 0x1234,
            timestamp: 0xdead_beef,
            ssrc: 0x1122_3344,
        };
        assert_eq!(write_header(&mut buf, &fields), Ok(12));
        buf[12..].copy_from_slice(&PCMU[12..]);
        assert_eq!(buf, PCMU);
        assert_eq!(RtpPacket::parse(&buf).unwrap().fields(), fields);
        assert_eq!(
            write_header(&mut buf[..11], &fields),
            Err(RtpError::BufferTooSmall {
                needed: 12,
                available: 11
            })
        );
        let bad = RtpHeaderFields {
            payload_type: 200,
            ..fields
        };
        assert_eq!(
            write_header(&mut buf, &bad),
            Err(RtpError::InvalidPayloadType(200))
        );
    }

    #[test]
    fn demultiplexes_rtp_rtcp_stun_and_dtls() {
        assert!(!is_rtcp(&PCMU));
        assert_eq!(classify(&PCMU), PacketKind::Rtp);
        // RTCP SR and RR: second byte 200/201.
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert_eq!(classify(&[0x80, 200, 0, 6]), PacketKind::Rtcp);
        // Range edges: 191 and 224 are RTP (PT 63/96 with marker), 192 and 223 are RTCP.
        assert!(!is_rtcp(&[0x80, 191]));
        assert!(is_rtcp(&[0x80, 192]));
        assert!(is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x40, 200]), "version 1 is not RTCP");
        assert!(!is_rtcp(&[0x80]));
        assert_eq!(classify(&[0x00, 0x01, 0x00, 0x00]), PacketKind::Stun);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
        assert_eq!(classify(&[100, 0]), PacketKind::Unknown);
    }
}
