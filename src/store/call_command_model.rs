//! The typed records of the commands from the CLI to the running daemon about a user's
//! calls in progress (`call_commands`). Plain data: the runtime maps them to and from the
//! engine's inputs and outputs.

use std::fmt;
use std::str::FromStr;

use super::model::{text_enum, TenantId, UserId};
use super::StoreError;

/// A call command's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallCommandId(pub i64);

impl fmt::Display for CallCommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

text_enum!(
    /// What a call command asks the daemon to do with a user's calls.
    CallAction, "call_commands.action", {
        /// Merge the user's two answered calls into one ad-hoc conference.
        Merge => "merge",
    }
);

text_enum!(
    /// How a call command ended.
    CallCommandResult, "call_commands.result", {
        /// Applied: the calls are one conference now.
        Done => "done",
        /// The user does not have exactly two answered calls.
        NotTwoCalls => "not-two-calls",
        /// A call's media does not go through sentralbord, so it cannot be mixed.
        NotAnchored => "not-anchored",
        /// A leg's codec cannot be mixed (the mixer takes PCMU and PCMA), or a call is in
        /// a conference already.
        NotMixable => "not-mixable",
        /// The daemon could not apply it.
        Failed => "failed",
        /// Nobody took it in time (daemon not running); it will never be applied.
        Expired => "expired",
    }
);

/// A command the daemon is to apply (taken by
/// [`pending_call_commands`](super::StoreHandle::pending_call_commands)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCommand {
    /// Row id, to report the result with.
    pub id: CallCommandId,
    /// The user's tenant.
    pub tenant: TenantId,
    /// The user whose calls it is about.
    pub user: UserId,
    /// What to do.
    pub action: CallAction,
    /// When the CLI sent it, Unix ms.
    pub created_at_ms: i64,
}

/// Where a call command stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCommandStatus {
    /// The command as sent.
    pub command: CallCommand,
    /// Taken by the daemon, Unix ms (None: not yet).
    pub taken_at_ms: Option<i64>,
    /// Finished (by the daemon, or expired), Unix ms.
    pub done_at_ms: Option<i64>,
    /// How it ended (None while not finished).
    pub result: Option<CallCommandResult>,
}
