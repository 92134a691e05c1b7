//! Access through Okta and its AWS Account Federation app: for each account and role an
//! Okta group named as the app's group filter expects (`aws#<alias>#<role>#<account id>`),
//! assigned to the app; for each grant a group rule that feeds that group from the granted
//! group (created inactive, then activated; one that drifted is deleted with the users it
//! put in and made again, never edited while active). Groups
//! are found by exact name; a group Okta's search does not show yet (its index lags) is
//! never created twice: Okta refuses the duplicate name and the step is tried again later.

use super::super::super::Terminal;
use crate::core::plan::{Step, Target};
use crate::core::policy::Policy;
use crate::okta::{OktaClient, OktaGroup, OktaRule};
use anyhow::{Result, anyhow};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Okta, as the apply uses it.
pub struct OktaAccess {
    pub client: OktaClient,
    /// The AWS Account Federation app the role groups are assigned to.
    pub app_id: String,
    /// Whether the SAML provider in each account gets the app's metadata from Okta.
    pub metadata_from_app: bool,
    /// Groups found or created: name → id (Okta's search index lags behind creations).
    known: tokio::sync::Mutex<HashMap<String, String>>,
    metadata: tokio::sync::OnceCell<String>,
}

impl OktaAccess {
    pub fn new(client: OktaClient, app_id: String, metadata_from_app: bool) -> OktaAccess {
        OktaAccess {
            client,
            app_id,
            metadata_from_app,
            known: tokio::sync::Mutex::new(HashMap::new()),
            metadata: tokio::sync::OnceCell::new(),
        }
    }

    /// From `[okta]`: the client (OAuth with the key file, else the SSWS token) and the app.
    pub fn from_config(c: &crate::config::OktaConfig) -> Result<OktaAccess> {
        use crate::okta::OktaAuth;
        let auth = match (&c.client_id, &c.private_key_file) {
            (Some(client_id), Some(file)) => OktaAuth::PrivateKeyJwt {
                client_id: client_id.clone(),
                key_pem: crate::config::Secret::new(std::fs::read_to_string(file).map_err(
                    |e| anyhow!("reading okta.private_key_file {}: {e}", file.display()),
                )?),
                key_id: c.key_id.clone(),
                scopes: Vec::new(),
            },
            _ => OktaAuth::Ssws {
                token: c.token.clone().ok_or_else(|| {
                    anyhow!(
                        "[okta] has no OAuth client and {} is not set",
                        crate::config::okta::ENV_OKTA_TOKEN
                    )
                })?,
            },
        };
        let client = OktaClient::new(
            &c.url,
            auth,
            std::time::Duration::from_secs(c.request_timeout_seconds),
        )?;
        Ok(OktaAccess::new(
            client,
            c.app_id.clone(),
            c.saml_metadata_from_app,
        ))
    }

    /// The app's SAML metadata, fetched once.
    pub async fn saml_metadata(&self) -> Result<String> {
        self.metadata
            .get_or_try_init(|| async {
                let m = self.client.saml_metadata(&self.app_id).await?;
                anyhow::ensure!(
                    m.contains("EntityDescriptor"),
                    "Okta's metadata for app {} is not SAML metadata",
                    self.app_id
                );
                Ok(m)
            })
            .await
            .cloned()
    }

    pub(super) async fn exec(
        &self,
        account: &str,
        target: Option<&Target>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        match step {
            Step::Entitlement {
                role,
                name,
                previous,
                ..
            } => {
                let name = name.replace("{account_id}", account);
                let mut detail = None;
                // the account's alias or name changed: its group is renamed, not made anew
                if let Some(was) = previous {
                    let was = was.replace("{account_id}", account);
                    if self.existing_group(&name).await?.is_none()
                        && let Some(g) = self.existing_group_full(&was).await?
                    {
                        self.client
                            .rename_group(&g.id, &name, &g.description)
                            .await?;
                        let mut known = self.known.lock().await;
                        known.remove(&was);
                        known.insert(name.clone(), g.id.clone());
                        detail = Some(format!("renamed the group `{was}` to `{name}`"));
                    }
                }
                let (gid, created) = self.role_group(&name, role, account).await?;
                if !self.client.app_group(&self.app_id, &gid).await? {
                    self.client.assign_group_to_app(&self.app_id, &gid).await?;
                }
                if created {
                    detail = Some(format!("created the group `{name}` ({gid})"));
                }
                Ok(detail)
            }
            Step::Grant { role, group, .. } => {
                let t = target.ok_or_else(|| anyhow!("a grant without a target"))?;
                let name = crate::core::plan::fill(&policy.access.okta.group_name, t)
                    .replace("{role}", role)
                    .replace("{account_id}", account);
                let (target, _) = self.role_group(&name, role, account).await?;
                let source = self.existing_group(group).await?.ok_or_else(|| {
                    Terminal(format!(
                        "Okta has no group named `{group}`: create it in Okta, or fix the grant"
                    ))
                })?;
                let rule = rule_name(account, role, group);
                let expression = format!("isMemberOfAnyGroup(\"{source}\")");
                self.ensure_rule(&rule, &expression, &target).await
            }
            Step::Revoke { role, group, .. } => {
                let rule = rule_name(account, role, group);
                match self.client.rule_by_name(&rule).await? {
                    None => Ok(None),
                    Some(r) => {
                        self.remove_rule(&r).await?;
                        Ok(None)
                    }
                }
            }
            Step::RevokeAccess { groups, .. } => {
                let ours = format!("orgvend-{account}-");
                let (mut removed, mut left) = (0, Vec::new());
                for name in groups {
                    let name = name.replace("{account_id}", account);
                    let Some(g) = self.existing_group_full(&name).await? else {
                        continue;
                    };
                    // The rules that feed the group go first: orgvend's own, with the users
                    // they put in; a rule someone else made is left, and said.
                    for r in self.client.rules_for_group(&g.id).await? {
                        if r.name.starts_with(&ours) {
                            self.remove_rule(&r).await?;
                        } else {
                            left.push(format!("rule `{}`", r.name));
                        }
                    }
                    // No sign-in through the app, whoever made the group.
                    self.client
                        .unassign_group_from_app(&self.app_id, &g.id)
                        .await?;
                    if g.description.starts_with(OWN_GROUP) {
                        self.client.delete_group(&g.id).await?;
                        removed += 1;
                    } else {
                        left.push(format!(
                            "group `{name}` (not made by orgvend; unassigned from the app)"
                        ));
                    }
                    self.known.lock().await.remove(&name);
                }
                let mut detail = format!("removed {removed} Okta group(s) and their rules");
                if !left.is_empty() {
                    detail.push_str(&format!("; left for a person: {}", left.join(", ")));
                }
                Ok(Some(detail))
            }
            other => Err(anyhow!("not an Okta step: {}", other.key())),
        }
    }

