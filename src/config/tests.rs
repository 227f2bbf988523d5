//! Tests of loading the daemon file, environment overrides and profiles together.

use super::*;
use std::path::PathBuf;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Writes `text` as `sentralbord.toml` in a fresh directory.
fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sentralbord.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

/// The single issue message of a validation error.
fn only_issue(err: ConfigError) -> String {
    match &err {
        ConfigError::Invalid(issues) if issues.len() == 1 => issues[0].to_string(),
        other => panic!("expected one issue, got {other}"),
    }
}

#[test]
fn no_file_gives_defaults_and_builtin_profiles() {
    let cfg = load_with_env(None, no_env()).expect("defaults are valid");
    assert_eq!(cfg.daemon, DaemonConfig::default());
    assert_eq!(cfg, Config::builtin().expect("built-in"));
    assert_eq!(cfg.daemon.sip.t1_ms, 500);
    assert_eq!(cfg.daemon.sip.max_message_size, 65535);
    assert_eq!(cfg.daemon.registrar.min_expires, 60);
    assert_eq!(cfg.daemon.store.db_path(), PathBuf::from("sentralbord.db"));
    let names: Vec<&str> = cfg.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["phones", "trunk"]);
}

#[test]
fn env_overrides_defaults_and_file() {
    let (_dir, path) = write_config("[sip]\nt1_ms = 400\nt2_ms = 8000\n");
    let cfg = load_with_env(
        Some(&path),
        env(&[
            ("SENTRALBORD_SIP__T1_MS", "300"),
            ("SENTRALBORD_STORE__PATH", "/x.db"),
            ("SENTRALBORD_SIP__USER_AGENT", "acme pbx 1"),
            ("SENTRALBORD_LOG__FORMAT", "json"),
            // Not overrides: no "__" section separator, or another prefix.
            ("SENTRALBORD_LOG_PII", "1"),
            ("SENTRALBORD_CONFIG", "/etc/sentralbord.toml"),
            ("OTHER_SIP__T1_MS", "0"),
        ]),
    )
    .expect("valid");
    assert_eq!(cfg.daemon.sip.t1_ms, 300, "env beats file");
    assert_eq!(cfg.daemon.sip.t2_ms, 8000, "file beats default");
    assert_eq!(cfg.daemon.store.path, PathBuf::from("/x.db"));
    assert_eq!(cfg.daemon.sip.user_agent, "acme pbx 1");
    assert_eq!(cfg.daemon.log.format, LogFormat::Json);
}

#[test]
fn env_override_is_validated_and_named() {
    let err = load_with_env(None, env(&[("SENTRALBORD_SIP__T1_MS", "0")])).expect_err("invalid");
    assert_eq!(
        only_issue(err),
        "sip.t1_ms: must be between 50 and 10000 (got 0)"
    );
}

#[test]
fn env_override_of_unknown_key_is_an_error() {
    let err = load_with_env(None, env(&[("SENTRALBORD_SIP__T1", "300")])).expect_err("unknown");
    let msg = err.to_string();
    assert!(msg.contains("t1"), "{msg}");
    assert!(matches!(err, ConfigError::Daemon(_)));
}

#[test]
fn env_override_of_wrong_type_names_the_key() {
    let err = load_with_env(None, env(&[("SENTRALBORD_SIP__T1_MS", "soon")])).expect_err("bad");
    let msg = err.to_string();
    assert!(msg.contains("sip.t1_ms"), "{msg}");
}

