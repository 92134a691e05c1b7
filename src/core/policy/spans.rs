//! Where a value of the policy file is written: TOML spans turned into file:line errors.

use super::PolicyError;
use crate::core::model::{LineIndex, Loc};
use regex::Regex;
use std::ops::Range;
use toml::Spanned;

pub(super) struct Spans<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    pub(super) lines: LineIndex,
}

impl Spans<'_> {
    pub(super) fn new<'a>(file: &'a str, text: &'a str) -> Spans<'a> {
        Spans {
            file,
            text,
            lines: LineIndex::new(text),
        }
    }

    pub(super) fn err(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, col) = self.lines.line_col(self.text, span.start);
        PolicyError {
            at: Some(Loc::new(self.file, line, col)),
            message: message.into(),
        }
    }

    /// A whole-value regex, or an error at the pattern's line.
    pub(super) fn regex(
        &self,
        pattern: &Spanned<String>,
        what: &str,
    ) -> Result<Regex, PolicyError> {
        Regex::new(&format!("^(?:{})$", pattern.get_ref()))
            .map_err(|e| self.err(pattern.span(), format!("{what} is not a valid regex: {e}")))
    }
}
