//! The organization, from the management account: create the account (exactly once: the
//! ledger first, then AWS by email and by requests in flight), wait for it, move it to its
//! type's OU, tag, untag and rename it, and close it.

use super::super::context::{AccountRun, RunCtx};
use super::super::{Applier, Terminal};
use crate::aws::{self, Aws, CreateState, NewAccount};
use crate::bot::Bot;
use crate::core::plan::Step;
use crate::core::policy::Policy;
use crate::gitlab::GitLab;
use crate::serve::worker::ParkNow;
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// AWS's closure quota counts a rolling 30 days.
const CLOSE_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Create, wait, move, tag, untag, rename, close.
    pub(super) async fn exec_organizations(
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
                let known = self
                    .ctx
                    .store
                    .known_account(email)
                    .await?
                    .unwrap_or_default();
                if let Some(id) = known.account_id {
                    run.account_id = Some(id.clone());
                    return Ok(Some(format!("exists: {id}")));
                }
                if let Some(req) = known.create_request_id {
                    return Ok(Some(format!("request {req}")));
                }
                let existing = self.org_account(aws, cx, email, true).await?;
                if known.creating {
                    // orgvend called CreateAccount and stopped before it kept the request id:
                    // what that request made is orgvend's (nobody else's account had this
                    // email when orgvend decided to create it).
                    if let Some(a) = existing {
                        self.remember(cx, email, name, Some(a.id.clone()), None, false)
                            .await?;
                        run.account_id = Some(a.id.clone());
                        return Ok(Some(format!("created by an interrupted request: {}", a.id)));
                    }
                    let in_flight = aws.list_create_requests().await?.into_iter().find(|r| {
                        r.account_name == *name && matches!(r.state, CreateState::InProgress)
                    });
                    if let Some(req) = in_flight {
                        self.remember(cx, email, name, None, Some(req.id.clone()), false)
                            .await?;
                        return Ok(Some(format!("request {} (found in flight)", req.id)));
                    }
                } else if let Some(a) = existing {
                    return Err(Terminal(format!(
                        "an AWS account with the email {email} already exists: {} (`{}`), which orgvend did not create; orgvend never takes over an account silently. If it is this account, add `adopt = \"{}\"` to its module (the review then shows the adoption); otherwise choose another email",
                        a.id, a.name, a.id
                    ))
                    .into());
                }
                // The mark goes first: a crash after the call leaves it, and the next attempt
                // knows the account it finds is its own.
                self.remember(cx, email, name, None, None, true).await?;
                let request = aws
                    .create_account(&NewAccount {
                        name: name.clone(),
                        email: email.clone(),
                        role_name: role_name.clone(),
                        tags: tags.clone(),
                    })
                    .await?;
                self.remember(cx, email, name, None, Some(request.clone()), false)
                    .await?;
                Ok(Some(format!("request {request}")))
            }
            Step::AdoptAccount { account_id, email } => {
                let name = run.change.name.clone();
                let known = self
                    .ctx
                    .store
                    .known_account(email)
                    .await?
                    .unwrap_or_default();
                if known.account_id.as_deref() == Some(account_id.as_str()) {
                    run.account_id = Some(account_id.clone());
                    cx.set_account_id(run.index, account_id);
                    return Ok(Some(format!("adopted: {account_id}")));
                }
                if *account_id == aws.management_account_id().await? {
                    return Err(Terminal(format!("{account_id} is the organization's management account: orgvend never adopts it")).into());
                }
                let all = aws.list_accounts().await?;
                let Some(a) = all.iter().find(|a| a.id == *account_id) else {
                    return Err(Terminal(format!("the organization has no account {account_id}: fix `adopt`, or invite the account into the organization first")).into());
                };
                if !a.email.eq_ignore_ascii_case(email) {
                    return Err(Terminal(format!(
                        "account {account_id} has the email {}, not {email} as declared: declare its real email, or fix `adopt`",
                        a.email
                    ))
                    .into());
                }
                if a.status != "ACTIVE" {
                    return Err(Terminal(format!(
                        "account {account_id} is {}, not ACTIVE: it cannot be adopted",
                        a.status
                    ))
                    .into());
                }
                self.remember(cx, email, &name, Some(account_id.clone()), None, false)
                    .await?;
                run.account_id = Some(account_id.clone());
                cx.set_account_id(run.index, account_id);
                Ok(Some(format!("adopted: {account_id}")))
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
                    cx.set_account_id(run.index, &id);
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
                                cx,
                                &email,
                                &known.name,
                                Some(account_id.clone()),
                                None,
                                false,
                            )
                            .await?;
                            *cx.org_accounts.lock().await = None; // a new account: list again when asked
                            run.account_id = Some(account_id.clone());
                            cx.set_account_id(run.index, &account_id);
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
            Step::StartEmailUpdate { from, to } => {
                // the account, by the address it has until the change is accepted
                let known = self
                    .ctx
                    .store
                    .known_account(from)
                    .await?
                    .and_then(|k| k.account_id);
                let id = match known {
                    Some(id) => id,
                    None => match self.org_account(aws, cx, from, true).await? {
                        Some(a) => a.id,
                        None => match self.org_account(aws, cx, to, false).await? {
                            Some(a) => a.id,
                            None => {
                                return Err(Terminal(format!(
                                    "no AWS account has the email {from} (or {to})"
                                ))
                                .into());
                            }
                        },
                    },
                };
                run.account_id = Some(id.clone());
                cx.set_account_id(run.index, &id);
                // the new address finds the account from now on
                self.remember(cx, to, &run.change.name, Some(id.clone()), None, false)
                    .await?;
                if self
                    .org_account(aws, cx, to, true)
                    .await?
                    .is_some_and(|a| a.id == id)
                {
                    return Ok(Some(format!("the email is `{to}`")));
                }
                aws.start_email_update(&id, to).await?;
                self.ctx
                    .store
                    .set_state(&format!("email-pending:{id}"), to, self.ctx.clock.now_ms())
                    .await?;
                Ok(Some(format!(
                    "skipped: awaiting the one-time code AWS mailed to `{to}`: an operator completes the change with `orgvend accept-email --account-id {id} --email {to}` (the code is read from standard input, never logged); until then drift shows it as pending"
                )))
            }
            Step::RenameAccount { name } => {
                let id = self.account_id_of(aws, cx, run).await?;
                let email = run.email.clone();
                if self
                    .org_account(aws, cx, &email, false)
                    .await?
                    .is_some_and(|a| a.name == *name)
                {
                    return Ok(Some(format!("named `{name}`")));
                }
                match aws.rename_account(&id, name).await {
                    Ok(()) => {
                        *cx.org_accounts.lock().await = None;
                        Ok(Some(format!("renamed to `{name}`")))
                    }
                    Err(e) if aws::has_code(&e, "AccessDeniedException") => Err(Terminal(format!(
                        "AWS refused to rename {id} ({e:#}): renames go through the Account Management API, which needs trusted access for it in the organization (`aws organizations enable-aws-service-access --service-principal account.amazonaws.com`) and orgvend's role allowed `account:PutAccountName`; then `/orgvend retry`"
                    ))
                    .into()),
                    Err(e) => Err(e),
                }
            }
            Step::ReserveClosure => {
                let email = run.email.clone();
                let Some(a) = self.org_account(aws, cx, &email, true).await? else {
                    return Ok(Some("no such account in AWS: nothing to close".into()));
                };
                run.account_id = Some(a.id.clone());
                cx.set_account_id(run.index, &a.id);
                if a.status != "ACTIVE" {
                    return Ok(Some(format!("{} is {} already", a.id, a.status)));
                }
                // AWS's rolling 30-day quota, counted from orgvend's own record before
                // anything of the close is done: over it, the close is parked, not failed
                // (waiting cannot help for days). One reservation per account, kept.
                let _one_at_a_time = cx.closures.lock().await;
                let mark = format!("closed:{}", a.id);
                if self.ctx.store.state(&mark).await?.is_some() {
                    return Ok(Some("counted before".into()));
                }
                let now = self.ctx.clock.now_ms();
                let used = self.ctx.store.closures_since(now - CLOSE_WINDOW_MS).await? as usize;
                let members = cx
                    .org_accounts
                    .lock()
                    .await
                    .as_ref()
                    .map_or(0, |all| all.len().saturating_sub(1));
                let quota = crate::core::policy::close_quota(members, policy.close_quota);
                if used >= quota {
                    return Err(ParkNow(format!(
                        "closing {} would exceed the closure quota: {used} of {quota} accounts closed by orgvend in the last 30 days",
                        a.id
                    ))
                    .into());
                }
                self.ctx.store.init_state(&mark, &email, now).await?;
                Ok(Some(format!("{} of {quota} in 30 days", used + 1)))
            }
            Step::CloseAccount { .. } => {
                let email = run.email.clone();
                let Some(a) = self.org_account(aws, cx, &email, false).await? else {
                    return Ok(Some("no such account in AWS: nothing to close".into()));
                };
                if a.status != "ACTIVE" {
                    return Ok(Some(format!("{} is {} already", a.id, a.status)));
                }
                match aws.close_account(&a.id).await {
                    Ok(()) => {
                        *cx.org_accounts.lock().await = None;
                        Ok(Some(format!("closed {}", a.id)))
                    }
                    Err(e) if aws::has_reason(&e, "CLOSE_ACCOUNT_QUOTA_EXCEEDED") => {
                        Err(ParkNow(format!(
                            "AWS refused to close {}: its 30-day closure quota is spent ({e:#})",
                            a.id
                        ))
                        .into())
                    }
                    Err(e) => Err(e),
                }
            }
            Step::WaitForClosure => {
                let email = run.email.clone();
                let deadline = Instant::now() + applier.settings.create_timeout;
                let mut wait = applier.settings.poll;
                loop {
                    let Some(a) = self.org_account(aws, cx, &email, false).await? else {
                        return Ok(Some("no such account in AWS".into()));
                    };
                    match a.status.as_str() {
                        "SUSPENDED" | "CLOSED" => return Ok(Some(format!("{} suspended", a.id))),
                        _ if Instant::now() >= deadline => bail!(
                            "AWS is still closing {} after {} s; orgvend looks again later",
                            a.id,
                            applier.settings.create_timeout.as_secs()
                        ),
                        _ => {
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2)
                                .min(applier.settings.poll * 8)
                                .min(Duration::from_secs(30));
                            *cx.org_accounts.lock().await = None;
                        }
                    }
                }
            }
            other => Err(anyhow!("not a step of this area: {}", other.key())),
        }
    }
}
