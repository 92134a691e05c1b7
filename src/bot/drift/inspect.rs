//! Drift inside each declared account and of its GitLab project. What is compared is what a
//! repair would run: the apply's own steps for the account as if it were new and adopted
//! ([`crate::core::plan::repair`]), each read and compared with the same functions the apply
//! uses to decide what to put back — never changed here.

use crate::aws::{Aws, MemberAws};
use crate::bot::Bot;
use crate::bot::apply::steps::{self, ci, repository};
use crate::core::baseline;
use crate::core::drift::{Item, Kind, REPAIR};
use crate::core::plan::{self, Change, Plan, Step, Target};
use crate::core::policy::Policy;
use crate::gitlab::GitLab;
use anyhow::Result;

/// Accounts read at once (each a few IAM, S3 and DynamoDB reads through its own session).
const AT_ONCE: usize = 8;

/// One difference found in an account, before it is named.
struct Found {
    kind: Kind,
    declared: String,
    existing: String,
}

fn found(kind: Kind, declared: impl Into<String>, existing: impl Into<String>) -> Option<Found> {
    Some(Found {
        kind,
        declared: declared.into(),
        existing: existing.into(),
    })
}

fn item(change: &Change, f: Found) -> Item {
    Item {
        kind: f.kind,
        account: change.name.clone(),
        account_id: change.target.as_ref().and_then(|t| t.adopt.clone()),
        at: Some(change.at.to_string()),
        declared: f.declared,
        existing: f.existing,
        fix: REPAIR.into(),
    }
}

fn unreadable(change: &Change, e: &anyhow::Error) -> Item {
    let mut i = item(
        change,
        Found {
            kind: Kind::Unreadable,
            declared: "orgvend reads it".into(),
            existing: format!("{e:#}"),
        },
    );
    i.fix = "let orgvend's role read it (a resource policy, an SCP or GitLab's permissions refuse it); nothing else of it is compared until then".into();
    i
}

/// The differences inside each account of `plan` (a repair plan: every target names its
/// account's id), through the role the apply assumes. `gitlab_url`: the instance keyless CI
/// trusts, when the repository bootstrap is configured.
pub async fn aws_facts<A: Aws>(
    aws: &A,
    policy: &Policy,
    plan: &Plan,
    gitlab_url: Option<&str>,
) -> Result<Vec<Item>> {
    let slots = tokio::sync::Semaphore::new(AT_ONCE);
    let per_account = futures_util::future::join_all(plan.changes.iter().map(|change| {
        let slots = &slots;
        async move {
            let _slot = slots.acquire().await?;
            account_facts(aws, policy, plan, change, gitlab_url).await
        }
    }))
    .await;
    let mut out = Vec::new();
    for (items, change) in per_account.into_iter().zip(&plan.changes) {
        match items {
            Ok(items) => out.extend(items),
            // one account that cannot be read blinds no other
            Err(e) => out.push(unreadable(change, &e)),
        }
    }
    Ok(out)
}

async fn account_facts<A: Aws>(
    aws: &A,
    policy: &Policy,
    plan: &Plan,
    change: &Change,
    gitlab_url: Option<&str>,
) -> Result<Vec<Item>> {
    let Some(t) = &change.target else {
        return Ok(Vec::new());
    };
    let Some(id) = &t.adopt else {
        return Ok(Vec::new());
    };
    let m = match aws.assume(id, &t.role_name).await {
        Ok(m) => m,
        Err(e) => {
            let mut i = item(
                change,
                Found {
                    kind: Kind::Role,
                    declared: format!("orgvend assumes `{}` in the account", t.role_name),
                    existing: format!("it cannot: {e:#}"),
                },
            );
            i.fix = "restore the role from the management account (it is the one the organization created in the account); nothing inside the account can be read or repaired without it".into();
            return Ok(vec![i]);
        }
    };
    let mut out = Vec::new();
    for step in plan.steps(change) {
        if let Some(f) = step_fact(&m, policy, change, t, &step, gitlab_url).await? {
            out.push(item(change, f));
        }
    }
    Ok(out)
}

