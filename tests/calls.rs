//! Black-box call tests: SIPp plays phones and the carrier around the real daemon.
//!
//! - A phone that must ring registers with `register_md5.xml` from a fixed UDP port, then a
//!   UAS scenario (`phone_*.xml`) answers on that same port: the daemon sends INVITEs to the
//!   flow a binding was registered from. Registration is complete when the first SIPp exits
//!   0 (the daemon answers 200 only after applying the binding), so no polling is needed.
//! - The calling phone runs a UAC scenario (`call_caller_*.xml`): INVITE, 407 with an MD5
//!   challenge (the phones profile offers MD5 only, see [`MD5_FIRST_PROFILE_LINES`]),
//!   INVITE with Proxy-Authorization, then the case under test.
//! - The carrier is a UAC sending from a trusted address to the trunk listener
//!   (`carrier_call*.xml`) and, for a user's mobile, a UAS at the trunk profile's
//!   `outbound_proxy` (`carrier_mobile_*.xml`).
//!
//! Each call that reaches a user is then checked in the call log as an operator reads it
//! (`sentralbord calls list --tenant acme`): direction, outcome, talk time, parties, who
//! answered.
//!
//! Every SIPp run is bounded (`-m 1`, `-timeout`, a hard kill after); on failure the test
//! prints both sides' SIPp message traces and the daemon's log.
//! `SENTRALBORD_SKIP_SIPP=1` skips these tests with a printed notice;
//! `SENTRALBORD_TEST_VERBOSE=1` prints every side's SIPp trace even when a test passes.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

use common::calls::{
    caller_options, caller_vars, parse_trace, trunk_profile, uas, CallLogRow, Phone, CALL_TIMEOUT,
};
use common::{
    deadline, free_udp_port, run_sipp_with, sipp_enabled, Daemon, SippChild, SippOptions, SippRun,
    TestEnv, User, MD5_FIRST_PROFILE_LINES, TENANT,
};

/// How long the call log may take to show a call after both SIPp sides finished.
const CALL_LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// The user number the trunk tests call (a tenant number of kind `user` that is also
/// the called user's mobile).
const USER_NUMBER: &str = "+4721000001";
/// The same number as the carrier dials it nationally (normalised with country code 47).
const USER_NUMBER_NATIONAL: &str = "21000001";
/// The calling party on trunk calls.
const CARRIER_CALLER: &str = "+4799887766";

/// How long a phone rings before answering, or a caller lets it ring before giving up
/// (milliseconds, a SIPp `pause variable`).
const RING_MS: &str = "300";
/// How long an answered call lasts before someone hangs up (milliseconds).
const TALK_MS: &str = "300";

/// A running daemon whose phones profile offers MD5 only (for SIPp), provisioned with
/// tenant [`TENANT`], alice (1001) and bob (1002).
struct Switch {
    env: TestEnv,
    daemon: Daemon,
}

impl Switch {
    /// Phones profile for SIPp, default trunk profile, alice and bob.
    fn start() -> Switch {
        let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
        env.provision(&[User::alice(), User::bob()]);
        let daemon = env.start();
        Switch { env, daemon }
    }

    /// Phones profile for SIPp and a trunk profile trusting `trusted`, sending calls to
    /// the carrier at `carrier`; tenant [`TENANT`] owns [`USER_NUMBER`], which is bob's
    /// mobile (so a trunk call to it rings bob's phones and his mobile).
    fn start_with_trunk(trusted: &[&str], carrier: Option<SocketAddr>) -> Switch {
        let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
        env.write_profile("trunk.toml", &trunk_profile(trusted, carrier));
        env.add_tenant(TENANT);
        env.add_user(&User::alice());
        env.add_user_with_mobile(&User::bob(), USER_NUMBER);
        env.add_number(TENANT, USER_NUMBER, "user");
        let daemon = env.start();
        Switch { env, daemon }
    }

    /// Alice's phone calls extension `callee` with `scenario`; extra `-set` variables.
    fn phone_call(&self, scenario: &str, callee: &str, extra: &[(&str, &str)]) -> SippRun {
        let mut vars = caller_vars(&User::alice(), callee);
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        run_sipp_with(
            &self.env,
            scenario,
            Some(self.daemon.phones_udp()),
            &caller_options(&vars),
        )
    }

    /// The carrier calls `called` over the trunk from `from` with `scenario`; extra `-set`
    /// variables.
    fn carrier_call(
        &self,
        scenario: &str,
        from: IpAddr,
        called: &str,
        extra: &[(&str, &str)],
    ) -> SippRun {
        let mut opts = SippOptions::new()
            .local(from, None)
            .auth_uri(None)
            .timeout(CALL_TIMEOUT)
            .var("called", called)
            .var("calling", CARRIER_CALLER);
        for (k, v) in extra {
            opts = opts.var(k, v);
        }
        run_sipp_with(&self.env, scenario, Some(self.daemon.trunk_udp()), &opts)
    }
}

