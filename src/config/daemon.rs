//! Daemon settings: the sections of `sentralbord.toml`, their defaults and their rules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{Collector, Problem};

/// Everything in the daemon file (`sentralbord.toml`); every key has a default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// The SQLite database.
    pub store: StoreSettings,
    /// Logging.
    pub log: LogSettings,
    /// SIP protocol settings (RFC 3261 timers, headers, sizes).
    pub sip: SipSettings,
    /// Registration and digest authentication.
    pub registrar: RegistrarSettings,
    /// Socket-level limits.
    pub transport: TransportSettings,
    /// Graceful shutdown (SIGTERM).
    pub shutdown: ShutdownSettings,
    /// Where the SIP profiles are.
    pub profiles: ProfilesSettings,
    /// Caller-ID enrichment through an external directory service.
    pub lookup: LookupSettings,
    /// The media plane: RTP ports, media timeout, prompts.
    pub media: MediaSettings,
}

/// `[media]`: the RTP relay of anchored calls and the sounds sentralbord plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// The address RTP is bound on and written into SDP. When not set, the address of
    /// the SIP listener the call came in on (so set it when that is a wildcard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::IpAddr>,
    /// Lowest RTP port (even ports carry RTP, the next odd one RTCP).
    pub port_min: u16,
    /// Highest RTP/RTCP port.
    pub port_max: u16,
    /// A call whose RTP stopped on both legs for this long is hung up (0: never).
    pub timeout_s: u64,
    /// When a party puts an anchored call on hold, sentralbord answers the hold itself
    /// and plays music on hold to the other party; `false` relays the hold instead.
    pub moh_on_hold: bool,
    /// Directory of per-tenant sound overrides (`<dir>/<tenant id>/<prompt>.wav`);
    /// relative to the config file's directory. The built-in sounds are used otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sounds_dir: Option<PathBuf>,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            address: None,
            port_min: 10_000,
            port_max: 59_999,
            timeout_s: 60,
            moh_on_hold: true,
            sounds_dir: None,
        }
    }
}

impl MediaSettings {
    /// The media timeout (`None`: off).
    pub fn timeout(&self) -> Option<Duration> {
        (self.timeout_s > 0).then(|| Duration::from_secs(self.timeout_s))
    }
}

/// `[store]`: where the database lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Database file; a relative path is taken relative to `data_dir`, or to the
    /// working directory when `data_dir` is not set.
    pub path: PathBuf,
    /// Directory for the database (e.g. `/var/lib/sentralbord`, systemd's StateDirectory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("sentralbord.db"),
            data_dir: None,
        }
    }
}

impl StoreSettings {
    /// The database path to open: `path` if absolute, else `data_dir/path` or `path`
    /// relative to the working directory.
    pub fn db_path(&self) -> PathBuf {
        match &self.data_dir {
            Some(dir) if self.path.is_relative() => dir.join(&self.path),
            _ => self.path.clone(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// The runtime picks: journald when stderr is the journal (`JOURNAL_STREAM`),
    /// human when stderr is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable lines on stderr.
    Human,
    /// One JSON object per line on stderr.
    Json,
    /// Native journald records.
    Journald,
}

/// `[log]`: format and filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// A `tracing` filter: a level (`info`) or directives (`info,sentralbord::sip=debug`).
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".to_owned(),
        }
    }
}

/// `[sip]`: protocol settings shared by every profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipSettings {
    /// T1, the round-trip time estimate (RFC 3261 s17.1.1.1), in milliseconds.
    pub t1_ms: u64,
    /// T2, the longest retransmit interval for non-INVITE requests and INVITE responses.
    pub t2_ms: u64,
    /// T4, the longest time a message stays in the network.
    pub t4_ms: u64,
    /// Sent as `User-Agent` on requests and `Server` on responses; empty sends neither.
    pub user_agent: String,
    /// Largest SIP message accepted or sent, in bytes, on any transport.
    pub max_message_size: usize,
}

impl Default for SipSettings {
    fn default() -> Self {
        // RFC 3261 s17.1.1.1 recommended values.
        Self {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            user_agent: "sentralbord".to_owned(),
            max_message_size: 65535,
        }
    }
}

impl SipSettings {
    /// T1 as a duration.
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }
    /// T2 as a duration.
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }
    /// T4 as a duration.
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }
}

/// `[registrar]`: binding lifetimes and digest nonces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarSettings {
    /// Shortest registration accepted; shorter requests get 423 with Min-Expires.
    pub min_expires: u32,
    /// Longest registration granted; longer requests are shortened.
    pub max_expires: u32,
    /// Lifetime granted when the REGISTER asks for none.
    pub default_expires: u32,
    /// How long a digest nonce is accepted before the client is re-challenged (stale=TRUE).
    pub nonce_lifetime_s: u64,
    /// Most contacts one address-of-record may register.
    pub max_contacts_per_aor: u32,
}

