//! Rules `change.*`, against the base version: immutable fields stay as they are, removing an
//! account is refused unless the policy allows closing (then it is flagged as destructive),
//! a new account never takes an email an existing account holds (AWS never frees one), and
//! a change of the rules (`policies/`) never comes with a change of accounts.

use super::{CheckInput, Policy, Violation};
use crate::core::plan::Action;
use std::collections::HashSet;

pub(super) fn check_changes(policy: &Policy, input: &CheckInput, out: &mut Vec<Violation>) {
    check_policy_with_accounts(input, out);
    if let Some(e) = input.proposed_policy {
        // `policy.invalid`: merged, it would leave the target branch without rules
        out.push(Violation {
            rule: "policy.invalid".into(),
            severity: super::Severity::Error,
            module: None,
            at: e.at.clone(),
            message: format!("the policy this MR proposes does not load: {}", e.message),
            fix: "fix the policy file at the line given".into(),
        });
    }
    let Some(base) = input.base else { return };
    let taken: HashSet<String> = base
        .accounts
        .iter()
        .filter_map(|a| a.email())
        .map(str::to_lowercase)
        .collect();
    for c in &input.plan.changes {
        match c.action {
            Action::Update => {
                for f in c
                    .fields
                    .iter()
                    .filter(|f| policy.immutable.contains(&f.field))
                {
                    out.push(Violation::error(
                        "change.immutable",
                        f.at.as_ref().unwrap_or(&c.at),
                        &c.key,
                        format!(
                            "`{}` of existing account `{}` changes from `{}` to `{}`; the policy makes it immutable",
                            f.field, c.name, f.before, f.after
                        ),
                        match f.field.as_str() {
                            "email" => format!("restore `email = \"{}\"`: an email changes only where the policy allows it (`[changes] allow_email_change`), in two phases", f.before),
                            _ => format!("restore `{} = \"{}\"`", f.field, f.before),
                        },
                    ));
                }
            }
            Action::Close => {
                let v = Violation::error(
                    "change.close",
                    &c.at,
                    &c.key,
                    format!(
                        "account `{}` (module `{}`, at {} in the base) is removed: merging closes the AWS account",
                        c.name, c.key, c.at
                    ),
                    if policy.allow_close {
                        "this is destructive and cannot be undone after 90 days; make sure the account is empty".into()
                    } else {
                        "restore its module blocks; the policy does not allow closing accounts (changes.allow_close)".into()
                    },
                );
                out.push(if policy.allow_close { v.warning() } else { v });
            }
            Action::Create => {}
        }
    }
    for c in input
        .plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Create)
    {
        let account = &input.head.accounts[c.head.expect("a create has a head account")];
        if let (Some(email), Some(f)) = (account.email(), &account.email)
            && taken.contains(&email.to_lowercase())
        {
            out.push(Violation::error(
                "change.email-reuse",
                &f.at,
                &c.key,
                format!(
                    "new account `{}` takes `{email}`, the email of an existing account",
                    c.name
                ),
                "AWS never lets an email be used twice, even after closing: choose a new email"
                    .into(),
            ));
        }
    }
}

/// `change.policy-and-accounts`: a change of the rules is judged (and approved) on its own;
/// accounts changed beside it would be applied under rules nobody approved yet.
fn check_policy_with_accounts(input: &CheckInput, out: &mut Vec<Violation>) {
    let Some(file) = input.policy_changed.first() else {
        return;
    };
    for c in &input.plan.changes {
        out.push(Violation::error(
            "change.policy-and-accounts",
            &c.at,
            &c.key,
            format!(
                "this MR changes the policy (`{file}`) and the account `{}`: an MR may change the rules or the accounts, never both",
                c.name
            ),
            "move the policy change into a merge request of its own; once it is merged, this change is judged by the new rules".into(),
        ));
    }
}
