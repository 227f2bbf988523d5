//! Black-box test of `sentralbord conference merge TENANT EXT`: a user's two answered
//! calls become one ad-hoc conference, in which the two callers, who are in different
//! calls, hear each other.
//!
//! bob (1002) is a SIPp phone (`phone_answer_tone.xml`) registered from a fixed port that
//! answers two calls at once and sends a quiet tone of its own in each until it is hung
//! up. alice (1001) and carol (1003) are baresip phones that each call bob and send a
//! tone of their own frequency for longer than the test lasts, recording what they hear.
//! Once both calls are answered the CLI merges bob's calls; then alice hangs up (the
//! switch hangs up bob's leg of her call, and carol and bob are a plain call again), then
//! carol, and bob's SIPp must end on the switch's two BYEs.
//!
//! Who hears whom is told by spectrum in half-second windows found by their content,
//! never by the clock: in each caller's recording, windows where bob is heard and the
//! other caller is not come first (before the merge), then windows where the other caller
//! is heard in every one of them (no gap) with the caller's own tone well below (after).
//! Bob's tone is quieter than the callers' so that with four talkers in the room the
//! mixer's three loudest always take both callers.
//!
//! Also: a merge asked for a user with one call, or none, is refused with exit code != 0,
//! and the records: one ad-hoc conference of four participants (alice, bob once per call,
//! carol), and two answered calls in the call log.
//!
//! Needs Debian's `baresip-core` and `sip-tester` (scripts/test.sh installs both):
//! without baresip the test is skipped visibly, except in CI (see `baresip_enabled`).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

use common::baresip::{baresip_enabled, write_wav, Baresip, PhoneSetup, SAMPLE_RATE};
use common::calls::{parse_call_log, Phone};
use common::conference_log::{parse_conference_log, LoggedConference};
use common::parties::Party;
use common::rtp_pcap::{write_pcmu_pcap, PACKET_SAMPLES};
use common::spectrum::{
    level_db, window_levels, MIN_HEARD_DBFS, MIN_SEPARATION_DB, WINDOW_SAMPLES,
};
use common::{
    deadline, sipp_enabled, spawn_sipp, wait_udp_bound, Daemon, SippChild, SippOptions, TestEnv,
    MD5_FIRST_PROFILE_LINES, TENANT,
};
use sentralbord::media::codec::g711;

/// bob's phone: answers every call and sends the tone in [`BOB_PCAP`] until hung up.
const BOB_SCENARIO: &str = "phone_answer_tone.xml";
/// The file `phone_answer_tone.xml` plays, in SIPp's working directory (the env's).
const BOB_PCAP: &str = "phone-tone.pcap";
/// How long bob's SIPp may run at all (its `-timeout`): well past the whole test.
const BOB_TIMEOUT: Duration = Duration::from_secs(90);
/// How long bob's phone rings before it answers.
const BOB_ANSWER_MS: &str = "200";
/// How long a phone may take from start to an established call.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the switch may take to hang up bob's calls once the last caller has.
const HANG_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the call and conference records may take to be written.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long both calls run before the merge.
const BEFORE_SECONDS: f64 = 2.0;
/// How much of that must be found in each caller's recording (slack for the first and the
/// last window, the merge's own, and a call answered late in a window).
const MIN_BEFORE_SECONDS: f64 = 1.0;
/// How long the merged conference runs before alice hangs up.
const MERGED_SECONDS: f64 = 4.0;
/// How much of that must be found in each caller's recording.
const MIN_MERGED_SECONDS: f64 = 2.0;
/// How long carol stays after alice hung up (the room then has bob twice and carol).
const AFTER_ALICE_SECONDS: f64 = 1.0;
/// Each tone lasts longer than any run (aufile hangs up when its file ends; SIPp stops
/// sending when its capture ends).
const TONE_SECONDS: f64 = 45.0;
/// bob's tone, about -24 dBFS: heard, but 12 dB below the callers' tones.
const BOB_AMPLITUDE: f64 = 2000.0;
/// The callers' tones, about -12 dBFS (as `spectrum::tone`).
const CALLER_AMPLITUDE: f64 = 8000.0;
/// What the CLI prints when it refuses to merge.
const NOT_TWO_CALLS: &str = "does not have exactly two answered calls";

