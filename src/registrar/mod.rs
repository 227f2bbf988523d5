//! SANS-IO registrar (RFC 3261 s10.3) with digest authentication (RFC 7616, RFC 8760).
//!
//! Inputs: a REGISTER (already past the request pipeline), the profile's realm, the time
//! and fresh randomness; later the user's credentials, looked up by the runtime.
//! Outputs: a refusal (401 challenge, 403, 423, 400) or binding changes to persist and the
//! Contact values for the 200.
//!
//! An unknown user and a wrong password get the same answer (a fresh 401 challenge), so
//! user names cannot be probed. Nonces are stateless HMACs bound to this server's secret
//! with an issue time (stale after `nonce_lifetime_s`); nonce counts are tracked to refuse
//! replays.

pub mod bindings;

pub use bindings::{
    Binding, BindingChange, BindingError, Bindings, RegisterContext, RegistrarLimits,
};

use crate::engine::pipeline::Refusal;
use crate::sip::auth::{self, Algorithm, NonceCheck, NonceManager};
use crate::sip::message::{HeaderName, Message, Scheme};
use std::time::Duration;

/// Registrar settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest accepted registration in seconds.
    pub min_expires: u32,
    /// Longest granted registration in seconds.
    pub max_expires: u32,
    /// Registration length when the REGISTER names none.
    pub default_expires: u32,
    /// Most contacts per address-of-record.
    pub max_contacts: usize,
    /// Seconds a nonce stays fresh.
    pub nonce_lifetime_s: u64,
}

/// A user's digest secrets, as looked up by the runtime.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user's id.
    pub user_id: i64,
    /// Digest username.
    pub username: String,
    /// hex MD5 HA1.
    pub ha1_md5: String,
    /// hex SHA-256 HA1.
    pub ha1_sha256: String,
    /// The user's tenant.
    pub tenant_id: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Which challenge a request gets: 401 from a registrar, 407 for requests a user places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// REGISTER: 401 with WWW-Authenticate, answered in Authorization.
    Registrar,
    /// INVITE and other requests from phones: 407 with Proxy-Authenticate, answered in
    /// Proxy-Authorization (the switch authorizes calls like a proxy would).
    Caller,
}

impl ChallengeKind {
    fn answer_header(self) -> HeaderName {
        match self {
            ChallengeKind::Registrar => HeaderName::Authorization,
            ChallengeKind::Caller => HeaderName::ProxyAuthorization,
        }
    }
}

/// What to do after the first look at an authenticated request.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Answer at once (challenge or refusal).
    Refuse(Refusal),
    /// Look up the user's credentials, then call [`Registrar::complete`] (REGISTER) or
    /// [`Registrar::verify_caller`].
    Lookup {
        /// Digest username to look up.
        username: String,
        /// What the check needs once the credentials arrive.
        check: Box<PendingCheck>,
    },
}

/// The verified-so-far digest of a request waiting for credentials.
#[derive(Debug)]
pub struct PendingCheck {
    digest: auth::Credentials,
    kind: ChallengeKind,
    method: String,
    algorithms: Vec<Algorithm>,
    realm: String,
    aor: String,
    nc: u32,
}

/// The registrar: nonces and bindings.
pub struct Registrar {
    cfg: RegistrarConfig,
    nonces: NonceManager,
    bindings: Bindings,
}

impl Registrar {
    /// A new registrar with this server's nonce secret.
    pub fn new(cfg: RegistrarConfig, secret: [u8; 32]) -> Registrar {
        let lifetime = Duration::from_secs(cfg.nonce_lifetime_s);
        Registrar {
            nonces: NonceManager::new(secret, lifetime),
            bindings: Bindings::default(),
            cfg,
        }
    }

    fn limits(&self) -> RegistrarLimits {
        RegistrarLimits {
            min_expires: self.cfg.min_expires,
            max_expires: self.cfg.max_expires,
            default_expires: self.cfg.default_expires,
            max_contacts: self.cfg.max_contacts,
        }
    }

    /// Restores persisted bindings.
    pub fn restore(&mut self, bindings: Vec<Binding>, now_unix: u64) {
        self.bindings.load(bindings, now_unix);
    }

