//! Tones and how loud each is in a recording, for the tests where every phone sends a
//! tone of its own frequency and records what it hears (tests/conference.rs,
//! tests/adhoc.rs). G.711 and mixing never keep bytes, so who is heard is told by the
//! level of each party's frequency (Goertzel) in half-second windows.

use std::f64::consts::PI;

use super::baresip::SAMPLE_RATE;

/// The analysis window: half a second of samples.
pub const WINDOW_SAMPLES: usize = SAMPLE_RATE as usize / 2;
/// How loud a tone must be at least to count as heard (dB relative to full scale).
pub const MIN_HEARD_DBFS: f64 = -40.0;
/// How much louder the tones a phone should hear must be than one it should not (its
/// own, or a party's who is no longer there).
pub const MIN_SEPARATION_DB: f64 = 20.0;

/// A sine of `hz` for `seconds` at about -12 dBFS.
pub fn tone(hz: f64, seconds: f64) -> Vec<i16> {
    let n = (seconds * f64::from(SAMPLE_RATE)) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            (8000.0 * (2.0 * PI * hz * t).sin()) as i16
        })
        .collect()
}

/// The level of `hz` in `x` (Goertzel), dB relative to a full-scale sine.
pub fn level_db(x: &[i16], hz: f64) -> f64 {
    if x.is_empty() {
        return -200.0;
    }
    let k = 2.0 * (2.0 * PI * hz / f64::from(SAMPLE_RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    let amplitude = 2.0 * power.max(0.0).sqrt() / x.len() as f64;
    20.0 * (amplitude / 32768.0).max(1e-10).log10()
}

/// The levels of `freqs` (in that order) in each whole [`WINDOW_SAMPLES`] window of
/// `rec`, in time order (a last partial window is left out).
pub fn window_levels(rec: &[i16], freqs: &[f64]) -> Vec<Vec<f64>> {
    rec.chunks_exact(WINDOW_SAMPLES)
        .map(|c| freqs.iter().map(|&hz| level_db(c, hz)).collect())
        .collect()
}

/// The best window of a recording for hearing `others` (the loudest of the weaker of
/// the two), with the levels of the others and of `own` there.
pub fn best_window(rec: &[i16], own: f64, others: [f64; 2]) -> Option<(f64, f64, f64)> {
    window_levels(rec, &[others[0], others[1], own])
        .into_iter()
        .map(|l| (l[0], l[1], l[2]))
        .max_by(|a, b| a.0.min(a.1).total_cmp(&b.0.min(b.1)))
}
