//! `Authorization` / `Proxy-Authorization` parsing (RFC 3261 s25.1 `credentials`,
//! RFC 7616 s3.4) and `WWW-Authenticate` / `Proxy-Authenticate` rendering (s3.3).

use std::fmt;

use super::digest::Algorithm;
use super::{AuthError, Expected};
use crate::util::redact::Pii;

/// The quality of protection a client used. Only `auth` is offered and accepted;
/// `auth-int` is refused with [`AuthError::UnsupportedQop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// `qop=auth`: the digest covers method and URI, with `nc` and `cnonce`.
    Auth,
}

/// The `qop=auth` inputs of a digest computation (RFC 7616 s3.4.1), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopAuth<'a> {
    /// The nonce count exactly as sent (8 hex digits), since the digest hashes the text.
    pub nc: &'a str,
    /// The client nonce.
    pub cnonce: &'a str,
}

/// Parsed Digest credentials from an `Authorization` or `Proxy-Authorization` value.
///
/// Invariant (held by [`Credentials::parse`]): `qop` is `Some` exactly when `nc` and
/// `cnonce` are; `nc`/`cnonce` sent without `qop` are ignored (RFC 2617 s3.2.2).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (unescaped).
    pub username: String,
    /// Realm the client answered for.
    pub realm: String,
    /// The server nonce the client used.
    pub nonce: String,
    /// The `uri` (digest-uri) the client hashed; should name the Request-URI.
    pub uri: String,
    /// The request digest as sent (hex).
    pub response: String,
    /// Algorithm; MD5 when the parameter is absent (RFC 7616 s3.4).
    pub algorithm: Algorithm,
    /// Client nonce (with qop).
    pub cnonce: Option<String>,
    /// Opaque value echoed from the challenge, if any.
    pub opaque: Option<String>,
    /// `Some(Qop::Auth)` for RFC 2617/7616 clients, `None` for RFC 2069-style ones.
    pub qop: Option<Qop>,
    /// Nonce count (with qop), for [`super::NonceManager::check`].
    pub nc: Option<u32>,
    /// `nc` exactly as sent: the digest hashes the text, so `0000000A` and `0000000a`
    /// give different responses.
    nc_text: Option<String>,
}

impl Credentials {
    /// Parses an `Authorization` or `Proxy-Authorization` header value (raw bytes, as
    /// the codec hands it over).
    ///
    /// Parameter names are case-insensitive and may come in any order; values may be
    /// quoted or bare; unknown parameters are ignored. A known parameter given twice is
    /// an error (RFC 7235 s2.1: each parameter name only once), so that no two parsers
    /// can disagree about which one counts. A scheme other than Digest is
    /// [`AuthError::UnsupportedScheme`].
    pub fn parse(value: &[u8]) -> Result<Credentials, AuthError> {
        parse_credentials(value)
    }

    /// The `qop=auth` digest inputs, if the client used qop.
    pub fn qop_auth(&self) -> Option<QopAuth<'_>> {
        match (self.qop, self.nc_text.as_deref(), self.cnonce.as_deref()) {
            (Some(Qop::Auth), Some(nc), Some(cnonce)) => Some(QopAuth { nc, cnonce }),
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    // The user name is personal data and the response is a password hash an attacker
    // could brute-force offline: neither goes to logs in clear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &Pii(&self.username))
            .field("realm", &self.realm)
            .field("nonce", &self.nonce)
            .field("uri", &self.uri)
            .field("response", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("qop", &self.qop)
            .field("nc", &self.nc)
            .finish_non_exhaustive()
    }
}

/// Parses 1 to 8 hex digits (RFC 7616 says exactly 8 lowercase; be lenient).
fn parse_nc(text: &str) -> Result<u32, AuthError> {
    let bad = || AuthError::InvalidNonceCount {
        value: text.to_owned(),
    };
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u32::from_str_radix(text, 16).map_err(|_| bad())
}

/// Whitespace inside a header value; CR and LF too, so a value that was not unfolded
/// (`\r\n ` continuation) still parses.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 s25.1 `token` characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// A cursor over the header value.
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    fn error(&self, expected: Expected) -> AuthError {
        AuthError::Syntax {
            at: self.pos,
            expected,
        }
    }

