//! Engine tests in simulated time: scripted user agents send bytes, the engine answers,
//! time advances by adding durations (no sleeping, no sockets).

use super::peer::{Peer, Proto};
use super::*;
use crate::registrar::RegistrarConfig;
use crate::sip::auth::{self, Algorithm, QopAuth};
use crate::sip::message::{parse, Parsed};
use std::time::SystemTime;

const REALM: &str = "sentralbord.local";

fn base() -> Now {
    #[allow(clippy::disallowed_methods)]
    Now::new(
        Instant::now(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    )
}

fn engine() -> Engine {
    Engine::new(config(false))
}

/// An engine that anchors the media of every call (ports 20000-20099 on 127.0.0.1).
fn anchoring_engine() -> Engine {
    Engine::new(config(true))
}

fn config(anchor: bool) -> EngineConfig {
    EngineConfig {
        listeners: vec![
            ListenerInfo {
                proto: Proto::Udp,
                profile: "phones".into(),
                addr: "127.0.0.1:5060".parse().expect("addr"),
                realm: Some(REALM.into()),
                digest_algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
                numbering: None,
                outbound: None,
                options_ping: None,
                anchor_media: anchor,
                trusted: None,
            },
            ListenerInfo {
                proto: Proto::Udp,
                profile: "trunk".into(),
                addr: "127.0.0.1:5080".parse().expect("addr"),
                realm: None,
                digest_algorithms: Vec::new(),
                numbering: Some(crate::config::Numbering {
                    country_code: "47".into(),
                    national_prefix: String::new(),
                    international_prefix: "00".into(),
                }),
                outbound: Some("192.0.2.1:5060".parse().expect("addr")),
                options_ping: Some(Duration::from_secs(30)),
                anchor_media: anchor,
                trusted: Some(vec!["192.0.2.0/24".parse().expect("net")]),
            },
        ],
        timers: TimerConfig::default(),
        registrar: RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            nonce_lifetime_s: 300,
        },
        server_header: "sentralbord-test".into(),
        caller_lookup_budget: Duration::from_millis(300),
        retry_after_s: 30,
        seed: [7; 32],
        nonce_secret: [9; 32],
        media: anchor.then_some(super::media::MediaConfig {
            address: None,
            moh_on_hold: false,
        }),
    }
}

fn udp_peer(port: u16) -> Peer {
    Peer {
        proto: Proto::Udp,
        remote: SocketAddr::from(([127, 0, 0, 1], port)),
        local: "127.0.0.1:5060".parse().expect("addr"),
        conn: None,
        listener: 0,
    }
}

/// Feeds a message and returns everything the engine put out.
fn feed(e: &mut Engine, now: Now, text: &str, peer: Peer) -> Vec<Output> {
    e.handle_input(Input::Received {
        now,
        data: Bytes::copy_from_slice(text.as_bytes()),
        peer,
    });
    drain(e)
}

/// Every output; a media session the engine asks for is opened at once (as the media
/// plane would) on ports 20000 + 4k (caller) and 20002 + 4k (callee), k = session id,
/// and what follows is included.
fn drain(e: &mut Engine) -> Vec<Output> {
    let mut out: Vec<Output> = Vec::new();
    while let Some(o) = e.poll_output() {
        let open = match &o {
            Output::Media(crate::media::control::MediaCommand::Open { session, .. }) => {
                Some(*session)
            }
            _ => None,
        };
        out.push(o);
        if let Some(session) = open {
            let base = 20_000 + 4 * u16::try_from(session.0).unwrap_or(0);
            let now = base_time_for_media();
            e.handle_input(Input::Media {
                now,
                event: crate::media::control::MediaEvent::Opened {
                    session,
                    caller: crate::media::control::PortPair { rtp: base },
                    callee: crate::media::control::PortPair { rtp: base + 2 },
                },
            });
        }
    }
    out
}

/// The time the stand-in media plane answers at (the engine only uses it for timers).
fn base_time_for_media() -> Now {
    base()
}

fn responses(out: &[Output]) -> Vec<(Message, Peer)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit { data, peer } => match parse(data.clone()) {
                Parsed::Valid(m) => Some((m, *peer)),
                Parsed::Invalid { error, .. } => {
                    panic!("engine sent an invalid message: {error:?}")
                }
            },
            _ => None,
        })
        .collect()
}

fn only_response(out: &[Output]) -> (Message, Peer) {
    let mut r = responses(out);
    assert_eq!(r.len(), 1, "expected one response, got {out:?}");
    r.remove(0)
}

fn header(m: &Message, name: HeaderName) -> String {
    m.header(&name)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .unwrap_or_default()
}

fn options(branch: &str, port: u16, rport: bool, extra: &str) -> String {
    let rport = if rport { ";rport" } else { "" };
    format!(
        "OPTIONS sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}{rport}\r\n\
Max-Forwards: 70\r\nFrom: <sip:probe@{REALM}>;tag=p1\r\nTo: <sip:{REALM}>\r\nCall-ID: opt-{branch}\r\n\
CSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn options_answered_with_rport_and_received() {
    let mut e = engine();
    let now = base();
    let out = feed(
        &mut e,
        now,
        &options("z9hG4bKo1", 5070, true, ""),
        udp_peer(40000),
    );
    let (resp, to) = only_response(&out);
    assert_eq!(resp.status(), Some(200));
    // rport: the response goes to the source port, and the Via says where it came from.
    assert_eq!(to.remote.port(), 40000);
    assert!(header(&resp, HeaderName::Via).contains("rport=40000"));
    assert!(header(&resp, HeaderName::Via).contains("received=127.0.0.1"));
    assert!(resp.to().expect("to").tag().is_some());
    // Without rport: the Via port, at the packet's source IP (never the Via host).
    let text = options("z9hG4bKo2", 5070, false, "").replace(
        "Via: SIP/2.0/UDP 127.0.0.1",
        "Via: SIP/2.0/UDP 198.51.100.7",
    );
    let out = feed(&mut e, now, &text, udp_peer(40001));
    let (_, to) = only_response(&out);
    assert_eq!(to.remote, SocketAddr::from(([127, 0, 0, 1], 5070)));
}

#[test]
fn retransmitted_request_gets_the_same_response() {
    let mut e = engine();
    // No carrier: the trunk's OPTIONS pings would add transactions of their own.
    e.cfg.listeners[1].outbound = None;
    let now = base();
    let text = options("z9hG4bKr1", 5070, true, "");
    let first = only_response(&feed(&mut e, now, &text, udp_peer(5070))).0;
    let again = only_response(&feed(
        &mut e,
        now.advanced(Duration::from_millis(500)),
        &text,
        udp_peer(5070),
    ))
    .0;
    assert_eq!(first.encode(), again.encode(), "same to-tag, same bytes");
    assert_eq!(e.stats().retransmissions, 1);
    // Timer J (64*T1 over UDP) ends the transaction.
    assert!(e.transactions() > 0);
    let later = now.advanced(Duration::from_secs(33));
    e.handle_input(Input::Timeout(later));
    assert_eq!(e.transactions(), 0);
}

#[test]
fn malformed_request_gets_400_with_reason() {
    let mut e = engine();
    let text = options("z9hG4bKm1", 5070, true, "").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    let (resp, _) = only_response(&feed(&mut e, base(), &text, udp_peer(5070)));
    assert_eq!(resp.status(), Some(400));
    let StartLine::Response { reason, .. } = &resp.start else {
        panic!("response")
    };
    assert_eq!(&reason[..], b"Bad Request - CSeq Method Mismatch");
    // A malformed response is dropped silently.
    let out = feed(
        &mut e,
        base(),
        "SIP/2.0 999999 nope\r\n\r\n",
        udp_peer(5070),
    );
    assert!(out.is_empty());
}

#[test]
fn pipeline_refusals() {
    let mut e = engine();
    let now = base();
    let r = |e: &mut Engine, text: String| only_response(&feed(e, now, &text, udp_peer(5070))).0;
    let req = r(&mut e, options("z9hG4bKp1", 5070, true, "Require: foo\r\n"));
    assert_eq!(req.status(), Some(420));
    assert_eq!(header(&req, HeaderName::Unsupported), "foo");
    let unknown = options("z9hG4bKp2", 5070, true, "").replace("OPTIONS", "NEWMETHOD");
    let resp = r(&mut e, unknown);
    assert_eq!(resp.status(), Some(405));
    assert!(header(&resp, HeaderName::Allow).contains("REGISTER"));
    let invite = options("z9hG4bKp3", 5070, true, "")
        .replace("OPTIONS", "INVITE")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(r(&mut e, invite).status(), Some(483));
    let bye = options("z9hG4bKp4", 5070, true, "").replace("OPTIONS", "BYE");
    assert_eq!(r(&mut e, bye).status(), Some(481));
    // The trunk listener only accepts its trusted carrier networks.
    let out = feed(
        &mut e,
        now,
        &options("z9hG4bKp5", 5070, true, ""),
        Peer {
            listener: 1,
            ..udp_peer(5070)
        },
    );
    assert_eq!(only_response(&out).0.status(), Some(403));
}

#[test]
fn invite_challenge_is_retransmitted_until_ack_and_cancel_matches() {
    let mut e = engine();
    // No carrier: the trunk's OPTIONS pings would add transactions of their own.
    e.cfg.listeners[1].outbound = None;
    let now = base();
    let invite = options("z9hG4bKi1", 5070, true, "").replace("OPTIONS", "INVITE");
    let (resp, _) = only_response(&feed(&mut e, now, &invite, udp_peer(5070)));
    // A phone must authenticate its calls.
    assert_eq!(resp.status(), Some(407));
    // Timer G retransmits the final response over UDP until the ACK arrives.
    let t1 = now.advanced(Duration::from_millis(500));
    e.handle_input(Input::Timeout(t1));
    assert_eq!(responses(&drain(&mut e)).len(), 1);
    let ack = invite
        .replace("INVITE sip", "ACK sip")
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(
            &format!("To: <sip:{REALM}>"),
            &format!(
                "To: <sip:{REALM}>;tag={}",
                resp.to()
                    .expect("to")
                    .tag()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_default()
            ),
        );
    assert!(
        feed(&mut e, t1, &ack, udp_peer(5070)).is_empty(),
        "ACK is never answered"
    );
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(2))));
    assert!(
        responses(&drain(&mut e)).is_empty(),
        "no retransmission after the ACK"
    );
    // A CANCEL for an INVITE that does not exist: 481.
    let cancel = options("z9hG4bKnone", 5070, true, "").replace("OPTIONS", "CANCEL");
    assert_eq!(
        only_response(&feed(&mut e, now, &cancel, udp_peer(5070)))
            .0
            .status(),
        Some(481)
    );
    // A CANCEL for a completed INVITE: 200 for the CANCEL, no second final for the INVITE.
    let invite2 = invite.replace("z9hG4bKi1", "z9hG4bKi2");
    feed(&mut e, now, &invite2, udp_peer(5070));
    let cancel2 = invite2
        .replace("INVITE sip", "CANCEL sip")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let out = feed(&mut e, now, &cancel2, udp_peer(5070));
    let codes: Vec<_> = responses(&out).iter().map(|(m, _)| m.status()).collect();
    assert_eq!(codes, vec![Some(200)]);
}

#[test]
fn draining_answers_503_with_retry_after() {
    let mut e = engine();
    e.handle_input(Input::Drain);
    let (resp, _) = only_response(&feed(
        &mut e,
        base(),
        &options("z9hG4bKd1", 5070, true, ""),
        udp_peer(5070),
    ));
    assert_eq!(resp.status(), Some(503));
    assert_eq!(header(&resp, HeaderName::RetryAfter), "30");
}

