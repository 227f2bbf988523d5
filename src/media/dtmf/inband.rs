//! In-band DTMF detection on 8 kHz linear PCM, for callers that send key presses as audio.
//!
//! The design is the well-proven one of spandsp and Asterisk (`dsp.c`): the signal is cut
//! into blocks of 102 samples (12.75 ms), and for each block the Goertzel algorithm measures
//! the power at the eight DTMF frequencies. A block counts as a key when
//! - the strongest row tone and the strongest column tone are both above the level floor,
//! - the twist (column level minus row level) lies between -4 dB (reverse) and +8 dB (normal),
//! - each of the two is at least 8 dB above every other tone of its group, and
//! - together they hold most of the block energy, which rejects speech, music and noise.
//!
//! A key is reported once, when two consecutive blocks agree on it (about 25 ms of tone with lucky
//! block alignment, 40 ms always), and it ends after two blocks without it; a single odd block
//! inside a tone (a packet slip) does not end it. Pressing the same key again therefore needs a
//! gap of two blocks. Everything is sans-IO and allocation-free.

use super::DtmfDigit;

/// The only sample rate supported (narrowband telephony).
pub const SAMPLE_RATE_HZ: u32 = 8000;

/// Samples per Goertzel block: long enough to separate 697 Hz from 770 Hz, short enough to
/// fit two blocks into the 40 ms minimum tone.
const BLOCK_LEN: usize = 102;

/// Low (row) group then high (column) group frequencies, in Hz.
const TONE_HZ: [f32; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];

/// Keys by row (low group) then column (high group).
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711 full scale is about +3.1 dBm0).
const DBM0_PEAK: f32 = 22_700.0;

/// Weakest accepted tone, per tone, in dBm0.
const MIN_TONE_DBM0: f32 = -30.0;

/// Power ratio by which the row tone may exceed the column tone (4 dB reverse twist).
const MAX_REVERSE_TWIST: f32 = 2.512;

/// Power ratio by which the column tone may exceed the row tone (8 dB normal twist).
const MAX_NORMAL_TWIST: f32 = 6.310;

/// Power ratio by which the winning tone must beat the others of its group (8 dB).
const MIN_RELATIVE_PEAK: f32 = 6.310;

/// Share of the block energy the two tones must hold (spandsp's 42 out of N/2 = 51).
const MIN_TONE_ENERGY_SHARE: f32 = 0.82;

/// Digits kept for [`InbandDetector::process`] when one call starts several.
const QUEUE_LEN: usize = 8;

