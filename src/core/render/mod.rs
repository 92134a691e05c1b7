//! Renderers: the MR note (GitLab Markdown), plain text for terminals, and JSON. Sentences
//! about steps and verdicts live here, shared by all three.

pub mod apply;
pub mod escape;
pub mod json;
pub mod markdown;
/// The note on a request's issue, and the description of the MR opened for it.
pub mod request;
pub mod text;

pub use escape::{code, html, inline, plain};

use crate::core::plan::{Action, Step};
use crate::core::policy::Provider;
use crate::core::report::{Approvals, Report, Verdict};
use std::collections::BTreeMap;

/// The hidden marker that identifies orgvend's note on an MR.
pub const NOTE_MARKER: &str = "<!-- orgvend:plan -->";

/// One step as a sentence; values in backticks (escaped by the Markdown renderer).
pub fn describe(step: &Step) -> String {
    match step {
        Step::CreateAccount { name, email, role_name, tags } => format!(
            "Organizations: create account `{name}` with email `{email}`, role `{role_name}`{}",
            if tags.is_empty() { String::new() } else { format!(" and tags `{}`", tag_list(tags)) }
        ),
        Step::WaitForAccount => "Organizations: wait until AWS has created the account".into(),
        Step::AdoptAccount { account_id, email } => format!(
            "Organizations: adopt the existing account `{account_id}` instead of creating one (it must be active in the organization, with the email `{email}`)"
        ),
        Step::MoveAccount { ou } => format!("Organizations: move the account to OU `{ou}`"),
        Step::TagAccount { tags } => format!("Organizations: tag the account `{}`", tag_list(tags)),
        Step::UntagAccount { keys } => format!("Organizations: remove the tags `{}`", keys.join(", ")),
        Step::RenameAccount { name } => format!("Account: rename the account to `{name}`"),
        Step::StartEmailUpdate { from, to } => format!(
            "Account: start changing the email from `{from}` to `{to}` (AWS mails a one-time code to `{to}`; an operator completes it with `orgvend accept-email`)"
        ),
        Step::AssumeRole { role_name } => format!("STS: assume `{role_name}` in the account"),
        Step::SetAlias { alias } => format!("IAM: set the account alias `{alias}`"),
        Step::SamlProvider { name } => {
            format!("IAM: create the SAML identity provider `{name}` for single sign-on")
        }
        Step::PermissionsBoundary { policy } => format!(
            "IAM: create the permissions boundary `{policy}` (no removing CloudTrail, Config or the baseline roles and provider; no VPCs)"
        ),
        Step::AccessRole { name, policy_arn, bounded } => format!(
            "IAM: create role `{name}` for single sign-on with `{policy_arn}`{}",
            if *bounded { " under the permissions boundary" } else { "" }
        ),
        Step::KmsKey { alias, previous: Some(was) } => format!(
            "KMS: the account's key `{was}` also named `{alias}` (the account's alias changed), rotation on"
        ),
        Step::KmsKey { alias, .. } => format!(
            "KMS: the account's key `{alias}` (rotation on; the account administers it, CloudTrail and Config may use it)"
        ),
        Step::ConfigRecorder { name } => format!(
            "Config: the recorder (an existing one is adopted, else `{name}`) recording all supported resources, global ones included"
        ),
        Step::DeliveryChannel { bucket } => {
            format!("Config: the delivery channel to the central bucket `{bucket}`, then recording on")
        }
        Step::ConfigRule { name, identifier, parameters } => format!(
            "Config: the rule `{name}` (AWS managed `{identifier}`{})",
            if parameters.is_empty() { String::new() } else { format!(", `{}`", tag_list(parameters)) }
        ),
        Step::Trail { name, bucket } => format!(
            "CloudTrail: the multi-region trail `{name}` to `{bucket}`, log-file validation on, encrypted with the account's key, logging"
        ),
        Step::OrganizationTrail => "CloudTrail: verify that the organization's trail is logging, multi-region, with log-file validation".into(),
        Step::StateBucket { bucket } => format!(
            "S3: create the Terraform state bucket `{}` (versioned, encrypted, public access blocked)",
            bucket.replace("{account_id}", "<account id>")
        ),
        Step::LockTable { table } => format!("DynamoDB: create the Terraform lock table `{table}`"),
        Step::CiOidcProvider => "IAM: create the OIDC provider of the GitLab instance, for CI without keys".into(),
        Step::CiRole { name, purpose } if purpose == "apply" => format!(
            "IAM: create role `{name}` that only the project's protected `master` pipelines may assume, under the permissions boundary"
        ),
        Step::CiRole { name, .. } => format!("IAM: create role `{name}` (read only) that the project's pipelines assume to plan"),
        Step::GitlabProject { namespace, path } => {
            format!("GitLab: create the project `{namespace}/{path}` with default branch `master`")
        }
        Step::CommitTemplate => {
            "GitLab: commit the account template (backend on the state bucket, CI that plans MRs and applies master)".into()
        }
        Step::ProtectMaster => "GitLab: protect `master` (no direct pushes; maintainers merge)".into(),
        Step::CiVariables => "GitLab: set the CI/CD variables the pipeline needs".into(),
        Step::Entitlement { provider: Provider::Okta, role, name, previous: Some(was) } => format!(
            "Okta: rename the group `{}` for `{role}` to `{}` (the account's alias or name changed)",
            was.replace("{account_id}", "<account id>"),
            name.replace("{account_id}", "<account id>")
        ),
        Step::Entitlement { provider: Provider::Okta, role, name, .. } => format!(
            "Okta: create the group `{}` for `{role}` and assign it to the AWS app",
            name.replace("{account_id}", "<account id>")
        ),
        Step::Entitlement { role, name, .. } => format!(
            "Identity Center: permission set `{name}` for `{role}`, provisioned to the account"
        ),
        Step::Grant { provider: Provider::Okta, role, group } => format!(
            "Okta: members of `{group}` may sign in as `{role}` (a group rule, activated)"
        ),
        Step::Grant { role, group, .. } => format!(
            "Identity Center: assign the group `{group}` to `{role}` on the account"
        ),
        Step::Revoke { provider, role, group } => format!(
            "{}: members of `{group}` may no longer sign in as `{role}`",
            provider.label()
        ),
        Step::RevokeAccess { provider, .. } => format!(
            "{}: take back every grant on the account before it closes",
            provider.label()
        ),
        Step::CloseAccount { name } => format!(
            "Organizations: CLOSE account `{name}` (suspended, then deleted after 90 days; its email can never be used again)"
        ),
        Step::ReserveClosure => "Organizations: count the closure against AWS's 30-day quota (parked when it is spent)".into(),
        Step::WaitForClosure => "Organizations: wait until AWS has suspended the account".into(),
        Step::ArchiveProject { path } => format!(
            "GitLab: archive the project `{path}` (read only; no pipeline runs, so its CI roles are unusable)"
        ),
    }
}

