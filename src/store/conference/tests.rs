//! Conference rooms, the conference log, the live state and the control commands against
//! a temp-dir SQLite: CRUD and constraints with their errors, extension collisions both
//! ways, numbers, PIN hashing and verification, the revision triggers, records and their
//! retention, staleness of the live state, the command round trip.

use super::super::calllog::{delete_calls_before, write_call};
use super::super::model::{
    CallOutcome, CallRecord, Direction, LegKind, LegRecord, NewUser, NumberKind, Password,
};
use super::super::queue_model::{QueueDefinition, QueueKind, QueueSettings};
use super::super::queues::{add_queue, assign_queue_number};
use super::super::repo::{
    add_tenant, add_tenant_number, add_user, lookup_number, remove_tenant, remove_user,
};
use super::super::schema;
use super::*;
use crate::store::conference_model::{
    CommandResult, ConferenceControl, ConferenceLive, ConferenceLiveSnapshot, ConferenceLogFilter,
    ConferenceOrigin, ConferenceRecord, LiveParticipant, LiveParticipantId, ParticipantEnd,
    ParticipantRecord,
};

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn =
        schema::open_writer(&dir.path().join("c.db"), schema::BUSY_TIMEOUT).expect("open");
    schema::migrate(&mut conn).expect("migrate");
    (dir, conn)
}

fn new_user(t: TenantId, ext: &str) -> NewUser {
    NewUser {
        tenant: t,
        name: format!("User {ext}"),
        extension: ext.into(),
        mobile: None,
        sip_username: format!("t{}u{ext}", t.0),
        realm: "sip.example.no".into(),
        password: Password::new("long-enough"),
    }
}

fn user(conn: &Connection, t: TenantId, ext: &str) -> UserId {
    add_user(conn, &new_user(t, ext)).expect("user")
}

fn room(name: &str, ext: &str) -> NewRoom {
    NewRoom::new(name, ext)
}

