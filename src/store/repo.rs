//! The SQL of every store operation, as plain synchronous functions on a connection.
//! The service threads call these; tests call them too. Every write validates its input
//! here, so no path into the database skips the checks.

use rusqlite::{ffi, params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::conference_model::ConferenceRoomId;
use super::credentials::{ha1_md5, ha1_sha256, ha1_sha512_256};
use super::model::{
    Binding, NewUser, NumberKind, Password, PresentableNumbers, SipCredentials, Tenant, TenantId,
    TenantNumber, TenantSummary, User, UserId,
};
use super::queue_model::QueueId;
use super::validate;
use super::{Entity, Field, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Maps a constraint violation to a typed error naming the field; `fk` names what a
/// failed foreign key points at in this statement.
pub(super) fn constraint(e: rusqlite::Error, fk: Option<Entity>) -> StoreError {
    if let rusqlite::Error::SqliteFailure(ref err, ref msg) = e {
        match err.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                // SQLite's message is "UNIQUE constraint failed: table.col[, table.col]".
                let m = msg.as_deref().unwrap_or("");
                let field = if m.contains("tenants.name") {
                    Some(Field::TenantName)
                } else if m.contains("tenant_numbers.number") {
                    Some(Field::Number)
                } else if m.contains("users.extension") {
                    Some(Field::Extension)
                } else if m.contains("users.sip_username") {
                    Some(Field::SipUsername)
                } else if m.contains("users.mobile") {
                    Some(Field::Mobile)
                } else if m.contains("directory_contacts.number") {
                    Some(Field::ContactNumber)
                } else if m.contains("queues.name") {
                    Some(Field::QueueName)
                } else if m.contains("vip_numbers.number") {
                    Some(Field::VipNumber)
                } else if m.contains("conference_rooms.name") {
                    Some(Field::ConferenceName)
                } else if m.contains("conference_rooms.extension") {
                    Some(Field::Extension)
                } else {
                    None
                };
                if let Some(field) = field {
                    return StoreError::Duplicate { field };
                }
            }
            // The schema's RAISE(ABORT) triggers: a room and a user share an extension.
            ffi::SQLITE_CONSTRAINT_TRIGGER
                if msg
                    .as_deref()
                    .is_some_and(|m| m.starts_with("extension collides")) =>
            {
                return StoreError::Duplicate {
                    field: Field::Extension,
                };
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                if let Some(entity) = fk {
                    return StoreError::NotFound(entity);
                }
            }
            _ => {}
        }
    }
    StoreError::Sqlite(e)
}

// ---- tenants ----

/// Creates a tenant.
pub(crate) fn add_tenant(conn: &Connection, name: &str) -> Result<TenantId> {
    validate::display_name(Field::TenantName, name)?;
    conn.execute("INSERT INTO tenants(name) VALUES (?1)", [name])
        .map_err(|e| constraint(e, None))?;
    Ok(TenantId(conn.last_insert_rowid()))
}

/// The columns [`tenant_from_row`] reads, in order.
pub(super) const TENANT_COLUMNS: &str =
    "t.id, t.name, t.created_at, t.time_zone, t.queue_retention_days";

pub(super) fn tenant_from_row(r: &Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: TenantId(r.get(0)?),
        name: r.get(1)?,
        created_at: r.get(2)?,
        time_zone: r.get(3)?,
        // The column is CHECKed to 1..=3650; anything else reads as the default.
        queue_retention_days: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(90),
    })
}

/// Finds a tenant by name (ASCII case-insensitive).
pub(crate) fn find_tenant(conn: &Connection, name: &str) -> Result<Option<Tenant>> {
    Ok(conn
        .query_row(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.name = ?1"),
            [name],
            tenant_from_row,
        )
        .optional()?)
}

/// Lists all tenants by name, with their user and number counts.
pub(crate) fn list_tenants(conn: &Connection) -> Result<Vec<TenantSummary>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TENANT_COLUMNS},
                (SELECT count(*) FROM users u WHERE u.tenant_id = t.id),
                (SELECT count(*) FROM tenant_numbers n WHERE n.tenant_id = t.id)
         FROM tenants t ORDER BY t.name"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            tenant_from_row(r)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (tenant, users, numbers) = row?;
        out.push(TenantSummary {
            tenant,
            users: count(users)?,
            numbers: count(numbers)?,
        });
    }
    Ok(out)
}

fn count(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::BadRow { column: "count(*)" })
}

