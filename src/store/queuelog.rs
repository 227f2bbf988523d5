//! The SQL of the queue call log: a call's queue visits and their offers (written with
//! the call, see `calllog::insert_call`), the marking of missed visits as handled,
//! listing, statistics over a period, the counts that seed "today" after a restart,
//! per-tenant retention; and the live snapshot the daemon writes for `queue status`.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row, TransactionBehavior};

use super::calllog::{MAX_NAME_LEN, MAX_NUMBER_LEN, RETENTION_BATCH};
use super::model::{
    CallId, CallOutcome, CallRecord, CallUserRole, Direction, TenantId, UserId, UserRef,
};
use super::queue_model::{
    OfferSummary, OperatorStats, OverflowCondition, QueueId, QueueLive, QueueLogFilter, QueueStats,
    QueueStatsReport, QueueVisitSummary, VisitId, VisitOutcome,
};
use super::queues::{decode, to_u32};
use super::repo::tenant_exists;
use super::validate::clean_text;
use super::{Entity, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Longest queue name kept in the log (characters; names are validated to 100).
const MAX_QUEUE_NAME_LEN: usize = 100;
/// Longest overflow target or transfer description kept (characters).
const MAX_DESCRIPTION_LEN: usize = 200;
/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

// ---- writing, with the call ----

/// Inserts the queue visits of a call (and their offers) inside the call's
/// transaction. Like the rest of the call, content never makes it fail: text is
/// cleaned and cut, a removed queue or user is stored as absent, and a visit whose
/// tenant cannot be told (neither its queue nor the call's tenant exists) is left out.
pub(super) fn insert_visits(tx: &Connection, call_id: i64, c: &CallRecord) -> Result<()> {
    if c.queue_visits.is_empty() {
        return Ok(());
    }
    let caller_number = clean_text(&c.caller_number, MAX_NUMBER_LEN).unwrap_or_default();
    let caller_name = c
        .caller_name
        .as_deref()
        .and_then(|s| clean_text(s, MAX_NAME_LEN));
    let mut visit_stmt = tx.prepare_cached(
        "INSERT INTO queue_visits (call_id, tenant_id, queue_id, queue_name, caller_number,
                                   caller_name, vip, entered_at, answered_at,
                                   answered_by_user_id, left_at, wait_ms, talk_ms, outcome,
                                   overflow_reason, overflow_target, transferred_to)
         SELECT ?1, t, (SELECT id FROM queues WHERE id = ?3), ?4, ?5, ?6, ?7, ?8, ?9,
                (SELECT id FROM users WHERE id = ?10), ?11, ?12, ?13, ?14, ?15, ?16, ?17
         FROM (SELECT coalesce((SELECT tenant_id FROM queues WHERE id = ?3),
                               (SELECT id FROM tenants WHERE id = ?2)) AS t)
         WHERE t IS NOT NULL",
    )?;
    let mut offer_stmt = tx.prepare_cached(
        "INSERT INTO queue_offers (visit_id, seq, user_id, offered_at, result)
         VALUES (?1, ?2, (SELECT id FROM users WHERE id = ?3), ?4, ?5)",
    )?;
    for v in &c.queue_visits {
        let wait_ms = v
            .answered_at_ms
            .unwrap_or(v.left_at_ms)
            .saturating_sub(v.entered_at_ms)
            .max(0);
        let inserted = visit_stmt.execute(params![
            call_id,
            c.tenant.map(|t| t.0),
            v.queue.0,
            clean_text(&v.queue_name, MAX_QUEUE_NAME_LEN).unwrap_or_else(|| "?".to_owned()),
            caller_number,
            caller_name,
            v.vip,
            v.entered_at_ms,
            v.answered_at_ms,
            v.answered_by.map(|u| u.0),
            v.left_at_ms,
            wait_ms,
            v.talk_ms.max(0),
            v.outcome.as_str(),
            v.overflow_reason.map(OverflowCondition::as_str),
            v.overflow_target
                .as_deref()
                .and_then(|s| clean_text(s, MAX_DESCRIPTION_LEN)),
            v.transferred_to
                .as_deref()
                .and_then(|s| clean_text(s, MAX_DESCRIPTION_LEN)),
        ])?;
        if inserted == 0 {
            continue;
        }
        let visit = tx.last_insert_rowid();
        for (seq, o) in v.offers.iter().enumerate() {
            offer_stmt.execute(params![
                visit,
                i64::try_from(seq).unwrap_or(i64::MAX),
                o.user.0,
                o.offered_at_ms,
                o.result.as_str(),
            ])?;
        }
    }
    Ok(())
}

