//! (transaction: being written)
