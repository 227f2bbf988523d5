//! Black-box tests of ad-hoc conferences with real phones: during an answered two-party
//! call, a user's phone presses `*3`, a third party's extension and `#` (RFC 4733
//! telephone-events); the switch calls the third party and, on answer, puts all three in
//! one ad-hoc conference. When one of them leaves, the other two go back to a plain call.
//!
//! Three baresip phones (alice, 1001, calls bob, 1002, who answers by himself; carol,
//! 1003, answers by herself) each send a tone of their own frequency for longer than the
//! test lasts and record what they hear; the test hangs them up. Who hears whom is told by
//! spectrum in half-second windows found by their content, never by the clock:
//! - the three-way part: each hears the other two and not itself;
//! - each of the two who stay hears the other in every window from the first one where
//!   it is heard to the end (no silent half second when the room is made or ended), and
//!   after the last window where the one who left is heard, at least
//!   [`MIN_AFTER_SECONDS`] of the other with neither the one who left nor itself.
//!
//! Then the records: the conference log shows one ad-hoc conference of the three (the
//! one who left "left", the two others "room-ended"), and the call log the first call and
//! the third party's leg from the user who asked for it, both answered.
//!
//! Needs Debian's `baresip-core` (scripts/test.sh installs it); without it the tests are
//! skipped visibly, except in CI (see `baresip_enabled`).

mod common;

use std::thread;
use std::time::Duration;

use common::baresip::{baresip_enabled, write_wav, Baresip, PhoneSetup, SAMPLE_RATE};
use common::calls::parse_call_log;
use common::conference_log::{parse_conference_log, LoggedParticipant};
use common::parties::{Party, PARTIES};
use common::spectrum::{
    best_window, tone, window_levels, MIN_HEARD_DBFS, MIN_SEPARATION_DB, WINDOW_SAMPLES,
};
use common::{deadline, Daemon, TestEnv, MD5_FIRST_PROFILE_LINES, TENANT};

/// The feature code that adds a third party to a call in progress.
const FEATURE_CODE: &str = "*3";
/// How long a phone may take from start to an established call.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the switch may take from the last key to the third party's answered call.
const THIRD_PARTY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the daemon may take to log the keys it received.
const DIGITS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the last phone may take to be hung up once the other one has.
const HANG_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the call and conference records may take to be written.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the first two talk before the feature code.
const TWO_PARTY_SECONDS: f64 = 1.0;
/// How long all three talk before one of them hangs up.
const THREE_WAY_SECONDS: f64 = 4.0;
/// How long the last two talk after that.
const AFTER_SECONDS: f64 = 4.0;
/// How much of that must be found in the recordings: the rest is slack for the window of
/// the leaving, the one cut by the hang-up, and the time SIGTERM takes (in a room, 3 s
/// after the leaver's SIGTERM left 2 s of whole windows).
const MIN_AFTER_SECONDS: f64 = 2.0;
/// Each tone lasts longer than any run (aufile hangs up when its file ends).
const TONE_SECONDS: f64 = 40.0;

/// The frequency of the tone each party sends.
trait Tone {
    fn hz(self) -> f64;
}

impl Tone for Party {
    fn hz(self) -> f64 {
        match self {
            Party::Alice => 500.0,
            Party::Bob => 900.0,
            Party::Carol => 1400.0,
        }
    }
}

/// One ad-hoc conference: alice calls bob, `requester` adds carol, then `leaver` hangs
/// up and the two others stay.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    /// Who presses the feature code (alice or bob).
    requester: Party,
    /// Who hangs up first.
    leaver: Party,
}

/// The keys that add carol: the feature code, her extension, `#`.
fn keys_adding_carol() -> String {
    format!("{FEATURE_CODE}{}#", Party::Carol.extension())
}

/// What one run left behind.
struct Run {
    env: TestEnv,
    /// Kept running until the checks are done; its `Drop` prints its log on a panic.
    _daemon: Daemon,
    /// What each phone received, in [`PARTIES`] order.
    recordings: Vec<Vec<i16>>,
}

