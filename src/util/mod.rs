//! Small shared helpers with no I/O: time values and log redaction.

pub mod redact;
pub mod time;

/// Digits of an extension. Shorter than any national number (Norwegian numbers have 8
/// digits), so a dialled string is never both an extension and a number.
pub const EXTENSION_DIGITS: std::ops::RangeInclusive<usize> = 2..=6;
