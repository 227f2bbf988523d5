//! The request pipeline's checks before a request reaches its handler (the REQINIT
//! stage in Kamailio's terms): hop count, loops, extensions, URI scheme, content.
//!
//! Each check returns the refusal to send, or `None` to go on. RFC 3261 s8.2 gives the
//! order: method, then headers (URI scheme, Require), then content.

use crate::sip::message::{HeaderName, Message, Scheme};
use crate::sip::Method;
use std::net::SocketAddr;

/// Option tags this element supports (Require / Proxy-Require; RFC 3261 s8.2.2.3).
pub const SUPPORTED: &[&str] = &["timer", "100rel"];

/// Methods a UAS here accepts (for Allow headers).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

/// Body types this element understands.
pub const ACCEPT: &str = "application/sdp";

/// The branch prefix of requests sentralbord sends, so a request coming back is a loop.
pub const OUR_BRANCH_PREFIX: &str = "z9hG4bKsb";

/// A refusal: status, reason phrase and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Headers to add, e.g. `Unsupported` for a 420.
    pub headers: Vec<(HeaderName, String)>,
}

impl Refusal {
    /// A refusal with no extra headers.
    pub fn plain(code: u16, reason: &'static str) -> Self {
        Refusal {
            code,
            reason,
            headers: Vec::new(),
        }
    }
}

/// RFC 3261 s16.3 step 3 / s8.2: Max-Forwards 0 on a request that would be forwarded
/// gets 483. OPTIONS and REGISTER are answered here, so they are never forwarded.
pub fn check_max_forwards(req: &Message, method: &Method) -> Option<Refusal> {
    if matches!(
        method,
        Method::Options | Method::Register | Method::Ack | Method::Cancel
    ) {
        return None;
    }
    match req.max_forwards() {
        Ok(Some(0)) => Some(Refusal::plain(483, "Too Many Hops")),
        _ => None,
    }
}

/// RFC 3261 s16.3 step 4 / s8.2.2.2: a request carrying a Via that we added (our
/// sent-by and our branch prefix) has come back to us: 482.
pub fn check_loop(req: &Message, ours: &[SocketAddr]) -> Option<Refusal> {
    for via in req.vias().flatten() {
        let Some(branch) = via.branch() else { continue };
        if !branch.starts_with(OUR_BRANCH_PREFIX.as_bytes()) {
            continue;
        }
        let port = via.port.unwrap_or(5060);
        if ours
            .iter()
            .any(|a| via.host.ip() == Some(a.ip()) && a.port() == port)
        {
            return Some(Refusal::plain(482, "Loop Detected"));
        }
    }
    None
}

/// RFC 3261 s8.2.2.3: unknown option tags in Require (and Proxy-Require, since the
/// switch terminates the request) get 420 listing them in Unsupported. Not for ACK/CANCEL.
pub fn check_require(req: &Message, method: &Method) -> Option<Refusal> {
    if matches!(method, Method::Ack | Method::Cancel) {
        return None;
    }
    let mut unsupported: Vec<String> = Vec::new();
    for name in [HeaderName::Require, HeaderName::ProxyRequire] {
        for tag in req.option_tags(&name) {
            let tag = String::from_utf8_lossy(&tag).trim().to_string();
            if !tag.is_empty()
                && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(&tag))
                && !unsupported.iter().any(|u| u.eq_ignore_ascii_case(&tag))
            {
                unsupported.push(tag);
            }
        }
    }
    if unsupported.is_empty() {
        return None;
    }
    Some(Refusal {
        code: 420,
        reason: "Bad Extension",
        headers: vec![(HeaderName::Unsupported, unsupported.join(", "))],
    })
}

/// RFC 3261 s8.2.2.1: a Request-URI scheme we cannot serve gets 416.
pub fn check_scheme(req: &Message, method: &Method) -> Option<Refusal> {
    let uri = req.request_uri()?;
    let ok = match uri.scheme {
        Scheme::Sip | Scheme::Sips => true,
        // tel: names a number to call; it is never a registrar's domain.
        Scheme::Tel => !matches!(method, Method::Register),
        Scheme::Other(_) => false,
    };
    (!ok).then(|| Refusal::plain(416, "Unsupported URI Scheme"))
}

