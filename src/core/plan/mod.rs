//! The plan: what merging will do. Base and head declarations are matched account by account
//! (by module key, then by email, so renaming a module key is not a close plus a create), and
//! each change expands into the ordered steps the apply performs ([`Plan::steps`]).
//!
//! A change keeps only the account's target values; its steps are expanded when asked for, so
//! a 10,000-account plan does not hold 190,000 steps.

use crate::core::decl::{Account, Declarations, Map, Value};
use crate::core::model::{Excerpt, Loc};
use crate::core::policy::{Access, Baseline, Policy, Provider, Repository};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The access steps of a change: entitlements, grants, renames, revocations.
mod access;
/// The guard steps of a new account: KMS key, Config, CloudTrail.
mod guard;
/// The steps of each change, their keys and areas.
mod step;
/// An account's tags.
mod tags;
pub use step::{Area, Step, fill, project_path, valid_project_path};
pub use tags::Tags;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// What every new account gets (from the policy), for [`Plan::steps`].
    #[serde(skip)]
    pub baseline: Option<Arc<(Baseline, Repository)>>,
    /// Who grants access to new accounts (from the policy), for [`Plan::steps`].
    #[serde(skip)]
    pub access: Option<Arc<Access>>,
    /// Each type's KMS key, Config and CloudTrail (from the policy), for [`Plan::steps`].
    #[serde(skip)]
    pub security: Option<Arc<crate::core::policy::security::Security>>,
    /// Where a closed account goes once suspended (from the policy), for [`Plan::steps`].
    #[serde(skip)]
    pub suspended_ou: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Close,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub action: Action,
    /// The account module's key (at head; at base for a close).
    pub key: String,
    /// The account name, or the key where the name is unknown.
    pub name: String,
    pub account_type: Option<String>,
    pub at: Loc,
    /// Index into the head and base declarations' accounts.
    #[serde(skip)]
    pub head: Option<usize>,
    #[serde(skip)]
    pub base: Option<usize>,
    pub fields: Vec<FieldChange>,
    /// The account as the head declares it (none for a close).
    pub target: Option<Target>,
    /// For a close: the account as the base declared it (boxed: few changes are closes, and
    /// a target inline would be a third of every change's size).
    #[serde(skip)]
    pub closing: Option<Box<Target>>,
    /// The account's blocks as written before and after, for the diff.
    #[serde(skip)]
    pub before: Vec<Excerpt>,
    #[serde(skip)]
    pub after: Vec<Excerpt>,
}

impl Change {
    pub fn destructive(&self) -> bool {
        self.action == Action::Close
    }

    pub fn before_text(&self) -> String {
        blocks_text(&self.before)
    }

    pub fn after_text(&self) -> String {
        blocks_text(&self.after)
    }
}

fn blocks_text(blocks: &[Excerpt]) -> String {
    if blocks.is_empty() {
        return String::new();
    }
    let mut text = blocks.join("\n\n");
    text.push('\n');
    text
}

/// An account's values as the apply will use them; `?` where unknown (a violation says why).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub name: String,
    pub email: String,
    pub role_name: String,
    pub alias: String,
    /// The OU path of the account's type.
    pub ou: String,
    pub tags: Tags,
    /// The existing account a new declaration takes over (`adopt = "<id>"`), instead of
    /// creating one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
    /// Who may sign in to the account, and as what: the type's grants, then the
    /// declaration's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
}

/// One group granted one role in an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    pub role: String,
    pub group: String,
    /// Added by the declaration (`access = …`) rather than granted by the account type.
    pub declared: bool,
}

impl Grant {
    /// `role:group`, the grant's identity in a field change.
    pub fn label(&self) -> String {
        format!("{}:{}", self.role, self.group)
    }
}

