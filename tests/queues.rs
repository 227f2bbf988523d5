//! Black-box queue tests: SIPp plays the carrier's callers and the agents' phones around
//! the real daemon; queues, members, VIPs and overflow rules are provisioned with the CLI
//! while the daemon runs (it picks changes up within a second), and every outcome is
//! checked where an admin reads it: `queue log`, `queue stats`, `queue status` and
//! `calls list`.
//!
//! Agents are SIPp phones registered from a fixed port (`register_md5.xml`), answering
//! there with a UAS scenario. Callers are SIPp carriers calling a queue number over the
//! trusted trunk. Every SIPp run is bounded (`-m`, `-timeout`, a hard kill after).
//! `SENTRALBORD_SKIP_SIPP=1` skips these tests with a printed notice.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

use common::calls::{caller_options, caller_vars, parse_trace, trunk_profile, uas, Phone};
use common::{
    deadline, free_udp_port, run_sipp_with, sipp_enabled, spawn_sipp, Daemon, SippChild,
    SippOptions, SippRun, TestEnv, User, MD5_FIRST_PROFILE_LINES, TENANT,
};

/// The queue's number as the carrier dials it, and in E.164.
const QUEUE_NATIONAL: &str = "21000000";
const QUEUE_NUMBER: &str = "+4721000000";
/// A second queue's number.
const BACKUP_NUMBER: &str = "+4721000009";
/// Callers.
const CALLER_A: &str = "+4790000001";
const CALLER_VIP: &str = "+4790000002";
/// How long SIPp sides may take for their whole run.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon may take to pick up a CLI change (it polls every second).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// A running daemon with a trusted trunk (calls out go to `carrier`, when given), tenant
/// [`TENANT`] with alice (1001) and bob (1002).
struct Switch {
    env: TestEnv,
    daemon: std::cell::OnceCell<Daemon>,
}

impl Switch {
    /// Provisions the tenant; the daemon starts on first use (see [`Switch::daemon`]), so
    /// what a test provisions before its first call is loaded before `ready`.
    fn start(carrier: Option<SocketAddr>) -> Switch {
        let env = TestEnv::with_phones_extra(MD5_FIRST_PROFILE_LINES);
        env.write_profile("trunk.toml", &trunk_profile(&["127.0.0.1/32"], carrier));
        env.provision(&[User::alice(), User::bob()]);
        // The main number leads to the queue under test and is what users present.
        env.add_number(TENANT, QUEUE_NUMBER, "main");
        Switch {
            env,
            daemon: std::cell::OnceCell::new(),
        }
    }

    /// The running daemon (started now if it is not running yet).
    fn daemon(&self) -> &Daemon {
        self.daemon.get_or_init(|| self.env.start())
    }

    /// `sentralbord <args>` (panics with the output unless it succeeds).
    fn cli(&self, args: &[&str]) -> String {
        self.env.cli(args, None)
    }

    /// Queue `name` with the given `queue add` options and bob and alice as members.
    fn queue(&self, name: &str, options: &[&str], members: &[&User]) {
        let mut args = vec!["queue", "add", TENANT, name];
        args.extend_from_slice(options);
        self.cli(&args);
        for m in members {
            self.cli(&["queue", "member", "add", TENANT, name, &m.extension]);
        }
        if self.daemon.get().is_some() {
            // Added while the daemon runs: it shows the queue once it has loaded it.
            self.wait_status(name, |_| true);
        }
    }

    /// Logs `user` in (or out: `action` = "logout") and waits until the daemon shows
    /// `logged_in` members in queue `queue`.
    fn agent(&self, action: &str, user: &User, queue: &str, logged_in: u32) {
        self.cli(&["queue", "agent", action, TENANT, &user.extension]);
        self.wait_status(queue, |s| s.logged_in == logged_in);
    }

