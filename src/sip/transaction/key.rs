//! Transaction matching keys (RFC 3261 17.1.3 and 17.2.3) and branch generation.
//!
//! The caller extracts the fields from the parsed message; this module only decides which
//! of them form the key, so it does not depend on the codec.

use bytes::Bytes;

use crate::sip::Method;

/// The RFC 3261 magic cookie every compliant branch starts with (8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Whether `branch` starts with the RFC 3261 magic cookie (and so can be used on its own
/// to match transactions, 17.2.3).
pub fn is_rfc3261_branch(branch: &[u8]) -> bool {
    branch.starts_with(MAGIC_COOKIE.as_bytes())
}

/// A new branch parameter: the magic cookie followed by 32 hex digits.
///
/// RFC 3261 8.1.1.7: "The branch ID inserted by an element compliant with this
/// specification MUST always begin with the characters "z9hG4bK"." and it MUST be unique
/// across space and time; the caller supplies 16 random bytes (there is no RNG in here).
pub fn new_branch(rng_bytes: [u8; 16]) -> String {
    let mut branch = String::with_capacity(MAGIC_COOKIE.len() + 32);
    branch.push_str(MAGIC_COOKIE);
    branch.push_str(&hex::encode(rng_bytes));
    branch
}

/// The key that matches messages to a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// Client transaction (17.1.3): the branch of the top Via of the response and the
    /// CSeq method. CANCEL shares its INVITE's branch, so the method keeps them apart.
    Client {
        /// The branch parameter we put in our top Via.
        branch: Bytes,
        /// The CSeq method.
        method: Method,
    },
    /// Server transaction, RFC 3261 branch (17.2.3): branch, sent-by and method, with ACK
    /// mapped to INVITE so the ACK for a non-2xx finds its INVITE transaction.
    Server {
        /// The branch parameter of the request's top Via (starts with the magic cookie).
        branch: Bytes,
        /// The sent-by (host and port) of the request's top Via.
        sent_by: Bytes,
        /// The request method; ACK is stored as INVITE, CANCEL stays CANCEL.
        method: Method,
    },
    /// Server transaction for an RFC 2543 request without the magic cookie (17.2.3).
    Rfc2543 {
        /// The Request-URI.
        request_uri: Bytes,
        /// The From tag (empty when absent).
        from_tag: Bytes,
        /// The To tag; always empty for INVITE and ACK, see [`TransactionKey::server`].
        to_tag: Bytes,
        /// The Call-ID.
        call_id: Bytes,
        /// The CSeq number (not the method: ACK shares the INVITE's number).
        cseq: u32,
        /// The whole top Via header field value.
        top_via: Bytes,
        /// The method; ACK is stored as INVITE, CANCEL stays CANCEL.
        method: Method,
    },
}

/// The fields of a received request that 17.2.3 uses to match a server transaction.
///
/// The RFC 2543 fields are only used when the branch is absent or lacks the magic cookie;
/// they are cheap `Bytes` slices of the received datagram.
#[derive(Debug, Clone)]
pub struct ServerKeyParts {
    /// The branch parameter of the top Via, if any.
    pub branch: Option<Bytes>,
    /// The sent-by of the top Via (host, and port when present).
    pub sent_by: Bytes,
    /// The request method.
    pub method: Method,
    /// The Request-URI.
    pub request_uri: Bytes,
    /// The From tag (empty when absent).
    pub from_tag: Bytes,
    /// The To tag (empty when absent).
    pub to_tag: Bytes,
    /// The Call-ID.
    pub call_id: Bytes,
    /// The CSeq number.
    pub cseq: u32,
    /// The whole top Via header field value.
    pub top_via: Bytes,
}

impl TransactionKey {
    /// The key of a client transaction, for both sending the request and matching its
    /// responses (17.1.3: top Via branch and CSeq method).
    pub fn client(branch: impl Into<Bytes>, cseq_method: Method) -> Self {
        TransactionKey::Client {
            branch: branch.into(),
            method: cseq_method,
        }
    }

    /// The key of the server transaction a received request belongs to (17.2.3).
    ///
    /// With a magic-cookie branch the key is (branch, sent-by, method), where "the method
    /// of the request matches the one that created the transaction, except for ACK, where
    /// the method of the request that created the transaction is INVITE".
    ///
    /// Without it, the RFC 2543 fallback compares Request-URI, From tag, Call-ID, CSeq
    /// number, top Via and (except for INVITE/ACK) the To tag. For INVITE and ACK the To
    /// tag is left out of the key: the ACK for a non-2xx carries the tag of our response,
    /// not the INVITE's (usually absent), and 17.2.3 compares it against the response; a
    /// caller that needs that last check can compare it against the response it sent.
    pub fn server(parts: ServerKeyParts) -> Self {
        let method = match parts.method {
            Method::Ack => Method::Invite,
            other => other,
        };
        match parts.branch {
            Some(branch) if is_rfc3261_branch(&branch) => TransactionKey::Server {
                branch,
                sent_by: parts.sent_by,
                method,
            },
            _ => {
                let to_tag = if method == Method::Invite {
                    Bytes::new()
                } else {
                    parts.to_tag
                };
                TransactionKey::Rfc2543 {
                    request_uri: parts.request_uri,
                    from_tag: parts.from_tag,
                    to_tag,
                    call_id: parts.call_id,
                    cseq: parts.cseq,
                    top_via: parts.top_via,
                    method,
                }
            }
        }
    }

