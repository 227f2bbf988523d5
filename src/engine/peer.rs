//! Where a message came from or goes to, in terms the sans-IO core understands.
//!
//! The runtime maps these to the transport layer's own types, so the engine never
//! depends on the transport module.

use std::net::SocketAddr;

/// The transport protocol of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    /// The token used in Via headers.
    pub fn via_token(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
        }
    }

    /// Streams deliver reliably: no retransmission timers (RFC 3261 s17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Proto::Tcp)
    }
}

/// One end of a message exchange: our listening socket and the far end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport protocol.
    pub proto: Proto,
    /// The far end's address (the packet source, never an address taken from a header).
    pub remote: SocketAddr,
    /// Our local socket address.
    pub local: SocketAddr,
    /// The stream connection, for TCP.
    pub conn: Option<u64>,
    /// Index of the listening socket (and so of its profile) in the runtime's table.
    pub listener: usize,
}
