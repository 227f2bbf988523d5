//! Dialog tests: route-set order, request targets, CSeq rules, state changes, the set.

use super::*;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Record-Route as it appears in the message: P3 nearest to the UAS... top entry first.
fn record_route() -> Vec<Bytes> {
    vec![
        b("<sip:p3.example.com;lr>"),
        b("<sip:p2.example.com;lr>"),
        b("\"edge\" <sip:p1.example.com;lr;transport=tcp>"),
    ]
}

fn parts(record_route: Vec<Bytes>) -> DialogParts {
    DialogParts {
        call_id: b("call-1@example.com"),
        local_tag: b("ltag"),
        remote_tag: b("rtag"),
        local_uri: b("sip:alice@example.com"),
        remote_uri: b("sip:bob@example.com"),
        remote_target: b("sip:bob@192.0.2.4:5060"),
        record_route,
        cseq: 314,
        secure: false,
    }
}

#[test]
fn uac_route_set_is_reversed_record_route() {
    let d = Dialog::new_uac(parts(record_route()), false).unwrap();
    let expected: Vec<Bytes> = record_route().into_iter().rev().collect();
    assert_eq!(d.route_set(), &expected[..]);
    assert_eq!(d.role(), DialogRole::Uac);
    assert_eq!(d.local_cseq(), Some(314));
    assert_eq!(d.remote_cseq(), None);
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(
        d.id(),
        &DialogId::new(b("call-1@example.com"), b("ltag"), b("rtag"))
    );
}

#[test]
fn uas_route_set_is_record_route_in_order() {
    let d = Dialog::new_uas(parts(record_route()), true).unwrap();
    assert_eq!(d.route_set(), &record_route()[..]);
    assert_eq!(d.local_cseq(), None);
    assert_eq!(d.remote_cseq(), Some(314));
    assert_eq!(d.state(), DialogState::Early);
}

#[test]
fn constructors_reject_missing_parts() {
    let mut p = parts(vec![]);
    p.remote_tag = Bytes::new();
    assert_eq!(
        Dialog::new_uac(p.clone(), false).unwrap_err(),
        DialogError::MissingRemoteTag
    );
    // An RFC 2543 peer may omit its From tag: a UAS dialog still works.
    assert!(Dialog::new_uas(p, false).is_ok());
    let mut p = parts(vec![]);
    p.remote_target = Bytes::new();
    assert_eq!(
        Dialog::new_uas(p, false).unwrap_err(),
        DialogError::MissingRemoteTarget
    );
    let mut p = parts(vec![]);
    p.local_tag = Bytes::new();
    assert_eq!(
        Dialog::new_uas(p, false).unwrap_err(),
        DialogError::MissingLocalTag
    );
}

#[test]
fn empty_route_set_targets_remote_target_without_route() {
    let d = Dialog::new_uac(parts(vec![]), false).unwrap();
    assert_eq!(
        d.request_target(),
        RequestTarget {
            request_uri: b("sip:bob@192.0.2.4:5060"),
            route: vec![],
        }
    );
}

#[test]
fn loose_routing_keeps_remote_target_and_full_route_set() {
    // UAS side: its requests visit the Record-Route entries top first.
    let d = Dialog::new_uas(parts(record_route()), false).unwrap();
    let t = d.request_target();
    assert_eq!(t.request_uri, b("sip:bob@192.0.2.4:5060"));
    assert_eq!(t.route, record_route());
}

#[test]
fn strict_routing_puts_first_route_in_request_uri() {
    let rr = vec![
        b("<sip:p2.example.com;lr>"),
        // Strict router (no lr) nearest to us once reversed for the UAC; its URI carries
        // a method parameter and headers that a Request-URI may not have.
        b("<sip:p1.example.com;transport=udp;method=INVITE?Subject=x>;x=y"),
    ];
    let d = Dialog::new_uac(parts(rr), false).unwrap();
    let t = d.request_target();
    assert_eq!(t.request_uri, b("sip:p1.example.com;transport=udp"));
    assert_eq!(
        t.route,
        vec![b("<sip:p2.example.com;lr>"), b("<sip:bob@192.0.2.4:5060>")]
    );
}

