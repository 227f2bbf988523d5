//! Offer/answer when sentralbord terminates media itself, and the outcome of a negotiation.

use std::net::{IpAddr, SocketAddr};

use super::anchor::OriginState;
use super::codecs::{static_payload_type, CodecName, RtpMap};
use super::model::{Attribute, Connection, Media, MediaKind, Origin, Rtcp, Sdp};
use super::{Direction, SdpError};

/// Our side of a media stream we terminate (prompts, tones, conference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our media address (`c=` and the placeholder `o=`).
    pub address: IpAddr,
    /// The RTP port of our one audio stream.
    pub rtp_port: u16,
    /// Our RTCP port, written as `a=rtcp` when given.
    pub rtcp_port: Option<u16>,
    /// Speech codecs we handle, most preferred first (CN may be listed too).
    pub codecs: Vec<CodecName>,
    /// Whether we send and receive RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// The direction we want (`SendOnly` when we hold the other side).
    pub direction: Direction,
    /// The packetisation we want to receive, in milliseconds.
    pub ptime: Option<u32>,
}

/// Payload type we use for telephone-event in our own offers (the common choice).
const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;

/// Our answer to `offer`: the first active plain-RTP audio stream is accepted with the first
/// offered codec we support (offerer's order), telephone-event with the offerer's payload
/// type and fmtp if we do it and it was offered, CN if both sides list it, and the mirrored
/// direction narrowed by ours. Every other stream is rejected (port 0, same formats).
///
/// The `o=` is a placeholder: stamp it with the leg's [`OriginState`] before sending.
pub fn answer(offer: &Sdp, local: &LocalMedia) -> Result<Sdp, SdpError> {
    let accepted = offer
        .media
        .iter()
        .position(|m| {
            m.kind == MediaKind::Audio && !m.is_rejected() && m.is_rtp() && !m.is_secure()
        })
        .ok_or(SdpError::NoAudioStream)?;
    let mut sdp = local_session(local);
    for (index, offered) in offer.media.iter().enumerate() {
        let media = if index == accepted {
            answer_audio(offer, offered, local)?
        } else {
            Media::new(
                offered.kind.clone(),
                0,
                offered.proto.clone(),
                offered.formats.clone(),
            )
        };
        sdp.media.push(media);
    }
    Ok(sdp)
}

fn answer_audio(offer: &Sdp, offered: &Media, local: &LocalMedia) -> Result<Media, SdpError> {
    let offered_codecs = offered.codecs();
    let supported = |map: &RtpMap| local.codecs.iter().any(|c| c.matches(map));
    let chosen = offered_codecs
        .iter()
        .find(|m| m.is_speech() && supported(m))
        .ok_or(SdpError::NoCommonCodec)?;

    let mut media = Media::new(
        MediaKind::Audio,
        local.rtp_port,
        offered.proto.clone(),
        Vec::new(),
    );
    add_codec(&mut media, chosen, None);
    if local.telephone_event {
        if let Some(event) = telephone_event_for(&offered_codecs, chosen.clock_rate) {
            add_codec(&mut media, event, offered.fmtp(event.payload_type));
        }
    }
    let comfort_noise = offered_codecs
        .iter()
        .find(|m| m.is_comfort_noise() && m.clock_rate == chosen.clock_rate && supported(m));
    if let Some(cn) = comfort_noise {
        add_codec(&mut media, cn, None);
    }
    finish_local_media(&mut media, local);
    media.set_direction(
        local
            .direction
            .answer_to(offer.effective_direction(offered)),
    );
    Ok(media)
}

