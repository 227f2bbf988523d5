//! The queue call log against a temp-dir SQLite: visits written with their call (both
//! write paths), missed visits marked handled, listing, statistics on a hand-made log,
//! retention per tenant, "today" counts and the live snapshot.

use super::super::calllog::{delete_calls_before, write_call, write_calls};
use super::super::model::NewUser;
use super::super::queue_model::{
    OfferRecord, OfferResult, QueueDefinition, QueueKind, QueueSettings, QueueVisitRecord,
    TenantSettings,
};
use super::super::queues::{add_member, add_queue, remove_queue, set_tenant_settings};
use super::super::repo::{add_tenant, add_user, remove_user};
use super::super::{schema, Password};
use super::*;

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn =
        schema::open_writer(&dir.path().join("l.db"), schema::BUSY_TIMEOUT).expect("open");
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

fn queue(conn: &mut Connection, t: TenantId, name: &str) -> QueueId {
    add_queue(
        conn,
        t,
        &QueueDefinition {
            name: name.into(),
            settings: QueueSettings::defaults(QueueKind::Queue),
            numbers: vec![],
        },
    )
    .expect("queue")
}

/// An inbound call from `from` starting at `t0`, answered by `answered_by` (if any)
/// 10 s later, ending 70 s after the start.
fn inbound(tenant: TenantId, from: &str, t0: i64, answered_by: Option<UserId>) -> CallRecord {
    CallRecord {
        tenant: Some(tenant),
        direction: Direction::Inbound,
        caller_number: from.into(),
        caller_name: Some("Kari Nordmann".into()),
        callee_number: "+4721000000".into(),
        callee_name: None,
        started_at_ms: t0,
        answered_at_ms: answered_by.map(|_| t0 + 10_000),
        ended_at_ms: t0 + 70_000,
        outcome: if answered_by.is_some() {
            CallOutcome::Answered
        } else {
            CallOutcome::Missed
        },
        answered_by,
        forward_reason: None,
        end_reason: None,
        sip_call_ids: vec![],
        users: vec![],
        legs: vec![],
        media: vec![],
        queue_visits: vec![],
    }
}

/// An outbound call by `by` to `to` at `t0`, answered 5 s later unless `answered` is false.
fn outbound(tenant: TenantId, by: UserId, to: &str, t0: i64, answered: bool) -> CallRecord {
    CallRecord {
        tenant: Some(tenant),
        direction: Direction::Outbound,
        caller_number: "+4721000000".into(),
        caller_name: None,
        callee_number: to.into(),
        callee_name: None,
        started_at_ms: t0,
        answered_at_ms: answered.then_some(t0 + 5_000),
        ended_at_ms: t0 + 60_000,
        outcome: if answered {
            CallOutcome::Answered
        } else {
            CallOutcome::Missed
        },
        answered_by: None,
        forward_reason: None,
        end_reason: None,
        sip_call_ids: vec![],
        users: vec![(by, CallUserRole::Caller)],
        legs: vec![],
        media: vec![],
        queue_visits: vec![],
    }
}

/// A visit to `q` entering at `entered`; answered visits are answered after `wait_ms`
/// by `by` and talk for `talk_ms`; unanswered ones leave after `wait_ms`.
fn visit(
    q: QueueId,
    entered: i64,
    wait_ms: i64,
    outcome: VisitOutcome,
    by: Option<UserId>,
    talk_ms: i64,
) -> QueueVisitRecord {
    let answered = outcome == VisitOutcome::Answered;
    QueueVisitRecord {
        queue: q,
        queue_name: format!("queue {}", q.0),
        vip: false,
        entered_at_ms: entered,
        answered_at_ms: answered.then_some(entered + wait_ms),
        answered_by: if answered { by } else { None },
        left_at_ms: entered + wait_ms,
        talk_ms: if answered { talk_ms } else { 0 },
        outcome,
        overflow_reason: None,
        overflow_target: None,
        transferred_to: None,
        offers: by
            .map(|u| {
                vec![OfferRecord {
                    user: u,
                    offered_at_ms: entered + 1_000,
                    result: if answered {
                        OfferResult::Answered
                    } else {
                        OfferResult::NoAnswer
                    },
                }]
            })
            .unwrap_or_default(),
    }
}

