//! Call-progress tones and beeps: one or two summed sines switched on and off by a cadence.
//!
//! A phase accumulator (u32, one full turn = 2^32) drives a shared sine table with linear
//! interpolation, so the frequency is exact to a millihertz, nothing drifts however long a
//! tone plays, and `fill` allocates nothing. Filling in frames of any size gives exactly the
//! samples of one long fill. Bursts that follow silence start at a fixed phase and get a
//! 2 ms raised-cosine ramp at each edge next to silence, so cadenced tones do not click;
//! back-to-back segments (a rising two-tone beep, a continuous dial tone) keep their phase.
//!
//! The Norwegian tones follow CEPT / ITU-T E.180 for Norway (425 Hz, the cadences below).

use std::f64::consts::TAU;
use std::sync::LazyLock;

use super::{PlayState, SampleRate};

/// RMS of a 0 dBm0 sine in the i16 scale: the G.711 mu-law digital milliwatt (a 1 kHz sine
/// at 0 dBm0) decodes to +-8828 and +-20860, whose RMS this is.
pub const DBM0_RMS: f32 = 16_017.0;

/// Level of each frequency component of the call-progress tones below.
pub const CALL_PROGRESS_LEVEL_DBM0: f32 = -13.0;

/// Level of the conference beeps: a little softer than call-progress tones, as they play
/// over a conversation.
pub const BEEP_LEVEL_DBM0: f32 = -16.0;

/// Length of the fade at an edge of a burst next to silence.
const RAMP_MS: u32 = 2;

/// The frequencies sounding during a segment's "on" part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneFreqs {
    /// One sine (Hz).
    Single(u16),
    /// Two sines summed, each at the spec's level (Hz).
    Dual(u16, u16),
}

/// One step of a cadence: `freqs` for `on_ms`, then silence for `off_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToneSegment {
    /// What sounds during the on part.
    pub freqs: ToneFreqs,
    /// Duration of the tone, in milliseconds.
    pub on_ms: u32,
    /// Duration of the silence after it, in milliseconds (0: the next segment follows at once).
    pub off_ms: u32,
}

impl ToneSegment {
    /// A single-frequency segment.
    pub const fn single(hz: u16, on_ms: u32, off_ms: u32) -> Self {
        Self {
            freqs: ToneFreqs::Single(hz),
            on_ms,
            off_ms,
        }
    }
}

/// A tone: its cadence, level, and whether the cadence repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSpec {
    /// Level of each frequency component, in dBm0.
    pub level_dbm0: f32,
    /// The cadence, played in order.
    pub segments: &'static [ToneSegment],
    /// Start over after the last segment (call-progress tones) or stop (beeps).
    pub repeat: bool,
}

/// Dial tone: 425 Hz, continuous.
pub const DIAL: ToneSpec = ToneSpec {
    level_dbm0: CALL_PROGRESS_LEVEL_DBM0,
    segments: &[ToneSegment::single(425, 1000, 0)],
    repeat: true,
};

/// Ringing (ringback) tone: 425 Hz, 1 s on, 4 s off.
pub const RINGBACK: ToneSpec = ToneSpec {
    level_dbm0: CALL_PROGRESS_LEVEL_DBM0,
    segments: &[ToneSegment::single(425, 1000, 4000)],
    repeat: true,
};

/// Busy tone: 425 Hz, 0.5 s on, 0.5 s off.
pub const BUSY: ToneSpec = ToneSpec {
    level_dbm0: CALL_PROGRESS_LEVEL_DBM0,
    segments: &[ToneSegment::single(425, 500, 500)],
    repeat: true,
};

/// Congestion tone: 425 Hz, 0.2 s on, 0.2 s off.
pub const CONGESTION: ToneSpec = ToneSpec {
    level_dbm0: CALL_PROGRESS_LEVEL_DBM0,
    segments: &[ToneSegment::single(425, 200, 200)],
    repeat: true,
};