    /// Removes expired bindings.
    pub fn expire(&mut self, now_unix: u64) -> Vec<BindingChange> {
        self.bindings.expire(now_unix)
    }

    /// The earliest binding expiry (Unix seconds).
    pub fn next_expiry(&self) -> Option<u64> {
        self.bindings.next_expiry()
    }

    /// The live bindings of an address-of-record.
    pub fn bindings_of<'a>(
        &'a self,
        aor: &str,
        now_unix: u64,
    ) -> impl Iterator<Item = &'a Binding> + 'a {
        self.bindings.current(aor, now_unix)
    }

    /// A 401 (or 407) with one fresh challenge per offered algorithm, the preferred
    /// first (RFC 8760 s2.4: a UAC uses the first one it supports).
    pub fn challenge(
        &self,
        kind: ChallengeKind,
        realm: &str,
        algorithms: &[Algorithm],
        stale: bool,
        now_unix: u64,
        random: [u8; 16],
    ) -> Refusal {
        let nonce = self.nonces.issue(now_unix, random);
        let (code, reason, header) = match kind {
            ChallengeKind::Registrar => (401, "Unauthorized", HeaderName::WwwAuthenticate),
            ChallengeKind::Caller => (
                407,
                "Proxy Authentication Required",
                HeaderName::ProxyAuthenticate,
            ),
        };
        let headers = algorithms
            .iter()
            .map(|alg| {
                let value = auth::challenge_header_value(realm, &nonce, *alg, stale, None);
                (header.clone(), value)
            })
            .collect();
        Refusal {
            code,
            reason,
            headers,
        }
    }

    /// First look at a REGISTER: challenge it, or ask for the user's credentials.
    pub fn authenticate(
        &mut self,
        req: &Message,
        realm: &str,
        algorithms: &[Algorithm],
        now_unix: u64,
        random: [u8; 16],
    ) -> AuthOutcome {
        // The address-of-record is the To URI (RFC 3261 s10.3 step 5); its user part must
        // be present, and the realm of the profile is its domain.
        let aor_user = match req.to() {
            Ok(to) if matches!(to.uri.scheme, Scheme::Sip | Scheme::Sips) => {
                to.uri.user_unescaped().map(|u| u.into_owned())
            }
            _ => None,
        };
        let Some(aor_user) = aor_user.filter(|u| !u.is_empty()) else {
            return AuthOutcome::Refuse(Refusal::plain(404, "Not Found - Bad Address-Of-Record"));
        };
        let aor = format!("sip:{}@{realm}", String::from_utf8_lossy(&aor_user));
        self.start_check(
            req,
            ChallengeKind::Registrar,
            realm,
            algorithms,
            aor,
            now_unix,
            random,
        )
    }

    /// First look at a request a phone places (INVITE): challenge it with 407, or ask
    /// for the credentials of the user named in Proxy-Authorization.
    pub fn authenticate_caller(
        &mut self,
        req: &Message,
        realm: &str,
        algorithms: &[Algorithm],
        now_unix: u64,
        random: [u8; 16],
    ) -> AuthOutcome {
        self.start_check(
            req,
            ChallengeKind::Caller,
            realm,
            algorithms,
            String::new(),
            now_unix,
            random,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start_check(
        &mut self,
        req: &Message,
        kind: ChallengeKind,
        realm: &str,
        algorithms: &[Algorithm],
        aor: String,
        now_unix: u64,
        random: [u8; 16],
    ) -> AuthOutcome {
        // Pick the credentials for our realm (there may be others, RFC 3261 s22.4); an
        // algorithm this profile does not offer is answered with a new challenge.
        let digest = req
            .headers_named(&kind.answer_header())
            .filter_map(|h| auth::Credentials::parse(&h.unfolded()).ok())
            .find(|c| c.realm == realm && algorithms.contains(&c.algorithm));
        let Some(digest) = digest else {
            return AuthOutcome::Refuse(
                self.challenge(kind, realm, algorithms, false, now_unix, random),
            );
        };
        let nc = digest.nc.unwrap_or(0);
        match self.nonces.check(&digest.nonce, nc, now_unix) {
            NonceCheck::Fresh => AuthOutcome::Lookup {
                username: digest.username.clone(),
                check: Box::new(PendingCheck {
                    digest,
                    kind,
                    method: req
                        .method()
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                    algorithms: algorithms.to_vec(),
                    realm: realm.to_string(),
                    aor,
                    nc,
                }),
            },
            NonceCheck::Stale => {
                AuthOutcome::Refuse(self.challenge(kind, realm, algorithms, true, now_unix, random))
            }
            NonceCheck::Invalid | NonceCheck::Replay => AuthOutcome::Refuse(
                self.challenge(kind, realm, algorithms, false, now_unix, random),
            ),
        }
    }

    /// Checks the digest against the looked-up credentials. An unknown user and a wrong
    /// password get the same fresh challenge.
    fn verify<'c>(
        &mut self,
        check: &PendingCheck,
        creds: Option<&'c Credentials>,
        now_unix: u64,
        random: [u8; 16],
    ) -> Result<&'c Credentials, Refusal> {
        let verified = match creds {
            Some(c) => {
                let ha1 = match check.digest.algorithm {
                    Algorithm::Md5 => &c.ha1_md5,
                    Algorithm::Sha256 => &c.ha1_sha256,
                };
                auth::verify(&check.digest, ha1, &check.method)
            }
            None => {
                // Same work for an unknown user, so timing does not tell users apart.
                let dummy = "0".repeat(64);
                let _ = auth::verify(&check.digest, &dummy, &check.method);
                false
            }
        };
        let rechallenge = |r: &Self| {
            r.challenge(
                check.kind,
                &check.realm,
                &check.algorithms,
                false,
                now_unix,
                random,
            )
        };
        let Some(creds) = creds.filter(|_| verified) else {
            return Err(rechallenge(self));
        };
        // Only now, with a verified response, is the nonce count recorded. `false` means
        // the same count was used by another request while this one waited: a replay.
        if !self.nonces.record(&check.digest.nonce, check.nc, now_unix) {
            return Err(rechallenge(self));
        }
        Ok(creds)
    }

    /// Finishes a caller's authentication: the verified user, or the refusal to send.
    pub fn verify_caller<'c>(
        &mut self,
        check: Box<PendingCheck>,
        creds: Option<&'c Credentials>,
        now_unix: u64,
        random: [u8; 16],
    ) -> Result<&'c Credentials, Refusal> {
        self.verify(&check, creds, now_unix, random)
    }

    /// Finishes a REGISTER once the credentials lookup answered. Returns the binding
    /// changes and the Contact values of the 200, or the refusal to send.
    pub fn complete(
        &mut self,
        req: &Message,
        check: Box<PendingCheck>,
        creds: Option<&Credentials>,
        source: String,
        now_unix: u64,
        random: [u8; 16],
    ) -> Result<(Vec<BindingChange>, Vec<String>), Refusal> {
        let creds = self.verify(&check, creds, now_unix, random)?;
        // RFC 3261 s10.3 step 3: the authenticated user must be allowed to change this
        // AOR; here a user may only register its own.
        let own = format!("sip:{}@{}", creds.username, check.realm);
        if own != check.aor {
            return Err(Refusal::plain(
                403,
                "Forbidden - Not Your Address-Of-Record",
            ));
        }
        let ctx = RegisterContext {
            user_id: creds.user_id,
            aor: &check.aor,
            source,
            now_unix,
        };
        let limits = self.limits();
        let changes = self.bindings.apply(req, &ctx, &limits).map_err(|e| {
            let (code, reason) = e.status();
            let mut r = Refusal::plain(code, reason);
            if let BindingError::IntervalTooBrief { min_expires } = e {
                r.headers
                    .push((HeaderName::MinExpires, min_expires.to_string()));
            }
            r
        })?;
        let contacts = self
            .bindings
            .current(&check.aor, now_unix)
            .map(|b| {
                let left = b.expires_at.saturating_sub(now_unix);
                format!("<{}>{};expires={left}", b.contact, b.contact_params)
            })
            .collect();
        Ok((changes, contacts))
    }
}
