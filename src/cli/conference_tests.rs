//! Tests of `conference ...`: parsed with clap like the binary would, run against a
//! tempdir database with a virtual clock whose sleeps can run a stand-in daemon (another
//! store on the same file, as the real daemon is another process), checked through the
//! output and the store.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use super::*;
use crate::store::{
    CallAction, CallCommand, CallCommandResult, CommandResult, ConferenceControl, ConferenceLive,
    ConferenceOrigin, ConferenceRecord, ConferenceRoom, LiveParticipant, LiveParticipantId,
    ParticipantEnd, ParticipantRecord, PinRole, RoomPin, UserId,
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
    Conference(ConferenceCommand),
    #[command(subcommand)]
    Tenant(TenantCommand),
}

/// 2024-06-03 10:00:00 UTC (12:00 in Oslo).
const NOW_MS: i64 = 1_717_408_800_000;

/// A virtual wall clock: each sleep advances it and then runs `on_sleep` (a stand-in
/// daemon) with the new time.
struct TestClock<'a> {
    now_ms: Cell<i64>,
    on_sleep: RefCell<Box<dyn FnMut(i64) + 'a>>,
    slept: Cell<Duration>,
}

impl<'a> TestClock<'a> {
    fn new(on_sleep: impl FnMut(i64) + 'a) -> Self {
        TestClock {
            now_ms: Cell::new(NOW_MS),
            on_sleep: RefCell::new(Box::new(on_sleep)),
            slept: Cell::new(Duration::ZERO),
        }
    }
}