impl Default for RegistrarSettings {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            nonce_lifetime_s: 300,
            max_contacts_per_aor: 10,
        }
    }
}

impl RegistrarSettings {
    /// The nonce lifetime as a duration.
    pub fn nonce_lifetime(&self) -> Duration {
        Duration::from_secs(self.nonce_lifetime_s)
    }
}

/// `[transport]`: socket limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportSettings {
    /// A TCP connection with no traffic for this long is closed. Longer than the usual
    /// phone keep-alive interval (30-120 s) so live phones keep their connection.
    pub tcp_idle_timeout_s: u64,
    /// A TCP peer must finish sending a message's headers within this time (slow-loris guard).
    pub tcp_header_timeout_s: u64,
    /// Most simultaneous TCP connections; further ones are refused.
    pub max_tcp_connections: u32,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            tcp_idle_timeout_s: 300,
            tcp_header_timeout_s: 5,
            max_tcp_connections: 4096,
        }
    }
}

impl TransportSettings {
    /// The idle timeout as a duration.
    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.tcp_idle_timeout_s)
    }
    /// The header timeout as a duration.
    pub fn tcp_header_timeout(&self) -> Duration {
        Duration::from_secs(self.tcp_header_timeout_s)
    }
}

/// `[shutdown]`: what SIGTERM does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// How long to let calls and transactions finish before exiting anyway.
    pub drain_timeout_s: u64,
    /// `Retry-After` seconds on the 503 sent to new requests while draining.
    pub retry_after_s: u32,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            drain_timeout_s: 10,
            retry_after_s: 30,
        }
    }
}

impl ShutdownSettings {
    /// The drain timeout as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_s)
    }
}

/// `[profiles]`: where the SIP profiles are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfilesSettings {
    /// Directory of `*.toml` profiles; relative to the config file's directory. When not
    /// set, the built-in `phones` and `trunk` profiles are used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

impl ProfilesSettings {
    /// The profiles directory, resolved against `base` (the config file's directory).
    pub fn resolved_dir(&self, base: Option<&Path>) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(match base {
            Some(base) if dir.is_relative() => base.join(dir),
            _ => dir.clone(),
        })
    }
}

/// `[lookup]`: caller-ID enrichment. The calling number of an inbound call is looked up
/// among the tenant's users and contacts, then in a cache, then (only when `url_template`
/// is set) with an HTTP GET to an external directory service.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookupSettings {
    /// URL of the directory service with `{number}` (E.164, `+4721000000`) and/or
    /// `{national}` (`21000000`) in it; not set: no HTTP lookups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_template: Option<String>,
    /// HTTP basic-auth user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// HTTP basic-auth password (secret: set it with `SENTRALBORD_LOOKUP__PASSWORD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Bearer token sent as `Authorization: Bearer ...` (secret: set it with
    /// `SENTRALBORD_LOOKUP__BEARER_TOKEN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// JSON pointer (RFC 6901) to the caller's name in the answer.
    pub name_pointer: String,
    /// JSON pointer to the caller's address in the answer; empty: no address.
    pub address_pointer: String,
    /// The whole lookup (local, cache and HTTP) gives up after this many milliseconds and
    /// the call rings with the bare number.
    pub budget_ms: u64,
    /// An HTTP request gives up after this many milliseconds; a request that outlives the
    /// budget still caches its answer for the next call.
    pub request_timeout_ms: u64,
    /// How long a name found is cached, in seconds (0: not cached).
    pub cache_ttl_s: u64,
    /// How long "the service knows no name" is cached, in seconds (0: not cached).
    pub negative_cache_ttl_s: u64,
    /// Most HTTP requests in flight at once; lookups beyond that skip the service.
    pub max_concurrent: u32,
}

impl Default for LookupSettings {
    fn default() -> Self {
        Self {
            url_template: None,
            username: None,
            password: None,
            bearer_token: None,
            name_pointer: "/name".to_owned(),
            address_pointer: "/address".to_owned(),
            budget_ms: 300,
            request_timeout_ms: 2000,
            cache_ttl_s: 7 * 86_400,
            negative_cache_ttl_s: 86_400,
            max_concurrent: 32,
        }
    }
}

