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
    /// IANA time zone of the tenant's opening hours and local dates ("Europe/Oslo").
    pub time_zone: String,
    /// Days queue history (visits and offers) is kept.
    pub queue_retention_days: u32,
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
    /// A conference room's dial-in number.
    Conference,
}

impl NumberKind {
    /// The value stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Main => "main",
            NumberKind::User => "user",
            NumberKind::Queue => "queue",
            NumberKind::Conference => "conference",
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
            "conference" => Ok(NumberKind::Conference),
            _ => Err(StoreError::Invalid {
                field: Field::NumberKind,
                reason: "must be main, user, queue or conference",
            }),
        }
    }
}

/// The numbers a user's outgoing calls may present (all owned by the user's tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresentableNumbers {
    /// The user's own number, if the tenant owns one for the user.
    pub own: Option<String>,
    /// The tenant's main number, if it has one.
    pub main: Option<String>,
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
    /// The user a personal number is assigned to, if any.
    pub user_id: Option<UserId>,
    /// The queue or answer group a main or queue number leads to, if any.
    pub queue_id: Option<super::QueueId>,
    /// The conference room the number leads to, if any (then no user and no queue).
    pub conference_id: Option<super::ConferenceRoomId>,
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
    /// Extension, 2 to 6 digits, unique in the tenant.
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

/// Which number a user's outgoing external calls present (the caller ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Presentation {
    /// The user's own number (the default).
    #[default]
    Own,
    /// The tenant's main number.
    Main,
    /// No number (sent as anonymous with `Privacy: id`).
    Hidden,
}

impl Presentation {
    /// The value stored in the `present` column (and printed).
    pub fn as_str(self) -> &'static str {
        match self {
            Presentation::Own => "own",
            Presentation::Main => "main",
            Presentation::Hidden => "hidden",
        }
    }
}

impl fmt::Display for Presentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Presentation {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "own" => Ok(Presentation::Own),
            "main" => Ok(Presentation::Main),
            "hidden" => Ok(Presentation::Hidden),
            _ => Err(StoreError::Invalid {
                field: Field::Presentation,
                reason: "must be own, main or hidden",
            }),
        }
    }
}

/// Default ring time before no-answer forwarding, seconds.
pub const DEFAULT_NO_ANSWER_S: u32 = 20;

/// A user's call settings: forwarding and the presented number. A user without stored
/// settings has [`UserSettings::default`] (no forwarding, 20 s, own number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSettings {
    /// Forward every call here: E.164 (`+47...`) or an extension of the same tenant.
    pub forward_always: Option<String>,
    /// Forward here when the user is busy.
    pub forward_busy: Option<String>,
    /// Forward here when nobody answers within `no_answer_s`.
    pub forward_no_answer: Option<String>,
    /// Ring time before no-answer forwarding, seconds (5 to 120).
    pub no_answer_s: u32,
    /// Which number outgoing external calls present.
    pub present: Presentation,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            forward_always: None,
            forward_busy: None,
            forward_no_answer: None,
            no_answer_s: DEFAULT_NO_ANSWER_S,
            present: Presentation::Own,
        }
    }
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

// ---- directory of contacts, caller lookup ----

/// A directory contact's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(pub i64);

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A contact to add to a tenant's directory. Empty strings count as absent; at least one
/// of first name, last name or company is required (it is what a phone shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    /// The tenant whose directory it goes into.
    pub tenant: TenantId,
    /// The number in E.164 form, unique in the tenant's directory.
    pub number: String,
    /// First (given) name.
    pub first_name: Option<String>,
    /// Last (family) name.
    pub last_name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// A free note for the switchboard operators.
    pub note: Option<String>,
}

/// A contact in a tenant's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Row id.
    pub id: ContactId,
    /// The tenant owning the directory.
    pub tenant_id: TenantId,
    /// The number in E.164 form.
    pub number: String,
    /// First (given) name.
    pub first_name: Option<String>,
    /// Last (family) name.
    pub last_name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// A free note.
    pub note: Option<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl Contact {
    /// The name to show for this contact: "first last", else the company.
    pub fn display_name(&self) -> Option<String> {
        contact_display_name(
            self.first_name.as_deref(),
            self.last_name.as_deref(),
            self.company.as_deref(),
        )
    }
}

