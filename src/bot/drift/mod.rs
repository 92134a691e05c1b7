//! Drift on a schedule: once per `[drift] interval_seconds` (over all replicas, as a delivery
//! of the inbox), the target branch's head is compared with the organization
//! (`core::drift`), and one GitLab issue on the subaccounts project says what differs: opened when drift appears, edited in place,
//! closed when there is none. `orgvend_drift_items{kind}` follows each run.

/// Inside each account, and its GitLab project.
pub mod inspect;

use crate::aws::Aws;
use crate::bot::Bot;
use crate::bot::policy::Rules;
use crate::core::decl;
use crate::core::drift::{self, Item, Kind};
use crate::core::request::import::Existing;
use crate::gitlab::event::{DRIFT_KEY, DRIFT_KIND};
use crate::gitlab::{GitLab, NewIssue};
use crate::store::NewDelivery;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, VecDeque};

/// What a drift run found, and what a repair needs of it.
pub(crate) struct Survey {
    /// The target branch's head.
    pub(crate) sha: String,
    pub(crate) policy: crate::core::policy::Policy,
    pub(crate) existing: Vec<Existing>,
    pub(crate) items: Vec<Item>,
    /// Every declared account that exists and is active, as a repair would run it.
    pub(crate) plan: crate::core::plan::Plan,
    /// Declarations (by index) that differ from what was last applied under approval.
    pub(crate) unapplied: Vec<usize>,
}

/// The drift issue's title.
pub const TITLE: &str = "orgvend: the organization differs from its declarations";

