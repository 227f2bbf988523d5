//! Black-box test harness: runs the real `sentralbord` binary the way an operator does.
//!
//! - [`TestEnv`]: a temporary directory with a database path and a profiles directory
//!   (every listener on 127.0.0.1 port 0, never a fixed port), plus the provisioning CLI.
//! - [`Daemon`]: `sentralbord run`, started with the env's settings; the harness reads its
//!   stdout until `ready` and learns the real ports from the `listening ...` lines.
//!   Dropping it kills the process; [`Daemon::terminate`] sends SIGTERM and returns the
//!   exit status.
//! - [`run_sipp`]: runs one SIPp scenario from `tests/sipp/` against a listener.
//! - [`sip`]: a small independent SIP client (UDP/TCP, framing, digest MD5/SHA-256).
//!
//! Every wait is bounded; everything stays on loopback.

// Each tests/*.rs file is its own crate and uses a different part of this module.
#![allow(dead_code)]
// Tests may read the clock (clippy.toml bans it for the daemon's code only).
#![allow(clippy::disallowed_methods)]

pub mod baresip;
pub mod calls;
pub mod conference_log;
pub mod parties;
pub mod rtp_pcap;
pub mod sip;
pub mod spectrum;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The digest realm and the only domain the test profiles serve.
pub const REALM: &str = "sentralbord.test";
/// The tenant every test provisions.
pub const TENANT: &str = "acme";
/// How long a daemon may take from spawn to `ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one CLI command may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Phones-profile setting that makes the daemon challenge with MD5 only, for SIPp.
///
/// SIPp 3.6 (Debian bookworm's `sip-tester`) computes MD5 digests only and fails outright
/// ("authentication must use MD5 or AKAv1-MD5") when the first WWW-Authenticate it sees says
/// algorithm=SHA-256, which is what the daemon sends first by default (RFC 8760 s2.4: most
/// preferred first). The profile key `digest_algorithms` (sip-profiles/phones.toml) sets
/// the offered algorithms; scripts/bench-register.sh writes the same line.
pub const MD5_FIRST_PROFILE_LINES: &str = "digest_algorithms = [\"MD5\"]\n";

/// `Instant` `d` from now (the one place tests read the clock).
pub fn deadline(d: Duration) -> Instant {
    Instant::now() + d
}

/// Path of the daemon binary Cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sentralbord"))
}

/// A user to provision.
#[derive(Debug, Clone)]
pub struct User {
    /// Tenant name.
    pub tenant: String,
    /// Full name.
    pub name: String,
    /// Extension number.
    pub extension: String,
    /// SIP username (digest username and AOR user part).
    pub username: String,
    /// Digest realm.
    pub realm: String,
    /// Password (given on stdin).
    pub password: String,
}

impl User {
    /// A user of [`TENANT`] in [`REALM`].
    pub fn new(username: &str, extension: &str, password: &str) -> User {
        User {
            tenant: TENANT.to_owned(),
            name: format!("Test {username}"),
            extension: extension.to_owned(),
            username: username.to_owned(),
            realm: REALM.to_owned(),
            password: password.to_owned(),
        }
    }

    /// alice, extension 1001.
    pub fn alice() -> User {
        User::new("alice", "1001", "alice-secret-1")
    }

    /// bob, extension 1002.
    pub fn bob() -> User {
        User::new("bob", "1002", "bob-secret-2")
    }
}

/// A listener the daemon reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Profile name.
    pub profile: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Bound address (real port).
    pub addr: SocketAddr,
}

/// Parses `listening profile=<name> transport=<udp|tcp> addr=<ip:port>`.
pub fn parse_listening_line(line: &str) -> Option<Listener> {
    let rest = line.trim().strip_prefix("listening ")?;
    let (mut profile, mut transport, mut addr) = (None, None, None);
    for field in rest.split_whitespace() {
        match field.split_once('=')? {
            ("profile", v) => profile = Some(v.to_owned()),
            ("transport", v) => transport = Some(v.to_ascii_lowercase()),
            ("addr", v) => addr = v.parse().ok(),
            _ => {} // tolerate extra fields
        }
    }
    Some(Listener {
        profile: profile?,
        transport: transport?,
        addr: addr?,
    })
}

