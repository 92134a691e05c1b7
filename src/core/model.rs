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
    /// Shared: what is read from it (each module's block, for the plan's diff) keeps a part of
    /// it rather than a copy.
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// A part of a file's text, sharing the file's memory: a module's block, as written.
#[derive(Clone)]
pub struct Excerpt {
    file: Arc<str>,
    start: usize,
    end: usize,
}

impl Excerpt {
    /// `file[range]`. Panics where slicing would: a range past the end or inside a character.
    pub fn new(file: &Arc<str>, range: std::ops::Range<usize>) -> Excerpt {
        let _ = &file[range.clone()];
        Excerpt {
            file: file.clone(),
            start: range.start,
            end: range.end,
        }
    }
}

impl std::ops::Deref for Excerpt {
    type Target = str;
    fn deref(&self) -> &str {
        &self.file[self.start..self.end]
    }
}

impl std::borrow::Borrow<str> for Excerpt {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&str> for Excerpt {
    fn from(text: &str) -> Excerpt {
        Excerpt::new(&Arc::from(text), 0..text.len())
    }
}

impl PartialEq for Excerpt {
    fn eq(&self, other: &Excerpt) -> bool {
        **self == **other
    }
}

impl Eq for Excerpt {}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
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

    #[test]
    fn an_excerpt_is_its_part_of_the_file_and_compares_by_text() {
        let file: Arc<str> = Arc::from("module \"a\" {}\n\nmodule \"b\" {}\n");
        let a = Excerpt::new(&file, 0..13);
        let b = Excerpt::new(&file, 15..28);
        // one file, shared: no copy per excerpt
        assert_eq!(Arc::strong_count(&file), 3);
        assert_eq!(&*a, "module \"a\" {}");
        assert_eq!(&*b, "module \"b\" {}");
        assert_ne!(a, b);
        assert_eq!(a, Excerpt::from("module \"a\" {}"));
        assert_eq!(
            format!("{a}|{a:?}"),
            "module \"a\" {}|\"module \\\"a\\\" {}\""
        );
        assert_eq!([a, b].join("\n"), "module \"a\" {}\nmodule \"b\" {}");
    }

    #[test]
    #[should_panic]
    fn an_excerpt_inside_a_character_is_refused() {
        let _ = Excerpt::new(&Arc::from("ä"), 0..1);
    }
}