/// Call waiting tone (Norway): 425 Hz, 0.2 on, 0.6 off, 0.2 on, 10 s off.
pub const CALL_WAITING: ToneSpec = ToneSpec {
    level_dbm0: CALL_PROGRESS_LEVEL_DBM0,
    segments: &[
        ToneSegment::single(425, 200, 600),
        ToneSegment::single(425, 200, 10_000),
    ],
    repeat: true,
};

/// Special information tone (number unobtainable): 950, 1400, 1800 Hz, 330 ms each, 1 s off.
pub const SPECIAL_INFORMATION: ToneSpec = ToneSpec {
    level_dbm0: CALL_PROGRESS_LEVEL_DBM0,
    segments: &[
        ToneSegment::single(950, 330, 0),
        ToneSegment::single(1400, 330, 0),
        ToneSegment::single(1800, 330, 1000),
    ],
    repeat: true,
};

/// Someone joined the conference: a rising two-tone beep (660 Hz, then 880 Hz), once.
pub const CONFERENCE_ENTER: ToneSpec = ToneSpec {
    level_dbm0: BEEP_LEVEL_DBM0,
    segments: &[
        ToneSegment::single(660, 100, 0),
        ToneSegment::single(880, 120, 0),
    ],
    repeat: false,
};

/// Someone left the conference: a falling two-tone beep (880 Hz, then 660 Hz), once.
pub const CONFERENCE_EXIT: ToneSpec = ToneSpec {
    level_dbm0: BEEP_LEVEL_DBM0,
    segments: &[
        ToneSegment::single(880, 100, 0),
        ToneSegment::single(660, 120, 0),
    ],
    repeat: false,
};

/// A short neutral beep (1 kHz, 150 ms), once: "go ahead", "done".
pub const BEEP: ToneSpec = ToneSpec {
    level_dbm0: BEEP_LEVEL_DBM0,
    segments: &[ToneSegment::single(1000, 150, 0)],
    repeat: false,
};

const TABLE_BITS: u32 = 10;
const TABLE_LEN: usize = 1 << TABLE_BITS;
const FRAC_BITS: u32 = 32 - TABLE_BITS;
/// A quarter turn in phase units (90 degrees).
const QUARTER_TURN: u32 = 1 << 30;

/// One full sine period plus a guard entry, for interpolation at the end.
static SINE_TABLE: LazyLock<[f32; TABLE_LEN + 1]> = LazyLock::new(|| {
    let mut table = [0.0; TABLE_LEN + 1];
    for (i, v) in table.iter_mut().enumerate() {
        *v = (i as f64 * TAU / TABLE_LEN as f64).sin() as f32;
    }
    table
});

/// sin(2 pi phase / 2^32), from the table with linear interpolation (error below 1e-5).
fn sine(table: &[f32; TABLE_LEN + 1], phase: u32) -> f32 {
    let index = (phase >> FRAC_BITS) as usize; // < TABLE_LEN by construction
    let frac = (phase & ((1 << FRAC_BITS) - 1)) as f32 * (1.0 / (1u32 << FRAC_BITS) as f32);
    let a = table[index];
    let b = table[index + 1];
    a + (b - a) * frac
}

/// Phase increment per sample for `hz` at `rate_hz` (rounded; frequencies above Nyquist alias).
fn phase_increment(hz: u16, rate_hz: u32) -> u32 {
    let scaled = (u64::from(hz) << 32) + u64::from(rate_hz / 2);
    (scaled / u64::from(rate_hz.max(1))) as u32
}

fn ms_to_samples(ms: u32, rate_hz: u32) -> u32 {
    u32::try_from(u64::from(ms) * u64::from(rate_hz) / 1000).unwrap_or(u32::MAX)
}

/// Plays a [`ToneSpec`] into caller-provided buffers.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    spec: ToneSpec,
    rate_hz: u32,
    /// Peak amplitude of each component.
    amplitude: f32,
    segment: usize,
    /// Position in the current segment (on part, then off part), in samples.
    pos: u32,
    on_len: u32,
    off_len: u32,
    ramp_len: u32,
    ramp_in: bool,
    ramp_out: bool,
    phase: [u32; 2],
    increment: [u32; 2],
    components: usize,
    finished: bool,
}

