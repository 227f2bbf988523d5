//! (message: being written)
