//! Turns the engine's finished calls into call-log records for the store.

use crate::call::model::{BranchState, Direction, Outcome};
use crate::call::plan::TargetKind;
use crate::engine::b2bua::FinishedCall;
use crate::media::control::LegStats;
use crate::store::model::{MediaLegKind, MediaStatsRecord};
use crate::store::{self, CallOutcome, CallRecord, CallUserRole, LegKind, LegRecord, UserId};

fn outcome(o: Option<Outcome>) -> CallOutcome {
    match o {
        Some(Outcome::Answered) => CallOutcome::Answered,
        Some(Outcome::Missed) | None => CallOutcome::Missed,
        Some(Outcome::Busy) => CallOutcome::Busy,
        Some(Outcome::Failed) => CallOutcome::Failed,
        Some(Outcome::Cancelled) => CallOutcome::Cancelled,
    }
}

fn branch_outcome(state: BranchState) -> (CallOutcome, Option<u16>) {
    match state {
        BranchState::Answered => (CallOutcome::Answered, Some(200)),
        BranchState::Failed(486) | BranchState::Failed(600) => (CallOutcome::Busy, Some(486)),
        BranchState::Failed(487) | BranchState::Cancelling => (CallOutcome::Cancelled, Some(487)),
        BranchState::Failed(408) | BranchState::Failed(480) => (CallOutcome::Missed, None),
        BranchState::Failed(code) => (CallOutcome::Failed, Some(code)),
        BranchState::Calling | BranchState::Ringing | BranchState::EarlyMedia => {
            (CallOutcome::Cancelled, None)
        }
    }
}

fn media_stats(leg: MediaLegKind, s: &LegStats) -> MediaStatsRecord {
    MediaStatsRecord {
        leg,
        codec: s.codec.map(|c| c.encoding_name().to_owned()),
        packets_received: s.packets_received,
        packets_sent: s.packets_sent,
        packets_lost: s.packets_lost,
        jitter_ms: s.jitter_ms,
        bytes_received: s.bytes_received,
    }
}

