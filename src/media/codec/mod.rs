//! Audio codecs: identities for SDP negotiation, and conversion between payloads and
//! 16-bit linear PCM for the relay, the mixer and the prompt player.
//!
//! Only G.711 (PCMU, PCMA) is converted today. G.722 and Opus are known by name so SDP can
//! recognise and pass them through unchanged; converting them needs per-stream state, which
//! is what [`StreamDecoder`] / [`StreamEncoder`] are for. Adding one means: a module here
//! with a state type implementing those traits, and arms in [`Codec::is_convertible`],
//! [`decode_to_linear`] / [`encode_from_linear`] (or a stateful path in the caller).
//!
//! All conversions write into caller buffers and never allocate.

pub mod g711;

use std::fmt;

/// Frames per second for the usual 20 ms packetisation.
const FRAMES_PER_SECOND_20MS: u32 = 50;

/// An audio codec as named in SDP (`a=rtpmap`) or by a static RTP payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 mu-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722 wideband ADPCM, static payload type 9 (not converted yet: relay only).
    G722,
    /// Opus, dynamic payload type (not converted yet: relay only).
    Opus,
}

impl Codec {
    /// Every codec known by name, in the order we prefer to offer them.
    pub const ALL: [Codec; 4] = [Codec::Pcma, Codec::Pcmu, Codec::G722, Codec::Opus];

    /// The static RTP payload type (RFC 3551), `None` for dynamically assigned codecs.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }

    /// The codec a static RTP payload type stands for, when it is one we know.
    pub fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        }
    }

    /// The RTP timestamp clock rate (G.722 says 8000 although it samples at 16 kHz, RFC 3551).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8000,
            Codec::Opus => 48000,
        }
    }

    /// The audio sample rate of the decoded signal, in Hz.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::G722 => 16000,
            Codec::Opus => 48000,
        }
    }

    /// Decoded samples in one 20 ms frame.
    pub fn samples_per_20ms(self) -> usize {
        // At most 960: the cast cannot truncate.
        (self.sample_rate() / FRAMES_PER_SECOND_20MS) as usize
    }

    /// RTP timestamp increment for one 20 ms frame.
    pub fn rtp_ticks_per_20ms(self) -> u32 {
        self.rtp_clock_rate() / FRAMES_PER_SECOND_20MS
    }

    /// Payload bytes of one 20 ms frame, `None` when the bit rate varies (Opus).
    pub fn bytes_per_20ms(self) -> Option<usize> {
        match self {
            // All three run at 64 kbit/s.
            Codec::Pcmu | Codec::Pcma | Codec::G722 => Some(160),
            Codec::Opus => None,
        }
    }

    /// The encoding name used in `a=rtpmap` (RFC 3551 / RFC 7587 spelling).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// The channel count written in `a=rtpmap`, when one must be written (Opus: always 2).
    pub fn rtpmap_channels(self) -> Option<u8> {
        match self {
            Codec::Opus => Some(2),
            Codec::Pcmu | Codec::Pcma | Codec::G722 => None,
        }
    }

    /// The codec for an `a=rtpmap` encoding name and clock rate (name case-insensitive).
    pub fn from_rtpmap(name: &str, clock_rate: u32) -> Option<Codec> {
        Self::ALL.into_iter().find(|codec| {
            codec.encoding_name().eq_ignore_ascii_case(name) && codec.rtp_clock_rate() == clock_rate
        })
    }

    /// Whether [`decode_to_linear`], [`encode_from_linear`] and [`transcode`] handle it.
    pub fn is_convertible(self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma)
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// Why a payload could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The codec has no stateless converter here (G.722, Opus).
    #[error("codec {0} cannot be converted here")]
    Unsupported(Codec),
    /// The caller's output buffer cannot hold the result.
    #[error("output buffer too small: need {needed}, have {available}")]
    OutputTooSmall {
        /// Elements the conversion needs.
        needed: usize,
        /// Elements the buffer has.
        available: usize,
    },
}

