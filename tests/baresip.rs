//! Black-box audio tests with real phones: baresip (alice, 1001) calls baresip (bob, 1002)
//! through the daemon, which anchors the media (and transcodes when the two sides chose
//! different codecs). Each phone sends a WAV file and records what it receives; the test
//! compares sent and received audio by normalised cross-correlation (G.711 is lossy, so
//! never byte for byte) and reads the call log's MEDIA cell.
//!
//! - alice sends a 3 s rising chirp; when the file ends, her baresip hangs up.
//! - bob answers by himself and sends a 6 s falling chirp (longer than the call, so it is
//!   alice who hangs up).
//!
//! Needs Debian's `baresip-core` (scripts/test.sh installs it); without it the tests are
//! skipped visibly, except in CI (see `baresip_enabled`).

mod common;

use std::thread;
use std::time::Duration;

use common::baresip::{
    baresip_enabled, best_correlation, chirp, media_cells, parse_media_cell, samples, write_wav,
    Baresip, Correlation, CrossCorrelation, MediaCell, PhoneSetup,
};
use common::{deadline, Daemon, TestEnv, User, MD5_FIRST_PROFILE_LINES, TENANT};
use sentralbord::media::codec::g711;

/// How long alice's audio lasts, and so the call.
const ALICE_SECONDS: f64 = 3.0;
/// How long bob's audio lasts (longer than the call).
const BOB_SECONDS: f64 = 6.0;
/// How long alice may take from start to an established call.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the call may last once established (alice's file, plus slack).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// G.711 both ways (and PCMA<->PCMU in the relay) keeps the waveform: well above this.
const MIN_CORRELATION: f64 = 0.9;
/// A different signal does not match: a sanity check on the measure itself.
const MAX_UNRELATED_CORRELATION: f64 = 0.3;
/// How much of the start or end of a direction's audio may be missing (call setup and
/// the BYE cut the edges).
const EDGE_SLACK_SECONDS: f64 = 0.5;

fn alice_signal() -> Vec<i16> {
    chirp(200.0, 3400.0, ALICE_SECONDS, 3.0, 8000.0)
}

fn bob_signal() -> Vec<i16> {
    chirp(3000.0, 300.0, BOB_SECONDS, 2.0, 8000.0)
}

/// Where `received` best matches `sent`: received may lack up to 1 s of sent's start,
/// or start up to 0.25 s early; at least `min_seconds` must overlap.
fn correlate(sent: &[i16], received: &[i16], min_seconds: f64) -> Option<Correlation> {
    best_correlation(
        sent,
        received,
        -(samples(0.25) as isize),
        samples(1.0) as isize,
        samples(min_seconds),
    )
}

/// A daemon with alice and bob; MD5 challenges only (baresip 1.0.0's digest is MD5 only:
/// a SHA-256 challenge first makes its REGISTER fail with "Function not implemented").
fn start_daemon() -> (TestEnv, Daemon) {
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.provision(&[User::alice(), User::bob()]);
    let daemon = env.start();
    (env, daemon)
}

/// What each phone received and decoded (its sndfile `*-dec.wav`).
struct Heard {
    /// What bob received from alice.
    by_bob: Vec<i16>,
    /// What alice received from bob.
    by_alice: Vec<i16>,
}

