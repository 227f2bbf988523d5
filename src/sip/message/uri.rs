//! URIs: `sip:`, `sips:`, `tel:` and any other scheme kept as an opaque absolute URI.
//!
//! Parsed zero-copy: every part is a slice of the original bytes, still escaped, so a
//! B2BUA that copies a user part such as `%23` relays it unchanged.

use super::header::{find_param, trim};
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URI did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("URI has no scheme")]
    NoScheme,
    #[error("URI contains whitespace or a forbidden character")]
    ForbiddenChar,
    #[error("URI host is missing or malformed")]
    Host,
    #[error("URI port is malformed")]
    Port,
    #[error("URI has a malformed escape")]
    Escape,
    #[error("tel URI number is malformed")]
    TelNumber,
}

/// The URI scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Any other scheme (lower-cased); the switch cannot route to it (416).
    Other(String),
}

/// A URI host: a domain name or an IP address (IPv6 written in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Domain(Bytes),
    Ip(IpAddr),
}

impl Host {
    /// Parses a host: `[v6]`, dotted IPv4, or a hostname.
    pub fn parse(raw: &Bytes) -> Result<Host, UriError> {
        let s = raw.as_ref();
        if s.is_empty() {
            return Err(UriError::Host);
        }
        if s[0] == b'[' {
            if s.len() < 3 || s[s.len() - 1] != b']' {
                return Err(UriError::Host);
            }
            let inner = std::str::from_utf8(&s[1..s.len() - 1]).map_err(|_| UriError::Host)?;
            // RFC 5118 s4.10: ':::' from the old ABNF bug is rejected (std's parser refuses it).
            let v6: Ipv6Addr = inner.parse().map_err(|_| UriError::Host)?;
            return Ok(Host::Ip(IpAddr::V6(v6)));
        }
        if s.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            let text = std::str::from_utf8(s).map_err(|_| UriError::Host)?;
            if let Ok(v4) = text.parse::<Ipv4Addr>() {
                return Ok(Host::Ip(IpAddr::V4(v4)));
            }
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]
        if s.iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.' || *b == b'_')
        {
            Ok(Host::Domain(raw.clone()))
        } else {
            Err(UriError::Host)
        }
    }

    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(&String::from_utf8_lossy(d)),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed URI. Parts are slices of `raw`, escapes preserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The whole URI exactly as received.
    pub raw: Bytes,
    /// The scheme.
    pub scheme: Scheme,
    /// User part (sip/sips) or the number (tel), still escaped.
    pub user: Option<Bytes>,
    /// Password of the userinfo (deprecated, kept for relaying).
    pub password: Option<Bytes>,
    /// Host (sip/sips only).
    pub host: Option<Host>,
    /// Host exactly as written.
    pub host_raw: Option<Bytes>,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters without the leading `;` (for tel: the number's parameters).
    pub params: Bytes,
    /// The `?headers` part without the `?`.
    pub headers: Option<Bytes>,
}

fn is_forbidden(b: u8) -> bool {
    b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"')
}