#[test]
fn unknown_keys_in_the_file_are_errors_naming_them() {
    for (text, needle) in [
        ("[sip]\nt1_msx = 300\n", "t1_msx"),
        ("[sipp]\nt1_ms = 300\n", "sipp"),
        ("top = 1\n", "top"),
        ("[registrar]\nmin_expire = 1\n", "min_expire"),
    ] {
        let (_dir, path) = write_config(text);
        let err = load_with_env(Some(&path), no_env()).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
}

#[test]
fn wrong_type_and_bad_enum_in_file_name_the_key() {
    let (_dir, path) = write_config("[sip]\nt1_ms = \"fast\"\n");
    let msg = load_with_env(Some(&path), no_env())
        .expect_err("bad")
        .to_string();
    assert!(msg.contains("sip.t1_ms"), "{msg}");

    let (_dir, path) = write_config("[log]\nformat = \"xml\"\n");
    let msg = load_with_env(Some(&path), no_env())
        .expect_err("bad")
        .to_string();
    assert!(msg.contains("xml") && msg.contains("log.format"), "{msg}");
}

#[test]
fn toml_syntax_error_is_reported() {
    let (_dir, path) = write_config("[sip\nt1_ms = 1\n");
    let err = load_with_env(Some(&path), no_env()).expect_err("bad toml");
    assert!(matches!(err, ConfigError::Daemon(_)));
}

#[test]
fn missing_file_is_a_read_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.toml");
    let err = load_with_env(Some(&path), no_env()).expect_err("missing");
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"));
}

#[test]
fn each_range_and_cross_field_rule_names_its_key() {
    let cases: &[(&str, &str)] = &[
        ("[sip]\nt1_ms = 0", "sip.t1_ms: must be between 50 and 10000 (got 0)"),
        ("[sip]\nt1_ms = 5000", "sip.t2_ms: must be at least sip.t1_ms"),
        ("[sip]\nt4_ms = 10", "sip.t4_ms: must be between 1000 and 60000 (got 10)"),
        ("[sip]\nmax_message_size = 100", "sip.max_message_size: must be between 1024 and 1048576 (got 100)"),
        ("[sip]\nuser_agent = \"a\\r\\nX-Evil: 1\"", "sip.user_agent: \"a\\r\\nX-Evil: 1\" has characters that are not allowed (no control characters)"),
        ("[registrar]\ndefault_expires = 7200", "registrar.default_expires: must not exceed registrar.max_expires"),
        ("[registrar]\ndefault_expires = 30", "registrar.default_expires: must be at least registrar.min_expires"),
        ("[registrar]\nnonce_lifetime_s = 1", "registrar.nonce_lifetime_s: must be between 10 and 86400 (got 1)"),
        ("[registrar]\nmax_contacts_per_aor = 0", "registrar.max_contacts_per_aor: must be between 1 and 1000 (got 0)"),
        ("[transport]\ntcp_idle_timeout_s = 0", "transport.tcp_idle_timeout_s: must be between 10 and 86400 (got 0)"),
        ("[transport]\ntcp_header_timeout_s = 0", "transport.tcp_header_timeout_s: must be between 1 and 300 (got 0)"),
        ("[transport]\nmax_tcp_connections = 0", "transport.max_tcp_connections: must be between 1 and 1000000 (got 0)"),
        ("[shutdown]\ndrain_timeout_s = 99999", "shutdown.drain_timeout_s: must be between 0 and 3600 (got 99999)"),
        ("[store]\npath = \"\"", "store.path: must not be empty"),
        ("[log]\nlevel = \"\"", "log.level: must not be empty"),
        ("[profiles]\ndir = \"\"", "profiles.dir: must not be empty"),
        ("[media]\nport_min = 80", "media.port_min: must be between 1024 and 65534 (got 80)"),
        ("[media]\nport_min = 20000\nport_max = 20002", "media.port_max: must be between 20003 and 65535 (got 20002)"),
        ("[media]\ntimeout_s = 100000", "media.timeout_s: must be between 0 and 86400 (got 100000)"),
    ];
    for (text, want) in cases {
        let (_dir, path) = write_config(text);
        let err = load_with_env(Some(&path), no_env()).expect_err(text);
        assert_eq!(&only_issue(err), want, "for {text:?}");
    }
}

#[test]
fn min_expires_above_max_expires() {
    let (_dir, path) =
        write_config("[registrar]\nmin_expires = 600\nmax_expires = 300\ndefault_expires = 300");
    let err = load_with_env(Some(&path), no_env()).expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "registrar.min_expires: must not exceed registrar.max_expires\n\
         registrar.default_expires: must be at least registrar.min_expires"
    );
}

