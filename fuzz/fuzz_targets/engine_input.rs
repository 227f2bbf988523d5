//! Fuzzes the whole sans-IO engine with received datagrams.
//!
//! Input: one or more UDP datagrams separated by the 4-byte marker `\0\0\0\n` (so the
//! fuzzer can build transactions: a request, its retransmission, a CANCEL or ACK). Each
//! is fed as `Input::Received` from 127.0.0.1:5070, 10 ms apart; every credentials
//! lookup is answered "unknown user" and every other lookup "nothing found"; then one
//! `Input::Timeout` 40 s later.
//! Checked: no panic, outputs are drained after every input, transmissions go to the
//! sender's IP address from the socket the request came in on, and are not empty; after
//! the timeout no lookup is pending and no transaction is left.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sentralbord::engine::peer::{Peer, Proto};
use sentralbord::engine::{CallerNumbers, Engine, EngineConfig, Input, ListenerInfo, Output};
use sentralbord::registrar::RegistrarConfig;
use sentralbord::sip::auth::Algorithm;
use sentralbord::sip::transaction::TimerConfig;
use sentralbord::util::time::Now;

/// Separates datagrams in one fuzz input.
const SEPARATOR: &[u8] = b"\0\0\0\n";
/// At most this many datagrams per input, so one input stays cheap.
const MAX_DATAGRAMS: usize = 16;

const REALM: &str = "sentralbord.local";

const LOCAL: &str = "127.0.0.1:5060";
const REMOTE: &str = "127.0.0.1:5070";

/// One base time per process: the engine only sees differences from it.
#[allow(clippy::disallowed_methods)]
fn base() -> Now {
    static BASE: OnceLock<Now> = OnceLock::new();
    *BASE.get_or_init(|| Now::new(Instant::now(), SystemTime::now()))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("constant address")
}

fn engine() -> Engine {
    Engine::new(EngineConfig {
        listeners: vec![ListenerInfo {
            profile: "phones".to_owned(),
            addr: addr(LOCAL),
            proto: Proto::Udp,
            realm: Some(REALM.to_owned()),
            // Both algorithms, so a challenge offers SHA-256 and MD5.
            digest_algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            numbering: None,
            outbound: None,
            trusted: None,
        }],
        timers: TimerConfig::default(),
        registrar: RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            nonce_lifetime_s: 300,
        },
        server_header: "sentralbord".to_owned(),
        retry_after_s: 30,
        caller_lookup_budget: Duration::from_millis(300),
        seed: [0; 32],
        nonce_secret: [0x5a; 32],
    })
}

/// Drains every output, answering credential lookups with "no such user".
fn drain(engine: &mut Engine, now: Now, peer: &Peer) {
    // Each answer may produce more outputs; bound the loop so a bug that keeps asking
    // shows up as a failed assertion instead of a hang.
    let mut budget = 10_000usize;
    while let Some(out) = engine.poll_output() {
        budget = budget
            .checked_sub(1)
            .expect("engine keeps producing outputs");
        match out {
            Output::Transmit { data, peer: to } => {
                assert!(!data.is_empty(), "empty transmission");
                // Responses go to the packet's source IP (the port may come from the Via,
                // RFC 3261 s18.2.2), never to a host named in a header.
                assert_eq!(
                    to.remote.ip(),
                    peer.remote.ip(),
                    "reply to an address we never heard from"
                );
                assert_eq!(to.local, peer.local, "reply from another socket");
                assert_eq!(to.listener, peer.listener, "reply on an unknown listener");
            }
            Output::LookupCredentials { lookup, .. } => {
                engine.handle_input(Input::CredentialsFound {
                    now,
                    lookup,
                    credentials: None,
                });
            }
            // Every other lookup finds nothing. The match is exhaustive on purpose: a
            // new lookup must be answered here, or the idle check below fails.
            Output::ResolveUser { lookup, .. } => engine.handle_input(Input::UserResolved {
                now,
                lookup,
                user: None,
            }),
            Output::ResolveNumber { lookup, .. } => engine.handle_input(Input::NumberResolved {
                now,
                lookup,
                owner: None,
            }),
            Output::LookupCaller { lookup, .. } => engine.handle_input(Input::CallerFound {
                now,
                lookup,
                name: None,
            }),
            Output::ResolveMobile { lookup, .. } => engine.handle_input(Input::MobileResolved {
                now,
                lookup,
                user: None,
            }),
            Output::ResolveCallerNumbers { lookup, .. } => {
                engine.handle_input(Input::CallerNumbersResolved {
                    now,
                    lookup,
                    numbers: CallerNumbers::default(),
                })
            }
            Output::Persist(_) | Output::CallEnded(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let peer = Peer {
        proto: Proto::Udp,
        remote: addr(REMOTE),
        local: addr(LOCAL),
        conn: None,
        listener: 0,
    };
    let mut engine = engine();
    let mut now = base;
    let mut rest = data;
    for _ in 0..MAX_DATAGRAMS {
        let (datagram, next) = match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(pos) => (&rest[..pos], Some(&rest[pos + SEPARATOR.len()..])),
            None => (rest, None),
        };
        engine.handle_input(Input::Received {
            now,
            data: Bytes::copy_from_slice(datagram),
            peer,
        });
        drain(&mut engine, now, &peer);
        now = now.advanced(Duration::from_millis(10));
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    let _ = engine.poll_timeout();
    let later = base.advanced(Duration::from_secs(40));
    engine.handle_input(Input::Timeout(later));
    drain(&mut engine, later, &peer);
    // Every lookup was answered and 40 s is past every RFC 3261 transaction timer
    // (64*T1 = 32 s): nothing an input started may still hold memory.
    assert!(
        engine.is_idle(),
        "a lookup is still pending after its answer"
    );
    assert_eq!(
        engine.transactions(),
        0,
        "transactions outlive their timers (next deadline {:?} after the base)",
        engine.poll_timeout().map(|t| t.duration_since(base.mono))
    );
    let _ = engine.stats();
});
