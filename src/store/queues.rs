//! The SQL of queue provisioning: queues and answer groups, their members, overflow
//! rules, opening hours and holidays, the numbers leading to them, VIP numbers, agents'
//! presence and the tenants' queue settings; and the configuration snapshot the daemon
//! loads, with the revision counter it polls (bumped by triggers, see schema v7).
//!
//! Every write validates its input here and runs in one transaction, so a refused
//! change leaves nothing behind.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::model::{NumberKind, TenantId, UserId};
use super::queue_model::{
    AgentPresence, AgentState, LocalDate, OverflowCondition, OverflowRule, OverflowRuleInfo,
    OverflowTarget, Queue, QueueConfig, QueueConfigSnapshot, QueueDefinition, QueueDetails,
    QueueHoliday, QueueId, QueueKind, QueueMember, QueueSettings, QueueStrategy, QueueSummary,
    TenantSettings, VipNumber, WeeklyHours,
};
use super::repo::{constraint, tenant_exists};
use super::validate;
use super::{Entity, Field, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Decodes a stored text value of a typed enum, naming the column if it is unknown.
pub(super) fn decode<T: std::str::FromStr>(s: &str, column: &'static str) -> Result<T> {
    s.parse().map_err(|_| StoreError::BadRow { column })
}

/// A stored count or setting as `u32`, naming the column if it is out of range.
pub(super) fn to_u32(v: i64, column: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::BadRow { column })
}

fn to_u16(v: i64, column: &'static str) -> Result<u16> {
    u16::try_from(v).map_err(|_| StoreError::BadRow { column })
}

// ---- queues ----

/// The columns [`raw_queue`] reads, in order.
const QUEUE_COLUMNS: &str = "q.id, q.tenant_id, q.name, q.kind, q.strategy, q.ring_timeout_s, \
                             q.wrap_up_s, q.max_wait_s, q.max_callers, q.announce_every_s, \
                             q.greeting";

/// A `queues` row as read, before its values are decoded.
struct RawQueue {
    id: i64,
    tenant_id: i64,
    name: String,
    kind: String,
    strategy: String,
    ring_timeout_s: i64,
    wrap_up_s: i64,
    max_wait_s: Option<i64>,
    max_callers: Option<i64>,
    announce_every_s: Option<i64>,
    greeting: Option<String>,
}

fn raw_queue(r: &Row<'_>) -> rusqlite::Result<RawQueue> {
    Ok(RawQueue {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        strategy: r.get(4)?,
        ring_timeout_s: r.get(5)?,
        wrap_up_s: r.get(6)?,
        max_wait_s: r.get(7)?,
        max_callers: r.get(8)?,
        announce_every_s: r.get(9)?,
        greeting: r.get(10)?,
    })
}

impl RawQueue {
    fn decode(self) -> Result<Queue> {
        let opt = |v: Option<i64>, column| v.map(|v| to_u32(v, column)).transpose();
        Ok(Queue {
            id: QueueId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            settings: QueueSettings {
                kind: decode::<QueueKind>(&self.kind, "queues.kind")?,
                strategy: decode::<QueueStrategy>(&self.strategy, "queues.strategy")?,
                ring_timeout_s: to_u32(self.ring_timeout_s, "queues.ring_timeout_s")?,
                wrap_up_s: to_u32(self.wrap_up_s, "queues.wrap_up_s")?,
                max_wait_s: opt(self.max_wait_s, "queues.max_wait_s")?,
                max_callers: opt(self.max_callers, "queues.max_callers")?,
                announce_every_s: opt(self.announce_every_s, "queues.announce_every_s")?,
                greeting: self.greeting,
            },
        })
    }
}

fn check_definition(def: &QueueDefinition) -> Result<()> {
    validate::display_name(Field::QueueName, &def.name)?;
    validate::queue_settings(&def.settings)?;
    for n in &def.numbers {
        validate::e164(Field::Number, n)?;
    }
    Ok(())
}

/// Creates a queue with its numbers (see [`QueueDefinition::numbers`]) in one
/// transaction.
pub(crate) fn add_queue(
    conn: &mut Connection,
    tenant: TenantId,
    def: &QueueDefinition,
) -> Result<QueueId> {
    check_definition(def)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let s = &def.settings;
    tx.execute(
        "INSERT INTO queues (tenant_id, name, kind, strategy, ring_timeout_s, wrap_up_s,
                             max_wait_s, max_callers, announce_every_s, greeting)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            tenant.0,
            def.name,
            s.kind.as_str(),
            s.strategy.as_str(),
            s.ring_timeout_s,
            s.wrap_up_s,
            s.max_wait_s,
            s.max_callers,
            s.announce_every_s,
            s.greeting,
        ],
    )
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    let id = QueueId(tx.last_insert_rowid());
    for n in &def.numbers {
        lead_number_to_queue(&tx, tenant, n, id)?;
    }
    tx.commit()?;
    Ok(id)
}