fn revision(conn: &Connection) -> i64 {
    conference_config_revision(conn).expect("revision")
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

fn invalid_field<T: std::fmt::Debug>(r: Result<T>) -> Field {
    match r {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn duplicate_field<T: std::fmt::Debug>(r: Result<T>) -> Field {
    match r {
        Err(StoreError::Duplicate { field }) => field,
        other => panic!("expected Duplicate, got {other:?}"),
    }
}

fn get(conn: &Connection, id: ConferenceRoomId) -> ConferenceRoom {
    query_rooms(conn, "WHERE r.id = ?1", [id.0])
        .expect("query")
        .pop()
        .expect("room")
}

fn pin(s: &str) -> RoomPin {
    RoomPin::new(s)
}

#[test]
fn rooms_crud_and_constraints() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let kari = user(&conn, acme, "10");
    let per = user(&conn, other, "10");

    let mut r = room("Board", "800");
    r.max_participants = 12;
    r.owner = Some(kari);
    r.end_when_moderator_leaves = true;
    r.locked = true;
    let board = add_room(&mut conn, acme, &r).expect("add");
    let found = find_room(&conn, acme, "BOARD")
        .expect("find")
        .expect("case-insensitive");
    assert_eq!(found.id, board);
    assert_eq!(
        (
            found.name.as_str(),
            found.extension.as_str(),
            found.number.as_deref(),
            found.has_pin,
            found.has_moderator_pin,
            found.max_participants,
            found.owner.as_ref().map(|o| (o.id, o.extension.as_str())),
            found.end_when_moderator_leaves,
            found.locked,
        ),
        (
            "Board",
            "800",
            None,
            false,
            false,
            12,
            Some((kari, "10")),
            true,
            true
        )
    );
    assert_eq!(find_room(&conn, other, "Board").expect("find"), None);
    assert_eq!(
        room_by_extension(&conn, acme, "800")
            .expect("by ext")
            .map(|r| r.id),
        Some(board)
    );
    assert_eq!(
        room_by_extension(&conn, other, "800").expect("by ext"),
        None
    );

    // Names are unique per tenant ignoring case; extensions per tenant.
    assert_eq!(
        duplicate_field(add_room(&mut conn, acme, &room("board", "801"))),
        Field::ConferenceName
    );
    assert_eq!(
        duplicate_field(add_room(&mut conn, acme, &room("Sales", "800"))),
        Field::Extension
    );
    add_room(&mut conn, other, &room("Board", "800")).expect("other tenant");
    assert!(matches!(
        add_room(&mut conn, TenantId(99), &room("X", "900")),
        Err(StoreError::NotFound(Entity::Tenant))
    ));
    // The owner must be a user of the tenant.
    let mut foreign_owner = room("Foreign", "802");
    foreign_owner.owner = Some(per);
    assert!(matches!(
        add_room(&mut conn, acme, &foreign_owner),
        Err(StoreError::NotFound(Entity::User))
    ));

    // Each bad value names its field and creates nothing.
    let before = count(&conn, "conference_rooms");
    let with = |f: fn(&mut NewRoom)| {
        let mut r = room("Bad", "803");
        f(&mut r);
        r
    };
    for (bad, field) in [
        (with(|r| r.name = " Bad".into()), Field::ConferenceName),
        (with(|r| r.extension = "8".into()), Field::Extension),
        (with(|r| r.extension = "80a".into()), Field::Extension),
        (with(|r| r.number = Some("21000000".into())), Field::Number),
        (with(|r| r.max_participants = 1), Field::MaxParticipants),
        (with(|r| r.max_participants = 501), Field::MaxParticipants),
        (with(|r| r.pin = Some(pin("123"))), Field::Pin),
        (with(|r| r.pin = Some(pin("12345678901234"))), Field::Pin),
        (
            with(|r| r.moderator_pin = Some(pin("12x4"))),
            Field::ModeratorPin,
        ),
        (
            with(|r| {
                r.pin = Some(pin("1234"));
                r.moderator_pin = Some(pin("1234"));
            }),
            Field::ModeratorPin,
        ),
    ] {
        assert_eq!(
            invalid_field(add_room(&mut conn, acme, &bad)),
            field,
            "{bad:?}"
        );
    }
    assert_eq!(count(&conn, "conference_rooms"), before);

    // Update: all or nothing.
    let sales = add_room(&mut conn, acme, &room("Sales", "801")).expect("sales");
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            name: Some("Styret".into()),
            extension: Some("810".into()),
            max_participants: Some(500),
            owner: Some(None),
            end_when_moderator_leaves: Some(false),
            locked: Some(false),
            ..RoomChanges::default()
        },
    )
    .expect("update");
    let b = get(&conn, board);
    assert_eq!(
        (
            b.name.as_str(),
            b.extension.as_str(),
            b.max_participants,
            b.owner,
            b.end_when_moderator_leaves,
            b.locked
        ),
        ("Styret", "810", 500, None, false, false)
    );
    let sales_before = get(&conn, sales);
    assert_eq!(
        duplicate_field(update_room(
            &mut conn,
            sales,
            &RoomChanges {
                name: Some("STYRET".into()),
                max_participants: Some(3),
                ..RoomChanges::default()
            }
        )),
        Field::ConferenceName
    );
    assert_eq!(
        invalid_field(update_room(
            &mut conn,
            sales,
            &RoomChanges {
                name: Some("Salg".into()),
                max_participants: Some(0),
                ..RoomChanges::default()
            }
        )),
        Field::MaxParticipants
    );
    assert_eq!(
        get(&conn, sales),
        sales_before,
        "a refused update changes nothing"
    );
    assert!(matches!(
        update_room(&mut conn, ConferenceRoomId(999), &RoomChanges::default()),
        Err(StoreError::NotFound(Entity::Room))
    ));

    let listed: Vec<(String, String)> = list_rooms(&conn, None)
        .expect("list")
        .into_iter()
        .map(|s| (s.tenant_name, s.room.name))
        .collect();
    assert_eq!(
        listed,
        [
            ("Acme".to_owned(), "Sales".to_owned()),
            ("Acme".into(), "Styret".into()),
            ("Other".into(), "Board".into())
        ]
    );
    assert_eq!(list_rooms(&conn, Some(other)).expect("list").len(), 1);
    assert!(matches!(
        list_rooms(&conn, Some(TenantId(99))),
        Err(StoreError::NotFound(Entity::Tenant))
    ));

    remove_room(&conn, sales).expect("remove");
    assert!(matches!(
        remove_room(&conn, sales),
        Err(StoreError::NotFound(Entity::Room))
    ));
    // The owner's removal leaves the room without an owner; the tenant's takes it.
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            owner: Some(Some(kari)),
            ..RoomChanges::default()
        },
    )
    .expect("owner");
    remove_user(&conn, kari).expect("remove user");
    assert_eq!(get(&conn, board).owner, None);
    remove_tenant(&mut conn, acme, true).expect("remove tenant");
    assert_eq!(list_rooms(&conn, None).expect("list").len(), 1);
}

