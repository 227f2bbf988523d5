//! The cursor that plays a [`Playlist`] into 20 ms frames, allocation-free.

use super::{PlayState, Playlist, Repeat};

/// Plays a playlist frame by frame. Cheap to create: it shares the playlist's samples.
#[derive(Debug, Clone)]
pub struct Player {
    playlist: Playlist,
    /// Index of the current item.
    item: usize,
    /// Samples of the current item already played.
    offset: usize,
    /// Silence still to play before the current item starts.
    gap_left: usize,
    finished: bool,
}

impl Player {
    /// A player at the start of `playlist`.
    pub fn new(playlist: Playlist) -> Self {
        let mut player = Self {
            playlist,
            item: 0,
            offset: 0,
            gap_left: 0,
            finished: false,
        };
        player.rewind();
        player
    }

    /// Back to the start of the playlist.
    pub fn rewind(&mut self) {
        self.item = 0;
        self.offset = 0;
        self.gap_left = 0;
        // A loop with no audio would be endless silence; an empty one-shot has nothing to do.
        self.finished = match self.playlist.repeat() {
            Repeat::Loop => self.playlist.content_samples() == 0,
            Repeat::Once => self.playlist.pass_samples() == 0,
        };
        self.settle();
    }

    /// The playlist being played.
    pub fn playlist(&self) -> &Playlist {
        &self.playlist
    }

    /// True once a one-shot playlist has played to its end.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Fills `out` (normally one 20 ms frame: 160 samples at 8 kHz) with the next samples,
    /// padding with silence after the end. Returns [`PlayState::Finished`] on the frame that
    /// holds the last sample and on every call after it. A looped playlist wraps around
    /// within a frame, so it has no seam.
    pub fn fill(&mut self, out: &mut [i16]) -> PlayState {
        let mut rest = out;
        while !rest.is_empty() && !self.finished {
            if self.gap_left > 0 {
                let n = self.gap_left.min(rest.len());
                let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(n);
                chunk.fill(0);
                self.gap_left -= n;
                rest = tail;
                continue;
            }
            let remaining = self.current_samples().get(self.offset..).unwrap_or(&[]);
            if remaining.is_empty() {
                self.next_item();
                continue;
            }
            let n = remaining.len().min(rest.len());
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(n);
            if let Some(source) = remaining.get(..n) {
                chunk.copy_from_slice(source);
            }
            self.offset += n;
            rest = tail;
        }
        rest.fill(0);
        self.settle();
        if self.finished {
            PlayState::Finished
        } else {
            PlayState::Playing
        }
    }

    fn current_samples(&self) -> &[i16] {
        self.playlist
            .items()
            .get(self.item)
            .map_or(&[], |prompt| prompt.samples())
    }

    /// Moves to the next item (with the gap before it), wrapping or finishing at the end.
    fn next_item(&mut self) {
        let count = self.playlist.items().len();
        if self.item + 1 < count {
            self.item += 1;
        } else if self.playlist.repeat() == Repeat::Loop && count > 0 {
            self.item = 0;
        } else {
            self.finished = true;
            return;
        }
        self.offset = 0;
        self.gap_left = self.playlist.gap_samples();
    }

    /// Steps over exhausted and empty items, so that the end of a one-shot playlist is
    /// reported on the frame that holds its last sample.
    fn settle(&mut self) {
        for _ in 0..=self.playlist.items().len() {
            if self.finished || self.gap_left > 0 || self.offset < self.current_samples().len() {
                return;
            }
            self.next_item();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Prompt, FRAME_SAMPLES_8K};
    use super::*;

    fn ramp(name: &str, start: i16, len: usize) -> Prompt {
        let samples: Vec<i16> = (0..len).map(|i| start + i as i16).collect();
        Prompt::new(name, samples)
    }

    fn play_all(player: &mut Player, frames: usize) -> (Vec<i16>, Vec<PlayState>) {
        let mut out = Vec::new();
        let mut states = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES_8K];
        for _ in 0..frames {
            states.push(player.fill(&mut frame));
            out.extend_from_slice(&frame);
        }
        (out, states)
    }

