//! The conference log: one row per conference that happened, one per participant's stay,
//! written by the daemon in one transaction when the conference ends; listing; the
//! link of each stay to the participant's own call log row; retention with the call log.

use std::collections::HashMap;

use rusqlite::{params, Connection, TransactionBehavior};

use crate::store::calllog::{clean_call_id, MAX_NAME_LEN, MAX_NUMBER_LEN, RETENTION_BATCH};
use crate::store::conference_model::{
    ConferenceId, ConferenceLogFilter, ConferenceOrigin, ConferenceRecord, ConferenceRoomId,
    ConferenceSummary, ParticipantEnd, ParticipantSummary,
};
use crate::store::model::{CallId, TenantId, UserId, UserRef};
use crate::store::queues::decode;
use crate::store::repo::{constraint, tenant_exists};
use crate::store::validate::clean_text;
use crate::store::{Entity, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Writes a finished conference with its participants in one transaction.
///
/// Like the call log, the content never makes it fail: text is cleaned and cut, a room
/// or user removed meanwhile is stored as absent (the room keeps its name), a room name
/// that cleans to nothing is stored as "?". Only a tenant removed meanwhile refuses it
/// ([`StoreError::NotFound`] with `Entity::Tenant`): its records would be personal data
/// nobody can list. Each stay is linked to its call if the call is already written (else
/// the call links it when written).
pub(crate) fn write_conference(
    conn: &mut Connection,
    c: &ConferenceRecord,
) -> Result<ConferenceId> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (room, room_name, ad_hoc) = match &c.origin {
        ConferenceOrigin::Room { room, name } => (
            Some(room.0),
            Some(clean_text(name, MAX_NAME_LEN).unwrap_or_else(|| "?".to_owned())),
            false,
        ),
        ConferenceOrigin::AdHoc => (None, None, true),
    };
    tx.prepare_cached(
        "INSERT INTO conferences (tenant_id, room_id, room_name, ad_hoc, started_at_ms,
                                  ended_at_ms)
         VALUES (?1, (SELECT id FROM conference_rooms WHERE id = ?2), ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        c.tenant.0,
        room,
        room_name,
        ad_hoc,
        c.started_at_ms,
        c.ended_at_ms
    ])
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    let id = tx.last_insert_rowid();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO conference_participants
                 (conference_id, seq, call_id, sip_call_id, user_id, number, name, moderator,
                  joined_at_ms, left_at_ms, end_reason)
             VALUES (?1, ?2,
                     (SELECT call_id FROM call_legs WHERE sip_call_id = ?3
                      ORDER BY call_id DESC LIMIT 1),
                     ?3, (SELECT id FROM users WHERE id = ?4), ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for (seq, p) in c.participants.iter().enumerate() {
            let sip_call_id = p
                .sip_call_id
                .as_deref()
                .map(clean_call_id)
                .filter(|s| !s.is_empty());
            stmt.execute(params![
                id,
                i64::try_from(seq).unwrap_or(i64::MAX),
                sip_call_id,
                p.user.map(|u| u.0),
                clean_text(&p.number, MAX_NUMBER_LEN).unwrap_or_default(),
                p.name.as_deref().and_then(|n| clean_text(n, MAX_NAME_LEN)),
                p.moderator,
                p.joined_at_ms,
                p.left_at_ms,
                p.end.as_str(),
            ])?;
        }
    }
    tx.commit()?;
    Ok(ConferenceId(id))
}

/// Links the stays of participants whose leg had one of `sip_call_ids` and that are not
/// linked yet to `call` (called inside the call's write transaction).
pub(crate) fn link_participants_to_call(
    tx: &Connection,
    call: CallId,
    sip_call_ids: &[String],
) -> Result<()> {
    if sip_call_ids.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(sip_call_ids).map_err(|_| StoreError::BadRow {
        column: "conference_participants.sip_call_id",
    })?;
    tx.prepare_cached(
        "UPDATE conference_participants SET call_id = ?1
         WHERE call_id IS NULL AND sip_call_id IN (SELECT value FROM json_each(?2))",
    )?
    .execute(params![call.0, ids])?;
    Ok(())
}

