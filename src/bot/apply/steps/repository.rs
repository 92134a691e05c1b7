//! Each new account's own GitLab repository: created in the policy's namespace, committed
//! from the templates, master protected, CI/CD variables set. Every step reads before it
//! writes, like the AWS steps, so a step that ran is a no-op the second time and a setting
//! someone changed by hand (master unprotected, a variable edited) is put back.

use super::super::context::{AccountRun, RunCtx};
use super::super::{Applier, Terminal};
use crate::aws::Aws;
use crate::bot::Bot;
use crate::core::plan::{self as core_plan, Step, Target};
use crate::core::policy::Policy;
use crate::core::template::{AccountVars, RepoVars, Templates};
use crate::gitlab::client::GitlabError;
use crate::gitlab::{CiVariable, GitLab, NewProject, Project, Protection};
use anyhow::{Context, Result, anyhow};
use std::path::Path;

/// GitLab access levels.
const NO_ONE: u32 = 0;
const MAINTAINERS: u32 = 40;

/// How account repositories are made (from the service config).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The GitLab instance, as CI ID tokens name it (`iss`, and the audience orgvend sets).
    pub gitlab_url: String,
    /// AWS region of the state bucket and of the account's provider.
    pub region: String,
    /// `private` or `internal`.
    pub visibility: String,
    pub templates: Templates,
}

/// What the repository steps know of one account.
#[derive(Debug, Clone)]
pub struct RepoAccount<'a> {
    pub target: &'a Target,
    pub kind: String,
    pub account_id: String,
    pub state_bucket: String,
    pub lock_table: String,
    /// `group/path` of the account's project.
    pub project_path: String,
    /// Whether the account has keyless CI, and its roles' names.
    pub ci_roles: Option<(String, String)>,
}

impl<'a> RepoAccount<'a> {
    /// What the policy gives the account `account_id` declared as `target`.
    pub fn of(
        policy: &Policy,
        target: &'a Target,
        kind: Option<&str>,
        account_id: &str,
    ) -> RepoAccount<'a> {
        let repo = &policy.repository;
        RepoAccount {
            target,
            kind: kind.unwrap_or_default().to_string(),
            account_id: account_id.to_string(),
            state_bucket: super::state_bucket(policy, target, account_id),
            lock_table: policy.baseline.lock_table.clone(),
            project_path: core_plan::project_path(repo, target),
            ci_roles: repo
                .keyless_ci
                .then(|| (repo.plan_role.clone(), repo.apply_role.clone())),
        }
    }
}

/// The result of a repository step: a ledger detail, and the project's web address once
/// known (for the MR note).
#[derive(Debug, Default)]
pub struct RepoOutcome {
    pub detail: Option<String>,
    pub link: Option<String>,
}

/// Master as orgvend leaves it: nobody pushes, maintainers merge, no force pushes.
pub fn master_protection() -> Protection {
    Protection {
        push: vec![NO_ONE],
        merge: vec![MAINTAINERS],
        allow_force_push: false,
    }
}

impl Bootstrap {
    /// From the service config; reads and compiles a templates directory if one is named.
    pub fn from_config(
        c: &crate::config::BootstrapConfig,
        gitlab_url: &str,
        region: &str,
    ) -> Result<Bootstrap> {
        let templates = match &c.templates_dir {
            Some(dir) => templates_from_dir(dir).context("bootstrap.templates_dir")?,
            None => Templates::embedded(),
        };
        Ok(Bootstrap {
            gitlab_url: c
                .oidc_issuer
                .as_deref()
                .unwrap_or(gitlab_url)
                .trim_end_matches('/')
                .to_string(),
            region: region.to_string(),
            visibility: c.visibility.clone(),
            templates,
        })
    }