fn ensure_room(needed: usize, available: usize) -> Result<(), CodecError> {
    if available < needed {
        Err(CodecError::OutputTooSmall { needed, available })
    } else {
        Ok(())
    }
}

/// Converts one payload from `from` to `to` into `dst`; returns the bytes written.
///
/// Equal codecs are copied unchanged (any codec, even ones we cannot decode). PCMU <-> PCMA
/// uses the G.711 direct tables, never linear.
pub fn transcode(from: Codec, to: Codec, src: &[u8], dst: &mut [u8]) -> Result<usize, CodecError> {
    let available = dst.len();
    let out = dst.get_mut(..src.len()).ok_or(CodecError::OutputTooSmall {
        needed: src.len(),
        available,
    })?;
    match (from, to) {
        _ if from == to => out.copy_from_slice(src),
        (Codec::Pcmu, Codec::Pcma) => {
            g711::ulaw_to_alaw(src, out);
        }
        (Codec::Pcma, Codec::Pcmu) => {
            g711::alaw_to_ulaw(src, out);
        }
        (Codec::Pcmu | Codec::Pcma, unsupported) | (unsupported, _) => {
            return Err(CodecError::Unsupported(unsupported))
        }
    }
    Ok(src.len())
}

/// Converts a payload in place between equal-sized codecs; PCMU <-> PCMA or identity.
pub fn transcode_in_place(from: Codec, to: Codec, payload: &mut [u8]) -> Result<(), CodecError> {
    match (from, to) {
        _ if from == to => {}
        (Codec::Pcmu, Codec::Pcma) => g711::ulaw_to_alaw_in_place(payload),
        (Codec::Pcma, Codec::Pcmu) => g711::alaw_to_ulaw_in_place(payload),
        (Codec::Pcmu | Codec::Pcma, unsupported) | (unsupported, _) => {
            return Err(CodecError::Unsupported(unsupported))
        }
    }
    Ok(())
}

/// Decodes one payload into linear samples at [`Codec::sample_rate`]; returns samples written.
pub fn decode_to_linear(
    codec: Codec,
    payload: &[u8],
    pcm: &mut [i16],
) -> Result<usize, CodecError> {
    ensure_supported(codec)?;
    ensure_room(payload.len(), pcm.len())?;
    match codec {
        Codec::Pcmu => Ok(g711::decode_ulaw(payload, pcm)),
        Codec::Pcma => Ok(g711::decode_alaw(payload, pcm)),
        Codec::G722 | Codec::Opus => Err(CodecError::Unsupported(codec)),
    }
}

/// Encodes linear samples at [`Codec::sample_rate`] into one payload; returns bytes written.
pub fn encode_from_linear(
    codec: Codec,
    pcm: &[i16],
    payload: &mut [u8],
) -> Result<usize, CodecError> {
    ensure_supported(codec)?;
    ensure_room(pcm.len(), payload.len())?;
    match codec {
        Codec::Pcmu => Ok(g711::encode_ulaw(pcm, payload)),
        Codec::Pcma => Ok(g711::encode_alaw(pcm, payload)),
        Codec::G722 | Codec::Opus => Err(CodecError::Unsupported(codec)),
    }
}

fn ensure_supported(codec: Codec) -> Result<(), CodecError> {
    if codec.is_convertible() {
        Ok(())
    } else {
        Err(CodecError::Unsupported(codec))
    }
}

/// Decoder for one incoming stream; stateful codecs (G.722, Opus) keep history across calls.
pub trait StreamDecoder {
    /// The codec this decoder reads.
    fn codec(&self) -> Codec;
    /// Decodes one payload into `pcm`; returns the samples written.
    fn decode(&mut self, payload: &[u8], pcm: &mut [i16]) -> Result<usize, CodecError>;
}