/// "first last" (whichever are present), else the company, else nothing.
pub(crate) fn contact_display_name(
    first: Option<&str>,
    last: Option<&str>,
    company: Option<&str>,
) -> Option<String> {
    let person: Vec<&str> = [first, last]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    if !person.is_empty() {
        return Some(person.join(" "));
    }
    company.filter(|c| !c.is_empty()).map(str::to_owned)
}

/// Why one line of a CSV import was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// A field is malformed (the message names it).
    Invalid {
        /// The offending field.
        field: Field,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The line has non-empty fields beyond the header's columns.
    TooManyFields {
        /// Columns in the header.
        expected: usize,
        /// Fields on the line.
        found: usize,
    },
    /// A quoted field is not closed before the end of the file.
    UnterminatedQuote,
    /// A character follows a closing quote (e.g. `"a"b`).
    TextAfterQuote,
    /// The same number appears on an earlier line of the same file.
    DuplicateInFile {
        /// The earlier line (1-based).
        first_line: usize,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Invalid { field, reason } => write!(f, "invalid {field}: {reason}"),
            RejectReason::TooManyFields { expected, found } => {
                write!(f, "{found} fields, the header has {expected}")
            }
            RejectReason::UnterminatedQuote => f.write_str("quoted field is never closed"),
            RejectReason::TextAfterQuote => f.write_str("text after a closing quote"),
            RejectReason::DuplicateInFile { first_line } => {
                write!(f, "number already given on line {first_line}")
            }
        }
    }
}

/// The outcome of a CSV import (applied in one transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Contacts created.
    pub added: u64,
    /// Existing contacts (same tenant and number) overwritten.
    pub updated: u64,
    /// Lines not applied: (1-based line where the record starts, why).
    pub rejected: Vec<(usize, RejectReason)>,
}

/// Where a locally found caller name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A user of the tenant (the number is the user's mobile).
    User,
    /// The tenant's directory of contacts.
    Contact,
}

/// A caller name found in the tenant's own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalName {
    /// The name to display.
    pub name: String,
    /// Where it was found.
    pub source: Source,
    /// The user, when `source` is [`Source::User`].
    pub user_id: Option<UserId>,
}

/// A cached answer of the external directory service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLookup {
    /// The name the service gave (None also for a negative entry).
    pub name: Option<String>,
    /// The address the service gave.
    pub address: Option<String>,
    /// False for a negative entry: the service had nothing for the number.
    pub found: bool,
}

// ---- call log ----

/// A call log row id (not a SIP Call-ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub i64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Declares a fieldless enum stored as a fixed TEXT value, with `as_str`, `Display` and
/// a `FromStr` that fails with [`StoreError::BadRow`] naming the column.
macro_rules! text_enum {
    (
        $(#[$meta:meta])* $name:ident, $column:literal,
        { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value stored in the database (and printed).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(StoreError::BadRow { column: $column }),
                }
            }
        }
    };
}
pub(super) use text_enum;

text_enum!(
    /// Which way a call went, seen from the tenant.
    Direction, "calls.direction", {
        /// From outside (the trunk) to the tenant.
        Inbound => "inbound",
        /// From a user to outside (the trunk).
        Outbound => "outbound",
        /// Between users of the same tenant.
        Internal => "internal",
    }
);

