//! Tests: parse with clap like the binary would, run against a tempdir database and
//! check the result through the store.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use super::*;
use crate::store::credentials::{ha1_md5, ha1_sha256};
use crate::store::Field;

/// How the binary is expected to embed the commands.
#[derive(Debug, Parser)]
#[command(name = "sentralbord")]
struct TestCli {
    #[command(subcommand)]
    cmd: TestCmd,
}

#[derive(Debug, Subcommand)]
enum TestCmd {
    #[command(subcommand)]
    Tenant(TenantCommand),
    #[command(subcommand)]
    User(UserCommand),
}

fn parse(args: &[&str]) -> TestCmd {
    let mut all = vec!["sentralbord"];
    all.extend_from_slice(args);
    match TestCli::try_parse_from(all) {
        Ok(c) => c.cmd,
        Err(e) => panic!("parse {args:?}: {e}"),
    }
}

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("var").join("sentralbord.db");
    Env { _dir: dir, db }
}

/// Runs a command line; returns stdout, stderr (prompt) or the error.
fn run(
    db: &Path,
    args: &[&str],
    stdin: &str,
    env_password: Option<&str>,
) -> Result<(String, String), CliError> {
    let mut out = Vec::new();
    let mut prompt = Vec::new();
    match parse(args) {
        TestCmd::Tenant(cmd) => run_tenant_with(cmd, db, &mut out)?,
        TestCmd::User(cmd) => {
            let mut input = Cursor::new(stdin.as_bytes().to_vec());
            let mut io = CliIo {
                input: &mut input,
                out: &mut out,
                prompt: &mut prompt,
                env_password: env_password.map(|p| Ok(p.to_owned())),
            };
            run_user_with(cmd, db, "sip.default.no", &mut io)?
        }
    }
    Ok((
        String::from_utf8(out).expect("utf8 out"),
        String::from_utf8(prompt).expect("utf8 prompt"),
    ))
}

