//! The SQL of conference rooms: provisioning (name, extension, dial-in number, PINs,
//! size, owner, flags), PIN verification, the lookups of inbound routing, and the
//! snapshot the daemon loads with the revision it polls (bumped by triggers, see schema
//! v8). The conference log is in `records`, the live state and the control commands in
//! `control`, PIN hashing in `pin`.
//!
//! Every write validates its input here and runs in one transaction, so a refused change
//! leaves nothing behind. A room's extension never equals a user's of the same tenant:
//! triggers refuse it from either side, and [`super::repo::constraint`] names it.

mod control;
mod pin;
mod records;

#[cfg(test)]
mod tests;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::conference_model::{
    ConferenceRoom, ConferenceRoomId, NewRoom, PinRole, RoomChanges, RoomPin, RoomSummary,
    RoomsSnapshot,
};
use super::model::{NumberKind, TenantId, UserId, UserRef};
use super::queues::{decode, to_u32};
use super::repo::{constraint, tenant_exists};
use super::validate;
use super::{Entity, Field, StoreError};

pub use control::COMMAND_MAX_AGE_MS;
pub(crate) use control::{
    conference_command, conference_live, expire_conference_command, finish_conference_command,
    pending_conference_commands, send_conference_command, write_conference_live,
};
pub(crate) use records::{
    delete_conferences_before, link_participants_to_call, list_conferences, write_conference,
};

type Result<T> = std::result::Result<T, StoreError>;

/// The columns [`raw_room`] reads, in order.
const ROOM_COLUMNS: &str = "r.id, r.tenant_id, r.name, r.extension, n.number,
           r.pin_hash IS NOT NULL, r.moderator_pin_hash IS NOT NULL, r.max_participants,
           u.id, u.name, u.extension, r.end_when_moderator_leaves, r.locked, r.created_at";
/// The joins [`ROOM_COLUMNS`] need.
const ROOM_FROM: &str = "FROM conference_rooms r
    LEFT JOIN tenant_numbers n ON n.conference_id = r.id
    LEFT JOIN users u ON u.id = r.owner_user_id";

/// A `conference_rooms` row as read, before its values are checked.
struct RawRoom {
    id: i64,
    tenant_id: i64,
    name: String,
    extension: String,
    number: Option<String>,
    has_pin: bool,
    has_moderator_pin: bool,
    max_participants: i64,
    owner: Option<(i64, String, String)>,
    end_when_moderator_leaves: bool,
    locked: bool,
    created_at: i64,
}

fn raw_room(r: &Row<'_>) -> rusqlite::Result<RawRoom> {
    let owner = match (r.get::<_, Option<i64>>(8)?, r.get(9)?, r.get(10)?) {
        (Some(id), Some(name), Some(ext)) => Some((id, name, ext)),
        _ => None,
    };
    Ok(RawRoom {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        name: r.get(2)?,
        extension: r.get(3)?,
        number: r.get(4)?,
        has_pin: r.get(5)?,
        has_moderator_pin: r.get(6)?,
        max_participants: r.get(7)?,
        owner,
        end_when_moderator_leaves: r.get(11)?,
        locked: r.get(12)?,
        created_at: r.get(13)?,
    })
}

impl RawRoom {
    fn decode(self) -> Result<ConferenceRoom> {
        Ok(ConferenceRoom {
            id: ConferenceRoomId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            extension: self.extension,
            number: self.number,
            has_pin: self.has_pin,
            has_moderator_pin: self.has_moderator_pin,
            max_participants: to_u32(self.max_participants, "conference_rooms.max_participants")?,
            owner: self.owner.map(|(id, name, extension)| UserRef {
                id: UserId(id),
                name,
                extension,
            }),
            end_when_moderator_leaves: self.end_when_moderator_leaves,
            locked: self.locked,
            created_at: self.created_at,
        })
    }
}

/// Runs a room query and decodes its rows.
fn query_rooms(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<ConferenceRoom>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ROOM_COLUMNS} {ROOM_FROM} {filter}"))?;
    let rows = stmt
        .query_map(params, raw_room)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(RawRoom::decode).collect()
}

// ---- provisioning ----

/// Checks the PINs of a room: each 4 to 12 digits, and not the same.
fn check_pins(pin: Option<&RoomPin>, moderator: Option<&RoomPin>) -> Result<()> {
    if let Some(p) = pin {
        validate::pin(Field::Pin, p.expose())?;
    }
    if let Some(m) = moderator {
        validate::pin(Field::ModeratorPin, m.expose())?;
    }
    if let (Some(p), Some(m)) = (pin, moderator) {
        if p.expose() == m.expose() {
            return Err(pins_equal());
        }
    }
    Ok(())
}