    /// Reads a quoted-string after its opening quote, unescaping `\x` pairs
    /// (RFC 3261 s25.1 `quoted-pair`).
    fn quoted(&mut self) -> Result<Vec<u8>, AuthError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error(Expected::ClosingQuote)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        // quoted-pair excludes CR and LF.
                        Some(b) if b != b'\r' && b != b'\n' => {
                            out.push(b);
                            self.pos += 1;
                        }
                        _ => return Err(self.error(Expected::ClosingQuote)),
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }
}

/// Which known parameter a name is, as an index into the collected values.
const KNOWN: [&str; 10] = [
    "username",
    "realm",
    "nonce",
    "uri",
    "response",
    "algorithm",
    "cnonce",
    "opaque",
    "qop",
    "nc",
];

/// See [`Credentials::parse`].
fn parse_credentials(value: &[u8]) -> Result<Credentials, AuthError> {
    let mut c = Cursor {
        input: value,
        pos: 0,
    };
    c.skip_ws();
    let scheme = c.take_while(is_token);
    if scheme.is_empty() {
        return Err(c.error(Expected::Scheme));
    }
    if !scheme.eq_ignore_ascii_case(b"Digest") {
        return Err(AuthError::UnsupportedScheme {
            scheme: String::from_utf8_lossy(scheme).into_owned(),
        });
    }
    if c.peek().is_some_and(|b| !is_ws(b)) {
        return Err(c.error(Expected::Scheme));
    }

    let mut values: [Option<Vec<u8>>; KNOWN.len()] = Default::default();
    loop {
        // Empty list elements (",,") are allowed by the list rule (RFC 7230 s7).
        while c.peek().is_some_and(|b| is_ws(b) || b == b',') {
            c.pos += 1;
        }
        if c.peek().is_none() {
            break;
        }
        let name = c.take_while(is_token);
        if name.is_empty() {
            return Err(c.error(Expected::ParamName));
        }
        c.skip_ws();
        if c.peek() != Some(b'=') {
            return Err(c.error(Expected::Equals));
        }
        c.pos += 1;
        c.skip_ws();
        let value = if c.peek() == Some(b'"') {
            c.pos += 1;
            c.quoted()?
        } else {
            // Bare value: a token in the grammar; be lenient and take anything up to
            // the next separator (some phones send `uri=sip:x@y` unquoted).
            let v = c.take_while(|b| !is_ws(b) && b != b',' && b != b'"');
            if v.is_empty() {
                return Err(c.error(Expected::Value));
            }
            v.to_vec()
        };
        c.skip_ws();
        match c.peek() {
            None | Some(b',') => {}
            Some(_) => return Err(c.error(Expected::CommaOrEnd)),
        }
        if let Some(i) = KNOWN
            .iter()
            .position(|k| name.eq_ignore_ascii_case(k.as_bytes()))
        {
            if values[i].is_some() {
                return Err(AuthError::DuplicateParam { name: KNOWN[i] });
            }
            values[i] = Some(value);
        }
    }

    let [username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc] = values;
    let text = |name: &'static str, v: Option<Vec<u8>>| -> Result<Option<String>, AuthError> {
        v.map(|v| String::from_utf8(v).map_err(|_| AuthError::InvalidUtf8 { param: name }))
            .transpose()
    };
    let required = |name: &'static str, v: Option<Vec<u8>>| -> Result<String, AuthError> {
        text(name, v)?.ok_or(AuthError::MissingParam { name })
    };

    let username = required("username", username)?;
    let realm = required("realm", realm)?;
    let nonce = required("nonce", nonce)?;
    let uri = required("uri", uri)?;
    let response = required("response", response)?;
    let algorithm = match text("algorithm", algorithm)? {
        Some(a) => Algorithm::from_token(&a)?,
        None => Algorithm::Md5,
    };
    let opaque = text("opaque", opaque)?;
    let (qop, nc, nc_text, cnonce) = match text("qop", qop)? {
        None => (None, None, None, None),
        Some(q) if q.eq_ignore_ascii_case("auth") => {
            let nc_text = required("nc", nc)?;
            let nc = parse_nc(&nc_text)?;
            let cnonce = required("cnonce", cnonce)?;
            (Some(Qop::Auth), Some(nc), Some(nc_text), Some(cnonce))
        }
        Some(q) => return Err(AuthError::UnsupportedQop { value: q }),
    };

    Ok(Credentials {
        username,
        realm,
        nonce,
        uri,
        response,
        algorithm,
        cnonce,
        opaque,
        qop,
        nc,
        nc_text,
    })
}

