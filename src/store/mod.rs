//! (store: being written)