    /// The group by exact name: Okta's search first; a group made here that the search does
    /// not show yet (its index lags) from what is known, checked by id (a group deleted
    /// since is forgotten, not trusted).
    async fn existing_group_full(&self, name: &str) -> Result<Option<OktaGroup>> {
        if let Some(g) = self.client.group_by_name(name).await? {
            self.known
                .lock()
                .await
                .insert(name.to_string(), g.id.clone());
            return Ok(Some(g));
        }
        let Some(id) = self.known.lock().await.get(name).cloned() else {
            return Ok(None);
        };
        match self.client.group(&id).await? {
            Some(g) if g.name == name => Ok(Some(g)),
            _ => {
                self.known.lock().await.remove(name);
                Ok(None)
            }
        }
    }

    async fn existing_group(&self, name: &str) -> Result<Option<String>> {
        Ok(self.existing_group_full(name).await?.map(|g| g.id))
    }

    /// The account's group for a role, created when Okta has none by that name.
    async fn role_group(&self, name: &str, role: &str, account: &str) -> Result<(String, bool)> {
        if let Some(id) = self.existing_group(name).await? {
            return Ok((id, false));
        }
        let description = format!("{OWN_GROUP} sign in to AWS account {account} as {role}");
        match self.client.create_group(name, &description).await {
            Ok(g) => {
                self.known
                    .lock()
                    .await
                    .insert(name.to_string(), g.id.clone());
                Ok((g.id, true))
            }
            Err(e) if is_duplicate(&e) => Err(anyhow!(
                "Okta has a group named `{name}` that its search does not show yet; trying again later"
            )),
            Err(e) => Err(e),
        }
    }

    /// The rule exists, says exactly this, and is active. One that says something else is
    /// deleted with the users it put in, and made again.
    async fn ensure_rule(
        &self,
        name: &str,
        expression: &str,
        target: &str,
    ) -> Result<Option<String>> {
        let want_groups = vec![target.to_string()];
        let mut detail = None;
        if let Some(r) = self.client.rule_by_name(name).await? {
            if r.expression == expression && r.group_ids == want_groups {
                if r.status != "ACTIVE" {
                    self.client.activate_rule(&r.id).await?;
                }
                return Ok(None);
            }
            self.remove_rule(&r).await?;
            detail = Some(format!("repaired: the rule `{name}` said something else"));
        }
        let r = self
            .client
            .create_rule(name, expression, &want_groups)
            .await?;
        self.client.activate_rule(&r.id).await?;
        Ok(detail)
    }

    /// Deactivates and deletes a rule, and takes out the users it put in.
    async fn remove_rule(&self, r: &OktaRule) -> Result<()> {
        if r.status == "ACTIVE" {
            self.client.deactivate_rule(&r.id).await?;
        }
        self.client.delete_rule(&r.id).await
    }
}

/// The start of the description of every group orgvend makes: its mark of ownership.
const OWN_GROUP: &str = "orgvend:";

/// A grant's rule: `orgvend-<account>-<28 hex of SHA-256 of role and group>` (Okta allows 50
/// characters; stable, so a retry finds it; 112 bits, so no declared grant can be made to
/// collide with another's rule).
pub fn rule_name(account: &str, role: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{role}\n{group}").as_bytes());
    let hex: String = digest.iter().take(14).map(|b| format!("{b:02x}")).collect();
    format!("orgvend-{account}-{hex}")
}

fn is_duplicate(e: &anyhow::Error) -> bool {
    crate::okta::is_already_exists(e)
}
