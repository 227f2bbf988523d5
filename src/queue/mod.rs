//! SANS-IO: the queue engine. Callers wait in queues and answer groups; the engine decides
//! whom to offer each caller to, when to overflow, and when to announce position and
//! expected wait. It takes events and time and returns [`model::QueueAction`]s; the
//! switch (`engine`) carries them out over SIP and the media plane.

pub mod model;
