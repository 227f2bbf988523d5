//! Ad-hoc conferences through the whole engine in simulated time: alice calls bob, one of
//! them presses `*3300#`, carol (extension 300) is called from the switch and joins the
//! two in a new room; parties leave, the last two go back to a plain call, and the
//! records come out. Also the merge of a user's two calls.

use super::*;
use crate::call::model::Outcome;
use crate::media::control::{MediaCommand, MediaEvent, MediaLeg, MediaSessionId};
use crate::media::dtmf::DtmfDigit;
use adhoc::MergeResult;
use conference::{LeftBecause, ReportOrigin};

fn carol() -> ResolvedUser {
    ResolvedUser {
        user_id: 3,
        username: "carol".into(),
        realm: REALM.into(),
        mobile: None,
        forwarding: Default::default(),
    }
}

/// Carol's SDP: her RTP address 127.0.0.1:6000, PCMU.
fn carol_sdp() -> String {
    "v=0\r\no=carol 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n"
        .to_string()
}

fn keys_on(e: &mut Engine, now: Now, session: u64, leg: MediaLeg, keys: &str) -> Vec<Output> {
    let mut out = Vec::new();
    for k in keys.chars() {
        e.handle_input(Input::Media {
            now,
            event: MediaEvent::Digit {
                session: MediaSessionId(session),
                leg,
                digit: DtmfDigit::from_char(k).expect("a DTMF key"),
                source: crate::media::control::DigitSource::Rfc4733,
            },
        });
        out.extend(drain(e));
    }
    out
}

/// Alice's call to bob, answered and acknowledged (anchored, session 1); returns bob's
/// INVITE and the To tag alice got.
fn answered_call(e: &mut Engine, now: Now) -> (Message, String) {
    registered(e, now, "bob", 5072);
    registered(e, now, "carol", 5073);
    let out = alice_calls_bob(e, now, true);
    let invite = sent_to(&out, 5072).remove(0);
    let out = feed(
        e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(&bob_sdp(0, "sendrecv"))),
        bob_peer(),
    );
    let ok = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200 to alice");
    let tag = to_tag(&ok);
    let _ = feed(
        e,
        now,
        &alice_ack(&tag, "z9hG4bKack1", None),
        udp_peer(5071),
    );
    (invite, tag)
}

/// Alice presses `*3300#`; carol is resolved and rung. Returns the INVITE to carol.
fn alice_adds_carol(e: &mut Engine, now: Now) -> Message {
    let out = keys_on(e, now, 1, MediaLeg::Caller, "*3300#");
    let Some(Output::ResolveUser {
        lookup, extension, ..
    }) = out
        .iter()
        .find(|o| matches!(o, Output::ResolveUser { .. }))
        .cloned()
    else {
        panic!("carol's extension is looked up: {out:?}")
    };
    assert_eq!(extension, "300");
    e.handle_input(Input::UserResolved {
        now,
        lookup,
        user: Some(carol()),
    });
    let out = drain(e);
    assert!(
        media_commands(&out)
            .iter()
            .any(|c| matches!(c, MediaCommand::Open { session, .. } if session.0 > 1)),
        "the third leg gets its own media session: {out:?}"
    );
    let to_carol = sent_to(&out, 5073);
    assert_eq!(to_carol.len(), 1, "{out:?}");
    to_carol[0].clone()
}

/// Carol answers: returns the outputs.
fn carol_answers(e: &mut Engine, now: Now, invite: &Message) -> Vec<Output> {
    let mut r = Message::response_to(invite, 200, "OK", Some("c9"));
    r.push(HeaderName::Contact, "<sip:carol@127.0.0.1:5073>");
    r.push(HeaderName::ContentType, "application/sdp");
    r.body = Bytes::from(carol_sdp());
    let text = String::from_utf8(r.encode().to_vec()).expect("utf8");
    feed(e, now, &text, udp_peer(5073))
}