// --- registrar -----------------------------------------------------------------------

struct Phone {
    user: &'static str,
    password: &'static str,
    cseq: u32,
    nc: u32,
}

impl Phone {
    fn register(
        &mut self,
        auth_header: Option<String>,
        contact: &str,
        expires: Option<u32>,
    ) -> String {
        self.cseq += 1;
        let auth_header = auth_header
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let contact = if contact.is_empty() {
            String::new()
        } else {
            format!("Contact: {contact}\r\n")
        };
        let expires = expires
            .map(|e| format!("Expires: {e}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg{}{};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:{u}@{REALM}>;tag=ph\r\nTo: <sip:{u}@{REALM}>\r\nCall-ID: reg-{u}\r\n\
CSeq: {} REGISTER\r\n{contact}{expires}{auth_header}Content-Length: 0\r\n\r\n",
            self.user,
            self.cseq,
            self.cseq,
            u = self.user
        )
    }

    /// Answers a challenge the way a phone does.
    fn authorization(&mut self, challenge: &str, alg: Algorithm, password: &str) -> String {
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("nonce");
        self.nc += 1;
        let nc = format!("{:08x}", self.nc);
        let ha1 = auth::ha1(alg, self.user, REALM, password);
        let uri = format!("sip:{REALM}");
        let resp = auth::response(
            alg,
            &ha1,
            nonce,
            Some(QopAuth {
                nc: &nc,
                cnonce: "c0ffee",
            }),
            "REGISTER",
            &uri,
        );
        format!(
            "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", \
algorithm={}, qop=auth, nc={nc}, cnonce=\"c0ffee\"",
            self.user,
            alg.as_str()
        )
    }
}

fn credentials(user: &str, password: &str) -> Credentials {
    Credentials {
        user_id: 1,
        username: user.into(),
        ha1_md5: auth::ha1(Algorithm::Md5, user, REALM, password),
        ha1_sha256: auth::ha1(Algorithm::Sha256, user, REALM, password),
        tenant_id: 1,
    }
}

/// Sends a REGISTER, answers the credentials lookup like the store would, returns the response.
fn register_round(
    e: &mut Engine,
    now: Now,
    text: &str,
    known: Option<&Phone>,
) -> (Message, Vec<Output>) {
    let mut out = feed(e, now, text, udp_peer(5070));
    if let Some(pos) = out
        .iter()
        .position(|o| matches!(o, Output::LookupCredentials { .. }))
    {
        let Output::LookupCredentials {
            lookup,
            realm,
            username,
        } = out.remove(pos)
        else {
            unreachable!()
        };
        assert_eq!(realm, REALM);
        let creds = known
            .filter(|p| p.user == username)
            .map(|p| credentials(p.user, p.password));
        e.handle_input(Input::CredentialsFound {
            now,
            lookup,
            credentials: creds,
        });
        out.extend(drain(e));
    }
    let (resp, _) = only_response(&out);
    (resp, out)
}

fn challenges(m: &Message) -> Vec<String> {
    m.headers_named(&HeaderName::WwwAuthenticate)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect()
}

#[test]
fn register_with_sha256_and_md5_digest() {
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let mut e = engine();
        let now = base();
        let mut phone = Phone {
            user: "alice",
            password: "correct horse",
            cseq: 0,
            nc: 0,
        };
        let text = phone.register(None, "<sip:alice@127.0.0.1:5070>", Some(600));
        let (resp, _) = register_round(&mut e, now, &text, None);
        assert_eq!(resp.status(), Some(401));
        let ch = challenges(&resp);
        assert_eq!(ch.len(), 2);
        assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"));
        let challenge = if alg == Algorithm::Sha256 {
            &ch[0]
        } else {
            &ch[1]
        };
        let a = phone.authorization(challenge, alg, "correct horse");
        let text = phone.register(Some(a), "<sip:alice@127.0.0.1:5070>", Some(600));
        let known = Phone {
            user: "alice",
            password: "correct horse",
            cseq: 0,
            nc: 0,
        };
        let (resp, out) = register_round(&mut e, now, &text, Some(&known));
        assert_eq!(resp.status(), Some(200), "{alg:?}");
        assert!(header(&resp, HeaderName::Contact).contains("expires=600"));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Persist(BindingChange::Upsert(_)))));
    }
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let mut e = engine();
    let now = base();
    let known = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let mut shape = Vec::new();
    for (user, pw) in [("alice", "wrong"), ("mallory", "whatever")] {
        let mut p = Phone {
            user,
            password: pw,
            cseq: 0,
            nc: 0,
        };
        let (resp, _) = register_round(
            &mut e,
            now,
            &p.register(None, "<sip:x@127.0.0.1>", None),
            None,
        );
        let a = p.authorization(&challenges(&resp)[0], Algorithm::Sha256, pw);
        let (resp, _) = register_round(
            &mut e,
            now,
            &p.register(Some(a), "<sip:x@127.0.0.1>", None),
            Some(&known),
        );
        assert_eq!(resp.status(), Some(401));
        // Same status, same headers apart from the nonce and tags.
        let ch: Vec<String> = challenges(&resp)
            .iter()
            .map(|c| c.split("nonce=").next().unwrap_or_default().to_string())
            .collect();
        shape.push((resp.status(), ch, resp.headers.len()));
    }
    assert_eq!(shape[0], shape[1]);
}

#[test]
fn stale_nonce_replay_and_min_expires() {
    let mut e = engine();
    let now = base();
    let known = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let mut p = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let (resp, _) = register_round(
        &mut e,
        now,
        &p.register(None, "<sip:a@127.0.0.1>", None),
        None,
    );
    let challenge = challenges(&resp)[0].clone();
    // Too short: 423 with Min-Expires.
    let a = p.authorization(&challenge, Algorithm::Sha256, "correct horse");
    let (resp, _) = register_round(
        &mut e,
        now,
        &p.register(Some(a.clone()), "<sip:a@127.0.0.1>", Some(30)),
        Some(&known),
    );
    assert_eq!(resp.status(), Some(423));
    assert_eq!(header(&resp, HeaderName::MinExpires), "60");
    // The same nonce count again: a replay, challenged afresh.
    let (resp, _) = register_round(
        &mut e,
        now,
        &p.register(Some(a), "<sip:a@127.0.0.1>", None),
        Some(&known),
    );
    assert_eq!(resp.status(), Some(401));
    assert!(!challenges(&resp)[0].contains("stale"));
    // After the nonce lifetime: 401 with stale=TRUE.
    let later = now.advanced(Duration::from_secs(301));
    let a = p.authorization(&challenge, Algorithm::Sha256, "correct horse");
    let (resp, _) = register_round(
        &mut e,
        later,
        &p.register(Some(a), "<sip:a@127.0.0.1>", None),
        Some(&known),
    );
    assert_eq!(resp.status(), Some(401));
    assert!(challenges(&resp)[0].contains("stale=TRUE"));
}

#[test]
fn bindings_expire_on_their_own_and_unregister_with_star() {
    let mut e = engine();
    let now = base();
    let known = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let mut p = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let (resp, _) = register_round(&mut e, now, &p.register(None, "", None), None);
    let challenge = challenges(&resp)[0].clone();
    let a = p.authorization(&challenge, Algorithm::Sha256, "correct horse");
    let (resp, _) = register_round(
        &mut e,
        now,
        &p.register(
            Some(a),
            "<sip:a@127.0.0.1>, <sip:b@127.0.0.1>;expires=120",
            Some(600),
        ),
        Some(&known),
    );
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.headers_named(&HeaderName::Contact).count(), 2);
    // The engine asks to be woken for the first expiry (120 s).
    let deadline = e.poll_timeout().expect("deadline");
    assert!(deadline <= now.mono + Duration::from_secs(120));
    let t = now.advanced(Duration::from_secs(121));
    e.handle_input(Input::Timeout(t));
    let out = drain(&mut e);
    assert!(out.iter().any(|o| matches!(o, Output::Persist(BindingChange::Remove { contact, .. }) if contact == "sip:b@127.0.0.1")));
    // '*' with Expires: 0 removes the rest.
    let a = p.authorization(&challenge, Algorithm::Sha256, "correct horse");
    let (resp, out) = register_round(&mut e, t, &p.register(Some(a), "*", Some(0)), Some(&known));
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.headers_named(&HeaderName::Contact).count(), 0);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Persist(BindingChange::Remove { .. }))));
}

#[test]
fn a_user_cannot_register_someone_elses_aor() {
    let mut e = engine();
    let now = base();
    let known = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let mut p = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let (resp, _) = register_round(&mut e, now, &p.register(None, "", None), None);
    let a = p.authorization(&challenges(&resp)[0], Algorithm::Md5, "correct horse");
    let text = p
        .register(Some(a), "<sip:a@127.0.0.1>", None)
        .replace("To: <sip:alice@", "To: <sip:bob@");
    let (resp, _) = register_round(&mut e, now, &text, Some(&known));
    assert_eq!(resp.status(), Some(403));
}

#[test]
fn a_profile_offering_only_md5_challenges_with_md5_and_refuses_sha256_answers() {
    let mut e = engine();
    e.cfg.listeners[0].digest_algorithms = vec![Algorithm::Md5];
    let now = base();
    let known = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let mut p = Phone {
        user: "alice",
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let (resp, _) = register_round(
        &mut e,
        now,
        &p.register(None, "<sip:a@127.0.0.1>", None),
        None,
    );
    let ch = challenges(&resp);
    assert_eq!(ch.len(), 1);
    assert!(ch[0].contains("algorithm=MD5"));
    // An answer computed with SHA-256 is not accepted on this profile: a new challenge.
    let a = p
        .authorization(&ch[0], Algorithm::Sha256, "correct horse")
        .replace("algorithm=MD5", "algorithm=SHA-256");
    let (resp, out) = register_round(
        &mut e,
        now,
        &p.register(Some(a), "<sip:a@127.0.0.1>", None),
        Some(&known),
    );
    assert_eq!(resp.status(), Some(401));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::LookupCredentials { .. })));
    let a = p.authorization(&ch[0], Algorithm::Md5, "correct horse");
    let (resp, _) = register_round(
        &mut e,
        now,
        &p.register(Some(a), "<sip:a@127.0.0.1>", None),
        Some(&known),
    );
    assert_eq!(resp.status(), Some(200));
}

// --- calls ---------------------------------------------------------------------------