pub(super) fn tenant_exists(conn: &Connection, id: TenantId) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM tenants WHERE id = ?1", [id.0], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Removes a tenant. Without `force`, refuses while it has users or numbers; with it,
/// removes them too (and, through the users, their bindings).
pub(crate) fn remove_tenant(conn: &mut Connection, id: TenantId, force: bool) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !tenant_exists(&tx, id)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    if !force {
        let (users, numbers, queues, rooms): (i64, i64, i64, i64) = tx.query_row(
            "SELECT (SELECT count(*) FROM users WHERE tenant_id = ?1),
                    (SELECT count(*) FROM tenant_numbers WHERE tenant_id = ?1),
                    (SELECT count(*) FROM queues WHERE tenant_id = ?1),
                    (SELECT count(*) FROM conference_rooms WHERE tenant_id = ?1)",
            [id.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        if users > 0 || numbers > 0 || queues > 0 || rooms > 0 {
            return Err(StoreError::TenantInUse {
                users: count(users)?,
                numbers: count(numbers)?,
                queues: count(queues)?,
                rooms: count(rooms)?,
            });
        }
    }
    tx.execute("DELETE FROM tenants WHERE id = ?1", [id.0])?;
    tx.commit()?;
    Ok(())
}

// ---- numbers ----

/// Adds a number to a tenant, assigned to one of its users when `user` is given (then
/// it must be a personal number).
pub(crate) fn add_tenant_number(
    conn: &Connection,
    tenant: TenantId,
    number: &str,
    kind: NumberKind,
    user: Option<UserId>,
) -> Result<()> {
    validate::e164(Field::Number, number)?;
    if user.is_some() {
        check_assignable(conn, tenant, kind, user)?;
    }
    conn.execute(
        "INSERT INTO tenant_numbers(number, tenant_id, kind, user_id) VALUES (?1, ?2, ?3, ?4)",
        params![number, tenant.0, kind.as_str(), user.map(|u| u.0)],
    )
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    Ok(())
}

/// A number can be assigned only if it is personal and the user is the tenant's.
fn check_assignable(
    conn: &Connection,
    tenant: TenantId,
    kind: NumberKind,
    user: Option<UserId>,
) -> Result<()> {
    let Some(user) = user else {
        return Ok(());
    };
    if kind != NumberKind::User {
        return Err(StoreError::Invalid {
            field: Field::NumberKind,
            reason: "only a personal number (kind user) can be assigned to a user",
        });
    }
    let owner: Option<i64> = conn
        .query_row("SELECT tenant_id FROM users WHERE id = ?1", [user.0], |r| {
            r.get(0)
        })
        .optional()?;
    match owner {
        Some(t) if t == tenant.0 => Ok(()),
        _ => Err(StoreError::NotFound(Entity::User)),
    }
}

/// Assigns a tenant's personal number to one of its users, or takes the assignment
/// away (`None`).
pub(crate) fn assign_tenant_number(
    conn: &Connection,
    tenant: TenantId,
    number: &str,
    user: Option<UserId>,
) -> Result<()> {
    validate::e164(Field::Number, number)?;
    let kind: Option<String> = conn
        .query_row(
            "SELECT kind FROM tenant_numbers WHERE number = ?1 AND tenant_id = ?2",
            params![number, tenant.0],
            |r| r.get(0),
        )
        .optional()?;
    let kind: NumberKind = kind
        .ok_or(StoreError::NotFound(Entity::Number))?
        .parse()
        .map_err(|_| StoreError::BadRow {
            column: "tenant_numbers.kind",
        })?;
    check_assignable(conn, tenant, kind, user)?;
    conn.execute(
        "UPDATE tenant_numbers SET user_id = ?3 WHERE number = ?1 AND tenant_id = ?2",
        params![number, tenant.0, user.map(|u| u.0)],
    )?;
    Ok(())
}

/// Removes a number from a tenant; a number of another tenant is "not found", so a
/// typo in the tenant cannot take away someone else's number.
pub(crate) fn remove_tenant_number(
    conn: &Connection,
    tenant: TenantId,
    number: &str,
) -> Result<()> {
    validate::e164(Field::Number, number)?;
    let n = conn.execute(
        "DELETE FROM tenant_numbers WHERE number = ?1 AND tenant_id = ?2",
        params![number, tenant.0],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Number));
    }
    Ok(())
}

/// A `tenant_numbers` row as read: (number, tenant, kind, user, queue, room).
type RawNumber = (String, i64, String, Option<i64>, Option<i64>, Option<i64>);

/// The columns of a [`RawNumber`], in order.
const NUMBER_COLUMNS: &str = "number, tenant_id, kind, user_id, queue_id, conference_id";

fn raw_number(r: &Row<'_>) -> rusqlite::Result<RawNumber> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn number_from_parts(
    (number, tenant_id, kind, user_id, queue_id, conference_id): RawNumber,
) -> Result<TenantNumber> {
    Ok(TenantNumber {
        number,
        tenant_id: TenantId(tenant_id),
        kind: kind.parse().map_err(|_| StoreError::BadRow {
            column: "tenant_numbers.kind",
        })?,
        user_id: user_id.map(UserId),
        queue_id: queue_id.map(QueueId),
        conference_id: conference_id.map(ConferenceRoomId),
    })
}

