//! Network-asserted identity (RFC 3325), privacy (RFC 3323) and the anonymous From.
//!
//! - P-Asserted-Identity: one or two values, at most one `sip:`/`sips:` URI and at most
//!   one `tel:` URI (RFC 3325 s9.1). [`asserted_identities`] is lenient (the valid values,
//!   first of each kind), [`parse_asserted_identities`] strict.
//! - P-Preferred-Identity: what a UA would like asserted, same grammar (RFC 3325 s9.2).
//! - Privacy: `none`, `header`, `session`, `user`, `id` (RFC 3325 s9.3), `critical`, and
//!   `history` (RFC 7044 s7.2); values separated by `;`.
//! - [`strip_identity_for_untrusted`]: the RFC 3325 s5/s7 rule for a hop leaving the
//!   trust domain.

use super::{headers, push, quoted_display, remove, values, ExtName};
use crate::sip::message::header::is_token;
use crate::sip::message::name_addr::NameAddrError;
use crate::sip::message::uri::UriError;
use crate::sip::message::Message;
use crate::sip::message::{Header, HeaderName, NameAddr, Scheme, Uri};
use bytes::Bytes;
use std::fmt;

/// The P-Asserted-Identity header (RFC 3325 s9.1).
pub const P_ASSERTED_IDENTITY: ExtName = ExtName::long("P-Asserted-Identity");
/// The P-Preferred-Identity header (RFC 3325 s9.2).
pub const P_PREFERRED_IDENTITY: ExtName = ExtName::long("P-Preferred-Identity");
/// The Privacy header (RFC 3323 s4.2).
pub const PRIVACY: ExtName = ExtName::long("Privacy");

/// The anonymous URI of RFC 3323 s4.1.1.3.
pub const ANONYMOUS_URI: &str = "sip:anonymous@anonymous.invalid";

/// Why an identity or privacy header is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A quote or `<` left open.
    #[error("unbalanced quotes or angle brackets")]
    Unbalanced,
    /// One value did not parse as a name-addr.
    #[error("malformed identity: {0}")]
    NameAddr(#[from] NameAddrError),
    /// A URI (given to a setter) did not parse.
    #[error("malformed URI: {0}")]
    Uri(#[from] UriError),
    /// A scheme other than sip, sips or tel.
    #[error("identity URI must be sip, sips or tel")]
    Scheme,
    /// Two sip/sips values or two tel values (RFC 3325 s9.1 allows one of each).
    #[error("more than one identity of the same kind")]
    DuplicateKind,
    /// More than two values.
    #[error("{0} identities; at most two are allowed")]
    TooMany(usize),
    /// A privacy value that is not a token, or an empty one.
    #[error("malformed Privacy value")]
    PrivacySyntax,
    /// `none` together with other values (RFC 3323 s4.2: none means no privacy).
    #[error("Privacy 'none' combined with other values")]
    NoneCombined,
    /// A From tag that is not a token.
    #[error("tag is not a token")]
    Tag,
}

/// The kind of identity URI: RFC 3325 allows one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sip,
    Tel,
}

fn kind(uri: &Uri) -> Option<Kind> {
    match uri.scheme {
        Scheme::Sip | Scheme::Sips => Some(Kind::Sip),
        Scheme::Tel => Some(Kind::Tel),
        Scheme::Other(_) => None,
    }
}

/// Strictly parses every value of an identity header family (PAI or PPI).
fn parse_identities(msg: &Message, name: ExtName) -> Result<Vec<NameAddr>, IdentityError> {
    let vals = values(msg, name).ok_or(IdentityError::Unbalanced)?;
    if vals.len() > 2 {
        return Err(IdentityError::TooMany(vals.len()));
    }
    let mut out: Vec<NameAddr> = Vec::with_capacity(vals.len());
    for v in vals {
        let na = NameAddr::parse(v)?;
        let k = kind(&na.uri).ok_or(IdentityError::Scheme)?;
        if out.iter().any(|o| kind(&o.uri) == Some(k)) {
            return Err(IdentityError::DuplicateKind);
        }
        out.push(na);
    }
    Ok(out)
}

