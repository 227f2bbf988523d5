//! (registrar: being written)
