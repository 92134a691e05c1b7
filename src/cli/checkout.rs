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

/// Files of the working tree under `root`, paths relative to it. Hidden directories are skipped.
/// The files are listed first, then read on every core (a large checkout is mostly the cost
/// of its fresh memory, which both cores can take at once).
pub fn working_tree(root: &Path, policy_dir: &str) -> Result<Vec<SourceFile>> {
    use std::os::unix::fs::MetadataExt;
    let mut found: Vec<String> = Vec::new();
    // Each directory is read once, known by its device and inode. Links to directories are
    // followed (a checkout may link a shared directory in) after every directory reached
    // without one, in path order, so a directory reached both ways is always read under the
    // same path; `loop -> .` is not read again.
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let mut seen =
        std::collections::HashSet::from([id(std::fs::metadata(root)
            .with_context(|| format!("reading directory {}", root.display()))?)]);
    // each directory with its path relative to `root` ("" or "a/b/"): a file's relative
    // path is that and its name, made once
    let mut stack = vec![(root.to_path_buf(), String::new())];
    // links to directories not read yet, the first in path order on top
    let mut links = std::collections::BinaryHeap::new();
    loop {
        let Some((dir, rel_dir)) = stack.pop() else {
            // every directory reached without a link is read: the first link's, if new
            let Some(std::cmp::Reverse((rel, link, at))) = links.pop() else {
                break;
            };
            if seen.insert(at) {
                stack.push((link, rel));
            }
            continue;
        };
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("reading directory {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if seen.insert(id(entry.metadata()?)) {
                    stack.push((entry.path(), format!("{rel_dir}{name}/")));
                }
                continue;
            }
            if kind.is_symlink()
                && let Ok(target) = std::fs::metadata(entry.path())
                && target.is_dir()
            {
                let rel = format!("{rel_dir}{name}/");
                links.push(std::cmp::Reverse((rel, entry.path(), id(target))));
                continue;
            }
            let rel = format!("{rel_dir}{name}");
            if wanted(&rel, policy_dir) {
                found.push(rel);
            }
        }
    }
    found.sort();
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    crate::core::par::map(&found, 2, |rel| {
        let path = root.join(rel);
        let text = BUF
            .with_borrow_mut(|buf| read_text(&path, buf))
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(SourceFile::new(rel.clone(), text))
    })
    .into_iter()
    .collect()
}

/// A file's text (UTF-8, or made so), read through `buf`, which each thread keeps from file
/// to file. `std::fs::read` asks for the file's size first (a `statx` more per file) and
/// gives a fresh buffer each time: a checkout of one file per account is 10,000 files, and
/// a system call costs microseconds on these machines (BENCHMARKS.md, sixth round).
fn read_text(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<std::sync::Arc<str>> {
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize((buf.len() * 2).max(64 * 1024), 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    // one copy, into the text. `from_utf8` checks ASCII a word at a time, `from_utf8_lossy`
    // a byte at a time: a tenth of reading a checkout of 10,000 files (perf, seventh round)
    let bytes = &buf[..filled];
    Ok(match std::str::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(_) => String::from_utf8_lossy(bytes).as_ref().into(),
    })
}

/// A file's bytes as text, without a copy when they are UTF-8 (they nearly always are).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_tree_is_read_whole_in_path_order_through_one_buffer_per_thread() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["envs/prod", ".git", "policies", "docs"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        // larger than the first buffer (64 KiB), then a small file through the same buffer:
        // nothing of the large one may be left in the small one's text
        let big = format!("# {}\n", "x".repeat(200_000));
        std::fs::write(root.join("a.tf"), &big).unwrap();
        std::fs::write(root.join("b.tf"), "module \"b\" {}\n").unwrap();
        std::fs::write(root.join("envs/prod/main.tf"), "locals {}\n").unwrap();
        std::fs::write(root.join("terraform.tfvars"), b"name = \"caf\xe9\"\n").unwrap();
        std::fs::write(root.join("policies/orgvend.toml"), "").unwrap();
        std::fs::write(root.join(".git/x.tf"), "hidden").unwrap();
        std::fs::write(root.join("docs/README.md"), "not read").unwrap();
        std::fs::write(root.join("empty.tf"), "").unwrap();
        let files = working_tree(root, "policies").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "a.tf",
                "b.tf",
                "empty.tf",
                "envs/prod/main.tf",
                "policies/orgvend.toml",
                "terraform.tfvars"
            ]
        );
        assert_eq!(&*files[0].text, big);
        assert_eq!(&*files[1].text, "module \"b\" {}\n");
        assert_eq!(&*files[2].text, "");
        assert_eq!(&*files[3].text, "locals {}\n");
        // not UTF-8: the bad byte becomes U+FFFD, as before
        assert_eq!(&*files[5].text, "name = \"caf\u{FFFD}\"\n");
    }

    #[test]
    fn a_file_that_cannot_be_read_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.tf"), dir.path().join("main.tf")).unwrap();
        let err = working_tree(dir.path(), "policies").unwrap_err();
        assert!(format!("{err:#}").contains("main.tf"), "{err:#}");
    }

    /// A link to a directory is followed (a checkout may link a shared directory in), but a
    /// directory reached twice is read once: `loop -> .` read the tree again under `loop/`,
    /// `loop/loop/`, … to the kernel's limit of 40 links, and every copy was a duplicate.
    #[test]
    fn a_directory_reached_twice_through_links_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("main.tf"), "module \"a\" {}\n").unwrap();
        std::fs::create_dir(root.join("shared")).unwrap();
        std::fs::write(root.join("shared/accounts.tf"), "module \"b\" {}\n").unwrap();
        std::os::unix::fs::symlink(".", root.join("loop")).unwrap();
        std::os::unix::fs::symlink("..", root.join("shared/up")).unwrap();
        std::os::unix::fs::symlink("shared", root.join("linked")).unwrap();
        let files = working_tree(root, "policies").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        // each directory once, under the path that needs no link
        assert_eq!(paths, ["main.tf", "shared/accounts.tf"]);
        // a link to a directory reached no other way is followed
        std::fs::remove_file(root.join("linked")).unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("x.tf"), "module \"x\" {}\n").unwrap();
        std::os::unix::fs::symlink(other.path(), root.join("linked")).unwrap();
        // and reached by two links, it is read under the first in path order
        std::os::unix::fs::symlink(other.path(), root.join("zlinked")).unwrap();
        std::os::unix::fs::symlink(other.path(), root.join("shared/alias")).unwrap();
        let files = working_tree(root, "policies").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["linked/x.tf", "main.tf", "shared/accounts.tf"]);
    }
}
