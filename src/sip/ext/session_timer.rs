//! Session timers (RFC 4028): Session-Expires (compact form `x`), Min-SE and the
//! `timer` option tag.
//!
//! Only parsing and formatting live here; the negotiation (422 when the interval is
//! below our Min-SE, who refreshes, the BYE at expiry) belongs to the call model.

use super::{add_option_tag, has_option_tag, headers, parse_delta_seconds, push, remove, ExtName};
use crate::sip::message::header::{trim, ParamIter};
use crate::sip::message::{HeaderName, Message};
use std::fmt;

/// The Session-Expires header and its compact form (RFC 4028 s4).
pub const SESSION_EXPIRES: ExtName = ExtName {
    long: "Session-Expires",
    compact: Some("x"),
};
/// The Min-SE header (RFC 4028 s5).
pub const MIN_SE: ExtName = ExtName::long("Min-SE");
/// The option tag of the extension.
pub const TIMER_TAG: &str = "timer";
/// The lowest Min-SE any element may use (RFC 4028 s4: "MUST NOT be less than 90 seconds").
pub const MIN_SE_FLOOR: u32 = 90;
/// The recommended Session-Expires (RFC 4028 s4: 1800 seconds).
pub const DEFAULT_SESSION_EXPIRES: u32 = 1800;

/// Why a session timer header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionTimerError {
    /// The delta-seconds are not digits.
    #[error("interval is not delta-seconds")]
    Delta,
    /// `refresher` other than `uac`/`uas`.
    #[error("refresher must be uac or uas")]
    Refresher,
    /// The header appears more than once (both are single-valued).
    #[error("header repeated")]
    Repeated,
}

/// Which side refreshes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The caller (the side that sent the INVITE).
    Uac,
    /// The callee.
    Uas,
}

impl Refresher {
    /// The token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A Session-Expires value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub delta: u32,
    /// Who refreshes, if said.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses `delta-seconds *(;se-params)`; unknown parameters are ignored.
    pub fn parse(value: &[u8]) -> Result<SessionExpires, SessionTimerError> {
        let (delta, params) = split_delta(value)?;
        let mut refresher = None;
        for (name, v) in ParamIter::new(params) {
            if !name.eq_ignore_ascii_case(b"refresher") {
                continue;
            }
            refresher = Some(match v {
                Some(v) if v.eq_ignore_ascii_case(b"uac") => Refresher::Uac,
                Some(v) if v.eq_ignore_ascii_case(b"uas") => Refresher::Uas,
                _ => return Err(SessionTimerError::Refresher),
            });
        }
        Ok(SessionExpires { delta, refresher })
    }

    /// Whether the interval is below `min_se` (the receiver then answers 422, RFC 4028 s8).
    pub fn is_too_small(&self, min_se: u32) -> bool {
        self.delta < min_se
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(r) = self.refresher {
            write!(f, ";refresher={}", r.as_str())?;
        }
        Ok(())
    }
}

/// Splits `delta ;params` and parses the delta.
fn split_delta(value: &[u8]) -> Result<(u32, &[u8]), SessionTimerError> {
    let v = trim(value);
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    let delta = parse_delta_seconds(trim(&v[..end])).ok_or(SessionTimerError::Delta)?;
    let params = v.get(end + 1..).unwrap_or_default();
    Ok((delta, params))
}

/// The one header of a single-valued family, if present.
fn single(msg: &Message, name: ExtName) -> Result<Option<Vec<u8>>, SessionTimerError> {
    let mut it = headers(msg, name);
    let Some(h) = it.next() else { return Ok(None) };
    if it.next().is_some() {
        return Err(SessionTimerError::Repeated);
    }
    Ok(Some(h.unfolded().into_owned()))
}

/// The message's Session-Expires (`x` included): `Ok(None)` when absent.
pub fn session_expires(msg: &Message) -> Result<Option<SessionExpires>, SessionTimerError> {
    single(msg, SESSION_EXPIRES)?
        .map(|v| SessionExpires::parse(&v))
        .transpose()
}

/// Replaces Session-Expires (either form) with `se`, written in the long form.
pub fn set_session_expires(msg: &mut Message, se: SessionExpires) {
    remove(msg, SESSION_EXPIRES);
    push(msg, SESSION_EXPIRES, se.to_string());
}

/// The message's Min-SE (`delta-seconds *(;generic-param)`): `Ok(None)` when absent.
pub fn min_se(msg: &Message) -> Result<Option<u32>, SessionTimerError> {
    single(msg, MIN_SE)?
        .map(|v| split_delta(&v).map(|(d, _)| d))
        .transpose()
}

/// Replaces Min-SE.
pub fn set_min_se(msg: &mut Message, seconds: u32) {
    remove(msg, MIN_SE);
    push(msg, MIN_SE, seconds.to_string());
}

