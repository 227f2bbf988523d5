//! The typed records the store reads and writes.

use std::fmt;
use std::str::FromStr;

use super::{Field, StoreError};

/// A tenant's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant (customer company).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Row id.
    pub id: TenantId,
    /// Unique name (unique ignoring ASCII case).
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A tenant with counts of what it owns, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    /// The tenant.
    pub tenant: Tenant,
    /// How many users it has.
    pub users: u64,
    /// How many numbers it has.
    pub numbers: u64,
}

/// What a tenant number is used for (routing of inbound calls, presentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// A company main number: leads to a queue or answer group.
    Main,
    /// A personal number: leads to a user.
    User,
    /// A queue or answer group's own number.
    Queue,
}

impl NumberKind {
    /// The value stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Main => "main",
            NumberKind::User => "user",
            NumberKind::Queue => "queue",
        }
    }
}

impl fmt::Display for NumberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NumberKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "main" => Ok(NumberKind::Main),
            "user" => Ok(NumberKind::User),
            "queue" => Ok(NumberKind::Queue),
            _ => Err(StoreError::Invalid {
                field: Field::NumberKind,
                reason: "must be main, user or queue",
            }),
        }
    }
}

/// A phone number owned by a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantNumber {
    /// The number in E.164 form (`+4721000000`).
    pub number: String,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// What it is used for.
    pub kind: NumberKind,
}

/// A password in memory: `Debug` never prints it. Only its HA1 hashes are stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a plain password.
    pub fn new(plain: impl Into<String>) -> Self {
        Password(plain.into())
    }

    /// The plain password (only for hashing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A user to create; the store computes the HA1 hashes from `password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The tenant the user belongs to.
    pub tenant: TenantId,
    /// Display name.
    pub name: String,
    /// Extension, 2 to 8 digits, unique in the tenant.
    pub extension: String,
    /// Mobile number in E.164 form, unique across tenants (it identifies the user's
    /// calls arriving from the trunk).
    pub mobile: Option<String>,
    /// Digest username, unique in the realm.
    pub sip_username: String,
    /// Digest realm.
    pub realm: String,
    /// Plain password; hashed, never stored.
    pub password: Password,
}

/// A user as listed (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// The tenant the user belongs to.
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant_name: String,
    /// Display name.
    pub name: String,
    /// Extension.
    pub extension: String,
    /// Mobile number in E.164 form.
    pub mobile: Option<String>,
    /// Digest username.
    pub sip_username: String,
    /// Digest realm.
    pub realm: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// What digest authentication needs to check a user's response. `Debug` hides the HA1s.
#[derive(Clone, PartialEq, Eq)]
pub struct SipCredentials {
    /// The user.
    pub user_id: UserId,
    /// The user's tenant.
    pub tenant_id: TenantId,
    /// Digest username.
    pub username: String,
    /// Digest realm.
    pub realm: String,
    /// Hex MD5 HA1.
    pub ha1_md5: String,
    /// Hex SHA-256 HA1.
    pub ha1_sha256: String,
    /// Hex SHA-512/256 HA1 (absent for rows imported without it).
    pub ha1_sha512_256: Option<String>,
}

impl fmt::Debug for SipCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipCredentials")
            .field("user_id", &self.user_id)
            .field("tenant_id", &self.tenant_id)
            .field("username", &crate::util::redact::Pii(&self.username))
            .field("realm", &self.realm)
            .field("ha1_md5", &"***")
            .field("ha1_sha256", &"***")
            .field("ha1_sha512_256", &"***")
            .finish()
    }
}

/// One registered contact of an address-of-record (RFC 3261 section 10), as persisted so
/// the registrar can reload its bindings after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The registered user.
    pub user_id: UserId,
    /// Address-of-record (canonical To URI).
    pub aor: String,
    /// The Contact URI exactly as received (byte-exact: it is what we send requests to).
    pub contact: String,
    /// The Contact header parameters as received (without `expires` and `q`, which have
    /// their own columns), e.g. `;+sip.instance="<urn:...>";reg-id=1`.
    pub contact_params: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The q-value (0.0 to 1.0), if given.
    pub q: Option<f32>,
    /// Call-ID of the REGISTER that created or refreshed the binding.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// Where the REGISTER came from, e.g. `udp:192.0.2.1:5060` (the flow to reach the UA).
    pub source: String,
    /// The `+sip.instance` value (RFC 5626), if given.
    pub instance: Option<String>,
    /// The `reg-id` value (RFC 5626), if given.
    pub reg_id: Option<u32>,
    /// The Path header values (RFC 3327), comma separated, if any.
    pub path: Option<String>,
    /// The User-Agent of the REGISTER, if any (for operators).
    pub user_agent: Option<String>,
    /// Last refresh time, Unix seconds.
    pub updated_at: i64,
}
