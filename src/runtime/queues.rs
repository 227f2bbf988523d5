//! Queues in the runtime: the store's queue configuration mapped to the engine's (at
//! start and whenever the store's configuration revision moves), the engine's live
//! snapshots written back for `sentralbord queue status`, and finished calls' queue
//! visits mapped to the queue call log.

use crate::engine::queue::{
    OfferResult as EngineOffer, QueueConfig, QueueUser, QueueVisit, VisitOutcome as EngineOutcome,
};
use crate::queue::model::{
    AgentId, DateException, Member, OverflowReason, OverflowRules, OverflowTarget, Presence,
    QueueId, QueueKind, QueueSnapshot, QueueSpec, Schedule, Strategy, WeeklyRange,
};
use crate::store::{self, StoreHandle};
use std::collections::HashMap;
use std::time::Duration;

/// The engine's queue configuration and, per queue, its tenant (for the live rows).
pub struct LoadedQueues {
    /// What the engine gets.
    pub config: QueueConfig,
    /// The store's revision it shows.
    pub revision: i64,
    /// Each queue's tenant.
    pub tenants: HashMap<QueueId, i64>,
}

/// Reads the whole queue configuration and the users it names.
pub async fn load(db: &StoreHandle) -> Result<LoadedQueues, store::StoreError> {
    let snapshot = db.load_queue_config().await?;
    let users = db.list_users(None).await?;
    Ok(map_config(snapshot, users))
}

fn strategy(s: store::QueueStrategy) -> Strategy {
    match s {
        store::QueueStrategy::RingAll => Strategy::RingAll,
        store::QueueStrategy::Linear => Strategy::Linear,
        store::QueueStrategy::RoundRobin => Strategy::RoundRobin,
        store::QueueStrategy::LongestIdle => Strategy::LongestIdle,
        store::QueueStrategy::FewestCalls => Strategy::FewestCalls,
        store::QueueStrategy::Random => Strategy::Random,
    }
}

fn target(t: &store::OverflowTarget) -> OverflowTarget {
    match t {
        store::OverflowTarget::Queue(q) => OverflowTarget::Queue(QueueId(q.0)),
        store::OverflowTarget::User(u) => OverflowTarget::User(u.0),
        store::OverflowTarget::Number(n) => OverflowTarget::Number(n.clone()),
        store::OverflowTarget::Announcement(p) => OverflowTarget::Announcement(p.clone()),
    }
}

fn presence(p: &store::AgentPresence) -> Presence {
    match p {
        store::AgentPresence::LoggedIn => Presence::LoggedIn,
        store::AgentPresence::LoggedOut => Presence::LoggedOut,
        store::AgentPresence::Paused(reason) => {
            Presence::Paused(reason.clone().unwrap_or_else(|| "pause".into()))
        }
    }
}