/// Replaces a queue's name and settings and leads its new numbers to it (numbers already
/// leading to it stay).
pub(crate) fn update_queue(
    conn: &mut Connection,
    id: QueueId,
    def: &QueueDefinition,
) -> Result<()> {
    check_definition(def)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tenant = queue_tenant(&tx, id)?;
    let s = &def.settings;
    tx.execute(
        "UPDATE queues SET name = ?2, kind = ?3, strategy = ?4, ring_timeout_s = ?5,
                           wrap_up_s = ?6, max_wait_s = ?7, max_callers = ?8,
                           announce_every_s = ?9, greeting = ?10
         WHERE id = ?1",
        params![
            id.0,
            def.name,
            s.kind.as_str(),
            s.strategy.as_str(),
            s.ring_timeout_s,
            s.wrap_up_s,
            s.max_wait_s,
            s.max_callers,
            s.announce_every_s,
            s.greeting,
        ],
    )
    .map_err(|e| constraint(e, None))?;
    for n in &def.numbers {
        lead_number_to_queue(&tx, tenant, n, id)?;
    }
    tx.commit()?;
    Ok(())
}

/// Leads a number to a queue: a main or queue number of the tenant is assigned, a number
/// nobody owns is added as a queue number, a personal or conference number (or one
/// leading to a room) is refused, another tenant's number is a duplicate.
fn lead_number_to_queue(
    tx: &Connection,
    tenant: TenantId,
    number: &str,
    queue: QueueId,
) -> Result<()> {
    let owner: Option<(i64, String, Option<i64>)> = tx
        .query_row(
            "SELECT tenant_id, kind, conference_id FROM tenant_numbers WHERE number = ?1",
            [number],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match owner {
        None => {
            tx.execute(
                "INSERT INTO tenant_numbers (number, tenant_id, kind, queue_id)
                 VALUES (?1, ?2, 'queue', ?3)",
                params![number, tenant.0, queue.0],
            )?;
        }
        Some((t, _, _)) if t != tenant.0 => {
            return Err(StoreError::Duplicate {
                field: Field::Number,
            })
        }
        Some((_, kind, room)) => {
            check_queue_number(decode(&kind, "tenant_numbers.kind")?, room)?;
            tx.execute(
                "UPDATE tenant_numbers SET queue_id = ?2 WHERE number = ?1",
                params![number, queue.0],
            )?;
        }
    }
    Ok(())
}

/// A number can lead to a queue if it is a main or queue number not leading to a
/// conference room (`room`: the room it leads to).
fn check_queue_number(kind: NumberKind, room: Option<i64>) -> Result<()> {
    let reason = match kind {
        NumberKind::Main | NumberKind::Queue => None,
        NumberKind::User => {
            Some("a personal number cannot lead to a queue; use a main or queue number")
        }
        NumberKind::Conference => {
            Some("a conference number cannot lead to a queue; use a main or queue number")
        }
    };
    if let Some(reason) = reason {
        return Err(StoreError::Invalid {
            field: Field::NumberKind,
            reason,
        });
    }
    if room.is_some() {
        return Err(StoreError::Invalid {
            field: Field::Number,
            reason: "leads to a conference room; take it from the room first",
        });
    }
    Ok(())
}

/// The tenant of a queue ([`StoreError::NotFound`] if there is no such queue).
pub(super) fn queue_tenant(conn: &Connection, id: QueueId) -> Result<TenantId> {
    conn.query_row("SELECT tenant_id FROM queues WHERE id = ?1", [id.0], |r| {
        r.get(0)
    })
    .optional()?
    .map(TenantId)
    .ok_or(StoreError::NotFound(Entity::Queue))
}

/// Removes a queue. Refused while another queue's overflow rule leads to it, unless
/// `force` (then those rules go too). Its members, rules, hours and live row go with
/// it; its numbers stay with the tenant, leading nowhere; its history stays.
pub(crate) fn remove_queue(conn: &mut Connection, id: QueueId, force: bool) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    queue_tenant(&tx, id)?;
    if !force {
        let referring = referring_rules(&tx, id)?;
        if !referring.is_empty() {
            let list: Vec<String> = referring
                .iter()
                .map(|(name, cond)| format!("queue {name:?} ({cond})"))
                .collect();
            return Err(StoreError::QueueInUse {
                referring: list.join(", "),
            });
        }
    }
    tx.execute("DELETE FROM queues WHERE id = ?1", [id.0])?;
    tx.commit()?;
    Ok(())
}

