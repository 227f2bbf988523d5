//! Small shared helpers with no I/O: time values and log redaction.

pub mod redact;
pub mod time;
