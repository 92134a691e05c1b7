//! Approval requirements: how many approvals from which GitLab group the plan needs. The
//! count is the largest any changed account needs (a close needs `changes.close_approvals`).
//! The MR author's approval never counts. Checking who approved is the bot's job; locally
//! this is reported as "not checked".

use super::Policy;
use crate::plan::{Action, Plan};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRequirement {
    /// Approvals needed; 0 when the plan changes nothing.
    pub count: u32,
    /// The GitLab group whose members' approvals count.
    pub group: String,
    /// Why: the account that needs the most, and its type (or "close").
    pub reason: Option<String>,
    pub reset_on_push: bool,
}

pub fn requirement(policy: &Policy, plan: &Plan) -> ApprovalRequirement {
    let most_any_type = policy
        .types
        .values()
        .map(|t| t.approvals)
        .max()
        .unwrap_or(1);
    let mut best: (u32, Option<String>) = (0, None);
    for c in &plan.changes {
        let (n, why) = match c.action {
            Action::Close => (
                policy.close_approvals.unwrap_or(most_any_type),
                format!("closing `{}`", c.name),
            ),
            _ => {
                let t = c.account_type.as_deref();
                let n = t
                    .and_then(|t| policy.type_rules(t))
                    .map(|r| r.approvals)
                    .unwrap_or(most_any_type);
                (n, format!("`{}` is a {} account", c.name, t.unwrap_or("?")))
            }
        };
        if n > best.0 {
            best = (n, Some(why));
        }
    }
    ApprovalRequirement {
        count: best.0,
        group: policy.approval_group.clone(),
        reason: best.1,
        reset_on_push: policy.reset_on_push,
    }
}
