//! Configuration errors: every problem names the key (and file) it is about.

use std::fmt;
use std::path::PathBuf;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory named by the operator could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The daemon file or the environment did not parse or has a value of the wrong type
    /// or an unknown key (the message names the key and where it came from).
    #[error("{0}")]
    Daemon(#[source] config::ConfigError),
    /// A profile file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("{file}: {source}")]
    ProfileSyntax {
        /// The profile file (or `built-in sip-profiles/<name>.toml`).
        file: String,
        /// The parser's error, with line and column.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The configuration parsed but breaks one or more rules; every problem is listed.
    #[error("{}", Issues(.0))]
    Invalid(Vec<Issue>),
}

impl ConfigError {
    /// The validation problems, if this is an [`ConfigError::Invalid`] error.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid(issues) => issues,
            _ => &[],
        }
    }
}

/// Formats a list of issues one per line.
struct Issues<'a>(&'a [Issue]);

impl fmt::Display for Issues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// One validation problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The profile file the key is in; `None` for the daemon file and environment.
    pub file: Option<String>,
    /// The key, dotted for the daemon file (`sip.t1_ms`), as in the file for profiles
    /// (`trusted[1]`, `listen[0].address`).
    pub key: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.key, self.problem)
        }
    }
}

/// What is wrong with a configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A number outside its allowed range.
    OutOfRange {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
        /// The value given.
        got: u64,
    },
    /// A value larger than another key it must not exceed.
    MustNotExceed {
        /// The other key.
        other: String,
    },
    /// A value smaller than another key it must be at least.
    MustBeAtLeast {
        /// The other key.
        other: String,
    },
    /// A required string is empty.
    Empty,
    /// A required list is empty.
    EmptyList,
    /// A string longer than allowed.
    TooLong {
        /// The largest allowed length in bytes.
        max: usize,
    },
    /// A string with characters that are not allowed where it is used.
    BadCharacters {
        /// The value given.
        value: String,
        /// Which characters are allowed.
        allowed: &'static str,
    },
    /// A log filter that does not parse.
    BadLogFilter {
        /// The value given.
        value: String,
        /// The filter parser's explanation.
        reason: String,
    },
    /// Not an `ip:port` socket address.
    NotSocketAddr {
        /// The value given.
        value: String,
    },
    /// Not an IP address or CIDR network.
    NotIpOrCidr {
        /// The value given.
        value: String,
    },
    /// Not a `host` or `host:port`.
    NotHostPort {
        /// The value given.
        value: String,
    },
    /// Not a string of decimal digits of the allowed length.
    NotDigits {
        /// The value given.
        value: String,
        /// Fewest digits allowed.
        min_len: usize,
        /// Most digits allowed.
        max_len: usize,
    },
    /// A transport name that is not known at all.
    UnknownTransport {
        /// The value given.
        value: String,
    },
    /// A known transport that this version cannot listen on.
    TransportNotSupported {
        /// The value given.
        value: String,
    },
    /// The same transport listed twice for one address.
    DuplicateTransport {
        /// The transport.
        value: String,
    },
    /// A digest algorithm other than `SHA-256` or `MD5`.
    UnknownAlgorithm {
        /// The value given.
        value: String,
    },
    /// A profile kind other than `phones` or `trunk`.
    UnknownKind {
        /// The value given.
        value: String,
    },
    /// A key that belongs to the other profile kind.
    WrongKind {
        /// The kind this key belongs to.
        belongs_to: &'static str,
    },
    /// Two profiles with the same name.
    DuplicateName {
        /// The name.
        name: String,
        /// The file of the first profile with that name.
        first: String,
    },
    /// Two listeners on the same address and transport.
    ListenConflict {
        /// The address.
        addr: std::net::SocketAddr,
        /// The transport.
        transport: &'static str,
        /// Where the other listener is (`profile "x"`).
        other: String,
    },
    /// A profiles directory with no `*.toml` file in it.
    NoProfiles,
    /// A value that does not have the required form.
    Malformed {
        /// The value given (secrets such as a URL's query string left out).
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A key that must not be set together with another key.
    ConflictsWith {
        /// The other key.
        other: String,
    },
    /// A key that is only meaningful when another key is set.
    Requires {
        /// The other key.
        other: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::OutOfRange { min, max, got } => {
                write!(f, "must be between {min} and {max} (got {got})")
            }
            Problem::MustNotExceed { other } => write!(f, "must not exceed {other}"),
            Problem::MustBeAtLeast { other } => write!(f, "must be at least {other}"),
            Problem::Empty => f.write_str("must not be empty"),
            Problem::EmptyList => f.write_str("must list at least one entry"),
            Problem::TooLong { max } => write!(f, "must be at most {max} bytes long"),
            Problem::BadCharacters { value, allowed } => {
                write!(f, "{value:?} has characters that are not allowed ({allowed})")
            }
            Problem::BadLogFilter { value, reason } => {
                write!(f, "{value:?} is not a valid log filter: {reason}")
            }
            Problem::NotSocketAddr { value } => write!(
                f,
                "{value:?} is not an IP address and port (e.g. \"127.0.0.1:5060\" or \"[::1]:5060\")"
            ),
            Problem::NotIpOrCidr { value } => {
                write!(f, "{value:?} is not an IP address or CIDR")
            }
            Problem::NotHostPort { value } => {
                write!(f, "{value:?} is not a host or host:port")
            }
            Problem::NotDigits {
                value,
                min_len,
                max_len,
            } => write!(
                f,
                "{value:?} must be {min_len} to {max_len} decimal digits"
            ),
            Problem::UnknownTransport { value } => write!(
                f,
                "{value:?} is not a transport (known: udp, tcp, tls, ws, wss)"
            ),
            Problem::TransportNotSupported { value } => {
                write!(f, "{value:?} is not supported yet (use udp or tcp)")
            }
            Problem::DuplicateTransport { value } => write!(f, "{value:?} is listed twice"),
            Problem::UnknownAlgorithm { value } => {
                write!(f, "{value:?} is not a digest algorithm (SHA-256 or MD5)")
            }
            Problem::UnknownKind { value } => {
                write!(f, "{value:?} is not a profile kind (phones or trunk)")
            }
            Problem::WrongKind { belongs_to } => {
                write!(f, "only allowed in {belongs_to} profiles")
            }
            Problem::DuplicateName { name, first } => {
                write!(f, "profile name {name:?} is already used by {first}")
            }
            Problem::ListenConflict {
                addr,
                transport,
                other,
            } => write!(f, "{transport} {addr} is already used by {other}"),
            Problem::NoProfiles => f.write_str("no *.toml profile files found"),
            Problem::Malformed { value, expected } => write!(f, "{value:?} is not {expected}"),
            Problem::ConflictsWith { other } => write!(f, "must not be set together with {other}"),
            Problem::Requires { other } => write!(f, "needs {other} to be set"),
        }
    }
}

/// Collects issues during validation, so `check-config` reports every problem at once.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    file: Option<String>,
    pub(crate) list: Vec<Issue>,
}

impl Collector {
    /// A collector for the daemon file.
    pub(crate) fn daemon() -> Self {
        Self::default()
    }

    /// A collector for one profile file.
    pub(crate) fn for_file(file: &str) -> Self {
        Self {
            file: Some(file.to_owned()),
            list: Vec::new(),
        }
    }

    /// Records a problem with `key`.
    pub(crate) fn push(&mut self, key: impl Into<String>, problem: Problem) {
        self.list.push(Issue {
            file: self.file.clone(),
            key: key.into(),
            problem,
        });
    }

    /// Checks that `got` is within `min..=max`.
    pub(crate) fn range(&mut self, key: &str, got: u64, min: u64, max: u64) {
        if got < min || got > max {
            self.push(key, Problem::OutOfRange { min, max, got });
        }
    }
}
