//! RTCP (RFC 3550 §6): compound packets read in place, SSRCs rewritten in place for a
//! B2BUA, and minimal SR/RR + SDES(CNAME) (+ BYE) built into caller buffers.
//!
//! Every RTCP packet starts with the same 4 bytes, so unknown types are skipped by length:
//!
//! ```text
//! |V=2|P| count   |      PT       |    length (32-bit words - 1)  |
//! ```

use std::time::Duration;

use super::error::RtpError;
use super::header::RTP_VERSION;

/// Sender report.
pub const RTCP_SR: u8 = 200;
/// Receiver report.
pub const RTCP_RR: u8 = 201;
/// Source description.
pub const RTCP_SDES: u8 = 202;
/// Goodbye.
pub const RTCP_BYE: u8 = 203;
/// Application-defined.
pub const RTCP_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585), e.g. generic NACK.
pub const RTCP_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585), e.g. PLI.
pub const RTCP_PSFB: u8 = 206;
/// Extended reports (RFC 3611).
pub const RTCP_XR: u8 = 207;
/// SDES item type that ends a chunk's item list.
pub const SDES_END: u8 = 0;
/// SDES canonical name item type.
pub const SDES_CNAME: u8 = 1;
/// Common RTCP header length.
pub const RTCP_HEADER_LEN: usize = 4;
/// Length of the SR sender info (NTP, RTP timestamp, packet and octet counts).
pub const SENDER_INFO_LEN: usize = 20;
/// Length of one reception report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Largest value of the 5-bit count field.
pub const MAX_RTCP_COUNT: usize = 31;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

fn too_short(packet_type: u8) -> RtpError {
    RtpError::RtcpBodyTooShort { packet_type }
}

/// One RTCP packet inside a compound packet: common header fields and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacket<'a> {
    packet_type: u8,
    count: u8,
    body: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> RtcpPacket<'a> {
    /// The packet type (200 SR, 201 RR, ...).
    pub fn packet_type(&self) -> u8 {
        self.packet_type
    }

    /// The 5-bit count field (report count, source count or APP subtype).
    pub fn count(&self) -> u8 {
        self.count
    }

    /// The body after the 4-byte header, padding removed.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The whole packet, header and padding included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The typed view of this packet; fails if the body is too short for its count.
    pub fn view(&self) -> Result<RtcpView<'a>, RtpError> {
        Ok(match self.packet_type {
            RTCP_SR => RtcpView::SenderReport(SenderReport::parse(self)?),
            RTCP_RR => RtcpView::ReceiverReport(ReceiverReport::parse(self)?),
            RTCP_SDES => RtcpView::SourceDescription(SourceDescription {
                count: self.count,
                body: self.body,
            }),
            RTCP_BYE => RtcpView::Goodbye(Goodbye::parse(self)?),
            RTCP_APP => RtcpView::App(AppPacket::parse(self)?),
            _ => RtcpView::Other(*self),
        })
    }
}