/// Marks missed queue visits as handled by the call being written, inside its
/// transaction; returns how many. A missed visit is one not answered, and it counts as
/// handled when, at or after it:
/// - a member of its queue answers-and-completes an outbound call to its caller's number
///   (handled by that member, at the call's answer time), or
/// - its caller calls the tenant again and a user answers (handled by that user).
///
/// Visits of the call itself count too: a call that overflowed from A and was answered
/// in B leaves A's visit handled by B's agent.
pub(super) fn mark_handled(tx: &Connection, c: &CallRecord) -> Result<u64> {
    let (Some(tenant), Some(at), CallOutcome::Answered) = (c.tenant, c.answered_at_ms, c.outcome)
    else {
        return Ok(0);
    };
    // `+entered_at` keeps SQLite from scanning the tenant's whole history by the
    // (tenant, entered) index instead of the partial index of unhandled missed visits.
    let n = match c.direction {
        Direction::Outbound => {
            let Some(user) = c
                .users
                .iter()
                .find(|(_, role)| *role == CallUserRole::Caller)
                .map(|(u, _)| *u)
            else {
                return Ok(0);
            };
            tx.prepare_cached(
                "UPDATE queue_visits SET handled_by_user_id = ?3, handled_at = ?4
                 WHERE tenant_id = ?1 AND caller_number = ?2
                   AND outcome <> 'answered' AND handled_at IS NULL
                   AND +entered_at <= ?4
                   AND queue_id IN (SELECT queue_id FROM queue_members WHERE user_id = ?3)",
            )?
            .execute(params![tenant.0, c.callee_number, user.0, at])?
        }
        Direction::Inbound => {
            let Some(user) = c.answered_by else {
                return Ok(0);
            };
            tx.prepare_cached(
                "UPDATE queue_visits SET handled_by_user_id = ?3, handled_at = ?4
                 WHERE tenant_id = ?1 AND caller_number = ?2
                   AND outcome <> 'answered' AND handled_at IS NULL
                   AND +entered_at <= ?4
                   AND EXISTS (SELECT 1 FROM users WHERE id = ?3 AND tenant_id = ?1)",
            )?
            .execute(params![tenant.0, c.caller_number, user.0, at])?
        }
        Direction::Internal => 0,
    };
    Ok(n as u64)
}

// ---- listing ----

/// The columns [`raw_visit`] reads (visits `v`, answering user `ua`, handling user `uh`).
const VISIT_COLUMNS: &str = "v.id, v.call_id, v.queue_id, v.queue_name, v.caller_number, \
     v.caller_name, v.vip, v.entered_at, v.answered_at, v.left_at, v.wait_ms, v.talk_ms, \
     v.outcome, v.overflow_reason, v.overflow_target, v.transferred_to, ua.id, ua.name, \
     ua.extension, uh.id, uh.name, uh.extension, v.handled_at";

struct RawVisit {
    id: i64,
    call_id: Option<i64>,
    queue_id: Option<i64>,
    queue_name: String,
    caller_number: String,
    caller_name: Option<String>,
    vip: bool,
    entered_at_ms: i64,
    answered_at_ms: Option<i64>,
    left_at_ms: i64,
    wait_ms: i64,
    talk_ms: i64,
    outcome: String,
    overflow_reason: Option<String>,
    overflow_target: Option<String>,
    transferred_to: Option<String>,
    answered_by: Option<UserRef>,
    handled_by: Option<UserRef>,
    handled_at_ms: Option<i64>,
}

