//! The Via header (RFC 3261 s20.42) with RFC 3581 `rport` and RFC 5118 IPv6 `received`.

use super::header::{find_param, trim};
use super::uri::{slice_of, Host, UriError};
use bytes::Bytes;

/// Why a Via value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ViaError {
    #[error("malformed sent-protocol")]
    Protocol,
    #[error("malformed sent-by")]
    SentBy,
    #[error("malformed Via parameters")]
    Params,
}

impl From<UriError> for ViaError {
    fn from(_: UriError) -> Self {
        ViaError::SentBy
    }
}

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as written (UDP, TCP, TLS, WS, or anything else).
    pub transport: Bytes,
    /// sent-by host.
    pub host: Host,
    /// sent-by host as written.
    pub host_raw: Bytes,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters without the leading `;`.
    pub params: Bytes,
}

impl Via {
    /// Parses one Via value (after comma splitting).
    pub fn parse_in(whole: &Bytes, value: &[u8]) -> Result<Via, ViaError> {
        let v = trim(value);
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport,
        // with optional whitespace around the slashes (SLASH = SWS "/" SWS).
        let mut parts = [&b""[..]; 3];
        let mut rest = v;
        for (idx, part) in parts.iter_mut().enumerate() {
            if idx < 2 {
                let slash = rest
                    .iter()
                    .position(|&b| b == b'/')
                    .ok_or(ViaError::Protocol)?;
                *part = trim(&rest[..slash]);
                rest = trim(&rest[slash + 1..]);
            } else {
                let end = rest
                    .iter()
                    .position(|&b| b.is_ascii_whitespace())
                    .ok_or(ViaError::Protocol)?;
                *part = &rest[..end];
                rest = trim(&rest[end..]);
            }
        }
        if !parts[0].eq_ignore_ascii_case(b"SIP") || parts[1] != b"2.0" {
            return Err(ViaError::Protocol);
        }
        if parts[2].is_empty() || !super::header::is_token(parts[2]) {
            return Err(ViaError::Protocol);
        }
        let transport = slice_of(whole, parts[2]);
        // sent-by ends at ';' (params) or whitespace (a comment).
        let end = rest
            .iter()
            .position(|&b| b == b';' || b == b' ' || b == b'(')
            .unwrap_or(rest.len());
        let sent_by = &rest[..end];
        let (host_part, port) = split_host_port(sent_by)?;
        let host_raw = slice_of(whole, host_part);
        let host = Host::parse(&host_raw)?;
        let after = trim(&rest[end..]);
        let params = match after.first() {
            None => Bytes::new(),
            Some(b';') => {
                let p = &after[1..];
                // Every parameter must have a name: ";;" or a dangling ";" is malformed.
                if p.split(|&b| b == b';').any(|x| trim(x).is_empty())
                    || !p.split(|&b| b == b';').all(|x| {
                        trim(x)
                            .split(|&b| b == b'=')
                            .next()
                            .is_some_and(|n| super::header::is_token(trim(n)))
                    })
                {
                    return Err(ViaError::Params);
                }
                slice_of(whole, p)
            }
            Some(_) => return Err(ViaError::Params),
        };
        Ok(Via {
            transport,
            host,
            host_raw,
            port,
            params,
        })
    }

    /// A parameter: `Some(None)` when present without value.
    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        find_param(&self.params, name)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&[u8]> {
        self.param("branch").flatten()
    }

    /// True when the branch carries the RFC 3261 magic cookie.
    pub fn is_rfc3261(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// RFC 3581: `Some(None)` when `rport` was sent without value (a request asking for it).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| {
            v.and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse().ok())
        })
    }

    /// The transport is a stream (TCP, TLS, WS, WSS, SCTP).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case(b"UDP")
    }

    /// sent-by as `host[:port]` text, for transaction matching.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!(
                "{}:{p}",
                String::from_utf8_lossy(&self.host_raw).to_ascii_lowercase()
            ),
            None => String::from_utf8_lossy(&self.host_raw).to_ascii_lowercase(),
        }
    }
}

fn split_host_port(s: &[u8]) -> Result<(&[u8], Option<u16>), ViaError> {
    if s.is_empty() {
        return Err(ViaError::SentBy);
    }
    let host_end = if s[0] == b'[' {
        s.iter().position(|&b| b == b']').ok_or(ViaError::SentBy)? + 1
    } else {
        s.iter().position(|&b| b == b':').unwrap_or(s.len())
    };
    let host = &s[..host_end];
    let rest = trim(&s[host_end..]);
    if rest.is_empty() {
        return Ok((host, None));
    }
    if rest[0] != b':' {
        return Err(ViaError::SentBy);
    }
    let digits = trim(&rest[1..]);
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ViaError::SentBy);
    }
    let v: u32 = digits.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0'));
    Ok((host, Some(u16::try_from(v).map_err(|_| ViaError::SentBy)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Via, ViaError> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        Via::parse_in(&b, &b)
    }

    #[test]
    fn parses_via_forms() {
        let v = p("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;rport").expect("valid");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some(&b"z9hG4bK74bf9"[..]));
        assert_eq!(v.rport(), Some(None));
        assert!(v.is_rfc3261());
        let v = p("SIP / 2.0 / TCP [2001:db8::9:1]:5060;received=[2001:db8::9:255]").expect("v6");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.param("received"), Some(Some(&b"[2001:db8::9:255]"[..])));
        let v = p("SIP/2.0/UDP [2001:db8::9:1]").expect("v6 no port");
        assert_eq!(v.port, None);
        assert!(p("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(p("SIP/2.0/UDP").is_err());
        assert!(p("SIP/3.0/UDP host").is_err());
        let v = p("SIP/2.0/UDP host;received=192.0.2.1;rport=5070").expect("valid");
        assert_eq!(v.rport(), Some(Some(5070)));
    }
}