    #[test]
    fn a_sequence_plays_once_with_gaps_and_a_padded_last_frame() {
        let playlist = Playlist::once(vec![
            ramp("you-are-number", 1000, 100),
            ramp("3", 2000, 50),
            ramp("in-the-queue", 3000, 30),
        ])
        .with_gap_ms(10);
        assert_eq!(playlist.pass_samples(), 100 + 80 + 50 + 80 + 30);
        let mut player = Player::new(playlist);
        let (out, states) = play_all(&mut player, 4);
        let mut expected: Vec<i16> = (1000..1100).collect();
        expected.extend([0; 80]);
        expected.extend(2000..2050);
        expected.extend([0; 80]);
        expected.extend(3000..3030);
        expected.resize(4 * FRAME_SAMPLES_8K, 0);
        assert_eq!(out, expected);
        use PlayState::*;
        assert_eq!(states, vec![Playing, Playing, Finished, Finished]);
        assert!(player.is_finished());
    }

    #[test]
    fn the_end_on_a_frame_boundary_finishes_on_that_frame() {
        let mut player = Player::new(Playlist::once(vec![ramp("a", 1, 320)]));
        let (_, states) = play_all(&mut player, 3);
        use PlayState::*;
        assert_eq!(states, vec![Playing, Finished, Finished]);
    }

    #[test]
    fn a_loop_wraps_without_a_seam() {
        // 1000 samples do not divide into 160-sample frames: the wrap falls mid-frame.
        let prompt = ramp("moh", -500, 1000);
        let mut player = Player::new(Playlist::looped(vec![prompt.clone()]));
        let (out, states) = play_all(&mut player, 20);
        assert!(states.iter().all(|&s| s == PlayState::Playing));
        let expected: Vec<i16> = prompt
            .samples()
            .iter()
            .copied()
            .cycle()
            .take(out.len())
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_loop_with_a_gap_repeats_the_gap() {
        let mut player =
            Player::new(Playlist::looped(vec![ramp("please-hold", 1, 100)]).with_gap_ms(5));
        let (out, _) = play_all(&mut player, 2);
        let mut expected: Vec<i16> = (1..101).collect();
        expected.extend([0; 40]);
        expected.extend(1..101);
        expected.extend([0; 40]);
        expected.extend(1..41);
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_items_are_skipped_and_empty_playlists_finish_at_once() {
        let empty = Prompt::new("empty", Vec::new());
        let mut player = Player::new(Playlist::once(vec![
            empty.clone(),
            ramp("a", 1, 3),
            empty.clone(),
            empty.clone(),
        ]));
        let mut frame = [9i16; FRAME_SAMPLES_8K];
        assert_eq!(player.fill(&mut frame), PlayState::Finished);
        assert_eq!(frame[..4], [1, 2, 3, 0]);

        for playlist in [
            Playlist::once(Vec::new()),
            Playlist::looped(Vec::new()),
            Playlist::looped(vec![empty.clone(), empty.clone()]).with_gap_ms(20),
            Playlist::once(vec![empty.clone()]),
        ] {
            let mut player = Player::new(playlist);
            let mut frame = [9i16; FRAME_SAMPLES_8K];
            assert_eq!(player.fill(&mut frame), PlayState::Finished);
            assert!(frame.iter().all(|&v| v == 0));
        }

        // Empty items in a loop with audio are stepped over.
        let mut player = Player::new(Playlist::looped(vec![
            empty.clone(),
            ramp("b", 1, 2),
            empty,
        ]));
        let mut frame = [0i16; 6];
        assert_eq!(player.fill(&mut frame), PlayState::Playing);
        assert_eq!(frame, [1, 2, 1, 2, 1, 2]);
    }

    #[test]
    fn rewind_starts_over() {
        let mut player = Player::new(Playlist::once(vec![ramp("a", 1, 200)]));
        let (first, _) = play_all(&mut player, 2);
        player.rewind();
        assert!(!player.is_finished());
        let (second, _) = play_all(&mut player, 2);
        assert_eq!(first, second);
    }
}