#[test]
fn extensions_collide_with_users_both_ways() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    user(&conn, acme, "10");
    // A room on a user's extension...
    assert_eq!(
        duplicate_field(add_room(&mut conn, acme, &room("Board", "10"))),
        Field::Extension
    );
    let board = add_room(&mut conn, acme, &room("Board", "800")).expect("room");
    assert_eq!(
        duplicate_field(update_room(
            &mut conn,
            board,
            &RoomChanges {
                extension: Some("10".into()),
                ..RoomChanges::default()
            }
        )),
        Field::Extension
    );
    assert_eq!(get(&conn, board).extension, "800");
    // ...and a user on a room's extension.
    assert_eq!(
        duplicate_field(add_user(&conn, &new_user(acme, "800"))),
        Field::Extension
    );
    // Raw SQL cannot move a user onto it either.
    let err = conn
        .execute(
            "UPDATE users SET extension = '800' WHERE extension = '10'",
            [],
        )
        .expect_err("trigger");
    assert!(err.to_string().contains("collides"), "{err}");
    // Other tenants are not concerned.
    user(&conn, other, "800");
    add_room(&mut conn, other, &room("Board", "10")).expect("other tenant's own numbering");
}

#[test]
fn dial_in_numbers() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let u = user(&conn, acme, "10");
    add_tenant_number(&conn, acme, "+4721000001", NumberKind::Main, None).expect("main");
    add_tenant_number(&conn, acme, "+4721000002", NumberKind::User, Some(u)).expect("personal");
    add_tenant_number(&conn, other, "+4721000009", NumberKind::Main, None).expect("other's");
    let q = add_queue(
        &mut conn,
        acme,
        &QueueDefinition {
            name: "Support".into(),
            settings: QueueSettings::defaults(QueueKind::Queue),
            numbers: vec!["+4721000003".into()],
        },
    )
    .expect("queue");

    // A new number is added to the tenant as a conference number.
    let mut r = room("Board", "800");
    r.number = Some("+4721000100".into());
    let board = add_room(&mut conn, acme, &r).expect("room");
    let n = lookup_number(&conn, "+4721000100")
        .expect("lookup")
        .expect("added");
    assert_eq!(
        (n.tenant_id, n.kind, n.conference_id, n.queue_id, n.user_id),
        (acme, NumberKind::Conference, Some(board), None, None)
    );
    assert_eq!(get(&conn, board).number.as_deref(), Some("+4721000100"));
    assert_eq!(
        room_by_number(&conn, "+4721000100")
            .expect("by number")
            .map(|r| r.id),
        Some(board)
    );

    // Numbers that cannot lead to a room, each refused with nothing created.
    let before = count(&conn, "conference_rooms");
    for (number, expect) in [
        ("+4721000009", "dup number"),
        ("+4721000002", "kind"),
        ("+4721000003", "queue"),
        ("+4721000100", "other room"),
    ] {
        let mut r = room("Sales", "801");
        r.number = Some(number.into());
        let res = add_room(&mut conn, acme, &r);
        match expect {
            "dup number" => assert_eq!(duplicate_field(res), Field::Number),
            "kind" => assert_eq!(invalid_field(res), Field::NumberKind),
            _ => assert_eq!(invalid_field(res), Field::Number, "{number}"),
        }
    }
    assert_eq!(count(&conn, "conference_rooms"), before);

    // A main number leading nowhere can; the room's old number stays, leading nowhere.
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            number: Some(Some("+4721000001".into())),
            ..RoomChanges::default()
        },
    )
    .expect("main number");
    assert_eq!(get(&conn, board).number.as_deref(), Some("+4721000001"));
    let old = lookup_number(&conn, "+4721000100")
        .expect("lookup")
        .expect("kept");
    assert_eq!(
        (old.kind, old.conference_id),
        (NumberKind::Conference, None)
    );
    // A queue cannot take a room's number.
    assert_eq!(
        invalid_field(assign_queue_number(&mut conn, acme, "+4721000001", Some(q))),
        Field::Number
    );
    assert_eq!(
        invalid_field(assign_queue_number(&mut conn, acme, "+4721000100", Some(q))),
        Field::NumberKind
    );
    // The schema holds the line too.
    assert!(conn
        .execute(
            "UPDATE tenant_numbers SET queue_id = ?1 WHERE number = '+4721000001'",
            [q.0]
        )
        .is_err());
    assert!(
        conn.execute(
            "UPDATE tenant_numbers SET conference_id = ?1 WHERE number = '+4721000100'",
            [board.0]
        )
        .is_err(),
        "one number per room"
    );

    update_room(
        &mut conn,
        board,
        &RoomChanges {
            number: Some(None),
            ..RoomChanges::default()
        },
    )
    .expect("no number");
    assert_eq!(get(&conn, board).number, None);
    assert_eq!(
        room_by_number(&conn, "+4721000001").expect("by number"),
        None
    );

    // Removing a room leaves its number with the tenant.
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            number: Some(Some("+4721000100".into())),
            ..RoomChanges::default()
        },
    )
    .expect("number again");
    remove_room(&conn, board).expect("remove");
    let n = lookup_number(&conn, "+4721000100")
        .expect("lookup")
        .expect("kept");
    assert_eq!((n.tenant_id, n.conference_id), (acme, None));
}

