//! Tests of `queue ...` and `tenant set`: parsed with clap like the binary would, run
//! against a tempdir database at a fixed wall clock, checked through the output and the
//! store.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use super::*;
use crate::store::{
    AgentPresence, CallOutcome, CallRecord, CallUserRole, Direction, OfferRecord, OfferResult,
    OverflowCondition, OverflowTarget, QueueId, QueueLive, QueueVisitRecord, TenantId, UserId,
    VisitOutcome,
};

#[derive(Debug, Parser)]
#[command(name = "sentralbord")]
struct TestCli {
    #[command(subcommand)]
    cmd: TestCmd,
}

#[derive(Debug, Subcommand)]
enum TestCmd {
    #[command(subcommand)]
    Queue(QueueCommand),
    #[command(subcommand)]
    Tenant(TenantCommand),
}

/// 2024-06-03 10:00:00 UTC, a Monday (12:00 in Oslo).
const NOW_MS: i64 = 1_717_408_800_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(NOW_MS as u64)
}

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    /// A database with tenant Acme (users 10, 11, 12) and tenant Other (user 10).
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("sentralbord.db");
        let e = Env { _dir: dir, db };
        e.with(|h| {
            for (tenant, exts) in [("Acme", &["10", "11", "12"][..]), ("Other", &["10"][..])] {
                let t = h.add_tenant(tenant).wait().expect("tenant");
                for ext in exts {
                    h.add_user(NewUser {
                        tenant: t,
                        name: format!("Agent {ext}"),
                        extension: (*ext).into(),
                        mobile: None,
                        sip_username: format!("{tenant}{ext}"),
                        realm: "sip.example.no".into(),
                        password: Password::new("long-enough"),
                    })
                    .wait()
                    .expect("user");
                }
            }
        });
        e
    }

    fn run_at(&self, args: &[&str], at: SystemTime) -> (String, Result<(), CliError>) {
        let mut all = vec!["sentralbord"];
        all.extend_from_slice(args);
        let cmd = match TestCli::try_parse_from(all) {
            Ok(c) => c.cmd,
            Err(e) => panic!("parse {args:?}: {e}"),
        };
        let mut out = Vec::new();
        let r = match cmd {
            TestCmd::Queue(c) => run_queue_with(c, &self.db, at, &mut out),
            TestCmd::Tenant(c) => run_tenant_with(c, &self.db, &mut out),
        };
        (String::from_utf8(out).expect("utf8"), r)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (out, r) = self.run_at(args, now());
        if let Err(e) = r {
            panic!("{args:?}: {e}\n{out}");
        }
        out
    }

    fn err(&self, args: &[&str]) -> CliError {
        match self.run_at(args, now()) {
            (_, Err(e)) => e,
            (out, Ok(())) => panic!("{args:?} succeeded: {out}"),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&StoreHandle) -> T) -> T {
        let s = Store::open(&self.db).expect("open");
        let v = f(&s.handle());
        s.close().expect("close");
        v
    }

    fn tenant(&self, name: &str) -> Tenant {
        self.with(|h| h.find_tenant(name).wait().expect("find").expect("tenant"))
    }

    fn queue_id(&self, tenant: &str, name: &str) -> QueueId {
        let t = self.tenant(tenant);
        self.with(|h| {
            h.find_queue(t.id, name)
                .wait()
                .expect("find")
                .expect("queue")
                .id
        })
    }

    fn user_id(&self, tenant: &str, ext: &str) -> UserId {
        let t = self.tenant(tenant);
        self.with(|h| {
            h.find_user(t.id, ext)
                .wait()
                .expect("find")
                .expect("user")
                .id
        })
    }

    /// The queue configuration revision: unchanged means nothing was written.
    fn revision(&self) -> i64 {
        self.with(|h| h.queue_config_revision().wait().expect("revision"))
    }
}

fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// The table row whose first cell is `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(cells)
        .find(|c| c.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first:?} in\n{table}"))
}

#[test]
fn clap_definitions_are_valid() {
    use clap::CommandFactory;
    TestCli::command().debug_assert();
}

