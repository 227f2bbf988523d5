//! baresip phones for black-box audio tests: real SIP user agents (Debian's `baresip`
//! 1.0.0) registered to the daemon, playing a WAV file and recording what they receive.
//!
//! - [`baresip_enabled`]: whether baresip is installed (a visible skip when it is not,
//!   except in CI, where scripts/test.sh installs it and a missing one is a failure).
//! - [`Baresip`]: one headless baresip with its own config dir (`-f`), made from the
//!   templates in `tests/baresip/`: source `aufile` (a WAV), no player, and the `sndfile`
//!   filter writing the sent and the received audio to WAV files. Its stdin is a pipe
//!   for the `stdio` module: [`Baresip::send_dtmf`] types `/sndcode` commands there.
//!   Dropping it kills it.
//! - Test signals ([`chirp`]), WAV files ([`write_wav`], [`read_wav`]) and the normalised
//!   cross-correlation that compares sent and received audio ([`best_correlation`]).
//!
//! Every wait is bounded; everything stays on loopback.

use std::fs;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{deadline, wait_until, User};

/// The sample rate of every test signal and recording (G.711's).
pub const SAMPLE_RATE: u32 = 8000;
/// How long a baresip may take to register.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a baresip may take to exit after SIGTERM (it unregisters first).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// baresip's own `-t`: it quits by itself after this long, whatever the test does.
pub const SELF_QUIT_S: u32 = 60;
/// How long baresip may take to report a DTMF key sent after it was typed.
pub const DTMF_KEY_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause after each DTMF key: one RFC 4733 event (a start packet, an update and three
/// end packets, one per 20 ms) is out in about 100 ms, so two keys never overlap.
pub const DTMF_KEY_GAP: Duration = Duration::from_millis(250);

const CONFIG_TEMPLATE: &str = include_str!("../baresip/config");
const ACCOUNTS_TEMPLATE: &str = include_str!("../baresip/accounts");

/// Whether the baresip tests should run. `SENTRALBORD_SKIP_BARESIP=1` skips them; a
/// missing `baresip` skips them too (printed, so the skip is visible), except when `CI`
/// is set: there scripts/test.sh installs Debian's `baresip-core`, so it is a failure.
pub fn baresip_enabled(test: &str) -> bool {
    if std::env::var("SENTRALBORD_SKIP_BARESIP").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: SENTRALBORD_SKIP_BARESIP=1");
        return false;
    }
    let found = Command::new("baresip")
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        return true;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(
        !in_ci,
        "{test}: `baresip` is not installed. scripts/test.sh installs Debian's baresip-core \
         (`apt-get install --no-install-recommends baresip-core`)"
    );
    eprintln!(
        "SKIPPED {test}: `baresip` is not installed \
         (`apt-get install --no-install-recommends baresip-core`)"
    );
    false
}

/// How one baresip phone is set up.
#[derive(Debug, Clone)]
pub struct PhoneSetup {
    /// The user it registers as (digest username, password, realm).
    pub user: User,
    /// The daemon's phones UDP listener (its outbound proxy).
    pub proxy: SocketAddr,
    /// The WAV it sends (8 kHz mono 16-bit).
    pub source_wav: PathBuf,
    /// The codecs it offers or accepts, e.g. `PCMU,PCMA`.
    pub codecs: String,
    /// Answers incoming calls by itself (`answermode=auto`).
    pub auto_answer: bool,
    /// The number it dials as soon as it has started (`-e "/dial ..."`).
    pub dial: Option<String>,
}

/// A running baresip; its output is collected line by line. Dropping it kills it.
pub struct Baresip {
    /// Its name in messages (the username).
    pub name: String,
    dir: PathBuf,
    child: Option<Child>,
    /// Held open until the process has exited: the `stdio` module spins on end of file.
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<Vec<String>>>,
}

