//! SIP extension headers the call model reads and writes, one module per header family.
//!
//! Each module is a small typed parse/format pair working on a [`Message`]:
//! - [`identity`]: P-Asserted-Identity, P-Preferred-Identity (RFC 3325), Privacy
//!   (RFC 3323), anonymous From;
//! - [`diversion`]: History-Info (RFC 7044, causes of RFC 4458) and Diversion (RFC 5806);
//! - [`served_user`]: P-Served-User (RFC 5502);
//! - [`session_timer`]: Session-Expires, Min-SE and the `timer` option tag (RFC 4028);
//! - [`rseq`]: RSeq, RAck and the `100rel` option tag (RFC 3262).
//!
//! The codec does not know these names ([`crate::sip::message::HeaderName::Other`]), so
//! they are matched here by their raw name, long or compact form, case-insensitively.
//! Nothing panics on garbage: parsers return typed errors or `None`.

pub mod diversion;
pub mod identity;
pub mod rseq;
pub mod served_user;
pub mod session_timer;

use crate::sip::message::header::split_commas;
use crate::sip::message::uri::slice_of;
use crate::sip::message::{Header, HeaderName, Message};
use bytes::Bytes;

/// A header family's names: the long form and, if RFC-defined, the compact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtName {
    /// The long name, written when sentralbord creates the header.
    pub long: &'static str,
    /// The one-letter compact form (RFC 3261 s7.3.3), if any.
    pub compact: Option<&'static str>,
}

impl ExtName {
    /// A name without a compact form.
    pub const fn long(long: &'static str) -> ExtName {
        ExtName {
            long,
            compact: None,
        }
    }

    /// Whether a raw header name is this one (either form, case-insensitive).
    pub fn matches(&self, raw: &[u8]) -> bool {
        raw.eq_ignore_ascii_case(self.long.as_bytes())
            || self
                .compact
                .is_some_and(|c| raw.eq_ignore_ascii_case(c.as_bytes()))
    }
}

/// Every header of `msg` with this name, in order.
pub fn headers<'a>(msg: &'a Message, name: ExtName) -> impl Iterator<Item = &'a Header> + 'a {
    msg.headers
        .iter()
        .filter(move |h| name.matches(&h.raw_name))
}

/// The comma-separated values of every header with this name, in order; `None` when a
/// quote or `<` is left open in one of them.
pub fn values(msg: &Message, name: ExtName) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    for h in headers(msg, name) {
        let un = h.unfolded();
        // Zero-copy when no folding had to be undone.
        let whole = match &un {
            std::borrow::Cow::Borrowed(_) => h.value.clone(),
            std::borrow::Cow::Owned(o) => Bytes::copy_from_slice(o),
        };
        for part in split_commas(&whole)? {
            if !part.is_empty() {
                out.push(slice_of(&whole, part));
            }
        }
    }
    Some(out)
}

/// Removes every header with this name; returns whether one was there.
pub fn remove(msg: &mut Message, name: ExtName) -> bool {
    let before = msg.headers.len();
    msg.headers.retain(|h| !name.matches(&h.raw_name));
    msg.headers.len() != before
}

/// Appends a header with this family's long name.
pub fn push(msg: &mut Message, name: ExtName, value: impl Into<Bytes>) {
    msg.headers.push(Header::other(name.long, value));
}

/// Whether an option tag is listed in any header of this kind (Supported, Require...).
pub fn has_option_tag(msg: &Message, name: &HeaderName, tag: &str) -> bool {
    msg.values(name)
        .any(|(_, v)| v.eq_ignore_ascii_case(tag.as_bytes()))
}

/// Adds an option tag unless it is already listed: appended to the last header of that
/// name (one `Supported: timer, 100rel` line, as peers that read only the first header
/// expect), or in a header of its own when there is none.
pub fn add_option_tag(msg: &mut Message, name: HeaderName, tag: &'static str) {
    if has_option_tag(msg, &name, tag) {
        return;
    }
    match msg.headers.iter_mut().rev().find(|h| h.name == name) {
        Some(h) if !h.value.is_empty() => {
            let mut value = Vec::with_capacity(h.value.len() + 2 + tag.len());
            value.extend_from_slice(&h.value);
            value.extend_from_slice(b", ");
            value.extend_from_slice(tag.as_bytes());
            h.value = bytes::Bytes::from(value);
        }
        Some(h) => h.value = bytes::Bytes::from_static(tag.as_bytes()),
        None => msg.push(name, tag),
    }
}

/// Parses `delta-seconds` (RFC 3261 s25.1): digits only; values beyond 2^32-1 saturate,
/// as RFC 3261 s20.19 tells receivers to treat them.
pub fn parse_delta_seconds(v: &[u8]) -> Option<u32> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for d in v {
        n = (n * 10 + u64::from(d - b'0')).min(u64::from(u32::MAX));
    }
    u32::try_from(n).ok()
}

