//! One participant of a room: its jitter buffer, what it sent this tick (a real frame, a
//! concealed one, or silence), its voice activity, and the buffers the mixer writes its
//! audio into. Every buffer is allocated at join; a tick only reuses them.

use crate::media::codec::{self, Codec};

use super::conceal::{self, LossRun, FADE_FRAMES};
use super::jitter::{JitterBuffer, JitterParams, Pop};
use super::talker::{EnergyTables, VoiceActivity};
use super::ParticipantId;

/// What a participant contributes this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// A received frame (in `Participant::frame`).
    Real,
    /// The n-th frame of concealment after the last real frame.
    Concealed(u32),
    /// Nothing to hear.
    Silent,
}

/// Read-only state every participant's tick work needs.
pub(crate) struct TickContext<'a> {
    pub(crate) now: i64,
    pub(crate) tables: &'a EnergyTables,
    /// VAD threshold (mean square).
    pub(crate) threshold: u32,
    pub(crate) sample_rate: u32,
}

#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) id: ParticipantId,
    /// Slot of the room it is in.
    pub(crate) room: u32,
    pub(crate) codec: Codec,
    pub(crate) muted: bool,
    pub(crate) jitter: JitterBuffer,
    pub(crate) input: Input,
    pub(crate) vad: VoiceActivity,
    /// Whether the others heard this participant in the last tick (for fades).
    pub(crate) heard: bool,
    /// The latest real frame, encoded.
    pub(crate) frame: Box<[u8]>,
    /// Pop target; after a real frame, the real frame before it (cross-fade history).
    previous: Box<[u8]>,
    /// Whether a real frame was ever received (concealment needs one).
    has_frame: bool,
    loss: LossRun,
    /// Frames concealed just before this tick's real frame (0: none).
    resumed_from: u32,
    /// Mean square of the latest real frame (concealment energy estimate).
    last_real_mean_square: u32,
    /// This tick's audio, linear (valid after `render`).
    pub(crate) pcm: Box<[i16]>,
    /// Decoded history for concealment.
    history: Box<[i16]>,
    /// This participant's own encoded output.
    pub(crate) out: Box<[u8]>,
    /// Audio injected for this participant alone at the next tick.
    pub(crate) injection: Box<[i16]>,
    pub(crate) injected: bool,
}

/// The code of a zero sample.
pub(crate) fn silence_code(codec: Codec) -> u8 {
    match codec {
        Codec::Pcma => codec::g711::linear_to_alaw(0),
        // Only G.711 joins; mu-law silence is a harmless default.
        Codec::Pcmu | Codec::G722 | Codec::Opus => codec::g711::linear_to_ulaw(0),
    }
}

impl Participant {
    pub(crate) fn new(
        id: ParticipantId,
        room: u32,
        codec: Codec,
        params: JitterParams,
        frame_len: usize,
    ) -> Self {
        let silence = silence_code(codec);
        Self {
            id,
            room,
            codec,
            muted: false,
            jitter: JitterBuffer::new(params, silence),
            input: Input::Silent,
            vad: VoiceActivity::default(),
            heard: false,
            frame: vec![silence; frame_len].into_boxed_slice(),
            previous: vec![silence; frame_len].into_boxed_slice(),
            has_frame: false,
            loss: LossRun::default(),
            resumed_from: 0,
            last_real_mean_square: 0,
            pcm: vec![0; frame_len].into_boxed_slice(),
            history: vec![0; frame_len].into_boxed_slice(),
            out: vec![silence; frame_len].into_boxed_slice(),
            injection: vec![0; frame_len].into_boxed_slice(),
            injected: false,
        }
    }

    /// A new codec: what is buffered was encoded with the old one.
    pub(crate) fn set_codec(&mut self, codec: Codec) {
        let silence = silence_code(codec);
        self.codec = codec;
        self.jitter.reset(silence);
        self.frame.fill(silence);
        self.previous.fill(silence);
        self.has_frame = false;
        self.input = Input::Silent;
        self.loss = LossRun::default();
        self.vad.reset();
    }