/// alice (offering `alice_codecs`) calls bob (accepting `bob_codecs`); both hang up;
/// returns what each received.
fn call(env: &TestEnv, daemon: &Daemon, alice_codecs: &str, bob_codecs: &str) -> Heard {
    let dir = env.path().join("baresip");
    std::fs::create_dir_all(&dir).expect("create the baresip dir");
    let (alice_wav, bob_wav) = (dir.join("alice-sends.wav"), dir.join("bob-sends.wav"));
    write_wav(&alice_wav, &alice_signal());
    write_wav(&bob_wav, &bob_signal());

    let mut bob = Baresip::start(
        &dir,
        &PhoneSetup {
            user: User::bob(),
            proxy: daemon.phones_udp(),
            source_wav: bob_wav,
            codecs: bob_codecs.to_owned(),
            auto_answer: true,
            dial: None,
        },
    );
    bob.wait_registered();
    let mut alice = Baresip::start(
        &dir,
        &PhoneSetup {
            user: User::alice(),
            proxy: daemon.phones_udp(),
            source_wav: alice_wav,
            codecs: alice_codecs.to_owned(),
            auto_answer: false,
            dial: Some(User::bob().extension),
        },
    );
    let established = |l: &str| l.contains("Call established");
    alice.wait_for("established call", SETUP_TIMEOUT, established);
    bob.wait_for("established call", SETUP_TIMEOUT, established);
    // alice's file ends, her baresip hangs up (BYE through the daemon to bob).
    let terminated = |l: &str| l.contains("terminated");
    alice.wait_for("end of the call", CALL_TIMEOUT, terminated);
    bob.wait_for("end of the call", CALL_TIMEOUT, terminated);
    // SIGTERM lets sndfile close (and so finish) its WAV files.
    alice.stop();
    bob.stop();
    Heard {
        by_bob: bob.recording("-dec.wav"),
        by_alice: alice.recording("-dec.wav"),
    }
}

/// Checks one direction: `received` is `sent` (from its start, less `EDGE_SLACK_SECONDS`
/// at either edge, over at least `min_seconds`) and not `unrelated`.
fn assert_heard(
    direction: &str,
    sent: &[i16],
    received: &[i16],
    unrelated: &[i16],
    min_seconds: f64,
) {
    let seconds = |n: usize| n as f64 / f64::from(common::baresip::SAMPLE_RATE);
    assert!(
        seconds(received.len()) >= min_seconds,
        "{direction}: {:.2} s of audio received, expected at least {min_seconds:.2} s",
        seconds(received.len())
    );
    let found = correlate(sent, received, min_seconds)
        .unwrap_or_else(|| panic!("{direction}: no overlap of {min_seconds} s at any lag"));
    eprintln!(
        "{direction}: correlation {:.5} at lag {} samples over {:.2} s ({:.2} s received)",
        found.value,
        found.lag,
        seconds(found.overlap),
        seconds(received.len())
    );
    assert!(
        found.value >= MIN_CORRELATION,
        "{direction}: the received audio is not what was sent: {found:?}"
    );
    assert!(
        seconds(found.lag.unsigned_abs()) <= EDGE_SLACK_SECONDS,
        "{direction}: {:.2} s of the start missing: {found:?}",
        seconds(found.lag.unsigned_abs())
    );
    let other = correlate(unrelated, received, min_seconds).map_or(0.0, |c| c.value);
    eprintln!("{direction}: correlation with the other side's own audio {other:.5}");
    assert!(
        other < MAX_UNRELATED_CORRELATION,
        "{direction}: the received audio also matches the other signal ({other})"
    );
}

