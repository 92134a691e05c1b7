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

/// GitLab's access levels, by the names policy uses.
pub const ACCESS_LEVELS: [(&str, u32); 6] = [
    ("minimal", 5),
    ("guest", 10),
    ("reporter", 20),
    ("developer", 30),
    ("maintainer", 40),
    ("owner", 50),
];

/// The name of an access level (`developer`), or its number.
pub fn access_level_name(level: u32) -> String {
    ACCESS_LEVELS
        .iter()
        .find(|(_, l)| *l == level)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| level.to_string())
}

/// Whether a membership lets its holder act for the group: active, and at least
/// `min_level`. The reason when it does not.
pub fn membership_problem(
    membership: &Option<Membership>,
    group: &str,
    min_level: u32,
) -> Option<String> {
    match membership {
        None => Some(format!("not a member of `{group}`")),
        Some(m) if m.state.as_deref().is_some_and(|s| s != "active") => Some(format!(
            "membership of `{group}` is `{}`",
            m.state.as_deref().unwrap_or("")
        )),
        Some(m) if m.access_level < min_level => Some(format!(
            "only {} access to `{group}`; the policy needs {}",
            access_level_name(m.access_level),
            access_level_name(min_level)
        )),
        Some(_) => None,
    }
}

/// One current approver and what orgvend knows of them.
#[derive(Debug, Clone)]
pub struct Approver {
    pub user: Person,
    /// Their membership of the approval group; `None` when not a member.
    pub membership: Option<Membership>,
    /// When GitLab recorded the approval (its "approved this merge request" system note);
    /// `None` when GitLab shows no such record.
    pub approved_at_ms: Option<i64>,
}

/// What GitLab says of an MR, for deciding its approvals.
pub struct Facts<'a> {
    pub approvers: &'a [Approver],
    pub author_id: u64,
    /// orgvend's own user: never an approver.
    pub bot_id: u64,
    /// Everyone who pushed commits to the MR, or wrote them.
    pub committers: &'a [u64],
    /// Who asked for what the MR vends (a request by issue: its author and the editors of
    /// its description). The MR's author is then orgvend, so the requester is named here.
    pub requesters: &'a [u64],
    /// When the MR's current head was pushed (its latest diff version); `None` when GitLab
    /// has no version of the current head yet.
    pub head_pushed_at_ms: Option<i64>,
    pub reset_on_push: bool,
    pub group: &'a str,
    pub min_access_level: u32,
}

