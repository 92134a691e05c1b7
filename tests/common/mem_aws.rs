//! An AWS Organization in memory, for the benchmarks: the same answers as moto for the calls
//! orgvend makes, counted the way the SDK client counts them (one read per page of 20 for
//! ListAccounts), without moto's per-call cost, so that 1,000 accounts can be applied and
//! re-applied in seconds. Creations succeed at once; wrap it in `Scripted` for delays.
#![allow(dead_code)]

use anyhow::{Result, anyhow};
use orgvend::aws::guard::{Channel, ConfigRuleState, Key, MemberGuard, Recorder, TrailState};
use orgvend::aws::{
    Aws, BucketState, Calls, CreateRequest, CreateState, ManagedPolicy, MemberAws, NewAccount,
    OrgAccount, RoleState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Iam {
    alias: Option<String>,
    saml: BTreeSet<String>,
    /// name → (default document, other versions, oldest first).
    policies: BTreeMap<String, (String, Vec<String>)>,
    next_version: u64,
    roles: BTreeMap<String, RoleState>,
    buckets: BTreeMap<String, BucketState>,
    tables: BTreeSet<String>,
    oidc: BTreeSet<String>,
    guard: Guard,
}

/// The account's key, Config and trail, as the guard steps see them.
#[derive(Default)]
struct Guard {
    /// id → (key, rotation, policy, tagged alias).
    keys: BTreeMap<String, (Key, bool, String, String)>,
    aliases: BTreeMap<String, String>,
    recorder: Option<Recorder>,
    channel: Option<Channel>,
    rules: BTreeMap<String, ConfigRuleState>,
    config_role: Option<String>,
    trails: BTreeMap<String, TrailState>,
}

struct Account {
    name: String,
    email: String,
    status: String,
    parent: String,
    tags: BTreeMap<String, String>,
    iam: Iam,
}

#[derive(Default)]
struct Org {
    accounts: BTreeMap<String, Account>,
    requests: BTreeMap<String, (String, CreateState)>,
    /// OU id → (parent, name).
    ous: BTreeMap<String, (String, String)>,
}

const ROOT: &str = "r-root";
/// The management account: not among the members.
pub const MANAGEMENT: &str = "111111111111";

#[derive(Clone)]
pub struct MemAws {
    org: Arc<Mutex<Org>>,
    calls: Arc<Calls>,
}

impl MemAws {
    /// An organization with the OUs of the shipped policy.
    pub fn new() -> MemAws {
        let mut org = Org::default();
        for (id, parent, name) in [
            ("ou-mgmt", ROOT, "Management"),
            ("ou-internal", ROOT, "Internal"),
            ("ou-clients", ROOT, "Clients"),
        ] {
            org.ous.insert(id.into(), (parent.into(), name.into()));
        }
        MemAws {
            org: Arc::new(Mutex::new(org)),
            calls: Arc::default(),
        }
    }

    pub fn account_count(&self) -> usize {
        self.org.lock().unwrap().accounts.len()
    }

    /// By hand, in every account: `policy` detached from the role `role`.
    pub fn detach_everywhere(&self, role: &str, policy: &str) {
        for a in self.org.lock().unwrap().accounts.values_mut() {
            if let Some(r) = a.iam.roles.get_mut(role) {
                r.attached.retain(|p| p != policy);
            }
        }
    }

    fn with_account<T>(&self, id: &str, f: impl FnOnce(&mut Account) -> T) -> Result<T> {
        let mut org = self.org.lock().unwrap();
        let a = org
            .accounts
            .get_mut(id)
            .ok_or_else(|| anyhow!("AccountNotFoundException: {id}"))?;
        Ok(f(a))
    }
}

impl Default for MemAws {
    fn default() -> Self {
        MemAws::new()
    }
}

impl Aws for MemAws {
    type Member = MemMember;

    fn calls(&self) -> &Calls {
        &self.calls
    }

    async fn list_accounts(&self) -> Result<Vec<OrgAccount>> {
        let org = self.org.lock().unwrap();
        for _ in 0..org.accounts.len().div_ceil(20).max(1) {
            self.calls.read()?;
        }
        Ok(org
            .accounts
            .iter()
            .map(|(id, a)| OrgAccount {
                id: id.clone(),
                name: a.name.clone(),
                email: a.email.clone(),
                status: a.status.clone(),
            })
            .collect())
    }

    async fn create_account(&self, account: &NewAccount) -> Result<String> {
        self.calls.write()?;
        let mut org = self.org.lock().unwrap();
        let n = org.accounts.len() + 1;
        let request = format!("car-{n:032x}");
        if org
            .accounts
            .values()
            .any(|a| a.email.eq_ignore_ascii_case(&account.email))
        {
            org.requests.insert(
                request.clone(),
                (
                    account.name.clone(),
                    CreateState::Failed {
                        reason: "EMAIL_ALREADY_EXISTS".into(),
                    },
                ),
            );
            return Ok(request);
        }
        let id = format!("{:012}", 100_000_000_000u64 + n as u64);
        org.accounts.insert(
            id.clone(),
            Account {
                name: account.name.clone(),
                email: account.email.clone(),
                status: "ACTIVE".into(),
                parent: ROOT.into(),
                tags: account.tags.clone(),
                iam: Iam::default(),
            },
        );
        org.requests.insert(
            request.clone(),
            (
                account.name.clone(),
                CreateState::Succeeded { account_id: id },
            ),
        );
        Ok(request)
    }

    async fn create_account_status(&self, request_id: &str) -> Result<CreateState> {
        self.calls.read()?;
        self.org
            .lock()
            .unwrap()
            .requests
            .get(request_id)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| anyhow!("CreateAccountStatusNotFoundException"))
    }

    async fn list_create_requests(&self) -> Result<Vec<CreateRequest>> {
        self.calls.read()?;
        Ok(self
            .org
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|(id, (name, state))| CreateRequest {
                id: id.clone(),
                account_name: name.clone(),
                state: state.clone(),
            })
            .collect())
    }

    async fn root_id(&self) -> Result<String> {
        self.calls.read()?;
        Ok(ROOT.into())
    }

    async fn caller_account_id(&self) -> Result<String> {
        self.calls.read()?;
        Ok(MANAGEMENT.into())
    }

    async fn management_account_id(&self) -> Result<String> {
        self.calls.read()?;
        Ok(MANAGEMENT.into())
    }

    async fn child_ous(&self, parent: &str) -> Result<Vec<(String, String)>> {
        self.calls.read()?;
        Ok(self
            .org
            .lock()
            .unwrap()
            .ous
            .iter()
            .filter(|(_, (p, _))| p == parent)
            .map(|(id, (_, name))| (id.clone(), name.clone()))
            .collect())
    }

    async fn parent_of(&self, account_id: &str) -> Result<String> {
        self.calls.read()?;
        self.with_account(account_id, |a| a.parent.clone())
    }

    async fn move_account(&self, account_id: &str, _from: &str, to: &str) -> Result<()> {
        self.calls.write()?;
        self.with_account(account_id, |a| a.parent = to.to_string())
    }

    async fn account_tags(&self, account_id: &str) -> Result<BTreeMap<String, String>> {
        self.calls.read()?;
        self.with_account(account_id, |a| a.tags.clone())
    }

    async fn tag_account(&self, account_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.calls.write()?;
        self.with_account(account_id, |a| a.tags.extend(tags.clone()))
    }

    async fn untag_account(&self, account_id: &str, keys: &[String]) -> Result<()> {
        self.calls.write()?;
        self.with_account(account_id, |a| {
            for k in keys {
                a.tags.remove(k);
            }
        })
    }

    async fn close_account(&self, account_id: &str) -> Result<()> {
        self.calls.write()?;
        self.with_account(account_id, |a| a.status = "PENDING_CLOSURE".into())
    }

    async fn start_email_update(&self, _account_id: &str, _email: &str) -> Result<()> {
        self.calls.write()?;
        Ok(())
    }

    async fn accept_email_update(
        &self,
        account_id: &str,
        email: &str,
        _code: &orgvend::config::Secret,
    ) -> Result<()> {
        self.calls.write()?;
        self.with_account(account_id, |a| a.email = email.to_string())
    }

    async fn rename_account(&self, account_id: &str, name: &str) -> Result<()> {
        self.calls.write()?;
        self.with_account(account_id, |a| a.name = name.to_string())
    }

    /// The organization trail the benchmarks' organization has (Control Tower's, say).
    async fn organization_trails(&self) -> Result<Vec<TrailState>> {
        self.calls.read()?;
        Ok(vec![TrailState {
            name: "aws-controltower-BaselineCloudTrail".into(),
            organization: true,
            logging: true,
            multi_region: true,
            validation: true,
            management_events: true,
            ..TrailState::default()
        }])
    }

    async fn assume(&self, account_id: &str, _role_name: &str) -> Result<MemMember> {
        self.calls.read()?;
        self.with_account(account_id, |_| ())?;
        Ok(MemMember {
            id: account_id.to_string(),
            aws: self.clone(),
        })
    }
}

