//! Prompts by stable name, per tenant, with the built-in Norwegian set as the fallback.
//!
//! Names are relative paths without extension: lowercase ASCII letters, digits, `-` and
//! `_`, in segments separated by `/` ("queue/position", "digits/3", "moh/default").
//! A tenant overrides any of them by putting `<media_dir>/<tenant>/<name>.wav` on disk;
//! [`PromptLibrary::load_dir`] reads those files (at start-up and on reload: the only file
//! access here), everything else works on bytes and memory. A lookup tries the tenant's
//! prompt first, then the built-in one.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::{Playlist, Prompt, PromptError, Repeat};

/// One built-in prompt: its name and the bytes of `media/sounds/<name>.wav`.
macro_rules! builtin {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/media/sounds/",
                $name,
                ".wav"
            ))
            .as_slice(),
        )
    };
}

/// The built-in set as (name, WAV bytes), embedded from `media/sounds/<name>.wav`
/// (regenerate with `scripts/gen-media.sh`).
pub const BUILTIN: &[(&str, &[u8])] = &[
    builtin!("queue/welcome"),
    builtin!("queue/please-hold"),
    builtin!("queue/all-busy"),
    builtin!("queue/thanks-for-waiting"),
    builtin!("queue/position"),
    builtin!("queue/in-queue"),
    builtin!("queue/more-than"),
    builtin!("queue/ahead-of-you"),
    builtin!("queue/expected-wait"),
    builtin!("time/less-than-a-minute"),
    builtin!("time/minute"),
    builtin!("time/minutes"),
    builtin!("time/second"),
    builtin!("time/seconds"),
    builtin!("common/more-than"),
    builtin!("common/goodbye"),
    builtin!("agent/logged-in"),
    builtin!("agent/logged-out"),
    builtin!("agent/paused"),
    builtin!("agent/unpaused"),
    builtin!("call/number-not-in-use"),
    builtin!("conference/welcome"),
    builtin!("conference/enter-pin"),
    builtin!("conference/wrong-pin"),
    builtin!("conference/only-participant"),
    builtin!("conference/locked"),
    builtin!("conference/muted"),
    builtin!("conference/unmuted"),
    builtin!("conference/adhoc-failed"),
    builtin!("digits/1"),
    builtin!("digits/1-neuter"),
    builtin!("digits/2"),
    builtin!("digits/3"),
    builtin!("digits/4"),
    builtin!("digits/5"),
    builtin!("digits/6"),
    builtin!("digits/7"),
    builtin!("digits/8"),
    builtin!("digits/9"),
    builtin!("digits/10"),
    builtin!("digits/11"),
    builtin!("digits/12"),
    builtin!("digits/13"),
    builtin!("digits/14"),
    builtin!("digits/15"),
    builtin!("digits/16"),
    builtin!("digits/17"),
    builtin!("digits/18"),
    builtin!("digits/19"),
    builtin!("digits/20"),
    builtin!("digits/30"),
    builtin!("digits/40"),
    builtin!("digits/50"),
    builtin!("digits/60"),
    builtin!("digits/70"),
    builtin!("digits/80"),
    builtin!("digits/90"),
    builtin!("moh/default"),
];

/// Deepest directory level searched below a tenant's directory.
const MAX_DEPTH: usize = 4;
/// Largest file `load_dir` reads: 30 minutes of 48 kHz stereo 16-bit, with room to spare.
const MAX_FILE_BYTES: u64 = 400 * 1024 * 1024;
/// Longest accepted prompt name or tenant key, in bytes.
const MAX_NAME_LEN: usize = 128;

/// What [`PromptLibrary::load_dir`] did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Prompts loaded, over all tenants.
    pub loaded: usize,
    /// Files and directories passed over, each with the reason (the daemon logs them and
    /// plays the built-in prompt instead).
    pub skipped: Vec<PromptError>,
}

/// Prompts for every tenant: tenant overrides over the defaults.
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    defaults: HashMap<String, Prompt>,
    tenants: HashMap<String, HashMap<String, Prompt>>,
}