fn user_ref(r: &Row<'_>, first: usize) -> rusqlite::Result<Option<UserRef>> {
    Ok(
        match (
            r.get::<_, Option<i64>>(first)?,
            r.get::<_, Option<String>>(first + 1)?,
            r.get::<_, Option<String>>(first + 2)?,
        ) {
            (Some(id), Some(name), Some(extension)) => Some(UserRef {
                id: UserId(id),
                name,
                extension,
            }),
            _ => None,
        },
    )
}

fn raw_visit(r: &Row<'_>) -> rusqlite::Result<RawVisit> {
    Ok(RawVisit {
        id: r.get(0)?,
        call_id: r.get(1)?,
        queue_id: r.get(2)?,
        queue_name: r.get(3)?,
        caller_number: r.get(4)?,
        caller_name: r.get(5)?,
        vip: r.get(6)?,
        entered_at_ms: r.get(7)?,
        answered_at_ms: r.get(8)?,
        left_at_ms: r.get(9)?,
        wait_ms: r.get(10)?,
        talk_ms: r.get(11)?,
        outcome: r.get(12)?,
        overflow_reason: r.get(13)?,
        overflow_target: r.get(14)?,
        transferred_to: r.get(15)?,
        answered_by: user_ref(r, 16)?,
        handled_by: user_ref(r, 19)?,
        handled_at_ms: r.get(22)?,
    })
}

impl RawVisit {
    fn decode(self) -> Result<QueueVisitSummary> {
        Ok(QueueVisitSummary {
            id: VisitId(self.id),
            call_id: self.call_id.map(CallId),
            queue_id: self.queue_id.map(QueueId),
            queue_name: self.queue_name,
            caller_number: self.caller_number,
            caller_name: self.caller_name,
            vip: self.vip,
            entered_at_ms: self.entered_at_ms,
            answered_at_ms: self.answered_at_ms,
            answered_by: self.answered_by,
            left_at_ms: self.left_at_ms,
            wait_ms: self.wait_ms,
            talk_ms: self.talk_ms,
            outcome: decode::<VisitOutcome>(&self.outcome, "queue_visits.outcome")?,
            overflow_reason: self
                .overflow_reason
                .map(|s| decode::<OverflowCondition>(&s, "queue_visits.overflow_reason"))
                .transpose()?,
            overflow_target: self.overflow_target,
            transferred_to: self.transferred_to,
            handled_by: self.handled_by,
            handled_at_ms: self.handled_at_ms,
            offers: Vec::new(),
        })
    }
}

/// Lists a tenant's queue visits matching the filter, newest first, with their offers.
pub(crate) fn queue_log(conn: &Connection, f: &QueueLogFilter) -> Result<Vec<QueueVisitSummary>> {
    if !tenant_exists(conn, f.tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    // Only the conditions in use go into the SQL, so the indexes serve them.
    let mut conditions = vec!["v.tenant_id = ?"];
    let mut values = vec![Value::Integer(f.tenant.0)];
    if let Some(q) = f.queue {
        conditions.push("v.queue_id = ?");
        values.push(Value::Integer(q.0));
    }
    if let Some(u) = f.member {
        conditions.push("v.queue_id IN (SELECT queue_id FROM queue_members WHERE user_id = ?)");
        values.push(Value::Integer(u.0));
    }
    if let Some(since) = f.since_ms {
        conditions.push("v.entered_at >= ?");
        values.push(Value::Integer(since));
    }
    values.push(Value::Integer(i64::from(f.limit)));
    let sql = format!(
        "SELECT {VISIT_COLUMNS} FROM queue_visits v
         LEFT JOIN users ua ON ua.id = v.answered_by_user_id
         LEFT JOIN users uh ON uh.id = v.handled_by_user_id
         WHERE {}
         ORDER BY v.entered_at DESC, v.id DESC LIMIT ?",
        conditions.join(" AND ")
    );
    let raw = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(values), raw_visit)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut visits = raw
        .into_iter()
        .map(RawVisit::decode)
        .collect::<Result<Vec<_>>>()?;
    attach_offers(conn, &mut visits)?;
    Ok(visits)
}

