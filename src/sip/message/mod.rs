//! The SIP message codec: zero-copy parsing over `bytes::Bytes`, lazy typed headers,
//! and serialization that keeps every header it did not interpret byte-exact.
//!
//! - [`parse`] frames a message (start line, headers, body by Content-Length) and runs
//!   the structural checks every element needs (mandatory headers present and well formed,
//!   single-value headers not repeated, CSeq method matching). Other headers are parsed
//!   only when asked for ([`Message::contacts`], [`Message::expires`], ...).
//! - A request that fails the checks keeps its raw headers so a 400 can still be built
//!   from it ([`parse::Parsed::Invalid`]); see [`ParseError::status`] for the mapping.

pub mod error;
pub mod header;
pub mod name_addr;
pub mod parse;
pub mod uri;
pub mod via;

pub use error::ParseError;
pub use header::{Header, HeaderName};
pub use name_addr::NameAddr;
pub use parse::{parse, Parsed};
pub use uri::{Host, Scheme, Uri};
pub use via::Via;

use crate::sip::Method;
use bytes::{BufMut, Bytes, BytesMut};

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
// Boxing the large variant would cost an allocation per message on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum StartLine {
    /// `Method Request-URI SIP/2.0`.
    Request { method: Method, uri: Uri },
    /// `SIP/2.0 code reason`.
    Response { code: u16, reason: Bytes },
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (below 2^31, RFC 3261 s8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

/// One value of a Contact header.
#[derive(Debug, Clone, PartialEq, Eq)]
// Boxing the large variant would cost an allocation per message on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum ContactValue {
    /// `Contact: *` (only valid in REGISTER with Expires: 0).
    Star,
    /// A contact address with its header parameters.
    Addr(NameAddr),
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    /// Headers in order, byte-exact.
    pub headers: Vec<Header>,
    /// The body (exactly Content-Length octets when received).
    pub body: Bytes,
}

