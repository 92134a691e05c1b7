//! `orgvend doctor`: checks the set-up orgvend's safety rests on, and says how to fix what is
//! wrong. On GitLab: the subaccounts project and its target branch, that branch's protection
//! (nobody pushes, only Maintainers merge), "pipelines must succeed" (the `orgvend` status
//! then blocks a merge), the merge method, the webhook, the bot's token and the approval
//! group. On AWS: that the credentials are the management account's, and the reads the apply
//! relies on; the access providers (Identity Center's instance, Okta's credentials and app).
//! Reads only; exit 0 when nothing fails, 1 otherwise.

use crate::aws::Aws;
use crate::aws::identity_center::IdentityCenter;
use crate::config::{GitlabConfig, ProjectSelector};
use crate::core::policy::Policy;
use crate::gitlab::{GitLab, Project};
use crate::okta::OktaClient;
use std::fmt::Write;

/// The policy directory of the subaccounts repository.
const POLICY_DIR: &str = "policies";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Worth a look; nothing orgvend relies on is known to be broken.
    Warn,
    /// orgvend's guarantees do not hold until it is fixed.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
    /// How to fix it, where something is to be fixed.
    pub fix: Option<String>,
}

fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Ok,
        detail: detail.into(),
        fix: None,
    }
}

fn bad(
    check: &'static str,
    level: Level,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        check,
        level,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// The GitLab side, through orgvend's own token.
pub async fn check_gitlab<G: GitLab>(gl: &G, config: &GitlabConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    let project = match &config.project {
        ProjectSelector::Id(id) => id.to_string(),
        ProjectSelector::Path(p) => p.clone(),
    };
    let p: Project = match gl.project(&project).await {
        Ok(Some(p)) => {
            out.push(ok(
                "project",
                format!("{} is visible to orgvend's token", p.path_with_namespace),
            ));
            p
        }
        Ok(None) => {
            out.push(bad("project", Level::Fail, format!("{project} is not visible to orgvend's token"), "give orgvend's bot user Developer (Maintainer to check the webhook) on the subaccounts project, or fix gitlab.project"));
            return out;
        }
        Err(e) => {
            out.push(bad(
                "project",
                Level::Fail,
                format!("reading {project}: {e:#}"),
                "check gitlab.url and the token (ORGVEND_GITLAB_TOKEN)",
            ));
            return out;
        }
    };
    let branch = config
        .target_branch
        .clone()
        .or(p.default_branch.clone())
        .unwrap_or_else(|| "master".into());
    out.push(ok(
        "target branch",
        format!("orgvend reviews and applies only MRs into `{branch}`"),
    ));

    match gl.protected_branch(&project, &branch).await {
        Ok(Some(prot)) => {
            let pushers: Vec<u32> = prot.push.iter().copied().filter(|l| *l != 0).collect();
            let low_mergers: Vec<u32> = prot.merge.iter().copied().filter(|l| *l < 40).collect();
            if !pushers.is_empty() {
                out.push(bad("branch protection", Level::Fail, format!("access levels {pushers:?} may push to `{branch}` directly: a push is never reviewed"), format!("Settings → Repository → Protected branches: `{branch}`, allowed to push: No one")));
            } else if !low_mergers.is_empty() || prot.merge.is_empty() {
                out.push(bad("branch protection", Level::Fail, format!("access levels below Maintainer may merge into `{branch}`"), format!("Settings → Repository → Protected branches: `{branch}`, allowed to merge: Maintainers")));
            } else if prot.allow_force_push {
                out.push(bad("branch protection", Level::Fail, format!("force pushes to `{branch}` are allowed"), "turn off 'Allowed to force push'"));
            } else {
                out.push(ok("branch protection", format!("nobody pushes to `{branch}`; Maintainers merge")));
            }
        }
        Ok(None) => out.push(bad("branch protection", Level::Fail, format!("`{branch}` is not protected: anyone with Developer access can push to it"), format!("Settings → Repository → Protected branches: protect `{branch}`, allowed to push: No one, allowed to merge: Maintainers"))),
        Err(e) => out.push(bad("branch protection", Level::Warn, format!("cannot read the protection of `{branch}`: {e:#}"), "give orgvend's bot user Maintainer on the project so that it can check")),
    }

    match p.only_allow_merge_if_pipeline_succeeds {
        Some(true) => out.push(ok("pipelines must succeed", "a failed or pending `orgvend` status blocks the merge")),
        Some(false) => out.push(bad("pipelines must succeed", Level::Fail, "GitLab merges whatever the `orgvend` status says; orgvend then refuses the apply after the fact", "Settings → Merge requests → Merge checks: 'Pipelines must succeed'")),
        None => out.push(bad("pipelines must succeed", Level::Warn, "GitLab does not say whether pipelines must succeed", "check Settings → Merge requests → Merge checks: 'Pipelines must succeed'")),
    }

    let method = match p.merge_method.as_deref() {
        Some("ff") => "fast-forward",
        Some("rebase_merge") => "semi-linear",
        Some("merge") => "merge commit",
        Some(_) | None => "unknown",
    };
    out.push(ok("merge method", format!("{method}: orgvend judges every merge method against the target branch as it was before the MR")));

    match gl.hooks(&project).await {
        Ok(hooks) => {
            let good = hooks.iter().find(|h| h.merge_requests_events && h.note_events);
            match good {
                Some(h) if h.token_present == Some(false) => out.push(bad("webhook", Level::Fail, format!("the hook to {} has no secret token: anyone could deliver to orgvend", h.url), "set its secret token to one of ORGVEND_WEBHOOK_TOKENS")),
                Some(h) if !h.issues_events => out.push(bad("webhook", Level::Warn, format!("the hook to {} does not send issue events: requests by issue are answered only when someone comments `/orgvend request`", h.url), "Settings → Webhooks: also tick 'Issues events' (and 'Confidential issues events' where requests may be confidential)")),
                Some(h) => out.push(ok("webhook", format!("{} receives merge request, comment and issue events", h.url))),
                None => out.push(bad("webhook", Level::Fail, "no webhook sends both merge request and comment events", "Settings → Webhooks: orgvend's /webhooks/gitlab, 'Merge request events' and 'Comments', with a secret token")),
            }
        }
        Err(e) => out.push(bad("webhook", Level::Warn, format!("cannot read the project's hooks: {e:#}"), "give orgvend's bot user Maintainer on the project so that it can check, or check Settings → Webhooks by hand")),
    }

    match gl.token_scopes().await {
        Ok(Some(scopes)) if scopes.iter().any(|s| s == "api") => {
            out.push(ok("token", "the token has the `api` scope"))
        }
        Ok(Some(scopes)) => out.push(bad(
            "token",
            Level::Fail,
            format!(
                "the token's scopes are {scopes:?}: orgvend writes notes, statuses and projects"
            ),
            "use a token of the bot user with the `api` scope",
        )),
        Ok(None) | Err(_) => out.push(bad(
            "token",
            Level::Warn,
            "GitLab does not say the token's scopes",
            "make sure it has the `api` scope",
        )),
    }
    match gl.current_user().await {
        Ok(me) if me.username == config.bot_username => out.push(ok("bot user", format!("the token is {}'s", me.username))),
        Ok(me) => out.push(bad("bot user", Level::Fail, format!("the token is {}'s, but gitlab.bot_username says {}: orgvend would react to its own notes", me.username, config.bot_username), format!("set gitlab.bot_username = \"{}\"", me.username))),
        Err(e) => out.push(bad("bot user", Level::Fail, format!("reading the token's user: {e:#}"), "check the token")),
    }

    match approval_group(gl, &project, &branch).await {
        Ok(group) => match gl.group(&group).await {
            Ok(Some(_)) => out.push(ok("approval group", format!("`{group}` is visible: approvals can be verified"))),
            Ok(None) => out.push(bad("approval group", Level::Fail, format!("the policy's approval group `{group}` is not visible to orgvend's token: no approval can be verified"), format!("add orgvend's bot user to `{group}` (Reporter is enough), or fix approvals.group"))),
            Err(e) => out.push(bad("approval group", Level::Fail, format!("reading `{group}`: {e:#}"), "check the token's access")),
        },
        Err(e) => out.push(bad("policy", Level::Fail, e, format!("fix {POLICY_DIR}/orgvend.toml on `{branch}`"))),
    }
    out
}

/// The approval group of the policy on `branch`.
async fn approval_group<G: GitLab>(gl: &G, project: &str, branch: &str) -> Result<String, String> {
    let tree = gl
        .tree(project, branch)
        .await
        .map_err(|e| format!("reading `{branch}`: {e:#}"))?;
    let mut files = Vec::new();
    for e in tree.iter().filter(|e| {
        e.kind == "blob"
            && e.path
                .strip_prefix("policies/")
                .is_some_and(|n| !n.contains('/') && (n.ends_with(".toml") || n.ends_with(".rego")))
    }) {
        let bytes = gl
            .blob(project, &e.id)
            .await
            .map_err(|err| format!("reading {}: {err:#}", e.path))?;
        files.push(crate::core::model::SourceFile::new(
            e.path.clone(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    Policy::load(&files, POLICY_DIR)
        .map(|p| p.approval_group)
        .map_err(|e| format!("the policy on `{branch}` does not load: {e}"))
}

/// The AWS side: the management account's credentials, and the reads the apply makes.
pub async fn check_aws<A: Aws>(aws: &A) -> Vec<Finding> {
    let mut out = Vec::new();
    match (aws.caller_account_id().await, aws.management_account_id().await) {
        (Ok(me), Ok(mgmt)) if me == mgmt => out.push(ok("AWS identity", format!("the credentials are the management account's ({me})"))),
        (Ok(me), Ok(mgmt)) => out.push(bad("AWS identity", Level::Fail, format!("the credentials are account {me}'s, but the organization's management account is {mgmt}"), "run orgvend with credentials of the management account (docs/apply.md lists the permissions)")),
        (Err(e), _) | (_, Err(e)) => out.push(bad("AWS identity", Level::Fail, format!("{e:#}"), "run orgvend with credentials of the organization's management account")),
    }
    let reads = [
        (
            "organizations:ListAccounts",
            aws.list_accounts().await.map(drop),
        ),
        ("organizations:ListRoots", aws.root_id().await.map(drop)),
        (
            "organizations:ListCreateAccountStatus",
            aws.list_create_requests().await.map(drop),
        ),
    ];
    for (action, result) in reads {
        match result {
            Ok(()) => out.push(ok("AWS permission", format!("{action} answers"))),
            Err(e) => out.push(bad(
                "AWS permission",
                Level::Fail,
                format!("{action}: {e:#}"),
                format!("allow {action} (docs/apply.md lists every action the apply calls)"),
            )),
        }
    }
    out
}

/// IAM Identity Center, for a policy that grants access through it: the instance and its
/// identity store. A warning, not a failure: only a policy with
/// `access.provider = "identity-center"` needs it.
pub async fn check_identity_center(ic: &dyn IdentityCenter) -> Finding {
    match ic.instance().await {
        Ok(i) => ok(
            "Identity Center",
            format!(
                "instance {} with identity store {}",
                i.arn, i.identity_store_id
            ),
        ),
        Err(e) => bad(
            "Identity Center",
            Level::Warn,
            format!("{e:#}"),
            "enable IAM Identity Center in the management account and allow sso:ListInstances (needed when the policy's access.provider is \"identity-center\")",
        ),
    }
}

/// Okta, as `[okta]` reaches it: the credentials (a group search needs a token with
/// `okta.groups.manage`) and the AWS app (its SAML metadata).
pub async fn check_okta(okta: &OktaClient, app_id: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    match okta.group_by_name("orgvend-doctor").await {
        Ok(_) => out.push(ok("Okta credentials", "a group search answers")),
        Err(e) => out.push(bad(
            "Okta credentials",
            Level::Fail,
            format!("{e:#}"),
            "give the service app the scopes okta.groups.manage and okta.apps.manage and its public key, or set ORGVEND_OKTA_TOKEN (docs/serve.md)",
        )),
    }
    match okta.saml_metadata(app_id).await {
        Ok(m) if m.contains("EntityDescriptor") => {
            out.push(ok("Okta app", format!("app {app_id} has SAML metadata")))
        }
        Ok(_) => out.push(bad(
            "Okta app",
            Level::Fail,
            format!("app {app_id} answers without SAML metadata"),
            "set okta.app_id to the AWS Account Federation app's id",
        )),
        Err(e) => out.push(bad(
            "Okta app",
            Level::Fail,
            format!("{e:#}"),
            "set okta.app_id to the AWS Account Federation app's id (Okta admin console: Applications)",
        )),
    }
    out
}

/// The findings for a terminal, with how to fix each.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let mark = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        let _ = writeln!(
            out,
            "{mark} {}: {}",
            f.check,
            crate::core::render::plain(&f.detail)
        );
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "     fix: {}", crate::core::render::plain(fix));
        }
    }
    let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
    let _ = writeln!(
        out,
        "\n{}",
        match failed {
            0 => "orgvend's set-up holds.".to_string(),
            1 => "1 check failed: orgvend's guarantees do not hold until it is fixed.".to_string(),
            n =>
                format!("{n} checks failed: orgvend's guarantees do not hold until they are fixed."),
        }
    );
    out
}

/// 0 when nothing failed, 1 otherwise.
pub fn exit_code(findings: &[Finding]) -> i32 {
    i32::from(findings.iter().any(|f| f.level == Level::Fail))
}
