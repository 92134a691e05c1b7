//! `orgvend new <type> <name>`: writes a new account's module pair into the checkout in its
//! house style, with what policy derives (full name, alias, email, sources and refs), checked
//! by the policy's rules before anything is written. Exit 0 when written (or, with
//! `--dry-run`, printed), 1 when refused (every reason said), 2 on usage or read errors.

use crate::cli::check::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATIONS, POLICY_DIR};
use crate::cli::checkout;
use crate::core::decl;
use crate::core::policy::Policy;
use crate::core::request::{self, Problem, Request};
use anyhow::{Context, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The account type, one of the policy's (`client`).
    pub account_type: String,
    /// The account's name, or its part after the type's prefix (`acme` → `client-acme`).
    pub name: String,
    /// Who owns the account: its `owner` tag.
    #[arg(long)]
    pub owner: Option<String>,
    /// A tag, `key=value` (repeat for more).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// A group added to a role the type grants, `Role=group` (repeat for more).
    #[arg(long = "access", value_name = "ROLE=GROUP")]
    pub access: Vec<String>,
    /// One line on what the account is for (a comment above its blocks).
    #[arg(long)]
    pub purpose: Option<String>,
    /// The root email, where the policy has no `email.template`.
    #[arg(long)]
    pub email: Option<String>,
    /// The file to write into (relative to the repository). Default: the file holding the
    /// other accounts of the type.
    #[arg(long)]
    pub file: Option<String>,
    /// The subaccounts checkout.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Print the change as a diff; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Never ask for a missing required tag (the default when standard input is not a
    /// terminal): refuse instead.
    #[arg(long)]
    pub no_input: bool,
}

/// Runs `orgvend new`; returns the exit code.
pub fn new(args: &NewArgs) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orgvend new: {e:#}");
            EXIT_ERROR
        }
    }
}

fn run(args: &NewArgs) -> Result<i32> {
    let repo = &args.repo;
    if !repo.is_dir() {
        anyhow::bail!("{} is not a directory", repo.display());
    }
    let files = checkout::working_tree(repo, POLICY_DIR)?;
    let policy = Policy::load(&files, POLICY_DIR)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading the policy of {}", repo.display()))?;
    let decls = decl::read(&files, &policy.sources);
    let mut req = Request {
        account_type: args.account_type.clone(),
        name: args.name.clone(),
        owner: args.owner.clone(),
        purpose: args.purpose.clone(),
        tags: pairs(&args.tags, "--tag")?,
        access: pairs(&args.access, "--access")?,
        email: args.email.clone(),
        file: args.file.clone(),
        adopt: None,
    };
    let ask = !args.no_input && std::io::stdin().is_terminal();
    let generated = loop {
        match request::generate(&policy, &files, &decls, &req) {
            Ok(g) => break g,
            Err(problems) => {
                let missing: Vec<String> = problems
                    .iter()
                    .filter_map(|p| p.missing_tag().map(str::to_string))
                    .collect();
                if ask && !missing.is_empty() && missing.len() == problems.len() {
                    for key in missing {
                        req.tags.push((key.clone(), prompt(&key)?));
                    }
                    continue;
                }
                refuse(&problems);
                return Ok(EXIT_VIOLATIONS);
            }
        }
    };
    if args.dry_run {
        super::print(&generated.diff());
        return Ok(EXIT_CLEAN);
    }
    let target = repo.join(&generated.path);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&target, &generated.after)
        .with_context(|| format!("writing {}", target.display()))?;
    super::print(&format!(
        "Wrote `{}` ({} account, {}) to {}:{}-{}; `orgvend check` passes it. Commit it and open a merge request.\n",
        generated.name,
        generated.account_type,
        generated.email,
        generated.path,
        generated.lines.0,
        generated.lines.1
    ));
    Ok(EXIT_CLEAN)
}

fn pairs(values: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("{flag} {v:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn prompt(key: &str) -> Result<String> {
    let mut err = std::io::stderr().lock();
    write!(err, "The `{key}` tag is required for this type. Value: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

fn refuse(problems: &[Problem]) {
    let mut text = String::from("orgvend new: nothing written:\n");
    for p in problems {
        let hint = match p.missing_tag() {
            Some(key) => format!(" (pass --tag {key}=VALUE)"),
            None => String::new(),
        };
        text.push_str(&format!("  {}: {}{hint}\n", p.field, p.message));
    }
    eprint!("{text}");
}
