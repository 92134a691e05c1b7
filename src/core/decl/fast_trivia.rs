//! What lies between the fast path's tokens: spaces, line breaks and comments, skipped where
//! hcl-edit skips them.

use super::{Bail, P, R};

impl P<'_> {
    /// Consumes one line break (`\n` or `\r\n`) at the cursor, if there is one.
    pub(super) fn newline(&mut self) -> R<bool> {
        match self.peek() {
            Some(b'\n') => self.i += 1,
            Some(b'\r') if self.b.get(self.i + 1) == Some(&b'\n') => self.i += 2,
            Some(b'\r') => return Err(Bail),
            _ => return Ok(false),
        }
        self.line += 1;
        self.line_start = self.i;
        Ok(true)
    }

    /// Spaces, tabs and `/* */` comments on one line: what hcl-edit skips between the
    /// tokens of a line (its `sp`). A comment that runs onto another line is left to the
    /// caller, which gives up.
    pub(super) fn spaces(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'/') if self.b.get(self.i + 1) == Some(&b'*') => {
                    let rest = &self.b[self.i + 2..];
                    let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
                    match memchr::memmem::find(line, b"*/") {
                        Some(end) => self.i += end + 4,
                        None => return,
                    }
                }
                _ => return,
            }
        }
    }

    /// A `#` or `//` comment up to (not including) its line break.
    pub(super) fn line_comment(&mut self) -> bool {
        let rest = &self.b[self.i..];
        if rest.first() == Some(&b'#') || rest.starts_with(b"//") {
            self.i += rest
                .iter()
                .position(|&c| c == b'\n' || c == b'\r')
                .unwrap_or(rest.len());
            true
        } else {
            false
        }
    }

    /// Spaces, line breaks and comments of every kind (between items, inside brackets).
    pub(super) fn gap(&mut self) -> R<()> {
        loop {
            self.spaces();
            if self.newline()? || self.line_comment() {
                continue;
            }
            if self.b[self.i..].starts_with(b"/*") {
                let end = self.s[self.i + 2..].find("*/").ok_or(Bail)? + self.i + 4;
                while self.i < end {
                    if !self.newline()? {
                        self.i += 1;
                    }
                }
                continue;
            }
            return Ok(());
        }
    }

    /// The end of an attribute or a block: spaces, maybe a line comment, then a line break
    /// or the end of the file.
    pub(super) fn end_of_line(&mut self) -> R<()> {
        self.spaces();
        self.line_comment();
        if self.newline()? || self.i == self.b.len() {
            Ok(())
        } else {
            Err(Bail)
        }
    }
}