fn check_escapes(s: &[u8]) -> Result<(), UriError> {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if i + 2 >= s.len() {
                return Err(UriError::Escape);
            }
            if !(s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()) {
                return Err(UriError::Escape);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

impl Uri {
    /// Parses a URI (no surrounding `<>`, no whitespace).
    pub fn parse(raw: Bytes) -> Result<Uri, UriError> {
        let s = raw.as_ref();
        if s.iter().any(|&b| is_forbidden(b)) {
            return Err(UriError::ForbiddenChar);
        }
        let colon = s
            .iter()
            .position(|&b| b == b':')
            .ok_or(UriError::NoScheme)?;
        let scheme_raw = &s[..colon];
        if scheme_raw.is_empty()
            || !scheme_raw[0].is_ascii_alphabetic()
            || !scheme_raw
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(UriError::NoScheme);
        }
        let scheme = if scheme_raw.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme_raw.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if scheme_raw.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other(String::from_utf8_lossy(scheme_raw).to_ascii_lowercase())
        };
        let rest_start = colon + 1;
        match scheme {
            Scheme::Sip | Scheme::Sips => Self::parse_sip(raw.clone(), scheme, rest_start),
            Scheme::Tel => Self::parse_tel(raw.clone(), rest_start),
            Scheme::Other(_) => {
                if rest_start >= s.len() {
                    return Err(UriError::NoScheme);
                }
                Ok(Uri {
                    raw: raw.clone(),
                    scheme,
                    user: None,
                    password: None,
                    host: None,
                    host_raw: None,
                    port: None,
                    params: Bytes::new(),
                    headers: None,
                })
            }
        }
    }

    fn parse_sip(raw: Bytes, scheme: Scheme, start: usize) -> Result<Uri, UriError> {
        let s = raw.as_ref();
        // The first '@' ends the userinfo: '@' is not allowed unescaped in user,
        // password, host, parameters or headers (RFC 3261 s25.1).
        let at = s[start..]
            .iter()
            .position(|&b| b == b'@')
            .map(|p| p + start);
        let (user, password, host_start) = match at {
            Some(at) => {
                let userinfo = &s[start..at];
                if userinfo.is_empty() {
                    return Err(UriError::Host);
                }
                check_escapes(userinfo)?;
                match userinfo.iter().position(|&b| b == b':') {
                    Some(c) => (
                        Some(raw.slice(start..start + c)),
                        Some(raw.slice(start + c + 1..at)),
                        at + 1,
                    ),
                    None => (Some(raw.slice(start..at)), None, at + 1),
                }
            }
            None => (None, None, start),
        };
        // hostport ends at ';' or '?' (outside an IPv6 reference).
        let hp = &s[host_start..];
        let host_end_rel = if hp.first() == Some(&b'[') {
            let close = hp.iter().position(|&b| b == b']').ok_or(UriError::Host)?;
            close + 1
        } else {
            hp.iter()
                .position(|&b| matches!(b, b':' | b';' | b'?'))
                .unwrap_or(hp.len())
        };
        let host_raw = raw.slice(host_start..host_start + host_end_rel);
        let host = Host::parse(&host_raw)?;
        let mut pos = host_start + host_end_rel;
        let mut port = None;
        if pos < s.len() && s[pos] == b':' {
            let pstart = pos + 1;
            let pend = s[pstart..]
                .iter()
                .position(|&b| matches!(b, b';' | b'?'))
                .map_or(s.len(), |p| p + pstart);
            let digits = &s[pstart..pend];
            if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(UriError::Port);
            }
            let v: u32 = digits.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0'));
            port = Some(u16::try_from(v).map_err(|_| UriError::Port)?);
            pos = pend;
        } else if pos < s.len() && !matches!(s[pos], b';' | b'?') {
            return Err(UriError::Host);
        }
        let q = s[pos..].iter().position(|&b| b == b'?').map(|p| p + pos);
        let params_end = q.unwrap_or(s.len());
        let params = if pos < params_end && s[pos] == b';' {
            raw.slice(pos + 1..params_end)
        } else {
            Bytes::new()
        };
        check_escapes(&params)?;
        let headers = q.map(|q| raw.slice(q + 1..));
        if let Some(h) = &headers {
            check_escapes(h)?;
        }
        Ok(Uri {
            raw,
            scheme,
            user,
            password,
            host: Some(host),
            host_raw: Some(host_raw),
            port,
            params,
            headers,
        })
    }

    fn parse_tel(raw: Bytes, start: usize) -> Result<Uri, UriError> {
        let s = raw.as_ref();
        let end = s[start..]
            .iter()
            .position(|&b| b == b';')
            .map_or(s.len(), |p| p + start);
        let number = &s[start..end];
        // RFC 3966: global numbers start with '+' and digits; local numbers may hold
        // hex digits, '*' and '#'; visual separators are allowed.
        let ok_char =
            |b: &u8| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#' | b'-' | b'.' | b'(' | b')');
        let valid = match number.split_first() {
            Some((b'+', digits)) => !digits.is_empty() && digits.iter().all(ok_char),
            Some(_) => number.iter().all(ok_char),
            None => false,
        };
        if !valid {
            return Err(UriError::TelNumber);
        }
        let params = if end < s.len() {
            raw.slice(end + 1..)
        } else {
            Bytes::new()
        };
        check_escapes(&params)?;
        Ok(Uri {
            user: Some(raw.slice(start..end)),
            raw,
            scheme: Scheme::Tel,
            password: None,
            host: None,
            host_raw: None,
            port: None,
            params,
            headers: None,
        })
    }

    /// A URI parameter: `Some(None)` when present without value.
    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        find_param(&self.params, name)
    }

    /// The user part with %-escapes decoded (for comparisons, RFC 3261 s19.1.4).
    pub fn user_unescaped(&self) -> Option<Cow<'_, [u8]>> {
        self.user.as_deref().map(unescape)
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The URI as text (lossy for non-UTF-8 bytes; for logs and display only).
    pub fn to_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.raw)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Decodes %-escapes; invalid escapes are kept literally.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Parses a URI from a trimmed byte slice that is a part of `whole` (zero-copy when it is).
