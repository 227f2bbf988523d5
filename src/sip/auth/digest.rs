//! Digest computations (RFC 7616 s3.4.1-3.4.3, RFC 2617 s3.2.2 without qop) and
//! constant-time verification.

use std::fmt;
use std::str::FromStr;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::header::{Credentials, QopAuth};
use super::AuthError;

/// A digest hash algorithm (RFC 8760: SIP uses MD5 and SHA-256).
///
/// The `-sess` variants are not supported: their HA1 depends on the client nonce, so
/// a server storing HA1 cannot use them without the password, and SIP phones do not
/// need them. SHA-512-256 is not supported either. Both parse as
/// [`AuthError::UnsupportedAlgorithm`], so the registrar answers with a fresh challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (RFC 2617); what most deployed phones support.
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token used in the `algorithm` parameter (`MD5`, `SHA-256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Length of this algorithm's digest in lowercase hex.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }

    /// Parses an `algorithm` token, case-insensitively.
    pub fn from_token(token: &str) -> Result<Algorithm, AuthError> {
        if token.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(AuthError::UnsupportedAlgorithm {
                value: token.to_owned(),
            })
        }
    }
}

impl FromStr for Algorithm {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_token(s)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hashes `parts` joined by `:` and returns lowercase hex.
fn hash_joined(alg: Algorithm, parts: &[&[u8]]) -> String {
    fn run<D: md5::Digest>(mut d: D, parts: &[&[u8]]) -> String {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(part);
        }
        hex::encode(d.finalize())
    }
    match alg {
        Algorithm::Md5 => run(Md5::new(), parts),
        Algorithm::Sha256 => run(Sha256::new(), parts),
    }
}

/// HA1 = H(username ":" realm ":" password), lowercase hex (RFC 7616 s3.4.2).
///
/// This is what the store keeps per user, realm and algorithm instead of the password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hash_joined(
        alg,
        &[username.as_bytes(), realm.as_bytes(), password.as_bytes()],
    )
}

/// The request digest, lowercase hex.
///
/// With `qop` (qop=auth): H(HA1:nonce:nc:cnonce:auth:HA2) (RFC 7616 s3.4.1).
/// Without (RFC 2069 clients, RFC 2617 s3.2.2.1): H(HA1:nonce:HA2).
/// HA2 = H(method:uri) (RFC 7616 s3.4.3, qop=auth). `nc` is hashed exactly as sent.
pub fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<QopAuth<'_>>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = hash_joined(alg, &[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some(q) => hash_joined(
            alg,
            &[
                ha1.as_bytes(),
                nonce.as_bytes(),
                q.nc.as_bytes(),
                q.cnonce.as_bytes(),
                b"auth",
                ha2.as_bytes(),
            ],
        ),
        None => hash_joined(alg, &[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Whether `credentials.response` is right for `ha1` (the stored HA1 for the
/// credentials' username, realm and algorithm) and the request `method` (`"REGISTER"`).
///
/// The comparison runs in constant time. The caller must still check that the realm is
/// its own, that `uri` names the Request-URI, that `opaque` is the one it issued, and the
/// nonce with [`super::NonceManager::check`] / [`super::NonceManager::record`].
pub fn verify(credentials: &Credentials, ha1: &str, method: &str) -> bool {
    let qop = credentials.qop_auth();
    // With qop but without its inputs cannot come out of `Credentials::parse`; refuse
    // rather than silently hash as if no qop had been sent.
    if credentials.qop.is_some() && qop.is_none() {
        return false;
    }
    let expected = response(
        credentials.algorithm,
        ha1,
        &credentials.nonce,
        qop,
        method,
        &credentials.uri,
    );
    // RFC 7616 writes the response in lowercase hex; accept uppercase from sloppy clients.
    // The received value is not secret, so lowercasing it does not leak anything.
    let received = credentials.response.to_ascii_lowercase();
    constant_time_eq(expected.as_bytes(), received.as_bytes())
}

/// Compares two byte strings without an early exit on the first difference.
/// Lengths are not secret (every digest of one algorithm has the same length).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold back into an early-exit compare.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qop<'a>(nc: &'a str, cnonce: &'a str) -> QopAuth<'a> {
        QopAuth { nc, cnonce }
    }

    /// RFC 7616 s3.9.1: "Mufasa" / "Circle of Life", GET /dir/index.html.
    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_REALM: &str = "http-auth@example.org";

    #[test]
    fn rfc7616_md5_vector() {
        let h = ha1(Algorithm::Md5, "Mufasa", RFC7616_REALM, "Circle of Life");
        let r = response(
            Algorithm::Md5,
            &h,
            RFC7616_NONCE,
            Some(qop("00000001", RFC7616_CNONCE)),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let h = ha1(Algorithm::Sha256, "Mufasa", RFC7616_REALM, "Circle of Life");
        let r = response(
            Algorithm::Sha256,
            &h,
            RFC7616_NONCE,
            Some(qop("00000001", RFC7616_CNONCE)),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    /// RFC 2617 s3.5.
    #[test]
    fn rfc2617_vector() {
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            &h,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(qop("00000001", "0a4f113b")),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// No qop (RFC 2069 style): H(HA1:nonce:HA2). Expected values computed independently
    /// (Python hashlib) from the RFC 2617 s3.5 inputs.
    #[test]
    fn no_qop_vectors() {
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(h, "939e7578ed9e3c518a452acee763bce9");
        let r = response(
            Algorithm::Md5,
            &h,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            None,
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "670fd8c2df070c60b045671b8b24ff02");
    }

    #[test]
    fn algorithm_tokens() {
        assert_eq!(Algorithm::from_token("md5"), Ok(Algorithm::Md5));
        assert_eq!(Algorithm::from_token("sha-256"), Ok(Algorithm::Sha256));
        assert_eq!("SHA-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        for bad in ["MD5-sess", "SHA-256-sess", "SHA-512-256", "", "SHA256"] {
            assert!(
                matches!(
                    Algorithm::from_token(bad),
                    Err(AuthError::UnsupportedAlgorithm { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(Algorithm::Sha256.to_string(), "SHA-256");
        assert_eq!(
            ha1(Algorithm::Sha256, "a", "b", "c").len(),
            Algorithm::Sha256.hex_len()
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