/// The organization's accounts (with their OU paths and tags) and the management account.
pub async fn organization<A: Aws>(aws: &A) -> Result<(Vec<Existing>, String)> {
    let management = aws
        .management_account_id()
        .await
        .context("reading the organization")?;
    let root = aws.root_id().await.context("reading the root")?;
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    paths.insert(root.clone(), "/".into());
    let mut todo = VecDeque::from([(root, String::new())]);
    while let Some((id, path)) = todo.pop_front() {
        for (child, name) in aws.child_ous(&id).await.context("listing OUs")? {
            let p = format!("{path}/{name}");
            paths.insert(child.clone(), p.clone());
            todo.push_back((child, p));
        }
    }
    let mut out = Vec::new();
    for a in aws.list_accounts().await.context("listing accounts")? {
        let parent = aws.parent_of(&a.id).await?;
        let tags = aws.account_tags(&a.id).await?;
        out.push(Existing {
            ou: paths.get(&parent).cloned().unwrap_or_else(|| "/".into()),
            tags: tags.into_iter().collect(),
            id: a.id,
            name: a.name,
            email: a.email,
            status: a.status,
            pending_email: None,
        });
    }
    Ok((out, management))
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// On the reconcile timer: a drift run queued when one is due. It is a delivery like any
    /// other (ordered, leased, retried; its AWS calls and GitLab writes held by its lease),
    /// one per period over all replicas (the period is its dedup key). Without `[aws]` there
    /// is no organization to read. Returns whether one was queued.
    pub async fn drift_if_due(&self) -> Result<bool> {
        let every = self.ctx.config.drift.interval_seconds;
        if every == 0 || self.applier.is_none() {
            return Ok(false);
        }
        let now = self.ctx.clock.now_ms();
        let period = now / (every as i64 * 1000);
        let headers =
            serde_json::json!({ crate::bot::inbox::CLI_HEADER: crate::bot::inbox::TIMER });
        let inserted = self
            .ctx
            .store
            .insert(NewDelivery {
                dedup_key: format!("drift:{period}"),
                received_at_ms: now,
                event_name: "orgvend drift".into(),
                kind: "drift".into(),
                action: "run".into(),
                ordering_key: Some(DRIFT_KEY.into()),
                ignored: None,
                headers: headers.to_string(),
                body: serde_json::json!({ "object_kind": DRIFT_KIND })
                    .to_string()
                    .into(),
            })
            .await?;
        Ok(matches!(inserted, crate::store::Inserted::New(_)))
    }

    /// Compares the target branch's head with the organization now, keeps the drift issue
    /// up to date and the metric set; returns the differences.
    pub async fn drift_now(&self) -> Result<Vec<Item>> {
        let Some(survey) = self.survey().await? else {
            return Ok(Vec::new());
        };
        let mut counts: BTreeMap<String, u64> = Kind::ALL
            .iter()
            .map(|k| (k.name().to_string(), 0))
            .collect();
        for i in &survey.items {
            *counts.entry(i.kind.name().to_string()).or_default() += 1;
        }
        self.ctx.metrics.drift(counts);
        self.drift_issue(&survey.items, &survey.sha).await?;
        tracing::info!(
            items = survey.items.len(),
            sha = crate::bot::short(&survey.sha),
            "drift checked"
        );
        Ok(survey.items)
    }

    /// The target branch's head against the organization, the accounts and their projects;
    /// `None` when there is nothing to compare (no `[aws]`, a policy not in force, Terraform
    /// that does not parse).
    pub(crate) async fn survey(&self) -> Result<Option<Survey>> {
        let Some(applier) = &self.applier else {
            return Ok(None);
        };
        let Some((sha, policy)) = self.head_policy().await? else {
            return Ok(None);
        };
        let tree = self.tree(&sha).await?;
        let files = self.read_files(&tree, decl::is_terraform_file).await?;
        let (mut have, management) = organization(&applier.aws).await?;
        // email changes started by an apply and awaiting their code
        for e in &mut have {
            e.pending_email = self
                .ctx
                .store
                .state(&format!("email-pending:{}", e.id))
                .await?
                .filter(|p| !p.eq_ignore_ascii_case(&e.email));
        }
        let judged = crate::bot::off_runtime(move || {
            let decls = decl::read(&files, &policy.sources);
            if !decls.parse_errors.is_empty() {
                return None;
            }
            let items = drift::drift(&policy, &decls, &have, &management);
            let plan = crate::core::plan::repair(&policy, &decls, &drift::present(&decls, &have));
            Some((policy, decls, have, items, plan))
        })
        .await;
        let Some((policy, decls, existing, mut items, plan)) = judged else {
            tracing::warn!("drift not checked: the target branch's Terraform does not parse");
            return Ok(None);
        };
        // Declarations that differ from what was last applied under approval.
        let mut unapplied = Vec::new();
        for c in &plan.changes {
            let Some(d) = c.head.and_then(|h| decls.accounts.get(h)) else {
                continue;
            };
            let id = c
                .target
                .as_ref()
                .and_then(|t| t.adopt.as_deref())
                .unwrap_or_default();
            if let Some(approved) = self.approved_digest(id).await?
                && approved != d.declared_digest()
            {
                unapplied.push(c.head.unwrap_or_default());
                items.push(Item {
                    kind: Kind::Unapplied,
                    account: c.name.clone(),
                    account_id: c.target.as_ref().and_then(|t| t.adopt.clone()),
                    at: Some(c.at.to_string()),
                    declared: "the declaration on the target branch".into(),
                    existing: "what was last applied under approval differs from it".into(),
                    fix: "its last change was not applied through: a merge the gate refused, an apply that failed or is still running (`/orgvend retry` on its MR), or a push; settle it in an MR. Until then it is not repaired".into(),
                });
            }
        }
        let gitlab_url = self.bootstrap.as_ref().map(|b| b.gitlab_url.as_str());
        items.extend(inspect::aws_facts(&applier.aws, &policy, &plan, gitlab_url).await?);
        items.extend(self.gitlab_facts(&policy, &plan).await?);
        items.sort_by(|a, b| (&a.account, a.kind).cmp(&(&b.account, b.kind)));
        Ok(Some(Survey {
            sha,
            policy,
            existing,
            items,
            plan,
            unapplied,
        }))
    }

    /// The target branch's head and the policy in force there; `None` (and a warning) when
    /// it is not in force.
    pub(crate) async fn head_policy(
        &self,
    ) -> Result<Option<(String, crate::core::policy::Policy)>> {
        let project = self.project();
        let target = self.target_branch().await?;
        let sha = self.gitlab.commit(&project, &target).await?.id;
        let tree = self.tree(&sha).await?;
        match self.rules(&tree, &sha, &tree).await? {
            Rules::InForce(p) => Ok(Some((sha, p))),
            _ => {
                tracing::warn!(
                    sha = crate::bot::short(&sha),
                    "drift not checked: the target branch's policy is not in force"
                );
                Ok(None)
            }
        }
    }

    /// The open drift issue (orgvend's label and title), if any.
    async fn open_drift_issue(&self) -> Result<Option<crate::gitlab::Issue>> {
        let bot = self.bot_id().await?;
        Ok(self
            .gitlab
            .issues(&self.project(), &self.ctx.config.drift.label)
            .await
            .context("looking for the drift issue")?
            .into_iter()
            .find(|i| i.title == TITLE && i.author.id == bot))
    }

    /// The open drift issue's number.
    pub(crate) async fn drift_issue_iid(&self) -> Result<Option<u64>> {
        Ok(self.open_drift_issue().await?.map(|i| i.iid))
    }

    /// The one drift issue: opened when drift appears, edited in place, closed when clean.
    async fn drift_issue(&self, items: &[Item], sha: &str) -> Result<()> {
        let project = self.project();
        let label = &self.ctx.config.drift.label;
        let open = self.open_drift_issue().await?;
        if items.is_empty() {
            if let Some(issue) = open {
                self.gitlab.close_issue(&project, issue.iid).await?;
            }
            return Ok(());
        }
        let table = drift::markdown(items);
        let body = format!(
            "{table}\n\nAs of `{}` on the target branch, {}. The declarations are what orgvend applies: fix AWS to match them, or change them in a merge request.",
            crate::bot::short(sha),
            crate::clock::format_utc(self.ctx.clock.now_ms())
        );
        match open {
            // the same differences: left as it is (no edit, no notification)
            Some(issue)
                if issue
                    .description
                    .as_deref()
                    .is_some_and(|d| d.starts_with(&table)) =>
            {
                Ok(())
            }
            // whoever took the issue keeps it
            Some(issue) => {
                let assignees: Vec<u64> = issue.assignees.iter().map(|u| u.id).collect();
                self.gitlab
                    .update_issue(&project, issue.iid, &body, &assignees)
                    .await
            }
            None => self
                .gitlab
                .create_issue(
                    &project,
                    &NewIssue {
                        title: TITLE.into(),
                        description: body,
                        labels: vec![label.clone()],
                        assignee_ids: Vec::new(),
                    },
                )
                .await
                .map(drop),
        }
    }
}