    /// Waits until the live snapshot of `queue` satisfies `pred`.
    fn wait_status(&self, queue: &str, pred: impl Fn(&Status) -> bool) -> Status {
        let until = deadline(RELOAD_TIMEOUT);
        loop {
            let out = self.cli(&["queue", "status", TENANT]);
            if let Some(s) = parse_status(&out, queue) {
                if pred(&s) {
                    return s;
                }
            }
            assert!(
                deadline(Duration::ZERO) < until,
                "queue {queue} never reached the expected state; last status:\n{out}\n{}",
                self.daemon().diagnostics()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The carrier calls the queue number from `calling` with `scenario` in the
    /// background (talking `talk_ms` once answered, when the scenario hangs up itself).
    fn caller(&self, scenario: &str, called: &str, calling: &str, talk_ms: &str) -> SippChild {
        let mut opts = SippOptions::new()
            .local(loopback(), None)
            .auth_uri(None)
            .timeout(RUN_TIMEOUT)
            .var("called", called)
            .var("calling", calling);
        // Scenarios the switch hangs up have no talk time of their own.
        if !talk_ms.is_empty() {
            opts = opts.var("talk_ms", talk_ms);
        }
        spawn_sipp(&self.env, scenario, Some(self.daemon().trunk_udp()), &opts)
    }

    /// `queue log` rows of the tenant, newest first.
    fn log(&self) -> Vec<LogRow> {
        parse_table(&self.cli(&["queue", "log", TENANT]))
            .into_iter()
            .map(|cells| LogRow { cells })
            .collect()
    }

    /// Waits until the queue log has `n` rows (the call is written once its media
    /// statistics are in, up to 2 s after the hang-up).
    fn wait_log(&self, n: usize) -> Vec<LogRow> {
        let until = deadline(RELOAD_TIMEOUT);
        loop {
            let rows = self.log();
            if rows.len() >= n {
                return rows;
            }
            assert!(
                deadline(Duration::ZERO) < until,
                "the queue log never showed {n} visits: {rows:?}\n{}",
                self.daemon().diagnostics()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One queue's live state as `queue status` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    waiting: u32,
    available: u32,
    logged_in: u32,
    answered: u32,
    unanswered: u32,
}

/// Parses `queue status TENANT` (a table with a header line) for `queue`.
fn parse_status(out: &str, queue: &str) -> Option<Status> {
    let rows = parse_table(out);
    let row = rows
        .iter()
        .find(|r| r.first().map(String::as_str) == Some(queue))?;
    let n = |i: usize| row.get(i).and_then(|c| c.parse().ok());
    Some(Status {
        waiting: n(1)?,
        available: n(3)?,
        logged_in: n(4)?,
        answered: n(7)?,
        unanswered: n(8)?,
    })
}

/// The cells of the first table the CLI prints: columns start where their headers start.
fn parse_table(out: &str) -> Vec<Vec<String>> {
    let mut lines = out
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("daemon not running"))
        .skip_while(|l| l.starts_with("tenant "));
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    if !header
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        || header.contains("no ")
    {
        return Vec::new();
    }
    // Column starts: a non-space after two spaces (headers may contain one space).
    let chars: Vec<char> = header.chars().collect();
    let mut starts = vec![0];
    for i in 2..chars.len() {
        if chars[i] != ' ' && chars[i - 1] == ' ' && chars[i - 2] == ' ' {
            starts.push(i);
        }
    }
    lines
        .map(|line| {
            let c: Vec<char> = line.chars().collect();
            (0..starts.len())
                .map(|i| {
                    let from = starts[i].min(c.len());
                    let to = starts.get(i + 1).map_or(c.len(), |&e| e.min(c.len()));
                    c[from..to].iter().collect::<String>().trim().to_owned()
                })
                .collect()
        })
        .collect()
}

/// One row of `queue log`: ENTERED QUEUE CALLER VIP OUTCOME WAIT TALK ANSWERED-BY
/// OFFERED-TO OVERFLOW TRANSFERRED-TO HANDLED-BY.
#[derive(Debug, Clone)]
struct LogRow {
    cells: Vec<String>,
}

impl LogRow {
    fn cell(&self, i: usize) -> &str {
        self.cells.get(i).map_or("", String::as_str)
    }
    fn queue(&self) -> &str {
        self.cell(1)
    }
    fn caller(&self) -> &str {
        self.cell(2)
    }
    fn vip(&self) -> &str {
        self.cell(3)
    }
    fn outcome(&self) -> &str {
        self.cell(4)
    }
    /// The wait in seconds (`m:ss`).
    fn wait_s(&self) -> u64 {
        let (m, s) = self.cell(5).split_once(':').unwrap_or(("0", "0"));
        m.parse::<u64>().unwrap_or(0) * 60 + s.parse::<u64>().unwrap_or(0)
    }
    fn answered_by(&self) -> &str {
        self.cell(7)
    }
    fn offered_to(&self) -> &str {
        self.cell(8)
    }
    fn overflow(&self) -> &str {
        self.cell(9)
    }
    fn handled_by(&self) -> &str {
        self.cell(11)
    }
}

/// Waits for background SIPp runs and asserts they all succeeded (printing every log).
fn assert_all_succeeded(sw: &Switch, runs: Vec<SippChild>) -> Vec<SippRun> {
    let runs: Vec<(String, SippRun)> = runs
        .into_iter()
        .map(|c| (c.scenario.clone(), c.wait()))
        .collect();
    let failed: Vec<String> = runs
        .iter()
        .filter(|(_, r)| !r.status.success())
        .map(|(s, r)| {
            format!(
                "--- {s} ({}) ---\n{}\n{}\n{}",
                r.status, r.stdout, r.errors, r.messages
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "SIPp runs failed:\n{}\n--- daemon ---\n{}",
        failed.join("\n"),
        sw.daemon().diagnostics()
    );
    runs.into_iter().map(|(_, r)| r).collect()
}

/// A registered agent phone answering `calls` calls with `scenario`.
fn agent_phone(sw: &Switch, user: &User, scenario: &str, calls: u32) -> SippChild {
    let phone = Phone::register(&sw.env, sw.daemon(), user);
    // Answering scenarios answer after 200 ms of ringing; the others take no variables.
    let answers = scenario.starts_with("phone_answer");
    if calls == 1 {
        let vars: &[(&str, &str)] = if answers {
            &[("answer_ms", "200")]
        } else {
            &[]
        };
        return phone.answer_with(&sw.env, scenario, vars);
    }
    let mut opts = SippOptions::new()
        .local(loopback(), Some(phone.port))
        .auth_uri(None)
        .timeout(RUN_TIMEOUT)
        .calls(calls);
    if answers {
        opts = opts.var("answer_ms", "200");
    }
    let mut child = spawn_sipp(&sw.env, scenario, None, &opts);
    common::wait_udp_bound(&mut child, phone.port, Duration::from_secs(10));
    child
}

/// The From numbers of the INVITEs a phone's SIPp received.
fn invited_from(run: &SippRun) -> Vec<String> {
    parse_trace(&run.messages)
        .into_iter()
        .filter(|m| !m.sent && m.start.starts_with("INVITE "))
        .filter_map(|m| m.header("From").map(str::to_owned))
        .collect()
}

/// A caller reaches a queue with two members logged in: the one idle longer (logged in
/// first) is offered the call and answers; the other's phone never rings. The queue log,
/// the call log, the statistics and the live snapshot all show it.
#[test]
fn a_queue_caller_is_answered_by_the_longest_idle_agent() {
    if !sipp_enabled("a_queue_caller_is_answered_by_the_longest_idle_agent") {
        return;
    }
    let sw = Switch::start(None);
    let (alice, bob) = (User::alice(), User::bob());
    // The queue is added while the daemon runs: it takes effect without a restart.
    sw.daemon();
    sw.queue(
        "Support",
        &["--strategy", "longest-idle", "--number", QUEUE_NUMBER],
        &[&alice, &bob],
    );
    let bob_phone = agent_phone(&sw, &bob, "phone_answer.xml", 1);
    let mut alice_phone = agent_phone(&sw, &alice, "phone_answer.xml", 1);
    sw.agent("login", &bob, "Support", 1);
    sw.agent("login", &alice, "Support", 2);
    let caller = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_A, "1500");
    let runs = assert_all_succeeded(&sw, vec![caller, bob_phone]);
    assert!(
        invited_from(&runs[1]).iter().any(|f| f.contains(CALLER_A)),
        "bob's phone shows the caller's number"
    );
    assert!(
        !alice_phone.has_exited() && !alice_phone.diagnostics().contains("INVITE sip:"),
        "alice (idle for less time) was offered the call"
    );
    let rows = sw.wait_log(1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].queue(), "Support");
    assert!(rows[0].caller().contains(CALLER_A), "{rows:?}");
    assert_eq!(rows[0].outcome(), "answered");
    assert!(rows[0].answered_by().contains("1002"), "{rows:?}");
    assert_eq!(rows[0].offered_to(), "1002", "offered to bob only");
    // The call log names bob as the one who answered the inbound call.
    let calls = sw.env.call_log(TENANT);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, "answered");
    assert!(calls[0].answered_by.contains("1002"), "{calls:?}");
    // Statistics and the live snapshot count the call.
    let stats = sw.cli(&["queue", "stats", TENANT]);
    let support = parse_table(&stats)
        .into_iter()
        .find(|r| r.first().map(String::as_str) == Some("Support"))
        .unwrap_or_else(|| panic!("no Support row in:\n{stats}"));
    assert_eq!(
        &support[1..4],
        ["1", "1", "100%"],
        "offered, answered, rate:\n{stats}"
    );
    let status = sw.wait_status("Support", |s| s.answered == 1);
    assert_eq!((status.waiting, status.unanswered), (0, 0));
}

/// An answer group rings all its members: the first to answer takes the call, the other
/// phone is cancelled.
#[test]
fn an_answer_group_rings_all_and_the_others_stop_ringing() {
    if !sipp_enabled("an_answer_group_rings_all_and_the_others_stop_ringing") {
        return;
    }
    let sw = Switch::start(None);
    let (alice, bob) = (User::alice(), User::bob());
    sw.queue(
        "Reception",
        &["--kind", "group", "--number", QUEUE_NUMBER],
        &[&alice, &bob],
    );
    let alice_phone = agent_phone(&sw, &alice, "phone_answer.xml", 1);
    let bob_phone = agent_phone(&sw, &bob, "phone_cancelled.xml", 1);
    sw.agent("login", &alice, "Reception", 1);
    sw.agent("login", &bob, "Reception", 2);
    let caller = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_A, "500");
    assert_all_succeeded(&sw, vec![caller, alice_phone, bob_phone]);
    let rows = sw.wait_log(1);
    assert_eq!(rows[0].outcome(), "answered");
    assert!(rows[0].answered_by().contains("1001"), "{rows:?}");
    assert!(
        rows[0].offered_to().contains("1001") && rows[0].offered_to().contains("1002"),
        "both were offered: {rows:?}"
    );
}

/// A VIP caller who arrives after an ordinary caller is offered first when an agent
/// logs in; the ordinary caller, who hangs up still waiting, is logged abandoned.
#[test]
fn a_vip_caller_jumps_the_queue_and_a_caller_who_hangs_up_is_abandoned() {
    if !sipp_enabled("a_vip_caller_jumps_the_queue_and_a_caller_who_hangs_up_is_abandoned") {
        return;
    }
    let sw = Switch::start(None);
    let bob = User::bob();
    sw.queue("Support", &["--number", QUEUE_NUMBER], &[&bob]);
    sw.cli(&["queue", "vip", "add", TENANT, CALLER_VIP]);
    let bob_phone = agent_phone(&sw, &bob, "phone_answer.xml", 1);
    let ordinary = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_A, "6000");
    sw.wait_status("Support", |s| s.waiting == 1);
    let vip = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_VIP, "6000");
    sw.wait_status("Support", |s| s.waiting == 2);
    // Bob logs in: with the default 10 s wrap-up he takes exactly one call.
    sw.agent("login", &bob, "Support", 1);
    let runs = assert_all_succeeded(&sw, vec![bob_phone, ordinary, vip]);
    let from = invited_from(&runs[0]);
    assert_eq!(from.len(), 1, "{from:?}");
    assert!(
        from[0].contains(CALLER_VIP),
        "the VIP was offered first: {from:?}"
    );
    let rows = sw.wait_log(2);
    let vip_row = rows
        .iter()
        .find(|r| r.caller().contains(CALLER_VIP))
        .expect("the VIP's visit");
    assert_eq!(vip_row.vip(), "yes");
    assert_eq!(vip_row.outcome(), "answered");
    let other = rows
        .iter()
        .find(|r| r.caller().contains(CALLER_A))
        .expect("the ordinary caller's visit");
    assert_eq!(other.outcome(), "abandoned");
    assert_eq!(other.answered_by(), "-");
    let status = sw.wait_status("Support", |s| s.waiting == 0);
    assert_eq!((status.answered, status.unanswered), (1, 1));
}

/// Overflow after the maximum wait: a queue nobody is logged in to sends its caller to
/// a second queue after 1 s, where bob answers; the log names the overflow queue.
#[test]
fn a_caller_overflows_to_another_queue_after_the_maximum_wait() {
    if !sipp_enabled("a_caller_overflows_to_another_queue_after_the_maximum_wait") {
        return;
    }
    let sw = Switch::start(None);
    let (alice, bob) = (User::alice(), User::bob());
    sw.queue("Backup", &["--number", BACKUP_NUMBER], &[&bob]);
    sw.queue(
        "Support",
        &["--max-wait", "1", "--number", QUEUE_NUMBER],
        &[&alice],
    );
    sw.cli(&[
        "queue",
        "overflow",
        TENANT,
        "Support",
        "--on",
        "max-wait",
        "--to-queue",
        "Backup",
    ]);
    let bob_phone = agent_phone(&sw, &bob, "phone_answer.xml", 1);
    sw.agent("login", &bob, "Backup", 1);
    let caller = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_A, "3000");
    assert_all_succeeded(&sw, vec![caller, bob_phone]);
    let rows = sw.wait_log(2);
    let support = rows
        .iter()
        .find(|r| r.queue() == "Support")
        .expect("Support visit");
    assert_eq!(support.outcome(), "overflowed");
    assert!(
        support.overflow().contains("max-wait") && support.overflow().contains("Backup"),
        "{rows:?}"
    );
    let backup = rows
        .iter()
        .find(|r| r.queue() == "Backup")
        .expect("Backup visit");
    assert_eq!(backup.outcome(), "answered");
    assert!(backup.answered_by().contains("1002"));
}

