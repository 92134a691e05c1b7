//! A layer over the real AWS client (talking to moto) for what moto cannot show: account
//! creation that takes time, creation that fails with a reason, throttling; and crashes
//! injected at the boundary of any mutating call, before or after it reaches AWS.
#![allow(dead_code)]

use anyhow::Result;
use orgvend::aws::guard::{Channel, ConfigRuleState, Key, MemberGuard, Recorder, TrailState};
use orgvend::aws::{
    Aws, AwsError, BucketState, Calls, CreateRequest, CreateState, ManagedPolicy, MemberAws,
    NewAccount, OrgAccount, RoleState,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// The process dies just before the mutating call reaches AWS.
    Before,
    /// The process dies just after AWS did it, before orgvend heard the answer.
    After,
}

/// The panic message of an injected crash.
pub const CRASH: &str = "injected crash";

#[derive(Default)]
pub struct Script {
    /// How long a creation stays IN_PROGRESS.
    pub creation_takes: Duration,
    /// Failure reasons the next creations end with, in order.
    pub fail_next: VecDeque<String>,
    /// CreateAccount calls answered TooManyRequestsException before one goes through.
    pub throttle_next: usize,
    /// MoveAccount calls answered ConcurrentModificationException before one goes through.
    pub concurrent_next: usize,
    /// Crash at the n-th mutating call (1-based).
    pub crash_at: Option<(u64, Boundary)>,
    /// Names the Account Management API changed: Organizations shows them (moto cannot know).
    pub renamed: HashMap<String, String>,
    /// Emails it changed (accepted): Organizations shows them too.
    pub emails: HashMap<String, String>,
    /// How long a closed account stays PENDING_CLOSURE (moto suspends it at once).
    pub closure_takes: Duration,
    /// Closing until then: account → when AWS shows it SUSPENDED.
    pub closing: HashMap<String, Instant>,
    /// CloseAccount calls refused with ConstraintViolationException and these reasons
    /// (`CLOSE_ACCOUNT_QUOTA_EXCEEDED`, …), in order.
    pub close_refusals: VecDeque<String>,
}

struct Pending {
    account: NewAccount,
    ready_at: Instant,
    fail: Option<String>,
    done: Option<CreateState>,
}

pub struct Scripted<A> {
    pub inner: Arc<A>,
    pub script: Arc<Mutex<Script>>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    next_id: Arc<AtomicU64>,
    pub mutations: Arc<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
    pub max_in_flight: Arc<AtomicUsize>,
}

impl<A> Clone for Scripted<A> {
    fn clone(&self) -> Self {
        Scripted {
            inner: self.inner.clone(),
            script: self.script.clone(),
            pending: self.pending.clone(),
            next_id: self.next_id.clone(),
            mutations: self.mutations.clone(),
            in_flight: self.in_flight.clone(),
            max_in_flight: self.max_in_flight.clone(),
        }
    }
}

impl<A: Aws> Scripted<A> {
    pub fn new(inner: A) -> Scripted<A> {
        Scripted {
            inner: Arc::new(inner),
            script: Arc::new(Mutex::new(Script::default())),
            pending: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            mutations: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        }
    }

    /// Creations requested and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts a mutating call and crashes there if the script says so.
    fn boundary(&self, when: Boundary) {
        let n = if when == Boundary::Before {
            self.mutations.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.mutations.load(Ordering::SeqCst)
        };
        if self.script.lock().unwrap().crash_at == Some((n, when)) {
            panic!("{CRASH} {when:?} mutating call #{n}");
        }
    }

    async fn mutate<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.boundary(Boundary::Before);
        let out = f.await;
        self.boundary(Boundary::After);
        out
    }
}

impl<A: Aws> Aws for Scripted<A> {
    type Member = ScriptedMember<A::Member, A>;

    fn calls(&self) -> &Calls {
        self.inner.calls()
    }

    async fn list_accounts(&self) -> Result<Vec<OrgAccount>> {
        let mut all = self.inner.list_accounts().await?;
        let script = self.script.lock().unwrap();
        for a in &mut all {
            if let Some(name) = script.renamed.get(&a.id) {
                a.name = name.clone();
            }
            if let Some(email) = script.emails.get(&a.id) {
                a.email = email.clone();
            }
            if script
                .closing
                .get(&a.id)
                .is_some_and(|t| Instant::now() < *t)
            {
                a.status = "PENDING_CLOSURE".into();
            }
        }
        Ok(all)
    }

