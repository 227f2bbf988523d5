//! P-Served-User (RFC 5502): the user a request is served for, and whether it is the
//! originating or terminating side of the session (`sescase`) and registered (`regstate`).
//!
//! A carrier that hands a call made from a user's mobile to sentralbord marks it
//! `<sip:+4791234567@carrier>;sescase=orig;regstate=reg`, and the call is then routed
//! as that user's outbound call. The header has exactly one value (RFC 5502 s6).

use super::{push, remove, values, ExtName};
use crate::sip::message::name_addr::NameAddrError;
use crate::sip::message::uri::UriError;
use crate::sip::message::{Message, NameAddr, Uri};
use bytes::Bytes;
use std::fmt;

/// The P-Served-User header (RFC 5502 s6).
pub const P_SERVED_USER: ExtName = ExtName::long("P-Served-User");

/// Why a P-Served-User header is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServedUserError {
    /// A quote or `<` left open.
    #[error("unbalanced quotes or angle brackets")]
    Unbalanced,
    /// The value did not parse as a name-addr.
    #[error("malformed served user: {0}")]
    NameAddr(#[from] NameAddrError),
    /// A URI given to the builder did not parse.
    #[error("malformed URI: {0}")]
    Uri(#[from] UriError),
    /// More than one value (the header is single-valued).
    #[error("{0} P-Served-User values; exactly one is allowed")]
    Multiple(usize),
    /// `sescase` other than `orig`/`term`.
    #[error("sescase must be orig or term")]
    SesCase,
    /// `regstate` other than `reg`/`unreg`.
    #[error("regstate must be reg or unreg")]
    RegState,
}

/// The session case: which side of the session the served user is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SesCase {
    /// The served user is calling (originating).
    Orig,
    /// The served user is called (terminating).
    Term,
}

impl SesCase {
    /// The token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SesCase::Orig => "orig",
            SesCase::Term => "term",
        }
    }
}

/// The served user's registration state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    /// Registered.
    Reg,
    /// Not registered.
    Unreg,
}

impl RegState {
    /// The token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RegState::Reg => "reg",
            RegState::Unreg => "unreg",
        }
    }
}

/// A parsed P-Served-User value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedUser {
    /// The served user's URI.
    pub uri: Uri,
    /// The session case; RFC 5502 makes it optional, so absent means "not said".
    pub sescase: Option<SesCase>,
    /// The registration state, if given.
    pub regstate: Option<RegState>,
}

impl ServedUser {
    /// Parses one value; unknown parameters (3GPP's `orig-cdiv`...) are ignored.
    pub fn parse(value: Bytes) -> Result<ServedUser, ServedUserError> {
        let na = NameAddr::parse(value)?;
        let sescase = match na.param("sescase") {
            None => None,
            Some(Some(v)) if v.eq_ignore_ascii_case(b"orig") => Some(SesCase::Orig),
            Some(Some(v)) if v.eq_ignore_ascii_case(b"term") => Some(SesCase::Term),
            Some(_) => return Err(ServedUserError::SesCase),
        };
        let regstate = match na.param("regstate") {
            None => None,
            Some(Some(v)) if v.eq_ignore_ascii_case(b"reg") => Some(RegState::Reg),
            Some(Some(v)) if v.eq_ignore_ascii_case(b"unreg") => Some(RegState::Unreg),
            Some(_) => return Err(ServedUserError::RegState),
        };
        Ok(ServedUser {
            uri: na.uri,
            sescase,
            regstate,
        })
    }

    /// Whether the request is the served user's own outgoing call.
    pub fn is_originating(&self) -> bool {
        self.sescase == Some(SesCase::Orig)
    }
}

impl fmt::Display for ServedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.uri)?;
        if let Some(s) = self.sescase {
            write!(f, ";sescase={}", s.as_str())?;
        }
        if let Some(r) = self.regstate {
            write!(f, ";regstate={}", r.as_str())?;
        }
        Ok(())
    }
}

