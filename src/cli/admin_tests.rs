//! Tests of `directory ...` and `calls ...`: parsed with clap like the binary would, run
//! against a tempdir database, checked through the output and the store.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::calls::{format_duration_ms, format_timestamp_ms, media_summary};
use super::*;
use crate::store::csv::HeaderError;
use crate::store::model::{MediaLegKind, MediaStatsRecord};
use crate::store::{CallOutcome, CallRecord, CallUserRole, Direction, ForwardReason, TenantId};

#[derive(Debug, Parser)]
#[command(name = "sentralbord")]
struct TestCli {
    #[command(subcommand)]
    cmd: TestCmd,
}

#[derive(Debug, Subcommand)]
enum TestCmd {
    #[command(subcommand)]
    Directory(DirectoryCommand),
    #[command(subcommand)]
    Calls(CallsCommand),
}

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("sentralbord.db");
        Env { dir, db }
    }

    fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write file");
        p.to_str().expect("utf8 path").to_owned()
    }

    fn run(&self, args: &[&str]) -> (String, Result<(), CliError>) {
        let mut all = vec!["sentralbord"];
        all.extend_from_slice(args);
        let cmd = match TestCli::try_parse_from(all) {
            Ok(c) => c.cmd,
            Err(e) => panic!("parse {args:?}: {e}"),
        };
        let mut out = Vec::new();
        let r = match cmd {
            TestCmd::Directory(c) => run_directory_with(c, &self.db, &mut out),
            TestCmd::Calls(c) => run_calls_with(c, &self.db, &mut out),
        };
        (String::from_utf8(out).expect("utf8"), r)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (out, r) = self.run(args);
        if let Err(e) = r {
            panic!("{args:?}: {e}\n{out}");
        }
        out
    }

    fn err(&self, args: &[&str]) -> CliError {
        match self.run(args) {
            (_, Err(e)) => e,
            (out, Ok(())) => panic!("{args:?} succeeded: {out}"),
        }
    }

    /// Runs `f` with an open store, then closes it.
    fn with<T>(&self, f: impl FnOnce(&StoreHandle) -> T) -> T {
        let s = Store::open(&self.db).expect("open");
        let v = f(&s.handle());
        s.close().expect("close");
        v
    }
}

/// The cells of a table line (columns are separated by at least two spaces; cells hold
/// single spaces only).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn setup_tenant(e: &Env, name: &str) -> TenantId {
    e.with(|h| h.add_tenant(name).wait().expect("tenant"))
}

#[test]
fn clap_definitions_are_valid() {
    use clap::CommandFactory;
    TestCli::command().debug_assert();
}

