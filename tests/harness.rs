//! Self-tests of the black-box harness (tests/common): its digest arithmetic against the
//! RFCs' worked examples, its SIP framing, and its parsing of the daemon's `listening` lines.
//! These run without the daemon.

mod common;

use common::parse_listening_line;
use common::sip::*;

#[test]
fn digest_matches_rfc_2617_example() {
    // RFC 2617 s3.5 (HTTP, MD5, qop=auth): response 6629fae49393a05397450978507c4ef1.
    let alg = Algorithm::Md5;
    let ha1 = alg.hash("Mufasa:testrealm@host.com:Circle Of Life");
    let ha2 = alg.hash("GET:/dir/index.html");
    let r = alg.hash(&format!(
        "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
    ));
    assert_eq!(r, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn digest_matches_rfc_7616_sha256_example() {
    // RFC 7616 s3.9.1 (SHA-256, qop=auth).
    let alg = Algorithm::Sha256;
    let ha1 = alg.hash("Mufasa:http-auth@example.org:Circle of Life");
    let ha2 = alg.hash("GET:/dir/index.html");
    let r = alg.hash(&format!(
        "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
    ));
    assert_eq!(
        r,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn parses_folded_response_with_compact_headers() {
    let raw = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nm: <sip:a@b>;expires=60,\r\n <sip:c@d>;expires=30\r\nl: 0\r\n\r\n";
    let (m, used) = parse_message(raw, true).expect("parses");
    assert_eq!(used, raw.len());
    assert_eq!(m.status(), 200);
    let c = m.contacts();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].uri, "sip:a@b");
    assert_eq!(c[1].expires, Some(30));
}

#[test]
fn parses_two_challenges() {
    let raw = b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n2\", algorithm=MD5, qop=\"auth\", stale=TRUE\r\nContent-Length: 0\r\n\r\n";
    let (m, _) = parse_message(raw, false).expect("parses");
    let c = challenges(&m);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].algorithm(), Some(Algorithm::Sha256));
    assert!(c[1].is_stale() && c[1].offers_qop_auth());
    assert_eq!(c[1].get("nonce"), Some("n2"));
}

#[test]
fn stream_framing_waits_for_the_body() {
    let raw = b"SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nab";
    assert_eq!(
        parse_message(raw, true).unwrap_err(),
        FrameError::Incomplete
    );
}

#[test]
fn parses_listening_lines() {
    let l = parse_listening_line("listening profile=phones transport=udp addr=127.0.0.1:40123")
        .expect("parses");
    assert_eq!(l.profile, "phones");
    assert_eq!(l.transport, "udp");
    assert_eq!(l.addr, "127.0.0.1:40123".parse().expect("addr"));
    let v6 = parse_listening_line("listening profile=trunk transport=tcp addr=[::1]:5080")
        .expect("parses");
    assert_eq!(v6.addr.port(), 5080);
    assert!(parse_listening_line("ready").is_none());
    assert!(parse_listening_line("listening profile=phones transport=udp").is_none());
}

#[test]
fn authorization_answers_the_challenge_it_was_given() {
    let ch = Challenge::parse(
        "Digest realm=\"r.test\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", opaque=\"o1\"",
    )
    .expect("digest challenge");
    let h = authorization(
        &ch,
        &Credentials {
            username: "alice",
            password: "pw",
            method: "REGISTER",
            uri: "sip:r.test",
            nc: 1,
        },
    );
    let parsed = Challenge::parse(&h).expect("authorization parses like a challenge");
    assert_eq!(parsed.get("algorithm"), Some("SHA-256"));
    assert_eq!(parsed.get("nc"), Some("00000001"));
    assert_eq!(parsed.get("opaque"), Some("o1"));
    let cnonce = parsed.get("cnonce").expect("cnonce");
    let alg = Algorithm::Sha256;
    let ha1 = alg.hash("alice:r.test:pw");
    let ha2 = alg.hash("REGISTER:sip:r.test");
    assert_eq!(
        parsed.get("response"),
        Some(
            alg.hash(&format!("{ha1}:abc:00000001:{cnonce}:auth:{ha2}"))
                .as_str()
        )
    );
}
