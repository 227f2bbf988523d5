//! Reliable provisional responses (RFC 3262): RSeq, RAck and the `100rel` option tag.
//!
//! `RSeq: 988789` numbers a reliable provisional response; the PRACK that acknowledges it
//! carries `RAck: 988789 1 INVITE` (the RSeq, then the CSeq number and method of the
//! INVITE). The retransmission and matching rules belong to the call model.

use super::{add_option_tag, has_option_tag, headers, push, remove, ExtName};
use crate::sip::message::header::trim;
use crate::sip::message::{HeaderName, Message};
use crate::sip::Method;
use std::fmt;

/// The RSeq header (RFC 3262 s7.1).
pub const RSEQ: ExtName = ExtName::long("RSeq");
/// The RAck header (RFC 3262 s7.2).
pub const RACK: ExtName = ExtName::long("RAck");
/// The option tag of the extension.
pub const REL100_TAG: &str = "100rel";

/// Why an RSeq or RAck header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RseqError {
    /// A sequence number that is not 1-10 digits within 32 bits.
    #[error("malformed sequence number")]
    Number,
    /// RAck without its three fields.
    #[error("RAck needs response-num, CSeq-num and method")]
    Fields,
    /// The method is not a token.
    #[error("malformed method in RAck")]
    Method,
    /// The header appears more than once (both are single-valued).
    #[error("header repeated")]
    Repeated,
}

/// Parses `1*DIGIT` into 32 bits (RFC 3262: RSeq and CSeq numbers stay below 2^32).
fn number(v: &[u8]) -> Result<u32, RseqError> {
    if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
        return Err(RseqError::Number);
    }
    let n = v.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
    u32::try_from(n).map_err(|_| RseqError::Number)
}

/// Parses an RSeq value.
pub fn parse_rseq(value: &[u8]) -> Result<u32, RseqError> {
    number(trim(value))
}

/// An RAck value: which reliable provisional response a PRACK acknowledges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RAck {
    /// The RSeq of the acknowledged response.
    pub rseq: u32,
    /// The CSeq number of the request the response belongs to.
    pub cseq: u32,
    /// The method of that request (INVITE).
    pub method: Method,
}

impl RAck {
    /// Parses `response-num LWS CSeq-num LWS Method`.
    pub fn parse(value: &[u8]) -> Result<RAck, RseqError> {
        let mut fields = value
            .split(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .filter(|f| !f.is_empty());
        let (Some(r), Some(c), Some(m), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(RseqError::Fields);
        };
        if !crate::sip::message::header::is_token(m) {
            return Err(RseqError::Method);
        }
        Ok(RAck {
            rseq: number(r)?,
            cseq: number(c)?,
            method: Method::from_token(m),
        })
    }
}

impl fmt::Display for RAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rseq, self.cseq, self.method)
    }
}

/// The one header of a single-valued family, if present.
fn single(msg: &Message, name: ExtName) -> Result<Option<Vec<u8>>, RseqError> {
    let mut it = headers(msg, name);
    let Some(h) = it.next() else { return Ok(None) };
    if it.next().is_some() {
        return Err(RseqError::Repeated);
    }
    Ok(Some(h.unfolded().into_owned()))
}

/// The message's RSeq: `Ok(None)` when absent.
pub fn rseq(msg: &Message) -> Result<Option<u32>, RseqError> {
    single(msg, RSEQ)?.map(|v| parse_rseq(&v)).transpose()
}

/// Replaces RSeq.
pub fn set_rseq(msg: &mut Message, rseq: u32) {
    remove(msg, RSEQ);
    push(msg, RSEQ, rseq.to_string());
}

/// The message's RAck: `Ok(None)` when absent.
pub fn rack(msg: &Message) -> Result<Option<RAck>, RseqError> {
    single(msg, RACK)?.map(|v| RAck::parse(&v)).transpose()
}

/// Replaces RAck.
pub fn set_rack(msg: &mut Message, rack: &RAck) {
    remove(msg, RACK);
    push(msg, RACK, rack.to_string());
}