#[test]
fn bad_log_filter_is_rejected() {
    let (_dir, path) = write_config("[log]\nlevel = \"sentralbord=loud\"");
    let err = load_with_env(Some(&path), no_env()).expect_err("bad filter");
    assert!(
        only_issue(err).starts_with("log.level: \"sentralbord=loud\" is not a valid log filter")
    );
    let (_dir, path) = write_config("[log]\nlevel = \"info,sentralbord::sip=trace\"");
    load_with_env(Some(&path), no_env()).expect("directives are fine");
}

#[test]
fn all_problems_are_reported_at_once() {
    let (_dir, path) = write_config("[sip]\nt1_ms = 0\n[registrar]\nmax_contacts_per_aor = 0\n");
    let err = load_with_env(Some(&path), no_env()).expect_err("invalid");
    let keys: Vec<&str> = err.issues().iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, vec!["sip.t1_ms", "registrar.max_contacts_per_aor"]);
    assert_eq!(err.to_string().lines().count(), 2);
}

#[test]
fn profiles_dir_overrides_builtin_and_is_relative_to_the_config_file() {
    let (dir, path) = write_config("[profiles]\ndir = \"my-profiles\"\n");
    let pdir = dir.path().join("my-profiles");
    std::fs::create_dir(&pdir).expect("mkdir");
    std::fs::write(
        pdir.join("office.toml"),
        "kind = \"phones\"\nrealm = \"office.example\"\ndomains = [\"Office.Example\"]\n\
         [[listen]]\naddress = \"[::1]:0\"\ntransports = [\"tcp\"]\n",
    )
    .expect("write");
    let cfg = load_with_env(Some(&path), no_env()).expect("valid");
    assert_eq!(cfg.profiles.len(), 1);
    let p = &cfg.profiles[0];
    assert_eq!(p.name, "office");
    let phones = p.phones().expect("phones");
    assert_eq!(phones.realm, "office.example");
    assert_eq!(phones.domains, vec!["office.example"]);
    assert!(phones.serves_domain("OFFICE.example"));
    assert!(!phones.serves_domain("other.example"));
}