/// Runs `s`: bob and carol register (answering by themselves), alice calls bob; after
/// [`TWO_PARTY_SECONDS`] the requester presses the keys, the switch calls carol; after
/// [`THREE_WAY_SECONDS`] with carol the leaver hangs up, after [`AFTER_SECONDS`] more
/// one of the two others, and the switch hangs up the last one.
fn run(s: Scenario) -> Run {
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.provision(&PARTIES.map(Party::user));
    let daemon = env.start();
    let dir = env.path().join("baresip");
    std::fs::create_dir_all(&dir).expect("create the baresip dir");
    let phone = |p: Party, dial: Option<String>| {
        let wav = dir.join(format!("{}-sends.wav", p.username()));
        write_wav(&wav, &tone(p.hz(), TONE_SECONDS));
        Baresip::start(
            &dir,
            &PhoneSetup {
                user: p.user(),
                proxy: daemon.phones_udp(),
                source_wav: wav,
                codecs: "PCMU,PCMA".to_owned(),
                auto_answer: dial.is_none(),
                dial,
            },
        )
    };
    let mut bob = phone(Party::Bob, None);
    let mut carol = phone(Party::Carol, None);
    bob.wait_registered();
    carol.wait_registered();
    let mut alice = phone(Party::Alice, Some(Party::Bob.extension()));
    let established = |l: &str| l.contains("Call established");
    alice.wait_for("established call", SETUP_TIMEOUT, established);
    bob.wait_for("established call", SETUP_TIMEOUT, established);
    let mut phones = [alice, bob, carol];
    thread::sleep(Duration::from_secs_f64(TWO_PARTY_SECONDS));

    let keys = keys_adding_carol();
    phones[s.requester.index()].send_dtmf(&keys);
    assert_keys_received(&daemon, &keys);
    phones[Party::Carol.index()].wait_for(
        &format!(
            "call from the switch (the ad-hoc feature code {keys} pressed by {})",
            s.requester.username()
        ),
        THIRD_PARTY_TIMEOUT,
        established,
    );
    thread::sleep(Duration::from_secs_f64(THREE_WAY_SECONDS));

    phones[s.leaver.index()].stop();
    thread::sleep(Duration::from_secs_f64(AFTER_SECONDS));
    let [first, last] = s.leaver.others();
    phones[first.index()].stop();
    phones[last.index()].wait_for("end of the call", HANG_UP_TIMEOUT, |l| {
        l.contains("terminated")
    });
    phones[last.index()].stop();
    let recordings = phones.iter().map(|p| p.recording("-dec.wav")).collect();
    Run {
        env,
        _daemon: daemon,
        recordings,
    }
}

/// Waits until the daemon has logged as many DTMF keys (`DTMF digit` info lines) as
/// `keys` has, then checks they are `keys`, each once.
fn assert_keys_received(daemon: &Daemon, keys: &str) {
    let end = deadline(DIGITS_TIMEOUT);
    let mut got = logged_digits(&daemon.log());
    while got.chars().count() < keys.chars().count() && deadline(Duration::ZERO) < end {
        thread::sleep(Duration::from_millis(100));
        got = logged_digits(&daemon.log());
    }
    assert_eq!(got, keys, "the keys the switch received, one per press");
}

/// The digits of the daemon's `DTMF digit` log lines, in order (JSON or text format).
fn logged_digits(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("DTMF digit"))
        .filter_map(|l| {
            let (_, rest) = l
                .split_once("\"digit\":\"")
                .or_else(|| l.split_once("digit="))?;
            rest.chars().next()
        })
        .collect()
}

/// In the best window of each recording, each party hears both others and not itself.
fn assert_three_way(run: &Run) {
    for p in PARTIES {
        let [a, b] = p.others();
        let (heard_a, heard_b, own) =
            best_window(&run.recordings[p.index()], p.hz(), [a.hz(), b.hz()])
                .unwrap_or_else(|| panic!("{}: no audio recorded", p.username()));
        eprintln!(
            "{} hears {} at {heard_a:.1} dB, {} at {heard_b:.1} dB, itself at {own:.1} dB",
            p.username(),
            a.username(),
            b.username()
        );
        assert!(
            heard_a > MIN_HEARD_DBFS && heard_b > MIN_HEARD_DBFS,
            "{} never hears both {} and {} at once: {heard_a:.1} dB, {heard_b:.1} dB",
            p.username(),
            a.username(),
            b.username()
        );
        assert!(
            heard_a.min(heard_b) - own >= MIN_SEPARATION_DB,
            "{} hears itself: {own:.1} dB against {heard_a:.1}/{heard_b:.1} dB",
            p.username()
        );
    }
}