impl Message {
    /// A new request with no headers.
    pub fn request(method: Method, uri: Uri) -> Message {
        Message {
            start: StartLine::Request { method, uri },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The request method, or the CSeq method of a response.
    pub fn method(&self) -> Option<Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method.clone()),
            StartLine::Response { .. } => self.cseq().ok().map(|c| c.method),
        }
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first header with this name.
    pub fn header(&self, name: &HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| &h.name == name)
    }

    /// Every header with this name, in order.
    pub fn headers_named<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl Iterator<Item = &'a Header> + 'a {
        self.headers.iter().filter(move |h| &h.name == name)
    }

    /// Every header whose name matches `name` case-insensitively (for uninterpreted headers).
    pub fn headers_raw<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.raw_name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Comma-separated values of every header with this name, in order.
    pub fn values<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl Iterator<Item = (&'a Header, Bytes)> + 'a {
        self.headers_named(name).flat_map(|h| {
            let un = h.unfolded();
            let vals: Vec<Bytes> = match header::split_commas(&un) {
                Some(parts) => parts
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| match &un {
                        std::borrow::Cow::Borrowed(_) => uri::slice_of(&h.value, p),
                        std::borrow::Cow::Owned(_) => Bytes::copy_from_slice(p),
                    })
                    .collect(),
                None => vec![h.value.clone()],
            };
            vals.into_iter().map(move |v| (h, v))
        })
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via, via::ViaError>> + '_ {
        self.values(&HeaderName::Via)
            .map(|(_, v)| Via::parse_in(&v, &v))
    }

    /// The top Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        self.vias()
            .next()
            .ok_or(ParseError::Missing("Via"))?
            .map_err(|_| ParseError::Malformed("Via"))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&Bytes> {
        self.header(&HeaderName::CallId).map(|h| &h.value)
    }

    /// The parsed CSeq header.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        let h = self
            .header(&HeaderName::CSeq)
            .ok_or(ParseError::Missing("CSeq"))?;
        parse::parse_cseq(&h.unfolded())
    }

    /// The parsed From header.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        self.name_addr(&HeaderName::From, "From")
    }

    /// The parsed To header.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        self.name_addr(&HeaderName::To, "To")
    }

    fn name_addr(&self, name: &HeaderName, label: &'static str) -> Result<NameAddr, ParseError> {
        let h = self.header(name).ok_or(ParseError::Missing(label))?;
        let un = h.unfolded();
        NameAddr::parse_in(&h.value, &un).map_err(|_| ParseError::Malformed(label))
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.header(&HeaderName::MaxForwards) {
            None => Ok(None),
            Some(h) => {
                parse::parse_small_int(&h.unfolded(), "Max-Forwards", 255).map(|v| Some(v as u8))
            }
        }
    }

    /// The Expires header (delta-seconds), if present.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.header(&HeaderName::Expires) {
            None => Ok(None),
            Some(h) => parse::parse_small_int(&h.unfolded(), "Expires", u32::MAX).map(Some),
        }
    }

    /// Every Contact value.
    pub fn contacts(&self) -> Result<Vec<ContactValue>, ParseError> {
        let mut out = Vec::new();
        for h in self.headers_named(&HeaderName::Contact) {
            let un = h.unfolded();
            let parts = header::split_commas(&un).ok_or(ParseError::Malformed("Contact"))?;
            for p in parts {
                if p == b"*" {
                    out.push(ContactValue::Star);
                } else if p.is_empty() {
                    return Err(ParseError::Malformed("Contact"));
                } else {
                    let whole = match &un {
                        std::borrow::Cow::Borrowed(_) => h.value.clone(),
                        std::borrow::Cow::Owned(o) => Bytes::copy_from_slice(o),
                    };
                    let p = uri::slice_of(&whole, p);
                    out.push(ContactValue::Addr(
                        NameAddr::parse_in(&p, &p).map_err(|_| ParseError::Malformed("Contact"))?,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Option tags of every Require (or Proxy-Require) header.
    pub fn option_tags(&self, name: &HeaderName) -> Vec<Bytes> {
        self.values(name).map(|(_, v)| v).collect()
    }

    /// Adds a header at the end.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.headers.push(Header::new(name, value));
    }

    /// Removes every header with this name.
    pub fn remove(&mut self, name: &HeaderName) {
        self.headers.retain(|h| &h.name != name);
    }

    /// Serializes the message. Content-Length is written from the body, replacing any
    /// received value, so a relayed message is always framed right.
    pub fn encode(&self) -> Bytes {
        let mut len = 64 + self.body.len();
        for h in &self.headers {
            len += h.raw_name.len() + h.value.len() + 4;
        }
        let mut out = BytesMut::with_capacity(len);
        match &self.start {
            StartLine::Request { method, uri } => {
                out.put_slice(method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(&uri.raw);
                out.put_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.put_slice(b"SIP/2.0 ");
                out.put_slice(itoa_u16(*code).as_bytes());
                out.put_u8(b' ');
                out.put_slice(reason);
                out.put_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            if h.name == HeaderName::ContentLength {
                continue;
            }
            out.put_slice(&h.raw_name);
            out.put_slice(b": ");
            out.put_slice(&h.value);
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"Content-Length: ");
        out.put_slice(self.body.len().to_string().as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(&self.body);
        out.freeze()
    }

    /// Builds a response to `req` (RFC 3261 s8.2.6.2): Via, From, To, Call-ID and CSeq
    /// copied; `to_tag` added to To when the request's To has none.
    pub fn response_to(
        req: &Message,
        code: u16,
        reason: &'static str,
        to_tag: Option<&str>,
    ) -> Message {
        Self::response_to_with_reason(req, code, Bytes::from_static(reason.as_bytes()), to_tag)
    }

    /// Like [`Message::response_to`] with a reason phrase built at run time.
    pub fn response_to_with_reason(
        req: &Message,
        code: u16,
        reason: Bytes,
        to_tag: Option<&str>,
    ) -> Message {
        let mut headers = Vec::with_capacity(8);
        for h in &req.headers {
            match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    headers.push(h.clone())
                }
                HeaderName::To => {
                    let has_tag = req.to().map(|t| t.tag().is_some()).unwrap_or(true);
                    match (to_tag, has_tag) {
                        (Some(tag), false) => {
                            let mut v = BytesMut::with_capacity(h.value.len() + tag.len() + 5);
                            v.put_slice(&h.value);
                            v.put_slice(b";tag=");
                            v.put_slice(tag.as_bytes());
                            headers.push(Header {
                                name: HeaderName::To,
                                raw_name: h.raw_name.clone(),
                                value: v.freeze(),
                            });
                        }
                        _ => headers.push(h.clone()),
                    }
                }
                _ => {}
            }
        }
        Message {
            start: StartLine::Response { code, reason },
            headers,
            body: Bytes::new(),
        }
    }
}

fn itoa_u16(v: u16) -> String {
    v.to_string()
}

#[cfg(test)]
mod torture_tests {
    //! RFC 4475 / RFC 5118 torture messages at the parser level. The application-level
    //! cases (416, 420, 415, ...) are valid to the parser and checked against the daemon
    //! in tests/torture.rs.
    use super::*;
    use std::path::Path;

    fn load(rel: &str) -> Bytes {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/interop")
            .join(rel);
        Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display())))
    }

    /// Files that must fail to parse, with the error class expected.
    const INVALID: &[(&str, u16)] = &[
        ("rfc4475/badinv01.dat", 400),
        ("rfc4475/clerr.dat", 400),
        ("rfc4475/ncl.dat", 400),
        ("rfc4475/scalar02.dat", 400),
        ("rfc4475/quotbal.dat", 400),
        ("rfc4475/ltgtruri.dat", 400),
        ("rfc4475/lwsruri.dat", 400),
        ("rfc4475/lwsstart.dat", 400),
        ("rfc4475/trws.dat", 400),
        ("rfc4475/escruri.dat", 400),
        ("rfc4475/badaspec.dat", 400),
        ("rfc4475/baddn.dat", 400),
        ("rfc4475/badvers.dat", 505),
        ("rfc4475/mismatch01.dat", 400),
        ("rfc4475/mismatch02.dat", 400),
        ("rfc4475/insuf.dat", 400),
        ("rfc4475/multi01.dat", 400),
        ("rfc4475/mcl01.dat", 400),
        ("rfc5118/ipv6-bad", 400),
        // RFC 5118 s4.10 lets an element accept or reject ':::'; we reject it, because
        // std's IPv6 parser (the strict RFC 4291 grammar) does.
        ("rfc5118/ipv6-bug-abnf-3-colons", 400),
    ];

    /// Responses that must be discarded (no response to a response).
    const DISCARDED_RESPONSES: &[&str] = &["rfc4475/scalarlg.dat", "rfc4475/bigcode.dat"];

    /// regbadct is malformed (RFC 4475 s3.1.2.13): the parser accepts the message, the
    /// Contact value itself is rejected when a registrar reads it.
    const BAD_CONTACT: &[&str] = &["rfc4475/regbadct.dat"];

    #[test]
    fn every_fixture_is_classified() {
        let index = String::from_utf8(load("INDEX.tsv").to_vec()).expect("utf8 index");
        let mut seen = 0;
        for line in index.lines().skip(1) {
            let file = line.split('\t').next().expect("file column");
            let data = load(file);
            seen += 1;
            let parsed = parse(data.clone());
            if let Some((_, code)) = INVALID.iter().find(|(f, _)| *f == file) {
                match parsed {
                    Parsed::Invalid { error, partial } => {
                        assert_eq!(error.status().0, *code, "{file}: {error:?}");
                        assert!(
                            partial.is_some(),
                            "{file}: a request must keep its headers for the 400"
                        );
                    }
                    Parsed::Valid(_) => panic!("{file}: parsed but must be rejected"),
                }
            } else if DISCARDED_RESPONSES.contains(&file) {
                assert!(
                    matches!(parsed, Parsed::Invalid { partial: None, .. }),
                    "{file}"
                );
            } else {
                let msg = match parsed {
                    Parsed::Valid(m) => m,
                    Parsed::Invalid { error, .. } => panic!("{file}: must parse, got {error:?}"),
                };
                if BAD_CONTACT.contains(&file) {
                    assert!(msg.contacts().is_err(), "{file}");
                }
                // Re-encoding keeps every header and re-parses.
                let again = match parse(msg.encode()) {
                    Parsed::Valid(m) => m,
                    Parsed::Invalid { error, .. } => panic!("{file}: re-encoded fails: {error:?}"),
                };
                let count = |m: &Message| {
                    m.headers
                        .iter()
                        .filter(|h| h.name != HeaderName::ContentLength)
                        .count()
                };
                assert_eq!(count(&again), count(&msg), "{file}");
                assert_eq!(again.body, msg.body, "{file}");
            }
            // Every prefix and a few corruptions never panic.
            for n in (0..data.len()).step_by(7) {
                let _ = parse(data.slice(..n));
            }
        }
        assert_eq!(seen, 61, "INDEX.tsv lists 49 + 12 messages");
    }

    #[test]
    fn specific_torture_details() {
        let m = match parse(load("rfc4475/esc01.dat")) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("{error:?}"),
        };
        let uri = m.request_uri().expect("request");
        assert_eq!(uri.user.as_deref(), Some(&b"sips%3Auser%40example.com"[..]));
        assert_eq!(
            uri.user_unescaped().as_deref(),
            Some(&b"sips:user@example.com"[..])
        );
        let m = match parse(load("rfc4475/dblreq.dat")) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("{error:?}"),
        };
        assert_eq!(m.method(), Some(Method::Register));
        let m = match parse(load("rfc4475/wsinv.dat")) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("{error:?}"),
        };
        assert!(m.header(&HeaderName::Via).is_some());
        let m = match parse(load("rfc5118/port-ambiguous")) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("{error:?}"),
        };
        assert_eq!(m.request_uri().and_then(|u| u.port), None);
    }
}
