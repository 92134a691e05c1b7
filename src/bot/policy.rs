//! The rules in force. The policy is read from the target branch as it was before the
//! change, and it is trusted only if orgvend accepted it: brought by an MR whose gate passed
//! with the policy's own approvals, or in force when orgvend first judged anything. A policy
//! someone changed without an approved MR judges nothing: only a change that restores an
//! accepted policy can be reviewed and applied then.

use super::repo::in_policy_dir;
use super::{Bot, POLICY_DIR};
use crate::aws::Aws;
use crate::core::model::SourceFile;
use crate::core::policy::{Policy, PolicyError};
use crate::gitlab::{GitLab, TreeEntry};
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The policy files of a tree: path → blob id.
pub(crate) fn policy_ids(tree: &[TreeEntry]) -> BTreeMap<String, String> {
    tree.iter()
        .filter(|e| e.kind == "blob" && in_policy_dir(&e.path))
        .map(|e| (e.path.clone(), e.id.clone()))
        .collect()
}

/// The policy files one tree has and the other has not, or has otherwise.
pub(crate) fn policy_changes(before: &[TreeEntry], after: &[TreeEntry]) -> Vec<String> {
    let (a, b) = (policy_ids(before), policy_ids(after));
    let mut paths: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|p| a.get(*p) != b.get(*p))
        .cloned()
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Whether any Terraform file differs between two trees.
pub(crate) fn terraform_changed(before: &[TreeEntry], after: &[TreeEntry]) -> bool {
    let tf = |tree: &[TreeEntry]| -> BTreeMap<String, String> {
        tree.iter()
            .filter(|e| e.kind == "blob" && crate::core::decl::is_terraform_file(&e.path))
            .map(|e| (e.path.clone(), e.id.clone()))
            .collect()
    };
    tf(before) != tf(after)
}