/// Leniently collects identities: values that parse, sip/sips/tel only, first of each kind.
fn lenient_identities(msg: &Message, name: ExtName) -> Vec<NameAddr> {
    let mut out: Vec<NameAddr> = Vec::new();
    for h in headers(msg, name) {
        let un = h.unfolded();
        let Some(parts) = crate::sip::message::header::split_commas(&un) else {
            continue;
        };
        for p in parts {
            let Ok(na) = NameAddr::parse(Bytes::copy_from_slice(p)) else {
                continue;
            };
            let Some(k) = kind(&na.uri) else { continue };
            if !out.iter().any(|o| kind(&o.uri) == Some(k)) {
                out.push(na);
            }
        }
    }
    out
}

/// The asserted identities that parse (sip/sips and tel, first of each), in order.
pub fn asserted_identities(msg: &Message) -> Vec<NameAddr> {
    lenient_identities(msg, P_ASSERTED_IDENTITY)
}

/// Every P-Asserted-Identity value, or why the header breaks RFC 3325 s9.1.
pub fn parse_asserted_identities(msg: &Message) -> Result<Vec<NameAddr>, IdentityError> {
    parse_identities(msg, P_ASSERTED_IDENTITY)
}

/// The preferred identities that parse (sip/sips and tel, first of each), in order.
pub fn preferred_identities(msg: &Message) -> Vec<NameAddr> {
    lenient_identities(msg, P_PREFERRED_IDENTITY)
}

/// Every P-Preferred-Identity value, or why the header breaks RFC 3325 s9.2.
pub fn parse_preferred_identities(msg: &Message) -> Result<Vec<NameAddr>, IdentityError> {
    parse_identities(msg, P_PREFERRED_IDENTITY)
}

/// Removes P-Preferred-Identity (a proxy that asserts an identity removes it, RFC 3325 s6).
pub fn remove_preferred_identity(msg: &mut Message) -> bool {
    remove(msg, P_PREFERRED_IDENTITY)
}

/// Removes every P-Asserted-Identity; returns whether one was there.
pub fn remove_asserted_identity(msg: &mut Message) -> bool {
    remove(msg, P_ASSERTED_IDENTITY)
}

/// Formats one identity value: `"display" <uri>` (the URI is checked, the name quoted).
pub fn format_identity(display: Option<&str>, uri: &str) -> Result<String, IdentityError> {
    let parsed = Uri::parse(Bytes::copy_from_slice(uri.as_bytes()))?;
    kind(&parsed).ok_or(IdentityError::Scheme)?;
    Ok(match display {
        Some(d) => format!("{} <{uri}>", quoted_display(d)),
        None => format!("<{uri}>"),
    })
}

/// Replaces every P-Asserted-Identity with one value.
pub fn set_asserted_identity(
    msg: &mut Message,
    display: Option<&str>,
    uri: &str,
) -> Result<(), IdentityError> {
    let value = format_identity(display, uri)?;
    remove(msg, P_ASSERTED_IDENTITY);
    push(msg, P_ASSERTED_IDENTITY, value);
    Ok(())
}

/// Adds the second P-Asserted-Identity (a tel URI next to a sip URI, or the reverse).
pub fn add_asserted_identity(
    msg: &mut Message,
    display: Option<&str>,
    uri: &str,
) -> Result<(), IdentityError> {
    let value = format_identity(display, uri)?;
    let existing = parse_asserted_identities(msg)?;
    let new = NameAddr::parse(Bytes::from(value.clone()))?;
    if existing.iter().any(|e| kind(&e.uri) == kind(&new.uri)) {
        return Err(IdentityError::DuplicateKind);
    }
    push(msg, P_ASSERTED_IDENTITY, value);
    Ok(())
}

