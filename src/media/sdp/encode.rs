//! SDP encoding: CRLF lines in RFC 8866 order.

use std::fmt::{self, Write as _};

use super::model::{Attribute, Field, Media, Sdp};

impl Sdp {
    /// The body to send: CRLF lines, session part in `v o s i u e p c b t r z k a` order,
    /// then each media section in `m i c b k a` order. Lines of one type keep their order
    /// (and `r=` stays with its `t=`).
    pub fn encode(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Sdp {
    /// Writes the encoded body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        line(f, b'v', &self.version)?;
        let o = &self.origin;
        line(
            f,
            b'o',
            format_args!(
                "{} {} {} {} {} {}",
                o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
            ),
        )?;
        line(f, b's', &self.session_name)?;
        let fields = sorted(&self.fields, session_rank);
        let connection_rank = session_rank(b'c');
        for field in fields
            .iter()
            .filter(|x| session_rank(x.letter) < connection_rank)
        {
            line(f, field.letter, &field.value)?;
        }
        if let Some(c) = &self.connection {
            line(f, b'c', c)?;
        }
        for field in fields
            .iter()
            .filter(|x| session_rank(x.letter) >= connection_rank)
        {
            line(f, field.letter, &field.value)?;
        }
        attributes(f, &self.attributes)?;
        self.media.iter().try_for_each(|m| media(f, m))
    }
}

fn media(f: &mut fmt::Formatter<'_>, m: &Media) -> fmt::Result {
    f.write_str("m=")?;
    f.write_str(m.kind.as_str())?;
    write!(f, " {}", m.port)?;
    if let Some(count) = m.port_count {
        write!(f, "/{count}")?;
    }
    write!(f, " {}", m.proto)?;
    for format in &m.formats {
        write!(f, " {format}")?;
    }
    f.write_str("\r\n")?;
    let fields = sorted(&m.fields, media_rank);
    let connection_rank = media_rank(b'c');
    for field in fields
        .iter()
        .filter(|x| media_rank(x.letter) < connection_rank)
    {
        line(f, field.letter, &field.value)?;
    }
    if let Some(c) = &m.connection {
        line(f, b'c', c)?;
    }
    for field in fields
        .iter()
        .filter(|x| media_rank(x.letter) >= connection_rank)
    {
        line(f, field.letter, &field.value)?;
    }
    attributes(f, &m.attributes)
}

fn attributes(f: &mut fmt::Formatter<'_>, attributes: &[Attribute]) -> fmt::Result {
    for a in attributes {
        match &a.value {
            Some(value) => line(f, b'a', format_args!("{}:{value}", a.name))?,
            None => line(f, b'a', &a.name)?,
        }
    }
    Ok(())
}

fn line(f: &mut fmt::Formatter<'_>, letter: u8, value: impl fmt::Display) -> fmt::Result {
    f.write_char(char::from(letter))?;
    write!(f, "={value}\r\n")
}

/// The fields in rank order; the sort is stable, so equal ranks keep their order.
fn sorted(fields: &[Field], rank: fn(u8) -> u8) -> Vec<&Field> {
    let mut sorted: Vec<&Field> = fields.iter().collect();
    sorted.sort_by_key(|x| rank(x.letter));
    sorted
}

/// Session-level order after `v o s`; `r=` shares `t=`'s rank to stay with it.
fn session_rank(letter: u8) -> u8 {
    match letter {
        b'i' => 1,
        b'u' => 2,
        b'e' => 3,
        b'p' => 4,
        b'c' => 5,
        b'b' => 6,
        b't' | b'r' => 7,
        b'z' => 8,
        b'k' => 9,
        _ => 10,
    }
}

/// Media-level order after `m`.
fn media_rank(letter: u8) -> u8 {
    match letter {
        b'i' => 1,
        b'c' => 2,
        b'b' => 3,
        b'k' => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Attribute, Direction, Rtcp, Sdp};

    #[test]
    fn canonical_bodies_round_trip_byte_for_byte() {
        for fixture in [
            SIPP,
            BARESIP,
            HOLD_ZERO_ADDRESS,
            WEBRTC_ISH,
            WEBRTC_DTLS,
            T38,
            STATIC_ONLY,
        ] {
            let sdp = Sdp::parse(fixture.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(sdp.encode()).unwrap(), fixture);
        }
    }

    #[test]
    fn bare_lf_and_trailing_whitespace_become_clean_crlf() {
        let sdp = Sdp::parse(IPV6.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(sdp.encode()).unwrap(),
            IPV6.replace('\n', "\r\n")
        );
        let messy =
            "v=0 \no=- 1 1 IN IP4 10.0.0.1\t\r\ns=-\r\nt=0 0   \nm=audio 4000 RTP/AVP 0  \r\n";
        let clean = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            Sdp::parse(messy.as_bytes()).unwrap().encode(),
            clean.as_bytes()
        );
    }

