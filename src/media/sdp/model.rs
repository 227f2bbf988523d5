//! The SDP data model: session, origin, connection, media lines and attributes.

use std::fmt;
use std::net::IpAddr;

use super::codecs::{parse_payload_type, RtpMap};
use super::Direction;

/// A session description (RFC 8866).
///
/// Lines without a typed field are kept in `fields` / `attributes` in the order they came,
/// so editing and re-encoding keeps what we do not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// The `v=` value, kept verbatim (always `0` today).
    pub version: String,
    /// The `o=` line.
    pub origin: Origin,
    /// The `s=` value; `-` when the body had none.
    pub session_name: String,
    /// The session-level `c=` line.
    pub connection: Option<Connection>,
    /// Other session-level lines (`i u e p b t r z k`, unknown types, repeated `s=`/`c=`).
    pub fields: Vec<Field>,
    /// Session-level `a=` lines in order.
    pub attributes: Vec<Attribute>,
    /// The `m=` sections in order (RFC 3264 matches offer and answer by index).
    pub media: Vec<Media>,
}

/// A line kept as its type letter and raw value (`b=AS:64` is `b` and `AS:64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The type letter before `=`.
    pub letter: u8,
    /// Everything after `=`, without trailing whitespace.
    pub value: String,
}

impl Field {
    /// A field from its letter and value.
    pub fn new(letter: u8, value: impl Into<String>) -> Self {
        Self {
            letter,
            value: value.into(),
        }
    }
}

/// An `a=` line: `a=name` (a flag) or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name before the first `:`.
    pub name: String,
    /// The value after the first `:`, verbatim; `None` for a flag attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// A flag attribute (`a=sendonly`).
    pub fn flag(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: None,
        }
    }

    /// A valued attribute (`a=ptime:20`).
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// True if the name is `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The payload type that starts the value of `rtpmap`, `fmtp`, `rtcp-fb` and similar.
    pub fn leading_payload_type(&self) -> Option<u8> {
        let value = self.value.as_deref()?.trim_start();
        let token = value.split(|c: char| c.is_ascii_whitespace()).next()?;
        parse_payload_type(token)
    }
}

/// The `o=` line: who created the session and which version of it this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `<username>` (`-` when none; may contain spaces in the wild, kept verbatim).
    pub username: String,
    /// `<sess-id>`.
    pub session_id: OriginNumber,
    /// `<sess-version>`: RFC 3264 section 8 increments it when the SDP changes.
    pub session_version: OriginNumber,
    /// `<nettype>`, `IN`.
    pub net_type: String,
    /// `<addrtype>`, `IP4` or `IP6`.
    pub addr_type: String,
    /// `<unicast-address>`: an address or a host name, kept verbatim.
    pub address: String,
}

impl Origin {
    /// An `IN IP4|IP6` origin for an address.
    pub fn new(
        username: impl Into<String>,
        session_id: u64,
        version: u64,
        address: IpAddr,
    ) -> Self {
        Self {
            username: username.into(),
            session_id: OriginNumber::Value(session_id),
            session_version: OriginNumber::Value(version),
            net_type: "IN".to_owned(),
            addr_type: addr_type(address).to_owned(),
            address: address.to_string(),
        }
    }

    /// The address as an IP literal, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// An `o=` number: usually a `u64`, kept as text when it is not one (too long, leading zeros).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OriginNumber {
    /// A number whose decimal spelling is canonical.
    Value(u64),
    /// Anything else, verbatim.
    Text(String),
}

impl OriginNumber {
    /// Reads a token, keeping it as text unless it round-trips as a `u64`.
    pub fn parse(token: &str) -> Self {
        match token.parse::<u64>() {
            Ok(n) if n.to_string() == token => Self::Value(n),
            _ => Self::Text(token.to_owned()),
        }
    }

    /// The numeric value, if any (text with leading zeros still reads as a number).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Value(n) => Some(*n),
            Self::Text(t) => t.parse().ok(),
        }
    }
}

impl fmt::Display for OriginNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// A `c=IN IP4|IP6 <address>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection address; the address type written is derived from it.
    pub address: IpAddr,
    /// The `/ttl[/count]` suffix of a multicast address, verbatim with its leading `/`.
    pub multicast: Option<String>,
}

