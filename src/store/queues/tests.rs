//! Queue provisioning against a temp-dir SQLite: CRUD, the constraints and their
//! errors, the configuration snapshot and the revision triggers.

use super::super::model::NewUser;
use super::super::repo::{
    add_tenant, add_tenant_number, add_user, find_tenant, list_tenant_numbers, lookup_number,
    remove_tenant, remove_user, route_number,
};
use super::super::{schema, Password};
use super::*;

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn =
        schema::open_writer(&dir.path().join("q.db"), schema::BUSY_TIMEOUT).expect("open");
    schema::migrate(&mut conn).expect("migrate");
    (dir, conn)
}

fn user(conn: &Connection, t: TenantId, ext: &str) -> UserId {
    add_user(
        conn,
        &NewUser {
            tenant: t,
            name: format!("User {ext}"),
            extension: ext.into(),
            mobile: None,
            sip_username: format!("t{}u{ext}", t.0),
            realm: "sip.example.no".into(),
            password: Password::new("long-enough"),
        },
    )
    .expect("user")
}

fn def(name: &str) -> QueueDefinition {
    QueueDefinition {
        name: name.into(),
        settings: QueueSettings::defaults(QueueKind::Queue),
        numbers: vec![],
    }
}

fn revision(conn: &Connection) -> i64 {
    queue_config_revision(conn).expect("revision")
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

#[test]
fn queues_crud_and_constraints() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let mut d = def("Support");
    d.settings.max_wait_s = Some(120);
    d.settings.greeting = Some("queue/welcome".into());
    let support = add_queue(&mut conn, acme, &d).expect("add");
    let q = find_queue(&conn, acme, "SUPPORT")
        .expect("find")
        .expect("case-insensitive");
    assert_eq!((q.id, q.name.as_str()), (support, "Support"));
    assert_eq!(q.settings, d.settings);
    assert_eq!(find_queue(&conn, other, "Support").expect("find"), None);

    // Same name in the tenant (any case) is taken; in another tenant it is not.
    assert!(matches!(
        add_queue(&mut conn, acme, &def("support")),
        Err(StoreError::Duplicate {
            field: Field::QueueName
        })
    ));
    add_queue(&mut conn, other, &def("Support")).expect("other tenant");
    assert!(matches!(
        add_queue(&mut conn, TenantId(99), &def("X")),
        Err(StoreError::NotFound(Entity::Tenant))
    ));

    // Each bad setting names its field and creates nothing.
    let before = count(&conn, "queues");
    let mut bad = def("Bad");
    bad.settings.ring_timeout_s = 0;
    assert_eq!(
        invalid_field(add_queue(&mut conn, acme, &bad)),
        Field::RingTimeout
    );
    let mut bad = def("Bad");
    bad.settings.greeting = Some("Not A Prompt".into());
    assert_eq!(
        invalid_field(add_queue(&mut conn, acme, &bad)),
        Field::Greeting
    );
    let mut bad = def(" Bad");
    bad.numbers = vec!["+4721000099".into()];
    assert_eq!(
        invalid_field(add_queue(&mut conn, acme, &bad)),
        Field::QueueName
    );
    let mut bad = def("Bad");
    bad.numbers = vec!["21000099".into()];
    assert_eq!(
        invalid_field(add_queue(&mut conn, acme, &bad)),
        Field::Number
    );
    assert_eq!(count(&conn, "queues"), before);

    // Update: rename, new settings, an answer group now.
    let mut changed = def("Kundeservice");
    changed.settings = QueueSettings::defaults(QueueKind::Group);
    changed.settings.announce_every_s = Some(30);
    update_queue(&mut conn, support, &changed).expect("update");
    let q = queue_by_id(&conn, support).expect("by id");
    assert_eq!(
        (q.name.as_str(), &q.settings),
        ("Kundeservice", &changed.settings)
    );
    let sales = add_queue(&mut conn, acme, &def("Sales")).expect("sales");
    assert!(matches!(
        update_queue(&mut conn, sales, &def("KUNDESERVICE")),
        Err(StoreError::Duplicate {
            field: Field::QueueName
        })
    ));
    assert!(matches!(
        update_queue(&mut conn, QueueId(999), &def("X")),
        Err(StoreError::NotFound(Entity::Queue))
    ));

    let listed: Vec<(String, String)> = list_queues(&conn, None)
        .expect("list")
        .into_iter()
        .map(|s| (s.tenant_name, s.queue.name))
        .collect();
    assert_eq!(
        listed,
        [
            ("Acme".to_owned(), "Kundeservice".to_owned()),
            ("Acme".to_owned(), "Sales".to_owned()),
            ("Other".to_owned(), "Support".to_owned()),
        ]
    );
    assert_eq!(list_queues(&conn, Some(other)).expect("list").len(), 1);
    assert!(matches!(
        list_queues(&conn, Some(TenantId(99))),
        Err(StoreError::NotFound(Entity::Tenant))
    ));
}