/// Who will be able to sign in to the account, as what: one sentence for the plan, values
/// in backticks. `None` when nothing is granted.
pub fn access_sentence(
    plan: &crate::core::plan::Plan,
    c: &crate::core::plan::Change,
) -> Option<String> {
    let t = c.target.as_ref()?;
    let access = plan.access.as_deref()?;
    if t.grants.is_empty() || access.provider == Provider::None {
        return None;
    }
    let what = |role: &str| {
        plan.baseline
            .as_deref()
            .and_then(|(b, _)| b.roles.iter().find(|r| r.name == role))
            .map(|r| {
                let policy = r.policy_arn.rsplit('/').next().unwrap_or(&r.policy_arn);
                if r.bounded {
                    format!(" (`{policy}` within the permissions boundary)")
                } else {
                    format!(" (`{policy}`)")
                }
            })
            .unwrap_or_default()
    };
    let grants: Vec<String> = t
        .grants
        .iter()
        .map(|g| {
            format!(
                "members of `{}` as `{}`{}{}",
                g.group,
                g.role,
                what(&g.role),
                if g.declared {
                    ", added by this declaration"
                } else {
                    ""
                }
            )
        })
        .collect();
    Some(format!(
        "Who can sign in ({}): {}.",
        access.provider.label(),
        grants.join("; ")
    ))
}

/// The unified diff of a change's blocks, base to head.
pub fn unified_diff(c: &crate::core::plan::Change) -> String {
    let (before, after) = (c.before_text(), c.after_text());
    if let Some(diff) = one_sided_diff(&before, &after) {
        return diff;
    }
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("base", "head")
        .to_string()
}

/// The diff of a text added or removed whole (a create, a close), as `similar` writes it,
/// without diffing: every line, one hunk. `None` for anything else, and for text that
/// `similar` might split differently (a carriage return not ending a line, as `similar`
/// ends one there; no final newline). Lines ending in `\r\n` (a repository written on
/// Windows) are split alike by both.
fn one_sided_diff(before: &str, after: &str) -> Option<String> {
    let (text, sign) = match (before.is_empty(), after.is_empty()) {
        (true, false) => (after, '+'),
        (false, true) => (before, '-'),
        _ => return None,
    };
    let lone_cr = memchr::memchr_iter(b'\r', text.as_bytes())
        .any(|i| text.as_bytes().get(i + 1) != Some(&b'\n'));
    if lone_cr || !text.ends_with('\n') {
        return None;
    }
    let lines = text.split_inclusive('\n').count();
    let mut out = String::with_capacity(text.len() + lines + 40);
    out.push_str(&one_sided_header(sign, lines));
    for line in text.split_inclusive('\n') {
        out.push(sign);
        out.push_str(line);
    }
    Some(out)
}

