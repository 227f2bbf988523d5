//! (dialog: being written)
