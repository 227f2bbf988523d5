//! Audio that sentralbord generates for a leg instead of relaying the other leg: silence,
//! call-progress tones, and prompts from a library plugged in by the caller.
//!
//! Everything here is 8 kHz linear PCM, one frame per call (160 samples for 20 ms), because
//! the relay encodes generated audio to G.711 only. Creating a source may allocate; filling
//! a frame must not.

use crate::media::control::ToneKind;

/// Sample rate of every generated frame.
pub const GENERATED_SAMPLE_RATE: u32 = 8000;

/// Frequency of the Nordic/European call-progress tones (ITU-T E.180 for Norway).
pub const TONE_HZ: f64 = 425.0;

/// Peak amplitude of the tones: about -13 dBm0 (0 dBm0 is a 22700 peak in 16-bit PCM).
const TONE_PEAK: f64 = 5_080.0;

/// Whether a source has more audio after the frame it just filled.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFill {
    /// The frame is filled and more follow.
    Playing,
    /// The frame is filled (padded with silence) and it was the last one.
    Finished,
}

/// A generator of 8 kHz linear audio frames for one leg.
pub trait FrameSource: Send {
    /// Fills the whole of `out` with the next samples; must not allocate.
    fn fill(&mut self, out: &mut [i16]) -> FrameFill;
}

/// Opens prompt playlists for [`crate::media::control::LegSource::Prompts`]; the prompt
/// library plugs in here.
pub trait PromptFactory: Send {
    /// A source playing `names` in order (for `tenant`'s overrides), again and again if
    /// `looped`; `None` when none of them can be played.
    fn open(
        &self,
        tenant: Option<i64>,
        names: &[String],
        looped: bool,
    ) -> Option<Box<dyn FrameSource>>;
}

/// A factory that knows no prompts (until the prompt library is plugged in).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrompts;

impl PromptFactory for NoPrompts {
    fn open(
        &self,
        _tenant: Option<i64>,
        _names: &[String],
        _looped: bool,
    ) -> Option<Box<dyn FrameSource>> {
        None
    }
}

/// Endless silence (keeps the RTP stream, NAT bindings and timestamps alive).
#[derive(Debug, Clone, Copy, Default)]
pub struct SilenceSource;

impl FrameSource for SilenceSource {
    fn fill(&mut self, out: &mut [i16]) -> FrameFill {
        out.fill(0);
        FrameFill::Playing
    }
}

/// A 425 Hz tone with the cadence of a [`ToneKind`], endless.
///
/// The sine comes from a two-term resonator (`y[n] = 2cos(w) y[n-1] - y[n-2]`) restarted at
/// phase zero at the start of every burst, so it costs two multiplications a sample and
/// cannot drift over a call however long.
#[derive(Debug, Clone)]
pub struct ToneSource {
    on_samples: u32,
    period_samples: u32,
    /// Position in the cadence period.
    position: u32,
    coefficient: f64,
    previous: f64,
    before_previous: f64,
}

impl ToneSource {
    /// The tone for `kind`, starting at the beginning of its first burst.
    pub fn new(kind: ToneKind) -> Self {
        let (on_ms, off_ms) = Self::cadence_ms(kind);
        let per_ms = GENERATED_SAMPLE_RATE / 1000;
        let omega = std::f64::consts::TAU * TONE_HZ / f64::from(GENERATED_SAMPLE_RATE);
        let mut tone = Self {
            on_samples: on_ms * per_ms,
            period_samples: (on_ms + off_ms) * per_ms,
            position: 0,
            coefficient: 2.0 * omega.cos(),
            previous: 0.0,
            before_previous: 0.0,
        };
        tone.restart_burst();
        tone
    }

    /// On and off times in milliseconds (as documented on [`ToneKind`]).
    pub fn cadence_ms(kind: ToneKind) -> (u32, u32) {
        match kind {
            ToneKind::Ringback => (1000, 4000),
            ToneKind::Busy => (500, 500),
            ToneKind::Congestion => (200, 200),
        }
    }

    /// Sets the resonator so the next sample is `sin(0)` of the burst.
    fn restart_burst(&mut self) {
        let omega = (self.coefficient / 2.0).acos();
        // y[-1] = sin(-w), y[-2] = sin(-2w): the recursion then yields sin(0), sin(w), ...
        self.previous = -TONE_PEAK * omega.sin();
        self.before_previous = -TONE_PEAK * (2.0 * omega).sin();
    }
}

impl FrameSource for ToneSource {
    fn fill(&mut self, out: &mut [i16]) -> FrameFill {
        for sample in out.iter_mut() {
            if self.position == 0 {
                self.restart_burst();
            }
            *sample = if self.position < self.on_samples {
                let next = self.coefficient * self.previous - self.before_previous;
                self.before_previous = self.previous;
                self.previous = next;
                // Bounded by TONE_PEAK, far inside i16.
                next.round() as i16
            } else {
                0
            };
            self.position += 1;
            if self.position >= self.period_samples {
                self.position = 0;
            }
        }
        FrameFill::Playing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of one 20 ms frame.
    const FRAME: usize = 160;

    fn frames(kind: ToneKind, count: usize) -> Vec<i16> {
        let mut tone = ToneSource::new(kind);
        let mut all = Vec::with_capacity(count * FRAME);
        let mut frame = [0i16; FRAME];
        for _ in 0..count {
            assert_eq!(tone.fill(&mut frame), FrameFill::Playing);
            all.extend_from_slice(&frame);
        }
        all
    }

    #[test]
    fn tone_is_a_425_hz_sine_at_about_minus_13_dbm0() {
        let samples = frames(ToneKind::Ringback, 50);
        for (n, &s) in samples.iter().take(8000).enumerate() {
            let expected = TONE_PEAK * (std::f64::consts::TAU * 425.0 * n as f64 / 8000.0).sin();
            assert!(
                (f64::from(s) - expected).abs() <= 1.0,
                "sample {n}: {s} vs {expected}"
            );
        }
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((5070..=5080).contains(&peak), "peak {peak}");
    }

    #[test]
    fn cadences_follow_the_tone_kinds() {
        for (kind, on, off) in [
            (ToneKind::Ringback, 8000, 32000),
            (ToneKind::Busy, 4000, 4000),
            (ToneKind::Congestion, 1600, 1600),
        ] {
            let period = on + off;
            let samples = frames(kind, 2 * period / FRAME);
            for (n, &s) in samples.iter().enumerate() {
                if n % period >= on {
                    assert_eq!(s, 0, "{kind:?}: sample {n} is in the pause");
                }
            }
            for cycle in 0..2 {
                let burst = &samples[cycle * period..cycle * period + on];
                let energy: f64 = burst.iter().map(|&s| f64::from(s).powi(2)).sum();
                let rms = (energy / burst.len() as f64).sqrt();
                // A sine's RMS is peak / sqrt(2).
                assert!(
                    (rms - TONE_PEAK / 2f64.sqrt()).abs() < 40.0,
                    "{kind:?}: rms {rms}"
                );
                assert_eq!(burst[0], 0, "every burst starts at phase zero");
            }
        }
    }

    #[test]
    fn silence_is_zero_and_no_prompts_opens_nothing() {
        let mut frame = [7i16; FRAME];
        assert_eq!(SilenceSource.fill(&mut frame), FrameFill::Playing);
        assert!(frame.iter().all(|&s| s == 0));
        assert!(NoPrompts
            .open(Some(1), &["moh/default".to_string()], true)
            .is_none());
    }
}
