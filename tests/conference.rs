//! Black-box conference test with real phones: three baresip phones dial a room's
//! extension; each sends a tone of its own frequency and records what it hears. In the
//! part of the call when all three are in the room, each must hear the two other tones
//! and not its own (checked by spectrum: G.711 and mixing never keep bytes). The
//! conference log then names all three.
//!
//! Needs Debian's `baresip-core` (scripts/test.sh installs it); without it the test is
//! skipped visibly, except in CI (see `baresip_enabled`).

mod common;

use std::time::Duration;

use common::baresip::{baresip_enabled, write_wav, Baresip, PhoneSetup, SAMPLE_RATE};
use common::spectrum::{best_window, level_db, tone, MIN_HEARD_DBFS, MIN_SEPARATION_DB};
use common::{TestEnv, User, MD5_FIRST_PROFILE_LINES, TENANT};

/// How long each phone may take from start to an established call.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a call may last once established (its file, plus slack).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The room's extension.
const ROOM_EXTENSION: &str = "700";

fn carol() -> User {
    User::new("carol", "1003", "carol-secret-3")
}

/// Who takes part in the baresip tests: user, tone (Hz), seconds of tone (different, so
/// they leave one after the other).
fn people() -> [(User, f64, f64); 3] {
    [
        (User::alice(), 500.0, 12.0),
        (User::bob(), 900.0, 13.0),
        (carol(), 1400.0, 14.0),
    ]
}

/// Three baresip phones dial the room, each sending its tone; `during` runs once all
/// three are in the room. Returns the environment, the daemon and each phone's
/// recording (in `people()` order).
fn three_in_a_room(during: impl FnOnce(&TestEnv)) -> (TestEnv, common::Daemon, Vec<Vec<i16>>) {
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.provision(&[User::alice(), User::bob(), carol()]);
    env.cli(
        &[
            "conference",
            "add",
            TENANT,
            "Styremøte",
            "--extension",
            ROOM_EXTENSION,
        ],
        None,
    );
    let daemon = env.start();
    let dir = env.path().join("baresip");
    std::fs::create_dir_all(&dir).expect("create the baresip dir");
    let mut phones: Vec<Baresip> = people()
        .iter()
        .map(|(user, hz, seconds)| {
            let wav = dir.join(format!("{}-sends.wav", user.username));
            write_wav(&wav, &tone(*hz, *seconds));
            Baresip::start(
                &dir,
                &PhoneSetup {
                    user: user.clone(),
                    proxy: daemon.phones_udp(),
                    source_wav: wav,
                    codecs: "PCMU,PCMA".to_owned(),
                    auto_answer: false,
                    dial: Some(ROOM_EXTENSION.to_owned()),
                },
            )
        })
        .collect();
    for p in &mut phones {
        p.wait_for("established call", SETUP_TIMEOUT, |l| {
            l.contains("Call established")
        });
    }
    wait_in_room(&env, "Styremøte", 3);
    during(&env);
    for p in &mut phones {
        p.wait_for("end of the call", CALL_TIMEOUT, |l| {
            l.contains("terminated")
        });
        p.stop();
    }
    let recordings = phones.iter().map(|p| p.recording("-dec.wav")).collect();
    (env, daemon, recordings)
}

