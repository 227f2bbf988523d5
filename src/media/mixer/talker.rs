//! Who is talking: frame energy (straight from G.711 bytes by table, no decoding), voice
//! activity with hangover, and the choice of the loudest few talkers of a room.
//!
//! Energy is the mean square of a frame's samples; levels are in dBov (0 dBov is the mean
//! square of a full-scale square wave, 32768^2; a full-scale sine is -3 dBov).

use crate::media::codec::{g711, Codec};

/// Mean square of full scale (dBov reference).
const FULL_SCALE_SQUARE: f64 = 32768.0 * 32768.0;

/// Ranking bonus for a talker already selected (x2 = +3 dB), so equal voices do not swap
/// every frame.
const SELECTED_BONUS: f32 = 2.0;

/// Weight of the newest frame in the smoothed level used for ranking.
const LEVEL_SMOOTHING: f32 = 0.3;

/// Squared linear values of every G.711 code: a frame's energy is 160 table lookups.
#[derive(Debug, Clone)]
pub(crate) struct EnergyTables {
    ulaw: [u32; 256],
    alaw: [u32; 256],
}

impl EnergyTables {
    pub(crate) fn new() -> Self {
        let mut ulaw = [0u32; 256];
        let mut alaw = [0u32; 256];
        for code in 0..=u8::MAX {
            let index = usize::from(code);
            ulaw[index] = square(g711::ulaw_to_linear(code));
            alaw[index] = square(g711::alaw_to_linear(code));
        }
        Self { ulaw, alaw }
    }

    /// Mean square of an encoded frame (0 for an empty one or a codec without a table).
    pub(crate) fn mean_square(&self, codec: Codec, bytes: &[u8]) -> u32 {
        let table = match codec {
            Codec::Pcmu => &self.ulaw,
            Codec::Pcma => &self.alaw,
            Codec::G722 | Codec::Opus => return 0,
        };
        let sum: u64 = bytes
            .iter()
            .map(|&code| u64::from(table[usize::from(code)]))
            .sum();
        mean(sum, bytes.len())
    }
}

fn square(sample: i16) -> u32 {
    let magnitude = u32::from(sample.unsigned_abs());
    magnitude * magnitude
}

fn mean(sum: u64, count: usize) -> u32 {
    let count = u64::try_from(count).unwrap_or(u64::MAX).max(1);
    // A mean of squares of i16 is at most 2^30: it fits.
    u32::try_from(sum / count).unwrap_or(u32::MAX)
}

/// A mean square as dBov (`-inf` is reported as -127).
pub(crate) fn mean_square_to_dbov(mean_square: f32) -> f32 {
    if mean_square <= 0.0 {
        return -127.0;
    }
    let db = 10.0 * (f64::from(mean_square) / FULL_SCALE_SQUARE).log10();
    // Bounded by [-127, 0] for any mean square of i16 samples.
    (db as f32).max(-127.0)
}

/// A dBov level as a mean square.
pub(crate) fn dbov_to_mean_square(dbov: f32) -> u32 {
    let ms = FULL_SCALE_SQUARE * 10f64.powf(f64::from(dbov) / 10.0);
    // Saturating float-to-int cast: NaN gives 0, huge values u32::MAX.
    ms as u32
}

/// One participant's voice activity: active while a frame is above the threshold, and for
/// a hangover after the last such frame (so a talker is not cut between words).
#[derive(Debug, Clone, Default)]
pub(crate) struct VoiceActivity {
    /// Smoothed mean square, for ranking talkers.
    level: f32,
    /// Frames since the last frame above the threshold (`None`: never active).
    quiet_frames: Option<u32>,
}

impl VoiceActivity {
    /// Accounts one frame's mean square.
    pub(crate) fn update(&mut self, mean_square: u32, threshold: u32) {
        // Precision loss is irrelevant for a level.
        self.level += (mean_square as f32 - self.level) * LEVEL_SMOOTHING;
        if mean_square >= threshold {
            self.quiet_frames = Some(0);
        } else if let Some(quiet) = self.quiet_frames.as_mut() {
            *quiet = quiet.saturating_add(1);
        }
    }

    /// Above the threshold now or within `hangover_frames` frames of it.
    pub(crate) fn talking(&self, hangover_frames: u32) -> bool {
        self.quiet_frames.is_some_and(|q| q <= hangover_frames)
    }

    /// Smoothed mean square (ranking key).
    pub(crate) fn level(&self) -> f32 {
        self.level
    }