/// Retention: deletes conferences started before `cutoff_ms` with their participants (in
/// batches, each its own transaction) and control commands sent before it; returns how
/// many conferences.
pub(crate) fn delete_conferences_before(conn: &mut Connection, cutoff_ms: i64) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM conferences WHERE id IN
                 (SELECT id FROM conferences WHERE started_at_ms < ?1 LIMIT ?2)",
            params![cutoff_ms, RETENTION_BATCH],
        )?;
        tx.commit()?;
        total += n as u64;
        if (n as i64) < RETENTION_BATCH {
            break;
        }
    }
    conn.execute(
        "DELETE FROM conference_commands WHERE created_at_ms < ?1",
        [cutoff_ms],
    )?;
    Ok(total)
}

/// A `conference_participants` row as read, with its user.
type RawParticipant = (
    i64,
    Option<i64>,
    Option<(i64, String, String)>,
    String,
    Option<String>,
    bool,
    i64,
    i64,
    String,
);

/// Lists conferences matching the filter, newest first, with their participants.
pub(crate) fn list_conferences(
    conn: &Connection,
    f: &ConferenceLogFilter,
) -> Result<Vec<ConferenceSummary>> {
    let tx = conn.unchecked_transaction()?;
    if !tenant_exists(&tx, f.tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    let mut conferences: Vec<ConferenceSummary> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, tenant_id, room_id, room_name, ad_hoc, started_at_ms, ended_at_ms
             FROM conferences c
             WHERE tenant_id = ?1
               AND (?2 IS NULL OR room_id = ?2)
               AND (?3 IS NULL OR id IN (SELECT conference_id FROM conference_participants
                                         WHERE user_id = ?3))
               AND (?4 IS NULL OR started_at_ms >= ?4)
             ORDER BY started_at_ms DESC, id DESC
             LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                f.tenant.0,
                f.room.map(|r| r.0),
                f.user.map(|u| u.0),
                f.since_ms,
                f.limit
            ],
            |r| {
                Ok(ConferenceSummary {
                    id: ConferenceId(r.get(0)?),
                    tenant_id: TenantId(r.get(1)?),
                    room_id: r.get::<_, Option<i64>>(2)?.map(ConferenceRoomId),
                    room_name: r.get(3)?,
                    ad_hoc: r.get(4)?,
                    started_at_ms: r.get(5)?,
                    ended_at_ms: r.get(6)?,
                    participants: Vec::new(),
                })
            },
        )?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    if conferences.is_empty() {
        return Ok(conferences);
    }
    let ids = conferences
        .iter()
        .map(|c| c.id.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let index: HashMap<i64, usize> = conferences
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.0, i))
        .collect();
    let raw: Vec<(i64, RawParticipant)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT p.conference_id, p.seq, p.call_id, u.id, u.name, u.extension, p.number,
                    p.name, p.moderator, p.joined_at_ms, p.left_at_ms, p.end_reason
             FROM conference_participants p LEFT JOIN users u ON u.id = p.user_id
             WHERE p.conference_id IN (SELECT value FROM json_each(?1))
             ORDER BY p.conference_id, p.seq",
        )?;
        let rows = stmt.query_map([format!("[{ids}]")], |r| {
            let user = match (r.get::<_, Option<i64>>(3)?, r.get(4)?, r.get(5)?) {
                (Some(id), Some(name), Some(ext)) => Some((id, name, ext)),
                _ => None,
            };
            Ok((
                r.get(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    user,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ),
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.finish()?;
    for (conference, (_seq, call, user, number, name, moderator, joined, left, end)) in raw {
        let Some(c) = index.get(&conference).and_then(|&i| conferences.get_mut(i)) else {
            continue;
        };
        c.participants.push(ParticipantSummary {
            call_id: call.map(CallId),
            user: user.map(|(id, name, extension)| UserRef {
                id: UserId(id),
                name,
                extension,
            }),
            number,
            name,
            moderator,
            joined_at_ms: joined,
            left_at_ms: left,
            end: decode::<ParticipantEnd>(&end, "conference_participants.end_reason")?,
        });
    }
    Ok(conferences)
}
