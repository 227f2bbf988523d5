//! Packet-loss concealment: a missing frame is replaced by the last good frame's final pitch
//! period repeated (so the waveform continues without a jump), faded by 6 dB per frame and
//! to silence after [`FADE_FRAMES`] frames (60 ms), so a burst of loss never garbles a room.
//! When audio resumes, its first [`crossfade_len`] samples are cross-faded from the
//! concealment's continuation (a fade-in once the concealment has died out), so the
//! boundary does not click.
//!
//! Everything is a pure function of (last good frame, frames lost so far, pitch): the
//! mixer only synthesises concealment for participants someone hears.

/// Frames of loss over which concealment fades to silence (3 x 20 ms).
pub const FADE_FRAMES: u32 = 3;

/// Lowest voice pitch we look for, in Hz (longest period).
const MIN_PITCH_HZ: usize = 66;
/// Highest voice pitch we look for, in Hz (shortest period).
const MAX_PITCH_HZ: usize = 400;

/// Concealment state of one incoming stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LossRun {
    /// Frames concealed in a row so far (0: the last frame was real).
    pub(crate) frames: u32,
    /// The repeated period in samples (0: not estimated yet for this run).
    pub(crate) pitch: usize,
}

impl LossRun {
    /// One more frame is missing.
    pub(crate) fn lose(&mut self) {
        if self.frames == 0 {
            self.pitch = 0;
        }
        self.frames = self.frames.saturating_add(1);
    }

    /// A real frame arrived; returns how many frames had been concealed before it.
    pub(crate) fn resume(&mut self) -> u32 {
        std::mem::take(&mut self.frames)
    }
}

/// The gain at the end of the `frames`-th concealed frame (1.0 at the start of the loss).
pub(crate) fn gain_after(frames: u32) -> f32 {
    if frames >= FADE_FRAMES {
        0.0
    } else {
        // -6 dB per frame; frames < FADE_FRAMES, so the shift cannot overflow.
        1.0 / (1u32 << frames) as f32
    }
}

/// Samples cross-faded when audio resumes after loss (5 ms).
pub(crate) fn crossfade_len(frame_len: usize) -> usize {
    (frame_len / 4).max(1)
}

/// The period (in samples) that best continues `history`: the lag whose preceding segment
/// correlates best with the history's last few milliseconds.
pub(crate) fn pitch_period(history: &[i16], sample_rate: u32) -> usize {
    let len = history.len();
    let rate = usize::try_from(sample_rate).unwrap_or(8000);
    let window = (len / 4).max(1);
    let shortest = (rate / MAX_PITCH_HZ).max(1);
    let longest = (rate / MIN_PITCH_HZ).min(len.saturating_sub(window));
    if shortest > longest {
        return len.max(1);
    }
    let Some(target) = history.get(len - window..) else {
        return len.max(1);
    };
    let mut best = (shortest, f64::MIN);
    for lag in shortest..=longest {
        let Some(candidate) = history.get(len - window - lag..len - lag) else {
            continue;
        };
        let (mut correlation, mut energy) = (0i64, 0i64);
        for (&a, &b) in target.iter().zip(candidate) {
            correlation += i64::from(a) * i64::from(b);
            energy += i64::from(b) * i64::from(b);
        }
        // Normalised by the candidate's energy only: the target's is the same for all lags.
        let score = if energy == 0 {
            0.0
        } else {
            correlation as f64 / (energy as f64).sqrt()
        };
        if score > best.1 {
            best = (lag, score);
        }
    }
    best.0
}

/// Fills `out` with the `frames`-th concealed frame (1-based) after `history`.
pub(crate) fn conceal(history: &[i16], pitch: usize, frames: u32, out: &mut [i16]) {
    if frames == 0 || frames > FADE_FRAMES || history.is_empty() || pitch == 0 {
        out.fill(0);
        return;
    }
    let start_gain = gain_after(frames - 1);
    let end_gain = gain_after(frames);
    let len = out.len();
    let first = (frames as usize - 1) * len;
    let step = (end_gain - start_gain) / len.max(1) as f32;
    for (j, sample) in out.iter_mut().enumerate() {
        let gain = start_gain + step * (j + 1) as f32;
        *sample = scaled(periodic(history, pitch, first + j), gain);
    }
}

/// Cross-fades the start of a real frame that follows `frames` concealed frames.
pub(crate) fn resume(history: &[i16], pitch: usize, frames: u32, real: &mut [i16]) {
    if frames == 0 {
        return;
    }
    let fade = crossfade_len(real.len());
    let gain = gain_after(frames);
    let first = frames as usize * real.len();
    for (j, sample) in real.iter_mut().take(fade).enumerate() {
        let continuation = if gain > 0.0 && pitch > 0 && !history.is_empty() {
            f32::from(scaled(periodic(history, pitch, first + j), gain))
        } else {
            0.0
        };
        let weight = j as f32 / fade as f32;
        let mixed = f32::from(*sample) * weight + continuation * (1.0 - weight);
        // Between two i16 values: in range.
        *sample = mixed.round() as i16;
    }
}