/// Whether `timer` is in Supported (`k` included).
pub fn supports_timer(msg: &Message) -> bool {
    has_option_tag(msg, &HeaderName::Supported, TIMER_TAG)
}

/// Whether `timer` is in Require.
pub fn requires_timer(msg: &Message) -> bool {
    has_option_tag(msg, &HeaderName::Require, TIMER_TAG)
}

/// Adds `Supported: timer` unless already listed.
pub fn add_supported_timer(msg: &mut Message) {
    add_option_tag(msg, HeaderName::Supported, TIMER_TAG);
}

/// Adds `Require: timer` unless already listed (a 2xx whose refresher is the UAC, RFC 4028 s9).
pub fn add_require_timer(msg: &mut Message) {
    add_option_tag(msg, HeaderName::Require, TIMER_TAG);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::invite_with;
    use super::*;

    #[test]
    fn long_and_compact_forms() {
        let m = invite_with("Session-Expires: 1800;refresher=uac\r\n");
        assert_eq!(
            session_expires(&m),
            Ok(Some(SessionExpires {
                delta: 1800,
                refresher: Some(Refresher::Uac)
            }))
        );
        let m = invite_with("x:   4000 ; Refresher = UAS ; x-foo=1\r\n");
        assert_eq!(
            session_expires(&m),
            Ok(Some(SessionExpires {
                delta: 4000,
                refresher: Some(Refresher::Uas)
            }))
        );
        let m = invite_with("X: 90\r\n");
        let se = session_expires(&m).expect("valid").expect("present");
        assert_eq!(se.refresher, None);
        assert!(!se.is_too_small(MIN_SE_FLOOR));
        assert!(se.is_too_small(120));
        assert_eq!(session_expires(&invite_with("")), Ok(None));
    }

    #[test]
    fn garbage_session_expires() {
        for (v, err) in [
            ("abc", SessionTimerError::Delta),
            ("", SessionTimerError::Delta),
            (";refresher=uac", SessionTimerError::Delta),
            ("-5", SessionTimerError::Delta),
            ("1800;refresher=both", SessionTimerError::Refresher),
            ("1800;refresher", SessionTimerError::Refresher),
        ] {
            let m = invite_with(&format!("Session-Expires: {v}\r\n"));
            assert_eq!(session_expires(&m), Err(err), "{v:?}");
        }
        let m = invite_with("Session-Expires: 1800\r\nx: 90\r\n");
        assert_eq!(session_expires(&m), Err(SessionTimerError::Repeated));
        let m = invite_with("Session-Expires: 99999999999\r\n");
        assert_eq!(
            session_expires(&m).map(|s| s.map(|s| s.delta)),
            Ok(Some(u32::MAX))
        );
    }

    #[test]
    fn set_replaces_both_forms() {
        let mut m = invite_with("x: 90\r\n");
        set_session_expires(
            &mut m,
            SessionExpires {
                delta: 1800,
                refresher: Some(Refresher::Uas),
            },
        );
        assert_eq!(headers(&m, SESSION_EXPIRES).count(), 1);
        let wire = String::from_utf8(m.encode().to_vec()).expect("utf8");
        assert!(wire.contains("Session-Expires: 1800;refresher=uas\r\n"));
        assert!(!wire.contains("x: 90"));
    }

    #[test]
    fn min_se_parse_and_set() {
        assert_eq!(min_se(&invite_with("Min-SE: 90\r\n")), Ok(Some(90)));
        assert_eq!(min_se(&invite_with("min-se:  120 ;x=y\r\n")), Ok(Some(120)));
        assert_eq!(min_se(&invite_with("")), Ok(None));
        assert_eq!(
            min_se(&invite_with("Min-SE: ninety\r\n")),
            Err(SessionTimerError::Delta)
        );
        assert_eq!(
            min_se(&invite_with("Min-SE: 90\r\nMin-SE: 120\r\n")),
            Err(SessionTimerError::Repeated)
        );
        let mut m = invite_with("Min-SE: 90\r\n");
        set_min_se(&mut m, 600);
        assert_eq!(min_se(&m), Ok(Some(600)));
    }

    #[test]
    fn timer_option_tag() {
        let mut m = invite_with("Supported: 100rel,  TIMER, replaces\r\n");
        assert!(supports_timer(&m));
        assert!(!requires_timer(&m));
        add_supported_timer(&mut m);
        assert_eq!(m.headers_named(&HeaderName::Supported).count(), 1);
        add_require_timer(&mut m);
        add_require_timer(&mut m);
        assert!(requires_timer(&m));
        assert_eq!(m.headers_named(&HeaderName::Require).count(), 1);

        let mut m = invite_with("k: replaces\r\n");
        assert!(!supports_timer(&m));
        add_supported_timer(&mut m);
        assert!(supports_timer(&m));
    }
}
