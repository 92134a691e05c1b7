//! Reading the subaccounts project: trees and blobs through a cache (a blob's content and a
//! commit's tree never change), and an MR's head as the base plus its diffs.

use super::{Bot, POLICY_DIR};
use crate::aws::Aws;
use crate::core::decl;
use crate::core::incremental::Known;
use crate::core::model::SourceFile;
use crate::core::policy::Policy;
use crate::gitlab::{FileDiff, GitLab, MergeRequest, TreeEntry};
use anyhow::{Context, Result, anyhow};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Blob contents kept in memory, in bytes.
const BLOB_CACHE_BYTES: usize = 256 * 1024 * 1024;
/// Trees kept in memory (a tree of a commit never changes).
const TREE_CACHE_ENTRIES: usize = 64;
/// How many commits back a repair of broken Terraform looks for one that parses.
const LAST_PARSING_REACH: usize = 50;
/// Target heads whose declarations are kept (every MR into one is planned against them).
const DECLARATIONS_CACHE_ENTRIES: usize = 8;
/// Target heads (under one policy each) judged once for every MR into them.
const KNOWN_CACHE_ENTRIES: usize = 4;
/// Blob reads in flight at once for one review.
const PARALLEL_READS: usize = 8;

/// A map bounded by a total weight, oldest entries out first. Its entries are immutable
/// (contents by blob id, trees by commit), so nothing expires.
struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    weight: usize,
    limit: usize,
    weigh: fn(&V) -> usize,
}

impl<V: Clone> Bounded<V> {
    fn new(limit: usize, weigh: fn(&V) -> usize) -> Bounded<V> {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            limit,
            weigh,
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: &str, value: V) {
        if self.map.contains_key(key) {
            return;
        }
        self.weight += (self.weigh)(&value);
        self.map.insert(key.to_string(), value);
        self.order.push_back(key.to_string());
        while self.weight > self.limit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.map.remove(&old) {
                self.weight -= (self.weigh)(&v);
            }
        }
    }
}

/// Contents by blob id (bounded in bytes), trees by commit and the declarations of a commit
/// under given module sources (bounded in count).
pub struct Cache {
    blobs: Mutex<Bounded<Arc<str>>>,
    trees: Mutex<Bounded<Arc<Vec<TreeEntry>>>>,
    declarations: Mutex<Bounded<Read>>,
    known: Mutex<Bounded<Option<Arc<Known>>>>,
}

/// A commit's declarations and what reading them kept (its files, where its modules are).
#[derive(Clone)]
pub(crate) struct Read {
    pub decls: Arc<decl::Declarations>,
    pub reading: Arc<decl::Reading>,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache {
            blobs: Mutex::new(Bounded::new(BLOB_CACHE_BYTES, |t| t.len())),
            trees: Mutex::new(Bounded::new(TREE_CACHE_ENTRIES, |_| 1)),
            declarations: Mutex::new(Bounded::new(DECLARATIONS_CACHE_ENTRIES, |_| 1)),
            known: Mutex::new(Bounded::new(KNOWN_CACHE_ENTRIES, |_| 1)),
        }
    }
}

impl Cache {
    fn blob(&self, id: &str) -> Option<Arc<str>> {
        self.blobs.lock().expect("cache lock").get(id)
    }

    fn put_blob(&self, id: &str, text: Arc<str>) {
        self.blobs.lock().expect("cache lock").put(id, text);
    }

    fn tree(&self, sha: &str) -> Option<Arc<Vec<TreeEntry>>> {
        self.trees.lock().expect("cache lock").get(sha)
    }

    fn put_tree(&self, sha: &str, tree: Arc<Vec<TreeEntry>>) {
        self.trees.lock().expect("cache lock").put(sha, tree);
    }
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    pub(crate) async fn tree(&self, sha: &str) -> Result<Arc<Vec<TreeEntry>>> {
        if let Some(t) = self.cache.tree(sha) {
            return Ok(t);
        }
        let t = Arc::new(
            self.gitlab
                .tree(&self.project(), sha)
                .await
                .with_context(|| format!("reading the tree of {sha}"))?,
        );
        self.cache.put_tree(sha, t.clone());
        Ok(t)
    }

