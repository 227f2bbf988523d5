//! `name-addr` / `addr-spec` values (From, To, Contact, Route, Record-Route), RFC 3261 s20.

use super::header::{find_param, is_token_char, trim};
use super::uri::{slice_of, Uri, UriError};
use bytes::Bytes;

/// Why a name-addr did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameAddrError {
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("display name has characters that need quoting")]
    DisplayName,
    #[error("unterminated or malformed <URI>")]
    Angle,
    #[error("whitespace inside <URI>")]
    SpaceInAngle,
    #[error("a URI with headers must be enclosed in <>")]
    HeadersNeedAngle,
    #[error("malformed header parameters")]
    Params,
    #[error(transparent)]
    Uri(#[from] UriError),
}

/// A parsed `[display-name] <URI> ;params` or `URI ;params` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written (quotes removed, escapes kept).
    pub display: Option<Bytes>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (after the URI) without the leading `;`.
    pub params: Bytes,
    /// Whether the URI was written in angle brackets.
    pub angle: bool,
}

impl NameAddr {
    /// Parses one value. `whole` is the buffer `value` lies in (for zero-copy slices).
    pub fn parse_in(whole: &Bytes, value: &[u8]) -> Result<NameAddr, NameAddrError> {
        let v = trim(value);
        let mut i: usize;
        let mut display = None;
        if v.first() == Some(&b'"') {
            let mut j = 1;
            loop {
                match v.get(j) {
                    None => return Err(NameAddrError::UnterminatedQuote),
                    Some(b'\\') => j += 2,
                    Some(b'"') => break,
                    Some(_) => j += 1,
                }
            }
            display = Some(slice_of(whole, &v[1..j]));
            i = j + 1;
            while v
                .get(i)
                .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                i += 1;
            }
            if v.get(i) != Some(&b'<') {
                return Err(NameAddrError::Angle);
            }
        } else if v.contains(&b'"') && !v.contains(&b'<') {
            return Err(NameAddrError::UnterminatedQuote);
        } else if let Some(lt) = v.iter().position(|&b| b == b'<') {
            let name = trim(&v[..lt]);
            if !name
                .iter()
                .all(|&b| is_token_char(b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                return Err(NameAddrError::DisplayName);
            }
            if !name.is_empty() {
                display = Some(slice_of(whole, name));
            }
            i = lt;
        } else {
            // addr-spec: parameters after the first ';' belong to the header (RFC 3261 s20).
            let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
            let uri_part = trim(&v[..end]);
            if uri_part.contains(&b'?') {
                return Err(NameAddrError::HeadersNeedAngle);
            }
            let uri = Uri::parse(slice_of(whole, uri_part))?;
            let params = if end < v.len() {
                slice_of(whole, &v[end + 1..])
            } else {
                Bytes::new()
            };
            check_params(&params)?;
            return Ok(NameAddr {
                display,
                uri,
                params,
                angle: false,
            });
        }
        // v[i] == '<'
        let rel_gt = v[i..]
            .iter()
            .position(|&b| b == b'>')
            .ok_or(NameAddrError::Angle)?;
        let inner = &v[i + 1..i + rel_gt];
        if inner.first().is_some_and(|b| b.is_ascii_whitespace())
            || inner.last().is_some_and(|b| b.is_ascii_whitespace())
        {
            return Err(NameAddrError::SpaceInAngle);
        }
        let uri = Uri::parse(slice_of(whole, inner))?;
        let after = trim(&v[i + rel_gt + 1..]);
        let params = match after.first() {
            None => Bytes::new(),
            Some(b';') => slice_of(whole, &after[1..]),
            Some(_) => return Err(NameAddrError::Params),
        };
        check_params(&params)?;
        Ok(NameAddr {
            display,
            uri,
            params,
            angle: true,
        })
    }

    /// Parses a standalone value.
    pub fn parse(value: Bytes) -> Result<NameAddr, NameAddrError> {
        Self::parse_in(&value, &value)
    }

    /// A header parameter: `Some(None)` when present without value.
    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&[u8]> {
        self.param("tag").flatten()
    }
}

// Header parameters are `token [= (token / host / quoted-string)]`; an unbalanced quote
// or a stray character is malformed.
fn check_params(params: &[u8]) -> Result<(), NameAddrError> {
    let quotes = params.iter().filter(|&&b| b == b'"').count();
    if quotes % 2 != 0 {
        return Err(NameAddrError::Params);
    }
    for (name, _) in super::header::ParamIter::new(params) {
        if !name.iter().all(|&b| is_token_char(b)) {
            return Err(NameAddrError::Params);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<NameAddr, NameAddrError> {
        NameAddr::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn forms() {
        let n = p(r#""Bell, \"Alex\"" <sip:a@example.com>;tag=43"#).expect("valid");
        assert_eq!(n.tag(), Some(&b"43"[..]));
        assert!(n.display.is_some());
        let n = p("Alice<sip:a@example.com>").expect("no space before <");
        assert_eq!(n.display.as_deref(), Some(&b"Alice"[..]));
        let n = p("sip:a@example.com;tag=1;expires=30").expect("addr-spec");
        assert_eq!(n.uri.params.len(), 0);
        assert_eq!(n.param("expires"), Some(Some(&b"30"[..])));
        let n = p("<sip:a@example.com;transport=tcp>;expires=30").expect("angle");
        assert_eq!(n.uri.param("transport"), Some(Some(&b"tcp"[..])));
    }

    #[test]
    fn torture_cases() {
        assert_eq!(
            p(r#""Mr. J. User <sip:j.user@example.com>"#),
            Err(NameAddrError::UnterminatedQuote)
        );
        assert_eq!(
            p("Bell, Alexander <sip:a@example.com>"),
            Err(NameAddrError::DisplayName)
        );
        assert_eq!(
            p("\"W\" < sip:t@example.org >"),
            Err(NameAddrError::SpaceInAngle)
        );
        assert_eq!(
            p("sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            Err(NameAddrError::HeadersNeedAngle)
        );
        assert!(p("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").is_ok());
    }
}