/// Our offer: one audio stream with our codecs (static payload types where they have one,
/// dynamic from 96 otherwise) and telephone-event (101, events 0-15) if we do it.
///
/// The `o=` is a placeholder: stamp it with the leg's [`OriginState`] before sending.
pub fn offer(local: &LocalMedia) -> Sdp {
    let mut media = Media::new(MediaKind::Audio, local.rtp_port, "RTP/AVP", Vec::new());
    let mut used: Vec<u8> = Vec::new();
    let speech = local.codecs.iter().filter(|c| !c.is_telephone_event());
    for codec in speech {
        if media.codecs().iter().any(|m| codec.matches(m)) {
            continue;
        }
        let static_pt = static_payload_type(codec).filter(|pt| !used.contains(pt));
        let Some(pt) = static_pt.or_else(|| free_dynamic(&used, None)) else {
            continue;
        };
        used.push(pt);
        add_codec(&mut media, &rtpmap(pt, codec), None);
    }
    if local.telephone_event {
        if let Some(pt) = free_dynamic(&used, Some(TELEPHONE_EVENT_PAYLOAD_TYPE)) {
            add_codec(
                &mut media,
                &rtpmap(pt, &CodecName::TELEPHONE_EVENT),
                Some("0-15"),
            );
        }
    }
    finish_local_media(&mut media, local);
    media.set_direction(local.direction);
    let mut sdp = local_session(local);
    sdp.media.push(media);
    sdp
}

fn local_session(local: &LocalMedia) -> Sdp {
    let mut sdp = Sdp::new(Origin::new(OriginState::USERNAME, 0, 0, local.address));
    sdp.connection = Some(Connection::new(local.address));
    sdp
}

fn add_codec(media: &mut Media, map: &RtpMap, fmtp: Option<&str>) {
    media.formats.push(map.payload_type.to_string());
    media
        .attributes
        .push(Attribute::new("rtpmap", map.to_string()));
    if let Some(params) = fmtp.filter(|p| !p.is_empty()) {
        media.attributes.push(Attribute::new(
            "fmtp",
            format!("{} {params}", map.payload_type),
        ));
    }
}

fn finish_local_media(media: &mut Media, local: &LocalMedia) {
    if let Some(ptime) = local.ptime {
        media
            .attributes
            .push(Attribute::new("ptime", ptime.to_string()));
    }
    media.set_rtcp(local.rtcp_port.map(|port| Rtcp {
        port,
        address: None,
    }));
}

fn rtpmap(payload_type: u8, codec: &CodecName) -> RtpMap {
    RtpMap {
        payload_type,
        encoding: codec.name.to_string(),
        clock_rate: codec.clock_rate,
        channels: None,
    }
}

/// `preferred` if free, else the first free dynamic payload type (96-127).
fn free_dynamic(used: &[u8], preferred: Option<u8>) -> Option<u8> {
    preferred
        .into_iter()
        .chain(96..=127)
        .find(|pt| !used.contains(pt))
}

/// The telephone-event at `clock_rate`, else the first one.
fn telephone_event_for(codecs: &[RtpMap], clock_rate: u32) -> Option<&RtpMap> {
    let mut events = codecs.iter().filter(|m| m.is_telephone_event());
    let first = events.clone().next();
    events.find(|m| m.clock_rate == clock_rate).or(first)
}

/// Which side of an offer/answer exchange we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the offer.
    Offerer,
    /// We sent the answer.
    Answerer,
}

/// Where one side of a stream receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// RTP address and port (`0.0.0.0` for an RFC 2543 hold).
    pub rtp: SocketAddr,
    /// RTCP: `a=rtcp`, else the RTP port with rtcp-mux, else RTP port + 1 (`None` past 65535).
    pub rtcp: Option<SocketAddr>,
    /// The packetisation this side wants to receive (`a=ptime`).
    pub ptime: Option<u32>,
}

/// The outcome of offer/answer for one audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedStream {
    /// Index of the `m=` line.
    pub media_index: usize,
    /// The speech codec: the first in the answer (payload type, name, rate).
    pub codec: RtpMap,
    /// The telephone-event payload type, if the answer kept one.
    pub telephone_event: Option<u8>,
    /// The comfort-noise payload type, if the answer kept one.
    pub comfort_noise: Option<u8>,
    /// Where the offerer receives.
    pub offerer: Endpoint,
    /// Where the answerer receives.
    pub answerer: Endpoint,
    /// How media flows, seen from the offerer (offer direction narrowed by the answer's).
    pub offerer_direction: Direction,
}

impl NegotiatedStream {
    /// Where the other side receives, when we played `role` (our RTP goes there).
    pub fn remote(&self, role: Role) -> &Endpoint {
        match role {
            Role::Offerer => &self.answerer,
            Role::Answerer => &self.offerer,
        }
    }

