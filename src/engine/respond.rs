//! Building responses and choosing where they go (RFC 3261 s18.2.2, RFC 3581).

use super::peer::{Peer, Proto};
use crate::sip::message::{HeaderName, Message};
use bytes::Bytes;
use std::net::SocketAddr;

/// Where a response to a request received from `peer` is sent.
///
/// Streams: back on the same connection. UDP: to the packet's source address. With
/// `rport` (RFC 3581) the source port is used, otherwise the Via's port (default 5060),
/// as RFC 3261 s18.2.2 says; the IP is always the packet's source, never a Via host or
/// `maddr`, so the switch cannot be made to send to an address a stranger names.
pub fn response_destination(req: &Message, peer: &Peer) -> SocketAddr {
    if peer.proto == Proto::Tcp {
        return peer.remote;
    }
    match req.top_via() {
        Ok(via) => match via.rport() {
            Some(_) => peer.remote,
            None => SocketAddr::new(peer.remote.ip(), via.port.unwrap_or(5060)),
        },
        // An unparsable Via: the packet's source is the only safe answer.
        Err(_) => peer.remote,
    }
}

/// Adds `received` and `rport` to the top Via of a request we answer (RFC 3261 s18.2.1,
/// RFC 3581 s4), so the response carries them back.
pub fn stamp_top_via(req: &mut Message, peer: &Peer) {
    let Some(idx) = req.headers.iter().position(|h| h.name == HeaderName::Via) else {
        return;
    };
    let Ok(via) = req.top_via() else { return };
    // The top Via value may share its header line with others: rewrite only the first value.
    let h = &req.headers[idx];
    let un = h.unfolded().into_owned();
    let Some(parts) = crate::sip::message::header::split_commas(&un) else {
        return;
    };
    let Some(first) = parts.first() else { return };
    let mut top = first.to_vec();
    let wants_rport = via.rport() == Some(None);
    let mut new_params = Vec::new();
    if wants_rport {
        // Replace the bare `rport` with `rport=<port>`.
        let mut out = Vec::with_capacity(top.len() + 32);
        for (i, seg) in top.split(|&b| b == b';').enumerate() {
            if i > 0 {
                out.push(b';');
            }
            if crate::sip::message::header::trim(seg).eq_ignore_ascii_case(b"rport") {
                out.extend_from_slice(format!("rport={}", peer.remote.port()).as_bytes());
            } else {
                out.extend_from_slice(seg);
            }
        }
        top = out;
    }
    let host_matches = via.host.ip() == Some(peer.remote.ip());
    if (wants_rport || !host_matches) && via.param("received").is_none() {
        new_params.extend_from_slice(format!(";received={}", peer.remote.ip()).as_bytes());
    }
    top.extend_from_slice(&new_params);
    let mut value = top;
    for rest in &parts[1..] {
        value.extend_from_slice(b", ");
        value.extend_from_slice(rest);
    }
    req.headers[idx].value = Bytes::from(value);
}

/// A stateless response to a request that could only be partly parsed: copies whatever
/// Via, From, To, Call-ID and CSeq headers it had.
pub fn error_response(req: &Message, code: u16, reason: &'static str, to_tag: &str) -> Message {
    Message::response_to(req, code, reason, Some(to_tag))
}
