//! Media anchoring: the SDP we send on one leg, built from the SDP received on the other.
//!
//! The relay forwards plain RTP/AVP between its own ports, so the SDP we send must name
//! our address and ports, and must not carry anything that describes the remote party's
//! transport or keys. What is dropped and why ([`is_dropped_when_anchoring`]):
//!
//! - ICE (`candidate`, `remote-candidates`, `end-of-candidates`, every `ice-*`): the
//!   candidates are the remote party's addresses; on our leg we are the media endpoint.
//! - DTLS and TLS setup (`fingerprint`, `setup`, `connection`, `tls-id`) and keys
//!   (`crypto`, `key-mgmt`): we do not terminate SRTP, so our leg is plain RTP. An offer
//!   with `RTP/AVP` plus `a=crypto` (best-effort SRTP) simply falls back to RTP; a stream
//!   whose profile is secure (`RTP/SAVP`, `UDP/TLS/RTP/SAVPF`) is rejected.
//! - `rtcp-mux`, `rtcp-mux-only`: the relay has separate RTP and RTCP ports.
//! - BUNDLE (`a=group:BUNDLE`, `bundle-only`): one transport per `m=` line.
//! - `a=rtcp` is rewritten to the relay's RTCP port (or dropped), media-level `c=` lines go
//!   (the session `c=` is ours), and rtpmap/fmtp/rtcp-fb of filtered-out codecs go.
//!
//! Everything else is kept in order: direction (so hold passes end to end), ptime, b=,
//! ssrc, mid, extmap, T.38 attributes, unknown attributes.

use std::net::IpAddr;

use super::codecs::{parse_payload_type, static_payload_type, CodecName, RtpMap};
use super::model::{Attribute, Connection, Media, MediaKind, Origin, Rtcp, Sdp};
use super::SdpError;

/// Our `o=` line on one leg, and the RFC 3264 section 8 version rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginState {
    session_id: u64,
    version: u64,
    address: IpAddr,
    last_sent: Option<Vec<u8>>,
}

impl OriginState {
    /// The `o=` username we always use.
    pub const USERNAME: &'static str = "sentralbord";

    /// A leg's origin; the caller picks the session id (random, or from the clock it was given).
    pub fn new(session_id: u64, address: IpAddr) -> Self {
        Self {
            session_id,
            version: 1,
            address,
            last_sent: None,
        }
    }

    /// The session id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The version of the SDP last stamped.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The `o=` line for the current version.
    pub fn origin(&self) -> Origin {
        Origin::new(Self::USERNAME, self.session_id, self.version, self.address)
    }

    /// Puts our `o=` line on an SDP about to be sent: the same version if the body is the
    /// same as the one sent before, one more if anything changed (RFC 3264 section 8).
    pub fn stamp(&mut self, sdp: &mut Sdp) {
        sdp.origin = self.origin();
        let body = sdp.encode();
        match &self.last_sent {
            Some(last) if *last == body => {}
            Some(_) => {
                self.version = self.version.wrapping_add(1);
                sdp.origin = self.origin();
                self.last_sent = Some(sdp.encode());
            }
            None => self.last_sent = Some(body),
        }
    }
}

/// The relay ports allocated for one `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPorts {
    /// The RTP port (0 rejects the stream).
    pub rtp: u16,
    /// The RTCP port, written as `a=rtcp`; `None` drops `a=rtcp` (the peer assumes RTP + 1).
    pub rtcp: Option<u16>,
}

/// What [`anchor`] puts in the SDP it builds.
#[derive(Debug, Clone, Copy)]
pub struct AnchorConfig<'a> {
    /// Our media address, written as the session `c=`.
    pub address: IpAddr,
    /// Relay ports by `m=` index; a missing or `None` entry rejects that stream (port 0).
    /// Non-audio streams given ports are relayed as they are (T.38 over udptl, video).
    pub ports: &'a [Option<RelayPorts>],
    /// Audio codecs the relay handles (telephone-event and CN are always kept).
    pub codecs: &'a [CodecName],
    /// Codecs to add when not offered (we transcode to them); only those with a static
    /// payload type are added.
    pub transcode_to: &'a [CodecName],
}