/// Lists a tenant's numbers in order.
pub(crate) fn list_tenant_numbers(
    conn: &Connection,
    tenant: TenantId,
) -> Result<Vec<TenantNumber>> {
    if !tenant_exists(conn, tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {NUMBER_COLUMNS} FROM tenant_numbers WHERE tenant_id = ?1 ORDER BY number"
    ))?;
    let rows = stmt.query_map([tenant.0], raw_number)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(number_from_parts(row?)?);
    }
    Ok(out)
}

/// Finds who owns a number (inbound routing).
pub(crate) fn lookup_number(conn: &Connection, number: &str) -> Result<Option<TenantNumber>> {
    let row: Option<RawNumber> = conn
        .prepare_cached(&format!(
            "SELECT {NUMBER_COLUMNS} FROM tenant_numbers WHERE number = ?1"
        ))?
        .query_row([number], raw_number)
        .optional()?;
    row.map(number_from_parts).transpose()
}

/// Where an inbound call to a number goes: the owning tenant's number and, for a
/// personal number, its user (the assigned user, else the tenant's user whose mobile
/// it is). One read, so inbound routing costs one store round trip.
pub(crate) fn route_number(
    conn: &Connection,
    number: &str,
) -> Result<Option<(TenantNumber, Option<User>)>> {
    let Some(n) = lookup_number(conn, number)? else {
        return Ok(None);
    };
    let user = match (n.kind, n.user_id) {
        (_, Some(id)) => find_user_by_id(conn, id)?,
        (NumberKind::User, None) => {
            let sql = format!("SELECT {USER_COLUMNS} WHERE u.tenant_id = ?1 AND u.mobile = ?2");
            conn.query_row(&sql, params![n.tenant_id.0, number], user_from_row)
                .optional()?
        }
        _ => None,
    };
    Ok(Some((n, user)))
}

/// The numbers a user's outgoing calls may present, all owned by the user's tenant:
/// the user's own (an assigned personal number, else the mobile when the tenant owns
/// it) and the tenant's main number (the first in order).
pub(crate) fn presentable_numbers(conn: &Connection, user: UserId) -> Result<PresentableNumbers> {
    let own: Option<String> = conn
        .query_row(
            "SELECT n.number FROM users u JOIN tenant_numbers n ON n.tenant_id = u.tenant_id
             WHERE u.id = ?1 AND n.kind = 'user' AND (n.user_id = u.id
                   OR (n.user_id IS NULL AND n.number = u.mobile))
             ORDER BY n.user_id IS NULL, n.number LIMIT 1",
            [user.0],
            |r| r.get(0),
        )
        .optional()?;
    let main: Option<String> = conn
        .query_row(
            "SELECT n.number FROM users u JOIN tenant_numbers n ON n.tenant_id = u.tenant_id
             WHERE u.id = ?1 AND n.kind = 'main' ORDER BY n.number LIMIT 1",
            [user.0],
            |r| r.get(0),
        )
        .optional()?;
    Ok(PresentableNumbers { own, main })
}

// ---- users ----

/// Creates a user, storing the HA1 hashes of the password (never the password).
pub(crate) fn add_user(conn: &Connection, u: &NewUser) -> Result<UserId> {
    validate::display_name(Field::UserName, &u.name)?;
    validate::extension(&u.extension)?;
    if let Some(m) = &u.mobile {
        validate::e164(Field::Mobile, m)?;
    }
    validate::sip_username(&u.sip_username)?;
    validate::realm(&u.realm)?;
    let pw = u.password.expose();
    validate::password(pw)?;
    conn.execute(
        "INSERT INTO users(tenant_id, name, extension, mobile, sip_username, realm,
                           ha1_md5, ha1_sha256, ha1_sha512_256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            u.tenant.0,
            u.name,
            u.extension,
            u.mobile,
            u.sip_username,
            u.realm,
            ha1_md5(&u.sip_username, &u.realm, pw),
            ha1_sha256(&u.sip_username, &u.realm, pw),
            ha1_sha512_256(&u.sip_username, &u.realm, pw),
        ],
    )
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    Ok(UserId(conn.last_insert_rowid()))
}

const USER_COLUMNS: &str = "u.id, u.tenant_id, t.name, u.name, u.extension, u.mobile,
                            u.sip_username, u.realm, u.created_at
                            FROM users u JOIN tenants t ON t.id = u.tenant_id";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(0)?),
        tenant_id: TenantId(r.get(1)?),
        tenant_name: r.get(2)?,
        name: r.get(3)?,
        extension: r.get(4)?,
        mobile: r.get(5)?,
        sip_username: r.get(6)?,
        realm: r.get(7)?,
        created_at: r.get(8)?,
    })
}