/// Fills in the offers of listed visits with one query (ids as one JSON array).
fn attach_offers(conn: &Connection, visits: &mut [QueueVisitSummary]) -> Result<()> {
    if visits.is_empty() {
        return Ok(());
    }
    let ids = visits
        .iter()
        .map(|v| v.id.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let index: HashMap<i64, usize> = visits
        .iter()
        .enumerate()
        .map(|(i, v)| (v.id.0, i))
        .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT o.visit_id, u.id, u.name, u.extension, o.offered_at, o.result
         FROM queue_offers o LEFT JOIN users u ON u.id = o.user_id
         WHERE o.visit_id IN (SELECT value FROM json_each(?1))
         ORDER BY o.visit_id, o.seq",
    )?;
    let rows = stmt
        .query_map([format!("[{ids}]")], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                user_ref(r, 1)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (visit, user, offered_at_ms, result) in rows {
        let Some(v) = index.get(&visit).and_then(|&i| visits.get_mut(i)) else {
            continue;
        };
        v.offers.push(OfferSummary {
            user,
            offered_at_ms,
            result: decode(&result, "queue_offers.result")?,
        });
    }
    Ok(())
}

// ---- statistics ----

fn count(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::BadRow { column: "count(*)" })
}

/// An average as whole milliseconds.
fn avg_ms(v: Option<f64>) -> Option<i64> {
    // Rounded; averages of i64 milliseconds fit back into i64.
    v.map(|a| a.round() as i64)
}