/// Waits until `room` has `n` participants.
fn wait_in_room(env: &TestEnv, room: &str, n: usize) {
    let end = common::deadline(Duration::from_secs(15));
    loop {
        let out = env.cli(&["conference", "participants", TENANT, room], None);
        let rows = out
            .lines()
            .skip_while(|l| !l.starts_with("ID"))
            .skip(1)
            .count();
        if rows == n {
            return;
        }
        assert!(
            common::deadline(Duration::ZERO) < end,
            "never {n} participants in {room}:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_phones_in_a_room_each_hear_the_other_two_and_not_themselves() {
    if !baresip_enabled("three_phones_in_a_room_each_hear_the_other_two_and_not_themselves") {
        return;
    }
    let (env, daemon, recordings) = three_in_a_room(|_| {});
    let people = people();
    for (i, (user, own, _)) in people.iter().enumerate() {
        let others: Vec<f64> = people
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (_, hz, _))| *hz)
            .collect();
        let (a, b, mine) = best_window(&recordings[i], *own, [others[0], others[1]])
            .unwrap_or_else(|| {
                panic!(
                    "{}: no audio recorded\n{}",
                    user.username,
                    daemon.diagnostics()
                )
            });
        eprintln!(
            "{} hears {:.0} Hz at {a:.1} dB, {:.0} Hz at {b:.1} dB, its own {own:.0} Hz at {mine:.1} dB",
            user.username, others[0], others[1]
        );
        assert!(
            a > MIN_HEARD_DBFS && b > MIN_HEARD_DBFS,
            "{} does not hear both others: {a:.1} dB, {b:.1} dB\n{}",
            user.username,
            daemon.diagnostics()
        );
        assert!(
            a.min(b) - mine >= MIN_SEPARATION_DB,
            "{} hears itself: own {mine:.1} dB against {a:.1}/{b:.1} dB",
            user.username
        );
    }
    // The conference log names all three.
    let end = common::deadline(Duration::from_secs(10));
    loop {
        let log = env.cli(&["conference", "log", TENANT], None);
        if ["1001", "1002", "1003"].iter().all(|e| log.contains(e)) {
            break;
        }
        assert!(
            common::deadline(Duration::ZERO) < end,
            "the conference log never named all three:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Bob is muted from the CLI while all three are in the room: from then on alice hears
/// carol and no longer bob.
#[test]
fn a_participant_muted_from_the_cli_is_no_longer_heard() {
    if !baresip_enabled("a_participant_muted_from_the_cli_is_no_longer_heard") {
        return;
    }
    let (_env, daemon, recordings) = three_in_a_room(|env| {
        let out = env.cli(&["conference", "participants", TENANT, "Styremøte"], None);
        let bob = out
            .lines()
            .find(|l| l.contains(" 1002 "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("bob is not in the room:\n{out}"))
            .to_owned();
        let done = env.cli(&["conference", "mute", TENANT, "Styremøte", &bob], None);
        assert!(done.contains("done") || done.contains("muted"), "{done}");
    });
    // alice's last 3 s before she leaves (the last half second cut): bob muted, carol on.
    let alice = &recordings[0];
    let w = SAMPLE_RATE as usize / 2;
    let tail_end = alice.len().saturating_sub(w);
    let tail = &alice[tail_end.saturating_sub(6 * w)..tail_end];
    for (k, window) in tail.chunks(w).enumerate() {
        let (bob, carol) = (level_db(window, 900.0), level_db(window, 1400.0));
        eprintln!("alice, window {k} after the mute: bob {bob:.1} dB, carol {carol:.1} dB");
        assert!(
            carol > MIN_HEARD_DBFS,
            "alice no longer hears carol: {carol:.1} dB\n{}",
            daemon.diagnostics()
        );
        assert!(
            carol - bob >= MIN_SEPARATION_DB,
            "alice still hears the muted bob: {bob:.1} dB against carol {carol:.1} dB"
        );
    }
}

/// A daemon (SIPp-friendly phones profile) with alice, bob and a room on extension 700;
/// `add_args` go to `conference add` (e.g. `--pin-stdin` with `stdin`).
fn start_with_room(add_args: &[&str], stdin: Option<&str>) -> (TestEnv, common::Daemon) {
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.provision(&[User::alice(), User::bob()]);
    let mut args = vec![
        "conference",
        "add",
        TENANT,
        "Room",
        "--extension",
        ROOM_EXTENSION,
    ];
    args.extend_from_slice(add_args);
    env.cli(&args, stdin);
    let daemon = env.start();
    (env, daemon)
}

/// `user` calls the room with SIPp `scenario` in the background.
fn sipp_caller(
    env: &TestEnv,
    daemon: &common::Daemon,
    user: &User,
    scenario: &str,
) -> common::SippChild {
    let vars = common::calls::caller_vars(user, ROOM_EXTENSION);
    let opts = common::calls::caller_options(&vars);
    common::spawn_sipp(env, scenario, Some(daemon.phones_udp()), &opts)
}

/// The rows of `conference participants`: (id, the whole line).
fn participants(env: &TestEnv) -> Vec<(String, String)> {
    let out = env.cli(&["conference", "participants", TENANT, "Room"], None);
    out.lines()
        .skip_while(|l| !l.starts_with("ID"))
        .skip(1)
        .filter_map(|l| {
            let id = l.split_whitespace().next()?;
            Some((id.to_owned(), l.to_owned()))
        })
        .collect()
}

fn wait_participants(env: &TestEnv, n: usize) -> Vec<(String, String)> {
    let end = common::deadline(Duration::from_secs(15));
    loop {
        let p = participants(env);
        if p.len() == n {
            return p;
        }
        assert!(
            common::deadline(Duration::ZERO) < end,
            "never {n} participants: {p:?}\n{}",
            env.cli(&["conference", "participants", TENANT, "Room"], None)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A caller who enters a wrong PIN three times (RFC 4733 digits) is hung up and never
/// joins.
#[test]
fn a_wrong_pin_three_times_ends_the_call() {
    if !common::sipp_enabled("a_wrong_pin_three_times_ends_the_call") {
        return;
    }
    let (env, daemon) = start_with_room(&["--pin-stdin"], Some("4321\n"));
    let vars = common::calls::caller_vars(&User::alice(), ROOM_EXTENSION);
    let opts = common::calls::caller_options(&vars).timeout(Duration::from_secs(40));
    let caller = common::spawn_sipp(
        &env,
        "conference_wrong_pin.xml",
        Some(daemon.phones_udp()),
        &opts,
    );
    let run = caller.wait();
    assert!(
        run.status.success(),
        "the switch hangs up after three wrong PINs\n{}\n{}\n{}",
        run.errors,
        run.messages,
        daemon.diagnostics()
    );
    assert!(
        participants(&env).is_empty(),
        "the caller never joined the room"
    );
    // The keys a conference caller presses may be its PIN: the log never shows them.
    let log = daemon.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("DTMF digit") && (l.contains("\"digit\"") || l.contains("digit="))),
        "a conference caller's keys are not logged:\n{log}"
    );
    assert!(
        log.contains("wrong conference PIN"),
        "the log is the daemon's (it tells of the wrong PINs):\n{log}"
    );
}

/// A participant is in the room; after `conference lock` a newcomer is refused (told and
/// hung up) while the room keeps its one participant; `conference kick` then hangs the
/// participant up, and the conference log says so.
#[test]
fn a_locked_room_refuses_newcomers_and_a_kicked_participant_is_hung_up() {
    if !common::sipp_enabled("a_locked_room_refuses_newcomers_and_a_kicked_participant_is_hung_up")
    {
        return;
    }
    let (env, daemon) = start_with_room(&[], None);
    let bob = sipp_caller(&env, &daemon, &User::bob(), "call_caller_hungup.xml");
    let present = wait_participants(&env, 1);
    assert!(
        present[0].1.contains(" 1002 "),
        "bob (1002) is in: {present:?}"
    );
    let out = env.cli(&["conference", "lock", TENANT, "Room"], None);
    assert!(out.contains("done") || out.contains("locked"), "{out}");
    let alice = sipp_caller(&env, &daemon, &User::alice(), "call_caller_hungup.xml");
    let refused = alice.wait();
    assert!(
        refused.status.success(),
        "the locked room hangs the newcomer up\n{}\n{}",
        refused.errors,
        daemon.diagnostics()
    );
    assert_eq!(participants(&env).len(), 1, "the newcomer never joined");
    let out = env.cli(&["conference", "kick", TENANT, "Room", &present[0].0], None);
    assert!(out.contains("done") || out.contains("kicked"), "{out}");
    let kicked = bob.wait();
    assert!(
        kicked.status.success(),
        "the kicked participant is hung up\n{}\n{}",
        kicked.errors,
        daemon.diagnostics()
    );
    let end = common::deadline(Duration::from_secs(10));
    loop {
        let log = env.cli(&["conference", "log", TENANT], None);
        if log.contains("kicked") {
            break;
        }
        assert!(
            common::deadline(Duration::ZERO) < end,
            "the conference log never showed the kick:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