/// Encoder for one outgoing stream; stateful codecs keep history across calls.
pub trait StreamEncoder {
    /// The codec this encoder writes.
    fn codec(&self) -> Codec;
    /// Encodes one frame from `pcm` into `payload`; returns the bytes written.
    fn encode(&mut self, pcm: &[i16], payload: &mut [u8]) -> Result<usize, CodecError>;
}

/// A stateless codec (G.711) behind the stream traits, so callers treat all codecs alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stateless(Codec);

impl Stateless {
    /// Wraps a codec that needs no state; `Unsupported` for stateful ones.
    pub fn new(codec: Codec) -> Result<Self, CodecError> {
        ensure_supported(codec).map(|()| Self(codec))
    }
}

impl StreamDecoder for Stateless {
    fn codec(&self) -> Codec {
        self.0
    }

    fn decode(&mut self, payload: &[u8], pcm: &mut [i16]) -> Result<usize, CodecError> {
        decode_to_linear(self.0, payload, pcm)
    }
}

impl StreamEncoder for Stateless {
    fn codec(&self) -> Codec {
        self.0
    }

    fn encode(&mut self, pcm: &[i16], payload: &mut [u8]) -> Result<usize, CodecError> {
        encode_from_linear(self.0, pcm, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_parameters() {
        assert_eq!(Codec::Pcmu.static_payload_type(), Some(0));
        assert_eq!(Codec::Pcma.static_payload_type(), Some(8));
        assert_eq!(Codec::G722.static_payload_type(), Some(9));
        assert_eq!(Codec::Opus.static_payload_type(), None);
        for codec in Codec::ALL {
            if let Some(pt) = codec.static_payload_type() {
                assert_eq!(Codec::from_static_payload_type(pt), Some(codec));
            }
        }
        assert_eq!(Codec::from_static_payload_type(18), None);

        assert_eq!(Codec::Pcmu.samples_per_20ms(), 160);
        assert_eq!(Codec::Pcma.bytes_per_20ms(), Some(160));
        assert_eq!(Codec::Pcma.rtp_ticks_per_20ms(), 160);
        assert_eq!(Codec::G722.sample_rate(), 16000);
        assert_eq!(Codec::G722.rtp_clock_rate(), 8000);
        assert_eq!(Codec::G722.samples_per_20ms(), 320);
        assert_eq!(Codec::G722.rtp_ticks_per_20ms(), 160);
        assert_eq!(Codec::Opus.rtp_ticks_per_20ms(), 960);
        assert_eq!(Codec::Opus.bytes_per_20ms(), None);
        assert_eq!(Codec::Opus.rtpmap_channels(), Some(2));
        assert_eq!(Codec::Pcmu.to_string(), "PCMU");
    }

    #[test]
    fn rtpmap_names_are_case_insensitive_and_need_the_right_rate() {
        assert_eq!(Codec::from_rtpmap("PCMU", 8000), Some(Codec::Pcmu));
        assert_eq!(Codec::from_rtpmap("pcma", 8000), Some(Codec::Pcma));
        assert_eq!(Codec::from_rtpmap("g722", 8000), Some(Codec::G722));
        assert_eq!(Codec::from_rtpmap("OPUS", 48000), Some(Codec::Opus));
        assert_eq!(Codec::from_rtpmap("PCMU", 16000), None);
        assert_eq!(Codec::from_rtpmap("G722", 16000), None);
        assert_eq!(Codec::from_rtpmap("telephone-event", 8000), None);
        assert_eq!(Codec::from_rtpmap("", 8000), None);
    }

    #[test]
    fn transcode_uses_tables_and_identity() {
        let ulaw = [0x00, 0x20, 0x7F, 0xFF, 0x80];
        let mut out = [0u8; 8];
        assert_eq!(transcode(Codec::Pcmu, Codec::Pcma, &ulaw, &mut out), Ok(5));
        assert_eq!(out[..5], [0x2A, 0x0A, 0x55, 0xD5, 0xAA]);
        assert_eq!(
            transcode(Codec::Pcma, Codec::Pcmu, &[0xD5, 0x2A], &mut out),
            Ok(2)
        );
        assert_eq!(out[..2], [0xFE, 0x00]);
        // Identity works for any codec, even ones we cannot decode.
        assert_eq!(
            transcode(Codec::Opus, Codec::Opus, &[1, 2, 3], &mut out),
            Ok(3)
        );
        assert_eq!(out[..3], [1, 2, 3]);

        let mut in_place = ulaw;
        assert_eq!(
            transcode_in_place(Codec::Pcmu, Codec::Pcma, &mut in_place),
            Ok(())
        );
        assert_eq!(in_place, [0x2A, 0x0A, 0x55, 0xD5, 0xAA]);
        assert_eq!(
            transcode_in_place(Codec::G722, Codec::G722, &mut in_place),
            Ok(())
        );
    }

    #[test]
    fn transcode_rejects_unsupported_pairs_and_short_buffers() {
        let mut out = [0u8; 4];
        assert_eq!(
            transcode(Codec::Pcmu, Codec::G722, &[0; 4], &mut out),
            Err(CodecError::Unsupported(Codec::G722))
        );
        assert_eq!(
            transcode(Codec::Opus, Codec::Pcma, &[0; 4], &mut out),
            Err(CodecError::Unsupported(Codec::Opus))
        );
        assert_eq!(
            transcode(Codec::Pcmu, Codec::Pcma, &[0; 5], &mut out),
            Err(CodecError::OutputTooSmall {
                needed: 5,
                available: 4
            })
        );
        assert_eq!(
            transcode_in_place(Codec::Pcma, Codec::Opus, &mut out),
            Err(CodecError::Unsupported(Codec::Opus))
        );
        assert_eq!(transcode(Codec::Pcmu, Codec::Pcma, &[], &mut []), Ok(0));
    }

    #[test]
    fn linear_round_trip_through_both_laws() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 409) % 20000 - 10000) as i16)
            .collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut payload = [0u8; 160];
            let mut decoded = [0i16; 160];
            assert_eq!(encode_from_linear(codec, &pcm, &mut payload), Ok(160));
            assert_eq!(decode_to_linear(codec, &payload, &mut decoded), Ok(160));
            for (a, b) in pcm.iter().zip(decoded) {
                // Step at most 512 below 16k, so error at most 256.
                assert!(
                    (i32::from(*a) - i32::from(b)).abs() <= 256,
                    "{codec}: {a} {b}"
                );
            }
            let mut stateless = Stateless::new(codec).unwrap();
            let mut again = [0u8; 160];
            assert_eq!(StreamEncoder::codec(&stateless), codec);
            assert_eq!(stateless.encode(&pcm, &mut again), Ok(160));
            assert_eq!(again, payload);
            assert_eq!(stateless.decode(&payload, &mut decoded), Ok(160));
        }
    }

    #[test]
    fn linear_conversion_errors() {
        let mut pcm = [0i16; 2];
        let mut payload = [0u8; 2];
        assert_eq!(
            decode_to_linear(Codec::Pcmu, &[0; 3], &mut pcm),
            Err(CodecError::OutputTooSmall {
                needed: 3,
                available: 2
            })
        );
        assert_eq!(
            encode_from_linear(Codec::Pcma, &[0; 3], &mut payload),
            Err(CodecError::OutputTooSmall {
                needed: 3,
                available: 2
            })
        );
        assert_eq!(
            decode_to_linear(Codec::G722, &[0; 2], &mut pcm),
            Err(CodecError::Unsupported(Codec::G722))
        );
        assert_eq!(
            encode_from_linear(Codec::Opus, &[0; 2], &mut payload),
            Err(CodecError::Unsupported(Codec::Opus))
        );
        assert_eq!(
            Stateless::new(Codec::Opus),
            Err(CodecError::Unsupported(Codec::Opus))
        );
    }
}
