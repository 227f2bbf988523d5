//! The dialogs of an endpoint, keyed by [`DialogId`] for in-dialog request matching.

use std::collections::HashMap;

use super::{Dialog, DialogError, DialogId, DialogState};

/// Live dialogs by id (RFC 3261 12.2.2: a request with a To tag is matched by Call-ID,
/// local tag (its To tag) and remote tag (its From tag)).
#[derive(Debug, Default, Clone)]
pub struct DialogSet {
    dialogs: HashMap<DialogId, Dialog>,
}

impl DialogSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a dialog; fails if one with the same id exists.
    pub fn insert(&mut self, dialog: Dialog) -> Result<(), DialogError> {
        if self.dialogs.contains_key(dialog.id()) {
            return Err(DialogError::DuplicateDialog);
        }
        self.dialogs.insert(dialog.id().clone(), dialog);
        Ok(())
    }

    /// The dialog with this id.
    pub fn get(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs.get(id)
    }

    /// The dialog with this id, to update it.
    pub fn get_mut(&mut self, id: &DialogId) -> Option<&mut Dialog> {
        self.dialogs.get_mut(id)
    }

    /// Removes and returns the dialog with this id.
    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        self.dialogs.remove(id)
    }

    /// Drops every terminated dialog; returns how many were dropped.
    pub fn remove_terminated(&mut self) -> usize {
        let before = self.dialogs.len();
        self.dialogs
            .retain(|_, d| d.state() != DialogState::Terminated);
        before - self.dialogs.len()
    }

    /// How many dialogs the set holds.
    pub fn len(&self) -> usize {
        self.dialogs.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.dialogs.is_empty()
    }

    /// Every dialog, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Dialog> {
        self.dialogs.values()
    }
}