fn pins_equal() -> StoreError {
    StoreError::Invalid {
        field: Field::ModeratorPin,
        reason: "must differ from the PIN",
    }
}

/// The owner must be a user of the room's tenant ([`StoreError::NotFound`] otherwise).
fn check_owner(conn: &Connection, tenant: TenantId, owner: UserId) -> Result<()> {
    let t: Option<i64> = conn
        .query_row(
            "SELECT tenant_id FROM users WHERE id = ?1",
            [owner.0],
            |r| r.get(0),
        )
        .optional()?;
    match t {
        Some(t) if t == tenant.0 => Ok(()),
        _ => Err(StoreError::NotFound(Entity::User)),
    }
}

/// Creates a room (with its dial-in number, if any) in one transaction. The PINs are
/// hashed first; neither they nor their hashes leave this function.
pub(crate) fn add_room(
    conn: &mut Connection,
    tenant: TenantId,
    r: &NewRoom,
) -> Result<ConferenceRoomId> {
    validate::display_name(Field::ConferenceName, &r.name)?;
    validate::extension(&r.extension)?;
    if let Some(n) = &r.number {
        validate::e164(Field::Number, n)?;
    }
    validate::max_participants(r.max_participants)?;
    check_pins(r.pin.as_ref(), r.moderator_pin.as_ref())?;
    let pin_hash = r.pin.as_ref().map(pin::hash).transpose()?;
    let moderator_hash = r.moderator_pin.as_ref().map(pin::hash).transpose()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(owner) = r.owner {
        if !tenant_exists(&tx, tenant)? {
            return Err(StoreError::NotFound(Entity::Tenant));
        }
        check_owner(&tx, tenant, owner)?;
    }
    tx.execute(
        "INSERT INTO conference_rooms (tenant_id, name, extension, pin_hash, moderator_pin_hash,
                                       max_participants, owner_user_id,
                                       end_when_moderator_leaves, locked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            tenant.0,
            r.name,
            r.extension,
            pin_hash,
            moderator_hash,
            r.max_participants,
            r.owner.map(|u| u.0),
            r.end_when_moderator_leaves,
            r.locked,
        ],
    )
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    let id = ConferenceRoomId(tx.last_insert_rowid());
    if let Some(n) = &r.number {
        lead_number_to_room(&tx, tenant, n, id)?;
    }
    tx.commit()?;
    Ok(id)
}

/// A room's stored values that [`update_room`] may change.
struct StoredRoom {
    tenant: TenantId,
    name: String,
    extension: String,
    pin_hash: Option<String>,
    moderator_hash: Option<String>,
    max_participants: i64,
    owner: Option<i64>,
    end_when_moderator_leaves: bool,
    locked: bool,
}

fn stored_room(conn: &Connection, room: ConferenceRoomId) -> Result<StoredRoom> {
    conn.query_row(
        "SELECT tenant_id, name, extension, pin_hash, moderator_pin_hash, max_participants,
                owner_user_id, end_when_moderator_leaves, locked
         FROM conference_rooms WHERE id = ?1",
        [room.0],
        |r| {
            Ok(StoredRoom {
                tenant: TenantId(r.get(0)?),
                name: r.get(1)?,
                extension: r.get(2)?,
                pin_hash: r.get(3)?,
                moderator_hash: r.get(4)?,
                max_participants: r.get(5)?,
                owner: r.get(6)?,
                end_when_moderator_leaves: r.get(7)?,
                locked: r.get(8)?,
            })
        },
    )
    .optional()?
    .ok_or(StoreError::NotFound(Entity::Room))
}

/// Checks a new PIN against the other PIN kept as it is (only its hash is stored, so
/// the new one is verified against that hash).
fn check_differs_from_stored(
    new: &RoomPin,
    stored_hash: Option<&str>,
    field: Field,
    column: &'static str,
) -> Result<()> {
    if let Some(h) = stored_hash {
        if pin::verify(new.expose(), h, column)? {
            return Err(StoreError::Invalid {
                field,
                reason: match field {
                    Field::Pin => "must differ from the moderator PIN",
                    _ => "must differ from the PIN",
                },
            });
        }
    }
    Ok(())
}