impl ToneGenerator {
    /// A generator at the start of `spec`'s cadence.
    pub fn new(spec: ToneSpec, rate: SampleRate) -> Self {
        let rms = DBM0_RMS * 10f32.powf(spec.level_dbm0 / 20.0);
        let mut generator = Self {
            spec,
            rate_hz: rate.hz(),
            amplitude: rms * std::f32::consts::SQRT_2,
            segment: 0,
            pos: 0,
            on_len: 0,
            off_len: 0,
            ramp_len: 0,
            ramp_in: false,
            ramp_out: false,
            phase: [0; 2],
            increment: [0; 2],
            components: 0,
            finished: false,
        };
        generator.reset();
        generator
    }

    /// Back to the start of the cadence.
    pub fn reset(&mut self) {
        let rate = self.rate_hz;
        let audible = self
            .spec
            .segments
            .iter()
            .any(|s| ms_to_samples(s.on_ms, rate) + ms_to_samples(s.off_ms, rate) > 0);
        self.finished = !audible;
        if audible {
            self.enter_segment(0, true);
            if self.on_len + self.off_len == 0 {
                self.advance();
            }
        }
    }

    /// The tone being played.
    pub fn spec(&self) -> &ToneSpec {
        &self.spec
    }

    /// True once a non-repeating tone has played to its end.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Fills `out` with the next samples; the tail after the end of a non-repeating tone is
    /// silence. Any `out` length works; successive calls continue seamlessly.
    pub fn fill(&mut self, out: &mut [i16]) -> PlayState {
        let table = &*SINE_TABLE;
        let mut rest = out;
        while !rest.is_empty() {
            if self.finished {
                rest.fill(0);
                break;
            }
            let segment_len = self.on_len.saturating_add(self.off_len);
            let (run, silent) = if self.pos < self.on_len {
                (self.on_len - self.pos, false)
            } else {
                (segment_len - self.pos, true)
            };
            let n = rest.len().min(run as usize);
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(n);
            if silent {
                chunk.fill(0);
                self.pos += n as u32;
            } else {
                for sample in chunk.iter_mut() {
                    *sample = self.next_on_sample(table);
                }
            }
            rest = tail;
            if self.pos >= segment_len {
                self.advance();
            }
        }
        if self.finished {
            PlayState::Finished
        } else {
            PlayState::Playing
        }
    }

    fn next_on_sample(&mut self, table: &[f32; TABLE_LEN + 1]) -> i16 {
        let mut value = 0.0;
        for (phase, increment) in self
            .phase
            .iter_mut()
            .zip(self.increment)
            .take(self.components)
        {
            value += sine(table, *phase);
            *phase = phase.wrapping_add(increment);
        }
        let gain = self.edge_gain(table);
        self.pos += 1;
        // `as` saturates, which is the clipping we want.
        (value * self.amplitude * gain).round() as i16
    }

    /// The fade-in/fade-out envelope at the current position of the on part.
    fn edge_gain(&self, table: &[f32; TABLE_LEN + 1]) -> f32 {
        let ramp = self.ramp_len;
        if ramp == 0 {
            return 1.0;
        }
        let mut gain = 1.0;
        if self.ramp_in && self.pos < ramp {
            gain *= raised_cosine(table, self.pos + 1, ramp + 1);
        }
        let from_end = self.on_len - self.pos; // >= 1 while in the on part
        if self.ramp_out && from_end <= ramp {
            gain *= raised_cosine(table, from_end, ramp + 1);
        }
        gain
    }

    fn advance(&mut self) {
        let count = self.spec.segments.len();
        // `reset` guarantees some segment has samples, so this finds one within `count` steps.
        for _ in 0..count {
            let next = self.segment + 1;
            if next >= count {
                if !self.spec.repeat {
                    self.finished = true;
                    return;
                }
                self.enter_segment(0, false);
            } else {
                self.enter_segment(next, false);
            }
            if self.on_len + self.off_len > 0 {
                return;
            }
        }
        self.finished = true;
    }