text_enum!(
    /// How a call (or one leg of it) ended.
    CallOutcome, "calls.outcome", {
        /// Someone answered.
        Answered => "answered",
        /// Nobody answered (no-answer timeout, or the caller gave up while it rang).
        Missed => "missed",
        /// Every target was busy.
        Busy => "busy",
        /// No target could be reached, or an error ended it.
        Failed => "failed",
        /// Cancelled before answer (a leg that lost the race, or the caller hung up
        /// before any ringing).
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// Why a call was forwarded (History-Info / Diversion cause).
    ForwardReason, "calls.forward_reason", {
        /// Forwarded unconditionally.
        Unconditional => "unconditional",
        /// Forwarded because the user was busy.
        Busy => "busy",
        /// Forwarded because nobody answered in time.
        NoAnswer => "no-answer",
        /// Forwarded because no terminal of the user was reachable.
        Unreachable => "unreachable",
    }
);

text_enum!(
    /// What one leg of a call was.
    LegKind, "call_legs.kind", {
        /// The incoming side (from the trunk or a user's phone).
        Inbound => "inbound",
        /// A registered SIP phone of a user.
        Phone => "phone",
        /// A user's mobile, reached through the trunk.
        Mobile => "mobile",
        /// An external number through the trunk.
        Trunk => "trunk",
        /// A forwarding target.
        Forward => "forward",
    }
);

text_enum!(
    /// How a user took part in a call (one user may have several roles).
    CallUserRole, "call_users.role", {
        /// The user called.
        Caller => "caller",
        /// The user was called (rang, whether or not answered).
        Callee => "callee",
        /// The user answered.
        Answered => "answered",
        /// The user's forwarding sent the call elsewhere.
        Forwarded => "forwarded",
    }
);

text_enum!(
    /// Which side of a call a set of media statistics belongs to.
    MediaLegKind, "call_media.leg", {
        /// The calling party's media leg.
        Caller => "caller",
        /// The called (answering) party's media leg.
        Callee => "callee",
    }
);

/// The media statistics of one side of a call whose media went through sentralbord
/// (RFC 3550 receiver statistics, as the media plane measured them at the end).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaStatsRecord {
    /// Which side.
    pub leg: MediaLegKind,
    /// The codec's encoding name at the end (`PCMU`, `opus`...); None if it never had one.
    pub codec: Option<String>,
    /// RTP packets received from that side.
    pub packets_received: u64,
    /// RTP packets sent to that side.
    pub packets_sent: u64,
    /// Packets from that side lost on the way to us (RFC 3550 cumulative, never below 0).
    pub packets_lost: u64,
    /// Interarrival jitter of that side's stream, milliseconds (RFC 3550 A.8).
    pub jitter_ms: f64,
    /// Payload bytes received from that side.
    pub bytes_received: u64,
}

impl MediaStatsRecord {
    /// Packets lost as a percentage of those expected (`lost / (received + lost)`);
    /// 0 when nothing was expected.
    pub fn loss_percent(&self) -> f64 {
        let expected = self.packets_received.saturating_add(self.packets_lost);
        if expected == 0 {
            return 0.0;
        }
        // Precision loss above 2^53 packets does not matter for a percentage.
        self.packets_lost as f64 * 100.0 / expected as f64
    }
}

/// One leg (dialog) of a call, in the order the legs were created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegRecord {
    /// The user this leg reached, if any.
    pub user: Option<UserId>,
    /// What the leg was.
    pub kind: LegKind,
    /// Where it went: a Contact URI, a number, or where it came from for the inbound leg.
    pub target: String,
    /// The SIP Call-ID of the leg's dialog.
    pub sip_call_id: String,
    /// Start, Unix milliseconds.
    pub started_at_ms: i64,
    /// Answer (2xx), Unix milliseconds.
    pub answered_at_ms: Option<i64>,
    /// End, Unix milliseconds.
    pub ended_at_ms: i64,
    /// How the leg ended.
    pub outcome: CallOutcome,
    /// The final SIP status of the leg, if one was received or sent.
    pub status_code: Option<u16>,
}

