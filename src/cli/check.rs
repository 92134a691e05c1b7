//! `orgvend check`: the core plus a filesystem and git reader. Exit 0 when the checkout passes
//! policy, 1 on violations, 2 on usage, syntax, policy-file or git errors.

use crate::cli::checkout;
use crate::core::decl::{self, Declarations};
use crate::core::model::SourceFile;
use crate::core::policy::Policy;
use crate::core::render;
use crate::core::report::{self, ChangeInput, Verdict};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The subaccounts checkout to read.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Git ref the change is compared with (the MR's target branch). Without it every
    /// account counts as new. The policy is read from this ref, as the bot does.
    #[arg(long)]
    pub base: Option<String>,
    /// Git ref to check. Default: the working tree, uncommitted changes included.
    #[arg(long)]
    pub head: Option<String>,
    /// Policy directory on disk, overriding the one in the repository.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub const POLICY_DIR: &str = "policies";

pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_VIOLATIONS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

/// Runs the check and prints the result; returns the exit code.
pub fn check(args: &CheckArgs) -> i32 {
    match run(args) {
        Ok(report) => {
            match args.format {
                Format::Text => super::print(&render::text::render(&report)),
                Format::Markdown => super::print(&render::markdown::render(&report)),
                // tens of megabytes for a large repository: written as it is made
                Format::Json => super::emit(|out| render::json::write(&report, out)),
            }
            let verdict = report.verdict;
            // The process ends here: freeing a large report one piece at a time would only
            // cost time.
            std::mem::forget(report);
            match verdict {
                Verdict::Invalid => EXIT_ERROR,
                Verdict::Blocked => EXIT_VIOLATIONS,
                _ => EXIT_CLEAN,
            }
        }
        Err(e) => {
            eprintln!("orgvend check: {e:#}");
            EXIT_ERROR
        }
    }
}

fn run(args: &CheckArgs) -> Result<report::Report> {
    let repo = &args.repo;
    if !repo.is_dir() {
        anyhow::bail!("{} is not a directory", repo.display());
    }
    // A policy directory given on the command line is loaded while the checkout is read.
    let (head_files, base_files, given_policy) = std::thread::scope(|s| {
        let given = args
            .policy
            .as_deref()
            .map(|dir| s.spawn(|| load_policy_dir(dir)));
        let head_files = match &args.head {
            Some(rev) => checkout::git_ref(repo, rev, POLICY_DIR),
            None => checkout::working_tree(repo, POLICY_DIR),
        };
        let base_files = args
            .base
            .as_ref()
            .map(|rev| checkout::git_ref(repo, rev, POLICY_DIR))
            .transpose();
        let given = given.map(|t| t.join().expect("the policy loader panicked"));
        (head_files, base_files, given)
    });
    let (head_files, base_files) = (head_files?, base_files?);

    // The policy comes from the target branch, never from the change being judged.
    let policy = match (given_policy, &base_files) {
        (Some(policy), _) => policy?,
        (None, Some(base)) => Policy::load(base, POLICY_DIR)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "loading the policy from {}",
                    args.base.as_deref().unwrap_or_default()
                )
            })?,
        (None, None) => Policy::load(&head_files, POLICY_DIR)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "loading the policy of {} (use --policy DIR to point elsewhere)",
                    repo.display()
                )
            })?,
    };

    let head = read(&head_files, &policy);
    let base = base_files.as_ref().map(|files| read(files, &policy));
    let head_label = match (&args.base, &args.head) {
        (Some(b), Some(h)) => Some(format!("{b}..{h}")),
        (Some(b), None) => Some(format!("{b}..working tree")),
        (None, Some(h)) => Some(h.clone()),
        (None, None) => None,
    };
    let change = ChangeInput {
        head_label,
        ..ChangeInput::local(&policy)
    };
    let report = report::assess(change.with(base.as_ref(), &head));
    // What was read is not needed any more, and the process ends soon: not freed piecemeal.
    std::mem::forget((head, base, head_files, base_files));
    Ok(report)
}

fn read(files: &[SourceFile], policy: &Policy) -> Declarations {
    decl::read(files, &policy.sources)
}

fn load_policy_dir(dir: &Path) -> Result<Policy> {
    let prefix = dir.display().to_string();
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading policy directory {prefix}"))?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_file() && (name.ends_with(".toml") || name.ends_with(".rego")) {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            files.push(SourceFile::new(format!("{prefix}/{name}"), text));
        }
    }
    Ok(Policy::load(&files, &prefix)?)
}