/// The store's presence for one the engine reports (a feature code).
pub fn store_presence(p: &Presence) -> store::AgentPresence {
    match p {
        Presence::LoggedIn => store::AgentPresence::LoggedIn,
        Presence::LoggedOut => store::AgentPresence::LoggedOut,
        Presence::Paused(reason) => store::AgentPresence::Paused(Some(reason.clone())),
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// Maps the store's snapshot (and every user) to the engine's configuration.
pub fn map_config(snapshot: store::QueueConfigSnapshot, users: Vec<store::User>) -> LoadedQueues {
    let users: HashMap<i64, store::User> = users.into_iter().map(|u| (u.id.0, u)).collect();
    let mut config = QueueConfig::default();
    let mut tenants = HashMap::new();
    for q in &snapshot.queues {
        let id = QueueId(q.queue.id.0);
        tenants.insert(id, q.queue.tenant_id.0);
        let s = &q.queue.settings;
        let mut overflow = OverflowRules::default();
        for rule in &q.overflow {
            let t = Some(target(&rule.target));
            match rule.condition {
                store::OverflowCondition::MaxWait => overflow.max_wait = t,
                store::OverflowCondition::Full => overflow.full = t,
                store::OverflowCondition::NoAgents => overflow.no_agents = t,
                store::OverflowCondition::Closed => overflow.closed = t,
            }
        }
        let schedule = (!q.weekly.is_empty() || !q.holidays.is_empty()).then(|| Schedule {
            time_zone: q.time_zone.clone(),
            weekly: q
                .weekly
                .iter()
                .map(|w| WeeklyRange {
                    weekday: w.weekday,
                    open_min: w.open_min,
                    close_min: w.close_min,
                })
                .collect(),
            exceptions: q
                .holidays
                .iter()
                .map(|h| DateException {
                    date: (h.date.year, h.date.month, h.date.day),
                    open: h.open,
                })
                .collect(),
        });
        config.queues.push(QueueSpec {
            id,
            tenant_id: q.queue.tenant_id.0,
            name: q.queue.name.clone(),
            kind: match s.kind {
                store::QueueKind::Queue => QueueKind::Queue,
                store::QueueKind::Group => QueueKind::Group,
            },
            strategy: strategy(s.strategy),
            members: q
                .members
                .iter()
                .map(|m| Member {
                    agent: AgentId(m.user_id.0),
                    order: m.position,
                    ring_timeout: m.ring_timeout_s.map(secs),
                })
                .collect(),
            ring_timeout: secs(s.ring_timeout_s),
            wrap_up: secs(s.wrap_up_s),
            max_wait: s.max_wait_s.map(secs),
            max_callers: s.max_callers,
            announce_every: s.announce_every_s.map(secs),
            overflow,
            schedule,
        });
        if let Some(g) = &s.greeting {
            config.greetings.insert(id, g.clone());
        }
        // The users queue calls may ring: members and overflow targets.
        let named = q
            .members
            .iter()
            .map(|m| m.user_id.0)
            .chain(q.overflow.iter().filter_map(|r| match r.target {
                store::OverflowTarget::User(u) => Some(u.0),
                _ => None,
            }));
        for user in named {
            if let Some(u) = users.get(&user) {
                config.users.insert(
                    user,
                    QueueUser {
                        tenant_id: u.tenant_id.0,
                        aor: format!("sip:{}@{}", u.sip_username, u.realm),
                        mobile: u.mobile.clone(),
                    },
                );
            }
        }
    }
    for (tenant, numbers) in snapshot.vip_numbers {
        for n in numbers {
            config.vip.insert((tenant.0, n));
        }
    }
    config.presence = snapshot
        .agents
        .iter()
        .map(|a| (AgentId(a.user_id.0), presence(&a.presence)))
        .collect();
    LoadedQueues {
        config,
        revision: snapshot.revision,
        tenants,
    }
}

/// The live rows the store keeps for `sentralbord queue status`.
pub fn live_rows(
    snapshots: Vec<QueueSnapshot>,
    tenants: &HashMap<QueueId, i64>,
    now_ms: i64,
) -> Vec<store::QueueLive> {
    snapshots
        .into_iter()
        .filter_map(|s| {
            let tenant = *tenants.get(&s.queue)?;
            Some(store::QueueLive {
                queue_id: store::QueueId(s.queue.0),
                tenant_id: store::TenantId(tenant),
                name: s.name,
                agents_logged_in: s.agents_logged_in,
                agents_available: s.agents_available,
                agents_busy: s.agents_busy,
                agents_paused: s.agents_paused,
                callers_waiting: s.callers_waiting,
                longest_wait_ms: s
                    .longest_wait
                    .map(|w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX)),
                answered_today: s.answered_today,
                unanswered_today: s.unanswered_today,
                updated_at_ms: now_ms,
            })
        })
        .collect()
}

fn condition(r: OverflowReason) -> store::OverflowCondition {
    match r {
        OverflowReason::MaxWait => store::OverflowCondition::MaxWait,
        OverflowReason::Full => store::OverflowCondition::Full,
        OverflowReason::NoAgents => store::OverflowCondition::NoAgents,
        OverflowReason::Closed => store::OverflowCondition::Closed,
    }
}

/// A finished call's queue visits as the queue call log stores them. `ended_ms` is the
/// call's end (talk time runs from the answer to it).
pub fn visit_records(visits: &[QueueVisit], ended_ms: u64) -> Vec<store::QueueVisitRecord> {
    let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    visits
        .iter()
        .map(|v| {
            let outcome = match v.outcome {
                Some(EngineOutcome::Answered) => store::VisitOutcome::Answered,
                Some(EngineOutcome::Overflowed) => store::VisitOutcome::Overflowed,
                Some(EngineOutcome::GivenUp) => store::VisitOutcome::GivenUp,
                Some(EngineOutcome::EndedBySwitch) => store::VisitOutcome::EndedBySwitch,
                Some(EngineOutcome::Abandoned) | None => store::VisitOutcome::Abandoned,
            };
            let left = v.left_ms.unwrap_or(ended_ms).max(v.entered_ms);
            let talk = v
                .answered_ms
                .map(|a| ended_ms.saturating_sub(a))
                .unwrap_or(0);
            store::QueueVisitRecord {
                queue: store::QueueId(v.queue.0),
                queue_name: v.name.clone(),
                vip: v.vip,
                entered_at_ms: ms(v.entered_ms),
                answered_at_ms: v.answered_ms.map(ms),
                answered_by: v.answered_by.map(store::UserId),
                left_at_ms: ms(left),
                talk_ms: ms(talk),
                outcome,
                overflow_reason: v.overflow.as_ref().map(|(r, _)| condition(*r)),
                overflow_target: v.overflow.as_ref().map(|(_, t)| t.clone()),
                transferred_to: None,
                offers: v
                    .offers
                    .iter()
                    .map(|o| store::OfferRecord {
                        user: store::UserId(o.agent),
                        offered_at_ms: ms(o.offered_ms),
                        result: match o.result {
                            EngineOffer::Answered => store::OfferResult::Answered,
                            EngineOffer::NoAnswer => store::OfferResult::NoAnswer,
                            EngineOffer::Refused => store::OfferResult::Refused,
                            EngineOffer::Ringing | EngineOffer::Withdrawn => {
                                store::OfferResult::Withdrawn
                            }
                        },
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Unix ms of the last local midnight in `time_zone` (UTC when the zone is unknown).
pub fn local_midnight_ms(time_zone: &str, now: std::time::SystemTime) -> i64 {
    let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::try_from(now)
        .ok()
        .and_then(|ts| ts.to_zoned(tz).start_of_day().ok())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(0)
}

/// Today's answered and unanswered counts per queue from the queue call log, each
/// counted from local midnight in its queue's time zone (for a restarted daemon).
pub async fn today_counts(
    db: &StoreHandle,
    config: &QueueConfig,
    now: std::time::SystemTime,
) -> Vec<(QueueId, u32, u32)> {
    let mut zones: HashMap<String, Vec<QueueId>> = HashMap::new();
    for q in &config.queues {
        let zone = q.schedule.as_ref().map_or("UTC", |s| s.time_zone.as_str());
        zones.entry(zone.to_owned()).or_default().push(q.id);
    }
    let mut out = Vec::new();
    for (zone, queues) in zones {
        let since = local_midnight_ms(&zone, now);
        match db.queue_today_counts(since).await {
            Ok(rows) => out.extend(
                rows.into_iter()
                    .filter(|(q, _, _)| queues.contains(&QueueId(q.0)))
                    .map(|(q, a, u)| (QueueId(q.0), a, u)),
            ),
            Err(e) => tracing::warn!(error = %e, "today's queue counts unavailable"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_midnight_follows_the_zone() {
        // 2026-07-01 00:30 in Oslo (CEST, UTC+2) is 2026-06-30 22:30 UTC.
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_782_858_600);
        let oslo = local_midnight_ms("Europe/Oslo", at);
        let utc = local_midnight_ms("UTC", at);
        assert_eq!(oslo, 1_782_856_800_000, "Oslo's midnight is 22:00 UTC");
        assert_eq!(utc, 1_782_777_600_000, "UTC's midnight the day before");
        assert_eq!(local_midnight_ms("Not/AZone", at), utc);
    }
}