/// The tone each party sends.
trait Tone {
    fn hz(self) -> f64;
    fn amplitude(self) -> f64;
}

impl Tone for Party {
    /// No low-order sum, difference or harmonic of the others lands on one (bob at 900 Hz
    /// would: 1400 - 900 = 500), so what G.711 and the mixer distort never reads as a
    /// party; and none is near the 660/880 Hz entry beep.
    fn hz(self) -> f64 {
        match self {
            Party::Alice => 500.0,
            Party::Bob => 1100.0,
            Party::Carol => 1400.0,
        }
    }

    fn amplitude(self) -> f64 {
        match self {
            Party::Bob => BOB_AMPLITUDE,
            Party::Alice | Party::Carol => CALLER_AMPLITUDE,
        }
    }
}

/// The time now (through `common::deadline`, the tests' one reading of the clock).
fn now() -> Instant {
    deadline(Duration::ZERO)
}

/// A sine of `hz` for `seconds` with peak `amplitude`, at 8 kHz.
fn sine(hz: f64, amplitude: f64, seconds: f64) -> Vec<i16> {
    let rate = f64::from(SAMPLE_RATE);
    (0..(seconds * rate) as usize)
        .map(|i| (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / rate).sin()) as i16)
        .collect()
}

/// What a run left behind.
struct Run {
    env: TestEnv,
    /// Kept running until the checks are done; its `Drop` prints its log on a panic.
    daemon: Daemon,
    /// bob's SIPp, still running if the switch did not hang up its calls.
    bob: SippChild,
    /// What alice and carol received.
    alice_heard: Vec<i16>,
    carol_heard: Vec<i16>,
    /// How long after carol hung up bob's SIPp ended (`None`: not within
    /// [`HANG_UP_TIMEOUT`]).
    bob_hung_up_after: Option<Duration>,
}

/// The CLI's exit status and everything it printed.
fn merge(env: &TestEnv, extension: &str) -> (bool, String) {
    let started = now();
    let out = env.cli_output(&["conference", "merge", TENANT, extension], None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "`conference merge {TENANT} {extension}` took {:?}: {}",
        now() - started,
        text.trim()
    );
    (out.status.success(), text)
}

/// Asserts that the CLI refuses to merge `p`'s calls (it has one, or none).
fn assert_merge_refused(env: &TestEnv, p: Party, calls: &str) {
    let (ok, text) = merge(env, &p.extension());
    assert!(
        !ok && text.contains(NOT_TWO_CALLS),
        "merging {} ({calls}) must fail with \"{NOT_TWO_CALLS}\": exit ok = {ok}, output: {text}",
        p.username()
    );
}