/// Writes `s` as a quoted-string for a display name: `"` and `\` escaped, control
/// characters (CR and LF above all: header injection) replaced by a space.
pub fn quoted_display(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::sip::message::{parse, Message, Parsed};
    use bytes::Bytes;

    /// Parses an INVITE carrying the given extra header lines.
    pub fn invite_with(extra: &str) -> Message {
        let text = format!(
            "INVITE sip:+4721000000@192.0.2.10 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:+4721000000@192.0.2.10>\r\n\
             From: \"Carrier\" <sip:+4791234567@192.0.2.1>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710@192.0.2.1\r\n\
             CSeq: 314159 INVITE\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n"
        );
        match parse(Bytes::from(text)) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("test message does not parse: {error:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::invite_with;
    use super::*;

    const SE: ExtName = ExtName {
        long: "Session-Expires",
        compact: Some("x"),
    };

    #[test]
    fn names_values_and_removal() {
        let mut m = invite_with("x: 1800\r\nSESSION-EXPIRES: 90,\r\n 120\r\nX-Other: 1\r\n");
        assert_eq!(headers(&m, SE).count(), 2);
        let v = values(&m, SE).expect("balanced");
        assert_eq!(v, vec!["1800", "90", "120"]);
        assert!(remove(&mut m, SE));
        assert!(!remove(&mut m, SE));
        assert_eq!(headers(&m, SE).count(), 0);
        assert!(m.headers_raw("X-Other").next().is_some());
        push(&mut m, SE, "1800");
        assert!(m
            .encode()
            .windows(22)
            .any(|w| w == b"Session-Expires: 1800\r"));
    }

    #[test]
    fn unbalanced_values_are_none() {
        let m = invite_with("P-Asserted-Identity: \"open <sip:a@b>\r\n");
        assert_eq!(values(&m, ExtName::long("P-Asserted-Identity")), None);
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_delta_seconds(b"1800"), Some(1800));
        assert_eq!(parse_delta_seconds(b"0"), Some(0));
        assert_eq!(parse_delta_seconds(b"99999999999999999999"), Some(u32::MAX));
        assert_eq!(parse_delta_seconds(b""), None);
        assert_eq!(parse_delta_seconds(b"-1"), None);
        assert_eq!(parse_delta_seconds(b"18 00"), None);
    }

    #[test]
    fn option_tags() {
        let mut m = invite_with("k: 100rel, Timer\r\n");
        assert!(has_option_tag(&m, &HeaderName::Supported, "timer"));
        assert!(!has_option_tag(&m, &HeaderName::Require, "timer"));
        add_option_tag(&mut m, HeaderName::Supported, "timer");
        assert_eq!(m.headers_named(&HeaderName::Supported).count(), 1);
        add_option_tag(&mut m, HeaderName::Require, "100rel");
        assert!(has_option_tag(&m, &HeaderName::Require, "100rel"));
    }

    /// Deterministic garbage through every parser and setter of the family modules:
    /// nothing may panic (the codec hands them any bytes a peer sent).
    #[test]
    fn garbage_never_panics() {
        use crate::sip::message::Uri;
        use crate::sip::Method;
        const ALPHABET: &[u8] =
            b"<>\";,=?&%@:.+- \t\r\n\\abcdefxyzSIPsiptel0123456789#*()\xc3\xa6\xff";
        const NAMES: [ExtName; 9] = [
            identity::P_ASSERTED_IDENTITY,
            identity::P_PREFERRED_IDENTITY,
            identity::PRIVACY,
            diversion::HISTORY_INFO,
            diversion::DIVERSION,
            served_user::P_SERVED_USER,
            session_timer::SESSION_EXPIRES,
            session_timer::MIN_SE,
            rseq::RACK,
        ];
        let mut seed: u64 = 0x5eed_cafe;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        let from = Uri::parse(Bytes::from_static(b"sip:a@x")).expect("valid");
        let to = Uri::parse(Bytes::from_static(b"sip:b@x")).expect("valid");
        for round in 0..4000 {
            let len = next() % 48;
            let mut v: Vec<u8> = (0..len)
                .map(|_| ALPHABET[next() % ALPHABET.len()])
                .collect();
            // Half the time, start from something almost valid.
            if round % 2 == 0 {
                let mut base =
                    b"<sip:+4721000000@h>;index=1.1;mp=1;sescase=orig;counter=1".to_vec();
                let at = next() % base.len();
                base.splice(at..at, v);
                v = base;
            }
            let mut m = Message::request(Method::Invite, from.clone());
            for name in NAMES {
                m.headers
                    .push(Header::other(name.long, Bytes::from(v.clone())));
            }
            m.headers.push(Header::other("x", Bytes::from(v.clone())));
            m.headers
                .push(Header::other("RSeq", Bytes::from(v.clone())));
            let _ = identity::asserted_identities(&m);
            let _ = identity::parse_asserted_identities(&m);
            let _ = identity::preferred_identities(&m);
            let _ = identity::privacy(&m);
            let _ = identity::PrivacySet::parse(&v);
            let _ = diversion::history_info(&m);
            let _ = diversion::diversions(&m);
            let _ = diversion::forwarding_hops(&m);
            let _ = served_user::served_user(&m);
            let _ = session_timer::session_expires(&m);
            let _ = session_timer::min_se(&m);
            let _ = rseq::rseq(&m);
            let _ = rseq::rack(&m);
            let _ = diversion::HistoryIndex::parse(&v);
            let text = String::from_utf8_lossy(&v);
            let _ = identity::set_asserted_identity(&mut m.clone(), Some(&text), &text);
            let _ =
                diversion::prepend_diversion(&mut m.clone(), &text, diversion::ForwardReason::Busy);
            let _ = served_user::set_served_user(&mut m.clone(), &text, None, None);
            let _ = identity::anonymous_from(&text);
            let _ = diversion::append_history_hop(
                &mut m.clone(),
                &from,
                &to,
                diversion::ForwardReason::NoAnswer,
            );
            identity::strip_identity_for_untrusted(&mut m);
        }
    }

    #[test]
    fn display_quoting() {
        assert_eq!(quoted_display("Kari Nordmann"), "\"Kari Nordmann\"");
        assert_eq!(quoted_display("A \"B\" \\C"), r#""A \"B\" \\C""#);
        assert_eq!(quoted_display("x\r\nVia: evil"), "\"x  Via: evil\"");
        assert_eq!(quoted_display("Åse Ødegård"), "\"Åse Ødegård\"");
    }
}
