//! The SQL of the call log: one row per call, one per leg, one per (user, role), one per
//! side with media statistics, written in one transaction when the call ends; listing;
//! retention.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use super::model::{
    CallFilter, CallId, CallOutcome, CallRecord, CallSummary, CallUserRole, Direction,
    ForwardReason, LegKind, LegRecord, MediaLegKind, MediaStatsRecord, TenantId, UserId, UserRef,
};
use super::validate::clean_text;
use super::{conference, queuelog, Entity, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Longest phone number or extension kept (characters); longer ones are cut.
pub(super) const MAX_NUMBER_LEN: usize = 64;
/// Longest caller or callee name kept (characters).
pub(super) const MAX_NAME_LEN: usize = 100;
/// Longest end reason kept (characters).
const MAX_END_REASON_LEN: usize = 128;
/// Longest leg target (a Contact URI) kept (characters).
const MAX_TARGET_LEN: usize = 1024;
/// Longest SIP Call-ID kept (characters).
const MAX_CALL_ID_LEN: usize = 256;
/// Longest codec name kept (characters; the known ones have at most 4).
const MAX_CODEC_LEN: usize = 32;
/// Calls deleted per retention transaction, so the write lock is released between
/// batches (the CLI, or another process, can write in between).
pub(super) const RETENTION_BATCH: i64 = 5000;

/// A Call-ID as stored: whitespace and control characters (impossible in a parsed
/// Call-ID, RFC 3261 section 25.1 `word`) become `_`, so the space-separated list of a
/// call stays splittable; cut to [`MAX_CALL_ID_LEN`].
pub(super) fn clean_call_id(s: &str) -> String {
    s.chars()
        .take(MAX_CALL_ID_LEN)
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A counter as stored: SQLite integers are signed, so values beyond `i64::MAX` saturate.
fn counter(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A jitter as stored: the column is CHECKed `>= 0` and NaN would bind as NULL, so NaN
/// and negatives become 0 and infinity the largest finite value.
fn clean_jitter(ms: f64) -> f64 {
    if ms.is_nan() {
        0.0
    } else {
        ms.clamp(0.0, f64::MAX)
    }
}

/// Writes a finished call, its legs, its users, its media statistics and its queue
/// visits in one transaction, and marks the missed queue visits it handles
/// (see [`queuelog::mark_handled`]).
///
/// Nothing in the record's content makes it fail: text is cleaned and cut, not refused
/// (a remote party must not be able to keep its call out of the log with an odd name),
/// a tenant or user removed while the call ran is stored as absent, duplicate (user,
/// role) pairs are merged, the user in `answered_by` is added with the role
/// `answered` if the record does not list it, a second media record for the same side
/// is dropped, and media counters beyond `i64::MAX` saturate.
pub(crate) fn write_call(conn: &mut Connection, c: &CallRecord) -> Result<CallId> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id = insert_call(&tx, c)?;
    tx.commit()?;
    Ok(id)
}

/// Writes several calls in one transaction (group commit: one commit for a burst of
/// call ends instead of one each), each inside its own savepoint so one failing call
/// does not take the others with it. Returns each call's result; an error of the
/// transaction itself (begin or commit) is returned whole and nothing is written.
pub(crate) fn write_calls(
    conn: &mut Connection,
    calls: &[&CallRecord],
) -> Result<Vec<Result<CallId>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(calls.len());
    for c in calls {
        let sp = tx.savepoint()?;
        let r = insert_call(&sp, c);
        if r.is_ok() {
            sp.commit()?;
        }
        // On error the savepoint is dropped, which rolls back that call alone.
        out.push(r);
    }
    tx.commit()?;
    Ok(out)
}

/// Inserts one call with its legs, users, media and queue visits inside the caller's
/// transaction (the one function behind the single and the batch write paths).
fn insert_call(tx: &Connection, c: &CallRecord) -> Result<CallId> {
    let duration_ms = c
        .answered_at_ms
        .map_or(0, |a| c.ended_at_ms.saturating_sub(a).max(0));
    let call_ids: Vec<String> = c
        .sip_call_ids
        .iter()
        .map(|s| clean_call_id(s))
        .filter(|s| !s.is_empty())
        .collect();
    // Subselects turn an id that no longer exists into NULL instead of a foreign key
    // failure that would lose the whole record.
    tx.prepare_cached(
        "INSERT INTO calls (tenant_id, direction, caller_number, caller_name, callee_number,
                            callee_name, started_at, answered_at, ended_at, duration_ms,
                            outcome, answered_by_user_id, forward_reason, end_reason,
                            sip_call_ids)
         VALUES ((SELECT id FROM tenants WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                 ?11, (SELECT id FROM users WHERE id = ?12), ?13, ?14, ?15)",
    )?
    .execute(params![
        c.tenant.map(|t| t.0),
        c.direction.as_str(),
        clean_text(&c.caller_number, MAX_NUMBER_LEN).unwrap_or_default(),
        c.caller_name
            .as_deref()
            .and_then(|s| clean_text(s, MAX_NAME_LEN)),
        clean_text(&c.callee_number, MAX_NUMBER_LEN).unwrap_or_default(),
        c.callee_name
            .as_deref()
            .and_then(|s| clean_text(s, MAX_NAME_LEN)),
        c.started_at_ms,
        c.answered_at_ms,
        c.ended_at_ms,
        duration_ms,
        c.outcome.as_str(),
        c.answered_by.map(|u| u.0),
        c.forward_reason.map(ForwardReason::as_str),
        c.end_reason
            .as_deref()
            .and_then(|s| clean_text(s, MAX_END_REASON_LEN)),
        call_ids.join(" "),
    ])?;
    let id = tx.last_insert_rowid();
    {
        let mut leg_stmt = tx.prepare_cached(
            "INSERT INTO call_legs (call_id, seq, user_id, kind, target, sip_call_id,
                                    started_at, answered_at, ended_at, outcome, status_code)
             VALUES (?1, ?2, (SELECT id FROM users WHERE id = ?3), ?4, ?5, ?6, ?7, ?8, ?9,
                     ?10, ?11)",
        )?;
        for (seq, leg) in c.legs.iter().enumerate() {
            let seq = i64::try_from(seq).unwrap_or(i64::MAX);
            leg_stmt.execute(params![
                id,
                seq,
                leg.user.map(|u| u.0),
                leg.kind.as_str(),
                clean_text(&leg.target, MAX_TARGET_LEN).unwrap_or_default(),
                clean_call_id(&leg.sip_call_id),
                leg.started_at_ms,
                leg.answered_at_ms,
                leg.ended_at_ms,
                leg.outcome.as_str(),
                // Only a real SIP status is kept (the column is CHECKed to 100..=699).
                leg.status_code.filter(|s| (100..=699).contains(s)),
            ])?;
        }
        let mut user_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO call_users (call_id, user_id, role)
             SELECT ?1, id, ?3 FROM users WHERE id = ?2",
        )?;
        let answered = c.answered_by.map(|u| (u, CallUserRole::Answered));
        for (user, role) in c.users.iter().copied().chain(answered) {
            user_stmt.execute(params![id, user.0, role.as_str()])?;
        }
        // OR IGNORE: the first record of a side wins (the primary key is (call, side)).
        let mut media_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO call_media (call_id, leg, codec, packets_received,
                                               packets_sent, packets_lost, jitter_ms,
                                               bytes_received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for m in &c.media {
            media_stmt.execute(params![
                id,
                m.leg.as_str(),
                m.codec
                    .as_deref()
                    .and_then(|s| clean_text(s, MAX_CODEC_LEN)),
                counter(m.packets_received),
                counter(m.packets_sent),
                counter(m.packets_lost),
                clean_jitter(m.jitter_ms),
                counter(m.bytes_received),
            ])?;
        }
    }
    // The queue visits go with their call, and the call may handle earlier missed
    // visits (a callback, or the caller answered on a new call): same transaction.
    queuelog::insert_visits(tx, id, c)?;
    queuelog::mark_handled(tx, c)?;
    // Conference participants written before their call find it by its Call-IDs.
    let mut sip_ids = call_ids;
    sip_ids.extend(c.legs.iter().map(|l| clean_call_id(&l.sip_call_id)));
    conference::link_participants_to_call(tx, CallId(id), &sip_ids)?;
    Ok(CallId(id))
}

