//! The prompt library as the relay's source of announcements and music on hold.

use super::source::{FrameFill, FrameSource, PromptFactory};
use crate::media::prompt::{PlayState, Player, PromptLibrary, Repeat};
use std::sync::Arc;

/// Opens playlists from a [`PromptLibrary`] (tenant overrides first, then the built-in
/// sounds). Names the library does not have are skipped; `None` when none is left.
pub struct LibraryPrompts {
    library: Arc<PromptLibrary>,
}

impl LibraryPrompts {
    /// A factory over `library`.
    pub fn new(library: Arc<PromptLibrary>) -> Self {
        Self { library }
    }
}

impl PromptFactory for LibraryPrompts {
    fn open(
        &self,
        tenant: Option<i64>,
        names: &[String],
        looped: bool,
    ) -> Option<Box<dyn FrameSource>> {
        let tenant = tenant.map(|t| t.to_string());
        let known: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| self.library.get(tenant.as_deref(), n).is_some())
            .collect();
        if known.is_empty() {
            return None;
        }
        let repeat = if looped { Repeat::Loop } else { Repeat::Once };
        let playlist = self
            .library
            .playlist(tenant.as_deref(), &known, repeat)
            .ok()?;
        Some(Box::new(PlayerSource(Player::new(playlist))))
    }
}

/// A playlist player as a frame source.
struct PlayerSource(Player);

impl FrameSource for PlayerSource {
    fn fill(&mut self, out: &mut [i16]) -> FrameFill {
        match self.0.fill(out) {
            PlayState::Playing => FrameFill::Playing,
            PlayState::Finished => FrameFill::Finished,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_music_on_hold_plays_in_frames_and_unknown_names_open_nothing() {
        let library = Arc::new(PromptLibrary::builtin().expect("built-in sounds"));
        let factory = LibraryPrompts::new(library);
        let mut moh = factory
            .open(Some(7), &["moh/default".to_owned()], true)
            .expect("music on hold");
        let mut frame = [0i16; 160];
        let mut energy = 0u64;
        for _ in 0..100 {
            assert_eq!(moh.fill(&mut frame), FrameFill::Playing);
            energy += frame
                .iter()
                .map(|s| u64::from(s.unsigned_abs()))
                .sum::<u64>();
        }
        assert!(energy > 0, "two seconds of music are not silent");
        assert!(factory
            .open(None, &["no/such-prompt".to_owned()], false)
            .is_none());
        let mut once = factory
            .open(None, &["digits/3".to_owned(), "nope".to_owned()], false)
            .expect("known names are kept");
        let mut frames = 0;
        while once.fill(&mut frame) == FrameFill::Playing {
            frames += 1;
            assert!(frames < 500, "a digit ends within ten seconds");
        }
    }
}