    /// Forgets everything (a new stream, or a participant reused).
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

/// The ranking score of a candidate talker.
pub(crate) fn talker_score(level: f32, selected_before: bool) -> f32 {
    if selected_before {
        level * SELECTED_BONUS
    } else {
        level
    }
}

/// The loudest few candidates: a fixed-capacity list, sorted loudest first, that never
/// allocates after construction.
#[derive(Debug, Clone)]
pub(crate) struct Loudest {
    entries: Box<[(u32, f32)]>,
    len: usize,
}

impl Loudest {
    /// Room for `capacity` talkers.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: vec![(0, 0.0); capacity].into_boxed_slice(),
            len: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Offers a candidate; it is kept if there is room or it beats the quietest kept one.
    /// Ties keep the earlier candidate.
    pub(crate) fn offer(&mut self, id: u32, score: f32) {
        let capacity = self.entries.len();
        if capacity == 0 {
            return;
        }
        let position = if self.len < capacity {
            self.len += 1;
            self.len - 1
        } else {
            match self.entries.last() {
                Some(&(_, quietest)) if score > quietest => capacity - 1,
                _ => return,
            }
        };
        // Insertion sort step: move the newcomer up past quieter entries.
        let mut at = position;
        while at > 0 {
            let Some(&above) = self.entries.get(at - 1) else {
                break;
            };
            if above.1 >= score {
                break;
            }
            if let Some(slot) = self.entries.get_mut(at) {
                *slot = above;
            }
            at -= 1;
        }
        if let Some(slot) = self.entries.get_mut(at) {
            *slot = (id, score);
        }
    }

    /// The kept ids, loudest first.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().take(self.len).map(|&(id, _)| id)
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        self.ids().any(|kept| kept == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::encode_from_linear;

    fn pcm_mean_square(pcm: &[i16]) -> u32 {
        let sum: u64 = pcm.iter().map(|&s| u64::from(square(s))).sum();
        mean(sum, pcm.len())
    }

    #[test]
    fn table_energy_matches_decoded_energy() {
        let tables = EnergyTables::new();
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 977) % 30000 - 15000) as i16)
            .collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut bytes = [0u8; 160];
            encode_from_linear(codec, &pcm, &mut bytes).unwrap();
            let mut decoded = [0i16; 160];
            crate::media::codec::decode_to_linear(codec, &bytes, &mut decoded).unwrap();
            assert_eq!(
                tables.mean_square(codec, &bytes),
                pcm_mean_square(&decoded),
                "{codec}"
            );
        }
        assert_eq!(tables.mean_square(Codec::Pcmu, &[0xFF; 160]), 0);
        assert_eq!(tables.mean_square(Codec::Pcmu, &[]), 0);
        assert_eq!(tables.mean_square(Codec::Opus, &[1, 2, 3]), 0);
        // The largest A-law code (32256) as a square wave: about 0 dBov.
        let loud = tables.mean_square(Codec::Pcma, &[0xAA; 160]);
        assert!(mean_square_to_dbov(loud as f32) > -0.2);
    }

    #[test]
    fn dbov_conversions_round_trip() {
        for db in [-60.0f32, -40.0, -20.0, -3.0] {
            let ms = dbov_to_mean_square(db);
            assert!((mean_square_to_dbov(ms as f32) - db).abs() < 0.01, "{db}");
        }
        assert_eq!(mean_square_to_dbov(0.0), -127.0);
        assert_eq!(dbov_to_mean_square(f32::NAN), 0);
    }

    #[test]
    fn voice_activity_holds_for_the_hangover() {
        let mut vad = VoiceActivity::default();
        assert!(!vad.talking(10));
        vad.update(10, 100);
        assert!(!vad.talking(10), "never above the threshold");
        vad.update(1000, 100);
        assert!(vad.talking(10));
        for frame in 1..=10 {
            vad.update(0, 100);
            assert!(vad.talking(10), "frame {frame} of the hangover");
        }
        vad.update(0, 100);
        assert!(!vad.talking(10));
        vad.update(100, 100);
        assert!(vad.talking(0), "at the threshold counts as active");
        vad.reset();
        assert!(!vad.talking(10));
    }

    #[test]
    fn smoothed_level_follows_the_frames() {
        let mut vad = VoiceActivity::default();
        for _ in 0..50 {
            vad.update(10_000, 1);
        }
        assert!((vad.level() - 10_000.0).abs() < 1.0);
        vad.update(0, 1);
        assert!(vad.level() < 10_000.0 && vad.level() > 5_000.0);
    }

    #[test]
    fn loudest_keeps_the_top_n_in_order() {
        let mut top = Loudest::new(3);
        for (id, score) in [(1, 5.0), (2, 1.0), (3, 9.0), (4, 3.0), (5, 7.0), (6, 3.0)] {
            top.offer(id, score);
        }
        assert_eq!(top.ids().collect::<Vec<_>>(), [3, 5, 1]);
        assert!(top.contains(5) && !top.contains(4));
        top.clear();
        assert_eq!(top.ids().count(), 0);
        top.offer(7, 1.0);
        top.offer(8, 1.0);
        assert_eq!(top.ids().collect::<Vec<_>>(), [7, 8], "ties keep the order");

        let mut none = Loudest::new(0);
        none.offer(1, 100.0);
        assert_eq!(none.ids().count(), 0);
    }

    #[test]
    fn the_selected_bonus_is_three_db() {
        assert_eq!(talker_score(10.0, false), 10.0);
        assert_eq!(talker_score(10.0, true), 20.0);
    }
}