/// The call-log record of a finished call.
pub fn record(f: &FinishedCall) -> CallRecord {
    let c = &f.call;
    let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let ended = c.ended_ms.unwrap_or(c.started_ms);
    let winner = c.winner.and_then(|w| c.branch(w));
    let answered_by = winner.and_then(|b| b.target.user_id).map(UserId);
    let mut users = Vec::new();
    if let Some(u) = f.caller_user {
        users.push((UserId(u), CallUserRole::Caller));
    }
    if let Some(u) = f.callee_user {
        users.push((UserId(u), CallUserRole::Callee));
    }
    if let Some(u) = answered_by {
        users.push((u, CallUserRole::Answered));
    }
    let mut legs = vec![LegRecord {
        user: f.caller_user.map(UserId),
        kind: LegKind::Inbound,
        target: f.caller.clone(),
        sip_call_id: f.sip_call_ids.first().cloned().unwrap_or_default(),
        started_at_ms: ms(c.started_ms),
        answered_at_ms: c.answered_ms.map(ms),
        ended_at_ms: ms(ended),
        outcome: outcome(c.outcome),
        status_code: None,
    }];
    for (i, b) in c.branches.iter().enumerate() {
        let (outcome, status_code) = branch_outcome(b.state);
        legs.push(LegRecord {
            user: b.target.user_id.map(UserId),
            kind: match b.target.kind {
                TargetKind::Phone => LegKind::Phone,
                TargetKind::Mobile => LegKind::Mobile,
                TargetKind::Trunk => LegKind::Trunk,
            },
            target: b.target.uri.clone(),
            sip_call_id: f.sip_call_ids.get(i + 1).cloned().unwrap_or_default(),
            started_at_ms: ms(b.started_ms),
            answered_at_ms: b.answered_ms.map(ms),
            ended_at_ms: ms(b.ended_ms.unwrap_or(ended)),
            outcome,
            status_code,
        });
    }
    CallRecord {
        tenant: f.tenant.map(store::TenantId),
        direction: match c.direction {
            Direction::Inbound => store::Direction::Inbound,
            Direction::Outbound => store::Direction::Outbound,
            Direction::Internal => store::Direction::Internal,
        },
        caller_number: f.caller.clone(),
        caller_name: f.caller_name.clone(),
        callee_number: f.callee.clone(),
        callee_name: None,
        started_at_ms: ms(c.started_ms),
        answered_at_ms: c.answered_ms.map(ms),
        ended_at_ms: ms(ended),
        outcome: outcome(c.outcome),
        answered_by,
        forward_reason: f.forwarded.map(|r| match r {
            crate::sip::ext::diversion::ForwardReason::Unconditional => {
                store::ForwardReason::Unconditional
            }
            crate::sip::ext::diversion::ForwardReason::Busy => store::ForwardReason::Busy,
            crate::sip::ext::diversion::ForwardReason::NoAnswer
            | crate::sip::ext::diversion::ForwardReason::Deflection => {
                store::ForwardReason::NoAnswer
            }
            crate::sip::ext::diversion::ForwardReason::Unavailable => {
                store::ForwardReason::Unreachable
            }
        }),
        end_reason: c.end_reason.clone(),
        sip_call_ids: f.sip_call_ids.clone(),
        users,
        legs,
        media: f
            .media
            .as_ref()
            .map(|(caller, callee)| {
                vec![
                    media_stats(MediaLegKind::Caller, caller),
                    media_stats(MediaLegKind::Callee, callee),
                ]
            })
            .unwrap_or_default(),
        queue_visits: super::queues::visit_records(&f.queue_visits, ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::model::{Call, CallId};
    use crate::media::codec::Codec;

    fn finished(media: Option<(LegStats, LegStats)>) -> FinishedCall {
        let mut call = Call::new(CallId(7), Direction::Inbound, 1_000);
        call.ended_ms = Some(61_000);
        FinishedCall {
            call,
            tenant: Some(1),
            caller: "+4790000001".into(),
            caller_name: None,
            callee: "+4721000010".into(),
            caller_user: None,
            callee_user: Some(3),
            sip_call_ids: vec!["in@carrier".into()],
            forwarded: None,
            media,
            queue_visits: Vec::new(),
        }
    }

    #[test]
    fn media_of_both_legs_goes_into_the_record() {
        let caller = LegStats {
            packets_received: 3_000,
            packets_sent: 2_998,
            packets_lost: 12,
            jitter_ms: 11.5,
            bytes_received: 480_000,
            codec: Some(Codec::Pcmu),
        };
        let callee = LegStats {
            packets_received: 2_998,
            packets_sent: 3_000,
            packets_lost: 0,
            jitter_ms: 0.25,
            bytes_received: 479_680,
            codec: Some(Codec::Opus),
        };
        let r = record(&finished(Some((caller, callee))));
        assert_eq!(
            r.media,
            [
                MediaStatsRecord {
                    leg: MediaLegKind::Caller,
                    codec: Some("PCMU".into()),
                    packets_received: 3_000,
                    packets_sent: 2_998,
                    packets_lost: 12,
                    jitter_ms: 11.5,
                    bytes_received: 480_000,
                },
                MediaStatsRecord {
                    leg: MediaLegKind::Callee,
                    codec: Some("opus".into()),
                    packets_received: 2_998,
                    packets_sent: 3_000,
                    packets_lost: 0,
                    jitter_ms: 0.25,
                    bytes_received: 479_680,
                },
            ]
        );
        // A leg that never got a codec is stored without one.
        let r = record(&finished(Some((LegStats::default(), callee))));
        assert_eq!(r.media[0].codec, None);
        assert_eq!(r.media[0].leg, MediaLegKind::Caller);
    }

    #[test]
    fn call_without_anchored_media_has_no_media_records() {
        let r = record(&finished(None));
        assert!(r.media.is_empty());
        assert_eq!((r.started_at_ms, r.ended_at_ms), (1_000, 61_000));
    }
}