/// The typed content of an RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpView<'a> {
    /// SR (200).
    SenderReport(SenderReport<'a>),
    /// RR (201).
    ReceiverReport(ReceiverReport<'a>),
    /// SDES (202).
    SourceDescription(SourceDescription<'a>),
    /// BYE (203).
    Goodbye(Goodbye<'a>),
    /// APP (204).
    App(AppPacket<'a>),
    /// Any other type (feedback, XR, unknown): skipped by length.
    Other(RtcpPacket<'a>),
}

/// Splits the first RTCP packet off a compound packet.
fn split_packet(bytes: &[u8]) -> Result<(RtcpPacket<'_>, &[u8]), RtpError> {
    let available = bytes.len();
    let head: &[u8; RTCP_HEADER_LEN] = bytes.first_chunk().ok_or(RtpError::Truncated {
        needed: RTCP_HEADER_LEN,
        available,
    })?;
    let version = head[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion(version));
    }
    let declared = (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1) * 4;
    let (packet, rest) =
        bytes
            .split_at_checked(declared)
            .ok_or(RtpError::RtcpLengthBeyondPacket {
                declared,
                available,
            })?;
    let mut body = packet.get(RTCP_HEADER_LEN..).unwrap_or_default();
    if head[0] & 0x20 != 0 {
        let padding = body.last().copied().unwrap_or(0);
        if padding == 0 || usize::from(padding) > body.len() {
            return Err(RtpError::BadPadding {
                padding,
                available: body.len(),
            });
        }
        body = body
            .get(..body.len() - usize::from(padding))
            .unwrap_or_default();
    }
    Ok((
        RtcpPacket {
            packet_type: head[1],
            count: head[0] & 0x1f,
            body,
            bytes: packet,
        },
        rest,
    ))
}

/// Iterator over the packets of a compound RTCP packet; stops after the first error.
#[derive(Debug, Clone)]
pub struct RtcpPackets<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for RtcpPackets<'a> {
    type Item = Result<RtcpPacket<'a>, RtpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match split_packet(self.rest) {
            Ok((packet, rest)) => {
                self.rest = rest;
                Some(Ok(packet))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the packets of a compound RTCP packet in place.
pub fn packets(compound: &[u8]) -> RtcpPackets<'_> {
    RtcpPackets {
        rest: compound,
        failed: false,
    }
}

/// Checks a whole compound packet down to SDES items; returns the number of packets.
///
/// Lenient on order (RFC 5506 reduced-size RTCP need not start with SR/RR), strict on lengths.
pub fn validate_compound(compound: &[u8]) -> Result<usize, RtpError> {
    let mut count = 0;
    for packet in packets(compound) {
        let packet = packet?;
        match packet.view()? {
            RtcpView::SourceDescription(sdes) => {
                for chunk in sdes.chunks() {
                    chunk?;
                }
            }
            RtcpView::Other(other) => {
                // Feedback carries sender and media SSRC, XR the sender SSRC: both get rewritten.
                let needed = match other.packet_type {
                    RTCP_RTPFB | RTCP_PSFB => 8,
                    RTCP_XR => 4,
                    _ => 0,
                };
                if other.body.len() < needed {
                    return Err(too_short(other.packet_type));
                }
            }
            _ => {}
        }
        count += 1;
    }
    if count == 0 {
        return Err(RtpError::EmptyCompound);
    }
    Ok(count)
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP wall-clock time of the report (see [`ntp_from_unix`]).
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to the same instant.
    pub rtp_timestamp: u32,
    /// RTP packets sent since the start.
    pub packet_count: u32,
    /// Payload octets sent since the start.
    pub octet_count: u32,
}

impl SenderInfo {
    fn from_bytes(b: &[u8; SENDER_INFO_LEN]) -> Self {
        Self {
            ntp_timestamp: u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            rtp_timestamp: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            packet_count: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            octet_count: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
        }
    }

    fn to_bytes(self) -> [u8; SENDER_INFO_LEN] {
        let mut b = [0u8; SENDER_INFO_LEN];
        b[0..8].copy_from_slice(&self.ntp_timestamp.to_be_bytes());
        b[8..12].copy_from_slice(&self.rtp_timestamp.to_be_bytes());
        b[12..16].copy_from_slice(&self.packet_count.to_be_bytes());
        b[16..20].copy_from_slice(&self.octet_count.to_be_bytes());
        b
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire; duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (0 if none).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s (0 if none).
    pub delay_since_last_sr: u32,
}

/// Largest cumulative-lost value the 24-bit signed field carries.
pub const MAX_CUMULATIVE_LOST: i32 = 0x7f_ffff;
/// Smallest cumulative-lost value the 24-bit signed field carries.
pub const MIN_CUMULATIVE_LOST: i32 = -0x80_0000;

impl ReportBlock {
    fn from_bytes(b: &[u8; REPORT_BLOCK_LEN]) -> Self {
        // Sign-extend the 24-bit field by shifting it into the top of an i32 and back.
        let lost_raw = u32::from_be_bytes([b[5], b[6], b[7], 0]);
        Self {
            ssrc: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            fraction_lost: b[4],
            cumulative_lost: (lost_raw as i32) >> 8,
            extended_highest_seq: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            jitter: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            last_sr: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            delay_since_last_sr: u32::from_be_bytes([b[20], b[21], b[22], b[23]]),
        }
    }

    /// The wire form; cumulative lost is clamped to the 24-bit signed range.
    pub fn to_bytes(&self) -> [u8; REPORT_BLOCK_LEN] {
        let lost = self
            .cumulative_lost
            .clamp(MIN_CUMULATIVE_LOST, MAX_CUMULATIVE_LOST)
            .to_be_bytes();
        let mut b = [0u8; REPORT_BLOCK_LEN];
        b[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        b[4] = self.fraction_lost;
        b[5..8].copy_from_slice(&lost[1..4]);
        b[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        b[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        b[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        b[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
        b
    }
}

/// Iterator over report blocks.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.rest.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        self.rest = rest;
        Some(ReportBlock::from_bytes(block))
    }
}

/// Takes `count` report blocks from the front of `bytes`.
fn report_blocks(bytes: &[u8], count: u8, packet_type: u8) -> Result<&[u8], RtpError> {
    bytes
        .get(..usize::from(count) * REPORT_BLOCK_LEN)
        .ok_or(too_short(packet_type))
}

/// A sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// Sender info.
    pub info: SenderInfo,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    fn parse(packet: &RtcpPacket<'a>) -> Result<Self, RtpError> {
        let (ssrc, rest) = packet
            .body
            .split_first_chunk::<4>()
            .ok_or(too_short(RTCP_SR))?;
        let (info, rest) = rest
            .split_first_chunk::<SENDER_INFO_LEN>()
            .ok_or(too_short(RTCP_SR))?;
        Ok(Self {
            ssrc: u32::from_be_bytes(*ssrc),
            info: SenderInfo::from_bytes(info),
            blocks: report_blocks(rest, packet.count, RTCP_SR)?,
        })
    }

    /// The reception report blocks (what this sender receives from others).
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { rest: self.blocks }
    }
}

/// A receiver report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// The reporter's SSRC.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    fn parse(packet: &RtcpPacket<'a>) -> Result<Self, RtpError> {
        let (ssrc, rest) = packet
            .body
            .split_first_chunk::<4>()
            .ok_or(too_short(RTCP_RR))?;
        Ok(Self {
            ssrc: u32::from_be_bytes(*ssrc),
            blocks: report_blocks(rest, packet.count, RTCP_RR)?,
        })
    }

    /// The reception report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { rest: self.blocks }
    }
}

/// A source description packet; its chunks are validated while iterating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDescription<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> SourceDescription<'a> {
    /// Iterates the SC chunks; yields an error (and stops) on a malformed chunk.
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            rest: self.body,
            remaining: self.count,
        }
    }
}

