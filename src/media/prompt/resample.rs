//! Load-time sample-rate conversion: a Kaiser-windowed sinc low-pass evaluated at the exact
//! fractional position of every output sample.
//!
//! The kernel is tabulated at 512 points per input sample and linearly interpolated, which
//! handles any pair of rates (44.1 kHz to 8 kHz as well as 11.025 kHz to 16 kHz) with one
//! small table. The pass band ends at 85 % of the lower Nyquist frequency and the stop band
//! starts at it, with about 90 dB of attenuation: nothing above 4 kHz folds back into an
//! 8 kHz prompt. Not on the hot path: prompts are converted once, when they are loaded.

use std::f64::consts::PI;

/// Pass-band edge, as a fraction of the lower of the two Nyquist frequencies.
const PASS_EDGE: f64 = 0.85;
/// Stop-band attenuation the kernel length is designed for, in dB.
const STOP_BAND_DB: f64 = 90.0;
/// Kernel table resolution, in points per input sample.
const OVERSAMPLING: usize = 512;

/// Converts `input` sampled at `from_hz` to `to_hz`. Both rates must be non-zero.
/// The output has `ceil(len * to_hz / from_hz)` samples; its first sample is aligned with
/// the input's first.
pub(super) fn resample(input: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    if from_hz == to_hz || from_hz == 0 || to_hz == 0 {
        return input.to_vec();
    }
    let kernel = Kernel::new(from_hz, to_hz);
    let (from, to) = (u64::from(from_hz), u64::from(to_hz));
    let len = input.len() as u64;
    let out_len = (len * to).div_ceil(from) as usize;
    let half = kernel.half_width as i64;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        // Exact position of output sample n on the input time axis: whole + frac.
        let numerator = n * from;
        let whole = (numerator / to) as i64;
        let frac = (numerator % to) as f64 / to as f64;
        let first = (whole - half + 1).max(0);
        let last = (whole + half).min(len as i64 - 1);
        let mut acc = 0.0f64;
        for k in first..=last {
            let distance = (whole - k) as f64 + frac;
            if let Some(&x) = input.get(k as usize) {
                acc += f64::from(x) * kernel.at(distance);
            }
        }
        out.push(acc as f32);
    }
    out
}

/// A windowed-sinc low-pass, tabulated over `0..=half_width` input samples (it is symmetric).
struct Kernel {
    table: Vec<f64>,
    half_width: usize,
}

impl Kernel {
    fn new(from_hz: u32, to_hz: u32) -> Self {
        let from = f64::from(from_hz);
        let nyquist = f64::from(from_hz.min(to_hz)) / 2.0;
        let pass = PASS_EDGE * nyquist;
        // Cutoff in cycles per input sample, transition width in radians per input sample.
        let cutoff = (pass + nyquist) / 2.0 / from;
        let transition = (nyquist - pass) / from * 2.0 * PI;
        // Kaiser's estimates of the window shape and length for the wanted attenuation.
        let beta = 0.1102 * (STOP_BAND_DB - 8.7);
        let taps = (STOP_BAND_DB - 8.0) / (2.285 * transition);
        let half_width = (taps / 2.0).ceil().max(1.0) as usize;
        let points = half_width * OVERSAMPLING;
        let norm = bessel_i0(beta);
        let table = (0..=points + 1)
            .map(|i| {
                let t = i as f64 / OVERSAMPLING as f64;
                let ratio = (t / half_width as f64).min(1.0);
                let window = bessel_i0(beta * (1.0 - ratio * ratio).sqrt()) / norm;
                let x = 2.0 * cutoff * t;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (PI * x).sin() / (PI * x)
                };
                2.0 * cutoff * sinc * window
            })
            .collect();
        Self { table, half_width }
    }

    /// The kernel at `distance` input samples from its centre (0 beyond the half width).
    fn at(&self, distance: f64) -> f64 {
        let position = distance.abs() * OVERSAMPLING as f64;
        let index = position as usize;
        let frac = position - index as f64;
        match (self.table.get(index), self.table.get(index + 1)) {
            (Some(a), Some(b)) if index < self.half_width * OVERSAMPLING => a + (b - a) * frac,
            _ => 0.0,
        }
    }
}

/// The zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let quarter_x2 = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..200 {
        term *= quarter_x2 / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    fn sine(hz: f64, rate: u32, seconds: f64, amplitude: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| (amplitude * (TAU * hz * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    /// Amplitude of the `hz` component (Goertzel).
    use crate::media::test_util::db;

    fn amplitude(x: &[f32], hz: f64, rate: u32) -> f64 {
        crate::media::test_util::tone_amplitude(x, hz, f64::from(rate))
    }

    #[test]
    fn common_rates_keep_the_pass_band_and_remove_what_would_alias() {
        for from in [11_025, 16_000, 22_050, 32_000, 44_100, 48_000] {
            let input: Vec<f32> = sine(1000.0, from, 1.0, 0.5)
                .iter()
                .zip(sine(5500.0, from, 1.0, 0.5))
                .map(|(a, b)| a + b)
                .collect();
            let out = resample(&input, from, 8000);
            assert_eq!(out.len(), 8000, "{from}");
            let body = &out[400..7600];
            let kept = amplitude(body, 1000.0, 8000);
            // 5.5 kHz would fold to 2.5 kHz at 8 kHz.
            let folded = amplitude(body, 2500.0, 8000);
            assert!(db(kept / 0.5).abs() < 0.05, "{from}: {kept}");
            assert!(db(folded / 0.5) < -80.0, "{from}: {} dB", db(folded / 0.5));
        }
    }

    #[test]
    fn upsampling_keeps_the_signal_and_adds_no_images() {
        let input = sine(1000.0, 8000, 1.0, 0.5);
        let out = resample(&input, 8000, 16_000);
        assert_eq!(out.len(), 16_000);
        let body = &out[800..15_200];
        assert!(db(amplitude(body, 1000.0, 16_000) / 0.5).abs() < 0.05);
        // The image of 1 kHz around the old Nyquist frequency would sit at 7 kHz.
        assert!(db(amplitude(body, 7000.0, 16_000) / 0.5) < -80.0);
    }

    #[test]
    fn pass_band_is_flat_up_to_3_4_khz() {
        for hz in [300.0, 1000.0, 2000.0, 3000.0, 3400.0] {
            let out = resample(&sine(hz, 44_100, 1.0, 0.5), 44_100, 8000);
            let gain = db(amplitude(&out[400..7600], hz, 8000) / 0.5);
            assert!(gain.abs() < 0.1, "{hz} Hz: {gain} dB");
        }
    }

    #[test]
    fn edge_cases() {
        assert!(resample(&[], 16_000, 8000).is_empty());
        assert_eq!(resample(&[0.25], 16_000, 8000).len(), 1);
        assert_eq!(resample(&[0.1, 0.2, 0.3], 8000, 8000), vec![0.1, 0.2, 0.3]);
        assert_eq!(resample(&[0.1; 3], 0, 8000).len(), 3);
        // Constant input stays constant away from the edges.
        let out = resample(&[0.5; 4410], 44_100, 8000);
        assert!(out[200..600].iter().all(|&v| (v - 0.5).abs() < 1e-4));
    }
}