    /// Where we receive, when we played `role`.
    pub fn local(&self, role: Role) -> &Endpoint {
        match role {
            Role::Offerer => &self.offerer,
            Role::Answerer => &self.answerer,
        }
    }

    /// How media flows, seen from us when we played `role`.
    pub fn direction(&self, role: Role) -> Direction {
        match role {
            Role::Offerer => self.offerer_direction,
            Role::Answerer => self.offerer_direction.mirrored(),
        }
    }
}

/// The audio streams that offer and answer agreed on: both ports non-zero, an RTP profile,
/// a speech codec in the answer and a connection address on both sides.
pub fn negotiated(offer: &Sdp, answer: &Sdp) -> Vec<NegotiatedStream> {
    offer
        .media
        .iter()
        .zip(&answer.media)
        .enumerate()
        .filter_map(|(index, (o, a))| negotiate_stream(index, offer, o, answer, a))
        .collect()
}

fn negotiate_stream(
    media_index: usize,
    offer: &Sdp,
    offered: &Media,
    answer: &Sdp,
    answered: &Media,
) -> Option<NegotiatedStream> {
    let usable = |m: &Media| m.kind == MediaKind::Audio && !m.is_rejected() && m.is_rtp();
    if !usable(offered) || !usable(answered) {
        return None;
    }
    // The answer may omit rtpmap for a dynamic type it took from the offer.
    let codecs: Vec<RtpMap> = answered
        .payload_types()
        .filter_map(|pt| answered.rtpmap(pt).or_else(|| offered.rtpmap(pt)))
        .collect();
    let codec = codecs.iter().find(|m| m.is_speech())?.clone();
    let telephone_event = telephone_event_for(&codecs, codec.clock_rate).map(|m| m.payload_type);
    let comfort_noise = codecs
        .iter()
        .find(|m| m.is_comfort_noise())
        .map(|m| m.payload_type);
    let mux = offered.has_attribute("rtcp-mux") && answered.has_attribute("rtcp-mux");
    Some(NegotiatedStream {
        media_index,
        codec,
        telephone_event,
        comfort_noise,
        offerer: endpoint(offer, offered, mux)?,
        answerer: endpoint(answer, answered, mux)?,
        offerer_direction: offer
            .effective_direction(offered)
            .intersect(answer.effective_direction(answered).mirrored()),
    })
}