    async fn create_account(&self, account: &NewAccount) -> Result<String> {
        {
            let mut s = self.script.lock().unwrap();
            if s.throttle_next > 0 {
                s.throttle_next -= 1;
                return Err(AwsError { code: Some("TooManyRequestsException".into()), message: "AWS Organizations can't complete your request because another request is already in progress".into() }.into());
            }
        }
        self.boundary(Boundary::Before);
        let (delay, fail) = {
            let mut s = self.script.lock().unwrap();
            (s.creation_takes, s.fail_next.pop_front())
        };
        let id = format!("car-{:032x}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.pending.lock().unwrap().insert(
            id.clone(),
            Pending {
                account: account.clone(),
                ready_at: Instant::now() + delay,
                fail,
                done: None,
            },
        );
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.boundary(Boundary::After);
        Ok(id)
    }

    async fn create_account_status(&self, request_id: &str) -> Result<CreateState> {
        enum Next {
            Real,
            Known(CreateState),
            Due(NewAccount, Option<String>),
        }
        let next = {
            let p = self.pending.lock().unwrap();
            match p.get(request_id) {
                None => Next::Real,
                Some(req) => match &req.done {
                    Some(done) => Next::Known(done.clone()),
                    None if Instant::now() < req.ready_at => Next::Known(CreateState::InProgress),
                    None => Next::Due(req.account.clone(), req.fail.clone()),
                },
            }
        };
        let (account, fail) = match next {
            Next::Real => return self.inner.create_account_status(request_id).await,
            Next::Known(state) => return Ok(state),
            Next::Due(account, fail) => (account, fail),
        };
        let state = match fail {
            Some(reason) => CreateState::Failed { reason },
            None => {
                // Now the account really exists: moto creates it at once.
                let real = self.inner.create_account(&account).await?;
                self.inner.create_account_status(&real).await?
            }
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.pending
            .lock()
            .unwrap()
            .get_mut(request_id)
            .unwrap()
            .done = Some(state.clone());
        Ok(state)
    }

    async fn list_create_requests(&self) -> Result<Vec<CreateRequest>> {
        let mut out = self.inner.list_create_requests().await?;
        for (id, p) in self.pending.lock().unwrap().iter() {
            out.push(CreateRequest {
                id: id.clone(),
                account_name: p.account.name.clone(),
                state: p.done.clone().unwrap_or(match &p.fail {
                    Some(r) if Instant::now() >= p.ready_at => {
                        CreateState::Failed { reason: r.clone() }
                    }
                    _ => CreateState::InProgress,
                }),
            });
        }
        Ok(out)
    }

    async fn root_id(&self) -> Result<String> {
        self.inner.root_id().await
    }

    async fn caller_account_id(&self) -> Result<String> {
        self.inner.caller_account_id().await
    }

    async fn management_account_id(&self) -> Result<String> {
        self.inner.management_account_id().await
    }

    async fn child_ous(&self, parent: &str) -> Result<Vec<(String, String)>> {
        self.inner.child_ous(parent).await
    }

    async fn parent_of(&self, account_id: &str) -> Result<String> {
        self.inner.parent_of(account_id).await
    }

    async fn move_account(&self, account_id: &str, from: &str, to: &str) -> Result<()> {
        {
            let mut s = self.script.lock().unwrap();
            if s.concurrent_next > 0 {
                s.concurrent_next -= 1;
                return Err(AwsError { code: Some("ConcurrentModificationException".into()), message: "AWS Organizations can't complete your request because it conflicts with another attempt to modify the same entity".into() }.into());
            }
        }
        self.mutate(self.inner.move_account(account_id, from, to))
            .await
    }

    async fn account_tags(&self, account_id: &str) -> Result<BTreeMap<String, String>> {
        self.inner.account_tags(account_id).await
    }

    async fn tag_account(&self, account_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.mutate(self.inner.tag_account(account_id, tags)).await
    }

    async fn untag_account(&self, account_id: &str, keys: &[String]) -> Result<()> {
        self.mutate(self.inner.untag_account(account_id, keys))
            .await
    }

    async fn close_account(&self, account_id: &str) -> Result<()> {
        let refusal = self.script.lock().unwrap().close_refusals.pop_front();
        if let Some(reason) = refusal {
            return Err(AwsError {
                code: Some("ConstraintViolationException".into()),
                message: format!(
                    "{reason}: You have exceeded close account quota for the past 30 days."
                ),
            }
            .into());
        }
        self.mutate(self.inner.close_account(account_id)).await?;
        let mut script = self.script.lock().unwrap();
        let until = Instant::now() + script.closure_takes;
        script.closing.insert(account_id.to_string(), until);
        Ok(())
    }

    async fn start_email_update(&self, account_id: &str, email: &str) -> Result<()> {
        self.mutate(self.inner.start_email_update(account_id, email))
            .await
    }

    async fn accept_email_update(
        &self,
        account_id: &str,
        email: &str,
        code: &orgvend::config::Secret,
    ) -> Result<()> {
        self.mutate(self.inner.accept_email_update(account_id, email, code))
            .await?;
        self.script
            .lock()
            .unwrap()
            .emails
            .insert(account_id.to_string(), email.to_string());
        Ok(())
    }

    async fn rename_account(&self, account_id: &str, name: &str) -> Result<()> {
        self.mutate(self.inner.rename_account(account_id, name))
            .await?;
        self.script
            .lock()
            .unwrap()
            .renamed
            .insert(account_id.to_string(), name.to_string());
        Ok(())
    }

    async fn organization_trails(&self) -> Result<Vec<TrailState>> {
        self.inner.organization_trails().await
    }

    async fn assume(&self, account_id: &str, role_name: &str) -> Result<Self::Member> {
        Ok(ScriptedMember {
            inner: self.inner.assume(account_id, role_name).await?,
            outer: self.clone(),
        })
    }
}

pub struct ScriptedMember<M, A> {
    inner: M,
    outer: Scripted<A>,
}

impl<M: MemberAws, A: Aws> MemberAws for ScriptedMember<M, A> {
    fn account_id(&self) -> &str {
        self.inner.account_id()
    }
    async fn alias(&self) -> Result<Option<String>> {
        self.inner.alias().await
    }
    async fn set_alias(&self, alias: &str, replacing: Option<&str>) -> Result<()> {
        self.outer
            .mutate(self.inner.set_alias(alias, replacing))
            .await
    }
    async fn saml_provider(&self, name: &str) -> Result<Option<String>> {
        self.inner.saml_provider(name).await
    }
    async fn create_saml_provider(&self, name: &str, metadata: &str) -> Result<String> {
        self.outer
            .mutate(self.inner.create_saml_provider(name, metadata))
            .await
    }
    async fn policy(&self, name: &str) -> Result<Option<ManagedPolicy>> {
        self.inner.policy(name).await
    }
    async fn create_policy(&self, name: &str, document: &str) -> Result<String> {
        self.outer
            .mutate(self.inner.create_policy(name, document))
            .await
    }
    async fn create_policy_version(&self, name: &str, document: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.create_policy_version(name, document))
            .await
    }
    async fn delete_policy_version(&self, name: &str, version_id: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.delete_policy_version(name, version_id))
            .await
    }
    async fn role(&self, name: &str) -> Result<Option<RoleState>> {
        self.inner.role(name).await
    }
    async fn create_role(&self, name: &str, trust: &str, boundary: Option<&str>) -> Result<()> {
        self.outer
            .mutate(self.inner.create_role(name, trust, boundary))
            .await
    }
    async fn update_trust(&self, role: &str, trust: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.update_trust(role, trust))
            .await
    }
    async fn oidc_provider(&self, url: &str) -> Result<Option<String>> {
        self.inner.oidc_provider(url).await
    }
    async fn create_oidc_provider(&self, url: &str, audience: &str) -> Result<String> {
        self.outer
            .mutate(self.inner.create_oidc_provider(url, audience))
            .await
    }
    async fn attach_role_policy(&self, role: &str, policy_arn: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.attach_role_policy(role, policy_arn))
            .await
    }
    async fn put_role_boundary(&self, role: &str, boundary_arn: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.put_role_boundary(role, boundary_arn))
            .await
    }
    async fn bucket(&self, name: &str) -> Result<Option<BucketState>> {
        self.inner.bucket(name).await
    }
    async fn create_bucket(&self, name: &str) -> Result<()> {
        self.outer.mutate(self.inner.create_bucket(name)).await
    }
    async fn enable_versioning(&self, name: &str) -> Result<()> {
        self.outer.mutate(self.inner.enable_versioning(name)).await
    }
    async fn enable_encryption(&self, name: &str) -> Result<()> {
        self.outer.mutate(self.inner.enable_encryption(name)).await
    }
    async fn block_public_access(&self, name: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.block_public_access(name))
            .await
    }
    async fn table_exists(&self, name: &str) -> Result<bool> {
        self.inner.table_exists(name).await
    }
    async fn create_lock_table(&self, name: &str) -> Result<()> {
        self.outer.mutate(self.inner.create_lock_table(name)).await
    }
}