/// The grants of an account: its type's (names filled in), then its declaration's.
pub fn grants(policy: &Policy, a: &Account) -> Vec<Grant> {
    if policy.access.provider == Provider::None {
        return Vec::new();
    }
    let (name, alias) = (a.name().unwrap_or("?"), a.alias().unwrap_or("?"));
    let mut out: Vec<Grant> = Vec::new();
    let mut seen: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    let typed = a
        .account_type()
        .and_then(|t| policy.access.types.get(t))
        .map(|t| t.grants.as_slice())
        .unwrap_or_default();
    for (role, group) in typed {
        let group = crate::core::policy::access::fill_group(group, name, alias);
        seen.insert((role.clone(), group.clone()));
        out.push(Grant {
            role: role.clone(),
            group,
            declared: false,
        });
    }
    // a set of those given so far: looked through one by one, 20,000 declared groups took
    // seconds
    for (role, group) in a.added_access().unwrap_or_default() {
        if seen.insert((role.clone(), group.clone())) {
            out.push(Grant {
                role,
                group,
                declared: true,
            });
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// `name`, `email`, `account_alias`, `account_type`, `role_name`, `tags` or `module`.
    pub field: String,
    pub before: Value,
    pub after: Value,
    /// Where the new value is written (none when the field was removed).
    pub at: Option<Loc>,
}

/// Plans head against base; without a base every account is new.
pub fn plan(base: Option<&Declarations>, head: &Declarations, policy: &Policy) -> Plan {
    let empty = Declarations::default();
    let base = base.unwrap_or(&empty);
    let mut base_by_key: HashMap<&str, usize> = HashMap::new();
    for (i, a) in base.accounts.iter().enumerate() {
        base_by_key.entry(a.key.as_str()).or_insert(i);
    }
    let mut matched: Vec<Option<usize>> = vec![None; head.accounts.len()];
    let mut taken = vec![false; base.accounts.len()];
    for (h, a) in head.accounts.iter().enumerate() {
        if let Some(&b) = base_by_key.get(a.key.as_str())
            && !taken[b]
        {
            matched[h] = Some(b);
            taken[b] = true;
        }
    }
    // A renamed module key keeps its account: the email is the account's identity in AWS.
    let mut base_by_email: HashMap<String, usize> = HashMap::new();
    for (b, a) in base.accounts.iter().enumerate() {
        if let (false, Some(email)) = (taken[b], a.email()) {
            base_by_email.entry(email.to_lowercase()).or_insert(b);
        }
    }
    for (h, a) in head.accounts.iter().enumerate() {
        if matched[h].is_some() {
            continue;
        }
        if let Some(b) = a.email().and_then(|e| base_by_email.get(&e.to_lowercase()))
            && !taken[*b]
        {
            matched[h] = Some(*b);
            taken[*b] = true;
        }
    }

    // each account's change is its own: made on every core, kept in order
    let indices: Vec<usize> = (0..head.accounts.len()).collect();
    #[allow(clippy::filter_map_identity)]
    let mut changes: Vec<Change> = crate::core::par::map(&indices, 2_000, |&h| match matched[h] {
        None => Some(create(policy, head, h, &head.accounts[h])),
        Some(b) => update(policy, base, b, head, h),
    })
    .into_iter()
    // `filter_map` collects in place (an option of a change takes no more room than a
    // change); `flatten` would grow a second vector by doubling (measured: 9.7 MB at 10,000
    // accounts, all of it fresh memory)
    .filter_map(|change| change)
    .collect();
    for (b, a) in base.accounts.iter().enumerate() {
        if !taken[b] {
            changes.push(Change {
                action: Action::Close,
                key: a.key.clone(),
                name: a.label().to_string(),
                account_type: a.account_type().map(str::to_string),
                at: a.at.clone(),
                head: None,
                base: Some(b),
                fields: Vec::new(),
                target: None,
                closing: Some(Box::new(target(policy, a))),
                before: blocks(base, a),
                after: Vec::new(),
            });
        }
    }
    changes.sort_by(|x, y| (x.action, &x.at).cmp(&(y.action, &y.at)));
    Plan {
        changes,
        baseline: Some(Arc::new((
            policy.baseline.clone(),
            policy.repository.clone(),
        ))),
        access: Some(Arc::new(policy.access.clone())),
        security: Some(Arc::new(policy.security.clone())),
        suspended_ou: policy.suspended_ou.clone(),
    }
}

fn unknown(v: Option<&str>) -> String {
    v.unwrap_or("?").to_string()
}

fn role_name<'a>(policy: &'a Policy, a: &'a Account) -> &'a str {
    a.role_name().unwrap_or(&policy.baseline.role_name)
}

fn ou_of(policy: &Policy, account_type: Option<&str>) -> String {
    account_type
        .and_then(|t| policy.type_rules(t))
        .map(|r| r.ou.clone())
        .unwrap_or_else(|| "?".into())
}

/// The plan of a repair: each of `accounts` (a declaration's index, and the id of the account
/// that exists for it) as if it were new and adopted, so that its steps are the whole
/// baseline, each of which checks before it changes anything.
pub fn repair(policy: &Policy, head: &Declarations, accounts: &[(usize, String)]) -> Plan {
    let mut plan = plan(None, head, policy);
    plan.changes.retain_mut(|c| {
        let Some(id) = c
            .head
            .and_then(|h| accounts.iter().find(|(i, _)| *i == h))
            .map(|(_, id)| id.clone())
        else {
            return false;
        };
        if let Some(t) = c.target.as_mut() {
            t.adopt = Some(id);
        }
        c.action == Action::Create && c.target.is_some()
    });
    plan
}

fn target(policy: &Policy, a: &Account) -> Target {
    Target {
        name: unknown(a.name()),
        email: unknown(a.email()),
        role_name: role_name(policy, a).to_string(),
        alias: unknown(a.alias()),
        ou: ou_of(policy, a.account_type()),
        tags: a.tags_into().unwrap_or_default(),
        adopt: a.adopt().map(str::to_string),
        grants: grants(policy, a),
    }
}

fn create(policy: &Policy, head: &Declarations, h: usize, a: &Account) -> Change {
    Change {
        action: Action::Create,
        key: a.key.clone(),
        name: a.label().to_string(),
        account_type: a.account_type().map(str::to_string),
        at: a.at.clone(),
        head: Some(h),
        base: None,
        fields: Vec::new(),
        target: Some(target(policy, a)),
        closing: None,
        before: Vec::new(),
        after: blocks(head, a),
    }
}

fn update(
    policy: &Policy,
    base: &Declarations,
    b: usize,
    head: &Declarations,
    h: usize,
) -> Option<Change> {
    let (old, new) = (&base.accounts[b], &head.accounts[h]);
    let mut fields = Vec::new();
    if old.key != new.key {
        fields.push(FieldChange {
            field: "module".into(),
            before: Value::String(old.key.clone()),
            after: Value::String(new.key.clone()),
            at: Some(new.at.clone()),
        });
    }
    let role = |a: &Account| Some(Value::String(role_name(policy, a).to_string()));
    let tags = |a: &Account| {
        Some(
            a.tags
                .as_ref()
                .map(|f| f.value.clone())
                .unwrap_or(Value::Map(Map::new())),
        )
    };
    type Compared = (&'static str, Option<Value>, Option<Value>, Option<Loc>);
    let compared: [Compared; 7] = [
        ("name", value(&old.name), value(&new.name), loc(&new.name)),
        (
            "email",
            value(&old.email),
            value(&new.email),
            loc(&new.email),
        ),
        (
            "account_alias",
            value(&old.alias),
            value(&new.alias),
            loc(&new.alias),
        ),
        (
            "account_type",
            value(&old.account_type),
            value(&new.account_type),
            loc(&new.account_type),
        ),
        (
            "role_name",
            role(old),
            role(new),
            loc(&new.role_name).or(Some(new.at.clone())),
        ),
        ("tags", tags(old), tags(new), loc(&new.tags)),
        (
            "adopt",
            value(&old.adopt),
            value(&new.adopt),
            loc(&new.adopt),
        ),
    ];
    let granted = |a: &Account| {
        Value::List(
            grants(policy, a)
                .iter()
                .map(|g| Value::String(g.label()))
                .collect(),
        )
    };
    let (old_grants, new_grants) = (granted(old), granted(new));
    if old_grants != new_grants {
        fields.push(FieldChange {
            field: "access".into(),
            before: old_grants,
            after: new_grants,
            at: loc(&new.access).or(loc(&new.account_type)),
        });
    }
    for (field, before, after, at) in compared {
        if before != after {
            fields.push(FieldChange {
                field: field.into(),
                before: before.unwrap_or(Value::Null),
                after: after.unwrap_or(Value::Null),
                at,
            });
        }
    }
    if fields.is_empty() {
        return None;
    }
    Some(Change {
        action: Action::Update,
        key: new.key.clone(),
        name: new.label().to_string(),
        account_type: new.account_type().map(str::to_string),
        at: new.at.clone(),
        head: Some(h),
        base: Some(b),
        fields,
        target: Some(target(policy, new)),
        closing: None,
        before: blocks(base, old),
        after: blocks(head, new),
    })
}

fn value(f: &Option<crate::core::decl::Field>) -> Option<Value> {
    f.as_ref().map(|f| f.value.clone())
}

fn loc(f: &Option<crate::core::decl::Field>) -> Option<Loc> {
    f.as_ref().map(|f| f.at.clone())
}

fn blocks(decls: &Declarations, a: &Account) -> Vec<Excerpt> {
    let mut out = vec![decls.module(a.module).text.clone()];
    if let Some(b) = a.base {
        out.push(decls.module(b).text.clone());
    }
    out
}