fn all_visits(conn: &Connection, tenant: TenantId) -> Vec<QueueVisitSummary> {
    queue_log(
        conn,
        &QueueLogFilter {
            tenant,
            queue: None,
            member: None,
            since_ms: None,
            limit: 1000,
        },
    )
    .expect("log")
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

#[test]
fn visits_and_offers_are_written_with_their_call() {
    let (_d, mut conn) = db();
    let t = add_tenant(&conn, "Acme").expect("tenant");
    let a = queue(&mut conn, t, "A");
    let b = queue(&mut conn, t, "B");
    let u10 = user(&conn, t, "10");
    let u11 = user(&conn, t, "11");
    // Overflowed from A (after two unanswered offers) to B, answered there by 11 and
    // transferred.
    let mut c = inbound(t, "+4790000001", 1_000_000, Some(u11));
    let mut in_a = visit(a, 1_000_000, 30_000, VisitOutcome::Overflowed, None, 0);
    in_a.vip = true;
    in_a.overflow_reason = Some(OverflowCondition::MaxWait);
    in_a.overflow_target = Some("queue B".into());
    in_a.offers = vec![
        OfferRecord {
            user: u10,
            offered_at_ms: 1_001_000,
            result: OfferResult::NoAnswer,
        },
        OfferRecord {
            user: u11,
            offered_at_ms: 1_021_000,
            result: OfferResult::Withdrawn,
        },
    ];
    let mut in_b = visit(
        b,
        1_030_000,
        5_000,
        VisitOutcome::Answered,
        Some(u11),
        40_000,
    );
    in_b.transferred_to = Some("user 12 (Per)".into());
    c.queue_visits = vec![in_a, in_b];
    let id = write_call(&mut conn, &c).expect("write");

    let log = all_visits(&conn, t);
    assert_eq!(log.len(), 2);
    let (vb, va) = (&log[0], &log[1]);
    assert_eq!(
        (va.call_id, va.queue_id, va.queue_name.as_str(), va.vip),
        (Some(id), Some(a), "queue 1", true)
    );
    assert_eq!(
        (va.caller_number.as_str(), va.caller_name.as_deref()),
        ("+4790000001", Some("Kari Nordmann"))
    );
    assert_eq!(
        (
            va.outcome,
            va.overflow_reason,
            va.overflow_target.as_deref()
        ),
        (
            VisitOutcome::Overflowed,
            Some(OverflowCondition::MaxWait),
            Some("queue B")
        )
    );
    assert_eq!(
        (va.wait_ms, va.talk_ms, va.answered_by.as_ref()),
        (30_000, 0, None)
    );
    let offers: Vec<(Option<String>, OfferResult)> = va
        .offers
        .iter()
        .map(|o| (o.user.as_ref().map(|u| u.extension.clone()), o.result))
        .collect();
    assert_eq!(
        offers,
        [
            (Some("10".to_owned()), OfferResult::NoAnswer),
            (Some("11".to_owned()), OfferResult::Withdrawn)
        ]
    );
    assert_eq!(
        (
            vb.outcome,
            vb.wait_ms,
            vb.talk_ms,
            vb.answered_by.as_ref().map(|u| u.id),
            vb.transferred_to.as_deref()
        ),
        (
            VisitOutcome::Answered,
            5_000,
            40_000,
            Some(u11),
            Some("user 12 (Per)")
        )
    );
    // A's visit is missed, but the same call was answered in B: handled by 11.
    assert_eq!(
        (va.handled_by.as_ref().map(|u| u.id), va.handled_at_ms),
        (Some(u11), Some(1_010_000))
    );
    assert_eq!(vb.handled_by, None, "an answered visit is never 'handled'");

    // The queue log outlives the 30-day call log: the call goes, the visits stay.
    assert_eq!(delete_calls_before(&mut conn, i64::MAX).expect("calls"), 1);
    let log = all_visits(&conn, t);
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|v| v.call_id.is_none()));
    // A removed queue and user leave the history with names, without ids.
    remove_queue(&mut conn, a, true).expect("queue");
    remove_user(&conn, u10).expect("user");
    let va = all_visits(&conn, t).remove(1);
    assert_eq!((va.queue_id, va.queue_name.as_str()), (None, "queue 1"));
    assert_eq!(va.offers[0].user, None);
    assert_eq!(va.offers.len(), 2);
}

