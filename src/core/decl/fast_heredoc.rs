//! Heredocs on the fast path: `<<EOT` and `<<-EOT` of plain text, read as hcl-edit reads
//! them. A heredoc with `${` or `%{` is read alone by hcl-edit (`fast_fragment.rs`); one
//! with a carriage return, or whose first line is its delimiter (where hcl-edit looks for a
//! later one), leaves the whole file to hcl-edit.

use super::{Bail, MAX_DEPTH, P, R, ident_continue};
use crate::core::decl::parse::{Expr, Part};

impl P<'_> {
    /// At `<<`: the heredoc, the cursor left just past its closing delimiter.
    pub(super) fn heredoc(&mut self) -> R<Expr> {
        let from = self.i;
        self.i += 2;
        let indented = self.peek() == Some(b'-');
        self.i += usize::from(indented);
        let delim = self.ident()?;
        if self.peek() != Some(b'\n') {
            return Err(Bail);
        }
        self.i += 1;
        let start = self.i;
        // Each line from the second on may close it: spaces or tabs, the delimiter, and no
        // character that could continue an identifier.
        let closes = |at: usize| {
            let b = self.b;
            let d = at
                + b[at..]
                    .iter()
                    .take_while(|c| matches!(c, b' ' | b'\t'))
                    .count();
            match b[d..].starts_with(delim.as_bytes()) {
                false => Ok(None),
                true => match b.get(d + delim.len()) {
                    Some(&c) if c >= 0x80 => Err(Bail), // hcl-edit's identifiers are Unicode's
                    Some(&c) if ident_continue(c) => Ok(None),
                    _ => Ok(Some(d + delim.len())),
                },
            }
        };
        if closes(start)?.is_some() {
            return Err(Bail);
        }
        let mut line = start;
        let (end, after) = loop {
            let next = memchr::memchr(b'\n', &self.b[line..]).ok_or(Bail)? + line + 1;
            if let Some(after) = closes(next)? {
                break (next, after);
            }
            line = next;
        };
        let text = &self.s[start..end];
        if text.contains('\r') {
            return Err(Bail);
        }
        let template = text.contains("${") || text.contains("%{");
        // every bracket counts as a level hcl-edit may open (see `fragment`)
        let levels = || text.bytes().filter(|c| b"([{?!-".contains(c)).count();
        let read = match template {
            true if self.depth + 2 * levels() + 2 < MAX_DEPTH => self.read_alone(from..after),
            true => None,
            false => Some(Expr::Template(vec![Part::Lit(match indented {
                true => dedent(text),
                false => text.to_string(),
            })])),
        };
        let Some(read) = read else {
            self.fatal = true;
            return Err(Bail);
        };
        self.line += 1 + memchr::memchr_iter(b'\n', text.as_bytes()).count() as u32;
        self.line_start = end;
        self.i = after;
        Ok(read)
    }
}

/// `<<-`'s text without the leading whitespace its non-empty lines share, as hcl-edit strips
/// it (`min_leading_whitespace` and `dedent_by` in its `util.rs`): whitespace counted in
/// characters, a whitespace-only line counted whole, none stripped if a line has none.
fn dedent(text: &str) -> String {
    let mut indent: Option<usize> = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let n = line.chars().take_while(|c| c.is_whitespace()).count();
        if n == 0 {
            return text.to_string();
        }
        indent = Some(indent.map_or(n, |i| i.min(n)));
    }
    let Some(n) = indent else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.extend(line.chars().skip(n));
        out.push('\n');
    }
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}