/// A temporary installation: database path, profiles directory, extra environment.
pub struct TestEnv {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh environment with the default test profiles (phones + trunk on port 0).
    pub fn new() -> TestEnv {
        Self::with_phones_extra("")
    }

    /// Like [`TestEnv::new`], with `extra` TOML lines added to the phones profile's top level.
    pub fn with_phones_extra(extra: &str) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("sentralbord-test-")
            .tempdir()
            .expect("create a temp dir");
        fs::create_dir(dir.path().join("profiles")).expect("create profiles dir");
        let env = TestEnv {
            dir,
            env: Vec::new(),
        };
        env.write_profile("phones.toml", &phones_profile(extra));
        env.write_profile("trunk.toml", TRUNK_PROFILE);
        env
    }

    /// The temporary directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.path().join("sentralbord.db")
    }

    /// The profiles directory.
    pub fn profiles_dir(&self) -> PathBuf {
        self.path().join("profiles")
    }

    /// Writes (or replaces) one profile file.
    pub fn write_profile(&self, file_name: &str, contents: &str) {
        fs::write(self.profiles_dir().join(file_name), contents).expect("write profile");
    }

    /// Adds an environment variable for every later command (e.g. a daemon setting).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// A `sentralbord` command with this env's settings, run in the temp dir, with no
    /// SENTRALBORD_* variables inherited from the developer's shell.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("SENTRALBORD_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SENTRALBORD_STORE__PATH", self.db_path())
            .env("SENTRALBORD_PROFILES__DIR", self.profiles_dir());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the CLI with `args` and optional stdin; returns its output (any exit status).
    pub fn cli_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        run_with_timeout(cmd, stdin, CLI_TIMEOUT)
    }

    /// Runs the CLI and panics unless it exits 0; returns stdout.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli_output(args, stdin);
        assert!(
            out.status.success(),
            "`sentralbord {}` failed with {}:\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sentralbord tenant add <name>`.
    pub fn add_tenant(&self, name: &str) {
        self.cli(&["tenant", "add", name], None);
    }

    /// `sentralbord user add ... --password-stdin`.
    pub fn add_user(&self, u: &User) {
        self.cli(
            &[
                "user",
                "add",
                "--tenant",
                &u.tenant,
                "--name",
                &u.name,
                "--extension",
                &u.extension,
                "--username",
                &u.username,
                "--realm",
                &u.realm,
                "--password-stdin",
            ],
            Some(&format!("{}\n", u.password)),
        );
    }

    /// Provisions [`TENANT`] and the given users.
    pub fn provision(&self, users: &[User]) {
        self.add_tenant(TENANT);
        for u in users {
            self.add_user(u);
        }
    }

    /// Starts `sentralbord run` and waits for `ready`.
    pub fn start(&self) -> Daemon {
        Daemon::start(self)
    }
}

/// The phones profile every test uses (realm and domain [`REALM`], UDP+TCP on port 0).
pub fn phones_profile(extra: &str) -> String {
    format!(
        "name = \"phones\"\n\
         kind = \"phones\"\n\
         realm = \"{REALM}\"\n\
         domains = [\"{REALM}\"]\n\
         {extra}\n\
         [[listen]]\n\
         address = \"127.0.0.1:0\"\n\
         transports = [\"udp\", \"tcp\"]\n"
    )
}

/// The trunk profile every test uses (trusting loopback, UDP+TCP on port 0).
pub const TRUNK_PROFILE: &str = "name = \"trunk\"\n\
kind = \"trunk\"\n\
trusted = [\"127.0.0.1/32\"]\n\
\n\
[[listen]]\n\
address = \"127.0.0.1:0\"\n\
transports = [\"udp\", \"tcp\"]\n";