/// One SDES chunk: an SSRC and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items (type, value) of this chunk, up to the terminating null item.
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems { rest: self.items }
    }

    /// The CNAME item's value, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items()
            .find(|item| item.kind == SDES_CNAME)
            .map(|item| item.value)
    }
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (1 CNAME, 2 NAME, ...).
    pub kind: u8,
    /// Item value (UTF-8 text by RFC, not checked here).
    pub value: &'a [u8],
}

/// Iterator over the items of a validated SDES chunk.
#[derive(Debug, Clone)]
pub struct SdesItems<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        let (&[kind, len], rest) = self.rest.split_first_chunk::<2>()?;
        let (value, rest) = rest.split_at_checked(usize::from(len))?;
        self.rest = rest;
        Some(SdesItem { kind, value })
    }
}

/// Splits one SDES chunk off `bytes`; returns it and the chunk length including null padding.
fn split_sdes_chunk(bytes: &[u8]) -> Result<(SdesChunk<'_>, usize), RtpError> {
    let (ssrc, items) = bytes.split_first_chunk::<4>().ok_or(too_short(RTCP_SDES))?;
    let mut pos = 0;
    loop {
        match items.get(pos) {
            None => return Err(too_short(RTCP_SDES)),
            Some(&SDES_END) => break,
            Some(_) => {
                let len = items.get(pos + 1).ok_or(too_short(RTCP_SDES))?;
                pos += 2 + usize::from(*len);
            }
        }
    }
    // The item list ends with at least one null octet, padded to a 32-bit boundary.
    let chunk_len = (4 + pos + 1).next_multiple_of(4);
    if chunk_len > bytes.len() {
        return Err(too_short(RTCP_SDES));
    }
    let chunk = SdesChunk {
        ssrc: u32::from_be_bytes(*ssrc),
        items: items.get(..pos).unwrap_or_default(),
    };
    Ok((chunk, chunk_len))
}

/// Iterator over the chunks of an SDES packet.
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    rest: &'a [u8],
    remaining: u8,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = Result<SdesChunk<'a>, RtpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match split_sdes_chunk(self.rest) {
            Ok((chunk, len)) => {
                self.remaining -= 1;
                self.rest = self.rest.get(len..).unwrap_or_default();
                Some(Ok(chunk))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}

/// A BYE packet: the sources leaving and an optional reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goodbye<'a> {
    ssrcs: &'a [u8],
    /// Reason for leaving, if given.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Goodbye<'a> {
    fn parse(packet: &RtcpPacket<'a>) -> Result<Self, RtpError> {
        let (ssrcs, rest) = packet
            .body
            .split_at_checked(usize::from(packet.count) * 4)
            .ok_or(too_short(RTCP_BYE))?;
        let reason = match rest.split_first() {
            None => None,
            Some((len, text)) => Some(text.get(..usize::from(*len)).ok_or(too_short(RTCP_BYE))?),
        };
        Ok(Self { ssrcs, reason })
    }

    /// The SSRCs leaving.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.ssrcs
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// An APP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppPacket<'a> {
    /// The 5-bit subtype.
    pub subtype: u8,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// Four ASCII characters naming the application.
    pub name: [u8; 4],
    /// Application data.
    pub data: &'a [u8],
}

