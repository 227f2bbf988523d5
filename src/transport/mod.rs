//! (transport: being written)