/// Runs `cmd` with piped stdio, feeding `stdin`; kills it and panics after `timeout`.
pub fn run_with_timeout(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let description = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A child that exits without reading makes this fail: its status tells why.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out_reader = spawn_reader(child.stdout.take().expect("stdout is piped"));
    let err_reader = spawn_reader(child.stderr.take().expect("stderr is piped"));
    let status = wait_until(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{description} did not finish within {timeout:?}");
    });
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Polls `child` until it exits or `timeout` passes (`None`).
pub fn wait_until(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = deadline(timeout);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for a child process: {e}"),
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running `sentralbord run`.
pub struct Daemon {
    child: Option<Child>,
    listeners: Vec<Listener>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl Daemon {
    fn start(env: &TestEnv) -> Daemon {
        // A new log file per start, so a restart's log does not overwrite the first.
        let mut n = 0;
        let stderr_path = loop {
            let p = env.path().join(format!("daemon-{n}.log"));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        let stderr = fs::File::create(&stderr_path).expect("create daemon log");
        let mut cmd = env.command();
        cmd.arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().expect("spawn sentralbord run");
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let rx = spawn_line_reader(stdout, Arc::clone(&lines));
        let mut daemon = Daemon {
            child: Some(child),
            listeners: Vec::new(),
            stdout: lines,
            stderr_path,
        };
        let end = deadline(START_TIMEOUT);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.trim() == "ready" => break,
                Ok(line) => {
                    if let Some(l) = parse_listening_line(&line) {
                        daemon.listeners.push(l);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // The daemon's output follows: Drop prints it while panicking.
                    panic!("sentralbord did not print `ready` within {START_TIMEOUT:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the daemon exited (or closed stdout) before `ready`.
                    let status = daemon
                        .child
                        .as_mut()
                        .and_then(|c| wait_until(c, Duration::from_secs(2)));
                    panic!("sentralbord exited before `ready` (status {status:?})")
                }
            }
        }
        assert!(
            !daemon.listeners.is_empty(),
            "sentralbord printed `ready` without any `listening` line (output below)"
        );
        for l in &daemon.listeners {
            assert!(
                l.addr.ip().is_loopback(),
                "test daemon bound a non-loopback address: {l:?}"
            );
            assert_ne!(
                l.addr.port(),
                0,
                "`listening` must report the real port: {l:?}"
            );
        }
        daemon
    }

    /// Every listener reported at start.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The address of `profile`'s `transport` (`udp`/`tcp`) listener.
    pub fn addr(&self, profile: &str, transport: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|l| l.profile == profile && l.transport == transport)
            .map(|l| l.addr)
            .unwrap_or_else(|| {
                panic!(
                    "no {profile}/{transport} listener; daemon reported {:?}",
                    self.listeners
                )
            })
    }

    /// The phones profile's UDP address.
    pub fn phones_udp(&self) -> SocketAddr {
        self.addr("phones", "udp")
    }

    /// The phones profile's TCP address.
    pub fn phones_tcp(&self) -> SocketAddr {
        self.addr("phones", "tcp")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("daemon not yet reaped")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the daemon wrote to stderr so far (its log).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Everything the daemon wrote to stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stdout and the log, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- daemon stdout ---\n{}\n--- daemon log ({}) ---\n{}",
            self.stdout().join("\n"),
            self.stderr_path.display(),
            self.log()
        )
    }

    /// Sends SIGTERM and waits for the exit status (panics after [`STOP_TIMEOUT`]).
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon not yet reaped");
        signal(child.id(), "TERM");
        match wait_until(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                // Drop prints the daemon's output while panicking.
                panic!("sentralbord did not exit within {STOP_TIMEOUT:?} of SIGTERM");
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

/// Sends `SIG<name>` to one process (by id) with kill(1): no libc dependency for tests.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{name} {pid} failed");
}

fn spawn_line_reader(stdout: ChildStdout, all: Arc<Mutex<Vec<String>>>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // Keep draining after `ready` so the daemon never blocks on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut v) = all.lock() {
                v.push(line.clone());
            }
            let _ = tx.send(line);
        }
    });
    rx
}

