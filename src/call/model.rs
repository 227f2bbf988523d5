//! The state of one call: its inbound leg's progress and the outbound branches it rings.
//!
//! Pure state transitions; times are Unix milliseconds handed in by the engine.

use super::plan::Target;

/// A call's identity inside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// One outbound branch of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BranchId(pub u32);

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Deciding whom to ring.
    Routing,
    /// At least one branch rings (180 relayed).
    Ringing,
    /// A branch sent early media (183 with SDP relayed).
    EarlyMedia,
    /// A branch answered; the legs are bridged.
    Answered,
    /// Over.
    Ended,
}

/// Which way a call goes, for the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the carrier trunk to a user.
    Inbound,
    /// From a user to the carrier.
    Outbound,
    /// Between users.
    Internal,
}

/// How a call ended, for the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Missed,
    Busy,
    Failed,
    Cancelled,
}

/// Where one branch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchState {
    /// INVITE sent, nothing back but 100.
    Calling,
    /// 180 (or 183 without SDP) received.
    Ringing,
    /// 183 with SDP received.
    EarlyMedia,
    /// 2xx received: this branch won.
    Answered,
    /// A final non-2xx response (or timeout) ended it.
    Failed(u16),
    /// We sent CANCEL and wait for its 487.
    Cancelling,
}

impl BranchState {
    /// Still able to answer.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            BranchState::Calling | BranchState::Ringing | BranchState::EarlyMedia
        )
    }
}

/// One outbound branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// Its id within the call.
    pub id: BranchId,
    /// What it rings.
    pub target: Target,
    /// Where it is.
    pub state: BranchState,
    /// When it was started.
    pub started_ms: u64,
    /// When it answered.
    pub answered_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: Option<u64>,
}

/// What to do with a provisional response from a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionalAction {
    /// Relay it upstream.
    Relay,
    /// Keep it to ourselves (the call is already answered or over).
    Drop,
}

/// What to do with a 2xx from a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerAction {
    /// This branch wins: relay the 2xx upstream and cancel the others.
    Bridge { cancel: Vec<BranchId> },
    /// Another branch already won: acknowledge this 2xx and hang it up at once.
    HangUp,
}

/// A call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Id.
    pub id: CallId,
    /// Direction.
    pub direction: Direction,
    /// State.
    pub state: CallState,
    /// Outbound branches, in the order they were started.
    pub branches: Vec<Branch>,
    /// The branch that answered.
    pub winner: Option<BranchId>,
    /// When the call arrived.
    pub started_ms: u64,
    /// When it was answered.
    pub answered_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: Option<u64>,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// Why it ended (`caller hung up`, `callee hung up`, a SIP status...).
    pub end_reason: Option<String>,
}

impl Call {
    /// A call that has just arrived.
    pub fn new(id: CallId, direction: Direction, now_ms: u64) -> Call {
        Call {
            id,
            direction,
            state: CallState::Routing,
            branches: Vec::new(),
            winner: None,
            started_ms: now_ms,
            answered_ms: None,
            ended_ms: None,
            outcome: None,
            end_reason: None,
        }
    }

    /// Starts ringing a target.
    pub fn add_branch(&mut self, target: Target, now_ms: u64) -> BranchId {
        let id = BranchId(self.branches.len() as u32);
        self.branches.push(Branch {
            id,
            target,
            state: BranchState::Calling,
            started_ms: now_ms,
            answered_ms: None,
            ended_ms: None,
        });
        id
    }

    /// The branch with this id.
    pub fn branch(&self, id: BranchId) -> Option<&Branch> {
        self.branches.get(id.0 as usize)
    }

    fn branch_mut(&mut self, id: BranchId) -> Option<&mut Branch> {
        self.branches.get_mut(id.0 as usize)
    }