/// RFC 4028 s6: a Session-Expires below our Min-SE gets 422 with Min-SE.
pub fn check_session_interval(req: &Message, method: &Method) -> Option<Refusal> {
    use crate::sip::ext::session_timer::{session_expires, MIN_SE_FLOOR};
    if !matches!(method, Method::Invite | Method::Update) {
        return None;
    }
    match session_expires(req) {
        Ok(Some(se)) if se.delta < MIN_SE_FLOOR => Some(Refusal {
            code: 422,
            reason: "Session Interval Too Small",
            headers: vec![(HeaderName::MinSe, MIN_SE_FLOOR.to_string())],
        }),
        Err(_) => Some(Refusal::plain(
            400,
            "Bad Request - Malformed Session-Expires",
        )),
        _ => None,
    }
}

/// RFC 3261 s8.2.3: a body of a type we do not understand gets 415 with Accept; an
/// Accept that excludes every type we could answer with gets 406 (RFC 4475 s3.3.15).
pub fn check_content(req: &Message, method: &Method) -> Option<Refusal> {
    if !matches!(method, Method::Invite) {
        return None;
    }
    if !req.body.is_empty() {
        let ctype = req
            .header(&HeaderName::ContentType)
            .map(|h| String::from_utf8_lossy(&h.unfolded()).to_ascii_lowercase())
            .unwrap_or_default();
        let media = ctype
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if media != "application/sdp" && media != "multipart/mixed" {
            return Some(Refusal {
                code: 415,
                reason: "Unsupported Media Type",
                headers: vec![(HeaderName::Accept, ACCEPT.to_string())],
            });
        }
    }
    let accepts: Vec<String> = req
        .values(&HeaderName::Accept)
        .map(|(_, v)| String::from_utf8_lossy(&v).to_ascii_lowercase())
        .collect();
    if !accepts.is_empty() {
        let fits = accepts.iter().any(|a| {
            let m = a.split(';').next().unwrap_or_default().trim();
            m == "application/sdp" || m == "application/*" || m == "*/*"
        });
        if !fits {
            return Some(Refusal::plain(406, "Not Acceptable"));
        }
    }
    None
}

/// What the switch does with a method it does not route (yet): in-dialog methods with no
/// dialog get 481, methods we do not serve get 405 with Allow.
pub fn method_refusal(method: &Method) -> Option<Refusal> {
    match method {
        Method::Bye | Method::Update | Method::Info | Method::Prack | Method::Notify => {
            Some(Refusal::plain(481, "Call/Transaction Does Not Exist"))
        }
        Method::Subscribe
        | Method::Publish
        | Method::Refer
        | Method::Message
        | Method::Other(_) => Some(Refusal {
            code: 405,
            reason: "Method Not Allowed",
            headers: vec![(HeaderName::Allow, ALLOW.to_string())],
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, Parsed};
    use bytes::Bytes;

    fn req(extra: &str, method: &str, uri: &str) -> Message {
        let s = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse(Bytes::from(s)) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("{error:?}"),
        }
    }

    #[test]
    fn checks() {
        let m = req("Max-Forwards: 0\r\n", "INVITE", "sip:b@x");
        assert_eq!(
            check_max_forwards(&m, &Method::Invite).map(|r| r.code),
            Some(483)
        );
        let m = req("Max-Forwards: 0\r\n", "OPTIONS", "sip:x");
        assert_eq!(check_max_forwards(&m, &Method::Options), None);
        let m = req(
            "Require: nothingweknow, 100rel\r\nProxy-Require: foo\r\n",
            "OPTIONS",
            "sip:x",
        );
        let r = check_require(&m, &Method::Options).expect("420");
        assert_eq!(r.headers[0].1, "nothingweknow, foo");
        let m = req("", "OPTIONS", "soap.beep://192.0.2.103:3002");
        assert_eq!(
            check_scheme(&m, &Method::Options).map(|r| r.code),
            Some(416)
        );
        let m = req("Accept: text/nobodyknowsthis\r\n", "INVITE", "sip:b@x");
        assert_eq!(
            check_content(&m, &Method::Invite).map(|r| r.code),
            Some(406)
        );
        assert_eq!(
            method_refusal(&Method::Other("NEWMETHOD".into())).map(|r| r.code),
            Some(405)
        );
    }

    #[test]
    fn loop_detection() {
        let s = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsb123\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let Parsed::Valid(m) = parse(Bytes::from(s)) else {
            panic!("valid")
        };
        let ours: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        assert_eq!(check_loop(&m, &[ours]).map(|r| r.code), Some(482));
        let other: SocketAddr = "127.0.0.1:5062".parse().expect("addr");
        assert_eq!(check_loop(&m, &[other]), None);
    }
}
