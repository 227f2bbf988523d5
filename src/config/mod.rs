//! Typed, validated configuration: the daemon file plus the SIP profiles.
//!
//! Inputs:
//! - `sentralbord.toml` (optional; see `sentralbord.example.toml` for every key and its
//!   default). Read with the `config` crate; unknown keys are errors so typos are caught.
//! - Environment variables `SENTRALBORD_<SECTION>__<KEY>` override the file, e.g.
//!   `SENTRALBORD_SIP__T1_MS=300`, `SENTRALBORD_STORE__PATH=/x.db`. Only variables with a
//!   `__` after the prefix are read, so flags such as `SENTRALBORD_LOG_PII` or a
//!   `SENTRALBORD_CONFIG` used by the CLI do not count as unknown keys.
//! - SIP profiles: every `*.toml` in `profiles.dir` (relative to the config file's
//!   directory), or the built-in copies of `sip-profiles/phones.toml` and
//!   `sip-profiles/trunk.toml` when `profiles.dir` is not set. A configured directory that
//!   is missing is an error, never a silent fall-back to the built-ins.
//!
//! Output: [`Config`], or a [`ConfigError`] whose message names the file and key, e.g.
//! `sip.t1_ms: must be between 50 and 10000 (got 0)`. Validation collects every problem
//! so `check-config` can print them all at once.

mod daemon;
mod error;
mod net;
mod profile;

use std::collections::BTreeMap;
use std::path::Path;

pub use daemon::{
    DaemonConfig, LogFormat, LogSettings, LookupSettings, MediaSettings, ProfilesSettings,
    RegistrarSettings, ShutdownSettings, SipSettings, StoreSettings, TransportSettings,
};
pub use error::{ConfigError, Issue, Problem};
pub use net::{HostPort, IpNetwork, ParseHostPortError, ParseNetworkError};
pub use profile::{
    builtin_profiles, load_profiles_dir, ListenSpec, Numbering, PhonesSettings, Profile,
    ProfileKind, TransportKind, TrunkSettings, DEFAULT_REALM,
};

use error::Collector;

/// Prefix of the environment variables that override the daemon file.
pub const ENV_PREFIX: &str = "SENTRALBORD_";

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Daemon settings.
    pub daemon: DaemonConfig,
    /// SIP profiles; never empty, names unique, no two on one address and transport.
    pub profiles: Vec<Profile>,
}

impl Config {
    /// The defaults with the built-in profiles: what `sentralbord run` uses with no set-up.
    pub fn builtin() -> Result<Config, ConfigError> {
        Ok(Config {
            daemon: DaemonConfig::default(),
            profiles: builtin_profiles()?,
        })
    }
}

/// Loads the daemon file at `path` (defaults only if `None`), applies the process
/// environment's `SENTRALBORD_*__*` overrides, loads the profiles and validates all of it.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    load_with_env(
        path,
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    )
}

/// Like [`load`], with the environment given explicitly (tests pass their own).
pub fn load_with_env(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut daemon = load_daemon(path, env)?;
    let base = path.and_then(Path::parent);
    // Like the profiles directory, the sounds directory is relative to the config file.
    if let (Some(dir), Some(base)) = (daemon.media.sounds_dir.as_mut(), base) {
        if dir.is_relative() {
            *dir = base.join(&*dir);
        }
    }
    let profiles = match daemon.profiles.resolved_dir(base) {
        Some(dir) => load_profiles_dir(&dir)?,
        None => builtin_profiles()?,
    };
    Ok(Config { daemon, profiles })
}

/// Loads and validates only the daemon settings (file, then environment overrides).
pub fn load_daemon(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<DaemonConfig, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = path {
        // Checked here so a missing file is an I/O error naming the path, not a parse error.
        std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        builder = builder.add_source(
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    let overrides: BTreeMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| {
            k.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
            .prefix_separator("_")
            .separator("__")
            .source(Some(overrides.into_iter().collect())),
    );
    let daemon: DaemonConfig = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(ConfigError::Daemon)?;

    let mut c = Collector::daemon();
    daemon.validate(&mut c);
    if !c.list.is_empty() {
        return Err(ConfigError::Invalid(c.list));
    }
    Ok(daemon)
}

#[cfg(test)]
mod tests;