/// Runs the calls: bob registers and waits; alice calls him, then carol; after
/// [`BEFORE_SECONDS`] a merge for alice is refused and bob's is made; after
/// [`MERGED_SECONDS`] alice hangs up, [`AFTER_ALICE_SECONDS`] later carol, and bob's SIPp
/// should end on the switch's BYEs.
fn run() -> Run {
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.provision(&[Party::Alice, Party::Bob, Party::Carol].map(Party::user));
    let daemon = env.start();

    let bob_tone = sine(Party::Bob.hz(), Party::Bob.amplitude(), TONE_SECONDS);
    write_pcmu_pcap(&env.path().join(BOB_PCAP), &bob_tone);
    let bob_phone = Phone::register(&env, &daemon, &Party::Bob.user());
    let opts = SippOptions::new()
        .local(IpAddr::V4(Ipv4Addr::LOCALHOST), Some(bob_phone.port))
        .auth_uri(None)
        .timeout(BOB_TIMEOUT)
        .calls(2)
        .var("answer_ms", BOB_ANSWER_MS);
    let mut bob = spawn_sipp(&env, BOB_SCENARIO, None, &opts);
    wait_udp_bound(&mut bob, bob_phone.port, Duration::from_secs(10));

    let dir = env.path().join("baresip");
    std::fs::create_dir_all(&dir).expect("create the baresip dir");
    let caller = |p: Party| {
        let wav = dir.join(format!("{}-sends.wav", p.username()));
        write_wav(&wav, &sine(p.hz(), p.amplitude(), TONE_SECONDS));
        Baresip::start(
            &dir,
            &PhoneSetup {
                user: p.user(),
                proxy: daemon.phones_udp(),
                source_wav: wav,
                codecs: "PCMU,PCMA".to_owned(),
                auto_answer: false,
                dial: Some(Party::Bob.extension()),
            },
        )
    };
    let established = |l: &str| l.contains("Call established");
    let mut alice = caller(Party::Alice);
    alice.wait_for("established call to bob", SETUP_TIMEOUT, established);
    let mut carol = caller(Party::Carol);
    carol.wait_for("established call to bob", SETUP_TIMEOUT, established);
    thread::sleep(Duration::from_secs_f64(BEFORE_SECONDS));

    // alice has one answered call: nothing to merge, and both calls go on.
    assert_merge_refused(&env, Party::Alice, "one call");
    let (ok, text) = merge(&env, &Party::Bob.extension());
    let bob_user = Party::Bob.user();
    let expected = format!(
        "calls of user {:?} (extension {}) merged into one conference",
        bob_user.name, bob_user.extension
    );
    assert!(
        ok && text.contains(&expected),
        "merging bob's two calls: expected \"{expected}\", exit ok = {ok}, output: {text}"
    );
    thread::sleep(Duration::from_secs_f64(MERGED_SECONDS));

    alice.stop();
    thread::sleep(Duration::from_secs_f64(AFTER_ALICE_SECONDS));
    carol.stop();
    let carol_gone = now();
    let end = deadline(HANG_UP_TIMEOUT);
    while !bob.has_exited() && now() < end {
        thread::sleep(Duration::from_millis(50));
    }
    let bob_hung_up_after = bob.has_exited().then(|| now() - carol_gone);
    Run {
        alice_heard: alice.recording("-dec.wav"),
        carol_heard: carol.recording("-dec.wav"),
        env,
        daemon,
        bob,
        bob_hung_up_after,
    }
}

/// What one caller's recording shows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Heard {
    /// Windows before the other caller is first heard in which bob is heard, well above
    /// the other caller and the caller itself.
    before: usize,
    /// Windows from the first to the last where the other caller is heard.
    merged: usize,
    /// The loudest the caller hears itself in those, relative to the other caller (dB,
    /// negative).
    own_margin: f64,
}

/// Checks one caller's recording (`own`: its tone, `other`: the other caller's, `bob`:
/// bob's): the other caller is first heard after at least `min_before` windows in which
/// bob is heard [`MIN_SEPARATION_DB`] above the other caller and the caller itself; from
/// that window to the last where the other caller is heard, it is heard in every window
/// (at least `min_merged` of them), the caller's own tone [`MIN_SEPARATION_DB`] below.
/// The last window, which the hang-up may cut, is left out.
fn merge_heard(
    rec: &[i16],
    own: f64,
    other: f64,
    bob: f64,
    min_before: usize,
    min_merged: usize,
) -> Result<Heard, String> {
    let all = window_levels(rec, &[other, bob, own]);
    let levels = &all[..all.len().saturating_sub(1)];
    let seconds = |i: usize| (i * WINDOW_SAMPLES) as f64 / f64::from(SAMPLE_RATE);
    let first = levels
        .iter()
        .position(|l| l[0] > MIN_HEARD_DBFS)
        .ok_or("the other caller is never heard")?;
    let before = levels[..first]
        .iter()
        .filter(|l| l[1] > MIN_HEARD_DBFS && l[1] - l[0].max(l[2]) >= MIN_SEPARATION_DB)
        .count();
    if before < min_before {
        return Err(format!(
            "the other caller is heard from {:.1} s, after {before} window(s) of bob alone; \
             expected {min_before} (levels before: {:?})",
            seconds(first),
            &levels[..first]
        ));
    }
    if let Some(i) = levels[..first]
        .iter()
        .position(|l| l[2] > MIN_HEARD_DBFS && l[2] > l[1] - MIN_SEPARATION_DB)
    {
        return Err(format!(
            "before the merge, at {:.1} s, it hears itself at {:.1} dB (bob {:.1} dB)",
            seconds(i),
            levels[i][2],
            levels[i][1]
        ));
    }
    let last = levels
        .iter()
        .rposition(|l| l[0] > MIN_HEARD_DBFS)
        .unwrap_or(first);
    let mut own_margin = f64::NEG_INFINITY;
    for (i, l) in levels.iter().enumerate().take(last + 1).skip(first) {
        if l[0] <= MIN_HEARD_DBFS {
            return Err(format!(
                "the other caller is not heard in the window at {:.1} s ({:.1} dB), heard \
                 from {:.1} s to {:.1} s",
                seconds(i),
                l[0],
                seconds(first),
                seconds(last)
            ));
        }
        if l[0] - l[2] < MIN_SEPARATION_DB {
            return Err(format!(
                "at {:.1} s it hears itself at {:.1} dB, the other caller at {:.1} dB",
                seconds(i),
                l[2],
                l[0]
            ));
        }
        own_margin = own_margin.max(l[2] - l[0]);
    }
    let merged = last + 1 - first;
    if merged < min_merged {
        return Err(format!(
            "the other caller is heard in {merged} window(s) from {:.1} s; expected {min_merged}",
            seconds(first)
        ));
    }
    Ok(Heard {
        before,
        merged,
        own_margin,
    })
}