/// The guard's calls through the layer: changes counted (and crashed at) like every other.
impl<M: MemberAws + MemberGuard, A: Aws> MemberGuard for ScriptedMember<M, A> {
    async fn key_by_alias(&self, alias: &str) -> Result<Option<Key>> {
        self.inner.key_by_alias(alias).await
    }
    async fn key_tagged(&self, alias: &str) -> Result<Option<Key>> {
        self.inner.key_tagged(alias).await
    }
    async fn create_key(&self, description: &str, policy: &str, alias: &str) -> Result<String> {
        self.outer
            .mutate(self.inner.create_key(description, policy, alias))
            .await
    }
    async fn create_alias(&self, alias: &str, key_id: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.create_alias(alias, key_id))
            .await
    }
    async fn enable_key(&self, key_id: &str) -> Result<()> {
        self.outer.mutate(self.inner.enable_key(key_id)).await
    }
    async fn cancel_key_deletion(&self, key_id: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.cancel_key_deletion(key_id))
            .await
    }
    async fn key_rotation(&self, key_id: &str) -> Result<bool> {
        self.inner.key_rotation(key_id).await
    }
    async fn enable_key_rotation(&self, key_id: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.enable_key_rotation(key_id))
            .await
    }
    async fn key_policy(&self, key_id: &str) -> Result<String> {
        self.inner.key_policy(key_id).await
    }
    async fn put_key_policy(&self, key_id: &str, policy: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.put_key_policy(key_id, policy))
            .await
    }
    async fn recorders(&self) -> Result<Vec<Recorder>> {
        self.inner.recorders().await
    }
    async fn put_recorder(&self, name: &str, role_arn: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.put_recorder(name, role_arn))
            .await
    }
    async fn start_recorder(&self, name: &str) -> Result<()> {
        self.outer.mutate(self.inner.start_recorder(name)).await
    }
    async fn delivery_channels(&self) -> Result<Vec<Channel>> {
        self.inner.delivery_channels().await
    }
    async fn put_delivery_channel(&self, name: &str, bucket: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.put_delivery_channel(name, bucket))
            .await
    }
    async fn config_rules(&self) -> Result<Vec<ConfigRuleState>> {
        self.inner.config_rules().await
    }
    async fn put_config_rule(
        &self,
        name: &str,
        identifier: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.outer
            .mutate(self.inner.put_config_rule(name, identifier, parameters))
            .await
    }
    async fn config_role(&self) -> Result<Option<String>> {
        self.inner.config_role().await
    }
    async fn create_config_role(&self) -> Result<String> {
        self.outer.mutate(self.inner.create_config_role()).await
    }
    async fn trail(&self, name: &str) -> Result<Option<TrailState>> {
        self.inner.trail(name).await
    }
    async fn create_trail(&self, name: &str, bucket: &str, kms_key: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.create_trail(name, bucket, kms_key))
            .await
    }
    async fn update_trail(&self, name: &str, bucket: &str, kms_key: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.update_trail(name, bucket, kms_key))
            .await
    }
    async fn start_logging(&self, name: &str) -> Result<()> {
        self.outer.mutate(self.inner.start_logging(name)).await
    }
    async fn reset_event_selectors(&self, name: &str) -> Result<()> {
        self.outer
            .mutate(self.inner.reset_event_selectors(name))
            .await
    }
}