fn parse<T: std::str::FromStr>(s: &str, column: &'static str) -> Result<T> {
    s.parse().map_err(|_| StoreError::BadRow { column })
}

/// A `calls` row as read, before its text columns are decoded.
struct RawCall {
    id: i64,
    tenant_id: Option<i64>,
    tenant_name: Option<String>,
    direction: String,
    caller_number: String,
    caller_name: Option<String>,
    callee_number: String,
    callee_name: Option<String>,
    started_at_ms: i64,
    answered_at_ms: Option<i64>,
    ended_at_ms: i64,
    duration_ms: i64,
    outcome: String,
    answered_by: Option<(i64, String, String)>,
    forward_reason: Option<String>,
    end_reason: Option<String>,
    sip_call_ids: String,
}

impl RawCall {
    fn decode(self) -> Result<CallSummary> {
        Ok(CallSummary {
            id: CallId(self.id),
            tenant_id: self.tenant_id.map(TenantId),
            tenant_name: self.tenant_name,
            direction: parse::<Direction>(&self.direction, "calls.direction")?,
            caller_number: self.caller_number,
            caller_name: self.caller_name,
            callee_number: self.callee_number,
            callee_name: self.callee_name,
            started_at_ms: self.started_at_ms,
            answered_at_ms: self.answered_at_ms,
            ended_at_ms: self.ended_at_ms,
            duration_ms: self.duration_ms,
            outcome: parse::<CallOutcome>(&self.outcome, "calls.outcome")?,
            answered_by: self.answered_by.map(|(id, name, extension)| UserRef {
                id: UserId(id),
                name,
                extension,
            }),
            forward_reason: self
                .forward_reason
                .map(|s| parse::<ForwardReason>(&s, "calls.forward_reason"))
                .transpose()?,
            end_reason: self.end_reason,
            sip_call_ids: self
                .sip_call_ids
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            media: Vec::new(),
        })
    }
}