#[test]
fn numbers_lead_to_queues() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    add_tenant_number(&conn, acme, "+4721000000", NumberKind::Main, None).expect("main");
    add_tenant_number(&conn, acme, "+4721000010", NumberKind::User, None).expect("user number");
    add_tenant_number(&conn, other, "+4722000000", NumberKind::Main, None).expect("other's");

    // An owned main number is assigned, a new one is added as a queue number.
    let mut d = def("Main");
    d.numbers = vec!["+4721000000".into(), "+4721000001".into()];
    let main = add_queue(&mut conn, acme, &d).expect("add");
    let (n, user) = route_number(&conn, "+4721000000")
        .expect("route")
        .expect("owned");
    assert_eq!(
        (n.kind, n.queue_id, user),
        (NumberKind::Main, Some(main), None)
    );
    let n = lookup_number(&conn, "+4721000001")
        .expect("lookup")
        .expect("added");
    assert_eq!(
        (n.tenant_id, n.kind, n.queue_id),
        (acme, NumberKind::Queue, Some(main))
    );

    // A personal number or another tenant's number is refused, and the queue is not
    // created either.
    let mut d = def("Nope");
    d.numbers = vec!["+4721000010".into()];
    assert_eq!(
        invalid_field(add_queue(&mut conn, acme, &d)),
        Field::NumberKind
    );
    d.numbers = vec!["+4722000000".into()];
    assert!(matches!(
        add_queue(&mut conn, acme, &d),
        Err(StoreError::Duplicate {
            field: Field::Number
        })
    ));
    assert_eq!(find_queue(&conn, acme, "Nope").expect("find"), None);

    // assign_queue_number: only owned main/queue numbers, only the tenant's queues.
    let sales = add_queue(&mut conn, acme, &def("Sales")).expect("sales");
    let theirs = add_queue(&mut conn, other, &def("Theirs")).expect("theirs");
    assign_queue_number(&mut conn, acme, "+4721000000", Some(sales)).expect("move");
    assert_eq!(
        lookup_number(&conn, "+4721000000")
            .expect("lookup")
            .and_then(|n| n.queue_id),
        Some(sales)
    );
    assert!(matches!(
        assign_queue_number(&mut conn, acme, "+4799999999", Some(sales)),
        Err(StoreError::NotFound(Entity::Number))
    ));
    assert!(matches!(
        assign_queue_number(&mut conn, acme, "+4721000000", Some(theirs)),
        Err(StoreError::NotFound(Entity::Queue))
    ));
    assert_eq!(
        invalid_field(assign_queue_number(
            &mut conn,
            acme,
            "+4721000010",
            Some(sales)
        )),
        Field::NumberKind
    );
    assign_queue_number(&mut conn, acme, "+4721000000", None).expect("unassign");
    assert_eq!(
        lookup_number(&conn, "+4721000000")
            .expect("lookup")
            .and_then(|n| n.queue_id),
        None
    );

    // add_queue_number (tenant number add --queue).
    add_queue_number(&mut conn, acme, "+4721000002", NumberKind::Queue, sales).expect("add");
    assert_eq!(
        invalid_field(add_queue_number(
            &mut conn,
            acme,
            "+4721000003",
            NumberKind::User,
            sales
        )),
        Field::NumberKind
    );
    assert!(matches!(
        add_queue_number(&mut conn, acme, "+4721000003", NumberKind::Queue, theirs),
        Err(StoreError::NotFound(Entity::Queue))
    ));

    // Removing a queue leaves its numbers with the tenant, leading nowhere.
    remove_queue(&mut conn, main, false).expect("remove");
    let n = lookup_number(&conn, "+4721000001")
        .expect("lookup")
        .expect("kept");
    assert_eq!(n.queue_id, None);
    let numbers = list_tenant_numbers(&conn, acme).expect("numbers");
    assert_eq!(numbers.len(), 4);
}