/// Overflow when the queue is full: with one caller already waiting in a queue of at most
/// one, the next caller goes to alice directly.
#[test]
fn a_caller_overflows_to_a_user_when_the_queue_is_full() {
    if !sipp_enabled("a_caller_overflows_to_a_user_when_the_queue_is_full") {
        return;
    }
    let sw = Switch::start(None);
    let (alice, bob) = (User::alice(), User::bob());
    sw.queue(
        "Support",
        &["--max-callers", "1", "--number", QUEUE_NUMBER],
        &[&bob],
    );
    sw.cli(&[
        "queue",
        "overflow",
        TENANT,
        "Support",
        "--on",
        "full",
        "--to-user",
        "1001",
    ]);
    let alice_phone = agent_phone(&sw, &alice, "phone_answer.xml", 1);
    let first = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_A, "4000");
    sw.wait_status("Support", |s| s.waiting == 1);
    let second = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_VIP, "1000");
    assert_all_succeeded(&sw, vec![second, alice_phone, first]);
    let rows = sw.wait_log(2);
    let full = rows
        .iter()
        .find(|r| r.caller().contains(CALLER_VIP))
        .expect("the second caller's visit");
    assert_eq!(full.outcome(), "overflowed");
    assert!(full.overflow().contains("full"), "{rows:?}");
    let calls = sw.env.call_log(TENANT);
    assert!(
        calls
            .iter()
            .any(|c| c.caller.contains(CALLER_VIP) && c.answered_by.contains("1001")),
        "alice answered the overflowed call: {calls:?}"
    );
}