    pub fn vars(&self, a: &RepoAccount<'_>, project_url: &str) -> RepoVars {
        let arn = |role: &str| format!("arn:aws:iam::{}:role/{role}", a.account_id);
        let (plan, apply) = match &a.ci_roles {
            Some((p, ap)) => (arn(p), arn(ap)),
            None => (String::new(), String::new()),
        };
        RepoVars {
            account: AccountVars {
                name: a.target.name.clone(),
                id: a.account_id.clone(),
                alias: a.target.alias.clone(),
                email: a.target.email.clone(),
                kind: a.kind.clone(),
                ou: a.target.ou.clone(),
                owner: a.target.tags.get("owner").cloned().unwrap_or_default(),
                tags: a.target.tags.to_map(),
            },
            state_bucket: a.state_bucket.clone(),
            lock_table: a.lock_table.clone(),
            region: self.region.clone(),
            project_path: a.project_path.clone(),
            project_url: project_url.to_string(),
            gitlab_url: self.gitlab_url.trim_end_matches('/').to_string(),
            keyless_ci: a.ci_roles.is_some(),
            plan_role_arn: plan,
            apply_role_arn: apply,
        }
    }

    /// The CI/CD variables of the account's project. None is secret (keyless CI needs no
    /// keys); the apply role's ARN is protected, so only pipelines of protected branches
    /// (master) see it.
    pub fn variables(&self, a: &RepoAccount<'_>) -> Vec<CiVariable> {
        let var = |key: &str, value: String, protected: bool| CiVariable {
            key: key.into(),
            value,
            protected,
            masked: false,
        };
        let mut vars = vec![
            var("AWS_ACCOUNT_ID", a.account_id.clone(), false),
            var("AWS_DEFAULT_REGION", self.region.clone(), false),
            var("TF_STATE_BUCKET", a.state_bucket.clone(), false),
            var("TF_LOCK_TABLE", a.lock_table.clone(), false),
        ];
        if let Some((plan, apply)) = &a.ci_roles {
            let arn = |role: &str| format!("arn:aws:iam::{}:role/{role}", a.account_id);
            vars.push(var("AWS_PLAN_ROLE_ARN", arn(plan), false));
            vars.push(var("AWS_APPLY_ROLE_ARN", arn(apply), true));
        }
        vars
    }
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// The account's GitLab project, its template, its protected master and CI variables.
    pub(super) async fn exec_repository(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let aws = &applier.aws;
        match step {
            Step::GitlabProject { .. }
            | Step::CommitTemplate
            | Step::ProtectMaster
            | Step::CiVariables => {
                let Some(b) = &self.bootstrap else {
                    return Ok(Some(super::not_configured(step)));
                };
                let account_id = self.account_id_of(aws, cx, run).await?;
                let target = run
                    .change
                    .target
                    .as_ref()
                    .ok_or_else(|| anyhow!("no target for {}", run.change.name))?;
                let account = RepoAccount::of(
                    policy,
                    target,
                    run.change.account_type.as_deref(),
                    &account_id,
                );
                let out = self.bootstrap_step(b, &account, step).await?;
                if let Some(link) = out.link {
                    cx.report.lock().expect("report lock").accounts[run.index].repository =
                        Some(link);
                }
                Ok(out.detail)
            }
            Step::ArchiveProject { path } => {
                if self.bootstrap.is_none() {
                    return Ok(Some(super::not_configured(step)));
                }
                let me = self.bot_id().await?;
                Ok(Some(match self.gitlab.project(path).await? {
                    None => "no project: nothing to archive".into(),
                    Some(p) if p.creator_id != Some(me) => {
                        format!("skipped: `{path}` is not orgvend's project: left as it is")
                    }
                    Some(p) if p.archived => "archived before".into(),
                    Some(_) => {
                        self.gitlab.archive_project(path).await?;
                        "archived".into()
                    }
                }))
            }
            other => Err(anyhow!("not a step of this area: {}", other.key())),
        }
    }