#[test]
fn members_same_tenant_ordered() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let q = add_queue(&mut conn, acme, &def("Support")).expect("queue");
    let u10 = user(&conn, acme, "10");
    let u11 = user(&conn, acme, "11");
    let u12 = user(&conn, acme, "12");
    let stranger = user(&conn, other, "10");

    assert!(add_member(&mut conn, q, u10, None, None).expect("add"));
    assert!(add_member(&mut conn, q, u11, None, Some(15)).expect("add"));
    assert!(add_member(&mut conn, q, u12, Some(0), None).expect("add first"));
    let order: Vec<(String, u32, Option<u32>)> = list_members(&conn, q)
        .expect("members")
        .into_iter()
        .map(|m| (m.extension, m.position, m.ring_timeout_s))
        .collect();
    assert_eq!(
        order,
        [
            ("12".to_owned(), 0, None),
            ("10".to_owned(), 1, None),
            ("11".to_owned(), 2, Some(15)),
        ]
    );
    // Again: an update (position changes, ring time kept when not given).
    assert!(!add_member(&mut conn, q, u11, Some(9), None).expect("update"));
    let m = list_members(&conn, q).expect("members");
    assert_eq!((m[2].position, m[2].ring_timeout_s), (9, Some(15)));

    assert!(matches!(
        add_member(&mut conn, q, stranger, None, None),
        Err(StoreError::NotFound(Entity::User))
    ));
    assert_eq!(
        invalid_field(add_member(&mut conn, q, u10, None, Some(0))),
        Field::RingTimeout
    );
    assert_eq!(
        invalid_field(add_member(&mut conn, q, u10, Some(100_001), None)),
        Field::Position
    );
    assert!(matches!(
        add_member(&mut conn, QueueId(99), u10, None, None),
        Err(StoreError::NotFound(Entity::Queue))
    ));
    remove_member(&conn, q, u10).expect("remove");
    assert!(matches!(
        remove_member(&conn, q, u10),
        Err(StoreError::NotFound(Entity::Member))
    ));
    // Removing a user takes the membership with it.
    remove_user(&conn, u12).expect("remove user");
    assert_eq!(list_members(&conn, q).expect("members").len(), 1);
}

