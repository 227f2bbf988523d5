//! Conferences in the runtime: rooms loaded from the store (at start and whenever its
//! conference revision moves), PIN checks on the store's reader threads, the live state
//! written back each second for `sentralbord conference participants`, the CLI's controls
//! fed to the engine, and finished conferences written to the conference log.

use crate::engine::conference::{
    ConferenceReport, ControlResult, LeftBecause, LiveRoom, PinRole, ReportOrigin, RoomConfig,
    RoomControl,
};
use crate::store::{self, StoreHandle};

/// The engine's rooms and the store revision they show.
pub async fn load(db: &StoreHandle) -> Result<(i64, Vec<RoomConfig>), store::StoreError> {
    let snapshot = db.load_rooms().await?;
    let rooms = snapshot
        .rooms
        .into_iter()
        .map(|r| RoomConfig {
            id: r.id.0,
            tenant_id: r.tenant_id.0,
            name: r.name,
            extension: r.extension,
            has_pin: r.has_pin,
            has_moderator_pin: r.has_moderator_pin,
            max_participants: r.max_participants,
            owner: r.owner.map(|o| o.id.0),
            end_when_moderator_leaves: r.end_when_moderator_leaves,
            locked: r.locked,
        })
        .collect();
    Ok((snapshot.revision, rooms))
}

/// The store's PIN role as the engine's.
pub fn role(r: store::PinRole) -> PinRole {
    match r {
        store::PinRole::Participant => PinRole::Participant,
        store::PinRole::Moderator => PinRole::Moderator,
    }
}

/// A CLI command as the engine's control.
pub fn control(c: store::ConferenceControl) -> RoomControl {
    match c {
        store::ConferenceControl::Mute(p) => RoomControl::Mute(p.0),
        store::ConferenceControl::Unmute(p) => RoomControl::Unmute(p.0),
        store::ConferenceControl::Kick(p) => RoomControl::Kick(p.0),
        store::ConferenceControl::Lock => RoomControl::Lock,
        store::ConferenceControl::Unlock => RoomControl::Unlock,
    }
}

/// The engine's result as the store's.
pub fn result(r: ControlResult) -> store::CommandResult {
    match r {
        ControlResult::Done => store::CommandResult::Done,
        ControlResult::NotRunning => store::CommandResult::NotRunning,
        ControlResult::NoSuchParticipant => store::CommandResult::NoSuchParticipant,
    }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The live rows for the store.
pub fn live(rooms: Vec<LiveRoom>) -> Vec<store::ConferenceLive> {
    rooms
        .into_iter()
        .map(|r| store::ConferenceLive {
            room: store::ConferenceRoomId(r.room),
            locked: r.locked,
            started_at_ms: ms(r.started_ms),
            participants: r
                .participants
                .into_iter()
                .map(|p| store::LiveParticipant {
                    id: store::LiveParticipantId(p.id),
                    user: p.user.map(store::UserId),
                    number: p.number,
                    name: p.name,
                    joined_at_ms: ms(p.joined_ms),
                    muted: p.muted,
                    talking: p.talking,
                    moderator: p.moderator,
                })
                .collect(),
        })
        .collect()
}

/// A finished conference as the conference log stores it.
pub fn record(c: &ConferenceReport) -> store::ConferenceRecord {
    store::ConferenceRecord {
        tenant: store::TenantId(c.tenant_id),
        origin: match &c.origin {
            ReportOrigin::Room { room, name } => store::ConferenceOrigin::Room {
                room: store::ConferenceRoomId(*room),
                name: name.clone(),
            },
            ReportOrigin::AdHoc => store::ConferenceOrigin::AdHoc,
        },
        started_at_ms: ms(c.started_ms),
        ended_at_ms: ms(c.ended_ms),
        participants: c
            .participants
            .iter()
            .map(|p| store::ParticipantRecord {
                sip_call_id: (!p.sip_call_id.is_empty()).then(|| p.sip_call_id.clone()),
                user: p.user.map(store::UserId),
                number: p.number.clone(),
                name: p.name.clone(),
                moderator: p.moderator,
                joined_at_ms: ms(p.joined_ms),
                left_at_ms: ms(p.left_ms),
                end: match p.end {
                    LeftBecause::Left => store::ParticipantEnd::Left,
                    LeftBecause::Kicked => store::ParticipantEnd::Kicked,
                    LeftBecause::RoomEnded => store::ParticipantEnd::RoomEnded,
                },
            })
            .collect(),
    }
}