/// Lists calls matching the filter, newest first.
pub(crate) fn list_calls(conn: &Connection, f: &CallFilter) -> Result<Vec<CallSummary>> {
    // Only the conditions in use go into the SQL: `?1 IS NULL OR col = ?1` would keep
    // SQLite from using the (tenant_id, started_at) index.
    let mut conditions: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(t) = f.tenant {
        values.push(Value::Integer(t.0));
        conditions.push("c.tenant_id = ?");
    }
    if let Some(u) = f.user {
        values.push(Value::Integer(u.0));
        conditions.push("c.id IN (SELECT call_id FROM call_users WHERE user_id = ?)");
    }
    if let Some(since) = f.since_ms {
        values.push(Value::Integer(since));
        conditions.push("c.started_at >= ?");
    }
    values.push(Value::Integer(i64::from(f.limit)));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT c.id, c.tenant_id, t.name, c.direction, c.caller_number, c.caller_name,
                c.callee_number, c.callee_name, c.started_at, c.answered_at, c.ended_at,
                c.duration_ms, c.outcome, u.id, u.name, u.extension, c.forward_reason,
                c.end_reason, c.sip_call_ids
         FROM calls c
         LEFT JOIN tenants t ON t.id = c.tenant_id
         LEFT JOIN users u ON u.id = c.answered_by_user_id
         {filter}
         ORDER BY c.started_at DESC, c.id DESC
         LIMIT ?"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |r| {
        let answered_by = match (r.get::<_, Option<i64>>(13)?, r.get(14)?, r.get(15)?) {
            (Some(id), Some(name), Some(ext)) => Some((id, name, ext)),
            _ => None,
        };
        Ok(RawCall {
            id: r.get(0)?,
            tenant_id: r.get(1)?,
            tenant_name: r.get(2)?,
            direction: r.get(3)?,
            caller_number: r.get(4)?,
            caller_name: r.get(5)?,
            callee_number: r.get(6)?,
            callee_name: r.get(7)?,
            started_at_ms: r.get(8)?,
            answered_at_ms: r.get(9)?,
            ended_at_ms: r.get(10)?,
            duration_ms: r.get(11)?,
            outcome: r.get(12)?,
            answered_by,
            forward_reason: r.get(16)?,
            end_reason: r.get(17)?,
            sip_call_ids: r.get(18)?,
        })
    })?;
    let raw = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut calls = raw
        .into_iter()
        .map(RawCall::decode)
        .collect::<Result<Vec<_>>>()?;
    attach_media(conn, &mut calls)?;
    Ok(calls)
}

/// A `call_media` row as read: (call id, side, codec, received, sent, lost, jitter,
/// bytes received).
type RawMedia = (i64, String, Option<String>, i64, i64, i64, f64, i64);