impl<'a> AppPacket<'a> {
    fn parse(packet: &RtcpPacket<'a>) -> Result<Self, RtpError> {
        let (head, data) = packet
            .body
            .split_first_chunk::<8>()
            .ok_or(too_short(RTCP_APP))?;
        Ok(Self {
            subtype: packet.count,
            ssrc: u32::from_be_bytes([head[0], head[1], head[2], head[3]]),
            name: [head[4], head[5], head[6], head[7]],
            data,
        })
    }
}

/// Which side an SSRC in RTCP belongs to, so a B2BUA can map each through the right table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsrcRole {
    /// A source the reporter owns: SR/RR/APP/XR/feedback sender, SDES chunk, BYE.
    Sender,
    /// A source the reporter receives: report block SSRC, feedback media SSRC.
    ReportedSource,
}

fn map_u32_at<F: FnMut(SsrcRole, u32) -> u32>(
    bytes: &mut [u8],
    at: usize,
    role: SsrcRole,
    map: &mut F,
) {
    if let Some(field) = bytes.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<4>) {
        *field = map(role, u32::from_be_bytes(*field)).to_be_bytes();
    }
}

/// Rewrites every SSRC in a compound RTCP packet in place through `map`.
///
/// Covers SR/RR sender and report blocks, SDES chunks, BYE sources, APP, XR sender and
/// feedback sender/media SSRCs; SSRCs inside feedback FCI or XR blocks are left alone. The
/// whole compound is validated first, so on error nothing has been changed.
pub fn rewrite_ssrcs<F: FnMut(SsrcRole, u32) -> u32>(
    compound: &mut [u8],
    mut map: F,
) -> Result<(), RtpError> {
    validate_compound(compound)?;
    let mut pos = 0;
    while pos < compound.len() {
        let (packet_type, count, body_len, total) = {
            let (packet, _) = split_packet(compound.get(pos..).unwrap_or_default())?;
            (
                packet.packet_type,
                usize::from(packet.count),
                packet.body.len(),
                packet.bytes.len(),
            )
        };
        let body = pos + RTCP_HEADER_LEN;
        match packet_type {
            RTCP_SR | RTCP_RR => {
                map_u32_at(compound, body, SsrcRole::Sender, &mut map);
                let info_len = if packet_type == RTCP_SR {
                    SENDER_INFO_LEN
                } else {
                    0
                };
                let first_block = body + 4 + info_len;
                for i in 0..count {
                    let at = first_block + i * REPORT_BLOCK_LEN;
                    map_u32_at(compound, at, SsrcRole::ReportedSource, &mut map);
                }
            }
            RTCP_SDES => {
                let mut chunk = body;
                for _ in 0..count {
                    let chunk_bytes = compound.get(chunk..body + body_len).unwrap_or_default();
                    let (_, len) = split_sdes_chunk(chunk_bytes)?;
                    map_u32_at(compound, chunk, SsrcRole::Sender, &mut map);
                    chunk += len;
                }
            }
            RTCP_BYE => {
                for i in 0..count {
                    map_u32_at(compound, body + 4 * i, SsrcRole::Sender, &mut map);
                }
            }
            RTCP_APP | RTCP_XR => map_u32_at(compound, body, SsrcRole::Sender, &mut map),
            RTCP_RTPFB | RTCP_PSFB => {
                map_u32_at(compound, body, SsrcRole::Sender, &mut map);
                map_u32_at(compound, body + 4, SsrcRole::ReportedSource, &mut map);
            }
            _ => {}
        }
        pos += total;
    }
    Ok(())
}

