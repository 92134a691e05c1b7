//! The reader: every Terraform file of a checkout → the account declarations, each value with
//! its file:line.
//!
//! Account and base modules are told apart by their `source` (the ref is ignored for matching)
//! and paired through the base module's `account_id = module.<account>.<output>`. Each
//! directory is evaluated as Terraform would evaluate it: its own variables, tfvars and locals.
//! Files under hidden directories (`.terraform/`, `.git/`) are never read.

mod digest;
mod eval;
mod fast;
mod kept;
mod pair;
mod parse;
mod read;
mod value;

pub use kept::{ChangedFile, Reading, changed_files, from_modules, read_kept};
pub use value::{Map, ModuleRef, SortedMap, Value};

use crate::core::model::{Excerpt, Loc, SourceFile};
use eval::Env;
use pair::pair;
use parse::RawModule;
use read::{dir_bytes, dir_env, dir_of, evaluate, has_env, parse_one, read_with};
use serde::Serialize;
use std::collections::BTreeMap;

/// Attribute names the reader gives meaning to, on the account module …
pub const NAME: &str = "name";
pub const EMAIL: &str = "email";
pub const ROLE_NAME: &str = "role_name";
/// An existing AWS account (by id) this declaration takes over instead of creating one.
pub const ADOPT: &str = "adopt";
/// … and on the base module.
pub const ACCOUNT_ID: &str = "account_id";
pub const ALIAS: &str = "account_alias";
pub const ACCOUNT_TYPE: &str = "account_type";
/// Groups the declaration adds to the roles its account type grants
/// (`access = { ReadOnly = ["client-acme-support"] }`), within what the policy allows.
pub const ACCESS: &str = "access";
/// On either; the account's tags are the account module's merged with the base module's.
pub const TAGS: &str = "tags";

/// Which module sources declare accounts and baselines (from the policy).
#[derive(Debug, Clone, Default)]
pub struct ModuleSources {
    pub account: Vec<String>,
    pub base: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// Creates an account in AWS Organizations.
    Account,
    /// Provisions an account's baseline.
    Base,
    /// Any other module.
    Other,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub value: Value,
    pub at: Loc,
}

impl Field {
    pub fn as_str(&self) -> Option<&str> {
        self.value.as_str()
    }
}

/// A module's `source`, split into the address that identifies it and the pinned ref.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// Everything before `?`: what the policy matches.
    pub address: String,
    /// `?ref=` of a git source, or the `version` attribute of a registry source.
    pub reference: Option<String>,
    pub at: Loc,
}

#[derive(Debug, Clone, Serialize)]
pub struct Module {
    pub key: String,
    pub kind: ModuleKind,
    pub at: Loc,
    /// `None` when the block has no literal `source` string.
    pub source: Option<Source>,
    /// Every attribute but `source`, evaluated, in the order written (the first of a
    /// repeated name wins).
    pub attrs: Vec<(String, Field)>,
    /// The block as written, for the plan's diff: a part of its file's text, not a copy.
    #[serde(skip)]
    pub text: Excerpt,
}

impl Module {
    pub fn attr(&self, name: &str) -> Option<&Field> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, f)| f)
    }
}

/// One account: its account module and the base module paired with it.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// The account module's key (`subaccount_client_example`).
    pub key: String,
    pub at: Loc,
    /// Indices into [`Declarations::modules`].
    #[serde(skip)]
    pub module: usize,
    #[serde(skip)]
    pub base: Option<usize>,
    pub base_key: Option<String>,
    pub name: Option<Field>,
    pub email: Option<Field>,
    pub role_name: Option<Field>,
    /// `adopt = "<account id>"`: take over this existing account instead of creating one.
    pub adopt: Option<Field>,
    pub alias: Option<Field>,
    pub account_type: Option<Field>,
    pub tags: Option<Field>,
    /// `access = { <role> = ["<group>", …] }` on the base module.
    pub access: Option<Field>,
}