    #[test]
    fn lines_are_written_in_rfc_order() {
        let shuffled = "v=0\r\n\
o=- 1 1 IN IP4 10.0.0.1\r\n\
a=tool:x\r\n\
t=1 2\r\n\
r=7d 1h 0 25h\r\n\
t=3 4\r\n\
k=prompt\r\n\
c=IN IP4 10.0.0.1\r\n\
b=CT:128\r\n\
z=2882844526 -1h\r\n\
x=unknown\r\n\
s=Shuffled\r\n\
e=ops@example.com\r\n\
i=about\r\n\
m=audio 4000 RTP/AVP 0\r\n\
a=sendonly\r\n\
b=AS:64\r\n\
c=IN IP4 10.0.0.2\r\n\
i=audio\r\n";
        let ordered = "v=0\r\n\
o=- 1 1 IN IP4 10.0.0.1\r\n\
s=Shuffled\r\n\
i=about\r\n\
e=ops@example.com\r\n\
c=IN IP4 10.0.0.1\r\n\
b=CT:128\r\n\
t=1 2\r\n\
r=7d 1h 0 25h\r\n\
t=3 4\r\n\
z=2882844526 -1h\r\n\
k=prompt\r\n\
x=unknown\r\n\
a=tool:x\r\n\
m=audio 4000 RTP/AVP 0\r\n\
i=audio\r\n\
c=IN IP4 10.0.0.2\r\n\
b=AS:64\r\n\
a=sendonly\r\n";
        let sdp = Sdp::parse(shuffled.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(sdp.encode()).unwrap(), ordered);
        // Encoding is idempotent: the ordered body re-encodes unchanged.
        assert_eq!(
            Sdp::parse(ordered.as_bytes()).unwrap().encode(),
            ordered.as_bytes()
        );
    }

    #[test]
    fn edits_keep_attribute_positions() {
        let mut sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        let audio = &mut sdp.media[0];
        audio.set_direction(Direction::SendOnly);
        audio.set_rtcp(Some(Rtcp {
            port: 30001,
            address: None,
        }));
        let text = String::from_utf8(sdp.encode()).unwrap();
        let expected = BARESIP.replacen(
            "a=rtcp:10433\r\na=sendrecv",
            "a=rtcp:30001\r\na=sendonly",
            1,
        );
        assert_eq!(text, expected);

        let audio = &mut sdp.media[0];
        audio.set_rtcp(None);
        assert_eq!(audio.rtcp(), None);
        audio.attributes.clear();
        audio.set_direction(Direction::Inactive);
        audio.set_rtcp(Some(Rtcp {
            port: 5,
            address: Some("::1".parse().unwrap()),
        }));
        assert_eq!(
            audio.attributes,
            [
                Attribute::flag("inactive"),
                Attribute::new("rtcp", "5 IN IP6 ::1")
            ]
        );
    }
}