/// (usernames that count, approvals that do not with why).
pub fn decide(f: &Facts) -> (Vec<String>, Vec<IgnoredApproval>) {
    let mut counted = Vec::new();
    let mut ignored = Vec::new();
    for a in f.approvers {
        let username = a.user.username.clone();
        let reason = if a.user.id == f.bot_id {
            Some("orgvend itself; the bot's approval never counts".to_string())
        } else if a.user.id == f.author_id {
            Some("the MR's author; an author's approval never counts".to_string())
        } else if f.requesters.contains(&a.user.id) {
            Some(
                "asked for this account (wrote or edited the request's issue); a requester's approval never counts"
                    .to_string(),
            )
        } else if f.committers.contains(&a.user.id) {
            Some(
                "pushed or wrote commits of this MR; a committer's approval never counts"
                    .to_string(),
            )
        } else {
            match membership_problem(&a.membership, f.group, f.min_access_level) {
                Some(problem) => Some(problem),
                None if f.reset_on_push => match (a.approved_at_ms, f.head_pushed_at_ms) {
                    (Some(at), Some(pushed)) if at > pushed => None,
                    (Some(_), Some(_)) => {
                        Some("approved before the latest push; approve again".to_string())
                    }
                    (None, _) => Some(
                        "GitLab shows no record of this approval (its system note); approve again"
                            .to_string(),
                    ),
                    (Some(_), None) => Some(
                        "GitLab has not recorded the latest push yet; orgvend looks again shortly"
                            .to_string(),
                    ),
                },
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

/// What the change needs: the most any changed account needs, and, when it changes
/// `policies/` (`policy_changed` names the files), the policy's own count.
pub fn requirement(policy: &Policy, plan: &Plan, policy_changed: &[String]) -> ApprovalRequirement {
    let most_any_type = policy
        .types
        .values()
        .map(|t| t.approvals)
        .max()
        .unwrap_or(1);
    let mut best: (u32, Option<String>) = (0, None);
    for c in &plan.changes {
        let t = c.account_type.as_deref();
        let n = match c.action {
            Action::Close => policy.close_approvals.unwrap_or(most_any_type),
            _ => t
                .and_then(|t| policy.type_rules(t))
                .map(|r| r.approvals)
                .unwrap_or(most_any_type),
        };
        // the first change that needs the most says why (written only for it)
        if n > best.0 {
            let why = match c.action {
                Action::Close => format!("closing `{}`", c.name),
                _ => format!("`{}` is a {} account", c.name, t.unwrap_or("?")),
            };
            best = (n, Some(why));
        }
    }
    if let Some(file) = policy_changed.first()
        && policy.policy_approvals >= best.0
    {
        best = (
            policy.policy_approvals,
            Some(format!("it changes the policy (`{file}`)")),
        );
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

    fn approver(id: u64, name: &str, m: Option<Membership>, at: Option<i64>) -> Approver {
        Approver {
            user: user(id, name),
            membership: m,
            approved_at_ms: at,
        }
    }

    #[test]
    fn only_active_members_other_than_author_committers_and_bot_after_the_push_count() {
        let approvers = vec![
            approver(1, "author", member(1, "active", 40), Some(200)),
            approver(2, "stranger", None, Some(200)),
            approver(3, "blocked", member(3, "blocked", 40), Some(200)),
            approver(4, "guest", member(4, "active", 10), Some(200)),
            approver(5, "early", member(5, "active", 30), Some(100)),
            approver(6, "infra", member(6, "active", 30), Some(200)),
            approver(7, "pusher", member(7, "active", 40), Some(200)),
            approver(8, "orgvend", member(8, "active", 40), Some(200)),
            approver(9, "unrecorded", member(9, "active", 40), None),
            approver(10, "same-instant", member(10, "active", 40), Some(150)),
            approver(11, "requester", member(11, "active", 40), Some(200)),
        ];
        let f = Facts {
            approvers: &approvers,
            author_id: 1,
            bot_id: 8,
            committers: &[7],
            requesters: &[11],
            head_pushed_at_ms: Some(150),
            reset_on_push: true,
            group: "infrastructure",
            min_access_level: 30,
        };
        let (counted, ignored) = decide(&f);
        assert_eq!(counted, ["infra"]);
        let reason = |name: &str| {
            ignored
                .iter()
                .find(|i| i.username == name)
                .map(|i| i.reason.clone())
                .unwrap_or_default()
        };
        assert!(reason("author").contains("author"));
        assert!(reason("stranger").contains("not a member"));
        assert!(reason("blocked").contains("blocked"));
        assert!(
            reason("guest").contains("only guest access"),
            "{}",
            reason("guest")
        );
        assert!(reason("early").contains("before the latest push"));
        assert!(reason("same-instant").contains("before the latest push"));
        assert!(reason("pusher").contains("committer"));
        assert!(reason("requester").contains("requester's approval never counts"));
        assert!(reason("orgvend").contains("bot"));
        assert!(reason("unrecorded").contains("no record"));
        // without reset on push, the early approval counts; the rest stay out
        let f = Facts {
            reset_on_push: false,
            ..f
        };
        assert_eq!(
            decide(&f).0,
            ["early", "infra", "unrecorded", "same-instant"]
        );
        // a head GitLab has not recorded yet: nothing counts until it has
        let f = Facts {
            reset_on_push: true,
            head_pushed_at_ms: None,
            ..f
        };
        assert!(decide(&f).0.is_empty());
        // a lower bar lets the guest in
        let f = Facts {
            min_access_level: 10,
            head_pushed_at_ms: Some(150),
            ..f
        };
        assert!(decide(&f).0.contains(&"guest".to_string()));
    }
}