/// Windows in `seconds` of audio.
fn windows(seconds: f64) -> usize {
    (seconds * f64::from(SAMPLE_RATE)) as usize / WINDOW_SAMPLES
}

/// Before the merge each caller hears bob and not the other; after it, each hears the
/// other and not itself.
fn assert_heard(run: &Run) {
    for (me, rec, other) in [
        (Party::Alice, &run.alice_heard, Party::Carol),
        (Party::Carol, &run.carol_heard, Party::Alice),
    ] {
        let heard = merge_heard(
            rec,
            me.hz(),
            other.hz(),
            Party::Bob.hz(),
            windows(MIN_BEFORE_SECONDS),
            windows(MIN_MERGED_SECONDS),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{} ({} windows): {e}",
                me.username(),
                rec.len() / WINDOW_SAMPLES
            )
        });
        eprintln!(
            "{} hears bob alone for {} windows, then {} for {} windows, itself at most {:.1} dB \
             below",
            me.username(),
            heard.before,
            other.username(),
            heard.merged,
            -heard.own_margin
        );
    }
}

/// bob's SIPp ended on the switch's BYEs soon after carol hung up, both calls fine.
fn assert_bob_hung_up(run: Run) -> (TestEnv, Daemon) {
    let Run {
        env,
        daemon,
        bob,
        bob_hung_up_after,
        ..
    } = run;
    let Some(after) = bob_hung_up_after else {
        panic!(
            "bob's two calls were not hung up within {HANG_UP_TIMEOUT:?} of the last caller \
             hanging up (alice first, then carol): only bob's own two legs are left in the \
             conference\n{}",
            bob.diagnostics()
        );
    };
    eprintln!("bob's SIPp ended {after:?} after carol hung up");
    bob.wait().assert_success(BOB_SCENARIO);
    (env, daemon)
}