pub fn parse_in(whole: &Bytes, part: &[u8]) -> Result<Uri, UriError> {
    let part = trim(part);
    Uri::parse(slice_of(whole, part))
}

/// Returns `part` as a `Bytes` sharing `whole`'s buffer when it lies inside it, else a copy.
pub fn slice_of(whole: &Bytes, part: &[u8]) -> Bytes {
    let base = whole.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    if p >= base && p + part.len() <= base + whole.len() && !part.is_empty() {
        whole.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Uri, UriError> {
        Uri::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn sip_uri_parts() {
        let u = p("sip:alice:pw@example.com:5070;transport=tcp;lr?subject=x").expect("valid");
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some(&b"alice"[..]));
        assert_eq!(u.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("transport"), Some(Some(&b"tcp"[..])));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers.as_deref(), Some(&b"subject=x"[..]));
    }

    #[test]
    fn ipv6_hosts() {
        let u = p("sip:[2001:db8::10]:5070").expect("valid");
        assert_eq!(
            u.host.as_ref().and_then(Host::ip),
            Some("2001:db8::10".parse().expect("ip"))
        );
        assert_eq!(u.port, Some(5070));
        let u = p("sip:[2001:db8::9:1]").expect("valid");
        assert_eq!(u.port, None);
        assert!(p("sip:user@2001:db8::10").is_err());
        assert!(p("sip:[2001:db8:::192.0.2.1]").is_err());
        assert!(p("sip:[::ffff:192.0.2.1]").is_ok());
    }

    #[test]
    fn escapes_are_kept_raw() {
        let u = p("sip:%2312@example.com").expect("valid");
        assert_eq!(u.user.as_deref(), Some(&b"%2312"[..]));
        assert_eq!(u.user_unescaped().as_deref(), Some(&b"#12"[..]));
        assert!(p("sip:%zz@example.com").is_err());
        let u = p("sip:abc%00def@example.com").expect("escaped NUL");
        assert_eq!(u.user_unescaped().map(|c| c.len()), Some(7));
    }

    #[test]
    fn semicolon_in_user_part() {
        let u = p("sip:user;par=u%40example.net@example.com").expect("valid");
        assert_eq!(u.user.as_deref(), Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host_raw.as_deref(), Some(&b"example.com"[..]));
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = p("tel:+47-21-00-00-00;phone-context=+47").expect("valid");
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user.as_deref(), Some(&b"+47-21-00-00-00"[..]));
        assert!(p("tel:").is_err());
        let u = p("soap.beep://192.0.2.103:3002").expect("valid");
        assert!(matches!(u.scheme, Scheme::Other(_)));
        assert!(p("sip:user@example.com >").is_err());
        assert!(p("nocolon").is_err());
    }
}