#[test]
fn configured_profiles_dir_that_is_missing_is_an_error() {
    let (_dir, path) = write_config("[profiles]\ndir = \"absent\"\n");
    let err = load_with_env(Some(&path), no_env()).expect_err("missing dir");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn profile_errors_name_the_file_and_key() {
    let (dir, path) = write_config("[profiles]\ndir = \"p\"\n");
    let pdir = dir.path().join("p");
    std::fs::create_dir(&pdir).expect("mkdir");
    std::fs::write(
        pdir.join("trunk.toml"),
        "kind = \"trunk\"\ntrusted = [\"192.0.2.1\", \"10.0.0.x\"]\n[[listen]]\naddress = \"127.0.0.1:0\"\n",
    )
    .expect("write");
    let err = load_with_env(Some(&path), no_env()).expect_err("invalid");
    let want = format!(
        "{}: trusted[1]: \"10.0.0.x\" is not an IP address or CIDR",
        pdir.join("trunk.toml").display()
    );
    assert_eq!(only_issue(err), want);
}

#[test]
fn store_path_resolves_against_data_dir() {
    let mut s = StoreSettings {
        data_dir: Some(PathBuf::from("/var/lib/sentralbord")),
        ..StoreSettings::default()
    };
    assert_eq!(
        s.db_path(),
        PathBuf::from("/var/lib/sentralbord/sentralbord.db")
    );
    s.path = PathBuf::from("/srv/x.db");
    assert_eq!(s.db_path(), PathBuf::from("/srv/x.db"));
}

/// The example file sets every key to its default, so it parses to the defaults and
/// documents every key the daemon knows (optional keys appear commented out).
#[test]
fn example_file_documents_every_key_with_its_default() {
    let text = include_str!("../../sentralbord.example.toml");
    let (_dir, path) = write_config(text);
    let cfg = load_with_env(Some(&path), no_env()).expect("example is valid");
    assert_eq!(cfg.daemon, DaemonConfig::default());

    let example: toml::Table = toml::from_str(text).expect("example is TOML");
    let defaults = toml::Table::try_from(DaemonConfig::default()).expect("defaults serialize");
    for (section, keys) in &defaults {
        let keys = keys.as_table().expect("sections are tables");
        let ex = example
            .get(section)
            .and_then(|s| s.as_table())
            .unwrap_or_else(|| panic!("example lacks [{section}]"));
        for key in keys.keys() {
            assert!(ex.contains_key(key), "example lacks {section}.{key}");
        }
    }
    for commented in [
        "# data_dir = ",
        "# dir = ",
        "# url_template = ",
        "# username = ",
        "# password = ",
        "# bearer_token = ",
    ] {
        assert!(text.contains(commented), "example lacks {commented:?}");
    }
}

#[test]
fn env_sets_optional_keys_and_profiles_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("t.toml"),
        "kind = \"trunk\"\ntrusted = [\"10.0.0.0/8\"]\n[[listen]]\naddress = \"0.0.0.0:0\"\n",
    )
    .expect("write");
    let pdir = dir.path().display().to_string();
    let cfg = load_with_env(
        None,
        env(&[
            ("SENTRALBORD_STORE__DATA_DIR", "/var/lib/sentralbord"),
            ("SENTRALBORD_PROFILES__DIR", &pdir),
        ]),
    )
    .expect("valid");
    assert_eq!(
        cfg.daemon.store.db_path(),
        PathBuf::from("/var/lib/sentralbord/sentralbord.db")
    );
    assert_eq!(cfg.profiles.len(), 1);
    assert_eq!(cfg.profiles[0].name, "t");

    let err = load_with_env(None, env(&[("SENTRALBORD_PROFILES__DIR", "")])).expect_err("empty");
    assert_eq!(only_issue(err), "profiles.dir: must not be empty");
}

#[test]
fn lookup_defaults_skip_http() {
    let cfg = load_with_env(None, no_env()).expect("defaults");
    let l = &cfg.daemon.lookup;
    assert_eq!(l.url_template, None);
    assert_eq!(l.budget_ms, 300);
    assert_eq!(l.cache_ttl_s, 7 * 86_400);
    assert_eq!(l.negative_cache_ttl_s, 86_400);
    assert_eq!(l.max_concurrent, 32);
    assert_eq!(l.name_pointer, "/name");
    assert_eq!(l.address_pointer, "/address");
}

#[test]
fn lookup_secrets_come_from_env_and_are_not_debug_printed() {
    let (_dir, path) = write_config(
        "[lookup]\nurl_template = \"https://dir.example/v1?key=s3cr3tkey&n={number}\"\nusername = \"sb\"\n",
    );
    let cfg = load_with_env(
        Some(&path),
        env(&[("SENTRALBORD_LOOKUP__PASSWORD", "hunter2")]),
    )
    .expect("valid");
    assert_eq!(cfg.daemon.lookup.password.as_deref(), Some("hunter2"));
    let shown = format!("{:?}", cfg.daemon);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("s3cr3tkey"), "{shown}");
    assert!(shown.contains("https://dir.example/v1"), "{shown}");

    let cfg = load_with_env(
        None,
        env(&[
            (
                "SENTRALBORD_LOOKUP__URL_TEMPLATE",
                "http://127.0.0.1:8080/{national}",
            ),
            ("SENTRALBORD_LOOKUP__BEARER_TOKEN", "abc.DEF-123_~+/="),
        ]),
    )
    .expect("valid");
    assert_eq!(
        cfg.daemon.lookup.bearer_token.as_deref(),
        Some("abc.DEF-123_~+/=")
    );
    assert!(!format!("{:?}", cfg.daemon.lookup).contains("abc.DEF"));
}