/// Lists users (of one tenant, or all) by tenant name then extension.
pub(crate) fn list_users(conn: &Connection, tenant: Option<TenantId>) -> Result<Vec<User>> {
    if let Some(t) = tenant {
        if !tenant_exists(conn, t)? {
            return Err(StoreError::NotFound(Entity::Tenant));
        }
    }
    let sql = format!(
        "SELECT {USER_COLUMNS} WHERE ?1 IS NULL OR u.tenant_id = ?1
         ORDER BY t.name, length(u.extension), u.extension"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([tenant.map(|t| t.0)], user_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Finds a user by tenant and extension.
pub(crate) fn find_user(
    conn: &Connection,
    tenant: TenantId,
    extension: &str,
) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} WHERE u.tenant_id = ?1 AND u.extension = ?2");
    Ok(conn
        .query_row(&sql, params![tenant.0, extension], user_from_row)
        .optional()?)
}

/// Finds a user by row id.
pub(crate) fn find_user_by_id(conn: &Connection, id: UserId) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} WHERE u.id = ?1");
    Ok(conn.query_row(&sql, [id.0], user_from_row).optional()?)
}

/// Finds the user whose mobile number this is.
pub(crate) fn lookup_user_by_mobile(conn: &Connection, mobile: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} WHERE u.mobile = ?1");
    Ok(conn.query_row(&sql, [mobile], user_from_row).optional()?)
}

/// Removes a user (and, by cascade, the user's bindings).
pub(crate) fn remove_user(conn: &Connection, id: UserId) -> Result<()> {
    if conn.execute("DELETE FROM users WHERE id = ?1", [id.0])? == 0 {
        return Err(StoreError::NotFound(Entity::User));
    }
    Ok(())
}

