//! The SQL of the commands from the CLI to the running daemon about a user's calls in
//! progress (today one: merge the user's two answered calls into one ad-hoc conference);
//! their records are in [`super::call_command_model`].
//!
//! A command lives like a conference control (`conference/control.rs`): the CLI sends
//! it; the daemon's poll takes it (`taken_at_ms`) if it is fresh, applies it and records
//! the result; the CLI reads the result, or after its wait expires the command, which
//! succeeds only while nobody has taken it, so a command is either applied and answered
//! or never applied. A command older than [`COMMAND_MAX_AGE_MS`] is never taken (a
//! daemon started later must not apply it). Removing the user or the tenant removes its
//! commands; the call log's retention sweep removes old ones.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::call_command_model::{
    CallAction, CallCommand, CallCommandId, CallCommandResult, CallCommandStatus,
};
use super::model::{TenantId, UserId};
use super::queues::decode;
use super::repo::tenant_exists;
use super::{Entity, StoreError, COMMAND_MAX_AGE_MS};

#[cfg(test)]
mod tests;

type Result<T> = std::result::Result<T, StoreError>;

/// Leaves a command about `user`'s calls for the daemon, sent at `now_ms`
/// ([`StoreError::NotFound`] with `Entity::Tenant`, or `Entity::User` if the tenant has
/// no such user).
pub(crate) fn send_call_command(
    conn: &Connection,
    tenant: TenantId,
    user: UserId,
    action: CallAction,
    now_ms: i64,
) -> Result<CallCommandId> {
    // Inserted from the user's row, so a user of another tenant is never addressed.
    let n = conn.execute(
        "INSERT INTO call_commands (tenant_id, user_id, action, created_at_ms)
         SELECT tenant_id, id, ?3, ?4 FROM users WHERE id = ?2 AND tenant_id = ?1",
        params![tenant.0, user.0, action.as_str(), now_ms],
    )?;
    if n == 0 {
        let missing = if tenant_exists(conn, tenant)? {
            Entity::User
        } else {
            Entity::Tenant
        };
        return Err(StoreError::NotFound(missing));
    }
    Ok(CallCommandId(conn.last_insert_rowid()))
}

/// A `call_commands` row as read.
struct RawCommand {
    id: i64,
    tenant: i64,
    user: i64,
    action: String,
    created_at_ms: i64,
    taken_at_ms: Option<i64>,
    done_at_ms: Option<i64>,
    result: Option<String>,
}

const COMMAND_COLUMNS: &str =
    "id, tenant_id, user_id, action, created_at_ms, taken_at_ms, done_at_ms, result";

fn raw_command(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawCommand> {
    Ok(RawCommand {
        id: r.get(0)?,
        tenant: r.get(1)?,
        user: r.get(2)?,
        action: r.get(3)?,
        created_at_ms: r.get(4)?,
        taken_at_ms: r.get(5)?,
        done_at_ms: r.get(6)?,
        result: r.get(7)?,
    })
}

impl RawCommand {
    fn command(&self) -> Result<CallCommand> {
        Ok(CallCommand {
            id: CallCommandId(self.id),
            tenant: TenantId(self.tenant),
            user: UserId(self.user),
            action: decode(&self.action, "call_commands.action")?,
            created_at_ms: self.created_at_ms,
        })
    }

    fn status(self) -> Result<CallCommandStatus> {
        Ok(CallCommandStatus {
            command: self.command()?,
            taken_at_ms: self.taken_at_ms,
            done_at_ms: self.done_at_ms,
            result: self
                .result
                .as_deref()
                .map(|r| decode::<CallCommandResult>(r, "call_commands.result"))
                .transpose()?,
        })
    }
}

/// Where a command stands ([`StoreError::NotFound`] with `Entity::CallCommand` if there
/// is none, e.g. its user was removed).
pub(crate) fn call_command(conn: &Connection, id: CallCommandId) -> Result<CallCommandStatus> {
    conn.prepare_cached(&format!(
        "SELECT {COMMAND_COLUMNS} FROM call_commands WHERE id = ?1"
    ))?
    .query_row([id.0], raw_command)
    .optional()?
    .ok_or(StoreError::NotFound(Entity::CallCommand))?
    .status()
}

/// Gives up on a command nobody answered: marks it expired at `now_ms` unless the daemon
/// took or finished it meanwhile. Returns where it stands afterwards (a taken command
/// will still be answered).
pub(crate) fn expire_call_command(
    conn: &Connection,
    id: CallCommandId,
    now_ms: i64,
) -> Result<CallCommandStatus> {
    conn.execute(
        "UPDATE call_commands SET done_at_ms = ?2, result = 'expired'
         WHERE id = ?1 AND done_at_ms IS NULL AND taken_at_ms IS NULL",
        params![id.0, now_ms],
    )?;
    call_command(conn, id)
}

/// The daemon's poll at `now_ms`: expires unfinished commands older than
/// [`COMMAND_MAX_AGE_MS`], takes the fresh ones nobody took yet and returns them, oldest
/// first. Without unfinished commands it only reads (no write lock each second).
pub(crate) fn pending_call_commands(
    conn: &mut Connection,
    now_ms: i64,
) -> Result<Vec<CallCommand>> {
    let unfinished = conn
        .prepare_cached("SELECT 1 FROM call_commands WHERE done_at_ms IS NULL LIMIT 1")?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some();
    if !unfinished {
        return Ok(Vec::new());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE call_commands SET done_at_ms = ?1, result = 'expired'
         WHERE done_at_ms IS NULL AND created_at_ms < ?2",
        params![now_ms, now_ms.saturating_sub(COMMAND_MAX_AGE_MS)],
    )?;
    let raw: Vec<RawCommand> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {COMMAND_COLUMNS} FROM call_commands
             WHERE done_at_ms IS NULL AND taken_at_ms IS NULL ORDER BY id"
        ))?;
        let rows = stmt.query_map([], raw_command)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut out = Vec::with_capacity(raw.len());
    {
        let mut take =
            tx.prepare_cached("UPDATE call_commands SET taken_at_ms = ?2 WHERE id = ?1")?;
        for raw in raw {
            take.execute(params![raw.id, now_ms])?;
            match raw.command() {
                Ok(command) => out.push(command),
                // A row the CHECKs should have kept out: answer it as failed rather than
                // returning it again at every poll.
                Err(_) => {
                    tx.execute(
                        "UPDATE call_commands SET done_at_ms = ?2, result = 'failed'
                         WHERE id = ?1",
                        params![raw.id, now_ms],
                    )?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Records how a command ended, at `now_ms`. False if it was already finished (e.g.
/// expired) or no longer exists (its user was removed).
pub(crate) fn finish_call_command(
    conn: &Connection,
    id: CallCommandId,
    result: CallCommandResult,
    now_ms: i64,
) -> Result<bool> {
    let n = conn.execute(
        "UPDATE call_commands SET done_at_ms = ?2, result = ?3
         WHERE id = ?1 AND done_at_ms IS NULL",
        params![id.0, now_ms, result.as_str()],
    )?;
    Ok(n > 0)
}

/// Retention: deletes commands sent before `cutoff_ms` (in the call log's sweep, like
/// the conference controls); returns how many.
pub(crate) fn delete_call_commands_before(conn: &Connection, cutoff_ms: i64) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM call_commands WHERE created_at_ms < ?1",
        [cutoff_ms],
    )?;
    Ok(n as u64)
}
