//! Approvals: how many the plan needs, from which group ([`requirement`]), and which of an
//! MR's approvals count ([`decide`]), on orgvend's own types (the bot fills them from the
//! GitLab API, never from a webhook payload). An approval counts when its author is an active
//! member (direct or inherited) of the policy's group, is not the MR's author, and — where
//! the policy resets approvals on push — was first seen on the MR's current head. The count
//! needed is the largest any changed account needs (a close needs `changes.close_approvals`).

use crate::core::plan::{Action, Plan};
use crate::core::policy::Policy;
use serde::Serialize;

/// A GitLab user, as far as approvals care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: u64,
    pub username: String,
}

/// A membership of the approval group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// GitLab's access level (10 Guest … 50 Owner; 5 minimal access).
    pub access_level: u32,
    /// `active`, or `awaiting`/`blocked`…; `None` when GitLab does not say.
    pub state: Option<String>,
}

/// An approval that does not count, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IgnoredApproval {
    pub username: String,
    pub reason: String,
}

/// GitLab's Guest level: "Minimal access" members (5) do not count.
pub const MIN_ACCESS_LEVEL: u32 = 10;

/// Whether a membership lets its holder act for the group: active, and more than minimal
/// access. The reason when it does not.
pub fn membership_problem(membership: &Option<Membership>, group: &str) -> Option<String> {
    match membership {
        None => Some(format!("not a member of `{group}`")),
        Some(m) if m.state.as_deref().is_some_and(|s| s != "active") => Some(format!(
            "membership of `{group}` is `{}`",
            m.state.as_deref().unwrap_or("")
        )),
        Some(m) if m.access_level < MIN_ACCESS_LEVEL => {
            Some(format!("only minimal access to `{group}`"))
        }
        Some(_) => None,
    }
}

/// One current approver and what orgvend knows of them.
#[derive(Debug, Clone)]
pub struct Approver {
    pub user: Person,
    /// Their membership of the approval group; `None` when not a member.
    pub membership: Option<Membership>,
    /// The MR head when orgvend first saw this approval.
    pub first_seen_sha: String,
}

pub struct Facts<'a> {
    pub approvers: &'a [Approver],
    pub author_id: u64,
    pub head_sha: &'a str,
    pub reset_on_push: bool,
    pub group: &'a str,
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}

/// (usernames that count, approvals that do not with why).
pub fn decide(f: &Facts) -> (Vec<String>, Vec<IgnoredApproval>) {
    let mut counted = Vec::new();
    let mut ignored = Vec::new();
    for a in f.approvers {
        let username = a.user.username.clone();
        let reason = if a.user.id == f.author_id {
            Some("the MR's author; an author's approval never counts".to_string())
        } else {
            match membership_problem(&a.membership, f.group) {
                Some(problem) => Some(problem),
                None if f.reset_on_push && a.first_seen_sha != f.head_sha => Some(format!(
                    "approved `{}`, before the latest push; approve again",
                    short(&a.first_seen_sha)
                )),
                None => None,
            }
        };
        match reason {
            None => counted.push(username),
            Some(reason) => ignored.push(IgnoredApproval { username, reason }),
        }
    }
    (counted, ignored)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, name: &str) -> Person {
        Person {
            id,
            username: name.into(),
        }
    }

    fn member(_id: u64, state: &str, level: u32) -> Option<Membership> {
        Some(Membership {
            state: Some(state.into()),
            access_level: level,
        })
    }

    #[test]
    fn only_active_members_other_than_the_author_on_the_current_head_count() {
        let approvers = vec![
            Approver {
                user: user(1, "author"),
                membership: member(1, "active", 40),
                first_seen_sha: "head".into(),
            },
            Approver {
                user: user(2, "stranger"),
                membership: None,
                first_seen_sha: "head".into(),
            },
            Approver {
                user: user(3, "blocked"),
                membership: member(3, "blocked", 40),
                first_seen_sha: "head".into(),
            },
            Approver {
                user: user(4, "minimal"),
                membership: member(4, "active", 5),
                first_seen_sha: "head".into(),
            },
            Approver {
                user: user(5, "early"),
                membership: member(5, "active", 30),
                first_seen_sha: "old0000000".into(),
            },
            Approver {
                user: user(6, "infra"),
                membership: member(6, "active", 30),
                first_seen_sha: "head".into(),
            },
        ];
        let f = Facts {
            approvers: &approvers,
            author_id: 1,
            head_sha: "head",
            reset_on_push: true,
            group: "infrastructure",
        };
        let (counted, ignored) = decide(&f);
        assert_eq!(counted, ["infra"]);
        let reasons: Vec<(&str, &str)> = ignored
            .iter()
            .map(|i| (i.username.as_str(), i.reason.as_str()))
            .collect();
        assert!(reasons[0].1.contains("author"));
        assert!(reasons[1].1.contains("not a member"));
        assert!(reasons[2].1.contains("blocked"));
        assert!(reasons[3].1.contains("minimal access"));
        assert!(
            reasons[4].1.contains("before the latest push") && reasons[4].1.contains("old00000")
        );
        // without reset on push, the early approval counts
        let f = Facts {
            reset_on_push: false,
            ..f
        };
        assert_eq!(decide(&f).0, ["early", "infra"]);
    }
}