#[test]
fn a_visit_failing_rolls_back_its_call_in_both_write_paths() {
    let (_d, mut conn) = db();
    let t = add_tenant(&conn, "Acme").expect("tenant");
    let q = queue(&mut conn, t, "A");
    let u = user(&conn, t, "10");
    conn.execute_batch(
        "CREATE TEMP TRIGGER boom BEFORE INSERT ON queue_offers
         WHEN NEW.offered_at = 666 BEGIN SELECT RAISE(ABORT, 'boom'); END;",
    )
    .expect("trigger");
    let mut good = inbound(t, "+4790000001", 1_000, Some(u));
    good.queue_visits = vec![visit(
        q,
        1_000,
        2_000,
        VisitOutcome::Answered,
        Some(u),
        9_000,
    )];
    let mut bad = inbound(t, "+4790000002", 2_000, None);
    let mut v = visit(q, 2_000, 2_000, VisitOutcome::Abandoned, Some(u), 0);
    v.offers[0].offered_at_ms = 666;
    bad.queue_visits = vec![v];

    assert!(write_call(&mut conn, &bad).is_err());
    assert_eq!(
        (count(&conn, "calls"), count(&conn, "queue_visits")),
        (0, 0)
    );
    let results = write_calls(&mut conn, &[&good, &bad, &good]).expect("batch");
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    assert_eq!(count(&conn, "calls"), 2);
    assert_eq!(count(&conn, "queue_visits"), 2, "one per good call");
    assert_eq!(count(&conn, "queue_offers"), 2);
}

#[test]
fn odd_visit_content_is_kept_not_refused() {
    let (_d, mut conn) = db();
    let t = add_tenant(&conn, "Acme").expect("tenant");
    let q = queue(&mut conn, t, "A");
    let mut c = inbound(t, "+4790000001", 1_000, None);
    let mut v = visit(q, 5_000, 0, VisitOutcome::Abandoned, None, 0);
    v.queue_name = "Evil\nName".into();
    v.left_at_ms = 4_000; // the wall clock stepped back
    v.talk_ms = -5;
    v.offers = vec![OfferRecord {
        user: UserId(999),
        offered_at_ms: 4_500,
        result: OfferResult::Refused,
    }];
    let mut gone = visit(QueueId(999), 5_000, 1_000, VisitOutcome::Abandoned, None, 0);
    gone.queue_name = String::new();
    c.queue_visits = vec![v, gone];
    write_call(&mut conn, &c).expect("written");
    // Neither the queue nor the call's tenant: the visit cannot be placed, the call still is.
    let mut orphan = inbound(TenantId(77), "+4790000002", 9_000, None);
    orphan.queue_visits = vec![visit(
        QueueId(999),
        9_000,
        1_000,
        VisitOutcome::Abandoned,
        None,
        0,
    )];
    write_call(&mut conn, &orphan).expect("written");
    assert_eq!(count(&conn, "calls"), 2);

    let log = all_visits(&conn, t);
    assert_eq!(log.len(), 2);
    let named: Vec<(&str, Option<QueueId>, i64, i64)> = log
        .iter()
        .map(|v| (v.queue_name.as_str(), v.queue_id, v.wait_ms, v.talk_ms))
        .collect();
    assert!(named.contains(&("Evil Name", Some(q), 0, 0)), "{named:?}");
    assert!(named.contains(&("?", None, 1_000, 0)), "{named:?}");
    let evil = log.iter().find(|v| v.queue_id == Some(q)).expect("evil");
    assert_eq!(evil.offers[0].user, None);
}

