//! SANS-IO: the queue engine. Callers wait in queues and answer groups; the engine decides
//! whom to offer each caller to, when to overflow, and when to announce position and
//! expected wait. It takes events and time and returns [`model::QueueAction`]s; the
//! switch (`engine`) carries them out over SIP and the media plane.
//!
//! `model` is the vocabulary, `engine` the state machine ([`QueueEngine`]), `strategy`
//! the choice of agent, `schedule` opening hours and local dates (tenant time zones).

pub mod engine;
pub mod model;
pub mod schedule;
pub mod strategy;
#[cfg(test)]
mod tests;

pub use engine::{QueueEngine, MAX_OVERFLOW_HOPS, REFUSED_DELAY};