impl PromptLibrary {
    /// A library with no prompts at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in Norwegian set, decoded from the bytes embedded in the binary.
    /// Fails only if an embedded file is broken, which the tests rule out.
    pub fn builtin() -> Result<Self, PromptError> {
        let mut library = Self::empty();
        for &(name, bytes) in BUILTIN {
            library.insert_wav(None, name, bytes)?;
        }
        Ok(library)
    }

    /// Adds `prompt` under its own name, to `tenant` or (with `None`) to the defaults,
    /// replacing any prompt of that name there.
    pub fn insert(&mut self, tenant: Option<&str>, prompt: Prompt) -> Result<(), PromptError> {
        if !is_valid_name(prompt.name()) {
            return Err(PromptError::InvalidName {
                name: prompt.name().to_owned(),
            });
        }
        let layer = match tenant {
            None => &mut self.defaults,
            Some(tenant) if is_valid_tenant(tenant) => {
                self.tenants.entry(tenant.to_owned()).or_default()
            }
            Some(tenant) => {
                return Err(PromptError::InvalidName {
                    name: tenant.to_owned(),
                })
            }
        };
        layer.insert(prompt.name().to_owned(), prompt);
        Ok(())
    }

    /// Decodes WAV `bytes` and adds them as prompt `name` (see [`Self::insert`]).
    pub fn insert_wav(
        &mut self,
        tenant: Option<&str>,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), PromptError> {
        if !is_valid_name(name) {
            return Err(PromptError::InvalidName {
                name: name.to_owned(),
            });
        }
        self.insert(tenant, Prompt::from_wav(name, bytes)?)
    }

    /// The prompt `name` for `tenant`: the tenant's own, else the default.
    pub fn get(&self, tenant: Option<&str>, name: &str) -> Option<&Prompt> {
        tenant
            .and_then(|t| self.tenants.get(t))
            .and_then(|layer| layer.get(name))
            .or_else(|| self.defaults.get(name))
    }

