//! One room's work per tick, by size:
//!
//! - one participant: hears the music source;
//! - two: each hears the other's frame as received (same codec: the very bytes; PCMU <->
//!   PCMA: table transcoding), decoded only for concealment, fades and injected audio;
//! - three or more: the loudest `max_talkers` unmuted talkers are decoded and summed in
//!   i32; a talker hears the sum minus itself, everyone else hears the same sum, encoded
//!   once per codec and shared. A participant who starts or stops being heard is faded
//!   in or out over 5 ms, so selection changes and mutes do not click.
//!
//! Output goes through `out(participant, payload)` straight from preallocated buffers.

use crate::media::codec::{self, Codec};

use super::conceal::crossfade_len;
use super::participant::{add_injection, Participant, TickContext};
use super::talker::{talker_score, Loudest};
use super::{ParticipantId, RoomId};

/// Index of a codec's shared buffers (the G.711 pair; the only codecs that join).
pub(crate) fn codec_index(codec: Codec) -> Option<usize> {
    match codec {
        Codec::Pcmu => Some(0),
        Codec::Pcma => Some(1),
        Codec::G722 | Codec::Opus => None,
    }
}

/// Encoded silence, one frame per codec index.
pub(crate) type SilenceFrames = [Box<[u8]>; 2];

/// What a room's tick needs besides its participants.
pub(crate) struct RoomContext<'a> {
    pub(crate) tick: TickContext<'a>,
    pub(crate) hangover_frames: u32,
    pub(crate) silence: &'a SilenceFrames,
}

#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) id: RoomId,
    /// Participant slots, in joining order.
    pub(crate) members: Vec<u32>,
    loudest: Loudest,
    /// Participants in this tick's sum: the selected talkers, then those fading out.
    mixing: Box<[u32]>,
    mixing_len: usize,
    sum: Box<[i32]>,
    mix: Box<[i16]>,
    shared: [Box<[u8]>; 2],
    /// Audio injected for the whole room at the next tick.
    injection: Box<[i16]>,
    injected: bool,
}

impl Room {
    pub(crate) fn new(id: RoomId, max_talkers: usize, frame_len: usize) -> Self {
        // Fading-out participants were heard in the previous tick: at most the previous
        // talkers, or both parties of a former two-party room.
        let mixing_capacity = 2 * max_talkers.max(2);
        Self {
            id,
            members: Vec::new(),
            loudest: Loudest::new(max_talkers),
            mixing: vec![0; mixing_capacity].into_boxed_slice(),
            mixing_len: 0,
            sum: vec![0; frame_len].into_boxed_slice(),
            mix: vec![0; frame_len].into_boxed_slice(),
            shared: [
                vec![0; frame_len].into_boxed_slice(),
                vec![0; frame_len].into_boxed_slice(),
            ],
            injection: vec![0; frame_len].into_boxed_slice(),
            injected: false,
        }
    }

    /// Adds `samples` (at most one frame) to what the whole room hears at the next tick.
    pub(crate) fn inject(&mut self, samples: &[i16]) {
        add_injection(&mut self.injection, &mut self.injected, samples);
    }

    /// Whether `slot` was in the last tick's sum (selected or fading out).
    pub(crate) fn is_mixing(&self, slot: u32) -> bool {
        self.mixing
            .get(..self.mixing_len)
            .is_some_and(|m| m.contains(&slot))
    }

    /// Produces every member's frame for this tick.
    pub(crate) fn tick<M, O>(
        &mut self,
        slab: &mut [Option<Participant>],
        context: &RoomContext<'_>,
        music: &mut M,
        out: &mut O,
    ) where
        M: FnMut(RoomId, &mut [i16]) + ?Sized,
        O: FnMut(ParticipantId, &[u8]) + ?Sized,
    {
        for &slot in &self.members {
            if let Some(p) = participant_mut(slab, slot) {
                p.receive(&context.tick);
            }
        }
        self.mixing_len = 0;
        match self.members.len() {
            0 => {}
            1 => self.solo(slab, music, out),
            2 => self.pair(slab, context, out),
            _ => self.conference(slab, context, out),
        }
        self.injected = false;
        for &slot in &self.members {
            if let Some(p) = participant_mut(slab, slot) {
                p.injected = false;
            }
        }
    }

    fn solo<M, O>(&mut self, slab: &mut [Option<Participant>], music: &mut M, out: &mut O)
    where
        M: FnMut(RoomId, &mut [i16]) + ?Sized,
        O: FnMut(ParticipantId, &[u8]) + ?Sized,
    {
        let Some(&slot) = self.members.first() else {
            return;
        };
        let Some(p) = participant_mut(slab, slot) else {
            return;
        };
        p.heard = false;
        self.mix.fill(0);
        music(self.id, &mut self.mix);
        if self.injected || p.injected {
            for (i, sample) in self.mix.iter_mut().enumerate() {
                let mut value = i32::from(*sample);
                if self.injected {
                    value += i32::from(self.injection.get(i).copied().unwrap_or(0));
                }
                if p.injected {
                    value += i32::from(p.injection.get(i).copied().unwrap_or(0));
                }
                *sample = saturate(value);
            }
        }
        if let Some(len) = encode(p.codec, &self.mix, &mut p.out) {
            out(p.id, p.out.get(..len).unwrap_or_default());
        }
    }