impl std::fmt::Debug for LookupSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log line: the password and token are redacted, and the URL
        // is shown without its query string, which may hold an API key.
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("LookupSettings")
            .field(
                "url_template",
                &self.url_template.as_deref().map(url_without_query),
            )
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("bearer_token", &redacted(&self.bearer_token))
            .field("name_pointer", &self.name_pointer)
            .field("address_pointer", &self.address_pointer)
            .field("budget_ms", &self.budget_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("cache_ttl_s", &self.cache_ttl_s)
            .field("negative_cache_ttl_s", &self.negative_cache_ttl_s)
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

impl LookupSettings {
    /// The lookup budget as a duration.
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.budget_ms)
    }
    /// The HTTP request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Checks the `[lookup]` keys.
    fn validate(&self, c: &mut Collector) {
        if let Some(url) = &self.url_template {
            if let Some(problem) = url_template_problem(url) {
                c.push("lookup.url_template", problem);
            }
        }
        if self.username.is_some() && self.bearer_token.is_some() {
            c.push(
                "lookup.bearer_token",
                Problem::ConflictsWith {
                    other: "lookup.username".into(),
                },
            );
        }
        if self.password.is_some() && self.username.is_none() {
            c.push(
                "lookup.password",
                Problem::Requires {
                    other: "lookup.username".into(),
                },
            );
        }
        if let Some(user) = &self.username {
            if user.is_empty() {
                c.push("lookup.username", Problem::Empty);
            } else if user.chars().any(|ch| ch == ':' || ch.is_control()) {
                // RFC 7617 s2: the user-id cannot contain a colon.
                c.push(
                    "lookup.username",
                    Problem::BadCharacters {
                        value: user.clone(),
                        allowed: "no colon, no control characters",
                    },
                );
            }
        }
        // Secrets: the value is never echoed back in the message.
        if self
            .password
            .as_ref()
            .is_some_and(|p| p.chars().any(char::is_control))
        {
            c.push(
                "lookup.password",
                Problem::BadCharacters {
                    value: "<redacted>".into(),
                    allowed: "no control characters",
                },
            );
        }
        if let Some(token) = &self.bearer_token {
            if token.is_empty() {
                c.push("lookup.bearer_token", Problem::Empty);
            } else if !token.bytes().all(is_token68_byte) {
                // RFC 6750 s2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
                c.push(
                    "lookup.bearer_token",
                    Problem::BadCharacters {
                        value: "<redacted>".into(),
                        allowed: "letters, digits and - . _ ~ + / =",
                    },
                );
            }
        }
        for (key, pointer) in [
            ("lookup.name_pointer", &self.name_pointer),
            ("lookup.address_pointer", &self.address_pointer),
        ] {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                c.push(
                    key,
                    Problem::Malformed {
                        value: pointer.clone(),
                        expected: "a JSON pointer (RFC 6901): empty or starting with \"/\"",
                    },
                );
            }
        }
        c.range("lookup.budget_ms", self.budget_ms, 1, 5000);
        c.range(
            "lookup.request_timeout_ms",
            self.request_timeout_ms,
            1,
            60_000,
        );
        c.range("lookup.cache_ttl_s", self.cache_ttl_s, 0, 31_536_000);
        c.range(
            "lookup.negative_cache_ttl_s",
            self.negative_cache_ttl_s,
            0,
            31_536_000,
        );
        c.range(
            "lookup.max_concurrent",
            self.max_concurrent.into(),
            1,
            10_000,
        );
    }
}

/// A bearer token character (RFC 6750 s2.1 `b64token`).
fn is_token68_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// `url` with its query string (which may hold an API key) cut off.
fn url_without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(head, _)| head)
}

/// What is wrong with a lookup URL template, if anything.
fn url_template_problem(url: &str) -> Option<Problem> {
    let shown = url_without_query(url).to_owned();
    if url.is_empty() {
        return Some(Problem::Empty);
    }
    if url.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return Some(Problem::BadCharacters {
            value: shown,
            allowed: "no spaces, no control characters",
        });
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    let host_ok = rest.is_some_and(|r| {
        let authority = r.split(['/', '?', '#']).next().unwrap_or("");
        !authority.is_empty() && !authority.contains('{') && !authority.contains('@')
    });
    if !host_ok {
        return Some(Problem::Malformed {
            value: shown,
            expected: "an http:// or https:// URL with a host (credentials go in lookup.username)",
        });
    }
    // Every `{...}` must be a known placeholder, so a typo such as `{nummer}` is caught
    // here rather than sent to the service.
    let mut has_placeholder = false;
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Some(Problem::Malformed {
                value: shown,
                expected: "a URL whose placeholders are {number} or {national}",
            });
        };
        match &after[..close] {
            "number" | "national" => has_placeholder = true,
            _ => {
                return Some(Problem::Malformed {
                    value: shown,
                    expected: "a URL whose placeholders are {number} or {national}",
                })
            }
        }
        rest = &after[close + 1..];
    }
    if !has_placeholder {
        return Some(Problem::Malformed {
            value: shown,
            expected: "a URL containing {number} or {national}",
        });
    }
    None
}

