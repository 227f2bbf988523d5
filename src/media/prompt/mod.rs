//! Tones and prompts: what the switchboard itself plays to a caller.
//!
//! - [`tone`]: call-progress tones and beeps (ringback, busy, conference entry/exit), generated
//!   sample by sample, phase-continuous, allocation-free.
//! - [`wav`]: WAV decoding and load-time resampling to the internal rate.
//! - [`playlist`] / [`player`]: prompts, ordered playlists (once or looped) and the cursor
//!   that fills 20 ms frames from them.
//! - [`library`]: prompts by stable name ("queue/position", "digits/3", "moh/default"), the
//!   built-in Norwegian set embedded in the binary and per-tenant overrides from disk.
//! - [`announce`]: Norwegian sentences built from number prompts ("you are number 3 in the
//!   queue", "expected wait 5 minutes").
//!
//! Rates: prompts are kept at 8 kHz, the rate every narrowband codec uses. The decoder
//! takes a target [`SampleRate`], so a wideband library can decode the same files at
//! 16 kHz at load time; we keep no 16 kHz copy yet because the built-in set is 8 kHz
//! (upsampling it adds nothing) and a second copy would double the memory.

pub mod announce;
pub mod library;
pub mod player;
pub mod playlist;
pub mod tone;
pub mod wav;

mod resample;

use std::fmt;
use std::path::PathBuf;

pub use library::{LoadReport, PromptLibrary};
pub use player::Player;
pub use playlist::{Playlist, Prompt, Repeat};
pub use tone::{ToneFreqs, ToneGenerator, ToneSegment, ToneSpec};
pub use wav::decode_wav;

/// The media plane's internal sample rates (linear PCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleRate {
    /// 8 kHz: G.711 and the other narrowband codecs.
    Narrowband,
    /// 16 kHz: wideband codecs (G.722 audio, Opus at 16 kHz).
    Wideband,
}

impl SampleRate {
    /// Samples per second.
    pub const fn hz(self) -> u32 {
        match self {
            Self::Narrowband => 8_000,
            Self::Wideband => 16_000,
        }
    }

    /// Samples in one 20 ms frame (160 or 320).
    pub const fn frame_samples(self) -> usize {
        match self {
            Self::Narrowband => 160,
            Self::Wideband => 320,
        }
    }
}

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES_8K: usize = SampleRate::Narrowband.frame_samples();

/// Whether a tone or playlist has more to play after the frame just filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayState {
    /// More samples follow: call `fill` again for the next frame.
    Playing,
    /// Nothing follows this frame; its unused tail (if any) is silence.
    Finished,
}

/// Why a prompt could not be loaded or found. `name` is the prompt name or file that failed.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The bytes are not a RIFF/WAVE file at all.
    #[error("{name}: not a WAV file")]
    NotWav { name: String },
    /// A WAV file whose header or chunks are broken.
    #[error("{name}: malformed WAV: {reason}")]
    Malformed { name: String, reason: &'static str },
    /// A well-formed WAV in a format we do not decode.
    #[error("{name}: unsupported WAV format: {format}")]
    Unsupported {
        name: String,
        format: UnsupportedFormat,
    },
    /// A WAV file without a single complete sample frame.
    #[error("{name}: no audio samples")]
    Empty { name: String },
    /// A WAV longer than [`wav::MAX_PROMPT_SECONDS`] (or a file too large to be one).
    #[error("{name}: longer than {max_seconds} s")]
    TooLong { name: String, max_seconds: u32 },
    /// A prompt name or tenant directory that is not a valid key (see [`library`]).
    #[error("invalid prompt name {name:?}")]
    InvalidName { name: String },
    /// A lookup for a prompt that neither the tenant nor the defaults have.
    #[error("no prompt named {name}")]
    Missing { name: String },
    /// Reading the media directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The part of a WAV format that we do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsupportedFormat {
    /// A compressed or vendor encoding (ADPCM, G.711 in WAV, MP3 in WAV, ...).
    Encoding,
    /// Integer or float samples of this width (we decode 8/16/24/32-bit integer and 32-bit float).
    SampleWidth { bits: u16, float: bool },
    /// A sample rate outside [`wav::MIN_RATE_HZ`]..=[`wav::MAX_RATE_HZ`].
    SampleRate(u32),
}

impl fmt::Display for UnsupportedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encoding => write!(f, "compressed or unknown encoding"),
            Self::SampleWidth { bits, float: true } => write!(f, "{bits}-bit float samples"),
            Self::SampleWidth { bits, float: false } => write!(f, "{bits}-bit integer samples"),
            Self::SampleRate(hz) => write!(f, "sample rate {hz} Hz"),
        }
    }
}
