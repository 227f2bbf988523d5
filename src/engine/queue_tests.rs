//! Queue calls through the whole engine in simulated time: the carrier's caller reaches a
//! queue number, is answered here with a greeting and music, is offered to an agent's
//! phone and bridged when the agent answers; answer groups, abandoned callers, overflow
//! and the agents' feature codes.

use super::*;
use crate::media::control::{LegSource, MediaCommand, MediaEvent, MediaLeg, MediaSessionId};
use crate::queue::model::{
    AgentId, Member, OverflowRules, OverflowTarget, Presence, QueueId, QueueKind, QueueSpec,
    Strategy,
};

const QUEUE: QueueId = QueueId(1);
/// Bob (user 2 in these tests' store) is the agent; his phone registers on port 5072.
const BOB: AgentId = AgentId(2);

fn spec(kind: QueueKind, overflow: OverflowRules) -> QueueSpec {
    QueueSpec {
        id: QUEUE,
        tenant_id: 1,
        name: "Sentralbord".into(),
        kind,
        strategy: Strategy::LongestIdle,
        members: vec![Member {
            agent: BOB,
            order: 1,
            ring_timeout: None,
        }],
        ring_timeout: Duration::from_secs(15),
        wrap_up: Duration::from_secs(10),
        max_wait: None,
        max_callers: None,
        announce_every: None,
        overflow,
        schedule: None,
    }
}

/// Loads one queue with bob as its member, bob's presence as given.
fn configure(e: &mut Engine, now: Now, spec: QueueSpec, bob: Presence) {
    let mut users = HashMap::new();
    users.insert(
        BOB.0,
        super::queue::QueueUser {
            tenant_id: 1,
            aor: format!("sip:bob@{REALM}"),
            mobile: None,
        },
    );
    let config = super::queue::QueueConfig {
        queues: vec![spec],
        users,
        presence: vec![(BOB, bob)],
        ..Default::default()
    };
    e.handle_input(Input::QueueConfig {
        now,
        config: Box::new(config),
    });
    let _ = drain(e);
}