    /// A playlist of the prompts `names` for `tenant` (each looked up as in [`Self::get`]).
    pub fn playlist(
        &self,
        tenant: Option<&str>,
        names: &[&str],
        repeat: Repeat,
    ) -> Result<Playlist, PromptError> {
        let items = names
            .iter()
            .map(|&name| {
                self.get(tenant, name)
                    .cloned()
                    .ok_or_else(|| PromptError::Missing {
                        name: name.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Playlist::new(items, repeat))
    }

    /// Names of the default prompts, sorted.
    pub fn default_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.defaults.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Tenants that have overrides, sorted.
    pub fn tenants(&self) -> Vec<&str> {
        let mut tenants: Vec<&str> = self.tenants.keys().map(String::as_str).collect();
        tenants.sort_unstable();
        tenants
    }

    /// Replaces all tenant overrides with the WAV files under `media_dir`: each directory
    /// `<media_dir>/<tenant>/` holds `<name>.wav` files (subdirectories allowed, up to 4
    /// levels), named like the defaults. Files at the top level, hidden entries and other
    /// extensions are ignored; a broken or misnamed file is skipped and reported, and the
    /// default plays instead. Fails only when `media_dir` itself cannot be read, leaving
    /// the library unchanged.
    pub fn load_dir(&mut self, media_dir: &Path) -> Result<LoadReport, PromptError> {
        let entries = sorted_entries(media_dir)?;
        let mut report = LoadReport::default();
        self.tenants.clear();
        for (file_name, path) in entries {
            if file_name.starts_with('.') || !path.is_dir() {
                continue;
            }
            if !is_valid_tenant(&file_name) {
                report.skipped.push(PromptError::InvalidName {
                    name: path.display().to_string(),
                });
                continue;
            }
            let mut layer = HashMap::new();
            load_tree(&path, "", 0, &mut layer, &mut report.skipped);
            report.loaded += layer.len();
            if !layer.is_empty() {
                self.tenants.insert(file_name, layer);
            }
        }
        Ok(report)
    }
}

/// Loads the WAV files under `dir` into `layer`, with `prefix` before their names.
fn load_tree(
    dir: &Path,
    prefix: &str,
    depth: usize,
    layer: &mut HashMap<String, Prompt>,
    skipped: &mut Vec<PromptError>,
) {
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(e) => {
            skipped.push(e);
            return;
        }
    };
    for (file_name, path) in entries {
        if file_name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if depth < MAX_DEPTH {
                load_tree(
                    &path,
                    &format!("{prefix}{file_name}/"),
                    depth + 1,
                    layer,
                    skipped,
                );
            }
            continue;
        }
        let Some(stem) = file_name
            .len()
            .checked_sub(4)
            .filter(|&cut| file_name.is_char_boundary(cut))
            .and_then(|cut| {
                let (stem, extension) = file_name.split_at(cut);
                extension.eq_ignore_ascii_case(".wav").then_some(stem)
            })
        else {
            continue;
        };
        let name = format!("{prefix}{stem}");
        match load_file(&path, &name) {
            Ok(prompt) => {
                layer.insert(name, prompt);
            }
            Err(e) => skipped.push(e),
        }
    }
}

fn load_file(path: &Path, name: &str) -> Result<Prompt, PromptError> {
    let label = path.display().to_string();
    if !is_valid_name(name) {
        return Err(PromptError::InvalidName { name: label });
    }
    let io_error = |source| PromptError::Io {
        path: path.to_owned(),
        source,
    };
    if fs::metadata(path).map_err(io_error)?.len() > MAX_FILE_BYTES {
        return Err(PromptError::TooLong {
            name: label,
            max_seconds: super::wav::MAX_PROMPT_SECONDS,
        });
    }
    let bytes = fs::read(path).map_err(io_error)?;
    let samples = super::decode_wav(&label, &bytes, super::SampleRate::Narrowband)?;
    Ok(Prompt::new(name, samples))
}

/// The entries of `dir` as (UTF-8 file name, path), sorted by name; names that are not
/// UTF-8 are left out.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, PromptError> {
    let io_error = |source| PromptError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        if let Ok(name) = entry.file_name().into_string() {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// A prompt name: `/`-separated segments of `a-z`, `0-9`, `-`, `_`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// A tenant key: ASCII letters, digits, `-`, `_`, `.`, not starting with `.`.
pub fn is_valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= MAX_NAME_LEN
        && !tenant.starts_with('.')
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::super::announce::{self, names};
    use super::super::{PlayState, Player, FRAME_SAMPLES_8K};
    use super::*;
    use hound::{SampleFormat, WavSpec, WavWriter};
    use std::io::Cursor;

    fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let spec = WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        cursor.into_inner()
    }

    /// The prompts the product needs (issue 5): queue, conference, call handling.
    const REQUIRED: &[&str] = &[
        "queue/welcome",
        "queue/please-hold",
        "queue/all-busy",
        "queue/position",
        "queue/in-queue",
        "queue/expected-wait",
        "time/minutes",
        "time/seconds",
        "conference/enter-pin",
        "conference/wrong-pin",
        "conference/only-participant",
        "conference/locked",
        "conference/muted",
        "conference/unmuted",
        "conference/adhoc-failed",
        "common/goodbye",
        "call/number-not-in-use",
        "moh/default",
    ];

    #[test]
    fn every_builtin_prompt_loads_at_8_khz_and_is_not_empty() {
        let mut total_bytes = 0;
        for &(name, bytes) in BUILTIN {
            total_bytes += bytes.len();
            let reader = hound::WavReader::new(Cursor::new(bytes)).unwrap();
            let spec = reader.spec();
            assert_eq!(
                (spec.channels, spec.sample_rate, spec.bits_per_sample),
                (1, 8000, 16),
                "{name}"
            );
            let prompt = Prompt::from_wav(name, bytes).unwrap();
            assert!(prompt.duration_ms() >= 200, "{name} is too short");
            let peak = prompt
                .samples()
                .iter()
                .map(|v| v.unsigned_abs())
                .max()
                .unwrap_or(0);
            // Speech is normalised to -4 dBFS, the music peaks near -7 dBFS.
            assert!((10_000..=26_000).contains(&peak), "{name}: peak {peak}");
        }
        assert!(
            total_bytes < 3 * 1024 * 1024,
            "{total_bytes} bytes embedded"
        );
        let library = PromptLibrary::builtin().unwrap();
        assert_eq!(
            library.default_names().len(),
            BUILTIN.len(),
            "duplicate names"
        );
        for name in library.default_names() {
            assert!(is_valid_name(name), "{name}");
        }
    }