/// The call log's one row, once its media statistics are in (they come up to
/// `MEDIA_STATS_WAIT` after the call): outcome and MEDIA cell.
fn logged_call(env: &TestEnv) -> (String, MediaCell) {
    let end = deadline(Duration::from_secs(10));
    loop {
        let out = env.cli(&["calls", "list", "--tenant", TENANT], None);
        let rows = common::calls::parse_call_log(&out);
        let cells = media_cells(&out);
        if let ([row], [cell]) = (rows.as_slice(), cells.as_slice()) {
            if let Some(media) = parse_media_cell(cell) {
                return (row.outcome.clone(), media);
            }
        }
        assert!(
            deadline(Duration::ZERO) < end,
            "one call with a MEDIA cell in the call log:\n{out}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn assert_logged(env: &TestEnv, codecs: &[&str]) {
    let (outcome, media) = logged_call(env);
    eprintln!("call log: {outcome}, MEDIA {media:?}");
    assert_eq!(outcome, "answered");
    assert_eq!(media.codecs, codecs, "codecs in the MEDIA cell: {media:?}");
    assert!(
        media.loss_percent <= 1.0,
        "loopback loses nothing: {media:?}"
    );
    assert!(media.jitter_ms < 30.0, "loopback jitter: {media:?}");
}

fn run(test: &str, alice_codecs: &str, bob_codecs: &str, logged_codecs: &[&str]) {
    if !baresip_enabled(test) {
        return;
    }
    let (env, daemon) = start_daemon();
    let heard = call(&env, &daemon, alice_codecs, bob_codecs);
    let (alice_sent, bob_sent) = (alice_signal(), bob_signal());
    let sent_seconds = ALICE_SECONDS - EDGE_SLACK_SECONDS;
    assert_heard(
        "alice -> bob",
        &alice_sent,
        &heard.by_bob,
        &bob_sent,
        sent_seconds,
    );
    assert!(
        heard.by_bob.len() <= samples(ALICE_SECONDS + EDGE_SLACK_SECONDS),
        "bob received more than alice sent: {} samples",
        heard.by_bob.len()
    );
    // The call lasts as long as alice's audio: bob's longer audio is cut there.
    assert_heard(
        "bob -> alice",
        &bob_sent,
        &heard.by_alice,
        &alice_sent,
        sent_seconds,
    );
    assert_logged(&env, logged_codecs);
    drop(daemon);
}

/// Both phones choose PCMU: the daemon relays the audio as it is, both ways.
#[test]
fn baresip_calls_baresip_and_audio_arrives_both_ways() {
    run(
        "baresip_calls_baresip_and_audio_arrives_both_ways",
        "PCMU,PCMA",
        "PCMU,PCMA",
        &["PCMU"],
    );
}

/// alice speaks PCMA only, bob PCMU only: the daemon transcodes both ways and the audio
/// still matches.
#[test]
fn baresip_pcma_calls_baresip_pcmu_and_audio_is_transcoded_both_ways() {
    run(
        "baresip_pcma_calls_baresip_pcmu_and_audio_is_transcoded_both_ways",
        "PCMA",
        "PCMU",
        &["PCMA", "PCMU"],
    );
}

/// The measure itself, without baresip: a G.711 round trip of the chirp, delayed, is
/// found at its lag with a correlation near 1; the other chirp is not.
#[test]
fn correlation_finds_a_delayed_g711_copy_and_rejects_another_signal() {
    let sent = alice_signal();
    let mut coded = vec![0u8; sent.len()];
    g711::encode_alaw(&sent, &mut coded);
    g711::alaw_to_ulaw_in_place(&mut coded);
    let mut decoded = vec![0i16; coded.len()];
    g711::decode_ulaw(&coded, &mut decoded);
    // 100 ms of silence first, then the copy, less its first 37 samples.
    let mut received = vec![0i16; 800];
    received.extend_from_slice(&decoded[37..]);
    let found = best_correlation(&sent, &received, -1000, 1000, samples(2.0)).expect("overlap");
    assert_eq!(found.lag, 37 - 800);
    assert!(found.value > 0.99, "{found:?}");

    let other =
        best_correlation(&bob_signal(), &received, -1000, 1000, samples(2.0)).expect("overlap");
    assert!(other.value < MAX_UNRELATED_CORRELATION, "{other:?}");

    // The FFT's sums are the direct sums, at both signs of lag and past the ends.
    let dots = CrossCorrelation::new(&sent, &received);
    for lag in [-900isize, -763, -1, 0, 1, 500, 23_999, 24_000, 30_000] {
        let direct: f64 = (0..received.len() as isize)
            .filter_map(|i| {
                let s = sent.get(usize::try_from(i + lag).ok()?)?;
                Some(f64::from(received[i as usize]) * f64::from(*s))
            })
            .sum();
        let tolerance = 1e-6 * direct.abs().max(1.0);
        assert!((dots.at(lag) - direct).abs() <= tolerance, "lag {lag}");
    }

    // Silence matches nothing (no division by zero).
    assert_eq!(
        best_correlation(&sent, &[0; 16000], -10, 10, 100),
        None,
        "silence"
    );
}