    /// For the key of a received CANCEL, the key of the INVITE server transaction it
    /// cancels (9.2: "the CANCEL ... matches a transaction if ... the request method is
    /// INVITE" under the 17.2.3 rules). `None` for any other key.
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        match self {
            TransactionKey::Server {
                branch,
                sent_by,
                method: Method::Cancel,
            } => Some(TransactionKey::Server {
                branch: branch.clone(),
                sent_by: sent_by.clone(),
                method: Method::Invite,
            }),
            TransactionKey::Rfc2543 {
                request_uri,
                from_tag,
                call_id,
                cseq,
                top_via,
                method: Method::Cancel,
                ..
            } => Some(TransactionKey::Rfc2543 {
                request_uri: request_uri.clone(),
                from_tag: from_tag.clone(),
                to_tag: Bytes::new(),
                call_id: call_id.clone(),
                cseq: *cseq,
                top_via: top_via.clone(),
                method: Method::Invite,
            }),
            _ => None,
        }
    }

    /// Whether this key names a client transaction.
    pub fn is_client(&self) -> bool {
        matches!(self, TransactionKey::Client { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(branch: Option<&'static str>, method: Method) -> ServerKeyParts {
        ServerKeyParts {
            branch: branch.map(|b| Bytes::from_static(b.as_bytes())),
            sent_by: Bytes::from_static(b"10.0.0.1:5060"),
            method,
            request_uri: Bytes::from_static(b"sip:bob@example.com"),
            from_tag: Bytes::from_static(b"a1"),
            to_tag: Bytes::new(),
            call_id: Bytes::from_static(b"call-1"),
            cseq: 7,
            top_via: Bytes::from_static(b"SIP/2.0/UDP 10.0.0.1:5060"),
        }
    }

    #[test]
    fn new_branch_has_cookie_and_hex() {
        let b = new_branch([0xab; 16]);
        assert!(b.starts_with("z9hG4bK"));
        assert_eq!(b.len(), 7 + 32);
        assert!(b[7..].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(is_rfc3261_branch(b.as_bytes()));
        assert_ne!(new_branch([0; 16]), new_branch([1; 16]));
    }

    #[test]
    fn ack_matches_invite_and_cancel_stays_distinct() {
        let br = Some("z9hG4bK74bf9");
        let invite = TransactionKey::server(parts(br, Method::Invite));
        let ack = TransactionKey::server(parts(br, Method::Ack));
        let cancel = TransactionKey::server(parts(br, Method::Cancel));
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert!(matches!(invite, TransactionKey::Server { .. }));
    }

    #[test]
    fn sent_by_is_part_of_the_key() {
        let a = TransactionKey::server(parts(Some("z9hG4bKx"), Method::Options));
        let mut p = parts(Some("z9hG4bKx"), Method::Options);
        p.sent_by = Bytes::from_static(b"10.0.0.2:5060");
        assert_ne!(a, TransactionKey::server(p));
    }

    #[test]
    fn rfc2543_fallback_without_cookie() {
        let invite = TransactionKey::server(parts(Some("1234"), Method::Invite));
        assert!(matches!(invite, TransactionKey::Rfc2543 { .. }));
        // The ACK carries our To tag; it still matches the INVITE.
        let mut ack = parts(None, Method::Ack);
        ack.to_tag = Bytes::from_static(b"ourtag");
        assert_eq!(invite, TransactionKey::server(ack));
        // CANCEL has the same CSeq number but is its own transaction.
        assert_ne!(invite, TransactionKey::server(parts(None, Method::Cancel)));
        // A different CSeq number is a different transaction.
        let mut other = parts(None, Method::Invite);
        other.cseq = 8;
        assert_ne!(invite, TransactionKey::server(other));
    }

    #[test]
    fn rfc2543_non_invite_keeps_to_tag() {
        let mut a = parts(None, Method::Bye);
        a.to_tag = Bytes::from_static(b"t1");
        let mut b = parts(None, Method::Bye);
        b.to_tag = Bytes::from_static(b"t2");
        assert_ne!(TransactionKey::server(a), TransactionKey::server(b));
    }

    #[test]
    fn cancel_finds_its_invite() {
        for branch in [Some("z9hG4bKc1"), None] {
            let invite = TransactionKey::server(parts(branch, Method::Invite));
            let cancel = TransactionKey::server(parts(branch, Method::Cancel));
            assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
            assert_eq!(invite.cancelled_invite(), None);
        }
        let client = TransactionKey::client(Bytes::from_static(b"z9hG4bKa"), Method::Cancel);
        assert_eq!(client.cancelled_invite(), None);
    }

    #[test]
    fn client_key_separates_cancel_from_invite() {
        let inv = TransactionKey::client(Bytes::from_static(b"z9hG4bKa"), Method::Invite);
        let can = TransactionKey::client(Bytes::from_static(b"z9hG4bKa"), Method::Cancel);
        assert_ne!(inv, can);
        assert!(inv.is_client());
    }
}
