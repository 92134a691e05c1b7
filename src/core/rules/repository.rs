//! Rule `repository.path`: each new account's GitLab project path (the policy's
//! `repository.namespace` and `repository.path` filled with the account's values) is a plain
//! GitLab path. The keyless CI roles trust exactly that path: a `*` or `?` there would be a
//! wildcard in an IAM condition.

use super::{CheckInput, Policy, Violation};
use crate::core::plan::{Action, project_path, valid_project_path};

pub(super) fn check_repository(policy: &Policy, input: &CheckInput, out: &mut Vec<Violation>) {
    for c in &input.plan.changes {
        let (Action::Create, Some(t)) = (c.action, &c.target) else {
            continue;
        };
        if t.name == "?" || t.alias == "?" {
            continue; // `value.*` reports the missing value
        }
        let path = project_path(&policy.repository, t);
        if !valid_project_path(&path) {
            out.push(Violation::error(
                "repository.path",
                &c.at,
                &c.key,
                format!("the account's GitLab project would be `{path}`, which is not a plain GitLab path (letters, digits, `.`, `_`, `-`)"),
                "choose a name or alias of letters, digits and hyphens (the project path is made from it)".into(),
            ));
        }
    }
}