    fn pair<O>(&mut self, slab: &mut [Option<Participant>], context: &RoomContext<'_>, out: &mut O)
    where
        O: FnMut(ParticipantId, &[u8]) + ?Sized,
    {
        let (Some(&a), Some(&b)) = (self.members.first(), self.members.get(1)) else {
            return;
        };
        let rate = context.tick.sample_rate;
        let fade_len = crossfade_len(self.mix.len());
        for (listener, speaker) in [(a, b), (b, a)] {
            let Some((l, s)) = two_mut(slab, listener, speaker) else {
                continue;
            };
            let heard_now = !s.muted;
            let fade = Fade::between(s.heard, heard_now);
            s.heard = heard_now;
            let extra = self.injected || l.injected;
            let audible = heard_now || fade == Fade::Out;
            if !extra && (!audible || !s.has_audio()) {
                if let Some(silence) = codec_index(l.codec).and_then(|k| context.silence.get(k)) {
                    out(l.id, silence);
                }
                continue;
            }
            if !extra && fade == Fade::None && s.is_clean_frame() {
                if s.codec == l.codec {
                    out(l.id, &s.frame);
                } else if let Ok(len) = codec::transcode(s.codec, l.codec, &s.frame, &mut l.out) {
                    out(l.id, l.out.get(..len).unwrap_or_default());
                }
                continue;
            }
            if audible {
                s.render(rate);
                fade.apply(&mut s.pcm, fade_len);
            }
            for (i, sample) in self.mix.iter_mut().enumerate() {
                let mut value = 0i32;
                if audible {
                    value += i32::from(s.pcm.get(i).copied().unwrap_or(0));
                }
                if self.injected {
                    value += i32::from(self.injection.get(i).copied().unwrap_or(0));
                }
                if l.injected {
                    value += i32::from(l.injection.get(i).copied().unwrap_or(0));
                }
                *sample = saturate(value);
            }
            if let Some(len) = encode(l.codec, &self.mix, &mut l.out) {
                out(l.id, l.out.get(..len).unwrap_or_default());
            }
        }
    }

    fn conference<O>(
        &mut self,
        slab: &mut [Option<Participant>],
        context: &RoomContext<'_>,
        out: &mut O,
    ) where
        O: FnMut(ParticipantId, &[u8]) + ?Sized,
    {
        self.select_talkers(slab, context.hangover_frames);
        let rate = context.tick.sample_rate;
        let fade_len = crossfade_len(self.mix.len());

        // Decode (or conceal) only the participants in the sum.
        self.sum.fill(0);
        for &slot in self.mixing.get(..self.mixing_len).unwrap_or_default() {
            let Some(p) = participant_mut(slab, slot) else {
                continue;
            };
            let selected = self.loudest.contains(slot);
            p.render(rate);
            Fade::between(p.heard, selected).apply(&mut p.pcm, fade_len);
            for (total, &sample) in self.sum.iter_mut().zip(p.pcm.iter()) {
                *total += i32::from(sample);
            }
        }
        for &slot in &self.members {
            if let Some(p) = participant_mut(slab, slot) {
                p.heard = self.loudest.contains(slot);
            }
        }
        if self.injected {
            for (total, &sample) in self.sum.iter_mut().zip(self.injection.iter()) {
                *total += i32::from(sample);
            }
        }
        let room_is_silent = self.mixing_len == 0 && !self.injected;

        let mut shared_ready = [false; 2];
        for &slot in &self.members {
            let in_sum = self.is_mixing(slot);
            let Some(p) = participant_mut(slab, slot) else {
                continue;
            };
            if in_sum || p.injected {
                // Its own mix: the sum minus itself, plus what was injected for it.
                for (i, sample) in self.mix.iter_mut().enumerate() {
                    let mut value = self.sum.get(i).copied().unwrap_or(0);
                    if in_sum {
                        value -= i32::from(p.pcm.get(i).copied().unwrap_or(0));
                    }
                    if p.injected {
                        value += i32::from(p.injection.get(i).copied().unwrap_or(0));
                    }
                    *sample = saturate(value);
                }
                if let Some(len) = encode(p.codec, &self.mix, &mut p.out) {
                    out(p.id, p.out.get(..len).unwrap_or_default());
                }
                continue;
            }
            let Some(k) = codec_index(p.codec) else {
                continue;
            };
            if room_is_silent {
                if let Some(silence) = context.silence.get(k) {
                    out(p.id, silence);
                }
                continue;
            }
            let (Some(ready), Some(shared)) = (shared_ready.get_mut(k), self.shared.get_mut(k))
            else {
                continue;
            };
            if !*ready {
                for (sample, &total) in self.mix.iter_mut().zip(self.sum.iter()) {
                    *sample = saturate(total);
                }
                if encode(p.codec, &self.mix, shared).is_none() {
                    continue;
                }
                *ready = true;
            }
            out(p.id, shared);
        }
    }

    /// Picks this tick's talkers and lists everyone in the sum (talkers, then fade-outs).
    fn select_talkers(&mut self, slab: &[Option<Participant>], hangover_frames: u32) {
        self.loudest.clear();
        for &slot in &self.members {
            let Some(p) = participant(slab, slot) else {
                continue;
            };
            if !p.muted && p.has_audio() && p.vad.talking(hangover_frames) {
                self.loudest
                    .offer(slot, talker_score(p.vad.level(), p.heard));
            }
        }
        let mut len = 0;
        for slot in self.loudest.ids() {
            if let Some(entry) = self.mixing.get_mut(len) {
                *entry = slot;
                len += 1;
            }
        }
        for &slot in &self.members {
            let fading_out =
                participant(slab, slot).is_some_and(|p| p.heard) && !self.loudest.contains(slot);
            if fading_out {
                if let Some(entry) = self.mixing.get_mut(len) {
                    *entry = slot;
                    len += 1;
                }
            }
        }
        self.mixing_len = len;
    }
}

/// A gain ramp for a participant who starts or stops being heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fade {
    None,
    In,
    Out,
}

