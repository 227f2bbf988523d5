//! Framing and structural checks of one SIP message (a datagram, or a frame cut by the
//! stream framer). Never panics; never reads past the given bytes.

use super::error::ParseError;
use super::header::{is_token, is_token_char, trim, Header, HeaderName};
use super::uri::{Scheme, Uri};
use super::{CSeq, Message, StartLine};
use crate::sip::Method;
use bytes::Bytes;

/// The outcome of parsing one message.
#[derive(Debug)]
// Boxing the large variant would cost an allocation per message on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// A well-formed message.
    Valid(Message),
    /// A message that failed; `partial` holds what could be read (start line and raw
    /// headers) when it was a request, so a stateless error response can be built.
    Invalid {
        /// Why it failed.
        error: ParseError,
        /// The request as far as it could be read (None for responses and garbage).
        partial: Option<Box<Message>>,
    },
}

/// Parses one message from `data`. Trailing octets after Content-Length are ignored
/// (RFC 3261 s18.3: a datagram's extra octets are discarded).
pub fn parse(data: Bytes) -> Parsed {
    let mut start = 0;
    // RFC 3261 s7.5: CRLFs before the start line are ignored.
    while start < data.len() && matches!(data[start], b'\r' | b'\n') {
        start += 1;
    }
    if start >= data.len() {
        return Parsed::Invalid {
            error: ParseError::Empty,
            partial: None,
        };
    }
    let line_end = match find_line_end(&data, start) {
        Some(e) => e,
        None => {
            return Parsed::Invalid {
                error: ParseError::Unterminated,
                partial: None,
            }
        }
    };
    let start_line = match parse_start_line(&data, start, line_end.0) {
        Ok(s) => s,
        Err((error, is_request)) => {
            // A request with a bad Request-URI or version still gets an answer.
            let partial = is_request.and_then(|method| {
                read_headers(&data, line_end.1).ok().map(|(headers, _)| {
                    Box::new(Message {
                        start: StartLine::Request {
                            method,
                            uri: Uri {
                                raw: Bytes::from_static(b"sip:invalid"),
                                scheme: Scheme::Sip,
                                user: None,
                                password: None,
                                host: None,
                                host_raw: None,
                                port: None,
                                params: Bytes::new(),
                                headers: None,
                            },
                        },
                        headers,
                        body: Bytes::new(),
                    })
                })
            });
            return Parsed::Invalid { error, partial };
        }
    };
    let is_request = matches!(start_line, StartLine::Request { .. });
    let (headers, body_start) = match read_headers(&data, line_end.1) {
        Ok(h) => h,
        Err((error, headers)) => {
            let partial = is_request.then(|| {
                Box::new(Message {
                    start: start_line,
                    headers,
                    body: Bytes::new(),
                })
            });
            return Parsed::Invalid { error, partial };
        }
    };
    let mut msg = Message {
        start: start_line,
        headers,
        body: Bytes::new(),
    };
    let result = body_of(&msg, &data, body_start).and_then(|body| {
        msg.body = body;
        validate(&msg)
    });
    match result {
        Ok(()) => Parsed::Valid(msg),
        Err(error) => {
            msg.body = Bytes::new();
            Parsed::Invalid {
                error,
                partial: is_request.then(|| Box::new(msg)),
            }
        }
    }
}

/// Returns (end of line content, start of next line).
fn find_line_end(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let nl = data[from..].iter().position(|&b| b == b'\n')? + from;
    let end = if nl > from && data[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

type StartError = (ParseError, Option<Method>);

fn parse_start_line(data: &Bytes, start: usize, end: usize) -> Result<StartLine, StartError> {
    let line = &data[start..end];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return parse_status_line(data, start, end).map_err(|e| (e, None));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces.
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !is_token(method) {
        return Err((ParseError::StartLine, None));
    }
    let method_v = Method::from_token(method);
    let fail = |e| (e, Some(method_v.clone()));
    let uri = parts.next().ok_or_else(|| fail(ParseError::StartLine))?;
    let version = parts.next().ok_or_else(|| fail(ParseError::StartLine))?;
    if parts.next().is_some() || uri.is_empty() || version.is_empty() {
        return Err(fail(ParseError::StartLine));
    }
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        if version.len() > 4 && version[..4].eq_ignore_ascii_case(b"SIP/") {
            return Err(fail(ParseError::Version));
        }
        return Err(fail(ParseError::StartLine));
    }
    let uri_off = start + method.len() + 1;
    let uri = Uri::parse(data.slice(uri_off..uri_off + uri.len()))
        .map_err(|_| fail(ParseError::RequestUri))?;
    // RFC 3261 s19.1.5: headers are not allowed in a Request-URI (RFC 4475 s3.1.2.11).
    if uri.headers.is_some() {
        return Err(fail(ParseError::RequestUriHeaders));
    }
    Ok(StartLine::Request {
        method: method_v,
        uri,
    })
}

fn parse_status_line(data: &Bytes, start: usize, end: usize) -> Result<StartLine, ParseError> {
    let line = &data[start..end];
    if line.len() < 12 || !line[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
        return Err(
            if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
                ParseError::StatusCode
            } else {
                ParseError::Version
            },
        );
    }
    let code = &line[8..11];
    if !code.iter().all(u8::is_ascii_digit) || (line.len() > 11 && line[11] != b' ') {
        return Err(ParseError::StatusCode);
    }
    let code = code.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&code) {
        return Err(ParseError::StatusCode);
    }
    let reason = if line.len() > 12 {
        data.slice(start + 12..end)
    } else {
        Bytes::new()
    };
    Ok(StartLine::Response { code, reason })
}