/// Overflow with no agent logged in, to an announcement: the caller is answered, hears
/// it, and the switch hangs up.
#[test]
fn a_caller_with_no_agent_logged_in_hears_an_announcement_and_is_hung_up() {
    if !sipp_enabled("a_caller_with_no_agent_logged_in_hears_an_announcement_and_is_hung_up") {
        return;
    }
    let sw = Switch::start(None);
    sw.queue("Support", &["--number", QUEUE_NUMBER], &[&User::bob()]);
    sw.cli(&[
        "queue",
        "overflow",
        TENANT,
        "Support",
        "--on",
        "no-agents",
        "--announcement",
    ]);
    let caller = sw.caller("carrier_call_hung_up.xml", QUEUE_NATIONAL, CALLER_A, "");
    assert_all_succeeded(&sw, vec![caller]);
    let rows = sw.wait_log(1);
    assert_eq!(rows[0].outcome(), "overflowed");
    assert!(rows[0].overflow().contains("no-agents"), "{rows:?}");
}

/// Wrap-up: after a queue call the agent gets the next caller only once the queue's
/// wrap-up time has passed, so the second caller's recorded wait covers the first call
/// and the wrap-up.
#[test]
fn an_agent_is_not_offered_a_call_during_wrap_up() {
    if !sipp_enabled("an_agent_is_not_offered_a_call_during_wrap_up") {
        return;
    }
    let sw = Switch::start(None);
    let bob = User::bob();
    sw.queue(
        "Support",
        &["--wrap-up", "3", "--number", QUEUE_NUMBER],
        &[&bob],
    );
    let bob_phone = agent_phone(&sw, &bob, "phone_answer.xml", 2);
    sw.agent("login", &bob, "Support", 1);
    let first = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_A, "1000");
    sw.wait_status("Support", |s| s.waiting == 0 && s.available == 0);
    let second = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_VIP, "6000");
    assert_all_succeeded(&sw, vec![first, second, bob_phone]);
    let rows = sw.wait_log(2);
    let later = rows
        .iter()
        .find(|r| r.caller().contains(CALLER_VIP))
        .expect("second visit");
    assert_eq!(later.outcome(), "answered");
    assert!(
        later.wait_s() >= 3,
        "the second caller waited out the 3 s wrap-up: {rows:?}"
    );
}