#[test]
fn pins_are_hashed_and_verified() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let mut r = room("Board", "800");
    r.pin = Some(pin("1234"));
    r.moderator_pin = Some(pin("987654"));
    let board = add_room(&mut conn, acme, &r).expect("room");
    let (p, m): (String, String) = conn
        .query_row(
            "SELECT pin_hash, moderator_pin_hash FROM conference_rooms",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("hashes");
    for h in [&p, &m] {
        assert!(h.starts_with("$argon2id$"), "{h}");
    }
    assert!(!p.contains("1234") && !m.contains("987654"));
    let b = get(&conn, board);
    assert!(b.has_pin && b.has_moderator_pin);

    let check = |conn: &Connection, digits: &str| {
        verify_room_pin(conn, board, &pin(digits)).expect("verify")
    };
    assert_eq!(check(&conn, "1234"), Some(PinRole::Participant));
    assert_eq!(check(&conn, "987654"), Some(PinRole::Moderator));
    for wrong in ["1235", "98765", "", "12#4", "1234567890123"] {
        assert_eq!(check(&conn, wrong), None, "{wrong:?}");
    }
    assert!(matches!(
        verify_room_pin(&conn, ConferenceRoomId(99), &pin("1234")),
        Err(StoreError::NotFound(Entity::Room))
    ));

    // A new PIN equal to the kept other one is refused, and nothing changes.
    assert_eq!(
        invalid_field(update_room(
            &mut conn,
            board,
            &RoomChanges {
                moderator_pin: Some(Some(pin("1234"))),
                ..RoomChanges::default()
            }
        )),
        Field::ModeratorPin
    );
    assert_eq!(
        invalid_field(update_room(
            &mut conn,
            board,
            &RoomChanges {
                pin: Some(Some(pin("987654"))),
                name: Some("Renamed".into()),
                ..RoomChanges::default()
            }
        )),
        Field::Pin
    );
    assert_eq!(get(&conn, board).name, "Board");
    assert_eq!(check(&conn, "987654"), Some(PinRole::Moderator));
    // Swapping both at once is fine.
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            pin: Some(Some(pin("987654"))),
            moderator_pin: Some(Some(pin("1234"))),
            ..RoomChanges::default()
        },
    )
    .expect("swap");
    assert_eq!(check(&conn, "1234"), Some(PinRole::Moderator));
    assert_eq!(check(&conn, "987654"), Some(PinRole::Participant));
    // Removing the PINs.
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            pin: Some(None),
            moderator_pin: Some(None),
            ..RoomChanges::default()
        },
    )
    .expect("clear");
    let b = get(&conn, board);
    assert!(!b.has_pin && !b.has_moderator_pin);
    assert_eq!(check(&conn, "1234"), None);
    // A damaged hash is an error, not a wrong PIN.
    conn.execute("UPDATE conference_rooms SET pin_hash = 'garbage'", [])
        .expect("damage");
    assert!(matches!(
        verify_room_pin(&conn, board, &pin("1234")),
        Err(StoreError::BadRow {
            column: "conference_rooms.pin_hash"
        })
    ));
}