/// Registers `user` with a contact reached from `port`, answering the lookups.
fn registered(e: &mut Engine, now: Now, user: &'static str, port: u16) {
    let known = Phone {
        user,
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let mut p = Phone {
        user,
        password: "correct horse",
        cseq: 0,
        nc: 0,
    };
    let contact = format!("<sip:{user}@127.0.0.1:{port}>");
    let text = p
        .register(None, &contact, None)
        .replace("127.0.0.1:5070", &format!("127.0.0.1:{port}"));
    let out = feed(e, now, &text, udp_peer(port));
    let ch = challenges(&only_response(&out).0)[0].clone();
    let a = p.authorization(&ch, Algorithm::Sha256, "correct horse");
    let text = p
        .register(Some(a), &contact, None)
        .replace("127.0.0.1:5070", &format!("127.0.0.1:{port}"));
    let mut out = feed(e, now, &text, udp_peer(port));
    let lookup = lookup_of(&out, "LookupCredentials");
    out.clear();
    e.handle_input(Input::CredentialsFound {
        now,
        lookup,
        credentials: Some(credentials(known.user, known.password)),
    });
    let (resp, _) = only_response(&drain(e));
    assert_eq!(resp.status(), Some(200));
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";

fn invite_text(branch: &str, auth: Option<&str>) -> String {
    invite_text_with(branch, auth, SDP)
}

/// Alice's INVITE to 200 with `sdp` as its body.
fn invite_text_with(branch: &str, auth: Option<&str>, sdp: &str) -> String {
    let auth = auth
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "INVITE sip:200@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=a1\r\nTo: <sip:200@{REALM}>\r\n\
Call-ID: call-a\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5071>\r\n{auth}\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Alice (5071) calls extension 200 (bob, registered from 5072). Returns the INVITE
/// that reached bob.
fn alice_calls_bob(e: &mut Engine, now: Now, bob_registered: bool) -> Vec<Output> {
    let out = feed(e, now, &invite_text("z9hG4bKinv1", None), udp_peer(5071));
    let (resp, _) = only_response(&out);
    assert_eq!(resp.status(), Some(407));
    let ch: Vec<String> = resp
        .headers_named(&HeaderName::ProxyAuthenticate)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect();
    assert_eq!(ch.len(), 2);
    // The phone ACKs the 407 (same branch) and retries with credentials.
    let ack = invite_text("z9hG4bKinv1", None)
        .replace("INVITE sip:200", "ACK sip:200")
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    assert!(feed(e, now, &ack, udp_peer(5071)).is_empty());
    let a = alice_proxy_authorization(&ch[0], &format!("sip:200@{REALM}"));
    let text = invite_text("z9hG4bKinv2", Some(&a)).replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
    let out = feed(e, now, &text, udp_peer(5071));
    assert_eq!(statuses(&out), vec![Some(100)]);
    let Some(Output::LookupCredentials {
        lookup, username, ..
    }) = out
        .iter()
        .find(|o| matches!(o, Output::LookupCredentials { .. }))
        .cloned()
    else {
        panic!("credentials lookup expected: {out:?}")
    };
    assert_eq!(username, "alice");
    e.handle_input(Input::CredentialsFound {
        now,
        lookup,
        credentials: Some(credentials("alice", "correct horse")),
    });
    let out = drain(e);
    let Some(Output::ResolveUser {
        lookup,
        extension,
        tenant_id,
    }) = out
        .iter()
        .find(|o| matches!(o, Output::ResolveUser { .. }))
        .cloned()
    else {
        panic!("user lookup expected: {out:?}")
    };
    assert_eq!((extension.as_str(), tenant_id), ("200", 1));
    let user = bob_registered.then(|| bob(None, Default::default()));
    e.handle_input(Input::UserResolved { now, lookup, user });
    drain(e)
}

/// The To tag of a message (ours, on a response to alice).
fn to_tag(m: &Message) -> String {
    m.to()
        .ok()
        .and_then(|t| t.tag().map(|t| String::from_utf8_lossy(t).into_owned()))
        .expect("a To tag")
}

/// The From tag of a message (ours, on a request we sent).
fn from_tag(m: &Message) -> String {
    m.from()
        .ok()
        .and_then(|f| f.tag().map(|t| String::from_utf8_lossy(t).into_owned()))
        .expect("a From tag")
}

/// Alice's ACK (CSeq 2) for our 2xx whose To tag is `tag`, with `sdp` as its body.
fn alice_ack(tag: &str, branch: &str, sdp: Option<&str>) -> String {
    let body = sdp.unwrap_or("");
    let content_type = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "ACK sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@{REALM}>;tag=a1\r\nTo: <sip:200@{REALM}>;tag={tag}\r\n\
Call-ID: call-a\r\nCSeq: 2 ACK\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn sent_to(out: &[Output], port: u16) -> Vec<Message> {
    responses(out)
        .into_iter()
        .filter(|(_, p)| p.remote.port() == port)
        .map(|(m, _)| m)
        .collect()
}

fn reply(req: &Message, code: u16, reason: &'static str, tag: &str, body: Option<&str>) -> String {
    let mut r = Message::response_to(req, code, reason, Some(tag));
    if code < 300 && code > 100 {
        r.push(HeaderName::Contact, "<sip:bob@127.0.0.1:5072>");
    }
    if let Some(b) = body {
        r.push(HeaderName::ContentType, "application/sdp");
        r.body = Bytes::copy_from_slice(b.as_bytes());
    }
    String::from_utf8(r.encode().to_vec()).expect("utf8")
}

fn bob_peer() -> Peer {
    udp_peer(5072)
}

#[test]
fn internal_call_answered_and_hung_up_by_the_caller() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    let to_bob = sent_to(&out, 5072);
    assert_eq!(to_bob.len(), 1, "{out:?}");
    let invite = &to_bob[0];
    assert_eq!(invite.method(), Some(Method::Invite));
    assert_eq!(
        invite
            .request_uri()
            .map(|u| u.to_text().into_owned())
            .as_deref(),
        Some("sip:bob@127.0.0.1:5072")
    );
    assert_ne!(
        invite.call_id(),
        Some(&Bytes::from_static(b"call-a")),
        "a B2BUA leg has its own Call-ID"
    );
    assert_eq!(&invite.body[..], SDP.as_bytes());
    assert!(header(invite, HeaderName::From).contains("Alice"));
    // Bob rings: alice sees 180 with our tag.
    let out = feed(
        &mut e,
        now,
        &reply(invite, 180, "Ringing", "b1", None),
        bob_peer(),
    );
    let to_alice = sent_to(&out, 5071);
    assert_eq!(to_alice.len(), 1);
    assert_eq!(to_alice[0].status(), Some(180));
    let alice_tag = to_tag(&to_alice[0]);
    // Bob answers with SDP: we ACK bob and send 200 (with bob's SDP) to alice.
    let t = now.advanced(Duration::from_secs(3));
    let out = feed(
        &mut e,
        t,
        &reply(invite, 200, "OK", "b1", Some(SDP)),
        bob_peer(),
    );
    let acks: Vec<_> = sent_to(&out, 5072)
        .into_iter()
        .filter(|m| m.method() == Some(Method::Ack))
        .collect();
    assert_eq!(acks.len(), 1);
    let ok = sent_to(&out, 5071);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].status(), Some(200));
    assert_eq!(&ok[0].body[..], SDP.as_bytes());
    // Without alice's ACK the 200 is retransmitted (T1 = 500 ms).
    e.handle_input(Input::Timeout(t.advanced(Duration::from_millis(500))));
    assert_eq!(sent_to(&drain(&mut e), 5071).len(), 1);
    let ack = alice_ack(&alice_tag, "z9hG4bKack", None);
    assert!(feed(&mut e, t, &ack, udp_peer(5071)).is_empty());
    e.handle_input(Input::Timeout(t.advanced(Duration::from_secs(2))));
    assert!(
        sent_to(&drain(&mut e), 5071).is_empty(),
        "no retransmission after the ACK"
    );
    // Alice hangs up: 200 to alice, BYE to bob; bob's 200 ends it.
    let t2 = t.advanced(Duration::from_secs(60));
    let bye = ack
        .replace("ACK sip", "BYE sip")
        .replace("CSeq: 2 ACK", "CSeq: 3 BYE")
        .replace("z9hG4bKack", "z9hG4bKbye");
    let out = feed(&mut e, t2, &bye, udp_peer(5071));
    assert_eq!(sent_to(&out, 5071)[0].status(), Some(200));
    let bob_bye = sent_to(&out, 5072);
    assert_eq!(bob_bye.len(), 1);
    assert_eq!(bob_bye[0].method(), Some(Method::Bye));
    assert_eq!(
        bob_bye[0]
            .request_uri()
            .map(|u| u.to_text().into_owned())
            .as_deref(),
        Some("sip:bob@127.0.0.1:5072")
    );
    let ended: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::CallEnded(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    let f = &ended[0];
    assert_eq!(f.call.outcome, Some(crate::call::model::Outcome::Answered));
    assert_eq!(f.call.talk_ms(), 60_000);
    assert_eq!(f.caller_user, Some(1));
    assert_eq!(f.callee_user, Some(2));
    assert_eq!(f.sip_call_ids.len(), 2);
    feed(
        &mut e,
        t2,
        &reply(&bob_bye[0], 200, "OK", "x", None),
        bob_peer(),
    );
    // Once every transaction is over, the call is forgotten.
    e.handle_input(Input::Timeout(t2.advanced(Duration::from_secs(40))));
    drain(&mut e);
    assert_eq!(e.call_count(), 0);
}

#[test]
fn caller_cancels_while_ringing() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    let invite = sent_to(&out, 5072).remove(0);
    feed(
        &mut e,
        now,
        &reply(&invite, 180, "Ringing", "b1", None),
        bob_peer(),
    );
    let cancel = invite_text("z9hG4bKinv2", None)
        .replace("INVITE sip:200", "CANCEL sip:200")
        .replace("CSeq: 1 INVITE", "CSeq: 2 CANCEL");
    let out = feed(&mut e, now, &cancel, udp_peer(5071));
    let codes: Vec<_> = sent_to(&out, 5071).iter().map(|m| m.status()).collect();
    assert_eq!(codes, vec![Some(200), Some(487)]);
    let to_bob = sent_to(&out, 5072);
    assert_eq!(to_bob.len(), 1);
    assert_eq!(to_bob[0].method(), Some(Method::Cancel));
    assert_eq!(
        to_bob[0].top_via().expect("via").branch(),
        invite.top_via().expect("via").branch(),
        "CANCEL shares the INVITE's branch"
    );
    let ended = out.iter().find_map(|o| match o {
        Output::CallEnded(f) => Some(f.call.outcome),
        _ => None,
    });
    // The caller gave up while it rang: a missed call.
    assert_eq!(ended, Some(Some(crate::call::model::Outcome::Missed)));
    // Bob answers the CANCEL and the INVITE (487); the 487 is ACKed.
    feed(
        &mut e,
        now,
        &reply(&to_bob[0], 200, "OK", "b1", None),
        bob_peer(),
    );
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 487, "Request Terminated", "b1", None),
        bob_peer(),
    );
    let acks = sent_to(&out, 5072);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].method(), Some(Method::Ack));
}

#[test]
fn busy_callee_and_unreachable_callee() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    let invite = sent_to(&out, 5072).remove(0);
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 486, "Busy Here", "b1", None),
        bob_peer(),
    );
    assert_eq!(
        sent_to(&out, 5071)
            .iter()
            .map(|m| m.status())
            .collect::<Vec<_>>(),
        vec![Some(486)]
    );
    assert!(out.iter().any(|o| matches!(o, Output::CallEnded(f) if f.call.outcome == Some(crate::call::model::Outcome::Busy))));
    // No registration: 480 at once.
    let mut e = engine();
    let out = alice_calls_bob(&mut e, now, true);
    assert_eq!(
        sent_to(&out, 5071)
            .iter()
            .map(|m| m.status())
            .collect::<Vec<_>>(),
        vec![Some(480)]
    );
    // Unknown extension: 404.
    let mut e = engine();
    let out = alice_calls_bob(&mut e, now, false);
    assert_eq!(
        sent_to(&out, 5071)
            .iter()
            .map(|m| m.status())
            .collect::<Vec<_>>(),
        vec![Some(404)]
    );
}

#[test]
fn no_answer_times_out_with_480_and_cancels_the_branch() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    let invite = sent_to(&out, 5072).remove(0);
    feed(
        &mut e,
        now,
        &reply(&invite, 180, "Ringing", "b1", None),
        bob_peer(),
    );
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(31))));
    let out = drain(&mut e);
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Cancel)));
    assert!(sent_to(&out, 5071).iter().any(|m| m.status() == Some(480)));
    assert!(out.iter().any(|o| matches!(o, Output::CallEnded(f) if f.call.outcome == Some(crate::call::model::Outcome::Missed))));
}

