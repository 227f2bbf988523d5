//! Prompts (named 8 kHz clips) and playlists (what a [`super::Player`] plays).

use std::sync::Arc;

use super::{decode_wav, PromptError, SampleRate};

/// A named clip of 8 kHz mono linear PCM. Cloning shares the samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    name: Arc<str>,
    samples: Arc<[i16]>,
}

impl Prompt {
    /// A prompt from samples already at 8 kHz.
    pub fn new(name: &str, samples: impl Into<Arc<[i16]>>) -> Self {
        Self {
            name: name.into(),
            samples: samples.into(),
        }
    }

    /// Decodes a WAV file (any supported format and rate) into an 8 kHz prompt.
    pub fn from_wav(name: &str, bytes: &[u8]) -> Result<Self, PromptError> {
        let samples = decode_wav(name, bytes, SampleRate::Narrowband)?;
        Ok(Self::new(name, samples))
    }

    /// The prompt's name (its library key, or whatever it was created with).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The samples, 8 kHz mono.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Length in milliseconds (rounded down).
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(SampleRate::Narrowband.hz())
    }
}

/// What happens after the last item of a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Stop: announcements.
    Once,
    /// Start over with no seam (and the gap, if any): music on hold.
    Loop,
}

/// An ordered list of prompts with optional silence between items. Cloning is cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlist {
    items: Arc<[Prompt]>,
    repeat: Repeat,
    gap_samples: usize,
}

impl Playlist {
    /// A playlist of `items`, played once or looped, with no gap.
    pub fn new(items: impl Into<Arc<[Prompt]>>, repeat: Repeat) -> Self {
        Self {
            items: items.into(),
            repeat,
            gap_samples: 0,
        }
    }

    /// The items played once, in order.
    pub fn once(items: impl Into<Arc<[Prompt]>>) -> Self {
        Self::new(items, Repeat::Once)
    }

    /// The items looped forever.
    pub fn looped(items: impl Into<Arc<[Prompt]>>) -> Self {
        Self::new(items, Repeat::Loop)
    }

    /// The same playlist with `ms` of silence between items (and, when looped, before each
    /// repetition).
    pub fn with_gap_ms(mut self, ms: u32) -> Self {
        self.gap_samples = ms as usize * SampleRate::Narrowband.hz() as usize / 1000;
        self
    }

    /// The prompts, in playing order.
    pub fn items(&self) -> &[Prompt] {
        &self.items
    }

    /// Once or looped.
    pub fn repeat(&self) -> Repeat {
        self.repeat
    }

    /// Silence between items, in 8 kHz samples.
    pub fn gap_samples(&self) -> usize {
        self.gap_samples
    }

    /// Total audio samples in the items, without gaps.
    pub fn content_samples(&self) -> usize {
        self.items.iter().map(|p| p.samples().len()).sum()
    }

    /// Samples one pass takes, gaps included (between items only; a looped pass also ends
    /// with one gap before it starts over).
    pub fn pass_samples(&self) -> usize {
        let gaps = match self.repeat {
            Repeat::Once => self.items.len().saturating_sub(1),
            Repeat::Loop => self.items.len(),
        };
        self.content_samples() + gaps * self.gap_samples
    }
}