#[test]
fn revision_follows_rooms_and_their_numbers() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let u = user(&conn, acme, "10");
    let r0 = revision(&conn);
    assert_eq!(
        load_rooms(&conn).expect("load"),
        RoomsSnapshot {
            revision: r0,
            rooms: vec![]
        }
    );

    let mut r = room("Board", "800");
    r.owner = Some(u);
    r.pin = Some(pin("1234"));
    let board = add_room(&mut conn, acme, &r).expect("room");
    let r1 = revision(&conn);
    assert!(r1 > r0, "add");
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            locked: Some(true),
            ..RoomChanges::default()
        },
    )
    .expect("lock");
    let r2 = revision(&conn);
    assert!(r2 > r1, "update");
    update_room(
        &mut conn,
        board,
        &RoomChanges {
            number: Some(Some("+4721000100".into())),
            ..RoomChanges::default()
        },
    )
    .expect("number");
    let r3 = revision(&conn);
    assert!(r3 > r2, "number");
    // Numbers that do not lead to a room do not concern the rooms.
    add_tenant_number(&conn, acme, "+4721000001", NumberKind::Main, None).expect("main");
    assert_eq!(revision(&conn), r3);
    // The owner's removal changes the room (SET NULL is an update).
    remove_user(&conn, u).expect("remove user");
    let r4 = revision(&conn);
    assert!(r4 > r3, "owner removed");

    let snap = load_rooms(&conn).expect("load");
    assert_eq!(snap.revision, r4);
    assert_eq!(snap.rooms.len(), 1);
    let b = &snap.rooms[0];
    assert_eq!(
        (
            b.id,
            b.number.as_deref(),
            b.has_pin,
            b.has_moderator_pin,
            b.locked,
            b.owner.clone()
        ),
        (board, Some("+4721000100"), true, false, true, None)
    );
    remove_room(&conn, board).expect("remove");
    assert!(revision(&conn) > r4, "remove");
    assert!(load_rooms(&conn).expect("load").rooms.is_empty());
}

fn call_with_leg(tenant: TenantId, sip_call_id: &str, started: i64) -> CallRecord {
    CallRecord {
        tenant: Some(tenant),
        direction: Direction::Inbound,
        caller_number: "+4790000001".into(),
        caller_name: None,
        callee_number: "+4721000100".into(),
        callee_name: None,
        started_at_ms: started,
        answered_at_ms: Some(started),
        ended_at_ms: started + 60_000,
        outcome: CallOutcome::Answered,
        answered_by: None,
        forward_reason: None,
        end_reason: None,
        sip_call_ids: vec![sip_call_id.into()],
        users: vec![],
        legs: vec![LegRecord {
            user: None,
            kind: LegKind::Inbound,
            target: "sip:+4721000100@192.0.2.1".into(),
            sip_call_id: sip_call_id.into(),
            started_at_ms: started,
            answered_at_ms: Some(started),
            ended_at_ms: started + 60_000,
            outcome: CallOutcome::Answered,
            status_code: Some(200),
        }],
        media: vec![],
        queue_visits: vec![],
    }
}

fn stay(
    sip: Option<&str>,
    user: Option<UserId>,
    number: &str,
    joined: i64,
    end: ParticipantEnd,
) -> ParticipantRecord {
    ParticipantRecord {
        sip_call_id: sip.map(str::to_owned),
        user,
        number: number.into(),
        name: Some(format!("Caller {number}")),
        moderator: user.is_some(),
        joined_at_ms: joined,
        left_at_ms: joined + 1_000,
        end,
    }
}

