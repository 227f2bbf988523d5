//! Lenient SDP parsing: strict only about `v=` first, one `o=`, and the `c=` and `m=` syntax.

use std::net::IpAddr;

use super::model::{Attribute, Connection, Field, Media, MediaKind, Origin, OriginNumber, Sdp};
use super::SdpError;

impl Sdp {
    /// Parses an SDP body (CRLF, bare LF or bare CR; blank lines and trailing whitespace
    /// ignored; line numbers in errors count LFs).
    ///
    /// Invalid UTF-8 in free-text lines is replaced rather than rejected.
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        let mut version: Option<String> = None;
        let mut origin: Option<Origin> = None;
        let mut session_name: Option<String> = None;
        let mut connection: Option<Connection> = None;
        let mut fields = Vec::new();
        let mut attributes = Vec::new();
        let mut media: Vec<Media> = Vec::new();

        // A lone CR also ends a line: no value may carry one into the SDP we send on,
        // where a stricter parser would split it and see an injected line.
        let lines = body
            .split(|&b| b == b'\n')
            .enumerate()
            .flat_map(|(index, raw)| {
                raw.split(|&b| b == b'\r')
                    .map(move |part| (index.saturating_add(1), part))
            });
        for (line_no, raw) in lines {
            let line = raw.trim_ascii();
            if line.iter().all(|&b| b == 0) {
                // Empty, or padding some stacks leave after the body.
                continue;
            }
            let (letter, value) = match line {
                [letter, b'=', rest @ ..] if letter.is_ascii_graphic() => {
                    (*letter, String::from_utf8_lossy(rest.trim_ascii()))
                }
                _ => return Err(SdpError::BadLine { line: line_no }),
            };
            if version.is_none() {
                if letter != b'v' {
                    return Err(SdpError::VersionNotFirst { line: line_no });
                }
                version = Some(value.into_owned());
                continue;
            }
            let unexpected = SdpError::UnexpectedLine {
                line: line_no,
                letter: char::from(letter),
            };
            match (letter, media.last_mut()) {
                (b'v', _) => return Err(unexpected),
                (b'o', None) if origin.is_none() => {
                    origin =
                        Some(parse_origin(&value).ok_or(SdpError::BadOrigin { line: line_no })?);
                }
                (b'o', _) => return Err(unexpected),
                (b'm', _) => media.push(parse_media(&value, line_no)?),
                (b'a', None) => attributes.push(parse_attribute(&value)),
                (b'a', Some(m)) => m.attributes.push(parse_attribute(&value)),
                (b'c', current) => {
                    let parsed = parse_connection(&value)
                        .ok_or(SdpError::BadConnection { line: line_no })?;
                    let (slot, extra) = match current {
                        None => (&mut connection, &mut fields),
                        Some(m) => (&mut m.connection, &mut m.fields),
                    };
                    if slot.is_none() {
                        *slot = Some(parsed);
                    } else {
                        extra.push(Field::new(letter, value));
                    }
                }
                (b's', None) if session_name.is_none() => session_name = Some(value.into_owned()),
                (_, None) => fields.push(Field::new(letter, value)),
                (_, Some(m)) => m.fields.push(Field::new(letter, value)),
            }
        }

        let version = version.ok_or(SdpError::Empty)?;
        let origin = origin.ok_or(SdpError::MissingOrigin)?;
        Ok(Self {
            version,
            origin,
            session_name: session_name.unwrap_or_else(|| "-".to_owned()),
            connection,
            fields,
            attributes,
            media,
        })
    }
}

/// `<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`; a username
/// with spaces (seen in the wild) is everything before the last five fields.
fn parse_origin(value: &str) -> Option<Origin> {
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    let split = tokens.len().checked_sub(5).filter(|&n| n >= 1)?;
    let (user_tokens, rest) = tokens.split_at(split);
    let [session_id, version, net_type, addr_type, address] = rest else {
        return None;
    };
    Some(Origin {
        username: user_tokens.join(" "),
        session_id: OriginNumber::parse(session_id),
        session_version: OriginNumber::parse(version),
        net_type: (*net_type).to_owned(),
        addr_type: (*addr_type).to_owned(),
        address: (*address).to_owned(),
    })
}