/// Sets up an answered call alice -> bob; returns the INVITE bob got and alice's To tag.
fn established(e: &mut Engine, now: Now) -> (Message, String) {
    registered(e, now, "bob", 5072);
    let out = alice_calls_bob(e, now, true);
    let invite = sent_to(&out, 5072).remove(0);
    let out = feed(
        e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(SDP)),
        bob_peer(),
    );
    let ok = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200 to alice");
    let tag = to_tag(&ok);
    (invite, tag)
}

#[test]
fn mid_call_reinvite_from_the_callee_is_relayed_to_the_caller() {
    let mut e = engine();
    let now = base();
    let (invite, _alice_tag) = established(&mut e, now);
    // Bob puts the call on hold: a re-INVITE inside bob's dialog (From = bob's tag b1).
    let from_b = header(&invite, HeaderName::From);
    let our_tag = from_b.split("tag=").nth(1).expect("our tag").to_string();
    let call_id = header(&invite, HeaderName::CallId);
    let hold_sdp = SDP.replace("m=audio", "a=sendonly\r\nm=audio");
    let reinvite = format!(
        "INVITE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKre1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:5072>;tag=b1\r\nTo: <sip:200@{REALM}>;tag={our_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: 2 INVITE\r\nContact: <sip:bob@127.0.0.1:5072>\r\nContent-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{hold_sdp}",
        hold_sdp.len()
    );
    let out = feed(&mut e, now, &reinvite, bob_peer());
    let to_alice = sent_to(&out, 5071);
    let re = to_alice
        .iter()
        .find(|m| m.method() == Some(Method::Invite))
        .expect("re-INVITE relayed to alice");
    assert_eq!(
        header(re, HeaderName::CallId),
        "call-a",
        "sent inside alice's dialog"
    );
    assert!(header(re, HeaderName::To).contains("tag=a1"));
    assert_eq!(&re.body[..], hold_sdp.as_bytes());
    assert_eq!(
        re.request_uri()
            .map(|u| u.to_text().into_owned())
            .as_deref(),
        Some("sip:alice@127.0.0.1:5071")
    );
    // Alice accepts: bob gets the 200 (with alice's SDP), alice gets our ACK.
    let alice_ok = reply(re, 200, "OK", "a1", Some(SDP))
        .replace("<sip:bob@127.0.0.1:5072>", "<sip:alice@127.0.0.1:5071>");
    let out = feed(&mut e, now, &alice_ok, udp_peer(5071));
    let to_bob = sent_to(&out, 5072);
    assert_eq!(
        to_bob.iter().map(|m| m.status()).collect::<Vec<_>>(),
        vec![Some(200)]
    );
    assert_eq!(to_bob[0].cseq().expect("cseq").seq, 2);
    let acks: Vec<_> = sent_to(&out, 5071)
        .into_iter()
        .filter(|m| m.method() == Some(Method::Ack))
        .collect();
    assert_eq!(acks.len(), 1);
    // An INFO from alice goes to bob and its 200 comes back.
    let info = format!(
        "INFO sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKinfo;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@{REALM}>;tag=a1\r\nTo: <sip:200@{REALM}>;tag={}\r\nCall-ID: call-a\r\n\
CSeq: 5 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal=5\r\n",
        _alice_tag
    );
    let out = feed(&mut e, now, &info, udp_peer(5071));
    let to_bob = sent_to(&out, 5072);
    assert_eq!(to_bob.len(), 1);
    assert_eq!(to_bob[0].method(), Some(Method::Info));
    assert_eq!(&to_bob[0].body[..], b"Signal=5\r\n");
    let out = feed(
        &mut e,
        now,
        &reply(&to_bob[0], 200, "OK", "b1", None),
        bob_peer(),
    );
    let back = sent_to(&out, 5071);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].status(), Some(200));
    assert_eq!(back[0].cseq().expect("cseq").seq, 5);
    // An older CSeq from alice is refused with 500 (RFC 3261 s12.2.2).
    let stale = info
        .replace("CSeq: 5 INFO", "CSeq: 4 INFO")
        .replace("z9hG4bKinfo", "z9hG4bKinfo2");
    let out = feed(&mut e, now, &stale, udp_peer(5071));
    assert_eq!(sent_to(&out, 5071)[0].status(), Some(500));
}

fn trunk_peer() -> Peer {
    Peer {
        proto: Proto::Udp,
        remote: "192.0.2.10:5060".parse().expect("addr"),
        local: "127.0.0.1:5080".parse().expect("addr"),
        conn: None,
        listener: 1,
    }
}

#[test]
fn inbound_trunk_call_rings_phone_and_mobile_and_the_phone_wins() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    // The carrier calls bob's number in national format.
    let invite = format!(
        "INVITE sip:21000002@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKtrunk1\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=c1\r\nTo: <sip:21000002@127.0.0.1>\r\n\
Call-ID: trunk-call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:+4790000001@192.0.2.10:5060>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let mut out = feed(&mut e, now, &invite, trunk_peer());
    let trying = responses(&out);
    assert_eq!(
        trying.iter().map(|(m, _)| m.status()).collect::<Vec<_>>(),
        vec![Some(100)]
    );
    let Some(Output::ResolveNumber { lookup, number }) = out
        .iter()
        .find(|o| matches!(o, Output::ResolveNumber { .. }))
        .cloned()
    else {
        panic!("number lookup expected")
    };
    out.clear();
    assert_eq!(
        number, "+4721000002",
        "normalised to E.164 with the trunk's country code"
    );
    let owner = NumberOwner {
        tenant_id: 1,
        user: Some(bob(Some("+4790000002"), Default::default())),
        queue: None,
        conference: None,
    };
    e.handle_input(Input::NumberResolved {
        now,
        lookup,
        owner: Some(owner),
    });
    let out = drain(&mut e);
    // The caller's name is looked up first, with a budget.
    let Some(Output::LookupCaller {
        lookup,
        number,
        tenant_id,
    }) = out
        .iter()
        .find(|o| matches!(o, Output::LookupCaller { .. }))
        .cloned()
    else {
        panic!("caller lookup expected: {out:?}")
    };
    assert_eq!((number.as_str(), tenant_id), ("+4790000001", 1));
    assert!(
        sent_to(&out, 5072).is_empty(),
        "nothing rings before the name is known or the budget ends"
    );
    e.handle_input(Input::CallerFound {
        now,
        lookup,
        name: Some("Ola \"Kaffe\" Nordmann".into()),
    });
    let out = drain(&mut e);
    let to_phone = sent_to(&out, 5072);
    assert_eq!(to_phone.len(), 1);
    assert!(
        header(&to_phone[0], HeaderName::From)
            .starts_with("\"Ola \\\"Kaffe\\\" Nordmann\" <sip:+4790000001@"),
        "{}",
        header(&to_phone[0], HeaderName::From)
    );
    assert!(
        header(&to_phone[0], HeaderName::Via).contains("127.0.0.1:5060"),
        "phones leave from the phones listener"
    );
    let to_mobile: Vec<_> = responses(&out)
        .into_iter()
        .filter(|(_, p)| p.remote == "192.0.2.1:5060".parse().expect("addr"))
        .collect();
    assert_eq!(to_mobile.len(), 1, "the mobile is rung through the carrier");
    assert!(to_mobile[0]
        .0
        .request_uri()
        .map(|u| u.to_text().contains("+4790000002"))
        .unwrap_or(false));
    assert_eq!(to_mobile[0].1.listener, 1, "from the trunk listener");
    // Both ring; the phone answers; the mobile branch is cancelled.
    let mobile_invite = to_mobile[0].0.clone();
    let mobile_peer = Peer {
        remote: "192.0.2.1:5060".parse().expect("addr"),
        ..trunk_peer()
    };
    feed(
        &mut e,
        now,
        &reply(&mobile_invite, 180, "Ringing", "m1", None),
        mobile_peer,
    );
    let out = feed(
        &mut e,
        now,
        &reply(&to_phone[0], 200, "OK", "p1", Some(SDP)),
        bob_peer(),
    );
    let cancels: Vec<_> = responses(&out)
        .into_iter()
        .filter(|(m, p)| p.remote == mobile_peer.remote && m.method() == Some(Method::Cancel))
        .collect();
    assert_eq!(cancels.len(), 1);
    let to_carrier: Vec<_> = responses(&out)
        .into_iter()
        .filter(|(m, p)| p.remote == trunk_peer().remote && m.status() == Some(200))
        .collect();
    assert_eq!(to_carrier.len(), 1, "the carrier gets the 200");
    // An unknown number gets 404.
    let mut e = engine();
    let out = feed(
        &mut e,
        now,
        &invite.replace("z9hG4bKtrunk1", "z9hG4bKtrunk2"),
        trunk_peer(),
    );
    let lookup = lookup_of(&out, "ResolveNumber");
    e.handle_input(Input::NumberResolved {
        now,
        lookup,
        owner: None,
    });
    let out = drain(&mut e);
    assert_eq!(statuses(&out), vec![Some(404)]);
}

#[test]
fn a_slow_caller_lookup_never_delays_the_call_past_its_budget() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let invite = String::from(
        "INVITE sip:+4721000002@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKslow\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=c1\r\nTo: <sip:+4721000002@127.0.0.1>\r\n\
Call-ID: trunk-slow\r\nCSeq: 1 INVITE\r\nContact: <sip:+4790000001@192.0.2.10:5060>\r\nContent-Length: 0\r\n\r\n"
    );
    let out = feed(&mut e, now, &invite, trunk_peer());
    let lookup = lookup_of(&out, "ResolveNumber");
    let owner = NumberOwner {
        tenant_id: 1,
        user: Some(bob(None, Default::default())),
        queue: None,
        conference: None,
    };
    e.handle_input(Input::NumberResolved {
        now,
        lookup,
        owner: Some(owner),
    });
    let out = drain(&mut e);
    let lookup = lookup_of(&out, "LookupCaller");
    // No answer within the budget: the phone rings with the bare number.
    let deadline = e.poll_timeout().expect("deadline");
    assert!(deadline <= now.mono + Duration::from_millis(300));
    e.handle_input(Input::Timeout(now.advanced(Duration::from_millis(301))));
    let out = drain(&mut e);
    let to_phone = sent_to(&out, 5072);
    assert_eq!(to_phone.len(), 1);
    assert!(header(&to_phone[0], HeaderName::From).starts_with("<sip:+4790000001@"));
    // The late answer changes nothing.
    e.handle_input(Input::CallerFound {
        now,
        lookup,
        name: Some("Late".into()),
    });
    assert!(drain(&mut e).is_empty());
}

/// Alice dials `dialled`: returns the outputs after authentication (the lookup that follows).
fn alice_invites(e: &mut Engine, now: Now, dialled: &str, extra: &str) -> Vec<Output> {
    alice_invites_with(e, now, dialled, extra, SDP)
}

/// As [`alice_invites`] with `sdp` as the INVITE's body.
fn alice_invites_with(
    e: &mut Engine,
    now: Now,
    dialled: &str,
    extra: &str,
    sdp: &str,
) -> Vec<Output> {
    let with_extra = |t: String| t.replace("Contact:", &format!("{extra}Contact:"));
    let text = with_extra(
        invite_text_with("z9hG4bKout1", None, sdp).replace("sip:200@", &format!("sip:{dialled}@")),
    );
    let out = feed(e, now, &text, udp_peer(5071));
    let ch: Vec<String> = only_response(&out)
        .0
        .headers_named(&HeaderName::ProxyAuthenticate)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect();
    let a = alice_proxy_authorization(&ch[0], &format!("sip:{dialled}@{REALM}"));
    let text = with_extra(
        invite_text_with("z9hG4bKout2", Some(&a), sdp)
            .replace("sip:200@", &format!("sip:{dialled}@"))
            .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
    );
    let out = feed(e, now, &text, udp_peer(5071));
    let lookup = lookup_of(&out, "LookupCredentials");
    e.handle_input(Input::CredentialsFound {
        now,
        lookup,
        credentials: Some(credentials("alice", "correct horse")),
    });
    drain(e)
}

