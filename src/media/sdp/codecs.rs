//! Codec names, `a=rtpmap` values and the RFC 3551 static payload types.

use std::borrow::Cow;
use std::fmt;

/// One `a=rtpmap` value (`<pt> <encoding>/<clock rate>[/<channels>]`), or the static
/// RFC 3551 mapping of a payload type that has no `a=rtpmap` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtpMap {
    /// RTP payload type (0-127).
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`).
    pub encoding: String,
    /// RTP clock rate in Hz (8000 for G.722, per RFC 3551's historical quirk).
    pub clock_rate: u32,
    /// Channel count when given (`opus/48000/2`).
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Parses an `a=rtpmap` value; `None` if malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (pt, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
        let payload_type = parse_payload_type(pt)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = parts.next()?.trim().parse().ok()?;
        let channels = match parts.next() {
            Some(c) => Some(c.trim().parse().ok()?),
            None => None,
        };
        Some(Self {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }

    /// The static RFC 3551 mapping of `payload_type`, if it has one.
    pub fn from_static(payload_type: u8) -> Option<Self> {
        STATIC_PAYLOAD_TYPES
            .iter()
            .find(|s| s.0 == payload_type)
            .map(|&(pt, name, rate, channels)| Self {
                payload_type: pt,
                encoding: name.to_owned(),
                clock_rate: rate,
                channels,
            })
    }

    /// The name and clock rate, for comparing with a [`CodecName`].
    pub fn name(&self) -> CodecName {
        CodecName::new(self.encoding.clone(), self.clock_rate)
    }

    /// True for RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    /// True for RFC 3389 comfort noise (`CN`).
    pub fn is_comfort_noise(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("CN")
    }

    /// True for a codec that carries speech (not telephone-event or CN).
    pub fn is_speech(&self) -> bool {
        !self.is_telephone_event() && !self.is_comfort_noise()
    }
}

impl fmt::Display for RtpMap {
    /// Writes the `a=rtpmap` value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

/// A codec as (encoding name, RTP clock rate); names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodecName {
    /// Encoding name (`PCMU`, `telephone-event`).
    pub name: Cow<'static, str>,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
}

impl CodecName {
    /// G.711 mu-law.
    pub const PCMU: Self = Self::constant("PCMU", 8000);
    /// G.711 A-law.
    pub const PCMA: Self = Self::constant("PCMA", 8000);
    /// G.722 (RTP clock 8000 although it samples at 16 kHz).
    pub const G722: Self = Self::constant("G722", 8000);
    /// G.729.
    pub const G729: Self = Self::constant("G729", 8000);
    /// RFC 3389 comfort noise.
    pub const CN: Self = Self::constant("CN", 8000);
    /// RFC 4733 DTMF events at 8 kHz.
    pub const TELEPHONE_EVENT: Self = Self::constant("telephone-event", 8000);
    /// Opus (RFC 7587: always `opus/48000/2` in SDP).
    pub const OPUS: Self = Self::constant("opus", 48_000);

    const fn constant(name: &'static str, clock_rate: u32) -> Self {
        Self {
            name: Cow::Borrowed(name),
            clock_rate,
        }
    }

    /// A codec name from any string.
    pub fn new(name: impl Into<Cow<'static, str>>, clock_rate: u32) -> Self {
        Self {
            name: name.into(),
            clock_rate,
        }
    }

    /// True when `map` is this codec (name case-insensitive, same clock rate).
    pub fn matches(&self, map: &RtpMap) -> bool {
        self.clock_rate == map.clock_rate && self.name.eq_ignore_ascii_case(&map.encoding)
    }

    /// True for RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// True for RFC 3389 comfort noise (`CN`).
    pub fn is_comfort_noise(&self) -> bool {
        self.name.eq_ignore_ascii_case("CN")
    }
}

/// The RFC 3551 static payload type for a codec (`PCMA`/8000 -> 8), if it has one.
pub fn static_payload_type(codec: &CodecName) -> Option<u8> {
    STATIC_PAYLOAD_TYPES
        .iter()
        .find(|s| s.2 == codec.clock_rate && codec.name.eq_ignore_ascii_case(s.1))
        .map(|s| s.0)
}

/// Parses an RTP payload type (0-127).
pub(crate) fn parse_payload_type(text: &str) -> Option<u8> {
    text.parse::<u8>().ok().filter(|&pt| pt <= 127)
}

/// RFC 3551 tables 4 and 5: payload type, encoding name, clock rate, channels.
const STATIC_PAYLOAD_TYPES: &[(u8, &str, u32, Option<u16>)] = &[
    (0, "PCMU", 8000, None),
    (3, "GSM", 8000, None),
    (4, "G723", 8000, None),
    (5, "DVI4", 8000, None),
    (6, "DVI4", 16000, None),
    (7, "LPC", 8000, None),
    (8, "PCMA", 8000, None),
    (9, "G722", 8000, None),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, None),
    (12, "QCELP", 8000, None),
    (13, "CN", 8000, None),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, None),
    (16, "DVI4", 11025, None),
    (17, "DVI4", 22050, None),
    (18, "G729", 8000, None),
    (25, "CelB", 90000, None),
    (26, "JPEG", 90000, None),
    (28, "nv", 90000, None),
    (31, "H261", 90000, None),
    (32, "MPV", 90000, None),
    (33, "MP2T", 90000, None),
    (34, "H263", 90000, None),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtpmap_parses_name_rate_and_channels() {
        let opus = RtpMap::parse("111 opus/48000/2").unwrap();
        assert_eq!(opus.payload_type, 111);
        assert_eq!(opus.encoding, "opus");
        assert_eq!(opus.clock_rate, 48000);
        assert_eq!(opus.channels, Some(2));
        assert_eq!(opus.to_string(), "111 opus/48000/2");

        let te = RtpMap::parse("101  telephone-event/8000").unwrap();
        assert!(te.is_telephone_event());
        assert_eq!(te.channels, None);
        assert_eq!(te.to_string(), "101 telephone-event/8000");
    }

    #[test]
    fn malformed_rtpmaps_are_rejected() {
        for bad in [
            "",
            "0",
            "0 PCMU",
            "128 PCMU/8000",
            "x PCMU/8000",
            "0 /8000",
            "0 PCMU/fast",
            "0 PCMU/8000/two",
        ] {
            assert_eq!(RtpMap::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn static_payload_types_follow_rfc_3551() {
        let expect = [
            (0, "PCMU", 8000),
            (3, "GSM", 8000),
            (8, "PCMA", 8000),
            (9, "G722", 8000),
            (13, "CN", 8000),
            (18, "G729", 8000),
        ];
        for (pt, name, rate) in expect {
            let map = RtpMap::from_static(pt).unwrap();
            assert_eq!((map.encoding.as_str(), map.clock_rate), (name, rate));
            assert_eq!(static_payload_type(&CodecName::new(name, rate)), Some(pt));
        }
        assert_eq!(RtpMap::from_static(96), None);
        assert_eq!(RtpMap::from_static(2), None, "2 was G721, withdrawn");
        assert_eq!(static_payload_type(&CodecName::new("pcma", 8000)), Some(8));
        assert_eq!(static_payload_type(&CodecName::new("PCMA", 16000)), None);
        assert_eq!(static_payload_type(&CodecName::new("opus", 48000)), None);
    }

    #[test]
    fn codec_names_match_case_insensitively_and_by_rate() {
        let pcmu = RtpMap::parse("0 pcmu/8000").unwrap();
        assert!(CodecName::PCMU.matches(&pcmu));
        assert!(!CodecName::PCMA.matches(&pcmu));
        let wideband = RtpMap::parse("96 PCMU/16000").unwrap();
        assert!(!CodecName::PCMU.matches(&wideband));
    }
}
