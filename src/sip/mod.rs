//! SANS-IO SIP: the message codec, transactions (RFC 3261 s17), dialogs (s12) and digest auth.
//!
//! Nothing here uses tokio, sockets, the clock or the database.

pub mod auth;
pub mod dialog;
pub mod ext;
pub mod message;
pub mod method;
pub mod transaction;

pub use method::Method;