#[test]
fn strict_routing_with_single_route() {
    let d = Dialog::new_uas(parts(vec![b("<sip:strict.example.com>")]), false).unwrap();
    let t = d.request_target();
    assert_eq!(t.request_uri, b("sip:strict.example.com"));
    assert_eq!(t.route, vec![b("<sip:bob@192.0.2.4:5060>")]);
}

#[test]
fn lr_in_user_part_or_display_name_is_not_loose_routing() {
    let d = Dialog::new_uas(
        parts(vec![b("\"<sip:x;lr>\" <sip:gw;lr@strict.example.com>")]),
        false,
    )
    .unwrap();
    assert_eq!(
        d.request_target().request_uri,
        b("sip:gw;lr@strict.example.com")
    );
}

#[test]
fn local_cseq_increments_and_uas_starts_at_one() {
    let mut uac = Dialog::new_uac(parts(vec![]), false).unwrap();
    assert_eq!(uac.next_local_cseq(), Ok(315));
    assert_eq!(uac.next_local_cseq(), Ok(316));
    assert_eq!(uac.local_cseq(), Some(316));
    let mut uas = Dialog::new_uas(parts(vec![]), false).unwrap();
    assert_eq!(uas.next_local_cseq(), Ok(1));
    assert_eq!(uas.next_local_cseq(), Ok(2));
    let mut p = parts(vec![]);
    p.cseq = u32::MAX;
    let mut full = Dialog::new_uac(p, false).unwrap();
    assert_eq!(full.next_local_cseq(), Err(DialogError::CSeqExhausted));
    assert_eq!(full.local_cseq(), Some(u32::MAX));
}

#[test]
fn remote_cseq_ordering_and_500() {
    let mut d = Dialog::new_uas(parts(vec![]), false).unwrap();
    // ACK for the INVITE: same number, accepted, no change.
    assert_eq!(d.check_remote_cseq(314, &Method::Ack), Ok(()));
    assert_eq!(d.remote_cseq(), Some(314));
    // In order, possibly with gaps.
    assert_eq!(d.check_remote_cseq(315, &Method::Info), Ok(()));
    assert_eq!(d.check_remote_cseq(320, &Method::Bye), Ok(()));
    assert_eq!(d.remote_cseq(), Some(320));
    // Lower: out of order, answered with 500.
    let err = d.check_remote_cseq(319, &Method::Info).unwrap_err();
    assert_eq!(
        err,
        DialogError::CSeqOutOfOrder {
            received: 319,
            current: 320
        }
    );
    assert_eq!(err.sip_status(), Some(500));
    // Equal on a new request: also out of order.
    assert!(d.check_remote_cseq(320, &Method::Invite).is_err());
    assert_eq!(d.remote_cseq(), Some(320));
    // CANCEL and ACK never move the number and may refer to an earlier request.
    assert_eq!(d.check_remote_cseq(315, &Method::Cancel), Ok(()));
    assert_eq!(
        d.check_remote_cseq(321, &Method::Ack),
        Err(DialogError::UnmatchedCSeq { received: 321 })
    );
    assert_eq!(d.remote_cseq(), Some(320));
}

#[test]
fn uac_remote_cseq_starts_empty() {
    let mut d = Dialog::new_uac(parts(vec![]), false).unwrap();
    assert_eq!(
        d.check_remote_cseq(1, &Method::Ack),
        Err(DialogError::UnmatchedCSeq { received: 1 })
    );
    // The peer's first request sets it, whatever the number.
    assert_eq!(d.check_remote_cseq(9000, &Method::Bye), Ok(()));
    assert_eq!(d.remote_cseq(), Some(9000));
}