    /// The declarations of commit `sha`, whose Terraform files are `files`, read under
    /// `sources` off the runtime, with what the read kept; or as read before (a commit never
    /// changes).
    pub(crate) async fn read(
        &self,
        sha: &str,
        files: Vec<SourceFile>,
        sources: &decl::ModuleSources,
    ) -> Read {
        let key = format!("{sha} {sources:?}");
        if let Some(d) = self
            .cache
            .declarations
            .lock()
            .expect("cache lock")
            .get(&key)
        {
            return d;
        }
        let sources = sources.clone();
        let (decls, reading) = super::off_runtime(move || decl::read_kept(files, &sources)).await;
        let read = Read {
            decls: Arc::new(decls),
            reading: Arc::new(reading),
        };
        self.cache
            .declarations
            .lock()
            .expect("cache lock")
            .put(&key, read.clone());
        read
    }

    /// What is known of target head `sha` (read as `read`) under the policy whose files'
    /// digest is `policy_digest`: judged once, off the runtime, for every MR into it. `None`
    /// when its MRs must be judged whole ([`Known::new`]).
    pub(crate) async fn known(
        &self,
        sha: &str,
        policy_digest: &str,
        read: &Read,
        policy: &Arc<Policy>,
    ) -> Option<Arc<Known>> {
        let key = format!("{sha} {policy_digest}");
        if let Some(k) = self.cache.known.lock().expect("cache lock").get(&key) {
            return k;
        }
        let (decls, reading, policy) = (read.decls.clone(), read.reading.clone(), policy.clone());
        let known =
            super::off_runtime(move || Known::new(decls, reading, &policy).map(Arc::new)).await;
        self.cache
            .known
            .lock()
            .expect("cache lock")
            .put(&key, known.clone());
        known
    }