    fn enter_segment(&mut self, index: usize, first: bool) {
        let segments = self.spec.segments;
        let Some(segment) = segments.get(index) else {
            self.finished = true;
            return;
        };
        let rate = self.rate_hz;
        let previous = if index == 0 {
            segments.last()
        } else {
            segments.get(index - 1)
        };
        let after_silence = first
            || previous.is_none_or(|p| {
                ms_to_samples(p.off_ms, rate) > 0 || ms_to_samples(p.on_ms, rate) == 0
            });
        let is_last = index + 1 == segments.len();

        self.segment = index;
        self.pos = 0;
        self.on_len = ms_to_samples(segment.on_ms, rate);
        self.off_len = ms_to_samples(segment.off_ms, rate);
        self.ramp_in = after_silence;
        self.ramp_out = self.off_len > 0 || (is_last && !self.spec.repeat);
        self.ramp_len = ms_to_samples(RAMP_MS, rate).min(self.on_len / 2);

        let (first_hz, second_hz) = match segment.freqs {
            ToneFreqs::Single(hz) => (hz, None),
            ToneFreqs::Dual(a, b) => (a, Some(b)),
        };
        self.increment[0] = phase_increment(first_hz, rate);
        self.increment[1] = second_hz.map_or(0, |hz| phase_increment(hz, rate));
        self.components = if second_hz.is_some() { 2 } else { 1 };
        if after_silence {
            // Half a sample in: the first sample of a burst is not a zero crossing, so the
            // burst starts exactly where the cadence says.
            self.phase = [self.increment[0] / 2, self.increment[1] / 2];
        }
    }
}