#[test]
fn target_refresh_changes_target_not_route_set() {
    let mut d = Dialog::new_uas(parts(record_route()), false).unwrap();
    d.target_refresh(b("sip:bob@198.51.100.7:5070")).unwrap();
    assert_eq!(d.remote_target(), &b("sip:bob@198.51.100.7:5070"));
    assert_eq!(d.route_set(), &record_route()[..]);
    assert_eq!(
        d.request_target().request_uri,
        b("sip:bob@198.51.100.7:5070")
    );
    assert_eq!(
        d.target_refresh(Bytes::new()),
        Err(DialogError::MissingRemoteTarget)
    );
}

#[test]
fn early_confirmed_terminated() {
    let mut d = Dialog::new_uas(parts(vec![]), true).unwrap();
    assert_eq!(d.state(), DialogState::Early);
    d.confirm().unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    d.confirm().unwrap();
    d.terminate();
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(d.confirm(), Err(DialogError::Terminated));
    assert_eq!(
        d.check_remote_cseq(400, &Method::Bye),
        Err(DialogError::Terminated)
    );
    assert_eq!(DialogError::Terminated.sip_status(), Some(481));
    assert_eq!(d.target_refresh(b("sip:x")), Err(DialogError::Terminated));
}

#[test]
fn uac_confirmation_recomputes_route_set_from_2xx() {
    // The 180 came through P1 only; the 2xx Record-Routes P2 and P1.
    let mut d = Dialog::new_uac(parts(vec![b("<sip:p1.example.com;lr>")]), true).unwrap();
    d.confirm_uac(
        vec![b("<sip:p2.example.com;lr>"), b("<sip:p1.example.com;lr>")],
        Some(b("sip:bob@203.0.113.9")),
    )
    .unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(
        d.route_set(),
        &[b("<sip:p1.example.com;lr>"), b("<sip:p2.example.com;lr>")][..]
    );
    assert_eq!(d.remote_target(), &b("sip:bob@203.0.113.9"));
    // A retransmitted 2xx changes nothing once confirmed.
    d.confirm_uac(vec![], Some(b("sip:other"))).unwrap();
    assert_eq!(d.route_set().len(), 2);
    assert_eq!(d.remote_target(), &b("sip:bob@203.0.113.9"));
    let mut uas = Dialog::new_uas(parts(vec![]), true).unwrap();
    assert_eq!(uas.confirm_uac(vec![], None), Err(DialogError::WrongRole));
}

#[test]
fn dialog_set_matches_incoming_requests_and_responses() {
    let mut set = DialogSet::new();
    set.insert(Dialog::new_uac(parts(vec![]), false).unwrap())
        .unwrap();
    assert_eq!(
        set.insert(Dialog::new_uac(parts(vec![]), false).unwrap()),
        Err(DialogError::DuplicateDialog)
    );
    // A BYE from the peer: From tag = their tag, To tag = ours.
    let id = DialogId::for_incoming_request(b("call-1@example.com"), b("rtag"), b("ltag"));
    assert!(set.get(&id).is_some());
    // A response to our re-INVITE: From tag = ours, To tag = theirs.
    let id2 = DialogId::for_incoming_response(b("call-1@example.com"), b("ltag"), b("rtag"));
    assert_eq!(id, id2);
    // Swapped tags or another Call-ID: no match.
    let wrong = DialogId::for_incoming_request(b("call-1@example.com"), b("ltag"), b("rtag"));
    assert!(set.get(&wrong).is_none());
    let wrong = DialogId::for_incoming_request(b("call-2@example.com"), b("rtag"), b("ltag"));
    assert!(set.get(&wrong).is_none());

    set.get_mut(&id).unwrap().terminate();
    let mut other = parts(vec![]);
    other.call_id = b("call-3");
    set.insert(Dialog::new_uas(other, true).unwrap()).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.remove_terminated(), 1);
    assert_eq!(set.len(), 1);
    assert!(set.iter().all(|d| d.state() == DialogState::Early));
    assert!(set
        .remove(&DialogId::new(b("call-3"), b("ltag"), b("rtag")))
        .is_some());
    assert!(set.is_empty());
}
