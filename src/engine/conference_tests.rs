//! Conference calls through the whole engine in simulated time: callers reach a room by
//! its number (from the carrier) or extension (from a phone), enter the PIN by DTMF, are
//! welcomed and joined to the room in the media plane; controls, kicks, locks and the
//! conference record.

use super::*;
use crate::media::control::{ConferenceId, LegSource, MediaCommand, MediaEvent, MediaLeg};
use crate::media::dtmf::DtmfDigit;
use conference::{ControlResult, LeftBecause, PinRole, ReportOrigin, RoomConfig, RoomControl};

const ROOM: i64 = 7;

fn room(has_pin: bool, locked: bool) -> RoomConfig {
    RoomConfig {
        id: ROOM,
        tenant_id: 1,
        name: "Styremøte".into(),
        extension: "700".into(),
        has_pin,
        has_moderator_pin: has_pin,
        max_participants: 10,
        owner: None,
        end_when_moderator_leaves: false,
        locked,
    }
}

fn engine_with(room: RoomConfig) -> Engine {
    let mut e = anchoring_engine();
    e.handle_input(Input::RoomConfig {
        now: base(),
        rooms: vec![room],
    });
    e
}

/// Caller `n` (+479000000n, Call-ID conf-n) calls the room's number from the carrier;
/// returns what was sent once the call is answered and its name lookup answered.
fn caller_dials_room(e: &mut Engine, now: Now, n: u32) -> Vec<Output> {
    let invite = format!(
        "INVITE sip:21000700@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKconf{n}\r\n\
Max-Forwards: 70\r\nFrom: <sip:+479000000{n}@192.0.2.10>;tag=c{n}\r\nTo: <sip:21000700@127.0.0.1>\r\n\
Call-ID: conf-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:+479000000{n}@192.0.2.10:5060>\r\n\
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
            queue: None,
            conference: Some(ROOM),
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

fn session_of(n: u64) -> crate::media::control::MediaSessionId {
    crate::media::control::MediaSessionId(n)
}

fn digit(e: &mut Engine, now: Now, call: u64, key: char) -> Vec<Output> {
    e.handle_input(Input::Media {
        now,
        event: MediaEvent::Digit {
            session: session_of(call),
            leg: MediaLeg::Caller,
            digit: DtmfDigit::from_char(key).expect("a DTMF key"),
            source: crate::media::control::DigitSource::Rfc4733,
        },
    });
    drain(e)
}

fn keys(e: &mut Engine, now: Now, call: u64, keys: &str) -> Vec<Output> {
    let mut out = Vec::new();
    for k in keys.chars() {
        out.extend(digit(e, now, call, k));
    }
    out
}

fn played(out: &[Output]) -> Vec<Vec<String>> {
    media_commands(out)
        .into_iter()
        .filter_map(|c| match c {
            MediaCommand::Source {
                source: LegSource::Prompts { names, .. },
                ..
            } => Some(names),
            _ => None,
        })
        .collect()
}

fn prompt_done(e: &mut Engine, now: Now, call: u64) -> Vec<Output> {
    e.handle_input(Input::Media {
        now,
        event: MediaEvent::PlaybackDone {
            session: session_of(call),
            leg: MediaLeg::Caller,
        },
    });
    drain(e)
}

fn joined(out: &[Output]) -> bool {
    media_commands(out).iter().any(|c| {
        matches!(
            c,
            MediaCommand::JoinConference {
                room: ConferenceId(7),
                leg: MediaLeg::Caller,
                ..
            }
        )
    })
}

fn pin_check(out: &[Output]) -> Option<(u64, String)> {
    out.iter().find_map(|o| match o {
        Output::VerifyRoomPin {
            lookup,
            room: ROOM,
            digits,
        } => Some((*lookup, digits.0.clone())),
        _ => None,
    })
}

fn to_carrier_caller(out: &[Output]) -> Vec<Message> {
    let carrier: SocketAddr = "192.0.2.10:5060".parse().expect("addr");
    responses(out)
        .into_iter()
        .filter(|(_, p)| p.remote == carrier)
        .map(|(m, _)| m)
        .collect()
}

/// Caller `n` joins a PIN-less room (welcome, then in).
fn join_open_room(e: &mut Engine, now: Now, n: u32) {
    let _ = caller_dials_room(e, now, n);
    let out = prompt_done(e, now, u64::from(n));
    assert!(joined(&out), "caller {n} joins after the welcome");
}

#[test]
fn a_caller_enters_the_pin_is_welcomed_alone_and_joins_the_room() {
    let mut e = engine_with(room(true, false));
    let now = base();
    let out = caller_dials_room(&mut e, now, 1);
    assert!(
        to_carrier_caller(&out)
            .iter()
            .any(|m| m.status() == Some(200)),
        "the room answers"
    );
    assert_eq!(played(&out), vec![vec!["conference/enter-pin".to_string()]]);
    let out = keys(&mut e, now, 1, "1234#");
    let (lookup, digits) = pin_check(&out).expect("the PIN goes to the store");
    assert_eq!(digits, "1234");
    assert!(
        !format!("{out:?}").contains("1234"),
        "PIN digits never show in debug output"
    );
    e.handle_input(Input::RoomPinChecked {
        now,
        lookup,
        role: Some(PinRole::Participant),
    });
    let out = drain(&mut e);
    assert_eq!(
        played(&out),
        vec![vec![
            "conference/welcome".to_string(),
            "conference/only-participant".to_string()
        ]]
    );
    assert!(!joined(&out), "joins only after the welcome");
    let out = prompt_done(&mut e, now, 1);
    assert!(joined(&out));
    let live = e.live_rooms();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].participants.len(), 1);
    assert_eq!(live[0].participants[0].number, "+4790000001");
}

