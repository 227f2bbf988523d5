//! SIP profiles: one `sip-profiles/*.toml` file per listening profile (`phones` or `trunk`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

use super::error::{Collector, ConfigError, Problem};
use super::net::{is_host, HostPort, IpNetwork};

/// The built-in profiles, the same files as in the repository's `sip-profiles/`.
const BUILTIN: [(&str, &str); 2] = [
    (
        "phones.toml",
        include_str!("../../sip-profiles/phones.toml"),
    ),
    ("trunk.toml", include_str!("../../sip-profiles/trunk.toml")),
];

/// Default realm for a phones profile that does not set one.
pub const DEFAULT_REALM: &str = "sentralbord.local";

/// A transport a profile listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP (RFC 3261 s18.3 framing).
    Tcp,
}

impl TransportKind {
    /// The transport token for the Via header (`UDP`, `TCP`; RFC 3261 s20.42).
    pub fn as_via_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
        }
    }

    /// The lowercase name used in configuration and logs (`udp`, `tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One address a profile listens on, with its transports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// IP address and port (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Transports on that address, without duplicates, in the order written.
    pub transports: Vec<TransportKind>,
}

/// A validated SIP profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Unique name (letters, digits, `-`, `_`).
    pub name: String,
    /// What the profile is for, with its kind-specific settings.
    pub kind: ProfileKind,
    /// Where it listens; never empty.
    pub listen: Vec<ListenSpec>,
    /// Whether calls on this profile have their media anchored by sentralbord (RTP
    /// relayed through its ports); true unless the profile says `anchor_media = false`.
    pub anchor_media: bool,
}

impl Profile {
    /// The phones settings, if this is a phones profile.
    pub fn phones(&self) -> Option<&PhonesSettings> {
        match &self.kind {
            ProfileKind::Phones(p) => Some(p),
            ProfileKind::Trunk(_) => None,
        }
    }

    /// The trunk settings, if this is a trunk profile.
    pub fn trunk(&self) -> Option<&TrunkSettings> {
        match &self.kind {
            ProfileKind::Trunk(t) => Some(t),
            ProfileKind::Phones(_) => None,
        }
    }
}

/// The two kinds of profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// Phones register and are challenged with digest authentication.
    Phones(PhonesSettings),
    /// A carrier trunk: requests accepted from trusted addresses only.
    Trunk(TrunkSettings),
}

/// Settings of a phones profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonesSettings {
    /// Digest realm (printable ASCII without `"` or `\`).
    pub realm: String,
    /// Hosts served in request URIs, lowercased; empty serves any host.
    pub domains: Vec<String>,
    /// Digest algorithms offered in challenges, in order of preference (RFC 8760 s2.4:
    /// a UAC uses the first it supports). Default: SHA-256, then MD5.
    pub digest_algorithms: Vec<crate::sip::auth::Algorithm>,
}

impl PhonesSettings {
    /// Whether this profile serves `host` (case-insensitive; any host if `domains` is empty).
    pub fn serves_domain(&self, host: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }
}

/// Settings of a trunk profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkSettings {
    /// Carrier networks requests are accepted from; never empty.
    pub trusted: Vec<IpNetwork>,
    /// How numbers are written on this trunk.
    pub numbering: Numbering,
    /// Where outgoing calls are sent, if configured.
    pub outbound_proxy: Option<HostPort>,
    /// How often the carrier is pinged with OPTIONS; `None`: never (the trunk is then
    /// always considered up).
    pub options_ping: Option<std::time::Duration>,
}

/// The default interval of the carrier's OPTIONS ping, seconds.
pub const DEFAULT_OPTIONS_PING_S: u64 = 30;

impl TrunkSettings {
    /// Whether a request from `ip` comes from a trusted carrier address.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }
}

/// Number formats on a trunk (all decimal digit strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbering {
    /// Country calling code without `+` (`47`).
    pub country_code: String,
    /// National trunk prefix, possibly empty (Norway has none; the UK uses `0`).
    pub national_prefix: String,
    /// International call prefix (`00`).
    pub international_prefix: String,
}