/// Appends `s` as a quoted-string, escaping `"` and `\`.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

/// Renders a `WWW-Authenticate` / `Proxy-Authenticate` value offering `qop="auth"`:
/// `Digest realm="x", nonce="n", opaque="o", algorithm=SHA-256, qop="auth", stale=TRUE`.
///
/// `stale` tells the client its password was right but the nonce is no longer good, so
/// it retries with the new nonce without asking the user (RFC 7616 s3.3). To offer both
/// algorithms, send two headers, SHA-256 first (RFC 8760 s2.4), with the same nonce.
pub fn challenge_header_value(
    realm: &str,
    nonce: &str,
    alg: Algorithm,
    stale: bool,
    opaque: Option<&str>,
) -> String {
    let mut out = String::with_capacity(64 + realm.len() + nonce.len());
    out.push_str("Digest realm=");
    push_quoted(&mut out, realm);
    out.push_str(", nonce=");
    push_quoted(&mut out, nonce);
    if let Some(o) = opaque {
        out.push_str(", opaque=");
        push_quoted(&mut out, o);
    }
    out.push_str(", algorithm=");
    out.push_str(alg.as_str());
    out.push_str(", qop=\"auth\"");
    if stale {
        out.push_str(", stale=TRUE");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{ha1, response, verify};
    use super::*;

    /// RFC 7616 s3.9.1, SHA-256 request, with the HTTP uri.
    const RFC7616_SHA256: &str = r#"Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

    fn parse(s: &str) -> Result<Credentials, AuthError> {
        parse_credentials(s.as_bytes())
    }

    #[test]
    fn parses_rfc7616_example_with_folding() {
        let c = parse(RFC7616_SHA256).expect("valid");
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.nonce, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v");
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(
            c.cnonce.as_deref(),
            Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
        );
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        let good = ha1(Algorithm::Sha256, "Mufasa", &c.realm, "Circle of Life");
        assert!(verify(&c, &good, "GET"));
        let wrong = ha1(Algorithm::Sha256, "Mufasa", &c.realm, "circle of life");
        assert!(!verify(&c, &wrong, "GET"));
        assert!(!verify(&c, &good, "REGISTER"), "method is covered");
        let md5 = ha1(Algorithm::Md5, "Mufasa", &c.realm, "Circle of Life");
        assert!(!verify(&c, &md5, "GET"), "HA1 of the wrong algorithm");
    }

    #[test]
    fn parses_typical_sip_register() {
        let c = parse(
            "Digest username=\"1001\",realm=\"sentralbord.local\",nonce=\"abc\",\
             uri=\"sip:sentralbord.local\",response=\"0123456789abcdef0123456789abcdef\",\
             algorithm=MD5,cnonce=\"xyz\",qop=auth,nc=0000000A",
        )
        .expect("valid");
        assert_eq!(c.uri, "sip:sentralbord.local");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.nc, Some(10));
        assert_eq!(c.qop_auth().map(|q| q.nc), Some("0000000A"));
    }

    #[test]
    fn tolerant_whitespace_case_and_order() {
        let c = parse(
            "  dIgEsT\tResponse = \"r\" ,\r\n\tNONCE=n , ,, URI = \"sip:a@b\",Realm=\"x\",UserName=\"u\"  ,",
        )
        .expect("valid");
        assert_eq!(c.username, "u");
        assert_eq!(c.realm, "x");
        assert_eq!(c.nonce, "n");
        assert_eq!(c.uri, "sip:a@b");
        assert_eq!(c.response, "r");
        assert_eq!(c.algorithm, Algorithm::Md5, "absent algorithm means MD5");
        assert_eq!(c.qop, None);
        assert_eq!(c.nc, None);
        assert_eq!(c.qop_auth(), None);
    }

    #[test]
    fn quoted_commas_and_escapes() {
        let c = parse(
            r#"Digest username="a\"b\\c", realm="x, y=z", nonce="n", uri="sip:u@h;a=b,c", response="r", opaque="""#,
        )
        .expect("valid");
        assert_eq!(c.username, r#"a"b\c"#);
        assert_eq!(c.realm, "x, y=z");
        assert_eq!(c.uri, "sip:u@h;a=b,c");
        assert_eq!(c.opaque.as_deref(), Some(""));
    }

    #[test]
    fn utf8_username_and_quoted_qop() {
        let c = parse(
            "Digest username=\"Bjørn\", realm=\"x\", nonce=\"n\", uri=\"sip:x\", response=\"r\", \
             qop=\"auth\", nc=00000001, cnonce=\"c\"",
        )
        .expect("valid");
        assert_eq!(c.username, "Bjørn");
        assert_eq!(c.nc, Some(1));
    }

    #[test]
    fn unknown_params_are_ignored_even_if_repeated() {
        let c = parse(
            "Digest foo=bar, username=\"u\", x-y=\"1,2\", realm=\"r\", foo=baz, nonce=\"n\", \
             uri=\"s\", response=\"p\", userhash=false",
        )
        .expect("valid");
        assert_eq!(c.username, "u");
    }

    #[test]
    fn duplicate_known_param_is_rejected() {
        let e = parse("Digest username=\"a\", USERNAME=\"b\", realm=\"r\", nonce=\"n\", uri=\"s\", response=\"p\"")
            .expect_err("duplicate");
        assert_eq!(e, AuthError::DuplicateParam { name: "username" });
    }

    #[test]
    fn non_digest_scheme_is_typed() {
        assert_eq!(
            parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Err(AuthError::UnsupportedScheme {
                scheme: "Basic".into()
            })
        );
        assert!(matches!(
            parse("Bearer abc"),
            Err(AuthError::UnsupportedScheme { .. })
        ));
        // "Digestx" is another scheme, not Digest.
        assert!(matches!(
            parse("Digestx username=\"u\""),
            Err(AuthError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn missing_params_are_typed() {
        let all = [
            ("username", "username=\"u\""),
            ("realm", "realm=\"r\""),
            ("nonce", "nonce=\"n\""),
            ("uri", "uri=\"s\""),
            ("response", "response=\"p\""),
        ];
        for (missing, _) in all {
            let params: Vec<&str> = all
                .iter()
                .filter(|(n, _)| *n != missing)
                .map(|(_, p)| *p)
                .collect();
            let header = format!("Digest {}", params.join(", "));
            assert_eq!(
                parse(&header),
                Err(AuthError::MissingParam { name: missing }),
                "{header}"
            );
        }
        assert_eq!(
            parse("Digest"),
            Err(AuthError::MissingParam { name: "username" })
        );
        let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"s\", response=\"p\"";
        assert_eq!(
            parse(&format!("{base}, qop=auth, nc=00000001")),
            Err(AuthError::MissingParam { name: "cnonce" })
        );
        assert_eq!(
            parse(&format!("{base}, qop=auth, cnonce=\"c\"")),
            Err(AuthError::MissingParam { name: "nc" })
        );
        // nc and cnonce without qop are ignored (RFC 2617 s3.2.2).
        let c = parse(&format!("{base}, nc=zz, cnonce=\"c\"")).expect("valid");
        assert_eq!(c.qop, None);
        assert_eq!(c.nc, None);
        assert_eq!(c.cnonce, None);
    }

    #[test]
    fn bad_values_are_typed() {
        let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"s\", response=\"p\"";
        assert!(matches!(
            parse(&format!("{base}, algorithm=MD5-sess")),
            Err(AuthError::UnsupportedAlgorithm { .. })
        ));
        assert_eq!(
            parse(&format!("{base}, qop=auth-int, nc=00000001, cnonce=\"c\"")),
            Err(AuthError::UnsupportedQop {
                value: "auth-int".into()
            })
        );
        for nc in ["123456789", "0000000g", "\"\""] {
            assert!(
                matches!(
                    parse(&format!("{base}, qop=auth, cnonce=\"c\", nc={nc}")),
                    Err(AuthError::InvalidNonceCount { .. })
                ),
                "{nc}"
            );
        }
        assert_eq!(
            parse_credentials(
                b"Digest username=\"\xff\", realm=\"r\", nonce=\"n\", uri=\"s\", response=\"p\""
            ),
            Err(AuthError::InvalidUtf8 { param: "username" })
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let cases: &[(&str, Expected)] = &[
            ("", Expected::Scheme),
            ("   ", Expected::Scheme),
            ("=x", Expected::Scheme),
            ("Digest, username", Expected::Scheme),
            ("Digest ,username", Expected::Equals),
            ("Digest username", Expected::Equals),
            ("Digest username=", Expected::Value),
            ("Digest username=,", Expected::Value),
            ("Digest username=\"abc", Expected::ClosingQuote),
            ("Digest username=\"abc\\", Expected::ClosingQuote),
            ("Digest username=\"a\" realm=\"b\"", Expected::CommaOrEnd),
            ("Digest username=\"a\"x", Expected::CommaOrEnd),
            ("Digest =\"a\"", Expected::ParamName),
            ("Digest \"a\"", Expected::ParamName),
            ("Digest\"a\"", Expected::Scheme),
        ];
        for (input, want) in cases {
            match parse(input) {
                Err(AuthError::Syntax { expected, .. }) => assert_eq!(expected, *want, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn never_panics_on_prefixes_of_valid_input() {
        let bytes = RFC7616_SHA256.as_bytes();
        for end in 0..=bytes.len() {
            let _ = parse_credentials(&bytes[..end]);
        }
        for b in 0..=255u8 {
            let mut v = bytes.to_vec();
            for i in (0..v.len()).step_by(7) {
                v[i] = b;
                let _ = parse_credentials(&v);
            }
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = parse(RFC7616_SHA256).expect("valid");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("753927fa"), "{dbg}");
        assert!(!dbg.contains("Mufasa"), "{dbg}");
    }

    #[test]
    fn challenge_rendering() {
        assert_eq!(
            challenge_header_value("sentralbord.local", "abc", Algorithm::Sha256, false, None),
            r#"Digest realm="sentralbord.local", nonce="abc", algorithm=SHA-256, qop="auth""#
        );
        assert_eq!(
            challenge_header_value("a\"b\\c", "n", Algorithm::Md5, true, Some("op")),
            r#"Digest realm="a\"b\\c", nonce="n", opaque="op", algorithm=MD5, qop="auth", stale=TRUE"#
        );
    }

    /// A challenge we render, answered as a client would, verifies.
    #[test]
    fn client_round_trip() {
        let challenge = challenge_header_value("office", "n0nce", Algorithm::Md5, false, Some("o"));
        assert!(challenge.contains("qop=\"auth\""));
        let secret = ha1(Algorithm::Md5, "1001", "office", "s3cret");
        let q = QopAuth {
            nc: "00000001",
            cnonce: "cn",
        };
        let resp = response(
            Algorithm::Md5,
            &secret,
            "n0nce",
            Some(q),
            "REGISTER",
            "sip:office",
        );
        let header = format!(
            "Digest username=\"1001\", realm=\"office\", nonce=\"n0nce\", uri=\"sip:office\", \
             response=\"{}\", algorithm=MD5, cnonce=\"cn\", opaque=\"o\", qop=auth, nc=00000001",
            resp.to_uppercase()
        );
        let c = parse(&header).expect("valid");
        assert!(
            verify(&c, &secret, "REGISTER"),
            "uppercase hex response accepted"
        );
        assert!(!verify(&c, &secret, "INVITE"));
    }
}