/// Replaces a user's password hashes.
pub(crate) fn set_user_password(
    conn: &mut Connection,
    id: UserId,
    password: &Password,
) -> Result<()> {
    let pw = password.expose();
    validate::password(pw)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (username, realm): (String, String) = tx
        .query_row(
            "SELECT sip_username, realm FROM users WHERE id = ?1",
            [id.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(StoreError::NotFound(Entity::User))?;
    tx.execute(
        "UPDATE users SET ha1_md5 = ?2, ha1_sha256 = ?3, ha1_sha512_256 = ?4 WHERE id = ?1",
        params![
            id.0,
            ha1_md5(&username, &realm, pw),
            ha1_sha256(&username, &realm, pw),
            ha1_sha512_256(&username, &realm, pw),
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Fetches what digest authentication needs for `username` in `realm`.
pub(crate) fn lookup_sip_user(
    conn: &Connection,
    realm: &str,
    username: &str,
) -> Result<Option<SipCredentials>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, tenant_id, sip_username, realm, ha1_md5, ha1_sha256, ha1_sha512_256
             FROM users WHERE realm = ?1 AND sip_username = ?2",
        )?
        .query_row([realm, username], |r| {
            Ok(SipCredentials {
                user_id: UserId(r.get(0)?),
                tenant_id: TenantId(r.get(1)?),
                username: r.get(2)?,
                realm: r.get(3)?,
                ha1_md5: r.get(4)?,
                ha1_sha256: r.get(5)?,
                ha1_sha512_256: r.get(6)?,
            })
        })
        .optional()?)
}

// ---- registrations ----

fn validate_binding(b: &Binding) -> Result<()> {
    validate::binding_text(Field::Aor, &b.aor)?;
    validate::binding_text(Field::Contact, &b.contact)?;
    validate::binding_text_opt(Field::ContactParams, &b.contact_params)?;
    validate::binding_text(Field::CallId, &b.call_id)?;
    validate::binding_text(Field::Source, &b.source)?;
    for (field, v) in [
        (Field::Instance, &b.instance),
        (Field::Path, &b.path),
        (Field::UserAgent, &b.user_agent),
    ] {
        if let Some(v) = v {
            validate::binding_text_opt(field, v)?;
        }
    }
    if let Some(q) = b.q {
        validate::q_value(q)?;
    }
    Ok(())
}

/// Inserts a binding or refreshes the one with the same (aor, contact).
pub(crate) fn upsert_binding(conn: &Connection, b: &Binding) -> Result<()> {
    validate_binding(b)?;
    conn.prepare_cached(
        "INSERT INTO registrations(user_id, aor, contact, contact_params, expires_at, q,
                                   call_id, cseq, source, instance, reg_id, path,
                                   user_agent, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT(aor, contact) DO UPDATE SET
             user_id = excluded.user_id, contact_params = excluded.contact_params,
             expires_at = excluded.expires_at, q = excluded.q, call_id = excluded.call_id,
             cseq = excluded.cseq, source = excluded.source, instance = excluded.instance,
             reg_id = excluded.reg_id, path = excluded.path,
             user_agent = excluded.user_agent, updated_at = excluded.updated_at",
    )?
    .execute(params![
        b.user_id.0,
        b.aor,
        b.contact,
        b.contact_params,
        b.expires_at,
        b.q.map(f64::from),
        b.call_id,
        b.cseq,
        b.source,
        b.instance,
        b.reg_id,
        b.path,
        b.user_agent,
        b.updated_at,
    ])
    .map_err(|e| constraint(e, Some(Entity::User)))?;
    Ok(())
}

/// Removes one binding; tells whether it existed.
pub(crate) fn remove_binding(conn: &Connection, aor: &str, contact: &str) -> Result<bool> {
    let n = conn.execute(
        "DELETE FROM registrations WHERE aor = ?1 AND contact = ?2",
        [aor, contact],
    )?;
    Ok(n > 0)
}

/// Removes every binding of an AOR (`Contact: *`); returns how many there were.
pub(crate) fn remove_all_bindings(conn: &Connection, aor: &str) -> Result<u64> {
    let n = conn.execute("DELETE FROM registrations WHERE aor = ?1", [aor])?;
    Ok(n as u64)
}

/// Deletes bindings that expired at or before `now_unix` and returns the rest.
pub(crate) fn load_bindings(conn: &mut Connection, now_unix: i64) -> Result<Vec<Binding>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM registrations WHERE expires_at <= ?1",
        [now_unix],
    )?;
    let raw = {
        let mut stmt = tx.prepare_cached(
            "SELECT user_id, aor, contact, contact_params, expires_at, q, call_id, cseq,
                    source, instance, reg_id, path, user_agent, updated_at
             FROM registrations ORDER BY aor, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                Binding {
                    user_id: UserId(r.get(0)?),
                    aor: r.get(1)?,
                    contact: r.get(2)?,
                    contact_params: r.get(3)?,
                    expires_at: r.get(4)?,
                    q: r.get::<_, Option<f64>>(5)?.map(|q| q as f32),
                    call_id: r.get(6)?,
                    cseq: 0,
                    source: r.get(8)?,
                    instance: r.get(9)?,
                    reg_id: None,
                    path: r.get(11)?,
                    user_agent: r.get(12)?,
                    updated_at: r.get(13)?,
                },
                r.get::<_, i64>(7)?,
                r.get::<_, Option<i64>>(10)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.commit()?;
    // Range-check integers outside the row closure so a bad value is a typed error.
    raw.into_iter()
        .map(|(mut b, cseq, reg_id)| {
            b.cseq = u32::try_from(cseq).map_err(|_| StoreError::BadRow {
                column: "registrations.cseq",
            })?;
            b.reg_id = reg_id
                .map(u32::try_from)
                .transpose()
                .map_err(|_| StoreError::BadRow {
                    column: "registrations.reg_id",
                })?;
            Ok(b)
        })
        .collect()
}

/// Returns the 32-byte secret stored under `name`, storing `candidate` first if there is none.
pub(crate) fn load_or_create_secret(
    conn: &Connection,
    name: &str,
    candidate: [u8; 32],
) -> Result<[u8; 32]> {
    conn.execute(
        "INSERT OR IGNORE INTO daemon_secrets (name, value) VALUES (?1, ?2)",
        rusqlite::params![name, &candidate[..]],
    )?;
    let value: Vec<u8> = conn.query_row(
        "SELECT value FROM daemon_secrets WHERE name = ?1",
        [name],
        |r| r.get(0),
    )?;
    let mut out = [0u8; 32];
    if value.len() == 32 {
        out.copy_from_slice(&value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::schema;
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn =
            schema::open_writer(&dir.path().join("t.db"), schema::BUSY_TIMEOUT).expect("open");
        schema::migrate(&mut conn).expect("migrate");
        (dir, conn)
    }

    fn new_user(tenant: TenantId, ext: &str, username: &str) -> NewUser {
        NewUser {
            tenant,
            name: format!("User {ext}"),
            extension: ext.into(),
            mobile: None,
            sip_username: username.into(),
            realm: "sip.example.no".into(),
            password: Password::new("secret-password"),
        }
    }

    fn binding(user: UserId, aor: &str, contact: &str, expires_at: i64) -> Binding {
        Binding {
            user_id: user,
            aor: aor.into(),
            contact: contact.into(),
            contact_params: String::new(),
            expires_at,
            q: None,
            call_id: "c1@host".into(),
            cseq: 1,
            source: "udp:192.0.2.1:5060".into(),
            instance: None,
            reg_id: None,
            path: None,
            user_agent: None,
            updated_at: 1000,
        }
    }

    #[test]
    fn duplicates_name_the_field() {
        let (_d, conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        assert!(matches!(
            add_tenant(&conn, "ACME"),
            Err(StoreError::Duplicate {
                field: Field::TenantName
            })
        ));
        add_tenant_number(&conn, t, "+4721000000", NumberKind::Main, None).expect("number");
        assert!(matches!(
            add_tenant_number(&conn, t, "+4721000000", NumberKind::User, None),
            Err(StoreError::Duplicate {
                field: Field::Number
            })
        ));
        let mut u = new_user(t, "10", "alice");
        u.mobile = Some("+4790000001".into());
        add_user(&conn, &u).expect("user");
        let dup_ext = new_user(t, "10", "bob");
        assert!(matches!(
            add_user(&conn, &dup_ext),
            Err(StoreError::Duplicate {
                field: Field::Extension
            })
        ));
        let dup_name = new_user(t, "11", "alice");
        assert!(matches!(
            add_user(&conn, &dup_name),
            Err(StoreError::Duplicate {
                field: Field::SipUsername
            })
        ));
        let mut dup_mobile = new_user(t, "12", "carol");
        dup_mobile.mobile = Some("+4790000001".into());
        assert!(matches!(
            add_user(&conn, &dup_mobile),
            Err(StoreError::Duplicate {
                field: Field::Mobile
            })
        ));
        // Same username in another realm is a different account.
        let mut other_realm = new_user(t, "13", "alice");
        other_realm.realm = "other.example.no".into();
        add_user(&conn, &other_realm).expect("other realm");
    }

    #[test]
    fn personal_numbers_route_to_their_user_and_are_presented() {
        let (_d, conn) = db();
        let acme = add_tenant(&conn, "Acme").expect("tenant");
        let other = add_tenant(&conn, "Other").expect("tenant");
        let mut alice = new_user(acme, "10", "alice");
        alice.mobile = Some("+4790000001".into());
        let alice = add_user(&conn, &alice).expect("alice");
        let bob = add_user(&conn, &new_user(acme, "11", "bob")).expect("bob");
        let stranger = add_user(&conn, &new_user(other, "10", "eve")).expect("eve");

        // Nothing owned yet: nothing to present, nothing routes.
        assert_eq!(
            presentable_numbers(&conn, alice).expect("numbers"),
            PresentableNumbers::default()
        );
        assert!(route_number(&conn, "+4790000001").expect("route").is_none());

        // Alice's mobile, once the tenant owns it, routes to her and is her own number.
        add_tenant_number(&conn, acme, "+4790000001", NumberKind::User, None).expect("mobile");
        add_tenant_number(&conn, acme, "+4721000000", NumberKind::Main, None).expect("main");
        let (n, user) = route_number(&conn, "+4790000001")
            .expect("route")
            .expect("owned");
        assert_eq!((n.tenant_id, user.map(|u| u.id)), (acme, Some(alice)));
        assert_eq!(
            presentable_numbers(&conn, alice).expect("numbers"),
            PresentableNumbers {
                own: Some("+4790000001".into()),
                main: Some("+4721000000".into()),
            }
        );
        // A main number routes to the tenant but to no user.
        let (n, user) = route_number(&conn, "+4721000000")
            .expect("route")
            .expect("owned");
        assert_eq!((n.kind, user), (NumberKind::Main, None));

        // An assigned personal number wins over the mobile, for routing and presenting.
        add_tenant_number(&conn, acme, "+4721000011", NumberKind::User, Some(bob)).expect("bob's");
        let (_, user) = route_number(&conn, "+4721000011")
            .expect("route")
            .expect("owned");
        assert_eq!(user.map(|u| u.id), Some(bob));
        assert_eq!(
            presentable_numbers(&conn, bob)
                .expect("numbers")
                .own
                .as_deref(),
            Some("+4721000011")
        );
        assign_tenant_number(&conn, acme, "+4721000011", Some(alice)).expect("reassign");
        assert_eq!(
            presentable_numbers(&conn, alice)
                .expect("numbers")
                .own
                .as_deref(),
            Some("+4721000011")
        );
        assert_eq!(presentable_numbers(&conn, bob).expect("numbers").own, None);

        // Only personal numbers, only the tenant's own users, only the tenant's numbers.
        assert!(matches!(
            assign_tenant_number(&conn, acme, "+4721000000", Some(alice)),
            Err(StoreError::Invalid {
                field: Field::NumberKind,
                ..
            })
        ));
        assert!(matches!(
            assign_tenant_number(&conn, acme, "+4721000011", Some(stranger)),
            Err(StoreError::NotFound(Entity::User))
        ));
        assert!(matches!(
            assign_tenant_number(&conn, other, "+4721000011", None),
            Err(StoreError::NotFound(Entity::Number))
        ));
        assert!(matches!(
            add_tenant_number(&conn, acme, "+4721000012", NumberKind::Main, Some(bob)),
            Err(StoreError::Invalid { .. })
        ));
        // Removing the user leaves the number with the tenant, unassigned.
        remove_user(&conn, alice).expect("remove");
        let n = lookup_number(&conn, "+4721000011")
            .expect("lookup")
            .expect("kept");
        assert_eq!(n.user_id, None);
    }

    #[test]
    fn missing_tenant_is_not_found() {
        let (_d, conn) = db();
        assert!(matches!(
            add_tenant_number(&conn, TenantId(99), "+4721000000", NumberKind::Main, None),
            Err(StoreError::NotFound(Entity::Tenant))
        ));
        assert!(matches!(
            add_user(&conn, &new_user(TenantId(99), "10", "alice")),
            Err(StoreError::NotFound(Entity::Tenant))
        ));
        assert!(matches!(
            list_tenant_numbers(&conn, TenantId(99)),
            Err(StoreError::NotFound(Entity::Tenant))
        ));
    }

    #[test]
    fn stores_hashes_not_password() {
        let (_d, conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        add_user(&conn, &new_user(t, "10", "alice")).expect("user");
        let c = lookup_sip_user(&conn, "sip.example.no", "alice")
            .expect("lookup")
            .expect("found");
        assert_eq!(
            c.ha1_md5,
            ha1_md5("alice", "sip.example.no", "secret-password")
        );
        assert_eq!(
            c.ha1_sha256,
            ha1_sha256("alice", "sip.example.no", "secret-password")
        );
        // No column holds the plain password.
        let dump: String = conn
            .query_row(
                "SELECT group_concat(quote(name)||quote(ha1_md5)||quote(ha1_sha256)||
                        quote(ha1_sha512_256)||sip_username||realm) FROM users",
                [],
                |r| r.get(0),
            )
            .expect("dump");
        assert!(!dump.contains("secret-password"));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains(&c.ha1_md5) && !dbg.contains(&c.ha1_sha256),
            "{dbg}"
        );
        assert!(lookup_sip_user(&conn, "sip.example.no", "ALICE")
            .expect("lookup")
            .is_none());
    }

    #[test]
    fn bindings_roundtrip_and_expire() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let u = add_user(&conn, &new_user(t, "10", "alice")).expect("user");
        let aor = "sip:alice@sip.example.no";
        let mut full = binding(u, aor, "sip:alice@192.0.2.1:5060;transport=udp;ob", 2000);
        full.q = Some(0.7);
        full.contact_params = ";+sip.instance=\"<urn:uuid:1>\";reg-id=1".into();
        full.instance = Some("<urn:uuid:1>".into());
        full.reg_id = Some(1);
        full.path = Some("<sip:edge.example.no;lr>".into());
        full.user_agent = Some("Yealink".into());
        full.cseq = u32::MAX;
        upsert_binding(&conn, &full).expect("upsert");
        upsert_binding(&conn, &binding(u, aor, "sip:alice@192.0.2.2", 1500)).expect("upsert");
        upsert_binding(&conn, &binding(u, "sip:x@y", "sip:x@192.0.2.3", 900)).expect("upsert");

        let loaded = load_bindings(&mut conn, 1000).expect("load");
        assert_eq!(loaded.len(), 2, "the one expiring at 900 is gone");
        assert_eq!(loaded[0], full, "byte-exact round trip");

        // Refresh replaces, not duplicates.
        let mut refreshed = full.clone();
        refreshed.expires_at = 5000;
        refreshed.cseq = 2;
        upsert_binding(&conn, &refreshed).expect("refresh");
        let loaded = load_bindings(&mut conn, 1600).expect("load");
        assert_eq!(
            loaded,
            vec![refreshed.clone()],
            "1500 expired, 5000 refreshed"
        );

        assert!(remove_binding(&conn, aor, &full.contact).expect("rm"));
        assert!(!remove_binding(&conn, aor, &full.contact).expect("rm again"));
        upsert_binding(&conn, &binding(u, aor, "sip:a@1", 9000)).expect("upsert");
        upsert_binding(&conn, &binding(u, aor, "sip:a@2", 9000)).expect("upsert");
        assert_eq!(remove_all_bindings(&conn, aor).expect("rm all"), 2);
        assert!(load_bindings(&mut conn, 0).expect("load").is_empty());
    }

    #[test]
    fn binding_for_unknown_user_and_bad_fields() {
        let (_d, conn) = db();
        assert!(matches!(
            upsert_binding(&conn, &binding(UserId(7), "sip:a@b", "sip:a@c", 10)),
            Err(StoreError::NotFound(Entity::User))
        ));
        let mut b = binding(UserId(7), "sip:a@b", "", 10);
        assert!(matches!(
            upsert_binding(&conn, &b),
            Err(StoreError::Invalid {
                field: Field::Contact,
                ..
            })
        ));
        b.contact = "sip:a@c".into();
        b.q = Some(2.0);
        assert!(matches!(
            upsert_binding(&conn, &b),
            Err(StoreError::Invalid {
                field: Field::Q,
                ..
            })
        ));
    }

    #[test]
    fn a_tenant_with_only_a_queue_or_a_room_is_not_removed_unforced() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        conn.execute(
            "INSERT INTO queues (tenant_id, name, kind, strategy) VALUES (?1, 'Support', 'queue', 'linear')",
            [t.0],
        )
        .expect("queue");
        conn.execute(
            "INSERT INTO conference_rooms (tenant_id, name, extension) VALUES (?1, 'Board', '800')",
            [t.0],
        )
        .expect("room");
        match remove_tenant(&mut conn, t, false) {
            Err(StoreError::TenantInUse {
                users: 0,
                numbers: 0,
                queues: 1,
                rooms: 1,
            }) => {}
            other => panic!("expected TenantInUse, got {other:?}"),
        }
        remove_tenant(&mut conn, t, true).expect("forced");
        let left: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM queues) + (SELECT count(*) FROM conference_rooms)",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(left, 0, "forced removal takes the queue and the room");
    }

    #[test]
    fn removing_user_cascades_to_bindings_and_tenant_guard() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let u = add_user(&conn, &new_user(t, "10", "alice")).expect("user");
        add_tenant_number(&conn, t, "+4721000000", NumberKind::Main, None).expect("number");
        upsert_binding(&conn, &binding(u, "sip:a@b", "sip:a@c", 10_000)).expect("bind");
        match remove_tenant(&mut conn, t, false) {
            Err(StoreError::TenantInUse {
                users: 1,
                numbers: 1,
                queues: 0,
                rooms: 0,
            }) => {}
            other => panic!("expected TenantInUse, got {other:?}"),
        }
        remove_tenant(&mut conn, t, true).expect("forced");
        assert!(load_bindings(&mut conn, 0).expect("load").is_empty());
        assert!(list_users(&conn, None).expect("users").is_empty());
        assert!(lookup_number(&conn, "+4721000000")
            .expect("lookup")
            .is_none());
        assert!(matches!(
            remove_tenant(&mut conn, t, true),
            Err(StoreError::NotFound(Entity::Tenant))
        ));
    }

    #[test]
    fn password_change_changes_hashes() {
        let (_d, mut conn) = db();
        let t = add_tenant(&conn, "Acme").expect("tenant");
        let u = add_user(&conn, &new_user(t, "10", "alice")).expect("user");
        set_user_password(&mut conn, u, &Password::new("another-secret")).expect("passwd");
        let c = lookup_sip_user(&conn, "sip.example.no", "alice")
            .expect("lookup")
            .expect("found");
        assert_eq!(
            c.ha1_md5,
            ha1_md5("alice", "sip.example.no", "another-secret")
        );
        assert!(matches!(
            set_user_password(&mut conn, u, &Password::new("short")),
            Err(StoreError::Invalid {
                field: Field::Password,
                ..
            })
        ));
        assert!(matches!(
            set_user_password(&mut conn, UserId(99), &Password::new("long-enough")),
            Err(StoreError::NotFound(Entity::User))
        ));
    }

    #[test]
    fn user_listing_and_lookups() {
        let (_d, conn) = db();
        let a = add_tenant(&conn, "Acme").expect("tenant");
        let b = add_tenant(&conn, "Beta").expect("tenant");
        add_user(&conn, &new_user(a, "100", "a100")).expect("user");
        add_user(&conn, &new_user(a, "20", "a20")).expect("user");
        let mut m = new_user(b, "10", "b10");
        m.mobile = Some("+4790000002".into());
        add_user(&conn, &m).expect("user");
        let all = list_users(&conn, None).expect("all");
        let exts: Vec<_> = all
            .iter()
            .map(|u| (u.tenant_name.as_str(), u.extension.as_str()))
            .collect();
        assert_eq!(exts, [("Acme", "20"), ("Acme", "100"), ("Beta", "10")]);
        assert_eq!(list_users(&conn, Some(b)).expect("b").len(), 1);
        let by_mobile = lookup_user_by_mobile(&conn, "+4790000002")
            .expect("lookup")
            .expect("found");
        assert_eq!(by_mobile.sip_username, "b10");
        let found = find_user(&conn, a, "20").expect("find").expect("exists");
        assert_eq!(
            find_user_by_id(&conn, found.id).expect("by id"),
            Some(found.clone())
        );
        assert_eq!(find_user_by_id(&conn, UserId(999)).expect("by id"), None);
        assert!(find_user(&conn, b, "20").expect("find").is_none());
    }
}