/// One Privacy value (RFC 3323 s4.2, RFC 3325 s9.3, RFC 7044 s7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivacyValue {
    /// No privacy requested (must stand alone).
    None,
    /// Hide headers that reveal the user (From, Contact, Via...).
    Header,
    /// Hide the session (media anchored by the privacy service).
    Session,
    /// User-level privacy (only the user agent sets it).
    User,
    /// Keep the network-asserted identity private (RFC 3325).
    Id,
    /// History-Info entries are private (RFC 7044).
    History,
    /// Fail the call rather than leak (RFC 3323 s4.2).
    Critical,
}

const ALL_VALUES: [(PrivacyValue, &str); 7] = [
    (PrivacyValue::None, "none"),
    (PrivacyValue::Header, "header"),
    (PrivacyValue::Session, "session"),
    (PrivacyValue::User, "user"),
    (PrivacyValue::Id, "id"),
    (PrivacyValue::History, "history"),
    (PrivacyValue::Critical, "critical"),
];

impl PrivacyValue {
    /// The token as written on the wire.
    pub fn as_str(self) -> &'static str {
        ALL_VALUES
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("none", |(_, s)| s)
    }

    /// Recognises a token (case-insensitive); unknown extension values give `None`.
    pub fn from_token(t: &[u8]) -> Option<PrivacyValue> {
        ALL_VALUES
            .iter()
            .find(|(_, s)| s.as_bytes().eq_ignore_ascii_case(t))
            .map(|(v, _)| *v)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The set of Privacy values a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrivacySet(u8);

impl PrivacySet {
    /// No value at all (no Privacy header).
    pub const EMPTY: PrivacySet = PrivacySet(0);

    /// A set of the given values.
    pub fn of(values: &[PrivacyValue]) -> PrivacySet {
        let mut s = PrivacySet::EMPTY;
        for v in values {
            s.insert(*v);
        }
        s
    }

    /// Whether `v` is in the set.
    pub fn contains(self, v: PrivacyValue) -> bool {
        self.0 & v.bit() != 0
    }

    /// Adds `v`.
    pub fn insert(&mut self, v: PrivacyValue) {
        self.0 |= v.bit();
    }

    /// Whether no value is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the caller's identity must be withheld from untrusted parties: `id`, or
    /// `user`/`header` which hide the From and so the number too.
    pub fn hides_identity(self) -> bool {
        self.contains(PrivacyValue::Id)
            || self.contains(PrivacyValue::User)
            || self.contains(PrivacyValue::Header)
    }

    /// The values in wire order.
    pub fn iter(self) -> impl Iterator<Item = PrivacyValue> {
        ALL_VALUES
            .into_iter()
            .map(|(v, _)| v)
            .filter(move |v| self.contains(*v))
    }

    /// Parses one Privacy header value strictly; unknown extension tokens are ignored
    /// (priv-value = ... / token, RFC 3323 s4.2) but must still be tokens.
    pub fn parse(value: &[u8]) -> Result<PrivacySet, IdentityError> {
        let mut set = PrivacySet::EMPTY;
        let mut count = 0;
        for t in value.split(|&b| b == b';' || b == b',') {
            let t = crate::sip::message::header::trim(t);
            if !is_token(t) {
                return Err(IdentityError::PrivacySyntax);
            }
            count += 1;
            if let Some(v) = PrivacyValue::from_token(t) {
                set.insert(v);
            }
        }
        if set.contains(PrivacyValue::None) && count > 1 {
            return Err(IdentityError::NoneCombined);
        }
        Ok(set)
    }
}

impl fmt::Display for PrivacySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(v.as_str())?;
        }
        Ok(())
    }
}

/// The Privacy values of a message, leniently: malformed tokens are skipped. Several
/// headers or comma-separated values are merged.
pub fn privacy(msg: &Message) -> PrivacySet {
    let mut set = PrivacySet::EMPTY;
    for h in headers(msg, PRIVACY) {
        for t in h.unfolded().split(|&b| b == b';' || b == b',') {
            if let Some(v) = PrivacyValue::from_token(crate::sip::message::header::trim(t)) {
                set.insert(v);
            }
        }
    }
    set
}