    /// The files among `entries` that `wanted` selects, read by blob id (cached).
    pub(crate) async fn read_files(
        &self,
        entries: &[TreeEntry],
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<SourceFile>> {
        let chosen: Vec<&TreeEntry> = entries
            .iter()
            .filter(|e| e.kind == "blob" && wanted(&e.path))
            .collect();
        let missing: Vec<String> = chosen
            .iter()
            .filter(|e| self.cache.blob(&e.id).is_none())
            .map(|e| e.id.clone())
            .collect();
        let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL_READS));
        let mut reads = tokio::task::JoinSet::new();
        for id in missing {
            let (gitlab, project, limit) = (self.gitlab.clone(), self.project(), limit.clone());
            reads.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let bytes = gitlab
                    .blob(&project, &id)
                    .await
                    .with_context(|| format!("reading blob {id}"))?;
                Ok::<_, anyhow::Error>((id, bytes))
            });
        }
        while let Some(done) = reads.join_next().await {
            let (id, bytes) = done.map_err(|e| anyhow!("a blob read failed: {e}"))??;
            self.cache
                .put_blob(&id, Arc::from(String::from_utf8_lossy(&bytes).as_ref()));
        }
        chosen
            .iter()
            .map(|e| {
                let text = self
                    .cache
                    .blob(&e.id)
                    .ok_or_else(|| anyhow!("blob {} vanished from the cache", e.id))?;
                Ok(SourceFile::new(e.path.clone(), text.to_string()))
            })
            .collect()
    }

    /// The only branch orgvend reviews MRs into and applies: the configured one, or the
    /// project's default branch (read again every reconciliation period).
    pub(crate) async fn target_branch(&self) -> Result<String> {
        if let Some(b) = &self.ctx.config.gitlab.target_branch {
            return Ok(b.clone());
        }
        let now = self.ctx.clock.now_ms();
        let every = (self.ctx.config.gitlab.reconcile_interval_seconds.max(1) * 1000) as i64;
        let mut cached = self.target.lock().await;
        if let Some((branch, at)) = cached.as_ref()
            && now - at < every
        {
            return Ok(branch.clone());
        }
        let project = self
            .gitlab
            .project(&self.project())
            .await
            .context("reading the subaccounts project")?
            .ok_or_else(|| {
                anyhow!(
                    "the subaccounts project {} is not visible to orgvend's token",
                    self.project()
                )
            })?;
        let branch = project.default_branch.ok_or_else(|| {
            anyhow!("the subaccounts project has no default branch (an empty repository?)")
        })?;
        *cached = Some((branch.clone(), now));
        Ok(branch)
    }

    /// orgvend's own GitLab user id (its approvals never count).
    pub(crate) async fn bot_id(&self) -> Result<u64> {
        self.bot_user
            .get_or_try_init(|| async {
                let me = self
                    .gitlab
                    .current_user()
                    .await
                    .context("reading orgvend's own GitLab user")?;
                Ok::<_, anyhow::Error>(me.id)
            })
            .await
            .copied()
    }

    /// The base a change is planned against, when the target branch's Terraform at `sha`
    /// does not parse and the change's does (a repair): the nearest commit before it, along
    /// first parents, whose Terraform parses, with its declarations. `None` when there is
    /// none within reach (the change is then judged as it is: invalid).
    pub(crate) async fn last_parsing_base(
        &self,
        sha: &str,
        sources: &decl::ModuleSources,
    ) -> Result<Option<(String, decl::Declarations)>> {
        let mut at = sha.to_string();
        for _ in 0..LAST_PARSING_REACH {
            let commit = self.gitlab.commit(&self.project(), &at).await?;
            let Some(parent) = commit.parent_ids.first().cloned() else {
                return Ok(None);
            };
            let tree = self.tree(&parent).await?;
            let files = self.read_files(&tree, decl::is_terraform_file).await?;
            let sources = sources.clone();
            let decls = super::off_runtime(move || decl::read(&files, &sources)).await;
            if decls.parse_errors.is_empty() {
                return Ok(Some((parent, decls)));
            }
            at = parent;
        }
        Ok(None)
    }

    /// The MR's diffs, when GitLab's diff is of the current head (else `None`).
    pub(crate) async fn diffs(
        &self,
        mr: &MergeRequest,
        head_sha: &str,
    ) -> Result<Option<Vec<FileDiff>>> {
        let fresh = mr.diff_refs.as_ref().and_then(|r| r.head_sha.as_deref()) == Some(head_sha);
        if !fresh {
            return Ok(None);
        }
        let diffs = self
            .gitlab
            .merge_request_diffs(&self.project(), mr.iid)
            .await;
        Ok(Some(diffs.context("reading the MR's diffs")?))
    }

    /// The head's Terraform files: the base's with the MR's diffs applied. Falls back to the
    /// head's own tree when the diff is stale, collapsed, or does not apply.
    pub(crate) async fn head_files(
        &self,
        mr: &MergeRequest,
        diffs: Option<&[FileDiff]>,
        base_files: &[SourceFile],
        head_sha: &str,
    ) -> Result<Vec<SourceFile>> {
        if let Some(diffs) = diffs {
            if let Some(files) = apply_diffs(base_files, diffs) {
                return Ok(files);
            }
            tracing::info!(
                mr = mr.iid,
                "a diff is collapsed or does not apply: reading the head's tree"
            );
        }
        let tree = self.tree(head_sha).await?;
        self.read_files(&tree, decl::is_terraform_file).await
    }
}

pub(crate) fn in_policy_dir(path: &str) -> bool {
    path.strip_prefix(POLICY_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|name| {
            !name.contains('/') && (name.ends_with(".toml") || name.ends_with(".rego"))
        })
}