#[test]
fn overflow_rules_and_removal_of_a_target() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let a = add_queue(&mut conn, acme, &def("A")).expect("a");
    let b = add_queue(&mut conn, acme, &def("B")).expect("b");
    let theirs = add_queue(&mut conn, other, &def("Theirs")).expect("theirs");
    let u = user(&conn, acme, "10");
    let stranger = user(&conn, other, "10");
    let rule = |condition, target| OverflowRule { condition, target };

    assert_eq!(
        invalid_field(set_overflow_rule(
            &mut conn,
            a,
            &rule(OverflowCondition::MaxWait, OverflowTarget::Queue(a))
        )),
        Field::OverflowTarget
    );
    assert!(matches!(
        set_overflow_rule(
            &mut conn,
            a,
            &rule(OverflowCondition::MaxWait, OverflowTarget::Queue(theirs))
        ),
        Err(StoreError::NotFound(Entity::Queue))
    ));
    assert!(matches!(
        set_overflow_rule(
            &mut conn,
            a,
            &rule(OverflowCondition::Full, OverflowTarget::User(stranger))
        ),
        Err(StoreError::NotFound(Entity::User))
    ));
    assert_eq!(
        invalid_field(set_overflow_rule(
            &mut conn,
            a,
            &rule(
                OverflowCondition::Full,
                OverflowTarget::Number("12345".into())
            )
        )),
        Field::OverflowTarget
    );
    assert_eq!(
        invalid_field(set_overflow_rule(
            &mut conn,
            a,
            &rule(
                OverflowCondition::Closed,
                OverflowTarget::Announcement(Some("../etc".into()))
            )
        )),
        Field::OverflowTarget
    );
    assert_eq!(count(&conn, "queue_overflow"), 0, "nothing written");

    for r in [
        rule(
            OverflowCondition::Closed,
            OverflowTarget::Announcement(None),
        ),
        rule(
            OverflowCondition::MaxWait,
            OverflowTarget::Number("+4790000000".into()),
        ),
        rule(OverflowCondition::MaxWait, OverflowTarget::Queue(b)),
        rule(OverflowCondition::NoAgents, OverflowTarget::User(u)),
        rule(
            OverflowCondition::Full,
            OverflowTarget::Announcement(Some("queue/all-busy".into())),
        ),
    ] {
        set_overflow_rule(&mut conn, a, &r).expect("set");
    }
    let details = queue_details(&conn, a).expect("details");
    let shown: Vec<(OverflowCondition, &str)> = details
        .overflow
        .iter()
        .map(|i| (i.rule.condition, i.target_label.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (OverflowCondition::MaxWait, "queue B"),
            (OverflowCondition::Full, "announcement queue/all-busy"),
            (OverflowCondition::NoAgents, "user 10 (User 10)"),
            (OverflowCondition::Closed, "announcement (default)"),
        ],
        "the second max-wait rule replaced the first"
    );
    assert_eq!(
        queue_details(&conn, b).expect("b").referred_by,
        [("A".to_owned(), OverflowCondition::MaxWait)]
    );

    // B is A's target: refused with a message naming A; forced, A's rule goes too.
    match remove_queue(&mut conn, b, false) {
        Err(e @ StoreError::QueueInUse { .. }) => {
            assert_eq!(
                e.to_string(),
                "queue is the overflow target of queue \"A\" (max-wait); change those \
                 rules first or force"
            );
        }
        other => panic!("expected QueueInUse, got {other:?}"),
    }
    assert!(queue_by_id(&conn, b).is_ok(), "not removed");
    remove_queue(&mut conn, b, true).expect("forced");
    let left: Vec<OverflowCondition> = queue_details(&conn, a)
        .expect("a")
        .overflow
        .iter()
        .map(|i| i.rule.condition)
        .collect();
    assert_eq!(
        left,
        [
            OverflowCondition::Full,
            OverflowCondition::NoAgents,
            OverflowCondition::Closed
        ]
    );
    assert!(clear_overflow_rule(&conn, a, OverflowCondition::Full).expect("clear"));
    assert!(!clear_overflow_rule(&conn, a, OverflowCondition::Full).expect("again"));
    // A queue overflowing to itself is impossible, so removing A needs no force.
    remove_queue(&mut conn, a, false).expect("remove a");
    assert_eq!(count(&conn, "queue_overflow"), 0);
}

#[test]
fn hours_and_holidays() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let q = add_queue(&mut conn, acme, &def("Support")).expect("queue");
    let h = |weekday, open_min, close_min| WeeklyHours {
        weekday,
        open_min,
        close_min,
    };
    let christmas = QueueHoliday {
        date: LocalDate::new(2024, 12, 24).expect("date"),
        open: Some((540, 720)),
    };
    // Always open: a holiday would close every other day, so it is refused.
    assert_eq!(
        invalid_field(add_holiday(&mut conn, q, &christmas)),
        Field::Hours
    );

    let week: Vec<WeeklyHours> = (0..5).map(|d| h(d, 480, 960)).collect();
    set_weekly_hours(&mut conn, q, &week).expect("hours");
    add_holiday(&mut conn, q, &christmas).expect("holiday");
    let closed = QueueHoliday {
        date: LocalDate::new(2024, 12, 25).expect("date"),
        open: None,
    };
    add_holiday(&mut conn, q, &closed).expect("closed day");
    // Same date again: replaced.
    let shorter = QueueHoliday {
        open: Some((540, 660)),
        ..christmas
    };
    add_holiday(&mut conn, q, &shorter).expect("replace");
    assert_eq!(
        invalid_field(add_holiday(
            &mut conn,
            q,
            &QueueHoliday {
                open: Some((700, 600)),
                ..christmas
            }
        )),
        Field::Hours
    );
    let d = queue_details(&conn, q).expect("details");
    assert_eq!(d.weekly, week);
    assert_eq!(d.holidays, [shorter, closed]);

    // Overlapping ranges are refused and leave the hours as they were.
    assert_eq!(
        invalid_field(set_weekly_hours(
            &mut conn,
            q,
            &[h(0, 480, 720), h(0, 600, 900)]
        )),
        Field::Hours
    );
    assert_eq!(queue_details(&conn, q).expect("details").weekly, week);

    remove_holiday(&conn, q, closed.date).expect("remove");
    assert!(matches!(
        remove_holiday(&conn, q, closed.date),
        Err(StoreError::NotFound(Entity::Holiday))
    ));
    // Always open again: the holidays go too.
    set_weekly_hours(&mut conn, q, &[]).expect("always");
    let d = queue_details(&conn, q).expect("details");
    assert!(d.weekly.is_empty() && d.holidays.is_empty());
}

