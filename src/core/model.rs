//! Small shared types: where a value came from, and the files the core reads.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// A position in a file of the checkout: `path:line:col`, 1-based, path relative to the repo root
/// with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub fn new(file: impl Into<Arc<str>>, line: u32, col: u32) -> Loc {
        Loc {
            file: file.into(),
            line,
            col,
        }
    }
}

impl fmt::Display for Loc {
    /// `file:line`, which editors and GitLab link; the column is kept for syntax errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One file of a checkout, read from a working tree, a git ref or the GitLab API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// Maps byte offsets of one text to 1-based line and column numbers.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// Line and column (in characters) of `offset`; offsets past the end land on the last line.
    pub fn line_col(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let col = text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line as u32 + 1, col as u32 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_from_one() {
        let text = "ab\ncd\n\nä=x";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line_col(text, 0), (1, 1));
        assert_eq!(idx.line_col(text, 1), (1, 2));
        assert_eq!(idx.line_col(text, 3), (2, 1));
        assert_eq!(idx.line_col(text, 6), (3, 1));
        // the column counts characters, not bytes: 'ä' is two bytes
        assert_eq!(idx.line_col(text, 9), (4, 2));
        assert_eq!(idx.line_col(text, 999), (4, 4));
    }
}
