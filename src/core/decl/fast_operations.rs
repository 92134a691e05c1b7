//! Binary operators and conditionals between terms of the fast path's shape, on one line
//! (`count = var.enabled ? 1 : 0`, `var.a == "x" && var.b != ""`): read by the fast path
//! itself, as hcl-edit lowers them, an expression not evaluated offline with its text. The
//! terms are the fast path's own, so the whole is valid HCL; anything else in the chain
//! (a unary operator, a line break, a term outside the shape) and it is read alone by
//! hcl-edit instead (`fast_fragment.rs`).

use super::super::parse::Expr;
use super::{Bail, P, R};

/// At most this many binary operators in one attribute's value (read here, or estimated in
/// what hcl-edit read alone) for the fast path to read a chain: hcl-edit refuses a chain
/// on top of more than 128 (its `MAX_OPERATOR_DEPTH`, counted across nested scopes), which
/// this bound stays well under.
const MAX_OPERATORS: usize = 32;

impl P<'_> {
    /// After a term that began at `start` and is followed by an operator or `?`: the chain
    /// and conditional it begins, read to its end, as hcl-edit lowers it. `None` (the cursor
    /// wherever it stopped) when it is not in this shape, or ends where an expression may
    /// not.
    pub(super) fn operations(&mut self, start: usize) -> Option<Expr> {
        self.chain().ok()?;
        if !self.plain_end() || self.operators > MAX_OPERATORS {
            return None;
        }
        Some(Expr::Opaque(self.s[start..self.i].to_string()))
    }

    /// A term, and the operators and conditional that follow it.
    fn operation(&mut self) -> R<()> {
        self.deeper(Self::term)?;
        self.chain()
    }

    /// `(op term)*`, then maybe `? operation : operation`; the cursor left after the last
    /// term (not the spaces after it).
    fn chain(&mut self) -> R<()> {
        loop {
            let before = self.i;
            self.spaces();
            if let Some(len) = self.operator() {
                self.operators += 1;
                if self.operators > MAX_OPERATORS {
                    return Err(Bail);
                }
                self.i += len;
                self.spaces();
                self.deeper(Self::term)?;
                continue;
            }
            if self.peek() == Some(b'?') {
                self.i += 1;
                self.spaces();
                self.deeper(Self::operation)?;
                self.spaces();
                self.expect(b':')?;
                self.spaces();
                return self.deeper(Self::operation);
            }
            self.i = before;
            return Ok(());
        }
    }

    /// The length of the binary operator at the cursor, if there is one.
    fn operator(&self) -> Option<usize> {
        let b = &self.b[self.i..];
        match (b.first()?, b.get(1)) {
            (b'=' | b'!' | b'<' | b'>', Some(b'=')) | (b'&', Some(b'&')) | (b'|', Some(b'|')) => {
                Some(2)
            }
            (b'/', Some(b'/' | b'*')) => None,
            (b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%', _) => Some(1),
            _ => None,
        }
    }
}