#[test]
fn directory_import_list_add_remove() {
    let e = Env::new();
    setup_tenant(&e, "Acme");
    let csv = e.file(
        "contacts.csv",
        "\u{feff}number,first_name,last_name,company,department\r\n\
         +4790000001,Kari,Nordmann,\"Nordmann, Berg & Co\",Sales\r\n\
         \r\n\
         +4790000002,Ola,Berg,,\r\n\
         90000003,No,Plus,,\r\n"
            .as_bytes(),
    );
    let (out, r) = e.run(&["directory", "import", "--tenant", "acme", &csv]);
    assert!(matches!(r, Err(CliError::LinesRejected(1))), "{r:?}");
    assert!(
        out.starts_with("imported into tenant \"Acme\": 2 added, 0 updated, 1 rejected\n"),
        "{out}"
    );
    assert!(
        out.contains("line 5: invalid contact number: must be in E.164 form"),
        "{out}"
    );

    // Importing again updates instead of duplicating.
    let again = e.file(
        "again.csv",
        b"number;first_name;last_name\n+4790000002;Ola;Bergh\n",
    );
    let out = e.ok(&["directory", "import", "--tenant", "Acme", &again]);
    assert!(out.contains("0 added, 1 updated, 0 rejected"), "{out}");

    e.ok(&[
        "directory",
        "add",
        "--tenant",
        "Acme",
        "--number",
        "+4722000000",
        "--company",
        "Posten",
    ]);
    let out = e.ok(&[
        "directory",
        "add",
        "--tenant",
        "Acme",
        "--number",
        "+4790000009",
        "--first",
        "Per",
        "--last",
        "Aas",
        "--department",
        "IT",
    ]);
    assert_eq!(out, "contact +4790000009 added to tenant \"Acme\"\n");
    let list = e.ok(&["directory", "list", "--tenant", "Acme"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 5, "{list}");
    let table: Vec<Vec<&str>> = lines.iter().map(|l| cells(l)).collect();
    assert_eq!(
        table,
        [
            vec!["NUMBER", "FIRST NAME", "LAST NAME", "COMPANY", "DEPARTMENT"],
            vec!["+4790000009", "Per", "Aas", "-", "IT"],
            vec!["+4790000002", "Ola", "Bergh", "-", "-"],
            vec![
                "+4790000001",
                "Kari",
                "Nordmann",
                "Nordmann, Berg & Co",
                "Sales"
            ],
            vec!["+4722000000", "-", "-", "Posten", "-"],
        ],
        "{list}"
    );

    match e.err(&[
        "directory",
        "add",
        "--tenant",
        "Acme",
        "--number",
        "+4722000000",
        "--first",
        "X",
    ]) {
        CliError::Store(StoreError::Duplicate {
            field: Field::ContactNumber,
        }) => {}
        other => panic!("{other:?}"),
    }
    e.ok(&["directory", "remove", "--tenant", "Acme", "+4722000000"]);
    let err = e.err(&["directory", "remove", "--tenant", "Acme", "+4722000000"]);
    assert!(matches!(err, CliError::ContactNotFound { .. }), "{err:?}");
    assert!(err.to_string().starts_with("number:"), "{err}");

    // The daemon's lookup sees the CLI's contacts.
    let found = e.with(|h| {
        let t = h.find_tenant("Acme").wait().expect("find").expect("tenant");
        h.lookup_local_name(t.id, "+4790000001")
            .wait()
            .expect("lookup")
    });
    assert_eq!(found.map(|n| n.name).as_deref(), Some("Kari Nordmann"));
}

#[test]
fn directory_errors() {
    let e = Env::new();
    setup_tenant(&e, "Acme");
    assert_eq!(
        e.ok(&["directory", "list", "--tenant", "Acme"]),
        "tenant \"Acme\" has no contacts\n"
    );
    let ok_csv = e.file("ok.csv", b"number,company\n+4790000001,X\n");
    assert!(matches!(
        e.err(&["directory", "import", "--tenant", "Nope", &ok_csv]),
        CliError::TenantNotFound(_)
    ));
    let missing = e.dir.path().join("missing.csv");
    assert!(matches!(
        e.err(&[
            "directory",
            "import",
            "--tenant",
            "Acme",
            missing.to_str().expect("path")
        ]),
        CliError::ReadFile { .. }
    ));
    // Windows-1252 "Ø" is not UTF-8.
    let latin1 = e.file("latin1.csv", b"number,first_name\n+4790000001,\xd8ystein\n");
    let err = e.err(&["directory", "import", "--tenant", "Acme", &latin1]);
    assert!(matches!(err, CliError::NotUtf8 { .. }), "{err:?}");
    assert!(err.to_string().contains("CSV UTF-8"), "{err}");
    let bad_header = e.file("bad.csv", b"telefon,navn\n+4790000001,X\n");
    assert!(matches!(
        e.err(&["directory", "import", "--tenant", "Acme", &bad_header]),
        CliError::Store(StoreError::CsvHeader(HeaderError::UnknownColumn(_)))
    ));
    let err = e.err(&[
        "directory",
        "add",
        "--tenant",
        "Acme",
        "--number",
        "+4790000001",
    ]);
    assert!(
        matches!(
            err,
            CliError::Store(StoreError::Invalid {
                field: Field::FirstName,
                ..
            })
        ),
        "no name at all: {err:?}"
    );
}

fn stats(
    leg: MediaLegKind,
    codec: Option<&str>,
    received: u64,
    lost: u64,
    jitter_ms: f64,
) -> MediaStatsRecord {
    MediaStatsRecord {
        leg,
        codec: codec.map(str::to_owned),
        packets_received: received,
        packets_sent: received,
        packets_lost: lost,
        jitter_ms,
        bytes_received: received * 160,
    }
}

fn record(tenant: TenantId, started_ms: i64) -> CallRecord {
    CallRecord {
        tenant: Some(tenant),
        direction: Direction::Inbound,
        caller_number: "+4790000001".into(),
        caller_name: Some("Kari Nordmann".into()),
        callee_number: "+4721000010".into(),
        callee_name: None,
        started_at_ms: started_ms,
        answered_at_ms: None,
        ended_at_ms: started_ms + 20_000,
        outcome: CallOutcome::Missed,
        answered_by: None,
        forward_reason: None,
        end_reason: None,
        sip_call_ids: vec!["x@carrier".into()],
        users: vec![],
        legs: vec![],
        media: vec![],
        queue_visits: vec![],
    }
}

#[test]
fn calls_list_table_and_filters() {
    let e = Env::new();
    assert_eq!(e.ok(&["calls", "list"]), "no calls\n");
    let (acme, beta, u10, u11) = e.with(|h| {
        let acme = h.add_tenant("Acme").wait().expect("tenant");
        let beta = h.add_tenant("Beta").wait().expect("tenant");
        let mut ids = Vec::new();
        for ext in ["10", "11"] {
            ids.push(
                h.add_user(crate::store::NewUser {
                    tenant: acme,
                    name: format!("User {ext}"),
                    extension: ext.into(),
                    mobile: None,
                    sip_username: format!("u{ext}"),
                    realm: "sip.example.no".into(),
                    password: Password::new("long-enough"),
                })
                .wait()
                .expect("user"),
            );
        }
        (acme, beta, ids[0], ids[1])
    });
    // 2024-05-01T08:30:00Z, answered after 5 s, 65 s of talk, forwarded 10 -> 11.
    let t0 = 1_714_552_200_000;
    let mut answered = record(acme, t0);
    answered.answered_at_ms = Some(t0 + 5_000);
    answered.ended_at_ms = t0 + 70_000;
    answered.outcome = CallOutcome::Answered;
    answered.answered_by = Some(u11);
    answered.forward_reason = Some(ForwardReason::NoAnswer);
    answered.users = vec![(u10, CallUserRole::Callee), (u10, CallUserRole::Forwarded)];
    // Loss 4 of 1000 on the caller side, the worse jitter on the callee side.
    answered.media = vec![
        stats(MediaLegKind::Caller, Some("PCMU"), 996, 4, 3.2),
        stats(MediaLegKind::Callee, Some("PCMU"), 3_250, 0, 11.6),
    ];
    let mut outbound = record(beta, t0 + 60_000);
    outbound.direction = Direction::Outbound;
    outbound.caller_name = None;
    outbound.caller_number = "+4721000099".into();
    let mut missed = record(acme, t0 - 3_600_000);
    missed.users = vec![(u11, CallUserRole::Callee)];
    e.with(|h| {
        for c in [answered, outbound, missed] {
            h.write_call(c).wait().expect("write");
        }
    });

    let all = e.ok(&["calls", "list"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 4, "{all}");
    let table: Vec<Vec<&str>> = lines.iter().map(|l| cells(l)).collect();
    assert_eq!(
        table,
        [
            vec![
                "START",
                "TENANT",
                "DIRECTION",
                "CALLER",
                "CALLEE",
                "OUTCOME",
                "TALK",
                "ANSWERED BY",
                "FORWARD",
                "MEDIA"
            ],
            vec![
                "2024-05-01T08:31:00Z",
                "Beta",
                "outbound",
                "+4721000099",
                "+4721000010",
                "missed",
                "-",
                "-",
                "-",
                "-"
            ],
            vec![
                "2024-05-01T08:30:00Z",
                "Acme",
                "inbound",
                "Kari Nordmann <+4790000001>",
                "+4721000010",
                "answered",
                "1:05",
                "User 11 (11)",
                "no-answer",
                "PCMU 0.4% 12ms"
            ],
            vec![
                "2024-05-01T07:30:00Z",
                "Acme",
                "inbound",
                "Kari Nordmann <+4790000001>",
                "+4721000010",
                "missed",
                "-",
                "-",
                "-",
                "-"
            ],
        ],
        "{all}"
    );

    let acme_only = e.ok(&["calls", "list", "--tenant", "acme"]);
    assert!(!acme_only.contains("TENANT"), "{acme_only}");
    let header = acme_only.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().last(),
        Some("MEDIA"),
        "MEDIA comes last: {acme_only}"
    );
    assert_eq!(acme_only.lines().count(), 3, "{acme_only}");
    let limited = e.ok(&["calls", "list", "--limit", "1"]);
    assert_eq!(limited.lines().count(), 2, "{limited}");
    let by_user = e.ok(&["calls", "list", "--user", "Acme:10"]);
    assert_eq!(by_user.lines().count(), 2, "{by_user}");
    assert!(by_user.contains("08:30:00Z"), "{by_user}");
    let by_user = e.ok(&["calls", "list", "--user", "Acme:11"]);
    assert_eq!(by_user.lines().count(), 3, "answered and missed: {by_user}");
    assert_eq!(
        e.ok(&["calls", "list", "--tenant", "Beta", "--user", "Acme:10"]),
        "no calls\n"
    );

    for bad in ["Acme", "Acme:", ":10"] {
        assert!(
            matches!(
                e.err(&["calls", "list", "--user", bad]),
                CliError::BadUserRef(_)
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        e.err(&["calls", "list", "--user", "Acme:99"]),
        CliError::UserNotFound { .. }
    ));
    assert!(matches!(
        e.err(&["calls", "list", "--tenant", "Gamma"]),
        CliError::TenantNotFound(_)
    ));
}

#[test]
fn media_summaries() {
    assert_eq!(media_summary(&[]), "-", "media not anchored");
    let caller = stats(MediaLegKind::Caller, Some("PCMA"), 1_000, 0, 0.4);
    let callee = stats(MediaLegKind::Callee, Some("PCMU"), 950, 50, 20.4);
    assert_eq!(
        media_summary(&[caller.clone(), callee.clone()]),
        "PCMA/PCMU 5.0% 20ms",
        "both codecs when transcoding, the worst loss and jitter"
    );
    assert_eq!(
        media_summary(&[callee, caller.clone()]),
        "PCMU/PCMA 5.0% 20ms"
    );
    let silent = stats(MediaLegKind::Callee, None, 0, 0, 0.0);
    assert_eq!(
        media_summary(&[caller, silent.clone()]),
        "PCMA 0.0% 0ms",
        "one codec when the other side has none"
    );
    assert_eq!(media_summary(&[silent]), "? 0.0% 0ms", "no codec at all");
    let lost_all = stats(MediaLegKind::Caller, Some("opus"), 0, 25, 99.6);
    assert_eq!(media_summary(&[lost_all]), "opus 100.0% 100ms");
}

#[test]
fn timestamps_and_durations() {
    assert_eq!(format_timestamp_ms(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        format_timestamp_ms(1_714_552_200_999),
        "2024-05-01T08:30:00Z"
    );
    assert_eq!(format_timestamp_ms(-1), "1969-12-31T23:59:59Z");
    assert_eq!(format_timestamp_ms(951_868_799_000), "2000-02-29T23:59:59Z");
    assert_eq!(format_duration_ms(0), "0:00");
    assert_eq!(format_duration_ms(65_999), "1:05");
    assert_eq!(format_duration_ms(3_600_000), "1:00:00");
    assert_eq!(format_duration_ms(36_061_000), "10:01:01");
    assert_eq!(format_duration_ms(-5), "0:00");
}
