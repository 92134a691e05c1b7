//! Apply on merge: make AWS match what the merge commit declares, exactly once.
//!
//! 1. **Gate**: re-read the MR; judge the merge commit against the policy of the target branch
//!    *before* the merge (the merge's first parent) and against the approvals the API shows.
//!    Refuse — in the note and in an alert log line — when the change breaks policy, lacks the
//!    required Infrastructure approvals, or changed the policy it would be judged by.
//! 2. **Reconcile, not replay**: every step of every changed account checks what exists before
//!    it changes anything, so a second apply makes no mutating call.
//! 3. **Ledger**: each step records its intent before the AWS call and its result after;
//!    CreateAccount's request id is stored the moment AWS returns it. Without one, the account
//!    is looked for by email (ListAccounts) and by name among requests in flight
//!    (ListCreateAccountStatus) before any new CreateAccount.
//!
//! Applies are serialised per organisation; creations run concurrently up to AWS's limit.

use crate::aws::{self, Aws, CreateState, MemberAws, NewAccount, OrgAccount};
use crate::baseline;
use crate::config::AwsConfig;
use crate::decl;
use crate::gitlab::{GitLab, MergeRequest};
use crate::plan::{Action, Change, Plan, Step};
use crate::policy::Policy;
use crate::report::{self, AssessInput, Verdict};
use crate::review::{Bot, POLICY_DIR, decide_approvals, in_policy_dir, mr_facts};
use crate::store::{ApplyRun, KnownAccount};
use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts of one step when AWS throttles or fails transiently, and the first wait.
const STEP_ATTEMPTS: u32 = 4;
const STEP_RETRY_BASE: Duration = Duration::from_millis(200);

/// Everything the apply needs besides the bot: the AWS client and its settings.
pub struct Applier<A> {
    pub aws: A,
    pub settings: ApplySettings,
    /// One apply at a time per organization.
    lock: tokio::sync::Mutex<()>,
}