/// Replaces the Privacy header; an empty set removes it.
pub fn set_privacy(msg: &mut Message, set: PrivacySet) {
    remove(msg, PRIVACY);
    if !set.is_empty() {
        push(msg, PRIVACY, set.to_string());
    }
}

/// The RFC 3325 rule for a message about to leave the trust domain: when Privacy holds
/// `id`, every P-Asserted-Identity is removed (s7: "MUST remove ... before forwarding to
/// an untrusted element"). Without `id` the identity may go on (s5), which is what lets
/// the user's phones show the caller. Returns whether anything was removed.
pub fn strip_identity_for_untrusted(msg: &mut Message) -> bool {
    // A Privacy header we cannot read could still have meant `id`: fail closed.
    let unreadable = headers(msg, PRIVACY).any(|h| PrivacySet::parse(&h.unfolded()).is_err());
    if privacy(msg).contains(PrivacyValue::Id) || unreadable {
        remove(msg, P_ASSERTED_IDENTITY)
    } else {
        false
    }
}

/// The From value of an anonymous caller (RFC 3323 s4.1.1.3) with our tag.
pub fn anonymous_from(tag: &str) -> Result<Bytes, IdentityError> {
    if !is_token(tag.as_bytes()) {
        return Err(IdentityError::Tag);
    }
    Ok(Bytes::from(format!(
        "\"Anonymous\" <{ANONYMOUS_URI}>;tag={tag}"
    )))
}

/// Replaces the From header with the anonymous one (RFC 3323 s4.1.1.3).
pub fn set_anonymous_from(msg: &mut Message, tag: &str) -> Result<(), IdentityError> {
    let value = anonymous_from(tag)?;
    let h = Header::new(HeaderName::From, value);
    match msg.headers.iter_mut().find(|x| x.name == HeaderName::From) {
        Some(existing) => *existing = h,
        None => msg.headers.push(h),
    }
    Ok(())
}

/// Whether an identity is anonymous: the user or host `anonymous`/`anonymous.invalid`,
/// or the display name `Anonymous` (what carriers send for a withheld number).
pub fn is_anonymous(na: &NameAddr) -> bool {
    let user = na
        .uri
        .user_unescaped()
        .is_some_and(|u| u.eq_ignore_ascii_case(b"anonymous"));
    let host = na
        .uri
        .host_raw
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case(b"anonymous.invalid"));
    let display = na
        .display
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case(b"anonymous"));
    user || host || display
}

#[cfg(test)]
mod tests {
    use super::super::test_util::invite_with;
    use super::*;