#[test]
fn three_wrong_pins_end_the_call() {
    let mut e = engine_with(room(true, false));
    let now = base();
    let _ = caller_dials_room(&mut e, now, 1);
    for attempt in 1..=3 {
        let out = keys(&mut e, now, 1, "9999#");
        let (lookup, _) = pin_check(&out).expect("checked");
        e.handle_input(Input::RoomPinChecked {
            now,
            lookup,
            role: None,
        });
        let out = drain(&mut e);
        let heard = played(&out);
        if attempt < 3 {
            assert_eq!(
                heard,
                vec![vec![
                    "conference/wrong-pin".to_string(),
                    "conference/enter-pin".to_string()
                ]]
            );
        } else {
            assert_eq!(
                heard,
                vec![vec![
                    "conference/wrong-pin".to_string(),
                    "common/goodbye".to_string()
                ]]
            );
        }
    }
    let out = prompt_done(&mut e, now, 1);
    assert!(to_carrier_caller(&out)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(e.live_rooms().is_empty(), "never joined");
}

#[test]
fn a_pin_left_unfinished_is_checked_after_the_digit_wait() {
    let mut e = engine_with(room(true, false));
    let now = base();
    let _ = caller_dials_room(&mut e, now, 1);
    let _ = keys(&mut e, now, 1, "42");
    let later = now.advanced(Duration::from_secs(11));
    e.handle_input(Input::Timeout(later));
    let out = drain(&mut e);
    assert_eq!(
        pin_check(&out).map(|(_, d)| d),
        Some("42".to_string()),
        "what was typed is checked when the caller stops typing"
    );
}

#[test]
fn a_locked_room_refuses_newcomers() {
    let mut e = engine_with(room(false, true));
    let now = base();
    let out = caller_dials_room(&mut e, now, 1);
    assert_eq!(
        played(&out),
        vec![vec![
            "conference/locked".to_string(),
            "common/goodbye".to_string()
        ]]
    );
    let out = prompt_done(&mut e, now, 1);
    assert!(!joined(&out));
    assert!(to_carrier_caller(&out)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
}

#[test]
fn controls_mute_and_kick_and_the_record_says_who_was_there() {
    let mut e = engine_with(room(false, false));
    let now = base();
    join_open_room(&mut e, now, 1);
    let _ = caller_dials_room(&mut e, now, 2);
    let out = prompt_done(&mut e, now, 2);
    assert!(
        media_commands(&out).iter().any(|c| matches!(
            c,
            MediaCommand::ConferencePrompt {
                sound: crate::media::control::ConferenceSound::Beep(
                    crate::media::control::BeepKind::Enter
                ),
                ..
            }
        )),
        "the room hears the newcomer's entry beep"
    );
    let live = e.live_rooms();
    assert_eq!(
        live[0]
            .participants
            .iter()
            .map(|p| p.id)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    // A participant mutes itself with 1.
    let out = digit(&mut e, now, 2, '1');
    assert!(media_commands(&out)
        .iter()
        .any(|c| matches!(c, MediaCommand::MuteParticipant { muted: true, .. })));
    assert!(e.live_rooms()[0].participants[1].muted);
    // The CLI unmutes it, then kicks participant 1.
    e.handle_input(Input::ConferenceControl {
        now,
        command: 11,
        room: ROOM,
        control: RoomControl::Unmute(2),
    });
    let out = drain(&mut e);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ConferenceControlDone {
            command: 11,
            result: ControlResult::Done
        }
    )));
    e.handle_input(Input::ConferenceControl {
        now,
        command: 12,
        room: ROOM,
        control: RoomControl::Kick(9),
    });
    assert!(drain(&mut e).iter().any(|o| matches!(
        o,
        Output::ConferenceControlDone {
            result: ControlResult::NoSuchParticipant,
            ..
        }
    )));
    let later = now.advanced(Duration::from_secs(60));
    e.handle_input(Input::ConferenceControl {
        now: later,
        command: 13,
        room: ROOM,
        control: RoomControl::Kick(1),
    });
    let out = drain(&mut e);
    assert!(
        to_carrier_caller(&out)
            .iter()
            .any(|m| m.method() == Some(Method::Bye)),
        "the kicked participant is hung up"
    );
    assert_eq!(e.live_rooms()[0].participants.len(), 1);
    assert!(
        media_commands(&out).iter().any(|c| matches!(
            c,
            MediaCommand::ConferencePrompt {
                sound: crate::media::control::ConferenceSound::Beep(
                    crate::media::control::BeepKind::Exit
                ),
                ..
            }
        )),
        "the room hears the exit beep"
    );
    // Participant 2 hangs up: the room is empty, its record goes to the log.
    let bye = "BYE sip:127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbye2\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000002@192.0.2.10>;tag=c2\r\nTo: <sip:21000700@127.0.0.1>;tag=TAG\r\n\
Call-ID: conf-2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    let tag = e
        .calls
        .get(&CallId(2))
        .map(|c| c.inbound.to_tag.clone())
        .expect("call 2");
    let out = feed(&mut e, later, &bye.replace("TAG", &tag), trunk_peer());
    let report = out
        .iter()
        .find_map(|o| match o {
            Output::ConferenceEnded(r) => Some((**r).clone()),
            _ => None,
        })
        .expect("the conference record");
    assert_eq!(
        report.origin,
        ReportOrigin::Room {
            room: ROOM,
            name: "Styremøte".into()
        }
    );
    assert_eq!(report.participants.len(), 2);
    assert_eq!(report.participants[0].number, "+4790000001");
    assert_eq!(report.participants[0].end, LeftBecause::Kicked);
    assert_eq!(report.participants[1].end, LeftBecause::Left);
    assert_eq!(
        report.participants[0].left_ms - report.participants[0].joined_ms,
        60_000
    );
    assert!(media_commands(&out)
        .iter()
        .any(|c| matches!(c, MediaCommand::CloseConference { .. })));
    assert!(e.live_rooms().is_empty());
    // Calls in the room are answered calls in the call log (reported once the media
    // plane has closed the session).
    e.handle_input(Input::Media {
        now: later,
        event: MediaEvent::Closed {
            session: session_of(2),
            caller: Default::default(),
            callee: Default::default(),
        },
    });
    assert!(drain(&mut e)
        .iter()
        .any(|o| matches!(o, Output::CallEnded(f)
        if f.call.outcome == Some(crate::call::model::Outcome::Answered))));
}

