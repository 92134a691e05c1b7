//! Reading a checkout's files for `orgvend check`: from the working tree, or from a git ref
//! with `git ls-tree` and `git cat-file --batch` (the working tree is never touched).

use crate::core::decl::is_terraform_file;
use crate::core::model::SourceFile;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Which files a check needs: Terraform files, and the files of the policy directory.
pub fn wanted(path: &str, policy_dir: &str) -> bool {
    is_terraform_file(path) || in_policy_dir(path, policy_dir)
}

fn in_policy_dir(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| {
            !name.contains('/') && (name.ends_with(".toml") || name.ends_with(".rego"))
        })
}

/// A file's bytes as text, without a copy when they are UTF-8 (they nearly always are).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Files of the working tree under `root`, paths relative to it. Hidden directories are skipped.
/// The files are listed first, then read on every core (a large checkout is mostly the cost
/// of its fresh memory, which both cores can take at once).
pub fn working_tree(root: &Path, policy_dir: &str) -> Result<Vec<SourceFile>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("reading directory {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if wanted(&rel, policy_dir) {
                found.push((rel, path));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    crate::core::par::map(&found, 2, |(rel, path)| {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(SourceFile::new(rel.clone(), text(bytes)))
    })
    .into_iter()
    .collect()
}

/// Files of a git ref (`main`, `origin/master`, a sha) of the repository at `root`.
pub fn git_ref(root: &Path, rev: &str, policy_dir: &str) -> Result<Vec<SourceFile>> {
    if rev.starts_with('-') {
        bail!("`{rev}` is not a git ref");
    }
    let commit = format!("{rev}^{{commit}}");
    let verify = git(root)
        .args(["rev-parse", "--verify", "--quiet", &commit])
        .output()
        .context("running git (is it installed?)")?;
    if !verify.status.success() {
        bail!(
            "`{rev}` is not a commit of the repository at {}",
            root.display()
        );
    }
    let sha = String::from_utf8_lossy(&verify.stdout).trim().to_string();
    // Without --full-tree, git lists only `root` and names paths relative to it: a
    // subaccounts project may live in a subdirectory of its repository.
    let listing = git(root)
        .args(["ls-tree", "-r", "-z", &sha])
        .output()
        .context("running git ls-tree")?;
    if !listing.status.success() {
        bail!(
            "git ls-tree {rev} failed: {}",
            String::from_utf8_lossy(&listing.stderr).trim()
        );
    }
    // "<mode> blob <sha>\t<path>\0"
    let mut blobs = Vec::new();
    for entry in listing.stdout.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut meta = meta.split(' ');
        let (_mode, kind, object) = (meta.next(), meta.next(), meta.next());
        if kind == Some("blob") && wanted(path, policy_dir) {
            blobs.push((path.to_string(), object.unwrap_or_default().to_string()));
        }
    }
    read_blobs(root, blobs)
}

fn read_blobs(root: &Path, blobs: Vec<(String, String)>) -> Result<Vec<SourceFile>> {
    let mut child = git(root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running git cat-file")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let ids: Vec<String> = blobs.iter().map(|(_, id)| id.clone()).collect();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for id in ids {
            writeln!(stdin, "{id}")?;
        }
        Ok(())
    });
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut out = Vec::with_capacity(blobs.len());
    for (path, _) in blobs {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        // "<sha> blob <size>\n<content>\n"
        let size: usize = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("git cat-file answered `{}` for {path}", header.trim()))?;
        let mut content = vec![0; size + 1];
        reader.read_exact(&mut content)?;
        content.pop();
        out.push(SourceFile::new(path, text(content)));
    }
    writer
        .join()
        .expect("writer thread")
        .context("feeding git cat-file")?;
    child.wait()?;
    Ok(out)
}

fn git(root: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(root).stderr(Stdio::piped());
    cmd
}