/// The message's P-Served-User: `Ok(None)` when absent, an error when malformed or repeated.
pub fn served_user(msg: &Message) -> Result<Option<ServedUser>, ServedUserError> {
    let vals = values(msg, P_SERVED_USER).ok_or(ServedUserError::Unbalanced)?;
    match vals.len() {
        0 => Ok(None),
        1 => vals.into_iter().next().map(ServedUser::parse).transpose(),
        n => Err(ServedUserError::Multiple(n)),
    }
}

/// Replaces the P-Served-User header.
pub fn set_served_user(
    msg: &mut Message,
    uri: &str,
    sescase: Option<SesCase>,
    regstate: Option<RegState>,
) -> Result<(), ServedUserError> {
    let su = ServedUser {
        uri: Uri::parse(Bytes::copy_from_slice(uri.as_bytes()))?,
        sescase,
        regstate,
    };
    remove(msg, P_SERVED_USER);
    push(msg, P_SERVED_USER, su.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::invite_with;
    use super::*;

    #[test]
    fn mobile_originated() {
        let m = invite_with(
            "P-Served-User: <sip:+4791234567@carrier.example;user=phone>;sescase=orig;regstate=reg\r\n",
        );
        let su = served_user(&m).expect("valid").expect("present");
        assert!(su.is_originating());
        assert_eq!(su.regstate, Some(RegState::Reg));
        assert_eq!(su.uri.user.as_deref(), Some(&b"+4791234567"[..]));
        assert_eq!(su.uri.param("user"), Some(Some(&b"phone"[..])));
    }

    #[test]
    fn forms_and_whitespace() {
        let m = invite_with(
            "p-served-user:  sip:bob@example.com ; SesCase = TERM ;regstate=unreg ;orig-cdiv\r\n",
        );
        let su = served_user(&m).expect("valid").expect("present");
        assert_eq!(su.sescase, Some(SesCase::Term));
        assert_eq!(su.regstate, Some(RegState::Unreg));
        assert!(!su.is_originating());

        let m = invite_with("P-Served-User: <tel:+4721000000>\r\n");
        let su = served_user(&m).expect("valid").expect("present");
        assert_eq!(su.sescase, None);
        assert_eq!(su.regstate, None);

        assert_eq!(served_user(&invite_with("")), Ok(None));
    }

    #[test]
    fn garbage_is_typed() {
        let err = |v: &str| {
            let m = invite_with(&format!("P-Served-User: {v}\r\n"));
            served_user(&m).expect_err(v)
        };
        assert_eq!(err("<sip:a@x>;sescase=both"), ServedUserError::SesCase);
        assert_eq!(err("<sip:a@x>;sescase"), ServedUserError::SesCase);
        assert_eq!(err("<sip:a@x>;regstate=maybe"), ServedUserError::RegState);
        assert_eq!(err("<sip:a@x>, <sip:b@x>"), ServedUserError::Multiple(2));
        assert_eq!(err("<sip:a@x"), ServedUserError::Unbalanced);
        assert!(matches!(err("<sip:a@>"), ServedUserError::NameAddr(_)));
    }

    #[test]
    fn set_round_trips() {
        let mut m = invite_with("P-Served-User: <sip:old@x>\r\n");
        set_served_user(
            &mut m,
            "sip:+4791234567@sb.example",
            Some(SesCase::Orig),
            Some(RegState::Reg),
        )
        .expect("valid");
        let wire = String::from_utf8(m.encode().to_vec()).expect("utf8");
        assert!(wire
            .contains("P-Served-User: <sip:+4791234567@sb.example>;sescase=orig;regstate=reg\r\n"));
        assert!(!wire.contains("old@"));
        let su = served_user(&m).expect("valid").expect("present");
        assert!(su.is_originating());
        assert!(matches!(
            set_served_user(&mut m, "bad uri", None, None),
            Err(ServedUserError::Uri(_))
        ));
    }
}