#[test]
fn missed_visits_are_handled_by_a_members_callback_or_a_new_answered_call() {
    let (_d, mut conn) = db();
    let t = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let support = queue(&mut conn, t, "Support");
    let sales = queue(&mut conn, t, "Sales");
    let member = user(&conn, t, "10");
    let non_member = user(&conn, t, "11");
    let sales_agent = user(&conn, t, "12");
    let stranger = user(&conn, other, "10");
    add_member(&mut conn, support, member, None, None).expect("member");
    add_member(&mut conn, sales, sales_agent, None, None).expect("member");
    let n = "+4790000001";

    let missed = |conn: &mut Connection, q: QueueId, at: i64, outcome: VisitOutcome| {
        let mut c = inbound(t, n, at, None);
        c.queue_visits = vec![visit(q, at, 20_000, outcome, None, 0)];
        write_call(conn, &c).expect("missed call");
    };
    let handled = |conn: &Connection| -> Vec<(i64, Option<UserId>, Option<i64>)> {
        let mut v: Vec<_> = all_visits(conn, t)
            .into_iter()
            .map(|v| (v.entered_at_ms, v.handled_by.map(|u| u.id), v.handled_at_ms))
            .collect();
        v.sort();
        v
    };
    missed(&mut conn, support, 1_000_000, VisitOutcome::Abandoned);
    missed(&mut conn, support, 2_000_000, VisitOutcome::GivenUp);
    missed(&mut conn, sales, 3_000_000, VisitOutcome::Abandoned);

    // A non-member's callback, an unanswered callback, another tenant's call, an
    // internal call: nothing handled.
    write_call(&mut conn, &outbound(t, non_member, n, 4_000_000, true)).expect("call");
    write_call(&mut conn, &outbound(t, member, n, 4_100_000, false)).expect("call");
    write_call(&mut conn, &outbound(other, stranger, n, 4_200_000, true)).expect("call");
    let mut internal = outbound(t, member, n, 4_300_000, true);
    internal.direction = Direction::Internal;
    write_call(&mut conn, &internal).expect("call");
    // A callback to another number: nothing either.
    write_call(
        &mut conn,
        &outbound(t, member, "+4790000002", 4_400_000, true),
    )
    .expect("call");
    assert!(handled(&conn)
        .iter()
        .all(|(_, by, at)| by.is_none() && at.is_none()));

    // The Support member calls back: both Support visits are handled by them at the
    // answer time; the Sales visit is not (not their queue).
    write_call(&mut conn, &outbound(t, member, n, 5_000_000, true)).expect("callback");
    assert_eq!(
        handled(&conn),
        [
            (1_000_000, Some(member), Some(5_005_000)),
            (2_000_000, Some(member), Some(5_005_000)),
            (3_000_000, None, None),
        ]
    );
    // The caller calls again and a user answers (directly, no queue): the Sales visit is
    // handled by them; the ones handled already keep their handler.
    write_call(&mut conn, &inbound(t, n, 6_000_000, Some(non_member))).expect("again");
    assert_eq!(
        handled(&conn),
        [
            (1_000_000, Some(member), Some(5_005_000)),
            (2_000_000, Some(member), Some(5_005_000)),
            (3_000_000, Some(non_member), Some(6_010_000)),
        ]
    );
    // A visit entered after a callback was answered is not handled by it (a call
    // written late, out of order).
    missed(&mut conn, support, 9_000_000, VisitOutcome::Abandoned);
    write_call(&mut conn, &outbound(t, member, n, 8_000_000, true)).expect("older call");
    assert_eq!(handled(&conn)[3], (9_000_000, None, None));
}