impl Baresip {
    /// Writes `setup`'s config under `parent/<username>/` and starts baresip there.
    pub fn start(parent: &Path, setup: &PhoneSetup) -> Baresip {
        let name = setup.user.username.clone();
        let dir = parent.join(&name);
        let record_dir = dir.join("recordings");
        fs::create_dir_all(&record_dir).expect("create the baresip config dir");
        fs::write(
            dir.join("config"),
            fill(
                CONFIG_TEMPLATE,
                &[
                    ("SOURCE_WAV", &setup.source_wav.display().to_string()),
                    ("RECORD_DIR", &record_dir.display().to_string()),
                ],
            ),
        )
        .expect("write the baresip config");
        fs::write(
            dir.join("accounts"),
            fill(
                ACCOUNTS_TEMPLATE,
                &[
                    ("USER", &setup.user.username),
                    ("REALM", &setup.user.realm),
                    ("PASSWORD", &setup.user.password),
                    ("PROXY", &setup.proxy.to_string()),
                    (
                        "ANSWERMODE",
                        if setup.auto_answer { "auto" } else { "manual" },
                    ),
                    ("CODECS", &setup.codecs),
                ],
            ),
        )
        .expect("write the baresip accounts");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f")
            .arg(&dir)
            .arg("-t")
            .arg(SELF_QUIT_S.to_string());
        if let Some(number) = &setup.dial {
            cmd.arg("-e").arg(format!("/dial {number}"));
        }
        cmd.current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn baresip");
        let stdin = child.stdin.take();
        let output = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            spawn_collector(out, Arc::clone(&output));
        }
        if let Some(err) = child.stderr.take() {
            spawn_collector(err, Arc::clone(&output));
        }
        Baresip {
            name,
            dir,
            child: Some(child),
            stdin,
            output,
        }
    }

    /// Everything it printed so far (stdout and stderr, ANSI colours left in).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits until some output line satisfies `pred` (panics with the output after
    /// `timeout`, or if baresip exits first).
    pub fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        self.wait_for_count(what, timeout, 1, pred);
    }

    /// How many output lines so far satisfy `pred`.
    pub fn count_lines(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.output().iter().filter(|l| pred(l)).count()
    }

    /// Waits until `n` output lines satisfy `pred` (panics with the output after
    /// `timeout`, or if baresip exits first).
    pub fn wait_for_count(
        &mut self,
        what: &str,
        timeout: Duration,
        n: usize,
        pred: impl Fn(&str) -> bool,
    ) {
        let end = deadline(timeout);
        loop {
            if self.count_lines(&pred) >= n {
                return;
            }
            let running = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
            if !running {
                // Its last lines may still be in the pipe.
                thread::sleep(Duration::from_millis(200));
                assert!(
                    self.count_lines(&pred) >= n,
                    "baresip {} exited before {what}",
                    self.name
                );
                return;
            }
            assert!(
                Instant::now() < end,
                "baresip {}: no {what} within {timeout:?}",
                self.name
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until its account is registered (`... 200 OK ... [1 binding]`).
    pub fn wait_registered(&mut self) {
        self.wait_for("registration", REGISTER_TIMEOUT, |l| {
            l.contains("200 OK") && l.contains("binding")
        });
    }

    /// Presses `digits` (0-9, `*`, `#`, A-D) on its call, one key at a time: RFC 4733
    /// telephone-events (baresip always offers telephone-event), each a press and its
    /// release. Each key is typed as `/sndcode <key>` on baresip's stdin (the `stdio` and
    /// `menu` modules); this waits until baresip reports the key released, then pauses
    /// [`DTMF_KEY_GAP`]. (A whole string in one `/sndcode` would queue every press
    /// before a single release at the end: not one event per key.)
    pub fn send_dtmf(&mut self, digits: &str) {
        let released = |l: &str| l.contains("send DTMF digit end:");
        for key in digits.chars() {
            assert!(
                key.is_ascii_digit() || matches!(key, '*' | '#' | 'A'..='D'),
                "not a DTMF key: {key:?} in {digits:?}"
            );
            let before = self.count_lines(released);
            let name = self.name.clone();
            let stdin = self
                .stdin
                .as_mut()
                .unwrap_or_else(|| panic!("baresip {name} has been stopped"));
            stdin
                .write_all(format!("/sndcode {key}\n").as_bytes())
                .and_then(|()| stdin.flush())
                .unwrap_or_else(|e| panic!("baresip {name}: type DTMF key {key:?}: {e}"));
            self.wait_for_count(
                &format!("DTMF key {key:?} sent"),
                DTMF_KEY_TIMEOUT,
                before + 1,
                released,
            );
            thread::sleep(DTMF_KEY_GAP);
        }
    }

    /// Sends SIGTERM (baresip unregisters, closes its recordings and exits) and waits;
    /// kills it after [`EXIT_TIMEOUT`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                // Not common::signal: that asserts, and baresip may exit (its `-t`) meanwhile.
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
            }
            let exited = wait_until(&mut child, EXIT_TIMEOUT);
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            // Only now that it has exited: at end of file its stdio module would spin.
            self.stdin = None;
            if exited.is_none() {
                panic!(
                    "baresip {} did not exit within {EXIT_TIMEOUT:?} of SIGTERM",
                    self.name
                );
            }
        }
    }

    /// The one recording whose name ends with `suffix` (`-dec.wav`: received, `-enc.wav`:
    /// sent), read after [`Baresip::stop`].
    pub fn recording(&self, suffix: &str) -> Vec<i16> {
        let dir = self.dir.join("recordings");
        let files: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("read the recordings dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        assert_eq!(
            files.len(),
            1,
            "baresip {}: one *{suffix} recording in {}: {files:?}",
            self.name,
            dir.display()
        );
        read_wav(&files[0])
    }

    /// Its output, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- baresip {} ({}) ---\n{}",
            self.name,
            self.dir.display(),
            self.output().join("\n")
        )
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stdin = None;
        if thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