/// Alice dials `dialled`: the outputs after authentication (the lookup that follows).
fn alice_dials(e: &mut Engine, now: Now, dialled: &str) -> Vec<Output> {
    alice_invites(e, now, dialled, "")
}

#[test]
fn outbound_call_to_an_external_number_presents_the_users_number_or_hides_it() {
    let carrier: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
    for (dialled, hide) in [("90000009", false), ("%2331%2390000009", true)] {
        let mut e = engine();
        let now = base();
        let out = alice_dials(&mut e, now, dialled);
        let Some(Output::ResolveCallerNumbers {
            lookup,
            tenant_id,
            user_id,
        }) = out
            .iter()
            .find(|o| matches!(o, Output::ResolveCallerNumbers { .. }))
            .cloned()
        else {
            panic!("caller numbers lookup expected: {out:?}")
        };
        assert_eq!((tenant_id, user_id), (1, 1));
        let numbers = CallerNumbers {
            own: Some("+4790000001".into()),
            main: Some("+4721000000".into()),
            hide_by_default: false,
        };
        e.handle_input(Input::CallerNumbersResolved {
            now,
            lookup,
            numbers,
        });
        let out = drain(&mut e);
        let to_carrier: Vec<Message> = responses(&out)
            .into_iter()
            .filter(|(_, p)| p.remote == carrier)
            .map(|(m, _)| m)
            .collect();
        assert_eq!(to_carrier.len(), 1, "{out:?}");
        let inv = &to_carrier[0];
        assert!(inv
            .request_uri()
            .map(|u| u.to_text().starts_with("sip:+4790000009@"))
            .unwrap_or(false));
        let pai = inv
            .headers_raw("P-Asserted-Identity")
            .next()
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .unwrap_or_default();
        assert!(
            pai.contains("+4790000001"),
            "identity asserted to the trusted carrier: {pai}"
        );
        let from = header(inv, HeaderName::From);
        let privacy = inv
            .headers_raw("Privacy")
            .next()
            .map(|h| String::from_utf8_lossy(&h.value).into_owned());
        if hide {
            assert!(from.contains("anonymous.invalid"), "{from}");
            assert_eq!(privacy.as_deref(), Some("id"));
        } else {
            assert!(from.contains("+4790000001"), "{from}");
            assert_eq!(privacy, None);
        }
    }
}

#[test]
fn a_call_from_the_users_mobile_is_routed_as_the_users_own_call() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    // Alice's mobile calls extension 200 through the carrier, marked as originating.
    let invite = String::from(
        "INVITE sip:200@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKorig\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=m1\r\nTo: <sip:200@127.0.0.1>\r\n\
Call-ID: orig-1\r\nCSeq: 1 INVITE\r\nContact: <sip:+4790000001@192.0.2.10:5060>\r\n\
P-Served-User: <sip:+4790000001@192.0.2.10>;sescase=orig;regstate=reg\r\nContent-Length: 0\r\n\r\n",
    );
    let out = feed(&mut e, now, &invite, trunk_peer());
    let Some(Output::ResolveMobile { lookup, number }) = out
        .iter()
        .find(|o| matches!(o, Output::ResolveMobile { .. }))
        .cloned()
    else {
        panic!("mobile lookup expected: {out:?}")
    };
    assert_eq!(number, "+4790000001");
    e.handle_input(Input::MobileResolved {
        now,
        lookup,
        user: Some((1, 1)),
    });
    let out = drain(&mut e);
    let Some(Output::ResolveUser {
        lookup,
        tenant_id,
        extension,
    }) = out
        .iter()
        .find(|o| matches!(o, Output::ResolveUser { .. }))
        .cloned()
    else {
        panic!("extension lookup expected: {out:?}")
    };
    assert_eq!((tenant_id, extension.as_str()), (1, "200"));
    e.handle_input(Input::UserResolved {
        now,
        lookup,
        user: Some(bob(None, Default::default())),
    });
    let out = drain(&mut e);
    assert_eq!(sent_to(&out, 5072).len(), 1, "bob's phone rings");
    // A mobile that belongs to nobody: 403.
    let mut e = engine();
    let out = feed(
        &mut e,
        now,
        &invite.replace("z9hG4bKorig", "z9hG4bKorig2"),
        trunk_peer(),
    );
    let lookup = lookup_of(&out, "ResolveMobile");
    e.handle_input(Input::MobileResolved {
        now,
        lookup,
        user: None,
    });
    let out = drain(&mut e);
    assert_eq!(statuses(&out), vec![Some(403)]);
}

/// Bob as the store resolves him.
fn bob(mobile: Option<&str>, forwarding: crate::call::plan::Forwarding) -> ResolvedUser {
    ResolvedUser {
        user_id: 2,
        username: "bob".into(),
        realm: REALM.into(),
        mobile: mobile.map(str::to_string),
        forwarding,
    }
}

fn forwarding(
    always: Option<crate::call::plan::ForwardTarget>,
    busy: Option<crate::call::plan::ForwardTarget>,
    no_answer: Option<crate::call::plan::ForwardTarget>,
) -> crate::call::plan::Forwarding {
    crate::call::plan::Forwarding {
        always,
        busy,
        no_answer,
        no_answer_after: Duration::from_secs(20),
    }
}

/// Alice calls 200 (bob with `fwd`); returns what was sent after bob is resolved.
fn call_bob_with(e: &mut Engine, now: Now, fwd: crate::call::plan::Forwarding) -> Vec<Output> {
    let out = alice_dials(e, now, "200");
    resolve_bob(e, now, out, fwd)
}

/// Answers the extension lookup in `out` with bob and his forwarding rules.
fn resolve_bob(
    e: &mut Engine,
    now: Now,
    out: Vec<Output>,
    fwd: crate::call::plan::Forwarding,
) -> Vec<Output> {
    let lookup = lookup_of(&out, "ResolveUser");
    e.handle_input(Input::UserResolved {
        now,
        lookup,
        user: Some(bob(None, fwd)),
    });
    drain(e)
}

fn to_carrier(out: &[Output]) -> Vec<Message> {
    let carrier: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
    responses(out)
        .into_iter()
        .filter(|(_, p)| p.remote == carrier)
        .map(|(m, _)| m)
        .collect()
}

#[test]
fn busy_callee_forwards_to_a_number_with_history_info_and_diversion() {
    use crate::call::plan::ForwardTarget;
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = call_bob_with(
        &mut e,
        now,
        forwarding(
            None,
            Some(ForwardTarget::Number("+4790000099".into())),
            None,
        ),
    );
    let invite = sent_to(&out, 5072).remove(0);
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 486, "Busy Here", "b1", None),
        bob_peer(),
    );
    assert!(
        sent_to(&out, 5071).iter().all(|m| m.status() != Some(486)),
        "the caller is not told busy: the call is forwarded"
    );
    let fwd = to_carrier(&out);
    assert_eq!(fwd.len(), 1, "{out:?}");
    assert!(fwd[0]
        .request_uri()
        .map(|u| u.to_text().contains("+4790000099"))
        .unwrap_or(false));
    let hi = fwd[0]
        .headers_raw("History-Info")
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        hi.contains("cause=486") || hi.contains("486"),
        "History-Info names the busy cause: {hi}"
    );
    let div = fwd[0]
        .headers_raw("Diversion")
        .next()
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .unwrap_or_default();
    assert!(div.contains("reason=user-busy"), "{div}");
    // The forward target answers; the call ends later and is logged as forwarded on busy.
    let out = feed(
        &mut e,
        now,
        &reply(&fwd[0], 200, "OK", "x1", Some(SDP)),
        Peer {
            remote: "192.0.2.1:5060".parse().expect("addr"),
            ..trunk_peer()
        },
    );
    assert!(sent_to(&out, 5071).iter().any(|m| m.status() == Some(200)));
}

#[test]
fn no_answer_forwards_to_another_user_and_unconditional_skips_ringing() {
    use crate::call::plan::ForwardTarget;
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    registered(&mut e, now, "carol", 5073);
    let carol = ForwardTarget::User {
        user_id: 3,
        aor: format!("sip:carol@{REALM}"),
        mobile: None,
    };
    let out = call_bob_with(&mut e, now, forwarding(None, None, Some(carol.clone())));
    let invite = sent_to(&out, 5072).remove(0);
    feed(
        &mut e,
        now,
        &reply(&invite, 180, "Ringing", "b1", None),
        bob_peer(),
    );
    // Bob's 20 s ring time (not the default 30 s) ends: bob is cancelled, carol rings.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(21))));
    let out = drain(&mut e);
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Cancel)));
    let to_carol = sent_to(&out, 5073);
    assert_eq!(to_carol.len(), 1);
    assert!(to_carol[0].headers_raw("History-Info").next().is_some());
    assert!(
        sent_to(&out, 5071)
            .iter()
            .all(|m| m.status().unwrap_or(0) < 300 || m.status() == Some(407)),
        "no final to the caller yet (407s are the unacknowledged challenge): {:?}",
        sent_to(&out, 5071)
            .iter()
            .map(|m| (m.status(), m.method()))
            .collect::<Vec<_>>()
    );
    // Carol does not answer either: 480 to the caller after her ring time, no second forward.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(52))));
    let out = drain(&mut e);
    assert!(sent_to(&out, 5071).iter().any(|m| m.status() == Some(480)));
    let ended = out.iter().find_map(|o| match o {
        Output::CallEnded(f) => Some(f.forwarded),
        _ => None,
    });
    assert_eq!(
        ended,
        Some(Some(crate::sip::ext::diversion::ForwardReason::NoAnswer))
    );

    // Unconditional: bob's phone never rings, carol's does at once.
    let mut e = engine();
    registered(&mut e, now, "bob", 5072);
    registered(&mut e, now, "carol", 5073);
    let out = call_bob_with(&mut e, now, forwarding(Some(carol), None, None));
    assert!(sent_to(&out, 5072).is_empty());
    assert_eq!(sent_to(&out, 5073).len(), 1);
}

#[test]
fn a_call_that_already_carries_the_hop_limit_is_not_forwarded_again() {
    use crate::call::plan::ForwardTarget;
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    // Five earlier forwarding hops in a Diversion header.
    let hops = "Diversion: <sip:+4790000001@x>;reason=unconditional;counter=5\r\n";
    let out = alice_invites(&mut e, now, "200", hops);
    let fwd = forwarding(
        Some(ForwardTarget::Number("+4790000099".into())),
        None,
        None,
    );
    let out = resolve_bob(&mut e, now, out, fwd);
    assert!(
        to_carrier(&out).is_empty(),
        "no forward beyond the hop limit"
    );
    assert_eq!(sent_to(&out, 5072).len(), 1, "bob rings instead");
}