/// A finished call, as the engine reports it; written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The tenant (None when no tenant could be determined).
    pub tenant: Option<TenantId>,
    /// Which way the call went.
    pub direction: Direction,
    /// The calling number (E.164, extension, or e.g. "anonymous").
    pub caller_number: String,
    /// The caller's name, if known (from the call or the lookup).
    pub caller_name: Option<String>,
    /// The called number or extension.
    pub callee_number: String,
    /// The called party's name, if known.
    pub callee_name: Option<String>,
    /// Start (the initial INVITE), Unix milliseconds.
    pub started_at_ms: i64,
    /// Answer, Unix milliseconds.
    pub answered_at_ms: Option<i64>,
    /// End, Unix milliseconds.
    pub ended_at_ms: i64,
    /// How it ended.
    pub outcome: CallOutcome,
    /// The user who answered.
    pub answered_by: Option<UserId>,
    /// Why it was forwarded, if it was.
    pub forward_reason: Option<ForwardReason>,
    /// Who hung up or the SIP cause, e.g. "caller-bye", "callee-bye", "486".
    pub end_reason: Option<String>,
    /// The SIP Call-IDs of every leg.
    pub sip_call_ids: Vec<String>,
    /// The users involved, each with a role.
    pub users: Vec<(UserId, CallUserRole)>,
    /// The legs, in creation order.
    pub legs: Vec<LegRecord>,
    /// Media statistics per side (empty when the media was not anchored). At most one
    /// per side is kept: a second one for the same side is dropped.
    pub media: Vec<MediaStatsRecord>,
    /// The call's visits to queues, in order (empty for a call that met no queue).
    pub queue_visits: Vec<super::QueueVisitRecord>,
}

/// A user named in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    /// Row id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Extension.
    pub extension: String,
}

/// Which calls [`list_calls`](super::StoreHandle::list_calls) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFilter {
    /// Only this tenant's calls.
    pub tenant: Option<TenantId>,
    /// Only calls this user took part in (any role).
    pub user: Option<UserId>,
    /// Only calls started at or after this time, Unix milliseconds.
    pub since_ms: Option<i64>,
    /// At most this many (newest first).
    pub limit: u32,
}

/// One call log row, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    /// Row id.
    pub id: CallId,
    /// The tenant, if any.
    pub tenant_id: Option<TenantId>,
    /// The tenant's name, if any.
    pub tenant_name: Option<String>,
    /// Which way the call went.
    pub direction: Direction,
    /// The calling number.
    pub caller_number: String,
    /// The caller's name.
    pub caller_name: Option<String>,
    /// The called number.
    pub callee_number: String,
    /// The called party's name.
    pub callee_name: Option<String>,
    /// Start, Unix milliseconds.
    pub started_at_ms: i64,
    /// Answer, Unix milliseconds.
    pub answered_at_ms: Option<i64>,
    /// End, Unix milliseconds.
    pub ended_at_ms: i64,
    /// Talk time (answer to end), milliseconds; 0 if unanswered.
    pub duration_ms: i64,
    /// How it ended.
    pub outcome: CallOutcome,
    /// Who answered (None if nobody did, or the user was removed since).
    pub answered_by: Option<UserRef>,
    /// Why it was forwarded.
    pub forward_reason: Option<ForwardReason>,
    /// Who hung up or the SIP cause.
    pub end_reason: Option<String>,
    /// The SIP Call-IDs of every leg.
    pub sip_call_ids: Vec<String>,
    /// Media statistics, caller side first (empty when the media was not anchored).
    pub media: Vec<MediaStatsRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(received: u64, lost: u64) -> MediaStatsRecord {
        MediaStatsRecord {
            leg: MediaLegKind::Caller,
            codec: Some("PCMU".into()),
            packets_received: received,
            packets_sent: received,
            packets_lost: lost,
            jitter_ms: 0.0,
            bytes_received: received.saturating_mul(160),
        }
    }

    #[test]
    fn loss_percent_of_expected_packets() {
        assert_eq!(stats(0, 0).loss_percent(), 0.0, "nothing expected");
        assert_eq!(stats(996, 4).loss_percent(), 0.4);
        assert_eq!(stats(0, 50).loss_percent(), 100.0);
        assert_eq!(stats(u64::MAX, u64::MAX).loss_percent(), 100.0, "saturates");
    }

    #[test]
    fn media_leg_kind_text_round_trip() {
        for kind in MediaLegKind::ALL {
            assert_eq!(kind.as_str().parse::<MediaLegKind>().ok(), Some(*kind));
        }
        assert!(matches!(
            "agent".parse::<MediaLegKind>(),
            Err(StoreError::BadRow {
                column: "call_media.leg"
            })
        ));
    }
}