/// The carrier's caller +4790000001 calls the queue's number: the outputs once the
/// number is resolved to the queue and the caller's name lookup is answered.
fn caller_reaches_queue(e: &mut Engine, now: Now) -> Vec<Output> {
    let invite = format!(
        "INVITE sip:21000000@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKq1\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=c1\r\nTo: <sip:21000000@127.0.0.1>\r\n\
Call-ID: queue-call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:+4790000001@192.0.2.10:5060>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let out = feed(e, now, &invite, trunk_peer());
    let lookup = lookup_of(&out, "ResolveNumber");
    e.handle_input(Input::NumberResolved {
        now,
        lookup,
        owner: Some(NumberOwner {
            tenant_id: 1,
            user: None,
            queue: Some(QUEUE),
            conference: None,
        }),
    });
    let out = drain(e);
    let lookup = lookup_of(&out, "LookupCaller");
    e.handle_input(Input::CallerFound {
        now,
        lookup,
        name: None,
    });
    drain(e)
}

fn to_caller(out: &[Output]) -> Vec<Message> {
    let carrier: SocketAddr = "192.0.2.10:5060".parse().expect("addr");
    responses(out)
        .into_iter()
        .filter(|(_, p)| p.remote == carrier)
        .map(|(m, _)| m)
        .collect()
}

fn sources(out: &[Output]) -> Vec<(MediaLeg, LegSource)> {
    media_commands(out)
        .into_iter()
        .filter_map(|c| match c {
            MediaCommand::Source { leg, source, .. } => Some((leg, source)),
            _ => None,
        })
        .collect()
}

fn prompts(source: &LegSource) -> Vec<String> {
    match source {
        LegSource::Prompts { names, .. } => names.clone(),
        _ => Vec::new(),
    }
}

/// The caller's ACK for our 2xx (To tag `tag`).
fn caller_ack(tag: &str) -> String {
    format!(
        "ACK sip:127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKq1ack\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=c1\r\nTo: <sip:21000000@127.0.0.1>;tag={tag}\r\n\
Call-ID: queue-call-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The caller's BYE in its dialog with us.
fn caller_bye(tag: &str) -> String {
    format!(
        "BYE sip:127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKq1bye\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=c1\r\nTo: <sip:21000000@127.0.0.1>;tag={tag}\r\n\
Call-ID: queue-call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn ended(out: &[Output]) -> Option<FinishedCall> {
    out.iter().find_map(|o| match o {
        Output::CallEnded(f) => Some((**f).clone()),
        _ => None,
    })
}

/// Lets the stand-in media plane report the end of the caller's playlist.
fn playback_done(e: &mut Engine, now: Now) -> Vec<Output> {
    e.handle_input(Input::Media {
        now,
        event: MediaEvent::PlaybackDone {
            session: MediaSessionId(1),
            leg: MediaLeg::Caller,
        },
    });
    drain(e)
}

/// Reports the closed media session so the call's record is written.
fn media_closed(e: &mut Engine, now: Now) -> Vec<Output> {
    e.handle_input(Input::Media {
        now,
        event: MediaEvent::Closed {
            session: MediaSessionId(1),
            caller: Default::default(),
            callee: Default::default(),
        },
    });
    drain(e)
}

#[test]
fn a_queue_caller_is_answered_here_hears_the_greeting_and_music_and_is_bridged_to_the_agent() {
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    configure(
        &mut e,
        now,
        spec(QueueKind::Queue, OverflowRules::default()),
        Presence::LoggedIn,
    );
    let out = caller_reaches_queue(&mut e, now);
    let ok = to_caller(&out)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("the queue answers the caller itself");
    assert_eq!(
        sdp_of(&ok).media[0].port,
        20_004,
        "our answer carries the caller leg's port"
    );
    let heard = sources(&out);
    assert_eq!(heard[0].0, MediaLeg::Caller);
    assert_eq!(prompts(&heard[0].1), vec!["queue/welcome".to_string()]);
    // The agent's phone rings with our offer.
    let invite = sent_to(&out, 5072)
        .into_iter()
        .find(|m| m.method() == Some(Method::Invite))
        .expect("bob's phone is offered the call");
    assert_eq!(sdp_of(&invite).media[0].port, 20_006);
    let tag = to_tag(&ok);
    let _ = feed(&mut e, now, &caller_ack(&tag), trunk_peer());
    // The greeting ends: music on hold, looped.
    let out = playback_done(&mut e, now);
    assert_eq!(
        sources(&out),
        vec![(
            MediaLeg::Caller,
            LegSource::Prompts {
                tenant: Some(1),
                names: vec!["moh/default".into()],
                looped: true
            }
        )]
    );
    // Bob answers after 4 s: the caller hears bob (relay), and gets no second 2xx.
    let later = now.advanced(Duration::from_secs(4));
    let out = feed(
        &mut e,
        later,
        &reply(&invite, 200, "OK", "bob1", Some(&bob_sdp(0, "sendrecv"))),
        bob_peer(),
    );
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Ack)));
    assert_eq!(sources(&out), vec![(MediaLeg::Caller, LegSource::Relay)]);
    assert!(to_caller(&out).iter().all(|m| m.status() != Some(200)));
    // The caller hangs up after a minute of talk: bob gets BYE; the record names the
    // queue, the wait and the agent.
    let end = later.advanced(Duration::from_secs(60));
    let out = feed(&mut e, end, &caller_bye(&tag), trunk_peer());
    assert!(sent_to(&out, 5072)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    let out = media_closed(&mut e, end);
    let record = ended(&out).expect("the call is logged");
    assert_eq!(
        record.call.outcome,
        Some(crate::call::model::Outcome::Answered)
    );
    assert_eq!(record.callee_user, Some(BOB.0));
    let visit = &record.queue_visits[0];
    assert_eq!(visit.queue, QUEUE);
    assert_eq!(visit.name, "Sentralbord");
    assert_eq!(visit.answered_by, Some(BOB.0));
    assert_eq!(
        visit.answered_ms.map(|a| a - visit.entered_ms),
        Some(4_000),
        "waited 4 s"
    );
    assert_eq!(visit.outcome, Some(super::queue::VisitOutcome::Answered));
    assert_eq!(visit.offers.len(), 1);
    assert_eq!(visit.offers[0].result, super::queue::OfferResult::Answered);
}

#[test]
fn an_answer_group_caller_hears_ringing_and_is_answered_by_the_agents_answer() {
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    configure(
        &mut e,
        now,
        spec(QueueKind::Group, OverflowRules::default()),
        Presence::LoggedIn,
    );
    let out = caller_reaches_queue(&mut e, now);
    let to = to_caller(&out);
    assert!(to.iter().any(|m| m.status() == Some(180)));
    assert!(to.iter().all(|m| m.status() != Some(200)));
    assert!(
        sources(&out).is_empty(),
        "nothing is played to a group's caller"
    );
    let invite = sent_to(&out, 5072)
        .into_iter()
        .find(|m| m.method() == Some(Method::Invite))
        .expect("bob's phone rings");
    let out = feed(
        &mut e,
        now,
        &reply(&invite, 200, "OK", "bob1", Some(&bob_sdp(8, "sendrecv"))),
        bob_peer(),
    );
    let ok = to_caller(&out)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("the caller is answered when bob answers");
    assert_eq!(sdp_of(&ok).media[0].port, 20_004);
}

#[test]
fn a_caller_hanging_up_in_the_queue_is_removed_at_once_and_logged_abandoned() {
    let mut e = anchoring_engine();
    let now = base();
    registered(&mut e, now, "bob", 5072);
    configure(
        &mut e,
        now,
        spec(QueueKind::Queue, OverflowRules::default()),
        Presence::LoggedIn,
    );
    let out = caller_reaches_queue(&mut e, now);
    let ok = to_caller(&out)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("answered");
    let invite = sent_to(&out, 5072)
        .into_iter()
        .find(|m| m.method() == Some(Method::Invite))
        .expect("offered to bob");
    let _ = feed(
        &mut e,
        now,
        &reply(&invite, 180, "Ringing", "bob1", None),
        bob_peer(),
    );
    let later = now.advanced(Duration::from_secs(3));
    let out = feed(&mut e, later, &caller_bye(&to_tag(&ok)), trunk_peer());
    assert!(
        sent_to(&out, 5072)
            .iter()
            .any(|m| m.method() == Some(Method::Cancel)),
        "bob's ringing phone is cancelled"
    );
    assert_eq!(e.queue_snapshots(later)[0].callers_waiting, 0);
    let out = media_closed(&mut e, later);
    let record = ended(&out).expect("logged");
    assert_eq!(
        record.call.outcome,
        Some(crate::call::model::Outcome::Missed)
    );
    let visit = &record.queue_visits[0];
    assert_eq!(visit.outcome, Some(super::queue::VisitOutcome::Abandoned));
    assert_eq!(visit.answered_by, None);
    assert_eq!(visit.offers[0].result, super::queue::OfferResult::Withdrawn);
}

#[test]
fn a_caller_with_no_agent_logged_in_overflows_to_an_announcement_and_is_hung_up() {
    let mut e = anchoring_engine();
    let now = base();
    configure(
        &mut e,
        now,
        spec(
            QueueKind::Queue,
            OverflowRules {
                no_agents: Some(OverflowTarget::Announcement(None)),
                ..Default::default()
            },
        ),
        Presence::LoggedOut,
    );
    let out = caller_reaches_queue(&mut e, now);
    let ok = to_caller(&out)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("answered to hear the announcement");
    let heard = sources(&out);
    assert_eq!(
        prompts(&heard.last().expect("a prompt").1),
        vec!["queue/all-busy".to_string()]
    );
    let _ = feed(&mut e, now, &caller_ack(&to_tag(&ok)), trunk_peer());
    let out = playback_done(&mut e, now);
    assert!(
        to_caller(&out)
            .iter()
            .any(|m| m.method() == Some(Method::Bye)),
        "hung up after the announcement"
    );
    let out = media_closed(&mut e, now);
    let visit = ended(&out).expect("logged").queue_visits[0].clone();
    assert_eq!(visit.outcome, Some(super::queue::VisitOutcome::Overflowed));
    assert_eq!(
        visit.overflow,
        Some((
            crate::queue::model::OverflowReason::NoAgents,
            "announcement".to_string()
        ))
    );
}

#[test]
fn feature_codes_log_the_agent_in_and_out_and_confirm_by_announcement() {
    let mut e = anchoring_engine();
    let now = base();
    configure(
        &mut e,
        now,
        spec(QueueKind::Queue, OverflowRules::default()),
        Presence::LoggedOut,
    );
    // Alice (user 1) is not a member, which does not matter to her own presence.
    let out = alice_dials(&mut e, now, "*45");
    assert!(out.iter().any(|o| matches!(
        o,
        Output::AgentPresence {
            user_id: 1,
            presence: Presence::LoggedIn
        }
    )));
    let ok = sent_to(&out, 5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("the feature code call is answered");
    assert_eq!(
        prompts(&sources(&out)[0].1),
        vec!["agent/logged-in".to_string()]
    );
    let _ = feed(
        &mut e,
        now,
        &alice_ack(&to_tag(&ok), "z9hG4bKack", None),
        udp_peer(5071),
    );
    let out = playback_done(&mut e, now);
    assert!(sent_to(&out, 5071)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    let out = media_closed(&mut e, now);
    assert!(
        ended(&out).is_none(),
        "feature codes are not call-log calls"
    );
    assert_eq!(e.queues.presence(AgentId(1)), Presence::LoggedIn);
    // An unknown code is refused and changes nothing.
    let later = now.advanced(Duration::from_secs(40));
    e.handle_input(Input::Timeout(later));
    let _ = drain(&mut e);
    let out = alice_dials(&mut e, later, "*99");
    assert!(statuses(&out).contains(&Some(404)));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::AgentPresence { .. })));
}

#[test]
fn a_waiting_caller_hears_its_position_between_pieces_of_music() {
    let mut e = anchoring_engine();
    let now = base();
    let mut queue = spec(QueueKind::Queue, OverflowRules::default());
    queue.announce_every = Some(Duration::from_secs(30));
    configure(&mut e, now, queue, Presence::LoggedOut);
    let out = caller_reaches_queue(&mut e, now);
    let ok = to_caller(&out)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("answered");
    let _ = feed(&mut e, now, &caller_ack(&to_tag(&ok)), trunk_peer());
    let _ = playback_done(&mut e, now);
    // Nobody is logged in and there is no rule: the caller waits, and after 30 s hears
    // "Du er nummer 1 i køen." (no expected wait without agents), then music again. (The
    // stand-in media plane opens the session a moment after `now`: 31 s covers it.)
    let later = now.advanced(Duration::from_secs(31));
    e.handle_input(Input::Timeout(later));
    let out = drain(&mut e);
    let heard = sources(&out);
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(
        prompts(&heard[0].1),
        vec![
            "queue/position".to_string(),
            "digits/1".to_string(),
            "queue/in-queue".to_string()
        ]
    );
    let out = playback_done(&mut e, later);
    assert_eq!(
        prompts(&sources(&out)[0].1),
        vec!["moh/default".to_string()]
    );
    assert_eq!(e.queue_snapshots(later)[0].callers_waiting, 1);
}