/// Converts a time since the Unix epoch to a 64-bit NTP timestamp (seconds wrap in 2036).
pub fn ntp_from_unix(since_unix_epoch: Duration) -> u64 {
    let secs = since_unix_epoch
        .as_secs()
        .wrapping_add(NTP_UNIX_OFFSET_SECS)
        & 0xffff_ffff;
    let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp: the LSR field of a report block.
pub fn ntp_middle32(ntp: u64) -> u32 {
    ((ntp >> 16) & 0xffff_ffff) as u32
}

/// A delay in the DLSR unit of 1/65536 s, saturating.
pub fn delay_since_last_sr(delay: Duration) -> u32 {
    let units = delay.as_micros() * 65_536 / 1_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// Appends bytes to a caller buffer whose size was checked up front.
struct Cursor<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Cursor<'b> {
    fn new(buf: &'b mut [u8], needed: usize) -> Result<Self, RtpError> {
        if buf.len() < needed {
            return Err(RtpError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        Ok(Self { buf, pos: 0 })
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.pos += bytes.len();
    }

    fn put_header(&mut self, count: usize, packet_type: u8, total_len: usize) {
        let words = u16::try_from(total_len / 4 - 1).unwrap_or(u16::MAX);
        let [hi, lo] = words.to_be_bytes();
        let first = (RTP_VERSION << 6) | (count as u8 & 0x1f);
        self.put(&[first, packet_type, hi, lo]);
    }

    fn put_zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.put(&[0]);
        }
    }
}

fn check_count(n: usize) -> Result<(), RtpError> {
    if n > MAX_RTCP_COUNT {
        return Err(RtpError::TooManyItems(n));
    }
    Ok(())
}

fn check_text(text: &[u8]) -> Result<(), RtpError> {
    if text.len() > 255 {
        return Err(RtpError::TextTooLong(text.len()));
    }
    Ok(())
}

fn report_len(sender_info: bool, blocks: usize) -> usize {
    RTCP_HEADER_LEN + 4 + if sender_info { SENDER_INFO_LEN } else { 0 } + blocks * REPORT_BLOCK_LEN
}

fn cname_len(cname: &[u8]) -> usize {
    RTCP_HEADER_LEN + (4 + 2 + cname.len() + 1).next_multiple_of(4)
}

/// Writes an SR with up to 31 report blocks; returns its length.
pub fn write_sender_report(
    buf: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, RtpError> {
    write_report(buf, ssrc, Some(info), blocks)
}

/// Writes an RR with up to 31 report blocks; returns its length.
pub fn write_receiver_report(
    buf: &mut [u8],
    ssrc: u32,
    blocks: &[ReportBlock],
) -> Result<usize, RtpError> {
    write_report(buf, ssrc, None, blocks)
}

fn write_report(
    buf: &mut [u8],
    ssrc: u32,
    info: Option<&SenderInfo>,
    blocks: &[ReportBlock],
) -> Result<usize, RtpError> {
    check_count(blocks.len())?;
    let len = report_len(info.is_some(), blocks.len());
    let mut out = Cursor::new(buf, len)?;
    let packet_type = if info.is_some() { RTCP_SR } else { RTCP_RR };
    out.put_header(blocks.len(), packet_type, len);
    out.put(&ssrc.to_be_bytes());
    if let Some(info) = info {
        out.put(&info.to_bytes());
    }
    for block in blocks {
        out.put(&block.to_bytes());
    }
    Ok(len)
}

/// Writes an SDES packet with one chunk carrying only a CNAME; returns its length.
pub fn write_sdes_cname(buf: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, RtpError> {
    check_text(cname)?;
    let len = cname_len(cname);
    let mut out = Cursor::new(buf, len)?;
    out.put_header(1, RTCP_SDES, len);
    out.put(&ssrc.to_be_bytes());
    out.put(&[SDES_CNAME, cname.len() as u8]);
    out.put(cname);
    // Null item plus padding to the 32-bit boundary.
    out.put_zeros(len - out.pos);
    Ok(len)
}

/// Writes a BYE for up to 31 sources with an optional reason; returns its length.
pub fn write_bye(buf: &mut [u8], ssrcs: &[u32], reason: Option<&[u8]>) -> Result<usize, RtpError> {
    check_count(ssrcs.len())?;
    let reason_len = match reason {
        Some(text) => {
            check_text(text)?;
            (1 + text.len()).next_multiple_of(4)
        }
        None => 0,
    };
    let len = RTCP_HEADER_LEN + 4 * ssrcs.len() + reason_len;
    let mut out = Cursor::new(buf, len)?;
    out.put_header(ssrcs.len(), RTCP_BYE, len);
    for ssrc in ssrcs {
        out.put(&ssrc.to_be_bytes());
    }
    if let Some(text) = reason {
        out.put(&[text.len() as u8]);
        out.put(text);
        out.put_zeros(len - out.pos);
    }
    Ok(len)
}

/// Writes the minimal compound packet for a stream we originate: SR (if `sender_info`,
/// else RR) followed by SDES(CNAME); returns the total length.
pub fn write_report_compound(
    buf: &mut [u8],
    ssrc: u32,
    sender_info: Option<&SenderInfo>,
    blocks: &[ReportBlock],
    cname: &[u8],
) -> Result<usize, RtpError> {
    check_count(blocks.len())?;
    check_text(cname)?;
    let needed = report_len(sender_info.is_some(), blocks.len()) + cname_len(cname);
    if buf.len() < needed {
        return Err(RtpError::BufferTooSmall {
            needed,
            available: buf.len(),
        });
    }
    let report = write_report(buf, ssrc, sender_info, blocks)?;
    let sdes = write_sdes_cname(buf.get_mut(report..).unwrap_or_default(), ssrc, cname)?;
    Ok(report + sdes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SR with one report block + SDES(CNAME "user@host") + BYE, laid out by hand the way
    /// Wireshark dissects it.
    #[rustfmt::skip]
    pub(crate) const COMPOUND: [u8; 80] = [
        // SR: V=2 RC=1 PT=200 length=12 (52 bytes)
        0x81, 0xc8, 0x00, 0x0c,
        0x12, 0x34, 0x56, 0x78, // sender SSRC
        0xe1, 0x2f, 0x3b, 0x24, 0x80, 0x00, 0x00, 0x00, // NTP msw, lsw (.5 s)
        0x00, 0x01, 0x5f, 0x90, // RTP timestamp 90000
        0x00, 0x00, 0x00, 0x64, // packet count 100
        0x00, 0x00, 0x3e, 0x80, // octet count 16000
        // report block
        0xde, 0xad, 0xbe, 0xef, // source SSRC
        0x40, 0x00, 0x00, 0x05, // fraction lost 64/256, cumulative lost 5
        0x00, 0x01, 0x00, 0x10, // extended highest seq: 1 cycle, seq 16
        0x00, 0x00, 0x00, 0x20, // jitter 32
        0x3b, 0x24, 0x80, 0x00, // LSR
        0x00, 0x01, 0x00, 0x00, // DLSR 1 s
        // SDES: V=2 SC=1 PT=202 length=4 (20 bytes)
        0x81, 0xca, 0x00, 0x04,
        0x12, 0x34, 0x56, 0x78,
        0x01, 0x09, b'u', b's', b'e', b'r', b'@', b'h', b'o', b's', b't', 0x00,
        // BYE: V=2 SC=1 PT=203 length=1 (8 bytes)
        0x81, 0xcb, 0x00, 0x01,
        0x12, 0x34, 0x56, 0x78,
    ];

    fn expected_block() -> ReportBlock {
        ReportBlock {
            ssrc: 0xdead_beef,
            fraction_lost: 0x40,
            cumulative_lost: 5,
            extended_highest_seq: 0x0001_0010,
            jitter: 32,
            last_sr: 0x3b24_8000,
            delay_since_last_sr: 0x0001_0000,
        }
    }

    fn expected_info() -> SenderInfo {
        SenderInfo {
            ntp_timestamp: 0xe12f_3b24_8000_0000,
            rtp_timestamp: 90_000,
            packet_count: 100,
            octet_count: 16_000,
        }
    }

    #[test]
    fn reads_every_packet_of_a_compound() {
        assert_eq!(validate_compound(&COMPOUND), Ok(3));
        let mut it = packets(&COMPOUND);
        let RtcpView::SenderReport(sr) = it.next().unwrap().unwrap().view().unwrap() else {
            panic!("expected SR");
        };
        assert_eq!(sr.ssrc, 0x1234_5678);
        assert_eq!(sr.info, expected_info());
        assert_eq!(
            sr.report_blocks().collect::<Vec<_>>(),
            vec![expected_block()]
        );
        let RtcpView::SourceDescription(sdes) = it.next().unwrap().unwrap().view().unwrap() else {
            panic!("expected SDES");
        };
        let chunks: Vec<_> = sdes.chunks().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].ssrc, 0x1234_5678);
        assert_eq!(chunks[0].cname(), Some(&b"user@host"[..]));
        let RtcpView::Goodbye(bye) = it.next().unwrap().unwrap().view().unwrap() else {
            panic!("expected BYE");
        };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![0x1234_5678]);
        assert_eq!(bye.reason, None);
        assert!(it.next().is_none());
    }

    #[test]
    fn negative_cumulative_lost_is_sign_extended() {
        let mut bytes = [0u8; REPORT_BLOCK_LEN];
        bytes[5..8].copy_from_slice(&[0xff, 0xff, 0xfe]);
        let block = ReportBlock::from_bytes(&bytes);
        assert_eq!(block.cumulative_lost, -2);
        assert_eq!(block.to_bytes(), bytes);
        let clamped = ReportBlock {
            cumulative_lost: 50_000_000,
            ..block
        };
        assert_eq!(
            ReportBlock::from_bytes(&clamped.to_bytes()).cumulative_lost,
            MAX_CUMULATIVE_LOST
        );
    }

    #[test]
    fn unknown_types_and_app_are_skipped_or_read_by_length() {
        #[rustfmt::skip]
        let bytes = [
            // RR, no blocks
            0x80, 0xc9, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,
            // unknown type 210 with two body words
            0x80, 0xd2, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8,
            // APP subtype 3, name "TEST", 4 data bytes
            0x83, 0xcc, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, b'T', b'E', b'S', b'T', 9, 9, 9, 9,
        ];
        let views: Vec<_> = packets(&bytes)
            .map(|p| p.unwrap().view().unwrap())
            .collect();
        assert!(
            matches!(views[0], RtcpView::ReceiverReport(rr) if rr.ssrc == 7 && rr.report_blocks().count() == 0)
        );
        assert!(
            matches!(views[1], RtcpView::Other(p) if p.packet_type() == 210 && p.body() == [1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(
            views[2],
            RtcpView::App(AppPacket {
                subtype: 3,
                ssrc: 7,
                name: *b"TEST",
                data: &[9, 9, 9, 9]
            })
        );
    }

    #[test]
    fn rewrites_ssrcs_by_role() {
        let mut bytes = COMPOUND;
        rewrite_ssrcs(&mut bytes, |role, ssrc| match (role, ssrc) {
            (SsrcRole::Sender, 0x1234_5678) => 0xaaaa_aaaa,
            (SsrcRole::ReportedSource, 0xdead_beef) => 0xbbbb_bbbb,
            _ => panic!("unexpected {role:?} {ssrc:#x}"),
        })
        .unwrap();
        let mut expected = COMPOUND;
        for at in [4, 56, 76] {
            expected[at..at + 4].copy_from_slice(&[0xaa; 4]);
        }
        expected[28..32].copy_from_slice(&[0xbb; 4]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn rewrites_feedback_and_multi_chunk_sdes() {
        #[rustfmt::skip]
        let mut bytes = [
            // RR with no blocks
            0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1,
            // SDES with two chunks: CNAME "ab" (12-byte chunk), then no items (8-byte chunk)
            0x82, 0xca, 0x00, 0x05, 0, 0, 0, 1, 0x01, 0x02, b'a', b'b', 0, 0, 0, 0,
            0, 0, 0, 2, 0, 0, 0, 0,
            // PLI (PSFB FMT 1): sender 1, media 9
            0x81, 0xce, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 9,
            // BYE for two sources with reason "x"
            0x82, 0xcb, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 1, b'x', 0, 0,
        ];
        let RtcpView::Goodbye(bye) = packets(&bytes).nth(3).unwrap().unwrap().view().unwrap()
        else {
            panic!("expected BYE");
        };
        assert_eq!(bye.reason, Some(&b"x"[..]));
        rewrite_ssrcs(&mut bytes, |role, ssrc| match role {
            SsrcRole::Sender => ssrc + 100,
            SsrcRole::ReportedSource => ssrc + 200,
        })
        .unwrap();
        assert_eq!(&bytes[4..8], &[0, 0, 0, 101]);
        assert_eq!(&bytes[12..16], &[0, 0, 0, 101]);
        assert_eq!(&bytes[24..28], &[0, 0, 0, 102]);
        assert_eq!(&bytes[36..40], &[0, 0, 0, 101]);
        assert_eq!(&bytes[40..44], &[0, 0, 0, 209]);
        assert_eq!(&bytes[48..52], &[0, 0, 0, 101]);
        assert_eq!(&bytes[52..56], &[0, 0, 0, 102]);
        assert_eq!(&bytes[56..58], &[1, b'x']);
    }

    #[test]
    fn malformed_compounds_are_errors_and_left_untouched() {
        let untouched = |bytes: &mut [u8], expected: RtpError| {
            let before = bytes.to_vec();
            assert_eq!(rewrite_ssrcs(bytes, |_, s| !s), Err(expected));
            assert_eq!(bytes, &before[..], "nothing rewritten on error");
        };
        // Truncated in the middle of the BYE: the length field points past the end.
        let mut truncated = COMPOUND;
        untouched(
            &mut truncated[..78],
            RtpError::RtcpLengthBeyondPacket {
                declared: 8,
                available: 6,
            },
        );
        untouched(
            &mut truncated[..74],
            RtpError::Truncated {
                needed: 4,
                available: 2,
            },
        );
        let mut bad_version = COMPOUND;
        bad_version[72] = 0x41;
        untouched(&mut bad_version, RtpError::BadVersion(1));
        // RC=2 but only one block fits.
        let mut rc = COMPOUND;
        rc[0] = 0x82;
        untouched(
            &mut rc,
            RtpError::RtcpBodyTooShort {
                packet_type: RTCP_SR,
            },
        );
        // SDES item length runs past the chunk (no null terminator left).
        let mut sdes = COMPOUND;
        sdes[61] = 10;
        untouched(
            &mut sdes,
            RtpError::RtcpBodyTooShort {
                packet_type: RTCP_SDES,
            },
        );
        // BYE claims 2 sources.
        let mut bye = COMPOUND;
        bye[72] = 0x82;
        untouched(
            &mut bye,
            RtpError::RtcpBodyTooShort {
                packet_type: RTCP_BYE,
            },
        );
        // Padding bit on the BYE whose last byte (0x78) exceeds the body.
        let mut pad = COMPOUND;
        pad[72] = 0xa1;
        untouched(
            &mut pad,
            RtpError::BadPadding {
                padding: 0x78,
                available: 4,
            },
        );
        untouched(&mut [], RtpError::EmptyCompound);
        // PLI with only a sender SSRC.
        untouched(
            &mut [0x81, 0xce, 0x00, 0x01, 0, 0, 0, 1],
            RtpError::RtcpBodyTooShort {
                packet_type: RTCP_PSFB,
            },
        );
    }

    #[test]
    fn builds_the_same_bytes_it_reads() {
        let mut buf = [0u8; 128];
        let len = write_report_compound(
            &mut buf,
            0x1234_5678,
            Some(&expected_info()),
            &[expected_block()],
            b"user@host",
        )
        .unwrap();
        assert_eq!(&buf[..len], &COMPOUND[..72]);
        let bye = write_bye(&mut buf[len..], &[0x1234_5678], None).unwrap();
        assert_eq!(&buf[..len + bye], &COMPOUND[..]);
        assert_eq!(
            write_report_compound(
                &mut buf[..71],
                0x1234_5678,
                Some(&expected_info()),
                &[expected_block()],
                b"user@host"
            ),
            Err(RtpError::BufferTooSmall {
                needed: 72,
                available: 71
            })
        );
    }

    #[test]
    fn builds_rr_sdes_with_cname_padding_and_bye_reason() {
        let mut buf = [0u8; 64];
        // RR without blocks (8) + SDES with a 4-byte CNAME: 4+2+4+1 -> 12-byte chunk (16).
        let len = write_report_compound(&mut buf, 42, None, &[], b"abcd").unwrap();
        assert_eq!(len, 24);
        #[rustfmt::skip]
        let expected = [
            0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 42,
            0x81, 0xca, 0x00, 0x03, 0, 0, 0, 42, 0x01, 0x04, b'a', b'b', b'c', b'd', 0, 0,
        ];
        assert_eq!(&buf[..len], &expected);
        assert_eq!(validate_compound(&buf[..len]), Ok(2));
        let len = write_bye(&mut buf, &[1, 2], Some(b"bye")).unwrap();
        assert_eq!(
            &buf[..len],
            &[0x82, 0xcb, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 3, b'b', b'y', b'e']
        );
        assert_eq!(
            write_receiver_report(&mut buf, 1, &[ReportBlock::default(); 32]),
            Err(RtpError::TooManyItems(32))
        );
        assert_eq!(
            write_sdes_cname(&mut buf, 1, &[b'x'; 256]),
            Err(RtpError::TextTooLong(256))
        );
        assert_eq!(
            write_sender_report(&mut buf, 1, &SenderInfo::default(), &[]),
            Ok(28)
        );
    }

    #[test]
    fn ntp_conversions() {
        // 2024-01-01T00:00:00.5Z: Unix 1_704_067_200 s -> NTP seconds 3_913_056_000.
        let ntp = ntp_from_unix(Duration::from_millis(1_704_067_200_500));
        assert_eq!(ntp >> 32, 3_913_056_000);
        assert_eq!(ntp & 0xffff_ffff, 0x8000_0000);
        assert_eq!(ntp_middle32(0xe12f_3b24_8000_0000), 0x3b24_8000);
        assert_eq!(
            delay_since_last_sr(Duration::from_millis(1500)),
            0x0001_8000
        );
        assert_eq!(delay_since_last_sr(Duration::from_secs(1 << 20)), u32::MAX);
    }
}