    /// A 1xx (other than 100) arrived on a branch.
    pub fn on_provisional(&mut self, id: BranchId, with_sdp: bool) -> ProvisionalAction {
        if matches!(self.state, CallState::Answered | CallState::Ended) {
            return ProvisionalAction::Drop;
        }
        let Some(b) = self.branch_mut(id) else {
            return ProvisionalAction::Drop;
        };
        if !b.state.is_live() {
            return ProvisionalAction::Drop;
        }
        b.state = if with_sdp {
            BranchState::EarlyMedia
        } else {
            BranchState::Ringing
        };
        self.state = if with_sdp || self.state == CallState::EarlyMedia {
            CallState::EarlyMedia
        } else {
            CallState::Ringing
        };
        ProvisionalAction::Relay
    }

    /// A 2xx arrived on a branch.
    pub fn on_answer(&mut self, id: BranchId, now_ms: u64) -> AnswerAction {
        if self.winner.is_some() || self.state == CallState::Ended {
            return AnswerAction::HangUp;
        }
        let Some(b) = self.branch_mut(id) else {
            return AnswerAction::HangUp;
        };
        b.state = BranchState::Answered;
        b.answered_ms = Some(now_ms);
        self.winner = Some(id);
        self.state = CallState::Answered;
        self.answered_ms = Some(now_ms);
        let cancel = self.live_branches();
        for c in &cancel {
            if let Some(b) = self.branch_mut(*c) {
                b.state = BranchState::Cancelling;
            }
        }
        AnswerAction::Bridge { cancel }
    }

    /// A branch ended without answering (final non-2xx, timeout, transport error as
    /// 408/503). Returns the final response for the caller once no branch is left.
    pub fn on_branch_failed(&mut self, id: BranchId, code: u16, now_ms: u64) -> Option<u16> {
        if let Some(b) = self.branch_mut(id) {
            if b.state.is_live() || b.state == BranchState::Cancelling {
                b.state = BranchState::Failed(code);
                b.ended_ms = Some(now_ms);
            }
        }
        if self.winner.is_some()
            || self.state == CallState::Ended
            || self.branches.iter().any(|b| b.state.is_live())
        {
            return None;
        }
        Some(best_final(self.branches.iter().filter_map(
            |b| match b.state {
                BranchState::Failed(c) => Some(c),
                _ => None,
            },
        )))
    }

    /// Branches still ringing (to cancel on answer elsewhere, caller's CANCEL or timeout).
    pub fn live_branches(&self) -> Vec<BranchId> {
        self.branches
            .iter()
            .filter(|b| b.state.is_live())
            .map(|b| b.id)
            .collect()
    }

    /// Marks one branch as being cancelled; false when it was not live.
    pub fn cancel_branch(&mut self, id: BranchId) -> bool {
        match self.branch_mut(id) {
            Some(b) if b.state.is_live() => {
                b.state = BranchState::Cancelling;
                true
            }
            _ => false,
        }
    }

    /// Marks every live branch as being cancelled and returns them.
    pub fn cancel_all(&mut self) -> Vec<BranchId> {
        let live = self.live_branches();
        for id in &live {
            if let Some(b) = self.branch_mut(*id) {
                b.state = BranchState::Cancelling;
            }
        }
        live
    }

    /// Ends the call (idempotent: the first ending counts).
    pub fn end(&mut self, outcome: Outcome, reason: impl Into<String>, now_ms: u64) {
        if self.state == CallState::Ended {
            return;
        }
        self.state = CallState::Ended;
        self.outcome = Some(outcome);
        self.end_reason = Some(reason.into());
        self.ended_ms = Some(now_ms);
        for b in &mut self.branches {
            if b.ended_ms.is_none() {
                b.ended_ms = Some(now_ms);
            }
        }
    }

    /// Talk time in milliseconds (0 when unanswered).
    pub fn talk_ms(&self) -> u64 {
        match (self.answered_ms, self.ended_ms) {
            (Some(a), Some(e)) => e.saturating_sub(a),
            _ => 0,
        }
    }
}