impl DaemonConfig {
    /// Checks ranges and cross-field rules, recording every problem.
    pub(crate) fn validate(&self, c: &mut Collector) {
        if self.store.path.as_os_str().is_empty() {
            c.push("store.path", Problem::Empty);
        }

        if self.log.level.trim().is_empty() {
            c.push("log.level", Problem::Empty);
        } else if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            c.push(
                "log.level",
                Problem::BadLogFilter {
                    value: self.log.level.clone(),
                    reason: e.to_string(),
                },
            );
        }

        let sip = &self.sip;
        c.range("sip.t1_ms", sip.t1_ms, 50, 10_000);
        c.range("sip.t2_ms", sip.t2_ms, 1000, 60_000);
        c.range("sip.t4_ms", sip.t4_ms, 1000, 60_000);
        if sip.t2_ms < sip.t1_ms {
            c.push(
                "sip.t2_ms",
                Problem::MustBeAtLeast {
                    other: "sip.t1_ms".into(),
                },
            );
        }
        if sip.user_agent.len() > 256 {
            c.push("sip.user_agent", Problem::TooLong { max: 256 });
        }
        // It becomes a header value: a CR or LF would let it inject headers.
        if sip.user_agent.chars().any(char::is_control) {
            c.push(
                "sip.user_agent",
                Problem::BadCharacters {
                    value: sip.user_agent.clone(),
                    allowed: "no control characters",
                },
            );
        }
        c.range(
            "sip.max_message_size",
            sip.max_message_size as u64,
            1024,
            1_048_576,
        );

        let r = &self.registrar;
        c.range("registrar.min_expires", r.min_expires.into(), 1, 86_400);
        c.range("registrar.max_expires", r.max_expires.into(), 1, 604_800);
        c.range(
            "registrar.default_expires",
            r.default_expires.into(),
            1,
            604_800,
        );
        if r.min_expires > r.max_expires {
            c.push(
                "registrar.min_expires",
                Problem::MustNotExceed {
                    other: "registrar.max_expires".into(),
                },
            );
        }
        if r.default_expires > r.max_expires {
            c.push(
                "registrar.default_expires",
                Problem::MustNotExceed {
                    other: "registrar.max_expires".into(),
                },
            );
        }
        if r.default_expires < r.min_expires {
            c.push(
                "registrar.default_expires",
                Problem::MustBeAtLeast {
                    other: "registrar.min_expires".into(),
                },
            );
        }
        c.range("registrar.nonce_lifetime_s", r.nonce_lifetime_s, 10, 86_400);
        c.range(
            "registrar.max_contacts_per_aor",
            r.max_contacts_per_aor.into(),
            1,
            1000,
        );

        let t = &self.transport;
        c.range(
            "transport.tcp_idle_timeout_s",
            t.tcp_idle_timeout_s,
            10,
            86_400,
        );
        c.range(
            "transport.tcp_header_timeout_s",
            t.tcp_header_timeout_s,
            1,
            300,
        );
        c.range(
            "transport.max_tcp_connections",
            t.max_tcp_connections.into(),
            1,
            1_000_000,
        );

        let s = &self.shutdown;
        c.range("shutdown.drain_timeout_s", s.drain_timeout_s, 0, 3600);
        c.range("shutdown.retry_after_s", s.retry_after_s.into(), 0, 86_400);

        if let Some(dir) = &self.profiles.dir {
            if dir.as_os_str().is_empty() {
                c.push("profiles.dir", Problem::Empty);
            }
        }

        self.lookup.validate(c);

        let m = &self.media;
        c.range("media.port_min", m.port_min.into(), 1024, 65_534);
        c.range("media.port_max", m.port_max.into(), 1025, 65_535);
        // At least one RTP/RTCP pair per leg of one call.
        if m.port_max < m.port_min.saturating_add(3) {
            c.push(
                "media.port_max",
                Problem::OutOfRange {
                    min: u64::from(m.port_min) + 3,
                    max: 65_535,
                    got: m.port_max.into(),
                },
            );
        }
        c.range("media.timeout_s", m.timeout_s, 0, 86_400);
        if let Some(dir) = &m.sounds_dir {
            if dir.as_os_str().is_empty() {
                c.push("media.sounds_dir", Problem::Empty);
            }
        }
    }
}
