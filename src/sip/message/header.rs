//! Header names (with compact forms) and raw headers kept byte-exact for relaying.

use bytes::Bytes;
use std::borrow::Cow;

/// A header name the switch interprets, or any other name kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Accept,
    Allow,
    Authorization,
    CallId,
    Contact,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    Event,
    Expires,
    From,
    MaxForwards,
    MinExpires,
    MinSe,
    Path,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    Require,
    RetryAfter,
    Route,
    Server,
    SessionExpires,
    Subject,
    Supported,
    Timestamp,
    To,
    Unsupported,
    UserAgent,
    Via,
    WwwAuthenticate,
    /// Any header the switch does not interpret; relayed unchanged.
    Other,
}

impl HeaderName {
    /// Classifies a header name (case-insensitive, compact forms of RFC 3261 s7.3.3 included).
    pub fn classify(name: &[u8]) -> HeaderName {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'i' => HeaderName::CallId,
                b'm' => HeaderName::Contact,
                b'e' => HeaderName::ContentEncoding,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'f' => HeaderName::From,
                b's' => HeaderName::Subject,
                b'k' => HeaderName::Supported,
                b't' => HeaderName::To,
                b'v' => HeaderName::Via,
                b'o' => HeaderName::Event,
                b'x' => HeaderName::SessionExpires,
                _ => HeaderName::Other,
            };
        }
        const TABLE: &[(&[u8], HeaderName)] = &[
            (b"via", HeaderName::Via),
            (b"from", HeaderName::From),
            (b"to", HeaderName::To),
            (b"call-id", HeaderName::CallId),
            (b"cseq", HeaderName::CSeq),
            (b"contact", HeaderName::Contact),
            (b"max-forwards", HeaderName::MaxForwards),
            (b"content-length", HeaderName::ContentLength),
            (b"content-type", HeaderName::ContentType),
            (b"content-encoding", HeaderName::ContentEncoding),
            (b"route", HeaderName::Route),
            (b"record-route", HeaderName::RecordRoute),
            (b"expires", HeaderName::Expires),
            (b"min-expires", HeaderName::MinExpires),
            (b"authorization", HeaderName::Authorization),
            (b"proxy-authorization", HeaderName::ProxyAuthorization),
            (b"www-authenticate", HeaderName::WwwAuthenticate),
            (b"proxy-authenticate", HeaderName::ProxyAuthenticate),
            (b"require", HeaderName::Require),
            (b"proxy-require", HeaderName::ProxyRequire),
            (b"supported", HeaderName::Supported),
            (b"unsupported", HeaderName::Unsupported),
            (b"allow", HeaderName::Allow),
            (b"accept", HeaderName::Accept),
            (b"user-agent", HeaderName::UserAgent),
            (b"server", HeaderName::Server),
            (b"date", HeaderName::Date),
            (b"timestamp", HeaderName::Timestamp),
            (b"retry-after", HeaderName::RetryAfter),
            (b"subject", HeaderName::Subject),
            (b"event", HeaderName::Event),
            (b"path", HeaderName::Path),
            (b"min-se", HeaderName::MinSe),
            (b"session-expires", HeaderName::SessionExpires),
        ];
        TABLE
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, h)| h.clone())
            .unwrap_or(HeaderName::Other)
    }

    /// The canonical long name written when sentralbord creates the header itself.
    pub fn canonical(&self) -> &'static str {
        match self {
            HeaderName::Accept => "Accept",
            HeaderName::Allow => "Allow",
            HeaderName::Authorization => "Authorization",
            HeaderName::CallId => "Call-ID",
            HeaderName::Contact => "Contact",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::CSeq => "CSeq",
            HeaderName::Date => "Date",
            HeaderName::Event => "Event",
            HeaderName::Expires => "Expires",
            HeaderName::From => "From",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::MinSe => "Min-SE",
            HeaderName::Path => "Path",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Require => "Require",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Route => "Route",
            HeaderName::Server => "Server",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::Subject => "Subject",
            HeaderName::Supported => "Supported",
            HeaderName::Timestamp => "Timestamp",
            HeaderName::To => "To",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Via => "Via",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::Other => "",
        }
    }
}

/// One header line: its name as received and its value, byte-exact (folding included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The interpreted name.
    pub name: HeaderName,
    /// The name exactly as received (or as written by us).
    pub raw_name: Bytes,
    /// The value with surrounding whitespace trimmed; may contain CRLF folding.
    pub value: Bytes,
}

impl Header {
    /// A header created by sentralbord with its canonical name.
    pub fn new(name: HeaderName, value: impl Into<Bytes>) -> Header {
        Header {
            raw_name: Bytes::from_static(name.canonical().as_bytes()),
            name,
            value: value.into(),
        }
    }