/// Waits for `conference log` to show a conference and returns the output and the parse.
fn conference_log(env: &TestEnv) -> (String, Vec<LoggedConference>) {
    let end = deadline(LOG_TIMEOUT);
    loop {
        let out = env.cli(&["conference", "log", TENANT], None);
        let conferences = parse_conference_log(&out);
        if !conferences.is_empty() || now() >= end {
            return (out, conferences);
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// One ad-hoc conference of four: alice and carol once each (both hung up themselves,
/// "left"), bob once per call; nobody leaves before joining, alice before carol.
fn assert_conference_logged(env: &TestEnv) {
    let (out, conferences) = conference_log(env);
    eprintln!("conference log:\n{out}");
    let [conference] = conferences.as_slice() else {
        panic!("one conference in the log:\n{out}");
    };
    assert!(
        conference.summary.contains("  ad hoc  ")
            && conference.summary.ends_with("4 participant(s)"),
        "an ad-hoc conference of four: {}",
        conference.summary
    );
    assert_eq!(conference.participants.len(), 4, "{out}");
    let rows = |p: Party| -> Vec<_> {
        conference
            .participants
            .iter()
            .filter(|r| r.user == p.extension())
            .collect()
    };
    for (p, n) in [(Party::Alice, 1), (Party::Bob, 2), (Party::Carol, 1)] {
        let rows = rows(p);
        assert_eq!(
            rows.len(),
            n,
            "{} (user {}) {n} time(s):\n{out}",
            p.username(),
            p.extension()
        );
        for r in rows {
            assert!(p.named_in(&r.number), "{}'s number: {r:?}", p.username());
            // `YYYY-MM-DD HH:MM:SS` in one zone: the text orders like the time.
            assert!(
                r.joined <= r.left,
                "{} left before joining: {r:?}",
                p.username()
            );
        }
    }
    // Alice hangs up first: bob's leg of her call then leads nowhere (bob stays on his
    // other leg) and the switch hangs it up; carol and bob are the two legs of one call
    // and go back to a plain call, which ends the conference with both in it.
    let (alice, carol) = (rows(Party::Alice)[0], rows(Party::Carol)[0]);
    assert_eq!(alice.ended, "left", "alice hung up: {alice:?}");
    assert_eq!(
        carol.ended, "room-ended",
        "carol was back in a plain call with bob: {carol:?}"
    );
    let mut bob_ends: Vec<&str> = rows(Party::Bob).iter().map(|r| r.ended.as_str()).collect();
    bob_ends.sort();
    assert_eq!(
        bob_ends,
        ["left", "room-ended"],
        "bob's leg of alice's call was hung up, his leg of carol's call went back to a plain call"
    );
    assert!(
        alice.left <= carol.left,
        "alice left first: {alice:?} {carol:?}"
    );
}

/// Two calls in the call log, alice's and carol's to bob, internal and answered by bob.
fn assert_calls_logged(env: &TestEnv) {
    let end = deadline(LOG_TIMEOUT);
    let (out, rows) = loop {
        let out = env.cli(&["calls", "list", "--tenant", TENANT], None);
        let rows = parse_call_log(&out);
        if rows.len() >= 2 || now() >= end {
            break (out, rows);
        }
        thread::sleep(Duration::from_millis(200));
    };
    eprintln!("call log:\n{out}");
    assert_eq!(rows.len(), 2, "alice's and carol's calls to bob:\n{out}");
    for caller in [Party::Alice, Party::Carol] {
        let row = rows
            .iter()
            .find(|r| caller.named_in(&r.caller))
            .unwrap_or_else(|| panic!("a call from {} in the call log:\n{out}", caller.username()));
        assert!(
            row.callee.contains(&Party::Bob.extension()),
            "{} called bob: {row:?}",
            caller.username()
        );
        assert_eq!(
            (row.direction.as_str(), row.outcome.as_str()),
            ("internal", "answered"),
            "{}'s call: {row:?}",
            caller.username()
        );
        assert!(
            row.answered_by.contains(&Party::Bob.extension()),
            "{}'s call answered by bob: {row:?}",
            caller.username()
        );
    }
}

/// bob's two answered calls are merged: alice and carol hear each other through the
/// room; the records show one conference of four and two answered calls.
#[test]
fn the_cli_merges_a_users_two_calls_into_one_conference() {
    let test = "the_cli_merges_a_users_two_calls_into_one_conference";
    if !baresip_enabled(test) || !sipp_enabled(test) {
        return;
    }
    let started = now();
    let run = run();
    assert_heard(&run);
    let (env, daemon) = assert_bob_hung_up(run);
    assert_conference_logged(&env);
    assert_calls_logged(&env);
    // bob has no call left: nothing to merge.
    assert_merge_refused(&env, Party::Bob, "no call");
    eprintln!("the whole test took {:?}", now() - started);
    drop(daemon);
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

fn alice_tone(seconds: f64) -> Vec<i16> {
    sine(Party::Alice.hz(), CALLER_AMPLITUDE, seconds)
}

fn bob_tone(seconds: f64) -> Vec<i16> {
    sine(Party::Bob.hz(), BOB_AMPLITUDE, seconds)
}

fn carol_tone(seconds: f64) -> Vec<i16> {
    sine(Party::Carol.hz(), CALLER_AMPLITUDE, seconds)
}

/// What alice records: bob alone for `before` s, then `merged`.
fn alice_hears(before: f64, merged: &[i16]) -> Vec<i16> {
    let mut rec = bob_tone(before);
    rec.extend_from_slice(merged);
    rec
}

fn alice_heard(rec: &[i16]) -> Result<Heard, String> {
    merge_heard(
        rec,
        Party::Alice.hz(),
        Party::Carol.hz(),
        Party::Bob.hz(),
        2,
        4,
    )
}

#[test]
fn merge_heard_finds_bob_then_the_other_caller() {
    let rec = alice_hears(1.5, &mix(&[&bob_tone(3.0), &carol_tone(3.0)]));
    let heard = alice_heard(&rec).expect("a good recording");
    // 3 windows of bob; 6 of carol, the last one left out.
    assert_eq!((heard.before, heard.merged), (3, 5));
    assert!(heard.own_margin < -MIN_SEPARATION_DB, "{heard:?}");
}

#[test]
fn merge_heard_fails_when_the_other_caller_is_heard_from_the_start() {
    let rec = mix(&[&bob_tone(4.0), &carol_tone(4.0)]);
    let err = alice_heard(&rec).expect_err("carol heard before the merge");
    assert!(err.contains("after 0 window(s) of bob alone"), "{err}");
}

#[test]
fn merge_heard_fails_when_the_other_caller_is_never_heard() {
    let err = alice_heard(&bob_tone(4.0)).expect_err("no merge");
    assert!(err.contains("never heard"), "{err}");
}

#[test]
fn merge_heard_fails_when_a_caller_hears_itself() {
    let merged = mix(&[&carol_tone(3.0), &alice_tone(3.0)]);
    let err = alice_heard(&alice_hears(1.5, &merged)).expect_err("an echo");
    assert!(err.contains("hears itself"), "{err}");
    let before = mix(&[&bob_tone(1.5), &alice_tone(1.5)]);
    let mut rec = before;
    rec.extend(carol_tone(3.0));
    let err = alice_heard(&rec).expect_err("an echo before the merge");
    assert!(err.contains("window(s) of bob alone"), "{err}");
}

#[test]
fn merge_heard_fails_on_a_silent_half_second() {
    let mut merged = carol_tone(1.0);
    merged.extend(vec![0i16; WINDOW_SAMPLES]);
    merged.extend(carol_tone(2.0));
    let err = alice_heard(&alice_hears(1.5, &merged)).expect_err("a gap");
    assert!(err.contains("not heard in the window at 2.5 s"), "{err}");
}

/// The RTP packets of a pcap as [`write_pcmu_pcap`] writes it (Ethernet, IPv4 without
/// options, UDP): (payload type, sequence number, timestamp, payload).
fn read_rtp_pcap(data: &[u8]) -> Vec<(u8, u16, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 24;
    while let Some(record) = data.get(off..off + 16) {
        let len = u32::from_le_bytes([record[8], record[9], record[10], record[11]]) as usize;
        let frame = &data[off + 16..off + 16 + len];
        off += 16 + len;
        let rtp = &frame[14 + 20 + 8..];
        out.push((
            rtp[1] & 0x7f,
            u16::from_be_bytes([rtp[2], rtp[3]]),
            u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
            rtp[12..].to_vec(),
        ));
    }
    out
}

#[test]
fn the_pcap_holds_the_tone_in_pcmu_packets_of_20_ms() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(BOB_PCAP);
    let tone = bob_tone(1.0);
    write_pcmu_pcap(&path, &tone);
    let data = std::fs::read(&path).expect("read the pcap");
    assert_eq!(&data[..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
    let packets = read_rtp_pcap(&data);
    assert_eq!(packets.len(), tone.len() / PACKET_SAMPLES);
    let mut decoded = Vec::new();
    for (i, (pt, seq, ts, payload)) in packets.iter().enumerate() {
        assert_eq!((*pt, *seq, *ts), (0, i as u16, (i * PACKET_SAMPLES) as u32));
        assert_eq!(payload.len(), PACKET_SAMPLES);
        decoded.extend(payload.iter().map(|&u| g711::ulaw_to_linear(u)));
    }
    // bob's tone, about -24 dBFS, and nothing at the callers' frequencies.
    let bob = level_db(&decoded, Party::Bob.hz());
    assert!((bob + 24.3).abs() < 0.5, "bob's tone at {bob:.1} dB");
    assert!(level_db(&decoded, Party::Alice.hz()) < MIN_HEARD_DBFS);
}