/// Other queues whose overflow rules lead to `id`: (name, condition), by name.
fn referring_rules(conn: &Connection, id: QueueId) -> Result<Vec<(String, OverflowCondition)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT q.name, o.condition FROM queue_overflow o JOIN queues q ON q.id = o.queue_id
         WHERE o.target_queue_id = ?1 AND o.queue_id <> ?1
         ORDER BY q.name, o.condition",
    )?;
    let rows = stmt
        .query_map([id.0], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(name, c)| Ok((name, decode(&c, "queue_overflow.condition")?)))
        .collect()
}

/// Finds a queue of a tenant by name (ASCII case-insensitive).
pub(crate) fn find_queue(conn: &Connection, tenant: TenantId, name: &str) -> Result<Option<Queue>> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {QUEUE_COLUMNS} FROM queues q WHERE q.tenant_id = ?1 AND q.name = ?2"
        ))?
        .query_row(params![tenant.0, name], raw_queue)
        .optional()?;
    raw.map(RawQueue::decode).transpose()
}

fn queue_by_id(conn: &Connection, id: QueueId) -> Result<Queue> {
    conn.prepare_cached(&format!(
        "SELECT {QUEUE_COLUMNS} FROM queues q WHERE q.id = ?1"
    ))?
    .query_row([id.0], raw_queue)
    .optional()?
    .ok_or(StoreError::NotFound(Entity::Queue))?
    .decode()
}