/// The response a caller gets when every branch failed: a 6xx wins (RFC 3261 s16.7);
/// all busy is 486; a definite 4xx refusal is passed on; anything else (no answer,
/// timeouts, server errors, unreachable) is 480.
pub fn best_final(codes: impl Iterator<Item = u16>) -> u16 {
    let codes: Vec<u16> = codes.collect();
    if let Some(c) = codes.iter().find(|c| (600..700).contains(*c)) {
        return *c;
    }
    if !codes.is_empty() && codes.iter().all(|c| *c == 486) {
        return 486;
    }
    if codes.contains(&486) {
        return 486;
    }
    codes
        .iter()
        .copied()
        .filter(|c| (400..500).contains(c) && !matches!(c, 408 | 480 | 487))
        .min()
        .unwrap_or(480)
}

/// The outcome to log for a call that ended before answer with `code` to the caller.
pub fn unanswered_outcome(code: u16) -> Outcome {
    match code {
        486 | 600 => Outcome::Busy,
        480 | 408 => Outcome::Missed,
        487 => Outcome::Cancelled,
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::plan::TargetKind;

    fn target(n: u32) -> Target {
        Target {
            user_id: Some(1),
            kind: TargetKind::Phone,
            uri: format!("sip:p{n}@127.0.0.1"),
            flow: "udp:127.0.0.1:5070".into(),
        }
    }

    #[test]
    fn first_answer_wins_and_others_are_cancelled() {
        let mut c = Call::new(CallId(1), Direction::Internal, 0);
        let a = c.add_branch(target(1), 0);
        let b = c.add_branch(target(2), 0);
        assert_eq!(c.on_provisional(a, false), ProvisionalAction::Relay);
        assert_eq!(c.state, CallState::Ringing);
        assert_eq!(c.on_provisional(b, true), ProvisionalAction::Relay);
        assert_eq!(c.state, CallState::EarlyMedia);
        assert_eq!(c.on_answer(b, 5), AnswerAction::Bridge { cancel: vec![a] });
        assert_eq!(
            c.on_answer(a, 6),
            AnswerAction::HangUp,
            "a late 2xx from a cancelled branch"
        );
        assert_eq!(c.on_provisional(a, false), ProvisionalAction::Drop);
        assert_eq!(c.on_branch_failed(a, 487, 7), None);
        c.end(Outcome::Answered, "caller hung up", 65);
        assert_eq!(c.talk_ms(), 60);
    }

    #[test]
    fn all_failed_gives_the_best_final() {
        let mut c = Call::new(CallId(1), Direction::Inbound, 0);
        let a = c.add_branch(target(1), 0);
        let b = c.add_branch(target(2), 0);
        assert_eq!(c.on_branch_failed(a, 486, 1), None);
        assert_eq!(c.on_branch_failed(b, 486, 2), Some(486));
        assert_eq!(best_final([408, 503].into_iter()), 480);
        assert_eq!(best_final([404, 486].into_iter()), 486);
        assert_eq!(best_final([603, 486].into_iter()), 603);
        assert_eq!(best_final([403, 480].into_iter()), 403);
        assert_eq!(best_final(std::iter::empty()), 480);
        assert_eq!(unanswered_outcome(486), Outcome::Busy);
        assert_eq!(unanswered_outcome(480), Outcome::Missed);
    }

    #[test]
    fn cancel_all_marks_live_branches() {
        let mut c = Call::new(CallId(1), Direction::Internal, 0);
        let a = c.add_branch(target(1), 0);
        let b = c.add_branch(target(2), 0);
        c.on_branch_failed(a, 486, 1);
        assert_eq!(c.cancel_all(), vec![b]);
        assert!(c.live_branches().is_empty());
        // The cancelled branch's 487 then yields the final for the caller.
        assert_eq!(c.on_branch_failed(b, 487, 2), Some(486));
    }
}