/// `IN IP4|IP6 <address>[/ttl[/count]]` with a literal address.
fn parse_connection(value: &str) -> Option<Connection> {
    let mut tokens = value.split_ascii_whitespace();
    let (net_type, addr_type, address) = (tokens.next()?, tokens.next()?, tokens.next()?);
    if tokens.next().is_some() || !net_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    if !addr_type.eq_ignore_ascii_case("IP4") && !addr_type.eq_ignore_ascii_case("IP6") {
        return None;
    }
    let (host, multicast) = match address.find('/') {
        Some(at) => (address.get(..at)?, address.get(at..).map(str::to_owned)),
        None => (address, None),
    };
    let address: IpAddr = host.parse().ok()?;
    Some(Connection { address, multicast })
}

/// `<media> <port>[/<count>] <proto> <fmt> ...` (an empty format list is tolerated).
fn parse_media(value: &str, line: usize) -> Result<Media, SdpError> {
    let mut tokens = value.split_ascii_whitespace();
    let (Some(kind), Some(port_field), Some(proto)) = (tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(SdpError::BadMediaLine { line });
    };
    let bad_port = SdpError::BadMediaPort { line };
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (
            port,
            Some(count.parse::<u16>().map_err(|_| bad_port.clone())?),
        ),
        None => (port_field, None),
    };
    let port = port.parse::<u16>().map_err(|_| bad_port)?;
    let mut media = Media::new(
        MediaKind::parse(kind),
        port,
        proto,
        tokens.map(str::to_owned).collect(),
    );
    media.port_count = port_count;
    Ok(media)
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, value)) => Attribute::new(name, value),
        None => Attribute::flag(value),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::fixtures::*;
    use super::super::{CodecName, Direction, MediaKind, OriginNumber, Sdp, SdpError};

    fn ip4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn sipp_default_body() {
        let sdp = Sdp::parse(SIPP.as_bytes()).unwrap();
        assert_eq!(sdp.version, "0");
        assert_eq!(sdp.origin.username, "user1");
        assert_eq!(sdp.origin.session_id, OriginNumber::Value(53_655_765));
        assert_eq!(sdp.origin.session_version.as_u64(), Some(2_353_687_637));
        assert_eq!(sdp.origin.ip(), Some(ip4(127, 0, 0, 1)));
        assert_eq!(sdp.session_name, "-");
        assert_eq!(sdp.connection.as_ref().unwrap().address, ip4(127, 0, 0, 1));
        assert_eq!(sdp.media.len(), 1);
        let audio = &sdp.media[0];
        assert_eq!(audio.kind, MediaKind::Audio);
        assert_eq!((audio.port, audio.port_count), (6000, None));
        assert_eq!(audio.proto, "RTP/AVP");
        assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0]);
        assert!(CodecName::PCMU.matches(&audio.rtpmap(0).unwrap()));
        assert_eq!(sdp.media_direction(audio), Direction::SendRecv);
        assert!(!sdp.is_hold());
    }

    #[test]
    fn baresip_body_with_many_codecs_and_rtcp() {
        let sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        assert_eq!(sdp.origin.username, "-");
        assert_eq!(
            sdp.attribute("tool").unwrap().value.as_deref(),
            Some("baresip 3.10.1")
        );
        let audio = &sdp.media[0];
        assert_eq!(
            audio.payload_types().collect::<Vec<_>>(),
            [96, 97, 98, 9, 0, 8, 101]
        );
        let opus = audio.rtpmap(96).unwrap();
        assert_eq!(
            (opus.encoding.as_str(), opus.clock_rate, opus.channels),
            ("opus", 48000, Some(2))
        );
        assert_eq!(audio.fmtp(96), Some("stereo=1;sprop-stereo=1"));
        assert_eq!(audio.fmtp(101), Some("0-15"));
        assert_eq!(audio.fmtp(0), None);
        assert!(audio.rtpmap(101).unwrap().is_telephone_event());
        let names: Vec<String> = audio.codecs().iter().map(|m| m.encoding.clone()).collect();
        assert_eq!(
            names,
            [
                "opus",
                "G7221",
                "G7221",
                "G722",
                "PCMU",
                "PCMA",
                "telephone-event"
            ]
        );
        assert_eq!(
            audio.rtcp().map(|r| (r.port, r.address)),
            Some((10433, None))
        );
        assert_eq!(audio.ptime(), Some(20));
        assert_eq!(audio.direction(), Some(Direction::SendRecv));
        assert_eq!(audio.fields.len(), 1);
        assert_eq!(
            (audio.fields[0].letter, audio.fields[0].value.as_str()),
            (b'b', "AS:128")
        );
        // Unmodelled attributes stay, in order, with their values.
        let names: Vec<&str> = audio.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            &names[names.len() - 4..],
            ["label", "rtcp-rsize", "ssrc", "ptime"]
        );
        let video = &sdp.media[1];
        assert_eq!(video.kind, MediaKind::Video);
        assert_eq!(video.rtpmap(100).unwrap().clock_rate, 90000);
        assert_eq!(video.rtcp().unwrap().port, 10435);
    }

    #[test]
    fn ipv6_addresses_and_bare_lf() {
        let sdp = Sdp::parse(IPV6.as_bytes()).unwrap();
        let loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(sdp.origin.addr_type, "IP6");
        assert_eq!(sdp.origin.ip(), Some(loopback));
        assert_eq!(sdp.connection.as_ref().unwrap().address, loopback);
        assert_eq!(sdp.session_name, "Talk");
        let audio = &sdp.media[0];
        assert_eq!(sdp.connection_for(audio).unwrap().address, loopback);
        assert_eq!(audio.rtpmap(8).unwrap().encoding, "PCMA");
        let text = String::from_utf8(sdp.encode()).unwrap();
        assert!(text.contains("o=alice 2890844526 2890844526 IN IP6 ::1\r\n"));
        assert!(text.contains("c=IN IP6 ::1\r\n"));
    }

    #[test]
    fn zero_address_is_an_old_style_hold() {
        let sdp = Sdp::parse(HOLD_ZERO_ADDRESS.as_bytes()).unwrap();
        let audio = &sdp.media[0];
        assert!(sdp.connection.as_ref().unwrap().is_unspecified());
        assert_eq!(sdp.media_direction(audio), Direction::SendRecv);
        assert_eq!(sdp.effective_direction(audio), Direction::SendOnly);
        assert!(sdp.is_media_held(audio));
        assert!(sdp.is_hold());
    }

    #[test]
    fn direction_attributes_and_hold_detection() {
        let with = |session: &str, media: &str| {
            let body = format!(
                "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{session}\
                 m=audio 4000 RTP/AVP 0\r\n{media}m=audio 0 RTP/AVP 0\r\n"
            );
            Sdp::parse(body.as_bytes()).unwrap()
        };
        // Session-level direction is inherited by media that have none.
        let sdp = with("a=sendonly\r\n", "");
        assert_eq!(sdp.direction(), Some(Direction::SendOnly));
        assert_eq!(sdp.media[0].direction(), None);
        assert_eq!(sdp.media_direction(&sdp.media[0]), Direction::SendOnly);
        assert!(sdp.is_hold(), "rejected streams do not count");
        // Media-level direction overrides it.
        let sdp = with("a=sendonly\r\n", "a=sendrecv\r\n");
        assert_eq!(sdp.media_direction(&sdp.media[0]), Direction::SendRecv);
        assert!(!sdp.is_hold());
        assert!(with("", "a=inactive\r\n").is_hold());
        assert!(!with("", "a=recvonly\r\n").is_hold());
        // Media-level c=0.0.0.0 overrides a real session address.
        let sdp = with("", "c=IN IP4 0.0.0.0\r\n");
        assert!(sdp.connection_for(&sdp.media[0]).unwrap().is_unspecified());
        assert!(sdp.is_hold());
    }

    #[test]
    fn hold_needs_an_active_stream() {
        let body = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n";
        assert!(!Sdp::parse(body.as_bytes()).unwrap().is_hold());
    }

    #[test]
    fn t38_image_line() {
        let sdp = Sdp::parse(T38.as_bytes()).unwrap();
        assert!(sdp.media[0].is_rejected());
        let image = &sdp.media[1];
        assert_eq!(image.kind, MediaKind::Image);
        assert_eq!(image.proto, "udptl");
        assert_eq!(image.formats, ["t38"]);
        assert_eq!(image.payload_types().count(), 0);
        assert!(!image.is_rtp());
        assert_eq!(image.attribute_value("T38MaxBitRate"), Some("14400"));
        assert_eq!(image.attributes.len(), 6);
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let sdp = Sdp::parse(STATIC_ONLY.as_bytes()).unwrap();
        let audio = &sdp.media[0];
        let codecs: Vec<(u8, String, u32)> = audio
            .codecs()
            .into_iter()
            .map(|m| (m.payload_type, m.encoding, m.clock_rate))
            .collect();
        let expect = [
            (18, "G729", 8000),
            (0, "PCMU", 8000),
            (8, "PCMA", 8000),
            (3, "GSM", 8000),
            (9, "G722", 8000),
            (13, "CN", 8000),
        ];
        assert_eq!(codecs.len(), expect.len());
        for ((pt, name, rate), (ept, ename, erate)) in codecs.iter().zip(expect) {
            assert_eq!((*pt, name.as_str(), *rate), (ept, ename, erate));
        }
        // Leading zeros are kept verbatim; the host name is not an IP.
        assert_eq!(sdp.origin.session_id, OriginNumber::Text("0123".into()));
        assert_eq!(sdp.origin.session_id.as_u64(), Some(123));
        assert_eq!(sdp.origin.ip(), None);
        assert_eq!(sdp.origin.address, "carrier.example.net");
    }

    #[test]
    fn explicit_rtpmap_overrides_the_static_table() {
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 8 97\r\na=rtpmap:8 pcma/8000\r\n";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        assert_eq!(sdp.media[0].rtpmap(8).unwrap().encoding, "pcma");
        assert_eq!(sdp.media[0].rtpmap(97), None, "dynamic type without rtpmap");
        assert_eq!(sdp.media[0].codecs().len(), 1);
    }

    #[test]
    fn odd_but_valid_lines_are_accepted() {
        let body = "\r\nv=0  \r\n\
o=Cisco SIP UA 8890 6091 IN IP4 10.0.0.1\r\n\
i=info\r\n\
c=IN IP4 224.2.1.1/127/3\r\n\
t=0 0\r\n\
x=unknown line\r\n\
a=recvonly\t\r\n\
m=audio 49170/2 RTP/AVP\r\n\
c=IN IP4 10.0.0.2\r\n\
c=IN IP4 10.0.0.3\r\n\
y=media unknown\r\n\
a=flag\r\n\
a=weird:value:with:colons\r\n\
\r\n\0\0";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        assert_eq!(sdp.origin.username, "Cisco SIP UA");
        assert_eq!(sdp.origin.session_id, OriginNumber::Value(8890));
        assert_eq!(sdp.session_name, "-", "missing s= defaults to -");
        let c = sdp.connection.as_ref().unwrap();
        assert_eq!(
            (c.address, c.multicast.as_deref()),
            (ip4(224, 2, 1, 1), Some("/127/3"))
        );
        assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
        let audio = &sdp.media[0];
        assert_eq!((audio.port, audio.port_count), (49170, Some(2)));
        assert!(audio.formats.is_empty());
        assert_eq!(audio.connection.as_ref().unwrap().address, ip4(10, 0, 0, 2));
        let letters: Vec<u8> = audio.fields.iter().map(|f| f.letter).collect();
        assert_eq!(letters, b"cy", "second c= kept verbatim");
        assert_eq!(audio.attribute_value("weird"), Some("value:with:colons"));
        assert!(audio.has_attribute("FLAG"));
    }

    #[test]
    fn large_origin_numbers_are_kept_as_text() {
        let body = "v=0\r\no=- 123456789012345678901234 99999999999999999999 IN IP4 h\r\ns=-\r\n";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        assert_eq!(
            sdp.origin.session_id,
            OriginNumber::Text("123456789012345678901234".into())
        );
        assert_eq!(sdp.origin.session_id.as_u64(), None);
        assert_eq!(
            sdp.origin.session_version.to_string(),
            "99999999999999999999"
        );
        assert!(String::from_utf8(sdp.encode())
            .unwrap()
            .contains("o=- 123456789012345678901234 99999999999999999999 IN IP4 h\r\n"));
    }

    #[test]
    fn malformed_bodies_name_the_line_and_kind() {
        let cases: &[(&str, SdpError)] = &[
            ("", SdpError::Empty),
            ("\r\n\r\n", SdpError::Empty),
            (
                "o=- 1 1 IN IP4 h\r\nv=0\r\n",
                SdpError::VersionNotFirst { line: 1 },
            ),
            ("v=0\r\ns=-\r\n", SdpError::MissingOrigin),
            ("v=0\r\nhello\r\n", SdpError::BadLine { line: 2 }),
            ("v=0\r\n=x\r\n", SdpError::BadLine { line: 2 }),
            ("v=0\r\n\u{e5}=x\r\n", SdpError::BadLine { line: 2 }),
            ("v=0\r\no=- 1 IN IP4 h\r\n", SdpError::BadOrigin { line: 2 }),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\no=- 1 1 IN IP4 h\r\n",
                SdpError::UnexpectedLine {
                    line: 3,
                    letter: 'o',
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nv=0\r\n",
                SdpError::UnexpectedLine {
                    line: 3,
                    letter: 'v',
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 pbx.example.com\r\n",
                SdpError::BadConnection { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n",
                SdpError::BadConnection { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nc=ATM NSAP 1\r\n",
                SdpError::BadConnection { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 1.2.3.4 x\r\n",
                SdpError::BadConnection { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 4000\r\n",
                SdpError::BadMediaLine { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n",
                SdpError::BadMediaPort { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n",
                SdpError::BadMediaPort { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1/x RTP/AVP 0\r\n",
                SdpError::BadMediaPort { line: 3 },
            ),
            (
                "v=0\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\no=- 1 1 IN IP4 h\r\n",
                SdpError::UnexpectedLine {
                    line: 4,
                    letter: 'o',
                },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                Sdp::parse(body.as_bytes()).as_ref(),
                Err(expected),
                "{body:?}"
            );
        }
        assert_eq!(
            SdpError::BadConnection { line: 3 }.to_string(),
            "SDP line 3: malformed c= line"
        );
    }

    #[test]
    fn a_lone_cr_ends_a_line() {
        let body =
            "v=0\r\no=- 1 1 IN IP4 h\r\na=x-note:hi\rc=IN IP4 192.0.2.1\r\nm=audio 1 RTP/AVP 0\r\n";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        assert_eq!(sdp.attributes[0].value.as_deref(), Some("hi"));
        assert!(sdp.connection.is_some());
        assert_eq!(
            Sdp::parse(b"v=0\r\no=- 1 1 IN IP4 h\r\nc=x\rc=IN IP4 1.1.1.1\r\n"),
            Err(SdpError::BadConnection { line: 3 })
        );
    }

    #[test]
    fn invalid_utf8_in_free_text_is_tolerated() {
        let mut body = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=Sesjon p".to_vec();
        body.extend_from_slice(&[0xe5, b'\r', b'\n']);
        let sdp = Sdp::parse(&body).unwrap();
        assert!(sdp.session_name.starts_with("Sesjon p"));
    }

    /// A tiny deterministic generator, so the fuzz-style loops below are reproducible.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn no_panic_on_truncated_mutated_or_random_input() {
        for fixture in [SIPP, BARESIP, IPV6, WEBRTC_ISH, T38, STATIC_ONLY] {
            let bytes = fixture.as_bytes();
            for end in 0..=bytes.len() {
                if let Ok(sdp) = Sdp::parse(&bytes[..end]) {
                    // Whatever parses must re-encode and parse to the same thing.
                    assert_eq!(Sdp::parse(&sdp.encode()).as_ref(), Ok(&sdp));
                    let _ = sdp.is_hold();
                    for m in &sdp.media {
                        let _ = m.codecs();
                    }
                }
            }
        }
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let base = BARESIP.as_bytes();
        for _ in 0..2000 {
            let mut mutated = base.to_vec();
            for _ in 0..4 {
                let at = (xorshift(&mut state) as usize) % mutated.len();
                mutated[at] = xorshift(&mut state) as u8;
            }
            if let Ok(sdp) = Sdp::parse(&mutated) {
                // Re-encoding may reorder lines once; after that it is stable.
                let encoded = sdp.encode();
                let again = Sdp::parse(&encoded).map(|s| s.encode());
                assert_eq!(again.as_deref(), Ok(&encoded[..]), "{mutated:?}");
                let _ = sdp.is_hold();
            }
            let len = (xorshift(&mut state) % 300) as usize;
            let random: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            let _ = Sdp::parse(&random);
            let mut prefixed = b"v=0\r\no=- 1 1 IN IP4 h\r\n".to_vec();
            prefixed.extend_from_slice(&random);
            let _ = Sdp::parse(&prefixed);
        }
    }
}
