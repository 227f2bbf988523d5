//! Black-box media tests: SIPp phones around the real daemon, with the callee's RTP
//! going to a socket of the test's own, so the test sees exactly what sentralbord
//! relays (`phone_answer_rtp.xml` writes that socket into its SDP answer).
//!
//! - The caller (`call_caller_audio.xml`) offers PCMA and plays SIPp's `g711a.pcap`
//!   (236 packets, 30 ms each), then the RFC 4733 digit 1 (`dtmf_2833_1.pcap`).
//! - The callee answers PCMU: sentralbord must transcode, keep one continuous RTP
//!   stream, map the telephone-event payload type, detect the digit, and log the call
//!   with its media statistics.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::calls::{caller_options, caller_vars, CallLogRow, Phone, CALL_TIMEOUT};
use common::{
    deadline, run_sipp_with, sipp_enabled, Daemon, SippChild, SippRun, TestEnv, User,
    MD5_FIRST_PROFILE_LINES, TENANT,
};
use sentralbord::media::codec::g711;

/// SIPp's packaged audio (Debian `sip-tester`).
const G711A_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

/// One RTP packet as the test socket received it.
#[derive(Debug, Clone)]
struct Received {
    payload_type: u8,
    seq: u16,
    ssrc: u32,
    payload: Vec<u8>,
}

fn parse_rtp(datagram: &[u8]) -> Option<Received> {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(datagram[0] & 0x0f) * 4;
    let payload = datagram.get(12 + csrc..)?.to_vec();
    Some(Received {
        payload_type: datagram[1] & 0x7f,
        seq: u16::from_be_bytes([datagram[2], datagram[3]]),
        ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
        payload,
    })
}

/// The RTP payloads of a pcap file (Ethernet, IPv4, UDP), in order.
fn pcap_payloads(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("pcap");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let caplen =
            u32::from_le_bytes([data[off + 8], data[off + 9], data[off + 10], data[off + 11]])
                as usize;
        off += 16;
        let Some(frame) = data.get(off..off + caplen) else {
            break;
        };
        off += caplen;
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        if let Some(rtp) = frame.get(14 + ihl + 8..).and_then(parse_rtp) {
            out.push(rtp.payload);
        }
    }
    out
}

/// The RTP port in the first SDP a SIPp trace shows (sentralbord's port in a phone's
/// INVITE).
fn offered_port(trace: &str) -> u16 {
    trace
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio line in:\n{trace}"))
}

/// Receives RTP on a socket of the test's own until stopped.
struct RtpSink {
    port: u16,
    socket: UdpSocket,
    /// Where the first packet came from (sentralbord's port for this leg).
    source: Arc<std::sync::Mutex<Option<std::net::SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<Received>>,
}

impl RtpSink {
    fn start() -> RtpSink {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("rtp socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sender = socket.try_clone().expect("clone");
        let source = Arc::new(std::sync::Mutex::new(None));
        let first = source.clone();
        let thread = thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    if let Ok(mut f) = first.lock() {
                        f.get_or_insert(from);
                    }
                    got.extend(parse_rtp(&buf[..n]));
                }
            }
            got
        });
        RtpSink {
            port,
            socket: sender,
            source,
            stop,
            thread,
        }
    }

    fn finish(self) -> Vec<Received> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sink thread")
    }
}

/// A daemon with alice and bob, anchoring media (the default).
fn start(extra_env: &[(&str, &str)]) -> (TestEnv, Daemon) {
    let mut env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    for (k, v) in extra_env {
        env.set_env(k, v);
    }
    env.provision(&[User::alice(), User::bob()]);
    let daemon = env.start();
    (env, daemon)
}

fn assert_ok(caller: (&str, &SippRun), others: Vec<SippChild>) {
    let mut report = format!(
        "=== {} ({}) ===\n{}\n{}\n",
        caller.0, caller.1.status, caller.1.errors, caller.1.messages
    );
    let mut ok = caller.1.status.success();
    for child in others {
        let name = child.scenario.clone();
        let run = child.wait();
        ok &= run.status.success();
        report.push_str(&format!(
            "=== {name} ({}) ===\n{}\n{}\n",
            run.status, run.errors, run.messages
        ));
    }
    assert!(ok, "SIPp failed:\n{report}");
}

