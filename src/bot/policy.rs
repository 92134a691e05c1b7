//! The rules in force. The policy is read from the target branch as it was before the
//! change, and it is trusted only if orgvend accepted it: brought by an MR whose gate passed
//! with the policy's own approvals, or in force when orgvend first judged anything. A policy
//! someone changed without an approved MR judges nothing: only a change that restores an
//! accepted policy can be reviewed and applied then.

use super::repo::in_policy_dir;
use super::{Bot, POLICY_DIR};
use crate::aws::Aws;
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

/// A policy's identity: its files' paths and blob ids (git's content hashes).
pub(crate) fn policy_digest(tree: &[TreeEntry]) -> String {
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
    /// No policy can judge the change (the message says why and what to do).
    Untrusted(String),
    /// The policy does not load.
    Broken(PolicyError),
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
        let accepted = match store.policy_accepted(&digest).await? {
            Some(accepted) => accepted,
            None => {
                // The first judgment: the policy in force now is the one trusted.
                store
                    .accept_policy(&digest, before_sha, "first seen", self.ctx.clock.now_ms())
                    .await?;
                tracing::info!(
                    sha = before_sha,
                    "the target branch's policy is accepted as the rules in force (first run)"
                );
                true
            }
        };
        let (tree, restoring) = if accepted {
            (before, false)
        } else if store.policy_accepted(&policy_digest(after)).await? == Some(true)
            && !policy_changes(before, after).is_empty()
        {
            (after, true)
        } else {
            return Ok(Rules::Untrusted(format!(
                "the policy on the target branch (at `{}`) was changed without an MR orgvend approved; until it is restored, nothing can be approved: revert that change in a merge request of its own, then propose it again through an approved MR",
                super::short(before_sha)
            )));
        };
        let files = self.read_files(tree, in_policy_dir).await?;
        Ok(match Policy::load(&files, POLICY_DIR) {
            Ok(p) if restoring => Rules::Restoring(p),
            Ok(p) => Rules::InForce(p),
            Err(e) => Rules::Broken(e),
        })
    }

    /// Accepts the policy of `tree` (at `sha`) as the rules in force from now on.
    pub(crate) async fn accept_policy(
        &self,
        tree: &[TreeEntry],
        sha: &str,
        source: &str,
    ) -> Result<()> {
        self.ctx
            .store
            .accept_policy(&policy_digest(tree), sha, source, self.ctx.clock.now_ms())
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