fn ok(db: &Path, args: &[&str]) -> String {
    match run(db, args, "", None) {
        Ok((out, _)) => out,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn store(db: &Path) -> Store {
    Store::open(db).expect("open store")
}

#[test]
fn clap_definitions_are_valid() {
    use clap::CommandFactory;
    TestCli::command().debug_assert();
}

#[test]
fn tenant_lifecycle() {
    let e = env();
    let out = ok(&e.db, &["tenant", "add", "Bedrift AS"]);
    assert!(out.contains("\"Bedrift AS\" added"), "{out}");
    ok(
        &e.db,
        &["tenant", "number", "add", "Bedrift AS", "+4721000000"],
    );
    ok(
        &e.db,
        &[
            "tenant",
            "number",
            "add",
            "bedrift as",
            "+4721000001",
            "--kind",
            "user",
        ],
    );

    let s = store(&e.db);
    let h = s.handle();
    let t = h
        .find_tenant("Bedrift AS")
        .wait()
        .expect("find")
        .expect("exists");
    let numbers = h.list_tenant_numbers(t.id).wait().expect("numbers");
    let got: Vec<_> = numbers
        .iter()
        .map(|n| (n.number.as_str(), n.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("+4721000000", NumberKind::Main),
            ("+4721000001", NumberKind::User)
        ]
    );
    s.close().expect("close");

    let list = ok(&e.db, &["tenant", "list"]);
    let lines: Vec<_> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("ID  NAME"), "{list}");
    assert!(
        lines[1].contains("Bedrift AS") && lines[1].contains("  2  "),
        "{list}"
    );
    let numbers = ok(&e.db, &["tenant", "number", "list", "Bedrift AS"]);
    assert!(numbers.contains("+4721000001  user"), "{numbers}");

    // Refused while it has numbers; forced removal works.
    match run(&e.db, &["tenant", "remove", "Bedrift AS"], "", None) {
        Err(CliError::Store(StoreError::TenantInUse {
            users: 0,
            numbers: 2,
            queues: 0,
            rooms: 0,
        })) => {}
        other => panic!("expected TenantInUse, got {other:?}"),
    }
    ok(
        &e.db,
        &["tenant", "number", "remove", "Bedrift AS", "+4721000001"],
    );
    match run(
        &e.db,
        &["tenant", "number", "remove", "Bedrift AS", "+4721000001"],
        "",
        None,
    ) {
        Err(CliError::NumberNotFound { .. }) => {}
        other => panic!("expected NumberNotFound, got {other:?}"),
    }
    ok(&e.db, &["tenant", "remove", "Bedrift AS", "--force"]);
    assert_eq!(ok(&e.db, &["tenant", "list"]).trim(), "no tenants");
}

#[test]
fn tenant_errors_name_the_field() {
    let e = env();
    ok(&e.db, &["tenant", "add", "Acme"]);
    let err = run(&e.db, &["tenant", "add", "acme"], "", None).expect_err("dup");
    assert!(matches!(
        err,
        CliError::Store(StoreError::Duplicate {
            field: Field::TenantName
        })
    ));
    assert_eq!(err.to_string(), "tenant name already exists");
    let err = run(
        &e.db,
        &["tenant", "number", "add", "Acme", "21000000"],
        "",
        None,
    )
    .expect_err("bad number");
    assert!(err.to_string().starts_with("invalid number:"), "{err}");
    let err = run(&e.db, &["tenant", "number", "list", "Nobody"], "", None).expect_err("no tenant");
    assert!(matches!(err, CliError::TenantNotFound(ref n) if n == "Nobody"));
    assert!(TestCli::try_parse_from([
        "sentralbord",
        "tenant",
        "number",
        "add",
        "Acme",
        "+4721000000",
        "--kind",
        "bogus"
    ])
    .is_err());
}

#[test]
fn user_add_with_each_password_source() {
    let e = env();
    ok(&e.db, &["tenant", "add", "Acme"]);
    let base = |ext: &'static str, user: &'static str| {
        vec![
            "user",
            "add",
            "--tenant",
            "Acme",
            "--name",
            "Kari Nordmann",
            "--extension",
            ext,
            "--username",
            user,
        ]
    };

    // --password-stdin: first line only, line ending stripped, no prompt.
    let mut args = base("10", "kari");
    args.extend(["--password-stdin", "--mobile", "+4790000001"]);
    let (out, prompt) = run(
        &e.db,
        &args,
        "stdin secret 1\r\nignored\n",
        Some("env-secret-1"),
    )
    .expect("add from stdin");
    assert!(prompt.is_empty());
    assert!(!out.contains("secret"), "never print the password: {out}");

    // Environment variable.
    let (_, prompt) =
        run(&e.db, &base("11", "ola"), "", Some("env-secret-2")).expect("add from env");
    assert!(prompt.is_empty());

    // Prompt on stderr, then a line from stdin; explicit realm.
    let mut args = base("12", "per");
    args.extend(["--realm", "sip.other.no"]);
    let (_, prompt) = run(&e.db, &args, "prompted-secret\n", None).expect("add from prompt");
    assert_eq!(prompt, "Password for per: ");

    let s = store(&e.db);
    let h = s.handle();
    let check = |realm: &str, user: &str, pw: &str| {
        let c = h
            .lookup_sip_user(realm, user)
            .wait()
            .expect("lookup")
            .unwrap_or_else(|| panic!("{user} exists"));
        assert_eq!(c.ha1_md5, ha1_md5(user, realm, pw), "{user}");
        assert_eq!(c.ha1_sha256, ha1_sha256(user, realm, pw), "{user}");
    };
    check("sip.default.no", "kari", "stdin secret 1");
    check("sip.default.no", "ola", "env-secret-2");
    check("sip.other.no", "per", "prompted-secret");
    let users = h.list_users(None).wait().expect("users");
    assert_eq!(users.len(), 3);
    assert_eq!(users[0].mobile.as_deref(), Some("+4790000001"));
    assert_eq!(users[0].name, "Kari Nordmann");
    s.close().expect("close");

    let list = ok(&e.db, &["user", "list", "--tenant", "Acme"]);
    assert!(list.starts_with("TENANT  EXT  NAME"), "{list}");
    assert!(
        list.contains("kari") && list.contains("+4790000001"),
        "{list}"
    );
    assert!(!list.contains("secret"), "{list}");
}

#[test]
fn user_add_errors() {
    let e = env();
    ok(&e.db, &["tenant", "add", "Acme"]);
    let add = |ext: &str, user: &str, pw: &str| {
        let args = [
            "user",
            "add",
            "--tenant",
            "Acme",
            "--name",
            "N",
            "--extension",
            ext,
            "--username",
            user,
            "--password-stdin",
        ];
        run(&e.db, &args, pw, None)
    };
    add("10", "kari", "long-enough\n").expect("first");
    let err = add("10", "other", "long-enough\n").expect_err("dup ext");
    assert_eq!(err.to_string(), "extension already exists in this tenant");
    let err = add("11", "kari", "long-enough\n").expect_err("dup user");
    assert_eq!(err.to_string(), "sip username already exists in this realm");
    let err = add("1", "x1", "long-enough\n").expect_err("short ext");
    assert!(err.to_string().starts_with("invalid extension"), "{err}");
    let err = add("13", "bad user", "long-enough\n").expect_err("bad username");
    assert!(err.to_string().starts_with("invalid sip username"), "{err}");
    let err = add("14", "x14", "short\n").expect_err("short password");
    assert!(err.to_string().starts_with("invalid password"), "{err}");
    assert!(!err.to_string().contains("short\n"));
    let err = add("15", "x15", "").expect_err("no password");
    assert!(matches!(err, CliError::NoPassword));

    // No realm anywhere.
    let mut out = Vec::new();
    let mut prompt = Vec::new();
    let mut input = Cursor::new(b"long-enough\n".to_vec());
    let mut io = CliIo {
        input: &mut input,
        out: &mut out,
        prompt: &mut prompt,
        env_password: None,
    };
    let TestCmd::User(cmd) = parse(&[
        "user",
        "add",
        "--tenant",
        "Acme",
        "--name",
        "N",
        "--extension",
        "16",
        "--username",
        "x16",
        "--password-stdin",
    ]) else {
        panic!("user command");
    };
    assert!(matches!(
        run_user_with(cmd, &e.db, "", &mut io),
        Err(CliError::NoRealm)
    ));

    let s = store(&e.db);
    assert_eq!(s.handle().list_users(None).wait().expect("users").len(), 1);
    s.close().expect("close");
}

#[test]
fn user_passwd_and_remove() {
    let e = env();
    ok(&e.db, &["tenant", "add", "Acme"]);
    run(
        &e.db,
        &[
            "user",
            "add",
            "--tenant",
            "Acme",
            "--name",
            "N",
            "--extension",
            "10",
            "--username",
            "kari",
        ],
        "",
        Some("first-secret"),
    )
    .expect("add");
    run(
        &e.db,
        &[
            "user",
            "passwd",
            "--tenant",
            "Acme",
            "10",
            "--password-stdin",
        ],
        "second-secret\n",
        None,
    )
    .expect("passwd");
    let s = store(&e.db);
    let c = s
        .handle()
        .lookup_sip_user("sip.default.no", "kari")
        .wait()
        .expect("lookup")
        .expect("exists");
    assert_eq!(
        c.ha1_md5,
        ha1_md5("kari", "sip.default.no", "second-secret")
    );
    s.close().expect("close");

    let err = run(
        &e.db,
        &["user", "remove", "--tenant", "Acme", "11"],
        "",
        None,
    )
    .expect_err("no such user");
    assert!(matches!(err, CliError::UserNotFound { .. }));
    assert!(err.to_string().starts_with("extension:"), "{err}");
    ok(&e.db, &["user", "remove", "--tenant", "Acme", "10"]);
    assert_eq!(ok(&e.db, &["user", "list"]).trim(), "no users");
}

#[test]
fn dates_format_in_utc() {
    assert_eq!(format_date(0), "1970-01-01");
    assert_eq!(format_date(951_782_400), "2000-02-29");
    assert_eq!(format_date(1_735_689_599), "2024-12-31");
    assert_eq!(format_date(-86_400), "1969-12-31");
}

#[test]
fn provisioning_while_the_daemon_has_the_store_open() {
    let e = env();
    // The "daemon": a store kept open across the CLI runs, as in production.
    let daemon = store(&e.db);
    let h = daemon.handle();
    ok(&e.db, &["tenant", "add", "Acme"]);
    run(
        &e.db,
        &[
            "user",
            "add",
            "--tenant",
            "Acme",
            "--name",
            "N",
            "--extension",
            "10",
            "--username",
            "kari",
        ],
        "",
        Some("live-secret"),
    )
    .expect("add while daemon runs");
    // The daemon's readers see the CLI's committed write at once.
    let c = h
        .lookup_sip_user("sip.default.no", "kari")
        .wait()
        .expect("lookup")
        .expect("visible to the running daemon");
    assert_eq!(c.ha1_md5, ha1_md5("kari", "sip.default.no", "live-secret"));
    // And the daemon can keep writing.
    h.add_tenant("Beta").wait().expect("daemon write");
    daemon.close().expect("close");
    assert!(ok(&e.db, &["tenant", "list"]).contains("Beta"));
}

/// A tenant "Acme" with user 10 (mobile +4790000010).
fn env_with_user() -> Env {
    let e = env();
    ok(&e.db, &["tenant", "add", "Acme"]);
    run(
        &e.db,
        &[
            "user",
            "add",
            "--tenant",
            "Acme",
            "--name",
            "Kari Nordmann",
            "--extension",
            "10",
            "--username",
            "kari",
            "--mobile",
            "+4790000010",
        ],
        "",
        Some("show-me-never"),
    )
    .expect("add");
    e
}

fn stored_settings(db: &Path) -> crate::store::UserSettings {
    let s = store(db);
    let h = s.handle();
    let t = h.find_tenant("Acme").wait().expect("find").expect("tenant");
    let u = h.find_user(t.id, "10").wait().expect("find").expect("user");
    let settings = h.user_settings(u.id).wait().expect("settings");
    s.close().expect("close");
    settings
}

#[test]
fn user_forward_sets_keeps_and_clears() {
    use crate::store::{Presentation, UserSettings};
    let e = env_with_user();
    let out = ok(
        &e.db,
        &[
            "user",
            "forward",
            "--tenant",
            "Acme",
            "10",
            "--busy",
            "11",
            "--no-answer",
            "+4791234567",
            "--after",
            "30",
        ],
    );
    assert!(out.contains("forward busy:"), "{out}");
    assert!(out.contains("+4791234567"), "{out}");
    assert_eq!(
        stored_settings(&e.db),
        UserSettings {
            forward_always: None,
            forward_busy: Some("11".into()),
            forward_no_answer: Some("+4791234567".into()),
            no_answer_s: 30,
            present: Presentation::Own,
        }
    );

    // Only --always given: the others are kept.
    ok(
        &e.db,
        &[
            "user", "forward", "--tenant", "Acme", "10", "--always", "12",
        ],
    );
    let s = stored_settings(&e.db);
    assert_eq!(
        (s.forward_always.as_deref(), s.forward_busy.as_deref()),
        (Some("12"), Some("11"))
    );

    // --clear removes every target, then applies the given ones; the timer is kept.
    ok(
        &e.db,
        &[
            "user", "forward", "--tenant", "Acme", "10", "--clear", "--busy", "13",
        ],
    );
    let s = stored_settings(&e.db);
    assert_eq!(
        (
            s.forward_always.as_deref(),
            s.forward_busy.as_deref(),
            s.forward_no_answer.as_deref(),
            s.no_answer_s
        ),
        (None, Some("13"), None, 30)
    );
}

#[test]
fn user_forward_errors_name_the_field() {
    let e = env_with_user();
    for (args, msg) in [
        (
            vec!["--always", "10"],
            "invalid forward always: would forward to itself",
        ),
        (
            vec!["--busy", "+4790000010"],
            "invalid forward busy: would forward to itself",
        ),
        (vec!["--no-answer", "abc"], "invalid forward no-answer:"),
        (vec!["--after", "4"], "invalid no-answer seconds:"),
    ] {
        let mut all = vec!["user", "forward", "--tenant", "Acme", "10"];
        all.extend(args);
        let err = run(&e.db, &all, "", None).expect_err("refused");
        assert!(
            matches!(err, CliError::Store(StoreError::Invalid { .. })),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(msg), "{err}");
    }
    assert_eq!(
        stored_settings(&e.db),
        crate::store::UserSettings::default()
    );
    let err = run(
        &e.db,
        &["user", "forward", "--tenant", "Acme", "99", "--busy", "11"],
        "",
        None,
    )
    .expect_err("no user");
    assert!(matches!(err, CliError::UserNotFound { .. }), "{err:?}");
    assert!(TestCli::try_parse_from([
        "sentralbord",
        "user",
        "forward",
        "--tenant",
        "Acme",
        "10",
        "--after",
        "soon"
    ])
    .is_err());
}

#[test]
fn user_present_and_show() {
    use crate::store::Presentation;
    let e = env_with_user();
    let show = ok(&e.db, &["user", "show", "--tenant", "Acme", "10"]);
    for want in [
        "tenant:",
        "Acme",
        "Kari Nordmann",
        "+4790000010",
        "kari",
        "sip.default.no",
        "forward always:",
        "20 s",
        "presentation:      own",
    ] {
        assert!(show.contains(want), "{want:?} in {show}");
    }
    assert!(!show.contains("show-me-never"), "{show}");

    let out = ok(
        &e.db,
        &["user", "present", "--tenant", "Acme", "10", "hidden"],
    );
    assert!(out.contains("presents: hidden"), "{out}");
    ok(
        &e.db,
        &["user", "forward", "--tenant", "Acme", "10", "--busy", "11"],
    );
    let s = stored_settings(&e.db);
    assert_eq!(
        (s.present, s.forward_busy.as_deref()),
        (Presentation::Hidden, Some("11")),
        "forward keeps the presentation and present keeps the forwarding"
    );
    ok(
        &e.db,
        &["user", "present", "--tenant", "Acme", "10", "main"],
    );
    assert_eq!(stored_settings(&e.db).present, Presentation::Main);
    let show = ok(&e.db, &["user", "show", "--tenant", "Acme", "10"]);
    assert!(show.contains("presentation:      main"), "{show}");
    assert!(show.contains("forward busy:      11"), "{show}");

    assert!(TestCli::try_parse_from([
        "sentralbord",
        "user",
        "present",
        "--tenant",
        "Acme",
        "10",
        "nobody"
    ])
    .is_err());
    let err =
        run(&e.db, &["user", "show", "--tenant", "Nope", "10"], "", None).expect_err("no tenant");
    assert!(matches!(err, CliError::TenantNotFound(_)), "{err:?}");
}

#[test]
fn personal_numbers_are_assigned_listed_and_unassigned() {
    let e = env_with_user();
    let out = ok(
        &e.db,
        &[
            "tenant",
            "number",
            "add",
            "Acme",
            "+4721000010",
            "--kind",
            "user",
            "--user",
            "10",
        ],
    );
    assert!(out.contains("assigned to 10"), "{out}");
    ok(
        &e.db,
        &[
            "tenant",
            "number",
            "add",
            "Acme",
            "+4721000011",
            "--kind",
            "user",
        ],
    );
    ok(&e.db, &["tenant", "number", "add", "Acme", "+4721000000"]);
    let list = ok(&e.db, &["tenant", "number", "list", "Acme"]);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NUMBER", "KIND", "USER", "QUEUE", "CONFERENCE"],
        "{list}"
    );
    assert!(rows.contains(&vec!["+4721000010", "user", "10"]), "{list}");
    assert!(rows.contains(&vec!["+4721000011", "user"]), "{list}");

    let out = ok(
        &e.db,
        &["tenant", "number", "assign", "Acme", "+4721000011", "10"],
    );
    assert!(out.contains("+4721000011 assigned to 10"), "{out}");
    let out = ok(
        &e.db,
        &[
            "tenant",
            "number",
            "assign",
            "Acme",
            "+4721000010",
            "--none",
        ],
    );
    assert!(out.contains("unassigned"), "{out}");

    // A main number cannot be a user's; an unknown number or user is named.
    let err = run(
        &e.db,
        &["tenant", "number", "assign", "Acme", "+4721000000", "10"],
        "",
        None,
    )
    .expect_err("main number");
    assert!(err.to_string().contains("number kind"), "{err}");
    let err = run(
        &e.db,
        &["tenant", "number", "assign", "Acme", "+4721009999", "10"],
        "",
        None,
    )
    .expect_err("unknown number");
    assert!(matches!(err, CliError::NumberNotFound { .. }), "{err:?}");
    let err = run(
        &e.db,
        &["tenant", "number", "assign", "Acme", "+4721000011", "99"],
        "",
        None,
    )
    .expect_err("unknown user");
    assert!(err.to_string().contains("99"), "{err}");
    assert!(
        TestCli::try_parse_from([
            "sentralbord",
            "tenant",
            "number",
            "assign",
            "Acme",
            "+4721000011"
        ])
        .is_err(),
        "an extension or --none is required"
    );
}