impl<A: Aws> Applier<A> {
    pub fn new(aws: A, settings: ApplySettings) -> Applier<A> {
        Applier {
            aws,
            settings,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApplySettings {
    pub saml_metadata: String,
    pub create_timeout: Duration,
    pub max_creations: usize,
    pub poll: Duration,
    pub assume_timeout: Duration,
}

impl ApplySettings {
    /// Reads the SAML metadata file named in the config and checks that it is metadata.
    pub fn from_config(c: &AwsConfig) -> Result<ApplySettings> {
        let metadata = std::fs::read_to_string(&c.saml_metadata_file).with_context(|| {
            format!(
                "reading aws.saml_metadata_file {}",
                c.saml_metadata_file.display()
            )
        })?;
        anyhow::ensure!(
            metadata.contains("EntityDescriptor"),
            "{} is not SAML metadata (no EntityDescriptor)",
            c.saml_metadata_file.display()
        );
        Ok(ApplySettings {
            saml_metadata: metadata,
            create_timeout: Duration::from_secs(c.create_timeout_seconds),
            max_creations: c.max_concurrent_creations,
            poll: Duration::from_millis(c.poll_interval_ms),
            assume_timeout: Duration::from_secs(c.assume_role_timeout_seconds),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    /// Not done by orgvend (with the reason in the account's note).
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountProgress {
    pub action: Action,
    pub name: String,
    pub email: String,
    pub account_id: Option<String>,
    pub steps: Vec<(Step, StepState)>,
    pub error: Option<String>,
    pub notes: Vec<String>,
    /// The account's GitLab project, once it exists.
    pub repository: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    Running,
    Applied,
    /// `retrying`: orgvend tries again by itself; otherwise `/orgvend retry` after a fix.
    Failed {
        retrying: bool,
    },
    Refused {
        reasons: Vec<String>,
    },
}

/// What the MR's note shows during and after the apply.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub outcome: Outcome,
    pub merge_sha: String,
    pub merged_by: Option<String>,
    pub approved_by: Vec<String>,
    pub accounts: Vec<AccountProgress>,
}

/// The ledger's name of a step.
pub fn step_key(step: &Step) -> String {
    match step {
        Step::AccessRole { name, .. } => format!("access_role:{name}"),
        Step::CiRole { name, .. } => format!("ci_role:{name}"),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("step").and_then(|s| s.as_str()).map(str::to_string))
            .unwrap_or_else(|| "step".into()),
    }
}

/// How a step failed: `retryable` failures are tried again by orgvend itself.
#[derive(Debug)]
struct StepFailure {
    message: String,
    retryable: bool,
}

fn failure(e: anyhow::Error) -> StepFailure {
    StepFailure {
        retryable: aws::is_retryable(&e)
            || !e.chain().any(|c| c.downcast_ref::<Terminal>().is_some()),
        message: format!("{e:#}"),
    }
}

/// A failure trying again cannot fix (an email AWS already knows, an alias taken).
#[derive(Debug)]
pub(crate) struct Terminal(pub String);

impl std::fmt::Display for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Terminal {}

/// One account's way through its steps.
struct AccountRun<'a> {
    index: usize,
    change: &'a Change,
    steps: Vec<Step>,
    email: String,
    account_id: Option<String>,
}

/// Shared by the account runs of one apply.
struct RunCtx<'a, M> {
    mr: &'a MergeRequest,
    merge_sha: &'a str,
    report: Mutex<ApplyReport>,
    creations: tokio::sync::Semaphore,
    org_accounts: tokio::sync::Mutex<Option<Vec<OrgAccount>>>,
    ous: tokio::sync::Mutex<HashMap<String, String>>,
    members: tokio::sync::Mutex<HashMap<String, std::sync::Arc<M>>>,
    last_note: Mutex<Option<Instant>>,
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Applies a merged MR: the gate, then the reconciliation, with progress in the note.
    pub async fn apply(&self, iid: u64) -> Result<()> {
        let Some(applier) = &self.applier else {
            tracing::info!(
                mr = iid,
                "merged, but applying is not configured ([aws] in orgvend.toml)"
            );
            return Ok(());
        };
        let project = self.project();
        let mr = self
            .gitlab
            .merge_request(&project, iid)
            .await
            .context("reading the merge request")?;
        if mr.state != "merged" {
            tracing::info!(mr = iid, state = mr.state, "not merged: nothing to apply");
            return Ok(());
        }
        let merge_sha = mr
            .landed_sha()
            .ok_or_else(|| anyhow!("the merged MR names no commit"))?
            .to_string();
        let _org = applier.lock.lock().await;
        // and across replicas sharing a PostgreSQL store
        let _replicas = self.ctx.store.apply_lock().await?;
        tracing::info!(mr = iid, merge = %merge_sha, "applying");

        let gate = self.gate(&mr, &merge_sha).await?;
        let started = self.ctx.clock.now_ms();
        let previous = self.ctx.store.apply_run(&merge_sha).await?;
        let mut run = ApplyRun {
            merge_sha: merge_sha.clone(),
            project: project.clone(),
            iid,
            decision: "running".into(),
            reason: None,
            facts: gate.facts.to_string(),
            started_at_ms: previous
                .as_ref()
                .map(|p| p.started_at_ms)
                .unwrap_or(started),
            finished_at_ms: None,
        };
        let mut report = ApplyReport {
            outcome: Outcome::Running,
            merge_sha: merge_sha.clone(),
            merged_by: mr.merged_by.as_ref().map(|u| u.username.clone()),
            approved_by: gate.counted.clone(),
            accounts: Vec::new(),
        };
        if !gate.refusals.is_empty() {
            tracing::error!(
                alert = true,
                mr = iid,
                merge = %merge_sha,
                merged_by = report.merged_by.as_deref().unwrap_or("?"),
                reasons = %gate.refusals.join("; "),
                "ALERT: a merged MR was NOT applied"
            );
            run.decision = "refused".into();
            run.reason = Some(gate.refusals.join("; "));
            run.finished_at_ms = Some(self.ctx.clock.now_ms());
            self.ctx.store.put_apply_run(run).await?;
            report.outcome = Outcome::Refused {
                reasons: gate.refusals,
            };
            self.write_apply_note(&mr, &report).await?;
            return Ok(());
        }
        self.ctx.store.put_apply_run(run.clone()).await?;
        report.accounts = gate
            .plan
            .changes
            .iter()
            .map(|c| AccountProgress {
                action: c.action,
                name: c.name.clone(),
                email: change_email(c, &gate).unwrap_or_default(),
                account_id: None,
                steps: gate
                    .plan
                    .steps(c)
                    .into_iter()
                    .map(|s| (s, StepState::Pending))
                    .collect(),
                error: None,
                notes: Vec::new(),
                repository: None,
            })
            .collect();
        if report.accounts.is_empty() {
            run.decision = "applied".into();
            run.finished_at_ms = Some(self.ctx.clock.now_ms());
            self.ctx.store.put_apply_run(run).await?;
            tracing::info!(mr = iid, "merged: no account changes to apply");
            return Ok(());
        }

        let policy = gate.policy.as_ref().ok_or_else(|| anyhow!("no policy"))?;
        let cx = RunCtx {
            mr: &mr,
            merge_sha: &merge_sha,
            report: Mutex::new(report),
            creations: tokio::sync::Semaphore::new(applier.settings.max_creations.max(1)),
            org_accounts: tokio::sync::Mutex::new(None),
            ous: tokio::sync::Mutex::new(HashMap::new()),
            members: tokio::sync::Mutex::new(HashMap::new()),
            last_note: Mutex::new(None),
        };
        self.progress(&mr, &cx, true).await;
        let runs: Vec<AccountRun> = gate
            .plan
            .changes
            .iter()
            .enumerate()
            .map(|(index, change)| AccountRun {
                index,
                change,
                steps: gate.plan.steps(change),
                email: change_email(change, &gate)
                    .unwrap_or_default()
                    .to_lowercase(),
                account_id: None,
            })
            .collect();
        let results = futures_util::future::join_all(
            runs.into_iter()
                .map(|r| self.run_account(applier, &cx, r, policy)),
        )
        .await;

        let failures: Vec<&StepFailure> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        let retrying = failures.iter().any(|f| f.retryable);
        let outcome = match (failures.is_empty(), retrying) {
            (true, _) => Outcome::Applied,
            (false, retrying) => Outcome::Failed { retrying },
        };
        cx.report.lock().expect("report lock").outcome = outcome.clone();
        self.progress(&mr, &cx, true).await;
        run.decision = match outcome {
            Outcome::Applied => "applied",
            Outcome::Failed { retrying: true } => "running",
            _ => "failed",
        }
        .into();
        run.reason = (!failures.is_empty()).then(|| {
            failures
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        });
        run.finished_at_ms = (run.decision != "running").then(|| self.ctx.clock.now_ms());
        self.ctx.store.put_apply_run(run).await?;
        tracing::info!(mr = iid, merge = %merge_sha, outcome = ?outcome, "apply finished");
        if retrying {
            // The worker tries the delivery again later; the ledger resumes where it stopped.
            bail!(
                "the apply of !{iid} will be retried: {}",
                failures
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        Ok(())
    }

    /// Judges the merge: the merge commit against the target branch's policy before the
    /// merge, and the approvals the API shows.
    async fn gate(&self, mr: &MergeRequest, merge_sha: &str) -> Result<Gate> {
        let project = self.project();
        let commit = self
            .gitlab
            .commit(&project, merge_sha)
            .await
            .context("reading the merge commit")?;
        let parent = commit
            .parent_ids
            .first()
            .cloned()
            .ok_or_else(|| anyhow!("the merge commit has no parent"))?;
        let parent_tree = self.tree(&parent).await?;
        let merge_tree = self.tree(merge_sha).await?;
        let policy_files = self.read_files(&parent_tree, in_policy_dir).await?;
        let mut refusals = Vec::new();
        let policy = match Policy::load(&policy_files, POLICY_DIR) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Gate::refused(format!(
                    "the target branch's policy cannot be read: {e}"
                )));
            }
        };
        let policy_ids = |tree: &[crate::gitlab::TreeEntry]| -> BTreeMap<String, String> {
            tree.iter()
                .filter(|e| in_policy_dir(&e.path))
                .map(|e| (e.path.clone(), e.id.clone()))
                .collect()
        };
        let policy_changed = policy_ids(&parent_tree) != policy_ids(&merge_tree);
        let base_files = self
            .read_files(&parent_tree, decl::is_terraform_file)
            .await?;
        let head_files = self
            .read_files(&merge_tree, decl::is_terraform_file)
            .await?;
        let base = decl::read(&base_files, &policy.sources);
        let head = decl::read(&head_files, &policy.sources);

        let users = self
            .gitlab
            .approvals(&project, mr.iid)
            .await
            .context("reading approvals")?;
        let head_sha = mr.sha.clone().unwrap_or_else(|| merge_sha.to_string());
        let approvers = self
            .approvers(&project, mr, &policy, &users, &head_sha)
            .await?;
        let (counted, ignored) = decide_approvals(mr, &policy, &approvers, &head_sha);
        let facts = mr_facts(&project, mr, &counted);
        let report = report::assess(AssessInput {
            base: Some(&base),
            head: &head,
            policy: &policy,
            mr: Some(&facts),
            approvals: Some((counted.clone(), ignored.clone())),
            head_label: Some(merge_sha.to_string()),
        });
        match report.verdict {
            Verdict::Invalid => {
                refusals.push("the merge commit's Terraform does not parse".to_string())
            }
            Verdict::Blocked => refusals.push(format!(
                "the merge commit breaks the policy ({} violations)",
                report.summary.errors
            )),
            Verdict::AwaitingApproval => {
                let r = report.approvals.required();
                refusals.push(format!(
                    "merged without the required approval: {} of {} approvals from members of `{}`",
                    counted.len(),
                    r.count,
                    r.group
                ));
            }
            Verdict::Passes | Verdict::Ready => {}
        }
        if policy_changed && !report.plan.changes.is_empty() {
            refusals.push("the MR changed the policy it is judged by: merge policy changes on their own, then the accounts".to_string());
        }
        let audit = serde_json::json!({
            "author": mr.author.username,
            "merged_by": mr.merged_by.as_ref().map(|u| &u.username),
            "merge_sha": merge_sha,
            "parent_sha": parent,
            "approvals_counted": counted,
            "approvals_ignored": ignored,
            "violations": report.violations.iter().map(|v| &v.rule).collect::<Vec<_>>(),
            "summary": report.summary,
            "policy_changed": policy_changed,
            "changes": report.plan.changes.iter().map(|c| serde_json::json!({"action": c.action, "name": c.name, "key": c.key})).collect::<Vec<_>>(),
        });
        Ok(Gate {
            emails: collect_emails(&report.plan, &base, &head),
            plan: report.plan,
            policy: Some(policy),
            counted,
            refusals,
            facts: audit,
        })
    }

    /// One account's steps, in order; the first failure stops the account.
    async fn run_account(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        mut run: AccountRun<'_>,
        policy: &Policy,
    ) -> Result<(), StepFailure> {
        let steps = run.steps.clone();
        let mut permit = None;
        for (i, step) in steps.iter().enumerate() {
            let key = step_key(step);
            self.set_step(cx, run.index, i, StepState::Running, None);
            if matches!(step, Step::CreateAccount { .. }) {
                permit = Some(
                    cx.creations
                        .acquire()
                        .await
                        .map_err(|e| failure(anyhow!("{e}")))?,
                );
            }
            let now = self.ctx.clock.now_ms();
            self.ctx
                .store
                .step(cx.merge_sha, &run.email, &key, "intent", None, now)
                .await
                .map_err(failure)?;
            // Throttling and AWS's transient failures are tried again here, a few times.
            let mut result = self.exec_step(applier, cx, &mut run, step, policy).await;
            let mut wait = STEP_RETRY_BASE;
            for _ in 1..STEP_ATTEMPTS {
                match &result {
                    Err(e) if aws::is_retryable(e) => {
                        tracing::info!(step = key, wait_ms = wait.as_millis() as u64, error = %format!("{e:#}"), "AWS asked to slow down; trying the step again");
                        tokio::time::sleep(wait).await;
                        wait *= 4;
                        result = self.exec_step(applier, cx, &mut run, step, policy).await;
                    }
                    _ => break,
                }
            }
            if matches!(step, Step::WaitForAccount) {
                permit.take();
            }
            let now = self.ctx.clock.now_ms();
            match result {
                Ok(detail) => {
                    self.ctx
                        .store
                        .step(
                            cx.merge_sha,
                            &run.email,
                            &key,
                            "done",
                            detail.as_deref(),
                            now,
                        )
                        .await
                        .map_err(failure)?;
                    let state = if detail.as_deref().is_some_and(|d| d.starts_with("skipped:")) {
                        StepState::Skipped
                    } else {
                        StepState::Done
                    };
                    self.set_step(
                        cx,
                        run.index,
                        i,
                        state,
                        detail.filter(|d| d.starts_with("skipped:")),
                    );
                }
                Err(e) => {
                    let f = failure(e);
                    self.ctx
                        .store
                        .step(
                            cx.merge_sha,
                            &run.email,
                            &key,
                            "failed",
                            Some(&f.message),
                            now,
                        )
                        .await
                        .map_err(failure)?;
                    self.set_step(cx, run.index, i, StepState::Failed, None);
                    cx.report.lock().expect("report lock").accounts[run.index].error =
                        Some(f.message.clone());
                    tracing::warn!(
                        account = run.email,
                        step = key,
                        retryable = f.retryable,
                        error = f.message,
                        "apply step failed"
                    );
                    return Err(f);
                }
            }
            // Milestones in the note: the account exists, and the account is done.
            if matches!(step, Step::WaitForAccount) || i + 1 == steps.len() {
                self.progress(cx.mr, cx, false).await;
            }
        }
        Ok(())
    }

    fn set_step(
        &self,
        cx: &RunCtx<'_, A::Member>,
        account: usize,
        step: usize,
        state: StepState,
        note: Option<String>,
    ) {
        let mut r = cx.report.lock().expect("report lock");
        let a = &mut r.accounts[account];
        a.steps[step].1 = state;
        if let Some(n) = note {
            a.notes
                .push(n.trim_start_matches("skipped:").trim().to_string());
        }
    }

    /// Performs one step: checks what exists, changes only what is missing. Returns a detail
    /// for the ledger (`skipped: …` for a step orgvend leaves to a person).
    async fn exec_step(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let aws = &applier.aws;
        match step {
            Step::CreateAccount {
                name,
                email,
                role_name,
                tags,
            } => {
                let known = self.ctx.store.known_account(email).await?;
                if let Some(id) = known.as_ref().and_then(|k| k.account_id.clone()) {
                    run.account_id = Some(id.clone());
                    return Ok(Some(format!("exists: {id}")));
                }
                if let Some(a) = self.org_account(aws, cx, email, true).await? {
                    self.remember(email, name, Some(a.id.clone()), None, cx.merge_sha)
                        .await?;
                    run.account_id = Some(a.id.clone());
                    return Ok(Some(format!("found by email: {}", a.id)));
                }
                if let Some(req) = known.and_then(|k| k.create_request_id) {
                    return Ok(Some(format!("request {req}")));
                }
                // A request in flight under this name (a crash before its id was stored)
                let in_flight = aws.list_create_requests().await?.into_iter().find(|r| {
                    r.account_name == *name && !matches!(r.state, CreateState::Failed { .. })
                });
                if let Some(req) = in_flight {
                    self.remember(email, name, None, Some(req.id.clone()), cx.merge_sha)
                        .await?;
                    return Ok(Some(format!("request {} (found in flight)", req.id)));
                }
                let request = aws
                    .create_account(&NewAccount {
                        name: name.clone(),
                        email: email.clone(),
                        role_name: role_name.clone(),
                        tags: tags.clone(),
                    })
                    .await?;
                self.remember(email, name, None, Some(request.clone()), cx.merge_sha)
                    .await?;
                Ok(Some(format!("request {request}")))
            }
            Step::WaitForAccount => {
                let email = run.email.clone();
                if let Some(id) = self
                    .ctx
                    .store
                    .known_account(&email)
                    .await?
                    .and_then(|k| k.account_id)
                {
                    run.account_id = Some(id.clone());
                    self.set_account_id(cx, run.index, &id);
                    return Ok(Some(id));
                }
                let known = self
                    .ctx
                    .store
                    .known_account(&email)
                    .await?
                    .unwrap_or_default();
                let request = known
                    .create_request_id
                    .clone()
                    .ok_or_else(|| anyhow!("no creation request recorded for {email}"))?;
                let deadline = Instant::now() + applier.settings.create_timeout;
                let mut wait = applier.settings.poll;
                loop {
                    match aws.create_account_status(&request).await? {
                        CreateState::Succeeded { account_id } => {
                            self.remember(
                                &email,
                                &known.name,
                                Some(account_id.clone()),
                                None,
                                cx.merge_sha,
                            )
                            .await?;
                            *cx.org_accounts.lock().await = None; // a new account: list again when asked
                            run.account_id = Some(account_id.clone());
                            self.set_account_id(cx, run.index, &account_id);
                            return Ok(Some(account_id));
                        }
                        CreateState::Failed { reason } => {
                            let (why, retry) = aws::failure_reason(&reason);
                            self.ctx.store.clear_create_request(&email).await?;
                            let message =
                                format!("AWS could not create the account ({reason}): {why}");
                            if retry {
                                bail!(message);
                            }
                            return Err(Terminal(message).into());
                        }
                        CreateState::InProgress => {
                            if Instant::now() >= deadline {
                                bail!(
                                    "AWS is still creating the account after {} s; orgvend keeps the request and looks again later",
                                    applier.settings.create_timeout.as_secs()
                                );
                            }
                            tokio::time::sleep(wait).await;
                            // doubling, to at most 8 times the first wait and 30 s
                            wait = (wait * 2)
                                .min(applier.settings.poll * 8)
                                .min(Duration::from_secs(30));
                        }
                    }
                }
            }
            Step::MoveAccount { ou } => {
                let id = self.account_id_of(aws, cx, run).await?;
                let target = self.ou_id(aws, cx, ou).await?;
                let current = aws.parent_of(&id).await?;
                if current == target {
                    return Ok(Some(format!("in {ou}")));
                }
                aws.move_account(&id, &current, &target).await?;
                Ok(Some(format!("moved to {ou}")))
            }
            Step::TagAccount { tags } => {
                let id = self.account_id_of(aws, cx, run).await?;
                let have = aws.account_tags(&id).await?;
                let missing: BTreeMap<String, String> = tags
                    .iter()
                    .filter(|(k, v)| have.get(*k) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !missing.is_empty() {
                    aws.tag_account(&id, &missing).await?;
                }
                Ok(None)
            }
            Step::UntagAccount { keys } => {
                let id = self.account_id_of(aws, cx, run).await?;
                let have = aws.account_tags(&id).await?;
                let present: Vec<String> = keys
                    .iter()
                    .filter(|k| have.contains_key(*k))
                    .cloned()
                    .collect();
                if !present.is_empty() {
                    aws.untag_account(&id, &present).await?;
                }
                Ok(None)
            }
            Step::RenameAccount { name } => Ok(Some(format!(
                "skipped: orgvend does not rename accounts; rename it to `{name}` in the AWS console (Account settings)"
            ))),
            Step::AssumeRole { role_name } => {
                let id = self.account_id_of(aws, cx, run).await?;
                // A new account may refuse AssumeRole for a while.
                let deadline = Instant::now() + applier.settings.assume_timeout;
                let mut wait = Duration::from_secs(2)
                    .min(applier.settings.poll.max(Duration::from_millis(10)));
                loop {
                    match aws.assume(&id, role_name).await {
                        Ok(m) => {
                            cx.members
                                .lock()
                                .await
                                .insert(id.clone(), std::sync::Arc::new(m));
                            return Ok(None);
                        }
                        Err(e) if Instant::now() < deadline => {
                            tracing::debug!(account = id, error = %format!("{e:#}"), "AssumeRole not possible yet");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(15));
                        }
                        Err(e) => return Err(e.context(format!("assuming {role_name} in {id}"))),
                    }
                }
            }
            Step::SetAlias { alias } => {
                let m = self.member(aws, cx, run, policy).await?;
                let have = m.alias().await?;
                if have.as_deref() == Some(alias.as_str()) {
                    return Ok(None);
                }
                match m.set_alias(alias, have.as_deref()).await {
                    Ok(()) => Ok(None),
                    Err(e) if e.chain().any(|c| c.downcast_ref::<aws::AwsError>().is_some_and(|a| a.code.as_deref() == Some("EntityAlreadyExists"))) => {
                        Err(Terminal(format!("the alias `{alias}` belongs to another AWS account: choose another account_alias")).into())
                    }
                    Err(e) => Err(e),
                }
            }
            Step::SamlProvider { name } => {
                let m = self.member(aws, cx, run, policy).await?;
                if m.saml_provider(name).await?.is_none() {
                    m.create_saml_provider(name, &applier.settings.saml_metadata)
                        .await?;
                }
                Ok(None)
            }
            Step::PermissionsBoundary { policy: boundary } => {
                let m = self.member(aws, cx, run, policy).await?;
                if m.policy(boundary).await?.is_none() {
                    let bucket = self.bucket_name(run, policy)?;
                    let repo = &policy.repository;
                    let ci_roles: Vec<&str> = if repo.keyless_ci {
                        vec![repo.plan_role.as_str(), repo.apply_role.as_str()]
                    } else {
                        Vec::new()
                    };
                    m.create_policy(
                        boundary,
                        &baseline::boundary_document(
                            m.account_id(),
                            &policy.baseline,
                            &ci_roles,
                            &bucket,
                        ),
                    )
                    .await?;
                }
                Ok(None)
            }
            Step::AccessRole {
                name,
                policy_arn,
                bounded,
            } => {
                let m = self.member(aws, cx, run, policy).await?;
                let boundary = bounded.then(|| {
                    baseline::policy_arn(m.account_id(), &policy.baseline.permissions_boundary)
                });
                match m.role(name).await? {
                    None => {
                        let trust = baseline::trust_document(
                            m.account_id(),
                            &policy.baseline.saml_provider,
                        );
                        m.create_role(name, &trust, boundary.as_deref()).await?;
                        m.attach_role_policy(name, policy_arn).await?;
                    }
                    Some(state) => {
                        let trust = baseline::trust_document(
                            m.account_id(),
                            &policy.baseline.saml_provider,
                        );
                        if !state
                            .trust
                            .as_deref()
                            .is_some_and(|t| baseline::same_document(t, &trust))
                        {
                            m.update_trust(name, &trust).await?;
                        }
                        if let Some(b) = &boundary {
                            if state.boundary.as_deref() != Some(b.as_str()) {
                                m.put_role_boundary(name, b).await?;
                            }
                        }
                        if !state.attached.iter().any(|a| a == policy_arn) {
                            m.attach_role_policy(name, policy_arn).await?;
                        }
                    }
                }
                Ok(None)
            }
            Step::StateBucket { .. } => {
                let m = self.member(aws, cx, run, policy).await?;
                let bucket = self.bucket_name(run, policy)?;
                let state = match m.bucket(&bucket).await? {
                    Some(s) => s,
                    None => {
                        m.create_bucket(&bucket).await?;
                        Default::default()
                    }
                };
                if !state.versioned {
                    m.enable_versioning(&bucket).await?;
                }
                if !state.encrypted {
                    m.enable_encryption(&bucket).await?;
                }
                if !state.public_access_blocked {
                    m.block_public_access(&bucket).await?;
                }
                Ok(Some(bucket))
            }
            Step::LockTable { table } => {
                let m = self.member(aws, cx, run, policy).await?;
                if !m.table_exists(table).await? {
                    m.create_lock_table(table).await?;
                }
                Ok(None)
            }
            Step::CloseAccount { .. } => {
                let email = run.email.clone();
                let Some(a) = self.org_account(aws, cx, &email, false).await? else {
                    return Ok(Some("no such account in AWS: nothing to close".into()));
                };
                if a.status == "ACTIVE" {
                    aws.close_account(&a.id).await?;
                }
                Ok(Some(format!("{} closing", a.id)))
            }
            Step::CiOidcProvider => {
                let Some(b) = &self.bootstrap else {
                    return Ok(Some(not_configured(step)));
                };
                let m = self.member(aws, cx, run, policy).await?;
                let url = b.gitlab_url.trim_end_matches('/');
                match m.oidc_provider(url).await? {
                    Some(arn) => Ok(Some(arn)),
                    None => Ok(Some(m.create_oidc_provider(url, url).await?)),
                }
            }
            Step::CiRole { name, purpose } => {
                let Some(b) = &self.bootstrap else {
                    return Ok(Some(not_configured(step)));
                };
                let m = self.member(aws, cx, run, policy).await?;
                let target = run
                    .change
                    .target
                    .as_ref()
                    .ok_or_else(|| anyhow!("no target for {}", run.change.name))?;
                let project = crate::plan::project_path(&policy.repository, target);
                let trust =
                    baseline::ci_trust_document(m.account_id(), &b.gitlab_url, &project, purpose);
                let (managed, boundary) = if purpose == "apply" {
                    (
                        baseline::ADMINISTRATOR_ACCESS,
                        Some(baseline::policy_arn(
                            m.account_id(),
                            &policy.baseline.permissions_boundary,
                        )),
                    )
                } else {
                    (baseline::READ_ONLY_ACCESS, None)
                };
                match m.role(name).await? {
                    None => {
                        m.create_role(name, &trust, boundary.as_deref()).await?;
                        m.attach_role_policy(name, managed).await?;
                        Ok(Some(format!("trusts {project}")))
                    }
                    Some(state) => {
                        let mut repaired = Vec::new();
                        if !state
                            .trust
                            .as_deref()
                            .is_some_and(|t| baseline::same_document(t, &trust))
                        {
                            m.update_trust(name, &trust).await?;
                            repaired.push("trust");
                        }
                        if let Some(b) = &boundary {
                            if state.boundary.as_deref() != Some(b.as_str()) {
                                m.put_role_boundary(name, b).await?;
                                repaired.push("boundary");
                            }
                        }
                        if !state.attached.iter().any(|a| a == managed) {
                            m.attach_role_policy(name, managed).await?;
                            repaired.push("policy");
                        }
                        Ok(Some(if repaired.is_empty() {
                            format!("trusts {project}")
                        } else {
                            format!("trusts {project} (repaired {})", repaired.join(", "))
                        }))
                    }
                }
            }
            Step::GitlabProject { .. }
            | Step::CommitTemplate
            | Step::ProtectMaster
            | Step::CiVariables => {
                let Some(b) = &self.bootstrap else {
                    return Ok(Some(not_configured(step)));
                };
                let account_id = self.account_id_of(aws, cx, run).await?;
                let target = run
                    .change
                    .target
                    .as_ref()
                    .ok_or_else(|| anyhow!("no target for {}", run.change.name))?;
                let repo = &policy.repository;
                let account = crate::bootstrap::RepoAccount {
                    target,
                    kind: run.change.account_type.clone().unwrap_or_default(),
                    account_id: account_id.clone(),
                    state_bucket: self.bucket_name(run, policy)?,
                    lock_table: policy.baseline.lock_table.clone(),
                    project_path: crate::plan::project_path(repo, target),
                    ci_roles: repo
                        .keyless_ci
                        .then(|| (repo.plan_role.clone(), repo.apply_role.clone())),
                };
                let out = self.bootstrap_step(b, &account, step).await?;
                if let Some(link) = out.link {
                    cx.report.lock().expect("report lock").accounts[run.index].repository =
                        Some(link);
                }
                Ok(out.detail)
            }
        }
    }

    async fn remember(
        &self,
        email: &str,
        name: &str,
        account_id: Option<String>,
        request: Option<String>,
        merge_sha: &str,
    ) -> Result<()> {
        self.ctx
            .store
            .put_known_account(
                KnownAccount {
                    email: email.to_lowercase(),
                    name: name.to_string(),
                    account_id,
                    create_request_id: request,
                },
                merge_sha,
                self.ctx.clock.now_ms(),
            )
            .await
    }

    fn set_account_id(&self, cx: &RunCtx<'_, A::Member>, index: usize, id: &str) {
        cx.report.lock().expect("report lock").accounts[index].account_id = Some(id.to_string());
    }

    /// The organization's account with this email, from one listing per apply (refreshed
    /// when `fresh` and after a creation).
    async fn org_account(
        &self,
        aws: &A,
        cx: &RunCtx<'_, A::Member>,
        email: &str,
        fresh: bool,
    ) -> Result<Option<OrgAccount>> {
        let mut cached = cx.org_accounts.lock().await;
        if cached.is_none()
            || (fresh
                && cached
                    .as_ref()
                    .is_some_and(|c| !c.iter().any(|a| a.email.eq_ignore_ascii_case(email))))
        {
            *cached = Some(aws.list_accounts().await?);
        }
        Ok(cached.as_ref().and_then(|all| {
            all.iter()
                .find(|a| a.email.eq_ignore_ascii_case(email))
                .cloned()
        }))
    }

    async fn account_id_of(
        &self,
        aws: &A,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
    ) -> Result<String> {
        if let Some(id) = &run.account_id {
            return Ok(id.clone());
        }
        let email = run.email.clone();
        let id = match self
            .ctx
            .store
            .known_account(&email)
            .await?
            .and_then(|k| k.account_id)
        {
            Some(id) => id,
            None => self
                .org_account(aws, cx, &email, true)
                .await?
                .map(|a| a.id)
                .ok_or_else(|| Terminal(format!("no AWS account has the email {email}")))?,
        };
        self.set_account_id(cx, run.index, &id);
        run.account_id = Some(id.clone());
        Ok(id)
    }

    /// The id of an OU given as a path from the root (`/Workloads/Clients`), found once.
    async fn ou_id(&self, aws: &A, cx: &RunCtx<'_, A::Member>, path: &str) -> Result<String> {
        if let Some(id) = cx.ous.lock().await.get(path) {
            return Ok(id.clone());
        }
        let mut parent = aws.root_id().await?;
        for part in path.trim_matches('/').split('/') {
            let children = aws.child_ous(&parent).await?;
            parent = children
                .into_iter()
                .find(|(_, name)| name == part)
                .map(|(id, _)| id)
                .ok_or_else(|| Terminal(format!("the organization has no OU `{path}` (missing `{part}`): create it, or fix the policy's ou")))?;
        }
        cx.ous.lock().await.insert(path.to_string(), parent.clone());
        Ok(parent)
    }

    /// The member account session of this run (AssumeRole comes first among the steps).
    async fn member(
        &self,
        aws: &A,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        policy: &Policy,
    ) -> Result<std::sync::Arc<A::Member>> {
        let id = self.account_id_of(aws, cx, run).await?;
        if let Some(m) = cx.members.lock().await.get(&id) {
            return Ok(m.clone());
        }
        let role = match run.change.target.as_ref() {
            Some(t) => t.role_name.clone(),
            None => policy.baseline.role_name.clone(),
        };
        let m = std::sync::Arc::new(aws.assume(&id, &role).await?);
        cx.members.lock().await.insert(id, m.clone());
        Ok(m)
    }

    fn bucket_name(&self, run: &AccountRun<'_>, policy: &Policy) -> Result<String> {
        let target = run
            .change
            .target
            .as_ref()
            .ok_or_else(|| anyhow!("no target for {}", run.change.name))?;
        let id = run.account_id.as_deref().unwrap_or("");
        Ok(crate::plan::fill(&policy.baseline.state_bucket, target).replace("{account_id}", id))
    }

    /// Writes the progress to the note: at once when `now`, otherwise at most once a second.
    async fn progress(&self, mr: &MergeRequest, cx: &RunCtx<'_, A::Member>, now: bool) {
        {
            let mut last = cx.last_note.lock().expect("note lock");
            if !now && last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let report = cx.report.lock().expect("report lock").clone();
        if let Err(e) = self.write_apply_note(mr, &report).await {
            // Progress is a courtesy: the apply goes on, and the final note is written again.
            tracing::warn!(mr = mr.iid, error = %format!("{e:#}"), "could not update the note with the apply's progress");
        }
    }

    async fn write_apply_note(&self, mr: &MergeRequest, report: &ApplyReport) -> Result<()> {
        let body = crate::render::apply::render(report);
        self.upsert_note(mr, &body).await.map(drop)
    }
}

/// What the gate found.
struct Gate {
    plan: Plan,
    /// `None` when the target branch's policy could not be read (the apply is refused).
    policy: Option<Policy>,
    counted: Vec<String>,
    refusals: Vec<String>,
    facts: serde_json::Value,
    /// The email of each change's account (at the head, or at the base for a close).
    emails: Vec<String>,
}

impl Gate {
    fn refused(reason: String) -> Gate {
        Gate {
            plan: Plan::default(),
            policy: None,
            counted: Vec::new(),
            refusals: vec![reason.clone()],
            facts: serde_json::json!({ "refused": reason }),
            emails: Vec::new(),
        }
    }
}

fn collect_emails(
    plan: &Plan,
    base: &decl::Declarations,
    head: &decl::Declarations,
) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| {
            let a = match (c.head, c.base) {
                (Some(h), _) => head.accounts.get(h),
                (None, Some(b)) => base.accounts.get(b),
                (None, None) => None,
            };
            a.and_then(|a| a.email()).unwrap_or_default().to_string()
        })
        .collect()
}

fn change_email(change: &Change, gate: &Gate) -> Option<String> {
    let i = gate
        .plan
        .changes
        .iter()
        .position(|c| std::ptr::eq(c, change))?;
    gate.emails.get(i).cloned()
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// `/orgvend retry` on a merged MR: only a member of the approval group may ask.
    pub async fn retry(&self, iid: u64, user_id: u64) -> Result<()> {
        let project = self.project();
        let mr = self
            .gitlab
            .merge_request(&project, iid)
            .await
            .context("reading the merge request")?;
        let Some(merge_sha) = mr.landed_sha().filter(|_| mr.state == "merged") else {
            tracing::info!(
                mr = iid,
                "`/orgvend retry` on an MR that is not merged: nothing to retry"
            );
            return Ok(());
        };
        // The group comes from the policy the merge is judged by.
        let commit = self.gitlab.commit(&project, merge_sha).await?;
        let parent = commit
            .parent_ids
            .first()
            .ok_or_else(|| anyhow!("the merge commit has no parent"))?;
        let tree = self.tree(parent).await?;
        let files = self.read_files(&tree, in_policy_dir).await?;
        let group = match Policy::load(&files, POLICY_DIR) {
            Ok(p) => p.approval_group,
            Err(e) => bail!("the target branch's policy cannot be read: {e}"),
        };
        let member = self.gitlab.group_member(&group, user_id).await?;
        if let Some(problem) = crate::approval::membership_problem(&member, &group) {
            tracing::warn!(
                mr = iid,
                user = user_id,
                problem,
                "`/orgvend retry` refused: only members of the approval group may retry"
            );
            return Ok(());
        }
        tracing::info!(mr = iid, user = user_id, "`/orgvend retry`: applying again");
        self.apply(iid).await
    }

    /// Merged MRs of the last week whose apply never ran or did not finish, as deliveries.
    pub(crate) async fn reconcile_merges(&self) -> Result<usize> {
        if self.applier.is_none() {
            return Ok(0);
        }
        let project = self.project();
        let now = self.ctx.clock.now_ms();
        let since = crate::clock::format_iso(now - 7 * 24 * 3600 * 1000);
        let interval_ms = (self.ctx.config.gitlab.reconcile_interval_seconds.max(1) * 1000) as i64;
        let mut queued = 0;
        for mr in self
            .gitlab
            .merged_merge_requests(&project, &since)
            .await
            .context("listing merged merge requests")?
        {
            let Some(sha) = mr
                .merge_commit_sha
                .clone()
                .or(mr.squash_commit_sha.clone())
                .or(mr.sha.clone())
            else {
                continue;
            };
            match self.ctx.store.apply_run(&sha).await? {
                Some(run) if run.decision != "running" => continue,
                _ => {}
            }
            let body = serde_json::json!({
                "object_kind": "merge_request",
                "object_attributes": {"iid": mr.iid, "action": "merge", "state": "merged", "merge_commit_sha": sha},
            });
            let inserted = self
                .ctx
                .store
                .insert(crate::store::NewDelivery {
                    dedup_key: format!("reconcile-merge:{}:{sha}:{}", mr.iid, now / interval_ms),
                    received_at_ms: now,
                    event_name: "Merge Request Hook".into(),
                    kind: "merge_request".into(),
                    action: "merged".into(),
                    ordering_key: Some(crate::event::mr_key(mr.iid)),
                    ignored: None,
                    headers: "{}".into(),
                    body: body.to_string().into(),
                })
                .await?;
            if matches!(inserted, crate::store::Inserted::New(_)) {
                queued += 1;
            }
        }
        Ok(queued)
    }
}

fn not_configured(step: &Step) -> String {
    format!(
        "skipped: {} needs the repository bootstrap, which is not configured ([bootstrap] in orgvend.toml)",
        step_key(step)
    )
}