#[test]
fn the_trunk_is_pinged_and_marked_down_when_it_stops_answering() {
    let mut e = engine();
    let now = base();
    let carrier: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
    // Any input tells the engine the time; the first ping goes out at once.
    feed(
        &mut e,
        now,
        &options("z9hG4bKp0", 5070, true, ""),
        udp_peer(5070),
    );
    e.handle_input(Input::Timeout(now));
    let out = drain(&mut e);
    let pings: Vec<Message> = responses(&out)
        .into_iter()
        .filter(|(_, p)| p.remote == carrier)
        .map(|(m, _)| m)
        .collect();
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0].method(), Some(Method::Options));
    assert!(e.trunk_up());
    // No answer: Timer F (64*T1) ends the transaction and the trunk is down.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(33))));
    drain(&mut e);
    assert!(!e.trunk_up());
    // A call to an external number now gets 503 at once.
    let out = alice_dials(&mut e, now.advanced(Duration::from_secs(34)), "90000009");
    let lookup = lookup_of(&out, "ResolveCallerNumbers");
    let numbers = CallerNumbers {
        own: Some("+4790000001".into()),
        main: None,
        hide_by_default: false,
    };
    e.handle_input(Input::CallerNumbersResolved {
        now: now.advanced(Duration::from_secs(34)),
        lookup,
        numbers,
    });
    let out = drain(&mut e);
    let finals: Vec<_> = sent_to(&out, 5071)
        .iter()
        .filter_map(|m| m.status())
        .filter(|c| *c >= 300 && *c != 407)
        .collect();
    assert_eq!(finals, vec![503], "{out:?}");
    // The next ping is answered: up again.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(61))));
    let out = drain(&mut e);
    let ping = responses(&out)
        .into_iter()
        .find(|(m, p)| p.remote == carrier && m.method() == Some(Method::Options))
        .expect("second ping")
        .0;
    let ok = String::from_utf8(
        Message::response_to(&ping, 200, "OK", Some("c"))
            .encode()
            .to_vec(),
    )
    .expect("utf8");
    feed(
        &mut e,
        now.advanced(Duration::from_secs(61)),
        &ok,
        Peer {
            remote: carrier,
            ..trunk_peer()
        },
    );
    assert!(e.trunk_up());
}

#[test]
fn reliable_provisionals_from_the_carrier_are_pracked_once() {
    let mut e = engine();
    let now = base();
    let carrier: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
    let carrier_peer = Peer {
        remote: carrier,
        ..trunk_peer()
    };
    let out = alice_dials(&mut e, now, "90000009");
    let lookup = lookup_of(&out, "ResolveCallerNumbers");
    let numbers = CallerNumbers {
        own: Some("+4790000001".into()),
        main: None,
        hide_by_default: false,
    };
    e.handle_input(Input::CallerNumbersResolved {
        now,
        lookup,
        numbers,
    });
    let out = drain(&mut e);
    let invite = to_carrier(&out).remove(0);
    assert!(invite
        .option_tags(&HeaderName::Supported)
        .iter()
        .any(|t| &t[..] == b"100rel"));
    // 183 with Require: 100rel and RSeq: 1 -> one PRACK with RAck: 1 1 INVITE.
    let mut p183 = Message::response_to(&invite, 183, "Session Progress", Some("c9"));
    p183.push(HeaderName::Contact, "<sip:+4790000009@192.0.2.1:5060>");
    p183.push(HeaderName::Require, "100rel");
    p183.headers
        .push(crate::sip::message::Header::other("RSeq", "1"));
    let p183 = String::from_utf8(p183.encode().to_vec()).expect("utf8");
    let out = feed(&mut e, now, &p183, carrier_peer);
    let pracks: Vec<Message> = to_carrier(&out)
        .into_iter()
        .filter(|m| m.method() == Some(Method::Prack))
        .collect();
    assert_eq!(pracks.len(), 1);
    let rack = pracks[0]
        .headers_raw("RAck")
        .next()
        .map(|h| String::from_utf8_lossy(&h.value).into_owned());
    assert_eq!(rack.as_deref(), Some("1 1 INVITE"));
    assert_eq!(pracks[0].cseq().expect("cseq").seq, 2);
    assert!(
        pracks[0]
            .request_uri()
            .map(|u| u.to_text().contains("192.0.2.1"))
            .unwrap_or(false),
        "sent to the 183's Contact"
    );
    assert!(
        sent_to(&out, 5071).iter().any(|m| m.status() == Some(183)),
        "the caller hears the progress"
    );
    // A retransmission of the same reliable 183 is neither PRACKed nor relayed again.
    let out = feed(&mut e, now, &p183, carrier_peer);
    assert!(to_carrier(&out)
        .iter()
        .all(|m| m.method() != Some(Method::Prack)));
    assert!(sent_to(&out, 5071).is_empty());
}

#[test]
fn shutdown_hangs_up_calls_still_up_and_logs_them() {
    let mut e = engine();
    let now = base();
    let _ = established(&mut e, now);
    assert_eq!(e.active_calls(), 1);
    assert!(
        !e.is_idle(),
        "an answered call keeps a draining switch busy"
    );
    e.handle_input(Input::HangUpAll(now.advanced(Duration::from_secs(5))));
    let out = drain(&mut e);
    assert!(sent_to(&out, 5071)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(out.iter().any(|o| matches!(o, Output::CallEnded(f) if f.call.end_reason.as_deref() == Some("switch shut down"))));
    assert_eq!(e.active_calls(), 0);
}

/// The lookup id of the one output of kind `kind` (`ResolveUser`, `LookupCredentials`, ...).
fn lookup_of(out: &[Output], kind: &str) -> u64 {
    let found: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::LookupCredentials { lookup, .. } if kind == "LookupCredentials" => {
                Some(*lookup)
            }
            Output::ResolveUser { lookup, .. } if kind == "ResolveUser" => Some(*lookup),
            Output::ResolveNumber { lookup, .. } if kind == "ResolveNumber" => Some(*lookup),
            Output::ResolveMobile { lookup, .. } if kind == "ResolveMobile" => Some(*lookup),
            Output::ResolveCallerNumbers { lookup, .. } if kind == "ResolveCallerNumbers" => {
                Some(*lookup)
            }
            Output::LookupCaller { lookup, .. } if kind == "LookupCaller" => Some(*lookup),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} in {out:?}");
    found[0]
}

/// The status codes of every response in `out`, in order.
fn statuses(out: &[Output]) -> Vec<Option<u16>> {
    responses(out).iter().map(|(m, _)| m.status()).collect()
}

#[test]
fn a_caller_who_withholds_the_number_rings_the_phone_as_anonymous() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let invite = String::from(
        "INVITE sip:+4721000002@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKpriv\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=c1\r\nTo: <sip:+4721000002@127.0.0.1>\r\n\
Call-ID: trunk-priv\r\nCSeq: 1 INVITE\r\nContact: <sip:+4790000001@192.0.2.10:5060>\r\nPrivacy: id\r\n\
P-Asserted-Identity: <sip:+4790000001@192.0.2.10>\r\nContent-Length: 0\r\n\r\n",
    );
    let out = feed(&mut e, now, &invite, trunk_peer());
    let lookup = lookup_of(&out, "ResolveNumber");
    let owner = NumberOwner {
        tenant_id: 1,
        user: Some(bob(None, Default::default())),
        queue: None,
        conference: None,
    };
    e.handle_input(Input::NumberResolved {
        now,
        lookup,
        owner: Some(owner),
    });
    let out = drain(&mut e);
    // No caller-name lookup for a withheld number, and the phone sees "Anonymous".
    assert!(!out.iter().any(|o| matches!(o, Output::LookupCaller { .. })));
    let to_phone = sent_to(&out, 5072);
    assert_eq!(to_phone.len(), 1);
    let from = header(&to_phone[0], HeaderName::From);
    assert!(
        from.contains("anonymous.invalid") && !from.contains("+4790000001"),
        "{from}"
    );
}

#[test]
fn session_timers_end_an_unrefreshed_call_and_refuse_tiny_intervals() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    // Too small an interval: 422 with Min-SE (RFC 4028 s6).
    let tiny =
        invite_text("z9hG4bKse0", None).replace("Contact:", "Session-Expires: 30\r\nContact:");
    let out = feed(&mut e, now, &tiny, udp_peer(5071));
    let (resp, _) = only_response(&out);
    assert_eq!(resp.status(), Some(422));
    assert_eq!(header(&resp, HeaderName::MinSe), "90");
    // Bob answers with Session-Expires: 120: the caller's 200 carries it.
    let out = alice_calls_bob(&mut e, now, true);
    let invite = sent_to(&out, 5072).remove(0);
    assert!(header(&invite, HeaderName::Supported).contains("timer"));
    let mut ok = Message::response_to(&invite, 200, "OK", Some("b1"));
    ok.push(HeaderName::Contact, "<sip:bob@127.0.0.1:5072>");
    ok.push(HeaderName::SessionExpires, "120;refresher=uac");
    ok.push(HeaderName::ContentType, "application/sdp");
    ok.body = Bytes::copy_from_slice(SDP.as_bytes());
    let out = feed(
        &mut e,
        now,
        std::str::from_utf8(&ok.encode()).expect("utf8"),
        bob_peer(),
    );
    let to_alice = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200");
    assert!(header(&to_alice, HeaderName::SessionExpires).starts_with("120"));
    let tag = to_tag(&to_alice);
    let ack = alice_ack(&tag, "z9hG4bKseack", None);
    feed(&mut e, now, &ack, udp_peer(5071));
    // Still up at 100 s.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(100))));
    assert!(!drain(&mut e)
        .iter()
        .any(|o| matches!(o, Output::CallEnded(_))));
    // Nobody refreshes: after 120 s both legs get BYE and the call is logged as such.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(121))));
    let out = drain(&mut e);
    assert!(sent_to(&out, 5071)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(out.iter().any(|o| matches!(o, Output::CallEnded(f) if f.call.end_reason.as_deref() == Some("session timer expired"))));
}

/// The Proxy-Authorization alice's phone sends for `challenge` on an INVITE to `uri`
/// (SHA-256, qop=auth, first nonce count).
fn alice_proxy_authorization(challenge: &str, uri: &str) -> String {
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("nonce");
    let ha1 = auth::ha1(Algorithm::Sha256, "alice", REALM, "correct horse");
    let qop = QopAuth {
        nc: "00000001",
        cnonce: "cn",
    };
    let r = auth::response(Algorithm::Sha256, &ha1, nonce, Some(qop), "INVITE", uri);
    format!(
        "Digest username=\"alice\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", \
algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"cn\""
    )
}

/// A PRACK from alice for `rseq` of our provisional with To tag `tag`.
fn alice_prack(tag: &str, rseq: u32, invite_cseq: u32, branch: &str) -> String {
    format!(
        "PRACK sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@{REALM}>;tag=a1\r\nTo: <sip:200@{REALM}>;tag={tag}\r\n\
Call-ID: call-a\r\nCSeq: {} PRACK\r\nRAck: {rseq} {invite_cseq} INVITE\r\nContent-Length: 0\r\n\r\n",
        invite_cseq + 1
    )
}