impl Default for Numbering {
    fn default() -> Self {
        Self {
            country_code: "47".to_owned(),
            national_prefix: String::new(),
            international_prefix: "00".to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<String>,
    kind: String,
    #[serde(default)]
    listen: Vec<RawListen>,
    realm: Option<String>,
    domains: Option<Vec<String>>,
    digest_algorithms: Option<Vec<String>>,
    trusted: Option<Vec<String>>,
    numbering: Option<RawNumbering>,
    outbound_proxy: Option<String>,
    options_ping_s: Option<u64>,
    anchor_media: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    address: String,
    #[serde(default = "default_transports")]
    transports: Vec<String>,
}

fn default_transports() -> Vec<String> {
    vec!["udp".to_owned(), "tcp".to_owned()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNumbering {
    country_code: Option<String>,
    national_prefix: Option<String>,
    international_prefix: Option<String>,
}

/// Parses and validates one profile file. `label` names the file in errors; `stem` is the
/// default profile name. Problems are recorded in `c`; `None` means at least one was.
fn parse_profile(
    label: &str,
    stem: &str,
    text: &str,
    c: &mut Collector,
) -> Result<Option<Profile>, ConfigError> {
    let raw: RawProfile = toml::from_str(text).map_err(|e| ConfigError::ProfileSyntax {
        file: label.to_owned(),
        source: Box::new(e),
    })?;
    let before = c.list.len();

    let name = raw.name.unwrap_or_else(|| stem.to_owned());
    if name.is_empty() {
        c.push("name", Problem::Empty);
    } else if name.len() > 64 {
        c.push("name", Problem::TooLong { max: 64 });
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        c.push(
            "name",
            Problem::BadCharacters {
                value: name.clone(),
                allowed: "letters, digits, '-' and '_'",
            },
        );
    }

    let listen = parse_listen(&raw.listen, c);

    let kind = match raw.kind.as_str() {
        "phones" => {
            for (present, key) in [
                (raw.trusted.is_some(), "trusted"),
                (raw.numbering.is_some(), "numbering"),
                (raw.outbound_proxy.is_some(), "outbound_proxy"),
                (raw.options_ping_s.is_some(), "options_ping_s"),
            ] {
                if present {
                    c.push(
                        key,
                        Problem::WrongKind {
                            belongs_to: "trunk",
                        },
                    );
                }
            }
            Some(ProfileKind::Phones(parse_phones(
                raw.realm,
                raw.domains,
                raw.digest_algorithms,
                c,
            )))
        }
        "trunk" => {
            for (present, key) in [
                (raw.realm.is_some(), "realm"),
                (raw.domains.is_some(), "domains"),
                (raw.digest_algorithms.is_some(), "digest_algorithms"),
            ] {
                if present {
                    c.push(
                        key,
                        Problem::WrongKind {
                            belongs_to: "phones",
                        },
                    );
                }
            }
            Some(ProfileKind::Trunk(parse_trunk(
                raw.trusted,
                raw.numbering,
                raw.outbound_proxy,
                raw.options_ping_s,
                c,
            )))
        }
        other => {
            c.push(
                "kind",
                Problem::UnknownKind {
                    value: other.to_owned(),
                },
            );
            None
        }
    };

    if c.list.len() > before {
        return Ok(None);
    }
    let anchor_media = raw.anchor_media.unwrap_or(true);
    Ok(kind.map(|kind| Profile {
        name,
        kind,
        listen,
        anchor_media,
    }))
}

fn parse_listen(raw: &[RawListen], c: &mut Collector) -> Vec<ListenSpec> {
    if raw.is_empty() {
        c.push("listen", Problem::EmptyList);
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, l) in raw.iter().enumerate() {
        let addr = match l.address.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.push(
                    format!("listen[{i}].address"),
                    Problem::NotSocketAddr {
                        value: l.address.clone(),
                    },
                );
                None
            }
        };
        if l.transports.is_empty() {
            c.push(format!("listen[{i}].transports"), Problem::EmptyList);
        }
        let mut transports = Vec::with_capacity(l.transports.len());
        for (j, t) in l.transports.iter().enumerate() {
            let key = format!("listen[{i}].transports[{j}]");
            let kind = match t.to_ascii_lowercase().as_str() {
                "udp" => TransportKind::Udp,
                "tcp" => TransportKind::Tcp,
                "tls" | "ws" | "wss" | "sctp" => {
                    c.push(key, Problem::TransportNotSupported { value: t.clone() });
                    continue;
                }
                _ => {
                    c.push(key, Problem::UnknownTransport { value: t.clone() });
                    continue;
                }
            };
            if transports.contains(&kind) {
                c.push(key, Problem::DuplicateTransport { value: t.clone() });
            } else {
                transports.push(kind);
            }
        }
        if let Some(addr) = addr {
            out.push(ListenSpec { addr, transports });
        }
    }
    out
}

fn parse_phones(
    realm: Option<String>,
    domains: Option<Vec<String>>,
    algorithms: Option<Vec<String>>,
    c: &mut Collector,
) -> PhonesSettings {
    use crate::sip::auth::Algorithm;
    let mut digest_algorithms = Vec::new();
    match algorithms {
        None => digest_algorithms = vec![Algorithm::Sha256, Algorithm::Md5],
        Some(list) if list.is_empty() => c.push("digest_algorithms", Problem::EmptyList),
        Some(list) => {
            for (i, a) in list.into_iter().enumerate() {
                match Algorithm::from_token(&a) {
                    Ok(alg) if !digest_algorithms.contains(&alg) => digest_algorithms.push(alg),
                    Ok(_) => c.push(
                        format!("digest_algorithms[{i}]"),
                        Problem::DuplicateTransport { value: a },
                    ),
                    Err(_) => c.push(
                        format!("digest_algorithms[{i}]"),
                        Problem::UnknownAlgorithm { value: a },
                    ),
                }
            }
        }
    }
    let realm = realm.unwrap_or_else(|| DEFAULT_REALM.to_owned());
    if realm.is_empty() {
        c.push("realm", Problem::Empty);
    } else if realm.len() > 128 {
        c.push("realm", Problem::TooLong { max: 128 });
    } else if !realm
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        // The realm goes into a quoted-string and is hashed into every user's HA1;
        // phones differ in how they escape, so keep it to plain printable ASCII.
        c.push(
            "realm",
            Problem::BadCharacters {
                value: realm.clone(),
                allowed: "printable ASCII without '\"' or '\\'",
            },
        );
    }
    let mut out = Vec::new();
    for (i, d) in domains.unwrap_or_default().into_iter().enumerate() {
        if is_host(&d) {
            out.push(d.to_ascii_lowercase());
        } else {
            c.push(format!("domains[{i}]"), Problem::NotHostPort { value: d });
        }
    }
    PhonesSettings {
        realm,
        domains: out,
        digest_algorithms,
    }
}

fn parse_trunk(
    trusted: Option<Vec<String>>,
    numbering: Option<RawNumbering>,
    outbound_proxy: Option<String>,
    options_ping_s: Option<u64>,
    c: &mut Collector,
) -> TrunkSettings {
    let trusted_raw = trusted.unwrap_or_default();
    if trusted_raw.is_empty() {
        // A trunk that trusts nobody would silently refuse every call.
        c.push("trusted", Problem::EmptyList);
    }
    let mut nets = Vec::with_capacity(trusted_raw.len());
    for (i, t) in trusted_raw.into_iter().enumerate() {
        match t.parse::<IpNetwork>() {
            Ok(n) => nets.push(n),
            Err(_) => c.push(format!("trusted[{i}]"), Problem::NotIpOrCidr { value: t }),
        }
    }

    let defaults = Numbering::default();
    let numbering = match numbering {
        None => defaults,
        Some(n) => Numbering {
            country_code: n.country_code.unwrap_or(defaults.country_code),
            national_prefix: n.national_prefix.unwrap_or(defaults.national_prefix),
            international_prefix: n
                .international_prefix
                .unwrap_or(defaults.international_prefix),
        },
    };
    digits(c, "numbering.country_code", &numbering.country_code, 1, 3);
    if numbering.country_code.starts_with('0') {
        c.push(
            "numbering.country_code",
            Problem::BadCharacters {
                value: numbering.country_code.clone(),
                allowed: "must not start with 0",
            },
        );
    }
    digits(
        c,
        "numbering.national_prefix",
        &numbering.national_prefix,
        0,
        4,
    );
    digits(
        c,
        "numbering.international_prefix",
        &numbering.international_prefix,
        1,
        4,
    );

    let outbound_proxy = match outbound_proxy {
        None => None,
        Some(p) => match p.parse::<HostPort>() {
            Ok(hp) => Some(hp),
            Err(_) => {
                c.push("outbound_proxy", Problem::NotHostPort { value: p });
                None
            }
        },
    };

    // 0 turns the ping off; otherwise between 5 s and an hour.
    let ping_s = options_ping_s.unwrap_or(DEFAULT_OPTIONS_PING_S);
    if ping_s != 0 {
        c.range("options_ping_s", ping_s, 5, 3600);
    }
    TrunkSettings {
        trusted: nets,
        numbering,
        outbound_proxy,
        options_ping: (ping_s != 0).then(|| std::time::Duration::from_secs(ping_s)),
    }
}

fn digits(c: &mut Collector, key: &str, value: &str, min_len: usize, max_len: usize) {
    if value.len() < min_len || value.len() > max_len || !value.bytes().all(|b| b.is_ascii_digit())
    {
        c.push(
            key,
            Problem::NotDigits {
                value: value.to_owned(),
                min_len,
                max_len,
            },
        );
    }
}

/// Parses a set of profile files `(label, stem, text)` and checks the rules that span
/// profiles: unique names, no two listeners on one address and transport.
fn parse_set<'a>(
    files: impl IntoIterator<Item = (String, String, &'a str)>,
) -> Result<Vec<Profile>, ConfigError> {
    let mut issues = Vec::new();
    let mut profiles: Vec<(String, Profile)> = Vec::new();
    for (label, stem, text) in files {
        let mut c = Collector::for_file(&label);
        if let Some(p) = parse_profile(&label, &stem, text, &mut c)? {
            profiles.push((label, p));
        }
        issues.append(&mut c.list);
    }

    for (i, (label, p)) in profiles.iter().enumerate() {
        let mut c = Collector::for_file(label);
        if let Some((first, _)) = profiles[..i].iter().find(|(_, q)| q.name == p.name) {
            c.push(
                "name",
                Problem::DuplicateName {
                    name: p.name.clone(),
                    first: first.clone(),
                },
            );
        }
        for (li, l) in p.listen.iter().enumerate() {
            for &t in &l.transports {
                if let Some(other) = find_conflict(&profiles, i, li, l.addr, t) {
                    c.push(
                        format!("listen[{li}].address"),
                        Problem::ListenConflict {
                            addr: l.addr,
                            transport: t.as_str(),
                            other,
                        },
                    );
                }
            }
        }
        issues.append(&mut c.list);
    }

    if !issues.is_empty() {
        return Err(ConfigError::Invalid(issues));
    }
    Ok(profiles.into_iter().map(|(_, p)| p).collect())
}

/// Finds a listener before (`pi`, `li`) that would take the same socket as `addr`/`t`.
fn find_conflict(
    profiles: &[(String, Profile)],
    pi: usize,
    li: usize,
    addr: SocketAddr,
    t: TransportKind,
) -> Option<String> {
    // Port 0 asks the kernel for a fresh port each time, so it never clashes.
    if addr.port() == 0 {
        return None;
    }
    for (qi, (_, q)) in profiles.iter().enumerate().take(pi + 1) {
        let end = if qi == pi { li } else { q.listen.len() };
        for (qli, other) in q.listen[..end].iter().enumerate() {
            if other.transports.contains(&t) && sockets_overlap(addr, other.addr) {
                return Some(format!("profile {:?} (listen[{qli}])", q.name));
            }
        }
    }
    None
}

/// Whether binding both addresses would collide: same port and the same IP, or one of
/// them the unspecified address of the same family (0.0.0.0 takes every IPv4 address).
fn sockets_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() {
        return false;
    }
    match (a.ip(), b.ip()) {
        (IpAddr::V4(x), IpAddr::V4(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V6(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        // Dual-stack sockets are bound with IPV6_V6ONLY, so families never collide.
        _ => false,
    }
}

/// The built-in profiles (`phones` on 127.0.0.1:5060, `trunk` on 127.0.0.1:5080).
pub fn builtin_profiles() -> Result<Vec<Profile>, ConfigError> {
    parse_set(BUILTIN.iter().map(|(file, text)| {
        (
            format!("built-in sip-profiles/{file}"),
            file.trim_end_matches(".toml").to_owned(),
            *text,
        )
    }))
}

/// Loads every `*.toml` file in `dir` (sorted by name) as a profile.
pub fn load_profiles_dir(dir: &Path) -> Result<Vec<Profile>, ConfigError> {
    let read_err = |path: &Path, source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let path = entry.map_err(|e| read_err(dir, e))?.path();
        // Editors leave backups and swap files next to the profiles; only *.toml counts.
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::Invalid(vec![super::error::Issue {
            file: Some(dir.display().to_string()),
            key: String::new(),
            problem: Problem::NoProfiles,
        }]));
    }
    let mut texts = Vec::with_capacity(files.len());
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| read_err(path, e))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        texts.push((path.display().to_string(), stem, text));
    }
    parse_set(
        texts
            .iter()
            .map(|(l, s, t)| (l.clone(), s.clone(), t.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(text: &str) -> Result<Vec<Profile>, ConfigError> {
        parse_set([("profiles/t.toml".to_owned(), "t".to_owned(), text)])
    }

    fn messages(err: &ConfigError) -> Vec<String> {
        err.issues().iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn builtin_profiles_parse_with_documented_defaults() {
        let ps = builtin_profiles().expect("built-in profiles are valid");
        assert_eq!(ps.len(), 2);
        let phones = &ps[0];
        assert_eq!(phones.name, "phones");
        let ph = phones.phones().expect("phones kind");
        assert_eq!(ph.realm, "sentralbord.local");
        assert!(ph.serves_domain("anything.example"));
        assert_eq!(
            phones.listen,
            vec![ListenSpec {
                addr: "127.0.0.1:5060".parse().expect("addr"),
                transports: vec![TransportKind::Udp, TransportKind::Tcp],
            }]
        );
        let trunk = &ps[1];
        assert_eq!(trunk.name, "trunk");
        let t = trunk.trunk().expect("trunk kind");
        assert!(t.is_trusted("127.0.0.1".parse().expect("ip")));
        assert!(t.is_trusted("::1".parse().expect("ip")));
        assert!(!t.is_trusted("192.0.2.1".parse().expect("ip")));
        assert_eq!(t.numbering, Numbering::default());
        assert_eq!(t.outbound_proxy, None);
        assert_eq!(t.options_ping, Some(std::time::Duration::from_secs(30)));
        assert_eq!(
            trunk.listen[0].addr,
            "127.0.0.1:5080".parse().expect("addr")
        );
        assert_eq!(
            trunk.listen[0].transports,
            vec![TransportKind::Udp, TransportKind::Tcp]
        );
    }

    #[test]
    fn transport_kind_strings() {
        assert_eq!(TransportKind::Udp.as_via_str(), "UDP");
        assert_eq!(TransportKind::Tcp.as_via_str(), "TCP");
        assert_eq!(TransportKind::Tcp.to_string(), "tcp");
    }

    #[test]
    fn ipv6_and_port_zero_listen() {
        let ps = parse_one(
            r#"kind = "phones"
            [[listen]]
            address = "[::1]:0"
            transports = ["UDP"]
            [[listen]]
            address = "[::1]:0"
            transports = ["udp"]
            "#,
        )
        .expect("valid");
        assert_eq!(ps[0].name, "t", "name defaults to the file stem");
        assert_eq!(ps[0].listen[0].addr, "[::1]:0".parse().expect("addr"));
        assert_eq!(ps[0].listen[0].transports, vec![TransportKind::Udp]);
    }

    #[test]
    fn trusted_entry_that_is_not_an_address_is_named() {
        let err = parse_one(
            r#"kind = "trunk"
            trusted = ["10.0.0.0/8", "10.0.0.x"]
            [[listen]]
            address = "127.0.0.1:5080"
            "#,
        )
        .expect_err("invalid");
        assert_eq!(
            messages(&err),
            vec![r#"profiles/t.toml: trusted[1]: "10.0.0.x" is not an IP address or CIDR"#]
        );
    }

    #[test]
    fn transports_unknown_and_unsupported() {
        let err = parse_one(
            r#"kind = "phones"
            [[listen]]
            address = "127.0.0.1:5060"
            transports = ["udp", "tls", "carrier-pigeon", "udp"]
            "#,
        )
        .expect_err("invalid");
        let m = messages(&err);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].contains("listen[0].transports[1]") && m[0].contains("not supported yet"));
        assert!(m[1].contains("listen[0].transports[2]") && m[1].contains("is not a transport"));
        assert!(m[2].contains("listen[0].transports[3]") && m[2].contains("listed twice"));
    }

    #[test]
    fn bad_address_kind_keys_and_numbering() {
        let err = parse_one(
            r#"kind = "phones"
            realm = "a\"b"
            trusted = ["127.0.0.1"]
            domains = ["ok.example", "bad host"]
            [[listen]]
            address = "127.0.0.1"
            "#,
        )
        .expect_err("invalid");
        let keys: Vec<&str> = err.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["listen[0].address", "trusted", "realm", "domains[1]"]
        );

        let err = parse_one(
            r#"kind = "trunk"
            trusted = ["192.0.2.0/24"]
            outbound_proxy = "carrier.example:0"
            [numbering]
            country_code = "047"
            international_prefix = ""
            [[listen]]
            address = "127.0.0.1:5080"
            "#,
        )
        .expect_err("invalid");
        let keys: Vec<&str> = err.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "numbering.country_code",
                "numbering.international_prefix",
                "outbound_proxy"
            ]
        );

        let err = parse_one(r#"kind = "pbx""#).expect_err("invalid");
        let keys: Vec<&str> = err.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["listen", "kind"]);
    }

    #[test]
    fn options_ping_is_off_at_zero_and_bounded_otherwise() {
        let trunk = |ping: &str| {
            parse_one(&format!(
                "kind = \"trunk\"\ntrusted = [\"192.0.2.0/24\"]\n{ping}\n\
                 [[listen]]\naddress = \"127.0.0.1:5080\"\n"
            ))
        };
        let ping_of = |ps: Vec<Profile>| ps[0].trunk().expect("trunk").options_ping;
        assert_eq!(ping_of(trunk("options_ping_s = 0").expect("valid")), None);
        assert_eq!(
            ping_of(trunk("options_ping_s = 5").expect("valid")),
            Some(std::time::Duration::from_secs(5))
        );
        for bad in ["options_ping_s = 4", "options_ping_s = 3601"] {
            let err = trunk(bad).expect_err(bad);
            assert_eq!(messages(&err).len(), 1, "{bad}");
            assert_eq!(err.issues()[0].key, "options_ping_s", "{bad}");
        }
        let err = parse_one(
            "kind = \"phones\"\noptions_ping_s = 30\n[[listen]]\naddress = \"127.0.0.1:5060\"\n",
        )
        .expect_err("trunk only");
        assert_eq!(err.issues()[0].key, "options_ping_s");
    }

    #[test]
    fn unknown_key_is_a_syntax_error_naming_the_file() {
        let err = parse_one(
            r#"kind = "phones"
            relam = "x"
            "#,
        )
        .expect_err("invalid");
        let msg = err.to_string();
        assert!(msg.starts_with("profiles/t.toml:"), "{msg}");
        assert!(msg.contains("relam"), "{msg}");
    }

    #[test]
    fn duplicate_names_and_listen_conflicts_across_profiles() {
        let a = r#"name = "x"
            kind = "phones"
            [[listen]]
            address = "0.0.0.0:5060"
            transports = ["udp"]
            "#;
        let b = r#"name = "x"
            kind = "trunk"
            trusted = ["192.0.2.1"]
            [[listen]]
            address = "192.0.2.10:5060"
            transports = ["tcp", "udp"]
            [[listen]]
            address = "[::]:5060"
            transports = ["udp"]
            "#;
        let err = parse_set([
            ("p/a.toml".to_owned(), "a".to_owned(), a),
            ("p/b.toml".to_owned(), "b".to_owned(), b),
        ])
        .expect_err("invalid");
        let m = messages(&err);
        assert_eq!(
            m,
            vec![
                r#"p/b.toml: name: profile name "x" is already used by p/a.toml"#.to_owned(),
                r#"p/b.toml: listen[0].address: udp 192.0.2.10:5060 is already used by profile "x" (listen[0])"#.to_owned(),
            ]
        );
    }

    #[test]
    fn same_address_twice_in_one_profile_conflicts() {
        let err = parse_one(
            r#"kind = "phones"
            [[listen]]
            address = "127.0.0.1:5060"
            [[listen]]
            address = "127.0.0.1:5060"
            transports = ["tcp"]
            "#,
        )
        .expect_err("invalid");
        assert_eq!(err.issues().len(), 1);
        assert_eq!(err.issues()[0].key, "listen[1].address");
    }

    #[test]
    fn profiles_dir_loads_sorted_toml_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("b.toml"),
            "kind = \"phones\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("a.toml"),
            "kind = \"trunk\"\ntrusted = [\"10.0.0.0/8\"]\n[[listen]]\naddress = \"127.0.0.1:0\"\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("a.toml~"), "garbage").expect("write");
        let ps = load_profiles_dir(dir.path()).expect("valid");
        let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);

        let empty = tempfile::tempdir().expect("tempdir");
        let err = load_profiles_dir(empty.path()).expect_err("no profiles");
        assert_eq!(err.issues()[0].problem, Problem::NoProfiles);

        let err = load_profiles_dir(&dir.path().join("missing")).expect_err("missing dir");
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
