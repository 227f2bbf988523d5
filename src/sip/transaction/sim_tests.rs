//! Client and server transactions talking over a simulated lossy UDP link in virtual time.
//!
//! Each side is driven exactly as the contract says: after every input its outputs are
//! drained, and the simulation jumps to the earliest of the next delivery, the next
//! transaction deadline and the next scripted TU action. Loss is scripted by message
//! index per direction, so every run is identical.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::test_util::{base, ms};
use super::{
    ClientInvite, ClientNonInvite, Disposition, ServerInvite, ServerNonInvite, TimerConfig,
    TransactionEvent,
};

/// One-way latency of the simulated link.
const LATENCY: Duration = Duration::from_millis(20);

/// A message in flight.
struct Flight {
    at: Instant,
    to_server: bool,
    bytes: Bytes,
}

/// The link: delivers after `LATENCY`, dropping the scripted message indices.
struct Link {
    flights: Vec<Flight>,
    sent_up: usize,
    sent_down: usize,
    drop_up: HashSet<usize>,
    drop_down: HashSet<usize>,
}

impl Link {
    fn new(drop_up: &[usize], drop_down: &[usize]) -> Self {
        Self {
            flights: Vec::new(),
            sent_up: 0,
            sent_down: 0,
            drop_up: drop_up.iter().copied().collect(),
            drop_down: drop_down.iter().copied().collect(),
        }
    }