#[test]
fn a_user_reaches_a_room_by_its_extension() {
    let mut e = engine_with(room(false, false));
    let now = base();
    let out = alice_dials(&mut e, now, "700");
    assert!(sent_to(&out, 5071).iter().any(|m| m.status() == Some(200)));
    assert!(!out.iter().any(|o| matches!(o, Output::ResolveUser { .. })));
    assert_eq!(
        played(&out),
        vec![vec![
            "conference/welcome".to_string(),
            "conference/only-participant".to_string()
        ]]
    );
}

#[test]
fn a_participant_whose_session_timer_runs_out_is_hung_up_and_leaves_the_room() {
    let mut e = engine_with(room(false, false));
    let now = base();
    // The carrier's caller asks for a 90 s session refreshed by itself.
    let invite = format!(
        "INVITE sip:21000700@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKst\r\n\
Max-Forwards: 70\r\nFrom: <sip:+4790000001@192.0.2.10>;tag=c1\r\nTo: <sip:21000700@127.0.0.1>\r\n\
Call-ID: conf-st\r\nCSeq: 1 INVITE\r\nContact: <sip:+4790000001@192.0.2.10:5060>\r\n\
Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n\
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
            user: None,
            queue: None,
            conference: Some(ROOM),
        }),
    });
    let out = drain(&mut e);
    e.handle_input(Input::CallerFound {
        now,
        lookup: lookup_of(&out, "LookupCaller"),
        name: None,
    });
    let out = drain(&mut e);
    let ok = to_carrier_caller(&out)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("answered");
    assert!(header(&ok, HeaderName::SessionExpires).starts_with("90"));
    let _ = prompt_done(&mut e, now, 1);
    assert_eq!(e.live_rooms().len(), 1);
    // Nobody refreshes: after the interval the switch hangs up and the room empties.
    e.handle_input(Input::Timeout(now.advanced(Duration::from_secs(91))));
    let out = drain(&mut e);
    assert!(to_carrier_caller(&out)
        .iter()
        .any(|m| m.method() == Some(Method::Bye)));
    assert!(e.live_rooms().is_empty());
}