fn decode_media(
    (_, leg, codec, received, sent, lost, jitter_ms, bytes): RawMedia,
) -> Result<MediaStatsRecord> {
    let count =
        |v: i64, column: &'static str| u64::try_from(v).map_err(|_| StoreError::BadRow { column });
    Ok(MediaStatsRecord {
        leg: parse::<MediaLegKind>(&leg, "call_media.leg")?,
        codec,
        packets_received: count(received, "call_media.packets_received")?,
        packets_sent: count(sent, "call_media.packets_sent")?,
        packets_lost: count(lost, "call_media.packets_lost")?,
        jitter_ms,
        bytes_received: count(bytes, "call_media.bytes_received")?,
    })
}

/// The columns of a `call_media` row, in [`RawMedia`] order.
const MEDIA_COLUMNS: &str = "call_id, leg, codec, packets_received, packets_sent, \
                             packets_lost, jitter_ms, bytes_received";
/// Per call, the caller side first.
const MEDIA_ORDER: &str = "ORDER BY call_id, CASE leg WHEN 'caller' THEN 0 ELSE 1 END";

fn media_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawMedia> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

/// Fills in the media statistics of listed calls with one query for the whole page (the
/// ids go in as one JSON array, so a large page needs no parameter per call).
fn attach_media(conn: &Connection, calls: &mut [CallSummary]) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let ids = calls
        .iter()
        .map(|c| c.id.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let index: HashMap<i64, usize> = calls.iter().enumerate().map(|(i, c)| (c.id.0, i)).collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MEDIA_COLUMNS} FROM call_media
         WHERE call_id IN (SELECT value FROM json_each(?1)) {MEDIA_ORDER}"
    ))?;
    let rows = stmt
        .query_map([format!("[{ids}]")], media_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for raw in rows {
        let Some(call) = index.get(&raw.0).and_then(|&i| calls.get_mut(i)) else {
            continue;
        };
        call.media.push(decode_media(raw)?);
    }
    Ok(())
}

/// The media statistics of a call, caller side first; empty when its media was not
/// anchored ([`StoreError::NotFound`] if there is no such call).
pub(crate) fn call_media(conn: &Connection, id: CallId) -> Result<Vec<MediaStatsRecord>> {
    ensure_call_exists(conn, id)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MEDIA_COLUMNS} FROM call_media WHERE call_id = ?1 {MEDIA_ORDER}"
    ))?;
    let rows = stmt
        .query_map([id.0], media_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(decode_media).collect()
}

fn ensure_call_exists(conn: &Connection, id: CallId) -> Result<()> {
    let exists = conn
        .query_row("SELECT 1 FROM calls WHERE id = ?1", [id.0], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(Entity::Call))
    }
}

/// The legs of a call in creation order ([`StoreError::NotFound`] if there is no such
/// call).
pub(crate) fn call_legs(conn: &Connection, id: CallId) -> Result<Vec<LegRecord>> {
    ensure_call_exists(conn, id)?;
    type RawLeg = (
        Option<i64>,
        String,
        String,
        String,
        i64,
        Option<i64>,
        i64,
        String,
        Option<i64>,
    );
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, kind, target, sip_call_id, started_at, answered_at, ended_at,
                outcome, status_code
         FROM call_legs WHERE call_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([id.0], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
        ))
    })?;
    let raw = rows.collect::<rusqlite::Result<Vec<RawLeg>>>()?;
    raw.into_iter()
        .map(
            |(user, kind, target, sip_call_id, started, answered, ended, outcome, status)| {
                Ok(LegRecord {
                    user: user.map(UserId),
                    kind: parse::<LegKind>(&kind, "call_legs.kind")?,
                    target,
                    sip_call_id,
                    started_at_ms: started,
                    answered_at_ms: answered,
                    ended_at_ms: ended,
                    outcome: parse::<CallOutcome>(&outcome, "call_legs.outcome")?,
                    status_code: status.map(u16::try_from).transpose().map_err(|_| {
                        StoreError::BadRow {
                            column: "call_legs.status_code",
                        }
                    })?,
                })
            },
        )
        .collect()
}