#[test]
fn queue_add_show_set_list_remove() {
    let e = Env::new();
    let out = e.ok(&[
        "queue",
        "add",
        "Acme",
        "Support",
        "--strategy",
        "round-robin",
        "--max-wait",
        "120",
        "--announce-every",
        "30",
        "--greeting",
        "queue/welcome",
        "--number",
        "+4721000000",
        "--number",
        "+4721000001",
    ]);
    assert!(
        out.starts_with("queue \"Support\" added to tenant \"Acme\" (id 1, round-robin)\n"),
        "{out}"
    );
    assert!(out.contains("number +4721000001 leads to it"), "{out}");
    e.ok(&["queue", "add", "acme", "Sales", "--kind", "group"]);
    e.ok(&["queue", "member", "add", "Acme", "Support", "10"]);
    e.ok(&[
        "queue",
        "member",
        "add",
        "Acme",
        "support",
        "11",
        "--position",
        "0",
        "--ring-timeout",
        "15",
    ]);

    let show = e.ok(&["queue", "show", "Acme", "SUPPORT"]);
    for line in [
        "queue:              Support",
        "strategy:           round-robin",
        "wrap-up:            10 s",
        "max wait:           120 s",
        "max callers:        -",
        "announce every:     30 s",
        "greeting:           queue/welcome",
        "numbers:            +4721000000, +4721000001",
        "hours:              always open",
        "overflow max-wait:  -",
    ] {
        assert!(show.contains(line), "{line:?} in\n{show}");
    }
    assert_eq!(
        row(&show, "0"),
        ["0", "11", "Agent 11", "15 s", "logged out"]
    );
    assert_eq!(row(&show, "1"), ["1", "10", "Agent 10", "-", "logged out"]);

    let list = e.ok(&["queue", "list"]);
    assert!(list.starts_with("TENANT  NAME"), "{list}");
    assert_eq!(
        row(&list, "Acme"),
        ["Acme", "Sales", "group", "ring-all", "0", "-"]
    );
    let list = e.ok(&["queue", "list", "Acme"]);
    assert_eq!(
        row(&list, "Support"),
        [
            "Support",
            "queue",
            "round-robin",
            "2",
            "+4721000000 +4721000001"
        ]
    );
    assert_eq!(e.ok(&["queue", "list", "Other"]).trim(), "no queues");

    let out = e.ok(&[
        "queue",
        "set",
        "Acme",
        "Support",
        "--rename",
        "Kundeservice",
        "--no-max-wait",
        "--wrap-up",
        "0",
        "--number",
        "+4721000002",
    ]);
    assert!(
        out.contains("queue \"Kundeservice\" of tenant \"Acme\" updated"),
        "{out}"
    );
    assert!(out.contains("max wait:       -"), "{out}");
    let q = e.with(|h| {
        h.find_queue(e.tenant("Acme").id, "kundeservice")
            .wait()
            .expect("find")
            .expect("renamed")
    });
    assert_eq!(
        (
            q.settings.max_wait_s,
            q.settings.wrap_up_s,
            q.settings.announce_every_s
        ),
        (None, 0, Some(30)),
        "options not given are kept"
    );
    let numbers = e.ok(&["tenant", "number", "list", "Acme"]);
    assert_eq!(
        row(&numbers, "+4721000002"),
        ["+4721000002", "queue", "Kundeservice"]
    );

    e.ok(&["queue", "remove", "Acme", "Sales"]);
    assert!(matches!(
        e.err(&["queue", "show", "Acme", "Sales"]),
        CliError::QueueNotFound { .. }
    ));
}