    #[test]
    fn two_identities_sip_and_tel() {
        let m = invite_with(
            "P-Asserted-Identity: \"Cullen Jennings\" <sip:fluffy@cisco.example>\r\n\
             p-asserted-identity:tel:+14085264000\r\n",
        );
        let ids = parse_asserted_identities(&m).expect("valid");
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].display.as_deref(), Some(&b"Cullen Jennings"[..]));
        assert_eq!(ids[1].uri.scheme, Scheme::Tel);
        assert_eq!(ids[1].uri.user.as_deref(), Some(&b"+14085264000"[..]));
        assert_eq!(asserted_identities(&m), ids);
    }

    #[test]
    fn comma_list_and_folding() {
        let m = invite_with(
            "P-Asserted-Identity: <sip:+4791234567@carrier.example;user=phone>,\r\n   <tel:+4791234567>\r\n",
        );
        let ids = asserted_identities(&m);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].uri.param("user"), Some(Some(&b"phone"[..])));
    }

    #[test]
    fn strict_rejects_lenient_salvages() {
        let m = invite_with("P-Asserted-Identity: <sip:a@example.com>, <sip:b@example.com>\r\n");
        assert_eq!(
            parse_asserted_identities(&m),
            Err(IdentityError::DuplicateKind)
        );
        let ids = asserted_identities(&m);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].uri.user.as_deref(), Some(&b"a"[..]));

        let m = invite_with("P-Asserted-Identity: <mailto:a@example.com>, <tel:+4721000000>\r\n");
        assert_eq!(parse_asserted_identities(&m), Err(IdentityError::Scheme));
        assert_eq!(asserted_identities(&m).len(), 1);

        let m = invite_with("P-Asserted-Identity: <sip:a@x>, <tel:+1234567>, <sip:c@x>\r\n");
        assert_eq!(
            parse_asserted_identities(&m),
            Err(IdentityError::TooMany(3))
        );

        let m = invite_with("P-Asserted-Identity: \"unterminated <sip:a@x>\r\n");
        assert_eq!(
            parse_asserted_identities(&m),
            Err(IdentityError::Unbalanced)
        );
        assert!(asserted_identities(&m).is_empty());

        let m = invite_with("P-Asserted-Identity: <sip:a@>\r\n");
        assert!(matches!(
            parse_asserted_identities(&m),
            Err(IdentityError::NameAddr(_))
        ));
        assert!(asserted_identities(&m).is_empty());

        let m = invite_with("");
        assert_eq!(parse_asserted_identities(&m), Ok(vec![]));
    }

    #[test]
    fn preferred_identity() {
        let mut m = invite_with("P-Preferred-Identity: \"Kari\" <sip:kari@tenant.example>\r\n");
        let ids = preferred_identities(&m);
        assert_eq!(ids.len(), 1);
        assert_eq!(parse_preferred_identities(&m).expect("valid"), ids);
        assert!(remove_preferred_identity(&mut m));
        assert!(preferred_identities(&m).is_empty());
    }

    #[test]
    fn set_and_add_asserted_identity() {
        let mut m = invite_with("P-Asserted-Identity: <sip:old@x.example>\r\n");
        set_asserted_identity(
            &mut m,
            Some("Ola \"O\" Nordmann"),
            "sip:+4721000000@sb.example",
        )
        .expect("valid");
        add_asserted_identity(&mut m, None, "tel:+4721000000").expect("tel next to sip");
        assert_eq!(
            add_asserted_identity(&mut m, None, "tel:+4799999999"),
            Err(IdentityError::DuplicateKind)
        );
        let ids = parse_asserted_identities(&m).expect("valid");
        assert_eq!(ids.len(), 2);
        assert_eq!(
            ids[0].display.as_deref(),
            Some(&br#"Ola \"O\" Nordmann"#[..])
        );
        assert_eq!(&ids[0].uri.raw[..], b"sip:+4721000000@sb.example");
        let wire = String::from_utf8(m.encode().to_vec()).expect("utf8");
        assert!(wire.contains(
            "P-Asserted-Identity: \"Ola \\\"O\\\" Nordmann\" <sip:+4721000000@sb.example>\r\n"
        ));
        assert!(!wire.contains("old@"));

        assert!(matches!(
            set_asserted_identity(&mut m, None, "sip:a b@x"),
            Err(IdentityError::Uri(_))
        ));
        assert_eq!(
            set_asserted_identity(&mut m, None, "mailto:a@x"),
            Err(IdentityError::Scheme)
        );
        assert!(matches!(
            set_asserted_identity(&mut m, None, "sip:a@x>\r\nVia: evil"),
            Err(IdentityError::Uri(_))
        ));
        // A failed setter leaves the message as it was.
        assert_eq!(parse_asserted_identities(&m).expect("valid").len(), 2);
    }

    #[test]
    fn privacy_values() {
        let m = invite_with("Privacy: id;critical\r\n");
        let p = privacy(&m);
        assert!(p.contains(PrivacyValue::Id));
        assert!(p.contains(PrivacyValue::Critical));
        assert!(!p.contains(PrivacyValue::Header));
        assert!(p.hides_identity());
        assert_eq!(p.to_string(), "id;critical");

        let m = invite_with("privacy:  Header ; ID ,user\r\nPrivacy: history\r\n");
        let p = privacy(&m);
        assert_eq!(
            p,
            PrivacySet::of(&[
                PrivacyValue::Header,
                PrivacyValue::Id,
                PrivacyValue::User,
                PrivacyValue::History
            ])
        );
        assert_eq!(p.to_string(), "header;user;id;history");

        assert_eq!(privacy(&invite_with("")), PrivacySet::EMPTY);
        let none = privacy(&invite_with("Privacy: none\r\n"));
        assert!(none.contains(PrivacyValue::None));
        assert!(!none.hides_identity());

        assert_eq!(
            PrivacySet::parse(b"id; x-future"),
            Ok(PrivacySet::of(&[PrivacyValue::Id]))
        );
        assert_eq!(
            PrivacySet::parse(b"id;;critical"),
            Err(IdentityError::PrivacySyntax)
        );
        assert_eq!(PrivacySet::parse(b"id@"), Err(IdentityError::PrivacySyntax));
        assert_eq!(
            PrivacySet::parse(b"none;id"),
            Err(IdentityError::NoneCombined)
        );
        assert_eq!(
            PrivacySet::parse(b"none"),
            Ok(PrivacySet::of(&[PrivacyValue::None]))
        );
    }

    #[test]
    fn set_privacy_replaces() {
        let mut m = invite_with("Privacy: none\r\n");
        set_privacy(&mut m, PrivacySet::of(&[PrivacyValue::Id]));
        assert_eq!(headers(&m, PRIVACY).count(), 1);
        assert_eq!(privacy(&m), PrivacySet::of(&[PrivacyValue::Id]));
        set_privacy(&mut m, PrivacySet::EMPTY);
        assert_eq!(headers(&m, PRIVACY).count(), 0);
    }

    #[test]
    fn untrusted_hop_rule() {
        let pai = "P-Asserted-Identity: <sip:+4791234567@carrier.example>\r\n";
        let mut m = invite_with(&format!("{pai}Privacy: id\r\n"));
        assert!(strip_identity_for_untrusted(&mut m));
        assert!(asserted_identities(&m).is_empty());
        // Privacy itself stays, so the next hop knows too.
        assert!(privacy(&m).contains(PrivacyValue::Id));

        let mut m = invite_with(pai);
        assert!(!strip_identity_for_untrusted(&mut m));
        assert_eq!(asserted_identities(&m).len(), 1);

        let mut m = invite_with(&format!("{pai}Privacy: header\r\n"));
        assert!(!strip_identity_for_untrusted(&mut m));

        let mut m = invite_with(&format!("{pai}Privacy: id@\r\n"));
        assert!(
            strip_identity_for_untrusted(&mut m),
            "unreadable Privacy fails closed"
        );
    }

    #[test]
    fn anonymous() {
        let v = anonymous_from("a73kszlfl").expect("token tag");
        assert_eq!(
            &v[..],
            b"\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=a73kszlfl"
        );
        assert_eq!(anonymous_from("bad tag"), Err(IdentityError::Tag));
        assert_eq!(anonymous_from(""), Err(IdentityError::Tag));

        let mut m = invite_with("");
        set_anonymous_from(&mut m, "x1").expect("valid");
        let from = m.from().expect("From parses");
        assert!(is_anonymous(&from));
        assert_eq!(from.tag(), Some(&b"x1"[..]));
        assert_eq!(m.headers_named(&HeaderName::From).count(), 1);

        let orig = invite_with("").from().expect("From parses");
        assert!(!is_anonymous(&orig));
        let carrier =
            NameAddr::parse(Bytes::from_static(b"<sip:Anonymous@192.0.2.1>;tag=9")).expect("valid");
        assert!(is_anonymous(&carrier));
        let display_only = NameAddr::parse(Bytes::from_static(
            b"\"anonymous\" <sip:restricted@192.0.2.1>",
        ))
        .expect("valid");
        assert!(is_anonymous(&display_only));
    }
}