/// Lists queues (of one tenant, or all) by tenant name, then queue name.
pub(crate) fn list_queues(
    conn: &Connection,
    tenant: Option<TenantId>,
) -> Result<Vec<QueueSummary>> {
    if let Some(t) = tenant {
        if !tenant_exists(conn, t)? {
            return Err(StoreError::NotFound(Entity::Tenant));
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {QUEUE_COLUMNS}, t.name,
                (SELECT count(*) FROM queue_members m WHERE m.queue_id = q.id),
                (SELECT group_concat(number, ' ') FROM
                    (SELECT number FROM tenant_numbers n WHERE n.queue_id = q.id
                     ORDER BY number))
         FROM queues q JOIN tenants t ON t.id = q.tenant_id
         WHERE ?1 IS NULL OR q.tenant_id = ?1
         ORDER BY t.name, q.name"
    ))?;
    let rows = stmt
        .query_map([tenant.map(|t| t.0)], |r| {
            Ok((
                raw_queue(r)?,
                r.get::<_, String>(11)?,
                r.get::<_, i64>(12)?,
                r.get::<_, Option<String>>(13)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(raw, tenant_name, members, numbers)| {
            Ok(QueueSummary {
                queue: raw.decode()?,
                tenant_name,
                members: u64::try_from(members)
                    .map_err(|_| StoreError::BadRow { column: "count(*)" })?,
                numbers: numbers
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// Everything about one queue: members, presence, numbers, rules, hours, holidays and
/// the queues overflowing to it.
pub(crate) fn queue_details(conn: &Connection, id: QueueId) -> Result<QueueDetails> {
    // One read transaction, so the parts agree with each other.
    let tx = conn.unchecked_transaction()?;
    let queue = queue_by_id(&tx, id)?;
    let members = list_members(&tx, id)?;
    let presence = {
        let mut stmt = tx.prepare_cached(
            "SELECT a.user_id, a.presence, a.pause_reason, a.changed_at_ms
             FROM agent_state a JOIN queue_members m ON m.user_id = a.user_id
             WHERE m.queue_id = ?1 ORDER BY a.user_id",
        )?;
        let rows = stmt
            .query_map([id.0], raw_agent)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(decode_agent)
            .collect::<Result<Vec<_>>>()?
    };
    let numbers = {
        let mut stmt = tx.prepare_cached(
            "SELECT number FROM tenant_numbers WHERE queue_id = ?1 ORDER BY number",
        )?;
        let rows = stmt.query_map([id.0], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let overflow = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {OVERFLOW_COLUMNS}, tq.name, tu.extension, tu.name
             FROM queue_overflow o
             LEFT JOIN queues tq ON tq.id = o.target_queue_id
             LEFT JOIN users tu ON tu.id = o.target_user_id
             WHERE o.queue_id = ?1"
        ))?;
        let rows = stmt
            .query_map([id.0], |r| {
                Ok((
                    raw_overflow(r)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = rows
            .into_iter()
            .map(|(raw, queue_name, ext, user_name)| {
                let (_, rule) = decode_overflow(raw)?;
                let target_label = match &rule.target {
                    OverflowTarget::Queue(_) => format!("queue {}", queue_name.unwrap_or_default()),
                    OverflowTarget::User(_) => format!(
                        "user {} ({})",
                        ext.unwrap_or_default(),
                        user_name.unwrap_or_default()
                    ),
                    OverflowTarget::Number(n) => format!("number {n}"),
                    OverflowTarget::Announcement(Some(p)) => format!("announcement {p}"),
                    OverflowTarget::Announcement(None) => "announcement (default)".to_owned(),
                };
                Ok(OverflowRuleInfo { rule, target_label })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|i| condition_order(i.rule.condition));
        out
    };
    let weekly = weekly_of(&tx, Some(id))?
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    let holidays = holidays_of(&tx, Some(id))?
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    let referred_by = referring_rules(&tx, id)?;
    tx.finish()?;
    Ok(QueueDetails {
        queue,
        members,
        presence,
        numbers,
        overflow,
        weekly,
        holidays,
        referred_by,
    })
}

fn condition_order(c: OverflowCondition) -> usize {
    OverflowCondition::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or(usize::MAX)
}

// ---- members ----

/// The columns [`raw_member`] reads (members `m` joined with users `u`).
const MEMBER_COLUMNS: &str = "m.queue_id, m.user_id, u.extension, u.name, m.position, \
                              m.ring_timeout_s";

type RawMember = (i64, i64, String, String, i64, Option<i64>);

fn raw_member(r: &Row<'_>) -> rusqlite::Result<RawMember> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode_member(
    (queue, user, extension, name, position, ring): RawMember,
) -> Result<(QueueId, QueueMember)> {
    Ok((
        QueueId(queue),
        QueueMember {
            user_id: UserId(user),
            extension,
            name,
            position: to_u32(position, "queue_members.position")?,
            ring_timeout_s: ring
                .map(|v| to_u32(v, "queue_members.ring_timeout_s"))
                .transpose()?,
        },
    ))
}

/// Adds a user of the queue's tenant as a member, or updates the member's position and
/// ring time. `position` `None`: after the last member (a new member) or unchanged.
/// Returns true if the user was not a member before.
pub(crate) fn add_member(
    conn: &mut Connection,
    queue: QueueId,
    user: UserId,
    position: Option<u32>,
    ring_timeout_s: Option<u32>,
) -> Result<bool> {
    if let Some(p) = position {
        validate::position(p)?;
    }
    if let Some(r) = ring_timeout_s {
        validate::ring_timeout(r)?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tenant = queue_tenant(&tx, queue)?;
    check_user_of(&tx, tenant, user)?;
    let existing: Option<i64> = tx
        .query_row(
            "SELECT position FROM queue_members WHERE queue_id = ?1 AND user_id = ?2",
            params![queue.0, user.0],
            |r| r.get(0),
        )
        .optional()?;
    let added = existing.is_none();
    let position = match (position, existing) {
        (Some(p), _) => i64::from(p),
        (None, Some(p)) => p,
        (None, None) => tx.query_row(
            "SELECT coalesce(max(position), 0) + 1 FROM queue_members WHERE queue_id = ?1",
            [queue.0],
            |r| r.get::<_, i64>(0),
        )?,
    };
    validate::position(u32::try_from(position).unwrap_or(u32::MAX))?;
    tx.execute(
        "INSERT INTO queue_members (queue_id, user_id, position, ring_timeout_s)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (queue_id, user_id) DO UPDATE SET
             position = excluded.position,
             ring_timeout_s = coalesce(excluded.ring_timeout_s, ring_timeout_s)",
        params![queue.0, user.0, position, ring_timeout_s],
    )?;
    tx.commit()?;
    Ok(added)
}

/// A user must exist and belong to `tenant` ([`StoreError::NotFound`] otherwise).
fn check_user_of(conn: &Connection, tenant: TenantId, user: UserId) -> Result<()> {
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

/// Removes a member ([`StoreError::NotFound`] with `Entity::Member` if not a member).
pub(crate) fn remove_member(conn: &Connection, queue: QueueId, user: UserId) -> Result<()> {
    queue_tenant(conn, queue)?;
    let n = conn.execute(
        "DELETE FROM queue_members WHERE queue_id = ?1 AND user_id = ?2",
        params![queue.0, user.0],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Member));
    }
    Ok(())
}

/// A queue's members by position, then user id.
pub(crate) fn list_members(conn: &Connection, queue: QueueId) -> Result<Vec<QueueMember>> {
    queue_tenant(conn, queue)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM queue_members m JOIN users u ON u.id = m.user_id
         WHERE m.queue_id = ?1 ORDER BY m.position, m.user_id"
    ))?;
    let rows = stmt
        .query_map([queue.0], raw_member)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|raw| decode_member(raw).map(|(_, m)| m))
        .collect()
}

// ---- overflow ----

/// The columns [`raw_overflow`] reads (table alias `o`).
const OVERFLOW_COLUMNS: &str = "o.queue_id, o.condition, o.target_kind, o.target_queue_id, \
                                o.target_user_id, o.target_number, o.target_prompt";

type RawOverflow = (
    i64,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn raw_overflow(r: &Row<'_>) -> rusqlite::Result<RawOverflow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn decode_overflow(
    (queue, condition, kind, tq, tu, number, prompt): RawOverflow,
) -> Result<(QueueId, OverflowRule)> {
    let bad = StoreError::BadRow {
        column: "queue_overflow.target_kind",
    };
    let target = match (kind.as_str(), tq, tu, number) {
        ("queue", Some(q), _, _) => OverflowTarget::Queue(QueueId(q)),
        ("user", _, Some(u), _) => OverflowTarget::User(UserId(u)),
        ("number", _, _, Some(n)) => OverflowTarget::Number(n),
        ("announcement", _, _, _) => OverflowTarget::Announcement(prompt),
        _ => return Err(bad),
    };
    Ok((
        QueueId(queue),
        OverflowRule {
            condition: decode(&condition, "queue_overflow.condition")?,
            target,
        },
    ))
}

/// Sets (replaces) a queue's overflow rule for one condition. The target must be
/// another queue or a user of the same tenant, an E.164 number or a valid prompt name.
pub(crate) fn set_overflow_rule(
    conn: &mut Connection,
    queue: QueueId,
    rule: &OverflowRule,
) -> Result<()> {
    match &rule.target {
        OverflowTarget::Queue(q) if *q == queue => {
            return Err(StoreError::Invalid {
                field: Field::OverflowTarget,
                reason: "a queue cannot overflow to itself",
            })
        }
        OverflowTarget::Number(n) => validate::e164(Field::OverflowTarget, n)?,
        OverflowTarget::Announcement(Some(p)) => validate::prompt_name(Field::OverflowTarget, p)?,
        _ => {}
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tenant = queue_tenant(&tx, queue)?;
    let (kind, tq, tu, number, prompt) = match &rule.target {
        OverflowTarget::Queue(q) => {
            if queue_tenant(&tx, *q)? != tenant {
                return Err(StoreError::NotFound(Entity::Queue));
            }
            ("queue", Some(q.0), None, None, None)
        }
        OverflowTarget::User(u) => {
            check_user_of(&tx, tenant, *u)?;
            ("user", None, Some(u.0), None, None)
        }
        OverflowTarget::Number(n) => ("number", None, None, Some(n.as_str()), None),
        OverflowTarget::Announcement(p) => ("announcement", None, None, None, p.as_deref()),
    };
    tx.execute(
        "INSERT OR REPLACE INTO queue_overflow (queue_id, condition, target_kind,
                                               target_queue_id, target_user_id,
                                               target_number, target_prompt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            queue.0,
            rule.condition.as_str(),
            kind,
            tq,
            tu,
            number,
            prompt
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Removes a queue's overflow rule for one condition; tells whether there was one.
pub(crate) fn clear_overflow_rule(
    conn: &Connection,
    queue: QueueId,
    condition: OverflowCondition,
) -> Result<bool> {
    queue_tenant(conn, queue)?;
    let n = conn.execute(
        "DELETE FROM queue_overflow WHERE queue_id = ?1 AND condition = ?2",
        params![queue.0, condition.as_str()],
    )?;
    Ok(n > 0)
}

// ---- opening hours ----

fn weekly_of(conn: &Connection, queue: Option<QueueId>) -> Result<Vec<(QueueId, WeeklyHours)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT queue_id, weekday, open_min, close_min FROM queue_hours
         WHERE ?1 IS NULL OR queue_id = ?1 ORDER BY queue_id, weekday, open_min",
    )?;
    let rows = stmt
        .query_map([queue.map(|q| q.0)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(q, day, open, close)| {
            Ok((
                QueueId(q),
                WeeklyHours {
                    weekday: u8::try_from(day).map_err(|_| StoreError::BadRow {
                        column: "queue_hours.weekday",
                    })?,
                    open_min: to_u16(open, "queue_hours.open_min")?,
                    close_min: to_u16(close, "queue_hours.close_min")?,
                },
            ))
        })
        .collect()
}

fn holidays_of(conn: &Connection, queue: Option<QueueId>) -> Result<Vec<(QueueId, QueueHoliday)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT queue_id, date, open_min, close_min FROM queue_holidays
         WHERE ?1 IS NULL OR queue_id = ?1 ORDER BY queue_id, date",
    )?;
    let rows = stmt
        .query_map([queue.map(|q| q.0)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(q, date, open, close)| {
            let open = match (open, close) {
                (Some(o), Some(c)) => Some((
                    to_u16(o, "queue_holidays.open_min")?,
                    to_u16(c, "queue_holidays.close_min")?,
                )),
                _ => None,
            };
            Ok((
                QueueId(q),
                QueueHoliday {
                    date: date.parse::<LocalDate>().map_err(|_| StoreError::BadRow {
                        column: "queue_holidays.date",
                    })?,
                    open,
                },
            ))
        })
        .collect()
}

/// Replaces a queue's weekly hours. An empty list makes the queue always open, so its
/// holidays go too (a holiday without weekly hours would close every other day).
pub(crate) fn set_weekly_hours(
    conn: &mut Connection,
    queue: QueueId,
    hours: &[WeeklyHours],
) -> Result<()> {
    validate::weekly_hours(hours)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    queue_tenant(&tx, queue)?;
    tx.execute("DELETE FROM queue_hours WHERE queue_id = ?1", [queue.0])?;
    if hours.is_empty() {
        tx.execute("DELETE FROM queue_holidays WHERE queue_id = ?1", [queue.0])?;
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO queue_hours (queue_id, weekday, open_min, close_min)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for h in hours {
            stmt.execute(params![queue.0, h.weekday, h.open_min, h.close_min])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Adds (or replaces) a queue's holiday. Refused for a queue without weekly hours.
pub(crate) fn add_holiday(
    conn: &mut Connection,
    queue: QueueId,
    holiday: &QueueHoliday,
) -> Result<()> {
    if let Some((open, close)) = holiday.open {
        validate::day_range(Field::Hours, open, close)?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    queue_tenant(&tx, queue)?;
    let has_hours = tx
        .query_row(
            "SELECT 1 FROM queue_hours WHERE queue_id = ?1 LIMIT 1",
            [queue.0],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_hours {
        return Err(StoreError::Invalid {
            field: Field::Hours,
            reason: "the queue has no opening hours (it is always open); set its hours \
                     before adding holidays",
        });
    }
    tx.execute(
        "INSERT OR REPLACE INTO queue_holidays (queue_id, date, open_min, close_min)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            queue.0,
            holiday.date.to_string(),
            holiday.open.map(|o| o.0),
            holiday.open.map(|o| o.1),
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Removes a queue's holiday ([`StoreError::NotFound`] with `Entity::Holiday` if none).
pub(crate) fn remove_holiday(conn: &Connection, queue: QueueId, date: LocalDate) -> Result<()> {
    queue_tenant(conn, queue)?;
    let n = conn.execute(
        "DELETE FROM queue_holidays WHERE queue_id = ?1 AND date = ?2",
        params![queue.0, date.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Holiday));
    }
    Ok(())
}

// ---- numbers ----

/// Leads a tenant's main or queue number to one of its queues, or to none.
pub(crate) fn assign_queue_number(
    conn: &mut Connection,
    tenant: TenantId,
    number: &str,
    queue: Option<QueueId>,
) -> Result<()> {
    validate::e164(Field::Number, number)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row: Option<(String, Option<i64>)> = tx
        .query_row(
            "SELECT kind, conference_id FROM tenant_numbers WHERE number = ?1 AND tenant_id = ?2",
            params![number, tenant.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (kind, room) = row.ok_or(StoreError::NotFound(Entity::Number))?;
    if let Some(q) = queue {
        check_queue_number(decode(&kind, "tenant_numbers.kind")?, room)?;
        if queue_tenant(&tx, q)? != tenant {
            return Err(StoreError::NotFound(Entity::Queue));
        }
    }
    tx.execute(
        "UPDATE tenant_numbers SET queue_id = ?2 WHERE number = ?1",
        params![number, queue.map(|q| q.0)],
    )?;
    tx.commit()?;
    Ok(())
}

/// Adds a main or queue number to a tenant, leading to one of its queues.
pub(crate) fn add_queue_number(
    conn: &mut Connection,
    tenant: TenantId,
    number: &str,
    kind: NumberKind,
    queue: QueueId,
) -> Result<()> {
    validate::e164(Field::Number, number)?;
    check_queue_number(kind, None)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if queue_tenant(&tx, queue)? != tenant {
        return Err(StoreError::NotFound(Entity::Queue));
    }
    tx.execute(
        "INSERT INTO tenant_numbers (number, tenant_id, kind, queue_id) VALUES (?1, ?2, ?3, ?4)",
        params![number, tenant.0, kind.as_str(), queue.0],
    )
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    tx.commit()?;
    Ok(())
}

// ---- VIP numbers ----

/// Adds a VIP number to a tenant.
pub(crate) fn add_vip(
    conn: &Connection,
    tenant: TenantId,
    number: &str,
    note: Option<&str>,
) -> Result<()> {
    validate::e164(Field::VipNumber, number)?;
    let note = note.filter(|n| !n.is_empty());
    if let Some(n) = note {
        validate::note(n)?;
    }
    conn.execute(
        "INSERT INTO vip_numbers (tenant_id, number, note) VALUES (?1, ?2, ?3)",
        params![tenant.0, number, note],
    )
    .map_err(|e| constraint(e, Some(Entity::Tenant)))?;
    Ok(())
}

/// Removes a VIP number ([`StoreError::NotFound`] with `Entity::Vip` if absent).
pub(crate) fn remove_vip(conn: &Connection, tenant: TenantId, number: &str) -> Result<()> {
    validate::e164(Field::VipNumber, number)?;
    let n = conn.execute(
        "DELETE FROM vip_numbers WHERE tenant_id = ?1 AND number = ?2",
        params![tenant.0, number],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Vip));
    }
    Ok(())
}

/// A tenant's VIP numbers in order.
pub(crate) fn list_vips(conn: &Connection, tenant: TenantId) -> Result<Vec<VipNumber>> {
    if !tenant_exists(conn, tenant)? {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT number, note FROM vip_numbers WHERE tenant_id = ?1 ORDER BY number",
    )?;
    let rows = stmt.query_map([tenant.0], |r| {
        Ok(VipNumber {
            number: r.get(0)?,
            note: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

// ---- tenants, agents ----

/// Changes a tenant's time zone and/or queue history retention.
pub(crate) fn set_tenant_settings(
    conn: &Connection,
    tenant: TenantId,
    s: &TenantSettings,
) -> Result<()> {
    if let Some(tz) = &s.time_zone {
        validate::time_zone(tz)?;
    }
    if let Some(d) = s.queue_retention_days {
        validate::retention_days(d)?;
    }
    let n = conn.execute(
        "UPDATE tenants SET time_zone = coalesce(?2, time_zone),
                            queue_retention_days = coalesce(?3, queue_retention_days)
         WHERE id = ?1",
        params![tenant.0, s.time_zone, s.queue_retention_days],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Tenant));
    }
    Ok(())
}

type RawAgent = (i64, String, Option<String>, i64);

fn raw_agent(r: &Row<'_>) -> rusqlite::Result<RawAgent> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode_agent((user, presence, reason, at): RawAgent) -> Result<AgentState> {
    let presence = match presence.as_str() {
        "in" => AgentPresence::LoggedIn,
        "out" => AgentPresence::LoggedOut,
        "paused" => AgentPresence::Paused(reason),
        _ => {
            return Err(StoreError::BadRow {
                column: "agent_state.presence",
            })
        }
    };
    Ok(AgentState {
        user_id: UserId(user),
        presence,
        changed_at_ms: at,
    })
}

/// Sets an agent's presence at `at_ms`. Setting the presence it already has changes
/// nothing (so the daemon does not reload for nothing).
pub(crate) fn set_agent_presence(
    conn: &Connection,
    user: UserId,
    presence: &AgentPresence,
    at_ms: i64,
) -> Result<()> {
    let reason = match presence {
        AgentPresence::Paused(Some(r)) if !r.is_empty() => {
            validate::display_name(Field::PauseReason, r)?;
            Some(r.as_str())
        }
        _ => None,
    };
    conn.execute(
        "INSERT INTO agent_state (user_id, presence, pause_reason, changed_at_ms)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id) DO UPDATE SET
             presence = excluded.presence, pause_reason = excluded.pause_reason,
             changed_at_ms = excluded.changed_at_ms
         WHERE presence IS NOT excluded.presence
            OR pause_reason IS NOT excluded.pause_reason",
        params![user.0, presence.as_str(), reason, at_ms],
    )
    .map_err(|e| constraint(e, Some(Entity::User)))?;
    Ok(())
}

/// An agent's stored presence (logged out when none is stored).
pub(crate) fn agent_presence(conn: &Connection, user: UserId) -> Result<AgentPresence> {
    let raw = conn
        .query_row(
            "SELECT user_id, presence, pause_reason, changed_at_ms FROM agent_state
             WHERE user_id = ?1",
            [user.0],
            raw_agent,
        )
        .optional()?;
    Ok(match raw {
        Some(raw) => decode_agent(raw)?.presence,
        None => AgentPresence::LoggedOut,
    })
}

// ---- the daemon's view ----

/// The configuration revision: changes whenever the queue configuration changes.
pub(crate) fn queue_config_revision(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT revision FROM queue_config_revision WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

/// Everything the queue engine needs, read in one transaction (so it matches the
/// revision it reports).
pub(crate) fn load_queue_config(conn: &Connection) -> Result<QueueConfigSnapshot> {
    let tx = conn.unchecked_transaction()?;
    let revision = queue_config_revision(&tx)?;
    let mut queues: Vec<QueueConfig> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {QUEUE_COLUMNS}, t.time_zone FROM queues q
             JOIN tenants t ON t.id = q.tenant_id ORDER BY q.id"
        ))?;
        let rows = stmt
            .query_map([], |r| Ok((raw_queue(r)?, r.get::<_, String>(11)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(raw, time_zone)| {
                Ok(QueueConfig {
                    queue: raw.decode()?,
                    time_zone,
                    members: Vec::new(),
                    overflow: Vec::new(),
                    weekly: Vec::new(),
                    holidays: Vec::new(),
                    numbers: Vec::new(),
                })
            })
            .collect::<Result<_>>()?
    };
    let index: HashMap<QueueId, usize> = queues
        .iter()
        .enumerate()
        .map(|(i, q)| (q.queue.id, i))
        .collect();
    // Rows of queues not in `index` cannot exist inside the transaction (foreign keys);
    // they are skipped rather than trusted.
    let at = |q: QueueId| index.get(&q).copied();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {MEMBER_COLUMNS} FROM queue_members m JOIN users u ON u.id = m.user_id
             ORDER BY m.queue_id, m.position, m.user_id"
        ))?;
        let rows = stmt
            .query_map([], raw_member)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for raw in rows {
            let (q, m) = decode_member(raw)?;
            if let Some(qc) = at(q).and_then(|i| queues.get_mut(i)) {
                qc.members.push(m);
            }
        }
    }
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {OVERFLOW_COLUMNS} FROM queue_overflow o ORDER BY o.queue_id"
        ))?;
        let rows = stmt
            .query_map([], raw_overflow)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for raw in rows {
            let (q, rule) = decode_overflow(raw)?;
            if let Some(qc) = at(q).and_then(|i| queues.get_mut(i)) {
                qc.overflow.push(rule);
            }
        }
    }
    for (q, h) in weekly_of(&tx, None)? {
        if let Some(qc) = at(q).and_then(|i| queues.get_mut(i)) {
            qc.weekly.push(h);
        }
    }
    for (q, h) in holidays_of(&tx, None)? {
        if let Some(qc) = at(q).and_then(|i| queues.get_mut(i)) {
            qc.holidays.push(h);
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "SELECT queue_id, number FROM tenant_numbers WHERE queue_id IS NOT NULL
             ORDER BY number",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (q, n) in rows {
            if let Some(qc) = at(QueueId(q)).and_then(|i| queues.get_mut(i)) {
                qc.numbers.push(n);
            }
        }
    }
    for q in &mut queues {
        q.overflow.sort_by_key(|r| condition_order(r.condition));
    }
    let mut vip_numbers: HashMap<TenantId, std::collections::HashSet<String>> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached("SELECT tenant_id, number FROM vip_numbers")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (t, n) = row?;
            vip_numbers.entry(TenantId(t)).or_default().insert(n);
        }
    }
    let agents = {
        let mut stmt = tx.prepare_cached(
            "SELECT user_id, presence, pause_reason, changed_at_ms FROM agent_state
             ORDER BY user_id",
        )?;
        let rows = stmt
            .query_map([], raw_agent)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(decode_agent)
            .collect::<Result<Vec<_>>>()?
    };
    tx.finish()?;
    Ok(QueueConfigSnapshot {
        revision,
        queues,
        vip_numbers,
        agents,
    })
}

#[cfg(test)]
mod tests;