#[test]
fn statistics_on_a_hand_made_log() {
    let (_d, mut conn) = db();
    let t = add_tenant(&conn, "Acme").expect("tenant");
    let other = add_tenant(&conn, "Other").expect("tenant");
    let support = queue(&mut conn, t, "Support");
    let sales = queue(&mut conn, t, "Sales");
    let empty = queue(&mut conn, t, "Empty");
    let gone = queue(&mut conn, t, "Gone");
    let theirs = queue(&mut conn, other, "Theirs");
    let a = user(&conn, t, "10");
    let b = user(&conn, t, "11");
    let idle = user(&conn, t, "12");
    let x = user(&conn, other, "10");
    add_member(&mut conn, support, a, None, None).expect("member");
    add_member(&mut conn, support, b, None, None).expect("member");
    add_member(&mut conn, empty, idle, None, None).expect("member");

    let day = 1_700_000_000_000;
    let write = |conn: &mut Connection, at: i64, visits: Vec<QueueVisitRecord>| {
        let mut c = inbound(t, "+4790000001", at, None);
        c.queue_visits = visits;
        write_call(conn, &c).expect("write");
    };
    // Support: 4 visits in the period.
    //  1. answered by a after 10 s, talk 60 s, transferred
    //  2. answered by a after 30 s, talk 120 s (offered to b first: no answer)
    //  3. abandoned after 50 s (offered to b: withdrawn)
    //  4. overflowed to Sales after 90 s, and answered there by b after 6 s, talk 30 s
    let mut v1 = visit(
        support,
        day,
        10_000,
        VisitOutcome::Answered,
        Some(a),
        60_000,
    );
    v1.transferred_to = Some("+4790000099".into());
    write(&mut conn, day, vec![v1]);
    let mut v2 = visit(
        support,
        day + 1_000,
        30_000,
        VisitOutcome::Answered,
        Some(a),
        120_000,
    );
    v2.offers.insert(
        0,
        OfferRecord {
            user: b,
            offered_at_ms: day + 1_500,
            result: OfferResult::NoAnswer,
        },
    );
    write(&mut conn, day + 1_000, vec![v2]);
    let mut v3 = visit(
        support,
        day + 2_000,
        50_000,
        VisitOutcome::Abandoned,
        Some(b),
        0,
    );
    v3.offers[0].result = OfferResult::Withdrawn;
    write(&mut conn, day + 2_000, vec![v3]);
    let mut v4 = visit(
        support,
        day + 3_000,
        90_000,
        VisitOutcome::Overflowed,
        None,
        0,
    );
    v4.overflow_reason = Some(OverflowCondition::MaxWait);
    let v5 = visit(
        sales,
        day + 93_000,
        6_000,
        VisitOutcome::Answered,
        Some(b),
        30_000,
    );
    write(&mut conn, day + 3_000, vec![v4, v5]);
    // Gone: one given-up visit, then the queue is removed (history stays).
    write(
        &mut conn,
        day + 4_000,
        vec![visit(
            gone,
            day + 4_000,
            5_000,
            VisitOutcome::GivenUp,
            None,
            0,
        )],
    );
    remove_queue(&mut conn, gone, false).expect("remove");
    // Outside the period (before and at its end), and another tenant's.
    write(
        &mut conn,
        day - 1,
        vec![visit(
            support,
            day - 1,
            1_000,
            VisitOutcome::Answered,
            Some(a),
            1_000,
        )],
    );
    write(
        &mut conn,
        day + 86_400_000,
        vec![visit(
            support,
            day + 86_400_000,
            1_000,
            VisitOutcome::Abandoned,
            None,
            0,
        )],
    );
    let mut theirs_call = inbound(other, "+4790000001", day, Some(x));
    theirs_call.queue_visits = vec![visit(
        theirs,
        day,
        1_000,
        VisitOutcome::Answered,
        Some(x),
        5_000,
    )];
    write_call(&mut conn, &theirs_call).expect("theirs");
    // Outgoing calls: a made two in the period (one unanswered still counts), one before.
    for (at, answered) in [(day + 10, true), (day + 20, false), (day - 10, true)] {
        write_call(&mut conn, &outbound(t, a, "+4790000005", at, answered)).expect("out");
    }

    let report = queue_stats(&conn, t, day, day + 86_400_000).expect("stats");
    let by_name: HashMap<&str, &QueueStats> =
        report.queues.iter().map(|q| (q.name.as_str(), q)).collect();
    let names: Vec<&str> = report.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["Empty", "queue 4", "Sales", "Support"]);
    let s = by_name["Support"];
    assert_eq!(
        (
            s.offered,
            s.answered,
            s.abandoned,
            s.overflowed,
            s.given_up,
            s.transfers
        ),
        (4, 2, 1, 1, 0, 1)
    );
    assert_eq!(s.answer_rate(), Some(0.5));
    assert_eq!(
        (s.avg_wait_answered_ms, s.max_wait_answered_ms),
        (Some(20_000), Some(30_000))
    );
    assert_eq!(
        (s.avg_wait_unanswered_ms, s.max_wait_unanswered_ms),
        (Some(70_000), Some(90_000))
    );
    assert_eq!(s.avg_talk_ms, Some(90_000));
    let sales_stats = by_name["Sales"];
    assert_eq!(
        (
            sales_stats.offered,
            sales_stats.answered,
            sales_stats.avg_talk_ms
        ),
        (1, 1, Some(30_000))
    );
    assert_eq!(
        (
            sales_stats.avg_wait_unanswered_ms,
            sales_stats.answer_rate()
        ),
        (None, Some(1.0))
    );
    let e = by_name["Empty"];
    assert_eq!(
        (e.queue_id, e.offered, e.answer_rate()),
        (Some(empty), 0, None)
    );
    let g = by_name["queue 4"];
    assert_eq!(
        (g.queue_id, g.offered, g.given_up),
        (None, 1, 1),
        "removed queue by its old name"
    );

    // (extension, offered, answered, average talk, transfers, outgoing)
    type Row<'a> = (&'a str, u64, u64, Option<i64>, u64, u64);
    let ops: Vec<Row> = report
        .operators
        .iter()
        .map(|o| {
            (
                o.extension.as_str(),
                o.offered,
                o.answered,
                o.avg_talk_ms,
                o.transfers,
                o.outgoing,
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            // a: offered 2 (both answered, one transferred), 2 outgoing in the period.
            ("10", 2, 2, Some(90_000), 1, 2),
            // b: offered v2 (no answer), v3 (withdrawn), v5 (answered).
            ("11", 3, 1, Some(30_000), 0, 0),
            // A member without calls is listed with zeros.
            ("12", 0, 0, None, 0, 0),
        ]
    );
    assert_eq!(report.operators[1].answer_rate(), Some(1.0 / 3.0));

    // An empty period: every current queue with zeros.
    let none = queue_stats(&conn, t, day + 10 * 86_400_000, day + 11 * 86_400_000).expect("stats");
    assert_eq!(none.queues.len(), 3);
    assert!(none.queues.iter().all(|q| q.offered == 0));
    assert!(matches!(
        queue_stats(&conn, TenantId(99), 0, 1),
        Err(StoreError::NotFound(Entity::Tenant))
    ));
}

