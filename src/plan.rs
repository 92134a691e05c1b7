//! The plan: what merging will do. Base and head declarations are matched account by account
//! (by module key, then by email, so renaming a module key is not a close plus a create), and
//! each change is expanded into the ordered steps the apply performs.

use crate::decl::{Account, Declarations, Value};
use crate::model::Loc;
use crate::policy::Policy;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
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
    pub steps: Vec<Step>,
    /// The blocks as written before and after, for the diff.
    #[serde(skip)]
    pub before_text: String,
    #[serde(skip)]
    pub after_text: String,
}

impl Change {
    pub fn destructive(&self) -> bool {
        self.action == Action::Close
    }
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

/// One thing the apply does, in order. Names templated with `{account_id}` are filled in once
/// the account exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    CreateAccount {
        name: String,
        email: String,
        role_name: String,
        tags: BTreeMap<String, String>,
    },
    WaitForAccount,
    MoveAccount {
        ou: String,
    },
    TagAccount {
        tags: BTreeMap<String, String>,
    },
    UntagAccount {
        keys: Vec<String>,
    },
    RenameAccount {
        name: String,
    },
    AssumeRole {
        role_name: String,
    },
    SetAlias {
        alias: String,
    },
    SamlProvider {
        name: String,
    },
    PermissionsBoundary {
        policy: String,
    },
    AccessRole {
        name: String,
        policy_arn: String,
        bounded: bool,
    },
    StateBucket {
        bucket: String,
    },
    LockTable {
        table: String,
    },
    GitlabProject {
        namespace: String,
        path: String,
    },
    CommitTemplate,
    ProtectMaster,
    CiVariables,
    CloseAccount {
        name: String,
    },
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
        if let Some(&b) = base_by_key.get(a.key.as_str()) {
            if !taken[b] {
                matched[h] = Some(b);
                taken[b] = true;
            }
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
        if let Some(b) = a.email().and_then(|e| base_by_email.get(&e.to_lowercase())) {
            if !taken[*b] {
                matched[h] = Some(*b);
                taken[*b] = true;
            }
        }
    }

    let mut changes = Vec::new();
    for (h, a) in head.accounts.iter().enumerate() {
        match matched[h] {
            None => changes.push(create(policy, head, h, a)),
            Some(b) => {
                if let Some(c) = update(policy, base, b, head, h) {
                    changes.push(c);
                }
            }
        }
    }
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
                steps: vec![Step::CloseAccount {
                    name: a.label().to_string(),
                }],
                before_text: blocks_text(base, a),
                after_text: String::new(),
            });
        }
    }
    changes.sort_by(|x, y| (x.action, &x.at).cmp(&(y.action, &y.at)));
    Plan { changes }
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

/// Fills `{alias}` and `{name}`; `{account_id}` waits for the account to exist.
pub fn fill(template: &str, a: &Account) -> String {
    template
        .replace("{alias}", a.alias().unwrap_or("?"))
        .replace("{name}", a.name().unwrap_or("?"))
}

fn create(policy: &Policy, head: &Declarations, h: usize, a: &Account) -> Change {
    let tags = a.tags().unwrap_or_default();
    let b = &policy.baseline;
    let mut steps = vec![
        Step::CreateAccount {
            name: unknown(a.name()),
            email: unknown(a.email()),
            role_name: role_name(policy, a).to_string(),
            tags: tags.clone(),
        },
        Step::WaitForAccount,
        Step::MoveAccount {
            ou: ou_of(policy, a.account_type()),
        },
    ];
    if !tags.is_empty() {
        steps.push(Step::TagAccount { tags });
    }
    steps.extend([
        Step::AssumeRole {
            role_name: role_name(policy, a).to_string(),
        },
        Step::SetAlias {
            alias: unknown(a.alias()),
        },
        Step::SamlProvider {
            name: b.saml_provider.clone(),
        },
        Step::PermissionsBoundary {
            policy: b.permissions_boundary.clone(),
        },
    ]);
    steps.extend(b.roles.iter().map(|r| Step::AccessRole {
        name: r.name.clone(),
        policy_arn: r.policy_arn.clone(),
        bounded: r.bounded,
    }));
    steps.extend([
        Step::StateBucket {
            bucket: fill(&b.state_bucket, a),
        },
        Step::LockTable {
            table: b.lock_table.clone(),
        },
        Step::GitlabProject {
            namespace: policy.repository.namespace.clone(),
            path: fill(&policy.repository.path, a),
        },
        Step::CommitTemplate,
        Step::ProtectMaster,
        Step::CiVariables,
    ]);
    Change {
        action: Action::Create,
        key: a.key.clone(),
        name: a.label().to_string(),
        account_type: a.account_type().map(str::to_string),
        at: a.at.clone(),
        head: Some(h),
        base: None,
        fields: Vec::new(),
        steps,
        before_text: String::new(),
        after_text: blocks_text(head, a),
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
                .unwrap_or(Value::Map(BTreeMap::new())),
        )
    };
    type Compared = (&'static str, Option<Value>, Option<Value>, Option<Loc>);
    let compared: [Compared; 6] = [
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
    ];
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
    let mut steps = Vec::new();
    for f in &fields {
        match f.field.as_str() {
            "name" => steps.push(Step::RenameAccount {
                name: unknown(new.name()),
            }),
            "account_type" => steps.push(Step::MoveAccount {
                ou: ou_of(policy, new.account_type()),
            }),
            "tags" => {
                let before = old.tags().unwrap_or_default();
                let after = new.tags().unwrap_or_default();
                let set: BTreeMap<String, String> = after
                    .iter()
                    .filter(|(k, v)| before.get(*k) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: Vec<String> = before
                    .keys()
                    .filter(|k| !after.contains_key(*k))
                    .cloned()
                    .collect();
                if !set.is_empty() {
                    steps.push(Step::TagAccount { tags: set });
                }
                if !removed.is_empty() {
                    steps.push(Step::UntagAccount { keys: removed });
                }
            }
            "account_alias" => steps.extend([
                Step::AssumeRole {
                    role_name: role_name(policy, new).to_string(),
                },
                Step::SetAlias {
                    alias: unknown(new.alias()),
                },
            ]),
            // email and role_name only matter at creation; the policy reports changes to them
            _ => {}
        }
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
        steps,
        before_text: blocks_text(base, old),
        after_text: blocks_text(head, new),
    })
}

fn value(f: &Option<crate::decl::Field>) -> Option<Value> {
    f.as_ref().map(|f| f.value.clone())
}

fn loc(f: &Option<crate::decl::Field>) -> Option<Loc> {
    f.as_ref().map(|f| f.at.clone())
}

fn blocks_text(decls: &Declarations, a: &Account) -> String {
    let mut text = decls.module(a.module).text.clone();
    if let Some(b) = a.base {
        text.push_str("\n\n");
        text.push_str(&decls.module(b).text);
    }
    text.push('\n');
    text
}
