//! The account's guard: its KMS key, AWS Config (recorder, delivery channel, rules) and its
//! CloudTrail trail, or the organization's trail verified from the management account. Each
//! step reads first and puts back what drifted: a key disabled, scheduled for deletion or
//! without rotation; a recorder stopped or narrowed; a rule deleted or changed; a trail that
//! stopped logging or lost its validation.

use super::super::context::{AccountRun, RunCtx};
use super::super::{Applier, Terminal};
use crate::aws::guard::{Key, MemberGuard, same_parameters};
use crate::aws::{Aws, MemberAws};
use crate::bot::Bot;
use crate::core::baseline;
use crate::core::plan::Step;
use crate::core::policy::Policy;
use crate::gitlab::GitLab;
use anyhow::{Result, anyhow};

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Key, Config and trail.
    pub(super) async fn exec_guard(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let aws = &applier.aws;
        if let Step::OrganizationTrail = step {
            let trails = aws.organization_trails().await?;
            let good = trails.iter().any(|t| {
                t.organization && t.logging && t.multi_region && t.validation && t.management_events
            });
            return if good {
                Ok(None)
            } else {
                Err(Terminal(format!(
                    "no organization trail is logging, multi-region, with log-file validation (found: {}): set one up from the management account (Control Tower and Landing Zone Accelerator do), or give the account's type cloudtrail mode \"account\"",
                    if trails.is_empty() {
                        "none".to_string()
                    } else {
                        trails.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                    }
                ))
                .into())
            };
        }
        let m = self.member(aws, cx, run, policy).await?;
        let mut repaired = Vec::new();
        match step {
            Step::KmsKey { alias, previous } => {
                let mut new = false;
                let by_previous = match previous {
                    Some(was) => m.key_by_alias(was).await?,
                    None => None,
                };
                let key = match (m.key_by_alias(alias).await?, by_previous) {
                    (Some(k), _) => k,
                    // the account's alias changed: its key gets the new name too
                    (None, Some(k)) => {
                        m.create_alias(alias, &k.id).await?;
                        k
                    }
                    // a key orgvend made just before a crash, without its alias yet
                    (None, None) => match m.key_tagged(alias).await? {
                        Some(k) => {
                            m.create_alias(alias, &k.id).await?;
                            k
                        }
                        None => {
                            let description = policy
                                .security
                                .of(run.change.account_type.as_deref())
                                .kms
                                .as_ref()
                                .map(|k| format!("{} ({})", k.description, m.account_id()))
                                .unwrap_or_else(|| {
                                    format!("orgvend: the key of account {}", m.account_id())
                                });
                            let policy_doc = crate::core::security::key_policy(m.account_id());
                            let id = m.create_key(&description, &policy_doc, alias).await?;
                            // in the ledger the moment AWS returns it
                            self.record_step(
                                cx,
                                &run.email,
                                &step.key(),
                                "intent",
                                Some(&format!("created key {id}")),
                            )
                            .await?;
                            m.create_alias(alias, &id).await?;
                            new = true;
                            Key {
                                id,
                                enabled: true,
                                state: "Enabled".into(),
                                plain: true,
                                ..Key::default()
                            }
                        }
                    },
                };
                if !new && !key.plain {
                    return Err(Terminal(format!(
                        "the key behind `{alias}` ({}) is not one orgvend can vouch for (imported key material, an external key store, asymmetric or multi-region): delete the alias or point it at a plain KMS key",
                        key.id
                    ))
                    .into());
                }
                let fixed = self.repair_key(m.as_ref(), &key).await?;
                if new {
                    // the id stays in the ledger with the step's result
                    return Ok(Some(format!("created key {}", key.id)));
                }
                repaired.extend(fixed);
            }
            Step::ConfigRecorder { name } => {
                let role = match m.config_role().await? {
                    Some(r) => r,
                    None => m.create_config_role().await?,
                };
                let recorders = m.recorders().await?;
                // one recorder per region: one that exists (Control Tower's, a person's) is adopted
                // it records through Config's own service-linked role, nobody else's
                match recorders.first() {
                    None => m.put_recorder(name, &role).await?,
                    Some(r) if !r.all_supported || !r.include_global || r.role_arn != role => {
                        m.put_recorder(&r.name, &role).await?;
                        repaired.push(format!(
                            "the recorder `{}` records all resources through Config's role again",
                            r.name
                        ));
                    }
                    Some(_) => {}
                }
            }
            Step::DeliveryChannel { bucket } => {
                let mut fresh = false;
                match m.delivery_channels().await?.into_iter().next() {
                    None => {
                        m.put_delivery_channel("default", bucket).await?;
                        fresh = true;
                    }
                    Some(c) if &c.bucket != bucket || c.extras => {
                        // put whole: nobody else's key, prefix or topic stays on it
                        m.put_delivery_channel(&c.name, bucket).await?;
                        repaired.push(format!(
                            "the delivery channel writes to `{bucket}` and nothing else again"
                        ));
                    }
                    Some(_) => {}
                }
                // recording needs a channel: it starts here
                let recorder = m.recorders().await?.into_iter().next().ok_or_else(|| {
                    anyhow!("Config has no recorder: the recorder step comes first")
                })?;
                if !recorder.recording {
                    m.start_recorder(&recorder.name).await?;
                    if !fresh {
                        repaired.push(format!("the recorder `{}` records again", recorder.name));
                    }
                }
            }
            Step::ConfigRule {
                name,
                identifier,
                parameters,
            } => {
                let want = crate::aws::guard::rule_parameters(parameters);
                match m
                    .config_rules()
                    .await?
                    .into_iter()
                    .find(|r| &r.name == name)
                {
                    None => m.put_config_rule(name, identifier, parameters).await?,
                    Some(r)
                        if &r.identifier != identifier
                            || !same_parameters(&r.parameters, &want) =>
                    {
                        m.put_config_rule(name, identifier, parameters).await?;
                        repaired.push(format!("the rule `{name}` says what the policy says again"));
                    }
                    Some(_) => {}
                }
            }
            Step::Trail { name, bucket } => {
                let alias = self.key_alias(run, policy).ok_or_else(|| {
                    Terminal("the trail is encrypted with the account's key, and the baseline has none: turn on baseline.kms".into())
                })?;
                let key = m.key_by_alias(&alias).await?.ok_or_else(|| {
                    anyhow!("the account's key `{alias}` is missing: its step comes first")
                })?;
                let key_ref = if key.arn.is_empty() {
                    key.id.clone()
                } else {
                    key.arn.clone()
                };
                match m.trail(name).await? {
                    None => m.create_trail(name, bucket, &key_ref).await?,
                    Some(t) => {
                        let same_key = t
                            .kms_key
                            .as_deref()
                            .is_some_and(|k| k == key.arn || k.ends_with(&key.id));
                        if !t.multi_region
                            || !t.global_events
                            || !t.validation
                            || &t.bucket != bucket
                            || !same_key
                        {
                            m.update_trail(name, bucket, &key_ref).await?;
                            repaired.push(format!(
                                "the trail `{name}` is multi-region, validated and encrypted again"
                            ));
                        }
                    }
                }
                let now = m.trail(name).await?;
                if now.as_ref().is_some_and(|t| !t.management_events) {
                    m.reset_event_selectors(name).await?;
                    repaired.push(format!(
                        "the trail `{name}` logs every management event again"
                    ));
                }
                if !now.is_some_and(|t| t.logging) {
                    m.start_logging(name).await?;
                    repaired.push(format!("the trail `{name}` logs again"));
                }
            }
            other => return Err(anyhow!("not a step of this area: {}", other.key())),
        }
        Ok((!repaired.is_empty()).then(|| format!("repaired: {}", repaired.join("; "))))
    }

    /// The key enabled, not scheduled for deletion, rotating, with orgvend's policy; what had
    /// to be put back (for a key made just now, turning rotation on is part of making it).
    async fn repair_key(&self, m: &A::Member, key: &Key) -> Result<Vec<String>> {
        let mut repaired = Vec::new();
        if key.state == "PendingDeletion" {
            m.cancel_key_deletion(&key.id).await?;
            repaired.push("the key's deletion cancelled".to_string());
        }
        if !key.enabled || key.state == "PendingDeletion" {
            m.enable_key(&key.id).await?;
            repaired.push("the key enabled".to_string());
        }
        if !m.key_rotation(&key.id).await? {
            m.enable_key_rotation(&key.id).await?;
            repaired.push("the key's rotation on".to_string());
        }
        let want = crate::core::security::key_policy(m.account_id());
        if !baseline::same_document(&m.key_policy(&key.id).await?, &want) {
            m.put_key_policy(&key.id, &want).await?;
            repaired.push("the key's policy".to_string());
        }
        Ok(repaired)
    }
}