#[test]
fn a_caller_requiring_100rel_gets_reliable_provisionals_and_the_answer_after_its_prack() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_invites(&mut e, now, "200", "Require: 100rel\r\n");
    let out = resolve_bob(&mut e, now, out, forwarding(None, None, None));
    let invite = sent_to(&out, 5072).remove(0);
    // Bob's 183 with SDP reaches alice reliably: Require: 100rel and an RSeq.
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 183, "Session Progress", "b1", Some(SDP)),
        bob_peer(),
    );
    let p183 = sent_to(&out, 5071).remove(0);
    assert_eq!(p183.status(), Some(183));
    assert!(crate::sip::ext::rseq::requires_100rel(&p183));
    let rseq = crate::sip::ext::rseq::rseq(&p183)
        .expect("valid")
        .expect("RSeq");
    let tag = to_tag(&p183);
    // Bob's 180 waits behind the unacknowledged 183; a 183 unacknowledged for T1 is
    // sent again.
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 180, "Ringing", "b1", None),
        bob_peer(),
    );
    assert!(
        sent_to(&out, 5071).is_empty(),
        "one reliable provisional at a time"
    );
    e.handle_input(Input::Timeout(now.advanced(Duration::from_millis(500))));
    // (alice_invites never ACKs its 407, so that is retransmitted too.)
    let again: Vec<Message> = sent_to(&drain(&mut e), 5071)
        .into_iter()
        .filter(|m| m.status() != Some(407))
        .collect();
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(
        crate::sip::ext::rseq::rseq(&again[0]).ok().flatten(),
        Some(rseq)
    );
    // Bob answers: our 2xx waits for alice's PRACK of the SDP-carrying 183.
    let t = now.advanced(Duration::from_secs(1));
    let out = feed(
        &mut e,
        t,
        &reply(&invite, 200, "OK", "b1", Some(SDP)),
        bob_peer(),
    );
    assert!(sent_to(&out, 5071).is_empty(), "no 200 before the PRACK");
    // A PRACK naming another RSeq: 481, nothing else.
    let out = feed(
        &mut e,
        t,
        &alice_prack(&tag, rseq + 7, 2, "z9hG4bKpr0"),
        udp_peer(5071),
    );
    assert_eq!(statuses(&out), vec![Some(481)]);
    // The right PRACK: 200 for it, then our 200 for the INVITE (the queued 180 is
    // superseded by the answer).
    let out = feed(
        &mut e,
        t,
        &alice_prack(&tag, rseq, 2, "z9hG4bKpr1"),
        udp_peer(5071),
    );
    let to_alice = sent_to(&out, 5071);
    let got: Vec<(Option<u16>, String)> = to_alice
        .iter()
        .map(|m| (m.status(), header(m, HeaderName::CSeq)))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(200), "3 PRACK".to_owned()),
            (Some(200), "2 INVITE".to_owned())
        ]
    );
    // The retransmission timer of the acknowledged 183 is stale: nothing more is sent
    // but the 2xx retransmission.
    e.handle_input(Input::Timeout(t.advanced(Duration::from_millis(500))));
    let later = sent_to(&drain(&mut e), 5071);
    assert!(
        later.iter().all(|m| matches!(m.status(), Some(200 | 407))),
        "{later:?}"
    );
}

#[test]
fn a_caller_that_never_pracks_is_refused_after_64_t1_and_the_branch_cancelled() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_invites(&mut e, now, "200", "Supported: 100rel\r\n");
    // Bob's ring time is longer than 64*T1, so the missing PRACK decides.
    let mut fwd = forwarding(None, None, None);
    fwd.no_answer_after = Duration::from_secs(60);
    let out = resolve_bob(&mut e, now, out, fwd);
    let invite = sent_to(&out, 5072).remove(0);
    // A plain 180 goes unreliably to a caller that only supports 100rel.
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 180, "Ringing", "b1", None),
        bob_peer(),
    );
    let r180 = sent_to(&out, 5071).remove(0);
    assert_eq!(crate::sip::ext::rseq::rseq(&r180).ok().flatten(), None);
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 183, "Session Progress", "b1", Some(SDP)),
        bob_peer(),
    );
    assert!(crate::sip::ext::rseq::requires_100rel(
        &sent_to(&out, 5071)[0]
    ));
    // Retransmitted at 0.5, 1.5, 3.5, ... seconds; at 32 s (64*T1) the call is refused.
    let mut retransmits = 0;
    let mut refused = Vec::new();
    for ms in (100..=32_100).step_by(100) {
        e.handle_input(Input::Timeout(now.advanced(Duration::from_millis(ms))));
        let out = drain(&mut e);
        for m in sent_to(&out, 5071) {
            match m.status() {
                Some(183) => retransmits += 1,
                Some(407) => {}
                Some(s) => refused.push(s),
                None => {}
            }
        }
        if !refused.is_empty() {
            assert!(
                sent_to(&out, 5072)
                    .iter()
                    .any(|m| m.method() == Some(Method::Cancel)),
                "bob's branch is cancelled"
            );
            break;
        }
    }
    assert_eq!(refused, vec![504]);
    assert_eq!(
        retransmits, 6,
        "0.5+1+2+4+8+16 s: six retransmissions before 32 s"
    );
}

#[test]
fn a_callers_session_timer_is_honoured_when_the_callee_has_none() {
    let mut e = engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_invites(
        &mut e,
        now,
        "200",
        "Supported: timer\r\nSession-Expires: 300\r\n",
    );
    let out = resolve_bob(&mut e, now, out, forwarding(None, None, None));
    let invite = sent_to(&out, 5072).remove(0);
    // Bob knows nothing of timers: his 200 has no Session-Expires.
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(SDP)),
        bob_peer(),
    );
    let ok = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200");
    assert_eq!(header(&ok, HeaderName::SessionExpires), "300;refresher=uac");
    assert!(header(&ok, HeaderName::Require).contains("timer"));
    let tag = to_tag(&ok);
    let ack = alice_ack(&tag, "z9hG4bKseack", None);
    feed(&mut e, now, &ack, udp_peer(5071));
    // Alice never refreshes: the call ends with BYE on both legs.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(301))));
    let out = drain(&mut e);
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(out.iter().any(
        |o| matches!(o, Output::CallEnded(f) if f.call.end_reason.as_deref() == Some("session timer expired"))
    ));
}

/// The media commands among outputs.
fn media_commands(out: &[Output]) -> Vec<crate::media::control::MediaCommand> {
    out.iter()
        .filter_map(|o| match o {
            Output::Media(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The leg updates among media commands: (leg, remote, codec, direction).
fn media_updates(
    out: &[Output],
) -> Vec<(
    crate::media::control::MediaLeg,
    Option<SocketAddr>,
    crate::media::codec::Codec,
    crate::media::sdp::Direction,
)> {
    media_commands(out)
        .into_iter()
        .filter_map(|c| match c {
            crate::media::control::MediaCommand::Update { leg, media, .. } => {
                Some((leg, media.remote_rtp, media.codec, media.direction))
            }
            _ => None,
        })
        .collect()
}

/// Bob's re-INVITE in the dialog of our `invite` to him, offering `bob_sdp(0, direction)`.
fn bob_reinvite(invite: &Message, cseq: u32, direction: &str, branch: &str) -> String {
    let sdp = bob_sdp(0, direction);
    let call_id = header(invite, HeaderName::CallId);
    let our_tag = from_tag(invite);
    format!(
        "INVITE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:bob@127.0.0.1:5072>;tag={our_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:bob@127.0.0.1:5072>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn sdp_of(m: &Message) -> crate::media::sdp::Sdp {
    crate::media::sdp::Sdp::parse(&m.body).expect("an SDP body")
}

/// Bob's SDP answer: his own RTP address 127.0.0.1:4000, codec `pt`.
fn bob_sdp(pt: u8, direction: &str) -> String {
    format!(
        "v=0\r\no=bob 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP {pt} 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

#[test]
fn an_anchored_call_offers_our_ports_on_each_leg_and_tells_the_media_plane() {
    use crate::media::codec::Codec;
    use crate::media::control::{MediaCommand, MediaLeg};
    use crate::media::sdp::Direction;
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    let opened = media_commands(&out);
    let Some(MediaCommand::Open { local_ip, .. }) = opened.first().cloned() else {
        panic!("the media session opens with the call: {opened:?}")
    };
    // The stand-in media plane in `drain` opened session 1 on these ports.
    let (caller, callee) = (
        crate::media::control::PortPair { rtp: 20_004 },
        crate::media::control::PortPair { rtp: 20_006 },
    );
    assert_eq!(
        local_ip,
        "127.0.0.1".parse::<std::net::IpAddr>().expect("ip")
    );
    assert_ne!(caller, callee);
    // Bob is offered our callee-side port, alice's PCMU and PCMA we can transcode to.
    let invite = sent_to(&out, 5072).remove(0);
    let offer = sdp_of(&invite);
    assert_eq!(offer.media[0].port, callee.rtp);
    assert_eq!(offer.connection.as_ref().map(|c| c.address), Some(local_ip));
    assert_eq!(
        offer.media[0].payload_types().collect::<Vec<u8>>(),
        vec![0, 8]
    );
    assert_ne!(offer.origin.username, "-", "our own o= line");
    // Bob answers PCMU from 127.0.0.1:4000; alice gets our answer with the caller-side
    // port, and both legs are set up.
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(&bob_sdp(0, "sendrecv"))),
        bob_peer(),
    );
    let ok = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200");
    let answer = sdp_of(&ok);
    assert_eq!(answer.media[0].port, caller.rtp);
    assert_eq!(
        answer.media[0].payload_types().collect::<Vec<u8>>(),
        vec![0]
    );
    let updates = media_updates(&out);
    assert_eq!(
        updates,
        vec![
            (
                MediaLeg::Callee,
                Some("127.0.0.1:4000".parse().expect("addr")),
                Codec::Pcmu,
                Direction::SendRecv
            ),
            (
                MediaLeg::Caller,
                Some("127.0.0.1:40000".parse().expect("addr")),
                Codec::Pcmu,
                Direction::SendRecv
            ),
        ]
    );
    // Alice hangs up: the session closes.
    let tag = to_tag(&ok);
    let bye = format!(
        "BYE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKbye;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@{REALM}>;tag=a1\r\nTo: <sip:200@{REALM}>;tag={tag}\r\n\
Call-ID: call-a\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = feed(&mut e, now, &bye, udp_peer(5071));
    assert!(media_commands(&out)
        .iter()
        .any(|c| matches!(c, MediaCommand::Close { .. })));
    // No statistics from the media plane: the call is logged without them after 2 s.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_millis(1900))));
    assert!(!drain(&mut e)
        .iter()
        .any(|o| matches!(o, Output::CallEnded(_))));
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(2))));
    let out = drain(&mut e);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::CallEnded(f) if f.media.is_none())));
}

#[test]
fn an_offerless_invite_is_completed_leg_by_leg() {
    use crate::media::codec::Codec;
    use crate::media::control::MediaLeg;
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    // Alice's INVITE carries no SDP.
    let strip = |t: String| {
        let head = t.split("\r\n\r\n").next().expect("head").to_owned();
        head.replace("Content-Type: application/sdp\r\n", "")
            .replace(
                &format!("Content-Length: {}", SDP.len()),
                "Content-Length: 0",
            )
            + "\r\n\r\n"
    };
    let out = feed(
        &mut e,
        now,
        &strip(invite_text("z9hG4bKol1", None)),
        udp_peer(5071),
    );
    let ch: Vec<String> = only_response(&out)
        .0
        .headers_named(&HeaderName::ProxyAuthenticate)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect();
    let a = alice_proxy_authorization(&ch[0], &format!("sip:200@{REALM}"));
    let text =
        strip(invite_text("z9hG4bKol2", Some(&a)).replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"));
    let out = feed(&mut e, now, &text, udp_peer(5071));
    let lookup = lookup_of(&out, "LookupCredentials");
    e.handle_input(Input::CredentialsFound {
        now,
        lookup,
        credentials: Some(credentials("alice", "correct horse")),
    });
    let out = drain(&mut e);
    let out = resolve_bob(&mut e, now, out, forwarding(None, None, None));
    // Bob gets our own offer: G.711 both ways and telephone-event.
    let invite = sent_to(&out, 5072).remove(0);
    let offer = sdp_of(&invite);
    let pts = offer.media[0].payload_types().collect::<Vec<u8>>();
    assert!(
        pts.contains(&0) && pts.contains(&8) && pts.contains(&101),
        "{pts:?}"
    );
    // Bob picks PCMA; alice's 200 carries our offer with PCMA first.
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(&bob_sdp(8, "sendrecv"))),
        bob_peer(),
    );
    assert_eq!(
        media_updates(&out)
            .iter()
            .map(|u| (u.0, u.2))
            .collect::<Vec<_>>(),
        vec![(MediaLeg::Callee, Codec::Pcma)]
    );
    let ok = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200");
    assert_eq!(
        sdp_of(&ok).media[0].payload_types().collect::<Vec<u8>>()[0],
        8
    );
    // Alice's ACK carries her answer (PCMA at 40002): the caller leg is set up.
    let tag = to_tag(&ok);
    let answer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 8\r\n";
    let ack = alice_ack(&tag, "z9hG4bKolack", Some(answer));
    let out = feed(&mut e, now, &ack, udp_peer(5071));
    assert_eq!(
        media_updates(&out),
        vec![(
            MediaLeg::Caller,
            Some("127.0.0.1:40002".parse().expect("addr")),
            Codec::Pcma,
            crate::media::sdp::Direction::SendRecv
        )]
    );
}