#[test]
fn log_filters_and_order() {
    let (_d, mut conn) = db();
    let t = add_tenant(&conn, "Acme").expect("tenant");
    let a = queue(&mut conn, t, "A");
    let b = queue(&mut conn, t, "B");
    let u = user(&conn, t, "10");
    add_member(&mut conn, b, u, None, None).expect("member");
    for (i, q) in [a, b, a, b, b].into_iter().enumerate() {
        let at = 1_000 * (i as i64 + 1);
        let mut c = inbound(t, "+4790000001", at, None);
        c.queue_visits = vec![visit(q, at, 100, VisitOutcome::Abandoned, None, 0)];
        write_call(&mut conn, &c).expect("write");
    }
    let list = |queue, member, since_ms, limit| -> Vec<i64> {
        queue_log(
            &conn,
            &QueueLogFilter {
                tenant: t,
                queue,
                member,
                since_ms,
                limit,
            },
        )
        .expect("log")
        .into_iter()
        .map(|v| v.entered_at_ms)
        .collect()
    };
    assert_eq!(
        list(None, None, None, 10),
        [5_000, 4_000, 3_000, 2_000, 1_000]
    );
    assert_eq!(list(Some(a), None, None, 10), [3_000, 1_000]);
    assert_eq!(
        list(None, Some(u), None, 10),
        [5_000, 4_000, 2_000],
        "the member's queues"
    );
    assert_eq!(list(Some(b), None, Some(3_000), 1), [5_000]);
    assert!(matches!(
        queue_log(
            &conn,
            &QueueLogFilter {
                tenant: TenantId(99),
                queue: None,
                member: None,
                since_ms: None,
                limit: 1
            }
        ),
        Err(StoreError::NotFound(Entity::Tenant))
    ));
}