/// Applies `changes` to a room in one transaction, all or nothing.
pub(crate) fn update_room(
    conn: &mut Connection,
    room: ConferenceRoomId,
    changes: &RoomChanges,
) -> Result<()> {
    if let Some(n) = &changes.name {
        validate::display_name(Field::ConferenceName, n)?;
    }
    if let Some(e) = &changes.extension {
        validate::extension(e)?;
    }
    if let Some(Some(n)) = &changes.number {
        validate::e164(Field::Number, n)?;
    }
    if let Some(m) = changes.max_participants {
        validate::max_participants(m)?;
    }
    let new_pin = changes.pin.as_ref().and_then(Option::as_ref);
    let new_moderator = changes.moderator_pin.as_ref().and_then(Option::as_ref);
    check_pins(new_pin, new_moderator)?;
    let new_pin_hash = new_pin.map(pin::hash).transpose()?;
    let new_moderator_hash = new_moderator.map(pin::hash).transpose()?;

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut s = stored_room(&tx, room)?;
    // A new PIN must differ from the other one when that one is kept.
    if let (Some(p), None) = (new_pin, &changes.moderator_pin) {
        check_differs_from_stored(
            p,
            s.moderator_hash.as_deref(),
            Field::Pin,
            "conference_rooms.moderator_pin_hash",
        )?;
    }
    if let (Some(m), None) = (new_moderator, &changes.pin) {
        check_differs_from_stored(
            m,
            s.pin_hash.as_deref(),
            Field::ModeratorPin,
            "conference_rooms.pin_hash",
        )?;
    }
    if let Some(Some(owner)) = changes.owner {
        check_owner(&tx, s.tenant, owner)?;
    }
    if let Some(n) = &changes.name {
        s.name.clone_from(n);
    }
    if let Some(e) = &changes.extension {
        s.extension.clone_from(e);
    }
    if changes.pin.is_some() {
        s.pin_hash = new_pin_hash;
    }
    if changes.moderator_pin.is_some() {
        s.moderator_hash = new_moderator_hash;
    }
    if let Some(m) = changes.max_participants {
        s.max_participants = i64::from(m);
    }
    if let Some(o) = changes.owner {
        s.owner = o.map(|u| u.0);
    }
    if let Some(v) = changes.end_when_moderator_leaves {
        s.end_when_moderator_leaves = v;
    }
    if let Some(v) = changes.locked {
        s.locked = v;
    }
    tx.execute(
        "UPDATE conference_rooms SET name = ?2, extension = ?3, pin_hash = ?4,
                moderator_pin_hash = ?5, max_participants = ?6, owner_user_id = ?7,
                end_when_moderator_leaves = ?8, locked = ?9
         WHERE id = ?1",
        params![
            room.0,
            s.name,
            s.extension,
            s.pin_hash,
            s.moderator_hash,
            s.max_participants,
            s.owner,
            s.end_when_moderator_leaves,
            s.locked,
        ],
    )
    .map_err(|e| constraint(e, None))?;
    match &changes.number {
        Some(Some(n)) => lead_number_to_room(&tx, s.tenant, n, room)?,
        Some(None) => {
            tx.execute(
                "UPDATE tenant_numbers SET conference_id = NULL WHERE conference_id = ?1",
                [room.0],
            )?;
        }
        None => {}
    }
    tx.commit()?;
    Ok(())
}