pub struct MemMember {
    id: String,
    aws: MemAws,
}

impl MemMember {
    fn read<T>(&self, f: impl FnOnce(&Iam) -> T) -> Result<T> {
        self.aws.calls.read()?;
        self.aws.with_account(&self.id, |a| f(&a.iam))
    }

    fn write<T>(&self, f: impl FnOnce(&mut Iam) -> T) -> Result<T> {
        self.aws.calls.write()?;
        self.aws.with_account(&self.id, |a| f(&mut a.iam))
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iam::{}:{kind}/{name}", self.id)
    }
}

impl MemberAws for MemMember {
    fn account_id(&self) -> &str {
        &self.id
    }
    async fn alias(&self) -> Result<Option<String>> {
        self.read(|i| i.alias.clone())
    }
    async fn set_alias(&self, alias: &str, replacing: Option<&str>) -> Result<()> {
        if replacing.is_some() {
            self.aws.calls.write()?; // DeleteAccountAlias
        }
        self.write(|i| i.alias = Some(alias.to_string()))
    }
    async fn saml_provider(&self, name: &str) -> Result<Option<String>> {
        let arn = self.arn("saml-provider", name);
        self.read(|i| i.saml.contains(name).then_some(arn))
    }
    async fn create_saml_provider(&self, name: &str, _metadata: &str) -> Result<String> {
        self.write(|i| i.saml.insert(name.to_string()))?;
        Ok(self.arn("saml-provider", name))
    }
    async fn policy(&self, name: &str) -> Result<Option<ManagedPolicy>> {
        let arn = self.arn("policy", name);
        // GetPolicy, GetPolicyVersion, ListPolicyVersions
        self.aws.calls.read()?;
        self.aws.calls.read()?;
        self.read(|i| {
            i.policies.get(name).map(|(doc, others)| ManagedPolicy {
                arn,
                document: doc.clone(),
                other_versions: others.clone(),
            })
        })
    }
    async fn create_policy(&self, name: &str, document: &str) -> Result<String> {
        self.write(|i| {
            i.policies
                .insert(name.to_string(), (document.to_string(), Vec::new()))
        })?;
        Ok(self.arn("policy", name))
    }
    async fn create_policy_version(&self, name: &str, document: &str) -> Result<()> {
        self.write(|i| {
            i.next_version += 1;
            let old = format!("v{}", i.next_version);
            let p = i.policies.get_mut(name).expect("the policy exists");
            assert!(p.1.len() < 4, "IAM keeps at most five versions");
            p.1.push(old);
            p.0 = document.to_string();
        })
    }
    async fn delete_policy_version(&self, name: &str, version_id: &str) -> Result<()> {
        self.write(|i| {
            if let Some(p) = i.policies.get_mut(name) {
                p.1.retain(|v| v != version_id);
            }
        })
    }
    async fn role(&self, name: &str) -> Result<Option<RoleState>> {
        self.aws.calls.read()?; // GetRole, then ListAttachedRolePolicies
        self.read(|i| i.roles.get(name).cloned())
    }
    async fn create_role(&self, name: &str, trust: &str, boundary: Option<&str>) -> Result<()> {
        self.write(|i| {
            i.roles.insert(
                name.to_string(),
                RoleState {
                    boundary: boundary.map(str::to_string),
                    attached: Vec::new(),
                    trust: Some(trust.to_string()),
                },
            );
        })
    }
    async fn update_trust(&self, role: &str, trust: &str) -> Result<()> {
        self.write(|i| {
            if let Some(r) = i.roles.get_mut(role) {
                r.trust = Some(trust.to_string());
            }
        })
    }
    async fn oidc_provider(&self, url: &str) -> Result<Option<String>> {
        let host = orgvend::core::baseline::oidc_host(url);
        let arn = self.arn("oidc-provider", &host);
        self.read(|i| i.oidc.contains(&host).then_some(arn))
    }
    async fn create_oidc_provider(&self, url: &str, _audience: &str) -> Result<String> {
        let host = orgvend::core::baseline::oidc_host(url);
        self.write(|i| i.oidc.insert(host.clone()))?;
        Ok(self.arn("oidc-provider", &host))
    }
    async fn attach_role_policy(&self, role: &str, policy_arn: &str) -> Result<()> {
        self.write(|i| {
            if let Some(r) = i.roles.get_mut(role) {
                r.attached.push(policy_arn.to_string());
            }
        })
    }
    async fn put_role_boundary(&self, role: &str, boundary_arn: &str) -> Result<()> {
        self.write(|i| {
            if let Some(r) = i.roles.get_mut(role) {
                r.boundary = Some(boundary_arn.to_string());
            }
        })
    }
    async fn bucket(&self, name: &str) -> Result<Option<BucketState>> {
        for _ in 0..3 {
            self.aws.calls.read()?; // HeadBucket, versioning, encryption, public access block
        }
        self.read(|i| i.buckets.get(name).copied())
    }
    async fn create_bucket(&self, name: &str) -> Result<()> {
        self.write(|i| {
            i.buckets.insert(name.to_string(), BucketState::default());
        })
    }
    async fn enable_versioning(&self, name: &str) -> Result<()> {
        self.write(|i| {
            if let Some(b) = i.buckets.get_mut(name) {
                b.versioned = true;
            }
        })
    }
    async fn enable_encryption(&self, name: &str) -> Result<()> {
        self.write(|i| {
            if let Some(b) = i.buckets.get_mut(name) {
                b.encrypted = true;
            }
        })
    }
    async fn block_public_access(&self, name: &str) -> Result<()> {
        self.write(|i| {
            if let Some(b) = i.buckets.get_mut(name) {
                b.public_access_blocked = true;
            }
        })
    }
    async fn table_exists(&self, name: &str) -> Result<bool> {
        self.read(|i| i.tables.contains(name))
    }
    async fn create_lock_table(&self, name: &str) -> Result<()> {
        self.write(|i| {
            i.tables.insert(name.to_string());
        })
    }
}