// ---------------------------------------------------------------------------------------
// SIPp

/// The directory of the SIPp scenarios.
pub fn sipp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("sipp")
}

/// Whether SIPp tests should run. `SENTRALBORD_SKIP_SIPP=1` skips them (printed, so the
/// skip is visible); otherwise a missing `sipp` is a failure: scripts/test.sh installs it.
pub fn sipp_enabled(test: &str) -> bool {
    if std::env::var("SENTRALBORD_SKIP_SIPP").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: SENTRALBORD_SKIP_SIPP=1");
        return false;
    }
    let found = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "{test}: `sipp` is not installed. Run scripts/test.sh (installs Debian's sip-tester), \
         or `apt-get install sip-tester`, or set SENTRALBORD_SKIP_SIPP=1 to skip SIPp tests"
    );
    true
}

/// SIPp transport mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`.
    Udp,
    /// `-t t1`.
    Tcp,
}

/// What a SIPp run produced.
#[derive(Debug)]
pub struct SippRun {
    /// SIPp's exit status (0: every call succeeded).
    pub status: ExitStatus,
    /// Its screen output.
    pub stdout: String,
    /// The error log (`-trace_err`): unexpected messages, failed checks.
    pub errors: String,
    /// Every message sent and received (`-trace_msg`).
    pub messages: String,
}

impl SippRun {
    /// Panics with the logs unless every call succeeded.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "SIPp scenario {what} failed ({})\n--- errors ---\n{}\n--- messages ---\n{}\n--- screen ---\n{}",
            self.status,
            self.errors,
            self.messages,
            tail(&self.stdout, 40)
        );
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs one call of `tests/sipp/<scenario>` against `target`, with `-set` variables, from
/// 127.0.0.1 (ephemeral port), logs in `env`'s directory. Bounded: SIPp's own `-timeout`
/// and a hard kill after it.
pub fn run_sipp(
    env: &TestEnv,
    scenario: &str,
    target: SocketAddr,
    transport: SippTransport,
    vars: &[(&str, &str)],
) -> SippRun {
    let mut opts = SippOptions::new().transport(transport);
    for (k, v) in vars {
        opts = opts.var(k, v);
    }
    run_sipp_with(env, scenario, Some(target), &opts)
}

/// How to run one SIPp process beyond the scenario and the target.
#[derive(Debug, Clone)]
pub struct SippOptions {
    /// `-t u1` or `-t t1`.
    pub transport: SippTransport,
    /// `-i`: the local address SIPp binds and writes in its messages.
    pub local_ip: IpAddr,
    /// `-p`: a fixed local port (a registered phone must answer on the socket it
    /// registered from); `None` lets SIPp pick one.
    pub local_port: Option<u16>,
    /// `-auth_uri`: the digest-uri SIPp hashes; `None` lets SIPp take the Request-URI.
    pub auth_uri: Option<String>,
    /// `-set` variables.
    pub vars: Vec<(String, String)>,
    /// `-m`: calls to run before exiting.
    pub calls: u32,
    /// `-timeout` (global, an error with `-timeout_error`); the process is killed
    /// [`SIPP_KILL_GRACE`] after it.
    pub timeout: Duration,
}

/// How long after its own `-timeout` a SIPp process is killed.
pub const SIPP_KILL_GRACE: Duration = Duration::from_secs(15);

impl Default for SippOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl SippOptions {
    /// One call over UDP from 127.0.0.1, digest-uri `sip:`[`REALM`] (what a phone hashes
    /// for REGISTER), 15 s timeout: what [`run_sipp`] has always used.
    pub fn new() -> SippOptions {
        SippOptions {
            transport: SippTransport::Udp,
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            local_port: None,
            auth_uri: Some(REALM.to_owned()),
            vars: Vec::new(),
            calls: 1,
            timeout: Duration::from_secs(15),
        }
    }

