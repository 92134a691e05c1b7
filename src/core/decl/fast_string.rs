//! Quoted strings on the fast path: literals with their escapes decoded as hcl-edit decodes
//! them, and `${}` interpolations; a `\u` escape or a `%{}` directive leaves the string to
//! hcl-edit, read alone.

use super::super::parse::{Expr, Part};
use super::{Bail, P, R};

impl P<'_> {
    /// A quoted string: plain, or a template of literals and `${}` interpolations.
    pub(super) fn quoted(&mut self) -> R<Expr> {
        self.i += 1;
        let mut parts = Vec::new();
        // the literal being read: what `text` holds of it (escapes decoded), then `s[lit..i]`
        let mut text = String::new();
        let mut lit = self.i;
        loop {
            let c = self.peek().ok_or(Bail)?;
            // most bytes are plain text: only these may end, escape or interpolate
            if !matches!(c, b'"' | b'\n' | b'\r' | b'\\' | b'$' | b'%') {
                self.i += 1;
                continue;
            }
            let next = self.b.get(self.i + 1).copied();
            let marker = self.b.get(self.i + 2) == Some(&b'{');
            // an escape: what it stands for, and its length
            let (decoded, len) = match (c, next) {
                (b'"', _) => break,
                (b'\n' | b'\r', _) => return Err(Bail),
                (b'\\', Some(b'n')) => ("\n", 2),
                (b'\\', Some(b'r')) => ("\r", 2),
                (b'\\', Some(b't')) => ("\t", 2),
                (b'\\', Some(b'\\')) => ("\\", 2),
                (b'\\', Some(b'"')) => ("\"", 2),
                // `\u`, `\U` and what is no escape: the string is read alone by hcl-edit
                (b'\\', _) => return Err(Bail),
                (b'$', Some(b'$')) if marker => ("${", 3),
                (b'%', Some(b'%')) if marker => ("%{", 3),
                // a directive: read alone by hcl-edit
                (b'%', Some(b'{')) => return Err(Bail),
                (b'$', Some(b'{')) => {
                    text.push_str(&self.s[lit..self.i]);
                    if !text.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut text)));
                    }
                    self.i += 2;
                    self.spaces();
                    let e = self.expr()?;
                    self.spaces();
                    self.expect(b'}')?;
                    parts.push(Part::Expr(e));
                    lit = self.i;
                    continue;
                }
                _ => {
                    self.i += 1;
                    continue;
                }
            };
            text.push_str(&self.s[lit..self.i]);
            text.push_str(decoded);
            self.i += len;
            lit = self.i;
        }
        text.push_str(&self.s[lit..self.i]);
        self.i += 1;
        if parts.is_empty() {
            return Ok(Expr::String(text));
        }
        if !text.is_empty() {
            parts.push(Part::Lit(text));
        }
        Ok(Expr::Template(parts))
    }
}