impl MemberGuard for MemMember {
    async fn key_by_alias(&self, alias: &str) -> Result<Option<Key>> {
        self.read(|i| {
            let id = i.guard.aliases.get(alias)?;
            i.guard.keys.get(id).map(|k| k.0.clone())
        })
    }
    async fn key_tagged(&self, alias: &str) -> Result<Option<Key>> {
        self.read(|i| {
            i.guard
                .keys
                .values()
                .find(|k| k.3 == alias)
                .map(|k| k.0.clone())
        })
    }
    async fn create_key(&self, _description: &str, policy: &str, alias: &str) -> Result<String> {
        let id = format!("key-{}-{alias}", self.id);
        let key = Key {
            id: id.clone(),
            arn: format!("arn:aws:kms:us-east-1:{}:key/{id}", self.id),
            enabled: true,
            state: "Enabled".into(),
            plain: true,
        };
        self.write(|i| {
            i.guard.keys.insert(
                id.clone(),
                (key, false, policy.to_string(), alias.to_string()),
            )
        })?;
        Ok(id)
    }
    async fn create_alias(&self, alias: &str, key_id: &str) -> Result<()> {
        self.write(|i| {
            i.guard
                .aliases
                .insert(alias.to_string(), key_id.to_string())
        })?;
        Ok(())
    }
    async fn enable_key(&self, key_id: &str) -> Result<()> {
        self.write(|i| {
            if let Some(k) = i.guard.keys.get_mut(key_id) {
                k.0.enabled = true;
                k.0.state = "Enabled".into();
            }
        })
    }
    async fn cancel_key_deletion(&self, key_id: &str) -> Result<()> {
        self.write(|i| {
            if let Some(k) = i.guard.keys.get_mut(key_id) {
                k.0.state = "Disabled".into();
            }
        })
    }
    async fn key_rotation(&self, key_id: &str) -> Result<bool> {
        self.read(|i| i.guard.keys.get(key_id).is_some_and(|k| k.1))
    }
    async fn enable_key_rotation(&self, key_id: &str) -> Result<()> {
        self.write(|i| {
            if let Some(k) = i.guard.keys.get_mut(key_id) {
                k.1 = true;
            }
        })
    }
    async fn key_policy(&self, key_id: &str) -> Result<String> {
        self.read(|i| {
            i.guard
                .keys
                .get(key_id)
                .map(|k| k.2.clone())
                .unwrap_or_default()
        })
    }
    async fn put_key_policy(&self, key_id: &str, policy: &str) -> Result<()> {
        self.write(|i| {
            if let Some(k) = i.guard.keys.get_mut(key_id) {
                k.2 = policy.to_string();
            }
        })
    }
    async fn recorders(&self) -> Result<Vec<Recorder>> {
        self.read(|i| i.guard.recorder.clone().into_iter().collect())
    }
    async fn put_recorder(&self, name: &str, role_arn: &str) -> Result<()> {
        self.write(|i| {
            let recording = i.guard.recorder.as_ref().is_some_and(|r| r.recording);
            i.guard.recorder = Some(Recorder {
                name: name.to_string(),
                all_supported: true,
                include_global: true,
                role_arn: role_arn.to_string(),
                recording,
            });
        })
    }
    async fn start_recorder(&self, _name: &str) -> Result<()> {
        self.write(|i| {
            if let Some(r) = &mut i.guard.recorder {
                r.recording = true;
            }
        })
    }
    async fn delivery_channels(&self) -> Result<Vec<Channel>> {
        self.read(|i| i.guard.channel.clone().into_iter().collect())
    }
    async fn put_delivery_channel(&self, name: &str, bucket: &str) -> Result<()> {
        self.write(|i| {
            i.guard.channel = Some(Channel {
                name: name.to_string(),
                bucket: bucket.to_string(),
                extras: false,
            })
        })
    }
    async fn config_rules(&self) -> Result<Vec<ConfigRuleState>> {
        self.read(|i| i.guard.rules.values().cloned().collect())
    }
    async fn put_config_rule(
        &self,
        name: &str,
        identifier: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<()> {
        let rule = ConfigRuleState {
            name: name.to_string(),
            identifier: identifier.to_string(),
            parameters: orgvend::aws::guard::rule_parameters(parameters),
        };
        self.write(|i| i.guard.rules.insert(name.to_string(), rule))?;
        Ok(())
    }
    async fn config_role(&self) -> Result<Option<String>> {
        self.read(|i| i.guard.config_role.clone())
    }
    async fn create_config_role(&self) -> Result<String> {
        let arn = self.arn(
            "role/aws-service-role/config.amazonaws.com",
            "AWSServiceRoleForConfig",
        );
        self.write(|i| i.guard.config_role = Some(arn.clone()))?;
        Ok(arn)
    }
    async fn trail(&self, name: &str) -> Result<Option<TrailState>> {
        self.read(|i| i.guard.trails.get(name).cloned())
    }
    async fn create_trail(&self, name: &str, bucket: &str, kms_key: &str) -> Result<()> {
        self.update_trail(name, bucket, kms_key).await
    }
    async fn update_trail(&self, name: &str, bucket: &str, kms_key: &str) -> Result<()> {
        let arn = format!("arn:aws:cloudtrail:us-east-1:{}:trail/{name}", self.id);
        self.write(|i| {
            let logging = i.guard.trails.get(name).is_some_and(|t| t.logging);
            i.guard.trails.insert(
                name.to_string(),
                TrailState {
                    name: name.to_string(),
                    arn,
                    bucket: bucket.to_string(),
                    multi_region: true,
                    global_events: true,
                    validation: true,
                    kms_key: Some(kms_key.to_string()),
                    organization: false,
                    logging,
                    management_events: true,
                },
            )
        })?;
        Ok(())
    }
    async fn start_logging(&self, name: &str) -> Result<()> {
        self.write(|i| {
            if let Some(t) = i.guard.trails.get_mut(name) {
                t.logging = true;
            }
        })
    }
    async fn reset_event_selectors(&self, _name: &str) -> Result<()> {
        self.write(|_| ())
    }
}