    /// One repository step of one account.
    pub(crate) async fn bootstrap_step(
        &self,
        b: &Bootstrap,
        a: &RepoAccount<'_>,
        step: &Step,
    ) -> Result<RepoOutcome> {
        let gl = &self.gitlab;
        let path = a.project_path.as_str();
        match step {
            Step::GitlabProject {
                namespace,
                path: name,
            } => {
                if !core_plan::valid_project_path(path) {
                    return Err(Terminal(format!("`{path}` is not a GitLab project path orgvend will use (letters, digits, `.`, `_`, `-` and `/` only): fix repository.path or the account's name")).into());
                }
                if let Some(p) = gl.project(path).await? {
                    return self.ours(p).await;
                }
                let group = gl.group(namespace).await?.ok_or_else(|| {
                    Terminal(format!(
                        "the GitLab group `{namespace}` does not exist or orgvend's token cannot see it: create it (or fix repository.namespace in the policy), then `/orgvend retry`"
                    ))
                })?;
                let created = gl
                    .create_project(&NewProject {
                        namespace_id: group.id,
                        namespace: namespace.clone(),
                        path: name.clone(),
                        name: name.clone(),
                        description: format!(
                            "Terraform of the AWS account {} ({}), created by orgvend",
                            a.target.name, a.account_id
                        ),
                        visibility: b.visibility.clone(),
                    })
                    .await;
                match created {
                    // after a lost answer the client may have found the project at the path:
                    // it is taken only if orgvend created it
                    Ok(p) if p.creator_id == Some(self.bot_id().await?) => Ok(found(p, "created")),
                    Ok(p) => self.ours(p).await,
                    // Someone created it meanwhile (the client itself looks again after an
                    // ambiguous failure): look again, and take it only if it is ours.
                    Err(e) => match gl.project(path).await? {
                        Some(p) => self.ours(p).await,
                        None => Err(e.context(format!("creating the project {path}"))),
                    },
                }
            }
            Step::CommitTemplate => {
                let project = self.account_project(path).await?;
                let link = Some(project.web_url.clone());
                let branch = project.default_branch.as_deref().unwrap_or("master");
                let files = b
                    .templates
                    .render(&b.vars(a, &project.web_url))
                    .context("rendering the account repository's templates")?;
                let existing = self.branch_files(path, branch).await?;
                // The template is committed once: a repository that has any of its files
                // (other than the README GitLab created) belongs to its engineers now.
                let ours = files
                    .iter()
                    .filter(|(p, _)| p != "README.md")
                    .any(|(p, _)| existing.contains(p));
                if ours {
                    return Ok(RepoOutcome {
                        detail: Some("committed before".into()),
                        link,
                    });
                }
                let actions: Vec<(String, String, bool)> = files
                    .into_iter()
                    .map(|(p, text)| {
                        let exists = existing.contains(&p);
                        (p, text, exists)
                    })
                    .collect();
                let message = format!(
                    "Account {} ({}): initial Terraform from orgvend",
                    a.target.name, a.account_id
                );
                // (after an ambiguous failure, the client looks for the files before it
                // commits again)
                gl.commit_files(path, branch, &message, &actions)
                    .await
                    .with_context(|| format!("committing the template to {path}"))?;
                Ok(RepoOutcome {
                    detail: Some(format!("{} files", actions.len())),
                    link,
                })
            }
            Step::ProtectMaster => {
                let want = master_protection();
                let detail = match gl.protected_branch(path, "master").await? {
                    Some(p) if p == want => "protected",
                    Some(_) => {
                        // GitLab's default protection, or someone loosened it: replace it.
                        gl.unprotect_branch(path, "master").await?;
                        self.protect(path, &want).await?;
                        "protection replaced"
                    }
                    None => {
                        self.protect(path, &want).await?;
                        "protected now"
                    }
                };
                Ok(RepoOutcome {
                    detail: Some(detail.into()),
                    link: None,
                })
            }
            Step::CiVariables => {
                let mut changed = Vec::new();
                for v in b.variables(a) {
                    match gl.variable(path, &v.key).await? {
                        Some(have)
                            if have.value == v.value
                                && have.protected == v.protected
                                && have.masked == v.masked => {}
                        Some(_) => {
                            gl.set_variable(path, &v, true).await?;
                            changed.push(v.key);
                        }
                        None => {
                            gl.set_variable(path, &v, false).await?;
                            changed.push(v.key);
                        }
                    }
                }
                Ok(RepoOutcome {
                    detail: (!changed.is_empty()).then(|| format!("set {}", changed.join(", "))),
                    link: None,
                })
            }
            other => Err(anyhow!("not a repository step: {}", other.key())),
        }
    }