/// The two who stayed hear each other to the end, and no longer the one who left.
fn assert_back_to_two(run: &Run, s: Scenario) {
    let min_windows = (MIN_AFTER_SECONDS * f64::from(SAMPLE_RATE)) as usize / WINDOW_SAMPLES;
    let [a, b] = s.leaver.others();
    for (me, partner) in [(a, b), (b, a)] {
        let windows = back_to_two(
            &run.recordings[me.index()],
            me.hz(),
            partner.hz(),
            s.leaver.hz(),
            min_windows,
        )
        .unwrap_or_else(|e| panic!("{} after {} left: {e}", me.username(), s.leaver.username()));
        eprintln!(
            "{} hears only {} for {} windows after {} left",
            me.username(),
            partner.username(),
            windows,
            s.leaver.username()
        );
    }
}

/// Checks a recording of one of the two who stay: `partner` is heard in every whole
/// window from the first one where it is heard to the last but one (the last may be cut
/// by the hang-up); after the last window where `leaver` is heard there are at least
/// `min_windows` such windows, in each of which `leaver` and `own` are
/// [`MIN_SEPARATION_DB`] below `partner`. Returns how many windows there are after the
/// leaver, or what is wrong.
fn back_to_two(
    rec: &[i16],
    own: f64,
    partner: f64,
    leaver: f64,
    min_windows: usize,
) -> Result<usize, String> {
    let all = window_levels(rec, &[partner, leaver, own]);
    let levels = &all[..all.len().saturating_sub(1)];
    let seconds = |i: usize| (i * WINDOW_SAMPLES) as f64 / f64::from(SAMPLE_RATE);
    let first = levels
        .iter()
        .position(|l| l[0] > MIN_HEARD_DBFS)
        .ok_or("the other one is never heard")?;
    if let Some(i) = (first..levels.len()).find(|&i| levels[i][0] <= MIN_HEARD_DBFS) {
        return Err(format!(
            "the other one is not heard in the window at {:.1} s ({:.1} dB), heard from {:.1} s",
            seconds(i),
            levels[i][0],
            seconds(first)
        ));
    }
    let last_leaver = levels
        .iter()
        .rposition(|l| l[1] > MIN_HEARD_DBFS)
        .ok_or("the one who left is never heard")?;
    let after = &levels[last_leaver + 1..];
    if after.len() < min_windows {
        return Err(format!(
            "the one who left is heard until {:.1} s, {} window(s) before the end; \
             expected {min_windows} without",
            seconds(last_leaver + 1),
            after.len()
        ));
    }
    for (k, l) in after.iter().enumerate() {
        if l[0] - l[1].max(l[2]) < MIN_SEPARATION_DB {
            return Err(format!(
                "at {:.1} s the other one is at {:.1} dB, the one who left at {:.1} dB, \
                 itself at {:.1} dB",
                seconds(last_leaver + 1 + k),
                l[0],
                l[1],
                l[2]
            ));
        }
    }
    Ok(after.len())
}

/// The conference log shows one ad-hoc conference of the three: each by its extension
/// and user, the leaver "left" and the two others "room-ended" (the last two went back
/// to a plain call), nobody leaving before joining nor after the two others.
fn assert_conference_logged(run: &Run, s: Scenario) {
    let end = deadline(LOG_TIMEOUT);
    let (out, conferences) = loop {
        let out = run.env.cli(&["conference", "log", TENANT], None);
        let conferences = parse_conference_log(&out);
        if !conferences.is_empty() || deadline(Duration::ZERO) >= end {
            break (out, conferences);
        }
        thread::sleep(Duration::from_millis(200));
    };
    eprintln!("conference log:\n{out}");
    let [conference] = conferences.as_slice() else {
        panic!("one conference in the log:\n{out}");
    };
    assert!(
        conference.summary.contains("  ad hoc  ")
            && conference.summary.ends_with("3 participant(s)"),
        "an ad-hoc conference of three: {}",
        conference.summary
    );
    assert_eq!(conference.participants.len(), 3, "{out}");
    let row = |p: Party| {
        conference
            .participants
            .iter()
            .find(|r| r.user == p.extension())
            .unwrap_or_else(|| {
                panic!(
                    "{} (user {}) in the log:\n{out}",
                    p.username(),
                    p.extension()
                )
            })
    };
    // When carol leaves, alice and bob go back to their plain call: the room ends with both
    // in it. When alice or bob leaves, the two others (legs of different calls) stay in the
    // room until the next one hangs up (left); the switch hangs up the last (room ended).
    let [first, _] = s.leaver.others();
    for p in PARTIES {
        let r = row(p);
        assert!(p.named_in(&r.number), "{}'s number: {r:?}", p.username());
        let hung_up_itself = p == s.leaver || (s.leaver != Party::Carol && p == first);
        let ended = if hung_up_itself { "left" } else { "room-ended" };
        assert_eq!(r.ended, ended, "how {}'s stay ended: {r:?}", p.username());
        // `YYYY-MM-DD HH:MM:SS` in one zone: the text orders like the time.
        assert!(
            r.joined <= r.left,
            "{} left before joining: {r:?}",
            p.username()
        );
    }
    let leaver = row(s.leaver);
    for p in s.leaver.others() {
        assert!(
            leaver.left <= row(p).left,
            "{} left after {} although {} stayed: {leaver:?} {:?}",
            s.leaver.username(),
            p.username(),
            p.username(),
            row(p)
        );
    }
}