/// Whether `100rel` is in Supported (`k` included).
pub fn supports_100rel(msg: &Message) -> bool {
    has_option_tag(msg, &HeaderName::Supported, REL100_TAG)
}

/// Whether `100rel` is in Require.
pub fn requires_100rel(msg: &Message) -> bool {
    has_option_tag(msg, &HeaderName::Require, REL100_TAG)
}

/// Adds `Require: 100rel` (a reliable provisional response must carry it, RFC 3262 s3).
pub fn add_require_100rel(msg: &mut Message) {
    add_option_tag(msg, HeaderName::Require, REL100_TAG);
}

/// Adds `Supported: 100rel` unless already listed.
pub fn add_supported_100rel(msg: &mut Message) {
    add_option_tag(msg, HeaderName::Supported, REL100_TAG);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::invite_with;
    use super::*;

    #[test]
    fn option_tags_join_the_existing_supported_header() {
        let mut m = invite_with("Supported: timer\r\n");
        add_supported_100rel(&mut m);
        add_supported_100rel(&mut m);
        let values: Vec<_> = m
            .headers_named(&HeaderName::Supported)
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect();
        assert_eq!(values, ["timer, 100rel"]);
        let mut m = invite_with("");
        add_supported_100rel(&mut m);
        assert!(supports_100rel(&m));
    }

    #[test]
    fn rseq_values() {
        assert_eq!(rseq(&invite_with("RSeq: 988789\r\n")), Ok(Some(988789)));
        assert_eq!(rseq(&invite_with("rseq:   1  \r\n")), Ok(Some(1)));
        assert_eq!(
            rseq(&invite_with("RSeq: 4294967295\r\n")),
            Ok(Some(u32::MAX))
        );
        assert_eq!(rseq(&invite_with("")), Ok(None));
        for bad in ["4294967296", "12345678901", "1 2", "x", "-1", "0x10"] {
            assert_eq!(
                rseq(&invite_with(&format!("RSeq: {bad}\r\n"))),
                Err(RseqError::Number),
                "{bad}"
            );
        }
        assert_eq!(
            rseq(&invite_with("RSeq: 1\r\nRSeq: 2\r\n")),
            Err(RseqError::Repeated)
        );
        let mut m = invite_with("RSeq: 1\r\n");
        set_rseq(&mut m, 2);
        assert_eq!(rseq(&m), Ok(Some(2)));
    }

    #[test]
    fn rack_values() {
        let m = invite_with("RAck: 776656 1 INVITE\r\n");
        let r = rack(&m).expect("valid").expect("present");
        assert_eq!(
            r,
            RAck {
                rseq: 776656,
                cseq: 1,
                method: Method::Invite
            }
        );
        assert_eq!(r.to_string(), "776656 1 INVITE");
        let m = invite_with("rack:\t776656   1\t INVITE \r\n");
        assert_eq!(rack(&m).expect("valid"), Some(r.clone()));
        // Folded over two lines.
        let m = invite_with("RAck: 776656 1\r\n INVITE\r\n");
        assert_eq!(rack(&m).expect("valid"), Some(r.clone()));

        for (bad, err) in [
            ("776656 1", RseqError::Fields),
            ("776656 1 INVITE extra", RseqError::Fields),
            ("", RseqError::Fields),
            ("x 1 INVITE", RseqError::Number),
            ("1 99999999999 INVITE", RseqError::Number),
            ("1 1 INV@TE", RseqError::Method),
        ] {
            assert_eq!(RAck::parse(bad.as_bytes()), Err(err), "{bad:?}");
        }
        let mut m = invite_with("");
        set_rack(&mut m, &r);
        set_rack(&mut m, &r);
        assert_eq!(headers(&m, RACK).count(), 1);
        assert_eq!(rack(&m), Ok(Some(r)));
    }

    #[test]
    fn rel100_option_tag() {
        let mut m = invite_with("Supported: timer, 100REL\r\n");
        assert!(supports_100rel(&m));
        assert!(!requires_100rel(&m));
        add_require_100rel(&mut m);
        assert!(requires_100rel(&m));
        add_supported_100rel(&mut m);
        assert_eq!(m.headers_named(&HeaderName::Supported).count(), 1);
    }
}