#[test]
fn a_hold_reinvite_is_translated_to_the_other_leg_with_our_ports() {
    use crate::media::control::{MediaCommand, MediaLeg};
    use crate::media::sdp::Direction;
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    assert!(matches!(
        media_commands(&out).first(),
        Some(MediaCommand::Open { .. })
    ));
    let caller = crate::media::control::PortPair { rtp: 20_004 };
    let invite = sent_to(&out, 5072).remove(0);
    let _ = feed(
        &mut e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(&bob_sdp(0, "sendrecv"))),
        bob_peer(),
    );
    // Bob puts alice on hold (sendonly).
    let reinvite = bob_reinvite(&invite, 10, "sendonly", "z9hG4bKhold");
    let out = feed(&mut e, now, &reinvite, bob_peer());
    let to_alice = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.method() == Some(Method::Invite))
        .expect("re-INVITE to alice");
    let offer = sdp_of(&to_alice);
    assert_eq!(
        offer.media[0].port, caller.rtp,
        "alice sees our port, not bob's"
    );
    assert_eq!(offer.media_direction(&offer.media[0]), Direction::SendOnly);
    // Alice answers recvonly; bob gets our answer (recvonly) and both legs are updated.
    let alice_answer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=recvonly\r\n";
    let out = feed(
        &mut e,
        now,
        &reply(&to_alice, 200, "OK", "a1x", Some(alice_answer)).replace("5072", "5071"),
        udp_peer(5071),
    );
    let ok = sent_to(&out, 5072)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200 to bob");
    let answer = sdp_of(&ok);
    assert_eq!(
        answer.media_direction(&answer.media[0]),
        Direction::RecvOnly
    );
    let legs: Vec<(MediaLeg, Direction)> = media_updates(&out)
        .into_iter()
        .map(|u| (u.0, u.3))
        .collect();
    assert_eq!(
        legs,
        vec![
            (MediaLeg::Caller, Direction::RecvOnly),
            (MediaLeg::Callee, Direction::SendOnly)
        ]
    );
}

#[test]
fn media_timeout_hangs_up_and_an_unusable_offer_gets_488() {
    use crate::media::control::{MediaCommand, MediaEvent};
    let mut e = anchoring_engine();
    let now = base();
    let (_, _) = established(&mut e, now);
    e.handle_input(Input::Media {
        now,
        event: MediaEvent::Timeout {
            session: crate::media::control::MediaSessionId(1),
        },
    });
    let out = drain(&mut e);
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(sent_to(&out, 5071)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(media_commands(&out)
        .iter()
        .any(|c| matches!(c, MediaCommand::Close { .. })));
    // The call is logged once the media plane reports the closed session's statistics.
    assert!(!out.iter().any(|o| matches!(o, Output::CallEnded(_))));
    let stats = crate::media::control::LegStats {
        packets_received: 500,
        packets_sent: 498,
        packets_lost: 2,
        jitter_ms: 1.5,
        bytes_received: 80_000,
        codec: Some(crate::media::codec::Codec::Pcmu),
    };
    e.handle_input(Input::Media {
        now,
        event: MediaEvent::Closed {
            session: crate::media::control::MediaSessionId(1),
            caller: stats,
            callee: stats,
        },
    });
    let out = drain(&mut e);
    let ended: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::CallEnded(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].call.end_reason.as_deref(), Some("media timeout"));
    assert_eq!(ended[0].media, Some((stats, stats)));

    // An offer with only SRTP cannot be anchored: 488 and no media session.
    let mut e = anchoring_engine();
    registered(&mut e, now, "bob", 5072);
    let srtp = SDP.replace("RTP/AVP 0", "RTP/SAVP 0");
    let out = alice_invites_with(&mut e, now, "200", "", &srtp);
    let out = resolve_bob(&mut e, now, out, forwarding(None, None, None));
    let refused = sent_to(&out, 5071);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].status(), Some(488));
    assert!(sent_to(&out, 5072).is_empty(), "bob's phone does not ring");
    assert!(
        media_commands(&out).is_empty(),
        "no media session is opened"
    );
}

#[test]
fn at_the_end_of_the_drain_anchored_calls_are_logged_without_waiting_for_media() {
    let mut e = anchoring_engine();
    let now = base();
    let _ = established(&mut e, now);
    e.handle_input(Input::HangUpAll(now));
    let out = drain(&mut e);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::CallEnded(f) if f.media.is_none())));
    assert!(media_commands(&out)
        .iter()
        .any(|c| matches!(c, crate::media::control::MediaCommand::Close { .. })));
    assert!(e.is_idle());
}

/// An anchoring engine with music on hold and an answered call from alice to bob;
/// returns it with the INVITE bob got.
fn anchored_call_with_music_on_hold(now: Now) -> (Engine, Message) {
    let mut cfg = config(true);
    cfg.media = Some(super::media::MediaConfig {
        address: None,
        moh_on_hold: true,
    });
    let mut e = Engine::new(cfg);
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    let invite = sent_to(&out, 5072).remove(0);
    let _ = feed(
        &mut e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(&bob_sdp(0, "sendrecv"))),
        bob_peer(),
    );
    (e, invite)
}

#[test]
fn with_music_on_hold_a_hold_is_answered_here_and_the_other_party_hears_music() {
    use crate::media::control::{LegSource, MediaCommand, MediaLeg};
    use crate::media::sdp::Direction;
    let now = base();
    let (mut e, invite) = anchored_call_with_music_on_hold(now);
    let reinvite =
        |cseq: u32, direction: &str, branch: &str| bob_reinvite(&invite, cseq, direction, branch);
    // Bob holds: we answer recvonly ourselves, alice gets nothing but music on hold.
    let out = feed(
        &mut e,
        now,
        &reinvite(10, "sendonly", "z9hG4bKh1"),
        bob_peer(),
    );
    let ok = sent_to(&out, 5072)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200 to bob");
    let answer = sdp_of(&ok);
    assert_eq!(
        answer.media_direction(&answer.media[0]),
        Direction::RecvOnly
    );
    assert!(
        sent_to(&out, 5071).is_empty(),
        "alice's signalling sees nothing"
    );
    let sources: Vec<(MediaLeg, LegSource)> = media_commands(&out)
        .into_iter()
        .filter_map(|c| match c {
            MediaCommand::Source { leg, source, .. } => Some((leg, source)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sources,
        vec![(
            MediaLeg::Caller,
            LegSource::Prompts {
                tenant: Some(1),
                names: vec!["moh/default".to_owned()],
                looped: true
            }
        )]
    );
    // Bob resumes: alice hears bob again.
    let out = feed(
        &mut e,
        now,
        &reinvite(11, "sendrecv", "z9hG4bKh2"),
        bob_peer(),
    );
    assert!(sent_to(&out, 5072).iter().any(|m| m.status() == Some(200)));
    assert!(media_commands(&out).iter().any(|c| matches!(
        c,
        MediaCommand::Source {
            leg: MediaLeg::Caller,
            source: LegSource::Relay,
            ..
        }
    )));
}

#[test]
fn a_call_whose_media_never_opens_is_refused_with_503() {
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    // Alice's INVITE; from here on without the stand-in media plane of `drain`.
    let out = alice_invites(&mut e, now, "200", "");
    let lookup = lookup_of(&out, "ResolveUser");
    e.handle_input(Input::UserResolved {
        now,
        lookup,
        user: Some(bob(None, forwarding(None, None, None))),
    });
    let out: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(media_commands(&out)
        .iter()
        .any(|c| matches!(c, crate::media::control::MediaCommand::Open { .. })));
    assert!(
        sent_to(&out, 5072).is_empty(),
        "nothing rings before the media is open"
    );
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(2))));
    let out: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(sent_to(&out, 5071).iter().any(|m| m.status() == Some(503)));
    assert!(out.iter().any(|o| matches!(o, Output::CallEnded(_))));
}

#[test]
fn our_2xx_to_a_reinvite_is_retransmitted_until_its_ack() {
    let now = base();
    let (mut e, invite) = anchored_call_with_music_on_hold(now);
    let out = feed(
        &mut e,
        now,
        &bob_reinvite(&invite, 10, "sendonly", "z9hG4bKrt1"),
        bob_peer(),
    );
    let oks = |out: &[Output]| {
        sent_to(out, 5072)
            .into_iter()
            .filter(|m| m.status() == Some(200) && header(m, HeaderName::CSeq) == "10 INVITE")
            .count()
    };
    assert_eq!(oks(&out), 1);
    // No ACK yet: the 200 goes again at T1 and 3*T1.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_millis(500))));
    assert_eq!(oks(&drain(&mut e)), 1);
    e.handle_input(Input::Timeout(now.advanced(Duration::from_millis(1500))));
    assert_eq!(oks(&drain(&mut e)), 1);
    // Bob's ACK stops it.
    let ack = format!(
        "ACK sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKrtack;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:bob@127.0.0.1:5072>;tag={}\r\n\
Call-ID: {}\r\nCSeq: 10 ACK\r\nContent-Length: 0\r\n\r\n",
        from_tag(&invite),
        header(&invite, HeaderName::CallId)
    );
    let _ = feed(
        &mut e,
        now.advanced(Duration::from_millis(1600)),
        &ack,
        bob_peer(),
    );
    e.handle_input(Input::Timeout(now.advanced(Duration::from_millis(3500))));
    assert_eq!(oks(&drain(&mut e)), 0);
}

#[test]
fn only_calls_touching_an_anchoring_profile_are_anchored() {
    // The trunk anchors, the phones profile does not.
    let mut cfg = config(true);
    cfg.listeners[0].anchor_media = false;
    let mut e = Engine::new(cfg);
    let now = base();
    registered(&mut e, now, "bob", 5072);
    // Phone to phone: no media session, the SDP goes through as it is.
    let out = alice_calls_bob(&mut e, now, true);
    assert!(media_commands(&out).is_empty());
    assert_eq!(&sent_to(&out, 5072)[0].body[..], SDP.as_bytes());
    // Phone to a number through the trunk: anchored.
    let mut cfg = config(true);
    cfg.listeners[0].anchor_media = false;
    let mut e = Engine::new(cfg);
    let out = alice_dials(&mut e, now, "90000009");
    let lookup = lookup_of(&out, "ResolveCallerNumbers");
    e.handle_input(Input::CallerNumbersResolved {
        now,
        lookup,
        numbers: CallerNumbers {
            own: Some("+4790000001".into()),
            main: None,
            hide_by_default: false,
        },
    });
    let out = drain(&mut e);
    assert!(media_commands(&out)
        .iter()
        .any(|c| matches!(c, crate::media::control::MediaCommand::Open { .. })));
    let invite = to_carrier(&out).remove(0);
    assert_ne!(&invite.body[..], SDP.as_bytes(), "the carrier gets our SDP");
}

#[path = "queue_tests.rs"]
mod queue_tests;

#[path = "conference_tests.rs"]
mod conference_tests;

#[path = "adhoc_tests.rs"]
mod adhoc_tests;
