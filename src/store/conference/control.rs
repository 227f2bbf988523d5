//! The live state of running conferences (written by the daemon each second, read by
//! `conference participants`) and the control commands the CLI leaves for the daemon.
//!
//! A command's life: the CLI sends it; the daemon's poll takes it (`taken_at_ms`) if it
//! is fresh, applies it and records the result; the CLI reads the result, or after its
//! wait expires the command, which succeeds only while nobody has taken it, so a command
//! is either applied and answered or never applied. A command older than
//! [`COMMAND_MAX_AGE_MS`] is never taken (a daemon started later must not apply it).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::store::calllog::{MAX_NAME_LEN, MAX_NUMBER_LEN};
use crate::store::conference_model::{
    CommandResult, CommandStatus, ConferenceAction, ConferenceCommand, ConferenceCommandId,
    ConferenceControl, ConferenceLive, ConferenceLiveSnapshot, ConferenceRoomId, LiveParticipant,
    LiveParticipantId,
};
use crate::store::model::{TenantId, UserId};
use crate::store::queues::decode;
use crate::store::repo::{constraint, tenant_exists};
use crate::store::validate::clean_text;
use crate::store::{Entity, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// The daemon never takes a command sent longer ago than this, ms.
pub const COMMAND_MAX_AGE_MS: i64 = 10_000;

// ---- live state ----

/// Replaces the live state with `rooms` in one transaction and stamps it `updated_at_ms`
/// (also when no conference runs). Rooms removed meanwhile are skipped; text is cleaned
/// and cut, a participant id given twice in a room keeps its first row, a user removed
/// meanwhile is stored as absent: the content never makes it fail.
pub(crate) fn write_conference_live(
    conn: &mut Connection,
    updated_at_ms: i64,
    rooms: &[ConferenceLive],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM conference_live_participants", [])?;
    tx.execute("DELETE FROM conference_live_rooms", [])?;
    {
        let mut room_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO conference_live_rooms (room_id, tenant_id, locked,
                                                          started_at_ms)
             SELECT id, tenant_id, ?2, ?3 FROM conference_rooms WHERE id = ?1",
        )?;
        let mut participant_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO conference_live_participants
                 (room_id, participant_id, user_id, number, name, joined_at_ms, muted, talking,
                  moderator)
             VALUES (?1, ?2, (SELECT id FROM users WHERE id = ?3), ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for room in rooms {
            if room_stmt.execute(params![room.room.0, room.locked, room.started_at_ms])? == 0 {
                continue;
            }
            for p in &room.participants {
                participant_stmt.execute(params![
                    room.room.0,
                    p.id.0,
                    p.user.map(|u| u.0),
                    clean_text(&p.number, MAX_NUMBER_LEN).unwrap_or_default(),
                    p.name.as_deref().and_then(|n| clean_text(n, MAX_NAME_LEN)),
                    p.joined_at_ms,
                    p.muted,
                    p.talking,
                    p.moderator,
                ])?;
            }
        }
    }
    tx.execute(
        "INSERT INTO conference_live_updated (id, updated_at_ms) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET updated_at_ms = excluded.updated_at_ms",
        [updated_at_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// A `conference_live_participants` row as read, with its room.
type RawLiveParticipant = (
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
    i64,
    bool,
    bool,
    bool,
);

/// The live state of a tenant's rooms (or of one of them), read in one transaction.
pub(crate) fn conference_live(
    conn: &Connection,
    tenant: TenantId,
    room: Option<ConferenceRoomId>,
) -> Result<ConferenceLiveSnapshot> {
    let tx = conn.unchecked_transaction()?;
    if !tenant_exists(&tx, tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    let updated_at_ms: Option<i64> = tx
        .query_row(
            "SELECT updated_at_ms FROM conference_live_updated WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let room = room.map(|r| r.0);
    let mut rooms: Vec<ConferenceLive> = {
        let mut stmt = tx.prepare_cached(
            "SELECT room_id, locked, started_at_ms FROM conference_live_rooms
             WHERE tenant_id = ?1 AND (?2 IS NULL OR room_id = ?2) ORDER BY room_id",
        )?;
        let rows = stmt.query_map(params![tenant.0, room], |r| {
            Ok(ConferenceLive {
                room: ConferenceRoomId(r.get(0)?),
                locked: r.get(1)?,
                started_at_ms: r.get(2)?,
                participants: Vec::new(),
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let participants: Vec<RawLiveParticipant> = {
        let mut stmt = tx.prepare_cached(
            "SELECT p.room_id, p.participant_id, p.user_id, p.number, p.name, p.joined_at_ms,
                    p.muted, p.talking, p.moderator
             FROM conference_live_participants p
             JOIN conference_live_rooms r ON r.room_id = p.room_id
             WHERE r.tenant_id = ?1 AND (?2 IS NULL OR p.room_id = ?2)
             ORDER BY p.room_id, p.participant_id",
        )?;
        let rows = stmt.query_map(params![tenant.0, room], |r| {
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
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.finish()?;
    for (room_id, id, user, number, name, joined_at_ms, muted, talking, moderator) in participants {
        let id = participant_id(id, "conference_live_participants.participant_id")?;
        // Both lists are ordered by room, and every participant's room was read.
        if let Some(r) = rooms.iter_mut().find(|r| r.room.0 == room_id) {
            r.participants.push(LiveParticipant {
                id,
                user: user.map(UserId),
                number,
                name,
                joined_at_ms,
                muted,
                talking,
                moderator,
            });
        }
    }
    Ok(ConferenceLiveSnapshot {
        updated_at_ms,
        rooms,
    })
}

fn participant_id(v: i64, column: &'static str) -> Result<LiveParticipantId> {
    u32::try_from(v)
        .map(LiveParticipantId)
        .map_err(|_| StoreError::BadRow { column })
}

// ---- commands ----

/// Leaves a command for the daemon, sent at `now_ms`.
pub(crate) fn send_conference_command(
    conn: &Connection,
    room: ConferenceRoomId,
    control: ConferenceControl,
    now_ms: i64,
) -> Result<ConferenceCommandId> {
    conn.execute(
        "INSERT INTO conference_commands (room_id, action, participant_id, created_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            room.0,
            control.action().as_str(),
            control.participant().map(|p| p.0),
            now_ms
        ],
    )
    .map_err(|e| constraint(e, Some(Entity::Room)))?;
    Ok(ConferenceCommandId(conn.last_insert_rowid()))
}

/// A `conference_commands` row as read.
type RawCommand = (
    i64,
    i64,
    String,
    Option<i64>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

const COMMAND_COLUMNS: &str = "id, room_id, action, participant_id, created_at_ms, taken_at_ms, \
                               done_at_ms, result";

fn raw_command(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawCommand> {
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

fn decode_control(action: &str, participant: Option<i64>) -> Result<ConferenceControl> {
    let action: ConferenceAction = decode(action, "conference_commands.action")?;
    let participant = participant
        .map(|p| participant_id(p, "conference_commands.participant_id"))
        .transpose()?;
    ConferenceControl::from_parts(action, participant).ok_or(StoreError::BadRow {
        column: "conference_commands.participant_id",
    })
}

fn decode_status(
    (id, room, action, participant, created, taken, done, result): RawCommand,
) -> Result<CommandStatus> {
    Ok(CommandStatus {
        id: ConferenceCommandId(id),
        room: ConferenceRoomId(room),
        control: decode_control(&action, participant)?,
        created_at_ms: created,
        taken_at_ms: taken,
        done_at_ms: done,
        result: result
            .map(|r| decode::<CommandResult>(&r, "conference_commands.result"))
            .transpose()?,
    })
}

/// Where a command stands ([`StoreError::NotFound`] with `Entity::ConferenceCommand` if
/// there is none, e.g. its room was removed).
pub(crate) fn conference_command(
    conn: &Connection,
    id: ConferenceCommandId,
) -> Result<CommandStatus> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {COMMAND_COLUMNS} FROM conference_commands WHERE id = ?1"
        ))?
        .query_row([id.0], raw_command)
        .optional()?
        .ok_or(StoreError::NotFound(Entity::ConferenceCommand))?;
    decode_status(raw)
}

/// Gives up on a command nobody answered: marks it expired at `now_ms` unless the daemon
/// took or finished it meanwhile. Returns where it stands afterwards (a taken command
/// will still be answered).
pub(crate) fn expire_conference_command(
    conn: &Connection,
    id: ConferenceCommandId,
    now_ms: i64,
) -> Result<CommandStatus> {
    conn.execute(
        "UPDATE conference_commands SET done_at_ms = ?2, result = 'expired'
         WHERE id = ?1 AND done_at_ms IS NULL AND taken_at_ms IS NULL",
        params![id.0, now_ms],
    )?;
    conference_command(conn, id)
}

/// The daemon's poll at `now_ms`: expires unfinished commands older than
/// [`COMMAND_MAX_AGE_MS`], takes the fresh ones nobody took yet and returns them, oldest
/// first. Without unfinished commands it only reads (no write lock each second).
pub(crate) fn pending_conference_commands(
    conn: &mut Connection,
    now_ms: i64,
) -> Result<Vec<ConferenceCommand>> {
    let unfinished = conn
        .prepare_cached("SELECT 1 FROM conference_commands WHERE done_at_ms IS NULL LIMIT 1")?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some();
    if !unfinished {
        return Ok(Vec::new());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE conference_commands SET done_at_ms = ?1, result = 'expired'
         WHERE done_at_ms IS NULL AND created_at_ms < ?2",
        params![now_ms, now_ms.saturating_sub(COMMAND_MAX_AGE_MS)],
    )?;
    let raw: Vec<(RawCommand, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT c.id, c.room_id, c.action, c.participant_id, c.created_at_ms,
                    c.taken_at_ms, c.done_at_ms, c.result, r.tenant_id
             FROM conference_commands c JOIN conference_rooms r ON r.id = c.room_id
             WHERE c.done_at_ms IS NULL AND c.taken_at_ms IS NULL
             ORDER BY c.id",
        )?;
        let rows = stmt.query_map([], |r| Ok((raw_command(r)?, r.get(8)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut out = Vec::with_capacity(raw.len());
    {
        let mut take =
            tx.prepare_cached("UPDATE conference_commands SET taken_at_ms = ?2 WHERE id = ?1")?;
        for (raw, tenant) in raw {
            let (id, room, action, participant, created_at_ms, ..) = raw;
            take.execute(params![id, now_ms])?;
            match decode_control(&action, participant) {
                Ok(control) => out.push(ConferenceCommand {
                    id: ConferenceCommandId(id),
                    room: ConferenceRoomId(room),
                    tenant: TenantId(tenant),
                    control,
                    created_at_ms,
                }),
                // A row the CHECKs should have kept out: answer it as failed rather than
                // returning it again at every poll.
                Err(_) => {
                    tx.execute(
                        "UPDATE conference_commands SET done_at_ms = ?2, result = 'failed'
                         WHERE id = ?1",
                        params![id, now_ms],
                    )?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Records how a command ended, at `now_ms`. False if it was already finished (e.g.
/// expired) or no longer exists (its room was removed).
pub(crate) fn finish_conference_command(
    conn: &Connection,
    id: ConferenceCommandId,
    result: CommandResult,
    now_ms: i64,
) -> Result<bool> {
    let n = conn.execute(
        "UPDATE conference_commands SET done_at_ms = ?2, result = ?3
         WHERE id = ?1 AND done_at_ms IS NULL",
        params![id.0, now_ms, result.as_str()],
    )?;
    Ok(n > 0)
}