impl Account {
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().and_then(Field::as_str)
    }
    pub fn email(&self) -> Option<&str> {
        self.email.as_ref().and_then(Field::as_str)
    }
    pub fn alias(&self) -> Option<&str> {
        self.alias.as_ref().and_then(Field::as_str)
    }
    pub fn account_type(&self) -> Option<&str> {
        self.account_type.as_ref().and_then(Field::as_str)
    }
    pub fn role_name(&self) -> Option<&str> {
        self.role_name.as_ref().and_then(Field::as_str)
    }
    pub fn adopt(&self) -> Option<&str> {
        self.adopt.as_ref().and_then(Field::as_str)
    }
    /// The groups `access` adds, as (role, group) in the order written; `None` when it is
    /// not a map of lists of strings (or unknown offline).
    pub fn added_access(&self) -> Option<Vec<(String, String)>> {
        let Some(field) = &self.access else {
            return Some(Vec::new());
        };
        let mut out = Vec::new();
        for (role, groups) in field.value.as_map()?.iter() {
            let Value::List(groups) = groups else {
                return None;
            };
            for g in groups {
                out.push((role.clone(), g.as_str()?.to_string()));
            }
        }
        Some(out)
    }
    /// The tags as strings, sorted by key; `None` when unknown offline or not a map of
    /// strings.
    pub fn tags(&self) -> Option<Vec<(&str, &str)>> {
        let Some(field) = &self.tags else {
            return Some(Vec::new());
        };
        let map = field.value.as_map()?;
        map.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Some((k.as_str(), s.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The tags as owned strings (see [`Account::tags`]).
    pub fn owned_tags(&self) -> Option<BTreeMap<String, String>> {
        self.tags_into()
    }

    /// [`Self::tags`], owned, in any map of strings (the plan keeps a [`SortedMap`]).
    pub fn tags_into<M: FromIterator<(String, String)>>(&self) -> Option<M> {
        self.tags().map(|t| {
            t.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
    }
    /// A name for messages: the account name when known, else the module key.
    pub fn label(&self) -> &str {
        self.name().unwrap_or(&self.key)
    }
}

/// Why a module could not be paired.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PairingIssue {
    /// An account module that no base module points at.
    NoBase { account: usize },
    /// A base module whose `account_id` is missing or is not `module.<x>.<output>`.
    NoAccountRef { base: usize },
    /// A base module pointing at a module that does not exist.
    MissingTarget { base: usize, target: String },
    /// A base module pointing at a module that is not an account module.
    NotAnAccount { base: usize, target: usize },
    /// A second base module for an account that already has one.
    ExtraBase {
        account: usize,
        base: usize,
        first: usize,
    },
}

/// A syntax error: the checkout cannot be judged until it is fixed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParseError {
    pub at: Loc,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.at.file, self.at.line, self.at.col, self.message
        )
    }
}

/// Everything the reader found in one checkout.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Declarations {
    pub modules: Vec<Module>,
    pub accounts: Vec<Account>,
    pub pairing: Vec<PairingIssue>,
    pub parse_errors: Vec<ParseError>,
}

impl Declarations {
    pub fn module(&self, index: usize) -> &Module {
        &self.modules[index]
    }

    /// Adds account `i` of `from` (with its modules) to these declarations: a repository
    /// with one more account, without reading it all again.
    pub fn add_account(&mut self, from: &Declarations, i: usize) {
        let mut account = from.accounts[i].clone();
        account.module = self.modules.len();
        self.modules
            .push(from.modules[from.accounts[i].module].clone());
        if let Some(b) = from.accounts[i].base {
            account.base = Some(self.modules.len());
            self.modules.push(from.modules[b].clone());
        }
        self.accounts.push(account);
    }
}

/// Whether the reader reads this path (`*.tf`, `terraform.tfvars`, `*.auto.tfvars[.json]`,
/// outside hidden directories).
pub fn is_terraform_file(path: &str) -> bool {
    parse::file_kind(path).is_some()
}

/// Reads the declarations from a checkout's files (any files may be passed; only Terraform
/// configuration and tfvars files are read).
pub fn read(files: &[SourceFile], sources: &ModuleSources) -> Declarations {
    read_with(files, sources, None)
}

/// Evaluates one module, consuming its lowered form (literal strings move, not copy).
fn module(env: &Env, raw: RawModule, sources: &ModuleSources) -> Module {
    let mut attrs: Vec<(String, Field)> = Vec::with_capacity(raw.attrs.len());
    // The names kept, once there are enough that looking through them costs more than a
    // hash: a block of 100,000 attributes, looked through for each, took 14 s to read.
    const MANY: usize = 32;
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut source = None;
    let mut version = None;
    for a in raw.attrs {
        if a.name == "source" {
            if let parse::Expr::String(s) = a.expr {
                source = Some((s, a.at));
            }
            continue;
        }
        let value = env.eval_owned(a.expr);
        if a.name == "version" {
            version = value.as_str().map(str::to_string);
        }
        let first = if attrs.len() < MANY {
            !attrs.iter().any(|(k, _)| *k == a.name)
        } else {
            if names.is_empty() {
                names.extend(attrs.iter().map(|(k, _)| k.clone()));
            }
            names.insert(a.name.clone())
        };
        if first {
            attrs.push((a.name, Field { value, at: a.at }));
        }
    }
    let source = source.map(|(s, at)| {
        let (address, reference) = split_source(&s);
        Source {
            address,
            reference: reference.or(version),
            at,
        }
    });
    let kind = match &source {
        Some(s) if sources.account.iter().any(|a| same_address(a, &s.address)) => {
            ModuleKind::Account
        }
        Some(s) if sources.base.iter().any(|a| same_address(a, &s.address)) => ModuleKind::Base,
        _ => ModuleKind::Other,
    };
    Module {
        key: raw.key,
        kind,
        at: raw.at,
        source,
        attrs,
        text: raw.text,
    }
}

/// `git::https://host/x.git?ref=v1.4.0` → (`git::https://host/x.git`, `Some("v1.4.0")`).
pub fn split_source(source: &str) -> (String, Option<String>) {
    match source.split_once('?') {
        None => (source.to_string(), None),
        Some((address, query)) => {
            let reference = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ref="))
                .filter(|r| !r.is_empty())
                .map(str::to_string);
            (address.to_string(), reference)
        }
    }
}

/// Addresses match ignoring a trailing slash.
pub fn same_address(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests;
