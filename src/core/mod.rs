//! The pure core: values in, values out. Nothing here does I/O, reads a clock or the
//! environment, or knows GitLab's or AWS's API; it imports only `core/` (a test in
//! `tests/layers.rs` holds it to that). `orgvend check` is this core plus a filesystem reader.

/// How many approvals a plan needs, and which of an MR's approvals count.
pub mod approval;
/// The IAM documents of a new account's baseline.
pub mod baseline;
/// `/orgvend …` commands in MR comments.
pub mod command;
/// The reader: `.tf` files → account declarations, every value with file:line.
pub mod decl;
/// What the declarations say against what the organization has.
pub mod drift;
/// An MR judged in proportion to its change, against what is known of its target head.
pub mod incremental;
/// Source files and locations (`file:line:col`) that every value carries.
pub mod model;
/// Work spread over every core, in order.
pub mod par;
/// Unified diffs applied to text (the head = the base + the MR's diffs).
pub mod patch;
/// Base vs head → create / update / close, each expanded into the apply's ordered steps.
pub mod plan;
/// What the policy *says*: `policies/orgvend.toml` and the compiled `*.rego` files.
pub mod policy;
/// The apply's progress, as the MR note shows it.
pub mod progress;
/// Reports → the MR note (Markdown), terminal text and JSON; the apply note.
pub mod render;
/// The verdict of one review: plan, violations, approvals.
pub mod report;
/// Asking for an account without writing Terraform: the request, and the generator that
/// writes it in the repository's house style.
pub mod request;
/// What the policy *checks*: one file per built-in rule, and Rego evaluation.
pub mod rules;
/// The account's own guard: its KMS key's policy; the boundary's tests for key, trail and Config.
pub mod security;
/// Each new account's repository files, rendered from templates (escaped by file type).
pub mod template;
/// What the core's tests share.
#[cfg(test)]
pub(crate) mod testing;