/// sin^2(pi/2 * step / steps): rises smoothly from 0 (step 0) to 1 (step = steps).
fn raised_cosine(table: &[f32; TABLE_LEN + 1], step: u32, steps: u32) -> f32 {
    let phase = (u64::from(QUARTER_TURN) * u64::from(step) / u64::from(steps.max(1))) as u32;
    let s = sine(table, phase);
    s * s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(spec: ToneSpec, rate: SampleRate, samples: usize) -> Vec<i16> {
        let mut generator = ToneGenerator::new(spec, rate);
        let mut out = vec![0; samples];
        generator.fill(&mut out);
        out
    }

    use crate::media::test_util::tone_amplitude as goertzel_amplitude;

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn zero_crossings(x: &[i16]) -> usize {
        x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    /// Checks that `x` sounds exactly in the half-open ranges `on` and is silent elsewhere:
    /// each burst's first sample is non-zero, the sample after its end is zero, and its last
    /// three samples (the tail of the fade, where a zero crossing may round to 0) are not all
    /// zero; inside a burst no three samples in a row are zero.
    fn assert_cadence(x: &[i16], on: &[(usize, usize)]) {
        let mut silent_from = 0;
        for &(start, end) in on {
            assert!(
                x[silent_from..start].iter().all(|&v| v == 0),
                "noise before {start}"
            );
            assert_ne!(x[start], 0, "burst does not start at {start}");
            assert!(
                x[end - 3..end].iter().any(|&v| v != 0),
                "burst ends before {end}"
            );
            assert!(
                x[start..end].windows(3).all(|w| w.iter().any(|&v| v != 0)),
                "gap inside [{start}, {end})"
            );
            silent_from = end;
        }
        assert!(
            x[silent_from..].iter().all(|&v| v == 0),
            "noise after {silent_from}"
        );
    }

    #[test]
    fn frequency_is_425_hz_at_both_rates() {
        for rate in [SampleRate::Narrowband, SampleRate::Wideband] {
            let hz = rate.hz() as usize;
            let x = render(DIAL, rate, 10 * hz);
            // 425 Hz crosses zero 850 times a second.
            let crossings = zero_crossings(&x);
            assert!((8499..=8501).contains(&crossings), "{rate:?}: {crossings}");
            let at = |f| goertzel_amplitude(&x[hz..], f, hz as f64);
            assert!(at(425.0) > 100.0 * at(400.0), "{rate:?}");
            assert!(at(425.0) > 100.0 * at(450.0), "{rate:?}");
        }
    }

    #[test]
    fn level_matches_dbm0_within_half_a_db() {
        for rate in [SampleRate::Narrowband, SampleRate::Wideband] {
            let hz = rate.hz() as usize;
            let x = render(DIAL, rate, 3 * hz);
            let level = 20.0 * (rms(&x[hz..]) / f64::from(DBM0_RMS)).log10();
            assert!(
                (level - f64::from(CALL_PROGRESS_LEVEL_DBM0)).abs() < 0.5,
                "{rate:?}: {level} dBm0"
            );
        }
        // Two components at the same level carry twice the power: +3 dB.
        const DUAL: ToneSpec = ToneSpec {
            level_dbm0: -10.0,
            segments: &[ToneSegment {
                freqs: ToneFreqs::Dual(350, 440),
                on_ms: 1000,
                off_ms: 0,
            }],
            repeat: true,
        };
        let x = render(DUAL, SampleRate::Narrowband, 16_000);
        let level = 20.0 * (rms(&x[8000..]) / f64::from(DBM0_RMS)).log10();
        assert!((level - (-10.0 + 3.01)).abs() < 0.5, "{level}");
        let a350 = goertzel_amplitude(&x[8000..], 350.0, 8000.0);
        let a440 = goertzel_amplitude(&x[8000..], 440.0, 8000.0);
        assert!((a350 / a440 - 1.0).abs() < 0.01, "{a350} {a440}");
    }

    #[test]
    fn busy_cadence_switches_at_exact_samples() {
        let x = render(BUSY, SampleRate::Narrowband, 24_000);
        // 0.5 s on / 0.5 s off at 8 kHz: on at [0, 4000), [8000, 12000), [16000, 20000).
        assert_cadence(&x, &[(0, 4000), (8000, 12000), (16000, 20000)]);
        let x = render(BUSY, SampleRate::Wideband, 32_000);
        assert_cadence(&x, &[(0, 8000), (16000, 24000)]);
    }

    #[test]
    fn ringback_congestion_and_call_waiting_cadences() {
        let x = render(RINGBACK, SampleRate::Narrowband, 90_000);
        assert_cadence(&x, &[(0, 8000), (40_000, 48_000), (80_000, 88_000)]);
        let x = render(CONGESTION, SampleRate::Narrowband, 6_400);
        assert_cadence(&x, &[(0, 1600), (3200, 4800)]);
        let x = render(CALL_WAITING, SampleRate::Narrowband, 8 * 12_000);
        // 200 on, 600 off, 200 on, 10 000 off: a 11 s cycle.
        assert_cadence(
            &x,
            &[(0, 1600), (6400, 8000), (88_000, 89_600), (94_400, 96_000)],
        );
    }

    #[test]
    fn frames_of_any_size_match_one_long_fill() {
        for spec in [
            RINGBACK,
            BUSY,
            CALL_WAITING,
            SPECIAL_INFORMATION,
            CONFERENCE_ENTER,
            DIAL,
        ] {
            for rate in [SampleRate::Narrowband, SampleRate::Wideband] {
                let total = 7 * rate.hz() as usize;
                let long = render(spec, rate, total);
                for frame in [1, 7, rate.frame_samples(), 333, 4001] {
                    let mut generator = ToneGenerator::new(spec, rate);
                    let mut chunked = vec![0; total];
                    for chunk in chunked.chunks_mut(frame) {
                        generator.fill(chunk);
                    }
                    assert!(chunked == long, "{spec:?} {rate:?} frame {frame}");
                }
            }
        }
    }

    #[test]
    fn no_jumps_between_samples_anywhere() {
        // The largest step of a sine of amplitude A at f is about A * 2 pi f / rate; a
        // discontinuity (phase reset, unramped edge, frame seam) would exceed it.
        for spec in [
            DIAL,
            BUSY,
            CONFERENCE_ENTER,
            CONFERENCE_EXIT,
            SPECIAL_INFORMATION,
        ] {
            let max_hz = spec
                .segments
                .iter()
                .map(|s| match s.freqs {
                    ToneFreqs::Single(hz) => f64::from(hz),
                    ToneFreqs::Dual(a, b) => f64::from(a.max(b)),
                })
                .fold(0.0, f64::max);
            let amplitude = f64::from(DBM0_RMS)
                * 10f64.powf(f64::from(spec.level_dbm0) / 20.0)
                * std::f64::consts::SQRT_2;
            let limit = amplitude * TAU * max_hz / 8000.0 * 1.05 + 2.0;
            let mut generator = ToneGenerator::new(spec, SampleRate::Narrowband);
            let mut previous = 0i16;
            let mut frame = [0i16; 160];
            for _ in 0..200 {
                generator.fill(&mut frame);
                for &v in &frame {
                    let step = (f64::from(v) - f64::from(previous)).abs();
                    assert!(step <= limit, "{spec:?}: step {step} > {limit}");
                    previous = v;
                }
            }
        }
    }

    #[test]
    fn conference_beeps_rise_and_fall_then_finish() {
        let mut generator = ToneGenerator::new(CONFERENCE_ENTER, SampleRate::Narrowband);
        let mut out = vec![0i16; 2000];
        // 100 + 120 ms = 1760 samples: the frame that contains the end reports Finished.
        assert_eq!(generator.fill(&mut out[..1600]), PlayState::Playing);
        assert_eq!(generator.fill(&mut out[1600..]), PlayState::Finished);
        assert_cadence(&out, &[(0, 1760)]);
        let low = &out[80..720];
        let high = &out[880..1680];
        assert!(
            goertzel_amplitude(low, 660.0, 8000.0) > 10.0 * goertzel_amplitude(low, 880.0, 8000.0)
        );
        assert!(
            goertzel_amplitude(high, 880.0, 8000.0)
                > 10.0 * goertzel_amplitude(high, 660.0, 8000.0)
        );
        assert!(generator.is_finished());
        let mut frame = [1i16; 160];
        assert_eq!(generator.fill(&mut frame), PlayState::Finished);
        assert!(frame.iter().all(|&v| v == 0));

        let x = render(CONFERENCE_EXIT, SampleRate::Narrowband, 2000);
        assert!(
            goertzel_amplitude(&x[80..720], 880.0, 8000.0)
                > 10.0 * goertzel_amplitude(&x[80..720], 660.0, 8000.0)
        );
    }

    #[test]
    fn reset_replays_from_the_start() {
        let mut generator = ToneGenerator::new(BEEP, SampleRate::Narrowband);
        let mut first = [0i16; 1600];
        generator.fill(&mut first);
        generator.reset();
        let mut second = [0i16; 1600];
        assert_eq!(generator.fill(&mut second), PlayState::Finished);
        assert_eq!(first, second);
    }

    #[test]
    fn degenerate_specs_are_silent_and_finished() {
        const NOTHING: ToneSpec = ToneSpec {
            level_dbm0: -10.0,
            segments: &[],
            repeat: true,
        };
        const ZERO_LENGTH: ToneSpec = ToneSpec {
            level_dbm0: -10.0,
            segments: &[ToneSegment::single(425, 0, 0)],
            repeat: true,
        };
        for spec in [NOTHING, ZERO_LENGTH] {
            let mut generator = ToneGenerator::new(spec, SampleRate::Narrowband);
            let mut frame = [7i16; 160];
            assert_eq!(generator.fill(&mut frame), PlayState::Finished);
            assert!(frame.iter().all(|&v| v == 0));
        }
        // A zero-length segment inside a cadence is skipped.
        const WITH_GAP: ToneSpec = ToneSpec {
            level_dbm0: -10.0,
            segments: &[
                ToneSegment::single(425, 0, 0),
                ToneSegment::single(425, 100, 100),
            ],
            repeat: true,
        };
        let x = render(WITH_GAP, SampleRate::Narrowband, 3200);
        assert_cadence(&x, &[(0, 800), (1600, 2400)]);
    }

    #[test]
    fn sine_table_is_accurate() {
        let table = &*SINE_TABLE;
        for k in 0..1000u32 {
            let phase = k.wrapping_mul(4_294_967);
            let exact = (f64::from(phase) * TAU / 4_294_967_296.0).sin();
            assert!(
                (f64::from(sine(table, phase)) - exact).abs() < 1e-5,
                "{phase}"
            );
        }
    }
}