#[test]
fn vip_tenant_settings_and_presence() {
    let (_d, conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let t = find_tenant(&conn, "Acme").expect("find").expect("exists");
    assert_eq!(
        (t.time_zone.as_str(), t.queue_retention_days),
        ("Europe/Oslo", 90)
    );

    add_vip(&conn, acme, "+4790000001", Some("CEO")).expect("vip");
    add_vip(&conn, acme, "+4790000000", None).expect("vip");
    assert!(matches!(
        add_vip(&conn, acme, "+4790000001", None),
        Err(StoreError::Duplicate {
            field: Field::VipNumber
        })
    ));
    assert_eq!(
        invalid_field(add_vip(&conn, acme, "90000001", None)),
        Field::VipNumber
    );
    assert!(matches!(
        add_vip(&conn, TenantId(99), "+4790000009", None),
        Err(StoreError::NotFound(Entity::Tenant))
    ));
    assert_eq!(
        list_vips(&conn, acme).expect("list"),
        [
            VipNumber {
                number: "+4790000000".into(),
                note: None
            },
            VipNumber {
                number: "+4790000001".into(),
                note: Some("CEO".into())
            },
        ]
    );
    remove_vip(&conn, acme, "+4790000000").expect("remove");
    assert!(matches!(
        remove_vip(&conn, acme, "+4790000000"),
        Err(StoreError::NotFound(Entity::Vip))
    ));

    let set = |tz: Option<&str>, days: Option<u32>| TenantSettings {
        time_zone: tz.map(str::to_owned),
        queue_retention_days: days,
    };
    set_tenant_settings(&conn, acme, &set(Some("America/New_York"), None)).expect("tz");
    set_tenant_settings(&conn, acme, &set(None, Some(30))).expect("days");
    let t = find_tenant(&conn, "Acme").expect("find").expect("exists");
    assert_eq!(
        (t.time_zone.as_str(), t.queue_retention_days),
        ("America/New_York", 30)
    );
    assert_eq!(
        invalid_field(set_tenant_settings(
            &conn,
            acme,
            &set(Some("Mars/Base"), Some(10))
        )),
        Field::TimeZone
    );
    assert_eq!(
        invalid_field(set_tenant_settings(&conn, acme, &set(None, Some(0)))),
        Field::RetentionDays
    );
    let t = find_tenant(&conn, "Acme").expect("find").expect("exists");
    assert_eq!(t.queue_retention_days, 30, "nothing changed");
    assert!(matches!(
        set_tenant_settings(&conn, TenantId(99), &set(None, Some(5))),
        Err(StoreError::NotFound(Entity::Tenant))
    ));

    let u = user(&conn, acme, "10");
    assert_eq!(
        agent_presence(&conn, u).expect("none"),
        AgentPresence::LoggedOut
    );
    set_agent_presence(
        &conn,
        u,
        &AgentPresence::Paused(Some("Lunch".into())),
        1_000,
    )
    .expect("pause");
    assert_eq!(
        agent_presence(&conn, u).expect("paused"),
        AgentPresence::Paused(Some("Lunch".into()))
    );
    set_agent_presence(&conn, u, &AgentPresence::LoggedIn, 2_000).expect("in");
    assert_eq!(
        agent_presence(&conn, u).expect("in"),
        AgentPresence::LoggedIn
    );
    assert_eq!(
        invalid_field(set_agent_presence(
            &conn,
            u,
            &AgentPresence::Paused(Some("bad\nreason".into())),
            3_000
        )),
        Field::PauseReason
    );
    assert!(matches!(
        set_agent_presence(&conn, UserId(99), &AgentPresence::LoggedIn, 1),
        Err(StoreError::NotFound(Entity::User))
    ));
}

#[test]
fn config_snapshot_holds_everything() {
    let (_d, mut conn) = db();
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let beta = add_tenant(&conn, "Beta").expect("tenant");
    set_tenant_settings(
        &conn,
        beta,
        &TenantSettings {
            time_zone: Some("UTC".into()),
            queue_retention_days: None,
        },
    )
    .expect("tz");
    let mut d = def("Support");
    d.numbers = vec!["+4721000000".into()];
    d.settings.max_callers = Some(5);
    let support = add_queue(&mut conn, acme, &d).expect("support");
    let sales = add_queue(&mut conn, acme, &def("Sales")).expect("sales");
    let beta_q = add_queue(&mut conn, beta, &def("Help")).expect("help");
    let u10 = user(&conn, acme, "10");
    let u11 = user(&conn, acme, "11");
    let b10 = user(&conn, beta, "10");
    add_member(&mut conn, support, u11, Some(1), Some(30)).expect("member");
    add_member(&mut conn, support, u10, Some(2), None).expect("member");
    add_member(&mut conn, beta_q, b10, None, None).expect("member");
    set_overflow_rule(
        &mut conn,
        support,
        &OverflowRule {
            condition: OverflowCondition::Full,
            target: OverflowTarget::Queue(sales),
        },
    )
    .expect("rule");
    let monday = WeeklyHours {
        weekday: 0,
        open_min: 480,
        close_min: 960,
    };
    set_weekly_hours(&mut conn, support, &[monday]).expect("hours");
    let holiday = QueueHoliday {
        date: LocalDate::new(2025, 5, 17).expect("date"),
        open: None,
    };
    add_holiday(&mut conn, support, &holiday).expect("holiday");
    add_vip(&conn, acme, "+4790000001", None).expect("vip");
    add_vip(&conn, acme, "+4790000002", None).expect("vip");
    set_agent_presence(&conn, u10, &AgentPresence::LoggedIn, 5).expect("in");
    set_agent_presence(&conn, b10, &AgentPresence::Paused(None), 6).expect("paused");

    let snap = load_queue_config(&conn).expect("snapshot");
    assert_eq!(snap.revision, revision(&conn));
    let ids: Vec<QueueId> = snap.queues.iter().map(|q| q.queue.id).collect();
    assert_eq!(ids, [support, sales, beta_q]);
    let s = &snap.queues[0];
    assert_eq!(s.time_zone, "Europe/Oslo");
    assert_eq!(s.queue.settings.max_callers, Some(5));
    let members: Vec<(UserId, u32, Option<u32>)> = s
        .members
        .iter()
        .map(|m| (m.user_id, m.position, m.ring_timeout_s))
        .collect();
    assert_eq!(members, [(u11, 1, Some(30)), (u10, 2, None)]);
    assert_eq!(
        s.overflow,
        [OverflowRule {
            condition: OverflowCondition::Full,
            target: OverflowTarget::Queue(sales),
        }]
    );
    assert_eq!(
        (s.weekly.as_slice(), s.holidays.as_slice()),
        (&[monday][..], &[holiday][..])
    );
    assert_eq!(s.numbers, ["+4721000000"]);
    let sales_cfg = &snap.queues[1];
    assert!(sales_cfg.members.is_empty() && sales_cfg.weekly.is_empty());
    assert_eq!(snap.queues[2].time_zone, "UTC");
    assert_eq!(snap.vip_numbers.len(), 1, "tenants without VIPs are absent");
    let vips = snap.vip_numbers.get(&acme).expect("acme's");
    assert!(vips.contains("+4790000001") && vips.contains("+4790000002") && vips.len() == 2);
    assert_eq!(
        snap.agents,
        [
            AgentState {
                user_id: u10,
                presence: AgentPresence::LoggedIn,
                changed_at_ms: 5
            },
            AgentState {
                user_id: b10,
                presence: AgentPresence::Paused(None),
                changed_at_ms: 6
            },
        ]
    );
    let details = queue_details(&conn, support).expect("details");
    assert_eq!(details.presence.len(), 1, "only members' states: u10's");
    assert_eq!(details.numbers, ["+4721000000"]);
}

#[test]
fn triggers_bump_the_revision() {
    let (_d, mut conn) = db();
    let r0 = revision(&conn);
    let acme = add_tenant(&conn, "Acme").expect("tenant");
    let u = user(&conn, acme, "10");
    assert_eq!(revision(&conn), r0, "tenants and users alone do not count");

    // Every change of a configuration table bumps it.
    let mut last = r0;
    let mut bumped = |conn: &Connection, what: &str| {
        let now = revision(conn);
        assert!(now > last, "{what} must bump the revision");
        last = now;
    };
    let q = add_queue(&mut conn, acme, &def("Support")).expect("queue");
    bumped(&conn, "queue insert");
    update_queue(&mut conn, q, &def("Support 2")).expect("update");
    bumped(&conn, "queue update");
    add_member(&mut conn, q, u, None, None).expect("member");
    bumped(&conn, "member insert");
    add_member(&mut conn, q, u, Some(5), None).expect("member");
    bumped(&conn, "member update");
    set_overflow_rule(
        &mut conn,
        q,
        &OverflowRule {
            condition: OverflowCondition::Closed,
            target: OverflowTarget::Announcement(None),
        },
    )
    .expect("rule");
    bumped(&conn, "overflow");
    let week = [WeeklyHours {
        weekday: 2,
        open_min: 0,
        close_min: 60,
    }];
    set_weekly_hours(&mut conn, q, &week).expect("hours");
    bumped(&conn, "hours");
    add_holiday(
        &mut conn,
        q,
        &QueueHoliday {
            date: LocalDate::new(2025, 1, 1).expect("date"),
            open: None,
        },
    )
    .expect("holiday");
    bumped(&conn, "holiday");
    add_vip(&conn, acme, "+4790000001", None).expect("vip");
    bumped(&conn, "vip");
    set_agent_presence(&conn, u, &AgentPresence::LoggedIn, 1).expect("presence");
    bumped(&conn, "presence");
    add_tenant_number(&conn, acme, "+4721000000", NumberKind::Main, None).expect("number");
    bumped(&conn, "tenant number");
    assign_queue_number(&mut conn, acme, "+4721000000", Some(q)).expect("assign");
    bumped(&conn, "number assignment");
    set_tenant_settings(
        &conn,
        acme,
        &TenantSettings {
            time_zone: Some("UTC".into()),
            queue_retention_days: None,
        },
    )
    .expect("tz");
    bumped(&conn, "time zone");
    remove_vip(&conn, acme, "+4790000001").expect("vip");
    bumped(&conn, "vip delete");
    remove_user(&conn, u).expect("user");
    bumped(&conn, "a removed user's membership and presence (cascade)");
    remove_queue(&mut conn, q, false).expect("remove");
    bumped(&conn, "queue delete");

    // Changes that are not queue configuration, or change nothing, do not.
    let u2 = user(&conn, acme, "11");
    set_agent_presence(&conn, u2, &AgentPresence::LoggedIn, 1).expect("presence");
    let before = revision(&conn);
    set_agent_presence(&conn, u2, &AgentPresence::LoggedIn, 2).expect("same presence");
    set_tenant_settings(
        &conn,
        acme,
        &TenantSettings {
            time_zone: Some("UTC".into()),
            queue_retention_days: Some(10),
        },
    )
    .expect("same zone, new retention");
    assert_eq!(revision(&conn), before);
    remove_tenant(&mut conn, acme, true).expect("tenant");
    assert!(revision(&conn) > before, "the cascade from a tenant counts");
}