    /// Sets the transport.
    pub fn transport(mut self, t: SippTransport) -> Self {
        self.transport = t;
        self
    }

    /// Adds a `-set` variable.
    pub fn var(mut self, key: &str, value: &str) -> Self {
        self.vars.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Binds `ip` (and `port`, if any) locally.
    pub fn local(mut self, ip: IpAddr, port: Option<u16>) -> Self {
        self.local_ip = ip;
        self.local_port = port;
        self
    }

    /// Sets (or, with `None`, drops) `-auth_uri`.
    pub fn auth_uri(mut self, uri: Option<&str>) -> Self {
        self.auth_uri = uri.map(str::to_owned);
        self
    }

    /// Sets how many calls SIPp makes (or, as a UAS, takes) before it exits (`-m`).
    pub fn calls(mut self, n: u32) -> Self {
        self.calls = n;
        self
    }

    /// Sets SIPp's global timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
}

/// Where one SIPp process writes its logs.
#[derive(Debug, Clone)]
struct SippLogs {
    errors: PathBuf,
    messages: PathBuf,
}

impl SippLogs {
    fn read(&self, status: ExitStatus, screen: String) -> SippRun {
        SippRun {
            status,
            stdout: screen,
            errors: fs::read_to_string(&self.errors).unwrap_or_default(),
            messages: fs::read_to_string(&self.messages).unwrap_or_default(),
        }
    }
}

/// The `sipp` command for `scenario`: a UAC toward `target`, or a UAS when `target` is
/// `None`. Logs go to `env`'s directory.
fn sipp_command(
    env: &TestEnv,
    scenario: &str,
    target: Option<SocketAddr>,
    opts: &SippOptions,
) -> (Command, SippLogs) {
    let stem = format!(
        "sipp-{}-{}",
        scenario.trim_end_matches(".xml"),
        sip::token()
    );
    let logs = SippLogs {
        errors: env.path().join(format!("{stem}-errors.log")),
        messages: env.path().join(format!("{stem}-messages.log")),
    };
    let mut cmd = Command::new("sipp");
    cmd.current_dir(env.path());
    if let Some(target) = target {
        cmd.arg(target.to_string());
    }
    cmd.arg("-sf")
        .arg(sipp_dir().join(scenario))
        .args([
            "-t",
            if opts.transport == SippTransport::Udp {
                "u1"
            } else {
                "t1"
            },
        ])
        .arg("-i")
        .arg(opts.local_ip.to_string());
    if let Some(port) = opts.local_port {
        cmd.arg("-p").arg(port.to_string());
    }
    if let Some(uri) = &opts.auth_uri {
        // The digest-uri is the Request-URI's domain, as a phone computes it for REGISTER.
        cmd.arg("-auth_uri").arg(uri);
    }
    cmd.arg("-m")
        .arg(opts.calls.to_string())
        .arg("-timeout")
        .arg(format!("{}s", opts.timeout.as_secs().max(1)))
        .args(["-timeout_error", "-nostdin"])
        .args(["-trace_err", "-error_file"])
        .arg(&logs.errors)
        .args(["-trace_msg", "-message_file"])
        .arg(&logs.messages);
    for (k, v) in &opts.vars {
        cmd.arg("-set").arg(k).arg(v);
    }
    (cmd, logs)
}

/// Runs `scenario` to its end (see [`sipp_command`]) and returns what it produced.
pub fn run_sipp_with(
    env: &TestEnv,
    scenario: &str,
    target: Option<SocketAddr>,
    opts: &SippOptions,
) -> SippRun {
    let (cmd, logs) = sipp_command(env, scenario, target, opts);
    let out = run_with_timeout(cmd, None, opts.timeout + SIPP_KILL_GRACE);
    logs.read(
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A SIPp process running in the background (a UAS waiting for the daemon's requests).
/// Dropping it kills the process.
pub struct SippChild {
    child: Option<Child>,
    logs: SippLogs,
    screen: PathBuf,
    limit: Duration,
    started: Instant,
    /// The scenario file, for messages.
    pub scenario: String,
}

/// Starts `scenario` in the background (see [`sipp_command`]); its screen output goes
/// to a file so that it never blocks on a full pipe.
pub fn spawn_sipp(
    env: &TestEnv,
    scenario: &str,
    target: Option<SocketAddr>,
    opts: &SippOptions,
) -> SippChild {
    let (mut cmd, logs) = sipp_command(env, scenario, target, opts);
    let screen = logs.errors.with_file_name(
        logs.errors
            .file_name()
            .map(|n| n.to_string_lossy().replace("-errors.log", "-screen.log"))
            .unwrap_or_else(|| "sipp-screen.log".to_owned()),
    );
    let out = fs::File::create(&screen).expect("create SIPp screen log");
    let err = out.try_clone().expect("clone SIPp screen log handle");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn sipp for {scenario}: {e}"));
    SippChild {
        child: Some(child),
        logs,
        screen,
        limit: opts.timeout + SIPP_KILL_GRACE,
        started: Instant::now(),
        scenario: scenario.to_owned(),
    }
}

impl SippChild {
    /// Waits (bounded: the run's `-timeout` plus [`SIPP_KILL_GRACE`] from its start) for
    /// the process to end and returns what it produced; kills it when the bound passes.
    pub fn wait(mut self) -> SippRun {
        let mut child = self.child.take().expect("SIPp child not yet reaped");
        let left = (self.started + self.limit).saturating_duration_since(Instant::now());
        let status = wait_until(&mut child, left).unwrap_or_else(|| {
            let _ = child.kill();
            child.wait().expect("reap a killed SIPp")
        });
        let screen = fs::read_to_string(&self.screen).unwrap_or_default();
        self.logs.read(status, screen)
    }

    /// Whether the process has exited already.
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Everything it logged so far (screen, errors, messages), for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- SIPp {} errors ---\n{}\n--- messages ---\n{}\n--- screen ---\n{}",
            self.scenario,
            fs::read_to_string(&self.logs.errors).unwrap_or_default(),
            fs::read_to_string(&self.logs.messages).unwrap_or_default(),
            tail(&fs::read_to_string(&self.screen).unwrap_or_default(), 40)
        )
    }
}

impl Drop for SippChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if thread::panicking() {
                eprintln!("{}", self.diagnostics());
            }
        }
    }
}

/// A loopback UDP port that was free a moment ago (bound to port 0, then released), for
/// a process that must be told its port in advance (SIPp `-p`, an `outbound_proxy`).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback UDP socket on port 0")
}

/// Whether some process has a UDP socket bound to `port` (any local address), read from
/// /proc/net/udp and /proc/net/udp6: looking never takes the port from its owner.
pub fn udp_port_bound(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&want))
            })
        })
    })
}

/// Waits until `child` has bound UDP `port` (panics with its logs after `timeout`, or if
/// it exits first).
pub fn wait_udp_bound(child: &mut SippChild, port: u16, timeout: Duration) {
    let end = deadline(timeout);
    while !udp_port_bound(port) {
        assert!(
            !child.has_exited(),
            "SIPp {} exited before binding UDP port {port}\n{}",
            child.scenario,
            child.diagnostics()
        );
        assert!(
            Instant::now() < end,
            "SIPp {} did not bind UDP port {port} within {timeout:?}\n{}",
            child.scenario,
            child.diagnostics()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `-set` variables for `user` with `password` in [`REALM`].
pub fn sipp_user_vars<'a>(user: &'a str, password: &'a str) -> [(&'static str, &'a str); 3] {
    [("user", user), ("password", password), ("domain", REALM)]
}