/// A policy's identity: its files' paths and blob ids (git's content hashes).
pub fn policy_digest(tree: &[TreeEntry]) -> String {
    let mut h = Sha256::new();
    for (path, id) in policy_ids(tree) {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(id.as_bytes());
        h.update([b'\n']);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Which policy judges a change, or why none can.
pub(crate) enum Rules {
    /// The policy in force, accepted.
    InForce(Policy),
    /// The policy in force was never accepted, and the change restores one that was: it is
    /// judged by the one it restores.
    Restoring(Policy),
    /// The policy in force does not load, and the change touches the policy (a repair): it is
    /// judged by the last policy orgvend loaded, or the service's fallback. What judges it,
    /// for the note; whether Terraform must not change (the fallback knows no accounts).
    Repairing {
        policy: Policy,
        why: String,
        policy_only: bool,
    },
    /// No policy can judge the change (the message says why and what to do).
    Untrusted(String),
    /// The policy does not load.
    Broken(PolicyError),
}

/// Policy files as the store keeps them: JSON `[[path, text], …]`.
fn files_json(files: &[SourceFile]) -> String {
    let pairs: Vec<(&str, &str)> = files.iter().map(|f| (f.path.as_str(), &*f.text)).collect();
    serde_json::to_string(&pairs).unwrap_or_default()
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// The rules for a change from `before` (the target branch before it) to `after`.
    /// `sha` names `before` in the store's record of a first acceptance.
    pub(crate) async fn rules(
        &self,
        before: &[TreeEntry],
        before_sha: &str,
        after: &[TreeEntry],
    ) -> Result<Rules> {
        let store = &self.ctx.store;
        let digest = policy_digest(before);
        let files = self.read_files(before, in_policy_dir).await?;
        let loaded = Policy::load(&files, POLICY_DIR);
        let accepted = match store.policy_accepted(&digest).await? {
            Some(accepted) => accepted,
            None => {
                // The first judgment: the policy in force now is the one trusted.
                let kept = loaded.as_ref().ok().map(|_| files_json(&files));
                store
                    .accept_policy(
                        &digest,
                        before_sha,
                        "first seen",
                        self.ctx.clock.now_ms(),
                        kept.as_deref(),
                    )
                    .await?;
                tracing::info!(
                    sha = before_sha,
                    "the target branch's policy is accepted as the rules in force (first run)"
                );
                true
            }
        };
        let changes_policy = !policy_changes(before, after).is_empty();
        if accepted {
            return Ok(match loaded {
                Ok(p) => Rules::InForce(p),
                Err(e) if changes_policy => self.repair_rules(e).await?,
                Err(e) => Rules::Broken(e),
            });
        }
        if changes_policy && store.policy_accepted(&policy_digest(after)).await? == Some(true) {
            let files = self.read_files(after, in_policy_dir).await?;
            return Ok(match Policy::load(&files, POLICY_DIR) {
                Ok(p) => Rules::Restoring(p),
                Err(e) => Rules::Broken(e),
            });
        }
        Ok(Rules::Untrusted(format!(
            "the policy on the target branch (at `{}`) was changed without an MR orgvend approved; until it is restored, nothing can be approved: revert that change in a merge request of its own, then propose it again through an approved MR",
            super::short(before_sha)
        )))
    }

    /// The rules of a repair of a policy that does not load (`broken`): the last policy
    /// orgvend loaded, else the service's `[fallback]`, else none.
    async fn repair_rules(&self, broken: PolicyError) -> Result<Rules> {
        if let Some((sha, json)) = self.ctx.store.last_loaded_policy().await? {
            let pairs: Vec<(String, String)> = serde_json::from_str(&json).unwrap_or_default();
            let files: Vec<SourceFile> = pairs
                .into_iter()
                .map(|(p, t)| SourceFile::new(p, t))
                .collect();
            if let Ok(policy) = Policy::load(&files, POLICY_DIR) {
                return Ok(Rules::Repairing {
                    policy,
                    why: format!(
                        "The policy on the target branch does not load ({broken}). This MR changes the policy: it is judged by the last policy orgvend loaded (at `{}`).",
                        super::short(&sha)
                    ),
                    policy_only: false,
                });
            }
        }
        Ok(match &self.ctx.config.fallback {
            Some(f) => Rules::Repairing {
                policy: Policy::fallback(&f.approval_group, f.approvals),
                why: format!(
                    "The policy on the target branch does not load ({broken}), and orgvend never loaded one. This MR changes the policy: it is judged by the service's fallback, {} approvals from `{}`, and may change nothing else.",
                    f.approvals.max(1),
                    f.approval_group
                ),
                policy_only: true,
            },
            None => Rules::Broken(broken),
        })
    }

    /// Why the policy of `tree` does not load, when the change touches the policy
    /// (`changed`) and it does not.
    pub(crate) async fn proposed_policy_error(
        &self,
        changed: &[String],
        tree: &[TreeEntry],
    ) -> Result<Option<PolicyError>> {
        if changed.is_empty() {
            return Ok(None);
        }
        let files = self.read_files(tree, in_policy_dir).await?;
        Ok(Policy::load(&files, POLICY_DIR).err())
    }

    /// Accepts the policy of `tree` (at `sha`) as the rules in force from now on.
    pub(crate) async fn accept_policy(
        &self,
        tree: &[TreeEntry],
        sha: &str,
        source: &str,
    ) -> Result<()> {
        let files = self.read_files(tree, in_policy_dir).await?;
        let kept = Policy::load(&files, POLICY_DIR)
            .ok()
            .map(|_| files_json(&files));
        self.ctx
            .store
            .accept_policy(
                &policy_digest(tree),
                sha,
                source,
                self.ctx.clock.now_ms(),
                kept.as_deref(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, id: &str) -> TreeEntry {
        TreeEntry {
            id: id.into(),
            path: path.into(),
            kind: "blob".into(),
        }
    }

    #[test]
    fn a_policy_is_its_files_paths_and_contents() {
        let a = vec![
            entry("policies/orgvend.toml", "1"),
            entry("policies/x.rego", "2"),
            entry("main.tf", "3"),
            entry("policies/sub/ignored.rego", "4"),
        ];
        let mut b = a.clone();
        b[2].id = "changed".into(); // Terraform: not the policy
        b[3].id = "changed".into(); // not a policy file either
        assert_eq!(policy_digest(&a), policy_digest(&b));
        assert!(policy_changes(&a, &b).is_empty());
        b[1].id = "changed".into();
        assert_ne!(policy_digest(&a), policy_digest(&b));
        assert_eq!(policy_changes(&a, &b), ["policies/x.rego"]);
        b.push(entry("policies/new.rego", "5"));
        assert_eq!(
            policy_changes(&a, &b),
            ["policies/new.rego", "policies/x.rego"]
        );
        // a file moved to another name is another policy
        let moved = vec![
            entry("policies/orgvend.toml", "1"),
            entry("policies/y.rego", "2"),
        ];
        assert_ne!(policy_digest(&a), policy_digest(&moved));
    }
}