/// The SDP to send on the other leg for `remote` (an offer or an answer), stamped by `origin`.
///
/// Stream count and order are kept (RFC 3264 section 6). Streams that cannot be relayed are
/// rejected with port 0. Fails only when `remote` had an active audio stream and none
/// survives: the reason for the first such stream is returned ([`SdpError::NoCommonCodec`],
/// [`SdpError::UnsupportedTransport`], or [`SdpError::NoAudioStream`] if no port was given).
/// `origin` is stamped only on success, so call this only for an SDP you will send.
pub fn anchor(
    remote: &Sdp,
    config: &AnchorConfig<'_>,
    origin: &mut OriginState,
) -> Result<Sdp, SdpError> {
    let mut out = remote.clone();
    out.connection = Some(Connection::new(config.address));
    out.fields.retain(|f| f.letter != b'c');
    out.attributes
        .retain(|a| !is_dropped_when_anchoring(a) && !is_bundle_group(a));

    let mut had_active_audio = false;
    let mut kept_audio = false;
    let mut first_error = None;
    for (index, (media, received)) in out.media.iter_mut().zip(&remote.media).enumerate() {
        let is_active_audio = media.kind == MediaKind::Audio && !received.is_rejected();
        had_active_audio |= is_active_audio;
        match relay_media(media, index, config) {
            Ok(()) => {
                if remote
                    .connection_for(received)
                    .is_some_and(Connection::is_unspecified)
                {
                    // RFC 2543 hold: our c= is real, so say it with a direction instead.
                    media.set_direction(remote.effective_direction(received));
                }
                kept_audio |= is_active_audio;
            }
            Err(error) => {
                reject(media);
                if is_active_audio && first_error.is_none() {
                    first_error = Some(error);
                }
            }
        }
    }
    if had_active_audio && !kept_audio {
        return Err(first_error.unwrap_or(SdpError::NoAudioStream));
    }
    origin.stamp(&mut out);
    Ok(out)
}

/// Rewrites one accepted stream to the relay; an error means the stream must be rejected.
fn relay_media(media: &mut Media, index: usize, config: &AnchorConfig<'_>) -> Result<(), SdpError> {
    let ports = config
        .ports
        .get(index)
        .copied()
        .flatten()
        .filter(|p| p.rtp != 0 && !media.is_rejected())
        .ok_or(SdpError::NoAudioStream)?;
    let unsupported = SdpError::UnsupportedTransport { media_index: index };
    if media.is_secure() {
        return Err(unsupported);
    }
    if media.kind == MediaKind::Audio {
        if !media.is_rtp() {
            return Err(unsupported);
        }
        filter_codecs(media, config.codecs, config.transcode_to)?;
    }
    media.port = ports.rtp;
    media.port_count = None;
    media.connection = None;
    media.fields.retain(|f| f.letter != b'c');
    media.attributes.retain(|a| !is_dropped_when_anchoring(a));
    media.set_rtcp(ports.rtcp.map(|port| Rtcp {
        port,
        address: None,
    }));
    Ok(())
}

/// A rejected stream: port 0, formats kept, nothing else.
fn reject(media: &mut Media) {
    media.port = 0;
    media.port_count = None;
    media.connection = None;
    media.fields.clear();
    media.attributes.clear();
}

/// Keeps the offered codecs the relay handles, in the offerer's order and with its
/// payload types, plus telephone-event and CN whenever offered; then adds the
/// `transcode_to` codecs not offered, with their static payload type, after the last
/// speech codec. Fails with [`SdpError::NoCommonCodec`] (leaving `media` unchanged) if no
/// speech codec would remain.
pub fn filter_codecs(
    media: &mut Media,
    allowed: &[CodecName],
    transcode_to: &[CodecName],
) -> Result<(), SdpError> {
    let mut formats = Vec::new();
    let mut kept: Vec<RtpMap> = Vec::new();
    let mut dropped: Vec<u8> = Vec::new();
    let mut after_last_speech = None;
    for format in &media.formats {
        let Some(pt) = parse_payload_type(format) else {
            continue;
        };
        match media.rtpmap(pt) {
            Some(map) if !map.is_speech() => {
                formats.push(format.clone());
                kept.push(map);
            }
            Some(map) if allowed.iter().any(|c| c.matches(&map)) => {
                formats.push(format.clone());
                after_last_speech = Some(formats.len());
                kept.push(map);
            }
            _ => dropped.push(pt),
        }
    }
    let Some(mut insert_at) = after_last_speech else {
        return Err(SdpError::NoCommonCodec);
    };

    let mut added = Vec::new();
    for codec in transcode_to {
        let Some(pt) = static_payload_type(codec) else {
            continue;
        };
        let taken = media.payload_types().any(|p| p == pt)
            || added.iter().any(|m: &RtpMap| m.payload_type == pt);
        if taken || kept.iter().any(|m| codec.matches(m)) {
            continue;
        }
        formats.insert(insert_at.min(formats.len()), pt.to_string());
        insert_at = insert_at.saturating_add(1);
        added.push(RtpMap {
            payload_type: pt,
            encoding: codec.name.to_string(),
            clock_rate: codec.clock_rate,
            channels: None,
        });
    }

    media.formats = formats;
    media.attributes.retain(|a| {
        let per_payload = a.is("rtpmap") || a.is("fmtp") || a.is("rtcp-fb");
        !(per_payload
            && a.leading_payload_type()
                .is_some_and(|pt| dropped.contains(&pt)))
    });
    let mut rtpmap_end = media
        .attributes
        .iter()
        .rposition(|a| a.is("rtpmap") || a.is("fmtp"))
        .map_or(media.attributes.len(), |i| i.saturating_add(1));
    for map in added {
        let at = rtpmap_end.min(media.attributes.len());
        media
            .attributes
            .insert(at, Attribute::new("rtpmap", map.to_string()));
        rtpmap_end = rtpmap_end.saturating_add(1);
    }
    Ok(())
}