/// The base's files with the MR's diffs applied; `None` when a Terraform file's diff is
/// collapsed or does not apply (the caller reads the head's tree instead).
pub fn apply_diffs(base: &[SourceFile], diffs: &[FileDiff]) -> Option<Vec<SourceFile>> {
    // unchanged files stay shared with the base's
    let mut files: HashMap<String, Arc<str>> = base
        .iter()
        .map(|f| (f.path.clone(), f.text.clone()))
        .collect();
    for d in diffs {
        let touches = decl::is_terraform_file(&d.old_path) || decl::is_terraform_file(&d.new_path);
        if !touches {
            continue;
        }
        if d.too_large == Some(true) || d.collapsed == Some(true) {
            return None;
        }
        let old = if d.new_file {
            Arc::from("")
        } else {
            files.remove(&d.old_path)?
        };
        if d.deleted_file {
            continue;
        }
        if d.diff.is_empty() && !(d.renamed_file || d.new_file) {
            return None; // a change GitLab did not show
        }
        let new = if d.diff.is_empty() {
            old
        } else {
            Arc::from(crate::core::patch::apply(&old, &d.diff).ok()?)
        };
        if decl::is_terraform_file(&d.new_path) {
            files.insert(d.new_path.clone(), new);
        }
    }
    let mut out: Vec<SourceFile> = files
        .into_iter()
        .map(|(p, t)| SourceFile::new(p, t))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: &str, new: &str, a: &str, b: &str) -> FileDiff {
        FileDiff {
            old_path: old.into(),
            new_path: new.into(),
            diff: similar::TextDiff::from_lines(a, b)
                .unified_diff()
                .to_string(),
            new_file: a.is_empty(),
            deleted_file: b.is_empty() && !a.is_empty(),
            renamed_file: old != new,
            ..Default::default()
        }
    }

    #[test]
    fn head_is_base_plus_diffs() {
        let base = vec![
            SourceFile::new("a.tf", "x\ny\n"),
            SourceFile::new("b.tf", "keep\n"),
            SourceFile::new("gone.tf", "bye\n"),
        ];
        let diffs = vec![
            diff("a.tf", "a.tf", "x\ny\n", "x\nY\n"),
            diff("new.tf", "new.tf", "", "fresh\n"),
            diff("gone.tf", "gone.tf", "bye\n", ""),
            diff("README.md", "README.md", "", "docs\n"),
        ];
        let head = apply_diffs(&base, &diffs).unwrap();
        let got: Vec<(&str, &str)> = head.iter().map(|f| (f.path.as_str(), &*f.text)).collect();
        assert_eq!(
            got,
            [
                ("a.tf", "x\nY\n"),
                ("b.tf", "keep\n"),
                ("new.tf", "fresh\n")
            ]
        );
    }

    #[test]
    fn collapsed_or_mismatched_diffs_fall_back() {
        let base = vec![SourceFile::new("a.tf", "x\n")];
        let mut d = diff("a.tf", "a.tf", "x\n", "y\n");
        d.collapsed = Some(true);
        assert!(apply_diffs(&base, &[d]).is_none());
        let stale = diff("a.tf", "a.tf", "other\n", "y\n");
        assert!(apply_diffs(&base, &[stale]).is_none());
    }

    #[test]
    fn the_cache_drops_its_oldest_past_the_bound() {
        let mut b: Bounded<Arc<str>> = Bounded::new(10, |t| t.len());
        b.put("a", Arc::from("12345"));
        b.put("b", Arc::from("12345"));
        assert!(b.get("a").is_some());
        b.put("c", Arc::from("1"));
        assert!(b.get("a").is_none(), "oldest out");
        assert!(b.get("b").is_some() && b.get("c").is_some());
        assert_eq!(b.weight, 6);
    }

    #[test]
    fn policy_files_are_the_top_of_policies() {
        assert!(in_policy_dir("policies/orgvend.toml"));
        assert!(in_policy_dir("policies/x.rego"));
        assert!(!in_policy_dir("policies/sub/x.rego"));
        assert!(!in_policy_dir("other/policies/x.rego"));
    }
}