type HeaderResult = Result<(Vec<Header>, usize), (ParseError, Vec<Header>)>;

/// Reads header lines (with folding) up to the blank line; returns them and the body offset.
fn read_headers(data: &Bytes, mut pos: usize) -> HeaderResult {
    let mut headers: Vec<Header> = Vec::with_capacity(16);
    // (name_start, name_end, value_start, value_end) of the header being read.
    let mut current: Option<(usize, usize, usize, usize)> = None;
    let mut error = None;
    loop {
        if pos >= data.len() {
            // Headers ended with the datagram and no blank line: accept only after a line end.
            flush(data, &mut headers, current.take());
            return match error {
                Some(e) => Err((e, headers)),
                None => Ok((headers, data.len())),
            };
        }
        let Some((end, next)) = find_line_end(data, pos) else {
            flush(data, &mut headers, current.take());
            return Err((ParseError::Unterminated, headers));
        };
        if end == pos {
            flush(data, &mut headers, current.take());
            return match error {
                Some(e) => Err((e, headers)),
                None => Ok((headers, next)),
            };
        }
        let first = data[pos];
        if first == b' ' || first == b'\t' {
            // Folded continuation (RFC 3261 s7.3.1): extend the value to this line's end.
            match current.as_mut() {
                Some(c) => c.3 = end,
                None => error = error.or(Some(ParseError::HeaderLine)),
            }
        } else {
            flush(data, &mut headers, current.take());
            let line = &data[pos..end];
            match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let name = trim(&line[..colon]);
                    if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
                        error = error.or(Some(ParseError::HeaderLine));
                    } else {
                        let name_start = pos + (name.as_ptr() as usize - line.as_ptr() as usize);
                        current = Some((name_start, name_start + name.len(), pos + colon + 1, end));
                    }
                }
                None => error = error.or(Some(ParseError::HeaderLine)),
            }
        }
        pos = next;
    }
}

fn flush(data: &Bytes, headers: &mut Vec<Header>, cur: Option<(usize, usize, usize, usize)>) {
    if let Some((ns, ne, vs, ve)) = cur {
        let raw = &data[vs..ve];
        let t = trim(raw);
        let off = vs + (t.as_ptr() as usize - raw.as_ptr() as usize);
        let value = if t.is_empty() {
            Bytes::new()
        } else {
            data.slice(off..off + t.len())
        };
        headers.push(Header {
            name: HeaderName::classify(&data[ns..ne]),
            raw_name: data.slice(ns..ne),
            value,
        });
    }
}

/// Largest Content-Length accepted; larger values are out of range, never an overflow.
const MAX_CONTENT_LENGTH: u64 = 1 << 24;

fn body_of(msg: &Message, data: &Bytes, body_start: usize) -> Result<Bytes, ParseError> {
    let mut cl = msg.headers_named(&HeaderName::ContentLength);
    let first = cl.next();
    if cl.next().is_some() {
        return Err(ParseError::Duplicate("Content-Length"));
    }
    let available = data.len().saturating_sub(body_start);
    match first {
        None => Ok(data.slice(body_start.min(data.len())..)),
        Some(h) => {
            let n = parse_number(&h.unfolded(), "Content-Length", MAX_CONTENT_LENGTH)?;
            let n = usize::try_from(n).map_err(|_| ParseError::OutOfRange("Content-Length"))?;
            if n > available {
                return Err(ParseError::BodyTruncated);
            }
            Ok(data.slice(body_start..body_start + n))
        }
    }
}

/// Parses a decimal number with a maximum, distinguishing garbage from overflow.
fn parse_number(v: &[u8], label: &'static str, max: u64) -> Result<u64, ParseError> {
    let v = trim(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Malformed(label));
    }
    let mut n: u64 = 0;
    for d in v {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(ParseError::OutOfRange(label))?;
    }
    if n > max {
        return Err(ParseError::OutOfRange(label));
    }
    Ok(n)
}