    /// A header with a name sentralbord does not interpret (for example `X-...`).
    pub fn other(name: &'static str, value: impl Into<Bytes>) -> Header {
        Header {
            name: HeaderName::classify(name.as_bytes()),
            raw_name: Bytes::from_static(name.as_bytes()),
            value: value.into(),
        }
    }

    /// The value with line folding replaced by single spaces (RFC 3261 s7.3.1).
    pub fn unfolded(&self) -> Cow<'_, [u8]> {
        unfold(&self.value)
    }
}

/// Replaces every CRLF (or LF) followed by whitespace with one space.
pub fn unfold(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        if b == b'\r' || b == b'\n' {
            // Swallow the line break and the whitespace that follows; keep one SP.
            while i < v.len() && matches!(v[i], b'\r' | b'\n' | b' ' | b'\t') {
                i += 1;
            }
            while out.last().is_some_and(|c| *c == b' ' || *c == b'\t') {
                out.pop();
            }
            out.push(b' ');
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// RFC 3261 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// True when `s` is a non-empty token.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_char(b))
}

/// Trims spaces and tabs (and folding) from both ends.
pub fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(*b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Splits a header value at top-level commas (outside quotes and `<...>`), trimming each part.
///
/// Returns `None` when a quoted string or an angle bracket is left open.
pub fn split_commas(v: &[u8]) -> Option<Vec<&[u8]>> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut start = 0;
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' if in_quotes => i += 1,
            b'"' if !in_angle => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => {
                parts.push(trim(&v[start..i]));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_quotes || in_angle {
        return None;
    }
    parts.push(trim(&v[start..]));
    Some(parts)
}

/// Looks up a `;name=value` or `;name` parameter in a raw parameter string (case-insensitive name).
///
/// Returns `Some(None)` for a parameter without value, `Some(Some(v))` with its (unquoted) value.
pub fn find_param<'a>(params: &'a [u8], name: &str) -> Option<Option<&'a [u8]>> {
    for p in ParamIter::new(params) {
        if p.0.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(p.1);
        }
    }
    None
}

/// Iterates `;name[=value]` parameters of a raw parameter string, respecting quoted values.
pub struct ParamIter<'a> {
    rest: &'a [u8],
}

impl<'a> ParamIter<'a> {
    /// Starts iterating; a leading `;` is optional.
    pub fn new(params: &'a [u8]) -> Self {
        Self { rest: params }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest;
            if rest.is_empty() {
                return None;
            }
            // Find the end of this parameter: the next ';' outside quotes.
            let mut in_quotes = false;
            let mut end = rest.len();
            let mut i = 0;
            while i < rest.len() {
                match rest[i] {
                    b'\\' if in_quotes => i += 1,
                    b'"' => in_quotes = !in_quotes,
                    b';' if !in_quotes => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let item = &rest[..end];
            self.rest = if end < rest.len() {
                &rest[end + 1..]
            } else {
                &[]
            };
            let item = trim(item);
            if item.is_empty() {
                continue;
            }
            return Some(match item.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    let v = trim(&item[eq + 1..]);
                    let v = if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
                        &v[1..v.len() - 1]
                    } else {
                        v
                    };
                    (trim(&item[..eq]), Some(v))
                }
                None => (item, None),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_names_classify() {
        for (c, h) in [
            ("v", HeaderName::Via),
            ("F", HeaderName::From),
            ("t", HeaderName::To),
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("l", HeaderName::ContentLength),
            ("k", HeaderName::Supported),
        ] {
            assert_eq!(HeaderName::classify(c.as_bytes()), h);
        }
        assert_eq!(HeaderName::classify(b"cAlL-iD"), HeaderName::CallId);
        assert_eq!(HeaderName::classify(b"X-Foo"), HeaderName::Other);
    }

    #[test]
    fn unfold_joins_lines() {
        assert_eq!(&*unfold(b"a,\r\n  b"), b"a, b");
        assert_eq!(&*unfold(b"plain"), b"plain");
    }

    #[test]
    fn split_commas_respects_quotes_and_angles() {
        let v = br#""a, b" <sip:x@y;p=1,2>, <sip:z@w>"#;
        let parts = split_commas(v).expect("balanced");
        assert_eq!(parts.len(), 2);
        assert!(split_commas(br#""open"#).is_none());
    }

    #[test]
    fn params() {
        let p = b";branch=z9hG4bK1;rport;received=1.2.3.4; q = \"x;y\"";
        assert_eq!(find_param(p, "BRANCH"), Some(Some(&b"z9hG4bK1"[..])));
        assert_eq!(find_param(p, "rport"), Some(None));
        assert_eq!(find_param(p, "q"), Some(Some(&b"x;y"[..])));
        assert_eq!(find_param(p, "maddr"), None);
    }
}