/// Replaces every `${KEY}` in `template`.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    assert!(!out.contains("${"), "a placeholder left unfilled:\n{out}");
    out
}

/// Collects `r`'s output as lines; baresip's status line ends in `\r`, so both split.
fn spawn_collector<R: Read + Send + 'static>(mut r: R, all: Arc<Mutex<Vec<String>>>) {
    thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                if b == b'\n' || b == b'\r' {
                    if !pending.is_empty() {
                        let line = String::from_utf8_lossy(&pending).into_owned();
                        if let Ok(mut v) = all.lock() {
                            v.push(line);
                        }
                        pending.clear();
                    }
                } else {
                    pending.push(b);
                }
            }
        }
        if !pending.is_empty() {
            if let Ok(mut v) = all.lock() {
                v.push(String::from_utf8_lossy(&pending).into_owned());
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Signals and WAV files

/// A linear chirp from `from_hz` to `to_hz` over `seconds`, amplitude-modulated at
/// `am_hz` (between 0.6 and 1.0 of `peak`): it never repeats, so its autocorrelation has
/// one sharp peak, and it covers the telephone band.
pub fn chirp(from_hz: f64, to_hz: f64, seconds: f64, am_hz: f64, peak: f64) -> Vec<i16> {
    let rate = f64::from(SAMPLE_RATE);
    // Whole samples only; the duration is a few seconds.
    let n = (seconds * rate) as usize;
    let sweep = (to_hz - from_hz) / (2.0 * seconds);
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let phase = 2.0 * std::f64::consts::PI * (from_hz * t + sweep * t * t);
            let envelope = 0.8 + 0.2 * (2.0 * std::f64::consts::PI * am_hz * t).sin();
            (peak * envelope * phase.sin()).round() as i16
        })
        .collect()
}

/// Writes `samples` as an 8 kHz mono 16-bit WAV (what aufile reads).
pub fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create a WAV");
    for &s in samples {
        w.write_sample(s).expect("write a WAV sample");
    }
    w.finalize().expect("finish a WAV");
}

/// Reads an 8 kHz mono 16-bit WAV (panics on any other format).
pub fn read_wav(path: &Path) -> Vec<i16> {
    let reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("open WAV {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (SAMPLE_RATE, 1, 16),
        "{}: 8 kHz mono 16-bit",
        path.display()
    );
    reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("read WAV {}: {e}", path.display()))
}

/// The best match of `received` inside `sent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    /// Normalised cross-correlation over the overlap, -1..=1.
    pub value: f64,
    /// `received[i]` lines up with `sent[i + lag]`: positive when the start of `sent`
    /// is missing from `received`, negative when `received` starts with something else.
    pub lag: isize,
    /// How many samples overlap at that lag.
    pub overlap: usize,
}

/// The lag in `min_lag..=max_lag` (samples) where `received` best matches `sent`, by
/// normalised cross-correlation over the overlap; lags with an overlap shorter than
/// `min_overlap` or with a silent side are not considered (`None` when no lag is left).
pub fn best_correlation(
    sent: &[i16],
    received: &[i16],
    min_lag: isize,
    max_lag: isize,
    min_overlap: usize,
) -> Option<Correlation> {
    let dots = CrossCorrelation::new(sent, received);
    // Prefix sums of squares: each lag's energies in O(1).
    let energy = |x: &[i16]| -> Vec<f64> {
        let mut acc = vec![0.0; x.len() + 1];
        for (i, &v) in x.iter().enumerate() {
            acc[i + 1] = acc[i] + f64::from(v) * f64::from(v);
        }
        acc
    };
    let (sent_energy, received_energy) = (energy(sent), energy(received));
    let mut best: Option<Correlation> = None;
    for lag in min_lag..=max_lag {
        // received[i] pairs with sent[i + lag] for i in first..end.
        let first = usize::try_from(-lag).unwrap_or(0);
        let end = received
            .len()
            .min(usize::try_from(sent.len() as isize - lag).unwrap_or(0));
        if end <= first || end - first < min_overlap {
            continue;
        }
        let s_from = (first as isize + lag) as usize;
        let s_to = (end as isize + lag) as usize;
        let norm = ((received_energy[end] - received_energy[first])
            * (sent_energy[s_to] - sent_energy[s_from]))
            .sqrt();
        if norm <= 0.0 {
            continue;
        }
        let value = dots.at(lag) / norm;
        if best.is_none_or(|b| value > b.value) {
            best = Some(Correlation {
                value,
                lag,
                overlap: end - first,
            });
        }
    }
    best
}