fn the_only_call(env: &TestEnv) -> CallLogRow {
    let end = deadline(Duration::from_secs(5));
    loop {
        let rows = env.call_log(TENANT);
        if !rows.is_empty() || deadline(Duration::ZERO) >= end {
            assert_eq!(rows.len(), 1, "one call: {rows:?}");
            return rows.into_iter().next().expect("row");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Alice sends 7 s of PCMA and the digit 1; bob's far end (the test) answered PCMU.
/// Every packet arrives, transcoded, in one continuous stream; the digit arrives as
/// bob's telephone-event and is detected; the call log shows the media.
#[test]
fn audio_is_relayed_transcoded_and_dtmf_detected() {
    if !sipp_enabled("audio_is_relayed_transcoded_and_dtmf_detected") {
        return;
    }
    let (env, daemon) = start(&[]);
    let sink = RtpSink::start();
    let bob = Phone::register(&env, &daemon, &User::bob());
    let port = sink.port.to_string();
    let phone = bob.answer_with(
        &env,
        "phone_answer_rtp.xml",
        &[
            ("answer_ms", "200"),
            ("rtp_port", &port),
            ("formats", "0 101"),
        ],
    );
    let vars = caller_vars(&User::alice(), "1002");
    let caller = run_sipp_with(
        &env,
        "call_caller_audio.xml",
        Some(daemon.phones_udp()),
        &caller_options(&vars).timeout(CALL_TIMEOUT),
    );
    let phone_trace = {
        let run = phone.wait();
        assert!(run.status.success(), "{}\n{}", run.errors, run.messages);
        run.messages
    };
    assert_ok(("call_caller_audio.xml", &caller), Vec::new());
    let got = sink.finish();

    // Bob was offered sentralbord's port, not alice's (SIPp's media port is 6000+).
    let offered = offered_port(&phone_trace);
    let alices = offered_port(&caller.messages);
    assert_ne!(
        offered, alices,
        "bob is offered sentralbord's port, not alice's"
    );

    let sent = pcap_payloads(G711A_PCAP);
    assert_eq!(sent.len(), 236, "the pcap holds 236 packets");
    let audio: Vec<&Received> = got.iter().filter(|r| r.payload_type == 0).collect();
    let events: Vec<&Received> = got.iter().filter(|r| r.payload_type == 101).collect();
    assert_eq!(
        audio.len(),
        sent.len(),
        "every packet relayed (loopback does not lose any)"
    );
    // PCMA in, PCMU out: the same sound, sample by sample, within one quantisation step.
    for (i, (out, original)) in audio.iter().zip(&sent).enumerate() {
        assert_eq!(out.payload.len(), original.len(), "packet {i}");
        for (u, a) in out.payload.iter().zip(original.iter()) {
            let (lu, la) = (
                i32::from(g711::ulaw_to_linear(*u)),
                i32::from(g711::alaw_to_linear(*a)),
            );
            let step = (la.abs() / 16).max(16);
            assert!((lu - la).abs() <= step, "packet {i}: {lu} vs {la}");
        }
    }
    // One stream: one SSRC, sequence numbers without gaps across audio and events (the
    // pcap repeats its last end-of-event packet as is, and a relay keeps that repeat).
    let ssrc = got[0].ssrc;
    assert!(got.iter().all(|r| r.ssrc == ssrc), "one SSRC");
    for pair in got.windows(2) {
        let repeat = pair[1].seq == pair[0].seq && pair[1].payload == pair[0].payload;
        assert!(
            repeat || pair[1].seq == pair[0].seq.wrapping_add(1),
            "no gap in {pair:?}"
        );
    }
    // The digit 1 reached bob as his telephone-event payload type, and was detected.
    assert!(!events.is_empty(), "telephone-event relayed");
    assert!(events.iter().all(|e| e.payload.first() == Some(&1)));
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("DTMF digit") && l.contains("\"digit\":\"1\"")),
        "the digit is detected:\n{log}"
    );
    let row = the_only_call(&env);
    assert!(row.outcome == "answered", "{row:?}");
    let out = env.cli(&["calls", "list", "--tenant", TENANT], None);
    assert!(
        out.contains("PCMA/PCMU") || out.contains("PCMU/PCMA"),
        "the call log shows both codecs: {out}"
    );
    drop(daemon);
}

/// Nobody sends RTP: after the media timeout (2 s here) the call is hung up on both
/// sides and logged as ended by the media timeout.
#[test]
fn a_call_without_rtp_ends_at_the_media_timeout() {
    if !sipp_enabled("a_call_without_rtp_ends_at_the_media_timeout") {
        return;
    }
    let (env, daemon) = start(&[("SENTRALBORD_MEDIA__TIMEOUT_S", "2")]);
    let bob = Phone::register(&env, &daemon, &User::bob());
    let phone = bob.answer_with(&env, "phone_answer.xml", &[("answer_ms", "100")]);
    let vars = caller_vars(&User::alice(), "1002");
    let caller = run_sipp_with(
        &env,
        "call_caller_hungup.xml",
        Some(daemon.phones_udp()),
        &caller_options(&vars),
    );
    assert_ok(("call_caller_hungup.xml", &caller), vec![phone]);
    let row = the_only_call(&env);
    assert_eq!(row.outcome, "answered", "{row:?}");
    let log = daemon.log();
    assert!(
        log.contains("media timeout"),
        "the media timeout ended the call:\n{log}"
    );
}

/// 600 ms of PCMU from the far end: silence, the key 5 as tones (770 + 1336 Hz, 120 ms),
/// silence.
fn inband_five(ssrc: u32) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for frame in 0..30u32 {
        let mut packet = vec![0x80, 0x00];
        packet.extend_from_slice(&(frame as u16).to_be_bytes());
        packet.extend_from_slice(&(frame * 160).to_be_bytes());
        packet.extend_from_slice(&ssrc.to_be_bytes());
        for i in 0..160u32 {
            let n = f64::from(frame * 160 + i);
            let on = (10..16).contains(&frame);
            let t = n / 8000.0;
            let sample = if on {
                7000.0 * (2.0 * std::f64::consts::PI * 770.0 * t).sin()
                    + 7000.0 * (2.0 * std::f64::consts::PI * 1336.0 * t).sin()
            } else {
                0.0
            };
            packet.push(g711::linear_to_ulaw(sample as i16));
        }
        packets.push(packet);
    }
    packets
}