impl Connection {
    /// A unicast connection line for `address`.
    pub fn new(address: IpAddr) -> Self {
        Self {
            address,
            multicast: None,
        }
    }

    /// True for `0.0.0.0` or `::`, the RFC 2543 way of saying "do not send to me".
    pub fn is_unspecified(&self) -> bool {
        self.address.is_unspecified()
    }
}

impl fmt::Display for Connection {
    /// Writes the `c=` value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", addr_type(self.address), self.address)?;
        if let Some(suffix) = &self.multicast {
            f.write_str(suffix)?;
        }
        Ok(())
    }
}

/// `IP4` or `IP6`.
pub(crate) fn addr_type(address: IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// The `<media>` field of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `image` (T.38 fax).
    Image,
    /// `application`.
    Application,
    /// Anything else (`text`, `message`), verbatim.
    Other(String),
}

impl MediaKind {
    /// Reads the media field (the known kinds case-insensitively).
    pub fn parse(token: &str) -> Self {
        [Self::Audio, Self::Video, Self::Image, Self::Application]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(token))
            .unwrap_or_else(|| Self::Other(token.to_owned()))
    }

    /// The media field as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Image => "image",
            Self::Application => "application",
            Self::Other(s) => s,
        }
    }
}

/// The RFC 3605 `a=rtcp:<port> [IN IP4|IP6 <address>]` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address when it differs from the `c=` address.
    pub address: Option<IpAddr>,
}

impl Rtcp {
    /// Parses an `a=rtcp` value; an address that is not an IP literal is ignored.
    pub fn parse(value: &str) -> Option<Self> {
        let mut tokens = value.split_ascii_whitespace();
        let port = tokens.next()?.parse().ok()?;
        let address = tokens.nth(2).and_then(|a| a.parse().ok());
        Some(Self { port, address })
    }
}

impl fmt::Display for Rtcp {
    /// Writes the `a=rtcp` value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(address) = self.address {
            write!(f, " IN {} {}", addr_type(address), address)?;
        }
        Ok(())
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image`...
    pub kind: MediaKind,
    /// The transport port; 0 marks a rejected or disabled stream (RFC 3264 section 6).
    pub port: u16,
    /// The `/<number of ports>` suffix, if written.
    pub port_count: Option<u16>,
    /// The transport protocol (`RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`).
    pub proto: String,
    /// The format list: payload type numbers for RTP, `t38` for udptl...
    pub formats: Vec<String>,
    /// The media-level `c=` line (overrides the session one).
    pub connection: Option<Connection>,
    /// Other media-level lines (`i b k`, unknown types, repeated `c=`).
    pub fields: Vec<Field>,
    /// Media-level `a=` lines in order.
    pub attributes: Vec<Attribute>,
}

impl Media {
    /// A media section with no attributes.
    pub fn new(kind: MediaKind, port: u16, proto: impl Into<String>, formats: Vec<String>) -> Self {
        Self {
            kind,
            port,
            port_count: None,
            proto: proto.into(),
            formats,
            connection: None,
            fields: Vec::new(),
            attributes: Vec::new(),
        }
    }

    /// True if the port is 0 (rejected or disabled stream).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// True for an RTP profile (`RTP/AVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVPF`...).
    pub fn is_rtp(&self) -> bool {
        self.proto.to_ascii_uppercase().contains("RTP/")
    }

    /// True for a secure transport (SRTP or (D)TLS) that a plain relay cannot carry.
    pub fn is_secure(&self) -> bool {
        let proto = self.proto.to_ascii_uppercase();
        proto.contains("SAVP") || proto.contains("TLS")
    }

    /// The formats that are RTP payload types (0-127), in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| parse_payload_type(f))
    }

    /// The first attribute called `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attribute(&self.attributes, name)
    }

    /// The value of the first attribute called `name`.
    pub fn attribute_value(&self, name: &str) -> Option<&str> {
        self.attribute(name).and_then(|a| a.value.as_deref())
    }

    /// True if an attribute called `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The codec for a payload type: its `a=rtpmap`, else the RFC 3551 static mapping.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.attributes
            .iter()
            .filter(|a| a.is("rtpmap") && a.leading_payload_type() == Some(payload_type))
            .find_map(|a| a.value.as_deref().and_then(RtpMap::parse))
            .or_else(|| RtpMap::from_static(payload_type))
    }

    /// The known codecs in format order (dynamic types without `a=rtpmap` are skipped).
    pub fn codecs(&self) -> Vec<RtpMap> {
        self.payload_types()
            .filter_map(|pt| self.rtpmap(pt))
            .collect()
    }

    /// The format parameters of a payload type (`a=fmtp:<pt> <params>`), without the type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.is("fmtp") && a.leading_payload_type() == Some(payload_type))
            .find_map(|a| {
                let value = a.value.as_deref()?.trim_start();
                let after_pt = value.trim_start_matches(|c: char| c.is_ascii_digit());
                Some(after_pt.trim())
            })
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Replaces the media-level direction attributes by `direction`, keeping its position.
    pub fn set_direction(&mut self, direction: Direction) {
        set_direction_in(&mut self.attributes, direction);
    }

    /// The `a=ptime` value in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute_value("ptime")?.trim().parse().ok()
    }

    /// The RFC 3605 `a=rtcp` attribute.
    pub fn rtcp(&self) -> Option<Rtcp> {
        self.attribute_value("rtcp").and_then(Rtcp::parse)
    }

    /// Sets `a=rtcp` (replacing the first one in place, dropping others) or removes it.
    pub fn set_rtcp(&mut self, rtcp: Option<Rtcp>) {
        let position = self.attributes.iter().position(|a| a.is("rtcp"));
        self.attributes.retain(|a| !a.is("rtcp"));
        if let Some(rtcp) = rtcp {
            let attribute = Attribute::new("rtcp", rtcp.to_string());
            let at = position
                .unwrap_or(self.attributes.len())
                .min(self.attributes.len());
            self.attributes.insert(at, attribute);
        }
    }
}