#[test]
fn bad_input_names_the_field_and_changes_nothing() {
    let e = Env::new();
    e.ok(&["queue", "add", "Acme", "Support"]);
    e.ok(&["queue", "hours", "Acme", "Support", "mon-fri 08:00-16:00"]);
    let before = e.revision();
    let cases: &[(&[&str], &str)] = &[
        (
            &["queue", "add", "Nobody", "Q"],
            "tenant: no tenant named \"Nobody\"",
        ),
        (
            &["queue", "add", "Acme", "support"],
            "queue name already exists in this tenant",
        ),
        (&["queue", "add", "Acme", " Q"], "invalid queue name:"),
        (
            &["queue", "add", "Acme", "Q", "--ring-timeout", "0"],
            "invalid ring timeout:",
        ),
        (
            &["queue", "add", "Acme", "Q", "--max-callers", "0"],
            "invalid max callers:",
        ),
        (
            &["queue", "add", "Acme", "Q", "--greeting", "Hello.wav"],
            "invalid greeting:",
        ),
        (
            &["queue", "add", "Acme", "Q", "--number", "21000000"],
            "invalid number:",
        ),
        (
            &["queue", "show", "Acme", "Sales"],
            "queue: tenant \"Acme\" has no queue named \"Sales\"",
        ),
        (
            &["queue", "member", "add", "Acme", "Support", "99"],
            "extension: tenant \"Acme\" has no user with extension 99",
        ),
        (
            &["queue", "member", "remove", "Acme", "Support", "10"],
            "extension: 10 is not a member of queue \"Support\"",
        ),
        (
            &["queue", "hours", "Acme", "Support", "mon-fri 25:00-16:00"],
            "hours: \"25:00\" is not a time from 00:00 to 24:00",
        ),
        (
            &["queue", "hours", "Acme", "Support", "mon 16:00-08:00"],
            "hours: in \"16:00-08:00\" the opening time is not before the closing time",
        ),
        (
            &["queue", "holiday", "add", "Acme", "Support", "2024-02-30"],
            "date: \"2024-02-30\" no such date in the calendar",
        ),
        (
            &["queue", "holiday", "add", "Acme", "Support", "24.12.2024"],
            "date: \"24.12.2024\" must be a date in the form YYYY-MM-DD",
        ),
        (
            &[
                "queue",
                "holiday",
                "add",
                "Acme",
                "Support",
                "2024-12-24",
                "--open",
                "12:00-09:00",
            ],
            "open: in \"12:00-09:00\" the opening time is not before the closing time",
        ),
        (
            &[
                "queue",
                "holiday",
                "remove",
                "Acme",
                "Support",
                "2024-12-24",
            ],
            "date: queue \"Support\" has no holiday on 2024-12-24",
        ),
        (
            &[
                "queue",
                "overflow",
                "Acme",
                "Support",
                "--on",
                "full",
                "--to-queue",
                "SUPPORT",
            ],
            "invalid overflow target: a queue cannot overflow to itself",
        ),
        (
            &[
                "queue",
                "overflow",
                "Acme",
                "Support",
                "--on",
                "full",
                "--to-number",
                "123",
            ],
            "invalid overflow target:",
        ),
        (
            &[
                "queue",
                "overflow",
                "Acme",
                "Support",
                "--on",
                "full",
                "--to-user",
                "77",
            ],
            "extension: tenant \"Acme\" has no user with extension 77",
        ),
        (
            &["queue", "number", "Acme", "Support", "+4729999999"],
            "number: tenant \"Acme\" does not have number +4729999999",
        ),
        (
            &["queue", "vip", "add", "Acme", "4790000001"],
            "invalid vip number:",
        ),
        (
            &["queue", "vip", "remove", "Acme", "+4790000001"],
            "number: tenant \"Acme\" has no VIP number +4790000001",
        ),
        (
            &["queue", "agent", "unpause", "Acme", "10"],
            "extension: agent 10 is not paused (logged out)",
        ),
        (
            &["queue", "agent", "pause", "Acme", "10", "--reason", " "],
            "invalid pause reason:",
        ),
        (
            &[
                "queue",
                "stats",
                "Acme",
                "--from",
                "2024-06-03",
                "--to",
                "2024-06-01",
            ],
            "to: \"2024-06-01\" is before --from",
        ),
        (
            &["queue", "stats", "Acme", "--from", "June"],
            "from: \"June\" must be a date",
        ),
        (
            &["queue", "log", "Acme", "--queue", "Nope"],
            "queue: tenant \"Acme\" has no queue named \"Nope\"",
        ),
        (
            &["tenant", "set", "Acme", "--time-zone", "Europe/Atlantis"],
            "invalid time zone: unknown time zone",
        ),
        (
            &["tenant", "set", "Acme", "--queue-retention-days", "0"],
            "invalid queue retention days:",
        ),
    ];
    for (args, message) in cases {
        let err = e.err(args).to_string();
        assert!(err.starts_with(message), "{args:?}: {err}");
    }
    assert_eq!(
        e.revision(),
        before,
        "no bad input changed the configuration"
    );
    let t = e.tenant("Acme");
    assert_eq!(
        (t.time_zone.as_str(), t.queue_retention_days),
        ("Europe/Oslo", 90)
    );
    assert_eq!(
        e.with(|h| h.list_queues(None).wait().expect("list").len()),
        1
    );

    // Values clap itself refuses (bad strategy, kind, condition, missing choice).
    for args in [
        &["queue", "add", "Acme", "Q", "--strategy", "top-down"][..],
        &["queue", "add", "Acme", "Q", "--kind", "hunt"],
        &[
            "queue", "overflow", "Acme", "Support", "--on", "late", "--none",
        ],
        &["queue", "overflow", "Acme", "Support", "--on", "full"],
        &[
            "queue",
            "overflow",
            "Acme",
            "Support",
            "--on",
            "full",
            "--none",
            "--to-number",
            "+4790000000",
        ],
        &["queue", "hours", "Acme", "Support"],
        &["queue", "agent", "pause", "Acme", "10"],
        &[
            "queue",
            "set",
            "Acme",
            "Support",
            "--max-wait",
            "5",
            "--no-max-wait",
        ],
        &["tenant", "set", "Acme"],
    ] {
        let mut all = vec!["sentralbord"];
        all.extend_from_slice(args);
        let err = TestCli::try_parse_from(all).expect_err("clap refuses");
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn overflow_rules_and_removing_a_target() {
    let e = Env::new();
    e.ok(&["queue", "add", "Acme", "A"]);
    e.ok(&["queue", "add", "Acme", "B"]);
    let out = e.ok(&[
        "queue",
        "overflow",
        "Acme",
        "A",
        "--on",
        "max-wait",
        "--to-queue",
        "b",
    ]);
    assert_eq!(out, "queue \"A\": on max-wait, overflow to queue \"B\"\n");
    e.ok(&[
        "queue",
        "overflow",
        "Acme",
        "A",
        "--on",
        "no-agents",
        "--to-user",
        "11",
    ]);
    e.ok(&[
        "queue",
        "overflow",
        "Acme",
        "A",
        "--on",
        "full",
        "--to-number",
        "+4790000000",
    ]);
    let out = e.ok(&[
        "queue",
        "overflow",
        "Acme",
        "A",
        "--on",
        "closed",
        "--announcement",
    ]);
    assert!(
        out.ends_with("overflow to the default announcement\n"),
        "{out}"
    );
    let show = e.ok(&["queue", "show", "Acme", "A"]);
    for line in [
        "overflow max-wait:  queue B",
        "overflow full:      number +4790000000",
        "overflow no-agents: user 11 (Agent 11)",
        "overflow closed:    announcement (default)",
    ] {
        assert!(show.contains(line), "{line:?} in\n{show}");
    }
    assert!(e
        .ok(&["queue", "show", "Acme", "B"])
        .contains("overflow from:      A (max-wait)"));
    let out = e.ok(&[
        "queue",
        "overflow",
        "Acme",
        "A",
        "--on",
        "closed",
        "--announcement",
        "queue/all-busy",
    ]);
    assert!(
        out.ends_with("overflow to announcement queue/all-busy\n"),
        "{out}"
    );

    // B is A's target: refused, naming A; with --force A's rule goes too.
    let err = e.err(&["queue", "remove", "Acme", "B"]);
    assert_eq!(
        err.to_string(),
        "queue is the overflow target of queue \"A\" (max-wait); change those rules first or force"
    );
    e.ok(&["queue", "remove", "Acme", "B", "--force"]);
    let a = e.queue_id("Acme", "A");
    let rules = e.with(|h| h.queue_details(a).wait().expect("details").overflow);
    let conditions: Vec<OverflowCondition> = rules.iter().map(|r| r.rule.condition).collect();
    assert_eq!(
        conditions,
        [
            OverflowCondition::Full,
            OverflowCondition::NoAgents,
            OverflowCondition::Closed
        ]
    );
    let out = e.ok(&["queue", "overflow", "Acme", "A", "--on", "full", "--none"]);
    assert_eq!(out, "queue \"A\": no overflow on full\n");
    let out = e.ok(&["queue", "overflow", "Acme", "A", "--on", "full", "--none"]);
    assert_eq!(out, "queue \"A\" had no overflow rule on full\n");
    let rules = e.with(|h| h.queue_details(a).wait().expect("details").overflow);
    assert_eq!(
        rules[0].rule.target,
        OverflowTarget::User(e.user_id("Acme", "11"))
    );
}

#[test]
fn hours_holidays_numbers_vips_and_tenant_settings() {
    let e = Env::new();
    e.ok(&["queue", "add", "Acme", "Support"]);
    let out = e.ok(&[
        "queue",
        "hours",
        "Acme",
        "Support",
        "Mon-Fri 8:00-16:00, sat 10:00-14:00",
    ]);
    assert_eq!(
        out,
        "queue \"Support\" is open mon-fri 08:00-16:00, sat 10:00-14:00 (Europe/Oslo)\n"
    );
    e.ok(&[
        "queue",
        "holiday",
        "add",
        "Acme",
        "Support",
        "2024-12-24",
        "--open",
        "09:00-12:00",
    ]);
    let out = e.ok(&["queue", "holiday", "add", "Acme", "Support", "2024-12-25"]);
    assert_eq!(out, "queue \"Support\" on 2024-12-25: closed\n");
    let show = e.ok(&["queue", "show", "Acme", "Support"]);
    assert!(
        show.contains("holidays:           2024-12-24 open 09:00-12:00, 2024-12-25 closed"),
        "{show}"
    );
    e.ok(&[
        "queue",
        "holiday",
        "remove",
        "Acme",
        "Support",
        "2024-12-25",
    ]);
    let out = e.ok(&["queue", "hours", "Acme", "Support", "--always"]);
    assert_eq!(out, "queue \"Support\" is always open\n");
    let show = e.ok(&["queue", "show", "Acme", "Support"]);
    assert!(show.contains("hours:              always open"), "{show}");
    assert!(show.contains("holidays:           -"), "{show}");
    // A holiday needs opening hours.
    let err = e.err(&["queue", "holiday", "add", "Acme", "Support", "2024-12-24"]);
    assert!(
        err.to_string()
            .starts_with("invalid hours: the queue has no opening hours"),
        "{err}"
    );

    // Numbers: an owned main number leads to the queue, and back.
    e.ok(&["tenant", "number", "add", "Acme", "+4721000000"]);
    let out = e.ok(&["queue", "number", "Acme", "Support", "+4721000000"]);
    assert_eq!(
        out,
        "number +4721000000 (main) leads to queue \"Support\"\n"
    );
    let q = e.queue_id("Acme", "Support");
    let routed = e.with(|h| h.route_number("+4721000000").wait().expect("route"));
    assert_eq!(routed.map(|(n, _)| n.queue_id), Some(Some(q)));
    let out = e.ok(&[
        "queue",
        "number",
        "Acme",
        "Support",
        "+4721000000",
        "--unassign",
    ]);
    assert_eq!(
        out,
        "number +4721000000 no longer leads to queue \"Support\"\n"
    );
    assert!(matches!(
        e.err(&[
            "queue",
            "number",
            "Acme",
            "Support",
            "+4721000000",
            "--unassign"
        ]),
        CliError::NumberNotOfQueue { .. }
    ));
    e.ok(&[
        "tenant",
        "number",
        "add",
        "Acme",
        "+4721000010",
        "--kind",
        "user",
    ]);
    let err = e.err(&["queue", "number", "Acme", "Support", "+4721000010"]);
    assert!(
        err.to_string()
            .starts_with("invalid number kind: a personal number"),
        "{err}"
    );
    let out = e.ok(&[
        "tenant",
        "number",
        "add",
        "Acme",
        "+4721000005",
        "--kind",
        "queue",
        "--queue",
        "support",
    ]);
    assert_eq!(
        out,
        "number +4721000005 (queue) added to tenant \"Acme\", leading to queue \"Support\"\n"
    );
    assert!(matches!(
        e.err(&[
            "tenant",
            "number",
            "add",
            "Acme",
            "+4721000006",
            "--queue",
            "Nope"
        ]),
        CliError::QueueNotFound { .. }
    ));

    // VIP numbers.
    e.ok(&[
        "queue",
        "vip",
        "add",
        "Acme",
        "+4790000001",
        "--note",
        "Styreleder",
    ]);
    e.ok(&["queue", "vip", "add", "Acme", "+4790000000"]);
    let err = e.err(&["queue", "vip", "add", "Acme", "+4790000000"]);
    assert_eq!(
        err.to_string(),
        "vip number already exists in this tenant's VIP list"
    );
    let list = e.ok(&["queue", "vip", "list", "Acme"]);
    assert_eq!(
        list,
        "NUMBER       NOTE\n+4790000000  -\n+4790000001  Styreleder\n"
    );
    e.ok(&["queue", "vip", "remove", "Acme", "+4790000000"]);
    assert_eq!(
        e.ok(&["queue", "vip", "list", "Other"]).trim(),
        "tenant \"Other\" has no VIP numbers"
    );

    // Tenant settings show in the listing.
    let out = e.ok(&[
        "tenant",
        "set",
        "Acme",
        "--time-zone",
        "America/New_York",
        "--queue-retention-days",
        "30",
    ]);
    assert!(out.contains("time zone:     America/New_York"), "{out}");
    assert!(out.contains("queue history: 30 days"), "{out}");
    let list = e.ok(&["tenant", "list"]);
    assert!(
        list.lines()
            .next()
            .is_some_and(|l| l.ends_with("TIME ZONE         QUEUE HISTORY")),
        "{list}"
    );
    assert_eq!(row(&list, "1")[5..], ["America/New_York", "30 d"]);
    assert_eq!(row(&list, "2")[5..], ["Europe/Oslo", "90 d"]);
}

#[test]
fn agents_log_in_pause_and_out() {
    let e = Env::new();
    e.ok(&["queue", "add", "Acme", "Support"]);
    e.ok(&["queue", "member", "add", "Acme", "Support", "10"]);
    let u = e.user_id("Acme", "10");
    let presence = |e: &Env| e.with(|h| h.agent_presence(u).wait().expect("presence"));
    let before = e.revision();
    let out = e.ok(&["queue", "agent", "login", "Acme", "10"]);
    assert_eq!(out, "agent 10 (Agent 10) of tenant \"Acme\": logged in\n");
    assert_eq!(presence(&e), AgentPresence::LoggedIn);
    assert!(e.revision() > before, "the daemon reloads");
    let out = e.ok(&["queue", "agent", "pause", "Acme", "10", "--reason", "Lunsj"]);
    assert_eq!(
        out,
        "agent 10 (Agent 10) of tenant \"Acme\": paused (Lunsj)\n"
    );
    let show = e.ok(&["queue", "show", "Acme", "Support"]);
    assert_eq!(
        row(&show, "1"),
        ["1", "10", "Agent 10", "-", "paused (Lunsj)"]
    );
    e.ok(&["queue", "agent", "unpause", "Acme", "10"]);
    assert_eq!(presence(&e), AgentPresence::LoggedIn);
    let stamp = e.with(|h| h.load_queue_config().wait().expect("config").agents[0].changed_at_ms);
    assert_eq!(stamp, NOW_MS, "changed at the clock given");
    e.ok(&["queue", "agent", "logout", "Acme", "10"]);
    assert_eq!(presence(&e), AgentPresence::LoggedOut);
    assert!(matches!(
        e.err(&["queue", "agent", "login", "Acme", "99"]),
        CliError::UserNotFound { .. }
    ));
}

fn live(q: QueueId, t: TenantId, name: &str, updated_at_ms: i64) -> QueueLive {
    QueueLive {
        queue_id: q,
        tenant_id: t,
        name: name.into(),
        agents_logged_in: 3,
        agents_available: 1,
        agents_busy: 1,
        agents_paused: 1,
        callers_waiting: 2,
        longest_wait_ms: Some(65_000),
        answered_today: 12,
        unanswered_today: 3,
        updated_at_ms,
    }
}

#[test]
fn status_shows_the_live_snapshot_and_says_when_it_is_stale() {
    let e = Env::new();
    assert_eq!(e.ok(&["queue", "status"]).trim(), "no queues");
    e.ok(&["queue", "add", "Acme", "Support"]);
    e.ok(&["queue", "add", "Other", "Help"]);
    assert_eq!(
        e.ok(&["queue", "status", "Acme"]).trim(),
        "no live data: daemon not running or not updating"
    );
    let (acme, other) = (e.tenant("Acme").id, e.tenant("Other").id);
    let (support, help) = (e.queue_id("Acme", "Support"), e.queue_id("Other", "Help"));
    e.with(|h| {
        h.write_queue_live(vec![
            live(support, acme, "Support", NOW_MS - 1_000),
            live(help, other, "Help", NOW_MS - 1_000),
        ])
        .wait()
        .expect("live")
    });
    let out = e.ok(&["queue", "status", "Acme"]);
    assert_eq!(
        out,
        "QUEUE    WAITING  LONGEST  AVAILABLE  LOGGED IN  BUSY  PAUSED  ANSWERED  UNANSWERED\n\
         Support  2        1:05     1          3          1     1       12        3\n"
    );
    let all = e.ok(&["queue", "status"]);
    assert_eq!(row(&all, "Other")[..2], ["Other", "Help"]);
    // Written 6 s before "now": the daemon is not updating it.
    let (out, r) = e.run_at(&["queue", "status", "Acme"], now() + Duration::from_secs(5));
    r.expect("status");
    assert!(
        out.starts_with("daemon not running or not updating: this is from 6 s ago\n"),
        "{out}"
    );
}

/// Writes an inbound call from `from` at `at` with these queue visits.
fn call_with(e: &Env, tenant: &str, from: &str, at: i64, visits: Vec<QueueVisitRecord>) {
    let t = e.tenant(tenant);
    let answered_by = visits
        .iter()
        .find(|v| v.outcome == VisitOutcome::Answered)
        .and_then(|v| v.answered_by);
    let rec = CallRecord {
        tenant: Some(t.id),
        direction: Direction::Inbound,
        caller_number: from.into(),
        caller_name: Some("Kari Nordmann".into()),
        callee_number: "+4721000000".into(),
        callee_name: None,
        started_at_ms: at,
        answered_at_ms: answered_by.map(|_| at + 20_000),
        ended_at_ms: at + 200_000,
        outcome: if answered_by.is_some() {
            CallOutcome::Answered
        } else {
            CallOutcome::Missed
        },
        answered_by,
        forward_reason: None,
        end_reason: None,
        sip_call_ids: vec![],
        users: vec![],
        legs: vec![],
        media: vec![],
        queue_visits: visits,
    };
    e.with(|h| h.write_call(rec).wait().expect("call"));
}

fn visit(
    q: QueueId,
    name: &str,
    entered: i64,
    wait_ms: i64,
    outcome: VisitOutcome,
    agent: Option<UserId>,
) -> QueueVisitRecord {
    let answered = outcome == VisitOutcome::Answered;
    QueueVisitRecord {
        queue: q,
        queue_name: name.into(),
        vip: false,
        entered_at_ms: entered,
        answered_at_ms: answered.then_some(entered + wait_ms),
        answered_by: if answered { agent } else { None },
        left_at_ms: entered + wait_ms,
        talk_ms: if answered { 120_000 } else { 0 },
        outcome,
        overflow_reason: None,
        overflow_target: None,
        transferred_to: None,
        offers: agent
            .map(|u| {
                vec![OfferRecord {
                    user: u,
                    offered_at_ms: entered + 1_000,
                    result: if answered {
                        OfferResult::Answered
                    } else {
                        OfferResult::NoAnswer
                    },
                }]
            })
            .unwrap_or_default(),
    }
}

#[test]
fn log_and_stats_in_the_tenants_time_zone() {
    let e = Env::new();
    e.ok(&["queue", "add", "Acme", "Support"]);
    e.ok(&["queue", "add", "Acme", "Sales"]);
    e.ok(&["queue", "member", "add", "Acme", "Support", "10"]);
    e.ok(&["queue", "member", "add", "Acme", "Support", "11"]);
    let (support, sales) = (e.queue_id("Acme", "Support"), e.queue_id("Acme", "Sales"));
    let (u10, u11) = (e.user_id("Acme", "10"), e.user_id("Acme", "11"));
    // Oslo is UTC+2 in June: 2024-06-03 00:00 local is 2024-06-02 22:00 UTC.
    let local_midnight = NOW_MS - 12 * 3_600_000;
    // Today (local): answered by 10 after 15 s; abandoned after 45 s (offered to 11);
    // overflowed from Support to Sales after 60 s and answered there by 11 after 5 s.
    call_with(
        &e,
        "Acme",
        "+4790000001",
        local_midnight + 8 * 3_600_000,
        vec![visit(
            support,
            "Support",
            local_midnight + 8 * 3_600_000,
            15_000,
            VisitOutcome::Answered,
            Some(u10),
        )],
    );
    call_with(
        &e,
        "Acme",
        "+4790000002",
        local_midnight + 9 * 3_600_000,
        vec![visit(
            support,
            "Support",
            local_midnight + 9 * 3_600_000,
            45_000,
            VisitOutcome::Abandoned,
            Some(u11),
        )],
    );
    let t0 = local_midnight + 10 * 3_600_000;
    let mut over = visit(
        support,
        "Support",
        t0,
        60_000,
        VisitOutcome::Overflowed,
        None,
    );
    over.overflow_reason = Some(OverflowCondition::MaxWait);
    over.overflow_target = Some("queue Sales".into());
    let mut answered_in_sales = visit(
        sales,
        "Sales",
        t0 + 60_000,
        5_000,
        VisitOutcome::Answered,
        Some(u11),
    );
    answered_in_sales.transferred_to = Some("user 12 (Agent 12)".into());
    call_with(&e, "Acme", "+4790000003", t0, vec![over, answered_in_sales]);
    // 30 minutes before local midnight: yesterday in Oslo, though the same UTC date.
    call_with(
        &e,
        "Acme",
        "+4790000004",
        local_midnight - 1_800_000,
        vec![visit(
            support,
            "Support",
            local_midnight - 1_800_000,
            10_000,
            VisitOutcome::Abandoned,
            None,
        )],
    );
    // An outgoing call by 10 today.
    e.with(|h| {
        h.write_call(CallRecord {
            tenant: Some(e.tenant("Acme").id),
            direction: Direction::Outbound,
            caller_number: "+4721000000".into(),
            caller_name: None,
            callee_number: "+4790000002".into(),
            callee_name: None,
            started_at_ms: NOW_MS - 60_000,
            answered_at_ms: Some(NOW_MS - 55_000),
            ended_at_ms: NOW_MS,
            outcome: CallOutcome::Answered,
            answered_by: None,
            forward_reason: None,
            end_reason: None,
            sip_call_ids: vec![],
            users: vec![(u10, CallUserRole::Caller)],
            legs: vec![],
            media: vec![],
            queue_visits: vec![],
        })
        .wait()
        .expect("callback")
    });

    let stats = e.ok(&["queue", "stats", "Acme"]);
    assert!(
        stats.starts_with("tenant \"Acme\", 2024-06-03 (Europe/Oslo)\n"),
        "{stats}"
    );
    assert_eq!(
        row(&stats, "Support"),
        ["Support", "3", "1", "33%", "0:15", "0:15", "0:52", "1:00", "2:00", "1", "1", "0", "0"]
    );
    assert_eq!(
        row(&stats, "Sales"),
        ["Sales", "1", "1", "100%", "0:05", "0:05", "-", "-", "2:00", "0", "0", "0", "1"]
    );
    assert_eq!(
        row(&stats, "10"),
        ["10", "Agent 10", "1", "1", "100%", "2:00", "0", "1"]
    );
    assert_eq!(
        row(&stats, "11"),
        ["11", "Agent 11", "2", "1", "50%", "2:00", "1", "0"]
    );
    // Yesterday (local) holds only the call before midnight.
    let y = e.ok(&["queue", "stats", "Acme", "--from", "2024-06-02"]);
    assert_eq!(row(&y, "Support")[..4], ["Support", "1", "0", "0%"]);
    let both = e.ok(&[
        "queue",
        "stats",
        "Acme",
        "--from",
        "2024-06-02",
        "--to",
        "2024-06-03",
    ]);
    assert!(both.starts_with("tenant \"Acme\", 2024-06-02 to 2024-06-03 (Europe/Oslo)\n"));
    assert_eq!(row(&both, "Support")[..3], ["Support", "4", "1"]);

    let log = e.ok(&["queue", "log", "Acme", "--queue", "support", "--limit", "3"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(
        lines[0].starts_with("ENTERED              QUEUE    CALLER"),
        "{log}"
    );
    assert_eq!(
        cells(lines[1]),
        [
            "2024-06-03 10:00:00",
            "Support",
            "Kari Nordmann <+4790000003>",
            "-",
            "overflowed",
            "1:00",
            "-",
            "-",
            "-",
            "max-wait: queue Sales",
            "-",
            "Agent 11 (11)",
        ],
        "the missed visit was handled by the agent who answered in Sales"
    );
    assert_eq!(
        cells(lines[2]),
        [
            "2024-06-03 09:00:00",
            "Support",
            "Kari Nordmann <+4790000002>",
            "-",
            "abandoned",
            "0:45",
            "-",
            "-",
            "11",
            "-",
            "-",
            "Agent 10 (10)",
        ],
        "called back by member 10"
    );
    assert_eq!(
        cells(lines[3])[..9],
        [
            "2024-06-03 08:00:00",
            "Support",
            "Kari Nordmann <+4790000001>",
            "-",
            "answered",
            "0:15",
            "2:00",
            "Agent 10 (10)",
            "10",
        ]
    );
    let sales_log = e.ok(&["queue", "log", "Acme", "--queue", "Sales"]);
    assert!(sales_log.contains("user 12 (Agent 12)"), "{sales_log}");
    assert_eq!(e.ok(&["queue", "log", "Other"]).trim(), "no queue calls");
}
