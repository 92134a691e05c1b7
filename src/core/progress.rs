//! The apply's progress as the MR note shows it: the outcome, who approved and merged, and
//! each account's steps with their state. The bot fills it in; `render::apply` writes it.

use crate::core::plan::{Action, Step};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    /// Not done by orgvend (with the reason in the account's note).
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountProgress {
    pub action: Action,
    pub name: String,
    pub email: String,
    pub account_id: Option<String>,
    pub steps: Vec<(Step, StepState)>,
    pub error: Option<String>,
    pub notes: Vec<String>,
    /// The account's GitLab project, once it exists.
    pub repository: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    Running,
    Applied,
    /// `retrying`: orgvend tries again by itself; otherwise `/orgvend retry` after a fix.
    Failed {
        retrying: bool,
    },
    Refused {
        reasons: Vec<String>,
    },
    /// Stopped on purpose until someone asks again (`/orgvend retry`): an AWS quota would be
    /// exceeded (closures in 30 days).
    Parked {
        reason: String,
    },
}

/// What the MR's note shows during and after the apply.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub outcome: Outcome,
    pub merge_sha: String,
    pub merged_by: Option<String>,
    pub approved_by: Vec<String>,
    pub accounts: Vec<AccountProgress>,
    /// A repair of drift rather than a merge: who asked for it (`merge_sha` is then the
    /// target branch's head it repairs to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
}