/// Goertzel DTMF detector for one 8 kHz audio stream.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    /// `2 cos(2 pi f / fs)` for each tone.
    coefficients: [f32; 8],
    /// Goertzel delay line `(s[n-1], s[n-2])` for each tone.
    delay: [(f32, f32); 8],
    /// Sum of squared samples of the current block.
    block_energy: f32,
    /// Samples already in the current block.
    block_fill: usize,
    /// Goertzel power of a tone at the level floor.
    tone_floor: f32,
    /// What the previous block looked like.
    last_hit: Option<DtmfDigit>,
    /// The key currently held down, if any.
    held: Option<DtmfDigit>,
    /// Digits detected but not yet returned by `process`.
    queue: DigitQueue,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector for 8 kHz linear PCM.
    pub fn new() -> Self {
        let sample_rate = SAMPLE_RATE_HZ as f32;
        let coefficients = TONE_HZ.map(|hz| 2.0 * (std::f32::consts::TAU * hz / sample_rate).cos());
        // A sine of amplitude A gives a Goertzel magnitude of A * N / 2 at its frequency.
        let floor_amplitude = DBM0_PEAK * 10f32.powf(MIN_TONE_DBM0 / 20.0);
        let floor_magnitude = floor_amplitude * BLOCK_LEN as f32 / 2.0;
        Self {
            coefficients,
            delay: [(0.0, 0.0); 8],
            block_energy: 0.0,
            block_fill: 0,
            tone_floor: floor_magnitude * floor_magnitude,
            last_hit: None,
            held: None,
            queue: DigitQueue::default(),
        }
    }

    /// Feeds samples (any count) and returns a key press that started in them, if any.
    ///
    /// A 20 ms frame can start at most one key; should a longer buffer start several, the
    /// later ones are returned by the next calls (or by [`Self::next_digit`]).
    pub fn process(&mut self, samples: &[i16]) -> Option<DtmfDigit> {
        let mut queue = std::mem::take(&mut self.queue);
        self.process_with(samples, |digit| queue.push(digit));
        self.queue = queue;
        self.queue.pop()
    }

    /// Returns a key press still queued by [`Self::process`].
    pub fn next_digit(&mut self) -> Option<DtmfDigit> {
        self.queue.pop()
    }

    /// Feeds samples (any count) and calls `on_digit` for every key press that starts in them.
    pub fn process_with(&mut self, samples: &[i16], mut on_digit: impl FnMut(DtmfDigit)) {
        for &sample in samples {
            let x = f32::from(sample);
            for (coefficient, (s1, s2)) in self.coefficients.iter().zip(self.delay.iter_mut()) {
                let s0 = x + coefficient * *s1 - *s2;
                *s2 = *s1;
                *s1 = s0;
            }
            self.block_energy += x * x;
            self.block_fill += 1;
            if self.block_fill == BLOCK_LEN {
                let hit = self.classify_block();
                self.delay = [(0.0, 0.0); 8];
                self.block_energy = 0.0;
                self.block_fill = 0;
                if let Some(digit) = self.track(hit) {
                    on_digit(digit);
                }
            }
        }
    }

    /// Forgets any partial block, held key and queued digits.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The key a complete block carries, if it passes every check.
    fn classify_block(&self) -> Option<DtmfDigit> {
        let mut power = [0f32; 8];
        for ((out, coefficient), (s1, s2)) in
            power.iter_mut().zip(&self.coefficients).zip(&self.delay)
        {
            *out = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
        }
        let (rows, columns) = power.split_at(4);
        let (row, row_power) = strongest(rows)?;
        let (column, column_power) = strongest(columns)?;

        if row_power < self.tone_floor || column_power < self.tone_floor {
            return None;
        }
        if row_power > column_power * MAX_REVERSE_TWIST
            || column_power > row_power * MAX_NORMAL_TWIST
        {
            return None;
        }
        let stands_out = |group: &[f32], best: usize, best_power: f32| {
            group
                .iter()
                .enumerate()
                .all(|(i, &p)| i == best || p * MIN_RELATIVE_PEAK <= best_power)
        };
        if !stands_out(rows, row, row_power) || !stands_out(columns, column, column_power) {
            return None;
        }
        // A block of pure tones has Goertzel power (N/2) times its energy.
        let tone_share =
            (row_power + column_power) / (self.block_energy * (BLOCK_LEN as f32 / 2.0));
        if tone_share.is_nan() || tone_share < MIN_TONE_ENERGY_SHARE {
            return None;
        }
        let key = KEYPAD.get(row)?.get(column)?;
        DtmfDigit::from_char(*key)
    }

    /// Debounces block results; returns the key when a new press starts.
    fn track(&mut self, hit: Option<DtmfDigit>) -> Option<DtmfDigit> {
        let mut started = None;
        // Change state only on two successive blocks that differ from the held key: a press
        // needs both to agree, anything else releases the key.
        if hit != self.held && self.last_hit != self.held {
            let new_held = if hit.is_some() && hit == self.last_hit {
                hit
            } else {
                None
            };
            started = new_held;
            self.held = new_held;
        }
        self.last_hit = hit;
        started
    }
}

/// Index and power of the strongest entry.
fn strongest(powers: &[f32]) -> Option<(usize, f32)> {
    powers
        .iter()
        .copied()
        .enumerate()
        .reduce(|best, candidate| {
            if candidate.1 > best.1 {
                candidate
            } else {
                best
            }
        })
}

