//! SIP digest authentication (RFC 3261 s22, RFC 7616, RFC 8760), sans-IO.
//!
//! Inputs: raw `Authorization` / `Proxy-Authorization` header values, the stored HA1,
//! the request method, the current wall time (Unix seconds) and 16 random bytes per
//! nonce. Outputs: parsed [`Credentials`], challenge header values, verdicts. No clock,
//! no RNG, no I/O here.
//!
//! Decisions:
//! - Algorithms: MD5 and SHA-256. `-sess` variants and SHA-512-256 are refused as
//!   [`AuthError::UnsupportedAlgorithm`] (answer with a fresh challenge).
//! - qop: `auth` only (always offered); `auth-int` is refused. Credentials without qop
//!   (RFC 2069 clients) are accepted, but such a nonce is good for one request only.
//! - Nonces expire without server state (issue time and HMAC inside the nonce); used
//!   nonces are remembered, bounded, with their highest nonce count.
//!
//! How the registrar uses it, for a request with credentials:
//! 1. [`Credentials::parse`]; `UnsupportedScheme` or any other error: 401 with a fresh
//!    challenge (a malformed header could also be a 400). Pick the credentials whose
//!    realm is the profile's; check `uri` names the Request-URI.
//! 2. [`NonceManager::check`] with `credentials.nc.unwrap_or(0)` (read-only): `Stale`
//!    re-challenges with `stale=TRUE`; `Invalid` and `Replay` with a fresh challenge.
//! 3. Look up HA1 for (username, realm, algorithm) and [`verify`]; false: 401 with a fresh
//!    challenge (do the same work for unknown users so timing tells nothing).
//! 4. [`NonceManager::record`]; `false` means a request with the same nonce count was
//!    accepted meanwhile: refuse it as a replay. Only verified requests are recorded, so
//!    unauthenticated traffic cannot fill the nonce table.
//!
//! Challenges: [`challenge_header_value`], one header per algorithm, SHA-256 first
//! (RFC 8760 s2.4), with one nonce from [`NonceManager::issue`].

mod digest;
mod header;
mod nonce;

pub use digest::{ha1, response, verify, Algorithm};
pub use header::{challenge_header_value, Credentials, Qop, QopAuth};
pub use nonce::{NonceCheck, NonceManager, DEFAULT_MAX_TRACKED};

/// Errors from parsing credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The scheme is not Digest (e.g. Basic, Bearer); answer with a Digest challenge.
    #[error("unsupported authorization scheme {scheme:?}")]
    UnsupportedScheme {
        /// The scheme as sent.
        scheme: String,
    },
    /// The header value does not follow the grammar.
    #[error("malformed credentials at byte {at}: expected {expected}")]
    Syntax {
        /// Byte offset in the header value.
        at: usize,
        /// What the parser expected there.
        expected: Expected,
    },
    /// A required parameter is missing.
    #[error("credentials lack the {name:?} parameter")]
    MissingParam {
        /// The parameter name (lowercase).
        name: &'static str,
    },
    /// A parameter appears twice.
    #[error("credentials repeat the {name:?} parameter")]
    DuplicateParam {
        /// The parameter name (lowercase).
        name: &'static str,
    },
    /// A parameter value is not UTF-8.
    #[error("credentials parameter {param:?} is not UTF-8")]
    InvalidUtf8 {
        /// The parameter name (lowercase).
        param: &'static str,
    },
    /// An algorithm other than MD5 or SHA-256.
    #[error("unsupported digest algorithm {value:?}")]
    UnsupportedAlgorithm {
        /// The algorithm as sent.
        value: String,
    },
    /// A qop other than `auth`.
    #[error("unsupported qop {value:?}")]
    UnsupportedQop {
        /// The qop as sent.
        value: String,
    },
    /// An `nc` that is not 1 to 8 hex digits.
    #[error("invalid nonce count {value:?}")]
    InvalidNonceCount {
        /// The nc as sent.
        value: String,
    },
}

/// What the credentials parser expected where it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The auth scheme token, followed by whitespace.
    Scheme,
    /// A parameter name.
    ParamName,
    /// `=` after a parameter name.
    Equals,
    /// A parameter value.
    Value,
    /// The closing `"` of a quoted string.
    ClosingQuote,
    /// `,` or the end of the value.
    CommaOrEnd,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expected::Scheme => "an auth scheme",
            Expected::ParamName => "a parameter name",
            Expected::Equals => "'='",
            Expected::Value => "a parameter value",
            Expected::ClosingQuote => "a closing '\"'",
            Expected::CommaOrEnd => "',' or the end",
        })
    }
}