    /// An existing project at the account's path: orgvend's own (its creator), or a
    /// terminal failure. orgvend never takes over a project someone else made: the account's
    /// CI roles would trust that project's pipelines.
    async fn ours(&self, p: Project) -> Result<RepoOutcome> {
        let me = self.bot_id().await?;
        if p.creator_id == Some(me) {
            return Ok(found(p, "exists"));
        }
        let by = p
            .creator_id
            .map(|c| format!("by user {c}"))
            .unwrap_or_else(|| "by someone GitLab does not name".into());
        Err(Terminal(format!(
            "a project already exists at {}, created {by}, not by orgvend; orgvend never takes over a project it did not create (the account's CI roles would trust it): move or delete it, or change repository.path in the policy, then `/orgvend retry`",
            p.path_with_namespace
        ))
        .into())
    }

    async fn account_project(&self, path: &str) -> Result<Project> {
        self.gitlab
            .project(path)
            .await?
            .ok_or_else(|| anyhow!("the project {path} does not exist (yet)"))
    }

    /// The file paths on a branch; none when the branch does not exist yet.
    async fn branch_files(&self, path: &str, branch: &str) -> Result<Vec<String>> {
        match self.gitlab.tree(path, branch).await {
            Ok(entries) => Ok(entries.into_iter().map(|e| e.path).collect()),
            Err(e)
                if e.chain().any(|c| {
                    c.downcast_ref::<GitlabError>()
                        .is_some_and(|g| g.status == Some(404))
                }) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Protects master; on a 409 (protected meanwhile, by instance defaults) checks and
    /// replaces what is there.
    async fn protect(&self, path: &str, want: &Protection) -> Result<()> {
        if self.gitlab.protect_branch(path, "master", want).await? {
            return Ok(());
        }
        if self.gitlab.protected_branch(path, "master").await?.as_ref() != Some(want) {
            self.gitlab.unprotect_branch(path, "master").await?;
            if !self.gitlab.protect_branch(path, "master", want).await? {
                anyhow::bail!(
                    "master of {path} keeps being protected by someone else: look at its protected branches"
                );
            }
        }
        Ok(())
    }
}

fn found(p: Project, how: &str) -> RepoOutcome {
    RepoOutcome {
        detail: Some(format!("{how}: {}", p.path_with_namespace)),
        link: Some(p.web_url),
    }
}

/// Every `*.j2` under `dir` (subdirectories included); the output path is the relative path
/// without `.j2`. Fails on a template that does not compile, with its line.
pub fn templates_from_dir(dir: &Path) -> Result<Templates> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)
        .with_context(|| format!("reading templates from {}", dir.display()))?;
    if files.is_empty() {
        anyhow::bail!("no *.j2 templates in {}", dir.display());
    }
    Templates::compile(files)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(root, &path, out)?;
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        if let Some(output) = rel.strip_suffix(".j2") {
            let source = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            out.push((output.to_string(), source));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::template::tests::vars;

    #[test]
    fn a_directory_of_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("modules")).unwrap();
        std::fs::write(
            dir.path().join("main.tf.j2"),
            "# {{ account.name | comment }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("modules/x.tf.j2"),
            "locals { id = {{ account.id }} }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a template").unwrap();
        let t = templates_from_dir(dir.path()).unwrap();
        assert_eq!(t.files(), ["main.tf", "modules/x.tf"]);
        let files = t.render(&vars()).unwrap();
        assert_eq!(files[1].1, "locals { id = \"123456789012\" }\n");
        let empty = tempfile::tempdir().unwrap();
        assert!(templates_from_dir(empty.path()).is_err());
    }
}