    /// Takes this tick's frame from the jitter buffer and updates voice activity.
    pub(crate) fn receive(&mut self, context: &TickContext<'_>) {
        let (codec, tables, threshold) = (self.codec, context.tables, context.threshold);
        let mut quiet = |bytes: &[u8]| tables.mean_square(codec, bytes) < threshold;
        let pop = self.jitter.pop(context.now, &mut self.previous, &mut quiet);
        self.resumed_from = 0;
        let mean_square = match pop {
            Pop::Frame => {
                std::mem::swap(&mut self.frame, &mut self.previous);
                self.resumed_from = self.loss.resume();
                self.has_frame = true;
                self.input = Input::Real;
                self.last_real_mean_square = tables.mean_square(codec, &self.frame);
                self.last_real_mean_square
            }
            Pop::Lost | Pop::Stretched => self.conceal_next(),
            // The stream ended or restarts: fade out what was playing.
            Pop::Waiting | Pop::Idle => match self.input {
                Input::Silent => 0,
                Input::Real | Input::Concealed(_) => self.conceal_next(),
            },
        };
        self.vad.update(mean_square, threshold);
    }

    /// One more concealed frame; returns its estimated mean square.
    fn conceal_next(&mut self) -> u32 {
        self.loss.lose();
        if !self.has_frame || self.loss.frames > FADE_FRAMES {
            self.input = Input::Silent;
            return 0;
        }
        self.input = Input::Concealed(self.loss.frames);
        // Mean gain of the frame, squared: an estimate good enough for activity.
        let gain = (conceal::gain_after(self.loss.frames - 1)
            + conceal::gain_after(self.loss.frames))
            / 2.0;
        (self.last_real_mean_square as f32 * gain * gain) as u32
    }

    /// Whether there is anything to hear from this participant this tick.
    pub(crate) fn has_audio(&self) -> bool {
        !matches!(self.input, Input::Silent)
    }

    /// Whether this tick's frame can go out as received (no concealment, no cross-fade).
    pub(crate) fn is_clean_frame(&self) -> bool {
        self.input == Input::Real && self.resumed_from == 0
    }

    /// Writes this tick's audio, linear, into `pcm`.
    pub(crate) fn render(&mut self, sample_rate: u32) {
        match self.input {
            Input::Real => {
                decode(self.codec, &self.frame, &mut self.pcm);
                if self.resumed_from > 0 {
                    decode(self.codec, &self.previous, &mut self.history);
                    if self.loss.pitch == 0 {
                        self.loss.pitch = conceal::pitch_period(&self.history, sample_rate);
                    }
                    conceal::resume(
                        &self.history,
                        self.loss.pitch,
                        self.resumed_from,
                        &mut self.pcm,
                    );
                }
            }
            Input::Concealed(frames) => {
                decode(self.codec, &self.frame, &mut self.history);
                if self.loss.pitch == 0 {
                    self.loss.pitch = conceal::pitch_period(&self.history, sample_rate);
                }
                conceal::conceal(&self.history, self.loss.pitch, frames, &mut self.pcm);
            }
            Input::Silent => self.pcm.fill(0),
        }
    }

    /// Adds `samples` (at most one frame) to the audio injected for this participant.
    pub(crate) fn inject(&mut self, samples: &[i16]) {
        add_injection(&mut self.injection, &mut self.injected, samples);
    }
}

/// Adds `samples` into an injection buffer (zeroed first if it holds nothing yet).
pub(crate) fn add_injection(buffer: &mut [i16], injected: &mut bool, samples: &[i16]) {
    if !*injected {
        buffer.fill(0);
        *injected = true;
    }
    for (slot, &sample) in buffer.iter_mut().zip(samples) {
        *slot = slot.saturating_add(sample);
    }
}

fn decode(codec: Codec, bytes: &[u8], pcm: &mut [i16]) {
    if codec::decode_to_linear(codec, bytes, pcm).is_err() {
        pcm.fill(0);
    }
}