/// True for an attribute a plain RTP anchor must not pass on (see the module docs).
pub fn is_dropped_when_anchoring(attribute: &Attribute) -> bool {
    const DROPPED: &[&str] = &[
        "candidate",
        "remote-candidates",
        "end-of-candidates",
        "fingerprint",
        "setup",
        "connection",
        "tls-id",
        "crypto",
        "key-mgmt",
        "rtcp-mux",
        "rtcp-mux-only",
        "bundle-only",
    ];
    let name = attribute.name.as_str();
    DROPPED.iter().any(|d| d.eq_ignore_ascii_case(name))
        || name
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("ice-"))
}

/// `a=group:BUNDLE ...` (other groups, such as `LS` lip sync, are kept).
fn is_bundle_group(attribute: &Attribute) -> bool {
    attribute.is("group")
        && attribute.value.as_deref().is_some_and(|v| {
            v.trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("BUNDLE"))
        })
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::super::fixtures::*;
    use super::*;

    const OURS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));
    const G711: &[CodecName] = &[CodecName::PCMU, CodecName::PCMA];

    fn ports(rtp: u16, rtcp: Option<u16>) -> Option<RelayPorts> {
        Some(RelayPorts { rtp, rtcp })
    }

    fn run(
        body: &str,
        ports: &[Option<RelayPorts>],
        codecs: &[CodecName],
        extra: &[CodecName],
    ) -> Result<String, SdpError> {
        let remote = Sdp::parse(body.as_bytes()).unwrap();
        let config = AnchorConfig {
            address: OURS,
            ports,
            codecs,
            transcode_to: extra,
        };
        let mut origin = OriginState::new(42, OURS);
        anchor(&remote, &config, &mut origin).map(|sdp| String::from_utf8(sdp.encode()).unwrap())
    }

    #[test]
    fn sipp_offer_gets_our_origin_address_and_ports() {
        let out = run(SIPP, &[ports(30000, Some(30001))], G711, &[]).unwrap();
        assert_eq!(
            out,
            "v=0\r\no=sentralbord 42 1 IN IP4 10.0.0.99\r\ns=-\r\nc=IN IP4 10.0.0.99\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp:30001\r\n"
        );
    }

    #[test]
    fn baresip_offer_is_filtered_and_video_without_port_rejected() {
        let codecs = [CodecName::PCMU, CodecName::PCMA, CodecName::G722];
        let out = run(BARESIP, &[ports(30000, Some(30001)), None], &codecs, &[]).unwrap();
        assert_eq!(
            out,
            "v=0\r\no=sentralbord 42 1 IN IP4 10.0.0.99\r\ns=-\r\nc=IN IP4 10.0.0.99\r\nt=0 0\r\n\
             a=tool:baresip 3.10.1\r\n\
             m=audio 30000 RTP/AVP 9 0 8 101\r\n\
             b=AS:128\r\n\
             a=rtpmap:9 G722/8000\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=rtcp:30001\r\n\
             a=sendrecv\r\n\
             a=label:1\r\n\
             a=rtcp-rsize\r\n\
             a=ssrc:3211286958 cname:b8a0c1d2-0e5f\r\n\
             a=ptime:20\r\n\
             m=video 0 RTP/AVP 100\r\n"
        );
    }

    #[test]
    fn ice_keys_mux_and_bundle_are_dropped_the_rest_kept() {
        let out = run(WEBRTC_ISH, &[ports(30000, None)], G711, &[]).unwrap();
        assert_eq!(
            out,
            "v=0\r\no=sentralbord 42 1 IN IP4 10.0.0.99\r\ns=-\r\nc=IN IP4 10.0.0.99\r\nt=0 0\r\n\
             a=msid-semantic: WMS stream\r\n\
             m=audio 30000 RTP/AVP 0 8 13 110\r\n\
             a=mid:0\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
             a=sendrecv\r\n\
             a=msid:stream track\r\n\
             a=rtpmap:110 telephone-event/48000\r\n\
             a=ssrc:1001 cname:abc\r\n"
        );
    }

    #[test]
    fn secure_profiles_cannot_be_relayed() {
        assert_eq!(
            run(WEBRTC_DTLS, &[ports(30000, None)], G711, &[]),
            Err(SdpError::UnsupportedTransport { media_index: 0 })
        );
    }

    #[test]
    fn no_common_codec_and_missing_ports_are_errors() {
        let opus = [CodecName::new("opus", 48000)];
        assert_eq!(
            run(STATIC_ONLY, &[ports(30000, None)], &opus, &[]),
            Err(SdpError::NoCommonCodec)
        );
        // telephone-event and CN alone are not a codec.
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                    m=audio 4000 RTP/AVP 13 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        assert_eq!(
            run(body, &[ports(30000, None)], G711, &[]),
            Err(SdpError::NoCommonCodec)
        );
        assert_eq!(run(SIPP, &[], G711, &[]), Err(SdpError::NoAudioStream));
        assert_eq!(
            run(SIPP, &[ports(0, None)], G711, &[]),
            Err(SdpError::NoAudioStream)
        );
    }

    #[test]
    fn one_unusable_audio_stream_is_rejected_when_another_survives() {
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                    m=audio 4000 RTP/AVP 18\r\na=ptime:30\r\nm=audio 4002 RTP/AVP 8\r\n";
        let out = run(body, &[ports(30000, None), ports(30002, None)], G711, &[]).unwrap();
        assert!(
            out.ends_with("m=audio 0 RTP/AVP 18\r\nm=audio 30002 RTP/AVP 8\r\n"),
            "{out}"
        );
    }

    #[test]
    fn transcodable_codecs_are_appended_with_static_types() {
        let extra = [
            CodecName::PCMA,
            CodecName::new("opus", 48000),
            CodecName::PCMU,
            CodecName::PCMA,
        ];
        let out = run(SIPP, &[ports(30000, None)], G711, &extra).unwrap();
        assert!(
            out.ends_with(
                "m=audio 30000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            ),
            "{out}"
        );
        // Inserted after the last speech codec, before telephone-event.
        let out = run(IPV6, &[ports(30000, None)], G711, &[CodecName::G722]).unwrap();
        assert!(
            out.ends_with(
                "m=audio 30000 RTP/AVP 0 8 9 101\r\na=rtpmap:101 telephone-event/8000\r\n\
                 a=fmtp:101 0-16\r\na=rtpmap:9 G722/8000\r\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn filter_codecs_leaves_media_unchanged_on_error() {
        let sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        let mut media = sdp.media[0].clone();
        let before = media.clone();
        assert_eq!(
            filter_codecs(&mut media, &[CodecName::G729], &[CodecName::PCMA]),
            Err(SdpError::NoCommonCodec)
        );
        assert_eq!(media, before);
        // Keep the offerer's order and payload types, drop the others with their fmtp.
        filter_codecs(
            &mut media,
            &[CodecName::PCMA, CodecName::new("OPUS", 48000)],
            &[],
        )
        .unwrap();
        assert_eq!(media.formats, ["96", "8", "101"]);
        assert_eq!(media.fmtp(96), Some("stereo=1;sprop-stereo=1"));
        assert_eq!(media.fmtp(97), None);
        assert!(media
            .attributes
            .iter()
            .all(|a| a.leading_payload_type() != Some(9)));
    }

    #[test]
    fn zero_address_hold_becomes_a_direction() {
        let out = run(HOLD_ZERO_ADDRESS, &[ports(30000, None)], G711, &[]).unwrap();
        assert!(out.contains("c=IN IP4 10.0.0.99\r\n"));
        assert!(
            out.ends_with("m=audio 30000 RTP/AVP 0 8\r\na=sendonly\r\n"),
            "{out}"
        );
        assert!(Sdp::parse(out.as_bytes()).unwrap().is_hold());
        // Held with sendonly already: passes through as is.
        let held = SIPP.replace("a=rtpmap", "a=sendonly\r\na=rtpmap");
        let out = run(&held, &[ports(30000, None)], G711, &[]).unwrap();
        assert!(Sdp::parse(out.as_bytes()).unwrap().is_hold());
    }

    #[test]
    fn t38_image_stream_is_relayed_as_is() {
        let out = run(T38, &[None, ports(40100, None)], G711, &[]).unwrap();
        let expected = T38
            .replace(
                "o=- 1 3 IN IP4 198.51.100.20",
                "o=sentralbord 42 1 IN IP4 10.0.0.99",
            )
            .replace("c=IN IP4 198.51.100.20", "c=IN IP4 10.0.0.99")
            .replace("m=image 40000", "m=image 40100");
        assert_eq!(out, expected);
        // Without a port the image stream is rejected; no audio was active, so no error.
        let out = run(T38, &[], G711, &[]).unwrap();
        assert!(
            out.ends_with("m=audio 0 RTP/AVP 0\r\nm=image 0 udptl t38\r\n"),
            "{out}"
        );
    }

    #[test]
    fn origin_version_moves_only_when_the_body_changes() {
        let remote = Sdp::parse(SIPP.as_bytes()).unwrap();
        let mut origin = OriginState::new(7, OURS);
        let config = |ports| AnchorConfig {
            address: OURS,
            ports,
            codecs: G711,
            transcode_to: &[],
        };
        let first = [ports(30000, None)];
        let second = [ports(30010, None)];
        let version = |sdp: &Sdp| sdp.origin.session_version.as_u64();
        let a = anchor(&remote, &config(&first), &mut origin).unwrap();
        assert_eq!(
            (a.origin.username.as_str(), a.origin.session_id.as_u64()),
            ("sentralbord", Some(7))
        );
        assert_eq!(version(&a), Some(1));
        let b = anchor(&remote, &config(&first), &mut origin).unwrap();
        assert_eq!(version(&b), Some(1), "same body, same version");
        assert_eq!(a.encode(), b.encode());
        let c = anchor(&remote, &config(&second), &mut origin).unwrap();
        assert_eq!(version(&c), Some(2), "changed body, +1");
        let d = anchor(&remote, &config(&first), &mut origin).unwrap();
        assert_eq!(version(&d), Some(3), "changed back is a change too");
        assert_eq!(origin.version(), 3);
        // A failed anchor does not stamp.
        let opus = [CodecName::new("opus", 48000)];
        let failing = AnchorConfig {
            codecs: &opus,
            ..config(&second)
        };
        assert!(anchor(&remote, &failing, &mut origin).is_err());
        let e = anchor(&remote, &config(&first), &mut origin).unwrap();
        assert_eq!(version(&e), Some(3));
    }

    #[test]
    fn stamp_replaces_any_origin() {
        let mut state = OriginState::new(u64::MAX, OURS);
        let mut sdp = Sdp::parse(IPV6.as_bytes()).unwrap();
        state.stamp(&mut sdp);
        assert_eq!(
            sdp.origin.to_owned(),
            Origin::new("sentralbord", u64::MAX, 1, OURS)
        );
        sdp.session_name = "changed".into();
        state.stamp(&mut sdp);
        assert_eq!(
            sdp.origin.session_version,
            super::super::OriginNumber::Value(2)
        );
        assert_eq!(state.session_id(), u64::MAX);
    }

    #[test]
    fn dropped_attribute_names() {
        for name in [
            "candidate",
            "ICE-UFRAG",
            "ice-pwd",
            "ice-whatever",
            "crypto",
            "fingerprint",
            "setup",
            "rtcp-mux",
        ] {
            assert!(is_dropped_when_anchoring(&Attribute::flag(name)), "{name}");
        }
        for name in [
            "icecream", "rtcp", "rtcp-fb", "mid", "ssrc", "sendonly", "ptime", "ice",
        ] {
            assert!(!is_dropped_when_anchoring(&Attribute::flag(name)), "{name}");
        }
        assert!(is_bundle_group(&Attribute::new("group", "BUNDLE 0 1")));
        assert!(!is_bundle_group(&Attribute::new("group", "LS 1 2")));
    }
}