/// A fixed ring of detected digits; when full, newer digits are dropped.
#[derive(Debug, Clone, Default)]
struct DigitQueue {
    slots: [Option<DtmfDigit>; QUEUE_LEN],
    head: usize,
    len: usize,
}

impl DigitQueue {
    fn push(&mut self, digit: DtmfDigit) {
        if self.len < QUEUE_LEN {
            if let Some(slot) = self.slots.get_mut((self.head + self.len) % QUEUE_LEN) {
                *slot = Some(digit);
                self.len += 1;
            }
        }
    }

    fn pop(&mut self) -> Option<DtmfDigit> {
        if self.len == 0 {
            return None;
        }
        let digit = self.slots.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % QUEUE_LEN;
        self.len -= 1;
        digit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::g711;

    const RATE: f32 = 8000.0;

    fn samples_for(ms: u32) -> usize {
        (ms * 8) as usize
    }

    fn amplitude(dbm0: f32) -> f32 {
        DBM0_PEAK * 10f32.powf(dbm0 / 20.0)
    }

    /// Row and column frequencies of a key.
    fn frequencies(key: char) -> (f32, f32) {
        for (row, keys) in KEYPAD.iter().enumerate() {
            if let Some(column) = keys.iter().position(|&k| k == key) {
                return (TONE_HZ[row], TONE_HZ[4 + column]);
            }
        }
        panic!("not a key: {key}");
    }

    /// Adds a sum of sines `(hz, dBm0)` to `out[start..start + len]`.
    fn add_tones(out: &mut [f32], start: usize, len: usize, tones: &[(f32, f32)]) {
        for (n, value) in out.iter_mut().skip(start).take(len).enumerate() {
            for (i, &(hz, dbm0)) in tones.iter().enumerate() {
                let phase = std::f32::consts::TAU * hz * n as f32 / RATE + 0.7 * i as f32;
                *value += amplitude(dbm0) * phase.sin();
            }
        }
    }

    fn to_pcm(signal: &[f32]) -> Vec<i16> {
        signal
            .iter()
            .map(|&v| v.round().clamp(-32768.0, 32767.0) as i16)
            .collect()
    }

    /// Deterministic white noise (xorshift32), uniform, at the given RMS level in dBm0.
    fn add_noise(out: &mut [f32], dbm0: f32, seed: u32) {
        let mut state = seed.max(1);
        // A uniform signal in [-a, a] has RMS a / sqrt(3); a 0 dBm0 sine has RMS peak / sqrt(2).
        let peak = amplitude(dbm0) / std::f32::consts::SQRT_2 * 3f32.sqrt();
        for value in out {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let unit = state as f32 / u32::MAX as f32 * 2.0 - 1.0;
            *value += peak * unit;
        }
    }

    /// Builds key presses: each `(key, tone ms, gap ms after)` at the given per-tone levels.
    fn key_sequence(keys: &[(char, u32, u32)], row_dbm0: f32, column_dbm0: f32) -> Vec<f32> {
        let total: usize = keys.iter().map(|&(_, on, off)| samples_for(on + off)).sum();
        // 30 ms of silence before the first key and 60 ms after the last gap.
        let mut at = samples_for(30);
        let mut signal = vec![0.0; at + total + samples_for(60)];
        for &(key, on, off) in keys {
            let (row, column) = frequencies(key);
            add_tones(
                &mut signal,
                at,
                samples_for(on),
                &[(row, row_dbm0), (column, column_dbm0)],
            );
            at += samples_for(on + off);
        }
        signal
    }

    /// Runs a fresh detector over `pcm` in frames of `frame` samples; returns the keys seen.
    fn detect_in_frames(pcm: &[i16], frame: usize) -> String {
        let mut detector = InbandDetector::new();
        let mut keys = String::new();
        for chunk in pcm.chunks(frame) {
            if let Some(digit) = detector.process(chunk) {
                keys.push(digit.as_char());
            }
        }
        keys
    }

    fn detect(pcm: &[i16]) -> String {
        detect_in_frames(pcm, 160)
    }

    const ALL_KEYS: &str = "0123456789*#ABCD";

    #[test]
    fn every_key_at_nominal_level() {
        for key in ALL_KEYS.chars() {
            let pcm = to_pcm(&key_sequence(&[(key, 60, 60)], -10.0, -10.0));
            assert_eq!(detect(&pcm), key.to_string());
        }
    }

    #[test]
    fn every_key_at_low_level() {
        for key in ALL_KEYS.chars() {
            let pcm = to_pcm(&key_sequence(&[(key, 60, 60)], -25.0, -25.0));
            assert_eq!(detect(&pcm), key.to_string());
        }
    }

    #[test]
    fn tones_below_the_level_floor_are_ignored() {
        let pcm = to_pcm(&key_sequence(&[('5', 200, 60)], -36.0, -36.0));
        assert_eq!(detect(&pcm), "");
    }

    #[test]
    fn keys_survive_white_noise() {
        // Two tones at -10 dBm0 are -7 dBm0 together: noise at -22 dBm0 is 15 dB SNR.
        for (seed, key) in ALL_KEYS.chars().enumerate() {
            let mut signal = key_sequence(&[(key, 60, 60)], -10.0, -10.0);
            add_noise(&mut signal, -22.0, seed as u32 + 1);
            assert_eq!(detect(&to_pcm(&signal)), key.to_string(), "15 dB SNR");
            // Weaker keys: -20 dBm0 tones (-17 together) with 20 dB SNR.
            let mut signal = key_sequence(&[(key, 60, 60)], -20.0, -20.0);
            add_noise(&mut signal, -37.0, seed as u32 + 100);
            assert_eq!(detect(&to_pcm(&signal)), key.to_string(), "20 dB SNR");
        }
    }

    #[test]
    fn moderate_twist_is_accepted() {
        // Twist = column level - row level.
        let plus_six = to_pcm(&key_sequence(&[('8', 60, 60)], -14.0, -8.0));
        assert_eq!(detect(&plus_six), "8");
        let minus_three = to_pcm(&key_sequence(&[('8', 60, 60)], -8.0, -11.0));
        assert_eq!(detect(&minus_three), "8");
    }

    #[test]
    fn excessive_twist_is_rejected() {
        let plus_twelve = to_pcm(&key_sequence(&[('8', 200, 60)], -18.0, -6.0));
        assert_eq!(detect(&plus_twelve), "");
        let minus_twelve = to_pcm(&key_sequence(&[('8', 200, 60)], -6.0, -18.0));
        assert_eq!(detect(&minus_twelve), "");
        // Reverse twist is only allowed up to 4 dB.
        let minus_six = to_pcm(&key_sequence(&[('8', 200, 60)], -6.0, -12.0));
        assert_eq!(detect(&minus_six), "");
    }

    #[test]
    fn a_second_tone_in_a_group_must_be_8_db_down() {
        let two_seconds = samples_for(2000);
        let five_db_down = [(697.0, -10.0), (770.0, -15.0), (1209.0, -10.0)];
        let mut signal = vec![0.0; two_seconds];
        add_tones(&mut signal, 0, two_seconds, &five_db_down);
        assert_eq!(detect(&to_pcm(&signal)), "");

        let twelve_db_down = [(697.0, -10.0), (1209.0, -10.0), (1336.0, -22.0)];
        let mut signal = vec![0.0; two_seconds];
        add_tones(&mut signal, 0, two_seconds, &twelve_db_down);
        assert_eq!(detect(&to_pcm(&signal)), "1");
    }

    #[test]
    fn forty_ms_is_enough_and_twenty_ms_is_not() {
        // Try every alignment of the tone against the 102-sample blocks.
        for lead in (0..BLOCK_LEN).step_by(7) {
            let mut signal = vec![0.0; lead];
            signal.extend(key_sequence(&[('4', 40, 60)], -10.0, -10.0));
            assert_eq!(detect(&to_pcm(&signal)), "4", "40 ms, lead {lead}");

            let mut signal = vec![0.0; lead];
            signal.extend(key_sequence(&[('4', 20, 60)], -10.0, -10.0));
            assert_eq!(detect(&to_pcm(&signal)), "", "20 ms, lead {lead}");
        }
    }

    #[test]
    fn a_sequence_with_short_gaps_gives_each_key_once() {
        let pcm = to_pcm(&key_sequence(
            &[('1', 50, 50), ('2', 50, 50), ('3', 50, 50), ('#', 50, 50)],
            -10.0,
            -10.0,
        ));
        assert_eq!(detect(&pcm), "123#");

        let all: Vec<(char, u32, u32)> = ALL_KEYS.chars().map(|k| (k, 45, 45)).collect();
        assert_eq!(detect(&to_pcm(&key_sequence(&all, -12.0, -10.0))), ALL_KEYS);
    }

    #[test]
    fn the_same_key_twice_needs_a_gap_and_gives_two() {
        let pcm = to_pcm(&key_sequence(&[('5', 60, 50), ('5', 60, 50)], -10.0, -10.0));
        assert_eq!(detect(&pcm), "55");
    }

    #[test]
    fn a_long_press_is_reported_once() {
        let pcm = to_pcm(&key_sequence(&[('0', 2000, 100)], -10.0, -10.0));
        assert_eq!(detect(&pcm), "0");
    }

    #[test]
    fn frame_size_does_not_matter() {
        let pcm = to_pcm(&key_sequence(
            &[('9', 50, 50), ('*', 60, 70), ('D', 45, 50)],
            -15.0,
            -13.0,
        ));
        for frame in [1, 7, 80, 101, 102, 103, 160, 240] {
            assert_eq!(detect_in_frames(&pcm, frame), "9*D", "frame {frame}");
        }
    }

    #[test]
    fn one_long_buffer_queues_every_key() {
        let pcm = to_pcm(&key_sequence(
            &[('1', 50, 50), ('2', 50, 50), ('3', 50, 50)],
            -10.0,
            -10.0,
        ));
        let mut detector = InbandDetector::new();
        assert_eq!(detector.process(&pcm).map(DtmfDigit::as_char), Some('1'));
        assert_eq!(detector.process(&[]).map(DtmfDigit::as_char), Some('2'));
        assert_eq!(detector.next_digit().map(DtmfDigit::as_char), Some('3'));
        assert_eq!(detector.next_digit(), None);

        let mut keys = String::new();
        let mut detector = InbandDetector::new();
        detector.process_with(&pcm, |d| keys.push(d.as_char()));
        assert_eq!(keys, "123");
    }

    #[test]
    fn reset_forgets_a_half_seen_press() {
        let pcm = to_pcm(&key_sequence(&[('7', 200, 60)], -10.0, -10.0));
        // 30 ms of silence, then the tone: the block ending at sample 408 is the first full
        // tone block, so after 420 samples one hit has been seen.
        let mut detector = InbandDetector::new();
        assert_eq!(detector.process(&pcm[..420]), None);
        let mut untouched = detector.clone();
        detector.reset();
        // Without the reset the next block confirms the key; after it, two are needed again.
        assert_eq!(
            untouched.process(&pcm[420..522]).map(DtmfDigit::as_char),
            Some('7')
        );
        assert_eq!(detector.process(&pcm[420..522]), None);
        assert_eq!(
            detector.process(&pcm[522..624]).map(DtmfDigit::as_char),
            Some('7')
        );
    }

    #[test]
    fn no_keys_in_silence_noise_or_single_tones() {
        let two_seconds = samples_for(2000);
        assert_eq!(detect(&vec![0; two_seconds]), "");

        let mut noise = vec![0.0; two_seconds];
        add_noise(&mut noise, -10.0, 42);
        assert_eq!(detect(&to_pcm(&noise)), "");
        let mut loud_noise = vec![0.0; two_seconds];
        add_noise(&mut loud_noise, 0.0, 7);
        assert_eq!(detect(&to_pcm(&loud_noise)), "");

        let mut dial_tone = vec![0.0; two_seconds];
        add_tones(&mut dial_tone, 0, two_seconds, &[(425.0, -10.0)]);
        assert_eq!(detect(&to_pcm(&dial_tone)), "");

        let mut row_only = vec![0.0; two_seconds];
        add_tones(&mut row_only, 0, two_seconds, &[(697.0, -10.0)]);
        assert_eq!(detect(&to_pcm(&row_only)), "");

        let mut column_only = vec![0.0; two_seconds];
        add_tones(&mut column_only, 0, two_seconds, &[(1336.0, -10.0)]);
        assert_eq!(detect(&to_pcm(&column_only)), "");

        // Two rows at once is not a key either.
        let mut two_rows = vec![0.0; two_seconds];
        add_tones(
            &mut two_rows,
            0,
            two_seconds,
            &[(697.0, -10.0), (852.0, -10.0)],
        );
        assert_eq!(detect(&to_pcm(&two_rows)), "");
    }

    /// Voiced-speech stand-in: 12 harmonics of a fundamental gliding between 90 and 250 Hz,
    /// shaped by two formants, so harmonics keep sweeping across the DTMF frequencies.
    fn speech_like(seconds: f32, first_formant: f32, second_formant: f32) -> Vec<i16> {
        let len = (seconds * RATE) as usize;
        let mut phases = [0f32; 12];
        let mut signal = Vec::with_capacity(len);
        for n in 0..len {
            let t = n as f32 / RATE;
            let fundamental = 170.0 + 80.0 * (std::f32::consts::TAU * 0.7 * t).sin();
            let mut value = 0.0;
            for (k, phase) in phases.iter_mut().enumerate() {
                let hz = fundamental * (k + 1) as f32;
                let near = |formant: f32| (-((hz - formant) / 250.0).powi(2)).exp();
                let gain = 0.15 + near(first_formant) + 0.7 * near(second_formant);
                *phase += std::f32::consts::TAU * hz / RATE;
                value += gain * phase.sin();
            }
            signal.push(value * 2000.0);
        }
        to_pcm(&signal)
    }

    #[test]
    fn no_keys_in_speech_like_signals() {
        for (first, second) in [
            (500.0, 1500.0),
            (700.0, 1200.0),
            (850.0, 1450.0),
            (300.0, 2300.0),
        ] {
            assert_eq!(
                detect(&speech_like(4.0, first, second)),
                "",
                "formants {first}/{second}"
            );
        }
    }

    #[test]
    fn keys_survive_g711_coding() {
        let keys: Vec<(char, u32, u32)> = ALL_KEYS.chars().map(|k| (k, 50, 50)).collect();
        for level in [-10.0, -25.0] {
            let pcm = to_pcm(&key_sequence(&keys, level, level));
            let mut coded = vec![0u8; pcm.len()];
            let mut decoded = vec![0i16; pcm.len()];

            g711::encode_ulaw(&pcm, &mut coded);
            g711::decode_ulaw(&coded, &mut decoded);
            assert_eq!(detect(&decoded), ALL_KEYS, "PCMU at {level} dBm0");

            g711::encode_alaw(&pcm, &mut coded);
            g711::decode_alaw(&coded, &mut decoded);
            assert_eq!(detect(&decoded), ALL_KEYS, "PCMA at {level} dBm0");

            // And through the PCMA -> PCMU table, as a transcoding relay would pass it.
            g711::alaw_to_ulaw_in_place(&mut coded);
            g711::decode_ulaw(&coded, &mut decoded);
            assert_eq!(detect(&decoded), ALL_KEYS, "PCMA->PCMU at {level} dBm0");
        }
    }
}