/// Leads a number to a room (and the room's previous number, if another, to nothing):
/// a main, queue or conference number of the tenant that leads nowhere is assigned, a
/// number nobody owns is added as a conference number. Refused: a personal number, one
/// leading to a queue or another room; another tenant's number is a duplicate.
fn lead_number_to_room(
    tx: &Connection,
    tenant: TenantId,
    number: &str,
    room: ConferenceRoomId,
) -> Result<()> {
    type Owner = (i64, String, Option<i64>, Option<i64>);
    let owner: Option<Owner> = tx
        .query_row(
            "SELECT tenant_id, kind, queue_id, conference_id FROM tenant_numbers
             WHERE number = ?1",
            [number],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let release_previous = || {
        tx.execute(
            "UPDATE tenant_numbers SET conference_id = NULL
             WHERE conference_id = ?1 AND number <> ?2",
            params![room.0, number],
        )
    };
    match owner {
        None => {
            release_previous()?;
            tx.execute(
                "INSERT INTO tenant_numbers (number, tenant_id, kind, conference_id)
                 VALUES (?1, ?2, 'conference', ?3)",
                params![number, tenant.0, room.0],
            )?;
        }
        Some((t, ..)) if t != tenant.0 => {
            return Err(StoreError::Duplicate {
                field: Field::Number,
            })
        }
        Some((_, kind, queue, current)) => {
            if decode::<NumberKind>(&kind, "tenant_numbers.kind")? == NumberKind::User {
                return Err(StoreError::Invalid {
                    field: Field::NumberKind,
                    reason: "a personal number cannot lead to a conference room; use a main \
                             or conference number",
                });
            }
            if queue.is_some() {
                return Err(StoreError::Invalid {
                    field: Field::Number,
                    reason: "leads to a queue; take it from the queue first",
                });
            }
            match current {
                Some(c) if c == room.0 => {}
                Some(_) => {
                    return Err(StoreError::Invalid {
                        field: Field::Number,
                        reason: "leads to another conference room; take it from that room first",
                    })
                }
                None => {
                    release_previous()?;
                    tx.execute(
                        "UPDATE tenant_numbers SET conference_id = ?2 WHERE number = ?1",
                        params![number, room.0],
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Removes a room. Its live state and pending commands go with it; its number stays
/// with the tenant, leading nowhere; its conference log stays with the room's name.
pub(crate) fn remove_room(conn: &Connection, room: ConferenceRoomId) -> Result<()> {
    if conn.execute("DELETE FROM conference_rooms WHERE id = ?1", [room.0])? == 0 {
        return Err(StoreError::NotFound(Entity::Room));
    }
    Ok(())
}

// ---- lookups ----

/// Finds a room of a tenant by name (ASCII case-insensitive).
pub(crate) fn find_room(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> Result<Option<ConferenceRoom>> {
    Ok(query_rooms(
        conn,
        "WHERE r.tenant_id = ?1 AND r.name = ?2",
        params![tenant.0, name],
    )?
    .pop())
}

/// Finds the room an inbound call to `number` (E.164) reaches.
pub(crate) fn room_by_number(conn: &Connection, number: &str) -> Result<Option<ConferenceRoom>> {
    Ok(query_rooms(conn, "WHERE n.number = ?1", [number])?.pop())
}

/// Finds a tenant's room by extension.
pub(crate) fn room_by_extension(
    conn: &Connection,
    tenant: TenantId,
    extension: &str,
) -> Result<Option<ConferenceRoom>> {
    Ok(query_rooms(
        conn,
        "WHERE r.tenant_id = ?1 AND r.extension = ?2",
        params![tenant.0, extension],
    )?
    .pop())
}

/// Lists rooms (of one tenant, or all) by tenant name, then room name.
pub(crate) fn list_rooms(conn: &Connection, tenant: Option<TenantId>) -> Result<Vec<RoomSummary>> {
    if let Some(t) = tenant {
        if !tenant_exists(conn, t)? {
            return Err(StoreError::NotFound(Entity::Tenant));
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROOM_COLUMNS}, t.name {ROOM_FROM} JOIN tenants t ON t.id = r.tenant_id
         WHERE ?1 IS NULL OR r.tenant_id = ?1
         ORDER BY t.name, r.name"
    ))?;
    let rows = stmt
        .query_map([tenant.map(|t| t.0)], |r| {
            Ok((raw_room(r)?, r.get::<_, String>(14)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(raw, tenant_name)| {
            Ok(RoomSummary {
                room: raw.decode()?,
                tenant_name,
            })
        })
        .collect()
}

/// Which PIN `digits` is for the room: the moderator PIN, the participants' PIN, or
/// neither. Input that cannot be a PIN is refused without hashing (argon2 is costly on
/// purpose). [`StoreError::NotFound`] with `Entity::Room` if there is no such room.
pub(crate) fn verify_room_pin(
    conn: &Connection,
    room: ConferenceRoomId,
    digits: &RoomPin,
) -> Result<Option<PinRole>> {
    let (pin_hash, moderator_hash): (Option<String>, Option<String>) = conn
        .prepare_cached("SELECT pin_hash, moderator_pin_hash FROM conference_rooms WHERE id = ?1")?
        .query_row([room.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Room))?;
    if validate::pin(Field::Pin, digits.expose()).is_err() {
        return Ok(None);
    }
    if let Some(h) = moderator_hash {
        if pin::verify(digits.expose(), &h, "conference_rooms.moderator_pin_hash")? {
            return Ok(Some(PinRole::Moderator));
        }
    }
    if let Some(h) = pin_hash {
        if pin::verify(digits.expose(), &h, "conference_rooms.pin_hash")? {
            return Ok(Some(PinRole::Participant));
        }
    }
    Ok(None)
}

// ---- the daemon's view ----

/// The room configuration's revision: changes whenever a room or a number leading to
/// one changes.
pub(crate) fn conference_config_revision(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT revision FROM conference_config_revision WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

/// Every room, read in one transaction with the revision it shows.
pub(crate) fn load_rooms(conn: &Connection) -> Result<RoomsSnapshot> {
    let tx = conn.unchecked_transaction()?;
    let revision = conference_config_revision(&tx)?;
    let rooms = query_rooms(&tx, "ORDER BY r.id", [])?;
    tx.finish()?;
    Ok(RoomsSnapshot { revision, rooms })
}
