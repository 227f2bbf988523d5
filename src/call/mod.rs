//! SANS-IO call model: a call owns its legs (the inbound leg and the outbound branches
//! it rings) and moves through routing, ringing, early media, answered and ended.
//!
//! The model knows nothing about bytes on the wire: the engine turns SIP events into
//! [`Call`] method calls and acts on what they return. Deciding *whom* to ring is the
//! planner's job ([`plan`]); queues and answer groups will be further planners.

pub mod model;
pub mod numbering;
pub mod plan;