fn carol_bye(invite: &Message) -> String {
    let call_id = header(invite, HeaderName::CallId);
    let our_tag = from_tag(invite);
    format!(
        "BYE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5073;branch=z9hG4bKcbye;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:carol@127.0.0.1>;tag=c9\r\nTo: <sip:300@127.0.0.1>;tag={our_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn alice_bye(tag: &str) -> String {
    format!(
        "BYE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKabye;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@{REALM}>;tag=a1\r\nTo: <sip:200@{REALM}>;tag={tag}\r\n\
Call-ID: call-a\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn bob_bye(invite: &Message) -> String {
    let call_id = header(invite, HeaderName::CallId);
    let our_tag = from_tag(invite);
    format!(
        "BYE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKbbye;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:bob@127.0.0.1:5072>;tag={our_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The (session, leg, room) of every join among `out`'s media commands.
fn joins(out: &[Output]) -> Vec<(u64, MediaLeg, u64)> {
    media_commands(out)
        .into_iter()
        .filter_map(|c| match c {
            MediaCommand::JoinConference {
                session, leg, room, ..
            } => Some((session.0, leg, room.0)),
            _ => None,
        })
        .collect()
}

fn report(out: &[Output]) -> Option<conference::ConferenceReport> {
    out.iter().find_map(|o| match o {
        Output::ConferenceEnded(r) => Some((**r).clone()),
        _ => None,
    })
}

fn ended_calls(out: &[Output]) -> Vec<b2bua::FinishedCall> {
    out.iter()
        .filter_map(|o| match o {
            Output::CallEnded(f) => Some((**f).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_party_added_by_star_three_joins_a_room_with_both_and_leaving_restores_the_plain_call() {
    let mut e = anchoring_engine();
    let now = base();
    let (_bob_invite, alice_tag) = answered_call(&mut e, now);
    let invite = alice_adds_carol(&mut e, now);
    // Carol sees alice as the caller, and gets our offer of G.711 on the new session.
    assert!(header(&invite, HeaderName::From).contains("sip:alice@"));
    let offer = sdp_of(&invite);
    assert_eq!(
        offer.media[0].payload_types().take(2).collect::<Vec<_>>(),
        [0, 8]
    );
    let out = carol_answers(&mut e, now.advanced(Duration::from_secs(2)), &invite);
    assert!(
        responses(&out).is_empty() || sent_to(&out, 5073).iter().all(|m| m.status().is_none()),
        "carol gets an ACK, nobody gets a response: {out:?}"
    );
    assert_eq!(
        sent_to(&out, 5073)
            .iter()
            .filter(|m| m.method() == Some(Method::Ack))
            .count(),
        1
    );
    let j = joins(&out);
    assert_eq!(j.len(), 3, "alice, bob and carol join: {out:?}");
    let room = j[0].2;
    assert!(j.iter().all(|(_, _, r)| *r == room), "one room: {j:?}");
    assert_eq!((j[0].0, j[0].1), (1, MediaLeg::Caller));
    assert_eq!((j[1].0, j[1].1), (1, MediaLeg::Callee));
    assert!(
        j[2].0 > 1 && j[2].1 == MediaLeg::Callee,
        "carol's own session"
    );
    // Carol's media was set from her answer before the join.
    assert!(media_updates(&out)
        .iter()
        .any(|(_, remote, _, _)| *remote == Some("127.0.0.1:6000".parse().expect("addr"))));
    // A second *3 while in the room does nothing.
    assert!(
        keys_on(&mut e, now, 1, MediaLeg::Callee, "*3400#")
            .iter()
            .all(|o| !matches!(o, Output::ResolveUser { .. })),
        "no second party while in a room"
    );
    // Carol hangs up: 200 to her, her session closes, alice and bob are relayed again.
    let later = now.advanced(Duration::from_secs(10));
    let out = feed(&mut e, later, &carol_bye(&invite), udp_peer(5073));
    assert_eq!(
        sent_to(&out, 5073)
            .iter()
            .map(|m| m.status())
            .collect::<Vec<_>>(),
        [Some(200)]
    );
    assert!(
        sent_to(&out, 5071).is_empty() && sent_to(&out, 5072).is_empty(),
        "{out:?}"
    );
    let cmds = media_commands(&out);
    assert!(cmds
        .iter()
        .any(|c| matches!(c, MediaCommand::Close { session } if session.0 > 1)));
    for leg in [MediaLeg::Caller, MediaLeg::Callee] {
        assert!(
            cmds.iter().any(|c| matches!(c, MediaCommand::Source { session, leg: l, source: crate::media::control::LegSource::Relay } if session.0 == 1 && *l == leg)),
            "{leg:?} is relayed again: {cmds:?}"
        );
    }
    let r = report(&out).expect("the conference record");
    assert_eq!(r.origin, ReportOrigin::AdHoc);
    assert_eq!(r.tenant_id, 1);
    let who: Vec<(&str, Option<i64>, LeftBecause)> = r
        .participants
        .iter()
        .map(|p| (p.number.as_str(), p.user, p.end))
        .collect();
    assert_eq!(
        who,
        [
            ("alice", Some(1), LeftBecause::RoomEnded),
            ("200", Some(2), LeftBecause::RoomEnded),
            ("300", Some(3), LeftBecause::Left),
        ]
    );
    assert!(r.participants.iter().all(|p| !p.sip_call_id.is_empty()));
    // Carol's leg is a call of its own in the call log: alice to 300, answered.
    let calls = ended_calls(&out);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            calls[0].callee.as_str(),
            calls[0].caller_user,
            calls[0].callee_user,
            calls[0].call.outcome
        ),
        ("300", Some(1), Some(3), Some(Outcome::Answered))
    );
    assert_eq!(
        calls[0].sip_call_ids,
        [r.participants[2].sip_call_id.clone()]
    );
    // Alice hangs up the plain call: bob gets BYE as on any call.
    let out = feed(&mut e, later, &alice_bye(&alice_tag), udp_peer(5071));
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
}

#[test]
fn when_the_caller_leaves_the_other_two_stay_and_the_last_one_is_hung_up() {
    let mut e = anchoring_engine();
    let now = base();
    let (bob_invite, alice_tag) = answered_call(&mut e, now);
    let invite = alice_adds_carol(&mut e, now);
    let _ = carol_answers(&mut e, now, &invite);
    // Alice leaves: bob and carol stay (no BYE to either), alice's leg leaves the room.
    let out = feed(&mut e, now, &alice_bye(&alice_tag), udp_peer(5071));
    assert_eq!(
        sent_to(&out, 5071)
            .iter()
            .map(|m| m.status())
            .collect::<Vec<_>>(),
        [Some(200)]
    );
    assert!(
        sent_to(&out, 5072).is_empty() && sent_to(&out, 5073).is_empty(),
        "{out:?}"
    );
    assert!(media_commands(&out).iter().any(|c| matches!(
        c,
        MediaCommand::LeaveConference { session, leg: MediaLeg::Caller } if session.0 == 1
    )));
    assert!(report(&out).is_none() && ended_calls(&out).is_empty());
    // A re-INVITE from bob now is answered here (alice is gone).
    let out = feed(
        &mut e,
        now,
        &bob_reinvite(&bob_invite, 3, "sendrecv", "z9hG4bKre1"),
        bob_peer(),
    );
    assert_eq!(
        sent_to(&out, 5072)
            .iter()
            .filter_map(|m| m.status())
            .collect::<Vec<_>>(),
        [200]
    );
    assert!(sent_to(&out, 5071).is_empty());
    // Bob leaves too: carol is alone and hung up; everything is reported.
    let out = feed(&mut e, now, &bob_bye(&bob_invite), bob_peer());
    assert!(sent_to(&out, 5073)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    let r = report(&out).expect("the conference record");
    let ends: Vec<LeftBecause> = r.participants.iter().map(|p| p.end).collect();
    assert_eq!(
        ends,
        [LeftBecause::Left, LeftBecause::Left, LeftBecause::RoomEnded]
    );
    assert_eq!(
        ended_calls(&out).len(),
        1,
        "carol's leg is logged now: {out:?}"
    );
    // The first call is logged once its media statistics are in (or their deadline).
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(3))));
    let calls = ended_calls(&drain(&mut e));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call.outcome, Some(Outcome::Answered));
}

#[test]
fn a_busy_third_party_is_announced_to_the_requester_and_the_call_goes_on() {
    let mut e = anchoring_engine();
    let now = base();
    let (_bob_invite, _tag) = answered_call(&mut e, now);
    let invite = alice_adds_carol(&mut e, now);
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 486, "Busy Here", "c9", None),
        udp_peer(5073),
    );
    assert!(sent_to(&out, 5073)
        .iter()
        .any(|m| m.method() == Some(Method::Ack)));
    let cmds = media_commands(&out);
    assert!(cmds
        .iter()
        .any(|c| matches!(c, MediaCommand::Close { session } if session.0 > 1)));
    assert!(cmds.iter().any(|c| matches!(
        c,
        MediaCommand::Source { session, leg: MediaLeg::Caller, source: crate::media::control::LegSource::Prompts { names, .. } }
            if session.0 == 1 && names == &["conference/adhoc-failed".to_string()]
    )));
    assert!(joins(&out).is_empty());
    let calls = ended_calls(&out);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call.outcome, Some(Outcome::Busy));
    // The announcement ends: alice hears bob again.
    e.handle_input(Input::Media {
        now,
        event: MediaEvent::PlaybackDone {
            session: MediaSessionId(1),
            leg: MediaLeg::Caller,
        },
    });
    let cmds = media_commands(&drain(&mut e));
    assert!(cmds.iter().any(|c| matches!(
        c,
        MediaCommand::Source { session, leg: MediaLeg::Caller, source: crate::media::control::LegSource::Relay } if session.0 == 1
    )));
}