#[test]
fn retention_per_tenant_and_today_counts() {
    let (_d, mut conn) = db();
    let short = add_tenant(&conn, "Short").expect("tenant");
    let long = add_tenant(&conn, "Long").expect("tenant");
    set_tenant_settings(
        &conn,
        short,
        &TenantSettings {
            time_zone: None,
            queue_retention_days: Some(7),
        },
    )
    .expect("7 days");
    let qs = queue(&mut conn, short, "Q");
    let ql = queue(&mut conn, long, "Q");
    let u = user(&conn, short, "10");
    let now = 100 * DAY_MS;
    for (tenant, q) in [(short, qs), (long, ql)] {
        for age_days in [1, 6, 8, 89, 91] {
            let at = now - age_days * DAY_MS;
            let mut c = inbound(tenant, "+4790000001", at, None);
            c.queue_visits = vec![visit(q, at, 1_000, VisitOutcome::Abandoned, None, 0)];
            if tenant == short {
                c.queue_visits[0].offers = vec![OfferRecord {
                    user: u,
                    offered_at_ms: at,
                    result: OfferResult::NoAnswer,
                }];
            }
            write_call(&mut conn, &c).expect("write");
        }
    }
    // Short keeps 7 days (2 visits), Long the default 90 (4 visits).
    assert_eq!(
        delete_queue_history_expired(&mut conn, now).expect("retention"),
        3 + 1
    );
    let ages = |t| -> Vec<i64> {
        all_visits(&conn, t)
            .iter()
            .map(|v| (now - v.entered_at_ms) / DAY_MS)
            .collect()
    };
    assert_eq!(ages(short), [1, 6]);
    assert_eq!(ages(long), [1, 6, 8, 89]);
    assert_eq!(
        count(&conn, "queue_offers"),
        2,
        "offers went with their visits"
    );
    assert_eq!(
        delete_queue_history_expired(&mut conn, now).expect("again"),
        0
    );

    // Today: answered and unanswered by the time they were answered or left.
    let midnight = now - 3_600_000;
    let write = |conn: &mut Connection, q, entered, wait, outcome| {
        let mut c = inbound(long, "+4790000002", entered, None);
        c.queue_visits = vec![visit(q, entered, wait, outcome, None, 0)];
        write_call(conn, &c).expect("write");
    };
    write(
        &mut conn,
        ql,
        midnight - 60_000,
        120_000,
        VisitOutcome::Answered,
    ); // answered after midnight
    write(
        &mut conn,
        ql,
        midnight - 120_000,
        60_000,
        VisitOutcome::Abandoned,
    ); // left before
    write(
        &mut conn,
        ql,
        midnight + 1_000,
        1_000,
        VisitOutcome::Overflowed,
    );
    write(
        &mut conn,
        ql,
        midnight + 2_000,
        1_000,
        VisitOutcome::Answered,
    );
    write(
        &mut conn,
        qs,
        midnight + 3_000,
        1_000,
        VisitOutcome::GivenUp,
    );
    assert_eq!(
        queue_today_counts(&conn, midnight).expect("counts"),
        [(qs, 0, 1), (ql, 2, 1)]
    );
}

#[test]
fn live_snapshot_replaced_whole() {
    let (_d, mut conn) = db();
    let a = add_tenant(&conn, "Acme").expect("tenant");
    let b = add_tenant(&conn, "Beta").expect("tenant");
    let qa = queue(&mut conn, a, "Support");
    let qb = queue(&mut conn, b, "Help");
    let row = |q: QueueId, tenant: TenantId, name: &str, waiting: u32| QueueLive {
        queue_id: q,
        tenant_id: tenant,
        name: name.into(),
        agents_logged_in: 3,
        agents_available: 1,
        agents_busy: 1,
        agents_paused: 1,
        callers_waiting: waiting,
        longest_wait_ms: (waiting > 0).then_some(42_000),
        answered_today: 7,
        unanswered_today: 2,
        updated_at_ms: 5_000,
    };
    write_queue_live(
        &mut conn,
        &[
            row(qb, b, "Help", 0),
            row(qa, a, "Support", 4),
            // A queue removed meanwhile: skipped, not an error.
            row(QueueId(999), a, "Gone", 1),
        ],
    )
    .expect("write");
    let all = queue_live(&conn, None).expect("read");
    assert_eq!(all, [row(qa, a, "Support", 4), row(qb, b, "Help", 0)]);
    write_queue_live(&mut conn, &[row(qa, a, "Support", 1)]).expect("replace");
    assert_eq!(
        queue_live(&conn, None).expect("read"),
        [row(qa, a, "Support", 1)]
    );
    assert!(queue_live(&conn, Some(b)).expect("b").is_empty());
    // Removing the queue takes its live row.
    remove_queue(&mut conn, qa, false).expect("remove");
    assert!(queue_live(&conn, None).expect("read").is_empty());
}