impl Sdp {
    /// A minimal session: `v=0`, the origin, `s=-`, `t=0 0`, no media.
    pub fn new(origin: Origin) -> Self {
        Self {
            version: "0".to_owned(),
            origin,
            session_name: "-".to_owned(),
            connection: None,
            fields: vec![Field::new(b't', "0 0")],
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The first session-level attribute called `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attribute(&self.attributes, name)
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// The connection that applies to `media`: its own `c=`, else the session's.
    pub fn connection_for<'a>(&'a self, media: &'a Media) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction written for `media`: its own attribute, else the session's, else sendrecv.
    pub fn media_direction(&self, media: &Media) -> Direction {
        media.direction().or(self.direction()).unwrap_or_default()
    }

    /// [`Self::media_direction`], without receive when the connection is `0.0.0.0`/`::`.
    pub fn effective_direction(&self, media: &Media) -> Direction {
        let direction = self.media_direction(media);
        if self
            .connection_for(media)
            .is_some_and(Connection::is_unspecified)
        {
            direction.without_receive()
        } else {
            direction
        }
    }

    /// True if `media` is an active stream its writer put on hold (sendonly, inactive, or
    /// the old `c=0.0.0.0` style).
    pub fn is_media_held(&self, media: &Media) -> bool {
        !media.is_rejected() && !self.effective_direction(media).receives()
    }

    /// True if there is an active stream and every active stream is on hold.
    pub fn is_hold(&self) -> bool {
        let mut active = self.media.iter().filter(|m| !m.is_rejected()).peekable();
        active.peek().is_some() && active.all(|m| self.is_media_held(m))
    }
}

fn find_attribute<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes.iter().find(|a| a.is(name))
}

fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes
        .iter()
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::from_attribute(&a.name))
}

fn set_direction_in(attributes: &mut Vec<Attribute>, direction: Direction) {
    let is_direction =
        |a: &Attribute| a.value.is_none() && Direction::from_attribute(&a.name).is_some();
    let position = attributes.iter().position(is_direction);
    attributes.retain(|a| !is_direction(a));
    let at = position.unwrap_or(attributes.len()).min(attributes.len());
    attributes.insert(at, Attribute::flag(direction.as_str()));
}