/// Deletes calls started before `cutoff_ms` (with their legs, users and media, by
/// cascade); returns how many calls. Works in batches, each its own transaction, so a
/// first run over a large backlog does not hold the write lock for long at a time.
///
/// This is the user call log retention (30 days, run hourly by the runtime). The
/// conference log is the call log's too: conferences started before the cutoff (with
/// their participants) and the CLI's conference controls and call commands sent before
/// it go in the same sweep. Queue history has its own per-tenant retention and is not
/// derived from these rows.
pub(crate) fn delete_calls_before(conn: &mut Connection, cutoff_ms: i64) -> Result<u64> {
    conference::delete_conferences_before(conn, cutoff_ms)?;
    super::call_commands::delete_call_commands_before(conn, cutoff_ms)?;
    let mut total = 0u64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM calls WHERE id IN
                 (SELECT id FROM calls WHERE started_at < ?1 LIMIT ?2)",
            params![cutoff_ms, RETENTION_BATCH],
        )?;
        tx.commit()?;
        total += n as u64;
        if (n as i64) < RETENTION_BATCH {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::repo::{add_tenant, add_user, remove_tenant, remove_user};
    use super::super::schema;
    use super::super::{NewUser, Password};
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn =
            schema::open_writer(&dir.path().join("t.db"), schema::BUSY_TIMEOUT).expect("open");
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
                sip_username: format!("u{ext}"),
                realm: "sip.example.no".into(),
                password: Password::new("long-enough"),
            },
        )
        .expect("user")
    }

    fn leg(user: Option<UserId>, kind: LegKind, outcome: CallOutcome) -> LegRecord {
        LegRecord {
            user,
            kind,
            target: "sip:10@192.0.2.10:5060".into(),
            sip_call_id: "leg@sb".into(),
            started_at_ms: 1_000,
            answered_at_ms: None,
            ended_at_ms: 5_000,
            outcome,
            status_code: Some(487),
        }
    }

    fn call(tenant: Option<TenantId>, started: i64) -> CallRecord {
        CallRecord {
            tenant,
            direction: Direction::Inbound,
            caller_number: "+4790000001".into(),
            caller_name: Some("Kari Nordmann".into()),
            callee_number: "+4721000010".into(),
            callee_name: None,
            started_at_ms: started,
            answered_at_ms: Some(started + 2_000),
            ended_at_ms: started + 62_500,
            outcome: CallOutcome::Answered,
            answered_by: None,
            forward_reason: None,
            end_reason: Some("caller-bye".into()),
            sip_call_ids: vec!["a@carrier".into(), "b@sb".into()],
            users: vec![],
            legs: vec![],
            media: vec![],
            queue_visits: vec![],
        }
    }

    fn media(
        leg: MediaLegKind,
        codec: Option<&str>,
        lost: u64,
        jitter_ms: f64,
    ) -> MediaStatsRecord {
        MediaStatsRecord {
            leg,
            codec: codec.map(str::to_owned),
            packets_received: 3_000,
            packets_sent: 2_990,
            packets_lost: lost,
            jitter_ms,
            bytes_received: 480_000,
        }
    }

    fn all_calls(conn: &Connection) -> Vec<CallSummary> {
        list_calls(
            conn,
            &CallFilter {
                tenant: None,
                user: None,
                since_ms: None,
                limit: 100,
            },
        )
        .expect("list")
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn write_and_read_back_a_full_call() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let u10 = user(&conn, t, "10");
        let u11 = user(&conn, t, "11");
        let mut c = call(Some(t), 1_700_000_000_000);
        c.answered_by = Some(u11);
        c.forward_reason = Some(ForwardReason::NoAnswer);
        c.users = vec![
            (u10, CallUserRole::Callee),
            (u10, CallUserRole::Forwarded),
            (u10, CallUserRole::Callee),
        ];
        let mut answered = leg(Some(u11), LegKind::Forward, CallOutcome::Answered);
        answered.answered_at_ms = Some(3_000);
        answered.status_code = Some(200);
        c.legs = vec![
            leg(None, LegKind::Inbound, CallOutcome::Answered),
            leg(Some(u10), LegKind::Phone, CallOutcome::Missed),
            answered,
        ];
        let id = write_call(&mut conn, &c).expect("write");

        let listed = list_calls(
            &conn,
            &CallFilter {
                tenant: None,
                user: None,
                since_ms: None,
                limit: 10,
            },
        )
        .expect("list");
        assert_eq!(listed.len(), 1);
        let s = &listed[0];
        assert_eq!(s.id, id);
        assert_eq!(s.tenant_name.as_deref(), Some("Acme"));
        assert_eq!(s.duration_ms, 60_500);
        assert_eq!(s.outcome, CallOutcome::Answered);
        assert_eq!(s.forward_reason, Some(ForwardReason::NoAnswer));
        assert_eq!(
            s.answered_by,
            Some(UserRef {
                id: u11,
                name: "User 11".into(),
                extension: "11".into()
            })
        );
        assert_eq!(s.sip_call_ids, ["a@carrier", "b@sb"]);
        assert_eq!(s.caller_name.as_deref(), Some("Kari Nordmann"));
        assert_eq!(
            call_legs(&conn, id).expect("legs"),
            c.legs,
            "exact round trip"
        );
        // Callee + forwarded for 10 (duplicate merged), answered for 11 (implied).
        assert_eq!(count(&conn, "call_users"), 3);
        assert!(matches!(
            call_legs(&conn, CallId(999)),
            Err(StoreError::NotFound(Entity::Call))
        ));
    }

    #[test]
    fn media_statistics_round_trip_and_list_per_call() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let mut anchored = call(Some(t), 1_000);
        // Given callee first: read back caller first.
        anchored.media = vec![
            media(MediaLegKind::Callee, Some("PCMA"), 0, 0.25),
            media(MediaLegKind::Caller, Some("PCMU"), 12, 11.5),
        ];
        let anchored = write_call(&mut conn, &anchored).expect("write");
        let plain = write_call(&mut conn, &call(Some(t), 2_000)).expect("write");
        let mut one_side = call(None, 3_000);
        one_side.media = vec![media(MediaLegKind::Caller, None, 0, 0.0)];
        let one_side = write_call(&mut conn, &one_side).expect("write");

        let expected = vec![
            media(MediaLegKind::Caller, Some("PCMU"), 12, 11.5),
            media(MediaLegKind::Callee, Some("PCMA"), 0, 0.25),
        ];
        assert_eq!(call_media(&conn, anchored).expect("media"), expected);
        assert_eq!(call_media(&conn, plain).expect("media"), []);
        assert!(matches!(
            call_media(&conn, CallId(999)),
            Err(StoreError::NotFound(Entity::Call))
        ));
        let listed: Vec<(CallId, Vec<MediaStatsRecord>)> = all_calls(&conn)
            .into_iter()
            .map(|s| (s.id, s.media))
            .collect();
        assert_eq!(
            listed,
            [
                (one_side, vec![media(MediaLegKind::Caller, None, 0, 0.0)]),
                (plain, vec![]),
                (anchored, expected),
            ]
        );
    }

    #[test]
    fn odd_media_values_are_stored_not_refused() {
        let (_d, mut conn) = db();
        let mut c = call(None, 1_000);
        let mut huge = media(MediaLegKind::Caller, Some("PC\nMU"), u64::MAX, f64::NAN);
        huge.packets_received = u64::MAX;
        huge.bytes_received = u64::MAX;
        let mut negative = media(MediaLegKind::Callee, Some(""), 0, -3.0);
        negative.codec = Some(format!("x{}", "y".repeat(100)));
        let mut infinite = media(MediaLegKind::Callee, None, 0, f64::INFINITY);
        infinite.packets_sent = 1;
        // A second record for the callee side: dropped, the first one wins.
        c.media = vec![huge, negative, infinite];
        let id = write_call(&mut conn, &c).expect("still written");
        let m = call_media(&conn, id).expect("media");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].codec.as_deref(), Some("PC MU"));
        assert_eq!(
            (
                m[0].packets_received,
                m[0].packets_lost,
                m[0].bytes_received
            ),
            (i64::MAX as u64, i64::MAX as u64, i64::MAX as u64),
            "saturated"
        );
        assert_eq!(m[0].jitter_ms, 0.0, "NaN stored as 0");
        assert_eq!(m[1].jitter_ms, 0.0, "negative stored as 0");
        assert_eq!(m[1].packets_sent, 2_990, "the first callee record won");
        assert_eq!(m[1].codec.as_deref().map(str::len), Some(MAX_CODEC_LEN));
        let mut c = call(None, 2_000);
        c.media = vec![media(MediaLegKind::Callee, Some(""), 0, f64::INFINITY)];
        let id = write_call(&mut conn, &c).expect("written");
        let m = call_media(&conn, id).expect("media");
        assert_eq!((m[0].codec.as_deref(), m[0].jitter_ms), (None, f64::MAX));
    }

    #[test]
    fn a_failing_call_in_a_batch_does_not_take_the_others() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        // Stands in for any per-call database failure.
        conn.execute_batch(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON call_legs
             WHEN NEW.target = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .expect("trigger");
        let mut good = call(Some(t), 1_000);
        good.media = vec![media(MediaLegKind::Caller, Some("PCMU"), 1, 2.0)];
        let mut bad = call(Some(t), 2_000);
        bad.media = good.media.clone();
        let mut l = leg(None, LegKind::Trunk, CallOutcome::Failed);
        l.target = "boom".into();
        bad.legs = vec![leg(None, LegKind::Inbound, CallOutcome::Failed), l];
        let results = write_calls(&mut conn, &[&good, &bad, &good]).expect("batch");
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok() && results[2].is_ok());
        assert!(matches!(results[1], Err(StoreError::Sqlite(_))));
        assert_eq!(count(&conn, "calls"), 2, "the failed call left no row");
        assert_eq!(count(&conn, "call_legs"), 0);
        assert_eq!(
            count(&conn, "call_media"),
            2,
            "media written with each good call, none for the failed one"
        );
        for id in [&results[0], &results[2]] {
            let id = *id.as_ref().expect("written");
            assert_eq!(call_media(&conn, id).expect("media"), good.media);
        }
    }

    #[test]
    fn odd_content_is_cleaned_not_refused() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let mut c = call(Some(TenantId(t.0 + 100)), 10);
        c.caller_name = Some(format!("Evil\r\nName{}", "x".repeat(500)));
        c.caller_number = "1".repeat(200);
        c.answered_by = Some(UserId(4242));
        c.users = vec![(UserId(4242), CallUserRole::Callee)];
        c.sip_call_ids = vec!["has space@x".into(), String::new()];
        c.answered_at_ms = Some(100);
        c.ended_at_ms = 50; // a wall clock step backwards
        let mut l = leg(Some(UserId(4242)), LegKind::Trunk, CallOutcome::Failed);
        l.status_code = Some(999);
        c.legs = vec![l];
        let id = write_call(&mut conn, &c).expect("still written");
        let s = list_calls(
            &conn,
            &CallFilter {
                tenant: None,
                user: None,
                since_ms: None,
                limit: 1,
            },
        )
        .expect("list")
        .remove(0);
        assert_eq!(s.tenant_id, None, "unknown tenant stored as absent");
        assert_eq!(s.answered_by, None);
        assert_eq!(s.duration_ms, 0);
        assert_eq!(s.caller_number.len(), MAX_NUMBER_LEN);
        let name = s.caller_name.expect("name");
        assert!(name.starts_with("Evil  Name") && name.chars().count() == MAX_NAME_LEN);
        assert_eq!(s.sip_call_ids, ["has_space@x"]);
        let legs = call_legs(&conn, id).expect("legs");
        assert_eq!((legs[0].user, legs[0].status_code), (None, None));
        assert_eq!(count(&conn, "call_users"), 0);
    }

    #[test]
    fn listing_order_and_filters() {
        let (_d, mut conn) = db();
        let a = add_tenant(&conn, "Acme").expect("tenant");
        let b = add_tenant(&conn, "Beta").expect("tenant");
        let ua = user(&conn, a, "10");
        let ub = user(&conn, b, "20");
        let mut ids = Vec::new();
        for (i, (tenant, u)) in [(a, ua), (b, ub), (a, ua), (a, ua), (b, ub)]
            .into_iter()
            .enumerate()
        {
            let mut c = call(Some(tenant), 1_000 * (i as i64 + 1));
            // Only some of tenant a's calls involve its user.
            if i != 3 {
                c.users = vec![(u, CallUserRole::Callee)];
            }
            ids.push(write_call(&mut conn, &c).expect("write"));
        }
        // Same start time as the newest: the later row comes first.
        ids.push(write_call(&mut conn, &call(Some(a), 5_000)).expect("write"));
        let list = |tenant, user, since_ms, limit| -> Vec<CallId> {
            list_calls(
                &conn,
                &CallFilter {
                    tenant,
                    user,
                    since_ms,
                    limit,
                },
            )
            .expect("list")
            .into_iter()
            .map(|s| s.id)
            .collect()
        };
        assert_eq!(
            list(None, None, None, 50),
            [ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]
        );
        assert_eq!(list(None, None, None, 2), [ids[5], ids[4]]);
        assert_eq!(
            list(Some(a), None, None, 50),
            [ids[5], ids[3], ids[2], ids[0]]
        );
        assert_eq!(list(None, Some(ua), None, 50), [ids[2], ids[0]]);
        assert_eq!(list(Some(b), Some(ub), Some(2_000), 50), [ids[4], ids[1]]);
        assert_eq!(list(Some(b), Some(ua), None, 50), Vec::<CallId>::new());
        assert_eq!(list(None, None, Some(4_000), 0), Vec::<CallId>::new());
    }

    #[test]
    fn retention_cascades_and_keeps_recent_calls() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let u = user(&conn, t, "10");
        let mut keep = None;
        for started in [1_000, 2_000, 2_999, 3_000, 4_000] {
            let mut c = call(Some(t), started);
            c.users = vec![(u, CallUserRole::Callee)];
            c.legs = vec![
                leg(None, LegKind::Inbound, CallOutcome::Answered),
                leg(Some(u), LegKind::Phone, CallOutcome::Answered),
            ];
            c.media = vec![
                media(MediaLegKind::Caller, Some("PCMA"), 0, 1.0),
                media(MediaLegKind::Callee, Some("PCMA"), 0, 1.0),
            ];
            let id = write_call(&mut conn, &c).expect("write");
            if started == 3_000 {
                keep = Some(id);
            }
        }
        assert_eq!(delete_calls_before(&mut conn, 3_000).expect("delete"), 3);
        assert_eq!(count(&conn, "calls"), 2);
        assert_eq!(
            count(&conn, "call_legs"),
            4,
            "legs of deleted calls went too"
        );
        assert_eq!(count(&conn, "call_users"), 2);
        assert_eq!(
            count(&conn, "call_media"),
            4,
            "media of deleted calls went too"
        );
        assert_eq!(
            call_legs(&conn, keep.expect("kept id"))
                .expect("legs")
                .len(),
            2
        );
        assert_eq!(
            call_media(&conn, keep.expect("kept id"))
                .expect("media")
                .len(),
            2
        );
        assert_eq!(delete_calls_before(&mut conn, 3_000).expect("again"), 0);
    }

    #[test]
    fn retention_batches_large_backlogs() {
        let (_d, mut conn) = db();
        let n = RETENTION_BATCH * 2 + 7;
        {
            let tx = conn.transaction().expect("tx");
            for i in 0..n {
                tx.execute(
                    "INSERT INTO calls (direction, caller_number, callee_number, started_at,
                                        ended_at, duration_ms, outcome)
                     VALUES ('inbound', '+4790000001', '+4721000000', ?1, ?1, 0, 'missed')",
                    [i],
                )
                .expect("insert");
            }
            tx.commit().expect("commit");
        }
        write_call(&mut conn, &call(None, n + 10)).expect("recent");
        assert_eq!(
            delete_calls_before(&mut conn, n + 10).expect("delete"),
            n as u64
        );
        assert_eq!(count(&conn, "calls"), 1);
    }

    #[test]
    fn removing_users_and_tenants() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let u = user(&conn, t, "10");
        let mut c = call(Some(t), 1_000);
        c.answered_by = Some(u);
        c.legs = vec![leg(Some(u), LegKind::Phone, CallOutcome::Answered)];
        c.media = vec![media(MediaLegKind::Caller, Some("PCMU"), 0, 0.5)];
        let id = write_call(&mut conn, &c).expect("write");
        remove_user(&conn, u).expect("remove user");
        let s = list_calls(
            &conn,
            &CallFilter {
                tenant: Some(t),
                user: None,
                since_ms: None,
                limit: 5,
            },
        )
        .expect("list");
        assert_eq!(s.len(), 1, "the call stays with its tenant");
        assert_eq!(s[0].answered_by, None);
        assert_eq!(call_legs(&conn, id).expect("legs")[0].user, None);
        assert_eq!(count(&conn, "call_users"), 0);
        remove_tenant(&mut conn, t, true).expect("remove tenant");
        assert_eq!(count(&conn, "calls"), 0, "a removed tenant's call log goes");
        assert_eq!(count(&conn, "call_legs"), 0);
        assert_eq!(count(&conn, "call_media"), 0);
    }
}