/// What one step would put back, read only.
async fn step_fact<M: MemberAws>(
    m: &M,
    policy: &Policy,
    change: &Change,
    t: &Target,
    step: &Step,
    gitlab_url: Option<&str>,
) -> Result<Option<Found>> {
    let missing = "missing";
    Ok(match step {
        Step::SetAlias { alias } => match m.alias().await? {
            Some(have) if have == *alias => None,
            have => found(Kind::Alias, alias, have.unwrap_or_else(|| "none".into())),
        },
        Step::SamlProvider { name } => match m.saml_provider(name).await? {
            Some(_) => None,
            None => found(Kind::Saml, name, missing),
        },
        Step::PermissionsBoundary { policy: name } => {
            let want =
                steps::boundary_document(policy, change.account_type.as_deref(), t, m.account_id());
            match m.policy(name).await? {
                None => found(Kind::Boundary, name, missing),
                Some(have) if baseline::same_document(&have.document, &want) => None,
                Some(_) => found(
                    Kind::Boundary,
                    format!("`{name}` as the policy writes it"),
                    "another document (edited by hand, or written by an older policy)",
                ),
            }
        }
        Step::AccessRole {
            name,
            policy_arn,
            bounded,
        } => {
            let trust = baseline::trust_document(m.account_id(), &policy.baseline.saml_provider);
            let boundary = bounded.then(|| {
                baseline::policy_arn(m.account_id(), &policy.baseline.permissions_boundary)
            });
            role_fact(m, Kind::Role, name, &trust, boundary.as_deref(), policy_arn).await?
        }
        Step::StateBucket { .. } => {
            let bucket = steps::state_bucket(policy, t, m.account_id());
            match m.bucket(&bucket).await? {
                None => found(Kind::StateBucket, bucket, missing),
                Some(state) => {
                    let off = steps::bucket_repairs(&state);
                    (!off.is_empty()).then(|| Found {
                        kind: Kind::StateBucket,
                        declared: format!(
                            "`{bucket}`: versioned, encrypted, public access blocked"
                        ),
                        existing: format!("without {}", off.join(", ")),
                    })
                }
            }
        }
        Step::LockTable { table } => match m.table_exists(table).await? {
            true => None,
            false => found(Kind::LockTable, table, missing),
        },
        Step::CiOidcProvider => match gitlab_url {
            Some(url) => {
                let url = url.trim_end_matches('/');
                match m.oidc_provider(url).await? {
                    Some(_) => None,
                    None => found(Kind::Oidc, url, missing),
                }
            }
            None => None,
        },
        Step::CiRole { name, purpose } => match gitlab_url {
            Some(url) => {
                let project = plan::project_path(&policy.repository, t);
                let trust = baseline::ci_trust_document(m.account_id(), url, &project, purpose);
                let (managed, boundary) = ci::ci_role_policies(policy, purpose, m.account_id());
                role_fact(m, Kind::CiRole, name, &trust, boundary.as_deref(), managed).await?
            }
            None => None,
        },
        _ => None,
    })
}

async fn role_fact<M: MemberAws>(
    m: &M,
    kind: Kind,
    name: &str,
    trust: &str,
    boundary: Option<&str>,
    managed: &str,
) -> Result<Option<Found>> {
    Ok(match m.role(name).await? {
        None => found(kind, name, "missing"),
        Some(state) => {
            let off = steps::role_repairs(&state, trust, boundary, managed);
            (!off.is_empty()).then(|| Found {
                kind,
                declared: format!("`{name}` as the policy makes it"),
                existing: format!("its {} differ", off.join(", ")),
            })
        }
    })
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// The differences of each account's GitLab project: missing, master's protection, the
    /// CI/CD variables orgvend sets. Nothing without the repository bootstrap.
    pub(crate) async fn gitlab_facts(&self, policy: &Policy, plan: &Plan) -> Result<Vec<Item>> {
        let Some(b) = &self.bootstrap else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for change in &plan.changes {
            match self.project_facts(b, policy, change).await {
                Ok(items) => out.extend(items),
                Err(e) => out.push(unreadable(change, &e)),
            }
        }
        Ok(out)
    }

    /// One account's project.
    async fn project_facts(
        &self,
        b: &repository::Bootstrap,
        policy: &Policy,
        change: &Change,
    ) -> Result<Vec<Item>> {
        let gl = &self.gitlab;
        let mut out = Vec::new();
        {
            let (Some(t), Some(id)) = (
                &change.target,
                change.target.as_ref().and_then(|t| t.adopt.clone()),
            ) else {
                return Ok(out);
            };
            let a = repository::RepoAccount::of(policy, t, change.account_type.as_deref(), &id);
            let path = a.project_path.as_str();
            if gl.project(path).await?.is_none() {
                out.push(item(
                    change,
                    Found {
                        kind: Kind::Project,
                        declared: path.to_string(),
                        existing: "missing".into(),
                    },
                ));
                return Ok(out);
            }
            let want = repository::master_protection();
            match gl.protected_branch(path, "master").await? {
                Some(p) if p == want => {}
                have => out.push(item(
                    change,
                    Found {
                        kind: Kind::Protection,
                        declared: format!("master of `{path}`: {}", protection_text(&want)),
                        existing: have.map_or("unprotected".into(), |p| protection_text(&p)),
                    },
                )),
            }
            let mut off = Vec::new();
            for v in b.variables(&a) {
                match gl.variable(path, &v.key).await? {
                    Some(have)
                        if have.value == v.value
                            && have.protected == v.protected
                            && have.masked == v.masked => {}
                    Some(_) => off.push(format!("{} (changed)", v.key)),
                    None => off.push(format!("{} (missing)", v.key)),
                }
            }
            if !off.is_empty() {
                out.push(item(
                    change,
                    Found {
                        kind: Kind::Variables,
                        declared: format!("the CI/CD variables orgvend sets on `{path}`"),
                        existing: off.join(", "),
                    },
                ));
            }
        }
        Ok(out)
    }
}

/// Who may push and merge, in words (GitLab's access levels).
fn protection_text(p: &crate::gitlab::Protection) -> String {
    let levels = |l: &[u32]| {
        if l.is_empty() {
            return "nobody".to_string();
        }
        l.iter()
            .map(|n| match n {
                0 => "no one".to_string(),
                30 => "developers".to_string(),
                40 => "maintainers".to_string(),
                60 => "admins".to_string(),
                n => format!("level {n}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "push: {}; merge: {}; force push {}",
        levels(&p.push),
        levels(&p.merge),
        if p.allow_force_push {
            "allowed"
        } else {
            "refused"
        }
    )
}