impl CliClock for TestClock<'_> {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms.get().unsigned_abs())
    }

    fn sleep(&self, d: Duration) {
        self.slept.set(self.slept.get() + d);
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.set(self.now_ms.get() + ms);
        (self.on_sleep.borrow_mut())(self.now_ms.get());
    }
}

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    /// A database with tenant Acme (users 10 and 11) and tenant Other (user 10).
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("sentralbord.db");
        let e = Env { _dir: dir, db };
        e.with(|h| {
            for (tenant, exts) in [("Acme", &["10", "11"][..]), ("Other", &["10"][..])] {
                let t = h.add_tenant(tenant).wait().expect("tenant");
                for ext in exts {
                    h.add_user(NewUser {
                        tenant: t,
                        name: format!("User {ext}"),
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

    fn run_with(
        &self,
        args: &[&str],
        stdin: &str,
        clock: &dyn CliClock,
    ) -> (String, Result<(), CliError>) {
        let mut all = vec!["sentralbord"];
        all.extend_from_slice(args);
        let cmd = match TestCli::try_parse_from(all) {
            Ok(c) => c.cmd,
            Err(e) => panic!("parse {args:?}: {e}"),
        };
        let mut out = Vec::new();
        let mut input = stdin.as_bytes();
        let r = match cmd {
            TestCmd::Conference(c) => run_conference_with(c, &self.db, clock, &mut input, &mut out),
            TestCmd::Tenant(c) => run_tenant_with(c, &self.db, &mut out),
        };
        (String::from_utf8(out).expect("utf8"), r)
    }

    fn run(&self, args: &[&str], stdin: &str) -> (String, Result<(), CliError>) {
        self.run_with(args, stdin, &TestClock::new(|_| {}))
    }

    fn ok_in(&self, args: &[&str], stdin: &str) -> String {
        let (out, r) = self.run(args, stdin);
        if let Err(e) = r {
            panic!("{args:?}: {e}\n{out}");
        }
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, "")
    }

    fn err_in(&self, args: &[&str], stdin: &str) -> CliError {
        match self.run(args, stdin) {
            (_, Err(e)) => e,
            (out, Ok(())) => panic!("{args:?} succeeded: {out}"),
        }
    }

    fn err(&self, args: &[&str]) -> CliError {
        self.err_in(args, "")
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

    fn room(&self, tenant: &str, name: &str) -> ConferenceRoom {
        let t = self.tenant(tenant);
        self.with(|h| h.find_room(t.id, name).wait().expect("find").expect("room"))
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

    fn verify(&self, room: &ConferenceRoom, digits: &str) -> Option<PinRole> {
        self.with(|h| {
            h.verify_room_pin(room.id, RoomPin::new(digits))
                .wait()
                .expect("verify")
        })
    }

    /// The room revision: unchanged means nothing was written.
    fn revision(&self) -> i64 {
        self.with(|h| h.conference_config_revision().wait().expect("revision"))
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

/// The value of a `label: value` line.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} in\n{out}"))
}

fn invalid_field(e: CliError) -> Field {
    match e {
        CliError::Store(StoreError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn clap_definitions_are_valid() {
    use clap::CommandFactory;
    TestCli::command().debug_assert();
}

#[test]
fn add_show_list_set_remove() {
    let e = Env::new();
    let out = e.ok_in(
        &[
            "conference",
            "add",
            "Acme",
            "Board",
            "--extension",
            "800",
            "--number",
            "+4721000100",
            "--max",
            "12",
            "--owner",
            "10",
            "--pin-stdin",
            "--moderator-pin-stdin",
            "--end-when-moderator-leaves",
        ],
        "1234\n987654\n",
    );
    assert!(
        out.starts_with("conference room \"Board\" added to tenant \"Acme\" (id ")
            && out.contains("extension 800")
            && out.contains("number +4721000100 leads to it"),
        "{out}"
    );
    let board = e.room("Acme", "Board");
    assert_eq!(e.verify(&board, "1234"), Some(PinRole::Participant));
    assert_eq!(e.verify(&board, "987654"), Some(PinRole::Moderator));

    let show = e.ok(&["conference", "show", "Acme", "board"]);
    for (label, value) in [
        ("conference room", "Board"),
        ("tenant", "Acme"),
        ("extension", "800"),
        ("number", "+4721000100"),
        ("max participants", "12"),
        ("pin", "set"),
        ("moderator pin", "set"),
        ("owner", "10 (User 10)"),
        ("end when moderator leaves", "yes"),
        ("starts locked", "no"),
        (
            "in the room",
            "unknown (daemon not running or not updating)",
        ),
    ] {
        assert_eq!(field(&show, label), value, "{show}");
    }
    assert!(!show.contains("1234") && !show.contains("987654"), "{show}");

    e.ok(&["conference", "add", "Other", "Board", "--extension", "800"]);
    let list = e.ok(&["conference", "list"]);
    assert_eq!(
        cells(list.lines().next().expect("header")),
        [
            "TENANT",
            "NAME",
            "EXT",
            "NUMBER",
            "MAX",
            "PIN",
            "MOD PIN",
            "OWNER",
            "STARTS LOCKED"
        ]
    );
    assert_eq!(
        row(&list, "Acme"),
        [
            "Acme",
            "Board",
            "800",
            "+4721000100",
            "12",
            "set",
            "set",
            "10",
            "-"
        ]
    );
    assert_eq!(
        row(&list, "Other"),
        ["Other", "Board", "800", "-", "50", "-", "-", "-", "-"]
    );
    let acme_only = e.ok(&["conference", "list", "Acme"]);
    assert_eq!(acme_only.lines().count(), 2, "{acme_only}");
    assert!(acme_only.starts_with("NAME"), "{acme_only}");

    // The number shows in the tenant's numbers.
    let numbers = e.ok(&["tenant", "number", "list", "Acme"]);
    assert_eq!(
        row(&numbers, "+4721000100"),
        ["+4721000100", "conference", "Board"]
    );

    // Set: only what is given changes; a new moderator PIN from stdin.
    let out = e.ok_in(
        &[
            "conference",
            "set",
            "Acme",
            "Board",
            "--rename",
            "Styret",
            "--extension",
            "810",
            "--no-pin",
            "--moderator-pin-stdin",
            "--no-owner",
            "--no-end-when-moderator-leaves",
            "--locked",
            "--no-number",
        ],
        "55555\n",
    );
    assert!(
        out.starts_with("conference room \"Styret\" of tenant \"Acme\" updated"),
        "{out}"
    );
    for (label, value) in [
        ("extension", "810"),
        ("number", "-"),
        ("max participants", "12"),
        ("pin", "-"),
        ("moderator pin", "set"),
        ("owner", "-"),
        ("end when moderator leaves", "no"),
        ("starts locked", "yes"),
    ] {
        assert_eq!(field(&out, label), value, "{out}");
    }
    let styret = e.room("Acme", "Styret");
    assert_eq!(e.verify(&styret, "55555"), Some(PinRole::Moderator));
    assert_eq!(e.verify(&styret, "987654"), None);
    assert_eq!(e.verify(&styret, "1234"), None, "no PIN any more");
    // Nothing given: nothing changes.
    e.ok(&["conference", "set", "Acme", "Styret"]);
    assert_eq!(e.room("Acme", "Styret"), styret);
    e.ok(&[
        "conference",
        "set",
        "Acme",
        "Styret",
        "--unlocked",
        "--owner",
        "11",
    ]);
    let r = e.room("Acme", "Styret");
    assert_eq!(
        (r.locked, r.owner.map(|o| o.extension)),
        (false, Some("11".to_owned()))
    );

    let out = e.ok(&["conference", "remove", "Acme", "Styret"]);
    assert_eq!(
        out.trim(),
        "conference room \"Styret\" removed from tenant \"Acme\""
    );
    assert!(matches!(
        e.err(&["conference", "show", "Acme", "Styret"]),
        CliError::RoomNotFound { .. }
    ));
    assert_eq!(
        e.ok(&["conference", "list", "Acme"]).trim(),
        "no conference rooms"
    );
}

#[test]
fn bad_input_names_the_field_and_changes_nothing() {
    let e = Env::new();
    e.ok_in(
        &[
            "conference",
            "add",
            "Acme",
            "Board",
            "--extension",
            "800",
            "--pin-stdin",
        ],
        "1234\n",
    );
    let board = e.room("Acme", "Board");
    let rev = e.revision();
    fn add<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["conference", "add", "Acme", "Sales", "--extension", "801"];
        args.extend_from_slice(extra);
        args
    }
    for (args, stdin, expect) in [
        (
            vec!["conference", "add", "Acme", " Sales", "--extension", "801"],
            "",
            Field::ConferenceName,
        ),
        (
            vec!["conference", "add", "Acme", "Sales", "--extension", "8"],
            "",
            Field::Extension,
        ),
        (add(&["--number", "21000000"]), "", Field::Number),
        (add(&["--max", "1"]), "", Field::MaxParticipants),
        (add(&["--max", "501"]), "", Field::MaxParticipants),
        (add(&["--owner", "x"]), "", Field::Extension),
        (add(&["--pin-stdin"]), "123\n", Field::Pin),
        (add(&["--pin-stdin"]), "12a45\n", Field::Pin),
        (
            add(&["--pin-stdin", "--moderator-pin-stdin"]),
            "1234\n99\n",
            Field::ModeratorPin,
        ),
        (
            add(&["--pin-stdin", "--moderator-pin-stdin"]),
            "1234\n1234\n",
            Field::ModeratorPin,
        ),
        (
            vec![
                "conference",
                "set",
                "Acme",
                "Board",
                "--moderator-pin-stdin",
            ],
            "1234\n",
            Field::ModeratorPin,
        ),
        (
            vec![
                "conference",
                "set",
                "Acme",
                "Board",
                "--rename",
                "Styret",
                "--max",
                "0",
            ],
            "",
            Field::MaxParticipants,
        ),
    ] {
        assert_eq!(invalid_field(e.err_in(&args, stdin)), expect, "{args:?}");
    }
    // Missing PIN lines name the PIN that is missing.
    assert!(matches!(
        e.err_in(&add(&["--pin-stdin", "--moderator-pin-stdin"]), "1234\n"),
        CliError::NoPin(Field::ModeratorPin)
    ));
    assert!(matches!(
        e.err_in(&add(&["--pin-stdin"]), ""),
        CliError::NoPin(Field::Pin)
    ));
    // Collisions and unknown names.
    for (args, what) in [
        (
            vec!["conference", "add", "Acme", "Sales", "--extension", "10"],
            "user's extension",
        ),
        (
            vec!["conference", "add", "Acme", "board", "--extension", "801"],
            "room name",
        ),
        (
            vec!["conference", "add", "Acme", "Sales", "--extension", "800"],
            "room extension",
        ),
    ] {
        assert!(
            matches!(
                e.err(&args),
                CliError::Store(StoreError::Duplicate {
                    field: Field::Extension | Field::ConferenceName
                })
            ),
            "{what}"
        );
    }
    e.ok(&["tenant", "number", "add", "Other", "+4721000009"]);
    assert!(matches!(
        e.err(&add(&["--number", "+4721000009"])),
        CliError::Store(StoreError::Duplicate {
            field: Field::Number
        })
    ));
    assert!(matches!(
        e.err(&add(&["--owner", "99"])),
        CliError::UserNotFound { .. }
    ));
    assert!(matches!(
        e.err(&["conference", "add", "Nobody", "Sales", "--extension", "801"]),
        CliError::TenantNotFound(_)
    ));
    assert!(matches!(
        e.err(&["conference", "set", "Acme", "Nothing", "--max", "3"]),
        CliError::RoomNotFound { .. }
    ));
    assert!(matches!(
        e.err(&["conference", "set", "Acme", "Board", "--extension", "10"]),
        CliError::Store(StoreError::Duplicate {
            field: Field::Extension
        })
    ));
    // None of it changed anything.
    assert_eq!(e.revision(), rev);
    assert_eq!(e.room("Acme", "Board"), board);
    assert_eq!(e.verify(&board, "1234"), Some(PinRole::Participant));
    assert_eq!(
        e.with(|h| h.list_rooms(None).wait().expect("list").len()),
        1
    );
    // Conflicting options are refused by the parser.
    assert!(TestCli::try_parse_from([
        "sentralbord",
        "conference",
        "set",
        "Acme",
        "Board",
        "--locked",
        "--unlocked"
    ])
    .is_err());
    // A PIN is never an argument.
    assert!(TestCli::try_parse_from([
        "sentralbord",
        "conference",
        "add",
        "Acme",
        "X",
        "--extension",
        "801",
        "--pin",
        "1234"
    ])
    .is_err());
}

fn participant(id: u32, user: Option<UserId>, joined_at_ms: i64) -> LiveParticipant {
    LiveParticipant {
        id: LiveParticipantId(id),
        user,
        number: if user.is_some() {
            "10".into()
        } else {
            "+4790000001".into()
        },
        name: user.map(|_| "User 10".into()),
        joined_at_ms,
        muted: id == 2,
        talking: id == 1,
        moderator: user.is_some(),
    }
}

#[test]
fn participants_from_the_live_state() {
    let e = Env::new();
    e.ok(&["conference", "add", "Acme", "Board", "--extension", "800"]);
    e.ok(&["conference", "add", "Acme", "Sales", "--extension", "801"]);
    let board = e.room("Acme", "Board");
    let u10 = e.user_id("Acme", "10");

    let out = e.ok(&["conference", "participants", "Acme", "Board"]);
    assert_eq!(
        out.trim(),
        "no live data: daemon not running or not updating"
    );

    let write = |at: i64| {
        e.with(|h| {
            h.write_conference_live(
                at,
                vec![ConferenceLive {
                    room: board.id,
                    locked: true,
                    started_at_ms: NOW_MS - 600_000,
                    participants: vec![
                        participant(1, Some(u10), NOW_MS - 600_000),
                        participant(2, None, NOW_MS - 65_000),
                    ],
                }],
            )
            .wait()
            .expect("live")
        })
    };
    write(NOW_MS - 1_000);
    let out = e.ok(&["conference", "participants", "Acme", "Board"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("room \"Board\": 2 participant(s), locked, started 2024-06-03 11:50:00"),
        "{out}"
    );
    assert_eq!(
        cells(lines.next().expect("header")),
        [
            "ID",
            "NUMBER",
            "NAME",
            "USER",
            "JOINED",
            "FOR",
            "MUTED",
            "TALKING",
            "MODERATOR"
        ]
    );
    assert_eq!(
        row(&out, "1"),
        [
            "1",
            "10",
            "User 10",
            "10",
            "2024-06-03 11:50:00",
            "10:00",
            "-",
            "yes",
            "yes"
        ]
    );
    assert_eq!(
        row(&out, "2"),
        [
            "2",
            "+4790000001",
            "-",
            "-",
            "2024-06-03 11:58:55",
            "1:05",
            "yes",
            "-",
            "-"
        ]
    );
    let show = e.ok(&["conference", "show", "Acme", "Board"]);
    assert_eq!(
        field(&show, "in the room"),
        "2 participant(s) since 2024-06-03 11:50:00, locked"
    );
    let out = e.ok(&["conference", "participants", "Acme", "Sales"]);
    assert_eq!(out.trim(), "no conference in room \"Sales\"");
    assert_eq!(
        field(
            &e.ok(&["conference", "show", "Acme", "Sales"]),
            "in the room"
        ),
        "nobody"
    );

    // Stale: shown, with a notice.
    write(NOW_MS - 30_000);
    let out = e.ok(&["conference", "participants", "Acme", "Board"]);
    assert!(
        out.starts_with("daemon not running or not updating: this is from 30 s ago\n"),
        "{out}"
    );
    assert_eq!(row(&out, "2")[0], "2");
}

/// A stand-in daemon on its own store (like the real one, another process): at every
/// CLI sleep from `answer_at_ms` on, it takes pending commands and answers `result`
/// (`None`: takes them but never answers).
fn daemon(
    db: &std::path::Path,
    answer_at_ms: i64,
    result: Option<CommandResult>,
) -> impl FnMut(i64) {
    let store = Store::open(db).expect("daemon store");
    move |now_ms| {
        if now_ms < answer_at_ms {
            return;
        }
        let h = store.handle();
        for c in h.pending_conference_commands(now_ms).wait().expect("poll") {
            if let Some(r) = result {
                h.finish_conference_command(c.id, r, now_ms)
                    .wait()
                    .expect("finish");
            }
        }
    }
}

#[test]
fn controls_go_through_the_daemon() {
    let e = Env::new();
    e.ok(&["conference", "add", "Acme", "Board", "--extension", "800"]);

    for (args, answer, expect) in [
        (
            vec!["conference", "mute", "Acme", "Board", "3"],
            CommandResult::Done,
            "participant 3 of room \"Board\" muted",
        ),
        (
            vec!["conference", "unmute", "Acme", "board", "3"],
            CommandResult::Done,
            "participant 3 of room \"Board\" unmuted",
        ),
        (
            vec!["conference", "kick", "Acme", "Board", "4"],
            CommandResult::Done,
            "participant 4 kicked from room \"Board\"",
        ),
        (
            vec!["conference", "lock", "Acme", "Board"],
            CommandResult::Done,
            "room \"Board\" locked",
        ),
        (
            vec!["conference", "unlock", "Acme", "Board"],
            CommandResult::Done,
            "room \"Board\" unlocked",
        ),
    ] {
        let clock = TestClock::new(daemon(&e.db, NOW_MS + 1_000, Some(answer)));
        let (out, r) = e.run_with(&args, "", &clock);
        r.unwrap_or_else(|err| panic!("{args:?}: {err}"));
        assert_eq!(out.trim(), expect);
        assert!(
            clock.slept.get() <= Duration::from_millis(1_100),
            "answered promptly"
        );
    }
    // The daemon's refusals are errors naming what is wrong.
    let clock = TestClock::new(daemon(
        &e.db,
        NOW_MS,
        Some(CommandResult::NoSuchParticipant),
    ));
    let (_, r) = e.run_with(&["conference", "kick", "Acme", "Board", "9"], "", &clock);
    assert!(
        matches!(r, Err(CliError::NoSuchParticipant { ref room, participant: 9 }) if room == "Board"),
        "{r:?}"
    );
    let clock = TestClock::new(daemon(&e.db, NOW_MS, Some(CommandResult::NotRunning)));
    let (_, r) = e.run_with(&["conference", "lock", "Acme", "Board"], "", &clock);
    assert!(
        matches!(r, Err(CliError::ConferenceNotRunning { .. })),
        "{r:?}"
    );

    // No daemon: after the wait the command is withdrawn, so a daemon starting later
    // never applies it.
    let clock = TestClock::new(|_| {});
    let (_, r) = e.run_with(&["conference", "mute", "Acme", "Board", "1"], "", &clock);
    assert!(matches!(r, Err(CliError::DaemonNoAnswer)), "{r:?}");
    assert_eq!(
        r.map_err(|e| e.to_string()).err().as_deref(),
        Some("daemon did not answer (not running?)")
    );
    assert_eq!(clock.slept.get(), COMMAND_WAIT);
    let late = e.with(|h| {
        h.pending_conference_commands(clock.now_ms.get() + 100)
            .wait()
            .expect("poll")
    });
    assert!(late.is_empty(), "{late:?}");

    // A daemon that answers just before the wait ends is still heard.
    let clock = TestClock::new(daemon(&e.db, NOW_MS + 4_900, Some(CommandResult::Done)));
    let (out, r) = e.run_with(&["conference", "lock", "Acme", "Board"], "", &clock);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(out.trim(), "room \"Board\" locked");

    // A daemon that took the command but never answers.
    let clock = TestClock::new(daemon(&e.db, NOW_MS + 4_000, None));
    let (_, r) = e.run_with(&["conference", "unlock", "Acme", "Board"], "", &clock);
    assert!(matches!(r, Err(CliError::DaemonNoResult)), "{r:?}");

    // The room must exist; the participant must be a number.
    assert!(matches!(
        e.err(&["conference", "mute", "Acme", "Nothing", "1"]),
        CliError::RoomNotFound { .. }
    ));
    assert!(
        TestCli::try_parse_from(["sentralbord", "conference", "mute", "Acme", "Board", "x"])
            .is_err()
    );
}

#[test]
fn control_commands_are_sent_as_asked() {
    let e = Env::new();
    e.ok(&["conference", "add", "Acme", "Board", "--extension", "800"]);
    let seen = RefCell::new(Vec::new());
    {
        let store = Store::open(&e.db).expect("daemon store");
        let clock = TestClock::new(|now_ms| {
            let h = store.handle();
            for c in h.pending_conference_commands(now_ms).wait().expect("poll") {
                seen.borrow_mut().push(c.control);
                h.finish_conference_command(c.id, CommandResult::Done, now_ms)
                    .wait()
                    .expect("finish");
            }
        });
        for args in [
            &["conference", "kick", "Acme", "Board", "7"][..],
            &["conference", "lock", "Acme", "Board"][..],
        ] {
            let (_, r) = e.run_with(args, "", &clock);
            assert!(r.is_ok(), "{r:?}");
        }
    }
    assert_eq!(
        *seen.borrow(),
        [
            ConferenceControl::Kick(LiveParticipantId(7)),
            ConferenceControl::Lock
        ]
    );
}

/// A stand-in daemon for call commands, like [`daemon`]: from `answer_at_ms` on it takes
/// pending call commands, records them in `seen` and answers `result` (`None`: takes
/// them but never answers).
fn merge_daemon<'a>(
    db: &std::path::Path,
    answer_at_ms: i64,
    result: Option<CallCommandResult>,
    seen: &'a RefCell<Vec<CallCommand>>,
) -> impl FnMut(i64) + 'a {
    let store = Store::open(db).expect("daemon store");
    move |now_ms| {
        if now_ms < answer_at_ms {
            return;
        }
        let h = store.handle();
        for c in h.pending_call_commands(now_ms).wait().expect("poll") {
            if let Some(r) = result {
                h.finish_call_command(c.id, r, now_ms)
                    .wait()
                    .expect("finish");
            }
            seen.borrow_mut().push(c);
        }
    }
}

#[test]
fn merge_goes_through_the_daemon() {
    let e = Env::new();
    let acme = e.tenant("Acme");
    let u10 = e.user_id("Acme", "10");
    let merge = ["conference", "merge", "Acme", "10"];

    let seen = RefCell::new(Vec::new());
    let clock = TestClock::new(merge_daemon(
        &e.db,
        NOW_MS + 1_000,
        Some(CallCommandResult::Done),
        &seen,
    ));
    let (out, r) = e.run_with(&merge, "", &clock);
    r.unwrap_or_else(|err| panic!("merge: {err}"));
    assert_eq!(
        out.trim(),
        "calls of user \"User 10\" (extension 10) merged into one conference"
    );
    assert!(
        clock.slept.get() <= Duration::from_millis(1_100),
        "answered promptly"
    );
    // The tenant's user, not the other tenant's user with the same extension.
    let sent = seen.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (
            sent[0].tenant,
            sent[0].user,
            sent[0].action,
            sent[0].created_at_ms
        ),
        (acme.id, u10, CallAction::Merge, NOW_MS)
    );

    // The daemon's refusals are errors saying why.
    for (answer, message) in [
        (
            CallCommandResult::NotTwoCalls,
            "user \"User 10\" (extension 10) does not have exactly two answered calls",
        ),
        (
            CallCommandResult::NotAnchored,
            "a call of user \"User 10\" (extension 10) does not have its media through \
             sentralbord (media anchoring off): it cannot be merged",
        ),
        (
            CallCommandResult::NotMixable,
            "the calls of user \"User 10\" (extension 10) cannot be merged: a call uses a codec \
             the mixer does not take (it takes PCMU and PCMA), or is in a conference already",
        ),
        (
            CallCommandResult::Failed,
            "daemon could not merge the calls of user \"User 10\" (extension 10)",
        ),
    ] {
        let seen = RefCell::new(Vec::new());
        let clock = TestClock::new(merge_daemon(&e.db, NOW_MS, Some(answer), &seen));
        let (out, r) = e.run_with(&merge, "", &clock);
        assert_eq!(out, "", "nothing printed on {answer:?}");
        assert_eq!(
            r.map_err(|e| e.to_string()).err().as_deref(),
            Some(message),
            "{answer:?}"
        );
    }
    let seen = RefCell::new(Vec::new());
    let clock = TestClock::new(merge_daemon(
        &e.db,
        NOW_MS,
        Some(CallCommandResult::NotAnchored),
        &seen,
    ));
    let (_, r) = e.run_with(&merge, "", &clock);
    assert!(
        matches!(r, Err(CliError::CallNotAnchored { ref name, ref extension })
            if name == "User 10" && extension == "10"),
        "{r:?}"
    );

    // No daemon: after the wait the command is withdrawn, so a daemon starting later
    // never merges.
    let clock = TestClock::new(|_| {});
    let (_, r) = e.run_with(&merge, "", &clock);
    assert!(matches!(r, Err(CliError::DaemonNoAnswer)), "{r:?}");
    assert_eq!(clock.slept.get(), COMMAND_WAIT);
    let late = e.with(|h| {
        h.pending_call_commands(clock.now_ms.get() + 100)
            .wait()
            .expect("poll")
    });
    assert!(late.is_empty(), "{late:?}");

    // A daemon that answers just before the wait ends is still heard.
    let seen = RefCell::new(Vec::new());
    let clock = TestClock::new(merge_daemon(
        &e.db,
        NOW_MS + 4_900,
        Some(CallCommandResult::Done),
        &seen,
    ));
    let (_, r) = e.run_with(&merge, "", &clock);
    assert!(r.is_ok(), "{r:?}");

    // A daemon that took the command but never answers.
    let seen = RefCell::new(Vec::new());
    let clock = TestClock::new(merge_daemon(&e.db, NOW_MS + 4_000, None, &seen));
    let (_, r) = e.run_with(&merge, "", &clock);
    assert!(matches!(r, Err(CliError::DaemonNoResult)), "{r:?}");
    assert_eq!(seen.borrow().len(), 1, "taken");
}

#[test]
fn merge_names_what_is_wrong_before_sending() {
    let e = Env::new();
    let sent = || {
        e.with(|h| {
            h.pending_call_commands(NOW_MS + 100)
                .wait()
                .expect("poll")
                .len()
        })
    };
    let err = e.err(&["conference", "merge", "Nobody", "10"]);
    assert!(
        matches!(err, CliError::TenantNotFound(ref t) if t == "Nobody"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "tenant: no tenant named \"Nobody\"");
    let err = e.err(&["conference", "merge", "Acme", "12"]);
    assert_eq!(
        err.to_string(),
        "extension: tenant \"Acme\" has no user with extension 12"
    );
    let err = e.err(&["conference", "merge", "Acme", "ola"]);
    assert!(
        matches!(
            err,
            CliError::Store(StoreError::Invalid {
                field: Field::Extension,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(sent(), 0, "no command left for the daemon");
    // Both arguments are required.
    for args in [
        &["conference", "merge", "Acme"][..],
        &["conference", "merge"][..],
        &["conference", "merge", "--tenant", "Acme", "--user", "10"][..],
    ] {
        let mut all = vec!["sentralbord"];
        all.extend_from_slice(args);
        assert!(TestCli::try_parse_from(all).is_err(), "{args:?}");
    }
}

#[test]
fn log_lists_conferences_with_participants() {
    let e = Env::new();
    e.ok(&["conference", "add", "Acme", "Board", "--extension", "800"]);
    e.ok(&["conference", "add", "Acme", "Sales", "--extension", "801"]);
    assert_eq!(
        e.ok(&["conference", "log", "Acme"]).trim(),
        "no conferences"
    );
    let board = e.room("Acme", "Board");
    let sales = e.room("Acme", "Sales");
    let u10 = e.user_id("Acme", "10");
    let t = e.tenant("Acme");
    e.with(|h| {
        for (room, start) in [(&board, NOW_MS - 3_600_000), (&sales, NOW_MS - 1_800_000)] {
            h.write_conference(ConferenceRecord {
                tenant: t.id,
                origin: ConferenceOrigin::Room {
                    room: room.id,
                    name: room.name.clone(),
                },
                started_at_ms: start,
                ended_at_ms: start + 600_000,
                participants: vec![
                    ParticipantRecord {
                        sip_call_id: None,
                        user: Some(u10),
                        number: "10".into(),
                        name: Some("User 10".into()),
                        moderator: true,
                        joined_at_ms: start,
                        left_at_ms: start + 600_000,
                        end: ParticipantEnd::RoomEnded,
                    },
                    ParticipantRecord {
                        sip_call_id: None,
                        user: None,
                        number: "+4790000001".into(),
                        name: None,
                        moderator: false,
                        joined_at_ms: start + 60_000,
                        left_at_ms: start + 90_000,
                        end: ParticipantEnd::Kicked,
                    },
                ],
            })
            .wait()
            .expect("record");
        }
        h.write_conference(ConferenceRecord {
            tenant: t.id,
            origin: ConferenceOrigin::AdHoc,
            started_at_ms: NOW_MS - 600_000,
            ended_at_ms: NOW_MS - 540_000,
            participants: vec![],
        })
        .wait()
        .expect("ad hoc");
    });
    let out = e.ok(&["conference", "log", "Acme"]);
    let blocks: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(blocks.len(), 3, "{out}");
    assert_eq!(
        blocks[0],
        "2024-06-03 11:50:00 to 2024-06-03 11:51:00  ad hoc  1:00  0 participant(s)"
    );
    let board_block: Vec<&str> = blocks[2].lines().collect();
    assert_eq!(
        board_block[0],
        "2024-06-03 11:00:00 to 2024-06-03 11:10:00  room \"Board\"  10:00  2 participant(s)"
    );
    assert_eq!(
        cells(board_block[1]),
        [
            "NUMBER",
            "NAME",
            "USER",
            "MODERATOR",
            "JOINED",
            "LEFT",
            "STAYED",
            "ENDED"
        ]
    );
    assert!(board_block[1].starts_with("  NUMBER"), "indented: {out}");
    assert_eq!(
        cells(board_block[2]),
        [
            "10",
            "User 10",
            "10",
            "yes",
            "2024-06-03 11:00:00",
            "2024-06-03 11:10:00",
            "10:00",
            "room-ended"
        ]
    );
    assert_eq!(
        cells(board_block[3]),
        [
            "+4790000001",
            "-",
            "-",
            "-",
            "2024-06-03 11:01:00",
            "2024-06-03 11:01:30",
            "0:30",
            "kicked"
        ]
    );
    // By room, and limited.
    let out = e.ok(&["conference", "log", "Acme", "--room", "sales"]);
    assert!(
        out.starts_with("2024-06-03 11:30:00") && !out.contains("Board"),
        "{out}"
    );
    let out = e.ok(&["conference", "log", "Acme", "--limit", "1"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(matches!(
        e.err(&["conference", "log", "Acme", "--room", "Nothing"]),
        CliError::RoomNotFound { .. }
    ));
    assert!(matches!(
        e.err(&["conference", "log", "Nobody"]),
        CliError::TenantNotFound(_)
    ));
}
