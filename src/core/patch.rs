//! Applies a unified diff (the `diff` of one file in GitLab's MR diffs: hunks only, no file
//! headers) to the file's base content. The review reads the MR's head this way: the base
//! files are cached by blob id, and only the diff is fetched.

use regex::Regex;
use std::sync::LazyLock;

static HUNK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@").expect("static regex")
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError(pub String);

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the diff does not apply: {}", self.0)
    }
}

impl std::error::Error for PatchError {}

/// `base` with `diff` applied. Context and removed lines must match the base exactly.
pub fn apply(base: &str, diff: &str) -> Result<String, PatchError> {
    let old: Vec<&str> = base.split_inclusive('\n').collect();
    let mut out = String::with_capacity(base.len() + diff.len());
    let mut next = 0usize; // index into `old` of the first line not yet copied
    let mut lines = diff.lines().peekable();
    let mut saw_hunk = false;
    while let Some(line) = lines.next() {
        let Some(c) = HUNK.captures(line) else {
            if saw_hunk {
                return Err(PatchError(format!(
                    "unexpected line outside a hunk: {line:?}"
                )));
            }
            continue; // a header line (`diff --git`, `---`, `+++`) before the first hunk
        };
        saw_hunk = true;
        let old_start: usize = c[1]
            .parse()
            .map_err(|_| PatchError("bad hunk header".into()))?;
        let old_len: usize = c
            .get(2)
            .map_or(Ok(1), |m| m.as_str().parse())
            .map_err(|_| PatchError("bad hunk header".into()))?;
        // "-0,0" (an added file) starts before the first line
        let start = if old_len == 0 {
            old_start
        } else {
            old_start.saturating_sub(1)
        };
        if start < next || start > old.len() {
            return Err(PatchError(format!(
                "hunk at line {old_start} is out of order or past the end"
            )));
        }
        out.extend(old[next..start].iter().copied());
        next = start;
        while let Some(&l) = lines.peek() {
            if HUNK.is_match(l) {
                break;
            }
            lines.next();
            let (tag, text) = match l.chars().next() {
                Some(t @ (' ' | '-' | '+' | '\\')) => (t, &l[1..]),
                None => (' ', ""), // an empty context line, its leading space trimmed
                Some(_) => return Err(PatchError(format!("unexpected line in a hunk: {l:?}"))),
            };
            match tag {
                '\\' => {
                    // "\ No newline at end of file": the previous line has none
                    if out.ends_with('\n') {
                        out.pop();
                    }
                }
                ' ' | '-' => {
                    let Some(have) = old.get(next) else {
                        return Err(PatchError(format!(
                            "the base ends before line {}",
                            next + 1
                        )));
                    };
                    if have.trim_end_matches('\n') != text {
                        return Err(PatchError(format!("line {} of the base differs", next + 1)));
                    }
                    next += 1;
                    if tag == ' ' {
                        out.push_str(text);
                        out.push('\n');
                    }
                }
                _ => {
                    out.push_str(text);
                    out.push('\n');
                }
            }
        }
    }
    if !saw_hunk && !diff.trim().is_empty() {
        return Err(PatchError("no hunk in the diff".into()));
    }
    out.extend(old[next..].iter().copied());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unified(a: &str, b: &str) -> String {
        similar::TextDiff::from_lines(a, b)
            .unified_diff()
            .context_radius(3)
            .to_string()
    }

    #[test]
    fn applies_what_a_unified_diff_says() {
        let cases = [
            ("", "module \"a\" {\n}\n"),
            ("a\nb\nc\n", "a\nB\nc\n"),
            (
                "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n",
                "a\nb\nX\nd\ne\nf\ng\nh\ni\nY\nk\nl\n",
            ),
            ("one\ntwo\n", ""),
            ("no newline", "no newline\nnow\n"),
            ("x\n\ny\n", "x\n\nz\n"),
        ];
        for (a, b) in cases {
            assert_eq!(apply(a, &unified(a, b)).unwrap(), b, "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn gitlab_style_hunks_without_headers() {
        let base = "l1\nl2\nl3\n";
        let diff = "@@ -1,3 +1,4 @@\n l1\n l2\n+new\n l3\n";
        assert_eq!(apply(base, diff).unwrap(), "l1\nl2\nnew\nl3\n");
        let added = "@@ -0,0 +1,2 @@\n+a\n+b\n\\ No newline at end of file\n";
        assert_eq!(apply("", added).unwrap(), "a\nb");
    }

    #[test]
    fn a_diff_that_does_not_fit_is_refused() {
        assert!(apply("a\nb\n", "@@ -1,2 +1,2 @@\n a\n-c\n+d\n").is_err());
        assert!(apply("a\n", "@@ -5,1 +5,1 @@\n-x\n+y\n").is_err());
        assert!(apply("a\n", "garbage").is_err());
    }
}