/// The call log has two rows, both internal and answered: the first call (alice to bob)
/// and the third party's leg (the requester to carol).
fn assert_calls_logged(run: &Run, s: Scenario) {
    let end = deadline(LOG_TIMEOUT);
    let (out, rows) = loop {
        let out = run.env.cli(&["calls", "list", "--tenant", TENANT], None);
        let rows = parse_call_log(&out);
        if rows.len() >= 2 || deadline(Duration::ZERO) >= end {
            break (out, rows);
        }
        thread::sleep(Duration::from_millis(200));
    };
    eprintln!("call log:\n{out}");
    assert_eq!(
        rows.len(),
        2,
        "the first call and the third party's leg:\n{out}"
    );
    for (caller, callee) in [(Party::Alice, Party::Bob), (s.requester, Party::Carol)] {
        let row = rows
            .iter()
            .find(|r| caller.named_in(&r.caller) && r.callee.contains(&callee.extension()))
            .unwrap_or_else(|| {
                panic!(
                    "a call from {} to {} in the call log:\n{out}",
                    caller.username(),
                    callee.username()
                )
            });
        assert_eq!(
            (row.direction.as_str(), row.outcome.as_str()),
            ("internal", "answered"),
            "{} to {}: {row:?}",
            caller.username(),
            callee.username()
        );
        assert!(
            row.answered_by.contains(&callee.extension()),
            "{} to {} answered by {}: {row:?}",
            caller.username(),
            callee.username(),
            callee.username()
        );
    }
}

/// The whole check of one scenario.
fn check(test: &str, s: Scenario) {
    if !baresip_enabled(test) {
        return;
    }
    let run = run(s);
    assert_three_way(&run);
    assert_back_to_two(&run, s);
    assert_conference_logged(&run, s);
    assert_calls_logged(&run, s);
}

/// alice calls bob and adds carol; carol hangs up: alice and bob go back to their call.
#[test]
fn the_caller_adds_a_third_party_who_leaves_them_in_a_plain_call() {
    check(
        "the_caller_adds_a_third_party_who_leaves_them_in_a_plain_call",
        Scenario {
            requester: Party::Alice,
            leaver: Party::Carol,
        },
    );
}

/// alice calls bob, bob adds carol; alice hangs up: bob and carol stay connected.
#[test]
fn the_callee_adds_a_third_party_who_stays_with_him_when_the_caller_leaves() {
    check(
        "the_callee_adds_a_third_party_who_stays_with_him_when_the_caller_leaves",
        Scenario {
            requester: Party::Bob,
            leaver: Party::Alice,
        },
    );
}

// ---------------------------------------------------------------------------------------
// Self-tests of the analysis above (no daemon, no phones).

/// Sums signals sample by sample (saturating), the shortest length.
fn mix(parts: &[&[i16]]) -> Vec<i16> {
    let n = parts.iter().map(|p| p.len()).min().unwrap_or(0);
    (0..n)
        .map(|i| parts.iter().fold(0i16, |acc, p| acc.saturating_add(p[i])))
        .collect()
}

/// What alice records when carol joins and leaves: bob 2 s, bob and carol 3 s, bob 3 s
/// (`after` replaces the last part).
fn alice_hears(after: &[i16]) -> Vec<i16> {
    let (bob, carol) = (Party::Bob.hz(), Party::Carol.hz());
    let mut rec = tone(bob, 2.0);
    rec.extend(mix(&[&tone(bob, 3.0), &tone(carol, 3.0)]));
    rec.extend_from_slice(after);
    rec
}

