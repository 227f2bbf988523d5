//! Minimal URI helpers for routing decisions (RFC 3261 12.2.1.1 and 16.12).
//!
//! These work on raw bytes so that the dialog layer does not depend on the codec, which is
//! being written alongside. They will move onto the codec's URI type once it exists; until
//! then they only do what routing needs: take the URI out of a name-addr, find the `lr`
//! parameter, and strip what a Request-URI may not carry. They never panic on any input.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

/// The byte range of the URI inside a Route/Record-Route/Contact entry.
///
/// For `name-addr` (`["display name"] <uri> *(;param)`) that is what lies between the
/// angle brackets; a `<` inside a quoted display name is skipped. An entry without angle
/// brackets is taken whole (trimmed): RFC 3261 requires name-addr in Record-Route, and for
/// a sloppy peer the lenient reading keeps its `;lr` as a URI parameter.
pub(crate) fn name_addr_uri(entry: &[u8]) -> Range<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &c) in entry.iter().enumerate() {
        if in_quotes {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_quotes = true,
            b'<' => {
                let start = i + 1;
                let end = entry[start..]
                    .iter()
                    .position(|&c| c == b'>')
                    .map_or(entry.len(), |p| start + p);
                return trim(entry, start..end);
            }
            _ => {}
        }
    }
    trim(entry, 0..entry.len())
}

/// Narrows `range` to exclude surrounding whitespace.
fn trim(bytes: &[u8], range: Range<usize>) -> Range<usize> {
    let Some(slice) = bytes.get(range.clone()) else {
        return 0..0;
    };
    let lead = slice
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(slice.len());
    let trail = slice[lead..]
        .iter()
        .rev()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(0);
    range.start + lead..range.end - trail
}

/// Splits a URI into (scheme + userinfo + hostport, parameters, headers) byte ranges.
///
/// The userinfo may contain `;` and `?` (RFC 3261 25.1 `user-unreserved`) but never an
/// unescaped `@`, so parameters are searched for after the first `@`, or after the scheme
/// when there is none.
fn split_uri(uri: &[u8]) -> (Range<usize>, Range<usize>, Range<usize>) {
    let host_start = match uri.iter().position(|&c| c == b'@') {
        Some(at) => at + 1,
        None => uri.iter().position(|&c| c == b':').map_or(0, |p| p + 1),
    };
    let rest = &uri[host_start..];
    let headers_at = rest
        .iter()
        .position(|&c| c == b'?')
        .map_or(uri.len(), |p| host_start + p);
    let params_at = rest
        .iter()
        .position(|&c| c == b';')
        .map(|p| host_start + p)
        .filter(|&p| p < headers_at)
        .unwrap_or(headers_at);
    (0..params_at, params_at..headers_at, headers_at..uri.len())
}

/// The `;`-separated parameters of a URI, each as `name[=value]` bytes (never empty).
fn params(uri: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (_, params, _) = split_uri(uri);
    uri[params]
        .split(|&c| c == b';')
        .filter(|p| !p.iter().all(u8::is_ascii_whitespace))
}

/// The name of a `name[=value]` parameter, trimmed.
fn param_name(param: &[u8]) -> &[u8] {
    let name = param.split(|&c| c == b'=').next().unwrap_or(param);
    &name[trim(name, 0..name.len())]
}

/// Whether the URI carries the `lr` parameter (loose routing, RFC 3261 19.1.1);
/// parameter names are case-insensitive.
pub(crate) fn has_lr_param(uri: &[u8]) -> bool {
    params(uri).any(|p| param_name(p).eq_ignore_ascii_case(b"lr"))
}

/// The URI with the components a Request-URI may not carry removed: the `method`
/// parameter and the headers (RFC 3261 19.1.1, table 1). Used for strict routing.
pub(crate) fn request_uri_form(uri: &Bytes) -> Bytes {
    let (base, params_range, headers) = split_uri(uri);
    let has_method = params(uri).any(|p| param_name(p).eq_ignore_ascii_case(b"method"));
    if headers.is_empty() && !has_method {
        return uri.clone();
    }
    let mut out = BytesMut::with_capacity(uri.len());
    out.put_slice(&uri[base]);
    for p in uri[params_range]
        .split(|&c| c == b';')
        .filter(|p| !p.iter().all(u8::is_ascii_whitespace))
    {
        if !param_name(p).eq_ignore_ascii_case(b"method") {
            out.put_u8(b';');
            out.put_slice(p);
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(entry: &str) -> &str {
        &entry[name_addr_uri(entry.as_bytes())]
    }

    #[test]
    fn extracts_uri_from_name_addr() {
        assert_eq!(uri_of("<sip:p1.example.com;lr>"), "sip:p1.example.com;lr");
        assert_eq!(
            uri_of(" \"Proxy <1>\" <sip:p1.example.com;lr>;foo=bar"),
            "sip:p1.example.com;lr"
        );
        assert_eq!(uri_of("\"a\\\"<b\" <sip:x>"), "sip:x");
        assert_eq!(uri_of("  sip:p2.example.com;lr  "), "sip:p2.example.com;lr");
        // Unterminated: take the rest rather than fail.
        assert_eq!(uri_of("<sip:p3"), "sip:p3");
        assert_eq!(uri_of(""), "");
        assert_eq!(uri_of("\"unterminated <sip:x>"), "\"unterminated <sip:x>");
    }

    #[test]
    fn finds_lr_only_in_uri_params() {
        assert!(has_lr_param(b"sip:p1.example.com;lr"));
        assert!(has_lr_param(b"sip:p1.example.com;transport=tcp;LR"));
        assert!(has_lr_param(b"sip:p1.example.com;lr=on"));
        assert!(has_lr_param(b"sip:[2001:db8::1]:5060;lr"));
        assert!(!has_lr_param(b"sip:p1.example.com"));
        assert!(!has_lr_param(b"sip:p1.example.com;lrx"));
        // ";lr" in the user part is not a URI parameter.
        assert!(!has_lr_param(b"sip:alice;lr@p1.example.com"));
        // ";lr" after the headers is not a parameter either.
        assert!(!has_lr_param(b"sip:p1.example.com?x=1;lr"));
        assert!(!has_lr_param(b""));
        assert!(!has_lr_param(b";;;"));
    }

    #[test]
    fn request_uri_form_strips_method_and_headers() {
        let u = Bytes::from_static(b"sip:p1.example.com;transport=udp;method=INVITE?Subject=x");
        assert_eq!(
            &request_uri_form(&u)[..],
            b"sip:p1.example.com;transport=udp"
        );
        let u = Bytes::from_static(b"sip:p1.example.com;maddr=10.0.0.1");
        assert_eq!(request_uri_form(&u), u);
        let u = Bytes::from_static(b"sip:bob;x=1@p1.example.com;METHOD=BYE;ttl=3");
        assert_eq!(
            &request_uri_form(&u)[..],
            b"sip:bob;x=1@p1.example.com;ttl=3"
        );
    }
}