#[test]
fn conference_log_links_calls_lists_and_expires() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let kari = user(&conn, acme, "10");
    let ola = user(&conn, acme, "11");
    let board = add_room(&mut conn, acme, &room("Board", "800")).expect("room");

    // The call of the first participant is written before the conference, the second's
    // after it: both end up linked.
    let early = write_call(&mut conn, &call_with_leg(acme, "early@carrier", 1_000)).expect("call");
    let conf = write_conference(
        &mut conn,
        &ConferenceRecord {
            tenant: acme,
            origin: ConferenceOrigin::Room {
                room: board,
                name: "Board".into(),
            },
            started_at_ms: 1_000,
            ended_at_ms: 90_000,
            participants: vec![
                stay(
                    Some("early@carrier"),
                    None,
                    "+4790000001",
                    1_000,
                    ParticipantEnd::Left,
                ),
                stay(
                    Some("late@sb"),
                    Some(kari),
                    "10",
                    2_000,
                    ParticipantEnd::Kicked,
                ),
                stay(None, Some(ola), "11\u{7}", 3_000, ParticipantEnd::RoomEnded),
            ],
        },
    )
    .expect("conference");
    let late = write_call(&mut conn, &call_with_leg(acme, "late@sb", 2_000)).expect("call");
    let adhoc = write_conference(
        &mut conn,
        &ConferenceRecord {
            tenant: acme,
            origin: ConferenceOrigin::AdHoc,
            started_at_ms: 100_000,
            ended_at_ms: 200_000,
            participants: vec![stay(
                None,
                Some(ola),
                "11",
                100_000,
                ParticipantEnd::RoomEnded,
            )],
        },
    )
    .expect("ad hoc");
    assert!(matches!(
        write_conference(
            &mut conn,
            &ConferenceRecord {
                tenant: TenantId(99),
                origin: ConferenceOrigin::AdHoc,
                started_at_ms: 0,
                ended_at_ms: 1,
                participants: vec![],
            }
        ),
        Err(StoreError::NotFound(Entity::Tenant))
    ));

    let filter = |room, user, since_ms, limit| ConferenceLogFilter {
        tenant: acme,
        room,
        user,
        since_ms,
        limit,
    };
    let all = list_conferences(&conn, &filter(None, None, None, 10)).expect("list");
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        [adhoc, conf],
        "newest first"
    );
    let c = &all[1];
    assert_eq!(
        (
            c.room_id,
            c.room_name.as_deref(),
            c.ad_hoc,
            c.started_at_ms,
            c.ended_at_ms
        ),
        (Some(board), Some("Board"), false, 1_000, 90_000)
    );
    let linked: Vec<_> = c.participants.iter().map(|p| p.call_id).collect();
    assert_eq!(linked, [Some(early), Some(late), None]);
    let p = &c.participants[1];
    assert_eq!(
        (
            p.user.as_ref().map(|u| u.extension.as_str()),
            p.number.as_str(),
            p.moderator,
            p.joined_at_ms,
            p.left_at_ms,
            p.end
        ),
        (Some("10"), "10", true, 2_000, 3_000, ParticipantEnd::Kicked)
    );
    assert_eq!(
        c.participants[2].number, "11",
        "text from the network is cleaned"
    );
    assert_eq!(
        (all[0].ad_hoc, all[0].room_id, all[0].room_name.as_deref()),
        (true, None, None)
    );

    let ids = |conn: &Connection, f| {
        list_conferences(conn, &f)
            .expect("list")
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&conn, filter(Some(board), None, None, 10)), [conf]);
    assert_eq!(ids(&conn, filter(None, Some(kari), None, 10)), [conf]);
    assert_eq!(ids(&conn, filter(None, Some(ola), None, 10)), [adhoc, conf]);
    assert_eq!(ids(&conn, filter(None, None, Some(50_000), 10)), [adhoc]);
    assert_eq!(ids(&conn, filter(None, None, None, 1)), [adhoc]);
    assert!(list_conferences(
        &conn,
        &ConferenceLogFilter {
            tenant: other,
            ..filter(None, None, None, 10)
        }
    )
    .expect("other")
    .is_empty());
    assert!(matches!(
        list_conferences(
            &conn,
            &ConferenceLogFilter {
                tenant: TenantId(99),
                ..filter(None, None, None, 10)
            }
        ),
        Err(StoreError::NotFound(Entity::Tenant))
    ));

    // The room's and a user's removal keep the record, with the room's name.
    remove_user(&conn, kari).expect("remove user");
    remove_room(&conn, board).expect("remove room");
    let c = list_conferences(&conn, &filter(None, None, None, 10))
        .expect("list")
        .pop()
        .expect("kept");
    assert_eq!((c.room_id, c.room_name.as_deref()), (None, Some("Board")));
    assert_eq!(c.participants[1].user, None);

    // Retention goes with the call log's: older conferences (and their participants)
    // and commands go, newer ones stay.
    let keep = add_room(&mut conn, acme, &room("Keep", "801")).expect("room");
    send_conference_command(&conn, keep, ConferenceControl::Lock, 5_000).expect("old command");
    send_conference_command(&conn, keep, ConferenceControl::Lock, 150_000).expect("new command");
    assert_eq!(
        delete_calls_before(&mut conn, 50_000).expect("retention"),
        2
    );
    assert_eq!(ids(&conn, filter(None, None, None, 10)), [adhoc]);
    assert_eq!(count(&conn, "conference_participants"), 1);
    assert_eq!(count(&conn, "conference_commands"), 1);
}