fn alice_back_to_two(rec: &[i16]) -> Result<usize, String> {
    back_to_two(
        rec,
        Party::Alice.hz(),
        Party::Bob.hz(),
        Party::Carol.hz(),
        4,
    )
}

#[test]
fn back_to_two_finds_the_plain_call_after_the_third_party_left() {
    let rec = alice_hears(&tone(Party::Bob.hz(), 3.0));
    // 3 s after carol: 6 windows, the last one left out.
    assert_eq!(alice_back_to_two(&rec), Ok(5));
}

#[test]
fn back_to_two_fails_when_the_third_party_is_still_heard() {
    let rec = alice_hears(&mix(&[
        &tone(Party::Bob.hz(), 3.0),
        &tone(Party::Carol.hz(), 3.0),
    ]));
    let err = alice_back_to_two(&rec).expect_err("carol never left");
    assert!(err.contains("heard until"), "{err}");
}

#[test]
fn back_to_two_fails_on_a_silent_half_second() {
    let mut after = vec![0i16; WINDOW_SAMPLES * 2];
    after.extend(tone(Party::Bob.hz(), 3.0));
    let err = alice_back_to_two(&alice_hears(&after)).expect_err("a gap");
    assert!(err.contains("not heard in the window at 5.0 s"), "{err}");
}

#[test]
fn back_to_two_fails_when_a_stayer_hears_itself() {
    let rec = alice_hears(&mix(&[
        &tone(Party::Bob.hz(), 3.0),
        &tone(Party::Alice.hz(), 3.0),
    ]));
    let err = alice_back_to_two(&rec).expect_err("an echo");
    assert!(err.contains("itself at"), "{err}");
}

#[test]
fn parses_the_conference_log() {
    let out = r#"2024-06-03 11:50:00 to 2024-06-03 11:51:00  ad hoc  1:00  3 participant(s)
  NUMBER  NAME        USER  MODERATOR  JOINED               LEFT                 STAYED  ENDED
  1001    Test alice  1001  -          2024-06-03 11:50:00  2024-06-03 11:51:00  1:00    room-ended
  1003    -           -     -          2024-06-03 11:50:00  2024-06-03 11:50:40  0:40    left

2024-06-03 11:00:00 to 2024-06-03 11:10:00  room "Board"  10:00  0 participant(s)
"#;
    let log = parse_conference_log(out);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        log[0].summary,
        "2024-06-03 11:50:00 to 2024-06-03 11:51:00  ad hoc  1:00  3 participant(s)"
    );
    assert_eq!(
        log[0].participants,
        [
            LoggedParticipant {
                number: "1001".into(),
                name: "Test alice".into(),
                user: "1001".into(),
                joined: "2024-06-03 11:50:00".into(),
                left: "2024-06-03 11:51:00".into(),
                ended: "room-ended".into(),
            },
            LoggedParticipant {
                number: "1003".into(),
                name: "-".into(),
                user: "-".into(),
                joined: "2024-06-03 11:50:00".into(),
                left: "2024-06-03 11:50:40".into(),
                ended: "left".into(),
            },
        ]
    );
    assert!(log[1].participants.is_empty());
    assert!(parse_conference_log("no conferences\n").is_empty());
}

#[test]
fn reads_the_digits_of_the_daemons_dtmf_lines() {
    let log = r##"{"timestamp":"2026-11-27T16:30:50.857351Z","level":"INFO","fields":{"message":"DTMF digit","call":1,"leg":"Caller","digit":"*","source":"Rfc4733"},"target":"sentralbord::engine::media"}
{"timestamp":"2026-11-27T16:30:50.900000Z","level":"INFO","fields":{"message":"call answered","call":1},"target":"sentralbord::engine"}
{"timestamp":"2026-11-27T16:30:51.154182Z","level":"INFO","fields":{"message":"DTMF digit","call":1,"leg":"Callee","digit":"#","source":"Inband"},"target":"sentralbord::engine::media"}
2026-11-27T16:30:52Z INFO sentralbord::engine::media: DTMF digit call=1 leg=Caller digit=3 source=Rfc4733"##;
    assert_eq!(logged_digits(log), "*#3");
}
