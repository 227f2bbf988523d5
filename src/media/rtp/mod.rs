//! Placeholder: filled in by the media work of issue 5.