fn live_room(room: ConferenceRoomId, ids: &[u32]) -> ConferenceLive {
    ConferenceLive {
        room,
        locked: false,
        started_at_ms: 1_000,
        participants: ids
            .iter()
            .map(|&i| LiveParticipant {
                id: LiveParticipantId(i),
                user: None,
                number: format!("+47900000{i:02}"),
                name: None,
                joined_at_ms: 1_000 + i64::from(i),
                muted: i % 2 == 0,
                talking: i == 1,
                moderator: false,
            })
            .collect(),
    }
}

#[test]
fn live_state_is_replaced_and_stamped() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let kari = user(&conn, acme, "10");
    let board = add_room(&mut conn, acme, &room("Board", "800")).expect("room");
    let sales = add_room(&mut conn, acme, &room("Sales", "801")).expect("room");
    let theirs = add_room(&mut conn, other, &room("Board", "800")).expect("room");

    // Never written: no time, nothing running.
    let snap = conference_live(&conn, acme, None).expect("live");
    assert_eq!(snap, ConferenceLiveSnapshot::default());

    let mut b = live_room(board, &[2, 1, 1]);
    b.locked = true;
    b.participants[0].user = Some(kari);
    b.participants[0].moderator = true;
    b.participants[1].name = Some("Ola\r\nNordmann".into());
    write_conference_live(
        &mut conn,
        5_000,
        &[
            b,
            live_room(theirs, &[1]),
            live_room(ConferenceRoomId(99), &[1]),
        ],
    )
    .expect("write");
    let snap = conference_live(&conn, acme, None).expect("live");
    assert_eq!(snap.updated_at_ms, Some(5_000));
    assert_eq!(
        snap.rooms.len(),
        1,
        "other tenants' and unknown rooms are not listed"
    );
    let r = &snap.rooms[0];
    assert_eq!((r.room, r.locked, r.started_at_ms), (board, true, 1_000));
    let got: Vec<(u32, Option<UserId>, bool, bool, bool)> = r
        .participants
        .iter()
        .map(|p| (p.id.0, p.user, p.muted, p.talking, p.moderator))
        .collect();
    assert_eq!(
        got,
        [
            (1, None, false, true, false),
            (2, Some(kari), true, false, true)
        ],
        "by id; the duplicate id kept its first row"
    );
    assert_eq!(r.participants[0].name.as_deref(), Some("Ola  Nordmann"));
    assert_eq!(
        conference_live(&conn, acme, Some(sales))
            .expect("one room")
            .rooms,
        []
    );
    assert_eq!(
        conference_live(&conn, other, Some(theirs))
            .expect("theirs")
            .rooms
            .len(),
        1
    );

    // The next write replaces everything, and is stamped even when nothing runs.
    write_conference_live(&mut conn, 6_000, &[live_room(sales, &[7])]).expect("write");
    let snap = conference_live(&conn, acme, None).expect("live");
    assert_eq!(
        (
            snap.updated_at_ms,
            snap.rooms.iter().map(|r| r.room).collect::<Vec<_>>()
        ),
        (Some(6_000), vec![sales])
    );
    write_conference_live(&mut conn, 7_000, &[]).expect("write");
    let snap = conference_live(&conn, acme, None).expect("live");
    assert_eq!((snap.updated_at_ms, snap.rooms.len()), (Some(7_000), 0));
    assert_eq!(count(&conn, "conference_live_participants"), 0);
    assert!(matches!(
        conference_live(&conn, TenantId(99), None),
        Err(StoreError::NotFound(Entity::Tenant))
    ));
}