    fn send(&mut self, now: Instant, to_server: bool, bytes: Bytes) {
        let (n, drops) = if to_server {
            self.sent_up += 1;
            (self.sent_up - 1, &self.drop_up)
        } else {
            self.sent_down += 1;
            (self.sent_down - 1, &self.drop_down)
        };
        if !drops.contains(&n) {
            self.flights.push(Flight {
                at: now + LATENCY,
                to_server,
                bytes,
            });
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.flights.iter().map(|f| f.at).min()
    }

    fn take_due(&mut self, now: Instant) -> Vec<Flight> {
        let (due, rest) = std::mem::take(&mut self.flights)
            .into_iter()
            .partition(|f| f.at <= now);
        self.flights = rest;
        due
    }
}

/// The status code of a serialized response ("SIP/2.0 NNN ...").
fn status_of(bytes: &[u8]) -> u16 {
    std::str::from_utf8(bytes.get(8..11).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn earliest(times: &[Option<Instant>]) -> Option<Instant> {
    times.iter().flatten().min().copied()
}

#[test]
fn non_invite_over_lossy_udp_delivers_one_final_each_way() {
    let t0 = base();
    let cfg = TimerConfig::default();
    // Lose the first two copies of the request and the first 200.
    let mut link = Link::new(&[0, 1], &[0]);
    let mut client = ClientNonInvite::new(t0, Bytes::from_static(b"OPTIONS"), false, &cfg);
    let mut server: Option<ServerNonInvite> = None;
    let mut server_tu_requests = 0;
    let mut client_tu_responses = Vec::new();
    let mut client_events = Vec::new();
    let mut server_events = Vec::new();
    let mut now = t0;

    for _ in 0..10_000 {
        while let Some(b) = client.poll_transmit() {
            link.send(now, true, b);
        }
        client_events.extend(std::iter::from_fn(|| client.poll_event()));
        if let Some(s) = server.as_mut() {
            while let Some(b) = s.poll_transmit() {
                link.send(now, false, b);
            }
            server_events.extend(std::iter::from_fn(|| s.poll_event()));
        }
        let Some(next) = earliest(&[
            link.next_at(),
            client.poll_timeout(),
            server.as_ref().and_then(ServerNonInvite::poll_timeout),
        ]) else {
            break;
        };
        now = next;
        client.handle_timeout(now);
        if let Some(s) = server.as_mut() {
            s.handle_timeout(now);
        }
        for f in link.take_due(now) {
            if f.to_server {
                match server.as_mut() {
                    Some(s) => s.handle_request_retransmission(now),
                    None => {
                        // New request: new transaction, passed to the TU, which answers.
                        let mut s = ServerNonInvite::new(now, false, &cfg);
                        server_tu_requests += 1;
                        s.send_response(now, 200, Bytes::from_static(b"SIP/2.0 200 OK"))
                            .unwrap();
                        server = Some(s);
                    }
                }
            } else {
                let status = status_of(&f.bytes);
                if client.handle_response(now, status).unwrap() == Disposition::PassUp {
                    client_tu_responses.push((status, now - t0));
                }
            }
        }
    }

    assert_eq!(server_tu_requests, 1);
    // Request copies at 0 (lost), 0.5 (lost), 1.5 s (arrives 1.52); the 200 sent then is
    // lost; the copy at 3.5 s draws the retransmitted 200, which arrives at 3.54 s.
    assert_eq!(client_tu_responses, vec![(200, ms(3540))]);
    assert_eq!(client_events, vec![TransactionEvent::Terminated]);
    assert_eq!(server_events, vec![TransactionEvent::Terminated]);
    assert!(client.is_terminated());
    assert!(server.is_some_and(|s| s.is_terminated()));
}

#[test]
fn invite_rejected_over_lossy_udp_ack_lost_once() {
    let t0 = base();
    let cfg = TimerConfig::default();
    // Lose the first ACK (upstream message 1: INVITE is 0).
    let mut link = Link::new(&[1], &[]);
    let mut client = ClientInvite::new(t0, Bytes::from_static(b"INVITE"), false, &cfg);
    let mut server: Option<ServerInvite> = None;
    let mut server_created_at = t0;
    let mut rejected = false;
    let mut client_tu = Vec::new();
    let mut acks_built = 0;
    let mut server_acks = Vec::new();
    let mut client_events = Vec::new();
    let mut server_events = Vec::new();
    let mut now = t0;

    for _ in 0..10_000 {
        while let Some(b) = client.poll_transmit() {
            link.send(now, true, b);
        }
        client_events.extend(std::iter::from_fn(|| client.poll_event()));
        // Scripted server TU: 180 at once, 486 one second later.
        let tu_due = server_created_at + ms(1000);
        if let Some(s) = server.as_mut() {
            if !rejected && now >= tu_due {
                rejected = true;
                s.send_response(now, 486, Bytes::from_static(b"SIP/2.0 486 Busy"))
                    .unwrap();
            }
            while let Some(b) = s.poll_transmit() {
                link.send(now, false, b);
            }
            server_events.extend(std::iter::from_fn(|| s.poll_event()));
        }
        let tu_next = (server.is_some() && !rejected).then_some(tu_due);
        let Some(next) = earliest(&[
            link.next_at(),
            client.poll_timeout(),
            server.as_ref().and_then(ServerInvite::poll_timeout),
            tu_next,
        ]) else {
            break;
        };
        now = next;
        client.handle_timeout(now);
        if let Some(s) = server.as_mut() {
            s.handle_timeout(now);
        }
        for f in link.take_due(now) {
            if f.to_server {
                match (&f.bytes[..], server.as_mut()) {
                    (b"ACK", Some(s)) => server_acks.push((s.handle_ack(now), now - t0)),
                    (_, Some(s)) => s.handle_request_retransmission(now),
                    (_, None) => {
                        let mut s = ServerInvite::new(now, false, &cfg);
                        s.send_response(now, 180, Bytes::from_static(b"SIP/2.0 180 Ringing"))
                            .unwrap();
                        server_created_at = now;
                        server = Some(s);
                    }
                }
            } else {
                let status = status_of(&f.bytes);
                let d = client
                    .handle_response(now, status, || {
                        acks_built += 1;
                        Bytes::from_static(b"ACK")
                    })
                    .unwrap();
                if d == Disposition::PassUp {
                    client_tu.push(status);
                }
            }
        }
    }

    // The TU sees the 180 and the 486 once each; the ACK is built once.
    assert_eq!(client_tu, vec![180, 486]);
    assert_eq!(acks_built, 1);
    // 486 sent at 1.02 s, arrives 1.04; ACK lost; G re-sends at 1.52, arrives 1.54, the
    // client re-ACKs, the ACK arrives at 1.56 s and confirms the server transaction.
    assert_eq!(server_acks, vec![(Disposition::Absorb, ms(1560))]);
    assert_eq!(server_events, vec![TransactionEvent::Terminated]);
    assert_eq!(client_events, vec![TransactionEvent::Terminated]);
    // Nothing was ever asked of the TU for a 100: the 180 went out at once.
    assert!(!server_events.contains(&TransactionEvent::SendTrying));
}