/// Parses a bounded integer header value (Max-Forwards, Expires, ...).
pub(crate) fn parse_small_int(v: &[u8], label: &'static str, max: u32) -> Result<u32, ParseError> {
    parse_number(v, label, u64::from(max)).map(|n| n as u32)
}

/// Parses `CSeq: number method`.
pub(crate) fn parse_cseq(v: &[u8]) -> Result<CSeq, ParseError> {
    let v = trim(v);
    let sp = v
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .ok_or(ParseError::Malformed("CSeq"))?;
    // RFC 3261 s8.1.1.5: the sequence number MUST be less than 2^31.
    let seq = parse_number(&v[..sp], "CSeq", (1 << 31) - 1)? as u32;
    let method = trim(&v[sp..]);
    if !is_token(method) {
        return Err(ParseError::Malformed("CSeq"));
    }
    Ok(CSeq {
        seq,
        method: Method::from_token(method),
    })
}

fn validate(msg: &Message) -> Result<(), ParseError> {
    const SINGLE: &[(HeaderName, &str)] = &[
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
        (HeaderName::MaxForwards, "Max-Forwards"),
        (HeaderName::ContentType, "Content-Type"),
    ];
    for (name, label) in SINGLE {
        if msg.headers_named(name).nth(1).is_some() {
            return Err(ParseError::Duplicate(label));
        }
    }
    let mut vias = 0;
    for via in msg.vias() {
        via.map_err(|_| ParseError::Malformed("Via"))?;
        vias += 1;
    }
    if vias == 0 {
        return Err(ParseError::Missing("Via"));
    }
    msg.from()?;
    msg.to()?;
    match msg.call_id() {
        None => return Err(ParseError::Missing("Call-ID")),
        Some(c) if c.is_empty() || c.iter().any(|b| b.is_ascii_whitespace()) => {
            return Err(ParseError::Malformed("Call-ID"))
        }
        Some(_) => {}
    }
    let cseq = msg.cseq()?;
    if let StartLine::Request { method, .. } = &msg.start {
        // RFC 3261 s8.1.1.5: the CSeq method MUST match the request method.
        if &cseq.method != method {
            return Err(ParseError::CSeqMethodMismatch);
        }
    }
    msg.max_forwards()?;
    msg.expires()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &[u8]) -> Message {
        match parse(Bytes::copy_from_slice(s)) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("expected valid, got {error:?}"),
        }
    }

    fn bad(s: &[u8]) -> ParseError {
        match parse(Bytes::copy_from_slice(s)) {
            Parsed::Valid(_) => panic!("expected invalid"),
            Parsed::Invalid { error, .. } => error,
        }
    }

    const OPTIONS: &[u8] = b"OPTIONS sip:sentralbord.local SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n\
Max-Forwards: 70\r\nf: <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";

    #[test]
    fn parses_and_reencodes() {
        let m = ok(OPTIONS);
        assert_eq!(m.method(), Some(Method::Options));
        assert_eq!(m.call_id().map(|c| &c[..]), Some(&b"abc"[..]));
        assert_eq!(m.cseq().expect("cseq").seq, 1);
        let again = ok(&m.encode());
        assert_eq!(again.headers.len(), m.headers.len());
    }

    #[test]
    fn structural_errors() {
        let no_callid = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(bad(no_callid), ParseError::Missing("Call-ID"));
        let mismatch = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(bad(mismatch), ParseError::CSeqMethodMismatch);
        assert_eq!(bad(b"OPTIONS sip:x SIP/3.0\r\n\r\n"), ParseError::Version);
        assert_eq!(
            bad(b"SIP/2.0 4294967301 Bad\r\n\r\n"),
            ParseError::StatusCode
        );
        assert!(matches!(
            parse(Bytes::new()),
            Parsed::Invalid {
                error: ParseError::Empty,
                ..
            }
        ));
    }

    #[test]
    fn content_length_frames_the_body() {
        let mut m = OPTIONS.to_vec();
        let l = m.windows(4).position(|w| w == b"l: 0").expect("present");
        m[l + 3] = b'3';
        m.extend_from_slice(b"abcTRAILING");
        let msg = ok(&m);
        assert_eq!(&msg.body[..], b"abc");
        m.truncate(m.len() - 10);
        assert_eq!(bad(&m), ParseError::BodyTruncated);
    }

    #[test]
    fn never_panics_on_prefixes() {
        for n in 0..OPTIONS.len() {
            let _ = parse(Bytes::copy_from_slice(&OPTIONS[..n]));
        }
    }
}