/// A missed queue call (the caller hung up while nobody was logged in) is marked handled
/// when a member calls the number back.
#[test]
fn a_missed_queue_call_called_back_by_a_member_is_marked_handled() {
    if !sipp_enabled("a_missed_queue_call_called_back_by_a_member_is_marked_handled") {
        return;
    }
    let carrier_port = free_udp_port();
    let carrier = SocketAddr::new(loopback(), carrier_port);
    let sw = Switch::start(Some(carrier));
    let bob = User::bob();
    sw.queue("Support", &["--number", QUEUE_NUMBER], &[&bob]);
    let caller = sw.caller("carrier_call.xml", QUEUE_NATIONAL, CALLER_A, "500");
    assert_all_succeeded(&sw, vec![caller]);
    let rows = sw.wait_log(1);
    assert_eq!(rows[0].outcome(), "abandoned");
    assert_eq!(rows[0].handled_by(), "-");
    // Bob calls the caller back through the carrier, which answers.
    let far_end = uas(
        &sw.env,
        "phone_answer.xml",
        carrier_port,
        &[("answer_ms", "100")],
    );
    let vars = caller_vars(&bob, CALLER_A);
    let mut opts = caller_options(&vars);
    opts = opts.var("talk_ms", "300");
    let back = run_sipp_with(
        &sw.env,
        "call_caller_bye.xml",
        Some(sw.daemon().phones_udp()),
        &opts,
    );
    back.assert_success("bob's call back");
    assert_all_succeeded(&sw, vec![far_end]);
    let until = deadline(RELOAD_TIMEOUT);
    loop {
        let rows = sw.log();
        if rows[0].handled_by().contains("1002") {
            break;
        }
        assert!(
            deadline(Duration::ZERO) < until,
            "the missed call was never marked handled by bob: {rows:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// An agent logs in and out from the phone with *45 / *46: the switch answers, confirms
/// by announcement, hangs up, and the queue shows the agent logged in, then out.
#[test]
fn agents_log_in_and_out_with_feature_codes() {
    if !sipp_enabled("agents_log_in_and_out_with_feature_codes") {
        return;
    }
    let sw = Switch::start(None);
    let bob = User::bob();
    sw.queue("Support", &["--number", QUEUE_NUMBER], &[&bob]);
    for (code, logged_in) in [("*45", 1), ("*46", 0)] {
        let vars = caller_vars(&bob, code);
        let run = run_sipp_with(
            &sw.env,
            "call_caller_hungup.xml",
            Some(sw.daemon().phones_udp()),
            &caller_options(&vars),
        );
        run.assert_success(&format!("bob dials {code}"));
        sw.wait_status("Support", |s| s.logged_in == logged_in);
    }
    assert!(
        sw.cli(&["queue", "show", TENANT, "Support"])
            .contains("logged out"),
        "the store keeps the presence the phone set"
    );
    assert!(
        sw.env.call_log(TENANT).is_empty(),
        "feature-code calls are not in the call log"
    );
}