/// Asserts that the caller's run and every background SIPp succeeded; on failure prints
/// all of their logs (the daemon's log follows from its Drop).
fn assert_all_succeeded(caller: (&str, &SippRun), others: Vec<SippChild>) -> Vec<SippRun> {
    let mut failures = Vec::new();
    let mut runs = Vec::new();
    let (caller_name, caller_run) = caller;
    let caller_ok = caller_run.status.success();
    let mut report = String::new();
    if !caller_ok {
        failures.push(caller_name.to_owned());
    }
    report.push_str(&format!(
        "=== {caller_name} ({}) ===\n--- errors ---\n{}\n--- messages ---\n{}\n",
        caller_run.status, caller_run.errors, caller_run.messages
    ));
    for child in others {
        let name = child.scenario.clone();
        let run = child.wait();
        if !run.status.success() {
            failures.push(name.clone());
        }
        report.push_str(&format!(
            "=== {name} ({}) ===\n--- errors ---\n{}\n--- messages ---\n{}\n--- screen ---\n{}\n",
            run.status,
            run.errors,
            run.messages,
            run.stdout
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        ));
        runs.push(run);
    }
    assert!(failures.is_empty(), "SIPp failed: {failures:?}\n{report}");
    if std::env::var("SENTRALBORD_TEST_VERBOSE").is_ok_and(|v| v == "1") {
        eprintln!("{report}");
    }
    runs
}

/// What one call's row in the call log must say.
struct Expect {
    /// `inbound`, `internal`, ...
    direction: &'static str,
    /// The outcome; `None` where the test leaves it to a dedicated test.
    outcome: Option<&'static str>,
    /// Whether a talk time is shown (answered calls).
    talked: bool,
    /// A part of the caller cell (number or name).
    caller_has: &'static str,
    /// A part of the callee cell.
    callee_has: &'static str,
    /// The ANSWERED BY cell exactly (`-` when nobody answered).
    answered_by: &'static str,
}

impl Expect {
    /// alice (1001) called bob (1002).
    fn internal(outcome: Option<&'static str>, answered_by: &'static str) -> Expect {
        Expect {
            direction: "internal",
            outcome,
            talked: answered_by != "-",
            caller_has: "alice",
            callee_has: "1002",
            answered_by,
        }
    }

    /// The carrier's caller called bob's number; bob answered.
    fn inbound_answered_by_bob() -> Expect {
        Expect {
            direction: "inbound",
            outcome: Some("answered"),
            talked: true,
            caller_has: CARRIER_CALLER,
            callee_has: USER_NUMBER,
            answered_by: BOB_ANSWERED,
        }
    }
}

/// The ANSWERED BY cell for bob ([`User::bob`]: "Test bob", extension 1002).
const BOB_ANSWERED: &str = "Test bob (1002)";

/// Checks the only call of [`TENANT`] in `sentralbord calls list --tenant` (polled: the
/// row is written when the call ends, asynchronously).
fn expect_call_log(sw: &Switch, want: Expect) {
    let row = &the_only_call(sw);
    assert_eq!(row.direction, want.direction, "call log row: {row:?}");
    if let Some(outcome) = want.outcome {
        assert_eq!(row.outcome, outcome, "call log row: {row:?}");
    }
    assert_eq!(
        row.talk != "-",
        want.talked,
        "talk time shown iff answered: {row:?}"
    );
    assert!(row.caller.contains(want.caller_has), "caller: {row:?}");
    assert!(row.callee.contains(want.callee_has), "callee: {row:?}");
    assert_eq!(row.answered_by, want.answered_by, "call log row: {row:?}");
}