#[test]
fn a_caller_from_outside_cannot_add_parties_and_keys_before_the_answer_do_nothing() {
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    let out = alice_calls_bob(&mut e, now, true);
    // Still ringing: no third party.
    let out2 = keys_on(&mut e, now, 1, MediaLeg::Caller, "*3300#");
    assert!(out2
        .iter()
        .all(|o| !matches!(o, Output::ResolveUser { .. })));
    let invite = sent_to(&out, 5072).remove(0);
    let _ = feed(
        &mut e,
        now,
        &reply(&invite, 200, "OK", "b1", Some(&bob_sdp(0, "sendrecv"))),
        bob_peer(),
    );
    // Answered: bob (a user) may; a non-user leg may not (tested by the eligibility rule
    // on the caller side of trunk calls in `merge`'s sibling below).
    let out = keys_on(&mut e, now, 1, MediaLeg::Callee, "*3300#");
    assert!(out.iter().any(|o| matches!(o, Output::ResolveUser { .. })));
}

#[test]
fn merging_needs_exactly_two_answered_calls_of_the_user() {
    let mut e = anchoring_engine();
    let now = base();
    let (bob_invite, alice_tag) = answered_call(&mut e, now);
    // Bob has one call only.
    e.handle_input(Input::MergeCalls {
        now,
        command: 9,
        tenant: 1,
        user: 2,
    });
    let out = drain(&mut e);
    assert!(out.contains(&Output::MergeDone {
        command: 9,
        result: MergeResult::NotTwoCalls
    }));
    assert!(joins(&out).is_empty());
    // A second call to bob, from the carrier, answered by bob.
    let invite = format!(
        "INVITE sip:21000002@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKtrunkm\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=t1\r\nTo: <sip:21000002@127.0.0.1>\r\n\
Call-ID: trunk-merge\r\nCSeq: 1 INVITE\r\nContact: <sip:+4790000001@192.0.2.10:5060>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let out = feed(&mut e, now, &invite, trunk_peer());
    let lookup = lookup_of(&out, "ResolveNumber");
    e.handle_input(Input::NumberResolved {
        now,
        lookup,
        owner: Some(NumberOwner {
            tenant_id: 1,
            user: Some(bob(None, Default::default())),
            queue: None,
            conference: None,
        }),
    });
    let out = drain(&mut e);
    let lookup = lookup_of(&out, "LookupCaller");
    e.handle_input(Input::CallerFound {
        now,
        lookup,
        name: None,
    });
    let out = drain(&mut e);
    let to_bob = sent_to(&out, 5072);
    let inv2 = to_bob
        .iter()
        .find(|m| m.method() == Some(Method::Invite))
        .expect("bob rings");
    let _ = feed(
        &mut e,
        now,
        &reply(inv2, 200, "OK", "b2", Some(&bob_sdp(0, "sendrecv"))),
        bob_peer(),
    );
    // The carrier's caller is no user: its keys add nobody.
    let session2 = 2;
    let out = keys_on(&mut e, now, session2, MediaLeg::Caller, "*3300#");
    assert!(out.iter().all(|o| !matches!(o, Output::ResolveUser { .. })));
    // Now bob has two answered calls: all four legs join one room.
    e.handle_input(Input::MergeCalls {
        now,
        command: 10,
        tenant: 1,
        user: 2,
    });
    let out = drain(&mut e);
    assert!(out.contains(&Output::MergeDone {
        command: 10,
        result: MergeResult::Done
    }));
    let j = joins(&out);
    assert_eq!(j.len(), 4, "{out:?}");
    assert!(j.iter().all(|(_, _, r)| *r == j[0].2));
    // Alice hangs up: bob's leg of her call leads nowhere now (bob is in the room on his
    // other call) and is hung up; the carrier's caller and bob are a plain call again.
    let out = feed(&mut e, now, &alice_bye(&alice_tag), udp_peer(5071));
    let byes: Vec<String> = sent_to(&out, 5072)
        .iter()
        .filter(|m| m.method() == Some(Method::Bye))
        .map(|m| header(m, HeaderName::CallId))
        .collect();
    assert_eq!(byes, [header(&bob_invite, HeaderName::CallId)], "{out:?}");
    let cmds = media_commands(&out);
    for leg in [MediaLeg::Caller, MediaLeg::Callee] {
        assert!(
            cmds.iter().any(|c| matches!(c, MediaCommand::Source { session, leg: l, source: crate::media::control::LegSource::Relay } if session.0 == 2 && *l == leg)),
            "call 2's {leg:?} is relayed again: {cmds:?}"
        );
    }
    let r = report(&out).expect("the conference record");
    let ends: Vec<(Option<i64>, LeftBecause)> =
        r.participants.iter().map(|p| (p.user, p.end)).collect();
    assert_eq!(
        ends,
        [
            (Some(1), LeftBecause::Left),
            (Some(2), LeftBecause::Left),
            (None, LeftBecause::RoomEnded),
            (Some(2), LeftBecause::RoomEnded)
        ]
    );
    // The wrong tenant finds no calls.
    e.handle_input(Input::MergeCalls {
        now,
        command: 11,
        tenant: 2,
        user: 2,
    });
    assert!(drain(&mut e).contains(&Output::MergeDone {
        command: 11,
        result: MergeResult::NotTwoCalls
    }));
}

#[test]
fn a_hang_up_while_the_third_party_rings_cancels_it_and_nothing_is_left_behind() {
    let mut e = anchoring_engine();
    let now = base();
    let (_bob_invite, alice_tag) = answered_call(&mut e, now);
    let invite = alice_adds_carol(&mut e, now);
    let _ = feed(
        &mut e,
        now,
        &reply(&invite, 180, "Ringing", "c9", None),
        udp_peer(5073),
    );
    let out = feed(&mut e, now, &alice_bye(&alice_tag), udp_peer(5071));
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(
        sent_to(&out, 5073)
            .iter()
            .any(|m| m.method() == Some(Method::Cancel)),
        "carol's ringing is cancelled: {out:?}"
    );
    let calls = ended_calls(&out);
    assert_eq!(calls.len(), 1, "carol's leg is logged: {out:?}");
    assert_eq!(calls[0].call.outcome, Some(Outcome::Cancelled));
    // Her 487 is acknowledged even though the call is over.
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 487, "Request Terminated", "c9", None),
        udp_peer(5073),
    );
    assert!(sent_to(&out, 5073)
        .iter()
        .any(|m| m.method() == Some(Method::Ack)));
    // Once every transaction is over, the call is forgotten.
    for s in [1, 3, 40, 70] {
        e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(s))));
        let _ = drain(&mut e);
    }
    assert_eq!(e.call_count(), 0, "no call left behind");
}