#[test]
fn command_round_trip_and_expiry() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let board = add_room(&mut conn, acme, &room("Board", "800")).expect("room");
    let t0 = 1_000_000;
    assert!(pending_conference_commands(&mut conn, t0)
        .expect("poll")
        .is_empty());

    // Sent, taken once, answered.
    let mute = send_conference_command(
        &conn,
        board,
        ConferenceControl::Mute(LiveParticipantId(3)),
        t0,
    )
    .expect("send");
    let status = conference_command(&conn, mute).expect("status");
    assert_eq!(
        (
            status.control,
            status.taken_at_ms,
            status.done_at_ms,
            status.result
        ),
        (
            ConferenceControl::Mute(LiveParticipantId(3)),
            None,
            None,
            None
        )
    );
    let taken = pending_conference_commands(&mut conn, t0 + 500).expect("poll");
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (
            taken[0].id,
            taken[0].room,
            taken[0].tenant,
            taken[0].control,
            taken[0].created_at_ms
        ),
        (
            mute,
            board,
            acme,
            ConferenceControl::Mute(LiveParticipantId(3)),
            t0
        )
    );
    assert!(
        pending_conference_commands(&mut conn, t0 + 600)
            .expect("poll")
            .is_empty(),
        "taken once"
    );
    // The CLI giving up now cannot expire it: the daemon has it and will answer.
    let s = expire_conference_command(&conn, mute, t0 + 700).expect("expire");
    assert_eq!((s.taken_at_ms, s.result), (Some(t0 + 500), None));
    assert!(finish_conference_command(&conn, mute, CommandResult::Done, t0 + 800).expect("finish"));
    assert!(
        !finish_conference_command(&conn, mute, CommandResult::Failed, t0 + 900).expect("again"),
        "answered once"
    );
    let s = conference_command(&conn, mute).expect("status");
    assert_eq!(
        (s.done_at_ms, s.result),
        (Some(t0 + 800), Some(CommandResult::Done))
    );

    // Expired before the daemon took it: never applied.
    let lock = send_conference_command(&conn, board, ConferenceControl::Lock, t0).expect("send");
    let s = expire_conference_command(&conn, lock, t0 + 5_000).expect("expire");
    assert_eq!(
        (s.done_at_ms, s.result),
        (Some(t0 + 5_000), Some(CommandResult::Expired))
    );
    assert!(pending_conference_commands(&mut conn, t0 + 5_100)
        .expect("poll")
        .is_empty());
    assert!(
        !finish_conference_command(&conn, lock, CommandResult::Done, t0 + 5_200).expect("late")
    );

    // Left behind by a CLI that died: a daemon polling later than the maximum age
    // expires it instead of applying it.
    let kick = send_conference_command(
        &conn,
        board,
        ConferenceControl::Kick(LiveParticipantId(1)),
        t0,
    )
    .expect("send");
    let fresh =
        send_conference_command(&conn, board, ConferenceControl::Unlock, t0 + 9_000).expect("send");
    let taken = pending_conference_commands(&mut conn, t0 + COMMAND_MAX_AGE_MS + 1).expect("poll");
    assert_eq!(taken.iter().map(|c| c.id).collect::<Vec<_>>(), [fresh]);
    assert_eq!(
        conference_command(&conn, kick).expect("status").result,
        Some(CommandResult::Expired)
    );

    // Unknown rooms and commands; a removed room takes its commands.
    assert!(matches!(
        send_conference_command(&conn, ConferenceRoomId(99), ConferenceControl::Lock, t0),
        Err(StoreError::NotFound(Entity::Room))
    ));
    remove_room(&conn, board).expect("remove");
    assert!(matches!(
        conference_command(&conn, fresh),
        Err(StoreError::NotFound(Entity::ConferenceCommand))
    ));
    assert!(!finish_conference_command(&conn, fresh, CommandResult::Done, t0).expect("gone"));
    // The schema refuses a participant where none belongs, and none where one does.
    let keep = add_room(&mut conn, acme, &room("Keep", "801")).expect("room");
    let insert = |action: &str, participant: Option<i64>| {
        conn.execute(
            "INSERT INTO conference_commands (room_id, action, participant_id, created_at_ms)
             VALUES (?1, ?2, ?3, 0)",
            params![keep.0, action, participant],
        )
    };
    assert!(insert("lock", Some(1)).is_err());
    assert!(insert("kick", None).is_err());
    assert!(insert("kick", Some(1)).is_ok());
}