impl Fade {
    fn between(heard_before: bool, heard_now: bool) -> Self {
        match (heard_before, heard_now) {
            (false, true) => Fade::In,
            (true, false) => Fade::Out,
            _ => Fade::None,
        }
    }

    fn apply(self, pcm: &mut [i16], len: usize) {
        let len = len.max(1);
        let len_i32 = i32::try_from(len).unwrap_or(i32::MAX);
        match self {
            Fade::None => {}
            Fade::In => {
                for (j, sample) in pcm.iter_mut().take(len).enumerate() {
                    let j = i32::try_from(j).unwrap_or(0);
                    *sample = saturate(i32::from(*sample) * j / len_i32);
                }
            }
            Fade::Out => {
                for (j, sample) in pcm.iter_mut().enumerate() {
                    let left = i32::try_from(len.saturating_sub(j)).unwrap_or(0);
                    *sample = saturate(i32::from(*sample) * left / len_i32);
                }
            }
        }
    }
}

fn saturate(value: i32) -> i16 {
    // Clamped to the i16 range first: the cast is exact.
    value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

fn encode(codec: Codec, pcm: &[i16], out: &mut [u8]) -> Option<usize> {
    codec::encode_from_linear(codec, pcm, out).ok()
}

pub(crate) fn participant(slab: &[Option<Participant>], slot: u32) -> Option<&Participant> {
    slab.get(usize::try_from(slot).ok()?)?.as_ref()
}

pub(crate) fn participant_mut(
    slab: &mut [Option<Participant>],
    slot: u32,
) -> Option<&mut Participant> {
    slab.get_mut(usize::try_from(slot).ok()?)?.as_mut()
}

/// Two distinct participants, mutably.
fn two_mut(
    slab: &mut [Option<Participant>],
    first: u32,
    second: u32,
) -> Option<(&mut Participant, &mut Participant)> {
    let (first, second) = (usize::try_from(first).ok()?, usize::try_from(second).ok()?);
    if first == second || first.max(second) >= slab.len() {
        return None;
    }
    let (low, high) = slab.split_at_mut(first.max(second));
    let at_low = low.get_mut(first.min(second))?.as_mut()?;
    let at_high = high.first_mut()?.as_mut()?;
    if first < second {
        Some((at_low, at_high))
    } else {
        Some((at_high, at_low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fades_ramp_without_steps() {
        let mut pcm = [1000i16; 160];
        Fade::In.apply(&mut pcm, 40);
        assert_eq!(pcm[0], 0);
        assert!(pcm.windows(2).all(|w| (w[1] - w[0]).abs() <= 25));
        assert_eq!(pcm[40..], [1000; 120]);
        let mut pcm = [1000i16; 160];
        Fade::Out.apply(&mut pcm, 40);
        assert_eq!(pcm[0], 1000);
        assert!(pcm.windows(2).all(|w| (w[1] - w[0]).abs() <= 25));
        assert_eq!(pcm[40..], [0; 120]);
        let mut pcm = [7i16; 4];
        Fade::None.apply(&mut pcm, 0);
        assert_eq!(pcm, [7; 4]);
    }

    #[test]
    fn saturation_clamps() {
        assert_eq!(saturate(40_000), i16::MAX);
        assert_eq!(saturate(-40_000), i16::MIN);
        assert_eq!(saturate(-5), -5);
    }
}