/// Statistics of a tenant's queues and operators for visits entered in
/// `[from_ms, to_ms)`, computed from the queue call log (and, for outgoing calls, from
/// the call log).
pub(crate) fn queue_stats(
    conn: &Connection,
    tenant: TenantId,
    from_ms: i64,
    to_ms: i64,
) -> Result<QueueStatsReport> {
    if !tenant_exists(conn, tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    let tx = conn.unchecked_transaction()?;
    let mut queues: Vec<QueueStats> = {
        let mut stmt = tx.prepare_cached(
            "SELECT v.queue_id, coalesce(q.name, max(v.queue_name)),
                    count(*),
                    sum(v.outcome = 'answered'),
                    sum(v.outcome = 'abandoned'),
                    sum(v.outcome = 'overflowed'),
                    sum(v.outcome = 'given-up'),
                    sum(v.outcome = 'answered' AND v.transferred_to IS NOT NULL),
                    avg(CASE WHEN v.outcome = 'answered' THEN v.wait_ms END),
                    max(CASE WHEN v.outcome = 'answered' THEN v.wait_ms END),
                    avg(CASE WHEN v.outcome <> 'answered' THEN v.wait_ms END),
                    max(CASE WHEN v.outcome <> 'answered' THEN v.wait_ms END),
                    avg(CASE WHEN v.outcome = 'answered' THEN v.talk_ms END)
             FROM queue_visits v LEFT JOIN queues q ON q.id = v.queue_id
             WHERE v.tenant_id = ?1 AND v.entered_at >= ?2 AND v.entered_at < ?3
             GROUP BY v.queue_id, CASE WHEN v.queue_id IS NULL THEN v.queue_name END",
        )?;
        let rows = stmt
            .query_map(params![tenant.0, from_ms, to_ms], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, String>(1)?,
                    [
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ],
                    r.get::<_, Option<f64>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, Option<f64>>(10)?,
                    r.get::<_, Option<i64>>(11)?,
                    r.get::<_, Option<f64>>(12)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(id, name, counts, avg_wa, max_wa, avg_wu, max_wu, avg_talk)| {
                    let [offered, answered, abandoned, overflowed, given_up, transfers] = counts;
                    Ok(QueueStats {
                        queue_id: id.map(QueueId),
                        name,
                        offered: count(offered)?,
                        answered: count(answered)?,
                        abandoned: count(abandoned)?,
                        overflowed: count(overflowed)?,
                        given_up: count(given_up)?,
                        transfers: count(transfers)?,
                        avg_wait_answered_ms: avg_ms(avg_wa),
                        max_wait_answered_ms: max_wa,
                        avg_wait_unanswered_ms: avg_ms(avg_wu),
                        max_wait_unanswered_ms: max_wu,
                        avg_talk_ms: avg_ms(avg_talk),
                    })
                },
            )
            .collect::<Result<_>>()?
    };
    // Every current queue appears, with zeros if it had no calls.
    {
        let mut stmt =
            tx.prepare_cached("SELECT id, name FROM queues WHERE tenant_id = ?1 ORDER BY id")?;
        let current = stmt
            .query_map([tenant.0], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (id, name) in current {
            if !queues.iter().any(|q| q.queue_id == Some(QueueId(id))) {
                queues.push(QueueStats {
                    queue_id: Some(QueueId(id)),
                    name,
                    ..QueueStats::default()
                });
            }
        }
    }
    queues.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.queue_id.is_none().cmp(&b.queue_id.is_none()))
    });

    let operators = {
        let mut stmt = tx.prepare_cached(
            "WITH period AS (
                 SELECT id, answered_by_user_id, talk_ms, transferred_to, outcome
                 FROM queue_visits
                 WHERE tenant_id = ?1 AND entered_at >= ?2 AND entered_at < ?3),
             offered AS (
                 SELECT user_id, count(DISTINCT visit_id) AS n FROM (
                     SELECT o.user_id, o.visit_id FROM queue_offers o
                     JOIN period p ON p.id = o.visit_id
                     UNION ALL
                     SELECT answered_by_user_id, id FROM period
                     WHERE outcome = 'answered')
                 WHERE user_id IS NOT NULL GROUP BY user_id),
             answered AS (
                 SELECT answered_by_user_id AS user_id, count(*) AS n,
                        avg(talk_ms) AS talk, sum(transferred_to IS NOT NULL) AS transfers
                 FROM period
                 WHERE outcome = 'answered' AND answered_by_user_id IS NOT NULL
                 GROUP BY answered_by_user_id),
             ops AS (
                 SELECT user_id FROM offered
                 UNION SELECT m.user_id FROM queue_members m
                       JOIN queues q ON q.id = m.queue_id WHERE q.tenant_id = ?1)
             SELECT u.id, u.extension, u.name, coalesce(offered.n, 0),
                    coalesce(answered.n, 0), answered.talk, coalesce(answered.transfers, 0),
                    (SELECT count(*) FROM call_users cu JOIN calls c ON c.id = cu.call_id
                     WHERE cu.user_id = u.id AND cu.role = 'caller'
                       AND c.direction = 'outbound'
                       AND c.started_at >= ?2 AND c.started_at < ?3)
             FROM ops JOIN users u ON u.id = ops.user_id
             LEFT JOIN offered ON offered.user_id = u.id
             LEFT JOIN answered ON answered.user_id = u.id
             WHERE u.tenant_id = ?1
             ORDER BY length(u.extension), u.extension",
        )?;
        let rows = stmt
            .query_map(params![tenant.0, from_ms, to_ms], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    [
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ],
                    r.get::<_, Option<f64>>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, extension, name, counts, talk)| {
                let [offered, answered, transfers, outgoing] = counts;
                Ok(OperatorStats {
                    user_id: UserId(id),
                    extension,
                    name,
                    offered: count(offered)?,
                    answered: count(answered)?,
                    avg_talk_ms: avg_ms(talk),
                    transfers: count(transfers)?,
                    outgoing: count(outgoing)?,
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    tx.finish()?;
    Ok(QueueStatsReport { queues, operators })
}

/// Per queue, visits answered and left unanswered since `since_ms` (by the time they
/// were answered or left), to seed the engine's "today" counters after a restart.
pub(crate) fn queue_today_counts(
    conn: &Connection,
    since_ms: i64,
) -> Result<Vec<(QueueId, u32, u32)>> {
    // Visits are indexed by (tenant, entry); one that left since `since_ms` entered at
    // most a day earlier (a longer wait is not a realistic queue call and is not
    // counted). CROSS JOIN and `+queue_id` keep SQLite on that index, tenant by tenant.
    let mut stmt = conn.prepare_cached(
        "SELECT v.queue_id, sum(v.outcome = 'answered'), sum(v.outcome <> 'answered')
         FROM tenants t CROSS JOIN queue_visits v
              ON v.tenant_id = t.id AND v.entered_at >= ?2
         WHERE +v.queue_id IS NOT NULL AND coalesce(v.answered_at, v.left_at) >= ?1
         GROUP BY v.queue_id ORDER BY v.queue_id",
    )?;
    let rows = stmt
        .query_map(params![since_ms, since_ms.saturating_sub(DAY_MS)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(q, answered, unanswered)| {
            Ok((
                QueueId(q),
                to_u32(answered, "count(*)")?,
                to_u32(unanswered, "count(*)")?,
            ))
        })
        .collect()
}

// ---- retention ----

/// Deletes, per tenant, queue visits (with their offers) entered more than the
/// tenant's `queue_retention_days` before `now_ms`; returns how many. Batches of
/// [`RETENTION_BATCH`], each its own transaction, like the call log's retention.
pub(crate) fn delete_queue_history_expired(conn: &mut Connection, now_ms: i64) -> Result<u64> {
    let tenants: Vec<(i64, i64)> = conn
        .prepare("SELECT id, queue_retention_days FROM tenants ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut total = 0u64;
    for (tenant, days) in tenants {
        let cutoff = now_ms.saturating_sub(days.saturating_mul(DAY_MS));
        loop {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "DELETE FROM queue_visits WHERE id IN
                     (SELECT id FROM queue_visits WHERE tenant_id = ?1 AND entered_at < ?2
                      LIMIT ?3)",
                params![tenant, cutoff, RETENTION_BATCH],
            )?;
            tx.commit()?;
            total += n as u64;
            if (n as i64) < RETENTION_BATCH {
                break;
            }
        }
    }
    Ok(total)
}

// ---- live snapshot ----

/// Replaces the live snapshot with `rows` in one transaction. Rows of queues that no
/// longer exist are skipped; the tenant is taken from the queue.
pub(crate) fn write_queue_live(conn: &mut Connection, rows: &[QueueLive]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM queue_live", [])?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO queue_live (queue_id, tenant_id, name, agents_logged_in,
                                     agents_available, agents_busy, agents_paused,
                                     callers_waiting, longest_wait_ms, answered_today,
                                     unanswered_today, updated_at_ms)
             SELECT id, tenant_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
             FROM queues WHERE id = ?1",
        )?;
        for r in rows {
            stmt.execute(params![
                r.queue_id.0,
                clean_text(&r.name, MAX_QUEUE_NAME_LEN).unwrap_or_else(|| "?".to_owned()),
                r.agents_logged_in,
                r.agents_available,
                r.agents_busy,
                r.agents_paused,
                r.callers_waiting,
                r.longest_wait_ms.map(|w| w.max(0)),
                r.answered_today,
                r.unanswered_today,
                r.updated_at_ms,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The live snapshot (of one tenant, or all) by tenant name, then queue name.
pub(crate) fn queue_live(conn: &Connection, tenant: Option<TenantId>) -> Result<Vec<QueueLive>> {
    if let Some(t) = tenant {
        if !tenant_exists(conn, t)? {
            return Err(StoreError::NotFound(Entity::Tenant));
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT l.queue_id, l.tenant_id, l.name, l.agents_logged_in, l.agents_available,
                l.agents_busy, l.agents_paused, l.callers_waiting, l.longest_wait_ms,
                l.answered_today, l.unanswered_today, l.updated_at_ms
         FROM queue_live l JOIN tenants t ON t.id = l.tenant_id
         WHERE ?1 IS NULL OR l.tenant_id = ?1
         ORDER BY t.name, l.name",
    )?;
    let rows = stmt
        .query_map([tenant.map(|t| t.0)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                [
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, i64>(10)?,
                ],
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, i64>(11)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(q, t, name, counts, longest_wait_ms, updated_at_ms)| {
            let [logged_in, available, busy, paused, waiting, answered, unanswered] = counts;
            let c = |v| to_u32(v, "queue_live");
            Ok(QueueLive {
                queue_id: QueueId(q),
                tenant_id: TenantId(t),
                name,
                agents_logged_in: c(logged_in)?,
                agents_available: c(available)?,
                agents_busy: c(busy)?,
                agents_paused: c(paused)?,
                callers_waiting: c(waiting)?,
                longest_wait_ms,
                answered_today: c(answered)?,
                unanswered_today: c(unanswered)?,
                updated_at_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