/// `sum over i of received[i] * sent[i + lag]` for every lag at once, by FFT: a direct sum
/// over a second of lags takes tens of seconds in a debug build.
pub struct CrossCorrelation {
    values: Vec<f64>,
}

impl CrossCorrelation {
    /// Computes every lag of `sent` against `received`.
    pub fn new(sent: &[i16], received: &[i16]) -> CrossCorrelation {
        // Zero-padded past both lengths, so the circular correlation does not wrap.
        let n = (sent.len() + received.len()).next_power_of_two();
        let load = |x: &[i16]| -> (Vec<f64>, Vec<f64>) {
            let mut re = vec![0.0; n];
            for (dst, &v) in re.iter_mut().zip(x) {
                *dst = f64::from(v);
            }
            (re, vec![0.0; n])
        };
        let (mut s_re, mut s_im) = load(sent);
        let (mut r_re, mut r_im) = load(received);
        fft(&mut s_re, &mut s_im, false);
        fft(&mut r_re, &mut r_im, false);
        // conj(R) * S: lag L lands at index L (mod n).
        let (mut re, mut im) = (vec![0.0; n], vec![0.0; n]);
        for k in 0..n {
            re[k] = r_re[k] * s_re[k] + r_im[k] * s_im[k];
            im[k] = r_re[k] * s_im[k] - r_im[k] * s_re[k];
        }
        fft(&mut re, &mut im, true);
        CrossCorrelation { values: re }
    }

    /// The sum at `lag` (0 beyond the signals).
    pub fn at(&self, lag: isize) -> f64 {
        let n = self.values.len() as isize;
        if lag.abs() >= n {
            return 0.0;
        }
        self.values[lag.rem_euclid(n) as usize]
    }
}

/// In-place iterative radix-2 FFT (`re.len()` a power of two); `inverse` also scales by
/// 1/n.
fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    assert!(n.is_power_of_two() && im.len() == n, "FFT size");
    // Bit-reversal permutation.
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let angle = sign * 2.0 * std::f64::consts::PI / len as f64;
        let half = len / 2;
        // Twiddles computed once per stage, not per butterfly.
        let twiddles: Vec<(f64, f64)> = (0..half)
            .map(|k| {
                let a = angle * k as f64;
                (a.cos(), a.sin())
            })
            .collect();
        for start in (0..n).step_by(len) {
            for (k, &(w_re, w_im)) in twiddles.iter().enumerate() {
                let (a, b) = (start + k, start + k + half);
                let t_re = re[b] * w_re - im[b] * w_im;
                let t_im = re[b] * w_im + im[b] * w_re;
                re[b] = re[a] - t_re;
                im[b] = im[a] - t_im;
                re[a] += t_re;
                im[a] += t_im;
            }
        }
        len <<= 1;
    }
    if inverse {
        let scale = 1.0 / n as f64;
        for v in re.iter_mut().chain(im.iter_mut()) {
            *v *= scale;
        }
    }
}

/// Samples for `seconds`.
pub fn samples(seconds: f64) -> usize {
    (seconds * f64::from(SAMPLE_RATE)) as usize
}

// ---------------------------------------------------------------------------------------
// The call log's MEDIA cell

/// The MEDIA cell of each row of `sentralbord calls list --tenant` output (the last
/// column, e.g. `PCMA/PCMU 0.0% 1ms`, or `-`).
pub fn media_cells(out: &str) -> Vec<String> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let Some(byte) = header.find("MEDIA") else {
        return Vec::new();
    };
    let column = header[..byte].chars().count();
    lines
        .map(|l| l.chars().skip(column).collect::<String>().trim().to_owned())
        .collect()
}

/// A MEDIA cell's parts: codecs, worst loss in percent, worst jitter in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaCell {
    /// The codecs, caller's first when they differ (`PCMA/PCMU`).
    pub codecs: Vec<String>,
    /// Packet loss, percent.
    pub loss_percent: f64,
    /// Jitter, milliseconds.
    pub jitter_ms: f64,
}

/// Parses `PCMA/PCMU 0.0% 1ms` (`None` for `-` or anything else).
pub fn parse_media_cell(cell: &str) -> Option<MediaCell> {
    let mut parts = cell.split_whitespace();
    let codecs = parts.next()?.split('/').map(str::to_owned).collect();
    let loss_percent = parts.next()?.strip_suffix('%')?.parse().ok()?;
    let jitter_ms = parts.next()?.strip_suffix("ms")?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(MediaCell {
        codecs,
        loss_percent,
        jitter_ms,
    })
}
