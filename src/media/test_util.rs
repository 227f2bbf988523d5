//! Signal measurements shared by the media modules' tests.

use std::f64::consts::TAU;

/// The amplitude of the `hz` component of `x` sampled at `rate` (Goertzel).
pub fn tone_amplitude<T: Copy + Into<f64>>(x: &[T], hz: f64, rate: f64) -> f64 {
    let coeff = 2.0 * (TAU * hz / rate).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = v.into() + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / x.len().max(1) as f64
}

/// A ratio in decibels.
pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}