/// Sample `i` of the endless repetition of `history`'s last `pitch` samples.
fn periodic(history: &[i16], pitch: usize, i: usize) -> i16 {
    let pitch = pitch.min(history.len()).max(1);
    let base = history.len() - pitch;
    history.get(base + i % pitch).copied().unwrap_or(0)
}

fn scaled(sample: i16, gain: f32) -> i16 {
    // |gain| <= 1: stays in range (the cast saturates anyway).
    (f32::from(sample) * gain).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_util::tone_amplitude;

    fn tone(hz: f64, amplitude: f64, start: usize, len: usize) -> Vec<i16> {
        (start..start + len)
            .map(|n| (amplitude * (std::f64::consts::TAU * hz * n as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    fn max_step(samples: &[i16]) -> i32 {
        samples
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn pitch_of_a_tone_is_a_whole_number_of_its_periods() {
        // 200 Hz: period 40 samples exactly.
        let history = tone(200.0, 8000.0, 0, 160);
        let pitch = pitch_period(&history, 8000);
        assert_eq!(pitch % 40, 0, "{pitch}");
        // 700 Hz: 11.43 samples; 7 periods are 80 samples.
        let history = tone(700.0, 8000.0, 0, 160);
        let pitch = pitch_period(&history, 8000);
        let periods = pitch as f64 * 700.0 / 8000.0;
        assert!((periods - periods.round()).abs() < 0.05, "{pitch}");
        // Silence or a too short history still gives a usable period.
        assert!(pitch_period(&[0; 160], 8000) >= 1);
        assert!(pitch_period(&[1, 2, 3], 8000) >= 1);
        assert!(pitch_period(&[], 8000) >= 1);
    }

    #[test]
    fn concealment_continues_the_wave_and_fades_out() {
        let history = tone(440.0, 8000.0, 0, 160);
        let pitch = pitch_period(&history, 8000);
        let mut all = history.clone();
        let mut amplitudes = Vec::new();
        for frames in 1..=4 {
            let mut out = [0i16; 160];
            conceal(&history, pitch, frames, &mut out);
            amplitudes.push(tone_amplitude(&out, 440.0, 8000.0));
            all.extend_from_slice(&out);
        }
        // Continuation without a click: no step larger than the tone's own steepest step
        // (2 pi f A / fs = 2764) plus a margin.
        assert!(max_step(&all) < 3000, "step {}", max_step(&all));
        // Attenuated frame by frame, then silence.
        assert!(
            amplitudes[0] > 4000.0 && amplitudes[0] < 8000.0,
            "{amplitudes:?}"
        );
        assert!(amplitudes[1] < amplitudes[0] * 0.6);
        assert!(amplitudes[2] < amplitudes[1] * 0.7);
        assert_eq!(amplitudes[3], 0.0);
    }

    #[test]
    fn resume_fades_in_after_silence_and_blends_after_short_loss() {
        let history = tone(440.0, 8000.0, 0, 160);
        let pitch = pitch_period(&history, 8000);
        // After a long loss the concealment is silent: the real frame fades in.
        let mut real = tone(440.0, 8000.0, 800, 160);
        let original = real.clone();
        resume(&history, pitch, 5, &mut real);
        assert_eq!(real[0], 0);
        assert!(max_step(&real) < 3000);
        assert_eq!(real[40..], original[40..]);
        // After one lost frame the boundary between concealment and real audio is smooth.
        let mut concealed = [0i16; 160];
        conceal(&history, pitch, 1, &mut concealed);
        let mut real = tone(440.0, 8000.0, 320, 160);
        resume(&history, pitch, 1, &mut real);
        let mut joined = concealed.to_vec();
        joined.extend_from_slice(&real);
        assert!(max_step(&joined) < 5000, "step {}", max_step(&joined));
        // No loss: untouched.
        let mut untouched = original.clone();
        resume(&history, pitch, 0, &mut untouched);
        assert_eq!(untouched, original);
    }

    #[test]
    fn loss_run_bookkeeping() {
        let mut run = LossRun::default();
        run.lose();
        run.pitch = 40;
        run.lose();
        assert_eq!(run.frames, 2);
        assert_eq!(run.pitch, 40, "pitch kept within a run");
        assert_eq!(run.resume(), 2);
        run.lose();
        assert_eq!(run.pitch, 0, "a new run estimates again");
        assert_eq!(gain_after(0), 1.0);
        assert_eq!(gain_after(1), 0.5);
        assert_eq!(gain_after(FADE_FRAMES), 0.0);
        let mut out = [5i16; 4];
        conceal(&[], 10, 1, &mut out);
        assert_eq!(out, [0; 4]);
    }
}