/// The file header and the one hunk's header of a diff adding (`+`) or removing (`-`) a text
/// of `lines` lines whole, as `similar` writes them.
fn one_sided_header(sign: char, lines: usize) -> String {
    let range = match lines {
        1 => "1".to_string(),
        n => format!("1,{n}"),
    };
    match sign {
        '+' => format!("--- base\n+++ head\n@@ -0,0 +{range} @@\n"),
        _ => format!("--- base\n+++ head\n@@ -{range} +0,0 @@\n"),
    }
}

fn tag_list(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn action_word(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Close => "close",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line verdict, values in backticks.
pub fn headline(report: &Report) -> String {
    let s = &report.summary;
    let nothing = s.create + s.update + s.close == 0;
    match report.verdict {
        Verdict::Invalid => format!(
            "orgvend cannot read this change: {}",
            plural(report.parse_errors.len(), "syntax error", "syntax errors")
        ),
        Verdict::Blocked => format!(
            "Blocked: {}",
            plural(s.errors, "policy violation", "policy violations")
        ),
        Verdict::AwaitingApproval => {
            let r = report.approvals.required();
            let missing = report.approvals.missing().unwrap_or(r.count) as usize;
            format!(
                "Passes policy; waiting for {} from `{}`",
                plural(missing, "more approval", "more approvals"),
                r.group
            )
        }
        Verdict::Passes if nothing => "Passes policy: no account changes".into(),
        Verdict::Passes => "Passes policy (approvals are checked on the merge request)".into(),
        Verdict::Ready if nothing => "Safe to merge: no account changes".into(),
        Verdict::Ready => "Ready to merge: passes policy and is approved".into(),
    }
}

/// "1 to create · 0 to update · 0 to close".
pub fn counts(report: &Report) -> String {
    let s = &report.summary;
    format!(
        "{} to create · {} to update · {} to close",
        s.create, s.update, s.close
    )
}

/// The approvals paragraph, values in backticks.
pub fn approvals_sentence(report: &Report) -> String {
    let r = report.approvals.required();
    if r.count == 0 {
        return "No approvals needed: nothing changes in AWS.".into();
    }
    let why = r
        .reason
        .as_ref()
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    let need = format!(
        "Needs {} from members of `{}`{why}; the author's own approval never counts",
        plural(r.count as usize, "approval", "approvals"),
        r.group
    );
    match &report.approvals {
        Approvals::NotCheckedLocally { .. } => {
            format!("{need}. Not checked locally: orgvend checks approvals on the merge request.")
        }
        Approvals::Checked {
            counted, ignored, ..
        } => {
            let mut s = format!("{need}.");
            if counted.is_empty() {
                s.push_str(" Approved by no one who counts yet.");
            } else {
                let who: Vec<String> = counted.iter().map(|u| format!("`{u}`")).collect();
                s.push_str(&format!(" Counted: {}.", who.join(", ")));
            }
            for i in ignored {
                s.push_str(&format!(" Not counted: `{}` ({}).", i.username, i.reason));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    /// The shortcut writes what `similar` writes, for every text it takes.
    #[test]
    fn a_text_added_or_removed_whole_is_diffed_as_similar_diffs_it() {
        let texts = [
            "one\n",
            "module \"a\" {\n  name = \"x\"\n}\n",
            "a\n\nb\n  c\n\n\n",
            "ünï\tcode ${x}\n\\\n",
            "module \"a\" {\r\n  name = \"x\"\r\n}\r\n",
            "a\r\n\r\nb\n  c\r\n\n",
        ];
        for text in texts {
            for (before, after) in [("", text), (text, "")] {
                let similar = similar::TextDiff::from_lines(before, after)
                    .unified_diff()
                    .context_radius(3)
                    .header("base", "head")
                    .to_string();
                assert_eq!(
                    super::one_sided_diff(before, after).as_deref(),
                    Some(similar.as_str()),
                    "{before:?} → {after:?}"
                );
            }
        }
        for (before, after) in [
            ("a\rb\n", ""),
            ("", "a\r\nb\r\r\n"),
            ("", "a\r\nb\r"),
            ("", "no newline"),
            ("a\n", "b\n"),
            ("", ""),
        ] {
            assert_eq!(super::one_sided_diff(before, after), None);
        }
    }
}