    #[test]
    fn builtin_list_matches_the_files_in_media_sounds() {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for (name, path) in sorted_entries(dir).unwrap() {
                if path.is_dir() {
                    walk(&path, &format!("{prefix}{name}/"), out);
                } else if let Some(stem) = name.strip_suffix(".wav") {
                    out.push(format!("{prefix}{stem}"));
                }
            }
        }
        let mut on_disk = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("media/sounds"),
            "",
            &mut on_disk,
        );
        on_disk.sort();
        let mut listed: Vec<&str> = BUILTIN.iter().map(|&(name, _)| name).collect();
        listed.sort_unstable();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn every_name_the_product_and_the_helpers_ask_for_is_built_in() {
        let library = PromptLibrary::builtin().unwrap();
        for &name in REQUIRED.iter().chain(announce::all_prompt_names().iter()) {
            assert!(library.get(None, name).is_some(), "{name} is not built in");
        }
        for position in 0..=150 {
            let names = announce::queue_position(position);
            library.playlist(None, &names, Repeat::Once).unwrap();
        }
        for seconds in (0..=8000).step_by(5).chain([u32::MAX]) {
            let names = announce::expected_wait(seconds);
            library.playlist(None, &names, Repeat::Once).unwrap();
        }
    }

    #[test]
    fn queue_announcement_plays_once_in_order() {
        let library = PromptLibrary::builtin().unwrap();
        let names = announce::queue_position(3);
        let playlist = library
            .playlist(None, &names, Repeat::Once)
            .unwrap()
            .with_gap_ms(100);
        let mut expected: Vec<i16> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                expected.extend([0; 800]);
            }
            expected.extend_from_slice(library.get(None, name).unwrap().samples());
        }
        let mut player = Player::new(playlist);
        let mut played = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES_8K];
        while player.fill(&mut frame) == PlayState::Playing {
            played.extend_from_slice(&frame);
        }
        played.extend_from_slice(&frame);
        assert_eq!(
            played.len(),
            expected.len().div_ceil(FRAME_SAMPLES_8K) * FRAME_SAMPLES_8K
        );
        assert_eq!(played[..expected.len()], expected[..]);
    }

    #[test]
    fn music_on_hold_is_30_to_60_seconds_and_loops_without_a_click() {
        let library = PromptLibrary::builtin().unwrap();
        let moh = library.get(None, names::MOH_DEFAULT).unwrap();
        assert!(
            (30_000..=60_000).contains(&moh.duration_ms()),
            "{}",
            moh.duration_ms()
        );
        let samples = moh.samples();
        let step = |a: i16, b: i16| (i32::from(a) - i32::from(b)).unsigned_abs();
        let typical = samples.windows(2).map(|w| step(w[0], w[1])).max().unwrap();
        let (first, last) = (samples[0], samples[samples.len() - 1]);
        assert!(
            step(last, first) <= typical / 4,
            "seam {} vs {typical}",
            step(last, first)
        );
        // The music is never silent for long: no 100 ms stretch near zero.
        assert!(samples
            .chunks(800)
            .all(|c| c.iter().any(|v| v.unsigned_abs() > 300)));
    }

    #[test]
    fn tenant_overrides_fall_back_to_the_defaults() {
        let mut library = PromptLibrary::builtin().unwrap();
        library
            .insert(Some("acme"), Prompt::new("queue/welcome", vec![1, 2, 3]))
            .unwrap();
        assert_eq!(
            library
                .get(Some("acme"), "queue/welcome")
                .unwrap()
                .samples(),
            [1, 2, 3]
        );
        let default = library.get(None, "queue/welcome").unwrap().clone();
        assert_eq!(library.get(Some("other"), "queue/welcome"), Some(&default));
        assert_eq!(
            library.get(Some("acme"), "digits/3"),
            library.get(None, "digits/3")
        );
        assert!(library.get(Some("acme"), "no/such").is_none());
        let err = library
            .playlist(Some("acme"), &["queue/welcome", "no/such"], Repeat::Once)
            .unwrap_err();
        assert!(matches!(err, PromptError::Missing { ref name } if name == "no/such"));
    }

    #[test]
    fn names_and_tenants_are_validated() {
        for good in ["moh/default", "digits/1-neuter", "a_b/c9"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "", "/x", "x/", "a//b", "../x", "Queue/x", "a b", "x.wav", "æ",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_tenant("acme-as.no_1"));
        for bad in ["", ".hidden", "a/b", "a b", ".."] {
            assert!(!is_valid_tenant(bad), "{bad}");
        }
        let mut library = PromptLibrary::empty();
        assert!(matches!(
            library.insert(None, Prompt::new("../etc", vec![1])),
            Err(PromptError::InvalidName { .. })
        ));
        assert!(matches!(
            library.insert(Some("../x"), Prompt::new("moh/default", vec![1])),
            Err(PromptError::InvalidName { .. })
        ));
        assert!(matches!(
            library.insert_wav(None, "x", b"not a wav"),
            Err(PromptError::NotWav { .. })
        ));
    }

    #[test]
    fn load_dir_reads_tenant_overrides_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |relative: &str, bytes: &[u8]| {
            let path = root.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        };
        let tone: Vec<i16> = (0..1600).map(|i| ((i % 16) * 100) as i16).collect();
        write("acme/queue/welcome.wav", &wav(16_000, &tone));
        write("acme/moh/default.WAV", &wav(8000, &tone));
        write("acme/digits/3.wav", b"junk");
        write("acme/Bad Name.wav", &wav(8000, &tone));
        write("acme/notes.txt", b"ignored");
        write("acme/.hidden/x.wav", b"ignored");
        write("top-level.wav", b"ignored");
        write("bad tenant/queue/welcome.wav", &wav(8000, &tone));
        write("empty-tenant/readme.md", b"nothing here");

        let mut library = PromptLibrary::builtin().unwrap();
        let report = library.load_dir(root).unwrap();
        assert_eq!(report.loaded, 2);
        assert_eq!(library.tenants(), ["acme"]);
        let welcome = library.get(Some("acme"), "queue/welcome").unwrap();
        assert_eq!(welcome.samples().len(), 800, "resampled from 16 kHz");
        assert_eq!(
            library.get(Some("acme"), "moh/default").unwrap().samples(),
            tone
        );
        // The broken override falls back to the default.
        assert_eq!(
            library.get(Some("acme"), "digits/3"),
            library.get(None, "digits/3")
        );

        let skipped: Vec<String> = report.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(matches!(report.skipped[0], PromptError::InvalidName { .. }));
        assert!(skipped[0].contains("Bad Name.wav"), "{skipped:?}");
        assert!(matches!(report.skipped[1], PromptError::NotWav { .. }));
        assert!(skipped[1].contains("digits/3.wav"), "{skipped:?}");
        assert!(skipped[2].contains("bad tenant"), "{skipped:?}");

        // Reload after the tenant removed its files: the overrides are gone.
        fs::remove_dir_all(root.join("acme")).unwrap();
        let report = library.load_dir(root).unwrap();
        assert_eq!(report.loaded, 0);
        assert!(library.tenants().is_empty());
        assert_eq!(
            library.get(Some("acme"), "queue/welcome"),
            library.get(None, "queue/welcome")
        );

        // A missing media directory is an error and changes nothing.
        library
            .insert(Some("acme"), Prompt::new("queue/welcome", vec![1]))
            .unwrap();
        let err = library.load_dir(&root.join("missing")).unwrap_err();
        assert!(matches!(err, PromptError::Io { .. }));
        assert_eq!(library.tenants(), ["acme"]);
    }
}