#[test]
fn lookup_rules_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("url_template = \"\"", "lookup.url_template: must not be empty"),
        ("url_template = \"ftp://x/{number}\"", "lookup.url_template: \"ftp://x/{number}\" is not an http:// or https:// URL with a host (credentials go in lookup.username)"),
        ("url_template = \"http:///{number}\"", "lookup.url_template: \"http:///{number}\" is not an http:// or https:// URL with a host (credentials go in lookup.username)"),
        ("url_template = \"https://u:p@x/{number}\"", "lookup.url_template: \"https://u:p@x/{number}\" is not an http:// or https:// URL with a host (credentials go in lookup.username)"),
        ("url_template = \"https://x/lookup\"", "lookup.url_template: \"https://x/lookup\" is not a URL containing {number} or {national}"),
        ("url_template = \"https://x/{nummer}\"", "lookup.url_template: \"https://x/{nummer}\" is not a URL whose placeholders are {number} or {national}"),
        ("url_template = \"https://x/{number\"", "lookup.url_template: \"https://x/{number\" is not a URL whose placeholders are {number} or {national}"),
        ("url_template = \"https://x/a b/{number}\"", "lookup.url_template: \"https://x/a b/{number}\" has characters that are not allowed (no spaces, no control characters)"),
        // The query (where API keys live) is left out of the message.
        ("url_template = \"https://x/q?key=secret\"", "lookup.url_template: \"https://x/q\" is not a URL containing {number} or {national}"),
        ("username = \"a\"\nbearer_token = \"t\"", "lookup.bearer_token: must not be set together with lookup.username"),
        ("password = \"p\"", "lookup.password: needs lookup.username to be set"),
        ("username = \"a:b\"", "lookup.username: \"a:b\" has characters that are not allowed (no colon, no control characters)"),
        ("username = \"\"", "lookup.username: must not be empty"),
        ("bearer_token = \"has space\"", "lookup.bearer_token: \"<redacted>\" has characters that are not allowed (letters, digits and - . _ ~ + / =)"),
        ("username = \"a\"\npassword = \"x\\ny\"", "lookup.password: \"<redacted>\" has characters that are not allowed (no control characters)"),
        ("name_pointer = \"name\"", "lookup.name_pointer: \"name\" is not a JSON pointer (RFC 6901): empty or starting with \"/\""),
        ("address_pointer = \"a/b\"", "lookup.address_pointer: \"a/b\" is not a JSON pointer (RFC 6901): empty or starting with \"/\""),
        ("budget_ms = 0", "lookup.budget_ms: must be between 1 and 5000 (got 0)"),
        ("budget_ms = 5001", "lookup.budget_ms: must be between 1 and 5000 (got 5001)"),
        ("request_timeout_ms = 0", "lookup.request_timeout_ms: must be between 1 and 60000 (got 0)"),
        ("cache_ttl_s = 31536001", "lookup.cache_ttl_s: must be between 0 and 31536000 (got 31536001)"),
        ("negative_cache_ttl_s = 31536001", "lookup.negative_cache_ttl_s: must be between 0 and 31536000 (got 31536001)"),
        ("max_concurrent = 0", "lookup.max_concurrent: must be between 1 and 10000 (got 0)"),
    ];
    for (body, want) in cases {
        let (_dir, path) = write_config(&format!("[lookup]\n{body}\n"));
        let err = load_with_env(Some(&path), no_env()).expect_err(body);
        assert_eq!(only_issue(err), *want, "{body}");
    }
    for ok in [
        "url_template = \"https://x/{number}\"",
        "url_template = \"HTTP://127.0.0.1:9/a?n={national}&e={number}\"",
        "url_template = \"http://[::1]:80/{number}\"\nusername = \"u\"\npassword = \"\"",
        "name_pointer = \"\"\naddress_pointer = \"\"",
        "cache_ttl_s = 0\nnegative_cache_ttl_s = 0",
    ] {
        let (_dir, path) = write_config(&format!("[lookup]\n{ok}\n"));
        load_with_env(Some(&path), no_env()).expect(ok);
    }
}