/// The one row of [`TENANT`]'s call log (polled: it is written when the call ends).
fn the_only_call(sw: &Switch) -> CallLogRow {
    let end = deadline(CALL_LOG_TIMEOUT);
    let rows: Vec<CallLogRow> = loop {
        let rows = sw.env.call_log(TENANT);
        if !rows.is_empty() || deadline(Duration::ZERO) >= end {
            break rows;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows.len(), 1, "one call, one row: {rows:?}");
    rows.into_iter().next().expect("one row")
}

/// RFC 3261 s8.2.6.2: a UAS uses one To tag for every response to a request but 100. The
/// switch presents one UAS to the caller, so every response the caller received to its
/// authenticated INVITE (CSeq 2) must carry the same To tag. Returns the tags seen.
fn assert_one_to_tag(run: &SippRun) -> Vec<(u16, String)> {
    let seen: Vec<(u16, String)> = parse_trace(&run.messages)
        .into_iter()
        .filter(|m| !m.sent)
        .filter(|m| m.cseq() == Some((2, "INVITE".to_owned())))
        .filter_map(|m| {
            let status = m.status().filter(|&s| s > 100)?;
            Some((status, m.to_tag().unwrap_or_default()))
        })
        .collect();
    assert!(
        !seen.is_empty(),
        "no response to the INVITE in:\n{}",
        run.messages
    );
    let first = &seen[0].1;
    assert!(
        seen.iter().all(|(_, t)| t == first && !t.is_empty()),
        "responses to one INVITE carry different (or no) To tags (status, tag): {seen:?}\n{}",
        run.messages
    );
    seen
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

// ---------------------------------------------------------------------------------------
// User to user

/// Case 1: alice calls bob (1002), bob answers, alice hangs up.
#[test]
fn user_call_answered_caller_hangs_up() {
    if !sipp_enabled("user_call_answered_caller_hangs_up") {
        return;
    }
    let sw = Switch::start();
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let callee = bob.answer_with(&sw.env, "phone_answer.xml", &[("answer_ms", RING_MS)]);
    let caller = sw.phone_call("call_caller_bye.xml", "1002", &[("talk_ms", TALK_MS)]);
    assert_all_succeeded(("call_caller_bye.xml", &caller), vec![callee]);
    let seen = assert_one_to_tag(&caller);
    assert!(
        seen.iter().any(|(s, _)| *s == 180) && seen.iter().any(|(s, _)| *s == 200),
        "180 and 200 expected: {seen:?}"
    );
    expect_call_log(&sw, Expect::internal(Some("answered"), BOB_ANSWERED));
}

/// Case 2: alice calls bob, bob answers and hangs up: the BYE reaches alice.
#[test]
fn user_call_answered_callee_hangs_up() {
    if !sipp_enabled("user_call_answered_callee_hangs_up") {
        return;
    }
    let sw = Switch::start();
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let callee = bob.answer_with(
        &sw.env,
        "phone_answer_hangup.xml",
        &[("answer_ms", RING_MS), ("talk_ms", TALK_MS)],
    );
    let caller = sw.phone_call("call_caller_hungup.xml", "1002", &[]);
    assert_all_succeeded(("call_caller_hungup.xml", &caller), vec![callee]);
    expect_call_log(&sw, Expect::internal(Some("answered"), BOB_ANSWERED));
}

/// Case 3: alice hangs up while bob's phone rings: bob's phone gets CANCEL and answers 487,
/// alice gets 200 (CANCEL) and 487.
#[test]
fn user_call_cancelled_while_ringing() {
    if !sipp_enabled("user_call_cancelled_while_ringing") {
        return;
    }
    let sw = Switch::start();
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let callee = bob.answer_with(&sw.env, "phone_cancelled.xml", &[]);
    let caller = sw.phone_call("call_caller_cancel.xml", "1002", &[("ring_ms", RING_MS)]);
    assert_all_succeeded(("call_caller_cancel.xml", &caller), vec![callee]);
    // The outcome is checked by user_call_cancelled_while_ringing_is_logged_missed.
    expect_call_log(&sw, Expect::internal(None, "-"));
}

/// Case 3 in the call log: the store defines `missed` as "nobody answered (no-answer
/// timeout, or the caller gave up while it rang)" and `cancelled` as "a leg that lost the
/// race, or the caller hung up before any ringing". bob's phone rang (180) before alice
/// gave up: for bob this is a missed call.
#[test]
fn user_call_cancelled_while_ringing_is_logged_missed() {
    if !sipp_enabled("user_call_cancelled_while_ringing_is_logged_missed") {
        return;
    }
    let sw = Switch::start();
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let callee = bob.answer_with(&sw.env, "phone_cancelled.xml", &[]);
    let caller = sw.phone_call("call_caller_cancel.xml", "1002", &[("ring_ms", RING_MS)]);
    assert_all_succeeded(("call_caller_cancel.xml", &caller), vec![callee]);
    expect_call_log(&sw, Expect::internal(Some("missed"), "-"));
}

/// Case 3, the final response: the 487 the caller gets for its cancelled INVITE must
/// carry the To tag of the 180 it got before (RFC 3261 s8.2.6.2), or the caller sees a
/// second early dialog that never had a provisional response.
#[test]
fn user_call_cancelled_487_keeps_the_to_tag_of_the_180() {
    if !sipp_enabled("user_call_cancelled_487_keeps_the_to_tag_of_the_180") {
        return;
    }
    let sw = Switch::start();
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let callee = bob.answer_with(&sw.env, "phone_cancelled.xml", &[]);
    let caller = sw.phone_call("call_caller_cancel.xml", "1002", &[("ring_ms", RING_MS)]);
    assert_all_succeeded(("call_caller_cancel.xml", &caller), vec![callee]);
    let seen = assert_one_to_tag(&caller);
    assert!(
        seen.iter().any(|(s, _)| *s == 180) && seen.iter().any(|(s, _)| *s == 487),
        "180 and 487 expected: {seen:?}"
    );
}

/// Case 4: bob's phone is busy: its 486 reaches alice.
#[test]
fn user_call_busy_is_relayed_486() {
    if !sipp_enabled("user_call_busy_is_relayed_486") {
        return;
    }
    let sw = Switch::start();
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let callee = bob.answer_with(&sw.env, "phone_busy.xml", &[]);
    let caller = sw.phone_call("call_caller_busy.xml", "1002", &[]);
    assert_all_succeeded(("call_caller_busy.xml", &caller), vec![callee]);
    expect_call_log(&sw, Expect::internal(Some("busy"), "-"));
}

/// Case 5: bob has no registered phone (and no mobile): 480.
#[test]
fn user_call_to_unregistered_user_gets_480() {
    if !sipp_enabled("user_call_to_unregistered_user_gets_480") {
        return;
    }
    let sw = Switch::start();
    let caller = sw.phone_call("call_caller_unavailable.xml", "1002", &[]);
    assert_all_succeeded(("call_caller_unavailable.xml", &caller), vec![]);
    // The outcome is checked by user_call_to_unregistered_user_is_logged_failed.
    expect_call_log(&sw, Expect::internal(None, "-"));
}

/// Case 5 in the call log: the store defines `failed` as "no target could be reached, or
/// an error ended it" and `missed` as "nobody answered (no-answer timeout, or the caller
/// gave up while it rang)". Nothing rang: the call failed.
#[test]
fn user_call_to_unregistered_user_is_logged_failed() {
    if !sipp_enabled("user_call_to_unregistered_user_is_logged_failed") {
        return;
    }
    let sw = Switch::start();
    let caller = sw.phone_call("call_caller_unavailable.xml", "1002", &[]);
    assert_all_succeeded(("call_caller_unavailable.xml", &caller), vec![]);
    expect_call_log(&sw, Expect::internal(Some("failed"), "-"));
}

/// Case 6: An extension nobody has: 404 (after authentication).
#[test]
fn user_call_to_unknown_extension_gets_404() {
    if !sipp_enabled("user_call_to_unknown_extension_gets_404") {
        return;
    }
    let sw = Switch::start();
    let caller = sw.phone_call("call_caller_not_found.xml", "1999", &[]);
    assert_all_succeeded(("call_caller_not_found.xml", &caller), vec![]);
}

/// Case 10: bob answers and puts alice on hold: his re-INVITE (a=sendonly) reaches alice,
/// her 200 (a=recvonly) reaches bob; then alice hangs up.
#[test]
fn user_call_hold_reinvite_from_callee_is_relayed() {
    if !sipp_enabled("user_call_hold_reinvite_from_callee_is_relayed") {
        return;
    }
    // With music on hold (the default) sentralbord answers the hold itself; here it is
    // off, so the hold goes through to the caller (tests/media.rs covers the other case).
    let mut env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.set_env("SENTRALBORD_MEDIA__MOH_ON_HOLD", "false");
    env.provision(&[User::alice(), User::bob()]);
    let daemon = env.start();
    let sw = Switch { env, daemon };
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let callee = bob.answer_with(
        &sw.env,
        "phone_hold.xml",
        &[("answer_ms", RING_MS), ("talk_ms", TALK_MS)],
    );
    let caller = sw.phone_call("call_caller_held.xml", "1002", &[("talk_ms", TALK_MS)]);
    assert_all_succeeded(("call_caller_held.xml", &caller), vec![callee]);
    expect_call_log(&sw, Expect::internal(Some("answered"), BOB_ANSWERED));
}

// ---------------------------------------------------------------------------------------
// Carrier trunk

/// Case 7: The carrier calls bob's number: his phone and his mobile (through the carrier) both
/// ring; the phone answers and the mobile branch is cancelled.
#[test]
fn trunk_call_phone_answers_mobile_is_cancelled() {
    if !sipp_enabled("trunk_call_phone_answers_mobile_is_cancelled") {
        return;
    }
    let carrier_port = free_udp_port();
    let carrier = SocketAddr::new(loopback(), carrier_port);
    let sw = Switch::start_with_trunk(&["127.0.0.1/32"], Some(carrier));
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let mobile = uas(&sw.env, "carrier_mobile_cancelled.xml", carrier_port, &[]);
    // The phone answers after the mobile has rung (its 180 comes at once).
    let phone = bob.answer_with(&sw.env, "phone_answer.xml", &[("answer_ms", "500")]);
    let caller = sw.carrier_call(
        "carrier_call.xml",
        loopback(),
        USER_NUMBER_NATIONAL,
        &[("talk_ms", TALK_MS)],
    );
    assert_all_succeeded(("carrier_call.xml", &caller), vec![phone, mobile]);
    expect_call_log(&sw, Expect::inbound_answered_by_bob());
}

/// Case 8: The same call answered on the mobile: the phone branch is cancelled.
#[test]
fn trunk_call_mobile_answers_phone_is_cancelled() {
    if !sipp_enabled("trunk_call_mobile_answers_phone_is_cancelled") {
        return;
    }
    let carrier_port = free_udp_port();
    let carrier = SocketAddr::new(loopback(), carrier_port);
    let sw = Switch::start_with_trunk(&["127.0.0.1/32"], Some(carrier));
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_cancelled.xml", &[]);
    let mobile = uas(
        &sw.env,
        "carrier_mobile_answer.xml",
        carrier_port,
        &[("answer_ms", "500")],
    );
    let caller = sw.carrier_call(
        "carrier_call.xml",
        loopback(),
        USER_NUMBER,
        &[("talk_ms", TALK_MS)],
    );
    assert_all_succeeded(("carrier_call.xml", &caller), vec![phone, mobile]);
    expect_call_log(&sw, Expect::inbound_answered_by_bob());
}

/// Case 9: An INVITE to the trunk from an address the profile does not trust (127.0.0.2 when
/// only 127.0.0.1/32 is trusted) is refused with 403, and nothing rings.
#[test]
fn trunk_call_from_untrusted_address_gets_403() {
    if !sipp_enabled("trunk_call_from_untrusted_address_gets_403") {
        return;
    }
    let sw = Switch::start_with_trunk(&["127.0.0.1/32"], None);
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let mut phone = bob.answer_with(&sw.env, "phone_answer.xml", &[("answer_ms", RING_MS)]);
    let intruder = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let caller = sw.carrier_call(
        "carrier_call_refused.xml",
        intruder,
        USER_NUMBER_NATIONAL,
        &[],
    );
    assert!(
        caller.status.success(),
        "the untrusted INVITE must get 403\n--- errors ---\n{}\n--- messages ---\n{}",
        caller.errors,
        caller.messages
    );
    // Nothing may have reached the phone: its scenario is still waiting for an INVITE.
    thread::sleep(Duration::from_millis(300));
    assert!(
        !phone.has_exited(),
        "the phone's scenario ended: {}",
        phone.diagnostics()
    );
    let log = phone.diagnostics();
    assert!(
        !log.contains("INVITE sip:"),
        "an INVITE reached bob's phone after a refused trunk call:\n{log}"
    );
    // A refused request is not a call of the tenant.
    let rows = sw.env.call_log(TENANT);
    assert!(rows.is_empty(), "a refused INVITE was logged: {rows:?}");
}

/// Starts a switch like [`Switch::start_with_trunk`] (no carrier: only bob's phone rings),
/// with extra daemon settings given as environment variables.
fn start_trunk_switch_with_env(env_vars: &[(&str, &str)]) -> Switch {
    let mut env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    for (k, v) in env_vars {
        env.set_env(k, v);
    }
    env.write_profile("trunk.toml", &trunk_profile(&["127.0.0.1/32"], None));
    env.add_tenant(TENANT);
    env.add_user(&User::alice());
    env.add_user_with_mobile(&User::bob(), USER_NUMBER);
    env.add_number(TENANT, USER_NUMBER, "user");
    let daemon = env.start();
    Switch { env, daemon }
}

/// Caller-ID enrichment: the carrier's caller is in the tenant's directory, so the call
/// log (and the phone's display) carries the name.
#[test]
fn trunk_call_caller_name_comes_from_the_tenant_directory() {
    if !sipp_enabled("trunk_call_caller_name_comes_from_the_tenant_directory") {
        return;
    }
    let sw = start_trunk_switch_with_env(&[]);
    sw.env.cli(
        &[
            "directory",
            "add",
            "--tenant",
            TENANT,
            "--number",
            CARRIER_CALLER,
            "--first",
            "Ola",
            "--last",
            "Nordmann",
        ],
        None,
    );
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_answer.xml", &[]);
    let caller = sw.carrier_call(
        "carrier_call.xml",
        loopback(),
        USER_NUMBER_NATIONAL,
        &[("talk_ms", TALK_MS)],
    );
    assert_all_succeeded(("carrier_call.xml", &caller), vec![phone]);
    let mut want = Expect::inbound_answered_by_bob();
    want.caller_has = "Ola Nordmann";
    expect_call_log(&sw, want);
}

/// A directory service that accepts connections and never answers: the call still rings
/// (after the lookup budget) and is logged with the bare number.
#[test]
fn trunk_call_rings_when_the_directory_service_never_answers() {
    if !sipp_enabled("trunk_call_rings_when_the_directory_service_never_answers") {
        return;
    }
    // A listener that accepts and then says nothing (kept open for the whole test).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a silent HTTP server");
    let url = format!(
        "http://{}/lookup?number={{number}}",
        silent.local_addr().expect("addr")
    );
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = accepted.clone();
    thread::spawn(move || {
        for conn in silent.incoming().take(8).flatten() {
            keep.lock().expect("lock").push(conn);
        }
    });
    let sw = start_trunk_switch_with_env(&[
        ("SENTRALBORD_LOOKUP__URL_TEMPLATE", url.as_str()),
        ("SENTRALBORD_LOOKUP__BUDGET_MS", "200"),
    ]);
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_answer.xml", &[]);
    let caller = sw.carrier_call(
        "carrier_call.xml",
        loopback(),
        USER_NUMBER_NATIONAL,
        &[("talk_ms", TALK_MS)],
    );
    assert_all_succeeded(("carrier_call.xml", &caller), vec![phone]);
    assert!(
        !accepted.lock().expect("lock").is_empty(),
        "the daemon asked the directory service"
    );
    expect_call_log(&sw, Expect::inbound_answered_by_bob());
}

/// Forwarding on busy: bob's phone answers 486, bob forwards busy calls to a number, so
/// the call goes out to the carrier (History-Info/Diversion are checked by the engine's
/// unit tests) and the carrier's answer reaches alice. Logged answered, forwarded.
#[test]
fn user_call_busy_is_forwarded_to_a_number_through_the_carrier() {
    if !sipp_enabled("user_call_busy_is_forwarded_to_a_number_through_the_carrier") {
        return;
    }
    let carrier_port = free_udp_port();
    let carrier = SocketAddr::new(loopback(), carrier_port);
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.write_profile(
        "trunk.toml",
        &trunk_profile(&["127.0.0.1/32"], Some(carrier)),
    );
    env.provision(&[User::alice(), User::bob()]);
    env.cli(
        &[
            "user",
            "forward",
            "--tenant",
            TENANT,
            "1002",
            "--busy",
            "+4790000099",
        ],
        None,
    );
    let daemon = env.start();
    let sw = Switch { env, daemon };
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_busy.xml", &[]);
    let forwarded_to = uas(
        &sw.env,
        "carrier_mobile_answer.xml",
        carrier_port,
        &[("answer_ms", RING_MS)],
    );
    let caller = sw.phone_call("call_caller_bye.xml", "1002", &[("talk_ms", TALK_MS)]);
    assert_all_succeeded(("call_caller_bye.xml", &caller), vec![phone, forwarded_to]);
    let end = deadline(CALL_LOG_TIMEOUT);
    let row = loop {
        let rows = sw.env.call_log(TENANT);
        if let Some(r) = rows.into_iter().next() {
            break r;
        }
        assert!(deadline(Duration::ZERO) < end, "no call log row");
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (row.direction.as_str(), row.outcome.as_str()),
        ("internal", "answered"),
        "{row:?}"
    );
    let out = sw.env.cli(&["calls", "list", "--tenant", TENANT], None);
    assert!(out.contains("busy"), "the forward reason is listed: {out}");
}

/// A call placed from alice's mobile arrives from the carrier marked originating
/// (P-Served-User sescase=orig) to extension 1002: it is alice's own call, and bob's phone
/// rings.
#[test]
fn mobile_originated_call_is_routed_as_the_users_own_call() {
    if !sipp_enabled("mobile_originated_call_is_routed_as_the_users_own_call") {
        return;
    }
    const ALICE_MOBILE: &str = "+4790000001";
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.write_profile("trunk.toml", &trunk_profile(&["127.0.0.1/32"], None));
    env.add_tenant(TENANT);
    env.add_user_with_mobile(&User::alice(), ALICE_MOBILE);
    env.add_user(&User::bob());
    let daemon = env.start();
    let sw = Switch { env, daemon };
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_answer.xml", &[]);
    let opts = SippOptions::new()
        .local(loopback(), None)
        .auth_uri(None)
        .timeout(CALL_TIMEOUT)
        .var("called", "1002")
        .var("calling", ALICE_MOBILE)
        .var("talk_ms", TALK_MS);
    let caller = run_sipp_with(
        &sw.env,
        "carrier_mobile_originated.xml",
        Some(sw.daemon.trunk_udp()),
        &opts,
    );
    assert_all_succeeded(("carrier_mobile_originated.xml", &caller), vec![phone]);
    let mut want = Expect::internal(Some("answered"), BOB_ANSWERED);
    want.caller_has = ALICE_MOBILE;
    expect_call_log(&sw, want);
}

/// The tenant's main number in the tests that present it.
const MAIN_NUMBER: &str = "+4721000000";
/// Where forwarded calls and external calls go (a mobile number, through the carrier).
const FORWARD_NUMBER: &str = "+4790000099";

/// A switch whose trunk sends calls to a carrier UAS on a fresh port, with alice (with
/// `alice_mobile`, if given), bob and the tenant's main number; `setup` runs CLI
/// commands before the start.
fn start_with_carrier(alice_mobile: Option<&str>, setup: &[&[&str]]) -> (Switch, u16) {
    let carrier_port = free_udp_port();
    let carrier = SocketAddr::new(loopback(), carrier_port);
    let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
    env.write_profile(
        "trunk.toml",
        &trunk_profile(&["127.0.0.1/32"], Some(carrier)),
    );
    env.add_tenant(TENANT);
    match alice_mobile {
        Some(mobile) => env.add_user_with_mobile(&User::alice(), mobile),
        None => env.add_user(&User::alice()),
    }
    env.add_user(&User::bob());
    env.add_number(TENANT, MAIN_NUMBER, "main");
    for args in setup {
        env.cli(args, None);
    }
    let daemon = env.start();
    (Switch { env, daemon }, carrier_port)
}

/// The INVITE a SIPp UAS received (from its message trace).
fn received_invite(run: &SippRun) -> common::calls::Traced {
    parse_trace(&run.messages)
        .into_iter()
        .find(|m| !m.sent && m.start.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no INVITE in:\n{}", run.messages))
}

/// The carrier requires reliable provisionals: bob's phone rings, the switch sends the
/// 180 reliably (Require: 100rel, RSeq), answers the carrier's PRACK with 200, then the
/// call is answered and logged.
#[test]
fn trunk_call_requiring_100rel_gets_a_reliable_180_and_its_prack_answered() {
    if !sipp_enabled("trunk_call_requiring_100rel_gets_a_reliable_180_and_its_prack_answered") {
        return;
    }
    let sw = Switch::start_with_trunk(&["127.0.0.1/32"], None);
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_answer.xml", &[("answer_ms", RING_MS)]);
    let caller = sw.carrier_call(
        "carrier_call_100rel.xml",
        loopback(),
        USER_NUMBER_NATIONAL,
        &[("talk_ms", TALK_MS)],
    );
    assert_all_succeeded(("carrier_call_100rel.xml", &caller), vec![phone]);
    let pracked = parse_trace(&caller.messages)
        .into_iter()
        .any(|m| !m.sent && m.status() == Some(200) && m.cseq() == Some((2, "PRACK".into())));
    assert!(pracked, "the PRACK was answered 200:\n{}", caller.messages);
    expect_call_log(&sw, Expect::inbound_answered_by_bob());
}

/// Alice calls a number outside: the carrier answers with a reliable 183 carrying early
/// media; the switch PRACKs it, relays the 183 to alice, and the carrier's INVITE
/// presents the tenant's main number (alice has no number of her own).
#[test]
fn outbound_call_reliable_183_from_the_carrier_is_pracked_and_presents_the_main_number() {
    if !sipp_enabled(
        "outbound_call_reliable_183_from_the_carrier_is_pracked_and_presents_the_main_number",
    ) {
        return;
    }
    let (sw, carrier_port) = start_with_carrier(None, &[]);
    let carrier = uas(
        &sw.env,
        "carrier_answer_100rel.xml",
        carrier_port,
        &[("answer_ms", RING_MS)],
    );
    let caller = sw.phone_call(
        "call_caller_bye.xml",
        &FORWARD_NUMBER[3..],
        &[("talk_ms", TALK_MS)],
    );
    let runs = assert_all_succeeded(("call_caller_bye.xml", &caller), vec![carrier]);
    let invite = received_invite(&runs[0]);
    let pai = invite.header("P-Asserted-Identity").unwrap_or_default();
    assert!(pai.contains(MAIN_NUMBER), "presented: {pai:?}");
    let early = parse_trace(&caller.messages)
        .into_iter()
        .any(|m| !m.sent && m.status() == Some(183));
    assert!(early, "alice hears the early media:\n{}", caller.messages);
    let row = the_only_call(&sw);
    assert_eq!(
        (row.direction.as_str(), row.outcome.as_str()),
        ("outbound", "answered"),
        "{row:?}"
    );
    assert!(row.callee.contains(FORWARD_NUMBER), "{row:?}");
}

/// A call from alice's mobile (P-Served-User sescase=orig) to a number outside: alice
/// presents the tenant's main number (`user present main`), not her mobile.
#[test]
fn mobile_originated_call_out_presents_the_chosen_number() {
    if !sipp_enabled("mobile_originated_call_out_presents_the_chosen_number") {
        return;
    }
    const ALICE_MOBILE: &str = "+4790000001";
    let (sw, carrier_port) = start_with_carrier(
        Some(ALICE_MOBILE),
        &[
            &[
                "tenant",
                "number",
                "add",
                TENANT,
                ALICE_MOBILE,
                "--kind",
                "user",
            ],
            &["user", "present", "--tenant", TENANT, "1001", "main"],
        ],
    );
    let carrier = uas(
        &sw.env,
        "carrier_mobile_answer.xml",
        carrier_port,
        &[("answer_ms", RING_MS)],
    );
    let opts = SippOptions::new()
        .local(loopback(), None)
        .auth_uri(None)
        .timeout(CALL_TIMEOUT)
        .var("called", &FORWARD_NUMBER[3..])
        .var("calling", ALICE_MOBILE)
        .var("talk_ms", TALK_MS);
    let caller = run_sipp_with(
        &sw.env,
        "carrier_mobile_originated.xml",
        Some(sw.daemon.trunk_udp()),
        &opts,
    );
    let runs = assert_all_succeeded(("carrier_mobile_originated.xml", &caller), vec![carrier]);
    let invite = received_invite(&runs[0]);
    let pai = invite.header("P-Asserted-Identity").unwrap_or_default();
    let from = invite.header("From").unwrap_or_default();
    assert!(pai.contains(MAIN_NUMBER), "presented: {pai:?}");
    assert!(
        !from.contains(ALICE_MOBILE),
        "the mobile is not shown: {from:?}"
    );
    let row = the_only_call(&sw);
    assert_eq!(
        (row.direction.as_str(), row.outcome.as_str()),
        ("outbound", "answered"),
        "{row:?}"
    );
}

/// Bob forwards calls he does not answer within 5 s to a number: his phone rings, is
/// cancelled after 5 s, and the carrier answers the forwarded call. Logged answered,
/// forwarded on no answer.
#[test]
fn no_answer_forwarding_cancels_the_phone_and_forwards_after_the_ring_time() {
    if !sipp_enabled("no_answer_forwarding_cancels_the_phone_and_forwards_after_the_ring_time") {
        return;
    }
    let (sw, carrier_port) = start_with_carrier(
        None,
        &[&[
            "user",
            "forward",
            "--tenant",
            TENANT,
            "1002",
            "--no-answer",
            FORWARD_NUMBER,
            "--after",
            "5",
        ]],
    );
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_cancelled.xml", &[]);
    let forwarded_to = uas(
        &sw.env,
        "carrier_mobile_answer.xml",
        carrier_port,
        &[("answer_ms", RING_MS)],
    );
    let caller = sw.phone_call("call_caller_bye.xml", "1002", &[("talk_ms", TALK_MS)]);
    let runs = assert_all_succeeded(("call_caller_bye.xml", &caller), vec![phone, forwarded_to]);
    let invite = received_invite(&runs[1]);
    let history = invite.header("History-Info").unwrap_or_default();
    assert!(history.contains("cause=408"), "History-Info: {history:?}");
    let row = the_only_call(&sw);
    assert_eq!(row.outcome, "answered", "{row:?}");
    let out = sw.env.cli(&["calls", "list", "--tenant", TENANT], None);
    assert!(
        out.contains("no-answer"),
        "the forward reason is listed: {out}"
    );
}

/// Bob forwards every call to a number: his phone never rings, the carrier answers.
#[test]
fn unconditional_forwarding_skips_the_phone() {
    if !sipp_enabled("unconditional_forwarding_skips_the_phone") {
        return;
    }
    let (sw, carrier_port) = start_with_carrier(
        None,
        &[&[
            "user",
            "forward",
            "--tenant",
            TENANT,
            "1002",
            "--always",
            FORWARD_NUMBER,
        ]],
    );
    // Bob is registered, but no scenario answers on his port: an INVITE there would
    // leave the call ringing until the carrier's scenario timed out.
    let _bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let forwarded_to = uas(
        &sw.env,
        "carrier_mobile_answer.xml",
        carrier_port,
        &[("answer_ms", RING_MS)],
    );
    let caller = sw.phone_call("call_caller_bye.xml", "1002", &[("talk_ms", TALK_MS)]);
    let runs = assert_all_succeeded(("call_caller_bye.xml", &caller), vec![forwarded_to]);
    let invite = received_invite(&runs[0]);
    let diversion = invite.header("Diversion").unwrap_or_default();
    assert!(
        diversion.contains("unconditional"),
        "Diversion: {diversion:?}"
    );
    let out = sw.env.cli(&["calls", "list", "--tenant", TENANT], None);
    assert!(
        out.contains("unconditional"),
        "the forward reason is listed: {out}"
    );
}

/// Bob's ring time is 5 s and he has no forwarding: the phone is cancelled after 5 s,
/// alice gets 480, and the call is logged missed.
#[test]
fn an_unanswered_call_ends_with_480_after_the_users_ring_time() {
    if !sipp_enabled("an_unanswered_call_ends_with_480_after_the_users_ring_time") {
        return;
    }
    let (sw, _carrier_port) = start_with_carrier(
        None,
        &[&[
            "user", "forward", "--tenant", TENANT, "1002", "--after", "5",
        ]],
    );
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_cancelled.xml", &[]);
    let caller = sw.phone_call("call_caller_unavailable.xml", "1002", &[]);
    assert_all_succeeded(("call_caller_unavailable.xml", &caller), vec![phone]);
    expect_call_log(&sw, Expect::internal(Some("missed"), "-"));
}

/// Alice's phone asks for a 1800 s session timer; bob's phone knows nothing of timers.
/// The switch takes it up: the 200 to alice says Session-Expires: 1800;refresher=uac
/// with Require: timer (checked by the scenario).
#[test]
fn a_callers_session_timer_is_taken_up_by_the_switch() {
    if !sipp_enabled("a_callers_session_timer_is_taken_up_by_the_switch") {
        return;
    }
    let sw = Switch::start();
    let bob = Phone::register(&sw.env, &sw.daemon, &User::bob());
    let phone = bob.answer_with(&sw.env, "phone_answer.xml", &[("answer_ms", RING_MS)]);
    let caller = sw.phone_call("call_caller_timer.xml", "1002", &[("talk_ms", TALK_MS)]);
    assert_all_succeeded(("call_caller_timer.xml", &caller), vec![phone]);
    expect_call_log(&sw, Expect::internal(Some("answered"), BOB_ANSWERED));
}
