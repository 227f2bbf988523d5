//! The CLI's commands about calls in progress (through the store's `call_commands`) as
//! engine inputs, and the engine's answers as the store's results.

use crate::engine::adhoc::MergeResult;
use crate::engine::Input;
use crate::store::{CallAction, CallCommand, CallCommandResult};
use crate::util::time::Now;

/// The engine input that carries out a command taken from the store at `now`.
pub fn input(now: Now, c: &CallCommand) -> Input {
    match c.action {
        CallAction::Merge => Input::MergeCalls {
            now,
            command: c.id.0,
            tenant: c.tenant.0,
            user: c.user.0,
        },
    }
}

/// The engine's merge result as the store's.
pub fn merge_result(r: MergeResult) -> CallCommandResult {
    match r {
        MergeResult::Done => CallCommandResult::Done,
        MergeResult::NotTwoCalls => CallCommandResult::NotTwoCalls,
        MergeResult::NotAnchored => CallCommandResult::NotAnchored,
        MergeResult::NotMixable => CallCommandResult::NotMixable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CallCommandId, TenantId, UserId};

    #[test]
    fn a_merge_command_becomes_a_merge_input() {
        let now = crate::runtime::now();
        let c = CallCommand {
            id: CallCommandId(7),
            tenant: TenantId(2),
            user: UserId(31),
            action: CallAction::Merge,
            created_at_ms: 1_000,
        };
        let i = input(now, &c);
        assert!(
            matches!(
                i,
                Input::MergeCalls {
                    now: at,
                    command: 7,
                    tenant: 2,
                    user: 31
                } if at == now
            ),
            "{i:?}"
        );
    }

    #[test]
    fn every_merge_result_has_its_own_store_result() {
        let all = [
            MergeResult::Done,
            MergeResult::NotTwoCalls,
            MergeResult::NotAnchored,
            MergeResult::NotMixable,
        ];
        let mapped: Vec<_> = all.into_iter().map(merge_result).collect();
        assert_eq!(
            mapped,
            [
                CallCommandResult::Done,
                CallCommandResult::NotTwoCalls,
                CallCommandResult::NotAnchored,
                CallCommandResult::NotMixable
            ]
        );
    }
}