/// Bob's far end has no telephone-event: the key it plays as tones in its PCMU audio is
/// detected in-band by sentralbord.
#[test]
fn inband_dtmf_from_a_leg_without_telephone_event_is_detected() {
    if !sipp_enabled("inband_dtmf_from_a_leg_without_telephone_event_is_detected") {
        return;
    }
    let (env, daemon) = start(&[]);
    let sink = RtpSink::start();
    let bob = Phone::register(&env, &daemon, &User::bob());
    let port = sink.port.to_string();
    let phone = bob.answer_with(
        &env,
        "phone_answer_rtp.xml",
        &[("answer_ms", "100"), ("rtp_port", &port), ("formats", "0")],
    );
    let vars = caller_vars(&User::alice(), "1002");
    let child = common::spawn_sipp(
        &env,
        "call_caller_audio.xml",
        Some(daemon.phones_udp()),
        &caller_options(&vars).timeout(CALL_TIMEOUT),
    );
    // Alice's audio reaches bob's far end from sentralbord's port for bob's leg; bob's
    // far end answers from its own socket with the key as tones.
    let end = deadline(Duration::from_secs(10));
    let to = loop {
        if let Some(from) = sink.source.lock().ok().and_then(|s| *s) {
            break from;
        }
        assert!(
            deadline(Duration::ZERO) < end,
            "no audio reached bob's far end"
        );
        thread::sleep(Duration::from_millis(20));
    };
    for packet in inband_five(0x1234_5678) {
        sink.socket.send_to(&packet, to).expect("send");
        thread::sleep(Duration::from_millis(20));
    }
    let run = child.wait();
    assert_ok(("call_caller_audio.xml", &run), vec![phone]);
    let _ = sink.finish();
    let log = daemon.log();
    assert!(
        log.lines().any(|l| l.contains("DTMF digit")
            && l.contains("\"digit\":\"5\"")
            && l.contains("Inband")),
        "the key 5 is detected in-band:\n{log}"
    );
}

/// Bob talks (7 s of PCMA), puts alice on hold for 2 s and takes her back. While held,
/// alice hears music on hold from sentralbord; before and after, bob. Her far end (the
/// test) sees one continuous RTP stream throughout: one SSRC, no sequence gap, and the
/// music's 20 ms frames between bob's 30 ms packets.
#[test]
fn a_held_party_hears_music_on_hold_in_one_continuous_stream() {
    if !sipp_enabled("a_held_party_hears_music_on_hold_in_one_continuous_stream") {
        return;
    }
    let (env, daemon) = start(&[]);
    let sink = RtpSink::start();
    let bob = Phone::register(&env, &daemon, &User::bob());
    let phone = bob.answer_with(
        &env,
        "phone_hold_resume.xml",
        &[
            ("answer_ms", "100"),
            ("talk_ms", "2000"),
            ("held_ms", "2000"),
        ],
    );
    let mut vars = caller_vars(&User::alice(), "1002");
    vars.push(("talk_ms".to_owned(), "7500".to_owned()));
    vars.push(("rtp_port".to_owned(), sink.port.to_string()));
    let caller = run_sipp_with(
        &env,
        "call_caller_sink.xml",
        Some(daemon.phones_udp()),
        &caller_options(&vars).timeout(CALL_TIMEOUT),
    );
    assert_ok(("call_caller_sink.xml", &caller), vec![phone]);
    let got = sink.finish();
    // Bob's packets carry 30 ms (240 bytes), the music 20 ms frames (160 bytes).
    let kinds: Vec<usize> = got.iter().map(|r| r.payload.len()).collect();
    let first_music = kinds.iter().position(|&n| n == 160).expect("music on hold");
    let last_music = kinds
        .iter()
        .rposition(|&n| n == 160)
        .expect("music on hold");
    assert!(
        kinds[..first_music].iter().filter(|&&n| n == 240).count() > 30,
        "bob is heard before the hold: {kinds:?}"
    );
    assert!(
        kinds[last_music..].iter().filter(|&&n| n == 240).count() > 30,
        "bob is heard again after the hold: {kinds:?}"
    );
    assert!(
        last_music - first_music > 60,
        "about two seconds of music: {kinds:?}"
    );
    let music_energy: u64 = got[first_music..=last_music]
        .iter()
        .filter(|r| r.payload.len() == 160)
        .flat_map(|r| r.payload.iter())
        .map(|&b| u64::from(g711::ulaw_to_linear(b).unsigned_abs()))
        .sum();
    assert!(music_energy > 0, "the music is not silence");
    let ssrc = got[0].ssrc;
    assert!(got.iter().all(|r| r.ssrc == ssrc), "one SSRC");
    for pair in got.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "no gap in {pair:?}"
        );
    }
}