fn endpoint(sdp: &Sdp, media: &Media, mux: bool) -> Option<Endpoint> {
    let address = sdp.connection_for(media)?.address;
    let rtp = SocketAddr::new(address, media.port);
    let rtcp = match media.rtcp() {
        Some(r) => Some(SocketAddr::new(r.address.unwrap_or(address), r.port)),
        None if mux => Some(rtp),
        None => media
            .port
            .checked_add(1)
            .map(|p| SocketAddr::new(address, p)),
    };
    Some(Endpoint {
        rtp,
        rtcp,
        ptime: media.ptime(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::super::fixtures::*;
    use super::*;

    const OURS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));

    fn local() -> LocalMedia {
        LocalMedia {
            address: OURS,
            rtp_port: 40000,
            rtcp_port: None,
            codecs: vec![CodecName::PCMA, CodecName::PCMU],
            telephone_event: true,
            direction: Direction::SendRecv,
            ptime: Some(20),
        }
    }

    fn text(sdp: &Sdp) -> String {
        String::from_utf8(sdp.encode()).unwrap()
    }

    fn answer_to(body: &str, local: &LocalMedia) -> Result<Sdp, SdpError> {
        answer(&Sdp::parse(body.as_bytes()).unwrap(), local)
    }

    #[test]
    fn answer_picks_the_offerers_first_supported_codec_and_rejects_video() {
        let sdp = answer_to(BARESIP, &local()).unwrap();
        assert_eq!(
            text(&sdp),
            "v=0\r\no=sentralbord 0 0 IN IP4 10.0.0.99\r\ns=-\r\nc=IN IP4 10.0.0.99\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n\
             m=video 0 RTP/AVP 100\r\n"
        );
    }

    #[test]
    fn answer_without_telephone_event_and_with_comfort_noise() {
        let mut ours = local();
        ours.telephone_event = false;
        ours.codecs.push(CodecName::CN);
        ours.rtcp_port = Some(40001);
        let sdp = answer_to(IPV6, &ours).unwrap();
        assert_eq!(sdp.media[0].formats, ["0"]);
        let sdp = answer_to(STATIC_ONLY, &ours).unwrap();
        assert_eq!(sdp.media[0].formats, ["0", "13"]);
        assert_eq!(sdp.media[0].rtcp().map(|r| r.port), Some(40001));
    }

    #[test]
    fn answer_uses_the_telephone_event_at_the_codec_rate() {
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                    m=audio 4000 RTP/AVP 111 0 110 126\r\na=rtpmap:111 opus/48000/2\r\n\
                    a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n";
        let sdp = answer_to(body, &local()).unwrap();
        assert_eq!(sdp.media[0].formats, ["0", "126"]);
        assert_eq!(sdp.media[0].fmtp(126), None);
        // Only a 48 kHz telephone-event offered: take it rather than none.
        let sdp = answer_to(WEBRTC_ISH, &local()).unwrap();
        assert_eq!(sdp.media[0].formats, ["0", "110"]);
    }

    #[test]
    fn answer_direction_mirrors_the_offer_and_our_wish() {
        let held = SIPP.replace("a=rtpmap", "a=sendonly\r\na=rtpmap");
        let sdp = answer_to(&held, &local()).unwrap();
        assert_eq!(sdp.media[0].direction(), Some(Direction::RecvOnly));
        let sdp = answer_to(HOLD_ZERO_ADDRESS, &local()).unwrap();
        assert_eq!(sdp.media[0].direction(), Some(Direction::RecvOnly));
        let mut on_hold = local();
        on_hold.direction = Direction::SendOnly;
        let sdp = answer_to(SIPP, &on_hold).unwrap();
        assert_eq!(sdp.media[0].direction(), Some(Direction::SendOnly));
        let sdp = answer_to(&held, &on_hold).unwrap();
        assert_eq!(sdp.media[0].direction(), Some(Direction::Inactive));
    }

    #[test]
    fn answer_errors() {
        let mut g729 = local();
        g729.codecs = vec![CodecName::G729];
        assert_eq!(answer_to(SIPP, &g729), Err(SdpError::NoCommonCodec));
        assert_eq!(answer_to(T38, &local()), Err(SdpError::NoAudioStream));
        assert_eq!(
            answer_to(WEBRTC_DTLS, &local()),
            Err(SdpError::NoAudioStream)
        );
    }

    #[test]
    fn our_offer() {
        let mut ours = local();
        ours.codecs = vec![
            CodecName::PCMU,
            CodecName::PCMA,
            CodecName::new("opus", 48000),
            CodecName::G722,
            CodecName::TELEPHONE_EVENT,
            CodecName::new("pcmu", 8000),
        ];
        ours.rtcp_port = Some(40001);
        let sdp = offer(&ours);
        let expected =
            "v=0\r\no=sentralbord 0 0 IN IP4 10.0.0.99\r\ns=-\r\nc=IN IP4 10.0.0.99\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 0 8 96 9 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:96 opus/48000\r\n\
             a=rtpmap:9 G722/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=ptime:20\r\n\
             a=rtcp:40001\r\n\
             a=sendrecv\r\n";
        assert_eq!(text(&sdp), expected);
        assert_eq!(Sdp::parse(expected.as_bytes()).unwrap(), sdp);
        // Our own offer answered by ourselves negotiates PCMU with telephone-event.
        let reply = answer(&sdp, &local()).unwrap();
        let streams = negotiated(&sdp, &reply);
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].codec.encoding, "PCMU");
        assert_eq!(streams[0].telephone_event, Some(101));
    }

    #[test]
    fn negotiated_stream_from_a_real_exchange() {
        let offer_sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        let mut ours = local();
        ours.rtcp_port = Some(40005);
        let answer_sdp = answer(&offer_sdp, &ours).unwrap();
        let streams = negotiated(&offer_sdp, &answer_sdp);
        assert_eq!(streams.len(), 1, "video was rejected");
        let s = &streams[0];
        assert_eq!(s.media_index, 0);
        assert_eq!(
            (
                s.codec.payload_type,
                s.codec.encoding.as_str(),
                s.codec.clock_rate
            ),
            (0, "PCMU", 8000)
        );
        assert_eq!(s.telephone_event, Some(101));
        assert_eq!(s.comfort_noise, None);
        let remote = s.remote(Role::Answerer);
        assert_eq!(remote.rtp, "192.168.1.10:10432".parse().unwrap());
        assert_eq!(remote.rtcp, Some("192.168.1.10:10433".parse().unwrap()));
        assert_eq!(remote.ptime, Some(20));
        let local_end = s.local(Role::Answerer);
        assert_eq!(local_end.rtp, "10.0.0.99:40000".parse().unwrap());
        assert_eq!(local_end.rtcp, Some("10.0.0.99:40005".parse().unwrap()));
        assert_eq!(s.remote(Role::Offerer), local_end);
        assert_eq!(s.direction(Role::Answerer), Direction::SendRecv);
    }

    #[test]
    fn negotiated_direction_rtcp_and_dynamic_types() {
        let offer_body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                          m=audio 4000 RTP/AVP 96 101\r\na=rtpmap:96 PCMU/16000\r\n\
                          a=rtpmap:101 telephone-event/16000\r\na=rtcp-mux\r\n\
                          m=audio 4002 RTP/AVP 0\r\n";
        let answer_body = "v=0\r\no=- 2 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
                           m=audio 5000 RTP/AVP 96 101\r\na=recvonly\r\na=rtcp-mux\r\n\
                           a=rtcp:5001 IN IP4 10.0.0.3\r\n\
                           m=audio 0 RTP/AVP 0\r\n";
        let o = Sdp::parse(offer_body.as_bytes()).unwrap();
        let a = Sdp::parse(answer_body.as_bytes()).unwrap();
        let streams = negotiated(&o, &a);
        assert_eq!(streams.len(), 1);
        let s = &streams[0];
        // The answer omitted rtpmap: the offer's is used.
        assert_eq!(
            (s.codec.encoding.as_str(), s.codec.clock_rate),
            ("PCMU", 16000)
        );
        assert_eq!(s.telephone_event, Some(101));
        assert_eq!(
            s.offerer.rtcp,
            Some(s.offerer.rtp),
            "rtcp-mux on both sides"
        );
        assert_eq!(
            s.answerer.rtcp,
            Some("10.0.0.3:5001".parse().unwrap()),
            "a=rtcp wins"
        );
        assert_eq!(s.offerer_direction, Direction::SendOnly);
        assert_eq!(s.direction(Role::Answerer), Direction::RecvOnly);
        // Old-style hold in the answer: the offerer must not send.
        let held = answer_body
            .replace("c=IN IP4 10.0.0.2", "c=IN IP4 0.0.0.0")
            .replace("a=recvonly\r\n", "");
        let s = negotiated(&o, &Sdp::parse(held.as_bytes()).unwrap());
        assert_eq!(s[0].offerer_direction, Direction::RecvOnly);
        assert!(s[0].answerer.rtp.ip().is_unspecified());
    }

    #[test]
    fn negotiated_skips_streams_without_a_speech_codec_or_address() {
        let o = Sdp::parse(SIPP.as_bytes()).unwrap();
        let only_events = "v=0\r\no=- 2 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 13\r\n";
        assert!(negotiated(&o, &Sdp::parse(only_events.as_bytes()).unwrap()).is_empty());
        let no_address =
            "v=0\r\no=- 2 2 IN IP4 10.0.0.2\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
        assert!(negotiated(&o, &Sdp::parse(no_address.as_bytes()).unwrap()).is_empty());
        let top_port = "v=0\r\no=- 2 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 65535 RTP/AVP 0\r\n";
        let s = negotiated(&o, &Sdp::parse(top_port.as_bytes()).unwrap());
        assert_eq!(s[0].answerer.rtcp, None);
    }
}
